/*
 * Unit tests for core/duration: the strings users write in job documents
 * and the worker protocol, what they mean in milliseconds, which ones are
 * refused, and that the canonical form parses back to the same value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "core/duration.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)
#define WEEK (7 * DAY)

static void test_parse_good(void **state)
{
    static const struct {
        const char *in;
        int64_t ms;
    } cases[] = {
        {"0", 0},
        {"0s", 0},
        {"0ms", 0},
        {"1ms", 1},
        {"250ms", 250},
        {"1s", SEC},
        {"90s", 90 * SEC},
        {"1m", MIN},
        {"15m", 15 * MIN},
        {"1h", HOUR},
        {"1h30m", HOUR + 30 * MIN},
        {"2d", 2 * DAY},
        {"1w", WEEK},
        {"1w2d3h4m5s6ms", WEEK + 2 * DAY + 3 * HOUR + 4 * MIN + 5 * SEC + 6},
        {"1m500ms", MIN + 500},
        {"1h5s", HOUR + 5 * SEC},
        {"36h", 36 * HOUR},
        {"1000ms", SEC},
        {"007s", 7 * SEC},
        {"3660d", 3660 * DAY}, /* exactly the maximum */
        {"522w6d", DURATION_MAX_MS},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -42;
        int rc = duration_parse(cases[i].in, &ms);
        if (rc != 0) fail_msg("duration_parse(\"%s\") = %d, want 0", cases[i].in, rc);
        if (ms != cases[i].ms)
            fail_msg("duration_parse(\"%s\") = %lld ms, want %lld", cases[i].in, (long long)ms,
                     (long long)cases[i].ms);
    }
}

static void test_parse_bad(void **state)
{
    static const char *const cases[] = {
        "",
        "s",
        "ms",
        "-1s",
        "+1s",
        "-0s",
        " 1s",
        "1s ",
        "1 s",
        "1", /* bare number other than 0 has no unit */
        "10",
        "00",
        "1.5h", /* no fractions */
        "1x",
        "1S", /* units are lower case */
        "1H",
        "1sec",
        "1min",
        "1hour",
        "1m1h", /* ascending order */
        "1s1m",
        "1ms1s",
        "1s1s", /* repeated unit */
        "1h2h",
        "1m30", /* trailing number without unit */
        "h1",
        "1hh",
        "3661d", /* > ten years */
        "3660d1ms",
        "523w",
        "99999999999999999999999s", /* overflows int64 */
        "9223372036854775807ms",
        "9223372036854775808ms",
        "0x10s",
        "1e3ms",
        "1s\n",
        "1w1w",
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = 777;
        int rc = duration_parse(cases[i], &ms);
        if (rc != SKED_EINVAL)
            fail_msg("duration_parse(\"%s\") = %d (ms=%lld), want SKED_EINVAL", cases[i], rc,
                     (long long)ms);
        assert_int_equal(ms, 777); /* output untouched on failure */
    }
    int64_t ms = 0;
    assert_int_equal(duration_parse(NULL, &ms), SKED_EINVAL);
}

static void test_format(void **state)
{
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "0s"},
        {1, "1ms"},
        {250, "250ms"},
        {SEC, "1s"},
        {90 * SEC, "1m30s"},
        {MIN + 500, "1m500ms"},
        {HOUR + 30 * MIN, "1h30m"},
        {DAY + 2 * HOUR, "1d2h"},
        {HOUR + 5 * SEC, "1h5s"},
        {WEEK, "1w"},
        {10 * DAY, "1w3d"},
        {WEEK + 2 * DAY + 3 * HOUR + 4 * MIN + 5 * SEC + 6, "1w2d3h4m5s6ms"},
        {DURATION_MAX_MS, "522w6d"},
        {-90 * SEC, "-1m30s"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        duration_format(cases[i].ms, out, sizeof out);
        assert_string_equal(out, cases[i].want);
    }
}

static void test_format_truncates_safely(void **state)
{
    char out[4];
    (void)state;
    memset(out, 'X', sizeof out);
    duration_format(HOUR + 30 * MIN + 15 * SEC, out, sizeof out);
    /* Always terminated, never past the buffer; content is a prefix. */
    assert_true(memchr(out, '\0', sizeof out) != NULL);
    assert_true(strncmp("1h30m15s", out, strlen(out)) == 0);
    duration_format(5, out, 0); /* no crash on zero length */
}

/* Canonical form round trip: format(parse(x)) parses back to the same ms,
 * and is a fixed point of format. */
static void test_round_trip(void **state)
{
    static const int64_t values[] = {0,
                                     1,
                                     999,
                                     SEC,
                                     59 * SEC,
                                     MIN + 1,
                                     HOUR - 1,
                                     DAY + 1,
                                     WEEK - 1,
                                     13 * WEEK + 6 * DAY + 23 * HOUR + 59 * MIN + 999,
                                     DURATION_MAX_MS,
                                     DURATION_MAX_MS - 1};
    (void)state;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char text[64], again[64];
        int64_t ms = -1;
        duration_format(values[i], text, sizeof text);
        assert_int_equal(duration_parse(text, &ms), 0);
        assert_int_equal(ms, values[i]);
        duration_format(ms, again, sizeof again);
        assert_string_equal(text, again);
    }
    /* Every non-canonical spelling normalises. */
    int64_t ms = 0;
    char out[64];
    assert_int_equal(duration_parse("90m", &ms), 0);
    duration_format(ms, out, sizeof out);
    assert_string_equal(out, "1h30m");
    assert_int_equal(duration_parse("1000ms", &ms), 0);
    duration_format(ms, out, sizeof out);
    assert_string_equal(out, "1s");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good), cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_format),     cmocka_unit_test(test_format_truncates_safely),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
