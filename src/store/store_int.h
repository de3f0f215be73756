/*
 * Internals shared by the store's files: the backend function table and the
 * common header every backend's handle starts with. The verbs of store.h
 * are written once over the SQL driver (db.h, verbs.h). A driver
 * (store_sqlite.c, store_pg.c) fills one static struct db_driver (which
 * also carries its name, close and the authoritative clock) and embeds
 * `struct store` as the first member of its handle.
 *
 * Nothing outside src/store/ and the store conformance suite includes this.
 */
#ifndef SKED_STORE_STORE_INT_H
#define SKED_STORE_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "store/store.h"

/* The common head of every backend's handle (first member). */
struct store {
    const struct db_driver *db; /* the SQL driver the verbs run on (db.h) */
    pthread_mutex_t notify_mu;  /* guards notify/notify_arg against store_set_notify */
    store_notify_fn notify;
    void *notify_arg;
    int64_t log_cap;          /* bytes of log kept per run (STORE_LOG_CAP_DEFAULT) */
    pthread_mutex_t ready_mu; /* guards the two below (store_ready) */
    int64_t ready_at_ns;      /* monotonic time of the last readiness probe; 0 = none */
    atomic_int ready_rc;      /* its answer (read without the lock while a probe runs) */
    pthread_mutex_t ev_mu;    /* guards the event horizon below (events.c) */
    int64_t ev_final;         /* every event id <= this is final */
    int64_t ev_pend_id;       /* -1, or a max id seen while transactions were running ... */
    int64_t ev_pend_xid;      /* ... and the next xid then: final once xmin reaches it */
};

/* Initialises / destroys the common head. Backends call these from their
 * open and close. */
void store__init(store_t *st, const struct db_driver *db);
void store__fini(store_t *st);

/* Calls the notify hook, if any (from the committing thread, after commit). */
void store__notify(store_t *st);

/* Test seam: overwrites the stored schema version, so the conformance
 * suite can check that a newer store is refused. */
int store__set_schema_version(store_t *st, int version);

/* The schema, one step per version, in both dialects (schema.c). */
struct store_migration {
    const char *lite, *pg;
};
extern const struct store_migration store__migrations[];
extern const int store__schema_version;

/* The SQLite backend's opener: path is what follows "sqlite:". */
int store__sqlite_open(const char *path, store_t **out, char **errmsg);
int store__pg_open(const char *url, store_t **out, char **errmsg);

/* Opaque paging cursors: the sort key of the last row of a page, (ms, id).
 * encode returns a new string (caller frees); decode returns 0 or
 * SKED_EINVAL for a malformed cursor, filling id[SKED_ID_LEN]. */
char *store__cursor_encode(int64_t ms, const char *id);
int store__cursor_decode(const char *cursor, int64_t *ms, char id[SKED_ID_LEN]);

/* 1 if every "k=v" of constraints (comma-separated) appears in labels. */
bool store__labels_satisfy(const char *labels, const char *constraints);
/* Whether a worker with plugin types `types` (",a,b,"; "" = none) runs jobs
 * of type: shell and http every worker does. */
bool store__type_runs(const char *types, const char *type);

/* 1 if item is one of the comma-separated list (queues, namespaces). */
bool store__listed(const char *list, const char *item);

/* A uniform draw in [0, 1) from libsodium: the jitter of a retry's delay
 * (core/attempt.h's unit). */
double store__jitter_unit(void);

/* A new fencing token: 53 random bits (libsodium), so a token cannot be
 * guessed from another one, in practice never repeats, and survives JSON
 * parsers that read numbers as doubles. */
int64_t store__fence_new(void);

/* The run's reason when an attempt is undone as not started. */
const char *store__not_started_reason(bool refused);

/* Whether a caller with token `owner` (NULL = anyone) may act for a worker
 * registered by `worker_owner`. A worker registered before workers had
 * owners ("") may be acted for by any caller until a worker token adopts it
 * (its next claim or heartbeat binds it: see the worker touch). */
bool store__owner_ok(const char *owner, const char *worker_owner);

/* Aging: the effective priority of a run that has been due since
 * not_before_ms: +1 per minute waited, capped at +STORE__AGING_CAP. */
#define STORE__AGING_CAP 100
int64_t store__effective_priority(int priority, int64_t not_before_ms, int64_t now_ms);

/* The engine's clock in ms, in SQL, which every event row is stamped
 * with (the triggers of schema.c, and the inserts of the events no
 * trigger writes): SQLite's is the local clock (as store_now_ms);
 * PostgreSQL's the database's. */
#define EV_NOW_LITE_EXPR "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
#define EV_NOW_PG        "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"

#endif
