/*
 * The runs API (docs/api.md, "Runs"): list, show with attempts (their
 * results and the run's checkpoint, docs/results.md), the result alone,
 * cancel, and the log, either as one text/plain answer or, with ?follow=1, as a stream
 * that lasts until the run is terminal.
 *
 * A follower holds no thread while it waits: when it has written all
 * stored chunks of a run that is still going it calls http_wait(); the
 * server wakes it whenever the store commits run or log changes (or after
 * a few seconds) and the handler continues from the (attempt, seq) position
 * it keeps in req->ctx.
 *
 * A run belongs to its job's namespace: a caller without a grant for it
 * gets 404 as for a run that does not exist, and lists leave it out.
 * Canceling needs the right to change the job (auth_job_writable).
 */
#include "server/api.h"
#include "server/server_int.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/id.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "server/auth.h"

#define LOG_PAGE       256                               /* chunks read per store call */
#define FOLLOW_WAIT_NS ((int64_t)2 * 1000 * 1000 * 1000) /* re-check even without a wake-up */
#define FOLLOW_MAGIC   0x464c4f57u                       /* "FLOW" */
#define TEXT_PLAIN     "text/plain; charset=utf-8"

/* Whether the caller may see (write = false) or cancel (write = true) run
 * id; on false resp holds the answer (404 outside the caller's namespaces,
 * 403 for a visible run of a job it may not change). *ns_out (may be NULL)
 * gets the namespace (new; caller frees) when it was read. */
bool api_run_access(http_req_t *req, http_resp_t *resp, const char *id, bool write, char **ns_out)
{
    log_ctx_run(id);
    store_run_t run = {0};
    char *ns = NULL, *owner = NULL;
    bool ok = false;
    if (ns_out) *ns_out = NULL;
    if (!write && auth_sees_all(req->who)) return true;
    int rc = store_run_get(req->st, id, &run, NULL, NULL);
    if (rc == 0) rc = store_job_scope(req->st, run.job_id, &ns, &owner);
    if (rc < 0) {
        api_fail_store(resp, rc, "run", "reading the run");
        goto out;
    }
    if (!auth_ns_visible(req->who, ns)) {
        api_fail(resp, SKED_ENOTFOUND, "path.id", "no such run");
        if (write) auth_audit(req, id, ns, 404);
        goto out;
    }
    if (write && !auth_job_writable(req->who, ns, owner)) {
        api_fail(resp, SKED_EFORBID, NULL, "a %s may cancel only runs of the jobs it owns",
                 token_role_name(req->who->role));
        auth_audit(req, id, ns, 403);
        goto out;
    }
    ok = true;
    if (ns_out) {
        *ns_out = ns;
        ns = NULL;
    }
out:
    store_run_clear(&run);
    free(ns);
    free(owner);
    return ok;
}

void api_runs_list(http_req_t *req, http_resp_t *resp)
{
    store_run_filter_t f = {.since_ms = INT64_MIN, .until_ms = INT64_MAX};
    store_run_t *runs = NULL;
    size_t n = 0;
    char *next = NULL;
    long limit = 100;
    run_state_t rs;

    const char *q = http_query(req, "limit");
    if (q && api__int_param(q, 1, 1000, &limit) != 0) {
        api_fail(resp, SKED_EINVAL, "query.limit", "limit must be an integer from 1 to 1000");
        goto out;
    }
    f.limit = (int)limit;
    f.job_id = http_query(req, "job_id");
    if (f.job_id && !id_valid(f.job_id)) {
        api_fail(resp, SKED_EINVAL, "query.job_id", "'%s' is not a job id", f.job_id);
        goto out;
    }
    f.state = http_query(req, "state");
    if (f.state && run_state_parse(f.state, &rs) != 0) {
        api_fail(resp, SKED_EINVAL, "query.state",
                 "state must be one of scheduled, waiting, pending, running, succeeded, "
                 "failed, canceled, skipped");
        goto out;
    }
    q = http_query(req, "since");
    if (q && clock_parse_rfc3339(q, &f.since_ms) != 0) {
        api_fail(resp, SKED_EINVAL, "query.since", "since must be an RFC 3339 time");
        goto out;
    }
    q = http_query(req, "until");
    if (q && clock_parse_rfc3339(q, &f.until_ms) != 0) {
        api_fail(resp, SKED_EINVAL, "query.until", "until must be an RFC 3339 time");
        goto out;
    }
    f.cursor = http_query(req, "cursor");

    int rc = store_run_list_in(req->st, &f, auth_ns_filter(req->who), &runs, &n, &next);
    if (rc == SKED_EINVAL && f.cursor) {
        api_fail(resp, SKED_EINVAL, "query.cursor", "cursor is not one this server handed out");
        goto out;
    }
    if (rc != 0) {
        api_fail_store(resp, rc, "run", "listing runs");
        goto out;
    }
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, api_run_json(&runs[i], NULL, 0));
    json_t *doc = json_object();
    json_object_set_new(doc, "items", items);
    json_object_set_new(doc, "next_cursor", next ? json_string(next) : json_null());
    http_json(resp, 200, doc);
