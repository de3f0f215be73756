/*
 * Unit tests for core/schedule: when cron, every and at schedules fire, in
 * UTC and in time zones across their DST nights (Berlin, New York, Lord
 * Howe's half-hour shift, Kolkata without DST), the special cron forms
 * (L, W, #, names, macros, seconds), bounds and anchors, the preview's DST
 * marks, and the errors bad input gets. Expected instants are derived from
 * the rules by hand and a few were cross-checked with `TZ=... date -d`.
 * Zone rules come from the system's zone files (core/tz.h), so the zones
 * that changed since 2022 (Egypt, Mexico, the new Ciudad_Juarez and
 * Coyhaique) are here too, and a zone compiled with `zic -b slim` shows the
 * footer rule at work through the whole schedule path. Every zone against
 * the system database is tests/e2e/test_timezones.py's job.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/error.h"
#include "core/schedule.h"

static int64_t T(const char *rfc)
{
    int64_t ms = 0;
    assert_int_equal(clock_parse_rfc3339(rfc, &ms), 0);
    return ms;
}

static void fmt(int64_t ms, char *out, size_t n)
{
    if (ms < 0)
        snprintf(out, n, "none");
    else
        clock_format_rfc3339(ms, out, n);
}

static schedule_spec_t spec_of(schedule_kind_t kind, const char *expr, const char *tz)
{
    schedule_spec_t sp = {.kind = kind,
                          .expr = expr,
                          .timezone = tz,
                          .start_ms = INT64_MIN,
                          .end_ms = INT64_MAX,
                          .jitter_ms = 0,
                          .anchor_ms = INT64_MIN};
    return sp;
}

static schedule_t *compile_ok(const schedule_spec_t *sp)
{
    schedule_t *s = NULL;
    char err[256] = "";
    int rc = schedule_compile(sp, &s, err, sizeof err);
    if (rc != 0) print_error("compile '%s' failed: %s\n", sp->expr, err);
    assert_int_equal(rc, 0);
    assert_non_null(s);
    return s;
}

static schedule_t *cron(const char *expr, const char *tz)
{
    schedule_spec_t sp = spec_of(SCHEDULE_CRON, expr, tz);
    return compile_ok(&sp);
}

/* Compares "expr [tz] after -> got" with "... -> want" so a failure names
 * the case. */
static void check_next(const char *expr, const char *tz, const char *after, const char *want)
{
    char got[SKED_RFC3339_LEN], a[200], b[200];
    schedule_t *s = cron(expr, tz);
    fmt(schedule_next(s, T(after)), got, sizeof got);
    snprintf(a, sizeof a, "'%s' [%s] after %s -> %s", expr, tz ? tz : "UTC", after, got);
    snprintf(b, sizeof b, "'%s' [%s] after %s -> %s", expr, tz ? tz : "UTC", after, want);
    assert_string_equal(a, b);
    schedule_free(s);
}

/* The next len fires after `after`, via preview and via chained
 * schedule_next, both against want[]. */
static void check_seq(schedule_t *s, const char *after, const char *const *want, size_t len)
{
    schedule_fire_t fires[16];
    char got[SKED_RFC3339_LEN];
    assert_true(len <= 16);
    assert_int_equal(schedule_preview(s, T(after), fires, len), len);
    int64_t t = T(after);
    for (size_t i = 0; i < len; i++) {
        fmt(fires[i].utc_ms, got, sizeof got);
        assert_string_equal(got, want[i]);
        t = schedule_next(s, t);
        assert_int_equal(t, fires[i].utc_ms);
    }
}

#define SEQ(s, after, ...)                                                                         \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        check_seq(s, after, want_, sizeof want_ / sizeof want_[0]);                                \
    } while (0)

/* ---- UTC basics, fields and their edges ---------------------------------- */

static void test_cron_basic_utc(void **state)
{
    check_next("0 2 * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z");
    check_next("0 2 * * *", "", "2026-01-01T02:00:00Z", "2026-01-02T02:00:00Z");
    check_next("0 2 * * *", "UTC", "2026-01-01T01:59:59.999Z", "2026-01-01T02:00:00Z");
    /* Strictly after: a fire exactly at after_ms is not returned again. */
    check_next("* * * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z");
    check_next("* * * * *", NULL, "2026-01-01T00:00:00.001Z", "2026-01-01T00:01:00Z");
    check_next("*/15 * * * *", NULL, "2026-01-01T00:14:59Z", "2026-01-01T00:15:00Z");
    check_next("5/20 * * * *", NULL, "2026-01-01T00:26:00Z", "2026-01-01T00:45:00Z");
    check_next("10-30/10 * * * *", NULL, "2026-01-01T00:31:00Z", "2026-01-01T01:10:00Z");
    check_next("0,30 9-17 * * *", NULL, "2026-01-01T17:30:00Z", "2026-01-02T09:00:00Z");
    /* Year rollover. */
    check_next("59 23 31 12 *", NULL, "2026-01-01T00:00:00Z", "2026-12-31T23:59:00Z");
    check_next("0 0 1 1 *", NULL, "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z");
    /* Other zone names for UTC take the same path. */
    check_next("0 0 * * *", "Etc/UTC", "2026-05-05T10:00:00Z", "2026-05-06T00:00:00Z");
}

