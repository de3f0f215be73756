"""GET /metrics (issue 9, point 1), scraped by a real Prometheus.

Each test that needs one starts its own `prometheus` (Debian's package) on
127.0.0.1 at a free port, with a config and a TSDB in the test's temp dir,
scraping every second. It never touches the system's Prometheus service
(the package installs one; whether it runs or not changes nothing here):
no /etc file, no default port, no shared storage. Answers are read through
Prometheus' own HTTP API (/api/v1/query), so what is checked is what an
operator's PromQL would see.

- SQLite: a server runs jobs that succeed and fail; Prometheus, with a
  metrics token in its credentials file, scrapes /metrics and its queries
  count exactly the runs that succeeded and failed, and the submits. The
  live output passes `promtool check metrics`.
- Who may scrape: no token 401, a viewer (or worker) token 403, a metrics
  or admin token 200 as text/plain version 0.0.4; --metrics-listen serves
  /metrics without a token and nothing else (404 for the API).
- PostgreSQL: two servers on one database, each with a metrics listener;
  Prometheus scrapes both; the cluster-wide figures (runs finished, queue
  depth, workers) agree between them, and the per-server submit counters
  add up to the jobs submitted through each.

Run one backend alone with `python3 -m unittest test_metrics.SqliteMetrics`
(or PgMetrics)."""

import json
import os
import re
import shutil
import signal
import subprocess
import unittest
import urllib.error
import urllib.parse
import urllib.request

from pgcluster import ClusterTestCase, free_port
from skedtest import SKED_BIN, SLOW, SkedTestCase, wait_until

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROM_CTYPE = "text/plain; version=0.0.4"


class Prometheus:
    """A throwaway Prometheus scraping `targets` (host:port) every second,
    with a bearer token read from token_file when one is given."""

    def __init__(self, tmp, targets, token_file=None):
        if not os.access(PROMETHEUS, os.X_OK):
            raise AssertionError("prometheus not found (scripts/deps.sh installs it)")
        self.dir = os.path.join(tmp, "prometheus")
        os.makedirs(os.path.join(self.dir, "data"))
        self.port = free_port()
        cfg = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "scrape_configs:",
               "  - job_name: sked", "    metrics_path: /metrics"]
        if token_file:
            cfg += ["    authorization:", "      type: Bearer",
                    "      credentials_file: %s" % json.dumps(token_file)]
        cfg += ["    static_configs:", "      - targets: %s" % json.dumps(list(targets))]
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write("\n".join(cfg) + "\n")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self._log = open(self.log_path, "ab")
        self.p = subprocess.Popen(
            [PROMETHEUS, "--config.file", self.config,
             "--storage.tsdb.path", os.path.join(self.dir, "data"),
             "--web.listen-address", "127.0.0.1:%d" % self.port, "--log.level", "warn"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            start_new_session=True, cwd=self.dir)
        self.url = "http://127.0.0.1:%d" % self.port
        try:
            wait_until(self._ready, 60, interval=0.2, msg="prometheus to be ready")
        except BaseException:
            self.close()
            raise

    def log_tail(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-3000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10 * SLOW) as r:
            return r.status, r.read()

    def _ready(self):
        if self.p.poll() is not None:
            raise AssertionError("prometheus exited (rc %s):\n%s" % (self.p.returncode,
                                                                     self.log_tail()))
        try:
            return self._get("/-/ready")[0] == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def query(self, promql):
        """The result vector of an instant query: [(labels, float), ...]."""
        st, body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        doc = json.loads(body)
        if st != 200 or doc.get("status") != "success":
            raise AssertionError("query %r failed: %r" % (promql, doc))
        return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]

    def value(self, promql):
        """The single value of a query, or None while it has no result."""
        res = self.query(promql)
        if len(res) > 1:
            raise AssertionError("query %r gave %d series: %r" % (promql, len(res), res))
        return res[0][1] if res else None

    def wait_value(self, promql, want, timeout=30.0):
        """Waits until the query's single value equals want; returns it."""
        box = {}

        def check():
            box["v"] = self.value(promql)
            return box["v"] == want

        try:
            wait_until(check, timeout, interval=0.25, msg="%s == %r" % (promql, want))
        except AssertionError as e:
            raise AssertionError("%s (last: %r)\nprometheus log:\n%s"
                                 % (e, box.get("v"), self.log_tail()))
        return box["v"]

    def close(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
                self.p.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.p.wait(10)
        self._log.close()


def scrape(url, token=None):
    """GET url (a /metrics URL) -> (status, content type, body text)."""
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10 * SLOW) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


