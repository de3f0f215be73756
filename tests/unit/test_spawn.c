/*
 * Unit tests for the worker's process handling (worker/spawn.c and
 * worker/supervise.c): real processes, with this test binary re-executed
 * as the job in a helper mode (libuv's spawn_helper): exit codes, signals,
 * stdout/stderr capture, the SKED_* environment, cwd, exec failures, the
 * attempt's own session and process group, timeouts and cancels that kill
 * the whole group (grandchildren included), self-fencing, and the orphan
 * watcher killing a grandchild when its worker is SIGKILLed.
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
#include "common/xalloc.h"
#include "worker/spawn.h"
#include "worker/worker_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
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
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    pthread_mutex_init(&f->c.mu, NULL);
    pthread_cond_init(&f->c.cv, NULL);
    f->c.seq_ok = 1;
    if (sup_new(&ops, &f->c, 200, NULL, &f->sup) != 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sup_free(f->sup);
    attempt_free(f->c.done);
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
    struct fixture *f = *state;
    setenv("SKED_TEST_INHERITED", "from-worker", 1);
    setenv("SKED_TEST_OVERRIDDEN", "old", 1);
    const char *extra[] = {"SKED_TEST_OVERRIDDEN=new", "SKED_RUN_ID=run_abc",
                           "SKED_ATTEMPT=2",           "SKED_FIRE_TIME=2026-01-02T03:04:05Z",
                           "SKED_JOB_ID=job_x",        NULL};
    char **env = spawn_env_new(extra);
    run(f,
        strv(self_path, "--helper", "env", "SKED_TEST_INHERITED", "SKED_TEST_OVERRIDDEN",
             "SKED_RUN_ID", "SKED_ATTEMPT", "SKED_FIRE_TIME", "SKED_JOB_ID", NULL),
        env, NULL, 0);
    attempt_t *a = wait_done(f);
    assert_string_equal(a->outcome, "succeeded");
    assert_string_equal(f->c.out[1].data, "SKED_TEST_INHERITED=from-worker\n"
                                          "SKED_TEST_OVERRIDDEN=new\n"
                                          "SKED_RUN_ID=run_abc\n"
                                          "SKED_ATTEMPT=2\n"
                                          "SKED_FIRE_TIME=2026-01-02T03:04:05Z\n"
                                          "SKED_JOB_ID=job_x\n");
    unsetenv("SKED_TEST_INHERITED");
    unsetenv("SKED_TEST_OVERRIDDEN");
}

static void test_env_override_once(void **state)
{
    /* A name set twice in extra keeps the last value and appears once. */
    const char *extra[] = {"SKED_A=1", "SKED_A=2", NULL};
    char **env = spawn_env_new(extra);
    int seen = 0;
    for (char **e = env; *e; e++)
        if (!strncmp(*e, "SKED_A=", 7)) {
            seen++;
            assert_string_equal(*e, "SKED_A=2");
        }
    assert_int_equal(seen, 1);
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
    assert_int_equal(sup_new(&ops, &f->c, 200, NULL, &s2), 0);
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

/* The watcher test: a forked process plays the worker, starts the watcher,
 * spawns a job with a grandchild, and is SIGKILLed. */
static void test_watcher_kills_orphans(void **state)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t fake = fork();
    assert_true(fake >= 0);
    if (fake == 0) {
        close(pfd[0]);
        spawn_watcher_t w;
        if (spawn_watcher_start(&w) != 0) _exit(10);
        char *argv[] = {self_path, "--helper", "grandchild", NULL};
        spawn_opts_t o = {argv, environ, NULL};
        spawn_proc_t p;
        if (spawn_start(&o, &p, NULL) != 0) _exit(11);
        if (spawn_watcher_add(&w, p.pid) != 0) _exit(12);
        struct pollfd q = {p.out_fd, POLLIN, 0};
        if (poll(&q, 1, 10000) != 1) _exit(13);
        char line[32] = "";
        ssize_t r = read(p.out_fd, line, sizeof line - 1);
        if (r <= 0) _exit(14);
        int pids[3] = {(int)p.pid, atoi(line), (int)w.pid};
        if (write(pfd[1], pids, sizeof pids) != (ssize_t)sizeof pids) _exit(15);
        pause_forever();
    }
    close(pfd[1]);
    int pids[3] = {0, 0, 0};
    struct pollfd q = {pfd[0], POLLIN, 0};
    assert_int_equal(poll(&q, 1, 10000), 1);
    assert_int_equal(read(pfd[0], pids, sizeof pids), (ssize_t)sizeof pids);
    close(pfd[0]);
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
    spawn_opts_t o = {argv, environ, NULL};
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
        cmocka_unit_test(test_env_override_once),
        cmocka_unit_test_setup_teardown(test_cwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_session_and_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_kills_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leftovers_killed_on_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_fence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renewed_lease_not_fenced, setup, teardown),
        cmocka_unit_test(test_watcher_kills_orphans),
        cmocka_unit_test(test_watcher_forgets_removed_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
