/*
 * The jobs API (docs/api.md, "Jobs"): create (one job, or a batch of up
 * to 1,000 at once), list, show, patch, delete, pause, resume, trigger,
 * and the schedule previews.
 *
 * A job is stored with its canonical spec document (jobspec_to_json) and
 * its schedules as separate rows that carry the firing state (next and last
 * fire time). The resource a client sees is that document merged with the
 * job's bookkeeping, its schedules enriched with their ids and fire times.
 *
 * The handlers here translate HTTP and nothing more: they parse the request
 * (the body into a jobspec, core/jobspec.c, which is the only validation of
 * a spec; the schedule preview wraps its schedules into a minimal job for
 * that), check the caller's access, call the job service (jobsvc.h) for
 * every change, and map its answer to a status and a JSON or problem+json
 * body. Reads go to the store directly and are rendered here.
 *
 * Namespaces (auth.h): a job lives in one namespace, named at creation
 * ("namespace" in the body, else the caller's default) and fixed after.
 * A caller sees only the jobs of its namespaces; any other job answers 404
 * exactly as a job that does not exist, and lists leave it out. Changing a
 * visible job needs admin or operator, or role user and being its owner
 * (403). Every change is audited once it is committed.
 */
#include "server/api.h"
#include "server/server_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/jobspec.h"
#include "server/auth.h"
#include "server/jobsvc.h"
#include "server/sched.h"

#define IDEM_KEY_MAX    200
#define PREVIEW_DEFAULT 10
#define PREVIEW_MAX     1000
#define FROM_HELP       "an RFC 3339 time from 1970 to 9999 such as \"2027-03-28T00:00:00Z\""

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* Time zones compare as written, except that "" and NULL mean UTC. */
static const char *tz_or_utc(const char *tz)
{
    return tz && *tz ? tz : "UTC";
}

jobsvc_call_t api_jobsvc_call(http_req_t *req)
{
    return (jobsvc_call_t){.st = req->st,
                           .sched = req->srv ? server_sched(req->srv) : NULL,
                           .who = req->who,
                           .now_ms = req->now_ms};
}

/* Whether the caller may see (write = false) or change (write = true) job
 * id. On false resp holds the answer: 404 for a job of a namespace the
 * caller has no grant for (as for a job that does not exist), 403 for a
 * visible job it may not change. *ns_out (may be NULL) gets the job's
 * namespace (new; caller frees) when it was read. Callers that see every
 * namespace skip the read for plain reads. */
static bool job_access(http_req_t *req, http_resp_t *resp, const char *id, bool write,
                       char **ns_out)
{
    log_ctx_job(id);
    char *ns = NULL, *owner = NULL;
    bool ok = false;
    if (ns_out) *ns_out = NULL;
    if (!write && auth_sees_all(req->who)) return true;
    int rc = store_job_scope(req->st, id, &ns, &owner);
    if (rc == SKED_ENOTFOUND) {
        api_fail(resp, SKED_ENOTFOUND, "path.id", "no such job");
        goto out;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, "job", "reading the job");
        goto out;
    }
    if (!auth_ns_visible(req->who, ns)) {
        api_fail(resp, SKED_ENOTFOUND, "path.id", "no such job");
        if (write) auth_audit(req, id, ns, 404);
        goto out;
    }
    if (write && !auth_job_writable(req->who, ns, owner)) {
        api_fail(resp, SKED_EFORBID, NULL,
                 "a %s may change only the jobs it owns; this one is %s's",
                 token_role_name(req->who->role), nz(owner));
        auth_audit(req, id, ns, 403);
        goto out;
    }
    ok = true;
    if (ns_out) {
        *ns_out = ns;
        ns = NULL;
    }
out:
    free(ns);
    free(owner);
    return ok;
}

/* job_access for the /v1/jobs/{id} routes, which serve jobs. A workflow
 * (stored as a job of kind workflow) is none there: 404, as its document
 * is no job's (it is at /v1/workflows/{id}). A workflow's task is read
 * there (its runs name it as their job) but changed only through its
 * workflow's document (409), so that the two never disagree. A job that
 * cannot be read here (deleted) is left to the handler, as before. */
static bool plain_job_access(http_req_t *req, http_resp_t *resp, const char *id, bool write,
                             char **ns_out)
{
    if (!job_access(req, resp, id, write, ns_out)) return false;
    store_job_t j = {0};
    int rc = store_job_get(req->st, id, &j, NULL, NULL);
    bool ok = rc == SKED_ENOTFOUND || (rc == 0 && j.kind == JOB_KIND_JOB) ||
              (rc == 0 && j.kind == JOB_KIND_TASK && !write);
    if (ok) {
        store_job_clear(&j);
        return true;
    }
    if (rc != 0)
        api_fail_store(resp, rc, "job", "reading the job");
    else if (j.kind == JOB_KIND_WORKFLOW)
        api_fail(resp, SKED_ENOTFOUND, "path.id",
                 "no such job: %s is a workflow (/v1/workflows/%s)", id, id);
    else
        api_fail(resp, SKED_ECONFLICT, "path.id",
                 "job %s is the task '%s' of workflow %s: change it through the workflow "
                 "(PUT /v1/workflows/%s)",
                 id, nz(j.name), j.parent_id, j.parent_id);
    store_job_clear(&j);
    if (ns_out) FREE_NULL(*ns_out);
    return false;
}

/* Answers a refusal of the job document (jobspec.h) or of the job service
 * (jobsvc.h): rc's status, and the field err names, or else the part of
 * the request rc is about (the path's job id, the If-Match version). */
void api_job_fail(http_resp_t *resp, int rc, const jobspec_error_t *err)
{
    const char *field = err->field[0]          ? err->field
                        : rc == SKED_ENOTFOUND ? "path.id"
                        : rc == SKED_EPRECOND  ? "header.If-Match"
                                               : NULL;
    api_fail(resp, rc, field, "%s", err->detail[0] ? err->detail : sked_strerror(rc));
}

