/*
 * Unit tests for core/workflow: which workflow documents are accepted and
 * what they become (defaults, the canonical JSON, the graph: upstream
 * indices and a topological order), which are refused and under which
 * field (every rule of the graph: unknown, duplicate and self names, and
 * cycles named by their path), the parse/format round trip, secrets kept
 * in the canonical form and masked by wfspec_redact, and graphs of 1,000
 * and 10,000 tasks (wide and deep) checked edge by edge.
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
#include "common/error.h"
#include "common/xalloc.h"
#include "core/workflow.h"

static json_t *load(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!j) fail_msg("bad test JSON (%s): %s", jerr.text, text);
    return j;
}

static void parse_ok(const char *text, wfspec_t *out)
{
    json_t *doc = load(text);
    jobspec_error_t err;
    int rc = wfspec_parse(doc, out, &err);
    if (rc != 0) fail_msg("rejected %s: field '%s': %s", text, err.field, err.detail);
    json_decref(doc);
}

static void parse_doc_ok(const json_t *doc, wfspec_t *out)
{
    jobspec_error_t err;
    int rc = wfspec_parse(doc, out, &err);
    if (rc != 0) fail_msg("rejected: field '%s': %s", err.field, err.detail);
}

static void assert_json_text(const json_t *got, const char *want_text)
{
    json_t *want = load(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_SORT_KEYS);
        fail_msg("\n got: %s\nwant: %s", g, w);
    }
    json_decref(want);
}

/* The canonical job fields of a task that gave only name and command. */
#define TASK_DEFAULTS                                                                              \
    "\"type\":\"shell\",\"env\":{},\"cwd\":null,\"priority\":0,\"queue\":\"default\","             \
    "\"constraints\":{},\"timeout\":null,\"retry\":{\"max_attempts\":1,\"initial\":\"10s\","       \
    "\"max\":\"10m\",\"multiplier\":2,\"jitter\":true},\"overlap\":\"allow\","                     \
    "\"misfire\":\"run_once\",\"catch_up_window\":\"1h\",\"max_concurrency\":0,\"tags\":[]"

static void test_minimal_defaults(void **state)
{
    (void)state;
    wfspec_t w;
    parse_ok("{\"name\":\"wf\",\"tasks\":[{\"name\":\"a\",\"command\":[\"true\"]}]}", &w);
    assert_string_equal(w.name, "wf");
    assert_null(w.description);
    assert_int_equal(w.nschedules, 0);
    assert_int_equal(w.max_active_runs, 1);
    assert_int_equal(w.overlap, OVERLAP_ALLOW);
    assert_int_equal(w.misfire, MISFIRE_RUN_ONCE);
    assert_int_equal(w.catch_up_window_ms, 3600 * 1000);
    assert_string_equal(w.tags, "");
    assert_int_equal(w.ntasks, 1);
    assert_int_equal(w.nedges, 0);
    assert_string_equal(w.tasks[0].name, "a");
    assert_string_equal(w.tasks[0].job.name, "a");
    assert_string_equal(w.tasks[0].job.argv[0], "true");
    assert_int_equal(w.tasks[0].rule, RULE_ALL_SUCCESS);
    assert_int_equal(w.tasks[0].ndeps, 0);
    assert_int_equal(w.topo[0], 0);

    json_t *c = wfspec_to_json(&w);
    assert_json_text(c, "{\"name\":\"wf\",\"schedules\":[],\"max_active_runs\":1,"
                        "\"overlap\":\"allow\",\"misfire\":\"run_once\","
                        "\"catch_up_window\":\"1h\",\"tags\":[],\"tasks\":[{\"name\":\"a\","
                        "\"command\":[\"true\"]," TASK_DEFAULTS
                        ",\"depends_on\":[],\"trigger_rule\":\"all_success\"}]}");
    json_decref(c);
    wfspec_free(&w);
    wfspec_free(&w); /* cleared: a second free is harmless */
    wfspec_free(NULL);
}

