/*
 * Unit tests for core/explain: "why isn't it running?" decided from facts
 * set up here by hand, every branch of explain_job and explain_run. No
 * store, no clock: `now` is a parameter. The expected codes, fields and the
 * words a sentence must name come from the rules in explain.h (what a claim
 * does), not from the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "core/explain.h"

#define T0      INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define SEC     INT64_C(1000)
#define MIN     (60 * SEC)
#define NOW     (T0 + 10 * MIN)
#define TIMEOUT (30 * SEC)
#define GRACE   (2 * SEC)

/* ---- building facts ------------------------------------------------------ */

/* An active job of queue "default" in namespace "team-a", no schedule, no
 * runs, no workers. */
static explain_facts_t job(void)
{
    return (explain_facts_t){.job_id = "job_1",
                             .ns = "team-a",
                             .queue = "default",
                             .constraints = "",
                             .job_state = EXPLAIN_STATE_ACTIVE,
                             .job_updated_ms = T0,
                             .overlap = OVERLAP_ALLOW,
                             .max_attempts = 3,
                             .next_fire_ms = -1,
                             .last_fire_ms = -1,
                             .worker_timeout_ms = TIMEOUT,
                             .lease_grace_ms = GRACE};
}

/* A live, active worker of queue "default", 2 slots, none busy. */
static explain_worker_t worker(const char *id, const char *name)
{
    return (explain_worker_t){.id = id,
                              .name = name,
                              .queues = "default",
                              .labels = "",
                              .ns = "",
                              .state = EXPLAIN_WORKER_ACTIVE,
                              .slots = 2,
                              .running = 0,
                              .heartbeat_ms = NOW - SEC};
}

/* A run in state s, fired at T0 and due then, no attempt. */
static explain_run_t run(const char *id, run_state_t s)
{
    return (explain_run_t){.id = id,
                           .state = s,
                           .fire_ms = T0,
                           .not_before_ms = T0,
                           .finished_ms = -1,
                           .worker_id = "",
                           .lease_expires_ms = -1,
                           .last = {.n = 0, .exit_code = -1}};
}

/* A run leased to worker wid since `since`, lease to NOW + 8 s. */
static explain_run_t running(const char *id, const char *wid, int64_t since)
{
    explain_run_t r = run(id, RUN_RUNNING);
    r.attempt = 1;
    r.worker_id = wid;
    r.lease_expires_ms = NOW + 8 * SEC;
    r.last = (explain_attempt_t){
        .n = 1, .worker_id = wid, .started_ms = since, .finished_ms = -1, .exit_code = -1};
    return r;
}

static void with_runs(explain_facts_t *f, const explain_run_t *runs, size_t n, int64_t ndue)
{
    f->runs = runs;
    f->nruns = n;
    f->running = 0;
    f->nwaiting = 0;
    for (size_t i = 0; i < n; i++) {
        if (runs[i].state == RUN_RUNNING)
            f->running++;
        else
            f->nwaiting++;
    }
    f->ndue = ndue;
}

static void with_workers(explain_facts_t *f, const explain_worker_t *w, size_t n)
{
    f->workers = w;
    f->nworkers = n;
    f->live_workers = 0;
    for (size_t i = 0; i < n; i++)
        f->live_workers += w[i].state != EXPLAIN_WORKER_LOST && NOW - w[i].heartbeat_ms <= TIMEOUT;
}

/* ---- checking answers ------------------------------------------------------ */

static const char *codes(const explain_t *e, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < e->n; i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", i ? "," : "", explain_code_name(e->v[i].code));
    }
    return buf;
}

/* The reasons' codes, in order, are exactly `want` (comma-separated). */
static void expect_codes(const explain_t *e, const char *want)
{
    char got[1024];
    codes(e, got, sizeof got);
    if (strcmp(got, want) != 0) {
        for (size_t i = 0; i < e->n; i++)
            print_message("  %s: %s\n", explain_code_name(e->v[i].code), e->v[i].message);
        fail_msg("reasons [%s], want [%s]", got, want);
    }
    for (size_t i = 0; i < e->n; i++)
        assert_true(e->v[i].message && strlen(e->v[i].message) > 10);
}

/* The reason of code c (it must be there). */
static const explain_reason_t *reason(const explain_t *e, explain_code_t c)
{
    for (size_t i = 0; i < e->n; i++)
        if (e->v[i].code == c) return &e->v[i];
    fail_msg("no reason %s", explain_code_name(c));
    return NULL;
}

