"""Bad input end to end (promise §5.7): every rejection is a 4xx
application/problem+json answer naming the field to blame, and changes
nothing — afterwards no job exists and the server still answers."""

import json
import unittest

from skedtest import SkedTestCase

GOOD = {"name": "ok", "command": ["/bin/true"], "schedules": [{"at": "2099-01-01T00:00:00Z"}]}


def with_(**kw):
    d = json.loads(json.dumps(GOOD))
    d.update(kw)
    return d


# (label, body, expected field). A body of bytes is sent raw.
BAD_JOBS = [
    ("malformed json", b'{"name": "x", "command": [', None),
    ("not an object", b'[1, 2, 3]', None),
    ("empty body", b"", None),
    ("unknown field", with_(bogus=1), "bogus"),
    ("missing name", {"command": ["/bin/true"]}, "name"),
    ("missing command", {"name": "x"}, "command"),
    ("command not array", with_(command="/bin/true"), "command"),
    ("command empty", with_(command=[]), "command"),
    ("command element type", with_(command=["/bin/echo", 5]), "command[1]"),
    ("name type", with_(name=5), "name"),
    ("name empty", with_(name=""), "name"),
    ("name too long", with_(name="x" * 201), "name"),
    ("priority type", with_(priority="high"), "priority"),
    ("priority range", with_(priority=5000), "priority"),
    ("priority float", with_(priority=1.5), "priority"),
    ("env type", with_(env=["A=B"]), "env"),
    ("env value type", with_(env={"A": 1}), "env.A"),
    ("overlap enum", with_(overlap="sometimes"), "overlap"),
    ("misfire enum", with_(misfire="never"), "misfire"),
    ("bad cron", with_(schedules=[{"cron": "0 24 * * *"}]), "schedules[0].cron"),
    ("cron garbage", with_(schedules=[{"cron": "every day"}]), "schedules[0].cron"),
    ("bad cron second schedule",
     with_(schedules=[{"at": "2099-01-01T00:00:00Z"}, {"cron": "61 * * * *"}]),
     "schedules[1].cron"),
    ("unknown time zone", with_(schedules=[{"cron": "0 2 * * *", "timezone": "Mars/Olympus"}]),
     "schedules[0].timezone"),
    ("time zone path", with_(schedules=[{"cron": "0 2 * * *", "timezone": "../../etc/passwd"}]),
     "schedules[0].timezone"),
    ("host's localtime", with_(schedules=[{"cron": "0 2 * * *", "timezone": "localtime"}]),
     "schedules[0].timezone"),
    ("cron never fires (Feb 30)", with_(schedules=[{"cron": "0 0 30 2 *"}]), "schedules[0].cron"),
    ("cron never fires (31st of short months)",
     with_(schedules=[{"at": "2099-01-01T00:00:00Z"},
                      {"cron": "0 0 31 4,6,9,11 *", "timezone": "Europe/Berlin"}]),
     "schedules[1].cron"),
    ("schedule with two kinds",
     with_(schedules=[{"cron": "0 2 * * *", "every": "1h"}]), None),
    ("schedule unknown field", with_(schedules=[{"cron": "0 2 * * *", "color": "red"}]),
     "schedules[0].color"),
    ("schedules not array", with_(schedules={"cron": "0 2 * * *"}), "schedules"),
    ("bad at", with_(schedules=[{"at": "tomorrow"}]), "schedules[0].at"),
    ("negative every", with_(schedules=[{"every": "-5s"}]), "schedules[0].every"),
    ("zero every", with_(schedules=[{"every": "0s"}]), "schedules[0].every"),
    ("negative timeout", with_(timeout="-5s"), "timeout"),
    ("absurd timeout", with_(timeout="999999999h"), "timeout"),
    ("garbage timeout", with_(timeout="soon"), "timeout"),
    ("timeout type", with_(timeout=30), "timeout"),
    ("retry attempts type", with_(retry={"max_attempts": "3"}), "retry.max_attempts"),
    ("retry attempts negative", with_(retry={"max_attempts": -1}), "retry.max_attempts"),
    ("retry initial", with_(retry={"max_attempts": 3, "initial": "-1s"}), "retry.initial"),
    ("retry unknown field", with_(retry={"max_attempts": 3, "tries": 2}), "retry.tries"),
    ("max_concurrency negative", with_(max_concurrency=-1), "max_concurrency"),
    ("tags type", with_(tags="a,b"), "tags"),
    ("constraints type", with_(constraints={"disk": 1}), "constraints.disk"),
]


