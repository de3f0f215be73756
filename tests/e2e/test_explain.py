"""Why isn't it running? (issue 9, point 4): GET /v1/jobs/{id}/explain and
GET /v1/runs/{id}/explain, and `sked jobs why` / `sked runs why`. Each test
makes the situation for real -- a paused job, a cron in the future, a long
run under overlap forbid, max_concurrency reached, a queue no worker serves,
constraints no worker meets, every worker full or draining, a worker frozen
or killed so its lease is lost, a failing job in backoff -- and checks the
reason's code, the fields it carries and that its sentence names the thing
(the label, the queue, the time, the run, the worker). Every answer is also
checked against docs/openapi.yaml by the harness."""

import json
import signal
import time
import unittest

from skedtest import SkedTestCase, parse_time, wait_until

LONG = "sleep 60"


class ExplainCase(SkedTestCase):
    def explain_job(self, job_id):
        return self.ok("GET", "/v1/jobs/%s/explain" % job_id, expect=200)

    def explain_run(self, run_id):
        return self.ok("GET", "/v1/runs/%s/explain" % run_id, expect=200)

    def codes(self, doc):
        return [r["code"] for r in doc["reasons"]]

    def reason(self, doc, code):
        """The reason of `code` in an answer; fails showing the answer."""
        for r in doc["reasons"]:
            if r["code"] == code:
                self.assertTrue(r["message"].endswith("."), r)
                return r
        self.fail("no %s reason in %s" % (code, json.dumps(doc, indent=1)))

    def wait_reason(self, get, code, timeout=15.0):
        """Polls get() (an explain answer) until it holds a `code` reason;
        returns (answer, reason)."""
        box = {}

        def check():
            box["doc"] = get()
            return any(r["code"] == code for r in box["doc"]["reasons"])

        wait_until(check, timeout, interval=0.1, msg="a %s reason" % code)
        return box["doc"], self.reason(box["doc"], code)

    def running_run(self, job_id, timeout=15.0):
        return self.wait_runs(job_id, lambda rs: any(r["state"] == "running" for r in rs),
                              timeout, "a running run of %s" % job_id)[0]

    def ghost(self, name, token=None, **fields):
        """A worker registered over the API with no process behind it: it is
        live until the worker timeout and claims only when told to."""
        body = {"name": name}
        body.update(fields)
        kw = {} if token is None else {"token": token}
        return self.ok("POST", "/v1/workers", body, expect=201, **kw)["id"]


