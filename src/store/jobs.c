/*
 * Store verbs of jobs, written once over the SQL driver (db.h): create (with
 * its idempotency key, schedules and an optional run now; one job or a
 * batch of them in one transaction), get, list,
 * update (the schedule set replaced in place, waiting runs retargeted) and
 * the state changes — pause and resume hold and release the job's waiting
 * runs, delete cancels them and asks its running ones to stop.
 *
 * Every unit of work here may run again from the start on PostgreSQL (after
 * a deadlock), so each one rebuilds its outputs from the arguments and
 * frees what it allocated when it fails.
 */
#include "store/verbs.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "store/rows.h"
#include "store/store_int.h"

/* ---- statements ---------------------------------------------------------- */

/* jobs: a batch's ids (store_job_create_batch), NULL for one job. */
static db_sql_t Q_IDEM_CLAIM =
    DB_SAME("INSERT INTO idempotency (owner, key, job_id, created_ms, jobs)"
            " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (owner, key) DO NOTHING");
static db_sql_t Q_IDEM_GET =
    DB_SAME("SELECT job_id, jobs FROM idempotency WHERE owner = ?1 AND key = ?2");
/* A new job and its "job.created" event. No trigger writes that event (as
 * one does for a job's changes): a trigger makes the job's INSERT a
 * statement SQLite may have to undo half-way, so SQLite first copied every
 * page the insert changed into a statement journal (9 % of the writer's
 * instructions per batch job). PostgreSQL writes both rows in one
 * statement, SQLite in two (Q_JOB_CREATED_EVENT). */
#define JOB_VALUES                                                                                 \
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"    \
    " ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31)"
#define EVENT_COLS                                                                                 \
    "INSERT INTO events (at_ms, type, ns, job_id, run_id, worker_id, attempt, detail)"
static db_sql_t Q_JOB_INSERT =
    DB_SQL("INSERT INTO jobs (" JOB_COLS ")" JOB_VALUES,
           "WITH j AS (INSERT INTO jobs (" JOB_COLS ")" JOB_VALUES " RETURNING ns, id) " EVENT_COLS
           " SELECT " EV_NOW_PG ", 'job.created', ns, id, '', '', 0, NULL FROM j");
static db_sql_t Q_JOB_CREATED_EVENT = DB_SQL(
    EVENT_COLS " VALUES (" EV_NOW_LITE_EXPR ", 'job.created', ?1, ?2, '', '', 0, NULL)", DB_NOOP);
/* A schedule's values in the order bind_sched gives them; a new schedule
 * has never fired. */
static db_sql_t Q_SCHED_INSERT = DB_SAME(
    "INSERT INTO schedules (id, job_id, pos, kind, expr, timezone, start_ms, end_ms, jitter_ms,"
    " anchor_ms, next_fire_ms, active, last_fire_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, -1)");
static db_sql_t Q_SCHED_UPDATE =
    DB_SAME("UPDATE schedules SET pos = ?3, kind = ?4, expr = ?5, timezone = ?6, start_ms = ?7,"
            " end_ms = ?8, jitter_ms = ?9, anchor_ms = ?10, next_fire_ms = ?11, active = ?12"
            " WHERE id = ?1 AND job_id = ?2");
static db_sql_t Q_JOB_GET = DB_SAME("SELECT " JOB_COLS " FROM jobs WHERE id = ?1 AND state != 3");
static db_sql_t Q_SCHED_OF_JOB =
    DB_SAME("SELECT " SCHED_COLS " FROM schedules WHERE job_id = ?1 ORDER BY pos");

/* The job filter; the state test defaults to "not deleted". Two variants so
 * that a page after the first seeks the index instead of scanning. */
#define JOB_LIST_WHERE_LITE                                                                        \
    " WHERE (?1 IS NULL OR ns = ?1) AND (CASE WHEN ?2 IS NULL THEN state != 3 ELSE state = ?2"     \
    " END) AND (?3 IS NULL OR queue = ?3) AND (?4 IS NULL OR instr(name, ?4) > 0)"                 \
    " AND (?5 IS NULL OR instr(tags, ',' || ?5 || ',') > 0)"                                       \
    " AND (?7 IS NULL OR instr(',' || ?7 || ',', ',' || ns || ',') > 0) AND kind = ?8"
#define JOB_LIST_WHERE_PG                                                                          \
    " WHERE ($1::text IS NULL OR ns = $1) AND (CASE WHEN $2::integer IS NULL THEN state <> 3"      \
    " ELSE state = $2 END) AND ($3::text IS NULL OR queue = $3)"                                   \
    " AND ($4::text IS NULL OR strpos(name, $4) > 0)"                                              \
    " AND ($5::text IS NULL OR strpos(tags, ',' || $5 || ',') > 0)"                                \
    " AND ($7::text IS NULL OR ns = ANY (string_to_array($7, ','))) AND kind = $8::integer"
/* One pair of statements per sort (job_sort_t): the first page, and a page
 * after the cursor's (key, id), each spelling its ORDER BY so that the
 * database walks an index in that order (jobs_kind, jobs_kind_name,
 * jobs_kind_priority) and stops after LIMIT rows instead of sorting every
 * job. Names compare byte by byte on both engines (SQLite's BINARY,
 * PostgreSQL's "C", which jobs_kind_name is built with), so both list in
 * one order whatever the database's locale. */
