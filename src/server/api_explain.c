/*
 * "Why isn't it running?" (docs/api.md, "Explain"; docs/observability.md):
 * GET /v1/jobs/{id}/explain and GET /v1/runs/{id}/explain. The handlers in
 * api_jobs.c and api_runs.c check access as their GET twins do, then call
 * api__explain, which reads the facts from the store in one snapshot
 * (store_explain), has core/explain.c decide the reasons, and renders them:
 * each a `code`, a `message` sentence and the fields the sentence names.
 *
 * Read only; nothing here is on a hot path.
 */
#include "server/api.h"
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "core/explain.h"

static explain_job_state_t job_state_of(job_state_t s)
{
    switch (s) {
    case JOB_PAUSED:
        return EXPLAIN_STATE_PAUSED;
    case JOB_DONE:
        return EXPLAIN_STATE_DONE;
    case JOB_DELETED:
        return EXPLAIN_STATE_DELETED;
    default:
        return EXPLAIN_STATE_ACTIVE;
    }
}

static explain_worker_state_t worker_state_of(worker_state_t s)
{
    switch (s) {
    case WORKER_ACTIVE:
        return EXPLAIN_WORKER_ACTIVE;
    case WORKER_DRAINING:
        return EXPLAIN_WORKER_DRAINING;
    default:
        return EXPLAIN_WORKER_LOST;
    }
}

static explain_run_t run_of(const store_explain_run_t *x)
{
    const store_run_t *r = &x->run;
    const store_attempt_t *a = &x->last;
    return (explain_run_t){
        .id = r->id,
        .state = r->state,
        .fire_ms = r->fire_ms,
        .not_before_ms = r->not_before_ms,
        .finished_ms = r->finished_ms,
        .attempt = r->attempt,
        .worker_id = r->worker_id,
        .lease_expires_ms = r->lease_expires_ms,
        .unconfirmed = x->unconfirmed,
        .cancel_requested = r->cancel_requested,
        .reason = r->reason,
        .last = {.n = a->n,
                 .worker_id = a->worker_id,
                 .started_ms = a->started_ms,
                 .finished_ms = a->finished_ms,
                 .outcome = a->outcome,
                 .exit_code = a->exit_code,
                 .signal = a->signal,
                 .reason = a->reason},
        .rule = r->deps_n > 0 ? trigger_rule_name(r->deps_rule) : NULL,
        .deps_n = r->deps_n,
        .deps_ok = r->deps_ok,
        .deps_fail = r->deps_fail,
        .deps_skip = r->deps_skip,
        .array_index = r->array_index,
    };
}

/* A waiting run's group facts: its members' counts if it is a group run,
 * its array's limit if it is an array's index. */
static void group_facts(store_t *st, const store_run_t *r, explain_run_t *x)
{
    store_run_t run = {0};
    store_group_t g = {0};
    store_member_t *m = NULL;
    size_t n = 0;
    /* A member with upstreams (a workflow's task) waits on them; a group
     * run with upstreams (an array job's, with depends_on) has its counts
     * only once they released it. */
    if (r->state != RUN_WAITING || (r->parent_id[0] && r->deps_n > 0)) return;
    const char *gid = r->parent_id[0] ? r->parent_id : r->id;
    if (store_group_get(st, gid, &run, &g, &m, &n) == 0) {
        if (!r->parent_id[0]) {
            x->group = g.is_group;
            x->members = (int)n;
            x->members_open = 0;
            for (size_t i = 0; i < n; i++)
                x->members_open += !run_state_terminal(m[i].run.state);
        } else {
            x->parallel = g.parallel;
        }
    }
    for (size_t i = 0; i < n; i++)
        store_member_clear(&m[i]);
    free(m);
    store_run_clear(&run);
}

/* "k=v,k2=v2" -> ["k=v", "k2=v2"] */
static json_t *items_json(const char *s)
{
    json_t *a = json_array();
    char *copy = xstrdup(s ? s : ""), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(tok));
    free(copy);
    return a;
}

static void set_str(json_t *o, const char *key, const char *s)
{
    if (s && *s) json_object_set_new(o, key, json_string(s));
}

static json_t *reason_json(const explain_reason_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "code", json_string(explain_code_name(r->code)));
    json_object_set_new(o, "message", json_string(r->message ? r->message : ""));
    set_str(o, "run_id", r->run_id);
    set_str(o, "worker_id", r->worker_id);
    set_str(o, "schedule_id", r->schedule_id);
    set_str(o, "queue", r->queue);
    set_str(o, "namespace", r->ns);
    set_str(o, "type", r->type);
    set_str(o, "state", r->state);
    if (r->labels && *r->labels) {
        json_t *labels = items_json(r->labels);
        json_object_set(o, "label", json_array_get(labels, 0));
        json_object_set_new(o, "labels", labels);
    }
    if (r->at_ms >= 0) json_object_set_new(o, "at", api_time_json(r->at_ms));
    if (r->since_ms >= 0) json_object_set_new(o, "since", api_time_json(r->since_ms));
    if (r->count >= 0) json_object_set_new(o, "count", json_integer(r->count));
    if (r->limit >= 0) json_object_set_new(o, "limit", json_integer(r->limit));
    if (r->attempt > 0) json_object_set_new(o, "attempt", json_integer(r->attempt));
    return o;
}

