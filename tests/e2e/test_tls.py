"""HTTPS end to end: real certificates made with `openssl` in a temp dir (a
private CA, a server certificate for 127.0.0.1 and localhost signed by it,
and an unrelated CA), a `sked server` / `sked dev` serving them, and real
TLS connections from Python, the CLI and `sked worker`.

What users rely on: with --tls-cert the API answers over HTTPS and only
HTTPS; clients that trust the CA (--ca, SKED_CA) get through, clients that
do not are refused by certificate verification (never silently accepted);
a worker over HTTPS runs a job end to end; `sked dev` with a certificate
runs its local worker over HTTPS too; and a certificate without its key is
refused before a store is created.
"""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest

from skedtest import SLOW, SkedTestCase, wait_until


# A worker running as root refuses to run jobs as root unless told to; the
# suite may run as root in a container.
ROOT_OK = ["--allow-root"] if os.geteuid() == 0 else []


def _openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d):
    """Writes ca.pem, server.pem/server.key (signed by ca, SAN 127.0.0.1 and
    localhost) and other-ca.pem (an unrelated CA) into d."""
    for name in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
                 "-out", name + ".pem", "-days", "2", "-subj", "/CN=sked e2e %s" % name,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                "basicConstraints=CA:FALSE\n"
                "keyUsage=digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)


class TLSTestCase(SkedTestCase):
    """SkedTestCase whose api() speaks HTTPS (trusting self.cafile) to
    https:// servers."""

    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="sked-e2e-pki-")
        make_pki(cls.pki)
        cls.cafile = os.path.join(cls.pki, "ca.pem")
        cls.cert = os.path.join(cls.pki, "server.pem")
        cls.key = os.path.join(cls.pki, "server.key")
        cls.other_ca = os.path.join(cls.pki, "other-ca.pem")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki, ignore_errors=True)

    def tls_args(self):
        return ["--tls-cert", self.cert, "--tls-key", self.key]

    def ctx(self, cafile=None):
        return ssl.create_default_context(cafile=cafile or self.cafile)

    def api(self, method, path, body=None, headers=None, token=SkedTestCase._DEFAULT, raw=None,
            timeout=20.0, srv=None):
        srv = srv or self.srv
        if not srv.url.startswith("https://"):
            return super().api(method, path, body, headers, token, raw, timeout, srv)
        conn = http.client.HTTPSConnection(srv.host, srv.port, timeout=timeout * SLOW,
                                           context=self.ctx())
        h = {}
        tok = self.token if token is self._DEFAULT else token
        if tok:
            h["Authorization"] = "Bearer " + tok
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if headers:
            h.update(headers)
        try:
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            ctype = resp.getheader("Content-Type") or ""
            value = json.loads(text) if "json" in ctype and text.strip() else text
            return resp.status, resp.headers, value
        finally:
            conn.close()

    def start_tls_server(self, extra=()):
        srv = self.start_server(extra=self.tls_args() + list(extra))
        self.assertTrue(srv.url.startswith("https://127.0.0.1:"), srv.url)
        return srv


