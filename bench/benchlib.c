/*
 * benchlib: processes, /proc and a small HTTP client shared by the benches
 * that start their own sked processes (see benchlib.h).
 */
#include "benchlib.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double bl_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bl_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int bl_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bl_percentile(const double *v, size_t n, double p)
{
    if (!n) return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

/* ---- processes ------------------------------------------------------------ */

pid_t bl_start_proc(char *const argv[], int *out, const char *errlog)
{
    int p[2];
    *out = -1;
    if (pipe2(p, O_CLOEXEC)) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        /* The parent may have died between fork and prctl. */
        if (getppid() != parent) _exit(1);
        dup2(p[1], 1);
        int e = open(errlog, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (e >= 0) dup2(e, 2);
        setpgid(0, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    *out = p[0];
    return pid;
}

int bl_read_field(int fd, const char *prefix, char *dst, size_t dstlen, double timeout_s)
{
    char line[512];
    size_t n = 0, pl = strlen(prefix);
    double deadline = bl_now_s() + timeout_s;
    for (;;) {
        int ms = (int)((deadline - bl_now_s()) * 1000.0);
        if (ms <= 0) return -1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        char ch;
        ssize_t got = read(fd, &ch, 1);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return -1;
        if (ch != '\n') {
            if (n < sizeof line - 1) line[n++] = ch;
            continue;
        }
        line[n] = '\0';
        n = 0;
        if (strncmp(line, prefix, pl) != 0) continue;
        char *v = line + pl;
        while (*v == ' ')
            v++;
        v[strcspn(v, "\r")] = '\0';
        snprintf(dst, dstlen, "%s", v);
        return 0;
    }
}

void bl_stop_proc(pid_t pid, const char *who)
{
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    double deadline = bl_now_s() + 5.0;
    while (waitpid(pid, NULL, WNOHANG) == 0) {
        if (bl_now_s() >= deadline) {
            fprintf(stderr, "%s: pid %ld did not stop in 5 s; killing it\n", who, (long)pid);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            return;
        }
        bl_sleep_ms(20);
    }
}

#define BL_START_TIMEOUT_S 30.0 /* a server migrating a schema, a worker registering */

pid_t bl_start_server(const char *who, const char *sked, const char *store, const char *token_file,
                      char *const extra[], const char *errlog, int *out, char *url, size_t urllen,
                      char *token, size_t toklen)
{
    char *argv[32] = {(char *)sked,  "server",       "--listen",         "127.0.0.1:0",  "--store",
                      (char *)store, "--token-file", (char *)token_file, "--rate-limit", "off"};
    int n = 10;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    pid_t pid = bl_start_proc(argv, out, errlog);
    if (pid < 0 || bl_read_field(*out, "listening:", url, urllen, BL_START_TIMEOUT_S) ||
        (token && bl_read_field(*out, "admin-token:", token, toklen, BL_START_TIMEOUT_S))) {
        fprintf(stderr, "%s: the server did not start (see %s)\n", who, errlog);
        bl_stop_proc(pid, who);
        return -1;
    }
    return pid;
}

pid_t bl_start_worker(const char *who, const char *sked, const char *servers,
                      const char *token_file, int slots, const char *name, const char *work_dir,
                      const char *plugin_dir, const char *errlog, int *out)
{
    char slots_arg[16], wid[128];
    snprintf(slots_arg, sizeof slots_arg, "%d", slots);
    char *argv[20] = {(char *)sked,   "worker",           "--server",   (char *)servers,
                      "--token-file", (char *)token_file, "--slots",    slots_arg,
                      "--name",       (char *)name,       "--work-dir", (char *)work_dir};
    int n = 12;
    if (geteuid() == 0) argv[n++] = "--allow-root";
    if (plugin_dir) {
        argv[n++] = "--plugin-dir";
        argv[n++] = (char *)plugin_dir;
    }
    argv[n] = NULL;
    pid_t pid = bl_start_proc(argv, out, errlog);
    if (pid < 0 ||
        bl_read_field(*out, "worker: registered as", wid, sizeof wid, BL_START_TIMEOUT_S)) {
        fprintf(stderr, "%s: the worker did not start (see %s)\n", who, errlog);
        bl_stop_proc(pid, who);
        return -1;
    }
    return pid;
}

int bl_beside_self(const char *name, char *dst, size_t len)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash) slash[1] = '\0';
    snprintf(dst, len, "%s%s", slash ? self : "", name);
    return 0;
}

void bl_proc_stats(pid_t pid, long *threads, long *rss_kb)
{
    char path[64], line[256];
    *threads = *rss_kb = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Threads:", 8)) *threads = strtol(line + 8, NULL, 10);
        if (!strncmp(line, "VmRSS:", 6)) *rss_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}

/* ppid, and the CPU ticks of pid from /proc/PID/stat: *own (utime +
 * stime) and *children (cutime + cstime: the children it waited for); -1
 * when gone. */
static int read_stat_split(long pid, long *ppid, unsigned long long *own,
                           unsigned long long *children)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    size_t n = fread(line, 1, sizeof line - 1, f);
    fclose(f);
    line[n] = '\0';
    /* The command name may hold spaces and parentheses: its last ')'. */
    char *p = strrchr(line, ')');
    if (!p) return -1;
    p += 2; /* field 3, the state */
    unsigned long long v[18] = {0};
    for (int field = 3; field <= 17 && *p; field++) {
        char *end;
        v[field] = strtoull(p, &end, 10);
        if (field == 3) { /* the state is a letter */
            end = p;
            while (*end && *end != ' ')
                end++;
        }
        p = *end ? end + 1 : end;
    }
    *ppid = (long)v[4];
    *own = v[14] + v[15];
    *children = v[16] + v[17];
    return 0;
}

