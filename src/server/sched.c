/*
 * The server's background loops; see sched.h.
 *
 * Three threads per server. The scheduler takes schedules that are due
 * within the lookahead, compiles them (through a cache), asks core/plan.h
 * what each does in this pass (which fire times run, which the misfire
 * policy passes over), draws the jitter, and hands the whole pass to the
 * store in one store_fire() call, which settles races
 * with other servers by a compare-and-set on next_fire_ms and
 * UNIQUE(schedule_id, fire_time). It then sleeps until the earliest next
 * fire (minus the lookahead), at most a second, or until sched_kick(). The
 * reaper expires leases and marks silent workers lost every 500 ms.
 * Retention prunes old runs and logs once at start and then hourly.
 *
 * Wall-clock time is read once per pass and passed down; waits use the
 * monotonic clock (the condition variable is bound to CLOCK_MONOTONIC) so a
 * wall-clock step cannot make a loop sleep for an hour.
 */
#include "server/sched.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/plan.h"
#include "core/tz.h"
#include "server/metrics.h"

#define DUE_BATCH         128  /* schedules fetched per store call */
#define WALK_MAX          1000 /* fire times walked per schedule per pass */
#define MAX_PASSES        64   /* batches per tick before yielding */
#define CACHE_SLOTS       512  /* compiled-schedule cache, direct mapped */
#define REAP_EVERY_MS     500
#define PRUNE_EVERY_MS    (3600 * 1000)
#define IDLE_MIN_SLEEP_MS 250 /* floor when nothing was done yet something looks due */

#define DEF_LOOKAHEAD_MS        1000
#define DEF_MISFIRE_GRACE_MS    5000
#define DEF_LEASE_MS            SERVER_DEFAULT_LEASE_MS
#define DEF_LEASE_GRACE_MS      SERVER_DEFAULT_LEASE_GRACE_MS
#define DEF_RETENTION_MS        ((int64_t)30 * 86400 * 1000)
#define DEF_EVENTS_RETENTION_MS ((int64_t)3600 * 1000)

struct sched {
    store_t *st;
    const server_config_t *cfg;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC */
    bool stop;
    bool kicked;
    /* When the fire loop will look next (store time, ms): a new schedule
     * due earlier needs a kick, a later one does not. INT64_MIN while a
     * pass runs: the pass may have read the schedules before the new one
     * committed, so every kick then counts. */
    int64_t next_look_ms;
    int64_t lookahead_ms;
    pthread_t thr[3];
    int nthr;
};

schedule_spec_t sched_spec(const store_schedule_t *s)
{
    return (schedule_spec_t){s->kind,   s->expr,      s->timezone, s->start_ms,
                             s->end_ms, s->jitter_ms, s->anchor_ms};
}

void sched_array_free(store_schedule_t *s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        store_schedule_clear(&s[i]);
    free(s);
}

/* ---- compiled-schedule cache ------------------------------------------ */

/* Compiling a schedule parses its expression, opens its zone and checks
 * that a cron can fire at all, which is too much to repeat for every
 * schedule on every tick. Entries are keyed by everything that affects
 * compilation, so an edited schedule simply misses, and by the zone-data
 * generation (core/tz.h), so a tzdata update recompiles them all within a
 * minute. The cache is only touched while tick_lock is held (one tick per
 * process at a time; two concurrent ticks in one process would only race
 * each other in the store anyway). */
struct cache_entry {
    char id[SKED_ID_LEN];
    schedule_kind_t kind;
    char *expr;
    char *tz;
    int64_t start_ms, end_ms, anchor_ms;
    uint64_t tz_gen;      /* tz_generation() when compiled */
    schedule_t *compiled; /* NULL = empty slot */
};

static struct cache_entry cache[CACHE_SLOTS];
static pthread_mutex_t tick_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *nz(const char *s)
{
    return s ? s : "";
}

static size_t slot_of(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % CACHE_SLOTS;
}

static void entry_clear(struct cache_entry *e)
{
    schedule_free(e->compiled);
    free(e->expr);
    free(e->tz);
    memset(e, 0, sizeof *e);
}

static bool entry_matches(const struct cache_entry *e, const store_schedule_t *s, uint64_t gen)
{
    return e->compiled && e->tz_gen == gen && !strcmp(e->id, s->id) && e->kind == s->kind &&
           !strcmp(e->expr, nz(s->expr)) && !strcmp(e->tz, nz(s->timezone)) &&
           e->start_ms == s->start_ms && e->end_ms == s->end_ms && e->anchor_ms == s->anchor_ms;
}

/* Borrowed; valid until the next cache_get or cache_clear. NULL with err
 * filled and *rc set if the stored schedule does not compile (SKED_EIO:
 * its zone file could not be read just now). Caller holds tick_lock. */
