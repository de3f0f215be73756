/*
 * Unit tests for the worker's process handling (worker/spawn.c and
 * worker/supervise.c): real processes, with this test binary re-executed
 * as the job in a helper mode (libuv's spawn_helper): exit codes, signals,
 * stdout/stderr capture, the SKED_* environment, cwd, exec failures, the
 * attempt's own session and process group, timeouts and cancels that kill
 * the whole group (grandchildren included), self-fencing, and the orphan
 * watcher: killing a grandchild when its worker is SIGKILLed, and killing
 * a group whose lease deadline passes while its worker is stopped
 * (SIGSTOP), but not while renewals arrive.
 *
 * Isolation (DESIGN §8): jobs run as another user (these tests run as root
 * and use `nobody`; run as anyone else they check that the switch is
 * refused), with resource limits the job reports from /proc/self/limits,
 * with a scrubbed environment, and in a fresh work directory that is
 * removed afterwards without following links the job planted. Also the
 * secret env values of job documents (core/jobspec.c), whose consumer is
 * the worker: kept for it, masked for everyone else.
 *
 * The test process makes itself a child subreaper so orphaned grandchildren
 * are reparented to it and their death can be observed (and reaped).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"
#include "core/jobspec.h"
#include "worker/spawn.h"
#include "worker/worker_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char self_path[4096];

/* ---- helper modes (this binary as the job) ------------------------------ */

static void pause_forever(void)
{
    for (;;)
        pause();
}

static int helper(int argc, char **argv)
{
    const char *mode = argv[2];
    if (!strcmp(mode, "exit")) return atoi(argv[3]);
    if (!strcmp(mode, "signal")) {
        signal(atoi(argv[3]), SIG_DFL);
        raise(atoi(argv[3]));
        return 99;
    }
    if (!strcmp(mode, "output")) {
        /* Small lines on both streams, then a large stdout block that
         * must arrive complete and in order across several chunks. */
        fputs("hello-out\n", stdout);
        fflush(stdout);
        fputs("hello-err\n", stderr);
        for (int i = 0; i < 30000; i++)
            printf("line %05d\n", i);
        fflush(stdout);
        return 0;
    }
    if (!strcmp(mode, "env")) {
        for (int i = 3; i < argc; i++) {
            const char *v = getenv(argv[i]);
            printf("%s=%s\n", argv[i], v ? v : "(unset)");
        }
        return 0;
    }
    if (!strcmp(mode, "pwd")) {
        char buf[4096];
        printf("%s\n", getcwd(buf, sizeof buf) ? buf : "?");
        return 0;
    }
    if (!strcmp(mode, "ids")) {
        char c;
        ssize_t r = read(0, &c, 1); /* stdin must be /dev/null: immediate EOF */
        sigset_t cur;
        sigprocmask(SIG_SETMASK, NULL, &cur);
        struct sigaction sa;
        sigaction(SIGPIPE, NULL, &sa);
        printf("%d %d %d %zd %d %d\n", (int)getpid(), (int)getpgrp(), (int)getsid(0), r,
               sigismember(&cur, SIGTERM), sa.sa_handler == SIG_IGN);
        return 0;
    }
    if (!strcmp(mode, "grandchild")) {
        /* argv[3] "ignore-term": the job itself survives SIGTERM, so only
         * the SIGKILL after the grace ends it. */
        if (argc > 3 && !strcmp(argv[3], "ignore-term")) signal(SIGTERM, SIG_IGN);
        pid_t pid = fork();
        if (pid == 0) {
            signal(SIGTERM, SIG_DFL);
            pause_forever();
        }
        printf("%d\n", (int)pid);
        fflush(stdout);
        pause_forever();
    }
    if (!strcmp(mode, "sleep")) pause_forever();
    fprintf(stderr, "unknown helper mode %s\n", mode);
    return 2;
}

/* ---- a supervisor harness ----------------------------------------------- */

struct collect {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    buf_t out[3];
    int64_t next_seq; /* the seq the next chunk must carry */
    int chunks;
    int seq_ok;
    attempt_t *done; /* the finished attempt, owned by the test */
};

static void on_chunk(void *arg, attempt_t *a, int stream, int64_t seq, char *data, size_t len)
{
    struct collect *c = arg;
    pthread_mutex_lock(&c->mu);
    if (seq != c->next_seq) c->seq_ok = 0;
    c->next_seq = seq + 1;
    c->chunks++;
    buf_append(&c->out[stream], data, len);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    free(data);
}

static void on_done(void *arg, attempt_t *a)
{
    struct collect *c = arg;
    pthread_mutex_lock(&c->mu);
    c->done = a;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static const sup_ops_t ops = {on_chunk, on_done};

struct fixture {
    struct collect c;
    sup_t *sup;
    sup_isolation_t iso; /* what with_isolation gave the supervisor */
    spawn_user_t user;
    spawn_limits_t limits;
    char base[64]; /* a temp parent of work dirs; "" = none */
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    pthread_mutex_init(&f->c.mu, NULL);
    pthread_cond_init(&f->c.cv, NULL);
    f->c.seq_ok = 1;
    if (sup_new(&ops, &f->c, 200, NULL, NULL, &f->sup) != 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sup_free(f->sup);
    attempt_free(f->c.done);
    spawn_user_clear(&f->user);
    if (f->base[0]) spawn_tree_remove(f->base);
    for (int i = 0; i < 3; i++)
        buf_free(&f->c.out[i]);
    pthread_mutex_destroy(&f->c.mu);
    pthread_cond_destroy(&f->c.cv);
    free(f);
    return 0;
}

static char **strv(const char *first, ...)
{
    va_list ap;
    size_t n = 0;
    char **v = xmalloc(sizeof *v);
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *)) {
        v = xrealloc(v, (n + 2) * sizeof *v);
        v[n++] = xstrdup(s);
    }
    va_end(ap);
    v[n] = NULL;
    return v;
}

/* Runs argv under the supervisor and waits (bounded) for the result. */
static attempt_t *run(struct fixture *f, char **argv, char **envp, const char *cwd,
                      int64_t timeout_ms)
{
    attempt_t *a = attempt_new();
    snprintf(a->run_id, sizeof a->run_id, "run_test");
    a->n = 1;
    a->argv = argv;
    a->envp = envp;
    a->cwd = cwd ? xstrdup(cwd) : NULL;
    a->timeout_ms = timeout_ms;
    atomic_store(&a->renewed_ns, clock_mono_ns());
    sup_submit(f->sup, a);
    return a;
}

static attempt_t *wait_done(struct fixture *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&f->c.mu);
    while (!f->c.done) {
        if (pthread_cond_timedwait(&f->c.cv, &f->c.mu, &ts) == ETIMEDOUT) break;
    }
    attempt_t *a = f->c.done;
    pthread_mutex_unlock(&f->c.mu);
    assert_non_null(a);
    return a;
}

