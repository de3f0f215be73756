"""Jobs API semantics end to end: create/get/delete, optimistic concurrency
(If-Match), idempotent creates, pagination, schedule previews with DST, and
authentication. A bare `sked server` (no worker) is enough here."""

import calendar
import datetime
import threading
import time
import unittest
from urllib.parse import quote

from skedtest import SkedTestCase, parse_time

FAR = "2099-01-01T00:00:00Z"


def last_sunday_of_march(year):
    d = 31
    while calendar.weekday(year, 3, d) != calendar.SUNDAY:
        d -= 1
    return d


class TestJobs(SkedTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()

    def test_create_get_delete(self):
        st, h, job = self.api("POST", "/v1/jobs", {
            "name": "report", "command": ["/bin/true"],
            "schedules": [{"cron": "0 2 * * *", "timezone": "Europe/Berlin"}],
            "priority": 7, "tags": ["a"]})
        self.assertEqual(st, 201, job)
        self.assertRegex(job["id"], r"^job_")
        self.assertEqual(h.get("Location"), "/v1/jobs/" + job["id"])
        self.assertIn(str(job["version"]), h.get("ETag") or "")
        self.assertEqual(job["name"], "report")
        self.assertEqual(job["state"], "active")
        self.assertEqual(job["priority"], 7)
        self.assertEqual(job["queue"], "default")  # defaults are filled in
        self.assertEqual(job["overlap"], "allow")
        self.assertEqual(job["misfire"], "run_once")
        sch = job["schedules"][0]
        self.assertRegex(sch["id"], r"^sch_")
        # The next fire is 02:00 Berlin time: 00:00 or 01:00 UTC, in the future.
        nxt = parse_time(sch["next_fire_at"])
        self.assertGreater(nxt, time.time())
        self.assertIn(time.gmtime(nxt).tm_hour, (0, 1))

        got = self.ok("GET", "/v1/jobs/" + job["id"], expect=200)
        self.assertEqual(got["id"], job["id"])
        self.assertIn("last_run", got)
        self.assertIsNone(got["last_run"])

        # The name is unique in its namespace.
        st, _, v = self.api("POST", "/v1/jobs", {"name": "report", "command": ["/bin/true"],
                                                "schedules": [{"at": FAR}]})
        self.assertEqual(st, 409, v)

        st, _, _ = self.api("DELETE", "/v1/jobs/" + job["id"])
        self.assertEqual(st, 204)
        listed = [j["id"] for j in self.list_all("/v1/jobs")]
        self.assertNotIn(job["id"], listed)
        st, _, v = self.api("GET", "/v1/jobs/" + job["id"])
        self.assertTrue(st == 404 or v.get("state") == "deleted", (st, v))

    def test_job_without_schedule_gets_one_run_now(self):
        before = time.time()
        job = self.create_job({"command": ["/bin/true"]})
        runs = self.runs_of(job["id"])
        self.assertEqual(len(runs), 1, runs)
        r = runs[0]
        self.assertIn(r["state"], ("scheduled", "pending"))  # no worker: it waits
        self.assertLess(abs(parse_time(r["fire_time"]) - before), 5)

    def test_patch_if_match(self):
        job = self.create_job({"command": ["/bin/true"], "schedules": [{"at": FAR}], "priority": 1})
        v1 = job["version"]
        st, h, j2 = self.api("PATCH", "/v1/jobs/" + job["id"], {"priority": 5},
                             headers={"If-Match": '"%d"' % v1})
        self.assertEqual(st, 200, j2)
        self.assertEqual(j2["priority"], 5)
        self.assertEqual(j2["version"], v1 + 1)
        self.assertIn(str(v1 + 1), h.get("ETag") or "")
        # A stale version is refused and changes nothing.
        resp = self.api("PATCH", "/v1/jobs/" + job["id"], {"priority": 9},
                        headers={"If-Match": str(v1)})
        self.assert_problem(resp, 412)
        got = self.ok("GET", "/v1/jobs/" + job["id"], expect=200)
        self.assertEqual(got["priority"], 5)
        self.assertEqual(got["version"], v1 + 1)
        # Without If-Match the update applies; schedules are recomputed.
        j3 = self.ok("PATCH", "/v1/jobs/" + job["id"],
                     {"schedules": [{"at": "2098-06-01T12:00:00Z"}]}, expect=200)
        self.assertEqual(j3["version"], v1 + 2)
        self.assertEqual(parse_time(j3["schedules"][0]["next_fire_at"]),
                         parse_time("2098-06-01T12:00:00Z"))

    def test_idempotency_key(self):
        body = {"name": "idem", "command": ["/bin/true"], "schedules": [{"at": FAR}]}
        j1 = self.create_job(body, expect=201, headers={"Idempotency-Key": "k-123"})
        j2 = self.create_job(body, expect=200, headers={"Idempotency-Key": "k-123"})
        self.assertEqual(j1["id"], j2["id"])
        named = [j for j in self.list_all("/v1/jobs?name=idem")]
        self.assertEqual([j["id"] for j in named], [j1["id"]])

    def test_idempotency_key_concurrent(self):
        # Racing repeats of one key (a client retrying on a timeout) create one job.
        body = {"name": "idem-race", "command": ["/bin/true"], "schedules": [{"at": FAR}]}
        results = []

        def go():
            st, _, v = self.api("POST", "/v1/jobs", body, headers={"Idempotency-Key": "race"})
            results.append((st, v.get("id") if isinstance(v, dict) else v))

        ts = [threading.Thread(target=go) for _ in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        self.assertEqual(sorted(st for st, _ in results), [200] * 5 + [201], results)
        self.assertEqual(len({i for _, i in results}), 1, results)
        self.assertEqual(len(self.list_all("/v1/jobs?name=idem-race")), 1)

    def test_pagination_covers_all_once(self):
        ids = [self.create_job({"name": "page-%02d" % i, "command": ["/bin/true"],
                                "schedules": [{"at": FAR}]})["id"] for i in range(23)]
        seen = []
        cursor = None
        pages = 0
        while True:
            p = "/v1/jobs?limit=5" + ("&cursor=" + quote(cursor, safe="") if cursor else "")
            v = self.ok("GET", p, expect=200)
            self.assertLessEqual(len(v["items"]), 5)
            seen += [j["id"] for j in v["items"]]
            cursor = v["next_cursor"]
            pages += 1
            self.assertLess(pages, 20)
            if not cursor:
                break
        self.assertEqual(len(seen), len(set(seen)), "a job appeared twice")
        self.assertEqual(set(seen), set(ids))
        self.assertEqual(seen, list(reversed(ids)), "list is newest first")
        # Bounds of limit.
        self.assert_problem(self.api("GET", "/v1/jobs?limit=0"), 400, "query.limit")
        self.assert_problem(self.api("GET", "/v1/jobs?limit=1001"), 400, "query.limit")

    def test_list_filters(self):
        a = self.create_job({"name": "alpha", "command": ["/bin/true"], "queue": "q1",
                             "tags": ["red"], "schedules": [{"at": FAR}]})
        b = self.create_job({"name": "beta", "command": ["/bin/true"], "queue": "q2",
                             "tags": ["blue"], "schedules": [{"at": FAR}]})
        self.ok("POST", "/v1/jobs/%s/pause" % b["id"], expect=200)
        ids = lambda q: sorted(j["id"] for j in self.list_all("/v1/jobs?" + q))
        self.assertEqual(ids("queue=q1"), [a["id"]])
        self.assertEqual(ids("tag=blue"), [b["id"]])
        self.assertEqual(ids("state=paused"), [b["id"]])
        self.assertEqual(ids("name=alp"), [a["id"]])

    def test_preview_dst_spring_forward_berlin(self):
        year = time.gmtime().tm_year + 1  # always in the future
        day = datetime.date(year, 3, last_sunday_of_march(year))
        iso = lambda d: d.isoformat()
        one = datetime.timedelta(days=1)
        start = "%sT00:00:00Z" % iso(day - 2 * one)
        v = self.ok("POST", "/v1/schedules/preview", {
            "schedules": [{"cron": "30 2 * * *", "timezone": "Europe/Berlin", "start": start}],
            "n": 5}, expect=200)
        fires = v["fire_times"]
        self.assertEqual(len(fires), 5, fires)
        by_day = {f["local"][:10]: f for f in fires}
        before = by_day[iso(day - one)]
        shifted = by_day[iso(day)]
        after = by_day[iso(day + one)]
        # 02:30 does not exist that night: it fires once, at 03:00 CEST (01:00Z).
        self.assertEqual(parse_time(shifted["at"]), parse_time("%sT01:00:00Z" % iso(day)))
        self.assertEqual(shifted["local"], "%sT03:00:00+02:00" % iso(day))
        self.assertTrue(shifted["dst_shifted"])
        self.assertEqual(shifted["timezone"], "Europe/Berlin")
        self.assertEqual(before["local"], "%sT02:30:00+01:00" % iso(day - one))
        self.assertEqual(parse_time(before["at"]), parse_time("%sT01:30:00Z" % iso(day - one)))
        self.assertFalse(before["dst_shifted"])
        self.assertEqual(after["local"], "%sT02:30:00+02:00" % iso(day + one))
        self.assertEqual(parse_time(after["at"]), parse_time("%sT00:30:00Z" % iso(day + one)))
        self.assertFalse(after["dst_shifted"])
        ats = [parse_time(f["at"]) for f in fires]
        self.assertEqual(ats, sorted(ats))

        # The same through a saved job's preview.
        job = self.create_job({"command": ["/bin/true"], "schedules": [
            {"cron": "30 2 * * *", "timezone": "Europe/Berlin", "start": start}]})
        v2 = self.ok("GET", "/v1/jobs/%s/preview?n=5" % job["id"], expect=200)
        self.assertEqual([f["at"] for f in v2["fire_times"]], [f["at"] for f in fires])
        self.assertTrue(all(f["schedule"] == 0 for f in v2["fire_times"]))

    def test_auth(self):
        st, h, v = self.api("GET", "/healthz", token=None)
        self.assertEqual((st, v), (200, {"status": "ok"}))
        st, _, v = self.api("GET", "/readyz", token=None)
        self.assertEqual(st, 200, v)
        resp = self.api("GET", "/v1/jobs", token=None)
        self.assert_problem(resp, 401)
        self.assertIn("Bearer", resp[1].get("WWW-Authenticate") or "")
        self.assert_problem(self.api("GET", "/v1/jobs", token="sked_not-a-real-token"), 401)
        self.assert_problem(self.api("POST", "/v1/jobs", {"name": "x", "command": ["/bin/true"]},
                                     token=None), 401)
        self.assertEqual(self.list_all("/v1/jobs"), [])  # the rejected create made nothing
        st, _, v = self.api("GET", "/v1/jobs")
        self.assertEqual(st, 200, v)
        self.assertEqual(v, {"items": [], "next_cursor": None})


if __name__ == "__main__":
    unittest.main()
