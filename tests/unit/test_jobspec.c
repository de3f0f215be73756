/*
 * Unit tests for core/jobspec: which job documents are accepted, what they
 * become (the parsed struct and the canonical JSON the API returns), which
 * are refused and under which field name (the API's problem+json `field`),
 * the parse/format round trip, and JSON merge-patch updates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"
#include "core/jobspec.h"

/* Loads JSON text; \u0000 is allowed so that the NUL checks can be reached. */
static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!j) fail_msg("bad test JSON (%s): %s", jerr.text, text);
    return j;
}

/* Parses text, which must be accepted; caller frees *out. */
static void parse_ok(const char *text, jobspec_t *out)
{
    json_t *doc = load(text);
    jobspec_error_t err;
    int rc = jobspec_parse(doc, out, &err);
    if (rc != 0) fail_msg("rejected %s: field '%s': %s", text, err.field, err.detail);
    json_decref(doc);
}

/* Canonical JSON of a document, compared with the expected text. */
static void expect_canonical(const char *in, const char *want)
{
    jobspec_t spec;
    parse_ok(in, &spec);
    json_t *got = jobspec_to_json(&spec);
    json_t *exp = load(want);
    if (!json_equal(got, exp)) {
        char *g = json_dumps(got, JSON_SORT_KEYS);
        char *w = json_dumps(exp, JSON_SORT_KEYS);
        fail_msg("canonical of %s\n got: %s\nwant: %s", in, g, w);
    }
    json_decref(got);
    json_decref(exp);
    jobspec_free(&spec);
}

#define DEFAULTS_TAIL                                                                              \
    "\"priority\":0,\"queue\":\"default\",\"constraints\":{},\"timeout\":null,"                    \
    "\"retry\":{\"max_attempts\":1,\"initial\":\"10s\",\"max\":\"10m\",\"multiplier\":2,"          \
    "\"jitter\":true},\"overlap\":\"allow\",\"misfire\":\"run_once\","                             \
    "\"catch_up_window\":\"1h\",\"max_concurrency\":0,\"tags\":[]"

static void test_minimal_defaults(void **state)
{
    (void)state;
    jobspec_t s;
    parse_ok("{\"name\":\"n\",\"command\":[\"true\"]}", &s);
    assert_string_equal(s.name, "n");
    assert_string_equal(s.type, "shell");
    assert_int_equal(s.argc, 1);
    assert_string_equal(s.argv[0], "true");
    assert_null(s.argv[1]);
    assert_int_equal(s.envc, 0);
    assert_non_null(s.env);
    assert_null(s.env[0]);
    assert_null(s.cwd);
    assert_int_equal(s.nschedules, 0);
    assert_int_equal(s.priority, 0);
    assert_string_equal(s.queue, "default");
    assert_string_equal(s.constraints, "");
    assert_int_equal(s.timeout_ms, 0);
    assert_int_equal(s.retry.max_attempts, 1);
    assert_int_equal(s.retry.initial_ms, 10000);
    assert_int_equal(s.retry.max_ms, 600000);
    assert_true(s.retry.multiplier == 2.0);
    assert_true(s.retry.jitter);
    assert_int_equal(s.overlap, OVERLAP_ALLOW);
    assert_int_equal(s.misfire, MISFIRE_RUN_ONCE);
    assert_int_equal(s.catch_up_window_ms, 3600000);
    assert_int_equal(s.max_concurrency, 0);
    assert_string_equal(s.tags, "");
    jobspec_free(&s);

    expect_canonical("{\"name\":\"n\",\"command\":[\"true\"]}",
                     "{\"name\":\"n\",\"type\":\"shell\",\"command\":[\"true\"],\"env\":{},"
                     "\"cwd\":null,\"schedules\":[]," DEFAULTS_TAIL "}");
    /* Null is "none" where the canonical document itself writes null. */
    expect_canonical("{\"name\":\"n\",\"command\":[\"true\"],\"cwd\":null,\"timeout\":null}",
                     "{\"name\":\"n\",\"type\":\"shell\",\"command\":[\"true\"],\"env\":{},"
                     "\"cwd\":null,\"schedules\":[]," DEFAULTS_TAIL "}");
}

static const char *full_doc =
    "{\"name\":\"nightly-report\",\"type\":\"shell\","
    "\"command\":[\"/usr/local/bin/report\",\"--day\",\"yesterday\"],"
    "\"env\":{\"REPORT_DIR\":\"/srv/reports\",\"A1\":\"x=y\",\"A\":\"\",\"_z\":\"z\"},"
    "\"cwd\":\"/srv\","
    "\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":\"Europe/Berlin\"},"
    "{\"every\":\"900s\",\"anchor\":\"2026-01-01T01:00:00+01:00\",\"jitter\":\"60000ms\"},"
    "{\"at\":\"2026-12-24T18:00:00.500Z\",\"start\":\"2026-01-01T00:00:00Z\","
    "\"end\":\"2027-01-01T00:00:00Z\"},"
    "{\"cron\":\"@hourly\"}],"
    "\"priority\":50,\"queue\":\"reports\",\"constraints\":{\"zone\":\"b\",\"disk\":\"ssd\"},"
    "\"timeout\":\"90m\","
    "\"retry\":{\"max_attempts\":4,\"initial\":\"10s\",\"max\":\"600s\",\"multiplier\":1.5,"
    "\"jitter\":false},"
    "\"overlap\":\"forbid\",\"misfire\":\"catch_up\",\"catch_up_window\":\"120m\","
    "\"max_concurrency\":3,\"tags\":[\"reports\",\"daily\",\"reports\"]}";

static void test_full_document(void **state)
{
    (void)state;
    jobspec_t s;
    parse_ok(full_doc, &s);
    assert_string_equal(s.name, "nightly-report");
    assert_int_equal(s.argc, 3);
    assert_string_equal(s.argv[2], "yesterday");
    assert_null(s.argv[3]);
    /* env sorted by name ("A" before "A1" before "REPORT_DIR"), values kept as-is */
    assert_int_equal(s.envc, 4);
    assert_string_equal(s.env[0], "A=");
    assert_string_equal(s.env[1], "A1=x=y");
    assert_string_equal(s.env[2], "REPORT_DIR=/srv/reports");
    assert_string_equal(s.env[3], "_z=z");
    assert_null(s.env[4]);
    assert_string_equal(s.cwd, "/srv");

    assert_int_equal(s.nschedules, 4);
    assert_int_equal(s.schedules[0].spec.kind, SCHEDULE_CRON);
    assert_string_equal(s.schedules[0].spec.expr, "0 2 * * *");
    assert_string_equal(s.schedules[0].spec.timezone, "Europe/Berlin");
    assert_true(s.schedules[0].spec.start_ms == INT64_MIN);
    assert_true(s.schedules[0].spec.end_ms == INT64_MAX);
    assert_int_equal(s.schedules[1].spec.kind, SCHEDULE_EVERY);
    assert_string_equal(s.schedules[1].spec.expr, "15m");
    assert_null(s.schedules[1].spec.timezone);
    int64_t ms;
    assert_int_equal(clock_parse_rfc3339("2026-01-01T00:00:00Z", &ms), 0);
    assert_int_equal(s.schedules[1].spec.anchor_ms, ms);
    assert_int_equal(s.schedules[1].spec.jitter_ms, 60000);
    assert_int_equal(s.schedules[2].spec.kind, SCHEDULE_AT);
    assert_string_equal(s.schedules[2].spec.expr, "2026-12-24T18:00:00.500Z");
    assert_int_equal(s.schedules[2].spec.start_ms, ms);
    assert_true(s.schedules[2].spec.anchor_ms == INT64_MIN);
    assert_string_equal(s.schedules[3].spec.timezone, "UTC");

    assert_int_equal(s.priority, 50);
    assert_string_equal(s.queue, "reports");
    assert_string_equal(s.constraints, "disk=ssd,zone=b");
    assert_int_equal(s.timeout_ms, 90 * 60000);
    assert_int_equal(s.retry.max_attempts, 4);
    assert_int_equal(s.retry.max_ms, 600000);
    assert_true(s.retry.multiplier == 1.5);
    assert_false(s.retry.jitter);
    assert_int_equal(s.overlap, OVERLAP_FORBID);
    assert_int_equal(s.misfire, MISFIRE_CATCH_UP);
    assert_int_equal(s.catch_up_window_ms, 2 * 3600000);
    assert_int_equal(s.max_concurrency, 3);
    assert_string_equal(s.tags, ",daily,reports,");
    jobspec_free(&s);

    expect_canonical(
        full_doc,
        "{\"name\":\"nightly-report\",\"type\":\"shell\","
        "\"command\":[\"/usr/local/bin/report\",\"--day\",\"yesterday\"],"
        "\"env\":{\"A\":\"\",\"A1\":\"x=y\",\"REPORT_DIR\":\"/srv/reports\",\"_z\":\"z\"},"
        "\"cwd\":\"/srv\","
        "\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":\"Europe/Berlin\"},"
        "{\"every\":\"15m\",\"anchor\":\"2026-01-01T00:00:00Z\",\"jitter\":\"1m\"},"
        "{\"at\":\"2026-12-24T18:00:00.500Z\",\"start\":\"2026-01-01T00:00:00Z\","
        "\"end\":\"2027-01-01T00:00:00Z\"},"
        "{\"cron\":\"@hourly\",\"timezone\":\"UTC\"}],"
        "\"priority\":50,\"queue\":\"reports\",\"constraints\":{\"disk\":\"ssd\",\"zone\":\"b\"},"
        "\"timeout\":\"1h30m\","
        "\"retry\":{\"max_attempts\":4,\"initial\":\"10s\",\"max\":\"10m\",\"multiplier\":1.5,"
        "\"jitter\":false},"
        "\"overlap\":\"forbid\",\"misfire\":\"catch_up\",\"catch_up_window\":\"2h\","
        "\"max_concurrency\":3,\"tags\":[\"daily\",\"reports\"]}");
}

