"""Schedule previews end to end (issue 7.3): POST /v1/schedules/preview and
GET /v1/jobs/{id}/preview from a chosen instant (`from`), and the 400
problem+json answers for what a preview (or a job) must not take — null,
missing or empty schedules, a null time zone, a digit that is not ASCII, a
bad `from` — each naming the field, saying what is wrong, changing nothing.

The DST nights are fixed dates (EU rules: last Sundays of March and
October; US: second Sunday of March, first of November), so the expected
answers are written out here rather than computed by the code under test."""

import unittest
from urllib.parse import quote

from skedtest import SkedTestCase

PREVIEW = "/v1/schedules/preview"
BERLIN_0230 = {"cron": "30 2 * * *", "timezone": "Europe/Berlin"}


def fires(v):
    """(at, local, dst_shifted) of each fire time of a preview answer."""
    return [(f["at"], f["local"], f["dst_shifted"]) for f in v["fire_times"]]


# 02:30 Berlin around the nights of 2027: 28 March has no 02:30 (it fires
# once, at 03:00 CEST), 31 October has two (it fires once, at the first).
SPRING_2027 = [
    ("2027-03-27T01:30:00Z", "2027-03-27T02:30:00+01:00", False),
    ("2027-03-28T01:00:00Z", "2027-03-28T03:00:00+02:00", True),
    ("2027-03-29T00:30:00Z", "2027-03-29T02:30:00+02:00", False),
]
AUTUMN_2027 = [
    ("2027-10-30T00:30:00Z", "2027-10-30T02:30:00+02:00", False),
    ("2027-10-31T00:30:00Z", "2027-10-31T02:30:00+02:00", True),
    ("2027-11-01T01:30:00Z", "2027-11-01T02:30:00+01:00", False),
]


