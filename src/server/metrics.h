/*
 * What GET /metrics reports (docs/observability.md, "Metrics", is the
 * catalogue): this process's own figures, recorded here by the parts of
 * the server as things happen, and the cluster-wide counts the store keeps
 * (store_counts), read at each scrape. The exposition is rendered by
 * metrics_render in Prometheus' text format (common/prom.h).
 *
 * Every recording function is thread-safe and lock-free (relaxed atomic
 * adds into fixed tables), so the hot paths that call them (every HTTP
 * answer, every claim) pay a few atomic instructions and nothing else.
 * The figures are per process: a cluster's servers each report their own,
 * and a Prometheus query sums them. The cluster-wide families (queue
 * depth, runs finished, workers) are the same on every server; aggregate
 * those with max(), not sum().
 */
#ifndef SKED_SERVER_METRICS_H
#define SKED_SERVER_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "server/http.h"
#include "store/store.h"

/* An HTTP answer was queued: route is the matched entry of http_routes
 * (NULL when none matched: counted as route "unmatched"), method the
 * request's, status the answer's, elapsed_ns the time since the request's
 * headers arrived (observed as the submit latency for POST /v1/jobs
 * answered 2xx). Labels are the route's pattern, never the raw path, so
 * the series stay bounded. */
void metrics_http_answered(const http_route_t *route, const char *method, int status,
                           int64_t elapsed_ns);

/* A claim handed run out at claimed_ms: its dispatch lag (claimed minus
 * due, not_before) and, for a first attempt, its fire lag (the lease
 * start, from which the worker starts the process as soon as it confirms,
 * minus the fire time). */
void metrics_run_claimed(const store_run_t *run, int64_t claimed_ms);

/* Why fire times did not run, as the scheduler decides (the store counts
 * overlap skips itself: store_stats). */
typedef enum metrics_skip {
    METRICS_SKIP_MISFIRE_RUN_ONCE = 0, /* missed; only the latest ran */
    METRICS_SKIP_MISFIRE_CATCH_UP,     /* missed and older than the catch-up window */
    METRICS_SKIP_MISFIRE_SKIP,         /* missed, policy skip */
    METRICS_SKIP_SCHEDULE_INVALID,     /* the stored schedule no longer compiles */
    METRICS_SKIP_COUNT
} metrics_skip_t;

/* n fire times were passed over for reason. */
void metrics_fire_skipped(metrics_skip_t reason, uint64_t n);

/* For the alert senders (issue 9, point 3): call once per delivery
 * attempt that ended, with the channel's kind ("webhook", "slack",
 * "email") and whether the receiver took it (ok: sked_alerts_sent_total)
 * or not (sked_alerts_failed_total: refused, unreachable, timed out; a
 * retry later counts again). Other channel names are ignored. Thread-safe,
 * lock-free; both families are exported (at 0) before any alert is sent. */
void metrics_alert_sent(const char *channel, bool ok);

/* Why a waiting request (a parked claim, a log follow, an event stream)
 * was resumed: by a wake-up (a store change, or a claim passing on a
 * wake-up it could not use) or by its deadline. */
typedef enum metrics_resume {
    METRICS_RESUME_WAKE = 0,
    METRICS_RESUME_PASS,
    METRICS_RESUME_DEADLINE,
    METRICS_RESUME_COUNT
} metrics_resume_t;

/* n waiting requests were resumed for reason (sked_http_waits_resumed_total);
 * each also leaves the sked_http_waiting gauge. */
void metrics_wait_resumed(metrics_resume_t reason, uint64_t n);

/* A request began to wait (parked): sked_http_waiting goes up by one. */
void metrics_wait_parked(void);

/* Appends the whole exposition to out: this process's figures, the
 * store's cluster-wide counts (left out, with sked_store_up 0, when the
 * store cannot be read) and the standard process_* figures. */
void metrics_render(store_t *st, buf_t *out);

#endif