void api_set_etag(http_resp_t *resp, int64_t version)
{
    char etag[32];
    snprintf(etag, sizeof etag, "\"%lld\"", (long long)version);
    http_set_header(resp, "ETag", etag);
}

/* ---- rendering ---------------------------------------------------------- */

/* Adds id, next_fire_at and last_fire_at to each schedule of the document.
 * Stored schedules are matched by definition rather than position
 * (schedule_match), since the store need not return them in document
 * order. One that matches none (a document in an older canonical form)
 * takes the stored schedule at its own position, if no other took it. */
void api_enrich_schedules(json_t *arr, const store_schedule_t *scheds, size_t n)
{
    size_t nd = json_array_size(arr), nw = 0;
    schedule_spec_t *want = xcalloc(nd + 1, sizeof *want), *have = xcalloc(n + 1, sizeof *have);
    size_t *doc_at = xcalloc(nd + 1, sizeof *doc_at), *match = xcalloc(nd + 1, sizeof *match);
    size_t *slot = xcalloc(nd + 1, sizeof *slot);
    bool *used = xcalloc(n + 1, sizeof *used);
    size_t i;
    json_t *d;

    for (size_t k = 0; k < n; k++)
        have[k] = sched_spec(&scheds[k]);
    json_array_foreach(arr, i, d)
    {
        slot[i] = SIZE_MAX;
        if (jobspec_schedule_read(d, &want[nw]) == 0) doc_at[nw++] = i;
    }
    schedule_match(want, nw, have, n, match);
    for (size_t w = 0; w < nw; w++)
        if ((slot[doc_at[w]] = match[w]) != SIZE_MAX) used[match[w]] = true;
    json_array_foreach(arr, i, d)
    {
        if (!json_is_object(d)) continue;
        size_t j = slot[i];
        if (j == SIZE_MAX && i < n && !used[i]) used[j = i] = true;
        if (j == SIZE_MAX) {
            json_object_set_new(d, "id", json_null());
            json_object_set_new(d, "next_fire_at", json_null());
            json_object_set_new(d, "last_fire_at", json_null());
            continue;
        }
        json_object_set_new(d, "id", json_string(scheds[j].id));
        json_object_set_new(d, "next_fire_at", api_time_json(scheds[j].next_fire_ms));
        json_object_set_new(d, "last_fire_at", api_time_json(scheds[j].last_fire_ms));
    }
    free(want);
    free(have);
    free(doc_at);
    free(match);
    free(slot);
    free(used);
}

/* Adds a job's bookkeeping to o, its redacted stored document, making it
 * the job resource. Returns o. */
static json_t *job_fill(json_t *o, const store_job_t *job, const store_schedule_t *scheds, size_t n)
{
    json_object_set_new(o, "namespace", json_string(job->ns ? job->ns : "default"));
    json_object_set_new(o, "owner", json_string(nz(job->owner)));
    json_object_set_new(o, "state", json_string(nz(job_state_name(job->state))));
    json_object_set_new(o, "version", json_integer(job->version));
    json_object_set_new(o, "created_at", api_time_json(job->created_ms));
    json_object_set_new(o, "updated_at", api_time_json(job->updated_ms));
    json_t *arr = json_object_get(o, "schedules");
    if (json_is_array(arr)) api_enrich_schedules(arr, scheds, n);
    return o;
}

/* The job resource from its stored document spec (borrowed). New
 * reference. */
static json_t *job_doc(const store_job_t *job, const json_t *spec, const store_schedule_t *scheds,
                       size_t n)
{
    /* Every job answer goes through here: secret env values never leave
     * the server except to the worker that runs the job (api_workers.c). */
    json_t *shown = jobspec_redact(spec);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(job->id));
    json_object_update(o, shown);
    json_decref(shown);
    return job_fill(o, job, scheds, n);
}

/* The job resource. New reference. */
static json_t *job_json(const store_job_t *job, const store_schedule_t *scheds, size_t n)
{
    json_error_t jerr;
    json_t *spec = job->spec_json ? json_loads(job->spec_json, 0, &jerr) : NULL;
    if (!json_is_object(spec)) {
        log_error("api", "job %s has an unreadable stored spec", job->id);
        json_decref(spec);
        spec = json_object();
    }
    json_t *o = job_doc(job, spec, scheds, n);
    json_decref(spec);
    return o;
}

/* The job's latest run that is due by now_ms (runs are materialised a
 * little ahead of their fire time; those are not "last" yet), rendered
 * without attempts, or null. */
static json_t *last_run_json(store_t *st, const char *job_id, int64_t now_ms)
{
    store_run_filter_t f = {
        .job_id = job_id, .since_ms = INT64_MIN, .until_ms = now_ms + 1, .limit = 1};
    store_run_t *runs = NULL;
    size_t n = 0;
    char *cursor = NULL;
    json_t *out = NULL;
    int rc = store_run_list(st, &f, &runs, &n, &cursor);
    if (rc != 0 && !api_logged_below(rc))
        log_warn("api", "last run of job %s: %s", job_id, sked_strerror(rc));
    out = rc == 0 && n > 0 ? api_run_json(&runs[0], NULL, 0) : json_null();
    for (size_t i = 0; i < n; i++)
        store_run_clear(&runs[i]);
    free(runs);
    free(cursor);
    return out;
}

/* An array job's latest run with its members' counts ("array": total,
 * and by state), or null. */
static json_t *last_group_json(store_t *st, const char *job_id)
{
    store_grouped_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    json_t *out = json_null();
    int rc = store_group_list(st, job_id, NULL, 1, &v, &n, &next);
    if (rc == 0 && n > 0) {
        const store_group_t *g = &v[0].group;
        out = api_run_json(&v[0].run, NULL, 0);
        json_t *c = json_object();
        json_object_set_new(c, "count", json_integer(g->n));
        json_object_set_new(c, "parallel", json_integer(g->parallel));
        json_object_set_new(c, "open", json_integer(g->open));
        json_object_set_new(c, "succeeded", json_integer(g->ok));
        json_object_set_new(c, "failed", json_integer(g->failed));
        json_object_set_new(c, "canceled", json_integer(g->canceled));
        json_object_set_new(c, "skipped", json_integer(g->skipped));
        json_object_set_new(out, "array", c);
    } else if (rc != 0 && !api_logged_below(rc)) {
        log_warn("api", "last run of array job %s: %s", job_id, sked_strerror(rc));
    }
    for (size_t i = 0; i < n; i++)
        store_run_clear(&v[i].run);
    free(v);
    free(next);
    return out;
}

