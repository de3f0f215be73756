/*
 * "Why isn't it running?": the decision behind GET /v1/jobs/{id}/explain and
 * GET /v1/runs/{id}/explain. The server gathers the facts from the store in
 * one snapshot (store_explain: the job, its schedules, its unfinished runs
 * with their current or last attempt, how many of its runs are running, the
 * workers whose queues include the job's queue); explain_job() and
 * explain_run() turn them into a list of reasons, each a machine-readable
 * code, one sentence for people and the structured fields the sentence
 * names (times, the queue, a missing label, a worker, counts).
 *
 * Pure: `now_ms` is a parameter; nothing here reads a clock or the store,
 * and nothing is logged. The rules follow what the claim does
 * (store/lease.c): a due run is handed to a live worker whose queues hold
 * the run's queue, whose namespace (if it has one) holds the job's, whose
 * labels meet every constraint, that runs the job's type (shell and http:
 * every worker; a plugin type: one that advertised it), that is active
 * (not draining) and has a free slot, unless the job's overlap policy or max_concurrency holds it
 * back. A worker is live while it is active or draining and was heard from
 * within the server's worker timeout; the reaper marks it lost later.
 *
 * A reason sked cannot produce yet has no code here: "rate limited"
 * (per-job or per-queue dispatch limits); the issue that adds it adds its
 * code.
 */
#ifndef SKED_CORE_EXPLAIN_H
#define SKED_CORE_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/policy.h"
#include "core/run.h"

/* The reasons, by code. Their names (explain_code_name) are the API's
 * `code` strings: stable, new codes take new names. */
typedef enum explain_code {
    EXPLAIN_JOB_DELETED = 0,     /* the job was deleted: nothing of it runs again */
    EXPLAIN_PAUSED,              /* the job is paused: nothing fires, due runs are held */
    EXPLAIN_NEXT_FIRE,           /* the next fire time (at) */
    EXPLAIN_NO_SCHEDULE,         /* no schedule: it runs only when triggered */
    EXPLAIN_SCHEDULE_EXHAUSTED,  /* every schedule is past its last fire time */
    EXPLAIN_RUNNING,             /* a run is running on a worker (since, lease until at) */
    EXPLAIN_STARTING,            /* claimed; the worker has not confirmed the start yet */
    EXPLAIN_LEASE_EXPIRED,       /* running, but its lease ran out: the reaper takes it back */
    EXPLAIN_CANCEL_REQUESTED,    /* running, asked to cancel: its worker stops it */
    EXPLAIN_RETRY_BACKOFF,       /* an attempt failed; the next one is due at `at` */
    EXPLAIN_LEASE_LOST,          /* an attempt's lease was lost; the next one is due at `at` */
    EXPLAIN_NOT_YET_DUE,         /* a run made ahead of its time (fire time plus jitter) */
    EXPLAIN_OVERLAP_FORBID,      /* overlap forbid: due runs are skipped while run_id runs */
    EXPLAIN_OVERLAP_REPLACE,     /* overlap replace: due runs wait for run_id to be stopped */
    EXPLAIN_MAX_CONCURRENCY,     /* count of limit runs are running: due runs wait */
    EXPLAIN_NO_WORKER_FOR_QUEUE, /* no live worker serves the queue */
    EXPLAIN_WORKER_OTHER_NS,     /* the workers serving the queue are in other namespaces */
    EXPLAIN_NO_WORKER_LABELS,    /* no such worker has the label(s) the constraints need */
    EXPLAIN_WORKERS_DRAINING,    /* every matching worker is draining */
    EXPLAIN_WORKERS_FULL,        /* every matching worker's slots are busy */
    EXPLAIN_AWAITING_CLAIM,      /* due and a worker could take it: the next claim will */
    EXPLAIN_FINISHED,            /* the run is over (state, reason) */
    EXPLAIN_WAITING_UPSTREAM,    /* waits for its upstreams: count of limit ended */
    EXPLAIN_WAITING_MEMBERS,     /* a workflow or array run: count of limit members ended */
    EXPLAIN_WAITING_SLOT,        /* an array's index waits for a slot (limit at once) */
    EXPLAIN_NO_WORKER_TYPE,      /* no such worker runs the job's plugin type */
    EXPLAIN_CODE_COUNT
} explain_code_t;

/* "job_deleted", "paused", ...; NULL out of range. Static strings. */
const char *explain_code_name(explain_code_t c);

/* The job's state, as the store keeps it (the server maps its job_state_t). */
typedef enum explain_job_state {
    EXPLAIN_STATE_ACTIVE = 0,
    EXPLAIN_STATE_PAUSED,
    EXPLAIN_STATE_DONE,
    EXPLAIN_STATE_DELETED
} explain_job_state_t;

/* A worker's registry state (the server maps its worker_state_t). */
typedef enum explain_worker_state {
    EXPLAIN_WORKER_ACTIVE = 0,
    EXPLAIN_WORKER_DRAINING,
    EXPLAIN_WORKER_LOST
} explain_worker_state_t;

/* A run's current attempt (running) or its last one (otherwise). */
typedef struct explain_attempt {
    int n; /* 1-based; 0 = the run has no attempt */
    const char *worker_id;
    int64_t started_ms;
    int64_t finished_ms; /* -1 while it runs */
    attempt_outcome_t outcome;
    int exit_code;      /* -1 if none */
    int signal;         /* 0 if none */
    const char *reason; /* NULL if none */
} explain_attempt_t;

