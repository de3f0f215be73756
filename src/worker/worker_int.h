/*
 * Internals shared by the worker's files: the attempt (one try of a claimed
 * run, as the worker holds it) and the supervisor (supervise.c), the one
 * thread that forks every attempt and watches all of them with epoll over
 * their output pipes and pidfds, enforcing timeouts, cancels and
 * self-fencing. worker.c speaks HTTP around it; tests drive the supervisor
 * directly.
 */
#ifndef SKED_WORKER_WORKER_INT_H
#define SKED_WORKER_WORKER_INT_H

#include "common/httpc.h"
#include "common/id.h"
#include "common/log.h"
#include "worker/spawn.h"
#include "worker/worker.h"

#include <stdatomic.h>
#include <stdint.h>

/* Why an attempt is being stopped; the first request wins. */
enum attempt_stop {
    ATTEMPT_RUN = 0,       /* nobody asked: it runs to its end or timeout */
    ATTEMPT_STOP_CANCEL,   /* server said "stop": SIGTERM, grace, SIGKILL; report "canceled" */
    ATTEMPT_STOP_LOST,     /* lease gone (a 409): SIGKILL now; nothing to report */
    ATTEMPT_STOP_FENCE,    /* lease not renewed in time: SIGKILL now; nothing to report */
    ATTEMPT_STOP_SHUTDOWN, /* the worker exits hard: SIGKILL now; nothing to report */
};

/* Logs one line about attempt a, with its run id in the line's run_id
 * field (common/log.h): log_fn is log_info, log_warn, ... */
#define attempt_log(log_fn, a, ...)                                                                \
    do {                                                                                           \
        log_ctx_run((a)->run_id);                                                                  \
        log_fn("worker", __VA_ARGS__);                                                             \
        log_ctx_run(NULL);                                                                         \
    } while (0)

typedef struct attempt {
    /* Set at creation, read-only afterwards: any thread may read. */
    char run_id[SKED_ID_LEN];
    int n;          /* attempt number, 1-based */
    int64_t fence;  /* fencing token of this attempt's lease */
    char **argv;    /* owned, NULL-terminated; NULL = cannot run (see reason) */
    char **envp;    /* owned (spawn_env_new); NULL = an empty environment */
    char *cwd;      /* owned; the job's own cwd; NULL = a fresh work dir (or the worker's cwd) */
    char *work_dir; /* owned; the attempt's own directory, made by the supervisor when
                       cwd is NULL; attempt_free removes it with everything in it */
    int64_t timeout_ms; /* 0 = none */

    /* Written by other threads, read by the supervisor. */
    atomic_int stop;            /* enum attempt_stop */
    _Atomic int64_t renewed_ns; /* monotonic time of the request that last renewed the lease */

    /* The result, complete when sup_ops.done is called. */
    const char *outcome; /* static: "succeeded" "failed" "timeout" "canceled" "not_started"; NULL =
                             report nothing */
    int exit_code;       /* -1 if none */
    int signo;           /* 0 if none */
    char *reason; /* owned or NULL; may be preset (with argv NULL) for a run that cannot run */
    int64_t pid;  /* the process (= its group) while it ran; 0 if it never started */

    /* Links: `next` is worker.c's (held list), `qnext` the supervisor's queue. */
    struct attempt *next;
    struct attempt *qnext;
    int shard; /* worker.c: which report thread ships this attempt */
} attempt_t;

/* New, zeroed attempt (exit_code -1); free with attempt_free. */
attempt_t *attempt_new(void);
/* Frees a and removes its work_dir (recursively; may block on a large
 * tree, so not on the supervisor thread). NULL is a no-op. */
void attempt_free(attempt_t *a);

/* How the supervisor isolates every attempt (DESIGN §8). All borrowed;
 * must outlive the supervisor. */
typedef struct sup_isolation {
    const spawn_cred_t *cred;     /* identity jobs run as; NULL = the worker's */
    const spawn_limits_t *limits; /* per-attempt resource limits; NULL = inherited */
    const char *work_dir;         /* parent of per-attempt directories (prepared with
                                     spawn_workdir_init); NULL = none: jobs without a cwd run
                                     in the worker's cwd */
} sup_isolation_t;

typedef struct sup sup_t;

typedef struct sup_ops {
    /* A chunk of an attempt's output (stream 1 stdout, 2 stderr), called on
     * the supervisor thread. data is new: the callee frees it. seq counts
     * the attempt's chunks from 0 over both streams. */
    void (*chunk)(void *arg, attempt_t *a, int stream, int64_t seq, char *data, size_t len);
    /* The attempt has ended: its process is reaped, all of its output went
     * through chunk, and a->outcome etc. are final. The supervisor never
     * touches a again; the callee owns it. Called on the supervisor
     * thread. */
    void (*done)(void *arg, attempt_t *a);
} sup_ops_t;

/* Starts the supervisor thread. watcher (borrowed, may be NULL) is told of
 * every process group; iso (borrowed, may be NULL = no isolation) says how
 * attempts run. Returns 0 and *out, or a negative error. */
int sup_new(const sup_ops_t *ops, void *arg, int64_t kill_grace_ms, spawn_watcher_t *watcher,
            const sup_isolation_t *iso, sup_t **out);
/* Queues a (steals it until ops->done). Thread-safe. */
void sup_submit(sup_t *s, attempt_t *a);
/* Makes the supervisor look at stop requests now (after setting a->stop).
 * Thread-safe. */
void sup_poke(sup_t *s);
/* Self-fencing: an attempt whose lease was not renewed for
 * lease - max(2 heartbeats, 20% of lease) is SIGKILLed. lease_ms 0 = off.
 * Thread-safe. */
void sup_set_lease(sup_t *s, int64_t lease_ms, int64_t heartbeat_ms);
/* Stops every running attempt with ATTEMPT_STOP_SHUTDOWN. Thread-safe. */
void sup_kill_all(sup_t *s);
/* Number of attempts submitted and not yet done. Thread-safe. */
int sup_active(sup_t *s);
/* Stops the thread: attempts still running are SIGKILLed and passed to
 * done first (outcome NULL). NULL is a no-op. */
void sup_free(sup_t *s);

/* Worker internals for cmd_worker.c. */
/* Copies the current worker id (it changes on re-registration). */
void worker__get_id(worker_t *w, char out[SKED_ID_LEN]);
/* Begins a drain without waiting (claims stop at once). Thread-safe. */
void worker__drain(worker_t *w);
/* Kills every attempt and abandons unsent reports, so a worker_stop in
 * progress returns promptly. Thread-safe. */
void worker__abort(worker_t *w);

#endif
