/*
 * The SQLite backend of the store (store.h), for `sked dev` and single-server
 * deployments.
 *
 * Concurrency model. One writer thread owns the only read-write connection
 * while writes queue. A caller of a write verb packs its arguments into a
 * closure (struct wop), queues it and sleeps on its own semaphore. The
 * writer takes every queued op at once, opens BEGIN IMMEDIATE, runs each op
 * and COMMITs once (a failing op rolls back only itself: run_batch). So N
 * concurrent writes share one WAL write (group commit). A write that finds
 * the store idle (nothing queued, running, or committed and not yet synced)
 * has no one to share a commit with: it runs on its caller's thread
 * (lone_write), committed and synced with no thread in between, where the
 * queue would cost three handoffs (to the writer, the syncer and back).
 * While writes are in flight every new one queues, so under load every
 * write batches as before (taking the lone path whenever the queue was
 * momentarily empty cost 8-18 % of the submits/s of 32 clients).
 *
 * Durability is pipelined. The writer commits with synchronous=NORMAL (the
 * WAL frames are written, not yet synced) and hands the batch to the
 * syncer thread, then goes on with the next batch at once; the syncer
 * syncs the WAL (sync_through: one fdatasync for every commit made before
 * it starts, a lone write's too), then runs the notify hook if any op
 * asked for it and wakes the callers. So every caller still returns only
 * after its change is on disk (promise §5.1;
 * tests/store/test_durability.c), while the writer never waits for
 * the disk: its next batch is built during the previous one's sync. The
 * syncer also checkpoints the WAL into the database (PASSIVE, on a
 * connection of its own, each time CHECKPOINT_FRAMES more frames have been
 * appended), which SQLite would otherwise do inside a commit. A store whose WAL file
 * SQLite does not expose falls back to synchronous=FULL in the writer.
 * Reads go to a small pool of read-only connections that WAL lets run
 * beside the writer; each read runs in one transaction, so it sees one
 * consistent snapshot.
 *
 * Statements are prepared once per connection and cached by the address of
 * their SQL text (every SQL string here is a static constant). After each
 * op or read, every still-busy statement is reset, so no connection keeps a
 * read transaction (and an old snapshot) open by accident.
 *
 * Several processes (or several store_open calls) may use the same file:
 * BEGIN IMMEDIATE plus the busy timeout serialise their writers, and every
 * race (fire CAS, claim, fencing) is decided inside a write transaction.
 *
 * Schema: the versioned migrations of schema.c, recorded in
 * schema_version; a store written by a newer sked is refused (SKED_ESCHEMA).
 * Enums are stored as their integer values (run_state_t, job_state_t, ...),
 * which are part of the on-disk format from now on: only append to them.
 */
#include "store/store.h"
#include "store/store_int.h"
#include "store/db.h"

#include <semaphore.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"

#define NREADERS          4
#define BUSY_TIMEOUT_MS   15000
#define CHECKPOINT_FRAMES 1000  /* SQLite's own autocheckpoint threshold */
#define WAL_MAX_FRAMES    16000 /* ~64 MiB: the writer checkpoints itself past this */

/* ---- connections and statements ---------------------------------------- */

struct stc {
    const char *sql; /* static text; the cache key is its address */
    sqlite3_stmt *st;
};

struct lq;

struct conn {
    sqlite3 *db;
    struct stc *cache;
    size_t n, cap;
    db_slots_t lq; /* the driver's statements (db.h): struct lq, by slot */
};

/* A driver statement (db.h) on one connection. */
struct lq {
    struct db_q base;
    struct conn *c;
    sqlite3_stmt *st;
    int n; /* parameters bound so far */
};

struct wop;
struct sq;
typedef int (*wfn_t)(struct sq *s, void *arg);

/* A queued write: the closure, and where its result goes. Its caller
 * sleeps on its own semaphore, so a commit wakes exactly the callers of
 * its batch, not every thread waiting on the store. */
struct wop {
    wfn_t fn;
    void *arg;
    int rc;
    sem_t done;
    struct wop *next;
};

struct sq {
    store_t base; /* first: a store_t * is a struct sq * */
    char *path;

    struct conn w; /* the writer's connection; used only by whoever holds busy */
    pthread_t writer;
    bool writer_started;
    pthread_mutex_t wmu;
    pthread_cond_t work_cv; /* ops queued, busy cleared, or stop */
    struct wop *head, *tail;
    bool busy; /* w is in use: by the writer thread, or by a lone write (wsubmit) */
    bool stop;
    bool op_notify; /* busy's holder only: the running op asked for a notify */