static const schedule_t *cache_get(const store_schedule_t *s, char *err, size_t errlen, int *rc)
{
    struct cache_entry *e = &cache[slot_of(s->id)];
    uint64_t gen = tz_generation(); /* before compiling: a change during it misses next time */
    if (entry_matches(e, s, gen)) return e->compiled;

    schedule_spec_t spec = sched_spec(s);
    schedule_t *c = NULL;
    if ((*rc = schedule_compile(&spec, &c, err, errlen)) != 0) return NULL;
    entry_clear(e);
    snprintf(e->id, sizeof e->id, "%s", s->id);
    e->kind = s->kind;
    e->expr = xstrdup(nz(s->expr));
    e->tz = xstrdup(nz(s->timezone));
    e->start_ms = s->start_ms;
    e->end_ms = s->end_ms;
    e->anchor_ms = s->anchor_ms;
    e->tz_gen = gen;
    e->compiled = c;
    return c;
}

static void cache_clear(void)
{
    pthread_mutex_lock(&tick_lock);
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        entry_clear(&cache[i]);
    pthread_mutex_unlock(&tick_lock);
}

/* ---- one pass ----------------------------------------------------------- */

static int64_t or_default(int64_t v, int64_t def)
{
    return v > 0 ? v : def;
}

static int64_t jitter_draw(int64_t jitter_ms)
{
    if (jitter_ms <= 0) return 0;
    uint32_t bound = jitter_ms > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)jitter_ms;
    return (int64_t)randombytes_uniform(bound);
}

/* What one schedule does in this pass: core's plan, and the runs as the
 * store takes them (with their jitter drawn). */
struct fire_plan {
    plan_t core;
    store_fire_run_t *runs; /* owned */
};

/* Plans one due schedule (core/plan.h) and fills *item (which borrows d
 * and p) from the plan. Sets *bounded when the walk stopped with more fire
 * times still due, so the caller knows this schedule needs another pass. */
static void plan_one(const store_due_t *d, const plan_pass_t *pass, store_fire_t *item,
                     struct fire_plan *p, bool *bounded)
{
    const store_schedule_t *s = &d->sched;
    char err[256] = "";
    int crc = 0;
    const schedule_t *c = s->next_fire_ms < 0 ? NULL : cache_get(s, err, sizeof err, &crc);
    const plan_due_t due = {
        .compiled = c,
        .compile_rc = crc,
        .compile_err = err,
        .next_fire_ms = s->next_fire_ms,
        .last_fire_ms = s->last_fire_ms,
        .end_ms = s->end_ms,
        .misfire = d->misfire,
        .catch_up_window_ms = d->catch_up_window_ms,
    };
    plan_make(&due, pass, &p->core);
    switch (p->core.note) {
    case PLAN_RETRY:
        log_warn("sched", "schedule %s of job %s: %s; trying again", s->id, s->job_id, err);
        break;
    case PLAN_RETIRED:
        log_error("sched", "schedule %s of job %s no longer compiles (%s); retiring it", s->id,
                  s->job_id, err);
        break;
    case PLAN_BACKWARDS:
        log_error("sched", "schedule %s went backwards (%lld after %lld); retiring it", s->id,
                  (long long)p->core.back_to_ms, (long long)p->core.back_from_ms);
        break;
    case PLAN_WALKED:
        break;
    }

    p->runs = xcalloc(p->core.nruns ? p->core.nruns : 1, sizeof *p->runs);
    for (size_t i = 0; i < p->core.nruns; i++) {
        const plan_run_t *r = &p->core.runs[i];
        int64_t jitter = r->state == RUN_SCHEDULED ? jitter_draw(s->jitter_ms) : 0;
        p->runs[i] = (store_fire_run_t){r->fire_ms, r->fire_ms + jitter, r->state, r->reason};
    }
    const plan_miss_t *m = &p->core.miss;
    *item = (store_fire_t){
        .schedule_id = s->id,
        .expect_next_ms = s->next_fire_ms,
        .new_next_ms = p->core.new_next_ms,
        .runs = p->runs,
        .nruns = p->core.nruns,
        .miss = {m->first_ms, m->last_ms, m->count, m->prev_ms, m->reason},
    };
    *bounded = p->core.bounded;
}

/* Counts for GET /metrics the fire times an applied advance passed over:
 * its missed stretch and its skipped runs, by why (the schedule retired,
 * or the job's misfire policy). */