out:
    for (size_t i = 0; i < n; i++)
        store_run_clear(&runs[i]);
    free(runs);
    free(next);
}

/* Answers run id with its attempts, result and checkpoint. */
static void answer_run(http_req_t *req, http_resp_t *resp, const char *id, int status)
{
    store_run_t run = {0};
    store_attempt_t *att = NULL;
    store_checkpoint_t cp = {0};
    size_t na = 0;

    int rc = store_run_get_detail(req->st, id, &run, &att, &na, &cp);
    if (rc != 0) {
        api_fail_store(resp, rc, "run", "reading the run");
        goto out;
    }
    http_json(resp, status, api_run_detail_json(&run, att, na, &cp));
out:
    for (size_t i = 0; i < na; i++)
        store_attempt_clear(&att[i]);
    free(att);
    store_checkpoint_clear(&cp);
    store_run_clear(&run);
}

/* GET /v1/stats/runs: finished runs per minute by outcome, oldest minute
 * first, the current (partial) minute last, every minute listed even with
 * nothing in it, counted only over the namespaces the caller may see. */
void api_stats_runs(http_req_t *req, http_resp_t *resp)
{
    long minutes = 60;
    const char *q = http_query(req, "minutes");
    if (q && api__int_param(q, 1, 1440, &minutes) != 0) {
        api_fail(resp, SKED_EINVAL, "query.minutes", "minutes must be an integer from 1 to 1440");
        return;
    }
    int64_t from_ms = (req->now_ms / 60000 - minutes + 1) * 60000;
    store_run_minute_t *v = xcalloc((size_t)minutes, sizeof *v);
    int rc = store_run_minutes(req->st, from_ms, (int)minutes, auth_ns_filter(req->who), v);
    if (rc != 0) {
        api_fail_store(resp, rc, "run", "counting runs");
        free(v);
        return;
    }
    static const char *const outcomes[] = {"succeeded", "failed", "canceled", "skipped"};
    json_t *list = json_array();
    for (long i = 0; i < minutes; i++) {
        char at[40];
        clock_format_rfc3339(from_ms + i * 60000, at, sizeof at);
        json_t *o = json_object();
        json_object_set_new(o, "at", json_string(at));
        for (int k = 0; k < 4; k++)
            json_object_set_new(o, outcomes[k], json_integer(v[i].n[k]));
        json_array_append_new(list, o);
    }
    free(v);
    json_t *doc = json_object();
    json_object_set_new(doc, "minutes", list);
    http_json(resp, 200, doc);
}

void api_runs_get(http_req_t *req, http_resp_t *resp)
{
    const char *id = api__path_id(req, resp);
    if (id && api_run_access(req, resp, id, false, NULL)) answer_run(req, resp, id, 200);
}

