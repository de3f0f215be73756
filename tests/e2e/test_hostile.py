"""Hostile input end to end (security issue, point 8; promise §5.7).

A live `sked server` (real process, 127.0.0.1:0, SQLite store) is fed input
meant to break it: malformed and 10,000-deep JSON, numbers no machine word
holds, invalid UTF-8, NUL bytes, path traversal and SQL metacharacters in
every id position of every route (the routes come from `sked routes`) and in
every string field of a job document, oversized and too many headers, CR/LF
and NUL inside header values, wrong content types, request-smuggling shapes,
HTTP/0.9 and garbage request lines, slowloris-style partial requests, and a
body one byte over the 1 MiB cap. Requests go over raw sockets (stdlib only)
so every byte is exactly what the test says.

What each test asserts:

- Every hostile request that reaches sked's handlers gets a 4xx answer with
  an `application/problem+json` body (valid UTF-8 JSON whose `status` is the
  HTTP status), never a 2xx, a 5xx, a second (smuggled) answer or an
  injected response header.
- The server stays up: /healthz answers after every group.
- Nothing changed: `GET /v1/jobs?limit=1000`, `GET /v1/runs?limit=1000`,
  `GET /v1/workers`, `GET /v1/workflows?limit=1000` and a full dump of the SQLite file (read through
  Python's sqlite3 in read-only mode, excluding nothing) are identical
  before and after each test.

Two documented exceptions:

1. Requests that are not well-formed HTTP/1.1 never reach sked's handlers.
   libmicrohttpd (0.9.75, the Debian 12 package) refuses them itself: it
   answers 400/413/414/431 with its own fixed HTML body and closes the
   connection, or, when it cannot find a request line at all (garbage, a
   TLS ClientHello, an unknown transfer coding), closes the connection
   without a word. It offers the application no hook to shape those
   answers, so for this class `assert_refused` accepts "a 4xx (any body)
   plus close" or "closed without an answer"; it still rejects a 2xx, any
   5xx but the one below, a kept-alive connection and a second answer.
   A request line naming a well-formed but unsupported HTTP version
   ("HTTP/2.0") may get 505, the status RFC 9110 §15.6.6 prescribes for
   exactly that case; a malformed version must get a 4xx. Lines that begin
   with a NUL byte read as empty lines to libmicrohttpd's C-string parser,
   and RFC 9112 §2.2 lets a server skip empty lines before a request line,
   so those may get no answer at all (the connection stays idle until the
   server's idle timeout).
2. SQL metacharacters and traversal strings in free-text fields (name,
   argv, env values, cwd, queue, constraint values, tags) and in list
   filters are legitimate data: `O'Brien` is a valid job name. There the
   correct behaviour is to store and return the value verbatim (or reject
   the field with a 400 that names it, where the field has a charset),
   and a filter must match only the rows holding exactly that value;
   `test_sql_metachars_are_data` asserts that instead of a 4xx.

Standard library only; reuses skedtest's harness.
"""

import difflib
import json
import os
import random
import re
import select
import socket
import sqlite3
import threading
import time
import unittest
import urllib.parse

from skedtest import SLOW, SkedTestCase, deadline, wait_until

BODY_MAX = 1024 * 1024
DEEP = 10000
SQLI = ["' OR 1=1 --", '"; DROP TABLE jobs; --', "' OR '1'='1", "1; DELETE FROM runs"]
TRAVERSAL = ["../../etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..\\..\\etc\\passwd"]
INJECTED_HEADERS = ("set-cookie", "x-injected", "injected")


def q(s):
    """Percent-encodes every reserved character of s (a str) for one path segment."""
    return urllib.parse.quote(s, safe="").encode()


def b(s):
    return s if isinstance(s, bytes) else s.encode()


def show(data, n=300):
    """A bounded repr of request bytes for failure messages."""
    return repr(data[:n]) + ("... (%d bytes)" % len(data) if len(data) > n else "")


# ---- raw HTTP --------------------------------------------------------------


class Resp:
    """The answers read back from one connection."""

    def __init__(self, raw, closed, idle):
        self.raw = raw
        self.closed = closed  # the server closed (or reset) the connection
        self.idle = idle  # nothing came back before the read deadline
        self.answers = []  # [(status, [(name_lower, value)], body)]
        self.garbage = b""  # bytes after the last whole answer
        rest = raw
        while rest:
            a = parse_one(rest)
            if a is None:
                self.garbage = rest
                break
            self.answers.append(a[0])
            rest = a[1]
        first = self.answers[0] if self.answers else (None, [], b"")
        self.status, self.headers, self.body = first

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None

    def summary(self):
        if self.status is None:
            return "no answer (%s, %d raw bytes %r)" % (
                "closed" if self.closed else "still open", len(self.raw), self.raw[:200])
        return "%d %s%s; %d answer(s); closed=%s" % (
            self.status, self.header("content-type") or "(no content type)",
            " " + repr(self.body[:300]), len(self.answers), self.closed)


def parse_one(buf):
    """Parses one HTTP/1.1 answer off the front of buf: ((status, headers,
    body), rest), or None when buf does not hold a whole answer."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    lines = buf[:i].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None
    status = int(parts[1])
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k.strip().lower(), v.strip()))
    hd = dict(headers)
    rest = buf[i + 4 :]
    if status in (204, 304) or 100 <= status < 200:
        return (status, headers, b""), rest
    if "chunked" in hd.get("transfer-encoding", "").lower():
        body = b""
        while True:
            j = rest.find(b"\r\n")
            if j < 0:
                return None
            try:
                size = int(rest[:j].split(b";")[0], 16)
            except ValueError:
                return None
            if len(rest) < j + 2 + size + 2:
                return None
            body += rest[j + 2 : j + 2 + size]
            rest = rest[j + 2 + size + 2 :]
            if size == 0:
                return (status, headers, body), rest
    if "content-length" in hd:
        n = int(hd["content-length"])
        if len(rest) < n:
            return None
        return (status, headers, rest[:n]), rest[n:]
    return (status, headers, rest), b""  # delimited by close


def exchange(host, port, data, timeout=3.0, linger=0.25, half_close=True):
    """Sends data on a fresh connection (from a thread, so a server that
    answers before reading everything cannot deadlock us), then reads until
    the server closes, or `linger` s after a first whole answer (time for a
    smuggled second answer to show), or `timeout` s. Deadlines scale with
    the harness's SLOW factor."""
    s = socket.create_connection((host, port), timeout=timeout * SLOW)

    def send():
        try:
            s.sendall(data)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # answered and closed before reading it all: the answer is what counts

    t = threading.Thread(target=send, daemon=True)
    t.start()
    buf = b""
    closed = False
    end = deadline(timeout)
    stop_at = None
    try:
        while time.monotonic() < end and (stop_at is None or time.monotonic() < stop_at):
            # select, not a socket timeout: that would also cut the sender's
            # sendall short.
            if not select.select([s], [], [], 0.05)[0]:
                continue
            try:
                d = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            if not d:
                closed = True
                break
            buf += d
            if stop_at is None and parse_one(buf) is not None:
                stop_at = time.monotonic() + linger * SLOW
    finally:
        s.close()
        t.join(5)
    return Resp(buf, closed, idle=not buf and not closed)


def changes(before, after):
    """What differs between two list answers, item by item (by id)."""
    b4 = {i.get("id"): i for i in before.get("items", [])}
    now = {i.get("id"): i for i in after.get("items", [])}
    out = ["%s vanished" % k for k in b4 if k not in now]
    out += ["%s appeared (%s)" % (k, now[k].get("name") or now[k].get("state")) for k in now
            if k not in b4]
    for k in b4:
        if k in now and b4[k] != now[k]:
            keys = sorted(f for f in set(b4[k]) | set(now[k]) if b4[k].get(f) != now[k].get(f))
            out.append("%s changed: %s" % (k, ", ".join(
                "%s %r -> %r" % (f, b4[k].get(f), now[k].get(f)) for f in keys)))
    return "; ".join(out) or "(order or paging)"


# ---- the suite ---------------------------------------------------------------