/* Accepted edge values. */
static void test_good_edges(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{\"name\":\"n\",\"command\":[\"a\"],\"priority\":-1000}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"priority\":1000}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"max_concurrency\":10000}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"retry\":{\"max_attempts\":100,\"multiplier\":100}}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"retry\":{\"multiplier\":1}}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"retry\":{\"initial\":\"0\",\"max\":\"0s\"}}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"timeout\":\"1ms\"}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"overlap\":\"replace\",\"misfire\":\"skip\"}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"env\":{\"sked_lower\":\"ok\",\"SKED\":\"ok\"}}",
        "{\"name\":\"n\\u00e9\\u65e5\",\"command\":[\"\\u00e9\"]}", /* UTF-8 is fine */
        "{\"name\":\"n\",\"command\":[\"a\"],\"schedules\":[]}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"schedules\":[{\"every\":\"1s\"}]}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"schedules\":[{\"cron\":\"0 0 2 * * MON-FRI\","
        "\"timezone\":\"America/New_York\",\"jitter\":\"0s\"}]}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"schedules\":[{\"at\":\"2026-01-01T00:00:00Z\","
        "\"start\":\"2026-01-01T00:00:00Z\",\"end\":\"2026-01-01T00:00:00Z\"}]}",
        "{\"name\":\"n\",\"command\":[\"a\"],\"constraints\":{\"k\":\"v w\"},\"tags\":[\"a b\"]}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        jobspec_t s;
        parse_ok(docs[i], &s);
        jobspec_free(&s);
    }
}

/* A document of n items, item i being pre + i + post (e.g. n argv entries). */
static char *repeat_doc(const char *prefix, const char *pre, const char *post, int n,
                        const char *suffix)
{
    buf_t b = BUF_INIT;
    buf_puts(&b, prefix);
    for (int i = 0; i < n; i++)
        buf_printf(&b, "%s%s%d%s", i ? "," : "", pre, i, post);
    buf_puts(&b, suffix);
    return buf_steal(&b);
}

static char *long_string_doc(const char *before, size_t n, const char *after)
{
    char *s = xmalloc(strlen(before) + n + strlen(after) + 1);
    strcpy(s, before);
    memset(s + strlen(before), 'x', n);
    strcpy(s + strlen(before) + n, after);
    return s;
}

/* Expects rejection with this field; detail must contain `detail` if given. */
static void expect_bad(const char *text, const char *field, const char *detail)
{
    json_t *doc = load(text);
    jobspec_t s;
    jobspec_error_t err;
    memset(&s, 0x5a, sizeof s);
    int rc = jobspec_parse(doc, &s, &err);
    if (rc == 0) fail_msg("accepted %s (want error on '%s')", text, field);
    assert_int_equal(rc, SKED_EINVAL);
    if (strcmp(err.field, field) != 0)
        fail_msg("%s\n  field '%s', want '%s' (detail: %s)", text, err.field, field, err.detail);
    if (detail && !strstr(err.detail, detail))
        fail_msg("%s\n  detail '%s' lacks '%s'", text, err.detail, detail);
    assert_true(err.detail[0] != '\0');
    /* *out is left empty, so freeing it again is harmless */
    assert_null(s.name);
    assert_null(s.argv);
    assert_null(s.schedules);
    jobspec_free(&s);
    json_decref(doc);
}

#define JOB "\"name\":\"n\",\"command\":[\"a\"]"

