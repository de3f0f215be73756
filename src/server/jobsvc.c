/* The job service; see jobsvc.h. */
#include "server/jobsvc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/httpspec.h"
#include "core/jschema.h"
#include "core/plan.h"
#include "core/secret.h"
#include "core/workflow.h"

#define UPDATE_TRIES 3 /* read-merge-write rounds when no version is pinned */

static const char *nz(const char *s)
{
    return s ? s : "";
}

static const char *who_name(const jobsvc_call_t *c)
{
    return c->who && c->who->name ? c->who->name : "";
}

/* Records why c failed and returns rc. */
static int refuse(jobsvc_call_t *c, int rc, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(jobsvc_call_t *c, int rc, const char *field, const char *fmt, ...)
{
    va_list ap;
    snprintf(c->err.field, sizeof c->err.field, "%s", nz(field));
    va_start(ap, fmt);
    vsnprintf(c->err.detail, sizeof c->err.detail, fmt, ap);
    va_end(ap);
    return rc;
}

/* A store verb failed doing `what` to a job: a missing job is said as
 * such, anything else with the code's own words. */
static int store_failed(jobsvc_call_t *c, int rc, const char *what)
{
    if (rc == SKED_ENOTFOUND) return refuse(c, rc, NULL, "no such job");
    return refuse(c, rc, NULL, "%s: %s", what, sked_strerror(rc));
}

/* A refusal of the job's depends_on by the store (job->bad_dep names the
 * entry): rc SKED_ENOTFOUND, no such upstream; SKED_ECONFLICT, a cycle.
 * Returns 0 when rc is not about depends_on. */
static int bad_dep(jobsvc_call_t *c, int rc, const store_job_t *job)
{
    if (job->bad_dep < 0 || (size_t)job->bad_dep >= job->ndeps) return 0;
    char field[48];
    snprintf(field, sizeof field, "depends_on[%d].job", job->bad_dep);
    const char *up = job->deps[job->bad_dep].job_id;
    if (rc == SKED_ENOTFOUND)
        return refuse(c, SKED_EINVAL, field,
                      "no job or workflow %s in namespace '%s' (a job depends only on jobs of "
                      "its own namespace)",
                      up, nz(job->ns));
    if (rc == SKED_ECONFLICT)
        return refuse(c, SKED_EINVAL, field,
                      "job %s already waits, directly or not, for this job: the dependency "
                      "would close a cycle",
                      up);
    return 0;
}

static int name_taken(jobsvc_call_t *c, const char *name, const char *ns)
{
    return refuse(c, SKED_ECONFLICT, "name", "a job named '%s' already exists in namespace '%s'",
                  nz(name), nz(ns));
}

/* Builds the stored schedules of spec. A schedule whose definition matches
 * one of old (the job's current schedules) keeps its id and firing state,
 * so an edit neither fires a fire time again nor forgets one; the others
 * get their first fire at now. On success *out is a new array of *n (free
 * with sched_array_free); on failure nothing is left to free. */
static int build_scheds(jobsvc_call_t *c, const jobspec_schedule_t *defs, size_t ns,
                        const store_schedule_t *old, size_t nold, store_schedule_t **out, size_t *n)
{
    store_schedule_t *s = ns ? xcalloc(ns, sizeof *s) : NULL;
    schedule_spec_t *want = xcalloc(ns + 1, sizeof *want);
    schedule_spec_t *have = xcalloc(nold + 1, sizeof *have);
    size_t *match = xcalloc(ns + 1, sizeof *match);
    int rc = 0;

    for (size_t i = 0; i < ns; i++)
        want[i] = defs[i].spec;
    for (size_t j = 0; j < nold; j++)
        have[j] = sched_spec(&old[j]);
    schedule_match(want, ns, have, nold, match);
    for (size_t i = 0; i < ns; i++) {
        const schedule_spec_t *ss = &want[i];
        s[i].kind = ss->kind;
        s[i].expr = xstrdup(ss->expr);
        s[i].timezone = xstrdup(ss->timezone);
        s[i].start_ms = ss->start_ms;
        s[i].end_ms = ss->end_ms;
        s[i].jitter_ms = ss->jitter_ms;
        s[i].anchor_ms = ss->anchor_ms;
        s[i].last_fire_ms = -1;
        if (match[i] != SIZE_MAX) {
            const store_schedule_t *o = &old[match[i]];
            memcpy(s[i].id, o->id, sizeof s[i].id);
            s[i].next_fire_ms = o->next_fire_ms;
            s[i].last_fire_ms = o->last_fire_ms;
            continue;
        }
        /* jobspec_parse compiled it already; compiling again can still fail
         * when its zone file cannot be read just now. */
        char err[256] = "";
        schedule_t *compiled = NULL;
        rc = schedule_compile(ss, &compiled, err, sizeof err);
        if (rc != 0) {
            refuse(c, rc, NULL, "schedules[%zu]: %s", i, err);
            goto out;
        }
        s[i].next_fire_ms = plan_first_fire(compiled, ss->kind, c->now_ms);
        schedule_free(compiled);
    }
    *out = s;
    *n = ns;
    s = NULL;
out:
    sched_array_free(s, ns);
    free(want);
    free(have);
    free(match);
    return rc;
}

/* Checks the config of spec against its type, which the document's own
 * validation cannot: only the server knows the plugin types that exist
 * (the registry of what workers advertised) and their schemas. prefix
 * names where the job sits in the request ("" for a job, "tasks[2]." for
 * a workflow's task). Shell needs nothing more; a plugin type must be in
 * the registry, and its config (secrets resolved to the strings the
 * plugin will get) must conform to the type's JSON Schema. */
static int check_type(jobsvc_call_t *c, const jobspec_t *spec, const char *prefix)
{
    char field[sizeof c->err.field], detail[sizeof c->err.detail], f2[sizeof c->err.field];
    if (!spec->type || !strcmp(spec->type, "shell")) return 0;
    if (!strcmp(spec->type, "http")) {
        jobspec_error_t e;
        if (httpspec_check(spec->config, &e) == 0) return 0;
        snprintf(field, sizeof field, "%s%s", prefix, e.field);
        return refuse(c, SKED_EINVAL, field, "%s", e.detail);
    }
    store_plugin_type_t pt;
    int rc = store_plugin_get(c->st, spec->type, &pt);
    if (rc == SKED_ENOTFOUND) {
        snprintf(field, sizeof field, "%stype", prefix);
        return refuse(c, SKED_EINVAL, field,
                      "%s: no worker has plugin type \"%s\"; start a worker with --plugin-dir "
                      "holding it",
                      field, spec->type);
    }
    if (rc != 0)
        return refuse(c, rc, NULL, "reading plugin type %s: %s", spec->type, sked_strerror(rc));
    json_error_t jerr;
    json_t *schema = json_loads(pt.schema_json, JSON_DECODE_ANY, &jerr);
    json_t *config = secret_resolve(spec->config);
    snprintf(f2, sizeof f2, "%sconfig", prefix);
    if (!schema) {
        rc = refuse(c, SKED_EINTERNAL, NULL, "the stored schema of plugin type %s is unreadable",
                    spec->type);
    } else if (jschema_validate(schema, config, f2, field, sizeof field, detail, sizeof detail)) {
        rc = refuse(c, SKED_EINVAL, field, "%s: %s (the %s plugin's config schema)", field, detail,
                    spec->type);
    }
    json_decref(config);
    json_decref(schema);
    store_plugin_type_clear(&pt);
    return rc;
}

/* check_type of every task of a workflow. */
static int check_task_types(jobsvc_call_t *c, const wfspec_t *spec)
{
    for (size_t i = 0; i < spec->ntasks; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "tasks[%zu].", i);
        int rc = check_type(c, &spec->tasks[i].job, prefix);
        if (rc) return rc;
    }
    return 0;
}