/* r's sentence names `what`. */
static void says(const explain_reason_t *r, const char *what)
{
    if (!strstr(r->message, what))
        fail_msg("%s: \"%s\" does not name \"%s\"", explain_code_name(r->code), r->message, what);
}

static void says_time(const explain_reason_t *r, int64_t ms)
{
    char t[SKED_RFC3339_LEN];
    clock_format_rfc3339(ms, t, sizeof t);
    says(r, t);
}

/* ---- names ------------------------------------------------------------------ */

static void test_code_names(void **state)
{
    static const char *const want[] = {"job_deleted",
                                       "paused",
                                       "next_fire",
                                       "no_schedule",
                                       "schedule_exhausted",
                                       "running",
                                       "starting",
                                       "lease_expired",
                                       "cancel_requested",
                                       "retry_backoff",
                                       "lease_lost",
                                       "not_yet_due",
                                       "overlap_forbid",
                                       "overlap_replace",
                                       "max_concurrency",
                                       "no_worker_for_queue",
                                       "worker_other_namespace",
                                       "no_worker_labels",
                                       "workers_draining",
                                       "workers_full",
                                       "awaiting_claim",
                                       "finished",
                                       "waiting_on_upstream",
                                       "waiting_on_members",
                                       "waiting_for_slot",
                                       "no_worker_with_type"};
    assert_int_equal(sizeof want / sizeof *want, EXPLAIN_CODE_COUNT);
    for (int c = 0; c < EXPLAIN_CODE_COUNT; c++)
        assert_string_equal(explain_code_name((explain_code_t)c), want[c]);
    assert_null(explain_code_name(EXPLAIN_CODE_COUNT));
    assert_null(explain_code_name((explain_code_t)-1));
}

/* ---- the job's own state -------------------------------------------------- */

static void test_deleted_job(void **state)
{
    explain_facts_t f = job();
    f.job_state = EXPLAIN_STATE_DELETED;
    f.job_updated_ms = T0 + 5 * MIN;
    explain_run_t runs[] = {running("run_a", "wrk_1", T0)};
    runs[0].cancel_requested = true;
    runs[0].reason = "job deleted";
    with_runs(&f, runs, 1, 0);
    f.next_fire_ms = NOW + MIN; /* a deleted job's schedules never fire: not reported */
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "job_deleted,cancel_requested");
    assert_int_equal(e.v[0].at_ms, T0 + 5 * MIN);
    says_time(&e.v[0], T0 + 5 * MIN);
    assert_string_equal(e.v[1].run_id, "run_a");
    assert_string_equal(e.v[1].worker_id, "wrk_1");
    says(&e.v[1], "job deleted");
    explain_clear(&e);

    /* A run of it that is not running says the same. */
    explain_run_t r = run("run_b", RUN_PENDING);
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "job_deleted");
    explain_clear(&e);
}

static void test_paused_job(void **state)
{
    explain_facts_t f = job();
    f.job_state = EXPLAIN_STATE_PAUSED;
    f.job_updated_ms = T0 + MIN;
    f.next_fire_ms = NOW + MIN;
    f.nscheds = 1;
    explain_run_t runs[] = {running("run_a", "wrk_1", T0), run("run_b", RUN_PENDING),
                            run("run_c", RUN_SCHEDULED)};
    with_runs(&f, runs, 3, 2);
    explain_worker_t w[] = {worker("wrk_1", "w1")};
    with_workers(&f, w, 1);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    /* Paused first; its running run still runs; nothing fires, so no next_fire. */
    expect_codes(&e, "paused,running");
    assert_int_equal(e.v[0].since_ms, T0 + MIN);
    assert_int_equal(e.v[0].count, 2);
    says(&e.v[0], "2 of its runs are held");
    explain_clear(&e);

    explain_run(&f, &runs[1], NOW, &e);
    expect_codes(&e, "paused");
    assert_string_equal(e.v[0].run_id, "run_b");
    explain_clear(&e);
}

/* ---- when it fires -------------------------------------------------------- */

