/*
 * The supervisor's insides, shared by its two files: supervise.c (the
 * loop, and attempts that are processes) and sup_plugin.c (attempts that
 * run in plugin hosts, and the hosts). Supervisor thread only, unless a
 * field says otherwise.
 */
#ifndef SKED_WORKER_SUP_INT_H
#define SKED_WORKER_SUP_INT_H

#include "common/buf.h"
#include "worker/worker_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* What the supervisor acted on, in rising strength: a stronger request
 * replaces a weaker one (a fence beats a cancel in progress). */
enum cause { CAUSE_NONE = 0, CAUSE_TIMEOUT, CAUSE_CANCEL, CAUSE_LOST, CAUSE_FENCE, CAUSE_SHUTDOWN };

struct proc;
struct phost;

/* What an epoll event is about: a process's pidfd or pipe, or a plugin
 * host's (h set: kind 0 pidfd, 1 stdout, 2 stderr, 3 channel). */
struct watch {
    struct proc *p;
    struct phost *h;
    int kind; /* 0 pidfd, 1 stdout, 2 stderr (3 a host's channel) */
};

/* A kill deadline held by the orphan watcher for one process group. */
struct fence_watch {
    pid_t pid;        /* the group; 0 = none */
    int64_t fence_ns; /* our fence time behind the watcher's deadline; 0 = none set */
    int64_t watch_ns; /* the kill deadline the watcher holds; 0 = none */
};

/* One running attempt: a process (sp) or an attempt in a plugin host
 * (host set; sp unused, its fds -1). */
struct proc {
    attempt_t *a;
    spawn_proc_t sp;
    struct watch w[3];
    buf_t pend[3];         /* [1] stdout, [2] stderr: bytes not yet passed to chunk */
    int64_t pend_since[3]; /* monotonic ns of the oldest pending byte */
    int64_t seq;           /* next chunk's sequence number */
    int64_t deadline_ns;   /* timeout instant; 0 = none */
    int64_t term_ns;       /* when SIGTERM (a plugin: CANCEL) went out; 0 = not yet */
    int killed;            /* SIGKILL sent (a plugin: its host is being killed for it) */
    enum cause cause;
    int exited; /* reaped (a plugin: DONE came, or its host died) */
    int64_t exited_ns;
    int exit_code, signo;
    struct fence_watch fw; /* a process's; a plugin's host holds its own */
    struct proc *next;

    /* A plugin attempt (sup_plugin.c). */
    struct phost *host; /* NULL = a process */
    uint64_t key;       /* the host's name for it */
    int sent;           /* START went out */
    int64_t hkill_ns;   /* kill the host at this time if the attempt has not ended; 0 = no */
    int preset;         /* it ended without running: preset_outcome is its outcome */
    const char *preset_outcome; /* static: "not_started", "canceled", or NULL (report nothing) */
    struct proc *hnext;         /* the host's list */
};

struct sup {
    const sup_ops_t *ops;
    void *arg;
    int64_t grace_ns;
    spawn_watcher_t *watcher;
    sup_isolation_t iso; /* borrowed pointers */
    pthread_t thread;
    int ep, evfd;
    pthread_mutex_t mu;
    attempt_t *qhead, *qtail; /* submitted, not yet started; under mu */
    /* Attempts held until their start_ns (runs claimed ahead), linked by
     * qnext, and the timer (CLOCK_MONOTONIC, absolute) armed for the
     * earliest: epoll's millisecond timeout is too coarse to start on the
     * dot. Supervisor thread only. */
    attempt_t *later;
    int tfd;
    int64_t tfd_at; /* what tfd is armed for; 0 = disarmed */
    struct watch tfd_w;
    atomic_int quit;
    atomic_int kill_all;
    _Atomic int64_t lease_ns, margin_ns;
    atomic_int active;
    struct proc *procs; /* supervisor thread only */
    char *rbuf;
    int watch_err;              /* the last error the watcher gave (logged once per kind) */
    struct phost *hosts;        /* plugin hosts, one per plugin type (sup_plugin.c) */
    spawn_limits_t host_limits; /* the jobs' limits but RLIMIT_CPU, which would count a host's
                                   whole life rather than an attempt's */
    uint64_t next_key;
};

#define SUP_RBUF_SIZE (64 * 1024)

/* supervise.c, for sup_plugin.c */
/* Appends output of p's attempt (stream 1 or 2), passing chunks on. */
void sup__output(sup_t *s, struct proc *p, int stream, const char *data, size_t len, int64_t now);
/* Logs a failed message to the watcher, once per kind of failure. */
void sup__watch_check(sup_t *s, int rc);
/* Keeps the watcher's kill deadline of fw in step with a lease renewed at
 * renewed_ns (0 = nothing to fence: no deadline). */
void sup__watch_move(sup_t *s, struct fence_watch *fw, int64_t renewed_ns, int64_t now);
/* Adds fd to the epoll set with w as its data. */
void sup__watch_fd(sup_t *s, int fd, struct watch *w, uint32_t events);
/* Removes fd from the epoll set and closes it; sets it to -1. */
void sup__unwatch(sup_t *s, int *fd);

/* sup_plugin.c, for supervise.c */
/* Makes the hosts of iso->plugins (none start yet). */
void sup__plugin_init(sup_t *s);
/* Starts p's attempt (a->plugin set) in its type's host: at once when the
 * host is up, else when it is (started now if needed). Returns 0, or -1
 * when it cannot run (a->outcome and a->reason set; p not kept). */
int sup__plugin_start(sup_t *s, struct proc *p, int64_t now);
/* Asks p's attempt to stop: kill 0 = politely (CANCEL; the grace follows),
 * 1 = now (CANCEL, and its host is killed if it has not ended very
 * soon). */
void sup__plugin_stop(sup_t *s, struct proc *p, int kill, int64_t now);
/* An epoll event on one of host h's fds (w->kind). */
void sup__plugin_event(sup_t *s, struct watch *w, int64_t now);
/* Pings, restarts, kill deadlines and watcher deadlines of the hosts. */
void sup__plugin_tick(sup_t *s, int64_t now);
/* The earliest time (monotonic ns) the hosts need the loop, below t. */
int64_t sup__plugin_next(sup_t *s, int64_t now, int64_t t);
/* p is finished: forget it. */
void sup__plugin_detach(sup_t *s, struct proc *p);
/* Stops every host (they die with their channel; SIGKILL after a moment)
 * and frees them. */
void sup__plugin_free(sup_t *s);

#endif
