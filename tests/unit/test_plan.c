/*
 * Unit tests for core/plan (what a due schedule does in a scheduler pass,
 * and when a new schedule first fires) and for matching schedules by
 * definition (core/schedule.h schedule_match, with jobspec_schedule_read
 * for the canonical document). No store and no clock: every pass is given
 * its `now`, and the expected answers are worked out here from the rules in
 * plan.h, not taken from the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "core/jobspec.h"
#include "core/plan.h"

#define T0   INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define SEC  INT64_C(1000)
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)

#define GRACE     (5 * SEC)
#define LOOKAHEAD SEC
#define WALK      1000

/* "every 1m" anchored at T0, or "every 1s" when step is SEC. */
static schedule_t *every(int64_t step)
{
    schedule_spec_t spec = {
        SCHEDULE_EVERY, step == SEC ? "1s" : "1m", NULL, INT64_MIN, INT64_MAX, 0, T0};
    schedule_t *c = NULL;
    char err[256];
    assert_int_equal(schedule_compile(&spec, &c, err, sizeof err), 0);
    return c;
}

static plan_due_t due_of(const schedule_t *c, int64_t next, int64_t last, misfire_policy_t p,
                         int64_t window)
{
    return (plan_due_t){.compiled = c,
                        .next_fire_ms = next,
                        .last_fire_ms = last,
                        .end_ms = INT64_MAX,
                        .misfire = p,
                        .catch_up_window_ms = window};
}

/* plan_make for a pass at now with the default lookahead, grace and walk. */
static void make(const plan_due_t *d, int64_t now, plan_t *p)
{
    const plan_pass_t pass = {now, now + LOOKAHEAD, GRACE, WALK};
    plan_make(d, &pass, p);
}

static void assert_runs_from(const plan_t *p, int64_t first, int64_t step, run_state_t state)
{
    for (size_t i = 0; i < p->nruns; i++) {
        assert_int_equal(p->runs[i].fire_ms, first + (int64_t)i * step);
        assert_int_equal(p->runs[i].state, state);
        if (state == RUN_SCHEDULED) assert_null(p->runs[i].reason);
    }
}

static void assert_miss(const plan_t *p, int64_t first, int64_t last, int64_t count, int64_t prev,
                        const char *policy)
{
    assert_int_equal(p->miss.count, count);
    assert_int_equal(p->miss.first_ms, first);
    assert_int_equal(p->miss.last_ms, last);
    assert_int_equal(p->miss.prev_ms, prev);
    assert_non_null(strstr(p->miss.reason, "misfire"));
    assert_non_null(strstr(p->miss.reason, policy));
}

/* ---- on time ------------------------------------------------------------ */

static void test_on_time_fires_run(void **state)
{
    (void)state;
    schedule_t *c = every(SEC);
    plan_due_t d = due_of(c, T0, -1, MISFIRE_SKIP, 0);
    plan_t p;
    make(&d, T0, &p);
    /* Due up to now + lookahead: T0 and T0+1s, both on time. */
    assert_int_equal(p.note, PLAN_WALKED);
    assert_int_equal(p.nruns, 2);
    assert_runs_from(&p, T0, SEC, RUN_SCHEDULED);
    assert_int_equal(p.miss.count, 0);
    assert_int_equal(p.new_next_ms, T0 + 2 * SEC);
    assert_false(p.bounded);
    plan_clear(&p);

    /* Nothing due yet: nothing to do, next fire unchanged. */
    d.next_fire_ms = T0 + 10 * SEC;
    make(&d, T0, &p);
    assert_int_equal(p.nruns, 0);
    assert_int_equal(p.new_next_ms, T0 + 10 * SEC);
    plan_clear(&p);
    schedule_free(c);
}

/* Within the grace a late fire time is on time, whatever the policy; one
 * millisecond past it, it is missed. */
static void test_grace_edge(void **state)
{
    (void)state;
    schedule_t *c = every(MIN);
    static const misfire_policy_t policies[] = {MISFIRE_RUN_ONCE, MISFIRE_CATCH_UP, MISFIRE_SKIP};
    for (size_t i = 0; i < 3; i++) {
        plan_due_t d = due_of(c, T0, -1, policies[i], 0);
        plan_t p;
        make(&d, T0 + GRACE, &p); /* T0 == now - grace: not older */
        assert_int_equal(p.nruns, 1);
        assert_int_equal(p.runs[0].state, RUN_SCHEDULED);
        assert_int_equal(p.miss.count, 0);
        plan_clear(&p);

        make(&d, T0 + GRACE + 1, &p);
        /* Missed: run_once runs the latest (the only one), catch_up with a
         * zero window and skip pass it over. */
        if (policies[i] == MISFIRE_RUN_ONCE) {
            assert_int_equal(p.nruns, 1);
            assert_int_equal(p.runs[0].state, RUN_SCHEDULED);
            assert_int_equal(p.miss.count, 0);
        } else {
            assert_int_equal(p.nruns, 0);
            assert_int_equal(p.miss.count, 1);
        }
        plan_clear(&p);
    }
    schedule_free(c);
}

