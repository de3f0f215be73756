/*
 * Store conformance of the run graph (graph.c, workflows.c, core/deps.c):
 * workflow runs, job arrays and job dependencies, driven through the
 * public store.h verbs only, with fixed instants as now_ms. The same file
 * runs against every backend; argv[1] names it:
 *
 *   test_graph sqlite    a fresh sqlite:<temp dir>/sked.db per test
 *   test_graph postgres  a schema of its own per test in $SKED_TEST_PG_URL
 *
 * Each case states what a user relies on and checks every member of the
 * graph after each step (a summary of all members, so that a run that
 * moved when it should not have fails the test too). The expected
 * verdicts come from this file's own tables, not from core/deps.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "core/jobspec.h"
#include "store/store.h"

#include "run_events.h"

#define T0       INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define LEASE_MS INT64_C(30000)
#define BACKOFF  INT64_C(1000) /* the retry delay of the tasks that retry (no jitter) */

static const char *g_backend = "sqlite";

struct ctx {
    char dir[256];
    char url[600];
    store_t *st;
    char wid[SKED_ID_LEN]; /* one worker of queue "default" */
};

/* ---- harness ---------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fresh_url(struct ctx *c)
{
    if (strcmp(g_backend, "postgres") == 0) {
        const char *url = getenv("SKED_TEST_PG_URL");
        static unsigned seq;
        if (!url) url = "";
        snprintf(c->url, sizeof c->url, "%s%ssked_schema=g%d_%u", url, strchr(url, '?') ? "&" : "?",
                 (int)getpid(), ++seq);
        c->dir[0] = '\0';
        return;
    }
    snprintf(c->dir, sizeof c->dir, "/tmp/sked-graph-test-XXXXXX");
    if (!mkdtemp(c->dir)) fail_msg("mkdtemp failed");
    snprintf(c->url, sizeof c->url, "sqlite:%s/sked.db", c->dir);
}

static int setup(void **state)
{
    struct ctx *c = xcalloc(1, sizeof *c);
    fresh_url(c);
    char *err = NULL;
    int rc = store_open(c->url, &c->st, &err);
    if (rc != 0) fail_msg("store_open(%s): %s: %s", c->url, sked_errname(rc), err ? err : "");
    free(err);
    store_worker_t w = {0};
    w.name = xstrdup("w");
    w.host = xstrdup("localhost");
    w.queues = xstrdup("default");
    w.labels = xstrdup("");
    w.slots = 1000;
    assert_int_equal(store_worker_register(c->st, &w, NULL, T0), 0);
    memcpy(c->wid, w.id, SKED_ID_LEN);
    store_worker_clear(&w);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    store_close(c->st);
    if (c->dir[0]) nftw(c->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(c);
    return 0;
}

#define CTX ((struct ctx *)*state)
#define ST  (CTX->st)
#define WID (CTX->wid)

/* ---- jobs and workflows ------------------------------------------------------------ */

/* A job with defaults: one attempt, or `attempts` with a fixed BACKOFF. */
static void mkjob(store_job_t *j, const char *name, int attempts)
{
    memset(j, 0, sizeof *j);
    j->name = xstrdup(name);
    j->queue = xstrdup("default");
    j->spec_json = xasprintf("{\"name\":\"%s\",\"command\":[\"true\"]}", name);
    j->constraints = xstrdup("");
    j->tags = xstrdup("");
    j->owner = xstrdup("admin");
    j->retry = retry_policy_default();
    j->retry.max_attempts = attempts > 0 ? attempts : 1;
    j->retry.initial_ms = BACKOFF;
    j->retry.max_ms = BACKOFF;
    j->retry.multiplier = 1.0;
    j->retry.jitter = false;
    j->bad_dep = -1;
}

/* A task of a workflow: its name, its upstreams by name ("a,b"; "" =
 * none), its trigger rule and its attempts (0 = 1). */
typedef struct tdef {
    const char *name;
    const char *ups;
    trigger_rule_t rule;
    int attempts;
} tdef_t;

/* Index of task `name` among t[0..n). */
static size_t tindex(const tdef_t *t, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(t[i].name) == len && strncmp(t[i].name, name, len) == 0) return i;
    fail_msg("no task %.*s", (int)len, name);
    return 0;
}

/* Creates workflow `name` of tasks t (ownership of the jobs stays here). */
static void wf_put_jobs(store_t *st, const char *name, store_job_t *tasks, size_t n, int max_active,
                        overlap_policy_t ov, int64_t now, char wf_id[SKED_ID_LEN])
{
    store_job_t wf;
    mkjob(&wf, name, 1);
    wf.max_active = max_active;
    wf.overlap = ov;
    int rc = store_workflow_put(st, &wf, NULL, 0, tasks, n, -1, NULL, NULL, now);
    if (rc != 0) fail_msg("store_workflow_put(%s): %s", name, sked_errname(rc));
    assert_int_equal(wf.kind, JOB_KIND_WORKFLOW);
    memcpy(wf_id, wf.id, SKED_ID_LEN);
    store_job_clear(&wf);
}

static void wf_put(store_t *st, const char *name, const tdef_t *t, size_t n, int max_active,
                   overlap_policy_t ov, int64_t now, char wf_id[SKED_ID_LEN])
{
    store_job_t *tasks = xcalloc(n, sizeof *tasks);
    for (size_t i = 0; i < n; i++) {
        mkjob(&tasks[i], t[i].name, t[i].attempts);
        tasks[i].deps_rule = t[i].rule;
        for (const char *p = t[i].ups; p && *p;) {
            size_t len = strcspn(p, ",");
            tasks[i].deps = xrealloc(tasks[i].deps, (tasks[i].ndeps + 1) * sizeof *tasks[i].deps);
            store_dep_t *d = &tasks[i].deps[tasks[i].ndeps++];
            memset(d, 0, sizeof *d);
            d->task = tindex(t, n, p, len);
            d->cond = DEP_TASK;
            p += len + (p[len] == ',');
        }
    }
    wf_put_jobs(st, name, tasks, n, max_active, ov, now, wf_id);
    for (size_t i = 0; i < n; i++)
        store_job_clear(&tasks[i]);
    free(tasks);
}

static void trigger(store_t *st, const char *job_id, int64_t now, char run_id[SKED_ID_LEN])
{
    int rc = store_run_trigger(st, job_id, NULL, now, run_id);
    if (rc != 0) fail_msg("store_run_trigger: %s", sked_errname(rc));
}

/* The diamond a -> {b, c} -> d; c's rule and d's as given. */
static void diamond(store_t *st, const char *name, trigger_rule_t c_rule, int c_attempts,
                    trigger_rule_t d_rule, int64_t now, char wf_id[SKED_ID_LEN])
{
    const tdef_t t[] = {
        {"a", "", RULE_ALL_SUCCESS, 0},
        {"b", "a", RULE_ALL_SUCCESS, 0},
        {"c", "a", c_rule, c_attempts},
        {"d", "b,c", d_rule, 0},
    };
    wf_put(st, name, t, 4, 0, OVERLAP_ALLOW, now, wf_id);
}

/* ---- group runs --------------------------------------------------------------------- */

typedef struct gsnap {
    store_run_t run;
    store_group_t g;
    store_member_t *m;
    size_t n;
} gsnap_t;

static gsnap_t gget(store_t *st, const char *id)
{
    gsnap_t s;
    memset(&s, 0, sizeof s);
    int rc = store_group_get(st, id, &s.run, &s.g, &s.m, &s.n);
    if (rc != 0) fail_msg("store_group_get(%s): %s", id, sked_errname(rc));
    return s;
}

static void gfree(gsnap_t *s)
{
    store_run_clear(&s->run);
    for (size_t i = 0; i < s->n; i++)
        store_member_clear(&s->m[i]);
    free(s->m);
    memset(s, 0, sizeof *s);
}

/* The member of a workflow run by task name (its run id in id). */
static void member_id(store_t *st, const char *group, const char *name, char id[SKED_ID_LEN])
{
    gsnap_t s = gget(st, group);
    id[0] = '\0';
    for (size_t i = 0; i < s.n; i++)
        if (strcmp(s.m[i].name, name) == 0) memcpy(id, s.m[i].run.id, SKED_ID_LEN);
    gfree(&s);
    if (!id[0]) fail_msg("no member %s in %s", name, group);
}

static store_run_t get_run(store_t *st, const char *id)
{
    store_run_t r;
    int rc = store_run_get(st, id, &r, NULL, NULL);
    if (rc != 0) fail_msg("store_run_get(%s): %s", id, sked_errname(rc));
    return r;
}

/* "state" or "state(reason)" of one run. New. */
static char *run_desc(const store_run_t *r)
{
    if (r->reason && (r->state == RUN_SKIPPED || r->state == RUN_CANCELED))
        return xasprintf("%s(%s)", run_state_name(r->state), r->reason);
    return xstrdup(run_state_name(r->state));
}