class TestJobState(ExplainCase):
    def test_paused_then_next_fire_of_a_cron(self):
        self.start_server()
        self.start_worker()
        job = self.create_job(self.sh_job("true", name="nightly",
                                          schedules=[{"cron": "0 3 * * *"}]))
        next_at = job["schedules"][0]["next_fire_at"]
        doc = self.explain_job(job["id"])
        self.assertEqual(self.codes(doc), ["next_fire"], doc)
        r = self.reason(doc, "next_fire")
        self.assertEqual(r["at"], next_at)
        self.assertEqual(r["schedule_id"], job["schedules"][0]["id"])
        self.assertIn(next_at, r["message"])
        self.assertGreater(parse_time(r["at"]), time.time())
        self.assertEqual((doc["job_id"], doc["job_name"], doc["job_state"]),
                         (job["id"], "nightly", "active"))
        self.assertIsNone(doc["run_id"])

        self.ok("POST", "/v1/jobs/%s/pause" % job["id"], expect=200)
        doc = self.explain_job(job["id"])
        self.assertEqual(self.codes(doc), ["paused"], doc)
        self.assertEqual(doc["job_state"], "paused")
        self.assertIn("paused", self.reason(doc, "paused")["message"])

        # The CLI, by name: the reasons for people, and the answer as JSON.
        out = self.cli_ok("jobs", "why", "nightly")
        self.assertIn("job nightly (%s): paused" % job["id"], out)
        self.assertRegex(out, r"(?m)^paused\s+The job is paused")
        v = self.cli_json("jobs", "why", job["id"])
        self.assertEqual(self.codes(v), ["paused"])

    def test_deleted_exhausted_and_no_schedule(self):
        self.start_server()
        self.start_worker()
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
        once = self.create_job(self.sh_job("true", schedules=[{"at": at}]))
        now = self.create_job(self.sh_job("true"))
        self.wait_run_terminal(once["id"], timeout=15)
        self.wait_run_terminal(now["id"], timeout=15)
        doc = self.explain_job(once["id"])
        self.assertEqual(self.codes(doc), ["schedule_exhausted"], doc)
        r = self.reason(doc, "schedule_exhausted")
        self.assertEqual(parse_time(r["at"]), parse_time(at))
        self.assertIn(r["at"], r["message"])
        self.assertEqual(self.codes(self.explain_job(now["id"])), ["no_schedule"])

        self.ok("DELETE", "/v1/jobs/" + now["id"], expect=204)
        self.assert_problem(self.api("GET", "/v1/jobs/" + now["id"]), 404, "path.id")
        doc = self.explain_job(now["id"])
        self.assertEqual(doc["job_state"], "deleted")
        self.assertEqual(self.codes(doc), ["job_deleted"], doc)
        self.assertIn(self.reason(doc, "job_deleted")["at"],
                      self.reason(doc, "job_deleted")["message"])

    def test_not_yet_due_with_jitter(self):
        """A run is made a little ahead of its fire time; with jitter it is
        due later still. The run says when; the job names it as next."""
        self.start_server()
        self.start_worker()
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3))
        job = self.create_job(self.sh_job("true", schedules=[{"at": at, "jitter": "1h"}]))
        run = self.wait_runs(job["id"], lambda rs: rs, 10)[0]
        if parse_time(run["not_before"]) < time.time() + 2:
            self.skipTest("the jitter drawn was too small to look at (%s)" % run["not_before"])
        doc = self.explain_run(run["id"])
        self.assertEqual(self.codes(doc), ["not_yet_due"], doc)
        r = self.reason(doc, "not_yet_due")
        self.assertEqual(r["at"], run["not_before"])
        self.assertIn(run["not_before"], r["message"])
        self.assertIn("jitter", r["message"])
        doc = self.explain_job(job["id"])
        r = self.reason(doc, "next_fire")
        self.assertEqual((r["at"], r["run_id"]), (run["not_before"], run["id"]))