static const char full_doc[] =
    "{\"name\":\"nightly-etl\",\"description\":\"extract, transform, load\","
    "\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":\"Europe/Berlin\"},{\"every\":\"90m\"}],"
    "\"max_active_runs\":3,\"overlap\":\"forbid\",\"misfire\":\"catch_up\","
    "\"catch_up_window\":\"120m\",\"tags\":[\"etl\",\"b\",\"etl\"],\"tasks\":["
    "{\"name\":\"extract\",\"command\":[\"/bin/extract\"],"
    " \"env\":{\"DB_PASSWORD\":{\"secret\":\"hunter2\"},\"MODE\":\"full\"},"
    " \"retry\":{\"max_attempts\":3},\"timeout\":\"30m\",\"queue\":\"io\"},"
    "{\"name\":\"t1\",\"command\":[\"/bin/t\",\"1\"],\"depends_on\":[\"extract\"]},"
    "{\"name\":\"t2\",\"command\":[\"/bin/t\",\"2\"],\"depends_on\":[\"extract\"],"
    " \"priority\":5,\"constraints\":{\"disk\":\"ssd\"}},"
    "{\"name\":\"load\",\"command\":[\"/bin/load\"],"
    " \"depends_on\":[\"t2\",\"t1\",\"t2\",\"t1\"],\"tags\":[\"db\"]},"
    "{\"name\":\"notify\",\"command\":[\"/bin/notify\"],"
    " \"depends_on\":[\"t1\",\"t2\",\"load\"],\"trigger_rule\":\"one_failed\","
    " \"schedules\":[]}]}";

