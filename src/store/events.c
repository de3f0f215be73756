/*
 * Store verbs of the event log (GET /v1/events), written once over the SQL
 * driver (db.h). Triggers in the schema (schema.c, migration 4) write the
 * events; this file reads and prunes them.
 *
 * Final ids. A reader resumes after the last id it saw, so it must never
 * be served id N while an id below N can still appear. SQLite commits in
 * id order (one writer), so every visible id is final. PostgreSQL draws
 * ids from a sequence before commit: id 10 may commit after id 11. The
 * triggers insert after the row they describe, so a transaction already
 * has its xid when it draws an id; hence when one snapshot sees max id M
 * and the next xid to be assigned is X, every id <= M was drawn by a
 * transaction whose xid is < X, and once a later snapshot's xmin reaches X
 * all of them have ended
 * (committed, so visible, or rolled back, so a hole forever). The store
 * handle remembers one such (M, X) pair at a time and moves its final
 * horizon to M when xmin passes X; a reader is served ids up to the
 * horizon only, by a read whose snapshot is taken after the horizon was
 * (see v_events_read). The cost is one indexed max() per read and a delay
 * of one transaction's length when writes are in flight.
 */
#include "store/db.h"
#include "store/store_int.h"
#include "store/verbs.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"

#define PRUNE_BATCH 5000

/* The xmin of this statement's snapshot, the next xid to be assigned (both
 * 0 on SQLite) and the newest id the snapshot sees. Not the snapshot's
 * xmax: that is the latest completed xid + 1, and a transaction that got
 * its xid after that completion runs without being listed in the snapshot.
 * age() counts from the next xid without assigning one to this read. */
static db_sql_t Q_EV_SNAPSHOT = DB_SQL(
    "SELECT 0, 0, coalesce(max(id), 0) FROM events",
    "SELECT x, x + age((x % 4294967296)::text::xid), coalesce((SELECT max(id) FROM events), 0)"
    " FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS x) AS s");
static db_sql_t Q_EV_READ =
    DB_SAME("SELECT id, at_ms, type, ns, job_id, run_id, worker_id, attempt, detail FROM events"
            " WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3");
static db_sql_t Q_EV_BOUNDS =
    DB_SAME("SELECT pruned_through, (SELECT coalesce(max(id), 0) FROM events)"
            " FROM event_horizon WHERE id = 1");
/* The first id retention keeps: the oldest event at or after the cutoff,
 * or the newest event when all are older. Scans from the oldest, so it
 * reads about as many rows as the prune deletes. */
static db_sql_t Q_EV_CUT =
    DB_SAME("SELECT coalesce((SELECT id FROM events WHERE at_ms >= ?1 ORDER BY id LIMIT 1),"
            " (SELECT max(id) FROM events), 0), coalesce((SELECT min(id) FROM events), 0)");
static db_sql_t Q_EV_DELETE = DB_SAME("DELETE FROM events WHERE id < ?1");
static db_sql_t Q_EV_PRUNED = DB_SAME("UPDATE event_horizon SET pruned_through ="
                                      " CASE WHEN pruned_through > ?1 THEN pruned_through"
                                      " ELSE ?1 END WHERE id = 1");

void store_event_clear(store_event_t *e)
{
    if (!e) return;
    free(e->type);
    free(e->ns);
    free(e->detail);
    memset(e, 0, sizeof *e);
}

static void row_event(db_q_t *q, void *elem)
{
    store_event_t *e = elem;
    e->id = db_ci(q, 0);
    e->at_ms = db_ci(q, 1);
    e->type = db_ct0(q, 2);
    e->ns = db_ct0(q, 3);
    db_cid(q, 4, e->job_id);
    db_cid(q, 5, e->run_id);
    db_cid(q, 6, e->worker_id);
    e->attempt = (int)db_ci(q, 7);
    e->detail = db_ct(q, 8);
}

static void clear_event(void *elem)
{
    store_event_clear(elem);
}

static const db_rows_t event_rows = {sizeof(store_event_t), row_event, clear_event, NULL};

/* Moves the final horizon with what one snapshot saw (see the top).
 * Returns it; *pending: ids beyond it exist. */
static int64_t horizon(store_t *st, int64_t xmin, int64_t next_xid, int64_t max_id, bool *pending)
{
    pthread_mutex_lock(&st->ev_mu);
    if (next_xid == 0) { /* SQLite: what is visible is final */
        if (max_id > st->ev_final) st->ev_final = max_id;
    } else {
        if (st->ev_pend_id >= 0 && xmin >= st->ev_pend_xid) {
            if (st->ev_pend_id > st->ev_final) st->ev_final = st->ev_pend_id;
            st->ev_pend_id = -1;
        }
        if (st->ev_pend_id < 0 && max_id > st->ev_final) {
            /* Nothing running when this snapshot was taken (its xmin is
             * the next xid): final at once. */
            if (xmin >= next_xid) {
                st->ev_final = max_id;
            } else {
                st->ev_pend_id = max_id;
                st->ev_pend_xid = next_xid;
            }
        }
    }
    int64_t final = st->ev_final;
    *pending = max_id > final;
    pthread_mutex_unlock(&st->ev_mu);
    return final;
}

