"""Receivers for sked's alert channels, for tests: real sockets on 127.0.0.1.

WebhookSink -- an HTTP(S) receiver (http.server in a thread of the test's
    own process, port 0). Records every request it is sent (method, path,
    headers, body, the status it answered, whether the X-Sked-Signature
    checks out with its secret), and can be told to answer with another
    status for a while (fail_next, answer), to hold requests unanswered
    (hang), or to be down (down/up: the port is closed, then bound again,
    so a sender sees "connection refused" in between).

SmtpSink -- a real SMTP server: Debian's python3-aiosmtpd, run as a child
    process (the interpreter that has it, see aiosmtpd_python()) on a free
    port. Each message it accepts is saved to its directory as NNNN.eml
    (the bytes as received) and NNNN.json (envelope sender, recipients,
    whether the session was under TLS, the login used). Optionally it wants
    AUTH (user, password; over plain text too, auth_require_tls=False), and
    offers STARTTLS (required: require_starttls=True) or speaks TLS from the
    first byte (smtps), with a throwaway self-signed certificate that
    make_cert() writes and the sender must be told to trust (ca_file).

verify_signature() is the receiver's check of X-Sked-Signature, the one
docs/observability.md ("Alert channels") shows.

Standard library only in the test's process. Every wait is bounded: the
wait_for() methods poll a real condition until a deadline, scaled by
SKED_E2E_SLOW like the rest of the harness.

Run as `python3 sinks.py smtp --dir DIR ...` it is the SMTP child itself
(see _smtp_main); it prints "listening: PORT" once bound and exits when its
stdin closes, so it never outlives the test that started it.
"""

import email
import email.policy
import glob
import hashlib
import hmac
import http.server
import json
import os
import select
import shutil
import ssl
import subprocess
import sys
import threading
import time

SLOW = float(os.environ.get("SKED_E2E_SLOW") or 1)


def verify_signature(secret, header, body, now=None, tolerance=300):
    """True if header (the X-Sked-Signature value, "t=<unix s>,v1=<hex>")
    signs body (bytes) with secret, and t is within tolerance seconds of
    now: the check a receiver makes before trusting a sked webhook."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        t = int(fields["t"])
        given = fields["v1"]
    except (AttributeError, KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def _wait(pred, timeout, what):
    end = time.monotonic() + timeout * SLOW
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout * SLOW, what))
        time.sleep(0.02)


def make_cert(directory, name="sink"):
    """Writes NAME.pem and NAME.key into directory: a self-signed EC
    certificate for 127.0.0.1 and localhost that is its own CA, so a client
    given NAME.pem as its CA file trusts it (and nothing else). Returns
    (cert_path, key_path)."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True, capture_output=True, timeout=60)
    return cert, key


# ---- webhook -----------------------------------------------------------------


class Request:
    """One request a WebhookSink received."""

    def __init__(self, method, path, headers, body, status, signature_ok):
        self.method = method
        self.path = path
        self.headers = headers  # {lower-case name: value}
        self.body = body  # bytes
        self.status = status  # what the sink answered; 0: no answer (hang)
        self.signature_ok = signature_ok  # None when the sink has no secret
        self.time = time.time()

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%s %s -> %d, %d bytes>" % (self.method, self.path, self.status, len(self.body))


