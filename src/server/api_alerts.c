/*
 * The alerts API (docs/api.md, "Alerts"): global alert rules (create,
 * list, show, replace, delete; admin only) and the alerts they and jobs'
 * own rules open (list with filters, show with their notices,
 * acknowledge).
 *
 * Access. An alert about a job follows its job's namespace, as the jobs
 * API does (api_job_access): a caller sees it when it sees the job, and
 * acknowledges it when it may change the job. An alert about a worker or
 * a queue belongs to no job: only callers who see every namespace see it,
 * and acknowledging it takes a role that writes.
 *
 * Secrets. A webhook channel's "secret" is never shown: rules answer
 * "***" in its place, and a rule sent back with "***" and the same
 * webhook URL keeps its secret (core/alertspec.h). A notice's target is
 * shown as its channel's scheme and host only (a Slack URL is itself a
 * credential); the rule (admin only) shows it whole.
 */
#include "server/api.h"
#include "server/server_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"
#include "core/alertspec.h"
#include "core/jobspec.h"
#include "server/alerter.h"
#include "server/auth.h"

static const char *nz(const char *s)
{
    return s ? s : "";
}

static void set_etag(http_resp_t *resp, int64_t version)
{
    char etag[32];
    snprintf(etag, sizeof etag, "\"%lld\"", (long long)version);
    http_set_header(resp, "ETag", etag);
}

/* "limit" of a list, 1..1000 (default 100); false after answering 400. */
static bool list_limit(http_req_t *req, http_resp_t *resp, int *out)
{
    long limit = 100;
    const char *q = http_query(req, "limit");
    if (q && api__int_param(q, 1, 1000, &limit) != 0) {
        api_fail(resp, SKED_EINVAL, "query.limit", "limit must be an integer from 1 to 1000");
        return false;
    }
    *out = (int)limit;
    return true;
}

static json_t *page(json_t *items, const char *next)
{
    json_t *doc = json_object();
    json_object_set_new(doc, "items", items);
    json_object_set_new(doc, "next_cursor", next ? json_string(next) : json_null());
    return doc;
}

/* ---- rules ------------------------------------------------------------------------ */

/* The rule resource: its canonical document (secrets masked unless
 * with_secrets) and its bookkeeping. New reference. */
static json_t *rule_json(const store_alert_rule_t *r, bool with_secrets)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(r->id));
    json_t *def = alert_rule_to_json(&r->def);
    if (!with_secrets) alert_redact(json_object_get(def, "channels"));
    json_object_update(o, def);
    json_decref(def);
    json_object_set_new(o, "version", json_integer(r->version));
    json_object_set_new(o, "created_at", api_time_json(r->created_ms));
    json_object_set_new(o, "updated_at", api_time_json(r->updated_ms));
    return o;
}

/* Parses body as a rule into *r's definition; false after answering 400. */
static bool rule_body(http_resp_t *resp, const json_t *body, store_alert_rule_t *r)
{
    alert_rule_spec_t spec;
    jobspec_error_t err;
    if (alert_rule_parse(body, &spec, &err) != 0) {
        api_fail(resp, SKED_EINVAL, err.field[0] ? err.field : NULL, "%s", err.detail);
        return false;
    }
    store_alert_rule_from_spec(r, &spec);
    alert_rule_spec_clear(&spec);
    return true;
}

static void rule_fail(http_resp_t *resp, int rc, const store_alert_rule_t *r, const char *what)
{
    if (rc == SKED_ECONFLICT)
        api_fail(resp, rc, "name", "an alert rule named '%s' exists already", nz(r->def.name));
    else if (rc == SKED_EPRECOND)
        api_fail(resp, rc, "header.If-Match", "the rule changed; its version is not the one given");
    else
        api_fail_store(resp, rc, "alert rule", what);
}

