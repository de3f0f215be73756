/*
 * The only door to persistence. Everything sked keeps — jobs, schedules,
 * runs, attempts, log chunks, workers, users, tokens, the audit log,
 * idempotency keys — goes through these domain verbs; SQL lives behind them
 * and nowhere else.
 *
 * A store is opened from a URL ("sqlite:PATH", or "postgres://..." for a
 * cluster). Each verb is written once over a narrow SQL driver (db.h), one
 * per engine; see docs/store.md. Every verb is safe to call from any thread.
 * Every write that returns 0 is durable (committed and synced) before it
 * returns: promise §5.1. Concurrent writes share commits (group commit).
 *
 * Races between servers are settled inside the store: firing is a
 * compare-and-set on a schedule's next_fire_ms plus UNIQUE(schedule_id,
 * fire_time) on runs; claims and lease renewals check the worker and the
 * fencing token in the same transaction that changes the run.
 *
 * Times are UTC ms since the epoch, always passed in by the caller
 * (`now_ms`); the store never reads a clock, except that a backend whose
 * engine has one authoritative clock (PostgreSQL) may use it instead.
 *
 * Ownership: out-structs are filled by the store and freed by the caller
 * with the matching *_free / *_clear function. Strings passed in are
 * borrowed for the duration of the call.
 */
#ifndef SKED_STORE_STORE_H
#define SKED_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/id.h"
#include "common/prom.h"
#include "core/alert.h"
#include "core/backoff.h"
#include "core/deps.h"
#include "core/policy.h"
#include "core/run.h"
#include "core/schedule.h"

/* The parsed job document (core/jobspec.h), only by pointer here: the store
 * does not depend on the document parser or its JSON library. */
struct jobspec;

typedef struct store store_t;

/* ---- lifecycle --------------------------------------------------------- */

/* Opens (creating and migrating if needed) the store at url. On success
 * returns 0 and *out; on failure returns a SKED_E* code and, if errmsg is
 * non-NULL, a new message in *errmsg (caller frees). SKED_ESCHEMA means the
 * store was written by a newer sked. */
int store_open(const char *url, store_t **out, char **errmsg);
void store_close(store_t *st); /* NULL is a no-op */
/* "sqlite" or "postgres". */
const char *store_backend(const store_t *st);
/* 0 if the store answers a trivial query. */
int store_ping(store_t *st);
/* Readiness: 0 if the store answers and takes a durable write (a full
 * disk, a read-only database or a lost primary fail it). The probe runs at
 * most once a second per handle; calls in between get its answer, so
 * polling this cannot be used to force syncs. Thread-safe. */
int store_ready(store_t *st);

/* The wall clock that decides leases and due times on this store, UTC ms.
 * SQLite: the local clock. PostgreSQL: the database's clock (one clock for
 * every server, whatever their drift), tracked as an offset from the local
 * clock refreshed about once a second. Servers pass this as `now_ms` to the
 * verbs below. Thread-safe and cheap. */
int64_t store_now_ms(store_t *st);

/* Called (from the committing thread, after commit) whenever claimable work
 * may have appeared, a run changed state or a run's log grew: new pending
 * runs, retries, a resumed job, a cancel, a log chunk. The server uses it to wake waiting claims
 * and log followers. Must be cheap and must not call back into the store. */
typedef void (*store_notify_fn)(void *arg);
void store_set_notify(store_t *st, store_notify_fn fn, void *arg);

/* ---- jobs --------------------------------------------------------------- */

typedef enum job_state { JOB_ACTIVE = 0, JOB_PAUSED, JOB_DONE, JOB_DELETED } job_state_t;
_Static_assert(JOB_ACTIVE == 0 && JOB_PAUSED == 1 && JOB_DONE == 2 && JOB_DELETED == 3,
               "jobs.state holds these numbers (and the SQL spells them)");
const char *job_state_name(job_state_t s);
int job_state_parse(const char *name, job_state_t *out);

/* What a job is: a job, a workflow (its runs are workflow runs), or one
 * task of a workflow (parent_id). Stored numbers (jobs.kind). */
typedef enum job_kind { JOB_KIND_JOB = 0, JOB_KIND_WORKFLOW, JOB_KIND_TASK } job_kind_t;
_Static_assert(JOB_KIND_JOB == 0 && JOB_KIND_WORKFLOW == 1 && JOB_KIND_TASK == 2,
               "jobs.kind holds these numbers");

/* What a job's new runs need beyond a plain run (jobs.graph, copied to
 * runs.graph): the store keeps these bits. */
#define STORE_GRAPH_WORKFLOW   1 /* its runs are workflow runs (groups of task runs) */
#define STORE_GRAPH_ARRAY      2 /* its runs are arrays (groups of indexed runs) */
#define STORE_GRAPH_DEPS       4 /* it depends on other jobs: its runs wait for theirs */
#define STORE_GRAPH_DEPENDENTS 8 /* other jobs depend on it */

/* One upstream of a job (a job dependency) or of a task (within its
 * workflow). */
typedef struct store_dep {
    char job_id[SKED_ID_LEN]; /* the upstream job; for a task in store_workflow_put: "" */
    size_t task;              /* for a task in store_workflow_put: the upstream's index */
    dep_cond_t cond;          /* afterok, ... for jobs; DEP_TASK between tasks */
} store_dep_t;

/* A job as stored: identity and bookkeeping, the columns the store decides
 * on, and the canonical spec document. */
typedef struct store_job {
    char id[SKED_ID_LEN];
    char *ns;    /* namespace ("default") */
    char *owner; /* name of the token/user that created it */
    char *name;
    char *queue;
    char *spec_json;   /* canonical spec (jobspec_to_json), the job as the API shows it */
    char *constraints; /* "k=v,k2=v2" sorted; "" = none */
    char *tags;        /* ",a,b,"; "" = none */
    char *type;        /* "shell", "http" or a plugin's type name (NULL on write: shell) */
    int priority;
    job_state_t state;
    overlap_policy_t overlap;
    misfire_policy_t misfire;
    int64_t catch_up_window_ms;
    int max_concurrency; /* 0 = unlimited */
    int64_t timeout_ms;  /* 0 = none */
    retry_policy_t retry;
    int64_t version; /* starts at 1; +1 on every change */
    int64_t created_ms, updated_ms;
    /* The job's SLA and its own alert rules (its spec's "sla" and
     * "alerts"): written by create and update, which replace the job's
     * rules (rules keep their id by position, so an open alert stays
     * theirs); not read back by get or list (the spec shows them). */
    int64_t sla_start_ms, sla_finish_ms; /* 0 = none */
    struct store_alert_rule *alerts;     /* owned; NULL = none */
    size_t nalerts;
    /* Workflows, tasks, arrays and dependencies (read back by get/list,
     * except deps: see store_job_deps). */
    job_kind_t kind;
    char parent_id[SKED_ID_LEN]; /* a task's workflow; "" otherwise */
    int graph;                   /* STORE_GRAPH_* bits; kept by the store */
    trigger_rule_t deps_rule;    /* a task's trigger rule */
    int max_active;              /* a workflow's max_active_runs; 0 = no limit */
    int array_count;             /* runs per firing of an array job; 0 = not an array */
    int array_parallel;          /* of those, at most this many going at once; 0 = all */
    store_dep_t *deps;           /* owned; written by create/update (jobs and tasks) */
    size_t ndeps;
    int bad_dep; /* OUT of create/update: the index in deps of an upstream that does not
                    exist (SKED_ENOTFOUND) or closes a cycle (SKED_ECONFLICT); else -1 */
} store_job_t;

/* Fills the decision columns of *job from a parsed spec (name, queue,
 * priority, policies, ...); spec_json is set separately. */