static void test_full_document(void **state)
{
    (void)state;
    wfspec_t w;
    parse_ok(full_doc, &w);
    assert_string_equal(w.description, "extract, transform, load");
    assert_int_equal(w.nschedules, 2);
    assert_string_equal(w.schedules[0].timezone, "Europe/Berlin");
    assert_int_equal(w.max_active_runs, 3);
    assert_int_equal(w.overlap, OVERLAP_FORBID);
    assert_int_equal(w.misfire, MISFIRE_CATCH_UP);
    assert_int_equal(w.catch_up_window_ms, 2 * 3600 * 1000);
    assert_string_equal(w.tags, ",b,etl,");
    assert_int_equal(w.ntasks, 5);
    /* Repeats are folded, the first mention kept in place. */
    const wf_task_t *load_t = &w.tasks[3];
    assert_int_equal(load_t->ndeps, 2);
    assert_string_equal(load_t->depends_on[0], "t2");
    assert_string_equal(load_t->depends_on[1], "t1");
    assert_int_equal(load_t->up[0], 2);
    assert_int_equal(load_t->up[1], 1);
    assert_int_equal(w.tasks[4].rule, RULE_ONE_FAILED);
    assert_int_equal(w.tasks[4].ndeps, 3);
    assert_int_equal(w.nedges, 1 + 1 + 2 + 3);
    assert_int_equal(w.tasks[0].job.retry.max_attempts, 3);
    assert_true(w.tasks[0].job.env_secret[0]);
    /* Kahn's order: the root, then each breadth in the order given. */
    size_t want[] = {0, 1, 2, 3, 4};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(w.topo[i], want[i]);

    json_t *c = wfspec_to_json(&w);
    assert_json_text(
        c, "{\"name\":\"nightly-etl\",\"description\":\"extract, transform, load\","
           "\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":\"Europe/Berlin\"},"
           "{\"every\":\"1h30m\"}],\"max_active_runs\":3,\"overlap\":\"forbid\","
           "\"misfire\":\"catch_up\",\"catch_up_window\":\"2h\",\"tags\":[\"b\",\"etl\"],"
           "\"tasks\":["
           "{\"name\":\"extract\",\"type\":\"shell\",\"command\":[\"/bin/extract\"],"
           "\"env\":{\"DB_PASSWORD\":{\"secret\":\"hunter2\"},\"MODE\":\"full\"},\"cwd\":null,"
           "\"priority\":0,\"queue\":\"io\",\"constraints\":{},\"timeout\":\"30m\","
           "\"retry\":{\"max_attempts\":3,\"initial\":\"10s\",\"max\":\"10m\",\"multiplier\":2,"
           "\"jitter\":true},\"overlap\":\"allow\",\"misfire\":\"run_once\","
           "\"catch_up_window\":\"1h\",\"max_concurrency\":0,\"tags\":[],"
           "\"depends_on\":[],\"trigger_rule\":\"all_success\"},"
           "{\"name\":\"t1\",\"command\":[\"/bin/t\",\"1\"]," TASK_DEFAULTS
           ",\"depends_on\":[\"extract\"],\"trigger_rule\":\"all_success\"},"
           "{\"name\":\"t2\",\"type\":\"shell\",\"command\":[\"/bin/t\",\"2\"],\"env\":{},"
           "\"cwd\":null,\"priority\":5,\"queue\":\"default\",\"constraints\":{\"disk\":\"ssd\"},"
           "\"timeout\":null,\"retry\":{\"max_attempts\":1,\"initial\":\"10s\",\"max\":\"10m\","
           "\"multiplier\":2,\"jitter\":true},\"overlap\":\"allow\",\"misfire\":\"run_once\","
           "\"catch_up_window\":\"1h\",\"max_concurrency\":0,\"tags\":[],"
           "\"depends_on\":[\"extract\"],\"trigger_rule\":\"all_success\"},"
           "{\"name\":\"load\",\"type\":\"shell\",\"command\":[\"/bin/load\"],\"env\":{},"
           "\"cwd\":null,\"priority\":0,\"queue\":\"default\",\"constraints\":{},"
           "\"timeout\":null,\"retry\":{\"max_attempts\":1,\"initial\":\"10s\",\"max\":\"10m\","
           "\"multiplier\":2,\"jitter\":true},\"overlap\":\"allow\",\"misfire\":\"run_once\","
           "\"catch_up_window\":\"1h\",\"max_concurrency\":0,\"tags\":[\"db\"],"
           "\"depends_on\":[\"t2\",\"t1\"],\"trigger_rule\":\"all_success\"},"
           "{\"name\":\"notify\",\"command\":[\"/bin/notify\"]," TASK_DEFAULTS
           ",\"depends_on\":[\"t1\",\"t2\",\"load\"],\"trigger_rule\":\"one_failed\"}]}");
    json_decref(c);
    wfspec_free(&w);
}

/* Field-by-field equality of two parsed workflows (the graph included). */
static void assert_same(const wfspec_t *a, const wfspec_t *b)
{
    assert_string_equal(a->name, b->name);
    assert_true((a->description == NULL) == (b->description == NULL));
    if (a->description) assert_string_equal(a->description, b->description);
    assert_int_equal(a->nschedules, b->nschedules);
    for (size_t i = 0; i < a->nschedules; i++) {
        assert_string_equal(a->schedules[i].expr, b->schedules[i].expr);
        assert_int_equal(a->schedules[i].spec.kind, b->schedules[i].spec.kind);
    }
    assert_int_equal(a->max_active_runs, b->max_active_runs);
    assert_int_equal(a->overlap, b->overlap);
    assert_int_equal(a->misfire, b->misfire);
    assert_int_equal(a->catch_up_window_ms, b->catch_up_window_ms);
    assert_string_equal(a->tags, b->tags);
    assert_int_equal(a->ntasks, b->ntasks);
    assert_int_equal(a->nedges, b->nedges);
    for (size_t i = 0; i < a->ntasks; i++) {
        const wf_task_t *x = &a->tasks[i], *y = &b->tasks[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->rule, y->rule);
        assert_int_equal(x->ndeps, y->ndeps);
        for (size_t j = 0; j < x->ndeps; j++) {
            assert_string_equal(x->depends_on[j], y->depends_on[j]);
            assert_int_equal(x->up[j], y->up[j]);
        }
        json_t *jx = jobspec_to_json(&x->job), *jy = jobspec_to_json(&y->job);
        assert_true(json_equal(jx, jy));
        json_decref(jx);
        json_decref(jy);
        assert_int_equal(a->topo[i], b->topo[i]);
    }
}