#define JOB_LIST_LITE(after, order)                                                                \
    "SELECT " JOB_COLS " FROM jobs" JOB_LIST_WHERE_LITE after " ORDER BY " order " LIMIT ?6"
#define JOB_LIST_PG(after, order)                                                                  \
    "SELECT " JOB_COLS " FROM jobs" JOB_LIST_WHERE_PG after " ORDER BY " order " LIMIT $6"
#define JOB_LIST_BY(lite, pg, pgtype, cmp, dir)                                                    \
    {                                                                                              \
        DB_SQL(JOB_LIST_LITE("", lite dir ", id" dir), JOB_LIST_PG("", pg dir ", id" dir)),        \
            DB_SQL(JOB_LIST_LITE(" AND (" lite ", id) " cmp " (?9, ?10)", lite dir ", id" dir),    \
                   JOB_LIST_PG(" AND (" pg ", id) " cmp " ($9::" pgtype ", $10::text)",            \
                               pg dir ", id" dir))                                                 \
    }
static db_sql_t Q_JOB_LIST[JOB_SORT_COUNT][2] = {
    [JOB_SORT_CREATED_DESC] = JOB_LIST_BY("created_ms", "created_ms", "bigint", "<", " DESC"),
    [JOB_SORT_CREATED] = JOB_LIST_BY("created_ms", "created_ms", "bigint", ">", ""),
    [JOB_SORT_NAME] = JOB_LIST_BY("name", "name COLLATE \"C\"", "text", ">", ""),
    [JOB_SORT_NAME_DESC] = JOB_LIST_BY("name", "name COLLATE \"C\"", "text", "<", " DESC"),
    [JOB_SORT_PRIORITY] = JOB_LIST_BY("priority", "priority", "integer", ">", ""),
    [JOB_SORT_PRIORITY_DESC] = JOB_LIST_BY("priority", "priority", "integer", "<", " DESC"),
};

static db_sql_t Q_JOB_UPDATE = DB_SAME(
    "UPDATE jobs SET name = ?2, queue = ?3, spec_json = ?4, constraints = ?5, tags = ?6,"
    " priority = ?7, overlap = ?8, misfire = ?9, catch_up_window_ms = ?10,"
    " max_concurrency = ?11, timeout_ms = ?12, retry_max_attempts = ?13,"
    " retry_initial_ms = ?14, retry_max_ms = ?15, retry_multiplier = ?16, retry_jitter = ?17,"
    " version = version + 1, updated_ms = ?19, deps_rule = ?20, max_active = ?21,"
    " array_count = ?22, array_parallel = ?23, graph = (graph & 8) | ?24, type = ?25"
    " WHERE id = ?1 AND state != 3 AND (?18 = 0 OR version = ?18)"
    " RETURNING version, state, ns, owner, created_ms");
static db_sql_t Q_JOB_VERSION = DB_SAME("SELECT version FROM jobs WHERE id = ?1 AND state != 3");
static db_sql_t Q_RUNS_RETARGET =
    DB_SAME("UPDATE runs SET priority = ?2, queue = ?3 WHERE job_id = ?1 AND state IN (0, 1, 2)");
static db_sql_t Q_SCHED_UNMARK = DB_SAME("UPDATE schedules SET pos = -1 WHERE job_id = ?1");
static db_sql_t Q_SCHED_DROP_UNMARKED =
    DB_SAME("DELETE FROM schedules WHERE job_id = ?1 AND pos = -1");

/* The row lock keeps a concurrent state change or update on another server
 * from deciding on the state we are about to change. */
static db_sql_t Q_JOB_STATE_LOCK =
    DB_SQL("SELECT state FROM jobs WHERE id = ?1 AND state != 3",
           "SELECT state FROM jobs WHERE id = $1 AND state <> 3 FOR NO KEY UPDATE");
/* A workflow's tasks share its state (their runs are claimed by it). */
#define JOB_AND_TASKS                                                                              \
    "(SELECT id FROM jobs WHERE id = ?1 UNION ALL SELECT id FROM jobs WHERE parent_id = ?1)"
static db_sql_t Q_JOB_SET_STATE =
    DB_SAME("UPDATE jobs SET state = ?2, version = version + 1, updated_ms = ?3"
            " WHERE id IN " JOB_AND_TASKS " AND state != 3");
static db_sql_t Q_SCHED_ACTIVE = DB_SAME("UPDATE schedules SET active = ?2 WHERE job_id = ?1");
static db_sql_t Q_RUNS_HOLD =
    DB_SAME("UPDATE runs SET held = ?2 WHERE job_id IN " JOB_AND_TASKS " AND state IN (0, 1, 2)");
/* What the cancels end goes on through the graph (graph.c). */
static db_sql_t Q_RUNS_CANCEL_WAITING =
    DB_SAME("UPDATE runs SET state = 6, held = FALSE, finished_ms = ?2, reason = ?3"
            " WHERE job_id IN " JOB_AND_TASKS " AND state IN (0, 1, 2)"
            " RETURNING id, parent_id, n_down, graph, job_id");
