/*
 * Store verbs of leases, the worker protocol's core, written once over the
 * SQL driver (db.h): claim (gathering candidates in a window that widens
 * only when runs were passed over, the per-job overlap and concurrency
 * decisions, the lease and its attempt row), heartbeat (renewal of the
 * held runs, confirmation of started attempts), complete (the end of an
 * attempt: undone when it never started, else finished and followed by the
 * retry decision of core/attempt.h) and reap (expired leases and
 * lost workers).
 *
 * Servers race here. On PostgreSQL the rows a unit decides on are locked as
 * it reads them: claimable and expired runs FOR NO KEY UPDATE SKIP LOCKED
 * (concurrent claimers and reapers take disjoint sets), a run being
 * finished FOR NO KEY UPDATE, and a job's running count under an advisory
 * lock on the job. SQLite's one writer serialises all of it, so there the
 * locks are plain reads or no-ops. A unit may run again after a deadlock
 * (PostgreSQL), so each starts from scratch and frees what it allocated
 * when it fails.
 */
#include "core/attempt.h"
#include "store/db.h"
#include "store/rows.h"
#include "store/store_int.h"
#include "store/verbs.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/xalloc.h"

#define REAP_BATCH       256
#define CLAIM_WINDOW_MAX 4096

/* ---- the worker ---------------------------------------------------------------- */

/* Every claim, heartbeat and completion touches its worker: reads it, and
 * records that it spoke (heartbeat_ms). A lost worker that speaks again is
 * active again, and a worker registered before workers had owners (owner
 * '') is adopted by the first worker token that speaks for it.
 *
 * One statement per dialect, each the cheaper there. PostgreSQL does all
 * of it in one UPDATE ... RETURNING (one round trip; its row lock
 * serialises one worker's claims and heartbeats), which returns the row
 * as updated, so worker_touch finds nothing left to do. SQLite, with no
 * round trips to save, reads the row and then sets heartbeat_ms alone
 * (Q_WORKER_BEAT, which fires no trigger: the counts watch state), the
 * full update (Q_WORKER_TOUCH) only for a lost worker or an owner to
 * adopt: a busy worker speaks hundreds of times a second, and the one
 * UPDATE ... RETURNING was 170,000 of the 1.9 million instructions of a
 * run's lifecycle there (its ephemeral table for RETURNING, the trigger
 * that assigning state runs). */
static db_sql_t Q_WORKER_READ =
    DB_SQL("SELECT state, queues, labels, owner, ns, types, heartbeat_ms FROM workers"
           " WHERE id = ?1 AND state != 3",
           "UPDATE workers SET heartbeat_ms = $2,"
           " state = CASE WHEN state = 2 THEN 0 ELSE state END,"
           " owner = CASE WHEN owner = '' AND $3::text IS NOT NULL THEN $3 ELSE owner END"
           " WHERE id = $1 AND state <> 3"
           " RETURNING state, queues, labels, owner, ns, types, heartbeat_ms");
static db_sql_t Q_WORKER_TOUCH = DB_SAME(
    "UPDATE workers SET heartbeat_ms = ?2, state = CASE WHEN state = 2 THEN 0 ELSE state END,"
    " owner = CASE WHEN owner = '' AND ?3 IS NOT NULL THEN ?3 ELSE owner END WHERE id = ?1");
static db_sql_t Q_WORKER_BEAT = DB_SAME("UPDATE workers SET heartbeat_ms = ?2 WHERE id = ?1");

/* What a claim or a heartbeat needs of the worker it touched. */
struct touched {
    worker_state_t state;
    char *queues, *labels, *ns, *types; /* new; NULL unless asked for */
};

static void touched_clear(struct touched *w)
{
    FREE_NULL(w->queues);
    FREE_NULL(w->labels);
    FREE_NULL(w->ns);
    FREE_NULL(w->types);
}

/* Steps a statement whose one row was read to its end, so that it holds
 * nothing (SQLite: its cursors) until the unit ends. */
static int finish(db_q_t *q)
{
    int rc = db_step(q);
    return rc < 0 ? rc : 0;
}

/* Refreshes the worker's heartbeat and reads it into *w (lists only when
 * lists is set). SKED_ENOTFOUND for an unknown or gone worker, SKED_EFORBID
 * for one of another owner (the failing unit rolls the touch back). */
static int worker_touch(db_t *db, const char *worker_id, const char *owner, int64_t now_ms,
                        bool lists, struct touched *w)
{
    db_q_t *q = db_q(db, &Q_WORKER_READ);
    if (!q) return SKED_ESTORE;
    db_bt(q, worker_id);
    db_bi(q, now_ms); /* PostgreSQL's statement only */
    db_bt(q, owner);
    int rc = db_one(q);
    if (rc < 0) return rc;
    w->state = (worker_state_t)db_ci(q, 0);
    const char *row_owner = db_cs(q, 3);
    bool adopt = !*row_owner && owner;
    bool owner_ok = store__owner_ok(owner, row_owner);
    if (lists && owner_ok) {
        w->queues = db_ct0(q, 1);
        w->labels = db_ct0(q, 2);
        w->ns = db_ct0(q, 4);
        w->types = db_ct0(q, 5);
    }
    int64_t hb = db_ci(q, 6);
    if ((rc = finish(q)) < 0) goto out;
    bool full = w->state == WORKER_LOST || adopt;
    if (!full && hb == now_ms) goto out;
    if (!(q = db_q(db, full ? &Q_WORKER_TOUCH : &Q_WORKER_BEAT))) {
        rc = SKED_ESTORE;
        goto out;
    }
    db_bt(q, worker_id);
    db_bi(q, now_ms);
    if (full) db_bt(q, owner);
    rc = db_exec(q, NULL);
    if (w->state == WORKER_LOST) w->state = WORKER_ACTIVE;
out:
    if (rc < 0) touched_clear(w);
    return rc < 0 ? rc : owner_ok ? 0 : SKED_EFORBID;
}

/* ---- claim ---------------------------------------------------------------------- */

/* The next lower priority level present among claimable runs of a queue:
 * one index probe (SQLite: no row; PostgreSQL: NULL when there is none). */
