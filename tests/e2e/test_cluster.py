"""Cluster-mode end-to-end tests: several `sked server`s on one throwaway
PostgreSQL (pgcluster.py), workers and the CLI given server lists, and
faults injected from outside (kill -9, SIGSTOP, a database restart, a
server whose wall clock is five minutes fast).

Every job here is a tiny `sh -c` that stamps files in the test's temp dir:

    S <run_id> <attempt> <start_ns> <pid>         when an attempt starts
    <run_id> <attempt> <start_ns> <end_ns>        when it finishes its work

so the checks rest on what really ran, not only on what the API says: no
attempt ran twice, attempts of one run never overlapped in time, and every
run the API calls succeeded really did its work.

The tests: chaos (kill -9 of servers and workers and a PostgreSQL restart
under thousands of jobs), self-fencing (a worker cut off from every server
kills its attempt before the lease ends), a claim answer read late by a
frozen worker, clock skew under sked_clock=db, wake-ups across servers
(LISTEN/NOTIFY), and failover of the CLI and of workers.

Each test is bounded (hard deadlines on every wait) and uses loopback and
unix sockets only. SKED_CHAOS_JOBS sets the chaos test's job count (default
5000; 1500 on sanitizer builds, which are several times slower).

Standard library only.
"""

import collections
import http.client
import math
import os
import random
import signal
import threading
import time
import unittest

from pgcluster import ClusterTestCase, free_port
from skedtest import SLOW, TERMINAL, fmt_time, parse_time, pid_alive, read_lines, wait_until

LEASE_S = 3.0  # --lease 3s on every server here
GRACE_S = 5.0  # the server's lease grace (server.c default; no flag sets it)
RETRY_OUTCOMES = ("lost", "failed", "timeout")


def stamp_script(path, work=""):
    """A job body that stamps its start and its end around `work`."""
    return ('s=$(date +%%s%%N); echo "S $SKED_RUN_ID $SKED_ATTEMPT $s $$" >> %s; %s'
            'echo "$SKED_RUN_ID $SKED_ATTEMPT $s $(date +%%s%%N)" >> %s') % (path, work, path)


