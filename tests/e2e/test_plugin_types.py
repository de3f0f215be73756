"""Job types on the server side (issue 11, points 1-2): a job's "type" and
"config", the registry of plugin types that workers advertise when they
register, validation of a plugin job's config against the type's JSON
Schema, claim routing by type, explain's no_worker_with_type, GET
/v1/plugins and `sked plugins ls`, and secrets in config masked in every
answer but the claim.

Workers here speak the real HTTP worker protocol by hand (as
test_claims.py's do): a worker that advertises a plugin type needs no
plugin to register, and what the server does with the advertisement is
what is under test."""

import json
import os
import shutil
import subprocess
import unittest

from skedtest import SkedTestCase

SQL_SCHEMA = {
    "type": "object",
    "required": ["dsn", "query"],
    "additionalProperties": False,
    "properties": {
        "dsn": {"type": "string", "minLength": 1},
        "query": {"type": "string"},
        "timeout_s": {"type": "integer", "minimum": 1},
    },
}
SQL_PLUGIN = {"type": "sql", "version": "1.2.0", "abi": 1, "schema": SQL_SCHEMA}
SECRET = "s3cr3t-dsn-pw"
INCLUDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include")
# A plugin as small as the ABI allows: its manifest (what a server reads)
# and a descriptor whose run prints the config it was given.
PLUGIN_C = r"""
#include <sked/plugin.h>
SKED_PLUGIN_MANIFEST("kv", "3.1.0",
    "{\"type\":\"object\",\"required\":[\"key\"],"
    "\"properties\":{\"key\":{\"type\":\"string\"}}}");
static int run(void *state, sked_attempt *att, const sked_host *host)
{
    (void)state;
    host->outputf(att, SKED_STDOUT, "config %s\n", host->config(att, NULL));
    return SKED_PLUGIN_OK;
}
SKED_PLUGIN_DESCRIPTOR("kv", "3.1.0", NULL, NULL, NULL, run);
"""