static db_sql_t Q_RUNS_CANCEL_RUNNING =
    DB_SAME("UPDATE runs SET cancel_requested = TRUE, reason = coalesce(reason, ?2)"
            " WHERE job_id IN " JOB_AND_TASKS " AND state = 3");
/* A job's own dependencies. */
static db_sql_t Q_DEPS_DROP = DB_SAME("DELETE FROM job_edges WHERE job_id = ?1");
static db_sql_t Q_DEP_INSERT =
    DB_SAME("INSERT INTO job_edges (job_id, up_job_id, cond, pos)"
            " SELECT ?1, u.id, ?3, ?4 FROM jobs u WHERE u.id = ?2 AND u.state != 3"
            " AND u.kind != 2 AND u.ns = ?5");
static db_sql_t Q_DEPENDENTS_MARK = DB_SAME("UPDATE jobs SET graph = graph | 8 WHERE id = ?1");
static db_sql_t Q_UPSTREAMS = DB_SAME("SELECT up_job_id FROM job_edges WHERE job_id = ?1");

/* ---- binders and small helpers ---------------------------------------------- */

/* The spec-derived columns of a job from name to priority (JOB_COLS 4..9). */
static void bind_job_head(db_q_t *q, const store_job_t *j)
{
    db_bt(q, j->name);
    db_bt(q, j->queue ? j->queue : "default");
    db_bt(q, j->spec_json ? j->spec_json : "{}");
    db_bt(q, j->constraints ? j->constraints : "");
    db_bt(q, j->tags ? j->tags : "");
    db_bi(q, j->priority);
}

/* ... and from overlap to retry_jitter (JOB_COLS 11..20). */
static void bind_job_policies(db_q_t *q, const store_job_t *j)
{
    db_bi(q, j->overlap);
    db_bi(q, j->misfire);
    db_bi(q, j->catch_up_window_ms);
    db_bi(q, j->max_concurrency);
    db_bi(q, j->timeout_ms);
    db_bi(q, j->retry.max_attempts);
    db_bi(q, j->retry.initial_ms);
    db_bi(q, j->retry.max_ms);
    db_bd(q, j->retry.multiplier);
    db_bb(q, j->retry.jitter);
}

/* Inserts or updates (sql) schedule sc at position pos. *changed OUT (may
 * be NULL): the rows changed. */
static int put_sched(db_t *db, db_sql_t *sql, const store_schedule_t *sc, size_t pos, bool active,
                     int64_t *changed)
{
    db_q_t *q = db_q(db, sql);
    if (!q) return SKED_ESTORE;
    db_bt(q, sc->id);
    db_bt(q, sc->job_id);
    db_bi(q, (int64_t)pos);
    db_bi(q, sc->kind);
    db_bt(q, sc->expr ? sc->expr : "");
    db_bt(q, sc->timezone ? sc->timezone : "");
    db_bi(q, sc->start_ms);
    db_bi(q, sc->end_ms);
    db_bi(q, sc->jitter_ms);
    db_bi(q, sc->anchor_ms);
    db_bin(q, sc->next_fire_ms);
    db_bb(q, active);
    return db_exec(q, changed);
}

/* Runs a statement whose parameters are a job's id and then, when text is
 * non-NULL, that text. */
static int exec_job(db_t *db, db_sql_t *sql, const char *job_id, const char *text)
{
    db_q_t *q = db_q(db, sql);
    if (!q) return SKED_ESTORE;
    db_bt(q, job_id);
    if (text) db_bt(q, text);
    return db_exec(q, NULL);
}

static void sched_row(db_q_t *q, void *e)
{
    store__row_sched(q, 0, e);
}

static void sched_clear(void *e)
{
    store_schedule_clear(e);
}

static const db_rows_t sched_rows = {sizeof(store_schedule_t), sched_row, sched_clear, NULL};

static void scheds_free(store_schedule_t **v, size_t *n)
{
    for (size_t i = 0; *v && i < *n; i++)
        store_schedule_clear(&(*v)[i]);
    FREE_NULL(*v);
    *n = 0;
}

/* The graph bits a job's spec gives it (the dependents bit is the store's). */
static int job_graph(const store_job_t *j)
{
    return (j->kind == JOB_KIND_WORKFLOW ? STORE_GRAPH_WORKFLOW : 0) |
           (j->array_count > 0 ? STORE_GRAPH_ARRAY : 0) |
           (j->kind == JOB_KIND_JOB && j->ndeps > 0 ? STORE_GRAPH_DEPS : 0);
}

/* Whether job `target` is upstream of `from` (or is it), walking job
 * dependencies: an edge from target to from would close a cycle. */
