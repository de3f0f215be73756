/*
 * The worker role: registers with a server, claims runs in batches by
 * long-poll, runs up to `slots` of them at once as child processes (spawn.c,
 * supervise.c), ships their output, renews leases with heartbeats, enforces
 * timeouts and cancels, self-fences (kills an attempt whose lease it could
 * not renew in time), and reports results with the fencing token. On
 * worker_stop it drains: claims nothing more and finishes what runs.
 */
#ifndef SKED_WORKER_WORKER_H
#define SKED_WORKER_WORKER_H

#include <stdint.h>

typedef struct worker worker_t;

typedef struct worker_config {
    const char *servers;   /* "http://h:p[,http://h2:p]" */
    const char *token;     /* bearer token (worker or admin role) */
    const char *name;      /* default: hostname-pid */
    int slots;             /* runs at once; default 4 */
    const char *queues;    /* "a,b"; default "default" */
    const char *labels;    /* "k=v,k2=v2"; default "" */
    int64_t kill_grace_ms; /* SIGTERM -> SIGKILL grace on timeout/cancel; default 5s */
} worker_config_t;

/* Starts the worker's threads. Returns 0 and *out, or an error. */
int worker_start(const worker_config_t *cfg, worker_t **out);
/* Drain: stop claiming, wait for running attempts to finish and report,
 * then stop. Blocks. NULL is a no-op. */
void worker_stop(worker_t *w);

#endif
