/*
 * The columns of the store's main tables and their row mappers, written
 * once for both dialects (the column lists are the same text in each).
 * A mapper reads the current row of a statement whose select list starts
 * with the table's *_COLS at column `off` (row_sched) or 0 (the others);
 * the void * forms fit db_rows_t for db_page.
 *
 * Nothing outside src/store/ includes this.
 */
#ifndef SKED_STORE_ROWS_H
#define SKED_STORE_ROWS_H

#include "store/db.h"

#define JOB_COLS                                                                                   \
    "id, ns, owner, name, queue, spec_json, constraints, tags, priority, state, overlap,"          \
    " misfire, catch_up_window_ms, max_concurrency, timeout_ms, retry_max_attempts,"               \
    " retry_initial_ms, retry_max_ms, retry_multiplier, retry_jitter, version, created_ms,"        \
    " updated_ms, kind, parent_id, graph, deps_rule, max_active, array_count, array_parallel,"     \
    " type"
#define SCHED_COLS                                                                                 \
    "id, job_id, kind, expr, timezone, start_ms, end_ms, jitter_ms, anchor_ms, next_fire_ms,"      \
    " last_fire_ms"
#define RUN_COLS                                                                                   \
    "id, job_id, schedule_id, worker_id, state, fire_ms, not_before_ms, priority, queue,"          \
    " attempt, fence, lease_expires_ms, cancel_requested, created_ms, started_ms, finished_ms,"    \
    " exit_code, signal, reason, log_bytes, log_truncated, parent_id, array_index, deps_rule,"     \
    " deps_n, deps_ok, deps_fail, deps_skip"
#define RUN_NCOLS 28 /* columns in RUN_COLS: what a query selects after them starts here */
#define WORKER_COLS                                                                                \
    "w.id, w.name, w.host, w.labels, w.queues, w.slots, w.state, w.registered_ms,"                 \
    " w.heartbeat_ms, (SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.state = 3),"     \
    " w.types"
#define WORKER_NCOLS 11 /* columns in WORKER_COLS */

void store__row_job(db_q_t *q, store_job_t *j);
/* A job's five retry columns (retry_max_attempts to retry_jitter, in the
 * order of JOB_COLS) from column off. */
void store__row_retry(db_q_t *q, int off, retry_policy_t *p);
void store__row_sched(db_q_t *q, int off, store_schedule_t *s);
void store__row_run(db_q_t *q, store_run_t *r);
void store__row_worker(db_q_t *q, store_worker_t *w);

/* For db_page: rows of jobs (paged by created_ms), runs (by fire_ms). */
extern const db_rows_t store__job_rows, store__run_rows;

/* Inserts a run of job_id, taking its priority, queue and held (the job is
 * paused) from the job in the same statement; nothing is inserted when the
 * job does not exist. sched_id: NULL for a run that no schedule fired. A
 * terminal state (RUN_SKIPPED) is finished at now_ms, with reason. id OUT:
 * the new run's id. *inserted OUT (may be NULL): false if (schedule, fire
 * time) already had a run (promise §5.2). Does not ask for a wake-up: the
 * caller decides (db_notify). A run of a workflow, an array or a job with
 * dependencies is made waiting and handed to the graph (graph.c), which
 * may start it or release it at once (and then asks for the wake-up). */
int store__insert_run(db_t *db, char id[SKED_ID_LEN], const char *job_id, const char *sched_id,
                      run_state_t state, int64_t fire_ms, int64_t not_before_ms, const char *reason,
                      int64_t now_ms, bool *inserted);

#endif