void store_job_from_spec(store_job_t *job, const struct jobspec *spec);
/* The same for a parsed workflow (core/workflow.h): its own job (kind
 * workflow) and one job per task (kind task, its rule, its upstreams by
 * index), for store_workflow_put; tasks has spec->ntasks zeroed entries.
 * spec_json of each is set separately (the canonical documents). */
struct wfspec;
void store_workflow_from_spec(store_job_t *wf, store_job_t *tasks, const struct wfspec *spec);
void store_job_clear(store_job_t *job); /* frees members, zeroes */

typedef struct store_schedule {
    char id[SKED_ID_LEN];
    char job_id[SKED_ID_LEN];
    schedule_kind_t kind;
    char *expr;
    char *timezone;
    int64_t start_ms, end_ms, jitter_ms, anchor_ms; /* as schedule_spec_t */
    int64_t next_fire_ms;                           /* -1 = exhausted */
    int64_t last_fire_ms;                           /* -1 = never fired */
} store_schedule_t;

void store_schedule_clear(store_schedule_t *s);

/* Audited changes. The verbs that change a job, a run or a worker on
 * someone's behalf take `audit` (NULL = none): the audit entry recording
 * the change, written in the same transaction, so an acknowledged change
 * always has its entry and a failed one never does. When the entry's target
 * is empty the store fills in what the verb names: the new job's id, the
 * job, run or worker acted on. store_audit_t is declared below. */
typedef struct store_audit store_audit_t;

/* Creates a job with its schedules. job->id/version/created_ms/updated_ms
 * are set by the store (OUT). scheds[i].id/job_id are set by the store;
 * the caller computes scheds[i].next_fire_ms. If run_now, a run with
 * fire_time = now_ms is created in the same transaction (a job with no
 * schedule runs once, now). If idem_key is non-NULL and was already used by
 * the same owner, nothing is created, job->id is set to the earlier job and
 * SKED_EEXIST is returned. SKED_ECONFLICT: the name is taken in the
 * namespace. */
int store_job_create(store_t *st, store_job_t *job, store_schedule_t *scheds, size_t nscheds,
                     bool run_now, const char *idem_key, const store_audit_t *audit,
                     int64_t now_ms);

/* One job of a batch (store_job_create_batch): the job, its schedules and
 * whether it runs now, as store_job_create takes them. All borrowed. */
typedef struct store_job_new {
    store_job_t *job;
    store_schedule_t *scheds;
    size_t nscheds;
    bool run_now;
} store_job_new_t;

#define STORE_BATCH_MAX 1000 /* jobs in one store_job_create_batch */

/* Creates the n jobs of items (1..STORE_BATCH_MAX) as store_job_create
 * creates one, all in one transaction: all of them or none. One audit
 * entry (NULL: none) for the batch, its empty target filled with the first
 * job's id. idem_key (NULL = none) names the whole batch; if the same
 * owner (items[0].job->owner) used it already, nothing is created,
 * items[0].job->id is the first job then created, *earlier (may be NULL)
 * the ids of all of them in their request's order, comma-separated (new;
 * caller frees), or NULL when the key made a single job (store_job_create),
 * and SKED_EEXIST is returned. SKED_ECONFLICT: the name of item *bad is
 * taken in its namespace (by a job, or by an earlier item);
 * SKED_ENOTFOUND: a dependency of item *bad names no job (its bad_dep). */
int store_job_create_batch(store_t *st, store_job_new_t *items, size_t n, const char *idem_key,
                           const store_audit_t *audit, int64_t now_ms, size_t *bad, char **earlier);

/* Reads a job (any state but deleted) and, if scheds is non-NULL, its
 * schedules (new array in *scheds, count in *nscheds; caller frees each
 * with store_schedule_clear and the array with free). SKED_ENOTFOUND. */
int store_job_get(store_t *st, const char *id, store_job_t *out, store_schedule_t **scheds,
                  size_t *nscheds);

/* The order of a job list. Ties are broken by id, in the key's direction.
 * JOB_SORT_CREATED_DESC, newest first, is the default (zero). */
typedef enum job_sort {
    JOB_SORT_CREATED_DESC = 0, /* "-created" */
    JOB_SORT_CREATED,          /* "created" */
    JOB_SORT_NAME,             /* "name": byte order on both engines */
    JOB_SORT_NAME_DESC,        /* "-name" */
    JOB_SORT_PRIORITY,         /* "priority": lowest first */
    JOB_SORT_PRIORITY_DESC,    /* "-priority" */
    JOB_SORT_COUNT
} job_sort_t;

/* The sort's name as the API spells it ("-created", "name", ...); parse
 * returns 0 and sets *out, or SKED_EINVAL for a name not in the list. */
const char *job_sort_name(job_sort_t s);
int job_sort_parse(const char *s, job_sort_t *out);

typedef struct store_job_filter {
    const char *ns;     /* NULL = any */
    const char *state;  /* NULL = any but deleted */
    const char *queue;  /* NULL = any */
    const char *name;   /* substring match; NULL = any */
    const char *tag;    /* exact tag; NULL = any */
    const char *cursor; /* opaque, from a previous page; NULL = first page */
    int limit;          /* 1..1000 */
    const char *ns_in;  /* comma-separated namespaces the job must be in; NULL = any */
    job_kind_t kind;    /* jobs (the default) or workflows; tasks are listed by their workflow */
    job_sort_t sort;    /* the order; a cursor pages only the sort that made it */
} store_job_filter_t;

/* Lists jobs in f->sort order (newest first by default). *out is a new
 * array of *n jobs (clear each, free the array). *next_cursor is new
 * (caller frees) or NULL on the last page. A cursor carries its sort's key:
 * one made under another sort is SKED_EINVAL. */
int store_job_list(store_t *st, const store_job_filter_t *f, store_job_t **out, size_t *n,
                   char **next_cursor);

/* Replaces a job's spec and schedules (schedules are recomputed by the
 * caller: it passes the new set with next_fire_ms filled in). Succeeds only
 * if the stored version equals expect_version (0 = don't check):
 * SKED_EPRECOND otherwise. Bumps version (OUT in job->version). Also
 * updates the priority and queue of the job's not-yet-claimed runs. */
int store_job_update(store_t *st, store_job_t *job, int64_t expect_version,
                     store_schedule_t *scheds, size_t nscheds, const store_audit_t *audit,
                     int64_t now_ms);

/* Pause (JOB_PAUSED), resume (JOB_ACTIVE) or delete (JOB_DELETED) a job.
 * Delete cancels its scheduled/waiting/pending runs and asks its running
 * runs to cancel. Resume leaves next_fire_ms as it was, so the scheduler
 * applies the misfire policy to what was missed. SKED_ENOTFOUND. */
int store_job_set_state(store_t *st, const char *id, job_state_t state, const store_audit_t *audit,
                        int64_t now_ms);

/* ---- firing ------------------------------------------------------------- */

/* A schedule that is due, with what the scheduler needs of its job. */
typedef struct store_due {
    store_schedule_t sched;
    misfire_policy_t misfire;
    overlap_policy_t overlap;
    int64_t catch_up_window_ms;
} store_due_t;

/* Schedules of active jobs with next_fire_ms <= until_ms, oldest first, at
 * most limit. *out new array (clear each .sched, free array). */
int store_due_schedules(store_t *st, int64_t until_ms, int limit, store_due_t **out, size_t *n);

/* One run the scheduler wants created. */
typedef struct store_fire_run {
    int64_t fire_ms;       /* the nominal fire time (unique per schedule) */
    int64_t not_before_ms; /* fire_ms + jitter */
    run_state_t state;     /* RUN_SCHEDULED (normal) or RUN_SKIPPED (misfire) */
    const char *reason;    /* why skipped, e.g. "misfire: server was down" */
} store_fire_run_t;