class TestHostile(SkedTestCase):
    """Each test seeds a store, sends one group of hostile requests and
    checks that every one was refused and nothing changed."""

    def setUp(self):
        super().setUp()
        # A long lease: the seeded claim and worker must not expire (and so
        # change the store) while a test runs.
        self.start_server(lease="1h")
        self.db = os.path.join(self.path("store"), "sked.db")
        self.seed()
        self.before = self.snapshot()

    # ---- seeding and snapshots -------------------------------------------

    def seed(self):
        """A job using every field, a claimed (running) run with its worker,
        and a pending run nobody can claim."""
        self.full = self.create_job({
            "name": "hostile-full", "type": "shell", "command": ["/bin/sh", "-c", "exit 0"],
            "env": {"MODE": "seed"}, "cwd": "/tmp",
            "schedules": [
                {"cron": "0 2 29 2 *", "timezone": "Europe/Berlin"},
                {"every": "15m", "anchor": "2026-01-01T00:00:00Z", "start": "2098-01-01T00:00:00Z",
                 "end": "2099-01-01T00:00:00Z", "jitter": "5s"},
                {"at": "2099-12-24T18:00:00Z"}],
            "priority": 50, "queue": "default", "constraints": {"disk": "ssd"}, "timeout": "30m",
            "retry": {"max_attempts": 4, "initial": "10s", "max": "10m", "multiplier": 2,
                      "jitter": True},
            "overlap": "forbid", "misfire": "catch_up", "catch_up_window": "2h",
            "max_concurrency": 3, "tags": ["reports", "seed"]})
        self.parked = self.create_job({"name": "hostile-parked", "command": ["/bin/true"],
                                       "queue": "parked"})
        w = self.ok("POST", "/v1/workers", {"name": "hostile-w", "host": "localhost", "slots": 1,
                                             "queues": ["default"], "labels": {}}, expect=201)
        self.wid = w["id"]
        # A user and a standalone token, for the identity routes.
        self.user_name = "hostile-u"
        self.ok("POST", "/v1/users", {"name": self.user_name, "password": "hostile-pw-1",
                                      "role": "user"}, expect=201)
        self.tok_id = self.ok("POST", "/v1/tokens", {"name": "hostile-t", "role": "viewer"},
                              expect=201)["id"]
        self.runjob = self.create_job({"name": "hostile-run", "command": ["/bin/true"]})
        box = {}

        def claimed():
            v = self.ok("POST", "/v1/workers/%s/claim" % self.wid, {"max": 1, "wait": "1s"},
                        expect=200)
            box.update(v["runs"][0] if v["runs"] else {})
            return bool(v["runs"])

        wait_until(claimed, 20, msg="the seeded run to be claimed")
        self.assertEqual(box["job_id"], self.runjob["id"])
        self.rid, self.fence, self.attempt = box["run_id"], box["fence"], box["attempt"]
        self.pending = self.wait_runs(self.parked["id"],
                                      lambda rs: rs and rs[0]["state"] == "pending",
                                      msg="the parked run to be pending")[0]
        self.wait_run_state(self.rid, "running")
        # An alert rule, and an alert it opens about the parked queue; its
        # one notice fails at once (no SMTP relay), so nothing moves after.
        self.rule = self.ok("POST", "/v1/alert-rules", HOSTILE_RULE, expect=201)

        def alerted():
            items = self.ok("GET", "/v1/alerts")["items"]
            if not items:
                return None
            a = self.ok("GET", "/v1/alerts/" + items[0]["id"])
            done = a["deliveries"] and all(d["state"] == "failed" for d in a["deliveries"])
            return a if done else None

        self.alert = wait_until(alerted, 20, msg="the seeded alert and its failed notice")
        # A workflow (its tasks in a queue no worker serves) with two runs:
        # one ended (failed: its first task canceled, so the second was
        # skipped), whose skipped task a retry may start over; one going,
        # which a cancel may end.
        self.wf = self.ok("POST", "/v1/workflows", HOSTILE_WF, expect=201)
        runs = [self.ok("POST", "/v1/workflows/%s/trigger" % self.wf["id"], expect=201)
                for _ in range(2)]
        self.wfrun_done, self.wfrun_going = runs[0]["id"], runs[1]["id"]
        self.ok("POST", "/v1/runs/%s/cancel" % runs[0]["tasks"][0]["run_id"], expect=200)
        done = self.ok("GET", "/v1/workflow-runs/" + self.wfrun_done)
        self.assertEqual((done["state"], [t["state"] for t in done["tasks"]]),
                         ("failed", ["canceled", "skipped"]), done)

    def snapshot(self):
        """The store as clients see it and as it sits on disk."""
        snap = {}
        for path in SNAPSHOT_LISTS:
            st, _, v = self.api("GET", path)
            self.assertEqual(st, 200, "%s -> %d %r" % (path, st, v))
            snap[path] = v
        uri = "file:%s?mode=ro" % urllib.parse.quote(self.db)
        conn = sqlite3.connect(uri, uri=True)
        try:
            snap["dump"] = list(conn.iterdump())
        finally:
            conn.close()
        return snap

    def assert_alive(self, group):
        r = self.send("GET", "/healthz", auth=False)
        self.assertEqual(r.status, 200, "after %s, /healthz: %s" % (group, r.summary()))
        self.assertTrue(self.srv.proc.alive(), "the server died during %s" % group)

    def assert_unchanged(self):
        after = self.snapshot()
        for key in SNAPSHOT_LISTS:
            if after[key] != self.before[key]:
                self.fail("GET %s changed: %s" % (key, changes(self.before[key], after[key])))
        if after["dump"] != self.before["dump"]:
            diff = "\n".join(difflib.unified_diff(self.before["dump"], after["dump"], "before",
                                                  "after", lineterm="", n=0))
            self.fail("the database changed:\n" + diff[:6000])

    # ---- requests ----------------------------------------------------------

    def build(self, method, target, body=None, headers=(), auth=True, ctype="application/json",
              host=True, version=b"HTTP/1.1", close=True, length=True):
        """The bytes of one request. headers: (name, value) pairs or raw
        lines (bytes, sent as they are)."""
        out = [b(method) + b" " + b(target) + b" " + version]
        if host:
            out.append(b"Host: 127.0.0.1:%d" % self.srv.port)
        if auth:
            out.append(b"Authorization: Bearer " + self.token.encode())
        if body is not None and ctype is not None:
            out.append(b"Content-Type: " + b(ctype))
        if body is not None and length:
            out.append(b"Content-Length: %d" % len(body))
        if close:
            out.append(b"Connection: close")
        for h in headers:
            out.append(h if isinstance(h, bytes) else b(h[0]) + b": " + b(h[1]))
        return b"\r\n".join(out) + b"\r\n\r\n" + (body or b"")

    def send(self, method, target, body=None, **kw):
        """One request built by build(); body: bytes, or a JSON value."""
        timeout = kw.pop("timeout", 10.0)
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        return exchange(self.srv.host, self.srv.port, self.build(method, target, body, **kw),
                        timeout=timeout)

    def raw(self, data, **kw):
        return exchange(self.srv.host, self.srv.port, data, **kw)

    # ---- verdicts ------------------------------------------------------------

    def assert_problem(self, r, what, status=None, field=None):
        """r is a single 4xx problem+json answer to request `what`."""
        msg = "request %s\n  got: %s" % (what, r.summary())
        self.assertIsNotNone(r.status, msg)
        if status is not None:
            statuses = status if isinstance(status, tuple) else (status,)
            self.assertIn(r.status, statuses, msg)
        self.assertTrue(400 <= r.status <= 499, "expected a 4xx: " + msg)
        ctype = (r.header("content-type") or "").split(";")[0].strip()
        self.assertEqual(ctype, "application/problem+json", msg)
        try:
            doc = json.loads(r.body.decode("utf-8"))  # strict: the body must be UTF-8 JSON
        except ValueError as e:
            self.fail("problem body is not UTF-8 JSON (%s): %s" % (e, msg))
        self.assertIsInstance(doc, dict, msg)
        self.assertEqual(doc.get("status"), r.status, msg)
        self.assertTrue(doc.get("title"), msg)
        if field is not None:
            self.assertEqual(doc.get("field"), field, msg)
        self.assert_clean(r, what)
        return doc

    def assert_clean(self, r, what):
        """No second (smuggled) answer, no trailing garbage, no header a
        client put there."""
        msg = "request %s\n  got: %s" % (what, r.summary())
        self.assertLessEqual(len(r.answers), 1, "a second answer came back: " + msg)
        self.assertEqual(r.garbage, b"", "bytes after the answer: " + msg)
        for k, _ in r.headers:
            self.assertNotIn(k, INJECTED_HEADERS, "an injected response header: " + msg)

    def assert_refused(self, r, what, allow_505=False, allow_idle=False, need_answer=False):
        """A request that is not well-formed HTTP/1.1 (see the module
        docstring, exception 1): a 4xx and close, or a close without a
        word (unless need_answer: the RFC prescribes a 400 and the server
        sees the headers, so it can answer)."""
        msg = "request %s\n  got: %s" % (what, r.summary())
        if r.status is None:
            if allow_idle and r.idle:
                return
            self.assertFalse(need_answer, "no 4xx answer: " + msg)
            self.assertTrue(r.closed, "no answer and the connection stayed open: " + msg)
            self.assertEqual(r.raw, b"", "bytes that are no HTTP answer: " + msg)
            return
        # libmicrohttpd 0.9.75 writes its header block twice when it refuses
        # a bad Content-Length, so bytes may trail its answer; what matters
        # is that every status line in them is a refusal.
        for st in re.findall(rb"HTTP/1\.[01] (\d{3}) ", r.raw):
            ok = 400 <= int(st) <= 499 or (allow_505 and int(st) == 505)
            self.assertTrue(ok, "expected only 4xx answers: " + msg)
        if (r.header("content-type") or "").startswith("application/problem+json"):
            self.assert_problem(r, what, status=r.status)
        for k, _ in r.headers:
            self.assertNotIn(k, INJECTED_HEADERS, "an injected response header: " + msg)
        # Once framing is in doubt the connection must not be reused.
        self.assertTrue(r.closed or (r.header("connection") or "").lower() == "close",
                        "the connection was kept open: " + msg)

    # ---- routes ----------------------------------------------------------------

    def routes(self):
        out = self.cli_ok("routes")
        rs = [tuple(l.split(" ", 1)) for l in out.splitlines() if l.strip()]
        self.assertGreater(len(rs), 10, out)
        return rs

    def ui_version(self):
        """The version under which this server serves the dashboard's files
        (the path index.html names them by), asked once: GET / is public,
        so it counts against this address's rate limit."""
        if getattr(self, "_ui_version", None):
            return self._ui_version
        r = self.send("GET", "/", auth=False)
        m = re.search(rb'/assets/([0-9a-f]+)/app\.js', r.body)
        self.assertTrue(m, "GET / names no /assets/<version>/app.js: " + r.summary())
        self._ui_version = m.group(1).decode()
        return self._ui_version

    def route_request(self, method, pattern, params, shape=None):
        """(target, body, ctype) of a request to the route that would
        succeed with the seeded ids; params overrides path parameters with
        raw (already encoded) bytes; shape, when given, is the path to fill
        in instead of the pattern (the body still is the pattern's)."""
        real = {"{n}": str(self.attempt).encode()}
        if pattern == "/v1/runs/{id}/cancel":
            real["{id}"] = self.pending["id"].encode()  # the running run is for complete
        elif pattern.startswith("/v1/jobs/"):
            real["{id}"] = self.full["id"].encode()
        elif pattern.startswith("/v1/runs/"):
            real["{id}"] = self.rid.encode()
        elif pattern.startswith("/v1/workers/"):
            real["{id}"] = self.wid.encode()
        elif pattern.startswith("/v1/tokens/"):
            real["{id}"] = self.tok_id.encode()
        elif pattern.startswith("/v1/alert-rules/"):
            real["{id}"] = self.rule["id"].encode()
        elif pattern.startswith("/v1/alerts/"):
            real["{id}"] = self.alert["id"].encode()
        elif pattern.startswith("/v1/workflows/"):
            real["{id}"] = self.wf["id"].encode()
        elif pattern == "/v1/workflow-runs/{id}/cancel":
            real["{id}"] = self.wfrun_going.encode()
        elif pattern.startswith("/v1/workflow-runs/"):
            real["{id}"] = self.wfrun_done.encode()
        real["{name}"] = self.user_name.encode()
        real["{task}"] = b"b"  # the skipped task of the ended workflow run
        real["{version}"] = self.ui_version().encode()
        real["{file}"] = b"app.js"
        real.update(params)
        target = (shape or pattern).encode()
        for k, v in real.items():
            target = target.replace(k.encode(), v)
        body, ctype = VALID_BODIES.get((method, pattern), (None, None))
        if callable(body):
            body = body(self)
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        if pattern.endswith("/log") and method == "POST":
            target += b"?fence=%d&seq=0&stream=1" % self.fence
        elif pattern.endswith("/preview") and method == "GET":
            target += b"?n=3"
        return target, body, ctype

    # ---- the groups --------------------------------------------------------

    def test_malformed_and_deeply_nested_json(self):
        # Every route that takes a body is known here (a new one fails
        # this until it is added to VALID_BODIES or BODYLESS_ROUTES).
        for route in self.routes():
            if route[0] in ("POST", "PATCH", "PUT"):
                self.assertTrue(route in VALID_BODIES or route in BODYLESS_ROUTES,
                                "a body route this suite does not know yet: %s %s" % route)
        for method, pattern in JSON_ROUTES:
            target, _, _ = self.route_request(method, pattern, {})
            for label, body in MALFORMED:
                with self.subTest(route=pattern, method=method, body=label):
                    r = self.send(method, target, body)
                    self.assert_problem(r, "%s %s with %s: %s" % (method, pattern, label,
                                                                    show(body)), status=400)
        self.assert_alive("malformed JSON")
        self.assert_unchanged()

    def test_numbers_no_machine_word_holds(self):
        for method, pattern, make, field in NUMBER_SITES:
            target, _, _ = self.route_request(method, pattern, {})
            for lit in HUGE_NUMBERS + (["-0", "0"] if field in ("n",) else []):
                body = json.dumps(make(self)).replace('"@NUM@"', lit).encode()
                with self.subTest(route=pattern, field=field, number=lit):
                    r = self.send(method, target, body)
                    self.assert_problem(r, "%s %s: %s" % (method, pattern, show(body)), status=400)
        j, run = self.full["id"], self.rid
        queries = [("/v1/jobs?limit=%s", "query.limit"), ("/v1/runs?limit=%s", "query.limit"),
                   ("/v1/jobs/" + j + "/preview?n=%s", "query.n"),
                   ("/v1/runs/" + run + "/log?attempt=%s", "query.attempt"),
                   ("/v1/stats/runs?minutes=%s", "query.minutes")]
        values = ["1e400", "18446744073709551616", "9223372036854775808",
                  "-9223372036854775809", "-0", "0", "NaN", "Infinity", "0x10", "1.5", "1e3",
                  "", "%20", "5%00", "5%00junk", "%27%20OR%201%3D1%20--"]
        for path, field in queries:
            for v in values:
                target = path % v
                with self.subTest(query=target):
                    self.assert_problem(self.send("GET", target), "GET " + target, status=400,
                                        field=field)
        for v in ["99999-01-01T00:00:00Z", "-1", "1e400", "2026-13-45T99:99:99Z", "NaN",
                  "2026-01-01T00:00:00Z%00junk", "%27%20OR%201%3D1%20--"]:
            for key in ("since", "until"):
                target = "/v1/runs?%s=%s" % (key, v)
                with self.subTest(query=target):
                    self.assert_problem(self.send("GET", target), "GET " + target, status=400,
                                        field="query." + key)
        self.assert_alive("huge numbers")
        self.assert_unchanged()

    def test_invalid_utf8_and_nul(self):
        for label, raw in BAD_STRINGS:
            for method, pattern, fieldpath in STRING_SITES:
                target, _, _ = self.route_request(method, pattern, {})
                body = _string_doc(STRING_DOCS[(method, pattern)](self), fieldpath)
                body = json.dumps(body).encode().replace(b'"@S@"', raw)
                with self.subTest(string=label, route=pattern, field=fieldpath):
                    r = self.send(method, target, body)
                    self.assert_problem(r, "%s %s with %s in %s: %s"
                                        % (method, pattern, label, fieldpath, show(body)),
                                        status=400)
        # The contract is UTF-8 throughout; a filter value that is not UTF-8
        # cannot name anything and is refused, not silently matched.
        for path, field in (("/v1/jobs?name=%ff%fe", "query.name"),
                            ("/v1/jobs?queue=%c0%af", "query.queue"),
                            ("/v1/jobs?tag=%ed%a0%80", "query.tag"),
                            ("/v1/jobs?cursor=%ff", "query.cursor"),
                            ("/v1/jobs?sort=%ff", "query.sort"),
                            ("/v1/jobs?sort=name&cursor=name.%ff.x", "query.cursor"),
                            ("/v1/runs?job_id=%ff", "query.job_id"),
                            ("/v1/runs?state=%ff", "query.state"),
                            ("/v1/jobs?name=a%00b", "query.name")):
            with self.subTest(query=path):
                self.assert_problem(self.send("GET", path), "GET " + path, status=400, field=field)
        self.assert_alive("invalid UTF-8 and NUL in bodies")
        self.assert_unchanged()

    def test_hostile_ids_in_every_route(self):
        """Traversal, SQL, NUL, encoded slashes and invalid UTF-8 in every
        {id} and {n} of every route; a valid body otherwise, so the path is
        the only thing wrong. The same requests with the real ids succeed
        afterwards (so each refusal was for the path)."""
        # Routes that take a parameter, in CONTROL_ORDER: the delete comes
        # last, so a server that wrongly deletes the seeded job does not hide
        # what the other routes would have done. A route missing there is a
        # new route this suite has not classified yet, and fails the test.
        routes = [r for r in self.routes() if "{" in r[1]]
        for r in routes:
            self.assertIn(r, CONTROL_ORDER, "a route this suite does not know yet")
        routes.sort(key=CONTROL_ORDER.index)
        sent = 0
        for method, pattern in routes:
            for param in ("{id}", "{n}", "{name}", "{task}", "{version}", "{file}"):
                if param not in pattern:
                    continue
                for label, value in self.hostile_params(method, pattern, param):
                    # The "encoded tail" value stands for the rest of the path.
                    shape = pattern.split(param, 1)[0] + param if "tail" in label else None
                    target, body, ctype = self.route_request(method, pattern, {param: value},
                                                             shape)
                    with self.subTest(method=method, route=pattern, param=param, value=label):
                        sent += 1
                        r = self.send(method, target, body, ctype=ctype)
                        self.assert_problem(r, "%s %s (%s = %s)" % (method, show(target), param,
                                                                     label))
        self.assertGreater(sent, 300)
        self.assert_alive("hostile ids")
        self.assert_unchanged()
        # The control: each route with the real ids and the same bodies works.
        for method, pattern in routes:
            target, body, ctype = self.route_request(method, pattern, {})
            r = self.send(method, target, body, ctype=ctype)
            self.assertIn(r.status, (200, 201, 204),
                          "control %s %s: %s" % (method, target, r.summary()))

    def hostile_params(self, method, pattern, param):
        owners = {"/v1/jobs/": self.full["id"], "/v1/runs/": self.rid,
                  "/v1/workers/": self.wid, "/v1/tokens/": self.tok_id,
                  "/v1/users/": self.user_name, "/v1/alert-rules/": self.rule["id"],
                  "/v1/alerts/": self.alert["id"], "/v1/workflows/": self.wf["id"],
                  "/v1/workflow-runs/": self.wfrun_done}
        if param == "{id}" and pattern == "/v1/runs/{id}/cancel":
            r = self.pending["id"]
            generic = HOSTILE_IDS
        elif param == "{id}" and pattern == "/v1/workflow-runs/{id}/cancel":
            r = self.wfrun_going
            generic = HOSTILE_IDS
        elif param == "{task}":
            r = "b"
            generic = HOSTILE_IDS
        elif param == "{version}":
            r = self.ui_version()
            generic = HOSTILE_IDS
        elif param == "{file}":
            r = "app.js"
            generic = HOSTILE_IDS
        elif param in ("{id}", "{name}"):
            r = next(v for k, v in owners.items() if pattern.startswith(k))
            generic = HOSTILE_IDS
        else:
            r = str(self.attempt)
            generic = HOSTILE_NS
        out = list(generic)
        rb = r.encode()
        out += [
            ("real+%00", rb + b"%00"),
            ("real+%00x", rb + b"%00x"),
            ("real+%00' OR 1=1--", rb + b"%00" + q("' OR 1=1--")),
            ("real+' OR 1=1 --", rb + q("' OR 1=1 --")),
            ("real+%20", rb + b"%20"),
            ("%20+real", b"%20" + rb),
            ("real+%2f", rb + b"%2f"),
            ("real+%2f..", rb + b"%2f.."),
            ("real+/", rb + b"/"),
            ("real+%0d%0aX-Injected: 1", rb + b"%0d%0aX-Injected:%201"),
        ]
        # The rest of the route behind the parameter, its slashes encoded:
        # decoded, it is the very route, so a server that routes on the
        # decoded path acts on the real resource.
        tail = pattern.split(param, 1)[1]
        if tail:
            fill = tail.replace("{n}", str(self.attempt))
            out.append(("real+encoded tail", rb + fill.replace("/", "%2f").encode()))
        return out

    def test_sql_and_traversal_in_constrained_fields(self):
        """Fields with a grammar (type, cron, time zone, durations, times,
        enums) refuse SQL and traversal strings with a 400 naming them, in
        a create, a merge-patch and a schedule preview."""
        jid = self.full["id"]
        for fieldpath, make in CONSTRAINED_FIELDS:
            for v in SQLI + TRAVERSAL:
                doc = make(v)
                sites = [("POST", "/v1/jobs", dict(GOOD_JOB, **doc)),
                         ("PATCH", "/v1/jobs/" + jid, doc)]
                if "schedules" in doc:
                    sites.append(("POST", "/v1/schedules/preview",
                                  {"schedules": doc["schedules"], "n": 2}))
                for method, target, body in sites:
                    with self.subTest(field=fieldpath, value=v, method=method, target=target):
                        r = self.send(method, target, body)
                        self.assert_problem(r, "%s %s %s" % (method, target, json.dumps(body)),
                                            status=400, field=fieldpath)
        self.assert_alive("SQL and traversal in constrained fields")
        self.assert_unchanged()

    def test_sql_metachars_are_data(self):
        """Exception 2 of the module docstring: in free-text fields SQL and
        traversal strings are data, stored and returned verbatim, and list
        filters match exactly the rows that hold them; the seeded rows stay
        as they were."""
        created = []
        values = SQLI + TRAVERSAL + ["%' OR name LIKE '%", "*", "_"]
        for i, v in enumerate(values):
            for fieldpath, make in FREE_FIELDS:
                doc = dict(GOOD_JOB, name="data-%d-%s" % (i, fieldpath.replace(".", "-")))
                doc.update(make(v, i))
                with self.subTest(field=fieldpath, value=v):
                    r = self.send("POST", "/v1/jobs", doc)
                    if r.status == 400 and fieldpath in CHARSET_FIELDS:
                        self.assert_problem(r, "POST /v1/jobs %s" % json.dumps(doc), status=400)
                        continue
                    self.assertEqual(r.status, 201, "POST /v1/jobs %s: %s"
                                     % (json.dumps(doc), r.summary()))
                    job = json.loads(r.body)
                    created.append(job)
                    for k in doc:
                        if k == "env":
                            self.assertEqual(job["env"].get("X"), doc["env"]["X"])
                        elif k != "schedules":
                            self.assertEqual(job[k], doc[k], "field %s of %s" % (k, job["id"]))
                    st, _, got = self.api("GET", "/v1/jobs/" + job["id"])
                    self.assertEqual(st, 200)
                    self.assertEqual(got["name"], doc["name"])
        ids = {j["id"] for j in created}
        for key, fn in (("name", lambda j: [j["name"]]), ("queue", lambda j: [j["queue"]]),
                        ("tag", lambda j: j["tags"])):
            for v in values + ["' OR 'x'='x"]:
                want = {j["id"] for j in created if v in fn(j)}
                path = "/v1/jobs?limit=1000&%s=%s" % (key, urllib.parse.quote(v, safe=""))
                with self.subTest(filter=path):
                    st, _, got = self.api("GET", path)
                    self.assertEqual(st, 200, got)
                    self.assertEqual({j["id"] for j in got["items"]}, want, path)
        for v in SQLI:
            path = "/v1/runs?limit=1000&job_id=" + urllib.parse.quote(v, safe="")
            with self.subTest(filter=path):
                st, _, got = self.api("GET", path)
                if st == 200:
                    self.assertEqual(got["items"], [], path)
                else:
                    self.assert_problem(self.send("GET", path), "GET " + path)
        self.assert_alive("SQL metacharacters as data")
        # The store holds the seeded rows exactly as before, plus the new
        # jobs' own rows and nothing else.
        after = self.snapshot()
        self.assertEqual(after["/v1/runs?limit=1000"], self.before["/v1/runs?limit=1000"])
        self.assertEqual(after["/v1/workers"], self.before["/v1/workers"])
        old = [j for j in after["/v1/jobs?limit=1000"]["items"] if j["id"] not in ids]
        self.assertEqual(old, self.before["/v1/jobs?limit=1000"]["items"])
        removed = set(self.before["dump"]) - set(after["dump"])
        self.assertEqual(removed, set(), "rows changed or vanished")
        for line in set(after["dump"]) - set(self.before["dump"]):
            self.assertTrue(any(i in line for i in ids), "an unexpected new row: %s" % line[:300])

    def test_headers_oversized_and_too_many(self):
        doc = json.dumps(dict(GOOD_JOB, name="hdr")).encode()
        cases = [
            ("64 KiB header on /healthz", self.build("GET", "/healthz", auth=False,
                                                     headers=[("X-Big", "a" * 65536)])),
            ("64 KiB header on a create", self.build("POST", "/v1/jobs", doc,
                                                     headers=[("X-Big", "a" * 65536)])),
            ("64 KiB Idempotency-Key", self.build("POST", "/v1/jobs", doc,
                                                  headers=[("Idempotency-Key", "k" * 65536)])),
            ("64 KiB Authorization", self.build("GET", "/v1/jobs", auth=False,
                                                headers=[("Authorization",
                                                          "Bearer " + "t" * 65536)])),
            ("1000 headers on a create", self.build("POST", "/v1/jobs", doc,
                                                    headers=[("X-H%d" % i, "v")
                                                             for i in range(1000)])),
            ("1000 headers of 64 bytes", self.build("GET", "/v1/jobs",
                                                    headers=[("X-H%d" % i, "v" * 64)
                                                             for i in range(1000)])),
            ("70 KiB request target", self.build("GET", "/v1/jobs/" + "a" * 70000)),
            ("10000 query parameters", self.build("GET", "/v1/jobs?" + "&".join(
                "a%d=1" % i for i in range(10000)))),
        ]
        for label, data in cases:
            with self.subTest(label):
                self.assert_refused(self.raw(data), label + ": " + show(data, 120))
        self.assert_alive("oversized headers")
        self.assert_unchanged()

    def test_header_injection(self):
        """CR, LF and NUL inside header values. RFC 9110 §5.5: a recipient
        must reject such a field or replace each of those bytes with SP;
        either way each of these requests is refused (an invalid token or
        version), while a server that cuts the value at the NUL, as a C
        string would, acts on a value nobody sent."""
        tok = self.token.encode()
        jid = self.full["id"]
        ver = str(self.full["version"]).encode()
        patch = b'{"priority": 7}'
        cases = [
            ("NUL in Authorization", self.build("GET", "/v1/jobs", auth=False, headers=[
                b"Authorization: Bearer " + tok + b"\x00junk"])),
            ("bare CR in Authorization", self.build("GET", "/v1/jobs", auth=False, headers=[
                b"Authorization: Bearer " + tok + b"\rX-Injected: 1"])),
            ("NUL in If-Match", self.build("PATCH", "/v1/jobs/" + jid, patch, headers=[
                b"If-Match: " + ver + b"\x00junk"])),
            ("bare CR in If-Match", self.build("PATCH", "/v1/jobs/" + jid, patch, headers=[
                b"If-Match: " + ver + b"\rX-Injected: 1"])),
            ("CR in Content-Type", self.build("PATCH", "/v1/jobs/" + jid, patch, ctype=None,
                                              headers=[b"Content-Type: text/plain\rX: "
                                                       b"application/json"])),
            ("encoded CRLF in the path", self.build(
                "GET", "/v1/jobs/%0d%0aSet-Cookie:%20a=b%0d%0aX-Injected:%201")),
            ("encoded CRLF in a query", self.build(
                "GET", "/v1/jobs?cursor=%0d%0aSet-Cookie:%20a=b&state=%0d%0aX-Injected:%201")),
            # Last: a server that cuts at the NUL deletes the seeded job.
            ("NUL in Authorization of a delete", self.build(
                "DELETE", "/v1/jobs/" + jid, auth=False,
                headers=[b"Authorization: Bearer " + tok + b"\x00junk"])),
        ]
        for label, data in cases:
            with self.subTest(label):
                r = self.raw(data)
                if r.status is not None and (r.header("content-type") or "").startswith(
                        "application/problem+json"):
                    self.assert_problem(r, label + ": " + show(data))
                else:
                    self.assert_refused(r, label + ": " + show(data))
        self.assert_alive("header injection")
        self.assert_unchanged()

    def test_wrong_content_types(self):
        """JSON routes take application/json only; a valid document under
        another type (or none) is refused, so a browser form or a proxy
        guessing types cannot post jobs."""
        for method, pattern in JSON_ROUTES:
            target, body, _ = self.route_request(method, pattern, {})
            for ctype in ("text/plain", "multipart/form-data; boundary=x",
                          "application/x-www-form-urlencoded", "application/xml",
                          "application/octet-stream", "text/json", None):
                with self.subTest(route=pattern, ctype=ctype):
                    data = body
                    if ctype and ctype.startswith("multipart"):
                        data = (b"--x\r\nContent-Disposition: form-data; name=\"doc\"\r\n\r\n"
                                + body + b"\r\n--x--\r\n")
                    r = self.send(method, target, data, ctype=ctype)
                    self.assert_problem(r, "%s %s Content-Type %r: %s"
                                        % (method, pattern, ctype, show(data)),
                                        status=(400, 415))
        self.assert_alive("wrong content types")
        self.assert_unchanged()

    def test_request_smuggling_shapes(self):
        """Framing a front proxy could read differently from sked. Each
        request carries a second, smuggled request (a DELETE of the seeded
        job) where a desynchronised parser would find one; the answer must
        be one 4xx and a closed connection (RFC 9112 §6.1, §6.3), and the
        smuggled DELETE must never run. Obsolete line folding in a framing
        header is refused too: RFC 9112 §5.2 lets a server unfold it
        instead, but a proxy in front may not unfold it the same way, and
        no client of sked folds lines."""
        jid = self.full["id"].encode()
        auth = b"Authorization: Bearer " + self.token.encode()
        smuggled = b"DELETE /v1/jobs/" + jid + b" HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n\r\n"
        preview = b'{"schedules": [{"at": "2099-01-01T00:00:00Z"}], "n": 1}'
        head = (b"POST /v1/schedules/preview HTTP/1.1\r\nHost: x\r\n" + auth +
                b"\r\nContent-Type: application/json\r\n")
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(preview), preview)
        cases = [
            ("Content-Length and chunked", head + b"Content-Length: %d\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n" % len(chunked) + chunked + smuggled, False),
            ("chunked and a short Content-Length", head + b"Transfer-Encoding: chunked\r\n"
             b"Content-Length: 4\r\n\r\n" + chunked + smuggled, False),
            ("two Content-Lengths, short first", head + b"Content-Length: %d\r\n"
             b"Content-Length: %d\r\n\r\n" % (len(preview), len(preview) + len(smuggled))
             + preview + smuggled, False),
            ("two Content-Lengths, long first", head + b"Content-Length: %d\r\n"
             b"Content-Length: %d\r\n\r\n" % (len(preview) + len(smuggled), len(preview))
             + preview + smuggled, False),
            ("a Content-Length list", head + b"Content-Length: %d, %d\r\n\r\n"
             % (len(preview), len(preview) + len(smuggled)) + preview + smuggled, "proto"),
            ("space before the colon of Content-Length", head + b"Content-Length : %d\r\n\r\n"
             % len(preview) + preview + smuggled, False),
            ("space before the colon of Transfer-Encoding", head +
             b"Transfer-Encoding : chunked\r\nContent-Length: %d\r\n\r\n" % len(preview)
             + preview + smuggled, False),
            ("obs-fold Transfer-Encoding", head + b"Content-Length: %d\r\nTransfer-Encoding:"
             b"\r\n chunked\r\n\r\n" % len(preview) + preview + smuggled, False),
            ("obs-fold Content-Length", head + b"Content-Length:\r\n %d\r\n\r\n"
             % len(preview) + preview + smuggled, False),
            # RFC 9112 §6.1: chunked not last in a request's Transfer-Encoding
            # MUST get a 400 and a close; sked sees these headers before any
            # body, so it can always answer.
            ("chunked, identity", head + b"Transfer-Encoding: chunked, identity\r\n\r\n"
             + chunked + smuggled, "answer"),
            ("unknown transfer coding", head + b"Transfer-Encoding: gzip\r\n\r\n"
             + preview + smuggled, "answer"),
            ("xchunked", head + b"Transfer-Encoding: xchunked\r\nContent-Length: %d\r\n\r\n"
             % len(preview) + preview + smuggled, "answer"),
        ]
        for size in (b"zz", b"-1", b"ffffffffffffffffffffffff", b"0x10", b" 2", b"2 2",
                     b"1\x00"):
            cases.append(("chunk size %r" % size, head + b"Transfer-Encoding: chunked\r\n\r\n"
                          + size + b"\r\n{}\r\n0\r\n\r\n" + smuggled, "proto"))
        cases.append(("chunk longer than its size", head + b"Transfer-Encoding: chunked\r\n\r\n"
                      b"2\r\n{}xx\r\n0\r\n\r\n" + smuggled, "proto"))
        # RFC 9112 §3.2: an HTTP/1.1 request with no Host, or two, MUST get 400.
        cases.append(("two Host headers", b"GET /v1/jobs HTTP/1.1\r\nHost: a\r\nHost: b\r\n"
                      + auth + b"\r\n\r\n", False))
        cases.append(("no Host in HTTP/1.1", b"GET /v1/jobs HTTP/1.1\r\n" + auth + b"\r\n\r\n",
                      False))
        for label, data, mode in cases:
            with self.subTest(label):
                r = self.raw(data, linger=0.5)
                what = "%s: %s" % (label, show(data, 400))
                if mode and (r.status is None or not (r.header("content-type") or "")
                             .startswith("application/problem+json")):
                    self.assert_refused(r, what, need_answer=mode == "answer")
                else:
                    self.assert_problem(r, what)
                    self.assertTrue(r.closed or (r.header("connection") or "").lower() == "close",
                                    "the connection was kept open after %s: %s"
                                    % (what, r.summary()))
        self.assert_alive("request smuggling")
        self.assert_unchanged()

    def test_garbage_request_lines(self):
        rnd = random.Random(8)
        jid = self.full["id"].encode()
        auth = b"Authorization: Bearer " + self.token.encode()
        cases = [
            # (label, bytes, kind): "app" = sked answers (problem+json);
            # "proto" = libmicrohttpd refuses; "version" = 505 allowed;
            # "blank" = read as empty lines, may go unanswered.
            ("HTTP/0.9 simple request", b"GET /healthz\r\n", "proto"),
            ("HTTP/0.9 delete", b"DELETE /v1/jobs/" + jid + b"\r\n", "proto"),
            ("a word", b"GARBAGE\r\n\r\n", "proto"),
            # No line end at all: the server is still waiting for the line.
            ("TLS ClientHello", bytes.fromhex("16030100a5010000a10303") + bytes(40), "blank"),
            ("extra token", b"GET /healthz HTTP/1.1 extra\r\n\r\n", "proto"),
            ("version HTTP/1.x", b"GET /healthz HTTP/1.x\r\n\r\n", "proto"),
            ("version HTTPS/1.1", b"GET /healthz HTTPS/1.1\r\n\r\n", "proto"),
            ("version HTTP/11", b"GET /healthz HTTP/11\r\n\r\n", "proto"),
            ("version HTTP/1.1.1", b"GET /healthz HTTP/1.1.1\r\n\r\n", "proto"),
            ("version HTTP/2.0", b"GET /healthz HTTP/2.0\r\n\r\n", "version"),
            ("version HTTP/0.9", b"GET /healthz HTTP/0.9\r\n\r\n", "version"),
            ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "version"),
            ("header without colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
             "proto"),
            # RFC 9112 §5.1: whitespace between a field name and its colon
            # MUST get a 400; an empty name is no field line at all.
            ("empty header name", b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth +
             b"\r\n: v\r\nConnection: close\r\n\r\n", "app"),
            ("space before a colon", b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth +
             b"\r\nX-A : b\r\nConnection: close\r\n\r\n", "app"),
            ("NUL in the method", b"G\x00ET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", "proto"),
            ("NUL before the request line", b"\x00\x01\x02\r\n\r\n", "blank"),
            ("NUL in the target", b"GET /v1/jobs/" + jid + b"\x00x HTTP/1.1\r\nHost: x\r\n" +
             auth + b"\r\nConnection: close\r\n\r\n", "app"),
            ("lowercase method", b"get /healthz HTTP/1.1\r\nHost: x\r\nConnection: close"
             b"\r\n\r\n", "app"),
            ("10,000-byte method", b"A" * 10000 + b" /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
             "proto"),
            ("asterisk form", b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             "app"),
            ("CONNECT", b"CONNECT evil.example:443 HTTP/1.1\r\nHost: x\r\nConnection: close"
             b"\r\n\r\n", "app"),
            ("TRACE", b"TRACE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "app"),
            ("random bytes", bytes(rnd.randrange(1, 256) for _ in range(512)) + b"\r\n\r\n",
             "proto"),
            # Last: a server that cuts the target at the NUL deletes the seeded job.
            ("NUL in a delete target", b"DELETE /v1/jobs/" + jid + b"\x00x HTTP/1.1\r\n"
             b"Host: x\r\n" + auth + b"\r\nConnection: close\r\n\r\n", "app"),
        ]
        for label, data, kind in cases:
            with self.subTest(label):
                r = self.raw(data, timeout=2.0)
                what = "%s: %s" % (label, show(data))
                if kind == "app":
                    self.assert_problem(r, what)
                else:
                    self.assert_refused(r, what, allow_505=kind == "version",
                                        allow_idle=kind == "blank")
        self.assert_alive("garbage request lines")
        self.assert_unchanged()

    def test_slowloris(self):
        """Connections that trickle in a request a byte at a time, or never
        finish their body, hold no thread: while 150 of them are open,
        /healthz and the API answer promptly. The partial creates never
        create anything."""
        doc = json.dumps(dict(GOOD_JOB, name="slow")).encode()
        # Half trickle a request line and headers a byte per round; half
        # send a whole create but its last 20 bytes, and wait.
        trickle = self.build("GET", "/v1/jobs", close=False)[:-2]
        stalled = self.build("POST", "/v1/jobs", doc, close=False)[:-20]
        socks = []
        try:
            for i in range(150):
                s = socket.create_connection((self.srv.host, self.srv.port), timeout=5)
                if i % 2:
                    s.sendall(stalled)
                socks.append((s, i % 2 == 0))
            end = time.monotonic() + 3.0 * SLOW
            pos = 0
            while time.monotonic() < end:
                for s, trickling in socks:
                    if trickling and pos < len(trickle):
                        s.sendall(trickle[pos:pos + 1])
                pos += 1
                t0 = time.monotonic()
                r = self.send("GET", "/healthz", auth=False, timeout=5)
                self.assertEqual(r.status, 200, r.summary())
                st, _, v = self.api("GET", "/v1/jobs?limit=5", timeout=5)
                self.assertEqual(st, 200, v)
                self.assertLess(time.monotonic() - t0, 2.0 * SLOW, "answers slowed to a crawl")
                time.sleep(0.1)
            self.assertGreater(pos, 5, "too few rounds to mean anything")
        finally:
            for s, _ in socks:
                s.close()
        self.assert_alive("slowloris")
        self.assert_unchanged()

    def test_body_limits(self):
        """1 MiB + 1 byte is refused with 413 on every body route, announced
        (refused before the body is read) or chunked; 1 MiB exactly is not."""
        big = b'{"schedules": [{"at": "2099-01-01T00:00:00Z"}], "n": 1}'
        for method, pattern in JSON_ROUTES + [("POST", "/v1/runs/{id}/attempts/{n}/log")]:
            target, _, ctype = self.route_request(method, pattern, {})
            body = big + b" " * (BODY_MAX + 1 - len(big))
            with self.subTest(route=pattern, shape="Content-Length"):
                self.assert_problem(self.send(method, target, body, ctype=ctype or
                                              "application/json"),
                                    "%s %s with %d bytes" % (method, pattern, len(body)),
                                    status=413)
            with self.subTest(route=pattern, shape="announced only"):
                data = self.build(method, target, body, ctype=ctype or "application/json")
                data = data[: len(data) - len(body)]  # the headers, never the body
                r = self.raw(data, timeout=5, half_close=False)
                self.assert_problem(r, "%s %s announcing %d bytes" % (method, pattern, len(body)),
                                    status=413)
            with self.subTest(route=pattern, shape="chunked"):
                chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
                                  for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
                data = self.build(method, target, chunks, length=False,
                                  ctype=ctype or "application/json",
                                  headers=[("Transfer-Encoding", "chunked")])
                self.assert_problem(self.raw(data, timeout=20), "%s %s chunked %d bytes"
                                    % (method, pattern, len(body)), status=413)
        exact = big + b" " * (BODY_MAX - len(big))
        r = self.send("POST", "/v1/schedules/preview", exact)
        self.assertEqual(r.status, 200, "a body of exactly 1 MiB: " + r.summary())
        for label, cl in (("2^64", "18446744073709551616"), ("-1", "-1"), ("1e3", "1e3"),
                          ("+5", "+5"), ("empty", "")):
            with self.subTest(content_length=label):
                data = self.build("POST", "/v1/jobs", b"{}", length=False,
                                  headers=[("Content-Length", cl)])
                self.assert_refused(self.raw(data), "Content-Length: %r" % cl)
        self.assert_alive("body limits")
        self.assert_unchanged()

    def test_oversized_fields(self):
        """Within the 1 MiB body cap, each field has its own bound."""
        cases = [
            ("command", {"command": ["/bin/true"] + ["a"] * 1100}),
            ("command[1]", {"command": ["/bin/echo", "a" * 65537]}),
            ("env", {"env": {"V%d" % i: "x" for i in range(300)}}),
            ("env.A", {"env": {"A": "x" * 65537}}),
            ("tags", {"tags": ["t%d" % i for i in range(100)]}),
            ("tags[0]", {"tags": ["t" * 201]}),
            ("queue", {"queue": "q" * 201}),
            ("schedules", {"schedules": [{"at": "2099-01-01T00:00:00Z"}] * 65}),
            ("schedules[0].cron", {"schedules": [{"cron": "0 " * 600 + "*"}]}),
            ("constraints", {"constraints": {"k%d" % i: "v" for i in range(100)}}),
        ]
        for field, doc in cases:
            body = dict(GOOD_JOB, **doc)
            with self.subTest(field=field):
                r = self.send("POST", "/v1/jobs", body)
                self.assert_problem(r, "POST /v1/jobs with an oversized %s" % field, status=400)
                doc = json.loads(r.body)
                self.assertTrue(str(doc.get("field", "")).startswith(field.split("[")[0]),
                                "field of %s: %r" % (field, doc))
        self.assert_alive("oversized fields")
        self.assert_unchanged()


