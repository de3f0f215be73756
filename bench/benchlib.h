/*
 * benchlib: what the benches that start their own `sked server` and
 * `sked worker` processes share (sked-idle-workers, sked-overhead,
 * sked-burst): starting a process with its stdout on a pipe and reading the
 * lines it announces itself with, stopping it by pid, reading its CPU time
 * and that of its process tree from /proc, a blocking keep-alive HTTP/1.1
 * client for loopback, and percentiles. Plain libc; no sked headers.
 *
 * Not thread-safe where it says so; every function that may wait takes a
 * timeout, so no bench can hang on a process that never answers.
 */
#ifndef SKED_BENCH_BENCHLIB_H
#define SKED_BENCH_BENCHLIB_H

#include <stddef.h>
#include <sys/types.h>

/* Monotonic seconds. */
double bl_now_s(void);
void bl_sleep_ms(int ms);

/* qsort comparator of doubles; the p-quantile (0..1) of v[0..n), which must
 * be sorted; 0 when n is 0. */
int bl_cmp_double(const void *a, const void *b);
double bl_percentile(const double *v, size_t n, double p);

/* Starts argv with stdout on a pipe (*out, caller closes) and stderr
 * appended to errlog, in its own process group, with SIGTERM should the
 * bench die first. Returns the pid, -1 on failure. */
pid_t bl_start_proc(char *const argv[], int *out, const char *errlog);

/* Reads lines from fd until one starts with prefix and copies the rest
 * (leading spaces and a trailing CR dropped) into dst; -1 on EOF or after
 * timeout_s. Byte by byte: nothing past the wanted line is consumed. */
int bl_read_field(int fd, const char *prefix, char *dst, size_t dstlen, double timeout_s);

/* SIGTERM, then SIGKILL when pid has not exited 5 s later; waits for it.
 * who names the bench in the message. pid <= 0 is a no-op. */
void bl_stop_proc(pid_t pid, const char *who);

/* Starts `SKED server --listen 127.0.0.1:0 --store STORE --token-file
 * TOKEN_FILE --rate-limit off` plus extra (NULL-terminated; may be NULL):
 * the benches' own load on one token must not be rate limited. Waits until
 * it says where it listens (into url) and, when token is not NULL, its
 * bootstrap admin token (a new store). stderr goes to errlog. Returns the
 * pid, or -1 (said on stderr as who, the server stopped). */
pid_t bl_start_server(const char *who, const char *sked, const char *store, const char *token_file,
                      char *const extra[], const char *errlog, int *out, char *url, size_t urllen,
                      char *token, size_t toklen);

/* Starts `SKED worker --server SERVERS --token-file TOKEN_FILE --slots N
 * --name NAME --work-dir WORK_DIR [--plugin-dir PLUGIN_DIR]`, with
 * --allow-root as root (the benches' jobs write under their own 0700
 * directories, where a --run-as user could not), and waits until it has
 * registered. stderr goes to errlog. Returns the pid, or -1 (said, stopped). */
pid_t bl_start_worker(const char *who, const char *sked, const char *servers,
                      const char *token_file, int slots, const char *name, const char *work_dir,
                      const char *plugin_dir, const char *errlog, int *out);

/* The path of the binary `name` beside this executable, into dst. -1 when
 * /proc/self/exe cannot be read. */
int bl_beside_self(const char *name, char *dst, size_t len);

/* Threads and resident KiB of pid (/proc/PID/status); -1 when unknown. */
void bl_proc_stats(pid_t pid, long *threads, long *rss_kb);

/* CPU seconds of pid: utime + stime of all its threads, plus cutime +
 * cstime (its children it has waited for, and theirs). -1 when gone. */
double bl_proc_cpu_s(pid_t pid);

/* The same in two parts: *own, pid's threads; *children, the children it
 * has waited for (a worker's: the jobs it ran). -1 when gone. */
int bl_proc_cpu_split_s(pid_t pid, double *own, double *children);

/* CPU seconds of the tree rooted at pid: bl_proc_cpu_s of every live
 * process in it (a reaped process is in its parent's cutime, so nothing
 * is counted twice). *nprocs (may be NULL) gets the live processes. */
double bl_tree_cpu_s(pid_t pid, int *nprocs);

/* ---- a blocking HTTP/1.1 client on 127.0.0.1 ---------------------------- */

typedef struct bl_http {
    int fd;
    int port;
    char token[160];
    char *body; /* the last answer's body, NUL-terminated; owned */
    size_t cap;
} bl_http_t;

/* port: the server's; token: sent as a Bearer token. Connects lazily. */
void bl_http_init(bl_http_t *h, int port, const char *token);
void bl_http_fini(bl_http_t *h);

/* One request (body NULL: none). Returns the status, 0 when no whole
 * answer came within timeout_s (the connection is then closed; the next
 * request reconnects). The answer's body is in h->body until the next
 * call. Answers must carry Content-Length (sked's do). */
int bl_http(bl_http_t *h, const char *method, const char *path, const char *body, double timeout_s);

/* The port of a "http://127.0.0.1:PORT" URL; 0 when none. */
int bl_url_port(const char *url);

/* The value of the sample `name` (labels included, exactly) in a /metrics
 * text; -1 when absent. */
double bl_metric(const char *text, const char *name);

/* The sum of every sample of family `name` whose labels contain `match`
 * (e.g. "state=\"pending\""; NULL: all); 0 when none. */
double bl_metric_sum(const char *text, const char *name, const char *match);

#endif
