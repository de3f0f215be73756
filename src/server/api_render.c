/*
 * JSON renderings of store records shared by the API handlers (a run looks
 * the same in a list, in GET /v1/runs/{id}, under a job's last_run and in a
 * trigger answer), plus the small request helpers the handlers share:
 * strict integer query parameters, path-id checks, and api_fail, the one
 * way a failure is answered (api.h).
 * The shapes are the ones docs/api.md specifies.
 */
#include "server/api.h"
#include "server/server_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/id.h"
#include "common/log.h"
#include "common/xalloc.h"

json_t *api_time_json(int64_t ms)
{
    if (ms < 0) return json_null();
    char buf[SKED_RFC3339_LEN];
    clock_format_rfc3339(ms, buf, sizeof buf);
    return json_string(buf);
}

/* A string, or null for NULL/"" (ids that are not set are ""). */
static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

json_t *api_result_json(const char *run_id, const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &e);
    /* An integer beyond 64 bits is valid JSON that jansson reads only as a
     * double (and then every number of the value as one): shown so here;
     * GET .../result gives the text as written. */
    if (!v) v = json_loads(text, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &e);
    if (!v) log_error("api", "run %s: stored result is not JSON: %s", run_id, e.text);
    return v;
}

/* A result member: present only when there is a result, so a job's own
 * JSON null stays distinguishable from none. */
static void set_result(json_t *o, const char *run_id, const char *text)
{
    json_t *v = text ? api_result_json(run_id, text) : NULL;
    if (v) json_object_set_new(o, "result", v);
}

static json_t *attempt_json(const char *run_id, const store_attempt_t *a)
{
    bool done = a->finished_ms >= 0;
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer(a->n));
    json_object_set_new(o, "worker_id", str_or_null(a->worker_id));
    json_object_set_new(o, "started_at", api_time_json(a->started_ms));
    json_object_set_new(o, "finished_at", api_time_json(a->finished_ms));
    json_object_set_new(o, "outcome",
                        done ? str_or_null(attempt_outcome_name(a->outcome)) : json_null());
    json_object_set_new(o, "exit_code",
                        a->exit_code >= 0 ? json_integer(a->exit_code) : json_null());
    json_object_set_new(o, "signal", a->signal > 0 ? json_integer(a->signal) : json_null());
    json_object_set_new(o, "reason", str_or_null(a->reason));
    set_result(o, run_id, a->result);
    return o;
}

/* attempts == NULL leaves "attempts" out (lists, last_run); a non-NULL
 * pointer with nattempts == 0 renders an empty list. */
json_t *api_run_json(const store_run_t *run, const store_attempt_t *attempts, size_t nattempts)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(run->id));
    json_object_set_new(o, "job_id", json_string(run->job_id));
    json_object_set_new(o, "schedule_id", str_or_null(run->schedule_id));
    json_object_set_new(o, "state", str_or_null(run_state_name(run->state)));
    json_object_set_new(o, "fire_time", api_time_json(run->fire_ms));
    json_object_set_new(o, "not_before", api_time_json(run->not_before_ms));
    json_object_set_new(o, "priority", json_integer(run->priority));
    json_object_set_new(o, "queue", json_string(run->queue ? run->queue : "default"));
    json_object_set_new(o, "attempt", json_integer(run->attempt));
    json_object_set_new(o, "worker_id", str_or_null(run->worker_id));
    json_object_set_new(o, "lease_expires_at",
                        run->state == RUN_RUNNING ? api_time_json(run->lease_expires_ms)
                                                  : json_null());
    json_object_set_new(o, "cancel_requested", json_boolean(run->cancel_requested));
    json_object_set_new(o, "created_at", api_time_json(run->created_ms));
    json_object_set_new(o, "started_at", api_time_json(run->started_ms));
    json_object_set_new(o, "finished_at", api_time_json(run->finished_ms));
    json_object_set_new(o, "exit_code",
                        run->exit_code >= 0 ? json_integer(run->exit_code) : json_null());
    json_object_set_new(o, "signal", run->signal > 0 ? json_integer(run->signal) : json_null());
    json_object_set_new(o, "reason", str_or_null(run->reason));
    json_object_set_new(o, "log_bytes", json_integer(run->log_bytes));
    json_object_set_new(o, "log_truncated", json_boolean(run->log_truncated));
    json_object_set_new(o, "parent_id", str_or_null(run->parent_id));
    json_object_set_new(o, "array_index",
                        run->array_index >= 0 ? json_integer(run->array_index) : json_null());
    json_t *deps = json_null();
    if (run->deps_n > 0) {
        deps = json_object();
        json_object_set_new(deps, "trigger_rule", json_string(trigger_rule_name(run->deps_rule)));
        json_object_set_new(deps, "upstreams", json_integer(run->deps_n));
        json_object_set_new(deps, "succeeded", json_integer(run->deps_ok));
        json_object_set_new(deps, "failed", json_integer(run->deps_fail));
        json_object_set_new(deps, "skipped", json_integer(run->deps_skip));
    }
    json_object_set_new(o, "deps", deps);
    if (attempts || nattempts) {
        json_t *arr = json_array();
        for (size_t i = 0; i < nattempts; i++) {
            json_array_append_new(arr, attempt_json(run->id, &attempts[i]));
            /* The run's result is its latest attempt's. */
            if (attempts[i].n == run->attempt) set_result(o, run->id, attempts[i].result);
        }
        json_object_set_new(o, "attempts", arr);
    }
    return o;
}