/* A stretch of consecutive fire times of one schedule that the misfire
 * policy passed over, for one reason: the missed-fire ledger. After a day
 * down, a per-second job leaves one entry, not 86,400 skipped runs, and
 * "why didn't it run at T?" is still answered for any T in the stretch. */
typedef struct store_miss {
    char id[SKED_ID_LEN]; /* "mis_..." */
    char job_id[SKED_ID_LEN];
    char schedule_id[SKED_ID_LEN];
    int64_t first_ms, last_ms; /* the first and the last missed fire time */
    int64_t count;             /* fire times in the stretch */
    char *reason;              /* e.g. "misfire: skip (the server was down ...)" */
    int64_t created_ms;
} store_miss_t;

void store_miss_clear(store_miss_t *m);

/* The fire times of one advance that did not run (misfire), all before its
 * runs: count 0 = none. prev_ms is the fire time before first_ms (the
 * schedule's last_fire_ms as read): a stretch that goes on from one an
 * earlier advance recorded, for the same reason, extends that entry
 * instead of starting another. */
typedef struct store_fire_miss {
    int64_t first_ms, last_ms, count, prev_ms;
    const char *reason;
} store_fire_miss_t;

/* One schedule's advance: a compare-and-set on next_fire_ms plus the runs
 * and the missed stretch it produces. */
typedef struct store_fire {
    const char *schedule_id;
    int64_t expect_next_ms; /* the next_fire_ms the scheduler read */
    int64_t new_next_ms;    /* -1 = exhausted */
    const store_fire_run_t *runs;
    size_t nruns;
    store_fire_miss_t miss;
    int applied; /* OUT: 1 if the CAS held and the runs were inserted, 0 if another server won */
} store_fire_t;

/* Applies each item atomically (items are independent: one lost CAS does not
 * affect the others). Runs are inserted with ON CONFLICT(schedule_id,
 * fire_time) DO NOTHING, so a (schedule, fire time) yields at most one run
 * (promise §5.2); the missed stretch goes to the ledger under the same CAS,
 * so it is recorded once however many servers fire. All items share one
 * commit. Returns 0 or an error. */
int store_fire(store_t *st, store_fire_t *items, size_t n, int64_t now_ms);

typedef struct store_miss_filter {
    const char *job_id; /* required */
    int64_t at_ms;      /* INT64_MIN = every entry; else only the entry covering this instant */
    const char *cursor; /* opaque, from a previous page; NULL = first page */
    int limit;          /* 1..1000 */
} store_miss_filter_t;

/* Lists a job's ledger entries, the latest stretch first. Same paging and
 * ownership as store_job_list. */
int store_miss_list(store_t *st, const store_miss_filter_t *f, store_miss_t **out, size_t *n,
                    char **next_cursor);

/* Creates a run of job_id now (trigger). OUT: run_id. SKED_ENOTFOUND, or
 * SKED_ECONFLICT for a deleted job. */
int store_run_trigger(store_t *st, const char *job_id, const store_audit_t *audit, int64_t now_ms,
                      char run_id[SKED_ID_LEN]);

/* The earliest not_before_ms of a scheduled/pending run of an active job
 * (*out_ms, -1 if none): when a waiting claim should next look. Returns 0
 * or an error (the store could not be read: *out_ms is then -1 too). */
int store_next_claimable_ms(store_t *st, int64_t *out_ms);
/* The earliest next_fire_ms of any active schedule (*out_ms, -1 if none);
 * 0 or an error, as above. */
int store_next_fire_ms(store_t *st, int64_t *out_ms);

/* ---- runs --------------------------------------------------------------- */

typedef struct store_run {
    char id[SKED_ID_LEN];
    char job_id[SKED_ID_LEN];
    char schedule_id[SKED_ID_LEN]; /* "" for triggered runs */
    char worker_id[SKED_ID_LEN];   /* "" unless running (or last worker) */
    run_state_t state;
    int64_t fire_ms;
    int64_t not_before_ms;
    int priority;
    char *queue;
    int attempt;              /* attempts started so far; the current one when running */
    int64_t fence;            /* fencing token of the current lease */
    int64_t lease_expires_ms; /* -1 unless running */
    bool cancel_requested;
    int64_t created_ms, started_ms, finished_ms; /* -1 if not yet */
    int exit_code;                               /* of the last attempt; -1 if none */
    int signal;                                  /* of the last attempt; 0 if none */
    char *reason;                                /* why skipped/failed/canceled; NULL if none */
    int64_t log_bytes;                           /* stored log bytes over all attempts */
    bool log_truncated;
    char parent_id[SKED_ID_LEN];               /* its workflow run or array run; "" = none */
    int array_index;                           /* its index in an array run; -1 = none */
    trigger_rule_t deps_rule;                  /* with upstreams: how they combine, */
    int deps_n, deps_ok, deps_fail, deps_skip; /* how many, and how many ended so */
} store_run_t;

void store_run_clear(store_run_t *r);

typedef struct store_attempt {
    int n; /* 1-based */
    char worker_id[SKED_ID_LEN];
    int64_t fence;
    int64_t started_ms, finished_ms; /* finished -1 while running */
    attempt_outcome_t outcome;       /* valid when finished */
    int exit_code;                   /* -1 if none */
    int signal;                      /* 0 if none */
    char *reason;                    /* NULL if none */
    char *result; /* the JSON text the attempt reported (store_result_t); NULL = none */
} store_attempt_t;

void store_attempt_clear(store_attempt_t *a);

/* Reads a run and, if attempts is non-NULL, all its attempts (new array). */
int store_run_get(store_t *st, const char *id, store_run_t *out, store_attempt_t **attempts,
                  size_t *nattempts);

/* A run's progress checkpoint (docs/results.md): the latest text one of
 * its attempts shipped, kept across attempts so a retry resumes from it,
 * and deleted with the run. */
typedef struct store_checkpoint {
    int attempt;   /* the attempt that shipped it; 0 = no checkpoint (data NULL) */
    int64_t at_ms; /* when it was stored */
    char *data;    /* UTF-8 text without NUL; NULL = none */
    size_t len;    /* bytes of data */
} store_checkpoint_t;

void store_checkpoint_clear(store_checkpoint_t *c); /* frees data, zeroes */

/* store_run_get in one snapshot with the run's checkpoint: *cp (may be
 * NULL = not wanted) is filled, cp->data NULL when the run has none. */
int store_run_get_detail(store_t *st, const char *id, store_run_t *out, store_attempt_t **attempts,
                         size_t *nattempts, store_checkpoint_t *cp);

/* The result of a run: the JSON text its latest attempt (runs.attempt, the
 * attempt that ended a finished run) reported, new in *json (caller frees),
 * or NULL when that attempt reported none. SKED_ENOTFOUND: no such run. */
int store_run_result(store_t *st, const char *id, char **json);

typedef struct store_run_filter {
    const char *job_id; /* NULL = any */
    const char *state;  /* run state name; NULL = any */
    int64_t since_ms;   /* fire_ms >= since; INT64_MIN = unbounded */
    int64_t until_ms;   /* fire_ms < until; INT64_MAX = unbounded */
    const char *cursor;
    int limit; /* 1..1000 */
} store_run_filter_t;

/* Lists runs newest fire time first (ties by id). Same paging as jobs. */
int store_run_list(store_t *st, const store_run_filter_t *f, store_run_t **out, size_t *n,
                   char **next_cursor);
/* Finished runs of one minute by outcome: n[state - RUN_SUCCEEDED] counts
 * succeeded, failed, canceled and skipped runs. */
typedef struct store_run_minute {
    int64_t n[4];
} store_run_minute_t;

