"""Alerts end to end (issue 9, point 3): real `sked` servers and workers,
a real webhook receiver and a real SMTP server (sinks.py).

Each condition is produced for real and its notice awaited at the
receiver: a failure and its retries, a start and a finish SLA missed while
the run is late, an overrun, fire times missed while no server was up, a
worker killed with SIGKILL, a queue's backlog. Delivery is checked for
what a user relies on: every notice arrives once, signed, after the
receiver was down for a while and after the server was killed between
the commit of an alert and its delivery; e-mail goes through a real SMTP
server. Secrets never show in answers, the audit log or the server's log.
Bad rules and specs are refused naming the field.
"""

import json
import os
import time
import unittest

from skedtest import SLOW, SkedTestCase, wait_until
from sinks import SmtpSink, WebhookSink
from pgcluster import ClusterTestCase, free_port
from test_events import read_all

SECRET = "wh-s3cret-7f3a"


def events(sink, cond=None):
    """(event, condition, state) of every request the sink took, in order."""
    out = []
    for r in sink.all():
        try:
            doc = r.json()
        except ValueError:
            continue
        if cond and doc.get("condition") != cond:
            continue
        out.append((doc.get("event"), doc.get("condition"), doc.get("state")))
    return out


class AlertsTest(SkedTestCase):

    def alert_job(self, script, alerts, **fields):
        return self.create_job(self.sh_job(script, alerts=alerts, **fields))

    def alerts_of(self, job_id, **q):
        query = "&".join("%s=%s" % kv for kv in sorted(q.items()))
        return self.list_all("/v1/alerts?job=%s%s" % (job_id, "&" + query if query else ""))

    def wait_events(self, sink, want, cond=None, timeout=30.0):
        """Waits until the sink took exactly the notices want (a list of
        (event, condition)) for cond, in order; more fails at once."""
        def seen():
            got = [(e, c) for e, c, _ in events(sink, cond)]
            if len(got) > len(want):
                raise AssertionError("more notices than expected: %r" % got)
            return got == want
        wait_until(seen, timeout, msg="notices %r (have %r)" % (want, events(sink, cond)))

    # ---- failed and retrying --------------------------------------------

    def test_failure_and_retries_notify_signed_once(self):
        with WebhookSink(secret=SECRET) as hook:
            srv = self.start_dev(slots=1)
            job = self.alert_job(
                "exit 3", [{"on": ["failed", "retrying"], "webhook": hook.url(), "secret": SECRET}],
                retry={"max_attempts": 3, "initial": "500ms", "jitter": False})
            # Attempt 1 fails: retrying opens; attempt 2: nothing new; attempt 3:
            # retrying resolves and failed opens.
            self.wait_events(hook, [("opened", "retrying"), ("resolved", "retrying"),
                                    ("opened", "failed")])
            for r in hook.all():
                self.assertTrue(r.signature_ok, "X-Sked-Signature does not check out")
                self.assertEqual(r.headers.get("content-type"), "application/json")
            failed = [r.json() for r in hook.all() if r.json()["condition"] == "failed"][0]
            self.assertEqual(failed["state"], "open")
            self.assertEqual(failed["subject"], {"kind": "job", "id": job["id"],
                                                 "name": job["name"]})
            self.assertIn("after 3 attempts: exit code 3", failed["detail"])
            # More failures of the job page nobody: the alert is open.
            self.ok("POST", "/v1/jobs/%s/trigger" % job["id"], expect=201)
            wait_until(lambda: len(self.runs_of(job["id"])) == 2 and all(
                r["state"] == "failed" for r in self.runs_of(job["id"])), 20)
            self.wait_events(hook, [("opened", "failed")], cond="failed")

            # A later success resolves it, with a notice.
            self.ok("PATCH", "/v1/jobs/%s" % job["id"], {"command": ["/bin/true"]})
            self.ok("POST", "/v1/jobs/%s/trigger" % job["id"], expect=201)
            self.wait_events(hook, [("opened", "failed"), ("resolved", "failed")], cond="failed")
            open_alerts = self.alerts_of(job["id"], state="open")
            self.assertEqual(open_alerts, [])
            # The receiver has the notice before the server has recorded
            # its answer: wait for the record, then check it.
            def deliveries():
                a = self.ok("GET", "/v1/alerts/%s" % failed["id"])
                return [(d["event"], d["state"], d["tries"]) for d in a["deliveries"]]
            wait_until(lambda: all(d[1] != "pending" for d in deliveries()), 10,
                       msg="the resolved notice to be recorded as delivered")
            self.assertEqual(deliveries(), [("opened", "sent", 1), ("resolved", "sent", 1)])
            alert = self.ok("GET", "/v1/alerts/%s" % failed["id"])
            self.assertIn("succeeded", alert["resolve_detail"])

            # The secret shows nowhere: job answers, lists, the audit log, the
            # CLI, the server's log.
            for path in ("/v1/jobs/%s" % job["id"], "/v1/jobs?limit=100", "/v1/audit?limit=1000",
                         "/v1/alerts?limit=100", "/v1/alerts/%s" % failed["id"]):
                st, _, v = self.api("GET", path)
                self.assertEqual(st, 200)
                self.assertNotIn(SECRET, json.dumps(v), path)
            shown = self.ok("GET", "/v1/jobs/%s" % job["id"])
            self.assertEqual(shown["alerts"][0]["secret"], "***")
            out = self.cli_ok("jobs", "get", job["id"], "-o", "json")
            self.assertNotIn(SECRET, out)
            self.assertNotIn(SECRET, srv.proc.stderr_text())
            # A job read back and sent again keeps its secret.
            self.ok("PATCH", "/v1/jobs/%s" % job["id"], {"alerts": shown["alerts"],
                                                         "command": ["/bin/false"]})
            self.ok("POST", "/v1/jobs/%s/trigger" % job["id"], expect=201)
            self.wait_events(hook, [("opened", "failed"), ("resolved", "failed"),
                                    ("opened", "failed")], cond="failed")
            self.assertTrue(all(r.signature_ok for r in hook.all()))

    def test_cli_lists_and_acks(self):
        with WebhookSink() as hook:
            self.start_dev(slots=1)
            job = self.alert_job("exit 1", [{"on": ["failed"], "webhook": hook.url()}])
            self.wait_events(hook, [("opened", "failed")])
            out = self.cli_ok("alerts", "ls", "--state", "open", "--job", job["name"])
            self.assertIn("failed", out)
            self.assertIn(job["name"], out)
            items = json.loads(self.cli_ok("alerts", "ls", "--job", job["id"], "-o", "json"))
            alert_id = items["items"][0]["id"]
            out = self.cli_ok("alerts", "ack", alert_id)
            self.assertIn("acknowledged by admin", out)
            a = self.ok("GET", "/v1/alerts/%s" % alert_id)
            self.assertEqual(a["acked_by"], "admin")
            self.assertIsNotNone(a["acked_at"])
            out = self.cli_ok("alerts", "get", alert_id)
            self.assertIn("acked:      by admin", out)
            # Acknowledged: it still resolves, but sends no resolved notice.
            self.ok("PATCH", "/v1/jobs/%s" % job["id"], {"command": ["/bin/true"]})
            self.ok("POST", "/v1/jobs/%s/trigger" % job["id"], expect=201)
            wait_until(lambda: self.ok("GET", "/v1/alerts/%s" % alert_id)["state"] == "resolved",
                       20)
            time.sleep(1.0)  # a notice, were one sent, would have been by now
            self.assertEqual(events(hook), [("opened", "failed", "open")])
            # The event stream has the alert's life too.
            evs = read_all(self, self.srv, self.token, query="?type=alert")
            self.assertEqual([e["type"] for e in evs],
                             ["alert.opened", "alert.acked", "alert.resolved"])
            for e in evs:
                self.assertEqual(e["data"]["job_id"], job["id"])
                self.assertEqual(e["data"]["alert_id"], alert_id)
                self.assertTrue(e["data"]["detail"].startswith("failed: "))
            st, _, _ = self.api("POST", "/v1/alerts/alr_01JD0000000000000000000000/ack")
            self.assertEqual(st, 404)
            rc, _, _ = self.cli("alerts", "ack")
            self.assertEqual(rc, 2)
            rc, _, err = self.cli("alerts", "ls", "--state", "sideways")
            self.assertEqual(rc, 2)
            self.assertIn("--state", err)

    # ---- time-based conditions ------------------------------------------

    def test_sla_start_and_finish_while_late(self):
        with WebhookSink() as hook:
            self.start_server(heartbeat="500ms")
            job = self.alert_job(
                "sleep 6", [{"on": ["sla_missed"], "webhook": hook.url()}],
                queue="sla-q", sla={"start_within": "2s", "finish_within": "5s"})
            # No worker serves its queue: late to start, told while still late.
            self.wait_events(hook, [("opened", "sla_missed")], timeout=15)
            self.assertEqual(self.runs_of(job["id"])[0]["state"], "pending")
            doc = hook.all()[0].json()
            self.assertIn("has not started", doc["detail"])
            # It starts: resolved. Still running past finish_within: opened again,
            # while it runs; done: resolved.
            self.start_worker(queues="sla-q")
            self.wait_events(hook, [("opened", "sla_missed"), ("resolved", "sla_missed")],
                             timeout=15)
            self.wait_events(hook, [("opened", "sla_missed"), ("resolved", "sla_missed"),
                                    ("opened", "sla_missed")], timeout=15)
            self.assertEqual(self.runs_of(job["id"])[0]["state"], "running")
            self.assertIn("has not finished", hook.all()[2].json()["detail"])
            self.wait_events(hook, [("opened", "sla_missed"), ("resolved", "sla_missed"),
                                    ("opened", "sla_missed"), ("resolved", "sla_missed")],
                             timeout=20)
            self.assertEqual(self.runs_of(job["id"])[0]["state"], "succeeded")

    def test_overrun(self):
        with WebhookSink() as hook:
            self.start_dev(slots=1)
            slow = self.path("slow")
            job = self.alert_job(
                "if [ -f %s ]; then sleep 8; else sleep 0.2; fi" % slow,
                [{"on": ["overrun"], "webhook": hook.url(), "overrun_factor": 3,
                  "overrun_min_samples": 3}])
            for n in range(2, 4):
                wait_until(lambda: all(r["state"] == "succeeded" for r in self.runs_of(job["id"])),
                           20)
                self.ok("POST", "/v1/jobs/%s/trigger" % job["id"], expect=201)
            wait_until(lambda: len(self.runs_of(job["id"])) == 3 and all(
                r["state"] == "succeeded" for r in self.runs_of(job["id"])), 20)
            self.assertEqual(events(hook), [])
            open(slow, "w").close()
            self.ok("POST", "/v1/jobs/%s/trigger" % job["id"], expect=201)
            self.wait_events(hook, [("opened", "overrun")], timeout=15)
            running = [r for r in self.runs_of(job["id"]) if r["state"] == "running"]
            self.assertEqual(len(running), 1, "told while the attempt still runs")
            self.assertIn("3 x the p95", hook.all()[0].json()["detail"])
            self.wait_events(hook, [("opened", "overrun"), ("resolved", "overrun")], timeout=20)

    def test_missed_after_outage(self):
        with WebhookSink() as hook:
            port = free_port()
            extra = ["--listen", "127.0.0.1:%d" % port]
            srv = self.start_server(heartbeat="500ms", extra=extra)
            self.start_worker()
            job = self.alert_job("true", [{"on": ["missed"], "webhook": hook.url(),
                                           "missed_window": "2s"}],
                                 schedules=[{"every": "3s"}])
            wait_until(lambda: sum(r["state"] == "succeeded"
                                   for r in self.runs_of(job["id"])) >= 2, 20)
            self.assertEqual(events(hook), [])
            # No server up across several fire times.
            srv.proc.stop()
            time.sleep(10)
            self.start_server(heartbeat="500ms", extra=extra, name="server2")
            self.wait_events(hook, [("opened", "missed")], timeout=20)
            doc = hook.all()[0].json()
            self.assertEqual(doc["subject"]["id"], job["id"])
            # The dead man's switch resets once fire times are kept again.
            self.wait_events(hook, [("opened", "missed"), ("resolved", "missed")], timeout=30)

    def test_worker_lost(self):
        with WebhookSink() as hook:
            self.start_server(lease="2s", heartbeat="400ms")
            self.ok("POST", "/v1/alert-rules", {"name": "lost-workers", "on": ["worker_lost"],
                                                 "channels": [{"webhook": hook.url()}]},
                    expect=201)
            w, wid = self.start_worker(name="w-doomed")
            w.kill9()
            self.wait_events(hook, [("opened", "worker_lost")], timeout=30)
            doc = hook.all()[0].json()
            self.assertEqual(doc["subject"], {"kind": "worker", "id": wid, "name": "w-doomed"})
            self.assertIsNone(doc["job_id"])
            # Back under the same name: the same worker again, resolved.
            self.start_worker(name="w-doomed")
            self.wait_events(hook, [("opened", "worker_lost"), ("resolved", "worker_lost")],
                             timeout=20)

    def test_backlog(self):
        with WebhookSink() as hook:
            self.start_server(heartbeat="500ms")
            self.ok("POST", "/v1/alert-rules", {
                "name": "bq-backlog", "on": ["backlog"], "scope": {"queue": "bq"},
                "backlog_depth": 2, "backlog_for": "2s",
                "channels": [{"webhook": hook.url()}]}, expect=201)
            for i in range(4):
                self.create_job(self.sh_job("true", queue="bq"))
            self.wait_events(hook, [("opened", "backlog")], timeout=15)
            doc = hook.all()[0].json()
            self.assertEqual(doc["subject"], {"kind": "queue", "id": "bq", "name": "bq"})
            self.start_worker(queues="bq", slots=4)
            self.wait_events(hook, [("opened", "backlog"), ("resolved", "backlog")], timeout=20)

    # ---- delivery --------------------------------------------------------

    def test_receiver_down_then_up_every_alert_once(self):
        with WebhookSink(secret=SECRET) as hook:
            hook.down()
            self.start_server(heartbeat="500ms", extra=["--alert-retry-max", "1s"])
            self.start_worker(slots=4)
            self.ok("POST", "/v1/alert-rules", {
                "name": "all-failures", "on": ["failed"],
                "channels": [{"webhook": hook.url(), "secret": SECRET}]}, expect=201)
            jobs = [self.create_job(self.sh_job("exit 2")) for _ in range(5)]
            ids = []
            for j in jobs:
                wait_until(lambda: len(self.alerts_of(j["id"])) == 1, 20)
                ids.append(self.alerts_of(j["id"])[0]["id"])
            # Tried and failed while the receiver is down, the error kept.
            def tried():
                a = self.ok("GET", "/v1/alerts/%s" % ids[0])
                d = a["deliveries"][0]
                return d["tries"] >= 2 and d["state"] == "pending" and d["last_error"]
            wait_until(tried, 20)
            self.assertEqual(hook.all(), [])
            hook.up()
            wait_until(lambda: len(hook.delivered()) >= 5, 30)
            time.sleep(2.0)  # a duplicate, were one sent, would be in by now
            got = [r.json()["id"] for r in hook.delivered()]
            self.assertEqual(sorted(got), sorted(ids), "each alert exactly once")
            deliveries = [r.headers.get("x-sked-delivery") for r in hook.delivered()]
            self.assertEqual(len(set(deliveries)), 5)
            for i in ids:
                d = self.ok("GET", "/v1/alerts/%s" % i)["deliveries"][0]
                self.assertEqual(d["state"], "sent")

    def test_server_killed_between_commit_and_delivery(self):
        with WebhookSink() as hook:
            hook.down()
            port = free_port()
            extra = ["--listen", "127.0.0.1:%d" % port, "--alert-retry-max", "1s"]
            srv = self.start_server(heartbeat="500ms", extra=extra)
            self.start_worker()
            job = self.alert_job("exit 5", [{"on": ["failed"], "webhook": hook.url()}])
            wait_until(lambda: len(self.alerts_of(job["id"])) == 1, 20)
            alert_id = self.alerts_of(job["id"])[0]["id"]
            srv.proc.kill9()
            hook.up()
            self.start_server(heartbeat="500ms", extra=extra, name="server2")
            wait_until(lambda: len(hook.delivered()) >= 1, 30)
            time.sleep(1.5)
            self.assertEqual([r.json()["id"] for r in hook.delivered()], [alert_id])
            self.assertEqual(self.ok("GET", "/v1/alerts/%s" % alert_id)["deliveries"][0]["state"],
                             "sent")

    def test_gives_up_after_the_last_try(self):
        with WebhookSink() as hook:
            hook.answer(503)
            self.start_server(heartbeat="500ms",
                              extra=["--alert-tries", "2", "--alert-retry-max", "1s"])
            self.start_worker()
            job = self.alert_job("exit 1", [{"on": ["failed"], "webhook": hook.url()}])
            wait_until(lambda: len(self.alerts_of(job["id"])) == 1, 20)
            alert_id = self.alerts_of(job["id"])[0]["id"]
            wait_until(lambda: self.ok("GET", "/v1/alerts/%s" % alert_id)["deliveries"][0]
                       ["state"] == "failed", 30)
            d = self.ok("GET", "/v1/alerts/%s" % alert_id)["deliveries"][0]
            self.assertEqual(d["tries"], 2)
            self.assertIn("503", d["last_error"])
            self.assertEqual(len(hook.all()), 2)

    def test_email_through_smtp(self):
        with SmtpSink(self.path("smtp")) as smtp:
            self.start_server(heartbeat="500ms", extra=[
                "--smtp-url", smtp.url, "--smtp-from", "sked <sked@example.test>"])
            self.start_worker()
            job = self.alert_job("exit 4", [{"on": ["failed"], "email": "oncall@example.test"}])
            smtp.wait_for(1, timeout=30)
            m = smtp.messages()[0]
            self.assertEqual(m.rcpt_tos, ["oncall@example.test"])
            self.assertTrue(m.msg["Subject"].startswith("[sked] FAILED %s (run run_" % job["name"]),
                            m.msg["Subject"])
            self.assertIn("exit code 4", m.msg.get_body().get_content())

    # ---- bad input ---------------------------------------------------------

    def test_bad_rules_and_specs_are_refused(self):
        self.start_server()
        good = {"name": "r", "on": ["failed"], "channels": [{"webhook": "https://h.test/x"}]}
        cases = [
            ({"name": "r", "on": ["failed", "bogus"], "channels": good["channels"]}, "on[1]"),
            ({"name": "r", "on": [], "channels": good["channels"]}, "on"),
            ({"on": ["failed"], "channels": good["channels"]}, "name"),
            ({"name": "r", "on": ["failed"]}, "channels"),
            ({"name": "r", "on": ["failed"], "channels": [{"webhook": "ftp://x"}]},
             "channels[0].webhook"),
            ({"name": "r", "on": ["failed"], "channels": [{"email": "a@b\r\nBcc: c@d"}]},
             "channels[0].email"),
            ({"name": "r", "on": ["failed"], "channels": [{"slack": "https://h", "secret": "x"}]},
             "channels[0].secret"),
            ({"name": "r", "on": ["failed"], "overrun_factor": 2, "channels": good["channels"]},
             "overrun_factor"),
            ({"name": "r", "on": ["backlog"], "backlog_for": "soon", "channels": good["channels"]},
             "backlog_for"),
            ({"name": "r", "on": ["failed"], "scope": {"pool": "x"}, "channels": good["channels"]},
             "scope.pool"),
        ]
        for body, field in cases:
            st, _, v = self.api("POST", "/v1/alert-rules", body)
            self.assert_problem((st, _, v), 400, field)
        self.assertEqual(self.ok("GET", "/v1/alert-rules")["items"], [])

        rule = self.ok("POST", "/v1/alert-rules", dict(good, channels=[
            {"webhook": "https://h.test/x", "secret": SECRET}]), expect=201)
        self.assertEqual(rule["channels"][0]["secret"], "***")
        st, _, v = self.api("POST", "/v1/alert-rules", good)
        self.assert_problem((st, _, v), 409, "name")
        # Sent back as read: the secret is kept; "***" with another URL is refused.
        back = self.ok("PUT", "/v1/alert-rules/%s" % rule["id"], dict(rule, on=["retrying"]))
        self.assertEqual(back["on"], ["retrying"])
        self.assertEqual(back["version"], 2)
        moved = dict(back, channels=[{"webhook": "https://other.test/", "secret": "***"}])
        st, _, v = self.api("PUT", "/v1/alert-rules/%s" % rule["id"], moved)
        self.assert_problem((st, _, v), 400, "channels[0].secret")
        st, _, v = self.api("PUT", "/v1/alert-rules/%s" % rule["id"], dict(good),
                            headers={"If-Match": '"1"'})
        self.assert_problem((st, _, v), 412, "header.If-Match")
        for path in ("/v1/alert-rules", "/v1/alert-rules/%s" % rule["id"], "/v1/audit"):
            self.assertNotIn(SECRET, json.dumps(self.ok("GET", path)))
        st, _, v = self.api("GET", "/v1/alerts?state=maybe")
        self.assert_problem((st, _, v), 400, "query.state")
        st, _, v = self.api("GET", "/v1/alerts?condition=boredom")
        self.assert_problem((st, _, v), 400, "query.condition")

        specs = [
            ({"alerts": [{"on": ["failed", "worker_lost"], "webhook": "https://h"}]},
             "alerts[0].on[1]"),
            ({"alerts": [{"on": ["sla_missed"], "webhook": "https://h"}]}, "alerts[0].on[0]"),
            ({"alerts": [{"on": ["failed"]}]}, "alerts[0]"),
            ({"alerts": [{"on": ["failed"], "webhook": "https://h", "secret": "***"}]},
             "alerts[0].secret"),
            ({"sla": {"start_within": "never"}}, "sla.start_within"),
            ({"sla": {}}, "sla"),
        ]
        for extra, field in specs:
            body = dict(self.sh_job("true"), name="bad", **extra)
            st, _, v = self.api("POST", "/v1/jobs", body)
            self.assert_problem((st, _, v), 400, field)
        self.assertEqual(self.ok("GET", "/v1/jobs")["items"], [])


