/*
 * The worker pool and the worker protocol (docs/api.md, "Workers and the
 * worker protocol"): register, heartbeat, claim, attempt logs and
 * completions, plus the pool listing and drain for people.
 *
 * Claims long-poll without holding a thread: with nothing claimable the
 * handler http_wait_one()s until the client's wait deadline, in the line
 * of parked claims. A commit that may have made work claimable wakes the
 * first claim in line, not all of them (thousands of idle workers must
 * not stampede for one run); the moment the next materialised run becomes
 * due (store_next_claimable_ms) is asked of the server as a timed wake-up
 * (http_wake_at). A woken claim first asks the store cheaply whether
 * anything is due at all before it spends a write on a claim, and passes
 * the wake-up on (http_pass_wake) when work is due that it did not get
 * (its labels, queues or plugin types did not match, or another claim was
 * first) or when work is left after it took its share, so a run is never
 * left pending while a worker that matches it waits.
 *
 * Results and checkpoints (docs/results.md) ride on these routes: a
 * heartbeat's held run may carry its new checkpoint, a completion the
 * attempt's result (the JSON text the job wrote, checked again here) and
 * last checkpoint, and a claimed retry carries the run's checkpoint.
 *
 * Every input is validated and rejected with problem+json naming the
 * field; a rejected request changes nothing. Registrations and drains go
 * to the audit log; the per-run traffic (heartbeats, claims, logs,
 * completions) does not: it is recorded in the runs and attempts
 * themselves, and an audit write per claim would tax the hot path.
 */
#include "server/api.h"
#include "server/server_int.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/id.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/duration.h"
#include "core/jobspec.h"
#include "core/jschema.h"
#include "core/results.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "sked/plugin.h"

#define CLAIM_MAX         100         /* runs per claim */
#define CLAIM_WAIT_MAX_MS (30 * 1000) /* longest long-poll */
#define HELD_MAX          10000       /* runs reported in one heartbeat */
#define QUEUES_MAX        64
#define LABELS_MAX        64
#define HOST_MAX          255
#define REASON_MAX        1000
#define SLOTS_MAX         4096
#define PLUGINS_MAX       64 /* plugin types one worker advertises */
#define PLUGIN_ABI_MAX    1000
#define CLAIM_MAGIC       0x434c4149u /* "CLAI" */

/* What a waiting claim keeps across its handler calls. */
struct claim_ctx {
    uint32_t magic;
    int max;
    int64_t ahead_ms;    /* runs due this long ahead are taken too ("ahead") */
    int64_t deadline_ns; /* monotonic: when to give up and answer no runs */
    int64_t arrived_ns;  /* monotonic: when the claim was first handled */
};

/* ---- validation helpers ------------------------------------------------- */

/* The body as an object; an empty body counts as {} (heartbeats and claims
 * may send none). NULL with resp filled on error. New reference. */
static json_t *body_or_empty(http_req_t *req, http_resp_t *resp)
{
    if (!req->body_len) return json_object();
    return http_body_json(req, resp);
}

/* Rejects members of o not in allowed (NULL-terminated). prefix names o's
 * place in the body ("" for the top level, "runs[2]." inside). */
static bool known_fields(json_t *o, const char *const *allowed, const char *prefix,
                         http_resp_t *resp)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = !strcmp(*a, k);
        if (!ok) {
            char field[256];
            snprintf(field, sizeof field, "%s%.200s", prefix, k);
            api_fail(resp, SKED_EINVAL, field, "unknown field '%.200s'", k);
            return false;
        }
    }
    return true;
}

/* A name-like token: 1..max bytes, no control characters, and none of the
 * separators the store's "k=v,k2" encodings use. */
static bool token_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max) return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == ',' || *p == '=') return false;
    return true;
}

/* An optional integer member in [min, max]: absent or null leaves *out. */
static bool opt_int(json_t *o, const char *key, long long min, long long max, long long *out,
                    http_resp_t *resp)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return true;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        api_fail(resp, SKED_EINVAL, key, "%s must be an integer from %lld to %lld", key, min, max);
        return false;
    }
    *out = json_integer_value(v);
    return true;
}

/* An optional duration member from 0 to max_ms (field names it in an
 * error): absent or null leaves *out. */
static bool opt_duration(json_t *o, const char *key, const char *field, int64_t max_ms,
                         int64_t *out, http_resp_t *resp)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return true;
    int64_t ms = -1;
    if (!json_is_string(v) || duration_parse(json_string_value(v), &ms) != 0 || ms > max_ms) {
        char most[32];
        duration_format(max_ms, most, sizeof most);
        api_fail(resp, SKED_EINVAL, field, "%s must be a duration from \"0s\" to \"%s\"", field,
                 most);
        return false;
    }
    *out = ms;
    return true;
}

/* The owner the worker-protocol store verbs check: a worker token acts only
 * for the workers it registered (and the runs they hold); the other roles
 * the route table lets in (admin) act for any worker. */
static const char *caller_owner(const http_req_t *req)
{
    return req->who && req->who->role == ROLE_WORKER ? req->who->token_id : NULL;
}

/* Answers a worker-protocol refusal: another token's worker or run. */
static void forbid(http_resp_t *resp, const char *field, const char *what, const char *id)
{
    api_fail(resp, SKED_EFORBID, field, "%s %s belongs to a worker registered with another token",
             what, id);
}

/* An optional string member v of at most RESULTS_MAX_BYTES (a checkpoint,
 * a result's text): absent or null leaves *out NULL. */