/* Counts the runs that finished (finished_ms, any terminal state) in each of
 * `minutes` minutes from from_ms (a whole minute, ms since the epoch):
 * out[i] (caller's array of `minutes`, 1..1440; zeroed here) is minute
 * from_ms + i * 60000. ns_in: only runs of jobs in one of these
 * comma-separated namespaces (NULL = any). One query over runs_finished. */
int store_run_minutes(store_t *st, int64_t from_ms, int minutes, const char *ns_in,
                      store_run_minute_t *out);

/* store_run_list limited to runs whose job is in one of ns_in (comma-separated
 * namespaces; NULL = any). A separate verb rather than a filter field, so
 * the filter's positional initialisers elsewhere stay complete. */
int store_run_list_in(store_t *st, const store_run_filter_t *f, const char *ns_in,
                      store_run_t **out, size_t *n, char **next_cursor);

/* ---- workflows and group runs --------------------------------------------- */

/* Creates (expect_version < 0) or replaces (expect_version 0 = any, else
 * If-Match: SKED_EPRECOND) workflow wf with its schedules and its tasks
 * (each a job: name, spec, policies, deps_rule, and deps whose .task are
 * indices into tasks). On create wf->id is set (and idem_key, if given,
 * is claimed as a job create's is: SKED_EEXIST with the earlier id). On
 * replace, tasks keep their ids by name and the ones no longer named are
 * deleted (their waiting runs canceled); runs of the workflow already
 * going keep the tasks and edges they started with. Each task's id is set.
 * SKED_ECONFLICT: the workflow's name is taken. */
int store_workflow_put(store_t *st, store_job_t *wf, store_schedule_t *scheds, size_t nscheds,
                       store_job_t *tasks, size_t ntasks, int64_t expect_version,
                       const char *idem_key, const store_audit_t *audit, int64_t now_ms);
/* The workflow's tasks (not deleted), by name, with their deps (job ids
 * and indices into *out). New array; clear each, free it. */
int store_workflow_tasks(store_t *st, const char *workflow_id, store_job_t **out, size_t *n);

/* A group run's counts (run_groups). A group waits for room (started
 * false: max_active_runs, overlap) or for its upstreams before it has
 * members. */
typedef struct store_group {
    bool is_group; /* it has its counts: it started, or waits for room (else: for upstreams) */
    bool started;
    int n, open, ok, failed, canceled, skipped, parallel;
} store_group_t;

/* A member of a group run: the run and, for a task, its name. */
typedef struct store_member {
    store_run_t run;
    char *name; /* the task's name; for an array's member, the array job's */
} store_member_t;
void store_member_clear(store_member_t *m);

/* Reads group run run_id, its counts and its members (new array, by
 * array index then id). SKED_ENOTFOUND; SKED_EINVAL when the run is no
 * group run. */
int store_group_get(store_t *st, const char *run_id, store_run_t *run, store_group_t *g,
                    store_member_t **members, size_t *n);

/* A job's top-level runs, newest first, with their group counts (is_group
 * false for a plain run): a workflow's runs. Paged as store_run_list. */
typedef struct store_grouped {
    store_run_t run;
    store_group_t group;
} store_grouped_t;
int store_group_list(store_t *st, const char *job_id, const char *cursor, int limit,
                     store_grouped_t **out, size_t *n, char **next_cursor);

/* Retries member member_id of workflow run group_id (failed, canceled or
 * skipped; else SKED_ECONFLICT), alone or with every member downstream of
 * it: each starts over with a fresh retry budget, the one named at once,
 * the others when their upstreams allow; the workflow run goes on
 * (running again if it had ended). SKED_ENOTFOUND: no such workflow run
 * or member of it; SKED_ECONFLICT: the workflow run was canceled, or the
 * workflow (or that task, replaced away) was deleted. */
int store_group_retry(store_t *st, const char *group_id, const char *member_id, bool downstream,
                      const store_audit_t *audit, int64_t now_ms);

/* Cancels a run: a non-running, non-terminal run becomes canceled at once;
 * a running one gets cancel_requested (its worker learns it on its next
 * heartbeat, kills the attempt and completes it as canceled). Terminal:
 * SKED_ECONFLICT. */
int store_run_cancel(store_t *st, const char *id, const char *reason, const store_audit_t *audit,
                     int64_t now_ms);

/* ---- workers and the worker protocol ----------------------------------- */

typedef enum worker_state {
    WORKER_ACTIVE = 0,
    WORKER_DRAINING,
    WORKER_LOST,
    WORKER_GONE
} worker_state_t;
_Static_assert(WORKER_ACTIVE == 0 && WORKER_DRAINING == 1 && WORKER_LOST == 2 && WORKER_GONE == 3,
               "workers.state holds these numbers (and the SQL spells them)");
const char *worker_state_name(worker_state_t s);

typedef struct store_worker {
    char id[SKED_ID_LEN];
    char *name;
    char *host;
    char *labels; /* "k=v,..." sorted */
    char *queues; /* "a,b" */
    int slots;
    int running; /* runs it currently holds (computed) */
    worker_state_t state;
    int64_t registered_ms, heartbeat_ms;
    char *owner; /* register: the id of the token that registers it (IN); the worker
                    protocol verbs then act for it only when called with that owner */
    char *ns;    /* register: the namespace its token is scoped to ("" = all, IN); it
                    claims runs of that namespace's jobs only */
    char *types; /* the plugin types it runs, ",noop,sql," ("" or NULL = none; shell and
                    http are every worker's and never listed) */
    struct store_plugin_type *plugins; /* register (IN, owned): what it advertised of each
                                          of its types, upserted into the registry */
    size_t nplugins;
} store_worker_t;

void store_worker_clear(store_worker_t *w);

/* A plugin type as the registry keeps it: the latest of what workers (and
 * servers loading a plugin dir) advertised. */
typedef struct store_plugin_type {
    char type[64];     /* [a-z][a-z0-9_-]{0,62} */
    char *version;     /* the plugin's version, "1.2.0" */
    int abi;           /* the plugin ABI it was built against */
    char *schema_json; /* the JSON Schema of its config (compact JSON text) */
    int64_t first_seen_ms, seen_ms;
} store_plugin_type_t;

void store_plugin_type_clear(store_plugin_type_t *p);

/* Upserts n plugin types into the registry (also done by
 * store_worker_register for what the worker advertised). A type new to
 * the registry is inserted; a known one takes the advertised version, ABI
 * and schema when that version is not older than the stored one (versions
 * compare by their dot-separated numbers, then as text), and its seen_ms
 * becomes now in any case. */
int store_plugin_upsert(store_t *st, const store_plugin_type_t *p, size_t n, int64_t now_ms);
/* The registry's entry of type. SKED_ENOTFOUND when no worker or server
 * ever advertised it. *out is filled (clear it). */
int store_plugin_get(store_t *st, const char *type, store_plugin_type_t *out);
/* Every registered type, by name. *out is a new array of *n (clear each,
 * free the array). */
int store_plugin_list(store_t *st, store_plugin_type_t **out, size_t *n);

/* Registers a worker (new id in w->id, OUT), bound to w->owner and
 * w->ns, running w->types, and upserts w->plugins into the plugin type
 * registry (store_plugin_upsert) in the same unit. A worker with the same name and owner that is
 * not active is replaced (its id is reused) so restarts keep history tidy; a worker of another
 * owner is never taken over. */
int store_worker_register(store_t *st, store_worker_t *w, const store_audit_t *audit,
                          int64_t now_ms);
int store_worker_get(store_t *st, const char *id, store_worker_t *out);
/* Lists the pool (every worker but gone ones) by name, then id: one page of
 * at most limit (1..1000) workers after cursor (opaque, from a previous
 * page's next_cursor; NULL = the first page). *out is a new array of *n
 * workers (clear each, free the array); *next_cursor is new (caller frees)
 * or NULL on the last page. SKED_EINVAL: a bad limit or cursor. */
