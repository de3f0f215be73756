"""HTTP jobs end to end (issue 11 point 4; docs/http-jobs.md).

A real `sked server`, real `sked worker`s (which run the built-in http type
in their `sked plugin-host` processes) and a real HTTP server of the test's
own on 127.0.0.1:0 (Python's http.server in a thread, loopback only).

What each test asserts:

- With `--http-allow 127.0.0.0/8`, a POST job with headers, a body and a
  secret Authorization header reaches the target with every header and the
  body (the secret resolved); the run succeeds with the result
  {status, headers, body, truncated, url, redirects, time_ms}; the log has
  the request line and the body. The secret shows "***" in the job as the
  API answers it and never appears in the run's log, result or run
  resource.
- Without --http-allow, a job to 127.0.0.1 fails with the SSRF guard's
  reason and the target never sees a request; so does a redirect from an
  allowed 127.0.0.2 to 127.0.0.1, and a job to 169.254.169.254.
- An unexpected status fails the attempt with "HTTP 503 (expected 2xx)"
  and keeps the answer as the result; a listed one succeeds.
- config.timeout and the job's own timeout end a request that gets no
  answer ("timeout"), and a cancel ends one in flight at once.
- A bad config is refused at submit with a 400 naming the member.
- A bad --http-allow stops the worker at start, naming the entry.
"""

import http.server
import json
import os
import socketserver
import sys
import threading
import unittest

from skedtest import SkedTestCase, parse_time, wait_until

SECRET = "Bearer e2e-s3cret-9f2c"


