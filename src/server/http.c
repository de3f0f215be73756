/*
 * The HTTP layer: libmicrohttpd glue between sockets and the API handlers
 * of routes.c (see http.h for what handlers see).
 *
 * One microhttpd daemon with a pool of event-driven threads (epoll) serves
 * every connection. A request is read into a per-request `struct conn`
 * (microhttpd's con_cls): first the headers, where routing, the body-size
 * check and authentication happen so bad requests are refused before their
 * body is read; then the body, accumulated up to HTTP_BODY_MAX; then the
 * handler runs.
 *
 * Waiting holds no thread: a handler that calls http_wait() has its
 * connection suspended (MHD_suspend_connection) and parked in a min-heap
 * ordered by deadline; a timer thread resumes those whose deadline passes.
 * microhttpd then calls back into us for the resumed connection (the
 * access handler for a plain response, the content reader for a stream)
 * and the handler runs again.
 *
 * Two kinds of waiters, two ways to wake them. Streams (log follows, the
 * event stream) wait with http_wait() and server_wake() resumes every one
 * of them: each has its own reader to feed. Claims wait with
 * http_wait_one() in a FIFO, and server_wake() resumes only the first (the
 * longest parked): one new run needs one worker, and waking thousands of
 * idle workers for it is a thundering herd. A woken claim that could not
 * use its wake-up (its labels, queues or plugin types did not match, or
 * another claim got there first while more work is left) hands it on with
 * http_pass_wake() to the next in line, at most once per waiter parked when
 * the wake-up came, so a run is never left unclaimed while a matching
 * worker waits, and a wake-up nobody can use ends. A claim that wants to
 * be back when a materialised run comes due asks http_wake_at(), and the
 * timer thread then wakes one claim as a store change would.
 *
 * Limits (docs/api.md, "Conventions"): the daemon caps connections in total and
 * per client address, closes connections silent for the idle timeout, and
 * bounds each connection's memory (so request headers) to CONN_MEMORY.
 * Being event-driven, a client that trickles its request a byte at a time
 * holds a descriptor and a little memory, never a thread. Each request is
 * charged to a token bucket (ratelimit.c) once its caller is known: the
 * token's, or the client address's for public routes and for bearer
 * tokens that fail to verify (so guessing tokens is throttled). Admin
 * tokens and the worker protocol are exempt (see authenticate).
 *
 * TLS: given a certificate and key the daemon speaks HTTPS only (GnuTLS
 * inside microhttpd); a plain-HTTP request fails its handshake.
 *
 * Lock order: http_daemon.mu is taken before any microhttpd-internal lock
 * (we call MHD_suspend_connection/MHD_resume_connection with mu held), and
 * microhttpd never calls us while holding one of its own locks that we
 * could wait for, so the order cannot invert.
 */
#include "server/http.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/heap.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "server/auth.h"
#include "server/http_parse.h"
#include "server/metrics.h"
#include "server/ratelimit.h"
#include "server/server_int.h"

#define CONN_MAGIC   0x736b6443u /* "skdC" */
#define MAX_SEGS     16          /* no route has more path segments than this */
#define STREAM_BLOCK 16384
#define STOP_DRAIN_S 5           /* how long server_stop lets requests finish */
#define CONN_MEMORY  (64 * 1024) /* per connection: request line and headers must fit */
#define PEM_MAX      (1024 * 1024)
/* GnuTLS priorities: its defaults minus protocol versions nobody should
 * still speak. */
#define TLS_PRIORITIES "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"

enum wstate {
    W_NONE = 0, /* running or idle */
    W_PARKED,   /* suspended, in the heap */
    W_WOKEN,    /* resumed by server_wake */
    W_EXPIRED   /* resumed by its deadline (or by shutdown) */
};

enum park_result { PARK_OK, PARK_WOKEN, PARK_EXPIRED, PARK_REFUSED };

struct conn;

/* A FIFO of parked connections, linked through conn_t.qprev/qnext. */
typedef struct waitq {
    struct conn *head, *tail;
    size_t n;
} waitq_t;

struct hdr {
    char *name;
    char *value;
};

struct http_resp {
    int status;  /* 0 = nothing set yet */
    char *ctype; /* owned */
    char *body;  /* owned */
    size_t body_len;
    struct hdr *hdrs; /* owned, nhdrs entries */
    size_t nhdrs;
    bool wait;           /* the handler asked to wait */
    bool one;            /* ... woken one at a time (http_wait_one) */
    int64_t deadline_ns; /* monotonic */
    bool stream;         /* body produced by repeated handler calls */
    bool stream_end;
    buf_t out;      /* stream bytes not yet handed to microhttpd */
    size_t out_off; /* bytes of out already handed over */
};

typedef struct conn {
    uint32_t magic;
    http_daemon_t *d;
    struct MHD_Connection *mc;
    http_req_t req;
    http_resp_t resp;
    const http_route_t *route;
    char *pathbuf;               /* the path split into NUL-separated segments */
    char peer[INET6_ADDRSTRLEN]; /* the client's address, req.peer points here */
    char request_id[65];         /* X-Request-Id: the client's when well-formed, else ours */
    const char *version;         /* "HTTP/1.1"; microhttpd's, like method and path */
    struct hdr *args;            /* the query, percent-decoded (value NULL: "?key" alone) */
    size_t nargs;
    buf_t body;
    bool too_big;      /* body exceeded HTTP_BODY_MAX: discard, answer 413 */
    bool queued;       /* a response has been queued */
    bool ran;          /* the handler ran at least once */
    bool stop_seen;    /* it was already told the server is stopping */
    int64_t t0_ns;     /* monotonic time the request's headers arrived */
    store_token_t tok; /* the caller's token record (who points into it) */
    http_principal_t who;
    enum wstate wstate;         /* guarded by d->mu */
    heap_node_t park;           /* in d->parked while W_PARKED; key: the deadline, monotonic ns */
    uint64_t gen;               /* d->gen when the handler last started */
    bool one;                   /* parked with http_wait_one: in d->ones, else in d->alls */
    struct conn *qprev, *qnext; /* in d->ones or d->alls while W_PARKED */
    size_t hops; /* passes its wake-up may still make (http_pass_wake); guarded by d->mu */
} conn_t;