class TestRunning(ExplainCase):
    def test_running_then_finished(self):
        self.start_server()
        _, wid = self.start_worker(name="w1")
        job = self.create_job(self.sh_job(LONG))
        run = self.running_run(job["id"])
        doc, r = self.wait_reason(lambda: self.explain_run(run["id"]), "running")
        self.assertEqual(doc["run_state"], "running")
        self.assertEqual(r["worker_id"], wid)
        self.assertEqual(r["run_id"], run["id"])
        self.assertEqual(r["attempt"], 1)
        self.assertIn("w1 (%s)" % wid, r["message"])
        self.assertGreater(parse_time(r["at"]), time.time())  # the lease runs on
        self.assertIn(r["at"], r["message"])
        self.assertIn(r["since"], r["message"])
        self.assertEqual(self.codes(self.explain_job(job["id"])), ["running"])
        self.assertEqual(self.explain_job(job["id"])["running"], 1)

        self.ok("POST", "/v1/runs/%s/cancel" % run["id"], expect=200)
        self.wait_run_state(run["id"], "canceled", timeout=20)
        doc = self.explain_run(run["id"])
        self.assertEqual(self.codes(doc), ["finished"], doc)
        r = self.reason(doc, "finished")
        self.assertEqual(r["state"], "canceled")
        self.assertIn("canceled by", r["message"])
        out = self.cli_ok("runs", "why", run["id"])
        self.assertIn("run %s (canceled)" % run["id"], out)
        self.assertRegex(out, r"(?m)^finished\s+Run %s ended canceled" % run["id"])

    def test_frozen_worker_lease_expired_and_cancel_requested(self):
        """A worker frozen mid-run stops renewing: its run's lease expires
        (the reaper waits out a long grace here), and a cancel it cannot
        hear of stays requested."""
        self.start_server(lease="2s", extra=("--lease-grace", "60s"))
        w, wid = self.start_worker(name="frozen", slots=2)
        a = self.create_job(self.sh_job(LONG))
        b = self.create_job(self.sh_job(LONG))
        ra, rb = self.running_run(a["id"]), self.running_run(b["id"])
        for rid in (ra["id"], rb["id"]):
            self.wait_reason(lambda: self.explain_run(rid), "running")
        w.signal(signal.SIGSTOP)
        try:
            self.ok("POST", "/v1/runs/%s/cancel" % rb["id"], expect=200)
            doc = self.explain_run(rb["id"])
            self.assertEqual(self.codes(doc), ["cancel_requested"], doc)
            self.assertIn("canceled by", self.reason(doc, "cancel_requested")["message"])
            doc, r = self.wait_reason(lambda: self.explain_run(ra["id"]), "lease_expired", 10)
            self.assertEqual(r["worker_id"], wid)
            lease = self.run_get(ra["id"])["lease_expires_at"]
            self.assertEqual(r["at"], lease)
            self.assertIn(lease, r["message"])
            self.assertLess(parse_time(r["at"]), time.time())
            self.assertEqual(doc["run_state"], "running")
        finally:
            w.signal(signal.SIGCONT)

    def test_starting_then_awaiting_claim(self):
        """A due run no worker has asked for yet awaits a claim; claimed and
        not yet reported started, it is starting."""
        self.start_server(extra=("--confirm-within", "5s"))
        ghost = self.ghost("ghost")
        job = self.create_job(self.sh_job("true"))
        run = self.runs_of(job["id"])[0]
        doc = self.explain_job(job["id"])
        self.assertEqual(self.codes(doc), ["awaiting_claim"], doc)
        r = self.reason(doc, "awaiting_claim")
        self.assertEqual((r["run_id"], r["since"], r["queue"], r["count"]),
                         (run["id"], run["not_before"], "default", 1))
        self.assertIn(run["not_before"], r["message"])
        got = self.ok("POST", "/v1/workers/%s/claim" % ghost, {"max": 1}, expect=200)
        self.assertEqual(len(got["runs"]), 1)
        doc = self.explain_run(run["id"])
        self.assertEqual(self.codes(doc), ["starting"], doc)
        r = self.reason(doc, "starting")
        self.assertEqual(r["worker_id"], ghost)
        self.assertIn(r["at"], r["message"])  # the deadline to confirm by