int store_worker_list(store_t *st, const char *cursor, int limit, store_worker_t **out, size_t *n,
                      char **next_cursor);
/* Every worker-protocol verb below takes `owner`: the id of the calling
 * token. The verb acts only for a worker registered by that token (or a
 * run held by such a worker) and answers SKED_EFORBID otherwise; NULL
 * means the caller may act for any worker (an admin, or the server's own
 * embedded worker). */

/* Stops handing work to a worker; its running runs finish. SKED_ENOTFOUND,
 * SKED_EFORBID. */
int store_worker_drain(store_t *st, const char *id, const char *owner, const store_audit_t *audit,
                       int64_t now_ms);
/* A worker going away cleanly (after a drain): state gone. */
int store_worker_deregister(store_t *st, const char *id, const char *owner,
                            const store_audit_t *audit, int64_t now_ms);

/* A run handed to a worker by a claim. */
typedef struct store_claimed {
    store_run_t run; /* state running, with its new fence and lease */
    char *spec_json; /* the job's canonical spec */
    int64_t timeout_ms;
    char job_name[256];
    /* The run's checkpoint (a retry's: what an earlier attempt shipped),
     * which the worker hands the new attempt at $SKED_CHECKPOINT_IN; data
     * NULL = none. Read only for a run leased before (attempt > 1), so the
     * claim of a first attempt runs no statement for it. */
    store_checkpoint_t checkpoint;
    /* A run with upstreams (a workflow task, a job with depends_on): their
     * results as one JSON object {name: result}, which the worker hands the
     * attempt at $SKED_UPSTREAM_RESULTS; NULL = none (and no statement for
     * a run without upstreams). */
    char *upstream_results;
} store_claimed_t;

void store_claimed_clear(store_claimed_t *c);

/* Claims up to max runs for worker_id: scheduled/pending runs with
 * not_before <= now of active jobs, in the worker's queues (and its
 * namespace, if it has one), whose constraints its labels satisfy,
 * respecting each job's max_concurrency and
 * overlap policy (forbid: a due run while another of the job runs is
 * skipped with reason "overlap"; replace: the running one is asked to
 * cancel and the new one waits), ordered by priority with aging (+1 per
 * minute waited, capped at +100), then fire time. Each becomes running
 * with attempt+1, a new random fence, an attempt row, and an *unconfirmed*
 * lease: lease_expires = now + confirm_ms, the short window in which the
 * worker must report the attempt started (store_heartbeat with started)
 * before the reaper takes the run back, uncharged. Refreshes the worker's
 * heartbeat. A draining worker gets 0 runs; SKED_ENOTFOUND for an unknown
 * worker. */
int store_claim(store_t *st, const char *worker_id, const char *owner, int max, int64_t confirm_ms,
                int64_t now_ms, store_claimed_t **out, size_t *n);

/* store_claim that also takes runs due within ahead_ms after now (0 to
 * STORE_AHEAD_MAX_MS), so a worker can confirm them before their time and
 * start them at it. Such a run is leased now, but its started_at (and its
 * attempt's) is its due time; and while another run of its job is running
 * it is left until it is due, so overlap and concurrency are judged at
 * its time, as without ahead. */
#define STORE_AHEAD_MAX_MS 1000
int store_claim_ahead(store_t *st, const char *worker_id, const char *owner, int max,
                      int64_t confirm_ms, int64_t ahead_ms, int64_t now_ms, store_claimed_t **out,
                      size_t *n);

/* One run a worker holds, as it reports in a heartbeat. */
typedef struct store_held {
    const char *run_id;
    int64_t fence;
    bool started; /* the attempt's process is running: confirms an unconfirmed lease */
    bool keep;    /* OUT: false = stop it now (canceled, or the lease was lost) */
    /* The attempt's new checkpoint (UTF-8 text without NUL, at most
     * RESULTS_MAX_BYTES of core/results.h), NULL = unchanged. */
    const char *checkpoint;
} store_held_t;

/* Heartbeat: refreshes the worker, renews the lease of every held run whose
 * (worker, fence) still matches to now + lease_ms, and tells which to kill.
 * A run whose lease is still unconfirmed is confirmed (and renewed) only
 * when reported started; otherwise its short lease is left as it is.
 * A held run's checkpoint replaces the run's in the same unit, only when
 * its lease was renewed (keep): a stale fence, another worker's run or a
 * run asked to cancel stores nothing. A heartbeat that carries no
 * checkpoint runs no statement for them.
 * *draining OUT: the worker should claim no more. SKED_ENOTFOUND for an
 * unknown worker (it should re-register); SKED_EINVAL for a checkpoint
 * over the cap. */
int store_heartbeat(store_t *st, const char *worker_id, const char *owner, store_held_t *held,
                    size_t nheld, int64_t lease_ms, int64_t now_ms, bool *draining);

/* What a worker reports when an attempt ends. */
typedef struct store_result {
    attempt_outcome_t outcome;
    int exit_code;      /* -1 if none */
    int signal;         /* 0 if none */
    const char *reason; /* NULL or a short text, e.g. "exec: No such file or directory" */
    /* The JSON text the attempt wrote to $SKED_RESULT_FILE (one JSON value,
     * checked by the caller), stored with the attempt; NULL = none. */
    const char *result;
    /* The attempt's last checkpoint when it changed since the last
     * heartbeat (as store_held_t), stored before the attempt ends so a
     * retry resumes from it; NULL = unchanged. */
    const char *checkpoint;
} store_result_t;

/* Completes attempt `attempt` of run_id held with `fence`. Succeeded ->
 * succeeded. Failed/timeout -> scheduled again with not_before = now +
 * backoff (the store draws the jitter) while attempts remain, else failed.
 * Canceled -> canceled. Not started (the worker never began it: its lease
 * was over before it could) -> due again at once, the attempt undone: its
 * row and log removed and the attempt count not charged. A repeat of an already-applied completion
 * with the same fence returns 0 and changes nothing (retries after a lost answer are safe). A fence
 * that is not the run's current one: SKED_ESTALE; a run held by a worker of another owner:
 * SKED_EFORBID. The result is written by the statement that finishes the
 * attempt and the checkpoint by one more, only when there is one; a stale
 * or repeated completion stores neither. An attempt not started stores
 * neither (it is undone). SKED_EINVAL: either over RESULTS_MAX_BYTES. */
int store_complete(store_t *st, const char *run_id, int attempt, int64_t fence, const char *owner,
                   const store_result_t *res, int64_t now_ms);

/* One completion of a batch (store_complete_batch). */
typedef struct store_completion {
    const char *run_id;
    int attempt;
    int64_t fence;
    store_result_t res;
    int rc; /* OUT: what store_complete would have returned for it alone */
} store_completion_t;

/* Worker worker_id (of owner: SKED_EFORBID otherwise, SKED_ENOTFOUND for
 * an unknown or gone worker; its heartbeat is refreshed) completes n
 * attempts (at most STORE_COMPLETE_BATCH_MAX) in one unit of work — one
 * durable commit — each exactly as store_complete would, with
 * its own answer in items[i].rc (0, SKED_ESTALE, SKED_EFORBID,
 * SKED_ENOTFOUND, SKED_EINVAL): a stale or foreign item changes nothing and
 * the others go on. Returns 0, or an error when the unit failed as a whole:
 * then none of it applied (a retry of the whole batch is safe, repeats
 * being no-ops). */
#define STORE_COMPLETE_BATCH_MAX 1000
int store_complete_batch(store_t *st, const char *worker_id, const char *owner,
                         store_completion_t *items, size_t n, int64_t now_ms);
/* store_complete_batch, then, in the same unit of work, store_claim_ahead of up
 * to claim_max runs (0: none) for the slots those completions freed: a busy
 * worker's one round trip and one commit per run. *claimed and *nclaimed as
 * store_claim's out/n (left empty when the unit failed). */
