/* Prometheus counters, histograms and the text exposition format; see prom.h. */
#include "common/prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void prom_observe(prom_hist_t *h, int64_t v)
{
    if (v < 0) v = 0;
    /* A linear walk: a couple of dozen bounds at most, and the common
     * observations fall in the first few buckets. */
    int i = 0;
    while (i < h->nbounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

uint64_t prom_hist_count(const prom_hist_t *h)
{
    uint64_t n = 0;
    for (int i = 0; i <= h->nbounds; i++)
        n += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
    return n;
}

char *prom_format_double(double v, char *out, size_t outlen)
{
    if (isnan(v)) {
        snprintf(out, outlen, "NaN");
    } else if (isinf(v)) {
        snprintf(out, outlen, "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, outlen, "%.15g", v);
        if (strtod(out, NULL) != v) snprintf(out, outlen, "%.17g", v);
    }
    return out;
}

/* Appends s escaped: backslash and newline always, the double quote too
 * inside a label value. */
static void escaped(buf_t *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_puts(b, "\\\\");
        else if (*s == '\n')
            buf_puts(b, "\\n");
        else if (quote && *s == '"')
            buf_puts(b, "\\\"");
        else
            buf_append(b, s, 1);
    }
}

void prom_family(buf_t *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s ", name);
    escaped(b, help, 0);
    buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* name{k="v",...,extra_k="extra_v"}: extra (may be NULL) is one more pair. */
static void series(buf_t *b, const char *name, const char *const *labels, const char *extra_k,
                   const char *extra_v)
{
    buf_puts(b, name);
    int n = 0;
    for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2, n++) {
        buf_printf(b, "%s%s=\"", n ? "," : "{", labels[i]);
        escaped(b, labels[i + 1], 1);
        buf_puts(b, "\"");
    }
    if (extra_k) {
        buf_printf(b, "%s%s=\"", n++ ? "," : "{", extra_k);
        escaped(b, extra_v, 1);
        buf_puts(b, "\"");
    }
    if (n) buf_puts(b, "}");
}

void prom_sample_u64(buf_t *b, const char *name, const char *const *labels, uint64_t v)
{
    series(b, name, labels, NULL, NULL);
    buf_printf(b, " %" PRIu64 "\n", v);
}

void prom_sample_i64(buf_t *b, const char *name, const char *const *labels, int64_t v)
{
    series(b, name, labels, NULL, NULL);
    buf_printf(b, " %" PRId64 "\n", v);
}

void prom_sample(buf_t *b, const char *name, const char *const *labels, double v)
{
    char num[40];
    series(b, name, labels, NULL, NULL);
    buf_printf(b, " %s\n", prom_format_double(v, num, sizeof num));
}

void prom_hist_write(buf_t *b, const char *name, const char *const *labels, const prom_hist_t *h)
{
    char bucket[128], le[40];
    uint64_t cum = 0;
    snprintf(bucket, sizeof bucket, "%s_bucket", name);
    for (int i = 0; i <= h->nbounds; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->nbounds)
            prom_format_double((double)h->bounds[i] / h->per, le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        series(b, bucket, labels, "le", le);
        buf_printf(b, " %" PRIu64 "\n", cum);
    }
    char sum[128], count[128];
    snprintf(sum, sizeof sum, "%s_sum", name);
    snprintf(count, sizeof count, "%s_count", name);
    prom_sample(b, sum, labels,
                (double)atomic_load_explicit(&h->sum, memory_order_relaxed) / h->per);
    prom_sample_u64(b, count, labels, cum);
}
