/*
 * Alert rules as clients write them, and the pure decisions behind alerts.
 *
 * A rule says when to tell someone (conditions), about what (a scope:
 * namespace, queue, job name, tag; empty = everything) and whom (channels:
 * a webhook, a Slack incoming webhook, e-mail recipients). Rules come in
 * two places: a job's own "alerts" (each entry one channel, scoped to that
 * job; core/jobspec.c parses them through alert_job_entries_parse) and the
 * global rules of /v1/alert-rules (alert_rule_parse). Both are stored as
 * rows by the store and evaluated the same way.
 *
 * Everything here is pure and free of JSON (the store uses it): the
 * conditions and channels, a parsed rule, the overrun threshold (k x the p95 of recent successful
 * durations), the SLA, missed-fire and backlog verdicts, and the words of a
 * notice. Times are parameters; nothing here reads a clock or the store.
 *
 * Parsing, validation and the canonical JSON of rules are in
 * core/alertspec.h.
 */
#ifndef SKED_CORE_ALERT_H
#define SKED_CORE_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The conditions. Stored as integers (alerts.cond) and as bits of a rule's
 * conds (1 << cond): the numbers are fixed. */
typedef enum alert_cond {
    ALERT_FAILED = 0,  /* a run ended failed, its attempts exhausted */
    ALERT_RETRYING,    /* an attempt failed and a retry is scheduled */
    ALERT_SLA_MISSED,  /* not started within sla.start_within / finished within finish_within */
    ALERT_OVERRUN,     /* a running attempt is past k x p95 of recent successful durations */
    ALERT_MISSED,      /* a fire time produced no run started within the window */
    ALERT_WORKER_LOST, /* a worker stopped heartbeating */
    ALERT_BACKLOG,     /* a queue's pending depth over N for longer than T */
    ALERT_COND_COUNT
} alert_cond_t;
_Static_assert(ALERT_FAILED == 0 && ALERT_RETRYING == 1 && ALERT_SLA_MISSED == 2 &&
                   ALERT_OVERRUN == 3 && ALERT_MISSED == 4 && ALERT_WORKER_LOST == 5 &&
                   ALERT_BACKLOG == 6,
               "alerts.cond and alert_rules.conds hold these numbers");

#define ALERT_BIT(c) (1u << (unsigned)(c))
/* The conditions about one job: the only ones a job's own alerts may name. */
#define ALERT_JOB_CONDS                                                                            \
    (ALERT_BIT(ALERT_FAILED) | ALERT_BIT(ALERT_RETRYING) | ALERT_BIT(ALERT_SLA_MISSED) |           \
     ALERT_BIT(ALERT_OVERRUN) | ALERT_BIT(ALERT_MISSED))

/* "failed", "retrying", ...; NULL out of range. */
const char *alert_cond_name(alert_cond_t c);
int alert_cond_parse(const char *name, alert_cond_t *out); /* 0 or SKED_EINVAL */

/* Channel kinds (server/alert_send.h delivers to each). */
typedef enum alert_channel_kind {
    ALERT_CHANNEL_WEBHOOK = 0,
    ALERT_CHANNEL_SLACK,
    ALERT_CHANNEL_EMAIL
} alert_channel_kind_t;
const char *alert_channel_kind_name(alert_channel_kind_t k); /* "webhook", "slack", "email" */
int alert_channel_kind_parse(const char *name, alert_channel_kind_t *out); /* 0 or SKED_EINVAL */

/* Alert states and the two notices (stored as these numbers). */
typedef enum alert_state { ALERT_OPEN = 0, ALERT_RESOLVED } alert_state_t;
typedef enum alert_event { ALERT_EV_OPENED = 0, ALERT_EV_RESOLVED } alert_event_t;

#define ALERT_CHANNELS_MAX 8
#define ALERT_TARGET_MAX   2048 /* bytes of a URL or a recipient list */
#define ALERT_SECRET_MAX   1024
#define ALERT_RECIPIENTS   20
#define ALERT_JOB_MAX      16 /* entries in a job's "alerts" */