class TestRetries(ExplainCase):
    def test_failing_job_in_backoff(self):
        self.start_server()
        self.start_worker()
        job = self.create_job(self.sh_job(
            "exit 3", retry={"max_attempts": 3, "initial": "1h", "max": "1h", "jitter": False}))
        run = self.wait_runs(job["id"], lambda rs: rs and rs[0]["state"] == "scheduled"
                             and rs[0]["attempt"] == 1, 15)[0]
        doc = self.explain_run(run["id"])
        self.assertEqual(self.codes(doc), ["retry_backoff"], doc)
        r = self.reason(doc, "retry_backoff")
        self.assertEqual(r["at"], run["not_before"])
        self.assertEqual(r["attempt"], 2)
        self.assertIn("exit 3", r["message"])
        self.assertIn("attempt 2 of 3", r["message"])
        self.assertIn(run["not_before"], r["message"])
        self.assertGreater(parse_time(r["at"]), time.time() + 3000)
        self.assertEqual(self.codes(self.explain_job(job["id"])), ["retry_backoff"])

    def test_killed_worker_lease_lost_retry_at(self):
        """kill -9 of the worker mid-run: the reaper takes the run back; it
        says its lease was lost on that worker and when it is retried, and
        once the worker is lost the job says no live worker serves its
        queue, naming the worker last heard from."""
        self.start_server(lease="2s", extra=("--lease-grace", "1s"))
        w, wid = self.start_worker(name="doomed")
        job = self.create_job(self.sh_job(
            LONG, retry={"max_attempts": 2, "initial": "1h", "max": "1h", "jitter": False}))
        run = self.started_run(job["id"], 2)
        w.kill9()
        back = self.wait_run_state(run["id"], "scheduled", timeout=15)
        doc = self.explain_run(run["id"])
        self.assertEqual(self.codes(doc)[0], "lease_lost", doc)
        r = self.reason(doc, "lease_lost")
        self.assertEqual(r["worker_id"], wid)
        self.assertEqual(r["at"], back["not_before"])
        self.assertEqual(r["attempt"], 2)
        self.assertIn("doomed (%s)" % wid, r["message"])
        self.assertIn(back["not_before"], r["message"])
        self.assertIn("attempt 2 of 2", r["message"])
        # The worker's heartbeats stopped: after the worker timeout (3
        # leases) no live worker serves the queue.
        doc, r = self.wait_reason(lambda: self.explain_job(job["id"]), "no_worker_for_queue", 15)
        self.assertEqual((r["queue"], r["worker_id"], r["count"]), ("default", wid, 0))
        self.assertIn("'default'", r["message"])
        self.assertIn("doomed (%s)" % wid, r["message"])
        self.assertIn("lease_lost", self.codes(doc))


class TestJobLimits(ExplainCase):
    def test_overlap_forbid_names_the_running_run(self):
        self.start_server()
        self.start_worker(slots=2)
        job = self.create_job(self.sh_job(LONG, overlap="forbid"))
        first = self.running_run(job["id"])
        doc = self.explain_job(job["id"])
        r = self.reason(doc, "overlap_forbid")
        self.assertEqual(r["run_id"], first["id"])
        self.assertIn(first["id"], r["message"])
        self.assertIn("skipped", r["message"])
        # A run that comes due meanwhile is skipped, and says so.
        second = self.ok("POST", "/v1/jobs/%s/trigger" % job["id"], expect=201)
        sid = second["id"]
        self.wait_run_state(sid, "skipped", timeout=15)
        r = self.reason(self.explain_run(sid), "finished")
        self.assertEqual(r["state"], "skipped")
        self.assertIn("overlap", r["message"])

    def test_max_concurrency_reached(self):
        self.start_server()
        self.start_worker(slots=3)
        job = self.create_job(self.sh_job(LONG, max_concurrency=1))
        self.running_run(job["id"])
        second = self.ok("POST", "/v1/jobs/%s/trigger" % job["id"], expect=201)
        sid = second["id"]
        doc, r = self.wait_reason(lambda: self.explain_job(job["id"]), "max_concurrency")
        self.assertEqual((r["count"], r["limit"]), (1, 1))
        self.assertIn("1 of at most 1", r["message"])
        doc = self.explain_run(sid)
        self.assertEqual(doc["run_state"], "pending")
        self.assertEqual(self.codes(doc), ["max_concurrency"], doc)


