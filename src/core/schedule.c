/*
 * Schedules: compiling `at`, `every` and `cron` specs and computing their
 * next fire time. This is pure domain logic in src/core: the scheduler loop
 * (src/server) and the store call schedule_next() with the instant they care
 * about, so the DST nights and leap days tested here are exactly what runs.
 *
 * Cron is evaluated in two steps that keep time zones out of the matching:
 * a search forward in *civil* (wall-clock, zone-free) time for the next
 * date-time that matches every field, then one conversion of that civil time
 * to an instant (core/tz.h), where a skipped local time maps to the first
 * instant after the gap and a repeated one to its first occurrence. A
 * candidate whose instant is not after `after_ms` (inside a repeated hour,
 * or several gap times collapsing onto one instant) is passed over, which is
 * what makes each local time fire once. The tz rules come from the system's
 * zone files, which the OS keeps current; no table is kept here.
 *
 * Because the Gregorian calendar repeats every 400 years (146097 days, a
 * whole number of weeks), a cron that matches no date in one such cycle
 * matches none ever: compile searches one cycle and refuses it, so the
 * civil search below always ends within 400 years.
 */
#include "core/schedule.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"
#include "core/duration.h"

#include "core/tz.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One Gregorian cycle: every date-and-weekday combination occurs in it. */
#define SEARCH_DAYS ((int64_t)146097) /* 400 Gregorian years */
/* Guard for the candidate loop in cron_next: each skipped candidate is a
 * local time inside a repeated hour or a gap, at most a day's worth of
 * seconds around one transition, so this is never reached by real input. */
#define MAX_SKIPS 200000
/* Cron fires only in [MIN_MS, MAX_MS), and no schedule at or after MAX_MS:
 * RFC 3339 cannot print a year after 9999. It is the UTC instant that is
 * bounded, not the local date, which may be a day either side. */
#define MIN_MS INT64_C(-62104060800000) /* 0002-01-01T00:00:00Z */
#define MAX_MS INT64_C(253402300800000) /* 10000-01-01T00:00:00Z */

enum field_id { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, NFIELDS };

