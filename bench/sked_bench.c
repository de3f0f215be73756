/*
 * sked-bench: starts real `sked server` and `sked worker` processes on
 * loopback and prints tables of the figures that matter on the hot paths.
 *
 * Without --pg it measures one server on SQLite:
 *
 *   - submit throughput and latency (durable acknowledgement, keep-alive
 *     clients, jobs that fire far in the future so nothing executes);
 *   - dispatch latency, fire time -> process start, on an idle worker
 *     (the job is sked-bench-stamp, this file built lean, recording when it
 *     started);
 *   - end-to-end /bin/true runs per second, next to this machine's own
 *     ceiling for spawning /bin/true (a bare posix_spawn + waitpid loop, one
 *     spawner per core), and the ratio of the two;
 *   - end-to-end runs per second of the `noop` plugin (plugins/noop, run in
 *     a plugin host: no process per run), submitted as jobs by the submit
 *     phase's clients and as one job array, each from the first submit
 *     until no run of theirs is left unfinished.
 *
 * With --pg it measures a cluster: 1, 2 and 3 (--servers) servers on one
 * PostgreSQL database, each configuration in a fresh schema so runs never
 * accumulate from one to the next. Per configuration: submit throughput and
 * latency with the clients spread round-robin over the servers; end-to-end
 * /bin/true runs/s with one worker per server, each given the whole server
 * list rotated so that it prefers a different server; and cross-server
 * dispatch latency, jobs submitted on server A while the only worker
 * long-polls on server B, so the wake-up has to travel through the
 * database's LISTEN/NOTIFY. Around the end-to-end phase, the database's
 * cost per job: transactions (pg_stat_database) and write transactions
 * per job, and the CPU of the PostgreSQL server next to the servers' and
 * the workers' (issue 13, point 9). `make bench` runs the PostgreSQL table
 * inside tests/store/pg_harness.sh, which provides a throwaway database.
 *
 * Every phase is bounded in time and count, everything listens on
 * 127.0.0.1 (PostgreSQL on a unix socket), and the bench ends the processes
 * it started, by pid; they also get SIGTERM should the bench itself die.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "benchlib.h"
#include "loadgen.h"

/* ---- the stamping job ---------------------------------------------------- */

/* --stamp FILE: the dispatch-latency job. Appends "MS JOB_ID" to FILE at
 * process start, MS = now - $SKED_FIRE_TIME. It runs as the lean sked-bench-stamp
 * (this file built with SKED_BENCH_STAMP_ONLY, linked against libc alone),
 * because sked-bench itself links libcurl and the dynamic loader would add
 * its own 10-20 ms to every sample, which is the bench's cost, not sked's. */
static int stamp_main(const char *file)
{
    const char *ft = getenv("SKED_FIRE_TIME");
    int64_t fire = 0;
    if (!ft || clock_parse_rfc3339(ft, &fire)) return 2;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now_ms = (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
    FILE *f = fopen(file, "a");
    if (!f) return 3;
    const char *job = getenv("SKED_JOB_ID");
    fprintf(f, "%.3f %s\n", now_ms - (double)fire, job ? job : "-");
    fclose(f);
    return 0;
}

#ifdef SKED_BENCH_STAMP_ONLY

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--stamp")) return stamp_main(argv[2]);
    fprintf(stderr, "usage: sked-bench-stamp --stamp FILE (run by sked-bench's jobs)\n");
    return 2;
}

#else /* the bench */

#include <curl/curl.h>
#include <dirent.h>
#include <libpq-fe.h>

extern char **environ;

#define MAX_SERVERS 8
#define URL_LEN     128

static struct {
    const char *sked;
    double seconds;
    int clients;
    int e2e_runs;
    int samples;
    int slots;
    int pg;             /* 1 = the cluster table on PostgreSQL instead of SQLite */
    const char *pg_url; /* base store URL; default $SKED_TEST_PG_URL */
    int pg_runs;        /* end-to-end runs per cluster configuration */
    int configs[MAX_SERVERS];
    int nconfigs;
    const char *plugin_dir; /* where noop.so is; default: plugins/ beside the sked binary */
    int noop_runs;          /* noop jobs submitted; also the array's count (at most 10,000) */
    int noop_slots;         /* the noop worker's slots */
    int batch_clients;      /* clients of the batch submit phase */
    int batch_size;         /* jobs per POST /v1/jobs:batch */
    double open_rate;       /* submits/s of the open-loop phase */
} opt = {NULL, 5.0, 32, 2000, 60, 0, 0, NULL, 1000, {1, 2, 3}, 3, NULL, 10000, 256, 4, 1000, 5000};

static char self[4096];
static char stamp_bin[4200]; /* the job of the dispatch phases */
static char tmpdir[256];
static char token[128];
static char token_file[600];

/* The servers of the configuration being measured. */
static char urls[MAX_SERVERS][URL_LEN];
static int nurls;

/* ---- small helpers ------------------------------------------------------ */

static double now_s(void)
{
    return (double)clock_mono_ns() / 1e9;
}

/* The v[0..n) percentile p (sorts v). */
static double percentile(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, bl_cmp_double);
    return bl_percentile(v, n, p);
}

/* SIGTERM to every pid at once (servers and workers drain in parallel),
 * then waits up to 5 s for all of them before SIGKILL. Clears the pids. */
static void stop_procs(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0) kill(pids[i], SIGTERM);
    double deadline = now_s() + 5.0;
    for (int i = 0; i < n; i++) {
        if (pids[i] <= 0) continue;
        while (waitpid(pids[i], NULL, WNOHANG) == 0) {
            if (now_s() >= deadline) {
                fprintf(stderr, "bench: pid %ld did not stop in 5 s; killing it\n", (long)pids[i]);
                kill(pids[i], SIGKILL);
                waitpid(pids[i], NULL, 0);
                break;
            }
            bl_sleep_ms(20);
        }
        pids[i] = -1;
    }
}

static void stop_proc(pid_t pid)
{
    stop_procs(&pid, 1);
}

/* ---- HTTP --------------------------------------------------------------- */

struct sink {
    char buf[8192];
    size_t len;
};

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = sz * n, room = sizeof s->buf - 1 - s->len;
    size_t c = len < room ? len : room;
    memcpy(s->buf + s->len, p, c);
    s->len += c;
    s->buf[s->len] = '\0';
    return len;
}

/* One keep-alive connection to one server. */
struct client {
    CURL *c;
    struct curl_slist *hdrs;
    const char *base; /* borrowed: an entry of urls[] */
};

