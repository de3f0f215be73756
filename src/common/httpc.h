/*
 * The HTTP client of the worker and the CLI (libcurl). A client holds a list
 * of server base URLs and a bearer token; each call goes to the current
 * server and fails over to the next on connection errors, with a short
 * backoff. Keep-alive connections are reused. One client per thread.
 *
 * https:// servers are always verified, chain and host name, against the
 * system's CAs or, when a CA file is set, against that file alone (a
 * private CA, or the server's own self-signed certificate). There is no
 * switch to turn verification off.
 */
#ifndef SKED_COMMON_HTTPC_H
#define SKED_COMMON_HTTPC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct httpc httpc_t;

typedef struct httpc_resp {
    long status; /* HTTP status; 0 if no server answered */
    char *body;  /* new, NUL-terminated; caller frees via httpc_resp_clear */
    size_t len;
    char *content_type; /* new or NULL */
    char errbuf[256];   /* transport error text when status == 0 */
    int64_t sent_ns;    /* monotonic time the request that was answered was sent: after a
                           failover, the try that reached the answering server, not the
                           first one (what the worker counts a claim's leases from) */
} httpc_resp_t;

/* servers: "http://h1:8080,http://h2:8080". token may be NULL. New; free
 * with httpc_free. */
httpc_t *httpc_new(const char *servers, const char *token);
void httpc_free(httpc_t *c);
/* Total time a request may take before it fails (default 60s). */
void httpc_set_timeout_ms(httpc_t *c, int64_t ms);

/* Trusts the CA certificate(s) in the PEM file ca_file, instead of the
 * system's, for https:// servers; NULL = the system's again. Copied;
 * applies to the calls that follow. */
void httpc_set_ca(httpc_t *c, const char *ca_file);
/* The CA file every client made after this call starts with (as if
 * httpc_set_ca were called on it), for processes whose clients are made
 * deep inside (the worker). Copied; NULL = the system's. Not thread-safe:
 * call before the threads that make clients start. */
void httpc_set_default_ca(const char *ca_file);

/* Makes a call in flight on c give up (a negative code, no answer) soon
 * after *flag becomes non-zero; the worker aborts its parked
 * long-poll claim this way when it drains. NULL = never. The flag is
 * borrowed and must outlive c. */
void httpc_set_abort(httpc_t *c, const atomic_int *flag);

/* Performs method path (e.g. "/v1/jobs?limit=5") with an optional body and
 * extra headers ("If-Match: 3", NULL-terminated array or NULL). Tries each
 * server at most once per call on transport errors. Returns 0 when some
 * server answered (any status) or a negative SKED_E* code. */
int httpc_do(httpc_t *c, const char *method, const char *path, const char *content_type,
             const char *body, size_t body_len, const char *const *headers, httpc_resp_t *out);

/* Streams a GET response body to fn as it arrives (logs -f). fn returns 0
 * to continue. */
typedef int (*httpc_sink_fn)(const char *data, size_t len, void *arg);
int httpc_stream(httpc_t *c, const char *path, httpc_sink_fn fn, void *arg, long *status);

void httpc_resp_clear(httpc_resp_t *r);

#endif
