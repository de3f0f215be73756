/*
 * The store conformance suite: every verb and every rule of store.h,
 * checked through the public interface only, so the same file runs
 * unchanged against every backend. argv[1] names the backend:
 *
 *   test_store sqlite    a fresh sqlite:<temp dir>/sked.db per test
 *   test_store postgres  the database at $SKED_TEST_PG_URL
 *
 * The only backend-specific code is fresh_url(). Times are fixed instants
 * (T0 + offsets) passed in as now_ms, as the store never reads a clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/id.h"
#include "common/xalloc.h"
#include "core/results.h"
#include "store/store.h"
#include "store/store_int.h"

#define T0       INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define MIN_MS   INT64_C(60000)
#define LEASE_MS INT64_C(30000)

static const char *g_backend = "sqlite";

struct ctx {
    char dir[256];
    char url[600];
    store_t *st;
};

/* ---- harness ---------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void fresh_url(struct ctx *c)
{
    if (strcmp(g_backend, "postgres") == 0) {
        /* One schema per test, so tests never see each other's rows (and
         * the schema-version test cannot poison the rest). */
        const char *url = getenv("SKED_TEST_PG_URL");
        static unsigned seq;
        if (!url) url = "";
        snprintf(c->url, sizeof c->url, "%s%ssked_schema=t%d_%u", url, strchr(url, '?') ? "&" : "?",
                 (int)getpid(), ++seq);
        c->dir[0] = '\0';
        return;
    }
    snprintf(c->dir, sizeof c->dir, "/tmp/sked-store-test-XXXXXX");
    if (!mkdtemp(c->dir)) fail_msg("mkdtemp failed");
    snprintf(c->url, sizeof c->url, "sqlite:%s/sked.db", c->dir);
}

static store_t *open_ok(const char *url)
{
    store_t *st = NULL;
    char *err = NULL;
    int rc = store_open(url, &st, &err);
    if (rc != 0) fail_msg("store_open(%s): %s: %s", url, sked_errname(rc), err ? err : "");
    free(err);
    return st;
}

static int setup(void **state)
{
    struct ctx *c = xcalloc(1, sizeof *c);
    fresh_url(c);
    c->st = open_ok(c->url);
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

#define ST (((struct ctx *)*state)->st)

/* A job with defaults; name must be unique per test. */
static void mkjob(store_job_t *j, const char *name)
{
    memset(j, 0, sizeof *j);
    j->name = xstrdup(name);
    j->queue = xstrdup("default");
    j->spec_json = xasprintf("{\"name\":\"%s\",\"command\":[\"true\"]}", name);
    j->constraints = xstrdup("");
    j->tags = xstrdup("");
    j->owner = xstrdup("admin");
    j->retry = retry_policy_default();
}

/* Creates a job (optionally with a run now) and returns its id in id. */
static void new_job(store_t *st, const char *name, int priority, const char *queue, bool run_now,
                    int64_t now, char id[SKED_ID_LEN])
{
    store_job_t j;
    mkjob(&j, name);
    j.priority = priority;
    if (queue) {
        free(j.queue);
        j.queue = xstrdup(queue);
    }
    assert_int_equal(store_job_create(st, &j, NULL, 0, run_now, NULL, NULL, now), 0);
    memcpy(id, j.id, SKED_ID_LEN);
    store_job_clear(&j);
}

static void new_worker(store_t *st, const char *name, const char *queues, const char *labels,
                       int64_t now, char id[SKED_ID_LEN])
{
    store_worker_t w = {0};
    w.name = xstrdup(name);
    w.host = xstrdup("localhost");
    w.queues = xstrdup(queues);
    w.labels = xstrdup(labels);
    w.slots = 4;
    assert_int_equal(store_worker_register(st, &w, NULL, now), 0);
    memcpy(id, w.id, SKED_ID_LEN);
    store_worker_clear(&w);
}

/* store_next_claimable_ms / store_next_fire_ms that must succeed. */
static int64_t next_claimable(store_t *st)
{
    int64_t v = -2;
    assert_int_equal(store_next_claimable_ms(st, &v), 0);
    return v;
}

static int64_t next_fire(store_t *st)
{
    int64_t v = -2;
    assert_int_equal(store_next_fire_ms(st, &v), 0);
    return v;
}

/* Claims up to max runs; returns them (caller frees with free_claimed). */
static store_claimed_t *claim(store_t *st, const char *wid, int max, int64_t now, size_t *n)
{
    store_claimed_t *v = NULL;
    assert_int_equal(store_claim(st, wid, NULL, max, LEASE_MS, now, &v, n), 0);
    return v;
}

/* Reports a claimed attempt started (its first heartbeat), which turns its
 * short unconfirmed lease into a full one: now + LEASE_MS. */
static void confirm(store_t *st, const char *wid, const store_claimed_t *c, int64_t now)
{
    store_held_t h = {c->run.id, c->run.fence, true, false, NULL};
    assert_int_equal(store_heartbeat(st, wid, NULL, &h, 1, LEASE_MS, now, NULL), 0);
    assert_true(h.keep);
}

static void free_claimed(store_claimed_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_claimed_clear(&v[i]);
    free(v);
}

static store_run_t get_run(store_t *st, const char *id)
{
    store_run_t r;
    assert_int_equal(store_run_get(st, id, &r, NULL, NULL), 0);
    return r;
}

static run_state_t run_state(store_t *st, const char *id)
{
    store_run_t r = get_run(st, id);
    run_state_t s = r.state;
    store_run_clear(&r);
    return s;
}

/* Counts the runs of a job (optionally in one state) by paging. */
static size_t count_runs(store_t *st, const char *job_id, const char *state)
{
    size_t total = 0;
    char *cursor = NULL;
    do {
        store_run_filter_t f = {job_id, state, INT64_MIN, INT64_MAX, cursor, 1000};
        store_run_t *v;
        size_t n;
        char *next;
        assert_int_equal(store_run_list(st, &f, &v, &n, &next), 0);
        for (size_t i = 0; i < n; i++)
            store_run_clear(&v[i]);
        free(v);
        free(cursor);
        cursor = next;
        total += n;
    } while (cursor);
    return total;
}

/* The id of the only run of a job. */
static void only_run(store_t *st, const char *job_id, char id[SKED_ID_LEN])
{
    store_run_filter_t f = {job_id, NULL, INT64_MIN, INT64_MAX, NULL, 10};
    store_run_t *v;
    size_t n;
    char *next;
    assert_int_equal(store_run_list(st, &f, &v, &n, &next), 0);
    assert_int_equal(n, 1);
    memcpy(id, v[0].id, SKED_ID_LEN);
    store_run_clear(&v[0]);
    free(v);
    free(next);
}

static const store_result_t RES_OK = {ATTEMPT_SUCCEEDED, 0, 0, NULL, NULL, NULL};
static const store_result_t RES_FAIL = {ATTEMPT_FAILED, 3, 0, "exit status 3", NULL, NULL};

/* ---- lifecycle ---------------------------------------------------------------- */

static void test_open_and_ping(void **state)
{
    store_t *st = NULL;
    char *err = NULL;
    assert_string_equal(store_backend(ST), g_backend);
    assert_int_equal(store_ping(ST), 0);

    assert_int_equal(store_open("mysql://x", &st, &err), SKED_EINVAL);
    assert_null(st);
    assert_non_null(err);
    FREE_NULL(err);
    assert_int_equal(store_open("sqlite:", &st, &err), SKED_EINVAL);
    FREE_NULL(err);
    store_close(NULL); /* a no-op */
}

static void test_schema_version_refused(void **state)
{
    struct ctx *c = *state;
    /* Pretend a newer sked wrote this store. */
    assert_int_equal(store__set_schema_version(c->st, 9999), 0);
    store_close(c->st);
    c->st = NULL;
    char *err = NULL;
    store_t *st = NULL;
    assert_int_equal(store_open(c->url, &st, &err), SKED_ESCHEMA);
    assert_null(st);
    assert_non_null(err);
    assert_non_null(strstr(err, "9999"));
    free(err);
}

/* ---- jobs ------------------------------------------------------------------- */

static void test_job_create_get(void **state)
{
    store_job_t j;
    mkjob(&j, "nightly");
    j.priority = 50;
    j.max_concurrency = 3;
    j.timeout_ms = 1800000;
    j.overlap = OVERLAP_FORBID;
    j.misfire = MISFIRE_CATCH_UP;
    j.catch_up_window_ms = 3600000;
    j.retry.max_attempts = 4;
    j.retry.multiplier = 3.5;
    free(j.tags);
    j.tags = xstrdup(",a,b,");
    store_schedule_t sc[2];
    memset(sc, 0, sizeof sc);
    sc[0].kind = SCHEDULE_CRON;
    sc[0].expr = xstrdup("0 2 * * *");
    sc[0].timezone = xstrdup("Europe/Berlin");
    sc[0].start_ms = INT64_MIN;
    sc[0].end_ms = INT64_MAX;
    sc[0].anchor_ms = INT64_MIN;
    sc[0].next_fire_ms = T0 + 3600000;
    sc[1].kind = SCHEDULE_AT;
    sc[1].expr = xstrdup("2026-01-02T00:00:00Z");
    sc[1].timezone = xstrdup("");
    sc[1].jitter_ms = 5000;
    sc[1].next_fire_ms = -1;
    assert_int_equal(store_job_create(ST, &j, sc, 2, false, NULL, NULL, T0), 0);
    assert_true(id_valid(j.id));
    assert_int_equal(j.version, 1);
    assert_int_equal(j.created_ms, T0);
    assert_true(id_valid(sc[0].id));
    assert_string_equal(sc[1].job_id, j.id);

    store_job_t g;
    store_schedule_t *gs;
    size_t ns;
    assert_int_equal(store_job_get(ST, j.id, &g, &gs, &ns), 0);
    assert_string_equal(g.name, "nightly");
    assert_string_equal(g.ns, "default");
    assert_string_equal(g.owner, "admin");
    assert_string_equal(g.spec_json, j.spec_json);
    assert_string_equal(g.tags, ",a,b,");
    assert_int_equal(g.priority, 50);
    assert_int_equal(g.state, JOB_ACTIVE);
    assert_int_equal(g.overlap, OVERLAP_FORBID);
    assert_int_equal(g.misfire, MISFIRE_CATCH_UP);
    assert_int_equal(g.catch_up_window_ms, 3600000);
    assert_int_equal(g.max_concurrency, 3);
    assert_int_equal(g.timeout_ms, 1800000);
    assert_int_equal(g.retry.max_attempts, 4);
    assert_true(g.retry.multiplier == 3.5);
    assert_true(g.retry.jitter);
    assert_int_equal(g.version, 1);
    assert_int_equal(ns, 2);
    /* Schedules come back in the order given (the API indexes them). */
    assert_string_equal(gs[0].id, sc[0].id);
    assert_int_equal(gs[0].kind, SCHEDULE_CRON);
    assert_string_equal(gs[0].expr, "0 2 * * *");
    assert_string_equal(gs[0].timezone, "Europe/Berlin");
    assert_true(gs[0].start_ms == INT64_MIN && gs[0].end_ms == INT64_MAX);
    assert_true(gs[0].anchor_ms == INT64_MIN);
    assert_int_equal(gs[0].next_fire_ms, T0 + 3600000);
    assert_int_equal(gs[0].last_fire_ms, -1);
    assert_int_equal(gs[1].kind, SCHEDULE_AT);
    assert_int_equal(gs[1].jitter_ms, 5000);
    assert_int_equal(gs[1].next_fire_ms, -1);
    for (size_t i = 0; i < ns; i++)
        store_schedule_clear(&gs[i]);
    free(gs);
    store_job_clear(&g);

    /* The name is unique in its namespace, not across namespaces. */
    store_job_t d;
    mkjob(&d, "nightly");
    assert_int_equal(store_job_create(ST, &d, NULL, 0, false, NULL, NULL, T0), SKED_ECONFLICT);
    free(d.ns); /* the store filled in the default namespace */
    d.ns = xstrdup("other");
    assert_int_equal(store_job_create(ST, &d, NULL, 0, false, NULL, NULL, T0), 0);
    store_job_clear(&d);

    assert_int_equal(store_job_get(ST, "job_00000000000000000000000000", &g, NULL, NULL),
                     SKED_ENOTFOUND);
    /* No schedule and run_now: one run, due now. */
    assert_int_equal(count_runs(ST, j.id, NULL), 0);
    for (int i = 0; i < 2; i++)
        store_schedule_clear(&sc[i]);
    store_job_clear(&j);
}

static void test_job_idempotency(void **state)
{
    store_job_t a, b, c;
    mkjob(&a, "first");
    assert_int_equal(store_job_create(ST, &a, NULL, 0, true, "key-1", NULL, T0), 0);
    mkjob(&b, "second"); /* a different body: the key alone decides */
    assert_int_equal(store_job_create(ST, &b, NULL, 0, true, "key-1", NULL, T0 + 1), SKED_EEXIST);
    assert_string_equal(b.id, a.id);
    assert_int_equal(count_runs(ST, a.id, NULL), 1); /* the repeat created no run */
    store_job_t g;
    assert_int_equal(store_job_get(ST, a.id, &g, NULL, NULL), 0);
    assert_string_equal(g.name, "first");
    store_job_clear(&g);
    /* The same key from another owner is another request. */
    mkjob(&c, "third");
    free(c.owner);
    c.owner = xstrdup("someone-else");
    assert_int_equal(store_job_create(ST, &c, NULL, 0, false, "key-1", NULL, T0), 0);
    assert_string_not_equal(c.id, a.id);
    /* A failed create does not burn the key. */
    store_job_t d;
    mkjob(&d, "first");
    assert_int_equal(store_job_create(ST, &d, NULL, 0, false, "key-2", NULL, T0), SKED_ECONFLICT);
    free(d.name);
    d.name = xstrdup("fourth");
    assert_int_equal(store_job_create(ST, &d, NULL, 0, false, "key-2", NULL, T0), 0);
    store_job_clear(&a);
    store_job_clear(&b);
    store_job_clear(&c);
    store_job_clear(&d);
}

static store_audit_t mkaudit(const char *actor, const char *method, const char *route,
                             const char *target, int64_t at);
static size_t audit_count(store_t *st, const char *actor);
static void last_audit(store_t *st, const char *actor, store_audit_t *out);

/* A batch of jobs: N of them, item i named "<prefix>-<i>", every third
 * with a schedule, the others running now. */
#define BATCH_N 12
struct batch {
    store_job_t jobs[BATCH_N];
    store_schedule_t scheds[BATCH_N];
    store_job_new_t items[BATCH_N];
};

static void mkbatch(struct batch *b, const char *prefix)
{
    memset(b, 0, sizeof *b);
    for (size_t i = 0; i < BATCH_N; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%zu", prefix, i);
        mkjob(&b->jobs[i], name);
        b->items[i].job = &b->jobs[i];
        if (i % 3 == 0) {
            b->scheds[i].kind = SCHEDULE_AT;
            b->scheds[i].expr = xstrdup("2099-01-01T00:00:00Z");
            b->scheds[i].timezone = xstrdup("");
            b->scheds[i].next_fire_ms = T0 + 3600000;
            b->items[i].scheds = &b->scheds[i];
            b->items[i].nscheds = 1;
        } else {
            b->items[i].run_now = true;
        }
    }
}

static void freebatch(struct batch *b)
{
    for (size_t i = 0; i < BATCH_N; i++) {
        store_job_clear(&b->jobs[i]);
        store_schedule_clear(&b->scheds[i]);
    }
}

static size_t count_jobs(store_t *st, const char *name)
{
    store_job_filter_t f = {.name = name, .limit = 1000};
    store_job_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_job_list(st, &f, &v, &n, &next), 0);
    for (size_t i = 0; i < n; i++)
        store_job_clear(&v[i]);
    free(v);
    free(next);
    return n;
}

static void test_job_create_batch(void **state)
{
    struct batch b;
    size_t bad = 99;
    char *earlier = NULL;
    store_audit_t au = mkaudit("batcher", "POST", "/v1/jobs:batch", "", T0);

    /* All of it commits: every job, its schedule or its run now, one audit
     * entry naming the first job. */
    mkbatch(&b, "bat");
    assert_int_equal(store_job_create_batch(ST, b.items, BATCH_N, "bkey", &au, T0, &bad, &earlier),
                     0);
    assert_null(earlier);
    for (size_t i = 0; i < BATCH_N; i++) {
        store_job_t g;
        store_schedule_t *sc = NULL;
        size_t nsc = 0;
        assert_int_equal(store_job_get(ST, b.jobs[i].id, &g, &sc, &nsc), 0);
        assert_string_equal(g.name, b.jobs[i].name);
        assert_int_equal(nsc, i % 3 == 0 ? 1 : 0);
        assert_int_equal(count_runs(ST, g.id, "pending"), i % 3 == 0 ? 0 : 1);
        for (size_t k = 0; k < nsc; k++)
            store_schedule_clear(&sc[k]);
        free(sc);
        store_job_clear(&g);
    }
    assert_int_equal(count_jobs(ST, "bat-"), BATCH_N);
    assert_int_equal(audit_count(ST, "batcher"), 1);
    store_audit_t last;
    last_audit(ST, "batcher", &last);
    assert_string_equal(last.target, b.jobs[0].id);
    store_audit_clear(&last);

    /* The key again: nothing created, the first batch's ids in order. */
    struct batch again;
    mkbatch(&again, "again");
    assert_int_equal(
        store_job_create_batch(ST, again.items, BATCH_N, "bkey", &au, T0 + 1, &bad, &earlier),
        SKED_EEXIST);
    assert_string_equal(again.jobs[0].id, b.jobs[0].id);
    assert_non_null(earlier);
    char want[BATCH_N * SKED_ID_LEN + 1] = "";
    for (size_t i = 0; i < BATCH_N; i++) {
        if (i) strcat(want, ",");
        strcat(want, b.jobs[i].id);
    }
    assert_string_equal(earlier, want);
    FREE_NULL(earlier);
    assert_int_equal(count_jobs(ST, "again-"), 0);
    assert_int_equal(audit_count(ST, "batcher"), 1);
    freebatch(&again);

    /* A single create's key asked of a batch: the job it made, no list. */
    store_job_t one;
    mkjob(&one, "single");
    assert_int_equal(store_job_create(ST, &one, NULL, 0, false, "skey", NULL, T0), 0);
    mkbatch(&again, "again");
    assert_int_equal(
        store_job_create_batch(ST, again.items, BATCH_N, "skey", NULL, T0 + 1, &bad, &earlier),
        SKED_EEXIST);
    assert_string_equal(again.jobs[0].id, one.id);
    assert_null(earlier);
    freebatch(&again);
    store_job_clear(&one);

    /* A name taken in the middle: none of the batch is written, the item
     * is named, and the key is not burnt. */
    struct batch c;
    mkbatch(&c, "mid");
    free(c.jobs[7].name);
    c.jobs[7].name = xstrdup("bat-3"); /* taken by the first batch */
    assert_int_equal(store_job_create_batch(ST, c.items, BATCH_N, "ckey", &au, T0 + 2, &bad, NULL),
                     SKED_ECONFLICT);
    assert_int_equal(bad, 7);
    assert_int_equal(count_jobs(ST, "mid-"), 0);
    assert_int_equal(audit_count(ST, "batcher"), 1);
    for (size_t i = 0; i < BATCH_N; i++)
        assert_string_equal(c.jobs[i].id, "");
    /* ... and two items of one name conflict with each other. */
    free(c.jobs[7].name);
    c.jobs[7].name = xstrdup("mid-2");
    assert_int_equal(store_job_create_batch(ST, c.items, BATCH_N, "ckey", &au, T0 + 2, &bad, NULL),
                     SKED_ECONFLICT);
    assert_int_equal(bad, 7);
    assert_int_equal(count_jobs(ST, "mid-"), 0);
    free(c.jobs[7].name);
    c.jobs[7].name = xstrdup("mid-7");
    assert_int_equal(store_job_create_batch(ST, c.items, BATCH_N, "ckey", &au, T0 + 2, &bad, NULL),
                     0);
    assert_int_equal(count_jobs(ST, "mid-"), BATCH_N);
    freebatch(&c);
    freebatch(&b);

    /* Argument checks. */
    assert_int_equal(store_job_create_batch(ST, NULL, 0, NULL, NULL, T0, &bad, NULL), SKED_EINVAL);
}

static void test_job_delete_reuses_name(void **state)
{
    char id[SKED_ID_LEN], id2[SKED_ID_LEN];
    new_job(ST, "reborn", 0, NULL, false, T0, id);
    assert_int_equal(store_job_set_state(ST, id, JOB_DELETED, NULL, T0 + 1), 0);
    store_job_t g;
    assert_int_equal(store_job_get(ST, id, &g, NULL, NULL), SKED_ENOTFOUND);
    assert_int_equal(store_job_set_state(ST, id, JOB_PAUSED, NULL, T0 + 2), SKED_ENOTFOUND);
    assert_int_equal(store_job_set_state(ST, id, JOB_DELETED, NULL, T0 + 2), SKED_ENOTFOUND);
    char rid[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, id, NULL, T0 + 2, rid), SKED_ECONFLICT);
    assert_int_equal(store_run_trigger(ST, "job_00000000000000000000000000", NULL, T0, rid),
                     SKED_ENOTFOUND);
    new_job(ST, "reborn", 0, NULL, false, T0 + 3, id2);
    assert_string_not_equal(id, id2);
}

static void test_job_list_filters(void **state)
{
    char a[SKED_ID_LEN], b[SKED_ID_LEN], c[SKED_ID_LEN], d[SKED_ID_LEN];
    new_job(ST, "alpha-report", 0, "q1", false, T0 + 1, a);
    new_job(ST, "beta-report", 0, "q2", false, T0 + 2, b);
    new_job(ST, "gamma", 0, "q1", false, T0 + 3, c);
    store_job_t j;
    mkjob(&j, "delta");
    free(j.tags);
    j.tags = xstrdup(",nightly,reports,");
    assert_int_equal(store_job_create(ST, &j, NULL, 0, false, NULL, NULL, T0 + 4), 0);
    memcpy(d, j.id, SKED_ID_LEN);
    store_job_clear(&j);
    assert_int_equal(store_job_set_state(ST, c, JOB_PAUSED, NULL, T0 + 5), 0);
    char gone[SKED_ID_LEN];
    new_job(ST, "zeta-report", 0, "q1", false, T0 + 6, gone);
    assert_int_equal(store_job_set_state(ST, gone, JOB_DELETED, NULL, T0 + 7), 0);

    struct {
        store_job_filter_t f;
        const char *want[4];
    } cases[] = {
        {{.limit = 100}, {d, c, b, a}}, /* newest first, deleted excluded */
        {{.queue = "q1", .limit = 100}, {c, a}},
        {{.name = "report", .limit = 100}, {b, a}},
        {{.tag = "reports", .limit = 100}, {d}},
        {{.tag = "report", .limit = 100}, {NULL}}, /* tags match exactly */
        {{.state = "paused", .limit = 100}, {c}},
        {{.state = "deleted", .limit = 100}, {gone}},
        {{.ns = "default", .queue = "q2", .limit = 100}, {b}},
        {{.ns = "nope", .limit = 100}, {NULL}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        store_job_t *v;
        size_t n, want = 0;
        char *next;
        assert_int_equal(store_job_list(ST, &cases[k].f, &v, &n, &next), 0);
        while (want < 4 && cases[k].want[want])
            want++;
        if (n != want) fail_msg("case %zu: %zu jobs, want %zu", k, n, want);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(v[i].id, cases[k].want[i]);
            store_job_clear(&v[i]);
        }
        assert_null(next);
        free(v);
    }
    store_job_filter_t bad = {.limit = 0};
    store_job_t *v;
    size_t n;
    char *next;
    assert_int_equal(store_job_list(ST, &bad, &v, &n, &next), SKED_EINVAL);
    bad.limit = 1001;
    assert_int_equal(store_job_list(ST, &bad, &v, &n, &next), SKED_EINVAL);
    bad.limit = 10;
    bad.cursor = "garbage";
    assert_int_equal(store_job_list(ST, &bad, &v, &n, &next), SKED_EINVAL);
    bad.cursor = NULL;
    bad.state = "sleeping";
    assert_int_equal(store_job_list(ST, &bad, &v, &n, &next), SKED_EINVAL);
}

static void test_job_list_paging(void **state)
{
    enum { N = 257 };
    char ids[N][SKED_ID_LEN];
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "job-%03d", i);
        /* Ten jobs per millisecond: ties in the sort key must still page
         * exactly once. */
        new_job(ST, name, 0, NULL, false, T0 + i / 10, ids[i]);
    }
    int seen[N] = {0};
    char *cursor = NULL;
    int64_t last_ms = INT64_MAX;
    size_t total = 0, pages = 0;
    do {
        store_job_filter_t f = {.cursor = cursor, .limit = 10};
        store_job_t *v;
        size_t n;
        char *next;
        assert_int_equal(store_job_list(ST, &f, &v, &n, &next), 0);
        for (size_t i = 0; i < n; i++) {
            assert_true(v[i].created_ms <= last_ms);
            last_ms = v[i].created_ms;
            int k;
            for (k = 0; k < N && strcmp(ids[k], v[i].id) != 0; k++)
                ;
            assert_true(k < N);
            seen[k]++;
            store_job_clear(&v[i]);
        }
        free(v);
        free(cursor);
        cursor = next;
        total += n;
        pages++;
    } while (cursor);
    assert_int_equal(total, N);
    assert_int_equal(pages, (N + 9) / 10);
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);
}

/* The sorts of the job list, paged two by two: every job exactly once, in
 * the order the test computes itself (key, then id, in the key's
 * direction; names byte by byte), with ties on every key. */
struct sorted_job {
    char id[SKED_ID_LEN];
    const char *name;
    int priority;
    int64_t created_ms;
};

static job_sort_t g_sort;

static int cmp_sorted(const void *pa, const void *pb)
{
    const struct sorted_job *a = pa, *b = pb;
    int c = 0, desc = g_sort == JOB_SORT_CREATED_DESC || g_sort == JOB_SORT_NAME_DESC ||
                      g_sort == JOB_SORT_PRIORITY_DESC;
    if (g_sort == JOB_SORT_NAME || g_sort == JOB_SORT_NAME_DESC)
        c = strcmp(a->name, b->name);
    else if (g_sort == JOB_SORT_PRIORITY || g_sort == JOB_SORT_PRIORITY_DESC)
        c = (a->priority > b->priority) - (a->priority < b->priority);
    else
        c = (a->created_ms > b->created_ms) - (a->created_ms < b->created_ms);
    if (c == 0) c = strcmp(a->id, b->id);
    return desc ? -c : c;
}

static void test_job_list_sorts(void **state)
{
    /* Names in byte order: upper case, then "a b" < "a.b" < "alpha", then
     * UTF-8 above ASCII; "twin" twice (two namespaces). */
    static const char *const names[] = {"alpha",        "Zeta",   "a.b",  "a b",
                                        "\xc3\xa9mile", "twin",   "twin", "mid-1",
                                        "mid-2",        "mid-1x", "b",    "c"};
    enum { N = sizeof names / sizeof *names };
    struct sorted_job jobs[N];
    for (int i = 0; i < N; i++) {
        store_job_t j;
        mkjob(&j, names[i]);
        j.ns = xstrdup(i == 6 ? "other" : "default");
        j.priority = (i * 7) % 3; /* three levels, four jobs each */
        int64_t at = T0 + i / 3;  /* three jobs per millisecond */
        assert_int_equal(store_job_create(ST, &j, NULL, 0, false, NULL, NULL, at), 0);
        jobs[i] = (struct sorted_job){.name = names[i], .priority = j.priority, .created_ms = at};
        memcpy(jobs[i].id, j.id, SKED_ID_LEN);
        store_job_clear(&j);
    }
    char *cursors[JOB_SORT_COUNT] = {0}; /* each sort's first cursor */
    for (int s = 0; s < JOB_SORT_COUNT; s++) {
        g_sort = (job_sort_t)s;
        qsort(jobs, N, sizeof *jobs, cmp_sorted);
        char *cursor = NULL;
        size_t k = 0, pages = 0;
        do {
            store_job_filter_t f = {.cursor = cursor, .limit = 2, .sort = (job_sort_t)s};
            store_job_t *v;
            size_t n;
            char *next;
            assert_int_equal(store_job_list(ST, &f, &v, &n, &next), 0);
            for (size_t i = 0; i < n; i++, k++) {
                if (k >= N || strcmp(v[i].id, jobs[k].id) != 0)
                    fail_msg("sort %s: item %zu is %s (%s), want %s (%s)", job_sort_name(s), k,
                             v[i].id, v[i].name, k < N ? jobs[k].id : "none",
                             k < N ? jobs[k].name : "");
                store_job_clear(&v[i]);
            }
            free(v);
            if (pages++ == 0 && next) cursors[s] = xstrdup(next);
            free(cursor);
            cursor = next;
        } while (cursor && pages <= N);
        assert_int_equal(k, N);
        assert_int_equal(pages, (N + 1) / 2);
    }
    /* A cursor pages only the sort that made it; garbage is refused too. */
    for (int s = 0; s < JOB_SORT_COUNT; s++) {
        assert_non_null(cursors[s]);
        for (int t = 0; t < JOB_SORT_COUNT; t++) {
            store_job_filter_t f = {.cursor = cursors[s], .limit = 2, .sort = (job_sort_t)t};
            store_job_t *v;
            size_t n;
            char *next;
            int rc = store_job_list(ST, &f, &v, &n, &next);
            if (s == t) {
                assert_int_equal(rc, 0);
                for (size_t i = 0; i < n; i++)
                    store_job_clear(&v[i]);
                free(v);
                free(next);
            } else if (rc != SKED_EINVAL) {
                fail_msg("a %s cursor was taken for sort %s", job_sort_name(s), job_sort_name(t));
            }
        }
        free(cursors[s]);
    }
    static const struct {
        job_sort_t sort;
        const char *cursor;
    } bad[] = {
        {JOB_SORT_NAME, "name..job_00000000000000000000000000"},     /* no key */
        {JOB_SORT_NAME, "name.6.job_00000000000000000000000000"},    /* odd hex */
        {JOB_SORT_NAME, "name.zz.job_00000000000000000000000000"},   /* not hex */
        {JOB_SORT_NAME, "name.0061.job_00000000000000000000000000"}, /* a NUL byte */
        {JOB_SORT_NAME, "name.61.nope"},                             /* not an id */
        {JOB_SORT_PRIORITY, "priority.x.job_00000000000000000000000000"},
        {JOB_SORT_PRIORITY, "priority.99999999999999999999.job_00000000000000000000000000"},
        {JOB_SORT_CREATED, "created.5"},
        {JOB_SORT_PRIORITY_DESC, "-priority.5.job_00000000000000000000000000.x"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        store_job_filter_t f = {.cursor = bad[i].cursor, .limit = 2, .sort = bad[i].sort};
        store_job_t *v;
        size_t n;
        char *next;
        if (store_job_list(ST, &f, &v, &n, &next) != SKED_EINVAL)
            fail_msg("cursor %s was taken", bad[i].cursor);
    }
    store_job_filter_t f = {.limit = 2, .sort = JOB_SORT_COUNT};
    store_job_t *v;
    size_t n;
    char *next;
    assert_int_equal(store_job_list(ST, &f, &v, &n, &next), SKED_EINVAL);
    /* The names of the sorts, as the API spells them. */
    job_sort_t js;
    assert_int_equal(job_sort_parse("-priority", &js), 0);
    assert_int_equal(js, JOB_SORT_PRIORITY_DESC);
    assert_int_equal(job_sort_parse("-created", &js), 0);
    assert_int_equal(js, JOB_SORT_CREATED_DESC);
    assert_int_equal(job_sort_parse("next_fire", &js), SKED_EINVAL);
    assert_int_equal(job_sort_parse("+name", &js), SKED_EINVAL);
}

struct create_thread {
    store_t *st;
    int t;
    int failures;
};

static void *create_main(void *arg)
{
    struct create_thread *ct = arg;
    for (int i = 0; i < 200; i++) {
        store_job_t j;
        char name[64];
        snprintf(name, sizeof name, "t%d-job%d", ct->t, i);
        mkjob(&j, name);
        if (store_job_create(ct->st, &j, NULL, 0, false, NULL, NULL, T0 + i) != 0) ct->failures++;
        store_job_clear(&j);
    }
    return NULL;
}

static void test_job_create_concurrent(void **state)
{
    pthread_t th[8];
    struct create_thread ct[8];
    for (int t = 0; t < 8; t++) {
        ct[t] = (struct create_thread){ST, t, 0};
        assert_int_equal(pthread_create(&th[t], NULL, create_main, &ct[t]), 0);
    }
    for (int t = 0; t < 8; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(ct[t].failures, 0);
    }
    size_t total = 0;
    char *cursor = NULL;
    do {
        store_job_filter_t f = {.cursor = cursor, .limit = 1000};
        store_job_t *v;
        size_t n;
        char *next;
        assert_int_equal(store_job_list(ST, &f, &v, &n, &next), 0);
        for (size_t i = 0; i < n; i++)
            store_job_clear(&v[i]);
        free(v);
        free(cursor);
        cursor = next;
        total += n;
    } while (cursor);
    assert_int_equal(total, 1600);
}

static void test_job_update(void **state)
{
    char wid[SKED_ID_LEN];
    new_worker(ST, "w1", "default,fast", "", T0, wid);
    store_job_t j;
    mkjob(&j, "upd");
    store_schedule_t sc[2];
    memset(sc, 0, sizeof sc);
    sc[0].kind = SCHEDULE_EVERY;
    sc[0].expr = xstrdup("1m");
    sc[0].next_fire_ms = T0 + MIN_MS;
    sc[1].kind = SCHEDULE_EVERY;
    sc[1].expr = xstrdup("1h");
    sc[1].next_fire_ms = T0 + 60 * MIN_MS;
    assert_int_equal(store_job_create(ST, &j, sc, 2, false, NULL, NULL, T0), 0);
    /* Two runs: one gets claimed (running), one stays pending. */
    char r1[SKED_ID_LEN], r2[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0, r1), 0);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    assert_int_equal(n, 1);
    assert_string_equal(cl[0].run.id, r1);
    free_claimed(cl, n);
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 1, r2), 0);

    /* Keep schedule 1 (by id), drop schedule 0, add a new one. */
    store_schedule_t ns[2];
    memset(ns, 0, sizeof ns);
    memcpy(ns[0].id, sc[1].id, SKED_ID_LEN);
    ns[0].kind = SCHEDULE_EVERY;
    ns[0].expr = xstrdup("2h");
    ns[0].next_fire_ms = T0 + 120 * MIN_MS;
    ns[1].kind = SCHEDULE_CRON;
    ns[1].expr = xstrdup("*/5 * * * *");
    ns[1].timezone = xstrdup("UTC");
    ns[1].next_fire_ms = T0 + 5 * MIN_MS;
    j.priority = 77;
    free(j.queue);
    j.queue = xstrdup("fast");
    assert_int_equal(store_job_update(ST, &j, 5, ns, 2, NULL, T0 + 10), SKED_EPRECOND);
    assert_int_equal(store_job_update(ST, &j, 1, ns, 2, NULL, T0 + 10), 0);
    assert_int_equal(j.version, 2);
    assert_int_equal(store_job_update(ST, &j, 1, ns, 2, NULL, T0 + 11), SKED_EPRECOND);
    assert_int_equal(store_job_update(ST, &j, 0, ns, 2, NULL, T0 + 11), 0); /* 0: unchecked */
    assert_int_equal(j.version, 3);

    store_job_t g;
    store_schedule_t *gs;
    size_t gn;
    assert_int_equal(store_job_get(ST, j.id, &g, &gs, &gn), 0);
    assert_int_equal(g.priority, 77);
    assert_string_equal(g.queue, "fast");
    assert_int_equal(g.version, 3);
    assert_int_equal(g.updated_ms, T0 + 11);
    assert_int_equal(g.created_ms, T0);
    assert_int_equal(gn, 2);
    assert_string_equal(gs[0].id, sc[1].id); /* kept its id */
    assert_string_equal(gs[0].expr, "2h");
    assert_string_equal(gs[1].expr, "*/5 * * * *");
    assert_string_not_equal(gs[1].id, sc[0].id);
    for (size_t i = 0; i < gn; i++)
        store_schedule_clear(&gs[i]);
    free(gs);
    store_job_clear(&g);
    /* The dropped schedule no longer fires. */
    assert_int_equal(next_fire(ST), T0 + 5 * MIN_MS);

    /* The pending run follows the job; the running one keeps its values. */
    store_run_t r = get_run(ST, r2);
    assert_int_equal(r.priority, 77);
    assert_string_equal(r.queue, "fast");
    store_run_clear(&r);
    r = get_run(ST, r1);
    assert_int_equal(r.priority, 0);
    assert_string_equal(r.queue, "default");
    store_run_clear(&r);

    /* Renaming onto a taken name conflicts; unknown ids are not found. */
    char other[SKED_ID_LEN];
    new_job(ST, "taken", 0, NULL, false, T0, other);
    free(j.name);
    j.name = xstrdup("taken");
    assert_int_equal(store_job_update(ST, &j, 0, NULL, 0, NULL, T0 + 12), SKED_ECONFLICT);
    snprintf(j.id, sizeof j.id, "job_00000000000000000000000000");
    assert_int_equal(store_job_update(ST, &j, 0, NULL, 0, NULL, T0 + 12), SKED_ENOTFOUND);
    for (int i = 0; i < 2; i++) {
        store_schedule_clear(&sc[i]);
        store_schedule_clear(&ns[i]);
    }
    store_job_clear(&j);
}

