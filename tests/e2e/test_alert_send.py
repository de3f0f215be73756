"""The alert channel senders (src/server/alert_send.c) against real
receivers: the webhook receiver of sinks.py (HTTP and HTTPS), and a real SMTP
server, aiosmtpd (plain, STARTTLS required, smtps, AUTH). Each send is one
run of sked-alert-send-helper (tests/unit/alert_send_helper.c), which calls
alert_send() once and prints "ok", "send-error CODE: REASON" or
"init-error: REASON" and nothing else.

What users rely on: a webhook arrives as sent, signed so that the receiver's
own HMAC over "<t>.<body>" matches; a non-2xx answer, a refused connection,
a timeout or an untrusted certificate is a failure with a one-line reason;
Slack gets {"text": ...}; an email arrives with its headers and body intact,
over TLS when the relay offers STARTTLS (verified), with AUTH from a 0600
credentials file; a subject cannot add a header and a recipient cannot add
a recipient; secrets (webhook secret, SMTP password, the webhook URL's path)
appear in no output; and `sked server`/`sked dev` take the relay flags,
refusing a credentials file others can read before touching the store.
"""

import hashlib
import hmac
import json
import os
import socket
import subprocess
import time
import unittest
from email.utils import parsedate_to_datetime

from sinks import SmtpSink, WebhookSink, make_cert, verify_signature
from skedtest import ROOT, SANITIZER_MARKS, SKED_BIN, SLOW, SkedTestCase

HELPER = os.environ.get("SKED_ALERT_SEND_HELPER") or os.path.join(
    ROOT, "build", "sked-alert-send-helper")

SECRET = "whsec-9f8e7d6c5b4a-do-not-print"
PASSWORD = "smtp-pw-Zq81!not-for-logs"
DOC = {"id": "alrt_01", "condition": "failed", "state": "open", "job": {"name": "nightly"},
       "note": "ünïcode \"quoted\"\nline"}


