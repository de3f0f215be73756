/*
 * Why a job or a run is or is not running (explain.h): the facts the server
 * read from the store in, reasons out. The worker checks walk the pool the
 * way a claim narrows it (queue, namespace, labels, draining, free slots)
 * and stop at the first step that leaves no worker, so the reason names
 * what an operator has to change: start a worker for the queue, give one
 * the label, undrain one, add slots.
 */
#include "core/explain.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/xalloc.h"
#include "core/duration.h"

static const char *const code_names[] = {
    "job_deleted",
    "paused",
    "next_fire",
    "no_schedule",
    "schedule_exhausted",
    "running",
    "starting",
    "lease_expired",
    "cancel_requested",
    "retry_backoff",
    "lease_lost",
    "not_yet_due",
    "overlap_forbid",
    "overlap_replace",
    "max_concurrency",
    "no_worker_for_queue",
    "worker_other_namespace",
    "no_worker_labels",
    "workers_draining",
    "workers_full",
    "awaiting_claim",
    "finished",
    "waiting_on_upstream",
    "waiting_on_members",
    "waiting_for_slot",
    "no_worker_with_type",
};
_Static_assert(sizeof code_names / sizeof *code_names == EXPLAIN_CODE_COUNT,
               "a name for every explain code");

/* Workers named in one sentence; the rest are counted. */
#define NAMED_WORKERS 3

const char *explain_code_name(explain_code_t c)
{
    if ((unsigned)c >= EXPLAIN_CODE_COUNT) return NULL;
    return code_names[c];
}

void explain_clear(explain_t *e)
{
    for (size_t i = 0; i < e->n; i++) {
        free(e->v[i].message);
        free(e->v[i].labels);
    }
    free(e->v);
    e->v = NULL;
    e->n = e->cap = 0;
}

/* ---- building reasons ---------------------------------------------------- */

/* A new reason at the end of e, every optional field unset. */
static explain_reason_t *add(explain_t *e, explain_code_t code, const char *run_id)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->v = xrealloc(e->v, e->cap * sizeof *e->v);
    }
    explain_reason_t *r = &e->v[e->n++];
    *r = (explain_reason_t){.code = code,
                            .run_id = run_id && *run_id ? run_id : NULL,
                            .at_ms = -1,
                            .since_ms = -1,
                            .count = -1,
                            .limit = -1};
    return r;
}

/* The text gathered in b so far ("" when none). */
static const char *text(const buf_t *b)
{
    return b->data ? b->data : "";
}

/* Sets r's sentence from the text gathered in b (b is emptied). */
static void say(explain_reason_t *r, buf_t *b)
{
    free(r->message);
    r->message = buf_steal(b);
}

/* " at 2026-01-01T00:00:00.000Z" */
static void put_time(buf_t *b, int64_t ms)
{
    char t[SKED_RFC3339_LEN];
    clock_format_rfc3339(ms, t, sizeof t);
    buf_puts(b, t);
}

/* " (in 4m59s)" or " (4m59s ago)", to the second. */
static void put_rel(buf_t *b, int64_t ms, int64_t now_ms)
{
    int64_t d = ms - now_ms;
    bool ahead = d >= 0;
    if (!ahead) d = -d;
    if (d >= 1000) d = (d + 500) / 1000 * 1000;
    char dur[64];
    duration_format(d, dur, sizeof dur);
    buf_printf(b, ahead ? " (in %s)" : " (%s ago)", dur);
}

/* The worker of id among the facts, or NULL. */
static const explain_worker_t *worker_of(const explain_facts_t *f, const char *id)
{
    for (size_t i = 0; id && *id && i < f->nworkers; i++)
        if (strcmp(f->workers[i].id, id) == 0) return &f->workers[i];
    return NULL;
}

/* "worker w1 (wrk_...)", or "worker wrk_..." when its name is not known. */
static void put_worker(buf_t *b, const explain_facts_t *f, const char *id)
{
    const explain_worker_t *w = worker_of(f, id);
    if (w && w->name && *w->name)
        buf_printf(b, "worker %s (%s)", w->name, id);
    else
        buf_printf(b, "worker %s", id && *id ? id : "(unknown)");
}

