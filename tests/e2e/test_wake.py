"""Many idle workers, one new run (issue 13, point 7). Parked claims wait in
line: a new run wakes one of them, not all (no thundering herd), and a
woken claim that cannot take the run hands the wake-up on, so the worker
whose labels match gets it even when it parked last. The workers here are
simulated by the test itself, speaking the worker protocol over HTTP."""

import re
import threading
import time
import unittest

from skedtest import SkedTestCase, wait_until


class Claim(threading.Thread):
    """One parked claim: POST /v1/workers/{id}/claim, answered later."""

    def __init__(self, case, wid, wait):
        super().__init__(daemon=True)
        self.case, self.wid, self.wait = case, wid, wait
        self.status = self.value = None
        self.sent = self.answered = None

    def run(self):
        self.sent = time.monotonic()
        try:
            self.status, _, self.value = self.case.api(
                "POST", "/v1/workers/%s/claim" % self.wid,
                {"max": 1, "wait": "%ds" % self.wait}, timeout=self.wait + 30)
        finally:
            self.answered = time.monotonic()

    def runs(self):
        return self.value["runs"] if self.status == 200 else None


class TestWake(SkedTestCase):
    def metrics(self):
        st, _, text = self.api("GET", "/metrics")
        self.assertEqual(st, 200)
        out = {}
        for m in re.finditer(r'^(sked_http_waiting|sked_http_waits_resumed_total\{by="(\w+)"\}) '
                             r'(\d+)$', text, re.M):
            out[m.group(2) or "waiting"] = int(m.group(3))
        return out

    def register(self, name, labels=None):
        body = {"name": name}
        if labels:
            body["labels"] = labels
        return self.ok("POST", "/v1/workers", body, expect=201)["id"]

    def park(self, wids, wait):
        """Parks one claim per worker; returns the threads once the server
        holds every one of them (and whatever waited before)."""
        before = self.metrics()["waiting"]
        claims = [Claim(self, wid, wait) for wid in wids]
        for c in claims:
            c.start()
        wait_until(lambda: self.metrics()["waiting"] >= before + len(claims), timeout=20,
                   msg="the claims did not all park")
        return claims

    def finish(self, wid, run):
        """Confirms and completes a claimed run, as a worker does."""
        self.ok("POST", "/v1/workers/%s/heartbeat" % wid,
                {"runs": [{"run_id": run["run_id"], "fence": run["fence"], "started": True}]})
        self.ok("POST", "/v1/runs/%s/attempts/%d/complete" % (run["run_id"], run["attempt"]),
                {"fence": run["fence"], "outcome": "succeeded", "exit_code": 0})

    def test_one_new_run_wakes_one_of_fifty(self):
        self.start_server()
        wids = [self.register("idle-%d" % i) for i in range(50)]
        # Long enough that no parked claim reaches its deadline before m1 is
        # read, however slowly a loaded machine gets there (with 8 s, one
        # did under ctest -j2: 48 waiting, not 49).
        wait = 20
        claims = self.park(wids, wait)
        m0 = self.metrics()
        job = self.create_job(self.sh_job("true"))
        wait_until(lambda: any(c.answered for c in claims), timeout=15,
                   msg="no parked claim was answered with the new run")
        got = [c for c in claims if c.answered]
        self.assertEqual(len(got), 1, "one new run answered one parked claim")
        runs = got[0].runs()
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["job_id"], job["id"])
        self.finish(got[0].wid, runs[0])
        self.wait_run_terminal(job["id"])
        m1 = self.metrics()
        # The run woke one claim, and its confirmation and completion (store
        # changes too) one each; a herd would have resumed all 50, each time.
        resumed = (m1["wake"] + m1["pass"]) - (m0["wake"] + m0["pass"])
        self.assertLessEqual(resumed, 6, "parked claims resumed for one new run")
        self.assertEqual(m1["waiting"], 49, "the other claims stay parked")
        for c in claims:
            c.join(wait + 30)
        for c in claims:
            if c is got[0]:
                continue
            self.assertEqual(c.runs(), [], "the others answer empty")
            self.assertGreaterEqual(c.answered - c.sent, wait - 0.5,
                                    "the others answer only at their deadline")

    def test_the_matching_worker_gets_the_run_though_it_parked_last(self):
        self.start_server()
        others = [self.register("plain-%d" % i) for i in range(20)]
        gpu = self.register("gpu", labels={"gpu": "yes"})
        wait = 10
        claims = self.park(others, wait)
        mine = self.park([gpu], 30)[0]
        m0 = self.metrics()
        job = self.create_job(self.sh_job("true", constraints={"gpu": "yes"}))
        wait_until(lambda: mine.answered, timeout=20,
                   msg="the worker with the label was not handed the run")
        runs = mine.runs()
        self.assertEqual(len(runs), 1)
        self.assertEqual(runs[0]["job_id"], job["id"])
        # Woken by the wake-up passed along the line, not by its own
        # deadline (30 s away), and before the others' waits ran out.
        self.assertLess(mine.answered - mine.sent, 25)
        self.assertFalse(any(c.answered for c in claims),
                         "the workers without the label are still parked")
        m1 = self.metrics()
        self.assertGreaterEqual(m1["pass"] - m0["pass"], 1, "the wake-up was passed on")
        self.finish(gpu, runs[0])
        self.wait_run_terminal(job["id"])
        for c in claims:
            c.join(wait + 30)
            self.assertEqual(c.runs(), [])


if __name__ == "__main__":
    unittest.main()
