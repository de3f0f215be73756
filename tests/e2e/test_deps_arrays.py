"""Job arrays and job dependencies without a workflow (issue 10, points 2
and 5), end to end with real processes, on a SQLite store (TestSqlite) and
on a real PostgreSQL (TestPostgres): every test runs on both.

Arrays: `sked submit --array 0-19%3` runs indices 0..19 once each with
$SKED_ARRAY_INDEX and $SKED_PARENT_RUN_ID, never more than 3 at once (read
from the jobs' own start and end stamps); an index that fails is retried on
its own while the others go on; the array run's state and counts show in
GET /v1/jobs/{id} (last_run.array) and its state in GET /v1/runs/{id}; a
waiting index explains itself (waiting_for_slot); canceling the array run
cancels the waiting indices and stops the running ones; a worker killed
with kill -9 mid-array loses no index and none succeeds twice.

Dependencies: a run of B waits (state waiting, explain
waiting_on_upstream) for the latest run of A, or for A's next run when A
has none yet, then runs or is skipped with its reason, under afterok,
afterany and afternotok, with two upstreams of mixed conditions, on an
array job (the whole array run), and from `sked submit --dependency`.
Refusals (unknown upstream, another namespace, a PATCH that closes a
cycle, bad array fields) are problem+json naming the entry and change
nothing."""

import json
import os
import time
import unittest

from pgcluster import ClusterTestCase
from skedtest import TERMINAL, SkedTestCase, parse_time, pid_alive, read_lines, wait_until

# A job script's stamps, one line each, appended to a file:
#   start|end|fail INDEX ATTEMPT EPOCH PID PARENT_RUN RUN
STAMP = ('echo "%s ${SKED_ARRAY_INDEX:--} $SKED_ATTEMPT $(date +%%s.%%N) $$ '
         '${SKED_PARENT_RUN_ID:--} $SKED_RUN_ID" >> %s')


def stamps(path):
    """The stamp lines of path as dicts."""
    out = []
    for line in read_lines(path):
        kind, idx, att, t, pid, parent, run = line.split()
        out.append({"kind": kind, "index": None if idx == "-" else int(idx),
                    "attempt": int(att), "t": float(t), "pid": int(pid),
                    "parent": None if parent == "-" else parent, "run": run})
    return out


def max_overlap(st):
    """The most attempts going at once, from start and end/fail stamps. An
    index's next attempt (or the next index) is released only after the
    previous one's process wrote its last stamp and exited, so on a tie an
    end counts before a start."""
    events = []
    for s in st:
        events.append((s["t"], 0 if s["kind"] != "start" else 1, s["kind"]))
    going = peak = 0
    for _, _, kind in sorted(events):
        going += 1 if kind == "start" else -1
        peak = max(peak, going)
    return peak