/* Waits (bounded) until some stdout has arrived. */
static int wait_output(struct fixture *f)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&f->c.mu);
    while (!f->c.out[1].len) {
        if (pthread_cond_timedwait(&f->c.cv, &f->c.mu, &ts) == ETIMEDOUT) break;
    }
    int ok = f->c.out[1].len > 0;
    pthread_mutex_unlock(&f->c.mu);
    return ok;
}

/* Waits up to ms for pid (our child or reparented orphan) to end; reaps
 * it and returns its wait status, or -1 if it is still alive. */
static int wait_pid_gone(pid_t pid, int ms)
{
    int fd = pidfd_open(pid, 0);
    if (fd < 0) return -2;
    struct pollfd pfd = {fd, POLLIN, 0};
    int r = poll(&pfd, 1, ms);
    if (r != 1) {
        close(fd);
        return -1;
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int st = -3;
    if (waitid(P_PIDFD, (id_t)fd, &si, WEXITED) == 0)
        st = si.si_code == CLD_EXITED ? W_EXITCODE(si.si_status, 0) : si.si_status;
    close(fd);
    return st;
}

/* ---- tests ------------------------------------------------------------- */

static void test_exit_codes(void **state)
{
    struct fixture *f = *state;
    run(f, strv(self_path, "--helper", "exit", "0", NULL), NULL, NULL, 0);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "succeeded");
    assert_int_equal(a->exit_code, 0);
    assert_int_equal(a->signo, 0);
    assert_true(a->pid > 0);
    attempt_free(a);
    f->c.done = NULL;

    run(f, strv(self_path, "--helper", "exit", "3", NULL), NULL, NULL, 0);
    a = wait_done(f);
    assert_string_equal(a->outcome, "failed");
    assert_int_equal(a->exit_code, 3);
    assert_int_equal(a->signo, 0);
    assert_null(a->reason);
}

static void test_path_lookup(void **state)
{
    /* argv[0] without a slash is searched in PATH; no shell is involved
     * unless argv asks for one. */
    struct fixture *f = *state;
    run(f, strv("sh", "-c", "exit 7", NULL), NULL, NULL, 0);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "failed");
    assert_int_equal(a->exit_code, 7);
}

static void test_killed_by_signal(void **state)
{
    struct fixture *f = *state;
    run(f, strv(self_path, "--helper", "signal", "10", NULL), NULL, NULL, 0);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "failed");
    assert_int_equal(a->signo, SIGUSR1);
    assert_int_equal(a->exit_code, -1);
}

static void test_output_capture(void **state)
{
    struct fixture *f = *state;
    run(f, strv(self_path, "--helper", "output", NULL), NULL, NULL, 0);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "succeeded");
    assert_string_equal(f->c.out[2].data, "hello-err\n");
    buf_t want = BUF_INIT;
    buf_puts(&want, "hello-out\n");
    for (int i = 0; i < 30000; i++)
        buf_printf(&want, "line %05d\n", i);
    assert_int_equal(f->c.out[1].len, want.len);
    assert_memory_equal(f->c.out[1].data, want.data, want.len);
    buf_free(&want);
    /* 300 KB cannot fit one 64 KiB chunk; seq runs 0,1,2,... */
    assert_true(f->c.chunks >= 5);
    assert_true(f->c.seq_ok);
}

static void test_env(void **state)
{
    /* The job sees the base, its own env and SKED_*; nothing of the
     * worker's environment (its token above all). */
    struct fixture *f = *state;
    setenv("SKED_TEST_INHERITED", "from-worker", 1);
    setenv("SKED_TOKEN", "sked_secret_worker_token", 1);
    spawn_user_t self;
    assert_int_equal(spawn_user_lookup(NULL, &self, NULL, 0), 0);
    char **base = spawn_env_base(&self);
    const char *extra[] = {"JOB_VAR=job",
                           "LANG=de_DE.UTF-8",
                           "SKED_RUN_ID=run_abc",
                           "SKED_ATTEMPT=2",
                           "SKED_FIRE_TIME=2026-01-02T03:04:05Z",
                           "SKED_JOB_ID=job_x",
                           NULL};
    char **env = spawn_env_new((const char *const *)base, extra);
    spawn_env_free(base);
    run(f,
        strv(self_path, "--helper", "env", "SKED_TEST_INHERITED", "SKED_TOKEN", "JOB_VAR", "LANG",
             "PATH", "HOME", "USER", "SKED_RUN_ID", "SKED_ATTEMPT", "SKED_FIRE_TIME", "SKED_JOB_ID",
             NULL),
        env, NULL, 0);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "succeeded");
    char *want = xasprintf("SKED_TEST_INHERITED=(unset)\n"
                           "SKED_TOKEN=(unset)\n"
                           "JOB_VAR=job\n"
                           "LANG=de_DE.UTF-8\n" /* the job's own env overrides the base */
                           "PATH=/usr/local/bin:/usr/bin:/bin\n"
                           "HOME=%s\n"
                           "USER=%s\n"
                           "SKED_RUN_ID=run_abc\n"
                           "SKED_ATTEMPT=2\n"
                           "SKED_FIRE_TIME=2026-01-02T03:04:05Z\n"
                           "SKED_JOB_ID=job_x\n",
                           self.home, self.name);
    assert_string_equal(f->c.out[1].data, want);
    free(want);
    spawn_user_clear(&self);
    unsetenv("SKED_TEST_INHERITED");
    unsetenv("SKED_TOKEN");
}

static void test_env_base(void **state)
{
    /* Exactly the documented base: PATH, HOME, USER, LOGNAME, LANG, TZ. */
    (void)state;
    spawn_user_t u;
    assert_int_equal(spawn_user_lookup("nobody", &u, NULL, 0), 0);
    setenv("TZ", "Europe/Berlin", 1);
    setenv("HTTP_PROXY", "http://proxy.invalid", 1);
    char **env = spawn_env_base(&u);
    const char *want[] = {"PATH=/usr/local/bin:/usr/bin:/bin",
                          "HOME=/nonexistent",
                          "USER=nobody",
                          "LOGNAME=nobody",
                          "LANG=C.UTF-8",
                          "TZ=Europe/Berlin",
                          NULL};
    size_t n = 0;
    for (; env[n]; n++) {
        assert_non_null(want[n]);
        assert_string_equal(env[n], want[n]);
    }
    assert_null(want[n]);
    spawn_env_free(env);
    unsetenv("TZ");
    unsetenv("HTTP_PROXY");
    env = spawn_env_base(&u);
    for (char **e = env; *e; e++)
        assert_true(strncmp(*e, "TZ=", 3) != 0);
    spawn_env_free(env);
    spawn_user_clear(&u);
}

static void test_env_override_once(void **state)
{
    /* A name set twice keeps the last value and appears once, whether the
     * repeats are within extra or between base and extra. */
    (void)state;
    const char *base[] = {"SKED_A=0", "KEEP=1", NULL};
    const char *extra[] = {"SKED_A=1", "SKED_A=2", NULL};
    char **env = spawn_env_new(base, extra);
    int seen = 0, keep = 0;
    for (char **e = env; *e; e++) {
        if (!strncmp(*e, "SKED_A=", 7)) {
            seen++;
            assert_string_equal(*e, "SKED_A=2");
        }
        keep += !strcmp(*e, "KEEP=1");
    }
    assert_int_equal(seen, 1);
    assert_int_equal(keep, 1);
    spawn_env_free(env);
}

