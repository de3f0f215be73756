/*
 * Plugin hosts under the supervisor (sup_plugin.c, plugin_host.c): real
 * `sked plugin-host` processes running the test plugin misbehave.so, driven
 * the way the worker drives them. What a plugin does to its host — crash,
 * hang, ignore a cancel, freeze — must cost only the attempts that host was
 * running, with the reason the issue names, and the next attempt must run
 * on a fresh host. A plugin of a newer ABI must never run any code.
 */
#include "common/buf.h"
#include "common/clock.h"
#include "common/plugin_manifest.h"
#include "common/xalloc.h"
#include "worker/worker_int.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef SKED_EXE
#error SKED_EXE: the sked binary
#endif
#ifndef TEST_PLUGIN_DIR
#error TEST_PLUGIN_DIR: where the test plugins are built
#endif

#define MAXA 64

struct collect {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    attempt_t *done[MAXA]; /* finished attempts, owned by the test */
    int ndone;
    buf_t out; /* every attempt's output */
};

static void on_chunk(void *arg, attempt_t *a, int stream, int64_t seq, char *data, size_t len)
{
    struct collect *c = arg;
    (void)a;
    (void)stream;
    (void)seq;
    pthread_mutex_lock(&c->mu);
    buf_append(&c->out, data, len);
    pthread_mutex_unlock(&c->mu);
    free(data);
}

static void on_done(void *arg, attempt_t *a)
{
    struct collect *c = arg;
    pthread_mutex_lock(&c->mu);
    if (c->ndone < MAXA) c->done[c->ndone++] = a;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static const sup_ops_t ops = {on_chunk, on_done};

struct fixture {
    struct collect c;
    sup_t *sup;
    sup_plugin_def_t defs[2];
    sup_plugins_t pl;
    sup_isolation_t iso;
    char base[64];
    int next;
};

static struct fixture *fixture_new(int64_t grace_ms, int64_t hang_ms)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    pthread_mutex_init(&f->c.mu, NULL);
    pthread_cond_init(&f->c.cv, NULL);
    snprintf(f->base, sizeof f->base, "/tmp/sked-phost-XXXXXX");
    assert_non_null(mkdtemp(f->base));
    f->defs[0] = (sup_plugin_def_t){"misbehave", TEST_PLUGIN_DIR "/misbehave.so"};
    f->defs[1] = (sup_plugin_def_t){"future_abi", TEST_PLUGIN_DIR "/future_abi.so"};
    static char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    f->pl =
        (sup_plugins_t){.defs = f->defs, .n = 2, .exe = SKED_EXE, .envp = envp, .hang_ms = hang_ms};
    f->iso.plugins = &f->pl;
    assert_int_equal(sup_new(&ops, &f->c, grace_ms, NULL, &f->iso, &f->sup), 0);
    return f;
}

static void fixture_free(struct fixture *f)
{
    sup_free(f->sup);
    for (int i = 0; i < f->c.ndone; i++)
        attempt_free(f->c.done[i]);
    buf_free(&f->c.out);
    spawn_tree_remove(f->base);
    pthread_mutex_destroy(&f->c.mu);
    pthread_cond_destroy(&f->c.cv);
    free(f);
}

/* Submits an attempt of type (misbehave by default) with config doc. */
static attempt_t *submit(struct fixture *f, const char *type, const char *config,
                         int64_t timeout_ms)
{
    attempt_t *a = attempt_new();
    snprintf(a->run_id, sizeof a->run_id, "run_%d", ++f->next);
    a->n = 1;
    a->timeout_ms = timeout_ms;
    a->plugin = xstrdup(type ? type : "misbehave");
    char **env = NULL;
    char prefix[SKED_ID_LEN + 8];
    snprintf(prefix, sizeof prefix, "%s.io", a->run_id);
    assert_int_equal(results_dir_new(f->base, prefix, NULL, NULL, 0, NULL, &a->io_dir, &env), 0);
    spawn_env_free(env);
    /* As the worker writes it (the supervisor adds deadline_ms). */
    a->start_json = xasprintf("{\"config\":%s,\"env\":[\"SKED_RUN_ID=%s\"],\"io_dir\":\"%s\"}",
                              config, a->run_id, a->io_dir);
    atomic_store(&a->renewed_ns, clock_mono_ns());
    sup_submit(f->sup, a);
    return a;
}

