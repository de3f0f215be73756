/*
 * The server's figures for GET /metrics, and their exposition; see
 * metrics.h for the contract and docs/observability.md for the catalogue.
 *
 * Everything here is process-wide and lock-free. HTTP answers are counted
 * per (route, status) in a table of atomic counters: a row per entry of
 * http_routes (its index), plus a row per method for requests no route
 * matched, each row 500 counters (statuses 100-599), allocated on first
 * use and published with a compare-and-swap, so a route that is never
 * called costs nothing and a scrape walks only the rows in use. Histograms
 * have fixed buckets (common/prom.h).
 */
#include "server/metrics.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/prom.h"
#include "common/version.h"
#include "common/xalloc.h"
#include "server/api.h"

#define STATUS_MIN 100
#define STATUS_N   500 /* 100..599 */
#define ROUTES_MAX 256 /* rows for http_routes; more routes than this are not counted */

/* Methods of requests that matched no route; anything else is "other". */
static const char *const unmatched_methods[] = {"GET",    "HEAD",    "POST",  "PUT",
                                                "DELETE", "OPTIONS", "PATCH", "other"};
#define NUNMATCHED (sizeof unmatched_methods / sizeof *unmatched_methods)

typedef _Atomic uint64_t status_row_t[STATUS_N];
static _Atomic(status_row_t *) http_rows[ROUTES_MAX + NUNMATCHED];

/* 0.25 ms to 10 s: an acknowledged submit is a durable commit. */
static const int64_t submit_bounds_ns[] = {250000,    500000,     1000000,    2500000,    5000000,
                                           10000000,  25000000,   50000000,   100000000,  250000000,
                                           500000000, 1000000000, 2500000000, 10000000000};
/* 1 ms to 1 h: lags are milliseconds when all is well and minutes behind
 * a backlog or an outage. */
static const int64_t lag_bounds_ms[] = {1,     5,     10,     25,     50,     100,
                                        250,   500,   1000,   2500,   5000,   10000,
                                        30000, 60000, 300000, 900000, 3600000};

static prom_hist_t submit_ns = PROM_HIST_INIT(submit_bounds_ns, 1e9);
static prom_hist_t fire_lag_ms = PROM_HIST_INIT(lag_bounds_ms, 1e3);
static prom_hist_t dispatch_lag_ms = PROM_HIST_INIT(lag_bounds_ms, 1e3);
static prom_counter_t skipped[METRICS_SKIP_COUNT];
static const char *const skip_reason[METRICS_SKIP_COUNT] = {
    [METRICS_SKIP_MISFIRE_RUN_ONCE] = "misfire_run_once",
    [METRICS_SKIP_MISFIRE_CATCH_UP] = "misfire_catch_up",
    [METRICS_SKIP_MISFIRE_SKIP] = "misfire_skip",
    [METRICS_SKIP_SCHEDULE_INVALID] = "schedule_invalid",
};

static prom_counter_t resumed[METRICS_RESUME_COUNT];
static prom_counter_t parked; /* requests that began to wait; waiting = parked - resumed */
static const char *const resume_reason[METRICS_RESUME_COUNT] = {
    [METRICS_RESUME_WAKE] = "wake",
    [METRICS_RESUME_PASS] = "pass",
    [METRICS_RESUME_DEADLINE] = "deadline",
};

static const char *const alert_channels[] = {"webhook", "slack", "email"};
#define NCHANNELS (sizeof alert_channels / sizeof *alert_channels)
static prom_counter_t alerts_sent[NCHANNELS], alerts_failed[NCHANNELS];

/* ---- recording ----------------------------------------------------------- */

static size_t route_index(const http_route_t *route, const char *method)
{
    if (route) {
        size_t i = (size_t)(route - http_routes);
        return i < ROUTES_MAX ? i : SIZE_MAX;
    }
    size_t m = 0;
    while (m + 1 < NUNMATCHED && (!method || strcmp(method, unmatched_methods[m]) != 0))
        m++;
    return ROUTES_MAX + m;
}

static bool is_submit(const http_route_t *route)
{
    return route && !strcmp(route->method, "POST") && !strcmp(route->pattern, "/v1/jobs");
}

void metrics_http_answered(const http_route_t *route, const char *method, int status,
                           int64_t elapsed_ns)
{
    size_t i = route_index(route, method);
    if (i == SIZE_MAX || status < STATUS_MIN || status >= STATUS_MIN + STATUS_N) return;
    status_row_t *row = atomic_load_explicit(&http_rows[i], memory_order_acquire);
    if (!row) {
        status_row_t *fresh = xcalloc(1, sizeof *fresh);
        if (atomic_compare_exchange_strong(&http_rows[i], &row, fresh))
            row = fresh;
        else
            free(fresh); /* another thread published first; row is its */
    }
    atomic_fetch_add_explicit(&(*row)[status - STATUS_MIN], 1, memory_order_relaxed);
    if (status / 100 == 2 && is_submit(route)) prom_observe(&submit_ns, elapsed_ns);
}

