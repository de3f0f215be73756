/*
 * Internals shared by the files of src/server (not for the rest of sked):
 * the HTTP daemon as server.c drives it (http.c), and the small request
 * helpers the API handlers share (api_render.c).
 */
#ifndef SKED_SERVER_SERVER_INT_H
#define SKED_SERVER_SERVER_INT_H

#include "server/http.h"
#include "store/store.h"

/* ---- the daemon (http.c) ---- */

typedef struct http_daemon http_daemon_t;

/* New, not yet listening; free with http__free. */
http_daemon_t *http__new(server_t *srv, store_t *st);
/* Starts listening on "ADDR:PORT" with a pool of `threads`. 0 or SKED_E*. */
int http__listen(http_daemon_t *d, const char *listen, int threads);
/* Validates an "ADDR:PORT" string without binding. 0 or SKED_EINVAL. */
int http__check_listen(const char *listen);
/* "http://ADDR:PORT" actually bound; borrowed. */
const char *http__url(const http_daemon_t *d);
/* Resumes every waiting request. Thread-safe. */
void http__wake(http_daemon_t *d);
/* Answers waiting requests, then stops accepting and joins the threads. */
void http__stop(http_daemon_t *d);
void http__free(http_daemon_t *d); /* NULL is a no-op */

/* ---- request helpers (api_render.c) ---- */

/* Parses a decimal integer in [min, max], all of s. 0, or SKED_EINVAL. */
int api__int_param(const char *s, long min, long max, long *out);
/* The {id} path parameter if it is a well-formed id; else fills resp with
 * a 404 problem (field "path.id") and returns NULL. Borrowed. */
const char *api__path_id(http_req_t *req, http_resp_t *resp);

/* ---- explain (api_explain.c) ---- */

/* Answers why job_id, or run_id (job_id NULL), is or is not running: 200
 * with the reasons, or a problem (404 naming path.id for an unknown one).
 * The caller has checked access. */
void api__explain(http_req_t *req, http_resp_t *resp, const char *job_id, const char *run_id);

#endif