class MetricsCase:
    """Helpers both backends use (mixed into a SkedTestCase)."""

    def prometheus(self, targets, token_file=None):
        prom = Prometheus(self.tmp, targets, token_file)
        self.addCleanup(prom.close)
        return prom

    def make_token(self, name, role, **extra):
        body = {"name": name, "role": role}
        body.update(extra)
        return self.ok("POST", "/v1/tokens", body, expect=201)["token"]

    def run_jobs(self, ok, failing, queue=None):
        """Submits ok jobs that succeed and failing ones that fail (no
        retry) through the current server; returns their ids."""
        ids = []
        for i in range(ok + failing):
            doc = self.sh_job("exit 0" if i < ok else "exit 3", retry={"max_attempts": 1})
            if queue:
                doc["queue"] = queue
            ids.append(self.create_job(doc)["id"])
        return ids

    def wait_all_done(self, ids, timeout=60.0):
        for jid in ids:
            self.wait_run_terminal(jid, timeout)

    def check_promtool(self, text):
        cp = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                            capture_output=True, timeout=30)
        self.assertEqual(cp.returncode, 0, "promtool check metrics: %s%s"
                         % (cp.stdout.decode(), cp.stderr.decode()))
        # promtool prints lint findings (bad names, missing HELP) even when
        # it exits 0 for some of them: there must be none.
        self.assertEqual((cp.stdout + cp.stderr).decode().strip(), "")