    /* The syncer (see the top): batches committed, not yet synced. */
    sqlite3_file *wal; /* the writer connection's WAL; NULL: no syncer */
    struct conn ck;    /* the syncer's own connection, for checkpoints */
    pthread_t syncer;
    bool syncer_started;
    pthread_mutex_t smu;
    pthread_cond_t scv;           /* a batch to sync, a checkpoint wanted, or stop */
    pthread_cond_t synced_cv;     /* a sync ended (sync_through) */
    struct synced *shead, *stail; /* the writer thread's batches, to sync and wake */
    uint64_t committed, synced;   /* commits of w in order; of those, the ones synced */
    bool syncing;                 /* some thread is in the WAL's fdatasync */
    bool ckpt_wanted;             /* a lone write asks the syncer for a checkpoint */
    bool sstop;
    atomic_int wal_frames;  /* frames in the WAL after the last commit */
    atomic_int ckpt_frames; /* wal_frames when the last checkpoint began */

    struct conn r[NREADERS];
    bool rbusy[NREADERS];
    pthread_mutex_t rmu;
    pthread_cond_t rcv;
};

/* Maps an SQLite result to a SKED_E* code, logging unexpected ones once. */
static int dberr(struct conn *c, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
        return SKED_ECONFLICT;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        log_warn("store", "sqlite busy: %s", sqlite3_errmsg(c->db));
        return SKED_EBUSY;
    case SQLITE_FULL:
        log_warn("store", "sqlite: the disk is full: %s", sqlite3_errmsg(c->db));
        return SKED_ENOSPC;
    default:
        log_error("store", "sqlite error %d: %s", rc, sqlite3_errmsg(c->db));
        return SKED_ESTORE;
    }
}

/* The cached, reset statement for sql (a static string), or NULL (logged). */
static sqlite3_stmt *prep(struct conn *c, const char *sql)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->cache[i].sql == sql) {
            sqlite3_reset(c->cache[i].st);
            sqlite3_clear_bindings(c->cache[i].st);
            return c->cache[i].st;
        }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        log_error("store", "prepare failed (%s): %s", sqlite3_errmsg(c->db), sql);
        return NULL;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->cache = xrealloc(c->cache, c->cap * sizeof *c->cache);
    }
    c->cache[c->n++] = (struct stc){sql, st};
    return st;
}

/* Resets every statement still in progress on the connection. */
static void reset_all(struct conn *c)
{
    for (sqlite3_stmt *st = sqlite3_next_stmt(c->db, NULL); st; st = sqlite3_next_stmt(c->db, st))
        if (sqlite3_stmt_busy(st)) sqlite3_reset(st);
}

static void conn_close(struct conn *c)
{
    for (size_t i = 0; i < c->n; i++)
        sqlite3_finalize(c->cache[i].st);
    FREE_NULL(c->cache);
    for (size_t i = 0; i < c->lq.n; i++)
        if (c->lq.q[i]) {
            sqlite3_finalize(((struct lq *)c->lq.q[i])->st);
            free(c->lq.q[i]);
        }
    FREE_NULL(c->lq.q);
    c->lq.n = 0;
    c->n = c->cap = 0;
    if (c->db) sqlite3_close_v2(c->db);
    c->db = NULL;
}

/* Runs a statement that returns no rows we need. */
static int run(struct conn *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) rc = SQLITE_DONE; /* RETURNING rows we do not read */
    int err = rc == SQLITE_DONE ? 0 : dberr(c, rc);
    sqlite3_reset(st);
    return err;
}

/* Runs a fixed statement by its SQL text. */
static int exec_sql(struct conn *c, const char *sql)
{
    sqlite3_stmt *st = prep(c, sql);
    return st ? run(c, st) : SKED_ESTORE;
}

static void bi(sqlite3_stmt *st, int i, int64_t v)
{
    sqlite3_bind_int64(st, i, v);
}

static int64_t ci(sqlite3_stmt *st, int i)
{
    return sqlite3_column_int64(st, i);
}

/* ---- the writer ---------------------------------------------------------- */

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT op";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO op";
static const char SQL_RELEASE[] = "RELEASE op";

static void want_notify(struct sq *s)
{
    s->op_notify = true;
}

/* Wakes the callers of a batch (whose ops live on their callers' stacks:
 * none is touched once posted). */
static void wake_batch(struct wop *batch)
{
    for (struct wop *op = batch, *next; op; op = next) {
        next = op->next;
        sem_post(&op->done);
    }
}

/* Runs a batch and commits it. Returns true when it committed (its callers
 * may wake once it is durable), with *notify set when an op asked for the
 * notify hook; false when it failed as a whole (every op's rc says why).
 *
 * A failing op must leave no trace, and the others of its batch must not
 * go with it. A SAVEPOINT around each op would do that, but it makes
 * SQLite copy every page an op changes into the sub-journal first (past
 * STMT_JOURNAL_SPILL into a temporary file, a pwrite each): a third of the writer's
 * CPU per submit (62-65 -> 45-46 us without). So the batch first runs
 * bare. An op that fails having changed nothing (most do: a missing row, a
 * conflict found by a read, a constraint that aborts its statement, which
 * SQLite undoes by itself) is simply left out; one that fails after a
 * change has the batch rolled back and run again, each op in its own
 * SAVEPOINT (every verb starts from scratch when run again, as
 * PostgreSQL's retries need). */