static bool opt_handoff(json_t *v, const char *field, const char *what, const char **out,
                        http_resp_t *resp)
{
    *out = NULL;
    if (!v || json_is_null(v)) return true;
    if (!json_is_string(v) || json_string_length(v) > RESULTS_MAX_BYTES) {
        api_fail(resp, SKED_EINVAL, field, "%s must be a string of at most %d bytes", what,
                 RESULTS_MAX_BYTES);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---- register, list, drain --------------------------------------------- */

/* queues: array of tokens -> "a,b" (new string in *out). */
static bool parse_queues(json_t *v, char **out, http_resp_t *resp)
{
    buf_t b = BUF_INIT;
    size_t i;
    json_t *q;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > QUEUES_MAX) {
        api_fail(resp, SKED_EINVAL, "queues", "queues must be an array of 1 to %d queue names",
                 QUEUES_MAX);
        return false;
    }
    json_array_foreach(v, i, q)
    {
        if (!json_is_string(q) || !token_ok(json_string_value(q), JOBSPEC_NAME_MAX)) {
            char field[32];
            snprintf(field, sizeof field, "queues[%zu]", i);
            api_fail(resp, SKED_EINVAL, field,
                     "a queue name is 1 to %d bytes without control characters, ',' or '='",
                     JOBSPEC_NAME_MAX);
            buf_free(&b);
            return false;
        }
        buf_printf(&b, "%s%s", i ? "," : "", json_string_value(q));
    }
    *out = buf_steal(&b);
    return true;
}

/* labels: {"k":"v"} -> "k=v,k2=v2" sorted by key (new string in *out). */
static bool parse_labels(json_t *v, char **out, http_resp_t *resp)
{
    const char *k;
    json_t *val;
    const char **keys = NULL;
    size_t n = 0;
    buf_t b = BUF_INIT;
    bool ok = false;

    if (!json_is_object(v) || json_object_size(v) > LABELS_MAX) {
        api_fail(resp, SKED_EINVAL, "labels",
                 "labels must be an object of at most %d string values", LABELS_MAX);
        goto out;
    }
    keys = xcalloc(json_object_size(v) + 1, sizeof *keys);
    json_object_foreach(v, k, val)
    {
        char field[256];
        snprintf(field, sizeof field, "labels.%.200s", k);
        if (!token_ok(k, JOBSPEC_NAME_MAX)) {
            api_fail(resp, SKED_EINVAL, field,
                     "a label key is 1 to %d bytes without control characters, ',' or '='",
                     JOBSPEC_NAME_MAX);
            goto out;
        }
        if (!json_is_string(val) ||
            (*json_string_value(val) && !token_ok(json_string_value(val), JOBSPEC_NAME_MAX))) {
            api_fail(resp, SKED_EINVAL, field,
                     "a label value is a string of at most %d bytes without control "
                     "characters, ',' or '='",
                     JOBSPEC_NAME_MAX);
            goto out;
        }
        keys[n++] = k;
    }
    /* Sorted, so that the store and constraint matching see one spelling. */
    qsort(keys, n, sizeof *keys, cmp_str);
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s%s=%s", i ? "," : "", keys[i],
                   json_string_value(json_object_get(v, keys[i])));
    *out = buf_steal(&b);
    ok = true;
out:
    free(keys);
    buf_free(&b);
    return ok;
}

/* plugins: [{"type", "version", "abi", "schema"}] -> w->plugins and the
 * ",a,b," list of their types in w->types. A type is a plugin type name
 * (not shell or http, which every worker runs), listed once; its schema a
 * JSON Schema that jschema can apply, so that the server can validate
 * jobs of the type against it. */
static bool parse_plugins(json_t *v, store_worker_t *w, http_resp_t *resp)
{
    static const char *const fields[] = {"type", "version", "abi", "schema", NULL};
    char field[64], prefix[32];
    size_t i;
    json_t *p;
    buf_t types = BUF_INIT;
    bool ok = false;

    if (!json_is_array(v) || json_array_size(v) > PLUGINS_MAX) {
        api_fail(resp, SKED_EINVAL, "plugins",
                 "plugins must be an array of at most %d {\"type\", \"version\", \"abi\", "
                 "\"schema\"} objects",
                 PLUGINS_MAX);
        return false;
    }
    w->plugins = xcalloc(json_array_size(v) + 1, sizeof *w->plugins);
    json_array_foreach(v, i, p)
    {
        snprintf(prefix, sizeof prefix, "plugins[%zu].", i);
        if (!json_is_object(p)) {
            snprintf(field, sizeof field, "plugins[%zu]", i);
            api_fail(resp, SKED_EINVAL, field,
                     "a plugin is an object with type, version, abi and "
                     "schema");
            goto out;
        }
        if (!known_fields(p, fields, prefix, resp)) goto out;
        store_plugin_type_t *t = &w->plugins[i];
        w->nplugins = i + 1;
        json_t *m = json_object_get(p, "type");
        snprintf(field, sizeof field, "%stype", prefix);
        const char *type = json_string_value(m);
        if (type && jobspec_type_builtin(type)) {
            api_fail(resp, SKED_EINVAL, field,
                     "\"%s\" is built into every worker and cannot be advertised", type);
            goto out;
        }
        if (!type || !jobspec_type_ok(type)) {
            api_fail(resp, SKED_EINVAL, field,
                     "a plugin type is 1 to %d bytes of [a-z0-9_-], starting with a letter",
                     JOBSPEC_TYPE_MAX);
            goto out;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(w->plugins[k].type, type)) {
                api_fail(resp, SKED_EINVAL, field, "type \"%s\" is already in plugins[%zu]", type,
                         k);
                goto out;
            }
        snprintf(t->type, sizeof t->type, "%s", type);
        m = json_object_get(p, "version");
        snprintf(field, sizeof field, "%sversion", prefix);
        if (!json_is_string(m) || !token_ok(json_string_value(m), SKED_PLUGIN_VERSION_MAX - 1)) {
            api_fail(resp, SKED_EINVAL, field,
                     "version is required: 1 to %d bytes without control characters, ',' or '='",
                     SKED_PLUGIN_VERSION_MAX - 1);
            goto out;
        }
        t->version = xstrdup(json_string_value(m));
        m = json_object_get(p, "abi");
        snprintf(field, sizeof field, "%sabi", prefix);
        if (!json_is_integer(m) || json_integer_value(m) < 1 ||
            json_integer_value(m) > PLUGIN_ABI_MAX) {
            api_fail(resp, SKED_EINVAL, field,
                     "abi is required: the plugin ABI it was built against, an integer from 1 "
                     "to %d",
                     PLUGIN_ABI_MAX);
            goto out;
        }
        t->abi = (int)json_integer_value(m);
        m = json_object_get(p, "schema");
        snprintf(field, sizeof field, "%sschema", prefix);
        char why[256];
        if (!m) {
            api_fail(resp, SKED_EINVAL, field,
                     "schema is required: the JSON Schema of the type's config (true for any)");
            goto out;
        }
        if (jschema_check(m, why, sizeof why) != 0) {
            api_fail(resp, SKED_EINVAL, field, "the plugin's config schema: %s", why);
            goto out;
        }
        t->schema_json = json_dumps(m, JSON_COMPACT | JSON_ENCODE_ANY);
        buf_printf(&types, "%s%s,", i ? "" : ",", type);
    }
    w->types = types.len ? buf_steal(&types) : xstrdup("");
    ok = true;
out:
    buf_free(&types);
    return ok;
}