static void test_next_fire_of_a_schedule(void **state)
{
    explain_facts_t f = job();
    f.nscheds = 2;
    f.next_fire_ms = NOW + 5 * MIN;
    f.next_sched_id = "sch_2";
    explain_worker_t w[] = {worker("wrk_1", "w1")};
    with_workers(&f, w, 1);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "next_fire");
    assert_int_equal(e.v[0].at_ms, NOW + 5 * MIN);
    assert_string_equal(e.v[0].schedule_id, "sch_2");
    assert_null(e.v[0].run_id);
    says_time(&e.v[0], NOW + 5 * MIN);
    says(&e.v[0], "in 5m");
    says(&e.v[0], "sch_2");
    explain_clear(&e);
}

static void test_next_fire_of_a_run_made_ahead(void **state)
{
    explain_facts_t f = job();
    f.nscheds = 1;
    f.next_fire_ms = NOW + 5 * MIN;
    f.next_sched_id = "sch_1";
    explain_run_t runs[] = {run("run_a", RUN_SCHEDULED)};
    runs[0].fire_ms = runs[0].not_before_ms = NOW + 500;
    with_runs(&f, runs, 1, 0);
    explain_worker_t w[] = {worker("wrk_1", "w1")};
    with_workers(&f, w, 1);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "next_fire");
    assert_int_equal(e.v[0].at_ms, NOW + 500);
    assert_string_equal(e.v[0].run_id, "run_a");
    assert_null(e.v[0].schedule_id);
    explain_clear(&e);

    /* The run's own answer: made ahead, due at its not_before (fire time plus jitter). */
    runs[0].not_before_ms = NOW + 2 * MIN;
    explain_run(&f, &runs[0], NOW, &e);
    expect_codes(&e, "not_yet_due");
    assert_int_equal(e.v[0].at_ms, NOW + 2 * MIN);
    assert_int_equal(e.v[0].since_ms, NOW + 500);
    says_time(&e.v[0], NOW + 2 * MIN);
    says(&e.v[0], "jitter");
    explain_clear(&e);
}

static void test_no_schedule_and_exhausted(void **state)
{
    explain_facts_t f = job();
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "no_schedule");
    says(&e.v[0], "triggered");
    explain_clear(&e);

    f.nscheds = 1;
    f.last_fire_ms = T0 + MIN;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "schedule_exhausted");
    assert_int_equal(e.v[0].at_ms, T0 + MIN);
    says_time(&e.v[0], T0 + MIN);
    explain_clear(&e);

    /* A job whose last run still runs: the run says it, not "exhausted". */
    explain_run_t runs[] = {running("run_a", "wrk_1", T0)};
    with_runs(&f, runs, 1, 0);
    explain_job(&f, NOW, &e);
    expect_codes(&e, "running");
    explain_clear(&e);

    /* A done job (every schedule over) is exhausted too. */
    with_runs(&f, NULL, 0, 0);
    f.job_state = EXPLAIN_STATE_DONE;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "schedule_exhausted");
    explain_clear(&e);
}

/* ---- running runs ----------------------------------------------------------- */

static void test_running_starting_expired_canceling(void **state)
{
    explain_facts_t f = job();
    explain_worker_t w[] = {worker("wrk_1", "w1")};
    w[0].running = 1;
    with_workers(&f, w, 1);
    explain_run_t r = running("run_a", "wrk_1", T0 + MIN);
    explain_run_t runs[] = {r};
    with_runs(&f, runs, 1, 0);
    explain_t e = EXPLAIN_INIT;

    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "running");
    assert_string_equal(e.v[0].worker_id, "wrk_1");
    assert_int_equal(e.v[0].since_ms, T0 + MIN);
    assert_int_equal(e.v[0].at_ms, NOW + 8 * SEC);
    assert_int_equal(e.v[0].attempt, 1);
    says(&e.v[0], "w1 (wrk_1)");
    says(&e.v[0], "attempt 1 of 3");
    says_time(&e.v[0], T0 + MIN);
    says_time(&e.v[0], NOW + 8 * SEC);
    explain_clear(&e);

    r.unconfirmed = true;
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "starting");
    says_time(&e.v[0], NOW + 8 * SEC);
    explain_clear(&e);

    r.unconfirmed = false;
    r.lease_expires_ms = NOW - 3 * SEC;
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "lease_expired");
    assert_int_equal(e.v[0].at_ms, NOW - 3 * SEC);
    says_time(&e.v[0], NOW - 3 * SEC);
    says_time(&e.v[0], NOW - 3 * SEC + GRACE); /* when the reaper moves it on */
    says(&e.v[0], "3s ago");
    says(&e.v[0], "as lost");
    explain_clear(&e);

    /* Expired before it was ever confirmed: given back, uncharged. */
    r.unconfirmed = true;
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "lease_expired");
    says(&e.v[0], "never reported it started");
    says(&e.v[0], "not charged");
    explain_clear(&e);
    r.unconfirmed = false;

    r.cancel_requested = true;
    r.reason = "canceled by alice";
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "cancel_requested");
    says(&e.v[0], "canceled by alice");
    explain_clear(&e);

    /* A worker not among the facts is named by its id. */
    r = running("run_a", "wrk_gone", T0);
    explain_run(&f, &r, NOW, &e);
    says(&e.v[0], "worker wrk_gone");
    explain_clear(&e);
}