static bool run_batch(struct sq *s, struct wop *batch, bool *notify)
{
    bool guarded = false; /* each op in a SAVEPOINT */
again:;
    bool lost = false;
    int lost_rc = SKED_ESTORE;
    *notify = false;
    int rc = exec_sql(&s->w, SQL_BEGIN);
    if (rc < 0) {
        for (struct wop *op = batch; op; op = op->next)
            op->rc = rc;
        return false;
    }
    for (struct wop *op = batch; op; op = op->next) {
        if (lost) {
            op->rc = lost_rc;
            continue;
        }
        if (guarded && (rc = exec_sql(&s->w, SQL_SAVEPOINT)) < 0) {
            op->rc = rc;
            continue;
        }
        s->op_notify = false;
        sqlite3_int64 changes = sqlite3_total_changes64(s->w.db);
        op->rc = op->fn(s, op->arg);
        reset_all(&s->w);
        if (sqlite3_get_autocommit(s->w.db)) {
            /* SQLite rolled the whole transaction back (I/O error, disk
             * full): every op of this batch so far is gone with it, and
             * fails with this op's reason when it gave one. */
            lost = true;
            lost_rc = op->rc == SKED_ENOSPC ? SKED_ENOSPC : SKED_ESTORE;
            for (struct wop *p = batch; p != op->next; p = p->next)
                p->rc = lost_rc;
            continue;
        }
        if (guarded) {
            if (op->rc < 0) exec_sql(&s->w, SQL_ROLLBACK_TO);
            exec_sql(&s->w, SQL_RELEASE);
        } else if (op->rc < 0 && sqlite3_total_changes64(s->w.db) != changes) {
            exec_sql(&s->w, SQL_ROLLBACK);
            prom_inc(&store_stats()->batch_redos);
            guarded = true;
            goto again;
        }
        if (op->rc >= 0 && s->op_notify) *notify = true;
    }
    if (lost) return false;
    rc = exec_sql(&s->w, SQL_COMMIT);
    if (rc < 0) {
        exec_sql(&s->w, SQL_ROLLBACK);
        for (struct wop *op = batch; op; op = op->next)
            if (op->rc >= 0) op->rc = rc == SKED_ENOSPC ? SKED_ENOSPC : SKED_ESTORE;
        return false;
    }
    return true;
}

/* ---- the syncer ---------------------------------------------------------- */

/* A committed batch waiting for its sync. */
struct synced {
    struct wop *ops;
    uint64_t seq;  /* its place in s->committed */
    int64_t t0_ns; /* when its COMMIT began */
    int64_t writes;
    bool notify;
    struct synced *next;
};

/* After each commit of the writer connection: how big the WAL is. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    atomic_store(&((struct sq *)arg)->wal_frames, frames);
    return SQLITE_OK;
}

/* Counts a commit of w, in commit order (the caller still holds busy):
 * the number sync_through takes. */
static uint64_t count_commit(struct sq *s)
{
    pthread_mutex_lock(&s->smu);
    uint64_t seq = ++s->committed;
    pthread_mutex_unlock(&s->smu);
    return seq;
}

/* Makes every commit of w up to seq durable. One fdatasync covers every
 * commit made before it starts, so a thread that finds one running waits
 * for it, and syncs again only for what it did not cover.
 *
 * It cannot be undone or retried: after a failed fsync the kernel may have
 * dropped the pages it could not write, so the WAL no longer holds what the
 * store already showed (PostgreSQL panics for the same reason). Stop
 * before anyone is told their write was kept. (The writer connection is
 * NOMUTEX and its file object is synced here while another thread may
 * append to it: with the unix VFS that is an fdatasync on a shared
 * descriptor, and the one flag it may update (whether the directory still
 * needs its one sync after the WAL was created) is only ever cleared,
 * whoever does it.) */
static void sync_through(struct sq *s, uint64_t seq)
{
    pthread_mutex_lock(&s->smu);
    while (s->synced < seq) {
        if (s->syncing) {
            pthread_cond_wait(&s->synced_cv, &s->smu);
            continue;
        }
        s->syncing = true;
        uint64_t target = s->committed;
        pthread_mutex_unlock(&s->smu);
        int rc = s->wal->pMethods->xSync(s->wal, SQLITE_SYNC_NORMAL);
        if (rc != SQLITE_OK) {
            log_error("store",
                      "syncing the SQLite WAL failed (%d): stopping, since the writes it "
                      "held may be lost; restart to recover from the WAL on disk",
                      rc);
            abort();
        }
        pthread_mutex_lock(&s->smu);
        s->synced = target;
        s->syncing = false;
        pthread_cond_broadcast(&s->synced_cv);
    }
    pthread_mutex_unlock(&s->smu);
}

/* Whether CHECKPOINT_FRAMES more frames were appended since the last
 * checkpoint began: checkpoints then run once per that many frames, not
 * after every sync once the WAL is that long (which, beside the writer's
 * appends, it nearly always is). A page that many commits change (the runs
 * indexes' hottest leaves, the counts) is then copied into the database
 * once per checkpoint, not once per commit. That was 200,000 of a run
 * lifecycle's 1.6 million instructions (bench/profile.sh). */