/* Reads job id and answers it with status (and last_run if asked). */
static void answer_job(http_req_t *req, http_resp_t *resp, const char *id, int status,
                       bool with_last_run)
{
    store_job_t job = {0};
    store_schedule_t *scheds = NULL;
    size_t n = 0;
    int rc = store_job_get(req->st, id, &job, &scheds, &n);
    if (rc != 0) {
        api_fail_store(resp, rc, "job", "reading the job");
        goto out;
    }
    json_t *doc = job_json(&job, scheds, n);
    if (with_last_run && job.array_count > 0)
        json_object_set_new(doc, "last_run", last_group_json(req->st, id));
    else if (with_last_run)
        json_object_set_new(doc, "last_run", last_run_json(req->st, id, req->now_ms));
    api_set_etag(resp, job.version);
    http_json(resp, status, doc);
out:
    for (size_t i = 0; i < n; i++)
        store_schedule_clear(&scheds[i]);
    free(scheds);
    store_job_clear(&job);
}

/* ---- handlers ----------------------------------------------------------- */

/* The Idempotency-Key of req into *idem (NULL = none); false, resp
 * answered, when it is malformed. */
static bool idem_header(http_req_t *req, http_resp_t *resp, const char **idem)
{
    *idem = http_header(req, "Idempotency-Key");
    if (*idem && (!**idem || strlen(*idem) > IDEM_KEY_MAX)) {
        api_fail(resp, SKED_EINVAL, "header.Idempotency-Key",
                 "Idempotency-Key must be 1 to %d bytes", IDEM_KEY_MAX);
        return false;
    }
    return true;
}

#define NS_HELP "a namespace is 1-63 of a-z, 0-9, '-', '_', '.'"

/* The namespace a created resource's document obj names ("namespace",
 * taken out of obj), else the caller's default, into nsbuf. SKED_EINVAL:
 * not a namespace's name; SKED_EFORBID: the caller has no grant for it. */
static int body_ns(http_req_t *req, json_t *obj, char *nsbuf, size_t nslen)
{
    json_t *nsv = json_object_get(obj, "namespace");
    if (nsv && !json_is_null(nsv)) {
        if (!json_is_string(nsv) || !auth_ns_name_ok(json_string_value(nsv))) return SKED_EINVAL;
        snprintf(nsbuf, nslen, "%s", json_string_value(nsv));
    } else {
        auth_default_ns(req->who, nsbuf, nslen);
    }
    json_object_del(obj, "namespace");
    return req->who && !auth_ns_visible(req->who, nsbuf) ? SKED_EFORBID : 0;
}

/* The start of a create (a job's, a workflow's): the Idempotency-Key
 * (*idem; NULL = none), the body, and the namespace it names ("namespace",
 * taken out of the body: it is the resource's address, not part of its
 * document; else the caller's default), granted to the caller. On failure
 * answers resp and returns NULL; else the body (new reference). */
json_t *api__create_body(http_req_t *req, http_resp_t *resp, const char **idem, char *nsbuf,
                         size_t nslen)
{
    if (!idem_header(req, resp, idem)) return NULL;
    json_t *body = http_body_json(req, resp);
    if (!body) return NULL;
    int rc = body_ns(req, body, nsbuf, nslen);
    if (rc == SKED_EINVAL) api_fail(resp, SKED_EINVAL, "namespace", NS_HELP);
    if (rc == SKED_EFORBID) {
        api_fail(resp, SKED_EFORBID, "namespace", "you have no grant for namespace '%s'", nsbuf);
        auth_audit(req, NULL, nsbuf, 403);
    }
    if (rc == 0) return body;
    json_decref(body);
    return NULL;
}

/* Appends v as JSON text to b. */
static void put_json(buf_t *b, const json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    buf_puts(b, t ? t : "null");
    free(t);
}

static void put_str(buf_t *b, const char *key, const char *s)
{
    buf_json_key(b, key, false);
    buf_json_str(b, s);
}

/* A time member, null when ms < 0 (as api_time_json). */
static void put_time(buf_t *b, const char *key, int64_t ms)
{
    char at[SKED_RFC3339_LEN];
    buf_json_key(b, key, false);
    if (ms >= 0) clock_format_rfc3339(ms, at, sizeof at);
    buf_json_str(b, ms >= 0 ? at : NULL);
}

/* Appends to b the job resource of it, just created: what job_json makes
 * of it, written as text around it->rest (the text of its canonical
 * document the store got too) instead of building and writing every
 * document again, which cost as much as storing the batch (and a fifth of
 * a single create's CPU). Its schedules are the document's, in order, each
 * with what api_enrich_schedules would add from the stored one made of it
 * (it->scheds[i] of spec->schedules[i]: jobsvc's build_scheds). A document
 * with anything to redact takes job_json's way. */
