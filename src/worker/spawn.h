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
 * it died). PDEATHSIG alone would kill only the direct children.
 *
 * Nothing here is thread-safe by itself; the worker calls spawn_* from its
 * one supervisor thread (which must live as long as the worker, because
 * PDEATHSIG fires when the forking *thread* exits).
 */
#ifndef SKED_WORKER_SPAWN_H
#define SKED_WORKER_SPAWN_H

#include <sys/types.h>

typedef struct spawn_opts {
    char *const *argv; /* borrowed; argv[0] is looked up in envp's PATH when it has no '/' */
    char *const *envp; /* borrowed; the child's whole environment */
    const char *cwd;   /* borrowed; NULL = the worker's cwd */
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
 * naming the step: "exec", "chdir", "spawn" (the worker's own pipe/fork). */
int spawn_start(const spawn_opts_t *o, spawn_proc_t *p, const char **failed_op);

/* Reaps the exited child (blocks until it exits; loops on EINTR). OUT:
 * *exit_code (-1 if killed by a signal) and *signo (0 if it exited).
 * Returns 0 or -errno. */
int spawn_wait(spawn_proc_t *p, int *exit_code, int *signo);

/* Closes whatever fds of p are still open and sets them to -1. */
void spawn_close(spawn_proc_t *p);

/* Builds a child environment: the worker's environ, then each "K=V" of
 * extra (may be NULL; NULL-terminated) overriding any earlier K. New;
 * free with spawn_env_free. */
char **spawn_env_new(const char *const *extra);
void spawn_env_free(char **env);

typedef struct spawn_watcher {
    pid_t pid; /* the watcher process; -1 when not running */
    int fd;    /* write end of its pipe, O_CLOEXEC; -1 when not running */
} spawn_watcher_t;

/* Forks the watcher. Safe in a multi-threaded process (the child runs only
 * async-signal-safe code). Returns 0 or -errno. */
int spawn_watcher_start(spawn_watcher_t *w);
/* Tells the watcher a process group now exists / has ended. Returns 0 or
 * -errno (a dead watcher gives -EPIPE). */
int spawn_watcher_add(spawn_watcher_t *w, pid_t pgid);
int spawn_watcher_remove(spawn_watcher_t *w, pid_t pgid);
/* Closes the pipe (the watcher kills the groups still listed) and reaps
 * the watcher. No-op when not running. */
void spawn_watcher_stop(spawn_watcher_t *w);

#endif