/* The canonical document of it's spec into it->rest and the job's
 * spec_json: its members but "schedules" are written once, and the stored
 * text is those with the schedules put in front, so that an answer can
 * reuse the same text (the schedules it shows differ: they get their ids
 * and fire times). */
static void batch_canon(jobsvc_item_t *it)
{
    buf_t b = BUF_INIT;
    jobspec_write_members(&b, it->spec, false);
    it->rest = xstrdup(b.data);
    buf_reset(&b);
    buf_puts(&b, "{\"schedules\":");
    jobspec_write_schedules(&b, it->spec->schedules, it->spec->nschedules);
    buf_putc(&b, ',');
    buf_puts(&b, it->rest);
    buf_putc(&b, '}');
    it->job.spec_json = buf_steal(&b);
}

/* The earliest next fire of n schedules; INT64_MAX: none (a job that runs
 * now has its run already, the scheduler has nothing to do for it). */
static int64_t first_fire(const store_schedule_t *s, size_t n)
{
    int64_t first = INT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (s[i].next_fire_ms >= 0 && s[i].next_fire_ms < first) first = s[i].next_fire_ms;
    return first;
}

int jobsvc_create_item(jobsvc_call_t *c, jobsvc_item_t *it, const char *idem_key)
{
    store_job_t *job = &it->job;
    int rc = check_type(c, it->spec, "");
    if (rc != 0) return rc;
    rc = build_scheds(c, it->spec->schedules, it->spec->nschedules, NULL, 0, &it->scheds,
                      &it->nscheds);
    if (rc != 0) return rc;
    store_job_from_spec(job, it->spec);
    job->ns = xstrdup(it->ns);
    job->owner = xstrdup(who_name(c));
    batch_canon(it);

    rc = store_job_create(c->st, job, it->scheds, it->nscheds, it->nscheds == 0, idem_key, c->audit,
                          c->now_ms);
    if (rc == SKED_EEXIST) return rc; /* an idempotent repeat: job->id is the first job */
    if (rc < 0 && bad_dep(c, rc, job)) return SKED_EINVAL;
    if (rc == SKED_ECONFLICT) return name_taken(c, it->spec->name, job->ns);
    if (rc != 0) return store_failed(c, rc, "creating the job");
    log_debug("jobs", "job %s '%s' created by %s", job->id, nz(job->name), job->owner);
    sched_kick_at(c->sched, first_fire(it->scheds, it->nscheds));
    return 0;
}

