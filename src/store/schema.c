/*
 * The store's schema, once per version, both dialects side by side: each
 * migration is the SQLite text and the PostgreSQL text of one step. A
 * driver (store_sqlite.c, store_pg.c) applies the steps a database has not
 * had yet and records the version in schema_version; a database written by
 * a newer sked is refused (SKED_ESCHEMA). tests/store/test_parity.c
 * compares the two live catalogs (tables, columns, types, indexes, unique
 * constraints) and fails on any difference it does not list as intended.
 *
 * Adding a table or a column: append one migration here (both texts), then
 * the statements (db_sql_t, in the verb file) and the verb.
 *
 * Enums are stored as their integer values (run_state_t, job_state_t,
 * worker_state_t, ...), pinned by _Static_assert where they are declared.
 * Run states: 0 scheduled, 1 waiting, 2 pending, 3 running, 4.. terminal;
 * job states: 1 paused, 3 deleted; worker states: 0 active, 1 draining,
 * 2 lost, 3 gone. The partial indexes spell these numbers, and the queries
 * that must use them repeat the same predicate text: SQLite uses a partial
 * index only when the query's WHERE contains the index's WHERE terms.
 */
#include "store/store_int.h"

/* ---- the event triggers' shared text (migration 4) ----
 *
 * Which changes make an event, and its type, spelled once for both
 * dialects where the SQL is the same. A run's type is its new state
 * ("run.succeeded"), except: claimed (running, lease not yet confirmed),
 * started (the worker confirmed it), retrying (running -> scheduled with
 * the attempt charged), requeued (the attempt never started and was
 * undone) and cancel_requested (a running run asked to stop). */
#define EV_RUN_STATE(x, t)                                                                         \
    "CASE " x " WHEN 0 THEN 'scheduled' WHEN 1 THEN 'waiting' WHEN 2 THEN 'pending'"               \
    " WHEN 3 THEN 'claimed' WHEN 4 THEN 'succeeded' WHEN 5 THEN 'failed' WHEN 6 THEN 'canceled'"   \
    " WHEN 7 THEN 'skipped' ELSE 'state' || CAST(" x " AS " t ") END"
#define EV_RUN_STATE_LITE(x) EV_RUN_STATE(x, "TEXT")
#define EV_RUN_STATE_PG(x)   EV_RUN_STATE(x, "text")
#define EV_RUN_TYPE_OF(state)                                                                      \
    "CASE WHEN NEW.state = OLD.state AND NEW.cancel_requested AND NOT OLD.cancel_requested"        \
    " THEN 'run.cancel_requested'"                                                                 \
    " WHEN NEW.state = OLD.state THEN 'run.started'"                                               \
    " WHEN OLD.state = 3 AND NEW.state IN (0, 2) AND NEW.attempt < OLD.attempt"                    \
    " THEN 'run.requeued'"                                                                         \
    " WHEN OLD.state = 3 AND NEW.state IN (0, 2) THEN 'run.retrying'"                              \
    " ELSE 'run.' || " state " END"
#define EV_RUN_TYPE    EV_RUN_TYPE_OF(EV_RUN_STATE_LITE("NEW.state"))
#define EV_RUN_TYPE_PG EV_RUN_TYPE_OF(EV_RUN_STATE_PG("NEW.state"))
/* A run's state changed, its cancel was asked for, or its claim confirmed. */
#define EV_RUN_CHANGED                                                                             \
    "(NEW.state != OLD.state OR (NEW.cancel_requested AND NOT OLD.cancel_requested)"               \
    " OR (OLD.unconfirmed AND NOT NEW.unconfirmed AND NEW.state = 3))"
#define EV_RUN_CHANGED_PG                                                                          \
    "NEW.state <> OLD.state OR (NEW.cancel_requested AND NOT OLD.cancel_requested)"                \
    " OR (OLD.unconfirmed AND NOT NEW.unconfirmed AND NEW.state = 3)"
/* A job's state or version changed. */
#define EV_JOB_CHANGED "NEW.state <> OLD.state OR NEW.version <> OLD.version"
#define EV_JOB_TYPE                                                                                \
    "CASE WHEN NEW.state = 0 AND OLD.state = 1 THEN 'job.resumed'"                                 \
    " WHEN NEW.state = OLD.state OR NEW.state = 0 THEN 'job.updated' WHEN NEW.state = 1 THEN "     \
    "'job.paused' WHEN NEW.state = 2 THEN 'job.done'"                                              \
    " ELSE 'job.deleted' END"
#define EV_WORKER_CHANGED "NEW.state <> OLD.state"
#define EV_WORKER_TYPE                                                                             \
    "CASE NEW.state WHEN 0 THEN 'worker.registered' WHEN 1 THEN 'worker.draining'"                 \
    " WHEN 2 THEN 'worker.lost' ELSE 'worker.gone' END"

/* Alert events (GET /v1/events): "alert.opened" when an alert is
 * inserted, "alert.resolved" / "alert.acked" when its state or
 * acknowledgement changes; the detail is "<alert id> <condition>: <what
 * happened>" (or why it cleared). A worker's alert names the worker. */
#define EV_ALERT_COND                                                                              \
    "CASE NEW.cond WHEN 0 THEN 'failed' WHEN 1 THEN 'retrying' WHEN 2 THEN 'sla_missed'"           \
    " WHEN 3 THEN 'overrun' WHEN 4 THEN 'missed' WHEN 5 THEN 'worker_lost' ELSE 'backlog' END"
#define EV_ALERT_VALUES(type)                                                                      \
    type ", NEW.ns, NEW.job_id, NEW.run_id, CASE WHEN NEW.cond = 5 THEN NEW.subject ELSE '' END,"  \
         " 0, " EV_ALERT_COND " || ': ' || CASE WHEN NEW.state = 1"                                \
         " THEN coalesce(NEW.resolve_detail, '') ELSE NEW.detail END, NEW.id"
#define EV_ALERT_TYPE                                                                              \
    "CASE WHEN NEW.state <> OLD.state THEN 'alert.resolved' ELSE 'alert.acked' END"
#define EV_ALERT_CHANGED "NEW.state <> OLD.state OR NEW.acked_ms <> OLD.acked_ms"

