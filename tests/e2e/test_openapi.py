"""docs/openapi.yaml is the machine-readable twin of the server's route
table: its (method, path) pairs must be exactly what `sked routes` prints,
and every operation has its own operationId. The document is read as YAML
(python3-yaml); docs.openapi_lint lints it with Redocly (tests/openapi), and
skedtest.api() checks every JSON answer of the e2e tests against it."""

import os
import subprocess
import unittest

import yaml

from skedtest import OPENAPI_PATH, SKED_BIN, SkedTestCase, contract

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def openapi_operations(doc):
    """Returns the list of (METHOD, path, operation) under `paths`."""
    return [(m.upper(), path, op) for path, item in doc["paths"].items()
            for m, op in item.items() if m in METHODS]


class TestOpenApi(unittest.TestCase):
    def setUp(self):
        self.assertTrue(os.path.exists(OPENAPI_PATH), "docs/openapi.yaml is missing")
        with open(OPENAPI_PATH) as f:
            self.doc = yaml.safe_load(f)

    def test_version_and_operation_ids(self):
        self.assertRegex(str(self.doc.get("openapi")), r"^3\.1\.\d+$")
        ops = openapi_operations(self.doc)
        missing = [(m, p) for m, p, op in ops if not op.get("operationId")]
        self.assertEqual(missing, [], "operations without an operationId")
        ids = [op["operationId"] for _, _, op in ops]
        self.assertEqual(len(ids), len(set(ids)), "duplicate operationIds")

    def test_routes_match_openapi(self):
        spec = [(m, p) for m, p, _ in openapi_operations(self.doc)]
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

    def test_contract_checker(self):
        """The checker behind api(): it takes what fits and names what does not."""
        c = contract()
        problem = "application/problem+json"
        self.assertEqual(c.match("/v1/jobs/j1/pause?x=1"), "/v1/jobs/{id}/pause")
        self.assertEqual(c.match("/v1/schedules/preview"), "/v1/schedules/preview")
        self.assertIsNone(c.match("/v1/jobs/j1/nope"))
        self.assertIsNone(c.match("*"))
        self.assertIsNone(c.check("GET", "/v1/jobs/j1", 404, problem,
                                  {"type": "about:blank", "title": "not found", "status": 404}))
        self.assertIsNone(c.check("GET", "/v1/jobs/j1", 418, problem,
                                  {"type": "about:blank", "status": 418}))
        self.assertIsNone(c.check("GET", "/no/route", 404, problem,
                                  {"type": "about:blank", "status": 404}))
        self.assertIn("status is 400", c.check("GET", "/no/route", 404, problem,
                                               {"type": "about:blank", "status": 400}))
        self.assertIsNone(c.check("GET", "/v1/jobs", 200, "application/json",
                                  {"items": [{"id": "j1", "last_run": None}], "next_cursor": None}))
        bad = c.check("GET", "/v1/jobs", 200, "application/json", {"items": [{"id": 7}]})
        self.assertIn("at items/0/id", bad)
        self.assertIn("not of type", c.check("GET", "/v1/jobs/j1", 404, problem, {"status": "x"}))
        self.assertIn("not in docs/openapi.yaml", c.check("GET", "/v1/jobs", 299, "application/json", {}))
        self.assertIn("no operation", c.check("GET", "/no/route", 200, "application/json", {}))
        self.assertIn("lists", c.check("GET", "/healthz", 200, "text/json", {}))


class TestAnswersFitContract(SkedTestCase):
    """Operations the other e2e tests reach only through the CLI (which does
    not go through api()), called once each so their answers meet the
    contract check too."""

    def test_admin_and_worker_operations(self):
        self.start_server()
        self.ok("POST", "/v1/users", {"name": "oa-user", "password": "password-123",
                                      "role": "user", "namespaces": ["default"]}, expect=201)
        self.ok("GET", "/v1/users", expect=200)
        self.ok("PATCH", "/v1/users/oa-user", {"role": "viewer"}, expect=200)
        self.ok("POST", "/v1/login", {"user": "oa-user", "password": "wrong-password"},
                token=None, expect=401)
        self.ok("POST", "/v1/login", {"user": "oa-user", "password": "password-123"},
                token=None, expect=201)
        tok = self.ok("POST", "/v1/tokens", {"name": "oa-svc", "role": "worker"}, expect=201)
        self.ok("GET", "/v1/tokens", expect=200)
        self.ok("DELETE", "/v1/tokens/%s" % tok["id"], expect=204)
        self.ok("GET", "/v1/audit", expect=200)

        job = self.create_job(self.sh_job("true", schedules=[{"every": "1h"}]))
        self.ok("POST", "/v1/jobs/%s/trigger" % job["id"], expect=201)
        self.ok("GET", "/v1/jobs/%s/misses" % job["id"], expect=200)
        self.ok("POST", "/v1/jobs/%s/pause" % job["id"], expect=200)
        self.ok("POST", "/v1/jobs/%s/resume" % job["id"], expect=200)
        wid = self.ok("POST", "/v1/workers", {"name": "oa-w"}, expect=201)["id"]
        self.ok("POST", "/v1/workers/%s/drain" % wid, expect=200)
        self.ok("GET", "/v1/workers", expect=200)
        self.ok("DELETE", "/v1/users/oa-user", expect=204)


if __name__ == "__main__":
    unittest.main()