void api_workers_register(http_req_t *req, http_resp_t *resp)
{
    static const char *const fields[] = {"name",   "host",    "slots", "queues",
                                         "labels", "plugins", NULL};
    const server_config_t *cfg = server_config(req->srv);
    store_worker_t w;
    json_t *body = NULL, *v;
    long long slots = 1;
    char lease[32], hb[32];
    memset(&w, 0, sizeof w);

    if (!(body = body_or_empty(req, resp))) goto out;
    if (!known_fields(body, fields, "", resp)) goto out;
    v = json_object_get(body, "name");
    if (!json_is_string(v) || !token_ok(json_string_value(v), JOBSPEC_NAME_MAX)) {
        api_fail(resp, SKED_EINVAL, "name",
                 "name is required: 1 to %d bytes without control characters, ',' or '='",
                 JOBSPEC_NAME_MAX);
        goto out;
    }
    w.name = xstrdup(json_string_value(v));
    v = json_object_get(body, "host");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) ||
            (*json_string_value(v) && !token_ok(json_string_value(v), HOST_MAX))) {
            api_fail(resp, SKED_EINVAL, "host", "host must be a string of at most %d bytes",
                     HOST_MAX);
            goto out;
        }
        w.host = xstrdup(json_string_value(v));
    } else {
        w.host = xstrdup("");
    }
    if (!opt_int(body, "slots", 1, SLOTS_MAX, &slots, resp)) goto out;
    w.slots = (int)slots;
    v = json_object_get(body, "queues");
    if (v && !json_is_null(v)) {
        if (!parse_queues(v, &w.queues, resp)) goto out;
    } else {
        w.queues = xstrdup("default");
    }
    v = json_object_get(body, "labels");
    if (v && !json_is_null(v)) {
        if (!parse_labels(v, &w.labels, resp)) goto out;
    } else {
        w.labels = xstrdup("");
    }
    v = json_object_get(body, "plugins");
    if (v && !json_is_null(v)) {
        if (!parse_plugins(v, &w, resp)) goto out;
    } else {
        w.types = xstrdup("");
    }
    w.state = WORKER_ACTIVE;
    w.registered_ms = w.heartbeat_ms = req->now_ms;
    /* Bound to the registering token, and to its namespace. */
    w.owner = xstrdup(req->who ? req->who->token_id : "");
    w.ns = xstrdup(req->who && req->who->ns ? req->who->ns : "");

    store_audit_t audit;
    auth_audit_entry(req, NULL, NULL, 201, &audit); /* the store names the new worker */
    int rc = store_worker_register(req->st, &w, &audit, req->now_ms);
    if (rc < 0) {
        api_fail_store(resp, rc, "worker", "register worker");
        goto out;
    }
    log_info("api", "worker %s registered as %s (%d slots, queues %s%s%s)", w.name, w.id, w.slots,
             w.queues, *w.types ? ", plugin types " : "", w.types);
    duration_format(cfg->lease_ms, lease, sizeof lease);
    duration_format(cfg->heartbeat_ms, hb, sizeof hb);
    char *loc = xasprintf("/v1/workers/%s", w.id);
    http_json(resp, 201,
              json_pack("{s:s, s:s, s:s}", "id", w.id, "lease", lease, "heartbeat_interval", hb));
    http_set_header(resp, "Location", loc);
    free(loc);
out:
    json_decref(body);
    store_worker_clear(&w);
}

/* A page of the pool, like every other list: limit (default 100) and the
 * cursor of the page before. */
void api_workers_list(http_req_t *req, http_resp_t *resp)
{
    store_worker_t *ws = NULL;
    size_t n = 0;
    char *next = NULL;
    long limit = 100;

    const char *q = http_query(req, "limit");
    if (q && api__int_param(q, 1, 1000, &limit) != 0) {
        api_fail(resp, SKED_EINVAL, "query.limit", "limit must be an integer from 1 to 1000");
        return;
    }
    const char *cursor = http_query(req, "cursor");
    int rc = store_worker_list(req->st, cursor, (int)limit, &ws, &n, &next);
    if (rc == SKED_EINVAL && cursor) {
        api_fail(resp, SKED_EINVAL, "query.cursor", "cursor is not one this server handed out");
        return;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, "worker", "list workers");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(items, api_worker_json(&ws[i]));
        store_worker_clear(&ws[i]);
    }
    free(ws);
    http_json(resp, 200,
              json_pack("{s:o, s:o}", "items", items, "next_cursor",
                        next ? json_string(next) : json_null()));
    free(next);
}