static db_sql_t Q_CLAIM_LEVEL =
    DB_SQL("SELECT priority FROM runs INDEXED BY runs_claim"
           " WHERE state IN (0, 2) AND held = 0 AND queue = ?1 AND priority < ?2"
           " ORDER BY priority DESC LIMIT 1",
           "SELECT max(priority) FROM runs WHERE state IN (0, 2) AND NOT held"
           " AND queue = $1 AND priority < $2::bigint");
/* The oldest due runs of one level that this worker may take: of a job
 * neither paused nor deleted, in the worker's namespaces (?5; '' = all),
 * whose constraints its labels (?6) satisfy, of a type it runs (shell and
 * http: every worker; a plugin type: listed in its types, ?7, ",a,b,").
 * Filtered here, so a backlog the worker cannot take (another queue's
 * labels, a plugin type it lacks) never fills the window and hides the
 * runs behind it. SKIP LOCKED: runs another server is claiming right now
 * are left to it, and only the rows returned are locked. */
#define CLAIM_TYPE_OK(types, has)                                                                  \
    " AND (j.type IN ('shell', 'http') OR " has "(" types ", ',' || j.type || ',') > 0)"
static db_sql_t Q_CLAIM_ROWS = DB_SQL(
    "SELECT id, job_id, not_before_ms, fire_ms, parent_id IS NOT NULL FROM runs INDEXED BY "
    "runs_claim"
    " WHERE state IN (0, 2) AND held = 0 AND queue = ?1 AND priority = ?2"
    " AND not_before_ms <= ?3 AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = runs.job_id"
    " AND j.state NOT IN (1, 3) AND (?5 = '' OR instr(',' || ?5 || ',', ',' || j.ns || ',') > 0)"
    " AND sked_labels_ok(?6, j.constraints)" CLAIM_TYPE_OK(
        "?7", "instr") ") ORDER BY not_before_ms LIMIT ?4",
    "SELECT r.id, r.job_id, r.not_before_ms, r.fire_ms, r.parent_id IS NOT NULL FROM runs r"
    " JOIN jobs j ON j.id = r.job_id"
    " WHERE r.state IN (0, 2) AND NOT r.held AND r.queue = $1 AND r.priority = $2"
    " AND r.not_before_ms <= $3 AND j.state NOT IN (1, 3)"
    " AND ($5 = '' OR j.ns = ANY (string_to_array($5, ',')))"
    " AND string_to_array(j.constraints, ',') <@ string_to_array($6, ',')" CLAIM_TYPE_OK(
        "$7", "strpos") " ORDER BY r.not_before_ms LIMIT $4 FOR NO KEY UPDATE OF r SKIP LOCKED");
static db_sql_t Q_CLAIM_JOB =
    DB_SAME("SELECT state, constraints, max_concurrency, overlap, spec_json, timeout_ms, name, ns,"
            " type FROM jobs WHERE id = ?1");
/* Per-job decisions (concurrency, overlap) of concurrent claims on several
 * servers are serialised by a transaction-scoped advisory lock on the job,
 * which blocks nothing else that touches it. */
static db_sql_t Q_JOB_LOCK =
    DB_ONLY_PG("SELECT pg_advisory_xact_lock(" DB_PG_LOCK_CLASS ", hashtext($1))");
static db_sql_t Q_JOB_RUNNING =
    DB_SQL("SELECT count(*) FROM runs INDEXED BY runs_running_job WHERE job_id = ?1 AND state = 3",
           "SELECT count(*) FROM runs WHERE job_id = $1 AND state = 3");
static db_sql_t Q_RUN_SKIP_OVERLAP =
    DB_SAME("UPDATE runs SET state = 7, finished_ms = ?2, reason = 'overlap'"
            " WHERE id = ?1 AND state IN (0, 2)");
static db_sql_t Q_RUNS_REPLACE =
    DB_SAME("UPDATE runs SET cancel_requested = TRUE,"
            " reason = coalesce(reason, 'replaced by a newer run')"
            " WHERE job_id = ?1 AND state = 3 AND NOT cancel_requested");
/* The lease, and the run as it now is (db_step_written). PostgreSQL
 * inserts the attempt row in the same round trip; SQLite, which has no
 * writing CTEs, does it next (Q_ATTEMPT_INSERT). */
static db_sql_t Q_RUN_LEASE = DB_SQL(
    "UPDATE runs SET state = 3, worker_id = ?2, attempt = attempt + 1, fence = ?3,"
    " lease_expires_ms = ?4, started_ms = CASE WHEN started_ms < 0 THEN ?5 ELSE started_ms END,"
    " unconfirmed = 1 WHERE id = ?1 AND state IN (0, 2)",
    "WITH r AS (UPDATE runs SET state = 3, worker_id = $2, attempt = attempt + 1, fence = $3,"
    " lease_expires_ms = $4, unconfirmed = true,"
    " started_ms = CASE WHEN started_ms < 0 THEN $5 ELSE started_ms END"
    " WHERE id = $1 AND state IN (0, 2) RETURNING " RUN_COLS "),"
    " a AS (INSERT INTO attempts (run_id, n, worker_id, fence, started_ms)"
    " SELECT id, attempt, $2::text, fence, $5::bigint FROM r)"
    " SELECT " RUN_COLS " FROM r");
static db_sql_t Q_RUN_LEASED = DB_ONLY_LITE("SELECT " RUN_COLS " FROM runs WHERE id = ?1");
static db_sql_t Q_ATTEMPT_INSERT = DB_ONLY_LITE(
    "INSERT INTO attempts (run_id, n, worker_id, fence, started_ms) VALUES (?1, ?2, ?3, ?4, ?5)");

struct cand {
    char id[SKED_ID_LEN];
    char job_id[SKED_ID_LEN];
    int64_t eff; /* priority with aging */
    int64_t fire_ms;
    int64_t not_before_ms;
    bool member; /* of a group run (an array's index): the job's overlap policy is the group's */
};

static int cand_cmp(const void *pa, const void *pb)
{
    const struct cand *a = pa, *b = pb;
    if (a->eff != b->eff) return a->eff > b->eff ? -1 : 1;
    if (a->fire_ms != b->fire_ms) return a->fire_ms < b->fire_ms ? -1 : 1;
    return strcmp(a->id, b->id);
}

