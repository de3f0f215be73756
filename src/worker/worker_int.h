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

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

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
    int64_t start_ns;   /* monotonic: not before (a run claimed ahead of its time); 0 = at once */
    char *plugin;       /* owned; the job type when it runs in a plugin host; NULL = a process */
    char *start_json;   /* owned; a plugin attempt's START (plugin_proto.h): config, env, io_dir */

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

    /* The handoff (docs/results.md, results.c). */
    char *io_dir;          /* owned; the attempt's private directory holding the result and
                              checkpoint files; NULL = none. attempt_free removes it */
    char *checkpoint_in;   /* owned; the run's checkpoint as the claim handed it; NULL = none */
    int64_t nchunks;       /* output chunks passed to sup_ops.chunk: the next free seq, set when
                              the attempt is done (a report thread's note takes it) */
    char *result;          /* owned; the JSON text to report, checked; NULL = none */
    char *last_checkpoint; /* owned; a checkpoint written since the last one shipped, to go
                              with the completion; NULL = none */
    /* worker.c's checkpoint watch, under the worker's lock: the file as the
     * heartbeat last looked at it, and the content last shipped. */
    struct results_sig {
        dev_t dev;
        ino_t ino;
        off_t size;
        int64_t mtime_ns, ctime_ns;
    } cp_seen;
    uint64_t cp_sent_hash; /* results_hash of the content last shipped */
    int cp_sent;           /* 1 once a checkpoint was shipped (cp_sent_hash is valid) */
} attempt_t;

typedef struct results_sig results_sig_t; /* a file as fstat saw it; changes when it does */

/* New, zeroed attempt (exit_code -1); free with attempt_free. */
attempt_t *attempt_new(void);
/* Frees a and removes its work_dir (recursively; may block on a large
 * tree, so not on the supervisor thread). NULL is a no-op. */
void attempt_free(attempt_t *a);

/* How the supervisor isolates every attempt (DESIGN §8). All borrowed;
 * must outlive the supervisor. */
typedef struct sup_isolation {
    const spawn_cred_t *cred;          /* identity jobs run as; NULL = the worker's */
    const spawn_limits_t *limits;      /* per-attempt resource limits; NULL = inherited */
    const char *work_dir;              /* parent of per-attempt directories (prepared with
                                          spawn_workdir_init); NULL = none: jobs without a cwd run
                                          in the worker's cwd */
    const struct sup_plugins *plugins; /* the plugin hosts; NULL = none */
} sup_isolation_t;

/* A job type run in a plugin host (sup_plugin.c). */
typedef struct sup_plugin_def {
    const char *type; /* "noop", "http" */
    const char *path; /* the plugin's file; NULL = built into sked */
} sup_plugin_def_t;

/* How the supervisor starts plugin hosts. All borrowed. */
typedef struct sup_plugins {
    const sup_plugin_def_t *defs;
    size_t n;
    const char *exe;        /* sked's own executable (it runs `sked plugin-host`) */
    char *const *host_args; /* more arguments for every host (--result-max N ...); may be NULL */
    char *const *envp;      /* the hosts' environment (the jobs' base) */
    int64_t hang_ms;        /* a host that leaves a ping unanswered this long is killed */
} sup_plugins_t;

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

/* ---- the handoff files (results.c) ---- */

/* Their names in an attempt's io_dir. */
#define RESULTS_RESULT        "result.json"
#define RESULTS_CHECKPOINT    "checkpoint"
#define RESULTS_CHECKPOINT_IN "checkpoint.in"
#define RESULTS_UPSTREAM      "upstream.json"
#define RESULTS_ENV_MAX       4 /* variables results_dir_new sets, at most */

/* results_read's answers besides 0 and errors. */
#define RESULTS_NONE 1 /* no such file (or an empty one) */
#define RESULTS_SAME 2 /* the file is as `unless` saw it: not read */