static void test_bad_documents(void **state)
{
    (void)state;
    static const struct {
        const char *doc, *field, *detail;
    } cases[] = {
        /* whole body */
        {"[]", "", "object"},
        {"\"job\"", "", "object"},
        {"{" JOB ",\"bogus\":1}", "bogus", "unknown field"},
        {"{" JOB ",\"sla\":{}}", "sla", "must have"},
        /* name */
        {"{\"command\":[\"a\"]}", "name", "required"},
        {"{\"name\":null,\"command\":[\"a\"]}", "name", "required"},
        {"{\"name\":5,\"command\":[\"a\"]}", "name", "must be a string"},
        {"{\"name\":\"\",\"command\":[\"a\"]}", "name", "empty"},
        {"{\"name\":\"a\\u0000b\",\"command\":[\"a\"]}", "name", "NUL"},
        {"{\"name\":\"a\\nb\",\"command\":[\"a\"]}", "name", "control"},
        /* type */
        {"{" JOB ",\"type\":\"Shell\"}", "type", "plugin's type name"},
        {"{" JOB ",\"type\":\"9lives\"}", "type", "plugin's type name"},
        {"{" JOB ",\"type\":\"a.b\"}", "type", "plugin's type name"},
        {"{" JOB ",\"type\":\"http\"}", "command", "only for type shell"},
        {"{" JOB ",\"config\":{\"a\":1}}", "config", "only for types other than"},
        {"{" JOB ",\"config\":[]}", "config", "only for types other than"},
        {"{\"name\":\"n\",\"type\":\"noop\",\"cwd\":\"/tmp\"}", "cwd", "only for type shell"},
        {"{\"name\":\"n\",\"type\":\"noop\",\"config\":[1]}", "config", "JSON object"},
        {"{\"name\":\"n\",\"type\":\"noop\",\"config\":null}", "config", "must not be null"},
        {"{\"name\":\"n\",\"type\":\"noop\",\"config\":{\"a\":[{\"b\":{\"secret\":\"***\"}}]}}",
         "config.a[0].b.secret", "how sked shows a secret"},
        {"{" JOB ",\"type\":1}", "type", "string"},
        /* command */
        {"{\"name\":\"n\"}", "command", "required"},
        {"{\"name\":\"n\",\"command\":\"ls -l\"}", "command", "array"},
        {"{\"name\":\"n\",\"command\":[]}", "command", "empty"},
        {"{\"name\":\"n\",\"command\":[\"\"]}", "command[0]", "empty"},
        {"{\"name\":\"n\",\"command\":[\"a\",2]}", "command[1]", "string"},
        {"{\"name\":\"n\",\"command\":[\"a\",\"b\",\"c\\u0000d\"]}", "command[2]", "NUL"},
        {"{\"name\":\"n\",\"command\":[\"a\",null]}", "command[1]", "string"},
        /* env */
        {"{" JOB ",\"env\":[\"A=1\"]}", "env", "object"},
        {"{" JOB ",\"env\":{\"1A\":\"x\"}}", "env.1A", "A-Za-z"},
        {"{" JOB ",\"env\":{\"A-B\":\"x\"}}", "env.A-B", "A-Za-z"},
        {"{" JOB ",\"env\":{\"A=B\":\"x\"}}", "env.A=B", "A-Za-z"},
        {"{" JOB ",\"env\":{\"\":\"x\"}}", "env.", "A-Za-z"},
        {"{" JOB ",\"env\":{\"SKED_RUN_ID\":\"x\"}}", "env.SKED_RUN_ID", "reserved"},
        {"{" JOB ",\"env\":{\"SKED_\":\"x\"}}", "env.SKED_", "reserved"},
        {"{" JOB ",\"env\":{\"A\":1}}", "env.A", "string"},
        {"{" JOB ",\"env\":{\"A\":null}}", "env.A", "string"},
        {"{" JOB ",\"env\":{\"OK\":\"1\",\"B\":\"x\\u0000y\"}}", "env.B", "NUL"},
        /* cwd */
        {"{" JOB ",\"cwd\":1}", "cwd", "string"},
        {"{" JOB ",\"cwd\":\"\"}", "cwd", "empty"},
        {"{" JOB ",\"cwd\":\"srv/x\"}", "cwd", "absolute"},
        /* schedules */
        {"{" JOB ",\"schedules\":{}}", "schedules", "array"},
        {"{" JOB ",\"schedules\":[1]}", "schedules[0]", "object"},
        {"{" JOB ",\"schedules\":[{}]}", "schedules[0]", "exactly one"},
        {"{" JOB ",\"schedules\":[{\"timezone\":\"UTC\"}]}", "schedules[0]", "exactly one"},
        {"{" JOB ",\"schedules\":[{\"cron\":\"* * * * *\",\"every\":\"1m\"}]}", "schedules[0]",
         "exactly one"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1m\"},{\"at\":\"x\",\"every\":\"1m\"}]}",
         "schedules[1]", "exactly one"},
        {"{" JOB ",\"schedules\":[{\"cron\":\"* * * * *\",\"tz\":\"UTC\"}]}", "schedules[0].tz",
         "unknown field"},
        {"{" JOB ",\"schedules\":[{\"cron\":5}]}", "schedules[0].cron", "string"},
        {"{" JOB ",\"schedules\":[{\"cron\":\"\"}]}", "schedules[0].cron", "empty"},
        {"{" JOB ",\"schedules\":[{\"cron\":\"0 24 * * *\"}]}", "schedules[0].cron", "24"},
        {"{" JOB ",\"schedules\":[{\"cron\":\"every day\"}]}", "schedules[0].cron", NULL},
        {"{" JOB ",\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":\"Mars/Olympus\"}]}",
         "schedules[0].timezone", "Mars/Olympus"},
        /* both bad: the expression is blamed with its own message */
        {"{" JOB ",\"schedules\":[{\"cron\":\"0 24 * * *\",\"timezone\":\"Mars/Olympus\"}]}",
         "schedules[0].cron", "24"},
        {"{" JOB ",\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":\"\"}]}",
         "schedules[0].timezone", "empty"},
        {"{" JOB ",\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":7}]}",
         "schedules[0].timezone", "string"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1m\",\"timezone\":\"UTC\"}]}",
         "schedules[0].timezone", "cron"},
        {"{" JOB ",\"schedules\":[{\"at\":\"2026-01-01T00:00:00Z\",\"timezone\":\"UTC\"}]}",
         "schedules[0].timezone", "cron"},
        {"{" JOB ",\"schedules\":[{\"cron\":\"* * * * *\",\"anchor\":\"2026-01-01T00:00:00Z\"}]}",
         "schedules[0].anchor", "every"},
        {"{" JOB ",\"schedules\":[{\"every\":\"soon\"}]}", "schedules[0].every", "duration"},
        {"{" JOB ",\"schedules\":[{\"every\":60}]}", "schedules[0].every", "duration"},
        {"{" JOB ",\"schedules\":[{\"every\":\"0\"}]}", "schedules[0].every", "greater than 0"},
        {"{" JOB ",\"schedules\":[{\"every\":\"500ms\"}]}", "schedules[0].every", "1s"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1m\",\"anchor\":\"yesterday\"}]}",
         "schedules[0].anchor", "RFC 3339"},
        {"{" JOB ",\"schedules\":[{\"at\":\"tomorrow\"}]}", "schedules[0].at", "RFC 3339"},
        {"{" JOB ",\"schedules\":[{\"at\":\"2026-13-01T00:00:00Z\"}]}", "schedules[0].at",
         "RFC 3339"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1m\",\"start\":5}]}", "schedules[0].start",
         "RFC 3339"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1m\",\"end\":\"2026\"}]}", "schedules[0].end",
         "RFC 3339"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1m\",\"start\":\"2026-02-01T00:00:00Z\","
         "\"end\":\"2026-01-01T00:00:00Z\"}]}",
         "schedules[0].end", "before start"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1m\",\"jitter\":\"-1s\"}]}", "schedules[0].jitter",
         "duration"},
        /* priority */
        {"{" JOB ",\"priority\":\"50\"}", "priority", "must be an integer"},
        {"{" JOB ",\"priority\":50.5}", "priority", "must be an integer"},
        {"{" JOB ",\"priority\":true}", "priority", "must be an integer"},
        {"{" JOB ",\"priority\":1001}", "priority", "-1000 and 1000"},
        {"{" JOB ",\"priority\":-1001}", "priority", "-1000 and 1000"},
        {"{" JOB ",\"priority\":99999999999999}", "priority", "-1000 and 1000"},
        /* queue */
        {"{" JOB ",\"queue\":\"\"}", "queue", "empty"},
        {"{" JOB ",\"queue\":3}", "queue", "string"},
        {"{" JOB ",\"queue\":\"a,b\"}", "queue", "','"},
        /* constraints */
        {"{" JOB ",\"constraints\":[\"disk=ssd\"]}", "constraints", "object"},
        {"{" JOB ",\"constraints\":{\"disk\":1}}", "constraints.disk", "string"},
        {"{" JOB ",\"constraints\":{\"disk\":\"\"}}", "constraints.disk", "empty"},
        {"{" JOB ",\"constraints\":{\"a=b\":\"x\"}}", "constraints.a=b", "'='"},
        {"{" JOB ",\"constraints\":{\"a,b\":\"x\"}}", "constraints.a,b", "','"},
        {"{" JOB ",\"constraints\":{\"k\":\"a,b\"}}", "constraints.k", "','"},
        {"{" JOB ",\"constraints\":{\"k\":\"a=b\"}}", "constraints.k", "'='"},
        {"{" JOB ",\"constraints\":{\"\":\"x\"}}", "constraints.", "empty"},
        /* timeout */
        {"{" JOB ",\"timeout\":\"0\"}", "timeout", "greater than 0"},
        {"{" JOB ",\"timeout\":\"0s\"}", "timeout", "greater than 0"},
        {"{" JOB ",\"timeout\":30}", "timeout", "duration"},
        {"{" JOB ",\"timeout\":\"30\"}", "timeout", "duration"},
        {"{" JOB ",\"timeout\":\"-1s\"}", "timeout", "duration"},
        {"{" JOB ",\"timeout\":\"3661d\"}", "timeout", "duration"},
        /* retry */
        {"{" JOB ",\"retry\":3}", "retry", "object"},
        {"{" JOB ",\"retry\":{\"attempts\":3}}", "retry.attempts", "unknown field"},
        {"{" JOB ",\"retry\":{\"max_attempts\":0}}", "retry.max_attempts", "1 and 100"},
        {"{" JOB ",\"retry\":{\"max_attempts\":101}}", "retry.max_attempts", "1 and 100"},
        {"{" JOB ",\"retry\":{\"max_attempts\":\"3\"}}", "retry.max_attempts", "integer"},
        {"{" JOB ",\"retry\":{\"max_attempts\":2.5}}", "retry.max_attempts", "integer"},
        {"{" JOB ",\"retry\":{\"initial\":\"soon\"}}", "retry.initial", "duration"},
        {"{" JOB ",\"retry\":{\"initial\":10}}", "retry.initial", "duration"},
        {"{" JOB ",\"retry\":{\"max\":\"1h1h\"}}", "retry.max", "duration"},
        {"{" JOB ",\"retry\":{\"initial\":\"1m\",\"max\":\"30s\"}}", "retry.max", "retry.initial"},
        {"{" JOB ",\"retry\":{\"initial\":\"11m\"}}", "retry.max", "retry.initial"},
        {"{" JOB ",\"retry\":{\"multiplier\":0.5}}", "retry.multiplier", "between 1 and 100"},
        {"{" JOB ",\"retry\":{\"multiplier\":101}}", "retry.multiplier", "between 1 and 100"},
        {"{" JOB ",\"retry\":{\"multiplier\":\"2\"}}", "retry.multiplier", "number"},
        {"{" JOB ",\"retry\":{\"jitter\":\"yes\"}}", "retry.jitter", "true or false"},
        {"{" JOB ",\"retry\":{\"jitter\":1}}", "retry.jitter", "true or false"},
        /* enums */
        {"{" JOB ",\"overlap\":\"never\"}", "overlap", "\"allow\", \"forbid\", \"replace\""},
        {"{" JOB ",\"overlap\":1}", "overlap", "one of"},
        {"{" JOB ",\"misfire\":\"later\"}", "misfire", "\"run_once\", \"catch_up\", \"skip\""},
        {"{" JOB ",\"misfire\":\"RUN_ONCE\"}", "misfire", "one of"},
        /* catch_up_window */
        {"{" JOB ",\"catch_up_window\":\"0\"}", "catch_up_window", "greater than 0"},
        {"{" JOB ",\"catch_up_window\":\"1 h\"}", "catch_up_window", "duration"},
        /* max_concurrency */
        {"{" JOB ",\"max_concurrency\":-1}", "max_concurrency", "0 and 10000"},
        {"{" JOB ",\"max_concurrency\":10001}", "max_concurrency", "0 and 10000"},
        {"{" JOB ",\"max_concurrency\":\"1\"}", "max_concurrency", "integer"},
        {"{" JOB ",\"max_concurrency\":1.5}", "max_concurrency", "integer"},
        /* tags */
        {"{" JOB ",\"tags\":\"a\"}", "tags", "array"},
        {"{" JOB ",\"tags\":[1]}", "tags[0]", "string"},
        {"{" JOB ",\"tags\":[\"ok\",\"a,b\"]}", "tags[1]", "','"},
        {"{" JOB ",\"tags\":[\"\"]}", "tags[0]", "empty"},
        {"{" JOB ",\"tags\":[\"a\\tb\"]}", "tags[0]", "control"},
        /* null: refused everywhere but cwd and timeout, naming the field. Taken
         * for the default it would fire a job at once (schedules), in UTC
         * (timezone), on any worker (constraints)... */
        {"{\"name\":null,\"command\":[\"a\"]}", "name", "required and must not be null"},
        {"{\"name\":\"n\",\"command\":null}", "command", "required and must not be null"},
        {"{" JOB ",\"type\":null}", "type", "must not be null"},
        {"{" JOB ",\"env\":null}", "env", "must not be null"},
        {"{" JOB ",\"schedules\":null}", "schedules", "runs once, now"},
        {"{" JOB ",\"priority\":null}", "priority", "must not be null"},
        {"{" JOB ",\"queue\":null}", "queue", "must not be null"},
        {"{" JOB ",\"constraints\":null}", "constraints", "must not be null"},
        {"{" JOB ",\"retry\":null}", "retry", "must not be null"},
        {"{" JOB ",\"overlap\":null}", "overlap", "must not be null"},
        {"{" JOB ",\"misfire\":null}", "misfire", "must not be null"},
        {"{" JOB ",\"catch_up_window\":null}", "catch_up_window", "must not be null"},
        {"{" JOB ",\"max_concurrency\":null}", "max_concurrency", "must not be null"},
        {"{" JOB ",\"tags\":null}", "tags", "must not be null"},
        {"{" JOB ",\"retry\":{\"max_attempts\":null}}", "retry.max_attempts", "must not be null"},
        {"{" JOB ",\"retry\":{\"jitter\":null}}", "retry.jitter", "must not be null"},
        {"{" JOB ",\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":null}]}",
         "schedules[0].timezone", "leave the field out for UTC"},
        {"{" JOB ",\"schedules\":[{\"cron\":null,\"every\":\"1h\"}]}", "schedules[0].cron",
         "must not be null"},
        {"{" JOB ",\"schedules\":[{\"every\":null}]}", "schedules[0].every", "must not be null"},
        {"{" JOB ",\"schedules\":[{\"at\":null}]}", "schedules[0].at", "must not be null"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1h\",\"start\":null}]}", "schedules[0].start",
         "must not be null"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1h\",\"end\":null}]}", "schedules[0].end",
         "must not be null"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1h\",\"jitter\":null}]}", "schedules[0].jitter",
         "must not be null"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1h\",\"anchor\":null}]}", "schedules[0].anchor",
         "must not be null"},
        {"{" JOB ",\"schedules\":[{\"every\":\"1h\"},null]}", "schedules[1]", "not null"},
        {"{\"name\":\"n\",\"command\":[\"a\",null]}", "command[1]", "not null"},
        {"{" JOB ",\"env\":{\"A\":null}}", "env.A", "not null"},
        {"{" JOB ",\"constraints\":{\"disk\":null}}", "constraints.disk", "not null"},
        {"{" JOB ",\"tags\":[\"a\",null]}", "tags[1]", "not null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_bad(cases[i].doc, cases[i].field, cases[i].detail);
}