struct http_daemon {
    server_t *srv;
    store_t *st;
    struct MHD_Daemon *mhd;
    MHD_socket listen_fd; /* from quiesce; closed after MHD_stop_daemon */
    char *url;
    pthread_mutex_t mu;
    pthread_cond_t timer_cv; /* CLOCK_MONOTONIC */
    pthread_cond_t idle_cv;  /* signalled when active drops to 0 */
    heap_t parked;           /* parked connections (conn_t.park), by deadline */
    waitq_t alls;            /* parked with http_wait: every wake resumes them all */
    waitq_t ones;            /* parked with http_wait_one: a wake resumes the first */
    int64_t due_ns;          /* http_wake_at: when the timer wakes one (INT64_MAX: never) */
    _Atomic uint64_t gen;    /* bumped (under mu) by every wake */
    bool stopping;
    bool timer_quit;
    bool timer_started;
    pthread_t timer;
    size_t active;   /* requests begun and not yet completed */
    ratelimit_t *rl; /* per token / per address; NULL = no limit */
    double rate, burst;
    char *tls_cert;    /* PEM, owned; NULL = plain HTTP */
    char *tls_key;     /* PEM, owned; wiped on free */
    bool metrics_only; /* serves GET /metrics alone, without a token (--metrics-listen) */
};

/* ---- small helpers ------------------------------------------------------ */

static const char *reason_phrase(int status)
{
    const char *r = MHD_get_reason_phrase_for((unsigned)status);
    return r && *r ? r : "Unknown";
}

static void resp_clear_body(http_resp_t *r)
{
    FREE_NULL(r->body);
    r->body_len = 0;
    FREE_NULL(r->ctype);
}

static void resp_reset(http_resp_t *r)
{
    resp_clear_body(r);
    for (size_t i = 0; i < r->nhdrs; i++) {
        free(r->hdrs[i].name);
        free(r->hdrs[i].value);
    }
    FREE_NULL(r->hdrs);
    r->nhdrs = 0;
    r->status = 0;
    r->wait = false;
    r->stream = false;
    r->stream_end = false;
    buf_free(&r->out);
    r->out_off = 0;
}

/* Sets a plain (non-stream) answer; takes ownership of body. */
static void resp_set(http_resp_t *r, int status, const char *ctype, char *body, size_t len)
{
    resp_clear_body(r);
    r->status = status;
    r->ctype = xstrdup(ctype);
    r->body = body;
    r->body_len = len;
    r->wait = false;
    r->stream = false;
}

/* ---- the request and response API of http.h ----------------------------- */

/* The query as decoded and checked by parse_query (microhttpd's own copy
 * keeps its escapes: see keep_escapes). The first of repeated keys wins. */
const char *http_query(const http_req_t *req, const char *key)
{
    const conn_t *c = req->conn;
    for (size_t i = 0; i < c->nargs; i++)
        if (!strcmp(c->args[i].name, key)) return c->args[i].value;
    return NULL;
}

const char *http_header(const http_req_t *req, const char *name)
{
    conn_t *c = req->conn;
    const char *v = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(c->mc, MHD_HEADER_KIND, name, strlen(name), &v, &n) !=
            MHD_YES ||
        !v)
        return NULL;
    /* A value with a NUL inside would be read cut short; check_framing
     * refuses such requests, this is the second line of defence. */
    return strlen(v) == n ? v : NULL;
}

void http_json(http_resp_t *resp, int status, json_t *doc)
{
    char *s = doc ? json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(doc);
    if (!s) {
        log_error("http", "cannot serialise a response document");
        http_problem(resp, 500, NULL, "the answer could not be serialised");
        return;
    }
    /* A trailing newline keeps terminals tidy for people using curl. */
    size_t n = strlen(s);
    char *body = xmalloc(n + 2);
    memcpy(body, s, n);
    body[n] = '\n';
    body[n + 1] = 0;
    free(s);
    resp_set(resp, status, "application/json", body, n + 1);
}

void http_text(http_resp_t *resp, int status, const char *content_type, const char *data,
               size_t len)
{
    char *body = xmalloc(len + 1);
    if (len) memcpy(body, data, len);
    body[len] = 0;
    resp_set(resp, status, content_type, body, len);
}

void http_empty(http_resp_t *resp, int status)
{
    resp_clear_body(resp);
    resp->status = status;
    resp->wait = false;
    resp->stream = false;
}

__attribute__((format(printf, 5, 0))) static void vproblem(http_resp_t *resp, int status,
                                                           const char *field, json_t *errors,
                                                           const char *fmt, va_list ap)
{
    char detail[1024];
    vsnprintf(detail, sizeof detail, fmt, ap);
    json_t *doc = json_object();
    json_object_set_new(doc, "type", json_string("about:blank"));
    json_object_set_new(doc, "title", json_string(reason_phrase(status)));
    json_object_set_new(doc, "status", json_integer(status));
    /* Details may quote client input, and jansson refuses invalid UTF-8:
     * fall back to the title rather than lose the whole answer. */
    json_t *d = json_string(detail);
    json_object_set_new(doc, "detail", d ? d : json_string(reason_phrase(status)));
    if (field) {
        json_t *f = json_string(field);
        if (f) json_object_set_new(doc, "field", f);
    }
    if (errors) json_object_set_new(doc, "errors", errors);
    char *s = json_dumps(doc, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(doc);
    if (!s) s = xstrdup("{\"type\":\"about:blank\",\"status\":500}");
    char *body = xasprintf("%s\n", s);
    free(s);
    resp_set(resp, status, "application/problem+json", body, strlen(body));
}

void http_problem(http_resp_t *resp, int status, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(resp, status, field, NULL, fmt, ap);
    va_end(ap);
}

void http_problem_err(http_resp_t *resp, int err, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(resp, sked_http_status(err), field, NULL, fmt, ap);
    va_end(ap);
}

void http_problem_list(http_resp_t *resp, int err, const char *field, json_t *errors,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(resp, sked_http_status(err), field, errors, fmt, ap);
    va_end(ap);
}

void http_set_header(http_resp_t *resp, const char *name, const char *value)
{
    for (size_t i = 0; i < resp->nhdrs; i++) {
        if (!strcasecmp(resp->hdrs[i].name, name)) {
            free(resp->hdrs[i].value);
            resp->hdrs[i].value = xstrdup(value);
            return;
        }
    }
    resp->hdrs = xrealloc(resp->hdrs, (resp->nhdrs + 1) * sizeof *resp->hdrs);
    resp->hdrs[resp->nhdrs].name = xstrdup(name);
    resp->hdrs[resp->nhdrs].value = xstrdup(value);
    resp->nhdrs++;
}

void http_wait(http_resp_t *resp, int64_t deadline_mono_ns)
{
    resp->wait = true;
    resp->one = false;
    resp->deadline_ns = deadline_mono_ns;
}

void http_wait_one(http_resp_t *resp, int64_t deadline_mono_ns)
{
    http_wait(resp, deadline_mono_ns);
    resp->one = true;
}

void http_stream_begin(http_resp_t *resp, int status, const char *content_type)
{
    resp_clear_body(resp);
    resp->status = status;
    resp->ctype = xstrdup(content_type);
    resp->stream = true;
    resp->stream_end = false;
    resp->wait = false;
}

void http_stream_write(http_resp_t *resp, const char *data, size_t len)
{
    buf_append(&resp->out, data, len);
}

void http_stream_end(http_resp_t *resp)
{
    resp->stream_end = true;
    resp->wait = false;
}

static bool json_ctype(const char *ct)
{
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 16 && !strncasecmp(ct, "application/json", 16)) return true;
    return n > 5 && !strncasecmp(ct + n - 5, "+json", 5);
}

