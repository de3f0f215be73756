/*
 * sked-list-load: what the dashboard's lists cost at scale, through the
 * store alone (no HTTP): the first page (50 jobs) of the job list in every
 * sort, and with each filter the Jobs page offers, over --jobs jobs
 * (default 100,000), plus the overview's runs-per-minute count.
 *
 *     sked-list-load URL [--jobs N] [--no-fill]
 *
 * Fills the store with N jobs (8 threads; names in shuffled order, 100
 * priorities, 10 queues, 20 tags, 1 in 100 paused, 1 in 5 with one
 * finished run, spread over a day), unless --no-fill (the store was filled
 * by an earlier run, e.g. by the binary before a migration, to compare).
 * Prints each list's time, the median of 5 calls after one warm-up, and the
 * runs-per-minute count's, the best of 3. A measurement, not a test:
 * nothing is asserted.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/xalloc.h"
#include "store/store.h"

#define T0       INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define NTHREADS 8

static store_t *st;
static int njobs = 100000;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One in five jobs has run once: its run canceled at finished_ms, spread
 * over a day from T0, for the overview's runs-per-minute count. */
static int finish_run(const char *job_id, int64_t finished_ms)
{
    store_run_filter_t f = {
        .job_id = job_id, .since_ms = INT64_MIN, .until_ms = INT64_MAX, .limit = 1};
    store_run_t *v;
    size_t n;
    char *next;
    int rc = store_run_list(st, &f, &v, &n, &next);
    if (rc == 0 && n == 1) rc = store_run_cancel(st, v[0].id, "bench", NULL, finished_ms);
    for (size_t i = 0; i < n; i++)
        store_run_clear(&v[i]);
    free(v);
    free(next);
    return rc;
}

static void *fill_main(void *arg)
{
    int t = (int)(intptr_t)arg, errors = 0;
    for (int i = t; i < njobs; i += NTHREADS) {
        /* A multiplicative shuffle: names are not in creation order. */
        int k = (int)(((int64_t)i * 7919) % njobs);
        store_job_t j;
        memset(&j, 0, sizeof j);
        j.name = xasprintf("job-%06d", k);
        j.queue = xasprintf("q%d", i % 10);
        j.spec_json = xasprintf("{\"name\":\"%s\",\"command\":[\"true\"]}", j.name);
        j.constraints = xstrdup("");
        j.tags = xasprintf(",t%d,", i % 20);
        j.owner = xstrdup("load");
        j.ns = xstrdup(i % 2 ? "team-a" : "default");
        j.priority = i % 100;
        j.retry = retry_policy_default();
        bool run = i % 5 == 0;
        if (store_job_create(st, &j, NULL, 0, run, NULL, NULL, T0 + i / 4) != 0)
            errors++;
        else if (i % 100 == 0 && store_job_set_state(st, j.id, JOB_PAUSED, NULL, T0 + i) != 0)
            errors++;
        else if (run && finish_run(j.id, T0 + (int64_t)(i % 1440) * 60000) != 0)
            errors++;
        store_job_clear(&j);
    }
    return (void *)(intptr_t)errors;
}

