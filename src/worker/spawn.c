/*
 * Spawning job attempts: the child process, its pipes and its exit; see
 * spawn.h. What the child takes on before it execs (identity, limits, the
 * environment, a working directory) is prepared by spawn_isolate.c; the
 * orphan watcher that outlives the worker is spawn_watcher.c.
 *
 * The fast path is vfork(): the child borrows the parent's memory until it
 * execs, so a spawn costs no page-table copy however large the worker is.
 * The price is that the child may only make system calls and touch its own
 * stack frame: everything it needs (argv, envp, the PATH to search, fds) is
 * prepared by the parent, all signals are blocked around vfork so no parent
 * handler can run on the shared stack, and the child resets dispositions
 * before unblocking. Exec failure travels back through a CLOEXEC pipe
 * (libuv's scheme), which works the same for fork() and vfork(): EOF means
 * the exec happened, 8 bytes are (step, errno).
 *
 * Identity changes in the child use raw system calls, not glibc's set*id:
 * those broadcast the change to every thread of the process (POSIX says
 * credentials are process-wide), and a vfork child still sees the parent's
 * thread list, so glibc would signal the worker's threads. The raw calls
 * change only the calling task, which is exactly the child. Everything
 * they need (the group list) is resolved by the parent beforehand.
 */
#include "worker/spawn.h"
#include "worker/spawn_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { OP_SPAWN = 1, OP_CHDIR, OP_EXEC, OP_SETGROUPS, OP_SETGID, OP_SETUID, OP_RLIMIT };

/* The 32-bit-id system calls (plain names on 64-bit targets). */
#ifdef SYS_setgroups32
#define NR_SETGROUPS SYS_setgroups32
#define NR_SETRESGID SYS_setresgid32
#define NR_SETRESUID SYS_setresuid32
#else
#define NR_SETGROUPS SYS_setgroups
#define NR_SETRESGID SYS_setresgid
#define NR_SETRESUID SYS_setresuid
#endif

/* What the child needs, prepared by the parent (the child must not allocate). */
struct child_args {
    const spawn_opts_t *o;
    const char *path;  /* PATH to search when argv[0] has no '/' */
    char *const *envp; /* never NULL */
    int fds[3];        /* become the child's 0, 1, 2 */
    int report_fd;     /* CLOEXEC write end: (op, errno) on failure */
    pid_t parent;
};

static __attribute__((noreturn)) void child_fail(int fd, int op, int err)
{
    int msg[2] = {op, err};
    ssize_t w = write(fd, msg, sizeof msg);
    (void)w;
    _exit(127);
}

/* execvp's search over a PATH that the parent chose (the job's own PATH
 * when it sets one), without allocating. Returns only on failure. */
static void child_exec(const struct child_args *a)
{
    char *const *argv = a->o->argv;
    const char *file = argv[0];
    if (!*file) {
        errno = ENOENT;
        return;
    }
    if (strchr(file, '/')) {
        execve(file, argv, a->envp);
        return;
    }
    char path[PATH_MAX];
    size_t flen = strlen(file);
    int saw_eacces = 0, last = ENOENT;
    const char *p = a->path;
    for (;;) {
        const char *end = strchrnul(p, ':');
        size_t dlen = (size_t)(end - p);
        if (dlen + flen + 2 <= sizeof path) {
            if (dlen == 0) { /* an empty entry means the current directory */
                path[0] = '.';
                dlen = 1;
            } else {
                memcpy(path, p, dlen);
            }
            path[dlen] = '/';
            memcpy(path + dlen + 1, file, flen + 1);
            execve(path, argv, a->envp);
            last = errno;
            if (last == EACCES)
                saw_eacces = 1;
            else if (last != ENOENT && last != ENOTDIR && last != ESTALE && last != ELOOP &&
                     last != ENAMETOOLONG && last != ENODEV && last != ETIMEDOUT)
                return; /* a real error of an existing file: report it */
        }
        if (!*end) break;
        p = end + 1;
    }
    errno = saw_eacces ? EACCES : last;
}