static void test_running_runs_named_up_to_a_cap(void **state)
{
    explain_facts_t f = job();
    explain_run_t runs[EXPLAIN_RUNS_NAMED + 3];
    char ids[EXPLAIN_RUNS_NAMED + 3][16];
    for (size_t i = 0; i < EXPLAIN_RUNS_NAMED + 3; i++) {
        snprintf(ids[i], sizeof ids[i], "run_%zu", i);
        runs[i] = running(ids[i], "wrk_1", T0);
    }
    with_runs(&f, runs, EXPLAIN_RUNS_NAMED + 3, 0);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    assert_int_equal(e.n, EXPLAIN_RUNS_NAMED);
    for (size_t i = 0; i < e.n; i++)
        assert_int_equal(e.v[i].code, EXPLAIN_RUNNING);
    explain_clear(&e);
}

/* ---- retries ---------------------------------------------------------------- */

static void test_retry_backoff_and_lease_lost(void **state)
{
    explain_facts_t f = job();
    explain_worker_t w[] = {worker("wrk_1", "w1")};
    with_workers(&f, w, 1);
    explain_run_t r = run("run_a", RUN_SCHEDULED);
    r.attempt = 1;
    r.not_before_ms = NOW + 40 * SEC;
    r.reason = "exit 3";
    r.last = (explain_attempt_t){.n = 1,
                                 .worker_id = "wrk_1",
                                 .started_ms = NOW - MIN,
                                 .finished_ms = NOW - 20 * SEC,
                                 .outcome = ATTEMPT_FAILED,
                                 .exit_code = 3};
    explain_run_t runs[] = {r};
    with_runs(&f, runs, 1, 0);
    explain_t e = EXPLAIN_INIT;

    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "retry_backoff");
    assert_int_equal(e.v[0].at_ms, NOW + 40 * SEC);
    assert_int_equal(e.v[0].since_ms, NOW - 20 * SEC);
    assert_int_equal(e.v[0].attempt, 2);
    says(&e.v[0], "exit 3");
    says(&e.v[0], "attempt 2 of 3");
    says(&e.v[0], "in 40s");
    says_time(&e.v[0], NOW + 40 * SEC);
    explain_clear(&e);

    /* The job's answer names it as well (no schedule: nothing fires after). */
    explain_job(&f, NOW, &e);
    expect_codes(&e, "retry_backoff");
    explain_clear(&e);

    runs[0].last.outcome = r.last.outcome = ATTEMPT_TIMEOUT;
    r.last.exit_code = -1;
    r.last.signal = 9;
    explain_run(&f, &r, NOW, &e);
    says(&e.v[0], "timed out");
    says(&e.v[0], "signal 9");
    explain_clear(&e);

    r.last.outcome = ATTEMPT_LOST;
    r.last.signal = 0;
    r.last.reason = "lease expired";
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "lease_lost");
    assert_string_equal(e.v[0].worker_id, "wrk_1");
    assert_int_equal(e.v[0].at_ms, NOW + 40 * SEC);
    says(&e.v[0], "lost its lease on worker w1 (wrk_1)");
    says(&e.v[0], "lease expired");
    says_time(&e.v[0], NOW + 40 * SEC);
    explain_clear(&e);
}

/* ---- the job's limits -------------------------------------------------------- */

