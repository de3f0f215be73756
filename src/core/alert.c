/*
 * Alerts: condition and channel names, a parsed rule's life, the pure
 * decisions of the alerter (overrun threshold, SLA, missed fire times,
 * backlog) and the words of a notice. See alert.h; documents are parsed in
 * alertspec.c.
 */
#include "core/alert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"

#define MISSED_DEFAULT  (60 * 1000)
#define BACKLOG_FOR_DEF (5 * 60 * 1000)

static const char *const cond_names[] = {"failed", "retrying",    "sla_missed", "overrun",
                                         "missed", "worker_lost", "backlog"};
static const char *const cond_titles[] = {"FAILED", "RETRYING",    "SLA MISSED", "OVERRUN",
                                          "MISSED", "WORKER LOST", "BACKLOG"};
static const char *const kind_names[] = {"webhook", "slack", "email"};

const char *alert_cond_name(alert_cond_t c)
{
    return (unsigned)c < ALERT_COND_COUNT ? cond_names[c] : NULL;
}

int alert_cond_parse(const char *name, alert_cond_t *out)
{
    for (int i = 0; name && i < ALERT_COND_COUNT; i++)
        if (!strcmp(name, cond_names[i])) {
            *out = (alert_cond_t)i;
            return 0;
        }
    return SKED_EINVAL;
}

const char *alert_channel_kind_name(alert_channel_kind_t k)
{
    return (unsigned)k < 3 ? kind_names[k] : NULL;
}

int alert_channel_kind_parse(const char *name, alert_channel_kind_t *out)
{
    for (int k = 0; name && k < 3; k++) {
        if (!strcmp(name, kind_names[k])) {
            *out = (alert_channel_kind_t)k;
            return 0;
        }
    }
    return SKED_EINVAL;
}

alert_params_t alert_params_default(void)
{
    return (alert_params_t){.overrun_factor = 2.0,
                            .overrun_min_samples = 5,
                            .missed_window_ms = MISSED_DEFAULT,
                            .backlog_depth = 100,
                            .backlog_for_ms = BACKLOG_FOR_DEF};
}

static void channel_clear(alert_channel_spec_t *c)
{
    free(c->target);
    if (c->secret) memset(c->secret, 0, strlen(c->secret));
    free(c->secret);
    memset(c, 0, sizeof *c);
}

void alert_rule_spec_clear(alert_rule_spec_t *r)
{
    if (!r) return;
    free(r->name);
    free(r->scope_ns);
    free(r->scope_queue);
    free(r->scope_job);
    free(r->scope_tag);
    for (size_t i = 0; r->channels && i < r->nchannels; i++)
        channel_clear(&r->channels[i]);
    free(r->channels);
    memset(r, 0, sizeof *r);
}

void alert_rules_free(alert_rule_spec_t *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        alert_rule_spec_clear(&v[i]);
    free(v);
}

/* ---- decisions ---------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int64_t alert_p95_ms(int64_t *d, size_t n)
{
    if (n == 0) return -1;
    qsort(d, n, sizeof *d, cmp_i64);
    /* Nearest rank: the smallest value with at least 95% of the samples at
     * or below it, ceil(0.95 n), in integers. */
    size_t rank = (95 * n + 99) / 100;
    return d[rank ? rank - 1 : 0];
}

bool alert_overrun(int64_t running_ms, int64_t *d, size_t n, double factor, int min_samples,
                   int64_t *threshold_ms)
{
    if (threshold_ms) *threshold_ms = -1;
    if (n == 0 || n < (size_t)(min_samples > 0 ? min_samples : 1)) return false;
    int64_t p95 = alert_p95_ms(d, n);
    int64_t limit = (int64_t)((double)p95 * factor);
    if (threshold_ms) *threshold_ms = limit;
    return running_ms > limit;
}

unsigned alert_sla_late(int64_t fire_ms, int64_t started_ms, bool finished, int64_t start_within_ms,
                        int64_t finish_within_ms, int64_t now_ms)
{
    unsigned late = 0;
    if (start_within_ms > 0 && started_ms < 0 && now_ms >= fire_ms + start_within_ms)
        late |= ALERT_SLA_START_LATE;
    if (finish_within_ms > 0 && !finished && now_ms >= fire_ms + finish_within_ms)
        late |= ALERT_SLA_FINISH_LATE;
    return late;
}

bool alert_fire_kept(int64_t fire_ms, int64_t started_ms, bool skipped, int64_t window_ms)
{
    return !skipped && started_ms >= 0 && started_ms <= fire_ms + window_ms;
}

bool alert_backlog_due(int depth, int depth_max, int64_t since_ms, int64_t for_ms, int64_t now_ms)
{
    return depth > depth_max && since_ms >= 0 && now_ms - since_ms >= for_ms;
}

/* ---- notices ------------------------------------------------------------ */

static const char *nz(const char *s)
{
    return s ? s : "";
}

char *alert_subject(const alert_notice_t *n)
{
    const char *cond = (unsigned)n->cond < ALERT_COND_COUNT ? cond_names[n->cond] : "?";
    const char *title = (unsigned)n->cond < ALERT_COND_COUNT ? cond_titles[n->cond] : "?";
    if (n->event == ALERT_EV_RESOLVED)
        return xasprintf("[sked] RESOLVED %s: %s", cond, nz(n->name));
    if (n->run_id && *n->run_id)
        return xasprintf("[sked] %s %s (run %s)", title, nz(n->name), n->run_id);
    return xasprintf("[sked] %s %s", title, nz(n->name));
}

char *alert_text(const alert_notice_t *n)
{
    char opened[SKED_RFC3339_LEN], resolved[SKED_RFC3339_LEN];
    const char *cond = (unsigned)n->cond < ALERT_COND_COUNT ? cond_names[n->cond] : "?";
    const char *title = (unsigned)n->cond < ALERT_COND_COUNT ? cond_titles[n->cond] : "?";
    buf_t b = BUF_INIT;
    clock_format_rfc3339(n->opened_ms, opened, sizeof opened);
    if (n->event == ALERT_EV_RESOLVED) {
        clock_format_rfc3339(n->resolved_ms, resolved, sizeof resolved);
        buf_printf(&b, "RESOLVED (%s): %s\n", cond, nz(n->name));
        if (n->resolve_detail && *n->resolve_detail) buf_printf(&b, "%s\n", n->resolve_detail);
        buf_printf(&b, "was: %s\nopened %s, resolved %s\n", nz(n->detail), opened, resolved);
    } else {
        buf_printf(&b, "%s: %s\n%s\nopened %s\n", title, nz(n->name), nz(n->detail), opened);
    }
    if (n->run_id && *n->run_id) buf_printf(&b, "run %s\n", n->run_id);
    buf_printf(&b, "alert %s\n", nz(n->id));
    return buf_steal(&b);
}