void api_alert_rules_create(http_req_t *req, http_resp_t *resp)
{
    store_alert_rule_t r = {0};
    json_t *body = http_body_json(req, resp);
    if (!body || !rule_body(resp, body, &r)) goto out;
    store_audit_t audit;
    auth_audit_entry(req, NULL, NULL, 201, &audit); /* the store names the new rule */
    int rc = store_alert_rule_create(req->st, &r, &audit, req->now_ms);
    if (rc < 0) {
        rule_fail(resp, rc, &r, "creating the alert rule");
        goto out;
    }
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/alert-rules/%s", r.id);
    http_set_header(resp, "Location", loc);
    set_etag(resp, r.version);
    http_json(resp, 201, rule_json(&r, false));
out:
    store_alert_rule_clear(&r);
    json_decref(body);
}

void api_alert_rules_list(http_req_t *req, http_resp_t *resp)
{
    store_alert_rule_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    int limit;
    if (!list_limit(req, resp, &limit)) return;
    const char *cursor = http_query(req, "cursor");
    int rc = store_alert_rule_list(req->st, cursor, limit, &v, &n, &next);
    if (rc == SKED_EINVAL && cursor) {
        api_fail(resp, rc, "query.cursor", "cursor is not one this server handed out");
        return;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, NULL, "listing the alert rules");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(items, rule_json(&v[i], false));
        store_alert_rule_clear(&v[i]);
    }
    free(v);
    http_json(resp, 200, page(items, next));
    free(next);
}

void api_alert_rules_get(http_req_t *req, http_resp_t *resp)
{
    store_alert_rule_t r;
    const char *id = api__path_id(req, resp);
    if (!id) return;
    int rc = store_alert_rule_get(req->st, id, &r);
    if (rc < 0) {
        api_fail_store(resp, rc, "alert rule", "reading the alert rule");
        return;
    }
    set_etag(resp, r.version);
    http_json(resp, 200, rule_json(&r, false));
    store_alert_rule_clear(&r);
}

void api_alert_rules_put(http_req_t *req, http_resp_t *resp)
{
    store_alert_rule_t cur = {0}, r = {0};
    json_t *body = NULL, *stored = NULL;
    int64_t want = 0;
    const char *id = api__path_id(req, resp);
    if (!id) return;
    const char *ifm = http_header(req, "If-Match");
    if (ifm && api_if_match(ifm, &want) != 0) {
        api_fail(resp, SKED_EINVAL, "header.If-Match",
                 "If-Match must be the rule's version, e.g. \"3\"");
        return;
    }
    if (!(body = http_body_json(req, resp))) return;
    int rc = store_alert_rule_get(req->st, id, &cur);
    if (rc < 0) {
        api_fail_store(resp, rc, "alert rule", "reading the alert rule");
        goto out;
    }
    /* A rule read back shows "***" for its secrets: sent back so, with the
     * same URL, each keeps the stored secret. The update then holds only
     * on the version read, so a secret is never taken from another one. */
    stored = rule_json(&cur, true);
    alert_keep_secrets(json_object_get(body, "channels"), json_object_get(stored, "channels"));
    /* Read-only members of a rule read back are accepted unchanged. */
    static const char *const ro[] = {"id", "version", "created_at", "updated_at"};
    for (size_t i = 0; i < sizeof ro / sizeof *ro; i++) {
        const json_t *mine = json_object_get(body, ro[i]);
        if (!mine) continue;
        if (!json_equal(mine, json_object_get(stored, ro[i]))) {
            api_fail(resp, SKED_EINVAL, ro[i], "%s is the server's and cannot be changed", ro[i]);
            goto out;
        }
        json_object_del(body, ro[i]);
    }
    if (!rule_body(resp, body, &r)) goto out;
    snprintf(r.id, sizeof r.id, "%s", id);
    if (want && want != cur.version) {
        rc = SKED_EPRECOND;
    } else {
        store_audit_t audit;
        auth_audit_entry(req, id, NULL, 200, &audit);
        rc = store_alert_rule_update(req->st, &r, cur.version, &audit, req->now_ms);
    }
    if (rc < 0) {
        rule_fail(resp, rc, &r, "updating the alert rule");
        goto out;
    }
    set_etag(resp, r.version);
    http_json(resp, 200, rule_json(&r, false));
out:
    store_alert_rule_clear(&cur);
    store_alert_rule_clear(&r);
    json_decref(stored);
    json_decref(body);
}

