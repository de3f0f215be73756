"""Live events (issue 9, point 2): GET /v1/events streams every change of a
job, run and worker as server-sent events, each with a growing id, filtered
by job and type and by the caller's namespaces; a client that disconnects
and resumes with Last-Event-ID sees every event exactly once, in order; a
resume point retention deleted is refused (410); `sked watch` prints them.
The cluster half (every server streams every change, resumed on another
server) is in TestEventsCluster, on a real PostgreSQL."""

import http.client
import json
import os
import threading
import time
import unittest

from pgcluster import ClusterTestCase
from skedtest import SLOW, SkedTestCase, contract, wait_until


class EventStream:
    """One GET /v1/events connection, read event by event."""

    def __init__(self, srv, token, query="", last_id=None, timeout=10.0):
        self.conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout * SLOW)
        h = {"Authorization": "Bearer " + token, "Accept": "text/event-stream"}
        if last_id is not None:
            h["Last-Event-ID"] = str(last_id)
        self.conn.request("GET", "/v1/events" + query, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.ctype = self.resp.getheader("Content-Type") or ""
        self.comments = []

    def problem(self):
        return json.loads(self.resp.read().decode())

    def next(self):
        """The next event as a dict (id, type, data), or None when the
        stream is silent for the connection's timeout or ends."""
        ev = {}
        while True:
            try:
                line = self.resp.readline()
            except (TimeoutError, OSError):
                return None
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if "id" in ev:
                    return ev
                ev = {}
                continue
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("id: "):
                ev["id"] = int(line[4:])
            elif line.startswith("event: "):
                ev["type"] = line[7:]
            elif line.startswith("data: "):
                ev["data"] = json.loads(line[6:])

    def take_until(self, pred, limit=10000, timeout=20.0):
        """Events until pred(event) holds (that one included)."""
        out = []
        end = time.monotonic() + timeout * SLOW
        while time.monotonic() < end and len(out) < limit:
            ev = self.next()
            if ev is None:
                continue
            out.append(ev)
            if pred(ev):
                return out
        raise AssertionError("the awaited event never came; got %r" % [e["type"] for e in out])

    def close(self):
        self.conn.close()


def check_event(tc, ev):
    """The framing and the data agree, the data fits docs/openapi.yaml's
    Event, and it has the fields of its kind."""
    d = ev["data"]
    errors = [e.message for e in
              contract()._validator("#/components/schemas/Event").iter_errors(d)]
    tc.assertEqual(errors, [], d)
    tc.assertEqual(d["id"], ev["id"])
    tc.assertEqual(d["type"], ev["type"])
    tc.assertIn("time", d)
    tc.assertIn("namespace", d)
    kind = ev["type"].split(".")[0]
    tc.assertIn(kind, ("job", "run", "worker", "alert"))
    if kind in ("job", "run"):
        tc.assertRegex(d["job_id"], r"^(job|wfl)_", d)  # a job's, or a workflow's
    if kind == "run":
        tc.assertTrue(d["run_id"].startswith("run_"), d)
        tc.assertIn("attempt", d)
    if kind == "worker":
        tc.assertTrue(d["worker_id"].startswith("wrk_"), d)


def read_all(tc, srv, token, after=0, query=""):
    """Every event after `after`, read until the stream goes quiet."""
    sep = "&" if query else "?"
    s = EventStream(srv, token, query + "%safter=%d" % (sep, after), timeout=1.5)
    tc.assertEqual(s.status, 200)
    out = []
    while True:
        ev = s.next()
        if ev is None:
            break
        check_event(tc, ev)
        out.append(ev)
    s.close()
    return out


def read_in_pieces(tc, servers, start, per):
    """Reads `per` events from each server in turn, each time resuming with
    Last-Event-ID after the last event read; returns (events, last id)."""
    seen, last = [], start
    for srv in servers:
        s = EventStream(srv, tc.token, last_id=last)
        tc.assertEqual(s.status, 200)
        for _ in range(per):
            ev = s.next()
            if ev is None:
                break
            check_event(tc, ev)
            seen.append(ev)
            last = ev["id"]
        s.close()
    return seen, last


class TestEvents(SkedTestCase):
    def test_lifecycle_of_a_run_in_order(self):
        self.start_server()
        self.start_worker()
        s = EventStream(self.srv, self.token)
        self.assertEqual(s.status, 200)
        self.assertTrue(s.ctype.startswith("text/event-stream"), s.ctype)
        job = self.create_job(self.sh_job("exit 3", retry={"max_attempts": 2, "initial": "100ms",
                                                              "max": "100ms"}))
        evs = s.take_until(lambda e: e["type"] == "run.failed")
        s.close()
        for e in evs:
            check_event(self, e)
        ids = [e["id"] for e in evs]
        self.assertEqual(ids, sorted(set(ids)))
        mine = [e for e in evs if e["data"].get("job_id") == job["id"]]
        self.assertEqual([e["type"] for e in mine],
                         ["job.created", "run.pending", "run.claimed", "run.started",
                          "run.retrying", "run.claimed", "run.started", "run.failed"])
        self.assertEqual(mine[-1]["data"]["attempt"], 2)
        self.assertTrue(mine[-1]["data"]["worker_id"].startswith("wrk_"))
        # A stream that starts now shows none of the past.
        s = EventStream(self.srv, self.token, timeout=1.0)
        self.assertIsNone(s.next())
        s.close()

    def test_resume_sees_every_event_exactly_once(self):
        self.start_server()
        self.start_worker(slots=4)
        first = read_all(self, self.srv, self.token)  # the worker's registration
        start = first[-1]["id"] if first else 0
        def churn():
            for _ in range(60):
                self.create_job(self.sh_job("true"))

        t = threading.Thread(target=churn)
        t.start()
        try:
            # Reconnect five times mid-stream, each time after a few events.
            seen, last = read_in_pieces(self, [self.srv] * 5, start, 7)
        finally:
            t.join()
        # Let the runs finish, then read the rest from where we were.
        wait_until(lambda: all(r["state"] == "succeeded" for r in
                               self.list_all("/v1/runs")), 30, msg="every run done")
        seen += read_all(self, self.srv, self.token, after=last)
        everything = read_all(self, self.srv, self.token, after=start)
        types = [e["type"] for e in everything]
        self.assertEqual(types.count("job.created"), 60)
        self.assertEqual(types.count("run.succeeded"), 60)
        self.assertEqual([e["id"] for e in seen], [e["id"] for e in everything])
        self.assertEqual(seen, everything)

    def test_filters_and_namespaces(self):
        self.start_server()
        a = self.create_job({"name": "ev-a", "command": ["true"], "namespace": "team-a",
                             "schedules": [{"every": "1h"}]})
        b = self.create_job({"name": "ev-b", "command": ["true"], "namespace": "team-b",
                             "schedules": [{"every": "1h"}]})
        for j in (a, b):
            self.ok("POST", "/v1/jobs/%s/pause" % j["id"])
            self.ok("POST", "/v1/jobs/%s/trigger" % j["id"])
        evs = read_all(self, self.srv, self.token, query="?job=" + a["id"])
        self.assertEqual([e["type"] for e in evs],
                         ["job.created", "job.paused", "run.pending"])
        evs = read_all(self, self.srv, self.token, query="?type=job.paused,run")
        self.assertEqual([(e["type"], e["data"]["job_id"]) for e in evs],
                         [("job.paused", a["id"]), ("run.pending", a["id"]),
                          ("job.paused", b["id"]), ("run.pending", b["id"])])
        # A viewer of team-a sees team-a's events only, and no worker's.
        self.start_worker()
        rc, out, err = self.cli("tokens", "create", "--name", "va", "--role", "viewer",
                                "--ns", "team-a")
        self.assertEqual(rc, 0, err)
        viewer = out.strip().split()[-1]
        evs = read_all(self, self.srv, viewer)
        self.assertTrue(evs)
        self.assertEqual({e["data"]["namespace"] for e in evs}, {"team-a"})

    def test_bad_input_and_lost_resume_points(self):
        self.start_server()
        for q, field in (("?type=bogus", "query.type"), ("?type=run.", "query.type"),
                         ("?job=nope", "query.job"), ("?after=-1", "query.after"),
                         ("?after=x", "query.after")):
            self.assert_problem(self.api("GET", "/v1/events" + q), 400, field)
        self.assert_problem(self.api("GET", "/v1/events", headers={"Last-Event-ID": "1e3"}),
                            400, "header.Last-Event-ID")
        # An id this log never had.
        self.assert_problem(self.api("GET", "/v1/events?after=999999"), 410, "query.after")
        st, _, _ = self.api("GET", "/v1/events", token=None)
        self.assertEqual(st, 401)

    def test_retention_makes_an_old_resume_point_gone(self):
        self.start_server(extra=["--events-retention", "1s"])
        for _ in range(2):  # the newest event is always kept
            self.create_job(self.sh_job("true", schedules=[{"every": "1h"}]))

        def gone():
            # A 200 is a stream that does not end: look at the status only.
            s = EventStream(self.srv, self.token, "?after=0")
            v = s.problem() if s.status == 410 else None
            s.close()
            return v
        v = wait_until(gone, 15, msg="old events pruned")
        self.assertEqual(v["field"], "query.after")
        self.assertIn("gone", v["detail"])
        # The newest event is kept, so the log goes on from where it was.
        job = self.create_job(self.sh_job("true", schedules=[{"every": "1h"}]))
        st, _, v = self.api("GET", "/v1/jobs/" + job["id"])
        self.assertEqual(st, 200)

    def test_sked_watch(self):
        self.start_server()
        job = self.create_job(self.sh_job("true", schedules=[{"every": "1h"}]))
        self.ok("POST", "/v1/jobs/%s/pause" % job["id"])
        rc, out, err = self.cli("watch", "--after", "0", "--count", "2", "--job", job["name"])
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(len(lines), 2, out)
        self.assertIn("job.created", lines[0])
        self.assertIn("job=" + job["id"], lines[0])
        self.assertIn("job.paused", lines[1])
        rc, out, err = self.cli("watch", "--after", "0", "--count", "1", "-o", "json",
                                "--type", "job.paused")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["job_id"], job["id"])
        # Live: a change made after watch starts.
        res = {}

        def watch():
            res["r"] = self.cli("watch", "--count", "1", "--type", "job.resumed", timeout=30)
        t = threading.Thread(target=watch)
        t.start()
        time.sleep(1.0)
        self.ok("POST", "/v1/jobs/%s/resume" % job["id"])
        t.join(40)
        rc, out, err = res["r"]
        self.assertEqual(rc, 0, err)
        self.assertIn("job.resumed", out)
        rc, out, err = self.cli("watch", "--after", "99999999")
        self.assertEqual(rc, 1)
        self.assertIn("no event 99999999", err)
        rc, out, err = self.cli("watch", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: sked watch", out)


class TestEventsCluster(ClusterTestCase):
    def test_every_server_streams_every_change_and_resumes_elsewhere(self):
        a = self.start_pg_server("a")
        b = self.start_pg_server("b")
        self.start_cluster_worker("w1", self.server_list(), slots=4)
        first = read_all(self, a, self.token)
        start = first[-1]["id"] if first else 0

        # Jobs submitted through both servers at once, while a client reads
        # from A, disconnects, and resumes from B, and so on.
        errors = []

        def churn(srv):
            try:
                for i in range(40):
                    self.ok("POST", "/v1/jobs", {"name": "c-%s-%d" % (srv.port, i),
                                                 "command": ["true"],
                                                 "env": {"E2E_SKED_TMP": self.tmp}}, srv=srv)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        ts = [threading.Thread(target=churn, args=(s,)) for s in (a, b)]
        for t in ts:
            t.start()
        try:
            seen, last = read_in_pieces(self, [a, b] * 4, start, 9)
        finally:
            for t in ts:
                t.join()
        self.assertEqual(errors, [])
        wait_until(lambda: len([r for r in self.list_all("/v1/runs")
                                if r["state"] == "succeeded"]) == 80, 60,
                   msg="every run done")
        seen += read_all(self, b, self.token, after=last)
        on_a = read_all(self, a, self.token, after=start)
        on_b = read_all(self, b, self.token, after=start)
        self.assertEqual(on_a, on_b)
        self.assertEqual([e["id"] for e in seen], [e["id"] for e in on_a])
        self.assertEqual(seen, on_a)
        types = [e["type"] for e in on_a]
        self.assertEqual(types.count("job.created"), 80)
        self.assertEqual(types.count("run.succeeded"), 80)

    def test_a_change_on_one_server_reaches_a_stream_on_another(self):
        a = self.start_pg_server("a")
        b = self.start_pg_server("b")
        s = EventStream(a, self.token)
        job = self.ok("POST", "/v1/jobs", {"name": "x", "command": ["true"],
                                           "schedules": [{"every": "1h"}]}, srv=b)
        self.ok("POST", "/v1/jobs/%s/trigger" % job["id"], srv=b)
        evs = s.take_until(lambda e: e["type"] == "run.pending", timeout=10)
        s.close()
        self.assertEqual([e["type"] for e in evs], ["job.created", "run.pending"])


if __name__ == "__main__":
    unittest.main()