class TestPreview(SkedTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()

    def assert_nothing_created(self):
        v = self.ok("GET", "/v1/jobs", expect=200)
        self.assertEqual(v["items"], [], "a rejected request created something")
        self.assertEqual(self.ok("GET", "/v1/runs", expect=200)["items"], [])

    def assert_bad(self, resp, field, *words):
        """A 400 problem naming field, whose detail is more than the title
        and holds each of words."""
        p = self.assert_problem(resp, 400, field)
        detail = p.get("detail") or ""
        self.assertNotEqual(detail, p.get("title"), p)
        for w in words:
            self.assertIn(w, detail, p)
        return p

    # ---- schedules -----------------------------------------------------------

    def test_schedules_null_missing_or_empty(self):
        for label, body in [("null", {"schedules": None}),
                            ("missing", {"n": 3}),
                            ("empty", {"schedules": []})]:
            with self.subTest(label):
                self.assert_bad(self.api("POST", PREVIEW, body), "schedules", "schedule")
        self.assert_bad(self.api("POST", PREVIEW, {"schedules": None}), "schedules", "null")
        # And in a job: a null list is no "run once, now".
        self.assert_bad(self.api("POST", "/v1/jobs", {"name": "j", "command": ["/bin/true"],
                                                      "schedules": None}),
                        "schedules", "null")
        self.assert_nothing_created()

    def test_null_timezone_is_not_utc(self):
        body = {"schedules": [{"cron": "0 2 * * *", "timezone": None}]}
        self.assert_bad(self.api("POST", PREVIEW, body), "schedules[0].timezone", "null", "UTC")
        job = {"name": "j", "command": ["/bin/true"], "schedules": body["schedules"]}
        self.assert_bad(self.api("POST", "/v1/jobs", job), "schedules[0].timezone", "null")
        # Other nulls in a schedule are refused the same way.
        for key, sched in [("start", {"every": "1h", "start": None}),
                           ("cron", {"cron": None, "every": "1h"})]:
            with self.subTest(key):
                self.assert_bad(self.api("POST", PREVIEW, {"schedules": [sched]}),
                                "schedules[0].%s" % key, "null")
        self.assert_nothing_created()

    def test_non_ascii_digits(self):
        cases = [
            ("arabic-indic five", "\u0665 2 * * *", "cron field 'minute'", "\u0665",
             "U+0665", "not an ASCII digit", "write 5"),
            ("full-width five", "0 \uff15 * * *", "cron field 'hour'", "\uff15",
             "U+FF15", "not an ASCII digit", "write 5"),
            ("no-break space", "0\u00a02 * * *", "U+00A0", "not an ASCII space"),
        ]
        for label, cron, *words in cases:
            with self.subTest(label):
                sched = [{"cron": cron, "timezone": "Europe/Berlin"}]
                self.assert_bad(self.api("POST", PREVIEW, {"schedules": sched}),
                                "schedules[0].cron", *words)
                self.assert_bad(self.api("POST", "/v1/jobs", {
                    "name": "j", "command": ["/bin/true"], "schedules": sched}),
                    "schedules[0].cron", *words)
        self.assert_nothing_created()

    # ---- from --------------------------------------------------------------

    def test_from_over_dst_nights(self):
        v = self.ok("POST", PREVIEW, {"schedules": [BERLIN_0230], "n": 3,
                                      "from": "2027-03-27T00:00:00Z"}, expect=200)
        self.assertEqual(fires(v), SPRING_2027)
        self.assertTrue(all(f["timezone"] == "Europe/Berlin" for f in v["fire_times"]))
        # An offset is the same instant; a fire time exactly at `from` counts.
        v = self.ok("POST", PREVIEW, {"schedules": [BERLIN_0230], "n": 3,
                                      "from": "2027-10-30T02:30:00+02:00"}, expect=200)
        self.assertEqual(fires(v), AUTUMN_2027)
        # New York, 2031: 02:30 is skipped on 9 March, 01:30 repeated on
        # 2 November.
        ny = {"cron": "30 2 * * *", "timezone": "America/New_York"}
        v = self.ok("POST", PREVIEW, {"schedules": [ny], "n": 2,
                                      "from": "2031-03-09T00:00:00Z"}, expect=200)
        self.assertEqual(fires(v), [
            ("2031-03-09T07:00:00Z", "2031-03-09T03:00:00-04:00", True),
            ("2031-03-10T06:30:00Z", "2031-03-10T02:30:00-04:00", False)])
        ny["cron"] = "30 1 * * *"
        v = self.ok("POST", PREVIEW, {"schedules": [ny], "n": 2,
                                      "from": "2031-11-02T00:00:00Z"}, expect=200)
        self.assertEqual(fires(v), [
            ("2031-11-02T05:30:00Z", "2031-11-02T01:30:00-04:00", True),
            ("2031-11-03T06:30:00Z", "2031-11-03T01:30:00-05:00", False)])
        # A schedule's own start still bounds it: the later of the two wins.
        v = self.ok("POST", PREVIEW, {"schedules": [dict(BERLIN_0230,
                                                         start="2027-03-28T12:00:00Z")],
                                      "n": 1, "from": "2027-03-27T00:00:00Z"}, expect=200)
        self.assertEqual(fires(v), [SPRING_2027[2]])

    def test_bad_from(self):
        for label, value in [("words", "next year"), ("empty", ""), ("number", 1806451200),
                             ("null", None), ("date only", "2027-03-28"),
                             ("no such day", "2027-02-30T00:00:00Z"),
                             ("no offset", "2027-03-28T00:00:00"),
                             ("before 1970", "1969-12-31T23:59:59Z")]:
            with self.subTest(label):
                self.assert_bad(self.api("POST", PREVIEW, {"schedules": [BERLIN_0230],
                                                           "from": value}),
                                "from", "RFC 3339")
        self.assert_nothing_created()

    def test_job_preview_from(self):
        job = self.create_job({"command": ["/bin/true"], "schedules": [BERLIN_0230]})
        path = "/v1/jobs/%s/preview" % job["id"]
        v = self.ok("GET", path + "?n=3&from=2027-03-27T00:00:00Z", expect=200)
        self.assertEqual(fires(v), SPRING_2027)
        self.assertTrue(all(f["schedule"] == 0 for f in v["fire_times"]))
        v = self.ok("GET", path + "?n=3&from=" + quote("2027-10-30T02:30:00+02:00", safe=""),
                    expect=200)
        self.assertEqual(fires(v), AUTUMN_2027)
        for bad in ["tomorrow", "2027-13-01T00:00:00Z", "1969-07-20T20:17:00Z", ""]:
            with self.subTest(bad):
                self.assert_bad(self.api("GET", path + "?from=" + quote(bad, safe="")),
                                "query.from", "RFC 3339")
        after = self.ok("GET", "/v1/jobs/" + job["id"], expect=200)
        self.assertEqual(after["version"], job["version"])


if __name__ == "__main__":
    unittest.main()