static int reaches(db_t *db, const char *from, const char *target, bool *found)
{
    char(*todo)[SKED_ID_LEN] = NULL, (*seen)[SKED_ID_LEN] = NULL;
    size_t ntodo = 0, nseen = 0, cap = 0, scap = 0;
    int rc = 0;
    *found = false;
    todo = xrealloc(todo, (cap = 8) * sizeof *todo);
    snprintf(todo[ntodo++], SKED_ID_LEN, "%s", from);
    while (rc == 0 && ntodo > 0 && !*found) {
        char cur[SKED_ID_LEN];
        memcpy(cur, todo[--ntodo], SKED_ID_LEN);
        if (strcmp(cur, target) == 0) {
            *found = true;
            break;
        }
        bool dup = false;
        for (size_t i = 0; i < nseen && !dup; i++)
            dup = strcmp(seen[i], cur) == 0;
        if (dup) continue;
        if (nseen == scap) seen = xrealloc(seen, (scap = scap ? scap * 2 : 8) * sizeof *seen);
        memcpy(seen[nseen++], cur, SKED_ID_LEN);
        db_q_t *q = db_q(db, &Q_UPSTREAMS);
        if (!q) {
            rc = SKED_ESTORE;
            break;
        }
        db_bt(q, cur);
        while ((rc = db_step(q)) == 1) {
            if (ntodo == cap) todo = xrealloc(todo, (cap *= 2) * sizeof *todo);
            db_cid(q, 0, todo[ntodo++]);
        }
    }
    free(todo);
    free(seen);
    return rc < 0 ? rc : 0;
}

/* Writes a job's own dependencies (replacing them on update): each
 * upstream must be a job or workflow of the job's namespace, and on update
 * must not depend on the job itself. */
static int put_deps(db_t *db, store_job_t *j, bool replace)
{
    int rc;
    j->bad_dep = -1;
    if (j->kind != JOB_KIND_JOB) return 0;
    if (replace && (rc = exec_job(db, &Q_DEPS_DROP, j->id, NULL)) < 0) return rc;
    for (size_t i = 0; i < j->ndeps; i++) {
        const store_dep_t *d = &j->deps[i];
        if (replace) {
            bool cycle = false;
            if ((rc = reaches(db, d->job_id, j->id, &cycle)) < 0) return rc;
            if (cycle) {
                j->bad_dep = (int)i;
                return SKED_ECONFLICT;
            }
        }
        db_q_t *q = db_q(db, &Q_DEP_INSERT);
        if (!q) return SKED_ESTORE;
        db_bt(q, j->id);
        db_bt(q, d->job_id);
        db_bi(q, d->cond);
        db_bi(q, (int64_t)i);
        db_bt(q, j->ns);
        int64_t added = 0;
        if ((rc = db_exec(q, &added)) < 0) return rc;
        if (added == 0) {
            j->bad_dep = (int)i;
            return SKED_ENOTFOUND;
        }
        if ((rc = exec_job(db, &Q_DEPENDENTS_MARK, d->job_id, NULL)) < 0) return rc;
    }
    return 0;
}

/* ---- create ---------------------------------------------------------------- */

int store__job_insert(db_t *db, store_job_t *j, store_schedule_t *scheds, size_t nscheds,
                      int64_t now_ms)
{
    db_q_t *q;
    int rc;
    if (!j->id[0]) id_new("job", now_ms, j->id);
    j->version = 1;
    j->created_ms = j->updated_ms = now_ms;
    j->state = JOB_ACTIVE;
    if (!(q = db_q(db, &Q_JOB_INSERT))) return SKED_ESTORE;
    db_bt(q, j->id);
    db_bt(q, j->ns);
    db_bt(q, j->owner);
    bind_job_head(q, j);
    db_bi(q, j->state);
    bind_job_policies(q, j);
    db_bi(q, j->version);
    db_bi(q, j->created_ms);
    db_bi(q, j->updated_ms);
    db_bi(q, j->kind);
    db_bt(q, j->parent_id[0] ? j->parent_id : NULL);
    db_bi(q, job_graph(j));
    db_bi(q, j->deps_rule);
    db_bi(q, j->max_active);
    db_bi(q, j->array_count);
    db_bi(q, j->array_parallel);
    db_bt(q, j->type ? j->type : "shell");
    if ((rc = db_exec(q, NULL)) < 0) return rc; /* ECONFLICT: the name is taken */
    if (!(q = db_q(db, &Q_JOB_CREATED_EVENT))) return SKED_ESTORE;
    db_bt(q, j->ns);
    db_bt(q, j->id);
    if ((rc = db_exec(q, NULL)) < 0) return rc;
    if ((rc = put_deps(db, j, false)) < 0) return rc;

    for (size_t i = 0; i < nscheds; i++) {
        store_schedule_t *sc = &scheds[i];
        id_new("sch", now_ms, sc->id);
        snprintf(sc->job_id, sizeof sc->job_id, "%s", j->id);
        sc->last_fire_ms = -1;
        if ((rc = put_sched(db, &Q_SCHED_INSERT, sc, i, true, NULL)) < 0) return rc;
    }
    return store__alerts_put_job(db, j, false, now_ms);
}

/* A create of one job (store_job_create) or of a batch
 * (store_job_create_batch): both go through job_create_fn. */
struct job_create_args {
    store_job_new_t *items;
    size_t n;
    bool batch; /* the key names a batch: its ids go in idempotency.jobs */
    const char *idem_key;
    const store_audit_t *audit;
    int64_t now_ms;
    size_t bad;    /* OUT: the item being written when a write failed */
    char *earlier; /* OUT (new): a repeated batch key's ids; NULL for a key of one job */
};

