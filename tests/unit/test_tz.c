/*
 * Unit tests for core/tz: the TZif reader and its two lookups, on images
 * built here byte by byte (so each POSIX TZ footer form is tested on its
 * own: M, J and zero-based day dates, v3 negative and extended hours,
 * quoted names, all-year DST, southern hemisphere, no rule given) and on
 * the system's files (Berlin's DST nights, the day Samoa skipped); every
 * corruption of a file is refused with a message; the process-wide cache
 * shares zones, notices a changed file and keeps the last good zone when a
 * new one does not load; and zones may be opened and used from several
 * threads at once. Expected instants are worked out from the rules by hand.
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
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/error.h"
#include "core/tz.h"

static int64_t T(const char *rfc)
{
    int64_t ms = 0;
    assert_int_equal(clock_parse_rfc3339(rfc, &ms), 0);
    return ms / 1000;
}

/* A local civil time written like an instant ("2026-03-29T02:30:00Z"). */
#define L(s) T(s)

/* ---- building TZif images -------------------------------------------------- */

struct img {
    uint8_t b[4096];
    size_t n;
};

static void put(struct img *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void put32(struct img *m, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(m, b, 4);
}

static void put64(struct img *m, int64_t v)
{
    put32(m, (uint32_t)((uint64_t)v >> 32));
    put32(m, (uint32_t)v);
}

static void header(struct img *m, char ver, uint32_t timecnt, uint32_t typecnt, uint32_t charcnt)
{
    uint8_t zero[15] = {0};
    put(m, "TZif", 4);
    put(m, &ver, 1);
    put(m, zero, 15);
    put32(m, 0); /* isutcnt */
    put32(m, 0); /* isstdcnt */
    put32(m, 0); /* leapcnt */
    put32(m, timecnt);
    put32(m, typecnt);
    put32(m, charcnt);
}

/* A zone: transitions at[i] to offset off[idx[i]]; types' offsets off[];
 * abbreviation "X" for all. */
struct zone {
    size_t n, ntypes;
    int64_t at[8];
    uint8_t idx[8];
    int32_t off[4];
};

static void data(struct img *m, const struct zone *z, int tsize)
{
    for (size_t i = 0; i < z->n; i++) {
        if (tsize == 8)
            put64(m, z->at[i]);
        else
            put32(m, (uint32_t)(int32_t)z->at[i]);
    }
    put(m, z->idx, z->n);
    for (size_t i = 0; i < z->ntypes; i++) {
        uint8_t t[2] = {0, 0}; /* isdst, abbreviation index */
        put32(m, (uint32_t)z->off[i]);
        put(m, t, 2);
    }
    put(m, "X", 2);
}

/* A version 2 image of z with the given footer (NULL: version 1, none). */
static void build(struct img *m, const struct zone *z, const char *footer)
{
    m->n = 0;
    if (!footer) {
        header(m, 0, (uint32_t)z->n, (uint32_t)z->ntypes, 2);
        data(m, z, 4);
        return;
    }
    static const struct zone empty = {.ntypes = 1};
    header(m, '2', 0, 1, 2); /* a minimal version 1 block, which readers skip */
    data(m, &empty, 4);
    header(m, '2', (uint32_t)z->n, (uint32_t)z->ntypes, 2);
    data(m, z, 8);
    put(m, "\n", 1);
    put(m, footer, strlen(footer));
    put(m, "\n", 1);
}

static tz_t *load(const struct img *m)
{
    tz_t *z = NULL;
    char err[256] = "";
    int rc = tz_load_mem("Test/Zone", m->b, m->n, &z, err, sizeof err);
    if (rc) print_error("load failed: %s\n", err);
    assert_int_equal(rc, 0);
    return z;
}

/* A zone with no transitions: the footer is all there is. */
static tz_t *footer_only(const char *footer, int32_t off0)
{
    struct zone z = {.ntypes = 1, .off = {off0}};
    struct img m;
    build(&m, &z, footer);
    return load(&m);
}

static void check_refused(const struct img *m, const char *want)
{
    tz_t *z = (tz_t *)0x1;
    char err[256] = "";
    int rc = tz_load_mem("Test/Bad", m->b, m->n, &z, err, sizeof err);
    if (rc != SKED_EINVAL || !strstr(err, want))
        print_error("rc %d, message \"%s\", wanted \"%s\"\n", rc, err, want);
    assert_int_equal(rc, SKED_EINVAL);
    assert_null(z);
    assert_non_null(strstr(err, "time zone 'Test/Bad': not a valid zone file"));
    assert_non_null(strstr(err, want));
}

static void check_footer_refused(const char *footer)
{
    struct zone z = {.ntypes = 1};
    struct img m;
    build(&m, &z, footer);
    check_refused(&m, "footer");
}

/* Offsets at t - 1 and t: a change at t from `before` to `after`. */
static void check_change(const tz_t *z, const char *at, int32_t before, int32_t after)
{
    int64_t t = T(at);
    if (tz_offset_at(z, t - 1) != before || tz_offset_at(z, t) != after)
        print_error("at %s: %d -> %d, wanted %d -> %d\n", at, tz_offset_at(z, t - 1),
                    tz_offset_at(z, t), before, after);
    assert_int_equal(tz_offset_at(z, t - 1), before);
    assert_int_equal(tz_offset_at(z, t), after);
}

/* ---- footer rules ------------------------------------------------------------ */

static void check_cet(const tz_t *z)
{
    bool skipped = false;
    for (int y = 2026; y <= 2150; y += 124) {
        if (y == 2026) {
            check_change(z, "2026-03-29T01:00:00Z", 3600, 7200);
            check_change(z, "2026-10-25T01:00:00Z", 7200, 3600);
            /* 02:30 is skipped: the first instant after the gap. */
            assert_int_equal(tz_local_to_utc(z, L("2026-03-29T02:30:00Z"), TZ_FIRST, &skipped),
                             T("2026-03-29T01:00:00Z"));
            assert_true(skipped);
            /* 02:30 happens twice. */
            assert_int_equal(tz_local_to_utc(z, L("2026-10-25T02:30:00Z"), TZ_FIRST, &skipped),
                             T("2026-10-25T00:30:00Z"));
            assert_false(skipped);
            assert_int_equal(tz_local_to_utc(z, L("2026-10-25T02:30:00Z"), TZ_LAST, NULL),
                             T("2026-10-25T01:30:00Z"));
            assert_int_equal(tz_local_to_utc(z, L("2026-07-01T12:00:00Z"), TZ_LAST, &skipped),
                             T("2026-07-01T10:00:00Z"));
            assert_false(skipped);
        } else { /* 2150: last Sundays are March 29 and October 25 again */
            check_change(z, "2150-03-29T01:00:00Z", 3600, 7200);
            check_change(z, "2150-10-25T01:00:00Z", 7200, 3600);
        }
    }
    assert_false(tz_is_fixed(z, NULL));
}

static void test_footer_month_week_day(void **state)
{
    /* The rule alone, for all time. */
    tz_t *z = footer_only("CET-1CEST,M3.5.0,M10.5.0/3", 3600);
    check_cet(z);
    tz_close(z);
    /* A table that hands over to the rule in 1996 (unrolled up to 2100). */
    struct zone zz = {.n = 2,
                      .ntypes = 2,
                      .at = {T("1996-03-31T01:00:00Z"), T("1996-10-27T01:00:00Z")},
                      .idx = {1, 0},
                      .off = {3600, 7200}};
    struct img m;
    build(&m, &zz, "CET-1CEST,M3.5.0,M10.5.0/3");
    z = load(&m);
    check_cet(z);
    check_change(z, "1996-03-31T01:00:00Z", 3600, 7200);
    check_change(z, "2099-10-25T01:00:00Z", 7200, 3600);
    check_change(z, "2100-03-28T01:00:00Z", 3600, 7200);
    tz_close(z);
    /* Southern hemisphere: DST across the new year. */
    z = footer_only("AEST-10AEDT,M10.1.0,M4.1.0/3", 36000);
    assert_int_equal(tz_offset_at(z, T("2026-01-15T00:00:00Z")), 39600);
    check_change(z, "2026-04-04T16:00:00Z", 39600, 36000);
    check_change(z, "2026-10-03T16:00:00Z", 36000, 39600);
    tz_close(z);
    /* DST named but no rule: POSIX leaves it open; we take the US one. */
    z = footer_only("EST5EDT", -18000);
    check_change(z, "2026-03-08T07:00:00Z", -18000, -14400);
    check_change(z, "2026-11-01T06:00:00Z", -14400, -18000);
    tz_close(z);
}

static void test_footer_julian_days(void **state)
{
    /* Jn counts 1-365 and never Feb 29: J60 is March 1 in 2028 too. J300
     * is October 27. Changes at 00:00 local (+02, then +03). */
    tz_t *z = footer_only("XST-2XDT,J60/0,J300/0", 7200);
    check_change(z, "2027-02-28T22:00:00Z", 7200, 10800);
    check_change(z, "2028-02-29T22:00:00Z", 7200, 10800);
    check_change(z, "2028-10-26T21:00:00Z", 10800, 7200);
    tz_close(z);
    /* n counts 0-365 with Feb 29: day 59 is March 1 in 2027, Feb 29 in 2028. */
    z = footer_only("XST-2XDT,59/0,299/0", 7200);
    check_change(z, "2027-02-28T22:00:00Z", 7200, 10800);
    check_change(z, "2028-02-28T22:00:00Z", 7200, 10800);
    check_change(z, "2028-10-25T21:00:00Z", 10800, 7200);
    tz_close(z);
}

static void test_footer_v3_hours_and_names(void **state)
{
    bool skipped = false;
    /* Nuuk: -02, DST from -1:00 (Saturday 23:00) on the last Sunday of
     * March to 0:00 on the last Sunday of October. */
    tz_t *z = footer_only("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", -7200);
    check_change(z, "2026-03-29T01:00:00Z", -7200, -3600);
    check_change(z, "2026-10-25T01:00:00Z", -3600, -7200);
    assert_int_equal(tz_local_to_utc(z, L("2026-03-28T23:30:00Z"), TZ_FIRST, &skipped),
                     T("2026-03-29T01:00:00Z"));
    assert_true(skipped);
    tz_close(z);
    /* DST all year: it ends at 25:00 on Dec 31, as next year's begins. */
    z = footer_only("EST5EDT,0/0,J365/25", -18000);
    static const char *const at[] = {"2026-01-01T00:00:00Z", "2026-01-01T04:59:59Z",
                                     "2026-01-01T05:00:00Z", "2026-07-01T00:00:00Z",
                                     "2026-12-31T23:59:59Z", "2027-01-01T05:00:00Z"};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++)
        assert_int_equal(tz_offset_at(z, T(at[i])), -14400);
    assert_int_equal(tz_local_to_utc(z, L("2027-01-01T00:30:00Z"), TZ_FIRST, &skipped),
                     T("2027-01-01T04:30:00Z"));
    assert_false(skipped);
    tz_close(z);
    /* Hours up to 167 in rule times; a quoted numeric name, fixed offset. */
    z = footer_only("XST0XDT,M3.1.0/167,M10.1.0/-167", 0);
    check_change(z, "2026-03-07T23:00:00Z", 0, 3600); /* Sun Mar 1 + 167 h */
    check_change(z, "2026-09-27T00:00:00Z", 3600, 0); /* Sun Oct 4 - 167 h, in DST time */
    tz_close(z);
    int32_t off = 0;
    z = footer_only("<+0330>-3:30", 0);
    assert_true(tz_is_fixed(z, &off));
    assert_int_equal(off, 12600);
    assert_int_equal(tz_local_to_utc(z, L("2026-01-01T03:30:00Z"), TZ_FIRST, NULL),
                     T("2026-01-01T00:00:00Z"));
    tz_close(z);
    z = footer_only("<-00>0", 0);
    assert_true(tz_is_fixed(z, &off));
    assert_int_equal(off, 0);
    tz_close(z);
}

