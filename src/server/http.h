/*
 * The HTTP layer over libmicrohttpd, as the API handlers see it: a parsed
 * request (method, path parameters, query, headers, body, the authenticated
 * principal) and a response to fill in (JSON, problem+json, text, or a
 * stream). Handlers never touch microhttpd directly.
 *
 * Waiting: a handler that has nothing to answer yet (a claim with no work, a
 * log follower at the end of the log) calls http_wait(); the connection is
 * suspended — holding no thread — and the handler is called again with
 * req->resumed set when the server is woken (server_wake(), wired to the
 * store's notify hook) or the deadline passes (req->timed_out). A handler
 * keeps its state across calls in req->ctx (freed with req->ctx_free).
 * Claims wait with http_wait_one() instead: a wake-up resumes one of them,
 * the longest waiting, which passes it on when it cannot use it.
 */
#ifndef SKED_SERVER_HTTP_H
#define SKED_SERVER_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/server.h"
#include "store/store.h"

#define HTTP_BODY_MAX     (1024 * 1024)
#define HTTP_METRICS_PATH "/metrics" /* the route the --metrics-listen address serves */
#define HTTP_MAX_PARAMS   4

/* Access classes of routes; a token's role grants a set of them. */
enum http_access {
    ACCESS_PUBLIC = 0, /* no token needed */
    ACCESS_READ,       /* admin, operator, user, viewer */
    ACCESS_WRITE,      /* admin, operator, user */
    ACCESS_WORKER,     /* admin, worker */
    ACCESS_ADMIN,      /* admin */
    ACCESS_METRICS     /* admin, metrics: GET /metrics */
};

/* Who is calling. */
typedef struct http_principal {
    char token_id[SKED_ID_LEN];
    const char *name; /* borrowed from the request's token record */
    token_role_t role;
    const char *ns; /* "" = all namespaces */
} http_principal_t;

typedef struct http_req http_req_t;
typedef struct http_resp http_resp_t;

struct http_req {
    server_t *srv;
    store_t *st;
    const char *method;
    const char *path;
    const char *params[HTTP_MAX_PARAMS]; /* path parameters, in pattern order ({id}, {n}) */
    const char *body;                    /* NUL-terminated; may contain NULs before body_len */
    size_t body_len;
    const http_principal_t *who; /* NULL on public routes */
    int64_t now_ms;              /* wall clock read once for this call */
    const char *peer;            /* the client's address ("203.0.113.7"), or "?" */
    bool resumed;                /* called again after http_wait */
    bool timed_out;              /* ... because the wait deadline passed */
    void *ctx;                   /* handler state across waits */
    void (*ctx_free)(void *ctx);
    void *conn; /* internal */
};

/* Query parameter / request header by name; borrowed, NULL if absent. */
const char *http_query(const http_req_t *req, const char *key);
const char *http_header(const http_req_t *req, const char *name);

/* Parses the body as a JSON object. On failure fills resp with a problem
 * and returns NULL: 415 (field "header.Content-Type") when the body is not
 * declared application/json, 400 for malformed JSON or a non-object. New
 * reference. */
json_t *http_body_json(http_req_t *req, http_resp_t *resp);

/* Responses. Each sets the status and body; the last call wins. */
void http_json(http_resp_t *resp, int status, json_t *doc); /* steals doc */
void http_text(http_resp_t *resp, int status, const char *content_type, const char *data,
               size_t len);
void http_empty(http_resp_t *resp, int status);
/* problem+json: status, field (NULL if none) and detail (printf-style). */
void http_problem(http_resp_t *resp, int status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* problem+json for a SKED_E* code (status from the error table). */
void http_problem_err(http_resp_t *resp, int err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* http_problem_err with "errors" (stolen; may be NULL): an array of
 * {"field", "detail"} objects, one per part of the request to blame, when
 * more than one is (a batch's bad items). field names the first of them. */
void http_problem_list(http_resp_t *resp, int err, const char *field, json_t *errors,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void http_set_header(http_resp_t *resp, const char *name, const char *value);

/* Suspends the request until server_wake() or deadline (monotonic ns);
 * the handler runs again with req->resumed. */
void http_wait(http_resp_t *resp, int64_t deadline_mono_ns);

/* As http_wait, but in the line of requests woken one at a time (claims):
 * server_wake() resumes the first in line (the longest waiting) only; it
 * runs again with req->resumed and not req->timed_out, and should call
 * http_pass_wake() when it could not use the wake-up or sees more work
 * left, or else the rest of the line sleeps until woken again or until
 * their deadlines. Rejoins the end of the line when it waits again. */
void http_wait_one(http_resp_t *resp, int64_t deadline_mono_ns);

/* Hands the wake-up that resumed this request on to the next request in
 * the http_wait_one line. A wake-up travels at most once through the
 * requests that were waiting when it came; calling this without a
 * wake-up left (resumed by a deadline, or already passed) does nothing.
 * Thread-safe. */
void http_pass_wake(http_req_t *req);

/* Asks that the first request in the http_wait_one line be woken at
 * when_mono_ns (monotonic ns), as server_wake() would, e.g. when a run
 * comes due without any store change to announce it. One time is kept per
 * server, the earliest asked for; it is forgotten once it has woken. */
void http_wake_at(http_req_t *req, int64_t when_mono_ns);

/* Streaming: the response body is produced by repeated calls of the
 * handler. The first call sets http_stream_begin(resp, status, ctype); each
 * call appends with http_stream_write and then either http_wait()s for more
 * or http_stream_end()s. */
void http_stream_begin(http_resp_t *resp, int status, const char *content_type);
void http_stream_write(http_resp_t *resp, const char *data, size_t len);
void http_stream_end(http_resp_t *resp);

typedef void (*http_handler_fn)(http_req_t *req, http_resp_t *resp);

typedef struct http_route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/v1/jobs/{id}/pause" */
    enum http_access access;
    http_handler_fn fn;
} http_route_t;

/* The route table (routes.c), terminated by a {NULL} entry. */
extern const http_route_t http_routes[];

/* Wakes every waiting request (they re-check their condition). Thread-safe,
 * cheap; called from the store's notify hook. */
void server_wake(server_t *srv);
/* The server's scheduler loops, to kick after job changes; borrowed. */
struct sched *server_sched(server_t *srv);
/* The server's configuration (defaults filled in); borrowed. */
const server_config_t *server_config(const server_t *srv);

#endif