/* ---- the three policies after a gap --------------------------------------- */

/* An every-minute job that last fired at T0, planned at now: fire times
 * T0+1m .. up to now + lookahead are due. Each row gives the ledger stretch
 * (first and last missed minute passed over, 0 = none) and the minutes that
 * run (first and count); all of them end at T0+60m. */
static void test_policies_after_a_gap(void **state)
{
    (void)state;
    static const struct {
        misfire_policy_t policy;
        int64_t window_ms, now;
        int64_t miss_first, miss_last, run_first, nruns; /* in minutes after T0 */
    } rows[] = {
        /* Missed T0+1m .. T0+60m: only the latest runs. */
        {MISFIRE_RUN_ONCE, 0, T0 + HOUR + 30 * SEC, 1, 59, 60, 1},
        /* 2 s after T0+60m that one is on time: the latest missed is T0+59m. */
        {MISFIRE_RUN_ONCE, 0, T0 + HOUR + 2 * SEC, 1, 58, 59, 2},
        /* T0+50m is exactly now - window: inside it. Missed T0+1m .. T0+59m,
         * the older than the window passed over, T0+60m on time. */
        {MISFIRE_CATCH_UP, 10 * MIN, T0 + HOUR, 1, 49, 50, 11},
        /* One millisecond later T0+50m falls out of the window. */
        {MISFIRE_CATCH_UP, 10 * MIN, T0 + HOUR + 1, 1, 50, 51, 10},
        /* A window wider than the gap catches up everything. */
        {MISFIRE_CATCH_UP, 2 * HOUR, T0 + HOUR, 0, 0, 1, 60},
        /* None of the missed runs; T0+60m is on time. */
        {MISFIRE_SKIP, 0, T0 + HOUR + 2 * SEC, 1, 59, 60, 1},
        {MISFIRE_SKIP, 0, T0 + HOUR + 30 * SEC, 1, 60, 61, 0},
    };
    schedule_t *c = every(MIN);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        plan_due_t d = due_of(c, T0 + MIN, T0, rows[i].policy, rows[i].window_ms);
        plan_t p;
        make(&d, rows[i].now, &p);
        if (rows[i].miss_first)
            assert_miss(&p, T0 + rows[i].miss_first * MIN, T0 + rows[i].miss_last * MIN,
                        rows[i].miss_last - rows[i].miss_first + 1, T0,
                        misfire_policy_name(rows[i].policy));
        else
            assert_int_equal(p.miss.count, 0);
        assert_int_equal(p.nruns, rows[i].nruns);
        assert_runs_from(&p, T0 + rows[i].run_first * MIN, MIN, RUN_SCHEDULED);
        assert_int_equal(p.new_next_ms, T0 + 61 * MIN);
        assert_false(p.bounded);
        plan_clear(&p);
    }
    schedule_free(c);
}

/* ---- a backlog larger than a pass ----------------------------------------- */

/* Plans passes at now until the schedule is no longer bounded, as the
 * scheduler does, and checks what the passes add up to: every fire time
 * seen once, the ledger stretches chained (each goes on from the last fire
 * time the pass before walked), and the runs the policy wants. */