void api_workers_drain(http_req_t *req, http_resp_t *resp)
{
    store_worker_t w;
    const char *id = api__path_id(req, resp);
    memset(&w, 0, sizeof w);
    if (!id) return;
    store_audit_t audit;
    auth_audit_entry(req, id, NULL, 200, &audit);
    int rc = store_worker_drain(req->st, id, caller_owner(req), &audit, req->now_ms);
    if (rc == SKED_EFORBID) {
        forbid(resp, "path.id", "worker", id);
        return;
    }
    if (rc == 0) rc = store_worker_get(req->st, id, &w);
    if (rc < 0) {
        api_fail_store(resp, rc, "worker", "worker");
        return;
    }
    log_info("api", "worker %s (%s) is draining", w.id, w.name ? w.name : "");
    http_json(resp, 200, api_worker_json(&w));
    store_worker_clear(&w);
}

/* ---- heartbeat ---------------------------------------------------------- */

void api_workers_heartbeat(http_req_t *req, http_resp_t *resp)
{
    static const char *const fields[] = {"runs", NULL};
    static const char *const run_fields[] = {"run_id", "fence", "started", "checkpoint", NULL};
    const server_config_t *cfg = server_config(req->srv);
    json_t *body = NULL, *runs, *item;
    store_held_t *held = NULL;
    size_t n = 0, i;
    bool draining = false;
    char field[64], prefix[48];

    const char *id = api__path_id(req, resp);
    if (!id) goto out;
    if (!(body = body_or_empty(req, resp))) goto out;
    if (!known_fields(body, fields, "", resp)) goto out;
    runs = json_object_get(body, "runs");
    if (runs && !json_is_null(runs)) {
        if (!json_is_array(runs) || json_array_size(runs) > HELD_MAX) {
            api_fail(resp, SKED_EINVAL, "runs", "runs must be an array of at most %d entries",
                     HELD_MAX);
            goto out;
        }
        n = json_array_size(runs);
        held = xcalloc(n ? n : 1, sizeof *held);
        json_array_foreach(runs, i, item)
        {
            snprintf(prefix, sizeof prefix, "runs[%zu].", i);
            if (!json_is_object(item)) {
                snprintf(field, sizeof field, "runs[%zu]", i);
                api_fail(resp, SKED_EINVAL, field, "each entry is {\"run_id\", \"fence\"}");
                goto out;
            }
            if (!known_fields(item, run_fields, prefix, resp)) goto out;
            json_t *rid = json_object_get(item, "run_id");
            json_t *fence = json_object_get(item, "fence");
            if (!json_is_string(rid) || !id_valid(json_string_value(rid))) {
                snprintf(field, sizeof field, "runs[%zu].run_id", i);
                api_fail(resp, SKED_EINVAL, field, "run_id must be a run id");
                goto out;
            }
            if (!json_is_integer(fence) || json_integer_value(fence) < 0) {
                snprintf(field, sizeof field, "runs[%zu].fence", i);
                api_fail(resp, SKED_EINVAL, field, "fence must be a non-negative integer");
                goto out;
            }
            json_t *started = json_object_get(item, "started");
            if (started && !json_is_boolean(started)) {
                snprintf(field, sizeof field, "runs[%zu].started", i);
                api_fail(resp, SKED_EINVAL, field, "started must be true or false");
                goto out;
            }
            snprintf(field, sizeof field, "runs[%zu].checkpoint", i);
            if (!opt_handoff(json_object_get(item, "checkpoint"), field, "a checkpoint",
                             &held[i].checkpoint, resp))
                goto out;
            held[i].run_id = json_string_value(rid);
            held[i].fence = json_integer_value(fence);
            /* Absent = started: what a worker that predates confirmation
             * means by listing a run it holds. */
            held[i].started = !started || json_is_true(started);
            held[i].keep = true;
        }
    }

    int rc = store_heartbeat(req->st, id, caller_owner(req), held, n, cfg->lease_ms, req->now_ms,
                             &draining);
    if (rc == SKED_EFORBID) {
        forbid(resp, "path.id", "worker", id);
        goto out;
    }
    if (rc == SKED_ENOTFOUND) {
        api_fail(resp, SKED_ENOTFOUND, "path.id", "unknown worker '%s': register again", id);
        goto out;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, "worker", "heartbeat");
        goto out;
    }
    json_t *stop = json_array();
    for (i = 0; i < n; i++)
        if (!held[i].keep)
            json_array_append_new(stop, json_pack("{s:s, s:I}", "run_id", held[i].run_id, "fence",
                                                  (json_int_t)held[i].fence));
    http_json(resp, 200, json_pack("{s:b, s:o}", "draining", draining, "stop", stop));
out:
    free(held);
    json_decref(body);
}

/* ---- claim -------------------------------------------------------------- */