class TestBadInput(SkedTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()

    def assert_nothing_created(self):
        st, _, v = self.api("GET", "/v1/jobs")
        self.assertEqual(st, 200, v)
        self.assertEqual(v["items"], [], "a rejected request created something")
        st, _, v = self.api("GET", "/healthz", token=None)
        self.assertEqual(st, 200)

    def test_bad_job_documents(self):
        for label, body, field in BAD_JOBS:
            with self.subTest(label):
                if isinstance(body, bytes):
                    resp = self.api("POST", "/v1/jobs", raw=body)
                else:
                    resp = self.api("POST", "/v1/jobs", body)
                p = self.assert_problem(resp, 400, field)
                self.assertTrue(p.get("detail"), p)
        self.assert_nothing_created()
        # The good document is accepted (so each bad one failed for its defect).
        self.create_job(GOOD)

    def test_never_firing_cron_says_why(self):
        # Issue 7, point 5: refused, not accepted with next_fire_at null.
        for cron, months in [("0 0 30 2 *", "month '2'"), ("0 0 31 4,6,9,11 *", "months '4,6,9,11'")]:
            with self.subTest(cron=cron):
                p = self.assert_problem(self.api("POST", "/v1/jobs", with_(schedules=[{"cron": cron}])),
                                        400, "schedules[0].cron")
                self.assertIn("never fires", p["detail"])
                self.assertIn(months, p["detail"])
                p = self.assert_problem(self.api("POST", "/v1/schedules/preview",
                                                 {"schedules": [{"cron": cron}]}), 400)
                self.assertIn("never fires", p["detail"], p)
        self.assert_nothing_created()

    def test_oversized_body(self):
        big = with_(env={"BIG": "x" * (1024 * 1024 + 10)})
        resp = self.api("POST", "/v1/jobs", raw=json.dumps(big).encode())
        self.assert_problem(resp, 413)
        self.assert_nothing_created()

    def test_bad_patch_changes_nothing(self):
        job = self.create_job(GOOD)
        for patch, field in [({"priority": "x"}, "priority"),
                             ({"schedules": [{"cron": "0 0 32 * *"}]}, "schedules[0].cron"),
                             ({"bogus": True}, "bogus")]:
            with self.subTest(patch=patch):
                self.assert_problem(self.api("PATCH", "/v1/jobs/" + job["id"], patch), 400, field)
        self.assert_problem(self.api("PATCH", "/v1/jobs/" + job["id"], {"priority": 2},
                                     headers={"If-Match": "not-a-version"}), 400, "header.If-Match")
        got = self.ok("GET", "/v1/jobs/" + job["id"], expect=200)
        self.assertEqual(got["version"], job["version"])
        self.assertEqual(got["schedules"][0]["next_fire_at"], job["schedules"][0]["next_fire_at"])

    def test_unknown_ids(self):
        for method, path in [("GET", "/v1/jobs/job_00000000000000000000000000"),
                             ("GET", "/v1/jobs/nonsense"),
                             ("PATCH", "/v1/jobs/job_00000000000000000000000000"),
                             ("DELETE", "/v1/jobs/job_00000000000000000000000000"),
                             ("POST", "/v1/jobs/job_00000000000000000000000000/pause"),
                             ("POST", "/v1/jobs/job_00000000000000000000000000/trigger"),
                             ("GET", "/v1/jobs/job_00000000000000000000000000/preview"),
                             ("GET", "/v1/runs/run_00000000000000000000000000"),
                             ("POST", "/v1/runs/run_00000000000000000000000000/cancel"),
                             ("GET", "/v1/runs/run_00000000000000000000000000/log"),
                             ("POST", "/v1/workers/wrk_00000000000000000000000000/drain"),
                             ("GET", "/v1/nothing-here")]:
            with self.subTest(method=method, path=path):
                body = {"priority": 1} if method == "PATCH" else None
                self.assert_problem(self.api(method, path, body), 404)
        self.assert_nothing_created()

    def test_wrong_methods(self):
        for method, path, allow in [("PUT", "/v1/jobs", {"GET", "POST"}),
                                    ("DELETE", "/v1/runs", {"GET"}),
                                    ("GET", "/v1/jobs/job_00000000000000000000000000/pause",
                                     {"POST"}),
                                    ("POST", "/healthz", {"GET"})]:
            with self.subTest(method=method, path=path):
                resp = self.api(method, path, {} if method in ("PUT", "POST") else None)
                self.assert_problem(resp, 405)
                got = {m.strip() for m in (resp[1].get("Allow") or "").split(",") if m.strip()}
                # HEAD is implied wherever GET is allowed.
                self.assertEqual(got - {"HEAD"} if "GET" in allow else got, allow)
        self.assert_nothing_created()

    def test_bad_queries(self):
        for path, field in [("/v1/jobs?limit=abc", "query.limit"),
                            ("/v1/jobs?limit=-1", "query.limit"),
                            ("/v1/jobs?state=sleeping", "query.state"),
                            ("/v1/jobs?cursor=%%%garbage", "query.cursor"),
                            ("/v1/runs?state=sleeping", "query.state"),
                            ("/v1/runs?since=yesterday", "query.since")]:
            with self.subTest(path=path):
                self.assert_problem(self.api("GET", path), 400, field)
        job = self.create_job(GOOD)
        for n in ("0", "1001", "x"):
            with self.subTest(n=n):
                self.assert_problem(self.api("GET", "/v1/jobs/%s/preview?n=%s" % (job["id"], n)),
                                    400, "query.n")
        self.assert_problem(self.api("POST", "/v1/schedules/preview",
                                     {"schedules": [{"cron": "0 25 * * *"}], "n": 3}),
                            400, "schedules[0].cron")
        self.assert_problem(self.api("POST", "/v1/schedules/preview",
                                     {"schedules": [{"cron": "0 2 * * *", "timezone": "Nowhere/X"}]}),
                            400, "schedules[0].timezone")

    def test_bad_idempotency_key(self):
        self.assert_problem(self.api("POST", "/v1/jobs", GOOD,
                                     headers={"Idempotency-Key": "k" * 201}),
                            400, "header.Idempotency-Key")
        self.assert_nothing_created()


if __name__ == "__main__":
    unittest.main()