int store_complete_claim(store_t *st, const char *worker_id, const char *owner,
                         store_completion_t *items, size_t n, int claim_max, int64_t confirm_ms,
                         int64_t ahead_ms, int64_t now_ms, store_claimed_t **claimed,
                         size_t *nclaimed);

/* Reaper: running runs whose lease_expires_ms + grace_ms < now become the
 * next attempt (scheduled, with backoff, attempt outcome "lost") or failed
 * or canceled (if cancel was requested); an unconfirmed lease that ran out
 * is undone as "not started" (see store_complete): due again at once,
 * uncharged. Workers whose heartbeat is older
 * than heartbeat_timeout_ms become lost. Returns the number of runs
 * changed, or an error. Safe to run on every server at once. */
int store_reap(store_t *st, int64_t grace_ms, int64_t heartbeat_timeout_ms, int64_t now_ms);

/* ---- logs --------------------------------------------------------------- */

#define STORE_LOG_CAP_DEFAULT (1024 * 1024) /* bytes kept per run */

typedef struct store_log_chunk {
    int attempt;
    int64_t seq; /* per (run, attempt), increasing from 0 */
    int stream;  /* 1 stdout, 2 stderr, 0 = sked's own note (e.g. truncation) */
    int64_t at_ms;
    char *data; /* not NUL-safe: use len */
    size_t len;
} store_log_chunk_t;

void store_log_chunk_clear(store_log_chunk_t *c);

/* Appends a chunk to attempt `attempt` of run_id, if fence is the run's
 * current one (SKED_ESTALE otherwise). Chunks are idempotent by (run,
 * attempt, seq): a repeated seq is ignored. Beyond the per-run cap the data
 * is dropped and one stream-0 note "log truncated at N bytes" is stored. */
int store_log_append(store_t *st, const char *run_id, int attempt, int64_t fence, const char *owner,
                     int64_t seq, int stream, const char *data, size_t len, int64_t now_ms);

/* Reads chunks of run_id (attempt 0 = all attempts) in (attempt, seq) order
 * after position (after_attempt, after_seq) — pass (0, -1) for the start —
 * at most limit chunks. *out new array. */
int store_log_read(store_t *st, const char *run_id, int attempt, int after_attempt,
                   int64_t after_seq, int limit, store_log_chunk_t **out, size_t *n);

/* ---- retention ---------------------------------------------------------- */

/* Deletes log chunks and finished runs (terminal, finished before
 * older_than_ms) with their attempts; job definitions are kept. Works in
 * bounded batches. Returns the number of runs removed or an error. */
int store_prune(store_t *st, int64_t older_than_ms);

/* ---- events ------------------------------------------------------------- */

/* The event log: every change of a job, run or worker, written in the
 * transaction that made it (by triggers in the schema, so no verb can
 * forget one), numbered by a growing id. Types: job.created, job.updated,
 * job.paused, job.resumed, job.done, job.deleted; run.scheduled,
 * run.pending, run.waiting, run.skipped (as created), run.claimed (leased,
 * not yet confirmed), run.started (the worker confirmed it), run.retrying
 * (an attempt ended and the next is scheduled), run.requeued (a claim that
 * never started was undone), run.cancel_requested, run.succeeded,
 * run.failed, run.canceled; worker.registered, worker.draining,
 * worker.lost, worker.gone; alert.opened, alert.resolved, alert.acked
 * (detail: "<alert id> <condition>: <what happened or why it cleared>"). */
typedef struct store_event {
    int64_t id;
    int64_t at_ms;
    char *type;
    char *ns;                    /* the job's namespace; a worker's ("" = all) */
    char job_id[SKED_ID_LEN];    /* "" for worker events */
    char run_id[SKED_ID_LEN];    /* "" unless a run event */
    char worker_id[SKED_ID_LEN]; /* the worker concerned, if any */
    int attempt;                 /* run events: the run's attempt count */
    char *detail;                /* the run's reason, if any; NULL */
    char alert_id[SKED_ID_LEN];  /* alert events: the alert; else "" */
} store_event_t;

void store_event_clear(store_event_t *e);

/* Reads up to limit (1..1000) events with id > after_id, in id order. Only
 * final ids are served: ids that no transaction still running can fill
 * in, so a reader that resumes after the last id it saw misses nothing
 * (on PostgreSQL ids are drawn before commit, not in commit order).
 * *pending OUT: newer events exist that are not final yet; read again in a
 * few ms. *out is a new array (clear each, free the array). */
int store_events_read(store_t *st, int64_t after_id, int limit, store_event_t **out, size_t *n,
                      bool *pending);
/* *pruned_through: the highest id retention has deleted (0 = none);
 * *last_id: the newest id written (0 = none). A reader resuming after an
 * id below pruned_through has lost events; one after an id above last_id
 * resumes from another event log. */
int store_events_bounds(store_t *st, int64_t *pruned_through, int64_t *last_id);
/* Deletes events older than older_than_ms, oldest first in bounded
 * batches, but never the newest. Returns the number deleted or an error. */
int store_events_prune(store_t *st, int64_t older_than_ms);

/* ---- tokens ------------------------------------------------------------- */

typedef enum token_role {
    ROLE_ADMIN = 0,
    ROLE_OPERATOR,
    ROLE_USER,
    ROLE_VIEWER,
    ROLE_WORKER,
    ROLE_METRICS /* GET /metrics only: for a Prometheus server */
} token_role_t;
_Static_assert(ROLE_ADMIN == 0 && ROLE_OPERATOR == 1 && ROLE_USER == 2 && ROLE_VIEWER == 3 &&
                   ROLE_WORKER == 4 && ROLE_METRICS == 5,
               "tokens.role and users.role hold these numbers");
const char *token_role_name(token_role_t r);
int token_role_parse(const char *name, token_role_t *out);

typedef struct store_token {
    char id[SKED_ID_LEN];
    char *name; /* who: "admin", a user name, a worker name */
    token_role_t role;
    char *ns;                       /* namespace scope; "" = all */
    int64_t created_ms, expires_ms; /* expires -1 = never */
    bool revoked;
    char *user;           /* the user it acts for; NULL or "" = a standalone token (admin
                             bootstrap, workers, services). A user's token takes the user's
                             current role and namespaces (role/ns above, on lookup). */
    int64_t last_used_ms; /* -1 = never; kept to STORE_TOKEN_TOUCH_MS precision */
} store_token_t;

void store_token_clear(store_token_t *t);

/* Stores a token by the hash of its secret (hash computed by the caller,
 * 32 bytes, hex-encoded here). OUT: t->id. */
int store_token_create(store_t *st, store_token_t *t, const char *hash_hex, int64_t now_ms);
/* Looks up a token by the hash of the presented secret. SKED_ENOTFOUND if
 * absent, revoked or expired at now_ms. */
int store_token_lookup(store_t *st, const char *hash_hex, int64_t now_ms, store_token_t *out);
/* Number of tokens ever created (0 on a fresh store: time to bootstrap). */
int store_token_count(store_t *st, int64_t *count);

/* ---- users, token management and the audit log -------------------------- */

/* One entry of the audit log: who did what to which target, from where,
 * and how it ended. Written for every mutation and every login attempt. */
struct store_audit {
    char id[SKED_ID_LEN]; /* "aud_..."; set by the store */
    int64_t at_ms;
    char *actor;  /* principal name; for a login, the user name given */
    char *role;   /* the actor's role name; "" if unauthenticated */
    char *method; /* "POST" */
    char *route;  /* the route pattern, "/v1/jobs/{id}/pause" */
    char *target; /* id or name acted on; "" if none */
    char *ns;     /* namespace of the target; "" if none */
    char *source; /* client address; "" when unknown */
    int status;   /* the HTTP status answered */
};