/* " of N" when the retry policy bounds attempts. */
static void put_of_max(buf_t *b, const explain_facts_t *f)
{
    if (f->max_attempts > 0) buf_printf(b, " of %d", f->max_attempts);
}

/* ---- lists ------------------------------------------------------------- */

/* Whether the comma-separated list holds item (len bytes) exactly. */
static bool has_item(const char *list, const char *item, size_t len)
{
    for (const char *p = list ? list : ""; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == len && memcmp(p, item, len) == 0) return true;
        if (!comma) break;
        p = comma + 1;
    }
    return false;
}

static bool listed(const char *list, const char *item)
{
    return has_item(list, item, strlen(item));
}

/* Appends to b (comma-separated) each item of constraints that labels
 * lacks; returns how many. */
static int missing_labels(const char *labels, const char *constraints, buf_t *b)
{
    int n = 0;
    for (const char *p = constraints ? constraints : ""; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0 && !has_item(labels, p, len)) {
            if (b) {
                if (b->len) buf_puts(b, ",");
                buf_append(b, p, len);
            }
            n++;
        }
        if (!comma) break;
        p = comma + 1;
    }
    return n;
}

/* ---- the pool ------------------------------------------------------------ */

static bool live(const explain_facts_t *f, const explain_worker_t *w, int64_t now_ms)
{
    return w->state != EXPLAIN_WORKER_LOST && now_ms - w->heartbeat_ms <= f->worker_timeout_ms;
}

static bool ns_ok(const explain_facts_t *f, const explain_worker_t *w)
{
    return !w->ns || !*w->ns || listed(w->ns, f->ns ? f->ns : "");
}

/* The steps of a claim, each narrowing the pool further. */
enum step { STEP_QUEUE, STEP_NS, STEP_LABELS, STEP_TYPE, STEP_ACTIVE };

/* Whether w runs jobs of f's type: shell and http every worker does, a
 * plugin type only a worker that advertised it (as the claim's scan). */
static bool type_ok(const explain_facts_t *f, const explain_worker_t *w)
{
    const char *t = f->type;
    return !t || !strcmp(t, "shell") || !strcmp(t, "http") || listed(w->types, t);
}

/* Whether w passes every step up to and including `upto`. */
static bool passes(const explain_facts_t *f, const explain_worker_t *w, enum step upto,
                   int64_t now_ms)
{
    if (!live(f, w, now_ms) || !listed(w->queues, f->queue)) return false;
    if (upto >= STEP_NS && !ns_ok(f, w)) return false;
    if (upto >= STEP_LABELS && missing_labels(w->labels, f->constraints, NULL) > 0) return false;
    if (upto >= STEP_TYPE && !type_ok(f, w)) return false;
    if (upto >= STEP_ACTIVE && w->state != EXPLAIN_WORKER_ACTIVE) return false;
    return true;
}

/* Names the workers that pass step `upto` ("w1, w2 and 3 more"); returns
 * the first one's id and sets *n to how many pass. */
static const char *name_workers(const explain_facts_t *f, enum step upto, int64_t now_ms, buf_t *b,
                                int64_t *n)
{
    const char *first = NULL;
    *n = 0;
    for (size_t i = 0; i < f->nworkers; i++) {
        const explain_worker_t *w = &f->workers[i];
        if (!passes(f, w, upto, now_ms)) continue;
        if (!first) first = w->id;
        if (++*n <= NAMED_WORKERS) {
            if (*n > 1) buf_puts(b, ", ");
            /* Not their namespaces: whoever may see this job need not
             * know the names of other teams' namespaces. */
            buf_puts(b, w->name && *w->name ? w->name : w->id);
        }
    }
    if (*n > NAMED_WORKERS) buf_printf(b, " and %lld more", (long long)(*n - NAMED_WORKERS));
    return first;
}

static int64_t count_passing(const explain_facts_t *f, enum step upto, int64_t now_ms)
{
    int64_t n = 0;
    for (size_t i = 0; i < f->nworkers; i++)
        n += passes(f, &f->workers[i], upto, now_ms);
    return n;
}