int jobsvc_create(jobsvc_call_t *c, const char *ns, const jobspec_t *spec, const char *idem_key,
                  store_job_t *job, store_schedule_t **scheds, size_t *n)
{
    jobsvc_item_t it = {.ns = ns, .spec = spec};
    int rc = jobsvc_create_item(c, &it, idem_key);
    *job = it.job;
    *scheds = it.scheds;
    *n = it.nscheds;
    memset(&it.job, 0, sizeof it.job);
    it.scheds = NULL;
    it.nscheds = 0;
    jobsvc_item_clear(&it);
    return rc;
}

void jobsvc_item_clear(jobsvc_item_t *it)
{
    sched_array_free(it->scheds, it->nscheds);
    it->scheds = NULL;
    it->nscheds = 0;
    store_job_clear(&it->job);
    FREE_NULL(it->rest);
}

/* The error of item it (SKED_EINVAL with c->err as it stood) into it. */
static int item_refused(jobsvc_call_t *c, jobsvc_item_t *it, int rc)
{
    it->rc = rc;
    it->err = c->err;
    memset(&c->err, 0, sizeof c->err);
    return rc;
}

int jobsvc_create_batch(jobsvc_call_t *c, jobsvc_item_t *items, size_t n, const char *idem_key,
                        char **earlier)
{
    int rc = 0;
    *earlier = NULL;
    /* Check every item before writing any, and tell of all that fail. */
    for (size_t i = 0; i < n; i++) {
        jobsvc_item_t *it = &items[i];
        int irc = check_type(c, it->spec, "");
        if (irc == 0)
            irc = build_scheds(c, it->spec->schedules, it->spec->nschedules, NULL, 0, &it->scheds,
                               &it->nscheds);
        if (irc != 0) {
            item_refused(c, it, irc);
            if (rc == 0 || rc == SKED_EINVAL) rc = irc;
        }
    }
    if (rc != 0) return rc;

    store_job_new_t *rows = xcalloc(n, sizeof *rows);
    for (size_t i = 0; i < n; i++) {
        jobsvc_item_t *it = &items[i];
        store_job_from_spec(&it->job, it->spec);
        it->job.ns = xstrdup(it->ns);
        it->job.owner = xstrdup(who_name(c));
        batch_canon(it);
        rows[i] = (store_job_new_t){&it->job, it->scheds, it->nscheds, it->nscheds == 0};
    }
    size_t bad = 0;
    rc = store_job_create_batch(c->st, rows, n, idem_key, c->audit, c->now_ms, &bad, earlier);
    free(rows);
    if (rc == SKED_EEXIST) return rc;
    if (rc < 0 && bad < n) {
        jobsvc_item_t *it = &items[bad];
        if (bad_dep(c, rc, &it->job)) return item_refused(c, it, SKED_EINVAL);
        if (rc == SKED_ECONFLICT) {
            name_taken(c, it->spec->name, it->ns);
            if (bad > 0) /* perhaps by an item before it */
                snprintf(c->err.detail + strlen(c->err.detail),
                         sizeof c->err.detail - strlen(c->err.detail),
                         ", or is given to an earlier job of the batch");
            return item_refused(c, it, rc);
        }
    }
    if (rc != 0) return store_failed(c, rc, "creating the jobs");
    log_debug("jobs", "%zu jobs created by %s, first %s", n, who_name(c), items[0].job.id);
    int64_t first = INT64_MAX; /* one kick for the batch, at its earliest fire */
    for (size_t i = 0; i < n; i++) {
        int64_t f = first_fire(items[i].scheds, items[i].nscheds);
        if (f < first) first = f;
    }
    sched_kick_at(c->sched, first);
    return 0;
}

