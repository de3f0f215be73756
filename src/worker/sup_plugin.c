/*
 * The supervisor's plugin hosts (plugin_host.h): one long-lived process per
 * plugin type, started by this thread (so it dies with the worker, like a
 * job), running many attempts at once over the channel of plugin_proto.h.
 *
 * A plugin attempt is a `struct proc` like a process's, so the supervisor
 * loop treats both alike — timeouts, cancels, self-fencing, output
 * batching — except for how it is stopped: a CANCEL frame where a process
 * gets SIGTERM, and, where a process gets SIGKILL, its whole host is
 * killed (there is no killing one thread of a process), which fails the
 * host's other attempts too. So a hard stop first gives the plugin a
 * moment (HKILL_WAIT_NS) to return.
 *
 * Failure is contained: a host that dies fails only the attempts it was
 * running ("plugin crashed"), one that leaves a ping unanswered or does
 * not stop an attempt in time is killed ("plugin hung"), and it is started
 * again with backoff while attempts wait for it. A host that cannot start
 * at all (its plugin refused, its init failed) fails the attempts that
 * come for it at once, with why, until a later start succeeds.
 *
 * The orphan watcher holds a kill deadline for each host as for a job's
 * process group: the earliest fence time among its attempts, so a worker
 * that stalls cannot leave a plugin running past a lease.
 */
#include "common/buf.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "worker/plugin_proto.h"
#include "worker/sup_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define PING_EVERY_NS  (1000 * 1000000LL)  /* a host with attempts is pinged this often */
#define HKILL_WAIT_NS  (500 * 1000000LL)   /* a hard stop waits this long before the host dies */
#define BACKOFF_MIN_NS (250 * 1000000LL)   /* restart backoff: first */
#define BACKOFF_MAX_NS (30000 * 1000000LL) /* ... doubling up to this */
#define HEALTHY_NS     (60000 * 1000000LL) /* up this long: the backoff starts over */
#define WATCH_MOVE_NS  (250 * 1000000LL)   /* the watcher's deadline follows at least this often */
#define DIAG_LINE_MAX  4096
#define READ_BUDGET    (1 << 20)
#define REASON_MAX     1024 /* bytes of a plugin's failure reason kept */

enum hstate { H_DOWN = 0, H_STARTING, H_READY, H_BACKOFF };

struct phost {
    const char *type, *path; /* borrowed from the definitions */
    enum hstate state;
    spawn_proc_t sp;
    int ch; /* our end of the channel, O_NONBLOCK; -1 when none */
    struct watch w[4];
    struct fence_watch fw;
    buf_t in, out;      /* bytes read and not parsed yet; bytes not written yet */
    int want_out;       /* EPOLLOUT is on */
    buf_t diag[3];      /* [1] stdout, [2] stderr of the host: a partial line */
    struct proc *procs; /* its attempts, started or waiting for it */
    int64_t started_ns, restart_ns, backoff_ns;
    int64_t ping_ns, next_ping_ns; /* the ping outstanding (0 = none); the next one */
    uint64_t ping_seq;
    char *why;   /* owned: why we are killing it; its attempts' reason */
    char *fatal; /* owned: why it could not start, last time */
    int killing;
    struct phost *next;
};

static void set_str(char **dst, char *s)
{
    free(*dst);
    *dst = s;
}

/* ---- the channel --------------------------------------------------------- */

static void want_out(sup_t *s, struct phost *h, int on)
{
    if (h->want_out == on || h->ch < 0) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = &h->w[3]};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, h->ch, &ev);
    h->want_out = on;
}

