/*
 * sked-bench: starts a real `sked server` and `sked worker` on loopback and
 * prints a table of the figures that matter on the hot paths:
 *
 *   - submit throughput and latency (durable acknowledgement, keep-alive
 *     clients, jobs that fire far in the future so nothing executes);
 *   - dispatch latency, fire time -> process start, on an idle worker
 *     (the job is this binary in --stamp mode, recording when it started);
 *   - end-to-end /bin/true runs per second, next to this machine's own
 *     ceiling for spawning /bin/true (a bare posix_spawn + waitpid loop, one
 *     spawner per core), and the ratio of the two.
 *
 * Every phase is bounded in time and count, everything listens on
 * 127.0.0.1, and the bench ends the processes it started (by pid).
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

extern char **environ;

static struct {
    const char *sked;
    double seconds;
    int clients;
    int e2e_runs;
    int samples;
    int slots;
} opt = {NULL, 5.0, 32, 2000, 60, 0};

static char tmpdir[256];
static char url[128];
static char token[128];
static char token_file[300];

/* ---- small helpers ------------------------------------------------------ */

static double now_s(void)
{
    return (double)clock_mono_ns() / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, size_t n, double p)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* Starts argv with stdout on a pipe; returns pid and the read end. */
static pid_t start_proc(char *const argv[], FILE **out, const char *errlog)
{
    int p[2];
    if (pipe(p)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        int e = open(errlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (e >= 0) dup2(e, 2);
        close(p[0]);
        close(p[1]);
        setpgid(0, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    *out = fdopen(p[0], "r");
    return pid;
}

/* Reads lines until one starts with prefix; copies the rest into dst. */
static int read_field(FILE *f, const char *prefix, char *dst, size_t dstlen)
{
    char line[512];
    size_t pl = strlen(prefix);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, prefix, pl)) {
            char *v = line + pl;
            while (*v == ' ')
                v++;
            v[strcspn(v, "\r\n")] = '\0';
            snprintf(dst, dstlen, "%s", v);
            return 0;
        }
    }
    return -1;
}