struct claim_args {
    const char *worker_id, *owner;
    int max;
    int64_t lease_ms, now_ms; /* lease_ms: the unconfirmed lease, the confirm window */
    int64_t ahead_ms;         /* runs due up to this long after now_ms are taken too */
    char *ns;                 /* the worker's namespace; "" = all */
    store_claimed_t *out;
    size_t n;
    int overlap_skips; /* runs skipped by their job's overlap policy (store_stats) */
};

/* Drops what a claim unit has gathered: after a failed try, before the next. */
static void claim_reset(struct claim_args *a)
{
    for (size_t i = 0; i < a->n; i++)
        store_claimed_clear(&a->out[i]);
    FREE_NULL(a->out);
    a->n = 0;
    a->overlap_skips = 0;
    FREE_NULL(a->ns);
}

/* The next lower level below *level in queue; false when there is none. */
static int next_level(db_t *db, const char *queue, int64_t *level, bool *found)
{
    db_q_t *q = db_q(db, &Q_CLAIM_LEVEL);
    if (!q) return SKED_ESTORE;
    db_bt(q, queue);
    db_bi(q, *level);
    int rc = db_step(q);
    if (rc < 0) return rc;
    *found = rc == 1 && !db_cnull(q, 0);
    if (*found) *level = db_ci(q, 0);
    return 0;
}

/* Collects (and on PostgreSQL locks) the best `window` due runs of the
 * worker's queues by effective priority. Aging adds at most
 * STORE__AGING_CAP, so a level more than that below the window's worst
 * candidate cannot enter it: the walk visits O(levels near the top) index
 * ranges of O(window) rows each, whatever the backlog. Within a level the
 * oldest due run has aged most, so index order is effective-priority
 * order. *more OUT: candidates beyond the window may exist. */
static int gather(db_t *db, const struct touched *w, const char *ns, int window, int64_t now_ms,
                  int64_t due_ms, struct cand **out, size_t *nout, bool *more)
{
    struct cand *v = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    *more = false;
    char *qs = xstrdup(w->queues), *save = NULL;
    for (char *queue = strtok_r(qs, ",", &save); queue; queue = strtok_r(NULL, ",", &save)) {
        int64_t level = (int64_t)INT_MAX + 1;
        for (;;) {
            if (n >= (size_t)window) {
                /* The window's worst candidate so far decides whether lower
                 * levels can still matter. */
                qsort(v, n, sizeof *v, cand_cmp);
                if (level + STORE__AGING_CAP < v[window - 1].eff) {
                    *more = true;
                    break;
                }
            }
            bool found = false;
            if ((rc = next_level(db, queue, &level, &found)) < 0) goto out;
            if (!found) break;

            db_q_t *q = db_q(db, &Q_CLAIM_ROWS);
            if (!q) {
                rc = SKED_ESTORE;
                goto out;
            }
            db_bt(q, queue);
            db_bi(q, level);
            db_bi(q, due_ms);
            db_bi(q, window);
            db_bt(q, ns);
            db_bt(q, w->labels);
            db_bt(q, w->types);
            int got = 0;
            while ((rc = db_step(q)) == 1) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    v = xrealloc(v, cap * sizeof *v);
                }
                struct cand *k = &v[n++];
                db_cid(q, 0, k->id);
                db_cid(q, 1, k->job_id);
                k->eff = store__effective_priority((int)level, db_ci(q, 2), now_ms);
                k->fire_ms = db_ci(q, 3);
                k->not_before_ms = db_ci(q, 2);
                k->member = db_cb(q, 4);
                got++;
            }
            if (rc < 0) goto out;
            if (got == window) *more = true;
        }
    }
    if (n > 1) qsort(v, n, sizeof *v, cand_cmp);
out:
    free(qs);
    if (rc < 0) {
        FREE_NULL(v);
        n = 0;
    }
    *out = v;
    *nout = n;
    return rc;
}

/* The job's running runs, counted under its lock (PostgreSQL), so two
 * servers claiming runs of one job at once cannot both see room for one. */
static int job_running(db_t *db, const char *job_id, int64_t *running)
{
    db_q_t *q = db_q(db, &Q_JOB_LOCK);
    if (!q) return SKED_ESTORE;
    db_bt(q, job_id);
    int rc = db_exec(q, NULL);
    if (rc < 0) return rc;
    if (!(q = db_q(db, &Q_JOB_RUNNING))) return SKED_ESTORE;
    db_bt(q, job_id);
    if ((rc = db_one(q)) < 0) return rc;
    *running = db_ci(q, 0);
    return 0;
}

/* Applies the job's overlap policy and concurrency limit to candidate k.
 * Returns 1 if k may be leased, 0 if it was passed over (skipped, or left
 * waiting), or an error. */
static int job_room(db_t *db, struct claim_args *a, const struct cand *k, overlap_policy_t overlap,
                    int max_conc)
{
    int64_t running = 0, changed = 0;
    int rc;
    if (k->member) overlap = OVERLAP_ALLOW;
    if (overlap == OVERLAP_ALLOW && max_conc <= 0) return 1;
    if ((rc = job_running(db, k->job_id, &running)) < 0) return rc;
    /* A run taken ahead of its time is decided on as it will be at that
     * time: while another of its job runs, it waits until it is due, when
     * the policy judges the job as it is then. */
    if (running > 0 && k->not_before_ms > a->now_ms) return 0;
    db_q_t *q = NULL;
    if (running > 0 && overlap == OVERLAP_FORBID) {
        if (!(q = db_q(db, &Q_RUN_SKIP_OVERLAP))) return SKED_ESTORE;
        db_bt(q, k->id);
        db_bi(q, a->now_ms);
        if ((rc = db_exec(q, &changed)) < 0) return rc;
        a->overlap_skips += (int)changed;
        db_notify(db);
        return changed ? store__graph_ended_id(db, k->id, a->now_ms) : 0;
    }
    if (running > 0 && overlap == OVERLAP_REPLACE) {
        /* The new run waits for the old one to die; its worker learns of
         * the cancel at its next heartbeat. */
        if (!(q = db_q(db, &Q_RUNS_REPLACE))) return SKED_ESTORE;
        db_bt(q, k->job_id);
        if ((rc = db_exec(q, &changed)) < 0) return rc;
        if (changed) db_notify(db);
        return 0;
    }
    return max_conc > 0 && running >= max_conc ? 0 : 1;
}