/* The run's result, the JSON its latest attempt wrote, as it was stored:
 * seen by whoever may GET the run; 404 naming path.id when there is none
 * (yet: a running or retrying run's latest attempt may still write one). */
void api_runs_result(http_req_t *req, http_resp_t *resp)
{
    char *json = NULL;
    const char *id = api__path_id(req, resp);
    if (!id || !api_run_access(req, resp, id, false, NULL)) return;
    int rc = store_run_result(req->st, id, &json);
    if (rc != 0) {
        api_fail_store(resp, rc, "run", "reading the result");
        return;
    }
    if (!json) {
        api_fail(resp, SKED_ENOTFOUND, "path.id",
                 "run %s has no result: its latest attempt wrote none", id);
        return;
    }
    http_text(resp, 200, "application/json", json, strlen(json));
    free(json);
}

/* Why it is or is not running (api_explain.c): seen by whoever may GET it. */
void api_runs_explain(http_req_t *req, http_resp_t *resp)
{
    const char *id = api__path_id(req, resp);
    if (id && api_run_access(req, resp, id, false, NULL)) api__explain(req, resp, NULL, id);
}

void api_runs_cancel(http_req_t *req, http_resp_t *resp)
{
    char *reason = NULL, *ns = NULL;
    store_run_t run = {0};
    const char *id = api__path_id(req, resp);
    if (!id || !api_run_access(req, resp, id, true, &ns)) return;

    reason = xasprintf("canceled by %s", req->who && req->who->name ? req->who->name : "api");
    store_audit_t audit;
    auth_audit_entry(req, id, ns, 200, &audit);
    int rc = store_run_cancel(req->st, id, reason, &audit, req->now_ms);
    if (rc == SKED_ECONFLICT) {
        const char *state = "finished";
        if (store_run_get(req->st, id, &run, NULL, NULL) == 0) state = run_state_name(run.state);
        api_fail(resp, SKED_ECONFLICT, NULL, "the run is already %s", state);
        goto out;
    }
    if (rc != 0) {
        api_fail_store(resp, rc, "run", "canceling the run");
        goto out;
    }
    log_info("api", "run %s: %s", id, reason);
    answer_run(req, resp, id, 200);
out:
    store_run_clear(&run);
    free(reason);
    free(ns);
}

/* ---- log ---------------------------------------------------------------- */

/* Where a log reader is; kept in req->ctx across waits when following. */
struct follow {
    unsigned magic;
    char run_id[SKED_ID_LEN];
    int only_attempt;  /* 0 = all attempts */
    int after_attempt; /* position of the last chunk written ... */
    int64_t after_seq; /* ... (0, -1) = start */
    int prev_attempt;  /* attempt of the last chunk written (for "[sked] attempt N") */
    bool line_start;   /* the text written so far ends a line */
};

/* A line of sked's own, on a line of its own. */
static void note(struct follow *f, buf_t *out, const char *text, size_t len)
{
    if (!f->line_start) buf_puts(out, "\n");
    while (len > 0 && text[len - 1] == '\n')
        len--;
    buf_puts(out, "[sked] ");
    buf_append(out, text, len);
    buf_puts(out, "\n");
    f->line_start = true;
}

/* Appends the rendering of every chunk after f's position to out and
 * advances the position. */
static int read_log(store_t *st, struct follow *f, buf_t *out)
{
    for (;;) {
        store_log_chunk_t *ch = NULL;
        size_t n = 0;
        int rc = store_log_read(st, f->run_id, f->only_attempt, f->after_attempt, f->after_seq,
                                LOG_PAGE, &ch, &n);
        if (rc != 0) return rc;
        for (size_t i = 0; i < n; i++) {
            const store_log_chunk_t *c = &ch[i];
            if (c->attempt != f->prev_attempt) {
                char hdr[32];
                int len = snprintf(hdr, sizeof hdr, "attempt %d", c->attempt);
                note(f, out, hdr, (size_t)len);
                f->prev_attempt = c->attempt;
            }
            if (c->stream == 0) {
                note(f, out, c->data ? c->data : "", c->len);
            } else if (c->len > 0) {
                buf_append(out, c->data, c->len);
                f->line_start = c->data[c->len - 1] == '\n';
            }
            f->after_attempt = c->attempt;
            f->after_seq = c->seq;
        }
        for (size_t i = 0; i < n; i++)
            store_log_chunk_clear(&ch[i]);
        free(ch);
        if (n < LOG_PAGE) return 0;
    }
}

