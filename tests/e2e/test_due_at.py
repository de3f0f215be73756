"""An `at` that is already due (issue 7, point 4): it was accepted with
next_fire_at null and never ran, and left no trace, under every misfire
policy. A client whose clock is a second fast lost its job. Now it is a
misfire like any other: the answer shows it due (next_fire_at in the past,
beside the job's misfire policy), run_once runs it now, skip records it in the
job's missed-fire ledger with its reason."""

import time
import unittest

from skedtest import SkedTestCase, fmt_time, wait_until


class TestDueAt(SkedTestCase):
    def test_due_at_runs_or_is_recorded(self):
        self.start_dev(slots=2)
        now = time.time()
        cases = [
            (now - 1, "run_once", "succeeded"),
            (now - 3600, "run_once", "succeeded"),
            (0, "run_once", "succeeded"),
            (now - 3600, "skip", None),  # a miss: in the ledger, not a run
        ]
        jobs = []
        for at, policy, want in cases:
            job = self.create_job(self.sh_job("true", misfire=policy,
                                              schedules=[{"at": fmt_time(at)}]))
            s = job["schedules"][0]
            self.assertIsNotNone(s["next_fire_at"], job)
            self.assertEqual(job["misfire"], policy)
            jobs.append((job, want))
        for job, want in jobs:
            if want is None:
                ledger = wait_until(lambda: self.misses_of(job["id"]), 15, msg="the miss")
                self.assertEqual(len(ledger), 1, ledger)
                self.assertEqual(ledger[0]["count"], 1)
                self.assertEqual(ledger[0]["first"], job["schedules"][0]["next_fire_at"])
                self.assertIn("misfire", ledger[0]["reason"])
                self.assertEqual(self.runs_of(job["id"]), [])
                continue
            run = self.wait_run_terminal(job["id"], timeout=15)
            self.assertEqual(run["state"], want, run)
            self.assertEqual(len(self.runs_of(job["id"])), 1)
            self.assertEqual(self.misses_of(job["id"]), [])


if __name__ == "__main__":
    unittest.main()