static void test_overlap_forbid(void **state)
{
    explain_facts_t f = job();
    f.overlap = OVERLAP_FORBID;
    explain_worker_t w[] = {worker("wrk_1", "w1")};
    w[0].running = 1;
    with_workers(&f, w, 1);
    explain_run_t runs[] = {running("run_old", "wrk_1", T0), run("run_new", RUN_PENDING)};
    with_runs(&f, runs, 2, 1);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "running,overlap_forbid");
    const explain_reason_t *r = reason(&e, EXPLAIN_OVERLAP_FORBID);
    assert_string_equal(r->run_id, "run_old");
    assert_string_equal(r->worker_id, "wrk_1");
    assert_int_equal(r->count, 1);
    says(r, "run_old");
    says(r, "skipped");
    explain_clear(&e);

    explain_run(&f, &runs[1], NOW, &e);
    expect_codes(&e, "overlap_forbid");
    assert_string_equal(e.v[0].run_id, "run_old");
    explain_clear(&e);

    /* Nothing due: still said, since what comes due meanwhile is skipped. */
    with_runs(&f, runs, 1, 0);
    explain_job(&f, NOW, &e);
    expect_codes(&e, "running,overlap_forbid");
    explain_clear(&e);
}

static void test_overlap_replace(void **state)
{
    explain_facts_t f = job();
    f.overlap = OVERLAP_REPLACE;
    explain_worker_t w[] = {worker("wrk_1", "w1")};
    with_workers(&f, w, 1);
    explain_run_t runs[] = {running("run_old", "wrk_1", T0), run("run_new", RUN_PENDING)};
    runs[0].cancel_requested = true;
    runs[0].reason = "replaced by a newer run";
    with_runs(&f, runs, 2, 1);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "cancel_requested,overlap_replace");
    const explain_reason_t *r = reason(&e, EXPLAIN_OVERLAP_REPLACE);
    assert_string_equal(r->run_id, "run_old");
    assert_int_equal(r->count, 1);
    says(r, "run_old");
    explain_clear(&e);

    /* Nothing due: replace holds nothing back. */
    with_runs(&f, runs, 1, 0);
    explain_job(&f, NOW, &e);
    expect_codes(&e, "cancel_requested");
    explain_clear(&e);
}

static void test_max_concurrency(void **state)
{
    explain_facts_t f = job();
    f.max_concurrency = 2;
    explain_worker_t w[] = {worker("wrk_1", "w1")};
    w[0].slots = 8;
    w[0].running = 2;
    with_workers(&f, w, 1);
    explain_run_t runs[] = {running("run_1", "wrk_1", T0), running("run_2", "wrk_1", T0),
                            run("run_3", RUN_PENDING)};
    with_runs(&f, runs, 3, 1);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "running,running,max_concurrency");
    const explain_reason_t *r = reason(&e, EXPLAIN_MAX_CONCURRENCY);
    assert_int_equal(r->count, 2);
    assert_int_equal(r->limit, 2);
    says(r, "2 of at most 2");
    explain_clear(&e);

    explain_run(&f, &runs[2], NOW, &e);
    expect_codes(&e, "max_concurrency");
    explain_clear(&e);

    /* Room for one more: the due run waits for a claim. */
    f.max_concurrency = 3;
    explain_run(&f, &runs[2], NOW, &e);
    expect_codes(&e, "awaiting_claim");
    explain_clear(&e);
}

/* ---- the pool ------------------------------------------------------------------ */

static void test_no_worker_for_queue(void **state)
{
    explain_facts_t f = job();
    f.queue = "gpu";
    explain_run_t runs[] = {run("run_a", RUN_PENDING)};
    with_runs(&f, runs, 1, 1);
    explain_t e = EXPLAIN_INIT;

    /* Nobody at all. */
    explain_job(&f, NOW, &e);
    expect_codes(&e, "no_worker_for_queue");
    assert_string_equal(e.v[0].queue, "gpu");
    assert_int_equal(e.v[0].count, 0);
    assert_null(e.v[0].worker_id);
    says(&e.v[0], "'gpu'");
    says(&e.v[0], "no worker is live");
    explain_clear(&e);

    /* One that served it is lost, one whose heartbeat is stale is not live
     * either (the reaper has not marked it yet); two others serve other
     * queues. The one heard from last is named. */
    explain_worker_t w[] = {worker("wrk_lost", "old-gpu"), worker("wrk_stale", "gpu-box"),
                            worker("wrk_a", "a"), worker("wrk_b", "b")};
    w[0].queues = "gpu";
    w[0].state = EXPLAIN_WORKER_LOST;
    w[0].heartbeat_ms = NOW - 10 * MIN;
    w[1].queues = "cpu,gpu";
    w[1].heartbeat_ms = NOW - TIMEOUT - SEC;
    with_workers(&f, w, 4);
    assert_int_equal(f.live_workers, 2);
    explain_run(&f, &runs[0], NOW, &e);
    expect_codes(&e, "no_worker_for_queue");
    assert_string_equal(e.v[0].worker_id, "wrk_stale");
    assert_int_equal(e.v[0].since_ms, NOW - TIMEOUT - SEC);
    assert_int_equal(e.v[0].count, 2);
    says(&e.v[0], "gpu-box (wrk_stale)");
    says(&e.v[0], "2 live workers serve other queues");
    says_time(&e.v[0], NOW - TIMEOUT - SEC);
    explain_clear(&e);

    /* Nothing due, but a fire to come: the same warning, after the next fire. */
    f.nscheds = 1;
    f.next_fire_ms = NOW + MIN;
    with_runs(&f, NULL, 0, 0);
    explain_job(&f, NOW, &e);
    expect_codes(&e, "next_fire,no_worker_for_queue");
    explain_clear(&e);
}