/* Waits (bounded) until n attempts are done. */
static void wait_n(struct fixture *f, int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&f->c.mu);
    while (f->c.ndone < n)
        if (pthread_cond_timedwait(&f->c.cv, &f->c.mu, &ts) == ETIMEDOUT) break;
    int got = f->c.ndone;
    pthread_mutex_unlock(&f->c.mu);
    assert_int_equal(got, n);
}

/* The finished attempt of run_id, or a failed test. */
static attempt_t *done_id(struct fixture *f, const char *run_id)
{
    for (int i = 0; i < f->c.ndone; i++)
        if (!strcmp(f->c.done[i]->run_id, run_id)) return f->c.done[i];
    fail_msg("run %s is not done", run_id);
    return NULL;
}

static char *slurp(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "r");
    if (!fp) return NULL;
    char *s = xcalloc(1, 4096);
    size_t n = fread(s, 1, 4095, fp);
    s[n] = '\0';
    fclose(fp);
    return s;
}

/* The pids of live `sked plugin-host --type type` processes that are our
 * children's. */
static int host_pids(const char *type, pid_t *out, int max)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0) continue;
        char path[64], buf[4096];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *fp = fopen(path, "r");
        if (!fp) continue;
        int ppid = 0;
        char st;
        int ok = fscanf(fp, "%*d %*s %c %d", &st, &ppid) == 2;
        fclose(fp);
        if (!ok || ppid != getpid() || st == 'Z') continue;
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
        fp = fopen(path, "r");
        if (!fp) continue;
        size_t len = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[len] = '\0';
        int is_host = 0, is_type = 0;
        for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
            if (!strcmp(buf + i, "plugin-host")) is_host = 1;
            if (!strcmp(buf + i, type)) is_type = 1;
        }
        if (is_host && is_type) out[n++] = pid;
    }
    if (d) closedir(d);
    return n;
}

static void wait_host(const char *type, pid_t *pid)
{
    for (int i = 0; i < 3000; i++) {
        if (host_pids(type, pid, 1) == 1) return;
        usleep(10000);
    }
    fail_msg("no plugin host of type %s", type);
}

/* ---- tests --------------------------------------------------------------- */

static void test_runs_many_without_forking(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(200, 5000);
    pid_t before;
    attempt_t *a = submit(f, NULL, "{\"do\":\"checkpoint\",\"data\":\"cp1\"}", 0);
    char id[SKED_ID_LEN];
    snprintf(id, sizeof id, "%s", a->run_id);
    wait_n(f, 1);
    wait_host("misbehave", &before);
    attempt_t *d = done_id(f, id);
    assert_string_equal(d->outcome, "succeeded");
    char *res = slurp(d->io_dir, "result.json");
    assert_non_null(res);
    assert_non_null(strstr(res, "\"checkpoint_in\""));
    free(res);
    char *cp = slurp(d->io_dir, "checkpoint");
    assert_non_null(cp);
    assert_string_equal(cp, "cp1");
    free(cp);
    /* Forty more at once: all in the same host process, none forked. */
    for (int i = 0; i < 40; i++)
        submit(f, NULL, "{\"do\":\"ok\",\"env\":[\"SKED_RUN_ID\"]}", 0);
    wait_n(f, 41);
    for (int i = 0; i < 41; i++)
        assert_string_equal(f->c.done[i]->outcome, "succeeded");
    pid_t after[4];
    assert_int_equal(host_pids("misbehave", after, 4), 1);
    assert_int_equal(after[0], before);
    pthread_mutex_lock(&f->c.mu);
    assert_non_null(strstr(f->c.out.data, "SKED_RUN_ID=run_41"));
    pthread_mutex_unlock(&f->c.mu);
    fixture_free(f);
}

