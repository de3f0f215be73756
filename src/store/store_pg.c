/*
 * The PostgreSQL backend of the store (store.h), for clusters: N sked
 * servers share one database and nothing else, so every race between them
 * is settled here, inside PostgreSQL, with row locks, unique keys and
 * compare-and-set updates. store_sqlite.c is the reference for semantics;
 * this file keeps the same schema shape and the same decisions, using the
 * shared helpers of store_int.h (retry decisions, aging, label matching).
 *
 * Connections. A small pool (default 8, `sked_pool=N` in the URL) of libpq
 * connections, opened on demand and guarded by a mutex and a condition
 * variable. Statements are prepared once per connection, on first use, and
 * named after their index in `stmts[]`. Every connection runs with
 * synchronous_commit=on, so a verb that returns 0 has its commit on disk
 * (promise §5.1); PostgreSQL's WAL flush shares one fsync among concurrent
 * commits, which is our group commit.
 *
 * Transactions. Each verb is one transaction (`tx()`), READ COMMITTED for
 * writes: rows a verb decides on are locked first (FOR NO KEY UPDATE, or
 * FOR UPDATE SKIP LOCKED where another server may be working on the same
 * rows: due schedules, claimable runs, expired leases, prunable runs), so
 * the decision holds until commit. A deadlock or serialization failure
 * rolls the verb back and runs it again; a connection found dead before
 * anything was sent is reset and the verb retried.
 *
 * Wake-ups across servers. A write that makes work claimable or changes a
 * run's state calls pg_notify('sked_wake', <this handle's id>) inside its
 * transaction, so the notification is delivered exactly when (and only if)
 * it commits. A dedicated listener connection and thread LISTENs on
 * sked_wake and calls store__notify() for every notification from another
 * handle; our own commits call store__notify() directly.
 *
 * Clock. Verbs take now_ms from the caller, as store.h says, so tests can
 * set time. With `sked_clock=db` in the URL every transaction instead uses
 * the database's now() (one clock for all servers, whatever their drift):
 * the value is read in the same round trip as BEGIN and replaces now_ms.
 *
 * Schema: versioned migrations in `migrations[]`, recorded in
 * schema_version, applied under a session advisory lock so servers starting
 * together migrate once; a newer schema is refused with SKED_ESCHEMA.
 * Enums are stored as their integer values, as in the SQLite backend.
 */
#include "store/store.h"
#include "store/store_int.h"
#include "store/db.h"
#include "common/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"

#define POOL_DEFAULT      8
#define POOL_MAX          128
#define TX_TRIES          10 /* deadlocks and serialization failures are retried this often */
#define REAP_BATCH        256
#define CLAIM_WINDOW_MAX  4096
#define LISTEN_RETRY_MS   1000 /* between listener reconnects */
#define CONNECT_TIMEOUT_S "10" /* unless the URL says otherwise */
#define WAKE_CHANNEL      "sked_wake"
/* Advisory lock class of sked ('sked' in ASCII); the second key is 0 for
 * migrations and hashtext(job_id) for per-job claim decisions. */
#define LOCK_CLASS "1936417636"

/* ---- schema -------------------------------------------------------------- */

/* Run states as stored (run_state_t): 0 scheduled, 1 waiting, 2 pending,
 * 3 running, 4.. terminal; job states: 1 paused, 3 deleted; worker states:
 * 0 active, 1 draining, 2 lost, 3 gone. The partial indexes below spell
 * these numbers and the queries repeat the same predicates, so the planner
 * can use them. */
static const char *const migrations[] = {
    /* 1: the initial schema. */
    "CREATE SEQUENCE fence_seq;"

    "CREATE TABLE jobs ("
    " id text PRIMARY KEY, ns text NOT NULL, owner text NOT NULL, name text NOT NULL,"
    " queue text NOT NULL, spec_json text NOT NULL, constraints text NOT NULL,"
    " tags text NOT NULL, priority integer NOT NULL, state integer NOT NULL,"
    " overlap integer NOT NULL, misfire integer NOT NULL, catch_up_window_ms bigint NOT NULL,"
    " max_concurrency integer NOT NULL, timeout_ms bigint NOT NULL,"
    " retry_max_attempts integer NOT NULL, retry_initial_ms bigint NOT NULL,"
    " retry_max_ms bigint NOT NULL, retry_multiplier double precision NOT NULL,"
    " retry_jitter boolean NOT NULL, version bigint NOT NULL,"
    " created_ms bigint NOT NULL, updated_ms bigint NOT NULL);"
    /* Names are unique among jobs that are not deleted. */
    "CREATE UNIQUE INDEX jobs_ns_name ON jobs (ns, name) WHERE state <> 3;"
    "CREATE INDEX jobs_created ON jobs (created_ms, id);"

    "CREATE TABLE schedules ("
    " id text PRIMARY KEY, job_id text NOT NULL REFERENCES jobs (id), pos integer NOT NULL,"
    " kind integer NOT NULL, expr text NOT NULL, timezone text NOT NULL,"
    " start_ms bigint NOT NULL, end_ms bigint NOT NULL, jitter_ms bigint NOT NULL,"
    " anchor_ms bigint NOT NULL,"
    " next_fire_ms bigint," /* NULL = exhausted */
    " last_fire_ms bigint NOT NULL,"
    " active boolean NOT NULL);" /* true while the job is active */
    "CREATE INDEX schedules_job ON schedules (job_id, pos);"
    "CREATE INDEX schedules_due ON schedules (next_fire_ms) WHERE active;"

    "CREATE TABLE runs ("
    " id text PRIMARY KEY, job_id text NOT NULL REFERENCES jobs (id),"
    " schedule_id text," /* NULL for triggered runs; no FK: schedules are replaced */
    " worker_id text NOT NULL DEFAULT '', state integer NOT NULL,"
    " fire_ms bigint NOT NULL, not_before_ms bigint NOT NULL, priority integer NOT NULL,"
    " queue text NOT NULL,"
    " held boolean NOT NULL DEFAULT false," /* its job is paused: out of the claim index */
    " attempt integer NOT NULL DEFAULT 0, fence bigint NOT NULL DEFAULT 0,"
    " lease_expires_ms bigint NOT NULL DEFAULT -1,"
    " cancel_requested boolean NOT NULL DEFAULT false, created_ms bigint NOT NULL,"
    " started_ms bigint NOT NULL DEFAULT -1, finished_ms bigint NOT NULL DEFAULT -1,"
    " exit_code integer NOT NULL DEFAULT -1, signal integer NOT NULL DEFAULT 0, reason text,"
    " log_bytes bigint NOT NULL DEFAULT 0, log_truncated boolean NOT NULL DEFAULT false,"
    " UNIQUE (schedule_id, fire_ms));" /* promise §5.2 */
    /* The claim order: per queue, priority levels, then oldest due first. */
    "CREATE INDEX runs_claim ON runs (queue, priority, not_before_ms)"
    " WHERE state IN (0, 2) AND NOT held;"
    "CREATE INDEX runs_due ON runs (not_before_ms) WHERE state IN (0, 2) AND NOT held;"
    "CREATE INDEX runs_job ON runs (job_id, fire_ms, id);"
    "CREATE INDEX runs_fire ON runs (fire_ms, id);"
    "CREATE INDEX runs_running_job ON runs (job_id) WHERE state = 3;"
    "CREATE INDEX runs_running_worker ON runs (worker_id) WHERE state = 3;"
    "CREATE INDEX runs_lease ON runs (lease_expires_ms) WHERE state = 3;"
    "CREATE INDEX runs_finished ON runs (finished_ms) WHERE state >= 4;"

    "CREATE TABLE attempts ("
    " run_id text NOT NULL REFERENCES runs (id) ON DELETE CASCADE, n integer NOT NULL,"
    " worker_id text NOT NULL, fence bigint NOT NULL, started_ms bigint NOT NULL,"
    " finished_ms bigint NOT NULL DEFAULT -1, outcome integer NOT NULL DEFAULT -1,"
    " exit_code integer NOT NULL DEFAULT -1, signal integer NOT NULL DEFAULT 0, reason text,"
    " reported boolean NOT NULL DEFAULT false," /* finished by the worker's complete */
    " PRIMARY KEY (run_id, n));"

    "CREATE TABLE log_chunks ("
    " run_id text NOT NULL REFERENCES runs (id) ON DELETE CASCADE, attempt integer NOT NULL,"
    " seq bigint NOT NULL, stream integer NOT NULL, at_ms bigint NOT NULL,"
    " data bytea NOT NULL, PRIMARY KEY (run_id, attempt, seq));"

    "CREATE TABLE workers ("
    " id text PRIMARY KEY, name text NOT NULL, host text NOT NULL, labels text NOT NULL,"
    " queues text NOT NULL, slots integer NOT NULL, state integer NOT NULL,"
    " registered_ms bigint NOT NULL, heartbeat_ms bigint NOT NULL);"
    "CREATE INDEX workers_name ON workers (name);"
    "CREATE INDEX workers_alive ON workers (heartbeat_ms) WHERE state IN (0, 1);"

    "CREATE TABLE tokens ("
    " id text PRIMARY KEY, hash text NOT NULL UNIQUE, name text NOT NULL,"
    " role integer NOT NULL, ns text NOT NULL, created_ms bigint NOT NULL,"
    " expires_ms bigint NOT NULL, revoked boolean NOT NULL);"

    "CREATE TABLE idempotency ("
    " owner text NOT NULL, key text NOT NULL, job_id text NOT NULL,"
    " created_ms bigint NOT NULL, PRIMARY KEY (owner, key));"
    "CREATE INDEX idempotency_created ON idempotency (created_ms);",

    /* 2: users, token ownership and use, the audit log. A user's tokens
     * take the user's current role and namespaces (see token lookup). */
    "CREATE TABLE users ("
    " name text PRIMARY KEY, pwhash text NOT NULL, role integer NOT NULL,"
    " namespaces text NOT NULL, created_ms bigint NOT NULL, updated_ms bigint NOT NULL);"
    "ALTER TABLE tokens ADD COLUMN user_name text;"
    "ALTER TABLE tokens ADD COLUMN last_used_ms bigint;"
    "CREATE INDEX tokens_created ON tokens (created_ms, id);"
    "CREATE INDEX tokens_user ON tokens (user_name);"
    "CREATE TABLE audit ("
    " id text PRIMARY KEY, at_ms bigint NOT NULL, actor text NOT NULL, role text NOT NULL,"
    " method text NOT NULL, route text NOT NULL, target text NOT NULL, ns text NOT NULL,"
    " source text NOT NULL, status integer NOT NULL);"
    "CREATE INDEX audit_at ON audit (at_ms, id);"
    "CREATE INDEX audit_actor ON audit (actor, at_ms, id);",

    /* 3: claims are confirmed (unconfirmed until the worker reports the
     * attempt started); workers are bound to the token that registered
     * them and to its namespace. A worker registered before this has owner
     * '': the first worker token to claim or heartbeat for it adopts it.
     * Fences are random now (store__fence_new). */
    "ALTER TABLE runs ADD COLUMN unconfirmed boolean NOT NULL DEFAULT false;"
    "ALTER TABLE workers ADD COLUMN owner text NOT NULL DEFAULT '';"
    "ALTER TABLE workers ADD COLUMN ns text NOT NULL DEFAULT '';"
    /* The readiness probe's write (store_ready). */
    "CREATE TABLE health (id integer PRIMARY KEY, probed_ms bigint NOT NULL);"
    /* The missed-fire ledger: a stretch of misfires per row. */
    "CREATE TABLE misses ("
    " id text PRIMARY KEY, job_id text NOT NULL, schedule_id text NOT NULL,"
    " first_ms bigint NOT NULL, last_ms bigint NOT NULL, count bigint NOT NULL,"
    " reason text NOT NULL, created_ms bigint NOT NULL);"
    "CREATE INDEX misses_job ON misses (job_id, last_ms, id);"
    "CREATE INDEX misses_sched ON misses (schedule_id, last_ms);",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))

/* ---- statements ------------------------------------------------------------ */

#define JOB_COLS                                                                                   \
    "id, ns, owner, name, queue, spec_json, constraints, tags, priority, state, overlap,"          \
    " misfire, catch_up_window_ms, max_concurrency, timeout_ms, retry_max_attempts,"               \
    " retry_initial_ms, retry_max_ms, retry_multiplier, retry_jitter, version, created_ms,"        \
    " updated_ms"
#define SCHED_COLS                                                                                 \
    "id, job_id, kind, expr, timezone, start_ms, end_ms, jitter_ms, anchor_ms, next_fire_ms,"      \
    " last_fire_ms"
#define RUN_COLS                                                                                   \
    "id, job_id, schedule_id, worker_id, state, fire_ms, not_before_ms, priority, queue,"          \
    " attempt, fence, lease_expires_ms, cancel_requested, created_ms, started_ms, finished_ms,"    \
    " exit_code, signal, reason, log_bytes, log_truncated"
#define WORKER_COLS                                                                                \
    "w.id, w.name, w.host, w.labels, w.queues, w.slots, w.state, w.registered_ms,"                 \
    " w.heartbeat_ms, (SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.state = 3)"

#define TOKEN_COLS "id, name, role, ns, created_ms, expires_ms, revoked, user_name, last_used_ms"
#define TOKEN_LIST_WHERE                                                                           \
    " WHERE ($1::text IS NULL OR (CASE WHEN $1 = '' THEN user_name IS NULL"                        \
    " ELSE user_name = $1 END)) AND ($2::text IS NULL OR name = $2)"
#define USER_COLS        "name, pwhash, role, namespaces, created_ms, updated_ms"
#define AUDIT_COLS       "id, at_ms, actor, role, method, route, target, ns, source, status"
#define AUDIT_LIST_WHERE " WHERE at_ms >= $1::bigint AND ($2::text IS NULL OR actor = $2)"

/* The job filter of job_list; the state test defaults to "not deleted". */
#define JOB_LIST_WHERE                                                                             \
    " WHERE ($1::text IS NULL OR ns = $1) AND (CASE WHEN $2::integer IS NULL THEN state <> 3"      \
    " ELSE state = $2 END) AND ($3::text IS NULL OR queue = $3)"                                   \
    " AND ($4::text IS NULL OR strpos(name, $4) > 0)"                                              \
    " AND ($5::text IS NULL OR strpos(tags, ',' || $5 || ',') > 0)"                                \
    " AND ($7::text IS NULL OR ns = ANY (string_to_array($7, ',')))"
#define RUN_LIST_TAIL                                                                              \
    " AND ($2::integer IS NULL OR state = $2) AND fire_ms >= $3::bigint AND fire_ms < $4::bigint"  \
    " AND ($6::text IS NULL OR job_id IN (SELECT id FROM jobs"                                     \
    " WHERE ns = ANY (string_to_array($6, ','))))"
#define RUN_LIST_AFTER " AND (fire_ms, id) < ($7::bigint, $8::text)"
#define RUN_LIST_ORDER " ORDER BY fire_ms DESC, id DESC LIMIT $5"

enum q {
    Q_PING,
    Q_IDEM_CLAIM,
    Q_IDEM_GET,
    Q_JOB_INSERT,
    Q_SCHED_INSERT,
    Q_SCHED_UPDATE,
    Q_RUN_INSERT,
    Q_JOB_GET,
    Q_SCHED_OF_JOB,
    Q_JOB_LIST,
    Q_JOB_LIST_AFTER,
    Q_JOB_UPDATE,
    Q_JOB_VERSION,
    Q_RUNS_RETARGET,
    Q_SCHED_UNMARK,
    Q_SCHED_DROP_UNMARKED,
    Q_JOB_STATE_LOCK,
    Q_JOB_SET_STATE,
    Q_SCHED_ACTIVE,
    Q_RUNS_HOLD,
    Q_RUNS_CANCEL_WAITING,
    Q_RUNS_CANCEL_RUNNING,
    Q_DUE,
    Q_FIRE_CAS,
    Q_JOB_STATE_SHARE,
    Q_NEXT_CLAIMABLE,
    Q_NEXT_FIRE,
    Q_RUN_GET,
    Q_ATTEMPTS,
    Q_RUN_LIST_JOB,
    Q_RUN_LIST_JOB_AFTER,
    Q_RUN_LIST_ALL,
    Q_RUN_LIST_ALL_AFTER,
    Q_RUN_STATE_LOCK,
    Q_RUN_CANCEL_NOW,
    Q_RUN_CANCEL_ASK,
    Q_WORKER_REUSE,
    Q_WORKER_INSERT,
    Q_WORKER_REPLACE,
    Q_WORKER_GET,
    Q_WORKER_LIST,
    Q_WORKER_LIST_AFTER,
    Q_WORKER_SET_STATE,
    Q_WORKER_TOUCH,
    Q_CLAIM_LEVEL,
    Q_CLAIM_ROWS,
    Q_CLAIM_JOB,
    Q_JOB_LOCK,
    Q_JOB_RUNNING,
    Q_RUN_SKIP_OVERLAP,
    Q_RUNS_REPLACE,
    Q_RUN_LEASE,
    Q_RUNS_RENEW,
    Q_RUN_FOR_FINISH,
    Q_RUN_UNCLAIM,
    Q_MISS_EXTEND,
    Q_MISS_INSERT,
    Q_MISS_LIST,
    Q_PROBE,
    Q_ATTEMPT_DROP,
    Q_LOG_DROP,
    Q_ATTEMPT_REPORTED,
    Q_ATTEMPT_FINISH,
    Q_RUN_FINISH,
    Q_EXPIRED,
    Q_WORKERS_LOSE,
    Q_TOKEN_INSERT,
    Q_TOKEN_LOOKUP,
    Q_TOKEN_COUNT,
    Q_TOKEN_GET,
    Q_TOKEN_LIST,
    Q_TOKEN_LIST_AFTER,
    Q_TOKEN_REVOKE,
    Q_TOKEN_TOUCH,
    Q_USER_INSERT,
    Q_USER_GET,
    Q_USER_LIST,
    Q_USER_UPDATE,
    Q_USER_DELETE,
    Q_USER_TOKENS_REVOKE,
    Q_AUDIT_INSERT,
    Q_AUDIT_LIST,
    Q_AUDIT_LIST_AFTER,
    Q_JOB_SCOPE,
    Q_VERSION_SET,
    Q_NOTIFY,
    Q_COUNT
};

