"""A frozen worker must not let its attempt overlap the next one (DESIGN §5,
promise 4; issue 7, point 8).

SIGSTOP of a worker's main process freezes every thread of the worker —
heartbeats and the supervisor that self-fences — but not its jobs, which
live in sessions of their own: the shape of a GC-like stall, a debugger, a
swap storm or a stuck system call. The server re-queues the run after lease +
grace and another worker starts attempt 2. The frozen worker's watcher
process, which holds each attempt's lease deadline, must have killed
attempt 1's whole process group before that. The test polls attempt 1's
processes through /proc while the worker is frozen and measures the overlap
(zero or less is the promise), then thaws the worker and checks that it
recovers and runs work again.
"""

import signal
import sys
import time
import unittest

from skedtest import SkedTestCase, SLOW, TERMINAL, parse_time, pid_alive, read_lines, wait_until

LEASE_S = 5
HOLD_S = 3.0  # keep the worker frozen this long after attempt 2 began
POLL_S = 0.02


class TestFreeze(SkedTestCase):
    def start_pair(self):
        """Two one-slot workers; each also serves a queue named after itself
        so a job can be sent to one of them."""
        ws = {}
        for name in ("w1", "w2"):
            proc, wid = self.start_worker(name=name, queues="default," + name)
            ws[wid] = (name, proc)
        return ws

    def test_frozen_worker_attempt_dies_before_next(self):
        self.start_server(lease="%ds" % LEASE_S)
        workers = self.start_pair()
        f = self.path("stamps.txt")
        job = self.create_job(self.sh_job(
            'echo "start $SKED_ATTEMPT $$ $(date +%%s.%%N)" >> %(f)s; '
            'if [ "$SKED_ATTEMPT" = 1 ]; then sleep 120 & echo $! > %(c)s; wait; '
            'else sleep 1; fi; '
            'echo "end $SKED_ATTEMPT $$ $(date +%%s.%%N)" >> %(f)s'
            % {"f": f, "c": self.path("c1")},
            retry={"max_attempts": 3, "initial": "100ms", "jitter": False}))

        def starts():
            return {l.split()[1]: l.split() for l in read_lines(f) if l.startswith("start ")}

        wait_until(lambda: "1" in starts() and read_lines(self.path("c1")), 15,
                   msg="attempt 1 to start")
        shell = int(starts()["1"][2])
        child = int(read_lines(self.path("c1"))[0])
        run = self.runs_of(job["id"])[0]
        self.assertEqual(run["state"], "running", run)
        victim = run["worker_id"]
        self.assertIn(victim, workers)
        vname, vproc = workers[victim]
        survivor = [w for w in workers if w != victim][0]

        # Freeze the worker's main process only: its watcher and its jobs
        # run on. Poll attempt 1's two processes until attempt 2 has run
        # for HOLD_S (far past lease + grace), within a hard bound.
        t_stop = time.time()
        vproc.signal(signal.SIGSTOP)
        last_alive = t_stop  # the last instant attempt 1 was seen alive
        first_dead = None
        start2 = None
        bound = time.monotonic() + 40 * SLOW
        try:
            while time.monotonic() < bound:
                now = time.time()
                if pid_alive(shell) or pid_alive(child):
                    last_alive = now
                elif first_dead is None:
                    first_dead = now
                if start2 is None and "2" in starts():
                    start2 = float(starts()["2"][3])
                if start2 is not None and now > start2 + HOLD_S:
                    break
                time.sleep(POLL_S)
        finally:
            vproc.signal(signal.SIGCONT)
        t_cont = time.time()
        self.assertIsNotNone(start2, "attempt 2 never started while the worker was frozen")
        overlap = last_alive - start2
        sys.stderr.write(
            "\nfreeze: stopped %.1fs; attempt 1 died %.2fs after the stop; attempt 2 began "
            "%.2fs after the stop; overlap %.2fs (negative: none)\n"
            % (t_cont - t_stop, (first_dead or t_cont) - t_stop, start2 - t_stop, overlap))
        self.assertIsNotNone(first_dead, "attempt 1 (pids %d, %d) outlived the freeze"
                             % (shell, child))
        self.assertLess(overlap, 0, "attempt 1 was still alive %.2fs after attempt 2 began"
                        % overlap)
        # Attempt 1 died of the fence, not because it had run its course.
        self.assertNotIn("1", {l.split()[1] for l in read_lines(f) if l.startswith("end ")})

        # The frozen worker reported nothing: attempt 1 is lost, attempt 2
        # ran to success on the other worker, after attempt 1 had died.
        run = self.wait_run_state(run["id"], TERMINAL, timeout=20)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual([(a["worker_id"], a["outcome"]) for a in run["attempts"]],
                         [(victim, "lost"), (survivor, "succeeded")], run)
        self.assertGreaterEqual(parse_time(run["attempts"][1]["started_at"]), first_dead - 0.05)

        # The thawed worker recovers: it runs a job sent to its own queue,
        # which no other worker serves (it may have re-registered under a
        # new id if the server had marked it lost meanwhile).
        g = self.path("after.txt")
        job2 = self.create_job(self.sh_job('echo "$SKED_ATTEMPT" >> %s' % g, queue=vname))
        run2 = self.wait_run_terminal(job2["id"], timeout=30)
        self.assertEqual(run2["state"], "succeeded", run2)
        self.assertEqual(read_lines(g), ["1"])
        self.assertTrue(vproc.alive(), "the thawed worker exited:\n" + vproc.stderr_text()[-3000:])


if __name__ == "__main__":
    unittest.main()
