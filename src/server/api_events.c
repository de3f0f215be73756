/*
 * GET /v1/events: server-sent events (text/event-stream) of the event log
 * (store.h, "events"): every change of a job, run or worker, each with its
 * id, in id order, from every server of a cluster (they all read the one
 * log).
 *
 * Where a stream starts: after the id in `Last-Event-ID` (what an
 * EventSource sends when it reconnects) or `?after=`, else at the newest
 * event (only what happens from now on; `?after=0` replays what retention
 * kept). A resume point retention has already deleted past, or one this
 * log never had, is refused with 410: the client must list the current
 * state again and start over, because events were lost to it.
 *
 * Filters: `?job=ID` (that job and its runs), `?type=` a comma-separated
 * list of types ("run.failed") or kinds ("run" = every run.*). A caller
 * sees the events of the namespaces it has a grant for; worker events are
 * seen by callers that see every namespace, or the worker's own.
 *
 * A stream holds no thread while it waits (http_wait): it is woken by the
 * store's notify hook (every run change, on every server through the
 * cluster's wake channel) and otherwise looks again every second, which
 * bounds the delay of job and worker events; while newer ids are still in
 * flight it looks again within a few ms. A comment line goes out every 15 s
 * of silence so proxies and clients know the stream lives, and a stream
 * ends after 15 min: the client resumes with Last-Event-ID, and its token
 * is checked again.
 */
#include "server/api.h"
#include "server/server_int.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
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

#define EVENTS_MAGIC  0x45564e54u /* "EVNT" */
#define PAGE          256         /* events read per store call */
#define PAGES_PER_RUN 8           /* then yield the thread and come back at once */
#define MS            ((int64_t)1000 * 1000)
#define IDLE_WAIT_NS  (1000 * MS)
#define BUSY_WAIT_NS  (5 * MS)
#define KEEPALIVE_NS  (15000 * MS)
#define LIFETIME_NS   ((int64_t)15 * 60 * 1000 * MS)
#define TYPES_MAX     16

/* Every type the log holds, by kind; a filter must name one of these or a
 * kind. */
static const char *const event_types[] = {
    "job.created",   "job.updated",   "job.paused",   "job.resumed",       "job.done",
    "job.deleted",   "run.scheduled", "run.waiting",  "run.pending",       "run.skipped",
    "run.claimed",   "run.started",   "run.retrying", "run.requeued",      "run.cancel_requested",
    "run.succeeded", "run.failed",    "run.canceled", "worker.registered", "worker.draining",
    "worker.lost",   "worker.gone",   "alert.opened", "alert.resolved",    "alert.acked",
};
static const char *const event_kinds[] = {"job", "run", "worker", "alert"};

struct stream {
    unsigned magic;
    int64_t after; /* the last id read (written or filtered out) */
    char job[SKED_ID_LEN];
    char *types[TYPES_MAX]; /* owned; "run" matches every "run.*" */
    size_t ntypes;
    int64_t started_ns, wrote_ns;
};

static void stream_free(void *p)
{
    struct stream *s = p;
    if (!s) return;
    for (size_t i = 0; i < s->ntypes; i++)
        free(s->types[i]);
    free(s);
}

static bool known_type(const char *t)
{
    for (size_t i = 0; i < sizeof event_types / sizeof *event_types; i++)
        if (!strcmp(t, event_types[i])) return true;
    for (size_t i = 0; i < sizeof event_kinds / sizeof *event_kinds; i++)
        if (!strcmp(t, event_kinds[i])) return true;
    return false;
}

static bool type_wanted(const struct stream *s, const char *type)
{
    if (s->ntypes == 0) return true;
    size_t tl = strlen(type);
    for (size_t i = 0; i < s->ntypes; i++) {
        size_t n = strlen(s->types[i]);
        if (n == tl && !memcmp(s->types[i], type, n)) return true;
        if (n < tl && !memcmp(s->types[i], type, n) && type[n] == '.') return true;
    }
    return false;
}

static bool visible(const http_req_t *req, const struct stream *s, const store_event_t *e)
{
    if (s->job[0] && strcmp(e->job_id, s->job) != 0) return false;
    if (!type_wanted(s, e->type)) return false;
    return auth_ns_visible(req->who, e->ns);
}

/* Parses a resume point: a decimal id >= 0. */
static int parse_id(const char *v, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < 0) return SKED_EINVAL;
    *out = n;
    return 0;
}

static void put_str(json_t *o, const char *k, const char *v)
{
    if (v && *v) json_object_set_new(o, k, json_string(v));
}

/* One event in the text/event-stream framing; the data line is one JSON
 * object (jansson escapes newlines, so it stays one line). */