/* ---- firing ------------------------------------------------------------------ */

/* Creates a job with one `every` schedule whose next fire is next_ms. */
static void job_with_schedule_overlap(store_t *st, const char *name, int64_t next_ms,
                                      overlap_policy_t overlap, char job_id[SKED_ID_LEN],
                                      char sched_id[SKED_ID_LEN])
{
    store_job_t j;
    mkjob(&j, name);
    j.overlap = overlap;
    store_schedule_t sc = {0};
    sc.kind = SCHEDULE_EVERY;
    sc.expr = xstrdup("1s");
    sc.next_fire_ms = next_ms;
    assert_int_equal(store_job_create(st, &j, &sc, 1, false, NULL, NULL, T0 - 1000), 0);
    memcpy(job_id, j.id, SKED_ID_LEN);
    memcpy(sched_id, sc.id, SKED_ID_LEN);
    store_schedule_clear(&sc);
    store_job_clear(&j);
}

static void job_with_schedule(store_t *st, const char *name, int64_t next_ms,
                              char job_id[SKED_ID_LEN], char sched_id[SKED_ID_LEN])
{
    job_with_schedule_overlap(st, name, next_ms, OVERLAP_ALLOW, job_id, sched_id);
}

static void test_fire_cas(void **state)
{
    char jid[SKED_ID_LEN], sid[SKED_ID_LEN], jid2[SKED_ID_LEN], sid2[SKED_ID_LEN];
    job_with_schedule(ST, "every", T0, jid, sid);
    job_with_schedule(ST, "later", T0 + 5000, jid2, sid2);
    assert_int_equal(next_fire(ST), T0);

    store_due_t *due;
    size_t n;
    assert_int_equal(store_due_schedules(ST, T0, 10, &due, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(due[0].sched.id, sid);
    assert_string_equal(due[0].sched.job_id, jid);
    assert_int_equal(due[0].sched.next_fire_ms, T0);
    assert_int_equal(due[0].misfire, MISFIRE_RUN_ONCE);
    store_schedule_clear(&due[0].sched);
    free(due);
    assert_int_equal(store_due_schedules(ST, T0 + 10000, 10, &due, &n), 0);
    assert_int_equal(n, 2); /* oldest first */
    assert_string_equal(due[0].sched.id, sid);
    assert_string_equal(due[1].sched.id, sid2);
    for (size_t i = 0; i < n; i++)
        store_schedule_clear(&due[i].sched);
    free(due);
    assert_int_equal(store_due_schedules(ST, T0 + 10000, 1, &due, &n), 0);
    assert_int_equal(n, 1);
    store_schedule_clear(&due[0].sched);
    free(due);

    store_fire_run_t runs[] = {{T0, T0 + 7, RUN_SCHEDULED, NULL}};
    store_fire_t it = {sid, T0, T0 + 1000, runs, 1, {0}, 0};
    assert_int_equal(store_fire(ST, &it, 1, T0), 0);
    assert_int_equal(it.applied, 1);
    /* A second server that read the same next_fire loses the CAS. */
    it.applied = 1;
    assert_int_equal(store_fire(ST, &it, 1, T0), 0);
    assert_int_equal(it.applied, 0);
    assert_int_equal(count_runs(ST, jid, NULL), 1);

    /* Even with a correct CAS, a fire time already run is not run again
     * (UNIQUE(schedule, fire time)); the new one is added. Items are
     * independent: the lost CAS of one does not stop the other. */
    store_fire_run_t runs2[] = {{T0, T0, RUN_SCHEDULED, NULL},
                                {T0 + 1000, T0 + 1000, RUN_SKIPPED, "misfire: skip"}};
    store_fire_t items[2] = {{sid, T0 + 1000, -1, runs2, 2, {0}, 0},
                             {sid2, T0 /* stale */, T0 + 6000, runs2, 1, {0}, 0}};
    assert_int_equal(store_fire(ST, items, 2, T0 + 1500), 0);
    assert_int_equal(items[0].applied, 1);
    assert_int_equal(items[1].applied, 0);
    assert_int_equal(count_runs(ST, jid, NULL), 2);
    assert_int_equal(count_runs(ST, jid, "skipped"), 1);
    assert_int_equal(count_runs(ST, jid2, NULL), 0);

    store_run_filter_t f = {jid, NULL, INT64_MIN, INT64_MAX, NULL, 10};
    store_run_t *v;
    char *next;
    assert_int_equal(store_run_list(ST, &f, &v, &n, &next), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].fire_ms, T0 + 1000); /* newest fire time first */
    assert_int_equal(v[0].state, RUN_SKIPPED);
    assert_string_equal(v[0].reason, "misfire: skip");
    assert_int_equal(v[0].finished_ms, T0 + 1500);
    assert_int_equal(v[1].fire_ms, T0);
    assert_int_equal(v[1].not_before_ms, T0 + 7);
    assert_int_equal(v[1].state, RUN_SCHEDULED);
    assert_string_equal(v[1].schedule_id, sid);
    assert_int_equal(v[1].attempt, 0);
    for (size_t i = 0; i < n; i++)
        store_run_clear(&v[i]);
    free(v);

    /* Exhausted (-1) schedules are never due again; last_fire is kept. */
    store_job_t g;
    store_schedule_t *gs;
    size_t gn;
    assert_int_equal(store_job_get(ST, jid, &g, &gs, &gn), 0);
    assert_int_equal(gs[0].next_fire_ms, -1);
    assert_int_equal(gs[0].last_fire_ms, T0 + 1000);
    store_schedule_clear(&gs[0]);
    free(gs);
    store_job_clear(&g);
    assert_int_equal(next_fire(ST), T0 + 5000);
    assert_int_equal(store_due_schedules(ST, INT64_MAX, 10, &due, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(due[0].sched.id, sid2);
    store_schedule_clear(&due[0].sched);
    free(due);
}

struct fire_thread {
    store_t *st;
    int64_t end_ms;
    int applied;
};

/* A scheduler loop: read due schedules, fire each one step. */
static void *fire_main(void *arg)
{
    struct fire_thread *ft = arg;
    for (;;) {
        store_due_t *due;
        size_t n;
        if (store_due_schedules(ft->st, INT64_MAX, 10, &due, &n) != 0) return NULL;
        if (n == 0) {
            free(due);
            return NULL;
        }
        store_fire_t *items = xcalloc(n, sizeof *items);
        store_fire_run_t *runs = xcalloc(n, sizeof *runs);
        for (size_t i = 0; i < n; i++) {
            int64_t at = due[i].sched.next_fire_ms;
            runs[i] = (store_fire_run_t){at, at, RUN_SCHEDULED, NULL};
            items[i] = (store_fire_t){
                due[i].sched.id, at, at + 1000 > ft->end_ms ? -1 : at + 1000, &runs[i], 1, {0}, 0};
        }
        if (store_fire(ft->st, items, n, T0) != 0) fail_msg("store_fire failed");
        for (size_t i = 0; i < n; i++) {
            ft->applied += items[i].applied;
            store_schedule_clear(&due[i].sched);
        }
        free(items);
        free(runs);
        free(due);
    }
}

static void test_fire_two_servers(void **state)
{
    struct ctx *c = *state;
    char jid[SKED_ID_LEN], sid[SKED_ID_LEN];
    enum { FIRES = 60 };
    job_with_schedule(ST, "raced", T0, jid, sid);
    store_t *other = open_ok(c->url); /* a second server on the same store */
    struct fire_thread ft[2] = {{ST, T0 + (FIRES - 1) * 1000, 0},
                                {other, T0 + (FIRES - 1) * 1000, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fire_main, &ft[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    store_close(other);
    assert_int_equal(ft[0].applied + ft[1].applied, FIRES);

    /* Exactly one run per fire time. */
    int seen[FIRES] = {0};
    char *cursor = NULL;
    size_t total = 0;
    do {
        store_run_filter_t f = {jid, NULL, INT64_MIN, INT64_MAX, cursor, 7};
        store_run_t *v;
        size_t n;
        char *next;
        assert_int_equal(store_run_list(ST, &f, &v, &n, &next), 0);
        for (size_t i = 0; i < n; i++) {
            int64_t k = (v[i].fire_ms - T0) / 1000;
            assert_true(k >= 0 && k < FIRES);
            seen[k]++;
            store_run_clear(&v[i]);
        }
        total += n;
        free(v);
        free(cursor);
        cursor = next;
    } while (cursor);
    assert_int_equal(total, FIRES);
    for (int i = 0; i < FIRES; i++)
        assert_int_equal(seen[i], 1);
}

static void test_trigger_and_next_claimable(void **state)
{
    assert_int_equal(next_claimable(ST), -1);
    char jid[SKED_ID_LEN], rid[SKED_ID_LEN], sid[SKED_ID_LEN], j2[SKED_ID_LEN];
    new_job(ST, "trig", 5, "q", false, T0, jid);
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0 + 100, rid), 0);
    store_run_t r = get_run(ST, rid);
    assert_int_equal(r.state, RUN_PENDING);
    assert_int_equal(r.fire_ms, T0 + 100);
    assert_int_equal(r.not_before_ms, T0 + 100);
    assert_int_equal(r.priority, 5);
    assert_string_equal(r.queue, "q");
    assert_string_equal(r.schedule_id, "");
    assert_string_equal(r.worker_id, "");
    assert_int_equal(r.created_ms, T0 + 100);
    assert_int_equal(r.started_ms, -1);
    assert_int_equal(r.finished_ms, -1);
    assert_int_equal(r.lease_expires_ms, -1);
    assert_int_equal(r.exit_code, -1);
    assert_null(r.reason);
    store_run_clear(&r);
    assert_int_equal(next_claimable(ST), T0 + 100);

    /* A run materialised ahead counts from its not_before; the earliest wins. */
    job_with_schedule(ST, "ahead", T0 + 50, j2, sid);
    store_fire_run_t fr = {T0 + 50, T0 + 60, RUN_SCHEDULED, NULL};
    store_fire_t it = {sid, T0 + 50, T0 + 1050, &fr, 1, {0}, 0};
    assert_int_equal(store_fire(ST, &it, 1, T0), 0);
    assert_int_equal(next_claimable(ST), T0 + 60);
    /* A paused job's runs are held. */
    assert_int_equal(store_job_set_state(ST, j2, JOB_PAUSED, NULL, T0), 0);
    assert_int_equal(next_claimable(ST), T0 + 100);
    assert_int_equal(store_job_set_state(ST, j2, JOB_ACTIVE, NULL, T0), 0);
    assert_int_equal(next_claimable(ST), T0 + 60);
    /* run_now on create makes a pending run at once. */
    char j3[SKED_ID_LEN];
    new_job(ST, "now", 0, NULL, true, T0 + 10, j3);
    assert_int_equal(next_claimable(ST), T0 + 10);
    char r3[SKED_ID_LEN];
    only_run(ST, j3, r3);
    assert_int_equal(run_state(ST, r3), RUN_PENDING);
}

/* ---- claims ------------------------------------------------------------------- */

static void test_claim_basics(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], rid[SKED_ID_LEN], rid2[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "basic");
    j.timeout_ms = 90000;
    assert_int_equal(store_job_create(ST, &j, NULL, 0, false, NULL, NULL, T0), 0);
    memcpy(jid, j.id, SKED_ID_LEN);
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0, rid), 0);
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0 + 1, rid2), 0);

    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0 + 5, &n);
    assert_int_equal(n, 1);
    assert_string_equal(cl[0].run.id, rid); /* older first at equal priority */
    assert_int_equal(cl[0].run.state, RUN_RUNNING);
    assert_int_equal(cl[0].run.attempt, 1);
    assert_true(cl[0].run.fence > 0);
    assert_int_equal(cl[0].run.lease_expires_ms, T0 + 5 + LEASE_MS);
    assert_int_equal(cl[0].run.started_ms, T0 + 5);
    assert_string_equal(cl[0].run.worker_id, wid);
    assert_string_equal(cl[0].spec_json, j.spec_json);
    assert_string_equal(cl[0].job_name, "basic");
    assert_int_equal(cl[0].timeout_ms, 90000);
    int64_t fence1 = cl[0].run.fence;
    free_claimed(cl, n);

    cl = claim(ST, wid, 5, T0 + 6, &n);
    assert_int_equal(n, 1);
    assert_string_equal(cl[0].run.id, rid2);
    assert_true(cl[0].run.fence > 0 && cl[0].run.fence != fence1); /* a fresh fence */
    free_claimed(cl, n);
    cl = claim(ST, wid, 5, T0 + 7, &n);
    assert_int_equal(n, 0);
    free(cl);

    store_attempt_t *att;
    size_t na;
    store_run_t r;
    assert_int_equal(store_run_get(ST, rid, &r, &att, &na), 0);
    assert_int_equal(na, 1);
    assert_int_equal(att[0].n, 1);
    assert_string_equal(att[0].worker_id, wid);
    assert_int_equal(att[0].fence, fence1);
    assert_int_equal(att[0].started_ms, T0 + 5);
    assert_int_equal(att[0].finished_ms, -1);
    store_attempt_clear(&att[0]);
    free(att);
    store_run_clear(&r);

    /* The claim refreshed the worker's heartbeat; unknown workers get none. */
    store_worker_t w;
    assert_int_equal(store_worker_get(ST, wid, &w), 0);
    assert_int_equal(w.heartbeat_ms, T0 + 7);
    assert_int_equal(w.running, 2);
    store_worker_clear(&w);
    store_claimed_t *none = NULL;
    assert_int_equal(
        store_claim(ST, "wrk_00000000000000000000000000", NULL, 1, LEASE_MS, T0, &none, &n),
        SKED_ENOTFOUND);
    assert_int_equal(n, 0);
    assert_null(none);
    store_job_clear(&j);
}

static void test_claim_not_before(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], sid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    job_with_schedule(ST, "future", T0 + 1000, jid, sid);
    store_fire_run_t fr = {T0 + 1000, T0 + 1000, RUN_SCHEDULED, NULL};
    store_fire_t it = {sid, T0 + 1000, T0 + 2000, &fr, 1, {0}, 0};
    assert_int_equal(store_fire(ST, &it, 1, T0), 0);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 4, T0 + 999, &n);
    assert_int_equal(n, 0); /* not before its time */
    free(cl);
    cl = claim(ST, wid, 4, T0 + 1000, &n);
    assert_int_equal(n, 1); /* scheduled runs are claimable once due */
    assert_int_equal(cl[0].run.fire_ms, T0 + 1000);
    free_claimed(cl, n);
}

/* Materialises sid's run due at due_ms. */
static void fire_one(store_t *st, const char *sid, int64_t due_ms)
{
    store_fire_run_t fr = {due_ms, due_ms, RUN_SCHEDULED, NULL};
    store_fire_t it = {sid, due_ms, due_ms + 1000, &fr, 1, {0}, 0};
    assert_int_equal(store_fire(st, &it, 1, due_ms - 1000), 0);
}

static void test_claim_ahead(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], sid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    job_with_schedule(ST, "soon", T0 + 1000, jid, sid);
    fire_one(ST, sid, T0 + 1000);
    store_claimed_t *v = NULL;
    size_t n = 9;
    assert_int_equal(
        store_claim_ahead(ST, wid, NULL, 4, LEASE_MS, STORE_AHEAD_MAX_MS + 1, T0, &v, &n),
        SKED_EINVAL);
    assert_int_equal(n, 0);
    /* Due after the window: left. */
    assert_int_equal(store_claim_ahead(ST, wid, NULL, 4, LEASE_MS, 50, T0 + 949, &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);
    /* Due within it: leased now, started (run and attempt) at its time. */
    assert_int_equal(store_claim_ahead(ST, wid, NULL, 4, LEASE_MS, 50, T0 + 950, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].run.not_before_ms, T0 + 1000);
    assert_int_equal(v[0].run.started_ms, T0 + 1000);
    assert_int_equal(v[0].run.lease_expires_ms, T0 + 950 + LEASE_MS);
    store_run_t run;
    store_attempt_t *at = NULL;
    size_t nat = 0;
    assert_int_equal(store_run_get(ST, v[0].run.id, &run, &at, &nat), 0);
    assert_int_equal(run.state, RUN_RUNNING);
    assert_int_equal(run.started_ms, T0 + 1000);
    assert_int_equal(nat, 1);
    assert_int_equal(at[0].started_ms, T0 + 1000);
    store_attempt_clear(&at[0]);
    free(at);
    store_run_clear(&run);
    free_claimed(v, n);

    /* A run of a job with another running is not taken ahead, nor judged
     * by the job's overlap policy before its time: it waits, and is
     * judged when due. */
    char fj[SKED_ID_LEN], fs[SKED_ID_LEN];
    job_with_schedule_overlap(ST, "forbid", T0 + 2000, OVERLAP_FORBID, fj, fs);
    fire_one(ST, fs, T0 + 2000);
    v = claim(ST, wid, 4, T0 + 2000, &n);
    assert_int_equal(n, 1);
    char first[SKED_ID_LEN];
    memcpy(first, v[0].run.id, SKED_ID_LEN);
    free_claimed(v, n);
    fire_one(ST, fs, T0 + 3000);
    assert_int_equal(store_claim_ahead(ST, wid, NULL, 4, LEASE_MS, 1000, T0 + 2500, &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);
    store_run_filter_t rf = {
        .since_ms = INT64_MIN, .until_ms = INT64_MAX, .limit = 10, .job_id = fj};
    store_run_t *runs = NULL;
    size_t nr = 0;
    char *next = NULL, second[SKED_ID_LEN] = "";
    assert_int_equal(store_run_list_in(ST, &rf, NULL, &runs, &nr, &next), 0);
    assert_int_equal(nr, 2);
    for (size_t i = 0; i < nr; i++) {
        if (strcmp(runs[i].id, first)) {
            assert_int_equal(runs[i].state, RUN_SCHEDULED);
            memcpy(second, runs[i].id, SKED_ID_LEN);
        }
        store_run_clear(&runs[i]);
    }
    free(runs);
    free(next);
    /* Due, with the first still running: skipped by the policy, then. */
    assert_int_equal(store_claim_ahead(ST, wid, NULL, 4, LEASE_MS, 1000, T0 + 3000, &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);
    assert_int_equal(run_state(ST, second), RUN_SKIPPED);
}

static void test_claim_priority_aging(void **state)
{
    char wid[SKED_ID_LEN], lo[SKED_ID_LEN], mid[SKED_ID_LEN], hi[SKED_ID_LEN], top[SKED_ID_LEN];
    char r_lo[SKED_ID_LEN], r_mid[SKED_ID_LEN], r_hi[SKED_ID_LEN], r_top[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    new_job(ST, "lo", 0, NULL, false, T0, lo);
    new_job(ST, "mid", 50, NULL, false, T0, mid);
    new_job(ST, "hi", 60, NULL, false, T0, hi);
    new_job(ST, "top", 200, NULL, false, T0, top);
    int64_t now = T0 + 1000 * MIN_MS;
    /* lo has waited 55 minutes: 0 + 55 beats mid's 50 (fresh) but not hi's 60. */
    assert_int_equal(store_run_trigger(ST, lo, NULL, now - 55 * MIN_MS, r_lo), 0);
    assert_int_equal(store_run_trigger(ST, mid, NULL, now, r_mid), 0);
    assert_int_equal(store_run_trigger(ST, hi, NULL, now, r_hi), 0);
    /* Aging is capped at +100: a priority-0 run waiting 1000 minutes still
     * loses to a fresh priority-200 run. */
    char r_old[SKED_ID_LEN];
    char old[SKED_ID_LEN];
    new_job(ST, "old", 0, NULL, false, T0, old);
    assert_int_equal(store_run_trigger(ST, old, NULL, T0, r_old), 0);
    assert_int_equal(store_run_trigger(ST, top, NULL, now, r_top), 0);

    const char *want[] = {r_top, r_old, r_hi, r_lo, r_mid};
    for (size_t i = 0; i < 5; i++) {
        size_t n;
        store_claimed_t *cl = claim(ST, wid, 1, now, &n);
        assert_int_equal(n, 1);
        if (strcmp(cl[0].run.id, want[i]) != 0) fail_msg("claim %zu: wrong run", i);
        free_claimed(cl, n);
    }
    /* A batch returns the same order. */
    char r2[5][SKED_ID_LEN];
    const char *jobs[] = {lo, mid, hi, top, old};
    for (int i = 0; i < 5; i++)
        assert_int_equal(store_run_trigger(ST, jobs[i], NULL, now, r2[i]), 0);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 10, now, &n);
    assert_int_equal(n, 5);
    assert_string_equal(cl[0].run.id, r2[3]); /* top 200 */
    assert_string_equal(cl[1].run.id, r2[2]); /* hi 60 */
    assert_string_equal(cl[2].run.id, r2[1]); /* mid 50 */
    free_claimed(cl, n);
}

static void test_claim_backlog_bounded(void **state)
{
    /* Many priority levels and a deep backlog: the best runs still come
     * first, including an old low-priority run lifted by aging. */
    char wid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    int64_t now = T0 + 500 * MIN_MS;
    char best[SKED_ID_LEN] = "";
    for (int p = 0; p < 40; p++) {
        char jid[SKED_ID_LEN], name[32];
        snprintf(name, sizeof name, "p%d", p);
        new_job(ST, name, p * 10, NULL, false, T0, jid);
        for (int k = 0; k < 20; k++) {
            char rid[SKED_ID_LEN];
            assert_int_equal(store_run_trigger(ST, jid, NULL, now - k, rid), 0);
        }
    }
    char aged_job[SKED_ID_LEN];
    new_job(ST, "aged", 300, NULL, false, T0, aged_job);
    /* 300 + 100 (capped aging) beats the fresh 390s. */
    assert_int_equal(store_run_trigger(ST, aged_job, NULL, T0, best), 0);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 3, now, &n);
    assert_int_equal(n, 3);
    assert_string_equal(cl[0].run.id, best);
    assert_int_equal(cl[1].run.priority, 390);
    assert_int_equal(cl[2].run.priority, 390);
    assert_true(cl[1].run.fire_ms <= cl[2].run.fire_ms);
    free_claimed(cl, n);
}

static void test_claim_queues_constraints(void **state)
{
    char wid[SKED_ID_LEN], a[SKED_ID_LEN], b[SKED_ID_LEN], c[SKED_ID_LEN], gpu[SKED_ID_LEN];
    char ssd[SKED_ID_LEN], rid[SKED_ID_LEN];
    new_worker(ST, "w", "a,b", "disk=ssd,zone=x", T0, wid);
    new_job(ST, "in-a", 0, "a", true, T0, a);
    new_job(ST, "in-b", 0, "b", true, T0, b);
    new_job(ST, "in-c", 0, "c", true, T0, c);
    store_job_t j;
    mkjob(&j, "needs-gpu");
    free(j.constraints);
    j.constraints = xstrdup("gpu=1");
    free(j.queue);
    j.queue = xstrdup("a");
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    memcpy(gpu, j.id, SKED_ID_LEN);
    store_job_clear(&j);
    mkjob(&j, "needs-ssd");
    free(j.constraints);
    j.constraints = xstrdup("disk=ssd,zone=x");
    free(j.queue);
    j.queue = xstrdup("b");
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    memcpy(ssd, j.id, SKED_ID_LEN);
    store_job_clear(&j);

    size_t n;
    store_claimed_t *cl = claim(ST, wid, 10, T0, &n);
    assert_int_equal(n, 3);
    free_claimed(cl, n);
    only_run(ST, c, rid);
    assert_int_equal(run_state(ST, rid), RUN_PENDING); /* not its queue */
    only_run(ST, gpu, rid);
    assert_int_equal(run_state(ST, rid), RUN_PENDING); /* labels do not satisfy */
    only_run(ST, ssd, rid);
    assert_int_equal(run_state(ST, rid), RUN_RUNNING);

    char wid2[SKED_ID_LEN];
    new_worker(ST, "gpu-box", "a", "gpu=1", T0, wid2);
    cl = claim(ST, wid2, 10, T0, &n);
    assert_int_equal(n, 1);
    assert_string_equal(cl[0].run.job_id, gpu);
    free_claimed(cl, n);
}

static void test_claim_max_concurrency(void **state)
{
    char wid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "limited");
    j.max_concurrency = 2;
    assert_int_equal(store_job_create(ST, &j, NULL, 0, false, NULL, NULL, T0), 0);
    for (int i = 0; i < 5; i++) {
        char rid[SKED_ID_LEN];
        assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + i, rid), 0);
    }
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 10, T0 + 10, &n);
    assert_int_equal(n, 2);
    char done_id[SKED_ID_LEN];
    memcpy(done_id, cl[0].run.id, SKED_ID_LEN);
    assert_int_equal(store_complete(ST, done_id, 1, cl[0].run.fence, NULL, &RES_OK, T0 + 11), 0);
    free_claimed(cl, n);
    cl = claim(ST, wid, 10, T0 + 12, &n);
    assert_int_equal(n, 1);
    free_claimed(cl, n);
    assert_int_equal(count_runs(ST, j.id, "running"), 2);
    assert_int_equal(count_runs(ST, j.id, "pending"), 2);
    store_job_clear(&j);
}

static void test_claim_overlap(void **state)
{
    char wid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t f, r;
    mkjob(&f, "forbid");
    f.overlap = OVERLAP_FORBID;
    assert_int_equal(store_job_create(ST, &f, NULL, 0, true, NULL, NULL, T0), 0);
    mkjob(&r, "replace");
    r.overlap = OVERLAP_REPLACE;
    assert_int_equal(store_job_create(ST, &r, NULL, 0, true, NULL, NULL, T0), 0);
    size_t n;
    store_claimed_t *first = claim(ST, wid, 10, T0, &n);
    assert_int_equal(n, 2);

    /* Forbid: a due run while another runs is skipped with a reason. */
    char fr[SKED_ID_LEN], rr[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, f.id, NULL, T0 + 1, fr), 0);
    assert_int_equal(store_run_trigger(ST, r.id, NULL, T0 + 1, rr), 0);
    store_claimed_t *cl = claim(ST, wid, 10, T0 + 2, &n);
    assert_int_equal(n, 0);
    free(cl);
    store_run_t run = get_run(ST, fr);
    assert_int_equal(run.state, RUN_SKIPPED);
    assert_string_equal(run.reason, "overlap");
    assert_int_equal(run.finished_ms, T0 + 2);
    store_run_clear(&run);

    /* Replace: the running one is asked to cancel, the new one waits. */
    assert_int_equal(run_state(ST, rr), RUN_PENDING);
    store_claimed_t *old = NULL;
    for (int i = 0; i < 2; i++)
        if (strcmp(first[i].run.job_id, r.id) == 0) old = &first[i];
    assert_non_null(old);
    run = get_run(ST, old->run.id);
    assert_true(run.cancel_requested);
    store_run_clear(&run);
    store_held_t h = {old->run.id, old->run.fence, true, true, NULL};
    bool draining = true;
    assert_int_equal(store_heartbeat(ST, wid, NULL, &h, 1, LEASE_MS, T0 + 3, &draining), 0);
    assert_false(h.keep);
    assert_false(draining);
    store_result_t canceled = {ATTEMPT_CANCELED, -1, 15, NULL, NULL, NULL};
    assert_int_equal(store_complete(ST, old->run.id, 1, old->run.fence, NULL, &canceled, T0 + 4),
                     0);
    assert_int_equal(run_state(ST, old->run.id), RUN_CANCELED);
    cl = claim(ST, wid, 10, T0 + 5, &n);
    assert_int_equal(n, 1);
    assert_string_equal(cl[0].run.id, rr);
    free_claimed(cl, n);
    free_claimed(first, 2);
    store_job_clear(&f);
    store_job_clear(&r);
}

static void test_claim_paused_and_draining(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], rid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    new_job(ST, "held", 0, NULL, true, T0, jid);
    assert_int_equal(store_job_set_state(ST, jid, JOB_PAUSED, NULL, T0 + 1), 0);
    assert_int_equal(store_job_set_state(ST, jid, JOB_PAUSED, NULL, T0 + 1), 0); /* idempotent */
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 10, T0 + 2, &n);
    assert_int_equal(n, 0);
    free(cl);
    /* A run triggered while paused is held as well. */
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0 + 3, rid), 0);
    assert_int_equal(next_claimable(ST), -1);
    cl = claim(ST, wid, 10, T0 + 4, &n);
    assert_int_equal(n, 0);
    free(cl);
    store_job_t g;
    assert_int_equal(store_job_get(ST, jid, &g, NULL, NULL), 0);
    assert_int_equal(g.state, JOB_PAUSED);
    store_job_clear(&g);

    assert_int_equal(store_worker_drain(ST, wid, NULL, NULL, T0 + 5), 0);
    assert_int_equal(store_job_set_state(ST, jid, JOB_ACTIVE, NULL, T0 + 6), 0);
    cl = claim(ST, wid, 10, T0 + 7, &n);
    assert_int_equal(n, 0); /* a draining worker gets nothing */
    free(cl);
    char w2[SKED_ID_LEN];
    new_worker(ST, "w2", "default", "", T0, w2);
    cl = claim(ST, w2, 10, T0 + 8, &n);
    assert_int_equal(n, 2);
    free_claimed(cl, n);
}