json_t *http_body_json(http_req_t *req, http_resp_t *resp)
{
    const char *ct = http_header(req, "Content-Type");
    /* A body without a type is refused too: a browser form or a proxy
     * guessing types must not be able to post jobs (415, RFC 9110
     * §15.5.16). */
    if ((ct && !json_ctype(ct)) || (!ct && req->body_len)) {
        http_problem(resp, 415, "header.Content-Type",
                     "the body must be sent as 'Content-Type: application/json'%s%.100s%s",
                     ct ? ", not '" : "", ct ? ct : "", ct ? "'" : "");
        http_set_header(resp, "Accept", "application/json");
        return NULL;
    }
    if (!req->body_len) {
        http_problem(resp, 400, "body", "a JSON object body is required");
        return NULL;
    }
    json_error_t e;
    json_t *doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!doc) {
        http_problem(resp, 400, "body", "malformed JSON at line %d, column %d: %s", e.line,
                     e.column, e.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        http_problem(resp, 400, "body", "the body must be a JSON object");
        return NULL;
    }
    return doc;
}

/* ---- waiting: the heap of parked connections ---------------------------- */

static void q_push(waitq_t *q, conn_t *c)
{
    c->qnext = NULL;
    c->qprev = q->tail;
    if (q->tail)
        q->tail->qnext = c;
    else
        q->head = c;
    q->tail = c;
    q->n++;
}

static void q_remove(waitq_t *q, conn_t *c)
{
    if (c->qprev)
        c->qprev->qnext = c->qnext;
    else
        q->head = c->qnext;
    if (c->qnext)
        c->qnext->qprev = c->qprev;
    else
        q->tail = c->qprev;
    c->qprev = c->qnext = NULL;
    q->n--;
}

/* Resumes parked c with state ws, counted as reason. It leaves the heap
 * and its queue before it is resumed, and is not touched after: once
 * resumed, its microhttpd thread may run it at once and free it (a client
 * that hung up is dropped). Caller holds d->mu. */
static void resume(http_daemon_t *d, conn_t *c, enum wstate ws, metrics_resume_t reason)
{
    heap_remove(&d->parked, &c->park);
    q_remove(c->one ? &d->ones : &d->alls, c);
    c->wstate = ws;
    MHD_resume_connection(c->mc);
    metrics_wait_resumed(reason, 1);
}

/* Resumes every parked connection with state ws (shutdown). Caller holds
 * d->mu. */
static void resume_all(http_daemon_t *d, enum wstate ws)
{
    size_t n;
    while ((n = heap_len(&d->parked)) > 0) {
        conn_t *c = HEAP_ENTRY(heap_at(&d->parked, n - 1), conn_t, park);
        c->hops = 0;
        resume(d, c, ws, ws == W_WOKEN ? METRICS_RESUME_WAKE : METRICS_RESUME_DEADLINE);
    }
}

/* Wakes the first claim in line, if any, allowing its wake-up to be passed
 * on hops more times, but never more often than there are claims left
 * parked behind it. Caller holds d->mu. */
static void wake_first(http_daemon_t *d, size_t hops, metrics_resume_t reason)
{
    conn_t *c = d->ones.head;
    if (!c) return;
    c->hops = hops < d->ones.n - 1 ? hops : d->ones.n - 1;
    resume(d, c, W_WOKEN, reason);
}

/* A wake-up: every stream, and the first claim in line, whose wake-up may
 * travel once through every claim parked now. The generation tells the
 * handlers running now (not parked) to look again before they park (see
 * park). Caller holds d->mu. */
static void wake(http_daemon_t *d)
{
    atomic_fetch_add(&d->gen, 1);
    conn_t *c;
    while ((c = d->alls.head))
        resume(d, c, W_WOKEN, METRICS_RESUME_WAKE);
    wake_first(d, d->ones.n, METRICS_RESUME_WAKE);
}

/* Suspends c until a wake or its deadline, unless it need not wait: a wake
 * since the handler started (the handler checked its condition before that
 * wake and would otherwise sleep through the very event it waits for), a
 * deadline already past, or a server stopping. A claim joins the end of
 * the line: the others parked before it are woken first. Called from a
 * microhttpd callback of c. */
static enum park_result park(conn_t *c, int64_t deadline_ns, bool one)
{
    http_daemon_t *d = c->d;
    enum park_result r;
    pthread_mutex_lock(&d->mu);
    c->hops = 0; /* a wake-up it did not pass on ends here */
    if (d->stopping) {
        r = c->stop_seen ? PARK_REFUSED : PARK_EXPIRED;
        c->stop_seen = true;
    } else if (deadline_ns <= clock_mono_ns()) {
        r = PARK_EXPIRED;
    } else if (atomic_load(&d->gen) != c->gen) {
        r = PARK_WOKEN;
    } else {
        c->wstate = W_PARKED;
        c->one = one;
        heap_push(&d->parked, &c->park, deadline_ns);
        q_push(one ? &d->ones : &d->alls, c);
        /* Suspend while holding mu: a wake can only find c in the heap after
         * MHD_suspend_connection returned, and resuming a connection that is
         * not suspended is undefined in microhttpd. */
        MHD_suspend_connection(c->mc);
        metrics_wait_parked();
        if (heap_min(&d->parked) == &c->park) pthread_cond_signal(&d->timer_cv);
        r = PARK_OK;
    }
    pthread_mutex_unlock(&d->mu);
    return r;
}

