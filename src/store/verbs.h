/*
 * The store's verbs, each written once over the SQL driver (db.h) and
 * called by store.c after its argument checks. Same contracts as the
 * store.h functions of the same names (v_X implements store_X).
 *
 * Nothing outside src/store/ includes this.
 */
#ifndef SKED_STORE_VERBS_H
#define SKED_STORE_VERBS_H

#include "store/db.h"
#include "store/store.h"

/* access.c: tokens, users, audit, a job's scope */
/* Writes audit entry a (NULL: nothing) in the running unit of work; target
 * stands in when a's is empty (the id a verb just minted). */
int store__put_audit(db_t *db, const store_audit_t *a, const char *target);
int v_audit_append(store_t *st, const store_audit_t *a);
int v_audit_list(store_t *st, const store_audit_filter_t *f, store_audit_t **out, size_t *n,
                 char **next_cursor);
int v_token_create(store_t *st, store_token_t *t, const char *hash_hex, const store_audit_t *audit,
                   int64_t now_ms);
int v_token_lookup(store_t *st, const char *hash_hex, int64_t now_ms, store_token_t *out);
int v_token_get(store_t *st, const char *id, store_token_t *out);
int v_token_count(store_t *st, int64_t *count);
int v_token_list(store_t *st, const store_token_filter_t *f, store_token_t **out, size_t *n,
                 char **next_cursor);
int v_token_revoke(store_t *st, const char *id, const store_audit_t *audit, int64_t now_ms);
int v_token_touch(store_t *st, const char *id, int64_t now_ms);
int v_user_create(store_t *st, const store_user_t *u, const store_audit_t *audit, int64_t now_ms);
int v_user_update(store_t *st, const store_user_t *u, const store_audit_t *audit, int64_t now_ms);
int v_user_delete(store_t *st, const char *name, const store_audit_t *audit, int64_t now_ms);
int v_user_get(store_t *st, const char *name, store_user_t *out);
int v_user_list(store_t *st, store_user_t **out, size_t *n);
int v_job_scope(store_t *st, const char *id, char **ns, char **owner);

/* runs.c: reading, listing and canceling runs */
int store__read_run(db_t *db, const char *id, store_run_t *out); /* SKED_ENOTFOUND */
int v_run_get(store_t *st, const char *id, store_run_t *out, store_attempt_t **attempts,
              size_t *nattempts, store_checkpoint_t *cp);
int v_run_list(store_t *st, const store_run_filter_t *f, const char *ns_in, store_run_t **out,
               size_t *n, char **next_cursor);
int v_run_minutes(store_t *st, int64_t from_ms, int minutes, const char *ns_in,
                  store_run_minute_t *out);
int v_run_cancel(store_t *st, const char *id, const char *reason, const store_audit_t *audit,
                 int64_t now_ms);

/* workers.c: the worker registry */
int v_worker_register(store_t *st, store_worker_t *w, const store_audit_t *audit, int64_t now_ms);
int v_worker_get(store_t *st, const char *id, store_worker_t *out);
int v_worker_list(store_t *st, const char *cursor, int limit, store_worker_t **out, size_t *n,
                  char **next_cursor);
int v_worker_set_state(store_t *st, const char *id, const char *owner, worker_state_t state,
                       const store_audit_t *audit, int64_t now_ms);

/* plugins.c: the plugin type registry */
/* In the caller's unit of work: store_plugin_upsert. */
int store__plugin_upsert(db_t *db, const store_plugin_type_t *p, size_t n, int64_t now_ms);
int v_plugin_upsert(store_t *st, const store_plugin_type_t *p, size_t n, int64_t now_ms);
int v_plugin_get(store_t *st, const char *type, store_plugin_type_t *out);
int v_plugin_list(store_t *st, store_plugin_type_t **out, size_t *n);

/* meta.c: the store itself */
int v_ping(store_t *st);
int v_probe_write(store_t *st, int64_t now_ms);
int v_set_schema_version(store_t *st, int version);