typedef struct alert_channel_spec {
    alert_channel_kind_t kind;
    char *target; /* the URL (webhook, slack) or "a@x,b@y" (email) */
    char *secret; /* webhook only; NULL = unsigned */
} alert_channel_spec_t;

/* Parameters of the time-based conditions; defaults from
 * alert_params_default(). */
typedef struct alert_params {
    double overrun_factor;    /* k: overrun past k x p95; default 2 */
    int overrun_min_samples;  /* fewer successful runs than this: no overrun verdict; 5 */
    int64_t missed_window_ms; /* a fire time must have started within this; default 1m */
    int backlog_depth;        /* N: pending runs of a queue; default 100 */
    int64_t backlog_for_ms;   /* T: over N this long; default 5m */
} alert_params_t;

alert_params_t alert_params_default(void);

/* A rule as parsed (owned strings; clear with alert_rule_spec_clear). */
typedef struct alert_rule_spec {
    char *name;        /* global rules: unique, required; job entries: NULL */
    unsigned conds;    /* ALERT_BIT()s */
    char *scope_ns;    /* "" = any (a job entry: "", its job is its scope) */
    char *scope_queue; /* "" = any */
    char *scope_job;   /* a job name; "" = any */
    char *scope_tag;   /* "" = any */
    alert_params_t params;
    alert_channel_spec_t *channels;
    size_t nchannels;
} alert_rule_spec_t;

void alert_rule_spec_clear(alert_rule_spec_t *r); /* frees members, zeroes */

/* ---- decisions ---------------------------------------------------------- */

#define ALERT_OVERRUN_SAMPLES 20 /* recent successful durations the p95 is taken over */

/* The nearest-rank 95th percentile of n durations (sorted in place); -1
 * for n == 0. */
int64_t alert_p95_ms(int64_t *durations, size_t n);

/* Whether an attempt running for running_ms overruns: at least min_samples
 * durations and running_ms > factor x p95. *threshold_ms OUT (may be
 * NULL): factor x p95, or -1 without enough samples. durations is sorted
 * in place. */
bool alert_overrun(int64_t running_ms, int64_t *durations, size_t n, double factor, int min_samples,
                   int64_t *threshold_ms);

/* SLA verdict of one run at now_ms. A run is late to start when it has not
 * started (started_ms < 0) start_within after its fire time, and late to
 * finish when it has not finished (finished false) finish_within after its
 * fire time; 0 disables either. Returns a mask of ALERT_SLA_START_LATE and
 * ALERT_SLA_FINISH_LATE. */
#define ALERT_SLA_START_LATE  1u
#define ALERT_SLA_FINISH_LATE 2u
unsigned alert_sla_late(int64_t fire_ms, int64_t started_ms, bool finished, int64_t start_within_ms,
                        int64_t finish_within_ms, int64_t now_ms);

/* Whether a fire time was kept: its run started within window_ms of it.
 * started_ms < 0 (never started) or a skipped run (skipped) is a miss. */
bool alert_fire_kept(int64_t fire_ms, int64_t started_ms, bool skipped, int64_t window_ms);

/* Backlog verdict: depth over depth_max since since_ms (-1: not over
 * before) for at least for_ms by now. */
bool alert_backlog_due(int depth, int depth_max, int64_t since_ms, int64_t for_ms, int64_t now_ms);

/* ---- notices ------------------------------------------------------------ */

/* What a notice is about, as the renderers below need it (borrowed). */
typedef struct alert_notice {
    const char *id; /* "alr_..." */
    alert_cond_t cond;
    alert_event_t event;
    const char *name;           /* the subject's name: job name, worker name or queue */
    const char *run_id;         /* "" or NULL = none */
    const char *detail;         /* what happened, one line */
    const char *resolve_detail; /* resolved: why it cleared; NULL = none */
    int64_t opened_ms, resolved_ms;
} alert_notice_t;

/* One-line subject, e.g. "[sked] FAILED nightly-report (run run_...)" or
 * "[sked] RESOLVED failed: nightly-report". New string. */
char *alert_subject(const alert_notice_t *n);
/* A few lines of text (Slack text, e-mail body). New string. */
char *alert_text(const alert_notice_t *n);

#endif
