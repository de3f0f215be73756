/*
 * The workflows API (docs/workflows.md): create, list, show, replace,
 * delete, pause, resume and trigger a workflow; list its runs; show,
 * cancel and retry a task of a workflow run.
 *
 * A workflow is stored as a job of kind "workflow" (its canonical document
 * in spec_json, its schedules as a job's) and each task as a job of kind
 * "task"; a workflow run is a group run whose members are the task runs
 * (store.h). So access is a job's (api_job_access on the workflow), every
 * change is audited as a job's, and a task run is a run like any other
 * (GET /v1/runs/{id}, its log, its attempts).
 *
 * The resources: a Workflow is the canonical document (secrets masked)
 * with the bookkeeping of its job and each task's job_id; a WorkflowRun is
 * the group run with its state ("queued" while max_active_runs holds it,
 * "scheduled" before its fire time, "running" until its last task ends),
 * its counts and its tasks in topological order.
 */
#include "server/api.h"
#include "server/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/workflow.h"
#include "server/auth.h"
#include "server/jobsvc.h"

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ---- rendering ------------------------------------------------------------------ */

/* The Workflow resource; tasks (may be NULL) give each task's job_id.
 * New reference. */
static json_t *workflow_json(const store_job_t *wf, const store_schedule_t *scheds, size_t nsc,
                             const store_job_t *tasks, size_t ntasks)
{
    json_error_t jerr;
    json_t *spec = json_loads(nz(wf->spec_json), 0, &jerr);
    if (!json_is_object(spec)) {
        log_error("api", "workflow %s has an unreadable stored document", wf->id);
        json_decref(spec);
        spec = json_object();
    }
    json_t *shown = wfspec_redact(spec);
    json_decref(spec);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(wf->id));
    json_object_update(o, shown);
    json_decref(shown);
    json_object_set_new(o, "namespace", json_string(wf->ns ? wf->ns : "default"));
    json_object_set_new(o, "owner", json_string(nz(wf->owner)));
    json_object_set_new(o, "state", json_string(nz(job_state_name(wf->state))));
    json_object_set_new(o, "version", json_integer(wf->version));
    json_object_set_new(o, "created_at", api_time_json(wf->created_ms));
    json_object_set_new(o, "updated_at", api_time_json(wf->updated_ms));
    json_t *arr = json_object_get(o, "schedules");
    int64_t next = -1;
    if (json_is_array(arr)) api_enrich_schedules(arr, scheds, nsc);
    for (size_t i = 0; i < nsc; i++)
        if (scheds[i].next_fire_ms >= 0 && (next < 0 || scheds[i].next_fire_ms < next))
            next = scheds[i].next_fire_ms;
    json_object_set_new(o, "next_fire_at",
                        wf->state == JOB_ACTIVE ? api_time_json(next) : json_null());
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(o, "tasks"), i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        json_t *jid = json_null();
        for (size_t k = 0; name && k < ntasks; k++)
            if (tasks[k].name && strcmp(tasks[k].name, name) == 0) jid = json_string(tasks[k].id);
        json_object_set_new(t, "job_id", jid);
    }
    return o;
}

/* Reads workflow id (404 unless it is one) and answers it with status. */
static void answer_workflow(http_req_t *req, http_resp_t *resp, const char *id, int status)
{
    store_job_t wf = {0}, *tasks = NULL;
    store_schedule_t *scheds = NULL;
    size_t n = 0, nt = 0;
    int rc = store_job_get(req->st, id, &wf, &scheds, &n);
    if (rc == 0 && wf.kind != JOB_KIND_WORKFLOW) rc = SKED_ENOTFOUND;
    if (rc == 0) rc = store_workflow_tasks(req->st, id, &tasks, &nt);
    if (rc == SKED_ENOTFOUND) {
        api_fail(resp, rc, "path.id", "no such workflow");
    } else if (rc != 0) {
        api_fail_store(resp, rc, "workflow", "reading the workflow");
    } else {
        api_set_etag(resp, wf.version);
        http_json(resp, status, workflow_json(&wf, scheds, n, tasks, nt));
    }
    for (size_t i = 0; i < nt; i++)
        store_job_clear(&tasks[i]);
    free(tasks);
    sched_array_free(scheds, n);
    store_job_clear(&wf);
}