static char *run_str(store_t *st, const char *id)
{
    store_run_t r = get_run(st, id);
    char *s = run_desc(&r);
    store_run_clear(&r);
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every member as "name=state" (a task) or "index=state" (an array's),
 * sorted, with the skip or cancel reason of those that have one; a
 * running one asked to cancel is "running!". New. */
static char *members_str(store_t *st, const char *group)
{
    gsnap_t s = gget(st, group);
    char **v = xcalloc(s.n + 1, sizeof *v);
    for (size_t i = 0; i < s.n; i++) {
        char *d = run_desc(&s.m[i].run);
        const char *bang =
            s.m[i].run.cancel_requested && s.m[i].run.state == RUN_RUNNING ? "!" : "";
        if (s.m[i].run.array_index >= 0)
            v[i] = xasprintf("%d=%s%s", s.m[i].run.array_index, d, bang);
        else
            v[i] = xasprintf("%s=%s%s", s.m[i].name, d, bang);
        free(d);
    }
    qsort(v, s.n, sizeof *v, cmp_str);
    char *out = xstrdup("");
    for (size_t i = 0; i < s.n; i++) {
        char *t = xasprintf("%s%s%s", out, i ? " " : "", v[i]);
        free(out);
        free(v[i]);
        out = t;
    }
    free(v);
    gfree(&s);
    return out;
}

/* The group's state and counts: "waiting n=4 open=4 ok=0 failed=0
 * canceled=0 skipped=0" ("unstarted" when it waits for room), or "waiting
 * for upstreams" when it has no counts yet. New. */
static char *group_str(store_t *st, const char *group)
{
    gsnap_t s = gget(st, group);
    if (!s.g.is_group) {
        char *out = xasprintf("%s for upstreams", run_state_name(s.run.state));
        gfree(&s);
        return out;
    }
    char *out = xasprintf("%s%s n=%d open=%d ok=%d failed=%d canceled=%d skipped=%d",
                          run_state_name(s.run.state), s.g.started ? "" : " unstarted", s.g.n,
                          s.g.open, s.g.ok, s.g.failed, s.g.canceled, s.g.skipped);
    gfree(&s);
    return out;
}

#define EXPECT_STR(expr, want)                                                                     \
    do {                                                                                           \
        char *got_ = (expr);                                                                       \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

#define EXPECT_MEMBERS(st, g, want) EXPECT_STR(members_str(st, g), want)
#define EXPECT_GROUP(st, g, want)   EXPECT_STR(group_str(st, g), want)
#define EXPECT_RUN(st, id, want)    EXPECT_STR(run_str(st, id), want)

/* ---- the worker ----------------------------------------------------------------------- */

typedef struct got {
    char id[SKED_ID_LEN];
    char parent[SKED_ID_LEN];
    int attempt;
    int64_t fence;
    char name[256];
    int index;
} got_t;

/* Claims up to max runs into out (room for max). */
static size_t take(store_t *st, const char *wid, int max, int64_t now, got_t *out)
{
    store_claimed_t *v = NULL;
    size_t n = 0;
    int rc = store_claim(st, wid, NULL, max, LEASE_MS, now, &v, &n);
    if (rc != 0) fail_msg("store_claim: %s", sked_errname(rc));
    assert_true(n <= (size_t)max);
    for (size_t i = 0; i < n; i++) {
        memcpy(out[i].id, v[i].run.id, SKED_ID_LEN);
        memcpy(out[i].parent, v[i].run.parent_id, SKED_ID_LEN);
        out[i].attempt = v[i].run.attempt;
        out[i].fence = v[i].run.fence;
        snprintf(out[i].name, sizeof out[i].name, "%s", v[i].job_name);
        out[i].index = v[i].run.array_index;
        store_claimed_clear(&v[i]);
    }
    free(v);
    return n;
}

/* What a claim handed out, sorted: task names, or array indices. New. */
static char *got_str(const got_t *g, size_t n)
{
    char **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = g[i].index >= 0 ? xasprintf("%d", g[i].index) : xstrdup(g[i].name);
    qsort(v, n, sizeof *v, cmp_str);
    char *out = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        char *t = xasprintf("%s%s%s", out, i ? "," : "", v[i]);
        free(out);
        free(v[i]);
        out = t;
    }
    free(v);
    return out;
}

/* Claims (at most 16) and checks what was handed out; keeps it in out. */
static size_t take_expect_at(store_t *st, const char *wid, int64_t now, got_t *out,
                             const char *want, const char *file, int line)
{
    size_t n = take(st, wid, 16, now, out);
    char *got = got_str(out, n);
    _assert_string_equal(got, want, file, line);
    free(got);
    return n;
}
#define take_expect(st, wid, now, out, want)                                                       \
    take_expect_at(st, wid, now, out, want, __FILE__, __LINE__)

/* The claimed run named `name` (a task name, or an index as text). */
static const got_t *got_find(const got_t *g, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%d", g[i].index);
        if (g[i].index >= 0 ? strcmp(idx, name) == 0 : strcmp(g[i].name, name) == 0) return &g[i];
    }
    fail_msg("%s was not claimed", name);
    return NULL;
}

static void finish(store_t *st, const got_t *g, attempt_outcome_t o, int64_t now)
{
    store_result_t res = {.outcome = o, .exit_code = o == ATTEMPT_SUCCEEDED ? 0 : 1};
    int rc = store_complete(st, g->id, g->attempt, g->fence, NULL, &res, now);
    if (rc != 0) fail_msg("store_complete(%s): %s", g->name, sked_errname(rc));
}

static void finish_name(store_t *st, const got_t *g, size_t n, const char *name,
                        attempt_outcome_t o, int64_t now)
{
    finish(st, got_find(g, n, name), o, now);
}

/* Nothing at all is claimable at `now`. */
static void nothing_claimable(store_t *st, const char *wid, int64_t now)
{
    got_t g[4];
    size_t n = take(st, wid, 4, now, g);
    if (n) {
        char s[512];
        char *v = got_str(g, n);
        snprintf(s, sizeof s, "%s", v);
        free(v);
        fail_msg("claimable, expected nothing: %s", s);
    }
}

/* Claims and succeeds everything claimable at now, until nothing is
 * (bounded); returns how many runs it ran. */
static size_t run_all(store_t *st, const char *wid, int64_t now)
{
    got_t got[64];
    size_t total = 0;
    for (int round = 0; round < 1000; round++) {
        size_t n = take(st, wid, 64, now, got);
        if (n == 0) return total;
        for (size_t i = 0; i < n; i++)
            finish(st, &got[i], ATTEMPT_SUCCEEDED, now);
        total += n;
    }
    fail_msg("run_all did not settle");
    return total;
}

/* ---- 1. the diamond under each trigger rule ------------------------------------------------ */

/* How c ends: it fails (its one attempt), is canceled while it runs, or
 * is skipped by its own rule (all_failed over a that succeeded). */
enum c_end { C_FAILS, C_CANCELED, C_SKIPPED };

/* d's state once c ended (b still running), and once b succeeded too. */
typedef struct dcase {
    trigger_rule_t rule;
    const char *after_c, *after_b;
} dcase_t;

/* c failed or canceled: both count as failed for d. */
static const dcase_t c_failed_table[] = {
    {RULE_ALL_SUCCESS, "skipped(upstream_failed)", "skipped(upstream_failed)"},
    {RULE_ALL_DONE, "waiting", "pending"},
    {RULE_ALL_FAILED, "waiting", "skipped(upstream_succeeded)"},
    {RULE_ONE_SUCCESS, "waiting", "pending"},
    {RULE_ONE_FAILED, "pending", "pending"},
    {RULE_NONE_FAILED, "skipped(upstream_failed)", "skipped(upstream_failed)"},
};

/* c skipped (it is decided when a ends, before b runs). */
static const dcase_t c_skipped_table[] = {
    {RULE_ALL_SUCCESS, "skipped(upstream_skipped)", "skipped(upstream_skipped)"},
    {RULE_ALL_DONE, "waiting", "pending"},
    {RULE_ALL_FAILED, "skipped(upstream_skipped)", "skipped(upstream_skipped)"},
    {RULE_ONE_SUCCESS, "waiting", "pending"},
    {RULE_ONE_FAILED, "waiting", "skipped(upstream_succeeded)"},
    {RULE_NONE_FAILED, "waiting", "pending"},
};

static void run_diamond(void **state, enum c_end how, const dcase_t *tc, int64_t t)
{
    char wf[SKED_ID_LEN], g[SKED_ID_LEN], name[64], want[256], cid[SKED_ID_LEN], did[SKED_ID_LEN];
    got_t got[16];
    const char *rule = trigger_rule_name(tc->rule);
    static const char *const how_name[] = {"fails", "canceled", "skipped"};
    snprintf(name, sizeof name, "diamond-%s-%s", how_name[how], rule);
    print_message("  %s\n", name);
    diamond(ST, name, how == C_SKIPPED ? RULE_ALL_FAILED : RULE_ALL_SUCCESS, 1, tc->rule, t, wf);

    trigger(ST, wf, t, g);
    EXPECT_MEMBERS(ST, g, "a=pending b=waiting c=waiting d=waiting");
    EXPECT_GROUP(ST, g, "waiting n=4 open=4 ok=0 failed=0 canceled=0 skipped=0");
    member_id(ST, g, "c", cid);
    member_id(ST, g, "d", did);
    store_run_t d = get_run(ST, did);
    assert_int_equal(d.deps_n, 2);
    assert_int_equal(d.deps_rule, tc->rule);
    store_run_clear(&d);

    size_t n = take_expect(ST, WID, t + 1, got, "a");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, t + 2);
    if (how == C_SKIPPED) {
        /* c is decided by a's end in the same unit; d hears of c at once. */
        snprintf(want, sizeof want, "a=succeeded b=pending c=skipped(upstream_succeeded) d=%s",
                 tc->after_c);
        EXPECT_MEMBERS(ST, g, want);
        n = take_expect(ST, WID, t + 3, got, "b");
        snprintf(want, sizeof want, "a=succeeded b=running c=skipped(upstream_succeeded) d=%s",
                 tc->after_c);
        EXPECT_MEMBERS(ST, g, want);
    } else {
        /* b and c were released together: both claimable at once. */
        EXPECT_MEMBERS(ST, g, "a=succeeded b=pending c=pending d=waiting");
        n = take_expect(ST, WID, t + 3, got, "b,c");
        if (how == C_CANCELED) {
            assert_int_equal(store_run_cancel(ST, cid, "stop c", NULL, t + 4), 0);
            EXPECT_MEMBERS(ST, g, "a=succeeded b=running c=running! d=waiting");
        }
        finish_name(ST, got, n, "c", how == C_FAILS ? ATTEMPT_FAILED : ATTEMPT_CANCELED, t + 5);
        snprintf(want, sizeof want, "a=succeeded b=running c=%s d=%s",
                 how == C_FAILS ? "failed" : "canceled(stop c)", tc->after_c);
        EXPECT_MEMBERS(ST, g, want);
    }
    /* d is claimable now only when its rule lets it go before b ends. */
    got_t dgot[16];
    bool d_early = strcmp(tc->after_c, "pending") == 0;
    if (d_early)
        take_expect(ST, WID, t + 6, dgot, "d");
    else
        nothing_claimable(ST, WID, t + 6);
    bool d_gone = strncmp(tc->after_c, "skipped", 7) == 0; /* d decided already */
    snprintf(want, sizeof want, "waiting n=4 open=%d ok=1 failed=%d canceled=%d skipped=%d",
             d_gone ? 1 : 2, how == C_FAILS, how == C_CANCELED, (how == C_SKIPPED) + d_gone);
    EXPECT_GROUP(ST, g, want);

    finish_name(ST, got, n, "b", ATTEMPT_SUCCEEDED, t + 7);
    char *c_str = run_str(ST, cid);
    snprintf(want, sizeof want, "a=succeeded b=succeeded c=%s d=%s", c_str, tc->after_b);
    free(c_str);
    if (d_early) { /* d is running: b's end changes nothing of it */
        char *p = strstr(want, "d=pending");
        assert_non_null(p);
        memcpy(p, "d=running", 9);
    }
    EXPECT_MEMBERS(ST, g, want);
    bool d_runs = strcmp(tc->after_b, "pending") == 0;
    if (d_early)
        finish(ST, &dgot[0], ATTEMPT_SUCCEEDED, t + 9);
    else if (d_runs) {
        take_expect(ST, WID, t + 8, dgot, "d");
        finish(ST, &dgot[0], ATTEMPT_SUCCEEDED, t + 9);
    }
    nothing_claimable(ST, WID, t + 10);
    d = get_run(ST, did);
    assert_int_equal(d.deps_n, 2);
    assert_true(d.deps_ok + d.deps_fail + d.deps_skip <= 2);
    /* counted while it waited: both upstreams, or the one that let it go */
    if (d_runs) assert_int_equal(d.deps_ok + d.deps_fail + d.deps_skip, d_early ? 1 : 2);
    assert_int_equal(run_events(ST, did, "run.pending"), d_runs ? 1 : 0);
    assert_int_equal(run_events(ST, did, "run.skipped"), d_runs ? 0 : 1);
    store_run_clear(&d);

    /* The workflow run: failed if a task failed or was canceled, else
     * succeeded (skipped tasks do not fail it). */
    int ok = 2 + d_runs, skipped = (how == C_SKIPPED) + !d_runs;
    snprintf(want, sizeof want, "%s n=4 open=0 ok=%d failed=%d canceled=%d skipped=%d",
             how == C_SKIPPED ? "succeeded" : "failed", ok, how == C_FAILS, how == C_CANCELED,
             skipped);
    EXPECT_GROUP(ST, g, want);
    store_run_t gr = get_run(ST, g);
    assert_true(gr.finished_ms >= t + 5);
    if (how == C_SKIPPED) {
        assert_null(gr.reason);
    } else {
        assert_non_null(gr.reason);
        assert_non_null(strstr(gr.reason, "1 of 4"));
    }
    store_run_clear(&gr);
    assert_int_equal(run_events(ST, g, how == C_SKIPPED ? "run.succeeded" : "run.failed"), 1);
}

static void test_diamond_c_fails(void **state)
{
    for (size_t i = 0; i < sizeof c_failed_table / sizeof *c_failed_table; i++)
        run_diamond(state, C_FAILS, &c_failed_table[i], T0 + (int64_t)i * 100000);
}

static void test_diamond_c_canceled(void **state)
{
    for (size_t i = 0; i < sizeof c_failed_table / sizeof *c_failed_table; i++)
        run_diamond(state, C_CANCELED, &c_failed_table[i], T0 + (int64_t)i * 100000);
}

static void test_diamond_c_skipped(void **state)
{
    for (size_t i = 0; i < sizeof c_skipped_table / sizeof *c_skipped_table; i++)
        run_diamond(state, C_SKIPPED, &c_skipped_table[i], T0 + (int64_t)i * 100000);
}

/* ---- 2. a cascade of skips ------------------------------------------------------------------ */

/* a -> b -> c -> d, and e on its own: when a fails, b, c and d are
 * skipped upstream_failed by the same call that failed a (a skip skips
 * the downstream of its downstream), e goes on untouched and the
 * workflow run ends failed only when e ends. */
static void test_cascade(void **state)
{
    const tdef_t t[] = {
        {"a", "", RULE_ALL_SUCCESS, 0},  {"b", "a", RULE_ALL_SUCCESS, 0},
        {"c", "b", RULE_ALL_SUCCESS, 0}, {"d", "c", RULE_ALL_SUCCESS, 0},
        {"e", "", RULE_ALL_SUCCESS, 0},
    };
    char wf[SKED_ID_LEN], g[SKED_ID_LEN];
    got_t got[16];
    wf_put(ST, "chain", t, 5, 0, OVERLAP_ALLOW, T0, wf);
    trigger(ST, wf, T0, g);
    EXPECT_MEMBERS(ST, g, "a=pending b=waiting c=waiting d=waiting e=pending");
    size_t n = take_expect(ST, WID, T0 + 1, got, "a,e");
    finish_name(ST, got, n, "a", ATTEMPT_FAILED, T0 + 2);
    EXPECT_MEMBERS(ST, g,
                   "a=failed b=skipped(upstream_failed) c=skipped(upstream_failed) "
                   "d=skipped(upstream_failed) e=running");
    EXPECT_GROUP(ST, g, "waiting n=5 open=1 ok=0 failed=1 canceled=0 skipped=3");
    nothing_claimable(ST, WID, T0 + 3);
    finish_name(ST, got, n, "e", ATTEMPT_SUCCEEDED, T0 + 4);
    EXPECT_GROUP(ST, g, "failed n=5 open=0 ok=1 failed=1 canceled=0 skipped=3");
    store_run_t gr = get_run(ST, g);
    assert_int_equal(gr.finished_ms, T0 + 4);
    store_run_clear(&gr);

    /* The same when a's end is the reaper's: its lease ran out (one
     * attempt: failed as lost), and what waits on it is skipped in the
     * reaper's unit. */
    char g2[SKED_ID_LEN];
    trigger(ST, wf, T0 + 10, g2);
    n = take_expect(ST, WID, T0 + 11, got, "a,e");
    for (size_t i = 0; i < n; i++) {
        store_held_t h = {.run_id = got[i].id, .fence = got[i].fence, .started = true};
        assert_int_equal(store_heartbeat(ST, WID, NULL, &h, 1, LEASE_MS, T0 + 12, NULL), 0);
        assert_true(h.keep);
    }
    /* e's lease is renewed; a's is not. */
    const got_t *e = got_find(got, n, "e");
    store_held_t he = {.run_id = e->id, .fence = e->fence, .started = true};
    assert_int_equal(store_heartbeat(ST, WID, NULL, &he, 1, LEASE_MS, T0 + 12 + LEASE_MS, NULL), 0);
    assert_int_equal(store_reap(ST, 0, INT64_C(1) << 40, T0 + 13 + LEASE_MS), 1);
    EXPECT_MEMBERS(ST, g2,
                   "a=failed b=skipped(upstream_failed) c=skipped(upstream_failed) "
                   "d=skipped(upstream_failed) e=running");
    finish(ST, e, ATTEMPT_SUCCEEDED, T0 + 14 + LEASE_MS);
    EXPECT_GROUP(ST, g2, "failed n=5 open=0 ok=1 failed=1 canceled=0 skipped=3");
    /* The first run was not touched by the second. */
    EXPECT_GROUP(ST, g, "failed n=5 open=0 ok=1 failed=1 canceled=0 skipped=3");
}

/* ---- 3. retry of a task inside its workflow run -------------------------------------------- */

/* Drives c (2 attempts, BACKOFF apart) of diamond run g to failed from
 * its next claim at t: attempt `first`, then first + 1. */
