"""Plugins end to end (docs/plugins.md, issue 11 points 3 and 5): the
example plugins of plugins/ and the test plugins of tests/plugins/, run by
real workers in real plugin hosts (`sked plugin-host`), against a real
server.

- noop, sleep and checksum runs succeed with their results (checksum's
  digests are compared with Python's hashlib), and a missing file fails
  with the reason; the schemas of their manifests are applied at submit.
- sleep stops at once when canceled or timed out, without its host being
  killed (it was told, and listened); sleep retried after its host was
  killed -9 resumes from the checkpoint the dead attempt shipped.
- misbehave abort / segv / exit: the attempt fails "plugin crashed", so
  does another attempt running in the same host, and the next run succeeds
  on a restarted host; hang / ignore_cancel past a timeout or a cancel:
  "plugin hung", the host is killed after the grace and restarted.
- future_abi (ABI 999) is refused before it loads: the worker's log says
  why, its constructor's marker file never appears, its type is not
  advertised and a job of its type is refused.
- A root worker's hosts run as its --run-as user, with its limits and the
  scrubbed environment of a shell job.
- Throughout, the worker keeps running shell jobs.
"""

import hashlib
import os
import pwd
import shutil
import signal
import stat
import time
import unittest

from skedtest import SKED_BIN, SLOW, SkedTestCase, pid_alive, read_lines, wait_until

BUILD = os.path.dirname(os.path.abspath(SKED_BIN))
PLUGINS = os.path.join(BUILD, "plugins")
TEST_PLUGINS = os.path.join(BUILD, "test-plugins")
MARKER = os.path.join(BUILD, "future_abi.ran")  # tests/tests.cmake: -DMARKER


