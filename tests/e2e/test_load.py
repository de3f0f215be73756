"""sked-load (bench/loadgen.c, bench/load_main.c) against a real `sked
server` and against a deliberately awkward HTTP server.

What a user of the load generator relies on is that its counts are the
truth: every request it issued is accounted for exactly once (answered by
status class, or one of the error kinds), every 2xx it counted is a job the
server created, the open loop sends exactly rate x seconds requests, and a
server that stalls, closes, chunks or talks nonsense neither hangs the run
nor disappears from the figures. Timings are printed, never asserted.
"""

import json
import os
import socketserver
import subprocess
import threading
import time

from skedtest import ROOT, SLOW, SkedTestCase

LOAD_BIN = os.environ.get("SKED_LOAD_BIN") or os.path.join(ROOT, "build", "sked-load")

ERRORS = ("err_connect", "err_closed", "err_timeout", "err_protocol", "unsent")
CLASSES = ("status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_other")


def job_body(prefix):
    # Fires in 2099: nothing runs, each submit is one durable job row.
    return ('{"name":"%s-{n}","command":["/bin/true"],'
            '"schedules":[{"at":"2099-01-01T00:00:00Z"}]}' % prefix)


class LoadTest(SkedTestCase):
    def load(self, *args, timeout=60.0):
        """Runs sked-load --json ARGS (URLs first); returns (exit status, figures)."""
        p = subprocess.run([LOAD_BIN, "--json", *args], capture_output=True, text=True,
                           timeout=timeout * SLOW)
        self.assertIn(p.returncode, (0, 1), "sked-load failed to run: %s" % p.stderr)
        r = json.loads(p.stdout)
        return p.returncode, r

    def assert_accounted(self, r):
        """Every issued request is counted once: answered (by class) or an error."""
        self.assertEqual(r["answered"], sum(r[k] for k in CLASSES), r)
        self.assertEqual(r["issued"], r["answered"] + sum(r[k] for k in ERRORS), r)
        self.assertLessEqual(r["sent"], r["issued"], r)

    def names(self, prefix):
        jobs = self.list_all("/v1/jobs?name=%s-" % prefix, limit=1000)
        return sorted(j["name"] for j in jobs if j["name"].startswith(prefix + "-"))

    def expected(self, prefix, count):
        return sorted("%s-%d" % (prefix, i) for i in range(count))

    def test_closed_loop_counts_every_submit_once(self):
        srv = self.start_server(extra=("--rate-limit", "off"))
        rc, r = self.load(srv.url, "--token", srv.token, "--connections", "4", "--seconds", "1",
                          "--body", job_body("closed"))
        self.assert_accounted(r)
        self.assertEqual(r["mode"], "closed")
        self.assertGreater(r["issued"], 0)
        self.assertEqual(sum(r[k] for k in ERRORS), 0, r)
        self.assertEqual(r["status_2xx"], r["issued"], r)
        self.assertEqual(rc, 0)
        self.assertEqual(r["connects"], 4, "keep-alive: one connection each, never reopened")
        # Each 2xx is one job, numbered 0..issued-1 in issue order.
        self.assertEqual(self.names("closed"), self.expected("closed", r["issued"]))

        # --requests stops at exactly that many; the token may come from a file.
        rc, r = self.load(srv.url, "--token-file", srv.token_file, "--connections", "8",
                          "--requests", "150", "--seconds", "60", "--body", job_body("counted"))
        self.assert_accounted(r)
        self.assertEqual((rc, r["issued"], r["status_2xx"]), (0, 150, 150), r)
        self.assertEqual(self.names("counted"), self.expected("counted", 150))

    def test_open_loop_sends_rate_times_seconds(self):
        srv = self.start_server(extra=("--rate-limit", "off"))
        rc, r = self.load(srv.url, "--token", srv.token, "--rate", "40", "--seconds", "1",
                          "--connections", "4", "--body", job_body("open"))
        self.assert_accounted(r)
        self.assertEqual(r["mode"], "open")
        self.assertEqual((rc, r["issued"], r["status_2xx"]), (0, 40, 40), r)
        self.assertEqual(r["unsent"], 0)
        self.assertLessEqual(r["connects"], 4)
        self.assertEqual(self.names("open"), self.expected("open", 40))

    def test_refused_answers_are_counted_and_create_nothing(self):
        # The default per-token rate limit answers 429 to part of a closed
        # loop; whatever the split, the 2xx are exactly the jobs created.
        srv = self.start_server()
        rc, r = self.load(srv.url, "--token", srv.token, "--connections", "4", "--seconds", "1",
                          "--body", job_body("limited"))
        self.assert_accounted(r)
        self.assertEqual(sum(r[k] for k in ERRORS), 0, r)
        self.assertEqual(r["status_2xx"] + r["status_4xx"], r["answered"], r)
        self.assertEqual(rc, 0 if r["status_4xx"] == 0 else 1)
        if r["status_4xx"]:
            self.assertEqual(r["first_bad_status"], 429, r)
        names = self.names("limited")
        self.assertEqual(len(names), r["status_2xx"])
        self.assertEqual(len(set(names)), len(names))

    def test_wrong_token_is_all_401(self):
        srv = self.start_server(extra=("--rate-limit", "off"))
        rc, r = self.load(srv.url, "--token", "nope", "--requests", "20", "--connections", "2")
        self.assert_accounted(r)
        self.assertEqual((rc, r["issued"], r["status_4xx"], r["first_bad_status"]),
                         (1, 20, 20, 401), r)

    def test_nobody_listening_is_connect_errors_and_ends(self):
        srv = self.start_server()
        url = srv.url
        srv.proc.stop()
        t0 = time.monotonic()
        rc, r = self.load(url, "--rate", "20", "--seconds", "0.5", "--timeout", "1")
        self.assert_accounted(r)
        self.assertEqual((rc, r["issued"], r["answered"]), (1, 10, 0), r)
        self.assertGreater(r["connect_failed"], 0, r)
        # Closed loop: nothing may be issued at all (a refused connect takes
        # no request), and that is a failure too.
        rc, r = self.load(url, "--seconds", "0.5", "--timeout", "1")
        self.assert_accounted(r)
        self.assertEqual((rc, r["answered"]), (1, 0), r)
        self.assertGreater(r["connect_failed"], 0, r)
        self.assertLess(time.monotonic() - t0, 30 * SLOW)

    def test_awkward_server(self):
        """Chunked answers (in pieces, with an extension and a trailer),
        Connection: close, an HTTP/1.0 body ending at EOF, a close without
        an answer, nonsense, and one request never answered: each request
        lands in its own count, and the stall costs --timeout, not a hang."""
        srv = self.awkward()
        url = "http://127.0.0.1:%d" % srv.server_address[1]
        rc, r = self.load(url, "--connections", "2", "--requests", "60", "--seconds", "60",
                          "--timeout", "1", "--path", "/anything")
        self.assert_accounted(r)
        # Request n gets behaviour n % 6 (see AwkwardHandler); 13 stalls.
        want = {"issued": 60, "answered": 39, "status_2xx": 19, "status_4xx": 10,
                "status_5xx": 10, "err_closed": 10, "err_protocol": 10, "err_timeout": 1,
                "err_connect": 0, "unsent": 0}
        self.assertEqual({k: r[k] for k in want}, want, r)
        self.assertEqual(rc, 1)
        self.assertGreater(r["connects"], 40, "every closed connection was reopened")
        self.assertEqual(srv.count, 60)

    def test_several_servers_share_the_connections(self):
        a, b = self.awkward(plain=True), self.awkward(plain=True)
        urls = ["http://127.0.0.1:%d" % s.server_address[1] for s in (a, b)]
        rc, r = self.load(*urls, "--connections", "4", "--requests", "400")
        self.assert_accounted(r)
        self.assertEqual((rc, r["status_2xx"]), (0, 400), r)
        self.assertLessEqual(r["connects"], 4, r)
        self.assertEqual(a.count + b.count, 400)
        self.assertGreater(a.count, 0)
        self.assertGreater(b.count, 0)

    def awkward(self, plain=False):
        """An AwkwardHandler server in a thread, ended by cleanup; plain:
        every answer is a 201."""
        srv = Awkward(("127.0.0.1", 0), AwkwardHandler)
        srv.count = 0
        srv.plain = plain
        srv.lock = threading.Lock()
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        return srv


class Awkward(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class AwkwardHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(30)
        f = self.request.makefile("rb")
        while True:
            line = f.readline()
            if not line:
                return
            length = 0
            while True:
                h = f.readline()
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode().partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v)
            f.read(length)  # the whole request is read before any answer
            with self.server.lock:
                n = self.server.count
                self.server.count += 1
            s = self.request
            if self.server.plain:
                n = 0
            elif n == 13:
                s.recv(1)  # never answered: held until the client gives up
                return
            kind = n % 6
            if kind == 0:
                s.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n"
                          b"Content-Type: application/json\r\n\r\n{}")
            elif kind == 1:
                s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhel")
                time.sleep(0.005)  # in pieces, to exercise partial reads (not a wait)
                s.sendall(b"lo\r\n1a\r\n" + b"z" * 26 + b"\r\n0\r\nX-Trailer: t\r\n\r\n")
            elif kind == 2:
                s.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\nConnection: close\r\n\r\n"
                          b"busy")
                return
            elif kind == 3:
                s.sendall(b"HTTP/1.0 404 Not Found\r\n\r\nthe body ends at the end of the stream")
                return
            elif kind == 4:
                return  # closed without an answer
            else:
                s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
