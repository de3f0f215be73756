"""docs/openapi.yaml is the machine-readable twin of the server's route
table: its (method, path) pairs must be exactly what `sked routes` prints.
The YAML is read with a few lines of code (standard library only): the
keys under `paths:` and the HTTP-method keys one level below each."""

import os
import re
import subprocess
import unittest

from skedtest import ROOT, SKED_BIN

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def openapi_routes(text):
    """Returns the list of (METHOD, path) pairs under the top-level `paths:`."""
    out = []
    in_paths = False
    path_indent = method_indent = None
    cur = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0:
            in_paths = stripped.startswith("paths:")
            cur = None
            continue
        if not in_paths:
            continue
        m = re.match(r"""^(["']?)(/[^"']*)\1\s*:\s*(\{\s*\})?\s*$""", stripped)
        if m and (path_indent is None or indent == path_indent):
            path_indent, cur, method_indent = indent, m.group(2), None
            continue
        if cur is None or indent <= path_indent:
            continue
        if method_indent is None:
            method_indent = indent
        if indent == method_indent:
            key = stripped.split(":", 1)[0].strip("\"'")
            if key in METHODS:
                out.append((key.upper(), cur))
    return out


class TestOpenApi(unittest.TestCase):
    def test_parser(self):
        sample = ("openapi: 3.1.0\npaths:\n  /a:\n    parameters:\n      - name: x\n"
                  "    get:\n      summary: get: it\n      responses:\n        '200':\n"
                  "          description: ok\n  '/b/{id}':\n    post: {}\n    delete:\n"
                  "      tags: [x]\ncomponents:\n  schemas:\n    /not-a-path:\n      get: {}\n")
        self.assertEqual(openapi_routes(sample), [("GET", "/a"), ("POST", "/b/{id}"),
                                                  ("DELETE", "/b/{id}")])

    def test_routes_match_openapi(self):
        path = os.path.join(ROOT, "docs", "openapi.yaml")
        self.assertTrue(os.path.exists(path), "docs/openapi.yaml is missing")
        with open(path) as f:
            spec = openapi_routes(f.read())
        self.assertEqual(len(spec), len(set(spec)), "duplicate operations in openapi.yaml")
        cp = subprocess.run([SKED_BIN, "routes"], capture_output=True, timeout=30)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        routes = []
        for line in cp.stdout.decode().splitlines():
            if line.strip():
                method, pattern = line.split()
                routes.append((method, pattern))
        self.assertGreater(len(routes), 10)
        self.assertEqual(len(routes), len(set(routes)), "duplicate routes")
        self.assertEqual(sorted(set(routes) - set(spec)), [], "routes missing from openapi.yaml")
        self.assertEqual(sorted(set(spec) - set(routes)), [], "openapi.yaml paths the server lacks")


if __name__ == "__main__":
    unittest.main()
