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
 *
 * Identity changes in the child use raw system calls, not glibc's set*id:
 * those broadcast the change to every thread of the process (POSIX says
 * credentials are process-wide), and a vfork child still sees the parent's
 * thread list, so glibc would signal the worker's threads. The raw calls
 * change only the calling task, which is exactly the child. Everything
 * they need (the group list) is resolved by the parent beforehand.
 */
#include "worker/spawn.h"
#include "common/error.h"
#include "common/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
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

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

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
    return DEFAULT_PATH;
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
    static char *const no_env[] = {NULL};
    struct child_args a = {
        .o = o,
        .path = env_path(o->envp),
        .envp = o->envp ? o->envp : no_env,
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

char **spawn_env_new(const char *const *base, const char *const *extra)
{
    size_t n = 0, nextra = 0;
    for (const char *const *e = base; e && *e; e++)
        n++;
    for (const char *const *e = extra; e && *e; e++)
        nextra++;
    char **env = xmalloc((n + nextra + 1) * sizeof *env);
    size_t k = 0;
    const char *const *srcs[2] = {base, extra};
    for (int s = 0; s < 2; s++) {
        for (const char *const *e = srcs[s]; e && *e; e++) {
            size_t j;
            for (j = 0; j < k; j++)
                if (env_same_name(env[j], *e)) break;
            if (j < k)
                free(env[j]);
            else
                k++;
            env[j] = xstrdup(*e);
        }
    }
    env[k] = NULL;
    return env;
}

char **spawn_env_base(const spawn_user_t *u)
{
    const char *tz = getenv("TZ");
    char *v[8];
    int n = 0;
    v[n++] = xstrdup("PATH=" DEFAULT_PATH);
    v[n++] = xasprintf("HOME=%s", u && u->home ? u->home : "/");
    if (u && u->name) {
        v[n++] = xasprintf("USER=%s", u->name);
        v[n++] = xasprintf("LOGNAME=%s", u->name);
    }
    v[n++] = xstrdup("LANG=C.UTF-8");
    if (tz && *tz) v[n++] = xasprintf("TZ=%s", tz);
    v[n] = NULL;
    char **env = spawn_env_new((const char *const *)v, NULL);
    for (int i = 0; i < n; i++)
        free(v[i]);
    return env;
}

void spawn_env_free(char **env)
{
    if (!env) return;
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

/* ---- identity, limits, working directories ------------------------------ */

#define RM_DEPTH_MAX 256 /* directory levels spawn_tree_remove descends */

static void errf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void errf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    if (!buf || !len) return;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* A decimal id, all digits, fitting id_t; 1 and *out, or 0. */
static int parse_id(const char *s, unsigned *out)
{
    if (!*s) return 0;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return 0;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > 0x7fffffffUL) return 0;
    }
    *out = (unsigned)v;
    return 1;
}

/* getpwnam_r/getpwuid_r with a buffer that grows. *pw is filled and
 * *bufp (new, caller frees) backs its strings. Returns 1 found, 0 not. */
static int pw_find(const char *name, uid_t uid, struct passwd *pw, char **bufp)
{
    size_t len = 1024;
    for (;;) {
        char *buf = xmalloc(len);
        struct passwd *res = NULL;
        int e = name ? getpwnam_r(name, pw, buf, len, &res) : getpwuid_r(uid, pw, buf, len, &res);
        if (e == ERANGE && len < (1u << 20)) {
            free(buf);
            len *= 4;
            continue;
        }
        if (!res) {
            free(buf);
            return 0;
        }
        *bufp = buf;
        return 1;
    }
}

static int gr_find(const char *name, gid_t *gid)
{
    size_t len = 1024;
    for (;;) {
        char *buf = xmalloc(len);
        struct group gr, *res = NULL;
        int e = getgrnam_r(name, &gr, buf, len, &res);
        if (e == ERANGE && len < (1u << 20)) {
            free(buf);
            len *= 4;
            continue;
        }
        if (res) *gid = gr.gr_gid;
        free(buf);
        return res != NULL;
    }
}