static void test_cwd(void **state)
{
    struct fixture *f = *state;
    char dir[] = "/tmp/sked-spawn-XXXXXX";
    assert_non_null(mkdtemp(dir));
    run(f, strv(self_path, "--helper", "pwd", NULL), NULL, dir, 0);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "succeeded");
    char want[64];
    snprintf(want, sizeof want, "%s\n", dir);
    assert_string_equal(f->c.out[1].data, want);
    rmdir(dir);
}

static void test_exec_failure(void **state)
{
    struct fixture *f = *state;
    run(f, strv("/nonexistent/sked-no-such-binary", NULL), NULL, NULL, 0);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "failed");
    assert_string_equal(a->reason, "exec: No such file or directory");
    assert_int_equal(a->pid, 0);
    attempt_free(a);
    f->c.done = NULL;

    run(f, strv("sked-no-such-command-anywhere", NULL), NULL, NULL, 0);
    a = wait_done(f);
    assert_string_equal(a->outcome, "failed");
    assert_string_equal(a->reason, "exec: No such file or directory");
    attempt_free(a);
    f->c.done = NULL;

    run(f, strv(self_path, "--helper", "exit", "0", NULL), NULL, "/nonexistent-dir", 0);
    a = wait_done(f);
    assert_string_equal(a->outcome, "failed");
    assert_string_equal(a->reason, "chdir: No such file or directory");
}

static void test_own_session_and_group(void **state)
{
    struct fixture *f = *state;
    /* The worker ignores SIGPIPE and may block signals; the job must not
     * inherit either. */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    sigset_t set, oldset;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &oldset);
    sup_t *s2 = NULL; /* a supervisor whose thread starts with SIGTERM blocked */
    assert_int_equal(sup_new(&ops, &f->c, 200, NULL, NULL, &s2), 0);
    pthread_sigmask(SIG_SETMASK, &oldset, NULL);
    sup_t *keep = f->sup;
    f->sup = s2;
    run(f, strv(self_path, "--helper", "ids", NULL), NULL, NULL, 0);
    attempt_t *a = wait_done(f);
    f->sup = keep;
    sup_free(s2);
    signal(SIGPIPE, old);
    assert_string_equal(a->outcome, "succeeded");
    int pid = 0, pgid = 0, sid = 0, rd = -1, blocked = -1, ignored = -1;
    assert_int_equal(
        sscanf(f->c.out[1].data, "%d %d %d %d %d %d", &pid, &pgid, &sid, &rd, &blocked, &ignored),
        6);
    assert_int_equal(pid, (int)a->pid);
    assert_int_equal(pgid, pid);
    assert_int_equal(sid, pid);
    assert_int_equal(rd, 0);      /* stdin at EOF */
    assert_int_equal(blocked, 0); /* mask reset */
    assert_int_equal(ignored, 0); /* dispositions reset */
}

static void test_timeout_kills_group(void **state)
{
    struct fixture *f = *state;
    int64_t t0 = clock_mono_ns();
    /* The job ignores SIGTERM, so it takes the SIGKILL after the 200 ms
     * grace; its grandchild must die as well. */
    run(f, strv(self_path, "--helper", "grandchild", "ignore-term", NULL), NULL, NULL, 300);
    attempt_t *a = wait_done(f);
    int64_t took_ms = (clock_mono_ns() - t0) / 1000000;
    assert_string_equal(a->outcome, "timeout");
    assert_string_equal(a->reason, "timeout");
    assert_int_equal(a->signo, SIGKILL);
    assert_true(took_ms >= 480);
    assert_true(took_ms < 5000);
    int gpid = atoi(f->c.out[1].data ? f->c.out[1].data : "0");
    assert_true(gpid > 0);
    int st = wait_pid_gone(gpid, 5000);
    assert_true(st >= 0);
    assert_true(st == SIGTERM || st == SIGKILL);
}

static void test_cancel(void **state)
{
    struct fixture *f = *state;
    /* Canceled before the supervisor started it: never runs. */
    attempt_t *a = attempt_new();
    a->argv = strv(self_path, "--helper", "sleep", NULL);
    atomic_store(&a->stop, ATTEMPT_STOP_CANCEL);
    sup_submit(f->sup, a);
    a = wait_done(f);
    assert_string_equal(a->outcome, "canceled");
    assert_int_equal(a->pid, 0);
    attempt_free(a);
    f->c.done = NULL;

    /* Canceled while running: SIGTERM to the whole group. */
    a = run(f, strv(self_path, "--helper", "grandchild", NULL), NULL, NULL, 0);
    assert_true(wait_output(f));
    atomic_store(&a->stop, ATTEMPT_STOP_CANCEL);
    sup_poke(f->sup);
    a = wait_done(f);
    assert_string_equal(a->outcome, "canceled");
    assert_string_equal(a->reason, "canceled");
    assert_int_equal(a->signo, SIGTERM);
    int gpid = atoi(f->c.out[1].data);
    assert_true(gpid > 0);
    assert_int_equal(wait_pid_gone(gpid, 5000), SIGTERM);
}

static void test_leftovers_killed_on_exit(void **state)
{
    /* A job that leaves a background process behind: the process dies
     * with the job, and the attempt ends (it does not wait on the pipe the
     * leftover holds). */
    struct fixture *f = *state;
    int64_t t0 = clock_mono_ns();
    run(f, strv("/bin/sh", "-c", "sleep 1000 & echo $!", NULL), NULL, NULL, 0);
    attempt_t *a = wait_done(f);
    assert_true((clock_mono_ns() - t0) / 1000000 < 1500);
    assert_string_equal(a->outcome, "succeeded");
    int gpid = atoi(f->c.out[1].data ? f->c.out[1].data : "0");
    assert_true(gpid > 0);
    assert_int_equal(wait_pid_gone(gpid, 5000), SIGKILL);
}

static void test_self_fence(void **state)
{
    struct fixture *f = *state;
    /* Lease 300 ms, heartbeat 10 ms: margin max(20 ms, 60 ms) = 60 ms, so
     * an attempt never renewed is killed ~240 ms after its claim and
     * nothing is reported. */
    sup_set_lease(f->sup, 300, 10);
    int64_t t0 = clock_mono_ns();
    attempt_t *a = run(f, strv(self_path, "--helper", "sleep", NULL), NULL, NULL, 0);
    a = wait_done(f);
    int64_t took_ms = (clock_mono_ns() - t0) / 1000000;
    assert_null(a->outcome);
    assert_int_equal(atomic_load(&a->stop), ATTEMPT_STOP_FENCE);
    assert_int_equal(a->signo, SIGKILL);
    assert_true(took_ms >= 200);
    assert_true(took_ms < 3000);
}