void api_alert_rules_delete(http_req_t *req, http_resp_t *resp)
{
    const char *id = api__path_id(req, resp);
    if (!id) return;
    store_audit_t audit;
    auth_audit_entry(req, id, NULL, 204, &audit);
    int rc = store_alert_rule_delete(req->st, id, &audit, req->now_ms);
    if (rc < 0) {
        api_fail_store(resp, rc, "alert rule", "deleting the alert rule");
        return;
    }
    http_empty(resp, 204);
}

/* ---- alerts ----------------------------------------------------------------------- */

/* A notice's target as shown: an address list whole, a URL as its scheme
 * and host. New string. */
static char *shown_target(const store_alert_delivery_t *d)
{
    const char *t = nz(d->target);
    if (d->kind == ALERT_CHANNEL_EMAIL) return xstrdup(t);
    const char *sep = strstr(t, "://");
    if (!sep) return xstrdup("(hidden)");
    const char *host = sep + 3;
    size_t len = strcspn(host, "/?#");
    const char *at = memrchr(host, '@', len); /* user:password@host */
    if (at) {
        len -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    return xasprintf("%.*s://%.*s/...", (int)(sep - t), t, (int)len, host);
}

static json_t *delivery_json(const store_alert_delivery_t *d)
{
    char *target = shown_target(d);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(d->id));
    json_object_set_new(o, "event",
                        json_string(d->event == ALERT_EV_OPENED ? "opened" : "resolved"));
    json_object_set_new(o, "channel", json_string(alert_channel_kind_name(d->kind)));
    json_object_set_new(o, "target", json_string(target));
    static const char *const states[] = {"pending", "sent", "failed"};
    json_object_set_new(o, "state",
                        json_string(states[d->state <= DELIVERY_FAILED ? d->state : 0]));
    json_object_set_new(o, "tries", json_integer(d->tries));
    json_object_set_new(o, "next_try_at",
                        api_time_json(d->state == DELIVERY_PENDING ? d->due_ms : -1));
    json_object_set_new(o, "sent_at", api_time_json(d->sent_ms));
    json_object_set_new(o, "last_error", d->last_error ? json_string(d->last_error) : json_null());
    free(target);
    return o;
}

/* Whether the caller may see alert a (and, write, acknowledge it). On
 * false resp holds the answer: 404 for one it may not see, as for one
 * that does not exist. */
static bool alert_access(http_req_t *req, http_resp_t *resp, const store_alert_t *a, bool write)
{
    if (*a->job_id) {
        /* The job's own check; a job since deleted is still in scope by
         * its namespace. */
        if (!auth_ns_visible(req->who, nz(a->ns))) {
            api_fail(resp, SKED_ENOTFOUND, "path.id", "no such alert");
            return false;
        }
        if (!write) return true;
        char *ns = NULL, *owner = NULL;
        int rc = store_job_scope(req->st, a->job_id, &ns, &owner);
        bool ok = rc == 0 && auth_job_writable(req->who, ns, owner);
        if (rc < 0)
            api_fail_store(resp, rc, NULL, "reading the alert's job");
        else if (!ok) {
            api_fail(resp, SKED_EFORBID, NULL,
                     "a %s may acknowledge only the alerts of jobs it may change",
                     token_role_name(req->who->role));
            auth_audit(req, a->id, a->ns, 403);
        }
        free(ns);
        free(owner);
        return ok;
    }
    if (!auth_sees_all(req->who)) {
        api_fail(resp, SKED_ENOTFOUND, "path.id", "no such alert");
        return false;
    }
    return true;
}