class TestPluginTypes(SkedTestCase):
    def register(self, name, plugins=None, queues=None, expect=201):
        body = {"name": name, "host": "localhost", "slots": 4}
        if plugins is not None:
            body["plugins"] = plugins
        if queues:
            body["queues"] = queues
        return self.ok("POST", "/v1/workers", body, expect=expect)

    def sql_job(self, **fields):
        job = {"type": "sql", "config": {"dsn": {"secret": SECRET}, "query": "select 1"}}
        job.update(fields)
        return job

    def claim(self, wid):
        return self.ok("POST", "/v1/workers/%s/claim" % wid, {"max": 10, "wait": "0s"})["runs"]

    def test_registration_refuses_bad_plugins(self):
        self.start_server()
        bad = [
            ([dict(SQL_PLUGIN, type="shell")], "plugins[0].type"),
            ([dict(SQL_PLUGIN, type="http")], "plugins[0].type"),
            ([dict(SQL_PLUGIN, type="Bad.Name")], "plugins[0].type"),
            ([SQL_PLUGIN, dict(SQL_PLUGIN, version="2.0.0")], "plugins[1].type"),
            ([dict(SQL_PLUGIN, version="")], "plugins[0].version"),
            ([dict(SQL_PLUGIN, abi=0)], "plugins[0].abi"),
            ([dict(SQL_PLUGIN, schema={"$ref": "#/defs/x"})], "plugins[0].schema"),
            ([dict(SQL_PLUGIN, schema=[1])], "plugins[0].schema"),
            ([{k: v for k, v in SQL_PLUGIN.items() if k != "schema"}], "plugins[0].schema"),
            ([dict(SQL_PLUGIN, extra=1)], "plugins[0].extra"),
            ({"type": "sql"}, "plugins"),
        ]
        for plugins, field in bad:
            with self.subTest(field=field, plugins=plugins):
                self.assert_problem(self.api("POST", "/v1/workers",
                                             {"name": "w", "plugins": plugins}), 400, field)
        # Nothing was registered, and no type entered the registry.
        self.assertEqual(self.ok("GET", "/v1/workers")["items"], [])
        types = [p["type"] for p in self.ok("GET", "/v1/plugins")["items"]]
        self.assertEqual(types, ["shell", "http"])

    def test_submit_is_validated_against_the_advertised_schema(self):
        self.start_server()
        # No worker has the type yet: refused, naming "type".
        v = self.assert_problem(self.api("POST", "/v1/jobs", self.sql_job(name="early")), 400,
                                "type")
        self.assertIn('no worker has plugin type "sql"', v["detail"])
        self.assertIn("--plugin-dir", v["detail"])
        self.register("sqlbox", [SQL_PLUGIN])
        bad = [
            (self.sql_job(config={"query": "select 1"}), "config.dsn"),
            (self.sql_job(config={"dsn": "x", "query": "q", "timeout_s": "9"}),
             "config.timeout_s"),
            (self.sql_job(config={"dsn": "x", "query": "q", "nope": 1}), "config.nope"),
            (self.sql_job(config={"dsn": {"secret": "***"}, "query": "q"}), "config.dsn.secret"),
            (self.sql_job(command=["/bin/true"]), "command"),
            (self.sql_job(cwd="/tmp"), "cwd"),
            (self.sql_job(config=[1]), "config"),
            (self.sql_job(type="nosuch"), "type"),
            ({"command": ["/bin/true"], "config": {"a": 1}}, "config"),
        ]
        for body, field in bad:
            with self.subTest(field=field):
                self.assert_problem(self.api("POST", "/v1/jobs", dict(body, name="j")), 400,
                                    field)
        self.assertEqual(self.ok("GET", "/v1/jobs")["items"], [])
        # A secret is a string to the schema: {"secret": ...} passes "type": "string".
        job = self.create_job(self.sql_job(name="ok"))
        self.assertEqual(job["type"], "sql")
        self.assertEqual(job["config"]["dsn"], {"secret": "***"})
        self.assertNotIn("command", job)
        # A PATCH is validated the same way.
        self.assert_problem(self.api("PATCH", "/v1/jobs/" + job["id"],
                                     {"config": {"query": None}}), 400, "config.query")
        # Workflow tasks too, named by their place.
        wf = {"name": "wf", "tasks": [{"name": "a", "command": ["/bin/true"]},
                                      {"name": "b", "type": "sql",
                                       "config": {"dsn": "x"}}]}
        self.assert_problem(self.api("POST", "/v1/workflows", wf), 400, "tasks[1].config.query")

    def test_claims_route_by_type(self):
        self.start_server()
        plain = self.register("plain")["id"]
        sqlbox = self.register("sqlbox", [SQL_PLUGIN])["id"]
        job = self.create_job(self.sql_job(name="q"))
        shell = self.create_job(self.sh_job("true", name="sh"))
        # The plain worker gets the shell run and never the sql one.
        got = self.claim(plain)
        self.assertEqual([r["job_id"] for r in got], [shell["id"]])
        self.assertEqual(self.claim(plain), [])
        got = self.claim(sqlbox)
        self.assertEqual([r["job_id"] for r in got], [job["id"]])
        # The claim is the one answer that carries the secret: the worker
        # hands it, resolved, to the plugin.
        self.assertEqual(got[0]["spec"]["config"]["dsn"], {"secret": SECRET})
        self.assertEqual(got[0]["spec"]["type"], "sql")

    def test_explain_no_worker_with_type(self):
        self.start_server()
        self.register("plain")
        # The only worker with the type serves another queue.
        self.register("sqlbox", [SQL_PLUGIN], queues=["elsewhere"])
        job = self.create_job(self.sql_job(name="q"))
        why = self.ok("GET", "/v1/jobs/%s/explain" % job["id"])
        codes = [r["code"] for r in why["reasons"]]
        self.assertEqual(codes[0], "no_worker_with_type", why)
        r = why["reasons"][0]
        self.assertEqual(r["type"], "sql")
        self.assertEqual(r["queue"], "default")
        self.assertIn("plain", r["message"])
        run = self.runs_of(job["id"])[0]
        why = self.ok("GET", "/v1/runs/%s/explain" % run["id"])
        self.assertEqual(why["reasons"][0]["code"], "no_worker_with_type", why)
        # A worker of the queue with the type: the run awaits its claim.
        self.register("sqlbox2", [SQL_PLUGIN])
        why = self.ok("GET", "/v1/jobs/%s/explain" % job["id"])
        self.assertEqual(why["reasons"][0]["code"], "awaiting_claim", why)

    def test_plugins_list_and_cli(self):
        self.start_server()
        plain = self.register("plain")["id"]
        sqlbox = self.register("sqlbox", [SQL_PLUGIN, {"type": "noop", "version": "0.9.0",
                                                      "abi": 1, "schema": True}])["id"]
        # A newer version from another worker wins; an older one does not.
        self.register("sqlbox2", [dict(SQL_PLUGIN, version="1.10.0")])
        self.register("sqlbox3", [dict(SQL_PLUGIN, version="1.9.9", schema=False)])
        items = self.ok("GET", "/v1/plugins")["items"]
        by = {p["type"]: p for p in items}
        self.assertEqual([p["type"] for p in items], ["shell", "http", "noop", "sql"])
        for t in ("shell", "http"):
            self.assertTrue(by[t]["builtin"])
            self.assertEqual(len(by[t]["workers"]), 4)
        self.assertFalse(by["sql"]["builtin"])
        self.assertEqual(by["sql"]["version"], "1.10.0")
        self.assertEqual(by["sql"]["abi"], 1)
        self.assertEqual(by["sql"]["schema"], SQL_SCHEMA)
        self.assertEqual(sorted(w["name"] for w in by["sql"]["workers"]),
                         ["sqlbox", "sqlbox2", "sqlbox3"])
        self.assertEqual([w["id"] for w in by["noop"]["workers"]], [sqlbox])
        self.assertEqual(by["noop"]["schema"], True)
        workers = {w["name"]: w for w in self.ok("GET", "/v1/workers")["items"]}
        self.assertEqual(workers["plain"]["types"], [])
        self.assertEqual(workers["sqlbox"]["types"], ["sql", "noop"])
        # A drained worker still counts; a worker that deregistered... is
        # gone from the pool and from the type's workers.
        self.ok("POST", "/v1/workers/%s/drain" % plain)
        by = {p["type"]: p for p in self.ok("GET", "/v1/plugins")["items"]}
        states = {w["id"]: w["state"] for w in by["shell"]["workers"]}
        self.assertEqual(states[plain], "draining")

        out = self.cli_ok("plugins", "ls")
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["TYPE", "VERSION", "ABI", "WORKERS"])
        rows = {l.split()[0]: l.split() for l in lines[1:]}
        self.assertEqual(rows["sql"][1:3], ["1.10.0", "1"])
        self.assertEqual(sorted(rows["sql"][3].split(",")), ["sqlbox", "sqlbox2", "sqlbox3"])
        self.assertEqual(rows["noop"][3], "sqlbox")
        self.assertEqual(rows["shell"][3:], ["all", "(4)"])
        for flag in (("--json",), ("-o", "json")):
            got = json.loads(self.cli_ok("plugins", "ls", *flag))
            self.assertEqual([p["type"] for p in got["items"]], ["shell", "http", "noop", "sql"])
        self.assertIn("usage: sked plugins ls", self.cli_ok("plugins", "ls", "--help"))
        self.assertIn("plugins", self.cli_ok("--help"))

    def build_plugin(self):
        """Builds the kv plugin into <tmp>/plugins; returns the dir."""
        pdir = self.path("plugins")
        os.makedirs(pdir, exist_ok=True)
        src = os.path.join(pdir, "kv.c")
        with open(src, "w") as f:
            f.write(PLUGIN_C)
        subprocess.run(["cc", "-shared", "-fPIC", "-I", INCLUDE, "-o",
                        os.path.join(pdir, "kv.so"), src], check=True)
        return pdir

    @unittest.skipUnless(shutil.which("cc"), "needs a C compiler to build a plugin")
    def test_dev_runs_a_plugin_job_with_its_secrets_resolved(self):
        """sked dev --plugin-dir: the server registers the type, the local
        worker advertises it, claims the run and its plugin host runs it
        with the config's secrets resolved to plain strings."""
        pdir = self.build_plugin()
        proc = self.start("dev", ["dev", "--listen", "127.0.0.1:0", "--data",
                                  self.path("data"), "--slots", "2", "--plugin-dir", pdir])
        self.use(self._server_from(proc))
        job = self.create_job({"name": "k", "type": "kv",
                               "config": {"key": {"secret": SECRET}, "n": [1, {"secret": "b"}]}})
        run = self.wait_run_terminal(job["id"], timeout=20)
        self.assertEqual(run["state"], "succeeded", run)
        st, _, log = self.api("GET", "/v1/runs/%s/log" % run["id"])
        self.assertEqual(st, 200)
        line = [l for l in log.splitlines() if l.startswith("config ")]
        self.assertEqual(len(line), 1, log)
        self.assertEqual(json.loads(line[0][len("config "):]),
                         {"key": SECRET, "n": [1, "b"]})
        worker = self.ok("GET", "/v1/workers")["items"][0]
        self.assertEqual(worker["types"], ["kv"])

    @unittest.skipUnless(shutil.which("cc"), "needs a C compiler to build a plugin")
    def test_server_plugin_dir_registers_types_at_start(self):
        """sked server --plugin-dir reads the manifests (never loading the
        plugins) and registers their types: jobs of them are validated
        before any worker has the type, and GET /v1/plugins lists it with
        no worker yet."""
        pdir = self.build_plugin()
        # Not a plugin at all: left out with a warning, the start goes on.
        with open(os.path.join(pdir, "junk.so"), "wb") as f:
            f.write(b"not an ELF file")
        self.start_server(extra=("--plugin-dir", pdir))
        by = {p["type"]: p for p in self.ok("GET", "/v1/plugins")["items"]}
        self.assertEqual(sorted(by), ["http", "kv", "shell"])
        self.assertEqual(by["kv"]["version"], "3.1.0")
        self.assertEqual(by["kv"]["workers"], [])
        self.assertEqual(by["kv"]["schema"]["required"], ["key"])
        self.assert_problem(self.api("POST", "/v1/jobs", {"name": "k", "type": "kv"}), 400,
                            "config.key")
        job = self.create_job({"name": "k", "type": "kv", "config": {"key": "a"}})
        why = self.ok("GET", "/v1/jobs/%s/explain" % job["id"])
        self.assertEqual(why["reasons"][0]["code"], "no_worker_for_queue", why)
        self.register("plain")
        why = self.ok("GET", "/v1/jobs/%s/explain" % job["id"])
        self.assertEqual(why["reasons"][0]["code"], "no_worker_with_type", why)
        # A dir that cannot be read stops the start.
        self.srv.proc.stop()
        rc, out, err = self.cli("server", "--listen", "127.0.0.1:0", "--store",
                                "sqlite:%s/other.db" % self.tmp, "--plugin-dir",
                                self.path("nosuchdir"))
        self.assertNotEqual(rc, 0)
        self.assertIn("nosuchdir", err)

    def test_config_secrets_masked_everywhere_but_the_claim(self):
        self.start_server()
        wid = self.register("sqlbox", [SQL_PLUGIN])["id"]
        job = self.create_job(self.sql_job(name="q"))
        answers = [job, self.ok("GET", "/v1/jobs/" + job["id"]), self.ok("GET", "/v1/jobs")]
        # Read back and sent again (with one change): the secret is kept.
        back = self.ok("GET", "/v1/jobs/" + job["id"])
        patch = {"config": dict(back["config"], query="select 2")}
        answers.append(self.ok("PATCH", "/v1/jobs/" + job["id"], patch))
        answers.append(self.ok("GET", "/v1/audit?limit=1000"))
        for a in answers:
            self.assertNotIn(SECRET, json.dumps(a))
        self.assertEqual(answers[-2]["config"], {"dsn": {"secret": "***"}, "query": "select 2"})
        self.assertNotIn(SECRET, self.cli_ok("jobs", "get", job["id"], "-o", "json"))
        shown = self.cli_ok("jobs", "get", job["id"])
        self.assertIn('Config:', shown)
        self.assertIn('"dsn":{"secret":"***"}', shown)
        self.assertNotIn("Command:", shown)
        self.assertNotIn(SECRET, shown)
        got = self.claim(wid)
        self.assertEqual(got[0]["spec"]["config"], {"dsn": {"secret": SECRET},
                                                    "query": "select 2"})
        self.assertNotIn(SECRET, self.srv.proc.stderr_text())


if __name__ == "__main__":
    unittest.main()
