/*
 * Spawning job attempts and the orphan watcher; see spawn.h.
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
 */
#include "worker/spawn.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { OP_SPAWN = 1, OP_CHDIR, OP_EXEC };

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* What the child needs, prepared by the parent (the child must not allocate). */
struct child_args {
    const spawn_opts_t *o;
    const char *path; /* PATH to search when argv[0] has no '/' */
    int fds[3];       /* become the child's 0, 1, 2 */
    int report_fd;    /* CLOEXEC write end: (op, errno) on failure */
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
        execve(file, argv, a->o->envp);
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
            execve(path, argv, a->o->envp);
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

static __attribute__((noreturn)) void child(struct child_args *a)
{
    int fd = a->report_fd;
    if (setsid() < 0) child_fail(fd, OP_SPAWN, errno);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) child_fail(fd, OP_SPAWN, errno);
    /* The parent may have died before prctl took effect. */
    if (getppid() != a->parent) _exit(127);

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
    return DEFAULT_PATH;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static pid_t reap(pid_t pid)
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
    struct child_args a = {
        .o = o,
        .path = env_path(o->envp),
        .fds = {devnull_fd, outp[1], errp[1]},
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
        reap(pid);
        pid = -1;
        if (r == (ssize_t)sizeof msg) {
            op = msg[0] == OP_EXEC ? "exec" : msg[0] == OP_CHDIR ? "chdir" : "spawn";
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
        reap(pid);
        pid = -1;
        goto out;
    }
    /* Only our read ends are non-blocking: a non-blocking stdout would
     * surprise the job with EAGAIN. */
    if (fcntl(outp[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(errp[0], F_SETFL, O_NONBLOCK) < 0) {
        rc = -errno;
        kill(-pid, SIGKILL);
        reap(pid);
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

static int env_same_name(const char *a, const char *b)
{
    while (*a && *a != '=' && *a == *b)
        a++, b++;
    return (*a == '=' || !*a) && (*b == '=' || !*b);
}

char **spawn_env_new(const char *const *extra)
{
    size_t n = 0, nextra = 0;
    for (char **e = environ; e && *e; e++)
        n++;
    for (const char *const *e = extra; e && *e; e++)
        nextra++;
    char **env = xmalloc((n + nextra + 1) * sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        env[k++] = xstrdup(environ[i]);
    for (size_t i = 0; i < nextra; i++) {
        size_t j;
        for (j = 0; j < k; j++)
            if (env_same_name(env[j], extra[i])) break;
        if (j < k)
            free(env[j]);
        else
            k++;
        env[j] = xstrdup(extra[i]);
    }
    env[k] = NULL;
    return env;
}

void spawn_env_free(char **env)
{
    if (!env) return;
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

/* ---- the orphan watcher ------------------------------------------------- */

#define WATCH_MAX 16384 /* process groups at once; far above any slot count */

/* In .bss so the forked watcher needs no allocation (fork from a threaded
 * process allows only async-signal-safe calls in the child). */
static pid_t watch_groups[WATCH_MAX];

static void watch_line(const char *line, size_t *n)
{
    char sign = line[0];
    long v = 0;
    for (const char *p = line + 1; *p >= '0' && *p <= '9'; p++)
        v = v * 10 + (*p - '0');
    if (v <= 1) return; /* never kill(-1) or kill(-0): that would hit everything */
    if (sign == '+') {
        if (*n < WATCH_MAX) watch_groups[(*n)++] = (pid_t)v;
    } else if (sign == '-') {
        for (size_t i = 0; i < *n; i++) {
            if (watch_groups[i] == (pid_t)v) {
                watch_groups[i] = watch_groups[--*n];
                break;
            }
        }
    }
}

static __attribute__((noreturn)) void watcher_main(int fd)
{
    /* Its own session: a Ctrl-C or a kill of the worker's process group
     * must not take the watcher down with the worker, or it could not do
     * its one job. It exits only on EOF. */
    setsid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    int ign[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM};
    for (size_t i = 0; i < sizeof ign / sizeof ign[0]; i++)
        sigaction(ign[i], &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Keep only the pipe (as fd 3) and stderr: holding the worker's other
     * fds (sockets, a test harness's stdout pipe) would keep them alive. */
    if (fd != 3) {
        if (dup2(fd, 3) < 0) _exit(1);
        if (fd > 3) close(fd);
    }
    (void)close_range(4, ~0U, 0);
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        if (fd <= 2) dup2(nul, fd);
        if (nul > 3) close(nul);
    }

    size_t n = 0, ll = 0;
    char line[32], rbuf[512];
    for (;;) {
        ssize_t r = read(3, rbuf, sizeof rbuf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; i++) {
            if (rbuf[i] == '\n') {
                line[ll] = '\0';
                if (ll) watch_line(line, &n);
                ll = 0;
            } else if (ll < sizeof line - 1) {
                line[ll++] = rbuf[i];
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        kill(-watch_groups[i], SIGKILL);
    _exit(0);
}

int spawn_watcher_start(spawn_watcher_t *w)
{
    int pfd[2] = {-1, -1};
    w->pid = -1;
    w->fd = -1;
    if (pipe2(pfd, O_CLOEXEC) < 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(pfd[0]);
        close(pfd[1]);
        return -err;
    }
    if (pid == 0) {
        close(pfd[1]);
        watcher_main(pfd[0]);
    }
    close(pfd[0]);
    w->pid = pid;
    w->fd = pfd[1];
    return 0;
}

static int watch_send(spawn_watcher_t *w, char sign, pid_t pgid)
{
    if (w->fd < 0) return -EPIPE;
    char msg[24];
    int len = snprintf(msg, sizeof msg, "%c%d\n", sign, (int)pgid);
    ssize_t r;
    /* Well under PIPE_BUF, so the write is atomic: never a torn line. */
    do
        r = write(w->fd, msg, (size_t)len);
    while (r < 0 && errno == EINTR);
    return r == len ? 0 : r < 0 ? -errno : -EIO;
}

int spawn_watcher_add(spawn_watcher_t *w, pid_t pgid)
{
    return watch_send(w, '+', pgid);
}

int spawn_watcher_remove(spawn_watcher_t *w, pid_t pgid)
{
    return watch_send(w, '-', pgid);
}

void spawn_watcher_stop(spawn_watcher_t *w)
{
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->pid > 0) reap(w->pid);
    w->pid = -1;
}
