/*
 * Durations as people write them ("90s", "1h30m", "250ms", "2d", "1w") and
 * their one canonical spelling. Used for job timeouts, retry delays,
 * intervals of `every` schedules, jitter and the worker protocol's lease
 * times. The grammar is deliberately strict (components in descending unit
 * order, each unit at most once, no signs, no spaces, no fractions) so that
 * every accepted string has one meaning and a canonical form that parses
 * back to the same value. Pure: no clock, no allocation.
 */
#include "core/duration.h"
#include "common/error.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Units from largest to smallest; the index is the rank used to enforce the
 * descending order of components. */
static const struct unit {
    const char *name;
    int64_t ms;
} units[] = {
    {"w", (int64_t)7 * 86400 * 1000},
    {"d", (int64_t)86400 * 1000},
    {"h", (int64_t)3600 * 1000},
    {"m", (int64_t)60 * 1000},
    {"s", 1000},
    {"ms", 1},
};
#define NUNITS (sizeof units / sizeof units[0])

/* Recognises the unit at *p; returns its index or -1. "ms" must be tried
 * before "m" so that "250ms" is not read as 250 minutes followed by junk. */
static int unit_at(const char *p, size_t *len)
{
    if (p[0] == 'm' && p[1] == 's') {
        *len = 2;
        return 5;
    }
    for (size_t i = 0; i < NUNITS; i++) {
        if (units[i].name[1] == '\0' && p[0] == units[i].name[0]) {
            *len = 1;
            return (int)i;
        }
    }
    return -1;
}

int duration_parse(const char *s, int64_t *out_ms)
{
    if (!s || !*s) return SKED_EINVAL;
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    const char *p = s;
    int64_t total = 0;
    int last_rank = -1; /* index into units of the previous component */
    while (*p) {
        if (*p < '0' || *p > '9') return SKED_EINVAL;
        /* Accumulate with an early cut-off: anything above the maximum is
         * rejected anyway, so stopping there also keeps the arithmetic far
         * from int64 overflow whatever the number of digits. */
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            n = n * 10 + (*p - '0');
            if (n > DURATION_MAX_MS) return SKED_EINVAL;
            p++;
        }
        size_t ulen = 0;
        int u = unit_at(p, &ulen);
        if (u < 0) return SKED_EINVAL;
        if (u <= last_rank) return SKED_EINVAL; /* repeated or out of order */
        last_rank = u;
        if (n > (DURATION_MAX_MS - total) / units[u].ms) return SKED_EINVAL;
        total += n * units[u].ms;
        p += ulen;
    }
    *out_ms = total;
    return 0;
}

void duration_format(int64_t ms, char *out, size_t outlen)
{
    if (!out || outlen == 0) return;
    out[0] = '\0';
    if (ms == 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    /* Negative durations are never valid input, but formatting one should
     * still say what it is rather than print garbage; unsigned arithmetic
     * keeps INT64_MIN safe. */
    uint64_t rest = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    size_t used = 0;
    if (ms < 0) {
        int n = snprintf(out, outlen, "-");
        used = (size_t)n < outlen ? (size_t)n : outlen - 1;
    }
    for (size_t i = 0; i < NUNITS && rest > 0; i++) {
        uint64_t q = rest / (uint64_t)units[i].ms;
        if (q == 0) continue;
        rest -= q * (uint64_t)units[i].ms;
        int n = snprintf(out + used, outlen - used, "%llu%s", (unsigned long long)q, units[i].name);
        if (n < 0 || (size_t)n >= outlen - used) return; /* truncated; out stays terminated */
        used += (size_t)n;
    }
}
