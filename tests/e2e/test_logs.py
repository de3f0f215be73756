"""Logs an operator can ship (issue 9, point 5): `--log-format json` writes
one JSON object per line with time, level, component and message, plus the
request, job and run a line belongs to; every answer carries X-Request-Id,
the client's own when well-formed, else one the server made up."""

import json
import os
import unittest

from skedtest import SkedTestCase, wait_until


class TestLogs(SkedTestCase):
    def json_lines(self):
        lines = [l for l in self.srv.proc.stderr_text().splitlines() if l.strip()]
        return [json.loads(l) for l in lines]  # every line must parse

    def test_json_lines_carry_request_job_and_run(self):
        self.start_server(extra=["--log-format", "json"])
        job = self.create_job(self.sh_job("true", schedules=[{"every": "1h"}]))

        # The client's id is kept; a malformed one, or none, is replaced.
        st, h, _ = self.api("POST", "/v1/jobs/%s/trigger" % job["id"],
                            headers={"X-Request-Id": "trigger-1"})
        self.assertEqual(st, 201)
        self.assertEqual(h.get("X-Request-Id"), "trigger-1")
        run_id = self.ok("GET", "/v1/runs?job=%s" % job["id"])["items"][0]["id"]
        for bad in ("x" * 65, "two words", "quote\"d"):
            st, h, _ = self.api("GET", "/v1/jobs", headers={"X-Request-Id": bad})
            self.assertEqual(st, 200)
            self.assertTrue(h.get("X-Request-Id", "").startswith("req_"), h)
        st, h, _ = self.api("GET", "/v1/jobs", token=None)
        self.assertEqual(st, 401)
        self.assertTrue(h.get("X-Request-Id", "").startswith("req_"), h)

        st, _, _ = self.api("POST", "/v1/runs/%s/cancel" % run_id,
                            headers={"X-Request-Id": "cancel-1"})
        self.assertEqual(st, 200)

        def cancel_logged():
            return any(e.get("request_id") == "cancel-1" for e in self.json_lines())

        wait_until(cancel_logged, 5, msg="the cancel's log line")
        lines = self.json_lines()
        for e in lines:
            for k in ("time", "level", "component", "msg"):
                self.assertIn(k, e, e)
            self.assertIn(e["level"], ("debug", "info", "warn", "error"))
        cancel = [e for e in lines if e.get("request_id") == "cancel-1"]
        self.assertTrue(any(e.get("run_id") == run_id and run_id in e["msg"] for e in cancel),
                        cancel)
        # Lines outside any request carry none of it.
        self.assertTrue(any("request_id" not in e and e["component"] == "http" for e in lines))

    def test_worker_lines_carry_the_run(self):
        self.start_server()
        args = ["worker", "--server", self.srv.url, "--token-file", self.srv.token_file,
                "--slots", "1", "--name", "wj", "--log-format", "json"]
        if os.geteuid() == 0:
            args += ["--allow-root"]
        proc = self.start("wj", args)
        proc.wait_line("worker: registered as", 30)
        job = self.create_job(self.sh_job("exit 4"))
        run = self.wait_run_terminal(job["id"])

        def lines():
            return [json.loads(l) for l in proc.stderr_text().splitlines() if l.strip()]

        def ended():
            return [e for e in lines() if e.get("run_id") == run["id"] and "failed" in e["msg"]]
        wait_until(ended, 10, msg="the worker's line about the failed attempt")
        for e in lines():
            for k in ("time", "level", "component", "msg"):
                self.assertIn(k, e, e)
        # Lines that are not about a run carry none.
        self.assertTrue(any("run_id" not in e and "registered" in e["msg"] for e in lines()))

    def test_bad_log_format_is_refused(self):
        rc, out, err = self.cli("server", "--log-format", "xml", "--listen", "127.0.0.1:0",
                                   "--store", "sqlite:%s/x.db" % self.tmp)
        self.assertEqual(rc, 2)
        self.assertIn("--log-format", err)


if __name__ == "__main__":
    unittest.main()
