/*
 * The plugin host process (plugin_host.h): one plugin, many attempts, no
 * fork per run.
 *
 * Threads: the main thread reads frames from the worker and answers pings
 * itself, so a host whose plugin is busy (or stuck) in every attempt still
 * answers: only a host that is truly frozen (stopped, deadlocked in
 * sked's own code, out of memory) misses pings. Each attempt runs on a
 * pool thread; a pool thread that finishes takes the next queued attempt
 * or waits for one. Writes to the worker are whole frames under one lock.
 *
 * What a plugin hands in goes where a shell job's would: output to the
 * worker as OUTPUT frames (the run's log), the result and checkpoint to
 * the files of the attempt's private directory ($SKED_RESULT_FILE,
 * $SKED_CHECKPOINT_FILE), which the worker ships exactly as it ships a
 * shell job's (results.c). The host runs as the run-as user, like a job,
 * so those files are the job user's.
 */
#include "worker/plugin_host.h"
#include "worker/http_job.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/plugin_manifest.h"
#include "common/xalloc.h"
#include "worker/plugin_proto.h"
#include "worker/worker_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define ATTEMPT_MAGIC 0x736b6174u /* "skat" */
#define IN_MAX        (64u << 20) /* bytes of a checkpoint_in / upstream file read */
#define STOP_WAIT_NS  (2000 * 1000000LL)
#define REASON_MAX    1024

const plugin_builtin_t plugin_builtins[] = {
    {"http", &http_job_plugin},
    {NULL, NULL},
};

struct sked_attempt {
    uint32_t magic;
    uint64_t key;
    char *config; /* owned: compact JSON text */
    size_t config_len;
    char **env; /* owned: "K=V", NULL-terminated */
    char *io_dir;
    int64_t deadline_ns; /* monotonic; 0 = none */
    atomic_int cancelled;
    int cancel_fd;      /* eventfd, readable once cancelled */
    pthread_mutex_t mu; /* the fields below */
    char *reason;       /* owned; host->fail's latest */
    int loaded_in, loaded_up;
    char *cp_in, *upstream; /* owned; read on first use */
    size_t cp_in_len, upstream_len;
    struct sked_attempt *next; /* the queue, then the running list */
};

static struct host {
    int ch; /* the channel to the worker */
    pthread_mutex_t wmu;
    const sked_plugin *plugin;
    void *state;
    size_t result_max, checkpoint_max;

    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cv;
    sked_attempt *queue, *queue_tail;
    sked_attempt *running;
    int idle;    /* pool threads waiting for an attempt */
    int nqueued; /* attempts in the queue */
    int live;    /* pool threads */
    int quit;
} H = {.ch = -1,
       .wmu = PTHREAD_MUTEX_INITIALIZER,
       .mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER};

/* ---- the channel -------------------------------------------------------- */

/* Writes one frame whole. Returns 0, or -1 when the worker is gone. */
static int send_frame(int type, int stream, uint64_t key, const void *data, size_t len)
{
    buf_t b = BUF_INIT;
    proto_put(&b, type, stream, key, data, len);
    int rc = 0;
    pthread_mutex_lock(&H.wmu);
    size_t off = 0;
    while (off < b.len) {
        ssize_t w = write(H.ch, b.data + off, b.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            rc = -1;
            break;
        }
        off += (size_t)w;
    }
    pthread_mutex_unlock(&H.wmu);
    buf_free(&b);
    return rc;
}

static void send_json(int type, uint64_t key, json_t *v)
{
    char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
    if (s) send_frame(type, 0, key, s, strlen(s));
    free(s);
    json_decref(v);
}

/* Sends attempt key's DONE as failed with reason (valid UTF-8 or not). */
static void send_failed(uint64_t key, const char *reason)
{
    json_t *r = json_string(reason);
    if (!r) r = json_string("failed (its reason was not UTF-8 text)");
    send_json(PROTO_DONE, key, json_pack("{s:b, s:o}", "ok", 0, "reason", r));
}

/* ---- host services (include/sked/plugin.h) -------------------------------- */

static sked_attempt *att_ok(sked_attempt *a)
{
    /* A plugin passing anything else is a programmer error: die loudly
     * rather than write through a stray pointer. */
    if (!a || a->magic != ATTEMPT_MAGIC) abort();
    return a;
}

