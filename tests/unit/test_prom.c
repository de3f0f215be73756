/*
 * Unit tests for the Prometheus primitives (common/prom.h) and the
 * server's exposition (server/metrics.h): where an observation lands
 * (bounds are inclusive, negatives count as 0, the rest goes to +Inf), the
 * rendered buckets (cumulative, in the base unit, "le" as written), exact
 * counts under concurrent recording, the escaping the text format
 * requires, and the families /metrics renders from a real SQLite store:
 * every family has its HELP and TYPE before its samples, HTTP answers are
 * counted by route template (never the raw path), the alert senders'
 * counters move, and the cluster-wide figures are the store's counts.
 * Expected texts are written out here, not produced by the code under
 * test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/prom.h"
#include "common/xalloc.h"
#include "server/http.h"
#include "server/metrics.h"
#include "store/store.h"

/* ---- primitives ---------------------------------------------------------- */

static void test_counter(void **state)
{
    (void)state;
    prom_counter_t c = PROM_COUNTER_INIT;
    assert_int_equal(prom_get(&c), 0);
    prom_inc(&c);
    prom_add(&c, 41);
    assert_int_equal(prom_get(&c), 42);
}

static const int64_t ms_bounds[] = {5, 10, 250};

static void test_hist_buckets_and_render(void **state)
{
    (void)state;
    prom_hist_t h = PROM_HIST_INIT(ms_bounds, 1e3); /* milliseconds, rendered as seconds */
    const int64_t obs[] = {-3, 0, 5, 6, 10, 11, 250, 251, 100000};
    for (size_t i = 0; i < sizeof obs / sizeof *obs; i++)
        prom_observe(&h, obs[i]);
    assert_int_equal(prom_hist_count(&h), 9);
    buf_t b = BUF_INIT;
    prom_hist_write(&b, "x_seconds", NULL, &h);
    /* le=0.005: -3 (as 0), 0, 5; le=0.01: +6, 10; le=0.25: +11, 250; +Inf: all. */
    assert_string_equal(b.data, "x_seconds_bucket{le=\"0.005\"} 3\n"
                                "x_seconds_bucket{le=\"0.01\"} 5\n"
                                "x_seconds_bucket{le=\"0.25\"} 7\n"
                                "x_seconds_bucket{le=\"+Inf\"} 9\n"
                                "x_seconds_sum 100.533\n"
                                "x_seconds_count 9\n");
    buf_free(&b);

    /* With labels: le comes last, after the family member's own. */
    const char *labels[] = {"queue", "q1", NULL};
    prom_hist_t e = PROM_HIST_INIT(ms_bounds, 1e3);
    prom_hist_write(&b, "y_seconds", labels, &e);
    assert_non_null(strstr(b.data, "y_seconds_bucket{queue=\"q1\",le=\"0.005\"} 0\n"));
    assert_non_null(strstr(b.data, "y_seconds_bucket{queue=\"q1\",le=\"+Inf\"} 0\n"));
    assert_non_null(strstr(b.data, "y_seconds_sum{queue=\"q1\"} 0\n"));
    assert_non_null(strstr(b.data, "y_seconds_count{queue=\"q1\"} 0\n"));
    buf_free(&b);
}

#define THREADS 4
#define PER     50000

static const int64_t unit_bounds[] = {1, 2};
static prom_hist_t shared = PROM_HIST_INIT(unit_bounds, 1);
static prom_counter_t shared_c = PROM_COUNTER_INIT;

static void *observer(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER; i++) {
        prom_observe(&shared, i % 3 + 1); /* 1, 2, 3 */
        prom_inc(&shared_c);
    }
    return NULL;
}

/* Concurrent recording loses nothing: the counts are exact. */
static void test_concurrent(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, observer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(prom_get(&shared_c), THREADS * PER);
    assert_int_equal(prom_hist_count(&shared), THREADS * PER);
    buf_t b = BUF_INIT;
    prom_hist_write(&b, "z", NULL, &shared);
    char want[256];
    /* i % 3 + 1 over 50,000 values: 16,667 ones, 16,667 twos, 16,666 threes. */
    snprintf(want, sizeof want,
             "z_bucket{le=\"1\"} %d\nz_bucket{le=\"2\"} %d\nz_bucket{le=\"+Inf\"} %d\n"
             "z_sum %d\nz_count %d\n",
             THREADS * 16667, THREADS * 2 * 16667, THREADS * PER,
             THREADS * (16667 + 2 * 16667 + 3 * 16666), THREADS * PER);
    assert_string_equal(b.data, want);
    buf_free(&b);
}

static void test_escaping(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    prom_family(&b, "a_total", "counter", "back\\slash and\nnewline, \"quotes\" kept");
    const char *labels[] = {"path", "C:\\dir\n\"x\"", "empty", "", NULL};
    prom_sample_u64(&b, "a_total", labels, UINT64_C(18446744073709551615));
    prom_sample_i64(&b, "g", NULL, -7);
    assert_string_equal(b.data,
                        "# HELP a_total back\\\\slash and\\nnewline, \"quotes\" kept\n"
                        "# TYPE a_total counter\n"
                        "a_total{path=\"C:\\\\dir\\n\\\"x\\\"\",empty=\"\"} 18446744073709551615\n"
                        "g -7\n");
    buf_free(&b);
}