static const char *const stmts[Q_COUNT] = {
    [Q_PING] = "SELECT 1",

    /* jobs */
    [Q_IDEM_CLAIM] = "INSERT INTO idempotency (owner, key, job_id, created_ms)"
                     " VALUES ($1, $2, $3, $4) ON CONFLICT (owner, key) DO NOTHING",
    [Q_IDEM_GET] = "SELECT job_id FROM idempotency WHERE owner = $1 AND key = $2",
    [Q_JOB_INSERT] = "INSERT INTO jobs (" JOB_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                     " $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
    [Q_SCHED_INSERT] =
        "INSERT INTO schedules (id, job_id, pos, kind, expr, timezone, start_ms, end_ms,"
        " jitter_ms, anchor_ms, next_fire_ms, last_fire_ms, active)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    [Q_SCHED_UPDATE] = "UPDATE schedules SET pos = $3, kind = $4, expr = $5, timezone = $6,"
                       " start_ms = $7, end_ms = $8, jitter_ms = $9, anchor_ms = $10,"
                       " next_fire_ms = $11, active = $13"
                       /* $12 (last_fire_ms) is bound by bind_sched but kept as is
                        * here: a statement must use every parameter it is given. */
                       " WHERE id = $1 AND job_id = $2 AND $12::bigint IS NOT NULL",
    /* Priority, queue and held come from the job, in the same statement. */
    [Q_RUN_INSERT] =
        "INSERT INTO runs (id, job_id, schedule_id, state, fire_ms, not_before_ms, priority,"
        " queue, held, created_ms, finished_ms, reason)"
        " SELECT $1::text, j.id, $3::text, $4::integer, $5::bigint, $6::bigint, j.priority,"
        " j.queue, j.state = 1, $7::bigint, $8::bigint, $9::text"
        " FROM jobs j WHERE j.id = $2 ON CONFLICT (schedule_id, fire_ms) DO NOTHING",
    [Q_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = $1 AND state <> 3",
    [Q_SCHED_OF_JOB] = "SELECT " SCHED_COLS " FROM schedules WHERE job_id = $1 ORDER BY pos",
    [Q_JOB_LIST] = "SELECT " JOB_COLS " FROM jobs" JOB_LIST_WHERE
                   " ORDER BY created_ms DESC, id DESC LIMIT $6",
    [Q_JOB_LIST_AFTER] = "SELECT " JOB_COLS " FROM jobs" JOB_LIST_WHERE
                         " AND (created_ms, id) < ($8::bigint, $9::text)"
                         " ORDER BY created_ms DESC, id DESC LIMIT $6",
    [Q_JOB_UPDATE] =
        "UPDATE jobs SET name = $2, queue = $3, spec_json = $4, constraints = $5, tags = $6,"
        " priority = $7, overlap = $8, misfire = $9, catch_up_window_ms = $10,"
        " max_concurrency = $11, timeout_ms = $12, retry_max_attempts = $13,"
        " retry_initial_ms = $14, retry_max_ms = $15, retry_multiplier = $16,"
        " retry_jitter = $17, version = version + 1, updated_ms = $19"
        " WHERE id = $1 AND state <> 3 AND ($18::bigint = 0 OR version = $18)"
        " RETURNING version, state, ns, owner, created_ms",
    [Q_JOB_VERSION] = "SELECT version FROM jobs WHERE id = $1 AND state <> 3",
    [Q_RUNS_RETARGET] =
        "UPDATE runs SET priority = $2, queue = $3 WHERE job_id = $1 AND state IN (0, 1, 2)",
    [Q_SCHED_UNMARK] = "UPDATE schedules SET pos = -1 WHERE job_id = $1",
    [Q_SCHED_DROP_UNMARKED] = "DELETE FROM schedules WHERE job_id = $1 AND pos = -1",
    [Q_JOB_STATE_LOCK] = "SELECT state FROM jobs WHERE id = $1 AND state <> 3 FOR NO KEY UPDATE",
    [Q_JOB_SET_STATE] =
        "UPDATE jobs SET state = $2, version = version + 1, updated_ms = $3 WHERE id = $1",
    [Q_SCHED_ACTIVE] = "UPDATE schedules SET active = $2 WHERE job_id = $1",
    [Q_RUNS_HOLD] = "UPDATE runs SET held = $2 WHERE job_id = $1 AND state IN (0, 1, 2)",
    [Q_RUNS_CANCEL_WAITING] = "UPDATE runs SET state = 6, held = false, finished_ms = $2,"
                              " reason = $3 WHERE job_id = $1 AND state IN (0, 1, 2)",
    [Q_RUNS_CANCEL_RUNNING] = "UPDATE runs SET cancel_requested = true,"
                              " reason = coalesce(reason, $2) WHERE job_id = $1 AND state = 3",

    /* firing */
    [Q_DUE] = "SELECT s.id, s.job_id, s.kind, s.expr, s.timezone, s.start_ms, s.end_ms,"
              " s.jitter_ms, s.anchor_ms, s.next_fire_ms, s.last_fire_ms, j.misfire, j.overlap,"
              " j.catch_up_window_ms FROM schedules s JOIN jobs j ON j.id = s.job_id"
              " WHERE s.active AND s.next_fire_ms <= $1 ORDER BY s.next_fire_ms LIMIT $2",
    /* The compare-and-set. A schedule another server is firing right now
     * is skipped rather than waited for: if that server commits, our CAS
     * would fail anyway; if it rolls back, the next tick fires it. */
    [Q_FIRE_CAS] = "UPDATE schedules SET next_fire_ms = $2,"
                   " last_fire_ms = greatest(last_fire_ms, $4)"
                   " WHERE id = (SELECT id FROM schedules WHERE id = $1"
                   " FOR NO KEY UPDATE SKIP LOCKED)"
                   " AND active AND next_fire_ms IS NOT DISTINCT FROM $3 RETURNING job_id",
    /* Trigger: FOR SHARE keeps a concurrent delete from slipping between
     * the check and the insert. */
    [Q_JOB_STATE_SHARE] = "SELECT state FROM jobs WHERE id = $1 FOR SHARE",
    [Q_NEXT_CLAIMABLE] = "SELECT not_before_ms FROM runs WHERE state IN (0, 2) AND NOT held"
                         " ORDER BY not_before_ms LIMIT 1",
    [Q_NEXT_FIRE] = "SELECT next_fire_ms FROM schedules WHERE active"
                    " AND next_fire_ms IS NOT NULL ORDER BY next_fire_ms LIMIT 1",

    /* runs */
    [Q_RUN_GET] = "SELECT " RUN_COLS " FROM runs WHERE id = $1",
    [Q_ATTEMPTS] = "SELECT n, worker_id, fence, started_ms, finished_ms, outcome, exit_code,"
                   " signal, reason FROM attempts WHERE run_id = $1 ORDER BY n",
    [Q_RUN_LIST_JOB] =
        "SELECT " RUN_COLS " FROM runs WHERE job_id = $1" RUN_LIST_TAIL RUN_LIST_ORDER,
    [Q_RUN_LIST_JOB_AFTER] =
        "SELECT " RUN_COLS
        " FROM runs WHERE job_id = $1" RUN_LIST_TAIL RUN_LIST_AFTER RUN_LIST_ORDER,
    [Q_RUN_LIST_ALL] =
        "SELECT " RUN_COLS " FROM runs WHERE $1::text IS NULL" RUN_LIST_TAIL RUN_LIST_ORDER,
    [Q_RUN_LIST_ALL_AFTER] =
        "SELECT " RUN_COLS
        " FROM runs WHERE $1::text IS NULL" RUN_LIST_TAIL RUN_LIST_AFTER RUN_LIST_ORDER,
    [Q_RUN_STATE_LOCK] = "SELECT state FROM runs WHERE id = $1 FOR NO KEY UPDATE",
    [Q_RUN_CANCEL_NOW] = "UPDATE runs SET state = 6, finished_ms = $2, reason = $3,"
                         " lease_expires_ms = -1, held = false WHERE id = $1",
    [Q_RUN_CANCEL_ASK] = "UPDATE runs SET cancel_requested = true, reason = $2 WHERE id = $1",

    /* workers */
    [Q_WORKER_REUSE] = "SELECT id FROM workers WHERE name = $1 AND owner = $2 AND state <> 0"
                       " ORDER BY heartbeat_ms DESC LIMIT 1 FOR NO KEY UPDATE",
    [Q_WORKER_INSERT] =
        "INSERT INTO workers (id, name, host, labels, queues, slots, state, registered_ms,"
        " heartbeat_ms, owner, ns) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7, $8, $9)",
    [Q_WORKER_REPLACE] =
        "UPDATE workers SET name = $2, host = $3, labels = $4, queues = $5, slots = $6,"
        " state = 0, registered_ms = $7, heartbeat_ms = $7, owner = $8, ns = $9 WHERE id = $1",
    [Q_WORKER_GET] = "SELECT " WORKER_COLS " FROM workers w WHERE w.id = $1",
    /* Pages in (name, id) order after the cursor worker's (name, id), as
     * in store_sqlite.c. */
    [Q_WORKER_LIST] = "SELECT " WORKER_COLS " FROM workers w WHERE w.state <> 3"
                      " ORDER BY w.name, w.id LIMIT $1",
    [Q_WORKER_LIST_AFTER] =
        "SELECT " WORKER_COLS " FROM workers w, workers c WHERE c.id = $2 AND w.state <> 3"
        " AND w.name >= c.name AND (w.name > c.name OR w.id > c.id)"
        " ORDER BY w.name, w.id LIMIT $1",
    /* RETURNING owner: a change for the wrong owner is rolled back. */
    [Q_WORKER_SET_STATE] =
        "UPDATE workers SET state = $2 WHERE id = $1 AND state <> 3 RETURNING owner",

    /* claim. The worker row lock serialises one worker's claims and
     * heartbeats; a lost worker that speaks again is active again. */
    [Q_WORKER_TOUCH] =
        "UPDATE workers SET heartbeat_ms = $2, state = CASE WHEN state = 2 THEN 0 ELSE state END,"
        " owner = CASE WHEN owner = '' AND $3::text IS NOT NULL THEN $3 ELSE owner END"
        " WHERE id = $1 AND state <> 3 RETURNING state, queues, labels, owner, ns",
    /* The next lower priority level present among claimable runs of a
     * queue (an index probe: max() over runs_claim). */
    [Q_CLAIM_LEVEL] = "SELECT max(priority) FROM runs WHERE state IN (0, 2) AND NOT held"
                      " AND queue = $1 AND priority < $2::bigint",
    /* The oldest due runs of one level whose job is active and whose
     * constraints the worker's labels satisfy, walking runs_claim in order.
     * SKIP LOCKED: runs another server is claiming right now are left to
     * it, and only the rows returned are locked. */
    [Q_CLAIM_ROWS] = "SELECT r.id, r.job_id, r.not_before_ms, r.fire_ms FROM runs r"
                     " JOIN jobs j ON j.id = r.job_id"
                     " WHERE r.state IN (0, 2) AND NOT r.held AND r.queue = $1 AND r.priority = $2"
                     " AND r.not_before_ms <= $3 AND j.state NOT IN (1, 3)"
                     " AND ($6 = '' OR j.ns = ANY (string_to_array($6, ',')))"
                     " AND string_to_array(j.constraints, ',') <@ string_to_array($5, ',')"
                     " ORDER BY r.not_before_ms LIMIT $4 FOR NO KEY UPDATE OF r SKIP LOCKED",
    [Q_CLAIM_JOB] = "SELECT state, constraints, max_concurrency, overlap, spec_json, timeout_ms,"
                    " name FROM jobs WHERE id = $1",
    /* Per-job decisions (concurrency, overlap) of concurrent claims on
     * several servers are serialised by a transaction-scoped advisory lock
     * on the job, which does not block anything else that touches it. */
    [Q_JOB_LOCK] = "SELECT pg_advisory_xact_lock(" LOCK_CLASS ", hashtext($1))",
    [Q_JOB_RUNNING] = "SELECT count(*) FROM runs WHERE job_id = $1 AND state = 3",
    [Q_RUN_SKIP_OVERLAP] = "UPDATE runs SET state = 7, finished_ms = $2, reason = 'overlap'"
                           " WHERE id = $1 AND state IN (0, 2)",
    [Q_RUNS_REPLACE] = "UPDATE runs SET cancel_requested = true,"
                       " reason = coalesce(reason, 'replaced by a newer run')"
                       " WHERE job_id = $1 AND state = 3 AND NOT cancel_requested",
    /* The lease and the attempt row in one round trip. */
    [Q_RUN_LEASE] = "WITH r AS (UPDATE runs SET state = 3, worker_id = $2, attempt = attempt + 1,"
                    " fence = $5, lease_expires_ms = $3, unconfirmed = true,"
                    " started_ms = CASE WHEN started_ms < 0 THEN $4 ELSE started_ms END"
                    " WHERE id = $1 AND state IN (0, 2) RETURNING " RUN_COLS "),"
                    " a AS (INSERT INTO attempts (run_id, n, worker_id, fence, started_ms)"
                    " SELECT id, attempt, $2::text, fence, $4::bigint FROM r)"
                    " SELECT " RUN_COLS " FROM r",

    /* heartbeat, complete, reap. Renewal of all held runs in one statement:
     * only those still held by this worker with this fence and not asked
     * to cancel come back, and those are the ones to keep. An unconfirmed
     * lease keeps its short term until the attempt is reported started. */
    [Q_RUNS_RENEW] =
        "UPDATE runs r SET lease_expires_ms = CASE WHEN r.unconfirmed AND NOT h.started"
        " THEN r.lease_expires_ms ELSE $2 END, unconfirmed = r.unconfirmed AND NOT h.started"
        " FROM unnest($3::text[], $4::bigint[], $5::boolean[]) AS h (id, fence, started)"
        " WHERE r.id = h.id AND r.fence = h.fence AND r.worker_id = $1"
        " AND r.state = 3 AND NOT r.cancel_requested RETURNING r.id, r.fence",
    [Q_RUN_FOR_FINISH] =
        "SELECT r.state, r.fence, r.attempt, r.cancel_requested, r.reason,"
        " j.retry_max_attempts, j.retry_initial_ms, j.retry_max_ms, j.retry_multiplier,"
        " j.retry_jitter, j.state, r.unconfirmed, w.owner FROM runs r"
        " JOIN jobs j ON j.id = r.job_id LEFT JOIN workers w ON w.id = r.worker_id"
        " WHERE r.id = $1 FOR NO KEY UPDATE OF r",
    /* Undoes an attempt that never started (see the SQLite backend). */
    [Q_RUN_UNCLAIM] =
        "UPDATE runs SET state = $2, not_before_ms = $3, lease_expires_ms = -1, finished_ms = $4,"
        " reason = $5, held = $6, attempt = attempt - 1, worker_id = '', unconfirmed = false,"
        " started_ms = CASE WHEN attempt = 1 THEN -1 ELSE started_ms END,"
        " log_bytes = log_bytes - (SELECT coalesce(sum(length(data)), 0) FROM log_chunks l"
        " WHERE l.run_id = runs.id AND l.attempt = runs.attempt AND l.stream <> 0),"
        " log_truncated = EXISTS (SELECT 1 FROM log_chunks l WHERE l.run_id = runs.id"
        " AND l.attempt <> runs.attempt AND l.stream = 0)"
        " WHERE id = $1",
    [Q_PROBE] = "INSERT INTO health (id, probed_ms) VALUES (1, $1)"
                " ON CONFLICT (id) DO UPDATE SET probed_ms = excluded.probed_ms",
    [Q_ATTEMPT_DROP] = "DELETE FROM attempts WHERE run_id = $1 AND n = $2",
    [Q_LOG_DROP] = "DELETE FROM log_chunks WHERE run_id = $1 AND attempt = $2",
    [Q_ATTEMPT_REPORTED] = "SELECT reported FROM attempts WHERE run_id = $1 AND n = $2"
                           " AND fence = $3",
    [Q_ATTEMPT_FINISH] = "UPDATE attempts SET finished_ms = $3, outcome = $4, exit_code = $5,"
                         " signal = $6, reason = $7, reported = $8 WHERE run_id = $1 AND n = $2",
    [Q_RUN_FINISH] = "UPDATE runs SET state = $2,"
                     " not_before_ms = CASE WHEN $2 = 0 THEN $3 ELSE not_before_ms END,"
                     " lease_expires_ms = -1, finished_ms = $4, exit_code = $5, signal = $6,"
                     " reason = $7, held = $8 WHERE id = $1",
    /* SKIP LOCKED: reapers on several servers share the expired runs. */
    [Q_EXPIRED] = "SELECT id FROM runs WHERE state = 3 AND lease_expires_ms < $1"
                  " ORDER BY lease_expires_ms LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED",
    [Q_WORKERS_LOSE] = "UPDATE workers SET state = 2 WHERE state IN (0, 1) AND heartbeat_ms < $1",

    /* the missed-fire ledger (see the SQLite backend) */
    [Q_MISS_EXTEND] = "UPDATE misses SET last_ms = $3, count = count + $4"
                      " WHERE schedule_id = $1 AND last_ms = $2 AND reason = $5",
    [Q_MISS_INSERT] = "INSERT INTO misses (id, job_id, schedule_id, first_ms, last_ms, count,"
                      " reason, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    [Q_MISS_LIST] = "SELECT id, job_id, schedule_id, first_ms, last_ms, count, reason, created_ms"
                    " FROM misses WHERE job_id = $1"
                    " AND ($2::bigint IS NULL OR (first_ms <= $2 AND last_ms >= $2))"
                    " AND ($3::bigint IS NULL OR (last_ms, id) < ($3, $4::text))"
                    " ORDER BY last_ms DESC, id DESC LIMIT $5",

    /* tokens */
    [Q_TOKEN_INSERT] = "INSERT INTO tokens (id, hash, name, role, ns, created_ms, expires_ms,"
                       " revoked, user_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    /* A user's token acts with the user's current role and namespaces,
     * and stops working the moment the user is deleted. */
    [Q_TOKEN_LOOKUP] =
        "SELECT t.id, t.name, coalesce(u.role, t.role), coalesce(u.namespaces, t.ns),"
        " t.created_ms, t.expires_ms, t.revoked, t.user_name, t.last_used_ms FROM tokens t"
        " LEFT JOIN users u ON u.name = t.user_name"
        " WHERE t.hash = $1 AND NOT t.revoked AND (t.expires_ms < 0 OR t.expires_ms > $2)"
        " AND (t.user_name IS NULL OR u.name IS NOT NULL)",
    [Q_TOKEN_COUNT] = "SELECT count(*) FROM tokens",
    [Q_TOKEN_GET] = "SELECT " TOKEN_COLS " FROM tokens WHERE id = $1",
    [Q_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens" TOKEN_LIST_WHERE
                     " ORDER BY created_ms DESC, id DESC LIMIT $3",
    [Q_TOKEN_LIST_AFTER] = "SELECT " TOKEN_COLS " FROM tokens" TOKEN_LIST_WHERE
                           " AND (created_ms, id) < ($4::bigint, $5::text)"
                           " ORDER BY created_ms DESC, id DESC LIMIT $3",
    [Q_TOKEN_REVOKE] = "UPDATE tokens SET revoked = true WHERE id = $1",
    [Q_TOKEN_TOUCH] = "UPDATE tokens SET last_used_ms = $2 WHERE id = $1"
                      " AND (last_used_ms IS NULL OR last_used_ms <= $2::bigint - $3::bigint)",

    /* users */
    [Q_USER_INSERT] = "INSERT INTO users (" USER_COLS ") VALUES ($1, $2, $3, $4, $5, $5)",
    [Q_USER_GET] = "SELECT " USER_COLS " FROM users WHERE name = $1",
    [Q_USER_LIST] = "SELECT " USER_COLS " FROM users ORDER BY name",
    [Q_USER_UPDATE] = "UPDATE users SET pwhash = $2, role = $3, namespaces = $4,"
                      " updated_ms = $5 WHERE name = $1",
    [Q_USER_DELETE] = "DELETE FROM users WHERE name = $1",
    [Q_USER_TOKENS_REVOKE] =
        "UPDATE tokens SET revoked = true WHERE user_name = $1 AND NOT revoked",

    /* audit */
    [Q_AUDIT_INSERT] = "INSERT INTO audit (" AUDIT_COLS ")"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    [Q_AUDIT_LIST] = "SELECT " AUDIT_COLS " FROM audit" AUDIT_LIST_WHERE
                     " ORDER BY at_ms DESC, id DESC LIMIT $3",
    [Q_AUDIT_LIST_AFTER] = "SELECT " AUDIT_COLS " FROM audit" AUDIT_LIST_WHERE
                           " AND (at_ms, id) < ($4::bigint, $5::text)"
                           " ORDER BY at_ms DESC, id DESC LIMIT $3",
    [Q_JOB_SCOPE] = "SELECT ns, owner FROM jobs WHERE id = $1",

    [Q_VERSION_SET] = "UPDATE schema_version SET version = $1",
    [Q_NOTIFY] = "SELECT pg_notify('" WAKE_CHANNEL "', $1)",
};

/* ---- connections ------------------------------------------------------------ */

struct dq;

struct pconn {
    PGconn *db;
    bool prepared[Q_COUNT]; /* statement i is prepared on this connection */
    struct dq **dq;         /* the driver's statements (db.h), by slot */
    size_t ndq;
    int *used, nused, capused; /* slots with a result to clear after the unit */
    bool want_notify;          /* the running verb changed something worth a wake-up */
    char sqlstate[6];          /* of the last error */
};

struct pg {
    store_t base;   /* first: a store_t * is a struct pg * */
    char *conninfo; /* what libpq gets: the URL without our sked_* parameters */
    char *schema;   /* sked_schema=NAME: search_path of every connection; NULL = default */
    int pool_max;
    bool db_clock;          /* sked_clock=db: now() of the database replaces now_ms */
    char inst[SKED_ID_LEN]; /* this handle's id: the payload of its NOTIFYs */

    pthread_mutex_t mu;
    pthread_cond_t cv;   /* a connection was released */
    struct pconn **idle; /* [pool_max] */
    int nidle, nopen;

    /* The database's clock as an offset from ours (store_now_ms). */
    pthread_mutex_t clock_mu;
    int64_t clock_off_ms; /* database now() minus clock_now_ms() */
    int64_t clock_at_ns;  /* monotonic time of the last measurement; 0 = never */

    pthread_t listener;
    bool listener_started;
    PGconn *ldb;      /* the listener's connection; owned by its thread once started */
    int stop_pipe[2]; /* written to on close: wakes the listener's poll */
};

/* A pointer to one of these is what a failing call gets in errmsg; NULL-safe. */
static void set_errmsg(char **errmsg, char *msg)
{
    if (errmsg && !*errmsg)
        *errmsg = msg;
    else
        free(msg);
}

/* libpq's messages span lines (and end in a newline); a log line or an
 * API message must not. New string, whitespace runs folded to one space. */
static char *pq_message(const char *m)
{
    char *s = xstrdup(m ? m : ""), *o = s;
    for (const char *i = s; *i; i++) {
        bool ws = *i == '\n' || *i == '\t' || *i == ' ';
        if (ws && (o == s || o[-1] == ' ')) continue;
        *o++ = ws ? ' ' : *i;
    }
    while (o > s && o[-1] == ' ')
        o--;
    *o = '\0';
    return s;
}

/* CREATE ... IF NOT EXISTS and friends talk through notices; they are not
 * errors and would only clutter stderr. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Maps a failed result to a SKED_E* code, logging the unexpected, and keeps
 * the SQLSTATE for the retry decision. */
static int dberr(struct pconn *c, const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(c->sqlstate, sizeof c->sqlstate, "%s", state ? state : "");
    if (PQstatus(c->db) != CONNECTION_OK) {
        char *m = pq_message(PQerrorMessage(c->db));
        log_warn("store", "postgres connection lost: %s", m);
        free(m);
        return SKED_ESTORE;
    }
    if (state && strcmp(state, "23505") == 0) return SKED_ECONFLICT; /* unique_violation */
    if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)) {
        /* serialization_failure, deadlock_detected: tx() runs the verb again */
        log_debug("store", "postgres %s, retrying", state);
        return SKED_EBUSY;
    }
    char *m = pq_message(r ? PQresultErrorMessage(r) : PQerrorMessage(c->db));
    log_error("store", "postgres error %s: %s", state ? state : "?", m);
    free(m);
    return SKED_ESTORE;
}