/* The API's name of a group run's state. */
static const char *group_state(const store_run_t *run, const store_group_t *g, int64_t now_ms)
{
    if (run->state != RUN_WAITING) return run_state_name(run->state);
    if (!g->is_group) return "waiting"; /* on its upstreams (job dependencies) */
    if (!g->started) return "queued";   /* for room: max_active_runs */
    return run->fire_ms > now_ms ? "scheduled" : "running";
}

/* A workflow run without its tasks (lists). */
static json_t *wfrun_head(const store_run_t *run, const store_group_t *g, int64_t now_ms)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(run->id));
    json_object_set_new(o, "workflow_id", json_string(run->job_id));
    json_object_set_new(o, "state", json_string(group_state(run, g, now_ms)));
    json_object_set_new(o, "fire_time", api_time_json(run->fire_ms));
    json_object_set_new(o, "created_at", api_time_json(run->created_ms));
    json_object_set_new(o, "finished_at", api_time_json(run->finished_ms));
    json_object_set_new(o, "reason", run->reason ? json_string(run->reason) : json_null());
    return o;
}

/* Counts of members by state, every state named. */
static json_t *counts_json(const store_member_t *m, size_t n)
{
    int c[RUN_STATE_COUNT] = {0};
    for (size_t i = 0; i < n; i++)
        if ((unsigned)m[i].run.state < RUN_STATE_COUNT) c[m[i].run.state]++;
    json_t *o = json_object();
    /* a task waiting for its time is as good as pending to a reader */
    json_object_set_new(o, "waiting", json_integer(c[RUN_WAITING]));
    json_object_set_new(o, "pending", json_integer(c[RUN_PENDING] + c[RUN_SCHEDULED]));
    for (int s = RUN_RUNNING; s < RUN_STATE_COUNT; s++)
        json_object_set_new(o, run_state_name((run_state_t)s), json_integer(c[s]));
    return o;
}

static json_t *member_json(const store_member_t *m, const wf_task_t *t)
{
    const store_run_t *r = &m->run;
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(nz(m->name)));
    json_object_set_new(o, "run_id", json_string(r->id));
    json_object_set_new(o, "job_id", json_string(r->job_id));
    json_object_set_new(o, "state", json_string(nz(run_state_name(r->state))));
    json_object_set_new(o, "attempt", json_integer(r->attempt));
    json_t *deps = json_array();
    for (size_t k = 0; t && k < t->ndeps; k++)
        json_array_append_new(deps, json_string(t->depends_on[k]));
    json_object_set_new(o, "depends_on", deps);
    json_object_set_new(o, "trigger_rule",
                        json_string(trigger_rule_name(t ? t->rule : r->deps_rule)));
    json_object_set_new(o, "reason", r->reason ? json_string(r->reason) : json_null());
    json_object_set_new(o, "started_at", api_time_json(r->started_ms));
    json_object_set_new(o, "finished_at", api_time_json(r->finished_ms));
    json_object_set_new(o, "exit_code",
                        r->exit_code >= 0 ? json_integer(r->exit_code) : json_null());
    return o;
}

/* The WorkflowRun resource: its tasks in the topological order of the
 * workflow as it is now (members of tasks since removed come last). */
