"""Results and checkpoints end to end (docs/results.md, issue 10 points 3
and 4), with real servers, workers and jobs.

A job writes JSON to $SKED_RESULT_FILE; the worker checks it and ships it
with the completion; the API (GET /v1/runs/{id}, GET /v1/runs/{id}/result)
and the CLI (sked runs result, sked runs get) give it back as written. A
result that is not one JSON value, too big, or not a regular file of the
job's is never shipped: an attempt that exited 0 fails with the reason, any
other keeps its own outcome, and a note says so in the run's log. Reports
naming a lease the reporter does not hold (another worker's token, a stale
fence) store nothing.

A job writes progress to $SKED_CHECKPOINT_FILE; the worker ships it with
the next heartbeat (and the last one with the completion); when the
attempt is lost or fails, the retry starts with the last checkpoint shipped
at $SKED_CHECKPOINT_IN and resumes from it: the kill -9 test runs on SQLite
and on PostgreSQL.
"""

import json
import os
import pwd
import unittest

from pgcluster import ClusterTestCase
from skedtest import SkedTestCase, TERMINAL, pid_alive, read_lines, wait_until

# A job that counts to STEPS, one step every `pace` seconds, resuming from
# the checkpoint it is handed. Each step is checkpointed (written aside and
# renamed, so the worker never reads half a file) and stamped in steps.txt;
# each attempt stamps where it started in starts.txt; the result says where
# the last attempt started and ended.
COUNTER = r'''
start=0
if [ -n "$SKED_CHECKPOINT_IN" ]; then start=$(cat "$SKED_CHECKPOINT_IN"); fi
echo "$SKED_ATTEMPT $start ${SKED_CHECKPOINT_IN:+in}" >> %(dir)s/starts.txt
[ "$SKED_ATTEMPT" = 1 ] && echo $$ > %(dir)s/pid1
i=$start
while [ "$i" -lt %(steps)d ]; do
  i=$((i + 1))
  echo "$SKED_ATTEMPT $i" >> %(dir)s/steps.txt
  printf %%s "$i" > "$SKED_CHECKPOINT_FILE.tmp" && mv "$SKED_CHECKPOINT_FILE.tmp" "$SKED_CHECKPOINT_FILE"
  [ "$SKED_ATTEMPT" = 1 ] && sleep %(pace)s
done
printf '{"started_from": %%s, "last": %%s}\n' "$start" "$i" > "$SKED_RESULT_FILE"
'''


class ResumeScenario:
    """THE test of checkpoints, on whatever store the subclass runs: a job
    checkpoints its progress, its worker is kill -9'd mid-run, the lease
    lapses, the run is retried on another worker, and the new attempt
    starts with $SKED_CHECKPOINT_IN holding the last checkpoint shipped and
    resumes from it, not from zero."""

    STEPS = 100

    def resume_after_kill9(self, workers):
        by_id = dict(workers)
        d = self.tmp
        job = self.create_job(self.sh_job(
            COUNTER % {"dir": d, "steps": self.STEPS, "pace": "0.1"},
            retry={"max_attempts": 3, "initial": "100ms", "jitter": False}))
        run = self.wait_runs(job["id"], lambda rs: rs and rs[0]["state"] == "running")[0]
        rid = run["id"]

        # Shipped with the heartbeats while attempt 1 runs.
        def shipped():
            cp = self.run_get(rid)["checkpoint"]
            return cp if cp and cp["attempt"] == 1 and int(cp["data"]) >= 5 else None

        cp = wait_until(shipped, 20, msg="attempt 1's checkpoint to reach 5 on the server")
        self.assertEqual(cp["size"], len(cp["data"]))
        victim = self.run_get(rid)["worker_id"]
        self.assertIn(victim, by_id)
        shell = int(read_lines(os.path.join(d, "pid1"))[0])
        by_id[victim].kill9()
        wait_until(lambda: not pid_alive(shell), 10, msg="attempt 1 to die with its worker")
        # Attempt 1 is gone: what the server holds now is what it shipped last.
        last = self.run_get(rid)["checkpoint"]
        self.assertEqual(last["attempt"], 1, last)
        last_shipped = int(last["data"])
        self.assertGreaterEqual(last_shipped, int(cp["data"]))

        run = self.wait_run_state(rid, TERMINAL, timeout=60)
        self.assertEqual(run["state"], "succeeded", run)
        a1, a2 = run["attempts"]
        self.assertEqual((a1["worker_id"], a1["outcome"]), (victim, "lost"), a1)
        self.assertNotEqual(a2["worker_id"], victim, a2)
        self.assertEqual(a2["outcome"], "succeeded", a2)
        # Attempt 2 was handed the last checkpoint shipped, at $SKED_CHECKPOINT_IN ...
        starts = [l.split() for l in read_lines(os.path.join(d, "starts.txt"))]
        self.assertEqual(starts, [["1", "0"], ["2", str(last_shipped), "in"]], starts)
        # ... and resumed from it: its first step is the next one, it never
        # redid what the checkpoint covers, and it counted to the end.
        steps = [tuple(map(int, l.split())) for l in read_lines(os.path.join(d, "steps.txt"))]
        done1 = [i for a, i in steps if a == 1]
        done2 = [i for a, i in steps if a == 2]
        self.assertGreaterEqual(max(done1), last_shipped)  # at least once: it may redo a little
        self.assertEqual(done2, list(range(last_shipped + 1, self.STEPS + 1)))
        self.assertEqual(run["result"], {"started_from": last_shipped, "last": self.STEPS})
        # The run keeps the checkpoint of the attempt that ended it.
        self.assertEqual(run["checkpoint"]["attempt"], 2)
        self.assertEqual(run["checkpoint"]["data"], str(self.STEPS))


