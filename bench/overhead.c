/*
 * sked-overhead: what sked itself costs next to the work it runs, and how
 * busy it keeps a worker's slots (issue 13, point 5: the requirements' own
 * metrics).
 *
 *     sked-overhead [--runs N] [--cpu-ms MS] [--slots N] [--util-jobs N]
 *                   [--util-cpu-ms MS] [--sleep-jobs N] [--sleep-ms MS]
 *                   [--sleep-slots N] [--seconds S] [--sked PATH]
 *
 * Starts `sked server` on a fresh SQLite file in a temporary directory on
 * 127.0.0.1 (--rate-limit off) and one `sked worker` with --slots slots
 * (default 2, one per core of the machine this was written on). The job is
 * sked-bench-burn (bench/burn.c, static): it burns a given CPU time or
 * sleeps, then appends its monotonic start and end and its own CPU
 * (getrusage) to a file.
 *
 *  a) Overhead: N jobs (default 20) of 1 s of CPU each, submitted at once.
 *     From before the first submit to the server counting the last run
 *     finished, the CPU of the server and of the worker's whole process
 *     tree (the worker, its plugin hosts and watchers, and the jobs, which
 *     are subtracted: their own CPU is what they wrote) from /proc. Printed
 *     per run and as a ratio to the job's CPU (target < 1 %).
 *  b) Utilisation: a backlog of short jobs, all due at the same instant a
 *     second ahead: --util-jobs (40) of --util-cpu-ms (250 ms) CPU on the
 *     same worker, then --sleep-jobs (80) that sleep --sleep-ms (200 ms) on
 *     a worker of --sleep-slots (8) slots. Busy slot-time (the jobs' own
 *     start and end stamps) over slots x the time from the first start to
 *     the last end (target >= 95 %); also over the time work was pending
 *     only (first start to last start), which leaves out the tail where
 *     slots idle because nothing is left to run.
 *
 * Every wait has a deadline (--seconds per phase); the processes are
 * stopped by pid (SIGTERM, then SIGKILL after 5 s) and get SIGTERM should
 * the bench die first. A measurement, not a test: nothing is asserted;
 * the exit status says whether every phase completed.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"

#define WHO "overhead"

static struct {
    int runs, cpu_ms, slots;
    int util_jobs, util_cpu_ms;
    int sleep_jobs, sleep_ms, sleep_slots;
    double seconds;
    const char *sked;
} opt = {20, 1000, 2, 40, 250, 80, 200, 8, 180.0, NULL};

static char tmp[] = "/tmp/sked-overhead.XXXXXX";
static char token[160], token_file[600], burn[PATH_MAX];
static int port;

/* ---- processes ------------------------------------------------------------- */

static pid_t start_server(int *out)
{
    char store[600], errlog[600], url[256];
    snprintf(store, sizeof store, "sqlite:%s/sked.db", tmp);
    snprintf(token_file, sizeof token_file, "%s/admin.token", tmp);
    snprintf(errlog, sizeof errlog, "%s/server.log", tmp);
    pid_t pid = bl_start_server(WHO, opt.sked, store, token_file, NULL, errlog, out, url,
                                sizeof url, token, sizeof token);
    if (pid > 0) port = bl_url_port(url);
    return pid;
}

/* A worker of `slots` named `name`; its job is our own burner, writing
 * under tmp. */
static pid_t start_worker(int slots, const char *name, int *out)
{
    char url[64], errlog[600], work[600];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    snprintf(errlog, sizeof errlog, "%s/%s.log", tmp, name);
    snprintf(work, sizeof work, "%s/work-%s", tmp, name);
    return bl_start_worker(WHO, opt.sked, url, token_file, slots, name, work, NULL, errlog, out);
}

/* ---- the jobs' stamps ------------------------------------------------------ */

struct stamp {
    double start, end; /* monotonic s */
    double cpu;        /* the job's own CPU, s */
};

/* Reads up to max stamps of file into v; returns how many. */
static int read_stamps(const char *file, struct stamp *v, int max)
{
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    int n = 0;
    long long s, e, c;
    char line[256];
    while (n < max && fgets(line, sizeof line, f))
        if (sscanf(line, "%lld %lld %lld", &s, &e, &c) == 3)
            v[n++] = (struct stamp){(double)s / 1e9, (double)e / 1e9, (double)c / 1e6};
    fclose(f);
    return n;
}