/* Size limits: the largest allowed value passes, one more is refused. */
static void test_limits(void **state)
{
    (void)state;
    static const struct {
        const char *prefix, *pre, *post, *suffix, *field;
        int max;
    } counts[] = {
        {"{\"name\":\"n\",\"command\":[", "\"a", "\"", "]}", "command", JOBSPEC_ARGV_MAX},
        {"{" JOB ",\"env\":{", "\"E", "\":\"v\"", "}}", "env", JOBSPEC_ENV_MAX},
        {"{" JOB ",\"schedules\":[", "{\"every\":\"1", "s\"}", "]}", "schedules",
         JOBSPEC_SCHEDULES_MAX},
        {"{" JOB ",\"tags\":[", "\"t", "\"", "]}", "tags", JOBSPEC_TAGS_MAX},
        {"{" JOB ",\"constraints\":{", "\"k", "\":\"v\"", "}}", "constraints", 64},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        char *ok = repeat_doc(counts[i].prefix, counts[i].pre, counts[i].post, counts[i].max,
                              counts[i].suffix);
        char *bad = repeat_doc(counts[i].prefix, counts[i].pre, counts[i].post, counts[i].max + 1,
                               counts[i].suffix);
        jobspec_t s;
        parse_ok(ok, &s);
        jobspec_free(&s);
        expect_bad(bad, counts[i].field, "at most");
        free(ok);
        free(bad);
    }

    static const struct {
        const char *before, *after, *field;
        size_t max;
    } lengths[] = {
        {"{\"name\":\"", "\",\"command\":[\"a\"]}", "name", JOBSPEC_NAME_MAX},
        {"{" JOB ",\"queue\":\"", "\"}", "queue", JOBSPEC_NAME_MAX},
        {"{" JOB ",\"tags\":[\"", "\"]}", "tags[0]", JOBSPEC_NAME_MAX},
        {"{" JOB ",\"constraints\":{\"k\":\"", "\"}}", "constraints.k", JOBSPEC_NAME_MAX},
        {"{\"name\":\"n\",\"command\":[\"", "\"]}", "command[0]", JOBSPEC_ARG_MAX},
        {"{" JOB ",\"env\":{\"V\":\"", "\"}}", "env.V", JOBSPEC_ARG_MAX},
    };
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        char *ok = long_string_doc(lengths[i].before, lengths[i].max, lengths[i].after);
        char *bad = long_string_doc(lengths[i].before, lengths[i].max + 1, lengths[i].after);
        jobspec_t s;
        parse_ok(ok, &s);
        jobspec_free(&s);
        expect_bad(bad, lengths[i].field, "at most");
        free(ok);
        free(bad);
    }
}