class AlertsClusterTest(ClusterTestCase):
    """Three servers on one PostgreSQL: every server evaluates and delivers,
    yet each alert opens once and each notice is sent once."""

    def test_three_servers_one_alert_one_notice_each(self):
        with WebhookSink() as hook:
            for i in range(3):
                self.start_pg_server("srv%d" % i, heartbeat="500ms")
            self.ok("POST", "/v1/alert-rules", {
                "name": "everything", "on": ["failed", "sla_missed"],
                "channels": [{"webhook": hook.url()}]}, expect=201)
            # Late: no worker serves their queue; each server's evaluator sees it.
            late = [self.create_job(self.sh_job("true", queue="nobody",
                                                sla={"start_within": "1s"}))
                    for _ in range(4)]
            self.start_cluster_worker("w", self.server_list(), slots=4)
            failing = [self.create_job(self.sh_job("exit 7")) for _ in range(6)]
            want = {(j["id"], "sla_missed") for j in late} | {(j["id"], "failed")
                                                               for j in failing}
            def notices():
                return {(r.json()["subject"]["id"], r.json()["condition"])
                        for r in hook.delivered() if r.json()["event"] == "opened"}
            wait_until(lambda: notices() >= want, 40,
                       msg="an opened notice per alert (have %d of %d)" % (len(notices()),
                                                                           len(want)))
            time.sleep(3.0)  # evaluators and deliverers keep going on every server
            opened = [(r.json()["subject"]["id"], r.json()["condition"])
                      for r in hook.delivered() if r.json()["event"] == "opened"]
            self.assertEqual(sorted(opened), sorted(want), "each alert told once")
            ids = [r.headers.get("x-sked-delivery") for r in hook.delivered()]
            self.assertEqual(len(ids), len(set(ids)), "no notice sent twice")
            for j in late + failing:
                self.assertEqual(len(self.list_all("/v1/alerts?job=%s" % j["id"])), 1)


if __name__ == "__main__":
    unittest.main()