static bool retryable(const struct pconn *c)
{
    return strcmp(c->sqlstate, "40001") == 0 || strcmp(c->sqlstate, "40P01") == 0;
}

/* Runs a parameterless command outside the statement cache. */
static int simple(struct pconn *c, const char *sql)
{
    PGresult *r = PQexec(c->db, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? 0 : dberr(c, r);
    PQclear(r);
    return rc;
}

static void dq_unprepare(struct pconn *c);

/* Settings every connection needs: durable commits (promise §5.1) whatever
 * the server's default, and our schema when one was asked for. */
static int session_setup(struct pg *p, struct pconn *c)
{
    PQsetNoticeProcessor(c->db, quiet_notice, NULL);
    memset(c->prepared, 0, sizeof c->prepared);
    dq_unprepare(c);
    int rc = simple(c, "SET synchronous_commit = on");
    if (rc == 0 && p->schema) {
        char *id = PQescapeIdentifier(c->db, p->schema, strlen(p->schema));
        if (!id) return SKED_ESTORE;
        char *sql = xasprintf("SET search_path = %s", id);
        PQfreemem(id);
        rc = simple(c, sql);
        free(sql);
    }
    return rc;
}

/* Connects with our defaults, which anything in the URL overrides: a
 * connect timeout, an application name, and TCP keepalives tight enough
 * that a listener whose database host vanished (no FIN ever comes) notices
 * within a minute or so instead of the kernel's two hours. New; caller
 * PQfinish()es. */
static PGconn *pg_connect(const struct pg *p)
{
    const char *const keys[] = {"connect_timeout",
                                "fallback_application_name",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "dbname",
                                NULL};
    const char *const vals[] = {CONNECT_TIMEOUT_S, "sked", "30", "10", "3", p->conninfo, NULL};
    return PQconnectdbParams(keys, vals, 1);
}

static void dq_free(struct dq *q);

static void pconn_free(struct pconn *c)
{
    if (!c) return;
    if (c->db) PQfinish(c->db);
    for (size_t i = 0; i < c->ndq; i++)
        dq_free(c->dq[i]);
    free(c->dq);
    free(c->used);
    free(c);
}

static int pconn_new(struct pg *p, struct pconn **out, char **errmsg)
{
    struct pconn *c = xcalloc(1, sizeof *c);
    int rc = 0;
    c->db = pg_connect(p);
    if (!c->db || PQstatus(c->db) != CONNECTION_OK) {
        char *m = pq_message(c->db ? PQerrorMessage(c->db) : "out of memory");
        /* At open the caller reports errmsg; later, nobody else will. */
        if (errmsg)
            set_errmsg(errmsg, xasprintf("cannot connect to postgres: %s", m));
        else
            log_error("store", "cannot connect to postgres: %s", m);
        free(m);
        rc = SKED_ESTORE;
        goto out;
    }
    if ((rc = session_setup(p, c)) < 0) {
        set_errmsg(errmsg, xstrdup("cannot set up the postgres session"));
        goto out;
    }
out:
    if (rc < 0) {
        pconn_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

/* Takes a connection from the pool, opening one if the pool is not full,
 * else waiting for one. A connection that died while idle (the database
 * restarted) is reset here before anyone uses it. */
static int acquire(struct pg *p, struct pconn **out)
{
    struct pconn *c = NULL;
    bool create = false;
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0 && p->nopen >= p->pool_max)
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->nidle > 0) {
        c = p->idle[--p->nidle];
    } else {
        p->nopen++;
        create = true;
    }
    pthread_mutex_unlock(&p->mu);

    if (create) {
        if ((rc = pconn_new(p, &c, NULL)) < 0) {
            pthread_mutex_lock(&p->mu);
            p->nopen--;
            pthread_cond_signal(&p->cv);
            pthread_mutex_unlock(&p->mu);
            return rc;
        }
    } else if (PQstatus(c->db) != CONNECTION_OK) {
        PQreset(c->db);
        if (PQstatus(c->db) != CONNECTION_OK || session_setup(p, c) < 0) {
            char *m = pq_message(PQerrorMessage(c->db));
            log_warn("store", "postgres reconnect failed: %s", m);
            free(m);
            pthread_mutex_lock(&p->mu);
            p->idle[p->nidle++] = c;
            pthread_cond_signal(&p->cv);
            pthread_mutex_unlock(&p->mu);
            return SKED_ESTORE;
        }
    }
    *out = c;
    return 0;
}

static void release(struct pg *p, struct pconn *c)
{
    pthread_mutex_lock(&p->mu);
    p->idle[p->nidle++] = c;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* ---- parameters and results ---------------------------------------------------- */

#define MAXP 24

/* Parameters of one statement, in text format except binary blobs. Values
 * are borrowed (strings) or formatted into num[]. */
struct prm {
    int n;
    const char *v[MAXP];
    int len[MAXP];
    int fmt[MAXP];
    char num[MAXP][24];
};

static void pt(struct prm *p, const char *s) /* text; NULL = SQL NULL */
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static void pi(struct prm *p, int64_t x)
{
    snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, x);
    pt(p, p->num[p->n]);
}

static void pin(struct prm *p, int64_t x) /* NULL when x < 0 (our "none") */
{
    if (x < 0)
        pt(p, NULL);
    else
        pi(p, x);
}

static void pb(struct prm *p, bool x)
{
    pt(p, x ? "true" : "false");
}

static void pd(struct prm *p, double x)
{
    snprintf(p->num[p->n], sizeof p->num[p->n], "%.17g", x);
    pt(p, p->num[p->n]);
}

static void pblob(struct prm *p, const void *data, size_t len)
{
    p->v[p->n] = len ? data : "";
    p->len[p->n] = (int)len;
    p->fmt[p->n++] = 1;
}

/* Runs statement id on c. Returns the result (caller PQclear()s) or NULL
 * with *rc set. Prepares the statement on first use on this connection. */
static PGresult *ex(struct pconn *c, enum q id, const struct prm *p, int *rc)
{
    char name[16];
    snprintf(name, sizeof name, "q%d", (int)id);
    if (!c->prepared[id]) {
        PGresult *r = PQprepare(c->db, name, stmts[id], 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            *rc = dberr(c, r);
            if (PQstatus(c->db) == CONNECTION_OK)
                log_error("store", "could not prepare: %s", stmts[id]);
            PQclear(r);
            return NULL;
        }
        PQclear(r);
        c->prepared[id] = true;
    }
    PGresult *r = PQexecPrepared(c->db, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                 p ? p->fmt : NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) return r;
    *rc = dberr(c, r);
    PQclear(r);
    return NULL;
}

/* Runs a statement whose rows we do not need; *changed OUT (may be NULL):
 * rows affected. */
static int exn(struct pconn *c, enum q id, const struct prm *p, int64_t *changed)
{
    int rc = 0;
    PGresult *r = ex(c, id, p, &rc);
    if (!r) return rc;
    if (changed) *changed = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

static int64_t gi(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int64_t gin(const PGresult *r, int row, int col) /* NULL -> -1 */
{
    return PQgetisnull(r, row, col) ? -1 : gi(r, row, col);
}

static bool gb(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col)[0] == 't';
}

static char *gt(const PGresult *r, int row, int col) /* NULL stays NULL */
{
    return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

static char *gt0(const PGresult *r, int row, int col) /* never NULL */
{
    return xstrdup(PQgetvalue(r, row, col));
}

static void gid(const PGresult *r, int row, int col, char out[SKED_ID_LEN])
{
    snprintf(out, SKED_ID_LEN, "%s", PQgetvalue(r, row, col));
}

/* ---- transactions ----------------------------------------------------------- */

typedef int (*txfn_t)(struct pg *p, struct pconn *c, void *arg);

enum tx_kind {
    TX_NONE,  /* one read statement: no BEGIN/COMMIT round trips */
    TX_READ,  /* several reads that must agree: one snapshot */
    TX_WRITE, /* a verb that writes */
};

/* The database's clock, in the same round trip as BEGIN. */
static const char SQL_BEGIN_CLOCK[] = "BEGIN; SELECT (extract(epoch FROM now()) * 1000)::bigint";

static int begin(struct pg *p, struct pconn *c, enum tx_kind kind, int64_t *now_ms)
{
    if (p->db_clock && now_ms) {
        /* With TX_NONE the BEGIN is harmless: tx() commits it. */
        PGresult *r = PQexec(c->db, SQL_BEGIN_CLOCK);
        int rc = 0;
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            *now_ms = gi(r, 0, 0);
        else
            rc = dberr(c, r);
        PQclear(r);
        return rc;
    }
    if (kind == TX_NONE) return 0;
    return simple(c, kind == TX_READ ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN");
}

static int commit(struct pconn *c)
{
    PGresult *r = PQexec(c->db, "COMMIT");
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = dberr(c, r);
    else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
        rc = SKED_ESTORE; /* the transaction had failed: COMMIT answered ROLLBACK */
    PQclear(r);
    return rc;
}

/* Runs fn(p, c, arg) as one transaction on a pooled connection, commits it
 * when fn returns >= 0 and rolls it back otherwise; calls the notify hook
 * after a commit that asked for it. Deadlocks and serialization failures
 * run fn again (fn must start from scratch each time: it may not keep
 * state from a failed try). now_ms, if non-NULL, is replaced with the
 * database's clock in sked_clock=db mode. Returns fn's result or an error. */
static int tx(struct pg *p, enum tx_kind kind, txfn_t fn, void *arg, int64_t *now_ms)
{
    int rc = 0;
    for (int try = 1;; try++) {
        struct pconn *c = NULL;
        if ((rc = acquire(p, &c)) < 0) return rc;
        c->want_notify = false;
        c->sqlstate[0] = '\0';
        bool open = kind != TX_NONE || (p->db_clock && now_ms);
        rc = begin(p, c, kind, now_ms);
        bool dead_at_begin = rc < 0 && PQstatus(c->db) != CONNECTION_OK;
        if (rc == 0) {
            rc = fn(p, c, arg);
            if (rc >= 0 && c->want_notify && open) {
                struct prm pr = {0};
                pt(&pr, p->inst);
                int nrc = exn(c, Q_NOTIFY, &pr, NULL);
                if (nrc < 0) rc = nrc;
            }
            if (open) {
                if (rc >= 0) {
                    int crc = commit(c);
                    if (crc < 0) rc = crc;
                } else if (PQstatus(c->db) == CONNECTION_OK) {
                    PGresult *r = PQexec(c->db, "ROLLBACK");
                    PQclear(r);
                }
            }
        }
        /* A connection that died under a read, or before a write sent
         * anything, is safe to try once more on a fresh one. */
        bool dead = PQstatus(c->db) != CONNECTION_OK;
        bool again = try < TX_TRIES &&
                     (retryable(c) || (dead && try == 1 && (dead_at_begin || kind != TX_WRITE)));
        bool notify = rc >= 0 && c->want_notify;
        release(p, c);
        if (notify) store__notify(&p->base);
        if (!again) return rc;
        if (!dead) {
            /* Two verbs that deadlocked would likely collide again at
             * once: wait a little, randomly, before the next try. */
            struct timespec ts = {0, (long)(randombytes_uniform(2000) + 200) * 1000L * try};
            nanosleep(&ts, NULL);
        }
    }
}

/* fn asks for a wake-up: pg_notify before commit, store__notify after. */
static void want_notify(struct pconn *c)
{
    c->want_notify = true;
}

/* ---- the SQL driver (db.h) --------------------------------------------------- */

/* A driver statement on one connection: its parameters (text format but
 * blobs), their declared types, and the result being walked. */
struct dq {
    struct db_q base;
    struct pconn *c;
    int slot;
    bool prepared, typed; /* typed: prepared with the bound values' types */
    char *text;           /* the PostgreSQL text (owned when rewritten from ?N) */
    struct prm p;
    Oid types[MAXP];
    PGresult *r;
    int row, rows;
    unsigned char *blob; /* the last column read as bytea, unescaped */
};

struct pdb {
    struct db base;
    struct pconn *c;
};

static const struct db_driver pg_driver;

static void dq_reset(struct dq *q)
{
    PQclear(q->r);
    q->r = NULL;
    PQfreemem(q->blob);
    q->blob = NULL;
    q->p.n = 0;
    q->row = -1;
    q->rows = 0;
}

static void dq_free(struct dq *q)
{
    if (!q) return;
    dq_reset(q);
    free(q->text);
    free(q);
}

/* After a reconnect nothing is prepared any more. */
static void dq_unprepare(struct pconn *c)
{
    for (size_t i = 0; i < c->ndq; i++)
        if (c->dq[i]) c->dq[i]->prepared = false;
}

/* SQLite's ?N placeholders as PostgreSQL's $N (outside quoted text). New. */
static char *dollar_params(const char *sql)
{
    char *out = xstrdup(sql);
    bool quoted = false;
    for (char *o = out; *o; o++) {
        if (*o == '\'') quoted = !quoted;
        if (!quoted && *o == '?' && o[1] >= '0' && o[1] <= '9') *o = '$';
    }
    return out;
}

static db_q_t *pg_q(db_t *db, db_sql_t *sql)
{
    struct pconn *c = ((struct pdb *)db)->c;
    size_t slot = (size_t)db__slot(sql);
    if (slot >= c->ndq) {
        size_t n = slot * 2;
        c->dq = xrealloc(c->dq, n * sizeof *c->dq);
        memset(c->dq + c->ndq, 0, (n - c->ndq) * sizeof *c->dq);
        c->ndq = n;
    }
    struct dq *q = c->dq[slot];
    if (!q) {
        q = xcalloc(1, sizeof *q);
        q->base.drv = &pg_driver;
        q->c = c;
        q->slot = (int)slot;
        q->typed = !sql->pg;
        q->text = sql->pg ? xstrdup(sql->pg) : dollar_params(sql->lite);
        q->base.noop = !*q->text;
        q->row = -1;
        c->dq[slot] = q;
    } else {
        dq_reset(q);
    }
    return &q->base;
}

static void pg_bind(db_q_t *dq, const db_val_t *v)
{
    static const Oid oid[] = {
        [DB_TEXT] = 25, [DB_INT] = 20, [DB_BOOL] = 16, [DB_REAL] = 701, [DB_BLOB] = 17};
    struct dq *q = (struct dq *)dq;
    struct prm *p = &q->p;
    if (p->n >= MAXP) {
        log_error("store", "statement has more than %d parameters: %s", MAXP, q->text);
        return;
    }
    q->types[p->n] = oid[v->type];
    if (v->null) {
        pt(p, NULL);
        return;
    }
    switch (v->type) {
    case DB_TEXT:
        pt(p, v->s);
        break;
    case DB_INT:
        pi(p, v->i);
        break;
    case DB_BOOL:
        pb(p, v->i != 0);
        break;
    case DB_REAL:
        pd(p, v->d);
        break;
    case DB_BLOB:
        pblob(p, v->s, v->len);
        break;
    }
}

/* Runs the statement (preparing it on first use): the whole result arrives
 * at once, and step then walks it. */
static int dq_run(struct dq *q)
{
    struct pconn *c = q->c;
    char name[16];
    snprintf(name, sizeof name, "d%d", q->slot);
    if (!q->prepared) {
        PGresult *r =
            PQprepare(c->db, name, q->text, q->typed ? q->p.n : 0, q->typed ? q->types : NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            int rc = dberr(c, r);
            if (PQstatus(c->db) == CONNECTION_OK)
                log_error("store", "could not prepare: %s", q->text);
            PQclear(r);
            return rc;
        }
        PQclear(r);
        q->prepared = true;
    }
    q->r = PQexecPrepared(c->db, name, q->p.n, q->p.v, q->p.len, q->p.fmt, 0);
    ExecStatusType s = PQresultStatus(q->r);
    if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
        int rc = dberr(c, q->r);
        PQclear(q->r);
        q->r = NULL;
        return rc;
    }
    q->rows = PQntuples(q->r);
    if (c->nused == c->capused) {
        c->capused = c->capused ? c->capused * 2 : 16;
        c->used = xrealloc(c->used, (size_t)c->capused * sizeof *c->used);
    }
    c->used[c->nused++] = q->slot;
    return 0;
}

static int pg_step(db_q_t *dq)
{
    struct dq *q = (struct dq *)dq;
    if (!q->r) {
        int rc = dq_run(q);
        if (rc < 0) return rc;
    }
    PQfreemem(q->blob);
    q->blob = NULL;
    if (q->row < q->rows) q->row++;
    return q->row < q->rows ? 1 : 0;
}

static int64_t pg_changes(db_q_t *dq)
{
    struct dq *q = (struct dq *)dq;
    return q->r ? strtoll(PQcmdTuples(q->r), NULL, 10) : 0;
}

static bool pg_col_null(db_q_t *dq, int col)
{
    struct dq *q = (struct dq *)dq;
    return PQgetisnull(q->r, q->row, col);
}

static int64_t pg_col_int(db_q_t *dq, int col)
{
    struct dq *q = (struct dq *)dq;
    const char *v = PQgetvalue(q->r, q->row, col);
    if (*v == 't') return 1; /* boolean */
    return strtoll(v, NULL, 10);
}

static double pg_col_real(db_q_t *dq, int col)
{
    struct dq *q = (struct dq *)dq;
    return strtod(PQgetvalue(q->r, q->row, col), NULL);
}

static const char *pg_col_text(db_q_t *dq, int col)
{
    struct dq *q = (struct dq *)dq;
    return PQgetisnull(q->r, q->row, col) ? NULL : PQgetvalue(q->r, q->row, col);
}

static const void *pg_col_blob(db_q_t *dq, int col, size_t *len)
{
    struct dq *q = (struct dq *)dq;
    PQfreemem(q->blob);
    q->blob = PQunescapeBytea((const unsigned char *)PQgetvalue(q->r, q->row, col), len);
    if (!q->blob) {
        /* Only on out of memory, which xalloc treats as fatal too. */
        log_error("store", "out of memory decoding a bytea value");
        abort();
    }
    return q->blob;
}

static void pg_db_notify(db_t *db)
{
    want_notify(((struct pdb *)db)->c);
}

struct pg_call {
    db_fn fn;
    void *arg;
};

static int pg_call_fn(struct pg *p, struct pconn *c, void *arg)
{
    struct pg_call *k = arg;
    struct pdb db = {{&pg_driver, &p->base}, c};
    int rc = k->fn(&db.base, k->arg);
    /* Results live until the unit ends, not until the connection's next use. */
    for (int i = 0; i < c->nused; i++)
        if (c->dq[c->used[i]]) dq_reset(c->dq[c->used[i]]);
    c->nused = 0;
    return rc;
}

static int pg_tx(store_t *st, db_tx_t kind, db_fn fn, void *arg, int64_t *now_ms)
{
    struct pg_call k = {fn, arg};
    enum tx_kind tk = kind == DB_WRITE ? TX_WRITE : kind == DB_READ ? TX_READ : TX_NONE;
    /* DB_WRITE1 and DB_READ1: one statement, PostgreSQL's own transaction. */
    return tx((struct pg *)st, tk, pg_call_fn, &k, now_ms);
}

static const struct db_driver pg_driver = {
    .name = "postgres",
    .tx = pg_tx,
    .q = pg_q,
    .bind = pg_bind,
    .step = pg_step,
    .changes = pg_changes,
    .col_null = pg_col_null,
    .col_int = pg_col_int,
    .col_real = pg_col_real,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .notify = pg_db_notify,
};

/* ---- row readers ------------------------------------------------------------- */

static void row_job(const PGresult *q, int i, store_job_t *j)
{
    gid(q, i, 0, j->id);
    j->ns = gt0(q, i, 1);
    j->owner = gt0(q, i, 2);
    j->name = gt0(q, i, 3);
    j->queue = gt0(q, i, 4);
    j->spec_json = gt0(q, i, 5);
    j->constraints = gt0(q, i, 6);
    j->tags = gt0(q, i, 7);
    j->priority = (int)gi(q, i, 8);
    j->state = (job_state_t)gi(q, i, 9);
    j->overlap = (overlap_policy_t)gi(q, i, 10);
    j->misfire = (misfire_policy_t)gi(q, i, 11);
    j->catch_up_window_ms = gi(q, i, 12);
    j->max_concurrency = (int)gi(q, i, 13);
    j->timeout_ms = gi(q, i, 14);
    j->retry.max_attempts = (int)gi(q, i, 15);
    j->retry.initial_ms = gi(q, i, 16);
    j->retry.max_ms = gi(q, i, 17);
    j->retry.multiplier = strtod(PQgetvalue(q, i, 18), NULL);
    j->retry.jitter = gb(q, i, 19);
    j->version = gi(q, i, 20);
    j->created_ms = gi(q, i, 21);
    j->updated_ms = gi(q, i, 22);
}

static void row_sched(const PGresult *q, int i, int o, store_schedule_t *s)
{
    gid(q, i, o + 0, s->id);
    gid(q, i, o + 1, s->job_id);
    s->kind = (schedule_kind_t)gi(q, i, o + 2);
    s->expr = gt0(q, i, o + 3);
    s->timezone = gt0(q, i, o + 4);
    s->start_ms = gi(q, i, o + 5);
    s->end_ms = gi(q, i, o + 6);
    s->jitter_ms = gi(q, i, o + 7);
    s->anchor_ms = gi(q, i, o + 8);
    s->next_fire_ms = gin(q, i, o + 9);
    s->last_fire_ms = gi(q, i, o + 10);
}

static void row_run(const PGresult *q, int i, store_run_t *r)
{
    gid(q, i, 0, r->id);
    gid(q, i, 1, r->job_id);
    gid(q, i, 2, r->schedule_id);
    gid(q, i, 3, r->worker_id);
    r->state = (run_state_t)gi(q, i, 4);
    r->fire_ms = gi(q, i, 5);
    r->not_before_ms = gi(q, i, 6);
    r->priority = (int)gi(q, i, 7);
    r->queue = gt0(q, i, 8);
    r->attempt = (int)gi(q, i, 9);
    r->fence = gi(q, i, 10);
    r->lease_expires_ms = gi(q, i, 11);
    r->cancel_requested = gb(q, i, 12);
    r->created_ms = gi(q, i, 13);
    r->started_ms = gi(q, i, 14);
    r->finished_ms = gi(q, i, 15);
    r->exit_code = (int)gi(q, i, 16);
    r->signal = (int)gi(q, i, 17);
    r->reason = gt(q, i, 18);
    r->log_bytes = gi(q, i, 19);
    r->log_truncated = gb(q, i, 20);
}

static void row_worker(const PGresult *q, int i, store_worker_t *w)
{
    gid(q, i, 0, w->id);
    w->name = gt0(q, i, 1);
    w->host = gt0(q, i, 2);
    w->labels = gt0(q, i, 3);
    w->queues = gt0(q, i, 4);
    w->slots = (int)gi(q, i, 5);
    w->state = (worker_state_t)gi(q, i, 6);
    w->registered_ms = gi(q, i, 7);
    w->heartbeat_ms = gi(q, i, 8);
    w->running = (int)gi(q, i, 9);
}

/* ---- shared write helpers ---------------------------------------------------- */

/* Inserts a run of job_id, taking priority, queue and held from the job.
 * *inserted OUT (may be NULL): false if (schedule, fire time) already had
 * one. id OUT: the new run's id. */
static int insert_run(struct pconn *c, char id[SKED_ID_LEN], const char *job_id,
                      const char *sched_id, run_state_t state, int64_t fire_ms,
                      int64_t not_before_ms, const char *reason, int64_t now_ms, bool *inserted)
{
    struct prm p = {0};
    int64_t n = 0;
    id_new("run", now_ms, id);
    pt(&p, id);
    pt(&p, job_id);
    pt(&p, sched_id);
    pi(&p, state);
    pi(&p, fire_ms);
    pi(&p, not_before_ms);
    pi(&p, now_ms);
    pi(&p, run_state_terminal(state) ? now_ms : -1);
    pt(&p, reason);
    int rc = exn(c, Q_RUN_INSERT, &p, &n);
    if (rc == 0 && inserted) *inserted = n > 0;
    return rc;
}

static void bind_sched(struct prm *p, const store_schedule_t *sc, size_t pos, bool active)
{
    pt(p, sc->id);
    pt(p, sc->job_id);
    pi(p, (int64_t)pos);
    pi(p, sc->kind);
    pt(p, sc->expr ? sc->expr : "");
    pt(p, sc->timezone ? sc->timezone : "");
    pi(p, sc->start_ms);
    pi(p, sc->end_ms);
    pi(p, sc->jitter_ms);
    pi(p, sc->anchor_ms);
    pin(p, sc->next_fire_ms);
    pi(p, -1);
    pb(p, active);
}

/* The spec-derived columns of a job, in the order of JOB_COLS from name to
 * retry_jitter (Q_JOB_INSERT $4..$20 and Q_JOB_UPDATE $2..$17 less state). */
static void bind_job_name_queue(struct prm *p, const store_job_t *j)
{
    pt(p, j->name);
    pt(p, j->queue ? j->queue : "default");
    pt(p, j->spec_json ? j->spec_json : "{}");
    pt(p, j->constraints ? j->constraints : "");
    pt(p, j->tags ? j->tags : "");
    pi(p, j->priority);
}

static void bind_job_policies(struct prm *p, const store_job_t *j)
{
    pi(p, j->overlap);
    pi(p, j->misfire);
    pi(p, j->catch_up_window_ms);
    pi(p, j->max_concurrency);
    pi(p, j->timeout_ms);
    pi(p, j->retry.max_attempts);
    pi(p, j->retry.initial_ms);
    pi(p, j->retry.max_ms);
    pd(p, j->retry.multiplier);
    pb(p, j->retry.jitter);
}

/* ---- lifecycle ops ------------------------------------------------------------- */

static int ping_fn(struct pg *p, struct pconn *c, void *arg)
{
    return exn(c, Q_PING, NULL, NULL);
}

static int pg_ping(store_t *st)
{
    return tx((struct pg *)st, TX_NONE, ping_fn, NULL, NULL);
}

static int probe_fn(struct pg *p, struct pconn *c, void *arg)
{
    struct prm pr = {0};
    pi(&pr, *(int64_t *)arg);
    return exn(c, Q_PROBE, &pr, NULL);
}

static int pg_probe_write(store_t *st, int64_t now_ms)
{
    return tx((struct pg *)st, TX_WRITE, probe_fn, &now_ms, NULL);
}

#define CLOCK_REFRESH_NS 1000000000LL

static int clock_fn(struct pg *p, struct pconn *c, void *arg)
{
    int64_t *db_ms = arg;
    PGresult *r = PQexec(c->db, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint");
    int rc = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        *db_ms = gi(r, 0, 0);
    else
        rc = dberr(c, r);
    PQclear(r);
    return rc;
}

/* Our clock plus the database's offset from it, measured at most once a
 * second (half the round trip is the error bound, well under a
 * millisecond on a LAN). If the database cannot be asked, the last offset
 * stands: a stale offset drifts only as fast as the two clocks do. */
static int64_t pg_now_ms(store_t *st)
{
    struct pg *p = (struct pg *)st;
    int64_t mono = clock_mono_ns();
    pthread_mutex_lock(&p->clock_mu);
    bool fresh = p->clock_at_ns && mono - p->clock_at_ns < CLOCK_REFRESH_NS;
    int64_t off = p->clock_off_ms;
    pthread_mutex_unlock(&p->clock_mu);
    if (!fresh) {
        int64_t db_ms = 0, t0 = clock_now_ms();
        if (tx(p, TX_NONE, clock_fn, &db_ms, NULL) == 0) {
            int64_t t1 = clock_now_ms();
            off = db_ms - (t0 + t1) / 2;
            pthread_mutex_lock(&p->clock_mu);
            p->clock_off_ms = off;
            p->clock_at_ns = mono;
            pthread_mutex_unlock(&p->clock_mu);
        }
    }
    return clock_now_ms() + off;
}

/* ---- jobs ---------------------------------------------------------------------- */

struct job_create_args {
    store_job_t *job;
    store_schedule_t *scheds;
    size_t nscheds;
    bool run_now;
    const char *idem_key;
    int64_t now_ms;
};

static int job_create_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct job_create_args *a = arg;
    store_job_t *j = a->job;
    struct prm p = {0};
    int64_t n = 0;
    int rc;

    id_new("job", a->now_ms, j->id);
    j->version = 1;
    j->created_ms = j->updated_ms = a->now_ms;
    j->state = JOB_ACTIVE;

    if (a->idem_key) {
        /* Claim the key first: a concurrent create with the same key waits
         * here for ours to commit, then finds it (and answers EEXIST)
         * instead of tripping over our job's name. */
        pt(&p, j->owner);
        pt(&p, a->idem_key);
        pt(&p, j->id);
        pi(&p, a->now_ms);
        if ((rc = exn(c, Q_IDEM_CLAIM, &p, &n)) < 0) return rc;
        if (n == 0) {
            memset(&p, 0, sizeof p);
            pt(&p, j->owner);
            pt(&p, a->idem_key);
            PGresult *r = ex(c, Q_IDEM_GET, &p, &rc);
            if (!r) return rc;
            if (PQntuples(r) == 1) gid(r, 0, 0, j->id);
            PQclear(r);
            return SKED_EEXIST;
        }
    }

    memset(&p, 0, sizeof p);
    pt(&p, j->id);
    pt(&p, j->ns);
    pt(&p, j->owner);
    bind_job_name_queue(&p, j);
    pi(&p, j->state);
    bind_job_policies(&p, j);
    pi(&p, j->version);
    pi(&p, j->created_ms);
    pi(&p, j->updated_ms);
    if ((rc = exn(c, Q_JOB_INSERT, &p, NULL)) < 0) return rc; /* ECONFLICT: name taken */

    for (size_t i = 0; i < a->nscheds; i++) {
        store_schedule_t *sc = &a->scheds[i];
        id_new("sch", a->now_ms, sc->id);
        snprintf(sc->job_id, sizeof sc->job_id, "%s", j->id);
        sc->last_fire_ms = -1;
        memset(&p, 0, sizeof p);
        bind_sched(&p, sc, i, true);
        if ((rc = exn(c, Q_SCHED_INSERT, &p, NULL)) < 0) return rc;
    }
    if (a->run_now) {
        char rid[SKED_ID_LEN];
        rc = insert_run(c, rid, j->id, NULL, RUN_PENDING, a->now_ms, a->now_ms, NULL, a->now_ms,
                        NULL);
        if (rc < 0) return rc;
        want_notify(c);
    }
    return 0;
}

static int pg_job_create(store_t *st, store_job_t *job, store_schedule_t *scheds, size_t nscheds,
                         bool run_now, const char *idem_key, int64_t now_ms)
{
    /* Defaults live with the job so the caller sees what was stored. */
    if (!job->ns) job->ns = xstrdup("default");
    if (!job->owner) job->owner = xstrdup("");
    if (!job->queue) job->queue = xstrdup("default");
    struct job_create_args a = {job, scheds, nscheds, run_now, idem_key, now_ms};
    int rc = tx((struct pg *)st, TX_WRITE, job_create_fn, &a, &a.now_ms);
    if (rc < 0 && rc != SKED_EEXIST) job->id[0] = '\0';
    return rc;
}

/* Reads all schedules of a job into a new array. */
static int read_scheds(struct pconn *c, const char *job_id, store_schedule_t **out, size_t *n)
{
    struct prm p = {0};
    int rc = 0;
    *out = NULL;
    *n = 0;
    pt(&p, job_id);
    PGresult *r = ex(c, Q_SCHED_OF_JOB, &p, &rc);
    if (!r) return rc;
    int rows = PQntuples(r);
    if (rows > 0) {
        *out = xcalloc((size_t)rows, sizeof **out);
        for (int i = 0; i < rows; i++)
            row_sched(r, i, 0, &(*out)[i]);
        *n = (size_t)rows;
    }
    PQclear(r);
    return 0;
}

struct job_get_args {
    const char *id;
    store_job_t *out;
    store_schedule_t **scheds;
    size_t *nscheds;
};

static int job_get_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct job_get_args *a = arg;
    struct prm p = {0};
    int rc = 0;
    pt(&p, a->id);
    PGresult *r = ex(c, Q_JOB_GET, &p, &rc);
    if (!r) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SKED_ENOTFOUND;
    }
    row_job(r, 0, a->out);
    PQclear(r);
    if (a->scheds && (rc = read_scheds(c, a->id, a->scheds, a->nscheds)) < 0) {
        store_job_clear(a->out);
        return rc;
    }
    return 0;
}

static int pg_job_get(store_t *st, const char *id, store_job_t *out, store_schedule_t **scheds,
                      size_t *nscheds)
{
    memset(out, 0, sizeof *out);
    if (scheds) {
        *scheds = NULL;
        *nscheds = 0;
    }
    struct job_get_args a = {id, out, scheds, nscheds};
    return tx((struct pg *)st, scheds ? TX_READ : TX_NONE, job_get_fn, &a, NULL);
}

struct job_list_args {
    const store_job_filter_t *f;
    store_job_t **out;
    size_t *n;
    char **next;
};

static int job_list_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct job_list_args *a = arg;
    const store_job_filter_t *f = a->f;
    struct prm p = {0};
    int64_t cms = 0;
    char cidv[SKED_ID_LEN] = "";
    job_state_t js = JOB_ACTIVE;
    int rc = 0;
    if (f->cursor) store__cursor_decode(f->cursor, &cms, cidv); /* checked by store.c */
    if (f->state) job_state_parse(f->state, &js);
    pt(&p, f->ns);
    if (f->state)
        pi(&p, js);
    else
        pt(&p, NULL);
    pt(&p, f->queue);
    pt(&p, f->name);
    pt(&p, f->tag);
    pi(&p, f->limit + 1); /* one more tells whether a next page exists */
    pt(&p, f->ns_in);
    if (f->cursor) {
        pi(&p, cms);
        pt(&p, cidv);
    }
    PGresult *r = ex(c, f->cursor ? Q_JOB_LIST_AFTER : Q_JOB_LIST, &p, &rc);
    if (!r) return rc;
    size_t n = (size_t)PQntuples(r);
    store_job_t *v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        row_job(r, (int)i, &v[i]);
    PQclear(r);
    if (n > (size_t)f->limit) {
        store_job_clear(&v[--n]);
        *a->next = store__cursor_encode(v[n - 1].created_ms, v[n - 1].id);
    }
    *a->out = v;
    *a->n = n;
    return 0;
}