static void fail_c_twice(void **state, const char *g, int first, int64_t t)
{
    got_t got[16];
    take_expect(ST, WID, t, got, "c");
    assert_int_equal(got[0].attempt, first);
    finish(ST, &got[0], ATTEMPT_FAILED, t + 1);
    char cid[SKED_ID_LEN];
    member_id(ST, g, "c", cid);
    EXPECT_RUN(ST, cid, "scheduled"); /* its budget has one more */
    nothing_claimable(ST, WID, t + 2);
    take_expect(ST, WID, t + 1 + BACKOFF, got, "c");
    assert_int_equal(got[0].attempt, first + 1);
    finish(ST, &got[0], ATTEMPT_FAILED, t + 2 + BACKOFF);
    EXPECT_RUN(ST, cid, "failed");
}

static void test_retry(void **state)
{
    char wf[SKED_ID_LEN], g[SKED_ID_LEN], g2[SKED_ID_LEN], aid[SKED_ID_LEN], cid[SKED_ID_LEN],
        c2[SKED_ID_LEN], a2[SKED_ID_LEN];
    got_t got[16];
    diamond(ST, "retry", RULE_ALL_SUCCESS, 2, RULE_ALL_SUCCESS, T0, wf);
    trigger(ST, wf, T0, g);
    take_expect(ST, WID, T0 + 1, got, "a");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 2);
    size_t n = take_expect(ST, WID, T0 + 3, got, "b,c");
    finish_name(ST, got, n, "b", ATTEMPT_SUCCEEDED, T0 + 4);
    /* c's first attempt fails here, its second in fail_c_twice's shape */
    finish_name(ST, got, n, "c", ATTEMPT_FAILED, T0 + 5);
    take_expect(ST, WID, T0 + 5 + BACKOFF, got, "c");
    assert_int_equal(got[0].attempt, 2);
    finish(ST, &got[0], ATTEMPT_FAILED, T0 + 6 + BACKOFF);
    EXPECT_MEMBERS(ST, g, "a=succeeded b=succeeded c=failed d=skipped(upstream_failed)");
    EXPECT_GROUP(ST, g, "failed n=4 open=0 ok=2 failed=1 canceled=0 skipped=1");
    member_id(ST, g, "a", aid);
    member_id(ST, g, "c", cid);

    /* What cannot be retried: a task that succeeded, one still going, one
     * of another workflow run, a run that is no workflow run. */
    int64_t t = T0 + 10 * BACKOFF;
    trigger(ST, wf, t, g2);
    member_id(ST, g2, "a", a2);
    member_id(ST, g2, "c", c2);
    assert_int_equal(store_group_retry(ST, g, aid, false, NULL, t), SKED_ECONFLICT);
    assert_int_equal(store_group_retry(ST, g2, a2, false, NULL, t), SKED_ECONFLICT); /* pending */
    assert_int_equal(store_group_retry(ST, g2, c2, false, NULL, t), SKED_ECONFLICT); /* waiting */
    assert_int_equal(store_group_retry(ST, g, c2, false, NULL, t), SKED_ENOTFOUND);
    assert_int_equal(store_group_retry(ST, g2, cid, true, NULL, t), SKED_ENOTFOUND);
    assert_int_equal(store_group_retry(ST, cid, cid, false, NULL, t), SKED_ENOTFOUND);
    assert_int_equal(store_group_retry(ST, g, "run_nosuchrun", false, NULL, t), SKED_ENOTFOUND);
    take_expect(ST, WID, t + 1, got, "a");
    assert_string_equal(got[0].parent, g2);
    assert_int_equal(store_group_retry(ST, g2, a2, false, NULL, t + 2),
                     SKED_ECONFLICT); /* running */
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, t + 3);
    take_expect(ST, WID, t + 4, got, "b,c");
    finish_name(ST, got, 2, "b", ATTEMPT_SUCCEEDED, t + 5);
    finish_name(ST, got, 2, "c", ATTEMPT_SUCCEEDED, t + 5);
    take_expect(ST, WID, t + 6, got, "d");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, t + 7);
    EXPECT_GROUP(ST, g2, "succeeded n=4 open=0 ok=4 failed=0 canceled=0 skipped=0");
    /* none of that moved the failed run */
    EXPECT_MEMBERS(ST, g, "a=succeeded b=succeeded c=failed d=skipped(upstream_failed)");
    EXPECT_GROUP(ST, g, "failed n=4 open=0 ok=2 failed=1 canceled=0 skipped=1");

    /* c alone: it runs again at once with a fresh budget of 2 attempts
     * (attempts 3 and 4: its first two are not charged again), d stays
     * skipped, and the workflow run is going again meanwhile. */
    t += 10 * BACKOFF;
    assert_int_equal(store_group_retry(ST, g, cid, false, NULL, t), 0);
    EXPECT_MEMBERS(ST, g, "a=succeeded b=succeeded c=pending d=skipped(upstream_failed)");
    EXPECT_GROUP(ST, g, "waiting n=4 open=1 ok=2 failed=0 canceled=0 skipped=1");
    store_run_t gr = get_run(ST, g);
    assert_int_equal(gr.finished_ms, -1);
    assert_null(gr.reason);
    store_run_clear(&gr);
    fail_c_twice(state, g, 3, t + 1);
    EXPECT_MEMBERS(ST, g, "a=succeeded b=succeeded c=failed d=skipped(upstream_failed)");
    EXPECT_GROUP(ST, g, "failed n=4 open=0 ok=2 failed=1 canceled=0 skipped=1");

    /* c with its downstream: d waits again (b's success counted, c's
     * not yet) and goes when c succeeds; the workflow run succeeds. */
    t += 10 * BACKOFF;
    assert_int_equal(store_group_retry(ST, g, cid, true, NULL, t), 0);
    EXPECT_MEMBERS(ST, g, "a=succeeded b=succeeded c=pending d=waiting");
    EXPECT_GROUP(ST, g, "waiting n=4 open=2 ok=2 failed=0 canceled=0 skipped=0");
    char did[SKED_ID_LEN];
    member_id(ST, g, "d", did);
    store_run_t d = get_run(ST, did);
    assert_int_equal(d.deps_n, 2);
    assert_int_equal(d.deps_ok, 1);
    assert_int_equal(d.deps_fail + d.deps_skip, 0);
    store_run_clear(&d);
    take_expect(ST, WID, t + 1, got, "c");
    assert_int_equal(got[0].attempt, 5);
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, t + 2);
    EXPECT_MEMBERS(ST, g, "a=succeeded b=succeeded c=succeeded d=pending");
    take_expect(ST, WID, t + 3, got, "d");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, t + 4);
    EXPECT_GROUP(ST, g, "succeeded n=4 open=0 ok=4 failed=0 canceled=0 skipped=0");
    gr = get_run(ST, g);
    assert_int_equal(gr.finished_ms, t + 4);
    assert_null(gr.reason);
    store_run_clear(&gr);
    nothing_claimable(ST, WID, t + 5);
    /* and now c succeeded: nothing to retry */
    assert_int_equal(store_group_retry(ST, g, cid, true, NULL, t + 6), SKED_ECONFLICT);
}

/* Retry with downstream of a task deep in a failed chain: everything
 * downstream starts over and runs in order; the others stay as they
 * were. And a retried task whose other upstream failed is decided at once
 * (skipped again), not left waiting forever. */
static void test_retry_downstream_chain(void **state)
{
    const tdef_t t[] = {
        {"a", "", RULE_ALL_SUCCESS, 0},  {"b", "a", RULE_ALL_SUCCESS, 0},
        {"c", "b", RULE_ALL_SUCCESS, 0}, {"d", "c", RULE_ALL_SUCCESS, 0},
        {"x", "", RULE_ALL_SUCCESS, 0},  {"y", "x,c", RULE_ALL_SUCCESS, 0},
    };
    char wf[SKED_ID_LEN], g[SKED_ID_LEN], bid[SKED_ID_LEN];
    got_t got[16];
    wf_put(ST, "deep", t, 6, 0, OVERLAP_ALLOW, T0, wf);
    trigger(ST, wf, T0, g);
    size_t n = take_expect(ST, WID, T0 + 1, got, "a,x");
    finish_name(ST, got, n, "a", ATTEMPT_SUCCEEDED, T0 + 2);
    finish_name(ST, got, n, "x", ATTEMPT_FAILED, T0 + 2);
    take_expect(ST, WID, T0 + 3, got, "b");
    finish(ST, &got[0], ATTEMPT_FAILED, T0 + 4);
    EXPECT_MEMBERS(ST, g,
                   "a=succeeded b=failed c=skipped(upstream_failed) d=skipped(upstream_failed) "
                   "x=failed y=skipped(upstream_failed)");
    EXPECT_GROUP(ST, g, "failed n=6 open=0 ok=1 failed=2 canceled=0 skipped=3");
    member_id(ST, g, "b", bid);
    assert_int_equal(store_group_retry(ST, g, bid, true, NULL, T0 + 10), 0);
    /* y's other upstream x failed: y is skipped again at once */
    EXPECT_MEMBERS(ST, g,
                   "a=succeeded b=pending c=waiting d=waiting x=failed "
                   "y=skipped(upstream_failed)");
    EXPECT_GROUP(ST, g, "waiting n=6 open=3 ok=1 failed=1 canceled=0 skipped=1");
    take_expect(ST, WID, T0 + 11, got, "b");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 12);
    take_expect(ST, WID, T0 + 13, got, "c");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 14);
    take_expect(ST, WID, T0 + 15, got, "d");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 16);
    EXPECT_MEMBERS(ST, g,
                   "a=succeeded b=succeeded c=succeeded d=succeeded x=failed "
                   "y=skipped(upstream_failed)");
    EXPECT_GROUP(ST, g, "failed n=6 open=0 ok=4 failed=1 canceled=0 skipped=1");
}

/* A retry while the workflow run is still going (z runs) whose recount
 * skips a downstream task again at once (y's other upstream x failed):
 * the run must not end on the way (no run.failed event, the next queued
 * run of the workflow does not start while max_active_runs is taken). */
static void test_retry_while_going(void **state)
{
    const tdef_t t[] = {
        {"a", "", RULE_ALL_SUCCESS, 0}, {"b", "a", RULE_ALL_SUCCESS, 0},
        {"x", "", RULE_ALL_SUCCESS, 0}, {"y", "x,b", RULE_ALL_SUCCESS, 0},
        {"z", "", RULE_ALL_SUCCESS, 0},
    };
    char wf[SKED_ID_LEN], g[SKED_ID_LEN], g2[SKED_ID_LEN], bid[SKED_ID_LEN];
    got_t got[16], zgot;
    wf_put(ST, "going", t, 5, 1, OVERLAP_ALLOW, T0, wf);
    trigger(ST, wf, T0, g);
    trigger(ST, wf, T0 + 1, g2);
    EXPECT_GROUP(ST, g2, "waiting unstarted n=0 open=0 ok=0 failed=0 canceled=0 skipped=0");
    size_t n = take_expect(ST, WID, T0 + 2, got, "a,x,z");
    zgot = *got_find(got, n, "z");
    finish_name(ST, got, n, "a", ATTEMPT_SUCCEEDED, T0 + 3);
    finish_name(ST, got, n, "x", ATTEMPT_FAILED, T0 + 3);
    take_expect(ST, WID, T0 + 4, got, "b");
    finish(ST, &got[0], ATTEMPT_FAILED, T0 + 5);
    EXPECT_MEMBERS(ST, g, "a=succeeded b=failed x=failed y=skipped(upstream_failed) z=running");
    EXPECT_GROUP(ST, g, "waiting n=5 open=1 ok=1 failed=2 canceled=0 skipped=1");

    member_id(ST, g, "b", bid);
    assert_int_equal(store_group_retry(ST, g, bid, true, NULL, T0 + 6), 0);
    EXPECT_MEMBERS(ST, g, "a=succeeded b=pending x=failed y=skipped(upstream_failed) z=running");
    EXPECT_GROUP(ST, g, "waiting n=5 open=2 ok=1 failed=1 canceled=0 skipped=1");
    assert_int_equal(run_events(ST, g, "run.failed"), 0);
    EXPECT_GROUP(ST, g2, "waiting unstarted n=0 open=0 ok=0 failed=0 canceled=0 skipped=0");

    take_expect(ST, WID, T0 + 7, got, "b");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 8);
    EXPECT_GROUP(ST, g, "waiting n=5 open=1 ok=2 failed=1 canceled=0 skipped=1");
    finish(ST, &zgot, ATTEMPT_SUCCEEDED, T0 + 9);
    EXPECT_GROUP(ST, g, "failed n=5 open=0 ok=3 failed=1 canceled=0 skipped=1");
    assert_int_equal(run_events(ST, g, "run.failed"), 1);
    /* now the queued run starts */
    EXPECT_MEMBERS(ST, g2, "a=pending b=waiting x=pending y=waiting z=pending");
}

/* ---- 4. cancel of a workflow run ------------------------------------------------------------- */

/* Canceling the workflow run cancels its waiting and pending tasks at
 * once and asks its running ones to stop; the run's counts say so; a
 * running task that ends afterwards (even succeeded: its worker did not
 * stop in time) resurrects nothing, and the run cannot be retried. */
