"""Claims that never start, and who may act for a worker (issue 7, points 6,
9 and 10). Each test reproduces a way a run used to be handed to a worker
that never started it -- and then charged an attempt after a whole lease --
or a way one worker's token could act for another worker, and checks the
promise that now holds: a run that never started comes back soon and
uncharged, attempts never overlap, and a worker token acts only for its
own workers and namespace."""

import copy
import json
import os
import signal
import socket
import threading
import time
import unittest
import urllib.parse

from skedtest import SkedTestCase, fmt_time, parse_time, pid_alive, read_lines, wait_until


def lines_of(path):
    return read_lines(path) if os.path.exists(path) else []


class HoldingProxy:
    """A TCP proxy on 127.0.0.1 in front of a server that passes every byte
    both ways, except that while `hold` is set a connection whose next
    request is a worker heartbeat stalls there (a stalled path: the
    confirmation never lands) until `hold` is cleared. Bounded: every
    socket has a timeout and close() ends it all."""

    def __init__(self, upstream_url):
        u = urllib.parse.urlparse(upstream_url)
        self.up = (u.hostname, u.port)
        self.hold = threading.Event()
        self.held = threading.Event()  # some heartbeat is being held now
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.ls.settimeout(0.2)
        self.url = "http://127.0.0.1:%d" % self.ls.getsockname()[1]
        self.closed = False
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.ls.accept()
            except OSError:
                continue
            u = socket.create_connection(self.up, timeout=60)
            c.settimeout(60)
            self.socks += [c, u]
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src, dst, requests):
        tail = b""
        try:
            while not self.closed:
                data = src.recv(65536)
                if not data:
                    break
                if requests and b"/heartbeat HTTP/" in tail + data:
                    while self.hold.is_set() and not self.closed:
                        self.held.set()
                        time.sleep(0.01)
                tail = data[-64:]
                dst.sendall(data)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closed = True
        for x in self.socks + [self.ls]:
            try:
                x.close()
            except OSError:
                pass