static void stop_proc(pid_t pid)
{
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
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

static CURL *client_new(struct curl_slist **hdrs)
{
    CURL *c = curl_easy_init();
    char auth[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    *hdrs = curl_slist_append(NULL, auth);
    *hdrs = curl_slist_append(*hdrs, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    return c;
}

static long request(CURL *c, const char *method, const char *path, const char *body, struct sink *s)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", url, path);
    s->len = 0;
    s->buf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    return status;
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

struct submitter {
    int id;
    double deadline;
    int max; /* stop after this many (0 = until deadline) */
    const char *kind;
    double *lat; /* ms */
    size_t nlat, cap;
    long errors;
};

static void *submit_loop(void *arg)
{
    struct submitter *s = arg;
    struct curl_slist *h;
    CURL *c = client_new(&h);
    struct sink sk;
    char body[512];
    for (int i = 0; (!s->max || i < s->max) && now_s() < s->deadline; i++) {
        if (!strcmp(s->kind, "future"))
            snprintf(body, sizeof body,
                     "{\"name\":\"bench-%d-%d-%ld\",\"command\":[\"/bin/true\"],"
                     "\"schedules\":[{\"at\":\"2099-01-01T00:00:00Z\"}]}",
                     s->id, i, (long)getpid());
        else
            snprintf(body, sizeof body, "{\"name\":\"e2e-%d-%d-%ld\",\"command\":[\"/bin/true\"]}",
                     s->id, i, (long)getpid());
        double t0 = now_s();
        long st = request(c, "POST", "/v1/jobs", body, &sk);
        double ms = (now_s() - t0) * 1000.0;
        if (st != 201) {
            s->errors++;
            if (s->errors < 3) fprintf(stderr, "bench: submit answered %ld: %s\n", st, sk.buf);
            continue;
        }
        if (s->nlat == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 4096;
            s->lat = realloc(s->lat, s->cap * sizeof *s->lat);
        }
        s->lat[s->nlat++] = ms;
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return NULL;
}

struct submit_result {
    double rate, p50, p99, elapsed;
    size_t ok;
    long errors;
};

static struct submit_result submit_phase(const char *kind, int clients, double seconds, int total)
{
    struct submitter *s = calloc((size_t)clients, sizeof *s);
    pthread_t *th = calloc((size_t)clients, sizeof *th);
    double t0 = now_s();
    for (int i = 0; i < clients; i++) {
        s[i].id = i;
        s[i].kind = kind;
        s[i].deadline = t0 + seconds;
        s[i].max = total ? (total + clients - 1) / clients : 0;
        pthread_create(&th[i], NULL, submit_loop, &s[i]);
    }
    struct submit_result r = {0};
    double *all = NULL;
    size_t n = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        all = realloc(all, (n + s[i].nlat + 1) * sizeof *all);
        memcpy(all + n, s[i].lat, s[i].nlat * sizeof *all);
        n += s[i].nlat;
        r.errors += s[i].errors;
        free(s[i].lat);
    }
    r.elapsed = now_s() - t0;
    r.ok = n;
    r.rate = (double)n / r.elapsed;
    r.p50 = percentile(all, n, 0.50);
    r.p99 = percentile(all, n, 0.99);
    free(all);
    free(s);
    free(th);
    return r;
}

/* ---- phase 3: dispatch latency -------------------------------------------- */

/* --stamp FILE: appended by the job itself at process start. */
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
    fprintf(f, "%.3f\n", now_ms - (double)fire);
    fclose(f);
    return 0;
}

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

static int dispatch_phase(const char *self, double *p50, double *p99, size_t *got)
{
    char stamps[400];
    snprintf(stamps, sizeof stamps, "%s/stamps.txt", tmpdir);
    struct curl_slist *h;
    CURL *c = client_new(&h);
    struct sink sk;
    /* Fire times spaced 100 ms apart, starting 1 s out: the worker is idle at each. */
    int64_t base = clock_now_ms() + 1000;
    for (int i = 0; i < opt.samples; i++) {
        char at[SKED_RFC3339_LEN], body[9000];
        clock_format_rfc3339(base + (int64_t)i * 100, at, sizeof at);
        snprintf(body, sizeof body,
                 "{\"name\":\"dispatch-%d\",\"command\":[\"%s\",\"--stamp\",\"%s\"],"
                 "\"schedules\":[{\"at\":\"%s\"}]}",
                 i, self, stamps, at);
        long st = request(c, "POST", "/v1/jobs", body, &sk);
        if (st != 201) fprintf(stderr, "bench: dispatch submit answered %ld: %s\n", st, sk.buf);
    }
    double deadline = now_s() + 10.0 + opt.samples * 0.1;
    while (count_lines(stamps) < (size_t)opt.samples && now_s() < deadline)
        usleep(20000);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);

    FILE *f = fopen(stamps, "r");
    double v[4096];
    size_t n = 0;
    while (f && n < 4096 && fscanf(f, "%lf", &v[n]) == 1)
        n++;
    if (f) fclose(f);
    *got = n;
    *p50 = percentile(v, n, 0.50);
    *p99 = percentile(v, n, 0.99);
    return 0;
}

/* ---- phase 4: end to end -------------------------------------------------- */

static int remaining(CURL *c)
{
    static const char *states[] = {"scheduled", "pending", "running"};
    struct sink sk;
    int n = 0;
    for (size_t i = 0; i < 3; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/runs?state=%s&limit=1", states[i]);
        if (request(c, "GET", path, NULL, &sk) != 200) return -1;
        if (strstr(sk.buf, "\"id\"")) n++;
    }
    return n;
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: sked-bench [--sked PATH] [--seconds S] [--clients N] [--runs N] "
               "[--samples N] [--slots N]\n\n"
               "Starts sked server + worker on 127.0.0.1 and prints submit throughput and\n"
               "latency, dispatch latency and end-to-end /bin/true runs/s against the\n"
               "machine's bare spawn ceiling.\n\n"
               "  --sked PATH    the sked binary (default: sked next to this binary)\n"
               "  --seconds S    length of the timed phases (default 5)\n"
               "  --clients N    concurrent keep-alive submitters (default 32)\n"
               "  --runs N       end-to-end /bin/true runs (default 2000)\n"
               "  --samples N    dispatch latency samples (default 60)\n"
               "  --slots N      worker slots (default 4 x cores)\n");
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--stamp")) return stamp_main(argv[2]);
    static const struct option longopts[] = {
        {"sked", required_argument, NULL, 'k'},    {"seconds", required_argument, NULL, 's'},
        {"clients", required_argument, NULL, 'c'}, {"runs", required_argument, NULL, 'r'},
        {"samples", required_argument, NULL, 'n'}, {"slots", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
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
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (opt.clients < 1 || opt.clients > 256 || opt.seconds <= 0 || opt.seconds > 60 ||
        opt.e2e_runs < 1 || opt.e2e_runs > 100000 || opt.samples < 1 || opt.samples > 4000) {
        usage(stderr);
        return 2;
    }
    char self[4096];
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
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1) ncpu = 1;
    if (ncpu > 64) ncpu = 64;
    if (!opt.slots) opt.slots = (int)ncpu * 4;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sked-bench-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;

    fprintf(stderr, "bench: spawn ceiling (%ld spawners, %.0f s)...\n", ncpu, opt.seconds);
    double ceiling = spawn_ceiling((int)ncpu);

    char store[400], errlog[400], listen_arg[] = "127.0.0.1:0";
    snprintf(store, sizeof store, "sqlite:%s/sked.db", tmpdir);
    snprintf(errlog, sizeof errlog, "%s/server.log", tmpdir);
    char *sargv[] = {(char *)opt.sked, "server", "--listen", listen_arg, "--store", store, NULL};
    FILE *sout = NULL;
    pid_t server = start_proc(sargv, &sout, errlog);
    if (server < 0 || read_field(sout, "listening:", url, sizeof url) ||
        read_field(sout, "admin-token:", token, sizeof token) ||
        read_field(sout, "admin-token-file:", token_file, sizeof token_file)) {
        fprintf(stderr, "bench: server did not start (see %s)\n", errlog);
        stop_proc(server);
        return 1;
    }

    fprintf(stderr, "bench: submit (%d clients, %.0f s)...\n", opt.clients, opt.seconds);
    struct submit_result sub = submit_phase("future", opt.clients, opt.seconds, 0);

    char slots[16], wlog[400];
    snprintf(slots, sizeof slots, "%d", opt.slots);
    snprintf(wlog, sizeof wlog, "%s/worker.log", tmpdir);
    char *wargv[] = {(char *)opt.sked, "worker",   "--server", url,
                     "--token-file",   token_file, "--slots",  slots,
                     "--name",         "bench",    NULL};
    FILE *wout = NULL;
    char wid[128];
    pid_t worker = start_proc(wargv, &wout, wlog);
    if (worker < 0 || read_field(wout, "worker: registered as", wid, sizeof wid)) {
        fprintf(stderr, "bench: worker did not start (see %s)\n", wlog);
        stop_proc(worker);
        stop_proc(server);
        return 1;
    }

    fprintf(stderr, "bench: dispatch latency (%d samples)...\n", opt.samples);
    double d50 = 0, d99 = 0;
    size_t dn = 0;
    dispatch_phase(self, &d50, &d99, &dn);

    fprintf(stderr, "bench: end to end (%d runs of /bin/true)...\n", opt.e2e_runs);
    struct curl_slist *h;
    CURL *c = client_new(&h);
    double t0 = now_s();
    struct submit_result e2e = submit_phase("now", 8, 120.0, opt.e2e_runs);
    double deadline = t0 + 300.0;
    int left;
    while ((left = remaining(c)) != 0 && now_s() < deadline)
        usleep(20000);
    double e2e_s = now_s() - t0;
    double e2e_rate = (double)e2e.ok / e2e_s;
    curl_easy_cleanup(c);
    curl_slist_free_all(h);

    stop_proc(worker);
    stop_proc(server);
    if (wout) fclose(wout);
    if (sout) fclose(sout);

    printf("\nsked bench — %ld cores, store sqlite (WAL, synchronous=FULL)\n\n", ncpu);
    printf("| metric | measured | target |\n|---|---|---|\n");
    printf("| submit throughput, durable (%d keep-alive clients) | %.0f /s (%zu ok, %ld errors) "
           "| >= 5000 /s |\n",
           opt.clients, sub.rate, sub.ok, sub.errors);
    printf("| submit latency p50 / p99 | %.2f / %.2f ms | |\n", sub.p50, sub.p99);
    printf("| dispatch latency p50 / p99, fire time -> process start (%zu samples) "
           "| %.2f / %.2f ms | p99 <= 20 ms |\n",
           dn, d50, d99);
    printf("| bare spawn ceiling, /bin/true (%ld spawners) | %.0f /s | |\n", ncpu, ceiling);
    printf("| end-to-end /bin/true runs (%zu runs, %d slots%s) | %.0f /s = %.0f %% of ceiling "
           "| >= 75 %% |\n",
           e2e.ok, opt.slots, left ? ", TIMED OUT" : "", e2e_rate,
           ceiling > 0 ? 100.0 * e2e_rate / ceiling : 0.0);
    printf("\n(logs and store in %s)\n", tmpdir);
    curl_global_cleanup();
    return left ? 1 : 0;
}