static void test_renewed_lease_not_fenced(void **state)
{
    /* Renewals keep the attempt alive past its first lease. */
    struct fixture *f = *state;
    sup_set_lease(f->sup, 300, 10);
    attempt_t *a = run(f, strv(self_path, "--helper", "sleep", NULL), NULL, NULL, 0);
    int64_t t0 = clock_mono_ns();
    while (clock_mono_ns() - t0 < 600 * 1000000LL) {
        atomic_store(&a->renewed_ns, clock_mono_ns());
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL); /* paces the renewals; not a synchronisation */
    }
    pthread_mutex_lock(&f->c.mu);
    assert_null(f->c.done);
    pthread_mutex_unlock(&f->c.mu);
    atomic_store(&a->stop, ATTEMPT_STOP_CANCEL);
    sup_poke(f->sup);
    a = wait_done(f);
    assert_string_equal(a->outcome, "canceled");
}

static void test_lost_lease_is_killed_at_once(void **state)
{
    /* A 409 says the run may be another worker's already: SIGKILL, not a
     * SIGTERM and a grace during which both would run. */
    struct fixture *f = *state;
    /* It prints once running, and dies of a SIGTERM as of a SIGKILL: the
     * signal it died of tells which came. */
    attempt_t *a = run(f, strv(self_path, "--helper", "grandchild", NULL), NULL, NULL, 0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&f->c.mu);
    while (f->c.chunks == 0 && pthread_cond_timedwait(&f->c.cv, &f->c.mu, &ts) == 0)
        ;
    assert_true(f->c.chunks > 0);
    pthread_mutex_unlock(&f->c.mu);
    atomic_store(&a->stop, ATTEMPT_STOP_LOST);
    sup_poke(f->sup);
    a = wait_done(f);
    assert_null(a->outcome); /* nothing to report: the lease is gone */
    assert_int_equal(a->signo, SIGKILL);
}

static void test_lease_over_on_arrival_is_not_started(void **state)
{
    /* An attempt whose lease ran out before the supervisor got to it (the
     * worker stalled between confirming and starting) never starts, and is
     * reported not started, which gives the run back uncharged. */
    struct fixture *f = *state;
    sup_set_lease(f->sup, 300, 10);
    attempt_t *a = attempt_new();
    snprintf(a->run_id, sizeof a->run_id, "run_late");
    a->n = 1;
    a->argv = strv(self_path, "--helper", "sleep", NULL);
    atomic_store(&a->renewed_ns, clock_mono_ns() - 1000 * 1000000LL); /* a second ago */
    sup_submit(f->sup, a);
    a = wait_done(f);
    assert_string_equal(a->outcome, "not_started");
    assert_int_equal(a->pid, 0); /* no process was ever made */
    assert_non_null(a->reason);
}

/* ---- isolation ------------------------------------------------------- */

/* Replaces the fixture's supervisor with one that isolates attempts: jobs
 * run as run_as (NULL = the test's own user), with lim (copied; NULL =
 * none), in fresh directories under a new temp base when want_base. */
static void isolate(struct fixture *f, const char *run_as, const spawn_limits_t *lim, int want_base)
{
    sup_free(f->sup);
    f->sup = NULL;
    char err[256] = "";
    assert_int_equal(spawn_user_lookup(run_as, &f->user, err, sizeof err), 0);
    f->iso.cred = f->user.switch_ids ? &f->user.cred : NULL;
    if (lim) {
        f->limits = *lim;
        f->iso.limits = &f->limits;
    }
    if (want_base) {
        snprintf(f->base, sizeof f->base, "/tmp/sked-test-work-XXXXXX");
        assert_non_null(mkdtemp(f->base));
        assert_int_equal(spawn_workdir_init(f->base, err, sizeof err), 0);
        f->iso.work_dir = f->base;
    }
    assert_int_equal(sup_new(&ops, &f->c, 200, NULL, &f->iso, &f->sup), 0);
}

/* The one entry of dir (a work dir base), or NULL if it has none; new. */
static char *only_entry(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *found = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        n++;
        found = xasprintf("%s/%s", dir, e->d_name);
    }
    closedir(d);
    assert_true(n <= 1);
    return found;
}

static void test_user_lookup(void **state)
{
    (void)state;
    spawn_user_t u;
    char err[256];
    assert_int_equal(spawn_user_lookup("nobody", &u, err, sizeof err), 0);
    assert_int_equal(u.cred.uid, 65534);
    assert_int_equal(u.cred.gid, 65534);
    assert_string_equal(u.name, "nobody");
    assert_string_equal(u.home, "/nonexistent");
    assert_true(u.cred.ngroups >= 1);
    assert_int_equal(u.cred.groups[0], 65534);
    assert_int_equal(u.switch_ids, 1);
    spawn_user_clear(&u);

    /* Numbers, and a group given by name or number. */
    assert_int_equal(spawn_user_lookup("65534:root", &u, err, sizeof err), 0);
    assert_int_equal(u.cred.uid, 65534);
    assert_int_equal(u.cred.gid, 0);
    assert_string_equal(u.name, "nobody");
    spawn_user_clear(&u);
    assert_int_equal(spawn_user_lookup("nobody:123", &u, err, sizeof err), 0);
    assert_int_equal(u.cred.gid, 123);
    spawn_user_clear(&u);

    /* A uid without a passwd entry: gid the same number, HOME "/". */
    assert_int_equal(spawn_user_lookup("4000123", &u, err, sizeof err), 0);
    assert_int_equal(u.cred.uid, 4000123);
    assert_int_equal(u.cred.gid, 4000123);
    assert_int_equal(u.cred.ngroups, 1);
    assert_string_equal(u.home, "/");
    spawn_user_clear(&u);

    assert_int_equal(spawn_user_lookup("sked-no-such-user", &u, err, sizeof err), SKED_EINVAL);
    assert_string_equal(err, "no such user 'sked-no-such-user'");
    assert_int_equal(spawn_user_lookup("nobody:sked-no-such-group", &u, err, sizeof err),
                     SKED_EINVAL);
    assert_string_equal(err, "no such group 'sked-no-such-group'");
    assert_int_equal(spawn_user_lookup("nobody:", &u, err, sizeof err), SKED_EINVAL);
    assert_int_equal(spawn_user_lookup(":root", &u, err, sizeof err), SKED_EINVAL);

    /* NULL: the worker's own identity, nothing to switch. */
    assert_int_equal(spawn_user_lookup(NULL, &u, err, sizeof err), 0);
    assert_int_equal(u.cred.uid, geteuid());
    assert_int_equal(u.switch_ids, 0);
    spawn_user_clear(&u);
}