/* jobs.c: create, get, list, update, pause/resume/delete */
/* In the caller's unit of work: inserts job j (a new id unless j->id is
 * set) with its schedules, alert rules and dependencies; rewrites job j
 * (version expect, 0 = any) with its schedules (ids kept where given),
 * rules and dependencies (SKED_EPRECOND, SKED_ENOTFOUND); sets a job's
 * state (and its tasks'), holding, releasing or canceling its runs. */
int store__job_insert(db_t *db, store_job_t *j, store_schedule_t *scheds, size_t nscheds,
                      int64_t now_ms);
int store__job_rewrite(db_t *db, store_job_t *j, int64_t expect, store_schedule_t *scheds,
                       size_t nscheds, int64_t now_ms);
int store__job_set_state(db_t *db, const char *id, job_state_t state, int64_t now_ms);
int v_job_create(store_t *st, store_job_t *job, store_schedule_t *scheds, size_t nscheds,
                 bool run_now, const char *idem_key, const store_audit_t *audit, int64_t now_ms);
int v_job_create_batch(store_t *st, store_job_new_t *items, size_t n, const char *idem_key,
                       const store_audit_t *audit, int64_t now_ms, size_t *bad, char **earlier);
int v_job_get(store_t *st, const char *id, store_job_t *out, store_schedule_t **scheds,
              size_t *nscheds);
int v_job_list(store_t *st, const store_job_filter_t *f, store_job_t **out, size_t *n,
               char **next_cursor);
int v_job_update(store_t *st, store_job_t *job, int64_t expect_version, store_schedule_t *scheds,
                 size_t nscheds, const store_audit_t *audit, int64_t now_ms);
int v_job_set_state(store_t *st, const char *id, job_state_t state, const store_audit_t *audit,
                    int64_t now_ms);

/* lease.c: claims, heartbeats, completions and the reaper */
int v_claim(store_t *st, const char *worker_id, const char *owner, int max, int64_t confirm_ms,
            int64_t ahead_ms, int64_t now_ms, store_claimed_t **out, size_t *n);
int v_heartbeat(store_t *st, const char *worker_id, const char *owner, store_held_t *held,
                size_t nheld, int64_t lease_ms, int64_t now_ms, bool *draining);
int v_complete(store_t *st, const char *run_id, int attempt, int64_t fence, const char *owner,
               const store_result_t *res, int64_t now_ms);
int v_complete_batch(store_t *st, const char *worker_id, const char *owner,
                     store_completion_t *items, size_t n, int claim_max, int64_t confirm_ms,
                     int64_t ahead_ms, int64_t now_ms, store_claimed_t **claimed, size_t *nclaimed);
int v_reap(store_t *st, int64_t grace_ms, int64_t heartbeat_timeout_ms, int64_t now_ms);

/* logs.c: log chunks and retention */
int v_log_append(store_t *st, const char *run_id, int attempt, int64_t fence, const char *owner,
                 int64_t seq, int stream, const char *data, size_t len, int64_t now_ms);
int v_log_read(store_t *st, const char *run_id, int attempt, int after_attempt, int64_t after_seq,
               int limit, store_log_chunk_t **out, size_t *n);
int v_prune(store_t *st, int64_t older_than_ms);

/* events.c: the event log */
int v_events_read(store_t *st, int64_t after_id, int limit, store_event_t **out, size_t *n,
                  bool *pending);
int v_events_bounds(store_t *st, int64_t *pruned_through, int64_t *last_id);
int v_events_prune(store_t *st, int64_t older_than_ms);

/* fire.c: due schedules, fire and the missed-fire ledger, trigger, when next */
int v_due_schedules(store_t *st, int64_t until_ms, int limit, store_due_t **out, size_t *n);
int v_fire(store_t *st, store_fire_t *items, size_t n, int64_t now_ms);
int v_miss_list(store_t *st, const store_miss_filter_t *f, store_miss_t **out, size_t *n,
                char **next_cursor);
int v_run_trigger(store_t *st, const char *job_id, const store_audit_t *audit, int64_t now_ms,
                  char run_id[SKED_ID_LEN]);
int v_next_claimable_ms(store_t *st, int64_t *out_ms);
int v_next_fire_ms(store_t *st, int64_t *out_ms);

