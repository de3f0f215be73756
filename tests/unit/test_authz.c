/*
 * Authorization, table-driven, against a real server over real sockets:
 * every route of http_routes × every role × a target in the caller's own
 * namespace that it owns, one in its namespace owned by someone else
 * ("peer"), and one in a namespace it has no grant for ("foreign"). Each
 * case gets fresh fixtures (jobs, runs, a worker, users, tokens) written
 * straight into the store, so a case that deletes or cancels cannot
 * disturb the next. The expected status comes from this file's own copy
 * of the rules (docs/api.md, "Roles and namespaces"), not from the code
 * under test: a route added without a row here fails the test.
 *
 * Also checked: lists leave out other namespaces' jobs and runs; a
 * foreign job's 404 is the same answer as a missing job's; login gives a
 * user token that follows the user's role, never says whether a user
 * exists, and is throttled; tokens are shown once and revocable; every
 * change lands in the audit log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/id.h"
#include "common/xalloc.h"
#include "core/jobspec.h"
#include "core/workflow.h"
#include "server/auth.h"
#include "server/web_assets.h"
#include "server/http.h"
#include "server/server.h"
#include "store/store.h"

enum role_ix { R_ADMIN, R_OPERATOR, R_USER, R_VIEWER, R_WORKER, R_METRICS, NROLES };
enum scope { OWN, PEER, FOREIGN, NSCOPES };
static const char *const role_user[NROLES] = {"r-admin",  "r-operator", "r-user",
                                              "r-viewer", "r-worker",   "r-metrics"};
static const token_role_t role_of[NROLES] = {ROLE_ADMIN,  ROLE_OPERATOR, ROLE_USER,
                                             ROLE_VIEWER, ROLE_WORKER,   ROLE_METRICS};
/* Roles a standalone token carries (no user behind it, no namespace). */
#define STANDALONE(r) ((r) == R_WORKER || (r) == R_METRICS)
static const char *const scope_name[NSCOPES] = {"own", "peer", "foreign"};

struct fixture {
    char dir[64];
    char url[64];
    server_t *srv;
    char *admin;  /* bootstrap admin token */
    store_t *st2; /* a second handle on the same store, for fixtures */
    char tok[NROLES][AUTH_TOKEN_BUFLEN];
    char tok_id[NROLES][SKED_ID_LEN];
    unsigned seq; /* makes fixture names unique */
};

static struct fixture *fx;

/* ---- a small HTTP client ------------------------------------------------ */

typedef struct resp {
    long status;
    buf_t body;
    json_t *json;
} resp_t;

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
    buf_append(arg, p, sz * n);
    return sz * n;
}

