/*
 * Runs that wait on other runs, written once over the SQL driver (db.h):
 * workflow runs, job arrays and job dependencies (migration 7).
 *
 *  - A group run (a workflow's run, an array job's run) is created waiting
 *    and, when its job has room (max_active_runs, overlap), started: one
 *    member run per task (or per array index), its edges copied from the
 *    tasks' edges (run_edges), its counts in run_groups. It ends when its
 *    last member ends: failed if any member failed or was canceled, else
 *    succeeded.
 *  - A run with upstreams waits (state 1) with its rule and counts
 *    (runs.deps_*). When an upstream ends, only its own downstream edges
 *    are read (O(edges), never a rescan), each count goes up by one in an
 *    UPDATE that is also the lock, and deps_decide() says whether the run
 *    goes now (pending), keeps waiting, or is skipped with its reason.
 *    The counts only grow while a run waits and the release is a
 *    compare-and-set on state 1, so two servers ending the two upstreams
 *    of a join at once release it exactly once.
 *  - A job's dependencies bind, when its run is created, to the most
 *    recent run of each upstream job with a fire time at or before its
 *    own, or (no such run yet, or the upstream still has a fire due by
 *    then) to the upstream's next run: at once when that run is made
 *    already (runs are made a little ahead of their fire time), else
 *    through dep_waits, as the run insert of a job with dependents binds
 *    what waits for it.
 *
 * Every ending — the worker's complete, the reaper, a cancel, an overlap
 * skip, a delete, a skip here — comes through store__graph_ended(), which
 * walks what the ending releases as a worklist (a skip can skip the
 * downstream of its downstream) in the caller's unit of work.
 */
#include "store/verbs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "core/deps.h"
#include "store/rows.h"
#include "store/store_int.h"

/* ---- statements -------------------------------------------------------------- */

/* What an ending needs to know of a run. */
#define END_COLS "r.id, r.state, r.parent_id, r.n_down, r.graph, r.job_id"
static db_sql_t Q_END_FACTS = DB_SAME("SELECT " END_COLS " FROM runs r WHERE r.id = ?1");
static db_sql_t Q_DOWN = DB_SAME("SELECT run_id, cond FROM run_edges WHERE up_id = ?1"
                                 " ORDER BY run_id");
/* One upstream ended: its class counted on a waiting downstream. The
 * UPDATE takes the row lock, so concurrent counts on one run serialise
 * and each sees the other's. */
#define COUNT_ANY                                                                                  \
    "UPDATE runs SET deps_ok = deps_ok + ?2, deps_fail = deps_fail + ?3,"                          \
    " deps_skip = deps_skip + ?4 WHERE id = ?1 AND state = 1"
#define COUNTED_DEPS "deps_rule, deps_n, deps_ok, deps_fail, deps_skip, graph, job_id"
static db_sql_t Q_COUNT_ANY = DB_SQL(COUNT_ANY, COUNT_ANY " RETURNING " COUNTED_DEPS);
static db_sql_t Q_COUNTED_ANY = DB_ONLY_LITE("SELECT " COUNTED_DEPS " FROM runs WHERE id = ?1");
/* Released: due (pending), or scheduled until its fire time when that is
 * still ahead; held when its job is paused. */
static db_sql_t Q_RELEASE =
    DB_SAME("UPDATE runs SET state = CASE WHEN not_before_ms > ?2 THEN 0 ELSE 2 END,"
            " held = (SELECT j.state = 1 FROM jobs j WHERE j.id = runs.job_id)"
            " WHERE id = ?1 AND state = 1");
static db_sql_t Q_SKIP =
    DB_SAME("UPDATE runs SET state = 7, finished_ms = ?2, reason = ?3, held = FALSE"
            " WHERE id = ?1 AND state = 1 RETURNING "
            "id, state, parent_id, n_down, graph, job_id");
/* A member ended: its group's counts, and the counts as they now are
 * (db_step_written). */
#define GROUP_COUNT                                                                                \
    "UPDATE run_groups SET open = open - 1, ok = ok + ?2, failed = failed + ?3,"                   \
    " canceled = canceled + ?4, skipped = skipped + ?5 WHERE run_id = ?1 AND started"
#define GROUP_COUNTS "open, n, ok, failed, canceled, skipped, parallel"
static db_sql_t Q_GROUP_COUNT = DB_SQL(GROUP_COUNT, GROUP_COUNT " RETURNING " GROUP_COUNTS);
static db_sql_t Q_GROUP_COUNTED =
    DB_ONLY_LITE("SELECT " GROUP_COUNTS " FROM run_groups WHERE run_id = ?1");
/* The group's run ends with its last member. */
#define GROUP_END_SELECT "id, state, parent_id, n_down, graph, job_id"
static db_sql_t Q_GROUP_END =
    DB_SAME("UPDATE runs SET state = ?2, finished_ms = ?3, reason = ?4, held = FALSE"
            " WHERE id = ?1 AND state = 1 RETURNING " GROUP_END_SELECT);
/* An array's next index waiting for a slot. */
static db_sql_t Q_ALERTS_OPEN = DB_SAME("SELECT alerts_open FROM jobs WHERE id = ?1");
static db_sql_t Q_NEXT_SLOT =
    DB_SAME("SELECT id FROM runs WHERE parent_id = ?1 AND job_id = ?2 AND state = 1"
            " ORDER BY array_index LIMIT 1");
/* A group that ended other than by its members: what is left of it stops. */
static db_sql_t Q_MEMBERS_CANCEL =
    DB_SAME("UPDATE runs SET state = 6, finished_ms = ?2, reason = ?3, held = FALSE"
            " WHERE parent_id = ?1 AND state IN (0, 1, 2)");
