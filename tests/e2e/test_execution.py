"""Execution end to end: jobs really run on a worker, on time, with the
environment, logs, retries, timeouts, cancels, pauses and overlap rules the
contract promises. Jobs append stamps to files in the temp dir; the tests
assert on those effects as well as on the API's account of them."""

import time
import unittest

from skedtest import SkedTestCase, TERMINAL, fmt_time, parse_time, pid_alive, read_lines, wait_until


def stamps(path):
    """Lines 'A B C ...' -> lists of fields."""
    return [l.split() for l in read_lines(path)]


class TestExecution(SkedTestCase):
    def setUp(self):
        super().setUp()
        # A short heartbeat so cancels reach the worker quickly.
        self.start_dev(slots=4, heartbeat="500ms")

    def test_one_time_job_env_and_log(self):
        f = self.path("env.txt")
        job = self.create_job(self.sh_job(
            'echo "$SKED_RUN_ID|$SKED_ATTEMPT|$SKED_FIRE_TIME|$SKED_JOB_ID" >> %s; '
            'echo hello-stdout; echo hello-stderr >&2' % f))
        run = self.wait_run_terminal(job["id"])
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(run["exit_code"], 0)
        self.assertEqual(run["attempt"], 1)
        self.assertIsNone(run["schedule_id"])
        self.assertEqual(len(run["attempts"]), 1, run)
        a = run["attempts"][0]
        self.assertEqual(a["outcome"], "succeeded")
        self.assertRegex(a["worker_id"], r"^wrk_")
        self.assertLessEqual(parse_time(a["started_at"]), parse_time(a["finished_at"]))

        lines = read_lines(f)
        self.assertEqual(len(lines), 1, "ran more than once: %r" % lines)
        run_id, attempt, fire_time, job_id = lines[0].split("|")
        self.assertEqual(run_id, run["id"])
        self.assertEqual(attempt, "1")
        self.assertEqual(job_id, job["id"])
        self.assertAlmostEqual(parse_time(fire_time), parse_time(run["fire_time"]), places=2)

        st, h, log = self.api("GET", "/v1/runs/%s/log" % run["id"])
        self.assertEqual(st, 200, log)
        self.assertTrue((h.get("Content-Type") or "").startswith("text/plain"))
        self.assertIn("hello-stdout", log)
        self.assertIn("hello-stderr", log)
        self.assertGreater(run["log_bytes"], 0)
        self.assertEqual(len(self.runs_of(job["id"])), 1)

        # The job shows its last run.
        got = self.ok("GET", "/v1/jobs/" + job["id"], expect=200)
        self.assertEqual(got["last_run"]["id"], run["id"])

    def test_exec_failure_and_exit_code(self):
        job = self.create_job({"command": ["/nonexistent/binary-xyz"]})
        run = self.wait_run_terminal(job["id"])
        self.assertEqual(run["state"], "failed", run)
        self.assertIn("exec", (run["reason"] or "") + str(run["attempts"][0].get("reason")))
        job2 = self.create_job(self.sh_job("exit 3"))
        run2 = self.wait_run_terminal(job2["id"])
        self.assertEqual(run2["state"], "failed")
        self.assertEqual(run2["exit_code"], 3)

    def test_at_runs_once_on_time(self):
        f = self.path("at.txt")
        at = time.time() + 1.5
        job = self.create_job(self.sh_job('echo "$SKED_RUN_ID $(date +%%s%%N)" >> %s' % f,
                                          schedules=[{"at": fmt_time(at)}]))
        run = self.wait_run_terminal(job["id"], timeout=15)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertAlmostEqual(parse_time(run["fire_time"]), at, delta=0.002)
        lines = stamps(f)
        self.assertEqual(len(lines), 1, lines)
        started = int(lines[0][1]) / 1e9
        self.assertGreaterEqual(started, at - 0.05, "ran before its time")
        self.assertLess(started, at + 3, "ran late")
        # An exhausted `at` never fires again.
        sch = self.ok("GET", "/v1/jobs/" + job["id"], expect=200)["schedules"][0]
        self.assertIsNone(sch["next_fire_at"])
        self.assertEqual(len(self.runs_of(job["id"])), 1)

    def test_every_second(self):
        f = self.path("every.txt")
        job = self.create_job(self.sh_job('echo "$SKED_RUN_ID $SKED_FIRE_TIME" >> %s' % f,
                                          schedules=[{"every": "1s"}]))
        t0 = time.time()
        runs = self.wait_runs(job["id"], lambda rs: sum(r["state"] == "succeeded" for r in rs) >= 4,
                              timeout=15)
        elapsed = time.time() - t0
        self.ok("POST", "/v1/jobs/%s/pause" % job["id"], expect=200)
        done = [r for r in runs if r["state"] == "succeeded"]
        fires = sorted(parse_time(r["fire_time"]) for r in runs)
        self.assertEqual(len(fires), len(set(fires)), "duplicate fire times")
        for a, b in zip(fires, fires[1:]):
            self.assertAlmostEqual(b - a, 1.0, delta=0.01)
        # ~1 per second: 4 runs took at least 3 s and not much more than 5.
        self.assertGreaterEqual(elapsed, 2.5)
        self.assertLess(elapsed, 9)
        ran = {l.split()[0] for l in read_lines(f)}
        self.assertTrue({r["id"] for r in done} <= ran)

    def test_cron_with_seconds_no_duplicates(self):
        f = self.path("cron.txt")
        job = self.create_job(self.sh_job('echo "$SKED_RUN_ID $SKED_FIRE_TIME" >> %s' % f,
                                          schedules=[{"cron": "* * * * * *"}]))
        runs = self.wait_runs(job["id"], lambda rs: sum(r["state"] == "succeeded" for r in rs) >= 5,
                              timeout=15)
        self.ok("POST", "/v1/jobs/%s/pause" % job["id"], expect=200)
        fires = sorted(parse_time(r["fire_time"]) for r in runs)
        self.assertEqual(len(fires), len(set(fires)), "duplicate fire times")
        for t in fires:
            self.assertEqual(t, int(t), "fire time not on a whole second")
        for a, b in zip(fires, fires[1:]):
            self.assertEqual(b - a, 1, "a second was missed or doubled: %r" % fires)
        # Each run executed once (the stamps name each run id once).
        ids = [l.split()[0] for l in read_lines(f)]
        self.assertEqual(len(ids), len(set(ids)), "a run executed twice")
        fire_by_run = {r["id"]: r["fire_time"] for r in runs}
        for l in read_lines(f):
            rid, ft = l.split()
            if rid in fire_by_run:
                self.assertEqual(parse_time(ft), parse_time(fire_by_run[rid]))

    def test_retries_with_backoff(self):
        f = self.path("retry.txt")
        job = self.create_job(self.sh_job(
            'echo "$SKED_ATTEMPT $(date +%%s%%N)" >> %s; [ "$SKED_ATTEMPT" -ge 3 ]' % f,
            retry={"max_attempts": 3, "initial": "100ms", "multiplier": 4, "max": "10s",
                   "jitter": False}))
        run = self.wait_run_terminal(job["id"], timeout=20)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(run["attempt"], 3)
        self.assertEqual([a["outcome"] for a in run["attempts"]], ["failed", "failed", "succeeded"])
        self.assertEqual([a["n"] for a in run["attempts"]], [1, 2, 3])
        lines = stamps(f)
        self.assertEqual([l[0] for l in lines], ["1", "2", "3"])
        t = [int(l[1]) / 1e9 for l in lines]
        gap1, gap2 = t[1] - t[0], t[2] - t[1]
        self.assertGreaterEqual(gap1, 0.09, "retried before the backoff")
        self.assertGreaterEqual(gap2, 0.38, "second backoff not 4x the first")
        self.assertGreater(gap2, gap1, "backoff did not increase")
        self.assertLess(gap2, 5)

    def test_retries_exhausted_fail(self):
        job = self.create_job(self.sh_job(
            "exit 7", retry={"max_attempts": 2, "initial": "50ms", "jitter": False}))
        run = self.wait_run_terminal(job["id"], timeout=15)
        self.assertEqual(run["state"], "failed", run)
        self.assertEqual(run["attempt"], 2)
        self.assertEqual(run["exit_code"], 7)
        self.assertEqual(len(run["attempts"]), 2)

    def _pids(self, *names):
        paths = [self.path(n) for n in names]
        wait_until(lambda: all(read_lines(p) for p in paths), 15, msg="pid files %r" % (names,))
        return [int(read_lines(p)[0]) for p in paths]

    def test_timeout_kills_process_group(self):
        job = self.create_job(self.sh_job(
            "echo $$ > %s; sleep 30 & echo $! > %s; wait" % (self.path("p"), self.path("c")),
            timeout="1s"))
        shell, child = self._pids("p", "c")
        run = self.wait_run_terminal(job["id"], timeout=15)
        self.assertEqual(run["state"], "failed", run)
        self.assertEqual(run["attempts"][0]["outcome"], "timeout", run)
        self.assertIn("timeout", (run["reason"] or "").lower())
        self.assertLess(parse_time(run["finished_at"]) - parse_time(run["started_at"]), 8)
        wait_until(lambda: not pid_alive(shell) and not pid_alive(child), 5,
                   msg="the timed-out shell %d and its child %d to be gone" % (shell, child))

    def test_cancel_running(self):
        job = self.create_job(self.sh_job(
            "echo $$ > %s; sleep 30 & echo $! > %s; wait" % (self.path("p"), self.path("c"))))
        shell, child = self._pids("p", "c")
        run_id = self.runs_of(job["id"])[0]["id"]
        self.assertEqual(self.run_get(run_id)["state"], "running")
        t0 = time.monotonic()
        st, _, v = self.api("POST", "/v1/runs/%s/cancel" % run_id)
        self.assertEqual(st, 200, v)
        run = self.wait_run_state(run_id, "canceled", timeout=10)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(run["attempts"][-1]["outcome"], "canceled", run)
        wait_until(lambda: not pid_alive(shell) and not pid_alive(child), 5,
                   msg="the canceled shell %d and its child %d to be gone" % (shell, child))
        # Canceling a terminal run conflicts.
        st, _, v = self.api("POST", "/v1/runs/%s/cancel" % run_id)
        self.assertEqual(st, 409, v)

    def test_overlap_forbid(self):
        f = self.path("overlap.txt")
        job = self.create_job(self.sh_job(
            'echo "$SKED_RUN_ID start $(date +%%s%%N)" >> %s; sleep 2.2; '
            'echo "$SKED_RUN_ID end $(date +%%s%%N)" >> %s' % (f, f),
            schedules=[{"every": "1s"}], overlap="forbid"))

        def enough(rs):
            skipped = [r for r in rs if r["state"] == "skipped"]
            return len(skipped) >= 2 and sum(r["state"] == "succeeded" for r in rs) >= 2

        runs = self.wait_runs(job["id"], enough, timeout=20)
        self.ok("POST", "/v1/jobs/%s/pause" % job["id"], expect=200)
        for r in runs:
            if r["state"] == "skipped":
                self.assertIn("overlap", (r["reason"] or "").lower(), r)
        # Executions never overlapped in time.
        spans = {}
        for rid, what, ns in stamps(f):
            spans.setdefault(rid, {})[what] = int(ns) / 1e9
        done = sorted((s["start"], s["end"]) for s in spans.values() if "end" in s)
        self.assertGreaterEqual(len(done), 2)
        for (s1, e1), (s2, e2) in zip(done, done[1:]):
            self.assertLessEqual(e1, s2, "two runs of a forbid job overlapped")

    def test_pause_resume_misfire_run_once(self):
        f = self.path("pause.txt")
        job = self.create_job(self.sh_job('echo "$SKED_RUN_ID $(date +%%s%%N)" >> %s' % f,
                                          schedules=[{"every": "1s"}], misfire="run_once"))
        self.wait_runs(job["id"], lambda rs: any(r["state"] == "succeeded" for r in rs))
        j = self.ok("POST", "/v1/jobs/%s/pause" % job["id"], expect=200)
        self.assertEqual(j["state"], "paused")
        t_pause = time.time()
        # Observe a paused stretch longer than the misfire grace (5 s).
        wait_until(lambda: time.time() - t_pause >= 10.5, 13, msg="pause window")
        started_while_paused = [int(ns) / 1e9 for _, ns in stamps(f)
                                if t_pause + 0.5 < int(ns) / 1e9]
        self.assertEqual(started_while_paused, [], "a paused job ran")
        t_resume = time.time()
        j = self.ok("POST", "/v1/jobs/%s/resume" % job["id"], expect=200)
        self.assertEqual(j["state"], "active")

        def settled(_):
            rs = self.runs_with_misses(job["id"], 1)
            win = [r for r in rs if t_pause + 1 < parse_time(r["fire_time"]) < t_resume]
            return (any(r["state"] == "skipped" for r in win)
                    and any(r["state"] == "succeeded" for r in win)
                    and all(r["state"] in TERMINAL for r in win))

        # The misses of the paused stretch are in the job's ledger, not runs.
        self.wait_runs(job["id"], settled, timeout=15)
        self.ok("POST", "/v1/jobs/%s/pause" % job["id"], expect=200)
        runs = self.runs_with_misses(job["id"], 1)
        fires = sorted(parse_time(r["fire_time"]) for r in runs)
        self.assertEqual(len(fires), len(set(fires)), "duplicate fire times")
        for a, b in zip(fires, fires[1:]):
            self.assertAlmostEqual(b - a, 1.0, delta=0.01, msg="a fire time left no trace")
        win = [r for r in runs if t_pause + 1 < parse_time(r["fire_time"]) < t_resume]
        old = [r for r in win if parse_time(r["fire_time"]) < t_resume - 7]
        self.assertGreaterEqual(len(old), 2)
        for r in old:
            self.assertEqual(r["state"], "skipped", r)
        for r in win:
            if r["state"] == "skipped":
                self.assertIn("misfire", (r["reason"] or "").lower(), r)
        ran = [r for r in win if r["state"] != "skipped"]
        # run_once: of the misfired stretch only the latest runs; later ones
        # were within the grace and run as usual.
        self.assertLessEqual(len(ran), 7, ran)
        for r in ran:
            self.assertGreaterEqual(parse_time(r["started_at"]), t_resume - 0.5)


class TestPriority(SkedTestCase):
    def test_higher_priority_claimed_first(self):
        self.start_server()
        f = self.path("order.txt")
        prios = [0, 10, -5, 50, 20, 10]
        for i, p in enumerate(prios):
            self.create_job(self.sh_job('echo "%d %d" >> %s' % (p, i, f), priority=p))
        self.start_worker(slots=1)
        wait_until(lambda: len(read_lines(f)) == len(prios), 20, msg="all jobs ran")
        got = [int(l.split()[0]) for l in read_lines(f)]
        self.assertEqual(got, sorted(prios, reverse=True))
        # Equal priorities go by fire time (first submitted first).
        tens = [int(l.split()[1]) for l in read_lines(f) if l.startswith("10 ")]
        self.assertEqual(tens, [1, 5])


if __name__ == "__main__":
    unittest.main()
