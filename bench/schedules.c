/*
 * sked-schedules: many active cron schedules on one SQLite server (issue 13,
 * point 6): a million of them, about 1,000 due each second.
 *
 *     sked-schedules [--sizes 10000,1000000] [--rate 1000] [--seconds 20]
 *                    [--settle 3] [--clients 4] [--worker [--slots 256]]
 *                    [--plugin-dir D] [--sked PATH]
 *
 * For each size N it starts `sked server` on a fresh SQLite file in a
 * temporary directory (127.0.0.1, --rate-limit off) and, by default, no
 * worker: the runs pile up pending (N / 1000 * 20 s of them, 20,000 in the
 * window), which the scheduler does not read (its statements touch
 * schedules; runs only through the insert). It creates N jobs with one
 * cron schedule each through POST /v1/jobs:batch (1,000 per call,
 * --clients calls at a time) whose union fires --rate times a second (see
 * plan_groups), waits --settle seconds, then measures over a window of
 * --seconds:
 *
 *   - the runs the scheduler made whose fire time falls in the window
 *     (GET /v1/runs?since&until, every page), per second;
 *   - how far ahead of its fire time each was made, fire_time - created_at
 *     (created_at is the store's clock when the tick that made it began;
 *     the scheduler looks 1 s ahead, and a run made ahead is claimable at
 *     its fire time exactly); negative when the scheduler was late;
 *   - the CPU of the fire loop's thread (named "sked-fire", from
 *     /proc/PID/task/TID/schedstat) and of the whole server, per second
 *     and per run made;
 *   - the server's resident memory (VmRSS) and the database's size (the
 *     file and its WAL).
 *
 * With --worker the jobs are of the noop plugin's type and one `sked
 * worker` (--slots, plugins from --plugin-dir, default plugins/ beside
 * sked) claims them: the fire lag, fire_time -> started_at (the claim, as
 * sked_fire_lag_seconds), of every run and of the first of each fire time
 * (a second's runs all fire at its first millisecond and queue behind each
 * other for the worker). That measures the worker's claims as much as the
 * scheduler; the server's and the worker's CPU then share the cores.
 *
 * Then one markdown table with a row per N, and the ratio of the fire
 * loop's CPU per run between the largest and the smallest N: a scheduler
 * whose tick costs O(due) shows about 1.
 *
 * Every phase has a deadline; the server is stopped by pid (SIGTERM, then
 * SIGKILL after 5 s) and gets SIGTERM should the bench die first. A
 * measurement, not a test: nothing is asserted, the exit status says only
 * whether every phase completed.
 */
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"
#include "common/clock.h"
#include "common/httpc.h"

#define BATCH       1000 /* jobs per POST /v1/jobs:batch, its maximum */
#define MAX_SIZES   8
#define MAX_CLIENTS 16

static struct {
    long sizes[MAX_SIZES];
    int nsizes;
    double rate;    /* fire times per second wanted */
    double seconds; /* the measured window */
    double settle;  /* between the last job created and the window */
    int clients;    /* batch calls in flight */
    bool worker;    /* a noop plugin worker claims the runs */
    int slots;      /* its slots */
    const char *sked;
    const char *plugin_dir;
} opt = {{10000, 1000000}, 2, 1000.0, 20.0, 3.0, 4, false, 256, NULL, NULL};