static void drain_backlog(misfire_policy_t policy, const char *name)
{
    schedule_t *c = every(SEC);
    const int64_t now = T0 + HOUR;
    const plan_pass_t pass = {now, now + LOOKAHEAD, GRACE, 100};
    int64_t next = T0, last = T0 - SEC, missed = 0, ran = 0, passes = 0;
    int64_t latest_missed_run = -1;
    for (;;) {
        plan_due_t d = due_of(c, next, last, policy, 0);
        plan_t p;
        plan_make(&d, &pass, &p);
        passes++;
        assert_true(p.miss.count + (int64_t)p.nruns <= 100);
        if (p.miss.count) {
            assert_int_equal(p.miss.first_ms, next); /* a stretch leads the walk */
            assert_int_equal(p.miss.prev_ms, last);  /* and goes on from the last pass's */
            assert_non_null(strstr(p.miss.reason, name));
            last = p.miss.last_ms;
        }
        missed += p.miss.count;
        for (size_t i = 0; i < p.nruns; i++) {
            assert_int_equal(p.runs[i].fire_ms, last + SEC);
            assert_int_equal(p.runs[i].state, RUN_SCHEDULED);
            if (p.runs[i].fire_ms < now - GRACE) latest_missed_run = p.runs[i].fire_ms;
            last = p.runs[i].fire_ms;
            ran++;
        }
        bool bounded = p.bounded;
        next = p.new_next_ms;
        plan_clear(&p);
        if (!bounded) break;
        assert_true(passes < 100);
    }
    /* T0 .. now+1s: 3602 fire times in passes of at most 100. */
    assert_int_equal(missed + ran, 3602);
    assert_int_equal(passes, 37);
    assert_int_equal(next, now + 2 * SEC);
    /* On time: now-5s .. now+1s (7). Missed: T0 .. now-6s. */
    if (policy == MISFIRE_RUN_ONCE) {
        assert_int_equal(ran, 7 + 1);
        assert_int_equal(latest_missed_run, now - 6 * SEC);
    } else {
        assert_int_equal(ran, 7);
        assert_int_equal(latest_missed_run, -1);
    }
    schedule_free(c);
}

static void test_backlog_run_once(void **state)
{
    (void)state;
    drain_backlog(MISFIRE_RUN_ONCE, "run_once");
}

static void test_backlog_skip(void **state)
{
    (void)state;
    drain_backlog(MISFIRE_SKIP, "skip");
}

/* A pass that stops inside a missed stretch must not run its last fire
 * time as "the latest": the latest is still ahead. */
static void test_run_once_bounded_inside_stretch(void **state)
{
    (void)state;
    schedule_t *c = every(SEC);
    plan_due_t d = due_of(c, T0, -1, MISFIRE_RUN_ONCE, 0);
    const plan_pass_t pass = {T0 + HOUR, T0 + HOUR + LOOKAHEAD, GRACE, 10};
    plan_t p;
    plan_make(&d, &pass, &p);
    assert_true(p.bounded);
    assert_int_equal(p.nruns, 0);
    assert_miss(&p, T0, T0 + 9 * SEC, 10, -1, "run_once");
    assert_int_equal(p.new_next_ms, T0 + 10 * SEC);
    plan_clear(&p);
    schedule_free(c);
}

/* ---- ends, exhaustion and broken schedules -------------------------------- */

static void test_end_and_exhausted(void **state)
{
    (void)state;
    schedule_t *c = every(SEC);
    plan_due_t d = due_of(c, T0, -1, MISFIRE_RUN_ONCE, 0);
    d.end_ms = T0 + 2 * SEC + 500; /* the row's end, even if the compiled form has none */
    plan_t p;
    make(&d, T0 + 10 * SEC, &p);
    /* T0 .. T0+2s due; all missed but the latest; then exhausted. */
    assert_miss(&p, T0, T0 + SEC, 2, -1, "run_once");
    assert_int_equal(p.nruns, 1);
    assert_runs_from(&p, T0 + 2 * SEC, SEC, RUN_SCHEDULED);
    assert_int_equal(p.new_next_ms, -1);
    assert_false(p.bounded);
    plan_clear(&p);

    d.next_fire_ms = -1; /* exhausted: nothing to do, ever */
    make(&d, T0 + 10 * SEC, &p);
    assert_int_equal(p.note, PLAN_WALKED);
    assert_int_equal(p.nruns, 0);
    assert_int_equal(p.miss.count, 0);
    assert_int_equal(p.new_next_ms, -1);
    plan_clear(&p);
    schedule_free(c);
}

static void test_unreadable_zone_is_left_due(void **state)
{
    (void)state;
    plan_due_t d = due_of(NULL, T0, -1, MISFIRE_SKIP, 0);
    d.compile_rc = SKED_EIO;
    d.compile_err = "cannot read zone 'Pacific/Chatham': Input/output error";
    plan_t p;
    make(&d, T0 + HOUR, &p);
    assert_int_equal(p.note, PLAN_RETRY);
    assert_int_equal(p.new_next_ms, T0);
    assert_int_equal(p.nruns, 0);
    assert_int_equal(p.miss.count, 0);
    plan_clear(&p);
}