static void follow_free(void *p)
{
    free(p);
}

/* First call: validates the request. On success returns a new reader
 * (caller frees) and sets *follow; otherwise answers resp, returns NULL. */
static struct follow *start_log(http_req_t *req, http_resp_t *resp, bool *follow)
{
    store_run_t run = {0};
    struct follow *f = NULL;
    long attempt = 0;

    const char *id = api__path_id(req, resp);
    if (!id || !api_run_access(req, resp, id, false, NULL)) goto out;
    const char *q = http_query(req, "attempt");
    if (q && api__int_param(q, 1, 1000000, &attempt) != 0) {
        api_fail(resp, SKED_EINVAL, "query.attempt", "attempt must be a positive integer");
        goto out;
    }
    q = http_query(req, "follow");
    *follow = false;
    if (q && (!strcmp(q, "1") || !strcmp(q, "true"))) {
        *follow = true;
    } else if (q && strcmp(q, "0") != 0 && strcmp(q, "false") != 0) {
        api_fail(resp, SKED_EINVAL, "query.follow", "follow must be 1 or 0");
        goto out;
    }
    int rc = store_run_get(req->st, id, &run, NULL, NULL);
    if (rc != 0) {
        api_fail_store(resp, rc, "run", "reading the run");
        goto out;
    }
    f = xcalloc(1, sizeof *f);
    f->magic = FOLLOW_MAGIC;
    snprintf(f->run_id, sizeof f->run_id, "%s", id);
    f->only_attempt = (int)attempt;
    f->after_seq = -1;
    /* Output starts in attempt 1 (or the one asked for); a header marks
     * every later attempt, including when the first attempts wrote nothing. */
    f->prev_attempt = attempt ? (int)attempt : 1;
    f->line_start = true;
out:
    store_run_clear(&run);
    return f;
}

void api_runs_log(http_req_t *req, http_resp_t *resp)
{
    struct follow *f = req->ctx;
    buf_t out = BUF_INIT;
    store_run_t run = {0};

    if (!f) {
        bool follow = false;
        f = start_log(req, resp, &follow);
        if (!f) goto out;
        if (!follow) {
            int rc = read_log(req->st, f, &out);
            free(f);
            if (rc != 0) {
                api_fail_store(resp, rc, "run", "reading the log");
                goto out;
            }
            http_text(resp, 200, TEXT_PLAIN, out.data ? out.data : "", out.len);
            goto out;
        }
        req->ctx = f;
        req->ctx_free = follow_free;
        http_stream_begin(resp, 200, TEXT_PLAIN);
    }
    assert(f->magic == FOLLOW_MAGIC);

    /* The state is read before the chunks: a worker ships an attempt's
     * output before it completes the attempt, so once the run is seen
     * terminal everything it wrote is in the read that follows. */
    int rc = store_run_get(req->st, f->run_id, &run, NULL, NULL);
    if (rc != 0) { /* deleted or pruned while followed */
        http_stream_end(resp);
        goto out;
    }
    bool done = run_state_terminal(run.state);
    rc = read_log(req->st, f, &out);
    if (out.len > 0) http_stream_write(resp, out.data, out.len);
    if (rc != 0) {
        if (!api_logged_below(rc))
            log_warn("api", "following the log of %s: %s", f->run_id, sked_strerror(rc));
        http_stream_end(resp);
    } else if (done) {
        http_stream_end(resp);
    } else {
        http_wait(resp, clock_mono_ns() + FOLLOW_WAIT_NS);
    }
out:
    store_run_clear(&run);
    buf_free(&out);
}