/* Leases run k to the worker, with its attempt row; *run OUT (new) is the
 * run as leased. Returns 1, 0 if the run is no longer claimable (claimed or
 * canceled since the scan), or an error. */
static int lease(db_t *db, struct claim_args *a, const struct cand *k, store_run_t *run)
{
    /* Random, not a counter: no worker can guess another lease's fence,
     * and one cut off long ago never matches a later lease. */
    int64_t fence = store__fence_new();
    /* A run taken ahead starts at its time, not now. */
    int64_t start_ms = k->not_before_ms > a->now_ms ? k->not_before_ms : a->now_ms;
    db_q_t *q = db_q(db, &Q_RUN_LEASE);
    if (!q) return SKED_ESTORE;
    db_bt(q, k->id);
    db_bt(q, a->worker_id);
    db_bi(q, fence);
    db_bi(q, a->now_ms + a->lease_ms);
    db_bi(q, start_ms);
    int rc = db_step_written(db, &q, &Q_RUN_LEASED, k->id);
    if (rc <= 0) return rc; /* 0: no longer claimable */
    store__row_run(q, run);
    if ((rc = finish(q)) < 0) goto out;

    if (!(q = db_q(db, &Q_ATTEMPT_INSERT))) {
        rc = SKED_ESTORE;
        goto out;
    }
    db_bt(q, k->id);
    db_bi(q, run->attempt);
    db_bt(q, a->worker_id);
    db_bi(q, fence);
    db_bi(q, start_ms);
    rc = db_exec(q, NULL);
out:
    if (rc < 0) store_run_clear(run);
    return rc < 0 ? rc : 1;
}

/* Tries to claim one candidate. Returns 1 if claimed (into *cl), 0 if it
 * was passed over, or an error. */
static int claim_one(db_t *db, struct claim_args *a, const struct touched *w, const struct cand *k,
                     store_claimed_t *cl)
{
    char *spec = NULL;
    db_q_t *q = db_q(db, &Q_CLAIM_JOB);
    if (!q) return SKED_ESTORE;
    db_bt(q, k->job_id);
    int rc = db_one(q);
    if (rc < 0) return rc == SKED_ENOTFOUND ? 0 : rc;
    job_state_t js = (job_state_t)db_ci(q, 0);
    int max_conc = (int)db_ci(q, 2);
    overlap_policy_t overlap = (overlap_policy_t)db_ci(q, 3);
    /* The scan's filters again, on the job as it is now (PostgreSQL reads
     * each statement's own snapshot). A done job's runs still run; a
     * paused or deleted job's do not. */
    if (js == JOB_PAUSED || js == JOB_DELETED || !store__labels_satisfy(w->labels, db_cs(q, 1)) ||
        (*a->ns && !store__listed(a->ns, db_cs(q, 7))) || !store__type_runs(w->types, db_cs(q, 8)))
        return 0;
    /* Keep what a claim hands out before the job statement is reused. */
    spec = db_ct0(q, 4);
    int64_t timeout_ms = db_ci(q, 5);
    char job_name[256];
    snprintf(job_name, sizeof job_name, "%s", db_cs(q, 6));

    store_run_t run = {0};
    store_checkpoint_t cp = {0};
    if ((rc = job_room(db, a, k, overlap, max_conc)) <= 0) goto out;
    if ((rc = lease(db, a, k, &run)) <= 0) goto out;
    /* Only a run leased before can have a checkpoint: a first attempt's
     * claim runs no statement for it (the hot path). */
    if (run.attempt > 1 && (rc = store__checkpoint_read(db, k->id, &cp)) < 0) {
        store_run_clear(&run);
        goto out;
    }
    char *ups = NULL;
    if (run.deps_n > 0 && (rc = store__upstream_results(db, k->id, &ups)) < 0) {
        store_run_clear(&run);
        store_checkpoint_clear(&cp);
        goto out;
    }
    rc = 1;
    cl->run = run;
    cl->checkpoint = cp;
    cl->upstream_results = ups;
    cl->spec_json = spec;
    spec = NULL;
    cl->timeout_ms = timeout_ms;
    memcpy(cl->job_name, job_name, sizeof cl->job_name);
out:
    free(spec);
    return rc;
}

static int claim_fn(db_t *db, void *arg)
{
    struct claim_args *a = arg;
    struct cand *cands = NULL;
    struct touched w = {0};
    claim_reset(a); /* a try before this one may have been rolled back */
    int rc = worker_touch(db, a->worker_id, a->owner, a->now_ms, true, &w);
    if (rc < 0) return rc;
    a->ns = w.ns;
    w.ns = NULL;
    if (w.state == WORKER_DRAINING || a->max == 0) goto out;

    a->out = xcalloc((size_t)a->max, sizeof *a->out);
    /* Queue, labels, namespace, type and job state are filtered in the scan, so
     * only concurrency and overlap pass a candidate over: take just `max`
     * rows first (on PostgreSQL concurrent claimers then lock disjoint
     * sets) and widen only when runs were passed over and more may lie
     * beyond the window. */
    for (int window = a->max;; window *= 4) {
        size_t n = 0;
        bool more = false;
        FREE_NULL(cands);
        if ((rc = gather(db, &w, a->ns, window, a->now_ms, a->now_ms + a->ahead_ms, &cands, &n,
                         &more)) < 0)
            goto out;
        for (size_t i = 0; i < n && a->n < (size_t)a->max; i++) {
            if ((rc = claim_one(db, a, &w, &cands[i], &a->out[a->n])) < 0) goto out;
            if (rc == 1) a->n++;
        }
        rc = 0;
        if (a->n == (size_t)a->max || !more || window >= CLAIM_WINDOW_MAX) break;
    }
    if (a->n) db_notify(db);
out:
    if (rc < 0) claim_reset(a); /* leave nothing behind */
    free(cands);
    touched_clear(&w);
    return rc;
}