/* read_stat_split's ticks in one: *ticks = own + children. */
static int read_stat(long pid, long *ppid, unsigned long long *ticks)
{
    unsigned long long own, children;
    if (read_stat_split(pid, ppid, &own, &children)) return -1;
    *ticks = own + children;
    return 0;
}

double bl_proc_cpu_s(pid_t pid)
{
    double own, children;
    return bl_proc_cpu_split_s(pid, &own, &children) ? -1 : own + children;
}

int bl_proc_cpu_split_s(pid_t pid, double *own, double *children)
{
    long ppid;
    unsigned long long o, c;
    if (read_stat_split(pid, &ppid, &o, &c)) return -1;
    double hz = (double)sysconf(_SC_CLK_TCK);
    *own = (double)o / hz;
    *children = (double)c / hz;
    return 0;
}

double bl_tree_cpu_s(pid_t root, int *nprocs)
{
    /* Every process's parent, then the descendants of root by repeated
     * passes over that table (trees here are a handful deep). */
    size_t n = 0, cap = 1024;
    long *pids = malloc(cap * sizeof *pids), *ppids = malloc(cap * sizeof *ppids);
    unsigned long long *ticks = malloc(cap * sizeof *ticks);
    char *in = NULL;
    double total = -1;
    int count = 0;
    DIR *d = opendir("/proc");
    if (!pids || !ppids || !ticks || !d) goto out;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        if (n == cap) {
            cap *= 2;
            long *a = realloc(pids, cap * sizeof *pids), *b = realloc(ppids, cap * sizeof *ppids);
            unsigned long long *c = realloc(ticks, cap * sizeof *ticks);
            if (a) pids = a;
            if (b) ppids = b;
            if (c) ticks = c;
            if (!a || !b || !c) goto out;
        }
        if (read_stat(pid, &ppids[n], &ticks[n]) == 0) pids[n++] = pid;
    }
    in = calloc(n ? n : 1, 1);
    if (!in) goto out;
    unsigned long long sum = 0;
    for (size_t i = 0; i < n; i++)
        if (pids[i] == (long)root) in[i] = 1;
    for (int pass = 0, grew = 1; grew && pass < 64; pass++) {
        grew = 0;
        for (size_t i = 0; i < n; i++) {
            if (in[i]) continue;
            for (size_t j = 0; j < n; j++)
                if (in[j] && pids[j] == ppids[i]) {
                    in[i] = 1;
                    grew = 1;
                    break;
                }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (in[i]) {
            sum += ticks[i];
            count++;
        }
    if (count) total = (double)sum / (double)sysconf(_SC_CLK_TCK);
out:
    if (d) closedir(d);
    free(pids);
    free(ppids);
    free(ticks);
    free(in);
    if (nprocs) *nprocs = count;
    return total;
}

/* ---- HTTP ------------------------------------------------------------------ */

void bl_http_init(bl_http_t *h, int port, const char *token)
{
    memset(h, 0, sizeof *h);
    h->fd = -1;
    h->port = port;
    snprintf(h->token, sizeof h->token, "%s", token);
}

static void http_close(bl_http_t *h)
{
    if (h->fd >= 0) close(h->fd);
    h->fd = -1;
}

void bl_http_fini(bl_http_t *h)
{
    http_close(h);
    free(h->body);
    h->body = NULL;
    h->cap = 0;
}

static int http_connect(bl_http_t *h)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    h->fd = fd;
    return 0;
}