/* Every field x of spec a equals that of b. */
static void assert_spec_equal(const jobspec_t *a, const jobspec_t *b)
{
    assert_string_equal(a->name, b->name);
    assert_string_equal(a->type, b->type);
    assert_int_equal(a->argc, b->argc);
    for (size_t i = 0; i <= a->argc; i++) {
        if (i == a->argc) {
            assert_null(a->argv[i]);
            assert_null(b->argv[i]);
        } else {
            assert_string_equal(a->argv[i], b->argv[i]);
        }
    }
    assert_int_equal(a->envc, b->envc);
    for (size_t i = 0; i < a->envc; i++)
        assert_string_equal(a->env[i], b->env[i]);
    assert_null(b->env[b->envc]);
    if (a->cwd || b->cwd) assert_string_equal(a->cwd, b->cwd);
    assert_int_equal(a->nschedules, b->nschedules);
    for (size_t i = 0; i < a->nschedules; i++) {
        const schedule_spec_t *x = &a->schedules[i].spec, *y = &b->schedules[i].spec;
        assert_int_equal(x->kind, y->kind);
        assert_string_equal(x->expr, y->expr);
        if (x->timezone || y->timezone) assert_string_equal(x->timezone, y->timezone);
        assert_true(x->start_ms == y->start_ms);
        assert_true(x->end_ms == y->end_ms);
        assert_true(x->anchor_ms == y->anchor_ms);
        assert_int_equal(x->jitter_ms, y->jitter_ms);
        assert_ptr_equal(x->expr, a->schedules[i].expr);
    }
    assert_int_equal(a->priority, b->priority);
    assert_string_equal(a->queue, b->queue);
    assert_string_equal(a->constraints, b->constraints);
    assert_int_equal(a->timeout_ms, b->timeout_ms);
    assert_int_equal(a->retry.max_attempts, b->retry.max_attempts);
    assert_int_equal(a->retry.initial_ms, b->retry.initial_ms);
    assert_int_equal(a->retry.max_ms, b->retry.max_ms);
    assert_true(a->retry.multiplier == b->retry.multiplier);
    assert_int_equal(a->retry.jitter, b->retry.jitter);
    assert_int_equal(a->overlap, b->overlap);
    assert_int_equal(a->misfire, b->misfire);
    assert_int_equal(a->catch_up_window_ms, b->catch_up_window_ms);
    assert_int_equal(a->max_concurrency, b->max_concurrency);
    assert_string_equal(a->tags, b->tags);
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *docs[] = {
        "{\"name\":\"n\",\"command\":[\"true\"]}",
        full_doc,
        "{\"name\":\"x\",\"command\":[\"sh\",\"-c\",\"echo $A\"],\"env\":{\"A\":\"a=b,c\"},"
        "\"timeout\":\"1w2d3h4m5s6ms\",\"retry\":{\"max_attempts\":3,\"initial\":\"250ms\","
        "\"max\":\"1m500ms\",\"multiplier\":1.25,\"jitter\":true},\"tags\":[\"z\",\"a\"],"
        "\"schedules\":[{\"every\":\"86400s\",\"start\":\"2026-03-29T01:00:00.123Z\"},"
        "{\"cron\":\"30 2 * * "
        "SUN\",\"timezone\":\"Europe/Berlin\",\"end\":\"2030-01-01T00:00:00Z\","
        "\"jitter\":\"5m\"}]}",
        /* Strings with every kind of escape, UTF-8 of 2 to 4 bytes, a
         * secret, SLA, dependencies, an array. */
        "{\"name\":\"q\",\"command\":[\"a\\\"b\\\\c/d\\u0001\\u001f\\u007f\\b\\f\\n\\r\\t\","
        "\"\u00e9\u2028\u20ac\U0001F600\"],\"env\":{\"K\":\"v\\n\\\"\",\"S\":{\"secret\":\"s\\\"\"}"
        "},"
        "\"cwd\":\"/tmp/\\u00e9\",\"constraints\":{\"r\\u00e9gion\":\"eu-\\u00e9\"},"
        "\"tags\":[\"t\\u00e9\"],\"sla\":{\"finish_within\":\"5m\"},"
        "\"depends_on\":[{\"job\":\"job_01KDVDQ4K0ZZYRK0Y1XQ0TK8WS\",\"condition\":\"afternotok\"}]"
        ","
        "\"array\":{\"count\":3,\"parallel\":2}}",
        "{\"name\":\"p\",\"type\":\"http\",\"config\":{\"url\":\"http://h/\\u00e9\","
        "\"headers\":{\"X\":{\"secret\":\"k\"}}},\"sla\":{\"start_within\":\"1m\","
        "\"finish_within\":\"2m\"}}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        jobspec_t a, b;
        jobspec_error_t err;
        parse_ok(docs[i], &a);
        json_t *ja = jobspec_to_json(&a);
        int rc = jobspec_parse(ja, &b, &err);
        if (rc) fail_msg("canonical doc rejected: %s: %s", err.field, err.detail);
        assert_spec_equal(&a, &b);
        json_t *jb = jobspec_to_json(&b);
        assert_true(json_equal(ja, jb));
        /* The serialised form is stable too (what the store keeps), and
         * sked's own writer (jobspec_text) writes what jansson writes:
         * documents stored before it compare equal to those after. */
        char *ta = json_dumps(ja, JSON_COMPACT), *tb = json_dumps(jb, JSON_COMPACT);
        assert_string_equal(ta, tb);
        char *text = jobspec_text(&b);
        assert_string_equal(text, ta);
        free(text);
        free(ta);
        free(tb);
        json_decref(ja);
        json_decref(jb);
        jobspec_free(&a);
        jobspec_free(&b);
    }
}

/* jobspec_text writes what the jansson tree of 055123d's jobspec_to_json
 * dumped, byte for byte (that output is pasted here), so the documents
 * stored before the writer and after it are the same text: every kind of
 * member, defaults filled in, durations and times made canonical, env and
 * constraints in jansson's key order, an escaped secret, UTF-8 and a
 * control character. */
static const char *golden_doc =
    "{\"name\":\"nightly-report\",\"type\":\"shell\",\"command\":[\"/usr/local/bin/report\",\"--d"
    "ay\",\"yesterday\"],\"env\":{\"REPORT_DIR\":\"/srv/reports\",\"A1\":\"x=y\",\"A\":\"\",\"_z"
    "\":\"z\",\"S\":{\"secret\":\"s\\\"\\n\"}},\"cwd\":\"/srv/\\u00e9\\u0001\",\"schedules\":[{\""
    "cron\":\"0 2 * * *\",\"timezone\":\"Europe/Berlin\"},{\"every\":\"900s\",\"anchor\":\"2026-0"
    "1-01T01:00:00+01:00\",\"jitter\":\"60000ms\"},{\"at\":\"2026-12-24T18:00:00.500Z\",\"start\""
    ":\"2026-01-01T00:00:00Z\",\"end\":\"2027-01-01T00:00:00Z\"},{\"cron\":\"@hourly\"}],\"priori"
    "ty\":50,\"queue\":\"reports\",\"constraints\":{\"zone\":\"b\",\"disk\":\"ssd\"},\"timeout\":"
    "\"90m\",\"retry\":{\"max_attempts\":4,\"initial\":\"10s\",\"max\":\"600s\",\"multiplier\":1."
    "5,\"jitter\":false},\"overlap\":\"forbid\",\"misfire\":\"catch_up\",\"catch_up_window\":\"12"
    "0m\",\"max_concurrency\":3,\"tags\":[\"reports\",\"daily\",\"reports\"],\"sla\":{\"start_wit"
    "hin\":\"1m\",\"finish_within\":\"2m\"},\"depends_on\":[{\"job\":\"job_01KDVDQ4K0ZZYRK0Y1XQ0T"
    "K8WS\",\"condition\":\"afterany\"}],\"array\":{\"count\":3,\"parallel\":2}}";