struct claim_thread {
    store_t *st;
    char wid[SKED_ID_LEN];
    char (*got)[SKED_ID_LEN];
    size_t ngot;
};

static void *claim_main(void *arg)
{
    struct claim_thread *t = arg;
    for (;;) {
        store_claimed_t *v;
        size_t n;
        if (store_claim(t->st, t->wid, NULL, 7, LEASE_MS, T0 + 1000, &v, &n) != 0) return NULL;
        for (size_t i = 0; i < n; i++) {
            memcpy(t->got[t->ngot++], v[i].run.id, SKED_ID_LEN);
            store_claimed_clear(&v[i]);
        }
        free(v);
        if (n == 0) return NULL;
    }
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_claim_concurrent(void **state)
{
    enum { RUNS = 500, THREADS = 4 };
    char jid[SKED_ID_LEN];
    new_job(ST, "many", 0, NULL, false, T0, jid);
    for (int i = 0; i < RUNS; i++) {
        char rid[SKED_ID_LEN];
        assert_int_equal(store_run_trigger(ST, jid, NULL, T0 + i, rid), 0);
    }
    struct claim_thread t[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        t[i].st = ST;
        new_worker(ST, name, "default", "", T0, t[i].wid);
        t[i].got = xcalloc(RUNS, SKED_ID_LEN);
        t[i].ngot = 0;
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, claim_main, &t[i]), 0);
    char(*all)[SKED_ID_LEN] = xcalloc(RUNS * THREADS, SKED_ID_LEN);
    size_t total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        memcpy(all[total], t[i].got, t[i].ngot * SKED_ID_LEN);
        total += t[i].ngot;
        free(t[i].got);
    }
    assert_int_equal(total, RUNS);
    qsort(all, total, SKED_ID_LEN, cmp_id);
    for (size_t i = 1; i < total; i++)
        assert_string_not_equal(all[i - 1], all[i]);
    free(all);
    assert_int_equal(count_runs(ST, jid, "running"), RUNS);
}

/* ---- the worker protocol ---------------------------------------------------------- */

static void test_heartbeat(void **state)
{
    char wid[SKED_ID_LEN], other[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    new_worker(ST, "other", "default", "", T0, other);
    new_job(ST, "hb", 0, NULL, true, T0, jid);
    char r2[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0, r2), 0);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 2, T0, &n);
    assert_int_equal(n, 2);

    store_held_t h[4] = {
        {cl[0].run.id, cl[0].run.fence, true, false, NULL},
        {cl[1].run.id, cl[1].run.fence + 1000, true, true, NULL}, /* foreign fence */
        {"run_00000000000000000000000000", 1, true, true, NULL},  /* unknown run */
        {cl[1].run.id, cl[1].run.fence, true, false, NULL}};
    bool draining = true;
    assert_int_equal(store_heartbeat(ST, wid, NULL, h, 4, LEASE_MS, T0 + 10000, &draining), 0);
    assert_true(h[0].keep);
    assert_false(h[1].keep);
    assert_false(h[2].keep);
    assert_true(h[3].keep);
    assert_false(draining);
    store_run_t r = get_run(ST, cl[0].run.id);
    assert_int_equal(r.lease_expires_ms, T0 + 10000 + LEASE_MS);
    store_run_clear(&r);
    store_worker_t w;
    assert_int_equal(store_worker_get(ST, wid, &w), 0);
    assert_int_equal(w.heartbeat_ms, T0 + 10000);
    store_worker_clear(&w);

    /* Another worker cannot keep (or renew) runs it does not hold. */
    store_held_t theirs = {cl[0].run.id, cl[0].run.fence, true, true, NULL};
    assert_int_equal(store_heartbeat(ST, other, NULL, &theirs, 1, LEASE_MS, T0 + 20000, NULL), 0);
    assert_false(theirs.keep);
    r = get_run(ST, cl[0].run.id);
    assert_int_equal(r.lease_expires_ms, T0 + 10000 + LEASE_MS);
    store_run_clear(&r);

    /* A canceled run is not kept; draining is reported. */
    assert_int_equal(store_run_cancel(ST, cl[0].run.id, "user asked", NULL, T0 + 11000), 0);
    assert_int_equal(store_worker_drain(ST, wid, NULL, NULL, T0 + 11000), 0);
    h[0].keep = true;
    assert_int_equal(store_heartbeat(ST, wid, NULL, h, 1, LEASE_MS, T0 + 12000, &draining), 0);
    assert_false(h[0].keep);
    assert_true(draining);

    assert_int_equal(store_heartbeat(ST, "wrk_00000000000000000000000000", NULL, NULL, 0, LEASE_MS,
                                     T0, &draining),
                     SKED_ENOTFOUND);
    free_claimed(cl, n);
}

static void test_complete_success_idempotent_stale(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    new_job(ST, "ok", 0, NULL, true, T0, jid);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    assert_int_equal(n, 1);
    const char *rid = cl[0].run.id;
    int64_t fence = cl[0].run.fence;

    assert_int_equal(store_complete(ST, rid, 1, fence + 1, NULL, &RES_OK, T0 + 5), SKED_ESTALE);
    assert_int_equal(store_complete(ST, rid, 2, fence, NULL, &RES_OK, T0 + 5), SKED_ESTALE);
    assert_int_equal(store_complete(ST, rid, 1, fence, NULL, &RES_OK, T0 + 5), 0);
    store_run_t r = get_run(ST, rid);
    assert_int_equal(r.state, RUN_SUCCEEDED);
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.finished_ms, T0 + 5);
    assert_int_equal(r.lease_expires_ms, -1);
    store_run_clear(&r);
    /* A repeat (lost answer) is 0 and changes nothing, even with another body. */
    assert_int_equal(store_complete(ST, rid, 1, fence, NULL, &RES_FAIL, T0 + 9), 0);
    r = get_run(ST, rid);
    assert_int_equal(r.state, RUN_SUCCEEDED);
    assert_int_equal(r.finished_ms, T0 + 5);
    store_run_clear(&r);
    store_attempt_t *att;
    size_t na;
    assert_int_equal(store_run_get(ST, rid, &r, &att, &na), 0);
    assert_int_equal(na, 1);
    assert_int_equal(att[0].outcome, ATTEMPT_SUCCEEDED);
    assert_int_equal(att[0].finished_ms, T0 + 5);
    assert_int_equal(att[0].exit_code, 0);
    store_attempt_clear(&att[0]);
    free(att);
    store_run_clear(&r);
    assert_int_equal(store_complete(ST, "run_00000000000000000000000000", 1, 1, NULL, &RES_OK, T0),
                     SKED_ENOTFOUND);
    free_claimed(cl, n);
}

static void test_complete_retry_backoff(void **state)
{
    char wid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "flaky");
    j.retry = (retry_policy_t){3, 10000, 15000, 2.0, true};
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    int64_t now = T0;
    int64_t max_delay[] = {10000, 15000}; /* 10s, then 20s capped at 15s */
    int64_t last_fence = 0;
    char rid[SKED_ID_LEN];
    for (int attempt = 1; attempt <= 3; attempt++) {
        size_t n;
        store_claimed_t *cl = claim(ST, wid, 1, now, &n);
        assert_int_equal(n, 1);
        assert_int_equal(cl[0].run.attempt, attempt);
        assert_true(cl[0].run.fence > 0);
        assert_true(cl[0].run.fence != last_fence);
        last_fence = cl[0].run.fence;
        memcpy(rid, cl[0].run.id, SKED_ID_LEN);
        assert_int_equal(store_complete(ST, rid, attempt, last_fence, NULL, &RES_FAIL, now + 100),
                         0);
        store_run_t r = get_run(ST, rid);
        if (attempt < 3) {
            assert_int_equal(r.state, RUN_SCHEDULED);
            assert_true(r.not_before_ms >= now + 100);
            assert_true(r.not_before_ms <= now + 100 + max_delay[attempt - 1]);
            assert_int_equal(r.finished_ms, -1);
            assert_int_equal(r.exit_code, 3);
            /* Not claimable before its backoff ends (unless the draw was 0). */
            if (r.not_before_ms > now + 100) {
                size_t m;
                store_claimed_t *early = claim(ST, wid, 1, r.not_before_ms - 1, &m);
                assert_int_equal(m, 0);
                free(early);
            }
            now = r.not_before_ms;
        } else {
            assert_int_equal(r.state, RUN_FAILED);
            assert_string_equal(r.reason, "exit status 3");
            assert_int_equal(r.finished_ms, now + 100);
        }
        store_run_clear(&r);
        /* The stale fence of the previous attempt is refused from now on. */
        free_claimed(cl, n);
    }
    store_attempt_t *att;
    size_t na;
    store_run_t r;
    assert_int_equal(store_run_get(ST, rid, &r, &att, &na), 0);
    assert_int_equal(na, 3);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(att[i].n, (int)i + 1);
        assert_int_equal(att[i].outcome, ATTEMPT_FAILED);
        assert_int_equal(att[i].exit_code, 3);
        assert_string_equal(att[i].reason, "exit status 3");
        store_attempt_clear(&att[i]);
    }
    free(att);
    store_run_clear(&r);
    store_job_clear(&j);
}

static void test_complete_exact_backoff_and_timeout(void **state)
{
    /* Without jitter the delays are exact: initial, then x multiplier. */
    char wid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "exact");
    j.retry = (retry_policy_t){3, 10000, 600000, 3.0, false};
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    store_result_t to = {ATTEMPT_TIMEOUT, -1, 9, NULL, NULL, NULL};
    assert_int_equal(store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &to, T0 + 1), 0);
    store_run_t r = get_run(ST, cl[0].run.id);
    assert_int_equal(r.state, RUN_SCHEDULED);
    assert_int_equal(r.not_before_ms, T0 + 1 + 10000);
    assert_string_equal(r.reason, "timeout");
    assert_int_equal(r.signal, 9);
    store_run_clear(&r);
    /* The old fence is stale for good now, even before the next claim. */
    free_claimed(cl, n);
    cl = claim(ST, wid, 1, T0 + 10001, &n);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].run.attempt, 2);
    assert_int_equal(
        store_complete(ST, cl[0].run.id, 2, cl[0].run.fence, NULL, &RES_FAIL, T0 + 20000), 0);
    r = get_run(ST, cl[0].run.id);
    assert_int_equal(r.not_before_ms, T0 + 20000 + 30000);
    assert_int_equal(r.started_ms, T0); /* first start is kept */
    store_run_clear(&r);
    free_claimed(cl, n);
    store_job_clear(&j);
}

static void test_complete_cancel_requested(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "cancel-me");
    j.retry.max_attempts = 5;
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    memcpy(jid, j.id, SKED_ID_LEN);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    assert_int_equal(store_run_cancel(ST, cl[0].run.id, "user asked", NULL, T0 + 1), 0);
    /* Even a failure with retries left ends canceled once cancel was asked. */
    store_result_t killed = {ATTEMPT_FAILED, -1, 15, "signal 15", NULL, NULL};
    assert_int_equal(store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &killed, T0 + 2),
                     0);
    store_run_t r = get_run(ST, cl[0].run.id);
    assert_int_equal(r.state, RUN_CANCELED);
    assert_string_equal(r.reason, "user asked");
    assert_int_equal(r.finished_ms, T0 + 2);
    store_run_clear(&r);
    free_claimed(cl, n);
    store_job_clear(&j);
}

static void test_cancel(void **state)
{
    char jid[SKED_ID_LEN], rid[SKED_ID_LEN];
    new_job(ST, "c", 0, NULL, true, T0, jid);
    only_run(ST, jid, rid);
    assert_int_equal(store_run_cancel(ST, rid, NULL, NULL, T0 + 1), 0);
    store_run_t r = get_run(ST, rid);
    assert_int_equal(r.state, RUN_CANCELED);
    assert_int_equal(r.finished_ms, T0 + 1);
    assert_non_null(r.reason);
    store_run_clear(&r);
    assert_int_equal(store_run_cancel(ST, rid, NULL, NULL, T0 + 2), SKED_ECONFLICT);
    assert_int_equal(store_run_cancel(ST, "run_00000000000000000000000000", NULL, NULL, T0),
                     SKED_ENOTFOUND);
    assert_int_equal(next_claimable(ST), -1);
}

static void test_job_delete_cancels_runs(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], pending[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    new_job(ST, "doomed", 0, NULL, true, T0, jid);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    assert_int_equal(n, 1);
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0 + 1, pending), 0);
    assert_int_equal(store_job_set_state(ST, jid, JOB_DELETED, NULL, T0 + 2), 0);
    store_run_t r = get_run(ST, pending);
    assert_int_equal(r.state, RUN_CANCELED);
    assert_int_equal(r.finished_ms, T0 + 2);
    store_run_clear(&r);
    r = get_run(ST, cl[0].run.id);
    assert_int_equal(r.state, RUN_RUNNING);
    assert_true(r.cancel_requested);
    store_run_clear(&r);
    store_held_t h = {cl[0].run.id, cl[0].run.fence, true, true, NULL};
    assert_int_equal(store_heartbeat(ST, wid, NULL, &h, 1, LEASE_MS, T0 + 3, NULL), 0);
    assert_false(h.keep);
    assert_int_equal(store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &RES_OK, T0 + 4),
                     0);
    assert_int_equal(run_state(ST, cl[0].run.id), RUN_CANCELED);
    free_claimed(cl, n);
}

static void test_pause_resume_schedules(void **state)
{
    char jid[SKED_ID_LEN], sid[SKED_ID_LEN];
    job_with_schedule(ST, "sched", T0, jid, sid);
    assert_int_equal(store_job_set_state(ST, jid, JOB_PAUSED, NULL, T0 - 10), 0);
    store_due_t *due;
    size_t n;
    assert_int_equal(store_due_schedules(ST, T0 + 60000, 10, &due, &n), 0);
    assert_int_equal(n, 0);
    free(due);
    assert_int_equal(next_fire(ST), -1);
    /* A scheduler that read the schedule before the pause loses its CAS. */
    store_fire_run_t fr = {T0, T0, RUN_SCHEDULED, NULL};
    store_fire_t it = {sid, T0, T0 + 1000, &fr, 1, {0}, 0};
    assert_int_equal(store_fire(ST, &it, 1, T0), 0);
    assert_int_equal(it.applied, 0);
    assert_int_equal(count_runs(ST, jid, NULL), 0);
    /* Resume leaves next_fire as it was: the misfire policy decides. */
    assert_int_equal(store_job_set_state(ST, jid, JOB_ACTIVE, NULL, T0 + 60000), 0);
    assert_int_equal(next_fire(ST), T0);
    assert_int_equal(store_due_schedules(ST, T0 + 60000, 10, &due, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(due[0].sched.next_fire_ms, T0);
    store_schedule_clear(&due[0].sched);
    free(due);
    store_job_t g;
    assert_int_equal(store_job_get(ST, jid, &g, NULL, NULL), 0);
    assert_int_equal(g.version, 3); /* pause and resume are changes */
    store_job_clear(&g);
}

/* ---- the reaper -------------------------------------------------------------------- */

static void test_reap_lease_expiry(void **state)
{
    char wid[SKED_ID_LEN], w2[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "retrying");
    j.retry = (retry_policy_t){2, 1000, 1000, 2.0, false};
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    assert_int_equal(n, 1);
    const int64_t grace = 5000, hb = 60000;
    /* Reported started: from here on the attempt counts. */
    confirm(ST, wid, &cl[0], T0 + 1);
    int64_t expires = T0 + 1 + LEASE_MS;

    /* Within lease + grace nothing happens. */
    assert_int_equal(store_reap(ST, grace, hb, expires + grace), 0);
    assert_int_equal(run_state(ST, cl[0].run.id), RUN_RUNNING);
    /* Past it: the attempt is lost and the run retried. */
    assert_int_equal(store_reap(ST, grace, hb, expires + grace + 1), 1);
    store_attempt_t *att;
    size_t na;
    store_run_t r;
    assert_int_equal(store_run_get(ST, cl[0].run.id, &r, &att, &na), 0);
    assert_int_equal(r.state, RUN_SCHEDULED);
    assert_int_equal(r.not_before_ms, expires + grace + 1 + 1000);
    assert_int_equal(r.lease_expires_ms, -1);
    assert_int_equal(na, 1);
    assert_int_equal(att[0].outcome, ATTEMPT_LOST);
    assert_int_equal(att[0].finished_ms, expires + grace + 1);
    store_attempt_clear(&att[0]);
    free(att);
    store_run_clear(&r);
    /* Reaping again changes nothing (safe on every server). */
    assert_int_equal(store_reap(ST, grace, hb, expires + grace + 2), 0);

    /* The cut-off worker can neither keep nor complete its attempt. */
    store_held_t h = {cl[0].run.id, cl[0].run.fence, true, true, NULL};
    assert_int_equal(store_heartbeat(ST, wid, NULL, &h, 1, LEASE_MS, expires + grace + 3, NULL), 0);
    assert_false(h.keep);
    assert_int_equal(
        store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &RES_OK, expires + grace + 4),
        SKED_ESTALE);
    assert_int_equal(store_log_append(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, 0, 1, "x", 1,
                                      expires + grace + 4),
                     SKED_ESTALE);

    /* The second (last) attempt is lost too: the run fails. */
    new_worker(ST, "w2", "default", "", T0, w2);
    int64_t now = expires + grace + 1 + 1000;
    store_claimed_t *cl2 = claim(ST, w2, 1, now, &n);
    assert_int_equal(n, 1);
    assert_int_equal(cl2[0].run.attempt, 2);
    confirm(ST, w2, &cl2[0], now);
    assert_int_equal(store_reap(ST, grace, INT64_C(1) << 50, now + LEASE_MS + grace + 1), 1);
    r = get_run(ST, cl2[0].run.id);
    assert_int_equal(r.state, RUN_FAILED);
    assert_non_null(r.reason);
    assert_int_equal(r.finished_ms, now + LEASE_MS + grace + 1);
    store_run_clear(&r);
    free_claimed(cl2, 1);
    free_claimed(cl, 1);
    store_job_clear(&j);
}

static void test_reap_cancel_and_workers(void **state)
{
    char wid[SKED_ID_LEN], live[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker(ST, "silent", "default", "", T0, wid);
    new_worker(ST, "live", "default", "", T0, live);
    store_job_t j;
    mkjob(&j, "c");
    j.retry.max_attempts = 5;
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    memcpy(jid, j.id, SKED_ID_LEN);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    assert_int_equal(store_run_cancel(ST, cl[0].run.id, NULL, NULL, T0 + 1), 0);
    assert_int_equal(store_heartbeat(ST, live, NULL, NULL, 0, LEASE_MS, T0 + 50000, NULL), 0);
    /* A lost attempt of a run asked to cancel ends canceled, not retried. */
    assert_int_equal(store_reap(ST, 0, 60000, T0 + 61000), 1);
    assert_int_equal(run_state(ST, cl[0].run.id), RUN_CANCELED);
    store_worker_t w;
    assert_int_equal(store_worker_get(ST, wid, &w), 0);
    assert_int_equal(w.state, WORKER_LOST);
    store_worker_clear(&w);
    assert_int_equal(store_worker_get(ST, live, &w), 0);
    assert_int_equal(w.state, WORKER_ACTIVE);
    store_worker_clear(&w);
    /* A lost worker that speaks again is active again. */
    assert_int_equal(store_heartbeat(ST, wid, NULL, NULL, 0, LEASE_MS, T0 + 62000, NULL), 0);
    assert_int_equal(store_worker_get(ST, wid, &w), 0);
    assert_int_equal(w.state, WORKER_ACTIVE);
    store_worker_clear(&w);
    free_claimed(cl, n);
    store_job_clear(&j);
}

/* ---- workers ------------------------------------------------------------------------ */

static void test_workers(void **state)
{
    char a[SKED_ID_LEN], b[SKED_ID_LEN], a2[SKED_ID_LEN], a3[SKED_ID_LEN];
    new_worker(ST, "alpha", "default,fast", "disk=ssd", T0, a);
    new_worker(ST, "beta", "", "", T0 + 1, b);
    store_worker_t w;
    assert_int_equal(store_worker_get(ST, a, &w), 0);
    assert_string_equal(w.name, "alpha");
    assert_string_equal(w.host, "localhost");
    assert_string_equal(w.queues, "default,fast");
    assert_string_equal(w.labels, "disk=ssd");
    assert_int_equal(w.slots, 4);
    assert_int_equal(w.state, WORKER_ACTIVE);
    assert_int_equal(w.registered_ms, T0);
    assert_int_equal(w.running, 0);
    store_worker_clear(&w);
    assert_int_equal(store_worker_get(ST, b, &w), 0);
    assert_string_equal(w.queues, "default"); /* no queues: the default one */
    store_worker_clear(&w);

    /* Same name while the first is active: a second worker. */
    new_worker(ST, "alpha", "default", "", T0 + 2, a2);
    assert_string_not_equal(a2, a);
    store_worker_t *v;
    size_t n;
    char *cursor = NULL, *next = NULL;
    assert_int_equal(store_worker_list(ST, NULL, 100, &v, &n, &next), 0);
    assert_int_equal(n, 3);
    assert_null(next);
    for (size_t i = 0; i < n; i++)
        store_worker_clear(&v[i]);
    free(v);
    /* A page at a time: each worker once, by name and then id (the two
     * alphas tell whether the id breaks the tie across a page boundary). */
    const char *want[3] = {strcmp(a, a2) < 0 ? a : a2, strcmp(a, a2) < 0 ? a2 : a, b};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(store_worker_list(ST, cursor, 1, &v, &n, &next), 0);
        assert_int_equal(n, 1);
        assert_string_equal(v[0].id, want[i]);
        store_worker_clear(&v[0]);
        free(v);
        free(cursor);
        cursor = next;
        if (i < 2)
            assert_non_null(cursor);
        else
            assert_null(cursor);
    }
    assert_int_equal(store_worker_list(ST, "not-an-id", 10, &v, &n, &next), SKED_EINVAL);
    assert_int_equal(store_worker_list(ST, NULL, 0, &v, &n, &next), SKED_EINVAL);

    assert_int_equal(store_worker_drain(ST, a, NULL, NULL, T0 + 3), 0);
    assert_int_equal(store_worker_get(ST, a, &w), 0);
    assert_int_equal(w.state, WORKER_DRAINING);
    store_worker_clear(&w);
    assert_int_equal(store_worker_deregister(ST, a, NULL, NULL, T0 + 4), 0);
    assert_int_equal(store_worker_get(ST, a, &w), 0);
    assert_int_equal(w.state, WORKER_GONE);
    store_worker_clear(&w);
    assert_int_equal(store_worker_list(ST, NULL, 100, &v, &n, &next), 0);
    assert_int_equal(n, 2); /* gone workers are not in the pool */
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(v[i].id, a);
    for (size_t i = 0; i < n; i++)
        store_worker_clear(&v[i]);
    free(v);
    /* A gone worker must re-register; its name's id is reused. */
    assert_int_equal(store_heartbeat(ST, a, NULL, NULL, 0, LEASE_MS, T0 + 5, NULL), SKED_ENOTFOUND);
    new_worker(ST, "alpha", "default", "", T0 + 6, a3);
    assert_string_equal(a3, a);
    assert_int_equal(store_worker_get(ST, a3, &w), 0);
    assert_int_equal(w.state, WORKER_ACTIVE);
    assert_int_equal(w.registered_ms, T0 + 6);
    store_worker_clear(&w);

    assert_int_equal(store_worker_drain(ST, "wrk_00000000000000000000000000", NULL, NULL, T0),
                     SKED_ENOTFOUND);
    assert_int_equal(store_worker_get(ST, "wrk_00000000000000000000000000", &w), SKED_ENOTFOUND);
}

/* ---- logs ------------------------------------------------------------------------------ */

/* A running run for log tests: OUT run id and fence. */
static void running_run(store_t *st, const char *name, char rid[SKED_ID_LEN], int64_t *fence)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], wname[64];
    snprintf(wname, sizeof wname, "w-%s", name);
    new_worker(st, wname, "default", "", T0, wid);
    new_job(st, name, 0, NULL, true, T0, jid);
    size_t n;
    store_claimed_t *cl = claim(st, wid, 1, T0, &n);
    assert_int_equal(n, 1);
    memcpy(rid, cl[0].run.id, SKED_ID_LEN);
    *fence = cl[0].run.fence;
    free_claimed(cl, n);
}

static void test_logs(void **state)
{
    char rid[SKED_ID_LEN];
    int64_t fence;
    running_run(ST, "logger", rid, &fence);
    assert_int_equal(store_log_append(ST, rid, 1, fence, NULL, 0, 1, "hello\n", 6, T0 + 1), 0);
    assert_int_equal(store_log_append(ST, rid, 1, fence, NULL, 1, 2, "err\0x", 5, T0 + 2), 0);
    assert_int_equal(store_log_append(ST, rid, 1, fence, NULL, 2, 1, "bye\n", 4, T0 + 3), 0);
    /* A resent chunk is ignored. */
    assert_int_equal(store_log_append(ST, rid, 1, fence, NULL, 1, 2, "DIFFERENT", 9, T0 + 4), 0);
    assert_int_equal(store_log_append(ST, rid, 1, fence + 1, NULL, 3, 1, "x", 1, T0), SKED_ESTALE);
    assert_int_equal(store_log_append(ST, rid, 2, fence, NULL, 3, 1, "x", 1, T0), SKED_ESTALE);
    assert_int_equal(
        store_log_append(ST, "run_00000000000000000000000000", 1, 1, NULL, 0, 1, "x", 1, T0),
        SKED_ENOTFOUND);

    store_log_chunk_t *v;
    size_t n;
    assert_int_equal(store_log_read(ST, rid, 0, 0, -1, 100, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].seq, 0);
    assert_int_equal(v[0].stream, 1);
    assert_int_equal(v[0].at_ms, T0 + 1);
    assert_int_equal(v[0].len, 6);
    assert_memory_equal(v[0].data, "hello\n", 6);
    assert_int_equal(v[1].len, 5);
    assert_memory_equal(v[1].data, "err\0x", 5); /* bytes, not strings */
    assert_int_equal(v[1].stream, 2);
    assert_int_equal(v[2].seq, 2);
    for (size_t i = 0; i < n; i++)
        store_log_chunk_clear(&v[i]);
    free(v);
    /* Resume after a position, with a limit. */
    assert_int_equal(store_log_read(ST, rid, 0, 1, 0, 1, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].seq, 1);
    store_log_chunk_clear(&v[0]);
    free(v);
    store_run_t r = get_run(ST, rid);
    assert_int_equal(r.log_bytes, 15);
    assert_false(r.log_truncated);
    store_run_clear(&r);
    /* Chunks may still arrive after completion (same fence). */
    assert_int_equal(store_complete(ST, rid, 1, fence, NULL, &RES_OK, T0 + 10), 0);
    assert_int_equal(store_log_append(ST, rid, 1, fence, NULL, 3, 1, "late", 4, T0 + 11), 0);
    assert_int_equal(store_log_read(ST, rid, 1, 1, 2, 100, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(v[0].data, "late", 4);
    store_log_chunk_clear(&v[0]);
    free(v);
    assert_int_equal(store_log_read(ST, rid, 2, 0, -1, 100, &v, &n), 0);
    assert_int_equal(n, 0); /* no attempt 2 */
    free(v);
}

static void test_logs_by_attempt(void **state)
{
    char wid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "twice");
    j.retry = (retry_policy_t){2, 0, 0, 1.0, false};
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    assert_int_equal(
        store_log_append(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, 0, 1, "a1", 2, T0), 0);
    assert_int_equal(store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &RES_FAIL, T0 + 1),
                     0);
    store_claimed_t *cl2 = claim(ST, wid, 1, T0 + 1, &n);
    assert_int_equal(n, 1);
    assert_int_equal(cl2[0].run.attempt, 2);
    assert_int_equal(
        store_log_append(ST, cl2[0].run.id, 2, cl2[0].run.fence, NULL, 0, 1, "a2", 2, T0 + 2), 0);
    /* The previous attempt's fence no longer writes. */
    assert_int_equal(
        store_log_append(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, 1, 1, "x", 1, T0 + 3),
        SKED_ESTALE);
    store_log_chunk_t *v;
    assert_int_equal(store_log_read(ST, cl[0].run.id, 0, 0, -1, 100, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].attempt, 1);
    assert_int_equal(v[1].attempt, 2);
    for (size_t i = 0; i < n; i++)
        store_log_chunk_clear(&v[i]);
    free(v);
    assert_int_equal(store_log_read(ST, cl[0].run.id, 2, 0, -1, 100, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(v[0].data, "a2", 2);
    store_log_chunk_clear(&v[0]);
    free(v);
    free_claimed(cl, 1);
    free_claimed(cl2, 1);
    store_job_clear(&j);
}

/* Reads every chunk of a run; counts stream-0 notes. */
static size_t read_all(store_t *st, const char *rid, int64_t *data_bytes, size_t *notes, char *note,
                       size_t notelen)
{
    store_log_chunk_t *v;
    size_t n;
    assert_int_equal(store_log_read(st, rid, 0, 0, -1, 10000, &v, &n), 0);
    *data_bytes = 0;
    *notes = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].stream == 0) {
            (*notes)++;
            snprintf(note, notelen, "%.*s", (int)v[i].len, v[i].data);
        } else {
            *data_bytes += (int64_t)v[i].len;
        }
        store_log_chunk_clear(&v[i]);
    }
    free(v);
    return n;
}

static void test_log_cap(void **state)
{
    char rid[SKED_ID_LEN];
    int64_t fence;
    store_set_log_cap(ST, 100);
    running_run(ST, "chatty", rid, &fence);
    char buf[60];
    memset(buf, 'x', sizeof buf);
    for (int i = 0; i < 5; i++)
        assert_int_equal(store_log_append(ST, rid, 1, fence, NULL, i, 1, buf, sizeof buf, T0 + i),
                         0);
    int64_t bytes;
    size_t notes;
    char note[128] = "";
    size_t n = read_all(ST, rid, &bytes, &notes, note, sizeof note);
    assert_int_equal(n, 3); /* 60 + the first 40 of the second + the note */
    assert_int_equal(bytes, 100);
    assert_int_equal(notes, 1);
    assert_string_equal(note, "log truncated at 100 bytes");
    store_run_t r = get_run(ST, rid);
    assert_int_equal(r.log_bytes, 100);
    assert_true(r.log_truncated);
    store_run_clear(&r);
    /* The note is last: a follower reading from the start sees it at the end. */
    store_log_chunk_t *v;
    assert_int_equal(store_log_read(ST, rid, 0, 0, -1, 100, &v, &n), 0);
    assert_int_equal(v[n - 1].stream, 0);
    for (size_t i = 0; i < n; i++)
        store_log_chunk_clear(&v[i]);
    free(v);
}

static void test_log_cap_default(void **state)
{
    char rid[SKED_ID_LEN];
    int64_t fence;
    running_run(ST, "firehose", rid, &fence);
    enum { CHUNK = 64 * 1024 };
    char *buf = xmalloc(CHUNK);
    memset(buf, 'y', CHUNK);
    int chunks = STORE_LOG_CAP_DEFAULT / CHUNK + 3;
    for (int i = 0; i < chunks; i++)
        assert_int_equal(store_log_append(ST, rid, 1, fence, NULL, i, 1, buf, CHUNK, T0 + i), 0);
    free(buf);
    int64_t bytes;
    size_t notes;
    char note[128] = "";
    read_all(ST, rid, &bytes, &notes, note, sizeof note);
    assert_int_equal(bytes, STORE_LOG_CAP_DEFAULT);
    assert_int_equal(notes, 1);
    char want[64];
    snprintf(want, sizeof want, "log truncated at %d bytes", STORE_LOG_CAP_DEFAULT);
    assert_string_equal(note, want);
}

/* ---- retention ---------------------------------------------------------------------------- */

static void test_prune(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], keep_pending[SKED_ID_LEN], recent[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    new_job(ST, "old", 0, NULL, false, T0, jid);
    enum { OLD = 600 }; /* more than one batch */
    for (int i = 0; i < OLD; i++) {
        char rid[SKED_ID_LEN];
        assert_int_equal(store_run_trigger(ST, jid, NULL, T0 + i, rid), 0);
        assert_int_equal(store_run_cancel(ST, rid, NULL, NULL, T0 + i), 0);
    }
    /* One old run with an attempt and logs. */
    char logged[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0, logged), 0);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    assert_int_equal(n, 1);
    assert_string_equal(cl[0].run.id, logged);
    assert_int_equal(store_log_append(ST, logged, 1, cl[0].run.fence, NULL, 0, 1, "old", 3, T0), 0);
    assert_int_equal(store_complete(ST, logged, 1, cl[0].run.fence, NULL, &RES_OK, T0 + 10), 0);
    free_claimed(cl, n);
    /* Kept: a pending run however old, and a recent finished one. */
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0, keep_pending), 0);
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0 + 100000, recent), 0);
    assert_int_equal(store_run_cancel(ST, recent, NULL, NULL, T0 + 100000), 0);

    assert_int_equal(store_prune(ST, T0 + 50000), OLD + 1);
    assert_int_equal(count_runs(ST, jid, NULL), 2);
    store_run_t r;
    assert_int_equal(store_run_get(ST, logged, &r, NULL, NULL), SKED_ENOTFOUND);
    store_log_chunk_t *v;
    assert_int_equal(store_log_read(ST, logged, 0, 0, -1, 10, &v, &n), SKED_ENOTFOUND);
    assert_int_equal(run_state(ST, keep_pending), RUN_PENDING);
    assert_int_equal(run_state(ST, recent), RUN_CANCELED);
    store_job_t g;
    assert_int_equal(store_job_get(ST, jid, &g, NULL, NULL), 0); /* jobs are kept */
    store_job_clear(&g);
    assert_int_equal(store_prune(ST, T0 + 50000), 0);
}

