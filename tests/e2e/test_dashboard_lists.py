"""The lists the dashboard's Jobs and Overview pages read (issue 12), end to
end against a real `sked server`:

- GET /v1/jobs?sort= (and /v1/workflows, which shares the code): every
  sort, walked page by page along next_cursor, lists every job exactly
  once, in the order this test computes itself (key, then id, in the key's
  direction; names byte by byte), with ties on name (two namespaces) and
  priority; a cursor is refused with another sort, a bad sort or cursor is
  a 400 naming query.sort / query.cursor.
- GET /v1/stats/runs: jobs that succeed and fail are counted in the minute
  their run finished; a user of another namespace sees only zeros; a bad
  `minutes` is a 400 naming query.minutes.
"""

import unittest
import urllib.parse

from skedtest import SkedTestCase, parse_time, wait_until

SORTS = ["-created", "created", "name", "-name", "priority", "-priority"]
# Names whose byte order differs from a natural language's: upper case
# first, space < dot < letters, UTF-8 above ASCII; "twin" in two namespaces.
NAMES = ["alpha", "Zeta", "a.b", "a b", "\u00e9mile", "twin", "mid-1", "mid-2", "mid-1x", "b",
         "c", "O'Brien", "z", "y", "x", "w", "v"]


def sort_key(sort):
    key = sort.lstrip("-")

    def k(job):
        if key == "name":
            v = job["name"].encode()
        elif key == "priority":
            v = job.get("priority", 0)
        else:
            v = round(parse_time(job["created_at"]) * 1000)
        return (v, job["id"])
    return k