static void test_round_trip(void **state)
{
    (void)state;
    const char *docs[] = {
        full_doc,
        "{\"name\":\"w\",\"tasks\":[{\"name\":\"only\",\"command\":[\"x\"],"
        "\"trigger_rule\":\"all_done\",\"cwd\":\"/tmp\",\"sla\":{\"finish_within\":\"5m\"}}]}",
    };
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        wfspec_t a, b;
        parse_ok(docs[d], &a);
        json_t *ca = wfspec_to_json(&a);
        parse_doc_ok(ca, &b);
        json_t *cb = wfspec_to_json(&b);
        assert_true(json_equal(ca, cb));
        assert_same(&a, &b);
        json_decref(ca);
        json_decref(cb);
        wfspec_free(&a);
        wfspec_free(&b);
    }
}

static void test_every_trigger_rule_parses(void **state)
{
    (void)state;
    for (int r = 0; r < RULE_COUNT; r++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"name\":\"w\",\"tasks\":[{\"name\":\"a\",\"command\":[\"x\"]},"
                 "{\"name\":\"b\",\"command\":[\"x\"],\"depends_on\":[\"a\"],"
                 "\"trigger_rule\":\"%s\"}]}",
                 trigger_rule_name((trigger_rule_t)r));
        wfspec_t w;
        parse_ok(text, &w);
        assert_int_equal(w.tasks[1].rule, r);
        json_t *c = wfspec_to_json(&w);
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(c, "tasks"), 1), "trigger_rule")),
                            trigger_rule_name((trigger_rule_t)r));
        json_decref(c);
        wfspec_free(&w);
    }
}

/* ---- refusals ------------------------------------------------------------ */

typedef struct bad_case {
    const char *doc;
    const char *field;
    const char *detail; /* the whole detail, or a prefix when it ends in '*' */
} bad_case_t;

#define T(extra)  "{\"name\":\"" extra "\",\"command\":[\"x\"]"
#define WF(tasks) "{\"name\":\"w\",\"tasks\":[" tasks "]}"