# ---- tables ------------------------------------------------------------------

GOOD_JOB = {"name": "hostile-good", "command": ["/bin/true"],
            "schedules": [{"at": "2099-01-01T00:00:00Z"}]}


def complete_body(t):
    # With a result and a last checkpoint, so GET /v1/runs/{id}/result has
    # one to answer once the control completes the run.
    return {"fence": t.fence, "outcome": "succeeded", "exit_code": 0, "signal": None,
            "reason": None, "result_json": '{"hostile": "done"}', "checkpoint": "hostile cp"}


# A global rule that opens an alert about the parked queue (one pending run,
# over a depth of 0) and has one channel that fails at once: no relay.
HOSTILE_RULE = {"name": "hostile-rule", "on": ["backlog"], "scope": {"queue": "parked"},
                "backlog_depth": 0, "backlog_for": "1s", "channels": [{"email": "x@example.com"}]}

# The seeded workflow: its tasks wait in a queue no worker serves.
HOSTILE_WF = {"name": "hostile-wf", "max_active_runs": 5,
              "tasks": [{"name": "a", "command": ["/bin/true"], "queue": "wfq"},
                        {"name": "b", "command": ["/bin/true"], "queue": "wfq",
                         "depends_on": ["a"]}]}

# What a test must leave as it found it (besides the database file).
SNAPSHOT_LISTS = ("/v1/jobs?limit=1000", "/v1/runs?limit=1000", "/v1/workers",
                  "/v1/workflows?limit=1000", "/v1/plugins")