class TestHTTPS(TLSTestCase):
    def test_api_over_https_with_the_ca(self):
        srv = self.start_tls_server()
        st, _, v = self.api("GET", "/healthz", token=None)
        self.assertEqual((st, v), (200, {"status": "ok"}))
        job = self.create_job(self.sh_job("true", schedules=[{"every": "1h"}]))
        self.assertEqual(self.ok("GET", "/v1/jobs/" + job["id"])["id"], job["id"])
        # The CLI, trusting the CA by flag and by environment.
        out = self.cli_json("jobs", "ls", "--ca", self.cafile)
        self.assertIn(job["id"], [j["id"] for j in out["items"]])
        out = self.cli_json("jobs", "ls", env={"SKED_CA": self.cafile})
        self.assertIn(job["id"], [j["id"] for j in out["items"]])
        # The name in the certificate works as well as the address.
        conn = http.client.HTTPSConnection("localhost", srv.port, timeout=10 * SLOW,
                                           context=self.ctx())
        try:
            conn.request("GET", "/healthz")
            self.assertEqual(conn.getresponse().status, 200)
        finally:
            conn.close()

    def test_untrusted_certificate_is_refused(self):
        srv = self.start_tls_server()
        # Python with the system CAs only, and with an unrelated CA.
        for ctx in (ssl.create_default_context(), self.ctx(self.other_ca)):
            conn = http.client.HTTPSConnection(srv.host, srv.port, timeout=10 * SLOW, context=ctx)
            with self.assertRaises(ssl.SSLCertVerificationError):
                conn.request("GET", "/healthz")
            conn.close()
        # The CLI without --ca: refused, and it says why and what fixes it.
        rc, out, err = self.cli("jobs", "ls")
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("certificate", err)
        self.assertIn("--ca", err)
        rc, out, err = self.cli("jobs", "ls", "--ca", self.other_ca)
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("certificate", err)
        # A CA file that cannot be read is an error, not a fallback.
        rc, out, err = self.cli("jobs", "ls", "--ca", self.path("missing.pem"))
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("missing.pem", err)

    def test_plain_http_is_refused(self):
        srv = self.start_tls_server()
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10 * SLOW)
        try:
            with self.assertRaises((http.client.HTTPException, ConnectionError, OSError)):
                conn.request("GET", "/healthz")
                conn.getresponse().read()
        finally:
            conn.close()
        # Nor does the token travel in the clear by mistake: the CLI fails.
        rc, out, err = self.cli("jobs", "ls", "--server", srv.url.replace("https://", "http://"),
                                "--ca", self.cafile)
        self.assertEqual(rc, 1, (out, err))
        # The server is unharmed.
        self.assertEqual(self.api("GET", "/healthz", token=None)[0], 200)

    def test_worker_over_https_runs_a_job(self):
        srv = self.start_tls_server()
        # Without the CA the worker cannot register: it never trusts blindly.
        bad = self.start("worker-noca", ["worker", "--server", srv.url, "--token-file",
                                          srv.token_file, "--name", "noca"] + ROOT_OK)
        wait_until(lambda: "certificate" in bad.stderr_text(), 30,
                   msg="the worker without a CA reporting the certificate problem")
        self.assertFalse(bad.has_line("worker: registered as"))
        bad.close()
        self.assertEqual(self.ok("GET", "/v1/workers")["items"], [])

        w = self.start("worker", ["worker", "--server", srv.url, "--token-file", srv.token_file,
                                  "--slots", "1", "--name", "tls", "--ca", self.cafile] + ROOT_OK)
        self.assertRegex(w.wait_line("worker: registered as", 30), r"^wrk_")
        stamp = self.path("stamp")
        job = self.create_job(self.sh_job("echo over-tls | tee -a %s" % stamp))
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "succeeded", run)
        with open(stamp) as f:
            self.assertEqual(f.read(), "over-tls\n")
        # Its output travelled back over HTTPS too.
        rc, out, err = self.cli("runs", "log", run["id"], "--ca", self.cafile)
        self.assertEqual(rc, 0, err)
        self.assertIn("over-tls", out)
        self.assertEqual(w.stop(), 0)

    def test_dev_over_https_runs_jobs_locally(self):
        data = self.path("data")
        proc = self.start("dev", ["dev", "--listen", "127.0.0.1:0", "--data", data, "--slots", "1"]
                          + self.tls_args())
        srv = self._server_from(proc)
        self.use(srv)
        self.assertTrue(srv.url.startswith("https://"), srv.url)
        stamp = self.path("stamp")
        job = self.create_job(self.sh_job("echo dev-tls >> %s" % stamp))
        run = self.wait_run_terminal(job["id"], timeout=30)
        self.assertEqual(run["state"], "succeeded", run)
        with open(stamp) as f:
            self.assertEqual(f.read(), "dev-tls\n")

    def test_certificate_without_key_is_refused_before_the_store(self):
        store = self.path("store")
        os.makedirs(store)
        p = self.start("server", ["server", "--listen", "127.0.0.1:0", "--store",
                                  "sqlite:%s/sked.db" % store, "--tls-cert", self.cert])
        self.assertNotEqual(p.wait_exit(), 0)
        self.assertIn("--tls-key", p.stderr_text())
        # A key in place of the certificate is named as such.
        p = self.start("server2", ["server", "--listen", "127.0.0.1:0", "--store",
                                   "sqlite:%s/sked.db" % store, "--tls-cert", self.key,
                                   "--tls-key", self.key])
        self.assertNotEqual(p.wait_exit(), 0)
        self.assertIn("CERTIFICATE", p.stderr_text())
        self.assertFalse(os.path.exists(os.path.join(store, "sked.db")))


if __name__ == "__main__":
    unittest.main()
