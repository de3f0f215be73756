/*
 * Store verbs of firing, written once over the SQL driver (db.h): the due
 * schedules a scheduler tick reads, the fire itself (a compare-and-set on
 * each schedule's next_fire_ms, the runs it makes and the missed-fire
 * ledger entry of what the misfire policy passed over), a manual trigger,
 * the two "when next" questions waiting claims and the scheduler ask, and
 * the ledger's listing.
 *
 * On PostgreSQL several servers fire at once: the CAS decides which one
 * advances a schedule, and UNIQUE (schedule_id, fire_ms) on runs keeps a
 * fire time from making two runs whatever happens (promise §5.2).
 */
#include "store/verbs.h"

#include <stdint.h>
#include <string.h>

#include "common/error.h"
#include "store/rows.h"
#include "store/store_int.h"

/* ---- statements ------------------------------------------------------------ */

#define DUE_COLS                                                                                   \
    "s.id, s.job_id, s.kind, s.expr, s.timezone, s.start_ms, s.end_ms, s.jitter_ms,"               \
    " s.anchor_ms, s.next_fire_ms, s.last_fire_ms, j.misfire, j.overlap, j.catch_up_window_ms"
/* SQLite uses the partial index schedules_due only when the query repeats
 * its WHERE term (active = 1). */
static db_sql_t Q_DUE = DB_SQL("SELECT " DUE_COLS " FROM schedules s INDEXED BY schedules_due"
                               " JOIN jobs j ON j.id = s.job_id"
                               " WHERE s.active = 1 AND s.next_fire_ms <= ?1"
                               " ORDER BY s.next_fire_ms LIMIT ?2",
                               "SELECT " DUE_COLS " FROM schedules s JOIN jobs j ON j.id = s.job_id"
                               " WHERE s.active AND s.next_fire_ms <= $1"
                               " ORDER BY s.next_fire_ms LIMIT $2");
/* The compare-and-set, and the schedule's job: only the server that read
 * expect_next wins. On PostgreSQL a schedule another server is firing
 * right now is skipped rather than waited for: if that server commits, our
 * CAS would fail anyway; if it rolls back, the next tick fires it. */
static db_sql_t Q_FIRE_CAS =
    DB_SQL("UPDATE schedules SET next_fire_ms = ?2, last_fire_ms = max(last_fire_ms, ?4)"
           " WHERE id = ?1 AND active = 1 AND next_fire_ms IS ?3",
           "UPDATE schedules SET next_fire_ms = $2, last_fire_ms = greatest(last_fire_ms, $4)"
           " WHERE id = (SELECT id FROM schedules WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED)"
           " AND active AND next_fire_ms IS NOT DISTINCT FROM $3 RETURNING job_id");
/* SQLite's CAS returns no row: its job, read back (db_step_written). */
static db_sql_t Q_FIRE_CASED = DB_ONLY_LITE("SELECT job_id FROM schedules WHERE id = ?1");
/* A stretch that continues the schedule's latest one (same reason, ending
 * at the fire time just before) extends it; else it is a new entry. */
static db_sql_t Q_MISS_EXTEND = DB_SAME("UPDATE misses SET last_ms = ?3, count = count + ?4"
                                        " WHERE schedule_id = ?1 AND last_ms = ?2 AND reason = ?5");