static void test_footer_malformed(void **state)
{
    static const char *const bad[] = {
        "CE",                         /* name too short */
        "CET",                        /* no offset */
        "CET-25",                     /* offset out of range */
        "CET-1CEST,M13.5.0,M10.5.0",  /* month 13 */
        "CET-1CEST,M3.6.0,M10.5.0",   /* week 6 */
        "CET-1CEST,M3.5.7,M10.5.0",   /* weekday 7 */
        "CET-1CEST,M3.5.0",           /* one date */
        "CET-1CEST,M3.5.0/168,M10.5", /* 168 h */
        "CET-1CEST,J0,J100",          /* J counts from 1 */
        "CET-1CEST,366,100",          /* n up to 365 */
        "CET-1CEST,M3.5.0,M10.5.0x",  /* trailing text */
        "<>-1",                       /* empty quoted name */
        "<+01-1",                     /* unterminated quote */
        "CET-1:60",                   /* minutes 60 */
        "CET-1CEST;M3.5.0,M10.5.0",   /* wrong separator */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_footer_refused(bad[i]);
}

/* ---- tables, versions, corruption ---------------------------------------------- */

static void test_tables(void **state)
{
    /* Version 1: 32-bit times, no footer; the last offset persists. */
    struct zone zz = {.n = 2,
                      .ntypes = 3,
                      .at = {T("1990-01-01T00:00:00Z"), T("2001-09-09T01:46:40Z")},
                      .idx = {1, 2},
                      .off = {-1800, 3600, 7200}};
    struct img m;
    build(&m, &zz, NULL);
    tz_t *z = load(&m);
    assert_int_equal(tz_offset_at(z, T("1980-01-01T00:00:00Z")), -1800); /* type 0 */
    check_change(z, "1990-01-01T00:00:00Z", -1800, 3600);
    check_change(z, "2001-09-09T01:46:40Z", 3600, 7200);
    assert_int_equal(tz_offset_at(z, T("2200-01-01T00:00:00Z")), 7200);
    assert_int_equal(tz_offset_at(z, INT64_MAX), 7200);
    assert_int_equal(tz_offset_at(z, INT64_MIN), -1800);
    assert_false(tz_is_fixed(z, NULL));
    assert_string_equal(tz_name(z), "Test/Zone");
    tz_close(z);
    /* Version 2 with an empty footer: the same. */
    build(&m, &zz, "");
    z = load(&m);
    assert_int_equal(tz_offset_at(z, T("2200-01-01T00:00:00Z")), 7200);
    tz_close(z);
    /* Transitions that do not change the offset change nothing. */
    struct zone same = {.n = 2, .ntypes = 2, .at = {0, 1000}, .idx = {1, 0}, .off = {3600, 3600}};
    build(&m, &same, "");
    z = load(&m);
    assert_true(tz_is_fixed(z, NULL));
    tz_close(z);
}

static void test_corrupt_images(void **state)
{
    struct zone good = {.n = 1, .ntypes = 2, .at = {1000}, .idx = {1}, .off = {0, 3600}};
    struct img m;

    m.n = 0;
    check_refused(&m, "no TZif header");
    build(&m, &good, "XST0");
    m.b[4] = '1';
    check_refused(&m, "version");

    /* Header counts that do not add up. */
    static const struct {
        size_t at;      /* byte offset in the second header */
        uint32_t value; /* what is written there */
        const char *why;
    } counts[] = {
        {20, 1, "counts"},             /* isutcnt neither 0 nor typecnt */
        {24, 3, "counts"},             /* isstdcnt */
        {28, 1, "leap seconds"},       /* leapcnt */
        {32, 0xFFFFFFFF, "truncated"}, /* timecnt */
        {36, 0, "counts"},             /* typecnt 0 */
        {36, 1000, "counts"},          /* typecnt > 256 */
        {40, 0, "counts"},             /* charcnt 0 */
        {40, 0x7FFFFFFF, "truncated"}, /* charcnt */
    };
    size_t h2 = 44 + 6 + 2; /* the minimal version 1 block */
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        build(&m, &good, "XST0");
        uint32_t v = counts[i].value;
        uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
        memcpy(m.b + h2 + counts[i].at, b, 4);
        check_refused(&m, counts[i].why);
    }

    /* Bad data. */
    struct zone z = good;
    z.n = 2;
    z.at[1] = 1000; /* not ascending */
    z.idx[1] = 0;
    build(&m, &z, "XST0");
    check_refused(&m, "ascending");
    z = good;
    z.idx[0] = 2; /* no such type */
    build(&m, &z, "XST0");
    check_refused(&m, "missing local time type");
    z = good;
    z.off[1] = 100000; /* more than +25:59:59 */
    build(&m, &z, "XST0");
    check_refused(&m, "local time type is invalid");
    z.off[1] = INT32_MIN;
    build(&m, &z, "XST0");
    check_refused(&m, "local time type is invalid");

    /* The footer and what follows it. */
    build(&m, &good, "XST0");
    m.n--; /* no final newline */
    check_refused(&m, "footer");
    build(&m, &good, "XST0");
    put(&m, "x", 1);
    check_refused(&m, "footer");
    build(&m, &good, NULL);
    put(&m, "x", 1); /* version 1 has no footer to end at */
    check_refused(&m, "trailing");
    build(&m, &good, "XST0");
    m.b[m.n - 3] = '\0'; /* a NUL inside the footer */
    check_refused(&m, "footer");
}