class TestClaims(SkedTestCase):
    def marker_job(self, marker, **fields):
        """A job that appends "<attempt> <worker pid>" to marker once per attempt."""
        return self.create_job(self.sh_job('echo "$SKED_ATTEMPT $PPID" >> %s' % marker, **fields))

    def test_killed_worker_parked_claim_gets_no_work(self):
        """A worker killed while its claim is parked: the server must not
        lease the next run to the dead connection while a live worker waits."""
        self.start_server()
        dead, dead_id = self.start_worker(name="w-dead")
        # Its claim is parked once the worker has registered and asked.
        time.sleep(1.0)
        dead.kill9()
        live, live_id = self.start_worker(name="w-live")
        # The same name again: a restarted worker must not inherit the old
        # parked claim either.
        again, again_id = self.start_worker(name="w-dead")
        time.sleep(0.5)
        for i in range(3):
            marker = self.path("m%d" % i)
            t0 = time.time()
            job = self.marker_job(marker)
            run = self.wait_run_terminal(job["id"], timeout=10)
            took = time.time() - t0
            self.assertEqual(run["state"], "succeeded", run)
            self.assertEqual(len(run["attempts"]), 1, run)
            self.assertIn(run["attempts"][0]["worker_id"], (live_id, again_id), run)
            self.assertLess(took, 3.0, "run %d took %.1fs: leased to a dead claim?" % (i, took))

    def test_late_claim_answer_is_never_started(self):
        """A worker frozen while the server answers its claim reads the answer
        late: by then the run came back (uncharged) and another worker ran it.
        The late worker must not start it too."""
        self.start_server(extra=("--confirm-within", "2s", "--lease-grace", "1s"))
        frozen, frozen_id = self.start_worker(name="w-frozen")
        time.sleep(1.0)  # its claim is parked
        frozen.signal(signal.SIGSTOP)
        try:
            marker = self.path("marker")
            job = self.marker_job(marker)  # default max_attempts: 1
            # The claim is answered into the frozen worker's socket; the run
            # is leased to it, unconfirmed, then comes back uncharged.
            run = self.wait_runs(job["id"], lambda rs: rs and rs[0]["state"] == "running",
                                 timeout=5)[0]
            self.assertEqual(run["worker_id"], frozen_id)
            t_claim = time.time()
            back = self.wait_run_state(run["id"], ("scheduled", "pending"), timeout=8)
            back_s = time.time() - t_claim
            self.assertEqual(back["attempt"], 0, back)
            self.assertEqual(back["attempts"], [], back)
            self.assertIn("not started", back["reason"] or "", back)
            live, live_id = self.start_worker(name="w-live")
            done = self.wait_run_terminal(job["id"], timeout=10)
            self.assertEqual(done["state"], "succeeded", done)
            self.assertEqual([a["worker_id"] for a in done["attempts"]], [live_id], done)
        finally:
            frozen.signal(signal.SIGCONT)
        # The thawed worker confirms, is told the run is no longer its, and
        # starts nothing.
        wait_until(lambda: "run %s was taken back before it started" % run["id"]
                   in frozen.stderr_text(), 10, msg="the thawed worker to drop the run")
        time.sleep(0.5)
        self.assertEqual(lines_of(marker), ["1 %s" % lines_of(marker)[0].split()[1]])
        print("\nunconfirmed run back in %.1fs (confirm 2s + grace 1s)" % back_s)

    def test_claimed_run_waits_for_its_confirmation(self):
        """Nothing starts before its confirmation is answered: with the
        confirming heartbeat stalled on the way, the claimed run is not
        started, the server takes it back (uncharged) after the confirm
        window, and when the stalled confirmation finally lands the worker
        is told so and starts nothing; then it claims the run again and
        runs it once, as attempt 1."""
        self.start_server(lease="6s", extra=("--confirm-within", "2s", "--lease-grace", "1s"))
        proxy = HoldingProxy(self.srv.url)
        self.addCleanup(proxy.close)
        via = copy.copy(self.srv)
        via.url = proxy.url
        proxy.hold.set()
        worker, wid = self.start_worker(via, name="w-held")
        marker = self.path("marker")
        job = self.marker_job(marker)  # default max_attempts: 1
        wait_until(proxy.held.is_set, 10, interval=0.01, msg="the confirmation to be held")
        run = self.runs_of(job["id"])[0]
        back = self.wait_run_state(run["id"], ("scheduled", "pending"), timeout=10)
        self.assertIn("not started", back["reason"] or "", back)
        self.assertEqual(lines_of(marker), [], "started before its confirmation")
        proxy.hold.clear()
        wait_until(lambda: "run %s was taken back before it started" % run["id"]
                   in worker.stderr_text(), 10, msg="the late confirmation to be refused")
        done = self.wait_run_terminal(job["id"], timeout=15)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual([(a["n"], a["worker_id"]) for a in done["attempts"]], [(1, wid)], done)
        self.assertEqual([l.split()[0] for l in lines_of(marker)], ["1"])

    def test_claim_answer_lost_is_uncharged(self):
        """The claim committed but its answer never reached the worker (a
        server or database restart mid-claim answers 503; a proxy drops it).
        The run comes back after the confirm window, not the lease, and the
        attempt that never began is not charged."""
        self.start_server(lease="20s", extra=("--confirm-within", "2s", "--lease-grace", "1s"))
        ghost = self.ok("POST", "/v1/workers", {"name": "ghost"}, expect=201)["id"]
        marker = self.path("marker")
        job = self.marker_job(marker)  # default max_attempts: 1
        got = self.ok("POST", "/v1/workers/%s/claim" % ghost, {"max": 1}, expect=200)
        self.assertEqual(len(got["runs"]), 1)
        t_claim = time.time()
        live, live_id = self.start_worker(name="w-live")
        done = self.wait_run_terminal(job["id"], timeout=15)
        took = time.time() - t_claim
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(len(done["attempts"]), 1, done)
        self.assertEqual(done["attempts"][0]["worker_id"], live_id)
        self.assertEqual(done["attempts"][0]["n"], 1)
        self.assertEqual(len(lines_of(marker)), 1)
        # Confirm window + grace + a reaper tick, far below the 20 s lease.
        self.assertLess(took, 8.0)
        # The ghost's late report is stale.
        r = got["runs"][0]
        st, _, _ = self.api("POST", "/v1/runs/%s/attempts/1/complete" % r["run_id"],
                            {"fence": r["fence"], "outcome": "succeeded"})
        self.assertEqual(st, 409)
        print("\nlost claim answer: run done %.1fs after the claim (lease 20s)" % took)

    def test_refused_run_goes_back_at_once(self):
        """A worker that refuses a run reports it not started: it is due again
        at once, uncharged."""
        self.start_server(lease="20s", extra=("--confirm-within", "10s"))
        ghost = self.ok("POST", "/v1/workers", {"name": "refuser"}, expect=201)["id"]
        job = self.marker_job(self.path("marker"))
        r = self.ok("POST", "/v1/workers/%s/claim" % ghost, {"max": 1}, expect=200)["runs"][0]
        v = self.ok("POST", "/v1/runs/%s/attempts/%d/complete" % (r["run_id"], r["attempt"]),
                    {"fence": r["fence"], "outcome": "not_started",
                     "reason": "lease over on arrival"}, expect=200)
        self.assertEqual(v["state"], "scheduled")
        run = self.run_get(r["run_id"])
        self.assertEqual(run["attempt"], 0)
        self.assertEqual(run["attempts"], [])
        t0 = time.time()
        self.start_worker(name="w-live")
        done = self.wait_run_terminal(job["id"], timeout=10)
        self.assertEqual(done["state"], "succeeded")
        self.assertLess(time.time() - t0, 5.0)

    def test_recovery_after_worker_kill9_default_settings(self):
        """kill -9 of the worker running an attempt: with the default lease,
        heartbeat and grace, the retry starts within 15 s (it took 36 s)."""
        self.start_server()
        w1, id1 = self.start_worker(name="w1")
        stamps = self.path("stamps")
        job = self.create_job(self.sh_job(
            'echo "$SKED_ATTEMPT $(date +%%s.%%N)" >> %s; '
            'if [ "$SKED_ATTEMPT" = 1 ]; then sleep 60; fi' % stamps,
            retry={"max_attempts": 2, "initial": "1s", "jitter": False}))
        wait_until(lambda: len(lines_of(stamps)) == 1, 10, msg="attempt 1 to start")
        w2, id2 = self.start_worker(name="w2")
        t_kill = time.time()
        w1.kill9()
        wait_until(lambda: len(lines_of(stamps)) == 2, 20, msg="attempt 2 to start")
        started2 = float(lines_of(stamps)[1].split()[1])
        recovery = started2 - t_kill
        self.assertLess(recovery, 15.0)
        done = self.wait_run_terminal(job["id"], timeout=10)
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual([a["outcome"] for a in done["attempts"]], ["lost", "succeeded"])
        print("\nrecovery from a dead worker (kill -9 to the retry's start): %.1fs" % recovery)


    def test_heartbeat_slower_than_a_third_of_the_lease_is_refused(self):
        """With heartbeats slower than lease/3 a worker would fence every
        attempt before its next renewal could arrive: refused at start."""
        os.makedirs(self.path("store"))
        p = self.start("bad-server", ["server", "--listen", "127.0.0.1:0", "--store",
                                      "sqlite:%s/sked.db" % self.path("store"),
                                      "--lease", "3s", "--heartbeat", "2s"])
        self.assertNotEqual(p.wait_exit(), 0)
        self.assertIn("--heartbeat must be at most a third of --lease", p.stderr_text())