static bool checkpoint_due(struct sq *s)
{
    int frames = atomic_load(&s->wal_frames), at = atomic_load(&s->ckpt_frames);
    if (frames < at) atomic_store(&s->ckpt_frames, at = 0); /* the WAL started again */
    return frames - at >= CHECKPOINT_FRAMES;
}

/* The syncer's checkpoints run beside the appends, so under a steady
 * stream of writes they never reach the end of the WAL, which then only
 * grows. Past WAL_MAX_FRAMES whoever holds busy checkpoints on w itself,
 * between two commits, where nothing is appended: the WAL is then reset by
 * the next write (unless a reader still uses it), and journal_size_limit
 * gives its file back. */
static void wal_cap(struct sq *s)
{
    if (!s->wal || atomic_load(&s->wal_frames) < WAL_MAX_FRAMES) return;
    int logged = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->w.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &logged, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        log_warn("store", "WAL checkpoint failed: %s", sqlite3_errmsg(s->w.db));
    atomic_store(&s->wal_frames, logged > done ? logged - done : 0);
}

/* What a batch of the writer thread leaves for the syncer, or (no syncer)
 * does itself. */
static void batch_committed(struct sq *s, struct wop *batch, int64_t writes, int64_t t0_ns,
                            bool notify)
{
    if (!s->wal) {
        prom_observe(&store_stats()->commit_ns, clock_mono_ns() - t0_ns);
        prom_observe(&store_stats()->commit_writes, writes);
        /* Before the callers wake: when a write returns, its notify has run. */
        if (notify) store__notify(&s->base);
        wake_batch(batch);
        return;
    }
    struct synced *b = xcalloc(1, sizeof *b);
    *b = (struct synced){batch, 0, t0_ns, writes, notify, NULL};
    pthread_mutex_lock(&s->smu);
    b->seq = ++s->committed; /* count_commit's count, under the same lock */
    if (s->stail)
        s->stail->next = b;
    else
        s->shead = b;
    s->stail = b;
    pthread_cond_signal(&s->scv);
    pthread_mutex_unlock(&s->smu);
}

static void *syncer_main(void *arg)
{
    struct sq *s = arg;
    pthread_mutex_lock(&s->smu);
    for (;;) {
        while (!s->shead && !s->ckpt_wanted && !s->sstop)
            pthread_cond_wait(&s->scv, &s->smu);
        if (!s->shead && !s->ckpt_wanted) break;
        struct synced *list = s->shead;
        s->shead = s->stail = NULL;
        s->ckpt_wanted = false;
        pthread_mutex_unlock(&s->smu);

        if (list) {
            uint64_t last = 0;
            for (struct synced *b = list; b; b = b->next)
                last = b->seq;
            sync_through(s, last);
            bool notify = false;
            int64_t now = clock_mono_ns();
            for (struct synced *b = list; b; b = b->next) {
                /* GET /metrics: each batch from its COMMIT to durable. */
                prom_observe(&store_stats()->commit_ns, now - b->t0_ns);
                prom_observe(&store_stats()->commit_writes, b->writes);
                notify = notify || b->notify;
            }
            /* Before the callers wake: when a write returns, its notify has run. */
            if (notify) store__notify(&s->base);
            for (struct synced *b = list, *next; b; b = next) {
                next = b->next;
                wake_batch(b->ops);
                free(b);
            }
        }
        /* Readers that still use old frames make a checkpoint stop short;
         * the next one goes on from there. */
        if (checkpoint_due(s)) {
            int frames = atomic_load(&s->wal_frames), logged = 0, done = 0;
            int rc = sqlite3_wal_checkpoint_v2(s->ck.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &logged,
                                               &done);
            if (rc != SQLITE_OK && rc != SQLITE_BUSY)
                log_warn("store", "WAL checkpoint failed: %s", sqlite3_errmsg(s->ck.db));
            atomic_store(&s->ckpt_frames, frames);
        }
        pthread_mutex_lock(&s->smu);
    }
    pthread_mutex_unlock(&s->smu);
    return NULL;
}