static void job_text(buf_t *b, jobsvc_item_t *it)
{
    const store_job_t *j = &it->job;
    if (jobspec_has_secrets(it->spec)) {
        json_t *doc = job_json(j, it->scheds, it->nscheds);
        put_json(b, doc);
        json_decref(doc);
        return;
    }
    buf_puts(b, "{\"id\":");
    buf_json_str(b, j->id);
    buf_putc(b, ',');
    buf_puts(b, it->rest);
    buf_puts(b, ",\"schedules\":[");
    for (size_t i = 0; i < it->spec->nschedules; i++) {
        buf_puts(b, i ? ",{" : "{");
        jobspec_write_schedule(b, &it->spec->schedules[i]);
        const store_schedule_t *sc = &it->scheds[i]; /* nscheds == nschedules */
        put_str(b, "id", sc->id);
        put_time(b, "next_fire_at", sc->next_fire_ms);
        put_time(b, "last_fire_at", sc->last_fire_ms);
        buf_putc(b, '}');
    }
    buf_putc(b, ']');
    put_str(b, "namespace", j->ns ? j->ns : "default");
    put_str(b, "owner", nz(j->owner));
    put_str(b, "state", nz(job_state_name(j->state)));
    buf_puts(b, ",\"version\":");
    buf_put_i64(b, j->version);
    put_time(b, "created_at", j->created_ms);
    put_time(b, "updated_at", j->updated_ms);
    buf_putc(b, '}');
}

void api_jobs_create(http_req_t *req, http_resp_t *resp)
{
    json_t *body = NULL;
    jobspec_t spec;
    jobspec_error_t jerr = {{0}, {0}};
    jobsvc_call_t call = api_jobsvc_call(req);
    char nsbuf[64];
    jobsvc_item_t it = {.ns = nsbuf, .spec = &spec};
    char loc[64];

    memset(&spec, 0, sizeof spec);
    const char *idem = NULL;
    if (!(body = api__create_body(req, resp, &idem, nsbuf, sizeof nsbuf))) goto out;
    int rc = jobspec_parse(body, &spec, &jerr);
    if (rc != 0) {
        api_job_fail(resp, rc, &jerr);
        goto out;
    }
    store_audit_t audit;
    auth_audit_entry(req, NULL, nsbuf, 201, &audit); /* the store names the new job */
    call.audit = &audit;
    rc = jobsvc_create_item(&call, &it, idem);
    snprintf(loc, sizeof loc, "/v1/jobs/%s", it.job.id);
    if (rc == SKED_EEXIST) { /* an idempotent repeat: the job first created */
        if (!api_idem_repeat_ok(req, resp, it.job.id, JOB_KIND_JOB)) goto out;
        http_set_header(resp, "Location", loc);
        answer_job(req, resp, it.job.id, 200, false);
        goto out;
    }
    if (rc != 0) {
        api_job_fail(resp, rc, &call.err);
        goto out;
    }
    http_set_header(resp, "Location", loc);
    api_set_etag(resp, it.job.version);
    buf_t b = BUF_INIT;
    job_text(&b, &it);
    http_text(resp, 201, "application/json", b.data, b.len);
    buf_free(&b);
out:
    jobsvc_item_clear(&it);
    jobspec_free(&spec);
    json_decref(body);
}

/* ---- POST /v1/jobs:batch -------------------------------------------------- */

#define BATCH_ERRORS_MAX 100 /* refused items listed in one answer */

/* Adds the refusal of item i (field: the part of its document to blame,
 * "" = the item) to errors, up to BATCH_ERRORS_MAX of them. */
static void batch_error(json_t *errors, size_t i, const char *field, const char *detail)
{
    if (json_array_size(errors) >= BATCH_ERRORS_MAX) return;
    char f[sizeof((jobspec_error_t *)0)->field + 32];
    snprintf(f, sizeof f, "jobs[%zu]%s%s", i, *field ? "." : "", field);
    json_t *e = json_object(), *d = json_string(detail);
    json_object_set_new(e, "field", json_string(f));
    json_object_set_new(e, "detail", d ? d : json_string("invalid"));
    json_array_append_new(errors, e);
}

/* Answers the refusal of nbad of n items, listed in errors (stolen), with
 * err's status: field names the first, the detail tells the first and how
 * many more there are. */
static void batch_refused(http_resp_t *resp, int err, json_t *errors, size_t nbad, size_t n)
{
    json_t *first = json_array_get(errors, 0);
    const char *field = json_string_value(json_object_get(first, "field"));
    const char *detail = json_string_value(json_object_get(first, "detail"));
    if (sked_http_status(err) >= 500) { /* api_fail logs what it must */
        api_fail(resp, err, field, "%s", detail ? detail : sked_strerror(err));
        json_decref(errors);
        return;
    }
    char more[64] = "";
    if (nbad > 1) snprintf(more, sizeof more, " (and %zu more jobs refused; see errors)", nbad - 1);
    http_problem_list(resp, err, field, errors, "%s: %s%s; none of the %zu jobs was created",
                      field ? field : "jobs", detail ? detail : sked_strerror(err), more, n);
}

/* The namespaces of a batch's audit entry: the one they share, or each
 * once, comma-separated. New; caller frees. */
static char *batch_namespaces(char (*ns)[64], size_t n)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "%s", ns[0]);
    for (size_t i = 1; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen && strcmp(ns[i], ns[0]); j++)
            seen = !strcmp(ns[i], ns[j]);
        if (!seen && strcmp(ns[i], ns[0])) buf_printf(&b, ",%s", ns[i]);
    }
    char *s = xstrdup(b.data);
    buf_free(&b);
    return s;
}

/* An idempotent repeat of a batch: the jobs first created (ids, as the
 * store keeps them), those not deleted since, 200. */
static void batch_repeat(http_req_t *req, http_resp_t *resp, const char *ids)
{
    json_t *arr = json_array();
    for (const char *p = ids; *p;) {
        size_t len = strcspn(p, ",");
        char id[SKED_ID_LEN];
        snprintf(id, sizeof id, "%.*s", (int)(len < sizeof id ? len : sizeof id - 1), p);
        p += len + (p[len] == ',');
        store_job_t job = {0};
        store_schedule_t *scheds = NULL;
        size_t n = 0;
        int rc = store_job_get(req->st, id, &job, &scheds, &n);
        if (rc == 0) json_array_append_new(arr, job_json(&job, scheds, n));
        sched_array_free(scheds, n);
        store_job_clear(&job);
        if (rc != 0 && rc != SKED_ENOTFOUND) {
            api_fail_store(resp, rc, NULL, "reading the jobs of the batch");
            json_decref(arr);
            return;
        }
    }
    http_json(resp, 200, json_pack("{s:o}", "jobs", arr));
}