static int pg_job_list(store_t *st, const store_job_filter_t *f, store_job_t **out, size_t *n,
                       char **next_cursor)
{
    struct job_list_args a = {f, out, n, next_cursor};
    return tx((struct pg *)st, TX_NONE, job_list_fn, &a, NULL);
}

struct job_update_args {
    store_job_t *job;
    int64_t expect;
    store_schedule_t *scheds;
    size_t nscheds;
    int64_t now_ms;
};

static int job_update_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct job_update_args *a = arg;
    store_job_t *j = a->job;
    struct prm p = {0};
    int64_t changed = 0;
    int rc = 0;

    pt(&p, j->id);
    bind_job_name_queue(&p, j);
    bind_job_policies(&p, j);
    pi(&p, a->expect);
    pi(&p, a->now_ms);
    PGresult *r = ex(c, Q_JOB_UPDATE, &p, &rc);
    if (!r) return rc; /* ECONFLICT: the new name is taken */
    if (PQntuples(r) == 0) {
        PQclear(r);
        memset(&p, 0, sizeof p);
        pt(&p, j->id);
        if (!(r = ex(c, Q_JOB_VERSION, &p, &rc))) return rc;
        rc = PQntuples(r) > 0 ? SKED_EPRECOND : SKED_ENOTFOUND;
        PQclear(r);
        return rc;
    }
    j->version = gi(r, 0, 0);
    j->state = (job_state_t)gi(r, 0, 1);
    free(j->ns);
    j->ns = gt0(r, 0, 2);
    free(j->owner);
    j->owner = gt0(r, 0, 3);
    j->created_ms = gi(r, 0, 4);
    j->updated_ms = a->now_ms;
    PQclear(r);
    bool active = j->state == JOB_ACTIVE;

    memset(&p, 0, sizeof p);
    pt(&p, j->id);
    pi(&p, j->priority);
    pt(&p, j->queue ? j->queue : "default");
    if ((rc = exn(c, Q_RUNS_RETARGET, &p, NULL)) < 0) return rc;

    /* Replace the schedule set: keep rows whose id the caller passed back
     * (so their history stays attached), insert the rest, drop the others. */
    memset(&p, 0, sizeof p);
    pt(&p, j->id);
    if ((rc = exn(c, Q_SCHED_UNMARK, &p, NULL)) < 0) return rc;
    for (size_t i = 0; i < a->nscheds; i++) {
        store_schedule_t *sc = &a->scheds[i];
        snprintf(sc->job_id, sizeof sc->job_id, "%s", j->id);
        changed = 0;
        if (sc->id[0]) {
            memset(&p, 0, sizeof p);
            bind_sched(&p, sc, i, active);
            if ((rc = exn(c, Q_SCHED_UPDATE, &p, &changed)) < 0) return rc;
        }
        if (!changed) {
            id_new("sch", a->now_ms, sc->id);
            sc->last_fire_ms = -1;
            memset(&p, 0, sizeof p);
            bind_sched(&p, sc, i, active);
            if ((rc = exn(c, Q_SCHED_INSERT, &p, NULL)) < 0) return rc;
        }
    }
    memset(&p, 0, sizeof p);
    pt(&p, j->id);
    if ((rc = exn(c, Q_SCHED_DROP_UNMARKED, &p, NULL)) < 0) return rc;
    want_notify(c);
    return 0;
}