/* alerts.c: rules, alerts, the outbox; the condition hooks of other verbs */
int v_alert_rule_create(store_t *st, store_alert_rule_t *r, const store_audit_t *audit,
                        int64_t now_ms);
int v_alert_rule_get(store_t *st, const char *id, store_alert_rule_t *out);
int v_alert_rule_update(store_t *st, store_alert_rule_t *r, int64_t expect_version,
                        const store_audit_t *audit, int64_t now_ms);
int v_alert_rule_delete(store_t *st, const char *id, const store_audit_t *audit, int64_t now_ms);
int v_alert_rule_list(store_t *st, const char *cursor, int limit, store_alert_rule_t **out,
                      size_t *n, char **next_cursor);
int v_alert_list(store_t *st, const store_alert_filter_t *f, store_alert_t **out, size_t *n,
                 char **next_cursor);
int v_alert_get(store_t *st, const char *id, store_alert_t *out,
                store_alert_delivery_t **deliveries, size_t *ndeliveries);
int v_alert_ack(store_t *st, const char *id, const char *who, const store_audit_t *audit,
                int64_t now_ms);
int v_outbox_claim(store_t *st, const char *owner, int max, int64_t lease_ms, int64_t now_ms,
                   store_outbox_item_t **out, size_t *n);
int v_outbox_settle(store_t *st, const char *id, int64_t claim, bool sent, const char *error,
                    int64_t retry_ms, int64_t now_ms);
int v_outbox_next_due_ms(store_t *st, int64_t *out_ms);

/* In the running unit of work of a job's create (update: true) or update:
 * writes its SLA and replaces its own rules with job->alerts. A create of
 * a job without either writes nothing. */
int store__alerts_put_job(db_t *db, const store_job_t *job, bool update, int64_t now_ms);

/* In the running unit of work of an attempt's end (lease.c): the alerts
 * that end opens and resolves. alerts_open: the job's count of open alerts
 * as the unit read it (0: nothing to resolve, no statement). */
typedef struct store__attempt_end {
    const char *run_id, *job_id;
    int64_t alerts_open;
    attempt_outcome_t outcome;
    run_state_t next;      /* what the run became */
    int attempt;           /* the attempt that ended */
    int64_t retry_at_ms;   /* next == RUN_SCHEDULED: when the retry is due */
    const char *reason;    /* the attempt's reason; NULL = none */
    int exit_code, signal; /* -1 / 0 = none */
} store__attempt_end_t;
int store__alerts_attempt_end(db_t *db, const store__attempt_end_t *e, int64_t now_ms);

/* A worker the reaper just marked lost. */
typedef struct store__lost_worker {
    char id[SKED_ID_LEN];
    char *name, *queues, *ns;
} store__lost_worker_t;
/* In the reaper's unit of work: opens worker_lost alerts for them. */
int store__alerts_workers_lost(db_t *db, const store__lost_worker_t *w, size_t n, int64_t now_ms);

/* Opens an alert of rule_id about subject, unless one is open: then its
 * notices are queued and, for a job's alert, the job's count goes up.
 * *opened OUT (may be NULL). */
int store__alert_open(db_t *db, const char *rule_id, alert_cond_t cond, const char *subject,
                      const char *name, const char *job_id, const char *ns, const char *run_id,
                      const char *detail, int64_t now_ms, bool *opened);
/* Resolves open alert id (why it cleared); its resolved notice is queued
 * unless silent or the alert was acknowledged. *done OUT (may be NULL):
 * it was open. */
int store__alert_resolve(db_t *db, const char *id, const char *why, bool silent, int64_t now_ms,
                         bool *done);

/* Resolves (as store__alert_resolve) every alert whose id q returns in
 * column 0 (q bound, not yet stepped); *count (may be NULL) grows by the
 * alerts it resolved. */
int store__alert_resolve_all(db_t *db, db_q_t *q, const char *why, bool silent, int64_t now_ms,
                             int *count);

/* alerts_sweep.c: the evaluator of the time-based conditions */
int v_alert_sweep(store_t *st, int64_t now_ms, int *changed);
/* explain.c: the facts that explain a job or a run (read only) */
int v_explain(store_t *st, const char *job_id, const char *run_id, int64_t live_since_ms,
              int64_t now_ms, store_explain_t *out);