/* Waits until fd is readable or writable (events) before deadline. */
static int wait_fd(int fd, short events, double deadline)
{
    for (;;) {
        int ms = (int)((deadline - bl_now_s()) * 1000.0);
        if (ms <= 0) return -1;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, ms);
        if (r < 0 && errno == EINTR) continue;
        return r > 0 ? 0 : -1;
    }
}

static int send_all(int fd, const char *p, size_t n, double deadline)
{
    while (n) {
        if (wait_fd(fd, POLLOUT, deadline)) return -1;
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int attempt(bl_http_t *h, const char *req, size_t reqlen, const char *body, size_t blen,
                   double deadline)
{
    if (h->fd < 0 && http_connect(h)) return 0;
    if (send_all(h->fd, req, reqlen, deadline) || (blen && send_all(h->fd, body, blen, deadline)))
        return 0;
    size_t len = 0, hlen = 0;
    long clen = -1;
    int status = 0;
    for (;;) {
        if (len + 65536 + 1 > h->cap) {
            size_t cap = h->cap ? h->cap * 2 : 1 << 16;
            while (cap < len + 65536 + 1)
                cap *= 2;
            char *b = realloc(h->body, cap);
            if (!b) return 0;
            h->body = b;
            h->cap = cap;
        }
        if (wait_fd(h->fd, POLLIN, deadline)) return 0;
        ssize_t r = recv(h->fd, h->body + len, h->cap - 1 - len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        len += (size_t)r;
        h->body[len] = '\0';
        if (!hlen) {
            char *end = strstr(h->body, "\r\n\r\n");
            if (!end) continue;
            hlen = (size_t)(end - h->body) + 4;
            sscanf(h->body, "HTTP/1.%*d %d", &status);
            for (char *p = h->body; p && p < end; p = strchr(p, '\n')) {
                if (*p == '\n') p++;
                if (!strncasecmp(p, "Content-Length:", 15)) clen = strtol(p + 15, NULL, 10);
            }
            if (clen < 0) return 0;
        }
        if (len >= hlen + (size_t)clen) break;
    }
    memmove(h->body, h->body + hlen, (size_t)clen);
    h->body[clen] = '\0';
    return status;
}

int bl_http(bl_http_t *h, const char *method, const char *path, const char *body, double timeout_s)
{
    char req[1024];
    size_t blen = body ? strlen(body) : 0;
    int n =
        snprintf(req, sizeof req,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                 "%sContent-Length: %zu\r\n\r\n",
                 method, path, h->token, body ? "Content-Type: application/json\r\n" : "", blen);
    if (n < 0 || (size_t)n >= sizeof req) return 0;
    double deadline = bl_now_s() + timeout_s;
    /* A kept-alive connection the server closed meanwhile fails at once:
     * one retry on a fresh one. */
    for (int i = 0; i < 2; i++) {
        int reused = h->fd >= 0;
        int st = attempt(h, req, (size_t)n, body, blen, deadline);
        if (st > 0) return st;
        http_close(h);
        if (!reused || bl_now_s() >= deadline) break;
    }
    if (h->body) h->body[0] = '\0';
    return 0;
}

int bl_url_port(const char *url)
{
    const char *colon = strrchr(url, ':');
    return colon ? atoi(colon + 1) : 0;
}

double bl_metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, name, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
    return -1;
}

/* Just past the '}' that closes the labels starting at p ('{'), or NULL:
 * a label value may hold a '}' itself (a route "/v1/workers/{id}/…"), so
 * quoted values are skipped whole. */
static const char *labels_end(const char *p, const char *end)
{
    bool quoted = false;
    for (p++; p < end; p++) {
        if (quoted && *p == '\\' && p + 1 < end)
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (!quoted && *p == '}')
            return p + 1;
    }
    return NULL;
}

double bl_metric_sum(const char *text, const char *name, const char *match)
{
    size_t n = strlen(name);
    double sum = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, n) || (p[n] != ' ' && p[n] != '{')) continue;
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *sp = memchr(p, ' ', len);
        if (p[n] == '{') sp = labels_end(p + n, p + len);
        if (!sp) continue;
        if (match) {
            char *m = strstr(p, match);
            if (!m || m >= sp) continue;
        }
        sum += strtod(sp, NULL);
    }
    return sum;
}