static void flush_out(sup_t *s, struct phost *h)
{
    size_t off = 0;
    while (h->ch >= 0 && off < h->out.len) {
        ssize_t w = send(h->ch, h->out.data + off, h->out.len - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        /* The host is going: its death comes through the pidfd. */
        off = h->out.len;
    }
    buf_consume(&h->out, off);
    want_out(s, h, h->out.len > 0);
}

static void host_send(sup_t *s, struct phost *h, int type, uint64_t key, const char *data,
                      size_t len)
{
    if (h->ch < 0) return;
    proto_put(&h->out, type, 0, key, data, len);
    flush_out(s, h);
}

/* Whether h takes attempts now: up, and not being killed. */
static int host_ready(const struct phost *h)
{
    return h->state == H_READY && !h->killing && h->ch >= 0;
}

/* Sends p's START, unless it must not begin any more (as start() checks
 * for a process): told to stop while it waited for its host, or its lease
 * (nearly) over — the server may have given the run away. Then it ends
 * without having run. */
static void send_start(sup_t *s, struct phost *h, struct proc *p, int64_t now)
{
    attempt_t *a = p->a;
    int st = atomic_load(&a->stop);
    int64_t lease = atomic_load(&s->lease_ns);
    if (st != ATTEMPT_RUN ||
        (lease > 0 && now > atomic_load(&a->renewed_ns) + lease - atomic_load(&s->margin_ns))) {
        p->exited = 1;
        p->exited_ns = now;
        p->exit_code = -1;
        p->preset = 1;
        p->preset_outcome = st == ATTEMPT_STOP_CANCEL ? "canceled"
                            : st == ATTEMPT_RUN       ? "not_started"
                                                      : NULL;
        if (st == ATTEMPT_RUN)
            set_str(&a->reason, xstrdup("not started: its lease was over before its plugin host "
                                        "was ready"));
        return;
    }
    /* The time left before its timeout, as of now: the attempt may have
     * waited for its host to start. start_json is an object's text
     * ("{...}"), so the member goes in front of the others. */
    const char *js = a->start_json ? a->start_json : "{\"config\":{}}";
    long long left = p->deadline_ns ? (p->deadline_ns - now) / 1000000 : -1;
    if (p->deadline_ns && left < 1) left = 1; /* due now: the timeout comes next */
    char *msg = xasprintf("{\"deadline_ms\":%lld%s%s", left, js[1] == '}' ? "" : ",", js + 1);
    host_send(s, h, PROTO_START, p->key, msg, strlen(msg));
    free(msg);
    p->sent = 1;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void host_kill(struct phost *h, char *why)
{
    if (h->killing || h->sp.pid <= 0) {
        free(why);
        return;
    }
    log_warn("worker", "plugin %s: killing its host (pid %d): %s", h->type, (int)h->sp.pid, why);
    set_str(&h->why, why);
    kill(-h->sp.pid, SIGKILL);
    h->killing = 1;
}

/* Fails attempt p now with reason (stolen). */
static void fail_now(struct proc *p, int64_t now, int signo, char *reason)
{
    attempt_t *a = p->a;
    p->exited = 1;
    p->exited_ns = now;
    p->exit_code = -1;
    p->signo = signo;
    set_str(&a->reason, reason);
}

static int has_waiting(const struct phost *h)
{
    for (const struct proc *p = h->procs; p; p = p->hnext)
        if (!p->sent && !p->exited) return 1;
    return 0;
}

static void host_spawn(sup_t *s, struct phost *h, int64_t now)
{
    const sup_plugins_t *pl = s->iso.plugins;
    int sv[2] = {-1, -1};
    const char *op = "socketpair";
    int rc = 0;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        rc = -errno;
    } else {
        size_t nextra = 0;
        while (pl->host_args && pl->host_args[nextra])
            nextra++;
        char **argv = xcalloc(nextra + 8, sizeof *argv);
        size_t k = 0;
        argv[k++] = (char *)pl->exe;
        argv[k++] = "plugin-host";
        argv[k++] = "--type";
        argv[k++] = (char *)h->type;
        if (h->path) {
            argv[k++] = "--plugin";
            argv[k++] = (char *)h->path;
        } else {
            argv[k++] = "--builtin";
        }
        for (size_t i = 0; i < nextra; i++)
            argv[k++] = pl->host_args[i];
        argv[k] = NULL;
        spawn_opts_t o = {.argv = argv,
                          .envp = pl->envp,
                          .cwd = "/",
                          .cred = s->iso.cred,
                          .limits = s->host_limits.n ? &s->host_limits : NULL,
                          .stdin_fd = sv[1]};
        op = NULL;
        rc = spawn_start(&o, &h->sp, &op);
        free(argv);
        close(sv[1]);
    }
    if (rc < 0) {
        if (sv[0] >= 0) close(sv[0]);
        set_str(&h->fatal, xasprintf("its host could not be started (%s: %s)", op ? op : "spawn",
                                     strerror(-rc)));
        log_error("worker", "plugin %s: %s", h->type, h->fatal);
        h->state = H_BACKOFF;
        h->restart_ns = now + (h->backoff_ns ? h->backoff_ns : BACKOFF_MIN_NS);
        for (struct proc *p = h->procs; p; p = p->hnext)
            if (!p->exited) fail_now(p, now, 0, xasprintf("plugin %s: %s", h->type, h->fatal));
        return;
    }
    h->ch = sv[0];
    fcntl(h->ch, F_SETFL, fcntl(h->ch, F_GETFL) | O_NONBLOCK);
    int fds[4] = {h->sp.pidfd, h->sp.out_fd, h->sp.err_fd, h->ch};
    for (int i = 0; i < 4; i++) {
        h->w[i].p = NULL;
        h->w[i].h = h;
        h->w[i].kind = i;
        sup__watch_fd(s, fds[i], &h->w[i], EPOLLIN);
    }
    h->want_out = 0;
    h->fw = (struct fence_watch){.pid = h->sp.pid};
    if (s->watcher) sup__watch_check(s, spawn_watcher_add(s->watcher, h->sp.pid));
    h->state = H_STARTING;
    h->started_ns = now;
    h->ping_ns = 0;
    h->next_ping_ns = now + PING_EVERY_NS;
    log_debug("worker", "plugin %s: host started (pid %d)", h->type, (int)h->sp.pid);
}

/* Logs the host's own output (what a plugin prints instead of using
 * host->output, and the host's complaints) line by line. */
static void diag(sup_t *s, struct phost *h, int stream, int eof)
{
    int *fd = stream == 1 ? &h->sp.out_fd : &h->sp.err_fd;
    buf_t *b = &h->diag[stream];
    size_t budget = READ_BUDGET;
    while (*fd >= 0 && budget) {
        ssize_t r = read(*fd, s->rbuf, SUP_RBUF_SIZE);
        if (r > 0) {
            buf_append(b, s->rbuf, (size_t)r);
            budget = (size_t)r >= budget ? 0 : budget - (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        sup__unwatch(s, fd);
        eof = 1;
    }
    size_t off = 0;
    for (;;) {
        char *nl = b->len > off ? memchr(b->data + off, '\n', b->len - off) : NULL;
        size_t n = nl ? (size_t)(nl - (b->data + off)) : b->len - off;
        if (!nl && !(eof && n) && n < DIAG_LINE_MAX) break;
        if (n > DIAG_LINE_MAX) n = DIAG_LINE_MAX;
        log_msg(stream == 2 ? LOG_WARN : LOG_INFO, "worker", "plugin %s (pid %d): %.*s", h->type,
                (int)h->sp.pid, (int)n, b->data + off);
        off += n + (nl && b->data + off + n == nl ? 1 : 0);
        if (off >= b->len) break;
    }
    buf_consume(b, off);
}

static struct proc *by_key(struct phost *h, uint64_t key)
{
    for (struct proc *p = h->procs; p; p = p->hnext)
        if (p->key == key) return p;
    return NULL;
}

/* The bytes of reason that fit REASON_MAX, cut at a character boundary
 * (jansson gave us valid UTF-8). */
static size_t reason_cut(const char *reason)
{
    size_t n = strlen(reason);
    if (n <= REASON_MAX) return n;
    n = REASON_MAX;
    while (n > 0 && ((unsigned char)reason[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static void on_done(struct phost *h, struct proc *p, const char *data, size_t len, int64_t now)
{
    json_t *v = json_loadb(data, len, 0, NULL);
    int ok = json_is_true(json_object_get(v, "ok"));
    const char *reason = json_string_value(json_object_get(v, "reason"));
    p->exited = 1;
    p->exited_ns = now;
    p->exit_code = ok ? 0 : 1;
    p->signo = 0;
    /* An attempt the worker stopped (its timeout, a cancel) failed for
     * that cause, whatever the plugin says on its way out ("canceled"
     * when it was the timeout): result() in supervise.c names it. */
    if (!ok && (p->cause == CAUSE_NONE || p->cause > CAUSE_CANCEL))
        set_str(&p->a->reason, reason ? xstrndup(reason, reason_cut(reason)) : xstrdup("failed"));
    json_decref(v);
    (void)h;
}

/* Reads and acts on what the host sent. */
static void on_channel(sup_t *s, struct phost *h, int64_t now)
{
    size_t budget = READ_BUDGET;
    while (h->ch >= 0 && budget) {
        ssize_t r = read(h->ch, s->rbuf, SUP_RBUF_SIZE);
        if (r > 0) {
            buf_append(&h->in, s->rbuf, (size_t)r);
            budget = (size_t)r >= budget ? 0 : budget - (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        /* The host closed its end: it is exiting; the pidfd tells when. */
        sup__unwatch(s, &h->ch);
        h->want_out = 0;
        break;
    }
    size_t off = 0;
    proto_frame_t f;
    ssize_t k;
    while ((k = proto_get(h->in.data + off, h->in.len - off, &f)) > 0) {
        off += (size_t)k;
        struct proc *p = NULL;
        switch (f.type) {
        case PROTO_HELLO:
            if (h->state != H_STARTING) goto bad;
            h->state = H_READY;
            FREE_NULL(h->fatal);
            log_info("worker", "plugin %s: host ready (pid %d): %.*s", h->type, (int)h->sp.pid,
                     (int)(f.len < 512 ? f.len : 512), f.data);
            for (p = h->procs; p && host_ready(h); p = p->hnext)
                if (!p->sent && !p->exited) send_start(s, h, p, now);
            break;
        case PROTO_FATAL:
            if (h->state != H_STARTING) goto bad; /* only a host that could not start */
            set_str(&h->fatal, xasprintf("it could not be loaded: %.*s",
                                         (int)(f.len < 1024 ? f.len : 1024), f.data));
            log_error("worker", "plugin %s: %s", h->type, h->fatal);
            break;
        case PROTO_OUTPUT_T:
            if (f.len > PROTO_OUTPUT) goto bad; /* the host cuts output at this */
            p = by_key(h, f.key);
            if (p && p->sent && !p->exited && (f.stream == 1 || f.stream == 2))
                sup__output(s, p, f.stream, f.data, f.len, now);
            break;
        case PROTO_DONE:
            p = by_key(h, f.key);
            if (p && p->sent && !p->exited) on_done(h, p, f.data, f.len, now);
            break;
        case PROTO_PONG:
            if (f.key == h->ping_seq) {
                h->ping_ns = 0;
                h->next_ping_ns = now + PING_EVERY_NS;
            }
            break;
        default:
            goto bad;
        }
    }
    if (k < 0) goto bad;
    buf_consume(&h->in, off);
    return;
bad:
    buf_reset(&h->in);
    host_kill(h, xstrdup("plugin crashed: its host sent the worker a malformed message"));
}

/* The host has exited: reap it and settle its attempts. */
static void on_exit_ready(sup_t *s, struct phost *h, int64_t now)
{
    pid_t pid = h->sp.pid;
    kill(-pid, SIGKILL); /* anything it left in its group */
    if (s->watcher) sup__watch_check(s, spawn_watcher_remove(s->watcher, pid));
    int code = -1, signo = 0;
    if (spawn_wait(&h->sp, &code, &signo) < 0) signo = SIGKILL;
    int fenced = signo == SIGKILL && !h->killing && h->fw.watch_ns && now >= h->fw.watch_ns;
    /* Reaped: its id may be anyone's now. Nothing below may signal it
     * (host_kill does nothing for a host being killed). */
    h->killing = 1;
    /* What it said before it died still counts: a DONE, its last words. */
    if (h->ch >= 0) on_channel(s, h, now);
    diag(s, h, 1, 1);
    diag(s, h, 2, 1);
    h->sp.pid = -1;
    sup__unwatch(s, &h->sp.pidfd);
    sup__unwatch(s, &h->sp.out_fd);
    sup__unwatch(s, &h->sp.err_fd);
    sup__unwatch(s, &h->ch);
    spawn_close(&h->sp);
    int was_ready = h->state == H_READY;
    char *reason;
    if (h->why)
        reason = xstrdup(h->why);
    else if (!was_ready)
        reason = xasprintf("plugin %s: %s", h->type,
                           h->fatal ? h->fatal : "its host died before it was ready");
    else if (signo)
        reason = xasprintf("plugin crashed: its host was killed by signal %d (%s)", signo,
                           strsignal(signo));
    else
        reason = xasprintf("plugin crashed: its host exited with status %d", code);
    if (!was_ready && !h->fatal)
        h->fatal = xstrdup(h->why ? h->why : "its host died before it was ready");
    int n = 0;
    for (struct proc *p = h->procs; p; p = p->hnext) {
        if (p->exited || (!p->sent && was_ready)) continue; /* waiting: the next host takes it */
        attempt_t *a = p->a;
        n++;
        if (fenced) {
            /* The watcher killed it: the lease ran out while this worker
             * was stalled. Nothing is reported, as for a fenced process. */
            atomic_store(&a->stop, ATTEMPT_STOP_FENCE);
            p->cause = CAUSE_FENCE;
        }
        char *r = p->cause == CAUSE_TIMEOUT ? xasprintf("timeout: %s", reason) : xstrdup(reason);
        fail_now(p, now, signo ? signo : 0, r);
    }
    if (fenced)
        log_warn("worker",
                 "plugin %s: its host was killed by the watcher when a lease ran out "
                 "(the worker was stalled)",
                 h->type);
    else if (!h->why && was_ready)
        log_warn("worker", "plugin %s: %s (%d attempt(s) failed)", h->type, reason, n);
    free(reason);
    /* Backoff: starts over once a host has been up a while. */
    if (was_ready && now - h->started_ns >= HEALTHY_NS) h->backoff_ns = 0;
    h->backoff_ns = h->backoff_ns ? h->backoff_ns * 2 : BACKOFF_MIN_NS;
    if (h->backoff_ns > BACKOFF_MAX_NS) h->backoff_ns = BACKOFF_MAX_NS;
    h->restart_ns = now + h->backoff_ns;
    h->state = H_BACKOFF;
    h->killing = 0;
    FREE_NULL(h->why);
    buf_reset(&h->in);
    buf_reset(&h->out);
    buf_reset(&h->diag[1]);
    buf_reset(&h->diag[2]);
    h->fw = (struct fence_watch){0};
    h->ping_ns = 0;
}

/* ---- the supervisor's side ----------------------------------------------- */

void sup__plugin_init(sup_t *s)
{
    const sup_plugins_t *pl = s->iso.plugins;
    for (int i = 0; s->iso.limits && i < s->iso.limits->n; i++) {
        if (s->iso.limits->resource[i] == RLIMIT_CPU) continue;
        s->host_limits.resource[s->host_limits.n] = s->iso.limits->resource[i];
        s->host_limits.value[s->host_limits.n++] = s->iso.limits->value[i];
    }
    for (size_t i = 0; pl && i < pl->n; i++) {
        struct phost *h = xcalloc(1, sizeof *h);
        h->type = pl->defs[i].type;
        h->path = pl->defs[i].path;
        h->ch = -1;
        h->sp.pid = -1;
        h->sp.pidfd = h->sp.out_fd = h->sp.err_fd = -1;
        h->next = s->hosts;
        s->hosts = h;
    }
}

int sup__plugin_start(sup_t *s, struct proc *p, int64_t now)
{
    attempt_t *a = p->a;
    struct phost *h = s->hosts;
    while (h && strcmp(h->type, a->plugin))
        h = h->next;
    if (!h) {
        a->outcome = "failed";
        set_str(&a->reason, xasprintf("this worker has no plugin of type \"%s\"", a->plugin));
        return -1;
    }
    if (h->state == H_BACKOFF && h->fatal && now < h->restart_ns) {
        a->outcome = "failed";
        set_str(&a->reason, xasprintf("plugin %s: %s", h->type, h->fatal));
        return -1;
    }
    p->host = h;
    p->key = ++s->next_key;
    p->hnext = h->procs;
    h->procs = p;
    if (host_ready(h))
        send_start(s, h, p, now);
    else if (h->state == H_DOWN || (h->state == H_BACKOFF && now >= h->restart_ns))
        host_spawn(s, h, now);
    return 0;
}

void sup__plugin_stop(sup_t *s, struct proc *p, int kill_now, int64_t now)
{
    struct phost *h = p->host;
    if (p->exited) return;
    if (!p->sent) {
        /* Still waiting for its host: it simply never starts. */
        p->exited = 1;
        p->exited_ns = now;
        p->exit_code = -1;
        return;
    }
    if (!p->term_ns && !p->hkill_ns) host_send(s, h, PROTO_CANCEL, p->key, NULL, 0);
    if (!kill_now) return;
    /* Told to stop a grace ago and still running: the host goes now.
     * Otherwise the plugin gets a moment to return before it does. */
    if (p->term_ns && now >= p->term_ns + s->grace_ns)
        host_kill(h, xasprintf("plugin hung: run %s attempt %d did not stop within %lld ms of "
                               "being told to",
                               p->a->run_id, p->a->n, (long long)(s->grace_ns / 1000000)));
    else if (!p->hkill_ns) {
        /* At most half the fencing margin: a fenced plugin is dead well
         * before its lease ends, as a process would be. */
        int64_t wait = s->grace_ns < HKILL_WAIT_NS ? s->grace_ns : HKILL_WAIT_NS;
        int64_t half = atomic_load(&s->margin_ns) / 2;
        if (half > 0 && half < wait) wait = half;
        p->hkill_ns = now + wait;
    }
}

void sup__plugin_event(sup_t *s, struct watch *w, int64_t now)
{
    struct phost *h = w->h;
    switch (w->kind) {
    case 0:
        if (h->sp.pidfd >= 0) on_exit_ready(s, h, now);
        break;
    case 1:
    case 2:
        diag(s, h, w->kind, 0);
        break;
    default:
        if (h->ch >= 0) flush_out(s, h);
        if (h->ch >= 0) on_channel(s, h, now);
    }
}

void sup__plugin_tick(sup_t *s, int64_t now)
{
    const sup_plugins_t *pl = s->iso.plugins;
    int stopping = atomic_load(&s->quit) || atomic_load(&s->kill_all);
    for (struct phost *h = s->hosts; h; h = h->next) {
        if (h->state == H_DOWN && !stopping) {
            host_spawn(s, h, now); /* at once: the first attempt does not wait for it */
            continue;
        }
        if (h->state == H_BACKOFF) {
            /* After a crash the host comes back when its backoff is over,
             * ready for the next attempt; one that could not start comes
             * back only when an attempt needs it (no restart loop). */
            if (now >= h->restart_ns && (!h->fatal || has_waiting(h)) && !stopping)
                host_spawn(s, h, now);
            continue;
        }
        if (h->killing) continue;
        if (h->state == H_STARTING && now - h->started_ns > pl->hang_ms * 1000000) {
            host_kill(h, xasprintf("plugin hung: its host was not ready within %lld ms",
                                   (long long)pl->hang_ms));
            continue;
        }
        int64_t renewed = 0;
        int active = 0;
        for (struct proc *p = h->procs; p; p = p->hnext) {
            if (!p->sent || p->exited) continue;
            active = 1;
            if (p->hkill_ns && now >= p->hkill_ns) {
                host_kill(h, xasprintf("plugin hung: run %s attempt %d did not stop when it had "
                                       "to (its lease gone, or the worker stopping)",
                                       p->a->run_id, p->a->n));
                break;
            }
            /* Every attempt still running counts, fenced ones too: a fenced
             * plugin runs on until its host is killed, and the watcher
             * must still hold the deadline should this thread stall. */
            int64_t r = atomic_load(&p->a->renewed_ns);
            if (!renewed || r < renewed) renewed = r;
        }
        if (h->killing) continue;
        if (h->state == H_READY && active) {
            if (h->ping_ns && now - h->ping_ns > pl->hang_ms * 1000000) {
                host_kill(h, xasprintf("plugin hung: its host answered no ping for %lld ms",
                                       (long long)pl->hang_ms));
                continue;
            }
            if (!h->ping_ns && now >= h->next_ping_ns) {
                h->ping_seq++;
                h->ping_ns = now;
                host_send(s, h, PROTO_PING, h->ping_seq, NULL, 0);
            }
        } else if (h->state == H_READY) {
            h->ping_ns = 0; /* idle: nothing rides on its answers */
        }
        sup__watch_move(s, &h->fw, renewed, now);
    }
}

static int64_t min_pos(int64_t a, int64_t b)
{
    return b > 0 && b < a ? b : a;
}

int64_t sup__plugin_next(sup_t *s, int64_t now, int64_t t)
{
    int64_t hang = s->iso.plugins ? s->iso.plugins->hang_ms * 1000000 : 0;
    for (struct phost *h = s->hosts; h; h = h->next) {
        if (h->state == H_BACKOFF && (!h->fatal || has_waiting(h))) t = min_pos(t, h->restart_ns);
        if (h->state == H_STARTING) t = min_pos(t, h->started_ns + hang + 1);
        if (h->state != H_READY || h->killing) continue;
        int active = 0;
        for (struct proc *p = h->procs; p; p = p->hnext) {
            if (!p->sent || p->exited) continue;
            active = 1;
            t = min_pos(t, p->hkill_ns);
        }
        if (active) t = min_pos(t, h->ping_ns ? h->ping_ns + hang + 1 : h->next_ping_ns);
        if (h->fw.fence_ns) t = min_pos(t, now + WATCH_MOVE_NS);
    }
    return t;
}

void sup__plugin_detach(sup_t *s, struct proc *p)
{
    (void)s;
    struct phost *h = p->host;
    for (struct proc **pp = &h->procs; *pp; pp = &(*pp)->hnext)
        if (*pp == p) {
            *pp = p->hnext;
            break;
        }
    p->host = NULL;
}

void sup__plugin_free(sup_t *s)
{
    while (s->hosts) {
        struct phost *h = s->hosts;
        s->hosts = h->next;
        if (h->sp.pid > 0 && h->sp.pidfd >= 0) {
            /* Its channel closing tells it to stop; it gets a moment. */
            sup__unwatch(s, &h->ch);
            int code, signo;
            struct epoll_event ev;
            int ep = epoll_create1(EPOLL_CLOEXEC);
            struct epoll_event e = {.events = EPOLLIN};
            if (ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, h->sp.pidfd, &e) == 0 &&
                epoll_wait(ep, &ev, 1, 1000) == 1) {
                /* exited */
            } else {
                kill(-h->sp.pid, SIGKILL);
            }
            if (ep >= 0) close(ep);
            kill(-h->sp.pid, SIGKILL);
            if (s->watcher) sup__watch_check(s, spawn_watcher_remove(s->watcher, h->sp.pid));
            spawn_wait(&h->sp, &code, &signo);
            diag(s, h, 1, 1);
            diag(s, h, 2, 1);
            sup__unwatch(s, &h->sp.pidfd);
            sup__unwatch(s, &h->sp.out_fd);
            sup__unwatch(s, &h->sp.err_fd);
            spawn_close(&h->sp);
        }
        buf_free(&h->in);
        buf_free(&h->out);
        buf_free(&h->diag[1]);
        buf_free(&h->diag[2]);
        free(h->why);
        free(h->fatal);
        free(h);
    }
}