static const char *golden_text =
    "{\"name\":\"nightly-report\",\"type\":\"shell\",\"command\":[\"/usr/local/bin/report\",\"--d"
    "ay\",\"yesterday\"],\"env\":{\"A\":\"\",\"A1\":\"x=y\",\"REPORT_DIR\":\"/srv/reports\",\"S\""
    ":{\"secret\":\"s\\\"\\n\"},\"_z\":\"z\"},\"cwd\":\"/srv/\xc3"
    "\xa9"
    "\\u0001\",\"schedules\":"
    "[{\"cron\":\"0 2 * * *\",\"timezone\":\"Europe/Berlin\"},{\"every\":\"15m\",\"anchor\":\"202"
    "6-01-01T00:00:00Z\",\"jitter\":\"1m\"},{\"at\":\"2026-12-24T18:00:00.500Z\",\"start\":\"2026"
    "-01-01T00:00:00Z\",\"end\":\"2027-01-01T00:00:00Z\"},{\"cron\":\"@hourly\",\"timezone\":\"UT"
    "C\"}],\"priority\":50,\"queue\":\"reports\",\"constraints\":{\"disk\":\"ssd\",\"zone\":\"b\""
    "},\"timeout\":\"1h30m\",\"retry\":{\"max_attempts\":4,\"initial\":\"10s\",\"max\":\"10m\",\""
    "multiplier\":1.5,\"jitter\":false},\"overlap\":\"forbid\",\"misfire\":\"catch_up\",\"catch_u"
    "p_window\":\"2h\",\"max_concurrency\":3,\"tags\":[\"daily\",\"reports\"],\"sla\":{\"start_wi"
    "thin\":\"1m\",\"finish_within\":\"2m\"},\"depends_on\":[{\"job\":\"job_01KDVDQ4K0ZZYRK0Y1XQ0"
    "TK8WS\",\"condition\":\"afterany\"}],\"array\":{\"count\":3,\"parallel\":2}}";

static void test_canonical_text_as_before(void **state)
{
    (void)state;
    jobspec_t spec;
    parse_ok(golden_doc, &spec);
    char *text = jobspec_text(&spec);
    assert_string_equal(text, golden_text);
    free(text);
    jobspec_free(&spec);
}

/* buf_json_str writes a string as jansson does, for every ASCII byte and
 * for UTF-8 of each length, alone and inside text. */
