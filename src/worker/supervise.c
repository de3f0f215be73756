/*
 * The supervisor: one thread that forks every attempt of the worker and
 * watches all of them at once with epoll over their stdout/stderr pipes and
 * pidfds (no thread per attempt). It batches output into chunks (flushed at
 * 64 KiB or after 200 ms), enforces timeouts (SIGTERM to the process group,
 * SIGKILL after the grace), acts on stop requests that other threads post
 * on the attempt (cancel, lease lost, shutdown) and self-fences attempts
 * whose lease was not renewed in time. See worker_int.h for the contract.
 *
 * Self-fencing has two hands. This thread kills an attempt whose lease was
 * not renewed in time; and, because this thread stops whenever the worker
 * process does (SIGSTOP, a debugger, a stall), it also hands each
 * attempt's fence time to the orphan watcher (spawn.h), a separate
 * process, which kills the group when the time passes even if the worker
 * never runs again. The watcher's deadline trails ours by a little
 * (watch_slack), so while this thread runs it is always the one that
 * fences and the watcher never races a renewal we have seen.
 *
 * Isolation is applied here per attempt (sup_isolation_t): a job without a
 * cwd of its own gets a fresh directory under the work dir, owned by the
 * run-as user, made just before the fork; the child takes on that user and
 * the limits (spawn.c). The directory is removed by attempt_free, on a
 * report thread, so a job that leaves a large tree never stalls this one.
 *
 * It must be the thread that forks: PR_SET_PDEATHSIG fires when the
 * forking *thread* exits, and this thread lives exactly as long as the
 * worker.
 */
#include "worker/worker_int.h"
#include "worker/sup_int.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#define FLUSH_BYTES (64 * 1024)        /* ship a chunk once this much is buffered */
#define FLUSH_NS    (200 * 1000000LL)  /* ... or once the oldest byte is this old */
#define DRAIN_NS    (2000 * 1000000LL) /* after exit, wait this long for pipe EOF */
#define READ_BUDGET (4 * 64 * 1024)    /* bytes read per event: fairness between jobs */
#define MAX_WAIT_NS (1000 * 1000000LL) /* the loop wakes at least this often */
#define RBUF_SIZE   SUP_RBUF_SIZE
/* The watcher's deadline follows renewals in steps of at least this much
 * (each renewal moves it by a heartbeat, so in practice one message per
 * heartbeat per attempt); a smaller move goes out only when the deadline
 * it replaces falls due. At most a quarter of lease - margin (watch_step). */
#define WATCH_STEP_NS  (100 * 1000000LL)
#define WATCH_SLACK_NS (500 * 1000000LL) /* at most; see watch_slack */

attempt_t *attempt_new(void)
{
    attempt_t *a = xcalloc(1, sizeof *a);
    a->exit_code = -1;
    atomic_init(&a->stop, ATTEMPT_RUN);
    atomic_init(&a->renewed_ns, 0);
    return a;
}

static void strv_free(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

void attempt_free(attempt_t *a)
{
    if (!a) return;
    strv_free(a->argv);
    spawn_env_free(a->envp);
    free(a->cwd);
    free(a->plugin);
    free(a->start_json);
    char *dirs[2] = {a->work_dir, a->io_dir};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i]) continue;
        int rc = spawn_tree_remove(dirs[i]);
        if (rc < 0)
            attempt_log(log_warn, a, "run %s: removing its %s directory %s: %s", a->run_id,
                        i ? "results" : "work", dirs[i], strerror(-rc));
        free(dirs[i]);
    }
    free(a->reason);
    free(a->checkpoint_in);
    free(a->result);
    free(a->last_checkpoint);
    free(a);
}

static void wake(sup_t *s)
{
    uint64_t one = 1;
    ssize_t r = write(s->evfd, &one, sizeof one);
    (void)r; /* EAGAIN means a wake-up is already pending, which is enough */
}

void sup_submit(sup_t *s, attempt_t *a)
{
    a->qnext = NULL;
    atomic_fetch_add(&s->active, 1);
    pthread_mutex_lock(&s->mu);
    if (s->qtail)
        s->qtail->qnext = a;
    else
        s->qhead = a;
    s->qtail = a;
    pthread_mutex_unlock(&s->mu);
    wake(s);
}