/* No live worker serves the queue: names the one heard from last, if any. */
static void no_queue(const explain_facts_t *f, int64_t now_ms, const char *run_id, explain_t *out)
{
    buf_t b = BUF_INIT;
    explain_reason_t *r = add(out, EXPLAIN_NO_WORKER_FOR_QUEUE, run_id);
    r->queue = f->queue;
    r->count = f->live_workers;
    const explain_worker_t *gone = NULL;
    for (size_t i = 0; i < f->nworkers; i++)
        if (listed(f->workers[i].queues, f->queue) &&
            (!gone || f->workers[i].heartbeat_ms > gone->heartbeat_ms))
            gone = &f->workers[i];
    buf_printf(&b, "No live worker serves queue '%s'", f->queue);
    if (gone) {
        r->worker_id = gone->id;
        r->since_ms = gone->heartbeat_ms;
        buf_puts(&b, "; ");
        put_worker(&b, f, gone->id);
        buf_puts(&b, ", which serves it, was last heard from at ");
        put_time(&b, gone->heartbeat_ms);
        put_rel(&b, gone->heartbeat_ms, now_ms);
    }
    if (f->live_workers > 0)
        buf_printf(&b, "; %lld live worker%s serve%s other queues", (long long)f->live_workers,
                   f->live_workers == 1 ? "" : "s", f->live_workers == 1 ? "s" : "");
    else
        buf_puts(&b, "; no worker is live at all");
    buf_puts(&b, ".");
    say(r, &b);
}

/* Workers serving the queue but none meeting the constraints: names the
 * labels no such worker has, or, when each is had by one but none has them
 * all, what the closest worker lacks. */
static void no_labels(const explain_facts_t *f, int64_t now_ms, const char *run_id, explain_t *out)
{
    buf_t b = BUF_INIT, miss = BUF_INIT;
    explain_reason_t *r = add(out, EXPLAIN_NO_WORKER_LABELS, run_id);
    r->queue = f->queue;
    const explain_worker_t *closest = NULL;
    int fewest = 0;
    /* A constraint no matching worker has at all. */
    for (const char *p = f->constraints ? f->constraints : ""; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        bool had = false;
        for (size_t i = 0; i < f->nworkers && !had; i++)
            had = passes(f, &f->workers[i], STEP_NS, now_ms) &&
                  has_item(f->workers[i].labels, p, len);
        if (len > 0 && !had) {
            if (miss.len) buf_puts(&miss, ",");
            buf_append(&miss, p, len);
        }
        if (!comma) break;
        p = comma + 1;
    }
    if (miss.len == 0)
        for (size_t i = 0; i < f->nworkers; i++) {
            const explain_worker_t *w = &f->workers[i];
            if (!passes(f, w, STEP_NS, now_ms)) continue;
            int m = missing_labels(w->labels, f->constraints, NULL);
            if (!closest || m < fewest) {
                closest = w;
                fewest = m;
            }
        }
    if (closest) {
        missing_labels(closest->labels, f->constraints, &miss);
        r->worker_id = closest->id;
        buf_printf(&b,
                   "No live worker serving queue '%s' has all the labels the job's constraints "
                   "need (%s): the closest, ",
                   f->queue, f->constraints);
        put_worker(&b, f, closest->id);
        buf_printf(&b, ", lacks %s.", text(&miss));
    } else {
        bool one = strchr(text(&miss), ',') == NULL;
        buf_printf(&b,
                   "No live worker serving queue '%s' has the label%s %s that the job's "
                   "constraints need.",
                   f->queue, one ? "" : "s", text(&miss));
    }
    r->labels = buf_steal(&miss);
    say(r, &b);
}

/* A reason of code about the workers that pass `step` of the job's queue:
 * their names into *names, the first as worker_id, how many as count. */
static explain_reason_t *about(const explain_facts_t *f, explain_code_t code, enum step step,
                               const char *run_id, int64_t now_ms, buf_t *names, explain_t *out)
{
    int64_t n = 0;
    const char *first = name_workers(f, step, now_ms, names, &n);
    explain_reason_t *r = add(out, code, run_id);
    r->queue = f->queue;
    r->worker_id = first;
    r->count = n;
    return r;
}

/* What stands between a run of the job and a live worker: appends the first
 * step of a claim that leaves no worker, and returns false; true when some
 * worker could take it now (with a free slot, when need_slot). */