/* The jobs of a key already used: the first into items[0]'s id, all of
 * them (a batch's) into a->earlier. */
static int idem_earlier(db_t *db, struct job_create_args *a)
{
    store_job_t *j = a->items[0].job;
    db_q_t *q = db_q(db, &Q_IDEM_GET);
    if (!q) return SKED_ESTORE;
    db_bt(q, j->owner);
    db_bt(q, a->idem_key);
    int rc = db_one(q);
    if (rc == 0) {
        db_cid(q, 0, j->id);
        a->earlier = db_ct(q, 1);
    }
    /* Not found: the key's entry was pruned since it stopped our claim;
     * the key was used all the same. */
    return rc == 0 || rc == SKED_ENOTFOUND ? SKED_EEXIST : rc;
}

/* Claims the idempotency key for the jobs of a (their ids minted), or
 * answers SKED_EEXIST with the jobs it was first used for. */
static int idem_claim(db_t *db, struct job_create_args *a)
{
    const store_job_t *first = a->items[0].job;
    char *ids = NULL;
    if (a->batch) {
        ids = xmalloc(a->n * SKED_ID_LEN + 1);
        size_t len = 0;
        for (size_t i = 0; i < a->n; i++) {
            size_t l = strlen(a->items[i].job->id);
            if (i) ids[len++] = ',';
            memcpy(ids + len, a->items[i].job->id, l);
            len += l;
        }
        ids[len] = '\0';
    }
    int64_t n = 0;
    int rc = SKED_ESTORE;
    db_q_t *q = db_q(db, &Q_IDEM_CLAIM);
    if (q) {
        db_bt(q, first->owner);
        db_bt(q, a->idem_key);
        db_bt(q, first->id);
        db_bi(q, a->now_ms);
        db_bt(q, ids);
        rc = db_exec(q, &n);
    }
    free(ids);
    if (rc < 0) return rc;
    return n == 0 ? idem_earlier(db, a) : 0;
}

/* One job of a create, as the single and the batch create both write it:
 * the job with its schedules, alert rules and dependencies, and, if it
 * runs now, its pending run. */
static int create_one(db_t *db, store_job_new_t *it, int64_t now_ms)
{
    int rc = store__job_insert(db, it->job, it->scheds, it->nscheds, now_ms);
    if (rc < 0 || !it->run_now) return rc;
    char rid[SKED_ID_LEN];
    return store__insert_run(db, rid, it->job->id, NULL, RUN_PENDING, now_ms, now_ms, NULL, now_ms,
                             NULL);
}

static int job_create_fn(db_t *db, void *arg)
{
    struct job_create_args *a = arg;
    bool wake = false;
    int rc;

    FREE_NULL(a->earlier); /* from a try before this one */
    for (size_t i = 0; i < a->n; i++)
        id_new("job", a->now_ms, a->items[i].job->id);
    /* Claim the key first: a concurrent create with the same key waits
     * here for ours to commit, then finds it (and answers EEXIST) instead
     * of tripping over our jobs' names. */
    if (a->idem_key && (rc = idem_claim(db, a)) != 0) return rc;
    for (size_t i = 0; i < a->n; i++) {
        a->bad = i;
        if ((rc = create_one(db, &a->items[i], a->now_ms)) < 0) return rc;
        wake = wake || a->items[i].run_now;
    }
    if (wake) db_notify(db); /* once, however many runs the batch made */
    return store__put_audit(db, a->audit, a->items[0].job->id);
}

static int create_jobs(store_t *st, store_job_new_t *items, size_t n, bool batch,
                       const char *idem_key, const store_audit_t *audit, int64_t now_ms,
                       size_t *bad, char **earlier)
{
    for (size_t i = 0; i < n; i++) {
        /* Defaults live with the job so the caller sees what was stored. */
        store_job_t *job = items[i].job;
        if (!job->ns) job->ns = xstrdup("default");
        if (!job->owner) job->owner = xstrdup("");
        if (!job->queue) job->queue = xstrdup("default");
    }
    struct job_create_args a = {items, n, batch, idem_key, audit, now_ms, 0, NULL};
    int rc = store__tx(st, DB_WRITE, job_create_fn, &a, &a.now_ms);
    /* Nothing stored: no id but, on a repeat, the first job's. */
    for (size_t i = rc == SKED_EEXIST ? 1 : 0; rc < 0 && i < n; i++)
        items[i].job->id[0] = '\0';
    if (bad) *bad = a.bad;
    if (earlier)
        *earlier = a.earlier;
    else
        free(a.earlier);
    return rc;
}

int v_job_create(store_t *st, store_job_t *job, store_schedule_t *scheds, size_t nscheds,
                 bool run_now, const char *idem_key, const store_audit_t *audit, int64_t now_ms)
{
    store_job_new_t one = {job, scheds, nscheds, run_now};
    return create_jobs(st, &one, 1, false, idem_key, audit, now_ms, NULL, NULL);
}