/* Attempts sent together run together: none waits for another to end. */
static void test_concurrent_attempts(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(200, 5000);
    /* A host up and idle first (its pool has a thread waiting), then four
     * attempts of 1.5 s each at once. */
    submit(f, NULL, "{\"do\":\"ok\"}", 0);
    wait_n(f, 1);
    int64_t t0 = clock_mono_ns();
    for (int i = 0; i < 4; i++)
        submit(f, NULL, "{\"do\":\"result\",\"wait_ms\":1500}", 0);
    wait_n(f, 5);
    int64_t took = clock_mono_ns() - t0;
    for (int i = 1; i < 5; i++)
        assert_string_equal(f->c.done[i]->outcome, "succeeded");
    /* One after another would be 6 s. */
    assert_true(took < 4000 * 1000000LL);
    fixture_free(f);
}

static void test_failure_reason(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(200, 5000);
    submit(f, NULL, "{\"do\":\"fail\",\"reason\":\"told to fail\"}", 0);
    wait_n(f, 1);
    assert_string_equal(f->c.done[0]->outcome, "failed");
    assert_string_equal(f->c.done[0]->reason, "told to fail");
    fixture_free(f);
}

/* A crash fails the attempts its host was running, and only those; the
 * next attempt runs on a new host. */
static void test_crash_contained(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(200, 5000);
    submit(f, NULL, "{\"do\":\"result\",\"wait_ms\":5000}", 0);
    pid_t first;
    wait_host("misbehave", &first);
    submit(f, NULL, "{\"do\":\"abort\"}", 0);
    wait_n(f, 2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(f->c.done[i]->outcome, "failed");
        assert_non_null(strstr(f->c.done[i]->reason, "plugin crashed"));
        assert_non_null(strstr(f->c.done[i]->reason, "signal 6"));
    }
    /* A new host comes up after the backoff, before any attempt asks. */
    pid_t second = first;
    for (int i = 0; i < 300 && (second == first || kill(second, 0) < 0); i++) {
        usleep(10000);
        if (host_pids("misbehave", &second, 1) != 1) second = first;
    }
    assert_true(second != first);
    submit(f, NULL, "{\"do\":\"ok\"}", 0);
    wait_n(f, 3);
    assert_string_equal(f->c.done[2]->outcome, "succeeded");
    pid_t third;
    wait_host("misbehave", &third);
    assert_int_equal(third, second); /* it ran there */
    /* exit() from a plugin is a crash too. */
    submit(f, NULL, "{\"do\":\"exit\",\"code\":7}", 0);
    wait_n(f, 4);
    assert_string_equal(f->c.done[3]->outcome, "failed");
    assert_non_null(strstr(f->c.done[3]->reason, "exited with status 7"));
    fixture_free(f);
}

/* A timeout asks the plugin to stop; one that ignores it is killed with
 * its host after the grace: "plugin hung". */
static void test_timeout_hung(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(300, 5000);
    attempt_t *a =
        submit(f, NULL, "{\"do\":\"result\",\"wait_ms\":5000}", 200); /* stops when told */
    char id1[SKED_ID_LEN];
    snprintf(id1, sizeof id1, "%s", a->run_id);
    wait_n(f, 1);
    attempt_t *d = done_id(f, id1);
    assert_string_equal(d->outcome, "timeout");
    int64_t t0 = clock_mono_ns();
    submit(f, NULL, "{\"do\":\"ignore_cancel\"}", 200);
    wait_n(f, 2);
    assert_string_equal(f->c.done[1]->outcome, "timeout");
    assert_non_null(strstr(f->c.done[1]->reason, "plugin hung"));
    /* Killed after the 200 ms timeout plus the 300 ms grace, not before. */
    assert_true(clock_mono_ns() - t0 >= 500 * 1000000LL);
    submit(f, NULL, "{\"do\":\"ok\"}", 0);
    wait_n(f, 3);
    assert_string_equal(f->c.done[2]->outcome, "succeeded");
    fixture_free(f);
}