static void *writer_main(void *arg)
{
    struct sq *s = arg;
    pthread_mutex_lock(&s->wmu);
    for (;;) {
        while (s->busy || (!s->head && !s->stop))
            pthread_cond_wait(&s->work_cv, &s->wmu);
        if (!s->head) break; /* stop, and nothing left to do */
        struct wop *batch = s->head;
        s->head = s->tail = NULL;
        s->busy = true;
        pthread_mutex_unlock(&s->wmu);
        int64_t taken = 0;
        for (struct wop *op = batch; op; op = op->next)
            taken++;
        atomic_fetch_sub(&store_stats()->write_queue, taken);

        bool notify;
        int64_t t0 = clock_mono_ns();
        if (run_batch(s, batch, &notify))
            batch_committed(s, batch, taken, t0, notify);
        else
            wake_batch(batch);
        wal_cap(s);
        pthread_mutex_lock(&s->wmu);
        s->busy = false;
    }
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

/* Whether every commit so far is synced: no write is in flight, so one that
 * comes now has nothing to share a commit with. (A sync in progress
 * always has a commit it has not yet marked synced. Lock order: wmu, then
 * smu.) */
static bool store_idle(struct sq *s)
{
    pthread_mutex_lock(&s->smu);
    bool idle = s->synced == s->committed;
    pthread_mutex_unlock(&s->smu);
    return idle;
}

/* A write that found the store idle (store_idle) and nothing queued: its
 * caller runs it alone, commits and syncs, with no thread in between.
 * Returns its result. */
static int lone_write(struct sq *s, struct wop *op)
{
    bool notify;
    int64_t t0 = clock_mono_ns();
    bool committed = run_batch(s, op, &notify);
    uint64_t seq = committed && s->wal ? count_commit(s) : 0;
    wal_cap(s);
    pthread_mutex_lock(&s->wmu);
    s->busy = false;
    /* Queued meanwhile: the writer's now (and at stop it waits for busy). */
    if (s->head || s->stop) pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->wmu);
    if (!committed) return op->rc;
    if (s->wal) sync_through(s, seq);
    prom_observe(&store_stats()->commit_ns, clock_mono_ns() - t0);
    prom_observe(&store_stats()->commit_writes, 1);
    if (notify) store__notify(&s->base);
    if (s->wal && checkpoint_due(s)) {
        pthread_mutex_lock(&s->smu);
        s->ckpt_wanted = true;
        pthread_cond_signal(&s->scv);
        pthread_mutex_unlock(&s->smu);
    }
    return op->rc;
}

/* Runs fn(arg) in a write transaction, alone (lone_write) or queued for
 * the writer, and returns once it is committed and durable (or failed):
 * fn's result, or a store error if the commit failed. */
static int wsubmit(struct sq *s, wfn_t fn, void *arg)
{
    struct wop op = {.fn = fn, .arg = arg};
    pthread_mutex_lock(&s->wmu);
    if (!s->busy && !s->head && store_idle(s)) {
        s->busy = true;
        pthread_mutex_unlock(&s->wmu);
        return lone_write(s, &op);
    }
    sem_init(&op.done, 0, 0);
    atomic_fetch_add(&store_stats()->write_queue, 1);
    if (s->tail)
        s->tail->next = &op;
    else
        s->head = &op;
    s->tail = &op;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->wmu);
    while (sem_wait(&op.done) != 0) /* EINTR: a signal handler ran */
        ;
    sem_destroy(&op.done);
    return op.rc;
}

/* ---- readers ------------------------------------------------------------- */

typedef int (*rfn_t)(struct conn *c, void *arg);

static const char SQL_BEGIN_READ[] = "BEGIN";

/* Runs fn on a pooled read-only connection inside one read transaction. */
static int rd(struct sq *s, rfn_t fn, void *arg)
{
    int i = -1;
    pthread_mutex_lock(&s->rmu);
    for (;;) {
        for (int k = 0; k < NREADERS; k++)
            if (!s->rbusy[k]) {
                i = k;
                break;
            }
        if (i >= 0) break;
        pthread_cond_wait(&s->rcv, &s->rmu);
    }
    s->rbusy[i] = true;
    pthread_mutex_unlock(&s->rmu);

    struct conn *c = &s->r[i];
    int rc = exec_sql(c, SQL_BEGIN_READ);
    if (rc == 0) {
        rc = fn(c, arg);
        reset_all(c);
        int rc2 = exec_sql(c, SQL_COMMIT);
        if (rc >= 0 && rc2 < 0) rc = rc2;
    }

    pthread_mutex_lock(&s->rmu);
    s->rbusy[i] = false;
    pthread_cond_signal(&s->rcv);
    pthread_mutex_unlock(&s->rmu);
    return rc;
}

/* ---- the SQL driver (db.h) --------------------------------------------------- */

struct ldb {
    struct db base;
    struct sq *s;
    struct conn *c;
    bool writer;
};

static const struct db_driver lite_driver;

static db_q_t *lite_q(db_t *db, db_sql_t *sql)
{
    struct conn *c = ((struct ldb *)db)->c;
    size_t slot;
    db_q_t **e = db__slot_entry(&c->lq, sql, &slot);
    struct lq *q = (struct lq *)*e;
    if (!q) {
        q = xcalloc(1, sizeof *q);
        q->base.drv = &lite_driver;
        q->c = c;
        q->base.noop = !*sql->lite;
        if (!q->base.noop) {
            int rc =
                sqlite3_prepare_v3(c->db, sql->lite, -1, SQLITE_PREPARE_PERSISTENT, &q->st, NULL);
            if (rc != SQLITE_OK) {
                log_error("store", "prepare failed (%s): %s", sqlite3_errmsg(c->db), sql->lite);
                sqlite3_finalize(q->st);
                free(q);
                return NULL;
            }
        }
        *e = &q->base;
    } else if (q->st) {
        sqlite3_reset(q->st);
        sqlite3_clear_bindings(q->st);
    }
    q->n = 0;
    return &q->base;
}