int v_claim(store_t *st, const char *worker_id, const char *owner, int max, int64_t confirm_ms,
            int64_t ahead_ms, int64_t now_ms, store_claimed_t **out, size_t *n)
{
    struct claim_args a = {worker_id, owner, max, confirm_ms, now_ms, ahead_ms, NULL, NULL, 0, 0};
    int rc = store__tx(st, DB_WRITE, claim_fn, &a, &a.now_ms);
    FREE_NULL(a.ns);
    if (rc >= 0 && a.overlap_skips)
        prom_add(&store_stats()->overlap_skips, (uint64_t)a.overlap_skips);
    if (rc < 0) claim_reset(&a); /* the commit failed after claim_fn succeeded */
    *out = a.out;
    *n = a.n;
    return rc;
}

/* ---- heartbeat ------------------------------------------------------------------ */

/* A held run is kept while this worker holds it with this fence and it was
 * not asked to cancel; a kept run's lease is renewed. An unconfirmed lease
 * keeps its short term until the attempt is reported started, so a run
 * handed out and never begun comes back soon, however often its worker
 * heartbeats.
 *
 * One statement per dialect, each the faster there. PostgreSQL renews every
 * held run in one statement (one round trip), the runs passed as arrays,
 * and returns the kept ones. SQLite has no round trips to save: one UPDATE
 * by primary key per held run, kept when it matched, beats a set-based
 * UPDATE ... FROM json_each(), whose ephemeral tables cost its one writer
 * more than the whole renewal. Each is a no-op on the other engine. */
static db_sql_t Q_RUNS_RENEW =
    DB_ONLY_PG("UPDATE runs r SET lease_expires_ms = CASE WHEN r.unconfirmed AND NOT h.started"
               " THEN r.lease_expires_ms ELSE $2 END, unconfirmed = r.unconfirmed AND NOT h.started"
               " FROM unnest($3::text[], $4::bigint[], $5::boolean[]) AS h (id, fence, started)"
               " WHERE r.id = h.id AND r.fence = h.fence AND r.worker_id = $1"
               " AND r.state = 3 AND NOT r.cancel_requested RETURNING r.id, r.fence");
static db_sql_t Q_RUN_RENEW = DB_ONLY_LITE(
    "UPDATE runs SET lease_expires_ms = CASE WHEN unconfirmed AND NOT ?5"
    " THEN lease_expires_ms ELSE ?2 END, unconfirmed = unconfirmed AND NOT ?5"
    " WHERE id = ?3 AND fence = ?4 AND worker_id = ?1 AND state = 3 AND NOT cancel_requested");

/* Appends s to b as an element of a PostgreSQL array literal. */
static void array_elem(buf_t *b, const char *s)
{
    buf_puts(b, b->len > 1 ? ",\"" : "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') buf_append(b, "\\", 1);
        buf_append(b, s, 1);
    }
    buf_puts(b, "\"");
}

struct heartbeat_args {
    const char *worker_id, *owner;
    store_held_t *held;
    size_t nheld;
    int64_t lease_ms, now_ms;
    bool *draining;
};

/* Q_RUNS_RENEW: every held run at once. */
static int renew_all(db_t *db, const struct heartbeat_args *a)
{
    buf_t ids = BUF_INIT, fences = BUF_INIT, started = BUF_INIT;
    db_q_t *q = db_q(db, &Q_RUNS_RENEW);
    if (!q) return SKED_ESTORE;
    if (q->noop) return 0; /* SQLite: no arrays to build for a statement that does nothing */
    buf_puts(&ids, "{");
    buf_puts(&fences, "{");
    buf_puts(&started, "{");
    for (size_t i = 0; i < a->nheld; i++) {
        array_elem(&ids, a->held[i].run_id);
        buf_printf(&fences, "%s%" PRId64, i ? "," : "", a->held[i].fence);
        buf_printf(&started, "%s%s", i ? "," : "", a->held[i].started ? "t" : "f");
    }
    buf_puts(&ids, "}");
    buf_puts(&fences, "}");
    buf_puts(&started, "}");
    db_bt(q, a->worker_id);
    db_bi(q, a->now_ms + a->lease_ms);
    db_bt(q, ids.data);
    db_bt(q, fences.data);
    db_bt(q, started.data);
    int rc;
    while ((rc = db_step(q)) == 1) {
        const char *id = db_cs(q, 0);
        int64_t fence = db_ci(q, 1);
        for (size_t i = 0; i < a->nheld; i++)
            if (a->held[i].fence == fence && strcmp(a->held[i].run_id, id) == 0)
                a->held[i].keep = true;
    }
    buf_free(&ids);
    buf_free(&fences);
    buf_free(&started);
    return rc;
}

static int heartbeat_fn(db_t *db, void *arg)
{
    struct heartbeat_args *a = arg;
    struct touched w = {0};
    db_q_t *q = NULL;
    int rc = worker_touch(db, a->worker_id, a->owner, a->now_ms, false, &w);
    if (rc < 0) return rc;
    *a->draining = w.state == WORKER_DRAINING;
    for (size_t i = 0; i < a->nheld; i++)
        a->held[i].keep = false;
    if (a->nheld == 0) return 0;
    if ((rc = renew_all(db, a)) < 0) return rc;
    for (size_t i = 0; i < a->nheld; i++) {
        store_held_t *h = &a->held[i];
        int64_t changed = 0;
        if (!(q = db_q(db, &Q_RUN_RENEW))) return SKED_ESTORE;
        db_bt(q, a->worker_id);
        db_bi(q, a->now_ms + a->lease_ms);
        db_bt(q, h->run_id);
        db_bi(q, h->fence);
        db_bb(q, h->started);
        if ((rc = db_exec(q, &changed)) < 0) return rc;
        if (changed) h->keep = true;
    }
    /* Checkpoints ride on the renewal: a run kept is this worker's, on
     * this fence, running and not asked to cancel (on PostgreSQL its row
     * stays locked by the renewal until the commit). */
    for (size_t i = 0; i < a->nheld; i++) {
        store_held_t *h = &a->held[i];
        if (h->keep && h->checkpoint &&
            (rc = store__checkpoint_put(db, h->run_id, h->fence, h->checkpoint, a->now_ms, NULL)) <
                0)
            return rc;
    }
    return 0;
}

