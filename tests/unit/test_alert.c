/*
 * Unit tests for core/alert: alert rules (global documents and a job's own
 * "alerts", through jobspec), which are refused and under which field, the
 * canonical round trip, write-only secrets (masked on the way out, kept
 * when sent back masked), and the pure decisions of the alerter: the p95
 * and the overrun threshold, SLA lateness, kept fire times, backlog
 * timing, and the words of a notice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "core/alert.h"
#include "core/alertspec.h"
#include "core/jobspec.h"

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!j) fail_msg("bad test JSON (%s): %s", jerr.text, text);
    return j;
}

static void rule_ok(const char *text, alert_rule_spec_t *out)
{
    json_t *doc = load(text);
    jobspec_error_t err;
    if (alert_rule_parse(doc, out, &err) != 0)
        fail_msg("rejected %s: field '%s': %s", text, err.field, err.detail);
    json_decref(doc);
}

/* A rule document that must be refused, blaming field. */
static void rule_bad(const char *text, const char *field)
{
    json_t *doc = load(text);
    jobspec_error_t err;
    alert_rule_spec_t r;
    int rc = alert_rule_parse(doc, &r, &err);
    if (rc != SKED_EINVAL) fail_msg("accepted %s", text);
    if (strcmp(err.field, field) != 0)
        fail_msg("%s: blamed '%s' (%s), want '%s'", text, err.field, err.detail, field);
    assert_true(strlen(err.detail) > strlen(field)); /* a sentence, not just the name */
    json_decref(doc);
}

static void job_bad(const char *text, const char *field)
{
    json_t *doc = load(text);
    jobspec_error_t err;
    jobspec_t spec;
    int rc = jobspec_parse(doc, &spec, &err);
    if (rc != SKED_EINVAL) fail_msg("accepted %s", text);
    if (strcmp(err.field, field) != 0)
        fail_msg("%s: blamed '%s' (%s), want '%s'", text, err.field, err.detail, field);
    json_decref(doc);
}

static void expect_json(json_t *got, const char *want)
{
    json_t *w = load(want);
    if (!json_equal(got, w)) {
        char *g = json_dumps(got, JSON_SORT_KEYS), *x = json_dumps(w, JSON_SORT_KEYS);
        fail_msg("\n got: %s\nwant: %s", g, x);
    }
    json_decref(w);
}

#define JOB_HEAD "{\"name\":\"j\",\"command\":[\"true\"],\"schedules\":[{\"every\":\"1m\"}],"

/* ---- global rules ---- */

static void test_rule_parse_and_canonical(void **state)
{
    alert_rule_spec_t r;
    rule_ok("{\"name\":\"ops\",\"on\":[\"overrun\",\"failed\",\"backlog\"],"
            "\"scope\":{\"namespace\":\"team-a\",\"tag\":\"etl\"},"
            "\"channels\":[{\"webhook\":\"https://h.example/x\",\"secret\":\"k1\"},"
            "{\"email\":\"a@x.org, b@y.org\"},{\"slack\":\"https://hooks.slack.test/T/B\"}],"
            "\"overrun_factor\":3,\"backlog_depth\":50,\"backlog_for\":\"90s\"}",
            &r);
    assert_int_equal(r.conds,
                     ALERT_BIT(ALERT_FAILED) | ALERT_BIT(ALERT_OVERRUN) | ALERT_BIT(ALERT_BACKLOG));
    assert_string_equal(r.scope_ns, "team-a");
    assert_string_equal(r.scope_queue, "");
    assert_string_equal(r.scope_tag, "etl");
    assert_int_equal(r.nchannels, 3);
    assert_int_equal(r.channels[0].kind, ALERT_CHANNEL_WEBHOOK);
    assert_string_equal(r.channels[0].secret, "k1");
    assert_string_equal(r.channels[1].target, "a@x.org,b@y.org");
    assert_null(r.channels[2].secret);
    assert_true(r.params.overrun_factor == 3.0);
    assert_int_equal(r.params.overrun_min_samples, 5); /* default */
    assert_int_equal(r.params.backlog_for_ms, 90000);

    /* Canonical: conditions in their fixed order, the parameters of the
     * rule's conditions with defaults filled in, and it parses back to
     * the same document. */
    json_t *doc = alert_rule_to_json(&r);
    const char *canon =
        "{\"name\":\"ops\",\"on\":[\"failed\",\"overrun\",\"backlog\"],"
        "\"scope\":{\"namespace\":\"team-a\",\"tag\":\"etl\"},"
        "\"channels\":[{\"webhook\":\"https://h.example/x\",\"secret\":\"k1\"},"
        "{\"email\":\"a@x.org,b@y.org\"},{\"slack\":\"https://hooks.slack.test/T/B\"}],"
        "\"overrun_factor\":3,\"overrun_min_samples\":5,\"backlog_depth\":50,"
        "\"backlog_for\":\"1m30s\"}";
    expect_json(doc, canon);
    alert_rule_spec_t again;
    jobspec_error_t err;
    assert_int_equal(alert_rule_parse(doc, &again, &err), 0);
    json_t *doc2 = alert_rule_to_json(&again);
    assert_true(json_equal(doc, doc2));

    /* Redacted for every reader. */
    alert_redact(json_object_get(doc, "channels"));
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(doc, "channels"), 0), "secret")),
                        "***");
    json_decref(doc);
    json_decref(doc2);
    alert_rule_spec_clear(&again);
    alert_rule_spec_clear(&r);
}