# A body each route accepts with the seeded ids; the hostile tests change one
# thing at a time. (method, pattern) -> (body, content type).
VALID_BODIES = {
    ("POST", "/v1/jobs"): (dict(GOOD_JOB, name="hostile-new"), "application/json"),
    ("POST", "/v1/jobs:batch"): ({"jobs": [dict(GOOD_JOB, name="hostile-batch")]},
                                 "application/json"),
    ("PATCH", "/v1/jobs/{id}"): ({"priority": 7}, "application/json"),
    ("POST", "/v1/schedules/preview"): ({"schedules": [{"cron": "0 2 * * *"}], "n": 2},
                                        "application/json"),
    ("POST", "/v1/workers"): ({"name": "hostile-w2", "host": "h", "slots": 1,
                               "queues": ["default"], "labels": {},
                               "plugins": [{"type": "hostile", "version": "1.0.0", "abi": 1,
                                            "schema": {"type": "object"}}]},
                              "application/json"),
    ("POST", "/v1/workers/{id}/heartbeat"): (
        lambda t: {"runs": [{"run_id": t.rid, "fence": t.fence}]}, "application/json"),
    ("POST", "/v1/workers/{id}/claim"): ({"max": 1, "wait": "0s"}, "application/json"),
    ("POST", "/v1/runs/{id}/attempts/{n}/complete"): (complete_body, "application/json"),
    ("POST", "/v1/workers/{id}/complete"): (
        lambda t: {"runs": [dict(complete_body(t), run_id=t.rid, attempt=1)]},
        "application/json"),
    ("POST", "/v1/runs/{id}/attempts/{n}/log"): (b"hostile log line\n",
                                                 "application/octet-stream"),
    ("POST", "/v1/login"): ({"user": "hostile-u", "password": "hostile-pw-1"},
                            "application/json"),
    ("POST", "/v1/users"): ({"name": "hostile-u2", "password": "hostile-pw-2", "role": "viewer"},
                            "application/json"),
    ("PATCH", "/v1/users/{name}"): ({"role": "operator"}, "application/json"),
    ("POST", "/v1/tokens"): ({"name": "hostile-t2", "role": "viewer"}, "application/json"),
    ("POST", "/v1/alert-rules"): (dict(HOSTILE_RULE, name="hostile-rule2"), "application/json"),
    ("PUT", "/v1/alert-rules/{id}"): (dict(HOSTILE_RULE, backlog_for="2s"), "application/json"),
    ("POST", "/v1/workflows"): ({"name": "hostile-wf2", "tasks": [
        {"name": "t", "command": ["/bin/true"], "queue": "wfq"}]}, "application/json"),
    ("PUT", "/v1/workflows/{id}"): (dict(HOSTILE_WF, description="replaced"), "application/json"),
    ("POST", "/v1/workflow-runs/{id}/tasks/{task}/retry"): ({"downstream": True},
                                                            "application/json"),
}

