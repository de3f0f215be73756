"""Users, logins, tokens, namespaces and the audit log end to end, against a
real `sked server` and `sked worker`, through the CLI people type and the
API scripts call."""

import copy
import os
import time
import stat
import subprocess

from skedtest import SKED_BIN, SLOW, SkedTestCase


class TestAuth(SkedTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()

    def sked_stdin(self, stdin, *args, token=None):
        """`sked ARGS` with text on stdin (the harness's cli() sends none)."""
        env = dict(os.environ)
        env.pop("SKED_TOKEN_FILE", None)
        env["SKED_SERVER"] = self.srv.url
        env["SKED_TOKEN"] = token or self.srv.token
        cp = subprocess.run([SKED_BIN] + list(args), input=stdin.encode(), capture_output=True,
                            env=env, cwd=self.tmp, timeout=60 * SLOW)
        return cp.returncode, cp.stdout.decode(), cp.stderr.decode()

    def test_user_login_namespaces_and_audit(self):
        rc, out, err = self.sked_stdin("alice-password\n", "users", "create", "alice",
                                       "--role", "user", "--ns", "team-a", "--password-stdin")
        self.assertEqual(rc, 0, err)
        self.assertIn("alice user team-a", out)
        users = self.cli_json("users", "ls")["items"]
        self.assertEqual([u["name"] for u in users], ["alice"])
        self.assertNotIn("password", users[0])

        # A wrong password fails without a token; the right one prints one.
        rc, out, err = self.sked_stdin("nope-nope\n", "login", "alice", "--password-stdin")
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        rc, out, err = self.sked_stdin("alice-password\n", "login", "alice", "--password-stdin")
        self.assertEqual(rc, 0, err)
        alice = out.strip()
        self.assertTrue(alice.startswith("sked_"), out)

        # alice works in team-a; the admin's job in team-b is invisible to her.
        own = self.create_job({"name": "a-job", "command": ["true"], "namespace": "team-a",
                               "schedules": [{"every": "1h"}]}, headers=None)
        self.assertEqual(own["namespace"], "team-a")
        other = self.create_job({"name": "b-job", "command": ["true"], "namespace": "team-b",
                                 "schedules": [{"every": "1h"}]})
        st, _, listed = self.api("GET", "/v1/jobs", token=alice)
        self.assertEqual(st, 200)
        names = [j["name"] for j in listed["items"]]
        self.assertIn("a-job", names)
        self.assertNotIn("b-job", names)
        st, _, _ = self.api("GET", "/v1/jobs/" + other["id"], token=alice)
        self.assertEqual(st, 404)
        st, _, _ = self.api("POST", "/v1/jobs", {"name": "x", "command": ["true"],
                                                 "namespace": "team-b"}, token=alice)
        self.assertEqual(st, 403)
        # The admin's job in her namespace: she may read it, not change it.
        st, _, _ = self.api("POST", "/v1/jobs/%s/pause" % own["id"], token=alice)
        self.assertEqual(st, 403)
        st, _, mine = self.api("POST", "/v1/jobs", {"name": "mine", "command": ["true"],
                                                    "schedules": [{"every": "1h"}]}, token=alice)
        self.assertEqual(st, 201)
        self.assertEqual((mine["namespace"], mine["owner"]), ("team-a", "alice"))
        st, _, _ = self.api("POST", "/v1/jobs/%s/pause" % mine["id"], token=alice)
        self.assertEqual(st, 200)

        # Her tokens, as she sees them: no secrets.
        rc, out, err = self.sked_stdin("", "tokens", "ls", "-o", "json", token=alice)
        self.assertEqual(rc, 0, err)
        self.assertNotIn(alice, out)

        # The audit log has the login (both tries) and her changes.
        entries = self.cli_json("audit", "ls", "--actor", "alice", "--all")["items"]
        routes = [(e["method"], e["route"], e["status"]) for e in entries]
        self.assertIn(("POST", "/v1/login", 401), routes)
        self.assertIn(("POST", "/v1/login", 201), routes)
        self.assertIn(("POST", "/v1/jobs", 201), routes)
        self.assertIn(("POST", "/v1/jobs/{id}/pause", 200), routes)
        self.assertIn(("POST", "/v1/jobs/{id}/pause", 403), routes)
        out = self.cli_ok("audit", "ls", "--actor", "alice")
        self.assertIn("/v1/jobs/{id}/pause", out)

        # Deleting her ends her session.
        self.cli_ok("users", "rm", "alice")
        st, _, _ = self.api("GET", "/v1/jobs", token=alice)
        self.assertEqual(st, 401)

    def test_refusals_are_audited_but_cannot_flood_the_log(self):
        # A missing token, a bad token, and a role that may not call the
        # route: each refusal is in the audit log with its route and status.
        st, _, _ = self.api("GET", "/v1/jobs", token=None)
        self.assertEqual(st, 401)
        st, _, _ = self.api("GET", "/v1/runs", token="sked_" + "A" * 43)
        self.assertEqual(st, 401)
        rc, out, err = self.sked_stdin("", "tokens", "create", "--name", "v1", "--role",
                                       "viewer")
        self.assertEqual(rc, 0, err)
        viewer = out.strip().split()[-1]
        st, _, _ = self.api("POST", "/v1/users", {"name": "x", "role": "user",
                                                  "password": "long-enough-pw"}, token=viewer)
        self.assertEqual(st, 403)
        entries = self.cli_json("audit", "ls", "--all")["items"]
        seen = {(e["method"], e["route"], e["status"], e["actor"]) for e in entries}
        self.assertIn(("GET", "/v1/jobs", 401, ""), seen)
        self.assertIn(("GET", "/v1/runs", 401, ""), seen)
        self.assertIn(("POST", "/v1/users", 403, "v1"), seen)

        # A flood of refusals (no token: not throttled per address, so every
        # one is a 401): the log takes at most the burst plus the refill, and
        # the server keeps answering.
        before = sum(1 for e in entries if e["status"] == 401)
        t0 = time.monotonic()
        flood = 400
        for i in range(flood):
            st, _, _ = self.api("GET", "/v1/jobs?i=%d" % i, token=None)
            self.assertEqual(st, 401)
        elapsed = time.monotonic() - t0
        entries = self.cli_json("audit", "ls", "--all")["items"]
        written = sum(1 for e in entries if e["status"] == 401) - before
        self.assertGreater(written, 0)
        self.assertLessEqual(written, 100 + 20 * (elapsed + 1))
        self.assertLess(written, flood)
        st, _, _ = self.api("GET", "/v1/jobs")
        self.assertEqual(st, 200)

    def test_worker_token_runs_jobs(self):
        tokfile = self.path("worker.token")
        rc, out, err = self.sked_stdin("", "tokens", "create", "--name", "w1", "--role",
                                       "worker", "--save", tokfile)
        self.assertEqual(rc, 0, err)
        self.assertEqual(stat.S_IMODE(os.stat(tokfile).st_mode), 0o600)
        with open(tokfile) as f:
            wtok = f.read().strip()
        # A worker token is for the worker protocol only.
        st, _, _ = self.api("GET", "/v1/jobs", token=wtok)
        self.assertEqual(st, 403)

        # The harness's own worker start, with the new token instead of the
        # admin's.
        wsrv = copy.copy(self.srv)
        wsrv.token_file = tokfile
        self.start_worker(wsrv, name="w1")
        job = self.create_job(self.sh_job("exit 0"))
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "succeeded")

        listed = self.cli_json("tokens", "ls", "--all")["items"]
        wt = [t for t in listed if t["name"] == "w1"]
        self.assertEqual(len(wt), 1)
        self.assertEqual(wt[0]["role"], "worker")
        self.assertIsNotNone(wt[0]["last_used_at"])
        self.cli_ok("tokens", "revoke", wt[0]["id"])
        st, _, _ = self.api("POST", "/v1/workers", {"name": "x", "host": "h", "slots": 1},
                            token=wtok)
        self.assertEqual(st, 401)