int spawn_user_lookup(const char *spec, spawn_user_t *out, char *errbuf, size_t errlen)
{
    char *user = NULL, *pwbuf = NULL;
    const char *group = NULL;
    struct passwd pw;
    int rc = 0, have_pw = 0;
    unsigned num;

    memset(out, 0, sizeof *out);
    if (!spec) {
        /* The worker's own identity: nothing to switch, but HOME and USER
         * still come from the password database, not the worker's env. */
        out->cred.uid = geteuid();
        out->cred.gid = getegid();
        have_pw = pw_find(NULL, out->cred.uid, &pw, &pwbuf);
        out->name = have_pw ? xstrdup(pw.pw_name) : xasprintf("%u", (unsigned)out->cred.uid);
        out->home = xstrdup(have_pw && pw.pw_dir && *pw.pw_dir ? pw.pw_dir : "/");
        goto out;
    }
    user = xstrdup(spec);
    char *colon = strchr(user, ':');
    if (colon) {
        *colon = '\0';
        group = colon + 1;
        if (!*group) {
            errf(errbuf, errlen, "'%s': the group after ':' is empty", spec);
            rc = SKED_EINVAL;
            goto out;
        }
    }
    if (!*user) {
        errf(errbuf, errlen, "'%s': the user is empty", spec);
        rc = SKED_EINVAL;
        goto out;
    }
    have_pw = pw_find(user, 0, &pw, &pwbuf);
    if (!have_pw && parse_id(user, &num)) {
        have_pw = pw_find(NULL, (uid_t)num, &pw, &pwbuf);
        if (!have_pw) { /* a bare number is fine (containers often have no entry) */
            out->cred.uid = (uid_t)num;
            out->cred.gid = (gid_t)num;
        }
    } else if (!have_pw) {
        errf(errbuf, errlen, "no such user '%s'", user);
        rc = SKED_EINVAL;
        goto out;
    }
    if (have_pw) {
        out->cred.uid = pw.pw_uid;
        out->cred.gid = pw.pw_gid;
    }
    if (group && !gr_find(group, &out->cred.gid)) {
        if (!parse_id(group, &num)) {
            errf(errbuf, errlen, "no such group '%s'", group);
            rc = SKED_EINVAL;
            goto out;
        }
        out->cred.gid = (gid_t)num;
    }
    out->name = xstrdup(have_pw ? pw.pw_name : user);
    out->home = xstrdup(have_pw && pw.pw_dir && *pw.pw_dir ? pw.pw_dir : "/");
    /* initgroups(3)'s list, resolved here: the child may not read files. */
    if (have_pw) {
        int n = 32;
        for (;;) {
            gid_t *g = xmalloc((size_t)n * sizeof *g);
            int want = n;
            if (getgrouplist(pw.pw_name, out->cred.gid, g, &want) >= 0) {
                out->cred.groups = g;
                out->cred.ngroups = (size_t)want;
                break;
            }
            free(g);
            if (want <= n || want > 65536) { /* cannot grow: fall back to the one group */
                want = 0;
                break;
            }
            n = want;
        }
    }
    if (!out->cred.groups) {
        out->cred.groups = xmalloc(sizeof *out->cred.groups);
        out->cred.groups[0] = out->cred.gid;
        out->cred.ngroups = 1;
    }
    out->switch_ids = 1;
    if (geteuid() != 0 && out->cred.uid == geteuid() && out->cred.gid == getegid())
        out->switch_ids = 0;
out:
    free(user);
    free(pwbuf);
    if (rc < 0) spawn_user_clear(out);
    return rc;
}

void spawn_user_clear(spawn_user_t *u)
{
    if (!u) return;
    free(u->cred.groups);
    free(u->name);
    free(u->home);
    memset(u, 0, sizeof *u);
}

int spawn_limits_add(spawn_limits_t *l, int resource, rlim_t value)
{
    if (l->n >= SPAWN_LIMITS_MAX) return SKED_EINVAL;
    struct rlimit cur;
    if (geteuid() != 0 && getrlimit(resource, &cur) == 0 && cur.rlim_max != RLIM_INFINITY &&
        (value == RLIM_INFINITY || value > cur.rlim_max))
        value = cur.rlim_max;
    l->resource[l->n] = resource;
    l->value[l->n].rlim_cur = value;
    l->value[l->n].rlim_max = value;
    l->n++;
    return 0;
}

/* mkdir -p of the parents of path (mode 0755); the last component is the
 * caller's. */
static int mkdir_parents(const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0755) < 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = '/';
    }
    free(p);
    return rc;
}

