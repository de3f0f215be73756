/*
 * Process spawning for the worker: one job attempt becomes one child process
 * in its own session and process group, with stdin on /dev/null, stdout and
 * stderr on pipes the worker reads, a pidfd for its exit, and
 * PR_SET_PDEATHSIG(SIGKILL) so it dies with the thread that forked it. The
 * discipline is libuv's src/unix/process.c: signals blocked around the fork,
 * dispositions and mask reset in the child, fds duplicated in a safe order,
 * CLOEXEC everywhere, exec failure reported back through a CLOEXEC pipe.
 *
 * Also the orphan watcher: a tiny process, forked once at worker start, that
 * keeps the list of live attempt process groups and SIGKILLs every one still
 * listed when its pipe from the worker reaches EOF (the worker died, however
 * it died). PDEATHSIG alone would kill only the direct children. It also
 * holds each group's kill deadline (the attempt's lease, as the supervisor
 * last saw it renewed) and SIGKILLs the group when it passes: the fence of
 * a worker that is alive but not running (stopped, frozen, stuck), which
 * the worker's own threads cannot enforce.
 *
 * Isolation (DESIGN §8): the child can take on another user's identity
 * (supplementary groups, then gid, then uid, each checked) and resource
 * limits before it execs; its environment is built from a fixed minimal
 * base (spawn_env_base), never the worker's; and each attempt can get a
 * fresh private working directory (spawn_workdir_new), removed afterwards
 * without following anything the job planted there (spawn_tree_remove).
 *
 * Three files implement it: spawn.c (the child, its pipes and its exit),
 * spawn_isolate.c (users, limits, environments, working directories) and
 * spawn_watcher.c (the orphan watcher).
 *
 * Nothing here is thread-safe by itself; the worker calls spawn_* from its
 * one supervisor thread (which must live as long as the worker, because
 * PDEATHSIG fires when the forking *thread* exits).
 */
#ifndef SKED_WORKER_SPAWN_H
#define SKED_WORKER_SPAWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

/* An identity for the child: set with setgroups, setgid, setuid (in that
 * order) before exec. */
typedef struct spawn_cred {
    uid_t uid;
    gid_t gid;
    size_t ngroups;
    gid_t *groups; /* supplementary groups; owned by whoever built the struct */
} spawn_cred_t;

#define SPAWN_LIMITS_MAX 8

/* Resource limits the child sets (soft = hard) before it changes identity,
 * so a root worker may set them either way; the job cannot raise them. */
typedef struct spawn_limits {
    int n;
    int resource[SPAWN_LIMITS_MAX]; /* RLIMIT_* */
    struct rlimit value[SPAWN_LIMITS_MAX];
} spawn_limits_t;

typedef struct spawn_opts {
    char *const *argv;        /* borrowed; argv[0] is looked up in envp's PATH when it has no '/' */
    char *const *envp;        /* borrowed; the child's whole environment (NULL = empty) */
    const char *cwd;          /* borrowed; NULL = the worker's cwd */
    const spawn_cred_t *cred; /* borrowed; NULL = keep the worker's identity */
    const spawn_limits_t *limits; /* borrowed; NULL = inherit the worker's limits */
    int stdin_fd; /* > 0: borrowed, becomes the child's stdin (a plugin host's channel);
                     0 = /dev/null */
} spawn_opts_t;

typedef struct spawn_proc {
    pid_t pid;  /* also the child's process group id and session id */
    int pidfd;  /* readable once the child has exited; -1 when closed */
    int out_fd; /* read end of the child's stdout, O_NONBLOCK|O_CLOEXEC; -1 when closed */
    int err_fd; /* read end of the child's stderr, likewise */
} spawn_proc_t;

/* Starts a child. On success returns 0 and fills *p (close with
 * spawn_close after spawn_wait). If the child could not be set up or exec
 * failed, the child has already been reaped, *p holds no resources, and
 * the return value is -errno with *failed_op (static string, may be NULL)
 * naming the step: "exec", "chdir", "setgroups", "setgid", "setuid",
 * "setrlimit", "spawn" (the worker's own pipe/fork). */
int spawn_start(const spawn_opts_t *o, spawn_proc_t *p, const char **failed_op);

/* Reaps the exited child (blocks until it exits; loops on EINTR). OUT:
 * *exit_code (-1 if killed by a signal) and *signo (0 if it exited).
 * Returns 0 or -errno. */
int spawn_wait(spawn_proc_t *p, int *exit_code, int *signo);

/* Closes whatever fds of p are still open and sets them to -1. */
void spawn_close(spawn_proc_t *p);

/* A user jobs run as, resolved once when the worker starts (the child may
 * not read /etc/passwd: it must not allocate). */
typedef struct spawn_user {
    spawn_cred_t cred; /* groups owned here */
    int switch_ids;    /* 1 = the child takes on cred; 0 = it keeps the worker's ids */
    char *name;        /* user name (the number when it has no passwd entry) */
    char *home;        /* home directory; "/" when unknown */
} spawn_user_t;