static void *timer_main(void *arg)
{
    http_daemon_t *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->timer_quit) {
        int64_t now = clock_mono_ns();
        heap_node_t *top;
        while ((top = heap_min(&d->parked)) && top->key <= now) {
            conn_t *c = HEAP_ENTRY(top, conn_t, park);
            c->hops = 0;
            resume(d, c, W_EXPIRED, METRICS_RESUME_DEADLINE);
        }
        if (d->due_ns <= now) {
            d->due_ns = INT64_MAX;
            wake_first(d, d->ones.n, METRICS_RESUME_WAKE);
            atomic_fetch_add(&d->gen, 1);
        }
        int64_t t = d->due_ns;
        if ((top = heap_min(&d->parked)) && top->key < t) t = top->key;
        if (t < INT64_MAX) {
            struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};
            pthread_cond_timedwait(&d->timer_cv, &d->mu, &ts);
        } else {
            pthread_cond_wait(&d->timer_cv, &d->mu);
        }
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

void http__wake(http_daemon_t *d)
{
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    wake(d);
    pthread_mutex_unlock(&d->mu);
}

/* Passes c's wake-up, if it has one left, to the next claim in line. */
static void pass_wake(conn_t *c)
{
    http_daemon_t *d = c->d;
    pthread_mutex_lock(&d->mu);
    if (c->hops > 0) wake_first(d, c->hops - 1, METRICS_RESUME_PASS);
    c->hops = 0;
    pthread_mutex_unlock(&d->mu);
}

void http_pass_wake(http_req_t *req)
{
    pass_wake(req->conn);
}

void http_wake_at(http_req_t *req, int64_t when_mono_ns)
{
    http_daemon_t *d = ((conn_t *)req->conn)->d;
    pthread_mutex_lock(&d->mu);
    if (when_mono_ns < d->due_ns) {
        d->due_ns = when_mono_ns;
        pthread_cond_signal(&d->timer_cv);
    }
    pthread_mutex_unlock(&d->mu);
}

/* ---- hostile input: framing, the path and the query --------------------- */

/*
 * microhttpd is lenient where a proxy in front of sked may not be, so what
 * it hands us is checked before anything acts on it: the path and the
 * query are decoded here rather than by microhttpd, and the framing of
 * every request is audited. The parsers and the reasons for each check
 * are in http_parse.c; this is the glue that feeds them.
 */

/* The unescaper microhttpd calls on the path and each query key and value:
 * it keeps every escape, for route() and parse_query to decode safely. */
static size_t keep_escapes(void *cls, struct MHD_Connection *mc, char *s)
{
    (void)cls;
    (void)mc;
    return strlen(s);
}

/* Iterator of microhttpd's query: copies each key and value as sent
 * (keep_escapes) into c->args, for parse_query to decode. */
static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_len, const char *value, size_t value_len)
{
    conn_t *c = cls;
    (void)kind;
    c->args = xrealloc(c->args, (c->nargs + 1) * sizeof *c->args);
    c->args[c->nargs].name = xstrndup(key ? key : "", key_len);
    c->args[c->nargs].value = value ? xstrndup(value, value_len) : NULL;
    c->nargs++;
    return MHD_YES;
}

/* Decodes and checks every query key and value once, so each handler reads
 * clean UTF-8 through http_query. On failure fills c->resp (400 naming
 * "query.<key>") and returns false. */
static bool parse_query(conn_t *c)
{
    MHD_get_connection_values_n(c->mc, MHD_GET_ARGUMENT_KIND, collect_arg, c);
    for (size_t i = 0; i < c->nargs; i++) {
        struct hdr *a = &c->args[i];
        enum http_pct e = http_pct_decode(a->name, true);
        if (e != HTTP_PCT_OK) {
            http_problem(&c->resp, 400, "query", "a query parameter name %s", http_pct_what(e));
            return false;
        }
        if (a->value && (e = http_pct_decode(a->value, true)) != HTTP_PCT_OK) {
            char *field = xasprintf("query.%s", a->name);
            http_problem(&c->resp, 400, field, "the query parameter '%s' %s", a->name,
                         http_pct_what(e));
            free(field);
            return false;
        }
    }
    return true;
}

/* Iterator of microhttpd's fields for the framing audit. */
static enum MHD_Result frame_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_len, const char *value, size_t value_len)
{
    http_frame_field(cls, kind == MHD_HEADER_KIND, key, key_len, value, value_len);
    return MHD_YES;
}

/* Checks the request line and headers of c (http_frame_*). On failure
 * fills c->resp with a 400 that closes the connection and returns false. */
static bool check_framing(conn_t *c)
{
    http_frame_t f;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    http_frame_begin(&f, c->req.method, c->req.path, c->version, ci ? ci->header_size : 0);
    MHD_get_connection_values_n(c->mc, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND, frame_field, &f);
    const char *why = http_frame_end(&f);
    if (!why) return true;
    http_problem(&c->resp, 400, NULL, "malformed request: %s", why);
    http_set_header(&c->resp, "Connection", "close");
    return false;
}

/* ---- routing and authentication ---------------------------------------- */

/* Finds the route of c's method and path; on failure fills c->resp with
 * the 404 or 405 answer and returns false. */
static bool route(conn_t *c, const char *method, const char *url)
{
    char *segs[MAX_SEGS];
    size_t nsegs = 0;
    /* HEAD is GET without a body; microhttpd drops the body for us. */
    const char *m = !strcmp(method, "HEAD") ? "GET" : method;
    buf_t allow = BUF_INIT;
    bool ok = false;
    enum http_pct bad = HTTP_PCT_OK;

    if (url[0] != '/') goto out;
    c->pathbuf = xstrdup(url + 1);
    if (!(nsegs = http_path_split(c->pathbuf, segs, MAX_SEGS)))
        goto out; /* longer than any route */
    /* Split first, then decode: an escape never makes a separator. */
    for (size_t i = 0; i < nsegs; i++)
        if ((bad = http_pct_decode(segs[i], false)) != HTTP_PCT_OK) goto out;
    for (const http_route_t *r = http_routes; r->method; r++) {
        const char *params[HTTP_MAX_PARAMS] = {0};
        if (c->d->metrics_only && strcmp(r->pattern, HTTP_METRICS_PATH) != 0) continue;
        if (!http_path_match(r->pattern, segs, nsegs, params, HTTP_MAX_PARAMS)) continue;
        if (!strcmp(r->method, m)) {
            c->route = r;
            memcpy(c->req.params, params, sizeof params);
            ok = true;
            goto out;
        }
        if (!allow.len || !strstr(allow.data, r->method)) {
            buf_printf(&allow, "%s%s", allow.len ? ", " : "", r->method);
            if (!strcmp(r->method, "GET")) buf_puts(&allow, ", HEAD");
        }
    }
out:
    if (bad != HTTP_PCT_OK) {
        /* Nothing sked names holds a NUL, a slash or invalid UTF-8. */
        http_problem(&c->resp, 404, "path", "no such resource: a path segment %s",
                     http_pct_what(bad));
    } else if (!ok && allow.len) {
        http_problem(&c->resp, 405, NULL, "%s is not allowed here; allowed: %s", method,
                     allow.data);
        http_set_header(&c->resp, "Allow", allow.data);
    } else if (!ok) {
        http_problem(&c->resp, 404, NULL, "no route for %.20s %.200s", method, url);
    }
    buf_free(&allow);
    return ok;
}

