"""The `sked` client commands end to end, against a real `sked dev` (API and
a local worker): what people type and what scripts parse (-o json)."""

import os
import re
import subprocess
import threading
import unittest

from skedtest import SKED_BIN, SLOW, SkedTestCase, TERMINAL, wait_until

HELP_COMMANDS = [
    [], ["dev"], ["server"], ["worker"], ["routes"], ["submit"],
    ["jobs"], ["jobs", "ls"], ["jobs", "get"], ["jobs", "edit"], ["jobs", "pause"],
    ["jobs", "resume"], ["jobs", "trigger"], ["jobs", "rm"], ["jobs", "preview"],
    ["runs"], ["runs", "ls"], ["runs", "get"], ["runs", "logs"], ["runs", "cancel"],
    ["workers"], ["workers", "ls"], ["workers", "drain"],
]


def ids_in(text, prefix):
    return re.findall(r"\b%s_[0-9A-Za-z]+" % prefix, text)


class TestCli(SkedTestCase):
    def setUp(self):
        super().setUp()
        self.start_dev(slots=2, heartbeat="500ms")

    def submit(self, *args):
        """`sked submit` with the harness marker; returns the new job id."""
        out = self.cli_ok("submit", "--env", "E2E_SKED_TMP=" + self.tmp, *args)
        ids = ids_in(out, "job")
        self.assertTrue(ids, "submit printed no job id: %r" % out)
        return ids[0]

    def test_submit_and_manage_jobs(self):
        jid = self.submit("--cron", "0 2 * * *", "--tz", "Europe/Berlin", "--name", "nightly",
                          "--priority", "5", "--retries", "2", "--", "/bin/echo", "hi", "--there")
        job = self.ok("GET", "/v1/jobs/" + jid, expect=200)
        self.assertEqual(job["name"], "nightly")
        self.assertEqual(job["command"], ["/bin/echo", "hi", "--there"])
        self.assertEqual(job["priority"], 5)
        self.assertEqual(job["retry"]["max_attempts"], 3)
        self.assertEqual(job["schedules"][0]["cron"], "0 2 * * *")
        self.assertEqual(job["schedules"][0]["timezone"], "Europe/Berlin")

        table = self.cli_ok("jobs", "ls")
        self.assertIn(jid, table)
        self.assertIn("nightly", table)
        self.assertGreaterEqual(len(table.strip().splitlines()), 2, "no header line")
        listed = self.cli_json("jobs", "ls")
        self.assertEqual([j["id"] for j in listed["items"]], [jid])

        self.assertIn("nightly", self.cli_ok("jobs", "get", jid))
        self.assertEqual(self.cli_json("jobs", "get", jid)["id"], jid)
        # A job is named by people: its name works wherever its id does.
        self.assertEqual(self.cli_json("jobs", "get", "nightly")["id"], jid)
        self.cli_ok("jobs", "pause", "nightly")
        self.assertEqual(self.ok("GET", "/v1/jobs/" + jid)["state"], "paused")
        self.cli_ok("jobs", "resume", "nightly")
        self.assertEqual(self.cli_json("jobs", "preview", "nightly", "-n", "2")["fire_times"][0]
                         ["timezone"], "Europe/Berlin")
        rc, out, err = self.cli("jobs", "get", "no-such-job")
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("no job named", err)

        self.cli_ok("jobs", "pause", jid)
        self.assertEqual(self.ok("GET", "/v1/jobs/" + jid)["state"], "paused")
        self.assertEqual([j["id"] for j in self.cli_json("jobs", "ls", "--state", "paused")["items"]],
                         [jid])
        self.cli_ok("jobs", "resume", jid)
        self.assertEqual(self.ok("GET", "/v1/jobs/" + jid)["state"], "active")

        self.cli_ok("jobs", "edit", jid, "--priority", "9")
        self.assertEqual(self.ok("GET", "/v1/jobs/" + jid)["priority"], 9)

        prev = self.cli_json("jobs", "preview", jid, "-n", "3")
        self.assertEqual(len(prev["fire_times"]), 3)
        self.assertIn(prev["fire_times"][0]["at"][:4], self.cli_ok("jobs", "preview", jid, "-n", "3"))

        out = self.cli_ok("jobs", "trigger", jid)
        rids = ids_in(out, "run")
        self.assertTrue(rids, out)
        rid = rids[0]
        run = self.wait_run_state(rid, TERMINAL)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertIn("hi --there", self.cli_ok("runs", "logs", rid))
        self.assertIn(rid, self.cli_ok("runs", "ls", "--job", jid))
        self.assertEqual([r["id"] for r in self.cli_json("runs", "ls", "--job", jid)["items"]], [rid])
        got = self.cli_ok("runs", "get", rid)
        self.assertIn("succeeded", got)
        self.assertEqual(self.cli_json("runs", "get", rid)["attempts"][0]["outcome"], "succeeded")

        self.cli_ok("jobs", "rm", jid)
        self.assertEqual(self.list_all("/v1/jobs"), [])

    def test_preview_unsaved(self):
        v = self.cli_json("jobs", "preview", "--cron", "0 2 * * *", "--tz", "Europe/Berlin", "-n", "4")
        self.assertEqual(len(v["fire_times"]), 4)
        self.assertTrue(all(f["timezone"] == "Europe/Berlin" for f in v["fire_times"]))
        table = self.cli_ok("jobs", "preview", "--cron", "0 2 * * *", "--tz", "Europe/Berlin",
                            "-n", "4")
        self.assertGreaterEqual(len([l for l in table.splitlines() if "02:00:00" in l]), 4, table)

    def test_submit_wait_outcome(self):
        rc, out, err = self.cli("submit", "--wait", "--env", "E2E_SKED_TMP=" + self.tmp, "--",
                                "/bin/sh", "-c", "exit 0")
        self.assertEqual(rc, 0, (out, err))
        # --wait exits as the job did, as srun and docker run do.
        rc, out, err = self.cli("submit", "--wait", "--env", "E2E_SKED_TMP=" + self.tmp, "--",
                                "/bin/sh", "-c", "exit 3")
        self.assertEqual(rc, 3, (out, err))
        rc, out, err = self.cli("submit", "--wait", "--env", "E2E_SKED_TMP=" + self.tmp, "--",
                                "/bin/sh", "-c", "kill -TERM $$")
        self.assertEqual(rc, 128 + 15, (out, err))
        self.assertEqual(len(self.list_all("/v1/jobs")), 3)

    def test_runs_logs_follow(self):
        # The job prints, then blocks on gate files the test creates, so we
        # know which output was produced after following began.
        g1, g2 = self.path("gate1"), self.path("gate2")
        wait_for = 'n=0; while [ ! -e %s ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done'
        jid = self.submit("--", "/bin/sh", "-c", "echo early; %s; echo late; %s; echo done"
                          % (wait_for % g1, wait_for % g2))
        runs = self.wait_runs(jid, lambda rs: rs and rs[0]["state"] == "running")
        rid = runs[0]["id"]
        e = dict(os.environ, SKED_SERVER=self.srv.url, SKED_TOKEN=self.srv.token)
        p = subprocess.Popen([SKED_BIN, "runs", "logs", "-f", rid], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=e, cwd=self.tmp)
        lines = []

        def reader():
            for raw in p.stdout:
                lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            # Stored output comes at once; output written after the follow
            # began arrives promptly (a worker ships every ~200 ms), while
            # the run still runs.
            wait_until(lambda: "early" in lines, 1.5, msg="'early' from the follow")
            open(g1, "w").close()
            wait_until(lambda: "late" in lines, 1.5, msg="'late' streamed while the run runs")
            self.assertEqual(self.run_get(rid)["state"], "running")
            self.assertIsNone(p.poll(), "the follow ended before the run")
            open(g2, "w").close()
            rc = p.wait(15 * SLOW)
        finally:
            open(g1, "a").close()
            open(g2, "a").close()
            if p.poll() is None:
                p.kill()
                p.wait()
        t.join(5)
        err = p.stderr.read().decode()
        p.stdout.close()
        p.stderr.close()
        self.assertEqual(rc, 0, err)
        self.assertEqual([l for l in lines if not l.startswith("[sked]")], ["early", "late", "done"])
        self.assertEqual(self.run_get(rid)["state"], "succeeded")

    def test_runs_cancel(self):
        jid = self.submit("--", "/bin/sleep", "30")
        runs = self.wait_runs(jid, lambda rs: rs and rs[0]["state"] == "running")
        self.cli_ok("runs", "cancel", runs[0]["id"])
        self.wait_run_state(runs[0]["id"], "canceled", timeout=10)
        rc, out, err = self.cli("runs", "cancel", runs[0]["id"])
        self.assertNotEqual(rc, 0)
        self.assertIn("409", err)

    def test_workers_ls_and_drain(self):
        ws = self.cli_json("workers", "ls")["items"]
        self.assertEqual(len(ws), 1, ws)
        wid = ws[0]["id"]
        self.assertEqual(ws[0]["name"], "local")
        table = self.cli_ok("workers", "ls")
        self.assertIn(wid, table)
        self.assertIn("local", table)
        self.cli_ok("workers", "drain", wid)
        w = [x for x in self.ok("GET", "/v1/workers")["items"] if x["id"] == wid][0]
        self.assertEqual(w["state"], "draining")

    def test_errors(self):
        rc, out, err = self.cli("submit", "--cron", "0 24 * * *", "--", "/bin/true")
        self.assertNotEqual(rc, 0)
        self.assertIn("400", err)
        self.assertIn("schedules[0].cron", err)
        self.assertIn("24", err)
        self.assertEqual(self.list_all("/v1/jobs"), [], "a rejected submit created a job")

        rc, out, err = self.cli("jobs", "get", "job_00000000000000000000000000")
        self.assertNotEqual(rc, 0)
        self.assertIn("404", err)

        rc, out, err = self.cli("jobs", "ls", env={"SKED_TOKEN": "sked_wrong"})
        self.assertNotEqual(rc, 0)
        self.assertIn("401", err)

        rc, out, err = self.cli("jobs", "ls", env={"SKED_SERVER": "http://127.0.0.1:1"})
        self.assertNotEqual(rc, 0)
        self.assertIn("127.0.0.1:1", err)

        rc, out, err = self.cli("jobs", "get")  # missing the id
        self.assertEqual(rc, 2, (out, err))
        rc, out, err = self.cli("jobs", "frobnicate")
        self.assertNotEqual(rc, 0)
        rc, out, err = self.cli("submit", "--priority", "high", "--", "/bin/true")
        self.assertNotEqual(rc, 0)
        self.assertEqual(self.list_all("/v1/jobs"), [])

    def test_help(self):
        for cmd in HELP_COMMANDS:
            with self.subTest(cmd=" ".join(cmd)):
                rc, out, err = self.cli(*cmd, "--help", timeout=10)
                self.assertEqual(rc, 0, err)
                self.assertIn("usage", out.lower())


if __name__ == "__main__":
    unittest.main()