/* ... and counted as canceled in their group. */
static db_sql_t Q_GROUP_CANCELED =
    DB_SAME("UPDATE run_groups SET open = open - ?2, canceled = canceled + ?2 WHERE run_id = ?1");
static db_sql_t Q_MEMBERS_STOP =
    DB_SAME("UPDATE runs SET cancel_requested = TRUE, reason = coalesce(reason, ?2)"
            " WHERE parent_id = ?1 AND state = 3 AND NOT cancel_requested");

/* Starting a group. */
static db_sql_t Q_JOB_LOCK =
    DB_ONLY_PG("SELECT pg_advisory_xact_lock(" DB_PG_LOCK_CLASS ", hashtext($1))");
static db_sql_t Q_GROUP_JOB =
    DB_SAME("SELECT max_active, overlap, array_count, array_parallel, state FROM jobs"
            " WHERE id = ?1");
/* The job's started groups still going, oldest first. */
static db_sql_t Q_GROUPS_ACTIVE =
    DB_SQL("SELECT r.id FROM runs r INDEXED BY runs_waiting_job"
           " JOIN run_groups g ON g.run_id = r.id"
           " WHERE r.job_id = ?1 AND r.state = 1 AND g.started AND r.id != ?2"
           " ORDER BY r.fire_ms, r.id",
           "SELECT r.id FROM runs r JOIN run_groups g ON g.run_id = r.id"
           " WHERE r.job_id = $1 AND r.state = 1 AND g.started AND r.id <> $2"
           " ORDER BY r.fire_ms, r.id");
static db_sql_t Q_GROUP_QUEUE = DB_SAME(
    "INSERT INTO run_groups (run_id, n, open, started, parallel) VALUES (?1, 0, 0, FALSE, 0)"
    " ON CONFLICT (run_id) DO NOTHING");
static db_sql_t Q_GROUP_START = DB_SAME(
    "INSERT INTO run_groups (run_id, n, open, started, parallel) VALUES (?1, ?2, ?2, TRUE, ?3)"
    " ON CONFLICT (run_id) DO UPDATE SET n = ?2, open = ?2, started = TRUE, parallel = ?3");
static db_sql_t Q_GROUP_RUN = DB_SAME("SELECT fire_ms FROM runs WHERE id = ?1 AND state = 1");
/* The oldest group of the job waiting for room. */
static db_sql_t Q_GROUP_QUEUED =
    DB_SQL("SELECT r.id FROM runs r INDEXED BY runs_waiting_job"
           " JOIN run_groups g ON g.run_id = r.id"
           " WHERE r.job_id = ?1 AND r.state = 1 AND NOT g.started"
           " ORDER BY r.fire_ms, r.id LIMIT 1",
           "SELECT r.id FROM runs r JOIN run_groups g ON g.run_id = r.id"
           " WHERE r.job_id = $1 AND r.state = 1 AND NOT g.started"
           " ORDER BY r.fire_ms, r.id LIMIT 1");
/* A workflow's tasks: their rule, how many upstreams and downstreams. */
static db_sql_t Q_TASKS =
    DB_SAME("SELECT t.id, t.deps_rule,"
            " (SELECT count(*) FROM job_edges e JOIN jobs u ON u.id = e.up_job_id"
            " WHERE e.job_id = t.id AND u.state != 3),"
            " (SELECT count(*) FROM job_edges e JOIN jobs d ON d.id = e.job_id"
            " WHERE e.up_job_id = t.id AND d.state != 3)"
            " FROM jobs t WHERE t.parent_id = ?1 AND t.kind = 2 AND t.state != 3"
            " ORDER BY t.id");
static db_sql_t Q_MEMBER_INSERT =
    DB_SAME("INSERT INTO runs (id, job_id, state, fire_ms, not_before_ms, priority, queue, held,"
            " created_ms, parent_id, array_index, deps_rule, deps_n, n_down)"
            " SELECT ?1, j.id, CASE WHEN ?3 = 2 AND ?4 > ?5 THEN 0 ELSE ?3 END, ?4, ?4, j.priority,"
            " j.queue, j.state = 1, ?5, ?6, ?7, ?8, ?9, ?10"
            " FROM jobs j WHERE j.id = ?2");
/* An array's members in one statement, their ids a JSON array (?1) in
 * index order: one statement, so SQLite journals each page it changes once
 * for all of them rather than once per member (row by row, the 100,000
 * members of bench/burst.c took the writer 3.7 s; this way 1.3 s). */
static db_sql_t Q_ARRAY_INSERT = DB_SQL(
    "INSERT INTO runs (id, job_id, state, fire_ms, not_before_ms, priority, queue, held,"
    " created_ms, parent_id, array_index, deps_rule, deps_n, n_down)"
    " SELECT e.value, j.id, CASE WHEN ?5 > 0 AND e.key >= ?5 THEN 1 WHEN ?3 > ?4 THEN 0 ELSE 2 END,"
    " ?3, ?3, j.priority, j.queue, j.state = 1, ?4, ?6, e.key, ?7, 0, 0"
    " FROM jobs j, json_each(?1) e WHERE j.id = ?2",
    "INSERT INTO runs (id, job_id, state, fire_ms, not_before_ms, priority, queue, held,"
    " created_ms, parent_id, array_index, deps_rule, deps_n, n_down)"
    " SELECT e.id, j.id,"
    " CASE WHEN $5::integer > 0 AND e.k > $5::integer THEN 1 WHEN $3::bigint > $4::bigint THEN 0"
    " ELSE 2 END, $3, $3, j.priority, j.queue, j.state = 1, $4, $6, e.k - 1, $7, 0, 0"
    " FROM jobs j, json_array_elements_text($1::json) WITH ORDINALITY AS e(id, k)"
    " WHERE j.id = $2");
