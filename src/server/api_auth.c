/*
 * The identity and access API (docs/api.md, "Users, tokens, login and the
 * audit log"): users with Argon2id passwords, a role and granted
 * namespaces; logins that trade a password for a token; tokens created,
 * listed and revoked; and the audit log, queryable by admins.
 *
 * Every change here is written together with its audit entry in one store
 * transaction (the user and token verbs take the entry), so a committed
 * change always has its entry. Refusals that a caller could learn from
 * (a failed login, a denied change) get an entry of their own.
 *
 * Secrets: a token's secret appears in exactly one answer, the one that
 * creates it; lists and the audit log never carry it, and passwords and
 * their hashes never leave the server.
 */
#include "server/api.h"
#include "server/server_int.h"

#include <limits.h>
#include <sodium.h>
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
#include "server/auth.h"

#define NS_MAX           64                          /* namespaces granted to one user */
#define LOGIN_TTL_MS     (INT64_C(12) * 3600 * 1000) /* a login token lasts 12 hours */
#define TOKEN_TTL_MAX_MS (INT64_C(3650) * 86400 * 1000)
#define TOKEN_NAME_MAX   64

/* ---- helpers -------------------------------------------------------------- */

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* Rejects any member of o not in allowed (NULL-terminated). */
static bool known_fields(json_t *o, const char *const *allowed, http_resp_t *resp)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(key, allowed[i]);
        if (!ok) {
            api_fail(resp, SKED_EINVAL, key, "unknown field '%s'", key);
            return false;
        }
    }
    return true;
}

/* Optional string member; false (resp filled) when present but not a string. */
static bool opt_str(json_t *o, const char *key, const char **out, http_resp_t *resp)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v)) return true;
    if (!json_is_string(v)) {
        api_fail(resp, SKED_EINVAL, key, "%s must be a string", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

/* "" (all) or "a,b" -> ["*"] or ["a","b"]. */
static json_t *ns_json(const char *ns)
{
    json_t *a = json_array();
    if (!ns || !*ns) {
        json_array_append_new(a, json_string("*"));
        return a;
    }
    char *copy = xstrdup(ns), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(t));
    free(copy);
    return a;
}

/* Parses a "namespaces" array into the stored form: "" for all (a "*"
 * entry, or any admin), else "a,b" without duplicates. Roles other than
 * admin need at least one namespace, or they could see nothing at all.
 * *out is a new string. False with resp filled on error. */
static bool parse_ns(json_t *v, token_role_t role, char **out, http_resp_t *resp)
{
    buf_t b = BUF_INIT;
    bool all = role == ROLE_ADMIN;
    size_t i;
    json_t *e;
    *out = NULL;
    if (v && !json_is_array(v)) {
        api_fail(resp, SKED_EINVAL, "namespaces", "namespaces must be an array of names");
        return false;
    }
    if (v && json_array_size(v) > NS_MAX) {
        api_fail(resp, SKED_EINVAL, "namespaces", "at most %d namespaces", NS_MAX);
        return false;
    }
    json_array_foreach(v, i, e)
    {
        const char *ns = json_string_value(e);
        char field[48];
        snprintf(field, sizeof field, "namespaces[%zu]", i);
        if (ns && !strcmp(ns, "*")) {
            all = true;
            continue;
        }
        if (!auth_ns_name_ok(ns)) {
            api_fail(resp, SKED_EINVAL, field,
                     "a namespace is 1-63 of a-z, 0-9, '-', '_', '.' (or \"*\" for all)");
            buf_free(&b);
            return false;
        }
        char probe[80];
        snprintf(probe, sizeof probe, ",%s,", ns);
        char *have = xasprintf(",%s,", b.data ? b.data : "");
        bool dup = strstr(have, probe) != NULL;
        free(have);
        if (!dup) buf_printf(&b, "%s%s", b.len ? "," : "", ns);
    }
    if (all) {
        buf_free(&b);
        *out = xstrdup("");
        return true;
    }
    if (!b.len) {
        api_fail(resp, SKED_EINVAL, "namespaces",
                 "a %s needs at least one namespace (or \"*\" for all)", token_role_name(role));
        return false;
    }
    *out = xstrdup(b.data);
    buf_free(&b);
    return true;
}

static bool parse_role(json_t *o, token_role_t *role, http_resp_t *resp)
{
    const char *s = NULL;
    if (!opt_str(o, "role", &s, resp)) return false;
    if (s && token_role_parse(s, role) != 0) {
        api_fail(resp, SKED_EINVAL, "role",
                 "role must be one of admin, operator, user, viewer, worker, metrics");
        return false;
    }
    return true;
}

static bool password_ok(const char *pw, http_resp_t *resp)
{
    size_t n = strlen(pw);
    if (n < AUTH_PASSWORD_MIN || n > AUTH_PASSWORD_MAX) {
        api_fail(resp, SKED_EINVAL, "password", "a password is %d to %d bytes", AUTH_PASSWORD_MIN,
                 AUTH_PASSWORD_MAX);
        return false;
    }
    return true;
}

static json_t *user_json(const store_user_t *u)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(nz(u->name)));
    json_object_set_new(o, "role", json_string(nz(token_role_name(u->role))));
    json_object_set_new(o, "namespaces", ns_json(u->namespaces));
    json_object_set_new(o, "created_at", api_time_json(u->created_ms));
    json_object_set_new(o, "updated_at", api_time_json(u->updated_ms));
    return o;
}