json_t *api_run_detail_json(const store_run_t *run, const store_attempt_t *attempts,
                            size_t nattempts, const store_checkpoint_t *cp)
{
    static const store_attempt_t none; /* makes an empty "attempts" list render */
    json_t *o = api_run_json(run, attempts ? attempts : &none, nattempts);
    json_t *c = json_null();
    if (cp && cp->data) {
        c = json_object();
        json_object_set_new(c, "attempt", json_integer(cp->attempt));
        json_object_set_new(c, "at", api_time_json(cp->at_ms));
        json_object_set_new(c, "size", json_integer((json_int_t)cp->len));
        json_t *d = json_stringn(cp->data, cp->len); /* NULL: not UTF-8, which was refused */
        json_object_set_new(c, "data", d ? d : json_string(""));
    }
    json_object_set_new(o, "checkpoint", c);
    return o;
}

/* "k=v,k2=v2" -> {"k":"v","k2":"v2"} */
static json_t *labels_json(const char *s)
{
    json_t *o = json_object();
    char *copy = xstrdup(s ? s : "");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq) *eq = '\0';
        json_object_set_new(o, tok, json_string(eq ? eq + 1 : ""));
    }
    free(copy);
    return o;
}

/* "a,b" -> ["a","b"] */
static json_t *list_json(const char *s)
{
    json_t *a = json_array();
    char *copy = xstrdup(s ? s : "");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(tok));
    free(copy);
    return a;
}

json_t *api_worker_json(const store_worker_t *w)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(w->id));
    json_object_set_new(o, "name", json_string(w->name ? w->name : ""));
    json_object_set_new(o, "host", json_string(w->host ? w->host : ""));
    json_object_set_new(o, "labels", labels_json(w->labels));
    json_object_set_new(o, "queues", list_json(w->queues));
    json_object_set_new(o, "types", list_json(w->types)); /* ",a,b," -> ["a","b"] */
    json_object_set_new(o, "slots", json_integer(w->slots));
    json_object_set_new(o, "running", json_integer(w->running));
    json_object_set_new(o, "state", str_or_null(worker_state_name(w->state)));
    json_object_set_new(o, "registered_at", api_time_json(w->registered_ms));
    json_object_set_new(o, "heartbeat_at", api_time_json(w->heartbeat_ms));
    return o;
}

/* Parses a decimal integer in [min, max], all of s. 0, or SKED_EINVAL. */
int api__int_param(const char *s, long min, long max, long *out)
{
    /* strtol alone would accept " 1" and "+1": only [-]digits are numbers. */
    if (!s || !*s ||
        !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return SKED_EINVAL;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) return SKED_EINVAL;
    *out = v;
    return 0;
}

/* The {id} path parameter if it looks like an id; otherwise answers 404
 * (field "path.id") and returns NULL. Borrowed from req. */
const char *api__path_id(http_req_t *req, http_resp_t *resp)
{
    const char *id = req->params[0];
    if (!id || !id_valid(id)) {
        api_fail(resp, SKED_ENOTFOUND, "path.id", "no such resource: '%s' is not a valid id",
                 id ? id : "");
        return NULL;
    }
    return id;
}

bool api_logged_below(int err)
{
    return err == SKED_ESTORE || err == SKED_EBUSY || err == SKED_ENOSPC;
}

void api_fail(http_resp_t *resp, int err, const char *field, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *detail = xmalloc(len > 0 ? (size_t)len + 1 : 1);
    vsnprintf(detail, len > 0 ? (size_t)len + 1 : 1, fmt, again);
    va_end(again);
    if (sked_http_status(err) >= 500 && !api_logged_below(err))
        log_error("api", "%s (%s)", detail, sked_errname(err));
    http_problem_err(resp, err, field, "%s", detail);
    free(detail);
}

void api_fail_store(http_resp_t *resp, int err, const char *noun, const char *what)
{
    if (err == SKED_ENOTFOUND && noun)
        api_fail(resp, err, "path.id", "no such %s", noun);
    else
        api_fail(resp, err, NULL, "%s: %s", what, sked_strerror(err));
}