static const char *h_config(sked_attempt *a, size_t *len)
{
    att_ok(a);
    if (len) *len = a->config_len;
    return a->config;
}

static const char *h_getenv(sked_attempt *a, const char *name)
{
    att_ok(a);
    size_t n = strlen(name);
    for (char **e = a->env; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=') return *e + n + 1;
    return NULL;
}

static int h_output(sked_attempt *a, int stream, const char *data, size_t len)
{
    att_ok(a);
    if (atomic_load(&a->cancelled)) return -1;
    if (stream != SKED_STDERR) stream = SKED_STDOUT;
    while (len) {
        size_t n = len < PROTO_OUTPUT ? len : PROTO_OUTPUT;
        if (send_frame(PROTO_OUTPUT_T, stream, a->key, data, n) < 0) return -1;
        data += n;
        len -= n;
    }
    return 0;
}

static int h_voutputf(sked_attempt *a, int stream, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static int h_voutputf(sked_attempt *a, int stream, const char *fmt, va_list ap)
{
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    if (n < 0) return -1;
    int rc = h_output(a, stream, s, (size_t)n);
    free(s);
    return rc;
}

static int h_outputf(sked_attempt *a, int stream, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int h_outputf(sked_attempt *a, int stream, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = h_voutputf(a, stream, fmt, ap);
    va_end(ap);
    return rc;
}

static int h_progress(sked_attempt *a, double fraction, const char *msg)
{
    if (fraction >= 0)
        return h_outputf(a, SKED_STDERR, "progress: %.0f%%%s%s\n",
                         (fraction > 1 ? 1 : fraction) * 100, msg ? " " : "", msg ? msg : "");
    return h_outputf(a, SKED_STDERR, "progress:%s%s\n", msg ? " " : "", msg ? msg : "");
}

/* Replaces io_dir/name with data, atomically (a reader sees the old file or
 * the new one, never a part). */
static int put_file(sked_attempt *a, const char *name, const char *data, size_t len)
{
    char *tmp = xasprintf("%s/.%s.tmp", a->io_dir, name);
    char *dst = xasprintf("%s/%s", a->io_dir, name);
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            rc = -errno;
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) < 0 && rc == 0) rc = -errno;
    if (rc == 0 && rename(tmp, dst) < 0) rc = -errno;
    if (rc < 0) unlink(tmp);
out:
    free(tmp);
    free(dst);
    return rc;
}

static int h_checkpoint(sked_attempt *a, const char *data, size_t len)
{
    att_ok(a);
    char err[256];
    if (atomic_load(&a->cancelled)) return -1;
    if (!a->io_dir) return -1;
    if (len > H.checkpoint_max) {
        h_outputf(a, SKED_STDERR, "sked: checkpoint refused: %zu bytes, over the %zu-byte cap\n",
                  len, H.checkpoint_max);
        return -1;
    }
    if (results_check_text(data, len, err, sizeof err) < 0) {
        h_outputf(a, SKED_STDERR, "sked: checkpoint refused: %s\n", err);
        return -1;
    }
    pthread_mutex_lock(&a->mu); /* one writer of the file at a time */
    int rc = put_file(a, RESULTS_CHECKPOINT, data, len);
    pthread_mutex_unlock(&a->mu);
    if (rc < 0) h_outputf(a, SKED_STDERR, "sked: checkpoint not saved: %s\n", strerror(-rc));
    return rc < 0 ? -1 : 0;
}

static int h_result(sked_attempt *a, const char *json, size_t len)
{
    att_ok(a);
    char err[256];
    if (!a->io_dir) return -1;
    if (len > H.result_max) {
        h_outputf(a, SKED_STDERR, "sked: result refused: %zu bytes, over the %zu-byte cap\n", len,
                  H.result_max);
        return -1;
    }
    char *copy = xstrndup(json, len);
    size_t n = len;
    int rc = results_check_json(copy, &n, err, sizeof err);
    if (rc < 0 || strlen(copy) != n) {
        h_outputf(a, SKED_STDERR, "sked: result refused: %s\n", rc < 0 ? err : "it holds a NUL");
        free(copy);
        return -1;
    }
    pthread_mutex_lock(&a->mu); /* one writer of the file at a time */
    rc = put_file(a, RESULTS_RESULT, copy, n);
    pthread_mutex_unlock(&a->mu);
    free(copy);
    if (rc < 0) h_outputf(a, SKED_STDERR, "sked: result not saved: %s\n", strerror(-rc));
    return rc < 0 ? -1 : 0;
}

/* Reads io_dir/name once (under a->mu): the attempt's inputs. */
static const char *load_in(sked_attempt *a, const char *name, int *loaded, char **data,
                           size_t *dlen, size_t *len)
{
    pthread_mutex_lock(&a->mu);
    if (!*loaded && a->io_dir) {
        char err[256];
        char *d = NULL;
        size_t n = 0;
        if (results_read(a->io_dir, name, geteuid(), IN_MAX, NULL, NULL, &d, &n, err, sizeof err) ==
            0) {
            *data = d;
            *dlen = n;
        }
        *loaded = 1;
    }
    const char *r = *data;
    if (len) *len = r ? *dlen : 0;
    pthread_mutex_unlock(&a->mu);
    return r;
}

static const char *h_checkpoint_in(sked_attempt *a, size_t *len)
{
    att_ok(a);
    return load_in(a, RESULTS_CHECKPOINT_IN, &a->loaded_in, &a->cp_in, &a->cp_in_len, len);
}

static const char *h_upstream(sked_attempt *a, size_t *len)
{
    att_ok(a);
    return load_in(a, RESULTS_UPSTREAM, &a->loaded_up, &a->upstream, &a->upstream_len, len);
}

static void h_fail(sked_attempt *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void h_fail(sked_attempt *a, const char *fmt, ...)
{
    att_ok(a);
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (n > REASON_MAX) {
        /* Cut at a character boundary, not inside one. */
        int k = REASON_MAX;
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
        s[k] = '\0';
    }
    pthread_mutex_lock(&a->mu);
    free(a->reason);
    a->reason = s;
    pthread_mutex_unlock(&a->mu);
}

static int h_cancelled(sked_attempt *a)
{
    return atomic_load(&att_ok(a)->cancelled);
}

static int h_cancel_fd(sked_attempt *a)
{
    return att_ok(a)->cancel_fd;
}

static int h_sleep(sked_attempt *a, int64_t ms)
{
    att_ok(a);
    int64_t end = clock_mono_ns() + (ms > 0 ? ms : 0) * 1000000;
    for (;;) {
        if (atomic_load(&a->cancelled)) return 1;
        int64_t left = end - clock_mono_ns();
        if (left <= 0) return 0;
        struct pollfd p = {.fd = a->cancel_fd, .events = POLLIN};
        int64_t wait = (left + 999999) / 1000000;
        poll(&p, 1, wait > 60000 ? 60000 : (int)wait);
    }
}

static int64_t h_deadline_ms(sked_attempt *a)
{
    att_ok(a);
    if (!a->deadline_ns) return -1;
    int64_t left = a->deadline_ns - clock_mono_ns();
    return left > 0 ? left / 1000000 : 0;
}

static const sked_host host_services = {
    .abi = SKED_PLUGIN_ABI,
    .size = sizeof(sked_host),
    .config = h_config,
    .getenv = h_getenv,
    .output = h_output,
    .outputf = h_outputf,
    .progress = h_progress,
    .checkpoint = h_checkpoint,
    .checkpoint_in = h_checkpoint_in,
    .result = h_result,
    .upstream_results = h_upstream,
    .fail = h_fail,
    .cancelled = h_cancelled,
    .cancel_fd = h_cancel_fd,
    .sleep = h_sleep,
    .deadline_ms = h_deadline_ms,
};

/* ---- attempts ------------------------------------------------------------ */

static void attempt_destroy(sked_attempt *a)
{
    free(a->config);
    for (char **e = a->env; e && *e; e++)
        free(*e);
    free(a->env);
    free(a->io_dir);
    free(a->reason);
    free(a->cp_in);
    free(a->upstream);
    if (a->cancel_fd >= 0) close(a->cancel_fd);
    pthread_mutex_destroy(&a->mu);
    a->magic = 0;
    free(a);
}

static void cancel(sked_attempt *a)
{
    if (atomic_exchange(&a->cancelled, 1)) return;
    uint64_t one = 1;
    ssize_t w = write(a->cancel_fd, &one, sizeof one);
    (void)w;
}

/* Runs a and reports it; called on a pool thread. */
static void run_one(sked_attempt *a)
{
    const sked_plugin *pl = H.plugin;
    int rc = SKED_PLUGIN_FAILED;
    char field[256] = "", detail[512] = "";
    if (pl->validate && pl->validate(H.state, a->config, a->config_len, field, sizeof field, detail,
                                     sizeof detail) != SKED_PLUGIN_OK) {
        field[sizeof field - 1] = detail[sizeof detail - 1] = '\0';
        h_fail(a, "%s%s%s", field, field[0] ? ": " : "", detail[0] ? detail : "invalid config");
    } else {
        rc = pl->run(H.state, a, &host_services);
    }
    if (rc == SKED_PLUGIN_OK) {
        send_json(PROTO_DONE, a->key, json_pack("{s:b}", "ok", 1));
        return;
    }
    pthread_mutex_lock(&a->mu);
    char *reason = xstrdup(a->reason ? a->reason : "failed");
    pthread_mutex_unlock(&a->mu);
    send_failed(a->key, reason);
    free(reason);
}

static void *pool_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&H.mu);
    for (;;) {
        while (!H.queue && !H.quit) {
            H.idle++;
            pthread_cond_wait(&H.cv, &H.mu);
            H.idle--;
        }
        if (!H.queue) break;
        sked_attempt *a = H.queue;
        H.queue = a->next;
        if (!H.queue) H.queue_tail = NULL;
        H.nqueued--;
        a->next = H.running;
        H.running = a;
        pthread_mutex_unlock(&H.mu);
        run_one(a);
        pthread_mutex_lock(&H.mu);
        for (sked_attempt **pp = &H.running; *pp; pp = &(*pp)->next)
            if (*pp == a) {
                *pp = a->next;
                break;
            }
        attempt_destroy(a);
    }
    H.live--;
    pthread_cond_broadcast(&H.cv);
    pthread_mutex_unlock(&H.mu);
    return NULL;
}