static json_t *token_json(const store_token_t *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(t->id));
    json_object_set_new(o, "name", json_string(nz(t->name)));
    json_object_set_new(o, "user", t->user && *t->user ? json_string(t->user) : json_null());
    json_object_set_new(o, "role", json_string(nz(token_role_name(t->role))));
    json_object_set_new(o, "namespaces", ns_json(t->ns));
    json_object_set_new(o, "created_at", api_time_json(t->created_ms));
    json_object_set_new(o, "expires_at", api_time_json(t->expires_ms));
    json_object_set_new(o, "last_used_at", api_time_json(t->last_used_ms));
    json_object_set_new(o, "revoked", json_boolean(t->revoked));
    return o;
}

/* The caller's own token record (for its user binding). 0, or an error
 * with resp filled. */
static int caller_token(http_req_t *req, http_resp_t *resp, store_token_t *out)
{
    int rc = store_token_get(req->st, req->who->token_id, out);
    if (rc < 0) api_fail_store(resp, rc, NULL, "reading the caller's token");
    return rc;
}

/* Mints a token, stores it with its audit entry, answers 201 with the
 * secret (the only time it is shown). t: name, role, ns, user, expires
 * filled by the caller. */
static void issue(http_req_t *req, http_resp_t *resp, store_token_t *t, const char *audit_target)
{
    char secret[AUTH_TOKEN_BUFLEN], hash[AUTH_HASH_HEX_LEN];
    store_audit_t a;
    auth_token_generate(secret);
    auth_token_hash(secret, hash);
    auth_audit_entry(req, audit_target, NULL, 201, &a);
    if (!a.actor[0] && t->user) a.actor = t->user; /* a login: the actor is who logged in */
    int rc = store_token_issue(req->st, t, hash, &a, req->now_ms);
    if (rc < 0) {
        sodium_memzero(secret, sizeof secret);
        api_fail_store(resp, rc, NULL, "storing the token");
        return;
    }
    json_t *o = token_json(t);
    json_object_set_new(o, "token", json_string(secret));
    sodium_memzero(secret, sizeof secret);
    char loc[64];
    snprintf(loc, sizeof loc, "/v1/tokens/%s", t->id);
    http_set_header(resp, "Location", loc);
    http_set_header(resp, "Cache-Control", "no-store");
    http_json(resp, 201, o);
}

/* ---- users ------------------------------------------------------------------ */

