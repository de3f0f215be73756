"""Readiness tells the truth about writes (issue 7, point 11): with the
store's disk full, /readyz answers 503 (it answered 200 "ready" while every
write failed), writes are refused with a clear problem and nothing crashes;
once space is back, the server is ready again without a restart.

The full disk is a real one: a small tmpfs mounted for the test (the suite
runs as root, as CI does)."""

import os
import subprocess
import time
import unittest

from skedtest import SkedTestCase, wait_until


class TestReadyz(SkedTestCase):
    def mount_small_disk(self, size="8m"):
        mnt = self.path("disk")
        os.makedirs(mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mnt], check=True)
        # Lazy, so it succeeds even before the server has let go of its files.
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        return mnt

    def fill(self, mnt):
        """Fills mnt to the last byte; returns the filler's path."""
        filler = os.path.join(mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for size in (1 << 20, 4096, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)
        return filler

    def ready(self):
        st, _, v = self.api("GET", "/readyz", token=None)
        return st, v

    def test_full_disk_is_not_ready(self):
        mnt = self.mount_small_disk()
        self.start_server(store_dir=os.path.join(mnt, "store"))
        self.assertEqual(self.ready()[0], 200)
        first = self.create_job(self.sh_job("true", schedules=[{"every": "1h"}]))

        filler = self.fill(mnt)
        # The probe runs at most once a second: the next answer after that.
        box = {}

        def not_ready():
            box["r"] = self.ready()
            return box["r"][0] == 503

        wait_until(not_ready, 5, msg="readyz to answer 503 on a full disk")
        st, v = box["r"]
        self.assertEqual(v["status"], 503, v)
        self.assertIn("write", v["detail"])
        # A write is refused with a clear 507 problem, not a crash or a hang,
        # and leaves nothing behind.
        st, h, v = self.api("POST", "/v1/jobs", {"name": "nope", "command": ["true"]})
        self.assertEqual(st, 507, v)
        self.assertTrue(h.get("Content-Type", "").startswith("application/problem+json"), h)
        self.assertEqual(v["status"], 507, v)
        self.assertIn("full", v["detail"], v)
        self.assertTrue(self.srv.proc.alive())
        # Reads still work.
        self.ok("GET", "/v1/jobs", expect=200)

        os.unlink(filler)
        wait_until(lambda: self.ready()[0] == 200, 5, msg="readyz to recover once space is back")
        self.create_job(self.sh_job("true", name="after"), expect=201)
        self.assertTrue(self.srv.proc.alive())
        # What was acknowledged survived the full disk; what was refused
        # never appeared.
        names = sorted(j["name"] for j in self.ok("GET", "/v1/jobs", expect=200)["items"])
        self.assertEqual(names, sorted([first["name"], "after"]))


if __name__ == "__main__":
    unittest.main()