def plugin_hosts(worker):
    """{type: pid} of the live plugin hosts the worker started: its child
    processes running `sked plugin-host --type TYPE ...`."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        if ppid != worker.pid or "plugin-host" not in argv or not pid_alive(int(d)):
            continue
        if "--type" in argv[:-1]:
            out[argv[argv.index("--type") + 1]] = int(d)
    return out


class PluginTestCase(SkedTestCase):
    def plugin_worker(self, plugin_dir, slots=4, grace="1s", name="worker"):
        """A worker running the plugins of plugin_dir, with a --kill-grace
        of grace: (proc, worker id)."""
        proc, wid = self.start_worker(slots=slots, name=name,
                                      extra=["--plugin-dir", plugin_dir, "--kill-grace", grace])
        return proc, wid

    def host_of(self, worker, type_, other_than=None):
        """The pid of the worker's host of type_, waiting for one (a new one
        when other_than names the old)."""
        return wait_until(
            lambda: (lambda p: p if p and p != other_than else None)(plugin_hosts(worker).get(type_)),
            20, msg="a%s plugin host of %s" % (" new" if other_than else "", type_))

    def log_of(self, rid):
        st, _, text = self.api("GET", "/v1/runs/%s/log" % rid)
        self.assertEqual(st, 200, text)
        return text

    def job(self, type_, config, **fields):
        doc = {"type": type_, "config": config}
        doc.update(fields)
        return self.create_job(doc)

    def run_of(self, job, state=None, timeout=15, lease_s=10):
        """The job's first run, once it is in state (default: terminal).
        "running" means started: a claimed run shows running before its
        worker confirms it, and one canceled or killed before that never
        began (its attempt is undone), so wait for the confirmation."""
        if state is None:
            return self.wait_run_terminal(job["id"], timeout=timeout)
        if state == "running":
            return self.run_get(self.started_run(job["id"], lease_s, timeout)["id"])
        runs = self.wait_runs(job["id"], lambda rs: rs and rs[0]["state"] == state, timeout,
                              msg="a %s run of %s" % (state, job["name"]))
        return self.run_get(runs[0]["id"])

    def shell_still_runs(self):
        """A shell job on the same worker succeeds: the worker kept serving."""
        f = self.path("shell-%s" % os.urandom(3).hex())
        run = self.run_of(self.create_job(self.sh_job("echo ran > %s" % f)))
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(read_lines(f), ["ran"])


class TestExamplePlugins(PluginTestCase):
    def test_noop_sleep_checksum_succeed_with_results(self):
        self.start_server(heartbeat="500ms")
        self.plugin_worker(PLUGINS)

        run = self.run_of(self.job("noop", {}))
        self.assertEqual(run["state"], "succeeded", run)
        self.assertNotIn("result", run)

        run = self.run_of(self.job("sleep", {"seconds": 0.3}))
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(run["result"], {"slept_ms": 300, "resumed_from_ms": 0})

        data = os.urandom(300000) + b"sked"
        path = self.path("data.bin")
        with open(path, "wb") as f:
            f.write(data)
        for algo, want in (("sha256", hashlib.sha256(data).hexdigest()),
                           ("blake2b", hashlib.blake2b(data).hexdigest())):
            run = self.run_of(self.job("checksum", {"path": path, "algorithm": algo}))
            self.assertEqual(run["state"], "succeeded", run)
            self.assertEqual(run["result"],
                             {"path": path, "algorithm": algo, "hex": want, "bytes": len(data)})
            self.assertIn("%s  %s\n" % (want, path), self.log_of(run["id"]))

        # A file that is not there fails the attempt with the reason.
        run = self.run_of(self.job("checksum", {"path": self.path("nope")}))
        self.assertEqual(run["state"], "failed", run)
        self.assertIn("config.path: %s: No such file or directory" % self.path("nope"),
                      run["reason"])

        # The manifests' schemas are applied when a job is submitted.
        self.assert_problem(self.api("POST", "/v1/jobs", {
            "name": "too-long", "type": "sleep", "config": {"seconds": 86401}}), 400,
            "config.seconds")
        self.assert_problem(self.api("POST", "/v1/jobs", {
            "name": "relative", "type": "checksum", "config": {"path": "etc/passwd"}}), 400,
            "config.path")
        self.assert_problem(self.api("POST", "/v1/jobs", {
            "name": "extra", "type": "noop", "config": {"x": 1}}), 400, "config.x")
        self.shell_still_runs()

    def test_plugin_result_files_are_in_memory_and_go_with_the_attempt(self):
        """A plugin attempt's result and checkpoint files are in a private
        directory under /dev/shm (its host holds them to the caps, so they
        fit in memory; no directory made and removed on disk per run), and
        the directory goes with the attempt."""
        self.start_server(heartbeat="500ms")
        self.plugin_worker(PLUGINS)
        base = "/dev/shm/sked-io" + ("" if os.geteuid() == 0 else "-%d" % os.geteuid())
        job = self.job("sleep", {"seconds": 1.5})
        run = self.run_of(job, state="running")
        mine = wait_until(lambda: [e for e in os.listdir(base)
                                   if e.startswith(run["id"] + ".1.io-")], 10,
                          msg="the attempt's directory under %s" % base)
        st = os.lstat(os.path.join(base, mine[0]))
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o700)
        run = self.run_of(job)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(run["result"]["slept_ms"], 1500)
        wait_until(lambda: not any(e.startswith(run["id"] + ".") for e in os.listdir(base)), 10,
                   msg="the attempt's directory to go")

    def test_sleep_stops_at_once_on_cancel_and_timeout(self):
        self.start_server(heartbeat="500ms")
        # A grace longer than any bound below (even scaled for a sanitizer
        # build): a plugin that had to be killed would show in the time taken.
        worker, _ = self.plugin_worker(PLUGINS, grace="60s")
        host = self.host_of(worker, "sleep")

        run = self.run_of(self.job("sleep", {"seconds": 600}), state="running")
        t0 = time.monotonic()
        st, _, v = self.api("POST", "/v1/runs/%s/cancel" % run["id"])
        self.assertEqual(st, 200, v)
        run = self.wait_run_state(run["id"], "canceled", timeout=10)
        self.assertLess(time.monotonic() - t0, 5 * SLOW, "sleep did not stop at once on cancel")
        self.assertEqual(run["attempts"][-1]["outcome"], "canceled", run)

        t0 = time.monotonic()
        run = self.run_of(self.job("sleep", {"seconds": 600}, timeout="1s"))
        self.assertEqual(run["state"], "failed", run)
        self.assertEqual(run["attempts"][0]["outcome"], "timeout", run)
        self.assertLess(time.monotonic() - t0, 8 * SLOW, "sleep did not stop at once on its timeout")

        # The plugin listened: its host was never killed.
        self.assertEqual(plugin_hosts(worker).get("sleep"), host)
        self.shell_still_runs()

    def test_sleep_resumes_from_its_checkpoint_after_its_host_was_killed(self):
        self.start_server(heartbeat="300ms")
        worker, _ = self.plugin_worker(PLUGINS)
        host = self.host_of(worker, "sleep")
        job = self.job("sleep", {"seconds": 5},
                       retry={"max_attempts": 3, "initial": "100ms", "jitter": False})
        rid = self.run_of(job, state="running")["id"]

        def shipped():
            cp = self.run_get(rid)["checkpoint"]
            return cp if cp and cp["attempt"] == 1 and '"slept_ms":2000' in cp["data"] else None

        wait_until(shipped, 20, msg="attempt 1's checkpoint of 2000 ms on the server")
        os.kill(host, signal.SIGKILL)
        run = self.run_of(job, timeout=30)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual([a["outcome"] for a in run["attempts"]], ["failed", "succeeded"], run)
        self.assertIn("plugin crashed", run["attempts"][0]["reason"])
        # The retry started where the dead attempt's last shipped checkpoint was.
        res = run["result"]
        self.assertEqual(res["slept_ms"], 5000, res)
        self.assertGreaterEqual(res["resumed_from_ms"], 2000, res)
        self.assertIn("sleep: resuming at %d of 5000 ms" % res["resumed_from_ms"],
                      self.log_of(rid))
        self.host_of(worker, "sleep", other_than=host)
        self.shell_still_runs()

    def test_the_host_is_isolated_like_a_shell_job(self):
        """A root worker with --run-as nobody and limits: its plugin hosts
        run as nobody, with the limits and the scrubbed environment a shell
        job gets, so a plugin reads only what nobody may."""
        if os.geteuid() != 0:
            self.skipTest("only root can run jobs as another user")
        self.start_server(heartbeat="500ms")
        os.chmod(self.tmp, 0o711)  # nobody passes through to the files below
        worker, _ = self.start_worker(extra=(
            "--plugin-dir", PLUGINS, "--run-as", "nobody", "--work-dir", self.path("work"),
            "--limit-nofile", "100"))
        host = self.host_of(worker, "checksum")
        with open("/proc/%d/status" % host) as f:
            uids = next(l for l in f if l.startswith("Uid:")).split()[1:]
        self.assertEqual(set(uids), {str(pwd.getpwnam("nobody").pw_uid)}, uids)
        with open("/proc/%d/limits" % host) as f:
            nofile = next(l for l in f if l.startswith("Max open files")).split()[3:5]
        self.assertEqual(nofile, ["100", "100"])
        with open("/proc/%d/environ" % host, "rb") as f:
            names = {e.split(b"=", 1)[0].decode() for e in f.read().split(b"\0") if e}
        self.assertLessEqual(names, {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ"}, names)

        public, private = self.path("public"), self.path("private")
        for path, mode in ((public, 0o644), (private, 0o600)):
            with open(path, "wb") as f:
                f.write(b"sked")
            os.chmod(path, mode)
        run = self.run_of(self.job("checksum", {"path": public}))
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(run["result"]["hex"], hashlib.sha256(b"sked").hexdigest())
        run = self.run_of(self.job("checksum", {"path": private}))
        self.assertEqual(run["state"], "failed", run)
        self.assertEqual(run["reason"], "config.path: %s: Permission denied" % private, run)


class TestMisbehavingPlugins(PluginTestCase):
    def setUp(self):
        super().setUp()
        # The plugin directory of this test alone, with misbehave only.
        self.dir = self.path("plugins")
        os.makedirs(self.dir)
        shutil.copy(os.path.join(TEST_PLUGINS, "misbehave.so"), self.dir)

    def test_a_crash_fails_the_attempts_of_its_host_only(self):
        self.start_server(heartbeat="500ms")
        worker, _ = self.plugin_worker(self.dir, slots=4)
        for how, signo in (("abort", signal.SIGABRT), ("segv", signal.SIGSEGV), ("exit", None)):
            with self.subTest(how=how):
                # A bystander waits (cancel-aware) in the host ...
                bystander = self.job("misbehave", {"do": "result", "wait_ms": 600000})
                brun = self.run_of(bystander, state="running")
                host = self.host_of(worker, "misbehave")
                # ... when another attempt brings the host down.
                run = self.run_of(self.job("misbehave", {"do": how}), timeout=20)
                self.assertEqual(run["state"], "failed", run)
                self.assertTrue(run["reason"].startswith("plugin crashed"), run)
                self.assertEqual(run["signal"] or None, signo, run)
                brun = self.wait_run_state(brun["id"], "failed", timeout=20)
                self.assertTrue(brun["reason"].startswith("plugin crashed"), brun)
                self.assertFalse(pid_alive(host), "the crashed host %d lives on" % host)
                # The next attempt runs, on a new host.
                self.crash_over(worker, host)

    def crash_over(self, worker, host):
        """After host died: a misbehave run succeeds on a new host, and a
        shell job still runs."""
        run = self.run_of(self.job("misbehave", {"do": "ok"}), timeout=20)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertIn("misbehave: ok", self.log_of(run["id"]))
        self.assertNotIn(plugin_hosts(worker).get("misbehave"), (None, host))
        self.shell_still_runs()

    def test_a_hang_past_the_grace_kills_and_restarts_the_host(self):
        self.start_server(heartbeat="500ms")
        worker, _ = self.plugin_worker(self.dir, slots=4, grace="1s")
        cases = (
            ("hang past its timeout", {"do": "hang", "seconds": 600}, {"timeout": "1s"}, None),
            ("ignore_cancel past its timeout", {"do": "ignore_cancel", "seconds": 600},
             {"timeout": "1s"}, None),
            ("ignore_cancel past a cancel", {"do": "ignore_cancel", "seconds": 600}, {}, "cancel"),
        )
        for what, config, fields, action in cases:
            with self.subTest(what):
                job = self.job("misbehave", config, **fields)
                run = self.run_of(job, state="running")
                host = self.host_of(worker, "misbehave")
                if action == "cancel":
                    st, _, v = self.api("POST", "/v1/runs/%s/cancel" % run["id"])
                    self.assertEqual(st, 200, v)
                    run = self.wait_run_state(run["id"], "canceled", timeout=20)
                else:
                    run = self.run_of(job, timeout=20)
                    self.assertEqual(run["state"], "failed", run)
                    self.assertIn("plugin hung", run["reason"], run)
                # The host was killed after the grace; the next attempt
                # runs on a new one.
                wait_until(lambda: not pid_alive(host), 10, msg="the hung host %d to die" % host)
                self.crash_over(worker, host)


class TestPluginABI(PluginTestCase):
    def test_a_plugin_of_a_future_abi_is_refused_before_it_loads(self):
        if os.path.exists(MARKER):
            os.unlink(MARKER)  # left by an earlier, failed run
        self.start_server(heartbeat="500ms")
        worker, wid = self.plugin_worker(TEST_PLUGINS)
        self.host_of(worker, "misbehave")
        # The worker says why, naming the file and both ABIs.
        line = wait_until(
            lambda: next((l for l in worker.stderr_text().splitlines()
                          if "future_abi.so" in l and "999" in l), None),
            10, msg="the worker's log line refusing future_abi.so")
        self.assertIn("1", line.split("future_abi.so", 1)[1], line)
        # Never loaded: its constructor would have left the marker.
        self.assertFalse(os.path.exists(MARKER), "future_abi.so was loaded")
        self.assertNotIn("future_abi", plugin_hosts(worker))
        # Not advertised: the worker lists misbehave, not future_abi, and a
        # job of the type is refused.
        w = next(w for w in self.list_all("/v1/workers") if w["id"] == wid)
        self.assertIn("misbehave", w["types"])
        self.assertNotIn("future_abi", w["types"])
        self.assert_problem(self.api("POST", "/v1/jobs", {
            "name": "future", "type": "future_abi", "config": {}}), 400, "type")
        self.shell_still_runs()

    def test_a_plugin_whose_schema_sked_cannot_apply_is_refused_alone(self):
        """A plugin with a schema sked's subset does not cover ($ref) is
        refused by the worker that loads it, with why; the worker starts
        and runs its other plugins and shell jobs."""
        d = self.path("plugins")
        os.makedirs(d)
        for so in (os.path.join(TEST_PLUGINS, "misbehave.so"),
                   os.path.join(BUILD, "test-plugins-bad", "refschema.so")):
            shutil.copy(so, d)
        self.start_server(heartbeat="500ms")
        worker, wid = self.plugin_worker(d)
        line = wait_until(
            lambda: next((l for l in worker.stderr_text().splitlines()
                          if "refschema.so refused" in l), None),
            10, msg="the worker's log line refusing refschema.so")
        self.assertIn("$ref", line)
        w = next(w for w in self.list_all("/v1/workers") if w["id"] == wid)
        self.assertIn("misbehave", w["types"])
        self.assertNotIn("refschema", w["types"])
        run = self.run_of(self.job("misbehave", {"do": "ok"}))
        self.assertEqual(run["state"], "succeeded", run)
        self.shell_still_runs()


if __name__ == "__main__":
    unittest.main()