class AlertSendTest(SkedTestCase):

    def setUp(self):
        super().setUp()
        if not os.access(HELPER, os.X_OK):
            self.fail("helper not found: %s (set SKED_ALERT_SEND_HELPER)" % HELPER)

    def send(self, kind, *args, env=None, timeout=60):
        """Runs the helper; returns (exit status, its one line). Fails on
        any sanitizer report or on more output than the one line."""
        penv = dict(os.environ, SKED_LOG="debug")
        penv.update(env or {})
        r = subprocess.run([HELPER, kind] + list(args), capture_output=True, text=True,
                           timeout=timeout * SLOW, env=penv)
        self.assertFalse([m for m in SANITIZER_MARKS if m in r.stderr], r.stderr)
        self.assertEqual(r.stderr, "", "the senders log nothing")
        lines = r.stdout.splitlines()
        self.assertEqual(len(lines), 1, r.stdout)
        return r.returncode, lines[0]

    def sent(self, kind, *args, **kw):
        rc, line = self.send(kind, *args, **kw)
        self.assertEqual((rc, line), (0, "ok"))

    def failed(self, kind, *args, code="EIO", **kw):
        rc, line = self.send(kind, *args, **kw)
        self.assertEqual(rc, 1, line)
        self.assertTrue(line.startswith("send-error %s: " % code), line)
        return line[len("send-error %s: " % code):]

    def sink(self, **kw):
        s = WebhookSink(**kw)
        self.addCleanup(s.close)
        return s

    def smtp(self, name="smtp", **kw):
        s = SmtpSink(self.path(name), **kw)
        self.addCleanup(s.close)
        return s

    def creds(self, user, password, mode=0o600, name="smtp.creds", content=None):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(content if content is not None else "%s:%s\n" % (user, password))
        os.chmod(path, mode)
        return path

    # ---- webhook ----------------------------------------------------------

    def test_webhook_delivered_signed(self):
        hook = self.sink(secret=SECRET)
        body = json.dumps(DOC)
        before = int(time.time())
        self.sent("webhook", "--url", hook.url("/in/sked"), "--secret", SECRET, "--json", body,
                  "--id", "dlv_42")
        after = int(time.time())
        [r] = hook.all()
        self.assertEqual((r.method, r.path), ("POST", "/in/sked"))
        self.assertEqual(r.body, body.encode(), "the body is the document, byte for byte")
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertRegex(r.headers["user-agent"], r"^sked/\S+$")
        self.assertEqual(r.headers["x-sked-delivery"], "dlv_42")
        # The receiver's own computation, independent of sinks.verify_signature.
        t, v1 = (p.split("=", 1)[1] for p in r.headers["x-sked-signature"].split(","))
        self.assertTrue(before <= int(t) <= after, (before, t, after))
        want = hmac.new(SECRET.encode(), t.encode() + b"." + r.body, hashlib.sha256).hexdigest()
        self.assertEqual(v1, want)
        self.assertTrue(r.signature_ok)
        # The documented check refuses a tampered body, another secret, an old stamp.
        sig = r.headers["x-sked-signature"]
        self.assertFalse(verify_signature(SECRET, sig, r.body + b" "))
        self.assertFalse(verify_signature(SECRET + "x", sig, r.body))
        self.assertFalse(verify_signature(SECRET, sig, r.body, now=int(t) + 301))

    def test_documented_receiver_check(self):
        # The verification example of docs/observability.md, run as printed,
        # accepts a real delivery and refuses a tampered one.
        with open(os.path.join(ROOT, "docs", "observability.md")) as f:
            doc = f.read()
        section = doc[doc.index("## Alert channels"):]
        code = section[section.index("```python\n") + 10:]
        code = code[:code.index("```")]
        scope = {}
        exec(compile(code, "docs/observability.md", "exec"), scope)
        check = scope["sked_signature_ok"]
        hook = self.sink(secret=SECRET)
        self.sent("webhook", "--url", hook.url(), "--secret", SECRET, "--json", json.dumps(DOC))
        [r] = hook.all()
        self.assertTrue(check(SECRET, r.headers["x-sked-signature"], r.body))
        self.assertFalse(check(SECRET, r.headers["x-sked-signature"], r.body.replace(b"o", b"0")))
        self.assertFalse(check("another-secret", r.headers["x-sked-signature"], r.body))

    def test_webhook_without_secret_is_unsigned(self):
        hook = self.sink()
        self.sent("webhook", "--url", hook.url(), "--json", "{}")
        [r] = hook.all()
        self.assertNotIn("x-sked-signature", r.headers)
        self.assertNotIn("x-sked-delivery", r.headers)

    def test_non_2xx_is_a_failure_with_the_status(self):
        hook = self.sink(secret=SECRET)
        hook.fail_next(1, 503)
        reason = self.failed("webhook", "--url", hook.url(), "--secret", SECRET, "--json", "{}")
        self.assertEqual(reason, "HTTP 503: ok")
        # Then the receiver is back: the same call is delivered.
        self.sent("webhook", "--url", hook.url(), "--secret", SECRET, "--json", "{}")
        self.assertEqual([r.status for r in hook.all()], [503, 200])
        # A redirect is not followed: a failure, and only one request seen.
        hook.answer(302)
        self.assertEqual(self.failed("webhook", "--url", hook.url(), "--json", "{}"), "HTTP 302: ok")
        self.assertEqual([r.path for r in hook.all()], ["/hook"] * 3)

    def test_refused_connection_then_up_again(self):
        hook = self.sink()
        hook.down()
        reason = self.failed("webhook", "--url", hook.url(), "--json", "{}")
        self.assertIn("port %d" % hook.port, reason)
        self.assertIn("onnect", reason)  # "Failed to connect ... Couldn't connect to server"
        hook.up()
        self.sent("webhook", "--url", hook.url(), "--json", "{}")
        self.assertEqual(len(hook.delivered()), 1)

    def test_timeout_is_bounded(self):
        hook = self.sink()
        hook.hang()
        t0 = time.monotonic()
        reason = self.failed("webhook", "--url", hook.url(), "--json", "{}", "--timeout-ms", "1500")
        took = time.monotonic() - t0
        hook.hang(False)
        self.assertEqual([r.status for r in hook.all()], [0], "it arrived, unanswered")
        self.assertEqual(hook.delivered(), [])
        self.assertIn("timed out", reason)
        self.assertLess(took, 1.5 + 3 * SLOW, "the timeout bounds the call")
        self.assertGreaterEqual(took, 1.4)

    def test_https_is_verified(self):
        cert, key = make_cert(self.tmp, "hook")
        hook = self.sink(secret=SECRET, cert=cert, key=key)
        self.assertTrue(hook.url().startswith("https://"))
        # Not trusted (system CAs): refused before anything is sent.
        reason = self.failed("webhook", "--url", hook.url(), "--secret", SECRET, "--json", "{}")
        self.assertIn("certificate", reason)
        self.assertEqual(hook.all(), [])
        # Trusted through the alert CA file: delivered, signed.
        self.sent("webhook", "--url", hook.url(), "--secret", SECRET, "--json", "{}",
                  "--alert-ca", cert)
        [r] = hook.all()
        self.assertTrue(r.signature_ok)
        # A CA file that holds no certificate is refused up front.
        rc, line = self.send("webhook", "--url", hook.url(), "--json", "{}", "--alert-ca", key)
        self.assertEqual(rc, 3)
        self.assertIn("not a PEM file holding a CERTIFICATE", line)

    def test_secrets_never_in_output(self):
        # A receiver that echoes the request path (a Slack-style secret URL)
        # into its error answer, and one that is down: neither the channel
        # secret nor the URL's path shows in what the sender reports.
        hook = self.sink(secret=SECRET)
        hook.answer(404, echo_path=True)
        path = "/services/T0001/B0002/sEcReTtOkEn"
        reason = self.failed("webhook", "--url", hook.url(path), "--secret", SECRET,
                             "--json", "{}")
        self.assertTrue(reason.startswith("HTTP 404"), reason)
        self.assertEqual(len(hook.all()), 1, "the receiver did get the request")
        self.assertEqual(hook.all()[0].path, path)
        for leak in (SECRET, "sEcReTtOkEn", path):
            self.assertNotIn(leak, reason)
        hook.down()
        reason = self.failed("slack", "--url", hook.url(path), "--text", "x", "--secret", SECRET)
        for leak in (SECRET, "sEcReTtOkEn"):
            self.assertNotIn(leak, reason)

    def test_bad_urls_and_ids_are_refused(self):
        self.assertIn("http:// or https://",
                      self.failed("webhook", "--url", "ftp://127.0.0.1/x", "--json", "{}",
                                  code="EINVAL"))
        self.failed("webhook", "--json", "{}", code="EINVAL")
        hook = self.sink()
        self.assertIn("delivery id", self.failed("webhook", "--url", hook.url(), "--json", "{}",
                                                 "--id", "a\r\nX-Evil: 1", code="EINVAL"))
        self.failed("webhook", "--url", hook.url(), code="EINVAL")  # no body
        self.assertEqual(hook.all(), [], "nothing was sent")

    # ---- slack ------------------------------------------------------------

    def test_slack_gets_text(self):
        hook = self.sink()
        text = 'FAILED nightly "report" ünïcode\nsecond line <@here>'
        self.sent("slack", "--url", hook.url("/services/T/B/x"), "--text", text,
                  "--subject", "ignored")
        [r] = hook.all()
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertEqual(r.json(), {"text": text})
        self.assertNotIn("x-sked-signature", r.headers)
        # Slack's way of refusing says why: its answer's first line.
        hook.answer(400, body=b"invalid_payload\nmore")
        self.assertEqual(self.failed("slack", "--url", hook.url(), "--text", "t"),
                         "HTTP 400: invalid_payload")

    # ---- email ------------------------------------------------------------

    def mail_args(self, relay, to="ops@example.test", subject="[sked] FAILED nightly",
                  text="it failed", sender="sked alerts <sked@example.test>", extra=()):
        return ["--to", to, "--subject", subject, "--text", text, "--smtp-url", relay.url,
                "--smtp-from", sender] + list(extra)

    def test_email_arrives_intact(self):
        relay = self.smtp()
        long_line = "word " * 40
        text = "Run run_01 of nightly failed.\n.\nexit 3 – ünïcode\n%s\ntrailing space " % long_line
        subject = "[sked] FAILED nightly – ünïcode (run run_01)"
        self.sent("email", *self.mail_args(relay, to="a@example.test, b@example.test",
                                           subject=subject, text=text),
                  "--id", "dlv_7")
        [m] = relay.wait_for(1)
        self.assertEqual(m.mail_from, "sked@example.test")
        self.assertEqual(m.rcpt_tos, ["a@example.test", "b@example.test"])
        self.assertFalse(m.tls, "this relay offers no STARTTLS")
        h = m.msg
        self.assertEqual(h["Subject"], subject)
        self.assertEqual(h["From"], "sked alerts <sked@example.test>")
        self.assertEqual([a.addr_spec for a in h["To"].addresses],
                         ["a@example.test", "b@example.test"])
        self.assertEqual(h["Message-ID"], "<sked.dlv_7@example.test>")
        self.assertEqual(h["MIME-Version"], "1.0")
        self.assertEqual(h.get_content_type(), "text/plain")
        self.assertEqual(h.get_content_charset(), "utf-8")
        self.assertLess(abs(parsedate_to_datetime(h["Date"]).timestamp() - time.time()), 120)
        body = h.get_content().replace("\r\n", "\n")
        self.assertEqual(body, text + "\n", "the text, lone dot and all")
        for line in m.raw.split(b"\r\n"):
            self.assertLessEqual(len(line), 78, line)
            self.assertTrue(line.isascii())

    def test_email_without_id_gets_a_fresh_message_id(self):
        relay = self.smtp()
        self.sent("email", *self.mail_args(relay, sender="sked@example.test"))
        self.sent("email", *self.mail_args(relay, sender="sked@example.test"))
        ids = [m.msg["Message-ID"] for m in relay.wait_for(2)]
        self.assertNotEqual(ids[0], ids[1])
        for i in ids:
            self.assertRegex(i, r"^<sked\.[0-9a-f]{32}@example\.test>$")

    def test_relay_down_then_up(self):
        relay = self.smtp()
        self.sent("email", *self.mail_args(relay, subject="first"))
        port, url = relay.port, relay.url
        relay.close()
        self.assertIn("port %d" % port, self.failed("email", *self.mail_args(relay)))
        relay = self.smtp(port=port)  # back, where the sender points
        self.assertEqual(relay.url, url)
        self.sent("email", *self.mail_args(relay, subject="second"))
        self.assertEqual([m.msg["Subject"] for m in relay.wait_for(2)], ["first", "second"])

    def test_starttls_when_offered_and_verified(self):
        relay = self.smtp(tls="starttls")  # STARTTLS required before MAIL
        self.sent("email", *self.mail_args(relay, extra=["--alert-ca", relay.ca_file]))
        [m] = relay.wait_for(1)
        self.assertTrue(m.tls)
        # The relay's certificate is not trusted without the CA: no delivery.
        self.assertIn("certificate", self.failed("email", *self.mail_args(relay)))
        self.assertEqual(len(relay.messages()), 1)

    def test_smtps(self):
        relay = self.smtp(tls="implicit")
        self.assertTrue(relay.url.startswith("smtps://"))
        self.sent("email", *self.mail_args(relay, extra=["--alert-ca", relay.ca_file]))
        [m] = relay.wait_for(1)
        self.assertTrue(m.tls)

    def test_auth_with_credentials_file(self):
        relay = self.smtp(auth=("alerts", PASSWORD))
        good = self.creds("alerts", PASSWORD)
        self.sent("email", *self.mail_args(relay, extra=["--smtp-credentials-file", good]))
        [m] = relay.wait_for(1)
        self.assertEqual(m.login, "alerts")
        # Without AUTH this relay refuses to take mail.
        self.assertNotEqual(self.failed("email", *self.mail_args(relay)), "")
        # A wrong password fails, and neither password is printed.
        bad = self.creds("alerts", PASSWORD + "-wrong", name="bad.creds")
        reason = self.failed("email", *self.mail_args(relay, extra=["--smtp-credentials-file",
                                                                    bad]))
        self.assertIn("authentication failed", reason)
        self.assertNotIn(PASSWORD, reason)
        self.assertEqual(len(relay.messages()), 1)
        self.assertEqual([a["success"] for a in relay.auth_attempts()], [True, False])
        self.assertNotIn(PASSWORD, relay.stderr())

    def test_auth_with_starttls(self):
        relay = self.smtp(auth=("alerts", PASSWORD), tls="starttls")
        good = self.creds("alerts", PASSWORD)
        self.sent("email", *self.mail_args(relay, extra=["--smtp-credentials-file", good,
                                                         "--alert-ca", relay.ca_file]))
        [m] = relay.wait_for(1)
        self.assertEqual((m.login, m.tls), ("alerts", True))

    def test_no_password_in_clear_off_loopback(self):
        addr = non_loopback_ipv4()
        if not addr:
            self.skipTest("no non-loopback IPv4 address on this machine")
        relay = self.smtp(auth=("alerts", PASSWORD), host=addr)  # no STARTTLS on offer
        good = self.creds("alerts", PASSWORD)
        reason = self.failed("email", *self.mail_args(relay, extra=["--smtp-credentials-file",
                                                                    good]))
        self.assertIn("STARTTLS", reason)
        self.assertEqual(relay.auth_attempts(), [], "the password was never sent")
        self.assertEqual(relay.messages(), [])

    def test_credentials_file_rules(self):
        relay_args = ["--to", "a@example.test", "--smtp-url", "smtp://127.0.0.1:9",
                      "--smtp-from", "sked@example.test"]
        cases = [
            (self.creds("alerts", PASSWORD, mode=0o644, name="open"), "chmod 600"),
            (self.creds("alerts", PASSWORD, mode=0o640, name="group"), "chmod 600"),
            (self.creds("", "", name="nocolon", content=PASSWORD + "\n"), "user:password"),
            (self.creds("", "", name="twolines", content="a:%s\nb:c\n" % PASSWORD),
             "user:password"),
            (self.creds("", "", name="nouser", content=":%s" % PASSWORD), "user:password"),
            (self.path("missing"), "No such file"),
        ]
        for path, why in cases:
            rc, line = self.send("email", *relay_args, "--smtp-credentials-file", path)
            self.assertEqual(rc, 3, line)
            self.assertIn(path, line, "the error names the file")
            self.assertIn(why, line)
            self.assertNotIn(PASSWORD, line)
        # 0400 is fine, and no newline at the end is fine.
        ok = self.creds("", "", mode=0o400, name="ro", content="alerts:" + PASSWORD)
        reason = self.failed("email", *relay_args, "--smtp-credentials-file", ok)
        self.assertNotIn(PASSWORD, reason)  # nothing listens on port 9

    def test_relay_settings_are_checked(self):
        for args, why in [
            (["--smtp-from", "sked@example.test"], "need --smtp-url"),
            (["--smtp-url", "http://127.0.0.1:25", "--smtp-from", "s@e.test"], "--smtp-url"),
            (["--smtp-url", "smtp://u:pw@127.0.0.1:25", "--smtp-from", "s@e.test"],
             "must not carry credentials"),
            (["--smtp-url", "smtp://127.0.0.1:25"], "--smtp-from"),
            (["--smtp-url", "smtp://127.0.0.1:25", "--smtp-from", "s@e.test\r\nBcc: x@y.test"],
             "--smtp-from"),
        ]:
            rc, line = self.send("email", "--to", "a@example.test", *args)
            self.assertEqual(rc, 3, (args, line))
            self.assertIn(why, line)
        self.assertIn("no SMTP relay", self.failed("email", "--to", "a@e.test", code="EINVAL"))

    def test_no_header_injection(self):
        relay = self.smtp()
        self.sent("email", *self.mail_args(
            relay, subject="disk full\r\nBcc: victim@evil.test\r\n\r\nfake body"))
        [m] = relay.wait_for(1)
        self.assertEqual(m.rcpt_tos, ["ops@example.test"])
        self.assertIsNone(m.msg["Bcc"])
        self.assertEqual(m.msg["Subject"], "disk full  Bcc: victim@evil.test    fake body")
        self.assertEqual(m.msg.get_content().replace("\r\n", "\n"), "it failed\n")
        # Recipients with line breaks or smuggled commands are refused, not cleaned.
        for to in ("ops@example.test\r\nBcc: victim@evil.test",
                   "ops@example.test>\r\nRCPT TO:<victim@evil.test",
                   "Ops <ops@example.test>", "ops@example.test,", "not-an-address"):
            reason = self.failed("email", *self.mail_args(relay, to=to), code="EINVAL")
            self.assertIn("recipient", reason)
        self.assertEqual(len(relay.messages()), 1)

    # ---- the server's flags -------------------------------------------------

    def run_sked(self, *args, timeout=30):
        return subprocess.run([SKED_BIN] + list(args), capture_output=True, text=True,
                              timeout=timeout * SLOW, cwd=self.tmp)

    def test_server_refuses_an_open_credentials_file(self):
        creds = self.creds("alerts", PASSWORD, mode=0o644)
        store = self.path("store")
        os.makedirs(store)
        r = self.run_sked("server", "--listen", "127.0.0.1:0", "--store",
                          "sqlite:%s/sked.db" % store, "--smtp-url", "smtp://127.0.0.1:25",
                          "--smtp-from", "sked@example.test", "--smtp-credentials-file", creds)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(creds, r.stderr)
        self.assertIn("chmod 600", r.stderr)
        self.assertNotIn(PASSWORD, r.stdout + r.stderr)
        self.assertFalse(os.path.exists(os.path.join(store, "sked.db")),
                         "refused before the store was made")
        r = self.run_sked("dev", "--listen", "127.0.0.1:0", "--data", self.path("data"),
                          "--smtp-from", "sked@example.test")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("need --smtp-url", r.stderr)

    def test_server_and_dev_take_the_relay_flags(self):
        for cmd in ("server", "dev"):
            r = self.run_sked(cmd, "--help")
            for flag in ("--smtp-url", "--smtp-from", "--smtp-credentials-file", "--alert-ca"):
                self.assertIn(flag, r.stdout, (cmd, flag))
        creds = self.creds("alerts", PASSWORD)
        cert, _ = make_cert(self.tmp, "ca")
        flags = ["--smtp-url", "smtp://127.0.0.1:25", "--smtp-from", "sked@example.test",
                 "--smtp-credentials-file", creds, "--alert-ca", cert]
        srv = self.start_server(extra=flags)
        self.ok("GET", "/healthz")
        self.assertEqual(srv.proc.stop(), 0)
        dev = self.start("dev", ["dev", "--listen", "127.0.0.1:0", "--data", self.path("data"),
                                 "--slots", "0"] + flags)
        dev.wait_line("listening:")
        self.assertEqual(dev.stop(), 0)
        for p in (srv.proc, dev):
            self.assertNotIn(PASSWORD, p.stderr_text())


def non_loopback_ipv4():
    """An IPv4 address of this machine that is not 127/8, or None: the
    source address of a route to a TEST-NET address (no packet is sent)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        addr = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if addr.startswith("127.") or addr == "0.0.0.0" else addr


if __name__ == "__main__":
    unittest.main()
