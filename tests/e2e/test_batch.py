"""POST /v1/jobs:batch end to end (issue 13 point 2), against a real
`sked server` on SQLite.

What each test asserts:

- A batch of 1,000 jobs answers 201 with the 1,000 jobs in request order,
  each the resource GET /v1/jobs/{id} shows (but last_run); all are listed
  afterwards; the ones with no schedule got their pending run, the others
  their schedule's next fire time and no run.
- A batch whose item 7 is bad changes nothing and names jobs[7]....; every
  bad item is listed in `errors` (a non-object item, a bad cron, an unknown
  field), a plugin type's bad config in item 2 is named by its member.
- A name taken, or given twice in the batch, is a 409 naming jobs[i].name;
  nothing is written.
- A caller granted one namespace is refused (403, jobs[i].namespace) an
  item of another, and nothing is written.
- The same Idempotency-Key again answers 200 with the first batch's jobs and
  creates nothing; a key used for a single job is refused for a batch.
- 1,001 items, an empty list, a missing "jobs" and an unknown member are 400
  naming jobs (or the member).
"""

import os
import unittest

from skedtest import SkedTestCase

FAR = "2099-01-01T00:00:00Z"


def doc(name, **fields):
    d = {"name": name, "command": ["/bin/true"]}
    d.update(fields)
    return d


