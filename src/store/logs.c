/*
 * Store verbs of run logs and retention, written once over the SQL driver
 * (db.h): a worker's log chunks appended under the per-run cap (st->log_cap)
 * with their byte accounting, read back in (attempt, seq) order, and the
 * pruning of finished runs (their attempts and chunks go with them), old
 * idempotency keys and old entries of the missed-fire ledger.
 */
#include "core/attempt.h"
#include "store/db.h"
#include "store/store_int.h"
#include "store/verbs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"

#define PRUNE_BATCH 500

/* ---- append ------------------------------------------------------------------ */

/* The truncation note sorts after every chunk a worker can send. */
#define NOTE_SEQ INT64_MAX

/* The attempt's outcome tells a reaped (lost) attempt from a finished one:
 * a lost attempt's worker was cut off and may log no more, even before the
 * run is claimed again and its fence changes. On PostgreSQL the run's row
 * lock orders concurrent appends, so the byte count and the cap stay exact
 * (SQLite's one writer does that by itself). */
#define RUN_FOR_LOG                                                                                \
    "SELECT r.fence, r.attempt, r.log_bytes, r.log_truncated, a.outcome, w.owner FROM runs r"      \
    " LEFT JOIN attempts a ON a.run_id = r.id AND a.n = r.attempt"                                 \
    " LEFT JOIN workers w ON w.id = r.worker_id WHERE r.id = "
static db_sql_t Q_RUN_FOR_LOG = DB_SQL(RUN_FOR_LOG "?1", RUN_FOR_LOG "$1 FOR NO KEY UPDATE OF r");
static db_sql_t Q_LOG_HAS =
    DB_SAME("SELECT 1 FROM log_chunks WHERE run_id = ?1 AND attempt = ?2 AND seq = ?3");
static db_sql_t Q_LOG_INSERT = DB_SAME("INSERT INTO log_chunks (run_id, attempt, seq, stream,"
                                       " at_ms, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
static db_sql_t Q_RUN_LOG_ACCOUNT =
    DB_SAME("UPDATE runs SET log_bytes = log_bytes + ?2, log_truncated = ?3 WHERE id = ?1");

struct log_append_args {
    const char *run_id;
    int attempt;
    int64_t fence;
    const char *owner;
    int64_t seq;
    int stream;
    const char *data;
    size_t len;
    int64_t now_ms;
};

static int insert_chunk(db_t *db, const struct log_append_args *a, int64_t seq, int stream,
                        const void *data, size_t len)
{
    db_q_t *q = db_q(db, &Q_LOG_INSERT);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->run_id);
    db_bi(q, a->attempt);
    db_bi(q, seq);
    db_bi(q, stream);
    db_bi(q, a->now_ms);
    db_bblob(q, data, len);
    return db_exec(q, NULL);
}

static int log_append_fn(db_t *db, void *arg)
{
    struct log_append_args *a = arg;
    db_q_t *q = db_q(db, &Q_RUN_FOR_LOG);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->run_id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    if (db_ci(q, 0) != a->fence || db_ci(q, 1) != a->attempt || db_cin(q, 4) == ATTEMPT_LOST)
        return SKED_ESTALE;
    if (!store__owner_ok(a->owner, db_cs(q, 5))) return SKED_EFORBID;
    int64_t used = db_ci(q, 2);
    bool truncated = db_cb(q, 3);

    if (!(q = db_q(db, &Q_LOG_HAS))) return SKED_ESTORE;
    db_bt(q, a->run_id);
    db_bi(q, a->attempt);
    db_bi(q, a->seq);
    if ((rc = db_step(q)) != 0) return rc < 0 ? rc : 0; /* a resend: already stored */
    if (truncated) return 0; /* past the cap: dropped, the note is there */

    int64_t cap = db->st->log_cap;
    bool crosses = false;
    size_t keep = log_keep(cap, used, a->len, &crosses);
    if (keep > 0 || a->len == 0) {
        if ((rc = insert_chunk(db, a, a->seq, a->stream, a->data, keep)) < 0) return rc;
    }
    if (crosses) {
        char note[80];
        int nl = snprintf(note, sizeof note, "log truncated at %" PRId64 " bytes", cap);
        if ((rc = insert_chunk(db, a, NOTE_SEQ, 0, note, (size_t)nl)) < 0) return rc;
        truncated = true;
    }
    if (!(q = db_q(db, &Q_RUN_LOG_ACCOUNT))) return SKED_ESTORE;
    db_bt(q, a->run_id);
    db_bi(q, (int64_t)keep);
    db_bb(q, truncated);
    if ((rc = db_exec(q, NULL)) == 0) db_notify(db); /* log followers wait for new chunks */
    return rc;
}

int v_log_append(store_t *st, const char *run_id, int attempt, int64_t fence, const char *owner,
                 int64_t seq, int stream, const char *data, size_t len, int64_t now_ms)
{
    struct log_append_args a = {run_id, attempt, fence, owner, seq, stream, data, len, now_ms};
    return store__tx(st, DB_WRITE, log_append_fn, &a, &a.now_ms);
}