const struct store_migration store__migrations[] = {
    /* 1: the initial schema. */
    {.lite =
         "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
         "INSERT INTO counters VALUES ('fence', 0);"

         "CREATE TABLE jobs ("
         " id TEXT PRIMARY KEY, ns TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL,"
         " queue TEXT NOT NULL, spec_json TEXT NOT NULL, constraints TEXT NOT NULL,"
         " tags TEXT NOT NULL, priority INTEGER NOT NULL, state INTEGER NOT NULL,"
         " overlap INTEGER NOT NULL, misfire INTEGER NOT NULL, catch_up_window_ms INTEGER NOT NULL,"
         " max_concurrency INTEGER NOT NULL, timeout_ms INTEGER NOT NULL,"
         " retry_max_attempts INTEGER NOT NULL, retry_initial_ms INTEGER NOT NULL,"
         " retry_max_ms INTEGER NOT NULL, retry_multiplier REAL NOT NULL,"
         " retry_jitter INTEGER NOT NULL, version INTEGER NOT NULL,"
         " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
         /* Names are unique among jobs that are not deleted: a deleted job's
          * name may be reused. */
         "CREATE UNIQUE INDEX jobs_ns_name ON jobs(ns, name) WHERE state != 3;"
         "CREATE INDEX jobs_created ON jobs(created_ms, id);"

         "CREATE TABLE schedules ("
         " id TEXT PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs(id), pos INTEGER NOT NULL,"
         " kind INTEGER NOT NULL, expr TEXT NOT NULL, timezone TEXT NOT NULL,"
         " start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, jitter_ms INTEGER NOT NULL,"
         " anchor_ms INTEGER NOT NULL,"
         " next_fire_ms INTEGER," /* NULL = exhausted */
         " last_fire_ms INTEGER NOT NULL,"
         " active INTEGER NOT NULL);" /* 1 while the job is active: the due index covers only these
                                       */
         "CREATE INDEX schedules_job ON schedules(job_id, pos);"
         "CREATE INDEX schedules_due ON schedules(next_fire_ms) WHERE active = 1;"

         "CREATE TABLE runs ("
         " id TEXT PRIMARY KEY, job_id TEXT NOT NULL REFERENCES jobs(id),"
         " schedule_id TEXT," /* NULL for triggered runs; no FK: schedules are replaced on update */
         " worker_id TEXT NOT NULL DEFAULT '', state INTEGER NOT NULL,"
         " fire_ms INTEGER NOT NULL, not_before_ms INTEGER NOT NULL, priority INTEGER NOT NULL,"
         " queue TEXT NOT NULL,"
         " held INTEGER NOT NULL DEFAULT 0," /* 1 while its job is paused: out of the claim index */
         " attempt INTEGER NOT NULL DEFAULT 0, fence INTEGER NOT NULL DEFAULT 0,"
         " lease_expires_ms INTEGER NOT NULL DEFAULT -1,"
         " cancel_requested INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,"
         " started_ms INTEGER NOT NULL DEFAULT -1, finished_ms INTEGER NOT NULL DEFAULT -1,"
         " exit_code INTEGER NOT NULL DEFAULT -1, signal INTEGER NOT NULL DEFAULT 0, reason TEXT,"
         " log_bytes INTEGER NOT NULL DEFAULT 0, log_truncated INTEGER NOT NULL DEFAULT 0,"
         " UNIQUE (schedule_id, fire_ms));"
         /* The claim order: per queue, priority levels, then oldest due first. */
         "CREATE INDEX runs_claim ON runs(queue, priority, not_before_ms)"
         " WHERE state IN (0, 2) AND held = 0;"
         /* When a waiting claim should look next. */
         "CREATE INDEX runs_due ON runs(not_before_ms) WHERE state IN (0, 2) AND held = 0;"
         "CREATE INDEX runs_job ON runs(job_id, fire_ms, id);"
         "CREATE INDEX runs_fire ON runs(fire_ms, id);"
         /* Running runs are few; these serve concurrency, heartbeats and the reaper. */
         "CREATE INDEX runs_running_job ON runs(job_id) WHERE state = 3;"
         "CREATE INDEX runs_running_worker ON runs(worker_id) WHERE state = 3;"
         "CREATE INDEX runs_lease ON runs(lease_expires_ms) WHERE state = 3;"
         "CREATE INDEX runs_finished ON runs(finished_ms) WHERE state >= 4;"

         "CREATE TABLE attempts ("
         " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, n INTEGER NOT NULL,"
         " worker_id TEXT NOT NULL, fence INTEGER NOT NULL, started_ms INTEGER NOT NULL,"
         " finished_ms INTEGER NOT NULL DEFAULT -1, outcome INTEGER NOT NULL DEFAULT -1,"
         " exit_code INTEGER NOT NULL DEFAULT -1, signal INTEGER NOT NULL DEFAULT 0, reason TEXT,"
         " reported INTEGER NOT NULL DEFAULT 0," /* 1 = finished by the worker's complete */
         " PRIMARY KEY (run_id, n)) WITHOUT ROWID;"

         /* A rowid table (not WITHOUT ROWID): chunks can be large. */
         "CREATE TABLE log_chunks ("
         " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, attempt INTEGER NOT NULL,"
         " seq INTEGER NOT NULL, stream INTEGER NOT NULL, at_ms INTEGER NOT NULL,"
         " data BLOB NOT NULL, PRIMARY KEY (run_id, attempt, seq));"

         "CREATE TABLE workers ("
         " id TEXT PRIMARY KEY, name TEXT NOT NULL, host TEXT NOT NULL, labels TEXT NOT NULL,"
         " queues TEXT NOT NULL, slots INTEGER NOT NULL, state INTEGER NOT NULL,"
         " registered_ms INTEGER NOT NULL, heartbeat_ms INTEGER NOT NULL);"
         "CREATE INDEX workers_name ON workers(name);"
         "CREATE INDEX workers_alive ON workers(heartbeat_ms) WHERE state IN (0, 1);"

         "CREATE TABLE tokens ("
         " id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
         " role INTEGER NOT NULL, ns TEXT NOT NULL, created_ms INTEGER NOT NULL,"
         " expires_ms INTEGER NOT NULL, revoked INTEGER NOT NULL);"

         "CREATE TABLE idempotency ("
         " owner TEXT NOT NULL, key TEXT NOT NULL, job_id TEXT NOT NULL,"
         " created_ms INTEGER NOT NULL, PRIMARY KEY (owner, key)) WITHOUT ROWID;"
         "CREATE INDEX idempotency_created ON idempotency(created_ms);",
     .pg =
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
         "CREATE INDEX idempotency_created ON idempotency (created_ms);"},

    /* 2: users, token ownership and use, the audit log. A user's tokens
     * take the user's current role and namespaces (see token lookup). */
    {.lite =
         "CREATE TABLE users ("
         " name TEXT PRIMARY KEY, pwhash TEXT NOT NULL, role INTEGER NOT NULL,"
         " namespaces TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL)"
         " WITHOUT ROWID;"
         "ALTER TABLE tokens ADD COLUMN user_name TEXT;"
         "ALTER TABLE tokens ADD COLUMN last_used_ms INTEGER;"
         "CREATE INDEX tokens_created ON tokens(created_ms, id);"
         "CREATE INDEX tokens_user ON tokens(user_name);"
         "CREATE TABLE audit ("
         " id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL, actor TEXT NOT NULL, role TEXT NOT NULL,"
         " method TEXT NOT NULL, route TEXT NOT NULL, target TEXT NOT NULL, ns TEXT NOT NULL,"
         " source TEXT NOT NULL, status INTEGER NOT NULL);"
         "CREATE INDEX audit_at ON audit(at_ms, id);"
         "CREATE INDEX audit_actor ON audit(actor, at_ms, id);",
     .pg = "CREATE TABLE users ("
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
           "CREATE INDEX audit_actor ON audit (actor, at_ms, id);"},

    /* 3: claims are confirmed (unconfirmed = 1 until the worker reports the
     * attempt started); workers are bound to the token that registered
     * them and to its namespace. A worker registered before this has owner
     * '': the first worker token to claim or heartbeat for it adopts it, so
     * an upgrade neither strands nor stops the attempts running. */
    /* (PostgreSQL) claims are confirmed (unconfirmed until the worker reports the
     * attempt started); workers are bound to the token that registered
     * them and to its namespace. A worker registered before this has owner
     * '': the first worker token to claim or heartbeat for it adopts it.
     * Fences are random now (store__fence_new). */
    {.lite = "ALTER TABLE runs ADD COLUMN unconfirmed INTEGER NOT NULL DEFAULT 0;"
             "ALTER TABLE workers ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
             "ALTER TABLE workers ADD COLUMN ns TEXT NOT NULL DEFAULT '';"
             /* The readiness probe's write (store_ready). */
             "CREATE TABLE health (id INTEGER PRIMARY KEY, probed_ms INTEGER NOT NULL);"
             /* The missed-fire ledger: a stretch of misfires per row. */
             "CREATE TABLE misses ("
             " id TEXT PRIMARY KEY, job_id TEXT NOT NULL, schedule_id TEXT NOT NULL,"
             " first_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL, count INTEGER NOT NULL,"
             " reason TEXT NOT NULL, created_ms INTEGER NOT NULL);"
             "CREATE INDEX misses_job ON misses(job_id, last_ms, id);"
             "CREATE INDEX misses_sched ON misses(schedule_id, last_ms);",
     .pg = "ALTER TABLE runs ADD COLUMN unconfirmed boolean NOT NULL DEFAULT false;"
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
           "CREATE INDEX misses_sched ON misses (schedule_id, last_ms);"},

    /* 4: the event log behind GET /v1/events. Triggers write it, so every
     * change of a job, run or worker has its event in the transaction that
     * made it, whichever verb made it. Ids grow in commit order on SQLite
     * (one writer); on PostgreSQL they come from a sequence, in allocation
     * order, and a reader serves only ids that can no longer be filled in
     * by a transaction still running (see events.c). A run event's
     * namespace is its job's, read with the event (ns is '' in the row),
     * so the hot paths do not pay a lookup for it. Retention deletes the
     * oldest rows but always keeps the newest, so SQLite's max(rowid) + 1
     * never hands out an id twice. */
    {.lite =
         "CREATE TABLE events ("
         " id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, type TEXT NOT NULL, ns TEXT NOT NULL,"
         " job_id TEXT NOT NULL, run_id TEXT NOT NULL, worker_id TEXT NOT NULL,"
         " attempt INTEGER NOT NULL, detail TEXT, alert_id TEXT NOT NULL DEFAULT '');"
         /* What retention has deleted: resuming before it loses events. */
         "CREATE TABLE event_horizon (id INTEGER PRIMARY KEY, pruned_through INTEGER NOT NULL);"
         "INSERT INTO event_horizon VALUES (1, 0);"
         "CREATE TRIGGER ev_runs_ins AFTER INSERT ON runs BEGIN"
         " INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, attempt, detail)"
         " SELECT " EV_NOW_LITE_EXPR ", 'run.' || " EV_RUN_STATE_LITE(
             "NEW.state") ", '',"
                          " NEW.job_id, NEW.id, NEW.worker_id, NEW.attempt, NEW.reason"
                          "; END;"
                          "CREATE TRIGGER ev_runs_upd AFTER UPDATE ON runs WHEN " EV_RUN_CHANGED
                          " BEGIN"
                          " INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, "
                          "attempt, detail)"
                          " SELECT " EV_NOW_LITE_EXPR ", " EV_RUN_TYPE ", '',"
                          " NEW.job_id, NEW.id, CASE WHEN NEW.worker_id = '' THEN OLD.worker_id"
                          " ELSE NEW.worker_id END, NEW.attempt, NEW.reason"
                          "; END;"
                          "CREATE TRIGGER ev_jobs_ins AFTER INSERT ON jobs BEGIN"
                          " INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, "
                          "attempt, detail)"
                          " VALUES (" EV_NOW_LITE_EXPR
                          ", 'job.created', NEW.ns, NEW.id, '', '', 0, NULL); END;"
                          "CREATE TRIGGER ev_jobs_upd AFTER UPDATE ON jobs WHEN " EV_JOB_CHANGED
                          " BEGIN"
                          " INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, "
                          "attempt, detail)"
                          " VALUES (" EV_NOW_LITE_EXPR ", " EV_JOB_TYPE
                          ", NEW.ns, NEW.id, '', '', 0, NULL); END;"
                          "CREATE TRIGGER ev_workers_ins AFTER INSERT ON workers BEGIN"
                          " INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, "
                          "attempt, detail)"
                          " VALUES (" EV_NOW_LITE_EXPR
                          ", 'worker.registered', NEW.ns, '', '', NEW.id, 0, NULL); END;"
                          "CREATE TRIGGER ev_workers_upd AFTER UPDATE ON workers "
                          "WHEN " EV_WORKER_CHANGED " BEGIN"
                          " INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, "
                          "attempt, detail)"
                          " VALUES (" EV_NOW_LITE_EXPR ", " EV_WORKER_TYPE
                          ", NEW.ns, '', '', NEW.id, 0, NULL);"
                          " END;",
     .pg = "CREATE TABLE events ("
           " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, at_ms bigint NOT NULL,"
           " type text NOT NULL, ns text NOT NULL, job_id text NOT NULL, run_id text NOT NULL,"
           " worker_id text NOT NULL, attempt integer NOT NULL, detail text,"
           " alert_id text NOT NULL DEFAULT '');"
           "CREATE TABLE event_horizon (id integer PRIMARY KEY, pruned_through bigint NOT NULL);"
           "INSERT INTO event_horizon VALUES (1, 0);"
           "CREATE FUNCTION sked_ev_run() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
           " INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, attempt, detail)"
           " SELECT " EV_NOW_PG ", CASE WHEN TG_OP = 'INSERT' THEN 'run.' || " EV_RUN_STATE_PG(
               "NEW.state") " ELSE " EV_RUN_TYPE_PG " END, '',"
                            " NEW.job_id, NEW.id, CASE WHEN NEW.worker_id = '' AND TG_OP = 'UPDATE'"
                            " THEN OLD.worker_id ELSE NEW.worker_id END, NEW.attempt, NEW.reason"
                            "; RETURN NULL; END $$;"
                            "CREATE TRIGGER ev_runs_ins AFTER INSERT ON runs FOR EACH ROW EXECUTE "
                            "FUNCTION sked_ev_run();"
                            "CREATE TRIGGER ev_runs_upd AFTER UPDATE ON runs FOR EACH ROW WHEN "
                            "(" EV_RUN_CHANGED_PG ")"
                            " EXECUTE FUNCTION sked_ev_run();"
                            "CREATE FUNCTION sked_ev_job() RETURNS trigger LANGUAGE plpgsql AS $$ "
                            "BEGIN"
                            " INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, "
                            "attempt, detail)"
                            " VALUES (" EV_NOW_PG
                            ", CASE WHEN TG_OP = 'INSERT' THEN 'job.created' ELSE " EV_JOB_TYPE
                            " END, NEW.ns, NEW.id, '', '', 0, NULL); RETURN NULL; END $$;"
                            "CREATE TRIGGER ev_jobs_ins AFTER INSERT ON jobs FOR EACH ROW EXECUTE "
                            "FUNCTION sked_ev_job();"
                            "CREATE TRIGGER ev_jobs_upd AFTER UPDATE ON jobs FOR EACH ROW WHEN "
                            "(" EV_JOB_CHANGED ")"
                            " EXECUTE FUNCTION sked_ev_job();"
                            "CREATE FUNCTION sked_ev_worker() RETURNS trigger LANGUAGE plpgsql AS "
                            "$$ BEGIN"
                            " INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, "
                            "attempt, detail)"
                            " VALUES (" EV_NOW_PG ", CASE WHEN TG_OP = 'INSERT' THEN "
                            "'worker.registered' ELSE " EV_WORKER_TYPE
                            " END, NEW.ns, '', '', NEW.id, 0, NULL); RETURN NULL; END $$;"
                            "CREATE TRIGGER ev_workers_ins AFTER INSERT ON workers FOR EACH ROW"
                            " EXECUTE FUNCTION sked_ev_worker();"
                            "CREATE TRIGGER ev_workers_upd AFTER UPDATE ON workers FOR EACH ROW"
                            " WHEN (" EV_WORKER_CHANGED ") EXECUTE FUNCTION sked_ev_worker();"},

    /* 5: the counts behind GET /metrics' cluster-wide figures, kept by
     * triggers so a scrape reads a few rows, whatever the number of runs.
     * run_counts: per (queue, state), the runs in that state now for the
     * states a run leaves (0-3), and the runs that ever entered it for the
     * terminal ones (4-7: never decremented, so pruning keeps them).
     * worker_counts: per worker state, the workers, their slots and the
     * runs they hold (busy). A count is the sum of its rows over `shard`:
     * PostgreSQL spreads each count over 16 rows by backend (pid % 16), so
     * concurrent transitions rarely wait on one row; SQLite has one writer
     * and one row (shard 0). Each trigger writes in the same transaction as
     * the change, so the counts commit (or roll back) with it. A run's busy
     * slot follows its worker's state. A run enters running only by a
     * claim, whose worker is active and (PostgreSQL) row-locked by it; a
     * run leaving running is charged to its worker's state at that moment,
     * under a shared advisory lock on the worker (class 'skdw' =
     * 1936417911) that a worker changing state takes exclusively, so a
     * worker's move of its held runs between states and a run's own move
     * cannot interleave. The triggers are created before the counts are
     * filled from the rows already there (on PostgreSQL CREATE TRIGGER
     * waits for the writers in flight), so an upgrade starts exact. */
    {.lite =
         "CREATE TABLE run_counts ("
         " shard INTEGER NOT NULL, queue TEXT NOT NULL, state INTEGER NOT NULL,"
         " n INTEGER NOT NULL, PRIMARY KEY (shard, queue, state)) WITHOUT ROWID;"
         "CREATE TABLE worker_counts ("
         " shard INTEGER NOT NULL, state INTEGER NOT NULL, workers INTEGER NOT NULL,"
         " slots INTEGER NOT NULL, busy INTEGER NOT NULL, PRIMARY KEY (shard, state))"
         " WITHOUT ROWID;"
         /* Runs are never inserted running: no busy slot to count here. */
         "CREATE TRIGGER runs_count_insert AFTER INSERT ON runs BEGIN"
         " INSERT INTO run_counts VALUES (0, NEW.queue, NEW.state, 1)"
         "  ON CONFLICT (shard, queue, state) DO UPDATE SET n = n + 1;"
         " END;"
         "CREATE TRIGGER runs_count_update AFTER UPDATE OF state, queue, worker_id ON runs"
         " WHEN OLD.state != NEW.state OR OLD.queue != NEW.queue"
         " OR OLD.worker_id != NEW.worker_id BEGIN"
         /* The rows a run leaves, and its worker's, exist (they were
          * counted into): plain UPDATEs, cheaper than upserts. */
         " UPDATE run_counts SET n = n - 1 WHERE OLD.state < 4 AND shard = 0"
         "  AND queue = OLD.queue AND state = OLD.state;"
         " INSERT INTO run_counts SELECT 0, NEW.queue, NEW.state, 1"
         "  WHERE NEW.state < 4 OR OLD.state < 4"
         "  ON CONFLICT (shard, queue, state) DO UPDATE SET n = n + 1;"
         " UPDATE worker_counts SET busy = busy - 1 WHERE OLD.state = 3 AND shard = 0"
         "  AND state = (SELECT w.state FROM workers w WHERE w.id = OLD.worker_id);"
         /* A run enters running only by a claim, whose worker is active
          * (store_claim: a draining worker gets nothing, a lost one that
          * claims is active again, in the same transaction). */
         " UPDATE worker_counts SET busy = busy + 1 WHERE NEW.state = 3 AND shard = 0"
         "  AND state = 0;"
         " END;"
         "CREATE TRIGGER runs_count_delete AFTER DELETE ON runs WHEN OLD.state < 4 BEGIN"
         " UPDATE run_counts SET n = n - 1 WHERE shard = 0 AND queue = OLD.queue"
         "  AND state = OLD.state;"
         " UPDATE worker_counts SET busy = busy - 1 WHERE OLD.state = 3 AND shard = 0"
         "  AND state = (SELECT w.state FROM workers w WHERE w.id = OLD.worker_id);"
         " END;"
         "CREATE TRIGGER workers_count_insert AFTER INSERT ON workers BEGIN"
         " INSERT INTO worker_counts VALUES (0, NEW.state, 1, NEW.slots, 0)"
         "  ON CONFLICT (shard, state) DO UPDATE SET workers = workers + 1,"
         "  slots = slots + excluded.slots;"
         " END;"
         "CREATE TRIGGER workers_count_update AFTER UPDATE OF state, slots ON workers"
         " WHEN OLD.state != NEW.state OR OLD.slots != NEW.slots BEGIN"
         " INSERT INTO worker_counts SELECT 0, OLD.state, -1, -OLD.slots,"
         "  -(SELECT count(*) FROM runs WHERE worker_id = OLD.id AND state = 3) WHERE TRUE"
         "  ON CONFLICT (shard, state) DO UPDATE SET workers = workers + excluded.workers,"
         "  slots = slots + excluded.slots, busy = busy + excluded.busy;"
         " INSERT INTO worker_counts SELECT 0, NEW.state, 1, NEW.slots,"
         "  (SELECT count(*) FROM runs WHERE worker_id = NEW.id AND state = 3) WHERE TRUE"
         "  ON CONFLICT (shard, state) DO UPDATE SET workers = workers + excluded.workers,"
         "  slots = slots + excluded.slots, busy = busy + excluded.busy;"
         " END;"
         "CREATE TRIGGER workers_count_delete AFTER DELETE ON workers BEGIN"
         " INSERT INTO worker_counts SELECT 0, OLD.state, -1, -OLD.slots,"
         "  -(SELECT count(*) FROM runs WHERE worker_id = OLD.id AND state = 3) WHERE TRUE"
         "  ON CONFLICT (shard, state) DO UPDATE SET workers = workers + excluded.workers,"
         "  slots = slots + excluded.slots, busy = busy + excluded.busy;"
         " END;"
         "INSERT INTO run_counts SELECT 0, queue, state, count(*) FROM runs GROUP BY queue, state;"
         "INSERT INTO worker_counts SELECT 0, w.state, count(*), sum(w.slots),"
         " sum((SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.state = 3))"
         " FROM workers w GROUP BY w.state;",
     .pg =
         "CREATE TABLE run_counts ("
         " shard integer NOT NULL, queue text NOT NULL, state integer NOT NULL,"
         " n bigint NOT NULL, PRIMARY KEY (shard, queue, state));"
         "CREATE TABLE worker_counts ("
         " shard integer NOT NULL, state integer NOT NULL, workers bigint NOT NULL,"
         " slots bigint NOT NULL, busy bigint NOT NULL, PRIMARY KEY (shard, state));"
         /* The counters a run's change moves, in this backend's shard:
          * rows in one order (queue, then state), so two transitions in
          * one shard cannot each hold the row the other wants next. A run
          * enters running only by a claim, whose worker is active and
          * locked by it (store_claim); one leaving running charges its
          * worker's state now, under the worker's shared lock. */
         "CREATE FUNCTION sked_runs_count() RETURNS trigger LANGUAGE plpgsql AS $f$"
         " DECLARE s integer := pg_backend_pid() % 16; leave boolean; enter boolean;"
         " BEGIN"
         "  IF TG_OP = 'INSERT' THEN"
         "   INSERT INTO run_counts VALUES (s, NEW.queue, NEW.state, 1)"
         "    ON CONFLICT (shard, queue, state) DO UPDATE SET n = run_counts.n + 1;"
         "   RETURN NULL;"
         "  END IF;"
         "  leave := OLD.state < 4;"
         "  enter := TG_OP = 'UPDATE' AND (NEW.state < 4 OR OLD.state < 4);"
         "  IF leave AND enter AND (NEW.queue, NEW.state) < (OLD.queue, OLD.state) THEN"
         "   INSERT INTO run_counts VALUES (s, NEW.queue, NEW.state, 1)"
         "    ON CONFLICT (shard, queue, state) DO UPDATE SET n = run_counts.n + 1;"
         "   enter := false;"
         "  END IF;"
         "  IF leave THEN"
         "   INSERT INTO run_counts VALUES (s, OLD.queue, OLD.state, -1)"
         "    ON CONFLICT (shard, queue, state) DO UPDATE SET n = run_counts.n - 1;"
         "  END IF;"
         "  IF enter THEN"
         "   INSERT INTO run_counts VALUES (s, NEW.queue, NEW.state, 1)"
         "    ON CONFLICT (shard, queue, state) DO UPDATE SET n = run_counts.n + 1;"
         "  END IF;"
         "  IF OLD.state = 3 THEN"
         "   PERFORM pg_advisory_xact_lock_shared(1936417911, hashtext(OLD.worker_id));"
         "   INSERT INTO worker_counts SELECT s, w.state, 0, 0, -1 FROM workers w"
         "    WHERE w.id = OLD.worker_id"
         "    ON CONFLICT (shard, state) DO UPDATE SET busy = worker_counts.busy - 1;"
         "  END IF;"
         "  IF TG_OP = 'UPDATE' AND NEW.state = 3 THEN"
         "   INSERT INTO worker_counts VALUES (s, 0, 0, 0, 1)"
         "    ON CONFLICT (shard, state) DO UPDATE SET busy = worker_counts.busy + 1;"
         "  END IF;"
         "  RETURN NULL;"
         " END $f$;"
         "CREATE FUNCTION sked_workers_count() RETURNS trigger LANGUAGE plpgsql AS $f$"
         " DECLARE s integer := pg_backend_pid() % 16; wid text; nbusy bigint;"
         " BEGIN"
         "  IF TG_OP = 'INSERT' THEN"
         "   INSERT INTO worker_counts VALUES (s, NEW.state, 1, NEW.slots, 0)"
         "    ON CONFLICT (shard, state) DO UPDATE SET workers = worker_counts.workers + 1,"
         "    slots = worker_counts.slots + excluded.slots;"
         "   RETURN NULL;"
         "  END IF;"
         "  wid := OLD.id;"
         "  PERFORM pg_advisory_xact_lock(1936417911, hashtext(wid));"
         "  SELECT count(*) INTO nbusy FROM runs WHERE worker_id = wid AND state = 3;"
         "  INSERT INTO worker_counts VALUES (s, OLD.state, -1, -OLD.slots, -nbusy)"
         "   ON CONFLICT (shard, state) DO UPDATE SET workers = worker_counts.workers - 1,"
         "   slots = worker_counts.slots + excluded.slots,"
         "   busy = worker_counts.busy + excluded.busy;"
         "  IF TG_OP = 'UPDATE' THEN"
         "   INSERT INTO worker_counts VALUES (s, NEW.state, 1, NEW.slots, nbusy)"
         "    ON CONFLICT (shard, state) DO UPDATE SET workers = worker_counts.workers + 1,"
         "    slots = worker_counts.slots + excluded.slots,"
         "    busy = worker_counts.busy + excluded.busy;"
         "  END IF;"
         "  RETURN NULL;"
         " END $f$;"
         "CREATE TRIGGER runs_count_insert AFTER INSERT ON runs"
         " FOR EACH ROW EXECUTE FUNCTION sked_runs_count();"
         "CREATE TRIGGER runs_count_update AFTER UPDATE OF state, queue, worker_id ON runs"
         " FOR EACH ROW WHEN (OLD.state <> NEW.state OR OLD.queue <> NEW.queue"
         " OR OLD.worker_id <> NEW.worker_id) EXECUTE FUNCTION sked_runs_count();"
         "CREATE TRIGGER runs_count_delete AFTER DELETE ON runs"
         " FOR EACH ROW WHEN (OLD.state < 4) EXECUTE FUNCTION sked_runs_count();"
         "CREATE TRIGGER workers_count_insert AFTER INSERT ON workers"
         " FOR EACH ROW EXECUTE FUNCTION sked_workers_count();"
         "CREATE TRIGGER workers_count_update AFTER UPDATE OF state, slots ON workers"
         " FOR EACH ROW WHEN (OLD.state <> NEW.state OR OLD.slots <> NEW.slots)"
         " EXECUTE FUNCTION sked_workers_count();"
         "CREATE TRIGGER workers_count_delete AFTER DELETE ON workers"
         " FOR EACH ROW EXECUTE FUNCTION sked_workers_count();"
         "INSERT INTO run_counts SELECT 0, queue, state, count(*) FROM runs GROUP BY queue, state;"
         "INSERT INTO worker_counts SELECT 0, w.state, count(*), sum(w.slots),"
         " sum((SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.state = 3))"
         " FROM workers w GROUP BY w.state;"},

    /* 6: alerts. Rules (a job's own: job_id set, one per entry of its
     * "alerts", at pos >= 0; global: job_id '', pos -1, a unique name),
     * their channels, the alerts
     * they open (at most one open per rule, subject and condition: the
     * partial unique index settles races between servers), the outbox of
     * notices (claimed like runs: due_ms doubles as the claim's expiry),
     * the backlog watch, and on jobs the SLA and a count of open alerts
     * (read where a completion already reads the job, so a success pays
     * nothing more while none is open). Ledger entries are judged by the
     * missed-fire evaluator in last_ms order. */
    {.lite =
         "ALTER TABLE jobs ADD COLUMN sla_start_ms INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE jobs ADD COLUMN sla_finish_ms INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE jobs ADD COLUMN alerts_open INTEGER NOT NULL DEFAULT 0;"
         "CREATE TABLE alert_rules ("
         " id TEXT PRIMARY KEY, job_id TEXT NOT NULL, pos INTEGER NOT NULL, name TEXT NOT NULL,"
         " conds INTEGER NOT NULL, scope_ns TEXT NOT NULL, scope_queue TEXT NOT NULL,"
         " scope_job TEXT NOT NULL, scope_tag TEXT NOT NULL, overrun_factor REAL NOT NULL,"
         " overrun_min_samples INTEGER NOT NULL, missed_window_ms INTEGER NOT NULL,"
         " backlog_depth INTEGER NOT NULL, backlog_for_ms INTEGER NOT NULL,"
         " scanned_ms INTEGER NOT NULL," /* missed: fire times up to this were judged */
         " version INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
         "CREATE INDEX alert_rules_job ON alert_rules(job_id, pos);"
         "CREATE UNIQUE INDEX alert_rules_name ON alert_rules(name) WHERE pos < 0;"
         "CREATE INDEX alert_rules_created ON alert_rules(created_ms, id);"
         "CREATE TABLE alert_channels ("
         " rule_id TEXT NOT NULL REFERENCES alert_rules(id) ON DELETE CASCADE,"
         " n INTEGER NOT NULL, kind INTEGER NOT NULL, target TEXT NOT NULL,"
         " secret TEXT NOT NULL," /* '' = none; never shown */
         " PRIMARY KEY (rule_id, n)) WITHOUT ROWID;"
         "CREATE TABLE alerts ("
         " id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, cond INTEGER NOT NULL,"
         " subject TEXT NOT NULL," /* the job's, worker's id or the queue's name */
         " name TEXT NOT NULL, job_id TEXT NOT NULL, ns TEXT NOT NULL, run_id TEXT NOT NULL,"
         " state INTEGER NOT NULL, detail TEXT NOT NULL, resolve_detail TEXT,"
         " opened_ms INTEGER NOT NULL, resolved_ms INTEGER NOT NULL,"
         " acked_by TEXT, acked_ms INTEGER NOT NULL);"
         "CREATE UNIQUE INDEX alerts_one_open ON alerts(rule_id, subject, cond) WHERE state = 0;"
         "CREATE INDEX alerts_open_job ON alerts(job_id) WHERE state = 0;"
         "CREATE INDEX alerts_open_cond ON alerts(cond) WHERE state = 0;"
         "CREATE INDEX alerts_opened ON alerts(opened_ms, id);"
         "CREATE INDEX alerts_job ON alerts(job_id, opened_ms, id);"
         "CREATE TABLE alert_outbox ("
         " id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, event INTEGER NOT NULL,"
         " kind INTEGER NOT NULL, target TEXT NOT NULL, secret TEXT NOT NULL,"
         " state INTEGER NOT NULL, tries INTEGER NOT NULL, due_ms INTEGER NOT NULL,"
         " owner TEXT NOT NULL, claim INTEGER NOT NULL, last_error TEXT,"
         " created_ms INTEGER NOT NULL, sent_ms INTEGER NOT NULL);"
         "CREATE INDEX alert_outbox_due ON alert_outbox(due_ms) WHERE state = 0;"
         "CREATE INDEX alert_outbox_alert ON alert_outbox(alert_id);"
         "CREATE TABLE alert_watch ("
         " rule_id TEXT NOT NULL, subject TEXT NOT NULL, since_ms INTEGER NOT NULL,"
         " PRIMARY KEY (rule_id, subject)) WITHOUT ROWID;"
         "CREATE INDEX misses_last ON misses(last_ms);"
         "CREATE TRIGGER ev_alerts_ins AFTER INSERT ON alerts BEGIN"
         " INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, attempt, detail,"
         " alert_id)"
         " VALUES (" EV_NOW_LITE_EXPR
         ", " EV_ALERT_VALUES("'alert.opened'") "); END;"
                                                "CREATE TRIGGER ev_alerts_upd AFTER UPDATE ON "
                                                "alerts WHEN " EV_ALERT_CHANGED " BEGIN"
                                                " INSERT INTO events (at_ms, type, ns, job_id, "
                                                "run_id, worker_id, attempt, detail, alert_id)"
                                                " VALUES (" EV_NOW_LITE_EXPR
                                                ", " EV_ALERT_VALUES(EV_ALERT_TYPE) "); END;",
     .pg = "ALTER TABLE jobs ADD COLUMN sla_start_ms bigint NOT NULL DEFAULT 0;"
           "ALTER TABLE jobs ADD COLUMN sla_finish_ms bigint NOT NULL DEFAULT 0;"
           "ALTER TABLE jobs ADD COLUMN alerts_open integer NOT NULL DEFAULT 0;"
           "CREATE TABLE alert_rules ("
           " id text PRIMARY KEY, job_id text NOT NULL, pos integer NOT NULL, name text NOT NULL,"
           " conds integer NOT NULL, scope_ns text NOT NULL, scope_queue text NOT NULL,"
           " scope_job text NOT NULL, scope_tag text NOT NULL,"
           " overrun_factor double precision NOT NULL,"
           " overrun_min_samples integer NOT NULL, missed_window_ms bigint NOT NULL,"
           " backlog_depth integer NOT NULL, backlog_for_ms bigint NOT NULL,"
           " scanned_ms bigint NOT NULL," /* missed: fire times up to this were judged */
           " version bigint NOT NULL, created_ms bigint NOT NULL, updated_ms bigint NOT NULL);"
           "CREATE INDEX alert_rules_job ON alert_rules (job_id, pos);"
           "CREATE UNIQUE INDEX alert_rules_name ON alert_rules (name) WHERE pos < 0;"
           "CREATE INDEX alert_rules_created ON alert_rules (created_ms, id);"
           "CREATE TABLE alert_channels ("
           " rule_id text NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,"
           " n integer NOT NULL, kind integer NOT NULL, target text NOT NULL,"
           " secret text NOT NULL," /* '' = none; never shown */
           " PRIMARY KEY (rule_id, n));"
           "CREATE TABLE alerts ("
           " id text PRIMARY KEY, rule_id text NOT NULL, cond integer NOT NULL,"
           " subject text NOT NULL," /* the job's, worker's id or the queue's name */
           " name text NOT NULL, job_id text NOT NULL, ns text NOT NULL, run_id text NOT NULL,"
           " state integer NOT NULL, detail text NOT NULL, resolve_detail text,"
           " opened_ms bigint NOT NULL, resolved_ms bigint NOT NULL,"
           " acked_by text, acked_ms bigint NOT NULL);"
           "CREATE UNIQUE INDEX alerts_one_open ON alerts (rule_id, subject, cond) WHERE state = 0;"
           "CREATE INDEX alerts_open_job ON alerts (job_id) WHERE state = 0;"
           "CREATE INDEX alerts_open_cond ON alerts (cond) WHERE state = 0;"
           "CREATE INDEX alerts_opened ON alerts (opened_ms, id);"
           "CREATE INDEX alerts_job ON alerts (job_id, opened_ms, id);"
           "CREATE TABLE alert_outbox ("
           " id text PRIMARY KEY, alert_id text NOT NULL, event integer NOT NULL,"
           " kind integer NOT NULL, target text NOT NULL, secret text NOT NULL,"
           " state integer NOT NULL, tries integer NOT NULL, due_ms bigint NOT NULL,"
           " owner text NOT NULL, claim bigint NOT NULL, last_error text,"
           " created_ms bigint NOT NULL, sent_ms bigint NOT NULL);"
           "CREATE INDEX alert_outbox_due ON alert_outbox (due_ms) WHERE state = 0;"
           "CREATE INDEX alert_outbox_alert ON alert_outbox (alert_id);"
           "CREATE TABLE alert_watch ("
           " rule_id text NOT NULL, subject text NOT NULL, since_ms bigint NOT NULL,"
           " PRIMARY KEY (rule_id, subject));"
           "CREATE INDEX misses_last ON misses (last_ms);"
           "CREATE FUNCTION sked_ev_alert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
           " INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, attempt, detail,"
           " alert_id)"
           " VALUES (" EV_NOW_PG ", " EV_ALERT_VALUES(
               "CASE WHEN TG_OP = 'INSERT' THEN"
               " 'alert.opened' ELSE " EV_ALERT_TYPE
               " END") "); RETURN NULL; END $$;"
                       "CREATE TRIGGER ev_alerts_ins AFTER INSERT ON alerts FOR EACH ROW"
                       " EXECUTE FUNCTION sked_ev_alert();"
                       "CREATE TRIGGER ev_alerts_upd AFTER UPDATE ON alerts FOR EACH ROW"
                       " WHEN (" EV_ALERT_CHANGED ") EXECUTE FUNCTION sked_ev_alert();"},
    /* 7: workflows, job arrays and job dependencies (src/store/graph.c).
     * A workflow is a job (kind 1) whose tasks are jobs too (kind 2,
     * parent_id = the workflow), with their edges in job_edges; a job's
     * own dependencies (Slurm's afterok, ...) are job_edges of a kind-0
     * job. jobs.graph tells the run insert what a new run needs (bits:
     * 1 workflow, 2 array, 4 depends on jobs, 8 has dependent jobs);
     * runs copy it. A workflow run or an array's run is a group run
     * (run_groups) waiting on its members (runs.parent_id); a run with
     * upstreams keeps their counts (deps_*) and its edges (run_edges); an
     * edge to an upstream job that has no run yet waits in dep_waits. */
    {.lite =
         "ALTER TABLE jobs ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE jobs ADD COLUMN parent_id TEXT;"
         "ALTER TABLE jobs ADD COLUMN graph INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE jobs ADD COLUMN deps_rule INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE jobs ADD COLUMN max_active INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE jobs ADD COLUMN array_count INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE jobs ADD COLUMN array_parallel INTEGER NOT NULL DEFAULT 0;"
         "DROP INDEX jobs_ns_name;"
         "CREATE UNIQUE INDEX jobs_ns_name ON jobs(ns, name) WHERE state != 3 AND kind != 2;"
         "CREATE UNIQUE INDEX jobs_tasks ON jobs(parent_id, name) WHERE kind = 2 AND state != 3;"
         "CREATE INDEX jobs_kind ON jobs(kind, created_ms, id);"
         "CREATE INDEX jobs_parent ON jobs(parent_id);"
         "CREATE TABLE job_edges ("
         " job_id TEXT NOT NULL, up_job_id TEXT NOT NULL, cond INTEGER NOT NULL,"
         " pos INTEGER NOT NULL, PRIMARY KEY (job_id, up_job_id)) WITHOUT ROWID;"
         "CREATE INDEX job_edges_up ON job_edges(up_job_id);"
         "ALTER TABLE runs ADD COLUMN graph INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE runs ADD COLUMN parent_id TEXT;"
         "ALTER TABLE runs ADD COLUMN array_index INTEGER NOT NULL DEFAULT -1;"
         "ALTER TABLE runs ADD COLUMN deps_rule INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE runs ADD COLUMN deps_n INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE runs ADD COLUMN deps_ok INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE runs ADD COLUMN deps_fail INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE runs ADD COLUMN deps_skip INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE runs ADD COLUMN n_down INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE runs ADD COLUMN retry_base INTEGER NOT NULL DEFAULT 0;"
         "CREATE INDEX runs_parent ON runs(parent_id, array_index) WHERE parent_id IS NOT NULL;"
         "CREATE INDEX runs_waiting_job ON runs(job_id, fire_ms) WHERE state = 1;"
         "CREATE TABLE run_edges ("
         " up_id TEXT NOT NULL, run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
         " cond INTEGER NOT NULL, PRIMARY KEY (up_id, run_id)) WITHOUT ROWID;"
         "CREATE INDEX run_edges_down ON run_edges(run_id);"
         "CREATE TABLE run_groups ("
         " run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,"
         " n INTEGER NOT NULL, open INTEGER NOT NULL, ok INTEGER NOT NULL DEFAULT 0,"
         " failed INTEGER NOT NULL DEFAULT 0, canceled INTEGER NOT NULL DEFAULT 0,"
         " skipped INTEGER NOT NULL DEFAULT 0, started INTEGER NOT NULL,"
         " parallel INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
         "CREATE TABLE dep_waits ("
         " up_job_id TEXT NOT NULL, run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
         " cond INTEGER NOT NULL, PRIMARY KEY (up_job_id, run_id)) WITHOUT ROWID;",
     .pg = "ALTER TABLE jobs ADD COLUMN kind integer NOT NULL DEFAULT 0,"
           " ADD COLUMN parent_id text, ADD COLUMN graph integer NOT NULL DEFAULT 0,"
           " ADD COLUMN deps_rule integer NOT NULL DEFAULT 0,"
           " ADD COLUMN max_active integer NOT NULL DEFAULT 0,"
           " ADD COLUMN array_count integer NOT NULL DEFAULT 0,"
           " ADD COLUMN array_parallel integer NOT NULL DEFAULT 0;"
           "DROP INDEX jobs_ns_name;"
           "CREATE UNIQUE INDEX jobs_ns_name ON jobs (ns, name) WHERE state <> 3 AND kind <> 2;"
           "CREATE UNIQUE INDEX jobs_tasks ON jobs (parent_id, name) WHERE kind = 2 AND state <> 3;"
           "CREATE INDEX jobs_kind ON jobs (kind, created_ms, id);"
           "CREATE INDEX jobs_parent ON jobs (parent_id);"
           "CREATE TABLE job_edges ("
           " job_id text NOT NULL, up_job_id text NOT NULL, cond integer NOT NULL,"
           " pos integer NOT NULL, PRIMARY KEY (job_id, up_job_id));"
           "CREATE INDEX job_edges_up ON job_edges (up_job_id);"
           "ALTER TABLE runs ADD COLUMN graph integer NOT NULL DEFAULT 0,"
           " ADD COLUMN parent_id text, ADD COLUMN array_index integer NOT NULL DEFAULT -1,"
           " ADD COLUMN deps_rule integer NOT NULL DEFAULT 0,"
           " ADD COLUMN deps_n integer NOT NULL DEFAULT 0,"
           " ADD COLUMN deps_ok integer NOT NULL DEFAULT 0,"
           " ADD COLUMN deps_fail integer NOT NULL DEFAULT 0,"
           " ADD COLUMN deps_skip integer NOT NULL DEFAULT 0,"
           " ADD COLUMN n_down integer NOT NULL DEFAULT 0,"
           " ADD COLUMN retry_base integer NOT NULL DEFAULT 0;"
           "CREATE INDEX runs_parent ON runs (parent_id, array_index) WHERE parent_id IS NOT NULL;"
           "CREATE INDEX runs_waiting_job ON runs (job_id, fire_ms) WHERE state = 1;"
           "CREATE TABLE run_edges ("
           " up_id text NOT NULL, run_id text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
           " cond integer NOT NULL, PRIMARY KEY (up_id, run_id));"
           "CREATE INDEX run_edges_down ON run_edges (run_id);"
           "CREATE TABLE run_groups ("
           " run_id text PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,"
           " n integer NOT NULL, open integer NOT NULL, ok integer NOT NULL DEFAULT 0,"
           " failed integer NOT NULL DEFAULT 0, canceled integer NOT NULL DEFAULT 0,"
           " skipped integer NOT NULL DEFAULT 0, started boolean NOT NULL,"
           " parallel integer NOT NULL DEFAULT 0);"
           "CREATE TABLE dep_waits ("
           " up_job_id text NOT NULL, run_id text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
           " cond integer NOT NULL, PRIMARY KEY (up_job_id, run_id));"},

    /* 8: results and checkpoints (docs/results.md). An attempt's result is the
     * JSON text its worker reported (NULL = none), written by the statement
     * that finishes the attempt. A run's checkpoint is the latest progress
     * text any of its attempts shipped, one row per run (a rowid table:
     * rows can be large), kept across attempts and deleted with the run,
     * as the attempts are. */
    {.lite = "ALTER TABLE attempts ADD COLUMN result TEXT;"
             "CREATE TABLE checkpoints ("
             " run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,"
             " attempt INTEGER NOT NULL, at_ms INTEGER NOT NULL, data TEXT NOT NULL);",
     .pg = "ALTER TABLE attempts ADD COLUMN result text;"
           "CREATE TABLE checkpoints ("
           " run_id text PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,"
           " attempt integer NOT NULL, at_ms bigint NOT NULL, data text NOT NULL);"},

    /* 9: job types (issue 11). A job's type ('shell', 'http' or a plugin's
     * type name; existing jobs are shell) is read by the claim scan, which
     * hands a run of a plugin type only to a worker whose `types` (the
     * plugin types it advertised, ",noop,sql,"; '' = none) lists it. The
     * registry of plugin types, one row per type as workers (and servers
     * loading a plugin dir) advertised it last: the highest version seen
     * wins, with its ABI and the JSON Schema of its config, which servers
     * validate jobs of that type against. */
    {.lite = "ALTER TABLE jobs ADD COLUMN type TEXT NOT NULL DEFAULT 'shell';"
             "ALTER TABLE workers ADD COLUMN types TEXT NOT NULL DEFAULT '';"
             "CREATE TABLE plugin_types ("
             " type TEXT PRIMARY KEY, version TEXT NOT NULL, abi INTEGER NOT NULL,"
             " schema_json TEXT NOT NULL, first_seen_ms INTEGER NOT NULL,"
             " seen_ms INTEGER NOT NULL) WITHOUT ROWID;",
     .pg = "ALTER TABLE jobs ADD COLUMN type text NOT NULL DEFAULT 'shell';"
           "ALTER TABLE workers ADD COLUMN types text NOT NULL DEFAULT '';"
           "CREATE TABLE plugin_types ("
           " type text PRIMARY KEY, version text NOT NULL, abi integer NOT NULL,"
           " schema_json text NOT NULL, first_seen_ms bigint NOT NULL,"
           " seen_ms bigint NOT NULL);"},

    /* 10: the dashboard's job list sorts (GET /v1/jobs?sort=): an index per
     * sort key, led by kind as jobs_kind is for the newest-first order, so
     * a first page walks 50 entries instead of sorting every job. Names in
     * byte order on PostgreSQL ("C"), as the list compares them. */
    {.lite = "CREATE INDEX jobs_kind_name ON jobs(kind, name, id);"
             "CREATE INDEX jobs_kind_priority ON jobs(kind, priority, id);",
     .pg = "CREATE INDEX jobs_kind_name ON jobs (kind, name COLLATE \"C\", id);"
           "CREATE INDEX jobs_kind_priority ON jobs (kind, priority, id);"},

    /* 11: an Idempotency-Key may name a batch of jobs (POST /v1/jobs:batch):
     * job_id keeps the first job's id, jobs the ids of all of them in
     * request order, comma-separated (NULL: the key made one job). One
     * row per key, as before, so the key's pruning is unchanged. */
    {.lite = "ALTER TABLE idempotency ADD COLUMN jobs TEXT;",
     .pg = "ALTER TABLE idempotency ADD COLUMN jobs text;"},

    /* 12: two index entries fewer for every job created. jobs_created has
     * served no query since jobs_kind (migration 7): every list of jobs
     * asks for one kind. jobs_parent holds only the tasks of workflows,
     * the one kind of job with a parent (every query of it asks for
     * parent_id = x, which both engines know implies NOT NULL). */
    {.lite = "DROP INDEX jobs_created;"
             "DROP INDEX jobs_parent;"
             "CREATE INDEX jobs_parent ON jobs(parent_id) WHERE parent_id IS NOT NULL;",
     .pg = "DROP INDEX jobs_created;"
           "DROP INDEX jobs_parent;"
           "CREATE INDEX jobs_parent ON jobs (parent_id) WHERE parent_id IS NOT NULL;"},

    /* 13: a new job's "job.created" event is written by the store's insert
     * (jobs.c, Q_JOB_INSERT says why), not by a trigger. sked_ev_job keeps
     * its INSERT branch, which nothing fires now. */
    {.lite = "DROP TRIGGER ev_jobs_ins;", .pg = "DROP TRIGGER ev_jobs_ins ON jobs;"},
};

const int store__schema_version = (int)(sizeof store__migrations / sizeof *store__migrations);