static json_t *claimed_json(const store_claimed_t *c)
{
    char tmo[32];
    json_t *o = json_object();
    json_object_set_new(o, "run_id", json_string(c->run.id));
    json_object_set_new(o, "job_id", json_string(c->run.job_id));
    json_object_set_new(o, "job_name", json_string(c->job_name));
    json_object_set_new(o, "attempt", json_integer(c->run.attempt));
    json_object_set_new(o, "fence", json_integer(c->run.fence));
    json_object_set_new(o, "fire_time", api_time_json(c->run.fire_ms));
    /* A run claimed ahead of its time ("ahead"): start it this many µs
     * after reading this answer. Relative, so a worker's clock need not
     * agree with ours; the transit only makes it later, never early. */
    int64_t start_in_us = c->run.not_before_ms * 1000 - clock_now_us();
    if (start_in_us > 0) json_object_set_new(o, "start_in_us", json_integer(start_in_us));
    json_object_set_new(o, "lease_expires_at", api_time_json(c->run.lease_expires_ms));
    if (c->run.array_index >= 0)
        json_object_set_new(o, "array_index", json_integer(c->run.array_index));
    if (c->run.parent_id[0]) json_object_set_new(o, "parent_id", json_string(c->run.parent_id));
    if (c->timeout_ms > 0) {
        duration_format(c->timeout_ms, tmo, sizeof tmo);
        json_object_set_new(o, "timeout", json_string(tmo));
    } else {
        json_object_set_new(o, "timeout", json_null());
    }
    /* A retry's starting point ($SKED_CHECKPOINT_IN), from an earlier attempt. */
    json_t *cp = json_null();
    if (c->checkpoint.data) {
        json_t *d = json_stringn(c->checkpoint.data, c->checkpoint.len);
        cp = d ? json_pack("{s:i, s:o, s:o}", "attempt", c->checkpoint.attempt, "at",
                           api_time_json(c->checkpoint.at_ms), "data", d)
               : json_null();
    }
    json_object_set_new(o, "checkpoint", cp);
    /* Its upstreams' results, as the JSON text the job will read at
     * $SKED_UPSTREAM_RESULTS (kept as text: the results are written as the
     * jobs wrote them). */
    if (c->upstream_results)
        json_object_set_new(o, "upstream_results_json", json_string(c->upstream_results));
    return o;
}

/* Appends doc's compact text to b without its closing brace (doc: an
 * object, released here), so members written as text can follow. */
static void put_open(buf_t *b, json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(doc);
    size_t n = s ? strlen(s) : 0;
    if (n < 2 || s[n - 1] != '}') /* cannot happen: an object's text ends with its brace */
        abort();
    buf_append(b, s, n - 1);
    free(s);
}

/* Appends the claim entry of run c: its members, then the job's stored
 * document as "spec". That text is spliced in as stored (canonical JSON,
 * written by us): parsing it and writing it again was most of a claim's
 * JSON work. Only a document with alert rules is parsed, to drop them:
 * they (and their webhook secrets) are the server's business, not the
 * worker's. */
static void claimed_text(buf_t *b, const store_claimed_t *c)
{
    put_open(b, claimed_json(c));
    buf_puts(b, ",\"spec\":");
    if (c->spec_json && !strstr(c->spec_json, "\"alerts\"")) {
        buf_puts(b, c->spec_json);
    } else {
        json_t *spec = c->spec_json ? json_loads(c->spec_json, 0, NULL) : NULL;
        char *s = NULL;
        if (spec) json_object_del(spec, "alerts");
        if (spec) s = json_dumps(spec, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (!s) log_error("api", "run %s: stored job spec does not parse", c->run.id);
        buf_puts(b, s ? s : "null");
        free(s);
        json_decref(spec);
    }
    buf_puts(b, "}");
}

/* Appends a claim's answer (a claim's, or a completion's that carried one)
 * to b: the runs claimed (cl[0..n), cleared and freed here). */
static void claim_answer(http_req_t *req, buf_t *b, store_claimed_t *cl, size_t n,
                         int64_t waited_ms)
{
    buf_puts(b, "{\"runs\":[");
    for (size_t i = 0; i < n; i++) {
        metrics_run_claimed(&cl[i].run, req->now_ms);
        if (i) buf_puts(b, ",");
        claimed_text(b, &cl[i]);
        store_claimed_clear(&cl[i]);
    }
    free(cl);
    /* The leases handed out are unconfirmed: they last confirm_within, and
     * the worker must report each attempt started (a heartbeat listing it
     * with "started": true) before then. */
    char confirm[32];
    duration_format(server_config(req->srv)->confirm_ms, confirm, sizeof confirm);
    buf_printf(b, "],\"waited_ms\":%lld,\"confirm_within\":\"%s\"}", (long long)waited_ms, confirm);
}

/* Answers 200 with the JSON text in b (and a newline, as http_json). */
static void answer_text(http_resp_t *resp, buf_t *b)
{
    buf_puts(b, "\n");
    http_text(resp, 200, "application/json", b->data, b->len);
    buf_free(b);
}

/* Claims for worker id. Returns 1 and answers when runs were claimed, 0
 * when none, -1 after answering an error.
 *
 * The answer says how long the claim was parked before its leases began
 * ("waited_ms", rounded down). The worker adds it to the time it *sent* the
 * claim: a lower bound of when the leases began, measured on its own
 * monotonic clock, so a worker that reads the answer late (stalled, paused,
 * a slow network) never counts a lease from the late read and never starts
 * an attempt whose lease is already gone. */
static int try_claim(http_req_t *req, http_resp_t *resp, const char *id, const struct claim_ctx *cc)
{
    const server_config_t *cfg = server_config(req->srv);
    store_claimed_t *cl = NULL;
    size_t n = 0;
    int64_t waited_ms = (clock_mono_ns() - cc->arrived_ns) / 1000000;
    int rc = store_claim_ahead(req->st, id, caller_owner(req), cc->max, cfg->confirm_ms,
                               cc->ahead_ms, req->now_ms, &cl, &n);
    if (rc == SKED_EFORBID) {
        forbid(resp, "path.id", "worker", id);
        return -1;
    }
    if (rc == SKED_ENOTFOUND) {
        api_fail(resp, SKED_ENOTFOUND, "path.id", "unknown worker '%s': register again", id);
        return -1;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, "worker", "claim");
        return -1;
    }
    if (n == 0) {
        free(cl);
        return 0;
    }
    buf_t b = BUF_INIT;
    claim_answer(req, &b, cl, n, waited_ms);
    answer_text(resp, &b);
    return 1;
}