void api_users_create(http_req_t *req, http_resp_t *resp)
{
    static const char *const fields[] = {"name", "password", "role", "namespaces", NULL};
    json_t *body = NULL;
    store_user_t u = {0};
    const char *name = NULL, *pw = NULL;
    token_role_t role = ROLE_USER;

    if (!(body = http_body_json(req, resp))) goto out;
    if (!known_fields(body, fields, resp) || !opt_str(body, "name", &name, resp) ||
        !opt_str(body, "password", &pw, resp) || !parse_role(body, &role, resp))
        goto out;
    if (!auth_user_name_ok(name)) {
        api_fail(resp, SKED_EINVAL, "name",
                 "a user name is 1-64 of letters, digits, '-', '_', '.', '@', starting "
                 "with a letter or digit");
        goto out;
    }
    if (!pw) {
        api_fail(resp, SKED_EINVAL, "password", "password is required");
        goto out;
    }
    if (!password_ok(pw, resp)) goto out;
    json_t *nsv = json_object_get(body, "namespaces");
    if (!nsv && role != ROLE_ADMIN) {
        u.namespaces = xstrdup("default");
    } else if (!parse_ns(nsv, role, &u.namespaces, resp)) {
        goto out;
    }
    u.name = xstrdup(name);
    u.role = role;
    if (!(u.pwhash = auth_password_hash(pw))) {
        api_fail(resp, SKED_EBUSY, NULL, "the server cannot hash a password now; try again");
        goto out;
    }
    store_audit_t a;
    auth_audit_entry(req, name, NULL, 201, &a);
    int rc = store_user_create(req->st, &u, &a, req->now_ms);
    if (rc == SKED_ECONFLICT) {
        api_fail(resp, SKED_ECONFLICT, "name", "a user named '%s' already exists", name);
        goto out;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, NULL, "creating the user");
        goto out;
    }
    u.created_ms = u.updated_ms = req->now_ms;
    log_info("api", "user %s (%s) created by %s", u.name, token_role_name(u.role), req->who->name);
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/users/%s", u.name);
    http_set_header(resp, "Location", loc);
    http_json(resp, 201, user_json(&u));
out:
    store_user_clear(&u);
    json_decref(body);
}

void api_users_list(http_req_t *req, http_resp_t *resp)
{
    store_user_t *v = NULL;
    size_t n = 0;
    int rc = store_user_list(req->st, &v, &n);
    if (rc < 0) {
        api_fail_store(resp, rc, NULL, "listing users");
        return;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(items, user_json(&v[i]));
        store_user_clear(&v[i]);
    }
    free(v);
    http_json(resp, 200, json_pack("{s:o, s:n}", "items", items, "next_cursor"));
}