class TestClaimAhead(SkedTestCase):
    def test_claim_ahead_takes_a_run_before_its_time(self):
        """A claim with "ahead" takes a run due within it before its time and
        says how long to wait (start_in_us); the run and its attempt are
        recorded as started at the due time, not at the claim. Without
        "ahead", or with a bad one, nothing is taken early."""
        self.start_server(lease="30s")
        wid = self.ok("POST", "/v1/workers", {"name": "wa"}, expect=201)["id"]
        claim = "/v1/workers/%s/claim" % wid
        for bad in ("2s", "soon", 5):
            self.assert_problem(self.api("POST", claim, {"max": 1, "ahead": bad}), 400, "ahead")
        fire = parse_time(fmt_time(time.time() + 2.5))  # to the millisecond, as stored
        job = self.create_job(self.sh_job("true", schedules=[{"at": fmt_time(fire)}]))
        self.assertEqual(self.ok("POST", claim, {"max": 1})["runs"], [])
        # Parked: answered about a second before the fire time.
        runs = self.ok("POST", claim, {"max": 1, "wait": "10s", "ahead": "1s"})["runs"]
        self.assertEqual([r["job_id"] for r in runs], [job["id"]])
        r = runs[0]
        self.assertGreater(r.get("start_in_us", 0), 0, r)
        self.assertLessEqual(r["start_in_us"], 1000000)
        self.assertEqual(parse_time(r["fire_time"]), fire)
        hb = self.ok("POST", "/v1/workers/%s/heartbeat" % wid,
                     {"runs": [{"run_id": r["run_id"], "fence": r["fence"], "started": True}]})
        self.assertEqual(hb["stop"], [])
        got = self.run_get(r["run_id"])
        self.assertEqual(got["state"], "running")
        self.assertEqual(parse_time(got["started_at"]), fire, got)
        self.assertEqual(parse_time(got["attempts"][0]["started_at"]), fire, got)

    def test_worker_starts_a_run_claimed_ahead_at_its_time_not_before(self):
        """`sked worker` claims and confirms runs 50 ms ahead of their fire
        time; the process must still start at that time, never before it."""
        self.start_server()
        self.start_worker(slots=2)
        jobs = []
        for i in range(3):
            fire = parse_time(fmt_time(time.time() + 1.5 + 0.4 * i))
            marker = self.path("start%d" % i)
            job = self.create_job(self.sh_job("date +%%s.%%N > %s" % marker,
                                              schedules=[{"at": fmt_time(fire)}]))
            jobs.append((job, fire, marker))
        for job, fire, marker in jobs:
            run = self.wait_run_terminal(job["id"], timeout=15)
            self.assertEqual(run["state"], "succeeded", run)
            started = float(read_lines(marker)[0])
            self.assertGreaterEqual(started, fire, "started %.6f before its fire time %.3f"
                                    % (fire - started, fire))
            self.assertEqual(parse_time(run["started_at"]), fire, run)