static void test_cancel_workflow_run(void **state)
{
    char wf[SKED_ID_LEN], g[SKED_ID_LEN], g2[SKED_ID_LEN], cid[SKED_ID_LEN];
    got_t got[16], bgot;
    diamond(ST, "cancel", RULE_ALL_SUCCESS, 1, RULE_ALL_DONE, T0, wf);
    trigger(ST, wf, T0, g);
    take_expect(ST, WID, T0 + 1, got, "a");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 2);
    assert_int_equal(take(ST, WID, 1, T0 + 3, got), 1); /* b or c: the other stays pending */
    bgot = got[0];
    const char *running = bgot.name, *other = strcmp(running, "b") == 0 ? "c" : "b";
    member_id(ST, g, other, cid);

    assert_int_equal(store_run_cancel(ST, g, "enough", NULL, T0 + 4), 0);
    char want[640];
    snprintf(want, sizeof want,
             "a=succeeded %s=running! %s=canceled(workflow run canceled) d=canceled(workflow run "
             "canceled)",
             running, other);
    if (strcmp(running, "c") == 0)
        snprintf(want, sizeof want,
                 "a=succeeded b=canceled(workflow run canceled) c=running! d=canceled(workflow run "
                 "canceled)");
    EXPECT_MEMBERS(ST, g, want);
    EXPECT_RUN(ST, g, "canceled(enough)");
    EXPECT_GROUP(ST, g, "canceled n=4 open=1 ok=1 failed=0 canceled=2 skipped=0");
    nothing_claimable(ST, WID, T0 + 5);
    assert_int_equal(store_run_cancel(ST, g, NULL, NULL, T0 + 5), SKED_ECONFLICT);
    assert_int_equal(store_group_retry(ST, g, cid, false, NULL, T0 + 5), SKED_ECONFLICT);

    /* The running task ends (its worker reports success: the cancel was
     * asked for, so it ends canceled, as any run does): d (all_done)
     * stays canceled, nothing is released, the run stays canceled. */
    finish(ST, &bgot, ATTEMPT_SUCCEEDED, T0 + 6);
    EXPECT_MEMBERS(ST, g,
                   "a=succeeded b=canceled(workflow run canceled) "
                   "c=canceled(workflow run canceled) d=canceled(workflow run canceled)");
    EXPECT_RUN(ST, g, "canceled(enough)");
    EXPECT_GROUP(ST, g, "canceled n=4 open=0 ok=1 failed=0 canceled=3 skipped=0");
    nothing_claimable(ST, WID, T0 + 7);
    assert_int_equal(run_events(ST, g, "run.canceled"), 1);

    /* The workflow runs again normally afterwards. */
    trigger(ST, wf, T0 + 10, g2);
    take_expect(ST, WID, T0 + 11, got, "a");
    assert_string_equal(got[0].parent, g2);
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 12);
    EXPECT_MEMBERS(ST, g2, "a=succeeded b=pending c=pending d=waiting");

    /* A workflow run canceled before any task ran: all of them at once. */
    char g3[SKED_ID_LEN];
    trigger(ST, wf, T0 + 20, g3);
    assert_int_equal(store_run_cancel(ST, g3, NULL, NULL, T0 + 21), 0);
    EXPECT_GROUP(ST, g3, "canceled n=4 open=0 ok=0 failed=0 canceled=4 skipped=0");
    EXPECT_MEMBERS(ST, g3,
                   "a=canceled(workflow run canceled) b=canceled(workflow run canceled) "
                   "c=canceled(workflow run canceled) d=canceled(workflow run canceled)");
}

/* ---- 5. max_active_runs and the overlap policy
 * ---------------------------------------------------- */

static void test_max_active_queue(void **state)
{
    const tdef_t t[] = {{"x", "", RULE_ALL_SUCCESS, 0}, {"y", "x", RULE_ALL_SUCCESS, 0}};
    char wf[SKED_ID_LEN], g[4][SKED_ID_LEN];
    got_t got[16];
    /* Two at a time, the others queued (overlap allow): each waits
     * unstarted, with no task runs, and starts when a slot frees, oldest
     * first. */
    wf_put(ST, "queue", t, 2, 2, OVERLAP_ALLOW, T0, wf);
    for (int i = 0; i < 4; i++)
        trigger(ST, wf, T0 + i, g[i]);
    EXPECT_MEMBERS(ST, g[0], "x=pending y=waiting");
    EXPECT_MEMBERS(ST, g[1], "x=pending y=waiting");
    for (int i = 2; i < 4; i++) {
        EXPECT_GROUP(ST, g[i], "waiting unstarted n=0 open=0 ok=0 failed=0 canceled=0 skipped=0");
        EXPECT_MEMBERS(ST, g[i], "");
    }
    size_t n = take_expect(ST, WID, T0 + 10, got, "x,x");
    for (size_t i = 0; i < n; i++)
        finish(ST, &got[i], ATTEMPT_SUCCEEDED, T0 + 11);
    n = take_expect(ST, WID, T0 + 12, got, "y,y");
    /* the first run ends (failed): the third starts, not the fourth */
    const got_t *y0 = strcmp(got[0].parent, g[0]) == 0 ? &got[0] : &got[1];
    const got_t *y1 = y0 == &got[0] ? &got[1] : &got[0];
    finish(ST, y0, ATTEMPT_FAILED, T0 + 13);
    EXPECT_GROUP(ST, g[0], "failed n=2 open=0 ok=1 failed=1 canceled=0 skipped=0");
    EXPECT_MEMBERS(ST, g[2], "x=pending y=waiting");
    EXPECT_GROUP(ST, g[3], "waiting unstarted n=0 open=0 ok=0 failed=0 canceled=0 skipped=0");
    /* a canceled run frees its slot too */
    assert_int_equal(store_run_cancel(ST, g[2], NULL, NULL, T0 + 14), 0);
    EXPECT_MEMBERS(ST, g[3], "x=pending y=waiting");
    finish(ST, y1, ATTEMPT_SUCCEEDED, T0 + 15);
    EXPECT_GROUP(ST, g[1], "succeeded n=2 open=0 ok=2 failed=0 canceled=0 skipped=0");
    take_expect(ST, WID, T0 + 16, got, "x");
    assert_string_equal(got[0].parent, g[3]);
}

static void test_overlap_forbid_and_replace(void **state)
{
    const tdef_t t[] = {{"x", "", RULE_ALL_SUCCESS, 0}, {"y", "x", RULE_ALL_SUCCESS, 0}};
    char wf[SKED_ID_LEN], g1[SKED_ID_LEN], g2[SKED_ID_LEN];
    got_t got[16];

    /* forbid: a second run while one goes is skipped "overlap", whole. */
    wf_put(ST, "forbid", t, 2, 0, OVERLAP_FORBID, T0, wf);
    trigger(ST, wf, T0, g1);
    trigger(ST, wf, T0 + 1, g2);
    EXPECT_RUN(ST, g2, "skipped(overlap)");
    EXPECT_MEMBERS(ST, g2, "");
    EXPECT_MEMBERS(ST, g1, "x=pending y=waiting");
    EXPECT_GROUP(ST, g1, "waiting n=2 open=2 ok=0 failed=0 canceled=0 skipped=0");
    take_expect(ST, WID, T0 + 2, got, "x");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 3);
    take_expect(ST, WID, T0 + 4, got, "y");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 5);
    EXPECT_GROUP(ST, g1, "succeeded n=2 open=0 ok=2 failed=0 canceled=0 skipped=0");
    /* once it ended, the next run starts */
    trigger(ST, wf, T0 + 6, g2);
    EXPECT_MEMBERS(ST, g2, "x=pending y=waiting");

    /* replace: the newer run cancels the one going (its waiting tasks at
     * once, its running ones asked to stop) and starts. */
    char wr[SKED_ID_LEN], r1[SKED_ID_LEN], r2[SKED_ID_LEN];
    wf_put(ST, "replace", t, 2, 0, OVERLAP_REPLACE, T0, wr);
    trigger(ST, wr, T0 + 10, r1);
    got_t xr;
    take(ST, WID, 16, T0 + 11, got); /* forbid's x and replace's x */
    size_t k = strcmp(got[0].parent, r1) == 0 ? 0 : 1;
    xr = got[k];
    finish(ST, &got[1 - k], ATTEMPT_SUCCEEDED, T0 + 11);
    trigger(ST, wr, T0 + 12, r2);
    EXPECT_RUN(ST, r1, "canceled(replaced by a newer run)");
    EXPECT_MEMBERS(ST, r1, "x=running! y=canceled(replaced by a newer run)");
    EXPECT_GROUP(ST, r1, "canceled n=2 open=1 ok=0 failed=0 canceled=1 skipped=0");
    EXPECT_MEMBERS(ST, r2, "x=pending y=waiting");
    finish(ST, &xr, ATTEMPT_CANCELED, T0 + 13);
    EXPECT_GROUP(ST, r1, "canceled n=2 open=0 ok=0 failed=0 canceled=2 skipped=0");
    EXPECT_MEMBERS(ST, r2, "x=pending y=waiting");

    size_t n = take(ST, WID, 16, T0 + 14, got);
    char *s = got_str(got, n);
    assert_string_equal(s, "x,y"); /* r2's x, and forbid's second run's y */
    free(s);
}

/* ---- 6. job arrays ----------------------------------------------------------------------------
 */

static void array_job(store_t *st, const char *name, int count, int parallel, int attempts,
                      overlap_policy_t ov, char id[SKED_ID_LEN])
{
    store_job_t j;
    mkjob(&j, name, attempts);
    j.array_count = count;
    j.array_parallel = parallel;
    j.overlap = ov;
    assert_int_equal(store_job_create(st, &j, NULL, 0, false, NULL, NULL, T0), 0);
    memcpy(id, j.id, SKED_ID_LEN);
    store_job_clear(&j);
    assert_int_equal(store_job_get(st, id, &j, NULL, NULL), 0);
    assert_int_equal(j.graph, STORE_GRAPH_ARRAY);
    assert_int_equal(j.array_count, count);
    assert_int_equal(j.array_parallel, parallel);
    store_job_clear(&j);
}

/* count 5, parallel 2, 2 attempts each: indices 0..4, at most two going
 * at once (a retrying index keeps its slot while it backs off), each
 * index retried on its own without holding the others back, and the
 * array run failed when an index ran out of attempts. */
static void test_array(void **state)
{
    char job[SKED_ID_LEN], g[SKED_ID_LEN];
    got_t got[16], keep[4];
    array_job(ST, "arr", 5, 2, 2, OVERLAP_ALLOW, job);
    trigger(ST, job, T0, g);
    EXPECT_MEMBERS(ST, g, "0=pending 1=pending 2=waiting 3=waiting 4=waiting");
    EXPECT_GROUP(ST, g, "waiting n=5 open=5 ok=0 failed=0 canceled=0 skipped=0");
    gsnap_t s = gget(ST, g);
    assert_int_equal(s.g.parallel, 2);
    for (size_t i = 0; i < s.n; i++) {
        assert_string_equal(s.m[i].run.parent_id, g);
        assert_string_equal(s.m[i].run.job_id, job);
        assert_string_equal(s.m[i].name, "arr");
    }
    gfree(&s);

    size_t n = take_expect(ST, WID, T0 + 1, got, "0,1");
    finish_name(ST, got, n, "0", ATTEMPT_FAILED, T0 + 2); /* retries after BACKOFF */
    EXPECT_MEMBERS(ST, g, "0=scheduled 1=running 2=waiting 3=waiting 4=waiting");
    nothing_claimable(ST, WID, T0 + 3);
    finish_name(ST, got, n, "1", ATTEMPT_SUCCEEDED, T0 + 4); /* its slot goes to 2 */
    EXPECT_MEMBERS(ST, g, "0=scheduled 1=succeeded 2=pending 3=waiting 4=waiting");
    take_expect(ST, WID, T0 + 5, got, "2");
    keep[0] = got[0];
    take_expect(ST, WID, T0 + 2 + BACKOFF, got, "0"); /* its second attempt */
    assert_int_equal(got[0].attempt, 2);
    keep[1] = got[0];
    nothing_claimable(ST, WID, T0 + 3 + BACKOFF);
    finish(ST, &keep[0], ATTEMPT_SUCCEEDED, T0 + 4 + BACKOFF); /* 2 done: 3 goes */
    take_expect(ST, WID, T0 + 5 + BACKOFF, got, "3");
    keep[2] = got[0];
    finish(ST, &keep[1], ATTEMPT_FAILED, T0 + 6 + BACKOFF); /* 0 out of attempts: 4 goes */
    EXPECT_MEMBERS(ST, g, "0=failed 1=succeeded 2=succeeded 3=running 4=pending");
    EXPECT_GROUP(ST, g, "waiting n=5 open=2 ok=2 failed=1 canceled=0 skipped=0");
    take_expect(ST, WID, T0 + 7 + BACKOFF, got, "4");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 8 + BACKOFF);
    finish(ST, &keep[2], ATTEMPT_SUCCEEDED, T0 + 9 + BACKOFF);
    EXPECT_MEMBERS(ST, g, "0=failed 1=succeeded 2=succeeded 3=succeeded 4=succeeded");
    EXPECT_GROUP(ST, g, "failed n=5 open=0 ok=4 failed=1 canceled=0 skipped=0");
    store_run_t gr = get_run(ST, g);
    assert_int_equal(gr.finished_ms, T0 + 9 + BACKOFF);
    assert_non_null(gr.reason);
    assert_non_null(strstr(gr.reason, "1 of 5"));
    store_run_clear(&gr);
    nothing_claimable(ST, WID, T0 + 10 + BACKOFF);

    /* The job's runs list shows the array run with its counts. */
    store_grouped_t *v = NULL;
    size_t nv = 0;
    char *next = NULL;
    assert_int_equal(store_group_list(ST, job, NULL, 10, &v, &nv, &next), 0);
    assert_int_equal(nv, 1);
    assert_string_equal(v[0].run.id, g);
    assert_true(v[0].group.is_group);
    assert_int_equal(v[0].group.ok, 4);
    assert_int_equal(v[0].group.failed, 1);
    for (size_t i = 0; i < nv; i++)
        store_run_clear(&v[i].run);
    free(v);
    free(next);
}

/* An array whose job forbids overlap: its own members all run at once
 * (the policy is about the job's runs, not an array's indices), and a
 * second array run while one goes is skipped whole. parallel 0 = all. */