# The write routes that take no body.
BODYLESS_ROUTES = [("POST", "/v1/jobs/{id}/pause"), ("POST", "/v1/jobs/{id}/resume"),
                   ("POST", "/v1/jobs/{id}/trigger"), ("POST", "/v1/runs/{id}/cancel"),
                   ("POST", "/v1/workers/{id}/drain"), ("POST", "/v1/alerts/{id}/ack"),
                   ("POST", "/v1/workflows/{id}/pause"), ("POST", "/v1/workflows/{id}/resume"),
                   ("POST", "/v1/workflows/{id}/trigger"),
                   ("POST", "/v1/workflow-runs/{id}/cancel")]

# The routes that read a JSON body (POST /v1/jobs first: it creates).
JSON_ROUTES = [(m, p) for (m, p), (_, ct) in VALID_BODIES.items() if ct == "application/json"]

# The order in which the control requests of test_hostile_ids_in_every_route
# run, so each finds the state it needs (complete after log, delete last).
CONTROL_ORDER = [
    ("GET", "/assets/{version}/{file}"),
    ("GET", "/v1/jobs/{id}"), ("GET", "/v1/jobs/{id}/preview"), ("GET", "/v1/jobs/{id}/misses"),
    ("PATCH", "/v1/jobs/{id}"),
    ("GET", "/v1/runs/{id}"), ("GET", "/v1/runs/{id}/log"),
    ("POST", "/v1/workers/{id}/heartbeat"), ("POST", "/v1/workers/{id}/claim"),
    ("POST", "/v1/runs/{id}/attempts/{n}/log"), ("POST", "/v1/runs/{id}/attempts/{n}/complete"),
    ("POST", "/v1/workers/{id}/complete"),
    ("GET", "/v1/runs/{id}/result"), ("POST", "/v1/runs/{id}/cancel"), ("POST", "/v1/workers/{id}/drain"),
    ("POST", "/v1/jobs/{id}/pause"), ("POST", "/v1/jobs/{id}/resume"),
    ("POST", "/v1/jobs/{id}/trigger"), ("PATCH", "/v1/users/{name}"),
    ("GET", "/v1/jobs/{id}/explain"), ("GET", "/v1/runs/{id}/explain"),
    ("GET", "/v1/alert-rules/{id}"), ("PUT", "/v1/alert-rules/{id}"), ("GET", "/v1/alerts/{id}"),
    ("POST", "/v1/alerts/{id}/ack"),
    ("GET", "/v1/workflows/{id}"), ("GET", "/v1/workflows/{id}/runs"),
    ("GET", "/v1/workflow-runs/{id}"), ("PUT", "/v1/workflows/{id}"),
    ("POST", "/v1/workflow-runs/{id}/tasks/{task}/retry"),
    ("POST", "/v1/workflow-runs/{id}/cancel"),
    ("POST", "/v1/workflows/{id}/pause"), ("POST", "/v1/workflows/{id}/resume"),
    ("POST", "/v1/workflows/{id}/trigger"), ("DELETE", "/v1/workflows/{id}"),
    ("DELETE", "/v1/alert-rules/{id}"),
    ("DELETE", "/v1/tokens/{id}"), ("DELETE", "/v1/users/{name}"), ("DELETE", "/v1/jobs/{id}"),
]