static const bad_case_t bad_cases[] = {
    {"[]", "", "the workflow document must be a JSON object"},
    {"{\"name\":\"w\",\"tasks\":[" T("a") "}],\"bogus\":1}", "bogus", "bogus: unknown field"},
    {"{\"tasks\":[" T("a") "}]}", "name", "name: is required"},
    {"{\"name\":null,\"tasks\":[" T("a") "}]}", "name", "name: is required and must not be null"},
    {"{\"name\":\"a\\u0001\",\"tasks\":[" T("a") "}]}", "name",
     "name: must not contain control characters"},
    {"{\"name\":\"w\"}", "tasks", "tasks: is required: give an array of tasks"},
    {"{\"name\":\"w\",\"tasks\":null}", "tasks", "tasks: is required and must not be null"},
    {"{\"name\":\"w\",\"tasks\":{}}", "tasks", "tasks: must be an array of tasks"},
    {"{\"name\":\"w\",\"tasks\":[]}", "tasks", "tasks: must have at least one task"},
    {"{\"name\":\"w\",\"description\":5,\"tasks\":[" T("a") "}]}", "description",
     "description: must be a string"},
    {"{\"name\":\"w\",\"schedules\":[{\"cron\":\"0 24 * * *\"}],\"tasks\":[" T("a") "}]}",
     "schedules[0].cron", "*"},
    {"{\"name\":\"w\",\"schedules\":{},\"tasks\":[" T("a") "}]}", "schedules",
     "schedules: must be an array"},
    {"{\"name\":\"w\",\"max_active_runs\":0,\"tasks\":[" T("a") "}]}", "max_active_runs",
     "max_active_runs: must be between 1 and 1000"},
    {"{\"name\":\"w\",\"max_active_runs\":1001,\"tasks\":[" T("a") "}]}", "max_active_runs",
     "max_active_runs: must be between 1 and 1000"},
    {"{\"name\":\"w\",\"overlap\":\"queue\",\"tasks\":[" T("a") "}]}", "overlap",
     "overlap: must be one of \"allow\", \"forbid\", \"replace\""},
    {"{\"name\":\"w\",\"misfire\":\"never\",\"tasks\":[" T("a") "}]}", "misfire",
     "misfire: must be one of \"run_once\", \"catch_up\", \"skip\""},
    {"{\"name\":\"w\",\"catch_up_window\":\"0s\",\"tasks\":[" T("a") "}]}", "catch_up_window",
     "catch_up_window: must be greater than 0"},
    {"{\"name\":\"w\",\"tags\":[1],\"tasks\":[" T("a") "}]}", "tags[0]",
     "tags[0]: must be a string"},
    /* A task: its job fields, named under tasks[i]. */
    {WF("5"), "tasks[0]", "tasks[0]: must be an object*"},
    {WF(T("a") "}, {\"name\":\"b\"}"), "tasks[1].command", "tasks[1].command: is required"},
    {WF(T("a") ",\"bogus\":1}"), "tasks[0].bogus", "tasks[0].bogus: unknown field"},
    {WF(T("a") ",\"env\":{\"SKED_X\":\"1\"}}"), "tasks[0].env.SKED_X",
     "tasks[0].env.SKED_X: names starting with SKED_ are reserved for sked"},
    {WF(T("a") ",\"env\":{\"K\":{\"secret\":\"***\"}}}"), "tasks[0].env.K.secret", "*"},
    {WF(T("a") ",\"retry\":{\"max_attempts\":0}}"), "tasks[0].retry.max_attempts", "*"},
    {WF("{\"command\":[\"x\"]}"), "tasks[0].name", "tasks[0].name: is required"},
    {WF(T("a") ",\"schedules\":[{\"every\":\"1m\"}]}"), "tasks[0].schedules",
     "tasks[0].schedules: a task has no schedules of its own*"},
    {WF(T("a") ",\"schedules\":null}"), "tasks[0].schedules", "*"},
    {WF(T("a") ",\"array\":{\"count\":3}}"), "tasks[0].array",
     "tasks[0].array: a workflow task cannot be a job array"},
    {WF(T("a") ",\"trigger_rule\":\"all\"}"), "tasks[0].trigger_rule",
     "tasks[0].trigger_rule: must be one of \"all_success\", \"all_done\", \"all_failed\", "
     "\"one_success\", \"one_failed\", \"none_failed\""},
    {WF(T("a") ",\"trigger_rule\":null}"), "tasks[0].trigger_rule", "*"},
    {WF(T("a") "}," T("b") ",\"depends_on\":\"a\"}"), "tasks[1].depends_on",
     "tasks[1].depends_on: must be an array of task names"},
    {WF(T("a") "}," T("b") ",\"depends_on\":null}"), "tasks[1].depends_on", "*"},
    {WF(T("a") "}," T("b") ",\"depends_on\":[\"a\",7]}"), "tasks[1].depends_on[1]",
     "tasks[1].depends_on[1]: must be a string"},
    {WF(T("a") "}," T("b") ",\"depends_on\":[\"\"]}"), "tasks[1].depends_on[0]",
     "tasks[1].depends_on[0]: must not be empty"},
    /* The graph. */
    {WF(T("a") "}," T("b") "}," T("c") "}," T("d") ",\"depends_on\":[\"a\",\"x\"]}"),
     "tasks[3].depends_on[1]", "tasks[3].depends_on[1]: unknown task \"x\""},
    {WF(T("a") "}," T("b") ",\"depends_on\":[\"a\",\"b\"]}"), "tasks[1].depends_on[1]",
     "tasks[1].depends_on[1]: task \"b\" cannot depend on itself"},
    {WF(T("a") "}," T("b") "}," T("a") "}"), "tasks[2].name",
     "tasks[2].name: duplicate task name \"a\" (also tasks[0])"},
    {WF(T("a") ",\"depends_on\":[\"b\"]}," T("b") ",\"depends_on\":[\"c\"]}," T(
         "c") ",\"depends_on\":[\"a\"]}"),
     "tasks", "tasks: cycle: a -> c -> b -> a (each task depends on the one before it)"},
    {WF(T("a") ",\"depends_on\":[\"b\"]}," T("b") ",\"depends_on\":[\"a\"]}"), "tasks",
     "tasks: cycle: a -> b -> a (each task depends on the one before it)"},
    /* Walks into the cycle from w (downstream of it) and past r (a root):
     * only the cycle is named, from its task listed first. */
    {WF(T("w") ",\"depends_on\":[\"x\"]}," T("r") "}," T("z") ",\"depends_on\":[\"y\"]}," T(
         "x") ",\"depends_on\":[\"r\",\"z\"]}," T("y") ",\"depends_on\":[\"x\"]}"),
     "tasks", "tasks: cycle: z -> x -> y -> z (each task depends on the one before it)"},
};