static bool pool(const explain_facts_t *f, int64_t now_ms, bool need_slot, const char *run_id,
                 explain_t *out)
{
    buf_t b = BUF_INIT, names = BUF_INIT;
    explain_reason_t *r = NULL;
    if (count_passing(f, STEP_QUEUE, now_ms) == 0) {
        no_queue(f, now_ms, run_id, out);
        return false;
    }
    if (count_passing(f, STEP_NS, now_ms) == 0) {
        r = about(f, EXPLAIN_WORKER_OTHER_NS, STEP_QUEUE, run_id, now_ms, &names, out);
        r->ns = f->ns;
        buf_printf(&b,
                   "The live workers serving queue '%s' (%s) claim runs only of other "
                   "namespaces than this job's '%s'.",
                   f->queue, text(&names), f->ns);
    } else if (count_passing(f, STEP_LABELS, now_ms) == 0) {
        no_labels(f, now_ms, run_id, out);
        return false;
    } else if (count_passing(f, STEP_TYPE, now_ms) == 0) {
        r = about(f, EXPLAIN_NO_WORKER_TYPE, STEP_LABELS, run_id, now_ms, &names, out);
        r->type = f->type;
        buf_printf(&b,
                   "No live worker serving queue '%s' runs plugin type '%s': the workers that "
                   "could otherwise take it (%s) did not advertise it. Start a worker with "
                   "--plugin-dir holding the plugin.",
                   f->queue, f->type, text(&names));
    } else if (count_passing(f, STEP_ACTIVE, now_ms) == 0) {
        r = about(f, EXPLAIN_WORKERS_DRAINING, STEP_TYPE, run_id, now_ms, &names, out);
        buf_printf(&b,
                   "Every live worker that could run it is draining (%s): a draining worker "
                   "takes no new runs.",
                   text(&names));
    } else {
        if (!need_slot) return true;
        int64_t slots = 0, busy = 0, free_slots = 0;
        for (size_t i = 0; i < f->nworkers; i++) {
            const explain_worker_t *w = &f->workers[i];
            if (!passes(f, w, STEP_ACTIVE, now_ms)) continue;
            slots += w->slots;
            busy += w->running;
            if (w->running < w->slots) free_slots += w->slots - w->running;
        }
        if (free_slots > 0) return true;
        r = about(f, EXPLAIN_WORKERS_FULL, STEP_ACTIVE, run_id, now_ms, &names, out);
        r->limit = slots;
        buf_printf(&b,
                   "Every worker that could run it is busy: %lld of %lld slots in use on %lld "
                   "worker%s (%s).",
                   (long long)busy, (long long)slots, (long long)r->count, r->count == 1 ? "" : "s",
                   text(&names));
        r->count = busy;
    }
    say(r, &b);
    buf_free(&names);
    return false;
}

/* ---- runs ---------------------------------------------------------------- */

/* A running run: running, starting, its lease expired, or asked to cancel. */
static void held(const explain_facts_t *f, const explain_run_t *run, int64_t now_ms, explain_t *out)
{
    buf_t b = BUF_INIT;
    explain_reason_t *r;
    int64_t since = run->last.n > 0 ? run->last.started_ms : -1;
    if (run->cancel_requested) {
        r = add(out, EXPLAIN_CANCEL_REQUESTED, run->id);
        buf_printf(&b, "Run %s is running on ", run->id);
        put_worker(&b, f, run->worker_id);
        buf_printf(&b, " and was asked to cancel (%s): the worker stops it at its next heartbeat.",
                   run->reason ? run->reason : "canceled");
    } else if (run->lease_expires_ms < now_ms) {
        r = add(out, EXPLAIN_LEASE_EXPIRED, run->id);
        buf_printf(&b, "Run %s's lease on ", run->id);
        put_worker(&b, f, run->worker_id);
        buf_puts(&b, " expired at ");
        put_time(&b, run->lease_expires_ms);
        put_rel(&b, run->lease_expires_ms, now_ms);
        if (run->unconfirmed) {
            /* Never confirmed: the reaper gives it back, uncharged. */
            buf_puts(&b, ": the worker never reported it started. From ");
            put_time(&b, run->lease_expires_ms + f->lease_grace_ms);
            buf_puts(&b, " the reaper makes it due again, the attempt not charged.");
        } else {
            buf_puts(&b, ": the worker stopped renewing it. From ");
            put_time(&b, run->lease_expires_ms + f->lease_grace_ms);
            buf_printf(&b, " the reaper ends attempt %d as lost, then retries or fails the run.",
                       run->attempt);
        }
    } else if (run->unconfirmed) {
        r = add(out, EXPLAIN_STARTING, run->id);
        buf_printf(&b, "Run %s was handed to ", run->id);
        put_worker(&b, f, run->worker_id);
        if (since >= 0) {
            buf_puts(&b, " at ");
            put_time(&b, since);
        }
        buf_printf(&b, " (attempt %d); the worker has not reported it started yet, and must by ",
                   run->attempt);
        put_time(&b, run->lease_expires_ms);
        buf_puts(&b, " or the run goes back, uncharged.");
    } else {
        r = add(out, EXPLAIN_RUNNING, run->id);
        buf_printf(&b, "Run %s is running on ", run->id);
        put_worker(&b, f, run->worker_id);
        if (since >= 0) {
            buf_puts(&b, " since ");
            put_time(&b, since);
        }
        buf_printf(&b, " (attempt %d", run->attempt);
        put_of_max(&b, f);
        buf_puts(&b, "); its lease runs to ");
        put_time(&b, run->lease_expires_ms);
        buf_puts(&b, ".");
    }
    r->worker_id = run->worker_id && *run->worker_id ? run->worker_id : NULL;
    r->since_ms = since;
    r->at_ms = run->lease_expires_ms;
    r->attempt = run->attempt;
    say(r, &b);
}

