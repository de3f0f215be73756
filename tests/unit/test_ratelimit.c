/*
 * The token buckets behind the server's per-token rate limit
 * (src/server/ratelimit.c), driven with a fake monotonic clock: a caller
 * gets its burst at once and then the configured rate, is told how long to
 * wait when refused, does not drain anyone else's bucket, and an idle
 * caller's bucket is forgotten so a flood of one-off addresses cannot grow
 * the table without bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "server/ratelimit.h"

#define SEC INT64_C(1000000000)

static void test_burst_then_refused(void **state)
{
    ratelimit_t *rl = ratelimit_new(10, 5);
    int64_t t = 1000 * SEC, retry = 0;
    for (int i = 0; i < 5; i++)
        assert_true(ratelimit_take(rl, "t:a", t, NULL));
    assert_false(ratelimit_take(rl, "t:a", t, &retry));
    /* One request comes back after 1/rate = 100 ms. */
    assert_true(retry > 0);
    assert_true(retry <= SEC / 10 + 1000);
    assert_true(retry >= SEC / 10 - 1000);
    ratelimit_free(rl);
}

static void test_refills_at_rate_up_to_burst(void **state)
{
    ratelimit_t *rl = ratelimit_new(10, 5);
    int64_t t = 50 * SEC, retry = 0;
    for (int i = 0; i < 5; i++)
        assert_true(ratelimit_take(rl, "k", t, NULL));
    assert_false(ratelimit_take(rl, "k", t, NULL));
    /* 250 ms later: two requests' worth. */
    t += SEC / 4;
    assert_true(ratelimit_take(rl, "k", t, NULL));
    assert_true(ratelimit_take(rl, "k", t, NULL));
    assert_false(ratelimit_take(rl, "k", t, &retry));
    assert_true(retry <= SEC / 10);
    /* A long pause refills only up to the burst. */
    t += 3600 * SEC;
    for (int i = 0; i < 5; i++)
        assert_true(ratelimit_take(rl, "k", t, NULL));
    assert_false(ratelimit_take(rl, "k", t, NULL));
    /* Sustained: one request per 100 ms is always allowed. */
    for (int i = 0; i < 100; i++) {
        t += SEC / 10;
        assert_true(ratelimit_take(rl, "k", t, NULL));
    }
    ratelimit_free(rl);
}

static void test_keys_are_independent(void **state)
{
    ratelimit_t *rl = ratelimit_new(1, 2);
    int64_t t = SEC;
    assert_true(ratelimit_take(rl, "t:tok_a", t, NULL));
    assert_true(ratelimit_take(rl, "t:tok_a", t, NULL));
    assert_false(ratelimit_take(rl, "t:tok_a", t, NULL));
    assert_true(ratelimit_take(rl, "t:tok_b", t, NULL));
    assert_true(ratelimit_take(rl, "a:127.0.0.1", t, NULL));
    assert_false(ratelimit_take(rl, "t:tok_a", t, NULL));
    ratelimit_free(rl);
}

static void test_clock_step_back_is_harmless(void **state)
{
    ratelimit_t *rl = ratelimit_new(1, 2);
    int64_t t = 100 * SEC;
    assert_true(ratelimit_take(rl, "k", t, NULL));
    assert_true(ratelimit_take(rl, "k", t, NULL));
    assert_false(ratelimit_take(rl, "k", t - 50 * SEC, NULL));
    assert_true(ratelimit_take(rl, "k", t + SEC, NULL));
    ratelimit_free(rl);
}

static void test_idle_buckets_are_forgotten(void **state)
{
    ratelimit_t *rl = ratelimit_new(100, 200);
    int64_t t = SEC;
    char key[32];
    /* 100000 one-off addresses, one request each, 1 ms apart: each bucket
     * is full again 10 ms after its request, so the sweeps keep the table
     * small whatever the number of addresses seen. */
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "a:10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        assert_true(ratelimit_take(rl, key, t, NULL));
        t += SEC / 1000;
    }
    assert_true(ratelimit_size(rl) <= 2048);
    /* A caller still inside its window is remembered across sweeps. */
    ratelimit_t *rl2 = ratelimit_new(1, 1);
    t = SEC;
    assert_true(ratelimit_take(rl2, "busy", t, NULL));
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "a:%d", i);
        ratelimit_take(rl2, key, t, NULL);
    }
    assert_false(ratelimit_take(rl2, "busy", t, NULL));
    ratelimit_free(rl2);
    ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refused),
        cmocka_unit_test(test_refills_at_rate_up_to_burst),
        cmocka_unit_test(test_keys_are_independent),
        cmocka_unit_test(test_clock_step_back_is_harmless),
        cmocka_unit_test(test_idle_buckets_are_forgotten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