void sup_poke(sup_t *s)
{
    wake(s);
}

void sup_set_lease(sup_t *s, int64_t lease_ms, int64_t heartbeat_ms)
{
    int64_t lease = lease_ms * 1000000, hb = heartbeat_ms * 1000000;
    int64_t margin = 2 * hb > lease / 5 ? 2 * hb : lease / 5;
    /* With a heartbeat too slow for its lease the rule would fence at once;
     * half the lease still leaves the server its whole grace. */
    if (margin > lease / 2) margin = lease / 2;
    atomic_store(&s->margin_ns, margin);
    atomic_store(&s->lease_ns, lease);
    wake(s);
}

void sup_kill_all(sup_t *s)
{
    atomic_store(&s->kill_all, 1);
    wake(s);
}

int sup_active(sup_t *s)
{
    return atomic_load(&s->active);
}

static void finish_attempt(sup_t *s, attempt_t *a)
{
    atomic_fetch_sub(&s->active, 1);
    s->ops->done(s->arg, a);
}

static void flush(sup_t *s, struct proc *p, int stream)
{
    buf_t *b = &p->pend[stream];
    if (!b->len) return;
    size_t len = b->len;
    char *data = buf_steal(b);
    s->ops->chunk(s->arg, p->a, stream, p->seq++, data, len);
}

void sup__watch_fd(sup_t *s, int fd, struct watch *w, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        log_error("worker", "epoll_ctl: %s", strerror(errno)); /* cannot happen with valid fds */
}

void sup__unwatch(sup_t *s, int *fd)
{
    if (*fd < 0) return;
    epoll_ctl(s->ep, EPOLL_CTL_DEL, *fd, NULL);
    close(*fd);
    *fd = -1;
}

void sup__output(sup_t *s, struct proc *p, int stream, const char *data, size_t len, int64_t now)
{
    if (!p->pend[stream].len) p->pend_since[stream] = now;
    buf_append(&p->pend[stream], data, len);
    if (p->pend[stream].len >= FLUSH_BYTES) flush(s, p, stream);
}

