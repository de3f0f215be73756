/*
 * The orphan watcher: a tiny process, forked once at worker start, that
 * holds the live attempt process groups and their kill deadlines; see
 * spawn.h for what it promises and supervise.c for how the supervisor
 * feeds it.
 */
#include "worker/spawn.h"
#include "worker/spawn_int.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * The worker speaks to the watcher in fixed-size messages. Each is written
 * whole (a pipe write of at most PIPE_BUF bytes is atomic, and the buffer
 * holds whole messages), so the watcher only ever sees complete ones; it
 * still reassembles across reads, which costs nothing.
 *
 * Self-fencing by the supervisor thread stops when the worker process
 * stops (SIGSTOP, a debugger, a stall in the kernel): the watcher, another
 * process, keeps each group's kill deadline on the shared CLOCK_MONOTONIC
 * and kills the group when it passes, whether or not the worker ever
 * speaks again.
 *
 * The worker's end is non-blocking, because the supervisor thread, which
 * writes, must never wait for the watcher: that would stall every attempt
 * and the supervisor's own fence with it. A full pipe means the watcher is
 * not reading (it is stopped, or starved of CPU), and while it does not
 * read it does not kill either, so nothing is gained by dropping or
 * blocking. Messages wait in the worker's queue instead, in order, and go
 * out with the next message or flush; a deadline replaces the one still
 * queued for its group, so a long stall costs one queued deadline per
 * group, not one per renewal. Dropping a deadline would be wrong twice
 * over: the watcher would keep an older one and kill a healthy attempt.
 * When the watcher reads again it takes everything before it judges any
 * deadline. The queue is capped (WATCH_QUEUE_MAX) only against a watcher
 * stuck for good.
 */
enum { WATCH_ADD = 1, WATCH_FORGET = 2, WATCH_DEADLINE = 3 };

struct watch_msg {
    int32_t op;          /* WATCH_* */
    int32_t pgid;        /* the process group */
    int64_t deadline_ns; /* WATCH_DEADLINE: CLOCK_MONOTONIC ns; 0 = none */
};

_Static_assert(PIPE_BUF % sizeof(struct watch_msg) == 0, "whole messages per atomic write");

#define WATCH_MAX       16384         /* process groups at once; far above any slot count */
#define WATCH_QUEUE_MAX (1024 * 1024) /* bytes the worker queues for a watcher not reading */
#define WATCH_RBUF      (64 * sizeof(struct watch_msg))

/* In .bss so the forked watcher needs no allocation (fork from a threaded
 * process allows only async-signal-safe calls in the child). */
static pid_t watch_groups[WATCH_MAX];
static int64_t watch_deadline[WATCH_MAX]; /* CLOCK_MONOTONIC ns; 0 = none */

static int64_t watch_now_ns(void)
{
    /* The clock of clock_mono_ns(): the same for every process. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t watch_find(size_t n, pid_t pgid)
{
    for (size_t i = 0; i < n; i++)
        if (watch_groups[i] == pgid) return i;
    return n;
}

static void watch_apply(const struct watch_msg *m, size_t *n)
{
    /* Never kill(-1) or kill(-0): that would hit everything. */
    if (m->pgid <= 1) return;
    size_t i = watch_find(*n, m->pgid);
    switch (m->op) {
    case WATCH_ADD:
        if (i == *n) {
            if (*n == WATCH_MAX) return;
            watch_groups[(*n)++] = m->pgid;
        }
        watch_deadline[i] = 0;
        break;
    case WATCH_FORGET:
        if (i < *n) {
            --*n;
            watch_groups[i] = watch_groups[*n];
            watch_deadline[i] = watch_deadline[*n];
        }
        break;
    case WATCH_DEADLINE:
        if (i < *n) watch_deadline[i] = m->deadline_ns > 0 ? m->deadline_ns : 0;
        break;
    default:
        break;
    }
}

/* Kills the groups whose deadline has passed; returns the poll timeout to
 * the earliest one left (ms, -1 = none). A group is killed once and stays
 * listed, so that the worker's "forget", sent when it reaps the leader,
 * still finds it. */