/* A run waiting for its next attempt after one failed or lost its lease. */
static void retrying(const explain_facts_t *f, const explain_run_t *run, int64_t now_ms,
                     explain_t *out)
{
    buf_t b = BUF_INIT;
    const explain_attempt_t *a = &run->last;
    bool lost = a->n > 0 && a->outcome == ATTEMPT_LOST;
    explain_reason_t *r = add(out, lost ? EXPLAIN_LEASE_LOST : EXPLAIN_RETRY_BACKOFF, run->id);
    buf_printf(&b, "Attempt %d of run %s ", run->attempt, run->id);
    if (lost) {
        buf_puts(&b, "lost its lease on ");
        put_worker(&b, f, a->worker_id);
    } else if (a->n > 0 && a->outcome == ATTEMPT_TIMEOUT) {
        buf_puts(&b, "timed out");
    } else {
        buf_puts(&b, "failed");
    }
    if (a->n > 0 && a->finished_ms >= 0) {
        buf_puts(&b, " at ");
        put_time(&b, a->finished_ms);
    }
    if (a->n > 0 && a->signal > 0)
        buf_printf(&b, " (signal %d)", a->signal);
    else if (a->n > 0 && a->exit_code >= 0)
        buf_printf(&b, " (exit %d)", a->exit_code);
    else if (a->n > 0 && a->reason && *a->reason)
        buf_printf(&b, " (%s)", a->reason);
    buf_printf(&b, "; attempt %d", run->attempt + 1);
    put_of_max(&b, f);
    buf_puts(&b, " is due at ");
    put_time(&b, run->not_before_ms);
    put_rel(&b, run->not_before_ms, now_ms);
    buf_puts(&b, lost ? "." : ", after the retry backoff.");
    r->worker_id = a->n > 0 && a->worker_id && *a->worker_id ? a->worker_id : NULL;
    r->since_ms = a->n > 0 ? a->finished_ms : -1;
    r->at_ms = run->not_before_ms;
    r->attempt = run->attempt + 1;
    say(r, &b);
}

/* The first running run of the job among the facts, other than skip. */
static const explain_run_t *a_running_run(const explain_facts_t *f, const char *skip)
{
    for (size_t i = 0; i < f->nruns; i++)
        if (f->runs[i].state == RUN_RUNNING && (!skip || strcmp(f->runs[i].id, skip) != 0))
            return &f->runs[i];
    return NULL;
}

/* The job's overlap policy or concurrency limit, when either holds back
 * its `due` due runs (the first of them is run_id); returns whether one
 * does. forbid is reported whenever a run runs: what comes due meanwhile is
 * skipped. */