/* Limits, then groups, gid, uid: limits first so a root worker can still
 * set hard limits in either direction; groups and gid while we still may. */
static void child_identity(const struct child_args *a, int fd)
{
    const spawn_limits_t *l = a->o->limits;
    for (int i = 0; l && i < l->n; i++)
        if (setrlimit(l->resource[i], &l->value[i]) < 0) child_fail(fd, OP_RLIMIT, errno);
    const spawn_cred_t *c = a->o->cred;
    if (!c) return;
    if (syscall(NR_SETGROUPS, c->ngroups, c->groups) < 0) child_fail(fd, OP_SETGROUPS, errno);
    if (syscall(NR_SETRESGID, c->gid, c->gid, c->gid) < 0) child_fail(fd, OP_SETGID, errno);
    if (syscall(NR_SETRESUID, c->uid, c->uid, c->uid) < 0) child_fail(fd, OP_SETUID, errno);
    /* Belt and braces (CERT POS37-C): having dropped root, getting it
     * back must be impossible. */
    if (c->uid != 0 && syscall(NR_SETRESUID, 0, 0, 0) == 0) child_fail(fd, OP_SETUID, EPERM);
}

static __attribute__((noreturn)) void child(struct child_args *a)
{
    int fd = a->report_fd;
    if (setsid() < 0) child_fail(fd, OP_SPAWN, errno);

    /* First move any source fd that sits in 0..2 out of the way, or dup2
     * onto 0..2 could overwrite a source before it is used (a worker
     * started with stdout closed gets pipe fds as low as 1). */
    if (fd < 3) {
        fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0) _exit(127);
    }
    for (int i = 0; i < 3; i++) {
        if (a->fds[i] < 3) {
            a->fds[i] = fcntl(a->fds[i], F_DUPFD_CLOEXEC, 3);
            if (a->fds[i] < 0) child_fail(fd, OP_SPAWN, errno);
        }
    }
    for (int i = 0; i < 3; i++)
        if (dup2(a->fds[i], i) < 0) child_fail(fd, OP_SPAWN, errno); /* clears CLOEXEC on i */
    /* Whatever else is open (curl's sockets, a server's listener in `sked
     * dev`) must not leak into the job: mark everything above 2 CLOEXEC
     * in one call. Our own pipes already are; the report pipe must stay
     * open until the exec, which CLOEXEC gives. */
    (void)close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);

    child_identity(a, fd);
    /* After the identity change: the kernel clears the parent-death signal
     * whenever the credentials change. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail(fd, OP_SPAWN, errno);
    /* The parent may have died before prctl took effect. */
    if (getppid() != a->parent) _exit(127);

    /* As the job's user: it must be allowed into its directory itself. */
    if (a->o->cwd && chdir(a->o->cwd) < 0) child_fail(fd, OP_CHDIR, errno);

    /* Dispositions: handlers would run on the parent's stack (vfork) and
     * ignored signals would stay ignored in the job. RT signals are left
     * alone: glibc uses some of them internally. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (int n = 1; n < 32; n++) {
        if (n == SIGKILL || n == SIGSTOP) continue;
        if (sigaction(n, &sa, NULL) < 0) child_fail(fd, OP_SPAWN, errno);
    }
    sigset_t none;
    sigemptyset(&none);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) child_fail(fd, OP_SPAWN, errno);

    child_exec(a);
    child_fail(fd, OP_EXEC, errno);
}

static int devnull_fd = -1;
static pthread_once_t devnull_once = PTHREAD_ONCE_INIT;

static void devnull_open(void)
{
    /* Kept open for the life of the process: every child's stdin. */
    devnull_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static const char *env_path(char *const *envp)
{
    for (char *const *e = envp; e && *e; e++)
        if (!strncmp(*e, "PATH=", 5)) return *e + 5;
    return SPAWN_DEFAULT_PATH;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static const char *op_name(int op)
{
    switch (op) {
    case OP_EXEC:
        return "exec";
    case OP_CHDIR:
        return "chdir";
    case OP_SETGROUPS:
        return "setgroups";
    case OP_SETGID:
        return "setgid";
    case OP_SETUID:
        return "setuid";
    case OP_RLIMIT:
        return "setrlimit";
    default:
        return "spawn";
    }
}

pid_t spawn__reap(pid_t pid)
{
    pid_t r;
    do
        r = waitpid(pid, NULL, 0);
    while (r < 0 && errno == EINTR);
    return r;
}

/* Forks the child, which never returns from here (child() ends in exec or
 * _exit). Kept in a function of its own so that no local of spawn_start
 * lives across vfork: the parent resumes on the child's stack frame, which
 * GCC rightly warns may clobber them. */
static __attribute__((noinline)) pid_t start_child(struct child_args *a)
{
#if defined(__SANITIZE_ADDRESS__)
    /* ASan keeps per-thread state that a vfork child would corrupt. */
    pid_t pid = fork();
#else
    pid_t pid = vfork();
#endif
    if (pid == 0) child(a);
    return pid;
}

int spawn_start(const spawn_opts_t *o, spawn_proc_t *p, const char **failed_op)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, rep[2] = {-1, -1};
    pid_t pid = -1;
    int rc = 0;
    const char *op = "spawn";

    p->pid = -1;
    p->pidfd = p->out_fd = p->err_fd = -1;
    pthread_once(&devnull_once, devnull_open);
    if (devnull_fd < 0) {
        rc = errno ? -errno : -EIO;
        goto out;
    }
    if (!o->argv || !o->argv[0]) {
        rc = -EINVAL;
        goto out;
    }
    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
        rc = -errno;
        goto out;
    }
    static char *const no_env[] = {NULL};
    struct child_args a = {
        .o = o,
        .path = env_path(o->envp),
        .envp = o->envp ? o->envp : no_env,
        .fds = {o->stdin_fd > 0 ? o->stdin_fd : devnull_fd, outp[1], errp[1]},
        .report_fd = rep[1],
        .parent = getpid(),
    };

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = start_child(&a);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        rc = -saved;
        goto out;
    }

    close_fd(&rep[1]);
    close_fd(&outp[1]);
    close_fd(&errp[1]);
    int msg[2] = {0, 0};
    ssize_t r;
    do
        r = read(rep[0], msg, sizeof msg);
    while (r < 0 && errno == EINTR);
    if (r != 0) {
        /* The child reported a failure (or the pipe broke): it has exited
         * or is about to; reap it so no zombie is left. */
        spawn__reap(pid);
        pid = -1;
        if (r == (ssize_t)sizeof msg) {
            op = op_name(msg[0]);
            rc = -msg[1];
        } else {
            rc = r < 0 ? -errno : -EIO;
        }
        goto out;
    }

    p->pidfd = pidfd_open(pid, 0);
    if (p->pidfd < 0) {
        rc = -errno;
        kill(-pid, SIGKILL);
        spawn__reap(pid);
        pid = -1;
        goto out;
    }
    /* Only our read ends are non-blocking: a non-blocking stdout would
     * surprise the job with EAGAIN. */
    if (fcntl(outp[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(errp[0], F_SETFL, O_NONBLOCK) < 0) {
        rc = -errno;
        kill(-pid, SIGKILL);
        spawn__reap(pid);
        pid = -1;
        close_fd(&p->pidfd);
        goto out;
    }
    p->pid = pid;
    p->out_fd = outp[0];
    p->err_fd = errp[0];
    outp[0] = errp[0] = -1;
out:
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fd(&rep[0]);
    close_fd(&rep[1]);
    if (failed_op) *failed_op = rc ? op : NULL;
    return rc;
}

int spawn_wait(spawn_proc_t *p, int *exit_code, int *signo)
{
    siginfo_t si;
    int r;
    memset(&si, 0, sizeof si);
    do
        r = waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED);
    while (r < 0 && errno == EINTR);
    if (r < 0) return -errno;
    if (si.si_code == CLD_EXITED) {
        *exit_code = si.si_status;
        *signo = 0;
    } else {
        *exit_code = -1;
        *signo = si.si_status;
    }
    return 0;
}

void spawn_close(spawn_proc_t *p)
{
    close_fd(&p->pidfd);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
}