/* Any prefix of a real file is refused, and none crashes the reader. */
static void test_truncated_real_file(void **state)
{
    FILE *f = fopen("/usr/share/zoneinfo/Europe/Berlin", "rb");
    assert_non_null(f); /* tzdata is installed by scripts/deps.sh */
    static uint8_t buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    for (size_t n = 0; n < len; n++) {
        tz_t *z = NULL;
        assert_int_equal(tz_load_mem("Europe/Berlin", buf, n, &z, NULL, 0), SKED_EINVAL);
        assert_null(z);
    }
    tz_t *z = NULL;
    assert_int_equal(tz_load_mem("Europe/Berlin", buf, len, &z, NULL, 0), 0);
    tz_close(z);
}

/* ---- the system's zones -------------------------------------------------------- */

static tz_t *open_ok(const char *name)
{
    tz_t *z = NULL;
    char err[256] = "";
    int rc = tz_open(name, &z, err, sizeof err);
    if (rc) print_error("open %s: %s\n", name, err);
    assert_int_equal(rc, 0);
    return z;
}

static void test_system_zones(void **state)
{
    bool skipped = false;
    tz_t *z = open_ok("Europe/Berlin");
    check_change(z, "2026-03-29T01:00:00Z", 3600, 7200);
    assert_int_equal(tz_local_to_utc(z, L("2026-10-25T02:30:00Z"), TZ_LAST, &skipped),
                     T("2026-10-25T01:30:00Z"));
    /* One file, one zone, shared. */
    tz_t *again = open_ok("Europe/Berlin");
    assert_ptr_equal(z, again);
    tz_close(again);
    tz_close(z);
    /* Samoa skipped 2011-12-30: a whole local day maps to one instant. */
    z = open_ok("Pacific/Apia");
    check_change(z, "2011-12-30T10:00:00Z", -36000, 50400);
    assert_int_equal(tz_local_to_utc(z, L("2011-12-30T12:00:00Z"), TZ_FIRST, &skipped),
                     T("2011-12-30T10:00:00Z"));
    assert_true(skipped);
    tz_close(z);
    int32_t off = 0;
    z = open_ok("Etc/GMT+5");
    assert_true(tz_is_fixed(z, &off));
    assert_int_equal(off, -18000);
    tz_close(z);
    tz_close(NULL);
    /* UTC even where no zone files are. */
    char *empty = strdup("/tmp/sked-tz-empty.XXXXXX");
    assert_non_null(mkdtemp(empty));
    setenv("TZDIR", empty, 1);
    z = open_ok("UTC");
    assert_true(tz_is_fixed(z, &off));
    assert_int_equal(off, 0);
    tz_close(z);
    char err[128] = "";
    assert_int_equal(tz_open("Europe/Berlin", &z, err, sizeof err), SKED_EINVAL);
    assert_null(z);
    assert_string_equal(err, "unknown time zone 'Europe/Berlin'");
    unsetenv("TZDIR");
    rmdir(empty);
    free(empty);
}