/* Makes an attempt's private directory base/<prefix>-XXXXXX (mode 0700,
 * owned by cred's user when given, spawn_workdir_new) and, when
 * checkpoint_in is given, writes it there as RESULTS_CHECKPOINT_IN (mode
 * 0600, the same owner). *dir_out (new) is the directory; *env_out (new,
 * NULL-terminated, spawn_env_free) the job's SKED_RESULT_FILE,
 * SKED_CHECKPOINT_FILE, (with checkpoint_in) SKED_CHECKPOINT_IN and (with
 * upstream, its upstreams' results as one JSON text, written as
 * RESULTS_UPSTREAM the same way) SKED_UPSTREAM_RESULTS.
 * Returns 0 or -errno (nothing is left behind). Blocking. */
int results_dir_new(const char *base, const char *prefix, const spawn_cred_t *cred,
                    const char *checkpoint_in, size_t in_len, const char *upstream, char **dir_out,
                    char ***env_out);

/* Reads dir/name, a file the job wrote: only a regular file owned by uid,
 * opened without following a link or blocking, of at most max bytes.
 * Returns 0 with *data (new, NUL-terminated) and *len; RESULTS_NONE when
 * there is no such file or it is empty; RESULTS_SAME (nothing read) when
 * unless (may be NULL) equals the file's *sig; else a negative code with
 * the reason in err ("it is a symbolic link, ...", "70000 bytes, over the
 * 65536-byte cap"). *sig (may be NULL) OUT: the file as it was opened
 * (zeroed when it was not). Blocking. */
int results_read(const char *dir, const char *name, uid_t uid, size_t max,
                 const results_sig_t *unless, results_sig_t *sig, char **data, size_t *len,
                 char *err, size_t errlen);
/* A result must be one JSON value (and no NUL). On success data is cut to
 * the value's text, without the whitespace around it (*len updated);
 * otherwise SKED_EINVAL with "not valid JSON at line 3: ..." in err. */
int results_check_json(char *data, size_t *len, char *err, size_t errlen);
/* A checkpoint must be UTF-8 text without NUL; SKED_EINVAL with why in err. */
int results_check_text(const char *data, size_t len, char *err, size_t errlen);
/* A 64-bit hash of a checkpoint's bytes (which one was shipped). */
uint64_t results_hash(const char *data, size_t len);
/* The length of s (len bytes) encoded as a JSON string, quotes included. */
size_t results_json_len(const char *s, size_t len);

/* ---- the job types run in plugin hosts (plugin_set.c) ---- */

typedef struct plugin_set_config {
    const char *dir;        /* --plugin-dir; NULL = built-in types only */
    const char *http_allow; /* --http-allow, passed to the http type's hosts; may be NULL */
    size_t result_max, checkpoint_max;
    char *const *envp; /* borrowed: the hosts' environment (the jobs' base) */
    int64_t hang_ms;   /* 0 = 10 s */
} plugin_set_config_t;

typedef struct plugin_set {
    struct plugin_manifest *m; /* the plugins loaded (n) */
    size_t n;
    sup_plugin_def_t *defs; /* built-in types, then the plugins (ndefs) */
    size_t ndefs;
    char *exe;
    char **host_args;
    sup_plugins_t sup; /* for sup_isolation_t.plugins; points into the above */
    json_t *advert;    /* the registration's "plugins": [{type, version, abi, schema}] */
} plugin_set_t;

/* Reads the manifests of cfg->dir (refusing, with a log line each, those
 * of another ABI or machine, with a bad schema, or a type taken twice) and
 * prepares the hosts' definitions. Returns 0, or a negative error (logged)
 * when the directory cannot be read. Free with plugin_set_clear. */
int plugin_set_load(plugin_set_t *ps, const plugin_set_config_t *cfg);
/* Whether ps runs type in a plugin host. */
bool plugin_set_has(const plugin_set_t *ps, const char *type);
void plugin_set_clear(plugin_set_t *ps);

/* Worker internals for cmd_worker.c. */
/* Copies the current worker id (it changes on re-registration). */
void worker__get_id(worker_t *w, char out[SKED_ID_LEN]);
/* Begins a drain without waiting (claims stop at once). Thread-safe. */
void worker__drain(worker_t *w);
/* Kills every attempt and abandons unsent reports, so a worker_stop in
 * progress returns promptly. Thread-safe. */
void worker__abort(worker_t *w);

#endif