static void sleep_s(double s)
{
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t pct_i64(const int64_t *v, size_t n, double p)
{
    if (!n) return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* ---- the schedules ---------------------------------------------------------- */

/* Cron (6 fields, seconds first, UTC) fires at fixed periods only: p
 * seconds for p dividing 60 ("t/p * * * * *"), p = 60k for k dividing 60
 * ("s m/k * * * *"), p = 3600h for h dividing 24 ("s m hh/h * * *"). A
 * schedule of period p with offset t in [0, p) fires at the instants
 * congruent to t mod p (every such period divides a day, so the cycles line
 * up at midnight UTC). N schedules spread round robin over the p offsets
 * of one period make N / p fire times a second, within one of it in each
 * second. So N = rate * p exactly when p = N / rate is such a period
 * (10,000 at 1,000/s: p = 10 s); otherwise two groups, a schedules of the
 * period p1 just below N / rate and b = N - a of the period p2 just above,
 * with a / p1 + b / p2 = rate:
 *
 *     a = (rate - N / p2) / (1 / p1 - 1 / p2), rounded.
 *
 * For 1,000,000 at 1,000/s (N / rate = 1,000 s): p1 = 900 s (every 15
 * minutes), p2 = 1,200 s (every 20 minutes), a = 600,000 and b = 400,000,
 * which is 666.67 + 333.33 = 1,000 fire times a second exactly on average;
 * each second's count is 999, 1,000 or 1,001 (its offset in the 900 s
 * cycle holds 666 or 667 schedules, in the 1,200 s cycle 333 or 334). */
static const long periods[] = {1,    2,    3,    4,    5,     6,     10,    12,    15,    20,
                               30,   60,   120,  180,  240,   300,   360,   600,   720,   900,
                               1200, 1800, 3600, 7200, 10800, 14400, 21600, 28800, 43200, 86400};
#define NPERIODS (sizeof periods / sizeof periods[0])

struct group {
    long period; /* s */
    long count;  /* schedules */
};

/* Fills g[0..1] (count 0: unused); returns the due rate they make. */
static double plan_groups(long n, double rate, struct group g[2])
{
    double want = (double)n / rate;
    memset(g, 0, 2 * sizeof *g);
    if (want <= (double)periods[0] || want >= (double)periods[NPERIODS - 1]) {
        g[0].period = want <= (double)periods[0] ? periods[0] : periods[NPERIODS - 1];
        g[0].count = n;
    } else {
        size_t i = 0;
        while (i + 1 < NPERIODS && (double)periods[i + 1] <= want)
            i++;
        if ((double)periods[i] == want) {
            g[0].period = periods[i];
            g[0].count = n;
        } else {
            double p1 = (double)periods[i], p2 = (double)periods[i + 1];
            double a = (rate - (double)n / p2) / (1.0 / p1 - 1.0 / p2);
            long ia = (long)(a + 0.5);
            if (ia < 0) ia = 0;
            if (ia > n) ia = n;
            g[0] = (struct group){periods[i], ia};
            g[1] = (struct group){periods[i + 1], n - ia};
        }
    }
    return (double)g[0].count / (double)g[0].period +
           (g[1].count ? (double)g[1].count / (double)g[1].period : 0.0);
}

/* The cron of the schedule at offset t (0 <= t < p) of period p. */
static void cron_of(long p, long t, char *out, size_t len)
{
    long s = t % 60, m = t / 60 % 60, h = t / 3600;
    if (p < 60)
        snprintf(out, len, "%ld/%ld * * * * *", t, p);
    else if (p == 60)
        snprintf(out, len, "%ld * * * * *", s);
    else if (p < 3600)
        snprintf(out, len, "%ld %ld/%ld * * * *", s, m, p / 60);
    else if (p == 3600)
        snprintf(out, len, "%ld %ld * * * *", s, m);
    else if (p < 86400)
        snprintf(out, len, "%ld %ld %ld/%ld * * *", s, m, h, p / 3600);
    else
        snprintf(out, len, "%ld %ld %ld * * *", s, m, h);
}

/* ---- creating the jobs ------------------------------------------------------- */

static struct {
    const char *url, *token;
    long n, nbatches;
    struct group g[2];
    double deadline; /* monotonic s */
    atomic_long next_batch, done_batches;
    atomic_int failed;
    char err[512];
    pthread_mutex_t mu;
} cr = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Stops the creation; the first reason is kept. */
static void fail_create(const char *why)
{
    pthread_mutex_lock(&cr.mu);
    if (!cr.err[0]) snprintf(cr.err, sizeof cr.err, "%s", why);
    pthread_mutex_unlock(&cr.mu);
    atomic_store(&cr.failed, 1);
}

/* Job i's cron: the first g[0].count jobs are of period g[0], the rest of
 * g[1]; within a group, round robin over the period's offsets. */
static void job_cron(long i, char *out, size_t len)
{
    if (i < cr.g[0].count)
        cron_of(cr.g[0].period, i % cr.g[0].period, out, len);
    else
        cron_of(cr.g[1].period, (i - cr.g[0].count) % cr.g[1].period, out, len);
}

static void *creator(void *arg)
{
    (void)arg;
    httpc_t *c = httpc_new(cr.url, cr.token);
    size_t room = (size_t)BATCH * 160 + 64;
    char *body = malloc(room);
    if (!c || !body) {
        fail_create("out of memory");
        goto out;
    }
    httpc_set_timeout_ms(c, 120000);
    while (!atomic_load(&cr.failed)) {
        long b = atomic_fetch_add(&cr.next_batch, 1);
        if (b >= cr.nbatches) break;
        if (bl_now_s() > cr.deadline) {
            fail_create("the creation ran out of time");
            break;
        }
        size_t off = (size_t)snprintf(body, room, "{\"jobs\":[");
        long first = b * BATCH, last = first + BATCH < cr.n ? first + BATCH : cr.n;
        for (long i = first; i < last; i++) {
            char cron[64];
            job_cron(i, cron, sizeof cron);
            off += (size_t)snprintf(
                body + off, room - off,
                "%s{\"name\":\"sched-%ld\",%s,"
                "\"schedules\":[{\"cron\":\"%s\"}]}",
                i > first ? "," : "", i,
                opt.worker ? "\"type\":\"noop\"" : "\"command\":[\"/bin/true\"]", cron);
        }
        off += (size_t)snprintf(body + off, room - off, "]}");
        httpc_resp_t r = {0};
        int rc = httpc_do(c, "POST", "/v1/jobs:batch", "application/json", body, off, NULL, &r);
        if (rc != 0 || r.status != 201) {
            char what[400];
            snprintf(what, sizeof what, "batch %ld answered %ld: %.300s", b, r.status,
                     r.body ? r.body : r.errbuf);
            fail_create(what);
            httpc_resp_clear(&r);
            break;
        }
        httpc_resp_clear(&r);
        atomic_fetch_add(&cr.done_batches, 1);
    }
out:
    free(body);
    if (c) httpc_free(c);
    return NULL;
}

/* ---- the server's CPU ---------------------------------------------------------- */

/* The time a thread ran, s: the first field of /proc/PID/task/TID/schedstat
 * (nanoseconds; stat's utime and stime count 10 ms ticks). */
static double task_cpu_s(const char *path)
{
    unsigned long long ns = 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    if (fscanf(f, "%llu", &ns) != 1) ns = 0;
    fclose(f);
    return (double)ns / 1e9;
}

/* The CPU of the fire loop's thread (-1: no thread named sked-fire) and of
 * the whole server, s. */
static void server_cpu(pid_t pid, double *fire_s, double *total_s)
{
    char dir[64], path[400], comm[64];
    *fire_s = -1;
    *total_s = 0;
    snprintf(dir, sizeof dir, "/proc/%ld/task", (long)pid);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s/schedstat", dir, e->d_name);
        double cpu = task_cpu_s(path);
        *total_s += cpu;
        snprintf(path, sizeof path, "%s/%s/comm", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (f && fgets(comm, sizeof comm, f) && !strncmp(comm, "sked-fire", 9))
            *fire_s = *fire_s < 0 ? cpu : *fire_s + cpu;
        if (f) fclose(f);
    }
    closedir(d);
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

/* ---- one size ------------------------------------------------------------------- */

struct row {
    long n;
    bool ok;
    double due_rate;                   /* the schedules' fire times per second */
    char crons[160];                   /* their periods */
    double create_s;                   /* wall time of the creation */
    double made_per_s;                 /* runs with a fire time in the window, per second */
    long made;                         /* their count */
    int64_t ahead_p50, ahead_min;      /* fire_time - created_at (the tick that made it), ms */
    long started;                      /* of the runs made, those a worker claimed */
    int64_t lag_p50, lag_p99, lag_max; /* fire lag: fire_time -> started_at (the claim), ms */
    long late_50;                      /* claimed more than 50 ms after the fire time */
    int64_t first_p50, first_p99, first_max; /* the same of each fire time's first claim */
    double fire_cpu_ms_s, fire_us_run;       /* the fire loop's thread */
    double total_cpu_ms_s, total_us_run;     /* the whole server */
    double rss_mib;
    double db_mib, wal_mib;
};

struct i64v {
    int64_t *v;
    size_t n, cap;
};

static int i64v_push(struct i64v *a, int64_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 4096;
        int64_t *bigger = realloc(a->v, cap * sizeof *bigger);
        if (!bigger) return -1;
        a->v = bigger;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

/* Lists the runs whose fire time is in [from_ms, to_ms) and fills the lag
 * figures of r. 0, or -1. */
static int read_runs(httpc_t *c, int64_t from_ms, int64_t to_ms, struct row *r, double deadline)
{
    char since[40], until[40], path[600], cursor[300] = "";
    clock_format_rfc3339(from_ms, since, sizeof since);
    clock_format_rfc3339(to_ms, until, sizeof until);
    struct i64v ahead = {0}, lag = {0}, pairs = {0}; /* pairs: fire, lag */
    int rc = -1;
    for (int page = 0; page < 100000 && bl_now_s() < deadline; page++) {
        snprintf(path, sizeof path, "/v1/runs?since=%s&until=%s&limit=1000%s%s", since, until,
                 cursor[0] ? "&cursor=" : "", cursor);
        httpc_resp_t hr = {0};
        if (httpc_do(c, "GET", path, NULL, NULL, 0, NULL, &hr) != 0 || hr.status != 200) {
            fprintf(stderr, "schedules: GET %s answered %ld: %.200s\n", path, hr.status,
                    hr.body ? hr.body : hr.errbuf);
            httpc_resp_clear(&hr);
            goto out;
        }
        json_t *doc = json_loads(hr.body, 0, NULL);
        httpc_resp_clear(&hr);
        json_t *items = json_object_get(doc, "items");
        size_t i;
        json_t *it;
        bool oom = false;
        json_array_foreach(items, i, it)
        {
            int64_t fire = 0, made = 0, started = 0;
            if (clock_parse_rfc3339(json_string_value(json_object_get(it, "fire_time")), &fire) ||
                clock_parse_rfc3339(json_string_value(json_object_get(it, "created_at")), &made))
                continue;
            oom |= i64v_push(&ahead, fire - made) < 0;
            const char *st = json_string_value(json_object_get(it, "started_at"));
            if (st && !clock_parse_rfc3339(st, &started))
                oom |= i64v_push(&lag, started - fire) < 0 || i64v_push(&pairs, fire) < 0 ||
                       i64v_push(&pairs, started - fire) < 0;
        }
        const char *next = json_string_value(json_object_get(doc, "next_cursor"));
        bool more = next && *next;
        if (more) snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(doc);
        if (oom) goto out;
        if (!more) {
            rc = 0;
            break;
        }
    }
    if (rc != 0) fprintf(stderr, "schedules: listing the runs ran out of time\n");
    qsort(ahead.v, ahead.n, sizeof *ahead.v, cmp_i64);
    qsort(lag.v, lag.n, sizeof *lag.v, cmp_i64);
    r->made = (long)ahead.n;
    r->ahead_p50 = pct_i64(ahead.v, ahead.n, 0.50);
    r->ahead_min = ahead.n ? ahead.v[0] : 0;
    r->started = (long)lag.n;
    r->lag_p50 = pct_i64(lag.v, lag.n, 0.50);
    r->lag_p99 = pct_i64(lag.v, lag.n, 0.99);
    r->lag_max = lag.n ? lag.v[lag.n - 1] : 0;
    r->late_50 = 0;
    for (size_t i = 0; i < lag.n; i++)
        r->late_50 += lag.v[i] > 50;
    /* The first claim of each fire time: the runs of one second all fire
     * at its first millisecond, so the others queue behind it for the
     * worker's claims; the first shows when the run was ready. */
    qsort(pairs.v, pairs.n / 2, 2 * sizeof *pairs.v, cmp_i64);
    struct i64v first = {0};
    for (size_t i = 0; i < pairs.n; i += 2) {
        int64_t m = pairs.v[i + 1];
        size_t j = i + 2;
        for (; j < pairs.n && pairs.v[j] == pairs.v[i]; j += 2)
            m = pairs.v[j + 1] < m ? pairs.v[j + 1] : m;
        if (i64v_push(&first, m) < 0) break;
        i = j - 2;
    }
    qsort(first.v, first.n, sizeof *first.v, cmp_i64);
    r->first_p50 = pct_i64(first.v, first.n, 0.50);
    r->first_p99 = pct_i64(first.v, first.n, 0.99);
    r->first_max = first.n ? first.v[first.n - 1] : 0;
    free(first.v);
out:
    free(ahead.v);
    free(lag.v);
    free(pairs.v);
    return rc;
}

static int run_size(long n, struct row *r)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    char tmp[] = "/tmp/sked-sched.XXXXXX";
    if (!mkdtemp(tmp)) {
        perror("schedules: mkdtemp");
        return -1;
    }
    char store[700], dbfile[600], walfile[600], tokfile[600], errlog[600], url[256], token[128];
    snprintf(dbfile, sizeof dbfile, "%s/sked.db", tmp);
    snprintf(walfile, sizeof walfile, "%s/sked.db-wal", tmp);
    snprintf(store, sizeof store, "sqlite:%s", dbfile);
    snprintf(tokfile, sizeof tokfile, "%s/admin.token", tmp);
    snprintf(errlog, sizeof errlog, "%s/server.log", tmp);
    int out = -1, wout = -1, rc = -1;
    httpc_t *c = NULL;
    pid_t wpid = -1, pid = bl_start_server("schedules", opt.sked, store, tokfile, NULL, errlog,
                                           &out, url, sizeof url, token, sizeof token);
    if (pid < 0) goto done;
    if (opt.worker) {
        /* The noop plugin in a plugin host (no process per run), before
         * the jobs: a job's type must be one a worker advertised. */
        char wlog[600], wdir[600];
        snprintf(wlog, sizeof wlog, "%s/worker.log", tmp);
        snprintf(wdir, sizeof wdir, "%s/work", tmp);
        wpid = bl_start_worker("schedules", opt.sked, url, tokfile, opt.slots, "sched-noop", wdir,
                               opt.plugin_dir, wlog, &wout);
        if (wpid < 0) goto done;
    }

    /* Create the jobs. */
    r->due_rate = plan_groups(n, opt.rate, cr.g);
    size_t off = 0;
    for (int k = 0; k < 2 && cr.g[k].count; k++) {
        char cron[64];
        cron_of(cr.g[k].period, 0, cron, sizeof cron);
        off += (size_t)snprintf(r->crons + off, sizeof r->crons - off, "%s%ld x every %ld s (`%s`)",
                                k ? " + " : "", cr.g[k].count, cr.g[k].period, cron);
    }
    cr.url = url;
    cr.token = token;
    cr.n = n;
    cr.nbatches = (n + BATCH - 1) / BATCH;
    atomic_store(&cr.next_batch, 0);
    atomic_store(&cr.done_batches, 0);
    atomic_store(&cr.failed, 0);
    cr.err[0] = '\0';
    double t0 = bl_now_s();
    /* A bound, not a target: 2 minutes plus 5 ms a job. */
    cr.deadline = t0 + 120.0 + (double)n * 0.005;
    fprintf(stderr, "schedules: N=%ld: creating %ld jobs (%s; %.1f due/s) in %ld batches...\n", n,
            n, r->crons, r->due_rate, cr.nbatches);
    pthread_t th[MAX_CLIENTS];
    int nth = 0;
    for (int i = 0; i < opt.clients; i++)
        if (pthread_create(&th[nth], NULL, creator, NULL) == 0) nth++;
    double next_report = t0 + 10.0;
    while (atomic_load(&cr.done_batches) < cr.nbatches && !atomic_load(&cr.failed) &&
           bl_now_s() < cr.deadline + 130.0) {
        sleep_s(0.1);
        if (bl_now_s() >= next_report) {
            long d = atomic_load(&cr.done_batches);
            double el = bl_now_s() - t0;
            long th_, rss;
            bl_proc_stats(pid, &th_, &rss);
            fprintf(stderr,
                    "schedules: N=%ld: %ld of %ld jobs in %.0f s (%.0f jobs/s), RSS %.0f MiB, "
                    "DB %.0f MiB\n",
                    n, d * BATCH < n ? d * BATCH : n, n, el, (double)(d * BATCH) / el,
                    (double)rss / 1024.0, (double)file_size(dbfile) / 1048576.0);
            next_report += 10.0;
        }
    }
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    r->create_s = bl_now_s() - t0;
    if (atomic_load(&cr.failed) || atomic_load(&cr.done_batches) < cr.nbatches) {
        fprintf(stderr, "schedules: N=%ld: the creation failed: %s\n", n,
                cr.err[0] ? cr.err : "out of time");
        goto done;
    }
    fprintf(stderr, "schedules: N=%ld: created in %.1f s (%.0f jobs/s); measuring %.0f s...\n", n,
            r->create_s, (double)n / r->create_s, opt.seconds);

    /* The window. */
    sleep_s(opt.settle);
    double f0, c0, f1, c1;
    server_cpu(pid, &f0, &c0);
    int64_t w0 = wall_ms();
    double m0 = bl_now_s();
    sleep_s(opt.seconds);
    server_cpu(pid, &f1, &c1);
    int64_t w1 = wall_ms();
    double win = bl_now_s() - m0;
    long threads, rss;
    bl_proc_stats(pid, &threads, &rss);
    r->rss_mib = (double)rss / 1024.0;
    r->db_mib = (double)file_size(dbfile) / 1048576.0;
    r->wal_mib = (double)file_size(walfile) / 1048576.0;

    /* The runs of the window: each was made by now, unless the scheduler
     * is more than a second late (it makes them up to 1 s ahead). */
    sleep_s(1.0);
    c = httpc_new(url, token);
    if (!c) goto done;
    httpc_set_timeout_ms(c, 60000);
    if (read_runs(c, w0, w1, r, bl_now_s() + 120.0) < 0) goto done;
    r->made_per_s = (double)r->made / ((double)(w1 - w0) / 1000.0);
    double made = r->made ? (double)r->made : 1;
    if (f0 >= 0 && f1 >= 0) {
        r->fire_cpu_ms_s = (f1 - f0) * 1000.0 / win;
        r->fire_us_run = (f1 - f0) * 1e6 / made;
    } else {
        r->fire_cpu_ms_s = r->fire_us_run = -1;
    }
    r->total_cpu_ms_s = (c1 - c0) * 1000.0 / win;
    r->total_us_run = (c1 - c0) * 1e6 / made;
    r->ok = true;
    rc = 0;
    fprintf(stderr,
            "schedules: N=%ld: %ld runs in %.1f s (%.0f/s), made %lld ms ahead (p50), fire thread "
            "%.1f ms/s (%.1f us/run), server %.1f ms/s\n",
            n, r->made, (double)(w1 - w0) / 1000.0, r->made_per_s, (long long)r->ahead_p50,
            r->fire_cpu_ms_s, r->fire_us_run, r->total_cpu_ms_s);
    if (opt.worker)
        fprintf(stderr, "schedules: N=%ld: %ld claimed, fire lag p50 %lld p99 %lld max %lld ms\n",
                n, r->started, (long long)r->lag_p50, (long long)r->lag_p99, (long long)r->lag_max);
done:
    if (c) httpc_free(c);
    if (wout >= 0) close(wout);
    if (out >= 0) close(out);
    bl_stop_proc(wpid, "schedules");
    bl_stop_proc(pid, "schedules");
    if (rc == 0) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) fprintf(stderr, "schedules: could not remove %s\n", tmp);
    } else {
        fprintf(stderr, "schedules: the server's log and store are kept in %s\n", tmp);
    }
    return rc;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: sked-schedules [--sizes N,N...] [--rate R] [--seconds S] [--settle S]\n"
               "                      [--clients C] [--worker] [--slots K] [--plugin-dir D]\n"
               "                      [--sked PATH]\n"
               "For each N (default 10000,1000000): one sked server on SQLite, N jobs with a cron\n"
               "schedule each (created 1,000 per POST /v1/jobs:batch, C calls at a time) whose\n"
               "union fires R times a second (default 1000); measures over S seconds (default\n"
               "20) the runs made (how far ahead of their fire time), the fire loop's CPU, RSS\n"
               "and database size; with --worker, noop plugin jobs claimed by a worker with K\n"
               "slots (default 256) and their fire lag (fire time -> claim).\n");
}

