"""Job isolation end to end (DESIGN §8): a real `sked worker --run-as nobody`
runs a job as that user, with resource limits, a scrubbed environment (no
worker token, nothing of the worker's env) and a fresh working directory
that is removed afterwards; secret env values reach the job but never the
worker's log or an API answer; and a root worker refuses to run jobs as
root unless told to.

These tests run as root (as CI does here): only root can switch users. Run
as anyone else, the run-as test checks instead that the worker refuses
--run-as with a clear message.
"""

import os
import unittest

from skedtest import SkedTestCase, wait_until

SECRET = "s3cr3t-VALUE-e2e"
WORKER_TOKEN_MARK = "worker-env-only-marker"


class TestIsolation(SkedTestCase):
    def setUp(self):
        super().setUp()
        self.start_server(heartbeat="500ms")
        # The job's user must be able to pass through the temp dir to the
        # work dir below it (the work dir base itself is made 0711).
        os.chmod(self.tmp, 0o711)
        self.work = self.path("work")

    def start_isolated_worker(self, *extra, name="worker"):
        """A worker whose own environment holds its token and a marker
        variable, neither of which a job may see."""
        env = {"SKED_TOKEN": self.srv.token, "WORKER_ONLY_VAR": WORKER_TOKEN_MARK}
        args = ["worker", "--server", self.srv.url, "--slots", "1", "--name", name,
                "--work-dir", self.work] + list(extra)
        return self.start(name, args, env=env)

    def job_log(self, run_id):
        st, _, log = self.api("GET", "/v1/runs/%s/log" % run_id)
        self.assertEqual(st, 200, log)
        return log

    def test_run_as_nobody(self):
        if os.geteuid() != 0:
            proc = self.start_isolated_worker("--run-as", "nobody")
            self.assertNotEqual(proc.wait_exit(), 0)
            self.assertIn("needs a worker started as root", proc.stderr_text())
            return
        proc = self.start_isolated_worker("--run-as", "nobody", "--limit-nofile", "200",
                                          "--limit-cpu", "30s")
        proc.wait_line("worker: registered as", 30)

        script = (
            'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"; '
            'echo "cwd=$(pwd)"; '
            'echo "owner=$(stat -c %u .)"; '
            'echo "token=${SKED_TOKEN:-unset} leak=${WORKER_ONLY_VAR:-unset}"; '
            'echo "home=$HOME user=$USER path=$PATH lang=$LANG"; '
            'echo "plain=$PLAIN secret=$MY_SECRET"; '
            'echo "run=$SKED_RUN_ID"; '
            'echo "nofile=$(ulimit -n) cpu=$(ulimit -t)"; '
            'mkdir -p junk/deeper && echo x > junk/deeper/file && ln -s /etc junk/etc-link; '
            'env | cut -d= -f1 | sort | tr "\\n" " "; echo')
        job = self.create_job(self.sh_job(
            script, env={"PLAIN": "p", "MY_SECRET": {"secret": SECRET}}))
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "succeeded", run)
        log = self.job_log(run["id"])
        lines = {l.split("=", 1)[0]: l for l in log.splitlines() if "=" in l}

        self.assertIn("uid=65534 gid=65534 groups=65534", log)
        cwd = lines["cwd"].split("=", 1)[1]
        self.assertEqual(os.path.dirname(cwd), self.work, log)
        self.assertTrue(os.path.basename(cwd).startswith(run["id"] + ".1-"), log)
        self.assertIn("owner=65534", log)
        self.assertIn("token=unset leak=unset", log)
        self.assertIn("home=/nonexistent user=nobody path=/usr/local/bin:/usr/bin:/bin "
                      "lang=C.UTF-8", log)
        self.assertIn("plain=p secret=" + SECRET, log)
        self.assertIn("run=" + run["id"], log)
        self.assertIn("nofile=200 cpu=30", log)
        # The whole environment: the base, the job's env, SKED_*.
        names = set(log.strip().splitlines()[-1].split())
        allowed = {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "PWD", "PLAIN", "MY_SECRET",
                   "E2E_SKED_TMP", "SKED_RUN_ID", "SKED_ATTEMPT", "SKED_FIRE_TIME",
                   "SKED_JOB_ID", "SKED_JOB_NAME", "SKED_RESULT_FILE", "SKED_CHECKPOINT_FILE"}
        self.assertTrue(names <= allowed, "unexpected variables: %r" % (names - allowed))

        # The attempt's directory goes away with everything in it; /etc,
        # which the job linked to, is untouched.
        wait_until(lambda: not os.path.exists(cwd), 15, msg="work dir %s removed" % cwd)
        # Its results directory (docs/results.md) goes with it.
        wait_until(lambda: os.listdir(self.work) == [], 15, msg="%s emptied" % self.work)
        self.assertTrue(os.path.exists("/etc/passwd"))
        self.assertEqual(os.stat(self.work).st_mode & 0o777, 0o711)

        # The worker never logs env values.
        self.assertEqual(proc.stop(), 0)
        self.assertNotIn(SECRET, proc.stderr_text())

    def test_job_cwd_is_kept(self):
        """A job naming its own cwd runs there; no work dir is made."""
        if os.geteuid() == 0:
            proc = self.start_isolated_worker("--run-as", "nobody")
        else:
            proc = self.start_isolated_worker()
        proc.wait_line("worker: registered as", 30)
        job = self.create_job(self.sh_job('echo "cwd=$(pwd)"', cwd="/"))
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertIn("cwd=/\n", self.job_log(run["id"]))
        # No work dir was made: what the work dir holds is at most the
        # attempt's results directory (docs/results.md), which goes too.
        self.assertEqual([e for e in os.listdir(self.work) if ".io-" not in e], [])
        wait_until(lambda: os.listdir(self.work) == [], 15, msg="%s emptied" % self.work)

    def test_secret_hidden_from_api(self):
        """The job resource shows a secret as "***", whichever way it is read."""
        job = self.create_job(self.sh_job("true", env={"MY_SECRET": {"secret": SECRET}}))
        self.assertEqual(job["env"]["MY_SECRET"], {"secret": "***"}, job)
        got = self.ok("GET", "/v1/jobs/" + job["id"], expect=200)
        self.assertEqual(got["env"]["MY_SECRET"], {"secret": "***"}, got)
        listed = self.list_all("/v1/jobs")
        self.assertNotIn(SECRET, repr(listed))
        # Sending the masked document back keeps the secret.
        patched = self.ok("PATCH", "/v1/jobs/" + job["id"],
                          {"env": {"MY_SECRET": {"secret": "***"}, "OTHER": "o"}},
                          headers={"If-Match": str(got["version"])}, expect=200)
        self.assertEqual(patched["env"]["MY_SECRET"], {"secret": "***"}, patched)
        self.assertNotIn(SECRET, self.srv.proc.stderr_text())

    def test_root_needs_run_as_or_allow_root(self):
        if os.geteuid() != 0:
            # Not root: jobs run as us; --run-as root is refused all the same.
            proc = self.start_isolated_worker("--run-as", "root")
            self.assertNotEqual(proc.wait_exit(), 0)
            return
        proc = self.start_isolated_worker()
        self.assertEqual(proc.wait_exit(), 2)
        err = proc.stderr_text()
        self.assertIn("refusing to run jobs as root", err)
        self.assertIn("--run-as", err)

        proc = self.start_isolated_worker("--run-as", "root", name="w-root")
        self.assertEqual(proc.wait_exit(), 1)
        self.assertIn("refusing to run jobs as root ('root'); give --allow-root",
                      proc.stderr_text())

        proc = self.start_isolated_worker("--run-as", "sked-no-such-user", name="w-nouser")
        self.assertEqual(proc.wait_exit(), 1)
        self.assertIn("no such user 'sked-no-such-user'", proc.stderr_text())

        # With --allow-root it starts, and jobs run as root.
        proc = self.start_isolated_worker("--allow-root", name="w-allowed")
        proc.wait_line("worker: registered as", 30)
        job = self.create_job(self.sh_job('echo "uid=$(id -u)"'))
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertIn("uid=0\n", self.job_log(run["id"]))


if __name__ == "__main__":
    unittest.main()