static void answer_none(http_resp_t *resp)
{
    http_json(resp, 200, json_pack("{s:[]}", "runs"));
}

/* After a claim got runs or found none it could take: when more work is
 * claimable now (due, or due within the claim's ahead), hands the wake-up
 * on to the next claim in line (a no-op for a claim that was not woken);
 * when the earliest run is claimable later, asks to be woken then. *next
 * is store_next_claimable_ms's answer when already asked (-2: ask). */
static void after_claim(http_req_t *req, int64_t ahead_ms, int64_t *next)
{
    if (*next == -2 && store_next_claimable_ms(req->st, next) != 0) *next = -1;
    if (*next < 0) return;
    if (*next - ahead_ms <= req->now_ms) {
        http_pass_wake(req);
        return;
    }
    /* Runs are materialised ahead with a future not_before: be back the
     * moment the earliest becomes claimable, though nothing will wake us
     * (a millisecond late rather than early, as the wall clock then says).
     * Claims asking different aheads share the timer: one woken early
     * finds nothing and sets it again for itself. */
    http_wake_at(req, clock_mono_ns() + (*next - ahead_ms - req->now_ms + 1) * 1000000);
}

void api_workers_claim(http_req_t *req, http_resp_t *resp)
{
    static const char *const fields[] = {"max", "wait", "ahead", NULL};
    struct claim_ctx *cc = req->ctx;
    json_t *body = NULL;
    int64_t next = -2; /* store_next_claimable_ms, once asked */
    int got;

    const char *id = api__path_id(req, resp);
    if (!id) goto out;
    if (!cc) {
        long long max = 1;
        int64_t wait_ms = 0, ahead_ms = 0;
        if (!(body = body_or_empty(req, resp))) goto out;
        if (!known_fields(body, fields, "", resp)) goto out;
        if (!opt_int(body, "max", 1, CLAIM_MAX, &max, resp)) goto out;
        if (!opt_duration(body, "ahead", "ahead", STORE_AHEAD_MAX_MS, &ahead_ms, resp)) goto out;
        if (!opt_duration(body, "wait", "wait", CLAIM_WAIT_MAX_MS, &wait_ms, resp)) goto out;
        cc = xcalloc(1, sizeof *cc);
        cc->magic = CLAIM_MAGIC;
        cc->max = (int)max;
        cc->ahead_ms = ahead_ms;
        cc->arrived_ns = clock_mono_ns();
        cc->deadline_ns = cc->arrived_ns + wait_ms * 1000000;
        req->ctx = cc;
        req->ctx_free = free;
        got = try_claim(req, resp, id, cc);
    } else {
        assert(cc->magic == CLAIM_MAGIC);
        /* Woken (or looking again after a wake-up that came while it ran):
         * only a claim that can possibly get something spends a write on
         * it. When the store cannot say, the claim itself asks it (and
         * answers its error). */
        bool maybe = store_next_claimable_ms(req->st, &next) != 0 ||
                     (next >= 0 && next - cc->ahead_ms <= req->now_ms);
        got = maybe ? try_claim(req, resp, id, cc) : 0;
        if (got == 1) next = -2; /* it took some: ask again what is left */
    }
    /* A claim that got runs at once was woken by nobody and leaves the
     * timed wake-ups to those that wait: no further read on the hot path. */
    if (got < 0 && req->resumed) http_pass_wake(req); /* it cannot use it: the next may */
    if (got < 0 || (got > 0 && !req->resumed)) goto out;
    /* Passing a wake-up on also covers the one a claim that gets nothing
     * was handed: whatever is due, this worker cannot take it. */
    after_claim(req, cc->ahead_ms, &next);
    if (got > 0) goto out;

    /* The wait is over (or the server is stopping): answer no runs; the
     * worker simply asks again. */
    if (req->timed_out || clock_mono_ns() >= cc->deadline_ns) {
        answer_none(resp);
        goto out;
    }
    http_wait_one(resp, cc->deadline_ns);
out:
    json_decref(body);
}

/* ---- attempts: log and complete ---------------------------------------- */

/* The {n} path parameter: an attempt number. */
static bool attempt_param(http_req_t *req, http_resp_t *resp, int *n)
{
    long v;
    if (api__int_param(req->params[1], 1, INT_MAX, &v) != 0) {
        api_fail(resp, SKED_EINVAL, "path.n", "the attempt number must be a positive integer");
        return false;
    }
    *n = (int)v;
    return true;
}

static bool query_int(http_req_t *req, http_resp_t *resp, const char *key, long min, long max,
                      bool required, long *out)
{
    char field[32];
    const char *s = http_query(req, key);
    snprintf(field, sizeof field, "query.%s", key);
    if (!s) {
        if (!required) return true;
        api_fail(resp, SKED_EINVAL, field, "the query parameter '%s' is required", key);
        return false;
    }
    if (api__int_param(s, min, max, out) != 0) {
        api_fail(resp, SKED_EINVAL, field, "%s must be an integer from %ld to %ld", key, min, max);
        return false;
    }
    return true;
}