int v_heartbeat(store_t *st, const char *worker_id, const char *owner, store_held_t *held,
                size_t nheld, int64_t lease_ms, int64_t now_ms, bool *draining)
{
    struct heartbeat_args a = {worker_id, owner, held, nheld, lease_ms, now_ms, draining};
    int rc = store__tx(st, DB_WRITE, heartbeat_fn, &a, &a.now_ms);
    if (rc < 0)
        for (size_t i = 0; i < nheld; i++)
            held[i].keep = false;
    return rc;
}

/* ---- complete and reap ------------------------------------------------------------ */

/* The facts that decide what a finished attempt leads to, the run locked
 * (PostgreSQL) until the unit ends. */
#define RUN_FOR_FINISH                                                                             \
    "SELECT r.state, r.fence, r.attempt, r.cancel_requested, r.reason, j.retry_max_attempts,"      \
    " j.retry_initial_ms, j.retry_max_ms, j.retry_multiplier, j.retry_jitter, j.state,"            \
    " r.unconfirmed, w.owner, r.job_id, j.alerts_open, r.retry_base, r.parent_id, r.n_down,"       \
    " r.graph FROM runs r JOIN jobs j ON j.id = r.job_id"                                          \
    " LEFT JOIN workers w ON w.id = r.worker_id WHERE r.id = "
static db_sql_t Q_RUN_FOR_FINISH =
    DB_SQL(RUN_FOR_FINISH "?1", RUN_FOR_FINISH "$1 FOR NO KEY UPDATE OF r");
/* Undoes an attempt that never started: the run is due again with the
 * attempt count as before (its log bytes given back); the attempt's row and
 * log go (Q_ATTEMPT_DROP, Q_LOG_DROP). */
static db_sql_t Q_RUN_UNCLAIM = DB_SAME(
    "UPDATE runs SET state = ?2, not_before_ms = ?3, lease_expires_ms = -1, finished_ms = ?4,"
    " reason = ?5, held = ?6, attempt = attempt - 1, worker_id = '', unconfirmed = FALSE,"
    " started_ms = CASE WHEN attempt = 1 THEN -1 ELSE started_ms END,"
    " log_bytes = log_bytes - (SELECT coalesce(sum(length(data)), 0) FROM log_chunks l"
    " WHERE l.run_id = runs.id AND l.attempt = runs.attempt AND l.stream != 0),"
    " log_truncated = EXISTS (SELECT 1 FROM log_chunks l WHERE l.run_id = runs.id"
    " AND l.attempt != runs.attempt AND l.stream = 0)"
    " WHERE id = ?1");
static db_sql_t Q_ATTEMPT_DROP = DB_SAME("DELETE FROM attempts WHERE run_id = ?1 AND n = ?2");
static db_sql_t Q_LOG_DROP = DB_SAME("DELETE FROM log_chunks WHERE run_id = ?1 AND attempt = ?2");
static db_sql_t Q_ATTEMPT_REPORTED =
    DB_SAME("SELECT reported FROM attempts WHERE run_id = ?1 AND n = ?2 AND fence = ?3");
static db_sql_t Q_ATTEMPT_FINISH =
    DB_SAME("UPDATE attempts SET finished_ms = ?3, outcome = ?4, exit_code = ?5, signal = ?6,"
            " reason = ?7, reported = ?8, result = ?9 WHERE run_id = ?1 AND n = ?2");
static db_sql_t Q_RUN_FINISH = DB_SAME(
    "UPDATE runs SET state = ?2, not_before_ms = CASE WHEN ?2 = 0 THEN ?3 ELSE not_before_ms END,"
    " lease_expires_ms = -1, finished_ms = ?4, exit_code = ?5, signal = ?6, reason = ?7,"
    " held = ?8 WHERE id = ?1");

struct finishing {
    run_state_t state;
    int64_t fence;
    int attempt;
    bool cancel_requested;
    char *reason; /* the cancel reason, if any */
    retry_policy_t retry;
    bool held;
    bool unconfirmed;   /* the attempt was never reported started */
    char *worker_owner; /* new; the holding worker's owner, NULL if none */
    char job_id[SKED_ID_LEN];
    int64_t alerts_open; /* the job's open alerts: 0 = nothing an end could resolve */
    int retry_base;      /* attempts before the last manual retry: not charged to the budget */
    char parent_id[SKED_ID_LEN]; /* its group run; "" = none */
    int64_t n_down;              /* runs waiting on it */
    int graph;
};

/* Locks the run and reads its facts; SKED_ENOTFOUND. f->reason and
 * f->worker_owner are new (finishing_clear). */