static void check_bad(const char *text, const char *field, const char *detail)
{
    json_t *doc = load(text);
    wfspec_t w;
    jobspec_error_t err;
    int rc = wfspec_parse(doc, &w, &err);
    json_decref(doc);
    if (rc == 0) {
        wfspec_free(&w);
        fail_msg("accepted %s", text);
    }
    assert_int_equal(rc, SKED_EINVAL);
    if (strcmp(err.field, field) != 0)
        fail_msg("%s\n field '%s' (%s), want '%s'", text, err.field, err.detail, field);
    size_t n = strlen(detail);
    bool prefix = n && detail[n - 1] == '*';
    if (prefix ? strncmp(err.detail, detail, n - 1) != 0 : strcmp(err.detail, detail) != 0)
        fail_msg("%s\n detail '%s'\n   want '%s'", text, err.detail, detail);
    /* Refused means empty. */
    assert_null(w.tasks);
    assert_null(w.name);
    assert_null(w.topo);
}

static void test_refusals_name_the_field(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++)
        check_bad(bad_cases[i].doc, bad_cases[i].field, bad_cases[i].detail);
}

/* A document of n tasks "t0".."t<n-1>"; deps(i, b) appends task i's
 * depends_on entries (JSON strings, comma-separated) to b. */
static json_t *make_doc(size_t n, void (*deps)(size_t i, size_t n, buf_t *b))
{
    buf_t b = BUF_INIT;
    buf_puts(&b, "{\"name\":\"big\",\"tasks\":[");
    for (size_t i = 0; i < n; i++) {
        buf_printf(&b, "%s{\"name\":\"t%zu\",\"command\":[\"true\"],\"depends_on\":[", i ? "," : "",
                   i);
        deps(i, n, &b);
        buf_puts(&b, "]}");
    }
    buf_puts(&b, "]}");
    json_t *doc = load(b.data);
    buf_free(&b);
    return doc;
}

static void deps_ring(size_t i, size_t n, buf_t *b)
{
    buf_printf(b, "\"t%zu\"", (i + n - 1) % n);
}

static void deps_many_repeats(size_t i, size_t n, buf_t *b)
{
    for (size_t k = 0; i > 0 && k < 10000; k++)
        buf_printf(b, "%s\"t0\"", k ? "," : "");
}

static void deps_none(size_t i, size_t n, buf_t *b)
{
    (void)i;
    (void)n;
    (void)b;
}

static void deps_too_many(size_t i, size_t n, buf_t *b)
{
    for (size_t k = 0; i == 1 && k < WORKFLOW_TASKS_MAX + 1; k++)
        buf_printf(b, "%s\"t0\"", k ? "," : "");
}

