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

#define WORKER_LIMIT_OFF (-1) /* a limit_* value: set no limit */

typedef struct worker_config {
    const char *servers;   /* "http://h:p[,http://h2:p]" */
    const char *token;     /* bearer token (worker or admin role) */
    const char *name;      /* default: hostname-pid */
    int slots;             /* runs at once; default 4 */
    const char *queues;    /* "a,b"; default "default" */
    const char *labels;    /* "k=v,k2=v2"; default "" */
    int64_t kill_grace_ms; /* SIGTERM -> SIGKILL grace on timeout/cancel; default 5s */
    /* The most an attempt's result and checkpoint files may hold
     * (docs/results.md); 0 = RESULTS_DEFAULT_BYTES, at most
     * RESULTS_MAX_BYTES (core/results.h). */
    int64_t result_max_bytes, checkpoint_max_bytes;

    /* ---- job isolation (DESIGN §8); zero values give the defaults ---- */
    /* Jobs run as this "USER[:GROUP]" (supplementary groups as initgroups
     * sets them); needs a root worker unless it names the worker's own
     * user. NULL = the worker's own user: what `sked dev` does, so its jobs
     * run as whoever started it. A worker running jobs as root (an explicit
     * root run_as, or a root worker without run_as) is refused by `sked
     * worker` unless allow_root; worker_start refuses an explicit root
     * run_as without allow_root. */
    const char *run_as;
    int allow_root;       /* permit jobs to run as uid 0 */
    const char *work_dir; /* parent of the per-attempt directories; NULL = $TMPDIR/sked-work
                             (/tmp without TMPDIR), sked-work-<uid> for a non-root worker */
    /* Per-attempt resource limits (soft = hard, so the job cannot raise
     * them). 0 = the default; WORKER_LIMIT_OFF = no limit of ours (the job
     * inherits the worker's own). */
    int64_t limit_cpu_s;    /* RLIMIT_CPU, seconds of CPU time; default off */
    int64_t limit_as_bytes; /* RLIMIT_AS, bytes of address space; default off */
    int64_t limit_nofile;   /* RLIMIT_NOFILE, open files; default 1024 */
    int64_t limit_nproc;    /* RLIMIT_NPROC; default 512 with run_as, off without. The kernel
                               counts it per real uid over the whole machine (every attempt of
                               the run-as user and anything else that user runs): a fork-bomb
                               guard for the user, not a per-job count. Root ignores it. */

    /* ---- job types run in plugin hosts (docs/plugins.md) ---- */
    const char *plugin_dir; /* load every *.so plugin there; NULL = built-in types only */
    const char *http_allow; /* "CIDR,CIDR": private addresses http jobs may reach; NULL = none */
    int64_t plugin_hang_ms; /* a plugin host leaving a ping unanswered this long is killed and
                               its attempts fail ("plugin hung"); 0 = 10 s */
} worker_config_t;

/* Starts the worker's threads. Returns 0 and *out, or an error. */
int worker_start(const worker_config_t *cfg, worker_t **out);
/* Drain: stop claiming, wait for running attempts to finish and report,
 * then stop. Blocks. NULL is a no-op. */
void worker_stop(worker_t *w);

/* `sked worker` (cmd_worker.c): parses argv (argv[0] = "worker"), runs a
 * worker until signalled, returns the exit status. */
int cmd_worker(int argc, char **argv);

#endif
