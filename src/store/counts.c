/*
 * The store's figures for GET /metrics, written once over the SQL driver
 * (db.h): the cluster-wide counts that the triggers of migration 4 keep
 * (schema.c: run_counts, worker_counts), read as a sum over their shards
 * in one snapshot, and this process's commit statistics (store_stats),
 * which the drivers record into as they commit.
 */
#include "store/db.h"
#include "store/store_int.h"
#include "store/verbs.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"

/* ---- this process's statistics ------------------------------------------ */

/* Commit latency: 50 µs (an fsync on a fast disk) to 5 s (a stalled one). */
static const int64_t commit_bounds_ns[] = {
    50000,    100000,   250000,    500000,    1000000,   2500000,    5000000,    10000000,
    25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000};
/* Writes per commit: powers of two up to the largest batches seen. */
static const int64_t commit_writes_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

static store_stats_t stats = {
    .commit_ns = PROM_HIST_INIT(commit_bounds_ns, 1e9),
    .commit_writes = PROM_HIST_INIT(commit_writes_bounds, 1),
    .overlap_skips = PROM_COUNTER_INIT,
    .write_queue = 0,
    .batch_redos = PROM_COUNTER_INIT,
};

store_stats_t *store_stats(void)
{
    return &stats;
}

/* ---- the maintained counts ----------------------------------------------- */

/* Byte order of queue names on both engines, as everywhere in the store. */
static db_sql_t Q_RUN_COUNTS =
    DB_SQL("SELECT queue, state, sum(n) FROM run_counts GROUP BY queue, state"
           " ORDER BY queue, state",
           "SELECT queue, state, sum(n) FROM run_counts GROUP BY queue, state"
           " ORDER BY queue COLLATE \"C\", state");
static db_sql_t Q_WORKER_COUNTS =
    DB_SAME("SELECT state, sum(workers), sum(slots), sum(busy) FROM worker_counts"
            " GROUP BY state ORDER BY state");

static int counts_fn(db_t *db, void *arg)
{
    store_counts_t *c = arg;
    size_t cap = 0;
    int rc;
    store_counts_clear(c); /* a try before this one may have read some */
    db_q_t *q = db_q(db, &Q_RUN_COUNTS);
    if (!q) return SKED_ESTORE;
    while ((rc = db_step(q)) == 1) {
        int64_t state = db_ci(q, 1);
        if (state < 0 || state >= RUN_STATE_COUNT) continue; /* a state this sked does not know */
        if (c->nruns == cap) {
            cap = cap ? cap * 2 : 16;
            c->runs = xrealloc(c->runs, cap * sizeof *c->runs);
        }
        c->runs[c->nruns++] = (store_run_count_t){db_ct0(q, 0), (run_state_t)state, db_ci(q, 2)};
    }
    if (rc < 0) return rc;
    if (!(q = db_q(db, &Q_WORKER_COUNTS))) return SKED_ESTORE;
    while ((rc = db_step(q)) == 1) {
        int64_t state = db_ci(q, 0);
        if (state < 0 || state > WORKER_GONE) continue;
        c->workers[state] = (store_worker_count_t){db_ci(q, 1), db_ci(q, 2), db_ci(q, 3)};
    }
    return rc;
}

int v_counts(store_t *st, store_counts_t *out)
{
    memset(out, 0, sizeof *out);
    int rc = store__tx(st, DB_READ, counts_fn, out, NULL);
    if (rc < 0) store_counts_clear(out);
    return rc;
}

void store_counts_clear(store_counts_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->nruns; i++)
        free(c->runs[i].queue);
    free(c->runs);
    memset(c, 0, sizeof *c);
}