static bool job_limits(const explain_facts_t *f, int64_t due, const char *run_id, explain_t *out)
{
    buf_t b = BUF_INIT;
    explain_reason_t *r;
    const explain_run_t *other = a_running_run(f, run_id);
    const char *other_id = other ? other->id : "(not listed)";
    if (f->running > 0 && f->overlap == OVERLAP_FORBID) {
        r = add(out, EXPLAIN_OVERLAP_FORBID, other ? other->id : NULL);
        buf_printf(&b, "Overlap policy forbid: run %s is still running", other_id);
        if (other) {
            buf_puts(&b, " on ");
            put_worker(&b, f, other->worker_id);
        }
        buf_puts(&b, ", so a run of this job that comes due before it ends is skipped");
        if (due > 0) buf_printf(&b, " (%lld due now)", (long long)due);
        buf_puts(&b, ".");
        r->worker_id = other && *other->worker_id ? other->worker_id : NULL;
        r->count = due;
        say(r, &b);
        return due > 0;
    }
    if (due <= 0) return false;
    if (f->running > 0 && f->overlap == OVERLAP_REPLACE) {
        r = add(out, EXPLAIN_OVERLAP_REPLACE, other ? other->id : NULL);
        buf_printf(&b,
                   "Overlap policy replace: run %s is asked to stop, and %lld due run%s wait%s "
                   "until it has.",
                   other_id, (long long)due, due == 1 ? "" : "s", due == 1 ? "s" : "");
        r->worker_id = other && *other->worker_id ? other->worker_id : NULL;
        r->count = due;
        say(r, &b);
        return true;
    }
    if (f->max_concurrency > 0 && f->running >= f->max_concurrency) {
        r = add(out, EXPLAIN_MAX_CONCURRENCY, other ? other->id : NULL);
        buf_printf(&b,
                   "Max concurrency reached: %lld of at most %d runs of this job are running, "
                   "so %lld due run%s wait%s for one to end.",
                   (long long)f->running, f->max_concurrency, (long long)due, due == 1 ? "" : "s",
                   due == 1 ? "s" : "");
        r->count = f->running;
        r->limit = f->max_concurrency;
        say(r, &b);
        return true;
    }
    return false;
}

static void awaiting(const explain_facts_t *f, const explain_run_t *first, int64_t due,
                     int64_t now_ms, explain_t *out)
{
    buf_t b = BUF_INIT;
    explain_reason_t *r = add(out, EXPLAIN_AWAITING_CLAIM, first ? first->id : NULL);
    r->queue = f->queue;
    r->count = due;
    if (first) {
        r->since_ms = first->not_before_ms;
        buf_printf(&b, "Run %s has been due since ", first->id);
        put_time(&b, first->not_before_ms);
        put_rel(&b, first->not_before_ms, now_ms);
        if (due > 1) buf_printf(&b, " (with %lld more)", (long long)(due - 1));
    } else {
        buf_printf(&b, "%lld runs are due", (long long)due);
    }
    buf_printf(&b,
               " and a live worker of queue '%s' has a free slot: the next claim takes it "
               "(higher priorities first).",
               f->queue);
    say(r, &b);
}

static bool due_run(const explain_run_t *r, int64_t now_ms)
{
    return (r->state == RUN_SCHEDULED || r->state == RUN_PENDING) && r->not_before_ms <= now_ms;
}

/* A run waiting out the backoff before its next attempt. */
static bool backing_off(const explain_run_t *r, int64_t now_ms)
{
    return r->state == RUN_SCHEDULED && r->attempt > 0 && r->not_before_ms > now_ms;
}

static void deleted(const explain_facts_t *f, explain_t *out)
{
    buf_t b = BUF_INIT;
    explain_reason_t *r = add(out, EXPLAIN_JOB_DELETED, NULL);
    r->at_ms = f->job_updated_ms;
    buf_puts(&b, "The job was deleted at ");
    put_time(&b, f->job_updated_ms);
    buf_puts(&b, ": nothing of it fires or runs again, and its running runs are asked to stop.");
    say(r, &b);
}

static void paused(const explain_facts_t *f, int64_t held_runs, const char *run_id, explain_t *out)
{
    buf_t b = BUF_INIT;
    explain_reason_t *r = add(out, EXPLAIN_PAUSED, run_id);
    r->since_ms = f->job_updated_ms;
    r->count = held_runs;
    buf_puts(&b, "The job is paused (since ");
    put_time(&b, f->job_updated_ms);
    buf_printf(&b,
               "): its schedules do not fire and %lld of its runs are held until it is "
               "resumed.",
               (long long)held_runs);
    say(r, &b);
}