void api_jobs_batch(http_req_t *req, http_resp_t *resp)
{
    const char *idem = NULL;
    json_t *body = NULL, *errors = NULL, *arr;
    jobspec_t *specs = NULL;
    jobsvc_item_t *items = NULL;
    char(*ns)[64] = NULL;
    char *earlier = NULL, *audit_ns = NULL;
    size_t n = 0, nbad = 0;
    jobsvc_call_t call = api_jobsvc_call(req);
    const char *key;
    json_t *v;
    int rc;

    if (!idem_header(req, resp, &idem) || !(body = http_body_json(req, resp))) goto out;
    json_object_foreach(body, key, v)
    {
        if (strcmp(key, "jobs") != 0) {
            api_fail(resp, SKED_EINVAL, key, "unknown field (a batch is {\"jobs\": [...]})");
            goto out;
        }
    }
    arr = json_object_get(body, "jobs");
    n = json_array_size(arr);
    if (!json_is_array(arr) || n == 0 || n > STORE_BATCH_MAX) {
        api_fail(resp, SKED_EINVAL, "jobs", "jobs must be an array of 1 to %d jobs",
                 STORE_BATCH_MAX);
        goto out;
    }
    specs = xcalloc(n, sizeof *specs);
    items = xcalloc(n, sizeof *items);
    ns = xcalloc(n, sizeof *ns);

    /* Access first: a namespace the caller may not create in is refused
     * (403, the first such item named) before any document is judged.
     * items[i].rc holds body_ns's verdict until the service judges. */
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(arr, i);
        if (!json_is_object(item)) continue;
        if ((items[i].rc = body_ns(req, item, ns[i], sizeof ns[i])) == SKED_EFORBID) {
            char field[48];
            snprintf(field, sizeof field, "jobs[%zu].namespace", i);
            api_fail(resp, SKED_EFORBID, field, "you have no grant for namespace '%s'", ns[i]);
            auth_audit(req, NULL, ns[i], 403);
            goto out;
        }
    }
    errors = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(arr, i);
        jobspec_error_t jerr = {{0}, {0}};
        if (!json_is_object(item)) {
            batch_error(errors, i, "", "a job must be a JSON object");
        } else if (items[i].rc == SKED_EINVAL) {
            batch_error(errors, i, "namespace", NS_HELP);
        } else if (jobspec_parse(item, &specs[i], &jerr) != 0) {
            batch_error(errors, i, jerr.field, jerr.detail);
        } else {
            items[i].ns = ns[i];
            items[i].spec = &specs[i];
            continue;
        }
        nbad++;
    }
    if (nbad) {
        batch_refused(resp, SKED_EINVAL, errors, nbad, n);
        errors = NULL;
        goto out;
    }

    /* One audit entry records the request; the store names the first job. */
    store_audit_t audit;
    audit_ns = batch_namespaces(ns, n);
    auth_audit_entry(req, NULL, audit_ns, 201, &audit);
    call.audit = &audit;
    rc = jobsvc_create_batch(&call, items, n, idem, &earlier);
    if (rc == SKED_EEXIST && !earlier) {
        api_fail(resp, SKED_ECONFLICT, "header.Idempotency-Key",
                 "this Idempotency-Key was used to create job %s, not a batch", items[0].job.id);
        goto out;
    }
    if (rc == SKED_EEXIST) {
        batch_repeat(req, resp, earlier);
        goto out;
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) {
            if (!items[i].rc) continue;
            batch_error(errors, i, items[i].err.field, items[i].err.detail);
            nbad++;
        }
        if (nbad) {
            batch_refused(resp, rc, errors, nbad, n);
            errors = NULL;
        } else {
            api_job_fail(resp, rc, &call.err);
        }
        goto out;
    }
    buf_t b = BUF_INIT;
    buf_puts(&b, "{\"jobs\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) buf_puts(&b, ",");
        job_text(&b, &items[i]);
    }
    buf_puts(&b, "]}\n");
    http_text(resp, 201, "application/json", b.data, b.len);
    buf_free(&b);
out:
    for (size_t i = 0; items && i < n; i++) {
        jobsvc_item_clear(&items[i]);
        jobspec_free(&specs[i]);
    }
    free(items);
    free(specs);
    free(ns);
    free(earlier);
    free(audit_ns);
    json_decref(errors);
    json_decref(body);
}

void api__job_list(http_req_t *req, http_resp_t *resp, job_kind_t kind, api_job_render_fn render)
{
    store_job_filter_t f = {0};
    store_job_t *jobs = NULL;
    size_t n = 0;
    char *next = NULL;
    long limit = 100;
    job_state_t st;

    const char *q = http_query(req, "limit");
    if (q && api__int_param(q, 1, 1000, &limit) != 0) {
        api_fail(resp, SKED_EINVAL, "query.limit", "limit must be an integer from 1 to 1000");
        goto out;
    }
    f.state = http_query(req, "state");
    if (f.state && job_state_parse(f.state, &st) != 0) {
        api_fail(resp, SKED_EINVAL, "query.state",
                 "state must be one of active, paused, done, deleted");
        goto out;
    }
    f.ns = http_query(req, "namespace");
    f.ns_in = auth_ns_filter(req->who);
    f.queue = http_query(req, "queue");
    f.name = http_query(req, "name");
    f.tag = http_query(req, "tag");
    q = http_query(req, "sort");
    if (q && job_sort_parse(q, &f.sort) != 0) {
        buf_t all = BUF_INIT;
        for (int i = 0; i < JOB_SORT_COUNT; i++)
            buf_printf(&all, "%s%s", i ? ", " : "", job_sort_name((job_sort_t)i));
        api_fail(resp, SKED_EINVAL, "query.sort", "sort must be one of %s", all.data);
        buf_free(&all);
        goto out;
    }
    f.cursor = http_query(req, "cursor");
    f.limit = (int)limit;
    f.kind = kind;

    int rc = store_job_list(req->st, &f, &jobs, &n, &next);
    if (rc == SKED_EINVAL && f.cursor) {
        api_fail(resp, SKED_EINVAL, "query.cursor",
                 "cursor is not one this server handed out for sort=%s", job_sort_name(f.sort));
        goto out;
    }
    if (rc != 0) {
        api_fail_store(resp, rc, kind == JOB_KIND_WORKFLOW ? "workflow" : "job", "listing");
        goto out;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        /* The list rows carry no schedules; fetch them so each item has its
         * next fire times, as the job resource promises. */
        store_job_t tmp = {0};
        store_schedule_t *sc = NULL;
        size_t nsc = 0;
        if (store_job_get(req->st, jobs[i].id, &tmp, &sc, &nsc) != 0) nsc = 0;
        json_array_append_new(items, render(&jobs[i], sc, nsc));
        sched_array_free(sc, nsc);
        store_job_clear(&tmp);
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "items", items);
    json_object_set_new(doc, "next_cursor", next ? json_string(next) : json_null());
    http_json(resp, 200, doc);
out:
    for (size_t i = 0; i < n; i++)
        store_job_clear(&jobs[i]);
    free(jobs);
    free(next);
}