/* ---- events ------------------------------------------------------------------------ */

/* Every event after *after, as "type type ..." (and *after moves past
 * them); each event's ids are checked against the ids given (NULL = any). */
static char *events_since(store_t *st, int64_t *after)
{
    buf_t b = BUF_INIT;
    for (int pages = 0; pages < 100; pages++) {
        store_event_t *v = NULL;
        size_t n = 0;
        bool pending = true;
        assert_int_equal(store_events_read(st, *after, 7, &v, &n, &pending), 0);
        assert_false(pending); /* nothing is in flight in these tests */
        for (size_t i = 0; i < n; i++) {
            assert_true(v[i].id > *after);
            *after = v[i].id;
            if (b.len) buf_puts(&b, " ");
            buf_puts(&b, v[i].type);
            store_event_clear(&v[i]);
        }
        free(v);
        if (n < 7) break;
    }
    char *out = xstrdup(b.data ? b.data : "");
    buf_free(&b);
    return out;
}

#define assert_events(st, after, want)                                                             \
    do {                                                                                           \
        char *got_ = events_since(st, after);                                                      \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

/* Every change of a job, run and worker has its event, in the order the
 * changes committed, whichever verb made it. */
static void test_events_every_change(void **state)
{
    int64_t after = 0, pruned = -1, last = -1;
    assert_int_equal(store_events_bounds(ST, &pruned, &last), 0);
    assert_int_equal(pruned, 0);
    assert_int_equal(last, 0);
    assert_events(ST, &after, "");

    char wid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "evjob");
    j.retry = (retry_policy_t){2, 1000, 1000, 2.0, false};
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    assert_events(ST, &after, "worker.registered job.created run.pending");

    /* Claimed, started, failed with a retry, claimed again, succeeded. */
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    assert_int_equal(n, 1);
    char rid[SKED_ID_LEN];
    memcpy(rid, cl[0].run.id, SKED_ID_LEN);
    confirm(ST, wid, &cl[0], T0 + 1);
    assert_int_equal(store_complete(ST, rid, 1, cl[0].run.fence, NULL, &RES_FAIL, T0 + 2), 0);
    free_claimed(cl, n);
    assert_events(ST, &after, "run.claimed run.started run.retrying");
    cl = claim(ST, wid, 1, T0 + 5000, &n);
    assert_int_equal(n, 1);
    confirm(ST, wid, &cl[0], T0 + 5001);
    /* A heartbeat that only renews the lease is not an event. */
    confirm(ST, wid, &cl[0], T0 + 5002);
    assert_int_equal(store_complete(ST, rid, 2, cl[0].run.fence, NULL, &RES_OK, T0 + 5003), 0);
    free_claimed(cl, n);

    store_event_t *v = NULL;
    bool pending;
    assert_int_equal(store_events_read(ST, after, 10, &v, &n, &pending), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[2].type, "run.succeeded");
    assert_string_equal(v[2].job_id, j.id);
    assert_string_equal(v[2].run_id, rid);
    assert_string_equal(v[2].worker_id, wid);
    assert_string_equal(v[2].ns, "default");
    assert_int_equal(v[2].attempt, 2);
    assert_true(v[2].at_ms > T0); /* the engine's clock, not the caller's */
    for (size_t i = 0; i < n; i++)
        store_event_clear(&v[i]);
    free(v);
    assert_events(ST, &after, "run.claimed run.started run.succeeded");

    /* A claim never confirmed and reaped is requeued, uncharged. */
    char r2[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 6000, r2), 0);
    cl = claim(ST, wid, 1, T0 + 6000, &n);
    assert_int_equal(n, 1);
    free_claimed(cl, n);
    assert_true(store_reap(ST, 0, 3600000, T0 + 6000 + LEASE_MS + 1) >= 1);
    assert_events(ST, &after, "run.pending run.claimed run.requeued");
    assert_int_equal(store_run_cancel(ST, r2, NULL, NULL, T0 + 7000), 0);
    assert_events(ST, &after, "run.canceled");

    /* The job's own changes. */
    j.priority = 7;
    assert_int_equal(store_job_update(ST, &j, 0, NULL, 0, NULL, T0 + 8000), 0);
    assert_int_equal(store_job_set_state(ST, j.id, JOB_PAUSED, NULL, T0 + 8001), 0);
    assert_int_equal(store_job_set_state(ST, j.id, JOB_ACTIVE, NULL, T0 + 8002), 0);
    assert_int_equal(store_job_set_state(ST, j.id, JOB_DELETED, NULL, T0 + 8003), 0);
    assert_events(ST, &after, "job.updated job.paused job.resumed job.deleted");

    /* The worker's. */
    assert_int_equal(store_worker_drain(ST, wid, NULL, NULL, T0 + 9000), 0);
    assert_int_equal(store_worker_deregister(ST, wid, NULL, NULL, T0 + 9001), 0);
    assert_events(ST, &after, "worker.draining worker.gone");

    /* A change that fails leaves no event: the name is taken. */
    store_job_t dup;
    mkjob(&dup, "evjob2");
    assert_int_equal(store_job_create(ST, &dup, NULL, 0, false, NULL, NULL, T0), 0);
    store_job_clear(&dup);
    mkjob(&dup, "evjob2");
    assert_int_equal(store_job_create(ST, &dup, NULL, 0, false, NULL, NULL, T0), SKED_ECONFLICT);
    store_job_clear(&dup);
    assert_events(ST, &after, "job.created");

    assert_int_equal(store_events_bounds(ST, &pruned, &last), 0);
    assert_int_equal(last, after);
    store_job_clear(&j);
}

/* Retention deletes the oldest events, in batches, never the newest, and
 * says how far it went; ids keep growing after it. */
static void test_events_prune(void **state)
{
    char jid[SKED_ID_LEN];
    new_job(ST, "evprune", 0, NULL, false, T0, jid);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(store_job_set_state(ST, jid, JOB_PAUSED, NULL, T0), 0);
        assert_int_equal(store_job_set_state(ST, jid, JOB_ACTIVE, NULL, T0), 0);
    }
    int64_t pruned, last;
    assert_int_equal(store_events_bounds(ST, &pruned, &last), 0);
    assert_int_equal(pruned, 0);
    /* Nothing is older than an hour ago. */
    assert_int_equal(store_events_prune(ST, clock_now_ms() - 3600000), 0);
    /* Everything is older than a minute from now: all go but the newest. */
    assert_int_equal(store_events_prune(ST, clock_now_ms() + 60000), 80);
    int64_t p2, l2;
    assert_int_equal(store_events_bounds(ST, &p2, &l2), 0);
    assert_int_equal(l2, last);
    assert_int_equal(p2, last - 1);
    int64_t after = 0;
    assert_events(ST, &after, "job.resumed");
    assert_int_equal(after, last);
    assert_int_equal(store_job_set_state(ST, jid, JOB_PAUSED, NULL, T0), 0);
    assert_events(ST, &after, "job.paused");
    assert_true(after > last);
    assert_int_equal(store_events_prune(ST, clock_now_ms() + 60000), 1);
    /* Bad arguments. */
    store_event_t *v;
    size_t n;
    bool pending;
    assert_int_equal(store_events_read(ST, -1, 10, &v, &n, &pending), SKED_EINVAL);
    assert_int_equal(store_events_read(ST, 0, 0, &v, &n, &pending), SKED_EINVAL);
    assert_int_equal(store_events_read(ST, 0, 1001, &v, &n, &pending), SKED_EINVAL);
}

/* ---- tokens ----------------------------------------------------------------------------- */

static void test_tokens(void **state)
{
    int64_t count = -1;
    assert_int_equal(store_token_count(ST, &count), 0);
    assert_int_equal(count, 0);
    const char *h1 = "aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11aa11";
    const char *h2 = "bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22bb22";
    const char *h3 = "cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33cc33";
    store_token_t t = {0};
    t.name = xstrdup("admin");
    t.role = ROLE_ADMIN;
    t.ns = xstrdup("");
    t.expires_ms = -1;
    assert_int_equal(store_token_create(ST, &t, h1, T0), 0);
    assert_true(id_valid(t.id));
    store_token_t exp = {0};
    exp.name = xstrdup("temp");
    exp.role = ROLE_WORKER;
    exp.expires_ms = T0 + 1000;
    assert_int_equal(store_token_create(ST, &exp, h2, T0), 0);
    store_token_t rev = {0};
    rev.name = xstrdup("revoked");
    rev.role = ROLE_VIEWER;
    rev.expires_ms = -1;
    rev.revoked = true;
    assert_int_equal(store_token_create(ST, &rev, h3, T0), 0);
    assert_int_equal(store_token_create(ST, &rev, h3, T0), SKED_ECONFLICT);

    store_token_t g;
    assert_int_equal(store_token_lookup(ST, h1, T0 + 5, &g), 0);
    assert_string_equal(g.id, t.id);
    assert_string_equal(g.name, "admin");
    assert_int_equal(g.role, ROLE_ADMIN);
    assert_int_equal(g.expires_ms, -1);
    assert_int_equal(g.created_ms, T0);
    assert_false(g.revoked);
    store_token_clear(&g);
    assert_int_equal(store_token_lookup(ST, h2, T0 + 999, &g), 0);
    assert_int_equal(g.role, ROLE_WORKER);
    store_token_clear(&g);
    assert_int_equal(store_token_lookup(ST, h2, T0 + 1000, &g), SKED_ENOTFOUND);
    assert_int_equal(store_token_lookup(ST, h3, T0, &g), SKED_ENOTFOUND);
    assert_int_equal(store_token_lookup(ST, "00", T0, &g), SKED_ENOTFOUND);
    assert_int_equal(store_token_count(ST, &count), 0);
    assert_int_equal(count, 3);
    store_token_clear(&t);
    store_token_clear(&exp);
    store_token_clear(&rev);
}

/* ---- users, token management, audit, namespaces ------------------------------------------ */

static store_audit_t mkaudit(const char *actor, const char *method, const char *route,
                             const char *target, int64_t at)
{
    store_audit_t a = {0};
    a.at_ms = at;
    a.actor = (char *)actor; /* borrowed for the call */
    a.role = (char *)"admin";
    a.method = (char *)method;
    a.route = (char *)route;
    a.target = (char *)target;
    a.ns = (char *)"";
    a.source = (char *)"127.0.0.1";
    a.status = 200;
    return a;
}

static size_t audit_count(store_t *st, const char *actor)
{
    store_audit_filter_t f = {.since_ms = INT64_MIN, .actor = actor, .limit = 1000};
    store_audit_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_audit_list(st, &f, &v, &n, &next), 0);
    for (size_t i = 0; i < n; i++)
        store_audit_clear(&v[i]);
    free(v);
    free(next);
    return n;
}

static void test_users(void **state)
{
    store_user_t u = {.name = "alice",
                      .pwhash = "$argon2id$fake",
                      .role = ROLE_USER,
                      .namespaces = "team-a,team-b"};
    store_audit_t au = mkaudit("root", "POST", "/v1/users", "alice", T0);
    assert_int_equal(store_user_create(ST, &u, &au, T0), 0);
    assert_int_equal(store_user_create(ST, &u, NULL, T0), SKED_ECONFLICT);
    store_user_t b = {
        .name = "bob", .pwhash = "$argon2id$b", .role = ROLE_VIEWER, .namespaces = ""};
    assert_int_equal(store_user_create(ST, &b, NULL, T0 + 1), 0);

    store_user_t g;
    assert_int_equal(store_user_get(ST, "alice", &g), 0);
    assert_string_equal(g.name, "alice");
    assert_string_equal(g.pwhash, "$argon2id$fake");
    assert_int_equal(g.role, ROLE_USER);
    assert_string_equal(g.namespaces, "team-a,team-b");
    assert_int_equal(g.created_ms, T0);
    store_user_clear(&g);
    assert_int_equal(store_user_get(ST, "carol", &g), SKED_ENOTFOUND);

    store_user_t *v = NULL;
    size_t n = 0;
    assert_int_equal(store_user_list(ST, &v, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "alice");
    assert_string_equal(v[1].name, "bob");
    for (size_t i = 0; i < n; i++)
        store_user_clear(&v[i]);
    free(v);

    store_user_t up = {
        .name = "alice", .pwhash = "$argon2id$new", .role = ROLE_OPERATOR, .namespaces = "team-c"};
    store_audit_t au2 = mkaudit("root", "PATCH", "/v1/users/{name}", "alice", T0 + 5);
    assert_int_equal(store_user_update(ST, &up, &au2, T0 + 5), 0);
    assert_int_equal(store_user_get(ST, "alice", &g), 0);
    assert_int_equal(g.role, ROLE_OPERATOR);
    assert_string_equal(g.namespaces, "team-c");
    assert_string_equal(g.pwhash, "$argon2id$new");
    assert_int_equal(g.created_ms, T0);
    assert_int_equal(g.updated_ms, T0 + 5);
    store_user_clear(&g);
    up.name = "nobody";
    assert_int_equal(store_user_update(ST, &up, &au2, T0 + 5), SKED_ENOTFOUND);

    assert_int_equal(store_user_delete(ST, "bob", NULL, T0 + 6), 0);
    assert_int_equal(store_user_delete(ST, "bob", &au2, T0 + 6), SKED_ENOTFOUND);
    assert_int_equal(store_user_get(ST, "bob", &g), SKED_ENOTFOUND);
    /* Only the changes that happened left an entry: a failed verb's audit
     * entry is rolled back with it. */
    assert_int_equal(audit_count(ST, "root"), 2);
}

static void test_user_tokens(void **state)
{
    const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111";
    const char *h2 = "2222222222222222222222222222222222222222222222222222222222222222";
    const char *h3 = "3333333333333333333333333333333333333333333333333333333333333333";
    store_user_t u = {.name = "alice", .pwhash = "x", .role = ROLE_USER, .namespaces = "team-a"};
    assert_int_equal(store_user_create(ST, &u, NULL, T0), 0);

    /* A token of alice's, minted while she is a user... */
    store_token_t t = {
        .name = "alice", .role = ROLE_USER, .ns = "team-a", .expires_ms = -1, .user = "alice"};
    store_audit_t au = mkaudit("alice", "POST", "/v1/tokens", "", T0);
    assert_int_equal(store_token_issue(ST, &t, h1, &au, T0), 0);
    assert_int_equal(t.last_used_ms, -1);
    char alice_tok[SKED_ID_LEN];
    memcpy(alice_tok, t.id, SKED_ID_LEN);
    /* ...and a standalone worker token. */
    store_token_t w = {.name = "w1", .role = ROLE_WORKER, .ns = "", .expires_ms = -1};
    assert_int_equal(store_token_create(ST, &w, h2, T0 + 1), 0);
    store_token_t w2 = {.name = "w1", .role = ROLE_WORKER, .ns = "", .expires_ms = -1};
    assert_int_equal(store_token_create(ST, &w2, h3, T0 + 2), 0);

    store_token_t g;
    assert_int_equal(store_token_lookup(ST, h1, T0, &g), 0);
    assert_string_equal(g.user, "alice");
    assert_int_equal(g.role, ROLE_USER);
    assert_string_equal(g.ns, "team-a");
    assert_int_equal(g.last_used_ms, -1);
    store_token_clear(&g);

    /* The token follows the user's current role and grants. */
    store_user_t up = {.name = "alice", .pwhash = "x", .role = ROLE_VIEWER, .namespaces = "b,c"};
    assert_int_equal(store_user_update(ST, &up, NULL, T0 + 3), 0);
    assert_int_equal(store_token_lookup(ST, h1, T0 + 3, &g), 0);
    assert_int_equal(g.role, ROLE_VIEWER);
    assert_string_equal(g.ns, "b,c");
    store_token_clear(&g);

    /* last_used_ms: written once per STORE_TOKEN_TOUCH_MS. */
    assert_int_equal(store_token_touch(ST, alice_tok, T0 + 10), 0);
    assert_int_equal(store_token_touch(ST, alice_tok, T0 + 20), 0);
    assert_int_equal(store_token_get(ST, alice_tok, &g), 0);
    assert_int_equal(g.last_used_ms, T0 + 10);
    store_token_clear(&g);
    assert_int_equal(store_token_touch(ST, alice_tok, T0 + 10 + STORE_TOKEN_TOUCH_MS), 0);
    assert_int_equal(store_token_get(ST, alice_tok, &g), 0);
    assert_int_equal(g.last_used_ms, T0 + 10 + STORE_TOKEN_TOUCH_MS);
    /* get shows the token as stored, not its user's current role */
    assert_int_equal(g.role, ROLE_USER);
    store_token_clear(&g);
    assert_int_equal(store_token_get(ST, "tok_01JD0000000000000000000000", &g), SKED_ENOTFOUND);

    /* Lists: by user, standalone only, by name; newest first; paged. */
    store_token_filter_t f = {.user = "alice", .limit = 10};
    store_token_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_token_list(ST, &f, &v, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, alice_tok);
    assert_null(next);
    for (size_t i = 0; i < n; i++)
        store_token_clear(&v[i]);
    free(v);
    f = (store_token_filter_t){.user = "", .name = "w1", .limit = 1};
    assert_int_equal(store_token_list(ST, &f, &v, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, w2.id);
    assert_non_null(next);
    store_token_clear(&v[0]);
    free(v);
    f.cursor = next;
    assert_int_equal(store_token_list(ST, &f, &v, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].id, w.id);
    assert_null(v[0].user);
    store_token_clear(&v[0]);
    free(v);
    free((char *)f.cursor);
    f = (store_token_filter_t){.limit = 10};
    assert_int_equal(store_token_list(ST, &f, &v, &n, &next), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++)
        store_token_clear(&v[i]);
    free(v);
    f.cursor = "garbage";
    assert_int_equal(store_token_list(ST, &f, &v, &n, &next), SKED_EINVAL);

    /* Revoke: idempotent; unknown ids are not found. */
    assert_int_equal(store_token_revoke(ST, w.id, &au, T0 + 4), 0);
    assert_int_equal(store_token_revoke(ST, w.id, NULL, T0 + 4), 0);
    assert_int_equal(store_token_lookup(ST, h2, T0 + 4, &g), SKED_ENOTFOUND);
    assert_int_equal(store_token_get(ST, w.id, &g), 0);
    assert_true(g.revoked);
    store_token_clear(&g);
    assert_int_equal(store_token_revoke(ST, "tok_01JD0000000000000000000000", &au, T0),
                     SKED_ENOTFOUND);

    /* Deleting the user revokes its tokens, so a new alice does not
     * inherit them. */
    assert_int_equal(store_user_delete(ST, "alice", NULL, T0 + 5), 0);
    assert_int_equal(store_token_lookup(ST, h1, T0 + 5, &g), SKED_ENOTFOUND);
    assert_int_equal(store_user_create(ST, &u, NULL, T0 + 6), 0);
    assert_int_equal(store_token_lookup(ST, h1, T0 + 6, &g), SKED_ENOTFOUND);
    assert_int_equal(store_token_lookup(ST, h3, T0 + 6, &g), 0);
    store_token_clear(&g);
    assert_int_equal(audit_count(ST, "alice"), 2); /* issue + the first revoke */
    /* t, w, w2 hold borrowed literals: nothing to clear */
}

static void test_audit_list(void **state)
{
    for (int i = 0; i < 5; i++) {
        store_audit_t a = mkaudit(i % 2 ? "bob" : "alice", "POST", "/v1/jobs", "job_x", T0 + i);
        a.status = 200 + i;
        assert_int_equal(store_audit_append(ST, &a), 0);
    }
    store_audit_t bad = {0};
    assert_int_equal(store_audit_append(ST, &bad), SKED_EINVAL);

    store_audit_filter_t f = {.since_ms = INT64_MIN, .limit = 2};
    store_audit_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_audit_list(ST, &f, &v, &n, &next), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].at_ms, T0 + 4); /* newest first */
    assert_int_equal(v[0].status, 204);
    assert_string_equal(v[0].actor, "alice");
    assert_string_equal(v[0].method, "POST");
    assert_string_equal(v[0].route, "/v1/jobs");
    assert_string_equal(v[0].target, "job_x");
    assert_string_equal(v[0].source, "127.0.0.1");
    assert_string_equal(v[0].role, "admin");
    assert_true(id_valid(v[0].id));
    assert_int_equal(v[1].at_ms, T0 + 3);
    assert_non_null(next);
    for (size_t i = 0; i < n; i++)
        store_audit_clear(&v[i]);
    free(v);
    f.cursor = next;
    assert_int_equal(store_audit_list(ST, &f, &v, &n, &next), 0);
    free((char *)f.cursor);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].at_ms, T0 + 2);
    for (size_t i = 0; i < n; i++)
        store_audit_clear(&v[i]);
    free(v);
    free(next);

    f = (store_audit_filter_t){.since_ms = T0 + 1, .actor = "bob", .limit = 100};
    assert_int_equal(store_audit_list(ST, &f, &v, &n, &next), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].at_ms, T0 + 3);
    assert_int_equal(v[1].at_ms, T0 + 1);
    for (size_t i = 0; i < n; i++)
        store_audit_clear(&v[i]);
    free(v);
    f.since_ms = T0 + 2;
    assert_int_equal(store_audit_list(ST, &f, &v, &n, &next), 0);
    assert_int_equal(n, 1);
    store_audit_clear(&v[0]);
    free(v);
}

/* The newest audit entry of actor (into *out), or fails the test. */
static void last_audit(store_t *st, const char *actor, store_audit_t *out)
{
    store_audit_filter_t f = {.since_ms = INT64_MIN, .actor = actor, .limit = 1};
    store_audit_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_audit_list(st, &f, &v, &n, &next), 0);
    assert_int_equal(n, 1);
    *out = v[0];
    free(v);
    free(next);
}

/* A change and its audit entry commit together: an acknowledged change has
 * its entry (naming what the verb minted when the target was left empty),
 * and a refused one leaves none. */
static void test_audit_commits_with_the_change(void **state)
{
    store_audit_t a = mkaudit("carol", "POST", "/v1/jobs", "", T0);
    store_audit_t e;
    store_job_t j;
    mkjob(&j, "audited");
    a.status = 201;
    a.at_ms = T0;
    assert_int_equal(store_job_create(ST, &j, NULL, 0, false, NULL, &a, T0), 0);
    assert_int_equal(audit_count(ST, "carol"), 1);
    last_audit(ST, "carol", &e);
    assert_string_equal(e.target, j.id); /* the store named the new job */
    assert_int_equal(e.status, 201);
    store_audit_clear(&e);

    /* Refused changes write nothing: a taken name, a run already over, a
     * job that is not there. */
    store_job_t dup;
    mkjob(&dup, "audited");
    a.at_ms = T0 + 1;
    assert_int_equal(store_job_create(ST, &dup, NULL, 0, false, NULL, &a, T0 + 1), SKED_ECONFLICT);
    store_job_clear(&dup);
    char run_id[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 2, run_id), 0);
    assert_int_equal(store_run_cancel(ST, run_id, "test", NULL, T0 + 3), 0);
    a.route = (char *)"/v1/runs/{id}/cancel";
    a.at_ms = T0 + 4;
    assert_int_equal(store_run_cancel(ST, run_id, "again", &a, T0 + 4), SKED_ECONFLICT);
    a.route = (char *)"/v1/jobs/{id}/pause";
    assert_int_equal(
        store_job_set_state(ST, "job_01KDVDNA00J41X6VTC3YJH3XZN", JOB_PAUSED, &a, T0 + 5),
        SKED_ENOTFOUND);
    assert_int_equal(audit_count(ST, "carol"), 1);

    /* Each audited verb writes its entry, naming its target. */
    a.target = (char *)"";
    a.at_ms = T0 + 6;
    assert_int_equal(store_job_set_state(ST, j.id, JOB_PAUSED, &a, T0 + 6), 0);
    last_audit(ST, "carol", &e);
    assert_string_equal(e.target, j.id);
    store_audit_clear(&e);
    a.at_ms = T0 + 7;
    assert_int_equal(store_job_set_state(ST, j.id, JOB_ACTIVE, &a, T0 + 7), 0);
    a.at_ms = T0 + 8;
    assert_int_equal(store_run_trigger(ST, j.id, &a, T0 + 8, run_id), 0);
    a.at_ms = T0 + 9;
    assert_int_equal(store_run_cancel(ST, run_id, "test", &a, T0 + 9), 0);
    last_audit(ST, "carol", &e);
    assert_string_equal(e.target, run_id);
    store_audit_clear(&e);
    a.at_ms = T0 + 10;
    assert_int_equal(store_job_update(ST, &j, 0, NULL, 0, &a, T0 + 10), 0);
    store_worker_t w = {0};
    w.name = xstrdup("w-audited");
    w.queues = xstrdup("default");
    w.labels = xstrdup("");
    w.slots = 1;
    a.at_ms = T0 + 11;
    assert_int_equal(store_worker_register(ST, &w, &a, T0 + 11), 0);
    last_audit(ST, "carol", &e);
    assert_string_equal(e.target, w.id);
    store_audit_clear(&e);
    a.at_ms = T0 + 12;
    assert_int_equal(store_worker_drain(ST, w.id, NULL, &a, T0 + 12), 0);
    a.at_ms = T0 + 13;
    assert_int_equal(store_worker_deregister(ST, w.id, NULL, &a, T0 + 13), 0);
    assert_int_equal(audit_count(ST, "carol"), 9);
    store_worker_clear(&w);
    store_job_clear(&j);
}

static void new_job_ns(store_t *st, const char *name, const char *ns, int64_t now,
                       char id[SKED_ID_LEN])
{
    store_job_t j;
    mkjob(&j, name);
    j.ns = xstrdup(ns);
    assert_int_equal(store_job_create(st, &j, NULL, 0, true, NULL, NULL, now), 0);
    memcpy(id, j.id, SKED_ID_LEN);
    store_job_clear(&j);
}

/* Finished runs per minute: each run in the minute it finished, by
 * outcome, only of the namespaces asked for, nothing outside the window. */
static void test_run_minutes(void **state)
{
    const int64_t m0 = T0 - T0 % 60000 + 600000; /* a whole minute */
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], rid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    /* Two runs claimed: one succeeds in minute 0, one fails in minute 2. */
    new_job_ns(ST, "ok", "team-a", T0, jid);
    new_job_ns(ST, "bad", "team-a", T0, jid);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 2, T0, &n);
    assert_int_equal(n, 2);
    bool ok_first = strcmp(cl[0].run.job_id, jid) != 0;
    const store_claimed_t *ok = ok_first ? &cl[0] : &cl[1], *bad = ok_first ? &cl[1] : &cl[0];
    assert_int_equal(store_complete(ST, ok->run.id, 1, ok->run.fence, NULL, &RES_OK, m0 + 59999),
                     0);
    assert_int_equal(
        store_complete(ST, bad->run.id, 1, bad->run.fence, NULL, &RES_FAIL, m0 + 120000), 0);
    assert_int_equal(run_state(ST, bad->run.id), RUN_FAILED);
    free_claimed(cl, n);
    /* Canceled in minute 2 (team-b), canceled just before the window. */
    new_job_ns(ST, "other", "team-b", T0, jid);
    only_run(ST, jid, rid);
    assert_int_equal(store_run_cancel(ST, rid, "test", NULL, m0 + 120001), 0);
    new_job_ns(ST, "early", "team-a", T0, jid);
    only_run(ST, jid, rid);
    assert_int_equal(store_run_cancel(ST, rid, "test", NULL, m0 - 1), 0);
    /* One still pending: not finished, not counted. */
    new_job_ns(ST, "waiting", "team-a", T0, jid);

    store_run_minute_t m[4];
    memset(m, 0xff, sizeof m); /* the store zeroes what it does not count */
    assert_int_equal(store_run_minutes(ST, m0, 4, NULL, m), 0);
    static const int64_t all[4][4] = {{1, 0, 0, 0}, {0, 0, 0, 0}, {0, 1, 1, 0}, {0, 0, 0, 0}};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            if (m[i].n[k] != all[i][k])
                fail_msg("minute %d outcome %d: %lld, want %lld", i, k, (long long)m[i].n[k],
                         (long long)all[i][k]);
    assert_int_equal(store_run_minutes(ST, m0, 4, "team-a", m), 0);
    assert_int_equal(m[2].n[RUN_CANCELED - RUN_SUCCEEDED], 0); /* team-b's */
    assert_int_equal(m[2].n[RUN_FAILED - RUN_SUCCEEDED], 1);
    assert_int_equal(m[0].n[0], 1);
    assert_int_equal(store_run_minutes(ST, m0, 4, "team-b,nowhere", m), 0);
    assert_int_equal(m[0].n[0], 0);
    assert_int_equal(m[2].n[RUN_CANCELED - RUN_SUCCEEDED], 1);
    assert_int_equal(store_run_minutes(ST, m0, 4, "nowhere", m), 0);
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 4; k++)
            assert_int_equal(m[i].n[k], 0);
    /* One minute: only what ended in it; the minute before the window. */
    assert_int_equal(store_run_minutes(ST, m0 - 60000, 1, NULL, m), 0);
    assert_int_equal(m[0].n[RUN_CANCELED - RUN_SUCCEEDED], 1);
    assert_int_equal(m[0].n[0], 0);
    assert_int_equal(store_run_minutes(ST, m0 + 1, 4, NULL, m), SKED_EINVAL);
    assert_int_equal(store_run_minutes(ST, m0, 0, NULL, m), SKED_EINVAL);
    assert_int_equal(store_run_minutes(ST, m0, 1441, NULL, m), SKED_EINVAL);
}

static void test_namespace_filters(void **state)
{
    char a1[SKED_ID_LEN], a2[SKED_ID_LEN], b1[SKED_ID_LEN], c1[SKED_ID_LEN];
    new_job_ns(ST, "a1", "team-a", T0, a1);
    new_job_ns(ST, "a2", "team-a", T0 + 1, a2);
    new_job_ns(ST, "b1", "team-b", T0 + 2, b1);
    new_job_ns(ST, "c1", "team-ab", T0 + 3, c1); /* a prefix of nothing, a superstring of a */

    store_job_filter_t jf = {.ns_in = "team-a", .limit = 10};
    store_job_t *jobs = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_job_list(ST, &jf, &jobs, &n, &next), 0);
    assert_int_equal(n, 2);
    assert_string_equal(jobs[0].id, a2);
    assert_string_equal(jobs[1].id, a1);
    for (size_t i = 0; i < n; i++)
        store_job_clear(&jobs[i]);
    free(jobs);
    jf.ns_in = "team-b,team-ab";
    jf.limit = 1;
    assert_int_equal(store_job_list(ST, &jf, &jobs, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].id, c1);
    store_job_clear(&jobs[0]);
    free(jobs);
    jf.cursor = next;
    assert_int_equal(store_job_list(ST, &jf, &jobs, &n, &next), 0);
    free((char *)jf.cursor);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].id, b1);
    assert_null(next);
    store_job_clear(&jobs[0]);
    free(jobs);
    jf = (store_job_filter_t){.ns_in = "nowhere", .limit = 10};
    assert_int_equal(store_job_list(ST, &jf, &jobs, &n, &next), 0);
    assert_int_equal(n, 0);
    free(jobs);

    /* Runs follow their job's namespace, with and without a job filter. */
    store_run_filter_t rf = {.since_ms = INT64_MIN, .until_ms = INT64_MAX, .limit = 10};
    store_run_t *runs = NULL;
    assert_int_equal(store_run_list_in(ST, &rf, "team-a", &runs, &n, &next), 0);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_true(strcmp(runs[i].job_id, a1) == 0 || strcmp(runs[i].job_id, a2) == 0);
        store_run_clear(&runs[i]);
    }
    free(runs);
    rf.job_id = b1;
    assert_int_equal(store_run_list_in(ST, &rf, "team-a", &runs, &n, &next), 0);
    assert_int_equal(n, 0);
    free(runs);
    assert_int_equal(store_run_list_in(ST, &rf, "team-b", &runs, &n, &next), 0);
    assert_int_equal(n, 1);
    store_run_clear(&runs[0]);
    free(runs);

    /* The scope of a job survives its deletion (its runs still need it). */
    char *ns = NULL, *owner = NULL;
    assert_int_equal(store_job_set_state(ST, b1, JOB_DELETED, NULL, T0 + 10), 0);
    assert_int_equal(store_job_scope(ST, b1, &ns, &owner), 0);
    assert_string_equal(ns, "team-b");
    assert_string_equal(owner, "admin");
    free(ns);
    free(owner);
    assert_int_equal(store_job_scope(ST, a1, &ns, NULL), 0);
    assert_string_equal(ns, "team-a");
    free(ns);
    assert_int_equal(store_job_scope(ST, "job_01JD0000000000000000000000", &ns, NULL),
                     SKED_ENOTFOUND);
    assert_null(ns);
}