class Stamps:
    """The parsed stamp file: starts[(run, attempt)] -> [(start_ns, pid)],
    done[(run, attempt)] -> [(start_ns, end_ns)]."""

    def __init__(self, path):
        self.starts = collections.defaultdict(list)
        self.done = collections.defaultdict(list)
        self.bad = []
        for line in read_lines(path):
            f = line.split()
            try:
                if f[0] == "S" and len(f) == 5:
                    self.starts[(f[1], int(f[2]))].append((int(f[3]), int(f[4])))
                elif len(f) == 4:
                    self.done[(f[0], int(f[1]))].append((int(f[2]), int(f[3])))
                else:
                    self.bad.append(line)
            except ValueError:
                self.bad.append(line)

    def runs(self):
        return {k[0] for k in self.starts} | {k[0] for k in self.done}

    def violations(self):
        """Every broken promise the stamps alone can show, as messages."""
        out = ["malformed stamp line %r" % l for l in self.bad[:10]]
        for key, ds in sorted(self.done.items()):
            if len(ds) > 1:
                out.append("run %s attempt %d did its work %d times: %r" % (key + (len(ds), ds)))
            for s, e in ds:
                if e < s:
                    out.append("run %s attempt %d ended before it started" % key)
        for key, ss in sorted(self.starts.items()):
            if len(ss) > 1:
                out.append("run %s attempt %d started %d times: %r" % (key + (len(ss), ss)))
        by_run = collections.defaultdict(dict)
        for (run, n), ss in self.starts.items():
            by_run[run].setdefault(n, {})["start"] = min(s for s, _ in ss)
        for (run, n), ds in self.done.items():
            a = by_run[run].setdefault(n, {})
            a["start"] = min(a.get("start", ds[0][0]), min(s for s, _ in ds))
            a["end"] = max(e for _, e in ds)
        for run, atts in sorted(by_run.items()):
            ns = sorted(atts)
            for i, m in enumerate(ns):
                for n in ns[i + 1:]:
                    am, an = atts[m], atts[n]
                    # Attempt n may start only once attempt m is dead, so m
                    # must have started earlier and (if it finished its work)
                    # ended earlier: intervals of distinct attempts never meet.
                    if am.get("start") is not None and an["start"] <= am["start"]:
                        out.append("run %s: attempt %d started at %d, not after attempt %d "
                                   "(started %d)" % (run, n, an["start"], m, am["start"]))
                    if "end" in am and an["start"] <= am["end"]:
                        out.append("run %s: attempt %d [%d, %d] overlaps attempt %d [%d, %s]"
                                   % (run, m, am["start"], am["end"], n, an["start"],
                                      an.get("end", "killed")))
        return out


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class ClusterTests(ClusterTestCase):

    # ---- helpers ---------------------------------------------------------

    def job_doc(self, script, **fields):
        doc = self.sh_job(script, **fields)
        env = dict(doc.get("env") or {})
        env["E2E_SKED_TMP"] = self.tmp
        doc["env"] = env
        doc.setdefault("name", "c-%s" % os.urandom(5).hex())
        return doc

    def post_job(self, doc, srv, key=None):
        """POST /v1/jobs on srv; returns the job (fails the test on non-2xx)."""
        headers = {"Idempotency-Key": key} if key else None
        return self.ok("POST", "/v1/jobs", doc, expect=(200, 201), srv=srv, headers=headers)

    def pg_servers(self, n, **kw):
        return [self.start_pg_server("srv%d" % i, lease="3s", heartbeat="500ms", **kw)
                for i in range(n)]

    def run_of(self, job_id, srv, timeout=20.0):
        runs = self.wait_runs_on(srv, job_id, lambda rs: len(rs) >= 1, timeout)
        return runs[0]

    def runs_on(self, srv, job_id):
        old = self.srv
        self.srv = srv
        try:
            return self.runs_of(job_id)
        finally:
            self.srv = old

    def wait_runs_on(self, srv, job_id, pred, timeout, msg=None):
        box = {}

        def check():
            box["runs"] = self.runs_on(srv, job_id)
            return pred(box["runs"])

        wait_until(check, timeout, interval=0.05, msg=msg or "runs of %s" % job_id)
        return box["runs"]

    def get_run(self, run_id, srv):
        return self.ok("GET", "/v1/runs/" + run_id, expect=200, srv=srv)

    # ---- 1. chaos --------------------------------------------------------

    def test_chaos_kill_servers_workers_and_database(self):
        """3 servers, 1 PostgreSQL, 3 workers; thousands of jobs submitted
        round-robin while servers and workers are killed with SIGKILL and
        restarted and the database restarts: nothing acknowledged is lost,
        nothing fires twice, attempts never overlap, retries only follow a
        lost lease or a failure."""
        n_jobs = int(os.environ.get("SKED_CHAOS_JOBS") or (5000 if SLOW == 1 else 1500))
        t_begin = time.monotonic()
        hard_end = t_begin + 285 * SLOW  # the whole test, checks included, in < 5 min
        stamps_path = self.path("stamps")
        servers = self.pg_servers(3)
        names = sorted(self.servers)
        worker_args = {}
        for i in range(3):
            order = names[i:] + names[:i]  # spread the workers' first choices
            worker_args["wrk%d" % i] = self.server_list(order)
            self.start_cluster_worker("wrk%d" % i, worker_args["wrk%d" % i], slots=4)
        self.assertEqual(len(servers), 3)

        retry = {"max_attempts": 10, "initial": "500ms", "max": "2s"}
        acked = {}  # index -> (job id, kind, name)
        acked_lock = threading.Lock()
        errors = []
        counter = iter(range(n_jobs))
        counter_lock = threading.Lock()
        stats = collections.Counter()

        def doc_for(i):
            name = "chaos-%05d" % i
            if i % 100 == 50:  # ~1%: a per-second cron schedule ending a few seconds later
                now = time.time()
                return "cron", self.job_doc(stamp_script(stamps_path), name=name, retry=retry,
                                            schedules=[{"cron": "* * * * * *",
                                                        "end": fmt_time(now + 4)}])
            work = "sleep 1; " if i % 50 == 7 else ""  # ~2% hold a slot for a second
            return "once", self.job_doc(stamp_script(stamps_path, work), name=name, retry=retry)

        def submit_one(i):
            kind, doc = doc_for(i)
            key = "chaos-%05d-%s" % (i, os.urandom(4).hex())
            give_up = time.monotonic() + 60 * SLOW
            k = i
            while True:
                srv = self.servers[names[k % 3]]
                k += 1
                try:
                    st, _, v = self.api("POST", "/v1/jobs", doc, srv=srv, timeout=10,
                                        headers={"Idempotency-Key": key})
                except (OSError, http.client.HTTPException) as e:
                    st, v = 0, repr(e)
                if st in (200, 201):
                    with acked_lock:
                        acked[i] = (v["id"], kind, doc["name"])
                    stats["acked_%d" % st] += 1
                    return
                if st and st < 500 and st != 429:
                    errors.append("job %d (%s): POST on %s -> %d %r (key %s)"
                                  % (i, doc["name"], srv.url, st, v, key))
                    return
                stats["retried_posts"] += 1
                if time.monotonic() > give_up:
                    errors.append("job %d: no server acknowledged it within 60s; last: %d %r"
                                  % (i, st, v))
                    return
                time.sleep(0.1)

        def submitter():
            try:
                while True:
                    with counter_lock:
                        i = next(counter, None)
                    if i is None or time.monotonic() > hard_end:
                        return
                    submit_one(i)
            except BaseException as e:  # reported by the main thread
                errors.append("submitter crashed: %r" % (e,))

        threads = [threading.Thread(target=submitter, daemon=True) for _ in range(4)]
        for t in threads:
            t.start()

        # The chaos loop: kill -9 a random server or worker every few
        # seconds and bring it back with the same flags (same port, same
        # server list); restart PostgreSQL once, mid-submission.
        rnd = random.Random(os.environ.get("SKED_CHAOS_SEED") or time.time_ns())
        events = []
        pg_restarted = False
        subs_done_at = None
        t0 = time.monotonic()
        while time.monotonic() < hard_end - 120 * SLOW:
            if subs_done_at is None and not any(t.is_alive() for t in threads):
                subs_done_at = time.monotonic()
            if subs_done_at is not None and time.monotonic() > subs_done_at + 4 and pg_restarted:
                break
            time.sleep(rnd.uniform(1.5, 3.0))
            if not pg_restarted and (len(acked) >= n_jobs * 0.4 or subs_done_at is not None):
                ts = time.monotonic() - t0
                self.pg.restart("immediate")
                events.append("%.1fs postgres restart -m immediate (%d jobs acked)"
                              % (ts, len(acked)))
                pg_restarted = True
                continue
            # Servers and workers take turns, so both kinds always die.
            victim = rnd.choice(names if len(events) % 2 == 0 else sorted(worker_args))
            ts = time.monotonic() - t0
            if victim in worker_args:
                proc = [p for p in self.procs if p.name == victim][-1]
                proc.kill9()
                time.sleep(rnd.uniform(0.2, 1.0))
                self.start_cluster_worker(victim, worker_args[victim], slots=4)
            else:
                self.servers[victim].proc.kill9()
                time.sleep(rnd.uniform(0.2, 1.0))
                self.restart_server(victim)
            events.append("%.1fs kill -9 %s, restarted" % (ts, victim))
        for t in threads:
            t.join(max(1.0, hard_end - time.monotonic()))
        self.assertFalse(any(t.is_alive() for t in threads), "submitters still running")
        submit_s = time.monotonic() - t0
        self.assertEqual(errors, [], "submission errors")
        self.assertEqual(len(acked), n_jobs, "acknowledged %d of %d jobs" % (len(acked), n_jobs))
        self.assertTrue(pg_restarted, "the chaos loop ended before restarting PostgreSQL")

        # Converge: every run terminal, every one-time job with its run.
        srv = self.servers[names[0]]
        once_ids = {v[0] for v in acked.values() if v[1] == "once"}
        cron_ids = {v[0] for v in acked.values() if v[1] == "cron"}
        box = {}

        def settled():
            runs = self.list_on(srv, "/v1/runs", limit=1000)
            box["runs"] = runs
            if any(r["state"] not in TERMINAL for r in runs):
                return False
            return once_ids <= {r["job_id"] for r in runs}

        left = max(10.0, hard_end - time.monotonic() - 40 * SLOW)
        try:
            wait_until(settled, left / SLOW, interval=1.0, msg="every run terminal")
        except AssertionError:
            runs = box.get("runs") or []
            open_runs = [r for r in runs if r["state"] not in TERMINAL]
            missing = once_ids - {r["job_id"] for r in runs}
            self.fail("after %.0fs: %d runs not terminal (e.g. %r), %d one-time jobs without a "
                      "run (e.g. %r); chaos: %s" % (time.monotonic() - t0, len(open_runs),
                                                   open_runs[:3], len(missing),
                                                   sorted(missing)[:5], events))
        runs = box["runs"]
        problems = []

        # Every acknowledged job exists.
        def check_jobs(items, out):
            for idx, (jid, _, name) in items:
                st, _, v = self.api("GET", "/v1/jobs/" + jid, srv=srv)
                if st != 200 or v.get("name") != name:
                    out.append("acknowledged job %d %s (%s) -> GET %d %r" % (idx, jid, name, st, v))

        items = sorted(acked.items())
        outs = [[] for _ in range(4)]
        ths = [threading.Thread(target=check_jobs, args=(items[k::4], outs[k])) for k in range(4)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(120 * SLOW)
        for o in outs:
            problems += o

        by_job = collections.defaultdict(list)
        for r in runs:
            by_job[r["job_id"]].append(r)
        # One-time jobs: exactly one run, and it succeeded.
        for jid in sorted(once_ids):
            rs = by_job.get(jid, [])
            if len(rs) != 1:
                problems.append("one-time job %s has %d runs: %r"
                                % (jid, len(rs), [(r["id"], r["fire_time"]) for r in rs]))
            for r in rs:
                if r["state"] != "succeeded":
                    problems.append("one-time job %s: run %s ended %s (%s) after %d attempts"
                                    % (jid, r["id"], r["state"], r.get("reason"), r["attempt"]))
        # Exactly-once firing: no (schedule, fire time) with two runs.
        seen = {}
        for r in runs:
            if r.get("schedule_id"):
                key = (r["schedule_id"], r["fire_time"])
                if key in seen:
                    problems.append("schedule %s fired %s twice: runs %s and %s"
                                    % (key + (seen[key], r["id"])))
                seen[key] = r["id"]
        # Cron jobs: every fire second from creation to `end` has its run
        # (ran or skipped with a reason), or, when no server could fire it
        # in time (the database restarting), the misfire policy's ledger
        # holds it with its reason: no silent misses (DESIGN §5.3).
        cron_runs = 0
        for jid in sorted(cron_ids):
            job = self.ok("GET", "/v1/jobs/" + jid, expect=200, srv=srv)
            created = parse_time(job["created_at"])
            end = parse_time(job["schedules"][0]["end"])
            fired = collections.Counter(int(parse_time(r["fire_time"])) for r in by_job.get(jid, []))
            cron_runs += sum(fired.values())
            expect = set(range(math.ceil(created), int(end) + 1))
            missing = sorted(expect - set(fired))
            missing = [t for t in missing
                       if not self.ok("GET", "/v1/jobs/%s/misses?at=%s" % (jid, fmt_time(t)),
                                      expect=200, srv=srv)["items"]]
            if missing:
                problems.append("cron job %s (created %s, end %s): no run for fire times %r; has %r"
                                % (jid, job["created_at"], job["schedules"][0]["end"],
                                   [fmt_time(s) for s in missing], sorted(fired)))
            for r in by_job.get(jid, []):
                if r["state"] == "skipped" and not r.get("reason"):
                    problems.append("run %s skipped without a reason" % r["id"])
        # Stamps: nothing ran twice, no overlap, only our runs ran.
        stamps = Stamps(stamps_path)
        problems += stamps.violations()
        run_by_id = {r["id"]: r for r in runs}
        unknown = sorted(stamps.runs() - set(run_by_id))
        if unknown:
            problems.append("stamps from runs the API does not know: %r" % unknown[:10])
        for r in runs:
            if r["state"] == "succeeded" and (r["id"], r["attempt"]) not in stamps.done:
                problems.append("run %s succeeded at attempt %d but that attempt never did its "
                                "work" % (r["id"], r["attempt"]))
        # Retries: attempt n > 1 only after attempt n-1 was lost or failed.
        retried = [r for r in runs if r["attempt"] > 1]
        outcomes = collections.Counter()
        for r in retried:
            full = self.get_run(r["id"], srv)
            atts = sorted(full.get("attempts") or [], key=lambda a: a["n"])
            if [a["n"] for a in atts] != list(range(1, full["attempt"] + 1)):
                problems.append("run %s at attempt %d lists attempts %r"
                                % (r["id"], full["attempt"], [a["n"] for a in atts]))
                continue
            for a in atts[:-1]:
                outcomes[a["outcome"]] += 1
                if a["outcome"] not in RETRY_OUTCOMES:
                    problems.append("run %s: attempt %d followed attempt %d whose outcome is %r "
                                    "(expected one of %s)" % (r["id"], a["n"] + 1, a["n"],
                                                             a["outcome"], RETRY_OUTCOMES))
        killed = sum(1 for k in stamps.starts if k not in stamps.done)
        report = ("chaos: %d jobs acknowledged (%d one-time, %d cron) in %.0fs; %d runs (%d "
                  "cron); %d retried runs (earlier outcomes %s); %d attempts killed mid-work; "
                  "%d POSTs retried; %d idempotent repeats; total %.0fs\nevents: %s"
                  % (len(acked), len(once_ids), len(cron_ids), submit_s, len(runs), cron_runs,
                     len(retried), dict(outcomes), killed, stats["retried_posts"],
                     stats["acked_200"], time.monotonic() - t_begin, "; ".join(events)))
        print("\n" + report)
        if problems:
            self.fail("%d violations:\n%s\n%s" % (len(problems), "\n".join(problems[:60]), report))
        self.assertLess(time.monotonic() - t_begin, 300 * SLOW, "the chaos test overran 5 min")

    def list_on(self, srv, path, limit=100):
        old = self.srv
        self.srv = srv
        try:
            return self.list_all(path, limit=limit)
        finally:
            self.srv = old

    # ---- 2. self-fencing --------------------------------------------------

    def test_worker_self_fences_when_no_server_answers(self):
        """The only server freezes (SIGSTOP) past the lease: the worker
        running a long attempt kills it before the lease ends; once the
        server is back the run's next attempt runs on the other worker, and
        the two attempts never overlap."""
        stamps_path = self.path("stamps")
        srv = self.start_pg_server("srv0", lease="3s", heartbeat="500ms")
        workers = {}
        for name in ("wrk1", "wrk2"):
            proc, wid = self.start_cluster_worker(name, srv.url, slots=1)
            workers[wid] = proc
        # Attempt 1 sleeps for a minute (exec: the stamped pid is the sleep);
        # later attempts finish at once.
        script = stamp_script(stamps_path, 'if [ "$SKED_ATTEMPT" = 1 ]; then exec sleep 60; fi; ')
        job = self.post_job(self.job_doc(script, retry={"max_attempts": 3, "initial": "100ms",
                                                        "max": "200ms"}), srv)
        run = self.run_of(job["id"], srv)
        st = wait_until(lambda: Stamps(stamps_path).starts.get((run["id"], 1)), 20,
                        msg="attempt 1 started")
        pid = st[0][1]
        self.assertTrue(pid_alive(pid))
        r = self.get_run(run["id"], srv)
        self.assertEqual(r["state"], "running", r)
        holder = workers[r["worker_id"]]
        other = [p for w, p in workers.items() if w != r["worker_id"]][0]
        # A renewal seen: the worker heartbeats, so the lease below is a
        # renewed one and the freeze lands in steady state.
        first_lease = r["lease_expires_at"]
        r = wait_until(lambda: (lambda x: x if x["lease_expires_at"] != first_lease else None)(
            self.get_run(run["id"], srv)), 10, msg="a lease renewal")
        lease_end = parse_time(r["lease_expires_at"])
        stopped = []
        try:
            srv.proc.signal(signal.SIGSTOP)
            stopped.append(srv.proc)
            t_stop = time.time()
            # Renewals after our read can only push the lease later, so
            # dying before lease_end is dying before the lease really ended.
            wait_until(lambda: not pid_alive(pid), 10, interval=0.01,
                       msg="the worker to kill its attempt (pid %d)" % pid)
            t_dead = time.time()
            self.assertLess(t_dead, lease_end,
                            "attempt 1 (pid %d) died at %s, after its lease ended at %s: the "
                            "worker did not fence itself in time (server frozen at %s)"
                            % (pid, fmt_time(t_dead), fmt_time(lease_end), fmt_time(t_stop)))
            # Freeze the fenced worker too, so the retry must go elsewhere.
            holder.signal(signal.SIGSTOP)
            stopped.append(holder)
            # Keep the server frozen until well past the lease.
            wait_until(lambda: time.time() > lease_end + 1.0, LEASE_S + 5, interval=0.05,
                       msg="the lease to pass")
            srv.proc.signal(signal.SIGCONT)
            stopped.remove(srv.proc)
            final = wait_until(lambda: (lambda x: x if x["state"] in TERMINAL else None)(
                self.get_run(run["id"], srv)), 30, interval=0.1, msg="the run to finish")
        finally:
            for p in stopped:
                p.signal(signal.SIGCONT)
        self.assertEqual(final["state"], "succeeded", final)
        atts = sorted(final["attempts"], key=lambda a: a["n"])
        self.assertEqual([a["n"] for a in atts], list(range(1, final["attempt"] + 1)), final)
        self.assertGreaterEqual(len(atts), 2, final)
        # The frozen worker's claim may already sit in the frozen server's
        # queue and win attempt 2, which it cannot start (it is stopped), so
        # that one is lost in turn; the run must still end elsewhere.
        for a in atts[:-1]:
            self.assertIn(a["outcome"], ("lost", "failed"), atts)
        self.assertNotEqual(atts[-1]["worker_id"], atts[0]["worker_id"],
                            "the run did not finish on another worker: %r" % atts)
        started2 = parse_time(atts[1]["started_at"])
        if atts[0]["outcome"] == "lost":
            # Re-queued by the reaper: only after lease + grace.
            self.assertGreaterEqual(started2 + 0.002, lease_end + GRACE_S,
                                    "attempt 2 started %s, before lease end %s + grace %.0fs"
                                    % (atts[1]["started_at"], fmt_time(lease_end), GRACE_S))
        stamps = Stamps(stamps_path)
        self.assertEqual(stamps.violations(), [])
        last = atts[-1]["n"]
        done = stamps.done.get((run["id"], last))
        self.assertTrue(done, "the last attempt did not do its work: %r" % dict(stamps.done))
        later = [v[0][0] for (rid, n), v in stamps.starts.items() if rid == run["id"] and n > 1]
        self.assertTrue(later and min(later) > int(t_dead * 1e9),
                        "an attempt after 1 started before attempt 1 was seen dead (%d): %r"
                        % (int(t_dead * 1e9), later))
        self.assertNotIn((run["id"], 1), stamps.done)

        # The fenced worker wakes up: its stale view must change nothing.
        t_resume = time.time()
        wait_until(lambda: holder.alive() and any(
            w["name"] == holder.name and w.get("heartbeat_at")
            and parse_time(w["heartbeat_at"]) > t_resume
            for w in self.ok("GET", "/v1/workers", expect=200, srv=srv)["items"]), 20,
            interval=0.1, msg="the fenced worker to heartbeat again")
        again = self.get_run(run["id"], srv)
        self.assertEqual((again["state"], again["attempt"]), ("succeeded", final["attempt"]), again)
        self.assertEqual([a["outcome"] for a in sorted(again["attempts"], key=lambda a: a["n"])],
                         [a["outcome"] for a in atts])
        self.assertTrue(other.alive())
        # A claim answered while it was frozen must not start a process now,
        # long after that lease ended and the run was given to another
        # worker: with a longer job the two would run at once.
        stamps = Stamps(stamps_path)
        finished_ns = int(parse_time(final["finished_at"]) * 1e9)
        late = sorted((n, v[0][0]) for (rid, n), v in stamps.starts.items()
                      if rid == run["id"] and v[0][0] > finished_ns)
        self.assertEqual(late, [], "after the run finished (%s) the resumed worker started "
                         "attempt(s) %r of it: a claim answered while it was frozen was "
                         "executed though its lease had long expired (attempts: %r)"
                         % (final["finished_at"], [n for n, _ in late], [
                             (a["n"], a["worker_id"], a["started_at"], a["outcome"])
                             for a in atts]))
        self.assertEqual(stamps.violations(), [])
        print("\nself-fencing: lease ended %s, attempt 1 dead %.2fs before it (server frozen "
              "%.2fs before the lease end); attempts %r"
              % (fmt_time(lease_end), lease_end - t_dead, lease_end - t_stop,
                 [(a["n"], a["worker_id"], a["started_at"], a["outcome"]) for a in atts]))

    # ---- 2b. a claim answer read late --------------------------------------

    def test_claim_answered_to_a_frozen_worker_is_not_run_late(self):
        """A worker frozen (SIGSTOP) in its long poll is handed a run it
        cannot start; its unconfirmed lease lapses, the run comes back
        uncharged and another worker runs it. When the frozen worker resumes
        and finally reads that old answer it must not start the run: it
        confirms first, and the run is no longer its."""
        stamps_path = self.path("stamps")
        srv = self.start_pg_server("srv0", lease="3s", heartbeat="500ms")
        frozen, frozen_id = self.start_cluster_worker("frozen", srv.url, slots=1)
        retry = {"max_attempts": 3, "initial": "100ms", "max": "200ms"}
        try:
            # Freeze it while its claim waits in the server. Right after
            # registering (or a run) it may not have sent the claim yet; then
            # the run stays pending: let it run that one and try again.
            for _ in range(5):
                frozen.signal(signal.SIGSTOP)
                job = self.post_job(self.job_doc(stamp_script(stamps_path), retry=retry), srv)
                run = self.run_of(job["id"], srv)
                try:
                    r = wait_until(lambda: (lambda x: x if x["state"] == "running" else None)(
                        self.get_run(run["id"], srv)), 3, interval=0.05)
                    break
                except AssertionError:
                    frozen.signal(signal.SIGCONT)
                    self.wait_runs_on(srv, job["id"],
                                      lambda rs: rs and rs[0]["state"] == "succeeded", 20)
            else:
                self.fail("the frozen worker never had a claim waiting in the server")
            self.assertEqual(r["worker_id"], frozen_id, r)
            lease_end = parse_time(r["lease_expires_at"])
            self.start_cluster_worker("live", srv.url, slots=1)
            final = wait_until(lambda: (lambda x: x if x["state"] in TERMINAL else None)(
                self.get_run(run["id"], srv)), 30, interval=0.1, msg="the retry to finish")
            self.assertEqual(final["state"], "succeeded", final)
            # The attempt that never started left no trace and cost nothing:
            # the live worker's attempt is attempt 1.
            self.assertEqual([(a["n"], a["outcome"]) for a in final["attempts"]],
                             [(1, "succeeded")], final)
            self.assertNotEqual(final["attempts"][0]["worker_id"], frozen_id, final)
            ran = len(Stamps(stamps_path).starts.get((run["id"], 1), []))
            self.assertEqual(ran, 1)
            # Resume the worker while no server answers, so nothing but its
            # own lease arithmetic can stop it (a heartbeat answer could
            # otherwise win the race and mask the flaw). A spawn takes
            # milliseconds: two seconds without a stamp mean it held back.
            srv.proc.signal(signal.SIGSTOP)
            frozen.signal(signal.SIGCONT)
            t_cont = time.time()
            stamp = None
            end = time.monotonic() + 2.0 * SLOW
            while time.monotonic() < end and not stamp:
                starts = Stamps(stamps_path).starts.get((run["id"], 1), [])
                stamp = starts[1:] or None  # a start besides the live worker's
                time.sleep(0.02)
            srv.proc.signal(signal.SIGCONT)
        finally:
            frozen.signal(signal.SIGCONT)
            srv.proc.signal(signal.SIGCONT)
        self.assertIsNone(stamp, "the resumed worker started attempt 1 at %s, %.1fs after its "
                          "lease ended (%s) and after attempt 2 had run on another worker: a "
                          "claim answer read late was executed as if just leased"
                          % (fmt_time(stamp[0][0] / 1e9) if stamp else None,
                             (stamp[0][0] / 1e9 - lease_end) if stamp else 0,
                             fmt_time(lease_end)))
        # The resumed worker has caught up once it heartbeats again.
        wait_until(lambda: frozen.alive() and any(
            w["name"] == "frozen" and w.get("heartbeat_at")
            and parse_time(w["heartbeat_at"]) > t_cont
            for w in self.ok("GET", "/v1/workers", expect=200, srv=srv)["items"]), 20,
            interval=0.1, msg="the resumed worker to heartbeat again")
        stamps = Stamps(stamps_path)
        late = stamps.starts.get((run["id"], 1), [])[1:] or None  # besides the live worker's
        self.assertIsNone(late, "the resumed worker started attempt 1 at %s, %.1fs after its "
                          "lease ended (%s) and after attempt 2 had run on another worker: a "
                          "claim answer read late was executed as if just leased"
                          % (fmt_time(late[0][0] / 1e9) if late else None,
                             (late[0][0] / 1e9 - lease_end) if late else 0, fmt_time(lease_end)))
        self.assertEqual(stamps.violations(), [])

    # ---- 3. clock skew -----------------------------------------------------

    def test_db_clock_makes_a_fast_server_harmless(self):
        """Two servers, one with its wall clock 5 minutes fast, both on
        sked_clock=db: a per-second cron fires each second exactly once, and
        a lease renewed through the good server is never reaped by the fast
        one."""
        stamps_path = self.path("stamps")
        url = self.store_url(sked_clock="db")
        good = self.start_pg_server("good", store_url=url, lease="3s", heartbeat="500ms")
        fast = self.start_pg_server("fast", store_url=url, lease="3s", heartbeat="500ms",
                                    env={"SKED_CLOCK_OFFSET_MS": "300000"})
        self.start_cluster_worker("wrk", good.url, slots=4)

        long_job = self.post_job(self.job_doc(stamp_script(stamps_path, "sleep 8; "),
                                              retry={"max_attempts": 3, "initial": "100ms",
                                                     "max": "200ms"}), good)
        end = time.time() + 8
        cron = self.post_job(self.job_doc(stamp_script(stamps_path),
                                          schedules=[{"cron": "* * * * * *",
                                                      "end": fmt_time(end)}]), good)
        created = parse_time(cron["created_at"])
        expect = set(range(math.ceil(created), int(end) + 1))

        runs = self.wait_runs_on(
            good, cron["id"],
            lambda rs: time.time() > end + 1 and rs and all(r["state"] in TERMINAL for r in rs),
            30, "the cron runs to finish")
        fired = collections.Counter(int(parse_time(r["fire_time"])) for r in runs)
        problems = []
        dup = sorted(s for s, c in fired.items() if c > 1)
        if dup:
            problems.append("fire times with more than one run: %r" % [
                (r["id"], r["fire_time"]) for r in runs if int(parse_time(r["fire_time"])) in dup])
        if set(fired) - expect:
            problems.append("runs outside (created %s, end %s]: %r" % (
                cron["created_at"], fmt_time(end), [fmt_time(x) for x in sorted(set(fired) - expect)]))
        if expect - set(fired):
            problems.append("fire times without a run: %r"
                            % [fmt_time(x) for x in sorted(expect - set(fired))])
        # Both servers are up the whole time, so no fire time is missed:
        # a skipped run here means a server judged "missed" by its own clock.
        for r in sorted(runs, key=lambda r: r["fire_time"]):
            if r["state"] != "succeeded":
                problems.append("cron run %s for %s ended %s: %s" % (
                    r["id"], r["fire_time"], r["state"], r.get("reason")))

        lr = self.run_of(long_job["id"], good)
        final = wait_until(lambda: (lambda x: x if x["state"] in TERMINAL else None)(
            self.get_run(lr["id"], good)), 30, interval=0.2, msg="the long run to finish")
        if (final["state"], final["attempt"]) != ("succeeded", 1):
            problems.append("the 8 s job did not succeed in 1 attempt (lease stolen?): %s, "
                            "attempts %r" % (final["state"], [
                                (a["n"], a["outcome"], a.get("reason")) for a in final["attempts"]]))
        stamps = Stamps(stamps_path)
        problems += stamps.violations()
        started = sorted(n for (rid, n) in stamps.starts if rid == lr["id"])
        if started != [1]:
            problems.append("the 8 s job's attempts that started: %r (want [1])" % started)
        self.assertEqual(problems, [], "with one server's clock 5 min fast and sked_clock=db:\n"
                         + "\n".join(problems))
        print("\nclock skew: %d cron fire times, each once; 8 s job kept its lease (1 attempt)"
              % len(fired))

    # ---- 4. cross-server wake ---------------------------------------------

    def test_claim_on_one_server_wakes_for_work_submitted_on_another(self):
        """A worker long-polling server B starts a run submitted on server A
        within 200 ms (LISTEN/NOTIFY), 20 times in a row."""
        a, b = self.pg_servers(2)
        self.start_cluster_worker("wrk", b.url, slots=1)
        lat_ms = []
        for i in range(20):
            stamp = self.path("start-%d" % i)
            doc = self.job_doc("date +%%s%%N > %s" % stamp)
            t_submit = time.time_ns()
            job = self.post_job(doc, a)
            ns = wait_until(lambda: read_lines(stamp), 10, interval=0.005,
                            msg="run %d to start" % i)
            lat_ms.append((int(ns[0]) - t_submit) / 1e6)
            # The worker is back in its long poll once it has reported.
            self.wait_runs_on(a, job["id"], lambda rs: rs and rs[0]["state"] == "succeeded", 10)
        p50, p99 = pct(lat_ms, 50), pct(lat_ms, 99)
        print("\ncross-server wake (submit on A -> process start via B), 20 runs: p50 %.1f ms, "
              "p99 %.1f ms, max %.1f ms" % (p50, p99, max(lat_ms)))
        self.assertLessEqual(p99, 200 * SLOW, "latencies (ms): %r" % [round(x) for x in lat_ms])

    def test_revoked_token_stops_working_on_every_server_within_a_second(self):
        """Servers keep tokens they verified in memory for half a second
        (docs/security.md). A token revoked through server A is refused by
        A at once and by B, which had just verified it, within a second."""
        a, b = self.pg_servers(2)
        tok = self.ok("POST", "/v1/tokens", {"name": "svc-1", "role": "operator"}, expect=201,
                      srv=a)
        secret = tok["token"]
        for srv in (a, b, a, b):
            self.ok("GET", "/v1/jobs", token=secret, srv=srv, expect=200)
        self.ok("DELETE", "/v1/tokens/" + tok["id"], expect=204, srv=a)
        t0 = time.monotonic()
        self.assertEqual(self.api("GET", "/v1/jobs", token=secret, srv=a)[0], 401)
        wait_until(lambda: self.api("GET", "/v1/jobs", token=secret, srv=b)[0] == 401, 5,
                   interval=0.02, msg="server B to refuse the revoked token")
        took = time.monotonic() - t0
        self.assertLessEqual(took, 1.0 * SLOW, "B accepted the revoked token for %.2fs" % took)
        # Not refused for anything else: a live token still works on both.
        for srv in (a, b):
            self.ok("GET", "/v1/jobs", srv=srv, expect=200)

    # ---- 5. failover -------------------------------------------------------

    def test_claim_failed_over_mid_poll_starts_the_run(self):
        """A worker's claim parks on server A for most of a lease; A is
        killed and work is submitted to B. The claim is retried on B inside
        the same call. The lease must count from the send that B answered,
        not from the first send to A: the run starts at once, as attempt 1,
        instead of being refused and charged a lost attempt."""
        stamps_path = self.path("stamps")
        a = self.start_pg_server("srv-a", lease="4s", heartbeat="800ms")
        b = self.start_pg_server("srv-b", lease="4s", heartbeat="800ms")
        self.start_cluster_worker("wrk", "%s,%s" % (a.url, b.url), slots=1)
        time.sleep(3.0)  # 0.75 of the lease, parked on A
        a.proc.kill9()
        t0 = time.time()
        job = self.post_job(self.job_doc(stamp_script(stamps_path), name="after-failover"), b)
        run = self.run_of(job["id"], b)
        final = wait_until(lambda: (lambda x: x if x["state"] in TERMINAL else None)(
            self.get_run(run["id"], b)), 20, interval=0.1, msg="the run to finish")
        took = time.time() - t0
        self.assertEqual(final["state"], "succeeded", final)
        self.assertEqual([(x["n"], x["outcome"]) for x in final["attempts"]], [(1, "succeeded")],
                         final)
        self.assertLess(took, 5.0 * SLOW, "the run waited %.1fs" % took)
        self.assertEqual(Stamps(stamps_path).violations(), [])
        print("\nclaim failed over from a killed server: run done %.1fs after submit" % took)

    def test_cli_and_worker_fail_over(self):
        """The CLI given a dead server first still works; a worker given all
        three servers keeps running (and renewing, and reporting) when the
        server it talks to is killed, whichever one that is."""
        stamps_path = self.path("stamps")
        servers = self.pg_servers(3)
        names = sorted(self.servers)
        dead = "http://127.0.0.1:%d" % free_port()
        live = servers[1].url
        both = "%s,%s" % (dead, live)

        rc, out, err = self.cli("submit", "--server", both, "--name", "via-cli", "-q",
                                "--env", "E2E_SKED_TMP=" + self.tmp, "--",
                                "/bin/sh", "-c", stamp_script(stamps_path))
        self.assertEqual(rc, 0, "sked submit --server dead,live: rc %d\n%s%s" % (rc, out, err))
        jid = out.strip()
        self.assertRegex(jid, r"^job_")
        self.assertEqual(self.ok("GET", "/v1/jobs/" + jid, expect=200, srv=servers[2])["name"],
                         "via-cli")
        listed = self.cli_json("jobs", "ls", "--server", both)
        listed = listed.get("items", listed) if isinstance(listed, dict) else listed
        self.assertIn(jid, [j.get("id") for j in listed], listed)

        self.start_cluster_worker("wrk", self.server_list(names), slots=2)
        self.wait_runs_on(servers[0], jid, lambda rs: rs and rs[0]["state"] == "succeeded", 20,
                          "the CLI's job to run")
        # Each server in turn dies while a job longer than the lease runs
        # and while new work arrives through another server.
        for k, victim in enumerate(names):
            via = self.servers[names[(k + 1) % 3]]
            long_job = self.post_job(self.job_doc(stamp_script(stamps_path, "sleep 5; "),
                                                  name="long-%d" % k), via)
            lr = self.run_of(long_job["id"], via)
            wait_until(lambda: Stamps(stamps_path).starts.get((lr["id"], 1)), 20,
                       msg="the long job to start")
            self.servers[victim].proc.kill9()
            quick = [self.post_job(self.job_doc(stamp_script(stamps_path), name="q-%d-%d" % (k, i)),
                                   via)["id"] for i in range(3)]
            for q in quick:
                self.wait_runs_on(via, q, lambda rs: rs and rs[0]["state"] == "succeeded", 20,
                                  "job %s to run with %s dead" % (q, victim))
            final = wait_until(lambda: (lambda x: x if x["state"] in TERMINAL else None)(
                self.get_run(lr["id"], via)), 20, interval=0.1, msg="the long job to finish")
            self.assertEqual((final["state"], final["attempt"]), ("succeeded", 1),
                             "with %s killed mid-run: %r" % (victim, final))
            self.restart_server(victim)
        self.assertEqual(Stamps(stamps_path).violations(), [])
        # The CLI with its first server dead after all that: --wait too.
        rc, out, err = self.cli("submit", "--server", "%s,%s" % (dead, self.servers[names[0]].url),
                                "--name", "via-cli-wait", "--wait", "-q",
                                "--env", "E2E_SKED_TMP=" + self.tmp, "--",
                                "/bin/sh", "-c", stamp_script(stamps_path))
        self.assertEqual(rc, 0, "sked submit --wait --server dead,live: rc %d\n%s%s" % (rc, out, err))


if __name__ == "__main__":
    unittest.main(verbosity=2)
