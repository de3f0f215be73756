/*
 * sked-store-load: the store alone under load, no HTTP: what the hot paths
 * cost in the store itself, so a change to the schema (a trigger, an
 * index) can be measured where it acts. Uses only store.h.
 *
 *     sked-store-load URL [--threads N] [--jobs N] [--batch N]
 *
 * Phase 1, submit: N threads each create --jobs jobs that run now (a job
 * row and a pending run in one durable commit, as POST /v1/jobs makes).
 * Phase 2, dispatch: each thread registers a worker and, until nothing is
 * left, claims up to --batch runs, confirms them (one heartbeat), and
 * completes each (every third one failed, no retry): the claim, the
 * confirmation and the completions are one durable commit each. Prints
 * creates/s and runs/s (claimed, confirmed and completed). URL is
 * "sqlite:PATH" (a fresh file) or a PostgreSQL URL (tests/store/
 * pg_harness.sh exports one as SKED_TEST_PG_URL; add sked_schema=NAME for
 * a fresh schema).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"
#include "store/store.h"

#define T0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */

static store_t *st;
static int njobs = 2000, nthreads = 8, batch = 8;

struct th {
    int t;
    int done;
    int errors;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *submit_main(void *arg)
{
    struct th *t = arg;
    for (int i = 0; i < njobs; i++) {
        store_job_t j;
        memset(&j, 0, sizeof j);
        j.name = xasprintf("load-%d-%d", t->t, i);
        j.queue = xstrdup("default");
        j.spec_json = xasprintf("{\"name\":\"%s\",\"command\":[\"true\"]}", j.name);
        j.constraints = xstrdup("");
        j.tags = xstrdup("");
        j.owner = xstrdup("load");
        j.ns = xstrdup("default");
        j.retry = retry_policy_default();
        if (store_job_create(st, &j, NULL, 0, true, NULL, NULL, T0 + i) == 0)
            t->done++;
        else
            t->errors++;
        store_job_clear(&j);
    }
    return NULL;
}

static void *dispatch_main(void *arg)
{
    struct th *t = arg;
    store_worker_t w;
    memset(&w, 0, sizeof w);
    w.name = xasprintf("load-w%d", t->t);
    w.host = xstrdup("localhost");
    w.queues = xstrdup("default");
    w.labels = xstrdup("");
    w.slots = batch;
    if (store_worker_register(st, &w, NULL, T0) != 0) {
        t->errors++;
        store_worker_clear(&w);
        return NULL;
    }
    const store_result_t ok = {ATTEMPT_SUCCEEDED, 0, 0, NULL, NULL, NULL};
    const store_result_t bad = {ATTEMPT_FAILED, 1, 0, "exit status 1", NULL, NULL};
    for (;;) {
        store_claimed_t *v = NULL;
        size_t n = 0;
        int64_t now = T0 + 100000;
        if (store_claim(st, w.id, NULL, batch, 30000, now, &v, &n) != 0) {
            t->errors++;
            break;
        }
        if (n == 0) {
            free(v);
            break;
        }
        store_held_t *h = xcalloc(n, sizeof *h);
        for (size_t i = 0; i < n; i++)
            h[i] = (store_held_t){v[i].run.id, v[i].run.fence, true, false, NULL};
        if (store_heartbeat(st, w.id, NULL, h, n, 30000, now, NULL) != 0) t->errors++;
        for (size_t i = 0; i < n; i++) {
            const store_result_t *res = (t->done + (int)i) % 3 == 2 ? &bad : &ok;
            if (store_complete(st, v[i].run.id, v[i].run.attempt, v[i].run.fence, NULL, res, now) ==
                0)
                t->done++;
            else
                t->errors++;
            store_claimed_clear(&v[i]);
        }
        free(h);
        free(v);
    }
    store_worker_clear(&w);
    return NULL;
}

static double phase(void *(*fn)(void *), int *done, int *errors)
{
    pthread_t th[64];
    struct th t[64];
    double t0 = now_s();
    for (int i = 0; i < nthreads; i++) {
        t[i] = (struct th){i, 0, 0};
        pthread_create(&th[i], NULL, fn, &t[i]);
    }
    *done = *errors = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(th[i], NULL);
        *done += t[i].done;
        *errors += t[i].errors;
    }
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
            njobs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !url)
            url = argv[i];
        else {
            fprintf(stderr, "usage: %s URL [--threads N] [--jobs N] [--batch N]\n", argv[0]);
            return 2;
        }
    }
    if (!url || nthreads < 1 || nthreads > 64 || njobs < 1 || batch < 1) {
        fprintf(stderr, "usage: %s URL [--threads 1..64] [--jobs N] [--batch N]\n", argv[0]);
        return 2;
    }
    char *err = NULL;
    if (store_open(url, &st, &err) != 0) {
        fprintf(stderr, "store_open(%s): %s\n", url, err ? err : "?");
        free(err);
        return 1;
    }
    int done, errors;
    double s = phase(submit_main, &done, &errors);
    printf("submit:   %d threads x %d jobs: %d created in %.2f s = %.0f /s (%d errors)\n", nthreads,
           njobs, done, s, done / s, errors);
    int total = done;
    s = phase(dispatch_main, &done, &errors);
    printf("dispatch: claim %d + confirm + complete: %d runs in %.2f s = %.0f /s (%d errors)\n",
           batch, done, s, done / s, errors);
    store_close(st);
    return done == total && errors == 0 ? 0 : 1;
}
