"""End-to-end harness for sked: real processes on loopback, driven over HTTP
and the CLI.

Each test case gets its own temp dir. The harness starts `sked server`,
`sked dev` and `sked worker` processes (each in its own process group, port 0,
127.0.0.1 only), reads their machine-readable stdout lines with a deadline,
keeps their stderr in log files under the temp dir (printed when a test
fails), and always ends what it started (by pid) in tearDown and at exit.

Waiting is done only with wait_until(), which polls a real condition with a
hard deadline. Jobs used by the tests are small shell commands that append
stamps to files in the temp dir, so tests assert on real effects. Every job
created through the harness carries E2E_SKED_TMP=<temp dir> in its env, which
lets tearDown find (and end) job processes a broken product left behind.

Standard library only, but for python3-yaml and python3-jsonschema, with
which api() checks every JSON answer against docs/openapi.yaml.
"""

import atexit
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SKED_BIN = os.environ.get("SKED_BIN") or os.path.join(ROOT, "build", "sked")



def _is_sanitized(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# Sanitizer builds are several times slower; every deadline scales with this
# (SKED_E2E_SLOW overrides the guess).
SLOW = float(os.environ.get("SKED_E2E_SLOW") or (3 if _is_sanitized(SKED_BIN) else 1))

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

TERMINAL = ("succeeded", "failed", "canceled", "skipped")

_live = []  # every Proc not yet closed, for the atexit safety net
_live_lock = threading.Lock()


def _atexit_kill():
    with _live_lock:
        procs = list(_live)
    for p in procs:
        p.close()


atexit.register(_atexit_kill)


def deadline(seconds):
    return time.monotonic() + seconds * SLOW


def wait_until(pred, timeout=10.0, interval=0.03, msg=None):
    """Polls pred() every `interval` s until it returns a truthy value, which
    is returned. Fails the test (AssertionError) after `timeout` s (scaled by
    SKED_E2E_SLOW), reporting the last value seen."""
    end = deadline(timeout)
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= end:
            raise AssertionError(
                "timed out after %.1fs waiting for %s (last value: %r)"
                % (timeout * SLOW, msg or getattr(pred, "__name__", "condition"), last)
            )
        time.sleep(interval)


def pid_alive(pid):
    """True if pid names a live (non-zombie) process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True
    # The state follows the parenthesised command name, which may hold spaces.
    state = stat[stat.rfind(")") + 2 :][:1]
    return state not in ("Z", "X", "")


def read_lines(path):
    try:
        with open(path) as f:
            return [l.rstrip("\n") for l in f if l.strip()]
    except FileNotFoundError:
        return []


def parse_time(s):
    """RFC 3339 UTC ('...Z', optional fraction) -> epoch seconds (float)."""
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        raise ValueError("not an RFC 3339 time: %r" % (s,))
    import calendar

    y, mo, d, h, mi, sec = (int(x) for x in m.groups()[:6])
    t = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0))
    if m.group(7):
        t += float(m.group(7))
    tz = m.group(8)
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        t -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return t


def fmt_time(t):
    """epoch seconds -> RFC 3339 UTC with milliseconds."""
    ms = int(round(t * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


class Proc:
    """One sked process we started: own process group, stdout read by a
    thread into a line list, stderr appended to a log file."""

    def __init__(self, name, args, tmp, env=None):
        self.name = name
        self.args = args
        self.log_path = os.path.join(tmp, "%s.stderr.log" % name)
        self.out_path = os.path.join(tmp, "%s.stdout.log" % name)
        self._err = open(self.log_path, "ab")
        self._out = open(self.out_path, "a")
        self.lines = []
        self._cv = threading.Condition()
        self._eof = False
        penv = dict(os.environ)
        for k in ("SKED_SERVER", "SKED_TOKEN", "SKED_TOKEN_FILE"):
            penv.pop(k, None)
        if env:
            penv.update(env)
        self.p = subprocess.Popen(
            [SKED_BIN] + list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._err,
            start_new_session=True,
            env=penv,
            cwd=tmp,
        )
        self.pid = self.p.pid
        with _live_lock:
            _live.append(self)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                self._out.write(line + "\n")
                self._out.flush()
            except ValueError:
                pass
            with self._cv:
                self.lines.append(line)
                self._cv.notify_all()
        with self._cv:
            self._eof = True
            self._cv.notify_all()

    def stderr_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_line(self, prefix, timeout=20.0):
        """Returns the rest of the first stdout line starting with prefix;
        fails if the process exits first or the deadline passes."""
        end = deadline(timeout)
        with self._cv:
            while True:
                for l in self.lines:
                    if l.startswith(prefix):
                        return l[len(prefix) :].strip()
                if self._eof:
                    self.p.wait()
                    raise AssertionError(
                        "%s exited (rc %s) before printing %r; stderr:\n%s"
                        % (self.name, self.p.returncode, prefix, self.stderr_text()[-4000:])
                    )
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "%s did not print %r within %.0fs; stdout so far: %r; stderr:\n%s"
                        % (self.name, prefix, timeout * SLOW, self.lines, self.stderr_text()[-4000:])
                    )
                self._cv.wait(min(left, 0.2))

    def has_line(self, prefix):
        with self._cv:
            return any(l.startswith(prefix) for l in self.lines)

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.p.poll() is None:
            os.kill(self.pid, sig)

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.p.wait()

    def wait_exit(self, timeout=15.0):
        """Waits for exit; returns the exit status, fails on the deadline."""
        try:
            return self.p.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                "%s still running after %.0fs; stderr:\n%s"
                % (self.name, timeout * SLOW, self.stderr_text()[-4000:])
            )

    def stop(self, timeout=15.0):
        """SIGTERM and wait; returns the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def close(self):
        """Ends the process (and anything left in its process group, which we
        created) and releases the files. Idempotent."""
        if self.p.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.p.wait(5 * SLOW)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(5)
        for f in (self.p.stdout, self._err, self._out):
            try:
                f.close()
            except Exception:
                pass
        with _live_lock:
            if self in _live:
                _live.remove(self)


# ---- The OpenAPI contract -------------------------------------------------
#
# Every JSON answer api() receives is checked against docs/openapi.yaml: the
# schema of the operation (path template + method) and status that answered,
# so the spec cannot drift from the server unnoticed. Rules:
# - a documented status: its response; the answer's media type must be one
#   the response lists (a documented response with no content must carry no
#   JSON body);
# - an undocumented status: `default`, else the range (4XX, 5XX), else for
#   4xx/5xx the Problem schema; an undocumented 1xx-3xx is drift and fails;
# - a path or method that matches no operation (hostile requests, 405s):
#   errors are checked against the Problem schema only; a 2xx is drift.
# The document is read and the validators built once per process, with
# python3-yaml and python3-jsonschema (Draft 2020-12, OpenAPI 3.1's dialect).
# Both jsonschema APIs are served: the `referencing` registry (4.18 and later)
# and RefResolver (Debian 12 ships 4.10).

OPENAPI_PATH = os.path.join(ROOT, "docs", "openapi.yaml")
_OPENAPI_BASE = "https://sked.invalid/openapi.yaml"


class Contract:
    """docs/openapi.yaml as a response checker. Use contract() for the shared one."""

    def __init__(self, path=OPENAPI_PATH):
        import yaml  # python3-yaml
        import jsonschema  # python3-jsonschema

        with open(path) as f:
            self.doc = yaml.safe_load(f)
        self._jsonschema = jsonschema
        self._validators = {}
        try:
            from referencing import Registry, Resource
            from referencing.jsonschema import DRAFT202012

            res = Resource.from_contents(self.doc, default_specification=DRAFT202012)
            registry = Registry().with_resource(_OPENAPI_BASE, res)
            jsonschema.Draft202012Validator(True, registry=registry)  # TypeError before 4.18
            self._make = lambda s: jsonschema.Draft202012Validator(s, registry=registry)
        except (ImportError, TypeError):
            def make(s):
                resolver = jsonschema.RefResolver(_OPENAPI_BASE, self.doc,
                                                  store={_OPENAPI_BASE: self.doc})
                return jsonschema.Draft202012Validator(s, resolver=resolver)
            self._make = make
        # Literal templates before templated ones, so /v1/schedules/preview
        # can never be taken for a /v1/.../{id}.
        self.routes = []
        for tmpl in sorted(self.doc["paths"], key=lambda t: (t.count("{"), t)):
            rx = "^" + re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(tmpl)) + "$"
            self.routes.append((re.compile(rx), tmpl))

    def match(self, path):
        """The path template of the request path (query ignored), or None."""
        if not path.startswith("/"):
            return None  # "*" or an absolute URI: a hostile request, no route
        # Not urlsplit: it would read "//x/y" as host x and path /y.
        path = path.split("?", 1)[0].split("#", 1)[0]
        for rx, tmpl in self.routes:
            if rx.match(path):
                return tmpl
        return None

    def _pointer(self, *parts):
        esc = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
        return "#/" + urllib.parse.quote("/".join(esc), safe="/~")

    def _validator(self, pointer):
        v = self._validators.get(pointer)
        if v is None:
            v = self._validators[pointer] = self._make({"$ref": _OPENAPI_BASE + pointer})
        return v

    def _response(self, op_parts, status):
        """(pointer parts of the response object, response object) for status."""
        responses = self.doc["paths"][op_parts[1]][op_parts[2]].get("responses", {})
        for key in (str(status), "default", "%dXX" % (status // 100)):
            if key in responses:
                parts = op_parts + ("responses", key)
                resp = responses[key]
                while "$ref" in resp:  # components/responses/...
                    parts = tuple(resp["$ref"][2:].split("/"))
                    resp = self.doc
                    for p in parts:
                        resp = resp[p]
                return parts, resp
        return None, None

    def check(self, method, path, status, ctype, value):
        """None if the answer fits the contract, else a message saying why not.
        value: the parsed JSON body (callers pass only JSON answers)."""
        tmpl = self.match(path)
        m = method.lower()
        where = "%s %s -> %d" % (method, path, status)
        if tmpl is not None and m in self.doc["paths"][tmpl]:
            where = "%s %s (%s %s) -> %d" % (method, path, method, tmpl, status)
            parts, resp = self._response(("paths", tmpl, m), status)
            if resp is None:
                if status < 400:
                    return "%s: status %d is not in docs/openapi.yaml" % (where, status)
                pointer = "#/components/schemas/Problem"
            else:
                content = resp.get("content") or {}
                media = ctype.split(";")[0].strip().lower()
                if media not in content:
                    return ("%s: answered %s, but docs/openapi.yaml lists %s for this status"
                            % (where, media or "no type", sorted(content) or "no body"))
                pointer = self._pointer(*parts, "content", media, "schema")
        else:
            if status < 400:
                return "%s: no operation in docs/openapi.yaml matches" % where
            pointer = "#/components/schemas/Problem"
        errors = list(self._validator(pointer).iter_errors(value))
        if (not errors and ctype.split(";")[0].strip().lower() == "application/problem+json"
                and isinstance(value, dict) and value.get("status") != status):
            return "%s: a problem whose status is %r" % (where, value.get("status"))
        if not errors:
            return None
        # The deepest errors first: they name the member at fault, where an
        # enclosing allOf or unevaluatedProperties only says "somewhere here".
        errors.sort(key=lambda e: -len(e.absolute_path))
        lines = ["at %s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(the body)",
                                e.message) for e in errors[:3]]
        return ("%s: the answer does not fit docs/openapi.yaml %s:\n  %s\nanswer: %s"
                % (where, urllib.parse.unquote(pointer), "\n  ".join(lines),
                   json.dumps(value)[:2000]))


_contract = None
_contract_lock = threading.Lock()


def contract():
    """The process-wide Contract, read on first use."""
    global _contract
    with _contract_lock:
        if _contract is None:
            _contract = Contract()
        return _contract


class Server:
    """A started `sked server` or `sked dev`: its Proc, URL, token."""

    def __init__(self, proc, url, token, token_file):
        self.proc = proc
        self.url = url
        self.token = token
        self.token_file = token_file
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port


class SkedTestCase(unittest.TestCase):
    """Base class: a temp dir, process management, HTTP and CLI helpers."""

    maxDiff = 4000

    def setUp(self):
        if not os.access(SKED_BIN, os.X_OK):
            self.fail("sked binary not found or not executable: %s (set SKED_BIN)" % SKED_BIN)
        self.tmp = tempfile.mkdtemp(prefix="sked-e2e-%s-" % self._testMethodName[:40])
        self.procs = []
        self.srv = None
        self.token = None
        self.addCleanup(self._cleanup)

    # ---- lifecycle ------------------------------------------------------

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return True
        # Python >= 3.11 records failures straight into the result (and
        # resets outcome.success around each cleanup), so look there.
        result = getattr(outcome, "result", None)
        if result is not None and hasattr(result, "failures"):
            for t, _ in list(result.errors) + list(result.failures):
                if getattr(t, "test_case", t) is self:
                    return True
            return False
        return any(exc for _, exc in getattr(outcome, "errors", []))

    def _cleanup(self):
        failed = self._failed()
        for p in reversed(self.procs):
            p.close()
        leaked = self._end_leaked_jobs()
        if failed or os.environ.get("SKED_E2E_VERBOSE"):
            for p in self.procs:
                text = p.stderr_text()
                sys.stderr.write(
                    "\n----- %s (pid %d, %s) stderr, last 6000 bytes -----\n%s\n"
                    % (p.name, p.pid, " ".join(p.args), text[-6000:])
                )
        if leaked:
            sys.stderr.write("\nwarning: ended leaked job processes %r\n" % leaked)
        # Sanitizer builds report memory errors, undefined behaviour and
        # leaks on stderr: any such report fails the test that caused it.
        reports = []
        for p in self.procs:
            text = p.stderr_text()
            if any(m in text for m in SANITIZER_MARKS):
                reports.append("%s (pid %d):\n%s" % (p.name, p.pid, text[-6000:]))
        if failed and os.environ.get("SKED_E2E_KEEP"):
            sys.stderr.write("kept temp dir %s\n" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if reports:
            raise AssertionError("sanitizer reports:\n" + "\n".join(reports))

    def _end_leaked_jobs(self):
        """Job processes carry E2E_SKED_TMP=<our temp dir>; any still alive
        after every sked process ended were leaked: end them (by pid)."""
        marker = ("E2E_SKED_TMP=" + self.tmp).encode()
        leaked = []
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if marker in env and pid_alive(int(d)):
                try:
                    os.kill(int(d), signal.SIGKILL)
                    leaked.append(int(d))
                except OSError:
                    pass
        return leaked

    def path(self, name):
        return os.path.join(self.tmp, name)

    def start(self, name, args, env=None):
        p = Proc(name, args, self.tmp, env)
        self.procs.append(p)
        return p

    def _server_from(self, proc, token=None, timeout=30.0):
        url = proc.wait_line("listening:", timeout)
        token_file = proc.wait_line("admin-token-file:", timeout)
        if token is None:
            if proc.has_line("admin-token:"):
                token = proc.wait_line("admin-token:", 1)
            else:
                with open(token_file) as f:
                    token = f.read().strip()
        return Server(proc, url, token, token_file)

    def start_server(self, store_dir=None, lease=None, heartbeat=None, name="server", extra=()):
        """Starts `sked server` on 127.0.0.1:0 with a sqlite store in
        store_dir (default: <tmp>/store); makes it the default target of
        api()/cli(). A restart on the same store reuses the token file."""
        store_dir = store_dir or self.path("store")
        os.makedirs(store_dir, exist_ok=True)
        args = ["server", "--listen", "127.0.0.1:0", "--store", "sqlite:%s/sked.db" % store_dir]
        if lease:
            args += ["--lease", lease]
        if heartbeat:
            args += ["--heartbeat", heartbeat]
        args += list(extra)
        proc = self.start(name, args)
        srv = self._server_from(proc)
        self.use(srv)
        return srv

    def start_dev(self, data_dir=None, slots=2, lease=None, heartbeat=None, name="dev",
                  extra=()):
        data_dir = data_dir or self.path("data")
        args = ["dev", "--listen", "127.0.0.1:0", "--data", data_dir, "--slots", str(slots)]
        if lease:
            args += ["--lease", lease]
        if heartbeat:
            args += ["--heartbeat", heartbeat]
        args += list(extra)
        proc = self.start(name, args)
        srv = self._server_from(proc)
        self.use(srv)
        return srv

    def start_worker(self, srv=None, slots=1, name="worker", queues=None, labels=None, extra=()):
        """Starts `sked worker` against srv (extra: more flags); returns
        (proc, worker_id)."""
        srv = srv or self.srv
        args = ["worker", "--server", srv.url, "--token-file", srv.token_file,
                "--slots", str(slots), "--name", name] + list(extra)
        if queues:
            args += ["--queues", queues]
        if labels:
            args += ["--labels", labels]
        if os.geteuid() == 0:
            # A root worker refuses to run jobs as root unless told to; these
            # tests' jobs write into the test's own (root-owned) temp dir.
            args += ["--allow-root"]
        proc = self.start(name, args)
        wid = proc.wait_line("worker: registered as", 30)
        self.assertRegex(wid, r"^wrk_")
        return proc, wid

    def use(self, srv):
        self.srv = srv
        self.token = srv.token

    # ---- HTTP -----------------------------------------------------------

    _DEFAULT = object()

    def api(self, method, path, body=None, headers=None, token=_DEFAULT, raw=None, timeout=20.0,
            srv=None):
        """One HTTP request to the server. body: a JSON value (sent as JSON);
        raw: bytes sent as-is. Returns (status, headers, value) where value
        is the parsed JSON for JSON answers, else the text."""
        srv = srv or self.srv
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout * SLOW)
        h = {}
        tok = self.token if token is self._DEFAULT else token
        if tok:
            h["Authorization"] = "Bearer " + tok
        data = None
        if raw is not None:
            data = raw
            h["Content-Type"] = "application/json"
        elif body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        try:
            try:
                conn.request(method, path, body=data, headers=h)
            except (BrokenPipeError, ConnectionResetError):
                # The server may answer (413) and close before reading a
                # body it refuses; its answer is still there to read.
                if not data or len(data) < 65536:
                    raise
            resp = conn.getresponse()
            payload = resp.read()
            ctype = resp.getheader("Content-Type") or ""
            text = payload.decode("utf-8", "replace")
            value = text
            if "json" in ctype and text.strip():
                try:
                    value = json.loads(text)
                except ValueError:
                    value = text
                    self._contract_fail("%s %s -> %d: a %s answer that is not JSON: %r"
                                        % (method, path, resp.status, ctype, text[:200]))
                else:
                    err = contract().check(method, path, resp.status, ctype, value)
                    if err:
                        self._contract_fail(err)
            return resp.status, resp.headers, value
        finally:
            conn.close()

    def _contract_fail(self, msg):
        """Fails the test for an answer that breaks docs/openapi.yaml. In a
        thread of the test the AssertionError may be lost, so the message is
        also kept and reported by a cleanup."""
        if threading.current_thread() is not threading.main_thread():
            with _contract_lock:
                if not hasattr(self, "_contract_errors"):
                    self._contract_errors = []
                    self.addCleanup(lambda: self.assertEqual(self._contract_errors, [],
                                                             "answers that break the contract"))
                self._contract_errors.append(msg)
        raise AssertionError(msg)

    def ok(self, method, path, body=None, expect=(200, 201, 204), **kw):
        """api() that fails the test unless the status is in expect; returns the value."""
        st, h, v = self.api(method, path, body, **kw)
        if isinstance(expect, int):
            expect = (expect,)
        self.assertIn(st, expect, "%s %s -> %d: %r" % (method, path, st, v))
        return v

    def create_job(self, body, expect=201, headers=None):
        """POST /v1/jobs with the harness marker in env; returns the job."""
        body = dict(body)
        env = dict(body.get("env") or {})
        env["E2E_SKED_TMP"] = self.tmp
        body["env"] = env
        body.setdefault("name", "e2e-%s" % os.urandom(4).hex())
        return self.ok("POST", "/v1/jobs", body, expect=expect, headers=headers)

    def sh_job(self, script, **fields):
        """A shell job document running `script` with /bin/sh -c."""
        doc = {"command": ["/bin/sh", "-c", script]}
        doc.update(fields)
        return doc

    def list_all(self, path, limit=100, max_pages=1000):
        """Follows next_cursor from path; returns every item."""
        items = []
        cursor = None
        for _ in range(max_pages):
            sep = "&" if "?" in path else "?"
            p = "%s%slimit=%d" % (path, sep, limit)
            if cursor:
                p += "&cursor=" + urllib.parse.quote(cursor, safe="")
            v = self.ok("GET", p, expect=200)
            items += v["items"]
            cursor = v.get("next_cursor")
            if not cursor:
                return items
        self.fail("more than %d pages at %s" % (max_pages, path))

    def runs_of(self, job_id):
        return self.list_all("/v1/runs?job_id=" + job_id)

    def misses_of(self, job_id):
        """The job's missed-fire ledger (GET /v1/jobs/{id}/misses), every page."""
        return self.list_all("/v1/jobs/%s/misses" % job_id)

    def runs_with_misses(self, job_id, period_s):
        """The job's runs plus, as skipped pseudo-runs, every fire time of its
        missed-fire ledger, for a job that fires every period_s seconds (each
        entry's count is checked against its first and last)."""
        out = list(self.runs_of(job_id))
        for m in self.misses_of(job_id):
            first, last = parse_time(m["first"]), parse_time(m["last"])
            self.assertEqual(m["count"], round((last - first) / period_s) + 1, m)
            for k in range(m["count"]):
                out.append({"fire_time": fmt_time(first + k * period_s), "state": "skipped",
                            "reason": m["reason"]})
        return out

    def run_get(self, run_id):
        return self.ok("GET", "/v1/runs/" + run_id, expect=200)

    def started_run(self, job_id, lease_s, timeout=15.0):
        """Waits until the job's first run is running with its start
        confirmed, and returns it. A claim leases a run for half the lease,
        unconfirmed; the worker confirms before it starts anything, which
        renews it to a whole lease. A worker killed or frozen before that
        never started the run: it comes back uncharged, and its retry is
        attempt 1 again. So a test that kills a worker "while it runs"
        waits for this, not for state "running" alone."""
        def confirmed():
            runs = self.runs_of(job_id)
            r = runs[0] if runs else None
            if not r or r["state"] != "running" or not r.get("lease_expires_at"):
                return None
            return r if parse_time(r["lease_expires_at"]) - time.time() > 0.6 * lease_s else None
        return wait_until(confirmed, timeout, interval=0.02,
                          msg="the run of %s to start (confirmed)" % job_id)

    def wait_runs(self, job_id, pred, timeout=15.0, msg=None):
        """Waits until pred(runs of job_id) is truthy; returns the runs."""
        box = {}

        def check():
            box["runs"] = self.runs_of(job_id)
            return pred(box["runs"])

        wait_until(check, timeout, interval=0.05, msg=msg or "runs of %s" % job_id)
        return box["runs"]

    def wait_run_terminal(self, job_id, timeout=15.0):
        """Waits for the job's first run to reach a terminal state; returns it (with attempts)."""
        runs = self.wait_runs(
            job_id, lambda rs: rs and all(r["state"] in TERMINAL for r in rs), timeout,
            "a terminal run of %s" % job_id)
        return self.run_get(runs[-1]["id"])

    def wait_run_state(self, run_id, states, timeout=15.0):
        if isinstance(states, str):
            states = (states,)
        return wait_until(
            lambda: (lambda r: r if r["state"] in states else None)(self.run_get(run_id)),
            timeout, interval=0.05, msg="run %s in %s" % (run_id, states))

    def assert_problem(self, resp, status, field=None):
        """Asserts an RFC 9457 problem answer with the status (and field)."""
        st, h, v = resp
        self.assertEqual(st, status, "expected %d problem, got %d: %r" % (status, st, v))
        ctype = (h.get("Content-Type") or "").split(";")[0].strip()
        self.assertEqual(ctype, "application/problem+json", "Content-Type of %r" % (v,))
        self.assertIsInstance(v, dict, v)
        self.assertEqual(v.get("status"), status, v)
        self.assertTrue(v.get("title"), v)
        if field is not None:
            self.assertEqual(v.get("field"), field, v)
        return v

    # ---- CLI ------------------------------------------------------------

    def cli(self, *args, timeout=30.0, env=None, stdin=None):
        """Runs `sked ARGS...` with SKED_SERVER/SKED_TOKEN of the current
        server; returns (rc, stdout, stderr)."""
        e = dict(os.environ)
        e.pop("SKED_TOKEN_FILE", None)
        if self.srv:
            e["SKED_SERVER"] = self.srv.url
            e["SKED_TOKEN"] = self.srv.token
        if env:
            e.update(env)
        try:
            cp = subprocess.run([SKED_BIN] + list(args), capture_output=True, env=e,
                                cwd=self.tmp, timeout=timeout * SLOW, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as ex:
            self.fail("sked %s timed out after %.0fs; stdout %r stderr %r"
                      % (" ".join(args), timeout * SLOW, ex.stdout, ex.stderr))
        err = cp.stderr.decode("utf-8", "replace")
        if any(m in err for m in SANITIZER_MARKS):
            self.fail("sked %s: sanitizer report:\n%s" % (" ".join(args), err[-6000:]))
        return cp.returncode, cp.stdout.decode("utf-8", "replace"), err

    def cli_ok(self, *args, **kw):
        rc, out, err = self.cli(*args, **kw)
        self.assertEqual(rc, 0, "sked %s -> rc %d\nstdout: %s\nstderr: %s" % (" ".join(args), rc, out, err))
        return out

    def cli_json(self, *args, **kw):
        out = self.cli_ok(*args, "-o", "json", **kw)
        try:
            return json.loads(out)
        except ValueError:
            self.fail("sked %s -o json printed no JSON: %r" % (" ".join(args), out))