static void test_rule_bad_input(void **state)
{
    const char *ch = "\"channels\":[{\"webhook\":\"https://h/x\"}]";
    char t[512];
#define BAD(body, field)                                                                           \
    do {                                                                                           \
        snprintf(t, sizeof t, "%s", body);                                                         \
        rule_bad(t, field);                                                                        \
    } while (0)
    BAD("[]", "");
    snprintf(t, sizeof t, "{\"on\":[\"failed\"],%s}", ch);
    rule_bad(t, "name");
    snprintf(t, sizeof t, "{\"name\":\"x\",%s}", ch);
    rule_bad(t, "on");
    snprintf(t, sizeof t, "{\"name\":\"x\",\"on\":[],%s}", ch);
    rule_bad(t, "on");
    snprintf(t, sizeof t, "{\"name\":\"x\",\"on\":[\"failed\",\"exploded\"],%s}", ch);
    rule_bad(t, "on[1]");
    snprintf(t, sizeof t, "{\"name\":\"x\",\"on\":[\"failed\",\"failed\"],%s}", ch);
    rule_bad(t, "on[1]");
    snprintf(t, sizeof t, "{\"name\":\"x\",\"on\":[\"failed\"],\"bogus\":1,%s}", ch);
    rule_bad(t, "bogus");
    BAD("{\"name\":\"x\",\"on\":[\"failed\"]}", "channels");
    BAD("{\"name\":\"x\",\"on\":[\"failed\"],\"channels\":[]}", "channels");
    BAD("{\"name\":\"x\",\"on\":[\"failed\"],\"channels\":[{}]}", "channels[0]");
    BAD("{\"name\":\"x\",\"on\":[\"failed\"],\"channels\":[{\"webhook\":\"ftp://h\"}]}",
        "channels[0].webhook");
    BAD("{\"name\":\"x\",\"on\":[\"failed\"],\"channels\":[{\"webhook\":\"https://\"}]}",
        "channels[0].webhook");
    BAD("{\"name\":\"x\",\"on\":[\"failed\"],\"channels\":[{\"webhook\":\"https://h/a b\"}]}",
        "channels[0].webhook");
    BAD("{\"name\":\"x\",\"on\":[\"failed\"],\"channels\":[{\"webhook\":\"https://h\","
        "\"slack\":\"https://h\"}]}",
        "channels[0]");
    BAD("{\"name\":\"x\",\"on\":[\"failed\"],\"channels\":[{\"email\":\"nobody\"}]}",
        "channels[0].email");
    /* A header injection through a recipient is refused. */
    BAD("{\"name\":\"x\",\"on\":[\"failed\"],\"channels\":[{\"email\":\"a@b\\r\\nBcc: c@d\"}]}",
        "channels[0].email");
    BAD("{\"name\":\"x\",\"on\":[\"failed\"],\"channels\":[{\"slack\":\"https://h\","
        "\"secret\":\"s\"}]}",
        "channels[0].secret");
    BAD("{\"name\":\"x\",\"on\":[\"failed\"],\"channels\":[{\"webhook\":\"https://h\","
        "\"secret\":\"***\"}]}",
        "channels[0].secret");
    snprintf(t, sizeof t, "{\"name\":\"x\",\"on\":[\"failed\"],\"overrun_factor\":2,%s}", ch);
    rule_bad(t, "overrun_factor");
    snprintf(t, sizeof t, "{\"name\":\"x\",\"on\":[\"overrun\"],\"overrun_factor\":0.5,%s}", ch);
    rule_bad(t, "overrun_factor");
    snprintf(t, sizeof t, "{\"name\":\"x\",\"on\":[\"missed\"],\"missed_window\":\"0s\",%s}", ch);
    rule_bad(t, "missed_window");
    snprintf(t, sizeof t, "{\"name\":\"x\",\"on\":[\"backlog\"],\"backlog_depth\":-1,%s}", ch);
    rule_bad(t, "backlog_depth");
    snprintf(t, sizeof t, "{\"name\":\"x\",\"on\":[\"failed\"],\"scope\":{\"queue\":\"a,b\"},%s}",
             ch);
    rule_bad(t, "scope.queue");
    snprintf(t, sizeof t, "{\"name\":\"x\",\"on\":[\"failed\"],\"scope\":{\"host\":\"a\"},%s}", ch);
    rule_bad(t, "scope.host");
#undef BAD
}

