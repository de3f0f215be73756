/*
 * loadgen: an HTTP/1.1 load generator in one thread, for the bench and the
 * sked-load CLI. N non-blocking keep-alive TCP connections on one epoll;
 * each request is built by a caller callback (method, path, extra headers,
 * body) and its answer parsed just enough to know where it ends (status
 * line, Content-Length, chunked, Connection: close, or the end of the
 * stream).
 *
 * Two modes:
 *   - closed loop (rate == 0): every connection sends its next request as
 *     soon as the previous answer arrived, for `seconds` or until
 *     `requests` were issued; latency is send -> complete answer;
 *   - open loop (rate > 0): requests are scheduled every 1/rate s for
 *     `seconds`; each goes to a free connection (a new one while fewer than
 *     `connections` are open), or waits in a queue, and its latency counts
 *     from its scheduled time, so a stall of the server is not hidden by the
 *     generator waiting for it (coordinated omission corrected, as wrk2).
 *
 * In both, the first `connections` connections are opened one after the
 * other (the next once the last had an answer, or 5 ms later), as
 * independent clients would: a burst of connects lands on few of
 * libmicrohttpd's pool threads. Reconnects are not paced.
 *
 * Everything is bounded: a request without a complete answer after
 * `timeout_s` is an error (its connection is closed), and the run ends at
 * most `timeout_s` after the sending window, whatever is still pending
 * counted as errors. Hence, always:
 *
 *     issued == answered + err_connect + err_closed + err_timeout
 *               + err_protocol + unsent
 *
 * Plain http only (no TLS). Not thread-safe across runs sharing options;
 * separate runs in separate threads are independent.
 */
#ifndef SKED_BENCH_LOADGEN_H
#define SKED_BENCH_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

/* One request, filled by the build callback. Every pointer is borrowed and
 * need only stay valid until the callback is called again (loadgen copies
 * the request into the connection's buffer at once), so a callback may
 * format into static buffers. loadgen adds the request line, Host and
 * Content-Length (when body_len > 0 or the method is not GET/HEAD). */
typedef struct loadgen_req {
    const char *method;  /* "POST" */
    const char *path;    /* "/v1/jobs", with the query if any */
    const char *headers; /* extra header lines, each ending "\r\n" (Authorization, Content-Type);
                            may be NULL */
    const char *body;    /* may be NULL */
    size_t body_len;     /* bytes of body */
} loadgen_req_t;

/* Fills *out with request number n (0, 1, 2, ... in issue order). Returns 0,
 * or non-zero to stop issuing requests (the run then drains and ends). */
typedef int (*loadgen_build_fn)(void *arg, uint64_t n, loadgen_req_t *out);

/* A server; a load may spread over several. */
typedef struct loadgen_target {
    const char *host; /* "127.0.0.1" (resolved once, at the start) */
    int port;         /* TCP port */
} loadgen_target_t;

typedef struct loadgen_opts {
    const char *host; /* the server, when ntargets == 0 */
    int port;
    const loadgen_target_t *targets; /* else these (borrowed): connection i talks to */
    int ntargets;                    /* targets[i % ntargets], reconnects included */
    int connections;                 /* at most this many open at once (>= 1) */
    double seconds;                  /* the sending window, s */
    uint64_t requests;      /* closed loop: stop issuing after this many (0: the window only) */
    double rate;            /* > 0: open loop at this many requests/s; 0: closed loop */
    double timeout_s;       /* per request, and the drain after the window; 0 means 10 s */
    loadgen_build_fn build; /* required */
    void *arg;              /* passed to build */
} loadgen_opts_t;

#define LOADGEN_NPCT 6 /* p50, p90, p95, p99, p99.9, p100 (the max) */

/* The figures of one run; a value, no pointers. */
typedef struct loadgen_result {
    uint64_t issued;         /* requests built (open loop: scheduled in the window) */
    uint64_t sent;           /* of which written, at least in part, to a connection */
    uint64_t answered;       /* complete answers */
    uint64_t status[6];      /* answers by class: [2] 2xx ... [5] 5xx, [0] anything else */
    uint64_t err_connect;    /* requests lost to a connection that could not be opened */
    uint64_t err_closed;     /* the server closed or reset before answering in full */
    uint64_t err_timeout;    /* no complete answer within timeout_s (or by the end) */
    uint64_t err_protocol;   /* an answer that could not be parsed, or too big (4 MiB) */
    uint64_t unsent;         /* open loop: scheduled but never handed to a connection by the end */
    uint64_t connects;       /* connections opened (beyond `connections`: reconnects) */
    uint64_t connect_failed; /* connection attempts refused or failed */
    uint64_t max_queue;      /* open loop: most requests ever waiting for a connection */
    double elapsed_s;        /* start -> last answer (or the end of the window, if later) */
    double rate;             /* answered / elapsed_s */
    double cpu_user_s;       /* this thread's CPU during the run */
    double cpu_sys_s;
    double cpu_us_per_req;       /* (user + sys) / answered, microseconds */
    double lat_ms[LOADGEN_NPCT]; /* latency percentiles of the answered requests, ms,
                                    within 1% (a log-linear histogram); max exact */
    double lat_mean_ms;
    int first_bad_status;     /* the first answer outside 2xx (0: none) ... */
    char first_bad_body[256]; /* ... and the start of its body, NUL-terminated */
} loadgen_result_t;

/* The percentile each lat_ms[] entry holds: 0.50, 0.90, ..., 1.0. */
extern const double loadgen_pct[LOADGEN_NPCT];

/* Runs the load described by opts in the calling thread; fills *out (OUT).
 * Returns 0 when the run took place (errors of requests are counted in
 * *out, not returned), or a negative errno when it could not start (host
 * unresolved: -EINVAL; epoll or timer creation failed). */
int loadgen_run(const loadgen_opts_t *opts, loadgen_result_t *out);

#endif
