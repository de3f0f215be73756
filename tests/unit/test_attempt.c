/*
 * How an attempt ends (core/attempt.h): every outcome, cancel precedence,
 * retries until the policy's last attempt, the uncharged undo of an attempt
 * that never started, the reasons people read, the jittered backoff; and
 * the log cap's arithmetic at and around the cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/attempt.h"

#define NOW INT64_C(1767225600000)

static retry_policy_t three_tries(void)
{
    retry_policy_t p = {
        .max_attempts = 3, .initial_ms = 1000, .max_ms = 60000, .multiplier = 2.0, .jitter = false};
    return p;
}

static void test_success_and_failure(void **state)
{
    (void)state;
    retry_policy_t p = three_tries();
    attempt_end_t e = attempt_end(&p, 1, ATTEMPT_SUCCEEDED, NULL, false, NULL, 0.5, NOW);
    assert_int_equal(e.next, RUN_SUCCEEDED);
    assert_null(e.reason);

    /* A failure is retried after the backoff of the next attempt... */
    e = attempt_end(&p, 1, ATTEMPT_FAILED, "exit 3", false, NULL, 0.5, NOW);
    assert_int_equal(e.next, RUN_SCHEDULED);
    assert_int_equal(e.not_before_ms, NOW + 1000);
    assert_string_equal(e.reason, "exit 3");
    e = attempt_end(&p, 2, ATTEMPT_FAILED, NULL, false, NULL, 0.5, NOW);
    assert_int_equal(e.next, RUN_SCHEDULED);
    assert_int_equal(e.not_before_ms, NOW + 2000);
    /* ...until the last attempt, which fails the run with a reason. */
    e = attempt_end(&p, 3, ATTEMPT_FAILED, NULL, false, NULL, 0.5, NOW);
    assert_int_equal(e.next, RUN_FAILED);
    assert_string_equal(e.reason, "failed");
    e = attempt_end(&p, 3, ATTEMPT_LOST, NULL, false, NULL, 0.5, NOW);
    assert_string_equal(e.reason, "lost: lease expired");
    e = attempt_end(&p, 3, ATTEMPT_TIMEOUT, NULL, false, NULL, 0.5, NOW);
    assert_int_equal(e.next, RUN_FAILED);
    assert_string_equal(e.reason, "timeout");
    assert_string_equal(e.attempt_reason, "timeout");
    for (attempt_outcome_t o = 0; o < ATTEMPT_OUTCOME_COUNT; o++) {
        e = attempt_end(&p, 3, o, NULL, false, NULL, 0.5, NOW);
        assert_true(run_transition_ok(RUN_RUNNING, e.next));
    }
}

static void test_cancel_wins(void **state)
{
    (void)state;
    retry_policy_t p = three_tries();
    for (attempt_outcome_t o = 0; o < ATTEMPT_OUTCOME_COUNT; o++) {
        attempt_end_t e = attempt_end(&p, 1, o, "why", true, "canceled by alice", 0.5, NOW);
        assert_int_equal(e.next, RUN_CANCELED);
        assert_string_equal(e.reason, "canceled by alice");
    }
    /* Killed for a cancel nobody gave words to: the attempt's own, else
     * "canceled"; an undone attempt's reason says nothing of a cancel. */
    attempt_end_t e = attempt_end(&p, 1, ATTEMPT_CANCELED, "killed", false, NULL, 0.5, NOW);
    assert_string_equal(e.reason, "killed");
    e = attempt_end(&p, 1, ATTEMPT_CANCELED, NULL, false, NULL, 0.5, NOW);
    assert_string_equal(e.reason, "canceled");
    e = attempt_end(&p, 1, ATTEMPT_NOT_STARTED, "not started", true, NULL, 0.5, NOW);
    assert_int_equal(e.next, RUN_CANCELED);
    assert_string_equal(e.reason, "canceled");
}

static void test_not_started_is_uncharged(void **state)
{
    (void)state;
    retry_policy_t p = three_tries();
    /* Even on the last attempt: the attempt did not happen. */
    attempt_end_t e = attempt_end(&p, 3, ATTEMPT_NOT_STARTED, "not started", false, NULL, 0.9, NOW);
    assert_int_equal(e.next, RUN_SCHEDULED);
    assert_int_equal(e.not_before_ms, NOW);
    assert_string_equal(e.reason, "not started");
}

static void test_jitter_bounds(void **state)
{
    (void)state;
    retry_policy_t p = three_tries();
    p.jitter = true;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (int i = 0; i < 1000; i++) {
        double unit = i / 1000.0;
        attempt_end_t e = attempt_end(&p, 2, ATTEMPT_FAILED, NULL, false, NULL, unit, NOW);
        assert_int_equal(e.next, RUN_SCHEDULED);
        int64_t d = e.not_before_ms - NOW;
        assert_true(d >= 0 && d <= 2000);
        if (d < lo) lo = d;
        if (d > hi) hi = d;
    }
    assert_true(lo < 100 && hi > 1900); /* the draw spreads over the whole range */
}

static void test_log_keep(void **state)
{
    (void)state;
    bool t = true;
    assert_int_equal(log_keep(100, 0, 40, &t), 40);
    assert_false(t);
    assert_int_equal(log_keep(100, 60, 40, &t), 40); /* exactly to the cap */
    assert_false(t);
    assert_int_equal(log_keep(100, 60, 41, &t), 40); /* one byte over */
    assert_true(t);
    assert_int_equal(log_keep(100, 100, 1, &t), 0); /* full */
    assert_true(t);
    assert_int_equal(log_keep(100, 150, 10, &t), 0); /* over (a cap lowered since) */
    assert_true(t);
    assert_int_equal(log_keep(100, 100, 0, &t), 0); /* an empty chunk is not a crossing */
    assert_false(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_and_failure),
        cmocka_unit_test(test_cancel_wins),
        cmocka_unit_test(test_not_started_is_uncharged),
        cmocka_unit_test(test_jitter_bounds),
        cmocka_unit_test(test_log_keep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