void api_alerts_list(http_req_t *req, http_resp_t *resp)
{
    store_alert_filter_t f = {.state = -1, .cond = -1};
    store_alert_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    if (!list_limit(req, resp, &f.limit)) return;
    const char *q = http_query(req, "state");
    if (q && strcmp(q, "open") != 0 && strcmp(q, "resolved") != 0) {
        api_fail(resp, SKED_EINVAL, "query.state", "state must be open or resolved");
        return;
    }
    if (q) f.state = strcmp(q, "open") == 0 ? ALERT_OPEN : ALERT_RESOLVED;
    if ((q = http_query(req, "condition"))) {
        alert_cond_t c;
        if (alert_cond_parse(q, &c) != 0) {
            api_fail(resp, SKED_EINVAL, "query.condition",
                     "condition must be one of failed, retrying, sla_missed, overrun, missed, "
                     "worker_lost, backlog");
            return;
        }
        f.cond = (int)c;
    }
    if ((f.job_id = http_query(req, "job"))) {
        if (!id_valid(f.job_id)) {
            api_fail(resp, SKED_EINVAL, "query.job", "job must be a job's id");
            return;
        }
        if (!api_job_access(req, resp, f.job_id, false, NULL)) return;
    }
    f.ns_in = auth_ns_filter(req->who);
    f.cursor = http_query(req, "cursor");
    int rc = store_alert_list(req->st, &f, &v, &n, &next);
    if (rc == SKED_EINVAL && f.cursor) {
        api_fail(resp, rc, "query.cursor", "cursor is not one this server handed out");
        return;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, NULL, "listing alerts");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(items, alerter_alert_json(&v[i]));
        store_alert_clear(&v[i]);
    }
    free(v);
    http_json(resp, 200, page(items, next));
    free(next);
}

/* Answers alert id with its notices. */
static void answer_alert(http_req_t *req, http_resp_t *resp, const char *id, bool write_check)
{
    store_alert_t a;
    store_alert_delivery_t *d = NULL;
    size_t nd = 0;
    int rc = store_alert_get(req->st, id, &a, &d, &nd);
    if (rc < 0) {
        api_fail_store(resp, rc, "alert", "reading the alert");
        return;
    }
    if (alert_access(req, resp, &a, write_check)) {
        json_t *doc = alerter_alert_json(&a);
        json_t *arr = json_array();
        for (size_t i = 0; i < nd; i++)
            json_array_append_new(arr, delivery_json(&d[i]));
        json_object_set_new(doc, "deliveries", arr);
        http_json(resp, 200, doc);
    }
    for (size_t i = 0; i < nd; i++)
        store_alert_delivery_clear(&d[i]);
    free(d);
    store_alert_clear(&a);
}

void api_alerts_get(http_req_t *req, http_resp_t *resp)
{
    const char *id = api__path_id(req, resp);
    if (id) answer_alert(req, resp, id, false);
}

void api_alerts_ack(http_req_t *req, http_resp_t *resp)
{
    store_alert_t a;
    const char *id = api__path_id(req, resp);
    if (!id) return;
    int rc = store_alert_get(req->st, id, &a, NULL, NULL);
    if (rc < 0) {
        api_fail_store(resp, rc, "alert", "reading the alert");
        return;
    }
    bool ok = alert_access(req, resp, &a, true);
    if (ok) {
        store_audit_t audit;
        auth_audit_entry(req, id, a.ns, 200, &audit);
        rc = store_alert_ack(req->st, id, nz(req->who->name), &audit, req->now_ms);
        if (rc < 0) {
            api_fail_store(resp, rc, "alert", "acknowledging the alert");
            ok = false;
        }
    }
    store_alert_clear(&a);
    if (ok) answer_alert(req, resp, id, false);
}