class TestWorkerIdentity(SkedTestCase):
    def worker_token(self, name, namespaces=None):
        body = {"name": name, "role": "worker"}
        if namespaces is not None:
            body["namespaces"] = namespaces
        return self.ok("POST", "/v1/tokens", body, expect=201)["token"]

    def test_worker_token_acts_only_for_its_own_worker(self):
        self.start_server()
        ta, tb = self.worker_token("wa"), self.worker_token("wb")
        wa = self.ok("POST", "/v1/workers", {"name": "wa"}, token=ta, expect=201)["id"]
        wb = self.ok("POST", "/v1/workers", {"name": "wb"}, token=tb, expect=201)["id"]
        job = self.create_job(self.sh_job("true"))
        # b may not claim, heartbeat or drain for a.
        for path, body in (("claim", {"max": 1}), ("heartbeat", {}), ("drain", None)):
            self.assert_problem(self.api("POST", "/v1/workers/%s/%s" % (wa, path), body, token=tb),
                                403, "path.id")
        self.assertEqual(self.ok("GET", "/v1/runs?job_id=" + job["id"])["items"][0]["state"],
                         "pending")
        r = self.ok("POST", "/v1/workers/%s/claim" % wa, {"max": 1}, token=ta)["runs"][0]
        # Nor renew, log to or complete a's run, even knowing its fence.
        hb = self.ok("POST", "/v1/workers/%s/heartbeat" % wb,
                     {"runs": [{"run_id": r["run_id"], "fence": r["fence"], "started": True}]},
                     token=tb)
        self.assertEqual([s["run_id"] for s in hb["stop"]], [r["run_id"]])
        self.assert_problem(self.api("POST", "/v1/runs/%s/attempts/1/log?fence=%d&seq=0"
                                     % (r["run_id"], r["fence"]), raw=b"forged", token=tb),
                            403, "path.id")
        self.assert_problem(self.api("POST", "/v1/runs/%s/attempts/1/complete" % r["run_id"],
                                     {"fence": r["fence"], "outcome": "succeeded"}, token=tb),
                            403, "path.id")
        run = self.run_get(r["run_id"])
        self.assertEqual(run["state"], "running")
        self.assertEqual(run["log_bytes"], 0)
        # a itself can.
        self.ok("POST", "/v1/workers/%s/heartbeat" % wa,
                {"runs": [{"run_id": r["run_id"], "fence": r["fence"], "started": True}]},
                token=ta)
        v = self.ok("POST", "/v1/runs/%s/attempts/1/complete" % r["run_id"],
                    {"fence": r["fence"], "outcome": "succeeded"}, token=ta)
        self.assertEqual(v["state"], "succeeded")

    def test_batch_completion(self):
        """Completions sent together (POST /v1/workers/{id}/complete): each is
        answered on its own -- applied, stale, another token's -- and a
        malformed entry refuses the whole batch, changing nothing. The one
        thing a forged batch must never do is finish someone else's run."""
        self.start_server(lease="30s")
        ta, tb = self.worker_token("wa"), self.worker_token("wb")
        wa = self.ok("POST", "/v1/workers", {"name": "wa"}, token=ta, expect=201)["id"]
        wb = self.ok("POST", "/v1/workers", {"name": "wb"}, token=tb, expect=201)["id"]
        for i in range(3):
            self.create_job(self.sh_job("true", name="b%d" % i))
        mine = self.ok("POST", "/v1/workers/%s/claim" % wa, {"max": 2}, token=ta)["runs"]
        theirs = self.ok("POST", "/v1/workers/%s/claim" % wb, {"max": 1}, token=tb)["runs"]
        self.assertEqual((len(mine), len(theirs)), (2, 1))

        def entry(r, **kw):
            d = {"run_id": r["run_id"], "attempt": r["attempt"], "fence": r["fence"],
                 "outcome": "succeeded", "exit_code": 0}
            d.update(kw)
            return d
        # A bad entry: nothing of the batch is applied.
        self.assert_problem(self.api("POST", "/v1/workers/%s/complete" % wa,
                                     {"runs": [entry(mine[0]), entry(mine[1], outcome="lost")]},
                                     token=ta), 400, "runs[1].outcome")
        self.assertEqual(self.run_get(mine[0]["run_id"])["state"], "running")
        # b's token cannot send for a's worker at all.
        self.assert_problem(self.api("POST", "/v1/workers/%s/complete" % wa,
                                     {"runs": [entry(mine[0])]}, token=tb), 403, "path.id")
        res = self.ok("POST", "/v1/workers/%s/complete" % wa,
                      {"runs": [entry(mine[0], result_json='{"n": 1}'),
                                entry(mine[1], fence=mine[1]["fence"] + 1),
                                entry(theirs[0]),
                                entry(mine[0], outcome="failed", exit_code=3)]},
                      token=ta)["results"]
        self.assertEqual([r["status"] for r in res], [200, 409, 403, 200], res)
        self.assertEqual([r["run_id"] for r in res],
                         [mine[0]["run_id"], mine[1]["run_id"], theirs[0]["run_id"],
                          mine[0]["run_id"]])
        done = self.run_get(mine[0]["run_id"])
        self.assertEqual(done["state"], "succeeded")  # the repeat changed nothing
        self.assertEqual(self.ok("GET", "/v1/runs/%s/result" % mine[0]["run_id"]), {"n": 1})
        self.assertEqual(self.run_get(mine[1]["run_id"])["state"], "running")
        self.assertEqual(self.run_get(theirs[0]["run_id"])["state"], "running")

    def test_completion_carries_the_next_claim(self):
        """A completion that carries a claim gets the next runs in the same
        answer, with unconfirmed leases like any claim; the claim respects
        the worker's own scope (a drained worker gets none), a bad claim
        refuses the whole body and changes nothing, and a run that ends
        before it was confirmed is settled by its completion alone."""
        self.start_server(lease="30s")
        tok = self.worker_token("wc")
        wid = self.ok("POST", "/v1/workers", {"name": "wc"}, token=tok, expect=201)["id"]
        for i in range(4):
            self.create_job(self.sh_job("true", name="c%d" % i))
        first = self.ok("POST", "/v1/workers/%s/claim" % wid, {"max": 1}, token=tok)["runs"]
        self.assertEqual(len(first), 1)

        def entry(r):
            return {"run_id": r["run_id"], "attempt": r["attempt"], "fence": r["fence"],
                    "outcome": "succeeded", "exit_code": 0}
        self.assert_problem(self.api("POST", "/v1/workers/%s/complete" % wid,
                                     {"runs": [entry(first[0])], "claim": {"max": 0}},
                                     token=tok), 400, "claim.max")
        self.assert_problem(self.api("POST", "/v1/workers/%s/complete" % wid,
                                     {"runs": [entry(first[0])], "claim": {"max": 1, "x": 1}},
                                     token=tok), 400, "claim.x")
        self.assertEqual(self.run_get(first[0]["run_id"])["state"], "running")

        ans = self.ok("POST", "/v1/workers/%s/complete" % wid,
                      {"runs": [entry(first[0])], "claim": {"max": 2}}, token=tok)
        self.assertEqual([r["status"] for r in ans["results"]], [200])
        nxt = ans["claimed"]["runs"]
        self.assertEqual(len(nxt), 2)
        self.assertIn("confirm_within", ans["claimed"])
        self.assertEqual(self.run_get(first[0]["run_id"])["state"], "succeeded")
        for r in nxt:
            got = self.run_get(r["run_id"])
            self.assertEqual((got["state"], got["worker_id"]), ("running", wid))
        # Never confirmed: the completion alone settles each.
        ans = self.ok("POST", "/v1/workers/%s/complete" % wid,
                      {"runs": [entry(r) for r in nxt]}, token=tok)
        self.assertNotIn("claimed", ans)
        for r in nxt:
            self.assertEqual(self.run_get(r["run_id"])["state"], "succeeded")
        # A drained worker's completion claims nothing; the last run waits.
        self.ok("POST", "/v1/workers/%s/drain" % wid, token=tok)
        last = [r for r in self.list_all("/v1/runs") if r["state"] == "pending"]
        self.assertEqual(len(last), 1, last)
        ans = self.ok("POST", "/v1/workers/%s/complete" % wid,
                      {"runs": [entry(first[0])], "claim": {"max": 1}}, token=tok)
        self.assertEqual(ans["claimed"]["runs"], [])
        self.assertEqual(self.run_get(last[0]["id"])["state"], "pending")

    def test_claim_answer_keeps_alert_rules_from_the_worker(self):
        """A claimed run carries its job's document, except its alert rules
        and their webhook secrets: the server's business, not the worker's.
        A document that merely mentions "alerts" in a value keeps it."""
        self.start_server()
        secret = "whsec-%s" % os.urandom(6).hex()
        alerted = self.create_job(self.sh_job("true", alerts=[
            {"on": ["failed"], "webhook": "https://hooks.example/x", "secret": secret}]))
        plain = self.create_job(self.sh_job("true", env={"NOTE": '"alerts"'}))
        w = self.ok("POST", "/v1/workers", {"name": "w"}, expect=201)["id"]
        ans = self.ok("POST", "/v1/workers/%s/claim" % w, {"max": 10})
        specs = {r["job_id"]: r["spec"] for r in ans["runs"]}
        self.assertEqual(set(specs), {alerted["id"], plain["id"]})
        self.assertNotIn("alerts", specs[alerted["id"]])
        self.assertEqual(specs[alerted["id"]]["command"], ["/bin/sh", "-c", "true"])
        self.assertNotIn(secret, json.dumps(ans))
        self.assertEqual(specs[plain["id"]]["env"]["NOTE"], '"alerts"')

    def test_namespace_worker_token_claims_only_its_namespace(self):
        self.start_server()
        tb = self.worker_token("wb", namespaces=["team-b"])
        wb = self.ok("POST", "/v1/workers", {"name": "wb"}, token=tb, expect=201)["id"]
        secret_a = self.create_job(self.sh_job("true", namespace="team-a",
                                               env={"API_KEY": {"secret": "s3cret-a"}}))
        job_b = self.create_job(self.sh_job("true", namespace="team-b"))
        got = self.ok("POST", "/v1/workers/%s/claim" % wb, {"max": 10}, token=tb)
        self.assertEqual([r["job_id"] for r in got["runs"]], [job_b["id"]])
        self.assertNotIn("s3cret-a", str(got))
        again = self.ok("POST", "/v1/workers/%s/claim" % wb, {"max": 10}, token=tb)
        self.assertEqual(again["runs"], [])
        self.assertEqual(self.runs_of(secret_a["id"])[0]["state"], "pending")

    def test_fences_are_not_guessable(self):
        self.start_server()
        w = self.ok("POST", "/v1/workers", {"name": "w"}, expect=201)["id"]
        fences = []
        for i in range(5):
            self.create_job(self.sh_job("true"))
            r = self.ok("POST", "/v1/workers/%s/claim" % w, {"max": 1})["runs"][0]
            fences.append(r["fence"])
        for a, b in zip(fences, fences[1:]):
            self.assertGreater(abs(b - a), 1000000, fences)


if __name__ == "__main__":
    unittest.main()