struct ev_read_args {
    int64_t after, final;
    int limit;
    store_event_t **out;
    size_t *n;
    bool *pending;
};

static int ev_horizon_fn(db_t *db, void *arg)
{
    struct ev_read_args *a = arg;
    db_q_t *q = db_q(db, &Q_EV_SNAPSHOT);
    if (!q) return SKED_ESTORE;
    int rc = db_one(q);
    if (rc < 0) return rc;
    a->final = horizon(db->st, db_ci(q, 0), db_ci(q, 1), db_ci(q, 2), a->pending);
    return 0;
}

static int ev_read_fn(db_t *db, void *arg)
{
    struct ev_read_args *a = arg;
    for (size_t i = 0; i < *a->n; i++) /* a read run again: drop the last try's */
        store_event_clear(&(*a->out)[i]);
    FREE_NULL(*a->out);
    *a->n = 0;
    db_q_t *q = db_q(db, &Q_EV_READ);
    if (!q) return SKED_ESTORE;
    db_bi(q, a->after);
    db_bi(q, a->final);
    db_bi(q, a->limit);
    return db_page(q, &event_rows, -1, (void **)a->out, a->n, NULL);
}

/* Two units of work, in this order, on purpose: the horizon may have been
 * moved by another thread's snapshot, newer than this thread's first one;
 * the read's own snapshot is taken after the horizon was read, so it is
 * newer than whichever snapshot proved the horizon final, and sees every
 * id up to it. */
int v_events_read(store_t *st, int64_t after_id, int limit, store_event_t **out, size_t *n,
                  bool *pending)
{
    struct ev_read_args a = {after_id, 0, limit, out, n, pending};
    int rc = store__tx(st, DB_READ1, ev_horizon_fn, &a, NULL);
    if (rc < 0) return rc;
    if (a.final <= after_id) {
        *out = xcalloc(1, sizeof **out);
        return 0;
    }
    return store__tx(st, DB_READ1, ev_read_fn, &a, NULL);
}

struct ev_bounds_args {
    int64_t *pruned, *last;
};

static int ev_bounds_fn(db_t *db, void *arg)
{
    struct ev_bounds_args *a = arg;
    db_q_t *q = db_q(db, &Q_EV_BOUNDS);
    if (!q) return SKED_ESTORE;
    int rc = db_one(q);
    if (rc < 0) return rc;
    *a->pruned = db_ci(q, 0);
    *a->last = db_ci(q, 1);
    return 0;
}

int v_events_bounds(store_t *st, int64_t *pruned_through, int64_t *last_id)
{
    struct ev_bounds_args a = {pruned_through, last_id};
    return store__tx(st, DB_READ1, ev_bounds_fn, &a, NULL);
}

struct ev_prune_args {
    int64_t older_than_ms;
    int64_t removed;
};

/* One batch: deletes at most PRUNE_BATCH ids from the oldest on, and
 * records the highest id deleted. */
static int ev_prune_fn(db_t *db, void *arg)
{
    struct ev_prune_args *a = arg;
    a->removed = 0;
    db_q_t *q = db_q(db, &Q_EV_CUT);
    if (!q) return SKED_ESTORE;
    db_bi(q, a->older_than_ms);
    int rc = db_one(q);
    if (rc < 0) return rc;
    int64_t keep = db_ci(q, 0), first = db_ci(q, 1);
    if (keep <= first) return 0;
    if (keep > first + PRUNE_BATCH) keep = first + PRUNE_BATCH;
    if (!(q = db_q(db, &Q_EV_DELETE))) return SKED_ESTORE;
    db_bi(q, keep);
    if ((rc = db_exec(q, &a->removed)) < 0) return rc;
    if (!(q = db_q(db, &Q_EV_PRUNED))) return SKED_ESTORE;
    db_bi(q, keep - 1);
    return db_exec(q, NULL);
}

int v_events_prune(store_t *st, int64_t older_than_ms)
{
    int64_t total = 0;
    for (int batches = 0; batches < 1000; batches++) {
        struct ev_prune_args a = {older_than_ms, 0};
        int rc = store__tx(st, DB_WRITE, ev_prune_fn, &a, NULL);
        if (rc < 0) return rc;
        total += a.removed;
        if (a.removed == 0) break;
    }
    return total > INT32_MAX ? INT32_MAX : (int)total;
}