/* ---- paging runs ----------------------------------------------------------------------------- */

static void test_run_list_paging(void **state)
{
    enum { PER_JOB = 150 };
    char a[SKED_ID_LEN], b[SKED_ID_LEN];
    new_job(ST, "a", 0, NULL, false, T0, a);
    new_job(ST, "b", 0, NULL, false, T0, b);
    for (int i = 0; i < PER_JOB; i++) {
        char rid[SKED_ID_LEN];
        /* Three runs per fire time: ties must page exactly once. */
        assert_int_equal(store_run_trigger(ST, a, NULL, T0 + i / 3, rid), 0);
        assert_int_equal(store_run_trigger(ST, b, NULL, T0 + i / 3, rid), 0);
        if (i % 10 == 0) assert_int_equal(store_run_cancel(ST, rid, NULL, NULL, T0), 0);
    }
    for (int pass = 0; pass < 2; pass++) {
        const char *job = pass ? a : NULL;
        size_t want = pass ? PER_JOB : 2 * PER_JOB;
        char(*seen)[SKED_ID_LEN] = xcalloc(want, SKED_ID_LEN);
        size_t total = 0;
        char *cursor = NULL;
        int64_t last = INT64_MAX;
        do {
            store_run_filter_t f = {job, NULL, INT64_MIN, INT64_MAX, cursor, 7};
            store_run_t *v;
            size_t n;
            char *next;
            assert_int_equal(store_run_list(ST, &f, &v, &n, &next), 0);
            for (size_t i = 0; i < n; i++) {
                assert_true(total < want);
                assert_true(v[i].fire_ms <= last);
                last = v[i].fire_ms;
                if (job) assert_string_equal(v[i].job_id, a);
                memcpy(seen[total++], v[i].id, SKED_ID_LEN);
                store_run_clear(&v[i]);
            }
            free(v);
            free(cursor);
            cursor = next;
        } while (cursor);
        assert_int_equal(total, want);
        qsort(seen, total, SKED_ID_LEN, cmp_id);
        for (size_t i = 1; i < total; i++)
            assert_string_not_equal(seen[i - 1], seen[i]);
        free(seen);
    }
    /* Filters: state and a fire-time window [since, until). */
    assert_int_equal(count_runs(ST, b, "canceled"), PER_JOB / 10);
    assert_int_equal(count_runs(ST, a, "canceled"), 0);
    store_run_filter_t f = {NULL, "pending", T0 + 10, T0 + 20, NULL, 1000};
    store_run_t *v;
    size_t n;
    char *next;
    assert_int_equal(store_run_list(ST, &f, &v, &n, &next), 0);
    for (size_t i = 0; i < n; i++) {
        assert_true(v[i].fire_ms >= T0 + 10 && v[i].fire_ms < T0 + 20);
        assert_int_equal(v[i].state, RUN_PENDING);
        store_run_clear(&v[i]);
    }
    free(v);
    assert_int_equal(n, 10 * 3 * 2 - 3); /* 60 in the window, 3 of b's canceled */
    f.state = "bogus";
    assert_int_equal(store_run_list(ST, &f, &v, &n, &next), SKED_EINVAL);
}

/* ---- notify and durability ------------------------------------------------------------------- */

static int g_notified;
static void on_notify(void *arg)
{
    __atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

static void test_notify(void **state)
{
    char jid[SKED_ID_LEN], rid[SKED_ID_LEN], wid[SKED_ID_LEN];
    g_notified = 0;
    store_set_notify(ST, on_notify, &g_notified);
    new_job(ST, "quiet", 0, NULL, false, T0, jid);
    int before = __atomic_load_n(&g_notified, __ATOMIC_SEQ_CST);
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0, rid), 0); /* new claimable work */
    int after_trigger = __atomic_load_n(&g_notified, __ATOMIC_SEQ_CST);
    assert_true(after_trigger > before);
    assert_int_equal(store_job_set_state(ST, jid, JOB_PAUSED, NULL, T0), 0);
    assert_int_equal(store_job_set_state(ST, jid, JOB_ACTIVE, NULL, T0), 0); /* resumed */
    int after_resume = __atomic_load_n(&g_notified, __ATOMIC_SEQ_CST);
    assert_true(after_resume > after_trigger);
    new_worker(ST, "w", "default", "", T0, wid);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    int after_claim = __atomic_load_n(&g_notified, __ATOMIC_SEQ_CST);
    assert_int_equal(store_complete(ST, rid, 1, cl[0].run.fence, NULL, &RES_OK, T0 + 1), 0);
    assert_true(__atomic_load_n(&g_notified, __ATOMIC_SEQ_CST) > after_claim);
    free_claimed(cl, n);
    store_set_notify(ST, NULL, NULL);
}

static void test_durability(void **state)
{
    struct ctx *c = *state;
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], sid[SKED_ID_LEN], rid[SKED_ID_LEN];
    int64_t fence;
    job_with_schedule(ST, "durable", T0, jid, sid);
    running_run(ST, "durable-run", rid, &fence);
    assert_int_equal(store_log_append(ST, rid, 1, fence, NULL, 0, 1, "kept", 4, T0 + 1), 0);
    assert_int_equal(store_complete(ST, rid, 1, fence, NULL, &RES_OK, T0 + 2), 0);
    store_token_t t = {0};
    t.name = xstrdup("admin");
    t.expires_ms = -1;
    const char *hash = "dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44dd44";
    assert_int_equal(store_token_create(ST, &t, hash, T0), 0);
    store_token_clear(&t);
    new_worker(ST, "w-keep", "default", "", T0, wid);

    store_close(c->st);
    c->st = open_ok(c->url);

    store_job_t g;
    store_schedule_t *gs;
    size_t n;
    assert_int_equal(store_job_get(ST, jid, &g, &gs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(gs[0].id, sid);
    assert_int_equal(gs[0].next_fire_ms, T0);
    store_schedule_clear(&gs[0]);
    free(gs);
    store_job_clear(&g);
    store_run_t r = get_run(ST, rid);
    assert_int_equal(r.state, RUN_SUCCEEDED);
    assert_int_equal(r.log_bytes, 4);
    store_run_clear(&r);
    store_log_chunk_t *v;
    assert_int_equal(store_log_read(ST, rid, 0, 0, -1, 10, &v, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(v[0].data, "kept", 4);
    store_log_chunk_clear(&v[0]);
    free(v);
    store_token_t tk;
    assert_int_equal(store_token_lookup(ST, hash, T0, &tk), 0);
    store_token_clear(&tk);
    store_worker_t w;
    assert_int_equal(store_worker_get(ST, wid, &w), 0);
    store_worker_clear(&w);
    /* Fences are fresh across restarts: no stale worker can collide. */
    char j2[SKED_ID_LEN];
    new_job(ST, "after-restart", 0, NULL, true, T0 + 5, j2);
    store_claimed_t *cl = claim(ST, wid, 1, T0 + 5, &n);
    assert_int_equal(n, 1);
    assert_true(cl[0].run.fence > 0);
    assert_true(cl[0].run.fence != fence);
    free_claimed(cl, n);
}

/* ---- issue 7: confirmed claims, bound workers, random fences ----------- */

#define CONFIRM_MS INT64_C(3000)

static store_claimed_t *claim_confirm_window(store_t *st, const char *wid, int64_t now, size_t *n)
{
    store_claimed_t *v = NULL;
    assert_int_equal(store_claim(st, wid, NULL, 1, CONFIRM_MS, now, &v, n), 0);
    return v;
}

static size_t attempts_of(store_t *st, const char *rid)
{
    store_run_t r;
    store_attempt_t *att = NULL;
    size_t na = 0;
    assert_int_equal(store_run_get(st, rid, &r, &att, &na), 0);
    for (size_t i = 0; i < na; i++)
        store_attempt_clear(&att[i]);
    free(att);
    store_run_clear(&r);
    return na;
}

/* A run handed out and never reported started comes back after the short
 * confirm window (+ grace), not the lease, and is not charged: with the
 * default max_attempts of 1 it still runs. */
static void test_unconfirmed_claim_returns_uncharged(void **state)
{
    char wid[SKED_ID_LEN], w2[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    new_worker(ST, "w2", "default", "", T0, w2);
    new_job(ST, "never-started", 0, NULL, true, T0, jid);
    size_t n;
    store_claimed_t *cl = claim_confirm_window(ST, wid, T0, &n);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].run.lease_expires_ms, T0 + CONFIRM_MS);
    const int64_t grace = 1000;

    /* Heartbeats that do not report it started keep it held, but do not
     * extend the short lease. */
    store_held_t h = {cl[0].run.id, cl[0].run.fence, false, false, NULL};
    assert_int_equal(store_heartbeat(ST, wid, NULL, &h, 1, LEASE_MS, T0 + 1000, NULL), 0);
    assert_true(h.keep);
    store_run_t r = get_run(ST, cl[0].run.id);
    assert_int_equal(r.lease_expires_ms, T0 + CONFIRM_MS);
    store_run_clear(&r);

    assert_int_equal(store_reap(ST, grace, INT64_C(1) << 50, T0 + CONFIRM_MS + grace), 0);
    assert_int_equal(store_reap(ST, grace, INT64_C(1) << 50, T0 + CONFIRM_MS + grace + 1), 1);
    r = get_run(ST, cl[0].run.id);
    assert_int_equal(r.state, RUN_SCHEDULED);
    assert_int_equal(r.attempt, 0); /* uncharged */
    assert_int_equal(r.not_before_ms, T0 + CONFIRM_MS + grace + 1);
    assert_int_equal(r.lease_expires_ms, -1);
    assert_int_equal(r.started_ms, -1);
    assert_non_null(r.reason);
    assert_non_null(strstr(r.reason, "not started"));
    store_run_clear(&r);
    assert_int_equal(attempts_of(ST, cl[0].run.id), 0);

    /* The old holder is cut off; another worker gets it as attempt 1. */
    assert_int_equal(store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &RES_OK,
                                    T0 + CONFIRM_MS + grace + 2),
                     SKED_ESTALE);
    store_claimed_t *cl2 = claim_confirm_window(ST, w2, T0 + CONFIRM_MS + grace + 3, &n);
    assert_int_equal(n, 1);
    assert_string_equal(cl2[0].run.id, cl[0].run.id);
    assert_int_equal(cl2[0].run.attempt, 1);
    assert_true(cl2[0].run.fence != cl[0].run.fence);
    confirm(ST, w2, &cl2[0], T0 + CONFIRM_MS + grace + 4);
    r = get_run(ST, cl2[0].run.id);
    assert_int_equal(r.lease_expires_ms, T0 + CONFIRM_MS + grace + 4 + LEASE_MS);
    store_run_clear(&r);
    /* A confirmed lease that runs out is a lost, charged attempt. */
    int64_t late = T0 + CONFIRM_MS + grace + 4 + LEASE_MS + grace + 1;
    assert_int_equal(store_reap(ST, grace, INT64_C(1) << 50, late), 1);
    r = get_run(ST, cl2[0].run.id);
    assert_int_equal(r.state, RUN_FAILED); /* max_attempts 1 */
    assert_int_equal(r.attempt, 1);
    store_run_clear(&r);
    free_claimed(cl2, 1);
    free_claimed(cl, 1);
}

/* A worker that refuses a run (its lease was over before it could start
 * it) reports it not started: the run is due again at once, uncharged, and
 * the refused attempt's log is gone; also after the lease was confirmed
 * (the worker confirms before it spawns). */
static void test_complete_not_started(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    new_job(ST, "refused", 0, NULL, true, T0, jid);
    size_t n;
    store_claimed_t *cl = claim_confirm_window(ST, wid, T0, &n);
    assert_int_equal(n, 1);
    /* It even logged past the cap: undone, the run's log is as before. */
    store_set_log_cap(ST, 4);
    assert_int_equal(
        store_log_append(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, 0, 1, "halfway", 7, T0 + 1),
        0);
    store_run_t t = get_run(ST, cl[0].run.id);
    assert_true(t.log_truncated);
    store_run_clear(&t);
    store_set_log_cap(ST, 0);
    store_result_t refused = {ATTEMPT_NOT_STARTED, -1, 0, "lease over on arrival", NULL, NULL};
    assert_int_equal(store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &refused, T0 + 2),
                     0);
    /* Repeating the report (its answer was lost) is harmless. */
    assert_int_equal(store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &refused, T0 + 3),
                     SKED_ESTALE);
    store_run_t r = get_run(ST, cl[0].run.id);
    assert_int_equal(r.state, RUN_SCHEDULED);
    assert_int_equal(r.attempt, 0);
    assert_int_equal(r.log_bytes, 0);
    assert_false(r.log_truncated);
    assert_true(r.not_before_ms <= T0 + 2);
    store_run_clear(&r);
    assert_int_equal(attempts_of(ST, cl[0].run.id), 0);
    store_log_chunk_t *v = NULL;
    size_t nc = 9;
    assert_int_equal(store_log_read(ST, cl[0].run.id, 0, 0, -1, 10, &v, &nc), 0);
    assert_int_equal(nc, 0);
    free(v);

    /* Claimable at once, as attempt 1 again. */
    store_claimed_t *cl2 = claim_confirm_window(ST, wid, T0 + 3, &n);
    assert_int_equal(n, 1);
    assert_int_equal(cl2[0].run.attempt, 1);
    confirm(ST, wid, &cl2[0], T0 + 4);
    assert_int_equal(store_complete(ST, cl2[0].run.id, 1, cl2[0].run.fence, NULL, &refused, T0 + 5),
                     0);
    r = get_run(ST, cl2[0].run.id);
    assert_int_equal(r.state, RUN_SCHEDULED);
    assert_int_equal(r.attempt, 0);
    assert_int_equal(r.lease_expires_ms, -1);
    store_run_clear(&r);
    free_claimed(cl2, 1);
    free_claimed(cl, 1);
}

static void new_worker_owned(store_t *st, const char *name, const char *owner, const char *ns,
                             int64_t now, char id[SKED_ID_LEN])
{
    store_worker_t w = {0};
    w.name = xstrdup(name);
    w.host = xstrdup("localhost");
    w.queues = xstrdup("default");
    w.labels = xstrdup("");
    w.slots = 4;
    w.owner = xstrdup(owner);
    w.ns = xstrdup(ns);
    assert_int_equal(store_worker_register(st, &w, NULL, now), 0);
    memcpy(id, w.id, SKED_ID_LEN);
    store_worker_clear(&w);
}

/* Many completions in one unit: each answered as store_complete would
 * answer it alone — applied, stale, another owner's, unknown, a repeat —
 * and the others applied whatever their neighbours' answers. */
static void test_complete_batch(void **state)
{
    char wa[SKED_ID_LEN], wb[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker_owned(ST, "wa", "tok_a", "", T0, wa);
    new_worker_owned(ST, "wb", "tok_b", "", T0, wb);
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "b%d", i);
        new_job(ST, name, 0, NULL, true, T0, jid);
    }
    size_t na, nb;
    store_claimed_t *ca = claim(ST, wa, 3, T0, &na);
    store_claimed_t *cb = claim(ST, wb, 1, T0, &nb);
    assert_int_equal(na, 3);
    assert_int_equal(nb, 1);
    store_result_t with_result = RES_OK;
    with_result.result = "{\"rows\": 3}";
    store_completion_t it[7] = {
        {ca[0].run.id, 1, ca[0].run.fence, with_result, 99},
        {ca[1].run.id, 1, ca[1].run.fence + 1, RES_OK, 99}, /* stale */
        {ca[2].run.id, 1, ca[2].run.fence, RES_FAIL, 99},
        {cb[0].run.id, 1, cb[0].run.fence, RES_OK, 99}, /* wb's: another token */
        {"run_00000000000000000000000000", 1, 1, RES_OK, 99},
        {ca[0].run.id, 1, ca[0].run.fence, RES_FAIL, 99}, /* a repeat: no change */
        {ca[1].run.id, 0, ca[1].run.fence, RES_OK, 99},   /* no attempt 0 */
    };
    assert_int_equal(store_complete_batch(ST, wa, "tok_a", it, 7, T0 + 5), 0);
    assert_int_equal(it[0].rc, 0);
    assert_int_equal(it[1].rc, SKED_ESTALE);
    assert_int_equal(it[2].rc, 0);
    assert_int_equal(it[3].rc, SKED_EFORBID);
    assert_int_equal(it[4].rc, SKED_ENOTFOUND);
    assert_int_equal(it[5].rc, 0);
    assert_int_equal(it[6].rc, SKED_EINVAL);
    store_run_t r = get_run(ST, ca[0].run.id);
    assert_int_equal(r.state, RUN_SUCCEEDED);
    store_run_clear(&r);
    store_attempt_t *att;
    size_t nat;
    assert_int_equal(store_run_get(ST, ca[0].run.id, &r, &att, &nat), 0);
    assert_int_equal(nat, 1);
    assert_non_null(att[0].result);
    assert_string_equal(att[0].result, "{\"rows\": 3}");
    store_attempt_clear(&att[0]);
    free(att);
    store_run_clear(&r);
    r = get_run(ST, ca[1].run.id); /* the stale report changed nothing */
    assert_int_equal(r.state, RUN_RUNNING);
    store_run_clear(&r);
    r = get_run(ST, ca[2].run.id); /* failed once, no retries: failed */
    assert_int_equal(r.state, RUN_FAILED);
    store_run_clear(&r);
    r = get_run(ST, cb[0].run.id); /* not tok_a's to complete */
    assert_int_equal(r.state, RUN_RUNNING);
    store_run_clear(&r);
    /* The owner's own batch completes it; an empty batch is nothing. */
    store_completion_t mine = {cb[0].run.id, 1, cb[0].run.fence, RES_OK, 99};
    assert_int_equal(store_complete_batch(ST, wb, "tok_b", &mine, 1, T0 + 6), 0);
    assert_int_equal(mine.rc, 0);
    assert_int_equal(store_complete_batch(ST, wb, "tok_b", NULL, 0, T0 + 6), 0);
    /* Only a worker's own token speaks for it. */
    assert_int_equal(store_complete_batch(ST, wb, "tok_a", &mine, 1, T0 + 6), SKED_EFORBID);
    assert_int_equal(
        store_complete_batch(ST, "wrk_00000000000000000000000000", NULL, &mine, 1, T0 + 6),
        SKED_ENOTFOUND);
    assert_int_equal(store_complete_batch(ST, wb, "tok_b", it, STORE_COMPLETE_BATCH_MAX + 1, T0),
                     SKED_EINVAL);
    free_claimed(ca, na);
    free_claimed(cb, nb);
}

/* A worker acts only for its own token: another token can neither
 * heartbeat, claim for nor drain it, nor log to or complete its runs. */
static void test_worker_bound_to_owner(void **state)
{
    char wa[SKED_ID_LEN], wb[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker_owned(ST, "wa", "tok_a", "", T0, wa);
    new_worker_owned(ST, "wb", "tok_b", "", T0, wb);
    new_job(ST, "owned", 0, NULL, true, T0, jid);
    store_claimed_t *cl = NULL;
    size_t n = 0;
    assert_int_equal(store_claim(ST, wa, "tok_b", 1, CONFIRM_MS, T0, &cl, &n), SKED_EFORBID);
    assert_int_equal(n, 0);
    assert_int_equal(count_runs(ST, jid, "running"), 0); /* the refused claim took nothing */
    assert_int_equal(store_claim(ST, wa, "tok_a", 1, CONFIRM_MS, T0, &cl, &n), 0);
    assert_int_equal(n, 1);
    const char *rid = cl[0].run.id;
    int64_t fence = cl[0].run.fence;

    store_held_t h = {rid, fence, true, false, NULL};
    assert_int_equal(store_heartbeat(ST, wa, "tok_b", &h, 1, LEASE_MS, T0 + 1, NULL), SKED_EFORBID);
    store_run_t r = get_run(ST, rid);
    assert_int_equal(r.lease_expires_ms, T0 + CONFIRM_MS); /* nothing renewed */
    store_run_clear(&r);
    assert_int_equal(store_log_append(ST, rid, 1, fence, "tok_b", 0, 1, "x", 1, T0 + 2),
                     SKED_EFORBID);
    assert_int_equal(store_complete(ST, rid, 1, fence, "tok_b", &RES_OK, T0 + 3), SKED_EFORBID);
    assert_int_equal(run_state(ST, rid), RUN_RUNNING);
    assert_int_equal(store_worker_drain(ST, wa, "tok_b", NULL, T0 + 4), SKED_EFORBID);
    store_worker_t w;
    assert_int_equal(store_worker_get(ST, wa, &w), 0);
    assert_int_equal(w.state, WORKER_ACTIVE);
    store_worker_clear(&w);
    /* Worker b's own token cannot act for a's run through b either. */
    h.keep = false;
    assert_int_equal(store_heartbeat(ST, wb, "tok_b", &h, 1, LEASE_MS, T0 + 5, NULL), 0);
    assert_false(h.keep);

    /* The owner can; so can an unrestricted caller (NULL). */
    assert_int_equal(store_heartbeat(ST, wa, "tok_a", &h, 1, LEASE_MS, T0 + 6, NULL), 0);
    assert_true(h.keep);
    assert_int_equal(store_log_append(ST, rid, 1, fence, "tok_a", 0, 1, "x", 1, T0 + 7), 0);
    assert_int_equal(store_complete(ST, rid, 1, fence, "tok_a", &RES_OK, T0 + 8), 0);
    assert_int_equal(run_state(ST, rid), RUN_SUCCEEDED);
    /* A report on a lease that is no longer current is stale (409) whoever
     * sends it: the fence decides before the owner does. */
    assert_int_equal(store_complete(ST, rid, 1, fence + 1, "tok_b", &RES_OK, T0 + 8), SKED_ESTALE);
    assert_int_equal(store_worker_drain(ST, wa, NULL, NULL, T0 + 9), 0);

    /* Re-registering a name never takes over another token's worker. */
    char wa2[SKED_ID_LEN];
    assert_int_equal(store_worker_deregister(ST, wa, "tok_a", NULL, T0 + 10), 0);
    new_worker_owned(ST, "wa", "tok_b", "", T0 + 11, wa2);
    assert_string_not_equal(wa2, wa);
    free_claimed(cl, n);
}

/* A namespace-scoped worker claims only its namespace's runs. */
static void test_worker_namespace_claims(void **state)
{
    char wb[SKED_ID_LEN], ja[SKED_ID_LEN], jb[SKED_ID_LEN];
    new_job_ns(ST, "in-a", "team-a", T0, ja);
    new_job_ns(ST, "in-b", "team-b", T0 + 1, jb);
    new_worker_owned(ST, "wb", "tok_b", "team-b", T0, wb);
    store_claimed_t *cl = NULL;
    size_t n = 0;
    assert_int_equal(store_claim(ST, wb, "tok_b", 10, CONFIRM_MS, T0 + 2, &cl, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cl[0].run.job_id, jb);
    free_claimed(cl, n);
    assert_int_equal(store_claim(ST, wb, "tok_b", 10, CONFIRM_MS, T0 + 3, &cl, &n), 0);
    assert_int_equal(n, 0);
    free(cl);

    /* A token of several namespaces: its worker claims from each. */
    char wab[SKED_ID_LEN], ja2[SKED_ID_LEN], jb2[SKED_ID_LEN], jc[SKED_ID_LEN];
    new_job_ns(ST, "in-a-2", "team-a", T0 + 4, ja2);
    new_job_ns(ST, "in-b-2", "team-b", T0 + 5, jb2);
    new_job_ns(ST, "in-c", "team-c", T0 + 6, jc);
    new_worker_owned(ST, "wab", "tok_ab", "team-a,team-b", T0, wab);
    assert_int_equal(store_claim(ST, wab, "tok_ab", 10, CONFIRM_MS, T0 + 7, &cl, &n), 0);
    assert_int_equal(n, 3); /* in-a, in-a-2, in-b-2; never in-c */
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(cl[i].run.job_id, jc);
    free_claimed(cl, n);
}

/* A worker registered before workers had owners is adopted by the first
 * worker token that speaks for it; another token is then refused. Until
 * then anyone may act for it, as before the upgrade. */
static void test_legacy_worker_adopted(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker_owned(ST, "legacy", "", "", T0, wid);
    new_job(ST, "legacy-job", 0, NULL, true, T0, jid);
    store_claimed_t *cl = NULL;
    size_t n = 0;
    assert_int_equal(store_claim(ST, wid, "tok_first", 1, CONFIRM_MS, T0 + 1, &cl, &n), 0);
    assert_int_equal(n, 1);
    store_held_t h = {cl[0].run.id, cl[0].run.fence, true, false, NULL};
    assert_int_equal(store_heartbeat(ST, wid, "tok_other", &h, 1, LEASE_MS, T0 + 2, NULL),
                     SKED_EFORBID);
    assert_int_equal(store_heartbeat(ST, wid, "tok_first", &h, 1, LEASE_MS, T0 + 3, NULL), 0);
    assert_true(h.keep);
    free_claimed(cl, n);
}

static size_t list_misses(store_t *st, const char *jid, int64_t at, store_miss_t **m)
{
    store_miss_filter_t f = {jid, at, NULL, 100};
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_miss_list(st, &f, m, &n, &next), 0);
    assert_null(next);
    return n;
}

static void free_misses(store_miss_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_miss_clear(&m[i]);
    free(m);
}

/* The missed-fire ledger: a stretch is one row; a stretch that goes on in a
 * later advance (prev = the last fire time recorded) extends it; a lost CAS
 * records nothing; "why not at T?" finds the row covering T; paging and
 * retention work. */
static void test_miss_ledger(void **state)
{
    char jid[SKED_ID_LEN], sid[SKED_ID_LEN];
    job_with_schedule(ST, "missed", T0, jid, sid);
    const char *why = "misfire: skip (the server was down)";
    store_fire_t it = {sid, T0, T0 + 1000 * 1000, NULL, 0, {T0, T0 + 999 * 1000, 1000, -1, why}, 0};
    assert_int_equal(store_fire(ST, &it, 1, T0 + 5000 * 1000), 0);
    assert_int_equal(it.applied, 1);
    /* The same advance again (another server's): the CAS fails, no row. */
    assert_int_equal(store_fire(ST, &it, 1, T0 + 5000 * 1000), 0);
    assert_int_equal(it.applied, 0);
    store_miss_t *m = NULL;
    assert_int_equal(list_misses(ST, jid, INT64_MIN, &m), 1);
    assert_int_equal(m[0].count, 1000);
    free_misses(m, 1);

    /* The next pass goes on: the entry grows, no new row. The run after
     * the stretch is a real run. */
    store_fire_run_t run[] = {{T0 + 2000 * 1000, T0 + 2000 * 1000, RUN_SCHEDULED, NULL}};
    store_fire_t it2 = {sid,
                        T0 + 1000 * 1000,
                        T0 + 2001 * 1000,
                        run,
                        1,
                        {T0 + 1000 * 1000, T0 + 1999 * 1000, 1000, T0 + 999 * 1000, why},
                        0};
    assert_int_equal(store_fire(ST, &it2, 1, T0 + 5000 * 1000), 0);
    assert_int_equal(it2.applied, 1);
    assert_int_equal(list_misses(ST, jid, INT64_MIN, &m), 1);
    assert_string_equal(m[0].job_id, jid);
    assert_string_equal(m[0].schedule_id, sid);
    assert_int_equal(m[0].first_ms, T0);
    assert_int_equal(m[0].last_ms, T0 + 1999 * 1000);
    assert_int_equal(m[0].count, 2000);
    assert_string_equal(m[0].reason, why);
    free_misses(m, 1);
    assert_int_equal(count_runs(ST, jid, NULL), 1);

    /* A later stretch that does not continue it (a run came between) is a
     * new row; "why not at T?" picks the row covering T. */
    store_fire_t it3 = {sid, T0 + 2001 * 1000,
                        -1,  NULL,
                        0,   {T0 + 2001 * 1000, T0 + 2100 * 1000, 100, T0 + 2000 * 1000, why},
                        0};
    assert_int_equal(store_fire(ST, &it3, 1, T0 + 5000 * 1000), 0);
    assert_int_equal(list_misses(ST, jid, INT64_MIN, &m), 2);
    assert_int_equal(m[0].first_ms, T0 + 2001 * 1000); /* the latest first */
    free_misses(m, 2);
    assert_int_equal(list_misses(ST, jid, T0 + 1500 * 1000, &m), 1);
    assert_int_equal(m[0].first_ms, T0);
    free_misses(m, 1);
    assert_int_equal(list_misses(ST, jid, T0 + 2000 * 1000, &m), 0); /* that one ran */
    free(m);

    /* Paging: one per page. */
    store_miss_filter_t f = {jid, INT64_MIN, NULL, 1};
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_miss_list(ST, &f, &m, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_non_null(next);
    free_misses(m, n);
    f.cursor = next;
    char *next2 = NULL;
    assert_int_equal(store_miss_list(ST, &f, &m, &n, &next2), 0);
    assert_int_equal(n, 1);
    assert_int_equal(m[0].first_ms, T0);
    assert_null(next2);
    free_misses(m, n);
    free(next);
    f.cursor = "garbage";
    assert_int_equal(store_miss_list(ST, &f, &m, &n, &next), SKED_EINVAL);

    /* Retention drops entries whose stretch ended before the horizon. */
    assert_true(store_prune(ST, T0 + 2050 * 1000) >= 0);
    assert_int_equal(list_misses(ST, jid, INT64_MIN, &m), 1);
    assert_int_equal(m[0].first_ms, T0 + 2001 * 1000);
    free_misses(m, 1);
}

/* Which job states' runs a claim takes: active and done (a job with no
 * more fire times still runs what it has), never paused or deleted. The
 * two backends once disagreed on done (issue 8). */
static void test_claimable_per_job_state(void **state)
{
    static const struct {
        job_state_t js;
        bool claimable;
    } cases[] = {{JOB_ACTIVE, true}, {JOB_DONE, true}, {JOB_PAUSED, false}, {JOB_DELETED, false}};
    char wid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char jid[SKED_ID_LEN], name[32];
        snprintf(name, sizeof name, "state-%zu", i);
        new_job(ST, name, 0, NULL, true, T0, jid);
        if (cases[i].js != JOB_ACTIVE)
            assert_int_equal(store_job_set_state(ST, jid, cases[i].js, NULL, T0 + 1), 0);
        size_t n;
        store_claimed_t *cl = claim(ST, wid, 10, T0 + 2, &n);
        assert_int_equal(n, cases[i].claimable ? 1 : 0);
        if (n) assert_string_equal(cl[0].run.job_id, jid);
        free_claimed(cl, n);
    }
}

/* 5,000 due runs that no worker's labels match stand ahead of one that
 * matches: the claim still finds it (the scan filters on constraints; it
 * once gave up after a window of 4,096 passed-over candidates). */
static void test_claim_past_unmatched_backlog(void **state)
{
    enum { BACKLOG = 5000 };
    store_job_t j;
    mkjob(&j, "needs-gpu");
    free(j.constraints);
    j.constraints = xstrdup("gpu=1");
    store_schedule_t sc = {0};
    sc.kind = SCHEDULE_EVERY;
    sc.expr = xstrdup("1s");
    sc.next_fire_ms = T0;
    assert_int_equal(store_job_create(ST, &j, &sc, 1, false, NULL, NULL, T0 - 1000), 0);
    store_fire_run_t *runs = xcalloc(BACKLOG, sizeof *runs);
    for (int i = 0; i < BACKLOG; i++)
        runs[i] = (store_fire_run_t){T0 + i, T0 + i, RUN_SCHEDULED, NULL};
    store_fire_t it = {sc.id, T0, T0 + BACKLOG, runs, BACKLOG, {0}, 0};
    assert_int_equal(store_fire(ST, &it, 1, T0), 0);
    assert_int_equal(it.applied, 1);
    char wid[SKED_ID_LEN], plain[SKED_ID_LEN];
    new_worker(ST, "no-gpu", "default", "", T0, wid);
    new_job(ST, "plain", 0, NULL, true, T0 + BACKLOG + 1, plain);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0 + BACKLOG + 2, &n);
    assert_int_equal(n, 1);
    assert_string_equal(cl[0].run.job_id, plain);
    free_claimed(cl, n);
    free(runs);
    store_schedule_clear(&sc);
    store_job_clear(&j);
}

/* ---- plugin types: the registry and claim routing (issue 11) ------------- */

/* A plugin type as a worker advertises it (the caller clears it). */
static store_plugin_type_t mkplugin(const char *type, const char *version, const char *schema)
{
    store_plugin_type_t p = {0};
    snprintf(p.type, sizeof p.type, "%s", type);
    p.version = xstrdup(version);
    p.abi = 1;
    p.schema_json = xstrdup(schema);
    return p;
}

/* Registers a worker of the default queue running the plugin types of
 * `types` (",a,b,") and advertising plugins. */