static void lite_bind(db_q_t *dq, const db_val_t *v)
{
    struct lq *q = (struct lq *)dq;
    int i = ++q->n;
    if (v->null) {
        sqlite3_bind_null(q->st, i);
        return;
    }
    switch (v->type) {
    case DB_TEXT:
        sqlite3_bind_text(q->st, i, v->s, (int)v->len, SQLITE_STATIC);
        break;
    case DB_INT:
    case DB_BOOL:
        sqlite3_bind_int64(q->st, i, v->i);
        break;
    case DB_REAL:
        sqlite3_bind_double(q->st, i, v->d);
        break;
    case DB_BLOB:
        sqlite3_bind_blob(q->st, i, v->s, (int)v->len, SQLITE_STATIC);
        break;
    }
}

static int lite_step(db_q_t *dq)
{
    struct lq *q = (struct lq *)dq;
    int rc = sqlite3_step(q->st);
    if (rc == SQLITE_ROW) return 1;
    if (rc == SQLITE_DONE) return 0;
    return dberr(q->c, rc);
}

static int64_t lite_changes(db_q_t *dq)
{
    return sqlite3_changes64(((struct lq *)dq)->c->db);
}

static bool lite_col_null(db_q_t *dq, int col)
{
    return sqlite3_column_type(((struct lq *)dq)->st, col) == SQLITE_NULL;
}

static int64_t lite_col_int(db_q_t *dq, int col)
{
    return sqlite3_column_int64(((struct lq *)dq)->st, col);
}

static double lite_col_real(db_q_t *dq, int col)
{
    return sqlite3_column_double(((struct lq *)dq)->st, col);
}

static const char *lite_col_text(db_q_t *dq, int col)
{
    return (const char *)sqlite3_column_text(((struct lq *)dq)->st, col);
}

static const void *lite_col_blob(db_q_t *dq, int col, size_t *len)
{
    sqlite3_stmt *st = ((struct lq *)dq)->st;
    const void *p = sqlite3_column_blob(st, col);
    *len = (size_t)sqlite3_column_bytes(st, col);
    return p;
}

static void lite_notify(db_t *db)
{
    struct ldb *l = (struct ldb *)db;
    if (l->writer) want_notify(l->s);
}

struct lite_call {
    struct sq *s;
    db_fn fn;
    void *arg;
};

static int lite_write(struct sq *s, void *arg)
{
    struct lite_call *k = arg;
    struct ldb db = {{&lite_driver, &s->base}, s, &s->w, true};
    return k->fn(&db.base, k->arg);
}

static int lite_read(struct conn *c, void *arg)
{
    struct lite_call *k = arg;
    struct ldb db = {{&lite_driver, &k->s->base}, k->s, c, false};
    return k->fn(&db.base, k->arg);
}

static int lite_tx(store_t *st, db_tx_t kind, db_fn fn, void *arg, int64_t *now_ms)
{
    struct lite_call k = {(struct sq *)st, fn, arg};
    (void)now_ms; /* the caller's clock is the authority here */
    return kind == DB_WRITE || kind == DB_WRITE1 ? wsubmit(k.s, lite_write, &k)
                                                 : rd(k.s, lite_read, &k);
}

static void sq_close(store_t *st);

static const struct db_driver lite_driver = {
    .name = "sqlite",
    .close = sq_close,
    .tx = lite_tx,
    .q = lite_q,
    .bind = lite_bind,
    .step = lite_step,
    .changes = lite_changes,
    .col_null = lite_col_null,
    .col_int = lite_col_int,
    .col_real = lite_col_real,
    .col_text = lite_col_text,
    .col_blob = lite_col_blob,
    .notify = lite_notify,
};

/* ---- lifecycle ops ------------------------------------------------------- */

static void sq_close(store_t *st)
{
    struct sq *s = (struct sq *)st;
    if (s->writer_started) {
        pthread_mutex_lock(&s->wmu);
        s->stop = true;
        pthread_cond_signal(&s->work_cv);
        pthread_mutex_unlock(&s->wmu);
        pthread_join(s->writer, NULL);
    }
    if (s->syncer_started) { /* after the writer: it syncs what the writer left */
        pthread_mutex_lock(&s->smu);
        s->sstop = true;
        pthread_cond_signal(&s->scv);
        pthread_mutex_unlock(&s->smu);
        pthread_join(s->syncer, NULL);
    }
    conn_close(&s->ck);
    for (int i = 0; i < NREADERS; i++)
        conn_close(&s->r[i]);
    conn_close(&s->w);
    pthread_mutex_destroy(&s->wmu);
    pthread_cond_destroy(&s->work_cv);
    pthread_mutex_destroy(&s->smu);
    pthread_cond_destroy(&s->scv);
    pthread_cond_destroy(&s->synced_cv);
    pthread_mutex_destroy(&s->rmu);
    pthread_cond_destroy(&s->rcv);
    store__fini(&s->base);
    free(s->path);
    free(s);
}