static int read_finishing(db_t *db, const char *run_id, struct finishing *f)
{
    db_q_t *q = db_q(db, &Q_RUN_FOR_FINISH);
    if (!q) return SKED_ESTORE;
    db_bt(q, run_id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    f->state = (run_state_t)db_ci(q, 0);
    f->fence = db_ci(q, 1);
    f->attempt = (int)db_ci(q, 2);
    f->cancel_requested = db_cb(q, 3);
    f->reason = db_ct(q, 4);
    store__row_retry(q, 5, &f->retry);
    f->held = db_ci(q, 10) == JOB_PAUSED;
    f->unconfirmed = db_cb(q, 11);
    f->worker_owner = db_ct(q, 12);
    db_cid(q, 13, f->job_id);
    f->alerts_open = db_ci(q, 14);
    f->retry_base = (int)db_ci(q, 15);
    db_cid(q, 16, f->parent_id);
    f->n_down = db_ci(q, 17);
    f->graph = (int)db_ci(q, 18);
    return 0;
}

static void finishing_clear(struct finishing *f)
{
    free(f->reason);
    free(f->worker_owner);
}

/* finish_attempt for an attempt that never started. */
static int unclaim(db_t *db, const char *run_id, const struct finishing *f, const char *why,
                   int64_t now_ms)
{
    attempt_end_t e = attempt_end(&f->retry, f->attempt - f->retry_base, ATTEMPT_NOT_STARTED, why,
                                  f->cancel_requested, f->reason, store__jitter_unit(), now_ms);
    db_q_t *q = db_q(db, &Q_RUN_UNCLAIM);
    if (!q) return SKED_ESTORE;
    db_bt(q, run_id);
    db_bi(q, e.next);
    db_bi(q, e.not_before_ms);
    db_bi(q, run_state_terminal(e.next) ? now_ms : -1);
    db_bt(q, e.reason);
    db_bb(q, e.next == RUN_SCHEDULED && f->held);
    int rc = db_exec(q, NULL);
    if (rc < 0) return rc;
    db_sql_t *const drops[] = {&Q_ATTEMPT_DROP, &Q_LOG_DROP};
    for (size_t i = 0; i < 2; i++) {
        if (!(q = db_q(db, drops[i]))) return SKED_ESTORE;
        db_bt(q, run_id);
        db_bi(q, f->attempt);
        if ((rc = db_exec(q, NULL)) < 0) return rc;
    }
    db_notify(db);
    return store__graph_ended(db, run_id, e.next, f->parent_id, f->n_down, f->graph, f->job_id,
                              now_ms);
}

/* Ends the current attempt of a running run with res and moves the run on
 * (retry, fail, cancel, succeed). reported: the worker said so (true) or
 * the reaper decided (false). */
static int finish_attempt(db_t *db, const char *run_id, const struct finishing *f,
                          const store_result_t *res, bool reported, int64_t now_ms)
{
    if (res->outcome == ATTEMPT_NOT_STARTED) return unclaim(db, run_id, f, res->reason, now_ms);
    attempt_end_t e = attempt_end(&f->retry, f->attempt - f->retry_base, res->outcome, res->reason,
                                  f->cancel_requested, f->reason, store__jitter_unit(), now_ms);
    int rc;
    /* The attempt's last checkpoint, while the run is still running on its
     * lease: the retry that may follow starts from it. */
    if (res->checkpoint &&
        (rc = store__checkpoint_put(db, run_id, f->fence, res->checkpoint, now_ms, NULL)) < 0)
        return rc;
    db_q_t *q = db_q(db, &Q_ATTEMPT_FINISH);
    if (!q) return SKED_ESTORE;
    db_bt(q, run_id);
    db_bi(q, f->attempt);
    db_bi(q, now_ms);
    db_bi(q, res->outcome);
    db_bi(q, res->exit_code);
    db_bi(q, res->signal);
    db_bt(q, e.attempt_reason);
    db_bb(q, reported);
    db_bt(q, res->result);
    if ((rc = db_exec(q, NULL)) < 0) return rc;

    if (!(q = db_q(db, &Q_RUN_FINISH))) return SKED_ESTORE;
    db_bt(q, run_id);
    db_bi(q, e.next);
    db_bi(q, e.not_before_ms);
    db_bi(q, run_state_terminal(e.next) ? now_ms : -1);
    db_bi(q, res->exit_code);
    db_bi(q, res->signal);
    db_bt(q, e.reason);
    db_bb(q, e.next == RUN_SCHEDULED && f->held);
    if ((rc = db_exec(q, NULL)) < 0) return rc;
    db_notify(db);
    /* What waits on this run, or the group it belongs to, learns of its
     * end in this unit (nothing to do for a plain run). */
    if ((rc = store__graph_ended(db, run_id, e.next, f->parent_id, f->n_down, f->graph, f->job_id,
                                 now_ms)) < 0)
        return rc;
    /* The alerts this end opens (failed, retrying) or resolves, in this
     * unit: an acknowledged failure always has its alert queued. A
     * success with no open alert on its job runs no statement here. */
    store__attempt_end_t ae = {run_id,         f->job_id,  f->alerts_open,  res->outcome,
                               e.next,         f->attempt, e.not_before_ms, e.attempt_reason,
                               res->exit_code, res->signal};
    return store__alerts_attempt_end(db, &ae, now_ms);
}

struct complete_args {
    const char *run_id;
    int attempt;
    int64_t fence;
    const char *owner;
    const store_result_t *res;
    int64_t now_ms;
};

/* 0 if attempt `attempt` of the run, held with `fence`, was already
 * completed by its worker (a repeat whose answer was lost), else
 * SKED_ESTALE: the lease was taken away. */
static int already_reported(db_t *db, const struct complete_args *a)
{
    db_q_t *q = db_q(db, &Q_ATTEMPT_REPORTED);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->run_id);
    db_bi(q, a->attempt);
    db_bi(q, a->fence);
    int rc = db_one(q);
    if (rc == SKED_ENOTFOUND) return SKED_ESTALE;
    if (rc < 0) return rc;
    return db_cb(q, 0) ? 0 : SKED_ESTALE;
}

static int complete_fn(db_t *db, void *arg)
{
    struct complete_args *a = arg;
    struct finishing f = {0};
    int rc = read_finishing(db, a->run_id, &f);
    if (rc < 0) goto out;
    if (f.state != RUN_RUNNING || f.fence != a->fence || f.attempt != a->attempt) {
        rc = already_reported(db, a);
        goto out;
    }
    /* The lease is current: only now does who reports it matter (a stale
     * report answers 409 whoever holds the run now). */
    if (!store__owner_ok(a->owner, f.worker_owner)) {
        rc = SKED_EFORBID;
        goto out;
    }
    rc = finish_attempt(db, a->run_id, &f, a->res, true, a->now_ms);
out:
    finishing_clear(&f);
    return rc;
}

int v_complete(store_t *st, const char *run_id, int attempt, int64_t fence, const char *owner,
               const store_result_t *res, int64_t now_ms)
{
    struct complete_args a = {run_id, attempt, fence, owner, res, now_ms};
    return store__tx(st, DB_WRITE, complete_fn, &a, &a.now_ms);
}

struct complete_batch_args {
    const char *worker_id;
    const char *owner;
    store_completion_t *items;
    size_t n;
    int64_t now_ms;
    struct claim_args *claim; /* the claim the completions carry; NULL: none */
};