static void test_run_as_user(void **state)
{
    struct fixture *f = *state;
    if (geteuid() != 0) {
        /* Not root: changing to another user must be refused, and reported
         * like an exec failure. */
        gid_t g = 65534;
        spawn_cred_t cred = {.uid = 65534, .gid = 65534, .ngroups = 1, .groups = &g};
        char *argv[] = {"/usr/bin/id", NULL};
        spawn_opts_t o = {.argv = argv, .cred = &cred};
        spawn_proc_t p;
        const char *op = NULL;
        assert_int_equal(spawn_start(&o, &p, &op), -EPERM);
        assert_string_equal(op, "setgroups");
        assert_int_equal(p.pid, -1);
        return;
    }
    isolate(f, "nobody", NULL, 1);
    run(f, strv("/bin/sh", "-c", "id -u; id -g; id -G; pwd; stat -c '%u %g %a' .", NULL), NULL,
        NULL, 0);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "succeeded");
    assert_non_null(a->work_dir);
    char *want = xasprintf("65534\n65534\n65534\n%s\n65534 65534 700\n", a->work_dir);
    assert_string_equal(f->c.out[1].data, want);
    free(want);
    /* Named after the attempt, directly under the base. */
    char *prefix = xasprintf("%s/run_test.1-", f->base);
    assert_memory_equal(a->work_dir, prefix, strlen(prefix));
    free(prefix);
}

static void test_identity_failure_reported(void **state)
{
    /* A step of the identity change that fails ends the attempt like an
     * exec failure, naming the step; nothing ran. (More groups than the
     * kernel takes: refused whoever we are.) */
    struct fixture *f = *state;
    sup_free(f->sup);
    size_t n = 70000;
    gid_t *groups = xcalloc(n, sizeof *groups);
    spawn_cred_t cred = {.uid = 65534, .gid = 65534, .ngroups = n, .groups = groups};
    f->iso.cred = &cred;
    assert_int_equal(sup_new(&ops, &f->c, 200, NULL, &f->iso, &f->sup), 0);
    run(f, strv("/bin/sh", "-c", "echo ran", NULL), NULL, NULL, 0);
    attempt_t *a = wait_done(f);
    sup_free(f->sup); /* before cred goes out of scope */
    f->sup = NULL;
    free(groups);
    assert_string_equal(a->outcome, "failed");
    assert_string_equal(a->reason, "setgroups: Invalid argument");
    assert_int_equal(a->pid, 0);
    assert_int_equal(f->c.out[1].len, 0);
}

/* The soft and hard value of one row of /proc/self/limits text. */
static void limit_row(const char *text, const char *row, char *soft, char *hard)
{
    const char *p = strstr(text, row);
    assert_non_null(p);
    assert_int_equal(sscanf(p + strlen(row), "%31s %31s", soft, hard), 2);
}

static void test_rlimits(void **state)
{
    struct fixture *f = *state;
    int root = geteuid() == 0;
    spawn_limits_t lim = {0};
    assert_int_equal(spawn_limits_add(&lim, RLIMIT_CPU, 55), 0);
    assert_int_equal(spawn_limits_add(&lim, RLIMIT_AS, (rlim_t)3 << 30), 0);
    assert_int_equal(spawn_limits_add(&lim, RLIMIT_NOFILE, 77), 0);
    /* NPROC counts every process of the real uid: only with a user of
     * our own (nobody runs nothing else here). */
    if (root) assert_int_equal(spawn_limits_add(&lim, RLIMIT_NPROC, 333), 0);
    isolate(f, root ? "nobody" : NULL, &lim, 1);
    /* The job reports its limits, then tries to raise one. */
    run(f,
        strv("/bin/sh", "-c",
             "cat /proc/self/limits; ulimit -n 78 2>/dev/null && echo raised || echo refused",
             NULL),
        NULL, NULL, 0);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "succeeded");
    const char *out = f->c.out[1].data;
    char soft[32], hard[32];
    limit_row(out, "Max cpu time", soft, hard);
    assert_string_equal(soft, "55");
    assert_string_equal(hard, "55");
    limit_row(out, "Max address space", soft, hard);
    assert_string_equal(soft, "3221225472");
    assert_string_equal(hard, "3221225472");
    limit_row(out, "Max open files", soft, hard);
    assert_string_equal(soft, "77");
    assert_string_equal(hard, "77");
    if (root) {
        limit_row(out, "Max processes", soft, hard);
        assert_string_equal(soft, "333");
        assert_string_equal(hard, "333");
    }
    assert_non_null(strstr(out, "\nrefused\n"));

    /* A full table is an error, not an overflow. */
    spawn_limits_t full = {0};
    for (int i = 0; i < SPAWN_LIMITS_MAX; i++)
        assert_int_equal(spawn_limits_add(&full, RLIMIT_NOFILE, 10), 0);
    assert_int_equal(spawn_limits_add(&full, RLIMIT_NOFILE, 10), SKED_EINVAL);
}

static int path_exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static void test_workdir_removed(void **state)
{
    /* The job litters its directory: nested dirs, an unreadable one, and
     * links to a directory and a file outside. All of it goes when the
     * attempt is freed; what the links point at stays. */
    struct fixture *f = *state;
    char outside[] = "/tmp/sked-test-outside-XXXXXX";
    assert_non_null(mkdtemp(outside));
    char *keep = xasprintf("%s/keep", outside);
    int fd = open(keep, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    isolate(f, geteuid() == 0 ? "nobody" : NULL, NULL, 1);
    char *script = xasprintf("mkdir -p d/e/g && echo x > d/e/f && ln -s %s d/dirlink && "
                             "ln -s %s filelink && chmod 000 d/e && pwd",
                             outside, keep);
    run(f, strv("/bin/sh", "-c", script, NULL), NULL, NULL, 0);
    free(script);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "succeeded");
    char *dir = xstrdup(a->work_dir);
    char *listed = only_entry(f->base);
    assert_non_null(listed);
    assert_string_equal(listed, dir);
    char *pwd = xasprintf("%s\n", dir);
    assert_string_equal(f->c.out[1].data, pwd);
    assert_true(path_exists(dir)); /* until the attempt is freed */
    attempt_free(a);
    f->c.done = NULL;
    assert_false(path_exists(dir));
    char *left = only_entry(f->base);
    assert_null(left);
    assert_true(path_exists(keep));
    assert_true(path_exists(outside));
    unlink(keep);
    rmdir(outside);
    free(keep);
    free(dir);
    free(listed);
    free(pwd);
}

static void test_job_cwd_no_workdir(void **state)
{
    /* A job that names its cwd runs there; no work dir is made. */
    struct fixture *f = *state;
    isolate(f, NULL, NULL, 1);
    run(f, strv("/bin/sh", "-c", "pwd", NULL), NULL, "/", 0);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "succeeded");
    assert_string_equal(f->c.out[1].data, "/\n");
    assert_null(a->work_dir);
    assert_null(only_entry(f->base));
}