static void test_broken_schedule_is_retired_with_a_reason(void **state)
{
    (void)state;
    plan_due_t d = due_of(NULL, T0, -1, MISFIRE_RUN_ONCE, 0);
    d.compile_rc = SKED_EINVAL;
    d.compile_err = "unknown time zone 'Mars/Olympus'";
    plan_t p;
    make(&d, T0, &p);
    assert_int_equal(p.note, PLAN_RETIRED);
    assert_int_equal(p.new_next_ms, -1);
    assert_int_equal(p.nruns, 1);
    assert_int_equal(p.runs[0].fire_ms, T0);
    assert_int_equal(p.runs[0].state, RUN_SKIPPED);
    assert_string_equal(p.runs[0].reason,
                        "schedule no longer valid: unknown time zone 'Mars/Olympus'");
    plan_clear(&p);
}

/* ---- first fire ----------------------------------------------------------- */

static void test_first_fire(void **state)
{
    (void)state;
    schedule_t *c = every(MIN);
    /* Stored exactly at a fire instant: that instant; a moment later: the next. */
    assert_int_equal(plan_first_fire(c, SCHEDULE_EVERY, T0 + MIN), T0 + MIN);
    assert_int_equal(plan_first_fire(c, SCHEDULE_EVERY, T0 + MIN + 1), T0 + 2 * MIN);
    schedule_free(c);

    static const struct {
        const char *at;
        int64_t now, want;
    } ats[] = {
        {"2026-01-01T00:00:05Z", T0, T0 + 5 * SEC}, /* ahead */
        {"2026-01-01T00:00:00Z", T0, T0},           /* exactly now */
        {"2025-12-31T23:00:00Z", T0, T0 - HOUR},    /* past: due at its own instant */
        {"1970-01-01T00:00:00Z", T0, 0},            /* long gone, still its instant */
    };
    for (size_t i = 0; i < sizeof ats / sizeof ats[0]; i++) {
        schedule_spec_t spec = {SCHEDULE_AT, ats[i].at, NULL, INT64_MIN, INT64_MAX, 0, INT64_MIN};
        char err[256];
        assert_int_equal(schedule_compile(&spec, &c, err, sizeof err), 0);
        assert_int_equal(plan_first_fire(c, SCHEDULE_AT, ats[i].now), ats[i].want);
        schedule_free(c);
    }

    /* A recurring schedule whose end is past never fires. */
    schedule_spec_t ended = {SCHEDULE_EVERY, "1m", NULL, INT64_MIN, T0 - HOUR, 0, T0 - 2 * HOUR};
    char err[256];
    assert_int_equal(schedule_compile(&ended, &c, err, sizeof err), 0);
    assert_int_equal(plan_first_fire(c, SCHEDULE_EVERY, T0), -1);
    schedule_free(c);
}

/* A past `at` planned right after it is stored: the policy decides. */
static void test_past_at_is_a_misfire(void **state)
{
    (void)state;
    schedule_spec_t spec = {SCHEDULE_AT, "2025-12-31T23:00:00Z", NULL, INT64_MIN, INT64_MAX, 0,
                            INT64_MIN};
    schedule_t *c = NULL;
    char err[256];
    assert_int_equal(schedule_compile(&spec, &c, err, sizeof err), 0);
    int64_t first = plan_first_fire(c, SCHEDULE_AT, T0);
    plan_t p;
    plan_due_t d = due_of(c, first, -1, MISFIRE_SKIP, 0);
    make(&d, T0, &p);
    assert_miss(&p, T0 - HOUR, T0 - HOUR, 1, -1, "skip");
    assert_int_equal(p.nruns, 0);
    assert_int_equal(p.new_next_ms, -1);
    plan_clear(&p);

    d.misfire = MISFIRE_RUN_ONCE;
    make(&d, T0, &p);
    assert_int_equal(p.miss.count, 0);
    assert_int_equal(p.nruns, 1);
    assert_runs_from(&p, T0 - HOUR, 0, RUN_SCHEDULED);
    plan_clear(&p);
    schedule_free(c);
}

/* ---- matching schedules by definition ------------------------------------- */

static schedule_spec_t cron(const char *expr, const char *tz)
{
    return (schedule_spec_t){SCHEDULE_CRON, expr, tz, INT64_MIN, INT64_MAX, 0, INT64_MIN};
}