static const struct field_def {
    const char *name;
    int min, max;
} fields[NFIELDS] = {
    {"second", 0, 59},       {"minute", 0, 59}, {"hour", 0, 23},
    {"day-of-month", 1, 31}, {"month", 1, 12},  {"day-of-week", 0, 7},
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

static const struct macro {
    const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* A compiled cron expression: one bit per allowed value. */
struct cron {
    uint64_t sec;       /* bit n: second n */
    uint64_t min;       /* bit n: minute n */
    uint32_t hour;      /* bit n: hour n */
    uint32_t dom;       /* bit n: day n of the month (1..31) */
    uint32_t dom_last;  /* bit k: the day k days before the last ("L" is k=0, "L-3" k=3) */
    uint32_t dom_w;     /* bit n: the weekday nearest day n ("15W") */
    bool dom_lw;        /* "LW": the last weekday of the month */
    uint16_t month;     /* bit n: month n (1..12) */
    uint8_t dow;        /* bit n: weekday n (0 = Sunday) */
    uint8_t dow_last;   /* bit n: the last weekday n of the month ("5L") */
    uint8_t dow_nth[5]; /* [k-1] bit n: the k-th weekday n of the month ("MON#2") */
    bool dom_star;      /* day-of-month starts with '*' or '?': unrestricted for Vixie OR */
    bool dow_star;      /* same for day-of-week */
};

struct schedule {
    schedule_kind_t kind;
    int64_t start_ms, end_ms; /* bounds, inclusive; INT64_MIN/INT64_MAX = open */
    int64_t at_ms;            /* at: the instant */
    int64_t interval_ms;      /* every: the period, >= 1 s */
    int64_t anchor_ms;        /* every: fires at anchor + k * interval */
    struct cron cron;         /* cron: the fields */
    tz_t *zone;               /* shared, immutable; our reference */
};

/* A zone-free wall-clock date-time. */
struct civil {
    int64_t y;
    unsigned mo, d;
    int h, mi, s;
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_len(int64_t y, unsigned m)
{
    static const unsigned len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static int weekday(int64_t days)
{
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* ---- cron parsing ------------------------------------------------------ */

/* Parses a number or (for month and day-of-week) a three-letter name at *p.
 * Day-of-week 7 is returned as 7; callers fold it onto Sunday. */
static int parse_value(const char **p, int f, const char *item, int *out, char *err, size_t errlen)
{
    const struct field_def *fd = &fields[f];
    const char *q = *p;
    if (isdigit((unsigned char)*q)) {
        long v = 0;
        int nd = 0;
        while (isdigit((unsigned char)*q)) {
            if (nd < 9) v = v * 10 + (*q - '0');
            nd++;
            q++;
        }
        if (nd > 9 || v < fd->min || v > fd->max) {
            seterr(err, errlen, "cron field '%s': %.*s is out of range %d-%d", fd->name,
                   (int)(q - *p), *p, fd->min, fd->max);
            return SKED_EINVAL;
        }
        *out = (int)v;
        *p = q;
        return 0;
    }
    if (isalpha((unsigned char)*q) && (f == F_MON || f == F_DOW)) {
        const char *const *names = f == F_MON ? month_names : dow_names;
        int n = f == F_MON ? 12 : 7;
        for (int i = 0; i < n; i++) {
            if (strncasecmp(q, names[i], 3) == 0) {
                *out = f == F_MON ? i + 1 : i;
                *p = q + 3;
                return 0;
            }
        }
        seterr(err, errlen, "cron field '%s': unknown name in '%s'", fd->name, item);
        return SKED_EINVAL;
    }
    if (*q == '\0')
        seterr(err, errlen, "cron field '%s': '%s' is missing a value", fd->name, item);
    else
        seterr(err, errlen, "cron field '%s': unexpected '%c' in '%s'", fd->name, *q, item);
    return SKED_EINVAL;
}

static void set_bit(struct cron *c, int f, int v)
{
    switch (f) {
    case F_SEC:
        c->sec |= 1ULL << v;
        break;
    case F_MIN:
        c->min |= 1ULL << v;
        break;
    case F_HOUR:
        c->hour |= 1U << v;
        break;
    case F_DOM:
        c->dom |= 1U << v;
        break;
    case F_MON:
        c->month |= (uint16_t)(1U << v);
        break;
    case F_DOW:
        c->dow |= (uint8_t)(1U << (v % 7));
        break; /* 7 is Sunday too */
    default:
        break;
    }
}

static int trailing(const char *p, int f, const char *item, char *err, size_t errlen)
{
    if (*p == '\0') return 0;
    seterr(err, errlen, "cron field '%s': unexpected '%c' in '%s'", fields[f].name, *p, item);
    return SKED_EINVAL;
}

/* The special day-of-month forms: L, L-n, LW, nW. Returns 1 when item was
 * not one of them (so the general grammar applies), 0 or an error. */
static int parse_dom_special(struct cron *c, const char *item, char *err, size_t errlen)
{
    const char *p = item;
    int v = 0, rc = 0;
    if (strcasecmp(item, "L") == 0) {
        c->dom_last |= 1U;
        return 0;
    }
    if (strcasecmp(item, "LW") == 0) {
        c->dom_lw = true;
        return 0;
    }
    if ((item[0] == 'L' || item[0] == 'l') && item[1] == '-') {
        p = item + 2;
        if (!isdigit((unsigned char)*p)) {
            seterr(err, errlen, "cron field 'day-of-month': '%s' needs a number after 'L-'", item);
            return SKED_EINVAL;
        }
        if ((rc = parse_value(&p, F_DOM, item, &v, err, errlen)) < 0) return rc;
        if (v > 30) {
            seterr(err, errlen, "cron field 'day-of-month': %d in '%s' is out of range 1-30", v,
                   item);
            return SKED_EINVAL;
        }
        if ((rc = trailing(p, F_DOM, item, err, errlen)) < 0) return rc;
        c->dom_last |= 1U << v;
        return 0;
    }
    size_t n = strlen(item);
    if (n >= 2 && (item[n - 1] == 'W' || item[n - 1] == 'w') && isdigit((unsigned char)item[0])) {
        p = item;
        if ((rc = parse_value(&p, F_DOM, item, &v, err, errlen)) < 0) return rc;
        if (p != item + n - 1) return trailing(p, F_DOM, item, err, errlen);
        c->dom_w |= 1U << v;
        return 0;
    }
    return 1;
}

/* One comma-separated element of a field. */
static int parse_item(struct cron *c, int f, const char *item, char *err, size_t errlen)
{
    const struct field_def *fd = &fields[f];
    const char *p = item;
    int lo, hi, step = 1, rc = 0;
    bool range = false;

    if (*item == '\0') {
        seterr(err, errlen, "cron field '%s': empty list element", fd->name);
        return SKED_EINVAL;
    }
    if (f == F_DOM && (rc = parse_dom_special(c, item, err, errlen)) <= 0) return rc;

    if (*p == '*' || *p == '?') {
        if (*p == '?' && f != F_DOM && f != F_DOW) {
            seterr(err, errlen,
                   "cron field '%s': '?' is only allowed in day-of-month and "
                   "day-of-week",
                   fd->name);
            return SKED_EINVAL;
        }
        p++;
        lo = fd->min;
        hi = f == F_DOW ? 6 : fd->max;
        range = true;
    } else {
        if (f == F_DOW && (*p == 'L' || *p == 'l') && p[1] == '\0') {
            seterr(err, errlen,
                   "cron field 'day-of-week': 'L' needs a weekday before it "
                   "(e.g. 5L, FRIL)");
            return SKED_EINVAL;
        }
        if ((rc = parse_value(&p, f, item, &lo, err, errlen)) < 0) return rc;
        hi = lo;
        if (f == F_DOW && (*p == 'L' || *p == 'l')) {
            if ((rc = trailing(p + 1, f, item, err, errlen)) < 0) return rc;
            c->dow_last |= (uint8_t)(1U << (lo % 7));
            return 0;
        }
        if (f == F_DOW && *p == '#') {
            int k = 0;
            p++;
            if (!isdigit((unsigned char)*p) || (k = *p - '0') < 1 || k > 5 ||
                isdigit((unsigned char)p[1])) {
                seterr(err, errlen, "cron field 'day-of-week': '%s' needs #1 to #5", item);
                return SKED_EINVAL;
            }
            if ((rc = trailing(p + 1, f, item, err, errlen)) < 0) return rc;
            c->dow_nth[k - 1] |= (uint8_t)(1U << (lo % 7));
            return 0;
        }
        if (*p == '-') {
            p++;
            if ((rc = parse_value(&p, f, item, &hi, err, errlen)) < 0) return rc;
            if (hi < lo) {
                seterr(err, errlen, "cron field '%s': range '%s' is reversed", fd->name, item);
                return SKED_EINVAL;
            }
            range = true;
        }
    }
    if (*p == '/') {
        const char *s = ++p;
        long v = 0;
        int nd = 0;
        while (isdigit((unsigned char)*p)) {
            if (nd < 9) v = v * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0) {
            seterr(err, errlen, "cron field '%s': '%s' is missing a step after '/'", fd->name,
                   item);
            return SKED_EINVAL;
        }
        int maxstep = fd->max - fd->min + 1;
        if (nd > 9 || v < 1 || v > maxstep) {
            seterr(err, errlen, "cron field '%s': step %.*s is out of range 1-%d", fd->name,
                   (int)(p - s), s, maxstep);
            return SKED_EINVAL;
        }
        step = (int)v;
        if (!range) hi = f == F_DOW ? 7 : fd->max; /* "a/n" runs from a to the end */
    }
    if ((rc = trailing(p, f, item, err, errlen)) < 0) return rc;
    for (int v = lo; v <= hi; v += step)
        set_bit(c, f, v);
    return 0;
}

/* Parses one whitespace-free field text into c. */
static int parse_field(struct cron *c, int f, const char *text, char *err, size_t errlen)
{
    char item[64];
    const char *p = text;
    int rc = 0;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n >= sizeof item) {
            seterr(err, errlen, "cron field '%s': element '%.20s...' is too long", fields[f].name,
                   p);
            return SKED_EINVAL;
        }
        memcpy(item, p, n);
        item[n] = '\0';
        if ((rc = parse_item(c, f, item, err, errlen)) < 0) return rc;
        if (!comma) break;
        p = comma + 1;
    }
    if (f == F_DOM) c->dom_star = text[0] == '*' || text[0] == '?';
    if (f == F_DOW) c->dow_star = text[0] == '*' || text[0] == '?';
    return 0;
}

static int parse_cron(struct cron *c, const char *expr, char *err, size_t errlen)
{
    char *copy = NULL, *tok[7], *save = NULL;
    int n = 0, rc = 0;

    memset(c, 0, sizeof *c);
    while (isspace((unsigned char)*expr))
        expr++;
    if (*expr == '@') {
        size_t len = strcspn(expr, " \t\r\n");
        const char *rest = expr + len;
        while (isspace((unsigned char)*rest))
            rest++;
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++) {
            if (strlen(macros[i].name) == len && strncasecmp(expr, macros[i].name, len) == 0) {
                if (*rest) {
                    seterr(err, errlen, "cron macro %s takes no fields (got '%s')", macros[i].name,
                           rest);
                    return SKED_EINVAL;
                }
                return parse_cron(c, macros[i].expr, err, errlen);
            }
        }
        seterr(err, errlen,
               "unknown cron macro '%.*s' (known: @yearly @annually @monthly "
               "@weekly @daily @midnight @hourly)",
               (int)(len > 40 ? 40 : len), expr);
        return SKED_EINVAL;
    }

    copy = xstrdup(expr);
    for (char *t = strtok_r(copy, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
        if (n < 7) tok[n] = t;
        n++;
    }
    if (n == 0) {
        seterr(err, errlen, "cron expression is empty");
        rc = SKED_EINVAL;
        goto out;
    }
    if (n != 5 && n != 6) {
        seterr(err, errlen,
               "cron expression has %d fields; expected 5 (minute hour "
               "day-of-month month day-of-week) or 6 (with seconds first)",
               n);
        rc = SKED_EINVAL;
        goto out;
    }
    int first = n == 6 ? F_SEC : F_MIN;
    if (n == 5) c->sec = 1; /* five fields fire at second 0 */
    for (int i = 0; i < n; i++)
        if ((rc = parse_field(c, first + i, tok[i], err, errlen)) < 0) goto out;
out:
    free(copy);
    return rc;
}

/* ---- cron matching in civil time ---------------------------------------- */

static bool dom_matches(const struct cron *c, unsigned d, unsigned ld, int wd)
{
    if (c->dom >> d & 1U) return true;
    if (c->dom_last && ld - d < 32 && (c->dom_last >> (ld - d) & 1U)) return true;
    if (c->dom_lw) {
        int wl = (wd + (int)(ld - d)) % 7; /* weekday of the last day */
        unsigned lw = wl == 6 ? ld - 1 : wl == 0 ? ld - 2 : ld;
        if (d == lw) return true;
    }
    /* nW: the weekday nearest day n, never leaving the month; it can only be
     * d itself or up to two days away from it. */
    for (unsigned n = d > 2 ? d - 2 : 1; n <= d + 2 && n <= ld && c->dom_w; n++) {
        if (!(c->dom_w >> n & 1U)) continue;
        int wn = ((wd + (int)n - (int)d) % 7 + 7) % 7;
        unsigned target = n;
        if (wn == 6)
            target = n == 1 ? 3 : n - 1;
        else if (wn == 0)
            target = n == ld ? n - 2 : n + 1;
        if (target == d) return true;
    }
    return false;
}

static bool dow_matches(const struct cron *c, unsigned d, unsigned ld, int wd)
{
    uint8_t bit = (uint8_t)(1U << wd);
    if (c->dow & bit) return true;
    if ((c->dow_last & bit) && d + 7 > ld) return true;
    return (c->dow_nth[(d - 1) / 7] & bit) != 0;
}

static bool day_matches(const struct cron *c, int64_t y, unsigned m, unsigned d, int wd)
{
    unsigned ld = month_len(y, m);
    bool a = dom_matches(c, d, ld, wd), b = dow_matches(c, d, ld, wd);
    /* Vixie cron: if either field is unrestricted both must match (the
     * unrestricted one always does); if both are restricted, either will do. */
    return (c->dom_star || c->dow_star) ? (a && b) : (a || b);
}

static int next_bit(uint64_t mask, int from, int max)
{
    for (int i = from; i <= max; i++)
        if (mask >> i & 1U) return i;
    return -1;
}

/* The earliest matching time of day at or after h:mi:s, or false. */
static bool time_from(const struct cron *c, struct civil *t)
{
    for (int h = next_bit(c->hour, t->h, 23); h >= 0; h = next_bit(c->hour, h + 1, 23)) {
        int m0 = h == t->h ? t->mi : 0;
        for (int mi = next_bit(c->min, m0, 59); mi >= 0; mi = next_bit(c->min, mi + 1, 59)) {
            int s0 = (h == t->h && mi == t->mi) ? t->s : 0;
            int s = next_bit(c->sec, s0, 59);
            if (s >= 0) {
                t->h = h;
                t->mi = mi;
                t->s = s;
                return true;
            }
        }
    }
    return false;
}

/* The first civil date-time >= *from matching c, searching SEARCH_DAYS. */
static bool civil_next(const struct cron *c, const struct civil *from, struct civil *out)
{
    int64_t day = clock_days_from_civil(from->y, from->mo, from->d);
    struct civil t = *from;
    for (int64_t i = 0; i < SEARCH_DAYS; i++, day++) {
        clock_civil_from_days(day, &t.y, &t.mo, &t.d);
        if (i > 0) t.h = t.mi = t.s = 0;
        if (!(c->month >> t.mo & 1U)) {
            int64_t skip = month_len(t.y, t.mo) - t.d; /* to the month's last day */
            day += skip;
            i += skip;
            continue;
        }
        if (!day_matches(c, t.y, t.mo, t.d, weekday(day))) continue;
        if (time_from(c, &t)) {
            *out = t;
            return true;
        }
    }
    return false;
}

static void civil_add_second(struct civil *t)
{
    if (++t->s < 60) return;
    t->s = 0;
    if (++t->mi < 60) return;
    t->mi = 0;
    if (++t->h < 24) return;
    t->h = 0;
    int64_t day = clock_days_from_civil(t->y, t->mo, t->d) + 1;
    clock_civil_from_days(day, &t->y, &t->mo, &t->d);
}

static bool civil_eq(const struct civil *a, const struct civil *b)
{
    return a->y == b->y && a->mo == b->mo && a->d == b->d && a->h == b->h && a->mi == b->mi &&
           a->s == b->s;
}

/* ---- zone conversions ---------------------------------------------------- */

/* The local civil time (to the second) of instant ms, and the zone's total
 * offset from UTC then. Offsets change on whole seconds. */
static void local_of(const schedule_t *s, int64_t ms, struct civil *out, int32_t *offset_s)
{
    int64_t secs = floor_div(ms, 1000);
    int32_t off = tz_offset_at(s->zone, secs);
    secs += off;
    int64_t days = floor_div(secs, 86400);
    int64_t sod = secs - days * 86400;
    clock_civil_from_days(days, &out->y, &out->mo, &out->d);
    out->h = (int)(sod / 3600);
    out->mi = (int)(sod / 60 % 60);
    out->s = (int)(sod % 60);
    if (offset_s) *offset_s = off;
}

/* The instant of civil time t: a skipped time maps to the first instant
 * after the gap; a repeated one to its first or last occurrence as `pick`
 * says. */
static int64_t to_utc(const schedule_t *s, const struct civil *t, tz_pick_t pick)
{
    int64_t local =
        clock_days_from_civil(t->y, t->mo, t->d) * 86400 + t->h * 3600 + t->mi * 60 + t->s;
    return tz_local_to_utc(s->zone, local, pick, NULL) * 1000;
}

/* Cron next fire strictly after `after`; *cand gets the civil time it was
 * meant for. */
static int64_t cron_next(const schedule_t *s, int64_t after, struct civil *cand)
{
    struct civil from;
    if (after < MIN_MS) after = MIN_MS - 1;
    if (after >= MAX_MS) return -1;
    /* Start one civil second after the local time of `after` rather than at
     * the local time of after + 1 s: if after + 1 s is the first instant
     * after a gap, a time inside the gap still owes its fire at that instant. */
    local_of(s, after, &from, NULL);
    civil_add_second(&from);
    for (int i = 0; i < MAX_SKIPS; i++) {
        if (!civil_next(&s->cron, &from, cand)) return -1;
        int64_t u = to_utc(s, cand, TZ_FIRST);
        /* Instants only grow with the civil time, so this is the end. */
        if (u >= MAX_MS) return -1;
        if (u > after) return u;
        /* A second run of a repeated time, or a gap time whose instant was
         * already taken by an earlier one: each fires once. */
        from = *cand;
        civil_add_second(&from);
    }
    return -1;
}

static int64_t every_next(const schedule_t *s, int64_t after)
{
    __extension__ typedef __int128 i128;
    i128 d = (i128)after - s->anchor_ms, iv = s->interval_ms;
    i128 k = d >= 0 ? d / iv : -((-d + iv - 1) / iv); /* floor(d / iv) */
    i128 f = (i128)s->anchor_ms + (k + 1) * iv;
    return f > INT64_MAX ? -1 : (int64_t)f;
}

/* Next fire of any kind within the bounds; *cand is set for cron. */
static int64_t next_fire(const schedule_t *s, int64_t after, struct civil *cand)
{
    int64_t r = -1;
    if (s->start_ms != INT64_MIN && after < s->start_ms - 1) after = s->start_ms - 1;
    switch (s->kind) {
    case SCHEDULE_AT:
        r = s->at_ms > after ? s->at_ms : -1;
        break;
    case SCHEDULE_EVERY:
        r = every_next(s, after);
        break;
    case SCHEDULE_CRON:
        r = cron_next(s, after, cand);
        break;
    }
    if (r > s->end_ms || r >= MAX_MS) r = -1;
    return r;
}

int64_t schedule_next(const schedule_t *s, int64_t after_ms)
{
    struct civil cand;
    return next_fire(s, after_ms, &cand);
}

size_t schedule_preview(const schedule_t *s, int64_t after_ms, schedule_fire_t *out, size_t n)
{
    size_t i = 0;
    for (; i < n; i++) {
        struct civil cand, loc;
        int32_t off = 0;
        int64_t u = next_fire(s, after_ms, &cand);
        /* -1 is "none"; other negative values are instants before 1970. */
        if (u == -1) break;
        local_of(s, u, &loc, &off);
        schedule_fire_t *f = &out[i];
        int aoff = abs(off);
        f->utc_ms = u;
        f->utc_offset_s = off;
        snprintf(f->local, sizeof f->local, "%04lld-%02u-%02uT%02d:%02d:%02d%c%02d:%02d",
                 (long long)loc.y, loc.mo, loc.d, loc.h, loc.mi, loc.s, off < 0 ? '-' : '+',
                 aoff / 3600, aoff / 60 % 60);
        f->dst_shifted = false;
        if (s->kind == SCHEDULE_CRON && !tz_is_fixed(s->zone, NULL)) {
            /* Moved by a gap, or the one run of a time the zone repeats. */
            f->dst_shifted =
                !civil_eq(&loc, &cand) || to_utc(s, &cand, TZ_LAST) != to_utc(s, &cand, TZ_FIRST);
        }
        after_ms = u;
    }
    return i;
}

/* ---- compile ------------------------------------------------------------ */

/* Says why a cron expression that parsed, and matches no date in a whole
 * 400-year cycle, never fires. Macros always fire, so expr has 5 or 6
 * fields; day-of-month, month and day-of-week are the last three. */
static void never_fires(const char *expr, char *err, size_t errlen)
{
    char *copy = xstrdup(expr), *tok[6] = {0}, *save = NULL;
    int n = 0;
    for (char *t = strtok_r(copy, " \t\r\n", &save); t && n < 6;
         t = strtok_r(NULL, " \t\r\n", &save))
        tok[n++] = t;
    if (n < 5) {
        seterr(err, errlen, "cron never fires");
    } else {
        const char *dom = tok[n - 3], *mon = tok[n - 2], *dow = tok[n - 1];
        bool months = strpbrk(mon, ",-/*") != NULL;
        if (strcmp(dow, "*") == 0 || strcmp(dow, "?") == 0)
            seterr(err, errlen,
                   "cron never fires: day-of-month '%.40s' does not occur in %s '%.40s'", dom,
                   months ? "months" : "month", mon);
        else
            seterr(err, errlen,
                   "cron never fires: no date matches day-of-month '%.40s', month '%.40s' and "
                   "day-of-week '%.40s'",
                   dom, mon, dow);
    }
    free(copy);
}

int schedule_compile(const schedule_spec_t *spec, schedule_t **out, char *err, size_t errlen)
{
    schedule_t *s = NULL;
    int rc = SKED_EINVAL;
    char dur[32];

    if (out) *out = NULL;
    if (!spec || !out) {
        seterr(err, errlen, "no schedule given");
        goto out;
    }
    s = xcalloc(1, sizeof *s);
    s->kind = spec->kind;
    s->start_ms = spec->start_ms;
    s->end_ms = spec->end_ms;
    if (spec->kind != SCHEDULE_AT && spec->kind != SCHEDULE_EVERY && spec->kind != SCHEDULE_CRON) {
        seterr(err, errlen, "unknown schedule kind %d", (int)spec->kind);
        goto out;
    }
    const char *kind = schedule_kind_name(spec->kind);
    if (!spec->expr || !*spec->expr) {
        seterr(err, errlen, "%s: expression is empty", kind);
        goto out;
    }
    if (spec->start_ms > spec->end_ms) {
        seterr(err, errlen, "%s: start is after end", kind);
        goto out;
    }
    if (spec->jitter_ms < 0) {
        seterr(err, errlen, "%s: jitter must not be negative", kind);
        goto out;
    }
    if ((rc = tz_open(spec->timezone && *spec->timezone ? spec->timezone : "UTC", &s->zone, err,
                      errlen)) < 0)
        goto out;
    rc = SKED_EINVAL;
    switch (spec->kind) {
    case SCHEDULE_AT:
        if (clock_parse_rfc3339(spec->expr, &s->at_ms) < 0) {
            seterr(err, errlen, "at: '%.64s' is not an RFC 3339 time (e.g. 2026-12-24T18:00:00Z)",
                   spec->expr);
            goto out;
        }
        /* Fire times are instants from the epoch on (-1 means "none"
         * everywhere they are stored): an earlier `at` could never fire,
         * nor be recorded as missed. */
        if (s->at_ms < 0) {
            seterr(err, errlen, "at: '%.64s' is before 1970-01-01T00:00:00Z", spec->expr);
            goto out;
        }
        break;
    case SCHEDULE_EVERY:
        if (duration_parse(spec->expr, &s->interval_ms) < 0) {
            seterr(err, errlen, "every: '%.64s' is not a duration (e.g. 90s, 1h30m)", spec->expr);
            goto out;
        }
        if (s->interval_ms < 1000) {
            duration_format(s->interval_ms, dur, sizeof dur);
            seterr(err, errlen, "every: interval %s is shorter than 1s", dur);
            goto out;
        }
        s->anchor_ms = spec->anchor_ms != INT64_MIN  ? spec->anchor_ms
                       : spec->start_ms != INT64_MIN ? spec->start_ms
                                                     : 0;
        break;
    case SCHEDULE_CRON: {
        struct civil cycle_start = {2000, 1, 1, 0, 0, 0}, match;
        if (parse_cron(&s->cron, spec->expr, err, errlen) < 0) goto out;
        if (!civil_next(&s->cron, &cycle_start, &match)) {
            never_fires(spec->expr, err, errlen);
            goto out;
        }
        break;
    }
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    schedule_free(s);
    return rc;
}

void schedule_free(schedule_t *s)
{
    if (!s) return;
    tz_close(s->zone);
    free(s);
}

const char *schedule_kind_name(schedule_kind_t k)
{
    switch (k) {
    case SCHEDULE_AT:
        return "at";
    case SCHEDULE_EVERY:
        return "every";
    case SCHEDULE_CRON:
        return "cron";
    }
    return "unknown";
}

/* Time zones compare as written, except that "" and NULL mean UTC. */
static const char *tz_or_utc(const char *tz)
{
    return tz && *tz ? tz : "UTC";
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

bool schedule_same(const schedule_spec_t *a, const schedule_spec_t *b)
{
    return a->kind == b->kind && !strcmp(nz(a->expr), nz(b->expr)) &&
           !strcmp(tz_or_utc(a->timezone), tz_or_utc(b->timezone)) && a->start_ms == b->start_ms &&
           a->end_ms == b->end_ms && a->anchor_ms == b->anchor_ms;
}

void schedule_match(const schedule_spec_t *want, size_t n, const schedule_spec_t *have,
                    size_t nhave, size_t *match)
{
    bool *used = xcalloc(nhave ? nhave : 1, sizeof *used);
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < nhave && (used[j] || !schedule_same(&want[i], &have[j])))
            j++;
        if (j < nhave) used[j] = true;
        match[i] = j < nhave ? j : SIZE_MAX;
    }
    free(used);
}