/* Fire lag is the scheduler's own delay: a run that waited on other runs
 * (one with upstreams, such as a workflow task after the first; a job
 * array's member, held by the array's concurrency) carries its workflow's
 * or array's fire time, so its wait for them is not lag and is left out
 * (its due-to-claim delay still counts in dispatch lag). */
void metrics_run_claimed(const store_run_t *run, int64_t claimed_ms)
{
    /* A run claimed ahead of its time starts at that time: no lag. */
    if (claimed_ms < run->not_before_ms) claimed_ms = run->not_before_ms;
    prom_observe(&dispatch_lag_ms, claimed_ms - run->not_before_ms);
    if (run->attempt == 1 && run->deps_n == 0 && run->array_index < 0)
        prom_observe(&fire_lag_ms, claimed_ms - run->fire_ms);
}

void metrics_fire_skipped(metrics_skip_t reason, uint64_t n)
{
    if ((unsigned)reason < METRICS_SKIP_COUNT && n) prom_add(&skipped[reason], n);
}

void metrics_wait_resumed(metrics_resume_t reason, uint64_t n)
{
    if ((unsigned)reason < METRICS_RESUME_COUNT && n) prom_add(&resumed[reason], n);
}

void metrics_wait_parked(void)
{
    prom_inc(&parked);
}

void metrics_alert_sent(const char *channel, bool ok)
{
    for (size_t i = 0; channel && i < NCHANNELS; i++)
        if (!strcmp(channel, alert_channels[i])) {
            prom_inc(ok ? &alerts_sent[i] : &alerts_failed[i]);
            return;
        }
}

/* ---- rendering ------------------------------------------------------------- */

static void render_http(buf_t *b)
{
    prom_family(b, "sked_http_requests_total", "counter",
                "HTTP requests answered by this server, by route template, method and status.");
    size_t nroutes = 0;
    while (http_routes[nroutes].method)
        nroutes++;
    for (size_t i = 0; i < ROUTES_MAX + NUNMATCHED; i++) {
        if (i >= nroutes && i < ROUTES_MAX) continue;
        status_row_t *row = atomic_load_explicit(&http_rows[i], memory_order_acquire);
        if (!row) continue;
        const char *route = i < ROUTES_MAX ? http_routes[i].pattern : "unmatched";
        const char *method =
            i < ROUTES_MAX ? http_routes[i].method : unmatched_methods[i - ROUTES_MAX];
        for (int s = 0; s < STATUS_N; s++) {
            uint64_t v = atomic_load_explicit(&(*row)[s], memory_order_relaxed);
            if (!v) continue;
            char status[8];
            snprintf(status, sizeof status, "%d", s + STATUS_MIN);
            const char *labels[] = {"route", route, "method", method, "status", status, NULL};
            prom_sample_u64(b, "sked_http_requests_total", labels, v);
        }
    }
}

/* A counter family with one sample per alert channel. */
static void alert_family(buf_t *b, const char *name, const char *help,
                         const prom_counter_t by_channel[NCHANNELS])
{
    prom_family(b, name, "counter", help);
    for (size_t i = 0; i < NCHANNELS; i++) {
        const char *labels[] = {"channel", alert_channels[i], NULL};
        prom_sample_u64(b, name, labels, prom_get(&by_channel[i]));
    }
}

