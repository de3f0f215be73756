"""Plugin attempts under the faults of DESIGN §5 (issue 11, point 3).

A plugin attempt is not a process of its own: it runs on a thread of the
worker's plugin host. The promises must hold all the same:

- a worker killed with -9 takes its plugin host with it (no attempt keeps
  running for a worker that is gone), and the run is retried elsewhere
  (§5.6);
- a worker frozen with SIGSTOP cannot renew its leases, and its orphan
  watcher kills the plugin host before the lease is given to another
  worker: attempt 1 never overlaps attempt 2 (§5.4).

The plugin is tests/plugins/misbehave: {"do": "hang"} never returns and
ignores every request to stop, the worst a plugin can do; "retry_do" is
what attempts after the first do.
"""

import os
import signal
import time
import unittest

from skedtest import SKED_BIN, SLOW, TERMINAL, SkedTestCase, parse_time, pid_alive, wait_until

TEST_PLUGINS = os.path.join(os.path.dirname(SKED_BIN), "test-plugins")


def host_pids(parent, type_name):
    """Pids of `sked plugin-host --type type_name` children of parent."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read().rsplit(")", 1)[1].split()
            if int(st[1]) != parent or st[0] == "Z":
                continue
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if b"plugin-host" in argv and type_name.encode() in argv:
            out.append(int(d))
    return out


class TestPluginFaults(SkedTestCase):
    def start_plugin_worker(self, name, **kw):
        proc, wid = self.start_worker(name=name, queues="default," + name,
                                      extra=("--plugin-dir", TEST_PLUGINS), **kw)
        return proc, wid

    def hang_job(self):
        return self.create_job({"name": "hang", "type": "misbehave",
                                "config": {"do": "hang", "retry_do": "ok"},
                                "retry": {"max_attempts": 3, "initial": "100ms",
                                          "jitter": False}})

    def test_worker_kill9_takes_its_plugin_host(self):
        self.start_server(lease="3s", heartbeat="500ms")
        ws = dict((wid, proc) for proc, wid in (self.start_plugin_worker("w1"),
                                                self.start_plugin_worker("w2")))
        job = self.hang_job()
        run = self.started_run(job["id"], 3)
        victim = run["worker_id"]
        survivor = [w for w in ws if w != victim][0]
        hosts = host_pids(ws[victim].pid, "misbehave")
        self.assertEqual(len(hosts), 1, "one misbehave host under the victim")
        t_kill = time.time()
        ws[victim].kill9()
        wait_until(lambda: not pid_alive(hosts[0]), 5 * SLOW,
                   msg="the plugin host (pid %d) to die with its worker" % hosts[0])
        run = self.wait_run_state(run["id"], TERMINAL, timeout=40)
        self.assertEqual(run["state"], "succeeded", run)
        a1, a2 = run["attempts"]
        self.assertEqual((a1["worker_id"], a1["outcome"]), (victim, "lost"))
        self.assertEqual((a2["worker_id"], a2["outcome"]), (survivor, "succeeded"))
        # Not before the lease the dead worker held could have run out.
        self.assertGreaterEqual(parse_time(a2["started_at"]), t_kill + 2.0)

    def test_frozen_worker_plugin_host_dies_before_next_attempt(self):
        lease = 5
        self.start_server(lease="%ds" % lease)
        ws = dict((wid, proc) for proc, wid in (self.start_plugin_worker("w1"),
                                                self.start_plugin_worker("w2")))
        job = self.hang_job()
        run = self.started_run(job["id"], lease)
        victim = run["worker_id"]
        host = host_pids(ws[victim].pid, "misbehave")[0]
        os.kill(ws[victim].pid, signal.SIGSTOP)
        t_stop = time.time()
        try:
            # The plugin ignores every stop request; only its host's death
            # ends it. Poll it while the worker is frozen.
            t_dead = None
            deadline = t_stop + 4 * lease * SLOW
            while time.time() < deadline:
                if t_dead is None and not pid_alive(host):
                    t_dead = time.time()
                r = self.run_get(run["id"])
                if len(r["attempts"]) >= 2 and r["attempts"][1]["started_at"]:
                    break
                time.sleep(0.02)
            r = self.wait_run_state(run["id"], TERMINAL, timeout=30)
        finally:
            os.kill(ws[victim].pid, signal.SIGCONT)
        self.assertEqual(r["state"], "succeeded", r)
        self.assertIsNotNone(t_dead, "the frozen worker's plugin host outlived its lease")
        a2 = r["attempts"][1]
        # Attempt 1 (its host) was gone before attempt 2 began: no overlap.
        self.assertLess(t_dead, parse_time(a2["started_at"]))
        self.assertLess(t_dead - t_stop, lease + 1.0)
        # Thawed, the worker serves plugin jobs again on a fresh host.
        ok = self.create_job({"name": "after", "type": "misbehave", "config": {"do": "ok"},
                              "queue": [n for n in ("w1", "w2")
                                        if self.worker_name(victim) == n][0]})
        done = self.wait_run_terminal(ok["id"], timeout=30)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual(done["attempts"][0]["worker_id"], victim)

    def worker_name(self, wid):
        for w in self.ok("GET", "/v1/workers")["items"]:
            if w["id"] == wid:
                return w["name"]
        return None


if __name__ == "__main__":
    unittest.main()