void api_users_patch(http_req_t *req, http_resp_t *resp)
{
    static const char *const fields[] = {"password", "role", "namespaces", NULL};
    json_t *body = NULL;
    store_user_t u = {0};
    store_token_t me = {0};
    const char *name = req->params[0], *pw = NULL;
    bool admin = req->who->role == ROLE_ADMIN;

    /* Anyone may change their own password; only admins anything else.
     * Refused before any lookup, so the answer says nothing of whether
     * another user exists. */
    if (!admin) {
        if (caller_token(req, resp, &me) < 0) goto out;
        if (!me.user || strcmp(me.user, nz(name)) != 0) {
            api_fail(resp, SKED_EFORBID, NULL, "only an admin may change another user");
            auth_audit(req, name, NULL, 403);
            goto out;
        }
    }
    if (!(body = http_body_json(req, resp))) goto out;
    if (!known_fields(body, fields, resp) || !opt_str(body, "password", &pw, resp)) goto out;
    if (!admin && (json_object_get(body, "role") || json_object_get(body, "namespaces"))) {
        api_fail(resp, SKED_EFORBID, NULL, "only an admin may change roles and namespaces");
        auth_audit(req, name, NULL, 403);
        goto out;
    }
    int rc = store_user_get(req->st, nz(name), &u);
    if (rc == SKED_ENOTFOUND) {
        api_fail(resp, SKED_ENOTFOUND, "path.name", "no such user");
        goto out;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, NULL, "reading the user");
        goto out;
    }
    token_role_t role = u.role;
    if (!parse_role(body, &role, resp)) goto out;
    json_t *nsv = json_object_get(body, "namespaces");
    if (nsv || role != u.role) {
        /* A new role re-checks the grants it must have (an admin demoted
         * to user keeps "all" unless namespaces are given too). */
        char *ns = NULL;
        json_t *cur = nsv ? json_incref(nsv) : ns_json(u.namespaces);
        bool ok = parse_ns(cur, role, &ns, resp);
        json_decref(cur);
        if (!ok) goto out;
        free(u.namespaces);
        u.namespaces = ns;
    }
    u.role = role;
    if (pw) {
        if (!password_ok(pw, resp)) goto out;
        char *h = auth_password_hash(pw);
        if (!h) {
            api_fail(resp, SKED_EBUSY, NULL, "the server cannot hash a password now; try again");
            goto out;
        }
        sodium_memzero(u.pwhash, strlen(u.pwhash));
        free(u.pwhash);
        u.pwhash = h;
    }
    store_audit_t a;
    auth_audit_entry(req, name, NULL, 200, &a);
    rc = store_user_update(req->st, &u, &a, req->now_ms);
    if (rc == SKED_ENOTFOUND) {
        api_fail(resp, SKED_ENOTFOUND, "path.name", "no such user");
        goto out;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, NULL, "updating the user");
        goto out;
    }
    auth_cache_forget(); /* the user's tokens take the new role here at once */
    u.updated_ms = req->now_ms;
    http_json(resp, 200, user_json(&u));
out:
    store_token_clear(&me);
    store_user_clear(&u);
    json_decref(body);
}

void api_users_delete(http_req_t *req, http_resp_t *resp)
{
    const char *name = nz(req->params[0]);
    store_audit_t a;
    auth_audit_entry(req, name, NULL, 204, &a);
    int rc = store_user_delete(req->st, name, &a, req->now_ms);
    if (rc == SKED_ENOTFOUND) {
        api_fail(resp, SKED_ENOTFOUND, "path.name", "no such user");
        return;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, NULL, "deleting the user");
        return;
    }
    auth_cache_forget();
    log_info("api", "user %s deleted by %s; its tokens are revoked", name, req->who->name);
    http_empty(resp, 204);
}

/* ---- login --------------------------------------------------------------------- */

void api_login(http_req_t *req, http_resp_t *resp)
{
    static const char *const fields[] = {"user", "password", "expires_in", NULL};
    json_t *body = NULL;
    store_user_t u = {0};
    const char *name = NULL, *pw = NULL, *ttl = NULL;
    int64_t ttl_ms = LOGIN_TTL_MS;
    store_token_t t = {0};

    if (!(body = http_body_json(req, resp))) goto out;
    if (!known_fields(body, fields, resp) || !opt_str(body, "user", &name, resp) ||
        !opt_str(body, "password", &pw, resp) || !opt_str(body, "expires_in", &ttl, resp))
        goto out;
    if (!name || !pw) {
        api_fail(resp, SKED_EINVAL, name ? "password" : "user", "user and password are required");
        goto out;
    }
    if (ttl && (duration_parse(ttl, &ttl_ms) != 0 || ttl_ms <= 0 || ttl_ms > LOGIN_TTL_MS * 60)) {
        api_fail(resp, SKED_EINVAL, "expires_in", "expires_in must be a duration up to 720h");
        goto out;
    }
    int wait_s = auth_login_blocked(name, req->now_ms);
    if (wait_s > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", wait_s);
        http_set_header(resp, "Retry-After", ra);
        api_fail(resp, SKED_ELIMIT, NULL, "too many failed logins; try again in %d s", wait_s);
        goto out;
    }
    /* One path for unknown users, wrong passwords and long names alike:
     * the password is checked either way (against a dummy hash when there
     * is no such user), and the answer is the same 401. */
    int rc = auth_user_name_ok(name) ? store_user_get(req->st, name, &u) : SKED_ENOTFOUND;
    if (rc < 0 && rc != SKED_ENOTFOUND) {
        api_fail_store(resp, rc, NULL, "reading the user");
        goto out;
    }
    bool ok = auth_password_check(rc == 0 ? u.pwhash : NULL, pw) && rc == 0;
    auth_login_result(name, ok, req->now_ms);
    if (!ok) {
        api_fail(resp, SKED_EUNAUTH, NULL, "wrong user name or password");
        store_audit_t a;
        auth_audit_entry(req, NULL, NULL, 401, &a);
        /* The name given, bounded: it may be anything. */
        char actor[72];
        snprintf(actor, sizeof actor, "%.64s", name);
        a.actor = actor;
        if (store_audit_append(req->st, &a) < 0)
            log_error("audit", "failed login for '%s' not recorded in the store", actor);
        goto out;
    }
    t.name = u.name;
    t.user = u.name;
    t.role = u.role;
    t.ns = u.namespaces;
    t.expires_ms = req->now_ms + ttl_ms;
    issue(req, resp, &t, u.name);
    log_info("api", "user %s logged in (token %s)", u.name, t.id);
out:
    store_user_clear(&u);
    json_decref(body);
}