static void test_tree_remove(void **state)
{
    (void)state;
    char top[] = "/tmp/sked-test-tree-XXXXXX";
    assert_non_null(mkdtemp(top));
    /* 300 levels: deeper than the removal descends (it stops and says so,
     * rather than running out of fds); 100 levels: removed completely. */
    buf_t b = BUF_INIT;
    buf_puts(&b, top);
    for (int i = 0; i < 100; i++) {
        buf_puts(&b, "/d");
        assert_int_equal(mkdir(b.data, 0700), 0);
    }
    char *file = xasprintf("%s/f", b.data);
    int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    free(file);
    assert_int_equal(spawn_tree_remove(top), 0);
    assert_false(path_exists(top));
    assert_int_equal(spawn_tree_remove(top), 0); /* already gone: fine */

    assert_non_null(mkdtemp(strcpy(top, "/tmp/sked-test-tree-XXXXXX")));
    b.len = 0;
    buf_puts(&b, top);
    for (int i = 0; i < 300; i++) {
        buf_puts(&b, "/d");
        assert_int_equal(mkdir(b.data, 0700), 0);
    }
    assert_int_equal(spawn_tree_remove(top), -ELOOP);
    assert_true(path_exists(top));
    buf_free(&b);
    /* Clean up with a plain tool: the limit is the removal's, not ours. */
    char *cmd = xasprintf("rm -rf '%s'", top);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static void test_workdir_init_checks(void **state)
{
    (void)state;
    char err[512];
    char top[] = "/tmp/sked-test-init-XXXXXX";
    assert_non_null(mkdtemp(top));

    /* Missing parents are made; the base ends up 0711. */
    char *base = xasprintf("%s/a/b/work", top);
    assert_int_equal(spawn_workdir_init(base, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(lstat(base, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0711);
    /* An existing 0700 base gets its x bits, so run-as users get through. */
    assert_int_equal(chmod(base, 0700), 0);
    assert_int_equal(spawn_workdir_init(base, err, sizeof err), 0);
    assert_int_equal(lstat(base, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0711);

    /* Writable by others: someone could swap attempt dirs. */
    assert_int_equal(chmod(base, 0777), 0);
    assert_int_equal(spawn_workdir_init(base, err, sizeof err), SKED_EINVAL);
    assert_non_null(strstr(err, "writable by no one else"));
    assert_int_equal(chmod(base, 0711), 0);

    /* A symlink planted where the base should be. */
    char *link = xasprintf("%s/link", top);
    assert_int_equal(symlink(base, link), 0);
    assert_int_equal(spawn_workdir_init(link, err, sizeof err), SKED_EINVAL);
    assert_non_null(strstr(err, "not a directory"));

    /* Owned by someone else (only root can arrange that). */
    if (geteuid() == 0) {
        assert_int_equal(chown(base, 65534, 65534), 0);
        assert_int_equal(spawn_workdir_init(base, err, sizeof err), SKED_EINVAL);
        assert_non_null(strstr(err, "must be owned by the worker"));
    }
    assert_int_equal(spawn_workdir_init("relative/dir", err, sizeof err), SKED_EINVAL);

    assert_int_equal(spawn_tree_remove(top), 0);
    free(base);
    free(link);
}

/* ---- secret env values (core/jobspec.c) ------------------------------- */

static json_t *jload(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    return j;
}

static void test_secret_env(void **state)
{
    (void)state;
    json_t *doc = jload("{\"name\": \"s\", \"command\": [\"true\"],"
                        " \"env\": {\"A\": \"x\", \"B\": {\"secret\": \"hunter2\"}}}");
    jobspec_t spec;
    jobspec_error_t err;
    assert_int_equal(jobspec_parse(doc, &spec, &err), 0);
    assert_int_equal(spec.envc, 2);
    assert_string_equal(spec.env[0], "A=x");
    assert_false(spec.env_secret[0]);
    assert_string_equal(spec.env[1], "B=hunter2"); /* the job gets the value */
    assert_true(spec.env_secret[1]);

    /* The canonical document keeps the value (the worker needs it) and
     * the marking; it parses back to the same thing. */
    json_t *canon = jobspec_to_json(&spec);
    char *env = json_dumps(json_object_get(canon, "env"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(env, "{\"A\":\"x\",\"B\":{\"secret\":\"hunter2\"}}");
    free(env);
    jobspec_t again;
    assert_int_equal(jobspec_parse(canon, &again, &err), 0);
    assert_true(again.env_secret[1]);
    jobspec_free(&again);

    /* What everyone else sees. */
    json_t *red = jobspec_redact(canon);
    env = json_dumps(json_object_get(red, "env"), JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(env, "{\"A\":\"x\",\"B\":{\"secret\":\"***\"}}");
    free(env);
    char *all = json_dumps(red, JSON_COMPACT);
    assert_null(strstr(all, "hunter2"));
    free(all);
    /* The original is untouched. */
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(canon, "env"), "B"), "secret")),
                        "hunter2");

    /* A document read back and PATCHed with its masked secret keeps it;
     * a new value replaces it; a plain string un-secrets it. */
    json_t *merged = NULL;
    jobspec_t patched;
    json_t *patch = jload("{\"env\": {\"A\": \"y\", \"B\": {\"secret\": \"***\"}}}");
    assert_int_equal(jobspec_patch(canon, patch, &merged, &patched, &err), 0);
    assert_string_equal(patched.env[0], "A=y");
    assert_string_equal(patched.env[1], "B=hunter2");
    assert_true(patched.env_secret[1]);
    jobspec_free(&patched);
    json_decref(merged);
    json_decref(patch);
    patch = jload("{\"env\": {\"B\": {\"secret\": \"new\"}}}");
    assert_int_equal(jobspec_patch(canon, patch, &merged, &patched, &err), 0);
    assert_string_equal(patched.env[1], "B=new");
    assert_true(patched.env_secret[1]);
    jobspec_free(&patched);
    json_decref(merged);
    json_decref(patch);
    patch = jload("{\"env\": {\"B\": \"plain\"}}");
    assert_int_equal(jobspec_patch(canon, patch, &merged, &patched, &err), 0);
    assert_string_equal(patched.env[1], "B=plain");
    assert_false(patched.env_secret[1]);
    jobspec_free(&patched);
    json_decref(merged);
    json_decref(patch);

    /* Refused: the mask as a new value; malformed secret objects. */
    static const char *const bad[][2] = {
        {"{\"name\":\"s\",\"command\":[\"true\"],\"env\":{\"C\":{\"secret\":\"***\"}}}",
         "env.C.secret"},
        {"{\"name\":\"s\",\"command\":[\"true\"],\"env\":{\"C\":{\"secret\":1}}}", "env.C.secret"},
        {"{\"name\":\"s\",\"command\":[\"true\"],\"env\":{\"C\":{\"value\":\"x\"}}}", "env.C"},
        {"{\"name\":\"s\",\"command\":[\"true\"],\"env\":{\"C\":{\"secret\":\"x\",\"y\":1}}}",
         "env.C"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *d = jload(bad[i][0]);
        jobspec_t s2;
        assert_int_equal(jobspec_parse(d, &s2, &err), SKED_EINVAL);
        assert_string_equal(err.field, bad[i][1]);
        json_decref(d);
    }
    /* A PATCH setting the mask on a variable that was no secret is refused. */
    patch = jload("{\"env\": {\"A\": {\"secret\": \"***\"}}}");
    assert_int_equal(jobspec_patch(canon, patch, &merged, &patched, &err), SKED_EINVAL);
    assert_string_equal(err.field, "env.A.secret");
    json_decref(patch);

    json_decref(red);
    json_decref(canon);
    json_decref(doc);
    jobspec_free(&spec);
}

/* Forks a process that plays the worker: play(report_fd) tells the test
 * what it did through the pipe and never returns. Returns its pid; *rfd is
 * the pipe's read end (see read_ints). */
static pid_t fork_fake_worker(void (*play)(int report_fd), int *rfd)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t fake = fork();
    assert_true(fake >= 0);
    if (fake == 0) {
        close(pfd[0]);
        play(pfd[1]);
        _exit(99);
    }
    close(pfd[1]);
    *rfd = pfd[0];
    return fake;
}

/* Reads n ints a fake worker reported, waiting up to 10 s for them. */
static void read_ints(int fd, int *v, size_t n)
{
    struct pollfd q = {fd, POLLIN, 0};
    assert_int_equal(poll(&q, 1, 10000), 1);
    assert_int_equal(read(fd, v, n * sizeof *v), (ssize_t)(n * sizeof *v));
}

/* Starts the watcher, spawns a job with a grandchild and reports the job,
 * grandchild and watcher pids; then waits to be SIGKILLed. */
static void orphan_worker(int report_fd)
{
    spawn_watcher_t w;
    if (spawn_watcher_start(&w) != 0) _exit(10);
    char *argv[] = {self_path, "--helper", "grandchild", NULL};
    spawn_opts_t o = {.argv = argv, .envp = environ};
    spawn_proc_t p;
    if (spawn_start(&o, &p, NULL) != 0) _exit(11);
    if (spawn_watcher_add(&w, p.pid) != 0) _exit(12);
    struct pollfd q = {p.out_fd, POLLIN, 0};
    if (poll(&q, 1, 10000) != 1) _exit(13);
    char line[32] = "";
    ssize_t r = read(p.out_fd, line, sizeof line - 1);
    if (r <= 0) _exit(14);
    int pids[3] = {(int)p.pid, atoi(line), (int)w.pid};
    if (write(report_fd, pids, sizeof pids) != (ssize_t)sizeof pids) _exit(15);
    pause_forever();
}

/* The watcher test: a forked process plays the worker, starts the watcher,
 * spawns a job with a grandchild, and is SIGKILLed. */
static void test_watcher_kills_orphans(void **state)
{
    int rfd;
    pid_t fake = fork_fake_worker(orphan_worker, &rfd);
    int pids[3] = {0, 0, 0};
    read_ints(rfd, pids, 3);
    close(rfd);
    assert_true(pids[0] > 0 && pids[1] > 0 && pids[2] > 0);
    /* Alive before the worker dies (the check can fail). */
    assert_int_equal(wait_pid_gone(pids[1], 0), -1);

    assert_int_equal(kill(fake, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(fake, &st, 0), fake);
    /* The job dies of PDEATHSIG, the grandchild of the watcher's SIGKILL,
     * and the watcher exits; all three are reparented to us. The job goes
     * first: until it is gone the grandchild is its child, not ours. */
    assert_int_equal(wait_pid_gone(pids[0], 5000), SIGKILL);
    assert_int_equal(wait_pid_gone(pids[1], 5000), SIGKILL);
    assert_int_equal(wait_pid_gone(pids[2], 5000), 0);
}

static void test_watcher_forgets_removed_groups(void **state)
{
    /* A group removed from the list is not killed when the pipe closes. */
    spawn_watcher_t w;
    assert_int_equal(spawn_watcher_start(&w), 0);
    char *argv[] = {self_path, "--helper", "sleep", NULL};
    spawn_opts_t o = {.argv = argv, .envp = environ};
    spawn_proc_t a, b;
    assert_int_equal(spawn_start(&o, &a, NULL), 0);
    assert_int_equal(spawn_start(&o, &b, NULL), 0);
    assert_int_equal(spawn_watcher_add(&w, a.pid), 0);
    assert_int_equal(spawn_watcher_add(&w, b.pid), 0);
    assert_int_equal(spawn_watcher_remove(&w, b.pid), 0);
    spawn_watcher_stop(&w); /* EOF: the watcher kills a's group and exits */
    int code, sig;
    assert_int_equal(spawn_wait(&a, &code, &sig), 0);
    assert_int_equal(sig, SIGKILL);
    struct pollfd q = {b.pidfd, POLLIN, 0};
    assert_int_equal(poll(&q, 1, 0), 0); /* b still runs */
    kill(b.pid, SIGKILL);
    assert_int_equal(spawn_wait(&b, &code, &sig), 0);
    spawn_close(&a);
    spawn_close(&b);
}

/* Waits up to ms for pid (any process, not necessarily our child) to
 * exit; 1 if it did (a zombie counts), 0 if it still runs. */
static int pid_exits_within(pid_t pid, int ms)
{
    int fd = pidfd_open(pid, 0);
    if (fd < 0) return errno == ESRCH;
    struct pollfd q = {fd, POLLIN, 0};
    int r;
    do
        r = poll(&q, 1, ms);
    while (r < 0 && errno == EINTR);
    close(fd);
    return r == 1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void test_watcher_deadline(void **state)
{
    /* The watcher kills a group when its deadline passes, on its own; a
     * deadline moved on in time, cleared, or of a group forgotten does
     * not fire. */
    spawn_watcher_t w;
    assert_int_equal(spawn_watcher_start(&w), 0);
    char *argv[] = {self_path, "--helper", "sleep", NULL};
    spawn_opts_t o = {.argv = argv, .envp = environ};
    spawn_proc_t due, renewed, cleared, forgotten;
    spawn_proc_t *all[] = {&due, &renewed, &cleared, &forgotten};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(spawn_start(&o, all[i], NULL), 0);
        assert_int_equal(spawn_watcher_add(&w, all[i]->pid), 0);
    }
    int64_t t0 = clock_mono_ns(), ms = 1000000;
    for (int i = 0; i < 4; i++)
        assert_int_equal(spawn_watcher_deadline(&w, all[i]->pid, t0 + 500 * ms), 0);
    assert_int_equal(spawn_watcher_deadline(&w, cleared.pid, 0), 0);
    assert_int_equal(spawn_watcher_remove(&w, forgotten.pid), 0);
    /* Renewals every 50 ms for 1.2 s, each 500 ms ahead. */
    while (clock_mono_ns() - t0 < 1200 * ms) {
        assert_int_equal(spawn_watcher_deadline(&w, renewed.pid, clock_mono_ns() + 500 * ms), 0);
        sleep_ms(50);
    }
    struct pollfd q = {due.pidfd, POLLIN, 0};
    assert_int_equal(poll(&q, 1, 5000), 1);
    int code, sig;
    assert_int_equal(spawn_wait(&due, &code, &sig), 0);
    assert_int_equal(sig, SIGKILL);
    for (int i = 1; i < 4; i++) {
        q.fd = all[i]->pidfd;
        assert_int_equal(poll(&q, 1, 0), 0); /* still runs */
    }
    /* Left alone, the renewed one falls due too. */
    q.fd = renewed.pidfd;
    assert_int_equal(poll(&q, 1, 5000), 1);
    assert_int_equal(spawn_wait(&renewed, &code, &sig), 0);
    assert_int_equal(sig, SIGKILL);
    assert_int_equal(spawn_watcher_flush(&w), 0); /* nothing was left queued */
    spawn_watcher_stop(&w); /* EOF kills the cleared one, not the forgotten one */
    assert_int_equal(spawn_wait(&cleared, &code, &sig), 0);
    assert_int_equal(sig, SIGKILL);
    q.fd = forgotten.pidfd;
    assert_int_equal(poll(&q, 1, 200), 0);
    kill(forgotten.pid, SIGKILL);
    assert_int_equal(spawn_wait(&forgotten, &code, &sig), 0);
    for (int i = 0; i < 4; i++)
        spawn_close(all[i]);
}

/* The worker that lease_worker plays (test_watcher_fences_stopped_worker). */
struct fake {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    attempt_t *a;    /* the running attempt, for the renewal thread */
    attempt_t *done; /* the finished one */
    int report_fd;
};

static void fake_chunk(void *arg, attempt_t *a, int stream, int64_t seq, char *data, size_t len)
{
    /* The job's first line is its grandchild's pid: pass it on. */
    struct fake *f = arg;
    if (stream == 1 && seq == 0) {
        int pids[2] = {(int)a->pid, atoi(data)};
        if (write(f->report_fd, pids, sizeof pids) != (ssize_t)sizeof pids) _exit(20);
    }
    free(data);
}

static void fake_done(void *arg, attempt_t *a)
{
    struct fake *f = arg;
    pthread_mutex_lock(&f->mu);
    f->done = a;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static void *fake_renew(void *arg)
{
    /* The heartbeat thread: renews the lease every 20 ms until the end,
     * or for 10 s at most, so that a test failing before it thaws the
     * fake worker still sees it end (by the supervisor's own fence). */
    struct fake *f = arg;
    int64_t t0 = clock_mono_ns();
    for (;;) {
        pthread_mutex_lock(&f->mu);
        int over = f->done != NULL;
        pthread_mutex_unlock(&f->mu);
        if (over || clock_mono_ns() - t0 > 10000 * 1000000LL) return NULL;
        atomic_store(&f->a->renewed_ns, clock_mono_ns());
        sleep_ms(20);
    }
}

/* Plays the worker: a watcher, a supervisor with a 1 s lease, one job
 * with a grandchild whose lease a thread keeps renewing. Reports the
 * job's and grandchild's pids, then, once the attempt ends, whether it
 * ended fenced with nothing to report. */
static void lease_worker(int report_fd)
{
    static const sup_ops_t fops = {fake_chunk, fake_done};
    struct fake f = {.report_fd = report_fd};
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cv, NULL);
    spawn_watcher_t w;
    sup_t *sup = NULL;
    pthread_t renew;
    if (spawn_watcher_start(&w) != 0) _exit(10);
    if (sup_new(&fops, &f, 200, &w, NULL, &sup) != 0) _exit(11);
    /* Lease 1 s, heartbeat 10 ms: margin 200 ms, so the supervisor would
     * fence 800 ms after the last renewal, the watcher 100 ms later. */
    sup_set_lease(sup, 1000, 10);
    f.a = attempt_new();
    snprintf(f.a->run_id, sizeof f.a->run_id, "run_frozen");
    f.a->n = 1;
    f.a->argv = strv(self_path, "--helper", "grandchild", NULL);
    atomic_store(&f.a->renewed_ns, clock_mono_ns());
    if (pthread_create(&renew, NULL, fake_renew, &f) != 0) _exit(12);
    sup_submit(sup, f.a);
    pthread_mutex_lock(&f.mu);
    while (!f.done)
        pthread_cond_wait(&f.cv, &f.mu);
    pthread_mutex_unlock(&f.mu);
    int res[2] = {f.done->outcome == NULL, atomic_load(&f.done->stop)};
    if (write(report_fd, res, sizeof res) != (ssize_t)sizeof res) _exit(13);
    pthread_join(renew, NULL);
    sup_free(sup);
    attempt_free(f.done);
    spawn_watcher_stop(&w);
    _exit(0);
}

static void test_watcher_fences_stopped_worker(void **state)
{
    /* A stopped worker cannot fence with its own threads: its watcher
     * kills the attempt's whole group when the lease deadline passes.
     * While renewals arrive, nothing is killed. */
    int rfd;
    pid_t fake = fork_fake_worker(lease_worker, &rfd);
    int pids[2] = {0, 0};
    read_ints(rfd, pids, 2);
    assert_true(pids[0] > 0 && pids[1] > 0);

    /* Renewed: alive well past the 1 s lease. */
    assert_int_equal(pid_exits_within(pids[0], 2000), 0);
    assert_int_equal(pid_exits_within(pids[1], 0), 0);

    assert_int_equal(kill(fake, SIGSTOP), 0);
    int64_t t_stop = clock_mono_ns();
    /* Fenced by the watcher: the job within lease - margin + slack (900
     * ms) of the last renewal, and its grandchild with it. The worker
     * cannot reap them while stopped; exited is enough. */
    int died = pid_exits_within(pids[0], 5000);
    int64_t took_ms = (clock_mono_ns() - t_stop) / 1000000;
    int gone = pid_exits_within(pids[1], 1000);
    assert_int_equal(kill(fake, SIGCONT), 0);
    assert_true(died);
    assert_true(gone);
    assert_true(took_ms < 1500);

    /* Thawed, the supervisor sees the watcher's fence: nothing to report. */
    int res[2] = {0, 0};
    read_ints(rfd, res, 2);
    close(rfd);
    int st;
    assert_int_equal(waitpid(fake, &st, 0), fake);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(res[0], 1);
    assert_int_equal(res[1], ATTEMPT_STOP_FENCE);
    /* The grandchild was reparented to us (the subreaper): reap it. */
    wait_pid_gone(pids[1], 1000);
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--helper")) return helper(argc, argv);
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n <= 0) return 1;
    self_path[n] = '\0';
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_by_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_capture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env, setup, teardown),
        cmocka_unit_test(test_env_base),
        cmocka_unit_test(test_env_override_once),
        cmocka_unit_test_setup_teardown(test_cwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_session_and_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kills_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_killed_on_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_fence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewed_lease_not_fenced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_lease_is_killed_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_over_on_arrival_is_not_started, setup, teardown),
        cmocka_unit_test(test_watcher_kills_orphans),
        cmocka_unit_test(test_watcher_forgets_removed_groups),
        cmocka_unit_test(test_watcher_deadline),
        cmocka_unit_test(test_watcher_fences_stopped_worker),
        cmocka_unit_test(test_user_lookup),
        cmocka_unit_test_setup_teardown(test_run_as_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_failure_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rlimits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workdir_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_job_cwd_no_workdir, setup, teardown),
        cmocka_unit_test(test_tree_remove),
        cmocka_unit_test(test_workdir_init_checks),
        cmocka_unit_test(test_secret_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