/* When the job fires next (next >= 0: at next, of run next_run when it is
 * a run made ahead, else of the earliest schedule), or why it never does. */
static void upcoming(const explain_facts_t *f, int64_t next, const char *next_run, int64_t now_ms,
                     explain_t *out)
{
    buf_t b = BUF_INIT;
    explain_reason_t *r;
    if (next >= 0) {
        r = add(out, EXPLAIN_NEXT_FIRE, next_run);
        r->at_ms = next;
        r->schedule_id = next_run ? NULL : f->next_sched_id;
        buf_puts(&b, "Next fire at ");
        put_time(&b, next);
        put_rel(&b, next, now_ms);
        if (next_run)
            buf_printf(&b, ": run %s is made and waits for that time.", next_run);
        else if (f->next_sched_id)
            buf_printf(&b, ", by schedule %s.", f->next_sched_id);
        else
            buf_puts(&b, ".");
        say(r, &b);
        return;
    }
    if (f->nruns > 0 || f->running > 0) return; /* its runs say the rest */
    r = add(out, f->nscheds == 0 ? EXPLAIN_NO_SCHEDULE : EXPLAIN_SCHEDULE_EXHAUSTED, NULL);
    if (f->nscheds == 0) {
        buf_puts(&b, "The job has no schedule: it runs only when triggered, and no run of it is "
                     "waiting.");
    } else {
        r->at_ms = f->last_fire_ms;
        buf_puts(&b, "Its schedules are exhausted: none fires again");
        if (f->last_fire_ms >= 0) {
            buf_puts(&b, " (the last fire time was ");
            put_time(&b, f->last_fire_ms);
            buf_puts(&b, ")");
        }
        buf_puts(&b, ".");
    }
    say(r, &b);
}

/* ---- the answers ------------------------------------------------------- */

void explain_job(const explain_facts_t *f, int64_t now_ms, explain_t *out)
{
    size_t named = 0;
    int64_t waiting = 0; /* unfinished runs that are not running */
    const explain_run_t *first_due = NULL, *soonest = NULL;
    for (size_t i = 0; i < f->nruns; i++) {
        const explain_run_t *run = &f->runs[i];
        if (run->state == RUN_RUNNING) continue;
        waiting++;
        if (due_run(run, now_ms) && !first_due) first_due = run;
        if (run->state == RUN_SCHEDULED && run->attempt == 0 && run->not_before_ms > now_ms &&
            (!soonest || run->not_before_ms < soonest->not_before_ms))
            soonest = run;
    }

    if (f->job_state == EXPLAIN_STATE_DELETED) deleted(f, out);
    if (f->job_state == EXPLAIN_STATE_PAUSED)
        paused(f, f->nwaiting > waiting ? f->nwaiting : waiting, NULL, out);
    for (size_t i = 0; i < f->nruns && named < EXPLAIN_RUNS_NAMED; i++)
        if (f->runs[i].state == RUN_RUNNING) {
            held(f, &f->runs[i], now_ms, out);
            named++;
        }
    if (f->job_state == EXPLAIN_STATE_DELETED || f->job_state == EXPLAIN_STATE_PAUSED) return;

    bool limited = job_limits(f, f->ndue, first_due ? first_due->id : NULL, out);

    /* The next fire: of a schedule, or of a run made ahead of its time. */
    int64_t next = f->next_fire_ms;
    const char *next_run = NULL;
    if (soonest && (next < 0 || soonest->not_before_ms <= next)) {
        next = soonest->not_before_ms;
        next_run = soonest->id;
    }
    size_t retries = 0;
    for (size_t i = 0; i < f->nruns; i++)
        retries += backing_off(&f->runs[i], now_ms);

    /* When something is due, what holds it back comes first; otherwise when
     * the job runs next, then what would hold that back. */
    bool need_slot = f->ndue > 0 && !limited;
    if (f->ndue > 0 && pool(f, now_ms, need_slot, first_due ? first_due->id : NULL, out) &&
        need_slot)
        awaiting(f, first_due, f->ndue, now_ms, out);
    named = 0;
    for (size_t i = 0; i < f->nruns && named < EXPLAIN_RUNS_NAMED; i++)
        if (backing_off(&f->runs[i], now_ms)) {
            retrying(f, &f->runs[i], now_ms, out);
            named++;
        }
    upcoming(f, next, next_run, now_ms, out);
    if (f->ndue == 0 && (retries > 0 || next >= 0)) pool(f, now_ms, false, NULL, out);
}