/* One read-merge-write round of jobsvc_update. 1: another update overtook
 * this one and no version was pinned, so the caller goes again. */
static int update_round(jobsvc_call_t *c, const char *id, const json_t *patch, int64_t want)
{
    store_job_t cur = {0}, upd = {0};
    store_schedule_t *old = NULL, *scheds = NULL;
    size_t nold = 0, n = 0;
    json_t *current = NULL, *merged = NULL;
    json_error_t perr;
    jobspec_t spec;

    memset(&spec, 0, sizeof spec);
    int rc = store_job_get(c->st, id, &cur, &old, &nold);
    if (rc != 0) {
        rc = store_failed(c, rc, "reading the job");
        goto out;
    }
    if (want && cur.version != want) {
        rc = refuse(c, SKED_EPRECOND, NULL, "the job is at version %lld, not %lld",
                    (long long)cur.version, (long long)want);
        goto out;
    }
    current = json_loads(nz(cur.spec_json), 0, &perr);
    if (!current) {
        rc = store_failed(c, SKED_EINTERNAL, "reading the stored job spec");
        goto out;
    }
    if ((rc = jobspec_patch(current, patch, &merged, &spec, &c->err)) != 0) goto out;
    if ((rc = check_type(c, &spec, "")) != 0) goto out;
    if ((rc = build_scheds(c, spec.schedules, spec.nschedules, old, nold, &scheds, &n)) != 0)
        goto out;

    /* A job keeps its identity, namespace, owner, state and history. */
    store_job_from_spec(&upd, &spec);
    memcpy(upd.id, cur.id, sizeof upd.id);
    upd.ns = xstrdup(nz(cur.ns));
    upd.owner = xstrdup(nz(cur.owner));
    upd.spec_json = json_dumps(merged, JSON_COMPACT);
    upd.state = cur.state;
    upd.version = cur.version;
    upd.created_ms = cur.created_ms;

    rc = store_job_update(c->st, &upd, want ? want : cur.version, scheds, n, c->audit, c->now_ms);
    if (rc < 0 && bad_dep(c, rc, &upd))
        rc = SKED_EINVAL;
    else if (rc == SKED_EPRECOND && !want)
        rc = 1;
    else if (rc == SKED_EPRECOND)
        rc = refuse(c, rc, NULL, "the job changed; its version is not %lld", (long long)want);
    else if (rc == SKED_ECONFLICT)
        rc = name_taken(c, spec.name, cur.ns);
    else if (rc != 0)
        rc = store_failed(c, rc, "updating the job");
out:
    sched_array_free(scheds, n);
    sched_array_free(old, nold);
    store_job_clear(&upd);
    store_job_clear(&cur);
    jobspec_free(&spec);
    json_decref(merged);
    json_decref(current);
    return rc;
}

int jobsvc_update(jobsvc_call_t *c, const char *id, const json_t *patch, int64_t expect_version)
{
    /* Without a pinned version the merge still must not lose a concurrent
     * update: it is applied against the version read, and redone if that
     * moved. */
    for (int round = 0; round < UPDATE_TRIES; round++) {
        int rc = update_round(c, id, patch, expect_version);
        if (rc == 0) {
            log_debug("jobs", "job %s updated by %s", id, who_name(c));
            sched_kick(c->sched);
        }
        if (rc <= 0) return rc;
    }
    return refuse(c, SKED_ECONFLICT, NULL, "the job kept changing during the update; try again");
}

int jobsvc_set_state(jobsvc_call_t *c, const char *id, job_state_t state)
{
    /* A workflow's task never comes here: api_jobs.c refuses it (409). */
    int rc = store_job_set_state(c->st, id, state, c->audit, c->now_ms);
    if (rc == SKED_ECONFLICT)
        return refuse(c, rc, NULL, "the job cannot become %s from its current state",
                      job_state_name(state));
    if (rc != 0) return store_failed(c, rc, "changing the job's state");
    log_info("jobs", "job %s set %s by %s", id, job_state_name(state),
             c->who && c->who->name ? c->who->name : "?");
    if (state == JOB_ACTIVE) sched_kick(c->sched);
    return 0;
}

int jobsvc_trigger(jobsvc_call_t *c, const char *id, char run_id[SKED_ID_LEN])
{
    int rc = store_run_trigger(c->st, id, c->audit, c->now_ms, run_id);
    if (rc == SKED_ECONFLICT) return refuse(c, rc, NULL, "the job is deleted");
    if (rc != 0) return store_failed(c, rc, "triggering the job");
    return 0;
}