static void render_own(buf_t *b, const store_t *st)
{
    const char *build[] = {"version", SKED_VERSION, "store", store_backend(st), NULL};
    prom_family(b, "sked_build_info", "gauge",
                "Always 1; the labels say which sked this is and which store it runs on.");
    prom_sample_u64(b, "sked_build_info", build, 1);

    render_http(b);
    prom_family(b, "sked_submit_duration_seconds", "histogram",
                "Time from a POST /v1/jobs request's headers to its 2xx answer (the job "
                "durably committed).");
    prom_hist_write(b, "sked_submit_duration_seconds", NULL, &submit_ns);
    prom_family(b, "sked_fire_lag_seconds", "histogram",
                "Time from a run's fire time to the start of its first attempt (its lease; the "
                "worker starts the process as soon as it confirms the lease).");
    prom_hist_write(b, "sked_fire_lag_seconds", NULL, &fire_lag_ms);
    prom_family(b, "sked_dispatch_lag_seconds", "histogram",
                "Time from a run's due time (not_before: fire time plus jitter, or the retry "
                "backoff's end) to its claim by a worker, every attempt.");
    prom_hist_write(b, "sked_dispatch_lag_seconds", NULL, &dispatch_lag_ms);

    prom_family(b, "sked_fire_times_skipped_total", "counter",
                "Fire times that did not run, by reason: the misfire policy, a schedule that no "
                "longer compiles, or the job's overlap policy (forbid).");
    for (int i = 0; i < METRICS_SKIP_COUNT; i++) {
        const char *labels[] = {"reason", skip_reason[i], NULL};
        prom_sample_u64(b, "sked_fire_times_skipped_total", labels, prom_get(&skipped[i]));
    }
    const char *overlap[] = {"reason", "overlap", NULL};
    prom_sample_u64(b, "sked_fire_times_skipped_total", overlap,
                    prom_get(&store_stats()->overlap_skips));

    prom_family(b, "sked_store_commit_duration_seconds", "histogram",
                "Time of each durable commit of a store write (SQLite: one group commit; "
                "PostgreSQL: one COMMIT).");
    prom_hist_write(b, "sked_store_commit_duration_seconds", NULL, &store_stats()->commit_ns);
    prom_family(b, "sked_store_commit_writes", "histogram",
                "Writes carried by each durable commit: the group-commit batch size (always 1 "
                "on PostgreSQL, whose own WAL group commit is not visible to sked).");
    prom_hist_write(b, "sked_store_commit_writes", NULL, &store_stats()->commit_writes);
    prom_family(b, "sked_store_write_queue", "gauge",
                "Writes waiting for the SQLite store's one writer thread (always 0 on "
                "PostgreSQL): a queue that stays long says the writer is the limit.");
    prom_sample_i64(b, "sked_store_write_queue", NULL, atomic_load(&store_stats()->write_queue));
    prom_family(b, "sked_store_batch_redos_total", "counter",
                "SQLite group commits run a second time, each write in a savepoint, because one "
                "of their writes failed after changing something (its changes must go, the "
                "others' stay).");
    prom_sample_u64(b, "sked_store_batch_redos_total", NULL, prom_get(&store_stats()->batch_redos));

    prom_family(b, "sked_http_waits_resumed_total", "counter",
                "Waiting requests (parked claims, log follows, event streams) resumed, by "
                "reason: a wake-up from a store change, a wake-up passed on by a claim that "
                "could not use it, or the wait's deadline.");
    uint64_t left = 0;
    for (int i = 0; i < METRICS_RESUME_COUNT; i++) {
        const char *labels[] = {"by", resume_reason[i], NULL};
        uint64_t v = prom_get(&resumed[i]);
        prom_sample_u64(b, "sked_http_waits_resumed_total", labels, v);
        left += v;
    }
    /* Read after the resumes: a wait is counted parked before it can be
     * resumed, so this is never below zero, only briefly high. */
    uint64_t in = prom_get(&parked);
    prom_family(b, "sked_http_waiting", "gauge",
                "Requests waiting now: parked claims, log follows and event streams.");
    prom_sample_u64(b, "sked_http_waiting", NULL, in > left ? in - left : 0);

    alert_family(b, "sked_alerts_sent_total", "Alert deliveries a receiver took, by channel.",
                 alerts_sent);
    alert_family(b, "sked_alerts_failed_total",
                 "Alert deliveries that failed (refused, unreachable, timed out), by channel; a "
                 "retry that fails counts again.",
                 alerts_failed);
}

/* The count of (queue, state) in c, 0 when absent. c->runs is sorted by
 * queue, so the rows of one queue are adjacent from `from`. */
static int64_t count_of(const store_counts_t *c, size_t from, const char *queue, run_state_t s)
{
    for (size_t i = from; i < c->nruns && !strcmp(c->runs[i].queue, queue); i++)
        if (c->runs[i].state == s) return c->runs[i].n;
    return 0;
}

/* A gauge family with one sample per worker state. */
static void worker_family(buf_t *b, const char *name, const char *help,
                          const int64_t by_state[WORKER_GONE + 1])
{
    prom_family(b, name, "gauge", help);
    for (int s = 0; s <= WORKER_GONE; s++) {
        const char *labels[] = {"state", worker_state_name((worker_state_t)s), NULL};
        prom_sample_i64(b, name, labels, by_state[s]);
    }
}