/* ---- a job's own alerts ---- */

static void test_job_alerts_round_trip(void **state)
{
    json_t *doc = load(JOB_HEAD "\"sla\":{\"start_within\":\"2m\",\"finish_within\":\"1h\"},"
                                "\"alerts\":[{\"on\":[\"sla_missed\",\"failed\"],"
                                "\"webhook\":\"https://h.example/x\",\"secret\":\"s3\"},"
                                "{\"on\":[\"overrun\",\"missed\"],\"email\":\"ops@x.org\","
                                "\"missed_window\":\"30s\"}]}");
    jobspec_t spec;
    jobspec_error_t err;
    if (jobspec_parse(doc, &spec, &err) != 0) fail_msg("%s: %s", err.field, err.detail);
    assert_int_equal(spec.sla_start_ms, 120000);
    assert_int_equal(spec.sla_finish_ms, 3600000);
    assert_int_equal(spec.nalerts, 2);
    assert_int_equal(spec.alerts[0].conds, ALERT_BIT(ALERT_FAILED) | ALERT_BIT(ALERT_SLA_MISSED));
    assert_string_equal(spec.alerts[0].channels[0].secret, "s3");
    assert_int_equal(spec.alerts[1].params.missed_window_ms, 30000);

    json_t *canon = jobspec_to_json(&spec);
    expect_json(json_object_get(canon, "sla"),
                "{\"start_within\":\"2m\",\"finish_within\":\"1h\"}");
    expect_json(json_object_get(canon, "alerts"),
                "[{\"on\":[\"failed\",\"sla_missed\"],\"webhook\":\"https://h.example/x\","
                "\"secret\":\"s3\"},{\"on\":[\"overrun\",\"missed\"],\"email\":\"ops@x.org\","
                "\"overrun_factor\":2,\"overrun_min_samples\":5,\"missed_window\":\"30s\"}]");
    jobspec_t again;
    assert_int_equal(jobspec_parse(canon, &again, &err), 0);
    json_t *canon2 = jobspec_to_json(&again);
    assert_true(json_equal(canon, canon2));

    /* Every reader sees the secret masked. */
    json_t *shown = jobspec_redact(canon);
    char *text = json_dumps(shown, 0);
    assert_null(strstr(text, "s3"));
    assert_non_null(strstr(text, "\"secret\": \"***\""));
    free(text);

    /* A job without them has neither member (documents of older jobs stay
     * as they were). */
    json_t *plain = load(JOB_HEAD "\"priority\":1}");
    jobspec_t p;
    assert_int_equal(jobspec_parse(plain, &p, &err), 0);
    json_t *pc = jobspec_to_json(&p);
    assert_null(json_object_get(pc, "sla"));
    assert_null(json_object_get(pc, "alerts"));

    json_decref(pc);
    json_decref(plain);
    jobspec_free(&p);
    json_decref(shown);
    json_decref(canon2);
    json_decref(canon);
    json_decref(doc);
    jobspec_free(&again);
    jobspec_free(&spec);
}