#define MISS_COLS "id, job_id, schedule_id, first_ms, last_ms, count, reason, created_ms"
static db_sql_t Q_MISS_INSERT =
    DB_SAME("INSERT INTO misses (" MISS_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
/* Trigger: on PostgreSQL FOR SHARE keeps a concurrent delete from slipping
 * between the check and the insert (SQLite has one writer). */
static db_sql_t Q_JOB_STATE_SHARE = DB_SQL("SELECT state FROM jobs WHERE id = ?1",
                                           "SELECT state FROM jobs WHERE id = $1 FOR SHARE");
static db_sql_t Q_NEXT_CLAIMABLE =
    DB_SQL("SELECT not_before_ms FROM runs INDEXED BY runs_due WHERE state IN (0, 2) AND held = 0"
           " ORDER BY not_before_ms LIMIT 1",
           "SELECT not_before_ms FROM runs WHERE state IN (0, 2) AND NOT held"
           " ORDER BY not_before_ms LIMIT 1");
static db_sql_t Q_NEXT_FIRE =
    DB_SQL("SELECT next_fire_ms FROM schedules INDEXED BY schedules_due"
           " WHERE active = 1 AND next_fire_ms IS NOT NULL ORDER BY next_fire_ms LIMIT 1",
           "SELECT next_fire_ms FROM schedules WHERE active"
           " AND next_fire_ms IS NOT NULL ORDER BY next_fire_ms LIMIT 1");
static db_sql_t Q_MISS_LIST =
    DB_SQL("SELECT " MISS_COLS " FROM misses INDEXED BY misses_job WHERE job_id = ?1"
           " AND (?2 IS NULL OR (first_ms <= ?2 AND last_ms >= ?2))"
           " AND (?3 IS NULL OR last_ms < ?3 OR (last_ms = ?3 AND id < ?4))"
           " ORDER BY last_ms DESC, id DESC LIMIT ?5",
           "SELECT " MISS_COLS " FROM misses WHERE job_id = $1"
           " AND ($2::bigint IS NULL OR (first_ms <= $2 AND last_ms >= $2))"
           " AND ($3::bigint IS NULL OR (last_ms, id) < ($3, $4::text))"
           " ORDER BY last_ms DESC, id DESC LIMIT $5");

/* ---- due schedules ------------------------------------------------------------ */

static void due_row(db_q_t *q, void *e)
{
    store_due_t *d = e;
    store__row_sched(q, 0, &d->sched);
    d->misfire = (misfire_policy_t)db_ci(q, 11);
    d->overlap = (overlap_policy_t)db_ci(q, 12);
    d->catch_up_window_ms = db_ci(q, 13);
}

static void due_clear(void *e)
{
    store_schedule_clear(&((store_due_t *)e)->sched);
}

static const db_rows_t due_rows = {sizeof(store_due_t), due_row, due_clear, NULL};

struct due_args {
    int64_t until_ms;
    int limit;
    store_due_t **out;
    size_t *n;
};

static int due_fn(db_t *db, void *arg)
{
    struct due_args *a = arg;
    db_q_t *q = db_q(db, &Q_DUE);
    if (!q) return SKED_ESTORE;
    db_bi(q, a->until_ms);
    db_bi(q, a->limit);
    /* LIMIT is the caller's: no page beyond it. */
    return db_page(q, &due_rows, -1, (void **)a->out, a->n, NULL);
}

int v_due_schedules(store_t *st, int64_t until_ms, int limit, store_due_t **out, size_t *n)
{
    struct due_args a = {until_ms, limit, out, n};
    return store__tx(st, DB_READ1, due_fn, &a, NULL);
}

/* ---- fire ---------------------------------------------------------------------- */

/* Records it->miss (count > 0) for job_id in the ledger: extends the
 * schedule's latest stretch when this one goes on from it, else a new
 * entry. */
static int record_miss(db_t *db, const store_fire_t *it, const char *job_id, int64_t now_ms)
{
    const store_fire_miss_t *m = &it->miss;
    db_q_t *q = db_q(db, &Q_MISS_EXTEND);
    int64_t n = 0;
    int rc;
    if (!q) return SKED_ESTORE;
    db_bt(q, it->schedule_id);
    db_bi(q, m->prev_ms);
    db_bi(q, m->last_ms);
    db_bi(q, m->count);
    db_bt(q, m->reason);
    if ((rc = db_exec(q, &n)) < 0) return rc;
    if (m->prev_ms >= 0 && n > 0) return 0;
    char id[SKED_ID_LEN];
    id_new("mis", now_ms, id);
    if (!(q = db_q(db, &Q_MISS_INSERT))) return SKED_ESTORE;
    db_bt(q, id);
    db_bt(q, job_id);
    db_bt(q, it->schedule_id);
    db_bi(q, m->first_ms);
    db_bi(q, m->last_ms);
    db_bi(q, m->count);
    db_bt(q, m->reason);
    db_bi(q, now_ms);
    return db_exec(q, NULL);
}

/* The CAS of one item: 0 and job_id when it held, SKED_ENOTFOUND when
 * another server won (or the job is paused), or an error. */
static int fire_cas(db_t *db, const store_fire_t *it, char job_id[SKED_ID_LEN])
{
    /* last_fire_ms moves to the latest fire time this advance passes,
     * run or missed. */
    int64_t last = it->miss.count ? it->miss.last_ms : -1;
    for (size_t k = 0; k < it->nruns; k++)
        if (it->runs[k].fire_ms > last) last = it->runs[k].fire_ms;
    db_q_t *q = db_q(db, &Q_FIRE_CAS);
    if (!q) return SKED_ESTORE;
    db_bt(q, it->schedule_id);
    db_bin(q, it->new_next_ms);
    db_bin(q, it->expect_next_ms);
    db_bi(q, last);
    int rc = db_step_written(db, &q, &Q_FIRE_CASED, it->schedule_id);
    if (rc == 0) return SKED_ENOTFOUND; /* another fire won */
    if (rc < 0) return rc;
    db_cid(q, 0, job_id);
    return 0;
}

struct fire_args {
    store_fire_t *items;
    size_t n;
    int64_t now_ms;
};

static int fire_fn(db_t *db, void *arg)
{
    struct fire_args *a = arg;
    int rc;
    for (size_t i = 0; i < a->n; i++)
        a->items[i].applied = 0; /* a try that failed starts over */
    for (size_t i = 0; i < a->n; i++) {
        store_fire_t *it = &a->items[i];
        char job_id[SKED_ID_LEN];
        if ((rc = fire_cas(db, it, job_id)) == SKED_ENOTFOUND) continue;
        if (rc < 0) return rc;
        for (size_t k = 0; k < it->nruns; k++) {
            const store_fire_run_t *fr = &it->runs[k];
            const char *why =
                fr->state == RUN_SKIPPED ? (fr->reason ? fr->reason : "skipped") : NULL;
            char rid[SKED_ID_LEN];
            rc = store__insert_run(db, rid, job_id, it->schedule_id, fr->state, fr->fire_ms,
                                   fr->not_before_ms, why, a->now_ms, NULL);
            if (rc < 0) return rc;
        }
        if (it->miss.count && (rc = record_miss(db, it, job_id, a->now_ms)) < 0) return rc;
        it->applied = 1;
        if (it->nruns) db_notify(db);
    }
    return 0;
}

int v_fire(store_t *st, store_fire_t *items, size_t n, int64_t now_ms)
{
    struct fire_args a = {items, n, now_ms};
    int rc = store__tx(st, DB_WRITE, fire_fn, &a, &a.now_ms);
    if (rc < 0)
        for (size_t i = 0; i < n; i++)
            items[i].applied = 0;
    return rc;
}

/* ---- trigger --------------------------------------------------------------------- */

struct trigger_args {
    const char *job_id;
    const store_audit_t *audit;
    int64_t now_ms;
    char *run_id;
};

static int trigger_fn(db_t *db, void *arg)
{
    struct trigger_args *a = arg;
    db_q_t *q = db_q(db, &Q_JOB_STATE_SHARE);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->job_id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    if ((job_state_t)db_ci(q, 0) == JOB_DELETED) return SKED_ECONFLICT;
    rc = store__insert_run(db, a->run_id, a->job_id, NULL, RUN_PENDING, a->now_ms, a->now_ms, NULL,
                           a->now_ms, NULL);
    if (rc < 0) return rc;
    db_notify(db);
    return store__put_audit(db, a->audit, a->job_id);
}

int v_run_trigger(store_t *st, const char *job_id, const store_audit_t *audit, int64_t now_ms,
                  char run_id[SKED_ID_LEN])
{
    struct trigger_args a = {job_id, audit, now_ms, run_id};
    int rc = store__tx(st, DB_WRITE, trigger_fn, &a, &a.now_ms);
    if (rc < 0) run_id[0] = '\0';
    return rc;
}

/* ---- when next -------------------------------------------------------------------- */

struct one_int_args {
    db_sql_t *sql;
    int64_t v; /* -1 = no row (or NULL) */
};

static int one_int_fn(db_t *db, void *arg)
{
    struct one_int_args *a = arg;
    db_q_t *q = db_q(db, a->sql);
    if (!q) return SKED_ESTORE;
    int rc = db_one(q);
    a->v = rc == 0 ? db_cin(q, 0) : -1;
    return rc == SKED_ENOTFOUND ? 0 : rc;
}

static int one_int(store_t *st, db_sql_t *sql, int64_t *out_ms)
{
    struct one_int_args a = {sql, -1};
    int rc = store__tx(st, DB_READ1, one_int_fn, &a, NULL);
    *out_ms = rc < 0 ? -1 : a.v;
    return rc;
}

int v_next_claimable_ms(store_t *st, int64_t *out_ms)
{
    return one_int(st, &Q_NEXT_CLAIMABLE, out_ms);
}

int v_next_fire_ms(store_t *st, int64_t *out_ms)
{
    return one_int(st, &Q_NEXT_FIRE, out_ms);
}

/* ---- the missed-fire ledger ------------------------------------------------------- */

static void miss_row(db_q_t *q, void *e)
{
    store_miss_t *m = e;
    db_cid(q, 0, m->id);
    db_cid(q, 1, m->job_id);
    db_cid(q, 2, m->schedule_id);
    m->first_ms = db_ci(q, 3);
    m->last_ms = db_ci(q, 4);
    m->count = db_ci(q, 5);
    m->reason = db_ct0(q, 6);
    m->created_ms = db_ci(q, 7);
}

static void miss_clear(void *e)
{
    store_miss_clear(e);
}

static void miss_key(const void *e, int64_t *ms, const char **id)
{
    const store_miss_t *m = e;
    *ms = m->last_ms;
    *id = m->id;
}

static const db_rows_t miss_rows = {sizeof(store_miss_t), miss_row, miss_clear, miss_key};

struct miss_list_args {
    const store_miss_filter_t *f;
    store_miss_t **out;
    size_t *n;
    char **next;
};

static int miss_list_fn(db_t *db, void *arg)
{
    struct miss_list_args *a = arg;
    const store_miss_filter_t *f = a->f;
    int64_t cms = 0;
    char cidv[SKED_ID_LEN] = "";
    if (f->cursor) store__cursor_decode(f->cursor, &cms, cidv); /* checked by store.c */
    db_q_t *q = db_q(db, &Q_MISS_LIST);
    if (!q) return SKED_ESTORE;
    db_bt(q, f->job_id);
    if (f->at_ms == INT64_MIN)
        db_bin(q, -1); /* NULL: every entry */
    else
        db_bi(q, f->at_ms);
    if (f->cursor) {
        db_bi(q, cms);
        db_bt(q, cidv);
    } else {
        db_bin(q, -1);
        db_bt(q, NULL);
    }
    db_bi(q, f->limit + 1); /* one more tells whether a next page exists */
    return db_page(q, &miss_rows, f->limit, (void **)a->out, a->n, a->next);
}

int v_miss_list(store_t *st, const store_miss_filter_t *f, store_miss_t **out, size_t *n,
                char **next_cursor)
{
    struct miss_list_args a = {f, out, n, next_cursor};
    return store__tx(st, DB_READ1, miss_list_fn, &a, NULL);
}