static int pg_job_update(store_t *st, store_job_t *job, int64_t expect_version,
                         store_schedule_t *scheds, size_t nscheds, int64_t now_ms)
{
    struct job_update_args a = {job, expect_version, scheds, nscheds, now_ms};
    return tx((struct pg *)st, TX_WRITE, job_update_fn, &a, &a.now_ms);
}

struct job_state_args {
    const char *id;
    job_state_t state;
    int64_t now_ms;
};

static int job_set_state_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct job_state_args *a = arg;
    struct prm p = {0};
    int rc = 0;
    pt(&p, a->id);
    PGresult *r = ex(c, Q_JOB_STATE_LOCK, &p, &rc);
    if (!r) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SKED_ENOTFOUND;
    }
    job_state_t cur = (job_state_t)gi(r, 0, 0);
    PQclear(r);
    if (cur == a->state) return 0; /* pause of a paused job: nothing changes */

    memset(&p, 0, sizeof p);
    pt(&p, a->id);
    pi(&p, a->state);
    pi(&p, a->now_ms);
    if ((rc = exn(c, Q_JOB_SET_STATE, &p, NULL)) < 0) return rc;
    memset(&p, 0, sizeof p);
    pt(&p, a->id);
    pb(&p, a->state == JOB_ACTIVE);
    if ((rc = exn(c, Q_SCHED_ACTIVE, &p, NULL)) < 0) return rc;

    if (a->state == JOB_DELETED) {
        memset(&p, 0, sizeof p);
        pt(&p, a->id);
        pi(&p, a->now_ms);
        pt(&p, "job deleted");
        if ((rc = exn(c, Q_RUNS_CANCEL_WAITING, &p, NULL)) < 0) return rc;
        memset(&p, 0, sizeof p);
        pt(&p, a->id);
        pt(&p, "job deleted");
        if ((rc = exn(c, Q_RUNS_CANCEL_RUNNING, &p, NULL)) < 0) return rc;
    } else {
        memset(&p, 0, sizeof p);
        pt(&p, a->id);
        pb(&p, a->state == JOB_PAUSED);
        if ((rc = exn(c, Q_RUNS_HOLD, &p, NULL)) < 0) return rc;
    }
    want_notify(c);
    return 0;
}

static int pg_job_set_state(store_t *st, const char *id, job_state_t state, int64_t now_ms)
{
    struct job_state_args a = {id, state, now_ms};
    return tx((struct pg *)st, TX_WRITE, job_set_state_fn, &a, &a.now_ms);
}

/* ---- firing ---------------------------------------------------------------------- */

struct due_args {
    int64_t until_ms;
    int limit;
    store_due_t **out;
    size_t *n;
};