int spawn_workdir_init(const char *base, char *errbuf, size_t errlen)
{
    struct stat st;
    int rc = 0;
    if (!base || base[0] != '/') {
        errf(errbuf, errlen, "the work directory must be an absolute path, not '%s'",
             base ? base : "");
        return SKED_EINVAL;
    }
    if ((rc = mkdir_parents(base)) < 0 || (mkdir(base, 0711) < 0 && errno != EEXIST)) {
        if (!rc) rc = -errno;
        errf(errbuf, errlen, "cannot create %s: %s", base, strerror(-rc));
        return rc;
    }
    if (lstat(base, &st) < 0) {
        rc = -errno;
        errf(errbuf, errlen, "%s: %s", base, strerror(-rc));
        return rc;
    }
    if (!S_ISDIR(st.st_mode)) {
        errf(errbuf, errlen, "%s is not a directory (a symbolic link is refused too)", base);
        return SKED_EINVAL;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 022)) {
        errf(errbuf, errlen,
             "%s must be owned by the worker's user (uid %u) and writable by no one else; "
             "it is owned by uid %u with mode %04o",
             base, (unsigned)geteuid(), (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
        return SKED_EINVAL;
    }
    /* Run-as users must be able to pass through to their own directory. */
    if ((st.st_mode & 0111) != 0111 && chmod(base, (st.st_mode & 07777) | 0111) < 0) {
        rc = -errno;
        errf(errbuf, errlen, "chmod %s: %s", base, strerror(-rc));
        return rc;
    }
    return 0;
}

int spawn_workdir_new(const char *base, const char *prefix, const spawn_cred_t *cred, char **out)
{
    char *path = xasprintf("%s/%s-XXXXXX", base, prefix && *prefix ? prefix : "attempt");
    int rc = 0;
    *out = NULL;
    if (!mkdtemp(path)) {
        rc = -errno;
        goto out;
    }
    /* We just made it 0700 in a directory only we may write: nobody can
     * have swapped it for a link, so chown by name is safe. */
    if (cred && chown(path, cred->uid, cred->gid) < 0) {
        rc = -errno;
        rmdir(path);
        goto out;
    }
    *out = path;
    path = NULL;
out:
    free(path);
    return rc;
}

/* Removes name (in the directory dirfd) and, for a directory, all below
 * it, on file system dev. Returns 0 or the first -errno. */
static int rm_at(int dirfd, const char *name, dev_t dev, int depth)
{
    struct stat st;
    int rc = 0;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode)) return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
    if (st.st_dev != dev) return -EXDEV; /* a mount point: never descend */
    if (depth > RM_DEPTH_MAX) return -ELOOP;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES && st.st_uid == geteuid()) {
        /* A job may leave a directory it made unreadable (a non-root
         * worker is that same user, so the chmod crosses no boundary). */
        if (fchmodat(dirfd, name, 0700, 0) == 0)
            fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) return -errno;
    /* What we opened is what we stat'ed only if it is on the same device;
     * a swap between the two calls could otherwise cross a mount. */
    struct stat st2;
    if (fstat(fd, &st2) < 0 || st2.st_dev != dev) {
        close(fd);
        return -EXDEV;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        rc = -errno;
        close(fd);
        return rc;
    }
    /* Entries are removed while the stream is read; a second pass picks
     * up anything the stream skipped because of that. */
    for (int pass = 0; pass < 2; pass++) {
        struct dirent *e;
        errno = 0;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            int r = rm_at(fd, e->d_name, dev, depth + 1);
            if (r < 0 && !rc) rc = r;
        }
        if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
            closedir(d);
            return rc;
        }
        /* Retry only a clean pass: after a failure below, a second pass
         * would fail the same way, at every level (exponential time). */
        if (errno != ENOTEMPTY || rc < 0) break;
        rewinddir(d);
    }
    if (!rc) rc = -errno;
    closedir(d);
    return rc;
}

int spawn_tree_remove(const char *path)
{
    char *parent = NULL;
    int pfd = -1, rc = 0;
    struct stat st;
    const char *slash = strrchr(path, '/');
    if (!slash || !slash[1]) return -EINVAL;
    parent = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
    pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) {
        rc = -errno;
        goto out;
    }
    if (fstatat(pfd, slash + 1, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = errno == ENOENT ? 0 : -errno;
        goto out;
    }
    rc = rm_at(pfd, slash + 1, st.st_dev, 0);
out:
    if (pfd >= 0) close(pfd);
    free(parent);
    return rc;
}

/* ---- the orphan watcher ------------------------------------------------- */