static void new_typed_worker(store_t *st, const char *name, const char *types,
                             store_plugin_type_t *plugins, size_t n, int64_t now,
                             char id[SKED_ID_LEN])
{
    store_worker_t w = {0};
    w.name = xstrdup(name);
    w.host = xstrdup("localhost");
    w.queues = xstrdup("default");
    w.labels = xstrdup("");
    w.types = xstrdup(types);
    w.slots = 4;
    w.plugins = n ? xcalloc(n, sizeof *w.plugins) : NULL;
    for (size_t i = 0; i < n; i++) {
        w.plugins[i] = plugins[i];
        w.plugins[i].version = xstrdup(plugins[i].version);
        w.plugins[i].schema_json = xstrdup(plugins[i].schema_json);
    }
    w.nplugins = n;
    assert_int_equal(store_worker_register(st, &w, NULL, now), 0);
    memcpy(id, w.id, SKED_ID_LEN);
    store_worker_clear(&w);
}

/* A job of type `type` with a run now. */
static void new_typed_job(store_t *st, const char *name, const char *type, int64_t now,
                          char id[SKED_ID_LEN])
{
    store_job_t j;
    mkjob(&j, name);
    j.type = xstrdup(type);
    assert_int_equal(store_job_create(st, &j, NULL, 0, true, NULL, NULL, now), 0);
    memcpy(id, j.id, SKED_ID_LEN);
    store_job_clear(&j);
}

/* Registration upserts the types a worker advertises: a new type is
 * inserted, a newer version replaces (numbers compare as numbers), an
 * older one only refreshes seen_ms; store_plugin_upsert does the same for
 * a server's own plugin dir. The worker's types are read back. */
static void test_plugin_registry(void **state)
{
    char w1[SKED_ID_LEN], w2[SKED_ID_LEN], w3[SKED_ID_LEN];
    store_plugin_type_t p[2] = {mkplugin("noop", "1.9.0", "{\"type\":\"object\"}"),
                                mkplugin("sql", "0.1.0", "true")};
    new_typed_worker(ST, "w1", ",noop,sql,", p, 2, T0, w1);
    store_plugin_type_t got;
    assert_int_equal(store_plugin_get(ST, "noop", &got), 0);
    assert_string_equal(got.type, "noop");
    assert_string_equal(got.version, "1.9.0");
    assert_int_equal(got.abi, 1);
    assert_string_equal(got.schema_json, "{\"type\":\"object\"}");
    assert_int_equal(got.first_seen_ms, T0);
    assert_int_equal(got.seen_ms, T0);
    store_plugin_type_clear(&got);
    assert_int_equal(store_plugin_get(ST, "nope", &got), SKED_ENOTFOUND);
    store_plugin_type_clear(&got);

    /* 1.10.0 is newer than 1.9.0: it wins, with its schema. */
    store_plugin_type_t newer =
        mkplugin("noop", "1.10.0", "{\"type\":\"object\",\"required\":[\"x\"]}");
    new_typed_worker(ST, "w2", ",noop,", &newer, 1, T0 + 10, w2);
    /* An older one seen later refreshes seen_ms only. */
    store_plugin_type_t older = mkplugin("noop", "1.2.0", "false");
    new_typed_worker(ST, "w3", ",noop,", &older, 1, T0 + 20, w3);
    assert_int_equal(store_plugin_get(ST, "noop", &got), 0);
    assert_string_equal(got.version, "1.10.0");
    assert_string_equal(got.schema_json, "{\"type\":\"object\",\"required\":[\"x\"]}");
    assert_int_equal(got.first_seen_ms, T0);
    assert_int_equal(got.seen_ms, T0 + 20);
    store_plugin_type_clear(&got);

    /* A server's plugin dir: the same upsert. */
    store_plugin_type_t mine = mkplugin("checksum", "2.0.0", "true");
    assert_int_equal(store_plugin_upsert(ST, &mine, 1, T0 + 30), 0);
    store_plugin_type_t *v = NULL;
    size_t n = 0;
    assert_int_equal(store_plugin_list(ST, &v, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].type, "checksum");
    assert_string_equal(v[1].type, "noop");
    assert_string_equal(v[2].type, "sql");
    assert_string_equal(v[2].version, "0.1.0");
    for (size_t i = 0; i < n; i++)
        store_plugin_type_clear(&v[i]);
    free(v);

    store_worker_t w;
    assert_int_equal(store_worker_get(ST, w1, &w), 0);
    assert_string_equal(w.types, ",noop,sql,");
    store_worker_clear(&w);
    /* Restarted (its row reused): the types are what it advertises now. */
    char again[SKED_ID_LEN];
    assert_int_equal(store_worker_drain(ST, w1, NULL, NULL, T0 + 40), 0);
    new_typed_worker(ST, "w1", ",sql,", &p[1], 1, T0 + 41, again);
    assert_string_equal(again, w1);
    assert_int_equal(store_worker_get(ST, w1, &w), 0);
    assert_string_equal(w.types, ",sql,");
    store_worker_clear(&w);
    char plain[SKED_ID_LEN];
    new_worker(ST, "plain", "default", "", T0, plain);
    assert_int_equal(store_worker_get(ST, plain, &w), 0);
    assert_string_equal(w.types, "");
    store_worker_clear(&w);

    store_plugin_type_clear(&p[0]);
    store_plugin_type_clear(&p[1]);
    store_plugin_type_clear(&newer);
    store_plugin_type_clear(&older);
    store_plugin_type_clear(&mine);
}

/* A run of a plugin type goes only to a worker that advertised the type;
 * shell and http runs go to any worker; a backlog of a type no worker has
 * does not stand in the way of the runs behind it. A job whose type
 * changes is routed by its new type. */
static void test_claim_routing_by_type(void **state)
{
    char plain[SKED_ID_LEN], typed[SKED_ID_LEN], noop[SKED_ID_LEN], sh[SKED_ID_LEN];
    char http[SKED_ID_LEN], other[SKED_ID_LEN], rid[SKED_ID_LEN];
    store_plugin_type_t p = mkplugin("noop", "1.0.0", "true");
    new_worker(ST, "plain", "default", "", T0, plain);
    /* "noo" must not match "noop" (types are matched whole). */
    new_typed_worker(ST, "typed", ",sql,noop,", &p, 1, T0, typed);
    new_typed_job(ST, "noop-job", "noop", T0, noop);
    new_typed_job(ST, "noo-job", "noo", T0, other);

    size_t n;
    store_claimed_t *cl = claim(ST, plain, 10, T0 + 1, &n);
    assert_int_equal(n, 0); /* the plain worker has neither type */
    free_claimed(cl, n);
    new_typed_job(ST, "shell-job", "shell", T0 + 2, sh);
    new_typed_job(ST, "http-job", "http", T0 + 2, http);
    cl = claim(ST, plain, 10, T0 + 3, &n);
    assert_int_equal(n, 2); /* past the noop backlog: shell and http */
    for (size_t i = 0; i < n; i++)
        assert_true(!strcmp(cl[i].run.job_id, sh) || !strcmp(cl[i].run.job_id, http));
    free_claimed(cl, n);

    cl = claim(ST, typed, 10, T0 + 4, &n);
    assert_int_equal(n, 1);
    assert_string_equal(cl[0].run.job_id, noop);
    free_claimed(cl, n);
    only_run(ST, other, rid);
    assert_int_equal(run_state(ST, rid), RUN_PENDING); /* nobody has "noo" */

    /* The job becomes a shell job: now anyone may run it. */
    store_job_t j;
    store_schedule_t *sc = NULL;
    size_t nsc = 0;
    assert_int_equal(store_job_get(ST, other, &j, &sc, &nsc), 0);
    assert_string_equal(j.type, "noo");
    free(j.type);
    j.type = xstrdup("shell");
    assert_int_equal(store_job_update(ST, &j, 0, NULL, 0, NULL, T0 + 5), 0);
    store_job_clear(&j);
    for (size_t i = 0; i < nsc; i++)
        store_schedule_clear(&sc[i]);
    free(sc);
    cl = claim(ST, plain, 10, T0 + 6, &n);
    assert_int_equal(n, 1);
    assert_string_equal(cl[0].run.job_id, other);
    free_claimed(cl, n);
    store_plugin_type_clear(&p);
}

/* ---- the run state machine is enforced ---------------------------------- */

struct snap {
    char (*id)[SKED_ID_LEN];
    run_state_t *state;
    size_t n;
};

static struct snap snapshot(store_t *st)
{
    struct snap sn = {NULL, NULL, 0};
    char *cursor = NULL;
    do {
        store_run_filter_t f = {NULL, NULL, INT64_MIN, INT64_MAX, cursor, 1000};
        store_run_t *v = NULL;
        size_t n = 0;
        char *next = NULL;
        assert_int_equal(store_run_list(st, &f, &v, &n, &next), 0);
        sn.id = xrealloc(sn.id, (sn.n + n + 1) * sizeof *sn.id);
        sn.state = xrealloc(sn.state, (sn.n + n + 1) * sizeof *sn.state);
        for (size_t i = 0; i < n; i++) {
            memcpy(sn.id[sn.n], v[i].id, SKED_ID_LEN);
            sn.state[sn.n++] = v[i].state;
            store_run_clear(&v[i]);
        }
        free(v);
        free(cursor);
        cursor = next;
    } while (cursor);
    return sn;
}

/* Every run whose state differs between before and now moved along an
 * edge of the lifecycle (run_transition_ok); new runs start scheduled,
 * pending or skipped. Frees before; returns now's snapshot. Counts the
 * changes seen in *moves. */
static struct snap check_moves(store_t *st, struct snap before, const char *step, int *moves)
{
    struct snap now = snapshot(st);
    for (size_t i = 0; i < now.n; i++) {
        size_t j = 0;
        while (j < before.n && strcmp(before.id[j], now.id[i]) != 0)
            j++;
        if (j == before.n) {
            if (now.state[i] != RUN_SCHEDULED && now.state[i] != RUN_PENDING &&
                now.state[i] != RUN_SKIPPED)
                fail_msg("%s: run %s was born %s", step, now.id[i], run_state_name(now.state[i]));
            continue;
        }
        if (before.state[j] == now.state[i]) continue;
        (*moves)++;
        if (!run_transition_ok(before.state[j], now.state[i]))
            fail_msg("%s: run %s moved %s -> %s, not an edge of the lifecycle", step, now.id[i],
                     run_state_name(before.state[j]), run_state_name(now.state[i]));
    }
    free(before.id);
    free(before.state);
    return now;
}

/* One scripted life of jobs through every verb that changes runs, on
 * either backend; after each step, every state change must be an edge of
 * the run state machine (issue 8, point 3). */
static void test_state_machine_enforced(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], sid[SKED_ID_LEN], rid[SKED_ID_LEN];
    int moves = 0;
    new_worker(ST, "w", "default", "", T0, wid);
    struct snap sn = snapshot(ST);

    /* Fire: three runs, a missed stretch before them. */
    job_with_schedule(ST, "life", T0, jid, sid);
    store_fire_run_t fr[] = {{T0 + 3000, T0 + 3000, RUN_SCHEDULED, NULL},
                             {T0 + 4000, T0 + 4000, RUN_SCHEDULED, NULL},
                             {T0 + 5000, T0 + 5000, RUN_SCHEDULED, NULL}};
    store_fire_t it = {sid, T0, T0 + 6000, fr, 3, {T0, T0 + 2000, 3, -1, "misfire: skip"}, 0};
    assert_int_equal(store_fire(ST, &it, 1, T0 + 5000), 0);
    sn = check_moves(ST, sn, "fire", &moves);

    /* Claim, confirm, fail with a retry left, claim again, succeed. */
    store_job_t j;
    assert_int_equal(store_job_get(ST, jid, &j, NULL, NULL), 0);
    store_job_clear(&j);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0 + 5000, &n);
    assert_int_equal(n, 1);
    sn = check_moves(ST, sn, "claim", &moves);
    confirm(ST, wid, &cl[0], T0 + 5001);
    assert_int_equal(
        store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &RES_FAIL, T0 + 5002), 0);
    sn = check_moves(ST, sn, "complete failed", &moves);
    free_claimed(cl, n);

    /* Unconfirmed and reaped: undone. A refusal: undone. */
    cl = claim(ST, wid, 1, T0 + 5003, &n);
    assert_int_equal(n, 1);
    sn = check_moves(ST, sn, "claim", &moves);
    assert_true(store_reap(ST, 0, INT64_C(1) << 50, T0 + 5003 + LEASE_MS + 1) >= 1);
    sn = check_moves(ST, sn, "reap unconfirmed", &moves);
    free_claimed(cl, n);
    cl = claim(ST, wid, 1, T0 + 5003 + LEASE_MS + 2, &n);
    assert_int_equal(n, 1);
    sn = check_moves(ST, sn, "claim", &moves);
    store_result_t refused = {ATTEMPT_NOT_STARTED, -1, 0, "refused", NULL, NULL};
    assert_int_equal(store_complete(ST, cl[0].run.id, cl[0].run.attempt, cl[0].run.fence, NULL,
                                    &refused, T0 + LEASE_MS + 6000),
                     0);
    sn = check_moves(ST, sn, "not started", &moves);
    free_claimed(cl, n);

    /* Confirmed and lost; then success. */
    int64_t t = T0 + 2 * LEASE_MS;
    cl = claim(ST, wid, 1, t, &n);
    assert_int_equal(n, 1);
    sn = check_moves(ST, sn, "claim", &moves);
    confirm(ST, wid, &cl[0], t + 1);
    assert_true(store_reap(ST, 0, INT64_C(1) << 50, t + 2 + LEASE_MS) >= 1);
    sn = check_moves(ST, sn, "reap lost", &moves);
    free_claimed(cl, n);

    /* Pause and resume hold and release the waiting runs; cancel one. */
    assert_int_equal(store_job_set_state(ST, jid, JOB_PAUSED, NULL, t + LEASE_MS + 3), 0);
    sn = check_moves(ST, sn, "pause", &moves);
    assert_int_equal(store_job_set_state(ST, jid, JOB_ACTIVE, NULL, t + LEASE_MS + 4), 0);
    sn = check_moves(ST, sn, "resume", &moves);
    assert_int_equal(store_run_trigger(ST, jid, NULL, t + LEASE_MS + 5, rid), 0);
    sn = check_moves(ST, sn, "trigger", &moves);
    assert_int_equal(store_run_cancel(ST, rid, NULL, NULL, t + LEASE_MS + 6), 0);
    sn = check_moves(ST, sn, "cancel", &moves);

    /* A running run when the job is deleted: cancel asked, then reported. */
    cl = claim(ST, wid, 1, t + 3 * LEASE_MS, &n);
    assert_int_equal(n, 1);
    confirm(ST, wid, &cl[0], t + 3 * LEASE_MS + 1);
    sn = check_moves(ST, sn, "claim", &moves);
    assert_int_equal(store_job_set_state(ST, jid, JOB_DELETED, NULL, t + 3 * LEASE_MS + 2), 0);
    sn = check_moves(ST, sn, "delete", &moves);
    store_result_t canceled = {ATTEMPT_CANCELED, -1, 15, NULL, NULL, NULL};
    assert_int_equal(store_complete(ST, cl[0].run.id, cl[0].run.attempt, cl[0].run.fence, NULL,
                                    &canceled, t + 3 * LEASE_MS + 3),
                     0);
    sn = check_moves(ST, sn, "complete canceled", &moves);
    free_claimed(cl, n);

    /* Overlap forbid: the second due run is skipped at claim time. */
    store_job_t o;
    mkjob(&o, "no-overlap");
    o.overlap = OVERLAP_FORBID;
    assert_int_equal(store_job_create(ST, &o, NULL, 0, true, NULL, NULL, t + 4 * LEASE_MS), 0);
    assert_int_equal(store_run_trigger(ST, o.id, NULL, t + 4 * LEASE_MS + 1, rid), 0);
    sn = check_moves(ST, sn, "create", &moves);
    cl = claim(ST, wid, 2, t + 4 * LEASE_MS + 2, &n);
    assert_int_equal(n, 1);
    sn = check_moves(ST, sn, "claim with overlap forbid", &moves);
    assert_int_equal(run_state(ST, rid), RUN_SKIPPED);
    free_claimed(cl, n);
    store_job_clear(&o);

    assert_true(moves >= 12); /* the script did move runs around */
    free(sn.id);
    free(sn.state);
}

/* Readiness probes a real write, at most once a second: a second call
 * within the second answers from the first without writing again. */
static void test_ready_probes_a_write(void **state)
{
    assert_int_equal(store_ready(ST), 0);
    assert_int_equal(store_ready(ST), 0);
    assert_int_equal(store_ping(ST), 0);
}

/* ---- the maintained counts (GET /metrics) ------------------------------------------ */

/* What the counts must say, found the slow way: every run and every worker
 * read through the public API. Terminal states are counters, so the runs
 * pruned so far (pruned_terminal[state]) are added back; gone workers are
 * not listed, so the test says how many there are. */
struct truth {
    char queue[8][32];
    int64_t n[8][RUN_STATE_COUNT];
    size_t nq;
    store_worker_count_t workers[WORKER_GONE + 1];
};

static size_t truth_queue(struct truth *t, const char *q)
{
    for (size_t i = 0; i < t->nq; i++)
        if (strcmp(t->queue[i], q) == 0) return i;
    assert_true(t->nq < 8);
    snprintf(t->queue[t->nq], sizeof t->queue[0], "%s", q);
    return t->nq++;
}

static void truth_scan(store_t *st, struct truth *t, const int64_t *pruned_terminal,
                       const char *pruned_queue, int64_t gone_workers, int64_t gone_slots)
{
    memset(t, 0, sizeof *t);
    char *cursor = NULL;
    do {
        store_run_filter_t f = {NULL, NULL, INT64_MIN, INT64_MAX, cursor, 1000};
        store_run_t *v;
        size_t n;
        char *next;
        assert_int_equal(store_run_list(st, &f, &v, &n, &next), 0);
        for (size_t i = 0; i < n; i++) {
            t->n[truth_queue(t, v[i].queue)][v[i].state]++;
            store_run_clear(&v[i]);
        }
        free(v);
        free(cursor);
        cursor = next;
    } while (cursor);
    if (pruned_queue)
        for (int s = RUN_SUCCEEDED; s < RUN_STATE_COUNT; s++)
            t->n[truth_queue(t, pruned_queue)][s] += pruned_terminal[s];
    store_worker_t *w;
    size_t n;
    char *next = NULL;
    assert_int_equal(store_worker_list(st, NULL, 1000, &w, &n, &next), 0);
    assert_null(next);
    for (size_t i = 0; i < n; i++) {
        t->workers[w[i].state].workers++;
        t->workers[w[i].state].slots += w[i].slots;
        t->workers[w[i].state].busy += w[i].running;
        store_worker_clear(&w[i]);
    }
    free(w);
    t->workers[WORKER_GONE].workers += gone_workers;
    t->workers[WORKER_GONE].slots += gone_slots;
}

/* store_counts equals the scan, pair by pair (a pair the counts list with
 * 0 and the scan lacks is fine: a queue once used keeps its rows). */
static void counts_match(store_t *st, const char *step, const int64_t *pruned_terminal,
                         const char *pruned_queue, int64_t gone_workers, int64_t gone_slots)
{
    struct truth t;
    truth_scan(st, &t, pruned_terminal, pruned_queue, gone_workers, gone_slots);
    store_counts_t c;
    assert_int_equal(store_counts(st, &c), 0);
    int64_t seen[8][RUN_STATE_COUNT] = {{0}};
    for (size_t i = 0; i < c.nruns; i++) {
        size_t q = truth_queue(&t, c.runs[i].queue);
        if (i > 0) /* byte order of queues, then states */
            assert_true(strcmp(c.runs[i - 1].queue, c.runs[i].queue) < 0 ||
                        (strcmp(c.runs[i - 1].queue, c.runs[i].queue) == 0 &&
                         c.runs[i - 1].state < c.runs[i].state));
        seen[q][c.runs[i].state] = c.runs[i].n;
    }
    for (size_t q = 0; q < t.nq; q++)
        for (int s = 0; s < RUN_STATE_COUNT; s++)
            if (seen[q][s] != t.n[q][s])
                fail_msg("%s: runs of queue %s in state %s: counted %lld, there are %lld", step,
                         t.queue[q], run_state_name((run_state_t)s), (long long)seen[q][s],
                         (long long)t.n[q][s]);
    for (int s = 0; s <= WORKER_GONE; s++) {
        const store_worker_count_t *a = &c.workers[s], *b = &t.workers[s];
        if (a->workers != b->workers || a->slots != b->slots || a->busy != b->busy)
            fail_msg("%s: %s workers: counted %lld workers, %lld slots, %lld busy; there are "
                     "%lld, %lld, %lld",
                     step, worker_state_name((worker_state_t)s), (long long)a->workers,
                     (long long)a->slots, (long long)a->busy, (long long)b->workers,
                     (long long)b->slots, (long long)b->busy);
    }
    store_counts_clear(&c);
}

/* The counts of one (queue, state), 0 when absent. */
static int64_t counted(store_t *st, const char *queue, run_state_t state)
{
    store_counts_t c;
    int64_t n = 0;
    assert_int_equal(store_counts(st, &c), 0);
    for (size_t i = 0; i < c.nruns; i++)
        if (strcmp(c.runs[i].queue, queue) == 0 && c.runs[i].state == state) n = c.runs[i].n;
    store_counts_clear(&c);
    return n;
}

/* Every change of a run or a worker moves the counts in its own
 * transaction: submit, fire (with a misfire), claim, overlap skip,
 * complete, retry, cancel, a queue change, drain with a run held, the
 * reaper (lost worker, expired lease), a lost worker coming back,
 * deregistration, deletion of a job and pruning. */
static void test_counts_follow_every_change(void **state)
{
    int64_t pruned[RUN_STATE_COUNT] = {0};
    char w1[SKED_ID_LEN], w2[SKED_ID_LEN], a[SKED_ID_LEN], b[SKED_ID_LEN];
    uint64_t overlap_before = prom_get(&store_stats()->overlap_skips);
    counts_match(ST, "empty", pruned, NULL, 0, 0);

    new_worker(ST, "w1", "default,q2", "", T0, w1); /* 4 slots each */
    new_worker(ST, "w2", "q2", "", T0, w2);
    new_job(ST, "a", 0, NULL, true, T0, a);
    store_job_t f;
    mkjob(&f, "b");
    free(f.queue);
    f.queue = xstrdup("q2");
    f.retry = (retry_policy_t){3, 1000, 1000, 2.0, false};
    assert_int_equal(store_job_create(ST, &f, NULL, 0, true, NULL, NULL, T0), 0);
    memcpy(b, f.id, SKED_ID_LEN);
    store_job_clear(&f);
    mkjob(&f, "forbid");
    f.overlap = OVERLAP_FORBID;
    assert_int_equal(store_job_create(ST, &f, NULL, 0, true, NULL, NULL, T0), 0);
    counts_match(ST, "submitted", pruned, NULL, 0, 0);
    assert_int_equal(counted(ST, "default", RUN_PENDING), 2);
    assert_int_equal(counted(ST, "q2", RUN_PENDING), 1);

    /* A fire with one run and one misfire skipped. */
    char sj[SKED_ID_LEN], sid[SKED_ID_LEN];
    job_with_schedule(ST, "sched", T0, sj, sid);
    store_fire_run_t runs[2] = {{T0 - 5000, T0 - 5000, RUN_SKIPPED, "misfire"},
                                {T0, T0 + 60000, RUN_SCHEDULED, NULL}};
    store_fire_t item = {sid, T0, T0 + 1000, runs, 2, {0}, 0};
    assert_int_equal(store_fire(ST, &item, 1, T0), 0);
    assert_int_equal(item.applied, 1);
    counts_match(ST, "fired", pruned, NULL, 0, 0);
    assert_int_equal(counted(ST, "default", RUN_SKIPPED), 1);
    assert_int_equal(counted(ST, "default", RUN_SCHEDULED), 1);

    /* Claims: w1 takes the two due runs of default and b's. */
    size_t n1, n2;
    store_claimed_t *c1 = claim(ST, w1, 4, T0 + 1, &n1);
    assert_int_equal(n1, 3);
    counts_match(ST, "claimed", pruned, NULL, 0, 0);
    assert_int_equal(counted(ST, "default", RUN_RUNNING), 2);

    /* Overlap forbid: a second run of f while one runs is skipped at claim. */
    char f2[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, f.id, NULL, T0 + 2, f2), 0);
    store_claimed_t *none = claim(ST, w2, 4, T0 + 3, &n2);
    free(none);
    none = claim(ST, w1, 4, T0 + 3, &n2);
    assert_int_equal(n2, 0);
    free(none);
    assert_int_equal(run_state(ST, f2), RUN_SKIPPED);
    assert_int_equal(prom_get(&store_stats()->overlap_skips) - overlap_before, 1);
    counts_match(ST, "overlap skip", pruned, NULL, 0, 0);

    /* Complete: one succeeds, one fails into a retry, one is canceled. */
    store_job_t aj;
    assert_int_equal(store_job_get(ST, a, &aj, NULL, NULL), 0);
    for (size_t i = 0; i < n1; i++) {
        const store_claimed_t *c = &c1[i];
        confirm(ST, w1, c, T0 + 4);
        if (strcmp(c->run.job_id, a) == 0) {
            assert_int_equal(store_complete(ST, c->run.id, 1, c->run.fence, NULL, &RES_OK, T0 + 5),
                             0);
        } else if (strcmp(c->run.job_id, b) == 0) {
            assert_int_equal(
                store_complete(ST, c->run.id, 1, c->run.fence, NULL, &RES_FAIL, T0 + 5), 0);
            assert_int_equal(run_state(ST, c->run.id), RUN_SCHEDULED); /* a retry */
        }
    }
    store_job_clear(&aj);
    counts_match(ST, "completed", pruned, NULL, 0, 0);
    assert_int_equal(counted(ST, "default", RUN_SUCCEEDED), 1);

    /* A queue change moves b's waiting retry with it. */
    store_job_t bj;
    assert_int_equal(store_job_get(ST, b, &bj, NULL, NULL), 0);
    free(bj.queue);
    bj.queue = xstrdup("q3");
    assert_int_equal(store_job_update(ST, &bj, 0, NULL, 0, NULL, T0 + 6), 0);
    store_job_clear(&bj);
    counts_match(ST, "queue changed", pruned, NULL, 0, 0);
    assert_int_equal(counted(ST, "q3", RUN_SCHEDULED), 1);

    /* Drain w1 while it holds f's run: its busy slot moves with it. */
    assert_int_equal(store_worker_drain(ST, w1, NULL, NULL, T0 + 7), 0);
    counts_match(ST, "drained", pruned, NULL, 0, 0);

    /* The reaper: w2 went silent (lost); w1's lease runs out (f's run is
     * retried or failed); w1 then speaks again and is active. */
    assert_int_equal(store_heartbeat(ST, w1, NULL, NULL, 0, LEASE_MS, T0 + 50000, NULL), 0);
    assert_true(store_reap(ST, 0, 60000, T0 + 61000) >= 1);
    counts_match(ST, "reaped", pruned, NULL, 0, 0);
    assert_int_equal(store_heartbeat(ST, w2, NULL, NULL, 0, LEASE_MS, T0 + 62000, NULL), 0);
    counts_match(ST, "lost worker back", pruned, NULL, 0, 0);

    /* A cancel and a job delete end the rest of default's runs. */
    char extra[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, a, NULL, T0 + 63000, extra), 0);
    assert_int_equal(store_run_cancel(ST, extra, NULL, NULL, T0 + 63001), 0);
    assert_int_equal(store_job_set_state(ST, sj, JOB_DELETED, NULL, T0 + 63002), 0);
    counts_match(ST, "canceled and deleted", pruned, NULL, 0, 0);

    /* A worker going away for good. */
    assert_int_equal(store_worker_deregister(ST, w1, NULL, NULL, T0 + 64000), 0);
    counts_match(ST, "deregistered", pruned, NULL, 1, 4);

    /* Pruning removes finished runs but not what they counted. */
    struct truth before;
    truth_scan(ST, &before, pruned, NULL, 1, 4);
    size_t qd = truth_queue(&before, "default");
    int64_t fin = 0;
    for (int s = RUN_SUCCEEDED; s < RUN_STATE_COUNT; s++)
        fin += before.n[qd][s];
    assert_true(fin >= 4);
    int removed = store_prune(ST, T0 + 10 * 60000);
    assert_true(removed >= 4);
    for (int s = RUN_SUCCEEDED; s < RUN_STATE_COUNT; s++)
        pruned[s] = before.n[qd][s]; /* every default run had finished */
    counts_match(ST, "pruned", pruned, "default", 1, 4);

    free_claimed(c1, n1);
    store_job_clear(&f);
}

struct churn {
    store_t *st;
    char wid[SKED_ID_LEN];
    int done;
};

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    for (int i = 0; i < 200; i++) {
        store_claimed_t *v = NULL;
        size_t n = 0;
        if (store_claim(c->st, c->wid, NULL, 3, LEASE_MS, T0 + 1000, &v, &n) != 0) break;
        for (size_t k = 0; k < n; k++) {
            const store_result_t *res = k % 2 ? &RES_FAIL : &RES_OK;
            store_held_t h = {v[k].run.id, v[k].run.fence, true, false, NULL};
            if (store_heartbeat(c->st, c->wid, NULL, &h, 1, LEASE_MS, T0 + 1001, NULL) == 0 &&
                store_complete(c->st, v[k].run.id, v[k].run.attempt, v[k].run.fence, NULL, res,
                               T0 + 1002) == 0)
                c->done++;
            store_claimed_clear(&v[k]);
        }
        free(v);
        if (n == 0) break;
    }
    return NULL;
}

/* Concurrent claims and completions from two handles (on PostgreSQL, many
 * backends, so many shards of each count) leave the counts exact. */
static void test_counts_concurrent(void **state)
{
    enum { RUNS = 150, THREADS = 4 };
    int64_t pruned[RUN_STATE_COUNT] = {0};
    struct ctx *cx = *state;
    store_t *other = open_ok(cx->url);
    char jid[SKED_ID_LEN];
    store_job_t j;
    mkjob(&j, "churn");
    j.retry = (retry_policy_t){1, 1000, 1000, 2.0, false}; /* a failure is final */
    assert_int_equal(store_job_create(ST, &j, NULL, 0, false, NULL, NULL, T0), 0);
    memcpy(jid, j.id, SKED_ID_LEN);
    store_job_clear(&j);
    for (int i = 0; i < RUNS; i++) {
        char rid[SKED_ID_LEN];
        assert_int_equal(store_run_trigger(ST, jid, NULL, T0 + i, rid), 0);
    }
    struct churn c[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        c[i].st = i % 2 ? other : ST;
        c[i].done = 0;
        new_worker(ST, name, "default", "", T0, c[i].wid);
        assert_int_equal(pthread_create(&th[i], NULL, churn_main, &c[i]), 0);
    }
    int done = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        done += c[i].done;
    }
    assert_int_equal(done, RUNS);
    counts_match(ST, "after the churn", pruned, NULL, 0, 0);
    counts_match(other, "after the churn, the other handle", pruned, NULL, 0, 0);
    assert_int_equal(counted(ST, "default", RUN_SUCCEEDED) + counted(ST, "default", RUN_FAILED),
                     RUNS);
    assert_int_equal(counted(ST, "default", RUN_RUNNING), 0);
    store_close(other);
}

/* Fences are random: not a counter another worker could predict. */
static void test_fences_unguessable(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    int64_t prev = 0;
    int close = 0;
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%d", i);
        new_job(ST, name, 0, NULL, true, T0, jid);
        size_t n;
        store_claimed_t *cl = claim(ST, wid, 1, T0 + i, &n);
        assert_int_equal(n, 1);
        assert_true(cl[0].run.fence > 0);
        int64_t d = cl[0].run.fence - prev;
        if (i && d > -1000000 && d < 1000000) close++;
        prev = cl[0].run.fence;
        free_claimed(cl, n);
    }
    assert_int_equal(close, 0);
}

/* ---- alerts ---------------------------------------------------------------------- */

/* A rule on conds with one webhook channel (secret may be NULL). */
static void mkrule(store_alert_rule_t *r, const char *name, unsigned conds, const char *secret)
{
    memset(r, 0, sizeof *r);
    r->def.name = xstrdup(name);
    r->def.conds = conds;
    r->def.scope_ns = xstrdup("");
    r->def.scope_queue = xstrdup("");
    r->def.scope_job = xstrdup("");
    r->def.scope_tag = xstrdup("");
    r->def.params = alert_params_default();
    r->def.nchannels = 1;
    r->def.channels = xcalloc(1, sizeof *r->def.channels);
    r->def.channels[0].kind = ALERT_CHANNEL_WEBHOOK;
    r->def.channels[0].target = xasprintf("https://hooks.test/%s", name);
    r->def.channels[0].secret = secret ? xstrdup(secret) : NULL;
}

static void new_rule(store_t *st, const char *name, unsigned conds, int64_t now,
                     char id[SKED_ID_LEN])
{
    store_alert_rule_t r;
    mkrule(&r, name, conds, NULL);
    assert_int_equal(store_alert_rule_create(st, &r, NULL, now), 0);
    memcpy(id, r.id, SKED_ID_LEN);
    store_alert_rule_clear(&r);
}