static int watch_fire(size_t n)
{
    int64_t now = watch_now_ns(), next = 0;
    for (size_t i = 0; i < n; i++) {
        if (!watch_deadline[i]) continue;
        if (now >= watch_deadline[i]) {
            kill(-watch_groups[i], SIGKILL);
            watch_deadline[i] = 0;
        } else if (!next || watch_deadline[i] < next) {
            next = watch_deadline[i];
        }
    }
    if (!next) return -1;
    int64_t ms = (next - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static __attribute__((noreturn)) void watcher_main(int fd)
{
    /* Its own session: a Ctrl-C or a kill of the worker's process group
     * must not take the watcher down with the worker, or it could not do
     * its one job. It exits only on EOF. */
    setsid();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    int ign[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGUSR1, SIGUSR2, SIGALRM};
    for (size_t i = 0; i < sizeof ign / sizeof ign[0]; i++)
        sigaction(ign[i], &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* Keep only the pipe (as fd 3) and stderr: holding the worker's other
     * fds (sockets, a test harness's stdout pipe) would keep them alive. */
    if (fd != 3) {
        if (dup2(fd, 3) < 0) _exit(1);
        if (fd > 3) close(fd);
    }
    (void)close_range(4, ~0U, 0);
    int nul = open("/dev/null", O_RDWR);
    if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        if (fd <= 2) dup2(nul, fd);
        if (nul > 3) close(nul);
    }
    /* Non-blocking: each wake-up reads everything the worker has sent
     * before any deadline is judged, so a renewal already in the pipe is
     * never overtaken by the kill it was sent to prevent (after a stall of
     * the watcher itself, say). The read end is the watcher's alone. */
    fcntl(3, F_SETFL, fcntl(3, F_GETFL) | O_NONBLOCK);

    size_t n = 0, have = 0;
    union {
        unsigned char b[WATCH_RBUF];
        struct watch_msg align;
    } rb;
    int timeout_ms = -1;
    for (;;) {
        struct pollfd q = {3, POLLIN, 0};
        if (poll(&q, 1, timeout_ms) < 0 && errno != EINTR) break;
        int eof = 0;
        for (;;) {
            ssize_t r = read(3, rb.b + have, sizeof rb.b - have);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && errno == EAGAIN) break;
            if (r <= 0) {
                eof = 1;
                break;
            }
            have += (size_t)r;
            size_t used = 0;
            for (; have - used >= sizeof(struct watch_msg); used += sizeof(struct watch_msg)) {
                struct watch_msg m;
                memcpy(&m, rb.b + used, sizeof m);
                watch_apply(&m, &n);
            }
            memmove(rb.b, rb.b + used, have - used);
            have -= used;
        }
        if (eof) break;
        timeout_ms = watch_fire(n);
    }
    for (size_t i = 0; i < n; i++)
        kill(-watch_groups[i], SIGKILL);
    _exit(0);
}

int spawn_watcher_start(spawn_watcher_t *w)
{
    int pfd[2] = {-1, -1};
    memset(w, 0, sizeof *w);
    w->pid = -1;
    w->fd = -1;
    if (pipe2(pfd, O_CLOEXEC) < 0) return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(pfd[0]);
        close(pfd[1]);
        return -err;
    }
    if (pid == 0) {
        close(pfd[1]);
        watcher_main(pfd[0]);
    }
    close(pfd[0]);
    /* Non-blocking: the supervisor must never wait on the watcher (see
     * spawn_watcher_flush). The write end is ours alone. */
    if (fcntl(pfd[1], F_SETFL, O_NONBLOCK) < 0) {
        int err = errno;
        close(pfd[1]); /* EOF: the watcher exits */
        spawn__reap(pid);
        return -err;
    }
    w->pid = pid;
    w->fd = pfd[1];
    return 0;
}

int spawn_watcher_flush(spawn_watcher_t *w)
{
    if (w->fd < 0) return -EPIPE;
    while (w->qlen) {
        size_t len = w->qlen < PIPE_BUF ? w->qlen : PIPE_BUF;
        ssize_t r = write(w->fd, w->q, len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) break; /* the watcher is behind: later */
        if (r <= 0) {
            int err = r < 0 ? errno : EIO;
            /* The watcher is gone (EPIPE): nothing queued can matter. */
            close(w->fd);
            w->fd = -1;
            w->qlen = 0;
            return -err;
        }
        memmove(w->q, w->q + r, w->qlen - (size_t)r);
        w->qlen -= (size_t)r;
    }
    return (int)(w->qlen / sizeof(struct watch_msg));
}

static int watch_send(spawn_watcher_t *w, int op, pid_t pgid, int64_t deadline_ns)
{
    if (w->fd < 0) return -EPIPE;
    struct watch_msg m = {.op = op, .pgid = (int32_t)pgid, .deadline_ns = deadline_ns};
    /* A newer deadline replaces one still queued for the same group (the
     * last message queued for it), so a watcher that is not reading costs
     * one queued deadline per group, not one per renewal. */
    if (op == WATCH_DEADLINE) {
        for (size_t off = w->qlen; off >= sizeof m; off -= sizeof m) {
            struct watch_msg old;
            memcpy(&old, w->q + off - sizeof m, sizeof old);
            if (old.pgid != m.pgid) continue;
            if (old.op == WATCH_DEADLINE) {
                memcpy(w->q + off - sizeof m, &m, sizeof m);
                int rc = spawn_watcher_flush(w);
                return rc < 0 ? rc : 0;
            }
            break;
        }
    }
    if (w->qlen + sizeof m > WATCH_QUEUE_MAX) {
        /* Not read for a very long time (a stopped watcher): keep what is
         * queued, in order, and refuse the rest. */
        int rc = spawn_watcher_flush(w);
        if (rc < 0) return rc;
        if (w->qlen + sizeof m > WATCH_QUEUE_MAX) return -ENOBUFS;
    }
    if (w->qlen + sizeof m > w->qcap) {
        w->qcap = w->qcap ? 2 * w->qcap : 16 * sizeof m;
        w->q = xrealloc(w->q, w->qcap);
    }
    memcpy(w->q + w->qlen, &m, sizeof m);
    w->qlen += sizeof m;
    int rc = spawn_watcher_flush(w);
    return rc < 0 ? rc : 0;
}

int spawn_watcher_add(spawn_watcher_t *w, pid_t pgid)
{
    return watch_send(w, WATCH_ADD, pgid, 0);
}

int spawn_watcher_remove(spawn_watcher_t *w, pid_t pgid)
{
    return watch_send(w, WATCH_FORGET, pgid, 0);
}

int spawn_watcher_deadline(spawn_watcher_t *w, pid_t pgid, int64_t deadline_ns)
{
    return watch_send(w, WATCH_DEADLINE, pgid, deadline_ns > 0 ? deadline_ns : 0);
}

void spawn_watcher_stop(spawn_watcher_t *w)
{
    /* Last orders: whatever the pipe takes now. A "forget" left behind
     * means the watcher kills a group that is already gone (its leader
     * was reaped), which is harmless unless the id was reused meanwhile. */
    if (w->fd >= 0) spawn_watcher_flush(w);
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    if (w->pid > 0) spawn__reap(w->pid);
    w->pid = -1;
    free(w->q);
    w->q = NULL;
    w->qlen = w->qcap = 0;
}