/* ---- tokens ------------------------------------------------------------------------- */

void api_tokens_create(http_req_t *req, http_resp_t *resp)
{
    static const char *const fields[] = {"user", "name", "role", "namespaces", "expires_in", NULL};
    json_t *body = NULL;
    store_token_t me = {0}, t = {0};
    store_user_t u = {0};
    const char *user = NULL, *name = NULL, *ttl = NULL;
    char *ns = NULL;
    token_role_t role = req->who->role;
    bool admin = req->who->role == ROLE_ADMIN;

    /* An empty body asks for a token like the caller's own. */
    if (req->body_len) {
        if (!(body = http_body_json(req, resp))) goto out;
    } else {
        body = json_object();
    }
    if (!known_fields(body, fields, resp) || !opt_str(body, "user", &user, resp) ||
        !opt_str(body, "name", &name, resp) || !opt_str(body, "expires_in", &ttl, resp) ||
        !parse_role(body, &role, resp))
        goto out;
    t.expires_ms = -1;
    if (ttl) {
        int64_t ms = 0;
        if (duration_parse(ttl, &ms) != 0 || ms <= 0 || ms > TOKEN_TTL_MAX_MS) {
            api_fail(resp, SKED_EINVAL, "expires_in", "expires_in must be a positive duration");
            goto out;
        }
        t.expires_ms = req->now_ms + ms;
    }
    if (caller_token(req, resp, &me) < 0) goto out;
    bool self =
        !user && !name && !json_object_get(body, "role") && !json_object_get(body, "namespaces");
    if (me.user && user && !strcmp(user, me.user) && !name && !json_object_get(body, "role") &&
        !json_object_get(body, "namespaces"))
        self = true;
    if (!self && !admin) {
        api_fail(resp, SKED_EFORBID, NULL, "only an admin may create tokens for others");
        auth_audit(req, user ? user : name, NULL, 403);
        goto out;
    }
    if (self) {
        /* Like the caller's: a user's token acts for the user (and follows
         * the user's role and grants); a standalone token begets one with
         * its own name, role and namespaces. */
        t.name = xstrdup(nz(me.user ? me.user : req->who->name));
        t.user = me.user ? xstrdup(me.user) : NULL;
        t.role = req->who->role;
        t.ns = xstrdup(nz(req->who->ns));
    } else if (user) {
        if (name || json_object_get(body, "role") || json_object_get(body, "namespaces")) {
            api_fail(resp, SKED_EINVAL, "user",
                     "a user's token takes the user's role and namespaces; give only "
                     "user and expires_in");
            goto out;
        }
        int rc = store_user_get(req->st, user, &u);
        if (rc == SKED_ENOTFOUND) {
            api_fail(resp, SKED_ENOTFOUND, "user", "no such user");
            goto out;
        }
        if (rc < 0) {
            api_fail_store(resp, rc, NULL, "reading the user");
            goto out;
        }
        t.name = xstrdup(u.name);
        t.user = xstrdup(u.name);
        t.role = u.role;
        t.ns = xstrdup(u.namespaces);
    } else {
        /* A standalone token: a worker, a service, a CI job. */
        if (!name || !auth_user_name_ok(name) || strlen(name) > TOKEN_NAME_MAX) {
            api_fail(resp, SKED_EINVAL, "name",
                     "a standalone token needs a name: 1-64 of letters, digits, '-', '_', "
                     "'.', '@'");
            goto out;
        }
        if (!json_object_get(body, "role")) {
            api_fail(resp, SKED_EINVAL, "role", "a standalone token needs a role");
            goto out;
        }
        json_t *nsv = json_object_get(body, "namespaces");
        if ((role == ROLE_WORKER || role == ROLE_METRICS) && !nsv) {
            ns = xstrdup(""); /* neither the worker protocol nor /metrics is namespaced */
        } else if (!nsv && role != ROLE_ADMIN) {
            ns = xstrdup("default");
        } else if (!parse_ns(nsv, role, &ns, resp)) {
            goto out;
        }
        t.name = xstrdup(name);
        t.role = role;
        t.ns = ns;
        ns = NULL;
    }
    issue(req, resp, &t, t.user ? t.user : t.name);
out:
    free(ns);
    store_token_clear(&t);
    store_token_clear(&me);
    store_user_clear(&u);
    json_decref(body);
}