/* The client's address as text into out ("?" when unknown). */
static void client_addr(const conn_t *c, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf(out, outlen, "?");
    if (!ci || !ci->client_addr) return;
    socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                           : sizeof(struct sockaddr_in);
    if (getnameinfo(ci->client_addr, len, out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(out, outlen, "?");
}

/* The 429 answer, with Retry-After in whole seconds (at least 1). */
static void too_many(conn_t *c, const char *whose, int64_t retry_ns)
{
    char secs[32];
    long long s = (retry_ns + 999999999) / 1000000000;
    if (s < 1) s = 1;
    snprintf(secs, sizeof secs, "%lld", s);
    http_problem(&c->resp, 429, NULL,
                 "too many requests from this %s: at most %g per second, in bursts of up to %g; "
                 "retry in %lld s",
                 whose, c->d->rate, c->d->burst, s);
    http_set_header(&c->resp, "Retry-After", secs);
}

/* Charges one request to the bucket of key; when it is empty fills c->resp
 * with the 429 answer and returns false. */
static bool charge(conn_t *c, const char *key, const char *whose)
{
    int64_t retry_ns = 0;
    if (!c->d->rl || ratelimit_take(c->d->rl, key, clock_mono_ns(), &retry_ns)) return true;
    too_many(c, whose, retry_ns);
    return false;
}

/* Authenticates the caller for c->route; on failure fills c->resp. */
static bool authenticate(conn_t *c)
{
    /* The metrics listener's one route is open: who may reach its address
     * is the network's business (bind it to a private one). */
    if (c->route->access == ACCESS_PUBLIC || c->d->metrics_only) {
        char akey[80] = "a:";
        client_addr(c, akey + 2, sizeof akey - 2);
        return charge(c, akey, "address");
    }
    const char *tok = auth_bearer(http_header(&c->req, "Authorization"));
    if (!tok) {
        http_problem(&c->resp, 401, "header.Authorization",
                     "this route needs an 'Authorization: Bearer <token>' header");
        http_set_header(&c->resp, "WWW-Authenticate", "Bearer realm=\"sked\"");
        auth_audit_refusal(&c->req, 401);
        return false;
    }
    int rc = auth_verify(c->d->st, tok, c->req.now_ms, &c->tok);
    if (rc == SKED_EUNAUTH) {
        /* Failures count against the address, so a client cycling through
         * guesses is slowed down; a valid token from the same address (a
         * colleague behind the same NAT) is not held up by them. */
        char akey[80] = "a:";
        client_addr(c, akey + 2, sizeof akey - 2);
        if (!charge(c, akey, "address")) return false;
        http_problem(&c->resp, 401, "header.Authorization",
                     "the bearer token is invalid, revoked or expired");
        http_set_header(&c->resp, "WWW-Authenticate",
                        "Bearer realm=\"sked\", error=\"invalid_token\"");
        auth_audit_refusal(&c->req, 401);
        return false;
    }
    if (rc < 0) {
        log_warn("http", "token lookup failed: %s", sked_strerror(rc));
        http_problem(&c->resp, 503, NULL, "the store is unavailable: %s", sked_strerror(rc));
        http_set_header(&c->resp, "Retry-After", "1");
        return false;
    }
    memcpy(c->who.token_id, c->tok.id, SKED_ID_LEN);
    c->who.name = c->tok.name ? c->tok.name : "";
    c->who.role = c->tok.role;
    c->who.ns = c->tok.ns ? c->tok.ns : "";
    c->req.who = &c->who;
    if (!auth_role_allows(c->tok.role, c->route->access)) {
        http_problem(&c->resp, 403, NULL, "a token with role '%s' may not call %s %s",
                     token_role_name(c->tok.role), c->route->method, c->route->pattern);
        auth_audit_refusal(&c->req, 403);
        return false;
    }
    /* Exempt, like Kubernetes exempts system:masters from its flow
     * control: admin tokens (operators' own tooling and recovery, which a
     * busy limit must never lock out) and the worker protocol (throttled
     * heartbeats would cost workers their leases and kill healthy
     * attempts). */
    if (c->route->access != ACCESS_WORKER && c->tok.role != ROLE_ADMIN) {
        char tkey[SKED_ID_LEN + 2];
        snprintf(tkey, sizeof tkey, "t:%s", c->tok.id);
        if (!charge(c, tkey, "token")) return false;
    }
    return true;
}

/* ---- answering ----------------------------------------------------------- */

static void add_headers(struct MHD_Response *mr, const conn_t *c)
{
    const http_resp_t *r = &c->resp;
    if (r->ctype) MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
    for (size_t i = 0; i < r->nhdrs; i++)
        MHD_add_response_header(mr, r->hdrs[i].name, r->hdrs[i].value);
    /* Every answer names its request, for the logs of both sides. */
    if (c->request_id[0]) MHD_add_response_header(mr, "X-Request-Id", c->request_id);
}

/* Counts the answer about to be queued (GET /metrics). */
static void count_answer(const conn_t *c)
{
    metrics_http_answered(c->route, c->req.method, c->resp.status, clock_mono_ns() - c->t0_ns);
}

static enum MHD_Result queue_plain(conn_t *c)
{
    http_resp_t *r = &c->resp;
    struct MHD_Response *mr = NULL;
    if (r->status < 100 || r->status > 599) {
        log_error("http", "%s %s: the handler set no valid answer (%d)", c->req.method, c->req.path,
                  r->status);
        http_problem(r, 500, NULL, "the server produced no answer");
    }
    count_answer(c);
    if (r->body_len) {
        mr = MHD_create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
        if (mr) r->body = NULL; /* microhttpd frees it with the response */
    } else {
        mr = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (!mr) return MHD_NO;
    add_headers(mr, c);
    enum MHD_Result ret = MHD_queue_response(c->mc, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    c->queued = true;
    return ret;
}

static void set_resume_flags(conn_t *c, enum park_result pr)
{
    c->req.resumed = true;
    c->req.timed_out = pr == PARK_EXPIRED;
}

/* Takes the state a waker left on c, if any, into the request's flags.
 * Returns false when c was not resumed from a park. */
static bool take_resume(conn_t *c)
{
    http_daemon_t *d = c->d;
    enum wstate ws;
    pthread_mutex_lock(&d->mu);
    ws = c->wstate;
    if (ws == W_WOKEN || ws == W_EXPIRED) c->wstate = W_NONE;
    pthread_mutex_unlock(&d->mu);
    if (ws != W_WOKEN && ws != W_EXPIRED) return false;
    set_resume_flags(c, ws == W_WOKEN ? PARK_WOKEN : PARK_EXPIRED);
    return true;
}

/* Whether the client hung up while its request was parked. A suspended
 * connection is not watched by microhttpd, so a worker killed while its
 * claim waits leaves the socket in CLOSE-WAIT; handing that claim work
 * would lease runs to a process that no longer exists. The peer's FIN (or
 * RST) shows as POLLRDHUP/POLLHUP on the socket without reading from it. */
static bool peer_gone(conn_t *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd p = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Runs the handler once, with the wake generation noted first (see park). */
static void call_handler(conn_t *c)
{
    c->gen = atomic_load(&c->d->gen);
    c->req.now_ms = store_now_ms(c->req.st);
    c->resp.wait = false;
    log_ctx_request(c->request_id);
    c->route->fn(&c->req, &c->resp);
    log_ctx_clear();
    c->ran = true;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max);

/* Closes the connection of a parked request whose client is gone, without
 * running its handler again. */
static enum MHD_Result drop_gone(conn_t *c)
{
    log_info("http", "%s %s from %s: the client hung up while waiting; dropped", c->req.method,
             c->req.path, c->req.peer);
    pass_wake(c); /* a wake-up it was given goes to the next in line */
    return MHD_NO;
}

static enum MHD_Result queue_stream(conn_t *c)
{
    count_answer(c);
    struct MHD_Response *mr =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK, stream_reader, c, NULL);
    if (!mr) return MHD_NO;
    add_headers(mr, c);
    /* Proxies must not buffer a stream people are watching. */
    MHD_add_response_header(mr, "X-Accel-Buffering", "no");
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result ret = MHD_queue_response(c->mc, (unsigned)c->resp.status, mr);
    MHD_destroy_response(mr);
    c->queued = true;
    return ret;
}

/* Runs the handler from the access callback until it answers, streams or
 * parks. */
static enum MHD_Result run(conn_t *c)
{
    for (;;) {
        resp_reset(&c->resp);
        call_handler(c);
        if (c->resp.stream) return queue_stream(c);
        if (!c->resp.wait) return queue_plain(c);
        enum park_result pr = park(c, c->resp.deadline_ns, c->resp.one);
        if (pr == PARK_OK) return MHD_YES;
        if (pr == PARK_REFUSED) {
            http_problem(&c->resp, 503, NULL, "the server is shutting down");
            http_set_header(&c->resp, "Retry-After", "1");
            return queue_plain(c);
        }
        set_resume_flags(c, pr);
        if (peer_gone(c)) return drop_gone(c);
    }
}

/* Content reader of a streaming answer: hands over what the handler wrote,
 * and when nothing is left calls the handler for more, parking the
 * connection when it asks to wait (suspend, then return 0: what microhttpd
 * prescribes for "no data yet" with internal polling, where a plain 0
 * would busy-loop). */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    conn_t *c = cls;
    http_resp_t *r = &c->resp;
    (void)pos;
    assert(c->magic == CONN_MAGIC);
    for (;;) {
        size_t avail = r->out.len - r->out_off;
        if (avail) {
            size_t n = avail < max ? avail : max;
            memcpy(buf, r->out.data + r->out_off, n);
            r->out_off += n;
            if (r->out_off == r->out.len) {
                buf_reset(&r->out);
                r->out_off = 0;
            }
            return (ssize_t)n;
        }
        if (r->stream_end) return MHD_CONTENT_READER_END_OF_STREAM;
        if (take_resume(c)) {
            /* flags set */
        } else if (r->wait) {
            enum park_result pr = park(c, r->deadline_ns, r->one);
            if (pr == PARK_OK) return 0;
            if (pr == PARK_REFUSED) return MHD_CONTENT_READER_END_OF_STREAM;
            set_resume_flags(c, pr);
        } else {
            c->req.resumed = true;
            c->req.timed_out = false;
        }
        call_handler(c);
        if (!r->stream) {
            log_warn("http", "%s %s: the handler left streaming mid-answer", c->req.method,
                     c->req.path);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (!r->wait && !r->stream_end && r->out.len == r->out_off) {
            /* Neither data, nor a wait, nor an end: calling it again would
             * spin. End the answer rather than burn a thread. */
            log_warn("http", "%s %s: the stream handler made no progress", c->req.method,
                     c->req.path);
            r->stream_end = true;
        }
    }
}

/* ---- microhttpd callbacks ----------------------------------------------- */

static conn_t *conn_new(http_daemon_t *d, struct MHD_Connection *mc, const char *url,
                        const char *method)
{
    conn_t *c = xcalloc(1, sizeof *c);
    c->magic = CONN_MAGIC;
    c->d = d;
    c->mc = mc;
    c->req.srv = d->srv;
    c->req.st = d->st;
    c->req.method = method; /* microhttpd keeps both for the request's lifetime */
    c->req.path = url;
    c->req.body = "";
    c->req.conn = c;
    c->t0_ns = clock_mono_ns();
    pthread_mutex_lock(&d->mu);
    d->active++;
    pthread_mutex_unlock(&d->mu);
    return c;
}

static void conn_free(conn_t *c)
{
    if (!c) return;
    assert(c->magic == CONN_MAGIC);
    assert(c->wstate != W_PARKED);
    if (c->req.ctx && c->req.ctx_free) c->req.ctx_free(c->req.ctx);
    resp_reset(&c->resp);
    buf_free(&c->body);
    free(c->pathbuf);
    for (size_t i = 0; i < c->nargs; i++) {
        free(c->args[i].name);
        free(c->args[i].value);
    }
    free(c->args);
    store_token_clear(&c->tok);
    c->magic = 0;
    free(c);
}

/* The first call of a request, with only its headers: route, check the
 * announced size, authenticate. Refusing here spares reading the body
 * (and a client that sent "Expect: 100-continue" never sends it). */
/* A client's X-Request-Id is kept when it is 1-64 characters of
 * [A-Za-z0-9._:-]; anything else is replaced, so a log line cannot be
 * forged through it. */
static bool request_id_ok(const char *s)
{
    size_t n =
        s ? strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") : 0;
    return n >= 1 && n <= 64 && s[n] == '\0';
}

static enum MHD_Result checks(conn_t *c)
{
    uint64_t clen = 0;
    if (!check_framing(c)) return queue_plain(c);
    if (!route(c, c->req.method, c->req.path)) return queue_plain(c);
    const char *cl = http_header(&c->req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && http_parse_u64(cl, &clen) == 0 && clen > HTTP_BODY_MAX) {
        http_problem(&c->resp, 413, "body", "the body is %" PRIu64 " bytes; at most %d allowed",
                     clen, HTTP_BODY_MAX);
        return queue_plain(c);
    }
    if (!authenticate(c)) return queue_plain(c);
    /* After authentication: an anonymous caller learns nothing of a
     * route's parameters. */
    if (!parse_query(c)) return queue_plain(c);
    return MHD_YES;
}

static enum MHD_Result begin(conn_t *c)
{
    c->req.now_ms = store_now_ms(c->req.st);
    client_addr(c, c->peer, sizeof c->peer);
    c->req.peer = c->peer;
    const char *rid = http_header(&c->req, "X-Request-Id");
    if (request_id_ok(rid))
        snprintf(c->request_id, sizeof c->request_id, "%s", rid);
    else
        id_new("req", c->req.now_ms, c->request_id);
    log_ctx_request(c->request_id);
    enum MHD_Result r = checks(c);
    log_ctx_clear();
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    http_daemon_t *d = cls;
    conn_t *c = *con_cls;
    if (!c) {
        c = conn_new(d, mc, url, method);
        c->version = version;
        *con_cls = c;
        return begin(c);
    }
    assert(c->magic == CONN_MAGIC);
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c->queued || c->too_big) return MHD_YES;
        if (c->body.len + n > HTTP_BODY_MAX) {
            /* Chunked uploads announce no size: keep reading (and dropping)
             * so the 413 can be answered once the client is done. */
            c->too_big = true;
            buf_free(&c->body);
            return MHD_YES;
        }
        buf_append(&c->body, upload_data, n);
        return MHD_YES;
    }
    if (c->queued) return MHD_YES;
    if (c->too_big) {
        http_problem(&c->resp, 413, "body", "the body exceeds %d bytes", HTTP_BODY_MAX);
        return queue_plain(c);
    }
    if (!c->ran) {
        c->req.body = c->body.data ? c->body.data : "";
        c->req.body_len = c->body.len;
        c->req.resumed = false;
        c->req.timed_out = false;
    } else if (!take_resume(c)) {
        return MHD_YES; /* called again without having been parked: nothing to do */
    } else if (peer_gone(c)) {
        return drop_gone(c);
    }
    return run(c);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_daemon_t *d = cls;
    conn_t *c = *con_cls;
    (void)mc;
    if (!c) return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        log_debug("http", "%s %s ended early (%d)", c->req.method, c->req.path, (int)toe);
    /* Woken, then closed by microhttpd before its handler ran (the client
     * hung up while parked, and microhttpd saw it first): the wake-up it
     * carried goes on to the next claim in line, or a pending run would
     * wait for some claim's deadline. */
    pthread_mutex_lock(&d->mu);
    bool unused = c->wstate == W_WOKEN && c->one;
    pthread_mutex_unlock(&d->mu);
    if (unused) pass_wake(c);
    conn_free(c);
    *con_cls = NULL;
    pthread_mutex_lock(&d->mu);
    if (--d->active == 0) pthread_cond_broadcast(&d->idle_cv);
    pthread_mutex_unlock(&d->mu);
}

__attribute__((format(printf, 2, 0))) static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = 0;
    log_debug("mhd", "%s", line);
}

/* ---- the daemon's lifecycle --------------------------------------------- */

/* Splits "ADDR:PORT" ("[v6]:PORT"; ":PORT" = every interface) and resolves
 * it into *ai (freeaddrinfo); *host_out and *port_out are new strings. */
static int resolve(const char *listen, struct addrinfo **ai, char **host_out, char **port_out)
{
    int rc = 0;
    char *copy = xstrdup(listen);
    char *colon = strrchr(copy, ':');
    char *host = copy, *port;
    struct addrinfo hints;

    *ai = NULL;
    if (!colon || !colon[1] || strlen(colon + 1) > 5) {
        rc = SKED_EINVAL;
        goto out;
    }
    *colon = 0;
    port = colon + 1;
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9') {
            rc = SKED_EINVAL;
            goto out;
        }
    if (atoi(port) > 65535) {
        rc = SKED_EINVAL;
        goto out;
    }
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']') {
            rc = SKED_EINVAL;
            goto out;
        }
        host[n - 1] = 0;
        host++;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(*host ? host : NULL, port, &hints, ai) != 0) {
        *ai = NULL;
        rc = SKED_EINVAL;
        goto out;
    }
    *host_out = xstrdup(host);
    *port_out = xstrdup(port);
