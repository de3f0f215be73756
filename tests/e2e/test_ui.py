"""The dashboard's files as the server serves them (issue 12, points 1-2):
GET / and every file it names, found by walking index.html and the ES
modules' imports, so a file the build forgot to embed fails here; the
Content-Security-Policy that keeps a hostile job name from running script;
caching by content hash (a page of another build gets 404, never a mix);
and GET /v1/whoami, which the page asks before it offers anything. The
browser test (tests/browser) drives the pages themselves."""

import re
import unittest

from skedtest import SkedTestCase


class TestUi(SkedTestCase):
    def setUp(self):
        super().setUp()
        self.start_server()

    def get(self, path, headers=None, token=None):
        return self.api("GET", path, headers=headers, token=token)

    def test_index_and_every_file_it_needs(self):
        st, h, page = self.get("/")
        self.assertEqual(st, 200, page)
        self.assertEqual(h["Content-Type"], "text/html; charset=utf-8")
        self.assertEqual(h["Cache-Control"], "no-cache")
        m = re.search(r'src="/assets/([0-9a-f]{16})/app\.js"', page)
        self.assertTrue(m, page)
        version = m.group(1)
        self.assertEqual(h["ETag"], '"%s"' % version)
        # No inline script or style in the page itself: the CSP forbids them.
        self.assertNotRegex(page, r"<script(?![^>]*\bsrc=)[^>]*>")
        self.assertNotIn("style=", page)

        # Walk what the page names, then every module's imports.
        todo = re.findall(r'(?:src|href)="/assets/%s/([^"]+)"' % version, page)
        self.assertIn("style.css", todo)
        seen = {}
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            st, h, body = self.get("/assets/%s/%s" % (version, name))
            self.assertEqual(st, 200, "%s: %s" % (name, body))
            self.assertEqual(h["Cache-Control"], "public, max-age=31536000, immutable", name)
            self.assertEqual(h["X-Content-Type-Options"], "nosniff", name)
            seen[name] = h["Content-Type"]
            if name.endswith(".js"):
                self.assertEqual(h["Content-Type"], "text/javascript; charset=utf-8", name)
                # Modules only import siblings: './x.js'.
                for imp in re.findall(r"^\s*import\s[^;]*?from\s+'([^']+)'", body, re.M):
                    self.assertRegex(imp, r"^\./[a-z0-9_-]+\.js$", "%s imports %s" % (name, imp))
                    todo.append(imp[2:])
                self.assertNotRegex(body, r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|"
                                    r"document\.write|\beval\(|new Function\(",
                                    name + " makes markup or code from strings")
        self.assertGreater(len(seen), 8, seen)
        self.assertEqual(seen["style.css"], "text/css; charset=utf-8")

    def test_security_headers(self):
        for path in ("/", None):
            if path is None:
                _, _, page = self.get("/")
                path = re.search(r'src="(/assets/[^"]+/app\.js)"', page).group(1)
            st, h, _ = self.get(path)
            self.assertEqual(st, 200)
            csp = h["Content-Security-Policy"]
            directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
            self.assertEqual(directives["default-src"], "'none'")
            self.assertEqual(directives["script-src"], "'self'")
            self.assertEqual(directives["connect-src"], "'self'")
            self.assertEqual(directives["frame-ancestors"], "'none'")
            self.assertNotIn("unsafe-inline", csp)
            self.assertNotIn("unsafe-eval", csp)
            self.assertEqual(h["X-Frame-Options"], "DENY")
            self.assertEqual(h["Referrer-Policy"], "no-referrer")
            self.assertIsNone(h["Set-Cookie"], "the dashboard sets no cookie")

    def test_cache_by_content_hash(self):
        _, h, page = self.get("/")
        etag = h["ETag"]
        st, h2, body = self.get("/", headers={"If-None-Match": etag})
        self.assertEqual(st, 304)
        self.assertEqual(body, "")
        self.assertEqual(self.get("/", headers={"If-None-Match": '"0000"'})[0], 200)
        version = re.search(r"/assets/([0-9a-f]+)/", page).group(1)
        other = ("0" if version[0] != "0" else "1") + version[1:]
        for path, why in (("/assets/%s/app.js" % other, "another build's version"),
                          ("/assets/%s/nope.js" % version, "a file it does not have"),
                          ("/assets/%s/index.html" % version, "the page, not an asset"),
                          ("/assets/%s/..%%2fapp.js" % version, "a traversal"),
                          ("/assets/%s" % version, "no file")):
            with self.subTest(why=why):
                st, h, v = self.get(path)
                self.assertEqual(st, 404, v)
                self.assertEqual(h["Content-Type"], "application/problem+json")
        # A write to the page is not a thing.
        st, h, _ = self.api("POST", "/", body={})
        self.assertEqual(st, 405)

    def test_metrics_listener_serves_no_dashboard(self):
        self.srv.proc.stop()
        self.start_server(extra=("--metrics-listen", "127.0.0.1:0"))
        murl = self.srv.proc.wait_line("metrics-listening:").split()[-1]
        host, port = murl.split("//")[1].rstrip("/").split(":")
        import http.client
        c = http.client.HTTPConnection(host, int(port), timeout=10)
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        c.close()
        self.assertEqual(r.status, 404)

    def test_whoami(self):
        me = self.ok("GET", "/v1/whoami")
        self.assertEqual(me["role"], "admin")
        self.assertNotIn("token", me, "the secret is never shown again")
        self.assertEqual(self.get("/v1/whoami")[0], 401)
        for role, status in (("viewer", 200), ("operator", 200), ("worker", 403), ("metrics", 403)):
            with self.subTest(role=role):
                t = self.ok("POST", "/v1/tokens", {"name": "t-" + role, "role": role,
                                                  "namespaces": ["*"]})
                st, _, v = self.get("/v1/whoami", token=t["token"])
                self.assertEqual(st, status, v)
                if st == 200:
                    self.assertEqual(v["role"], role)
                    self.assertEqual(v["id"], t["id"])


if __name__ == "__main__":
    unittest.main()