static void render(buf_t *out, const store_event_t *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(e->id));
    json_object_set_new(o, "type", json_string(e->type));
    json_object_set_new(o, "time", api_time_json(e->at_ms));
    json_object_set_new(o, "namespace", json_string(e->ns));
    put_str(o, "job_id", e->job_id);
    put_str(o, "run_id", e->run_id);
    put_str(o, "worker_id", e->worker_id);
    if (e->run_id[0]) json_object_set_new(o, "attempt", json_integer(e->attempt));
    put_str(o, "alert_id", e->alert_id);
    put_str(o, "detail", e->detail);
    char *data = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    buf_printf(out, "id: %" PRId64 "\nevent: %s\ndata: %s\n\n", e->id, e->type, data);
    free(data);
}

/* First call: checks the query and the resume point. On success returns a
 * new stream; otherwise answers resp and returns NULL. */
static struct stream *start(http_req_t *req, http_resp_t *resp)
{
    struct stream *s = xcalloc(1, sizeof *s);
    s->magic = EVENTS_MAGIC;
    const char *q = http_query(req, "job");
    if (q) {
        if (!id_valid(q)) {
            api_fail(resp, SKED_EINVAL, "query.job", "job must be a job id such as job_...");
            goto fail;
        }
        snprintf(s->job, sizeof s->job, "%s", q);
    }
    if ((q = http_query(req, "type"))) {
        for (const char *p = q;;) {
            size_t len = strcspn(p, ",");
            char *t = xstrndup(p, len);
            if (s->ntypes == TYPES_MAX) {
                api_fail(resp, SKED_EINVAL, "query.type", "at most %d types", TYPES_MAX);
                free(t);
                goto fail;
            }
            if (!known_type(t)) {
                api_fail(resp, SKED_EINVAL, "query.type",
                         "unknown event type '%s': a type such as run.failed, or a kind: job, "
                         "run, worker or alert",
                         t);
                free(t);
                goto fail;
            }
            s->types[s->ntypes++] = t;
            p += len;
            if (!*p) break;
            p++;
        }
    }

    const char *field = "header.Last-Event-ID";
    const char *from = http_header(req, "Last-Event-ID");
    if (!from || !*from) {
        field = "query.after";
        from = http_query(req, "after");
    }
    int64_t pruned = 0, last = 0;
    int rc = store_events_bounds(req->st, &pruned, &last);
    if (rc < 0) {
        api_fail_store(resp, rc, "event log", "reading the event log");
        goto fail;
    }
    if (!from) {
        s->after = last;
    } else if (parse_id(from, &s->after) < 0) {
        api_fail(resp, SKED_EINVAL, field, "an event id is a whole number >= 0, not '%s'", from);
        goto fail;
    } else if (s->after < pruned) {
        http_problem(resp, 410, field,
                     "events after %" PRId64 " are gone (kept since %" PRId64
                     "); read the current state again and resume after %" PRId64,
                     s->after, pruned + 1, last);
        goto fail;
    } else if (s->after > last) {
        http_problem(resp, 410, field,
                     "this event log has no event %" PRId64 " (its newest is %" PRId64
                     "); read the current state again and resume after %" PRId64,
                     s->after, last, last);
        goto fail;
    }
    s->started_ns = s->wrote_ns = clock_mono_ns();
    return s;
fail:
    stream_free(s);
    return NULL;
}

void api_events(http_req_t *req, http_resp_t *resp)
{
    struct stream *s = req->ctx;
    buf_t out = BUF_INIT;
    if (!s) {
        if (!(s = start(req, resp))) return;
        req->ctx = s;
        req->ctx_free = stream_free;
        http_set_header(resp, "Cache-Control", "no-cache");
        http_stream_begin(resp, 200, "text/event-stream; charset=utf-8");
        /* The client's reconnection delay, and a first line that flushes
         * the headers at once. */
        buf_printf(&out, "retry: 2000\n: events after %" PRId64 "\n\n", s->after);
    }
    assert(s->magic == EVENTS_MAGIC);

    bool pending = false, more = false;
    for (int page = 0; page < PAGES_PER_RUN; page++) {
        store_event_t *v = NULL;
        size_t n = 0;
        int rc = store_events_read(req->st, s->after, PAGE, &v, &n, &pending);
        if (rc < 0) {
            if (!api_logged_below(rc)) log_warn("api", "events: %s", sked_strerror(rc));
            break; /* look again after the wait; the client keeps its place */
        }
        for (size_t i = 0; i < n; i++) {
            if (visible(req, s, &v[i])) render(&out, &v[i]);
            s->after = v[i].id;
            store_event_clear(&v[i]);
        }
        free(v);
        more = n == PAGE;
        if (!more) break;
    }

    int64_t now = clock_mono_ns();
    if (out.len == 0 && now - s->wrote_ns >= KEEPALIVE_NS) buf_puts(&out, ": keepalive\n\n");
    if (out.len > 0) {
        http_stream_write(resp, out.data, out.len);
        s->wrote_ns = now;
    }
    buf_free(&out);
    if (now - s->started_ns >= LIFETIME_NS) {
        http_stream_end(resp);
        return;
    }
    http_wait(resp, now + (more ? 0 : pending ? BUSY_WAIT_NS : IDLE_WAIT_NS));
}