static void on_output(sup_t *s, struct proc *p, int stream, int64_t now)
{
    int *fd = stream == 1 ? &p->sp.out_fd : &p->sp.err_fd;
    size_t budget = READ_BUDGET;
    while (*fd >= 0) {
        ssize_t r = read(*fd, s->rbuf, RBUF_SIZE);
        if (r > 0) {
            sup__output(s, p, stream, s->rbuf, (size_t)r, now);
            if ((size_t)r >= budget) break; /* the rest next round: others get a turn */
            budget -= (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        sup__unwatch(s, fd); /* EOF, or an error that will not get better */
    }
}

/* Marks a fenced: its lease is gone, whatever else was asked (a fence
 * beats a cancel in progress; a shutdown stays a shutdown). */
static void fence_attempt(attempt_t *a)
{
    int expected = ATTEMPT_RUN;
    if (!atomic_compare_exchange_strong(&a->stop, &expected, ATTEMPT_STOP_FENCE) &&
        expected == ATTEMPT_STOP_CANCEL)
        atomic_store(&a->stop, ATTEMPT_STOP_FENCE);
}

/* Logs a failed message to the watcher, once per kind of failure: the
 * worker goes on without that fence (the supervisor's own still holds). */
void sup__watch_check(sup_t *s, int rc)
{
    if (rc >= 0 || rc == s->watch_err) return;
    s->watch_err = rc;
    if (rc == -EPIPE)
        log_error("worker", "the orphan watcher is gone: attempts are no longer killed when the "
                            "worker dies or stalls past a lease");
    else
        log_error("worker",
                  "the orphan watcher does not read its pipe (%s): messages to it are "
                  "being dropped",
                  strerror(-rc));
}

/* How far the watcher's deadline trails our own fence: enough for this
 * thread to pass on a renewal it has just seen (it wakes at the old fence
 * time at the latest), and at most half the margin, so the watcher still
 * kills well before the lease ends. */
static int64_t watch_slack(int64_t margin_ns)
{
    return margin_ns / 2 < WATCH_SLACK_NS ? margin_ns / 2 : WATCH_SLACK_NS;
}

/* How often the loop looks for renewals to pass on to the watcher, and
 * the smallest move it passes on before the old deadline falls due: a
 * quarter of the time a renewal buys (lease - margin), at most 100 ms for
 * the step and the loop's own MAX_WAIT_NS for the look. Between the two,
 * a renewal reaches the watcher well before the deadline it replaces. */
static int64_t watch_step(int64_t lease_ns, int64_t margin_ns, int64_t most)
{
    int64_t q = (lease_ns - margin_ns) / 4;
    return q > 0 && q < most ? q : most;
}

/* Keeps the watcher's kill deadline for fw's group in step with our fence
 * time: renewed + lease - margin (+ the slack), or none with fencing off
 * (or renewed_ns 0). */
void sup__watch_move(sup_t *s, struct fence_watch *fw, int64_t renewed_ns, int64_t now)
{
    if (!s->watcher || !fw->pid) return;
    int64_t lease = atomic_load(&s->lease_ns), margin = atomic_load(&s->margin_ns);
    int64_t fence = lease > 0 && renewed_ns ? renewed_ns + lease - margin : 0;
    if (fence == fw->fence_ns) return;
    int64_t was = fw->fence_ns;
    /* Forward by small steps only when the old deadline falls due; back
     * (a shorter lease) or off, at once. */
    if (fence && was && fence > was && fence - was < watch_step(lease, margin, WATCH_STEP_NS) &&
        now < was)
        return;
    int64_t deadline = fence ? fence + watch_slack(margin) : 0;
    int rc = spawn_watcher_deadline(s->watcher, fw->pid, deadline);
    sup__watch_check(s, rc);
    /* Taken as done even when it failed: a watcher that is gone (or that
     * refuses more) gets no retries, and the loop no reason to spin. */
    fw->fence_ns = fence;
    if (rc == 0) fw->watch_ns = deadline;
}

/* Keeps the watcher's kill deadline for process p in step with its lease. */
static void watch_update(sup_t *s, struct proc *p, int64_t now)
{
    if (p->host || p->killed || p->exited) return;
    sup__watch_move(s, &p->fw, atomic_load(&p->a->renewed_ns), now);
}

static void on_exit_ready(sup_t *s, struct proc *p, int64_t now)
{
    pid_t pid = p->sp.pid;
    /* Leftovers of the job's process group die with it (systemd's
     * control-group rule); otherwise a background grandchild would keep
     * the pipes, and the slot, forever. Done while the leader is an
     * unreaped zombie, so the group id cannot have been reused. */
    kill(-pid, SIGKILL);
    /* Before the reap, while the zombie leader still holds the group id:
     * the watcher can never be left holding an id that names someone
     * else. */
    if (s->watcher) sup__watch_check(s, spawn_watcher_remove(s->watcher, pid));
    int rc = spawn_wait(&p->sp, &p->exit_code, &p->signo);
    if (rc < 0) {
        attempt_log(log_error, p->a, "run %s: waiting for pid %d: %s", p->a->run_id, (int)pid,
                    strerror(-rc));
        p->exit_code = -1;
        p->signo = SIGKILL;
    }
    sup__unwatch(s, &p->sp.pidfd);
    p->exited = 1;
    p->exited_ns = now;
    if (p->signo == SIGKILL && p->cause < CAUSE_FENCE && p->fw.watch_ns && now >= p->fw.watch_ns) {
        /* Killed when the watcher's deadline had passed: this thread was
         * not running (the worker was stopped or stalled) when the lease
         * ran out, so the watcher fenced it. The lease is gone: report
         * nothing, as for our own fence. */
        attempt_t *a = p->a;
        fence_attempt(a);
        p->cause = CAUSE_FENCE;
        attempt_log(log_warn, a,
                    "run %s attempt %d: killed by the watcher when its lease ran out (the worker "
                    "was stalled)",
                    a->run_id, a->n);
    }
}

/* A fresh directory per attempt, owned by the job's user, when the job has
 * no cwd of its own: nothing of an earlier attempt or another job is
 * there to find. Negative errno when it cannot be made. */
static int make_work_dir(sup_t *s, attempt_t *a)
{
    if (a->cwd || !s->iso.work_dir || a->work_dir || a->plugin) return 0;
    char *prefix = xasprintf("%s.%d", a->run_id, a->n);
    int rc = spawn_workdir_new(s->iso.work_dir, prefix, s->iso.cred, &a->work_dir);
    free(prefix);
    return rc;
}

static void start(sup_t *s, attempt_t *a, int64_t now)
{
    struct proc *p = NULL;
    const char *op = NULL;
    int st = atomic_load(&a->stop);
    if (st != ATTEMPT_RUN || atomic_load(&s->quit) || atomic_load(&s->kill_all)) {
        /* Stopped before it began. */
        a->outcome = st == ATTEMPT_STOP_CANCEL ? "canceled" : NULL;
        goto done;
    }
    if (!a->argv && !a->plugin) {
        a->outcome = "failed";
        goto done;
    }
    int64_t lease = atomic_load(&s->lease_ns);
    if (lease > 0 && now > atomic_load(&a->renewed_ns) + lease - atomic_load(&s->margin_ns)) {
        /* The lease is (nearly) over before the attempt began (this worker
         * stalled between confirming and starting it): the server may
         * already have given the run to another worker. Never start it;
         * report it not started, which gives the run back at once and
         * uncharged if the server still holds it for us (else the report
         * is stale, and dropped). */
        attempt_log(log_warn, a, "run %s attempt %d: lease over before it started; not running it",
                    a->run_id, a->n);
        a->outcome = "not_started";
        a->reason = a->reason ? a->reason : xstrdup("not started: its lease was over on arrival");
        goto done;
    }
    if (a->plugin) {
        p = xcalloc(1, sizeof *p);
        p->a = a;
        p->sp.pid = -1;
        p->sp.pidfd = p->sp.out_fd = p->sp.err_fd = -1;
        if (a->timeout_ms > 0) p->deadline_ns = now + a->timeout_ms * 1000000;
        if (sup__plugin_start(s, p, now) < 0) {
            free(p);
            goto done;
        }
        p->next = s->procs;
        s->procs = p;
        return;
    }
    int wrc = make_work_dir(s, a);
    if (wrc < 0) {
        a->outcome = "failed";
        free(a->reason);
        a->reason = xasprintf("work directory under %s: %s", s->iso.work_dir, strerror(-wrc));
        goto done;
    }
    spawn_proc_t sp;
    spawn_opts_t o = {.argv = a->argv,
                      .envp = a->envp,
                      .cwd = a->cwd ? a->cwd : a->work_dir,
                      .cred = s->iso.cred,
                      .limits = s->iso.limits};
    int rc = spawn_start(&o, &sp, &op);
    if (rc < 0) {
        a->outcome = "failed";
        free(a->reason);
        a->reason = xasprintf("%s: %s", op ? op : "spawn", strerror(-rc));
        goto done;
    }
    p = xcalloc(1, sizeof *p);
    p->a = a;
    p->sp = sp;
    p->fw.pid = sp.pid;
    a->pid = sp.pid;
    if (s->watcher) {
        /* The group and, at once, its deadline: fenced from the start. */
        sup__watch_check(s, spawn_watcher_add(s->watcher, sp.pid));
        watch_update(s, p, now);
    }
    int fds[3] = {sp.pidfd, sp.out_fd, sp.err_fd};
    for (int k = 0; k < 3; k++) {
        p->w[k].p = p;
        p->w[k].kind = k;
        sup__watch_fd(s, fds[k], &p->w[k], EPOLLIN);
    }
    if (a->timeout_ms > 0) p->deadline_ns = now + a->timeout_ms * 1000000;
    p->next = s->procs;
    s->procs = p;
    return;
done:
    finish_attempt(s, a);
}

/* Starts the held attempts that are due, and any that will not start
 * after all (stopped, or the supervisor quitting: start() ends them at
 * once); arms the timer for the earliest left. */
static void start_later(sup_t *s, int64_t now)
{
    bool all = atomic_load(&s->quit) || atomic_load(&s->kill_all);
    int64_t next = 0;
    for (attempt_t **pp = &s->later; *pp;) {
        attempt_t *a = *pp;
        if (all || a->start_ns <= now || atomic_load(&a->stop) != ATTEMPT_RUN) {
            *pp = a->qnext;
            start(s, a, now);
            continue;
        }
        if (!next || a->start_ns < next) next = a->start_ns;
        pp = &a->qnext;
    }
    if (next == s->tfd_at) return;
    struct itimerspec it = {
        .it_value = {.tv_sec = next / 1000000000, .tv_nsec = next % 1000000000}};
    if (timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &it, NULL) < 0)
        log_error("worker", "timerfd_settime: %s", strerror(errno));
    s->tfd_at = next;
}

static void signal_group(sup_t *s, struct proc *p, int sig, int64_t now)
{
    if (p->host) {
        sup__plugin_stop(s, p, sig == SIGKILL, now);
        return;
    }
    if (kill(-p->sp.pid, sig) < 0 && errno != ESRCH)
        log_warn("worker", "kill(-%d, %d): %s", (int)p->sp.pid, sig, strerror(errno));
}

static enum cause cause_of(int stop)
{
    switch (stop) {
    case ATTEMPT_STOP_CANCEL:
        return CAUSE_CANCEL;
    case ATTEMPT_STOP_LOST:
        return CAUSE_LOST;
    case ATTEMPT_STOP_FENCE:
        return CAUSE_FENCE;
    case ATTEMPT_STOP_SHUTDOWN:
        return CAUSE_SHUTDOWN;
    default:
        return CAUSE_NONE;
    }
}

/* Acts on stop requests and deadlines of a running attempt. */
static void enforce(sup_t *s, struct proc *p, int64_t now)
{
    attempt_t *a = p->a;
    if (atomic_load(&s->kill_all) || atomic_load(&s->quit)) {
        int expected = ATTEMPT_RUN;
        atomic_compare_exchange_strong(&a->stop, &expected, ATTEMPT_STOP_SHUTDOWN);
        if (expected != ATTEMPT_RUN && expected != ATTEMPT_STOP_SHUTDOWN)
            atomic_store(&a->stop, ATTEMPT_STOP_SHUTDOWN);
    }
    int64_t lease = atomic_load(&s->lease_ns);
    /* The watcher's deadline passed while this thread was not running
     * (the worker stalled): the watcher has killed the group or is about
     * to, and the lease counts as lost even if a renewal came meanwhile. */
    int stalled = p->fw.watch_ns && now >= p->fw.watch_ns;
    if (stalled ||
        (lease > 0 && now > atomic_load(&a->renewed_ns) + lease - atomic_load(&s->margin_ns))) {
        fence_attempt(a);
        if (p->cause < CAUSE_FENCE)
            attempt_log(log_warn, a, "run %s attempt %d: %s", a->run_id, a->n,
                        stalled
                            ? "the worker stalled past the lease; its watcher fenced the attempt"
                            : "lease not renewed in time, killing it");
    }
    enum cause req = cause_of(atomic_load(&a->stop));
    if (req == CAUSE_NONE && !p->cause && p->deadline_ns && now >= p->deadline_ns)
        req = CAUSE_TIMEOUT;
    if (req > p->cause) {
        p->cause = req;
        /* A lost lease (a 409: the run may already be another worker's)
         * gets no grace: a polite SIGTERM would let the two overlap. */
        if (req >= CAUSE_LOST) {
            if (!p->killed) signal_group(s, p, SIGKILL, now);
            p->killed = 1;
        } else if (!p->term_ns) {
            signal_group(s, p, SIGTERM, now);
            p->term_ns = now;
        }
    }
    if (p->term_ns && !p->killed && now >= p->term_ns + s->grace_ns) {
        signal_group(s, p, SIGKILL, now);
        p->killed = 1;
    }
}

static void result(struct proc *p)
{
    attempt_t *a = p->a;
    int st = atomic_load(&a->stop);
    a->exit_code = p->exit_code;
    a->signo = p->signo;
    if (p->preset) {
        a->outcome = p->preset_outcome; /* a plugin attempt that never began */
    } else if (st == ATTEMPT_STOP_LOST || st == ATTEMPT_STOP_FENCE || p->cause == CAUSE_SHUTDOWN) {
        a->outcome = NULL; /* the lease is gone (or we are): the server decides */
    } else if (p->cause == CAUSE_CANCEL) {
        a->outcome = "canceled";
        if (!a->reason) a->reason = xstrdup("canceled");
    } else if (p->cause == CAUSE_TIMEOUT) {
        a->outcome = "timeout";
        if (!a->reason) a->reason = xstrdup("timeout");
    } else {
        a->outcome = p->exit_code == 0 && p->signo == 0 ? "succeeded" : "failed";
    }
}

/* Frees p and hands its attempt to done once the process is reaped and its
 * output drained (or the drain deadline passed). Returns 1 if finished. */
static int maybe_finish(sup_t *s, struct proc *p, int64_t now)
{
    if (!p->exited) return 0;
    if ((p->sp.out_fd >= 0 || p->sp.err_fd >= 0) && now < p->exited_ns + DRAIN_NS) return 0;
    /* Whatever is still readable now is the last of it. */
    if (p->sp.out_fd >= 0) on_output(s, p, 1, now);
    if (p->sp.err_fd >= 0) on_output(s, p, 2, now);
    sup__unwatch(s, &p->sp.out_fd);
    sup__unwatch(s, &p->sp.err_fd);
    flush(s, p, 1);
    flush(s, p, 2);
    spawn_close(&p->sp);
    result(p);
    attempt_t *a = p->a;
    a->nchunks = p->seq; /* a note of the report thread's goes after the output */
    if (p->host) sup__plugin_detach(s, p);
    buf_free(&p->pend[1]);
    buf_free(&p->pend[2]);
    free(p);
    finish_attempt(s, a);
    return 1;
}

static int64_t min_pos(int64_t a, int64_t b)
{
    return b > 0 && b < a ? b : a;
}

/* Milliseconds until the earliest thing the loop must do by itself. */
static int next_timeout_ms(sup_t *s, int64_t now)
{
    int64_t t = now + MAX_WAIT_NS;
    int64_t lease = atomic_load(&s->lease_ns), margin = atomic_load(&s->margin_ns);
    for (struct proc *p = s->procs; p; p = p->next) {
        for (int k = 1; k <= 2; k++)
            if (p->pend[k].len) t = min_pos(t, p->pend_since[k] + FLUSH_NS);
        if (p->exited) {
            t = min_pos(t, p->exited_ns + DRAIN_NS);
            continue;
        }
        if (!p->cause) t = min_pos(t, p->deadline_ns);
        if (p->term_ns && !p->killed) t = min_pos(t, p->term_ns + s->grace_ns);
        if (lease > 0 && p->cause < CAUSE_FENCE)
            t = min_pos(t, atomic_load(&p->a->renewed_ns) + lease - margin + 1);
        /* Pass renewals on to the watcher in good time, and any left at
         * the last moment: when the deadline it holds falls due. */
        if (p->fw.fence_ns && !p->killed) {
            t = min_pos(t, now + watch_step(lease, margin, MAX_WAIT_NS));
            t = min_pos(t, p->fw.fence_ns);
        }
    }
    if (s->watcher && s->watcher->qlen) t = min_pos(t, now + FLUSH_NS);
    t = sup__plugin_next(s, now, t);
    if (t <= now) return 0;
    return (int)((t - now + 999999) / 1000000);
}

static void *sup_main(void *arg)
{
    sup_t *s = arg;
    struct epoll_event evs[64];
    for (;;) {
        int64_t now = clock_mono_ns();
        int n = epoll_wait(s->ep, evs, 64, next_timeout_ms(s, now));
        if (n < 0) {
            if (errno != EINTR) log_error("worker", "epoll_wait: %s", strerror(errno));
            n = 0;
        }
        now = clock_mono_ns();
        for (int i = 0; i < n; i++) {
            struct watch *w = evs[i].data.ptr;
            if (!w || w == &s->tfd_w) {
                uint64_t v;
                ssize_t r = read(w ? s->tfd : s->evfd, &v, sizeof v);
                (void)r;
                continue;
            }
            if (w->h) {
                sup__plugin_event(s, w, now);
            } else if (w->kind == 0) {
                if (w->p->sp.pidfd >= 0) on_exit_ready(s, w->p, now);
            } else {
                on_output(s, w->p, w->kind, now);
            }
        }
        pthread_mutex_lock(&s->mu);
        attempt_t *q = s->qhead;
        s->qhead = s->qtail = NULL;
        pthread_mutex_unlock(&s->mu);
        while (q) {
            attempt_t *next = q->qnext;
            if (q->start_ns > now) {
                /* Held until its time, with its directory made now, off
                 * the path from the fire time to the start (start()
                 * tries again, and fails the attempt, if this fails). */
                (void)make_work_dir(s, q);
                q->qnext = s->later;
                s->later = q;
            } else {
                start(s, q, now);
            }
            q = next;
        }
        start_later(s, now);
        sup__plugin_tick(s, now);
        for (struct proc **pp = &s->procs; *pp;) {
            struct proc *p = *pp;
            if (!p->exited) {
                enforce(s, p, now);
                watch_update(s, p, now);
            }
            for (int k = 1; k <= 2; k++)
                if (p->pend[k].len && now >= p->pend_since[k] + FLUSH_NS) flush(s, p, k);
            struct proc *next = p->next;
            if (maybe_finish(s, p, now))
                *pp = next;
            else
                pp = &p->next;
        }
        if (s->watcher && s->watcher->qlen) sup__watch_check(s, spawn_watcher_flush(s->watcher));
        if (atomic_load(&s->quit) && !s->procs) {
            pthread_mutex_lock(&s->mu);
            int empty = s->qhead == NULL;
            pthread_mutex_unlock(&s->mu);
            if (empty) break;
        }
    }
    sup__plugin_free(s);
    return NULL;
}

int sup_new(const sup_ops_t *ops, void *arg, int64_t kill_grace_ms, spawn_watcher_t *watcher,
            const sup_isolation_t *iso, sup_t **out)
{
    int rc = 0;
    sup_t *s = xcalloc(1, sizeof *s);
    if (iso) s->iso = *iso;
    s->ops = ops;
    s->arg = arg;
    s->grace_ns = kill_grace_ms * 1000000;
    s->watcher = watcher;
    s->ep = s->evfd = s->tfd = -1;
    pthread_mutex_init(&s->mu, NULL);
    s->rbuf = xmalloc(RBUF_SIZE);
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (s->ep < 0 || s->evfd < 0 || s->tfd < 0) {
        rc = -errno;
        goto out;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &s->tfd_w};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->evfd, &ev) < 0 ||
        epoll_ctl(s->ep, EPOLL_CTL_ADD, s->tfd, &tev) < 0) {
        rc = -errno;
        goto out;
    }
    sup__plugin_init(s);
    int err = pthread_create(&s->thread, NULL, sup_main, s);
    if (err) rc = -err;
out:
    if (rc < 0) {
        if (s->ep >= 0) close(s->ep);
        if (s->evfd >= 0) close(s->evfd);
        if (s->tfd >= 0) close(s->tfd);
        pthread_mutex_destroy(&s->mu);
        free(s->rbuf);
        free(s);
        s = NULL;
    }
    *out = s;
    return rc;
}

void sup_free(sup_t *s)
{
    if (!s) return;
    atomic_store(&s->quit, 1);
    wake(s);
    pthread_join(s->thread, NULL);
    close(s->ep);
    close(s->evfd);
    close(s->tfd);
    pthread_mutex_destroy(&s->mu);
    free(s->rbuf);
    free(s);
}
