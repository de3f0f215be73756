/*
 * libFuzzer target for cron schedules (src/core/schedule.h) and the zone
 * files they are evaluated with (src/core/tz.h).
 *
 * An input that starts with "TZif" is a zone file image, given to
 * tz_load_mem(). It must be refused with a message or loaded; a loaded zone
 * is asked for offsets and local-time conversions across the years, which
 * must be consistent with each other: offsets within RFC 8536's range, a
 * local time's first occurrence no later than its last, each occurrence
 * mapping back to that local time, and a skipped local time mapping to an
 * instant where the offset jumps over it.
 *
 * Any other input is a cron expression, optionally followed by a newline
 * and an IANA zone name ("30 2 * * *\nEurope/Berlin"). The expression is
 * compiled in a few fixed
 * zones chosen for their DST quirks, and in the given zone if any; every
 * compiled schedule is then asked for its next fire times from a few fixed
 * instants (the eve of a spring-forward, of a fall-back, and the ends of the
 * supported year range).
 *
 * Properties, beyond "no crash, no leak, no undefined behaviour":
 *  - a rejected expression comes with a non-empty message, and whether it
 *    compiles does not depend on which (valid) zone it is compiled in;
 *  - schedule_next never returns a time <= its `after` argument, and each
 *    call finishes well inside the fuzzer's timeout;
 *  - schedule_preview agrees with repeated schedule_next: strictly
 *    increasing times, the first one equal to schedule_next(after).
 */
#include "common/clock.h"
#include "common/error.h"
#include "core/schedule.h"
#include "core/tz.h"
#include "fuzz.h"

#include <inttypes.h>
#include <stdbool.h>

/* One schedule_next call on any input must stay far below this; the worst
 * honest case is a 400-year search for a date that never comes. */
#define CALL_BUDGET_NS (INT64_C(1000) * 1000 * 1000)
#define PREVIEW_N      6

/* Zones with something to trip over: none, the common EU and US rules, a
 * 30-minute DST shift, and a zone that skipped a whole day (2011-12-30). */
static const char *const zones[] = {"UTC", "Europe/Berlin", "America/New_York",
                                    "Australia/Lord_Howe", "Pacific/Apia"};
#define NZONES (sizeof zones / sizeof zones[0])

static int64_t afters[4];

static int64_t at_utc(int64_t y, unsigned mo, unsigned d, int h)
{
    return (clock_days_from_civil(y, mo, d) * 86400 + h * 3600) * 1000;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    afters[0] = at_utc(2026, 3, 28, 12);  /* before Europe's spring-forward */
    afters[1] = at_utc(2026, 10, 31, 12); /* before America's fall-back */
    afters[2] = at_utc(9999, 12, 30, 0);  /* the last supported days */
    afters[3] = at_utc(1, 6, 1, 0);       /* before the first supported year */
    return 0;
}

static int64_t timed_next(const schedule_t *s, int64_t after, const char *what)
{
    int64_t t0 = clock_mono_ns();
    int64_t n = schedule_next(s, after);
    int64_t spent = clock_mono_ns() - t0;
    if (spent > CALL_BUDGET_NS)
        fuzz_fail("%s: schedule_next(%" PRId64 ") took %" PRId64 " ms", what, after,
                  spent / 1000000);
    if (n != -1 && n <= after)
        fuzz_fail("%s: schedule_next(%" PRId64 ") = %" PRId64 ", not after it", what, after, n);
    return n;
}

static void check_schedule(const schedule_t *s, const char *zone, const char *what)
{
    bool utc = strcmp(zone, "UTC") == 0;
    for (size_t a = 0; a < sizeof afters / sizeof afters[0]; a++) {
        int64_t after = afters[a];
        int64_t next = timed_next(s, after, what);
        schedule_fire_t out[PREVIEW_N];
        size_t k = schedule_preview(s, after, out, PREVIEW_N);
        if (k > PREVIEW_N) fuzz_fail("%s: preview returned %zu > %d", what, k, PREVIEW_N);
        if ((next == -1) != (k == 0))
            fuzz_fail("%s: next=%" PRId64 " but preview gave %zu times", what, next, k);
        if (k && out[0].utc_ms != next)
            fuzz_fail("%s: preview[0]=%" PRId64 " != next=%" PRId64, what, out[0].utc_ms, next);
        for (size_t i = 0; i < k; i++) {
            const schedule_fire_t *f = &out[i];
            int64_t prev = i ? out[i - 1].utc_ms : after;
            if (f->utc_ms <= prev)
                fuzz_fail("%s: preview[%zu]=%" PRId64 " not after %" PRId64, what, i, f->utc_ms,
                          prev);
            if (strnlen(f->local, sizeof f->local) == sizeof f->local || !f->local[0])
                fuzz_fail("%s: preview[%zu].local is empty or unterminated", what, i);
            if (f->utc_offset_s < -86400 || f->utc_offset_s > 86400)
                fuzz_fail("%s: preview[%zu] offset %d s", what, i, f->utc_offset_s);
            if (utc && (f->utc_offset_s != 0 || f->dst_shifted))
                fuzz_fail("%s: UTC fire %s has offset %d / dst_shifted", what, f->local,
                          f->utc_offset_s);
            /* Preview is "next, then next after that": both must agree. */
            int64_t again = timed_next(s, prev, what);
            if (again != f->utc_ms)
                fuzz_fail("%s: preview[%zu]=%" PRId64 " but next(%" PRId64 ")=%" PRId64, what, i,
                          f->utc_ms, prev, again);
        }
    }
}