static void test_format_double(void **state)
{
    (void)state;
    char s[40];
    assert_string_equal(prom_format_double(0.1, s, sizeof s), "0.1");
    assert_string_equal(prom_format_double(2.5, s, sizeof s), "2.5");
    assert_string_equal(prom_format_double(5e-5, s, sizeof s), "5e-05");
    assert_string_equal(prom_format_double(1.0 / 3.0, s, sizeof s), "0.33333333333333331");
    assert_string_equal(prom_format_double(1.0 / 0.0, s, sizeof s), "+Inf");
    assert_string_equal(prom_format_double(-1.0 / 0.0, s, sizeof s), "-Inf");
    assert_string_equal(prom_format_double(0.0 / 0.0, s, sizeof s), "NaN");
}

/* ---- the server's exposition ------------------------------------------------ */

static char dir[64];
static store_t *st;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int store_setup(void **state)
{
    (void)state;
    char url[128], *err = NULL;
    snprintf(dir, sizeof dir, "/tmp/sked-prom-test-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(url, sizeof url, "sqlite:%s/sked.db", dir);
    if (store_open(url, &st, &err) != 0) {
        fprintf(stderr, "store_open: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    return 0;
}

static int store_teardown(void **state)
{
    (void)state;
    store_close(st);
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static const http_route_t *route_of(const char *method, const char *pattern)
{
    for (const http_route_t *r = http_routes; r->method; r++)
        if (!strcmp(r->method, method) && !strcmp(r->pattern, pattern)) return r;
    fail_msg("no route %s %s", method, pattern);
    return NULL;
}

/* The value of the sample line that starts with `series ` (0 if absent). */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
    return 0;
}

/* Every sample belongs to the family whose HELP and TYPE came just before
 * (its name, or the name plus _bucket/_sum/_count for a histogram), and no
 * family is declared twice. */
static void check_families(const char *text)
{
    char family[128] = "", type[16] = "";
    char seen[64][128];
    size_t nseen = 0;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        char line[1024];
        size_t len = (size_t)(eol - p) < sizeof line - 1 ? (size_t)(eol - p) : sizeof line - 1;
        memcpy(line, p, len);
        line[len] = '\0';
        if (!strncmp(line, "# HELP ", 7)) {
            char name[128];
            assert_int_equal(sscanf(line + 7, "%127s", name), 1);
            for (size_t i = 0; i < nseen; i++)
                if (!strcmp(seen[i], name)) fail_msg("family %s declared twice", name);
            assert_true(nseen < 64);
            snprintf(seen[nseen++], sizeof seen[0], "%s", name);
            snprintf(family, sizeof family, "%s", name);
            type[0] = '\0';
            assert_true(!strncmp(name, "sked_", 5) || !strncmp(name, "process_", 8));
        } else if (!strncmp(line, "# TYPE ", 7)) {
            char name[128];
            assert_int_equal(sscanf(line + 7, "%127s %15s", name, type), 2);
            assert_string_equal(name, family);
        } else {
            assert_true(type[0] != '\0'); /* a sample before any HELP/TYPE */
            size_t fl = strlen(family);
            assert_true(!strncmp(line, family, fl));
            const char *rest = line + fl;
            if (!strcmp(type, "histogram"))
                assert_true(!strncmp(rest, "_bucket{", 8) || !strncmp(rest, "_sum", 4) ||
                            !strncmp(rest, "_count", 6));
            else
                assert_true(*rest == ' ' || *rest == '{');
            if (!strcmp(type, "counter")) assert_true(!strncmp(family + fl - 6, "_total", 6));
        }
        p = eol + 1;
    }
    assert_true(nseen >= 15);
}

static void test_render(void **state)
{
    (void)state;
    const http_route_t *job_get = route_of("GET", "/v1/jobs/{id}");
    const http_route_t *submit = route_of("POST", "/v1/jobs");
    metrics_http_answered(job_get, "GET", 200, 1000);
    metrics_http_answered(job_get, "GET", 200, 1000);
    metrics_http_answered(job_get, "GET", 404, 1000);
    metrics_http_answered(submit, "POST", 201, 3000000); /* 3 ms: a submit */
    metrics_http_answered(submit, "POST", 400, 1000);    /* refused: not a submit */
    metrics_http_answered(NULL, "BREW", 404, 1000);      /* no route, an odd method */
    metrics_http_answered(NULL, "GET", 404, 1000);
    metrics_http_answered(job_get, "GET", 42, 1000); /* no such status: not counted */
    metrics_alert_sent("webhook", true);
    metrics_alert_sent("email", false);
    metrics_alert_sent("carrier-pigeon", true); /* not a channel: ignored */
    metrics_fire_skipped(METRICS_SKIP_MISFIRE_SKIP, 3);
    store_run_t run = {.fire_ms = 1000, .not_before_ms = 1500, .attempt = 1, .array_index = -1};
    metrics_run_claimed(&run, 1520); /* fire lag 0.52 s, dispatch lag 0.02 s */
    run.attempt = 2;
    metrics_run_claimed(&run, 1600); /* a retry: dispatch lag only */
    /* Runs that waited on others (upstreams; an array's concurrency) carry
     * their workflow's or array's fire time: no fire lag, dispatch lag 0. */
    store_run_t task = {
        .fire_ms = 0, .not_before_ms = 9000, .attempt = 1, .array_index = -1, .deps_n = 1};
    metrics_run_claimed(&task, 9000);
    store_run_t member = {.fire_ms = 0, .not_before_ms = 9000, .attempt = 1, .array_index = 3};
    metrics_run_claimed(&member, 9000);

    /* Cluster-wide: a queue with a pending run and a worker. */
    store_job_t j = {0};
    j.name = xstrdup("j");
    j.queue = xstrdup("q1");
    j.spec_json = xstrdup("{}");
    j.constraints = xstrdup("");
    j.tags = xstrdup("");
    j.owner = xstrdup("admin");
    j.retry = retry_policy_default();
    assert_int_equal(store_job_create(st, &j, NULL, 0, true, NULL, NULL, 1000), 0);
    store_job_clear(&j);
    store_worker_t w = {0};
    w.name = xstrdup("w");
    w.host = xstrdup("h");
    w.queues = xstrdup("q1");
    w.labels = xstrdup("");
    w.slots = 3;
    assert_int_equal(store_worker_register(st, &w, NULL, 1000), 0);
    store_worker_clear(&w);

    buf_t b = BUF_INIT;
    metrics_render(st, &b);
    const char *t = b.data;
    check_families(t);
    assert_non_null(strstr(t, "sked_build_info{version=\""));
    assert_non_null(strstr(t, "store=\"sqlite\"} 1\n"));
    assert_true(
        sample(t,
               "sked_http_requests_total{route=\"/v1/jobs/{id}\",method=\"GET\",status=\"200\"}") ==
        2);
    assert_true(
        sample(t,
               "sked_http_requests_total{route=\"/v1/jobs/{id}\",method=\"GET\",status=\"404\"}") ==
        1);
    assert_true(
        sample(t, "sked_http_requests_total{route=\"/v1/jobs\",method=\"POST\",status=\"400\"}") ==
        1);
    assert_true(
        sample(t,
               "sked_http_requests_total{route=\"unmatched\",method=\"other\",status=\"404\"}") ==
        1);
    assert_true(
        sample(t, "sked_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"}") ==
        1);
    assert_null(strstr(t, "status=\"42\""));
    assert_true(sample(t, "sked_submit_duration_seconds_count") == 1);
    assert_true(sample(t, "sked_submit_duration_seconds_bucket{le=\"0.0025\"}") == 0);
    assert_true(sample(t, "sked_submit_duration_seconds_bucket{le=\"0.005\"}") == 1);
    assert_true(sample(t, "sked_fire_lag_seconds_count") == 1);
    assert_true(sample(t, "sked_fire_lag_seconds_sum") == 0.52);
    assert_true(sample(t, "sked_dispatch_lag_seconds_count") == 4);
    assert_true(sample(t, "sked_dispatch_lag_seconds_sum") == 0.12);
    assert_true(sample(t, "sked_fire_times_skipped_total{reason=\"misfire_skip\"}") == 3);
    assert_non_null(strstr(t, "sked_fire_times_skipped_total{reason=\"overlap\"} "));
    assert_true(sample(t, "sked_alerts_sent_total{channel=\"webhook\"}") == 1);
    assert_true(sample(t, "sked_alerts_failed_total{channel=\"email\"}") == 1);
    assert_non_null(strstr(t, "sked_alerts_sent_total{channel=\"slack\"} 0\n"));
    assert_true(sample(t, "sked_store_up") == 1);
    assert_true(sample(t, "sked_queue_depth{queue=\"q1\",state=\"pending\"}") == 1);
    assert_non_null(strstr(t, "sked_queue_depth{queue=\"q1\",state=\"running\"} 0\n"));
    assert_non_null(strstr(t, "sked_runs_finished_total{queue=\"q1\",state=\"succeeded\"} 0\n"));
    assert_true(sample(t, "sked_workers{state=\"active\"}") == 1);
    assert_true(sample(t, "sked_worker_slots{state=\"active\"}") == 3);
    assert_true(sample(t, "sked_worker_slots_free{state=\"active\"}") == 3);
    assert_true(sample(t, "sked_store_commit_writes_count") >= 2); /* the two writes above */
    assert_true(sample(t, "process_resident_memory_bytes") > 0);
    assert_true(sample(t, "process_open_fds") > 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter),
        cmocka_unit_test(test_hist_buckets_and_render),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_format_double),
        cmocka_unit_test_setup_teardown(test_render, store_setup, store_teardown),
    };
    return cmocka_run_group_tests_name("prom", tests, NULL, NULL);
}
