/*
 * Unit tests for core/backoff: the retry delays a user configures with
 * "retry": {"initial", "max", "multiplier", "jitter"} and how many attempts
 * "max_attempts" allows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/backoff.h"

static retry_policy_t policy(int attempts, int64_t initial, int64_t max, double mult, bool jitter)
{
    retry_policy_t p = {attempts, initial, max, mult, jitter};
    return p;
}

static void test_defaults(void **state)
{
    (void)state;
    retry_policy_t p = retry_policy_default();
    assert_int_equal(p.max_attempts, 1);
    assert_int_equal(p.initial_ms, 10000);
    assert_int_equal(p.max_ms, 600000);
    assert_true(p.multiplier == 2.0);
    assert_true(p.jitter);
    /* By default a job is tried once and never retried. */
    assert_false(backoff_may_retry(&p, 1));
}

static void test_exponential_without_jitter(void **state)
{
    (void)state;
    retry_policy_t p = policy(10, 10000, 600000, 2.0, false);
    static const struct {
        int next;
        int64_t want;
    } cases[] = {
        {1, 0},     /* the first attempt does not wait */
        {2, 10000}, /* initial */
        {3, 20000}, /* x2 */
        {4, 40000}, /* x4 */
        {5, 80000},  {6, 160000},   {7, 320000},       {8, 600000}, /* 640000 capped */
        {9, 600000}, {100, 600000}, {1000000, 600000}, /* huge exponent saturates at the cap */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = backoff_delay_ms(&p, cases[i].next, 0.5);
        if (got != cases[i].want)
            fail_msg("delay before attempt %d = %lld, want %lld", cases[i].next, (long long)got,
                     (long long)cases[i].want);
    }
    assert_int_equal(backoff_delay_ms(&p, 0, 0.5), 0);
    assert_int_equal(backoff_delay_ms(&p, -5, 0.5), 0);
}

static void test_multiplier_one_and_fractional(void **state)
{
    (void)state;
    retry_policy_t constant = policy(5, 3000, 60000, 1.0, false);
    for (int n = 2; n < 50; n++)
        assert_int_equal(backoff_delay_ms(&constant, n, 0.0), 3000);

    retry_policy_t frac = policy(5, 1000, 60000, 1.5, false);
    assert_int_equal(backoff_delay_ms(&frac, 2, 0.0), 1000);
    assert_int_equal(backoff_delay_ms(&frac, 3, 0.0), 1500);
    assert_int_equal(backoff_delay_ms(&frac, 4, 0.0), 2250);
}

static void test_overflow_is_capped(void **state)
{
    (void)state;
    /* The largest configurable values: ten-year initial and max, x100. */
    int64_t ten_years = (int64_t)366 * 10 * 86400 * 1000;
    retry_policy_t p = policy(100, ten_years, ten_years, 100.0, false);
    for (int n = 2; n <= 100; n++)
        assert_int_equal(backoff_delay_ms(&p, n, 0.0), ten_years);
    retry_policy_t q = policy(100, 1, ten_years, 100.0, false);
    assert_int_equal(backoff_delay_ms(&q, 3, 0.0), 100);
    assert_int_equal(backoff_delay_ms(&q, 100, 0.0), ten_years);
    /* initial above max: max wins even for the first retry. */
    retry_policy_t r = policy(3, 60000, 5000, 2.0, false);
    assert_int_equal(backoff_delay_ms(&r, 2, 0.0), 5000);
}

static void test_full_jitter(void **state)
{
    (void)state;
    retry_policy_t p = policy(10, 10000, 600000, 2.0, true);
    assert_int_equal(backoff_delay_ms(&p, 2, 0.0), 0);
    assert_int_equal(backoff_delay_ms(&p, 2, 0.5), 5000);
    assert_int_equal(backoff_delay_ms(&p, 3, 0.25), 5000);
    assert_int_equal(backoff_delay_ms(&p, 20, 0.5), 300000); /* jitter applies after the cap */
    /* Just below 1: never above the un-jittered delay. */
    int64_t d = backoff_delay_ms(&p, 4, 0.999999);
    assert_in_range(d, 39000, 40000);
    /* Out-of-range draws are clamped, never negative or above the delay. */
    assert_int_equal(backoff_delay_ms(&p, 2, -3.0), 0);
    assert_int_equal(backoff_delay_ms(&p, 2, 7.0), 10000);
    /* Monotone in the draw. */
    int64_t prev = -1;
    for (int i = 0; i < 100; i++) {
        int64_t v = backoff_delay_ms(&p, 5, i / 100.0);
        assert_true(v >= prev);
        assert_in_range(v, 0, 80000);
        prev = v;
    }
}

static void test_may_retry(void **state)
{
    (void)state;
    retry_policy_t p = policy(4, 1000, 10000, 2.0, true);
    assert_true(backoff_may_retry(&p, 1));
    assert_true(backoff_may_retry(&p, 2));
    assert_true(backoff_may_retry(&p, 3));
    assert_false(backoff_may_retry(&p, 4)); /* 4 attempts in total, then no more */
    assert_false(backoff_may_retry(&p, 5));
    retry_policy_t once = policy(1, 1000, 10000, 2.0, true);
    assert_false(backoff_may_retry(&once, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_exponential_without_jitter),
        cmocka_unit_test(test_multiplier_one_and_fractional),
        cmocka_unit_test(test_overflow_is_capped),
        cmocka_unit_test(test_full_jitter),
        cmocka_unit_test(test_may_retry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