/* The members' edges, copied from their tasks' edges in one statement.
 * Each edge finds its upstream member on its own, by task and fire time
 * (the group's, every member's): one index seek per edge. As a join of
 * the two runs by the group (parent_id), SQLite, and PostgreSQL when its
 * statistics do not know the fresh members yet, paired every member with
 * every other before looking at an edge: O(tasks^2), 0.4 s to start a
 * wide workflow of 1,000 tasks, 4 s for 3,000 (bench/graph_load.c). */
#define MEMBER_EDGES(hint)                                                                         \
    "INSERT INTO run_edges (up_id, run_id, cond)"                                                  \
    " SELECT (SELECT u.id FROM runs u " hint " WHERE u.job_id = e.up_job_id"                       \
    " AND u.fire_ms = d.fire_ms AND u.parent_id = d.parent_id), d.id, e.cond"                      \
    " FROM runs d JOIN job_edges e ON e.job_id = d.job_id WHERE d.parent_id = "
static db_sql_t Q_MEMBER_EDGES =
    DB_SQL(MEMBER_EDGES("INDEXED BY runs_job") "?1", MEMBER_EDGES("") "$1");

/* Binding a job's dependencies. */
static db_sql_t Q_JOB_DEPS =
    DB_SAME("SELECT up_job_id, cond FROM job_edges WHERE job_id = ?1 ORDER BY pos");
static db_sql_t Q_LATEST_RUN =
    DB_SQL("SELECT id, state FROM runs INDEXED BY runs_job WHERE job_id = ?1 AND fire_ms <= ?2"
           " AND parent_id IS NULL ORDER BY fire_ms DESC, id DESC LIMIT 1",
           "SELECT id, state FROM runs WHERE job_id = $1 AND fire_ms <= $2"
           " AND parent_id IS NULL ORDER BY fire_ms DESC, id DESC LIMIT 1");
/* Its next run, when one is made already: runs are made a little ahead of
 * their fire time. */
static db_sql_t Q_NEXT_RUN =
    DB_SQL("SELECT id, state FROM runs INDEXED BY runs_job WHERE job_id = ?1 AND fire_ms > ?2"
           " AND parent_id IS NULL ORDER BY fire_ms, id LIMIT 1",
           "SELECT id, state FROM runs WHERE job_id = $1 AND fire_ms > $2"
           " AND parent_id IS NULL ORDER BY fire_ms, id LIMIT 1");
static db_sql_t Q_FIRE_DUE_BY =
    DB_SQL("SELECT 1 FROM schedules WHERE job_id = ?1 AND active = 1 AND next_fire_ms <= ?2"
           " LIMIT 1",
           "SELECT 1 FROM schedules WHERE job_id = $1 AND active AND next_fire_ms <= $2 LIMIT 1");
static db_sql_t Q_DEPS_SET = DB_SAME("UPDATE runs SET deps_rule = 0, deps_n = ?2 WHERE id = ?1");
static db_sql_t Q_EDGE_INSERT =
    DB_SAME("INSERT INTO run_edges (up_id, run_id, cond) VALUES (?1, ?2, ?3)"
            " ON CONFLICT (up_id, run_id) DO NOTHING");
static db_sql_t Q_DOWN_ADD = DB_SAME("UPDATE runs SET n_down = n_down + 1 WHERE id = ?1");
static db_sql_t Q_WAIT_INSERT =
    DB_SAME("INSERT INTO dep_waits (up_job_id, run_id, cond) VALUES (?1, ?2, ?3)"
            " ON CONFLICT (up_job_id, run_id) DO NOTHING");
static db_sql_t Q_WAITS_TAKE =
    DB_SAME("DELETE FROM dep_waits WHERE up_job_id = ?1 RETURNING run_id, cond");
static db_sql_t Q_RUN_STATE = DB_SAME("SELECT state FROM runs WHERE id = ?1");

/* count_edge's class that counts nothing: decide over the counts as they are. */
#define DEP_CLASS_NONE ((dep_class_t)-1)
#define DEP_COND_NONE  ((dep_cond_t)-1)

/* ---- the worklist of ended runs ------------------------------------------------------ */

typedef struct ended {
    char id[SKED_ID_LEN];
    run_state_t state;
    char parent[SKED_ID_LEN]; /* "" = none */
    int64_t n_down;
    int graph;
    char job_id[SKED_ID_LEN];
    bool up_failed; /* skipped upstream_failed: counts as failed downstream */
} ended_t;

typedef struct worklist {
    ended_t *v;
    size_t n, cap;
} worklist_t;

static void wl_push(worklist_t *w, const ended_t *e)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->v = xrealloc(w->v, w->cap * sizeof *w->v);
    }
    w->v[w->n++] = *e;
}

/* Reads an ended_t from columns END_COLS / GROUP_END_SELECT at 0. */
static void ended_row(db_q_t *q, ended_t *e)
{
    db_cid(q, 0, e->id);
    e->state = (run_state_t)db_ci(q, 1);
    db_cid(q, 2, e->parent);
    e->n_down = db_ci(q, 3);
    e->graph = (int)db_ci(q, 4);
    db_cid(q, 5, e->job_id);
    e->up_failed = false;
}