/* ---- schema version ------------------------------------------------------- */

static const char SQL_VERSION_TABLE[] =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)";
static const char SQL_VERSION_GET[] = "SELECT version FROM schema_version";
static const char SQL_VERSION_INIT[] = "INSERT INTO schema_version VALUES (0)";
static const char SQL_VERSION_SET[] = "UPDATE schema_version SET version = ?1";

/* Brings the schema up to store__schema_version in one transaction, so a crash
 * mid-migration leaves the old version intact. Concurrent openers are
 * serialised by BEGIN IMMEDIATE. */
static int migrate(struct conn *c, char **errmsg)
{
    int rc = exec_sql(c, SQL_BEGIN);
    if (rc < 0) goto fail;
    if ((rc = exec_sql(c, SQL_VERSION_TABLE)) < 0) goto fail;
    sqlite3_stmt *q = prep(c, SQL_VERSION_GET);
    if (!q) {
        rc = SKED_ESTORE;
        goto fail;
    }
    int version = 0;
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        version = (int)ci(q, 0);
        sqlite3_reset(q);
    } else if (rc == SQLITE_DONE) {
        if ((rc = exec_sql(c, SQL_VERSION_INIT)) < 0) goto fail;
    } else {
        rc = dberr(c, rc);
        goto fail;
    }
    if (version > store__schema_version) {
        rc = SKED_ESCHEMA;
        if (errmsg)
            *errmsg = xasprintf("store schema version %d is newer than this sked's %d", version,
                                store__schema_version);
        goto fail;
    }
    for (int v = version; v < store__schema_version; v++) {
        char *err = NULL;
        /* Migrations are multi-statement scripts: sqlite3_exec, not the
         * statement cache. */
        if (sqlite3_exec(c->db, store__migrations[v].lite, NULL, NULL, &err) != SQLITE_OK) {
            if (errmsg) *errmsg = xasprintf("migration %d failed: %s", v + 1, err);
            sqlite3_free(err);
            rc = SKED_ESTORE;
            goto fail;
        }
        log_info("store", "migrated schema to version %d", v + 1);
    }
    if (version < store__schema_version) {
        if (!(q = prep(c, SQL_VERSION_SET))) {
            rc = SKED_ESTORE;
            goto fail;
        }
        bi(q, 1, store__schema_version);
        if ((rc = run(c, q)) < 0) goto fail;
    }
    if ((rc = exec_sql(c, SQL_COMMIT)) < 0) goto fail;
    return 0;
fail:
    reset_all(c);
    if (!sqlite3_get_autocommit(c->db)) exec_sql(c, SQL_ROLLBACK);
    if (errmsg && !*errmsg) *errmsg = xasprintf("migration failed: %s", sqlite3_errmsg(c->db));
    return rc;
}

/* Opens one connection with the settings every connection needs. */
/* sked_labels_ok(labels, constraints): store__labels_satisfy as an SQL
 * function, so the claim scan filters on constraints as PostgreSQL's does
 * with array containment, instead of passing candidates over afterwards. */
static void sql_labels_ok(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    const char *labels = (const char *)sqlite3_value_text(argv[0]);
    const char *constraints = (const char *)sqlite3_value_text(argv[1]);
    (void)argc;
    sqlite3_result_int(ctx,
                       store__labels_satisfy(labels ? labels : "", constraints ? constraints : ""));
}

static int conn_open(struct conn *c, const char *path, bool writer, char **errmsg)
{
    int flags = SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY);
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        if (errmsg)
            *errmsg = xasprintf("cannot open %s: %s", path,
                                c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        return SKED_ESTORE;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    /* The claim scan asks it of each candidate, in SQL (Q_CLAIM_ROWS, lease.c). */
    sqlite3_create_function(c->db, "sked_labels_ok", 2,
                            SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                            sql_labels_ok, NULL, NULL);
    if (!writer) return 0;
    /* WAL: readers never block the writer; synchronous=FULL: a commit is on
     * disk before it returns (promise §5.1). Not temp_store=MEMORY, though
     * it kept a batch's savepoint journal (the group commit's, above) out
     * of a temporary file: SQLite's in-memory journal is a list of 1 KiB
     * chunks that the end of every statement walks from the start to
     * truncate it, quadratic in the size of an operation. Firing 10 arrays
     * of 10,000 in one pass kept the writer busy for over 100 s, answering
     * nothing (bench/burst.c); with the file, 5 s. */
    static const char *const pragmas[] = {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
                                          "PRAGMA foreign_keys=ON"};
    for (size_t i = 0; i < sizeof pragmas / sizeof *pragmas; i++) {
        char *err = NULL;
        if (sqlite3_exec(c->db, pragmas[i], NULL, NULL, &err) != SQLITE_OK) {
            if (errmsg) *errmsg = xasprintf("%s: %s", pragmas[i], err ? err : "failed");
            sqlite3_free(err);
            return SKED_ESTORE;
        }
    }
    return 0;
}