static void client_init(struct client *cl, const char *base)
{
    char auth[200];
    cl->c = curl_easy_init();
    cl->base = base;
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    cl->hdrs = curl_slist_append(NULL, auth);
    cl->hdrs = curl_slist_append(cl->hdrs, "Content-Type: application/json");
    /* No "Expect: 100-continue" before a large body (a batch): one round
     * trip less, and no wait on curl's expect timeout. */
    cl->hdrs = curl_slist_append(cl->hdrs, "Expect:");
    curl_easy_setopt(cl->c, CURLOPT_HTTPHEADER, cl->hdrs);
    curl_easy_setopt(cl->c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(cl->c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(cl->c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(cl->c, CURLOPT_TCP_NODELAY, 1L);
}

static void client_fini(struct client *cl)
{
    curl_easy_cleanup(cl->c);
    curl_slist_free_all(cl->hdrs);
    cl->c = NULL;
    cl->hdrs = NULL;
}

/* Requests sent by request(): each GET is one read transaction of the
 * store, which the --pg cost table takes out of the database's counts. */
static long requests_sent;
static long polls_done; /* remaining() calls, for the --pg idle window */

/* Returns the HTTP status, or 0 when no answer came. */
static long request(struct client *cl, const char *method, const char *path, const char *body,
                    struct sink *s)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", cl->base, path);
    s->len = 0;
    s->buf[0] = '\0';
    curl_easy_setopt(cl->c, CURLOPT_URL, full);
    curl_easy_setopt(cl->c, CURLOPT_WRITEDATA, s);
    if (body) {
        curl_easy_setopt(cl->c, CURLOPT_POSTFIELDS, body);
    } else {
        curl_easy_setopt(cl->c, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(cl->c, CURLOPT_CUSTOMREQUEST, method);
    requests_sent++;
    long status = 0;
    if (curl_easy_perform(cl->c) == CURLE_OK)
        curl_easy_getinfo(cl->c, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* ---- processes: servers and workers --------------------------------------- */

/* Starts `sked server` on store; fills dst with its URL. When want_token,
 * the store is new: the bootstrap admin token is read into token[] and
 * written to token_file[] (which the workers read). */
static pid_t start_server(const char *store, int want_token, const char *errlog, char *dst,
                          int *out)
{
    return bl_start_server("bench", opt.sked, store, token_file, NULL, errlog, out, dst, URL_LEN,
                           want_token ? token : NULL, sizeof token);
}

/* Starts `sked worker --server servers`; waits until it has registered.
 * The jobs here are /bin/true and our own stamp, writing under tmpdir. */
static pid_t start_worker(const char *servers, int slots, const char *name, const char *errlog,
                          int *out, const char *plugin_dir)
{
    char work_dir[300];
    snprintf(work_dir, sizeof work_dir, "%s/work", tmpdir);
    return bl_start_worker("bench", opt.sked, servers, token_file, slots, name, work_dir,
                           plugin_dir, errlog, out);
}

/* ---- phase 1: the machine's spawn ceiling -------------------------------- */

static double spawn_deadline;
static long spawn_counts[64];

static void *spawner(void *arg)
{
    long *count = arg;
    char *argv[] = {"/bin/true", NULL};
    while (now_s() < spawn_deadline) {
        pid_t pid;
        if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ)) break;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
        (*count)++;
    }
    return NULL;
}

static double spawn_ceiling(int spawners)
{
    pthread_t th[64];
    double t0 = now_s();
    spawn_deadline = t0 + opt.seconds;
    for (int i = 0; i < spawners; i++)
        pthread_create(&th[i], NULL, spawner, &spawn_counts[i]);
    long total = 0;
    for (int i = 0; i < spawners; i++) {
        pthread_join(th[i], NULL);
        total += spawn_counts[i];
    }
    return (double)total / (now_s() - t0);
}

/* ---- phase 2: submit throughput ------------------------------------------- */

/* Submits go through loadgen (bench/loadgen.h): one thread, one epoll, N
 * keep-alive connections, a few microseconds of client CPU per request, so
 * the client does not take the server's cores. */

struct submit_build {
    const char *kind; /* "future", "noop", "e2e" */
    int phase;        /* names differ from phase to phase: no 409 for a name taken */
    int batch;        /* jobs per call: POST /v1/jobs:batch; 0 = one job per POST /v1/jobs */
    char headers[256];
    char *body;
    size_t room;
};

/* Request n: one job (or a batch of them) of the phase's kind. */
static int submit_build(void *arg, uint64_t n, loadgen_req_t *out)
{
    struct submit_build *b = arg;
    size_t off = 0;
    long pid = (long)getpid() * 1000 + b->phase;
    unsigned long long i = (unsigned long long)n;
    if (b->batch) {
        off = (size_t)snprintf(b->body, b->room, "{\"jobs\":[");
        for (int k = 0; k < b->batch && off < b->room; k++)
            off += (size_t)snprintf(b->body + off, b->room - off,
                                    "%s{\"name\":\"batch-%llu-%d-%ld\",\"command\":[\"/bin/true\"],"
                                    "\"schedules\":[{\"at\":\"2099-01-01T00:00:00Z\"}]}",
                                    k ? "," : "", i, k, pid);
        if (off < b->room) off += (size_t)snprintf(b->body + off, b->room - off, "]}");
    } else if (!strcmp(b->kind, "future")) {
        off = (size_t)snprintf(b->body, b->room,
                               "{\"name\":\"bench-%llu-%ld\",\"command\":[\"/bin/true\"],"
                               "\"schedules\":[{\"at\":\"2099-01-01T00:00:00Z\"}]}",
                               i, pid);
    } else if (!strcmp(b->kind, "noop")) {
        off = (size_t)snprintf(b->body, b->room, "{\"name\":\"noop-%llu-%ld\",\"type\":\"noop\"}",
                               i, pid);
    } else {
        off = (size_t)snprintf(b->body, b->room,
                               "{\"name\":\"e2e-%llu-%ld\",\"command\":[\"/bin/true\"]}", i, pid);
    }
    out->method = "POST";
    out->path = b->batch ? "/v1/jobs:batch" : "/v1/jobs";
    out->headers = b->headers;
    out->body = b->body;
    out->body_len = off < b->room ? off : b->room;
    return 0;
}

struct submit_result {
    double rate, p50, p95, p99, elapsed; /* rate: jobs/s; p50, p95, p99: per call */
    size_t ok;                           /* calls answered 2xx */
    long errors;
    double client_us; /* the client's CPU per call, us */
};

/* Submits through `clients` connections (connection i to server i mod
 * nurls) for `seconds`, or until `total` calls (0 = no count limit), of
 * `batch` jobs each (0: POST /v1/jobs); rate > 0: an open loop at that
 * many calls/s, latency counted from each call's scheduled time. */
static struct submit_result submit_calls(const char *kind, int clients, double seconds, int total,
                                         int batch, double rate)
{
    static int phases;
    struct submit_build b = {kind, ++phases, batch, "", NULL, 0};
    snprintf(b.headers, sizeof b.headers,
             "Authorization: Bearer %s\r\nContent-Type: application/json\r\n", token);
    b.room = batch ? (size_t)batch * 160 + 64 : 512;
    b.body = malloc(b.room);
    loadgen_target_t tg[MAX_SERVERS];
    char hosts[MAX_SERVERS][64];
    for (int i = 0; i < nurls; i++) {
        int port = 0;
        if (sscanf(urls[i], "http://%63[^:]:%d", hosts[i], &port) != 2) abort();
        tg[i] = (loadgen_target_t){hosts[i], port};
    }
    loadgen_opts_t o = {.targets = tg,
                        .ntargets = nurls,
                        .connections = clients,
                        .seconds = total ? 3600 : seconds,
                        .requests = (uint64_t)total,
                        .rate = rate,
                        .timeout_s = 60,
                        .build = submit_build,
                        .arg = &b};
    loadgen_result_t lr;
    struct submit_result r = {0};
    if (!b.body || loadgen_run(&o, &lr) != 0) abort();
    r.elapsed = lr.elapsed_s;
    r.ok = lr.status[2];
    r.errors = (long)(lr.issued - lr.status[2]);
    r.rate = (double)r.ok * (batch ? batch : 1) / (r.elapsed > 0 ? r.elapsed : 1);
    r.p50 = lr.lat_ms[0];
    r.p95 = lr.lat_ms[2];
    r.p99 = lr.lat_ms[3];
    r.client_us = lr.cpu_us_per_req;
    if (lr.first_bad_status)
        fprintf(stderr, "bench: a submit answered %d: %s\n", lr.first_bad_status,
                lr.first_bad_body);
    free(b.body);
    return r;
}

/* Runs `clients` submitters for `seconds` or until `total` jobs (0 = no
 * count limit) have been submitted. */
static struct submit_result submit_phase(const char *kind, int clients, double seconds, int total)
{
    return submit_calls(kind, clients, seconds, total, 0, 0);
}

/* The batch submit phase: `clients` submitters each posting batches of
 * opt.batch_size far-future jobs to POST /v1/jobs:batch for `seconds`. */
static struct submit_result batch_phase(int clients, double seconds)
{
    return submit_calls("future", clients, seconds, 0, opt.batch_size, 0);
}

/* The open-loop submit phase: `rate` far-future jobs/s, evenly spaced. */
static struct submit_result open_phase(int clients, double seconds, double rate)
{
    return submit_calls("future", clients, seconds, 0, 0, rate);
}

/* ---- phase 3: dispatch latency -------------------------------------------- */

static size_t count_lines(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    size_t n = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF)
        if (ch == '\n') n++;
    fclose(f);
    return n;
}

struct dispatch_result {
    double p50, p99;             /* fire time -> process start, ms */
    size_t got;                  /* stamps recorded */
    long errors;                 /* submits not answered 201 */
    double claim_p50, claim_p99; /* fire time -> claimed (the run's started_at), ms */
    size_t claimed;              /* runs whose started_at was read */
};

/* Copies the string value of the first "key":"..." in a JSON text into
 * dst; -1 when absent or not a string. Enough for the server's answers,
 * whose ids and times hold no escapes. */
static int json_str(const char *json, const char *key, char *dst, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *v = strstr(json, pat);
    if (!v) return -1;
    v += strlen(pat);
    size_t n = strcspn(v, "\"");
    if (v[n] != '"' || n >= len) return -1;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return 0;
}

/* The value of the first "key": number in a JSON text; -1 when absent. */
static long json_int(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *v = strstr(json, pat);
    return v ? strtol(v + strlen(pat), NULL, 10) : -1;
}

/* The server's share of each dispatch: for each job, its run's
 * started_at - fire_time, the moment a worker's claim took it. With the
 * stamps this splits a slow sample into server (fire, wake, claim) and
 * worker (answer to process start). DIR/claims.txt lists "CLAIM_MS
 * CREATED_MS JOB_ID" per run, both relative to the fire time. */
static void claim_delays(struct client *cl, const char *dir, char (*jobs)[64], int n,
                         struct dispatch_result *r)
{
    static double v[4096];
    struct sink sk;
    size_t got = 0;
    char file[500];
    /* Kept beside stamps.txt, so a slow sample can be looked up by job. */
    snprintf(file, sizeof file, "%s/claims.txt", dir);
    FILE *f = fopen(file, "w");
    for (int i = 0; i < n && got < 4096; i++) {
        char path[160], fire_s[64], start_s[64], created_s[64];
        int64_t fire = 0, start = 0, created = 0;
        if (!jobs[i][0]) continue;
        snprintf(path, sizeof path, "/v1/runs?job_id=%s&limit=1", jobs[i]);
        if (request(cl, "GET", path, NULL, &sk) != 200 ||
            json_str(sk.buf, "fire_time", fire_s, sizeof fire_s) ||
            json_str(sk.buf, "started_at", start_s, sizeof start_s) ||
            clock_parse_rfc3339(fire_s, &fire) || clock_parse_rfc3339(start_s, &start))
            continue;
        v[got++] = (double)(start - fire);
        /* created_at - fire_time: when the scheduler materialised the run
         * (negative = ahead of time, as it should be). */
        if (json_str(sk.buf, "created_at", created_s, sizeof created_s) ||
            clock_parse_rfc3339(created_s, &created))
            created = fire;
        if (f) fprintf(f, "%" PRId64 " %" PRId64 " %s\n", start - fire, created - fire, jobs[i]);
    }
    if (f) fclose(f);
    r->claimed = got;
    r->claim_p50 = percentile(v, got, 0.50);
    r->claim_p99 = percentile(v, got, 0.99);
}

/* Reads the stamps (ms from fire time to process start) into percentiles. */
static void read_stamps(const char *stamps, struct dispatch_result *r)
{
    static double v[4096];
    char line[256];
    FILE *f = fopen(stamps, "r");
    size_t n = 0;
    while (f && n < 4096 && fgets(line, sizeof line, f))
        v[n++] = strtod(line, NULL);
    if (f) fclose(f);
    r->got = n;
    r->p50 = percentile(v, n, 0.50);
    r->p99 = percentile(v, n, 0.99);
}

/* The bare spawn latency: the dispatch phase's own job (sked-bench-stamp)
 * started with posix_spawn at an exact millisecond given as its
 * SKED_FIRE_TIME, n times one after the other; p50/p99 of what it stamps
 * (fire time -> process start, the same clock and the same binary as the
 * dispatch samples). */
static void spawn_latency(const char *dir, int n, double *p50, double *p99)
{
    char file[500], at[SKED_RFC3339_LEN], envfire[80];
    snprintf(file, sizeof file, "%s/spawn-stamps.txt", dir);
    char *argv[] = {stamp_bin, "--stamp", file, NULL};
    char *envp[] = {envfire, "SKED_JOB_ID=bare-spawn", NULL};
    for (int i = 0; i < n; i++) {
        int64_t ms = clock_now_ms();
        while (clock_now_ms() == ms) { /* start on a millisecond boundary, as a fire time is */
        }
        clock_format_rfc3339(ms + 1, at, sizeof at);
        snprintf(envfire, sizeof envfire, "SKED_FIRE_TIME=%s", at);
        pid_t pid;
        if (posix_spawn(&pid, stamp_bin, NULL, NULL, argv, envp)) break;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    struct dispatch_result r = {0};
    read_stamps(file, &r);
    *p50 = r.p50;
    *p99 = r.p99;
}

/* Submits opt.samples stamping jobs to server `on`. Single server: all up
 * front, fire times 100 ms apart from 1 s out. Cross-server (stagger): one
 * every 150 ms, each with its `at` 300-500 ms ahead of its own submission,
 * so every run is materialised, announced and claimed in its own short
 * window as a live cluster would see it, with a free worker slot at each. */
static struct dispatch_result dispatch_phase(const char *dir, int on, int stagger)
{
    char stamps[400];
    struct dispatch_result r = {0};
    struct client cl;
    struct sink sk;
    char(*jobs)[64] = calloc((size_t)opt.samples, sizeof *jobs);
    if (!jobs) abort();
    snprintf(stamps, sizeof stamps, "%s/stamps.txt", dir);
    client_init(&cl, urls[on]);
    int64_t base = clock_now_ms() + 1000, last_fire = base;
    double t0 = now_s();
    for (int i = 0; i < opt.samples; i++) {
        char at[SKED_RFC3339_LEN], body[9000];
        int64_t fire;
        if (stagger) {
            double wait_s = t0 + i * 0.150 - now_s();
            if (wait_s > 0) bl_sleep_ms((int)(wait_s * 1000.0));
            /* 300..500 ms ahead, spread by a fixed permutation of i. */
            fire = clock_now_ms() + 300 + (i * 73) % 201;
        } else {
            fire = base + (int64_t)i * 100;
        }
        if (fire > last_fire) last_fire = fire;
        clock_format_rfc3339(fire, at, sizeof at);
        snprintf(body, sizeof body,
                 "{\"name\":\"dispatch-%d\",\"command\":[\"%s\",\"--stamp\",\"%s\"],"
                 "\"schedules\":[{\"at\":\"%s\"}]}",
                 i, stamp_bin, stamps, at);
        long st = request(&cl, "POST", "/v1/jobs", body, &sk);
        if (st != 201) {
            r.errors++;
            fprintf(stderr, "bench: dispatch submit answered %ld: %s\n", st, sk.buf);
        } else {
            json_str(sk.buf, "id", jobs[i], sizeof jobs[i]);
        }
    }
    /* Done when every accepted job has stamped, or 10 s after the last fire. */
    size_t want = (size_t)(opt.samples - r.errors);
    double deadline = now_s() + 10.0 + (double)(last_fire - clock_now_ms()) / 1000.0;
    while (count_lines(stamps) < want && now_s() < deadline)
        bl_sleep_ms(20);
    read_stamps(stamps, &r);
    claim_delays(&cl, dir, jobs, opt.samples, &r);
    client_fini(&cl);
    free(jobs);
    return r;
}

/* ---- phase 4: end to end -------------------------------------------------- */

/* Number of run states (scheduled, pending, running) that still hold a run;
 * 0 once every run is finished, -1 when the server does not answer. */
static int remaining(struct client *cl)
{
    static const char *states[] = {"scheduled", "pending", "running"};
    struct sink sk;
    int n = 0;
    polls_done++;
    for (size_t i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/runs?state=%s&limit=1", states[i]);
        if (request(cl, "GET", path, NULL, &sk) != 200) return -1;
        if (strstr(sk.buf, "\"id\"")) n++;
    }
    return n;
}

/* Worker requests the server has answered so far, from its /metrics:
 * reports (POST /v1/workers/{id}/complete) and heartbeats (which confirm
 * claimed runs, or renew leases); -1 each when /metrics did not answer. */
static void worker_requests(const char *url, double *reports, double *heartbeats)
{
    bl_http_t h;
    bl_http_init(&h, bl_url_port(url), token);
    *reports = *heartbeats = -1;
    if (bl_http(&h, "GET", "/metrics", NULL, 10.0) == 200) {
        *reports = bl_metric_sum(h.body, "sked_http_requests_total",
                                 "route=\"/v1/workers/{id}/complete\"");
        *heartbeats = bl_metric_sum(h.body, "sked_http_requests_total",
                                    "route=\"/v1/workers/{id}/heartbeat\"");
    }
    bl_http_fini(&h);
}

struct e2e_result {
    size_t ok;   /* runs submitted */
    long errors; /* submits refused */
    double rate; /* runs finished per second, submission start to last finish */
    int left;    /* non-zero: timed out with runs unfinished */
    int failed;  /* some run failed (or the check did not answer) */
};

/* Submits `runs` run-now jobs of kind ("now": /bin/true; "noop": the noop
 * plugin) over `clients` clients round-robin on the servers and waits (at
 * most `limit_s`) until none is left unfinished. */
static struct e2e_result e2e_phase(const char *kind, int clients, int runs, double limit_s)
{
    struct e2e_result r = {0};
    struct client cl;
    client_init(&cl, urls[0]);
    double t0 = now_s();
    struct submit_result sub = submit_phase(kind, clients, limit_s, runs);
    double deadline = t0 + limit_s;
    while ((r.left = remaining(&cl)) != 0 && now_s() < deadline)
        bl_sleep_ms(20);
    double elapsed = now_s() - t0;
    struct sink sk;
    /* /bin/true cannot fail: a failed run means sked lost or broke one. */
    r.failed = request(&cl, "GET", "/v1/runs?state=failed&limit=1", NULL, &sk) != 200 ||
               strstr(sk.buf, "\"id\"") != NULL;
    client_fini(&cl);
    r.ok = sub.ok;
    r.errors = sub.errors;
    r.rate = (double)sub.ok / elapsed;
    return r;
}

/* One job array of `count` noop runs: the time from its submit until no run
 * of it is left unfinished (at most limit_s). */
static struct e2e_result array_phase(int count, double limit_s)
{
    struct e2e_result r = {0};
    struct client cl;
    struct sink sk;
    char body[256], id[64] = "", path[128];
    client_init(&cl, urls[0]);
    snprintf(body, sizeof body,
             "{\"name\":\"noop-array-%ld\",\"type\":\"noop\",\"array\":{\"count\":%d}}",
             (long)getpid(), count);
    double t0 = now_s();
    if (request(&cl, "POST", "/v1/jobs", body, &sk) != 201 ||
        json_str(sk.buf, "id", id, sizeof id)) {
        fprintf(stderr, "bench: the noop array was refused: %s\n", sk.buf);
        r.errors = 1;
        client_fini(&cl);
        return r;
    }
    /* Until the job's latest run, the array's, has no member open
     * (GET /v1/jobs/{id}: "last_run": {..., "array": {..., "open": n,
     * "failed": n}}). Not by the state of the first run GET
     * /v1/runs?job_id= lists: that list holds the members too, in id order
     * within a fire time, and its first entry was as often a member (this
     * phase once printed 54,622 runs/s). */
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    double deadline = t0 + limit_s;
    r.left = 1;
    while (now_s() < deadline) {
        const char *last;
        long open;
        if (request(&cl, "GET", path, NULL, &sk) == 200 &&
            (last = strstr(sk.buf, "\"last_run\":{")) && (open = json_int(last, "open")) == 0) {
            r.left = 0;
            r.failed = json_int(last, "failed") != 0;
            break;
        }
        bl_sleep_ms(5);
    }
    r.ok = (size_t)count;
    r.rate = (double)count / (now_s() - t0);
    client_fini(&cl);
    return r;
}

/* ---- the SQLite table ----------------------------------------------------- */

static int bench_sqlite(long ncpu)
{
    fprintf(stderr, "bench: spawn ceiling (%ld spawners, %.0f s)...\n", ncpu, opt.seconds);
    double ceiling = spawn_ceiling((int)ncpu);
    double spawn_p50 = 0, spawn_p99 = 0;
    spawn_latency(tmpdir, opt.samples, &spawn_p50, &spawn_p99);

    char store[400], errlog[400], wlog[400];
    int sout = -1, wout = -1;
    pid_t server = -1, worker = -1;
    snprintf(store, sizeof store, "sqlite:%s/sked.db", tmpdir);
    snprintf(errlog, sizeof errlog, "%s/server.log", tmpdir);
    snprintf(wlog, sizeof wlog, "%s/worker.log", tmpdir);
    snprintf(token_file, sizeof token_file, "%s/admin.token", tmpdir);
    nurls = 1;
    server = start_server(store, 1, errlog, urls[0], &sout);
    if (server < 0) return 1;

    fprintf(stderr, "bench: submit (%d clients, %.0f s)...\n", opt.clients, opt.seconds);
    /* The server's CPU per job: far steadier than throughput on a machine
     * whose speed drifts, so the figure to compare two builds by. */
    double cpu0 = bl_proc_cpu_s(server);
    struct submit_result sub = submit_phase("future", opt.clients, opt.seconds, 0);
    double cpu1 = bl_proc_cpu_s(server);
    fprintf(stderr, "bench: batch submit (%d clients, batches of %d, %.0f s)...\n",
            opt.batch_clients, opt.batch_size, opt.seconds);
    struct submit_result bat = batch_phase(opt.batch_clients, opt.seconds);
    double cpu2 = bl_proc_cpu_s(server);
    double sub_us = sub.ok ? (cpu1 - cpu0) * 1e6 / (double)sub.ok : 0;
    double bat_us = bat.ok ? (cpu2 - cpu1) * 1e6 / ((double)bat.ok * opt.batch_size) : 0;
    fprintf(stderr, "bench: open-loop submit (%.0f/s over up to %d connections, %.0f s)...\n",
            opt.open_rate, opt.clients, opt.seconds);
    struct submit_result opn = open_phase(opt.clients, opt.seconds, opt.open_rate);

    worker = start_worker(urls[0], opt.slots, "bench", wlog, &wout, NULL);
    if (worker < 0) {
        stop_proc(server);
        if (sout >= 0) close(sout);
        return 1;
    }

    fprintf(stderr, "bench: dispatch latency (%d samples)...\n", opt.samples);
    struct dispatch_result d = dispatch_phase(tmpdir, 0, 0);

    fprintf(stderr, "bench: end to end (%d runs of /bin/true)...\n", opt.e2e_runs);
    /* Where a run's CPU goes: the server, the worker, and the job itself
     * (the worker's reaped children), the first two being what sked adds
     * to the spawn the ceiling measures. */
    double s0 = bl_proc_cpu_s(server), w0 = 0, j0 = 0, w1 = 0, j1 = 0, rep0, hb0, rep1, hb1;
    bool cpu_known = s0 >= 0 && bl_proc_cpu_split_s(worker, &w0, &j0) == 0;
    worker_requests(urls[0], &rep0, &hb0);
    struct e2e_result e2e = e2e_phase("now", 8, opt.e2e_runs, 120.0);
    worker_requests(urls[0], &rep1, &hb1);
    double s1 = bl_proc_cpu_s(server);
    cpu_known = cpu_known && s1 >= 0 && bl_proc_cpu_split_s(worker, &w1, &j1) == 0 && e2e.ok;
    double per_run = cpu_known ? 1e6 / (double)e2e.ok : 0; /* s -> us per run */
    stop_proc(worker);
    if (wout >= 0) close(wout);
    wout = -1;

    /* The noop plugin, on a worker of its own with the slots a plugin can
     * afford (no process per slot). */
    struct e2e_result nj = {0}, na = {0};
    snprintf(wlog, sizeof wlog, "%s/worker-noop.log", tmpdir);
    worker = start_worker(urls[0], opt.noop_slots, "bench-noop", wlog, &wout, opt.plugin_dir);
    if (worker < 0) {
        nj.failed = na.failed = 1;
    } else {
        fprintf(stderr, "bench: end to end (%d noop plugin jobs)...\n", opt.noop_runs);
        nj = e2e_phase("noop", opt.clients, opt.noop_runs, 120.0);
        fprintf(stderr, "bench: end to end (a noop job array of %d)...\n", opt.noop_runs);
        na = array_phase(opt.noop_runs, 120.0);
        stop_proc(worker);
    }
    stop_proc(server);
    if (wout >= 0) close(wout);
    if (sout >= 0) close(sout);

    printf("\nsked bench — %ld cores, store sqlite (WAL, synchronous=FULL)\n\n", ncpu);
    printf("| metric | measured | target |\n|---|---|---|\n");
    printf("| submit throughput, durable (%d keep-alive clients) | %.0f /s (%zu ok, %ld errors) "
           "| >= 15000 /s |\n",
           opt.clients, sub.rate, sub.ok, sub.errors);
    printf("| submit latency p50 / p99 | %.2f / %.2f ms | |\n", sub.p50, sub.p99);
    printf("| open-loop submit at %.0f/s: achieved, latency from the scheduled send p50 / p95 / "
           "p99 | %.0f /s, %.2f / %.2f / %.2f ms (%ld errors) | p95 <= 10, p99 <= 25 ms |\n",
           opt.open_rate, opn.rate, opn.p50, opn.p95, opn.p99, opn.errors);
    printf("| batch submit, durable (%d clients, POST /v1/jobs:batch of %d jobs) | %.0f jobs/s "
           "(%zu calls ok, %ld errors) | >= 50000 /s |\n",
           opt.batch_clients, opt.batch_size, bat.rate, bat.ok, bat.errors);
    printf("| batch submit latency per call p50 / p99 | %.2f / %.2f ms | |\n", bat.p50, bat.p99);
    printf("| server CPU per submit / per batch job | %.0f / %.0f us | |\n", sub_us, bat_us);
    printf("| dispatch latency p50 / p99, fire time -> process start (%zu samples) "
           "| %.2f / %.2f ms | p99 <= 20 ms |\n",
           d.got, d.p50, d.p99);
    printf("| of which fire time -> the run's started_at (server side; 0 when claimed ahead) | "
           "%.2f / %.2f ms | |\n",
           d.claim_p50, d.claim_p99);
    printf("| bare spawn latency p50 / p99, posix_spawn -> process start of the same job (%d "
           "samples) | %.2f / %.2f ms | dispatch p99 <= %.2f ms (+2 ms) |\n",
           opt.samples, spawn_p50, spawn_p99, spawn_p99 + 2.0);
    printf("| bare spawn ceiling, /bin/true (%ld spawners) | %.0f /s | |\n", ncpu, ceiling);
    printf("| end-to-end /bin/true runs (%zu runs, %d slots%s) | %.0f /s = %.0f %% of ceiling "
           "| >= 85 %% |\n",
           e2e.ok, opt.slots,
           e2e.left     ? ", TIMED OUT"
           : e2e.failed ? ", FAILED runs"
                        : "",
           e2e.rate, ceiling > 0 ? 100.0 * e2e.rate / ceiling : 0.0);
    if (cpu_known) {
        double su = (s1 - s0) * per_run, wu = (w1 - w0) * per_run, ju = (j1 - j0) * per_run;
        printf("| CPU per end-to-end run: server (submit included) / worker / the job itself | "
               "%.0f / %.0f / %.0f us | |\n",
               su, wu, ju);
        /* The rate the cores allow at that CPU per run, were no cycle ever
         * idle: what the end-to-end rate is bounded by on a machine where
         * sked shares the cores with its jobs, and so what the target asks
         * of sked's own share. */
        double bound = su + wu + ju > 0 ? (double)ncpu * 1e6 / (su + wu + ju) : 0;
        printf("| at that CPU per run, the most these %ld cores allow | %.0f /s = %.0f %% of "
               "ceiling; the runs reached %.0f %% of it | |\n",
               ncpu, bound, ceiling > 0 ? 100.0 * bound / ceiling : 0.0,
               bound > 0 ? 100.0 * e2e.rate / bound : 0.0);
    } else
        printf("| CPU per end-to-end run: server / worker / the job itself | unknown (no run, or "
               "a process was gone) | |\n");
    if (e2e.ok && rep0 >= 0 && rep1 >= 0)
        printf("| worker requests per end-to-end run: reports (completions, each with a claim) / "
               "heartbeats (confirmations of what they claimed) | %.2f / %.2f | |\n",
               (rep1 - rep0) / (double)e2e.ok, (hb1 - hb0) / (double)e2e.ok);
    printf("| end-to-end noop plugin runs, jobs from %d clients (%zu runs, %d slots%s) | %.0f /s = "
           "%.1fx the spawn ceiling | >= 5000 /s |\n",
           opt.clients, nj.ok, opt.noop_slots,
           nj.left     ? ", TIMED OUT"
           : nj.failed ? ", FAILED runs"
                       : "",
           nj.rate, ceiling > 0 ? nj.rate / ceiling : 0.0);
    printf("| end-to-end noop plugin runs, one job array (%zu runs, %d slots%s) | %.0f /s = %.1fx "
           "the spawn ceiling | >= 5000 /s |\n",
           na.ok, opt.noop_slots,
           na.left     ? ", TIMED OUT"
           : na.failed ? ", FAILED runs"
                       : "",
           na.rate, ceiling > 0 ? na.rate / ceiling : 0.0);
    printf("\n(logs and store in %s)\n", tmpdir);
    fflush(stdout);
    return e2e.left || e2e.failed || e2e.errors || sub.errors || bat.errors || opn.errors ||
           d.got < (size_t)opt.samples || nj.left || nj.failed || nj.errors || na.left ||
           na.failed || na.errors;
}

/* ---- the database's cost per job (the --pg table) ------------------------ */

/* What one job's lifecycle (submit -> claim -> complete) costs the
 * database, around the end-to-end phase: transactions from
 * pg_stat_database, write transactions from the transaction ids handed out,
 * and the CPU time of every PostgreSQL process next to the servers'. The
 * bench reads the database server's own counters on a connection of its
 * own; it never touches sked's tables (that SQL lives in src/store/).
 *
 * pg_stat_database lags: a backend publishes its counts at most once a
 * second while busy, and one that went idle within that second only after
 * PGSTAT_IDLE_INTERVAL (10 s). So each reading that ends a window is taken
 * SETTLE_S after the window's work, and an idle window of the same shape
 * (the same completion polls for as long, then the same settle) is
 * measured right after and subtracted: what is left is the jobs' own. */
#define SETTLE_S    11.0

/* One reading of the counters. */
struct pg_mark {
    double t;                        /* now_s() */
    long long commits, rollbacks;    /* pg_stat_database, this database */
    long long xid;                   /* txid_current(): write transactions so far */
    long gets;                       /* requests_sent: the bench's own read transactions */
    double db_cpu, srv_cpu, wrk_cpu; /* CPU seconds; db_cpu < 0: not on this host */
    int ok;
};

/* Per job, from the marks of one configuration (see cluster_config). */
struct pg_cost {
    int measured;
    double commits, rollbacks;             /* per job, the window including background */
    double commits_net, rollbacks_net;     /* per job, less the idle window */
    double writes_net;                     /* write transactions per job, less idle */
    double db_share, srv_share, wrk_share; /* CPU over the phase / (wall x cores) */
    double db_ms, srv_ms;                  /* CPU per job, ms, less idle; db_ms < 0: unknown */
    double window_s;                       /* the counted window (phase + settle) */
};

/* utime+stime (+ reaped children's when children) of pid in seconds; the
 * parent pid in *ppid; -1 when pid is gone. */
static double proc_cpu(long pid, int children, long *ppid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields follow the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    char state;
    long pp;
    unsigned long ut, st;
    long cut, cst;
    if (sscanf(p + 1, " %c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %ld %ld", &state, &pp,
               &ut, &st, &cut, &cst) != 6)
        return -1;
    if (ppid) *ppid = pp;
    double ticks = (double)ut + (double)st + (children ? (double)cut + (double)cst : 0);
    return ticks / (double)sysconf(_SC_CLK_TCK);
}

/* The PostgreSQL server's CPU: the postmaster with the children it reaped,
 * plus every live child (backends, checkpointer, WAL writer, autovacuum). */
static double pg_cpu(long postmaster)
{
    if (postmaster <= 0) return -1;
    double sum = proc_cpu(postmaster, 1, NULL);
    if (sum < 0) return -1;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        long pp = 0;
        if (*end || pid <= 0 || pid == postmaster) continue;
        double c = proc_cpu(pid, 1, &pp);
        if (c > 0 && pp == postmaster) sum += c;
    }
    if (d) closedir(d);
    return sum;
}

static double procs_cpu(const pid_t *pids, int n, int children)
{
    double sum = 0;
    for (int i = 0; i < n; i++) {
        double c = pids[i] > 0 ? proc_cpu(pids[i], children, NULL) : -1;
        if (c > 0) sum += c;
    }
    return sum;
}

/* The bench's watching connection; postmaster pid when the server runs on
 * this host (the parent of our backend), else 0. */
static PGconn *pg_watch_open(long *postmaster)
{
    *postmaster = 0;
    PGconn *c = PQconnectdb(opt.pg_url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench: cannot watch the database: %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    long pp = 0;
    if (proc_cpu(PQbackendPID(c), 0, &pp) >= 0) *postmaster = pp;
    return c;
}

/* Reads the counters; the reading is itself one write transaction
 * (txid_current assigns an id), which pg_cost_of takes out again. */
static void pg_mark(PGconn *c, long postmaster, const pid_t *srv, int nsrv, const pid_t *wrk,
                    int nwrk, struct pg_mark *m)
{
    memset(m, 0, sizeof *m);
    m->t = now_s();
    m->gets = requests_sent;
    m->db_cpu = pg_cpu(postmaster);
    m->srv_cpu = procs_cpu(srv, nsrv, 0);
    /* A worker's jobs are its children: reaped, their CPU is the worker's. */
    m->wrk_cpu = procs_cpu(wrk, nwrk, 1);
    if (!c) return;
    /* PG 15+: publish our own backend's counts now, not within the second. */
    const char *sql = PQserverVersion(c) >= 150000
                          ? "SELECT xact_commit, xact_rollback, txid_current(), "
                            "pg_stat_force_next_flush() FROM pg_stat_database "
                            "WHERE datname = current_database()"
                          : "SELECT xact_commit, xact_rollback, txid_current() "
                            "FROM pg_stat_database WHERE datname = current_database()";
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        m->commits = atoll(PQgetvalue(r, 0, 0));
        m->rollbacks = atoll(PQgetvalue(r, 0, 1));
        m->xid = atoll(PQgetvalue(r, 0, 2));
        m->ok = 1;
    } else {
        fprintf(stderr, "bench: reading pg_stat_database: %s", PQerrorMessage(c));
    }
    PQclear(r);
}

/* The idle window: as many completion polls as the end-to-end phase made
 * (nothing to wait for now), spread evenly over as long, so the window
 * carries the same bench traffic. */
static void idle_polls(long polls, double seconds)
{
    struct client cl;
    client_init(&cl, urls[0]);
    double t0 = now_s();
    for (long i = 0; i < polls; i++) {
        double wait_s = t0 + seconds * (double)i / (double)polls - now_s();
        if (wait_s > 0) bl_sleep_ms((int)(wait_s * 1000.0));
        remaining(&cl);
    }
    double rest = t0 + seconds - now_s();
    if (rest > 0) bl_sleep_ms((int)(rest * 1000.0));
    client_fini(&cl);
}

/* Per job from the marks: the counted window m0..m1 (phase + settle) less
 * the idle window m1..m2; CPU over the phase m0..me less the idle polls
 * m1..mi, scaled to the phase's length. */
static void pg_cost_of(const struct pg_mark *m0, const struct pg_mark *me, const struct pg_mark *m1,
                       const struct pg_mark *mi, const struct pg_mark *m2, size_t jobs,
                       struct pg_cost *c)
{
    memset(c, 0, sizeof *c);
    if (!jobs || !m0->ok || !m1->ok || !m2->ok) return;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double nj = (double)jobs, phase = me->t - m0->t, idle = mi->t - m1->t;
    double scale = idle > 0 ? phase / idle : 0;
    /* Each window holds one reading of ours (its commit and its xid) and
     * the bench's GETs (a read transaction each). */
    double com = (double)(m1->commits - m0->commits - 1 - (m1->gets - m0->gets));
    double com_idle = (double)(m2->commits - m1->commits - 1 - (m2->gets - m1->gets));
    double rb = (double)(m1->rollbacks - m0->rollbacks);
    double rb_idle = (double)(m2->rollbacks - m1->rollbacks);
    double wr = (double)(m1->xid - m0->xid - 1), wr_idle = (double)(m2->xid - m1->xid - 1);
    /* The idle window may run a little longer than the counted one. */
    double wscale = m2->t - m1->t > 0 ? (m1->t - m0->t) / (m2->t - m1->t) : 1;
    c->measured = 1;
    c->window_s = m1->t - m0->t;
    c->commits = com / nj;
    c->rollbacks = rb / nj;
    c->commits_net = (com - com_idle * wscale) / nj;
    c->rollbacks_net = (rb - rb_idle * wscale) / nj;
    c->writes_net = (wr - wr_idle * wscale) / nj;
    double cores = phase * (double)(ncpu > 0 ? ncpu : 1);
    c->srv_share = (me->srv_cpu - m0->srv_cpu) / cores;
    c->wrk_share = (me->wrk_cpu - m0->wrk_cpu) / cores;
    c->srv_ms = ((me->srv_cpu - m0->srv_cpu) - (mi->srv_cpu - m1->srv_cpu) * scale) * 1000.0 / nj;
    if (m0->db_cpu >= 0 && me->db_cpu >= 0 && m1->db_cpu >= 0 && mi->db_cpu >= 0) {
        c->db_share = (me->db_cpu - m0->db_cpu) / cores;
        c->db_ms = ((me->db_cpu - m0->db_cpu) - (mi->db_cpu - m1->db_cpu) * scale) * 1000.0 / nj;
    } else {
        c->db_share = c->db_ms = -1;
    }
}

/* ---- the PostgreSQL cluster table ---------------------------------------- */

struct cluster_row {
    int servers;
    int started; /* every process came up */
    struct submit_result sub, batch;
    struct e2e_result e2e;
    struct dispatch_result d;
    struct pg_cost cost;
};

/* "URL" + sked_schema=NAME, with ? or & as the URL needs. */
static void schema_url(char *dst, size_t len, const char *base, const char *schema)
{
    snprintf(dst, len, "%s%csked_schema=%s", base, strchr(base, '?') ? '&' : '?', schema);
}

/* One configuration: n servers on a fresh schema, then the three phases. */
static void cluster_config(int idx, int n, struct cluster_row *row)
{
    char dir[400], store[1200], schema[64], log[500], list[MAX_SERVERS * URL_LEN + 8];
    pid_t servers[MAX_SERVERS], workers[MAX_SERVERS];
    int souts[MAX_SERVERS], wouts[MAX_SERVERS];
    int nworkers = 0;
    memset(row, 0, sizeof *row);
    row->servers = n;
    for (int i = 0; i < MAX_SERVERS; i++)
        servers[i] = workers[i] = souts[i] = wouts[i] = -1;

    snprintf(dir, sizeof dir, "%s/pg%d-%dsrv", tmpdir, idx + 1, n);
    mkdir(dir, 0700);
    /* Unique per configuration (--servers 1,1 measures twice) and per bench
     * process, so reruns on a kept database stay apart too. */
    snprintf(schema, sizeof schema, "sked_bench_%ld_%d", (long)getpid(), idx + 1);
    schema_url(store, sizeof store, opt.pg_url, schema);
    snprintf(token_file, sizeof token_file, "%s/admin.token", dir);

    /* One at a time: the first migrates the fresh schema and bootstraps the
     * admin token; the others find both there. */
    nurls = n;
    for (int i = 0; i < n; i++) {
        snprintf(log, sizeof log, "%s/server-%d.log", dir, i);
        servers[i] = start_server(store, i == 0, log, urls[i], &souts[i]);
        if (servers[i] < 0) goto out;
    }

    fprintf(stderr, "bench: [%d server%s] submit (%d clients, %.0f s)...\n", n, n > 1 ? "s" : "",
            opt.clients, opt.seconds);
    row->sub = submit_phase("future", opt.clients, opt.seconds, 0);
    fprintf(stderr, "bench: [%d server%s] batch submit (%d clients, batches of %d, %.0f s)...\n", n,
            n > 1 ? "s" : "", opt.batch_clients, opt.batch_size, opt.seconds);
    row->batch = batch_phase(opt.batch_clients, opt.seconds);

    /* Cross-server dispatch: submit on A = server 0; the only worker polls
     * B = server 1 (with one server, A = B). */
    int b = n > 1 ? 1 : 0;
    snprintf(log, sizeof log, "%s/worker-dispatch.log", dir);
    workers[0] = start_worker(urls[b], opt.slots, "bench-dispatch", log, &wouts[0], NULL);
    if (workers[0] < 0) goto out;
    nworkers = 1;
    fprintf(stderr, "bench: [%d server%s] dispatch, submit on %s, worker on %s (%d samples)...\n",
            n, n > 1 ? "s" : "", urls[0], urls[b], opt.samples);
    row->d = dispatch_phase(dir, 0, 1);
    stop_procs(workers, nworkers);
    close(wouts[0]);
    wouts[0] = -1;
    nworkers = 0;

    /* End to end: one worker per server, worker i given the list rotated to
     * start at server i (it uses the first that answers), the slots split
     * between them so every configuration has the same execution capacity. */
    for (int i = 0; i < n; i++) {
        char name[32];
        int slots = opt.slots / n + (i < opt.slots % n);
        if (slots < 1) slots = 1;
        size_t off = 0;
        for (int j = 0; j < n; j++)
            off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", j ? "," : "",
                                    urls[(i + j) % n]);
        snprintf(name, sizeof name, "bench-%d", i);
        snprintf(log, sizeof log, "%s/worker-%d.log", dir, i);
        workers[i] = start_worker(list, slots, name, log, &wouts[i], NULL);
        if (workers[i] < 0) goto out;
        nworkers = i + 1;
    }
    fprintf(stderr, "bench: [%d server%s] end to end (%d runs of /bin/true, %d worker%s)...\n", n,
            n > 1 ? "s" : "", opt.pg_runs, n, n > 1 ? "s" : "");
    /* The database's cost per job: settle | m0 | phase | me, settle | m1 |
     * the phase's polls as long as it | mi, settle | m2, where m1..m2 is as
     * long as m0..m1 (pg_cost's comment). */
    long postmaster = 0;
    PGconn *watch = pg_watch_open(&postmaster);
    struct pg_mark m0, me, m1, mi, m2;
    /* The earlier phases' counts settle first, so m0's lag is background. */
    bl_sleep_ms((int)(SETTLE_S * 1000.0));
    pg_mark(watch, postmaster, servers, n, workers, nworkers, &m0);
    long polls0 = polls_done;
    row->e2e = e2e_phase("now", 8, opt.pg_runs, 60.0);
    row->started = 1;
    pg_mark(watch, postmaster, servers, n, workers, nworkers, &me);
    long polls = polls_done - polls0;
    fprintf(stderr, "bench: [%d server%s] database counters: settle, then an idle window...\n", n,
            n > 1 ? "s" : "");
    bl_sleep_ms((int)(SETTLE_S * 1000.0));
    pg_mark(watch, postmaster, servers, n, workers, nworkers, &m1);
    idle_polls(polls, me.t - m0.t);
    pg_mark(watch, postmaster, servers, n, workers, nworkers, &mi);
    double rest = m1.t + (m1.t - m0.t) - now_s();
    if (rest > 0) bl_sleep_ms((int)(rest * 1000.0));
    pg_mark(watch, postmaster, servers, n, workers, nworkers, &m2);
    PQfinish(watch);
    pg_cost_of(&m0, &me, &m1, &mi, &m2, row->e2e.ok, &row->cost);
out:
    /* Workers first, so their drained attempts still reach a server. */
    stop_procs(workers, nworkers);
    stop_procs(servers, n);
    for (int i = 0; i < MAX_SERVERS; i++) {
        if (wouts[i] >= 0) close(wouts[i]);
        if (souts[i] >= 0) close(souts[i]);
    }
}

/* "DB % / servers % / workers %" of the end-to-end phase. */
static void share_text(const struct pg_cost *c, char *dst, size_t len)
{
    if (!c->measured) {
        snprintf(dst, len, "n/a");
    } else if (c->db_share < 0) {
        snprintf(dst, len, "n/a (remote DB) / %.0f %% / %.0f %%", 100.0 * c->srv_share,
                 100.0 * c->wrk_share);
    } else {
        snprintf(dst, len, "%.0f %% / %.0f %% / %.0f %%", 100.0 * c->db_share, 100.0 * c->srv_share,
                 100.0 * c->wrk_share);
    }
}

static int bench_pg(long ncpu)
{
    struct cluster_row rows[MAX_SERVERS];
    int failed = 0;
    for (int i = 0; i < opt.nconfigs; i++) {
        cluster_config(i, opt.configs[i], &rows[i]);
        struct cluster_row *r = &rows[i];
        if (!r->started || r->sub.errors || r->batch.errors || r->e2e.errors || r->e2e.left ||
            r->e2e.failed || r->d.got < (size_t)opt.samples)
            failed = 1;
    }

    printf("\nsked bench — %ld cores, cluster: N servers on one PostgreSQL (synchronous_commit=on, "
           "fsync=on), fresh schema per row\n",
           ncpu);
    printf("submit: %d keep-alive clients round-robin over the servers, %.0f s; batch submit: %d "
           "clients posting batches of %d; e2e: %d /bin/true "
           "runs, one worker per server, %d slots in all;\n"
           "cross-server dispatch: submitted on server A with `at` 300-500 ms ahead, the only "
           "worker long-polling on server B, fire time -> process start\n\n",
           opt.clients, opt.seconds, opt.batch_clients, opt.batch_size, opt.pg_runs, opt.slots);
    printf(
        "| servers | submit/s | submit p50 / p99 ms | batch submit jobs/s | batch call p50 / p99 "
        "ms | e2e runs/s | e2e CPU share: DB / servers / workers | cross-server dispatch p50 / "
        "p99 ms | of which fire -> claim p50 / p99 ms | notes |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < opt.nconfigs; i++) {
        struct cluster_row *r = &rows[i];
        char notes[200] = "";
        size_t off = 0;
        if (!r->started)
            off += (size_t)snprintf(notes + off, sizeof notes - off, "DID NOT START; ");
        if (r->sub.errors || r->batch.errors || r->e2e.errors)
            off += (size_t)snprintf(notes + off, sizeof notes - off, "%ld submit errors; ",
                                    r->sub.errors + r->batch.errors + r->e2e.errors);
        if (r->e2e.left)
            off += (size_t)snprintf(notes + off, sizeof notes - off, "e2e TIMED OUT; ");
        if (r->e2e.failed)
            off += (size_t)snprintf(notes + off, sizeof notes - off, "FAILED runs; ");
        if (r->d.got < (size_t)opt.samples)
            off += (size_t)snprintf(notes + off, sizeof notes - off, "%zu of %d stamps; ", r->d.got,
                                    opt.samples);
        if (r->servers == 1) snprintf(notes + off, sizeof notes - off, "dispatch: A = B");
        char share[80];
        share_text(&r->cost, share, sizeof share);
        printf("| %d | %.0f (%zu ok) | %.2f / %.2f | %.0f (%zu calls) | %.2f / %.2f | %.0f (%zu "
               "runs) | %s | %.2f / %.2f (%zu samples) | %.2f / %.2f | %s |\n",
               r->servers, r->sub.rate, r->sub.ok, r->sub.p50, r->sub.p99, r->batch.rate,
               r->batch.ok, r->batch.p50, r->batch.p99, r->e2e.rate, r->e2e.ok, share, r->d.p50,
               r->d.p99, r->d.got, r->d.claim_p50, r->d.claim_p99, notes);
    }

    printf("\nPostgreSQL cost per job, end-to-end phase (submit -> claim -> complete of %d "
           "/bin/true jobs): transactions from pg_stat_database over the phase + %.0f s for "
           "its counts to settle, less the bench's own GETs (one read transaction each), with "
           "the background (heartbeats, scheduler, reaper, alerter) and net of an idle "
           "window of the same shape; write transactions (ids handed out), net; CPU over the "
           "phase (%% of wall x %ld cores), and per job net of the idle window's\n\n",
           opt.pg_runs, SETTLE_S, ncpu);
    printf("| servers | commits / job (with background) | commits / job (net) | rollbacks / job "
           "(with / net) | write transactions / job (net) | CPU share DB / servers / workers "
           "| server CPU / job (net) | DB CPU / job (net) |\n|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < opt.nconfigs; i++) {
        struct pg_cost *c = &rows[i].cost;
        char share[80], dbms[32];
        if (!c->measured) {
            printf("| %d | not measured | | | | | | |\n", rows[i].servers);
            continue;
        }
        share_text(c, share, sizeof share);
        if (c->db_ms >= 0)
            snprintf(dbms, sizeof dbms, "%.2f ms", c->db_ms);
        else
            snprintf(dbms, sizeof dbms, "n/a (remote)");
        printf("| %d | %.2f | %.2f | %.3f / %.3f | %.2f | %s | %.2f ms | %s |\n", rows[i].servers,
               c->commits, c->commits_net, c->rollbacks, c->rollbacks_net, c->writes_net, share,
               c->srv_ms, dbms);
    }
    printf("\n(logs in %s)\n", tmpdir);
    fflush(stdout);
    return failed;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sked-bench [--sked PATH] [--seconds S] [--clients N] [--runs N] "
            "[--samples N] [--slots N]\n"
            "       sked-bench --pg [--pg-url URL] [--servers LIST] [--pg-runs N] [options]\n\n"
            "Starts sked server + worker on 127.0.0.1 and prints submit throughput and\n"
            "latency (one job per call, then batches of jobs per call), dispatch\n"
            "latency and end-to-end /bin/true runs/s against the\n"
            "machine's bare spawn ceiling, then end-to-end runs/s of the noop plugin\n"
            "(no process per run), as jobs and as one job array (SQLite store).\n\n"
            "With --pg, prints the cluster table instead: for 1, 2 and 3 servers on one\n"
            "PostgreSQL database, submit throughput and p50/p99 latency (clients spread\n"
            "round-robin over the servers), end-to-end /bin/true runs/s (one worker per\n"
            "server, given the whole --server list), and cross-server dispatch latency\n"
            "(submitted on one server, the only worker long-polling on another); then\n"
            "what the end-to-end phase cost the database per job: commits and rollbacks\n"
            "(pg_stat_database), write transactions, and the CPU of PostgreSQL (when it\n"
            "runs on this host), the servers and the workers. Each\n"
            "configuration runs in a fresh schema sked_bench_PID_I of the database, which\n"
            "is left behind: use a throwaway database, e.g.\n"
            "    tests/store/pg_harness.sh build/sked-bench --pg\n\n"
            "  --sked PATH     the sked binary (default: sked next to this binary)\n"
            "  --seconds S     length of the timed submit phases (default 5)\n"
            "  --clients N     concurrent keep-alive submitters (default 32)\n"
            "  --runs N        end-to-end /bin/true runs, SQLite (default 2000)\n"
            "  --samples N     dispatch latency samples (default 60)\n"
            "  --slots N       worker slots; with --pg, in all, split between the workers\n"
            "                  (default 4 x cores)\n"
            "  --pg            measure the PostgreSQL cluster instead of SQLite\n"
            "  --pg-url URL    the database (default: $SKED_TEST_PG_URL, which\n"
            "                  pg_harness.sh sets), e.g. 'postgres:///DB?host=SOCKDIR'\n"
            "  --servers LIST  server counts to measure, e.g. 1,3 (default 1,2,3; each 1..%d)\n"
            "  --pg-runs N     end-to-end runs per cluster configuration (default 1000)\n"
            "  --plugin-dir D  where the noop plugin is (default: plugins/ beside sked)\n"
            "  --noop-runs N   noop plugin jobs, and the size of the noop array (default\n"
            "                  10000, at most 10000)\n"
            "  --noop-slots N  slots of the worker running them (default 256)\n"
            "  --batch-clients N  clients of the batch submit phase, each posting\n"
            "                  POST /v1/jobs:batch of far-future jobs (default 4)\n"
            "  --batch-size N  jobs per batch (default 1000, at most 1000)\n"
            "  --open-rate R   submits/s of the open-loop phase (default 5000): latency\n"
            "                  counted from each submit's scheduled time\n"
            "  -h, --help      this help\n\n"
            "Exits 0 when every phase completed without errors, 1 otherwise.\n",
            MAX_SERVERS);
}

/* "1,2,3" -> opt.configs; -1 when malformed. */
static int parse_servers(const char *s)
{
    opt.nconfigs = 0;
    while (*s) {
        char *end = NULL;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > MAX_SERVERS || opt.nconfigs == MAX_SERVERS) return -1;
        opt.configs[opt.nconfigs++] = (int)v;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        s = end;
    }
    return opt.nconfigs ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--stamp")) return stamp_main(argv[2]);
    static const struct option longopts[] = {{"sked", required_argument, NULL, 'k'},
                                             {"seconds", required_argument, NULL, 's'},
                                             {"clients", required_argument, NULL, 'c'},
                                             {"runs", required_argument, NULL, 'r'},
                                             {"samples", required_argument, NULL, 'n'},
                                             {"slots", required_argument, NULL, 'w'},
                                             {"pg", no_argument, NULL, 'p'},
                                             {"pg-url", required_argument, NULL, 'u'},
                                             {"servers", required_argument, NULL, 'S'},
                                             {"pg-runs", required_argument, NULL, 'R'},
                                             {"plugin-dir", required_argument, NULL, 'P'},
                                             {"noop-runs", required_argument, NULL, 'N'},
                                             {"noop-slots", required_argument, NULL, 'W'},
                                             {"batch-clients", required_argument, NULL, 'b'},
                                             {"batch-size", required_argument, NULL, 'B'},
                                             {"open-rate", required_argument, NULL, 'O'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'k':
            opt.sked = optarg;
            break;
        case 's':
            opt.seconds = atof(optarg);
            break;
        case 'c':
            opt.clients = atoi(optarg);
            break;
        case 'r':
            opt.e2e_runs = atoi(optarg);
            break;
        case 'n':
            opt.samples = atoi(optarg);
            break;
        case 'w':
            opt.slots = atoi(optarg);
            break;
        case 'p':
            opt.pg = 1;
            break;
        case 'u':
            opt.pg_url = optarg;
            break;
        case 'S':
            if (parse_servers(optarg) < 0) {
                fprintf(stderr, "sked-bench: --servers takes counts 1..%d, e.g. 1,2,3\n",
                        MAX_SERVERS);
                return 2;
            }
            break;
        case 'R':
            opt.pg_runs = atoi(optarg);
            break;
        case 'P':
            opt.plugin_dir = optarg;
            break;
        case 'N':
            opt.noop_runs = atoi(optarg);
            break;
        case 'W':
            opt.noop_slots = atoi(optarg);
            break;
        case 'b':
            opt.batch_clients = atoi(optarg);
            break;
        case 'B':
            opt.batch_size = atoi(optarg);
            break;
        case 'O':
            opt.open_rate = atof(optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || opt.clients < 1 || opt.clients > 256 || opt.batch_clients < 1 ||
        opt.batch_clients > 64 || opt.batch_size < 1 || opt.batch_size > 1000 ||
        opt.open_rate < 1 || opt.open_rate > 100000 || opt.seconds <= 0 || opt.seconds > 60 ||
        opt.e2e_runs < 1 || opt.e2e_runs > 100000 || opt.samples < 1 || opt.samples > 4000 ||
        opt.slots < 0 || opt.slots > 1024 || opt.pg_runs < 1 || opt.pg_runs > 100000 ||
        opt.noop_runs < 1 || opt.noop_runs > 10000 || opt.noop_slots < 1 || opt.noop_slots > 4096) {
        usage(stderr);
        return 2;
    }
    if (opt.pg && !opt.pg_url) opt.pg_url = getenv("SKED_TEST_PG_URL");
    if (opt.pg && (!opt.pg_url || !*opt.pg_url)) {
        fprintf(stderr, "sked-bench: --pg needs --pg-url or SKED_TEST_PG_URL (run it under "
                        "tests/store/pg_harness.sh)\n");
        return 2;
    }
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) return 1;
    self[sl] = '\0';
    char skedpath[4200];
    if (!opt.sked) {
        snprintf(skedpath, sizeof skedpath, "%s", self);
        char *slash = strrchr(skedpath, '/');
        snprintf(slash + 1, sizeof skedpath - (size_t)(slash + 1 - skedpath), "sked");
        opt.sked = skedpath;
    }
    char plugin_dir[4200];
    if (!opt.plugin_dir) {
        snprintf(plugin_dir, sizeof plugin_dir, "%s", opt.sked);
        char *end = strrchr(plugin_dir, '/');
        snprintf(end ? end + 1 : plugin_dir,
                 sizeof plugin_dir - (size_t)(end ? end + 1 - plugin_dir : 0), "plugins");
        opt.plugin_dir = plugin_dir;
    }
    /* sked-bench-stamp beside us when built; else this binary's --stamp. */
    snprintf(stamp_bin, sizeof stamp_bin, "%s", self);
    char *slash = strrchr(stamp_bin, '/');
    snprintf(slash + 1, sizeof stamp_bin - (size_t)(slash + 1 - stamp_bin), "sked-bench-stamp");
    if (access(stamp_bin, X_OK) != 0) snprintf(stamp_bin, sizeof stamp_bin, "%s", self);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) ncpu = 1;
    if (ncpu > 64) ncpu = 64;
    if (!opt.slots) opt.slots = (int)ncpu * 4;
    /* Servers and workers answer on pipes we may stop reading. */
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sked-bench-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("sked-bench: mkdtemp");
        return 1;
    }
    int rc = opt.pg ? bench_pg(ncpu) : bench_sqlite(ncpu);
    curl_global_cleanup();
    return rc;
}

#endif /* SKED_BENCH_STAMP_ONLY */
