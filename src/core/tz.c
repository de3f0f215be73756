/*
 * Time zones from the system's TZif files (RFC 8536); see tz.h. Three parts:
 *
 *  - the parser, which checks every count, index and offset before anything
 *    is built (a zone file is input like any other: tests/fuzz/fuzz_cron.c
 *    feeds it garbage) and keeps only what fire times need: the instants
 *    where the UTC offset changes, and the footer rule for after them;
 *  - the two lookups, instant -> offset (a binary search in the table, the
 *    POSIX rule beyond it) and local time -> instant (the offsets any
 *    solution can have bound it to a window of at most ~51 h; walking the
 *    offset changes in that window finds every occurrence, or the gap);
 *  - a process-wide cache by file path, so a zone is parsed once and shared
 *    by every schedule in it. It re-stats its files at most every
 *    TZ_RECHECK_MS and drops the ones that changed, bumping a generation
 *    counter that holders of compiled schedules watch. Zones themselves are
 *    immutable and reference-counted; only the cache has a mutex, and no
 *    lookup touches it.
 *
 * The cache reads the monotonic clock to pace its stat calls. That is the
 * one clock read in src/core, and it decides only when a changed file is
 * noticed, never what a fire time is.
 */
#include "core/tz.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_TZDIR "/usr/share/zoneinfo"
#define NAME_MAX_LEN  100
#define FILE_MAX      (1 << 20) /* the largest zone file today is ~4 KiB */
#define FOOTER_MAX    256
#define HEADER_LEN    44
/* RFC 8536: offsets SHOULD lie in [-24:59:59, +25:59:59]; we insist, which
 * keeps every sum below far from overflow. */
#define OFF_MIN (-89999)
#define OFF_MAX 93599
/* Footer rule times may run from -167 h to 167 h (version 3). */
#define RULE_HOURS_MAX 167
/* Instants beyond +-2^55 s (a billion years) are clamped: the rule
 * arithmetic stays exact, and nobody schedules that far. */
#define T_LIMIT ((int64_t)1 << 55)
#define BUCKETS 256
/* The footer rule is unrolled into the table up to this year, so slim files
 * (and fat ones after 2037) answer with a binary search too; the rule
 * itself is only computed beyond it. Real files hand over to their rule
 * after 1916 (the first DST); one that claims to do so before
 * UNROLL_FROM_YEAR keeps its rule as it is rather than make us unroll
 * millions of years. */
#define UNROLL_UNTIL_YEAR 2100
#define UNROLL_FROM_YEAR  1800

/* One end of the footer rule's DST period. */
struct rule_date {
    char kind;      /* 'J': day 1-365, Feb 29 never counted; 'D': day 0-365; 'M': m.w.d */
    int n;          /* J and D: the day */
    int m, w, d;    /* M: month 1-12, week 1-5 (5 = last), weekday 0-6 (0 = Sunday) */
    int32_t time_s; /* local time of day of the change, may be < 0 or > 24 h */
};

/* A POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3". */
struct rule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    struct rule_date start; /* into DST, in standard local time */
    struct rule_date end;   /* out of DST, in daylight local time */
};

struct tz {
    atomic_int refs;
    bool builtin;      /* the static UTC zone: never freed */
    char *name;        /* as opened */
    size_t n;          /* offset changes in the table */
    int64_t *at;       /* [n] their instants, strictly ascending */
    int32_t *off;      /* [n] the offset from at[i] on */
    int32_t off0;      /* the offset before at[0] (local time type 0) */
    bool has_rule;     /* the footer rule governs instants >= rule_from */
    int64_t rule_from; /* the file's last transition; INT64_MIN if none */
    struct rule rule;  /* the footer, when has_rule */
    int32_t min_off;   /* the smallest offset the zone ever has */
    int32_t max_off;   /* the largest */
    bool fixed;        /* one offset for all time: fixed_off */
    int32_t fixed_off;
};

static tz_t utc_zone = {.builtin = true, .name = (char *)"UTC", .fixed = true};