static void test_worker_other_namespace(void **state)
{
    explain_facts_t f = job();
    explain_run_t runs[] = {run("run_a", RUN_PENDING)};
    with_runs(&f, runs, 1, 1);
    explain_worker_t w[] = {worker("wrk_b", "wb")};
    w[0].ns = "team-b";
    with_workers(&f, w, 1);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "worker_other_namespace");
    assert_string_equal(e.v[0].ns, "team-a");
    assert_string_equal(e.v[0].queue, "default");
    assert_string_equal(e.v[0].worker_id, "wrk_b");
    assert_int_equal(e.v[0].count, 1);
    says(&e.v[0], "(wb)");
    if (strstr(e.v[0].message, "team-b")) fail_msg("names another team's namespace");
    says(&e.v[0], "'team-a'");
    explain_clear(&e);

    /* A worker of several namespaces, one of them the job's, serves it. */
    w[0].ns = "team-b,team-a";
    explain_job(&f, NOW, &e);
    expect_codes(&e, "awaiting_claim");
    explain_clear(&e);
}

static void test_no_worker_labels(void **state)
{
    explain_facts_t f = job();
    f.constraints = "disk=ssd";
    explain_run_t runs[] = {run("run_a", RUN_PENDING)};
    with_runs(&f, runs, 1, 1);
    explain_worker_t w[] = {worker("wrk_1", "w1"), worker("wrk_2", "w2")};
    w[0].labels = "disk=hdd";
    w[1].labels = "zone=b";
    with_workers(&f, w, 2);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "no_worker_labels");
    assert_string_equal(e.v[0].labels, "disk=ssd");
    assert_null(e.v[0].worker_id);
    says(&e.v[0], "disk=ssd");
    says(&e.v[0], "'default'");
    explain_clear(&e);

    /* Each label is had by some worker, none has both: the closest is named
     * with what it lacks. */
    f.constraints = "disk=ssd,gpu=1,zone=b";
    w[0].labels = "disk=ssd,zone=b";
    w[1].labels = "gpu=1";
    explain_job(&f, NOW, &e);
    expect_codes(&e, "no_worker_labels");
    assert_string_equal(e.v[0].labels, "gpu=1");
    assert_string_equal(e.v[0].worker_id, "wrk_1");
    says(&e.v[0], "w1 (wrk_1)");
    says(&e.v[0], "lacks gpu=1");
    explain_clear(&e);

    /* A worker of another namespace does not count for the labels: it
     * could not take the run anyway. */
    f.constraints = "disk=ssd,gpu=1";
    w[0].labels = "disk=ssd";
    w[1].labels = "disk=ssd,gpu=1";
    w[1].ns = "team-b";
    explain_job(&f, NOW, &e);
    expect_codes(&e, "no_worker_labels");
    assert_string_equal(e.v[0].labels, "gpu=1");
    explain_clear(&e);

    /* Labels met: the run awaits a claim. */
    w[0].labels = "disk=ssd,gpu=1,zone=b";
    explain_job(&f, NOW, &e);
    expect_codes(&e, "awaiting_claim");
    explain_clear(&e);
}

/* A job of a plugin type: only workers that advertised the type count;
 * shell and http jobs run anywhere. The type comes after queue, namespace
 * and labels, as in the claim; draining and full count only workers with
 * the type. */