/* Each item as complete_fn would take it alone. A stale, foreign or
 * vanished item is found by reads before it writes anything, so it is an
 * answer for that item and the unit goes on; anything else fails the
 * whole unit. */
static int complete_batch_fn(db_t *db, void *arg)
{
    struct complete_batch_args *b = arg;
    struct touched w = {0};
    int trc = worker_touch(db, b->worker_id, b->owner, b->now_ms, false, &w);
    touched_clear(&w);
    if (trc < 0) return trc;
    for (size_t i = 0; i < b->n; i++) {
        store_completion_t *it = &b->items[i];
        if (it->rc == SKED_EINVAL) continue;
        struct complete_args a = {it->run_id, it->attempt, it->fence,
                                  b->owner,   &it->res,    b->now_ms};
        int rc = complete_fn(db, &a);
        if (rc < 0 && rc != SKED_ESTALE && rc != SKED_EFORBID && rc != SKED_ENOTFOUND) return rc;
        it->rc = rc;
    }
    if (!b->claim) return 0;
    /* The next runs for the slots these completions freed, in the same
     * unit: one round trip and one commit per run for a busy worker. */
    b->claim->now_ms = b->now_ms;
    return claim_fn(db, b->claim);
}

int v_complete_batch(store_t *st, const char *worker_id, const char *owner,
                     store_completion_t *items, size_t n, int claim_max, int64_t confirm_ms,
                     int64_t ahead_ms, int64_t now_ms, store_claimed_t **claimed, size_t *nclaimed)
{
    struct claim_args a = {worker_id, owner, claim_max, confirm_ms, now_ms,
                           ahead_ms,  NULL,  NULL,      0,          0};
    struct complete_batch_args b = {worker_id, owner, items, n, now_ms, claim_max > 0 ? &a : NULL};
    int rc = store__tx(st, DB_WRITE, complete_batch_fn, &b, &b.now_ms);
    FREE_NULL(a.ns);
    if (rc >= 0 && a.overlap_skips)
        prom_add(&store_stats()->overlap_skips, (uint64_t)a.overlap_skips);
    if (rc < 0) claim_reset(&a); /* the commit failed after the unit succeeded */
    if (claimed) {
        *claimed = a.out;
        *nclaimed = a.n;
    } else {
        claim_reset(&a);
    }
    return rc;
}

/* SKIP LOCKED: reapers on several servers share the expired runs. */
static db_sql_t Q_EXPIRED =
    DB_SQL("SELECT id FROM runs INDEXED BY runs_lease WHERE state = 3 AND lease_expires_ms < ?1"
           " ORDER BY lease_expires_ms LIMIT ?2",
           "SELECT id FROM runs WHERE state = 3 AND lease_expires_ms < $1"
           " ORDER BY lease_expires_ms LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED");
static db_sql_t Q_WORKERS_LOSE =
    DB_SAME("UPDATE workers SET state = 2 WHERE state IN (0, 1) AND heartbeat_ms < ?1"
            " RETURNING id, name, queues, ns");

/* Workers silent since before `before` become lost, and their worker_lost
 * alerts open in the same unit. */
static int lose_workers(db_t *db, int64_t before, int64_t now_ms)
{
    store__lost_worker_t *w = NULL;
    size_t n = 0, cap = 0;
    db_q_t *q = db_q(db, &Q_WORKERS_LOSE);
    if (!q) return SKED_ESTORE;
    db_bi(q, before);
    int rc;
    while ((rc = db_step(q)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            w = xrealloc(w, cap * sizeof *w);
        }
        db_cid(q, 0, w[n].id);
        w[n].name = db_ct0(q, 1);
        w[n].queues = db_ct0(q, 2);
        w[n].ns = db_ct0(q, 3);
        n++;
    }
    if (rc == 0 && n) rc = store__alerts_workers_lost(db, w, n, now_ms);
    for (size_t i = 0; i < n; i++) {
        free(w[i].name);
        free(w[i].queues);
        free(w[i].ns);
    }
    free(w);
    return rc;
}

struct reap_args {
    int64_t grace_ms, hb_timeout_ms, now_ms;
    int changed;
};

static int reap_fn(db_t *db, void *arg)
{
    struct reap_args *a = arg;
    char(*ids)[SKED_ID_LEN] = NULL;
    size_t n = 0;
    a->changed = 0;
    int rc = lose_workers(db, a->now_ms - a->hb_timeout_ms, a->now_ms);
    if (rc < 0) return rc;
    db_q_t *q;

    /* Collect (and lock) the batch first: the runs change under the walk. */
    if (!(q = db_q(db, &Q_EXPIRED))) return SKED_ESTORE;
    db_bi(q, a->now_ms - a->grace_ms);
    db_bi(q, REAP_BATCH);
    ids = xcalloc(REAP_BATCH, sizeof *ids);
    while (n < REAP_BATCH && (rc = db_step(q)) == 1)
        db_cid(q, 0, ids[n++]);
    if (rc < 0) goto out;
    rc = 0;
    for (size_t i = 0; i < n; i++) {
        struct finishing f = {0};
        if ((rc = read_finishing(db, ids[i], &f)) < 0) goto out;
        store_result_t res = {ATTEMPT_LOST, -1, 0, "lease expired", NULL, NULL};
        if (f.unconfirmed)
            res = (store_result_t){
                ATTEMPT_NOT_STARTED, -1, 0, store__not_started_reason(false), NULL, NULL};
        rc = finish_attempt(db, ids[i], &f, &res, false, a->now_ms);
        finishing_clear(&f);
        if (rc < 0) goto out;
        a->changed++;
    }
out:
    free(ids);
    return rc;
}

int v_reap(store_t *st, int64_t grace_ms, int64_t heartbeat_timeout_ms, int64_t now_ms)
{
    int total = 0;
    /* Bounded batches, each its own commit, so a huge backlog neither holds
     * many locks nor the writer for long. */
    for (;;) {
        struct reap_args a = {grace_ms, heartbeat_timeout_ms, now_ms, 0};
        int rc = store__tx(st, DB_WRITE, reap_fn, &a, &a.now_ms);
        if (rc < 0) return rc;
        total += a.changed;
        if (a.changed < REAP_BATCH) return total;
    }
}