class WebhookSink:
    """An HTTP receiver on 127.0.0.1:<free port>; https when given a
    certificate (cert, key). Use as a context manager or call close()."""

    def __init__(self, secret=None, cert=None, key=None):
        self.secret = secret
        self.requests = []
        self._lock = threading.Lock()
        self._plan = []  # statuses for the next requests, first first
        self._status = 200  # then this
        self._answer_body = b"ok"
        self._echo_path = False
        self._release = threading.Event()
        self._release.set()
        self._tls = None
        if cert:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(cert, key)
        self._httpd = None
        self._thread = None
        self.port = 0
        self.up()

    def url(self, path="/hook"):
        return "%s://127.0.0.1:%d%s" % ("https" if self._tls else "http", self.port, path)

    # -- behaviour

    def answer(self, status, body=b"ok", echo_path=False):
        """Answers every request from now on with status (and body, or the
        request's path when echo_path)."""
        with self._lock:
            self._status = status
            self._answer_body = body
            self._echo_path = echo_path

    def fail_next(self, n, status=503):
        """Answers the next n requests with status, then as before."""
        with self._lock:
            self._plan.extend([status] * n)

    def hang(self, on=True):
        """Takes every request from now on but never answers it: the
        connection is held until hang(False) (or 60 s), then closed. Such a
        request is recorded with status 0 (not delivered), so a sender's
        timeout can be seen."""
        if on:
            self._release.clear()
        else:
            self._release.set()

    def down(self):
        """Closes the listening socket: connections are refused until up()."""
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(10)
            self._httpd = None

    def up(self):
        """Listens again, on the same port as before (a free one at first)."""
        if self._httpd:
            return
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                hung = not sink._release.is_set()
                with sink._lock:
                    status = 0 if hung else sink._plan.pop(0) if sink._plan else sink._status
                    answer = self.path.encode() if sink._echo_path else sink._answer_body
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    ok = None
                    if sink.secret is not None:
                        ok = verify_signature(sink.secret, headers.get("x-sked-signature", ""), body)
                    sink.requests.append(Request(self.command, self.path, headers, body, status, ok))
                if hung:
                    sink._release.wait(60)
                    self.close_connection = True
                    return
                try:
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", "/elsewhere")
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up; it will not count this as delivered

            do_POST = do_PUT = do_GET = _handle

            def log_message(self, fmt, *args):
                pass

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        if self._tls:
            httpd.socket = self._tls.wrap_socket(httpd.socket, server_side=True)
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def close(self):
        self._release.set()
        self.down()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- what arrived

    def all(self):
        with self._lock:
            return list(self.requests)

    def delivered(self):
        """The requests answered with a 2xx: what a sender counts as sent."""
        return [r for r in self.all() if 200 <= r.status < 300]

    def wait_for(self, n, timeout=10.0, delivered=True):
        """Waits until at least n requests (2xx-answered ones when
        delivered) arrived; returns them all."""
        get = self.delivered if delivered else self.all
        _wait(lambda: len(get()) >= n, timeout, "%d webhook requests" % n)
        return get()


# ---- SMTP --------------------------------------------------------------------

_aiosmtpd_python = None


def aiosmtpd_python():
    """An interpreter that can import aiosmtpd: $SKED_AIOSMTPD_PYTHON, this
    one, or Debian's /usr/bin/python3 (where python3-aiosmtpd installs it;
    `python3` may be another interpreter, e.g. pyenv's, without Debian's
    dist-packages)."""
    global _aiosmtpd_python
    if _aiosmtpd_python:
        return _aiosmtpd_python
    tried = []
    for cand in (os.environ.get("SKED_AIOSMTPD_PYTHON"), sys.executable, "/usr/bin/python3",
                 shutil.which("python3")):
        if not cand or cand in tried or not os.access(cand, os.X_OK):
            continue
        tried.append(cand)
        r = subprocess.run([cand, "-c", "import aiosmtpd"], capture_output=True, timeout=60)
        if r.returncode == 0:
            _aiosmtpd_python = cand
            return cand
    raise RuntimeError("no Python with aiosmtpd among %r: install Debian's python3-aiosmtpd "
                       "(scripts/deps.sh) or set SKED_AIOSMTPD_PYTHON" % tried)


class Mail:
    """One message an SmtpSink accepted."""

    def __init__(self, raw, meta):
        self.raw = raw  # bytes as received
        self.mail_from = meta["mail_from"]
        self.rcpt_tos = meta["rcpt_tos"]
        self.tls = meta["tls"]  # the session was under TLS (STARTTLS or smtps)
        self.login = meta["login"]  # the AUTH login, or None
        self.msg = email.message_from_bytes(raw, policy=email.policy.default)

    def __repr__(self):
        return "<Mail from %s to %r: %r>" % (self.mail_from, self.rcpt_tos, self.msg["Subject"])