static int due_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct due_args *a = arg;
    struct prm p = {0};
    int rc = 0;
    pi(&p, a->until_ms);
    pi(&p, a->limit);
    PGresult *r = ex(c, Q_DUE, &p, &rc);
    if (!r) return rc;
    int rows = PQntuples(r);
    store_due_t *v = rows ? xcalloc((size_t)rows, sizeof *v) : NULL;
    for (int i = 0; i < rows; i++) {
        row_sched(r, i, 0, &v[i].sched);
        v[i].misfire = (misfire_policy_t)gi(r, i, 11);
        v[i].overlap = (overlap_policy_t)gi(r, i, 12);
        v[i].catch_up_window_ms = gi(r, i, 13);
    }
    PQclear(r);
    *a->out = v;
    *a->n = (size_t)rows;
    return 0;
}

static int pg_due_schedules(store_t *st, int64_t until_ms, int limit, store_due_t **out, size_t *n)
{
    struct due_args a = {until_ms, limit, out, n};
    return tx((struct pg *)st, TX_NONE, due_fn, &a, NULL);
}

struct fire_args {
    store_fire_t *items;
    size_t n;
    int64_t now_ms;
};

/* Records it->miss (count > 0) for job_id in the ledger: extends the
 * schedule's latest stretch when this one goes on from it, else a new entry. */
static int record_miss(struct pconn *c, const store_fire_t *it, const char *job_id, int64_t now_ms)
{
    const store_fire_miss_t *m = &it->miss;
    struct prm p = {0};
    int64_t n = 0;
    int rc;
    pt(&p, it->schedule_id);
    pi(&p, m->prev_ms);
    pi(&p, m->last_ms);
    pi(&p, m->count);
    pt(&p, m->reason);
    if ((rc = exn(c, Q_MISS_EXTEND, &p, &n)) < 0) return rc;
    if (m->prev_ms >= 0 && n > 0) return 0;
    char id[SKED_ID_LEN];
    id_new("mis", now_ms, id);
    memset(&p, 0, sizeof p);
    pt(&p, id);
    pt(&p, job_id);
    pt(&p, it->schedule_id);
    pi(&p, m->first_ms);
    pi(&p, m->last_ms);
    pi(&p, m->count);
    pt(&p, m->reason);
    pi(&p, now_ms);
    return exn(c, Q_MISS_INSERT, &p, NULL);
}

static int fire_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct fire_args *a = arg;
    int rc = 0;
    for (size_t i = 0; i < a->n; i++)
        a->items[i].applied = 0; /* a retry starts over */
    for (size_t i = 0; i < a->n; i++) {
        store_fire_t *it = &a->items[i];
        struct prm p = {0};
        int64_t last = it->miss.count ? it->miss.last_ms : -1;
        for (size_t k = 0; k < it->nruns; k++)
            if (it->runs[k].fire_ms > last) last = it->runs[k].fire_ms;
        pt(&p, it->schedule_id);
        pin(&p, it->new_next_ms);
        pin(&p, it->expect_next_ms);
        pi(&p, last);
        PGresult *r = ex(c, Q_FIRE_CAS, &p, &rc);
        if (!r) return rc;
        if (PQntuples(r) == 0) { /* another server won, or the job was paused */
            PQclear(r);
            continue;
        }
        char job_id[SKED_ID_LEN];
        gid(r, 0, 0, job_id);
        PQclear(r);
        for (size_t k = 0; k < it->nruns; k++) {
            const store_fire_run_t *fr = &it->runs[k];
            char rid[SKED_ID_LEN];
            rc = insert_run(c, rid, job_id, it->schedule_id, fr->state, fr->fire_ms,
                            fr->not_before_ms,
                            fr->state == RUN_SKIPPED ? (fr->reason ? fr->reason : "skipped") : NULL,
                            a->now_ms, NULL);
            if (rc < 0) return rc;
        }
        if (it->miss.count && (rc = record_miss(c, it, job_id, a->now_ms)) < 0) return rc;
        it->applied = 1;
        if (it->nruns) want_notify(c);
    }
    return 0;
}

static int pg_fire(store_t *st, store_fire_t *items, size_t n, int64_t now_ms)
{
    struct fire_args a = {items, n, now_ms};
    int rc = tx((struct pg *)st, TX_WRITE, fire_fn, &a, &a.now_ms);
    if (rc < 0)
        for (size_t i = 0; i < n; i++)
            items[i].applied = 0;
    return rc;
}

struct trigger_args {
    const char *job_id;
    int64_t now_ms;
    char *run_id;
};

static int trigger_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct trigger_args *a = arg;
    struct prm p = {0};
    int rc = 0;
    pt(&p, a->job_id);
    PGresult *r = ex(c, Q_JOB_STATE_SHARE, &p, &rc);
    if (!r) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SKED_ENOTFOUND;
    }
    job_state_t js = (job_state_t)gi(r, 0, 0);
    PQclear(r);
    if (js == JOB_DELETED) return SKED_ECONFLICT;
    rc = insert_run(c, a->run_id, a->job_id, NULL, RUN_PENDING, a->now_ms, a->now_ms, NULL,
                    a->now_ms, NULL);
    if (rc == 0) want_notify(c);
    return rc;
}

static int pg_run_trigger(store_t *st, const char *job_id, int64_t now_ms, char run_id[SKED_ID_LEN])
{
    struct trigger_args a = {job_id, now_ms, run_id};
    int rc = tx((struct pg *)st, TX_WRITE, trigger_fn, &a, &a.now_ms);
    if (rc < 0) run_id[0] = '\0';
    return rc;
}

struct one_int_args {
    enum q id;
    int64_t v;
};

static int one_int_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct one_int_args *a = arg;
    int rc = 0;
    PGresult *r = ex(c, a->id, NULL, &rc);
    if (!r) return rc;
    if (PQntuples(r) > 0) a->v = gin(r, 0, 0);
    PQclear(r);
    return 0;
}

static int pg_next_claimable_ms(store_t *st, int64_t *out_ms)
{
    struct one_int_args a = {Q_NEXT_CLAIMABLE, -1};
    int rc = tx((struct pg *)st, TX_NONE, one_int_fn, &a, NULL);
    *out_ms = a.v;
    return rc;
}

static int pg_next_fire_ms(store_t *st, int64_t *out_ms)
{
    struct one_int_args a = {Q_NEXT_FIRE, -1};
    int rc = tx((struct pg *)st, TX_NONE, one_int_fn, &a, NULL);
    *out_ms = a.v;
    return rc;
}

/* ---- runs -------------------------------------------------------------------------- */

/* Reads one run by id; SKED_ENOTFOUND. */
static int read_run(struct pconn *c, const char *id, store_run_t *out)
{
    struct prm p = {0};
    int rc = 0;
    pt(&p, id);
    PGresult *r = ex(c, Q_RUN_GET, &p, &rc);
    if (!r) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SKED_ENOTFOUND;
    }
    row_run(r, 0, out);
    PQclear(r);
    return 0;
}

struct run_get_args {
    const char *id;
    store_run_t *out;
    store_attempt_t **att;
    size_t *natt;
};

static int run_get_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct run_get_args *a = arg;
    struct prm p = {0};
    int rc = read_run(c, a->id, a->out);
    if (rc < 0 || !a->att) return rc;
    pt(&p, a->id);
    PGresult *r = ex(c, Q_ATTEMPTS, &p, &rc);
    if (!r) {
        store_run_clear(a->out);
        return rc;
    }
    int rows = PQntuples(r);
    store_attempt_t *v = rows ? xcalloc((size_t)rows, sizeof *v) : NULL;
    for (int i = 0; i < rows; i++) {
        store_attempt_t *t = &v[i];
        t->n = (int)gi(r, i, 0);
        gid(r, i, 1, t->worker_id);
        t->fence = gi(r, i, 2);
        t->started_ms = gi(r, i, 3);
        t->finished_ms = gi(r, i, 4);
        int64_t o = gi(r, i, 5);
        t->outcome = o < 0 ? ATTEMPT_SUCCEEDED : (attempt_outcome_t)o;
        t->exit_code = (int)gi(r, i, 6);
        t->signal = (int)gi(r, i, 7);
        t->reason = gt(r, i, 8);
    }
    PQclear(r);
    *a->att = v;
    *a->natt = (size_t)rows;
    return 0;
}

static int pg_run_get(store_t *st, const char *id, store_run_t *out, store_attempt_t **attempts,
                      size_t *nattempts)
{
    memset(out, 0, sizeof *out);
    if (attempts) {
        *attempts = NULL;
        *nattempts = 0;
    }
    struct run_get_args a = {id, out, attempts, nattempts};
    return tx((struct pg *)st, attempts ? TX_READ : TX_NONE, run_get_fn, &a, NULL);
}

struct run_list_args {
    const store_run_filter_t *f;
    const char *ns_in;
    store_run_t **out;
    size_t *n;
    char **next;
};

static int run_list_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct run_list_args *a = arg;
    const store_run_filter_t *f = a->f;
    struct prm p = {0};
    int64_t cms = 0;
    char cidv[SKED_ID_LEN] = "";
    run_state_t rs = RUN_SCHEDULED;
    enum q id;
    int rc = 0;
    if (f->cursor) store__cursor_decode(f->cursor, &cms, cidv);
    if (f->state) run_state_parse(f->state, &rs);
    if (f->job_id)
        id = f->cursor ? Q_RUN_LIST_JOB_AFTER : Q_RUN_LIST_JOB;
    else
        id = f->cursor ? Q_RUN_LIST_ALL_AFTER : Q_RUN_LIST_ALL;
    pt(&p, f->job_id);
    if (f->state)
        pi(&p, rs);
    else
        pt(&p, NULL);
    pi(&p, f->since_ms);
    pi(&p, f->until_ms);
    pi(&p, f->limit + 1); /* one more tells whether a next page exists */
    pt(&p, a->ns_in);
    if (f->cursor) {
        pi(&p, cms);
        pt(&p, cidv);
    }
    PGresult *r = ex(c, id, &p, &rc);
    if (!r) return rc;
    size_t n = (size_t)PQntuples(r);
    store_run_t *v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        row_run(r, (int)i, &v[i]);
    PQclear(r);
    if (n > (size_t)f->limit) {
        store_run_clear(&v[--n]);
        *a->next = store__cursor_encode(v[n - 1].fire_ms, v[n - 1].id);
    }
    *a->out = v;
    *a->n = n;
    return 0;
}

static int pg_run_list(store_t *st, const store_run_filter_t *f, const char *ns_in,
                       store_run_t **out, size_t *n, char **next_cursor)
{
    struct run_list_args a = {f, ns_in, out, n, next_cursor};
    return tx((struct pg *)st, TX_NONE, run_list_fn, &a, NULL);
}

struct cancel_args {
    const char *id;
    const char *reason;
    int64_t now_ms;
};

static int cancel_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct cancel_args *a = arg;
    struct prm p = {0};
    int rc = 0;
    pt(&p, a->id);
    PGresult *r = ex(c, Q_RUN_STATE_LOCK, &p, &rc);
    if (!r) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SKED_ENOTFOUND;
    }
    run_state_t rs = (run_state_t)gi(r, 0, 0);
    PQclear(r);
    if (run_state_terminal(rs)) return SKED_ECONFLICT;
    const char *reason = a->reason ? a->reason : "canceled";
    memset(&p, 0, sizeof p);
    pt(&p, a->id);
    if (rs == RUN_RUNNING) {
        pt(&p, reason);
        rc = exn(c, Q_RUN_CANCEL_ASK, &p, NULL);
    } else {
        pi(&p, a->now_ms);
        pt(&p, reason);
        rc = exn(c, Q_RUN_CANCEL_NOW, &p, NULL);
    }
    if (rc < 0) return rc;
    want_notify(c);
    return 0;
}

static int pg_run_cancel(store_t *st, const char *id, const char *reason, int64_t now_ms)
{
    struct cancel_args a = {id, reason, now_ms};
    return tx((struct pg *)st, TX_WRITE, cancel_fn, &a, &a.now_ms);
}

/* ---- workers ------------------------------------------------------------------------ */

struct worker_reg_args {
    store_worker_t *w;
    int64_t now_ms;
};

static int worker_register_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct worker_reg_args *a = arg;
    store_worker_t *w = a->w;
    struct prm p = {0};
    int rc = 0;
    pt(&p, w->name);
    pt(&p, w->owner ? w->owner : "");
    PGresult *r = ex(c, Q_WORKER_REUSE, &p, &rc);
    if (!r) return rc;
    bool reuse = PQntuples(r) > 0;
    if (reuse)
        gid(r, 0, 0, w->id);
    else
        id_new("wrk", a->now_ms, w->id);
    PQclear(r);
    memset(&p, 0, sizeof p);
    pt(&p, w->id);
    pt(&p, w->name);
    pt(&p, w->host ? w->host : "");
    pt(&p, w->labels ? w->labels : "");
    pt(&p, w->queues && *w->queues ? w->queues : "default");
    pi(&p, w->slots);
    pi(&p, a->now_ms);
    pt(&p, w->owner ? w->owner : "");
    pt(&p, w->ns ? w->ns : "");
    if ((rc = exn(c, reuse ? Q_WORKER_REPLACE : Q_WORKER_INSERT, &p, NULL)) < 0) return rc;
    w->state = WORKER_ACTIVE;
    w->registered_ms = w->heartbeat_ms = a->now_ms;
    w->running = 0;
    return 0;
}

static int pg_worker_register(store_t *st, store_worker_t *w, int64_t now_ms)
{
    struct worker_reg_args a = {w, now_ms};
    return tx((struct pg *)st, TX_WRITE, worker_register_fn, &a, &a.now_ms);
}

struct worker_get_args {
    const char *id;
    store_worker_t *out;
};

static int worker_get_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct worker_get_args *a = arg;
    struct prm p = {0};
    int rc = 0;
    pt(&p, a->id);
    PGresult *r = ex(c, Q_WORKER_GET, &p, &rc);
    if (!r) return rc;
    rc = PQntuples(r) > 0 ? 0 : SKED_ENOTFOUND;
    if (rc == 0) row_worker(r, 0, a->out);
    PQclear(r);
    return rc;
}

static int pg_worker_get(store_t *st, const char *id, store_worker_t *out)
{
    memset(out, 0, sizeof *out);
    struct worker_get_args a = {id, out};
    return tx((struct pg *)st, TX_NONE, worker_get_fn, &a, NULL);
}

struct worker_list_args {
    const char *cursor;
    int limit;
    store_worker_t **out;
    size_t *n;
    char **next;
};

static int worker_list_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct worker_list_args *a = arg;
    struct prm p = {0};
    int rc = 0;
    pi(&p, a->limit + 1); /* one more than asked: is there a next page? */
    if (a->cursor) pt(&p, a->cursor);
    PGresult *r = ex(c, a->cursor ? Q_WORKER_LIST_AFTER : Q_WORKER_LIST, &p, &rc);
    if (!r) return rc;
    size_t n = (size_t)PQntuples(r);
    store_worker_t *v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        row_worker(r, (int)i, &v[i]);
    PQclear(r);
    if (n > (size_t)a->limit) {
        store_worker_clear(&v[--n]);
        *a->next = xstrdup(v[n - 1].id);
    }
    *a->out = v;
    *a->n = n;
    return 0;
}

static int pg_worker_list(store_t *st, const char *cursor, int limit, store_worker_t **out,
                          size_t *n, char **next_cursor)
{
    struct worker_list_args a = {cursor, limit, out, n, next_cursor};
    return tx((struct pg *)st, TX_NONE, worker_list_fn, &a, NULL);
}

struct worker_state_args {
    const char *id, *owner;
    worker_state_t state;
};

static int worker_state_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct worker_state_args *a = arg;
    struct prm p = {0};
    int rc = 0;
    pt(&p, a->id);
    pi(&p, a->state);
    PGresult *r = ex(c, Q_WORKER_SET_STATE, &p, &rc);
    if (!r) return rc;
    rc = PQntuples(r) == 0                                ? SKED_ENOTFOUND
         : store__owner_ok(a->owner, PQgetvalue(r, 0, 0)) ? 0
                                                          : SKED_EFORBID;
    PQclear(r);
    return rc;
}

static int pg_worker_set_state(store_t *st, const char *id, const char *owner, worker_state_t state,
                               int64_t now_ms)
{
    struct worker_state_args a = {id, owner, state};
    return tx((struct pg *)st, TX_WRITE, worker_state_fn, &a, NULL);
}

/* ---- claim ---------------------------------------------------------------------------- */

struct cand {
    char id[SKED_ID_LEN];
    char job_id[SKED_ID_LEN];
    int64_t eff; /* priority with aging */
    int64_t fire_ms;
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
    char *ns;                 /* the worker's namespace; "" = all */
    store_claimed_t *out;
    size_t n;
};

/* Collects (and locks) the best `window` due runs of the worker's queues by
 * effective priority, as the SQLite backend does. Aging adds at most
 * STORE__AGING_CAP, so a level more than that below the window's worst
 * candidate cannot enter it: the walk visits O(levels near the top) index
 * ranges of O(window) rows each, whatever the backlog. Within a level the
 * oldest due run has aged most, so index order is effective-priority
 * order. *more OUT: candidates beyond the window may exist. */
