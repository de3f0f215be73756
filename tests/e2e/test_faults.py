"""Faults end to end: restarts, kill -9 of workers and servers, drains. Each
test breaks something on purpose and checks a promise of DESIGN §5: no
silent misses, attempts never overlap, nothing acknowledged is lost, a
drained worker finishes its work and takes no more."""

import signal
import threading
import time
import unittest

from skedtest import (SkedTestCase, TERMINAL, fmt_time, parse_time, pid_alive, read_lines,
                      wait_until)


class TestFaults(SkedTestCase):
    def test_misfire_after_restart(self):
        data = self.path("data")
        f = self.path("cron.txt")
        self.start_dev(data_dir=data, slots=2, name="dev1")
        job = self.create_job(self.sh_job('echo "$SKED_RUN_ID $(date +%%s%%N)" >> %s' % f,
                                          schedules=[{"cron": "* * * * * *"}], misfire="run_once"))
        self.wait_runs(job["id"], lambda rs: sum(r["state"] == "succeeded" for r in rs) >= 2)
        self.assertEqual(self.srv.proc.stop(), 0, "dev did not exit cleanly on SIGTERM")
        t_down = time.time()
        # The server stays down longer than the misfire grace (5 s).
        wait_until(lambda: time.time() - t_down >= 10.5, 13, msg="downtime")
        ran_while_down = [l for l in read_lines(f) if int(l.split()[1]) / 1e9 > t_down + 0.5]
        self.assertEqual(ran_while_down, [])
        t_up = time.time()
        self.start_dev(data_dir=data, slots=2, name="dev2")

        def settled(_):
            rs = self.runs_with_misses(job["id"], 1)
            win = [r for r in rs if t_down + 1.5 < parse_time(r["fire_time"]) < t_up]
            return (any(r["state"] == "skipped" for r in win)
                    and any(r["state"] == "succeeded" for r in win)
                    and all(r["state"] in TERMINAL for r in win))

        self.wait_runs(job["id"], settled, timeout=20)
        runs = self.runs_with_misses(job["id"], 1)
        self.ok("POST", "/v1/jobs/%s/pause" % job["id"], expect=200)
        # The outage's misses are one ledger entry, and "why not at T?"
        # finds it for a T inside the outage.
        ledger = self.list_all("/v1/jobs/%s/misses" % job["id"])
        self.assertEqual(len(ledger), 1, ledger)
        t_mid = fmt_time(parse_time(ledger[0]["first"]) + 1)
        why = self.ok("GET", "/v1/jobs/%s/misses?at=%s" % (job["id"], t_mid), expect=200)
        self.assertEqual(why["items"], ledger)
        # The CLI asks the same question.
        self.assertEqual(self.cli_json("jobs", "misses", job["id"], "--at", t_mid)["items"],
                         ledger)
        table = self.cli_ok("jobs", "misses", job["id"])
        self.assertIn(ledger[0]["reason"], table)
        fires = sorted(parse_time(r["fire_time"]) for r in runs)
        self.assertEqual(len(fires), len(set(fires)), "duplicate fire times")
        for a, b in zip(fires, fires[1:]):
            self.assertEqual(b - a, 1, "a fire time left no trace: %r" % fires)
        win = [r for r in runs if t_down + 1.5 < parse_time(r["fire_time"]) < t_up]
        old = [r for r in win if parse_time(r["fire_time"]) < t_up - 7]
        self.assertGreaterEqual(len(old), 1)
        for r in old:
            self.assertEqual(r["state"], "skipped", r)
        for r in win:
            if r["state"] == "skipped":
                self.assertIn("misfire", (r["reason"] or "").lower(), r)
        ran = [r for r in win if r["state"] != "skipped"]
        self.assertGreaterEqual(len(ran), 1)
        self.assertLessEqual(len(ran), 7, ran)

    def test_worker_kill9_mid_run(self):
        self.start_server(lease="3s", heartbeat="500ms")
        w1, id1 = self.start_worker(name="w1")
        w2, id2 = self.start_worker(name="w2")
        by_id = {id1: w1, id2: w2}
        f = self.path("stamps.txt")
        job = self.create_job(self.sh_job(
            'echo "$SKED_ATTEMPT start $(date +%%s%%N)" >> %(f)s; '
            'if [ "$SKED_ATTEMPT" = 1 ]; then echo $$ > %(p)s; sleep 30 & echo $! > %(c)s; wait; '
            'else sleep 0.5; fi; '
            'echo "$SKED_ATTEMPT end $(date +%%s%%N)" >> %(f)s'
            % {"f": f, "p": self.path("p1"), "c": self.path("c1")},
            retry={"max_attempts": 3, "initial": "100ms", "jitter": False}))
        wait_until(lambda: read_lines(self.path("p1")) and read_lines(self.path("c1")), 15,
                   msg="attempt 1 to start")
        shell, child = int(read_lines(self.path("p1"))[0]), int(read_lines(self.path("c1"))[0])
        run = self.runs_of(job["id"])[0]
        self.assertEqual(run["state"], "running")
        victim = run["worker_id"]
        self.assertIn(victim, by_id)
        survivor = id2 if victim == id1 else id1
        t_kill = time.time()
        by_id[victim].kill9()
        # The dead worker's job processes die with it.
        wait_until(lambda: not pid_alive(shell) and not pid_alive(child), 5,
                   msg="attempt 1 (pids %d, %d) to die with its worker" % (shell, child))
        t_dead = time.time()
        run = self.wait_run_state(run["id"], TERMINAL, timeout=40)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(len(run["attempts"]), 2, run)
        a1, a2 = run["attempts"]
        self.assertEqual(a1["worker_id"], victim)
        self.assertEqual(a1["outcome"], "lost", a1)
        self.assertEqual(a2["worker_id"], survivor)
        self.assertEqual(a2["outcome"], "succeeded")
        lines = [l.split() for l in read_lines(f)]
        self.assertNotIn(["1", "end"], [l[:2] for l in lines], "attempt 1 finished after a kill -9")
        starts = {l[0]: int(l[2]) / 1e9 for l in lines if l[1] == "start"}
        self.assertEqual(sorted(starts), ["1", "2"])
        # Attempts never overlap: attempt 2 began only after attempt 1 was
        # gone, and not before the lease it held could have expired.
        self.assertGreater(starts["2"], t_dead)
        self.assertGreater(starts["2"], t_kill + 2.0)
        self.assertGreaterEqual(parse_time(a2["started_at"]), t_kill + 2.0)
        workers = {w["id"]: w for w in self.ok("GET", "/v1/workers", expect=200)["items"]}
        wait_until(lambda: {w["id"]: w for w in self.ok("GET", "/v1/workers")["items"]}
                   [victim]["state"] == "lost", 20, msg="killed worker to be marked lost")
        self.assertEqual(workers[survivor]["state"], "active")

    def test_server_kill9_under_load_loses_no_ack(self):
        s1 = self.start_server(name="server1")
        acked = []
        lock = threading.Lock()
        stop = threading.Event()
        errors = []

        def submitter(k):
            i = 0
            while not stop.is_set() and i < 2000:
                i += 1
                try:
                    st, _, v = self.api("POST", "/v1/jobs", {
                        "name": "load-%d-%d" % (k, i), "command": ["/bin/true"],
                        "schedules": [{"at": "2099-01-01T00:00:00Z"}]}, srv=s1, timeout=10)
                except Exception as e:  # the server died under us
                    errors.append(repr(e))
                    return
                if st in (200, 201):
                    with lock:
                        acked.append(v["id"])

        threads = [threading.Thread(target=submitter, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: len(acked) >= 80, 30, msg="80 acknowledged creates")
            s1.proc.kill9()
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertFalse(any(t.is_alive() for t in threads))
        got = list(acked)
        self.start_server(name="server2")  # same store
        present = {j["id"] for j in self.list_all("/v1/jobs", limit=1000)}
        missing = [i for i in got if i not in present]
        self.assertEqual(missing, [], "acknowledged jobs lost after kill -9 (%d acked)" % len(got))
        # Still a working server afterwards.
        j = self.create_job({"command": ["/bin/true"], "schedules": [{"at": "2099-01-01T00:00:00Z"}]})
        self.assertRegex(j["id"], r"^job_")

    def test_worker_drain_on_sigterm(self):
        self.start_server(heartbeat="500ms")
        w, wid = self.start_worker(slots=2, name="drainee")
        fa, fb = self.path("a.txt"), self.path("b.txt")
        ja = self.create_job(self.sh_job(
            'echo "start $(date +%%s%%N)" >> %s; sleep 2; echo "end $(date +%%s%%N)" >> %s'
            % (fa, fa)))
        wait_until(lambda: read_lines(fa), 15, msg="job A to start")
        # B becomes claimable 1.2 s after the worker is told to drain.
        jb = self.create_job(self.sh_job('echo ran >> %s' % fb,
                                         schedules=[{"at": fmt_time(time.time() + 1.2)}]))
        w.signal(signal.SIGTERM)
        rc = w.wait_exit(20)
        self.assertEqual(rc, 0, "a drained worker exits 0")
        self.assertEqual([l.split()[0] for l in read_lines(fa)], ["start", "end"])
        ra = self.run_get(self.runs_of(ja["id"])[0]["id"])
        self.assertEqual(ra["state"], "succeeded", "the drained worker's run was not reported")
        self.assertEqual(read_lines(fb), [], "a draining worker ran new work")
        rb = self.runs_of(jb["id"])
        self.assertEqual(len(rb), 1)
        self.assertIn(rb[0]["state"], ("scheduled", "pending"),
                      "a draining worker claimed new work: %r" % (rb[0],))
        ws = {x["id"]: x for x in self.ok("GET", "/v1/workers", expect=200)["items"]}
        self.assertNotEqual(ws[wid]["state"], "active")
        self.assertEqual(ws[wid]["running"], 0)
        # B was claimable all along: a fresh worker runs it.
        self.start_worker(slots=1, name="fresh")
        wait_until(lambda: read_lines(fb), 15, msg="job B on the fresh worker")


if __name__ == "__main__":
    unittest.main()