class TestPool(ExplainCase):
    def test_queue_no_worker_serves(self):
        self.start_server()
        self.start_worker(name="cpu-box")  # queue default
        job = self.create_job(self.sh_job("true", name="train", queue="gpu"))
        doc = self.explain_job(job["id"])
        self.assertEqual(self.codes(doc), ["no_worker_for_queue"], doc)
        r = self.reason(doc, "no_worker_for_queue")
        self.assertEqual((r["queue"], r["count"]), ("gpu", 1))
        self.assertIn("'gpu'", r["message"])
        self.assertIn("1 live worker serves other queues", r["message"])
        run = self.runs_of(job["id"])[0]
        self.assertEqual(self.codes(self.explain_run(run["id"])), ["no_worker_for_queue"])
        out = self.cli_ok("jobs", "why", "train")
        self.assertRegex(out, r"(?m)^no_worker_for_queue\s+No live worker serves queue 'gpu'")

    def test_constraints_no_worker_meets_name_the_label(self):
        self.start_server()
        self.start_worker(labels="disk=hdd,zone=a")
        job = self.create_job(self.sh_job("true", constraints={"disk": "ssd", "zone": "a"}))
        doc = self.explain_job(job["id"])
        self.assertEqual(self.codes(doc), ["no_worker_labels"], doc)
        r = self.reason(doc, "no_worker_labels")
        self.assertEqual((r["label"], r["labels"], r["queue"]), ("disk=ssd", ["disk=ssd"], "default"))
        self.assertIn("disk=ssd", r["message"])

    def test_every_matching_worker_full(self):
        self.start_server()
        _, wid = self.start_worker(name="busy", slots=1)
        self.running_run(self.create_job(self.sh_job(LONG))["id"])
        job = self.create_job(self.sh_job("true"))
        run = self.runs_of(job["id"])[0]
        doc, r = self.wait_reason(lambda: self.explain_run(run["id"]), "workers_full")
        self.assertEqual((r["count"], r["limit"], r["worker_id"]), (1, 1, wid))
        self.assertIn("1 of 1 slots", r["message"])
        self.assertIn("busy", r["message"])
        self.assertEqual(self.codes(self.explain_job(job["id"])), ["workers_full"])

    def test_matching_workers_draining(self):
        self.start_server()
        a, b = self.ghost("ga"), self.ghost("gb")
        for w in (a, b):
            self.ok("POST", "/v1/workers/%s/drain" % w, expect=200)
        job = self.create_job(self.sh_job("true"))
        doc = self.explain_job(job["id"])
        self.assertEqual(self.codes(doc), ["workers_draining"], doc)
        r = self.reason(doc, "workers_draining")
        self.assertEqual(r["count"], 2)
        self.assertIn("ga", r["message"])
        self.assertIn("gb", r["message"])

    def test_worker_in_another_namespace(self):
        self.start_server()
        tb = self.ok("POST", "/v1/tokens", {"name": "wb", "role": "worker",
                                             "namespaces": ["team-b"]}, expect=201)["token"]
        wb = self.ghost("wb", token=tb)
        job = self.create_job(self.sh_job("true", namespace="team-a"))
        doc = self.explain_job(job["id"])
        self.assertEqual(self.codes(doc), ["worker_other_namespace"], doc)
        r = self.reason(doc, "worker_other_namespace")
        self.assertEqual((r["namespace"], r["worker_id"], r["queue"]), ("team-a", wb, "default"))
        self.assertIn("(wb)", r["message"])
        self.assertNotIn("team-b", json.dumps(doc))  # another team's namespace stays unnamed
        self.assertIn("'team-a'", r["message"])


class TestBadInput(ExplainCase):
    def test_unknown_and_malformed_ids(self):
        self.start_server()
        for kind in ("jobs", "runs"):
            for bad in ("not-an-id", "%s_01ZZZZZZZZZZZZZZZZZZZZZZZZ" % kind[:3]):
                v = self.assert_problem(self.api("GET", "/v1/%s/%s/explain" % (kind, bad)),
                                        404, "path.id")
                self.assertTrue(v.get("detail"), v)
        self.assert_problem(self.api("GET", "/v1/jobs/job_x/explain", token=None), 401)
        rc, out, err = self.cli("runs", "why", "run_01ZZZZZZZZZZZZZZZZZZZZZZZZ")
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("404", err)
        self.assertEqual(out, "")

    def test_help(self):
        for cmd in (["jobs", "why"], ["runs", "why"]):
            rc, out, err = self.cli(*cmd, "--help")
            self.assertEqual(rc, 0, err)
            self.assertIn("usage: sked %s" % " ".join(cmd), out)
        rc, out, err = self.cli("jobs", "why")
        self.assertEqual(rc, 2)
        self.assertIn("JOB", err)


if __name__ == "__main__":
    unittest.main()