static int gather(struct pconn *c, const char *queues, const char *labels, const char *ns,
                  int window, int64_t now_ms, struct cand **out, size_t *nout, bool *more)
{
    struct cand *v = NULL;
    size_t n = 0, cap = 0;
    PGresult *r = NULL;
    int rc = 0;
    *more = false;
    char *qs = xstrdup(queues), *save = NULL;
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
            struct prm p = {0};
            pt(&p, queue);
            pi(&p, level);
            if (!(r = ex(c, Q_CLAIM_LEVEL, &p, &rc))) goto out;
            bool none = PQgetisnull(r, 0, 0);
            level = none ? 0 : gi(r, 0, 0);
            PQclear(r);
            r = NULL;
            if (none) break;

            memset(&p, 0, sizeof p);
            pt(&p, queue);
            pi(&p, level);
            pi(&p, now_ms);
            pi(&p, window);
            pt(&p, labels);
            pt(&p, ns);
            if (!(r = ex(c, Q_CLAIM_ROWS, &p, &rc))) goto out;
            int rows = PQntuples(r);
            for (int i = 0; i < rows; i++) {
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    v = xrealloc(v, cap * sizeof *v);
                }
                struct cand *k = &v[n++];
                gid(r, i, 0, k->id);
                gid(r, i, 1, k->job_id);
                k->eff = store__effective_priority((int)level, gi(r, i, 2), now_ms);
                k->fire_ms = gi(r, i, 3);
            }
            PQclear(r);
            r = NULL;
            if (rows == window) *more = true;
        }
    }
    if (n > 1) qsort(v, n, sizeof *v, cand_cmp);
out:
    PQclear(r);
    free(qs);
    if (rc < 0) {
        FREE_NULL(v);
        n = 0;
    }
    *out = v;
    *nout = n;
    return rc;
}

/* Tries to claim one candidate. Returns 1 if claimed (into *cl), 0 if it
 * was passed over, or an error. */
static int claim_one(struct pconn *c, struct claim_args *a, const char *labels,
                     const struct cand *k, store_claimed_t *cl)
{
    struct prm p = {0};
    char *spec = NULL;
    PGresult *r = NULL;
    int rc = 0;

    pt(&p, k->job_id);
    if (!(r = ex(c, Q_CLAIM_JOB, &p, &rc))) goto out;
    if (PQntuples(r) == 0) goto out;
    job_state_t js = (job_state_t)gi(r, 0, 0);
    int max_conc = (int)gi(r, 0, 2);
    overlap_policy_t overlap = (overlap_policy_t)gi(r, 0, 3);
    /* A done job's runs still run; a paused or deleted job's do not (as
     * the claim scan says). */
    if (js == JOB_PAUSED || js == JOB_DELETED ||
        !store__labels_satisfy(labels, PQgetvalue(r, 0, 1)))
        goto out;
    spec = gt0(r, 0, 4);
    int64_t timeout_ms = gi(r, 0, 5);
    char job_name[256];
    snprintf(job_name, sizeof job_name, "%s", PQgetvalue(r, 0, 6));
    PQclear(r);
    r = NULL;

    if (overlap != OVERLAP_ALLOW || max_conc > 0) {
        /* Count the job's running runs under its lock, so two servers
         * claiming runs of one job at once cannot both see room for one. */
        if (!(r = ex(c, Q_JOB_LOCK, &p, &rc))) goto out;
        PQclear(r);
        if (!(r = ex(c, Q_JOB_RUNNING, &p, &rc))) goto out;
        int64_t running = gi(r, 0, 0);
        PQclear(r);
        r = NULL;

        if (running > 0 && overlap == OVERLAP_FORBID) {
            memset(&p, 0, sizeof p);
            pt(&p, k->id);
            pi(&p, a->now_ms);
            if ((rc = exn(c, Q_RUN_SKIP_OVERLAP, &p, NULL)) < 0) goto out;
            want_notify(c);
            goto out;
        }
        if (running > 0 && overlap == OVERLAP_REPLACE) {
            /* The new run waits for the old one to die; its worker learns
             * of the cancel at its next heartbeat. */
            int64_t n = 0;
            if ((rc = exn(c, Q_RUNS_REPLACE, &p, &n)) < 0) goto out;
            if (n) want_notify(c);
            goto out;
        }
        if (max_conc > 0 && running >= max_conc) goto out;
    }

    memset(&p, 0, sizeof p);
    pt(&p, k->id);
    pt(&p, a->worker_id);
    pi(&p, a->now_ms + a->lease_ms);
    pi(&p, a->now_ms);
    pi(&p, store__fence_new()); /* random: no worker can guess another lease's fence */
    if (!(r = ex(c, Q_RUN_LEASE, &p, &rc))) goto out;
    if (PQntuples(r) == 0) goto out; /* claimed or canceled since we looked */
    row_run(r, 0, &cl->run);
    cl->spec_json = spec;
    spec = NULL;
    cl->timeout_ms = timeout_ms;
    memcpy(cl->job_name, job_name, sizeof cl->job_name);
    rc = 1;
out:
    PQclear(r);
    free(spec);
    return rc;
}

static int claim_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct claim_args *a = arg;
    struct cand *cands = NULL;
    char *queues = NULL, *labels = NULL;
    struct prm p = {0};
    int rc = 0;

    pt(&p, a->worker_id);
    pi(&p, a->now_ms);
    pt(&p, a->owner);
    PGresult *r = ex(c, Q_WORKER_TOUCH, &p, &rc);
    if (!r) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SKED_ENOTFOUND;
    }
    worker_state_t ws = (worker_state_t)gi(r, 0, 0);
    queues = gt0(r, 0, 1);
    labels = gt0(r, 0, 2);
    bool owner_ok = store__owner_ok(a->owner, PQgetvalue(r, 0, 3));
    free(a->ns); /* tx() may run us again */
    a->ns = gt0(r, 0, 4);
    PQclear(r);
    if (!owner_ok) {
        rc = SKED_EFORBID; /* rolls the touch back */
        goto out;
    }
    if (ws == WORKER_DRAINING || a->max == 0) goto out;

    a->out = xcalloc((size_t)a->max, sizeof *a->out);
    /* Queue, labels and job state are filtered in SQL, so only concurrency
     * and overlap can pass a candidate over: lock just `max` rows first (so
     * concurrent claimers lock disjoint sets) and widen only when runs were
     * passed over and more may lie beyond the window. */
    for (int window = a->max;; window *= 4) {
        size_t n = 0;
        bool more = false;
        FREE_NULL(cands);
        if ((rc = gather(c, queues, labels, a->ns, window, a->now_ms, &cands, &n, &more)) < 0)
            goto out;
        for (size_t i = 0; i < n && a->n < (size_t)a->max; i++) {
            rc = claim_one(c, a, labels, &cands[i], &a->out[a->n]);
            if (rc < 0) goto out;
            if (rc == 1) a->n++;
        }
        rc = 0;
        if (a->n == (size_t)a->max || !more || window >= CLAIM_WINDOW_MAX) break;
    }
    if (a->n) want_notify(c);
out:
    if (rc < 0) { /* tx() may run us again: leave nothing behind */
        for (size_t i = 0; i < a->n; i++)
            store_claimed_clear(&a->out[i]);
        FREE_NULL(a->out);
        a->n = 0;
    }
    free(cands);
    free(queues);
    free(labels);
    return rc;
}

static int pg_claim(store_t *st, const char *worker_id, const char *owner, int max,
                    int64_t confirm_ms, int64_t now_ms, store_claimed_t **out, size_t *n)
{
    struct claim_args a = {worker_id, owner, max, confirm_ms, now_ms, NULL, NULL, 0};
    int rc = tx((struct pg *)st, TX_WRITE, claim_fn, &a, &a.now_ms);
    free(a.ns);
    if (rc < 0) { /* the commit failed after claim_fn succeeded */
        for (size_t i = 0; i < a.n; i++)
            store_claimed_clear(&a.out[i]);
        FREE_NULL(a.out);
        a.n = 0;
    }
    *out = a.out;
    *n = a.n;
    return rc;
}

/* ---- heartbeat, complete, reap ------------------------------------------------------ */

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

static int heartbeat_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct heartbeat_args *a = arg;
    struct prm p = {0};
    buf_t ids = BUF_INIT, fences = BUF_INIT, started = BUF_INIT;
    PGresult *r = NULL;
    int rc = 0;

    pt(&p, a->worker_id);
    pi(&p, a->now_ms);
    pt(&p, a->owner);
    if (!(r = ex(c, Q_WORKER_TOUCH, &p, &rc))) goto out;
    if (PQntuples(r) == 0) {
        rc = SKED_ENOTFOUND;
        goto out;
    }
    *a->draining = gi(r, 0, 0) == WORKER_DRAINING;
    if (!store__owner_ok(a->owner, PQgetvalue(r, 0, 3))) {
        rc = SKED_EFORBID; /* rolls the touch back */
        goto out;
    }
    PQclear(r);
    r = NULL;
    for (size_t i = 0; i < a->nheld; i++)
        a->held[i].keep = false;
    if (a->nheld == 0) goto out;

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
    memset(&p, 0, sizeof p);
    pt(&p, a->worker_id);
    pi(&p, a->now_ms + a->lease_ms);
    pt(&p, ids.data);
    pt(&p, fences.data);
    pt(&p, started.data);
    if (!(r = ex(c, Q_RUNS_RENEW, &p, &rc))) goto out;
    for (int k = 0; k < PQntuples(r); k++) {
        const char *id = PQgetvalue(r, k, 0);
        int64_t fence = gi(r, k, 1);
        for (size_t i = 0; i < a->nheld; i++)
            if (a->held[i].fence == fence && strcmp(a->held[i].run_id, id) == 0)
                a->held[i].keep = true;
    }
out:
    PQclear(r);
    buf_free(&ids);
    buf_free(&fences);
    buf_free(&started);
    return rc;
}

static int pg_heartbeat(store_t *st, const char *worker_id, const char *owner, store_held_t *held,
                        size_t nheld, int64_t lease_ms, int64_t now_ms, bool *draining)
{
    struct heartbeat_args a = {worker_id, owner, held, nheld, lease_ms, now_ms, draining};
    int rc = tx((struct pg *)st, TX_WRITE, heartbeat_fn, &a, &a.now_ms);
    if (rc < 0)
        for (size_t i = 0; i < nheld; i++)
            held[i].keep = false;
    return rc;
}

/* The running run's facts that decide what a finished attempt leads to. */
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
};

/* Locks the run and reads its facts; SKED_ENOTFOUND. f->reason and
 * f->worker_owner are new. */
static int read_finishing(struct pconn *c, const char *run_id, struct finishing *f)
{
    struct prm p = {0};
    int rc = 0;
    pt(&p, run_id);
    PGresult *r = ex(c, Q_RUN_FOR_FINISH, &p, &rc);
    if (!r) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return SKED_ENOTFOUND;
    }
    f->state = (run_state_t)gi(r, 0, 0);
    f->fence = gi(r, 0, 1);
    f->attempt = (int)gi(r, 0, 2);
    f->cancel_requested = gb(r, 0, 3);
    f->reason = gt(r, 0, 4);
    f->retry.max_attempts = (int)gi(r, 0, 5);
    f->retry.initial_ms = gi(r, 0, 6);
    f->retry.max_ms = gi(r, 0, 7);
    f->retry.multiplier = strtod(PQgetvalue(r, 0, 8), NULL);
    f->retry.jitter = gb(r, 0, 9);
    f->held = gi(r, 0, 10) == JOB_PAUSED;
    f->unconfirmed = gb(r, 0, 11);
    f->worker_owner = gt(r, 0, 12);
    PQclear(r);
    return 0;
}

static void finishing_clear(struct finishing *f)
{
    free(f->reason);
    free(f->worker_owner);
}

/* finish_attempt for an attempt that never started. */
static int unclaim(struct pconn *c, const char *run_id, const struct finishing *f, const char *why,
                   int64_t now_ms)
{
    int64_t not_before = now_ms;
    run_state_t next = store__after_attempt(&f->retry, f->attempt, ATTEMPT_NOT_STARTED,
                                            f->cancel_requested, now_ms, &not_before);
    const char *reason = next == RUN_CANCELED ? (f->reason ? f->reason : "canceled") : why;
    struct prm p = {0};
    int rc;
    pt(&p, run_id);
    pi(&p, next);
    pi(&p, not_before);
    pi(&p, run_state_terminal(next) ? now_ms : -1);
    pt(&p, reason);
    pb(&p, next == RUN_SCHEDULED && f->held);
    if ((rc = exn(c, Q_RUN_UNCLAIM, &p, NULL)) < 0) return rc;
    const int drops[] = {Q_ATTEMPT_DROP, Q_LOG_DROP};
    for (size_t i = 0; i < 2; i++) {
        memset(&p, 0, sizeof p);
        pt(&p, run_id);
        pi(&p, f->attempt);
        if ((rc = exn(c, drops[i], &p, NULL)) < 0) return rc;
    }
    want_notify(c);
    return 0;
}

/* Ends the current attempt of a running run with res and moves the run on
 * (retry, fail, cancel, succeed). reported: the worker said so (true) or
 * the reaper decided (false). */
static int finish_attempt(struct pconn *c, const char *run_id, const struct finishing *f,
                          const store_result_t *res, bool reported, int64_t now_ms)
{
    const char *why = res->reason;
    struct prm p = {0};
    int rc;
    if (res->outcome == ATTEMPT_NOT_STARTED) return unclaim(c, run_id, f, why, now_ms);
    if (!why && res->outcome == ATTEMPT_TIMEOUT) why = "timeout";
    pt(&p, run_id);
    pi(&p, f->attempt);
    pi(&p, now_ms);
    pi(&p, res->outcome);
    pi(&p, res->exit_code);
    pi(&p, res->signal);
    pt(&p, why);
    pb(&p, reported);
    if ((rc = exn(c, Q_ATTEMPT_FINISH, &p, NULL)) < 0) return rc;

    int64_t not_before = now_ms;
    run_state_t next = store__after_attempt(&f->retry, f->attempt, res->outcome,
                                            f->cancel_requested, now_ms, &not_before);
    const char *reason = why;
    if (next == RUN_CANCELED)
        reason = f->reason ? f->reason : why ? why : "canceled";
    else if (next == RUN_SUCCEEDED)
        reason = NULL;
    else if (next == RUN_FAILED && !reason)
        reason = res->outcome == ATTEMPT_LOST ? "lost: lease expired" : "failed";

    memset(&p, 0, sizeof p);
    pt(&p, run_id);
    pi(&p, next);
    pi(&p, not_before);
    pi(&p, run_state_terminal(next) ? now_ms : -1);
    pi(&p, res->exit_code);
    pi(&p, res->signal);
    pt(&p, reason);
    pb(&p, next == RUN_SCHEDULED && f->held);
    if ((rc = exn(c, Q_RUN_FINISH, &p, NULL)) < 0) return rc;
    want_notify(c);
    return 0;
}

struct complete_args {
    const char *run_id;
    int attempt;
    int64_t fence;
    const char *owner;
    const store_result_t *res;
    int64_t now_ms;
};

static int complete_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct complete_args *a = arg;
    struct finishing f = {0};
    PGresult *r = NULL;
    int rc = read_finishing(c, a->run_id, &f);
    if (rc < 0) goto out;
    if (f.state != RUN_RUNNING || f.fence != a->fence || f.attempt != a->attempt) {
        /* Either a repeat of a completion we applied (its answer was lost)
         * or a worker whose lease was taken away. Only the former is 0. */
        struct prm p = {0};
        pt(&p, a->run_id);
        pi(&p, a->attempt);
        pi(&p, a->fence);
        if (!(r = ex(c, Q_ATTEMPT_REPORTED, &p, &rc))) goto out;
        rc = PQntuples(r) > 0 && gb(r, 0, 0) ? 0 : SKED_ESTALE;
        goto out;
    }
    /* The lease is current: only now does who reports it matter (a stale
     * report answers 409 whoever holds the run now). */
    if (!store__owner_ok(a->owner, f.worker_owner)) {
        rc = SKED_EFORBID;
        goto out;
    }
    rc = finish_attempt(c, a->run_id, &f, a->res, true, a->now_ms);
out:
    PQclear(r);
    finishing_clear(&f);
    return rc;
}

static int pg_complete(store_t *st, const char *run_id, int attempt, int64_t fence,
                       const char *owner, const store_result_t *res, int64_t now_ms)
{
    struct complete_args a = {run_id, attempt, fence, owner, res, now_ms};
    return tx((struct pg *)st, TX_WRITE, complete_fn, &a, &a.now_ms);
}