static void resp_free(resp_t *r)
{
    buf_free(&r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* One request; body NULL = none. */
static void req(resp_t *r, const char *method, const char *path, const char *token,
                const char *body)
{
    struct curl_slist *hl = NULL;
    char url[512];
    memset(r, 0, sizeof *r);
    CURL *e = curl_easy_init();
    snprintf(url, sizeof url, "%s%s", fx->url, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    hl = curl_slist_append(hl, "Expect:");
    if (token) {
        char h[128];
        snprintf(h, sizeof h, "Authorization: Bearer %s", token);
        hl = curl_slist_append(hl, h);
    }
    if (body) {
        hl = curl_slist_append(hl, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    }
    if (strcmp(method, "GET") != 0 && !(body && !strcmp(method, "POST")))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (!strcmp(method, "POST") && !body) curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->body.len) r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
    curl_easy_cleanup(e);
    curl_slist_free_all(hl);
}

/* ---- fixtures, straight into the store ---------------------------------- */

/* A job of ns and owner with a run; extra: more members of its document
 * (",\"k\":v" or ""). */
static void mkjob_with(const char *ns, const char *owner, const char *extra, char id[SKED_ID_LEN],
                       char run[SKED_ID_LEN])
{
    char doc[512];
    jobspec_t spec;
    jobspec_error_t jerr;
    store_job_t job;
    memset(&spec, 0, sizeof spec);
    memset(&job, 0, sizeof job);
    snprintf(doc, sizeof doc, "{\"name\":\"j%u\",\"command\":[\"/bin/true\"]%s}", ++fx->seq, extra);
    json_t *j = json_loads(doc, 0, NULL);
    assert_int_equal(jobspec_parse(j, &spec, &jerr), 0);
    store_job_from_spec(&job, &spec);
    job.ns = xstrdup(ns);
    job.owner = xstrdup(owner);
    json_t *canon = jobspec_to_json(&spec);
    job.spec_json = json_dumps(canon, JSON_COMPACT);
    int64_t now = clock_now_ms();
    assert_int_equal(store_job_create(fx->st2, &job, NULL, 0, false, NULL, NULL, now), 0);
    memcpy(id, job.id, SKED_ID_LEN);
    assert_int_equal(store_run_trigger(fx->st2, id, NULL, now, run), 0);
    json_decref(canon);
    json_decref(j);
    store_job_clear(&job);
    jobspec_free(&spec);
}

static void mkjob(const char *ns, const char *owner, char id[SKED_ID_LEN], char run[SKED_ID_LEN])
{
    mkjob_with(ns, owner, "", id, run);
}

/* A workflow of ns and owner with one task "t", and a run of it (the task
 * run pending: no worker here claims it). */
static void mkworkflow(const char *ns, const char *owner, char id[SKED_ID_LEN],
                       char run[SKED_ID_LEN])
{
    char doc[256];
    wfspec_t spec;
    jobspec_error_t jerr;
    store_job_t wf, task;
    memset(&wf, 0, sizeof wf);
    memset(&task, 0, sizeof task);
    snprintf(doc, sizeof doc,
             "{\"name\":\"wf%u\",\"tasks\":[{\"name\":\"t\",\"command\":[\"true\"]}]}", ++fx->seq);
    json_t *j = json_loads(doc, 0, NULL);
    assert_int_equal(wfspec_parse(j, &spec, &jerr), 0);
    json_t *canon = wfspec_to_json(&spec);
    wf.name = xstrdup(spec.name);
    wf.ns = xstrdup(ns);
    wf.owner = xstrdup(owner);
    wf.queue = xstrdup("default");
    wf.constraints = xstrdup("");
    wf.tags = xstrdup("");
    wf.kind = JOB_KIND_WORKFLOW;
    wf.max_active = spec.max_active_runs;
    wf.retry =
        (retry_policy_t){.max_attempts = 1, .initial_ms = 1000, .max_ms = 1000, .multiplier = 1.0};
    wf.spec_json = json_dumps(canon, JSON_COMPACT);
    store_job_from_spec(&task, &spec.tasks[0].job);
    task.kind = JOB_KIND_TASK;
    json_t *tcanon = jobspec_to_json(&spec.tasks[0].job);
    task.spec_json = json_dumps(tcanon, JSON_COMPACT);
    int64_t now = clock_now_ms();
    assert_int_equal(store_workflow_put(fx->st2, &wf, NULL, 0, &task, 1, -1, NULL, NULL, now), 0);
    memcpy(id, wf.id, SKED_ID_LEN);
    assert_int_equal(store_run_trigger(fx->st2, id, NULL, now, run), 0);
    json_decref(tcanon);
    json_decref(canon);
    json_decref(j);
    store_job_clear(&task);
    store_job_clear(&wf);
    wfspec_free(&spec);
}

/* A run of a job of ns and owner (extra: more of its document), in a
 * queue of its own, claimed by a worker of that queue and completed with
 * res. */
static void mkfinished(const char *ns, const char *owner, const char *extra,
                       const store_result_t *res, char job[SKED_ID_LEN], char run[SKED_ID_LEN])
{
    char doc[512];
    unsigned q = ++fx->seq;
    snprintf(doc, sizeof doc, ",\"queue\":\"aq%u\"%s", q, extra);
    mkjob_with(ns, owner, doc, job, run);
    store_worker_t wk = {0};
    wk.name = xasprintf("aw%u", q);
    wk.host = xstrdup("h");
    wk.queues = xasprintf("aq%u", q);
    wk.labels = xstrdup("");
    wk.slots = 1;
    int64_t now = clock_now_ms();
    assert_int_equal(store_worker_register(fx->st2, &wk, NULL, now), 0);
    store_claimed_t *cl = NULL;
    size_t n = 0;
    assert_int_equal(store_claim(fx->st2, wk.id, NULL, 1, 60000, now, &cl, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(store_complete(fx->st2, cl[0].run.id, 1, cl[0].run.fence, NULL, res, now + 1),
                     0);
    store_claimed_clear(&cl[0]);
    free(cl);
    store_worker_clear(&wk);
}

/* An open alert of a job of ns and owner: the job's own rule on failed,
 * its run failed. */
static void mkalert(const char *ns, const char *owner, char alert[SKED_ID_LEN])
{
    char job[SKED_ID_LEN], run[SKED_ID_LEN];
    size_t n = 0;
    store_result_t fail = {ATTEMPT_FAILED, 1, 0, NULL, NULL, NULL};
    mkfinished(ns, owner,
               ",\"alerts\":[{\"on\":[\"failed\"],\"webhook\":\"http://127.0.0.1:9/x\"}]", &fail,
               job, run);
    store_alert_filter_t f = {-1, job, -1, NULL, NULL, 10};
    store_alert_t *v = NULL;
    char *next = NULL;
    assert_int_equal(store_alert_list(fx->st2, &f, &v, &n, &next), 0);
    assert_int_equal(n, 1);
    memcpy(alert, v[0].id, SKED_ID_LEN);
    store_alert_clear(&v[0]);
    free(v);
}

/* A global alert rule (its id into id). */
static void mkrule(char id[SKED_ID_LEN])
{
    store_alert_rule_t r = {0};
    r.def.name = xasprintf("rule%u", ++fx->seq);
    /* A rule that never fires here: it must not add to mkalert's alerts. */
    r.def.conds = ALERT_BIT(ALERT_WORKER_LOST);
    r.def.scope_ns = xstrdup("");
    r.def.scope_queue = xstrdup("no-such-queue");
    r.def.scope_job = xstrdup("");
    r.def.scope_tag = xstrdup("");
    r.def.params = alert_params_default();
    r.def.nchannels = 1;
    r.def.channels = xcalloc(1, sizeof *r.def.channels);
    r.def.channels[0].target = xstrdup("http://127.0.0.1:9/x");
    assert_int_equal(store_alert_rule_create(fx->st2, &r, NULL, clock_now_ms()), 0);
    memcpy(id, r.id, SKED_ID_LEN);
    store_alert_rule_clear(&r);
}

/* A user whose stored hash no password matches (these tests never log in as them). */
static void mkuser(const char *name, token_role_t role, const char *ns)
{
    store_user_t u = {.name = (char *)name,
                      .pwhash = (char *)"$argon2id$placeholder",
                      .role = role,
                      .namespaces = (char *)ns};
    assert_int_equal(store_user_create(fx->st2, &u, NULL, clock_now_ms()), 0);
}

/* A token acting for user (NULL: standalone named name). */
static void mktoken(const char *name, const char *user, token_role_t role, const char *ns,
                    char secret[AUTH_TOKEN_BUFLEN], char id[SKED_ID_LEN])
{
    char hash[AUTH_HASH_HEX_LEN];
    store_token_t t = {.name = (char *)name,
                       .user = (char *)user,
                       .role = role,
                       .ns = (char *)ns,
                       .expires_ms = -1};
    auth_token_generate(secret);
    auth_token_hash(secret, hash);
    assert_int_equal(store_token_create(fx->st2, &t, hash, clock_now_ms()), 0);
    if (id) memcpy(id, t.id, SKED_ID_LEN);
}

/* ---- the rules, as this test states them ---------------------------------- */

enum kind {
    K_PLAIN,      /* not namespaced */
    K_JOB_READ,   /* {id} is a job: foreign -> 404 */
    K_JOB_WRITE,  /* ... and changing it needs operator, or user + owner */
    K_RUN_READ,   /* {id} is a run: as its job */
    K_RUN_WRITE,  /* cancel: as changing its job */
    K_JOB_CREATE, /* namespace in the body: no grant -> 403 */
    K_USER_SELF,  /* PATCH /v1/users/{name}: self, or admin */
    K_TOKEN_OWN,  /* DELETE /v1/tokens/{id}: own, or admin; another's -> 404 */
    K_WORKER_OWN, /* {id} is a worker: registered by the caller's token, or admin; else 403 */
};

struct row {
    const char *method, *pattern;
    enum http_access access; /* what the route must be declared as */
    enum kind kind;
    int ok; /* the status of an allowed call with the body below */
    const char *body;
};

/* %s in a body is replaced by a fresh name ("n<seq>"); %N by the namespace
 * of the case's scope. */
/* Global rules of these cases never fire (mkalert counts on that). */
#define RULE_BODY                                                                                  \
    "{\"name\":\"%s\",\"on\":[\"worker_lost\"],\"scope\":{\"queue\":\"no-such-queue\"},"           \
    "\"channels\":[{\"webhook\":\"http://127.0.0.1:9/x\"}]}"
/* A workflow document of one task; pre: more members first ("\"k\":v," or ""). */
#define WF_BODY(pre) "{" pre "\"name\":\"%s\",\"tasks\":[{\"name\":\"t\",\"command\":[\"true\"]}]}"
static const struct row rows[] = {
    {"GET", "/", ACCESS_PUBLIC, K_PLAIN, 200, NULL},
    {"GET", "/assets/{version}/{file}", ACCESS_PUBLIC, K_PLAIN, 200, NULL},
    {"GET", "/healthz", ACCESS_PUBLIC, K_PLAIN, 200, NULL},
    {"GET", "/readyz", ACCESS_PUBLIC, K_PLAIN, 200, NULL},
    {"GET", "/metrics", ACCESS_METRICS, K_PLAIN, 200, NULL},
    {"POST", "/v1/jobs", ACCESS_WRITE, K_JOB_CREATE, 201,
     "{\"name\":\"%s\",\"command\":[\"true\"],\"namespace\":\"%N\"}"},
    {"POST", "/v1/jobs:batch", ACCESS_WRITE, K_JOB_CREATE, 201,
     "{\"jobs\":[{\"name\":\"%s\",\"command\":[\"true\"],\"namespace\":\"%N\"}]}"},
    {"GET", "/v1/jobs", ACCESS_READ, K_PLAIN, 200, NULL},
    {"GET", "/v1/jobs/{id}", ACCESS_READ, K_JOB_READ, 200, NULL},
    {"PATCH", "/v1/jobs/{id}", ACCESS_WRITE, K_JOB_WRITE, 200, "{\"priority\":5}"},
    {"DELETE", "/v1/jobs/{id}", ACCESS_WRITE, K_JOB_WRITE, 204, NULL},
    {"POST", "/v1/jobs/{id}/pause", ACCESS_WRITE, K_JOB_WRITE, 200, NULL},
    {"POST", "/v1/jobs/{id}/resume", ACCESS_WRITE, K_JOB_WRITE, 200, NULL},
    {"POST", "/v1/jobs/{id}/trigger", ACCESS_WRITE, K_JOB_WRITE, 201, NULL},
    {"GET", "/v1/jobs/{id}/preview", ACCESS_READ, K_JOB_READ, 200, NULL},
    {"GET", "/v1/jobs/{id}/misses", ACCESS_READ, K_JOB_READ, 200, NULL},
    {"GET", "/v1/jobs/{id}/explain", ACCESS_READ, K_JOB_READ, 200, NULL},
    {"POST", "/v1/schedules/preview", ACCESS_READ, K_PLAIN, 200,
     "{\"schedules\":[{\"every\":\"1h\"}]}"},
    {"POST", "/v1/workflows", ACCESS_WRITE, K_JOB_CREATE, 201, WF_BODY("\"namespace\":\"%N\",")},
    {"GET", "/v1/workflows", ACCESS_READ, K_PLAIN, 200, NULL},
    {"GET", "/v1/workflows/{id}", ACCESS_READ, K_JOB_READ, 200, NULL},
    {"PUT", "/v1/workflows/{id}", ACCESS_WRITE, K_JOB_WRITE, 200, WF_BODY("")},
    {"DELETE", "/v1/workflows/{id}", ACCESS_WRITE, K_JOB_WRITE, 204, NULL},
    {"POST", "/v1/workflows/{id}/pause", ACCESS_WRITE, K_JOB_WRITE, 200, NULL},
    {"POST", "/v1/workflows/{id}/resume", ACCESS_WRITE, K_JOB_WRITE, 200, NULL},
    {"POST", "/v1/workflows/{id}/trigger", ACCESS_WRITE, K_JOB_WRITE, 201, NULL},
    {"GET", "/v1/workflows/{id}/runs", ACCESS_READ, K_JOB_READ, 200, NULL},
    {"GET", "/v1/workflow-runs/{id}", ACCESS_READ, K_RUN_READ, 200, NULL},
    {"POST", "/v1/workflow-runs/{id}/cancel", ACCESS_WRITE, K_RUN_WRITE, 200, NULL},
    /* The fixture's task run is pending (nobody claims it): an allowed
     * caller is told it cannot be retried yet. */
    {"POST", "/v1/workflow-runs/{id}/tasks/{task}/retry", ACCESS_WRITE, K_RUN_WRITE, 409,
     "{\"downstream\":true}"},
    {"GET", "/v1/runs", ACCESS_READ, K_PLAIN, 200, NULL},
    {"GET", "/v1/runs/{id}", ACCESS_READ, K_RUN_READ, 200, NULL},
    {"POST", "/v1/runs/{id}/cancel", ACCESS_WRITE, K_RUN_WRITE, 200, NULL},
    {"GET", "/v1/runs/{id}/log", ACCESS_READ, K_RUN_READ, 200, NULL},
    {"GET", "/v1/runs/{id}/explain", ACCESS_READ, K_RUN_READ, 200, NULL},
    {"GET", "/v1/runs/{id}/result", ACCESS_READ, K_RUN_READ, 200, NULL},
    {"GET", "/v1/stats/runs", ACCESS_READ, K_PLAIN, 200, NULL},
    {"POST", "/v1/workers", ACCESS_WORKER, K_PLAIN, 201,
     "{\"name\":\"%s\",\"host\":\"h\",\"slots\":1}"},
    {"GET", "/v1/workers", ACCESS_READ, K_PLAIN, 200, NULL},
    {"GET", "/v1/plugins", ACCESS_READ, K_PLAIN, 200, NULL},
    {"GET", "/v1/whoami", ACCESS_READ, K_PLAIN, 200, NULL},
    /* Asked to resume after an id the log never had, so an allowed call
     * answers (410) instead of streaming for ever. */
    {"GET", "/v1/events", ACCESS_READ, K_PLAIN, 410, NULL},
    {"POST", "/v1/workers/{id}/drain", ACCESS_WORKER, K_WORKER_OWN, 200, NULL},
    {"POST", "/v1/workers/{id}/heartbeat", ACCESS_WORKER, K_WORKER_OWN, 200, "{\"runs\":[]}"},
    {"POST", "/v1/workers/{id}/claim", ACCESS_WORKER, K_WORKER_OWN, 200,
     "{\"max\":1,\"wait\":\"0s\"}"},
    /* The fixture run was never claimed: fence 1 is stale, whoever sends it. */
    {"POST", "/v1/runs/{id}/attempts/{n}/log", ACCESS_WORKER, K_PLAIN, 409, "x"},
    {"POST", "/v1/runs/{id}/attempts/{n}/complete", ACCESS_WORKER, K_PLAIN, 409,
     "{\"fence\":1,\"outcome\":\"succeeded\",\"exit_code\":0}"},
    /* A batch about a run that does not exist: answered per entry (404). */
    {"POST", "/v1/workers/{id}/complete", ACCESS_WORKER, K_WORKER_OWN, 200,
     "{\"runs\":[{\"run_id\":\"run_00000000000000000000000000\",\"attempt\":1,"
     "\"fence\":1,\"outcome\":\"succeeded\"}]}"},
    /* No such user: the same 401 for every caller. */
    {"POST", "/v1/login", ACCESS_PUBLIC, K_PLAIN, 401,
     "{\"user\":\"%s\",\"password\":\"not-a-password\"}"},
    {"POST", "/v1/users", ACCESS_ADMIN, K_PLAIN, 201,
     "{\"name\":\"%s\",\"password\":\"long-enough-pw\",\"role\":\"viewer\","
     "\"namespaces\":[\"team-a\"]}"},
    {"GET", "/v1/users", ACCESS_ADMIN, K_PLAIN, 200, NULL},
    {"PATCH", "/v1/users/{name}", ACCESS_READ, K_USER_SELF, 200,
     "{\"password\":\"another-long-pw\"}"},
    {"DELETE", "/v1/users/{name}", ACCESS_ADMIN, K_PLAIN, 204, NULL},
    {"POST", "/v1/tokens", ACCESS_READ, K_PLAIN, 201, NULL},
    {"GET", "/v1/tokens", ACCESS_READ, K_PLAIN, 200, NULL},
    {"DELETE", "/v1/tokens/{id}", ACCESS_READ, K_TOKEN_OWN, 204, NULL},
    {"GET", "/v1/audit", ACCESS_ADMIN, K_PLAIN, 200, NULL},
    {"POST", "/v1/alert-rules", ACCESS_ADMIN, K_PLAIN, 201, RULE_BODY},
    {"GET", "/v1/alert-rules", ACCESS_ADMIN, K_PLAIN, 200, NULL},
    {"GET", "/v1/alert-rules/{id}", ACCESS_ADMIN, K_PLAIN, 200, NULL},
    {"PUT", "/v1/alert-rules/{id}", ACCESS_ADMIN, K_PLAIN, 200, RULE_BODY},
    {"DELETE", "/v1/alert-rules/{id}", ACCESS_ADMIN, K_PLAIN, 204, NULL},
    {"GET", "/v1/alerts", ACCESS_READ, K_PLAIN, 200, NULL},
    /* An alert of a job: seen and acknowledged as its job is. */
    {"GET", "/v1/alerts/{id}", ACCESS_READ, K_JOB_READ, 200, NULL},
    {"POST", "/v1/alerts/{id}/ack", ACCESS_WRITE, K_JOB_WRITE, 200, NULL},
};
#define NROWS (sizeof rows / sizeof *rows)

static bool class_allows(enum role_ix r, enum http_access a)
{
    switch (a) {
    case ACCESS_PUBLIC:
        return true;
    case ACCESS_READ:
        return r != R_WORKER && r != R_METRICS;
    case ACCESS_WRITE:
        return r == R_ADMIN || r == R_OPERATOR || r == R_USER;
    case ACCESS_WORKER:
        return r == R_ADMIN || r == R_WORKER;
    case ACCESS_ADMIN:
        return r == R_ADMIN;
    case ACCESS_METRICS:
        return r == R_ADMIN || r == R_METRICS;
    }
    return false;
}

static int expected(const struct row *w, enum role_ix r, enum scope s)
{
    if (!class_allows(r, w->access)) return 403;
    bool admin = r == R_ADMIN;
    switch (w->kind) {
    case K_PLAIN:
        return w->ok;
    case K_JOB_READ:
    case K_RUN_READ:
        return s == FOREIGN && !admin ? 404 : w->ok;
    case K_JOB_WRITE:
    case K_RUN_WRITE:
        if (s == FOREIGN && !admin) return 404;
        if (s == PEER && r == R_USER) return 403;
        return w->ok;
    case K_JOB_CREATE:
        return s == FOREIGN && !admin ? 403 : w->ok;
    case K_USER_SELF:
        return s == OWN || admin ? w->ok : 403;
    case K_TOKEN_OWN:
        return s == OWN || admin ? w->ok : 404;
    case K_WORKER_OWN:
        return s == OWN || admin ? w->ok : 403;
    }
    return -1;
}

/* ---- one case ----------------------------------------------------------- */

static void expand(buf_t *out, const char *tmpl, const char *ns)
{
    char fresh[32];
    snprintf(fresh, sizeof fresh, "n%u", ++fx->seq);
    for (const char *p = tmpl; *p; p++) {
        if (p[0] == '%' && p[1] == 's') {
            buf_puts(out, fresh);
            p++;
        } else if (p[0] == '%' && p[1] == 'N') {
            buf_puts(out, ns);
            p++;
        } else {
            buf_append(out, p, 1);
        }
    }
}

/* The path of row w for role r and scope s, with fresh targets. */
static void make_path(buf_t *path, const struct row *w, enum role_ix r, enum scope s)
{
    char job[SKED_ID_LEN] = "", run[SKED_ID_LEN] = "", other[64], tok_id[SKED_ID_LEN];
    char secret[AUTH_TOKEN_BUFLEN];
    static const char *const ns_of[NSCOPES] = {"team-a", "team-a", "team-b"};
    static const char *const owner_of[NSCOPES] = {"r-user", "someone", "someone"};
    const char *p = w->pattern;

    if (!strcmp(p, "/v1/runs/{id}/result")) {
        /* A run with a result, so an allowed read answers 200. */
        store_result_t ok = {ATTEMPT_SUCCEEDED, 0, 0, NULL, "{\"rows\":3}", NULL};
        mkfinished(ns_of[s], owner_of[s], "", &ok, job, run);
    } else if (strstr(p, "/v1/jobs/{id}") || strstr(p, "/v1/runs/{id}")) {
        mkjob(ns_of[s], owner_of[s], job, run);
    } else if (strstr(p, "/v1/workflows/{id}") || strstr(p, "/v1/workflow-runs/{id}")) {
        mkworkflow(ns_of[s], owner_of[s], job, run);
    }
    for (; *p; p++) {
        if (*p != '{') {
            buf_append(path, p, 1);
            continue;
        }
        const char *end = strchr(p, '}');
        if (!strncmp(p, "{n}", 3)) {
            buf_puts(path, "1");
        } else if (!strncmp(p, "{task}", 6)) {
            buf_puts(path, "t");
        } else if (!strncmp(p, "{version}", 9)) {
            buf_puts(path, web_assets_version);
        } else if (!strncmp(p, "{file}", 6)) {
            buf_puts(path, "app.js");
        } else if (!strncmp(w->pattern, "/v1/jobs/", 9) ||
                   !strncmp(w->pattern, "/v1/workflows/", 14)) {
            buf_puts(path, job);
        } else if (!strncmp(w->pattern, "/v1/runs/", 9) ||
                   !strncmp(w->pattern, "/v1/workflow-runs/", 18)) {
            buf_puts(path, run);
        } else if (!strncmp(w->pattern, "/v1/workers/", 12)) {
            store_worker_t wk = {0};
            wk.name = xasprintf("w%u", ++fx->seq);
            wk.host = xstrdup("h");
            wk.queues = xstrdup("default");
            wk.labels = xstrdup("");
            wk.slots = 1;
            /* Own: registered with the caller's token; else another's. */
            wk.owner = xstrdup(s == OWN ? fx->tok_id[r] : "tok_of_someone_else");
            assert_int_equal(store_worker_register(fx->st2, &wk, NULL, clock_now_ms()), 0);
            buf_puts(path, wk.id);
            store_worker_clear(&wk);
        } else if (!strncmp(w->pattern, "/v1/users/", 10)) {
            if (!strcmp(w->method, "DELETE") || s != OWN) {
                /* A victim that exists (deleting oneself would end the
                 * caller's own session for the cases after). */
                snprintf(other, sizeof other, "victim%u", ++fx->seq);
                mkuser(other, ROLE_VIEWER, "team-a");
                buf_puts(path, other);
            } else {
                buf_puts(path, role_user[r]);
            }
        } else if (!strncmp(w->pattern, "/v1/alert-rules/", 16)) {
            char rule[SKED_ID_LEN];
            mkrule(rule);
            buf_puts(path, rule);
        } else if (!strncmp(w->pattern, "/v1/alerts/", 11)) {
            char alert[SKED_ID_LEN];
            mkalert(ns_of[s], owner_of[s], alert);
            buf_puts(path, alert);
        } else if (!strncmp(w->pattern, "/v1/tokens/", 11)) {
            /* A second token of the caller's own, or another user's. */
            const char *u = s == OWN ? role_user[r] : "someone";
            bool standalone = s == OWN && STANDALONE(r);
            mktoken(u, standalone ? NULL : u, s == OWN ? role_of[r] : ROLE_USER, "team-a", secret,
                    tok_id);
            buf_puts(path, tok_id);
        } else {
            fail_msg("no fixture for %s", w->pattern);
        }
        p = end;
    }
}

static void run_case(const struct row *w, enum role_ix r, enum scope s)
{
    buf_t path = BUF_INIT, body = BUF_INIT;
    resp_t res;
    static const char *const ns_of[NSCOPES] = {"team-a", "team-a", "team-b"};
    make_path(&path, w, r, s);
    if (!strcmp(w->method, "POST") && strstr(w->pattern, "/attempts/{n}/log"))
        buf_puts(&path, "?fence=1&seq=0&stream=1");
    if (!strcmp(w->pattern, "/v1/events")) buf_puts(&path, "?after=999999999");
    if (w->body) expand(&body, w->body, ns_of[s]);
    req(&res, w->method, path.data, fx->tok[r], w->body ? body.data : NULL);
    int want = expected(w, r, s);
    if (res.status != want)
        fail_msg("%s %s as %s on %s target: got %ld, want %d: %.300s", w->method, path.data,
                 role_user[r], scope_name[s], res.status, want, res.body.data ? res.body.data : "");
    resp_free(&res);
    buf_free(&path);
    buf_free(&body);
}

/* ---- tests -------------------------------------------------------------- */

/* Every route has a row, declared with the access class the row says. */
static void test_every_route_has_a_row(void **state)
{
    size_t n = 0;
    for (const http_route_t *rt = http_routes; rt->method; rt++, n++) {
        const struct row *w = NULL;
        for (size_t i = 0; i < NROWS && !w; i++)
            if (!strcmp(rows[i].method, rt->method) && !strcmp(rows[i].pattern, rt->pattern))
                w = &rows[i];
        if (!w) fail_msg("route %s %s has no row in test_authz.c", rt->method, rt->pattern);
        if (w->access != rt->access)
            fail_msg("route %s %s is declared with access %d; the rules say %d", rt->method,
                     rt->pattern, (int)rt->access, (int)w->access);
    }
    assert_int_equal(n, NROWS);
}

static void test_matrix(void **state)
{
    for (size_t i = 0; i < NROWS; i++)
        for (int r = 0; r < NROLES; r++)
            for (int s = 0; s < NSCOPES; s++)
                run_case(&rows[i], (enum role_ix)r, (enum scope)s);
}

/* Without a token, everything but the public routes is 401. */
static void test_no_token(void **state)
{
    for (size_t i = 0; i < NROWS; i++) {
        buf_t path = BUF_INIT;
        resp_t res;
        if (rows[i].access == ACCESS_PUBLIC) continue;
        make_path(&path, &rows[i], R_ADMIN, OWN);
        req(&res, rows[i].method, path.data, NULL, rows[i].body ? "{}" : NULL);
        if (res.status != 401) fail_msg("%s %s: %ld", rows[i].method, path.data, res.status);
        resp_free(&res);
        buf_free(&path);
    }
}

static bool list_has(const json_t *doc, const char *key, const char *id)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(doc, "items"), i, it)
    {
        if (!strcmp(json_string_value(json_object_get(it, key)), id)) return true;
    }
    return false;
}

/* Lists show only the caller's namespaces; a foreign job is exactly as
 * absent as a job that never existed. */
static void test_lists_and_hiding(void **state)
{
    char a[SKED_ID_LEN], ar[SKED_ID_LEN], b[SKED_ID_LEN], br[SKED_ID_LEN];
    mkjob("team-a", "r-user", a, ar);
    mkjob("team-b", "someone", b, br);
    resp_t res;
    char path[128];

    req(&res, "GET", "/v1/jobs?limit=1000", fx->tok[R_VIEWER], NULL);
    assert_int_equal(res.status, 200);
    assert_true(list_has(res.json, "id", a));
    assert_false(list_has(res.json, "id", b));
    resp_free(&res);
    req(&res, "GET", "/v1/jobs?limit=1000", fx->tok[R_ADMIN], NULL);
    assert_true(list_has(res.json, "id", a));
    assert_true(list_has(res.json, "id", b));
    resp_free(&res);
    req(&res, "GET", "/v1/runs?limit=1000", fx->tok[R_OPERATOR], NULL);
    assert_int_equal(res.status, 200);
    assert_true(list_has(res.json, "id", ar));
    assert_false(list_has(res.json, "id", br));
    resp_free(&res);
    snprintf(path, sizeof path, "/v1/runs?job_id=%s", b);
    req(&res, "GET", path, fx->tok[R_USER], NULL);
    assert_int_equal(json_array_size(json_object_get(res.json, "items")), 0);
    resp_free(&res);

    /* The same answer, byte for byte, as for an id that never existed. */
    resp_t missing;
    snprintf(path, sizeof path, "/v1/jobs/%s", b);
    req(&res, "GET", path, fx->tok[R_USER], NULL);
    req(&missing, "GET", "/v1/jobs/job_01JD0000000000000000000000", fx->tok[R_USER], NULL);
    assert_int_equal(res.status, 404);
    assert_int_equal(missing.status, 404);
    assert_string_equal(res.body.data, missing.body.data);
    resp_free(&res);
    resp_free(&missing);

    /* A job submitted without a namespace goes to the caller's first grant. */
    req(&res, "POST", "/v1/jobs", fx->tok[R_OPERATOR], "{\"name\":\"nsless\",\"command\":[\"x\"]}");
    assert_int_equal(res.status, 201);
    assert_string_equal(json_string_value(json_object_get(res.json, "namespace")), "team-a");
    assert_string_equal(json_string_value(json_object_get(res.json, "owner")), "r-operator");
    /* and cannot be moved */
    snprintf(path, sizeof path, "/v1/jobs/%s", json_string_value(json_object_get(res.json, "id")));
    resp_free(&res);
    req(&res, "PATCH", path, fx->tok[R_ADMIN], "{\"namespace\":\"team-b\"}");
    assert_int_equal(res.status, 400);
    resp_free(&res);
}

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Login, the user lifecycle and tokens, through the API as people use it. */
static void test_login_users_tokens(void **state)
{
    resp_t res, res2;
    char path[128], tok[128], tok_id[SKED_ID_LEN];

    req(&res, "POST", "/v1/users", fx->admin,
        "{\"name\":\"carol\",\"password\":\"carol-password\",\"role\":\"user\","
        "\"namespaces\":[\"team-c\"]}");
    assert_int_equal(res.status, 201);
    assert_string_equal(jstr(res.json, "role"), "user");
    assert_null(json_object_get(res.json, "password"));
    assert_null(json_object_get(res.json, "pwhash"));
    resp_free(&res);
    req(&res, "POST", "/v1/users", fx->admin,
        "{\"name\":\"carol\",\"password\":\"carol-password\"}");
    assert_int_equal(res.status, 409);
    resp_free(&res);
    req(&res, "POST", "/v1/users", fx->admin, "{\"name\":\"dave\",\"password\":\"short\"}");
    assert_int_equal(res.status, 400);
    resp_free(&res);

    /* Wrong password and unknown user: the same answer. */
    req(&res, "POST", "/v1/login", NULL, "{\"user\":\"carol\",\"password\":\"wrong-password\"}");
    req(&res2, "POST", "/v1/login", NULL, "{\"user\":\"nobody\",\"password\":\"wrong-password\"}");
    assert_int_equal(res.status, 401);
    assert_int_equal(res2.status, 401);
    assert_string_equal(res.body.data, res2.body.data);
    resp_free(&res);
    resp_free(&res2);

    req(&res, "POST", "/v1/login", NULL, "{\"user\":\"carol\",\"password\":\"carol-password\"}");
    assert_int_equal(res.status, 201);
    snprintf(tok, sizeof tok, "%s", jstr(res.json, "token"));
    snprintf(tok_id, sizeof tok_id, "%s", jstr(res.json, "id"));
    assert_true(!strncmp(tok, "sked_", 5));
    assert_string_equal(jstr(res.json, "user"), "carol");
    assert_true(json_is_string(json_object_get(res.json, "expires_at")));
    resp_free(&res);

    /* The login token acts as carol, in team-c only. */
    req(&res, "POST", "/v1/jobs", tok,
        "{\"name\":\"c1\",\"command\":[\"true\"],\"namespace\":\"team-c\"}");
    assert_int_equal(res.status, 201);
    assert_string_equal(jstr(res.json, "owner"), "carol");
    resp_free(&res);
    req(&res, "POST", "/v1/jobs", tok,
        "{\"name\":\"c2\",\"command\":[\"true\"],\"namespace\":\"team-a\"}");
    assert_int_equal(res.status, 403);
    resp_free(&res);

    /* Her own tokens list carries no secrets and shows the use. */
    req(&res, "GET", "/v1/tokens", tok, NULL);
    assert_int_equal(res.status, 200);
    assert_int_equal(json_array_size(json_object_get(res.json, "items")), 1);
    json_t *it = json_array_get(json_object_get(res.json, "items"), 0);
    assert_string_equal(jstr(it, "id"), tok_id);
    assert_null(json_object_get(it, "token"));
    assert_true(json_is_string(json_object_get(it, "last_used_at")));
    assert_null(strstr(res.body.data, tok + 5));
    resp_free(&res);

    /* A role change applies to her existing token at once. */
    req(&res, "PATCH", "/v1/users/carol", fx->admin, "{\"role\":\"viewer\"}");
    assert_int_equal(res.status, 200);
    resp_free(&res);
    req(&res, "POST", "/v1/jobs", tok,
        "{\"name\":\"c3\",\"command\":[\"true\"],\"namespace\":\"team-c\"}");
    assert_int_equal(res.status, 403);
    resp_free(&res);

    /* She may change her own password, not her role. */
    req(&res, "PATCH", "/v1/users/carol", tok, "{\"role\":\"admin\"}");
    assert_int_equal(res.status, 403);
    resp_free(&res);
    req(&res, "PATCH", "/v1/users/carol", tok, "{\"password\":\"carols-new-password\"}");
    assert_int_equal(res.status, 200);
    resp_free(&res);
    req(&res, "POST", "/v1/login", NULL, "{\"user\":\"carol\",\"password\":\"carol-password\"}");
    assert_int_equal(res.status, 401);
    resp_free(&res);

    /* An admin mints a worker token; it works for the worker protocol. */
    req(&res, "POST", "/v1/tokens", fx->admin,
        "{\"name\":\"worker-7\",\"role\":\"worker\",\"expires_in\":\"1h\"}");
    assert_int_equal(res.status, 201);
    char wtok[128];
    snprintf(wtok, sizeof wtok, "%s", jstr(res.json, "token"));
    resp_free(&res);
    req(&res, "POST", "/v1/workers", wtok, "{\"name\":\"w-seven\",\"host\":\"h\",\"slots\":1}");
    assert_int_equal(res.status, 201);
    resp_free(&res);
    /* A non-admin cannot mint for others. */
    req(&res, "POST", "/v1/tokens", tok, "{\"name\":\"x\",\"role\":\"admin\"}");
    assert_int_equal(res.status, 403);
    resp_free(&res);

    /* Revoking her token ends it; deleting her ends every other one. */
    snprintf(path, sizeof path, "/v1/tokens/%s", tok_id);
    req(&res, "DELETE", path, tok, NULL);
    assert_int_equal(res.status, 204);
    resp_free(&res);
    req(&res, "GET", "/v1/tokens", tok, NULL);
    assert_int_equal(res.status, 401);
    resp_free(&res);
    req(&res, "POST", "/v1/login", NULL,
        "{\"user\":\"carol\",\"password\":\"carols-new-password\"}");
    assert_int_equal(res.status, 201);
    snprintf(tok, sizeof tok, "%s", jstr(res.json, "token"));
    resp_free(&res);
    req(&res, "DELETE", "/v1/users/carol", fx->admin, NULL);
    assert_int_equal(res.status, 204);
    resp_free(&res);
    req(&res, "GET", "/v1/tokens", tok, NULL);
    assert_int_equal(res.status, 401);
    resp_free(&res);

    /* Every change and login is in the audit log, newest first. */
    req(&res, "GET", "/v1/audit?actor=carol&limit=1000", fx->admin, NULL);
    assert_int_equal(res.status, 200);
    size_t i;
    int logins_ok = 0, logins_bad = 0, jobs = 0, revokes = 0;
    json_array_foreach(json_object_get(res.json, "items"), i, it)
    {
        const char *route = jstr(it, "route");
        long st = (long)json_integer_value(json_object_get(it, "status"));
        if (!strcmp(route, "/v1/login")) st == 201 ? logins_ok++ : logins_bad++;
        if (!strcmp(route, "/v1/jobs") && st == 201) jobs++;
        if (!strcmp(route, "/v1/tokens/{id}") && st == 204) revokes++;
    }
    assert_int_equal(logins_ok, 2);
    assert_int_equal(logins_bad, 2);
    assert_int_equal(jobs, 1);
    assert_int_equal(revokes, 1);
    resp_free(&res);
    req(&res, "GET", "/v1/audit?since=2999-01-01T00:00:00Z", fx->admin, NULL);
    assert_int_equal(json_array_size(json_object_get(res.json, "items")), 0);
    resp_free(&res);
    req(&res, "GET", "/v1/audit?since=yesterday", fx->admin, NULL);
    assert_int_equal(res.status, 400);
    resp_free(&res);
}

/* Guessing passwords for one name is cut off, known name or not. */
static void test_login_throttle(void **state)
{
    resp_t res;
    for (int i = 0; i < AUTH_LOGIN_FAILS; i++) {
        req(&res, "POST", "/v1/login", NULL, "{\"user\":\"mallory\",\"password\":\"guess-guess\"}");
        assert_int_equal(res.status, 401);
        resp_free(&res);
    }
    req(&res, "POST", "/v1/login", NULL, "{\"user\":\"mallory\",\"password\":\"guess-guess\"}");
    assert_int_equal(res.status, 429);
    resp_free(&res);
}

/* Failures of other names never count against a name: 2,000 names each
 * failing ten times (every set of the throttle table full) neither block
 * an innocent name nor keep the one being guessed from being blocked. */
static void test_login_throttle_is_per_name(void **state)
{
    (void)state;
    int64_t now = clock_now_ms();
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof name, "spray-%d", i);
        for (int k = 0; k < AUTH_LOGIN_FAILS; k++)
            auth_login_result(name, false, now);
        assert_true(auth_login_blocked(name, now) > 0);
    }
    assert_int_equal(auth_login_blocked("innocent", now), 0);
    for (int k = 0; k < AUTH_LOGIN_FAILS - 1; k++)
        auth_login_result("guessed", false, now);
    assert_int_equal(auth_login_blocked("guessed", now), 0);
    auth_login_result("guessed", false, now);
    assert_true(auth_login_blocked("guessed", now) > 0);
    auth_login_result("guessed", true, now); /* a success clears it */
    assert_int_equal(auth_login_blocked("guessed", now), 0);
}

/* ---- fixture ------------------------------------------------------------ */

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[512];
    if (!d) return;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int group_setup(void **state)
{
    char url[128], *err = NULL;
    server_config_t cfg;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fx = xcalloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sked-test-authz-XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    snprintf(url, sizeof url, "sqlite:%s/sked.db", fx->dir);
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.store_url = url;
    cfg.threads = 4;
    if (server_start(&cfg, &fx->srv, &fx->admin) != 0 || !fx->admin) return -1;
    snprintf(fx->url, sizeof fx->url, "%s", server_url(fx->srv));
    if (store_open(url, &fx->st2, &err) != 0) {
        fprintf(stderr, "store_open: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    /* One user per human role, all in team-a (the admin in every
     * namespace), each with a token acting for it; a standalone worker
     * token, as `sked worker` uses, and a standalone metrics token, as a
     * Prometheus server uses. */
    mkuser("someone", ROLE_USER, "team-a");
    for (int r = 0; r < NROLES; r++) {
        if (STANDALONE(r)) {
            mktoken(role_user[r], NULL, role_of[r], "", fx->tok[r], fx->tok_id[r]);
            continue;
        }
        const char *ns = r == R_ADMIN ? "" : "team-a";
        mkuser(role_user[r], role_of[r], ns);
        mktoken(role_user[r], role_user[r], role_of[r], ns, fx->tok[r], fx->tok_id[r]);
    }
    return 0;
}

static int group_teardown(void **state)
{
    server_stop(fx->srv);
    store_close(fx->st2);
    rm_dir(fx->dir);
    free(fx->admin);
    free(fx);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_has_a_row),
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_no_token),
        cmocka_unit_test(test_lists_and_hiding),
        cmocka_unit_test(test_login_users_tokens),
        cmocka_unit_test(test_login_throttle),
        cmocka_unit_test(test_login_throttle_is_per_name),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