class SqliteMetrics(MetricsCase, SkedTestCase):
    def test_prometheus_counts_runs(self):
        self.start_server()
        self.start_worker(slots=2)
        tok = self.make_token("prometheus", "metrics")
        token_file = self.path("prom.token")
        with open(token_file, "w") as f:
            f.write(tok + "\n")
        ids = self.run_jobs(ok=5, failing=2)
        self.wait_all_done(ids)

        prom = self.prometheus(["%s:%d" % (self.srv.host, self.srv.port)], token_file)
        prom.wait_value('up{job="sked"}', 1.0)
        prom.wait_value('sum(sked_runs_finished_total{state="succeeded"})', 5.0)
        self.assertEqual(prom.value('sum(sked_runs_finished_total{state="failed"})'), 2.0)
        self.assertEqual(prom.value('sum(sked_runs_finished_total{state="canceled"})'), 0.0)
        self.assertEqual(prom.value(
            'sum(sked_http_requests_total{route="/v1/jobs",method="POST",status="201"})'), 7.0)
        self.assertEqual(prom.value("sum(sked_submit_duration_seconds_count)"), 7.0)
        self.assertEqual(prom.value("sum(sked_fire_lag_seconds_count)"), 7.0)
        self.assertEqual(prom.value('sum(sked_queue_depth{state=~"pending|running"})'), 0.0)
        self.assertEqual(prom.value('sked_workers{state="active"}'), 1.0)
        self.assertEqual(prom.value('sked_worker_slots_free{state="active"}'), 2.0)
        self.assertEqual(prom.value('sked_build_info{store="sqlite"}'), 1.0)
        # A route template, never a raw path: GET /v1/runs/{id} was called
        # for each job's run, and is one series.
        runs = prom.query('sked_http_requests_total{route=~"/v1/runs/.*",method="GET"}')
        self.assertTrue(runs and all(m["route"] == "/v1/runs/{id}" for m, _ in runs), runs)

        # Seven more: the counter moves by exactly that much.
        ids = self.run_jobs(ok=3, failing=4)
        self.wait_all_done(ids)
        prom.wait_value('sum(sked_runs_finished_total{state="succeeded"})', 8.0)
        prom.wait_value('sum(sked_runs_finished_total{state="failed"})', 6.0)

        st, ctype, text = scrape(self.srv.url + "/metrics", tok)
        self.assertEqual(st, 200)
        self.check_promtool(text)
        self.check_dashboard(prom, text)

    def check_dashboard(self, prom, text):
        """docs/grafana-dashboard.json: every panel's query is PromQL this
        Prometheus runs, over metric names this server exposes."""
        path = os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                            "grafana-dashboard.json")
        with open(path) as f:
            dash = json.load(f)
        exposed = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        self.assertGreater(len(exprs), 15)
        answered = 0
        for e in exprs:
            q = e.replace("$job", "sked")
            for name in re.findall(r"\b((?:sked|process)_[a-z_]+)", q):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                self.assertTrue(name in exposed or base in exposed,
                                "the dashboard queries %s, which /metrics does not have" % name)
            if prom.query(q):
                answered += 1
        # Most panels have data already (some, like alert deliveries, may not).
        self.assertGreater(answered, len(exprs) // 2)

    def test_fire_lag_leaves_out_runs_that_waited_on_others(self):
        """A workflow task carries its workflow run's fire time: a task
        that waited 2 s for its upstream did not lag 2 s. Fire lag counts
        the workflow run and the first task only; the dashboard's overview
        showed a p95 of 4.6 s on an idle sked dev before."""
        self.start_server()
        self.start_worker(slots=2)
        wf = self.ok("POST", "/v1/workflows", {"name": "lag", "tasks": [
            {"name": "a", "command": ["sleep", "2"]},
            {"name": "b", "command": ["true"], "depends_on": ["a"]}]}, expect=201)
        wr = self.ok("POST", "/v1/workflows/%s/trigger" % wf["id"], expect=201)
        wait_until(lambda: self.ok("GET", "/v1/workflow-runs/%s" % wr["id"])["state"] == "succeeded",
                   30, msg="the workflow run to succeed")
        _, _, text = scrape(self.srv.url + "/metrics", self.token)
        count = float(re.search(r"^sked_fire_lag_seconds_count (\S+)$", text, re.M).group(1))
        under_1s = float(re.search(r'^sked_fire_lag_seconds_bucket\{le="1"\} (\S+)$', text,
                                   re.M).group(1))
        # Task a waited on nothing; b waited ~2 s for a and is not counted.
        self.assertEqual(count, 1.0, text)
        self.assertEqual(under_1s, count, "a fire lag of a second or more:\n" + text)

    def test_who_may_scrape(self):
        self.start_server(extra=("--metrics-listen", "127.0.0.1:0"))
        murl = self.srv.proc.wait_line("metrics-listening:")
        self.assertRegex(murl, r"^http://127\.0\.0\.1:\d+$")
        url = self.srv.url + "/metrics"

        st, _, v = self.api("GET", "/metrics", token=None)
        self.assertEqual(st, 401, v)
        self.assertEqual(v["field"], "header.Authorization")
        viewer = self.make_token("grafana-viewer", "viewer")
        worker = self.make_token("w-7", "worker")
        metrics = self.make_token("prometheus", "metrics")
        for who in (viewer, worker):
            st, _, v = self.api("GET", "/metrics", token=who)
            self.assertEqual(st, 403, v)
        for who in (metrics, self.srv.token):
            st, ctype, text = scrape(url, who)
            self.assertEqual(st, 200, text)
            self.assertTrue(ctype.startswith(PROM_CTYPE), ctype)
            self.assertIn("# TYPE sked_http_requests_total counter", text)
        # A metrics token is for /metrics only.
        for method, path in (("GET", "/v1/jobs"), ("GET", "/v1/workers"), ("GET", "/v1/tokens")):
            st, _, v = self.api(method, path, token=metrics)
            self.assertEqual(st, 403, (path, v))
        # The refusals above are counted too, by route template.
        st, _, text = scrape(url, metrics)
        self.assertIn('sked_http_requests_total{route="/metrics",method="GET",status="401"} 1\n',
                      text)
        self.assertIn('sked_http_requests_total{route="/metrics",method="GET",status="403"} 2\n',
                      text)

        # The metrics listener: /metrics without a token, and nothing else.
        st, ctype, text = scrape(murl + "/metrics")
        self.assertEqual(st, 200, text)
        self.assertTrue(ctype.startswith(PROM_CTYPE), ctype)
        self.check_promtool(text)
        for path in ("/v1/jobs", "/healthz", "/v1/workers", "/metrics/x"):
            st, _, body = scrape(murl + path, self.srv.token)
            self.assertEqual(st, 404, (path, body))
        req = urllib.request.Request(murl + "/v1/jobs", method="POST", data=b"{}",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": "Bearer " + self.srv.token})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=10 * SLOW)
        self.assertEqual(cm.exception.code, 404)
        self.assertEqual(self.ok("GET", "/v1/jobs", expect=200)["items"], [])

    def test_metrics_listen_refuses_bad_address(self):
        proc = self.start("bad", ["server", "--listen", "127.0.0.1:0", "--store",
                                  "sqlite:%s/sked.db" % self.path("s"),
                                  "--metrics-listen", "nowhere"])
        self.assertNotEqual(proc.wait_exit(30), 0)
        self.assertIn("cannot serve metrics on 'nowhere'", proc.stderr_text())
        self.assertFalse(os.path.exists(self.path("s/sked.db")), "a store was left behind")

    def test_help(self):
        for cmd in ("server", "dev"):
            cp = subprocess.run([SKED_BIN, cmd, "--help"], capture_output=True, timeout=30)
            self.assertEqual(cp.returncode, 0)
            self.assertIn("--metrics-listen ADDR:PORT", cp.stdout.decode())


class PgMetrics(MetricsCase, ClusterTestCase):
    def test_two_servers_agree(self):
        extra = ("--metrics-listen", "127.0.0.1:0")
        a = self.start_pg_server("a", extra=extra)
        b = self.start_pg_server("b", extra=extra)
        targets = [urllib.parse.urlsplit(s.proc.wait_line("metrics-listening:")).netloc
                   for s in (a, b)]
        self.start_cluster_worker("w1", self.server_list(), slots=2)

        self.use(a)
        ids = self.run_jobs(ok=4, failing=1)
        self.use(b)
        ids += self.run_jobs(ok=2, failing=0)
        # Runs of a queue no worker serves stay pending: queue depth.
        parked = self.run_jobs(ok=3, failing=0, queue="nowhere")
        self.wait_all_done(ids)

        prom = self.prometheus(targets)
        prom.wait_value('count(up{job="sked"} == 1)', 2.0)
        # Cluster-wide: both servers report the same figures.
        prom.wait_value('count(sked_runs_finished_total{queue="default",state="succeeded"} == 6)',
                        2.0)
        self.assertEqual(prom.value(
            'count(sked_runs_finished_total{queue="default",state="failed"} == 1)'), 2.0)
        self.assertEqual(prom.value(
            'count(sked_queue_depth{queue="nowhere",state="pending"} == 3)'), 2.0)
        self.assertEqual(prom.value('count(sked_workers{state="active"} == 1)'), 2.0)
        self.assertEqual(prom.value('count(sked_worker_slots{state="active"} == 2)'), 2.0)
        # Per server: each counts the submits it answered; the sum is all.
        self.assertEqual(prom.value(
            'sum(sked_http_requests_total{route="/v1/jobs",method="POST",status="201"})'), 10.0)
        per = sorted(v for _, v in prom.query(
            'sked_http_requests_total{route="/v1/jobs",method="POST",status="201"}'))
        self.assertEqual(per, [5.0, 5.0])
        self.assertEqual(prom.value('count(sked_build_info{store="postgres"})'), 2.0)
        self.assertGreater(prom.value("sum(sked_store_commit_duration_seconds_count)"), 0)

        # A change made through one server shows on both: cancel the parked runs.
        self.use(a)
        for jid in parked:
            run = self.runs_of(jid)[0]
            self.ok("POST", "/v1/runs/%s/cancel" % run["id"], expect=200)
        prom.wait_value('count(sked_queue_depth{queue="nowhere",state="pending"} == 0)', 2.0)
        prom.wait_value(
            'count(sked_runs_finished_total{queue="nowhere",state="canceled"} == 3)', 2.0)
        for t in targets:
            st, _, text = scrape("http://%s/metrics" % t)
            self.assertEqual(st, 200)
            self.check_promtool(text)


if __name__ == "__main__":
    unittest.main()