static void test_job_alerts_bad_input(void **state)
{
    job_bad(JOB_HEAD "\"alerts\":{}}", "alerts");
    job_bad(JOB_HEAD
            "\"alerts\":[{\"on\":[\"failed\",\"worker_lost\"],\"webhook\":\"https://h\"}]}",
            "alerts[0].on[1]");
    job_bad(JOB_HEAD "\"alerts\":[{\"on\":[\"sla_missed\"],\"webhook\":\"https://h\"}]}",
            "alerts[0].on[0]");
    job_bad("{\"name\":\"j\",\"command\":[\"true\"],"
            "\"alerts\":[{\"on\":[\"missed\"],\"webhook\":\"https://h\"}]}",
            "alerts[0].on[0]");
    job_bad(JOB_HEAD "\"alerts\":[{\"on\":[\"failed\"]}]}", "alerts[0]");
    job_bad(JOB_HEAD "\"alerts\":[{\"on\":[\"failed\"],\"webhook\":\"https://h\"},"
                     "{\"on\":[\"failed\"],\"webhook\":\"https://h\",\"backlog_depth\":3}]}",
            "alerts[1].backlog_depth");
    job_bad(JOB_HEAD "\"alerts\":[{\"on\":[\"failed\"],\"webhook\":\"https://h\","
                     "\"missed_window\":\"1m\"}]}",
            "alerts[0].missed_window");
    job_bad(JOB_HEAD "\"sla\":{}}", "sla");
    job_bad(JOB_HEAD "\"sla\":{\"start_within\":\"soon\"}}", "sla.start_within");
    job_bad(JOB_HEAD "\"sla\":{\"finish_within\":\"0s\"}}", "sla.finish_within");
    job_bad(JOB_HEAD "\"sla\":{\"start\":\"1m\"}}", "sla.start");
    job_bad(JOB_HEAD "\"sla\":null}", "sla");
}

/* A job read back shows "***" for the secret; sent back so with the same
 * URL it keeps the secret, with another URL it is refused. */
static void test_job_alert_secret_kept_on_patch(void **state)
{
    json_t *doc = load(JOB_HEAD "\"alerts\":[{\"on\":[\"failed\"],\"webhook\":\"https://h/x\","
                                "\"secret\":\"hunter2\"}]}");
    jobspec_t spec, out;
    jobspec_error_t err;
    assert_int_equal(jobspec_parse(doc, &spec, &err), 0);
    json_t *cur = jobspec_to_json(&spec);
    json_t *shown = jobspec_redact(cur);

    json_t *merged = NULL;
    json_t *patch = json_pack("{s:O}", "alerts", json_object_get(shown, "alerts"));
    assert_int_equal(jobspec_patch(cur, patch, &merged, &out, &err), 0);
    assert_string_equal(out.alerts[0].channels[0].secret, "hunter2");
    json_decref(merged);
    jobspec_free(&out);
    json_decref(patch);

    patch = load("{\"alerts\":[{\"on\":[\"failed\"],\"webhook\":\"https://other/x\","
                 "\"secret\":\"***\"}]}");
    assert_int_equal(jobspec_patch(cur, patch, &merged, &out, &err), SKED_EINVAL);
    assert_string_equal(err.field, "alerts[0].secret");
    json_decref(patch);

    /* A PATCH that does not touch alerts keeps them, secret and all. */
    patch = load("{\"priority\":5}");
    assert_int_equal(jobspec_patch(cur, patch, &merged, &out, &err), 0);
    assert_string_equal(out.alerts[0].channels[0].secret, "hunter2");
    json_decref(merged);
    jobspec_free(&out);
    json_decref(patch);

    json_decref(shown);
    json_decref(cur);
    json_decref(doc);
    jobspec_free(&spec);
}

/* ---- decisions ---- */

static void test_p95_and_overrun(void **state)
{
    int64_t d[20];
    for (int i = 0; i < 20; i++)
        d[i] = (20 - i) * 100; /* 100 .. 2000, unsorted */
    /* Nearest rank: ceil(0.95 * 20) = 19th smallest. */
    assert_int_equal(alert_p95_ms(d, 20), 1900);
    int64_t one[] = {700};
    assert_int_equal(alert_p95_ms(one, 1), 700);
    assert_int_equal(alert_p95_ms(NULL, 0), -1);
    int64_t five[] = {10, 50, 20, 40, 30};
    assert_int_equal(alert_p95_ms(five, 5), 50);

    int64_t t = 0;
    int64_t s[] = {1000, 1000, 1000, 1000, 1200};
    assert_false(alert_overrun(2400, s, 5, 2.0, 5, &t));
    assert_int_equal(t, 2400);
    assert_true(alert_overrun(2401, s, 5, 2.0, 5, &t));
    /* Too few samples: never an overrun, however long. */
    assert_false(alert_overrun(INT64_C(1) << 40, s, 4, 2.0, 5, &t));
    assert_int_equal(t, -1);
    assert_false(alert_overrun(INT64_C(1) << 40, NULL, 0, 2.0, 0, &t));
    assert_true(alert_overrun(1501, s, 5, 1.25, 1, NULL));
}