static void test_array_overlap(void **state)
{
    char job[SKED_ID_LEN], g[SKED_ID_LEN], g2[SKED_ID_LEN];
    got_t got[16];
    array_job(ST, "arr-forbid", 3, 0, 1, OVERLAP_FORBID, job);
    trigger(ST, job, T0, g);
    EXPECT_MEMBERS(ST, g, "0=pending 1=pending 2=pending");
    size_t n = take_expect(ST, WID, T0 + 1, got, "0,1,2");
    EXPECT_MEMBERS(ST, g, "0=running 1=running 2=running");
    trigger(ST, job, T0 + 2, g2);
    EXPECT_RUN(ST, g2, "skipped(overlap)");
    EXPECT_MEMBERS(ST, g2, "");
    for (size_t i = 0; i < n; i++)
        finish(ST, &got[i], ATTEMPT_SUCCEEDED, T0 + 3);
    EXPECT_GROUP(ST, g, "succeeded n=3 open=0 ok=3 failed=0 canceled=0 skipped=0");
    assert_int_equal(run_events(ST, g, "run.succeeded"), 1);

    /* Canceling an array run cancels its waiting indices and stops the
     * running ones. */
    char j2[SKED_ID_LEN], g3[SKED_ID_LEN];
    array_job(ST, "arr-cancel", 4, 1, 1, OVERLAP_ALLOW, j2);
    trigger(ST, j2, T0 + 10, g3);
    take_expect(ST, WID, T0 + 11, got, "0");
    assert_int_equal(store_run_cancel(ST, g3, NULL, NULL, T0 + 12), 0);
    EXPECT_MEMBERS(ST, g3,
                   "0=running! 1=canceled(array run canceled) 2=canceled(array run canceled) "
                   "3=canceled(array run canceled)");
    EXPECT_GROUP(ST, g3, "canceled n=4 open=1 ok=0 failed=0 canceled=3 skipped=0");
    finish(ST, &got[0], ATTEMPT_CANCELED, T0 + 13);
    EXPECT_GROUP(ST, g3, "canceled n=4 open=0 ok=0 failed=0 canceled=4 skipped=0");
    nothing_claimable(ST, WID, T0 + 14);
}

/* ---- 7. job dependencies ------------------------------------------------------------------------
 */

/* Creates plain job `name` depending on ups[i] with conds[i]; returns
 * what store_job_create returned (id and bad_dep OUT). */
static int dep_job(store_t *st, const char *name, const char *const *ups, const dep_cond_t *conds,
                   size_t n, char id[SKED_ID_LEN], int *bad_dep)
{
    store_job_t j;
    mkjob(&j, name, 1);
    j.deps = n ? xcalloc(n, sizeof *j.deps) : NULL;
    j.ndeps = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(j.deps[i].job_id, sizeof j.deps[i].job_id, "%s", ups[i]);
        j.deps[i].cond = conds[i];
    }
    int rc = store_job_create(st, &j, NULL, 0, false, NULL, NULL, T0);
    memcpy(id, j.id, SKED_ID_LEN);
    if (bad_dep) *bad_dep = j.bad_dep;
    store_job_clear(&j);
    return rc;
}

static void plain_job(store_t *st, const char *name, char id[SKED_ID_LEN])
{
    assert_int_equal(dep_job(st, name, NULL, NULL, 0, id, NULL), 0);
}

/* B depends on A with cond; A's run ends as `a_end`; B's run is then
 * expect ("pending", "skipped(upstream_failed)", ...). B's run is made
 * before A's ends and waits in between, unclaimable. */
static void one_dep(void **state, const char *tag, dep_cond_t cond, attempt_outcome_t a_end,
                    const char *expect, int64_t t)
{
    char a[SKED_ID_LEN], b[SKED_ID_LEN], ra[SKED_ID_LEN], rb[SKED_ID_LEN], name[64];
    got_t got[16];
    snprintf(name, sizeof name, "A-%s", tag);
    plain_job(ST, name, a);
    snprintf(name, sizeof name, "B-%s", tag);
    const char *ups[] = {a};
    assert_int_equal(dep_job(ST, name, ups, &cond, 1, b, NULL), 0);
    store_job_t jb;
    assert_int_equal(store_job_get(ST, b, &jb, NULL, NULL), 0);
    assert_int_equal(jb.graph, STORE_GRAPH_DEPS);
    store_job_clear(&jb);
    trigger(ST, a, t, ra);
    trigger(ST, b, t + 1, rb);
    EXPECT_RUN(ST, rb, "waiting");
    store_run_t r = get_run(ST, rb);
    assert_int_equal(r.deps_n, 1);
    store_run_clear(&r);
    size_t n = take(ST, WID, 16, t + 2, got);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, ra);
    finish(ST, &got[0], a_end, t + 3);
    EXPECT_RUN(ST, rb, expect);
    if (strcmp(expect, "pending") == 0) {
        n = take(ST, WID, 16, t + 4, got);
        assert_int_equal(n, 1);
        assert_string_equal(got[0].id, rb);
        finish(ST, &got[0], ATTEMPT_SUCCEEDED, t + 5);
    } else {
        nothing_claimable(ST, WID, t + 4);
    }
}

static void test_job_deps_conditions(void **state)
{
    one_dep(state, "ok-ok", DEP_AFTEROK, ATTEMPT_SUCCEEDED, "pending", T0);
    one_dep(state, "ok-fail", DEP_AFTEROK, ATTEMPT_FAILED, "skipped(upstream_failed)", T0 + 100);
    one_dep(state, "any-ok", DEP_AFTERANY, ATTEMPT_SUCCEEDED, "pending", T0 + 200);
    one_dep(state, "any-fail", DEP_AFTERANY, ATTEMPT_FAILED, "pending", T0 + 300);
    one_dep(state, "any-cancel", DEP_AFTERANY, ATTEMPT_CANCELED, "pending", T0 + 400);
    one_dep(state, "notok-fail", DEP_AFTERNOTOK, ATTEMPT_FAILED, "pending", T0 + 500);
    one_dep(state, "notok-cancel", DEP_AFTERNOTOK, ATTEMPT_CANCELED, "pending", T0 + 600);
    one_dep(state, "notok-ok", DEP_AFTERNOTOK, ATTEMPT_SUCCEEDED, "skipped(upstream_succeeded)",
            T0 + 700);
}

/* Which run of A a run of B waits for: A's most recent one (not an older
 * one that ended), A's next one when A has none yet, and an A run that
 * already ended decides B's run as it is created. */
static void test_job_deps_binding(void **state)
{
    char a[SKED_ID_LEN], b[SKED_ID_LEN], ra1[SKED_ID_LEN], ra2[SKED_ID_LEN], rb[SKED_ID_LEN];
    got_t got[16];
    dep_cond_t ok = DEP_AFTEROK, notok = DEP_AFTERNOTOK;

    /* A has no run: B's run waits for A's next run, then follows it. */
    plain_job(ST, "A-next", a);
    const char *ups[] = {a};
    assert_int_equal(dep_job(ST, "B-next", ups, &ok, 1, b, NULL), 0);
    trigger(ST, b, T0, rb);
    EXPECT_RUN(ST, rb, "waiting");
    nothing_claimable(ST, WID, T0 + 1);
    store_job_t ja;
    assert_int_equal(store_job_get(ST, a, &ja, NULL, NULL), 0);
    assert_int_equal(ja.graph, STORE_GRAPH_DEPENDENTS);
    store_job_clear(&ja);
    trigger(ST, a, T0 + 2, ra1);
    EXPECT_RUN(ST, rb, "waiting");
    take(ST, WID, 16, T0 + 3, got);
    assert_string_equal(got[0].id, ra1);
    /* a later run of A does not concern B's run: it is bound to ra1 */
    trigger(ST, a, T0 + 4, ra2);
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 5);
    EXPECT_RUN(ST, rb, "pending");
    size_t n = take(ST, WID, 16, T0 + 6, got);
    assert_int_equal(n, 2); /* rb and ra2 */
    for (size_t i = 0; i < n; i++)
        finish(ST, &got[i], ATTEMPT_SUCCEEDED, T0 + 7);

    /* The most recent run: A's older run failed, its newer one is still
     * pending: B's run waits for the newer one and goes with it. */
    char a2[SKED_ID_LEN], b2[SKED_ID_LEN], r1[SKED_ID_LEN], r2[SKED_ID_LEN], rb2[SKED_ID_LEN];
    plain_job(ST, "A-recent", a2);
    const char *ups2[] = {a2};
    assert_int_equal(dep_job(ST, "B-recent", ups2, &ok, 1, b2, NULL), 0);
    trigger(ST, a2, T0 + 10, r1);
    take(ST, WID, 16, T0 + 11, got);
    finish(ST, &got[0], ATTEMPT_FAILED, T0 + 12);
    trigger(ST, a2, T0 + 13, r2);
    trigger(ST, b2, T0 + 14, rb2);
    EXPECT_RUN(ST, rb2, "waiting");
    n = take(ST, WID, 16, T0 + 15, got);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, r2);
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 16);
    EXPECT_RUN(ST, rb2, "pending");

    /* A's most recent run already ended: B's run is decided as it is
     * created, released or skipped. */
    char b3[SKED_ID_LEN], b4[SKED_ID_LEN], rb3[SKED_ID_LEN], rb4[SKED_ID_LEN];
    assert_int_equal(dep_job(ST, "B-ended-ok", ups2, &ok, 1, b3, NULL), 0);
    assert_int_equal(dep_job(ST, "B-ended-notok", ups2, &notok, 1, b4, NULL), 0);
    trigger(ST, b3, T0 + 20, rb3);
    trigger(ST, b4, T0 + 20, rb4);
    EXPECT_RUN(ST, rb3, "pending");
    EXPECT_RUN(ST, rb4, "skipped(upstream_succeeded)");
    store_run_t r = get_run(ST, rb3);
    assert_int_equal(r.deps_n, 1);
    assert_int_equal(r.deps_ok, 1);
    store_run_clear(&r);

    assert_int_equal(run_all(ST, WID, T0 + 21), 2); /* rb2, rb3 */

    /* A job created with run_now waits the same way (its first run). */
    store_job_t j;
    mkjob(&j, "B-run-now", 1);
    j.deps = xcalloc(1, sizeof *j.deps);
    j.ndeps = 1;
    snprintf(j.deps[0].job_id, sizeof j.deps[0].job_id, "%s", a);
    j.deps[0].cond = DEP_AFTERANY;
    char ra3[SKED_ID_LEN];
    trigger(ST, a, T0 + 30, ra3);
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0 + 31), 0);
    store_run_filter_t f = {j.id, NULL, INT64_MIN, INT64_MAX, NULL, 10};
    store_run_t *runs = NULL;
    char *next = NULL;
    assert_int_equal(store_run_list(ST, &f, &runs, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_int_equal(runs[0].state, RUN_WAITING);
    char rnow[SKED_ID_LEN];
    memcpy(rnow, runs[0].id, SKED_ID_LEN);
    store_run_clear(&runs[0]);
    free(runs);
    free(next);
    store_job_clear(&j);
    n = take(ST, WID, 16, T0 + 32, got);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, ra3);
    finish(ST, &got[0], ATTEMPT_FAILED, T0 + 33);
    EXPECT_RUN(ST, rnow, "pending");
}

/* Runs are made a little ahead of their fire time: a run of B made while
 * A has no run by B's fire time, but its next run is made already, binds
 * that run (it waited for the run after it, for ever for a one-off A). */
static void test_job_deps_next_run_made_ahead(void **state)
{
    char a[SKED_ID_LEN], b[SKED_ID_LEN], ra[SKED_ID_LEN], rb[SKED_ID_LEN];
    got_t got[16];
    dep_cond_t ok = DEP_AFTEROK;
    plain_job(ST, "A-ahead", a);
    const char *ups[] = {a};
    assert_int_equal(dep_job(ST, "B-ahead", ups, &ok, 1, b, NULL), 0);
    trigger(ST, a, T0 + 50, ra); /* fires after B's run below */
    trigger(ST, b, T0 + 40, rb);
    EXPECT_RUN(ST, rb, "waiting");
    assert_int_equal(take(ST, WID, 16, T0 + 51, got), 1);
    assert_string_equal(got[0].id, ra);
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 52);
    EXPECT_RUN(ST, rb, "pending");
}

/* Two upstreams with mixed conditions: the run goes when both are met,
 * and is skipped as soon as one can no longer be (the other's end then
 * changes nothing). */
static void test_job_deps_mixed(void **state)
{
    char x[SKED_ID_LEN], y[SKED_ID_LEN], c[SKED_ID_LEN], rx[SKED_ID_LEN], ry[SKED_ID_LEN],
        rc_[SKED_ID_LEN];
    got_t got[16];
    plain_job(ST, "X", x);
    plain_job(ST, "Y", y);
    const char *ups[] = {x, y};
    const dep_cond_t conds[] = {DEP_AFTEROK, DEP_AFTERNOTOK};
    assert_int_equal(dep_job(ST, "C", ups, conds, 2, c, NULL), 0);

    /* X ok, Y failed: met. */
    trigger(ST, x, T0, rx);
    trigger(ST, y, T0, ry);
    trigger(ST, c, T0 + 1, rc_);
    store_run_t r = get_run(ST, rc_);
    assert_int_equal(r.deps_n, 2);
    store_run_clear(&r);
    size_t n = take(ST, WID, 16, T0 + 2, got);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        finish(ST, &got[i], strcmp(got[i].id, rx) == 0 ? ATTEMPT_SUCCEEDED : ATTEMPT_FAILED,
               T0 + 3 + (int64_t)i);
    EXPECT_RUN(ST, rc_, "pending");
    n = take(ST, WID, 16, T0 + 5, got);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, rc_);
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 6);

    /* Y succeeds first: C's run can never go and is skipped at once,
     * while X still runs; X's end then changes nothing. */
    trigger(ST, x, T0 + 10, rx);
    trigger(ST, y, T0 + 10, ry);
    trigger(ST, c, T0 + 11, rc_);
    n = take(ST, WID, 16, T0 + 12, got);
    assert_int_equal(n, 2);
    const got_t *gx = strcmp(got[0].id, rx) == 0 ? &got[0] : &got[1];
    const got_t *gy = gx == &got[0] ? &got[1] : &got[0];
    finish(ST, gy, ATTEMPT_SUCCEEDED, T0 + 13);
    EXPECT_RUN(ST, rc_, "skipped(upstream_succeeded)");
    finish(ST, gx, ATTEMPT_SUCCEEDED, T0 + 14);
    EXPECT_RUN(ST, rc_, "skipped(upstream_succeeded)");
    assert_int_equal(run_events(ST, rc_, "run.skipped"), 1);
    nothing_claimable(ST, WID, T0 + 15);
}