/* ---- the cache notices changed files -------------------------------------------- */

static void write_zone(const char *dir, const char *name, const char *footer)
{
    char tmp[512], path[512];
    struct zone z = {.ntypes = 1};
    struct img m;
    build(&m, &z, footer);
    snprintf(tmp, sizeof tmp, "%s/.tmp", dir);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(m.b, 1, m.n, f), m.n);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0); /* as package managers do */
}

static int32_t offset_now(const char *name)
{
    tz_t *z = open_ok(name);
    int32_t off = tz_offset_at(z, 0);
    tz_close(z);
    return off;
}

static void test_reload_on_change(void **state)
{
    char *dir = strdup("/tmp/sked-tz-reload.XXXXXX");
    assert_non_null(mkdtemp(dir));
    setenv("TZDIR", dir, 1);
    write_zone(dir, "Zone", "<+01>-1");

    /* Trusted for a while: a change is not seen at once. */
    tz_set_recheck_ms(60000);
    assert_int_equal(offset_now("Zone"), 3600);
    tz_t *held = open_ok("Zone");
    uint64_t gen = tz_generation();
    write_zone(dir, "Zone", "<+02>-2");
    assert_int_equal(offset_now("Zone"), 3600);
    assert_int_equal(tz_generation(), gen);

    /* Looked at again: the generation moves and the new file loads. The
     * zone a schedule still holds is unchanged. */
    tz_set_recheck_ms(0);
    assert_true(tz_generation() > gen);
    assert_int_equal(offset_now("Zone"), 7200);
    assert_int_equal(tz_offset_at(held, 0), 3600);
    tz_close(held);

    /* A changed file that does not load: the last good zone stays. */
    gen = tz_generation();
    char path[512];
    snprintf(path, sizeof path, "%s/Zone", dir);
    FILE *f = fopen(path, "wb"); /* rewritten in place, not renamed */
    assert_non_null(f);
    fputs("garbage", f);
    fclose(f);
    assert_true(tz_generation() > gen);
    assert_int_equal(offset_now("Zone"), 7200);
    write_zone(dir, "Zone", "<+03>-3");
    assert_int_equal(offset_now("Zone"), 10800);

    /* Gone: unknown from then on. */
    assert_int_equal(unlink(path), 0);
    tz_t *z = NULL;
    assert_int_equal(tz_open("Zone", &z, NULL, 0), SKED_EINVAL);
    assert_null(z);

    tz_set_recheck_ms(-1);
    unsetenv("TZDIR");
    rmdir(dir);
    free(dir);
}