static void test_json_strings_as_jansson(void **state)
{
    (void)state;
    const char *utf8[] = {"\xc3\xa9", "\xe2\x80\xa8", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (int c = 1; c < 0x80 + 4; c++) {
        char s[16];
        if (c < 0x80)
            snprintf(s, sizeof s, "a%cb%c", c, c);
        else
            snprintf(s, sizeof s, "%s-%s", utf8[c - 0x80], utf8[c - 0x80]);
        json_t *v = json_string(s);
        assert_non_null(v);
        char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        buf_t b = BUF_INIT;
        buf_json_str(&b, s);
        if (strcmp(b.data, want) != 0) fail_msg("byte %#x: wrote %s, jansson %s", c, b.data, want);
        buf_free(&b);
        free(want);
        json_decref(v);
    }
    buf_t b = BUF_INIT;
    buf_put_i64(&b, INT64_MIN);
    buf_putc(&b, ' ');
    buf_put_i64(&b, 0);
    buf_putc(&b, ' ');
    buf_put_i64(&b, INT64_MAX);
    assert_string_equal(b.data, "-9223372036854775808 0 9223372036854775807");
    buf_free(&b);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(overlap_policy_name(OVERLAP_ALLOW), "allow");
    assert_string_equal(overlap_policy_name(OVERLAP_FORBID), "forbid");
    assert_string_equal(overlap_policy_name(OVERLAP_REPLACE), "replace");
    assert_null(overlap_policy_name((overlap_policy_t)3));
    assert_string_equal(misfire_policy_name(MISFIRE_RUN_ONCE), "run_once");
    assert_string_equal(misfire_policy_name(MISFIRE_CATCH_UP), "catch_up");
    assert_string_equal(misfire_policy_name(MISFIRE_SKIP), "skip");
    assert_null(misfire_policy_name((misfire_policy_t)3));
    jobspec_free(NULL); /* no-op */
}

/* ---- merge patch --------------------------------------------------------- */

static json_t *canonical_of(const char *text)
{
    jobspec_t s;
    parse_ok(text, &s);
    json_t *j = jobspec_to_json(&s);
    jobspec_free(&s);
    return j;
}

static void test_patch(void **state)
{
    (void)state;
    json_t *cur = canonical_of(full_doc);
    json_t *merged = NULL;
    jobspec_t s;
    jobspec_error_t err;

    /* Scalars replace; null deletes and the default returns; nested objects
     * merge key by key; arrays replace as a whole. */
    json_t *patch = load("{\"priority\":-5,\"queue\":null,\"timeout\":null,\"cwd\":null,"
                         "\"env\":{\"A\":null,\"NEW\":\"1\",\"_z\":\"zz\"},"
                         "\"retry\":{\"jitter\":true,\"max\":null},"
                         "\"schedules\":[{\"every\":\"2h\"}],\"tags\":[]}");
    assert_int_equal(jobspec_patch(cur, patch, &merged, &s, &err), 0);
    assert_int_equal(s.priority, -5);
    assert_string_equal(s.queue, "default");
    assert_int_equal(s.timeout_ms, 0);
    assert_null(s.cwd);
    assert_int_equal(s.envc, 4);
    assert_string_equal(s.env[0], "A1=x=y");
    assert_string_equal(s.env[1], "NEW=1");
    assert_string_equal(s.env[2], "REPORT_DIR=/srv/reports");
    assert_string_equal(s.env[3], "_z=zz");
    assert_int_equal(s.retry.max_attempts, 4); /* untouched member of a patched object */
    assert_true(s.retry.jitter);
    assert_int_equal(s.retry.max_ms, 600000); /* deleted: back to the default 10m */
    assert_int_equal(s.nschedules, 1);
    assert_string_equal(s.schedules[0].spec.expr, "2h");
    assert_string_equal(s.tags, "");
    assert_string_equal(s.name, "nightly-report"); /* not in the patch: kept */
    assert_int_equal(s.overlap, OVERLAP_FORBID);
    /* merged is the canonical document of the result */
    json_t *want = jobspec_to_json(&s);
    assert_true(json_equal(merged, want));
    assert_string_equal(json_string_value(json_object_get(merged, "queue")), "default");
    assert_true(json_is_null(json_object_get(merged, "timeout")));
    /* current is not modified */
    assert_int_equal(json_integer_value(json_object_get(cur, "priority")), 50);
    json_decref(want);
    json_decref(merged);
    json_decref(patch);
    jobspec_free(&s);

    /* An empty patch changes nothing. */
    patch = load("{}");
    assert_int_equal(jobspec_patch(cur, patch, &merged, &s, &err), 0);
    assert_true(json_equal(merged, cur));
    json_decref(merged);
    json_decref(patch);
    jobspec_free(&s);

    /* Patching onto nothing is a create. */
    patch = load("{\"name\":\"fresh\",\"command\":[\"x\"]}");
    assert_int_equal(jobspec_patch(NULL, patch, &merged, &s, &err), 0);
    assert_string_equal(s.name, "fresh");
    json_decref(merged);
    json_decref(patch);
    jobspec_free(&s);

    json_decref(cur);
}

/* Job types: shell keeps its document of old; any other type has a config
 * object (default {}) and neither command nor cwd; the type name's rule. */
static void test_types(void **state)
{
    (void)state;
    jobspec_t s;
    parse_ok("{\"name\":\"n\",\"type\":\"noop\"}", &s);
    assert_string_equal(s.type, "noop");
    assert_int_equal(s.argc, 0);
    assert_non_null(s.argv);
    assert_null(s.argv[0]);
    assert_true(json_is_object(s.config) && json_object_size(s.config) == 0);
    jobspec_free(&s);

    /* The longest name; a shell job may say config {} (and only that). */
    char doc[256];
    snprintf(doc, sizeof doc, "{\"name\":\"n\",\"type\":\"a%s\"}",
             "123456789_123456789-123456789012345678901234567890123456789012");
    parse_ok(doc, &s);
    assert_int_equal(strlen(s.type), JOBSPEC_TYPE_MAX);
    jobspec_free(&s);
    snprintf(doc, sizeof doc, "{\"name\":\"n\",\"type\":\"a%s\"}",
             "123456789_123456789-1234567890123456789012345678901234567890123");
    expect_bad(doc, "type", "at most 63 bytes");
    parse_ok("{\"name\":\"n\",\"command\":[\"a\"],\"config\":{}}", &s);
    assert_null(s.config);
    jobspec_free(&s);

    /* Canonical: a non-shell job has config, no command and no cwd; a
     * shell job's document has no config (it is what it was). */
    expect_canonical("{\"name\":\"n\",\"type\":\"http\",\"config\":{\"url\":\"http://x/\","
                     "\"token\":{\"secret\":\"t0p\"}},\"env\":{\"K\":\"v\"}}",
                     "{\"name\":\"n\",\"type\":\"http\",\"config\":{\"url\":\"http://x/\","
                     "\"token\":{\"secret\":\"t0p\"}},\"env\":{\"K\":\"v\"},"
                     "\"schedules\":[]," DEFAULTS_TAIL "}");
    expect_canonical("{\"name\":\"n\",\"command\":[\"true\"],\"config\":{}}",
                     "{\"name\":\"n\",\"type\":\"shell\",\"command\":[\"true\"],\"env\":{},"
                     "\"cwd\":null,\"schedules\":[]," DEFAULTS_TAIL "}");
    /* A canonical non-shell document parses again to itself. */
    json_t *c1 =
        canonical_of("{\"name\":\"n\",\"type\":\"sql\",\"config\":{\"q\":[1,{\"x\":null}]}}");
    jobspec_t again;
    jobspec_error_t err;
    assert_int_equal(jobspec_parse(c1, &again, &err), 0);
    json_t *c2 = jobspec_to_json(&again);
    assert_true(json_equal(c1, c2));
    json_decref(c2);
    json_decref(c1);
    jobspec_free(&again);

    /* Depth: JOBSPEC_CONFIG_DEPTH levels are fine, one more is not. */
    buf_t b = BUF_INIT;
    buf_puts(&b, "{\"name\":\"n\",\"type\":\"noop\",\"config\":");
    for (int i = 0; i < JOBSPEC_CONFIG_DEPTH - 1; i++)
        buf_puts(&b, "{\"a\":");
    buf_puts(&b, "{}");
    for (int i = 0; i < JOBSPEC_CONFIG_DEPTH - 1; i++)
        buf_puts(&b, "}");
    buf_puts(&b, "}");
    parse_ok(b.data, &s);
    jobspec_free(&s);
    buf_free(&b);
    buf_puts(&b, "{\"name\":\"n\",\"type\":\"noop\",\"config\":{\"a\":");
    for (int i = 0; i < JOBSPEC_CONFIG_DEPTH; i++)
        buf_puts(&b, "[");
    buf_puts(&b, "1");
    for (int i = 0; i < JOBSPEC_CONFIG_DEPTH; i++)
        buf_puts(&b, "]");
    buf_puts(&b, "}}");
    expect_bad(b.data, "config", "more than 32 deep");
    buf_free(&b);

    assert_true(jobspec_type_ok("shell") && jobspec_type_ok("http") && jobspec_type_ok("a-b_9"));
    assert_false(jobspec_type_ok("") || jobspec_type_ok("_a") || jobspec_type_ok("a b") ||
                 jobspec_type_ok("\xc3\xa9"));
    assert_true(jobspec_type_builtin("shell") && jobspec_type_builtin("http"));
    assert_false(jobspec_type_builtin("noop") || jobspec_type_builtin(NULL));
}

/* Secrets in config (anywhere inside it) are kept in the canonical
 * document, masked by jobspec_redact (with env's), resolved by
 * secret_resolve, and kept by a PATCH that sends back the mask. */
static void test_config_secrets(void **state)
{
    (void)state;
    json_t *cur =
        canonical_of("{\"name\":\"n\",\"type\":\"sql\",\"env\":{\"E\":{\"secret\":\"envpw\"}},"
                     "\"config\":{\"dsn\":\"db\",\"auth\":{\"password\":{\"secret\":\"pw1\"}},"
                     "\"keys\":[{\"secret\":\"k0\"},\"plain\"],\"not\":{\"secret\":5}}}");

    json_t *shown = jobspec_redact(cur);
    char *text = json_dumps(shown, JSON_SORT_KEYS | JSON_COMPACT);
    assert_null(strstr(text, "pw1"));
    assert_null(strstr(text, "k0"));
    assert_null(strstr(text, "envpw"));
    json_t *want = load("{\"dsn\":\"db\",\"auth\":{\"password\":{\"secret\":\"***\"}},"
                        "\"keys\":[{\"secret\":\"***\"},\"plain\"],\"not\":{\"secret\":5}}");
    assert_true(json_equal(json_object_get(shown, "config"), want));
    json_decref(want);
    free(text);
    /* The stored document still has them. */
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(cur, "config"), "auth"), "password"),
            "secret")),
        "pw1");

    json_t *plain = secret_resolve(json_object_get(cur, "config"));
    want = load("{\"dsn\":\"db\",\"auth\":{\"password\":\"pw1\"},\"keys\":[\"k0\",\"plain\"],"
                "\"not\":{\"secret\":5}}");
    assert_true(json_equal(plain, want));
    json_decref(want);
    json_decref(plain);

    /* The document as read, sent back with one change: the secrets stay. */
    json_t *patch = json_deep_copy(shown);
    json_object_set_new(json_object_get(patch, "config"), "dsn", json_string("db2"));
    json_t *merged = NULL;
    jobspec_t s;
    jobspec_error_t err;
    assert_int_equal(jobspec_patch(cur, patch, &merged, &s, &err), 0);
    json_t *cfg = json_object_get(merged, "config");
    assert_string_equal(json_string_value(json_object_get(cfg, "dsn")), "db2");
    assert_true(json_equal(json_object_get(cfg, "auth"),
                           json_object_get(json_object_get(cur, "config"), "auth")));
    assert_true(json_equal(json_object_get(cfg, "keys"),
                           json_object_get(json_object_get(cur, "config"), "keys")));
    assert_true(json_equal(json_object_get(merged, "env"), json_object_get(cur, "env")));
    json_decref(merged);
    jobspec_free(&s);
    json_decref(patch);

    /* A new secret value replaces; the mask where no secret was stored is
     * refused, naming where. */
    patch = load("{\"config\":{\"auth\":{\"password\":{\"secret\":\"pw2\"}},"
                 "\"other\":{\"secret\":\"***\"}}}");
    assert_int_equal(jobspec_patch(cur, patch, &merged, &s, &err), SKED_EINVAL);
    assert_string_equal(err.field, "config.other.secret");
    json_decref(patch);
    patch = load("{\"config\":{\"auth\":{\"password\":{\"secret\":\"pw2\"}}}}");
    assert_int_equal(jobspec_patch(cur, patch, &merged, &s, &err), 0);
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(merged, "config"), "auth"), "password"),
            "secret")),
        "pw2");
    json_decref(merged);
    jobspec_free(&s);
    json_decref(patch);

    /* Changing the type: the fields of the old kind must go with it. */
    patch = load("{\"type\":\"shell\",\"command\":[\"true\"]}");
    assert_int_equal(jobspec_patch(cur, patch, &merged, &s, &err), SKED_EINVAL);
    assert_string_equal(err.field, "config");
    json_decref(patch);
    patch = load("{\"type\":\"shell\",\"command\":[\"true\"],\"config\":null}");
    assert_int_equal(jobspec_patch(cur, patch, &merged, &s, &err), 0);
    assert_string_equal(s.type, "shell");
    assert_null(json_object_get(merged, "config"));
    json_decref(merged);
    jobspec_free(&s);
    json_decref(patch);

    json_decref(shown);
    json_decref(cur);
}