class Target:
    """A small HTTP server on ip:0 recording what it receives. Paths:
    /echo (200, what arrived as JSON, never the Authorization value),
    /status/N, /redirect?to=URL (302)."""

    def __init__(self, ip="127.0.0.1"):
        self.requests = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # ends the requests waiting in /slow
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
                with target.lock:
                    target.requests.append({"method": self.command, "path": self.path,
                                            "headers": dict(self.headers), "body": body})
                if self.path == "/slow":
                    # Answers when the test is done (bounded: 30 s at most).
                    target.release.wait(30)
                    self.reply(200, "late")
                elif self.path.startswith("/status/"):
                    code = int(self.path[8:])
                    self.reply(code, "status %d" % code)
                elif self.path.startswith("/redirect?to="):
                    self.reply(302, "moved", {"Location": self.path[len("/redirect?to="):]})
                else:
                    self.reply(200, json.dumps({
                        "method": self.command, "x_test": self.headers.get("X-Test"),
                        "content_type": self.headers.get("Content-Type"),
                        "auth_len": len(self.headers.get("Authorization") or ""),
                        "body": body}, sort_keys=True))

            def reply(self, code, text, headers=None):
                data = text.encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # A client that went away (a canceled or timed-out job)
                # is what some tests do; anything else is reported.
                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)

        self.httpd = Server((ip, 0), Handler)
        self.url = "http://%s:%d" % (ip, self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def count(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


class HttpJobsTest(SkedTestCase):

    def target(self, ip="127.0.0.1"):
        t = Target(ip)
        self.addCleanup(t.close)
        return t

    def http_job(self, config, **fields):
        doc = {"type": "http", "config": config, "retry": {"max_attempts": 1}}
        doc.update(fields)
        return self.create_job(doc)

    def log_of(self, run_id):
        st, _, text = self.api("GET", "/v1/runs/%s/log" % run_id)
        self.assertEqual(st, 200)
        return text

    def test_request_result_log_and_secret(self):
        self.start_server()
        self.start_worker(extra=["--http-allow", "127.0.0.0/8"])
        t = self.target()
        job = self.http_job({
            "method": "POST", "url": t.url + "/echo",
            "headers": {"X-Test": "e2e", "Content-Type": "application/json",
                        "Authorization": {"secret": SECRET}},
            "body": '{"hello": "world"}', "expect": [200]})
        # The API never shows the secret.
        self.assertEqual(job["config"]["headers"]["Authorization"], {"secret": "***"})
        shown = self.ok("GET", "/v1/jobs/" + job["id"], expect=200)
        self.assertEqual(shown["config"]["headers"]["Authorization"], {"secret": "***"})
        self.assertNotIn("e2e-s3cret", json.dumps(shown))

        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "succeeded", run)
        # The target got the request, the secret resolved.
        self.assertEqual(t.count(), 1)
        req = t.requests[0]
        self.assertEqual(req["method"], "POST")
        self.assertEqual(req["headers"].get("Authorization"), SECRET)
        self.assertEqual(req["headers"].get("X-Test"), "e2e")
        self.assertEqual(req["body"], '{"hello": "world"}')
        # The result.
        res = run["result"]
        self.assertEqual(res["status"], 200)
        self.assertEqual(res["headers"]["content-type"], "text/plain; charset=utf-8")
        echo = json.loads(res["body"])
        self.assertEqual(echo["x_test"], "e2e")
        self.assertEqual(echo["auth_len"], len(SECRET))
        self.assertEqual(echo["content_type"], "application/json")
        self.assertIs(res["truncated"], False)
        self.assertEqual(res["url"], t.url + "/echo")
        self.assertEqual(res["redirects"], 0)
        self.assertIsInstance(res["time_ms"], int)
        self.assertEqual(self.ok("GET", "/v1/runs/%s/result" % run["id"], expect=200), res)
        # The log: the request line and the body; nowhere the secret.
        log = self.log_of(run["id"])
        self.assertIn("POST %s/echo -> 200 (" % t.url, log)
        self.assertIn('"x_test": "e2e"', log)
        for where, text in (("log", log), ("run", json.dumps(run))):
            self.assertNotIn("e2e-s3cret", text, where)

    def test_dev_allow_list(self):
        """`sked dev --http-allow` hands the list to its local worker: a job
        to a service on this machine runs there, and only there."""
        self.start_dev(extra=["--http-allow", "127.0.0.1/32"])
        t = self.target()
        run = self.wait_run_terminal(self.http_job({"url": t.url + "/echo"})["id"], timeout=30)
        self.assertEqual(run["state"], "succeeded", run)
        other = self.target("127.0.0.2")  # not in the list
        run = self.wait_run_terminal(self.http_job({"url": other.url + "/echo"})["id"],
                                     timeout=30)
        self.assertEqual(run["state"], "failed", run)
        self.assertIn("refused to connect to 127.0.0.2", run["reason"])
        self.assertEqual((t.count(), other.count()), (1, 0))

    def test_guard_without_allow(self):
        self.start_server()
        self.start_worker()
        t = self.target()
        port = t.url.rsplit(":", 1)[1]
        job = self.http_job({"url": t.url + "/echo"})
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "failed", run)
        self.assertEqual(
            run["reason"],
            "http: refused to connect to 127.0.0.1:%s (loopback; allow it with --http-allow)"
            % port)
        self.assertEqual(run["attempts"][0]["reason"], run["reason"])
        job = self.http_job({"url": "http://169.254.169.254/latest/meta-data/"})
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "failed", run)
        self.assertEqual(run["reason"], "http: refused to connect to 169.254.169.254:80 "
                                        "(cloud metadata; allow it with --http-allow)")
        self.assertEqual(t.count(), 0)

    def test_guard_checks_redirects(self):
        self.start_server()
        self.start_worker(extra=["--http-allow", "127.0.0.2"])
        inner = self.target("127.0.0.1")
        outer = self.target("127.0.0.2")
        for to, why in ((inner.url + "/echo", "127.0.0.1:%s (loopback;"
                         % inner.url.rsplit(":", 1)[1]),
                        ("http://169.254.169.254/latest/", "169.254.169.254:80 (cloud metadata;")):
            job = self.http_job({"url": outer.url + "/redirect?to=" + to})
            run = self.wait_run_terminal(job["id"], timeout=30)
            self.assertEqual(run["state"], "failed", run)
            self.assertIn("http: refused to connect to " + why, run["reason"])
            self.assertIn("GET %s/redirect?to=%s -> 302 (" % (outer.url, to),
                          self.log_of(run["id"]))
        self.assertEqual(outer.count(), 2)
        self.assertEqual(inner.count(), 0)

    def test_expected_status(self):
        self.start_server()
        self.start_worker(extra=["--http-allow", "127.0.0.1/32"])
        t = self.target()
        job = self.http_job({"url": t.url + "/status/503"})
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "failed", run)
        self.assertEqual(run["reason"], "HTTP 503 (expected 2xx)")
        self.assertEqual(run["result"]["status"], 503)
        self.assertEqual(run["result"]["body"], "status 503")
        job = self.http_job({"method": "DELETE", "url": t.url + "/status/404",
                             "expect": [404, 410]})
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "succeeded", run)
        self.assertEqual(t.requests[-1]["method"], "DELETE")

    def test_timeout_and_cancel(self):
        self.start_server()
        self.start_worker(slots=2, extra=["--http-allow", "127.0.0.1"])
        t = self.target()
        # config.timeout
        job = self.http_job({"url": t.url + "/slow", "timeout": "500ms"})
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "failed", run)
        self.assertEqual(run["reason"], "timeout")
        self.assertIn("no complete answer within 500 ms", self.log_of(run["id"]))
        # The job's own timeout, shorter than config.timeout (30s).
        job = self.http_job({"url": t.url + "/slow"}, timeout="1s")
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "failed", run)
        # The worker stopped it, as it stops a shell job: outcome timeout.
        self.assertEqual(run["reason"], "timeout")
        self.assertEqual(run["attempts"][0]["outcome"], "timeout", run)
        took = parse_time(run["finished_at"]) - parse_time(run["started_at"])
        self.assertLess(took, 5, run)
        # Cancel: the request in flight ends at once. (Counted before the
        # submit: the request may arrive before the submit's answer does.)
        before = t.count()
        job = self.http_job({"url": t.url + "/slow"})
        rid = self.wait_runs(job["id"], lambda rs: rs and rs[0]["state"] == "running")[0]["id"]
        wait_until(lambda: t.count() > before, 20, msg="the request to reach the target")
        self.ok("POST", "/v1/runs/%s/cancel" % rid, expect=200)
        run = self.wait_run_state(rid, "canceled", timeout=10)
        self.assertFalse(t.release.is_set())  # ended by sked, not by the target

    def test_bad_config_refused_at_submit(self):
        self.start_server()
        for config, field in (({"url": "ftp://example.com/x"}, "config.url"),
                              ({}, "config.url"),
                              ({"url": "http://h", "method": "TRACE"}, "config.method"),
                              ({"url": "http://h", "headers": {"Bad Name": "v"}},
                               "config.headers.Bad Name"),
                              ({"url": "http://h", "headers": {"X": "a\r\nY: b"}},
                               "config.headers.X"),
                              ({"url": "http://h", "expect": [200, 600]}, "config.expect[1]"),
                              ({"url": "http://h", "timeout": "soon"}, "config.timeout"),
                              ({"url": "http://h", "max_redirects": 21}, "config.max_redirects"),
                              ({"url": "http://h", "uri": "x"}, "config.uri")):
            resp = self.api("POST", "/v1/jobs", {"name": "bad-http", "type": "http",
                                                 "config": config})
            self.assert_problem(resp, 400, field)
        self.assertEqual(self.ok("GET", "/v1/jobs", expect=200)["items"], [])

    def test_bad_allow_list_stops_the_worker(self):
        srv = self.start_server()
        args = ["worker", "--server", srv.url, "--token-file", srv.token_file,
                "--http-allow", "10.1.2.3/8"]
        if os.geteuid() == 0:
            args.append("--allow-root")
        p = self.start("worker", args)
        self.assertNotEqual(p.wait_exit(20), 0)
        wait_until(lambda: "did you mean 10.0.0.0/8?" in p.stderr_text(), 5,
                   msg="the worker to name the bad --http-allow entry")


if __name__ == "__main__":
    unittest.main()