static int64_t clamp_t(int64_t t)
{
    return t > T_LIMIT ? T_LIMIT : t < -T_LIMIT ? -T_LIMIT : t;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    unsigned m, d;
    clock_civil_from_days(t / 86400 - (t % 86400 < 0), &y, &m, &d);
    return y;
}

/* ---- the footer rule ------------------------------------------------------ */

/* Days since 1970-01-01 of the rule date in year y. */
static int64_t rule_day(const struct rule_date *r, int64_t y)
{
    static const unsigned len[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t jan1 = clock_days_from_civil(y, 1, 1);
    if (r->kind == 'J') return jan1 + r->n - 1 + (is_leap(y) && r->n >= 60);
    if (r->kind == 'D') return jan1 + r->n;
    int64_t first = clock_days_from_civil(y, (unsigned)r->m, 1);
    int wd = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    int64_t day = first + (r->d - wd + 7) % 7 + 7 * (r->w - 1);
    int64_t mlen = len[r->m - 1] + (r->m == 2 && is_leap(y));
    while (day >= first + mlen) /* week 5: the last such weekday */
        day -= 7;
    return day;
}

/* The instants at which year y's DST starts and ends. */
static void rule_year(const struct rule *r, int64_t y, int64_t *start, int64_t *end)
{
    *start = rule_day(&r->start, y) * 86400 + r->start.time_s - r->std_off;
    *end = rule_day(&r->end, y) * 86400 + r->end.time_s - r->dst_off;
}

/* The offset the rule gives at t: DST iff the latest start or end at or
 * before t is a start. Each year's changes lie within about eight days of
 * its calendar (rule times reach +-167 h, offsets +-26 h), so the years
 * around t's hold the answer. At equal instants a start wins, so a rule
 * whose DST ends where next year's begins ("EST5EDT,0/0,J365/25") is DST
 * all year. */
static int32_t rule_off(const struct rule *r, int64_t t)
{
    if (!r->has_dst) return r->std_off;
    int64_t y = year_of(t), best = INT64_MIN;
    bool dst = false;
    for (int64_t k = y - 2; k <= y + 1; k++) {
        int64_t s, e;
        rule_year(r, k, &s, &e);
        if (e <= t && e > best) {
            best = e;
            dst = false;
        }
        if (s <= t && s >= best) {
            best = s;
            dst = true;
        }
    }
    return dst ? r->dst_off : r->std_off;
}

/* ---- lookups -------------------------------------------------------------- */

/* The index of the first table entry after t. */
static size_t upper_bound(const tz_t *z, int64_t t)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int32_t tz_offset_at(const tz_t *z, int64_t t)
{
    if (z->fixed) return z->fixed_off;
    t = clamp_t(t);
    if (z->has_rule && t >= z->rule_from) return rule_off(&z->rule, t);
    size_t i = upper_bound(z, t);
    return i ? z->off[i - 1] : z->off0;
}

/* The first instant c in (t, hi] where the offset changes (offset_at(c) !=
 * offset_at(c - 1)), or INT64_MAX. hi - t must be below a few days. */
static int64_t next_change(const tz_t *z, int64_t t, int64_t hi)
{
    if (!z->has_rule || t < z->rule_from) {
        size_t i = upper_bound(z, t);
        int64_t c = i < z->n ? z->at[i] : INT64_MAX;
        if (!z->has_rule || c < z->rule_from) return c <= hi ? c : INT64_MAX;
        /* The table hands over to the rule at rule_from, which may or may
         * not change the offset there. */
        c = z->rule_from;
        if (c > hi) return INT64_MAX;
        if (tz_offset_at(z, c) != tz_offset_at(z, c - 1)) return c;
        t = c;
    }
    if (!z->rule.has_dst) return INT64_MAX;
    int64_t y = year_of(t), best = INT64_MAX;
    for (int64_t k = y - 1; k <= y + 1; k++) {
        int64_t c[2];
        rule_year(&z->rule, k, &c[0], &c[1]);
        for (int j = 0; j < 2; j++)
            if (c[j] > t && c[j] <= hi && c[j] < best &&
                tz_offset_at(z, c[j]) != tz_offset_at(z, c[j] - 1))
                best = c[j];
    }
    return best;
}

/* Every instant t with t + offset_at(t) == local lies in [local - max_off,
 * local - min_off]. Walking that window segment by segment (a segment being
 * a stretch of one offset o) finds each solution (local - o, if it falls in
 * its segment) in order, and when there is none, the change the local time
 * fell through: before it local - o was already past the segment's end,
 * after it local - o2 is before the new segment's start. */
int64_t tz_local_to_utc(const tz_t *z, int64_t local_s, tz_pick_t pick, bool *skipped)
{
    if (skipped) *skipped = false;
    local_s = clamp_t(local_s);
    if (z->fixed) return local_s - z->fixed_off;
    int64_t t = local_s - z->max_off, hi = local_s - z->min_off;
    int64_t first = 0, last = 0, gap = 0;
    bool found = false, in_gap = false;
    int32_t o = tz_offset_at(z, t);
    for (;;) {
        int64_t c = next_change(z, t, hi);
        int64_t cand = local_s - o;
        if (cand >= t && cand < c) {
            if (!found) first = cand;
            last = cand;
            found = true;
        }
        if (c == INT64_MAX) break;
        int32_t o2 = tz_offset_at(z, c);
        if (!in_gap && cand >= c && local_s - o2 < c) {
            gap = c;
            in_gap = true;
        }
        t = c;
        o = o2;
    }
    if (found) return pick == TZ_LAST ? last : first;
    if (skipped) *skipped = true;
    /* Without a solution the offset must have jumped over local_s inside
     * the window; the fallback only keeps the function total. */
    return in_gap ? gap : local_s - o;
}

bool tz_is_fixed(const tz_t *z, int32_t *off_s)
{
    if (z->fixed && off_s) *off_s = z->fixed_off;
    return z->fixed;
}

const char *tz_name(const tz_t *z)
{
    return z->name;
}

tz_t *tz_ref(tz_t *z)
{
    if (z && !z->builtin) atomic_fetch_add(&z->refs, 1);
    return z;
}

void tz_close(tz_t *z)
{
    if (!z || z->builtin) return;
    if (atomic_fetch_sub(&z->refs, 1) != 1) return;
    free(z->name);
    free(z->at);
    free(z->off);
    free(z);
}

/* ---- the POSIX TZ footer -------------------------------------------------- */

/* An abbreviation: three or more letters, or anything of [A-Za-z0-9+-] in
 * angle brackets ("<+0330>"). Only its extent matters here. */
static bool tzs_name(const char **s)
{
    const char *p = *s, *b;
    if (*p == '<') {
        b = ++p;
        while (isalnum((unsigned char)*p) || *p == '+' || *p == '-')
            p++;
        if (*p != '>' || p == b) return false;
        *s = p + 1;
        return true;
    }
    b = p;
    while (isalpha((unsigned char)*p))
        p++;
    if (p - b < 3) return false;
    *s = p;
    return true;
}

static bool tzs_num(const char **s, int maxdigits, int max, int *out)
{
    const char *p = *s;
    int v = 0, nd = 0;
    while (isdigit((unsigned char)*p) && nd < maxdigits) {
        v = v * 10 + (*p++ - '0');
        nd++;
    }
    if (nd == 0 || isdigit((unsigned char)*p) || v > max) return false;
    *out = v;
    *s = p;
    return true;
}

/* [+-]hh[:mm[:ss]], hours up to max_h. */
static bool tzs_hms(const char **s, int max_h, int32_t *out)
{
    const char *p = *s;
    int sign = 1, h = 0, m = 0, sec = 0;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (!tzs_num(&p, 3, max_h, &h)) return false;
    if (*p == ':') {
        p++;
        if (!tzs_num(&p, 2, 59, &m)) return false;
        if (*p == ':') {
            p++;
            if (!tzs_num(&p, 2, 59, &sec)) return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    *s = p;
    return true;
}

/* A POSIX offset is west-positive; ours are east-positive. */
static bool tzs_offset(const char **s, int32_t *off)
{
    int32_t v;
    if (!tzs_hms(s, 24, &v)) return false;
    *off = -v;
    return *off >= OFF_MIN && *off <= OFF_MAX;
}

/* Jn, n or Mm.w.d, then an optional /time (default 02:00). */
static bool tzs_date(const char **s, struct rule_date *r)
{
    const char *p = *s;
    memset(r, 0, sizeof *r);
    if (*p == 'J') {
        p++;
        r->kind = 'J';
        if (!tzs_num(&p, 3, 365, &r->n) || r->n < 1) return false;
    } else if (*p == 'M') {
        p++;
        r->kind = 'M';
        if (!tzs_num(&p, 2, 12, &r->m) || r->m < 1 || *p++ != '.') return false;
        if (!tzs_num(&p, 1, 5, &r->w) || r->w < 1 || *p++ != '.') return false;
        if (!tzs_num(&p, 1, 6, &r->d)) return false;
    } else {
        r->kind = 'D';
        if (!tzs_num(&p, 3, 365, &r->n)) return false;
    }
    r->time_s = 7200;
    if (*p == '/' && (p++, !tzs_hms(&p, RULE_HOURS_MAX, &r->time_s))) return false;
    *s = p;
    return true;
}

static bool parse_rule(const char *s, struct rule *r)
{
    memset(r, 0, sizeof *r);
    if (!tzs_name(&s) || !tzs_offset(&s, &r->std_off)) return false;
    r->dst_off = r->std_off;
    if (*s == '\0') return true;
    if (!tzs_name(&s)) return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',' && !tzs_offset(&s, &r->dst_off)) return false;
    if (r->dst_off < OFF_MIN || r->dst_off > OFF_MAX) return false;
    if (*s == '\0') { /* no rule given: POSIX leaves it open; glibc's US one */
        s = "M3.2.0,M11.1.0";
    } else if (*s++ != ',') {
        return false;
    }
    if (!tzs_date(&s, &r->start) || *s++ != ',' || !tzs_date(&s, &r->end)) return false;
    return *s == '\0';
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Appends the rule's offset changes from rule_from up to UNROLL_UNTIL_YEAR
 * to the table and moves rule_from there. Offsets come from rule_off()
 * itself, so the table says exactly what the rule would: between two
 * consecutive starts or ends the rule's answer cannot change. A zone with
 * no transitions at all keeps its rule for all time (the table cannot
 * start at minus infinity), and so does one whose table ends before
 * UNROLL_FROM_YEAR. */
static void unroll_rule(tz_t *z)
{
    int64_t cut = clock_days_from_civil(UNROLL_UNTIL_YEAR, 1, 1) * 86400;
    int64_t from = clock_days_from_civil(UNROLL_FROM_YEAR, 1, 1) * 86400;
    if (!z->has_rule || !z->rule.has_dst || z->rule_from < from || z->rule_from >= cut) return;
    int64_t y0 = year_of(z->rule_from), nev = 0;
    int64_t *ev = xcalloc((size_t)(UNROLL_UNTIL_YEAR - y0 + 3) * 2, sizeof *ev);
    for (int64_t k = y0 - 1; k <= UNROLL_UNTIL_YEAR; k++) {
        int64_t c[2];
        rule_year(&z->rule, k, &c[0], &c[1]);
        for (int j = 0; j < 2; j++)
            if (c[j] > z->rule_from && c[j] < cut) ev[nev++] = c[j];
    }
    qsort(ev, (size_t)nev, sizeof *ev, cmp_i64);
    z->at = xrealloc(z->at, (z->n + (size_t)nev + 1) * sizeof *z->at);
    z->off = xrealloc(z->off, (z->n + (size_t)nev + 1) * sizeof *z->off);
    int32_t cur = z->n ? z->off[z->n - 1] : z->off0;
    for (int64_t i = -1; i < nev; i++) {
        int64_t c = i < 0 ? z->rule_from : ev[i]; /* the handover first */
        int32_t o = rule_off(&z->rule, c);
        if (o == cur) continue;
        z->at[z->n] = c;
        z->off[z->n++] = cur = o;
    }
    z->rule_from = cut;
    free(ev);
}

/* ---- the TZif parser ------------------------------------------------------ */

struct header {
    char version; /* 0, or '2' and up */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

static bool read_header(const uint8_t *p, size_t len, size_t pos, struct header *h)
{
    if (len < pos || len - pos < HEADER_LEN || memcmp(p + pos, "TZif", 4) != 0) return false;
    p += pos;
    h->version = (char)p[4];
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    return true;
}

/* The size of a data block whose times take tsize bytes. The counts are
 * 32-bit, so with a 64-bit size_t nothing here overflows. */
static size_t block_len(const struct header *h, size_t tsize)
{
    return (size_t)h->timecnt * tsize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Parses the file image into z's table and rule. Returns NULL, or on
 * failure the reason. */
static const char *parse_tzif(tz_t *z, const uint8_t *p, size_t len)
{
    struct header h;
    size_t pos = HEADER_LEN, tsize = 4;
    int32_t *type_off = NULL;
    const char *why = NULL;

    if (!read_header(p, len, 0, &h)) {
        return "no TZif header";
    }
    /* Versions 2, 3 and 4 only extend what version 2 laid out; later ones
     * are promised to do the same (RFC 9636), so a tzdata update that bumps
     * the version does not take every zone away. */
    if (h.version != 0 && (h.version < '2' || h.version > '9')) {
        return "unknown TZif version";
    }
    if (h.version != 0) { /* skip the 32-bit block; the 64-bit one follows */
        size_t skip = block_len(&h, 4);
        if (len - pos < skip || !read_header(p, len, pos + skip, &h) || h.version < '2') {
            return "truncated or missing 64-bit header";
        }
        pos += skip + HEADER_LEN;
        tsize = 8;
    }
    if (h.typecnt == 0 || h.typecnt > 256 || h.charcnt == 0 ||
        (h.isutcnt && h.isutcnt != h.typecnt) || (h.isstdcnt && h.isstdcnt != h.typecnt)) {
        return "inconsistent counts in the header";
    }
    if (h.leapcnt) {
        return "it counts leap seconds (a 'right/' zone), which sked does not";
    }
    size_t need = block_len(&h, tsize);
    if (len - pos < need) {
        return "truncated data block";
    }
    const uint8_t *times = p + pos, *idx = times + (size_t)h.timecnt * tsize;
    const uint8_t *types = idx + h.timecnt, *ind = types + (size_t)h.typecnt * 6 + h.charcnt;

    type_off = xcalloc(h.typecnt, sizeof *type_off);
    for (uint32_t i = 0; i < h.typecnt; i++) {
        const uint8_t *t = types + (size_t)i * 6;
        int32_t off = (int32_t)be32(t);
        if (off < OFF_MIN || off > OFF_MAX || t[4] > 1 || t[5] >= h.charcnt) {
            why = "a local time type is invalid";
            goto out;
        }
        type_off[i] = off;
    }
    for (uint32_t i = 0; i < h.isstdcnt + h.isutcnt; i++) {
        if (ind[i] > 1) {
            why = "standard/UT indicators must be 0 or 1";
            goto out;
        }
    }
    z->off0 = type_off[0];
    z->at = xcalloc(h.timecnt ? h.timecnt : 1, sizeof *z->at);
    z->off = xcalloc(h.timecnt ? h.timecnt : 1, sizeof *z->off);
    z->rule_from = INT64_MIN;
    int32_t cur = z->off0;
    for (uint32_t i = 0; i < h.timecnt; i++) {
        int64_t t = tsize == 8 ? be64(times + (size_t)i * 8) : (int32_t)be32(times + (size_t)i * 4);
        if (i && t <= z->rule_from) {
            why = "transition times are not ascending";
            goto out;
        }
        if (idx[i] >= h.typecnt) {
            why = "a transition names a missing local time type";
            goto out;
        }
        z->rule_from = t;
        /* Only changes of offset matter here (not of abbreviation or isdst). */
        if (type_off[idx[i]] != cur) {
            cur = type_off[idx[i]];
            z->at[z->n] = t;
            z->off[z->n++] = cur;
        }
    }
    pos += need;

    if (h.version != 0) { /* "\n" TZ-string "\n" ends the file */
        const uint8_t *nl =
            pos < len && p[pos] == '\n' ? memchr(p + pos + 1, '\n', len - pos - 1) : NULL;
        size_t flen = nl ? (size_t)(nl - (p + pos + 1)) : 0;
        if (!nl || nl + 1 != p + len || flen > FOOTER_MAX) {
            why = "missing or malformed footer";
            goto out;
        }
        if (flen) {
            char footer[FOOTER_MAX + 1];
            memcpy(footer, p + pos + 1, flen);
            footer[flen] = '\0';
            if (memchr(footer, '\0', flen) || !parse_rule(footer, &z->rule)) {
                why = "the footer is not a POSIX TZ string";
                goto out;
            }
            z->has_rule = true;
        }
    } else if (pos != len) {
        why = "trailing bytes after the data";
        goto out;
    }

    /* The bounds of every offset the zone can have, for tz_local_to_utc. */
    z->min_off = z->max_off = z->off0;
    for (uint32_t i = 0; i < h.typecnt; i++) {
        if (type_off[i] < z->min_off) z->min_off = type_off[i];
        if (type_off[i] > z->max_off) z->max_off = type_off[i];
    }
    if (z->has_rule) {
        int32_t a = z->rule.std_off, b = z->rule.dst_off;
        z->min_off = a < z->min_off ? a : z->min_off;
        z->min_off = b < z->min_off ? b : z->min_off;
        z->max_off = a > z->max_off ? a : z->max_off;
        z->max_off = b > z->max_off ? b : z->max_off;
    }
    unroll_rule(z);
    if (!z->has_rule) {
        z->fixed = z->n == 0;
        z->fixed_off = z->off0;
    } else if (!z->rule.has_dst) {
        bool all_rule = z->rule_from == INT64_MIN; /* no transitions: the rule is all */
        z->fixed = all_rule || (z->n == 0 && z->rule.std_off == z->off0);
        z->fixed_off = z->rule.std_off;
    }
out:
    free(type_off);
    return why;
}

int tz_load_mem(const char *name, const void *data, size_t len, tz_t **out, char *err,
                size_t errlen)
{
    tz_t *z = xcalloc(1, sizeof *z);
    atomic_init(&z->refs, 1);
    z->name = xstrdup(name ? name : "");
    const char *why = data ? parse_tzif(z, data, len) : "no data";
    if (why) {
        if (err && errlen)
            snprintf(err, errlen, "time zone '%.100s': not a valid zone file: %s", z->name, why);
        tz_close(z);
        *out = NULL;
        return SKED_EINVAL;
    }
    *out = z;
    return 0;
}

/* ---- opening by name, and the cache ---------------------------------------- */

struct entry {
    struct entry *next;
    char *path;
    tz_t *zone; /* the cache's reference */
    bool stale; /* the file changed since zone was read: reload on next open */
    dev_t dev;  /* the file as last seen; a change to any of these is a change */
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

static struct {
    pthread_mutex_t mu;
    struct entry *bucket[BUCKETS];
} cache = {.mu = PTHREAD_MUTEX_INITIALIZER};
static atomic_uint_fast64_t generation;
static atomic_int_fast64_t next_check_ns;                                 /* monotonic */
static atomic_int_fast64_t recheck_ns = (int64_t)TZ_RECHECK_MS * 1000000; /* pacing */

static size_t bucket_of(const char *path)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % BUCKETS;
}

static bool same_file(const struct entry *e, const struct stat *st)
{
    return e->dev == st->st_dev && e->ino == st->st_ino && e->size == st->st_size &&
           e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static void seen_file(struct entry *e, const struct stat *st)
{
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->size = st->st_size;
    e->mtime = st->st_mtim;
}

static struct entry *find_locked(size_t b, const char *path)
{
    struct entry *e = cache.bucket[b];
    while (e && strcmp(e->path, path))
        e = e->next;
    return e;
}

static void drop_locked(size_t b, const char *path)
{
    for (struct entry **pe = &cache.bucket[b]; *pe; pe = &(*pe)->next) {
        struct entry *e = *pe;
        if (strcmp(e->path, path)) continue;
        *pe = e->next;
        tz_close(e->zone);
        free(e->path);
        free(e);
        return;
    }
}

/* Marks stale every cached zone whose file changed, and drops those whose
 * file is gone; either bumps the generation. A changed zone is not dropped
 * at once: if its new file cannot be read, the last good one keeps serving
 * (see tz_open), so a half-finished update never stops a schedule. Caller
 * holds cache.mu. A dropped zone still used by a schedule lives on until
 * that releases it. */
static void recheck_locked(int64_t now)
{
    bool changed = false;
    for (size_t b = 0; b < BUCKETS; b++) {
        for (struct entry *e = cache.bucket[b], *next; e; e = next) {
            struct stat st;
            next = e->next;
            if (stat(e->path, &st) == 0) {
                if (same_file(e, &st)) continue;
                seen_file(e, &st);
                e->stale = true;
            } else if (errno == ENOENT || errno == ENOTDIR) {
                drop_locked(b, e->path);
            } else {
                continue; /* cannot tell now; look again next time */
            }
            changed = true;
        }
    }
    if (changed) atomic_fetch_add(&generation, 1);
    atomic_store(&next_check_ns, now + atomic_load(&recheck_ns));
}

static void maybe_recheck(void)
{
    int64_t now = clock_mono_ns();
    if (now < atomic_load(&next_check_ns)) return;
    pthread_mutex_lock(&cache.mu);
    if (now >= atomic_load(&next_check_ns)) recheck_locked(now);
    pthread_mutex_unlock(&cache.mu);
}

uint64_t tz_generation(void)
{
    maybe_recheck();
    return atomic_load(&generation);
}

void tz_set_recheck_ms(int64_t ms)
{
    atomic_store(&recheck_ns, (ms < 0 ? (int64_t)TZ_RECHECK_MS : ms) * 1000000);
    atomic_store(&next_check_ns, 0);
}

/* A zone name as the files spell it: components of [A-Za-z0-9_+-], which
 * keeps '.' (and so "..") out, separated by single slashes. */
static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN || name[0] == '/' || name[n - 1] == '/') return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!(isalnum((unsigned char)c) || c == '/' || c == '_' || c == '-' || c == '+'))
            return false;
        if (c == '/' && name[i + 1] == '/') return false;
    }
    /* The host's own setting (a link to /etc/localtime), not a zone: two
     * servers could read one schedule two ways. */
    return strcmp(name, "localtime") != 0;
}

static int unknown(const char *name, char *err, size_t errlen)
{
    if (err && errlen) snprintf(err, errlen, "unknown time zone '%.100s'", name);
    return SKED_EINVAL;
}

static bool utc_alias(const char *name)
{
    return !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC") || !strcmp(name, "GMT") ||
           !strcmp(name, "Etc/GMT");
}

/* Reads the regular file at path (at most FILE_MAX bytes) into a new
 * buffer, with its stat. Returns 0, or -errno (-EFBIG when too large,
 * -ENOENT when not a regular file). */
static int read_file(const char *path, uint8_t **out, size_t *len, struct stat *st)
{
    uint8_t *buf = NULL;
    size_t got = 0;
    int rc = 0;
    /* O_NONBLOCK: a FIFO planted in the zone directory must not hang us. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return -errno;
    if (fstat(fd, st) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st->st_mode)) {
        rc = -ENOENT;
        goto out;
    }
    if (st->st_size > FILE_MAX) {
        rc = -EFBIG;
        goto out;
    }
    buf = xmalloc((size_t)st->st_size + 1);
    while (got <= (size_t)st->st_size) { /* one byte more: notice a file that grew */
        ssize_t r = read(fd, buf + got, (size_t)st->st_size + 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got != (size_t)st->st_size) rc = -EAGAIN; /* changed under us; the caller may retry */
out:
    close(fd);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = got;
    return 0;
}

/* Loads path as zone name. Returns 0 and *out (new) with *st; or with the
 * message written SKED_ENOTFOUND when there is no such zone file,
 * SKED_EIO when it could not be read just now (out of descriptors, an I/O
 * error: worth trying again), or SKED_EINVAL when it is not a zone file. */
static int load_path(const char *name, const char *path, tz_t **out, struct stat *st, char *err,
                     size_t errlen)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = -EAGAIN;
    for (int tries = 0; rc == -EAGAIN && tries < 3; tries++)
        rc = read_file(path, &buf, &len, st);
    if (rc == -ENOENT || rc == -ENOTDIR || rc == -ENAMETOOLONG || rc == -ELOOP) {
        unknown(name, err, errlen);
        return SKED_ENOTFOUND;
    }
    if (rc < 0) {
        if (err && errlen)
            snprintf(err, errlen, "time zone '%s': cannot read %.200s: %s", name, path,
                     rc == -EFBIG ? "too large for a zone file" : strerror(-rc));
        return rc == -EFBIG ? SKED_EINVAL : SKED_EIO;
    }
    rc = tz_load_mem(name, buf, len, out, err, errlen);
    free(buf);
    return rc;
}

int tz_open(const char *name, tz_t **out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct stat st;
    tz_t *z = NULL, *last_good = NULL;
    *out = NULL;
    if (!name || !name_ok(name)) return unknown(name ? name : "", err, errlen);
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir) dir = DEFAULT_TZDIR;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return unknown(name, err, errlen);

    maybe_recheck();
    size_t b = bucket_of(path);
    pthread_mutex_lock(&cache.mu);
    struct entry *e = find_locked(b, path);
    if (e) {
        if (!e->stale)
            z = tz_ref(e->zone);
        else
            last_good = tz_ref(e->zone);
    }
    pthread_mutex_unlock(&cache.mu);
    if (z) goto done;

    /* Read and parse outside the lock; two threads loading one zone at
     * once both parse, and the second to finish adopts the first's. */
    int rc = load_path(name, path, &z, &st, err, errlen);
    if (rc < 0 && last_good && rc != SKED_ENOTFOUND) {
        z = last_good; /* a changed file that does not load: keep the old one */
        goto done;
    }
    tz_close(last_good);
    if (rc < 0) {
        if (rc == SKED_ENOTFOUND) {
            pthread_mutex_lock(&cache.mu);
            drop_locked(b, path);
            pthread_mutex_unlock(&cache.mu);
        }
        /* UTC must work on a host without zone files (a slim container). */
        if (utc_alias(name) && access(path, F_OK) != 0) {
            *out = &utc_zone;
            return 0;
        }
        return rc == SKED_EIO ? SKED_EIO : SKED_EINVAL;
    }
    pthread_mutex_lock(&cache.mu);
    e = find_locked(b, path);
    if (e && !e->stale) {
        tz_close(z);
        z = tz_ref(e->zone);
    } else {
        if (!e) {
            e = xcalloc(1, sizeof *e);
            e->path = xstrdup(path);
            e->next = cache.bucket[b];
            cache.bucket[b] = e;
        }
        tz_close(e->zone);
        e->zone = tz_ref(z);
        e->stale = false;
        seen_file(e, &st);
    }
    pthread_mutex_unlock(&cache.mu);
done:
    *out = z;
    return 0;
}