static void test_limits(void **state)
{
    (void)state;
    wfspec_t w;
    jobspec_error_t err;

    /* A ring of 10,000: the longest possible cycle, named with its middle left out. */
    json_t *doc = make_doc(WORKFLOW_TASKS_MAX, deps_ring);
    assert_int_equal(wfspec_parse(doc, &w, &err), SKED_EINVAL);
    assert_string_equal(err.field, "tasks");
    const char *head = "tasks: cycle of 10000 tasks: t0 -> t1 -> t2 -> ";
    if (strncmp(err.detail, head, strlen(head)) != 0) fail_msg("detail: %s", err.detail);
    if (!strstr(err.detail, " -> ... -> t9999 -> t0 (each task depends on the one before it)"))
        fail_msg("detail: %s", err.detail);
    json_decref(doc);

    /* One task too many. */
    doc = make_doc(WORKFLOW_TASKS_MAX + 1, deps_none);
    assert_int_equal(wfspec_parse(doc, &w, &err), SKED_EINVAL);
    assert_string_equal(err.field, "tasks");
    assert_string_equal(err.detail, "tasks: must have at most 10000 entries");
    json_decref(doc);

    /* depends_on entries: at most 10,000 in one task... */
    doc = make_doc(2, deps_too_many);
    assert_int_equal(wfspec_parse(doc, &w, &err), SKED_EINVAL);
    assert_string_equal(err.field, "tasks[1].depends_on");
    json_decref(doc);
    /* ... and 100,000 in all, counted as given (repeats too). */
    doc = make_doc(12, deps_many_repeats);
    assert_int_equal(wfspec_parse(doc, &w, &err), SKED_EINVAL);
    assert_string_equal(err.field, "tasks[11].depends_on");
    assert_string_equal(err.detail,
                        "tasks[11].depends_on: a workflow may have at most 100000 dependencies "
                        "in all");
    json_decref(doc);
    /* 10 such tasks are fine, and fold to one edge each. */
    doc = make_doc(11, deps_many_repeats);
    parse_doc_ok(doc, &w);
    assert_int_equal(w.nedges, 10);
    assert_int_equal(w.tasks[10].ndeps, 1);
    wfspec_free(&w);
    json_decref(doc);
}

/* ---- big graphs ---------------------------------------------------------- */

/* Checks w->topo is a permutation in which every task comes after all its
 * upstreams, and that the upstream indices match the names. */
static void assert_topological(const wfspec_t *w)
{
    size_t n = w->ntasks;
    size_t *pos = xmalloc(n * sizeof *pos);
    for (size_t i = 0; i < n; i++)
        pos[i] = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        assert_true(w->topo[k] < n);
        assert_int_equal(pos[w->topo[k]], SIZE_MAX); /* each task once */
        pos[w->topo[k]] = k;
    }
    for (size_t i = 0; i < n; i++) {
        const wf_task_t *t = &w->tasks[i];
        for (size_t j = 0; j < t->ndeps; j++) {
            assert_string_equal(w->tasks[t->up[j]].name, t->depends_on[j]);
            assert_true(pos[t->up[j]] < pos[i]);
        }
    }
    free(pos);
}

/* Wide, 1 -> n-2 -> 1: the source t1, the middle t2.. (each waits for
 * t1), and the join t0 (waits for all the middle), listed first. */
static void deps_wide(size_t i, size_t n, buf_t *b)
{
    if (i == 0) {
        for (size_t k = 1; k < n - 1; k++)
            buf_printf(b, "%s\"t%zu\"", k > 1 ? "," : "", k + 1);
    } else if (i >= 2) {
        buf_puts(b, "\"t1\"");
    }
}

/* Deep: a chain listed backwards, t_i depends on t_{i+1}. */
static void deps_chain_backwards(size_t i, size_t n, buf_t *b)
{
    if (i + 1 < n) buf_printf(b, "\"t%zu\"", i + 1);
}