class ArrDepsCase:
    """The tests; boot() and add_worker() come from the backend class."""

    # ---- helpers ------------------------------------------------------

    def script(self, path, body="sleep 0.2", fail_if=None):
        """A shell script stamping start, running body, then stamping end;
        fail_if (a shell condition) makes it stamp fail and exit 3."""
        s = STAMP % ("start", path) + "; " + body + "; "
        if fail_if:
            s += "if %s; then %s; exit 3; fi; " % (fail_if, STAMP % ("fail", path))
        return s + STAMP % ("end", path)

    def gated(self, path, gate, code=0):
        """A script that stamps, waits (bounded) for the file gate, then
        stamps end (code 0) or fail and exits with code."""
        wait = ('i=0; while [ ! -e %s ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done'
                % gate)
        if code == 0:
            return STAMP % ("start", path) + "; " + wait + "; " + STAMP % ("end", path)
        return (STAMP % ("start", path) + "; " + wait + "; " + STAMP % ("fail", path)
                + "; exit %d" % code)

    def open_gate(self, gate):
        with open(gate, "w"):
            pass

    def array_run(self, job_id):
        """The job's (only) array run: its run without a parent."""
        runs = [r for r in self.runs_of(job_id) if r["parent_id"] is None]
        self.assertEqual(len(runs), 1, runs)
        return runs[0]

    def members(self, job_id):
        return sorted((r for r in self.runs_of(job_id) if r["parent_id"] is not None),
                      key=lambda r: r["array_index"])

    def only_run(self, job_id):
        runs = self.runs_of(job_id)
        self.assertEqual(len(runs), 1, runs)
        return runs[0]

    def explain_run(self, run_id):
        return self.ok("GET", "/v1/runs/%s/explain" % run_id, expect=200)

    def reason(self, doc, code):
        codes = [r["code"] for r in doc["reasons"]]
        self.assertEqual(codes, [code], json.dumps(doc, indent=1))
        r = doc["reasons"][0]
        self.assertTrue(r["message"].endswith("."), r)
        return r

    def wait_state(self, run_id, states, timeout=20.0):
        return self.wait_run_state(run_id, states, timeout)

    def job_last(self, job_id):
        return self.ok("GET", "/v1/jobs/" + job_id, expect=200)["last_run"]

    def wait_job_terminal(self, job_id, timeout=30.0):
        return self.wait_runs(job_id, lambda rs: rs and all(r["state"] in TERMINAL for r in rs),
                              timeout, "every run of %s ended" % job_id)

    def problem(self, method, path, body, field):
        st, h, v = self.api(method, path, body)
        return self.assert_problem((st, h, v), 400, field)

    # ---- arrays ---------------------------------------------------------

    def test_array_cli_twenty_indices_three_at_a_time(self):
        self.boot()
        out = self.path("stamps")
        # No worker yet: what is made at once is looked at before any index
        # runs (on a loaded machine 20 indices of 0.4 s, 3 at a time, could
        # all have been released before the first look).
        jid = self.cli_ok("submit", "-q", "--array", "0-19%3", "--name", "frames",
                          "--env", "E2E_SKED_TMP=" + self.tmp, "--",
                          "sh", "-c", self.script(out, "sleep 0.4")).strip()
        self.assertRegex(jid, r"^job_")
        job = self.ok("GET", "/v1/jobs/" + jid, expect=200)
        self.assertEqual(job["array"], {"count": 20, "parallel": 3})

        # Made at once: the array run and its 20 members, 3 due and 17 waiting.
        arr = self.array_run(jid)
        self.assertIsNone(arr["array_index"])
        mem = self.members(jid)
        self.assertEqual([m["array_index"] for m in mem], list(range(20)))
        self.assertTrue(all(m["parent_id"] == arr["id"] for m in mem), mem)
        # A waiting index says it waits for a slot of its array (limit 3).
        waiting = [m for m in mem if m["state"] == "waiting"]
        self.assertEqual([m["array_index"] for m in waiting], list(range(3, 20)), mem)
        r = self.reason(self.explain_run(waiting[-1]["id"]), "waiting_for_slot")
        self.assertEqual(r["limit"], 3)
        self.assertIn("index %d" % waiting[-1]["array_index"], r["message"])
        # The array run itself goes on while its members run.
        r = self.reason(self.explain_run(arr["id"]), "waiting_on_members")
        self.assertEqual(r["limit"], 20)

        self.add_worker("w1", slots=8)
        done = self.wait_state(arr["id"], TERMINAL, 60)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertIsNotNone(done["finished_at"])
        st = stamps(out)
        starts = sorted(s["index"] for s in st if s["kind"] == "start")
        ends = sorted(s["index"] for s in st if s["kind"] == "end")
        self.assertEqual(starts, list(range(20)), "each index started exactly once")
        self.assertEqual(ends, list(range(20)), "each index ended exactly once")
        self.assertLessEqual(max_overlap(st), 3, "never more than 3 at once")
        self.assertEqual(max_overlap(st), 3, "3 at once when there is room")
        by_index = {m["array_index"]: m["id"] for m in mem}
        for s in st:
            self.assertEqual(s["parent"], arr["id"], s)
            self.assertEqual(s["run"], by_index[s["index"]], s)
        for m in self.members(jid):
            self.assertEqual((m["state"], m["attempt"]), ("succeeded", 1), m)
        last = self.job_last(jid)
        self.assertEqual(last["id"], arr["id"])
        self.assertEqual(last["state"], "succeeded")
        self.assertEqual(last["array"], {"count": 20, "parallel": 3, "open": 0, "succeeded": 20,
                                         "failed": 0, "canceled": 0, "skipped": 0})

    def test_array_index_retried_on_its_own(self):
        self.boot()
        out, marker = self.path("stamps"), self.path("failed-once")
        # Index 3 fails its first attempt (then the marker exists); index 4
        # fails every attempt.
        fail_if = ('{ [ "$SKED_ARRAY_INDEX" = 3 ] && mkdir %s 2>/dev/null; } || '
                   '[ "$SKED_ARRAY_INDEX" = 4 ]' % marker)
        job = self.create_job(self.sh_job(
            self.script(out, "sleep 0.2", fail_if), array={"count": 8, "parallel": 3},
            retry={"max_attempts": 2, "initial": "2s", "jitter": False}))
        arr = self.array_run(job["id"])
        # While counting (no worker yet, so before any index could end): the
        # state and the counts so far.
        last = self.job_last(job["id"])
        self.assertEqual((last["id"], last["state"]), (arr["id"], "waiting"))
        self.assertEqual(last["array"]["count"], 8)
        self.assertEqual(last["array"]["parallel"], 3)
        self.add_worker("w1", slots=4)
        done = self.wait_state(arr["id"], TERMINAL, 60)
        self.assertEqual(done["state"], "failed", done)
        self.assertEqual(done["reason"], "1 of 8 failed or were canceled")
        st = stamps(out)
        attempts = {}
        for s in st:
            if s["kind"] == "start":
                attempts.setdefault(s["index"], []).append(s["attempt"])
        self.assertEqual(attempts, {0: [1], 1: [1], 2: [1], 3: [1, 2], 4: [1, 2], 5: [1], 6: [1],
                                    7: [1]})
        # Index 3's retry waited out its own backoff (keeping its slot)
        # while other indices ran.
        fail3 = [s["t"] for s in st if s["index"] == 3 and s["kind"] == "fail"][0]
        retry3 = [s["t"] for s in st if s["index"] == 3 and s["attempt"] == 2
                  and s["kind"] == "start"][0]
        self.assertGreaterEqual(retry3 - fail3, 1.8, "the retry kept its backoff")
        others = [s for s in st if s["kind"] == "start" and s["index"] != 3
                  and fail3 < s["t"] < retry3]
        self.assertTrue(others, "other indices went on during index 3's backoff: %r" % st)
        self.assertLessEqual(max_overlap(st), 3)
        states = {m["array_index"]: (m["state"], m["attempt"]) for m in self.members(job["id"])}
        self.assertEqual(states[3], ("succeeded", 2))
        self.assertEqual(states[4], ("failed", 2))
        self.assertTrue(all(states[i] == ("succeeded", 1) for i in (0, 1, 2, 5, 6, 7)), states)
        detail = self.run_get(self.members(job["id"])[3]["id"])
        self.assertEqual([a["outcome"] for a in detail["attempts"]], ["failed", "succeeded"])
        last = self.job_last(job["id"])
        self.assertEqual(last["state"], "failed")
        self.assertEqual(last["array"], {"count": 8, "parallel": 3, "open": 0, "succeeded": 7,
                                         "failed": 1, "canceled": 0, "skipped": 0})

    def test_cancel_array_run(self):
        self.boot()
        self.add_worker("w1", slots=4)
        out = self.path("stamps")
        job = self.create_job(self.sh_job(self.script(out, "sleep 60"),
                                          array={"count": 6, "parallel": 2}))
        arr = self.array_run(job["id"])
        wait_until(lambda: len([s for s in stamps(out) if s["kind"] == "start"]) == 2, 20,
                   msg="two indices running")
        pids = [s["pid"] for s in stamps(out)]
        self.assertTrue(all(pid_alive(p) for p in pids))
        v = self.ok("POST", "/v1/runs/%s/cancel" % arr["id"], expect=200)
        self.assertEqual(v["state"], "canceled", v)
        # The waiting ones end at once; the running ones are stopped by their worker.
        mem = self.wait_runs(job["id"], lambda rs: all(r["state"] in TERMINAL for r in rs), 30,
                             "every member ended")
        self.assertEqual(sorted(r["state"] for r in mem), ["canceled"] * 7, mem)
        wait_until(lambda: not any(pid_alive(p) for p in pids), 15, msg="the running indices gone")
        self.assertEqual(len(stamps(out)), 2, "no index started after the cancel, none ended")
        last = self.job_last(job["id"])
        self.assertEqual(last["state"], "canceled")
        self.assertEqual(last["array"], {"count": 6, "parallel": 2, "open": 0, "succeeded": 0,
                                         "failed": 0, "canceled": 6, "skipped": 0})
        st, _, v = self.api("POST", "/v1/runs/%s/cancel" % arr["id"])
        self.assert_problem((st, _, v), 409)

    def test_worker_killed_mid_array(self):
        self.boot(lease="3s", heartbeat="1s", extra=("--lease-grace", "1s"))
        w1, id1 = self.add_worker("w1", slots=3)
        out = self.path("stamps")
        job = self.create_job(self.sh_job(
            self.script(out, "sleep 1"), array={"count": 10, "parallel": 3},
            retry={"max_attempts": 3, "initial": "1s", "jitter": False}))
        arr = self.array_run(job["id"])
        # Kill it while three indices run and at least one has finished.
        def mid():
            st = stamps(out)
            ended = {s["run"] for s in st if s["kind"] == "end"}
            going = [s for s in st if s["kind"] == "start" and s["run"] not in ended]
            return len(ended) >= 1 and len(going) == 3
        wait_until(mid, 30, interval=0.02, msg="three indices running after one ended")
        self.add_worker("w2", slots=3)
        w1.kill9()
        done = self.wait_state(arr["id"], TERMINAL, 90)
        self.assertEqual(done["state"], "succeeded", done)
        mem = self.members(job["id"])
        self.assertEqual([m["array_index"] for m in mem], list(range(10)))
        lost = 0
        ends = {}
        for s in stamps(out):
            if s["kind"] == "end":
                ends[s["index"]] = ends.get(s["index"], 0) + 1
        self.assertEqual(sorted(ends), list(range(10)), "every index ran to its end")
        for m in mem:
            d = self.run_get(m["id"])
            outcomes = [a["outcome"] for a in d["attempts"]]
            self.assertEqual(d["state"], "succeeded", d)
            self.assertEqual(outcomes.count("succeeded"), 1, "index %d: %r" % (
                m["array_index"], outcomes))
            self.assertEqual(outcomes[-1], "succeeded")
            self.assertTrue(all(o == "lost" for o in outcomes[:-1]), outcomes)
            lost += len(outcomes) - 1
            # At least once: an index may have run to its end twice only if
            # the worker died between its exit and the report.
            if ends[m["array_index"]] > 1:
                self.assertGreater(len(outcomes), 1, m)
        self.assertGreaterEqual(lost, 1, "the kill cost some index an attempt")
        last = self.job_last(job["id"])
        self.assertEqual(last["array"]["succeeded"], 10)
        self.assertEqual(last["array"]["open"], 0)

    # ---- dependencies ---------------------------------------------------

    def test_conditions_when_the_upstream_succeeds_or_fails(self):
        self.boot()
        self.add_worker("w1", slots=4)
        for outcome in ("succeeds", "fails", "is canceled"):
            with self.subTest(upstream=outcome):
                tag = outcome.split()[-1]
                a_out, gate = self.path("a-" + tag), self.path("gate-" + tag)
                a = self.create_job(self.sh_job(self.gated(a_out, gate,
                                                           0 if outcome == "succeeds" else 3),
                                                name="a-" + tag))
                wait_until(lambda: stamps(a_out), 20, msg="a to start")
                b = {}
                for cond in ("afterok", "afterany", "afternotok"):
                    b[cond] = self.create_job(self.sh_job(
                        self.script(self.path("b-%s-%s" % (tag, cond)), "true"),
                        name="b-%s-%s" % (tag, cond),
                        depends_on=[{"job": a["id"], "condition": cond}]))
                    self.assertEqual(b[cond]["depends_on"], [{"job": a["id"], "condition": cond}])
                for cond, j in b.items():
                    run = self.only_run(j["id"])
                    self.assertEqual(run["state"], "waiting", run)
                    self.assertEqual(run["deps"], {"trigger_rule": "all_success", "upstreams": 1,
                                                   "succeeded": 0, "failed": 0, "skipped": 0})
                    r = self.reason(self.explain_run(run["id"]), "waiting_on_upstream")
                    self.assertEqual((r["count"], r["limit"]), (0, 1), r)
                if outcome == "is canceled":
                    self.ok("POST", "/v1/runs/%s/cancel" % self.only_run(a["id"])["id"],
                            expect=200)
                else:
                    self.open_gate(gate)
                a_run = self.wait_run_terminal(a["id"], 20)
                self.assertEqual(a_run["state"], {"succeeds": "succeeded", "fails": "failed",
                                                  "is canceled": "canceled"}[outcome])
                a_end = parse_time(a_run["finished_at"])
                if outcome != "is canceled":
                    a_end = stamps(a_out)[-1]["t"]
                want = {"afterok": "upstream_failed", "afternotok": "upstream_succeeded"}
                for cond, j in b.items():
                    run = self.wait_run_terminal(j["id"], 20)
                    runs_b = (cond == "afterany" or (cond == "afterok") == (outcome == "succeeds"))
                    b_st = stamps(self.path("b-%s-%s" % (tag, cond)))
                    if runs_b:
                        self.assertEqual(run["state"], "succeeded", run)
                        self.assertEqual(len(b_st), 2)
                        self.assertGreater(b_st[0]["t"], a_end, "b started after a ended")
                    else:
                        self.assertEqual((run["state"], run["reason"]), ("skipped", want[cond]),
                                         run)
                        self.assertEqual(b_st, [], "a skipped run never ran")
                        self.assertGreaterEqual(parse_time(run["finished_at"]),
                                                parse_time(a_run["finished_at"]))
                        r = self.reason(self.explain_run(run["id"]), "finished")
                        self.assertIn(want[cond], r["message"])

    def test_skips_travel_down_a_chain(self):
        """x fails; a (afterok x) is skipped; what waits on a sees a skipped
        upstream: afterok is skipped too (upstream_skipped), afternotok and
        afterany run."""
        self.boot()
        self.add_worker("w1", slots=2)
        gate = self.path("gate")
        x = self.create_job(self.sh_job(self.gated(self.path("x"), gate, 5), name="x"))
        a = self.create_job(self.sh_job("true", name="a", depends_on=[{"job": x["id"]}]))
        outs = {c: self.path("b-" + c) for c in ("afterok", "afterany", "afternotok")}
        b = {c: self.create_job(self.sh_job(self.script(outs[c], "true"), name="b-" + c,
                                            depends_on=[{"job": a["id"], "condition": c}]))
             for c in outs}
        for j in b.values():
            self.assertEqual(self.only_run(j["id"])["state"], "waiting")
        self.open_gate(gate)
        ra = self.wait_run_terminal(a["id"], 20)
        self.assertEqual((ra["state"], ra["reason"]), ("skipped", "upstream_failed"), ra)
        for c, j in b.items():
            run = self.wait_run_terminal(j["id"], 20)
            if c == "afterok":
                self.assertEqual((run["state"], run["reason"]), ("skipped", "upstream_skipped"))
                self.assertEqual(stamps(outs[c]), [])
                # A job's deps count conditions: held (succeeded) or never
                # to hold (failed); the reason says the upstream was skipped.
                self.assertEqual(run["deps"], {"trigger_rule": "all_success", "upstreams": 1,
                                               "succeeded": 0, "failed": 1, "skipped": 0})
            else:
                self.assertEqual(run["state"], "succeeded", run)
                self.assertEqual(len(stamps(outs[c])), 2)

    def test_upstream_without_a_run_yet_binds_its_next_run(self):
        self.boot()
        self.add_worker("w1", slots=2)
        a_out, b_out = self.path("a"), self.path("b")
        at = time.time() + 4
        at_s = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at + 1))
        a = self.create_job(self.sh_job(self.script(a_out, "true"), schedules=[{"at": at_s}]))
        self.assertEqual(self.runs_of(a["id"]), [])
        b = self.create_job(self.sh_job(self.script(b_out, "true"),
                                        depends_on=[{"job": a["id"]}]))
        self.assertEqual(b["depends_on"], [{"job": a["id"], "condition": "afterok"}])
        run = self.only_run(b["id"])
        self.assertEqual(run["state"], "waiting")
        r = self.reason(self.explain_run(run["id"]), "waiting_on_upstream")
        self.assertEqual((r["count"], r["limit"]), (0, 1))
        done = self.wait_run_terminal(b["id"], 30)
        self.assertEqual(done["state"], "succeeded", done)
        a_st, b_st = stamps(a_out), stamps(b_out)
        self.assertEqual(len(a_st), 2)
        self.assertGreaterEqual(a_st[0]["t"], parse_time(at_s) - 0.05, "a ran at its time")
        self.assertGreater(b_st[0]["t"], a_st[-1]["t"], "b waited for a's next run")
        self.assertEqual(self.run_get(done["id"])["deps"]["succeeded"], 1)

    def test_upstream_run_made_ahead_of_its_time(self):
        """Runs are made up to a second before their fire time: a dependent
        made in that second waits for that run, not for the one after."""
        self.boot()
        self.add_worker("w1", slots=2)
        a_out, b_out = self.path("a"), self.path("b")
        at_s = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4))
        a = self.create_job(self.sh_job(self.script(a_out, "true"), schedules=[{"at": at_s}]))
        made = self.wait_runs(a["id"], lambda rs: rs, 10, "a's run made ahead")[0]
        b = self.create_job(self.sh_job(self.script(b_out, "true"),
                                        depends_on=[{"job": a["id"]}]))
        self.assertLess(time.time(), parse_time(at_s), "b was made before a's fire time")
        self.assertEqual(self.runs_of(a["id"])[0]["state"], "scheduled", "a had not started")
        run = self.only_run(b["id"])
        self.assertEqual(run["state"], "waiting")
        done = self.wait_run_terminal(b["id"], 20)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(self.run_get(made["id"])["state"], "succeeded")
        self.assertGreater(stamps(b_out)[0]["t"], stamps(a_out)[-1]["t"])

    def test_two_upstreams_with_mixed_conditions(self):
        self.boot()
        self.add_worker("w1", slots=4)
        g1, g2 = self.path("g1"), self.path("g2")
        a1 = self.create_job(self.sh_job(self.gated(self.path("a1"), g1, 0), name="a1"))
        a2 = self.create_job(self.sh_job(self.gated(self.path("a2"), g2, 4), name="a2"))
        b_out, c_out = self.path("b"), self.path("c")
        b = self.create_job(self.sh_job(self.script(b_out, "true"), name="b", depends_on=[
            {"job": a1["id"], "condition": "afterok"},
            {"job": a2["id"], "condition": "afternotok"}]))
        c = self.create_job(self.sh_job(self.script(c_out, "true"), name="c", depends_on=[
            {"job": a1["id"], "condition": "afterok"},
            {"job": a2["id"], "condition": "afterok"}]))
        # a2 fails first, while a1 still runs: c can never go and is skipped
        # at once; b's afternotok holds, and b waits on for a1.
        self.open_gate(g2)
        a2_run = self.wait_run_terminal(a2["id"], 20)
        self.assertEqual(a2_run["state"], "failed")
        rc = self.wait_run_terminal(c["id"], 20)
        self.assertEqual((rc["state"], rc["reason"]), ("skipped", "upstream_failed"), rc)
        self.assertNotIn(self.only_run(a1["id"])["state"], TERMINAL, "decided without a1")
        self.assertEqual(stamps(c_out), [])
        run = self.wait_runs(b["id"], lambda rs: rs[0]["deps"]["succeeded"] == 1, 10)[0]
        self.assertEqual(run["state"], "waiting", run)
        r = self.reason(self.explain_run(run["id"]), "waiting_on_upstream")
        self.assertEqual((r["count"], r["limit"]), (1, 2), r)
        self.open_gate(g1)
        self.wait_run_terminal(a1["id"], 20)
        rb = self.wait_run_terminal(b["id"], 20)
        self.assertEqual(rb["state"], "succeeded", rb)
        # Conditions are counted: a2's failure holds for afternotok.
        self.assertEqual(rb["deps"], {"trigger_rule": "all_success", "upstreams": 2,
                                      "succeeded": 2, "failed": 0, "skipped": 0})
        self.assertGreater(stamps(b_out)[0]["t"], stamps(self.path("a1"))[-1]["t"])

    def test_deleting_the_upstream_decides_what_waits(self):
        self.boot()
        self.add_worker("w1", slots=2)
        a = self.create_job(self.sh_job(self.gated(self.path("a"), self.path("gate"), 0),
                                        name="a"))
        wait_until(lambda: stamps(self.path("a")), 20, msg="a to start")
        ok = self.create_job(self.sh_job("true", name="ok", depends_on=[{"job": a["id"]}]))
        notok = self.create_job(self.sh_job("true", name="notok", depends_on=[
            {"job": a["id"], "condition": "afternotok"}]))
        self.ok("DELETE", "/v1/jobs/" + a["id"], expect=204)
        run = self.wait_run_terminal(ok["id"], 20)
        self.assertEqual((run["state"], run["reason"]), ("skipped", "upstream_failed"), run)
        run = self.wait_run_terminal(notok["id"], 20)
        self.assertEqual(run["state"], "succeeded", run)

    def test_sked_submit_dependency(self):
        self.boot()
        self.add_worker("w1", slots=2)
        gate, a_out, b_out = self.path("gate"), self.path("a"), self.path("b")
        a = self.create_job(self.sh_job(self.gated(a_out, gate, 0), name="a"))
        x = self.create_job(self.sh_job("true", name="x", schedules=[{"at": "2099-01-01T00:00:00Z"}]))
        bid = self.cli_ok("submit", "-q", "--name", "b", "--dependency", "afterok:" + a["id"],
                          "--env", "E2E_SKED_TMP=" + self.tmp, "--",
                          "sh", "-c", self.script(b_out, "true")).strip()
        b = self.ok("GET", "/v1/jobs/" + bid, expect=200)
        self.assertEqual(b["depends_on"], [{"job": a["id"], "condition": "afterok"}])
        self.assertEqual(self.only_run(bid)["state"], "waiting")
        self.open_gate(gate)
        run = self.wait_run_terminal(bid, 20)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertGreater(stamps(b_out)[0]["t"], stamps(a_out)[-1]["t"])
        # A bare job id means afterok.
        bare = self.cli_ok("submit", "-q", "--name", "bare", "--dependency", x["id"],
                           "--at", "2099-01-01T00:00:00Z", "--", "true").strip()
        self.assertEqual(self.ok("GET", "/v1/jobs/" + bare, expect=200)["depends_on"],
                         [{"job": x["id"], "condition": "afterok"}])
        # Several conditions and jobs in one flag, Slurm's form.
        cid = self.cli_ok("submit", "-q", "--name", "c", "--dependency",
                          "afternotok:%s:%s,afterany:%s" % (a["id"], bid, x["id"]),
                          "--env", "E2E_SKED_TMP=" + self.tmp, "--", "true").strip()
        c = self.ok("GET", "/v1/jobs/" + cid, expect=200)
        self.assertEqual(c["depends_on"], [{"job": a["id"], "condition": "afternotok"},
                                           {"job": bid, "condition": "afternotok"},
                                           {"job": x["id"], "condition": "afterany"}])
        # a and b succeeded: afternotok can never hold.
        run = self.wait_run_terminal(cid, 20)
        self.assertEqual((run["state"], run["reason"]), ("skipped", "upstream_succeeded"), run)
        # An unknown job: refused by the server, naming the entry; nothing made.
        before = len(self.list_all("/v1/jobs"))
        rc, _, err = self.cli("submit", "--dependency", "afterok:job_01J00000000000000000000000",
                              "--", "true")
        self.assertNotEqual(rc, 0)
        self.assertIn("depends_on[0].job", err)
        rc, _, err = self.cli("submit", "--dependency", "afterwards:" + a["id"], "--", "true")
        self.assertNotEqual(rc, 0)
        self.assertIn("afterwards", err)
        self.assertEqual(len(self.list_all("/v1/jobs")), before)

    def test_dependency_on_an_array_job(self):
        self.boot()
        self.add_worker("w1", slots=4)
        ok_out, bad_out = self.path("arr-ok"), self.path("arr-bad")
        arr_ok = self.create_job(self.sh_job(self.script(ok_out, "sleep 0.3"), name="arr-ok",
                                             array={"count": 5, "parallel": 2}))
        arr_bad = self.create_job(self.sh_job(
            self.script(bad_out, "sleep 0.3", '[ "$SKED_ARRAY_INDEX" = 1 ]'), name="arr-bad",
            array={"count": 4, "parallel": 2}))
        outs = {k: self.path("after-" + k) for k in ("ok", "bad-ok", "bad-any")}
        after_ok = self.create_job(self.sh_job(self.script(outs["ok"], "true"), name="after-ok",
                                               depends_on=[{"job": arr_ok["id"]}]))
        bad_ok = self.create_job(self.sh_job(self.script(outs["bad-ok"], "true"), name="bad-ok",
                                             depends_on=[{"job": arr_bad["id"]}]))
        bad_any = self.create_job(self.sh_job(
            self.script(outs["bad-any"], "true"), name="bad-any",
            depends_on=[{"job": arr_bad["id"], "condition": "afterany"}]))
        r = self.reason(self.explain_run(self.only_run(after_ok["id"])["id"]),
                        "waiting_on_upstream")
        self.assertEqual(r["limit"], 1)

        run = self.wait_run_terminal(after_ok["id"], 30)
        self.assertEqual(run["state"], "succeeded", run)
        last_member = max(s["t"] for s in stamps(ok_out) if s["kind"] == "end")
        self.assertEqual(len([s for s in stamps(ok_out) if s["kind"] == "end"]), 5)
        self.assertGreater(stamps(outs["ok"])[0]["t"], last_member, "after every member")

        bad_arr = self.wait_state(self.array_run(arr_bad["id"])["id"], TERMINAL, 30)
        self.assertEqual(bad_arr["state"], "failed")
        run = self.wait_run_terminal(bad_ok["id"], 20)
        self.assertEqual((run["state"], run["reason"]), ("skipped", "upstream_failed"), run)
        # Decided by the array run's end, not by the first failed member.
        self.assertGreaterEqual(parse_time(run["finished_at"]), parse_time(bad_arr["finished_at"]))
        run = self.wait_run_terminal(bad_any["id"], 20)
        self.assertEqual(run["state"], "succeeded", run)
        last_member = max(s["t"] for s in stamps(bad_out) if s["kind"] in ("end", "fail"))
        self.assertEqual(len([s for s in stamps(bad_out) if s["kind"] != "start"]), 4)
        self.assertGreater(stamps(outs["bad-any"])[0]["t"], last_member)

    def test_dependency_on_a_workflow(self):
        """A job may wait for a workflow: for its latest workflow run, whole."""
        self.boot()
        self.add_worker("w1", slots=3)
        gate, t_out, b_out = self.path("gate"), self.path("t"), self.path("b")
        task = lambda name, script: {"name": name, "command": ["/bin/sh", "-c", script],
                                     "env": {"E2E_SKED_TMP": self.tmp}}
        wf = self.ok("POST", "/v1/workflows", {"name": "wf", "tasks": [
            task("t1", self.gated(t_out, gate, 0)),
            dict(task("t2", self.script(t_out, "true")), depends_on=["t1"])]}, expect=201)
        # A task's job reads as a job (its depends_on names tasks, not jobs).
        t2 = self.ok("GET", "/v1/workflows/" + wf["id"], expect=200)["tasks"][1]
        self.ok("GET", "/v1/jobs/" + t2["job_id"], expect=200)
        wr = self.ok("POST", "/v1/workflows/%s/trigger" % wf["id"], expect=201)
        b = self.create_job(self.sh_job(self.script(b_out, "true"), name="b",
                                        depends_on=[{"job": wf["id"]}]))
        run = self.only_run(b["id"])
        self.assertEqual(run["state"], "waiting")
        self.reason(self.explain_run(run["id"]), "waiting_on_upstream")
        self.open_gate(gate)
        done = self.wait_run_terminal(b["id"], 30)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(self.ok("GET", "/v1/workflow-runs/" + wr["id"], expect=200)["state"],
                         "succeeded")
        self.assertEqual(len([s for s in stamps(t_out) if s["kind"] == "end"]), 2)
        self.assertGreater(stamps(b_out)[0]["t"], max(s["t"] for s in stamps(t_out)),
                           "after the last task")

    def test_array_job_that_depends_on_another(self):
        self.boot()
        self.add_worker("w1", slots=4)
        gate, a_out, m_out = self.path("gate"), self.path("a"), self.path("m")
        a = self.create_job(self.sh_job(self.gated(a_out, gate, 0), name="a"))
        arr = self.create_job(self.sh_job(self.gated(m_out, self.path("gate2"), 0), name="arr",
                                          array={"count": 3, "parallel": 2},
                                          depends_on=[{"job": a["id"]}]))
        ar = self.array_run(arr["id"])
        self.assertEqual(self.members(arr["id"]), [], "no member before its upstream ended")
        r = self.reason(self.explain_run(ar["id"]), "waiting_on_upstream")
        self.assertEqual((r["count"], r["limit"]), (0, 1))
        self.open_gate(gate)
        wait_until(lambda: len(stamps(m_out)) == 2, 20, msg="two members running")
        self.assertGreater(min(s["t"] for s in stamps(m_out)), stamps(a_out)[-1]["t"])
        # Released: it now goes on while its members run.
        r = self.reason(self.explain_run(ar["id"]), "waiting_on_members")
        self.assertEqual((r["count"], r["limit"]), (0, 3))
        self.open_gate(self.path("gate2"))
        done = self.wait_state(ar["id"], TERMINAL, 30)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(self.job_last(arr["id"])["array"]["succeeded"], 3)

    # ---- refusals ---------------------------------------------------------

    def test_bad_upstreams_are_refused_and_change_nothing(self):
        self.boot()
        far = [{"at": "2099-01-01T00:00:00Z"}]
        a = self.create_job(self.sh_job("true", name="a", schedules=far))
        other = self.create_job(self.sh_job("true", name="o", schedules=far,
                                            namespace="team-b"))
        self.assertEqual(other["namespace"], "team-b")
        jobs_before = sorted(j["id"] for j in self.list_all("/v1/jobs"))
        runs_before = len(self.list_all("/v1/runs"))
        unknown = "job_01J00000000000000000000000"
        v = self.problem("POST", "/v1/jobs", self.sh_job("true", name="b", depends_on=[
            {"job": unknown}]), "depends_on[0].job")
        self.assertIn(unknown, v["detail"])
        v = self.problem("POST", "/v1/jobs", self.sh_job("true", name="b", depends_on=[
            {"job": a["id"]}, {"job": other["id"], "condition": "afterany"}]),
            "depends_on[1].job")
        self.assertIn(other["id"], v["detail"])
        self.assertIn("namespace", v["detail"])
        for bad, field in [
            ({"depends_on": {"job": a["id"]}}, "depends_on"),
            ({"depends_on": ["x"]}, "depends_on[0]"),
            ({"depends_on": [{}]}, "depends_on[0].job"),
            ({"depends_on": [{"job": "nope"}]}, "depends_on[0].job"),
            ({"depends_on": [{"job": a["id"], "condition": "afterwards"}]},
             "depends_on[0].condition"),
            ({"depends_on": [{"job": a["id"], "when": "now"}]}, "depends_on[0].when"),
            ({"depends_on": [{"job": a["id"]}, {"job": a["id"]}]}, "depends_on[1].job"),
        ]:
            with self.subTest(field=field):
                self.problem("POST", "/v1/jobs", dict(self.sh_job("true", name="b"), **bad), field)
        self.assertEqual(sorted(j["id"] for j in self.list_all("/v1/jobs")), jobs_before)

        # A PATCH that would close a cycle names its entry; the job stays as it was.
        b = self.create_job(self.sh_job("true", name="b", schedules=far,
                                        depends_on=[{"job": a["id"]}]))
        c = self.create_job(self.sh_job("true", name="c", schedules=far,
                                        depends_on=[{"job": b["id"], "condition": "afterany"}]))
        d = self.create_job(self.sh_job("true", name="d", schedules=far))
        a_before = self.ok("GET", "/v1/jobs/" + a["id"], expect=200)
        v = self.problem("PATCH", "/v1/jobs/" + a["id"], {"depends_on": [
            {"job": d["id"]}, {"job": c["id"]}]}, "depends_on[1].job")
        self.assertIn("cycle", v["detail"])
        self.assertIn(c["id"], v["detail"])
        self.problem("PATCH", "/v1/jobs/" + a["id"], {"depends_on": [{"job": a["id"]}]},
                     "depends_on[0].job")
        self.problem("PATCH", "/v1/jobs/" + b["id"], {"depends_on": [{"job": unknown}]},
                     "depends_on[0].job")
        a_after = self.ok("GET", "/v1/jobs/" + a["id"], expect=200)
        self.assertEqual(a_after["version"], a_before["version"])
        self.assertNotIn("depends_on", a_after)
        self.assertEqual(self.ok("GET", "/v1/jobs/" + b["id"], expect=200)["depends_on"],
                         [{"job": a["id"], "condition": "afterok"}])
        # A PATCH that closes no cycle is taken.
        v = self.ok("PATCH", "/v1/jobs/" + a["id"], {"depends_on": [{"job": d["id"]}]},
                    expect=200)
        self.assertEqual(v["depends_on"], [{"job": d["id"], "condition": "afterok"}])
        self.assertEqual(len(self.list_all("/v1/runs")), runs_before)

    def test_bad_array_fields_are_refused_and_change_nothing(self):
        self.boot()
        far = [{"at": "2099-01-01T00:00:00Z"}]
        keep = self.create_job(self.sh_job("true", name="keep", schedules=far,
                                           array={"count": 4, "parallel": 2}))
        self.assertEqual(keep["array"], {"count": 4, "parallel": 2})
        before = sorted(j["id"] for j in self.list_all("/v1/jobs"))
        cases = [
            ({"count": 0}, "array.count"),
            ({"count": 10001}, "array.count"),
            ({"count": -1}, "array.count"),
            ({"count": "5"}, "array.count"),
            ({"count": 2.5}, "array.count"),
            ({"parallel": 2}, "array.count"),
            ({"count": 10, "parallel": 11}, "array.parallel"),
            ({"count": 10, "parallel": -1}, "array.parallel"),
            ({"count": 10, "size": 3}, "array.size"),
            ([10], "array"),
            (10, "array"),
        ]
        for arr, field in cases:
            with self.subTest(array=arr):
                v = self.problem("POST", "/v1/jobs", self.sh_job("true", name="x", array=arr),
                                 field)
                self.assertTrue(v.get("detail"), v)
                if arr != {"parallel": 2}:  # a merge patch: {"count": 4, "parallel": 2}
                    self.problem("PATCH", "/v1/jobs/" + keep["id"], {"array": arr}, field)
        self.assertEqual(sorted(j["id"] for j in self.list_all("/v1/jobs")), before)
        got = self.ok("GET", "/v1/jobs/" + keep["id"], expect=200)
        self.assertEqual((got["array"], got["version"]), (keep["array"], keep["version"]))
        # The bounds themselves are taken.
        j = self.create_job(self.sh_job("true", schedules=far, array={"count": 10000,
                                                                      "parallel": 10000}))
        self.assertEqual(j["array"], {"count": 10000, "parallel": 10000})
        j = self.create_job(self.sh_job("true", schedules=far, array={"count": 1}))
        self.assertEqual(j["array"]["count"], 1)
        # The CLI's forms: 0-N[%K] and COUNT[%K].
        for arg, want in (("6", {"count": 6, "parallel": 0}), ("0-0%1", {"count": 1, "parallel": 1}),
                          ("12%4", {"count": 12, "parallel": 4})):
            jid = self.cli_ok("submit", "-q", "--array", arg, "--at", "2099-01-01T00:00:00Z",
                              "--", "true").strip()
            self.assertEqual(self.ok("GET", "/v1/jobs/" + jid, expect=200)["array"], want)
        # The CLI refuses what is not 0-N[%K] before asking the server.
        before = len(self.list_all("/v1/jobs"))
        for arg in ("1-5", "0-x", "5%0", "", "0-4%a"):
            with self.subTest(cli=arg):
                rc, _, err = self.cli("submit", "--array", arg, "--", "true")
                self.assertNotEqual(rc, 0)
                self.assertIn("--array", err)
        rc, _, err = self.cli("submit", "--array", "0-10000", "--", "true")
        self.assertNotEqual(rc, 0)
        self.assertIn("array.count", err)
        self.assertEqual(len(self.list_all("/v1/jobs")), before)


class TestSqlite(ArrDepsCase, SkedTestCase):
    def boot(self, lease=None, heartbeat=None, extra=()):
        return self.start_server(lease=lease, heartbeat=heartbeat, extra=extra)

    def add_worker(self, name, slots=1):
        return self.start_worker(name=name, slots=slots)


class TestPostgres(ArrDepsCase, ClusterTestCase):
    def boot(self, lease=None, heartbeat=None, extra=()):
        return self.start_pg_server("a", lease=lease, heartbeat=heartbeat, extra=extra)

    def add_worker(self, name, slots=1):
        return self.start_cluster_worker(name, self.server_list(), slots=slots)


if __name__ == "__main__":
    unittest.main()