class TestBatch(SkedTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()

    def names(self, prefix):
        return {j["name"] for j in self.list_all("/v1/jobs?name=" + prefix, limit=1000)}

    def test_thousand_jobs_all_visible_with_their_runs(self):
        jobs = []
        for i in range(1000):
            if i % 2:
                jobs.append(doc("big-%04d" % i, schedules=[{"at": FAR}]))
            else:  # no schedule: a run now (in a queue no worker serves)
                jobs.append(doc("big-%04d" % i, queue="nobody"))
        out = self.ok("POST", "/v1/jobs:batch", {"jobs": jobs}, expect=201)["jobs"]
        self.assertEqual([j["name"] for j in out], [j["name"] for j in jobs])
        self.assertEqual(len({j["id"] for j in out}), 1000)
        self.assertEqual(self.names("big-"), {j["name"] for j in jobs})
        # Each answer is the job as it is stored and shown.
        for i in (0, 1, 998, 999):
            got = self.ok("GET", "/v1/jobs/" + out[i]["id"])
            got.pop("last_run", None)
            self.assertEqual(out[i], got)
            self.assertEqual(out[i]["state"], "active")
        self.assertEqual(out[1]["schedules"][0]["next_fire_at"], FAR)
        runs = self.list_all("/v1/runs?limit=1000", limit=1000)
        by_job = {}
        for r in runs:
            by_job.setdefault(r["job_id"], []).append(r)
        for i, j in enumerate(out):
            if i % 2:
                self.assertNotIn(j["id"], by_job)
            else:
                self.assertEqual([r["state"] for r in by_job.get(j["id"], [])], ["pending"],
                                 j["name"])

    def test_bad_items_change_nothing_and_are_all_named(self):
        self.ok("POST", "/v1/workers",
                {"name": "pw", "host": "h", "slots": 1,
                 "plugins": [{"type": "greeter", "version": "1.0.0", "abi": 1,
                              "schema": {"type": "object", "required": ["greeting"],
                                         "properties": {"greeting": {"type": "string"}}}}]},
                expect=201)
        jobs = [doc("bad-%d" % i) for i in range(10)]
        jobs[7]["schedules"] = [{"cron": "0 25 * * *"}]
        v = self.assert_problem(self.api("POST", "/v1/jobs:batch", {"jobs": jobs}), 400,
                                "jobs[7].schedules[0].cron")
        self.assertEqual([e["field"] for e in v["errors"]], ["jobs[7].schedules[0].cron"])
        self.assertEqual(self.names("bad-"), set())

        jobs[3] = "not an object"
        jobs[5]["colour"] = "blue"
        v = self.assert_problem(self.api("POST", "/v1/jobs:batch", {"jobs": jobs}), 400, "jobs[3]")
        self.assertEqual([e["field"] for e in v["errors"]],
                         ["jobs[3]", "jobs[5].colour", "jobs[7].schedules[0].cron"])
        for e in v["errors"]:
            self.assertTrue(e["detail"], e)
        self.assertEqual(self.names("bad-"), set())

        # A plugin type's config is checked against its schema, per item.
        jobs = [doc("plug-%d" % i) for i in range(4)]
        jobs[2] = {"name": "plug-2", "type": "greeter", "config": {"greeting": 5}}
        v = self.assert_problem(self.api("POST", "/v1/jobs:batch", {"jobs": jobs}), 400)
        self.assertTrue(v["field"].startswith("jobs[2].config"), v)
        self.assertEqual(len(v["errors"]), 1, v)
        self.assertEqual(self.names("plug-"), set())
        jobs[2]["config"] = {"greeting": "hi"}
        out = self.ok("POST", "/v1/jobs:batch", {"jobs": jobs}, expect=201)["jobs"]
        self.assertEqual(out[2]["type"], "greeter")
        self.assertEqual(self.names("plug-"), {"plug-0", "plug-1", "plug-2", "plug-3"})

    def test_name_conflicts(self):
        self.create_job(doc("taken"))
        jobs = [doc("nc-%d" % i) for i in range(5)]
        jobs[3]["name"] = "taken"
        self.assert_problem(self.api("POST", "/v1/jobs:batch", {"jobs": jobs}), 409,
                            "jobs[3].name")
        jobs[3]["name"] = "nc-1"  # twice in the batch: the second is named
        self.assert_problem(self.api("POST", "/v1/jobs:batch", {"jobs": jobs}), 409,
                            "jobs[3].name")
        self.assertEqual(self.names("nc-"), set())

    def test_namespace_grant_per_item(self):
        tok = self.ok("POST", "/v1/tokens",
                      {"name": "teamer", "role": "user", "namespaces": ["team-a"]},
                      expect=201)["token"]
        jobs = [doc("ns-0"), doc("ns-1", namespace="team-a"), doc("ns-2", namespace="team-b")]
        self.assert_problem(self.api("POST", "/v1/jobs:batch", {"jobs": jobs}, token=tok), 403,
                            "jobs[2].namespace")
        self.assertEqual(self.names("ns-"), set())
        jobs[2]["namespace"] = "team-a"
        out = self.ok("POST", "/v1/jobs:batch", {"jobs": jobs}, token=tok, expect=201)["jobs"]
        self.assertEqual([j["namespace"] for j in out], ["team-a"] * 3)
        self.assertEqual({j["owner"] for j in out}, {"teamer"})
        # An admin may put each item where it likes.
        jobs = [doc("ns-x", namespace="x"), doc("ns-y", namespace="y")]
        out = self.ok("POST", "/v1/jobs:batch", {"jobs": jobs}, expect=201)["jobs"]
        self.assertEqual([j["namespace"] for j in out], ["x", "y"])

    def test_idempotent_repeat(self):
        key = {"Idempotency-Key": "batch-" + os.urandom(4).hex()}
        jobs = [doc("idem-%d" % i, schedules=[{"at": FAR}]) for i in range(20)]
        first = self.ok("POST", "/v1/jobs:batch", {"jobs": jobs}, headers=key, expect=201)["jobs"]
        other = [doc("idem-other-%d" % i) for i in range(3)]
        again = self.ok("POST", "/v1/jobs:batch", {"jobs": other}, headers=key, expect=200)["jobs"]
        self.assertEqual([j["id"] for j in again], [j["id"] for j in first])
        self.assertEqual(self.names("idem-other-"), set())
        # A key that made one job is not a batch's.
        single = {"Idempotency-Key": "single-" + os.urandom(4).hex()}
        self.create_job(doc("idem-single"), headers=single)
        self.assert_problem(self.api("POST", "/v1/jobs:batch", {"jobs": other}, headers=single),
                            409, "header.Idempotency-Key")

    def test_shape_refused(self):
        too_many = [doc("many-%d" % i) for i in range(1001)]
        self.assert_problem(self.api("POST", "/v1/jobs:batch", {"jobs": too_many}), 400, "jobs")
        self.assert_problem(self.api("POST", "/v1/jobs:batch", {"jobs": []}), 400, "jobs")
        self.assert_problem(self.api("POST", "/v1/jobs:batch", {}), 400, "jobs")
        self.assert_problem(self.api("POST", "/v1/jobs:batch", {"jobs": {"name": "x"}}), 400,
                            "jobs")
        self.assert_problem(self.api("POST", "/v1/jobs:batch", {"jobs": [doc("a")], "x": 1}),
                            400, "x")
        self.assertEqual(self.names("many-"), set())


if __name__ == "__main__":
    unittest.main()