/* A run as explain sees it. Strings borrowed; "" for ids not set. */
typedef struct explain_run {
    const char *id;
    run_state_t state;
    int64_t fire_ms, not_before_ms, finished_ms; /* finished -1 if not yet */
    int attempt;                                 /* attempts started so far */
    const char *worker_id;                       /* the holder while running */
    int64_t lease_expires_ms;                    /* while running */
    bool unconfirmed;      /* running, and its worker has not confirmed the start */
    bool cancel_requested; /* running, and asked to cancel */
    const char *reason;    /* the run's own reason; NULL if none */
    explain_attempt_t last;
    /* Waiting runs: upstreams (a workflow task, a job with dependencies),
     * a group's members (a workflow or array run), an array index. */
    const char *rule; /* the upstreams' trigger rule name; NULL = none */
    int deps_n, deps_ok, deps_fail, deps_skip;
    bool group;                /* a workflow or array run */
    int members, members_open; /* a group's members, and how many have not ended */
    int array_index;           /* -1 = none */
    int parallel;              /* an array index's limit of its array's members at once */
} explain_run_t;

/* A worker whose queues include the job's queue. Strings borrowed. */
typedef struct explain_worker {
    const char *id, *name;
    const char *queues; /* "a,b" */
    const char *labels; /* "k=v,..." */
    const char *ns;     /* namespaces it claims for, "a,b"; "" = all */
    explain_worker_state_t state;
    int slots, running;
    int64_t heartbeat_ms;
    const char *types; /* the plugin types it runs, ",a,b,"; NULL or "" = none */
} explain_worker_t;

/* Everything explain decides on. Strings and arrays borrowed; job_id, ns,
 * queue and constraints are never NULL. */
typedef struct explain_facts {
    const char *job_id;
    const char *ns;          /* the job's namespace */
    const char *queue;       /* the job's queue */
    const char *constraints; /* "k=v,..." sorted; "" = none */
    const char *type;        /* the job's type; NULL = shell */
    explain_job_state_t job_state;
    int64_t job_updated_ms; /* when the job last changed (paused, deleted) */
    overlap_policy_t overlap;
    int max_concurrency; /* 0 = unlimited */
    int max_attempts;    /* retry policy: tries in all */

    size_t nscheds;            /* schedules the job has */
    int64_t next_fire_ms;      /* the earliest next fire of its schedules; -1 = none */
    const char *next_sched_id; /* the schedule that fires then; NULL if none */
    int64_t last_fire_ms;      /* the latest fire time any schedule reached; -1 = never */

    const explain_run_t *runs; /* the job's unfinished runs: running first, then by not_before */
    size_t nruns;
    int64_t nwaiting; /* unfinished runs that are not running; may exceed those listed */
    int64_t ndue;     /* of those, scheduled or pending and due by now */
    int64_t running;  /* the job's running runs, all of them */

    const explain_worker_t *workers; /* not gone, the job's queue among their queues */
    size_t nworkers;
    int64_t live_workers; /* live workers in the whole pool, whatever their queues */

    int64_t worker_timeout_ms; /* silence after which a worker is not live */
    int64_t lease_grace_ms;    /* wait after a lease ends before the reaper moves the run on */
} explain_facts_t;

/* One reason. Fields that do not apply are NULL / -1 / 0. */
typedef struct explain_reason {
    explain_code_t code;
    char *message;           /* new: one sentence for people */
    const char *run_id;      /* borrowed from the facts */
    const char *worker_id;   /* borrowed */
    const char *schedule_id; /* borrowed */
    const char *queue;       /* borrowed */
    const char *ns;          /* borrowed: the job's namespace (worker_other_namespace) */
    const char *type;        /* borrowed: the job's plugin type (no_worker_with_type) */
    const char *state;       /* static: a finished run's state */
    char *labels;            /* new: missing labels "k=v,k2=v2" (no_worker_labels) */
    int64_t at_ms;           /* the instant the reason names; -1 = none */
    int64_t since_ms;        /* since when it holds; -1 = none */
    int64_t count;           /* a count (running, waiting, busy slots); -1 = none */
    int64_t limit;           /* what count is measured against; -1 = none */
    int attempt;             /* an attempt number; 0 = none */
} explain_reason_t;

/* A list of reasons, most important first. */
typedef struct explain {
    explain_reason_t *v; /* owned */
    size_t n, cap;
} explain_t;

#define EXPLAIN_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* How many running or retrying runs a job's explanation names one by one;
 * the rest are counted. */
#define EXPLAIN_RUNS_NAMED 10

/* Why job f is or is not running at now_ms: appends reasons to *out. */
void explain_job(const explain_facts_t *f, int64_t now_ms, explain_t *out);
/* Why run r (of job f; r need not be among f->runs) is or is not running
 * at now_ms: appends reasons to *out. */
void explain_run(const explain_facts_t *f, const explain_run_t *r, int64_t now_ms, explain_t *out);
/* Frees the reasons; *e is empty and reusable after. */
void explain_clear(explain_t *e);

#endif