int v_job_create_batch(store_t *st, store_job_new_t *items, size_t n, const char *idem_key,
                       const store_audit_t *audit, int64_t now_ms, size_t *bad, char **earlier)
{
    return create_jobs(st, items, n, true, idem_key, audit, now_ms, bad, earlier);
}

/* ---- get and list ------------------------------------------------------------- */

struct job_get_args {
    const char *id;
    store_job_t *out;
    store_schedule_t **scheds;
    size_t *nscheds;
};

static int job_get_fn(db_t *db, void *arg)
{
    struct job_get_args *a = arg;
    /* A read whose commit failed runs again: drop what the last try read. */
    store_job_clear(a->out);
    if (a->scheds) scheds_free(a->scheds, a->nscheds);
    db_q_t *q = db_q(db, &Q_JOB_GET);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    store__row_job(q, a->out);
    if (!a->scheds) return 0;
    if (!(q = db_q(db, &Q_SCHED_OF_JOB))) {
        rc = SKED_ESTORE;
    } else {
        db_bt(q, a->id);
        rc = db_page(q, &sched_rows, -1, (void **)a->scheds, a->nscheds, NULL);
    }
    if (rc < 0) store_job_clear(a->out);
    return rc;
}

int v_job_get(store_t *st, const char *id, store_job_t *out, store_schedule_t **scheds,
              size_t *nscheds)
{
    memset(out, 0, sizeof *out);
    if (scheds) {
        *scheds = NULL;
        *nscheds = 0;
    }
    struct job_get_args a = {id, out, scheds, nscheds};
    /* The job and its schedules from one snapshot. */
    return store__tx(st, scheds ? DB_READ : DB_READ1, job_get_fn, &a, NULL);
}

/* Where a page after the first starts: the last row's sort key and id. */
struct job_key {
    int64_t num;    /* created_ms or priority */
    char text[256]; /* the name, for the name sorts (a name has at most 200 bytes) */
    char id[SKED_ID_LEN];
};

static bool sort_by_name(job_sort_t s)
{
    return s == JOB_SORT_NAME || s == JOB_SORT_NAME_DESC;
}

/* A job list's cursor. Newest first keeps the "<ms>.<id>" of every other
 * list (store__cursor_encode); the other sorts name themselves,
 * "<sort>.<key>.<id>" with the name in hex (a name may hold any byte but a
 * control character) or the number in decimal, so a cursor given with
 * another sort than the one that made it is refused, never read as a key
 * of the wrong kind. New; caller frees. */
static char *job_cursor(job_sort_t s, const store_job_t *j)
{
    if (s == JOB_SORT_CREATED_DESC) return store__cursor_encode(j->created_ms, j->id);
    if (!sort_by_name(s)) {
        int64_t v = s == JOB_SORT_CREATED ? j->created_ms : j->priority;
        return xasprintf("%s.%" PRId64 ".%s", job_sort_name(s), v, j->id);
    }
    const char *name = j->name ? j->name : "";
    size_t len = strlen(name);
    char *hex = xmalloc(2 * len + 1);
    sodium_bin2hex(hex, 2 * len + 1, (const unsigned char *)name, len);
    char *c = xasprintf("%s.%s.%s", job_sort_name(s), hex, j->id);
    free(hex);
    return c;
}

static int job_cursor_decode(job_sort_t s, const char *c, struct job_key *k)
{
    memset(k, 0, sizeof *k);
    if (s == JOB_SORT_CREATED_DESC) return store__cursor_decode(c, &k->num, k->id);
    const char *sname = job_sort_name(s);
    size_t slen = strlen(sname);
    if (strncmp(c, sname, slen) != 0 || c[slen] != '.') return SKED_EINVAL;
    const char *key = c + slen + 1, *dot = strchr(key, '.');
    if (!dot || dot == key) return SKED_EINVAL;
    size_t klen = (size_t)(dot - key);
    if (sort_by_name(s)) {
        size_t bin = 0;
        const char *end = NULL;
        if (sodium_hex2bin((unsigned char *)k->text, sizeof k->text - 1, key, klen, NULL, &bin,
                           &end) != 0 ||
            end != dot || memchr(k->text, 0, bin))
            return SKED_EINVAL; /* not all hex, too long, or a NUL inside */
        k->text[bin] = '\0';
    } else {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(key, &end, 10);
        if (end != dot || errno) return SKED_EINVAL;
        k->num = (int64_t)v;
    }
    const char *id = dot + 1;
    if (strlen(id) >= SKED_ID_LEN || !id_valid(id)) return SKED_EINVAL;
    snprintf(k->id, sizeof k->id, "%s", id);
    return 0;
}

struct job_list_args {
    const store_job_filter_t *f;
    const struct job_key *after; /* NULL on a first page */
    store_job_t **out;
    size_t *n;
    char **next;
};