/* Takes a from the queue (under H.mu). */
static void unqueue(sked_attempt *a)
{
    sked_attempt *prev = NULL;
    for (sked_attempt *q = H.queue; q; prev = q, q = q->next) {
        if (q != a) continue;
        if (prev)
            prev->next = a->next;
        else
            H.queue = a->next;
        if (H.queue_tail == a) H.queue_tail = prev;
        H.nqueued--;
        return;
    }
}

/* Takes a START frame. Returns 0, or -1 for a malformed one. */
static int start(uint64_t key, const char *data, size_t len)
{
    json_error_t je;
    json_t *v = json_loadb(data, len, 0, &je);
    json_t *cfg = json_object_get(v, "config"), *env = json_object_get(v, "env");
    const char *io = json_string_value(json_object_get(v, "io_dir"));
    if (!json_is_object(cfg) || (env && !json_is_array(env))) {
        json_decref(v);
        return -1;
    }
    sked_attempt *a = xcalloc(1, sizeof *a);
    a->magic = ATTEMPT_MAGIC;
    a->key = key;
    pthread_mutex_init(&a->mu, NULL);
    a->config = json_dumps(cfg, JSON_COMPACT);
    a->config_len = strlen(a->config);
    a->io_dir = io ? xstrdup(io) : NULL;
    size_t n = json_array_size(env), i;
    a->env = xcalloc(n + 1, sizeof *a->env);
    size_t k = 0;
    json_t *e;
    json_array_foreach(env, i, e)
    {
        if (json_is_string(e)) a->env[k++] = xstrdup(json_string_value(e));
    }
    json_int_t dl = json_integer_value(json_object_get(v, "deadline_ms"));
    if (dl > 0) a->deadline_ns = clock_mono_ns() + (int64_t)dl * 1000000;
    json_decref(v);
    a->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (a->cancel_fd < 0) {
        h_fail(a, "eventfd: %s", strerror(errno));
        send_failed(key, a->reason ? a->reason : "eventfd failed");
        attempt_destroy(a);
        return 0;
    }
    pthread_mutex_lock(&H.mu);
    if (H.queue_tail)
        H.queue_tail->next = a;
    else
        H.queue = a;
    H.queue_tail = a;
    /* Every queued attempt needs a thread of its own now: an idle thread
     * signalled but not yet awake counts as idle until it takes one, so
     * compare with the queue, not with zero (else a second attempt sent
     * before the first was taken would wait for a run to end). */
    if (H.idle < ++H.nqueued) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int err = pthread_create(&t, &at, pool_main, NULL);
        pthread_attr_destroy(&at);
        if (err) {
            /* No thread for it (a thread limit: RLIMIT_NPROC counts
             * threads; RLIMIT_AS their stacks): it fails now, with why,
             * rather than wait unseen for a thread to come free. */
            unqueue(a);
            pthread_mutex_unlock(&H.mu);
            char *why =
                xasprintf("the plugin host could not start a thread for it: %s", strerror(err));
            send_failed(key, why);
            free(why);
            attempt_destroy(a);
            return 0;
        }
        H.live++;
    }
    pthread_cond_signal(&H.cv);
    pthread_mutex_unlock(&H.mu);
    return 0;
}