static void test_same_definition(void **state)
{
    (void)state;
    schedule_spec_t a = cron("0 2 * * *", NULL), b = cron("0 2 * * *", "UTC");
    assert_true(schedule_same(&a, &b)); /* no zone is UTC */
    b.timezone = "";
    assert_true(schedule_same(&a, &b));
    b.jitter_ms = 30 * SEC; /* jitter moves not_before, not fire times */
    assert_true(schedule_same(&a, &b));
    b.timezone = "Europe/Berlin";
    assert_false(schedule_same(&a, &b));
    b = a;
    b.start_ms = T0;
    assert_false(schedule_same(&a, &b));
    b = a;
    b.end_ms = T0;
    assert_false(schedule_same(&a, &b));
    b = a;
    b.expr = "0 3 * * *";
    assert_false(schedule_same(&a, &b));
    schedule_spec_t e1 = {SCHEDULE_EVERY, "1m", NULL, INT64_MIN, INT64_MAX, 0, T0};
    schedule_spec_t e2 = e1;
    e2.anchor_ms = T0 + SEC;
    assert_false(schedule_same(&e1, &e2));
    e2 = e1;
    e2.kind = SCHEDULE_AT;
    assert_false(schedule_same(&e1, &e2));
}

static void test_match_by_definition_not_position(void **state)
{
    (void)state;
    const schedule_spec_t a = cron("0 2 * * *", "UTC"), b = cron("*/5 * * * *", "UTC");
    const schedule_spec_t c = cron("0 2 * * *", "Asia/Tokyo");
    /* Stored: a, b, a (a twice). Wanted: b first, a twice, then c. */
    const schedule_spec_t have[] = {a, b, a};
    const schedule_spec_t want[] = {b, a, c, a};
    size_t match[4];
    schedule_match(want, 4, have, 3, match);
    assert_int_equal(match[0], 1);
    assert_int_equal(match[1], 0);
    assert_int_equal(match[2], SIZE_MAX); /* new: no stored one of its definition */
    assert_int_equal(match[3], 2);        /* the second a takes the second stored a */

    /* Nothing stored (a create), or nothing wanted. */
    schedule_match(want, 4, have, 0, match);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(match[i], SIZE_MAX);
    schedule_match(want, 0, have, 3, match);
}

/* A canonical document's schedules read back to the definitions they were
 * written from, so a stored job's schedules are found in its document. */
static void test_canonical_schedules_read_back(void **state)
{
    (void)state;
    const char *text =
        "{\"name\":\"r\",\"command\":[\"true\"],\"schedules\":["
        "{\"cron\":\"0 2 * * "
        "*\",\"timezone\":\"Europe/Berlin\",\"start\":\"2026-01-01T00:00:00Z\"},"
        "{\"every\":\"90s\",\"anchor\":\"2026-01-01T00:00:00.250Z\",\"jitter\":\"5s\"},"
        "{\"at\":\"2026-03-01T12:00:00Z\",\"end\":\"2026-04-01T00:00:00Z\"},"
        "{\"cron\":\"@daily\"}]}";
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    assert_non_null(doc);
    jobspec_t spec;
    jobspec_error_t err;
    memset(&spec, 0, sizeof spec);
    assert_int_equal(jobspec_parse(doc, &spec, &err), 0);
    json_t *canon = jobspec_to_json(&spec);
    json_t *arr = json_object_get(canon, "schedules");
    assert_int_equal(json_array_size(arr), spec.nschedules);
    for (size_t i = 0; i < spec.nschedules; i++) {
        schedule_spec_t back;
        assert_int_equal(jobspec_schedule_read(json_array_get(arr, i), &back), 0);
        assert_true(schedule_same(&back, &spec.schedules[i].spec));
        assert_int_equal(back.jitter_ms, spec.schedules[i].spec.jitter_ms);
    }
    schedule_spec_t back;
    json_t *bad = json_pack("{s:s, s:s}", "cron", "* * * * *", "every", "1m");
    assert_int_equal(jobspec_schedule_read(bad, &back), SKED_EINVAL);
    json_decref(bad);
    assert_int_equal(jobspec_schedule_read(json_null(), &back), SKED_EINVAL);
    json_decref(canon);
    jobspec_free(&spec);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_on_time_fires_run),
        cmocka_unit_test(test_grace_edge),
        cmocka_unit_test(test_policies_after_a_gap),
        cmocka_unit_test(test_backlog_run_once),
        cmocka_unit_test(test_backlog_skip),
        cmocka_unit_test(test_run_once_bounded_inside_stretch),
        cmocka_unit_test(test_end_and_exhausted),
        cmocka_unit_test(test_unreadable_zone_is_left_due),
        cmocka_unit_test(test_broken_schedule_is_retired_with_a_reason),
        cmocka_unit_test(test_first_fire),
        cmocka_unit_test(test_past_at_is_a_misfire),
        cmocka_unit_test(test_same_definition),
        cmocka_unit_test(test_match_by_definition_not_position),
        cmocka_unit_test(test_canonical_schedules_read_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