void store_audit_clear(store_audit_t *a);

/* Appends an entry (a->id is ignored; the store mints one). Durable on 0. */
int store_audit_append(store_t *st, const store_audit_t *a);

typedef struct store_audit_filter {
    int64_t since_ms;   /* at_ms >= since; INT64_MIN = unbounded */
    const char *actor;  /* exact; NULL = any */
    const char *cursor; /* opaque, from a previous page; NULL = first page */
    int limit;          /* 1..1000 */
} store_audit_filter_t;

/* Lists entries newest first. Same paging and ownership as store_job_list. */
int store_audit_list(store_t *st, const store_audit_filter_t *f, store_audit_t **out, size_t *n,
                     char **next_cursor);

typedef struct store_user {
    char *name;
    char *pwhash; /* crypto_pwhash_str (Argon2id) string; never leaves the server */
    token_role_t role;
    char *namespaces; /* granted: "" = all, else "a,b" */
    int64_t created_ms, updated_ms;
} store_user_t;

void store_user_clear(store_user_t *u);

/* Every user verb takes an optional audit entry (NULL = none) that is
 * written in the same transaction as the change, so a committed change
 * always has its entry. */

/* Creates a user (created/updated set to now_ms). SKED_ECONFLICT: name taken. */
int store_user_create(store_t *st, const store_user_t *u, const store_audit_t *audit,
                      int64_t now_ms);
/* Reads a user by name. SKED_ENOTFOUND. */
int store_user_get(store_t *st, const char *name, store_user_t *out);
/* Every user, by name. *out new array (clear each, free the array). */
int store_user_list(store_t *st, store_user_t **out, size_t *n);
/* Replaces role, namespaces and pwhash of user u->name. SKED_ENOTFOUND. */
int store_user_update(store_t *st, const store_user_t *u, const store_audit_t *audit,
                      int64_t now_ms);
/* Deletes a user and revokes every token that acts for it. SKED_ENOTFOUND. */
int store_user_delete(store_t *st, const char *name, const store_audit_t *audit, int64_t now_ms);

/* store_token_create with an audit entry in the same transaction. */
int store_token_issue(store_t *st, store_token_t *t, const char *hash_hex,
                      const store_audit_t *audit, int64_t now_ms);
/* Reads a token by id, revoked and expired ones included (role and ns as
 * stored on the token, not its user's). SKED_ENOTFOUND. */
int store_token_get(store_t *st, const char *id, store_token_t *out);

typedef struct store_token_filter {
    const char *user;   /* NULL = any; "" = standalone tokens only; else that user's */
    const char *name;   /* exact; NULL = any */
    const char *cursor; /* opaque, from a previous page; NULL = first page */
    int limit;          /* 1..1000 */
} store_token_filter_t;

/* Lists tokens newest first, revoked and expired included. Same paging and
 * ownership as store_job_list. */
int store_token_list(store_t *st, const store_token_filter_t *f, store_token_t **out, size_t *n,
                     char **next_cursor);
/* Revokes a token (again: no change, 0). SKED_ENOTFOUND. */
int store_token_revoke(store_t *st, const char *id, const store_audit_t *audit, int64_t now_ms);

/* last_used_ms is written at most once per this interval per token. */
#define STORE_TOKEN_TOUCH_MS 60000
/* Sets last_used_ms = now_ms unless it is already within
 * STORE_TOKEN_TOUCH_MS of now (so concurrent callers write once). */
int store_token_touch(store_t *st, const char *id, int64_t now_ms);

/* The namespace and owner of a job in any state, deleted included (runs
 * outlive their job's deletion and still need a namespace). New strings
 * (caller frees). SKED_ENOTFOUND. */
int store_job_scope(store_t *st, const char *id, char **ns, char **owner);

/* ---- explain (read only) ------------------------------------------------ */

/* A run with what explains it: its current attempt (running) or its last. */
typedef struct store_explain_run {
    store_run_t run;
    bool unconfirmed;     /* running, and its worker has not reported the start yet */
    store_attempt_t last; /* last.n == 0: the run has no attempt */
} store_explain_run_t;

#define STORE_EXPLAIN_WINDOW  10000 /* the job's latest runs looked at for unfinished ones */
#define STORE_EXPLAIN_RUNS    100   /* unfinished runs read in full */
#define STORE_EXPLAIN_WORKERS 1000  /* workers of the job's queue read */

/* What GET .../explain decides on, read in one snapshot. */
typedef struct store_explain {
    store_job_t job; /* in any state, deleted included */
    store_schedule_t *scheds;
    size_t nscheds;
    store_explain_run_t target; /* the run asked about, in any state (zeroed when none was) */
    /* The job's unfinished runs among its latest STORE_EXPLAIN_WINDOW: running
     * ones first, then by not_before; at most STORE_EXPLAIN_RUNS. */
    store_explain_run_t *runs;
    size_t nruns;
    int64_t nwaiting; /* unfinished runs of that window that are not running */
    int64_t ndue;     /* of those, scheduled or pending with not_before <= now */
    int64_t running;  /* the job's running runs, all of them */
    /* Workers (not gone) whose queues include the job's queue, heard from
     * last first, at most STORE_EXPLAIN_WORKERS, with ns filled in. */
    store_worker_t *workers;
    size_t nworkers;
    int64_t live_workers; /* active or draining workers heard from since live_since_ms */
} store_explain_t;

/* Reads the facts that explain job_id, or run_id (then job_id may be NULL:
 * the run's job is read), at now_ms. Read only. SKED_ENOTFOUND for an
 * unknown job or run. *out is filled (clear it with store_explain_clear,
 * also after a failure). */
int store_explain(store_t *st, const char *job_id, const char *run_id, int64_t live_since_ms,
                  int64_t now_ms, store_explain_t *out);
void store_explain_clear(store_explain_t *e);

/* ---- figures for GET /metrics ------------------------------------------ */

/* Runs of one queue in one state: for the states a run leaves (scheduled,
 * waiting, pending, running) how many are in it now; for the terminal ones
 * how many ever entered it (a counter: pruning does not lower it). */
typedef struct store_run_count {
    char *queue;
    run_state_t state;
    int64_t n;
} store_run_count_t;

/* The workers in one state, their slots and the runs they hold. */
typedef struct store_worker_count {
    int64_t workers, slots, busy;
} store_worker_count_t;

typedef struct store_counts {
    store_run_count_t *runs; /* by queue (byte order), then state; every pair ever counted */
    size_t nruns;
    store_worker_count_t workers[WORKER_GONE + 1]; /* indexed by worker_state_t */
} store_counts_t;

void store_counts_clear(store_counts_t *c); /* frees members, zeroes */

/* The cluster-wide counts, kept by the store as runs and workers change
 * (in the same transaction as each change), so reading them costs a few
 * rows whatever the number of runs: O(queues x states), not a scan. Every
 * server of a cluster reads the same figures. *out is filled (clear it
 * with store_counts_clear). */
int store_counts(store_t *st, store_counts_t *out);

/* What this process's store handles did, kept with atomics (recording
 * costs no lock): the latency of each durable commit of a write and the
 * writes each commit carried (SQLite's group commit: every write the
 * writer thread found queued; PostgreSQL: 1 per COMMIT, its own WAL
 * group commit being invisible to us), the runs a claim skipped by
 * their job's overlap policy ("forbid"), and on SQLite the writes waiting
 * for the writer thread and the group commits it had to run again. */