/* ---- workflows ------------------------------------------------------------ */

/* The stored records of a workflow document: the workflow's own job and
 * one job per task, each with its canonical document. */
static void workflow_records(const wfspec_t *spec, store_job_t *wf, store_job_t *tasks)
{
    store_workflow_from_spec(wf, tasks, spec);
    json_t *canon = wfspec_to_json(spec);
    free(wf->spec_json);
    wf->spec_json = json_dumps(canon, JSON_COMPACT);
    json_decref(canon);
    for (size_t i = 0; i < spec->ntasks; i++) {
        free(tasks[i].spec_json);
        tasks[i].spec_json = jobspec_text(&spec->tasks[i].job);
    }
}

static int workflow_name_taken(jobsvc_call_t *c, const char *name, const char *ns)
{
    return refuse(c, SKED_ECONFLICT, "name",
                  "a job or workflow named '%s' already exists in namespace '%s'", nz(name),
                  nz(ns));
}

int jobsvc_workflow_create(jobsvc_call_t *c, const char *ns, const wfspec_t *spec,
                           const char *idem_key, store_job_t *wf)
{
    store_schedule_t *scheds = NULL;
    size_t n = 0;
    store_job_t *tasks = xcalloc(spec->ntasks + 1, sizeof *tasks);
    int rc = check_task_types(c, spec);
    if (rc == 0) rc = build_scheds(c, spec->schedules, spec->nschedules, NULL, 0, &scheds, &n);
    if (rc != 0) goto out;
    workflow_records(spec, wf, tasks);
    wf->ns = xstrdup(ns);
    wf->owner = xstrdup(who_name(c));
    rc = store_workflow_put(c->st, wf, scheds, n, tasks, spec->ntasks, -1, idem_key, c->audit,
                            c->now_ms);
    if (rc == SKED_EEXIST) goto out;
    if (rc == SKED_ECONFLICT)
        rc = workflow_name_taken(c, spec->name, ns);
    else if (rc != 0)
        rc = store_failed(c, rc, "creating the workflow");
    else {
        log_debug("workflows", "workflow %s '%s' created by %s", wf->id, spec->name, wf->owner);
        sched_kick(c->sched);
    }
out:
    for (size_t i = 0; i < spec->ntasks; i++)
        store_job_clear(&tasks[i]);
    free(tasks);
    sched_array_free(scheds, n);
    return rc;
}

int jobsvc_workflow_replace(jobsvc_call_t *c, const char *id, const wfspec_t *spec,
                            int64_t expect_version)
{
    store_job_t cur = {0}, wf = {0};
    store_schedule_t *old = NULL, *scheds = NULL;
    size_t nold = 0, n = 0;
    store_job_t *tasks = xcalloc(spec->ntasks + 1, sizeof *tasks);
    int rc = store_job_get(c->st, id, &cur, &old, &nold);
    if (rc == 0 && cur.kind != JOB_KIND_WORKFLOW) rc = SKED_ENOTFOUND;
    if (rc != 0) {
        rc = rc == SKED_ENOTFOUND ? refuse(c, rc, NULL, "no such workflow")
                                  : store_failed(c, rc, "reading the workflow");
        goto out;
    }
    if ((rc = check_task_types(c, spec)) != 0) goto out;
    if ((rc = build_scheds(c, spec->schedules, spec->nschedules, old, nold, &scheds, &n)) != 0)
        goto out;
    workflow_records(spec, &wf, tasks);
    memcpy(wf.id, cur.id, sizeof wf.id);
    wf.ns = xstrdup(nz(cur.ns));
    wf.owner = xstrdup(nz(cur.owner));
    wf.state = cur.state;
    rc = store_workflow_put(c->st, &wf, scheds, n, tasks, spec->ntasks, expect_version, NULL,
                            c->audit, c->now_ms);
    if (rc == SKED_EPRECOND)
        rc = refuse(c, rc, NULL, "the workflow changed; its version is not %lld",
                    (long long)expect_version);
    else if (rc == SKED_ECONFLICT)
        rc = workflow_name_taken(c, spec->name, cur.ns);
    else if (rc != 0)
        rc = store_failed(c, rc, "updating the workflow");
    else
        sched_kick(c->sched);
out:
    for (size_t i = 0; i < spec->ntasks; i++)
        store_job_clear(&tasks[i]);
    free(tasks);
    sched_array_free(scheds, n);
    sched_array_free(old, nold);
    store_job_clear(&cur);
    store_job_clear(&wf);
    return rc;
}