/* Gives job j its own rule on conds (a webhook), as its spec's alerts[0]. */
static void own_rule(store_job_t *j, unsigned conds)
{
    j->nalerts = 1;
    j->alerts = xcalloc(1, sizeof *j->alerts);
    mkrule(&j->alerts[0], "", conds, "s3cret");
}

/* Alerts matching (state, job, cond; -1 / NULL = any), newest first; *out
 * new (free with free_alerts). */
static size_t list_alerts(store_t *st, int st_, const char *job, int cond, store_alert_t **out)
{
    store_alert_filter_t f = {st_, job, cond, NULL, NULL, 1000};
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_alert_list(st, &f, out, &n, &next), 0);
    assert_null(next);
    return n;
}

static void free_alerts(store_alert_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_alert_clear(&v[i]);
    free(v);
}

static size_t count_alerts(store_t *st, int st_, const char *job, int cond)
{
    store_alert_t *v;
    size_t n = list_alerts(st, st_, job, cond, &v);
    free_alerts(v, n);
    return n;
}

/* The notices of an alert for event (-1 = any). */
static size_t notices(store_t *st, const char *alert_id, int event)
{
    store_alert_t a;
    store_alert_delivery_t *d = NULL;
    size_t n = 0, k = 0;
    assert_int_equal(store_alert_get(st, alert_id, &a, &d, &n), 0);
    for (size_t i = 0; i < n; i++) {
        if (event < 0 || (int)d[i].event == event) k++;
        store_alert_delivery_clear(&d[i]);
    }
    free(d);
    store_alert_clear(&a);
    return k;
}

/* The one alert of (job, cond) in state st_; its id into id. */
static void one_alert(store_t *st, int st_, const char *job, int cond, char id[SKED_ID_LEN])
{
    store_alert_t *v;
    size_t n = list_alerts(st, st_, job, cond, &v);
    assert_int_equal(n, 1);
    memcpy(id, v[0].id, SKED_ID_LEN);
    free_alerts(v, n);
}

static int sweep(store_t *st, int64_t now)
{
    int changed = -1;
    assert_int_equal(store_alert_sweep(st, now, &changed), 0);
    return changed;
}

/* Claims and fails (or succeeds) one run of the job's queue at now. */
static void run_once(store_t *st, const char *wid, const store_result_t *res, int64_t now)
{
    size_t n;
    store_claimed_t *cl = claim(st, wid, 1, now, &n);
    assert_int_equal(n, 1);
    assert_int_equal(
        store_complete(st, cl[0].run.id, cl[0].run.attempt, cl[0].run.fence, NULL, res, now + 10),
        0);
    free_claimed(cl, n);
}

static void test_alert_rules_crud(void **state)
{
    store_alert_rule_t r, g, h;
    mkrule(&r, "ops", ALERT_BIT(ALERT_FAILED) | ALERT_BIT(ALERT_BACKLOG), "k1");
    r.def.nchannels = 2;
    r.def.channels = xrealloc(r.def.channels, 2 * sizeof *r.def.channels);
    r.def.channels[1] =
        (alert_channel_spec_t){ALERT_CHANNEL_EMAIL, xstrdup("a@x.org,b@y.org"), NULL};
    free(r.def.scope_queue);
    r.def.scope_queue = xstrdup("etl");
    r.def.params.backlog_depth = 7;
    assert_int_equal(store_alert_rule_create(ST, &r, NULL, T0), 0);
    assert_true(id_valid(r.id));
    assert_int_equal(r.version, 1);

    assert_int_equal(store_alert_rule_get(ST, r.id, &g), 0);
    assert_string_equal(g.def.name, "ops");
    assert_int_equal(g.def.conds, r.def.conds);
    assert_string_equal(g.def.scope_queue, "etl");
    assert_string_equal(g.job_id, "");
    assert_int_equal(g.def.params.backlog_depth, 7);
    assert_int_equal(g.def.nchannels, 2);
    assert_string_equal(g.def.channels[0].secret, "k1");
    assert_int_equal(g.def.channels[1].kind, ALERT_CHANNEL_EMAIL);
    assert_string_equal(g.def.channels[1].target, "a@x.org,b@y.org");
    assert_null(g.def.channels[1].secret);
    store_alert_rule_clear(&g);

    /* Names are unique among global rules. */
    mkrule(&h, "ops", ALERT_BIT(ALERT_FAILED), NULL);
    assert_int_equal(store_alert_rule_create(ST, &h, NULL, T0 + 1), SKED_ECONFLICT);
    store_alert_rule_clear(&h);

    /* Update: a stale version is refused; the definition is replaced,
     * channels and secrets as given. */
    mkrule(&h, "ops-2", ALERT_BIT(ALERT_RETRYING), "k2");
    memcpy(h.id, r.id, SKED_ID_LEN);
    assert_int_equal(store_alert_rule_update(ST, &h, 7, NULL, T0 + 2), SKED_EPRECOND);
    assert_int_equal(store_alert_rule_update(ST, &h, 1, NULL, T0 + 2), 0);
    assert_int_equal(h.version, 2);
    assert_int_equal(store_alert_rule_get(ST, r.id, &g), 0);
    assert_string_equal(g.def.name, "ops-2");
    assert_int_equal(g.def.conds, ALERT_BIT(ALERT_RETRYING));
    assert_int_equal(g.def.nchannels, 1);
    assert_string_equal(g.def.channels[0].secret, "k2");
    assert_int_equal(g.updated_ms, T0 + 2);
    assert_int_equal(g.created_ms, T0);
    store_alert_rule_clear(&g);
    store_alert_rule_clear(&h);

    /* A job's own rules are not global rules. */
    store_job_t j;
    mkjob(&j, "with-rule");
    own_rule(&j, ALERT_BIT(ALERT_FAILED));
    assert_int_equal(store_job_create(ST, &j, NULL, 0, false, NULL, NULL, T0), 0);
    store_job_clear(&j);

    /* List: global rules only, oldest first, paged. */
    char more[SKED_ID_LEN];
    new_rule(ST, "b", ALERT_BIT(ALERT_FAILED), T0 + 3, more);
    new_rule(ST, "c", ALERT_BIT(ALERT_FAILED), T0 + 4, more);
    store_alert_rule_t *v;
    size_t n;
    char *next = NULL;
    assert_int_equal(store_alert_rule_list(ST, NULL, 2, &v, &n, &next), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].def.name, "ops-2");
    assert_string_equal(v[1].def.name, "b");
    assert_int_equal(v[0].def.nchannels, 1);
    assert_non_null(next);
    for (size_t i = 0; i < n; i++)
        store_alert_rule_clear(&v[i]);
    free(v);
    char *cursor = next;
    assert_int_equal(store_alert_rule_list(ST, cursor, 2, &v, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].def.name, "c");
    assert_null(next);
    store_alert_rule_clear(&v[0]);
    free(v);
    free(cursor);
    assert_int_equal(store_alert_rule_list(ST, "garbage", 2, &v, &n, &next), SKED_EINVAL);

    assert_int_equal(store_alert_rule_delete(ST, r.id, NULL, T0 + 5), 0);
    assert_int_equal(store_alert_rule_get(ST, r.id, &g), SKED_ENOTFOUND);
    assert_int_equal(store_alert_rule_delete(ST, r.id, NULL, T0 + 6), SKED_ENOTFOUND);
    store_alert_rule_clear(&r);
}

/* A failed attempt with a retry left opens "retrying"; the run failing
 * for good resolves it and opens "failed", in the completion's own unit;
 * more failures page nobody again; a later success resolves "failed". */
static void test_alert_failed_and_retrying(void **state)
{
    char wid[SKED_ID_LEN], aid[SKED_ID_LEN], rid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "flaky");
    j.retry = (retry_policy_t){2, 1000, 1000, 1.0, false};
    own_rule(&j, ALERT_BIT(ALERT_FAILED) | ALERT_BIT(ALERT_RETRYING));
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);

    run_once(ST, wid, &RES_FAIL, T0);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, j.id, ALERT_RETRYING), 1);
    assert_int_equal(count_alerts(ST, -1, j.id, ALERT_FAILED), 0);
    one_alert(ST, ALERT_OPEN, j.id, ALERT_RETRYING, aid);
    assert_int_equal(notices(ST, aid, ALERT_EV_OPENED), 1);
    store_alert_t a;
    store_alert_delivery_t *d;
    size_t nd;
    assert_int_equal(store_alert_get(ST, aid, &a, &d, &nd), 0);
    assert_string_equal(a.subject, j.id);
    assert_string_equal(a.name, "flaky");
    assert_string_equal(a.ns, "default");
    assert_true(strstr(a.detail, "attempt 1 failed (exit status 3)") != NULL);
    assert_int_equal(a.opened_ms, T0 + 10);
    assert_int_equal(d[0].kind, ALERT_CHANNEL_WEBHOOK);
    assert_string_equal(d[0].target, "https://hooks.test/");
    assert_int_equal(d[0].state, DELIVERY_PENDING);
    assert_int_equal(d[0].due_ms, T0 + 10);
    memcpy(rid, a.run_id, SKED_ID_LEN);
    store_alert_delivery_clear(&d[0]);
    free(d);
    store_alert_clear(&a);

    run_once(ST, wid, &RES_FAIL, T0 + 2000);
    assert_int_equal(run_state(ST, rid), RUN_FAILED);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, j.id, ALERT_RETRYING), 0);
    assert_int_equal(notices(ST, aid, ALERT_EV_RESOLVED), 1);
    one_alert(ST, ALERT_OPEN, j.id, ALERT_FAILED, aid);
    assert_int_equal(notices(ST, aid, ALERT_EV_OPENED), 1);

    /* Another run fails for good: the failure is still open, nothing new. */
    char r2[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 3000, r2), 0);
    run_once(ST, wid, &RES_FAIL, T0 + 3000);
    run_once(ST, wid, &RES_FAIL, T0 + 5000);
    assert_int_equal(count_alerts(ST, -1, j.id, ALERT_FAILED), 1);
    assert_int_equal(notices(ST, aid, -1), 1);
    /* ... and its retry alert came and went again. */
    assert_int_equal(count_alerts(ST, ALERT_RESOLVED, j.id, ALERT_RETRYING), 2);

    /* A success resolves the failure, with its notice. */
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 6000, r2), 0);
    run_once(ST, wid, &RES_OK, T0 + 6000);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, NULL, -1), 0);
    assert_int_equal(store_alert_get(ST, aid, &a, NULL, NULL), 0);
    assert_int_equal(a.state, ALERT_RESOLVED);
    assert_int_equal(a.resolved_ms, T0 + 6010);
    assert_true(strstr(a.resolve_detail, "succeeded") != NULL);
    store_alert_clear(&a);
    assert_int_equal(notices(ST, aid, ALERT_EV_RESOLVED), 1);

    /* The job's count went back to 0: a failure opens a new alert. */
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 7000, r2), 0);
    run_once(ST, wid, &RES_FAIL, T0 + 7000);
    run_once(ST, wid, &RES_FAIL, T0 + 9000);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, j.id, ALERT_FAILED), 1);
    assert_int_equal(count_alerts(ST, -1, j.id, ALERT_FAILED), 2);
    store_job_clear(&j);
}

/* Global rules apply by scope; a job outside it pages nobody. The reaper's
 * failures (a lost lease) count as failures too. */
static void test_alert_global_scope(void **state)
{
    char wid[SKED_ID_LEN], in_id[SKED_ID_LEN], out_id[SKED_ID_LEN];
    new_worker(ST, "w", "etl,web", "", T0, wid);
    store_alert_rule_t r;
    mkrule(&r, "etl-failures", ALERT_BIT(ALERT_FAILED), NULL);
    free(r.def.scope_queue);
    r.def.scope_queue = xstrdup("etl");
    free(r.def.scope_tag);
    r.def.scope_tag = xstrdup("nightly");
    assert_int_equal(store_alert_rule_create(ST, &r, NULL, T0), 0);

    store_job_t j;
    mkjob(&j, "in-scope");
    free(j.queue);
    j.queue = xstrdup("etl");
    free(j.tags);
    j.tags = xstrdup(",nightly,x,");
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    memcpy(in_id, j.id, SKED_ID_LEN);
    store_job_clear(&j);
    mkjob(&j, "wrong-tag");
    free(j.queue);
    j.queue = xstrdup("etl");
    free(j.tags);
    j.tags = xstrdup(",nightlyish,");
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    memcpy(out_id, j.id, SKED_ID_LEN);
    store_job_clear(&j);

    /* Both fail, one by its worker's report, one by a lost lease. */
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 2, T0, &n);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        confirm(ST, wid, &cl[i], T0 + 1);
        if (!strcmp(cl[i].run.job_id, in_id)) continue;
        assert_int_equal(
            store_complete(ST, cl[i].run.id, 1, cl[i].run.fence, NULL, &RES_FAIL, T0 + 2), 0);
    }
    assert_int_equal(store_reap(ST, 0, INT64_C(1) << 50, T0 + 2 + LEASE_MS), 1);
    free_claimed(cl, n);
    char aid[SKED_ID_LEN];
    one_alert(ST, ALERT_OPEN, in_id, ALERT_FAILED, aid);
    store_alert_t a;
    assert_int_equal(store_alert_get(ST, aid, &a, NULL, NULL), 0);
    assert_string_equal(a.rule_id, r.id);
    assert_true(strstr(a.detail, "lease expired") != NULL);
    store_alert_clear(&a);
    assert_int_equal(count_alerts(ST, -1, out_id, -1), 0);

    /* Deleting the rule closes its alert without a notice. */
    assert_int_equal(store_alert_rule_delete(ST, r.id, NULL, T0 + LEASE_MS * 2), 0);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, NULL, -1), 0);
    assert_int_equal(notices(ST, aid, ALERT_EV_RESOLVED), 0);
    store_alert_rule_clear(&r);
}

/* The outbox is claimed like runs: a claim hides a notice until its lease
 * ends; then another claimer may take it, and the first one's settle is
 * stale. Failures are retried when due, then fail for good. */
static void test_alert_outbox(void **state)
{
    char wid[SKED_ID_LEN], aid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "f");
    own_rule(&j, ALERT_BIT(ALERT_FAILED));
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    int64_t due = -2;
    assert_int_equal(store_outbox_next_due_ms(ST, &due), 0);
    assert_int_equal(due, -1);
    run_once(ST, wid, &RES_FAIL, T0);
    one_alert(ST, ALERT_OPEN, j.id, ALERT_FAILED, aid);
    assert_int_equal(store_outbox_next_due_ms(ST, &due), 0);
    assert_int_equal(due, T0 + 10);

    store_outbox_item_t *it, *it2;
    size_t n, n2;
    assert_int_equal(store_outbox_claim(ST, "srv-a", 10, 60000, T0 + 5, &it, &n), 0);
    assert_int_equal(n, 0); /* not due yet */
    free(it);
    assert_int_equal(store_outbox_claim(ST, "srv-a", 10, 60000, T0 + 20, &it, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(it[0].alert.id, aid);
    assert_int_equal(it[0].alert.cond, ALERT_FAILED);
    assert_string_equal(it[0].secret, "s3cret"); /* only the deliverer sees it */
    assert_int_equal(it[0].d.event, ALERT_EV_OPENED);
    assert_string_equal(it[0].d.target, "https://hooks.test/");

    /* Hidden from a second server during the lease, back after it. */
    assert_int_equal(store_outbox_claim(ST, "srv-b", 10, 60000, T0 + 30, &it2, &n2), 0);
    assert_int_equal(n2, 0);
    free(it2);
    assert_int_equal(store_outbox_claim(ST, "srv-b", 10, 60000, T0 + 60021, &it2, &n2), 0);
    assert_int_equal(n2, 1);
    assert_true(it2[0].claim != it[0].claim);
    /* The first claim is stale now. */
    assert_int_equal(store_outbox_settle(ST, it[0].d.id, it[0].claim, true, NULL, -1, T0 + 60022),
                     SKED_ESTALE);
    /* A failure: due again at the retry time, with its error. */
    assert_int_equal(store_outbox_settle(ST, it2[0].d.id, it2[0].claim, false, "HTTP 503",
                                         T0 + 70000, T0 + 60023),
                     0);
    store_alert_t a;
    store_alert_delivery_t *d;
    size_t nd;
    assert_int_equal(store_alert_get(ST, aid, &a, &d, &nd), 0);
    assert_int_equal(nd, 1);
    assert_int_equal(d[0].state, DELIVERY_PENDING);
    assert_int_equal(d[0].tries, 1);
    assert_int_equal(d[0].due_ms, T0 + 70000);
    assert_string_equal(d[0].last_error, "HTTP 503");
    store_alert_delivery_clear(&d[0]);
    free(d);
    store_alert_clear(&a);
    for (size_t i = 0; i < n; i++)
        store_outbox_item_clear(&it[i]);
    free(it);
    for (size_t i = 0; i < n2; i++)
        store_outbox_item_clear(&it2[i]);
    free(it2);

    /* Retried: fails for good, then nothing is due. */
    assert_int_equal(store_outbox_claim(ST, "srv-a", 10, 60000, T0 + 70000, &it, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(
        store_outbox_settle(ST, it[0].d.id, it[0].claim, false, "connect: refused", -1, T0 + 70001),
        0);
    assert_int_equal(store_outbox_settle(ST, it[0].d.id, it[0].claim, true, NULL, -1, T0 + 70002),
                     SKED_ESTALE);
    store_outbox_item_clear(&it[0]);
    free(it);
    assert_int_equal(store_outbox_next_due_ms(ST, &due), 0);
    assert_int_equal(due, -1);
    assert_int_equal(store_alert_get(ST, aid, &a, &d, &nd), 0);
    assert_int_equal(d[0].state, DELIVERY_FAILED);
    assert_int_equal(d[0].tries, 2);
    assert_string_equal(d[0].last_error, "connect: refused");
    store_alert_delivery_clear(&d[0]);
    free(d);
    store_alert_clear(&a);

    /* A resolved notice is sent: settled as sent. */
    char r2[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 80000, r2), 0);
    run_once(ST, wid, &RES_OK, T0 + 80000);
    assert_int_equal(store_outbox_claim(ST, "srv-a", 10, 60000, T0 + 80020, &it, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(it[0].d.event, ALERT_EV_RESOLVED);
    assert_int_equal(it[0].alert.state, ALERT_RESOLVED);
    assert_int_equal(store_outbox_settle(ST, it[0].d.id, it[0].claim, true, NULL, -1, T0 + 80021),
                     0);
    store_outbox_item_clear(&it[0]);
    free(it);
    assert_int_equal(store_alert_get(ST, aid, &a, &d, &nd), 0);
    assert_int_equal(nd, 2);
    assert_int_equal(d[1].state, DELIVERY_SENT);
    assert_int_equal(d[1].sent_ms, T0 + 80021);
    assert_null(d[1].last_error);
    for (size_t i = 0; i < nd; i++)
        store_alert_delivery_clear(&d[i]);
    free(d);
    store_alert_clear(&a);
    store_job_clear(&j);
}

/* Acknowledging records who and when (once); an acknowledged alert still
 * resolves, but sends no resolved notice. */
static void test_alert_ack(void **state)
{
    char wid[SKED_ID_LEN], aid[SKED_ID_LEN], r2[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "acked");
    own_rule(&j, ALERT_BIT(ALERT_FAILED));
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    run_once(ST, wid, &RES_FAIL, T0);
    one_alert(ST, ALERT_OPEN, j.id, ALERT_FAILED, aid);
    assert_int_equal(store_alert_ack(ST, "alr_00000000000000000000000000", "bob", NULL, T0 + 1),
                     SKED_ENOTFOUND);
    assert_int_equal(store_alert_ack(ST, aid, "alice", NULL, T0 + 100), 0);
    assert_int_equal(store_alert_ack(ST, aid, "bob", NULL, T0 + 200), 0);
    store_alert_t a;
    assert_int_equal(store_alert_get(ST, aid, &a, NULL, NULL), 0);
    assert_string_equal(a.acked_by, "alice");
    assert_int_equal(a.acked_ms, T0 + 100);
    assert_int_equal(a.state, ALERT_OPEN);
    store_alert_clear(&a);
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 300, r2), 0);
    run_once(ST, wid, &RES_OK, T0 + 300);
    assert_int_equal(store_alert_get(ST, aid, &a, NULL, NULL), 0);
    assert_int_equal(a.state, ALERT_RESOLVED);
    store_alert_clear(&a);
    assert_int_equal(notices(ST, aid, ALERT_EV_RESOLVED), 0);
    store_job_clear(&j);
}

/* worker_lost opens in the reaper's unit and clears when the worker
 * heartbeats again. */
static void test_alert_worker_lost(void **state)
{
    char rule[SKED_ID_LEN], wid[SKED_ID_LEN], other[SKED_ID_LEN], aid[SKED_ID_LEN];
    new_rule(ST, "lost", ALERT_BIT(ALERT_WORKER_LOST), T0, rule);
    new_worker(ST, "w1", "default", "", T0, wid);
    new_worker(ST, "w2", "default", "", T0 + 50000, other);
    assert_int_equal(store_reap(ST, 0, 60000, T0 + 60001), 0);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, NULL, ALERT_WORKER_LOST), 1);
    one_alert(ST, ALERT_OPEN, NULL, ALERT_WORKER_LOST, aid);
    store_alert_t a;
    assert_int_equal(store_alert_get(ST, aid, &a, NULL, NULL), 0);
    assert_string_equal(a.subject, wid);
    assert_string_equal(a.name, "w1");
    assert_string_equal(a.job_id, "");
    store_alert_clear(&a);
    assert_int_equal(notices(ST, aid, ALERT_EV_OPENED), 1);
    /* Reaped again: still the one alert. */
    assert_int_equal(store_reap(ST, 0, 60000, T0 + 60002), 0);
    assert_int_equal(sweep(ST, T0 + 60003), 0);
    assert_int_equal(count_alerts(ST, -1, NULL, ALERT_WORKER_LOST), 1);
    /* Back: the next pass resolves it. */
    assert_int_equal(store_heartbeat(ST, wid, NULL, NULL, 0, LEASE_MS, T0 + 61000, NULL), 0);
    assert_int_equal(sweep(ST, T0 + 61001), 1);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, NULL, -1), 0);
    assert_int_equal(notices(ST, aid, ALERT_EV_RESOLVED), 1);
}

/* sla_missed opens while the run is late (on time, not after it ends) and
 * resolves when it started (start SLA) or finished (finish SLA). */
static void test_alert_sla(void **state)
{
    char wid[SKED_ID_LEN], aid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "sla");
    j.sla_start_ms = MIN_MS;
    j.sla_finish_ms = 5 * MIN_MS;
    own_rule(&j, ALERT_BIT(ALERT_SLA_MISSED));
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);

    assert_int_equal(sweep(ST, T0 + MIN_MS - 1), 0);
    assert_int_equal(count_alerts(ST, -1, j.id, -1), 0);
    assert_int_equal(sweep(ST, T0 + MIN_MS), 1);
    one_alert(ST, ALERT_OPEN, j.id, ALERT_SLA_MISSED, aid);
    assert_int_equal(sweep(ST, T0 + MIN_MS + 1000), 0); /* no second page */
    assert_int_equal(notices(ST, aid, ALERT_EV_OPENED), 1);
    store_alert_t a;
    assert_int_equal(store_alert_get(ST, aid, &a, NULL, NULL), 0);
    assert_true(strstr(a.detail, "has not started") != NULL);
    store_alert_clear(&a);

    /* It starts: resolved. Then it runs past finish_within: open again,
     * while it still runs. */
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0 + 2 * MIN_MS, &n);
    assert_int_equal(n, 1);
    confirm(ST, wid, &cl[0], T0 + 2 * MIN_MS);
    assert_int_equal(sweep(ST, T0 + 2 * MIN_MS + 1), 1);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, j.id, -1), 0);
    assert_int_equal(notices(ST, aid, ALERT_EV_RESOLVED), 1);
    store_held_t h = {cl[0].run.id, cl[0].run.fence, true, false, NULL};
    assert_int_equal(store_heartbeat(ST, wid, NULL, &h, 1, 10 * MIN_MS, T0 + 4 * MIN_MS, NULL), 0);
    assert_int_equal(sweep(ST, T0 + 5 * MIN_MS), 1);
    one_alert(ST, ALERT_OPEN, j.id, ALERT_SLA_MISSED, aid);
    assert_int_equal(store_alert_get(ST, aid, &a, NULL, NULL), 0);
    assert_true(strstr(a.detail, "has not finished") != NULL);
    store_alert_clear(&a);
    assert_int_equal(
        store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &RES_OK, T0 + 6 * MIN_MS), 0);
    assert_int_equal(sweep(ST, T0 + 6 * MIN_MS + 1), 1);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, NULL, -1), 0);
    free_claimed(cl, n);
    store_job_clear(&j);
}

/* overrun: past k x p95 of the job's recent successful durations, with
 * enough of them. */
static void test_alert_overrun(void **state)
{
    char wid[SKED_ID_LEN], r2[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "slow");
    own_rule(&j, ALERT_BIT(ALERT_OVERRUN));
    j.alerts[0].def.params.overrun_factor = 2.0;
    j.alerts[0].def.params.overrun_min_samples = 3;
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    int64_t t = T0;
    for (int i = 0; i < 3; i++) { /* three successes of 10 s */
        size_t n;
        store_claimed_t *cl = claim(ST, wid, 1, t, &n);
        assert_int_equal(n, 1);
        if (i == 2) {
            /* Too few samples yet: a long attempt is no overrun. */
            assert_int_equal(sweep(ST, t + 10 * MIN_MS), 0);
        }
        assert_int_equal(
            store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &RES_OK, t + 10000), 0);
        free_claimed(cl, n);
        t += MIN_MS;
        assert_int_equal(store_run_trigger(ST, j.id, NULL, t, r2), 0);
    }
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, t, &n);
    assert_int_equal(n, 1);
    assert_int_equal(sweep(ST, t + 20000), 0); /* at 2 x 10 s: not over */
    assert_int_equal(sweep(ST, t + 20001), 1);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, j.id, ALERT_OVERRUN), 1);
    assert_int_equal(sweep(ST, t + 30000), 0);
    assert_int_equal(store_complete(ST, cl[0].run.id, 1, cl[0].run.fence, NULL, &RES_OK, t + 40000),
                     0);
    assert_int_equal(sweep(ST, t + 40001), 1);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, NULL, -1), 0);
    free_claimed(cl, n);
    store_job_clear(&j);
}

/* missed: a fire time with no run started within the window, judged when
 * it becomes window-old; a schedule nobody fires; the ledger's stretches
 * after an outage; a later fire time kept resolves it. */
static void test_alert_missed(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], sid[SKED_ID_LEN], aid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "deadman");
    own_rule(&j, ALERT_BIT(ALERT_MISSED));
    j.alerts[0].def.params.missed_window_ms = 30000;
    store_schedule_t sc = {0};
    sc.kind = SCHEDULE_EVERY;
    sc.expr = xstrdup("1m");
    sc.next_fire_ms = T0 + MIN_MS;
    assert_int_equal(store_job_create(ST, &j, &sc, 1, false, NULL, NULL, T0), 0);
    memcpy(jid, j.id, SKED_ID_LEN);
    memcpy(sid, sc.id, SKED_ID_LEN);
    store_schedule_clear(&sc);

    /* Fire T0+1m; claimed 10 s late: kept (window 30 s). */
    store_fire_run_t fr = {T0 + MIN_MS, T0 + MIN_MS, RUN_SCHEDULED, NULL};
    store_fire_t it = {sid, T0 + MIN_MS, T0 + 2 * MIN_MS, &fr, 1, {0}, 0};
    assert_int_equal(store_fire(ST, &it, 1, T0 + MIN_MS), 0);
    run_once(ST, wid, &RES_OK, T0 + MIN_MS + 10000);
    assert_int_equal(sweep(ST, T0 + MIN_MS + 30000), 0);
    /* Fire T0+2m; nobody claims it: missed once it is 30 s old. */
    fr = (store_fire_run_t){T0 + 2 * MIN_MS, T0 + 2 * MIN_MS, RUN_SCHEDULED, NULL};
    it = (store_fire_t){sid, T0 + 2 * MIN_MS, T0 + 3 * MIN_MS, &fr, 1, {0}, 0};
    assert_int_equal(store_fire(ST, &it, 1, T0 + 2 * MIN_MS), 0);
    assert_int_equal(sweep(ST, T0 + 2 * MIN_MS + 29999), 0);
    assert_int_equal(sweep(ST, T0 + 2 * MIN_MS + 30000), 1);
    one_alert(ST, ALERT_OPEN, jid, ALERT_MISSED, aid);
    store_alert_t a;
    assert_int_equal(store_alert_get(ST, aid, &a, NULL, NULL), 0);
    assert_true(strstr(a.detail, "has not started within 30 s") != NULL);
    store_alert_clear(&a);
    /* Now nobody fires T0+3m (the servers are down): overdue after 30 s. */
    assert_int_equal(sweep(ST, T0 + 3 * MIN_MS + 40000), 0); /* open already */
    run_once(ST, wid, &RES_OK, T0 + 3 * MIN_MS + 40000);     /* the late T0+2m */
    /* Back after the outage at T0+10m: the scheduler records T0+3m..T0+9m
     * in the ledger and runs T0+10m at once, on time. The pass judges the
     * ledger stretch (missed) and T0+10m (kept, the latest): resolved. */
    store_fire_run_t fr10 = {T0 + 10 * MIN_MS, T0 + 10 * MIN_MS, RUN_SCHEDULED, NULL};
    store_fire_t back = {sid,
                         T0 + 3 * MIN_MS,
                         T0 + 11 * MIN_MS,
                         &fr10,
                         1,
                         {T0 + 3 * MIN_MS, T0 + 9 * MIN_MS, 7, T0 + 2 * MIN_MS, "misfire: down"},
                         0};
    assert_int_equal(store_fire(ST, &back, 1, T0 + 10 * MIN_MS), 0);
    run_once(ST, wid, &RES_OK, T0 + 10 * MIN_MS + 1000);
    assert_int_equal(sweep(ST, T0 + 10 * MIN_MS + 30000), 1);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, jid, -1), 0);
    assert_int_equal(notices(ST, aid, ALERT_EV_RESOLVED), 1);

    /* Down again at T0+11m; back at T0+15m, the stretch in the ledger and
     * the run of T0+15m started late: missed, found on recovery. */
    store_fire_run_t fr15 = {T0 + 15 * MIN_MS, T0 + 15 * MIN_MS, RUN_SCHEDULED, NULL};
    store_fire_t back2 = {
        sid,
        T0 + 11 * MIN_MS,
        T0 + 16 * MIN_MS,
        &fr15,
        1,
        {T0 + 11 * MIN_MS, T0 + 14 * MIN_MS, 4, T0 + 10 * MIN_MS, "misfire: down"},
        0};
    assert_int_equal(sweep(ST, T0 + 15 * MIN_MS + 45000), 1); /* overdue, before the scheduler */
    assert_int_equal(store_fire(ST, &back2, 1, T0 + 15 * MIN_MS + 45000), 0);
    run_once(ST, wid, &RES_OK, T0 + 15 * MIN_MS + 46000);
    assert_int_equal(sweep(ST, T0 + 15 * MIN_MS + 47000), 0);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, jid, ALERT_MISSED), 1);
    store_job_clear(&j);
}

/* backlog: a queue over N pending runs for T; resolves when it drops. */
static void test_alert_backlog(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN], r[SKED_ID_LEN], aid[SKED_ID_LEN];
    store_alert_rule_t rule;
    mkrule(&rule, "etl-backlog", ALERT_BIT(ALERT_BACKLOG), NULL);
    free(rule.def.scope_queue);
    rule.def.scope_queue = xstrdup("etl");
    rule.def.params.backlog_depth = 2;
    rule.def.params.backlog_for_ms = MIN_MS;
    assert_int_equal(store_alert_rule_create(ST, &rule, NULL, T0), 0);
    new_job(ST, "load", 0, "etl", true, T0, jid);
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0, r), 0);
    assert_int_equal(sweep(ST, T0 + 1), 0); /* 2: not over */
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0 + 2, r), 0);
    assert_int_equal(sweep(ST, T0 + 3), 0); /* 3: over, since now */
    assert_int_equal(sweep(ST, T0 + 3 + MIN_MS - 1), 0);
    assert_int_equal(sweep(ST, T0 + 3 + MIN_MS), 1);
    one_alert(ST, ALERT_OPEN, NULL, ALERT_BACKLOG, aid);
    store_alert_t a;
    assert_int_equal(store_alert_get(ST, aid, &a, NULL, NULL), 0);
    assert_string_equal(a.subject, "etl");
    assert_true(strstr(a.detail, "more than 2 pending runs") != NULL);
    store_alert_clear(&a);
    new_worker(ST, "w", "etl", "", T0 + 2 * MIN_MS, wid);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0 + 2 * MIN_MS, &n);
    assert_int_equal(n, 1);
    assert_int_equal(sweep(ST, T0 + 2 * MIN_MS + 1), 1);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, NULL, -1), 0);
    /* Over again: the clock starts anew. */
    assert_int_equal(store_run_trigger(ST, jid, NULL, T0 + 3 * MIN_MS, r), 0);
    assert_int_equal(sweep(ST, T0 + 3 * MIN_MS + 1), 0);
    assert_int_equal(sweep(ST, T0 + 4 * MIN_MS), 0);
    assert_int_equal(sweep(ST, T0 + 4 * MIN_MS + 1), 1);
    free_claimed(cl, n);
    store_alert_rule_clear(&rule);
}