void api_jobs_list(http_req_t *req, http_resp_t *resp)
{
    api__job_list(req, resp, JOB_KIND_JOB, job_json);
}

void api_jobs_get(http_req_t *req, http_resp_t *resp)
{
    const char *id = api__path_id(req, resp);
    if (id && plain_job_access(req, resp, id, false, NULL)) answer_job(req, resp, id, 200, true);
}

/* Why it is or is not running (api_explain.c): seen by whoever may GET it. */
void api_jobs_explain(http_req_t *req, http_resp_t *resp)
{
    const char *id = api__path_id(req, resp);
    if (id && plain_job_access(req, resp, id, false, NULL)) api__explain(req, resp, id, NULL);
}

/* If-Match: "3" or "\"3\"" (a weak W/ prefix is tolerated); "*" = any. */
static int parse_if_match(const char *s, int64_t *out)
{
    char tmp[32];
    long v = 0;
    if (!strncmp(s, "W/", 2)) s += 2;
    if (!strcmp(s, "*")) {
        *out = 0;
        return 0;
    }
    size_t len = strlen(s);
    if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof tmp) return SKED_EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (api__int_param(tmp, 1, LONG_MAX, &v) != 0) return SKED_EINVAL;
    *out = v;
    return 0;
}

void api_jobs_patch(http_req_t *req, http_resp_t *resp)
{
    json_t *body = NULL;
    int64_t want = 0;
    char *jns = NULL;
    const char *id = api__path_id(req, resp);
    if (!id) return;
    if (!plain_job_access(req, resp, id, true, &jns)) return;

    const char *ifm = http_header(req, "If-Match");
    if (ifm && parse_if_match(ifm, &want) != 0) {
        api_fail(resp, SKED_EINVAL, "header.If-Match",
                 "If-Match must be the job's version, e.g. \"3\"");
        goto out;
    }
    body = http_body_json(req, resp);
    if (!body) goto out;
    /* A job read back and sent again carries its namespace: accepted when
     * unchanged, since a job never moves between namespaces. */
    json_t *nsv = json_object_get(body, "namespace");
    if (nsv) {
        if (!json_is_string(nsv) || strcmp(json_string_value(nsv), nz(jns)) != 0) {
            api_fail(resp, SKED_EINVAL, "namespace", "a job's namespace cannot be changed");
            goto out;
        }
        json_object_del(body, "namespace");
    }

    jobsvc_call_t call = api_jobsvc_call(req);
    store_audit_t audit;
    auth_audit_entry(req, id, jns, 200, &audit);
    call.audit = &audit;
    int rc = jobsvc_update(&call, id, body, want);
    if (rc != 0) {
        api_job_fail(resp, rc, &call.err);
        goto out;
    }
    answer_job(req, resp, id, 200, false);
out:
    free(jns);
    json_decref(body);
}

static void set_state(http_req_t *req, http_resp_t *resp, job_state_t state)
{
    char *ns = NULL;
    jobsvc_call_t call = api_jobsvc_call(req);
    const char *id = api__path_id(req, resp);
    if (!id || !plain_job_access(req, resp, id, true, &ns)) return;
    store_audit_t audit;
    auth_audit_entry(req, id, ns, state == JOB_DELETED ? 204 : 200, &audit);
    call.audit = &audit;
    int rc = jobsvc_set_state(&call, id, state);
    if (rc != 0) {
        api_job_fail(resp, rc, &call.err);
        goto out;
    }
    if (state == JOB_DELETED)
        http_empty(resp, 204);
    else
        answer_job(req, resp, id, 200, false);
out:
    free(ns);
}

void api_jobs_delete(http_req_t *req, http_resp_t *resp)
{
    set_state(req, resp, JOB_DELETED);
}

void api_jobs_pause(http_req_t *req, http_resp_t *resp)
{
    set_state(req, resp, JOB_PAUSED);
}

void api_jobs_resume(http_req_t *req, http_resp_t *resp)
{
    set_state(req, resp, JOB_ACTIVE);
}

void api_jobs_trigger(http_req_t *req, http_resp_t *resp)
{
    char run_id[SKED_ID_LEN] = "";
    char loc[64];
    store_run_t run = {0};
    char *ns = NULL;
    jobsvc_call_t call = api_jobsvc_call(req);
    const char *id = api__path_id(req, resp);
    if (!id || !plain_job_access(req, resp, id, true, &ns)) return;

    store_audit_t audit;
    auth_audit_entry(req, id, ns, 201, &audit);
    call.audit = &audit;
    int rc = jobsvc_trigger(&call, id, run_id);
    if (rc != 0) {
        api_job_fail(resp, rc, &call.err);
        goto out;
    }
    rc = store_run_get(req->st, run_id, &run, NULL, NULL);
    if (rc != 0) {
        api_fail_store(resp, rc == SKED_ENOTFOUND ? SKED_EINTERNAL : rc, "job",
                       "reading the new run");
        goto out;
    }
    snprintf(loc, sizeof loc, "/v1/runs/%s", run_id);
    http_set_header(resp, "Location", loc);
    http_json(resp, 201, api_run_json(&run, NULL, 0));
out:
    free(ns);
    store_run_clear(&run);
}