/* Compiles expr in zone; returns the compile result and checks the
 * schedule when it compiled. */
static int try_zone(const char *expr, const char *zone)
{
    schedule_spec_t spec = {
        .kind = SCHEDULE_CRON,
        .expr = expr,
        .timezone = zone,
        .start_ms = INT64_MIN,
        .end_ms = INT64_MAX,
        .anchor_ms = INT64_MIN,
    };
    schedule_t *s = NULL;
    char err[256];
    memset(err, 0x55, sizeof err); /* a message that forgot its NUL shows up */
    int rc = schedule_compile(&spec, &s, err, sizeof err);
    if (rc == 0) {
        if (!s) fuzz_fail("compile of '%s' in %s succeeded without a schedule", expr, zone);
        check_schedule(s, zone, zone);
        schedule_free(s);
    } else {
        if (rc != SKED_EINVAL) fuzz_fail("compile returned %d, not SKED_EINVAL", rc);
        if (s) fuzz_fail("failed compile of '%s' left a schedule behind", expr);
        if (strnlen(err, sizeof err) == sizeof err || !err[0])
            fuzz_fail("rejection of '%s' in %s has no message", expr, zone);
    }
    return rc;
}

/* ---- zone files ---------------------------------------------------------- */

static void check_local(const tz_t *z, int64_t local)
{
    bool skipped = false, skipped2 = false;
    int64_t first = tz_local_to_utc(z, local, TZ_FIRST, &skipped);
    int64_t last = tz_local_to_utc(z, local, TZ_LAST, &skipped2);
    if (skipped != skipped2)
        fuzz_fail("local %" PRId64 ": skipped for one pick and not the other", local);
    if (first > last)
        fuzz_fail("local %" PRId64 ": first %" PRId64 " after last %" PRId64, local, first, last);
    if (!skipped) {
        if (first + tz_offset_at(z, first) != local || last + tz_offset_at(z, last) != local)
            fuzz_fail("local %" PRId64 ": %" PRId64 "/%" PRId64 " do not map back", local, first,
                      last);
        return;
    }
    /* The offset jumps at `first` from before local to after it. */
    if (first != last || first - 1 + tz_offset_at(z, first - 1) >= local ||
        first + tz_offset_at(z, first) <= local)
        fuzz_fail("local %" PRId64 ": skipped, but %" PRId64 " is not where it was skipped", local,
                  first);
}

static void fuzz_zone_file(const uint8_t *data, size_t size)
{
    tz_t *z = (tz_t *)0x1;
    char err[256];
    memset(err, 0x55, sizeof err);
    int rc = tz_load_mem("Fuzz/Zone", data, size, &z, err, sizeof err);
    if (rc != 0) {
        if (rc != SKED_EINVAL) fuzz_fail("tz_load_mem returned %d, not SKED_EINVAL", rc);
        if (z) fuzz_fail("a refused zone file left a zone behind");
        if (strnlen(err, sizeof err) == sizeof err || !err[0])
            fuzz_fail("a refused zone file has no message");
        return;
    }
    /* Around the epoch, the present, the end of fat tables (2037), of the
     * unrolled footer (2100), beyond it, and the far ends. */
    static const int64_t years[] = {-1000000, 2, 1900, 1970, 2026, 2037, 2099, 2100, 2101, 9999};
    for (size_t i = 0; i < sizeof years / sizeof years[0]; i++) {
        int64_t base = clock_days_from_civil(years[i], 1, 1) * 86400;
        for (int64_t k = 0; k < 24; k++) {
            int64_t t = base + k * (366 * 86400 / 24) + (k * 7919) % 86400;
            int32_t off = tz_offset_at(z, t);
            if (off < -89999 || off > 93599) fuzz_fail("offset %d s at %" PRId64, off, t);
            check_local(z, t);
        }
    }
    static const int64_t far[] = {
        INT64_MIN,     INT64_MIN + 1, -(INT64_C(1) << 55) - 1, (INT64_C(1) << 55) + 1,
        INT64_MAX - 1, INT64_MAX};
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
        (void)tz_offset_at(z, far[i]); /* clamped: no overflow, whatever the rule */
        (void)tz_local_to_utc(z, far[i], TZ_LAST, NULL);
    }
    int32_t fixed = 0;
    if (tz_is_fixed(z, &fixed) && tz_offset_at(z, 0) != fixed)
        fuzz_fail("fixed at %d s but %d s at 0", fixed, tz_offset_at(z, 0));
    tz_close(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4 && memcmp(data, "TZif", 4) == 0) {
        if (size <= 65536) fuzz_zone_file(data, size); /* real files are < 4 KiB */
        return 0;
    }
    /* Real expressions are short; long inputs only slow the search down. */
    if (size > 512) return 0;
    char *text = fuzz_cstr(data, size);
    char *zone = strchr(text, '\n');
    if (zone) *zone++ = '\0';

    int first = 0;
    for (size_t z = 0; z < NZONES; z++) {
        int rc = try_zone(text, zones[z]);
        if (z == 0)
            first = rc;
        else if (rc != first)
            fuzz_fail("'%s' compiles in %s (%d) but not in %s (%d)", text, zones[0], first,
                      zones[z], rc);
    }
    if (zone) try_zone(text, zone);
    free(text);
    return 0;
}