class TestResults(SkedTestCase, ResumeScenario):
    def log_of(self, rid):
        st, _, text = self.api("GET", "/v1/runs/%s/log" % rid)
        self.assertEqual(st, 200)
        return text

    def test_result_via_api_and_cli(self):
        self.start_server(heartbeat="500ms")
        self.start_worker()
        written = '{"rows": 3, "ratio": 0.10, "big": 12345678901234567890, "name": "\u00e9t\u00e9"}'
        job = self.create_job(self.sh_job(
            "printf '%%s\\n' '%s' > \"$SKED_RESULT_FILE\"" % written))
        run = self.wait_run_terminal(job["id"])
        self.assertEqual(run["state"], "succeeded", run)
        want = {"rows": 3, "ratio": 0.1, "big": 12345678901234567890, "name": "\u00e9t\u00e9"}
        # The run embeds the value as the server reads it: an integer beyond
        # 64 bits as a double (docs/results.md) ...
        self.assertEqual(run["result"], dict(want, big=float(want["big"])))
        self.assertEqual(run["attempts"][0]["result"], run["result"])
        self.assertIsNone(run["checkpoint"])
        # ... the result route gives the JSON as written.
        st, h, v = self.api("GET", "/v1/runs/%s/result" % run["id"])
        self.assertEqual(st, 200)
        self.assertEqual(h.get("Content-Type").split(";")[0], "application/json")
        self.assertEqual(v, want)
        self.assertIs(type(v["big"]), int)
        # The CLI prints it exactly as the job wrote it (0.10, the big
        # number), less the whitespace around it: ready for jq.
        self.assertEqual(self.cli_ok("runs", "result", run["id"]), written + "\n")
        detail = self.cli_ok("runs", "get", run["id"])
        self.assertRegex(detail, r'Result JSON: +\{"rows":3')
        self.assertEqual(self.cli_json("runs", "get", run["id"])["result"], run["result"])

        # No result: absent from the run, 404 from the route, exit 1 from the CLI.
        job = self.create_job(self.sh_job("true"))
        run = self.wait_run_terminal(job["id"])
        self.assertEqual(run["state"], "succeeded", run)
        self.assertNotIn("result", run)
        self.assertNotIn("result", run["attempts"][0])
        self.assert_problem(self.api("GET", "/v1/runs/%s/result" % run["id"]), 404, "path.id")
        rc, out, err = self.cli("runs", "result", run["id"])
        self.assertEqual((rc, out), (1, ""))
        self.assertIn("has no result", err)
        rc, out, err = self.cli("runs", "result", "run_00000000000000000000000000")
        self.assertEqual(rc, 1)
        self.assertIn("no such run", err)

        # A job's own null is a result, unlike none.
        job = self.create_job(self.sh_job('echo null > "$SKED_RESULT_FILE"'))
        run = self.wait_run_terminal(job["id"])
        self.assertIn("result", run)
        self.assertIsNone(run["result"])
        self.assertEqual(self.cli_ok("runs", "result", run["id"]), "null\n")

    def test_upstream_results(self):
        """A workflow task reads its upstreams' results, by task name, from
        $SKED_UPSTREAM_RESULTS: the results as their jobs wrote them, null
        for an upstream that wrote none; a job with depends_on gets its
        upstream job's by that job's name; a task without upstreams gets no
        such variable."""
        self.start_server(heartbeat="500ms")
        self.start_worker(slots=2)
        out = os.path.join(self.tmp, "upstream.out")
        wf = {"name": "etl", "tasks": [
            {"name": "extract", "command": ["sh", "-c",
                                            'echo "${SKED_UPSTREAM_RESULTS-none}" > %s.root; '
                                            "printf '%%s' '{\"rows\": 42, \"r\": 0.10}' "
                                            '> "$SKED_RESULT_FILE"' % out]},
            {"name": "quiet", "command": ["true"]},
            {"name": "load", "depends_on": ["extract", "quiet"],
             "command": ["sh", "-c", 'cat "$SKED_UPSTREAM_RESULTS" > %s' % out]},
        ]}
        st, _, doc = self.api("POST", "/v1/workflows", wf)
        self.assertEqual(st, 201, doc)
        st, _, wrun = self.api("POST", "/v1/workflows/%s/trigger" % doc["id"])
        self.assertEqual(st, 201, wrun)
        wait_until(lambda: self.api("GET", "/v1/workflow-runs/%s" % wrun["id"])[2]["state"]
                   in ("succeeded", "failed"), 15, msg="the workflow run ends")
        self.assertEqual(self.api("GET", "/v1/workflow-runs/%s" % wrun["id"])[2]["state"],
                         "succeeded")
        with open(out) as f:
            text = f.read()
        # The text as written (0.10 stays 0.10), keyed by task name.
        self.assertIn('"extract":{"rows": 42, "r": 0.10}', text)
        self.assertEqual(json.loads(text), {"extract": {"rows": 42, "r": 0.1}, "quiet": None})
        with open(out + ".root") as f:
            self.assertEqual(f.read().strip(), "none")

        # A job's dependency hands over its upstream job's result too.
        up = self.create_job(self.sh_job('echo \'"up"\' > "$SKED_RESULT_FILE"'))
        self.assertEqual(self.wait_run_terminal(up["id"])["state"], "succeeded")
        down = self.create_job(dict(self.sh_job('cat "$SKED_UPSTREAM_RESULTS" > %s.job' % out),
                                    depends_on=[{"job": up["id"]}]))
        self.assertEqual(self.wait_run_terminal(down["id"])["state"], "succeeded")
        with open(out + ".job") as f:
            self.assertEqual(json.loads(f.read()), {up["name"]: "up"})

    def test_invalid_results(self):
        self.start_server(heartbeat="500ms")
        self.start_worker(extra=("--result-max", "1K"))
        bad = "printf '{\\n  \"a\": 1,\\n  \"b\": oops\\n}\\n' > \"$SKED_RESULT_FILE\""
        cases = {
            # exit 0 with an invalid result: the attempt fails with the reason.
            "bad-json": (bad, "succeeded", "result: not valid JSON at line 3"),
            "too-big": ("head -c 2000 /dev/zero | tr '\\0' 1 > \"$SKED_RESULT_FILE\"",
                        "succeeded", "result: 2000 bytes, over the 1024-byte cap"),
            # A link to a file the job may not read itself is not followed.
            "symlink": ("ln -s %s \"$SKED_RESULT_FILE\"" % self.path("secret.json"),
                        "succeeded", "result: it is a symbolic link, which is not followed"),
            # A FIFO would block a reader for ever: not a regular file.
            "fifo": ("mkfifo \"$SKED_RESULT_FILE\"", "succeeded", "result: it is not a regular file"),
            # exit 3 with an invalid result: failed as it was, the result dropped.
            "bad-json-exit-3": (bad + "; exit 3", "failed", None),
        }
        with open(self.path("secret.json"), "w") as f:
            f.write('{"secret": "only the worker could read this"}')
        os.chmod(self.path("secret.json"), 0o600)
        jobs = {name: self.create_job(self.sh_job(script, name="r-" + name))
                for name, (script, _, _) in cases.items()}
        for name, (script, exited, reason) in cases.items():
            run = self.wait_run_terminal(jobs[name]["id"], timeout=20)
            a = run["attempts"][0]
            self.assertEqual(run["state"], "failed", (name, run))
            self.assertNotIn("result", run, name)
            self.assert_problem(self.api("GET", "/v1/runs/%s/result" % run["id"]), 404)
            log = self.log_of(run["id"])
            if exited == "succeeded":
                self.assertEqual(a["exit_code"], 0, (name, a))
                self.assertTrue((a["reason"] or "").startswith(reason), (name, a))
                self.assertTrue((run["reason"] or "").startswith(reason), (name, run))
                self.assertIn("[sked] result refused, the attempt fails: " + reason[8:], log)
            else:
                self.assertEqual(a["exit_code"], 3, (name, a))
                self.assertNotIn("result", a["reason"] or "", a)
                self.assertIn("[sked] result dropped: not valid JSON at line 3", log)
            self.assertNotIn("only the worker could read this", log + str(run))

    def test_checkpoint_caps_and_text(self):
        self.start_server(heartbeat="300ms")
        worker, _ = self.start_worker(slots=2, extra=("--checkpoint-max", "1K"))
        # Too big, then not UTF-8: never shipped, and said once each in the
        # worker's log however many heartbeats see them; a later good one
        # is shipped.
        job = self.create_job(self.sh_job(
            'head -c 2000 /dev/zero | tr "\\0" x > "$SKED_CHECKPOINT_FILE"; sleep 1; '
            "printf 'caf\\351' > \"$SKED_CHECKPOINT_FILE\"; sleep 1; "
            "printf 'step 7\\n' > \"$SKED_CHECKPOINT_FILE\"; sleep 1"))
        run = self.wait_run_terminal(job["id"], timeout=20)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(run["checkpoint"]["data"], "step 7\n")
        self.assertEqual(run["checkpoint"]["size"], 7)
        self.assertEqual(run["checkpoint"]["attempt"], 1)
        detail = self.cli_ok("runs", "get", run["id"])
        self.assertRegex(detail, r'Checkpoint: +attempt 1 at \S+, 7 bytes: "step 7\\n"')
        text = worker.stderr_text()
        self.assertEqual(text.count("checkpoint not shipped: 2000 bytes, over the 1024-byte cap"),
                         1, text[-3000:])
        self.assertEqual(text.count("checkpoint not shipped: not UTF-8 text"), 1, text[-3000:])

        # The last checkpoint of an attempt that fails at once (before any
        # heartbeat) goes with its completion: the retry starts from it.
        job = self.create_job(self.sh_job(
            'if [ -n "$SKED_CHECKPOINT_IN" ]; then cat "$SKED_CHECKPOINT_IN" > %s; exit 0; fi; '
            'echo "half done" > "$SKED_CHECKPOINT_FILE"; exit 1' % self.path("in.txt"),
            retry={"max_attempts": 2, "initial": "100ms", "jitter": False}))
        run = self.wait_run_terminal(job["id"], timeout=20)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual([a["outcome"] for a in run["attempts"]], ["failed", "succeeded"])
        self.assertEqual(read_lines(self.path("in.txt")), ["half done"])
        self.assertEqual(run["checkpoint"]["attempt"], 1)

    def test_reports_of_a_lease_not_held_store_nothing(self):
        """The worker protocol by hand: checkpoints and results from another
        worker's token, with a stale fence or malformed store nothing."""
        self.start_server(lease="30s")
        toks = {}
        for name in ("wa", "wb"):
            v = self.ok("POST", "/v1/tokens", {"name": name, "role": "worker"}, expect=201)
            toks[name] = v["token"]
        wids = {n: self.ok("POST", "/v1/workers", {"name": n}, token=t, expect=201)["id"]
                for n, t in toks.items()}
        job = self.create_job(self.sh_job("true"))
        claimed = self.ok("POST", "/v1/workers/%s/claim" % wids["wa"], {"max": 1, "wait": "5s"},
                          token=toks["wa"], expect=200)["runs"]
        self.assertEqual(len(claimed), 1)
        c = claimed[0]
        self.assertEqual(c["job_id"], job["id"])
        self.assertIsNone(c["checkpoint"])
        rid, fence = c["run_id"], c["fence"]

        def heartbeat(worker, token, fence, checkpoint, expect=200):
            return self.ok("POST", "/v1/workers/%s/heartbeat" % wids[worker],
                           {"runs": [{"run_id": rid, "fence": fence, "started": True,
                                      "checkpoint": checkpoint}]},
                           token=toks[token], expect=expect)

        self.assertEqual(heartbeat("wa", "wa", fence, "real 1")["stop"], [])
        self.assertEqual(self.run_get(rid)["checkpoint"]["data"], "real 1")
        # Worker b names a's run and fence through its own worker: not its
        # lease, so the run is in stop and nothing is stored.
        stop = heartbeat("wb", "wb", fence, "forged")["stop"]
        self.assertEqual([s["run_id"] for s in stop], [rid])
        # b's token through a's worker: 403. a with a stale fence: in stop.
        heartbeat("wa", "wb", fence, "forged", expect=403)
        self.assertEqual([s["run_id"] for s in heartbeat("wa", "wa", fence + 1, "stale")["stop"]],
                         [rid])
        cp = self.run_get(rid)["checkpoint"]
        self.assertEqual((cp["attempt"], cp["data"]), (1, "real 1"))
        # Over the cap, or not a string: 400 naming the field, nothing changes.
        self.assert_problem(self.api(
            "POST", "/v1/workers/%s/heartbeat" % wids["wa"],
            {"runs": [{"run_id": rid, "fence": fence, "checkpoint": "x" * (256 * 1024 + 1)}]},
            token=toks["wa"]), 400, "runs[0].checkpoint")
        self.assert_problem(self.api(
            "POST", "/v1/workers/%s/heartbeat" % wids["wa"],
            {"runs": [{"run_id": rid, "fence": fence, "checkpoint": {"step": 1}}]},
            token=toks["wa"]), 400, "runs[0].checkpoint")

        complete = "/v1/runs/%s/attempts/1/complete" % rid
        body = {"fence": fence, "outcome": "succeeded", "exit_code": 0,
                "result_json": '{"forged": true}', "checkpoint": "forged"}
        self.assert_problem(self.api("POST", complete, body, token=toks["wb"]), 403, "path.id")
        self.assert_problem(self.api("POST", complete, dict(body, fence=fence + 1),
                                     token=toks["wa"]), 409, "fence")
        self.assert_problem(self.api("POST", complete, dict(body, result_json="{oops"),
                                     token=toks["wa"]), 400, "result_json")
        self.assert_problem(self.api("POST", complete, dict(body, result_json=["not", "text"]),
                                     token=toks["wa"]), 400, "result_json")
        run = self.run_get(rid)
        self.assertEqual(run["state"], "running", run)
        self.assertNotIn("result", run)
        self.assertEqual(run["checkpoint"]["data"], "real 1")

        ok = dict(body, result_json='{"rows": 1.50}', checkpoint="final")
        self.assertEqual(self.ok("POST", complete, ok, token=toks["wa"])["state"], "succeeded")
        # A repeat (its answer lost) is 200 and changes nothing.
        self.ok("POST", complete, dict(ok, result_json='"other"', checkpoint="other"),
                token=toks["wa"], expect=200)
        run = self.run_get(rid)
        self.assertEqual(run["result"], {"rows": 1.5})
        self.assertEqual(run["checkpoint"]["data"], "final")
        self.assertEqual(self.cli_ok("runs", "result", rid), '{"rows": 1.50}\n')

    def test_run_as_another_user(self):
        """A root worker running jobs as nobody: the job's user writes its
        result and checkpoint in the attempt's private directory and reads
        the checkpoint it is handed; the directories go after each attempt."""
        if os.geteuid() != 0:
            self.skipTest("only root can run jobs as another user")
        self.start_server(heartbeat="300ms")
        os.chmod(self.tmp, 0o711)  # nobody passes through to the work dir
        work = self.path("work")
        self.start_worker(extra=("--run-as", "nobody", "--work-dir", work))
        job = self.create_job(self.sh_job(
            'if [ -n "$SKED_CHECKPOINT_IN" ]; then'
            '  printf \'{"from": "%s", "uid": %s}\' "$(cat "$SKED_CHECKPOINT_IN")" "$(id -u)"'
            '    > "$SKED_RESULT_FILE"; exit 0; fi; '
            'stat -c %U "$(dirname "$SKED_RESULT_FILE")" > "$SKED_CHECKPOINT_FILE"; exit 1',
            retry={"max_attempts": 2, "initial": "100ms", "jitter": False}))
        run = self.wait_run_terminal(job["id"], timeout=20)
        self.assertEqual(run["state"], "succeeded", run)
        nobody = pwd.getpwnam("nobody").pw_uid
        self.assertEqual(run["result"], {"from": "nobody", "uid": nobody})
        self.assertEqual(run["checkpoint"]["data"], "nobody\n")
        wait_until(lambda: os.listdir(work) == [], 10, msg="the attempts' directories to go")

    def test_checkpoint_resume_after_worker_kill9(self):
        self.start_server(lease="3s", heartbeat="300ms")
        w1 = self.start_worker(name="w1")
        w2 = self.start_worker(name="w2")
        self.resume_after_kill9([(w1[1], w1[0]), (w2[1], w2[0])])


class TestResultsPostgres(ClusterTestCase, ResumeScenario):
    def test_checkpoint_resume_after_worker_kill9_postgres(self):
        s1 = self.start_pg_server("s1", lease="3s", heartbeat="300ms")
        self.start_pg_server("s2", lease="3s", heartbeat="300ms")
        servers = self.server_list()
        w1 = self.start_cluster_worker("w1", servers, slots=1)
        w2 = self.start_cluster_worker("w2", servers, slots=1)
        self.use(s1)
        self.resume_after_kill9([(w1[1], w1[0]), (w2[1], w2[0])])


if __name__ == "__main__":
    unittest.main()