static json_t *wfrun_json(const store_run_t *run, const store_group_t *g, const store_member_t *m,
                          size_t n, const char *wf_doc, int64_t now_ms)
{
    json_t *o = wfrun_head(run, g, now_ms);
    int64_t started = -1;
    for (size_t i = 0; i < n; i++)
        if (m[i].run.started_ms >= 0 && (started < 0 || m[i].run.started_ms < started))
            started = m[i].run.started_ms;
    json_object_set_new(o, "started_at", api_time_json(started));
    json_object_set_new(o, "counts", counts_json(m, n));

    wfspec_t spec;
    memset(&spec, 0, sizeof spec);
    json_error_t jerr;
    json_t *doc = json_loads(nz(wf_doc), 0, &jerr);
    bool parsed = doc && wfspec_parse(doc, &spec, NULL) == 0;
    json_decref(doc);
    bool *shown = xcalloc(n + 1, sizeof *shown);
    json_t *tasks = json_array();
    for (size_t k = 0; parsed && k < spec.ntasks; k++) {
        const wf_task_t *t = &spec.tasks[spec.topo[k]];
        for (size_t i = 0; i < n; i++) {
            if (shown[i] || !m[i].name || strcmp(m[i].name, t->name) != 0) continue;
            json_array_append_new(tasks, member_json(&m[i], t));
            shown[i] = true;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!shown[i]) json_array_append_new(tasks, member_json(&m[i], NULL));
    json_object_set_new(o, "tasks", tasks);
    free(shown);
    if (parsed) wfspec_free(&spec);
    return o;
}

/* Reads workflow run id and answers it with status; 404 unless it is a run
 * of a workflow. */
static void answer_wfrun(http_req_t *req, http_resp_t *resp, const char *id, int status)
{
    store_run_t run = {0};
    store_group_t g = {0};
    store_member_t *m = NULL;
    size_t n = 0;
    store_job_t wf = {0};
    int rc = store_group_get(req->st, id, &run, &g, &m, &n);
    if (rc == 0) rc = store_job_get(req->st, run.job_id, &wf, NULL, NULL);
    if (rc == 0 && wf.kind != JOB_KIND_WORKFLOW) rc = SKED_ENOTFOUND;
    if (rc == SKED_ENOTFOUND || rc == SKED_EINVAL)
        api_fail(resp, SKED_ENOTFOUND, "path.id", "no such workflow run");
    else if (rc != 0)
        api_fail_store(resp, rc, "workflow run", "reading the workflow run");
    else
        http_json(resp, status, wfrun_json(&run, &g, m, n, wf.spec_json, req->now_ms));
    for (size_t i = 0; i < n; i++)
        store_member_clear(&m[i]);
    free(m);
    store_run_clear(&run);
    store_job_clear(&wf);
}

/* ---- access ----------------------------------------------------------------------- */

/* api_job_access on workflow id, and 404 unless it is a workflow. */
static bool wf_access(http_req_t *req, http_resp_t *resp, const char *id, bool write, char **ns_out)
{
    if (!api_job_access(req, resp, id, write, ns_out)) return false;
    store_job_t j = {0};
    int rc = store_job_get(req->st, id, &j, NULL, NULL);
    bool ok = rc == 0 && j.kind == JOB_KIND_WORKFLOW;
    store_job_clear(&j);
    if (ok) return true;
    if (rc == 0 || rc == SKED_ENOTFOUND)
        api_fail(resp, SKED_ENOTFOUND, "path.id", "no such workflow");
    else
        api_fail_store(resp, rc, "workflow", "reading the workflow");
    if (ns_out) FREE_NULL(*ns_out);
    return false;
}

/* Parses a workflow body (without "namespace", taken out by the caller).
 * On failure answers resp. */
static bool parse_body(http_resp_t *resp, const json_t *body, wfspec_t *spec)
{
    jobspec_error_t err = {{0}, {0}};
    int rc = wfspec_parse(body, spec, &err);
    if (rc != 0) api_job_fail(resp, rc, &err);
    return rc == 0;
}

/* ---- handlers ------------------------------------------------------------------------- */

void api_workflows_create(http_req_t *req, http_resp_t *resp)
{
    wfspec_t spec;
    memset(&spec, 0, sizeof spec);
    store_job_t wf = {0};
    jobsvc_call_t call = api_jobsvc_call(req);
    char nsbuf[64], loc[64];
    json_t *body = NULL;

    const char *idem = NULL;
    if (!(body = api__create_body(req, resp, &idem, nsbuf, sizeof nsbuf))) goto out;
    if (!parse_body(resp, body, &spec)) goto out;
    store_audit_t audit;
    auth_audit_entry(req, NULL, nsbuf, 201, &audit);
    call.audit = &audit;
    int rc = jobsvc_workflow_create(&call, nsbuf, &spec, idem, &wf);
    snprintf(loc, sizeof loc, "/v1/workflows/%s", wf.id);
    if (rc == SKED_EEXIST) {
        if (!api_idem_repeat_ok(req, resp, wf.id, JOB_KIND_WORKFLOW)) goto out;
        http_set_header(resp, "Location", loc);
        answer_workflow(req, resp, wf.id, 200);
        goto out;
    }
    if (rc != 0) {
        api_job_fail(resp, rc, &call.err);
        goto out;
    }
    http_set_header(resp, "Location", loc);
    answer_workflow(req, resp, wf.id, 201);
out:
    store_job_clear(&wf);
    wfspec_free(&spec);
    json_decref(body);
}

/* A list item: the workflow without its tasks' job ids. */
static json_t *workflow_item(const store_job_t *wf, const store_schedule_t *scheds, size_t n)
{
    return workflow_json(wf, scheds, n, NULL, 0);
}

void api_workflows_list(http_req_t *req, http_resp_t *resp)
{
    api__job_list(req, resp, JOB_KIND_WORKFLOW, workflow_item);
}

void api_workflows_get(http_req_t *req, http_resp_t *resp)
{
    const char *id = api__path_id(req, resp);
    if (id && wf_access(req, resp, id, false, NULL)) answer_workflow(req, resp, id, 200);
}

void api_workflows_put(http_req_t *req, http_resp_t *resp)
{
    wfspec_t spec;
    memset(&spec, 0, sizeof spec);
    json_t *body = NULL;
    int64_t want = 0;
    char *ns = NULL;
    const char *id = api__path_id(req, resp);
    if (!id || !wf_access(req, resp, id, true, &ns)) return;
    const char *ifm = http_header(req, "If-Match");
    if (ifm && api_if_match(ifm, &want) != 0) {
        api_fail(resp, SKED_EINVAL, "header.If-Match",
                 "If-Match must be the workflow's version, e.g. \"3\"");
        goto out;
    }
    if (!(body = http_body_json(req, resp))) goto out;
    /* A workflow read back and sent again: its bookkeeping is accepted and
     * ignored where it cannot change, refused where it would. */
    json_t *nsv = json_object_get(body, "namespace");
    if (nsv) {
        if (!json_is_string(nsv) || strcmp(json_string_value(nsv), nz(ns)) != 0) {
            api_fail(resp, SKED_EINVAL, "namespace", "a workflow's namespace cannot be changed");
            goto out;
        }
        json_object_del(body, "namespace");
    }
    if (!parse_body(resp, body, &spec)) goto out;
    jobsvc_call_t call = api_jobsvc_call(req);
    store_audit_t audit;
    auth_audit_entry(req, id, ns, 200, &audit);
    call.audit = &audit;
    int rc = jobsvc_workflow_replace(&call, id, &spec, want);
    if (rc != 0) {
        api_job_fail(resp, rc, &call.err);
        goto out;
    }
    answer_workflow(req, resp, id, 200);
out:
    free(ns);
    wfspec_free(&spec);
    json_decref(body);
}

static void set_state(http_req_t *req, http_resp_t *resp, job_state_t state)
{
    char *ns = NULL;
    jobsvc_call_t call = api_jobsvc_call(req);
    const char *id = api__path_id(req, resp);
    if (!id || !wf_access(req, resp, id, true, &ns)) return;
    store_audit_t audit;
    auth_audit_entry(req, id, ns, state == JOB_DELETED ? 204 : 200, &audit);
    call.audit = &audit;
    int rc = jobsvc_set_state(&call, id, state);
    if (rc != 0)
        api_job_fail(resp, rc, &call.err);
    else if (state == JOB_DELETED)
        http_empty(resp, 204);
    else
        answer_workflow(req, resp, id, 200);
    free(ns);
}

void api_workflows_delete(http_req_t *req, http_resp_t *resp)
{
    set_state(req, resp, JOB_DELETED);
}

void api_workflows_pause(http_req_t *req, http_resp_t *resp)
{
    set_state(req, resp, JOB_PAUSED);
}

void api_workflows_resume(http_req_t *req, http_resp_t *resp)
{
    set_state(req, resp, JOB_ACTIVE);
}

void api_workflows_trigger(http_req_t *req, http_resp_t *resp)
{
    char run_id[SKED_ID_LEN] = "", loc[80];
    char *ns = NULL;
    jobsvc_call_t call = api_jobsvc_call(req);
    const char *id = api__path_id(req, resp);
    if (!id || !wf_access(req, resp, id, true, &ns)) return;
    store_audit_t audit;
    auth_audit_entry(req, id, ns, 201, &audit);
    call.audit = &audit;
    int rc = jobsvc_trigger(&call, id, run_id);
    if (rc != 0) {
        api_job_fail(resp, rc, &call.err);
    } else {
        snprintf(loc, sizeof loc, "/v1/workflow-runs/%s", run_id);
        http_set_header(resp, "Location", loc);
        answer_wfrun(req, resp, run_id, 201);
    }
    free(ns);
}

void api_workflows_runs(http_req_t *req, http_resp_t *resp)
{
    store_grouped_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    long limit = 100;
    const char *id = api__path_id(req, resp);
    if (!id || !wf_access(req, resp, id, false, NULL)) return;
    const char *q = http_query(req, "limit");
    if (q && api__int_param(q, 1, 1000, &limit) != 0) {
        api_fail(resp, SKED_EINVAL, "query.limit", "limit must be an integer from 1 to 1000");
        return;
    }
    const char *cursor = http_query(req, "cursor");
    int rc = store_group_list(req->st, id, cursor, (int)limit, &v, &n, &next);
    if (rc == SKED_EINVAL && cursor) {
        api_fail(resp, SKED_EINVAL, "query.cursor", "cursor is not one this server handed out");
        goto out;
    }
    if (rc != 0) {
        api_fail_store(resp, rc, "workflow run", "listing the workflow's runs");
        goto out;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = wfrun_head(&v[i].run, &v[i].group, req->now_ms);
        const store_group_t *g = &v[i].group;
        json_t *c = json_object();
        json_object_set_new(c, "tasks", json_integer(g->n));
        json_object_set_new(c, "succeeded", json_integer(g->ok));
        json_object_set_new(c, "failed", json_integer(g->failed));
        json_object_set_new(c, "canceled", json_integer(g->canceled));
        json_object_set_new(c, "skipped", json_integer(g->skipped));
        json_object_set_new(o, "counts", c);
        json_array_append_new(items, o);
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "items", items);
    json_object_set_new(doc, "next_cursor", next ? json_string(next) : json_null());
    http_json(resp, 200, doc);
out:
    for (size_t i = 0; i < n; i++)
        store_run_clear(&v[i].run);
    free(v);
    free(next);
}

void api_workflow_runs_get(http_req_t *req, http_resp_t *resp)
{
    const char *id = api__path_id(req, resp);
    if (id && api_run_access(req, resp, id, false, NULL)) answer_wfrun(req, resp, id, 200);
}

/* 404 unless run id is a workflow run. */
static bool is_wfrun(http_req_t *req, http_resp_t *resp, const char *id)
{
    store_run_t run = {0};
    store_job_t j = {0};
    int rc = store_run_get(req->st, id, &run, NULL, NULL);
    if (rc == 0) rc = store_job_get(req->st, run.job_id, &j, NULL, NULL);
    bool ok = rc == 0 && j.kind == JOB_KIND_WORKFLOW && !run.parent_id[0];
    store_run_clear(&run);
    store_job_clear(&j);
    if (ok) return true;
    if (rc == 0 || rc == SKED_ENOTFOUND)
        api_fail(resp, SKED_ENOTFOUND, "path.id", "no such workflow run");
    else
        api_fail_store(resp, rc, "workflow run", "reading the workflow run");
    return false;
}

void api_workflow_runs_cancel(http_req_t *req, http_resp_t *resp)
{
    char *ns = NULL, *reason = NULL;
    const char *id = api__path_id(req, resp);
    if (!id || !api_run_access(req, resp, id, true, &ns)) return;
    if (!is_wfrun(req, resp, id)) goto out;
    reason = xasprintf("canceled by %s", req->who && req->who->name ? req->who->name : "api");
    store_audit_t audit;
    auth_audit_entry(req, id, ns, 200, &audit);
    int rc = store_run_cancel(req->st, id, reason, &audit, req->now_ms);
    if (rc == SKED_ECONFLICT)
        api_fail(resp, rc, NULL, "the workflow run has already ended");
    else if (rc != 0)
        api_fail_store(resp, rc, "workflow run", "canceling the workflow run");
    else
        answer_wfrun(req, resp, id, 200);
out:
    free(reason);
    free(ns);
}

void api_workflow_runs_retry(http_req_t *req, http_resp_t *resp)
{
    char *ns = NULL;
    json_t *body = NULL;
    store_run_t run = {0};
    store_group_t g = {0};
    store_member_t *m = NULL;
    size_t n = 0;
    const char *id = api__path_id(req, resp);
    const char *task = req->params[1];
    if (!id || !api_run_access(req, resp, id, true, &ns)) return;
    if (!is_wfrun(req, resp, id)) goto out;
    bool downstream = false;
    if (req->body_len > 0) {
        if (!(body = http_body_json(req, resp))) goto out;
        const char *key;
        json_t *v;
        json_object_foreach(body, key, v)
        {
            if (strcmp(key, "downstream") != 0) {
                api_fail(resp, SKED_EINVAL, key, "unknown field; the body takes \"downstream\"");
                goto out;
            }
            if (!json_is_boolean(v)) {
                api_fail(resp, SKED_EINVAL, "downstream", "downstream must be true or false");
                goto out;
            }
            downstream = json_is_true(v);
        }
    }
    int rc = store_group_get(req->st, id, &run, &g, &m, &n);
    if (rc != 0) {
        api_fail_store(resp, rc, "workflow run", "reading the workflow run");
        goto out;
    }
    const store_member_t *mem = NULL;
    for (size_t i = 0; i < n && !mem; i++)
        if (m[i].name && task && strcmp(m[i].name, task) == 0) mem = &m[i];
    if (!mem) {
        api_fail(resp, SKED_ENOTFOUND, "path.task", "the workflow run has no task '%s'", nz(task));
        goto out;
    }
    store_audit_t audit;
    auth_audit_entry(req, id, ns, 200, &audit);
    rc = store_group_retry(req->st, id, mem->run.id, downstream, &audit, req->now_ms);
    if (rc == SKED_ECONFLICT)
        api_fail(resp, rc, "path.task",
                 "task '%s' is %s: only a failed, canceled or skipped task of a workflow run that "
                 "was not canceled can be retried",
                 nz(task), run_state_name(mem->run.state));
    else if (rc != 0)
        api_fail_store(resp, rc, "workflow run", "retrying the task");
    else
        answer_wfrun(req, resp, id, 200);
out:
    for (size_t i = 0; i < n; i++)
        store_member_clear(&m[i]);
    free(m);
    store_run_clear(&run);
    json_decref(body);
    free(ns);
}