/* ---- read -------------------------------------------------------------------- */

static db_sql_t Q_RUN_EXISTS = DB_SAME("SELECT 1 FROM runs WHERE id = ?1");
static db_sql_t Q_LOG_READ =
    DB_SAME("SELECT attempt, seq, stream, at_ms, data FROM log_chunks"
            " WHERE run_id = ?1 AND (?2 = 0 OR attempt = ?2) AND (attempt, seq) > (?3, ?4)"
            " ORDER BY attempt, seq LIMIT ?5");

static void row_chunk(db_q_t *q, void *elem)
{
    store_log_chunk_t *k = elem;
    size_t len = 0;
    k->attempt = (int)db_ci(q, 0);
    k->seq = db_ci(q, 1);
    k->stream = (int)db_ci(q, 2);
    k->at_ms = db_ci(q, 3);
    const void *data = db_cblob(q, 4, &len);
    k->len = len;
    k->data = xmalloc(len + 1); /* NUL-terminated for convenience; len is the truth */
    if (len) memcpy(k->data, data, len);
    k->data[len] = '\0';
}

static void clear_chunk(void *elem)
{
    store_log_chunk_clear(elem);
}

static const db_rows_t chunk_rows = {sizeof(store_log_chunk_t), row_chunk, clear_chunk, NULL};

struct log_read_args {
    const char *run_id;
    int attempt, after_attempt;
    int64_t after_seq;
    int limit;
    store_log_chunk_t **out;
    size_t *n;
};

static int log_read_fn(db_t *db, void *arg)
{
    struct log_read_args *a = arg;
    db_q_t *q = db_q(db, &Q_RUN_EXISTS);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->run_id);
    int rc = db_one(q);
    if (rc < 0) return rc;

    if (!(q = db_q(db, &Q_LOG_READ))) return SKED_ESTORE;
    db_bt(q, a->run_id);
    db_bi(q, a->attempt);
    db_bi(q, a->after_attempt);
    db_bi(q, a->after_seq);
    db_bi(q, a->limit);
    return db_page(q, &chunk_rows, -1, (void **)a->out, a->n, NULL);
}

int v_log_read(store_t *st, const char *run_id, int attempt, int after_attempt, int64_t after_seq,
               int limit, store_log_chunk_t **out, size_t *n)
{
    struct log_read_args a = {run_id, attempt, after_attempt, after_seq, limit, out, n};
    return store__tx(st, DB_READ, log_read_fn, &a, NULL);
}

/* ---- retention --------------------------------------------------------------- */

/* One batch of the oldest finished runs; attempts and log chunks go with
 * them (ON DELETE CASCADE). SKIP LOCKED: pruners on several servers never
 * wait on each other. */
static db_sql_t Q_PRUNE =
    DB_SQL("DELETE FROM runs WHERE id IN (SELECT id FROM runs INDEXED BY runs_finished"
           " WHERE state >= 4 AND finished_ms < ?1 ORDER BY finished_ms LIMIT ?2)",
           "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE state >= 4"
           " AND finished_ms < $1 ORDER BY finished_ms LIMIT $2 FOR UPDATE SKIP LOCKED)");
static db_sql_t Q_IDEM_PRUNE = DB_SAME("DELETE FROM idempotency WHERE created_ms < ?1");
static db_sql_t Q_MISS_PRUNE = DB_SAME("DELETE FROM misses WHERE last_ms < ?1");

struct prune_args {
    int64_t older_than_ms;
    int removed;
};

static int prune_fn(db_t *db, void *arg)
{
    struct prune_args *a = arg;
    int64_t n = 0;
    int rc;
    a->removed = 0;
    db_q_t *q = db_q(db, &Q_PRUNE);
    if (!q) return SKED_ESTORE;
    db_bi(q, a->older_than_ms);
    db_bi(q, PRUNE_BATCH);
    if ((rc = db_exec(q, &n)) < 0) return rc;
    a->removed = (int)n;
    if (n >= PRUNE_BATCH) return 0;
    /* The last batch: old idempotency keys and ledger entries go too. */
    db_sql_t *const olds[] = {&Q_IDEM_PRUNE, &Q_MISS_PRUNE};
    for (size_t i = 0; i < 2 && rc == 0; i++) {
        if (!(q = db_q(db, olds[i]))) return SKED_ESTORE;
        db_bi(q, a->older_than_ms);
        rc = db_exec(q, NULL);
    }
    return rc;
}

int v_prune(store_t *st, int64_t older_than_ms)
{
    int total = 0;
    /* Bounded batches, each its own commit, so a huge backlog neither holds
     * many locks nor the writer for long. */
    for (;;) {
        struct prune_args a = {older_than_ms, 0};
        int rc = store__tx(st, DB_WRITE, prune_fn, &a, NULL);
        if (rc < 0) return rc;
        total += a.removed;
        if (a.removed < PRUNE_BATCH) return total;
    }
}