out:
    free(copy);
    return rc;
}

int http__check_listen(const char *listen)
{
    struct addrinfo *ai = NULL;
    char *host = NULL, *port = NULL;
    int rc = resolve(listen, &ai, &host, &port);
    if (ai) freeaddrinfo(ai);
    free(host);
    free(port);
    return rc;
}

static unsigned connection_limit(int want)
{
    /* Every connection is a descriptor; leave room for the store, logs and
     * the local worker's children. */
    struct rlimit rl;
    unsigned lim = want > 0 ? (unsigned)want : 4096;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t room = rl.rlim_cur > 128 ? rl.rlim_cur - 64 : rl.rlim_cur / 2;
        if (room < lim) {
            log_warn("http",
                     "at most %u connections: the descriptor limit (ulimit -n) is %llu; "
                     "raise it for more",
                     (unsigned)room, (unsigned long long)rl.rlim_cur);
            lim = (unsigned)room;
        }
    }
    return lim;
}

/* Reads a whole PEM file into a new string (*out), refusing huge ones. */
static int read_pem(const char *path, char **out)
{
    FILE *f = NULL;
    buf_t b = BUF_INIT;
    char chunk[4096];
    size_t n;
    int rc = 0;

    *out = NULL;
    f = fopen(path, "re");
    if (!f) {
        rc = -errno;
        log_error("http", "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > PEM_MAX) {
            log_error("http", "%s is larger than %d bytes; not a PEM file", path, PEM_MAX);
            rc = SKED_EINVAL;
            goto out;
        }
        buf_append(&b, chunk, n);
    }
    if (ferror(f)) {
        rc = SKED_EIO;
        goto out;
    }
    buf_append(&b, "", 1); /* microhttpd wants a C string */
    *out = buf_steal(&b);
out:
    explicit_bzero(chunk, sizeof chunk);
    if (b.data) explicit_bzero(b.data, b.len);
    buf_free(&b);
    if (f) fclose(f);
    return rc;
}