/* A waiting run: on its upstreams, its members, or a slot of its array. */
static void waiting(const explain_run_t *run, int64_t now_ms, explain_t *out)
{
    buf_t b = BUF_INIT;
    explain_reason_t *r;
    (void)now_ms;
    /* A group run with counts is past its upstreams (they released it):
     * its members are what it waits for now. */
    if (run->group) {
        r = add(out, EXPLAIN_WAITING_MEMBERS, run->id);
        r->count = run->members - run->members_open;
        r->limit = run->members;
        if (run->members == 0)
            buf_printf(&b, "Run %s waits for room: its job's max_active_runs are going.", run->id);
        else
            buf_printf(&b, "Run %s goes on while its members run: %d of %d ended.", run->id,
                       run->members - run->members_open, run->members);
    } else if (run->deps_n > 0) {
        int ended = run->deps_ok + run->deps_fail + run->deps_skip;
        r = add(out, EXPLAIN_WAITING_UPSTREAM, run->id);
        r->count = ended;
        r->limit = run->deps_n;
        buf_printf(&b,
                   "Run %s waits for its upstreams (trigger rule %s): %d of %d ended (%d "
                   "succeeded, %d failed, %d skipped).",
                   run->id, run->rule ? run->rule : "all_success", ended, run->deps_n, run->deps_ok,
                   run->deps_fail, run->deps_skip);
    } else if (run->array_index >= 0) {
        r = add(out, EXPLAIN_WAITING_SLOT, run->id);
        r->limit = run->parallel;
        buf_printf(&b, "Run %s (index %d) waits for a slot: its array runs at most %d at once.",
                   run->id, run->array_index, run->parallel);
    } else {
        return;
    }
    say(r, &b);
}

void explain_run(const explain_facts_t *f, const explain_run_t *run, int64_t now_ms, explain_t *out)
{
    buf_t b = BUF_INIT;
    explain_reason_t *r;
    if (run_state_terminal(run->state)) {
        r = add(out, EXPLAIN_FINISHED, run->id);
        r->state = run_state_name(run->state);
        r->at_ms = run->finished_ms;
        buf_printf(&b, "Run %s ended %s", run->id, r->state);
        if (run->finished_ms >= 0) {
            buf_puts(&b, " at ");
            put_time(&b, run->finished_ms);
        }
        if (run->reason && *run->reason) buf_printf(&b, ": %s", run->reason);
        buf_puts(&b, ".");
        say(r, &b);
        return;
    }
    if (run->state == RUN_RUNNING) {
        held(f, run, now_ms, out);
        return;
    }
    if (f->job_state == EXPLAIN_STATE_DELETED) {
        deleted(f, out);
        return;
    }
    if (f->job_state == EXPLAIN_STATE_PAUSED) {
        paused(f, f->nwaiting, run->id, out);
        return;
    }
    if (run->state == RUN_WAITING) {
        waiting(run, now_ms, out);
        return;
    }
    if (!due_run(run, now_ms)) {
        if (run->attempt > 0) {
            retrying(f, run, now_ms, out);
        } else {
            r = add(out, EXPLAIN_NOT_YET_DUE, run->id);
            r->at_ms = run->not_before_ms;
            r->since_ms = run->fire_ms;
            buf_printf(&b, "Run %s is made ahead of its time and is due at ", run->id);
            put_time(&b, run->not_before_ms);
            put_rel(&b, run->not_before_ms, now_ms);
            if (run->not_before_ms != run->fire_ms) {
                buf_puts(&b, " (fire time ");
                put_time(&b, run->fire_ms);
                buf_puts(&b, " plus jitter)");
            }
            buf_puts(&b, ".");
            say(r, &b);
        }
        pool(f, now_ms, false, run->id, out);
        return;
    }
    bool limited = job_limits(f, 1, run->id, out);
    if (pool(f, now_ms, !limited, run->id, out) && !limited) awaiting(f, run, 1, now_ms, out);
}