static int count_lines(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

/* Waits until file holds want lines; reads the file only (no load on the
 * server while it is measured). 0 when they all came before deadline. */
static int wait_lines(const char *file, int want, double deadline)
{
    while (count_lines(file) < want) {
        if (bl_now_s() >= deadline) return -1;
        bl_sleep_ms(10);
    }
    return 0;
}

/* Waits until the server holds no run scheduled, pending or running. */
static int wait_runs_done(bl_http_t *h, double deadline)
{
    static const char *states[] = {"scheduled", "pending", "running"};
    for (;;) {
        int left = 0;
        for (size_t i = 0; i < 3 && !left; i++) {
            char path[96];
            snprintf(path, sizeof path, "/v1/runs?state=%s&limit=1", states[i]);
            if (bl_http(h, "GET", path, NULL, 10.0) != 200) return -1;
            left = strstr(h->body, "\"id\"") != NULL;
        }
        if (!left) return 0;
        if (bl_now_s() >= deadline) return -1;
        bl_sleep_ms(5);
    }
}

/* Submits n burner jobs writing to out (mode "--cpu-ms" or "--sleep-ms",
 * ms each); at (RFC 3339) or NULL = run now. 0 when all were accepted. */
static int submit_burners(bl_http_t *h, const char *tag, int n, const char *mode, int ms,
                          const char *out, const char *at)
{
    for (int i = 0; i < n; i++) {
        char body[PATH_MAX + 1024], sched[128] = "";
        if (at) snprintf(sched, sizeof sched, ",\"schedules\":[{\"at\":\"%s\"}]", at);
        snprintf(body, sizeof body,
                 "{\"name\":\"%s-%d\",\"command\":[\"%s\",\"%s\",\"%d\",\"--out\",\"%s\"]%s}", tag,
                 i, burn, mode, ms, out, sched);
        int st = bl_http(h, "POST", "/v1/jobs", body, 30.0);
        if (st != 201) {
            fprintf(stderr, WHO ": submit answered %d: %.300s\n", st, h->body ? h->body : "");
            return -1;
        }
    }
    return 0;
}

/* RFC 3339 UTC of now + ahead_ms, with milliseconds. */
static void rfc3339_ahead(int ahead_ms, char *dst, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + ahead_ms;
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(dst, len, "%s.%03lldZ", base, ms % 1000);
}

/* ---- a) overhead ------------------------------------------------------------ */

struct overhead {
    int ok;
    int runs;
    double wall, server_cpu, worker_cpu, job_cpu; /* s, in all */
    int procs;                                    /* the worker's tree at the end */
    double server_idle, worker_idle;              /* CPU s per s, idle, just before */
};

static struct overhead overhead_phase(bl_http_t *h, pid_t server, pid_t worker)
{
    struct overhead r = {0};
    char out[700];
    snprintf(out, sizeof out, "%s/overhead.txt", tmp);
    struct stamp *st = calloc((size_t)opt.runs, sizeof *st);
    if (!st) abort();
    /* What they burn doing nothing (timers, the parked claim), for scale. */
    double s0 = bl_tree_cpu_s(server, NULL), w0 = bl_tree_cpu_s(worker, NULL), i0 = bl_now_s();
    bl_sleep_ms(3000);
    double idle_s = bl_now_s() - i0;
    r.server_idle = (bl_tree_cpu_s(server, NULL) - s0) / idle_s;
    r.worker_idle = (bl_tree_cpu_s(worker, NULL) - w0) / idle_s;
    s0 = bl_tree_cpu_s(server, NULL);
    w0 = bl_tree_cpu_s(worker, NULL);
    double t0 = bl_now_s(), deadline = t0 + opt.seconds;
    if (submit_burners(h, "burn", opt.runs, "--cpu-ms", opt.cpu_ms, out, NULL) ||
        wait_lines(out, opt.runs, deadline) || wait_runs_done(h, deadline)) {
        fprintf(stderr, WHO ": the overhead phase did not complete in %.0f s\n", opt.seconds);
        free(st);
        return r;
    }
    r.wall = bl_now_s() - t0;
    r.server_cpu = bl_tree_cpu_s(server, NULL) - s0;
    r.worker_cpu = bl_tree_cpu_s(worker, &r.procs) - w0;
    r.runs = read_stamps(out, st, opt.runs);
    for (int i = 0; i < r.runs; i++)
        r.job_cpu += st[i].cpu;
    /* The jobs ran in the worker's tree: what is left is sked's. */
    r.worker_cpu -= r.job_cpu;
    r.ok = r.runs == opt.runs;
    free(st);
    return r;
}

/* ---- b) utilisation --------------------------------------------------------- */

struct util {
    int ok, jobs, slots;
    double window, busy;           /* first start -> last end; the jobs' wall time in all */
    double pending, pending_busy;  /* first start -> last start, and busy time inside it */
    double mean_job, idle_per_job; /* s */
};

static struct util util_phase(bl_http_t *h, const char *tag, int jobs, const char *mode, int ms,
                              int slots)
{
    struct util r = {.jobs = jobs, .slots = slots};
    char out[700], at[64];
    snprintf(out, sizeof out, "%s/%s.txt", tmp, tag);
    struct stamp *st = calloc((size_t)jobs, sizeof *st);
    if (!st) abort();
    /* All due at one instant a second ahead: the backlog is there from the
     * first start, not built up by the submits. */
    rfc3339_ahead(1000, at, sizeof at);
    double deadline = bl_now_s() + opt.seconds;
    if (submit_burners(h, tag, jobs, mode, ms, out, at) || wait_lines(out, jobs, deadline) ||
        wait_runs_done(h, deadline)) {
        fprintf(stderr, WHO ": the %s phase did not complete in %.0f s\n", tag, opt.seconds);
        free(st);
        return r;
    }
    int n = read_stamps(out, st, jobs);
    double first = 1e300, last_end = 0, last_start = 0;
    for (int i = 0; i < n; i++) {
        first = st[i].start < first ? st[i].start : first;
        last_end = st[i].end > last_end ? st[i].end : last_end;
        last_start = st[i].start > last_start ? st[i].start : last_start;
        r.busy += st[i].end - st[i].start;
    }
    for (int i = 0; i < n; i++) {
        double e = st[i].end < last_start ? st[i].end : last_start;
        if (e > st[i].start) r.pending_busy += e - st[i].start;
    }
    r.window = last_end - first;
    r.pending = last_start - first;
    r.mean_job = n ? r.busy / n : 0;
    r.idle_per_job = n ? ((double)slots * r.window - r.busy) / n : 0;
    r.ok = n == jobs;
    free(st);
    return r;
}

static void print_util(const char *what, const struct util *u)
{
    double all = u->window > 0 ? 100.0 * u->busy / ((double)u->slots * u->window) : 0;
    double pend = u->pending > 0 ? 100.0 * u->pending_busy / ((double)u->slots * u->pending) : 0;
    printf("| %s: %d jobs, %d slots, job %.0f ms | %.1f %% over %.2f s (%.1f %% while work was "
           "pending); idle slot-time %.1f ms per job%s | >= 95 %% |\n",
           what, u->jobs, u->slots, u->mean_job * 1000.0, all, u->window, pend,
           u->idle_per_job * 1000.0, u->ok ? "" : " — DID NOT COMPLETE");
}

/* ---- main ------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: sked-overhead [--runs N] [--cpu-ms MS] [--slots N] [--util-jobs N]\n"
               "                     [--util-cpu-ms MS] [--sleep-jobs N] [--sleep-ms MS]\n"
               "                     [--sleep-slots N] [--seconds S] [--sked PATH]\n\n"
               "Starts sked server (SQLite) and one worker on 127.0.0.1 and prints sked's own\n"
               "CPU per run of a job that burns --cpu-ms of CPU (--runs jobs, default 20 x\n"
               "1000 ms, --slots 2), and the worker's slot utilisation with a backlog:\n"
               "--util-jobs (40) of --util-cpu-ms (250) CPU on that worker, then\n"
               "--sleep-jobs (80) sleeping --sleep-ms (200) on a worker of --sleep-slots (8).\n"
               "Each phase has --seconds (default 180) to complete. The job is\n"
               "sked-bench-burn beside this binary; sked is too, unless --sked says.\n"
               "Exits 0 when every phase completed, 1 otherwise.\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"runs", required_argument, NULL, 'n'},
                                             {"cpu-ms", required_argument, NULL, 'c'},
                                             {"slots", required_argument, NULL, 'w'},
                                             {"util-jobs", required_argument, NULL, 'u'},
                                             {"util-cpu-ms", required_argument, NULL, 'U'},
                                             {"sleep-jobs", required_argument, NULL, 'j'},
                                             {"sleep-ms", required_argument, NULL, 'm'},
                                             {"sleep-slots", required_argument, NULL, 'W'},
                                             {"seconds", required_argument, NULL, 's'},
                                             {"sked", required_argument, NULL, 'k'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            opt.runs = atoi(optarg);
            break;
        case 'c':
            opt.cpu_ms = atoi(optarg);
            break;
        case 'w':
            opt.slots = atoi(optarg);
            break;
        case 'u':
            opt.util_jobs = atoi(optarg);
            break;
        case 'U':
            opt.util_cpu_ms = atoi(optarg);
            break;
        case 'j':
            opt.sleep_jobs = atoi(optarg);
            break;
        case 'm':
            opt.sleep_ms = atoi(optarg);
            break;
        case 'W':
            opt.sleep_slots = atoi(optarg);
            break;
        case 's':
            opt.seconds = atof(optarg);
            break;
        case 'k':
            opt.sked = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || opt.runs < 1 || opt.runs > 10000 || opt.cpu_ms < 1 || opt.cpu_ms > 60000 ||
        opt.slots < 1 || opt.slots > 256 || opt.util_jobs < 1 || opt.util_jobs > 10000 ||
        opt.util_cpu_ms < 1 || opt.util_cpu_ms > 60000 || opt.sleep_jobs < 1 ||
        opt.sleep_jobs > 10000 || opt.sleep_ms < 1 || opt.sleep_ms > 60000 || opt.sleep_slots < 1 ||
        opt.sleep_slots > 256 || opt.seconds <= 0) {
        usage(stderr);
        return 2;
    }
    char sked[PATH_MAX];
    if (!opt.sked) {
        if (bl_beside_self("sked", sked, sizeof sked)) return 2;
        opt.sked = sked;
    }
    if (bl_beside_self("sked-bench-burn", burn, sizeof burn) || access(burn, X_OK)) {
        fprintf(stderr, WHO ": %s not found; build it (make build)\n", burn);
        return 2;
    }
    if (!mkdtemp(tmp)) {
        perror(WHO ": mkdtemp");
        return 1;
    }

    int sout = -1, wout = -1, rc = 1;
    pid_t server = -1, worker = -1;
    bl_http_t h;
    bl_http_init(&h, 0, "");
    struct overhead o = {0};
    struct util uc = {0}, us = {0};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    if ((server = start_server(&sout)) < 0) goto done;
    bl_http_init(&h, port, token);
    if ((worker = start_worker(opt.slots, "worker", &wout)) < 0) goto done;

    fprintf(stderr, WHO ": overhead: %d jobs of %d ms CPU on %d slots...\n", opt.runs, opt.cpu_ms,
            opt.slots);
    o = overhead_phase(&h, server, worker);
    fprintf(stderr, WHO ": utilisation: %d jobs of %d ms CPU on %d slots...\n", opt.util_jobs,
            opt.util_cpu_ms, opt.slots);
    uc = util_phase(&h, "util-cpu", opt.util_jobs, "--cpu-ms", opt.util_cpu_ms, opt.slots);
    bl_stop_proc(worker, WHO);
    close(wout);
    wout = -1;
    if ((worker = start_worker(opt.sleep_slots, "worker-sleep", &wout)) >= 0) {
        fprintf(stderr, WHO ": utilisation: %d jobs sleeping %d ms on %d slots...\n",
                opt.sleep_jobs, opt.sleep_ms, opt.sleep_slots);
        us = util_phase(&h, "util-sleep", opt.sleep_jobs, "--sleep-ms", opt.sleep_ms,
                        opt.sleep_slots);
    }

    double runs = o.runs ? (double)o.runs : 1;
    double sked_cpu = o.server_cpu + o.worker_cpu;
    printf("\n### Overhead and utilisation (SQLite, one server, one worker, %ld cores)\n\n", ncpu);
    printf("| measure | value | target |\n|---|---|---|\n");
    printf("| jobs burning %d ms of CPU each | %d of %d in %.1f s on %d slots%s | |\n", opt.cpu_ms,
           o.runs, opt.runs, o.wall, opt.slots, o.ok ? "" : " — DID NOT COMPLETE");
    printf("| job CPU per run (the job's own getrusage) | %.1f ms | |\n",
           1000.0 * o.job_cpu / runs);
    printf("| server CPU per run | %.2f ms | |\n", 1000.0 * o.server_cpu / runs);
    printf("| worker CPU per run (worker and its %d processes, jobs excluded) | %.2f ms | |\n",
           o.procs - 1, 1000.0 * o.worker_cpu / runs);
    printf("| for scale: server / worker CPU while idle | %.2f / %.2f ms per s | |\n",
           1000.0 * o.server_idle, 1000.0 * o.worker_idle);
    printf("| sked CPU / job CPU | %.2f %% | < 1 %% |\n",
           o.job_cpu > 0 ? 100.0 * sked_cpu / o.job_cpu : 0.0);
    print_util("slot utilisation, CPU-bound backlog", &uc);
    print_util("slot utilisation, sleeping backlog", &us);
    printf("\n(CPU from /proc/PID/stat: utime + stime + cutime + cstime, %ld ticks/s)\n",
           sysconf(_SC_CLK_TCK));
    fflush(stdout);
    rc = o.ok && uc.ok && us.ok ? 0 : 1;
done:
    bl_http_fini(&h);
    bl_stop_proc(worker, WHO);
    bl_stop_proc(server, WHO);
    if (wout >= 0) close(wout);
    if (sout >= 0) close(sout);
    if (rc == 0) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) fprintf(stderr, WHO ": could not remove %s\n", tmp);
    } else {
        fprintf(stderr, WHO ": the logs and store are kept in %s\n", tmp);
    }
    return rc;
}