static void test_wide_1000(void **state)
{
    (void)state;
    json_t *doc = make_doc(1000, deps_wide);
    wfspec_t w;
    parse_doc_ok(doc, &w);
    assert_int_equal(w.ntasks, 1000);
    assert_int_equal(w.nedges, 998 * 2);
    assert_int_equal(w.tasks[0].ndeps, 998);
    for (size_t j = 0; j < 998; j++)
        assert_int_equal(w.tasks[0].up[j], j + 2);
    assert_int_equal(w.tasks[1].ndeps, 0);
    assert_int_equal(w.topo[0], 1);   /* the only root */
    assert_int_equal(w.topo[999], 0); /* the join, last */
    for (size_t k = 1; k < 999; k++)
        assert_int_equal(w.topo[k], k + 1); /* the middle, in the order given */
    assert_topological(&w);
    wfspec_free(&w);
    json_decref(doc);
}

static void test_deep_chains(void **state)
{
    (void)state;
    size_t sizes[] = {1000, WORKFLOW_TASKS_MAX};
    for (size_t s = 0; s < 2; s++) {
        size_t n = sizes[s];
        json_t *doc = make_doc(n, deps_chain_backwards);
        wfspec_t w;
        parse_doc_ok(doc, &w);
        assert_int_equal(w.nedges, n - 1);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(w.topo[k], n - 1 - k); /* the last listed runs first */
        assert_topological(&w);
        wfspec_free(&w);
        json_decref(doc);
    }
}

/* ---- secrets ------------------------------------------------------------- */

static void test_secrets_kept_and_redacted(void **state)
{
    (void)state;
    wfspec_t w;
    parse_ok(full_doc, &w);
    json_t *c = wfspec_to_json(&w);
    json_t *env = json_object_get(json_array_get(json_object_get(c, "tasks"), 0), "env");
    assert_json_text(env, "{\"DB_PASSWORD\":{\"secret\":\"hunter2\"},\"MODE\":\"full\"}");

    json_t *r = wfspec_redact(c);
    json_t *renv = json_object_get(json_array_get(json_object_get(r, "tasks"), 0), "env");
    assert_json_text(renv, "{\"DB_PASSWORD\":{\"secret\":\"***\"},\"MODE\":\"full\"}");
    /* The original is untouched; nothing else changed. */
    assert_json_text(env, "{\"DB_PASSWORD\":{\"secret\":\"hunter2\"},\"MODE\":\"full\"}");
    json_object_set(json_object_get(json_array_get(json_object_get(r, "tasks"), 0), "env"),
                    "DB_PASSWORD", json_object_get(env, "DB_PASSWORD"));
    assert_true(json_equal(r, c));

    /* A redacted document sent back is refused, not stored with "***". */
    json_decref(r);
    r = wfspec_redact(c);
    wfspec_t again;
    jobspec_error_t err;
    assert_int_equal(wfspec_parse(r, &again, &err), SKED_EINVAL);
    assert_string_equal(err.field, "tasks[0].env.DB_PASSWORD.secret");

    /* A Workflow resource (extra members) is redacted the same way. */
    json_t *res = json_pack("{s:s, s:[{s:s, s:{s:{s:s}}}]}", "id", "wf_1", "tasks", "job_id",
                            "job_9", "env", "TOKEN", "secret", "abc");
    json_t *rres = wfspec_redact(res);
    assert_json_text(rres, "{\"id\":\"wf_1\",\"tasks\":[{\"job_id\":\"job_9\","
                           "\"env\":{\"TOKEN\":{\"secret\":\"***\"}}}]}");
    json_decref(res);
    json_decref(rres);
    json_decref(r);
    json_decref(c);
    wfspec_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_full_document),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_every_trigger_rule_parses),
        cmocka_unit_test(test_refusals_name_the_field),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_wide_1000),
        cmocka_unit_test(test_deep_chains),
        cmocka_unit_test(test_secrets_kept_and_redacted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