static void test_no_worker_with_type(void **state)
{
    explain_facts_t f = job();
    f.type = "sql";
    explain_run_t runs[] = {run("run_a", RUN_PENDING)};
    with_runs(&f, runs, 1, 1);
    explain_worker_t w[] = {worker("wrk_1", "w1"), worker("wrk_2", "w2")};
    w[0].types = ",noop,";
    w[1].types = ",sqlite,";
    with_workers(&f, w, 2);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "no_worker_with_type");
    assert_string_equal(e.v[0].type, "sql");
    assert_string_equal(e.v[0].queue, "default");
    assert_int_equal(e.v[0].count, 2);
    says(&e.v[0], "plugin type 'sql'");
    says(&e.v[0], "w1, w2");
    says(&e.v[0], "--plugin-dir");
    explain_clear(&e);

    /* Labels are judged first: a worker that lacks them is not named. */
    f.constraints = "gpu=1";
    w[1].labels = "gpu=1";
    explain_job(&f, NOW, &e);
    expect_codes(&e, "no_worker_with_type");
    assert_string_equal(e.v[0].worker_id, "wrk_2");
    assert_int_equal(e.v[0].count, 1);
    explain_clear(&e);

    /* The worker with the type is draining: that is the reason then. */
    w[1].types = ",noop,sql,";
    w[1].state = EXPLAIN_WORKER_DRAINING;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "workers_draining");
    explain_clear(&e);
    w[1].state = EXPLAIN_WORKER_ACTIVE;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "awaiting_claim");
    explain_clear(&e);

    /* Built-in types need no advertising. */
    f.constraints = "";
    w[0].types = w[1].types = NULL;
    static const char *const builtin[] = {"shell", "http", NULL};
    for (size_t i = 0; i < 3; i++) {
        f.type = builtin[i];
        explain_job(&f, NOW, &e);
        expect_codes(&e, "awaiting_claim");
        explain_clear(&e);
    }
}

static void test_workers_draining_and_full(void **state)
{
    explain_facts_t f = job();
    explain_run_t runs[] = {run("run_a", RUN_PENDING)};
    with_runs(&f, runs, 1, 1);
    explain_worker_t w[] = {worker("wrk_1", "w1"), worker("wrk_2", "w2"), worker("wrk_3", "w3")};
    w[0].state = w[1].state = EXPLAIN_WORKER_DRAINING;
    w[2].queues = "other"; /* active, but not of this queue */
    with_workers(&f, w, 3);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "workers_draining");
    assert_int_equal(e.v[0].count, 2);
    assert_string_equal(e.v[0].worker_id, "wrk_1");
    says(&e.v[0], "w1, w2");
    explain_clear(&e);

    /* One undrained, its slots all busy; the draining one does not count. */
    w[1].state = EXPLAIN_WORKER_ACTIVE;
    w[1].slots = 3;
    w[1].running = 3;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "workers_full");
    assert_int_equal(e.v[0].count, 3);
    assert_int_equal(e.v[0].limit, 3);
    assert_string_equal(e.v[0].worker_id, "wrk_2");
    says(&e.v[0], "3 of 3 slots");
    says(&e.v[0], "w2");
    explain_clear(&e);

    /* Full matters only to a due run: one to come is not held back by it. */
    explain_run_t later = run("run_b", RUN_SCHEDULED);
    later.not_before_ms = NOW + MIN;
    explain_run(&f, &later, NOW, &e);
    expect_codes(&e, "not_yet_due");
    explain_clear(&e);

    /* A slot frees up: awaiting a claim, since when and how many. */
    w[1].running = 2;
    f.ndue = 4;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "awaiting_claim");
    assert_string_equal(e.v[0].run_id, "run_a");
    assert_int_equal(e.v[0].since_ms, T0);
    assert_int_equal(e.v[0].count, 4);
    says_time(&e.v[0], T0);
    says(&e.v[0], "3 more");
    explain_clear(&e);
}

/* Due runs first say what holds them, then what comes later. */
static void test_order_with_due_runs(void **state)
{
    explain_facts_t f = job();
    f.nscheds = 1;
    f.next_fire_ms = NOW + MIN;
    f.next_sched_id = "sch_1";
    f.queue = "gpu";
    explain_run_t runs[] = {run("run_a", RUN_PENDING)};
    with_runs(&f, runs, 1, 1);
    explain_t e = EXPLAIN_INIT;
    explain_job(&f, NOW, &e);
    expect_codes(&e, "no_worker_for_queue,next_fire");
    assert_string_equal(e.v[0].run_id, "run_a");
    explain_clear(&e);
}