/* Resolves "USER[:GROUP]" (names or numbers) into *out: uid, the group
 * (default: the user's primary group), and the supplementary groups as
 * initgroups(3) would set them (the user's groups from /etc/group). A
 * number without a passwd entry is allowed (gid defaults to the same
 * number, HOME is "/", no supplementary groups). spec NULL = the worker's
 * own user, with switch_ids 0. A spec naming the worker's own uid and gid
 * also gets switch_ids 0 when the worker is not root (it could not call
 * setgroups, and nothing would change). Returns 0, or SKED_EINVAL with a
 * sentence in errbuf. Free with spawn_user_clear. */
int spawn_user_lookup(const char *spec, spawn_user_t *out, char *errbuf, size_t errlen);
void spawn_user_clear(spawn_user_t *u);

/* Adds a limit (soft = hard = value) to l. A worker that is not root can
 * only lower its own hard limits, so value is clamped to the current hard
 * limit then. Returns 0, or SKED_EINVAL when l is full. */
int spawn_limits_add(spawn_limits_t *l, int resource, rlim_t value);

/* The base environment of every job: PATH=/usr/local/bin:/usr/bin:/bin,
 * HOME, USER and LOGNAME of u, LANG=C.UTF-8, and TZ when the worker has
 * one. Nothing else of the worker's environment (its token, SKED_*,
 * proxies, credentials) reaches a job. New; free with spawn_env_free. */
char **spawn_env_base(const spawn_user_t *u);

/* Builds a child environment: base (may be NULL), then each "K=V" of extra
 * (may be NULL; NULL-terminated) overriding any earlier K. New; free with
 * spawn_env_free. */
char **spawn_env_new(const char *const *base, const char *const *extra);
void spawn_env_free(char **env);

/* Prepares the directory under which attempts get their working
 * directories: creates it (and missing parents) if needed, mode 0711 so
 * run-as users can reach their own subdirectory but not list others, and
 * refuses a path that is not a real directory owned by the worker or that
 * others may write (someone could have planted it in /tmp). Returns 0, or
 * a negative error with a sentence in errbuf. */
int spawn_workdir_init(const char *base, char *errbuf, size_t errlen);

/* Creates a fresh directory base/<prefix>-XXXXXX, mode 0700, owned by
 * cred's uid and gid when cred is given. *out is new; the caller frees it
 * (after spawn_tree_remove). Returns 0 or -errno. */
int spawn_workdir_new(const char *base, const char *prefix, const spawn_cred_t *cred, char **out);

/* Removes path and everything below it. Works relative to directory fds
 * and never follows a symbolic link or crosses into another file system,
 * so a job cannot redirect the removal (which may run as root) to files
 * outside its directory. Returns 0 or the first -errno met (removal goes
 * on past errors). Blocking: not for the supervisor thread. */
int spawn_tree_remove(const char *path);

typedef struct spawn_watcher {
    pid_t pid;         /* the watcher process; -1 when not running */
    int fd;            /* write end of its pipe, O_NONBLOCK|O_CLOEXEC; -1 when not running */
    unsigned char *q;  /* owned: messages the pipe has not taken yet, in order */
    size_t qlen, qcap; /* bytes queued, bytes allocated */
} spawn_watcher_t;

/* Forks the watcher and fills *w (any earlier contents are ignored). Safe
 * in a multi-threaded process (the child runs only async-signal-safe
 * code). Returns 0 or -errno. */
int spawn_watcher_start(spawn_watcher_t *w);

/* Messages to the watcher. None of them blocks: what the pipe cannot take
 * at once (a watcher that is not reading: stopped, or starved) waits, in
 * order, in w's queue, and goes out with the next message or
 * spawn_watcher_flush. Each returns 0 (sent or queued), -EPIPE once the
 * watcher is gone (its pipe is then closed, the queue dropped), or
 * -ENOBUFS when 1 MiB is already queued (the message is dropped). */

/* A process group now exists: killed when the pipe reaches EOF. */
int spawn_watcher_add(spawn_watcher_t *w, pid_t pgid);
/* The group has ended: forget it (no EOF kill, no deadline). Send it
 * before reaping the leader, so the group id cannot have been reused. */
int spawn_watcher_remove(spawn_watcher_t *w, pid_t pgid);
/* The group's kill deadline, CLOCK_MONOTONIC ns (clock_mono_ns); 0 = none.
 * When it passes the watcher SIGKILLs the group (once), whether or not the
 * worker is still running: self-fencing that a stopped worker cannot
 * miss. Moves either way; a deadline still queued for the group is
 * replaced rather than followed. Ignored for a group not added. */
int spawn_watcher_deadline(spawn_watcher_t *w, pid_t pgid, int64_t deadline_ns);
/* Writes what is queued. Returns the number of messages still queued (0 =
 * all sent), or -errno as above. */
int spawn_watcher_flush(spawn_watcher_t *w);

/* Sends what the pipe takes, closes it (the watcher kills the groups still
 * listed), reaps the watcher and frees the queue. No-op when not running. */
void spawn_watcher_stop(spawn_watcher_t *w);

#endif