static void count_skips(const store_due_t *d, const struct fire_plan *p, const store_fire_t *item)
{
    uint64_t n = item->miss.count > 0 ? (uint64_t)item->miss.count : 0;
    for (size_t i = 0; i < item->nruns; i++)
        if (item->runs[i].state == RUN_SKIPPED) n++;
    if (!n) return;
    metrics_skip_t why = p->core.note == PLAN_RETIRED     ? METRICS_SKIP_SCHEDULE_INVALID
                         : d->misfire == MISFIRE_SKIP     ? METRICS_SKIP_MISFIRE_SKIP
                         : d->misfire == MISFIRE_CATCH_UP ? METRICS_SKIP_MISFIRE_CATCH_UP
                                                          : METRICS_SKIP_MISFIRE_RUN_ONCE;
    metrics_fire_skipped(why, n);
}

/* A tick; *more is set when some schedule still has due fire times that
 * this pass left for the next one. Returns runs created or an error. */
static int tick(store_t *st, const server_config_t *cfg, int64_t now_ms, bool *more)
{
    const int64_t lookahead = or_default(cfg ? cfg->lookahead_ms : 0, DEF_LOOKAHEAD_MS);
    const int64_t grace = or_default(cfg ? cfg->misfire_grace_ms : 0, DEF_MISFIRE_GRACE_MS);
    const plan_pass_t pass = {now_ms, now_ms + lookahead, grace, WALK_MAX};
    int created = 0;
    int rc = 0;

    *more = false;
    pthread_mutex_lock(&tick_lock);
    for (int batch = 0; batch < MAX_PASSES; batch++) {
        store_due_t *due = NULL;
        size_t n = 0;
        store_fire_t *items = NULL;
        struct fire_plan *plans = NULL;
        bool again = false;

        rc = store_due_schedules(st, pass.until_ms, DUE_BATCH, &due, &n);
        if (rc != 0 || n == 0) goto pass_out;
        items = xcalloc(n, sizeof *items);
        plans = xcalloc(n, sizeof *plans);
        /* A full batch may have more due schedules behind it; fetch again
         * unless a schedule stayed due (it sorts first and would come back). */
        again = n == DUE_BATCH;
        for (size_t i = 0; i < n; i++) {
            bool bounded = false;
            plan_one(&due[i], &pass, &items[i], &plans[i], &bounded);
            if (bounded) {
                *more = true;
                again = false;
            }
        }
        rc = store_fire(st, items, n, now_ms);
        if (rc == 0)
            for (size_t i = 0; i < n; i++)
                if (items[i].applied) {
                    created += (int)(items[i].nruns + (size_t)items[i].miss.count);
                    count_skips(&due[i], &plans[i], &items[i]);
                }
    pass_out:
        for (size_t i = 0; plans && i < n; i++) {
            free(plans[i].runs);
            plan_clear(&plans[i].core);
        }
        free(plans);
        free(items);
        for (size_t i = 0; i < n; i++)
            store_schedule_clear(&due[i].sched);
        free(due);
        if (rc != 0 || !again) break;
    }
    pthread_mutex_unlock(&tick_lock);
    return rc != 0 ? rc : created;
}

int sched_tick(store_t *st, const server_config_t *cfg, int64_t now_ms)
{
    bool more = false;
    return tick(st, cfg, now_ms, &more);
}

/* ---- loops -------------------------------------------------------------- */

/* Sleeps up to delay_ms or until stop (or a kick, when take_kick: the fire
 * loop, which is looking again at store time now_ms + delay_ms). */
static void nap(sched_t *s, int64_t delay_ms, bool take_kick, int64_t now_ms)
{
    if (delay_ms < 0) delay_ms = 0;
    int64_t deadline_ns = clock_mono_ns() + delay_ms * 1000000;
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    pthread_mutex_lock(&s->mu);
    if (take_kick) s->next_look_ms = now_ms + delay_ms;
    while (!s->stop && !(take_kick && s->kicked))
        if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT) break;
    if (take_kick) {
        s->kicked = false;
        s->next_look_ms = INT64_MIN; /* a pass starts */
    }
    pthread_mutex_unlock(&s->mu);
}