void api_attempts_log(http_req_t *req, http_resp_t *resp)
{
    int n;
    long fence, seq, stream = 1;
    const char *id = api__path_id(req, resp);
    if (!id || !attempt_param(req, resp, &n)) return;
    if (!query_int(req, resp, "fence", 0, LONG_MAX, true, &fence)) return;
    if (!query_int(req, resp, "seq", 0, LONG_MAX, true, &seq)) return;
    if (!query_int(req, resp, "stream", 1, 2, false, &stream)) return;
    int rc = store_log_append(req->st, id, n, fence, caller_owner(req), seq, (int)stream, req->body,
                              req->body_len, req->now_ms);
    if (rc == SKED_EFORBID) {
        forbid(resp, "path.id", "run", id);
        return;
    }
    if (rc == SKED_ESTALE) {
        api_fail(resp, rc, "query.fence",
                 "stale fencing token: attempt %d of run %s is no longer held with fence %ld", n,
                 id, fence);
        return;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, "run", "run");
        return;
    }
    http_empty(resp, 204);
}

/* Reads one completion report (docs/api.md "Completing an attempt") into
 * *res and *fence. Field names in errors get prefix ("runs[3]." in a
 * batch). Strings in *res are borrowed from body. */
static bool parse_completion(json_t *body, const char *prefix, store_result_t *res,
                             long long *fence, http_resp_t *resp)
{
    static const char *const fields[] = {"fence",  "outcome",     "exit_code",  "signal",
                                         "reason", "result_json", "checkpoint", NULL};
    static const char *const batch_fields[] = {"run_id",     "attempt", "fence",  "outcome",
                                               "exit_code",  "signal",  "reason", "result_json",
                                               "checkpoint", NULL};
    char field[64];
#define FIELD(name) (snprintf(field, sizeof field, "%s%s", prefix, name), field)
    json_t *v;
    if (!known_fields(body, *prefix ? batch_fields : fields, prefix, resp)) return false;
    v = json_object_get(body, "fence");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        api_fail(resp, SKED_EINVAL, FIELD("fence"),
                 "fence is required: the non-negative integer the "
                 "claim handed out");
        return false;
    }
    *fence = json_integer_value(v);
    v = json_object_get(body, "outcome");
    if (!json_is_string(v) || attempt_outcome_parse(json_string_value(v), &res->outcome) != 0 ||
        res->outcome == ATTEMPT_LOST) {
        /* "lost" is the server's verdict on a silent worker, never a report. */
        api_fail(resp, SKED_EINVAL, FIELD("outcome"),
                 "outcome is required: succeeded, failed, timeout, canceled or not_started");
        return false;
    }
    static const struct {
        const char *key;
        long long min, max;
    } ints[] = {{"exit_code", 0, 255}, {"signal", 1, 127}};
    long long iv[2] = {-1, 0};
    for (int i = 0; i < 2; i++) {
        v = json_object_get(body, ints[i].key);
        if (!v || json_is_null(v)) continue;
        if (!json_is_integer(v) || json_integer_value(v) < ints[i].min ||
            json_integer_value(v) > ints[i].max) {
            api_fail(resp, SKED_EINVAL, FIELD(ints[i].key),
                     "%s must be an integer from %lld to %lld", ints[i].key, ints[i].min,
                     ints[i].max);
            return false;
        }
        iv[i] = json_integer_value(v);
    }
    res->exit_code = (int)iv[0];
    res->signal = (int)iv[1];
    v = json_object_get(body, "reason");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || strlen(json_string_value(v)) > REASON_MAX) {
            api_fail(resp, SKED_EINVAL, FIELD("reason"),
                     "reason must be a string of at most %d bytes", REASON_MAX);
            return false;
        }
        res->reason = json_string_value(v);
    }
    /* The result travels as the text the job wrote, so it is stored as
     * written (numbers keep their spelling); it must be one JSON value. */
    v = json_object_get(body, "result_json");
    if (!opt_handoff(v, FIELD("result_json"), "result_json", &res->result, resp)) return false;
    if (res->result) {
        json_error_t e;
        json_t *parsed = json_loads(res->result, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &e);
        if (!parsed) {
            api_fail(resp, SKED_EINVAL, FIELD("result_json"),
                     "result_json must hold one JSON value: %s at line %d", e.text, e.line);
            return false;
        }
        json_decref(parsed);
    }
    if (!opt_handoff(json_object_get(body, "checkpoint"), FIELD("checkpoint"), "checkpoint",
                     &res->checkpoint, resp))
        return false;
#undef FIELD
    return true;
}

void api_attempts_complete(http_req_t *req, http_resp_t *resp)
{
    json_t *body = NULL;
    store_result_t res = {.exit_code = -1, .signal = 0, .reason = NULL};
    store_run_t run;
    long long fence = -1;
    int n;
    memset(&run, 0, sizeof run);

    const char *id = api__path_id(req, resp);
    if (!id || !attempt_param(req, resp, &n)) goto out;
    if (!(body = http_body_json(req, resp))) goto out;
    if (!parse_completion(body, "", &res, &fence, resp)) goto out;

    int rc = store_complete(req->st, id, n, fence, caller_owner(req), &res, req->now_ms);
    if (rc == SKED_EFORBID) {
        forbid(resp, "path.id", "run", id);
        goto out;
    }
    if (rc == SKED_ESTALE) {
        api_fail(resp, rc, "fence",
                 "stale fencing token: attempt %d of run %s is no longer held with fence %lld", n,
                 id, fence);
        goto out;
    }
    if (rc == 0) rc = store_run_get(req->st, id, &run, NULL, NULL);
    if (rc < 0) {
        api_fail_store(resp, rc, "run", "run");
        goto out;
    }
    http_json(resp, 200, json_pack("{s:s}", "state", run_state_name(run.state)));
out:
    store_run_clear(&run);
    json_decref(body);
}