typedef struct store_stats {
    prom_hist_t commit_ns;        /* ns from COMMIT sent to COMMIT done */
    prom_hist_t commit_writes;    /* writes per commit */
    prom_counter_t overlap_skips; /* runs skipped at claim: overlap forbid */
    _Atomic int64_t write_queue;  /* SQLite: writes queued, not yet taken by the writer */
    prom_counter_t batch_redos;   /* SQLite: batches run again, each write in a SAVEPOINT,
                                     because one failed after changing something */
} store_stats_t;

/* This process's figures; borrowed, valid for the life of the process.
 * Thread-safe to read and to record into. */
store_stats_t *store_stats(void);

/* ---- settings ----------------------------------------------------------- */

/* Sets the per-run log cap (bytes kept per run) for this store handle;
 * bytes <= 0 restores STORE_LOG_CAP_DEFAULT. Call before serving traffic. */
void store_set_log_cap(store_t *st, int64_t bytes);

/* ---- alerts ------------------------------------------------------------- */

/* An alert rule: a global one (job_id "") or a job's own (its spec's
 * alerts[pos], created and replaced with the job). Its definition is the
 * parsed rule of core/alert.h; a channel's secret is NULL when it has none
 * (the store returns it: never show it). */
typedef struct store_alert_rule {
    char id[SKED_ID_LEN];     /* "arl_..."; set by the store on create */
    char job_id[SKED_ID_LEN]; /* "" = global */
    int pos;                  /* a job's rule: its index in the job's "alerts"; global: -1 */
    alert_rule_spec_t def;    /* name (global: unique), conditions, scope, parameters, channels */
    int64_t version;          /* starts at 1; +1 on every change */
    int64_t created_ms, updated_ms;
} store_alert_rule_t;

/* Fills r->def (replacing it) with a deep copy of spec. */
void store_alert_rule_from_spec(store_alert_rule_t *r, const alert_rule_spec_t *spec);
void store_alert_rule_clear(store_alert_rule_t *r); /* frees members, zeroes */

/* Global rules. create: r->id, version and times OUT; SKED_ECONFLICT: the
 * name is taken. update: replaces the rule's definition if its version is
 * expect_version (0 = any; else SKED_EPRECOND), channels and secrets as
 * given. Open alerts of conditions the rule no longer has are closed
 * without a notice. delete: the rule goes, and
 * its open alerts are closed without a notice. SKED_ENOTFOUND for an
 * unknown id or a job's rule. */
int store_alert_rule_create(store_t *st, store_alert_rule_t *r, const store_audit_t *audit,
                            int64_t now_ms);
int store_alert_rule_get(store_t *st, const char *id, store_alert_rule_t *out);
int store_alert_rule_update(store_t *st, store_alert_rule_t *r, int64_t expect_version,
                            const store_audit_t *audit, int64_t now_ms);
int store_alert_rule_delete(store_t *st, const char *id, const store_audit_t *audit,
                            int64_t now_ms);
/* Lists global rules, oldest first, paged as store_worker_list. */
int store_alert_rule_list(store_t *st, const char *cursor, int limit, store_alert_rule_t **out,
                          size_t *n, char **next_cursor);

/* An alert: one condition of one rule about one subject (a job, a worker,
 * a queue), open until the condition clears. */
typedef struct store_alert {
    char id[SKED_ID_LEN]; /* "alr_..." */
    char rule_id[SKED_ID_LEN];
    alert_cond_t cond;
    char *subject;            /* the job's or worker's id, or the queue's name */
    char *name;               /* the job's, worker's or queue's name when opened */
    char job_id[SKED_ID_LEN]; /* "" when not about a job */
    char *ns;                 /* the job's (a worker's) namespace; "" = none */
    char run_id[SKED_ID_LEN]; /* the run that caused it; "" = none */
    alert_state_t state;
    char *detail;                   /* what happened */
    char *resolve_detail;           /* why it cleared; NULL while open */
    int64_t opened_ms, resolved_ms; /* resolved -1 while open */
    char *acked_by;                 /* NULL = not acknowledged */
    int64_t acked_ms;               /* -1 = not acknowledged */
} store_alert_t;

void store_alert_clear(store_alert_t *a);

typedef struct store_alert_filter {
    int state;          /* -1 = any, else alert_state_t */
    const char *job_id; /* NULL = any */
    int cond;           /* -1 = any, else alert_cond_t */
    const char *ns_in;  /* comma-separated namespaces the alert must be in; NULL = any */
    const char *cursor; /* opaque, from a previous page; NULL = first page */
    int limit;          /* 1..1000 */
} store_alert_filter_t;

/* Lists alerts newest first. Same paging and ownership as store_job_list. */
int store_alert_list(store_t *st, const store_alert_filter_t *f, store_alert_t **out, size_t *n,
                     char **next_cursor);

/* One notice of an alert to one channel, as the outbox holds it. */
typedef enum store_delivery_state {
    DELIVERY_PENDING = 0,
    DELIVERY_SENT,
    DELIVERY_FAILED /* gave up after the last try; last_error says why */
} store_delivery_state_t;

typedef struct store_alert_delivery {
    char id[SKED_ID_LEN]; /* "<alert id>:o<n>" / ":r<n>": opened / resolved notice, channel n */
    alert_event_t event;
    alert_channel_kind_t kind;
    char *target;
    store_delivery_state_t state;
    int tries;               /* sends tried so far */
    int64_t due_ms, sent_ms; /* sent -1 until sent */
    char *last_error;        /* NULL = none; never holds a secret */
} store_alert_delivery_t;

void store_alert_delivery_clear(store_alert_delivery_t *d);

/* Reads an alert and, if deliveries is non-NULL, its notices (new array,
 * oldest first). SKED_ENOTFOUND. */
int store_alert_get(store_t *st, const char *id, store_alert_t *out,
                    store_alert_delivery_t **deliveries, size_t *ndeliveries);

/* Acknowledges an alert: records who and when (a repeat keeps the first).
 * An acknowledged alert still resolves when its condition clears, but no
 * further notice goes out for it. SKED_ENOTFOUND. */
int store_alert_ack(store_t *st, const char *id, const char *who, const store_audit_t *audit,
                    int64_t now_ms);

/* A claimed notice: what the deliverer needs to send it. */
typedef struct store_outbox_item {
    store_alert_delivery_t d;
    char *secret;  /* the channel's; "" = none */
    int64_t claim; /* pass back to store_outbox_settle */
    store_alert_t alert;
} store_outbox_item_t;

void store_outbox_item_clear(store_outbox_item_t *it);

/* Claims up to max due notices for owner (a server's name) until now_ms +
 * lease_ms, oldest due first: a claimed notice is hidden from other
 * claimers until then, and due again after (a deliverer that died holding
 * it). Safe on every server at once (SKIP LOCKED). *out new array. */
int store_outbox_claim(store_t *st, const char *owner, int max, int64_t lease_ms, int64_t now_ms,
                       store_outbox_item_t **out, size_t *n);
/* Settles a claimed notice: sent, or failed with error (no secret in it)
 * and due again at retry_ms (-1 = no more tries: failed for good).
 * SKED_ESTALE when the claim is no longer this one (it expired and
 * another server took it). */
int store_outbox_settle(store_t *st, const char *id, int64_t claim, bool sent, const char *error,
                        int64_t retry_ms, int64_t now_ms);
/* The earliest due_ms of a pending notice (*out_ms, -1 if none). */
int store_outbox_next_due_ms(store_t *st, int64_t *out_ms);

/* The evaluator of the time-based conditions (sla_missed, overrun,
 * missed, backlog) and of what clears worker_lost, one pass at now_ms:
 * opens the alerts whose condition holds and resolves those whose
 * condition cleared, each with its notices in the same transaction.
 * Safe on every server at once: at most one alert per (rule, subject,
 * condition) is open whatever the race. *changed OUT (may be NULL): alerts
 * opened plus resolved. */
int store_alert_sweep(store_t *st, int64_t now_ms, int *changed);

#endif