/* results.c: results and checkpoints (docs/results.md). The store__ helpers
 * run inside the caller's unit of work. */
/* The result of run_id's latest attempt (runs.attempt: for a finished run,
 * the attempt that ended it): new JSON text in *json_out (caller frees), or
 * NULL when that attempt reported none or the run has no attempt yet.
 * SKED_ENOTFOUND: no such run. What a workflow reads of its upstreams. */
int store__run_result(db_t *db, const char *run_id, char **json_out);
/* The results of the run's upstreams as one JSON object {name: result}
 * (a task's name, or an upstream job's; null for an upstream that left
 * none), new in *json_out; NULL when the run has no upstreams. */
int store__upstream_results(db_t *db, const char *run_id, char **json_out);
/* The run's checkpoint into *out (out->data new, NULL when it has none);
 * store_checkpoint_clear frees it. */
int store__checkpoint_read(db_t *db, const char *run_id, store_checkpoint_t *out);
/* Replaces the run's checkpoint with data, only while the run is running
 * on the lease `fence` names; *stored OUT (may be NULL): it was written. */
int store__checkpoint_put(db_t *db, const char *run_id, int64_t fence, const char *data,
                          int64_t now_ms, bool *stored);
int v_run_result(store_t *st, const char *id, char **json);

/* counts.c: the maintained counts behind GET /metrics */
int v_counts(store_t *st, store_counts_t *out);

/* workflows.c: workflows, group runs, retry of a member */
int v_workflow_put(store_t *st, store_job_t *wf, store_schedule_t *scheds, size_t nscheds,
                   store_job_t *tasks, size_t ntasks, int64_t expect_version, const char *idem_key,
                   const store_audit_t *audit, int64_t now_ms);
int v_workflow_tasks(store_t *st, const char *id, store_job_t **out, size_t *n);
int v_group_get(store_t *st, const char *run_id, store_run_t *run, store_group_t *g,
                store_member_t **members, size_t *n);
int v_group_list(store_t *st, const char *job_id, const char *cursor, int limit,
                 store_grouped_t **out, size_t *n, char **next_cursor);
int v_group_retry(store_t *st, const char *group_id, const char *member_id, bool downstream,
                  const store_audit_t *audit, int64_t now_ms);

/* graph.c: workflow runs, job arrays, job dependencies, in the caller's
 * unit of work. */
/* A run was inserted with graph bits (runs.graph): binds its dependencies,
 * starts its group, binds the dependents waiting for its job's next run. */
int store__graph_inserted(db_t *db, const char *run_id, const char *job_id, int graph,
                          run_state_t state, int64_t fire_ms, int64_t now_ms);
/* A run just ended in state (terminal; else nothing): releases or skips
 * its downstream, counts it in its group (parent_id; NULL or "" = none),
 * and as a group (graph bits) stops what is left of it and makes room.
 * Nothing runs when it has no downstream (n_down), no parent and is no
 * group: a plain run's end costs no statement here. */
int store__graph_ended(db_t *db, const char *run_id, run_state_t state, const char *parent_id,
                       int64_t n_down, int graph, const char *job_id, int64_t now_ms);
/* The same, reading the run's facts first (for the paths that do not). */
int store__graph_ended_id(db_t *db, const char *run_id, int64_t now_ms);
/* Decides waiting run run_id again over its counts as they are (after a
 * retry reset them): releases or skips it when they allow. */
int store__graph_recheck(db_t *db, const char *run_id, int64_t now_ms);
/* Job job_id was deleted: the runs waiting for its next run (which will
 * not come) are decided as if it had come and been canceled. */
int store__graph_job_deleted(db_t *db, const char *job_id, int64_t now_ms);
/* Adds the edge up_id -> run_id (cond) to waiting run run_id; when the
 * upstream has already ended (up_state terminal) it counts at once. */
int store__graph_bind(db_t *db, const char *up_id, run_state_t up_state, const char *run_id,
                      dep_cond_t cond, int64_t now_ms);

#endif