class TestJobSorts(SkedTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()
        self.jobs = []
        for i, name in enumerate(NAMES):
            doc = {"name": name, "command": ["true"], "schedules": [{"every": "1h"}],
                   "priority": [10, 50, 90][i % 3], "queue": "qa" if i % 2 else "qb"}
            self.jobs.append(self.create_job(doc))
        self.jobs.append(self.create_job({"name": "twin", "command": ["true"],
                                          "namespace": "team-a", "priority": 50,
                                          "schedules": [{"every": "1h"}]}))

    def walk(self, query, limit):
        """Every page of /v1/jobs?query along next_cursor: (items, pages)."""
        items, pages, cursor = [], 0, None
        for _ in range(100):
            path = "/v1/jobs?%s&limit=%d" % (query, limit)
            if cursor:
                path += "&cursor=" + urllib.parse.quote(cursor, safe="")
            page = self.ok("GET", path, expect=200)
            items += page["items"]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                return items, pages
        self.fail("more than 100 pages for " + query)

    def test_every_sort_pages_every_job_once_in_order(self):
        for sort in SORTS:
            for limit in (1, 3, 100):
                with self.subTest(sort=sort, limit=limit):
                    items, pages = self.walk("sort=" + urllib.parse.quote(sort), limit)
                    want = sorted(self.jobs, key=sort_key(sort), reverse=sort.startswith("-"))
                    self.assertEqual([j["id"] for j in items], [j["id"] for j in want],
                                     [(j["name"], j.get("priority")) for j in items])
                    self.assertEqual(pages, -(-len(want) // limit))
        # The default is newest first, as it always was.
        self.assertEqual([j["id"] for j in self.walk("state=active", 4)[0]],
                         [j["id"] for j in self.walk("sort=-created", 4)[0]])

    def test_sort_with_filters(self):
        items, _ = self.walk("sort=-priority&queue=qa", 2)
        want = sorted((j for j in self.jobs if j.get("queue") == "qa"),
                      key=sort_key("-priority"), reverse=True)
        self.assertEqual([j["id"] for j in items], [j["id"] for j in want])
        items, _ = self.walk("sort=name&name=mid", 1)
        self.assertEqual([j["name"] for j in items], ["mid-1", "mid-1x", "mid-2"])
        items, _ = self.walk("sort=-name&namespace=team-a", 1)
        self.assertEqual([j["namespace"] for j in items], ["team-a"])

    def test_cursor_pages_only_its_own_sort(self):
        cursors = {}
        for sort in SORTS:
            page = self.ok("GET", "/v1/jobs?limit=2&sort=" + urllib.parse.quote(sort), expect=200)
            cursors[sort] = page["next_cursor"]
            self.assertTrue(cursors[sort])
        for made in SORTS:
            for used in SORTS + [None]:
                path = "/v1/jobs?limit=2&cursor=" + urllib.parse.quote(cursors[made], safe="")
                if used:
                    path += "&sort=" + urllib.parse.quote(used)
                with self.subTest(made=made, used=used):
                    r = self.api("GET", path)
                    if (used or "-created") == made:
                        self.assertEqual(r[0], 200, r[2])
                    else:
                        self.assert_problem(r, 400, "query.cursor")
        # Another filter with the same sort is harmless: the cursor is a
        # position in the sort's order.
        path = "/v1/jobs?sort=name&queue=qb&limit=50&cursor=" + urllib.parse.quote(
            cursors["name"], safe="")
        names = [j["name"] for j in self.ok("GET", path, expect=200)["items"]]
        self.assertTrue(names and all(n.encode() > b"Zeta" for n in names), names)

    def test_bad_sort_and_cursor(self):
        for bad in ["next_fire", "NAME", "", "+name", "name,-created", "--name", "created%00"]:
            with self.subTest(sort=bad):
                v = self.assert_problem(self.api("GET", "/v1/jobs?sort=" + bad), 400, "query.sort")
                if "%" not in bad:  # a NUL byte is refused before the handler, in its own words
                    for allowed in SORTS:
                        self.assertIn(allowed, v.get("detail", ""))
        for sort, bad in [("name", "garbage"), ("name", "name.zz.job_x"), ("priority", "5.x"),
                          ("-created", "name.61.job_00000000000000000000000000"),
                          ("priority", "priority.1e3.job_00000000000000000000000000")]:
            with self.subTest(sort=sort, cursor=bad):
                path = "/v1/jobs?sort=%s&cursor=%s" % (urllib.parse.quote(sort),
                                                       urllib.parse.quote(bad, safe=""))
                self.assert_problem(self.api("GET", path), 400, "query.cursor")

    def test_workflows_share_the_sorts(self):
        ids = {}
        for name in ("wf-b", "wf-a", "wf-c"):
            wf = self.ok("POST", "/v1/workflows", {
                "name": name, "schedules": [{"every": "1h"}],
                "tasks": [{"name": "t", "command": ["true"]}]}, expect=201)
            ids[wf["id"]] = name
        for sort, want in (("name", ["wf-a", "wf-b", "wf-c"]), ("-name", ["wf-c", "wf-b", "wf-a"])):
            names, cursor = [], None
            for _ in range(10):
                path = "/v1/workflows?limit=1&sort=" + urllib.parse.quote(sort)
                if cursor:
                    path += "&cursor=" + urllib.parse.quote(cursor, safe="")
                page = self.ok("GET", path, expect=200)
                names += [ids[w["id"]] for w in page["items"]]
                cursor = page["next_cursor"]
                if not cursor:
                    break
            self.assertEqual(names, want, sort)
        self.assert_problem(self.api("GET", "/v1/workflows?sort=state"), 400, "query.sort")


class TestRunStats(SkedTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()

    def minutes(self, query="", token=SkedTestCase._DEFAULT):
        st, _, v = self.api("GET", "/v1/stats/runs" + query, token=token)
        self.assertEqual(st, 200, v)
        return v["minutes"]

    def test_finished_runs_counted_in_their_minute(self):
        self.start_worker(slots=2)
        outcomes = {}
        for name, cmd, outcome in (("ok-1", ["true"], "succeeded"), ("ok-2", ["true"], "succeeded"),
                                   ("bad", ["false"], "failed")):
            job = self.create_job({"name": name, "command": cmd})
            outcomes[job["id"]] = outcome
        want = {}
        for jid, outcome in outcomes.items():
            run = self.wait_run_terminal(jid, timeout=30)
            self.assertEqual(run["state"], outcome, run)
            minute = int(parse_time(run["finished_at"]) // 60) * 60
            want.setdefault(minute, {}).setdefault(outcome, 0)
            want[minute][outcome] += 1

        # The last 10 minutes: consecutive, oldest first, ending now; each
        # run in its minute, nothing anywhere else.
        got = self.minutes("?minutes=10")
        self.assertEqual(len(got), 10)
        starts = [parse_time(m["at"]) for m in got]
        self.assertEqual(starts, [starts[0] + 60 * i for i in range(10)])
        for m in got:
            for outcome in ("succeeded", "failed", "canceled", "skipped"):
                self.assertEqual(m[outcome], want.get(int(parse_time(m["at"])), {}).get(outcome, 0),
                                 (m, want))
        self.assertEqual(sum(m["succeeded"] for m in got), 2)
        self.assertEqual(sum(m["failed"] for m in got), 1)
        self.assertEqual(len(self.minutes()), 60)  # the default
        self.assertEqual(len(self.minutes("?minutes=1440")), 1440)

        # A user of another namespace sees the minutes, all zero; a user of
        # the jobs' namespace sees them counted.
        for name, ns in (("bob", "team-b"), ("dora", "default")):
            self.ok("POST", "/v1/users", {"name": name, "password": "pw-" + name * 4,
                                          "role": "viewer", "namespaces": [ns]}, expect=201)
            tok = self.ok("POST", "/v1/login", {"user": name, "password": "pw-" + name * 4},
                          expect=201)["token"]
            seen = self.minutes("?minutes=10", token=tok)
            self.assertEqual(len(seen), 10)
            total = sum(m[o] for m in seen for o in ("succeeded", "failed", "canceled", "skipped"))
            self.assertEqual(total, 0 if ns == "team-b" else 3, (name, seen))

    def test_canceled_run_counted(self):
        # No worker: the run stays pending until canceled.
        job = self.create_job({"name": "never", "command": ["true"]})
        run = wait_until(lambda: (self.runs_of(job["id"]) or [None])[0], msg="the run")
        self.ok("POST", "/v1/runs/%s/cancel" % run["id"], expect=200)
        got = self.minutes("?minutes=5")
        self.assertEqual(sum(m["canceled"] for m in got), 1, got)
        self.assertEqual(sum(m["succeeded"] + m["failed"] + m["skipped"] for m in got), 0)

    def test_bad_minutes(self):
        for bad in ["0", "1441", "-1", "abc", "1.5", "", "60%00", "1e2"]:
            with self.subTest(minutes=bad):
                self.assert_problem(self.api("GET", "/v1/stats/runs?minutes=" + bad), 400,
                                    "query.minutes")
        self.assertEqual(len(self.minutes("?minutes=1")), 1)


if __name__ == "__main__":
    unittest.main()