static void test_cancel(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(5000, 5000);
    attempt_t *a = submit(f, NULL, "{\"do\":\"result\",\"wait_ms\":5000}", 0);
    pid_t pid;
    wait_host("misbehave", &pid);
    usleep(100000);
    int64_t t0 = clock_mono_ns();
    atomic_store(&a->stop, ATTEMPT_STOP_CANCEL);
    sup_poke(f->sup);
    wait_n(f, 1);
    assert_string_equal(f->c.done[0]->outcome, "canceled");
    assert_true(clock_mono_ns() - t0 < 2000 * 1000000LL); /* far below the 5 s sleep */
    fixture_free(f);
}

/* A frozen host answers no ping: killed, its attempts fail "plugin hung". */
static void test_frozen_host(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(200, 700);
    submit(f, NULL, "{\"do\":\"result\",\"wait_ms\":5000}", 0);
    pid_t pid;
    wait_host("misbehave", &pid);
    usleep(100000);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    wait_n(f, 1);
    assert_string_equal(f->c.done[0]->outcome, "failed");
    assert_non_null(strstr(f->c.done[0]->reason, "plugin hung"));
    submit(f, NULL, "{\"do\":\"ok\"}", 0);
    wait_n(f, 2);
    assert_string_equal(f->c.done[1]->outcome, "succeeded");
    fixture_free(f);
}

/* Self-fencing (DESIGN §5.4): an attempt whose lease was not renewed is
 * stopped before the lease ends. A plugin that returns when told keeps its
 * host; one that does not is killed with it, still before the lease ends.
 * Either way nothing is reported: the lease is gone. */
static void test_fenced_before_lease_ends(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2000, 5000);
    sup_set_lease(f->sup, 1000, 100); /* margin 200 ms: fenced 800 ms after the last renewal */
    pid_t host;
    int64_t t0 = clock_mono_ns();
    submit(f, NULL, "{\"do\":\"result\",\"wait_ms\":5000}", 0);
    wait_host("misbehave", &host);
    wait_n(f, 1);
    int64_t took = clock_mono_ns() - t0;
    assert_null(f->c.done[0]->outcome);
    assert_true(took < 1000 * 1000000LL); /* before the lease ended */
    pid_t still;
    assert_int_equal(host_pids("misbehave", &still, 1), 1);
    assert_int_equal(still, host); /* it stopped when told: the host lives on */

    t0 = clock_mono_ns();
    submit(f, NULL, "{\"do\":\"ignore_cancel\"}", 0);
    wait_n(f, 2);
    took = clock_mono_ns() - t0;
    assert_null(f->c.done[1]->outcome);
    assert_true(took < 1000 * 1000000LL);
    assert_int_equal(kill(host, 0), -1); /* killed, and reaped */
    fixture_free(f);
}

/* A plugin built for a newer ABI: refused from its manifest, before any
 * of its code (its constructor makes a file) runs — by the scan and by
 * the host itself. */
static void test_future_abi_refused(void **state)
{
    (void)state;
    unlink(FUTURE_ABI_MARKER);
    plugin_manifest_t m;
    char err[512];
    assert_int_equal(plugin_manifest_read(TEST_PLUGIN_DIR "/future_abi.so", &m, err, sizeof err),
                     -22);
    assert_non_null(strstr(err, "plugin ABI 999"));
    plugin_manifest_t *v;
    size_t n;
    assert_int_equal(plugin_manifest_scan(TEST_PLUGIN_DIR, "test", &v, &n), 0);
    for (size_t i = 0; i < n; i++)
        assert_string_not_equal(v[i].type, "future_abi");
    plugin_manifests_free(v, n);

    struct fixture *f = fixture_new(200, 5000);
    submit(f, "future_abi", "{}", 0);
    wait_n(f, 1);
    assert_string_equal(f->c.done[0]->outcome, "failed");
    assert_non_null(strstr(f->c.done[0]->reason, "plugin ABI 999"));
    fixture_free(f);
    struct stat st;
    assert_int_equal(stat(FUTURE_ABI_MARKER, &st), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_many_without_forking),
        cmocka_unit_test(test_concurrent_attempts),
        cmocka_unit_test(test_failure_reason),
        cmocka_unit_test(test_crash_contained),
        cmocka_unit_test(test_timeout_hung),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_frozen_host),
        cmocka_unit_test(test_fenced_before_lease_ends),
        cmocka_unit_test(test_future_abi_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