/* ---- preview ------------------------------------------------------------ */

/* Parses a preview's "from" (s of len bytes). 0, or SKED_EINVAL. Instants
 * before 1970 are refused: the API has no way to write them. */
static int parse_from(const char *s, size_t len, int64_t *from_ms)
{
    int64_t ms;
    if (strlen(s) != len || clock_parse_rfc3339(s, &ms) != 0 || ms < 0) return SKED_EINVAL;
    *from_ms = ms;
    return 0;
}

/* The first n fire times of spec's schedules at or after from_ms, merged in
 * time order. On failure answers resp and returns NULL. New reference. */
static json_t *preview_json(const jobspec_t *spec, size_t n, int64_t from_ms, http_resp_t *resp)
{
    size_t ns = spec->nschedules;
    schedule_t **c = ns ? xcalloc(ns, sizeof *c) : NULL;
    schedule_fire_t **fires = ns ? xcalloc(ns, sizeof *fires) : NULL;
    size_t *cnt = ns ? xcalloc(ns, sizeof *cnt) : NULL;
    size_t *pos = ns ? xcalloc(ns, sizeof *pos) : NULL;
    json_t *doc = NULL;
    /* Past 9999 RFC 3339 cannot write a fire time: the preview ends there. */
    const int64_t end_ms = clock_days_from_civil(10000, 1, 1) * 86400000;

    for (size_t i = 0; i < ns; i++) {
        char err[256] = "";
        if (schedule_compile(&spec->schedules[i].spec, &c[i], err, sizeof err) != 0) {
            api_fail(resp, SKED_EINTERNAL, NULL, "schedule %zu does not compile: %s", i, err);
            goto out;
        }
        fires[i] = xcalloc(n, sizeof *fires[i]);
        cnt[i] = schedule_preview(c[i], from_ms - 1, fires[i], n);
        while (cnt[i] > 0 && fires[i][cnt[i] - 1].utc_ms >= end_ms)
            cnt[i]--;
    }
    json_t *arr = json_array();
    for (size_t k = 0; k < n; k++) {
        size_t best = ns;
        for (size_t i = 0; i < ns; i++)
            if (pos[i] < cnt[i] &&
                (best == ns || fires[i][pos[i]].utc_ms < fires[best][pos[best]].utc_ms))
                best = i;
        if (best == ns) break;
        const schedule_fire_t *f = &fires[best][pos[best]++];
        json_t *o = json_object();
        json_object_set_new(o, "at", api_time_json(f->utc_ms));
        json_object_set_new(o, "local", json_string(f->local));
        json_object_set_new(o, "timezone",
                            json_string(tz_or_utc(spec->schedules[best].spec.timezone)));
        json_object_set_new(o, "dst_shifted", json_boolean(f->dst_shifted));
        json_object_set_new(o, "schedule", json_integer((json_int_t)best));
        json_array_append_new(arr, o);
    }
    doc = json_object();
    json_object_set_new(doc, "fire_times", arr);
out:
    for (size_t i = 0; i < ns; i++) {
        schedule_free(c[i]);
        free(fires[i]);
    }
    free(c);
    free(fires);
    free(cnt);
    free(pos);
    return doc;
}

void api_jobs_preview(http_req_t *req, http_resp_t *resp)
{
    store_job_t job = {0};
    jobspec_t spec;
    jobspec_error_t jerr = {{0}, {0}};
    json_t *doc = NULL;
    json_error_t perr;
    long n = PREVIEW_DEFAULT;
    int64_t from_ms = req->now_ms;

    memset(&spec, 0, sizeof spec);
    const char *id = api__path_id(req, resp);
    if (!id || !plain_job_access(req, resp, id, false, NULL)) goto out;
    const char *q = http_query(req, "n");
    if (q && api__int_param(q, 1, PREVIEW_MAX, &n) != 0) {
        api_fail(resp, SKED_EINVAL, "query.n", "n must be an integer from 1 to %d", PREVIEW_MAX);
        goto out;
    }
    q = http_query(req, "from");
    if (q && parse_from(q, strlen(q), &from_ms) != 0) {
        api_fail(resp, SKED_EINVAL, "query.from", "from must be " FROM_HELP);
        goto out;
    }
    int rc = store_job_get(req->st, id, &job, NULL, NULL);
    if (rc != 0) {
        api_fail_store(resp, rc, "job", "reading the job");
        goto out;
    }
    /* The stored canonical document is re-parsed to get the schedules in
     * document order, which is what the "schedule" index refers to. */
    doc = json_loads(nz(job.spec_json), 0, &perr);
    if (!doc || jobspec_parse(doc, &spec, &jerr) != 0) {
        api_fail(resp, SKED_EINTERNAL, NULL, "the stored spec of job %s does not parse (%s)", id,
                 jerr.field[0] ? jerr.field : "the document");
        goto out;
    }
    json_t *out = preview_json(&spec, (size_t)n, from_ms, resp);
    if (out) http_json(resp, 200, out);
out:
    json_decref(doc);
    jobspec_free(&spec);
    store_job_clear(&job);
}