/* ---- finished and waiting runs ---------------------------------------------- */

static void test_finished_run(void **state)
{
    explain_facts_t f = job();
    explain_run_t r = run("run_a", RUN_FAILED);
    r.finished_ms = NOW - MIN;
    r.reason = "exit 2";
    explain_t e = EXPLAIN_INIT;
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "finished");
    assert_string_equal(e.v[0].state, "failed");
    assert_int_equal(e.v[0].at_ms, NOW - MIN);
    says(&e.v[0], "failed");
    says(&e.v[0], "exit 2");
    says_time(&e.v[0], NOW - MIN);
    explain_clear(&e);

    /* Even when its job was deleted since. */
    f.job_state = EXPLAIN_STATE_DELETED;
    r.state = RUN_SUCCEEDED;
    r.reason = NULL;
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "finished");
    assert_string_equal(e.v[0].state, "succeeded");
    explain_clear(&e);
}

/* A waiting run says what it waits for: its upstreams (with their counts),
 * its members (a workflow or array run), or a slot of its array; a waiting
 * run with none of those facts gets no reason made up for it. */
static void test_waiting_runs(void **state)
{
    explain_facts_t f = job();
    explain_run_t r = run("run_a", RUN_WAITING);
    r.array_index = -1;
    explain_t e = EXPLAIN_INIT;
    explain_run(&f, &r, NOW, &e);
    assert_int_equal(e.n, 0);
    explain_clear(&e);
    explain_clear(&e); /* idempotent */

    r.rule = "one_failed";
    r.deps_n = 3;
    r.deps_ok = 1;
    r.deps_skip = 1;
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "waiting_on_upstream");
    assert_int_equal(e.v[0].count, 2);
    assert_int_equal(e.v[0].limit, 3);
    says(&e.v[0], "one_failed");
    says(&e.v[0], "2 of 3 ended");
    explain_clear(&e);

    r.rule = NULL;
    r.deps_n = r.deps_ok = r.deps_skip = 0;
    r.group = true;
    r.members = 5;
    r.members_open = 2;
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "waiting_on_members");
    assert_int_equal(e.v[0].count, 3);
    assert_int_equal(e.v[0].limit, 5);
    says(&e.v[0], "3 of 5 ended");
    explain_clear(&e);

    /* An array job's run with depends_on, released by its upstream: its
     * members are what it waits for now. */
    r.deps_n = r.deps_ok = 1;
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "waiting_on_members");
    says(&e.v[0], "3 of 5 ended");
    explain_clear(&e);
    r.deps_n = r.deps_ok = 0;

    r.members = r.members_open = 0; /* queued behind max_active_runs */
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "waiting_on_members");
    says(&e.v[0], "max_active_runs");
    explain_clear(&e);

    r.group = false;
    r.array_index = 7;
    r.parallel = 3;
    explain_run(&f, &r, NOW, &e);
    expect_codes(&e, "waiting_for_slot");
    assert_int_equal(e.v[0].limit, 3);
    says(&e.v[0], "index 7");
    says(&e.v[0], "at most 3");
    explain_clear(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_code_names),
        cmocka_unit_test(test_deleted_job),
        cmocka_unit_test(test_paused_job),
        cmocka_unit_test(test_next_fire_of_a_schedule),
        cmocka_unit_test(test_next_fire_of_a_run_made_ahead),
        cmocka_unit_test(test_no_schedule_and_exhausted),
        cmocka_unit_test(test_running_starting_expired_canceling),
        cmocka_unit_test(test_running_runs_named_up_to_a_cap),
        cmocka_unit_test(test_retry_backoff_and_lease_lost),
        cmocka_unit_test(test_overlap_forbid),
        cmocka_unit_test(test_overlap_replace),
        cmocka_unit_test(test_max_concurrency),
        cmocka_unit_test(test_no_worker_for_queue),
        cmocka_unit_test(test_worker_other_namespace),
        cmocka_unit_test(test_no_worker_labels),
        cmocka_unit_test(test_no_worker_with_type),
        cmocka_unit_test(test_workers_draining_and_full),
        cmocka_unit_test(test_order_with_due_runs),
        cmocka_unit_test(test_finished_run),
        cmocka_unit_test(test_waiting_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