http_daemon_t *http__new(server_t *srv, store_t *st)
{
    http_daemon_t *d = xcalloc(1, sizeof *d);
    pthread_condattr_t ca;
    d->srv = srv;
    d->st = st;
    d->listen_fd = MHD_INVALID_SOCKET;
    d->due_ns = INT64_MAX;
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->timer_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&d->idle_cv, NULL);
    return d;
}

void http__metrics_only(http_daemon_t *d)
{
    d->metrics_only = true;
}

int http__listen(http_daemon_t *d, const char *listen, int threads)
{
    int rc = 0;
    struct addrinfo *ai = NULL;
    char *host = NULL, *port = NULL;
    const server_config_t *cfg = server_config(d->srv);
    struct MHD_OptionItem opts[16];
    size_t nopts = 0;

    rc = resolve(listen, &ai, &host, &port);
    if (rc < 0) {
        log_error("http", "cannot listen on '%s': expected ADDR:PORT", listen);
        goto out;
    }
    if (pthread_create(&d->timer, NULL, timer_main, d) != 0) {
        rc = SKED_ENOMEM;
        goto out;
    }
    d->timer_started = true;

    const char *lv = getenv("SKED_LOG");
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME;
    if (lv && !strcmp(lv, "debug")) flags |= MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;

#define OPT(o, v, p) (opts[nopts++] = (struct MHD_OptionItem){(o), (intptr_t)(v), (p)})
    OPT(MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr);
    OPT(MHD_OPTION_THREAD_POOL_SIZE, threads > 0 ? threads : 16, NULL);
    OPT(MHD_OPTION_CONNECTION_LIMIT, connection_limit(cfg->max_connections), NULL);
    if (cfg->max_connections_per_ip > 0)
        OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_connections_per_ip, NULL);
    /* Rounded up: microhttpd counts whole seconds, and 0 would mean never. */
    OPT(MHD_OPTION_CONNECTION_TIMEOUT,
        cfg->idle_timeout_ms > 0 ? (cfg->idle_timeout_ms + 999) / 1000 : 30, NULL);
    OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY, NULL);
    OPT(MHD_OPTION_NOTIFY_COMPLETED, on_completed, d);
    OPT(MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, NULL);
    OPT(MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, NULL);
    if (cfg->tls_cert_file && cfg->tls_key_file) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            log_error("http", "this libmicrohttpd was built without TLS; cannot serve HTTPS");
            rc = SKED_EINVAL;
            goto out;
        }
        if ((rc = read_pem(cfg->tls_cert_file, &d->tls_cert)) < 0) goto out;
        if ((rc = read_pem(cfg->tls_key_file, &d->tls_key)) < 0) goto out;
        flags |= MHD_USE_TLS;
        OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, d->tls_cert);
        OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, d->tls_key);
        OPT(MHD_OPTION_HTTPS_PRIORITIES, 0, TLS_PRIORITIES);
    }
    OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
    assert(nopts <= sizeof opts / sizeof opts[0]);

    if (cfg->rate_limit > 0) {
        d->rate = cfg->rate_limit;
        d->burst = cfg->rate_burst >= 1 ? cfg->rate_burst : 2 * cfg->rate_limit;
        d->rl = ratelimit_new(d->rate, d->burst);
    }
    errno = 0;
    d->mhd = MHD_start_daemon(flags, (uint16_t)atoi(port), NULL, NULL, on_request, d,
                              MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!d->mhd) {
        int e = errno;
        rc = e ? -e : SKED_EIO;
        log_error("http", "cannot listen on %s: %s%s", listen,
                  e ? strerror(e) : "microhttpd failed to start",
                  d->tls_cert ? " (is the certificate or key malformed, or not a pair?)" : "");
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d->mhd, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info ? info->port : (unsigned)atoi(port);
    /* A wildcard address is reached locally through loopback. */
    const char *uhost = host;
    if (!*host || !strcmp(host, "0.0.0.0"))
        uhost = "127.0.0.1";
    else if (!strcmp(host, "::"))
        uhost = "::1";
    const char *scheme = d->tls_cert ? "https" : "http";
    d->url = strchr(uhost, ':') ? xasprintf("%s://[%s]:%u", scheme, uhost, bound)
                                : xasprintf("%s://%s:%u", scheme, uhost, bound);
    log_info("http", "listening on %s%s", d->url, d->metrics_only ? " (GET /metrics only)" : "");
out:
    if (ai) freeaddrinfo(ai);
    free(host);
    free(port);
    return rc;
}