/*
 * The worker speaks to the watcher in fixed-size messages. Each is written
 * whole (a pipe write of at most PIPE_BUF bytes is atomic, and the buffer
 * holds whole messages), so the watcher only ever sees complete ones; it
 * still reassembles across reads, which costs nothing.
 *
 * Self-fencing by the supervisor thread stops when the worker process
 * stops (SIGSTOP, a debugger, a stall in the kernel): the watcher, another
 * process, keeps each group's kill deadline on the shared CLOCK_MONOTONIC
 * and kills the group when it passes, whether or not the worker ever
 * speaks again.
 *
 * The worker's end is non-blocking, because the supervisor thread, which
 * writes, must never wait for the watcher: that would stall every attempt
 * and the supervisor's own fence with it. A full pipe means the watcher is
 * not reading (it is stopped, or starved of CPU), and while it does not
 * read it does not kill either, so nothing is gained by dropping or
 * blocking. Messages wait in the worker's queue instead, in order, and go
 * out with the next message or flush; a deadline replaces the one still
 * queued for its group, so a long stall costs one queued deadline per
 * group, not one per renewal. Dropping a deadline would be wrong twice
 * over: the watcher would keep an older one and kill a healthy attempt.
 * When the watcher reads again it takes everything before it judges any
 * deadline. The queue is capped (WATCH_QUEUE_MAX) only against a watcher
 * stuck for good.
 */
enum { WATCH_ADD = 1, WATCH_FORGET = 2, WATCH_DEADLINE = 3 };

struct watch_msg {
    int32_t op;          /* WATCH_* */
    int32_t pgid;        /* the process group */
    int64_t deadline_ns; /* WATCH_DEADLINE: CLOCK_MONOTONIC ns; 0 = none */
};

_Static_assert(PIPE_BUF % sizeof(struct watch_msg) == 0, "whole messages per atomic write");

#define WATCH_MAX       16384         /* process groups at once; far above any slot count */
#define WATCH_QUEUE_MAX (1024 * 1024) /* bytes the worker queues for a watcher not reading */
#define WATCH_RBUF      (64 * sizeof(struct watch_msg))

/* In .bss so the forked watcher needs no allocation (fork from a threaded
 * process allows only async-signal-safe calls in the child). */
static pid_t watch_groups[WATCH_MAX];
static int64_t watch_deadline[WATCH_MAX]; /* CLOCK_MONOTONIC ns; 0 = none */

static int64_t watch_now_ns(void)
{
    /* The clock of clock_mono_ns(): the same for every process. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t watch_find(size_t n, pid_t pgid)
{
    for (size_t i = 0; i < n; i++)
        if (watch_groups[i] == pgid) return i;
    return n;
}

static void watch_apply(const struct watch_msg *m, size_t *n)
{
    /* Never kill(-1) or kill(-0): that would hit everything. */
    if (m->pgid <= 1) return;
    size_t i = watch_find(*n, m->pgid);
    switch (m->op) {
    case WATCH_ADD:
        if (i == *n) {
            if (*n == WATCH_MAX) return;
            watch_groups[(*n)++] = m->pgid;
        }
        watch_deadline[i] = 0;
        break;
    case WATCH_FORGET:
        if (i < *n) {
            --*n;
            watch_groups[i] = watch_groups[*n];
            watch_deadline[i] = watch_deadline[*n];
        }
        break;
    case WATCH_DEADLINE:
        if (i < *n) watch_deadline[i] = m->deadline_ns > 0 ? m->deadline_ns : 0;
        break;
    default:
        break;
    }
}

/* Kills the groups whose deadline has passed; returns the poll timeout to
 * the earliest one left (ms, -1 = none). A group is killed once and stays
 * listed, so that the worker's "forget", sent when it reaps the leader,
 * still finds it. */
static int watch_fire(size_t n)
{
    int64_t now = watch_now_ns(), next = 0;
    for (size_t i = 0; i < n; i++) {
        if (!watch_deadline[i]) continue;
        if (now >= watch_deadline[i]) {
            kill(-watch_groups[i], SIGKILL);
            watch_deadline[i] = 0;
        } else if (!next || watch_deadline[i] < next) {
            next = watch_deadline[i];
        }
    }
    if (!next) return -1;
    int64_t ms = (next - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
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
    /* Non-blocking: each wake-up reads everything the worker has sent
     * before any deadline is judged, so a renewal already in the pipe is
     * never overtaken by the kill it was sent to prevent (after a stall of
     * the watcher itself, say). The read end is the watcher's alone. */
    fcntl(3, F_SETFL, fcntl(3, F_GETFL) | O_NONBLOCK);

    size_t n = 0, have = 0;
    union {
        unsigned char b[WATCH_RBUF];
        struct watch_msg align;
    } rb;
    int timeout_ms = -1;
    for (;;) {
        struct pollfd q = {3, POLLIN, 0};
        if (poll(&q, 1, timeout_ms) < 0 && errno != EINTR) break;
        int eof = 0;
        for (;;) {
            ssize_t r = read(3, rb.b + have, sizeof rb.b - have);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && errno == EAGAIN) break;
            if (r <= 0) {
                eof = 1;
                break;
            }
            have += (size_t)r;
            size_t used = 0;
            for (; have - used >= sizeof(struct watch_msg); used += sizeof(struct watch_msg)) {
                struct watch_msg m;
                memcpy(&m, rb.b + used, sizeof m);
                watch_apply(&m, &n);
            }
            memmove(rb.b, rb.b + used, have - used);
            have -= used;
        }
        if (eof) break;
        timeout_ms = watch_fire(n);
    }
    for (size_t i = 0; i < n; i++)
        kill(-watch_groups[i], SIGKILL);
    _exit(0);
}