static int job_list_fn(db_t *db, void *arg)
{
    struct job_list_args *a = arg;
    const store_job_filter_t *f = a->f;
    job_state_t js = JOB_ACTIVE;
    if (f->state) job_state_parse(f->state, &js);
    free(*a->next); /* from a try before this one */
    *a->next = NULL;
    db_q_t *q = db_q(db, &Q_JOB_LIST[f->sort][a->after != NULL]);
    if (!q) return SKED_ESTORE;
    db_bt(q, f->ns);
    db_bin(q, f->state ? (int64_t)js : -1);
    db_bt(q, f->queue);
    db_bt(q, f->name);
    db_bt(q, f->tag);
    db_bi(q, f->limit + 1); /* one more tells whether a next page exists */
    db_bt(q, f->ns_in);
    db_bi(q, f->kind);
    if (a->after) {
        if (sort_by_name(f->sort))
            db_bt(q, a->after->text);
        else
            db_bi(q, a->after->num);
        db_bt(q, a->after->id);
    }
    /* db_page's cursor is the newest-first one; the sort's own replaces it. */
    char *more = NULL;
    int rc = db_page(q, &store__job_rows, f->limit, (void **)a->out, a->n, &more);
    if (rc == 0 && more) *a->next = job_cursor(f->sort, &(*a->out)[*a->n - 1]);
    free(more);
    return rc;
}

int v_job_list(store_t *st, const store_job_filter_t *f, store_job_t **out, size_t *n,
               char **next_cursor)
{
    struct job_key after;
    if (f->cursor && job_cursor_decode(f->sort, f->cursor, &after) < 0) return SKED_EINVAL;
    struct job_list_args a = {f, f->cursor ? &after : NULL, out, n, next_cursor};
    return store__tx(st, DB_READ1, job_list_fn, &a, NULL);
}

/* ---- update -------------------------------------------------------------------- */

struct job_update_args {
    store_job_t *job;
    int64_t expect;
    store_schedule_t *scheds;
    size_t nscheds;
    char (*ids)[SKED_ID_LEN]; /* the schedule ids as the caller passed them */
    const store_audit_t *audit;
    int64_t now_ms;
};

/* The job's new version, state and the columns an update keeps, from the
 * current row of Q_JOB_UPDATE's RETURNING. */
static void updated_job(db_q_t *q, store_job_t *j, int64_t now_ms)
{
    j->version = db_ci(q, 0);
    j->state = (job_state_t)db_ci(q, 1);
    free(j->ns);
    j->ns = db_ct0(q, 2);
    free(j->owner);
    j->owner = db_ct0(q, 3);
    j->created_ms = db_ci(q, 4);
    j->updated_ms = now_ms;
}

int store__job_rewrite(db_t *db, store_job_t *j, int64_t expect, store_schedule_t *scheds,
                       size_t nscheds, int64_t now_ms)
{
    int rc;
    db_q_t *q = db_q(db, &Q_JOB_UPDATE);
    if (!q) return SKED_ESTORE;
    db_bt(q, j->id);
    bind_job_head(q, j);
    bind_job_policies(q, j);
    db_bi(q, expect);
    db_bi(q, now_ms);
    db_bi(q, j->deps_rule);
    db_bi(q, j->max_active);
    db_bi(q, j->array_count);
    db_bi(q, j->array_parallel);
    db_bi(q, job_graph(j));
    db_bt(q, j->type ? j->type : "shell");
    if ((rc = db_one(q)) == SKED_ENOTFOUND) {
        /* No row changed: a stale version, or no such job. */
        if (!(q = db_q(db, &Q_JOB_VERSION))) return SKED_ESTORE;
        db_bt(q, j->id);
        rc = db_one(q);
        return rc == 0 ? SKED_EPRECOND : rc;
    }
    if (rc < 0) return rc; /* ECONFLICT: the new name is taken */
    updated_job(q, j, now_ms);
    bool active = j->state == JOB_ACTIVE;
    if (j->kind == JOB_KIND_JOB && (rc = put_deps(db, j, true)) < 0) return rc;

    if (!(q = db_q(db, &Q_RUNS_RETARGET))) return SKED_ESTORE;
    db_bt(q, j->id);
    db_bi(q, j->priority);
    db_bt(q, j->queue ? j->queue : "default");
    if ((rc = db_exec(q, NULL)) < 0) return rc;

    /* Replace the schedule set: keep rows whose id the caller passed back
     * (so their history stays attached), insert the rest, drop the others. */
    if ((rc = exec_job(db, &Q_SCHED_UNMARK, j->id, NULL)) < 0) return rc;
    for (size_t i = 0; i < nscheds; i++) {
        store_schedule_t *sc = &scheds[i];
        snprintf(sc->job_id, sizeof sc->job_id, "%s", j->id);
        int64_t changed = 0;
        if (sc->id[0] && (rc = put_sched(db, &Q_SCHED_UPDATE, sc, i, active, &changed)) < 0)
            return rc;
        if (!changed) {
            id_new("sch", now_ms, sc->id);
            sc->last_fire_ms = -1;
            if ((rc = put_sched(db, &Q_SCHED_INSERT, sc, i, active, NULL)) < 0) return rc;
        }
    }
    if ((rc = exec_job(db, &Q_SCHED_DROP_UNMARKED, j->id, NULL)) < 0) return rc;
    return store__alerts_put_job(db, j, true, now_ms);
}