/* GET /v1/whoami: the caller's own token (never its secret), so a client
 * such as the dashboard knows whose it is, its role and namespaces, and
 * when it expires. */
void api_whoami(http_req_t *req, http_resp_t *resp)
{
    store_token_t me = {0};
    if (caller_token(req, resp, &me) == 0) http_json(resp, 200, token_json(&me));
    store_token_clear(&me);
}

void api_tokens_list(http_req_t *req, http_resp_t *resp)
{
    store_token_filter_t f = {0};
    store_token_t me = {0}, *v = NULL;
    size_t n = 0;
    char *next = NULL;
    long limit = 100;

    const char *q = http_query(req, "limit");
    if (q && api__int_param(q, 1, 1000, &limit) != 0) {
        api_fail(resp, SKED_EINVAL, "query.limit", "limit must be an integer from 1 to 1000");
        goto out;
    }
    f.limit = (int)limit;
    f.cursor = http_query(req, "cursor");
    if (req->who->role == ROLE_ADMIN) {
        f.user = http_query(req, "user");
        f.name = http_query(req, "name");
    } else {
        /* Everyone else sees their own: a user's tokens, or the standalone
         * tokens of the caller's name. */
        if (caller_token(req, resp, &me) < 0) goto out;
        if (me.user) {
            f.user = me.user;
        } else {
            f.user = "";
            f.name = req->who->name;
        }
    }
    int rc = store_token_list(req->st, &f, &v, &n, &next);
    if (rc == SKED_EINVAL && f.cursor) {
        api_fail(resp, SKED_EINVAL, "query.cursor", "cursor is not one this server handed out");
        goto out;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, NULL, "listing tokens");
        goto out;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, token_json(&v[i]));
    json_t *doc = json_object();
    json_object_set_new(doc, "items", items);
    json_object_set_new(doc, "next_cursor", next ? json_string(next) : json_null());
    http_json(resp, 200, doc);
out:
    for (size_t i = 0; i < n; i++)
        store_token_clear(&v[i]);
    free(v);
    free(next);
    store_token_clear(&me);
}

