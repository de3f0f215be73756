/*
 * The job service: the verbs that change jobs, between the HTTP handlers
 * (api_jobs.c) and the store. A handler parses the request (the body into
 * a jobspec_t or a merge patch, the path's id) and calls one of these with
 * the caller and the request's `now`; the service does the domain work the
 * document's own validation (core/jobspec.c) cannot: it builds the store's
 * records, computes each new schedule's first fire (core/plan.h), carries
 * the firing state of a schedule whose definition an edit left alone
 * (schedule_match), redoes an update a concurrent one overtook, calls the
 * store, wakes the scheduler when a change may fire something, and answers
 * with 0 or a SKED_E* code plus a message naming the field to blame.
 *
 * It knows nothing of HTTP: the handler maps the code to a status through
 * the error table and renders the job. Where a refusal concerns the request
 * rather than the job document (SKED_ENOTFOUND: the path's id;
 * SKED_EPRECOND: the If-Match version) the service leaves the field empty
 * for the handler to name.
 *
 * Authorization is the handler's, done before it calls here: it checks the
 * caller's grants (auth.h) and audits a refusal, as an audit entry records
 * the HTTP request. The principal here is who acts: the owner of a job it
 * creates and the name in the log.
 *
 * Thread-safe as the store is; a jobsvc_call_t belongs to one request.
 */
#ifndef SKED_SERVER_JOBSVC_H
#define SKED_SERVER_JOBSVC_H

#include <jansson.h>
#include <stdint.h>

#include "core/jobspec.h"
#include "core/workflow.h"
#include "server/http.h"
#include "server/sched.h"
#include "store/store.h"

/* One call of the service: who asks, on what, when, and why it failed. */
typedef struct jobsvc_call {
    store_t *st;
    sched_t *sched;              /* woken after a change that may fire; NULL = none */
    const http_principal_t *who; /* NULL = the server itself (owner "") */
    int64_t now_ms;              /* the request's wall clock, UTC ms */
    /* The audit entry of the change, written by the store in the change's
     * own transaction (an empty target: the job's id); NULL = none. */
    const store_audit_t *audit;
    jobspec_error_t err; /* OUT: on failure, the field to blame ("" = none) and why */
} jobsvc_call_t;

/* One job to create (jobsvc_create_item, jobsvc_create_batch). */
typedef struct jobsvc_item {
    const char *ns;           /* resolved and granted by the caller; borrowed */
    const jobspec_t *spec;    /* borrowed */
    store_job_t job;          /* OUT: the stored job */
    store_schedule_t *scheds; /* OUT: its schedules (nscheds) */
    size_t nscheds;
    char *rest;          /* OUT: the members of its canonical document but "schedules", as
                          * text without the braces, which spec_json is made of too: an
                          * answer reuses it instead of writing the document again */
    int rc;              /* OUT: 0, or why this item was refused (err says more) */
    jobspec_error_t err; /* OUT: the field of the item to blame ("" = the item) */
} jobsvc_item_t;

/* jobsvc_create of it->spec in it->ns, its outputs in it (job, scheds,
 * and rest, which an answer can reuse: api_jobs.c). The caller
 * clears it (jobsvc_item_clear) whatever the outcome. */
int jobsvc_create_item(jobsvc_call_t *c, jobsvc_item_t *it, const char *idem_key);

/* Creates a job from spec in namespace ns (resolved and granted by the
 * caller) with its schedules, or, with no schedule, a run now. idem_key:
 * the Idempotency-Key, NULL = none. On 0, *job is the stored job (id,
 * version and times set) and *scheds its *n schedules. SKED_EEXIST: an
 * idempotent repeat, nothing created; job->id names the job first created.
 * SKED_EINVAL: a schedule does not compile (now); SKED_ECONFLICT: the name
 * is taken in the namespace; or a store error. Whatever the outcome the
 * caller clears *job (store_job_clear) and frees *scheds
 * (sched_array_free); both start zeroed. */
int jobsvc_create(jobsvc_call_t *c, const char *ns, const jobspec_t *spec, const char *idem_key,
                  store_job_t *job, store_schedule_t **scheds, size_t *n);

/* Creates the n jobs of items (1..STORE_BATCH_MAX, all with the caller as
 * owner) all or none, in one transaction, each as jobsvc_create creates
 * one. Every item is checked first (its type and config, its schedules);
 * if any is refused, nothing is written: each refused item has its rc and
 * err, and SKED_EINVAL (or a store error met reading a plugin type) is
 * returned. SKED_ECONFLICT (a name taken, by a job or by an earlier item)
 * and a depends_on naming no job (SKED_EINVAL) are told by the item they
 * concern, nothing written. SKED_EEXIST: an idempotent repeat, nothing
 * created: *earlier (new; caller frees) the first batch's job ids,
 * comma-separated, or NULL when the key made a single job (whose id is in
 * items[0].job.id). Whatever the outcome the caller frees each item with
 * jobsvc_item_clear; items start zeroed but for ns and spec. */
int jobsvc_create_batch(jobsvc_call_t *c, jobsvc_item_t *items, size_t n, const char *idem_key,
                        char **earlier);
void jobsvc_item_clear(jobsvc_item_t *it);

/* Applies patch (a JSON merge patch over the job's canonical document,
 * RFC 7386; borrowed) to job id. expect_version: the version the caller
 * saw (If-Match), 0 = any, in which case an update that another overtakes
 * is redone on the newer version, a few times. Schedules whose definition
 * is unchanged keep their firing state; the others get a first fire.
 * SKED_ENOTFOUND; SKED_EPRECOND: not at expect_version; SKED_EINVAL: the
 * merged document is invalid; SKED_ECONFLICT: the name is taken, or the
 * job kept changing; or a store error. */
int jobsvc_update(jobsvc_call_t *c, const char *id, const json_t *patch, int64_t expect_version);

/* Pauses (JOB_PAUSED), resumes (JOB_ACTIVE: the scheduler applies the
 * misfire policy to what the pause missed) or deletes (JOB_DELETED: its
 * runs are canceled) job id. SKED_ENOTFOUND; SKED_ECONFLICT: the job cannot
 * go to state from the one it is in; or a store error. */
int jobsvc_set_state(jobsvc_call_t *c, const char *id, job_state_t state);

/* Runs job id once, now. OUT: the new run's id. SKED_ENOTFOUND;
 * SKED_ECONFLICT: the job is deleted; or a store error. */
int jobsvc_trigger(jobsvc_call_t *c, const char *id, char run_id[SKED_ID_LEN]);

/* Creates workflow spec in namespace ns: the workflow's own job (kind
 * workflow, its schedules) and one job per task, with their edges. No
 * schedule = fired only by hand (trigger). On 0 *wf is the stored workflow
 * (the caller clears it). SKED_EEXIST: an idempotent repeat (wf->id is the
 * first one); SKED_ECONFLICT: the name is taken; or a store error. */
int jobsvc_workflow_create(jobsvc_call_t *c, const char *ns, const wfspec_t *spec,
                           const char *idem_key, store_job_t *wf);
/* Replaces workflow id with spec (a whole document: PUT). expect_version:
 * If-Match, 0 = any. Schedules whose definition is unchanged keep their
 * firing state; tasks keep their ids by name. SKED_ENOTFOUND;
 * SKED_EPRECOND; SKED_ECONFLICT: the name is taken; or a store error. */
int jobsvc_workflow_replace(jobsvc_call_t *c, const char *id, const wfspec_t *spec,
                            int64_t expect_version);

#endif