/* Starts the syncer once migrations have run (so the WAL is open): the
 * writer then commits with synchronous=NORMAL and leaves the WAL's sync,
 * and checkpoints, to it. Without a WAL file to sync, the writer keeps
 * synchronous=FULL. */
static const char SQL_JOURNAL_MODE[] = "PRAGMA journal_mode";

static int syncer_setup(struct sq *s, const char *path, char **errmsg)
{
    /* Only a WAL is synced this way: in any other journal mode the pointer
     * below names a rollback journal that comes and goes. */
    sqlite3_stmt *st = prep(&s->w, SQL_JOURNAL_MODE);
    bool wal_mode = st && sqlite3_step(st) == SQLITE_ROW &&
                    !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
    if (st) sqlite3_reset(st);
    sqlite3_file *wal = NULL;
    if (!wal_mode ||
        sqlite3_file_control(s->w.db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK ||
        !wal || !wal->pMethods)
        return 0;
    int rc = conn_open(&s->ck, path, true, errmsg);
    if (rc < 0) return rc;
    static const char *const pragmas[] = {"PRAGMA wal_autocheckpoint=0",
                                          "PRAGMA synchronous=NORMAL",
                                          "PRAGMA journal_size_limit=67108864"};
    for (size_t i = 0; i < sizeof pragmas / sizeof *pragmas; i++)
        if ((rc = exec_sql(&s->w, pragmas[i])) < 0) {
            if (errmsg) *errmsg = xasprintf("%s: %s", pragmas[i], sqlite3_errmsg(s->w.db));
            return rc;
        }
    sqlite3_wal_hook(s->w.db, wal_hook, s);
    s->wal = wal;
    if (pthread_create(&s->syncer, NULL, syncer_main, s) != 0) {
        if (errmsg) *errmsg = xstrdup("cannot start the store syncer thread");
        return SKED_ESTORE;
    }
    s->syncer_started = true;
    return 0;
}

/* Statement journals: SQLite's default keeps one in memory up to 64 KiB,
 * then moves it to a temporary file, a pwrite per page after that. A
 * statement that fires triggers (most writes here: events, counts) or may
 * abort half-way copies every existing page it changes into one first, and
 * a job's insert changes ~15 index leaves: past 64 KiB. 124 KiB keeps most
 * in memory: the writer's CPU per batch job 31-37 -> 18-23 us, alternated.
 *
 * It must stay under 128 KiB. When a journal spills, SQLite writes its
 * memory to the file one chunk at a time, and a chunk is the spill size;
 * but the unix VFS writes at most 128 KiB - 1 bytes a call (os_unix.c
 * masks the length: the pager never writes more than a 64 KiB page), so
 * a 128 KiB chunk became a write of 0 bytes, read back as SQLITE_FULL.
 * With 256 KiB to 4 MiB, a burst's fire (ten 10,000-member arrays in one
 * transaction) failed with "database or disk is full" on a disk three
 * quarters empty (seen as pwrite64(fd, "", 0, 0) = 0 in strace). */
#define STMT_JOURNAL_SPILL (124 << 10)
_Static_assert(STMT_JOURNAL_SPILL < 128 << 10, "SQLite's unix VFS writes < 128 KiB at a time");

/* Before SQLite's first use in the process. If SQLite was initialised
 * already (a test's VFS), its defaults stay.
 *
 * No memory statistics: with them every allocation and free SQLite makes
 * takes one process-wide mutex to count it, and Debian's SQLite is built
 * without lookaside memory, so each statement's records are malloc'd and
 * freed (8 a statement for a job's insert). Nothing reads the statistics
 * (sqlite3_memory_used). The writer's instructions per batch job 87.2k ->
 * 81.1k (callgrind). */
static void sqlite_setup(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, STMT_JOURNAL_SPILL);
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int store__sqlite_open(const char *path, store_t **out, char **errmsg)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_setup);
    struct sq *s = xcalloc(1, sizeof *s);
    int rc = 0;
    store__init(&s->base, &lite_driver);
    s->path = xstrdup(path);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_mutex_init(&s->smu, NULL);
    pthread_cond_init(&s->scv, NULL);
    pthread_cond_init(&s->synced_cv, NULL);
    pthread_mutex_init(&s->rmu, NULL);
    pthread_cond_init(&s->rcv, NULL);

    if ((rc = conn_open(&s->w, path, true, errmsg)) < 0) goto fail;
    if ((rc = migrate(&s->w, errmsg)) < 0) goto fail;
    /* Readers open after the writer: the WAL and its index exist by now. */
    for (int i = 0; i < NREADERS; i++)
        if ((rc = conn_open(&s->r[i], path, false, errmsg)) < 0) goto fail;
    if ((rc = syncer_setup(s, path, errmsg)) < 0) goto fail;
    if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
        if (errmsg) *errmsg = xstrdup("cannot start the store writer thread");
        rc = SKED_ESTORE;
        goto fail;
    }
    s->writer_started = true;
    *out = &s->base;
    return 0;
fail:
    sq_close(&s->base);
    return rc;
}