static void cancel_key(uint64_t key)
{
    sked_attempt *gone = NULL;
    pthread_mutex_lock(&H.mu);
    for (sked_attempt *a = H.running; a; a = a->next)
        if (a->key == key) cancel(a);
    /* One still waiting for a thread never begins: it ends now. */
    for (sked_attempt *a = H.queue; a && !gone; a = a->next)
        if (a->key == key) gone = a;
    if (gone) unqueue(gone);
    pthread_mutex_unlock(&H.mu);
    if (gone) {
        send_failed(key, "canceled before it began");
        attempt_destroy(gone);
    }
}

/* The worker is gone (or said stop): every attempt is told, the pool gets
 * a moment to wind down, then fini, if they all did. */
static int stop_all(void)
{
    pthread_mutex_lock(&H.mu);
    H.quit = 1;
    for (sked_attempt *a = H.running; a; a = a->next)
        cancel(a);
    for (sked_attempt *a = H.queue; a; a = a->next)
        cancel(a);
    pthread_cond_broadcast(&H.cv);
    int64_t end = clock_now_ms() + STOP_WAIT_NS / 1000000;
    while (H.live > 0) {
        struct timespec ts = {.tv_sec = end / 1000, .tv_nsec = (end % 1000) * 1000000};
        if (pthread_cond_timedwait(&H.cv, &H.mu, &ts) == ETIMEDOUT) break;
    }
    int all = H.live == 0;
    pthread_mutex_unlock(&H.mu);
    return all;
}

