/*
 * Prometheus primitives: counters and fixed-bucket histograms that any
 * layer may update from any thread with atomics alone (no lock, no
 * allocation: a hot path pays a relaxed atomic add or two), and a writer
 * of the text exposition format, version 0.0.4, that renders them. The
 * store records its commits here; the server keeps its own figures and
 * renders GET /metrics (server/metrics.c).
 *
 * Names follow Prometheus' conventions: base units (seconds, bytes),
 * `_total` on counters, the unit as the name's suffix, a HELP and a TYPE
 * line before every family. The writer does not check names; it escapes
 * HELP text and label values as the format requires.
 *
 * Reading a histogram while others record into it is safe but not a
 * snapshot: the rendered buckets are cumulative and consistent among
 * themselves (the count is their total), while the sum may lag or lead by
 * the observations in flight.
 */
#ifndef SKED_COMMON_PROM_H
#define SKED_COMMON_PROM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* ---- counters ---------------------------------------------------------- */

typedef struct prom_counter {
    _Atomic uint64_t v;
} prom_counter_t;

#define PROM_COUNTER_INIT                                                                          \
    {                                                                                              \
        0                                                                                          \
    }

static inline void prom_add(prom_counter_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

static inline void prom_inc(prom_counter_t *c)
{
    prom_add(c, 1);
}

static inline uint64_t prom_get(const prom_counter_t *c)
{
    return atomic_load_explicit(&c->v, memory_order_relaxed);
}

/* ---- histograms -------------------------------------------------------- */

#define PROM_BUCKETS_MAX 24

/* A histogram over integer observations in a unit of the caller's choice
 * (nanoseconds, milliseconds, a count), rendered in the base unit: each
 * value divided by `per` (1e9 renders nanoseconds as seconds; a division,
 * so 5 ms reads "0.005", as written, not a product's rounding). bounds are the
 * buckets' upper bounds ("le", inclusive) in the observed unit, ascending,
 * at most PROM_BUCKETS_MAX; +Inf is implied. Define one with
 * PROM_HIST_INIT over a static array of bounds. */
typedef struct prom_hist {
    const int64_t *bounds; /* borrowed, static */
    int nbounds;
    double per;                                    /* observed units per base unit */
    _Atomic uint64_t counts[PROM_BUCKETS_MAX + 1]; /* per bucket, not cumulative; last: +Inf */
    _Atomic int64_t sum;                           /* of the observations, observed unit */
} prom_hist_t;

#define PROM_HIST_INIT(bounds_array, units_per_base)                                               \
    {                                                                                              \
        (bounds_array), (int)(sizeof(bounds_array) / sizeof *(bounds_array)), (units_per_base),    \
            {0}, 0                                                                                 \
    }

/* Records one observation (negative values count as 0). Lock-free. */
void prom_observe(prom_hist_t *h, int64_t v);

/* The number of observations so far (the sum of the buckets). */
uint64_t prom_hist_count(const prom_hist_t *h);

/* ---- the text exposition format ---------------------------------------- */

#define PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Labels are given as a NULL-terminated array of name, value pairs:
 *     const char *labels[] = {"queue", q, "state", "pending", NULL};
 * NULL (or an empty array) for none. Values are escaped; names are not. */

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void prom_family(buf_t *b, const char *name, const char *type, const char *help);
/* One sample with an integer value (exact beyond 2^53). */
void prom_sample_u64(buf_t *b, const char *name, const char *const *labels, uint64_t v);
/* One sample with an integer value that may be negative (a gauge). */
void prom_sample_i64(buf_t *b, const char *name, const char *const *labels, int64_t v);
/* One sample with a real value (shortest text that reads back the same). */
void prom_sample(buf_t *b, const char *name, const char *const *labels, double v);
/* The samples of a histogram family member: name_bucket{labels, le} for
 * every bound and +Inf, name_sum and name_count. */
void prom_hist_write(buf_t *b, const char *name, const char *const *labels, const prom_hist_t *h);

/* Formats v as the exposition format writes reals into out (at least 32
 * bytes): the shortest of %.15g / %.17g that reads back as v, "+Inf",
 * "-Inf" or "NaN". Returns out. */
char *prom_format_double(double v, char *out, size_t outlen);

#endif