static int lock_job(db_t *db, const char *job_id)
{
    db_q_t *q = db_q(db, &Q_JOB_LOCK);
    if (!q) return SKED_ESTORE;
    db_bt(q, job_id);
    return db_exec(q, NULL);
}

/* Reads the ids of a one-column result into a new array. */
static int read_ids(db_q_t *q, char (**out)[SKED_ID_LEN], size_t *n)
{
    size_t cap = 0;
    int rc;
    *out = NULL;
    *n = 0;
    while ((rc = db_step(q)) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        db_cid(q, 0, (*out)[(*n)++]);
    }
    if (rc < 0) FREE_NULL(*out);
    return rc;
}

static int group_start(db_t *db, const char *run_id, const char *job_id, int64_t now_ms,
                       worklist_t *wl);
static int group_cancel(db_t *db, const char *run_id, const char *reason, int64_t now_ms,
                        worklist_t *wl);
static int drain(db_t *db, worklist_t *wl, int64_t now_ms);

/* A waiting run whose upstreams allow it: a plain run becomes pending, a
 * group run starts. */
static int release(db_t *db, const char *run_id, int graph, const char *job_id, int64_t now_ms,
                   worklist_t *wl)
{
    if (graph & (STORE_GRAPH_WORKFLOW | STORE_GRAPH_ARRAY))
        return group_start(db, run_id, job_id, now_ms, wl);
    db_q_t *q = db_q(db, &Q_RELEASE);
    if (!q) return SKED_ESTORE;
    db_bt(q, run_id);
    db_bi(q, now_ms);
    int rc = db_exec(q, NULL);
    if (rc == 0) db_notify(db);
    return rc;
}

static int skip(db_t *db, const char *run_id, const char *reason, int64_t now_ms, worklist_t *wl)
{
    db_q_t *q = db_q(db, &Q_SKIP);
    if (!q) return SKED_ESTORE;
    db_bt(q, run_id);
    db_bi(q, now_ms);
    db_bt(q, reason);
    int rc = db_step(q);
    if (rc == 1) {
        ended_t e;
        ended_row(q, &e);
        e.up_failed = strcmp(reason, "upstream_failed") == 0;
        wl_push(wl, &e);
        rc = db_step(q);
    }
    return rc < 0 ? rc : 0;
}

/* Counts one ended upstream (state up_state, its reason up_reason or NULL,
 * over an edge with condition cond) on waiting run `down` and acts on the
 * verdict. DEP_CLASS_NONE as cond counts nothing: the counts as they are
 * decide. */
static int count_edge(db_t *db, const char *down, dep_cond_t cond, run_state_t up_state,
                      const char *up_reason, int64_t now_ms, worklist_t *wl)
{
    dep_class_t cls =
        cond == DEP_COND_NONE ? DEP_CLASS_NONE : dep_classify_ended(cond, up_state, up_reason);
    db_q_t *q = db_q(db, &Q_COUNT_ANY);
    if (!q) return SKED_ESTORE;
    db_bt(q, down);
    db_bi(q, cls == DEP_OK);
    db_bi(q, cls == DEP_FAIL);
    db_bi(q, cls == DEP_SKIP);
    int rc = db_step_written(db, &q, &Q_COUNTED_ANY, down);
    if (rc <= 0) return rc; /* not waiting (canceled, or already decided) */
    trigger_rule_t rule = (trigger_rule_t)db_ci(q, 0);
    int n = (int)db_ci(q, 1), ok = (int)db_ci(q, 2), fail = (int)db_ci(q, 3), sk = (int)db_ci(q, 4),
        graph = (int)db_ci(q, 5);
    char job_id[SKED_ID_LEN];
    db_cid(q, 6, job_id);
    if ((rc = db_step(q)) < 0) return rc;
    const char *why = NULL;
    switch (deps_decide(rule, n, ok, fail, sk, &why)) {
    case DEPS_READY:
        return release(db, down, graph, job_id, now_ms, wl);
    case DEPS_SKIP:
        /* A job's condition says best why it can never hold. */
        if (cls == DEP_FAIL && cond != DEP_TASK && dep_cond_skip_reason(cond, up_state))
            why = dep_cond_skip_reason(cond, up_state);
        return skip(db, down, why, now_ms, wl);
    case DEPS_WAIT:
    default:
        return 0;
    }
}

int store__graph_recheck(db_t *db, const char *run_id, int64_t now_ms)
{
    worklist_t wl = {0};
    int rc = count_edge(db, run_id, DEP_COND_NONE, RUN_SCHEDULED, NULL, now_ms, &wl);
    if (rc == 0) return drain(db, &wl, now_ms);
    free(wl.v);
    return rc;
}