/* What a dependency may not name: an unknown job, a job of another
 * namespace, a workflow's task (SKED_ENOTFOUND, bad_dep its index); and
 * an update that would close a cycle (SKED_ECONFLICT, bad_dep), itself
 * included. Nothing is written by a refused change. */
static void test_job_deps_refused(void **state)
{
    char a[SKED_ID_LEN], b[SKED_ID_LEN], c[SKED_ID_LEN], id[SKED_ID_LEN], wf[SKED_ID_LEN];
    plain_job(ST, "A", a);
    dep_cond_t conds[] = {DEP_AFTEROK, DEP_AFTEROK};
    int bad = -7;
    const char *unknown[] = {a, "job_doesnotexist"};
    assert_int_equal(dep_job(ST, "B-unknown", unknown, conds, 2, id, &bad), SKED_ENOTFOUND);
    assert_int_equal(bad, 1);
    store_job_t *list = NULL;
    size_t n = 0;
    char *next = NULL;
    store_job_filter_t f = {.limit = 100};
    assert_int_equal(store_job_list(ST, &f, &list, &n, &next), 0);
    assert_int_equal(n, 1); /* only A */
    for (size_t i = 0; i < n; i++)
        store_job_clear(&list[i]);
    free(list);
    free(next);

    /* another namespace */
    store_job_t other;
    mkjob(&other, "elsewhere", 1);
    free(other.ns);
    other.ns = xstrdup("other");
    assert_int_equal(store_job_create(ST, &other, NULL, 0, false, NULL, NULL, T0), 0);
    const char *cross[] = {other.id};
    assert_int_equal(dep_job(ST, "B-cross", cross, conds, 1, id, &bad), SKED_ENOTFOUND);
    assert_int_equal(bad, 0);
    store_job_clear(&other);

    /* a task */
    const tdef_t t[] = {{"only", "", RULE_ALL_SUCCESS, 0}};
    wf_put(ST, "wf", t, 1, 0, OVERLAP_ALLOW, T0, wf);
    store_job_t *tasks = NULL;
    size_t nt = 0;
    assert_int_equal(store_workflow_tasks(ST, wf, &tasks, &nt), 0);
    assert_int_equal(nt, 1);
    const char *task[] = {tasks[0].id};
    assert_int_equal(dep_job(ST, "B-task", task, conds, 1, id, &bad), SKED_ENOTFOUND);
    assert_int_equal(bad, 0);
    store_job_clear(&tasks[0]);
    free(tasks);
    /* a workflow may be depended on */
    const char *wfup[] = {wf};
    assert_int_equal(dep_job(ST, "B-wf", wfup, conds, 1, id, &bad), 0);
    assert_int_equal(bad, -1);

    /* cycles: A <- B <- C; A may not depend on C, B, or itself */
    const char *ua[] = {a};
    assert_int_equal(dep_job(ST, "B", ua, conds, 1, b, NULL), 0);
    const char *ub[] = {b};
    assert_int_equal(dep_job(ST, "C", ub, conds, 1, c, NULL), 0);
    const char *closing[] = {c, b, a};
    for (size_t k = 0; k < 3; k++) {
        store_job_t j;
        assert_int_equal(store_job_get(ST, a, &j, NULL, NULL), 0);
        int64_t version = j.version;
        j.deps = xcalloc(2, sizeof *j.deps);
        j.ndeps = 2;
        snprintf(j.deps[0].job_id, sizeof j.deps[0].job_id, "%s", wf); /* fine */
        snprintf(j.deps[1].job_id, sizeof j.deps[1].job_id, "%s", closing[k]);
        j.deps[0].cond = j.deps[1].cond = DEP_AFTERANY;
        assert_int_equal(store_job_update(ST, &j, version, NULL, 0, NULL, T0 + 1), SKED_ECONFLICT);
        assert_int_equal(j.bad_dep, 1);
        store_job_clear(&j);
        assert_int_equal(store_job_get(ST, a, &j, NULL, NULL), 0);
        assert_int_equal(j.version, version); /* nothing written */
        assert_int_equal(j.graph, STORE_GRAPH_DEPENDENTS);
        store_job_clear(&j);
    }
    /* A's runs are still plain runs (no dependency was added) */
    char ra[SKED_ID_LEN];
    trigger(ST, a, T0 + 2, ra);
    EXPECT_RUN(ST, ra, "pending");
    /* and an update that closes no cycle is taken */
    store_job_t j;
    assert_int_equal(store_job_get(ST, c, &j, NULL, NULL), 0);
    j.deps = xcalloc(1, sizeof *j.deps);
    j.ndeps = 1;
    snprintf(j.deps[0].job_id, sizeof j.deps[0].job_id, "%s", a);
    j.deps[0].cond = DEP_AFTERANY;
    assert_int_equal(store_job_update(ST, &j, 0, NULL, 0, NULL, T0 + 3), 0);
    assert_int_equal(j.bad_dep, -1);
    store_job_clear(&j);
}

/* A job may depend on a workflow or an array job: its run waits for the
 * whole group run and follows the group's outcome. */
static void test_job_deps_on_groups(void **state)
{
    const tdef_t t[] = {{"x", "", RULE_ALL_SUCCESS, 0}, {"y", "x", RULE_ALL_SUCCESS, 0}};
    char wf[SKED_ID_LEN], arr[SKED_ID_LEN], b[SKED_ID_LEN], gw[SKED_ID_LEN], ga[SKED_ID_LEN],
        rb[SKED_ID_LEN];
    got_t got[16];
    wf_put(ST, "wf", t, 2, 0, OVERLAP_ALLOW, T0, wf);
    array_job(ST, "arr", 2, 0, 1, OVERLAP_ALLOW, arr);
    const char *ups[] = {wf, arr};
    const dep_cond_t conds[] = {DEP_AFTEROK, DEP_AFTERNOTOK};
    assert_int_equal(dep_job(ST, "after-both", ups, conds, 2, b, NULL), 0);
    trigger(ST, wf, T0, gw);
    trigger(ST, arr, T0, ga);
    trigger(ST, b, T0 + 1, rb);
    EXPECT_RUN(ST, rb, "waiting");
    size_t n = take_expect(ST, WID, T0 + 2, got, "0,1,x");
    finish_name(ST, got, n, "x", ATTEMPT_SUCCEEDED, T0 + 3);
    finish_name(ST, got, n, "0", ATTEMPT_SUCCEEDED, T0 + 3);
    finish_name(ST, got, n, "1", ATTEMPT_FAILED, T0 + 3); /* the array run fails */
    EXPECT_GROUP(ST, ga, "failed n=2 open=0 ok=1 failed=1 canceled=0 skipped=0");
    EXPECT_RUN(ST, rb, "waiting"); /* the workflow run still goes */
    take_expect(ST, WID, T0 + 4, got, "y");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 5);
    EXPECT_GROUP(ST, gw, "succeeded n=2 open=0 ok=2 failed=0 canceled=0 skipped=0");
    EXPECT_RUN(ST, rb, "pending");
}

/* The upstream job is deleted while a run waits on it: on its pending
 * run (canceled with the job), or on its next run (which never comes):
 * either way the waiting run is decided as if that run was canceled,
 * never left waiting for ever. */
static void test_job_deps_upstream_deleted(void **state)
{
    char a[SKED_ID_LEN], a2[SKED_ID_LEN], b[SKED_ID_LEN], b2[SKED_ID_LEN], c2[SKED_ID_LEN],
        ra[SKED_ID_LEN], rb[SKED_ID_LEN], rb2[SKED_ID_LEN], rc2[SKED_ID_LEN];
    dep_cond_t ok = DEP_AFTEROK, any = DEP_AFTERANY;
    plain_job(ST, "A", a);
    const char *ups[] = {a};
    assert_int_equal(dep_job(ST, "B", ups, &ok, 1, b, NULL), 0);
    trigger(ST, a, T0, ra);
    trigger(ST, b, T0 + 1, rb);
    assert_int_equal(store_job_set_state(ST, a, JOB_DELETED, NULL, T0 + 2), 0);
    EXPECT_RUN(ST, ra, "canceled(job deleted)");
    EXPECT_RUN(ST, rb, "skipped(upstream_failed)");

    plain_job(ST, "A2", a2); /* never runs */
    const char *ups2[] = {a2};
    assert_int_equal(dep_job(ST, "B2", ups2, &ok, 1, b2, NULL), 0);
    assert_int_equal(dep_job(ST, "C2", ups2, &any, 1, c2, NULL), 0);
    trigger(ST, b2, T0 + 3, rb2);
    trigger(ST, c2, T0 + 3, rc2);
    EXPECT_RUN(ST, rb2, "waiting");
    EXPECT_RUN(ST, rc2, "waiting");
    assert_int_equal(store_job_set_state(ST, a2, JOB_DELETED, NULL, T0 + 4), 0);
    EXPECT_RUN(ST, rb2, "skipped(upstream_failed)");
    EXPECT_RUN(ST, rc2, "pending");
}

/* ---- 8. delete and pause of a workflow --------------------------------------------------------
 */

/* Deleting a workflow cancels its runs: the going one (its waiting and
 * pending tasks at once, its running task asked to stop) and a queued
 * one; a task ending afterwards resurrects nothing. */
static void test_workflow_delete(void **state)
{
    char wf[SKED_ID_LEN], g1[SKED_ID_LEN], g2[SKED_ID_LEN];
    got_t got[16];
    const tdef_t t[] = {
        {"a", "", RULE_ALL_SUCCESS, 0},
        {"b", "a", RULE_ALL_SUCCESS, 0},
        {"c", "a", RULE_ALL_SUCCESS, 0},
        {"d", "b,c", RULE_ALL_SUCCESS, 0},
    };
    wf_put(ST, "doomed", t, 4, 1, OVERLAP_ALLOW, T0, wf);
    trigger(ST, wf, T0, g1);
    trigger(ST, wf, T0 + 1, g2); /* queued behind g1 */
    take_expect(ST, WID, T0 + 2, got, "a");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 3);
    assert_int_equal(take(ST, WID, 1, T0 + 4, got), 1);
    got_t running = got[0];
    assert_int_equal(store_job_set_state(ST, wf, JOB_DELETED, NULL, T0 + 5), 0);
    EXPECT_RUN(ST, g1, "canceled(job deleted)");
    EXPECT_RUN(ST, g2, "canceled(job deleted)");
    EXPECT_MEMBERS(ST, g2, "");
    char *m = members_str(ST, g1);
    char want[640];
    const char *other = strcmp(running.name, "b") == 0 ? "c" : "b";
    snprintf(want, sizeof want, "a=succeeded b=%s c=%s d=canceled(job deleted)",
             strcmp(running.name, "b") == 0 ? "running!" : "canceled(job deleted)",
             strcmp(running.name, "c") == 0 ? "running!" : "canceled(job deleted)");
    assert_string_equal(m, want);
    free(m);
    (void)other;
    EXPECT_GROUP(ST, g1, "canceled n=4 open=1 ok=1 failed=0 canceled=2 skipped=0");
    nothing_claimable(ST, WID, T0 + 6);
    finish(ST, &running, ATTEMPT_SUCCEEDED, T0 + 7);
    EXPECT_RUN(ST, g1, "canceled(job deleted)");
    EXPECT_GROUP(ST, g1, "canceled n=4 open=0 ok=1 failed=0 canceled=3 skipped=0");
    EXPECT_RUN(ST, g2, "canceled(job deleted)");
    nothing_claimable(ST, WID, T0 + 8);
    /* the deleted workflow and its tasks are gone for the API */
    store_job_t j;
    assert_int_equal(store_job_get(ST, wf, &j, NULL, NULL), SKED_ENOTFOUND);
    char rid[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, wf, NULL, T0 + 9, rid), SKED_ECONFLICT);
    store_job_t *tasks = NULL;
    size_t nt = 0;
    assert_int_equal(store_workflow_tasks(ST, wf, &tasks, &nt), 0);
    assert_int_equal(nt, 0);
    free(tasks);
    /* the name is free again */
    char wf2[SKED_ID_LEN];
    wf_put(ST, "doomed", t, 4, 1, OVERLAP_ALLOW, T0 + 10, wf2);
}

/* Pausing a workflow holds its task runs: none is claimable, those
 * released meanwhile are released held; resume lets them all go. */