static void render_cluster(buf_t *b, store_t *st)
{
    store_counts_t c;
    int rc = store_counts(st, &c);
    prom_family(b, "sked_store_up", "gauge",
                "1 if this scrape read the cluster-wide counts from the store; 0 if the store "
                "did not answer (the cluster-wide families are then left out).");
    prom_sample_u64(b, "sked_store_up", NULL, rc == 0);
    if (rc < 0) return;

    static const struct {
        const char *name, *type, *help;
        bool terminal;
    } fam[] = {
        {"sked_queue_depth", "gauge",
         "Runs of each queue now scheduled (incl. retries waiting for their backoff), waiting "
         "(on dependencies), pending or running; cluster-wide, the same on every server.",
         false},
        {"sked_runs_finished_total", "counter",
         "Runs that ended, by queue and final state (succeeded, failed, canceled, skipped); "
         "cluster-wide, the same on every server (aggregate with max, not sum).",
         true},
    };
    for (size_t f = 0; f < 2; f++) {
        prom_family(b, fam[f].name, fam[f].type, fam[f].help);
        for (size_t i = 0; i < c.nruns; i++) {
            if (i > 0 && !strcmp(c.runs[i - 1].queue, c.runs[i].queue)) continue;
            for (int s = 0; s < RUN_STATE_COUNT; s++) {
                if (run_state_terminal((run_state_t)s) != fam[f].terminal) continue;
                const char *labels[] = {"queue", c.runs[i].queue, "state",
                                        run_state_name((run_state_t)s), NULL};
                prom_sample_i64(b, fam[f].name, labels,
                                count_of(&c, i, c.runs[i].queue, (run_state_t)s));
            }
        }
    }

    int64_t workers[WORKER_GONE + 1], slots[WORKER_GONE + 1], free_slots[WORKER_GONE + 1];
    for (int s = 0; s <= WORKER_GONE; s++) {
        workers[s] = c.workers[s].workers;
        slots[s] = c.workers[s].slots;
        free_slots[s] = c.workers[s].slots - c.workers[s].busy;
    }
    worker_family(b, "sked_workers",
                  "Registered workers by state; cluster-wide, the same on every server.", workers);
    worker_family(b, "sked_worker_slots",
                  "Slots (runs at once) of the workers in each state; cluster-wide.", slots);
    worker_family(b, "sked_worker_slots_free",
                  "Slots of the workers in each state not holding a run (only active workers "
                  "take new runs); cluster-wide.",
                  free_slots);
    store_counts_clear(&c);
}

/* The standard process_* figures, from /proc (Linux). */
static void render_process(buf_t *b)
{
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    char line[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(line, 1, sizeof line - 1, f) : 0;
    if (f) fclose(f);
    line[n] = '\0';
    /* The fields after the command name, which may hold spaces: its last ')'. */
    const char *p = strrchr(line, ')');
    unsigned long long v[24] = {0};
    int got = 0;
    if (p) {
        p += 2; /* ") " then field 3, the state */
        while (*p && *p != ' ')
            p++;
        for (char *end; got < 24 && *p; got++, p = end) {
            v[got] = strtoull(p, &end, 10); /* v[i] is field i + 4 */
            if (end == p) break;
        }
    }
    if (got >= 21 && tick > 0) {
        prom_family(b, "process_cpu_seconds_total", "counter",
                    "User and system CPU time spent, in seconds.");
        prom_sample(b, "process_cpu_seconds_total", NULL, (double)(v[10] + v[11]) / (double)tick);
        prom_family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        prom_sample_u64(b, "process_virtual_memory_bytes", NULL, v[19]);
        prom_family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        prom_sample_u64(b, "process_resident_memory_bytes", NULL, v[20] * (unsigned long long)page);
        /* starttime (field 22) is in ticks since boot; btime is the boot's epoch time. */
        FILE *s = fopen("/proc/stat", "re");
        unsigned long long btime = 0;
        while (s && fgets(line, sizeof line, s))
            if (sscanf(line, "btime %llu", &btime) == 1) break;
        if (s) fclose(s);
        if (btime) {
            prom_family(b, "process_start_time_seconds", "gauge",
                        "Start time of the process since the Unix epoch, in seconds.");
            prom_sample(b, "process_start_time_seconds", NULL,
                        (double)btime + (double)v[18] / (double)tick);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        uint64_t fds = 0;
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.') fds++;
        closedir(d);
        prom_family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        prom_sample_u64(b, "process_open_fds", NULL, fds - 1); /* less opendir's own */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        prom_family(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        prom_sample_u64(b, "process_max_fds", NULL, (uint64_t)rl.rlim_cur);
    }
}

void metrics_render(store_t *st, buf_t *out)
{
    render_own(out, st);
    render_cluster(out, st);
    render_process(out);
}

/* ---- GET /metrics ------------------------------------------------------------ */

void api_metrics(http_req_t *req, http_resp_t *resp)
{
    buf_t b = BUF_INIT;
    metrics_render(req->st, &b);
    http_text(resp, 200, PROM_CONTENT_TYPE, b.data ? b.data : "", b.len);
    buf_free(&b);
}