/* ---- loading ------------------------------------------------------------- */

/* Loads the plugin at path for type, refusing it before any of its code
 * runs when its manifest says otherwise. Returns 0, or -1 with err. */
static int load(const char *path, const char *type, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    /* The manifest and the code come from the same open file: a plugin
     * replaced between the two cannot slip in. */
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
    plugin_manifest_t m;
    char merr[512];
    if (plugin_manifest_read(fdpath, &m, merr, sizeof merr) < 0) {
        snprintf(err, errlen, "%s refused: %s", path, merr);
        close(fd);
        return -1;
    }
    if (strcmp(m.type, type)) {
        snprintf(err, errlen, "%s is now of type \"%s\", not \"%s\"", path, m.type, type);
        plugin_manifest_clear(&m);
        close(fd);
        return -1;
    }
    void *h = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
    close(fd);
    if (!h) {
        snprintf(err, errlen, "%s: %s", path, dlerror());
        plugin_manifest_clear(&m);
        return -1;
    }
    const sked_plugin *pl = dlsym(h, "sked_plugin_v1");
    char want[SKED_PLUGIN_TYPE_MAX + 16];
    snprintf(want, sizeof want, "jobtype/%s", type);
    const char *why = NULL;
    if (!pl)
        why = "it exports no sked_plugin_v1 (SKED_PLUGIN_DESCRIPTOR)";
    else if (pl->abi != m.abi)
        why = "its descriptor's ABI is not its manifest's";
    else if (pl->size < offsetof(sked_plugin, run) + sizeof pl->run || !pl->run)
        why = "its descriptor has no run";
    else if (!pl->type || strcmp(pl->type, want))
        why = "its descriptor's type is not \"jobtype/<its manifest's type>\"";
    if (why) {
        snprintf(err, errlen, "%s refused: %s", path, why);
        plugin_manifest_clear(&m);
        dlclose(h);
        return -1;
    }
    plugin_manifest_clear(&m);
    H.plugin = pl; /* the handle stays open for the life of the process */
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sked plugin-host --type T (--plugin FILE | --builtin) [options]\n\n"
               "Runs the attempts of one plugin's job type for a worker, which starts it\n"
               "(docs/plugins.md): not a command for people.\n\n"
               "options:\n"
               "  --type T              the job type\n"
               "  --plugin FILE         the plugin's shared object\n"
               "  --builtin             one of sked's own job types (http)\n"
               "  --result-max N        bytes a result may hold\n"
               "  --checkpoint-max N    bytes a checkpoint may hold\n"
               "  --http-allow CIDRS    addresses the http type may reach\n"
               "  -h, --help            this help\n");
}