static void test_workflow_pause(void **state)
{
    char wf[SKED_ID_LEN], g[SKED_ID_LEN], g2[SKED_ID_LEN];
    got_t got[16];
    diamond(ST, "pausable", RULE_ALL_SUCCESS, 1, RULE_ALL_SUCCESS, T0, wf);
    trigger(ST, wf, T0, g);
    assert_int_equal(store_job_set_state(ST, wf, JOB_PAUSED, NULL, T0 + 1), 0);
    nothing_claimable(ST, WID, T0 + 2);
    store_job_t *tasks = NULL;
    size_t nt = 0;
    assert_int_equal(store_workflow_tasks(ST, wf, &tasks, &nt), 0);
    assert_int_equal(nt, 4);
    for (size_t i = 0; i < nt; i++) {
        assert_int_equal(tasks[i].state, JOB_PAUSED);
        store_job_clear(&tasks[i]);
    }
    free(tasks);
    /* a run triggered while paused starts held too */
    trigger(ST, wf, T0 + 3, g2);
    nothing_claimable(ST, WID, T0 + 4);
    assert_int_equal(store_job_set_state(ST, wf, JOB_ACTIVE, NULL, T0 + 5), 0);
    size_t n = take_expect(ST, WID, T0 + 6, got, "a,a");
    /* paused while a runs: b and c are released held */
    assert_int_equal(store_job_set_state(ST, wf, JOB_PAUSED, NULL, T0 + 7), 0);
    for (size_t i = 0; i < n; i++)
        finish(ST, &got[i], ATTEMPT_SUCCEEDED, T0 + 8);
    EXPECT_MEMBERS(ST, g, "a=succeeded b=pending c=pending d=waiting");
    nothing_claimable(ST, WID, T0 + 9);
    assert_int_equal(store_job_set_state(ST, wf, JOB_ACTIVE, NULL, T0 + 10), 0);
    n = take_expect(ST, WID, T0 + 11, got, "b,b,c,c");
    for (size_t i = 0; i < n; i++)
        finish(ST, &got[i], ATTEMPT_SUCCEEDED, T0 + 12);
    take_expect(ST, WID, T0 + 13, got, "d,d");
}

/* ---- schedules
 * ------------------------------------------------------------------------------------ */

/* A workflow's schedule fires workflow runs like a job's fires runs; a
 * job with a dependency fired on its schedule waits the same way. */
static void test_workflow_schedule_fires(void **state)
{
    const tdef_t t[] = {{"x", "", RULE_ALL_SUCCESS, 0}, {"y", "x", RULE_ALL_SUCCESS, 0}};
    store_job_t wf;
    mkjob(&wf, "nightly", 1);
    store_schedule_t sc = {0};
    sc.kind = SCHEDULE_EVERY;
    sc.expr = xstrdup("1m");
    sc.next_fire_ms = T0 + 60000;
    store_job_t tasks[2];
    for (int i = 0; i < 2; i++)
        mkjob(&tasks[i], t[i].name, 1);
    tasks[1].deps = xcalloc(1, sizeof *tasks[1].deps);
    tasks[1].ndeps = 1;
    tasks[1].deps[0].task = 0;
    assert_int_equal(store_workflow_put(ST, &wf, &sc, 1, tasks, 2, -1, NULL, NULL, T0), 0);
    store_due_t *due = NULL;
    size_t nd = 0;
    assert_int_equal(store_due_schedules(ST, T0 + 60000, 10, &due, &nd), 0);
    assert_int_equal(nd, 1);
    assert_string_equal(due[0].sched.job_id, wf.id);
    store_fire_run_t fr = {T0 + 60000, T0 + 60000, RUN_SCHEDULED, NULL};
    store_fire_t item = {due[0].sched.id, T0 + 60000, T0 + 120000, &fr, 1, {0}, 0};
    assert_int_equal(store_fire(ST, &item, 1, T0 + 60000), 0);
    assert_int_equal(item.applied, 1);
    for (size_t i = 0; i < nd; i++)
        store_schedule_clear(&due[i].sched);
    free(due);
    store_grouped_t *v = NULL;
    size_t nv = 0;
    char *next = NULL;
    assert_int_equal(store_group_list(ST, wf.id, NULL, 10, &v, &nv, &next), 0);
    assert_int_equal(nv, 1);
    assert_int_equal(v[0].run.fire_ms, T0 + 60000);
    assert_true(v[0].group.is_group && v[0].group.started);
    char g[SKED_ID_LEN];
    memcpy(g, v[0].run.id, SKED_ID_LEN);
    for (size_t i = 0; i < nv; i++)
        store_run_clear(&v[i].run);
    free(v);
    free(next);
    EXPECT_MEMBERS(ST, g, "x=pending y=waiting");
    got_t got[16];
    take_expect(ST, WID, T0 + 60001, got, "x");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 60002);
    take_expect(ST, WID, T0 + 60003, got, "y");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 60004);
    EXPECT_GROUP(ST, g, "succeeded n=2 open=0 ok=2 failed=0 canceled=0 skipped=0");
    for (int i = 0; i < 2; i++)
        store_job_clear(&tasks[i]);
    store_schedule_clear(&sc);
    store_job_clear(&wf);
}

/* ---- 9. scale ---------------------------------------------------------------------------------
 */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum { WIDE = 998, CHAIN = 1000, BATCH = 100 };

/* 1 -> 998 -> 1: the root's end releases the 998 at once (and touches
 * nothing else: the join still counts 0), the join goes after the last
 * of them and not before. Prints the time each phase took. */
static void test_scale_wide(void **state)
{
    size_t n = WIDE + 2;
    store_job_t *tasks = xcalloc(n, sizeof *tasks);
    char name[32];
    mkjob(&tasks[0], "root", 1);
    for (size_t i = 1; i <= WIDE; i++) {
        snprintf(name, sizeof name, "m%03zu", i - 1);
        mkjob(&tasks[i], name, 1);
        tasks[i].deps = xcalloc(1, sizeof *tasks[i].deps);
        tasks[i].ndeps = 1;
        tasks[i].deps[0].task = 0;
    }
    mkjob(&tasks[n - 1], "zjoin", 1);
    tasks[n - 1].deps = xcalloc(WIDE, sizeof *tasks[n - 1].deps);
    tasks[n - 1].ndeps = WIDE;
    for (size_t i = 0; i < WIDE; i++)
        tasks[n - 1].deps[i].task = i + 1;
    char wf[SKED_ID_LEN], g[SKED_ID_LEN], zid[SKED_ID_LEN];
    double t0 = mono_s();
    wf_put_jobs(ST, "wide", tasks, n, 0, OVERLAP_ALLOW, T0, wf);
    double t_put = mono_s() - t0;
    for (size_t i = 0; i < n; i++)
        store_job_clear(&tasks[i]);
    free(tasks);

    t0 = mono_s();
    trigger(ST, wf, T0, g);
    double t_trigger = mono_s() - t0;
    EXPECT_GROUP(ST, g, "waiting n=1000 open=1000 ok=0 failed=0 canceled=0 skipped=0");
    member_id(ST, g, "zjoin", zid);

    got_t *got = xcalloc(BATCH, sizeof *got);
    int64_t now = T0 + 1;
    assert_int_equal(take(ST, WID, BATCH, now, got), 1);
    assert_string_equal(got[0].name, "root");
    t0 = mono_s();
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, ++now);
    double t_fanout = mono_s() - t0;
    store_run_t z = get_run(ST, zid);
    assert_int_equal(z.state, RUN_WAITING);
    assert_int_equal(z.deps_n, WIDE);
    assert_int_equal(z.deps_ok, 0);
    store_run_clear(&z);

    /* All 998 claimable at once, before any of them ends; nothing else. */
    got_t *wave = xcalloc(WIDE, sizeof *wave);
    size_t released = 0;
    double t_claim = mono_s();
    for (int round = 0; round < WIDE / BATCH + 1 && released < WIDE; round++) {
        size_t k = take(ST, WID, BATCH, ++now, wave + released);
        if (k == 0) break;
        released += k;
    }
    t_claim = mono_s() - t_claim;
    assert_int_equal(released, WIDE);
    for (size_t i = 0; i < WIDE; i++) {
        assert_int_equal(wave[i].name[0], 'm');
        assert_string_equal(wave[i].parent, g);
    }
    nothing_claimable(ST, WID, ++now);
    /* Each end counts one on the join, which goes after the last only
     * (checked now and then, not to weigh on the timing). */
    double t_done = mono_s();
    for (size_t i = 0; i < WIDE; i++) {
        finish(ST, &wave[i], ATTEMPT_SUCCEEDED, ++now);
        if (i % 250 == 0 && i + 1 < WIDE) {
            z = get_run(ST, zid);
            assert_int_equal(z.state, RUN_WAITING);
            assert_int_equal(z.deps_ok, (int)i + 1);
            store_run_clear(&z);
        }
    }
    t_done = mono_s() - t_done;
    free(wave);
    z = get_run(ST, zid);
    assert_int_equal(z.state, RUN_PENDING);
    assert_int_equal(z.deps_ok, WIDE);
    store_run_clear(&z);
    assert_int_equal(take(ST, WID, BATCH, ++now, got), 1);
    assert_string_equal(got[0].name, "zjoin");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, ++now);
    EXPECT_GROUP(ST, g, "succeeded n=1000 open=0 ok=1000 failed=0 canceled=0 skipped=0");
    free(got);
    print_message("  [scale %s] wide 1->998->1: put %.0f ms, trigger (1000 task runs) %.0f ms, "
                  "root's end releasing 998: %.0f ms (%.0f tasks/s); 998 claimed in batches of "
                  "%d: %.0f ms; 998 completed one by one, each counted on the join: %.0f ms "
                  "(%.0f ends/s)\n",
                  g_backend, t_put * 1e3, t_trigger * 1e3, t_fanout * 1e3, WIDE / t_fanout, BATCH,
                  t_claim * 1e3, t_done * 1e3, WIDE / t_done);
}

/* A chain of 1000: each end releases exactly the next task, in order. */
static void test_scale_chain(void **state)
{
    store_job_t *tasks = xcalloc(CHAIN, sizeof *tasks);
    char name[32];
    for (size_t i = 0; i < CHAIN; i++) {
        snprintf(name, sizeof name, "c%04zu", i);
        mkjob(&tasks[i], name, 1);
        if (i) {
            tasks[i].deps = xcalloc(1, sizeof *tasks[i].deps);
            tasks[i].ndeps = 1;
            tasks[i].deps[0].task = i - 1;
        }
    }
    char wf[SKED_ID_LEN], g[SKED_ID_LEN];
    double t0 = mono_s();
    wf_put_jobs(ST, "chain", tasks, CHAIN, 0, OVERLAP_ALLOW, T0, wf);
    double t_put = mono_s() - t0;
    for (size_t i = 0; i < CHAIN; i++)
        store_job_clear(&tasks[i]);
    free(tasks);
    t0 = mono_s();
    trigger(ST, wf, T0, g);
    double t_trigger = mono_s() - t0;

    got_t got[4];
    int64_t now = T0;
    t0 = mono_s();
    for (size_t i = 0; i < CHAIN; i++) {
        size_t k = take(ST, WID, 4, ++now, got);
        if (k != 1) fail_msg("step %zu: %zu claimable, expected 1", i, k);
        snprintf(name, sizeof name, "c%04zu", i);
        assert_string_equal(got[0].name, name);
        finish(ST, &got[0], ATTEMPT_SUCCEEDED, ++now);
    }
    double t_loop = mono_s() - t0;
    nothing_claimable(ST, WID, ++now);
    EXPECT_GROUP(ST, g, "succeeded n=1000 open=0 ok=1000 failed=0 canceled=0 skipped=0");
    print_message(
        "  [scale %s] chain of 1000: put %.0f ms, trigger %.0f ms, 1000 claimed+completed "
        "one by one %.0f ms (%.0f tasks/s)\n",
        g_backend, t_put * 1e3, t_trigger * 1e3, t_loop * 1e3, CHAIN / t_loop);
}

/* ---- more edges
 * ------------------------------------------------------------------------------------ */

/* Canceling one waiting task run: the workflow goes on, what depends on
 * it is skipped upstream_failed, and the run ends failed. */
static void test_cancel_one_task(void **state)
{
    char wf[SKED_ID_LEN], g[SKED_ID_LEN], cid[SKED_ID_LEN];
    got_t got[16];
    diamond(ST, "one-task", RULE_ALL_SUCCESS, 1, RULE_ALL_SUCCESS, T0, wf);
    trigger(ST, wf, T0, g);
    member_id(ST, g, "c", cid);
    assert_int_equal(store_run_cancel(ST, cid, NULL, NULL, T0 + 1), 0);
    EXPECT_MEMBERS(ST, g, "a=pending b=waiting c=canceled(canceled) d=skipped(upstream_failed)");
    EXPECT_GROUP(ST, g, "waiting n=4 open=2 ok=0 failed=0 canceled=1 skipped=1");
    take_expect(ST, WID, T0 + 2, got, "a");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 3);
    take_expect(ST, WID, T0 + 4, got, "b");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 5);
    EXPECT_GROUP(ST, g, "failed n=4 open=0 ok=2 failed=0 canceled=1 skipped=1");
}

/* Drives a diamond run to failed by c's failure. */
static void fail_diamond(void **state, const char *wf, char g[SKED_ID_LEN])
{
    got_t got[16];
    trigger(ST, wf, T0, g);
    take_expect(ST, WID, T0 + 1, got, "a");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 2);
    size_t n = take_expect(ST, WID, T0 + 3, got, "b,c");
    finish_name(ST, got, n, "b", ATTEMPT_SUCCEEDED, T0 + 4);
    finish_name(ST, got, n, "c", ATTEMPT_FAILED, T0 + 4);
    EXPECT_GROUP(ST, g, "failed n=4 open=0 ok=2 failed=1 canceled=0 skipped=1");
}

/* A workflow deleted after its run failed, or a task replaced away: the
 * tasks of a deleted job can never be claimed again, so retrying one is
 * refused rather than leaving the run waiting for ever. */