/* The downstream of e: each edge counted. */
static int release_down(db_t *db, const ended_t *e, int64_t now_ms, worklist_t *wl)
{
    struct edge {
        char run_id[SKED_ID_LEN];
        dep_cond_t cond;
    } *v = NULL;
    size_t n = 0, cap = 0;
    db_q_t *q = db_q(db, &Q_DOWN);
    if (!q) return SKED_ESTORE;
    db_bt(q, e->id);
    int rc;
    while ((rc = db_step(q)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = xrealloc(v, cap * sizeof *v);
        }
        db_cid(q, 0, v[n].run_id);
        v[n++].cond = (dep_cond_t)db_ci(q, 1);
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = count_edge(db, v[i].run_id, v[i].cond, e->state,
                        e->up_failed ? "upstream_failed" : NULL, now_ms, wl);
    free(v);
    return rc;
}

/* A member of group `parent` ended in state s. */
static int member_ended(db_t *db, const ended_t *e, int64_t now_ms, worklist_t *wl)
{
    db_q_t *q = db_q(db, &Q_GROUP_COUNT);
    if (!q) return SKED_ESTORE;
    db_bt(q, e->parent);
    db_bi(q, e->state == RUN_SUCCEEDED);
    db_bi(q, e->state == RUN_FAILED);
    db_bi(q, e->state == RUN_CANCELED);
    db_bi(q, e->state == RUN_SKIPPED);
    int rc = db_step_written(db, &q, &Q_GROUP_COUNTED, e->parent);
    if (rc <= 0) return rc;
    int64_t open = db_ci(q, 0), n = db_ci(q, 1), failed = db_ci(q, 3), canceled = db_ci(q, 4),
            parallel = db_ci(q, 6);
    if ((rc = db_step(q)) < 0) return rc;
    if (open > 0) {
        /* An array: the next index takes the slot this one left. */
        if (parallel <= 0) return 0;
        char next[SKED_ID_LEN];
        if (!(q = db_q(db, &Q_NEXT_SLOT))) return SKED_ESTORE;
        db_bt(q, e->parent);
        db_bt(q, e->job_id);
        if ((rc = db_one(q)) == SKED_ENOTFOUND) return 0;
        if (rc < 0) return rc;
        db_cid(q, 0, next);
        return release(db, next, 0, e->job_id, now_ms, wl);
    }
    char why[160] = "";
    run_state_t to = RUN_SUCCEEDED;
    if (failed + canceled > 0) {
        to = RUN_FAILED;
        snprintf(why, sizeof why, "%lld of %lld failed or were canceled",
                 (long long)(failed + canceled), (long long)n);
    }
    if (!(q = db_q(db, &Q_GROUP_END))) return SKED_ESTORE;
    db_bt(q, e->parent);
    db_bi(q, to);
    db_bi(q, now_ms);
    db_bt(q, *why ? why : NULL);
    ended_t g = {0};
    if ((rc = db_step(q)) == 1) {
        ended_row(q, &g);
        wl_push(wl, &g);
        rc = db_step(q);
    }
    if (rc < 0 || !g.id[0]) return rc < 0 ? rc : 0;
    /* Its job's alerts learn of the end as of a run's: a failed workflow
     * or array run opens the job's "failed" alert, a success resolves it. */
    if (!(q = db_q(db, &Q_ALERTS_OPEN))) return SKED_ESTORE;
    db_bt(q, g.job_id);
    if ((rc = db_one(q)) < 0) return rc == SKED_ENOTFOUND ? 0 : rc;
    store__attempt_end_t ae = {
        g.id, g.job_id, db_ci(q, 0), to == RUN_SUCCEEDED ? ATTEMPT_SUCCEEDED : ATTEMPT_FAILED,
        to,   1,        -1,          *why ? why : NULL,
        -1,   0};
    return store__alerts_attempt_end(db, &ae, now_ms);
}

/* A group run ended: whatever of it still goes stops (it ended other than
 * by its members: canceled, skipped), and the oldest group of its job
 * waiting for room starts. */
static int group_ended(db_t *db, const ended_t *e, int64_t now_ms, worklist_t *wl)
{
    int rc;
    if (e->state != RUN_SUCCEEDED && e->state != RUN_FAILED) {
        char why[80];
        snprintf(why, sizeof why, "%s run %s",
                 e->graph & STORE_GRAPH_WORKFLOW ? "workflow" : "array", run_state_name(e->state));
        if ((rc = group_cancel(db, e->id, why, now_ms, wl)) < 0) return rc;
    }
    if ((rc = lock_job(db, e->job_id)) < 0) return rc;
    db_q_t *q = db_q(db, &Q_GROUP_QUEUED);
    if (!q) return SKED_ESTORE;
    db_bt(q, e->job_id);
    rc = db_one(q);
    if (rc == SKED_ENOTFOUND) return 0;
    if (rc < 0) return rc;
    char next[SKED_ID_LEN];
    db_cid(q, 0, next);
    return group_start(db, next, e->job_id, now_ms, wl);
}

/* The members of a group still waiting or due end canceled at once; the
 * running ones are asked to stop (they end through their workers). */
static int group_cancel(db_t *db, const char *run_id, const char *reason, int64_t now_ms,
                        worklist_t *wl)
{
    (void)wl; /* the members' own downstream are members too: canceled here */
    db_q_t *q = db_q(db, &Q_MEMBERS_CANCEL);
    if (!q) return SKED_ESTORE;
    db_bt(q, run_id);
    db_bi(q, now_ms);
    db_bt(q, reason);
    int64_t canceled = 0;
    int rc = db_exec(q, &canceled);
    if (rc < 0) return rc;
    if (canceled > 0) { /* the group's counts say what its members are */
        if (!(q = db_q(db, &Q_GROUP_CANCELED))) return SKED_ESTORE;
        db_bt(q, run_id);
        db_bi(q, canceled);
        if ((rc = db_exec(q, NULL)) < 0) return rc;
    }
    if (!(q = db_q(db, &Q_MEMBERS_STOP))) return SKED_ESTORE;
    db_bt(q, run_id);
    db_bt(q, reason);
    int64_t stopped = 0;
    if ((rc = db_exec(q, &stopped)) < 0) return rc;
    if (stopped) db_notify(db);
    return 0;
}

/* Inserts the members of workflow run run_id. */
static int expand_workflow(db_t *db, const char *run_id, const char *job_id, int64_t fire_ms,
                           int64_t now_ms, int64_t *n_out)
{
    struct task {
        char id[SKED_ID_LEN];
        int rule;
        int64_t n_up, n_down;
    } *t = NULL;
    size_t n = 0, cap = 0;
    db_q_t *q = db_q(db, &Q_TASKS);
    if (!q) return SKED_ESTORE;
    db_bt(q, job_id);
    int rc;
    while ((rc = db_step(q)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            t = xrealloc(t, cap * sizeof *t);
        }
        db_cid(q, 0, t[n].id);
        t[n].rule = (int)db_ci(q, 1);
        t[n].n_up = db_ci(q, 2);
        t[n].n_down = db_ci(q, 3);
        n++;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char rid[SKED_ID_LEN];
        id_new("run", now_ms, rid);
        if (!(q = db_q(db, &Q_MEMBER_INSERT))) {
            rc = SKED_ESTORE;
            break;
        }
        db_bt(q, rid);
        db_bt(q, t[i].id);
        db_bi(q, t[i].n_up > 0 ? RUN_WAITING : RUN_PENDING);
        db_bi(q, fire_ms);
        db_bi(q, now_ms);
        db_bt(q, run_id);
        db_bi(q, -1);
        db_bi(q, t[i].rule);
        db_bi(q, t[i].n_up);
        db_bi(q, t[i].n_down);
        rc = db_exec(q, NULL);
    }
    free(t);
    if (rc < 0) return rc;
    if (!(q = db_q(db, &Q_MEMBER_EDGES))) return SKED_ESTORE;
    db_bt(q, run_id);
    if ((rc = db_exec(q, NULL)) < 0) return rc;
    *n_out = (int64_t)n;
    return 0;
}

/* Inserts the count members of array run run_id, the first `parallel`
 * (0 = all) due at once, the others waiting for a slot. */
static int expand_array(db_t *db, const char *run_id, const char *job_id, int64_t fire_ms,
                        int count, int parallel, int64_t now_ms)
{
    /* ["run_...","run_...",...]: each id and its quotes and comma */
    char *ids = xmalloc((size_t)count * (SKED_ID_LEN + 3) + 3);
    size_t len = 0;
    ids[len++] = '[';
    for (int i = 0; i < count; i++) {
        if (i) ids[len++] = ',';
        ids[len++] = '"';
        id_new("run", now_ms, ids + len);
        len += strlen(ids + len);
        ids[len++] = '"';
    }
    ids[len++] = ']';
    ids[len] = '\0';
    db_q_t *q = db_q(db, &Q_ARRAY_INSERT);
    int rc = SKED_ESTORE;
    if (q) {
        db_bt(q, ids);
        db_bt(q, job_id);
        db_bi(q, fire_ms);
        db_bi(q, now_ms);
        db_bi(q, parallel);
        db_bt(q, run_id);
        db_bi(q, RULE_ALL_SUCCESS);
        rc = db_exec(q, NULL);
    }
    free(ids);
    return rc;
}

/* Starts group run run_id of job_id if the job has room for it; else
 * queues it, skips it (overlap forbid) or cancels the oldest one going
 * (overlap replace) to make room. */
static int group_start(db_t *db, const char *run_id, const char *job_id, int64_t now_ms,
                       worklist_t *wl)
{
    int rc = lock_job(db, job_id);
    if (rc < 0) return rc;
    db_q_t *q = db_q(db, &Q_GROUP_JOB);
    if (!q) return SKED_ESTORE;
    db_bt(q, job_id);
    if ((rc = db_one(q)) < 0) return rc;
    int max_active = (int)db_ci(q, 0);
    overlap_policy_t overlap = (overlap_policy_t)db_ci(q, 1);
    int count = (int)db_ci(q, 2), parallel = (int)db_ci(q, 3);
    if (!(q = db_q(db, &Q_GROUP_RUN))) return SKED_ESTORE;
    db_bt(q, run_id);
    if ((rc = db_one(q)) == SKED_ENOTFOUND) return 0; /* ended meanwhile */
    if (rc < 0) return rc;
    int64_t fire_ms = db_ci(q, 0);

    /* Room: max_active_runs (a workflow's), else one at a time unless the
     * overlap policy allows any number. */
    int limit = max_active > 0 ? max_active : overlap == OVERLAP_ALLOW ? 0 : 1;
    if (limit > 0) {
        char(*active)[SKED_ID_LEN] = NULL;
        size_t nactive = 0;
        if (!(q = db_q(db, &Q_GROUPS_ACTIVE))) return SKED_ESTORE;
        db_bt(q, job_id);
        db_bt(q, run_id);
        if ((rc = read_ids(q, &active, &nactive)) < 0) return rc;
        if (nactive >= (size_t)limit) {
            if (overlap == OVERLAP_FORBID) {
                free(active);
                return skip(db, run_id, "overlap", now_ms, wl);
            }
            if (overlap == OVERLAP_REPLACE) {
                /* The oldest ones go, so that this one fits. */
                for (size_t i = 0; rc == 0 && i + limit <= nactive; i++) {
                    ended_t g = {0};
                    snprintf(g.id, sizeof g.id, "%s", active[i]);
                    if (!(q = db_q(db, &Q_GROUP_END))) {
                        rc = SKED_ESTORE;
                        break;
                    }
                    db_bt(q, g.id);
                    db_bi(q, RUN_CANCELED);
                    db_bi(q, now_ms);
                    db_bt(q, "replaced by a newer run");
                    if ((rc = db_step(q)) == 1) {
                        ended_row(q, &g);
                        rc = db_step(q);
                        if (rc == 0)
                            rc = group_cancel(db, g.id, "replaced by a newer run", now_ms, wl);
                        /* its own downstream (job dependencies) learn of it;
                         * its job's queue does not move: this one takes the room */
                        if (rc == 0 && (g.n_down > 0 || g.parent[0])) {
                            g.graph = 0;
                            wl_push(wl, &g);
                        }
                    }
                }
                free(active);
                if (rc < 0) return rc;
            } else {
                free(active);
                if (!(q = db_q(db, &Q_GROUP_QUEUE))) return SKED_ESTORE;
                db_bt(q, run_id);
                return db_exec(q, NULL);
            }
        } else {
            free(active);
        }
    }

    int64_t n = 0;
    if (count > 0) {
        n = count;
        rc = expand_array(db, run_id, job_id, fire_ms, count, parallel, now_ms);
    } else {
        rc = expand_workflow(db, run_id, job_id, fire_ms, now_ms, &n);
    }
    if (rc < 0) return rc;
    if (!(q = db_q(db, &Q_GROUP_START))) return SKED_ESTORE;
    db_bt(q, run_id);
    db_bi(q, n);
    db_bi(q, count > 0 ? parallel : 0);
    if ((rc = db_exec(q, NULL)) < 0) return rc;
    db_notify(db);
    if (n == 0) { /* nothing to wait for */
        ended_t g = {0};
        if (!(q = db_q(db, &Q_GROUP_END))) return SKED_ESTORE;
        db_bt(q, run_id);
        db_bi(q, RUN_SUCCEEDED);
        db_bi(q, now_ms);
        db_bt(q, NULL);
        if ((rc = db_step(q)) == 1) {
            ended_row(q, &g);
            wl_push(wl, &g);
            rc = db_step(q);
        }
        return rc < 0 ? rc : 0;
    }
    return 0;
}

/* Works the list down: each ended run releases its downstream, counts in
 * its group and, as a group, stops its members and makes room. */
static int drain(db_t *db, worklist_t *wl, int64_t now_ms)
{
    int rc = 0;
    while (rc == 0 && wl->n > 0) {
        ended_t e = wl->v[--wl->n];
        if (!run_state_terminal(e.state)) continue;
        if (e.n_down > 0) rc = release_down(db, &e, now_ms, wl);
        if (rc == 0 && e.parent[0]) rc = member_ended(db, &e, now_ms, wl);
        if (rc == 0 && (e.graph & (STORE_GRAPH_WORKFLOW | STORE_GRAPH_ARRAY)))
            rc = group_ended(db, &e, now_ms, wl);
    }
    free(wl->v);
    wl->v = NULL;
    wl->n = wl->cap = 0;
    return rc;
}

int store__graph_ended(db_t *db, const char *run_id, run_state_t state, const char *parent_id,
                       int64_t n_down, int graph, const char *job_id, int64_t now_ms)
{
    if (!run_state_terminal(state)) return 0;
    if (n_down <= 0 && !(parent_id && *parent_id) &&
        !(graph & (STORE_GRAPH_WORKFLOW | STORE_GRAPH_ARRAY)))
        return 0;
    worklist_t wl = {0};
    ended_t e = {.state = state, .n_down = n_down, .graph = graph};
    snprintf(e.id, sizeof e.id, "%s", run_id);
    snprintf(e.parent, sizeof e.parent, "%s", parent_id ? parent_id : "");
    snprintf(e.job_id, sizeof e.job_id, "%s", job_id);
    wl_push(&wl, &e);
    return drain(db, &wl, now_ms);
}

int store__graph_ended_id(db_t *db, const char *run_id, int64_t now_ms)
{
    db_q_t *q = db_q(db, &Q_END_FACTS);
    if (!q) return SKED_ESTORE;
    db_bt(q, run_id);
    int rc = db_one(q);
    if (rc < 0) return rc == SKED_ENOTFOUND ? 0 : rc;
    ended_t e;
    ended_row(q, &e);
    return store__graph_ended(db, e.id, e.state, e.parent, e.n_down, e.graph, e.job_id, now_ms);
}

/* ---- a new run ---------------------------------------------------------------------- */

/* Binds the dependencies of job_id's new waiting run run_id. */
static int bind_deps(db_t *db, const char *run_id, const char *job_id, int graph, int64_t fire_ms,
                     int64_t now_ms, worklist_t *wl)
{
    struct dep {
        char up_job[SKED_ID_LEN];
        dep_cond_t cond;
    } *d = NULL;
    size_t n = 0, cap = 0;
    db_q_t *q = db_q(db, &Q_JOB_DEPS);
    if (!q) return SKED_ESTORE;
    db_bt(q, job_id);
    int rc;
    while ((rc = db_step(q)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            d = xrealloc(d, cap * sizeof *d);
        }
        db_cid(q, 0, d[n].up_job);
        d[n++].cond = (dep_cond_t)db_ci(q, 1);
    }
    if (rc == 0 && (q = db_q(db, &Q_DEPS_SET)) == NULL) rc = SKED_ESTORE;
    if (rc == 0) {
        db_bt(q, run_id);
        db_bi(q, (int64_t)n);
        rc = db_exec(q, NULL);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        /* The upstream's lock orders this against its own new runs, which
         * bind what waits for them (bind_waiters). */
        if ((rc = lock_job(db, d[i].up_job)) < 0) break;
        bool later = false;
        if (!(q = db_q(db, &Q_FIRE_DUE_BY))) {
            rc = SKED_ESTORE;
            break;
        }
        db_bt(q, d[i].up_job);
        db_bi(q, fire_ms);
        if ((rc = db_step(q)) < 0) break;
        later = rc == 1;
        rc = 0;
        char up[SKED_ID_LEN] = "";
        run_state_t ust = RUN_SCHEDULED;
        /* Its latest run by this one's fire time, else its next run if
         * that is made already (ahead of its fire time). */
        for (int k = 0; !later && !up[0] && k < 2; k++) {
            if (!(q = db_q(db, k == 0 ? &Q_LATEST_RUN : &Q_NEXT_RUN))) {
                rc = SKED_ESTORE;
                break;
            }
            db_bt(q, d[i].up_job);
            db_bi(q, fire_ms);
            rc = db_one(q);
            if (rc == 0) {
                db_cid(q, 0, up);
                ust = (run_state_t)db_ci(q, 1);
            } else if (rc == SKED_ENOTFOUND) {
                rc = 0;
            } else {
                break;
            }
        }
        if (rc < 0) break;
        if (!up[0]) { /* its next run */
            if (!(q = db_q(db, &Q_WAIT_INSERT))) {
                rc = SKED_ESTORE;
                break;
            }
            db_bt(q, d[i].up_job);
            db_bt(q, run_id);
            db_bi(q, d[i].cond);
            rc = db_exec(q, NULL);
            continue;
        }
        rc = store__graph_bind(db, up, ust, run_id, d[i].cond, now_ms);
    }
    free(d);
    if (rc == 0 && n == 0) rc = release(db, run_id, graph, job_id, now_ms, wl); /* none left */
    return rc;
}

int store__graph_bind(db_t *db, const char *up_id, run_state_t up_state, const char *run_id,
                      dep_cond_t cond, int64_t now_ms)
{
    db_q_t *q = db_q(db, &Q_EDGE_INSERT);
    if (!q) return SKED_ESTORE;
    db_bt(q, up_id);
    db_bt(q, run_id);
    db_bi(q, cond);
    int64_t added = 0;
    int rc = db_exec(q, &added);
    if (rc < 0 || added == 0) return rc;
    if (!run_state_terminal(up_state)) {
        if (!(q = db_q(db, &Q_DOWN_ADD))) return SKED_ESTORE;
        db_bt(q, up_id);
        return db_exec(q, NULL);
    }
    worklist_t wl = {0};
    rc = count_edge(db, run_id, cond, up_state, NULL, now_ms, &wl);
    if (rc == 0) return drain(db, &wl, now_ms);
    free(wl.v);
    return rc;
}

/* A run waiting for job_id's next run, over an edge with condition cond. */
typedef struct dep_wait {
    char run_id[SKED_ID_LEN];
    dep_cond_t cond;
} dep_wait_t;

/* Locks job_id and takes the runs waiting for its next run (dep_waits):
 * a new array in *out (caller frees, also after an error). */
static int take_waits(db_t *db, const char *job_id, dep_wait_t **out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    int rc = lock_job(db, job_id);
    if (rc < 0) return rc;
    db_q_t *q = db_q(db, &Q_WAITS_TAKE);
    if (!q) return SKED_ESTORE;
    db_bt(q, job_id);
    while ((rc = db_step(q)) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        db_cid(q, 0, (*out)[*n].run_id);
        (*out)[(*n)++].cond = (dep_cond_t)db_ci(q, 1);
    }
    return rc;
}

/* The new run run_id of job_id is the next run of every dependent waiting
 * for one. */
static int bind_waiters(db_t *db, const char *run_id, const char *job_id, int64_t now_ms)
{
    dep_wait_t *w = NULL;
    size_t n = 0;
    db_q_t *q;
    int rc = take_waits(db, job_id, &w, &n);
    run_state_t st = RUN_SCHEDULED;
    if (rc == 0 && n > 0) {
        if (!(q = db_q(db, &Q_RUN_STATE))) {
            rc = SKED_ESTORE;
        } else {
            db_bt(q, run_id);
            if ((rc = db_one(q)) == 0) st = (run_state_t)db_ci(q, 0);
        }
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = store__graph_bind(db, run_id, st, w[i].run_id, w[i].cond, now_ms);
    free(w);
    return rc;
}

int store__graph_job_deleted(db_t *db, const char *job_id, int64_t now_ms)
{
    dep_wait_t *w = NULL;
    size_t n = 0;
    int rc = take_waits(db, job_id, &w, &n);
    /* The next run they wait for never comes: as if it came canceled. */
    worklist_t wl = {0};
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = count_edge(db, w[i].run_id, w[i].cond, RUN_CANCELED, NULL, now_ms, &wl);
    free(w);
    if (rc == 0) return drain(db, &wl, now_ms);
    free(wl.v);
    return rc;
}

int store__graph_inserted(db_t *db, const char *run_id, const char *job_id, int graph,
                          run_state_t state, int64_t fire_ms, int64_t now_ms)
{
    worklist_t wl = {0};
    int rc = 0;
    if (state == RUN_WAITING) {
        if (graph & STORE_GRAPH_DEPS)
            rc = bind_deps(db, run_id, job_id, graph, fire_ms, now_ms, &wl);
        else if (graph & (STORE_GRAPH_WORKFLOW | STORE_GRAPH_ARRAY))
            rc = group_start(db, run_id, job_id, now_ms, &wl);
    }
    if (rc == 0 && (graph & STORE_GRAPH_DEPENDENTS)) rc = bind_waiters(db, run_id, job_id, now_ms);
    if (rc == 0) return drain(db, &wl, now_ms);
    free(wl.v);
    return rc;
}