int plugin_host_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},
        {"plugin", required_argument, NULL, 'p'},
        {"builtin", no_argument, NULL, 'b'},
        {"result-max", required_argument, NULL, 'r'},
        {"checkpoint-max", required_argument, NULL, 'c'},
        {"http-allow", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *type = NULL, *path = NULL, *allow = NULL;
    int builtin = 0, o;
    H.result_max = 64 << 10;
    H.checkpoint_max = 64 << 10;
    optind = 1;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 't':
            type = optarg;
            break;
        case 'p':
            path = optarg;
            break;
        case 'b':
            builtin = 1;
            break;
        case 'r':
            H.result_max = strtoull(optarg, NULL, 10);
            break;
        case 'c':
            H.checkpoint_max = strtoull(optarg, NULL, 10);
            break;
        case 'a':
            allow = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!type || builtin == !!path) {
        usage(stderr);
        return 2;
    }
    /* The channel is our stdin; stdin itself becomes /dev/null, so a
     * plugin that reads it cannot eat the worker's frames. */
    H.ch = fcntl(0, F_DUPFD_CLOEXEC, 3);
    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (H.ch < 0 || nul < 0 || dup2(nul, 0) < 0) {
        fprintf(stderr, "plugin-host: no channel: %s\n", strerror(errno));
        return 2;
    }
    close(nul);
    signal(SIGPIPE, SIG_IGN);

    char err[1024] = "";
    if (builtin) {
        for (const plugin_builtin_t *b = plugin_builtins; b->type; b++)
            if (!strcmp(b->type, type)) H.plugin = b->plugin;
        if (!H.plugin) snprintf(err, sizeof err, "no built-in job type \"%s\"", type);
        /* The http type's SSRF allow list, set before its init (http_job.h). */
        if (H.plugin == &http_job_plugin && http_job_allow(allow, err, sizeof err) < 0)
            H.plugin = NULL;
    } else {
        load(path, type, err, sizeof err);
    }
    if (H.plugin && H.plugin->init) {
        char ierr[512] = "";
        if (H.plugin->init(&host_services, &H.state, ierr, sizeof ierr) != SKED_PLUGIN_OK) {
            ierr[sizeof ierr - 1] = '\0';
            snprintf(err, sizeof err, "its init failed: %s", ierr[0] ? ierr : "(no reason given)");
            H.plugin = NULL;
        }
    }
    if (!H.plugin) {
        send_frame(PROTO_FATAL, 0, 0, err, strlen(err));
        return 3;
    }
    send_json(PROTO_HELLO, 0,
              json_pack("{s:s, s:s, s:i}", "type", type, "version",
                        H.plugin->version ? H.plugin->version : "", "abi", (int)H.plugin->abi));

    buf_t in = BUF_INIT;
    char rb[64 << 10];
    int bad = 0;
    for (;;) {
        ssize_t r = read(H.ch, rb, sizeof rb);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break; /* the worker is gone */
        buf_append(&in, rb, (size_t)r);
        size_t off = 0;
        proto_frame_t f;
        ssize_t k;
        while ((k = proto_get(in.data + off, in.len - off, &f)) > 0) {
            off += (size_t)k;
            if (f.type == PROTO_START) {
                if (start(f.key, f.data, f.len) < 0) bad = 1;
            } else if (f.type == PROTO_CANCEL) {
                cancel_key(f.key);
            } else if (f.type == PROTO_PING) {
                send_frame(PROTO_PONG, 0, f.key, NULL, 0);
            } else {
                bad = 1;
            }
        }
        if (k < 0) bad = 1;
        if (bad) {
            fprintf(stderr, "plugin-host: malformed frame from the worker; stopping\n");
            break;
        }
        /* Keep the partial frame at the start of the buffer. */
        buf_consume(&in, off);
    }
    buf_free(&in);
    int clean = stop_all();
    if (!clean) _exit(bad ? 2 : 0); /* threads that did not stop in time die with us */
    if (H.plugin->fini) H.plugin->fini(H.state);
    close(H.ch);
    return bad ? 2 : 0;
}