static double list_ms(const store_job_filter_t *f, size_t *count)
{
    double t[5];
    for (int r = -1; r < 5; r++) {
        store_job_t *v;
        size_t n;
        char *next;
        double t0 = now_s();
        if (store_job_list(st, f, &v, &n, &next) != 0) {
            fprintf(stderr, "store_job_list failed\n");
            exit(1);
        }
        if (r >= 0) t[r] = (now_s() - t0) * 1e3;
        for (size_t i = 0; i < n; i++)
            store_job_clear(&v[i]);
        free(v);
        free(next);
        *count = n;
    }
    for (int a = 0; a < 5; a++) /* median of five */
        for (int b = a + 1; b < 5; b++)
            if (t[b] < t[a]) {
                double x = t[a];
                t[a] = t[b];
                t[b] = x;
            }
    return t[2];
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    int fill = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
            njobs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-fill"))
            fill = 0;
        else if (argv[i][0] != '-' && !url)
            url = argv[i];
        else
            url = NULL, i = argc;
    }
    if (!url || njobs < 1) {
        fprintf(stderr, "usage: %s URL [--jobs N] [--no-fill]\n", argv[0]);
        return 2;
    }
    char *err = NULL;
    if (store_open(url, &st, &err) != 0) {
        fprintf(stderr, "store_open(%s): %s\n", url, err ? err : "?");
        return 1;
    }
    if (fill) {
        pthread_t th[NTHREADS];
        double t0 = now_s();
        for (int t = 0; t < NTHREADS; t++)
            pthread_create(&th[t], NULL, fill_main, (void *)(intptr_t)t);
        long errors = 0;
        for (int t = 0; t < NTHREADS; t++) {
            void *e;
            pthread_join(th[t], &e);
            errors += (long)(intptr_t)e;
        }
        printf("filled %d jobs in %.1f s (%ld errors)\n", njobs, now_s() - t0, errors);
    }
    static const struct {
        const char *title;
        store_job_filter_t f;
    } cases[] = {
        {"sort=-created", {.sort = JOB_SORT_CREATED_DESC}},
        {"sort=created", {.sort = JOB_SORT_CREATED}},
        {"sort=name", {.sort = JOB_SORT_NAME}},
        {"sort=-name", {.sort = JOB_SORT_NAME_DESC}},
        {"sort=priority", {.sort = JOB_SORT_PRIORITY}},
        {"sort=-priority", {.sort = JOB_SORT_PRIORITY_DESC}},
        {"state=paused (1%)", {.state = "paused"}},
        {"state=paused sort=name", {.state = "paused", .sort = JOB_SORT_NAME}},
        {"queue=q3 (10%)", {.queue = "q3"}},
        {"queue=q3 sort=-priority", {.queue = "q3", .sort = JOB_SORT_PRIORITY_DESC}},
        {"tag=t7 (5%)", {.tag = "t7"}},
        {"name~12345 (1 job)", {.name = "12345"}},
        {"name~nomatch (0 jobs)", {.name = "nomatch"}},
        {"namespace team-a (50%)", {.ns_in = "team-a"}},
        {"queue=nomatch (0 jobs)", {.queue = "nomatch"}},
    };
    printf("%-28s %6s %9s\n", "first page, limit 50", "items", "ms");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        store_job_filter_t f = cases[i].f;
        f.limit = 50;
        size_t n = 0;
        double ms = list_ms(&f, &n);
        printf("%-28s %6zu %9.2f\n", cases[i].title, n, ms);
    }
    static const struct {
        const char *title;
        int64_t from_ms;
        int minutes;
        const char *ns_in;
    } mcases[] = {
        {"run minutes 60", T0 + 1380 * 60000, 60, NULL},
        {"run minutes 60 team-a", T0 + 1380 * 60000, 60, "team-a"},
        {"run minutes 1440", T0, 1440, NULL},
        {"run minutes 1440 team-a", T0, 1440, "team-a"},
    };
    printf("%-28s %6s %9s\n", "runs per minute", "runs", "ms");
    for (size_t i = 0; i < sizeof mcases / sizeof *mcases; i++) {
        static store_run_minute_t m[1440];
        double best = 1e9;
        int64_t total = 0;
        for (int r = 0; r < 3; r++) {
            double t0 = now_s();
            if (store_run_minutes(st, mcases[i].from_ms, mcases[i].minutes, mcases[i].ns_in, m)) {
                fprintf(stderr, "store_run_minutes failed\n");
                return 1;
            }
            double ms = (now_s() - t0) * 1e3;
            best = ms < best ? ms : best;
        }
        for (int k = 0; k < mcases[i].minutes; k++)
            for (int o = 0; o < 4; o++)
                total += m[k].n[o];
        printf("%-28s %6lld %9.2f\n", mcases[i].title, (long long)total, best);
    }
    store_close(st);
    return 0;
}