void api_schedules_preview(http_req_t *req, http_resp_t *resp)
{
    json_t *body = NULL, *wrap = NULL;
    jobspec_t spec;
    jobspec_error_t jerr = {{0}, {0}};
    json_int_t n = PREVIEW_DEFAULT;
    int64_t from_ms = req->now_ms;
    const char *key;
    json_t *val;

    memset(&spec, 0, sizeof spec);
    body = http_body_json(req, resp);
    if (!body) goto out;
    json_object_foreach(body, key, val)
    {
        if (strcmp(key, "schedules") != 0 && strcmp(key, "n") != 0 && strcmp(key, "from") != 0) {
            api_fail(resp, SKED_EINVAL, key, "unknown field '%s'", key);
            goto out;
        }
    }
    json_t *jn = json_object_get(body, "n");
    if (jn) {
        if (!json_is_integer(jn) || json_integer_value(jn) < 1 ||
            json_integer_value(jn) > PREVIEW_MAX) {
            api_fail(resp, SKED_EINVAL, "n", "n must be an integer from 1 to %d", PREVIEW_MAX);
            goto out;
        }
        n = json_integer_value(jn);
    }
    /* A null is refused like anywhere in a job document (jobspec.h): a
     * template's unset variable must not preview from now, or nothing. */
    json_t *jf = json_object_get(body, "from");
    if (jf && (!json_is_string(jf) ||
               parse_from(json_string_value(jf), json_string_length(jf), &from_ms) != 0)) {
        api_fail(resp, SKED_EINVAL, "from", "from must be " FROM_HELP "%s",
                 json_is_null(jf) ? ", not null (leave it out to preview from now)" : "");
        goto out;
    }
    json_t *scheds = json_object_get(body, "schedules");
    if (!scheds || json_is_null(scheds)) {
        api_fail(resp, SKED_EINVAL, "schedules",
                 "schedules is required%s: an array of 1 to %d schedules",
                 scheds ? " and must not be null" : "", JOBSPEC_SCHEDULES_MAX);
        goto out;
    }
    if (json_is_array(scheds) && json_array_size(scheds) == 0) {
        api_fail(resp, SKED_EINVAL, "schedules", "schedules must name at least one schedule");
        goto out;
    }
    /* Validate with jobspec's own rules by previewing a minimal job: its
     * errors name "schedules[i]...", which are paths into this body too. */
    wrap =
        json_pack("{s:s, s:[s], s:O}", "name", "preview", "command", "true", "schedules", scheds);
    if (!wrap) {
        api_fail(resp, SKED_EINTERNAL, NULL, "cannot build the preview document");
        goto out;
    }
    if (jobspec_parse(wrap, &spec, &jerr) != 0) {
        if (strncmp(jerr.field, "schedules", 9) != 0)
            snprintf(jerr.field, sizeof jerr.field, "schedules");
        api_job_fail(resp, SKED_EINVAL, &jerr);
        goto out;
    }
    json_t *doc = preview_json(&spec, (size_t)n, from_ms, resp);
    if (doc) http_json(resp, 200, doc);
out:
    jobspec_free(&spec);
    json_decref(wrap);
    json_decref(body);
}

/* ---- the missed-fire ledger --------------------------------------------- */

/* GET /v1/jobs/{id}/misses?at=&limit=&cursor=: the stretches of fire times
 * the misfire policy passed over, latest first; with `at`, the stretch that
 * holds that instant (none: it was not missed). Answers "why didn't my job
 * run at T?" for any T of an outage, however long, at one row a stretch. */
void api_jobs_misses(http_req_t *req, http_resp_t *resp)
{
    store_miss_filter_t f = {.at_ms = INT64_MIN, .limit = 100};
    store_miss_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    long limit = 100;

    const char *id = api__path_id(req, resp);
    if (!id || !plain_job_access(req, resp, id, false, NULL)) goto out;
    const char *q = http_query(req, "limit");
    if (q && api__int_param(q, 1, 1000, &limit) != 0) {
        api_fail(resp, SKED_EINVAL, "query.limit", "limit must be an integer from 1 to 1000");
        goto out;
    }
    f.limit = (int)limit;
    q = http_query(req, "at");
    if (q && clock_parse_rfc3339(q, &f.at_ms) != 0) {
        api_fail(resp, SKED_EINVAL, "query.at", "at must be an RFC 3339 time");
        goto out;
    }
    f.job_id = id;
    f.cursor = http_query(req, "cursor");
    int rc = store_miss_list(req->st, &f, &v, &n, &next);
    if (rc == SKED_EINVAL && f.cursor) {
        api_fail(resp, SKED_EINVAL, "query.cursor", "cursor is not one this server handed out");
        goto out;
    }
    if (rc != 0) {
        api_fail_store(resp, rc, "job", "listing missed fire times");
        goto out;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            items, json_pack("{s:s, s:o, s:o, s:I, s:s}", "schedule_id", v[i].schedule_id, "first",
                             api_time_json(v[i].first_ms), "last", api_time_json(v[i].last_ms),
                             "count", (json_int_t)v[i].count, "reason", nz(v[i].reason)));
    http_json(resp, 200,
              json_pack("{s:o, s:o}", "items", items, "next_cursor",
                        next ? json_string(next) : json_null()));
out:
    for (size_t i = 0; i < n; i++)
        store_miss_clear(&v[i]);
    free(v);
    free(next);
}

/* ---- shared with the alerts API (api.h) ---------------------------------- */

bool api_job_access(http_req_t *req, http_resp_t *resp, const char *id, bool write, char **ns_out)
{
    return job_access(req, resp, id, write, ns_out);
}

bool api_idem_repeat_ok(http_req_t *req, http_resp_t *resp, const char *id, job_kind_t kind)
{
    store_job_t j = {0};
    int rc = store_job_get(req->st, id, &j, NULL, NULL);
    job_kind_t had = j.kind;
    store_job_clear(&j);
    /* (Unreadable: the answer that reads it says why.) */
    if (rc != 0 || had == kind) return true;
    api_fail(resp, SKED_ECONFLICT, "header.Idempotency-Key",
             "this Idempotency-Key was used to create %s %s, not a %s", id,
             had == JOB_KIND_WORKFLOW ? "(a workflow)" : "(a job)",
             kind == JOB_KIND_WORKFLOW ? "workflow" : "job");
    return false;
}

int api_if_match(const char *s, int64_t *out)
{
    return parse_if_match(s, out);
}