static bool stopping(sched_t *s)
{
    pthread_mutex_lock(&s->mu);
    bool stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static void *fire_loop(void *arg)
{
    sched_t *s = arg;
    const int64_t lookahead = or_default(s->cfg->lookahead_ms, DEF_LOOKAHEAD_MS);
    int last_rc = 0;
    while (!stopping(s)) {
        bool more = false;
        int rc = tick(s->st, s->cfg, store_now_ms(s->st), &more);
        if (rc < 0 && rc != last_rc)
            log_warn("sched", "scheduler pass failed: %s; retrying", sked_strerror(rc));
        else if (rc >= 0 && last_rc < 0)
            log_info("sched", "scheduler pass succeeded again");
        last_rc = rc < 0 ? rc : 0;
        if (rc > 0) log_debug("sched", "fired %d runs", rc);

        int64_t delay_ms = 1000;
        if (rc < 0) {
            delay_ms = 1000;
        } else if (more) {
            delay_ms = 0; /* a backlog is being worked through */
        } else {
            int64_t next = -1;
            /* On an error, look again in a second (the pass logs its own). */
            if (store_next_fire_ms(s->st, &next) == 0 && next >= 0) {
                int64_t d = next - lookahead - store_now_ms(s->st);
                if (d < delay_ms) delay_ms = d;
            }
            /* Something looks due yet this pass did nothing (another server
             * holds it, or a paused job's schedule is counted): don't spin. */
            if (delay_ms <= 0 && rc == 0) delay_ms = IDLE_MIN_SLEEP_MS;
        }
        nap(s, delay_ms, true, store_now_ms(s->st));
    }
    return NULL;
}

static void *reap_loop(void *arg)
{
    sched_t *s = arg;
    const int64_t lease = or_default(s->cfg->lease_ms, DEF_LEASE_MS);
    const int64_t grace = or_default(s->cfg->lease_grace_ms, DEF_LEASE_GRACE_MS);
    const int64_t worker_timeout = or_default(s->cfg->worker_timeout_ms, 3 * lease);
    int last_rc = 0;
    while (!stopping(s)) {
        int rc = store_reap(s->st, grace, worker_timeout, store_now_ms(s->st));
        if (rc < 0 && rc != last_rc)
            log_warn("reaper", "reaping failed: %s; retrying", sked_strerror(rc));
        else if (rc > 0)
            log_info("reaper", "%d runs with expired leases re-queued or failed", rc);
        last_rc = rc < 0 ? rc : 0;
        nap(s, REAP_EVERY_MS, false, 0);
    }
    return NULL;
}

static void *prune_loop(void *arg)
{
    sched_t *s = arg;
    const int64_t retention = or_default(s->cfg->retention_ms, DEF_RETENTION_MS);
    const int64_t events_retention =
        or_default(s->cfg->events_retention_ms, DEF_EVENTS_RETENTION_MS);
    int64_t next_events = 0;
    while (!stopping(s)) {
        int64_t now = store_now_ms(s->st);
        int rc = store_prune(s->st, now - retention);
        if (rc < 0)
            log_warn("retention", "pruning failed: %s", sked_strerror(rc));
        else if (rc > 0)
            log_info("retention", "pruned %d finished runs", rc);
        /* Events are kept for a short while (hours, not days): checked
         * at a tenth of their retention, so none outstays it by much. */
        if (now >= next_events) {
            rc = store_events_prune(s->st, now - events_retention);
            if (rc < 0) log_warn("retention", "pruning events failed: %s", sked_strerror(rc));
            next_events = now + events_retention / 10;
        }
        nap(s, events_retention / 10 < PRUNE_EVERY_MS ? events_retention / 10 : PRUNE_EVERY_MS,
            false, 0);
    }
    return NULL;
}

int sched_start(store_t *st, const server_config_t *cfg, sched_t **out)
{
    static const server_config_t defaults = {0};
    sched_t *s = xcalloc(1, sizeof *s);
    pthread_condattr_t ca;
    int rc = 0;

    *out = NULL;
    s->st = st;
    s->cfg = cfg ? cfg : &defaults;
    s->next_look_ms = INT64_MIN;
    s->lookahead_ms = or_default(s->cfg->lookahead_ms, DEF_LOOKAHEAD_MS);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);

    void *(*fns[3])(void *) = {fire_loop, reap_loop, prune_loop};
    /* Named, so top -H and /proc/PID/task/TID/comm tell them apart (the
     * schedules bench reads the fire loop's CPU this way). */
    static const char *const names[3] = {"sked-fire", "sked-reap", "sked-prune"};
    for (int i = 0; i < 3; i++) {
        int e = pthread_create(&s->thr[i], NULL, fns[i], s);
        if (e != 0) {
            log_error("sched", "cannot start background thread: %s", strerror(e));
            rc = -e;
            goto out;
        }
        pthread_setname_np(s->thr[i], names[i]);
        s->nthr++;
    }
    *out = s;
out:
    if (rc != 0) sched_stop(s);
    return rc;
}

void sched_kick(sched_t *s)
{
    sched_kick_at(s, INT64_MIN);
}

void sched_kick_at(sched_t *s, int64_t fire_ms)
{
    if (!s || fire_ms == INT64_MAX) return;
    pthread_mutex_lock(&s->mu);
    if (s->next_look_ms == INT64_MIN || fire_ms == INT64_MIN ||
        fire_ms - s->lookahead_ms < s->next_look_ms) {
        s->kicked = true;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->mu);
}

void sched_stop(sched_t *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nthr; i++)
        pthread_join(s->thr[i], NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    free(s);
    /* Compiled schedules are cheap to rebuild; dropping them here keeps a
     * stopped server from holding zones. */
    cache_clear();
}