static void test_sla_late(void **state)
{
    const int64_t fire = 1000000, m = 60000;
    assert_int_equal(alert_sla_late(fire, -1, false, 2 * m, 0, fire + 2 * m - 1), 0);
    assert_int_equal(alert_sla_late(fire, -1, false, 2 * m, 0, fire + 2 * m), ALERT_SLA_START_LATE);
    /* Started: no start lateness, however late now is. */
    assert_int_equal(alert_sla_late(fire, fire + 5 * m, false, 2 * m, 0, fire + 60 * m), 0);
    assert_int_equal(alert_sla_late(fire, fire + 1, false, 2 * m, 10 * m, fire + 10 * m),
                     ALERT_SLA_FINISH_LATE);
    assert_int_equal(alert_sla_late(fire, -1, false, 2 * m, 10 * m, fire + 10 * m),
                     ALERT_SLA_START_LATE | ALERT_SLA_FINISH_LATE);
    assert_int_equal(alert_sla_late(fire, fire + 1, true, 2 * m, 10 * m, fire + 99 * m), 0);
    assert_int_equal(alert_sla_late(fire, -1, false, 0, 0, fire + 99 * m), 0);
}

static void test_fire_kept_and_backlog(void **state)
{
    assert_true(alert_fire_kept(1000, 1000, false, 500));
    assert_true(alert_fire_kept(1000, 1500, false, 500));
    assert_false(alert_fire_kept(1000, 1501, false, 500));
    assert_false(alert_fire_kept(1000, -1, false, 500));
    assert_false(alert_fire_kept(1000, 1000, true, 500));

    assert_false(alert_backlog_due(100, 100, 0, 0, 10)); /* at N is not over N */
    assert_false(alert_backlog_due(101, 100, -1, 0, 10));
    assert_false(alert_backlog_due(101, 100, 5, 10, 14));
    assert_true(alert_backlog_due(101, 100, 5, 10, 15));
}

static void test_cond_names(void **state)
{
    for (int c = 0; c < ALERT_COND_COUNT; c++) {
        alert_cond_t back;
        assert_int_equal(alert_cond_parse(alert_cond_name((alert_cond_t)c), &back), 0);
        assert_int_equal(back, c);
    }
    alert_cond_t x;
    assert_int_equal(alert_cond_parse("FAILED", &x), SKED_EINVAL);
    assert_null(alert_cond_name(ALERT_COND_COUNT));
}

static void test_notice_words(void **state)
{
    alert_notice_t n = {.id = "alr_1",
                        .cond = ALERT_FAILED,
                        .event = ALERT_EV_OPENED,
                        .name = "nightly",
                        .run_id = "run_9",
                        .detail = "exit code 3 after 2 attempts",
                        .opened_ms = 1767225600000};
    char *s = alert_subject(&n), *t = alert_text(&n);
    assert_string_equal(s, "[sked] FAILED nightly (run run_9)");
    assert_string_equal(t, "FAILED: nightly\nexit code 3 after 2 attempts\n"
                           "opened 2026-01-01T00:00:00Z\nrun run_9\nalert alr_1\n");
    free(s);
    free(t);
    n.event = ALERT_EV_RESOLVED;
    n.cond = ALERT_SLA_MISSED;
    n.run_id = "";
    n.resolve_detail = "the run started";
    n.resolved_ms = 1767225660000;
    s = alert_subject(&n);
    t = alert_text(&n);
    assert_string_equal(s, "[sked] RESOLVED sla_missed: nightly");
    assert_string_equal(t, "RESOLVED (sla_missed): nightly\nthe run started\n"
                           "was: exit code 3 after 2 attempts\n"
                           "opened 2026-01-01T00:00:00Z, resolved 2026-01-01T00:01:00Z\n"
                           "alert alr_1\n");
    free(s);
    free(t);
    n.event = ALERT_EV_OPENED;
    n.cond = ALERT_WORKER_LOST;
    n.run_id = NULL;
    s = alert_subject(&n);
    assert_string_equal(s, "[sked] WORKER LOST nightly");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_parse_and_canonical),
        cmocka_unit_test(test_rule_bad_input),
        cmocka_unit_test(test_job_alerts_round_trip),
        cmocka_unit_test(test_job_alerts_bad_input),
        cmocka_unit_test(test_job_alert_secret_kept_on_patch),
        cmocka_unit_test(test_p95_and_overrun),
        cmocka_unit_test(test_sla_late),
        cmocka_unit_test(test_fire_kept_and_backlog),
        cmocka_unit_test(test_cond_names),
        cmocka_unit_test(test_notice_words),
    };
    return cmocka_run_group_tests_name("alert", tests, NULL, NULL);
}