void api__explain(http_req_t *req, http_resp_t *resp, const char *job_id, const char *run_id)
{
    const server_config_t *cfg = req->srv ? server_config(req->srv) : NULL;
    int64_t timeout =
        cfg && cfg->worker_timeout_ms > 0 ? cfg->worker_timeout_ms : 3 * SERVER_DEFAULT_LEASE_MS;
    int64_t grace =
        cfg && cfg->lease_grace_ms > 0 ? cfg->lease_grace_ms : SERVER_DEFAULT_LEASE_GRACE_MS;
    store_explain_t e;
    explain_t why = EXPLAIN_INIT;
    explain_run_t *runs = NULL, target;
    explain_worker_t *workers = NULL;

    int rc = store_explain(req->st, job_id, run_id, req->now_ms - timeout, req->now_ms, &e);
    if (rc != 0) {
        api_fail_store(resp, rc, run_id ? "run" : "job", "reading what explains it");
        goto out;
    }
    explain_facts_t f = {
        .job_id = e.job.id,
        .ns = e.job.ns ? e.job.ns : "default",
        .queue = e.job.queue ? e.job.queue : "default",
        .constraints = e.job.constraints ? e.job.constraints : "",
        .type = e.job.type,
        .job_state = job_state_of(e.job.state),
        .job_updated_ms = e.job.updated_ms,
        .overlap = e.job.overlap,
        .max_concurrency = e.job.max_concurrency,
        .max_attempts = e.job.retry.max_attempts,
        .nscheds = e.nscheds,
        .next_fire_ms = -1,
        .last_fire_ms = -1,
        .nruns = e.nruns,
        .nwaiting = e.nwaiting,
        .ndue = e.ndue,
        .running = e.running,
        .nworkers = e.nworkers,
        .live_workers = e.live_workers,
        .worker_timeout_ms = timeout,
        .lease_grace_ms = grace,
    };
    for (size_t i = 0; i < e.nscheds; i++) {
        const store_schedule_t *s = &e.scheds[i];
        if (s->next_fire_ms >= 0 && (f.next_fire_ms < 0 || s->next_fire_ms < f.next_fire_ms)) {
            f.next_fire_ms = s->next_fire_ms;
            f.next_sched_id = s->id;
        }
        if (s->last_fire_ms > f.last_fire_ms) f.last_fire_ms = s->last_fire_ms;
    }
    runs = xcalloc(e.nruns + 1, sizeof *runs);
    for (size_t i = 0; i < e.nruns; i++)
        runs[i] = run_of(&e.runs[i]);
    f.runs = runs;
    workers = xcalloc(e.nworkers + 1, sizeof *workers);
    for (size_t i = 0; i < e.nworkers; i++) {
        const store_worker_t *w = &e.workers[i];
        workers[i] = (explain_worker_t){
            w->id,    w->name,    w->queues,       w->labels, w->ns, worker_state_of(w->state),
            w->slots, w->running, w->heartbeat_ms, w->types};
    }
    f.workers = workers;

    if (run_id) {
        target = run_of(&e.target);
        group_facts(req->st, &e.target.run, &target);
        explain_run(&f, &target, req->now_ms, &why);
    } else {
        explain_job(&f, req->now_ms, &why);
    }

    json_t *doc = json_object();
    json_object_set_new(doc, "job_id", json_string(e.job.id));
    json_object_set_new(doc, "job_name", json_string(e.job.name ? e.job.name : ""));
    json_object_set_new(doc, "job_state", json_string(job_state_name(e.job.state)));
    json_object_set_new(doc, "run_id", run_id ? json_string(e.target.run.id) : json_null());
    json_object_set_new(doc, "run_state",
                        run_id ? json_string(run_state_name(e.target.run.state)) : json_null());
    json_object_set_new(doc, "running", json_integer(e.running));
    json_object_set_new(doc, "at", api_time_json(req->now_ms));
    json_t *arr = json_array();
    for (size_t i = 0; i < why.n; i++)
        json_array_append_new(arr, reason_json(&why.v[i]));
    json_object_set_new(doc, "reasons", arr);
    http_json(resp, 200, doc);
out:
    explain_clear(&why);
    free(runs);
    free(workers);
    store_explain_clear(&e);
}