/* Whether token t belongs to the caller whose own token is me. */
static bool owns(const store_token_t *me, const http_principal_t *who, const store_token_t *t)
{
    if (me->user) return t->user && !strcmp(t->user, me->user);
    return !t->user && t->name && who->name && !strcmp(t->name, who->name);
}

void api_tokens_revoke(http_req_t *req, http_resp_t *resp)
{
    store_token_t me = {0}, t = {0};
    const char *id = api__path_id(req, resp);
    if (!id) return;
    int rc = store_token_get(req->st, id, &t);
    if (rc < 0 && rc != SKED_ENOTFOUND) {
        api_fail_store(resp, rc, NULL, "reading the token");
        goto out;
    }
    if (rc == 0 && req->who->role != ROLE_ADMIN) {
        if (caller_token(req, resp, &me) < 0) goto out;
        /* Another's token answers as if it did not exist. */
        if (!owns(&me, req->who, &t)) {
            auth_audit(req, id, NULL, 404);
            rc = SKED_ENOTFOUND;
        }
    }
    if (rc == SKED_ENOTFOUND) {
        api_fail(resp, SKED_ENOTFOUND, "path.id", "no such token");
        goto out;
    }
    store_audit_t a;
    auth_audit_entry(req, id, NULL, 204, &a);
    rc = store_token_revoke(req->st, id, &a, req->now_ms);
    if (rc < 0) {
        api_fail_store(resp, rc, NULL, "revoking the token");
        goto out;
    }
    auth_cache_forget();
    log_info("api", "token %s revoked by %s", id, req->who->name);
    http_empty(resp, 204);
out:
    store_token_clear(&me);
    store_token_clear(&t);
}

/* ---- audit ----------------------------------------------------------------------------- */

static json_t *audit_json(const store_audit_t *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(a->id));
    json_object_set_new(o, "at", api_time_json(a->at_ms));
    json_object_set_new(o, "actor", json_string(nz(a->actor)));
    json_object_set_new(o, "role", json_string(nz(a->role)));
    json_object_set_new(o, "method", json_string(nz(a->method)));
    json_object_set_new(o, "route", json_string(nz(a->route)));
    json_object_set_new(o, "target",
                        a->target && *a->target ? json_string(a->target) : json_null());
    json_object_set_new(o, "namespace", a->ns && *a->ns ? json_string(a->ns) : json_null());
    json_object_set_new(o, "source",
                        a->source && *a->source ? json_string(a->source) : json_null());
    json_object_set_new(o, "status", json_integer(a->status));
    return o;
}

void api_audit_list(http_req_t *req, http_resp_t *resp)
{
    store_audit_filter_t f = {.since_ms = INT64_MIN};
    store_audit_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    long limit = 100;

    const char *q = http_query(req, "limit");
    if (q && api__int_param(q, 1, 1000, &limit) != 0) {
        api_fail(resp, SKED_EINVAL, "query.limit", "limit must be an integer from 1 to 1000");
        goto out;
    }
    q = http_query(req, "since");
    if (q && clock_parse_rfc3339(q, &f.since_ms) != 0) {
        api_fail(resp, SKED_EINVAL, "query.since", "since must be an RFC 3339 time");
        goto out;
    }
    f.actor = http_query(req, "actor");
    f.cursor = http_query(req, "cursor");
    f.limit = (int)limit;
    int rc = store_audit_list(req->st, &f, &v, &n, &next);
    if (rc == SKED_EINVAL && f.cursor) {
        api_fail(resp, SKED_EINVAL, "query.cursor", "cursor is not one this server handed out");
        goto out;
    }
    if (rc < 0) {
        api_fail_store(resp, rc, NULL, "listing the audit log");
        goto out;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, audit_json(&v[i]));
    json_t *doc = json_object();
    json_object_set_new(doc, "items", items);
    json_object_set_new(doc, "next_cursor", next ? json_string(next) : json_null());
    http_json(resp, 200, doc);
out:
    for (size_t i = 0; i < n; i++)
        store_audit_clear(&v[i]);
    free(v);
    free(next);
}