static int parse_sizes(const char *s)
{
    opt.nsizes = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 10000000 || opt.nsizes == MAX_SIZES) return -1;
        opt.sizes[opt.nsizes++] = v;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return -1;
    }
    return opt.nsizes ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"sizes", required_argument, NULL, 'n'},
                                             {"rate", required_argument, NULL, 'r'},
                                             {"seconds", required_argument, NULL, 's'},
                                             {"settle", required_argument, NULL, 'w'},
                                             {"clients", required_argument, NULL, 'c'},
                                             {"sked", required_argument, NULL, 'k'},
                                             {"worker", no_argument, NULL, 'W'},
                                             {"slots", required_argument, NULL, 'S'},
                                             {"plugin-dir", required_argument, NULL, 'p'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    char sked_path[PATH_MAX];
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            if (parse_sizes(optarg)) {
                usage(stderr);
                return 2;
            }
            break;
        case 'r':
            opt.rate = atof(optarg);
            break;
        case 's':
            opt.seconds = atof(optarg);
            break;
        case 'w':
            opt.settle = atof(optarg);
            break;
        case 'c':
            opt.clients = atoi(optarg);
            break;
        case 'k':
            opt.sked = optarg;
            break;
        case 'W':
            opt.worker = true;
            break;
        case 'S':
            opt.slots = atoi(optarg);
            break;
        case 'p':
            opt.plugin_dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (opt.rate <= 0 || opt.seconds <= 0 || opt.seconds > 3600 || opt.settle < 0 ||
        opt.clients < 1 || opt.clients > MAX_CLIENTS || opt.slots < 1) {
        usage(stderr);
        return 2;
    }
    if (!opt.sked) {
        /* The sked binary beside this one (both are built into build/). */
        if (bl_beside_self("sked", sked_path, sizeof sked_path) < 0) return 2;
        opt.sked = sked_path;
    }
    static char plugin_path[PATH_MAX];
    if (!opt.plugin_dir) {
        /* plugins/ beside the sked binary (the build puts noop.so there). */
        const char *slash = strrchr(opt.sked, '/');
        snprintf(plugin_path, sizeof plugin_path, "%.*s/plugins",
                 slash ? (int)(slash - opt.sked) : 1, slash ? opt.sked : ".");
        opt.plugin_dir = plugin_path;
    }

    struct row rows[MAX_SIZES];
    int status = 0;
    for (int i = 0; i < opt.nsizes; i++)
        if (run_size(opt.sizes[i], &rows[i]) < 0) status = 1;

    printf("\n### Many cron schedules (SQLite, one server, %s, %.0f s window)\n\n",
           opt.worker ? "a noop plugin worker" : "no worker", opt.seconds);
    /* The worker's columns only with a worker. */
    printf("| schedules | crons | due /s | created in (jobs/s) | runs made /s | made ahead p50 "
           "(min) ms |%s fire thread CPU ms/s (us/run) | server CPU ms/s (us/run) | RSS MiB | DB "
           "+ WAL MiB |\n",
           opt.worker ? " fire lag p50 / p99 / max ms (claimed of made) | claimed > 50 ms late | "
                        "first claim of each fire time p50 / p99 / max ms |"
                      : "");
    printf("|---|---|---|---|---|---|%s---|---|---|---|\n", opt.worker ? "---|---|---|" : "");
    for (int i = 0; i < opt.nsizes; i++) {
        const struct row *r = &rows[i];
        if (!r->ok) {
            printf("| %ld | %s | %.1f | failed (see stderr) | | |%s | | | |\n", r->n, r->crons,
                   r->due_rate, opt.worker ? " | | |" : "");
            continue;
        }
        char cols[200] = "";
        if (opt.worker)
            snprintf(cols, sizeof cols,
                     " %lld / %lld / %lld (%ld of %ld) | %ld | %lld / %lld / %lld |",
                     (long long)r->lag_p50, (long long)r->lag_p99, (long long)r->lag_max,
                     r->started, r->made, r->late_50, (long long)r->first_p50,
                     (long long)r->first_p99, (long long)r->first_max);
        printf(
            "| %ld | %s | %.1f | %.1f s (%.0f) | %.1f | %lld (%lld) |%s %.1f (%.1f) | %.1f (%.1f) "
            "| %.1f | %.1f + %.1f |\n",
            r->n, r->crons, r->due_rate, r->create_s, (double)r->n / r->create_s, r->made_per_s,
            (long long)r->ahead_p50, (long long)r->ahead_min, cols, r->fire_cpu_ms_s,
            r->fire_us_run, r->total_cpu_ms_s, r->total_us_run, r->rss_mib, r->db_mib, r->wal_mib);
    }
    /* O(due): the fire loop's CPU per run made does not grow with N. */
    int lo = -1, hi = -1;
    for (int i = 0; i < opt.nsizes; i++) {
        if (!rows[i].ok || rows[i].fire_us_run <= 0) continue;
        if (lo < 0 || rows[i].n < rows[lo].n) lo = i;
        if (hi < 0 || rows[i].n > rows[hi].n) hi = i;
    }
    if (lo >= 0 && hi >= 0 && lo != hi)
        printf("\nTick cost (fire thread CPU per run made) at %ld vs %ld schedules: %.2fx "
               "(server CPU per run: %.2fx); O(due) is about 1x.\n",
               rows[hi].n, rows[lo].n, rows[hi].fire_us_run / rows[lo].fire_us_run,
               rows[hi].total_us_run / rows[lo].total_us_run);
    fflush(stdout);
    return status;
}