MALFORMED = [
    ("truncated", b'{"name": "x", "command": ['),
    ("trailing comma", b'{"name": "x",}'),
    ("single quotes", b"{'name': 'x'}"),
    ("unquoted key", b'{name: "x"}'),
    ("trailing garbage", b'{"name": "x"} xyz'),
    ("two documents", b'{"name": "x"}{"name": "y"}'),
    ("comment", b'/* c */ {"name": "x"}'),
    ("bare word", b"nul"),
    ("bad literal", b'{"name": tru}'),
    ("leading zero", b'{"priority": 01}'),
    ("leading dot", b'{"priority": .5}'),
    ("trailing dot", b'{"priority": 1.}'),
    ("plus sign", b'{"priority": +1}'),
    ("hex number", b'{"priority": 0x10}'),
    ("bad escape", b'{"name": "\\x41"}'),
    ("unterminated string", b'{"name": "abc}'),
    ("raw tab in a string", b'{"name": "a\tb"}'),
    ("raw newline in a string", b'{"name": "a\nb"}'),
    ("duplicate keys", b'{"name": "x", "name": "y"}'),
    ("whitespace only", b"   \r\n\t "),
    ("null", b"null"),
    ("a string", b'"job"'),
    ("a number", b"42"),
    ("an array", b"[]"),
    ("NaN literal", b'{"priority": NaN}'),
    ("Infinity literal", b'{"priority": Infinity}'),
    ("10,000 nested arrays", b"[" * DEEP + b"]" * DEEP),
    ("10,000 nested objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP),
    ("10,000 nested arrays in a field", b'{"command": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    ("10,000 nested objects in a field",
     b'{"env": ' + b'{"a":' * DEEP + b'"x"' + b"}" * DEEP + b"}"),
    ("10,000 unclosed arrays", b"[" * DEEP),
    ("2,000 nested objects in a field",
     b'{"env": ' + b'{"a":' * 2000 + b'"x"' + b"}" * 2000 + b"}"),
    ("2,000 nested arrays in a field", b'{"constraints": ' + b"[" * 2000 + b"]" * 2000 + b"}"),
]

HUGE_NUMBERS = ["1e400", "-1e400", "18446744073709551616", "18446744073709551615",
                "9223372036854775808", "-9223372036854775809", "1e-400", "NaN", "Infinity",
                "-Infinity", "-0.0", "99999999999999999999999999999999999999"]

# (method, pattern, body maker with "@NUM@" where the number goes, field)
NUMBER_SITES = [
    ("POST", "/v1/jobs", lambda t: dict(GOOD_JOB, priority="@NUM@"), "priority"),
    ("POST", "/v1/jobs", lambda t: dict(GOOD_JOB, max_concurrency="@NUM@"), "max_concurrency"),
    ("POST", "/v1/jobs", lambda t: dict(GOOD_JOB, retry={"max_attempts": "@NUM@"}),
     "retry.max_attempts"),
    ("POST", "/v1/jobs", lambda t: dict(GOOD_JOB, retry={"max_attempts": 2,
                                                         "multiplier": "@NUM@"}),
     "retry.multiplier"),
    ("PATCH", "/v1/jobs/{id}", lambda t: {"priority": "@NUM@"}, "priority"),
    ("POST", "/v1/schedules/preview",
     lambda t: {"schedules": [{"cron": "0 2 * * *"}], "n": "@NUM@"}, "n"),
    ("POST", "/v1/workers", lambda t: dict(VALID_BODIES[("POST", "/v1/workers")][0],
                                           slots="@NUM@"), "slots"),
    ("POST", "/v1/workers/{id}/claim", lambda t: {"max": "@NUM@", "wait": "0s"}, "max"),
    ("POST", "/v1/workers/{id}/heartbeat",
     lambda t: {"runs": [{"run_id": t.rid, "fence": "@NUM@"}]}, "runs[0].fence"),
    ("POST", "/v1/runs/{id}/attempts/{n}/complete",
     lambda t: dict(complete_body(t), fence="@NUM@"), "fence"),
    ("POST", "/v1/runs/{id}/attempts/{n}/complete",
     lambda t: dict(complete_body(t), exit_code="@NUM@"), "exit_code"),
    ("POST", "/v1/runs/{id}/attempts/{n}/complete",
     lambda t: dict(complete_body(t), signal="@NUM@"), "signal"),
    ("POST", "/v1/workers/{id}/complete",
     lambda t: {"runs": [dict(complete_body(t), run_id=t.rid, attempt=1, fence="@NUM@")]},
     "runs[0].fence"),
    ("POST", "/v1/workers/{id}/complete",
     lambda t: {"runs": [dict(complete_body(t), run_id=t.rid, attempt="@NUM@")]},
     "runs[0].attempt"),
]

# Bytes put (raw, inside the quotes) where a body has "@S@".
BAD_STRINGS = [
    ("invalid byte FF", b'"\xff\xfe"'),
    ("overlong slash", b'"\xc0\xaf"'),
    ("UTF-8 surrogate", b'"\xed\xa0\x80"'),
    ("beyond U+10FFFF", b'"\xf4\x90\x80\x80"'),
    ("truncated sequence", b'"ab\xe2\x82"'),
    ("Latin-1 text", b'"caf\xe9"'),
    ("lone surrogate escape", b'"\\ud800"'),
    ("lone low surrogate escape", b'"\\udc00x"'),
    ("NUL escape", b'"a\\u0000b"'),
    ("raw NUL", b'"a\x00b"'),
]

STRING_DOCS = {
    ("POST", "/v1/jobs"): lambda t: dict(GOOD_JOB),
    ("PATCH", "/v1/jobs/{id}"): lambda t: {},
    ("POST", "/v1/schedules/preview"): lambda t: {"schedules": [{"cron": "0 2 * * *"}], "n": 2},
    ("POST", "/v1/workers"): lambda t: dict(VALID_BODIES[("POST", "/v1/workers")][0]),
    ("POST", "/v1/runs/{id}/attempts/{n}/complete"): complete_body,
    ("POST", "/v1/workers/{id}/heartbeat"): lambda t: {"runs": [{"run_id": t.rid,
                                                               "fence": t.fence}]},
}


# (method, pattern, field path) where a bad string is put; the document of
# STRING_DOCS gets "@S@" at that path.
STRING_SITES = [
    ("POST", "/v1/jobs", "name"), ("POST", "/v1/jobs", "command[0]"),
    ("POST", "/v1/jobs", "command[1]"), ("POST", "/v1/jobs", "env key"),
    ("POST", "/v1/jobs", "env.A"), ("POST", "/v1/jobs", "cwd"),
    ("POST", "/v1/jobs", "queue"), ("POST", "/v1/jobs", "tags[0]"),
    ("POST", "/v1/jobs", "constraints key"), ("POST", "/v1/jobs", "constraints.k"),
    ("POST", "/v1/jobs", "schedules[0].timezone"), ("POST", "/v1/jobs", "unknown key"),
    ("PATCH", "/v1/jobs/{id}", "name"), ("PATCH", "/v1/jobs/{id}", "env.A"),
    ("POST", "/v1/schedules/preview", "schedules[0].cron"),
    ("POST", "/v1/workers", "name"), ("POST", "/v1/workers", "labels.k"),
    ("POST", "/v1/workers", "plugins[0].type"), ("POST", "/v1/workers", "plugins[0].version"),
    ("POST", "/v1/jobs", "config.k"),
    ("POST", "/v1/runs/{id}/attempts/{n}/complete", "reason"),
    ("POST", "/v1/runs/{id}/attempts/{n}/complete", "result_json"),
    ("POST", "/v1/runs/{id}/attempts/{n}/complete", "checkpoint"),
    ("POST", "/v1/workers/{id}/heartbeat", "runs[0].checkpoint"),
]


def _string_doc(base, where):
    d = json.loads(json.dumps(base))
    if where == "name":
        d["name"] = "@S@"
    elif where == "command[0]":
        d["command"] = ["@S@"]
    elif where == "command[1]":
        d["command"] = ["/bin/echo", "@S@"]
    elif where == "env key":
        d["env"] = {"@S@": "x"}
    elif where == "env.A":
        d["env"] = {"A": "@S@"}
    elif where == "cwd":
        d["cwd"] = "@S@"
    elif where == "queue":
        d["queue"] = "@S@"
    elif where == "tags[0]":
        d["tags"] = ["@S@"]
    elif where == "constraints key":
        d["constraints"] = {"@S@": "x"}
    elif where == "constraints.k":
        d["constraints"] = {"k": "@S@"}
    elif where == "schedules[0].timezone":
        d["schedules"] = [{"cron": "0 2 * * *", "timezone": "@S@"}]
    elif where == "schedules[0].cron":
        d["schedules"] = [{"cron": "@S@"}]
    elif where == "unknown key":
        d["@S@"] = 1
    elif where == "labels.k":
        d["labels"] = {"k": "@S@"}
    elif where in ("plugins[0].type", "plugins[0].version"):
        d["plugins"][0][where.split(".")[1]] = "@S@"
    elif where == "config.k":
        d.pop("command", None)
        d["type"] = "hostile"
        d["config"] = {"k": "@S@"}
    elif where in ("reason", "result_json", "checkpoint"):
        d[where] = "@S@"
    elif where == "runs[0].checkpoint":
        d["runs"][0]["checkpoint"] = "@S@"
    else:
        raise KeyError(where)
    return d


# Field sites whose grammar refuses SQL and traversal strings, and a job
# document fragment putting a value there.
CONSTRAINED_FIELDS = [
    ("type", lambda v: {"type": v}),
    ("schedules[0].cron", lambda v: {"schedules": [{"cron": v}]}),
    ("schedules[0].timezone", lambda v: {"schedules": [{"cron": "0 2 * * *", "timezone": v}]}),
    ("schedules[0].every", lambda v: {"schedules": [{"every": v}]}),
    ("schedules[0].anchor", lambda v: {"schedules": [{"every": "1h", "anchor": v}]}),
    ("schedules[0].at", lambda v: {"schedules": [{"at": v}]}),
    ("schedules[0].start", lambda v: {"schedules": [{"every": "1h", "start": v}]}),
    ("schedules[0].end", lambda v: {"schedules": [{"every": "1h", "end": v}]}),
    ("schedules[0].jitter", lambda v: {"schedules": [{"every": "1h", "jitter": v}]}),
    ("timeout", lambda v: {"timeout": v}),
    ("retry.initial", lambda v: {"retry": {"max_attempts": 2, "initial": v}}),
    ("retry.max", lambda v: {"retry": {"max_attempts": 2, "max": v}}),
    ("overlap", lambda v: {"overlap": v}),
    ("misfire", lambda v: {"misfire": v}),
    ("catch_up_window", lambda v: {"misfire": "catch_up", "catch_up_window": v}),
]

# Free-text fields: (field, maker(value, index) -> document fragment).
FREE_FIELDS = [
    ("name", lambda v, i: {"name": v}),
    ("command", lambda v, i: {"command": [v, v]}),
    ("env", lambda v, i: {"env": {"X": v}}),
    ("cwd", lambda v, i: {"cwd": "/" + v}),
    ("queue", lambda v, i: {"queue": v}),
    ("constraints", lambda v, i: {"constraints": {"k": v}}),
    ("tags", lambda v, i: {"tags": [v]}),
]
# Fields that may have a charset of their own (and then refuse with a 400).
CHARSET_FIELDS = ("queue", "tags", "constraints")

HOSTILE_IDS = [
    ("..", b".."), (".", b"."), ("../../etc/passwd", b"../../etc/passwd"),
    ("..%2f..%2fetc%2fpasswd", b"..%2f..%2f..%2fetc%2fpasswd"),
    ("%2e%2e%2f...", b"%2e%2e%2f%2e%2e%2fetc%2fpasswd"), ("%2e%2e", b"%2e%2e"),
    ("double-encoded", b"%252e%252e%252fetc%252fpasswd"),
    ("backslashes", b"..%5c..%5cetc%5cpasswd"),
    ("..;", b"..;"), ("overlong dots", b"%c0%ae%c0%ae%c0%af"),
    ("' OR 1=1 --", q("' OR 1=1 --")), ('"; DROP TABLE jobs; --', q('"; DROP TABLE jobs; --')),
    ("' OR '1'='1", q("' OR '1'='1")), ("1; DELETE FROM runs", q("1; DELETE FROM runs")),
    ("*", b"*"), ("%25", b"%25"), ("lone %", b"%"), ("%zz", b"%zz"), ("job_%25", b"job_%25"),
    ("_", b"_"), ("space", b"%20"), ("CRLF Set-Cookie", b"%0d%0aSet-Cookie:%20x=1"),
    ("%ff%fe", b"%ff%fe"), ("raw FF FE", b"\xff\xfe"), ("e-acute", q("\u00e9")),
    ("8000 bytes", b"a" * 8000), ("%00", b"%00"),
]

HOSTILE_NS = [
    ("0", b"0"), ("-1", b"-1"), ("2^64+1", b"18446744073709551617"),
    ("2^63", b"9223372036854775808"), ("1e0", b"1e0"), ("0x1", b"0x1"), ("NaN", b"NaN"),
    ("1.0", b"1.0"), ("1 OR 1=1", q("1 OR 1=1")), ("1' --", q("1' --")), ("..", b".."),
    ("%2e%2e", b"%2e%2e"), ("%00", b"%00"),
]


if __name__ == "__main__":
    unittest.main()