static void test_patch_errors(void **state)
{
    (void)state;
    json_t *cur = canonical_of(full_doc);
    static const struct {
        const char *patch, *field, *detail;
    } cases[] = {
        {"[]", "", "object"},
        {"null", "", "object"},
        {"{\"name\":null}", "name", "required"},
        {"{\"command\":null}", "command", "required"},
        {"{\"command\":[]}", "command", "empty"},
        {"{\"bogus\":1}", "bogus", "unknown field"},
        {"{\"retry\":{\"max_attempts\":0}}", "retry.max_attempts", "1 and 100"},
        {"{\"retry\":{\"nope\":1}}", "retry.nope", "unknown field"},
        {"{\"retry\":5}", "retry", "object"},
        {"{\"priority\":\"high\"}", "priority", "must be an integer"},
        {"{\"env\":{\"SKED_X\":\"1\"}}", "env.SKED_X", "reserved"},
        {"{\"schedules\":[{\"cron\":\"0 25 * * *\"}]}", "schedules[0].cron", "25"},
        {"{\"schedules\":[{\"every\":\"1m\"},{\"cron\":\"0 2 * * *\",\"timezone\":\"Nowhere/X\"}]}",
         "schedules[1].timezone", "Nowhere/X"},
        {"{\"constraints\":{\"disk\":7}}", "constraints.disk", "string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *patch = load(cases[i].patch);
        json_t *merged = (json_t *)&merged; /* must be reset to NULL */
        jobspec_t s;
        jobspec_error_t err;
        int rc = jobspec_patch(cur, patch, &merged, &s, &err);
        if (rc != SKED_EINVAL) fail_msg("patch %s: rc %d", cases[i].patch, rc);
        if (strcmp(err.field, cases[i].field) != 0)
            fail_msg("patch %s: field '%s', want '%s' (%s)", cases[i].patch, err.field,
                     cases[i].field, err.detail);
        if (!strstr(err.detail, cases[i].detail))
            fail_msg("patch %s: detail '%s' lacks '%s'", cases[i].patch, err.detail,
                     cases[i].detail);
        assert_null(merged);
        assert_null(s.name);
        jobspec_free(&s);
        json_decref(patch);
    }
    /* The rejected patches left current alone. */
    json_t *again = canonical_of(full_doc);
    assert_true(json_equal(cur, again));
    json_decref(again);
    json_decref(cur);
}

/* Whether s is UTF-8 that jansson (and so a problem+json answer) takes. */
static bool is_text(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

/* A PATCH's null deletes a member (RFC 7386), and the default returns;
 * inside a schedule, which a patch replaces whole, null is refused as in a
 * new job (test_bad_documents has those). */
static void test_patch_nulls(void **state)
{
    (void)state;
    json_t *cur = canonical_of(full_doc), *merged = NULL;
    json_t *patch = load("{\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":null}]}");
    jobspec_t s;
    jobspec_error_t err;
    assert_int_equal(jobspec_patch(cur, patch, &merged, &s, &err), SKED_EINVAL);
    assert_string_equal(err.field, "schedules[0].timezone");
    assert_null(merged);
    json_decref(patch);
    patch = load("{\"queue\":null,\"timeout\":null,\"retry\":{\"max\":null}}");
    assert_int_equal(jobspec_patch(cur, patch, &merged, &s, &err), 0);
    assert_string_equal(s.queue, "default");
    assert_int_equal(s.timeout_ms, 0);
    assert_int_equal(s.retry.max_ms, 600000);
    jobspec_free(&s);
    json_decref(merged);
    json_decref(patch);
    json_decref(cur);
}

/* A cron expression is ASCII: a digit or space from another script is
 * refused naming the character, the cron field and what to write. */
static void test_cron_not_ascii(void **state)
{
    (void)state;
    static const struct {
        const char *cron, *detail;
    } cases[] = {
        /* Arabic-Indic five, in the minute field */
        {"\u0665 2 * * *", "cron field 'minute': '\u0665' (U+0665) is not an ASCII digit; write 5"},
        /* full-width five, in the hour field */
        {"0 \uff15 * * *", "cron field 'hour': '\uff15' (U+FF15) is not an ASCII digit; write 5"},
        /* Devanagari three inside a list of the day-of-week field */
        {"0 2 * * 1,\u0969", "cron field 'day-of-week': '\u0969' (U+0969) is not an ASCII digit; "
                             "write 3"},
        /* six fields: seconds first */
        {"\u0660 0 2 * * *", "cron field 'second': '\u0660' (U+0660) is not an ASCII digit; "
                             "write 0"},
        {"0 2 * * \uff2d\uff2f\uff2e", "cron field 'day-of-week': '\uff2d' (U+FF2D) is a "
                                       "full-width character; write 'M'"},
        {"0 2 * * *\uff0a", "'\uff0a' (U+FF0A) is a full-width character; write '*'"},
        {"0\u00a02 * * *", "'\u00a0' (U+00A0) is not an ASCII space"},
        {"0 2 * * *\u3000", "(U+3000) is not an ASCII space"},
        {"0 2 * \u00e9t\u00e9 *", "cron field 'month': '\u00e9' (U+00E9) is not allowed"},
        {"@daily\u0665", "'\u0665' (U+0665) is not an ASCII digit; write 5"},
        {"0 2 * * \U0001D7D0", "(U+1D7D0) is not an ASCII digit; write 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *doc = xasprintf("{" JOB ",\"schedules\":[{\"cron\":\"%s\"}]}", cases[i].cron);
        /* The JSON escapes above are decoded by jansson; the detail must
         * hold the character itself. */
        char *quoted = xasprintf("\"%s\"", cases[i].detail);
        json_t *want = load(quoted);
        expect_bad(doc, "schedules[0].cron", json_string_value(want));
        json_decref(want);
        free(quoted);
        free(doc);
    }
}

/* Field paths and details clipped to their arrays stay whole characters,
 * so the API can put them in a JSON answer. */
static void test_error_text_is_utf8(void **state)
{
    (void)state;
    buf_t doc = BUF_INIT, key = BUF_INIT;
    for (int i = 0; i < 150; i++)
        buf_puts(&key, "\u00e9"); /* two bytes each once decoded */
    buf_printf(&doc, "{" JOB ",\"%s\":1}", key.data);
    json_t *j = load(doc.data);
    jobspec_t s;
    jobspec_error_t err;
    assert_int_equal(jobspec_parse(j, &s, &err), SKED_EINVAL);
    assert_true(strlen(err.field) > 100);
    assert_true(is_text(err.field));
    assert_true(is_text(err.detail));
    json_decref(j);

    /* An unknown time zone the compiler quotes, long enough to be clipped. */
    buf_reset(&doc);
    buf_reset(&key);
    for (int i = 0; i < 99; i++)
        buf_puts(&key, "\u0416"); /* Cyrillic Zhe: two bytes */
    buf_printf(&doc, "{" JOB ",\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":\"X%s\"}]}",
               key.data);
    j = load(doc.data);
    assert_int_equal(jobspec_parse(j, &s, &err), SKED_EINVAL);
    assert_string_equal(err.field, "schedules[0].timezone");
    assert_true(is_text(err.detail));
    json_decref(j);
    buf_free(&doc);
    buf_free(&key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_full_document),
        cmocka_unit_test(test_good_edges),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_patch),
        cmocka_unit_test(test_patch_errors),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_config_secrets),
        cmocka_unit_test(test_patch_nulls),
        cmocka_unit_test(test_cron_not_ascii),
        cmocka_unit_test(test_error_text_is_utf8),
        cmocka_unit_test(test_json_strings_as_jansson),
        cmocka_unit_test(test_canonical_text_as_before),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