/* POST /v1/workers/{id}/complete: many completions in one request and one
 * durable commit (docs/api.md). Every entry is checked first, so a bad one
 * refuses the whole body and changes nothing; then each is applied as the
 * single-run route would, with its own answer. */
void api_workers_complete(http_req_t *req, http_resp_t *resp)
{
    static const char *const fields[] = {"runs", "claim", NULL};
    static const char *const claim_fields[] = {"max", "ahead", NULL};
    json_t *body = NULL, *runs, *item, *out = NULL;
    store_completion_t *items = NULL;
    size_t n = 0, i;
    char field[64], prefix[48];

    const char *wid = api__path_id(req, resp);
    if (!wid) goto out;
    if (!(body = http_body_json(req, resp))) goto out;
    if (!known_fields(body, fields, "", resp)) goto out;
    runs = json_object_get(body, "runs");
    if (!json_is_array(runs) || json_array_size(runs) == 0 ||
        json_array_size(runs) > STORE_COMPLETE_BATCH_MAX) {
        api_fail(resp, SKED_EINVAL, "runs", "runs must be an array of 1 to %d completions",
                 STORE_COMPLETE_BATCH_MAX);
        goto out;
    }
    /* "claim": {"max": n}: the next runs for the slots these free, in the
     * same commit (answered in "claimed", as a claim that does not wait). */
    long long claim_max = 0;
    int64_t ahead_ms = 0;
    json_t *claim = json_object_get(body, "claim");
    if (claim && !json_is_null(claim)) {
        if (!json_is_object(claim)) {
            api_fail(resp, SKED_EINVAL, "claim", "claim must be an object: {\"max\": n}");
            goto out;
        }
        if (!known_fields(claim, claim_fields, "claim.", resp)) goto out;
        json_t *mx = json_object_get(claim, "max");
        claim_max = json_is_integer(mx) ? json_integer_value(mx) : -1;
        if (claim_max < 1 || claim_max > CLAIM_MAX) {
            api_fail(resp, SKED_EINVAL, "claim.max", "claim.max must be an integer from 1 to %d",
                     CLAIM_MAX);
            goto out;
        }
        if (!opt_duration(claim, "ahead", "claim.ahead", STORE_AHEAD_MAX_MS, &ahead_ms, resp))
            goto out;
    }
    n = json_array_size(runs);
    items = xcalloc(n, sizeof *items);
    json_array_foreach(runs, i, item)
    {
        snprintf(prefix, sizeof prefix, "runs[%zu].", i);
        if (!json_is_object(item)) {
            snprintf(field, sizeof field, "runs[%zu]", i);
            api_fail(resp, SKED_EINVAL, field,
                     "each entry is {\"run_id\", \"attempt\", \"fence\", \"outcome\", ...}");
            goto out;
        }
        const char *rid = json_string_value(json_object_get(item, "run_id"));
        if (!rid || !id_valid(rid)) {
            snprintf(field, sizeof field, "%srun_id", prefix);
            api_fail(resp, SKED_EINVAL, field, "run_id is required: a run id");
            goto out;
        }
        json_t *at = json_object_get(item, "attempt");
        if (!json_is_integer(at) || json_integer_value(at) < 1 ||
            json_integer_value(at) > INT_MAX) {
            snprintf(field, sizeof field, "%sattempt", prefix);
            api_fail(resp, SKED_EINVAL, field, "attempt is required: a positive integer");
            goto out;
        }
        long long fence = -1;
        items[i].res = (store_result_t){.exit_code = -1};
        if (!parse_completion(item, prefix, &items[i].res, &fence, resp)) goto out;
        items[i].run_id = rid;
        items[i].attempt = (int)json_integer_value(at);
        items[i].fence = fence;
    }
    store_claimed_t *cl = NULL;
    size_t ncl = 0;
    int rc =
        store_complete_claim(req->st, wid, caller_owner(req), items, n, (int)claim_max,
                             server_config(req->srv)->confirm_ms, ahead_ms, req->now_ms, &cl, &ncl);
    if (rc == SKED_EFORBID) {
        forbid(resp, "path.id", "worker", wid);
        goto out;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, "path.id", "worker");
        goto out;
    }
    out = json_array();
    for (i = 0; i < n; i++) {
        int st = items[i].rc == 0                ? 200
                 : items[i].rc == SKED_ESTALE    ? 409
                 : items[i].rc == SKED_EFORBID   ? 403
                 : items[i].rc == SKED_ENOTFOUND ? 404
                                                 : 400;
        json_t *r = json_pack("{s:s, s:i}", "run_id", items[i].run_id, "status", st);
        if (st == 409)
            json_object_set_new(r, "detail",
                                json_sprintf("stale fencing token: attempt %d of run %s is no "
                                             "longer held with fence %lld",
                                             items[i].attempt, items[i].run_id,
                                             (long long)items[i].fence));
        else if (st == 403)
            json_object_set_new(r, "detail",
                                json_string("the run belongs to a worker registered with another "
                                            "token"));
        else if (st == 404)
            json_object_set_new(r, "detail", json_string("no such run"));
        else if (st == 400)
            json_object_set_new(r, "detail", json_string(sked_strerror(items[i].rc)));
        json_array_append_new(out, r);
    }
    json_t *ans = json_pack("{s:o}", "results", out);
    if (claim_max <= 0) {
        http_json(resp, 200, ans);
        goto out;
    }
    buf_t b = BUF_INIT;
    put_open(&b, ans);
    buf_puts(&b, ",\"claimed\":");
    claim_answer(req, &b, cl, ncl, 0);
    buf_puts(&b, "}");
    answer_text(resp, &b);
out:
    free(items);
    json_decref(body);
}