static void test_retry_after_delete(void **state)
{
    char wf[SKED_ID_LEN], g[SKED_ID_LEN], cid[SKED_ID_LEN];
    diamond(ST, "gone", RULE_ALL_SUCCESS, 1, RULE_ALL_SUCCESS, T0, wf);
    fail_diamond(state, wf, g);
    assert_int_equal(store_job_set_state(ST, wf, JOB_DELETED, NULL, T0 + 5), 0);
    member_id(ST, g, "c", cid);
    assert_int_equal(store_group_retry(ST, g, cid, true, NULL, T0 + 6), SKED_ECONFLICT);
    EXPECT_GROUP(ST, g, "failed n=4 open=0 ok=2 failed=1 canceled=0 skipped=1");
    EXPECT_MEMBERS(ST, g, "a=succeeded b=succeeded c=failed d=skipped(upstream_failed)");

    /* c replaced away: the workflow now is a -> b -> d */
    diamond(ST, "replaced", RULE_ALL_SUCCESS, 1, RULE_ALL_SUCCESS, T0 + 10, wf);
    fail_diamond(state, wf, g);
    const tdef_t t[] = {
        {"a", "", RULE_ALL_SUCCESS, 0},
        {"b", "a", RULE_ALL_SUCCESS, 0},
        {"d", "b", RULE_ALL_SUCCESS, 0},
    };
    store_job_t tasks[3], w;
    for (int i = 0; i < 3; i++)
        mkjob(&tasks[i], t[i].name, 1);
    for (int i = 1; i < 3; i++) {
        tasks[i].deps = xcalloc(1, sizeof *tasks[i].deps);
        tasks[i].ndeps = 1;
        tasks[i].deps[0].task = (size_t)i - 1;
    }
    mkjob(&w, "replaced", 1);
    memcpy(w.id, wf, SKED_ID_LEN);
    assert_int_equal(store_workflow_put(ST, &w, NULL, 0, tasks, 3, 0, NULL, NULL, T0 + 20), 0);
    for (int i = 0; i < 3; i++)
        store_job_clear(&tasks[i]);
    store_job_clear(&w);
    member_id(ST, g, "c", cid);
    assert_int_equal(store_group_retry(ST, g, cid, false, NULL, T0 + 21), SKED_ECONFLICT);
    EXPECT_GROUP(ST, g, "failed n=4 open=0 ok=2 failed=1 canceled=0 skipped=1");
    /* a new run has the new shape */
    char g2[SKED_ID_LEN];
    trigger(ST, wf, T0 + 22, g2);
    EXPECT_MEMBERS(ST, g2, "a=pending b=waiting d=waiting");
}

/* An array job that depends on another job: its run waits, and starts
 * its members only when the dependency is met. */
static void test_array_with_dependency(void **state)
{
    char a[SKED_ID_LEN], arr[SKED_ID_LEN], ra[SKED_ID_LEN], g[SKED_ID_LEN];
    got_t got[16];
    plain_job(ST, "A", a);
    store_job_t j;
    mkjob(&j, "after-A", 1);
    j.array_count = 3;
    j.array_parallel = 2;
    j.deps = xcalloc(1, sizeof *j.deps);
    j.ndeps = 1;
    snprintf(j.deps[0].job_id, sizeof j.deps[0].job_id, "%s", a);
    j.deps[0].cond = DEP_AFTEROK;
    assert_int_equal(store_job_create(ST, &j, NULL, 0, false, NULL, NULL, T0), 0);
    memcpy(arr, j.id, SKED_ID_LEN);
    store_job_clear(&j);
    trigger(ST, a, T0, ra);
    trigger(ST, arr, T0 + 1, g);
    EXPECT_GROUP(ST, g, "waiting for upstreams");
    EXPECT_MEMBERS(ST, g, "");
    size_t n = take(ST, WID, 16, T0 + 2, got);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, ra);
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 3);
    EXPECT_MEMBERS(ST, g, "0=pending 1=pending 2=waiting");
    EXPECT_GROUP(ST, g, "waiting n=3 open=3 ok=0 failed=0 canceled=0 skipped=0");
    n = take_expect(ST, WID, T0 + 4, got, "0,1");
    for (size_t i = 0; i < n; i++)
        finish(ST, &got[i], ATTEMPT_SUCCEEDED, T0 + 5);
    take_expect(ST, WID, T0 + 6, got, "2");
    finish(ST, &got[0], ATTEMPT_SUCCEEDED, T0 + 7);
    EXPECT_GROUP(ST, g, "succeeded n=3 open=0 ok=3 failed=0 canceled=0 skipped=0");
}

/* The newest run of job_id, which fire_ms made. */
static void newest_run(store_t *st, const char *job_id, int64_t fire_ms, char run_id[SKED_ID_LEN])
{
    store_run_filter_t f = {job_id, NULL, INT64_MIN, INT64_MAX, NULL, 1};
    store_run_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_run_list(st, &f, &v, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].fire_ms, fire_ms);
    memcpy(run_id, v[0].id, SKED_ID_LEN);
    store_run_clear(&v[0]);
    free(v);
    free(next);
}

/* Fires sched_id (next_fire_ms expect) once at fire_ms; returns the run
 * it made (the newest run of job_id). */
static void fire_once(store_t *st, const char *sched_id, const char *job_id, int64_t fire_ms,
                      char run_id[SKED_ID_LEN])
{
    store_fire_run_t fr = {fire_ms, fire_ms, RUN_SCHEDULED, NULL};
    store_fire_t item = {sched_id, fire_ms, fire_ms + 60000, &fr, 1, {0}, 0};
    assert_int_equal(store_fire(st, &item, 1, fire_ms), 0);
    assert_int_equal(item.applied, 1);
    newest_run(st, job_id, fire_ms, run_id);
}

/* Arrays of the largest size due at the same instant, fired by one pass
 * of the scheduler: one transaction, and each array's insert changes index
 * pages the ones before it wrote, so its statement journal outgrows memory
 * and SQLite moves it to a file mid-statement (store_sqlite.c,
 * STMT_JOURNAL_SPILL). With a spill over 128 KiB that move failed, and the
 * fire with it, as "database or disk is full". */
static void test_arrays_fired_together(void **state)
{
    enum { K = 4 };
    char ids[K][SKED_ID_LEN], want[128];
    store_schedule_t sc[K];
    store_fire_t items[K];
    store_fire_run_t fr = {T0 + 60000, T0 + 60000, RUN_SCHEDULED, NULL};
    for (int k = 0; k < K; k++) {
        store_job_t j;
        char name[32];
        snprintf(name, sizeof name, "arr-max-%d", k);
        mkjob(&j, name, 1);
        j.array_count = JOBSPEC_ARRAY_MAX;
        sc[k] = (store_schedule_t){
            .kind = SCHEDULE_EVERY, .expr = xstrdup("1m"), .next_fire_ms = T0 + 60000};
        assert_int_equal(store_job_create(ST, &j, &sc[k], 1, false, NULL, NULL, T0), 0);
        memcpy(ids[k], j.id, SKED_ID_LEN);
        items[k] = (store_fire_t){sc[k].id, T0 + 60000, T0 + 120000, &fr, 1, {0}, 0};
        store_job_clear(&j);
    }
    assert_int_equal(store_fire(ST, items, K, T0 + 60000), 0);
    snprintf(want, sizeof want, "waiting n=%d open=%d ok=0 failed=0 canceled=0 skipped=0",
             JOBSPEC_ARRAY_MAX, JOBSPEC_ARRAY_MAX);
    for (int k = 0; k < K; k++) {
        assert_int_equal(items[k].applied, 1);
        store_grouped_t *v = NULL;
        size_t nv = 0;
        char *next = NULL;
        assert_int_equal(store_group_list(ST, ids[k], NULL, 10, &v, &nv, &next), 0);
        assert_int_equal(nv, 1);
        assert_int_equal(v[0].run.fire_ms, T0 + 60000);
        EXPECT_GROUP(ST, v[0].run.id, want);
        store_run_clear(&v[0].run);
        free(v);
        free(next);
        store_schedule_clear(&sc[k]);
    }
}

/* A and B fire on the same schedule instant, B depending on A: B's run
 * waits for A's run of that instant whichever of the two fires first. */
static void test_job_deps_same_instant(void **state)
{
    for (int order = 0; order < 2; order++) {
        store_job_t ja, jb;
        char name[32];
        store_schedule_t sa = {0}, sb = {0};
        sa.kind = sb.kind = SCHEDULE_EVERY;
        sa.expr = xstrdup("1m");
        sb.expr = xstrdup("1m");
        sa.next_fire_ms = sb.next_fire_ms = T0 + 60000;
        snprintf(name, sizeof name, "A%d", order);
        mkjob(&ja, name, 1);
        assert_int_equal(store_job_create(ST, &ja, &sa, 1, false, NULL, NULL, T0), 0);
        snprintf(name, sizeof name, "B%d", order);
        mkjob(&jb, name, 1);
        jb.deps = xcalloc(1, sizeof *jb.deps);
        jb.ndeps = 1;
        snprintf(jb.deps[0].job_id, sizeof jb.deps[0].job_id, "%s", ja.id);
        jb.deps[0].cond = DEP_AFTEROK;
        assert_int_equal(store_job_create(ST, &jb, &sb, 1, false, NULL, NULL, T0), 0);
        char ra[SKED_ID_LEN], rb[SKED_ID_LEN];
        int64_t at = T0 + 60000;
        if (order == 0) {
            fire_once(ST, sa.id, ja.id, at, ra);
            fire_once(ST, sb.id, jb.id, at, rb);
        } else {
            fire_once(ST, sb.id, jb.id, at, rb);
            fire_once(ST, sa.id, ja.id, at, ra);
        }
        EXPECT_RUN(ST, rb, "waiting");
        got_t got[16];
        size_t n = take(ST, WID, 16, at + 1, got);
        assert_int_equal(n, 1);
        assert_string_equal(got[0].id, ra);
        finish(ST, &got[0], ATTEMPT_SUCCEEDED, at + 2);
        EXPECT_RUN(ST, rb, "pending");
        assert_int_equal(run_all(ST, WID, at + 3), 1);
        store_schedule_clear(&sa);
        store_schedule_clear(&sb);
        store_job_clear(&ja);
        store_job_clear(&jb);
    }
}

/* A chain of job dependencies A -> B -> C (afterok) and D (afterany on
 * B): C binds to B's run while it still waits; when A fails, B is
 * skipped, C with it (afterok over a skipped run), and D goes (afterany:
 * B ended). */
static void test_job_deps_chain(void **state)
{
    char a[SKED_ID_LEN], b[SKED_ID_LEN], c[SKED_ID_LEN], d[SKED_ID_LEN];
    char ra[SKED_ID_LEN], rb[SKED_ID_LEN], rc_[SKED_ID_LEN], rd[SKED_ID_LEN];
    dep_cond_t ok = DEP_AFTEROK, any = DEP_AFTERANY;
    plain_job(ST, "A", a);
    const char *ua[] = {a};
    assert_int_equal(dep_job(ST, "B", ua, &ok, 1, b, NULL), 0);
    const char *ub[] = {b};
    assert_int_equal(dep_job(ST, "C", ub, &ok, 1, c, NULL), 0);
    assert_int_equal(dep_job(ST, "D", ub, &any, 1, d, NULL), 0);
    trigger(ST, a, T0, ra);
    trigger(ST, b, T0 + 1, rb);
    trigger(ST, c, T0 + 2, rc_);
    trigger(ST, d, T0 + 2, rd);
    EXPECT_RUN(ST, rb, "waiting");
    EXPECT_RUN(ST, rc_, "waiting");
    EXPECT_RUN(ST, rd, "waiting");
    got_t got[16];
    size_t n = take(ST, WID, 16, T0 + 3, got);
    assert_int_equal(n, 1);
    finish(ST, &got[0], ATTEMPT_FAILED, T0 + 4);
    EXPECT_RUN(ST, rb, "skipped(upstream_failed)");
    EXPECT_RUN(ST, rc_, "skipped(upstream_skipped)");
    EXPECT_RUN(ST, rd, "pending");
    assert_int_equal(run_all(ST, WID, T0 + 5), 1);
}

/* A workflow with no task: its run has nothing to wait for and ends
 * succeeded at once. */
static void test_empty_workflow(void **state)
{
    char wf[SKED_ID_LEN], g[SKED_ID_LEN];
    wf_put(ST, "empty", NULL, 0, 1, OVERLAP_ALLOW, T0, wf);
    trigger(ST, wf, T0 + 1, g);
    EXPECT_GROUP(ST, g, "succeeded n=0 open=0 ok=0 failed=0 canceled=0 skipped=0");
    trigger(ST, wf, T0 + 2, g);
    EXPECT_GROUP(ST, g, "succeeded n=0 open=0 ok=0 failed=0 canceled=0 skipped=0");
    nothing_claimable(ST, WID, T0 + 3);
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc > 1) g_backend = argv[1];
    if (strcmp(g_backend, "sqlite") != 0 && strcmp(g_backend, "postgres") != 0) {
        fprintf(stderr, "usage: %s sqlite|postgres\n", argv[0]);
        return 2;
    }
    if (strcmp(g_backend, "postgres") == 0 && !getenv("SKED_TEST_PG_URL")) {
        fprintf(stderr, "postgres backend: set SKED_TEST_PG_URL\n");
        return 2;
    }
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_diamond_c_fails),
        T(test_diamond_c_canceled),
        T(test_diamond_c_skipped),
        T(test_cascade),
        T(test_retry),
        T(test_retry_downstream_chain),
        T(test_retry_while_going),
        T(test_cancel_workflow_run),
        T(test_max_active_queue),
        T(test_overlap_forbid_and_replace),
        T(test_array),
        T(test_array_overlap),
        T(test_arrays_fired_together),
        T(test_job_deps_conditions),
        T(test_job_deps_binding),
        T(test_job_deps_next_run_made_ahead),
        T(test_job_deps_mixed),
        T(test_job_deps_refused),
        T(test_job_deps_on_groups),
        T(test_job_deps_upstream_deleted),
        T(test_workflow_delete),
        T(test_workflow_pause),
        T(test_workflow_schedule_fires),
        T(test_scale_wide),
        T(test_scale_chain),
        T(test_cancel_one_task),
        T(test_retry_after_delete),
        T(test_array_with_dependency),
        T(test_job_deps_same_instant),
        T(test_job_deps_chain),
        T(test_empty_workflow),
    };
#undef T
    return cmocka_run_group_tests_name(g_backend, tests, NULL, NULL);
}