struct reap_args {
    int64_t grace_ms, hb_timeout_ms, now_ms;
    int changed;
};

static int reap_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct reap_args *a = arg;
    struct prm p = {0};
    PGresult *r = NULL;
    int rc = 0;
    a->changed = 0;
    pi(&p, a->now_ms - a->hb_timeout_ms);
    if ((rc = exn(c, Q_WORKERS_LOSE, &p, NULL)) < 0) return rc;

    /* Locks the batch; rows another reaper holds are its to handle. */
    memset(&p, 0, sizeof p);
    pi(&p, a->now_ms - a->grace_ms);
    pi(&p, REAP_BATCH);
    if (!(r = ex(c, Q_EXPIRED, &p, &rc))) return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        struct finishing f = {0};
        if ((rc = read_finishing(c, id, &f)) < 0) break;
        store_result_t res = {ATTEMPT_LOST, -1, 0, "lease expired"};
        if (f.unconfirmed)
            res = (store_result_t){ATTEMPT_NOT_STARTED, -1, 0, store__not_started_reason(false)};
        rc = finish_attempt(c, id, &f, &res, false, a->now_ms);
        finishing_clear(&f);
        if (rc < 0) break;
        a->changed++;
    }
    PQclear(r);
    return rc;
}

static int pg_reap(store_t *st, int64_t grace_ms, int64_t heartbeat_timeout_ms, int64_t now_ms)
{
    int total = 0;
    /* Bounded batches, each its own commit, so a huge backlog holds few
     * locks at a time. */
    for (;;) {
        struct reap_args a = {grace_ms, heartbeat_timeout_ms, now_ms, 0};
        int rc = tx((struct pg *)st, TX_WRITE, reap_fn, &a, &a.now_ms);
        if (rc < 0) return rc;
        total += a.changed;
        if (a.changed < REAP_BATCH) return total;
    }
}

/* ---- the missed-fire ledger ---------------------------------------------------- */

struct miss_list_args {
    const store_miss_filter_t *f;
    store_miss_t **out;
    size_t *n;
    char **next;
};

static int miss_list_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct miss_list_args *a = arg;
    const store_miss_filter_t *f = a->f;
    struct prm p = {0};
    int64_t cms = 0;
    char cidv[SKED_ID_LEN] = "";
    int rc = 0;
    if (f->cursor) store__cursor_decode(f->cursor, &cms, cidv); /* checked by store.c */
    pt(&p, f->job_id);
    if (f->at_ms == INT64_MIN)
        pt(&p, NULL);
    else
        pi(&p, f->at_ms);
    if (f->cursor) {
        pi(&p, cms);
        pt(&p, cidv);
    } else {
        pt(&p, NULL);
        pt(&p, NULL);
    }
    pi(&p, f->limit + 1);
    PGresult *r = ex(c, Q_MISS_LIST, &p, &rc);
    if (!r) return rc;
    size_t n = (size_t)PQntuples(r);
    store_miss_t *v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        store_miss_t *m = &v[i];
        gid(r, (int)i, 0, m->id);
        gid(r, (int)i, 1, m->job_id);
        gid(r, (int)i, 2, m->schedule_id);
        m->first_ms = gi(r, (int)i, 3);
        m->last_ms = gi(r, (int)i, 4);
        m->count = gi(r, (int)i, 5);
        m->reason = gt0(r, (int)i, 6);
        m->created_ms = gi(r, (int)i, 7);
    }
    PQclear(r);
    if (n > (size_t)f->limit) {
        store_miss_clear(&v[--n]);
        *a->next = store__cursor_encode(v[n - 1].last_ms, v[n - 1].id);
    }
    *a->out = v;
    *a->n = n;
    return 0;
}

static int pg_miss_list(store_t *st, const store_miss_filter_t *f, store_miss_t **out, size_t *n,
                        char **next_cursor)
{
    struct miss_list_args a = {f, out, n, next_cursor};
    return tx((struct pg *)st, TX_NONE, miss_list_fn, &a, NULL);
}

/* ---- schema version ---------------------------------------------------------------- */

static int set_version_fn(struct pg *pg, struct pconn *c, void *arg)
{
    struct prm p = {0};
    pi(&p, *(int *)arg);
    return exn(c, Q_VERSION_SET, &p, NULL);
}

static int pg_set_schema_version(store_t *st, int version)
{
    return tx((struct pg *)st, TX_WRITE, set_version_fn, &version, NULL);
}

/* Brings the schema up to SCHEMA_VERSION. Servers starting together take
 * turns on a session advisory lock, so exactly one applies each migration
 * and the others find it done; each run of migrations is one transaction
 * (DDL is transactional in PostgreSQL), so a crash mid-way leaves the old
 * version intact. */
static int migrate(struct pg *p, struct pconn *c, char **errmsg)
{
    PGresult *r = NULL;
    bool locked = false, open = false;
    int version = 0, rc = 0;

    if (p->schema) {
        char *id = PQescapeIdentifier(c->db, p->schema, strlen(p->schema));
        if (!id) {
            rc = SKED_EINVAL;
            goto out;
        }
        char *sql = xasprintf("CREATE SCHEMA IF NOT EXISTS %s", id);
        PQfreemem(id);
        rc = simple(c, sql);
        free(sql);
        /* Two servers creating the schema at once: the loser's unique
         * violation means it exists now, which is all we wanted. */
        if (rc == SKED_ECONFLICT) rc = 0;
        if (rc < 0) goto out;
    }
    if ((rc = simple(c, "SELECT pg_advisory_lock(" LOCK_CLASS ", 0)")) < 0) goto out;
    locked = true;
    if ((rc = simple(c, "BEGIN")) < 0) goto out;
    open = true;
    if ((rc = simple(c, "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")) <
        0)
        goto out;
    r = PQexec(c->db, "SELECT version FROM schema_version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = dberr(c, r);
        goto out;
    }
    if (PQntuples(r) > 0) {
        version = (int)gi(r, 0, 0);
    } else if ((rc = simple(c, "INSERT INTO schema_version VALUES (0)")) < 0) {
        goto out;
    }
    if (version > SCHEMA_VERSION) {
        rc = SKED_ESCHEMA;
        set_errmsg(errmsg, xasprintf("the postgres store has schema version %d, newer than this "
                                     "sked understands (%d): upgrade sked before using this store",
                                     version, SCHEMA_VERSION));
        goto out;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        /* Multi-statement scripts: the simple query protocol, no cache. */
        if ((rc = simple(c, migrations[v])) < 0) {
            set_errmsg(errmsg, xasprintf("postgres schema migration %d failed", v + 1));
            goto out;
        }
        log_info("store", "migrated postgres schema to version %d", v + 1);
    }
    if (version < SCHEMA_VERSION) {
        char *sql = xasprintf("UPDATE schema_version SET version = %d", SCHEMA_VERSION);
        rc = simple(c, sql);
        free(sql);
        if (rc < 0) goto out;
    }
    rc = commit(c);
    open = false;
out:
    PQclear(r);
    if (open) PQclear(PQexec(c->db, "ROLLBACK"));
    if (locked) PQclear(PQexec(c->db, "SELECT pg_advisory_unlock(" LOCK_CLASS ", 0)"));
    if (rc < 0)
        set_errmsg(errmsg, xasprintf("postgres schema check failed: %s", sked_strerror(rc)));
    return rc;
}

/* ---- the listener ---------------------------------------------------------------------- */

/* Opens the listening connection. New; caller PQfinish()es. NULL on
 * failure (logged; *errmsg set if non-NULL). */
static PGconn *listen_open(struct pg *p, char **errmsg)
{
    PGconn *db = pg_connect(p);
    if (!db || PQstatus(db) != CONNECTION_OK) {
        char *m = pq_message(db ? PQerrorMessage(db) : "out of memory");
        log_warn("store", "postgres listener cannot connect: %s", m);
        set_errmsg(errmsg, xasprintf("cannot connect to postgres: %s", m));
        free(m);
        if (db) PQfinish(db);
        return NULL;
    }
    PQsetNoticeProcessor(db, quiet_notice, NULL);
    PGresult *r = PQexec(db, "LISTEN " WAKE_CHANNEL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok || PQsetnonblocking(db, 1) != 0) {
        char *m = pq_message(PQerrorMessage(db));
        log_warn("store", "postgres LISTEN failed: %s", m);
        set_errmsg(errmsg, xasprintf("postgres LISTEN failed: %s", m));
        free(m);
        PQfinish(db);
        return NULL;
    }
    return db;
}

/* Waits up to timeout_ms (-1 = forever) for the stop pipe or fd (-1 =
 * none) to become readable. Returns true when asked to stop. */
static bool wait_io(struct pg *p, int fd, int timeout_ms, bool *readable)
{
    struct pollfd pfd[2] = {{p->stop_pipe[0], POLLIN, 0}, {fd, POLLIN, 0}};
    int n = poll(pfd, fd >= 0 ? 2 : 1, timeout_ms);
    *readable = n > 0 && fd >= 0 && (pfd[1].revents & (POLLIN | POLLERR | POLLHUP));
    return n > 0 && (pfd[0].revents & (POLLIN | POLLHUP));
}

static void *listen_main(void *arg)
{
    struct pg *p = arg;
    PGconn *db = p->ldb;
    bool readable = false;
    for (;;) {
        if (!db) {
            if (wait_io(p, -1, LISTEN_RETRY_MS, &readable)) break;
            if (!(db = listen_open(p, NULL))) continue;
            log_info("store", "postgres listener reconnected");
            /* Wake-ups sent while we were away are lost: look again. */
            store__notify(&p->base);
        }
        int fd = PQsocket(db);
        if (fd >= 0 && wait_io(p, fd, -1, &readable)) break;
        if (fd >= 0 && !readable) continue;
        if (fd < 0 || !PQconsumeInput(db)) {
            char *m = pq_message(PQerrorMessage(db));
            log_warn("store", "postgres listener lost its connection: %s", m);
            free(m);
            PQfinish(db);
            db = NULL;
            continue;
        }
        bool wake = false;
        PGnotify *n;
        while ((n = PQnotifies(db))) {
            /* Our own commits have called store__notify already. */
            if (strcmp(n->extra, p->inst) != 0) wake = true;
            PQfreemem(n);
        }
        if (wake) store__notify(&p->base);
    }
    if (db) PQfinish(db);
    p->ldb = NULL;
    return NULL;
}

/* ---- open and close -------------------------------------------------------------------- */

static void pg_close(store_t *st)
{
    struct pg *p = (struct pg *)st;
    if (p->listener_started) {
        ssize_t w;
        do
            w = write(p->stop_pipe[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(p->listener, NULL);
    }
    if (p->ldb) PQfinish(p->ldb);
    for (int i = 0; i < 2; i++)
        if (p->stop_pipe[i] >= 0) close(p->stop_pipe[i]);
    /* Every verb has returned by now (closing a store in use is a
     * programmer error), so all open connections are idle. */
    for (int i = 0; i < p->nidle; i++)
        pconn_free(p->idle[i]);
    free(p->idle);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->clock_mu);
    pthread_cond_destroy(&p->cv);
    store__fini(&p->base);
    free(p->conninfo);
    free(p->schema);
    free(p);
}

/* Splits our own sked_* parameters off the query string of a postgres URI
 * (libpq would reject them) and returns what libpq should get. A libpq
 * keyword string ("host=... dbname=...") is passed through as is. */
static int parse_url(struct pg *p, const char *url, char **errmsg)
{
    const char *q = strstr(url, "://") ? strchr(url, '?') : NULL;
    buf_t b = BUF_INIT;
    int rc = 0;
    if (!q) {
        p->conninfo = xstrdup(url);
        return 0;
    }
    buf_append(&b, url, (size_t)(q - url));
    char *params = xstrdup(q + 1), *save = NULL;
    bool first = true;
    for (char *kv = strtok_r(params, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
        if (strncmp(kv, "sked_", 5) != 0) {
            buf_puts(&b, first ? "?" : "&");
            buf_puts(&b, kv);
            first = false;
            continue;
        }
        char *val = strchr(kv, '=');
        val = val ? val + 1 : "";
        if (strncmp(kv, "sked_pool=", 10) == 0) {
            char *end = NULL;
            long n = strtol(val, &end, 10);
            if (end == val || *end || n < 1 || n > POOL_MAX) {
                set_errmsg(errmsg, xasprintf("sked_pool must be 1..%d, not '%s'", POOL_MAX, val));
                rc = SKED_EINVAL;
                goto out;
            }
            p->pool_max = (int)n;
        } else if (strncmp(kv, "sked_clock=", 11) == 0) {
            if (strcmp(val, "db") != 0 && strcmp(val, "caller") != 0) {
                set_errmsg(errmsg, xasprintf("sked_clock must be 'db' or 'caller', not '%s'", val));
                rc = SKED_EINVAL;
                goto out;
            }
            p->db_clock = strcmp(val, "db") == 0;
        } else if (strncmp(kv, "sked_schema=", 12) == 0 && *val) {
            free(p->schema);
            p->schema = xstrdup(val);
        } else {
            char *eq = strchr(kv, '=');
            if (eq) *eq = '\0';
            set_errmsg(errmsg, xasprintf("unknown store URL parameter '%s' (known: sked_pool, "
                                         "sked_clock, sked_schema)",
                                         kv));
            rc = SKED_EINVAL;
            goto out;
        }
    }
    p->conninfo = buf_steal(&b);
out:
    free(params);
    buf_free(&b);
    return rc;
}

static const struct store_ops pg_ops = {
    .name = "postgres",
    .close = pg_close,
    .ping = pg_ping,
    .probe_write = pg_probe_write,
    .now_ms = pg_now_ms,
    .job_create = pg_job_create,
    .job_get = pg_job_get,
    .job_list = pg_job_list,
    .job_update = pg_job_update,
    .job_set_state = pg_job_set_state,
    .due_schedules = pg_due_schedules,
    .fire = pg_fire,
    .miss_list = pg_miss_list,
    .run_trigger = pg_run_trigger,
    .next_claimable_ms = pg_next_claimable_ms,
    .next_fire_ms = pg_next_fire_ms,
    .run_get = pg_run_get,
    .run_list = pg_run_list,
    .run_cancel = pg_run_cancel,
    .worker_register = pg_worker_register,
    .worker_get = pg_worker_get,
    .worker_list = pg_worker_list,
    .worker_set_state = pg_worker_set_state,
    .claim = pg_claim,
    .heartbeat = pg_heartbeat,
    .complete = pg_complete,
    .reap = pg_reap,
    .set_schema_version = pg_set_schema_version,
};

int store__pg_open(const char *url, store_t **out, char **errmsg)
{
    struct pg *p = xcalloc(1, sizeof *p);
    struct pconn *c = NULL;
    char *perr = NULL;
    int rc = 0;

    store__init(&p->base, &pg_ops, &pg_driver);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->clock_mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->stop_pipe[0] = p->stop_pipe[1] = -1;
    p->pool_max = POOL_DEFAULT;
    id_new("sto", 0, p->inst);
    *out = NULL;

    if ((rc = parse_url(p, url, errmsg)) < 0) goto fail;
    /* Catch a malformed URL here, with libpq's own words. */
    PQconninfoOption *opts = PQconninfoParse(p->conninfo, &perr);
    if (!opts) {
        char *m = pq_message(perr ? perr : "out of memory");
        set_errmsg(errmsg, xasprintf("bad postgres URL: %s", m));
        free(m);
        if (perr) PQfreemem(perr);
        rc = SKED_EINVAL;
        goto fail;
    }
    PQconninfoFree(opts);
    p->idle = xcalloc((size_t)p->pool_max, sizeof *p->idle);

    /* The first pooled connection migrates, then joins the pool. */
    if ((rc = pconn_new(p, &c, errmsg)) < 0) goto fail;
    p->nopen = 1;
    rc = migrate(p, c, errmsg);
    p->idle[p->nidle++] = c;
    if (rc < 0) goto fail;

    /* LISTEN before returning, so a wake-up for work submitted on another
     * server after store_open returns is never missed. */
    if (pipe2(p->stop_pipe, O_CLOEXEC) != 0) {
        set_errmsg(errmsg, xasprintf("pipe: %s", strerror(errno)));
        rc = SKED_ESTORE;
        goto fail;
    }
    if (!(p->ldb = listen_open(p, errmsg))) {
        rc = SKED_ESTORE;
        goto fail;
    }
    if (pthread_create(&p->listener, NULL, listen_main, p) != 0) {
        set_errmsg(errmsg, xstrdup("cannot start the postgres listener thread"));
        rc = SKED_ESTORE;
        goto fail;
    }
    p->listener_started = true;
    *out = &p->base;
    return 0;
fail:
    pg_close(&p->base);
    return rc;
}