static void test_cron_field_edges(void **state)
{
    check_next("0 * * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z");
    check_next("59 * * * *", NULL, "2026-01-01T00:59:00Z", "2026-01-01T01:59:00Z");
    check_next("0 0 * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
    check_next("0 23 * * *", NULL, "2026-01-01T23:00:00Z", "2026-01-02T23:00:00Z");
    check_next("0 0 1 * *", NULL, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
    check_next("0 0 31 * *", NULL, "2026-01-31T00:00:00Z", "2026-03-31T00:00:00Z");
    check_next("0 0 1 1 *", NULL, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
    check_next("0 0 1 12 *", NULL, "2026-01-01T00:00:00Z", "2026-12-01T00:00:00Z");
    /* 2026-01-01 is a Thursday; 0 and 7 are both Sunday (Jan 4), 6 Saturday. */
    check_next("0 0 * * 0", NULL, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
    check_next("0 0 * * 7", NULL, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
    check_next("0 0 * * 6", NULL, "2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z");
    check_next("0 0 * * 5-7", NULL, "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z");
    check_next("0 0 * * 5-7", NULL, "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z");
    check_next("0 0 * * 1-5", NULL, "2026-01-02T00:00:00Z", "2026-01-05T00:00:00Z");
    /* '?' is '*'. */
    check_next("0 0 ? * 1", NULL, "2026-01-01T00:00:00Z", "2026-01-05T00:00:00Z");
    check_next("0 0 1 * ?", NULL, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
}

static void test_cron_names(void **state)
{
    check_next("0 0 1 jan,Jul *", NULL, "2026-02-01T00:00:00Z", "2026-07-01T00:00:00Z");
    check_next("0 0 1 JAN-MAR *", NULL, "2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z");
    check_next("0 0 1 DEC *", NULL, "2026-01-01T00:00:00Z", "2026-12-01T00:00:00Z");
    check_next("0 0 * * mon-fri", NULL, "2026-01-03T00:00:00Z", "2026-01-05T00:00:00Z");
    check_next("0 0 * * SUN", NULL, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z");
    check_next("0 0 * * sat,Sun", NULL, "2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z");
    check_next("0 0 * FEB/3 WED", NULL, "2026-01-01T00:00:00Z", "2026-02-04T00:00:00Z");
}

static void test_cron_macros(void **state)
{
    const char *after = "2026-01-01T00:00:00Z";
    check_next("@yearly", NULL, after, "2027-01-01T00:00:00Z");
    check_next("@annually", NULL, after, "2027-01-01T00:00:00Z");
    check_next("@monthly", NULL, after, "2026-02-01T00:00:00Z");
    check_next("@weekly", NULL, after, "2026-01-04T00:00:00Z");
    check_next("@daily", NULL, after, "2026-01-02T00:00:00Z");
    check_next("@midnight", NULL, after, "2026-01-02T00:00:00Z");
    check_next("@hourly", NULL, after, "2026-01-01T01:00:00Z");
    check_next("@DAILY", NULL, after, "2026-01-02T00:00:00Z");
    /* Macros follow the zone like any expression: midnight in Kolkata. */
    check_next("@daily", "Asia/Kolkata", after, "2026-01-01T18:30:00Z");
}

static void test_cron_seconds(void **state)
{
    check_next("*/10 * * * * *", NULL, "2026-01-01T00:00:05Z", "2026-01-01T00:00:10Z");
    check_next("*/10 * * * * *", NULL, "2026-01-01T00:00:50Z", "2026-01-01T00:01:00Z");
    check_next("30 0 0 * * *", NULL, "2026-01-01T00:00:30Z", "2026-01-02T00:00:30Z");
    check_next("59 59 23 * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T23:59:59Z");
    check_next("0 0 0 1 1 *", NULL, "2026-06-01T00:00:00Z", "2027-01-01T00:00:00Z");
    /* Sub-second after_ms: the next whole second. */
    check_next("* * * * * *", NULL, "2026-01-01T00:00:00.500Z", "2026-01-01T00:00:01Z");
    /* 5 fields fire at second 0 even when after_ms is mid-minute. */
    check_next("* * * * *", NULL, "2026-01-01T00:00:30Z", "2026-01-01T00:01:00Z");
}

/* ---- day-of-month / day-of-week specials ------------------------------- */

static void test_cron_leap_and_impossible(void **state)
{
    check_next("0 0 29 2 *", NULL, "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z");
    check_next("0 0 29 2 *", NULL, "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z");
    /* 2100 is not a leap year: 2096 -> 2104. */
    check_next("0 0 29 2 *", NULL, "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z");
    /* Rare but real: a Feb 29 that is a Monday (the day must be 1 or 29 and
     * the fifth Monday, as '*' makes both fields count). */
    check_next("0 0 */28 2 MON#5", NULL, "2026-01-01T00:00:00Z", "2044-02-29T00:00:00Z");
    /* 31 in a list with other months only fires in those that have it. */
    check_next("0 0 31 * *", NULL, "2026-04-01T00:00:00Z", "2026-05-31T00:00:00Z");
}

static void test_cron_last_day(void **state)
{
    check_next("0 0 L * *", NULL, "2026-02-01T00:00:00Z", "2026-02-28T00:00:00Z");
    check_next("0 0 L * *", NULL, "2028-02-01T00:00:00Z", "2028-02-29T00:00:00Z");
    check_next("0 0 L * *", NULL, "2026-04-15T00:00:00Z", "2026-04-30T00:00:00Z");
    check_next("0 0 L * *", NULL, "2026-12-31T00:00:00Z", "2027-01-31T00:00:00Z");
    check_next("0 0 L-3 * *", NULL, "2026-02-01T00:00:00Z", "2026-02-25T00:00:00Z");
    check_next("0 0 L-3 * *", NULL, "2026-03-01T00:00:00Z", "2026-03-28T00:00:00Z");
    check_next("0 0 1,L * *", NULL, "2026-01-02T00:00:00Z", "2026-01-31T00:00:00Z");
    /* LW: 2026-01-31 is a Saturday -> Fri 30; 2026-05-31 a Sunday -> Fri 29;
     * 2026-03-31 a Tuesday -> 31. */
    check_next("0 0 LW * *", NULL, "2026-01-01T00:00:00Z", "2026-01-30T00:00:00Z");
    check_next("0 0 LW 5 *", NULL, "2026-01-01T00:00:00Z", "2026-05-29T00:00:00Z");
    check_next("0 0 LW 3 *", NULL, "2026-01-01T00:00:00Z", "2026-03-31T00:00:00Z");
}

static void test_cron_nearest_weekday(void **state)
{
    /* 2026-08-15 is a Saturday -> Friday 14th. */
    check_next("0 0 15W 8 *", NULL, "2026-01-01T00:00:00Z", "2026-08-14T00:00:00Z");
    /* 2026-03-15 is a Sunday -> Monday 16th. */
    check_next("0 0 15W 3 *", NULL, "2026-01-01T00:00:00Z", "2026-03-16T00:00:00Z");
    /* 2026-04-15 is a Wednesday -> itself. */
    check_next("0 0 15W 4 *", NULL, "2026-01-01T00:00:00Z", "2026-04-15T00:00:00Z");
    /* 2026-08-01 is a Saturday: not back into July but forward to Mon 3rd. */
    check_next("0 0 1W 8 *", NULL, "2026-01-01T00:00:00Z", "2026-08-03T00:00:00Z");
    /* 2026-03-01 is a Sunday -> Monday 2nd. */
    check_next("0 0 1W 3 *", NULL, "2026-01-01T00:00:00Z", "2026-03-02T00:00:00Z");
    /* 2026-05-31 is a Sunday: not into June but back to Friday 29th. */
    check_next("0 0 31W 5 *", NULL, "2026-01-01T00:00:00Z", "2026-05-29T00:00:00Z");
    /* 2026-01-31 is a Saturday -> Friday 30th. */
    check_next("0 0 31W 1 *", NULL, "2025-12-01T00:00:00Z", "2026-01-30T00:00:00Z");
    /* A month without the day has no such fire: 31W skips April. */
    check_next("0 0 31W 4,5 *", NULL, "2026-04-01T00:00:00Z", "2026-05-29T00:00:00Z");
}

static void test_cron_weekday_forms(void **state)
{
    /* Last Friday: Feb 2026 -> 27th. */
    check_next("0 0 * * 5L", NULL, "2026-02-01T00:00:00Z", "2026-02-27T00:00:00Z");
    check_next("0 0 * * FRIL", NULL, "2026-02-01T00:00:00Z", "2026-02-27T00:00:00Z");
    check_next("0 0 * * 5L", NULL, "2026-02-27T00:00:00Z", "2026-03-27T00:00:00Z");
    /* Last Sunday written 7L and 0L. May 2026 ends on Sunday 31st. */
    check_next("0 0 * 5 7L", NULL, "2026-01-01T00:00:00Z", "2026-05-31T00:00:00Z");
    check_next("0 0 * 5 0L", NULL, "2026-01-01T00:00:00Z", "2026-05-31T00:00:00Z");
    /* Second Monday: March 2026 starts on a Sunday -> 9th. */
    check_next("0 0 * 3 MON#2", NULL, "2026-01-01T00:00:00Z", "2026-03-09T00:00:00Z");
    check_next("0 0 * 3 1#2", NULL, "2026-01-01T00:00:00Z", "2026-03-09T00:00:00Z");
    check_next("0 0 * * 1#1", NULL, "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z");
    /* Fifth Friday exists in Jan 2026 (30th), not in Feb-Apr, then May 29th. */
    check_next("0 0 * * FRI#5", NULL, "2026-01-01T00:00:00Z", "2026-01-30T00:00:00Z");
    check_next("0 0 * * FRI#5", NULL, "2026-01-30T00:00:00Z", "2026-05-29T00:00:00Z");
}

static void test_cron_dom_dow_vixie(void **state)
{
    /* Both restricted: the 13th or any Monday. Feb 2026: Mondays 2, 9, 16,
     * 23; the 13th is a Friday. */
    schedule_t *s = cron("0 0 13 * 1", NULL);
    SEQ(s, "2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z",
        "2026-02-13T00:00:00Z", "2026-02-16T00:00:00Z", "2026-02-23T00:00:00Z",
        "2026-03-02T00:00:00Z");
    schedule_free(s);
    /* One of them starts with '*' (as in Vixie cron): both must match, so
     * odd days that are Fridays. */
    check_next("0 0 */2 * 5", NULL, "2026-02-01T00:00:00Z", "2026-02-13T00:00:00Z");
    /* Specials take part in the OR too: last day or a Monday. */
    check_next("0 0 L * MON", NULL, "2026-02-24T00:00:00Z", "2026-02-28T00:00:00Z");
    check_next("0 0 L * MON", NULL, "2026-02-28T00:00:00Z", "2026-03-02T00:00:00Z");
}

/* ---- time zones and DST -------------------------------------------------- */

static void check_fire(const schedule_fire_t *f, const char *utc, const char *local, int offset_s,
                       bool shifted)
{
    char got[SKED_RFC3339_LEN];
    fmt(f->utc_ms, got, sizeof got);
    assert_string_equal(got, utc);
    assert_string_equal(f->local, local);
    assert_int_equal(f->utc_offset_s, offset_s);
    assert_int_equal(f->dst_shifted, shifted);
}

static void test_berlin_spring_forward(void **state)
{
    schedule_fire_t f[4];
    /* 2026-03-29 02:00 CET -> 03:00 CEST at 01:00Z; 02:30 does not exist and
     * fires once, at the first instant after the gap. */
    schedule_t *s = cron("30 2 * * *", "Europe/Berlin");
    assert_int_equal(schedule_preview(s, T("2026-03-28T00:00:00Z"), f, 3), 3);
    check_fire(&f[0], "2026-03-28T01:30:00Z", "2026-03-28T02:30:00+01:00", 3600, false);
    check_fire(&f[1], "2026-03-29T01:00:00Z", "2026-03-29T03:00:00+02:00", 7200, true);
    check_fire(&f[2], "2026-03-30T00:30:00Z", "2026-03-30T02:30:00+02:00", 7200, false);
    /* One fire only, however close to the gap we ask. */
    assert_int_equal(schedule_next(s, T("2026-03-29T00:59:59.500Z")), T("2026-03-29T01:00:00Z"));
    assert_int_equal(schedule_next(s, T("2026-03-29T01:00:00Z")), T("2026-03-30T00:30:00Z"));
    schedule_free(s);

    /* 03:00 exists; it fires at the same instant but is not shifted. */
    s = cron("0 3 * * *", "Europe/Berlin");
    assert_int_equal(schedule_preview(s, T("2026-03-28T12:00:00Z"), f, 1), 1);
    check_fire(&f[0], "2026-03-29T01:00:00Z", "2026-03-29T03:00:00+02:00", 7200, false);
    schedule_free(s);

    /* Every 15 minutes: 02:00, 02:15, 02:30, 02:45 all collapse onto 03:00,
     * which fires once, and 03:00 itself adds no second run. */
    s = cron("*/15 * * * *", "Europe/Berlin");
    assert_int_equal(schedule_preview(s, T("2026-03-29T00:40:00Z"), f, 4), 4);
    check_fire(&f[0], "2026-03-29T00:45:00Z", "2026-03-29T01:45:00+01:00", 3600, false);
    check_fire(&f[1], "2026-03-29T01:00:00Z", "2026-03-29T03:00:00+02:00", 7200, true);
    check_fire(&f[2], "2026-03-29T01:15:00Z", "2026-03-29T03:15:00+02:00", 7200, false);
    check_fire(&f[3], "2026-03-29T01:30:00Z", "2026-03-29T03:30:00+02:00", 7200, false);
    schedule_free(s);
}

static void test_berlin_fall_back(void **state)
{
    schedule_fire_t f[6];
    /* 2026-10-25 03:00 CEST -> 02:00 CET at 01:00Z; 02:30 happens twice
     * (00:30Z and 01:30Z) and fires at the first only. */
    schedule_t *s = cron("30 2 * * *", "Europe/Berlin");
    assert_int_equal(schedule_preview(s, T("2026-10-24T12:00:00Z"), f, 2), 2);
    check_fire(&f[0], "2026-10-25T00:30:00Z", "2026-10-25T02:30:00+02:00", 7200, true);
    check_fire(&f[1], "2026-10-26T01:30:00Z", "2026-10-26T02:30:00+01:00", 3600, false);
    /* Asked from inside the second 02:xx hour, the repeat does not fire. */
    assert_int_equal(schedule_next(s, T("2026-10-25T01:10:00Z")), T("2026-10-26T01:30:00Z"));
    schedule_free(s);

    s = cron("*/15 * * * *", "Europe/Berlin");
    assert_int_equal(schedule_preview(s, T("2026-10-24T23:50:00Z"), f, 6), 6);
    check_fire(&f[0], "2026-10-25T00:00:00Z", "2026-10-25T02:00:00+02:00", 7200, true);
    check_fire(&f[1], "2026-10-25T00:15:00Z", "2026-10-25T02:15:00+02:00", 7200, true);
    check_fire(&f[2], "2026-10-25T00:30:00Z", "2026-10-25T02:30:00+02:00", 7200, true);
    check_fire(&f[3], "2026-10-25T00:45:00Z", "2026-10-25T02:45:00+02:00", 7200, true);
    check_fire(&f[4], "2026-10-25T02:00:00Z", "2026-10-25T03:00:00+01:00", 3600, false);
    check_fire(&f[5], "2026-10-25T02:15:00Z", "2026-10-25T03:15:00+01:00", 3600, false);
    assert_int_equal(schedule_next(s, T("2026-10-25T01:10:00Z")), T("2026-10-25T02:00:00Z"));
    schedule_free(s);

    /* Times outside the repeated hour are untouched that night. */
    check_next("0 4 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T03:00:00Z");
    check_next("30 1 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-24T23:30:00Z");
}

static void test_new_york(void **state)
{
    schedule_fire_t f[2];
    /* 2026-03-08 02:00 EST -> 03:00 EDT at 07:00Z. */
    schedule_t *s = cron("30 2 * * *", "America/New_York");
    assert_int_equal(schedule_preview(s, T("2026-03-07T12:00:00Z"), f, 2), 2);
    check_fire(&f[0], "2026-03-08T07:00:00Z", "2026-03-08T03:00:00-04:00", -14400, true);
    check_fire(&f[1], "2026-03-09T06:30:00Z", "2026-03-09T02:30:00-04:00", -14400, false);
    schedule_free(s);
    check_next("0 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z");
    check_next("59 1 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T06:59:00Z");

    /* 2026-11-01 02:00 EDT -> 01:00 EST at 06:00Z; 01:30 is repeated. */
    s = cron("30 1 * * *", "America/New_York");
    assert_int_equal(schedule_preview(s, T("2026-10-31T12:00:00Z"), f, 2), 2);
    check_fire(&f[0], "2026-11-01T05:30:00Z", "2026-11-01T01:30:00-04:00", -14400, true);
    check_fire(&f[1], "2026-11-02T06:30:00Z", "2026-11-02T01:30:00-05:00", -18000, false);
    schedule_free(s);

    /* Every 15 minutes through both nights. */
    s = cron("*/15 * * * *", "America/New_York");
    SEQ(s, "2026-03-08T06:40:00Z", "2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z",
        "2026-03-08T07:15:00Z");
    SEQ(s, "2026-11-01T05:40:00Z", "2026-11-01T05:45:00Z", "2026-11-01T07:00:00Z",
        "2026-11-01T07:15:00Z");
    schedule_free(s);
}

static void test_lord_howe(void **state)
{
    schedule_fire_t f[3];
    /* 2026-04-05 02:00 (+11) -> 01:30 (+10:30) at 2026-04-04T15:00Z: half an
     * hour, 01:30-01:59, is repeated. */
    schedule_t *s = cron("45 1 * * *", "Australia/Lord_Howe");
    assert_int_equal(schedule_preview(s, T("2026-04-04T00:00:00Z"), f, 2), 2);
    check_fire(&f[0], "2026-04-04T14:45:00Z", "2026-04-05T01:45:00+11:00", 39600, true);
    check_fire(&f[1], "2026-04-05T15:15:00Z", "2026-04-06T01:45:00+10:30", 37800, false);
    schedule_free(s);

    s = cron("*/15 * * * *", "Australia/Lord_Howe");
    assert_int_equal(schedule_preview(s, T("2026-04-04T14:10:00Z"), f, 3), 3);
    check_fire(&f[0], "2026-04-04T14:15:00Z", "2026-04-05T01:15:00+11:00", 39600, false);
    check_fire(&f[1], "2026-04-04T14:30:00Z", "2026-04-05T01:30:00+11:00", 39600, true);
    check_fire(&f[2], "2026-04-04T14:45:00Z", "2026-04-05T01:45:00+11:00", 39600, true);
    /* After 01:45 (+11) the next local time is 02:00 (+10:30). */
    assert_int_equal(schedule_next(s, T("2026-04-04T14:45:00Z")), T("2026-04-04T15:30:00Z"));

    /* 2026-10-04 02:00 (+10:30) -> 02:30 (+11) at 2026-10-03T15:30Z. 02:00
     * and 02:15 both map to 02:30, which fires once. */
    assert_int_equal(schedule_preview(s, T("2026-10-03T15:20:00Z"), f, 2), 2);
    check_fire(&f[0], "2026-10-03T15:30:00Z", "2026-10-04T02:30:00+11:00", 39600, true);
    check_fire(&f[1], "2026-10-03T15:45:00Z", "2026-10-04T02:45:00+11:00", 39600, false);
    schedule_free(s);

    s = cron("15 2 * * *", "Australia/Lord_Howe");
    assert_int_equal(schedule_preview(s, T("2026-10-03T00:00:00Z"), f, 2), 2);
    check_fire(&f[0], "2026-10-03T15:30:00Z", "2026-10-04T02:30:00+11:00", 39600, true);
    check_fire(&f[1], "2026-10-04T15:15:00Z", "2026-10-05T02:15:00+11:00", 39600, false);
    schedule_free(s);
}

static void test_kolkata(void **state)
{
    schedule_fire_t f[2];
    schedule_t *s = cron("30 9 * * *", "Asia/Kolkata");
    assert_int_equal(schedule_preview(s, T("2026-06-01T00:00:00Z"), f, 2), 2);
    check_fire(&f[0], "2026-06-01T04:00:00Z", "2026-06-01T09:30:00+05:30", 19800, false);
    check_fire(&f[1], "2026-06-02T04:00:00Z", "2026-06-02T09:30:00+05:30", 19800, false);
    schedule_free(s);
    /* Local midnight is 18:30Z the day before; the local date decides dom. */
    check_next("0 0 1 * *", "Asia/Kolkata", "2026-06-01T00:00:00Z", "2026-06-30T18:30:00Z");
    check_next("0 0 * * MON", "Asia/Kolkata", "2026-01-01T00:00:00Z", "2026-01-04T18:30:00Z");
}

/* Issue 7, point 1: the zone rules are today's, from the system's files,
 * not a copy frozen into a library in 2022. */
static void test_zone_data_is_current(void **state)
{
    schedule_fire_t f[1];
    /* Egypt has had DST again since 2023: noon in May is 09:00Z, not 10:00Z. */
    check_next("0 12 * * *", "Africa/Cairo", "2027-05-10T00:00:00Z", "2027-05-10T09:00:00Z");
    check_next("0 12 * * *", "Africa/Cairo", "2027-01-10T00:00:00Z", "2027-01-10T10:00:00Z");
    /* Mexico abolished DST in 2022: noon in July 2027 is CST, 18:00Z. */
    schedule_t *s = cron("0 12 * * *", "America/Mexico_City");
    assert_int_equal(schedule_preview(s, T("2027-07-01T00:00:00Z"), f, 1), 1);
    check_fire(&f[0], "2027-07-01T18:00:00Z", "2027-07-01T12:00:00-06:00", -21600, false);
    schedule_free(s);
    /* Zones created since: Ciudad Juarez (2022, US rules, MST/MDT) and
     * Coyhaique (2025, -03 all year). */
    check_next("0 12 * * *", "America/Ciudad_Juarez", "2026-07-01T00:00:00Z",
               "2026-07-01T18:00:00Z");
    check_next("0 12 * * *", "America/Ciudad_Juarez", "2026-01-10T00:00:00Z",
               "2026-01-10T19:00:00Z");
    check_next("0 12 * * *", "America/Coyhaique", "2026-07-01T00:00:00Z", "2026-07-01T15:00:00Z");
    check_next("0 12 * * *", "America/Coyhaique", "2027-01-10T00:00:00Z", "2027-01-10T15:00:00Z");
    /* Kazakhstan moved to +05 in 2024. */
    check_next("0 12 * * *", "Asia/Almaty", "2026-06-01T00:00:00Z", "2026-06-01T07:00:00Z");
}

static void test_preview_utc_and_limits(void **state)
{
    schedule_fire_t f[5];
    schedule_t *s = cron("0 12 * * *", NULL);
    assert_int_equal(schedule_preview(s, T("2026-01-01T00:00:00Z"), f, 3), 3);
    check_fire(&f[0], "2026-01-01T12:00:00Z", "2026-01-01T12:00:00+00:00", 0, false);
    check_fire(&f[2], "2026-01-03T12:00:00Z", "2026-01-03T12:00:00+00:00", 0, false);
    assert_int_equal(schedule_preview(s, 0, f, 0), 0);
    schedule_free(s);

    /* Preview stops early when the schedule runs out. */
    schedule_spec_t sp = spec_of(SCHEDULE_CRON, "0 12 * * *", "Europe/Berlin");
    sp.end_ms = T("2026-01-02T11:00:00Z");
    s = compile_ok(&sp);
    assert_int_equal(schedule_preview(s, T("2026-01-01T00:00:00Z"), f, 5), 2);
    check_fire(&f[1], "2026-01-02T11:00:00Z", "2026-01-02T12:00:00+01:00", 3600, false);
    schedule_free(s);
}

static void test_cron_bounds(void **state)
{
    schedule_spec_t sp = spec_of(SCHEDULE_CRON, "0 * * * *", NULL);
    sp.start_ms = T("2026-01-01T10:00:00Z");
    sp.end_ms = T("2026-01-01T12:00:00Z");
    schedule_t *s = compile_ok(&sp);
    /* start is inclusive, end is inclusive. */
    assert_int_equal(schedule_next(s, T("2025-01-01T00:00:00Z")), T("2026-01-01T10:00:00Z"));
    assert_int_equal(schedule_next(s, T("2026-01-01T10:00:00Z")), T("2026-01-01T11:00:00Z"));
    assert_int_equal(schedule_next(s, T("2026-01-01T11:00:00Z")), T("2026-01-01T12:00:00Z"));
    assert_int_equal(schedule_next(s, T("2026-01-01T12:00:00Z")), -1);
    schedule_free(s);
    /* A start between fires: the first fire at or after it. */
    sp.start_ms = T("2026-01-01T10:00:00.001Z");
    s = compile_ok(&sp);
    assert_int_equal(schedule_next(s, INT64_MIN), T("2026-01-01T11:00:00Z"));
    schedule_free(s);
}

/* ---- every and at ---------------------------------------------------------- */

static schedule_t *every(const char *expr, int64_t start, int64_t end, int64_t anchor)
{
    schedule_spec_t sp = spec_of(SCHEDULE_EVERY, expr, NULL);
    sp.start_ms = start;
    sp.end_ms = end;
    sp.anchor_ms = anchor;
    return compile_ok(&sp);
}

static void test_every(void **state)
{
    /* No anchor, no start: aligned to the epoch. */
    schedule_t *s = every("15m", INT64_MIN, INT64_MAX, INT64_MIN);
    assert_int_equal(schedule_next(s, T("2026-01-01T00:07:00Z")), T("2026-01-01T00:15:00Z"));
    assert_int_equal(schedule_next(s, T("2026-01-01T00:15:00Z")), T("2026-01-01T00:30:00Z"));
    assert_int_equal(schedule_next(s, -1), 0);
    assert_int_equal(schedule_next(s, -900001), -900000);
    schedule_free(s);

    s = every("90s", INT64_MIN, INT64_MAX, INT64_MIN);
    assert_int_equal(schedule_next(s, 0), 90000);
    assert_int_equal(schedule_next(s, 89999), 90000);
    assert_int_equal(schedule_next(s, 90000), 180000);
    schedule_free(s);

    /* Anchored at start: the first fire is the start itself. */
    int64_t start = T("2026-01-01T00:00:07Z"), end = T("2026-01-01T01:00:07Z");
    s = every("1h30m", start, INT64_MAX, INT64_MIN);
    assert_int_equal(schedule_next(s, T("2025-06-01T00:00:00Z")), start);
    assert_int_equal(schedule_next(s, start), start + 5400000);
    schedule_free(s);

    /* An explicit anchor sets the phase; start only bounds. */
    s = every("15m", start, end, T("2020-01-01T00:00:03Z"));
    assert_int_equal(schedule_next(s, T("2025-01-01T00:00:00Z")), T("2026-01-01T00:15:03Z"));
    assert_int_equal(schedule_next(s, T("2026-01-01T00:50:00Z")), T("2026-01-01T01:00:03Z"));
    assert_int_equal(schedule_next(s, T("2026-01-01T01:00:03Z")), -1);
    schedule_free(s);

    /* A whole second is the shortest interval allowed. */
    s = every("1s", INT64_MIN, INT64_MAX, INT64_MIN);
    assert_int_equal(schedule_next(s, 1500), 2000);
    schedule_free(s);

    /* Far-future after_ms does not overflow. */
    s = every("1w", INT64_MIN, INT64_MAX, INT64_MIN);
    assert_int_equal(schedule_next(s, INT64_MAX - 1), -1);
    schedule_free(s);
}

static void test_every_preview_not_shifted(void **state)
{
    schedule_fire_t f[2];
    schedule_spec_t sp = spec_of(SCHEDULE_EVERY, "1h", "Europe/Berlin");
    schedule_t *s = compile_ok(&sp);
    assert_int_equal(schedule_preview(s, T("2026-03-29T00:30:00Z"), f, 2), 2);
    check_fire(&f[0], "2026-03-29T01:00:00Z", "2026-03-29T03:00:00+02:00", 7200, false);
    check_fire(&f[1], "2026-03-29T02:00:00Z", "2026-03-29T04:00:00+02:00", 7200, false);
    schedule_free(s);
}

static void test_at(void **state)
{
    schedule_fire_t f[2];
    schedule_spec_t sp = spec_of(SCHEDULE_AT, "2026-12-24T18:00:00Z", NULL);
    schedule_t *s = compile_ok(&sp);
    int64_t at = T("2026-12-24T18:00:00Z");
    assert_int_equal(schedule_next(s, at - 1), at);
    assert_int_equal(schedule_next(s, INT64_MIN), at);
    assert_int_equal(schedule_next(s, at), -1);
    assert_int_equal(schedule_preview(s, 0, f, 2), 1);
    check_fire(&f[0], "2026-12-24T18:00:00Z", "2026-12-24T18:00:00+00:00", 0, false);
    schedule_free(s);

    /* Offsets in the text are honoured; local time follows the zone. */
    sp = spec_of(SCHEDULE_AT, "2026-07-01T12:00:00+02:00", "Europe/Berlin");
    s = compile_ok(&sp);
    assert_int_equal(schedule_preview(s, 0, f, 2), 1);
    check_fire(&f[0], "2026-07-01T10:00:00Z", "2026-07-01T12:00:00+02:00", 7200, false);
    schedule_free(s);

    /* Outside [start, end]: never. */
    sp = spec_of(SCHEDULE_AT, "2026-12-24T18:00:00Z", NULL);
    sp.start_ms = at + 1;
    s = compile_ok(&sp);
    assert_int_equal(schedule_next(s, 0), -1);
    schedule_free(s);
    sp.start_ms = INT64_MIN;
    sp.end_ms = at - 1;
    s = compile_ok(&sp);
    assert_int_equal(schedule_next(s, 0), -1);
    schedule_free(s);
    sp.start_ms = at;
    sp.end_ms = at;
    s = compile_ok(&sp);
    assert_int_equal(schedule_next(s, 0), at);
    schedule_free(s);
}

/* Issue 7, point 2: the last instant sked schedules is the last second of
 * 9999 in UTC, whatever the local date then is, because fire times are
 * printed as RFC 3339 UTC. */
static void test_year_10000_bound(void **state)
{
    schedule_fire_t f[2];
    /* New York's 9999-12-31 23:00 is 10000-01-01T04:00Z: no fire. */
    check_next("0 23 31 12 *", "America/New_York", "9999-12-29T00:00:00Z", "none");
    schedule_t *s = cron("0 23 31 12 *", "America/New_York");
    assert_int_equal(schedule_preview(s, T("9999-12-29T00:00:00Z"), f, 2), 0);
    schedule_free(s);
    /* In UTC the same local time is still in 9999. */
    check_next("0 23 31 12 *", NULL, "9999-12-29T00:00:00Z", "9999-12-31T23:00:00Z");
    check_next("0 23 31 12 *", NULL, "9999-12-31T23:00:00Z", "none");
    check_next("59 59 23 31 12 *", NULL, "9999-12-31T23:00:00Z", "9999-12-31T23:59:59Z");
    check_next("* * * * * *", NULL, "9999-12-31T23:59:59Z", "none");
    /* East of UTC the local date may already be in year 10000. */
    s = cron("0 5 1 1 *", "Pacific/Kiritimati");
    assert_int_equal(schedule_preview(s, T("9999-12-30T00:00:00Z"), f, 2), 1);
    check_fire(&f[0], "9999-12-31T15:00:00Z", "10000-01-01T05:00:00+14:00", 50400, false);
    assert_int_equal(schedule_next(s, INT64_MAX), -1);
    schedule_free(s);
    /* Every schedule stops there too. */
    s = every("1h", INT64_MIN, INT64_MAX, INT64_MIN);
    assert_int_equal(schedule_next(s, T("9999-12-31T22:30:00Z")), T("9999-12-31T23:00:00Z"));
    assert_int_equal(schedule_next(s, T("9999-12-31T23:00:00Z")), -1);
    schedule_free(s);
    /* And the first: nothing before 0002-01-01T00:00:00Z. */
    s = cron("0 0 1 1 *", NULL);
    assert_int_equal(schedule_next(s, T("0000-06-01T00:00:00Z")), T("0002-01-01T00:00:00Z"));
    assert_int_equal(schedule_next(s, INT64_MIN), T("0002-01-01T00:00:00Z"));
    schedule_free(s);
}

/* ---- errors -------------------------------------------------------------------- */

static void check_invalid(schedule_kind_t kind, const char *expr, const char *tz,
                          const char *want_in_msg)
{
    schedule_spec_t sp = spec_of(kind, expr, tz);
    schedule_t *s = (schedule_t *)0x1;
    char err[256] = "";
    int rc = schedule_compile(&sp, &s, err, sizeof err);
    if (rc != SKED_EINVAL || !strstr(err, want_in_msg))
        print_error("'%s': rc %d, message \"%s\", wanted \"%s\"\n", expr ? expr : "(null)", rc, err,
                    want_in_msg);
    assert_int_equal(rc, SKED_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err, want_in_msg));
}

static void test_cron_invalid(void **state)
{
    static const struct {
        const char *expr, *msg;
    } cases[] = {
        {"", "empty"},
        {"   ", "cron expression is empty"},
        {"* * * *", "has 4 fields"},
        {"* * * * * * *", "has 7 fields"},
        {"60 * * * *", "cron field 'minute': 60 is out of range 0-59"},
        {"* 24 * * *", "cron field 'hour': 24 is out of range 0-23"},
        {"* * 0 * *", "cron field 'day-of-month': 0 is out of range 1-31"},
        {"* * 32 * *", "cron field 'day-of-month': 32 is out of range 1-31"},
        {"* * * 0 *", "cron field 'month': 0 is out of range 1-12"},
        {"* * * 13 *", "cron field 'month': 13 is out of range 1-12"},
        {"* * * * 8", "cron field 'day-of-week': 8 is out of range 0-7"},
        {"60 * * * * *", "cron field 'second': 60 is out of range 0-59"},
        {"* 60 * * * *", "cron field 'minute'"},
        {"99999999999 * * * *", "cron field 'minute'"},
        {"*/0 * * * *", "cron field 'minute': step 0 is out of range"},
        {"*/61 * * * *", "cron field 'minute': step 61"},
        {"*/ * * * *", "cron field 'minute': '*/' is missing a step"},
        {"5-1 * * * *", "cron field 'minute': range '5-1' is reversed"},
        {"* * * * FRI-MON", "cron field 'day-of-week': range 'FRI-MON' is reversed"},
        {"1x * * * *", "cron field 'minute': unexpected 'x'"},
        {"1-2-3 * * * *", "cron field 'minute': unexpected '-'"},
        {"1,,2 * * * *", "cron field 'minute': empty list element"},
        {"1, * * * *", "cron field 'minute': empty list element"},
        {"* 1- * * *", "cron field 'hour'"},
        {"* * * FOO *", "cron field 'month': unknown name"},
        {"* * * JANUARY *", "cron field 'month': unexpected 'U'"},
        {"* * * * FOO", "cron field 'day-of-week': unknown name"},
        {"* * * * MONDAY", "cron field 'day-of-week'"},
        {"? * * * *", "cron field 'minute': '?'"},
        {"* * * ? *", "cron field 'month': '?'"},
        {"JAN * * * *", "cron field 'minute'"},
        {"* * L-31 * *", "cron field 'day-of-month'"},
        {"* * L- * *", "cron field 'day-of-month'"},
        {"* * 32W * *", "cron field 'day-of-month'"},
        {"* * W * *", "cron field 'day-of-month'"},
        {"* * 15L * *", "cron field 'day-of-month'"},
        {"* * 1WW * *", "cron field 'day-of-month'"},
        {"* * * * L", "cron field 'day-of-week'"},
        {"* * * * MON#6", "cron field 'day-of-week'"},
        {"* * * * MON#0", "cron field 'day-of-week'"},
        {"* * * * 1#", "cron field 'day-of-week'"},
        {"* * * * 1#2x", "cron field 'day-of-week'"},
        {"* * * * 5Lx", "cron field 'day-of-week'"},
        {"* * * * 1W", "cron field 'day-of-week'"},
        {"* L * * *", "cron field 'hour'"},
        {"-1 * * * *", "cron field 'minute'"},
        {"@reboot", "unknown cron macro '@reboot'"},
        {"@daily 5", "takes no fields"},
        {"@", "unknown cron macro"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_invalid(SCHEDULE_CRON, cases[i].expr, NULL, cases[i].msg);
    check_invalid(SCHEDULE_CRON, NULL, NULL, "empty");
}

/* Issue 7, point 5: a cron that matches no date at all is refused at
 * compile, with the fields to blame, in any zone, instead of being accepted
 * with no next fire time. */
static void test_cron_never_fires(void **state)
{
    static const struct {
        const char *expr, *msg;
    } cases[] = {
        {"0 0 30 2 *", "cron never fires: day-of-month '30' does not occur in month '2'"},
        {"0 0 31 4,6,9,11 *", "day-of-month '31' does not occur in months '4,6,9,11'"},
        {"0 0 31 APR *", "day-of-month '31' does not occur in month 'APR'"},
        {"0 0 30,31 2 ?", "day-of-month '30,31' does not occur in month '2'"},
        {"0 0 0 30 2 *", "day-of-month '30' does not occur in month '2'"},
        {"0 0 L-30 2 *", "day-of-month 'L-30' does not occur in month '2'"},
        {"0 0 31W 6 *", "never fires"},
        /* Day 1 cannot be a fifth Monday. */
        {"0 0 */31 * MON#5",
         "no date matches day-of-month '*/31', month '*' and day-of-week 'MON#5'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_invalid(SCHEDULE_CRON, cases[i].expr, NULL, cases[i].msg);
        check_invalid(SCHEDULE_CRON, cases[i].expr, "Europe/Berlin", cases[i].msg);
    }
    /* Near misses still compile: Feb 29, and the 30th in any month but Feb. */
    schedule_free(cron("0 0 29 2 *", NULL));
    schedule_free(cron("0 0 30 1-12 *", NULL));
    schedule_free(cron("0 0 31 2,3 *", NULL));
}

static void test_other_invalid(void **state)
{
    check_invalid(SCHEDULE_CRON, "0 2 * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'");
    check_invalid(SCHEDULE_CRON, "0 2 * * *", "Etc/Unknown", "unknown time zone");
    check_invalid(SCHEDULE_CRON, "0 2 * * *", "Europe/Berlin ", "unknown time zone");
    check_invalid(SCHEDULE_CRON, "0 2 * * *", "../../etc/passwd", "unknown time zone");
    check_invalid(SCHEDULE_EVERY, "1h", "Nowhere", "unknown time zone 'Nowhere'");
    check_invalid(SCHEDULE_EVERY, "abc", NULL, "every: 'abc' is not a duration");
    check_invalid(SCHEDULE_EVERY, "500ms", NULL, "shorter than 1s");
    check_invalid(SCHEDULE_EVERY, "0", NULL, "shorter than 1s");
    check_invalid(SCHEDULE_EVERY, "", NULL, "every: expression is empty");
    check_invalid(SCHEDULE_AT, "tomorrow", NULL, "at: 'tomorrow' is not an RFC 3339 time");
    check_invalid(SCHEDULE_AT, "1969-12-31T23:59:59Z", NULL, "is before 1970-01-01T00:00:00Z");
    check_invalid(SCHEDULE_AT, "2026-13-01T00:00:00Z", NULL, "RFC 3339");
    check_invalid((schedule_kind_t)7, "x", NULL, "unknown schedule kind");

    schedule_spec_t sp = spec_of(SCHEDULE_CRON, "* * * * *", NULL);
    schedule_t *s = NULL;
    char err[128] = "";
    sp.start_ms = 10;
    sp.end_ms = 9;
    assert_int_equal(schedule_compile(&sp, &s, err, sizeof err), SKED_EINVAL);
    assert_non_null(strstr(err, "start is after end"));
    sp = spec_of(SCHEDULE_CRON, "* * * * *", NULL);
    sp.jitter_ms = -1;
    assert_int_equal(schedule_compile(&sp, &s, err, sizeof err), SKED_EINVAL);
    assert_non_null(strstr(err, "jitter"));
    /* A NULL message buffer is allowed. */
    sp = spec_of(SCHEDULE_CRON, "* * * *", NULL);
    assert_int_equal(schedule_compile(&sp, &s, NULL, 0), SKED_EINVAL);
    assert_null(s);
    schedule_free(NULL);
}

static void test_zone_names_accepted(void **state)
{
    /* Links and fixed-offset Etc zones are real IANA names. */
    check_next("0 12 * * *", "Etc/GMT+5", "2026-01-01T00:00:00Z", "2026-01-01T17:00:00Z");
    check_next("0 12 * * *", "US/Eastern", "2026-01-01T00:00:00Z", "2026-01-01T17:00:00Z");
    check_next("0 12 * * *", "Asia/Calcutta", "2026-01-01T00:00:00Z", "2026-01-01T06:30:00Z");
}

/* ---- zone files ----------------------------------------------------------------- */

static char *tmpdir_new(void)
{
    const char *base = getenv("TMPDIR");
    char *d = NULL;
    assert_true(asprintf(&d, "%s/sked-tz.XXXXXX", base && *base ? base : "/tmp") > 0);
    assert_non_null(mkdtemp(d));
    return d;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static void rm_rf(char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* The bytes of a file, NUL-terminated; *len gets their number. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 16);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    return buf;
}

static const char *find_zic(void)
{
    static const char *const where[] = {"/usr/sbin/zic", "/usr/bin/zic", "/sbin/zic"};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++)
        if (access(where[i], X_OK) == 0) return where[i];
    return NULL;
}

/* Two schedules give the same n previewed fires after `after`. */
static void check_same_fires(const schedule_t *a, const schedule_t *b, const char *after)
{
    schedule_fire_t fa[24], fb[24];
    assert_int_equal(schedule_preview(a, T(after), fa, 24), 24);
    assert_int_equal(schedule_preview(b, T(after), fb, 24), 24);
    for (size_t i = 0; i < 24; i++) {
        assert_string_equal(fa[i].local, fb[i].local);
        assert_int_equal(fa[i].utc_ms, fb[i].utc_ms);
        assert_int_equal(fa[i].utc_offset_s, fb[i].utc_offset_s);
        assert_int_equal(fa[i].dst_shifted, fb[i].dst_shifted);
    }
}

/* Slim zone files (zic's default since 2020) stop their tables once the
 * rule takes over and leave the rest to the POSIX TZ footer. Zones compiled
 * that way from the EU rules must fire exactly as the system's (fat) files
 * do: on DST nights now, past the fat tables' end in 2037, and past 2100,
 * where sked stops unrolling footers into its table. Test/Nuuk's footer has
 * a negative rule time (-02, DST from -1:00 on the last Sunday of March). */
static void test_slim_zone_files(void **state)
{
    static const char src[] = "Rule EU 1981 max - Mar lastSun 1:00u 1:00 S\n"
                              "Rule EU 1996 max - Oct lastSun 1:00u 0 -\n"
                              "Zone Test/Berlin 1:00 EU CE%sT\n"
                              "Zone Test/Nuuk -2:00 EU -02/-01\n";
    static const char *const afters[] = {"2026-03-28T20:00:00Z", "2026-10-24T20:00:00Z",
                                         "2041-03-30T20:00:00Z", "2041-10-26T20:00:00Z",
                                         "2150-03-28T20:00:00Z", "2150-10-24T20:00:00Z"};
    const char *zic = find_zic();
    assert_non_null(zic); /* zic comes with libc-bin, as tzdata with scripts/deps.sh */
    char *dir = tmpdir_new(), cmd[1024], path[600];
    size_t len = 0;
    write_file(dir, "src", src, sizeof src - 1);
    snprintf(cmd, sizeof cmd, "%s -b slim -d %s/zi %s/src", zic, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/zi/Test/Nuuk", dir);
    char *nuuk = slurp(path, &len);
    assert_true(len > 40 && len < 1000); /* slim: a fat file is ~1.5 KiB */
    assert_string_equal(nuuk + len - 33, "\n<-02>2<-01>,M3.5.0/-1,M10.5.0/0\n");
    free(nuuk);

    schedule_t *sys_berlin = cron("*/30 * * * *", "Europe/Berlin");
    schedule_t *sys_nuuk = cron("*/30 * * * *", "America/Nuuk");
    snprintf(path, sizeof path, "%s/zi", dir);
    setenv("TZDIR", path, 1);
    schedule_t *slim_berlin = cron("*/30 * * * *", "Test/Berlin");
    schedule_t *slim_nuuk = cron("*/30 * * * *", "Test/Nuuk");
    schedule_t *gap = cron("30 23 28 3 *", "Test/Nuuk");
    check_invalid(SCHEDULE_CRON, "0 2 * * *", "Europe/Berlin", "unknown time zone"); /* TZDIR */
    unsetenv("TZDIR");

    for (size_t i = 0; i < sizeof afters / sizeof afters[0]; i++) {
        check_same_fires(sys_berlin, slim_berlin, afters[i]);
        check_same_fires(sys_nuuk, slim_nuuk, afters[i]);
    }
    /* 2026-03-28 23:30 (-02) falls in Nuuk's gap, 23:00-24:00 local. */
    schedule_fire_t f[1];
    assert_int_equal(schedule_preview(gap, T("2026-03-01T00:00:00Z"), f, 1), 1);
    check_fire(&f[0], "2026-03-29T01:00:00Z", "2026-03-29T00:00:00-01:00", -3600, true);
    schedule_free(gap);
    schedule_free(sys_berlin);
    schedule_free(sys_nuuk);
    schedule_free(slim_berlin);
    schedule_free(slim_nuuk);
    rm_rf(dir);
}

/* Zone files are input too: what is not a zone is refused with a message,
 * never crashes or hangs the compile. */
static void test_bad_zone_files(void **state)
{
    char *dir = tmpdir_new(), path[600];
    size_t len = 0;
    char *berlin = slurp("/usr/share/zoneinfo/Europe/Berlin", &len);
    snprintf(path, sizeof path, "%s/Bad", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    write_file(dir, "Bad/Garbage", "hello, world\n", 13);
    write_file(dir, "Bad/Empty", "", 0);
    write_file(dir, "Bad/Truncated", berlin, len / 2);
    write_file(dir, "Bad/Trailing", berlin, len + 1); /* the NUL slurp added */
    write_file(dir, "Good", berlin, len);
    snprintf(path, sizeof path, "%s/Bad/Fifo", dir);
    assert_int_equal(mkfifo(path, 0644), 0);
    setenv("TZDIR", dir, 1);
    check_invalid(SCHEDULE_CRON, "0 2 * * *", "Bad/Garbage",
                  "time zone 'Bad/Garbage': not a valid zone file");
    check_invalid(SCHEDULE_CRON, "0 2 * * *", "Bad/Empty", "not a valid zone file");
    check_invalid(SCHEDULE_CRON, "0 2 * * *", "Bad/Truncated", "not a valid zone file");
    check_invalid(SCHEDULE_CRON, "0 2 * * *", "Bad/Trailing", "not a valid zone file");
    check_invalid(SCHEDULE_CRON, "0 2 * * *", "Bad/Fifo", "unknown time zone 'Bad/Fifo'");
    check_invalid(SCHEDULE_CRON, "0 2 * * *", "Bad", "unknown time zone 'Bad'");
    check_next("0 2 * * *", "Good", "2026-07-01T00:00:00Z", "2026-07-02T00:00:00Z");
    unsetenv("TZDIR");
    /* Leap-second files count instants differently. */
    if (access("/usr/share/zoneinfo/right/UTC", R_OK) == 0)
        check_invalid(SCHEDULE_CRON, "0 2 * * *", "right/UTC", "leap seconds");
    /* Names that are not zone names, whatever the file system has. */
    static const char *const names[] = {
        "localtime",         "/etc/passwd",     "Europe//Berlin",         "Europe/",
        "Europe/Berlin.tab", "Europe/Berlin\n", "Europe/../Europe/Berlin"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        check_invalid(SCHEDULE_CRON, "0 2 * * *", names[i], "unknown time zone");
    free(berlin);
    rm_rf(dir);
}

static void test_kind_names(void **state)
{
    assert_string_equal(schedule_kind_name(SCHEDULE_AT), "at");
    assert_string_equal(schedule_kind_name(SCHEDULE_EVERY), "every");
    assert_string_equal(schedule_kind_name(SCHEDULE_CRON), "cron");
}

/* ---- sharing between threads ------------------------------------------------ */

struct worker_arg {
    const schedule_t *s;
    int bad;
};

static void *hammer(void *p)
{
    struct worker_arg *w = p;
    int64_t t = T("2026-10-24T22:00:00Z");
    for (int i = 0; i < 2000; i++) {
        int64_t n = schedule_next(w->s, t);
        if (n <= t) w->bad++;
        t = n;
    }
    return NULL;
}

static void test_shared_between_threads(void **state)
{
    /* Same answers from several threads at once through one calendar. */
    schedule_t *s = cron("*/15 * * * *", "Europe/Berlin");
    pthread_t th[4];
    struct worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct worker_arg){s, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].bad, 0);
    }
    /* 2000 fires of every 15 minutes, minus the four lost to the repeated
     * hour of 2026-10-25: 22:00Z + 2004 * 15 min. */
    int64_t t = T("2026-10-24T22:00:00Z");
    for (int i = 0; i < 2000; i++)
        t = schedule_next(s, t);
    assert_int_equal(t, T("2026-10-24T22:00:00Z") + 2004LL * 15 * 60 * 1000);
    schedule_free(s);
}

/* clock_format_rfc3339 against the C library's own calendar (gmtime_r),
 * over a spread of instants: before the epoch, leap days, every
 * millisecond digit, the last of year 9999 and beyond it (the slow path). */
static void test_rfc3339_format_matches_gmtime(void **state)
{
    (void)state;
    int64_t ms = -62167219200000; /* 0000-01-01T00:00:00Z */
    uint64_t x = 88172645463325252u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* years 0000..10100: sometimes a whole second, sometimes not */
        int64_t v = ms + (int64_t)(x % 318938400000000u);
        if (i % 3 == 0) v -= v % 1000;
        if (i == 0) v = 0;
        if (i == 1) v = -1;
        if (i == 2) v = 253402300799999; /* 9999-12-31T23:59:59.999Z */
        if (i == 3) v = 951782400000;    /* 2000-02-29 */
        time_t t = (time_t)(v >= 0 ? v / 1000 : (v - 999) / 1000);
        int msec = (int)(v - (int64_t)t * 1000);
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        char want[64], got[SKED_RFC3339_LEN];
        int n = snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        snprintf(want + n, sizeof want - (size_t)n, msec ? ".%03dZ" : "Z", msec);
        clock_format_rfc3339(v, got, sizeof got);
        assert_string_equal(got, want);
        if (tm.tm_year + 1900 <= 9999) {
            int64_t back = 0;
            assert_int_equal(clock_parse_rfc3339(got, &back), 0);
            assert_int_equal(back, v);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339_format_matches_gmtime),
        cmocka_unit_test(test_cron_basic_utc),
        cmocka_unit_test(test_cron_field_edges),
        cmocka_unit_test(test_cron_names),
        cmocka_unit_test(test_cron_macros),
        cmocka_unit_test(test_cron_seconds),
        cmocka_unit_test(test_cron_leap_and_impossible),
        cmocka_unit_test(test_cron_last_day),
        cmocka_unit_test(test_cron_nearest_weekday),
        cmocka_unit_test(test_cron_weekday_forms),
        cmocka_unit_test(test_cron_dom_dow_vixie),
        cmocka_unit_test(test_berlin_spring_forward),
        cmocka_unit_test(test_berlin_fall_back),
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_lord_howe),
        cmocka_unit_test(test_kolkata),
        cmocka_unit_test(test_zone_data_is_current),
        cmocka_unit_test(test_year_10000_bound),
        cmocka_unit_test(test_preview_utc_and_limits),
        cmocka_unit_test(test_cron_bounds),
        cmocka_unit_test(test_every),
        cmocka_unit_test(test_every_preview_not_shifted),
        cmocka_unit_test(test_at),
        cmocka_unit_test(test_cron_invalid),
        cmocka_unit_test(test_cron_never_fires),
        cmocka_unit_test(test_other_invalid),
        cmocka_unit_test(test_zone_names_accepted),
        cmocka_unit_test(test_slim_zone_files),
        cmocka_unit_test(test_bad_zone_files),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_shared_between_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