static int job_update_fn(db_t *db, void *arg)
{
    struct job_update_args *a = arg;
    store_job_t *j = a->job;
    int rc;

    /* A try that failed may have given schedules new ids: start over from
     * the caller's. */
    for (size_t i = 0; i < a->nscheds; i++)
        memcpy(a->scheds[i].id, a->ids[i], SKED_ID_LEN);

    if ((rc = store__job_rewrite(db, j, a->expect, a->scheds, a->nscheds, a->now_ms)) < 0)
        return rc;
    db_notify(db);
    return store__put_audit(db, a->audit, j->id);
}

int v_job_update(store_t *st, store_job_t *job, int64_t expect_version, store_schedule_t *scheds,
                 size_t nscheds, const store_audit_t *audit, int64_t now_ms)
{
    char(*ids)[SKED_ID_LEN] = nscheds ? xcalloc(nscheds, sizeof *ids) : NULL;
    for (size_t i = 0; i < nscheds; i++)
        memcpy(ids[i], scheds[i].id, SKED_ID_LEN);
    struct job_update_args a = {job, expect_version, scheds, nscheds, ids, audit, now_ms};
    int rc = store__tx(st, DB_WRITE, job_update_fn, &a, &a.now_ms);
    if (rc < 0) /* nothing was stored: the caller's schedules stay as they were */
        for (size_t i = 0; i < nscheds; i++)
            memcpy(scheds[i].id, ids[i], SKED_ID_LEN);
    free(ids);
    return rc;
}

/* ---- pause, resume, delete ------------------------------------------------------ */

struct job_state_args {
    const char *id;
    job_state_t state;
    const store_audit_t *audit;
    int64_t now_ms;
};

/* Steps q, whose rows are (id, parent_id, n_down, graph, job_id) of runs it
 * just canceled, and lets the graph learn of each that matters. */
static int ended_on(db_t *db, db_q_t *q, int64_t now_ms)
{
    struct gone {
        char id[SKED_ID_LEN], parent[SKED_ID_LEN], job_id[SKED_ID_LEN];
        int64_t n_down;
        int graph;
    } *v = NULL;
    size_t n = 0, cap = 0;
    int rc;
    while ((rc = db_step(q)) == 1) {
        if (db_cnull(q, 1) && db_ci(q, 2) == 0 && db_ci(q, 3) == 0) continue;
        if (n == cap) v = xrealloc(v, (cap = cap ? cap * 2 : 8) * sizeof *v);
        db_cid(q, 0, v[n].id);
        db_cid(q, 1, v[n].parent);
        v[n].n_down = db_ci(q, 2);
        v[n].graph = (int)db_ci(q, 3);
        db_cid(q, 4, v[n].job_id);
        n++;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = store__graph_ended(db, v[i].id, RUN_CANCELED, v[i].parent, v[i].n_down, v[i].graph,
                                v[i].job_id, now_ms);
    free(v);
    return rc;
}

int store__job_set_state(db_t *db, const char *id, job_state_t state, int64_t now_ms)
{
    struct job_state_args args = {id, state, NULL, now_ms}, *a = &args;
    db_q_t *q = db_q(db, &Q_JOB_STATE_LOCK);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    if ((job_state_t)db_ci(q, 0) == a->state) return 0; /* pause of a paused job: no change */

    if (!(q = db_q(db, &Q_JOB_SET_STATE))) return SKED_ESTORE;
    db_bt(q, a->id);
    db_bi(q, a->state);
    db_bi(q, a->now_ms);
    if ((rc = db_exec(q, NULL)) < 0) return rc;
    if (!(q = db_q(db, &Q_SCHED_ACTIVE))) return SKED_ESTORE;
    db_bt(q, a->id);
    db_bb(q, a->state == JOB_ACTIVE);
    if ((rc = db_exec(q, NULL)) < 0) return rc;

    if (a->state == JOB_DELETED) {
        if (!(q = db_q(db, &Q_RUNS_CANCEL_WAITING))) return SKED_ESTORE;
        db_bt(q, a->id);
        db_bi(q, a->now_ms);
        db_bt(q, "job deleted");
        if ((rc = ended_on(db, q, a->now_ms)) < 0) return rc;
        if ((rc = exec_job(db, &Q_RUNS_CANCEL_RUNNING, a->id, "job deleted")) < 0) return rc;
        if ((rc = store__graph_job_deleted(db, a->id, a->now_ms)) < 0) return rc;
    } else {
        if (!(q = db_q(db, &Q_RUNS_HOLD))) return SKED_ESTORE;
        db_bt(q, a->id);
        db_bb(q, a->state == JOB_PAUSED);
        if ((rc = db_exec(q, NULL)) < 0) return rc;
    }
    db_notify(db);
    return 0;
}

static int job_set_state_fn(db_t *db, void *arg)
{
    struct job_state_args *a = arg;
    int rc = store__job_set_state(db, a->id, a->state, a->now_ms);
    return rc < 0 ? rc : store__put_audit(db, a->audit, a->id);
}

int v_job_set_state(store_t *st, const char *id, job_state_t state, const store_audit_t *audit,
                    int64_t now_ms)
{
    struct job_state_args a = {id, state, audit, now_ms};
    return store__tx(st, DB_WRITE, job_set_state_fn, &a, &a.now_ms);
}