/* A job's rules change with its spec: a condition dropped closes its
 * alert silently; alerts of a deleted job close. */
static void test_alert_job_rules_follow_spec(void **state)
{
    char wid[SKED_ID_LEN], aid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "evolving");
    own_rule(&j, ALERT_BIT(ALERT_FAILED));
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    run_once(ST, wid, &RES_FAIL, T0);
    one_alert(ST, ALERT_OPEN, j.id, ALERT_FAILED, aid);

    /* Same rule, another channel: the alert stays open and stays its. */
    free(j.alerts[0].def.channels[0].target);
    j.alerts[0].def.channels[0].target = xstrdup("https://elsewhere.test/");
    assert_int_equal(store_job_update(ST, &j, j.version, NULL, 0, NULL, T0 + 1), 0);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, j.id, -1), 1);
    /* The condition dropped: closed, no notice. */
    j.alerts[0].def.conds = ALERT_BIT(ALERT_RETRYING);
    assert_int_equal(store_job_update(ST, &j, j.version, NULL, 0, NULL, T0 + 2), 0);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, j.id, -1), 0);
    assert_int_equal(notices(ST, aid, ALERT_EV_RESOLVED), 0);

    /* Deleting the job closes its open alerts (at the next pass). */
    j.alerts[0].def.conds = ALERT_BIT(ALERT_FAILED);
    assert_int_equal(store_job_update(ST, &j, j.version, NULL, 0, NULL, T0 + 3), 0);
    char r2[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 4, r2), 0);
    run_once(ST, wid, &RES_FAIL, T0 + 4);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, j.id, -1), 1);
    assert_int_equal(store_job_set_state(ST, j.id, JOB_DELETED, NULL, T0 + 5), 0);
    assert_int_equal(sweep(ST, T0 + 6), 1);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, NULL, -1), 0);

    /* Removing a rule from a job closes its alerts too. */
    store_job_t k;
    mkjob(&k, "shrinking");
    own_rule(&k, ALERT_BIT(ALERT_FAILED));
    assert_int_equal(store_job_create(ST, &k, NULL, 0, true, NULL, NULL, T0 + 7), 0);
    run_once(ST, wid, &RES_FAIL, T0 + 7);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, k.id, -1), 1);
    store_alert_rule_clear(&k.alerts[0]);
    free(k.alerts);
    k.alerts = NULL;
    k.nalerts = 0;
    assert_int_equal(store_job_update(ST, &k, k.version, NULL, 0, NULL, T0 + 8), 0);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, k.id, -1), 0);
    store_job_clear(&k);
    store_job_clear(&j);
}

/* Alert lists filter by state, job, condition and namespace, and page. */
static void test_alert_list(void **state)
{
    char wid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    char ids[5][SKED_ID_LEN];
    for (int i = 0; i < 5; i++) {
        store_job_t j;
        char name[16];
        snprintf(name, sizeof name, "j%d", i);
        mkjob(&j, name);
        j.ns = xstrdup(i < 3 ? "team-a" : "team-b");
        own_rule(&j, ALERT_BIT(ALERT_FAILED));
        assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0 + i), 0);
        memcpy(ids[i], j.id, SKED_ID_LEN);
        run_once(ST, wid, &RES_FAIL, T0 + 100 * i);
        store_job_clear(&j);
    }
    store_alert_filter_t f = {-1, NULL, -1, "team-a", NULL, 2};
    store_alert_t *v;
    size_t n, total = 0;
    char *next = NULL, *cursor = NULL;
    int64_t last = INT64_MAX;
    do {
        f.cursor = cursor;
        assert_int_equal(store_alert_list(ST, &f, &v, &n, &next), 0);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(v[i].ns, "team-a");
            assert_true(v[i].opened_ms <= last);
            last = v[i].opened_ms;
        }
        total += n;
        free_alerts(v, n);
        free(cursor);
        cursor = next;
    } while (cursor);
    assert_int_equal(total, 3);
    f = (store_alert_filter_t){ALERT_OPEN, ids[4], ALERT_FAILED, NULL, NULL, 10};
    assert_int_equal(store_alert_list(ST, &f, &v, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].job_id, ids[4]);
    free_alerts(v, n);
    f = (store_alert_filter_t){ALERT_RESOLVED, NULL, -1, NULL, NULL, 10};
    assert_int_equal(store_alert_list(ST, &f, &v, &n, &next), 0);
    assert_int_equal(n, 0);
    free(v);
    f.cursor = "nope";
    assert_int_equal(store_alert_list(ST, &f, &v, &n, &next), SKED_EINVAL);
}

/* A run canceled while it waits for its retry: its retry alert resolves
 * at the next pass (no attempt ends to do it). */
static void test_alert_retry_canceled(void **state)
{
    char wid[SKED_ID_LEN], aid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "canceled-retry");
    j.retry = (retry_policy_t){3, 60000, 60000, 1.0, false};
    own_rule(&j, ALERT_BIT(ALERT_RETRYING));
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    run_once(ST, wid, &RES_FAIL, T0);
    one_alert(ST, ALERT_OPEN, j.id, ALERT_RETRYING, aid);
    store_alert_t a;
    assert_int_equal(store_alert_get(ST, aid, &a, NULL, NULL), 0);
    assert_int_equal(sweep(ST, T0 + 100), 0); /* still waiting: still open */
    assert_int_equal(store_run_cancel(ST, a.run_id, NULL, NULL, T0 + 200), 0);
    store_alert_clear(&a);
    assert_int_equal(sweep(ST, T0 + 300), 1);
    assert_int_equal(count_alerts(ST, ALERT_OPEN, NULL, -1), 0);
    assert_int_equal(notices(ST, aid, ALERT_EV_RESOLVED), 1);
    store_job_clear(&j);
}

/* Alerts have their events, written with them: opened, acknowledged,
 * resolved, scoped to the job's namespace. */
static void test_alert_events(void **state)
{
    char wid[SKED_ID_LEN], aid[SKED_ID_LEN], r2[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    store_job_t j;
    mkjob(&j, "evented");
    own_rule(&j, ALERT_BIT(ALERT_FAILED));
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    run_once(ST, wid, &RES_FAIL, T0);
    one_alert(ST, ALERT_OPEN, j.id, ALERT_FAILED, aid);
    assert_int_equal(store_alert_ack(ST, aid, "alice", NULL, T0 + 100), 0);
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 200, r2), 0);
    run_once(ST, wid, &RES_OK, T0 + 200);
    store_event_t *v = NULL;
    size_t n = 0;
    bool pending = false;
    assert_int_equal(store_events_read(ST, 0, 1000, &v, &n, &pending), 0);
    const char *want[] = {"alert.opened", "alert.acked", "alert.resolved"};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(v[i].type, "alert.", 6) != 0) continue;
        assert_true(k < 3);
        assert_string_equal(v[i].type, want[k]);
        assert_string_equal(v[i].job_id, j.id);
        assert_string_equal(v[i].ns, "default");
        assert_string_equal(v[i].alert_id, aid);
        assert_true(!strncmp(v[i].detail, "failed: ", 8));
        k++;
    }
    assert_int_equal(k, 3);
    for (size_t i = 0; i < n; i++)
        store_event_clear(&v[i]);
    free(v);
    store_job_clear(&j);
}

/* Servers race to open the same alerts: one open alert, one notice per
 * channel, whoever wins. */
struct sweep_thread {
    store_t *st;
    int64_t now;
    int changed;
};

static void *sweep_main(void *arg)
{
    struct sweep_thread *t = arg;
    for (int i = 0; i < 20; i++) {
        int c = 0;
        if (store_alert_sweep(t->st, t->now + i, &c) != 0) fail_msg("sweep failed");
        t->changed += c;
    }
    return NULL;
}

static void test_alert_one_open_under_race(void **state)
{
    struct ctx *c = *state;
    char jids[8][SKED_ID_LEN];
    for (int i = 0; i < 8; i++) {
        store_job_t j;
        char name[16];
        snprintf(name, sizeof name, "late%d", i);
        mkjob(&j, name);
        j.sla_start_ms = 1000;
        own_rule(&j, ALERT_BIT(ALERT_SLA_MISSED));
        assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
        memcpy(jids[i], j.id, SKED_ID_LEN);
        store_job_clear(&j);
    }
    store_t *other = open_ok(c->url);
    struct sweep_thread t[2] = {{ST, T0 + 5000, 0}, {other, T0 + 5000, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sweep_main, &t[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    store_close(other);
    assert_int_equal(t[0].changed + t[1].changed, 8);
    for (int i = 0; i < 8; i++) {
        char aid[SKED_ID_LEN];
        one_alert(ST, -1, jids[i], ALERT_SLA_MISSED, aid);
        assert_int_equal(notices(ST, aid, -1), 1);
    }
}

/* ---- explain ------------------------------------------------------------------- */

/* store_explain: everything GET .../explain decides on, in one read. */
static void test_explain_facts(void **state)
{
    char wdef[SKED_ID_LEN], wgpu[SKED_ID_LEN], wmulti[SKED_ID_LEN];
    new_worker(ST, "w-def", "default", "disk=ssd", T0, wdef);
    new_worker(ST, "w-gpu", "gpu", "", T0, wgpu);
    store_worker_t wm = {.name = xstrdup("w-multi"),
                         .host = xstrdup("h"),
                         .queues = xstrdup("batch,default"),
                         .labels = xstrdup(""),
                         .slots = 2,
                         .owner = xstrdup("tok_m"),
                         .ns = xstrdup("team-a")};
    assert_int_equal(store_worker_register(ST, &wm, NULL, T0), 0);
    memcpy(wmulti, wm.id, SKED_ID_LEN);
    store_worker_clear(&wm);

    store_job_t j;
    mkjob(&j, "explained");
    j.retry = (retry_policy_t){3, 10000, 60000, 2.0, false};
    store_schedule_t sc[2];
    memset(sc, 0, sizeof sc);
    sc[0].kind = sc[1].kind = SCHEDULE_EVERY;
    sc[0].expr = xstrdup("1m");
    sc[1].expr = xstrdup("1h");
    sc[0].next_fire_ms = T0 + MIN_MS;
    sc[1].next_fire_ms = -1;
    assert_int_equal(store_job_create(ST, &j, sc, 2, true, NULL, NULL, T0), 0);
    char r2[SKED_ID_LEN], r3[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 1, r2), 0);
    assert_int_equal(store_run_trigger(ST, j.id, NULL, T0 + 2, r3), 0);
    size_t n = 0;
    store_claimed_t *cl = claim(ST, wdef, 1, T0 + 10, &n);
    assert_int_equal(n, 1);
    char ra[SKED_ID_LEN];
    memcpy(ra, cl[0].run.id, SKED_ID_LEN);

    store_explain_t e;
    assert_int_equal(store_explain(ST, j.id, NULL, T0 - 1, T0 + 20, &e), 0);
    assert_string_equal(e.job.id, j.id);
    assert_string_equal(e.job.name, "explained");
    assert_int_equal(e.job.retry.max_attempts, 3);
    assert_int_equal(e.nscheds, 2);
    assert_int_equal(e.scheds[0].next_fire_ms + e.scheds[1].next_fire_ms, T0 + MIN_MS - 1);
    assert_string_equal(e.target.run.id, ""); /* no run asked about */
    /* The running run first, unconfirmed, with its attempt; then the due
     * ones by not_before. */
    assert_int_equal(e.nruns, 3);
    assert_string_equal(e.runs[0].run.id, ra);
    assert_int_equal(e.runs[0].run.state, RUN_RUNNING);
    assert_true(e.runs[0].unconfirmed);
    assert_int_equal(e.runs[0].last.n, 1);
    assert_string_equal(e.runs[0].last.worker_id, wdef);
    assert_int_equal(e.runs[0].last.started_ms, T0 + 10);
    assert_int_equal(e.runs[0].last.finished_ms, -1);
    assert_true(e.runs[1].run.not_before_ms <= e.runs[2].run.not_before_ms);
    assert_int_equal(e.runs[1].last.n, 0);
    assert_int_equal(e.nwaiting, 2);
    assert_int_equal(e.ndue, 2);
    assert_int_equal(e.running, 1);
    /* Workers of the job's queue only, heard from last first, namespace and
     * running count filled in; every live worker counted. */
    assert_int_equal(e.nworkers, 2);
    assert_string_equal(e.workers[0].id, wdef); /* its claim refreshed its heartbeat */
    assert_int_equal(e.workers[0].running, 1);
    assert_string_equal(e.workers[0].labels, "disk=ssd");
    assert_string_equal(e.workers[0].ns, "");
    assert_string_equal(e.workers[1].id, wmulti);
    assert_string_equal(e.workers[1].ns, "team-a");
    assert_string_equal(e.workers[1].queues, "batch,default");
    assert_int_equal(e.live_workers, 3);
    store_explain_clear(&e);
    store_explain_clear(&e); /* a cleared one clears again */

    /* Confirmed, then failed: waiting out the backoff, its last attempt told. */
    confirm(ST, wdef, &cl[0], T0 + 30);
    assert_int_equal(store_explain(ST, NULL, ra, T0 - 1, T0 + 31, &e), 0);
    assert_false(e.target.unconfirmed);
    assert_string_equal(e.job.id, j.id); /* the run's job */
    store_explain_clear(&e);
    assert_int_equal(store_complete(ST, ra, 1, cl[0].run.fence, NULL, &RES_FAIL, T0 + 40), 0);
    free_claimed(cl, n);
    assert_int_equal(store_explain(ST, NULL, ra, T0 + 5, T0 + 50, &e), 0);
    assert_int_equal(e.target.run.state, RUN_SCHEDULED);
    assert_int_equal(e.target.run.not_before_ms, T0 + 40 + 10000);
    assert_int_equal(e.target.last.n, 1);
    assert_int_equal(e.target.last.outcome, ATTEMPT_FAILED);
    assert_int_equal(e.target.last.exit_code, 3);
    assert_int_equal(e.target.last.finished_ms, T0 + 40);
    assert_string_equal(e.target.last.reason, "exit status 3");
    assert_int_equal(e.nwaiting, 3);
    assert_int_equal(e.ndue, 2); /* the retry is not due yet */
    assert_int_equal(e.running, 0);
    assert_int_equal(e.live_workers, 1); /* only w-def was heard from since T0 + 5 */
    store_explain_clear(&e);

    /* Drained workers are still listed; gone ones are not. */
    assert_int_equal(store_worker_drain(ST, wmulti, NULL, NULL, T0 + 60), 0);
    assert_int_equal(store_explain(ST, j.id, NULL, T0 - 1, T0 + 61, &e), 0);
    assert_int_equal(e.nworkers, 2);
    assert_int_equal(e.workers[1].state, WORKER_DRAINING);
    store_explain_clear(&e);
    assert_int_equal(store_worker_deregister(ST, wmulti, NULL, NULL, T0 + 62), 0);
    assert_int_equal(store_explain(ST, j.id, NULL, T0 - 1, T0 + 63, &e), 0);
    assert_int_equal(e.nworkers, 1);
    assert_int_equal(e.live_workers, 2);
    store_explain_clear(&e);

    /* A deleted job is still explained; its canceled runs are over. */
    assert_int_equal(store_job_set_state(ST, j.id, JOB_DELETED, NULL, T0 + 70), 0);
    assert_int_equal(store_explain(ST, j.id, NULL, T0 - 1, T0 + 71, &e), 0);
    assert_int_equal(e.job.state, JOB_DELETED);
    assert_int_equal(e.job.updated_ms, T0 + 70);
    assert_int_equal(e.nruns, 0);
    assert_int_equal(e.nwaiting, 0);
    store_explain_clear(&e);
    assert_int_equal(store_explain(ST, NULL, r2, T0 - 1, T0 + 72, &e), 0);
    assert_int_equal(e.target.run.state, RUN_CANCELED);
    store_explain_clear(&e);

    /* Unknown ones, and nothing asked. */
    assert_int_equal(store_explain(ST, "job_nope", NULL, 0, T0, &e), SKED_ENOTFOUND);
    store_explain_clear(&e);
    assert_int_equal(store_explain(ST, NULL, "run_nope", 0, T0, &e), SKED_ENOTFOUND);
    store_explain_clear(&e);
    assert_int_equal(store_explain(ST, NULL, NULL, 0, T0, &e), SKED_EINVAL);
    store_schedule_clear(&sc[0]);
    store_schedule_clear(&sc[1]);
    store_job_clear(&j);
}

/* ---- results and checkpoints (docs/results.md) ----------------------------------------- */

/* The run's checkpoint as the detail read shows it (data NULL: none). */
static store_checkpoint_t run_checkpoint(store_t *st, const char *rid)
{
    store_run_t r;
    store_checkpoint_t cp;
    assert_int_equal(store_run_get_detail(st, rid, &r, NULL, NULL, &cp), 0);
    store_run_clear(&r);
    return cp;
}

static void assert_checkpoint(store_t *st, const char *rid, int attempt, int64_t at_ms,
                              const char *data)
{
    store_checkpoint_t cp = run_checkpoint(st, rid);
    if (!data) {
        assert_null(cp.data);
        assert_int_equal(cp.attempt, 0);
        return;
    }
    assert_non_null(cp.data);
    assert_string_equal(cp.data, data);
    assert_int_equal(cp.len, strlen(data));
    assert_int_equal(cp.attempt, attempt);
    assert_int_equal(cp.at_ms, at_ms);
    store_checkpoint_clear(&cp);
}

static char *run_result(store_t *st, const char *rid)
{
    char *json = (char *)"unset";
    assert_int_equal(store_run_result(st, rid, &json), 0);
    return json;
}

/* A checkpoint rides on a heartbeat and is stored only when the lease it
 * names is renewed: never from another worker, a stale fence or a run
 * asked to cancel; a heartbeat without one leaves it as it is. */
static void test_checkpoint_heartbeat_fenced(void **state)
{
    char wid[SKED_ID_LEN], other[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    new_worker(ST, "other", "default", "", T0, other);
    new_job(ST, "cp", 0, NULL, true, T0, jid);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    assert_int_equal(n, 1);
    assert_null(cl[0].checkpoint.data); /* a first attempt starts from nothing */
    const char *rid = cl[0].run.id;
    int64_t fence = cl[0].run.fence;
    assert_checkpoint(ST, rid, 0, 0, NULL);

    /* The confirming heartbeat may carry one already. */
    store_held_t h = {rid, fence, true, false, "step 1"};
    assert_int_equal(store_heartbeat(ST, wid, NULL, &h, 1, LEASE_MS, T0 + 1000, NULL), 0);
    assert_true(h.keep);
    assert_checkpoint(ST, rid, 1, T0 + 1000, "step 1");

    /* Another worker naming the run and its fence: not kept, not stored. */
    store_held_t forged = {rid, fence, true, false, "forged"};
    assert_int_equal(store_heartbeat(ST, other, NULL, &forged, 1, LEASE_MS, T0 + 2000, NULL), 0);
    assert_false(forged.keep);
    /* The holder with a stale fence: likewise. */
    store_held_t stale = {rid, fence + 1, true, false, "stale"};
    assert_int_equal(store_heartbeat(ST, wid, NULL, &stale, 1, LEASE_MS, T0 + 3000, NULL), 0);
    assert_false(stale.keep);
    assert_checkpoint(ST, rid, 1, T0 + 1000, "step 1");

    /* A newer one replaces it (any UTF-8 text); none leaves it. */
    h.checkpoint = "{\"step\": 2, \"où\": \"ici\"}\n";
    assert_int_equal(store_heartbeat(ST, wid, NULL, &h, 1, LEASE_MS, T0 + 4000, NULL), 0);
    assert_true(h.keep);
    h.checkpoint = NULL;
    assert_int_equal(store_heartbeat(ST, wid, NULL, &h, 1, LEASE_MS, T0 + 5000, NULL), 0);
    assert_checkpoint(ST, rid, 1, T0 + 4000, "{\"step\": 2, \"où\": \"ici\"}\n");

    /* Over the cap: refused whole, nothing renewed or stored. */
    char *big = xmalloc(RESULTS_MAX_BYTES + 2);
    memset(big, 'x', RESULTS_MAX_BYTES + 1);
    big[RESULTS_MAX_BYTES + 1] = '\0';
    h.checkpoint = big;
    assert_int_equal(store_heartbeat(ST, wid, NULL, &h, 1, LEASE_MS, T0 + 6000, NULL), SKED_EINVAL);
    big[RESULTS_MAX_BYTES] = '\0'; /* exactly the cap is taken */
    assert_int_equal(store_heartbeat(ST, wid, NULL, &h, 1, LEASE_MS, T0 + 7000, NULL), 0);
    store_checkpoint_t cp = run_checkpoint(ST, rid);
    assert_int_equal(cp.len, RESULTS_MAX_BYTES);
    store_checkpoint_clear(&cp);
    free(big);

    /* A run asked to cancel takes none. */
    assert_int_equal(store_run_cancel(ST, rid, "asked", NULL, T0 + 8000), 0);
    h.checkpoint = "after cancel";
    assert_int_equal(store_heartbeat(ST, wid, NULL, &h, 1, LEASE_MS, T0 + 9000, NULL), 0);
    assert_false(h.keep);
    cp = run_checkpoint(ST, rid);
    assert_int_equal(cp.at_ms, T0 + 7000);
    store_checkpoint_clear(&cp);
    free_claimed(cl, n);
}

/* THE promise of checkpoints: a run whose attempt is lost (or fails) is
 * retried from the last checkpoint shipped, which the next claim hands
 * out; the completion carries the last one and the result, fenced. */
static void test_checkpoint_survives_retries(void **state)
{
    char wa[SKED_ID_LEN], wb[SKED_ID_LEN];
    new_worker_owned(ST, "wa", "tok_a", "", T0, wa);
    new_worker_owned(ST, "wb", "tok_b", "", T0, wb);
    store_job_t j;
    mkjob(&j, "resumable");
    j.retry = (retry_policy_t){3, 1000, 1000, 2.0, false};
    assert_int_equal(store_job_create(ST, &j, NULL, 0, true, NULL, NULL, T0), 0);
    store_job_clear(&j);
    store_claimed_t *cl = NULL;
    size_t n = 0;
    assert_int_equal(store_claim(ST, wa, "tok_a", 1, CONFIRM_MS, T0, &cl, &n), 0);
    assert_int_equal(n, 1);
    char rid[SKED_ID_LEN];
    memcpy(rid, cl[0].run.id, SKED_ID_LEN);
    store_held_t h = {rid, cl[0].run.fence, true, false, "40"};
    assert_int_equal(store_heartbeat(ST, wa, "tok_a", &h, 1, LEASE_MS, T0 + 1, NULL), 0);
    free_claimed(cl, n);

    /* Worker a dies: its lease runs out, the attempt is lost, the
     * checkpoint stays and the retry's claim (another worker) gets it. */
    int64_t t = T0 + 1 + LEASE_MS + 5001;
    assert_int_equal(store_reap(ST, 5000, 60000, t), 1);
    assert_int_equal(run_state(ST, rid), RUN_SCHEDULED);
    assert_checkpoint(ST, rid, 1, T0 + 1, "40");
    assert_int_equal(store_claim(ST, wb, "tok_b", 1, CONFIRM_MS, t + 1000, &cl, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].run.attempt, 2);
    assert_non_null(cl[0].checkpoint.data);
    assert_string_equal(cl[0].checkpoint.data, "40");
    assert_int_equal(cl[0].checkpoint.len, 2);
    assert_int_equal(cl[0].checkpoint.attempt, 1);
    assert_int_equal(cl[0].checkpoint.at_ms, T0 + 1);
    int64_t fence = cl[0].run.fence;
    free_claimed(cl, n);
    h = (store_held_t){rid, fence, true, false, NULL};
    assert_int_equal(store_heartbeat(ST, wb, "tok_b", &h, 1, LEASE_MS, t + 1001, NULL), 0);

    /* Attempt 2 fails; its completion carries its last checkpoint and a
     * result. A stale one, or one from another worker's token, stores
     * neither and changes nothing. */
    store_result_t fail = {
        ATTEMPT_FAILED, 1, 0, "exit status 1", "{\"error\": \"disk full\"}", "57"};
    assert_int_equal(store_complete(ST, rid, 2, fence + 1, "tok_b", &fail, t + 2000), SKED_ESTALE);
    assert_int_equal(store_complete(ST, rid, 2, fence, "tok_a", &fail, t + 2000), SKED_EFORBID);
    assert_checkpoint(ST, rid, 1, T0 + 1, "40");
    assert_null(run_result(ST, rid));
    assert_int_equal(store_complete(ST, rid, 2, fence, "tok_b", &fail, t + 2000), 0);
    assert_checkpoint(ST, rid, 2, t + 2000, "57");
    char *res = run_result(ST, rid); /* the latest attempt's, while it is retried */
    assert_string_equal(res, "{\"error\": \"disk full\"}");
    free(res);

    /* Attempt 3 starts from 57 and succeeds with its own result. */
    assert_int_equal(store_claim(ST, wb, "tok_b", 1, CONFIRM_MS, t + 4000, &cl, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(cl[0].run.attempt, 3);
    assert_string_equal(cl[0].checkpoint.data, "57");
    assert_int_equal(cl[0].checkpoint.attempt, 2);
    fence = cl[0].run.fence;
    free_claimed(cl, n);
    h = (store_held_t){rid, fence, true, false, NULL};
    assert_int_equal(store_heartbeat(ST, wb, "tok_b", &h, 1, LEASE_MS, t + 4001, NULL), 0);
    store_result_t ok = {ATTEMPT_SUCCEEDED, 0, 0, NULL, "[1, 2.50, 12345678901234567890]", NULL};
    assert_int_equal(store_complete(ST, rid, 3, fence, "tok_b", &ok, t + 5000), 0);
    /* A repeat whose answer was lost changes nothing, whatever it says. */
    store_result_t again = {ATTEMPT_SUCCEEDED, 0, 0, NULL, "\"other\"", "99"};
    assert_int_equal(store_complete(ST, rid, 3, fence, "tok_b", &again, t + 6000), 0);
    assert_int_equal(run_state(ST, rid), RUN_SUCCEEDED);
    res = run_result(ST, rid); /* stored as written: numbers keep their spelling */
    assert_string_equal(res, "[1, 2.50, 12345678901234567890]");
    free(res);
    assert_checkpoint(ST, rid, 2, t + 2000, "57");
    store_run_t r;
    store_attempt_t *att;
    size_t na;
    assert_int_equal(store_run_get(ST, rid, &r, &att, &na), 0);
    assert_int_equal(na, 3);
    assert_null(att[0].result); /* lost: nothing reported */
    assert_string_equal(att[1].result, "{\"error\": \"disk full\"}");
    assert_string_equal(att[2].result, "[1, 2.50, 12345678901234567890]");
    for (size_t i = 0; i < na; i++)
        store_attempt_clear(&att[i]);
    free(att);
    store_run_clear(&r);

    /* Retention takes them with the run (the foreign keys would refuse a
     * run deleted from under its checkpoint). */
    assert_int_equal(store_prune(ST, t + 7000), 1);
    char *gone = NULL;
    assert_int_equal(store_run_result(ST, rid, &gone), SKED_ENOTFOUND);
    assert_null(gone);
    store_checkpoint_t cp;
    assert_int_equal(store_run_get_detail(ST, rid, &r, NULL, NULL, &cp), SKED_ENOTFOUND);
}

/* A run without a result; what a completion may not store. */
static void test_result_edges(void **state)
{
    char wid[SKED_ID_LEN], jid[SKED_ID_LEN];
    new_worker(ST, "w", "default", "", T0, wid);
    new_job(ST, "edges", 0, NULL, true, T0, jid);
    char *res = NULL;
    assert_int_equal(store_run_result(ST, "run_00000000000000000000000000", &res), SKED_ENOTFOUND);
    size_t n;
    store_claimed_t *cl = claim(ST, wid, 1, T0, &n);
    assert_int_equal(n, 1);
    char rid[SKED_ID_LEN];
    memcpy(rid, cl[0].run.id, SKED_ID_LEN);
    int64_t fence = cl[0].run.fence;
    assert_null(run_result(ST, rid)); /* running: none yet */

    /* An attempt given back unstarted stores neither (it is undone). */
    store_result_t back = {ATTEMPT_NOT_STARTED, -1, 0, "refused", "1", "cp"};
    assert_int_equal(store_complete(ST, rid, 1, fence, NULL, &back, T0 + 1), 0);
    assert_int_equal(run_state(ST, rid), RUN_SCHEDULED);
    assert_checkpoint(ST, rid, 0, 0, NULL);
    free_claimed(cl, n);

    cl = claim(ST, wid, 1, T0 + 2, &n);
    assert_int_equal(n, 1);
    fence = cl[0].run.fence;
    assert_null(cl[0].checkpoint.data);
    confirm(ST, wid, &cl[0], T0 + 3);
    char *big = xmalloc(RESULTS_MAX_BYTES + 2);
    memset(big, '7', RESULTS_MAX_BYTES + 1);
    big[RESULTS_MAX_BYTES + 1] = '\0';
    store_result_t huge = {ATTEMPT_SUCCEEDED, 0, 0, NULL, big, NULL};
    assert_int_equal(store_complete(ST, rid, 1, fence, NULL, &huge, T0 + 4), SKED_EINVAL);
    huge = (store_result_t){ATTEMPT_SUCCEEDED, 0, 0, NULL, NULL, big};
    assert_int_equal(store_complete(ST, rid, 1, fence, NULL, &huge, T0 + 4), SKED_EINVAL);
    free(big);
    assert_int_equal(run_state(ST, rid), RUN_RUNNING);
    /* Succeeded without a result: none. */
    assert_int_equal(store_complete(ST, rid, 1, fence, NULL, &RES_OK, T0 + 5), 0);
    assert_null(run_result(ST, rid));
    free_claimed(cl, n);
}

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
        T(test_open_and_ping),
        T(test_schema_version_refused),
        T(test_job_create_get),
        T(test_job_idempotency),
        T(test_job_create_batch),
        T(test_job_delete_reuses_name),
        T(test_job_list_filters),
        T(test_job_list_paging),
        T(test_job_list_sorts),
        T(test_job_create_concurrent),
        T(test_job_update),
        T(test_fire_cas),
        T(test_fire_two_servers),
        T(test_trigger_and_next_claimable),
        T(test_claim_basics),
        T(test_claim_not_before),
        T(test_claim_ahead),
        T(test_claim_priority_aging),
        T(test_claim_backlog_bounded),
        T(test_claim_queues_constraints),
        T(test_claim_max_concurrency),
        T(test_claim_overlap),
        T(test_claim_paused_and_draining),
        T(test_claim_concurrent),
        T(test_heartbeat),
        T(test_complete_success_idempotent_stale),
        T(test_complete_batch),
        T(test_complete_retry_backoff),
        T(test_complete_exact_backoff_and_timeout),
        T(test_complete_cancel_requested),
        T(test_cancel),
        T(test_job_delete_cancels_runs),
        T(test_pause_resume_schedules),
        T(test_reap_lease_expiry),
        T(test_reap_cancel_and_workers),
        T(test_workers),
        T(test_logs),
        T(test_logs_by_attempt),
        T(test_log_cap),
        T(test_log_cap_default),
        T(test_prune),
        T(test_tokens),
        T(test_users),
        T(test_user_tokens),
        T(test_audit_list),
        T(test_audit_commits_with_the_change),
        T(test_namespace_filters),
        T(test_run_minutes),
        T(test_run_list_paging),
        T(test_notify),
        T(test_durability),
        T(test_unconfirmed_claim_returns_uncharged),
        T(test_complete_not_started),
        T(test_worker_bound_to_owner),
        T(test_worker_namespace_claims),
        T(test_legacy_worker_adopted),
        T(test_fences_unguessable),
        T(test_counts_follow_every_change),
        T(test_counts_concurrent),
        T(test_ready_probes_a_write),
        T(test_miss_ledger),
        T(test_claimable_per_job_state),
        T(test_claim_past_unmatched_backlog),
        T(test_plugin_registry),
        T(test_claim_routing_by_type),
        T(test_state_machine_enforced),
        T(test_alert_rules_crud),
        T(test_alert_failed_and_retrying),
        T(test_alert_global_scope),
        T(test_alert_outbox),
        T(test_alert_ack),
        T(test_alert_worker_lost),
        T(test_alert_sla),
        T(test_alert_overrun),
        T(test_alert_missed),
        T(test_alert_backlog),
        T(test_alert_job_rules_follow_spec),
        T(test_alert_list),
        T(test_alert_one_open_under_race),
        T(test_alert_retry_canceled),
        T(test_alert_events),
        T(test_events_every_change),
        T(test_events_prune),
        T(test_explain_facts),
        T(test_checkpoint_heartbeat_fenced),
        T(test_checkpoint_survives_retries),
        T(test_result_edges),
    };
#undef T
    return cmocka_run_group_tests_name(g_backend, tests, NULL, NULL);
}