/* ---- threads ----------------------------------------------------------------------- */

static const char *const busy_zones[] = {"Europe/Berlin", "America/New_York",
                                         "Asia/Kolkata",  "Australia/Lord_Howe",
                                         "UTC",           "Africa/Cairo"};

static void *busy(void *arg)
{
    int *bad = arg;
    for (int i = 0; i < 3000; i++) {
        tz_t *z = NULL;
        const char *name = busy_zones[i % 6];
        if (tz_open(name, &z, NULL, 0) != 0) {
            (*bad)++;
            continue;
        }
        int64_t t = T("2026-03-29T00:00:00Z") + i * 61;
        int32_t off = tz_offset_at(z, t);
        if (tz_local_to_utc(z, t + off, TZ_FIRST, NULL) > t) (*bad)++;
        (void)tz_generation();
        tz_close(z);
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t th[4];
    int bad[4] = {0};
    tz_set_recheck_ms(0); /* every open re-stats: the cache's busiest path */
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, busy, &bad[i]), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(bad[i], 0);
    }
    tz_set_recheck_ms(-1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_footer_month_week_day),
        cmocka_unit_test(test_footer_julian_days),
        cmocka_unit_test(test_footer_v3_hours_and_names),
        cmocka_unit_test(test_footer_malformed),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_corrupt_images),
        cmocka_unit_test(test_truncated_real_file),
        cmocka_unit_test(test_system_zones),
        cmocka_unit_test(test_reload_on_change),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