int spawn_watcher_start(spawn_watcher_t *w)
{
    int pfd[2] = {-1, -1};
    memset(w, 0, sizeof *w);
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
    /* Non-blocking: the supervisor must never wait on the watcher (see
     * spawn_watcher_flush). The write end is ours alone. */
    if (fcntl(pfd[1], F_SETFL, O_NONBLOCK) < 0) {
        int err = errno;
        close(pfd[1]); /* EOF: the watcher exits */
        reap(pid);
        return -err;
    }
    w->pid = pid;
    w->fd = pfd[1];
    return 0;
}

int spawn_watcher_flush(spawn_watcher_t *w)
{
    if (w->fd < 0) return -EPIPE;
    while (w->qlen) {
        size_t len = w->qlen < PIPE_BUF ? w->qlen : PIPE_BUF;
        ssize_t r = write(w->fd, w->q, len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break; /* the watcher is behind: later */
        if (r <= 0) {
            int err = r < 0 ? errno : EIO;
            /* The watcher is gone (EPIPE): nothing queued can matter. */
            close(w->fd);
            w->fd = -1;
            w->qlen = 0;
            return -err;
        }
        memmove(w->q, w->q + r, w->qlen - (size_t)r);
        w->qlen -= (size_t)r;
    }
    return (int)(w->qlen / sizeof(struct watch_msg));
}

static int watch_send(spawn_watcher_t *w, int op, pid_t pgid, int64_t deadline_ns)
{
    if (w->fd < 0) return -EPIPE;
    struct watch_msg m = {.op = op, .pgid = (int32_t)pgid, .deadline_ns = deadline_ns};
    /* A newer deadline replaces one still queued for the same group (the
     * last message queued for it), so a watcher that is not reading costs
     * one queued deadline per group, not one per renewal. */
    if (op == WATCH_DEADLINE) {
        for (size_t off = w->qlen; off >= sizeof m; off -= sizeof m) {
            struct watch_msg old;
            memcpy(&old, w->q + off - sizeof m, sizeof old);
            if (old.pgid != m.pgid) continue;
            if (old.op == WATCH_DEADLINE) {
                memcpy(w->q + off - sizeof m, &m, sizeof m);
                int rc = spawn_watcher_flush(w);
                return rc < 0 ? rc : 0;
            }
            break;
        }
    }
    if (w->qlen + sizeof m > WATCH_QUEUE_MAX) {
        /* Not read for a very long time (a stopped watcher): keep what is
         * queued, in order, and refuse the rest. */
        int rc = spawn_watcher_flush(w);
        if (rc < 0) return rc;
        if (w->qlen + sizeof m > WATCH_QUEUE_MAX) return -ENOBUFS;
    }
    if (w->qlen + sizeof m > w->qcap) {
        w->qcap = w->qcap ? 2 * w->qcap : 16 * sizeof m;
        w->q = xrealloc(w->q, w->qcap);
    }
    memcpy(w->q + w->qlen, &m, sizeof m);
    w->qlen += sizeof m;
    int rc = spawn_watcher_flush(w);
    return rc < 0 ? rc : 0;
}

int spawn_watcher_add(spawn_watcher_t *w, pid_t pgid)
{
    return watch_send(w, WATCH_ADD, pgid, 0);
}

int spawn_watcher_remove(spawn_watcher_t *w, pid_t pgid)
{
    return watch_send(w, WATCH_FORGET, pgid, 0);
}

int spawn_watcher_deadline(spawn_watcher_t *w, pid_t pgid, int64_t deadline_ns)
{
    return watch_send(w, WATCH_DEADLINE, pgid, deadline_ns > 0 ? deadline_ns : 0);
}

void spawn_watcher_stop(spawn_watcher_t *w)
{
    /* Last orders: whatever the pipe takes now. A "forget" left behind
     * means the watcher kills a group that is already gone (its leader
     * was reaped), which is harmless unless the id was reused meanwhile. */
    if (w->fd >= 0) spawn_watcher_flush(w);
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->pid > 0) reap(w->pid);
    w->pid = -1;
    free(w->q);
    w->q = NULL;
    w->qlen = w->qcap = 0;
}