const char *http__url(const http_daemon_t *d)
{
    return d && d->url ? d->url : "";
}

void http__stop(http_daemon_t *d)
{
    if (!d) return;
    if (d->mhd) d->listen_fd = MHD_quiesce_daemon(d->mhd);
    /* Resume every parked request as expired and refuse new waits, so
     * handlers answer (claims with no runs, streams end) before microhttpd
     * goes away: stopping it with suspended connections is undefined. */
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    resume_all(d, W_EXPIRED);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += STOP_DRAIN_S;
    while (d->mhd && d->active > 0)
        if (pthread_cond_timedwait(&d->idle_cv, &d->mu, &ts) == ETIMEDOUT) break;
    pthread_mutex_unlock(&d->mu);
    if (d->mhd) {
        MHD_stop_daemon(d->mhd);
        d->mhd = NULL;
    }
    if (d->listen_fd != MHD_INVALID_SOCKET) {
        close(d->listen_fd);
        d->listen_fd = MHD_INVALID_SOCKET;
    }
    if (d->timer_started) {
        pthread_mutex_lock(&d->mu);
        d->timer_quit = true;
        pthread_cond_signal(&d->timer_cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->timer, NULL);
        d->timer_started = false;
    }
}

void http__free(http_daemon_t *d)
{
    if (!d) return;
    heap_free(&d->parked);
    free(d->url);
    ratelimit_free(d->rl);
    free(d->tls_cert);
    if (d->tls_key) explicit_bzero(d->tls_key, strlen(d->tls_key));
    free(d->tls_key);
    pthread_cond_destroy(&d->timer_cv);
    pthread_cond_destroy(&d->idle_cv);
    pthread_mutex_destroy(&d->mu);
    free(d);
}