class SmtpSink:
    """A real SMTP server (aiosmtpd) in a child process on 127.0.0.1.

    directory: where messages go (created). auth: (user, password) to
    require AUTH. tls: None, "starttls" (offered and required before MAIL)
    or "implicit" (smtps). host: the address to bind (127.0.0.1). port: 0
    for a free one, or the port of a sink closed before, to bring a relay
    "back up" where a sender already points."""

    def __init__(self, directory, auth=None, tls=None, host="127.0.0.1", port=0):
        self.dir = directory
        self.host = host
        self.tls = tls
        os.makedirs(directory, exist_ok=True)
        self.ca_file = None
        args = [aiosmtpd_python(), os.path.abspath(__file__), "smtp", "--dir", directory,
                "--host", host, "--port", str(port)]
        env = dict(os.environ)
        if auth:
            env["SINK_SMTP_AUTH"] = "%s:%s" % auth
        if tls:
            cert, key = (os.path.join(directory, "smtp-sink" + e) for e in (".pem", ".key"))
            if not os.path.exists(cert):  # a sink restarted here keeps its certificate
                cert, key = make_cert(directory, "smtp-sink")
            self.ca_file = cert
            args += ["--tls", tls, "--cert", cert, "--key", key]
        self._log = open(os.path.join(directory, "sink.stderr.log"), "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, env=env)
        self.port = self._read_port()

    def _read_port(self):
        end = time.monotonic() + 30 * SLOW
        line = b""
        while not line.endswith(b"\n"):
            left = end - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.close()
                raise AssertionError("the SMTP sink did not start; its stderr:\n" + self.stderr())
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.2))
            if ready:
                c = os.read(self.proc.stdout.fileno(), 1)
                if not c:
                    continue
                line += c
        return int(line.decode().split(":", 1)[1])

    @property
    def url(self):
        scheme = "smtps" if self.tls == "implicit" else "smtp"
        return "%s://%s:%d" % (scheme, self.host, self.port)

    def stderr(self):
        with open(os.path.join(self.dir, "sink.stderr.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def messages(self):
        out = []
        for meta_path in sorted(glob.glob(os.path.join(self.dir, "[0-9]*.json"))):
            with open(meta_path) as f:
                meta = json.load(f)
            with open(meta_path[:-5] + ".eml", "rb") as f:
                out.append(Mail(f.read(), meta))
        return out

    def auth_attempts(self):
        """[{"mechanism", "login", "success"}] in order (never the password)."""
        try:
            with open(os.path.join(self.dir, "auth.jsonl")) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def wait_for(self, n, timeout=10.0):
        _wait(lambda: len(self.messages()) >= n, timeout, "%d messages" % n)
        return self.messages()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the child exits on EOF
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc.stdout.close()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _smtp_main(argv):
    """The SMTP child: aiosmtpd on --host:0, messages into --dir."""
    import argparse
    import asyncio
    import itertools

    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

    ap = argparse.ArgumentParser(prog="sinks.py smtp")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", choices=("starttls", "implicit"))
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args(argv)
    creds = os.environ.get("SINK_SMTP_AUTH")
    user, password = creds.split(":", 1) if creds else (None, None)
    # After what a sink before us in this directory saved.
    saved = [int(os.path.basename(p)[:4]) for p in glob.glob(os.path.join(args.dir, "[0-9]*.json"))]
    counter = itertools.count(max(saved, default=0) + 1)

    def write(path, data):
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            n = next(counter)
            base = os.path.join(args.dir, "%04d" % n)
            login = session.auth_data.login.decode() if session.authenticated else None
            meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                    "tls": server.transport.get_extra_info("ssl_object") is not None,
                    "login": login}
            write(base + ".eml", envelope.original_content)
            write(base + ".json", json.dumps(meta).encode())  # last: the message is complete
            return "250 Message accepted"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
              and auth_data.password.decode() == password)
        login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None
        with open(os.path.join(args.dir, "auth.jsonl"), "a") as f:
            f.write(json.dumps({"mechanism": mechanism, "login": login, "success": ok}) + "\n")
        # handled=False: aiosmtpd answers a failure with 535 itself.
        return AuthResult(success=ok, handled=ok, auth_data=auth_data)

    ctx = None
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        kw = {}
        if user is not None:
            kw = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)
        if args.tls == "starttls":
            kw.update(tls_context=ctx, require_starttls=True)
        return SMTP(Handler(), hostname="sink.test", loop=loop, **kw)

    server = loop.run_until_complete(
        loop.create_server(factory, args.host, args.port, reuse_address=True,
                           ssl=ctx if args.tls == "implicit" else None))
    print("listening: %d" % server.sockets[0].getsockname()[1], flush=True)

    def lifeline():
        sys.stdin.buffer.read()  # EOF: the test process closed us or died
        loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=lifeline, daemon=True).start()
    loop.run_forever()
    server.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "smtp":
        _smtp_main(sys.argv[2:])
    else:
        sys.exit("usage: sinks.py smtp --dir DIR [--host H] [--port P] [--tls starttls|implicit "
                 "--cert PEM --key KEY]")
