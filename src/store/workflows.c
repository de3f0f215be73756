/*
 * Store verbs of workflows and group runs, written once over the SQL
 * driver (db.h): a workflow put (create or replace, its tasks and their
 * edges with it, in one unit), its tasks, a group run with its members, a
 * job's group runs, and the retry of a member (alone or with everything
 * downstream of it) inside its workflow run.
 *
 * A workflow is a job of kind 1 and each task a job of kind 2 (parent_id:
 * the workflow), so tasks are claimed, retried, logged and alerted on as
 * jobs are; their edges are job_edges with cond DEP_TASK. The graph
 * (graph.c) turns a workflow's run into task runs and releases them.
 */
#include "store/verbs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "store/rows.h"
#include "store/store_int.h"

/* ---- statements ---------------------------------------------------------------- */

static db_sql_t Q_IDEM_CLAIM =
    DB_SAME("INSERT INTO idempotency (owner, key, job_id, created_ms)"
            " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (owner, key) DO NOTHING");
static db_sql_t Q_IDEM_GET =
    DB_SAME("SELECT job_id FROM idempotency WHERE owner = ?1 AND key = ?2");
static db_sql_t Q_WF_KIND =
    DB_SQL("SELECT kind FROM jobs WHERE id = ?1 AND state != 3",
           "SELECT kind FROM jobs WHERE id = $1 AND state <> 3 FOR NO KEY UPDATE");
static db_sql_t Q_TASKS_OF = DB_SAME("SELECT " JOB_COLS " FROM jobs WHERE parent_id = ?1"
                                     " AND kind = 2 AND state != 3 ORDER BY name");
static db_sql_t Q_TASK_EDGES_DROP =
    DB_SAME("DELETE FROM job_edges WHERE job_id IN (SELECT id FROM jobs WHERE parent_id = ?1)");
static db_sql_t Q_TASK_EDGE =
    DB_SAME("INSERT INTO job_edges (job_id, up_job_id, cond, pos) VALUES (?1, ?2, 0, ?3)");
static db_sql_t Q_TASK_UPS =
    DB_SAME("SELECT e.job_id, e.up_job_id FROM job_edges e JOIN jobs t ON t.id = e.job_id"
            " WHERE t.parent_id = ?1 AND t.kind = 2 AND t.state != 3 ORDER BY e.job_id, e.pos");

#define MEMBER_COLS RUN_COLS ", (SELECT j.name FROM jobs j WHERE j.id = runs.job_id)"
static db_sql_t Q_GROUP_RUN = DB_SAME("SELECT " RUN_COLS ", graph FROM runs WHERE id = ?1");
static db_sql_t Q_GROUP_ROW =
    DB_SAME("SELECT n, open, ok, failed, canceled, skipped, parallel, started FROM run_groups"
            " WHERE run_id = ?1");
static db_sql_t Q_MEMBERS =
    DB_SAME("SELECT " MEMBER_COLS " FROM runs WHERE parent_id = ?1 ORDER BY array_index, id");
static db_sql_t Q_GROUPS_OF_JOB =
    DB_SQL("SELECT " RUN_COLS ", g.n, g.open, g.ok, g.failed, g.canceled, g.skipped, g.parallel,"
           " g.started FROM runs LEFT JOIN run_groups g ON g.run_id = runs.id"
           " WHERE runs.job_id = ?1 AND runs.parent_id IS NULL"
           " AND (?2 IS NULL OR fire_ms < ?2 OR (fire_ms = ?2 AND runs.id < ?3))"
           " ORDER BY fire_ms DESC, runs.id DESC LIMIT ?4",
           "SELECT " RUN_COLS ", g.n, g.open, g.ok, g.failed, g.canceled, g.skipped, g.parallel,"
           " g.started FROM runs LEFT JOIN run_groups g ON g.run_id = runs.id"
           " WHERE runs.job_id = $1 AND runs.parent_id IS NULL"
           " AND ($2::bigint IS NULL OR (fire_ms, runs.id) < ($2, $3::text))"
           " ORDER BY fire_ms DESC, runs.id DESC LIMIT $4");

/* Retry. */
/* A run and the state of its job (a deleted workflow's or task's runs can
 * never be claimed again). */
static db_sql_t Q_RUN_LOCK =
    DB_SQL("SELECT r.state, r.parent_id, r.graph, j.state FROM runs r JOIN jobs j"
           " ON j.id = r.job_id WHERE r.id = ?1",
           "SELECT r.state, r.parent_id, r.graph, j.state FROM runs r JOIN jobs j"
           " ON j.id = r.job_id WHERE r.id = $1 FOR NO KEY UPDATE OF r");
static db_sql_t Q_DOWN_OF = DB_SAME("SELECT run_id FROM run_edges WHERE up_id = ?1");
static db_sql_t Q_UPS_OF = DB_SAME("SELECT e.up_id, e.cond, u.state, u.reason FROM run_edges e"
                                   " JOIN runs u ON u.id = e.up_id"
                                   " WHERE e.run_id = ?1");
/* A member made new: its next attempt is charged from a fresh budget. */
static db_sql_t Q_MEMBER_RESET =
    DB_SAME("UPDATE runs SET state = ?2, not_before_ms = ?3, finished_ms = -1, reason = NULL,"
            " exit_code = -1, signal = 0, cancel_requested = FALSE, lease_expires_ms = -1,"
            " retry_base = attempt, deps_ok = ?4, deps_fail = ?5, deps_skip = ?6, worker_id = '',"
            " held = (SELECT j.state = 1 FROM jobs j WHERE j.id = runs.job_id)"
            " WHERE id = ?1 AND (state >= 4 OR state = 1)");
static db_sql_t Q_GROUP_RECOUNT =
    DB_SAME("UPDATE run_groups SET open = (SELECT count(*) FROM runs r WHERE r.parent_id = ?1"
            " AND r.state < 4), ok = (SELECT count(*) FROM runs r WHERE r.parent_id = ?1"
            " AND r.state = 4), failed = (SELECT count(*) FROM runs r WHERE r.parent_id = ?1"
            " AND r.state = 5), canceled = (SELECT count(*) FROM runs r WHERE r.parent_id = ?1"
            " AND r.state = 6), skipped = (SELECT count(*) FROM runs r WHERE r.parent_id = ?1"
            " AND r.state = 7) WHERE run_id = ?1");
static db_sql_t Q_GROUP_REOPEN =
    DB_SAME("UPDATE runs SET state = 1, finished_ms = -1, reason = NULL"
            " WHERE id = ?1 AND state IN (4, 5)");

/* ---- put --------------------------------------------------------------------------- */

struct put_args {
    store_job_t *wf;
    store_schedule_t *scheds;
    size_t nscheds;
    char (*sched_ids)[SKED_ID_LEN];
    store_job_t *tasks;
    size_t ntasks;
    int64_t expect; /* < 0: create */
    const char *idem_key;
    const store_audit_t *audit;
    int64_t now_ms;
};

/* The tasks' edges, replacing the old ones. */
static int put_edges(db_t *db, const struct put_args *a)
{
    db_q_t *q = db_q(db, &Q_TASK_EDGES_DROP);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->wf->id);
    int rc = db_exec(q, NULL);
    for (size_t i = 0; rc == 0 && i < a->ntasks; i++) {
        const store_job_t *t = &a->tasks[i];
        for (size_t k = 0; rc == 0 && k < t->ndeps; k++) {
            if (t->deps[k].task >= a->ntasks) return SKED_EINVAL;
            if (!(q = db_q(db, &Q_TASK_EDGE))) return SKED_ESTORE;
            db_bt(q, t->id);
            db_bt(q, a->tasks[t->deps[k].task].id);
            db_bi(q, (int64_t)k);
            rc = db_exec(q, NULL);
        }
    }
    return rc;
}

/* On replace: the existing tasks, by name, keep their ids; the ones no
 * longer named are deleted (their waiting runs canceled). */
static int match_tasks(db_t *db, struct put_args *a)
{
    store_job_t *old = NULL;
    size_t nold = 0;
    db_q_t *q = db_q(db, &Q_TASKS_OF);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->wf->id);
    int rc = db_page(q, &store__job_rows, -1, (void **)&old, &nold, NULL);
    if (rc < 0) return rc;
    for (size_t i = 0; i < nold && rc == 0; i++) {
        bool kept = false;
        for (size_t k = 0; k < a->ntasks && !kept; k++) {
            if (strcmp(a->tasks[k].name, old[i].name) == 0) {
                memcpy(a->tasks[k].id, old[i].id, SKED_ID_LEN);
                kept = true;
            }
        }
        if (!kept) rc = store__job_set_state(db, old[i].id, JOB_DELETED, a->now_ms);
    }
    for (size_t i = 0; i < nold; i++)
        store_job_clear(&old[i]);
    free(old);
    return rc;
}

static int put_fn(db_t *db, void *arg)
{
    struct put_args *a = arg;
    store_job_t *wf = a->wf;
    int rc;
    /* A failed try may have minted ids: start from the caller's. */
    for (size_t i = 0; i < a->ntasks; i++)
        a->tasks[i].id[0] = '\0';
    for (size_t i = 0; i < a->nscheds; i++)
        memcpy(a->scheds[i].id, a->sched_ids[i], SKED_ID_LEN);
    wf->kind = JOB_KIND_WORKFLOW;
    wf->bad_dep = -1;

    if (a->expect < 0) {
        id_new("wfl", a->now_ms, wf->id);
        if (a->idem_key) {
            int64_t n = 0;
            db_q_t *q = db_q(db, &Q_IDEM_CLAIM);
            if (!q) return SKED_ESTORE;
            db_bt(q, wf->owner);
            db_bt(q, a->idem_key);
            db_bt(q, wf->id);
            db_bi(q, a->now_ms);
            if ((rc = db_exec(q, &n)) < 0) return rc;
            if (n == 0) {
                if (!(q = db_q(db, &Q_IDEM_GET))) return SKED_ESTORE;
                db_bt(q, wf->owner);
                db_bt(q, a->idem_key);
                if ((rc = db_one(q)) == 0) db_cid(q, 0, wf->id);
                return rc == 0 || rc == SKED_ENOTFOUND ? SKED_EEXIST : rc;
            }
        }
        if ((rc = store__job_insert(db, wf, a->scheds, a->nscheds, a->now_ms)) < 0) return rc;
    } else {
        db_q_t *q = db_q(db, &Q_WF_KIND);
        if (!q) return SKED_ESTORE;
        db_bt(q, wf->id);
        if ((rc = db_one(q)) < 0) return rc;
        if (db_ci(q, 0) != JOB_KIND_WORKFLOW) return SKED_ENOTFOUND;
        if ((rc = store__job_rewrite(db, wf, a->expect, a->scheds, a->nscheds, a->now_ms)) < 0)
            return rc;
        if ((rc = match_tasks(db, a)) < 0) return rc;
    }
    for (size_t i = 0; i < a->ntasks; i++) {
        store_job_t *t = &a->tasks[i];
        t->kind = JOB_KIND_TASK;
        snprintf(t->parent_id, sizeof t->parent_id, "%s", wf->id);
        free(t->ns);
        t->ns = xstrdup(wf->ns);
        free(t->owner);
        t->owner = xstrdup(wf->owner ? wf->owner : "");
        if (t->id[0])
            rc = store__job_rewrite(db, t, 0, NULL, 0, a->now_ms);
        else if ((rc = store__job_insert(db, t, NULL, 0, a->now_ms)) == 0 &&
                 wf->state != JOB_ACTIVE)
            rc = store__job_set_state(db, t->id, wf->state, a->now_ms);
        if (rc < 0) return rc;
    }
    if ((rc = put_edges(db, a)) < 0) return rc;
    db_notify(db);
    return store__put_audit(db, a->audit, wf->id);
}

int v_workflow_put(store_t *st, store_job_t *wf, store_schedule_t *scheds, size_t nscheds,
                   store_job_t *tasks, size_t ntasks, int64_t expect_version, const char *idem_key,
                   const store_audit_t *audit, int64_t now_ms)
{
    if (!wf->ns) wf->ns = xstrdup("default");
    if (!wf->owner) wf->owner = xstrdup("");
    if (!wf->queue) wf->queue = xstrdup("default");
    char(*ids)[SKED_ID_LEN] = nscheds ? xcalloc(nscheds, sizeof *ids) : NULL;
    for (size_t i = 0; i < nscheds; i++)
        memcpy(ids[i], scheds[i].id, SKED_ID_LEN);
    char wf_id[SKED_ID_LEN] = "";
    if (expect_version >= 0) memcpy(wf_id, wf->id, SKED_ID_LEN);
    struct put_args a = {wf,     scheds,         nscheds,  ids,   tasks,
                         ntasks, expect_version, idem_key, audit, now_ms};
    int rc = store__tx(st, DB_WRITE, put_fn, &a, &a.now_ms);
    if (rc < 0) {
        for (size_t i = 0; i < nscheds; i++)
            memcpy(scheds[i].id, ids[i], SKED_ID_LEN);
        if (rc != SKED_EEXIST) memcpy(wf->id, wf_id, SKED_ID_LEN); /* "" on create */
    }
    free(ids);
    return rc;
}

/* ---- tasks ----------------------------------------------------------------------------- */

struct tasks_args {
    const char *id;
    store_job_t **out;
    size_t *n;
};

static int tasks_fn(db_t *db, void *arg)
{
    struct tasks_args *a = arg;
    for (size_t i = 0; *a->out && i < *a->n; i++)
        store_job_clear(&(*a->out)[i]);
    FREE_NULL(*a->out);
    *a->n = 0;
    db_q_t *q = db_q(db, &Q_TASKS_OF);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    int rc = db_page(q, &store__job_rows, -1, (void **)a->out, a->n, NULL);
    if (rc < 0) return rc;
    /* Each task's upstreams, as job ids and indices into the list. */
    if (!(q = db_q(db, &Q_TASK_UPS))) return SKED_ESTORE;
    db_bt(q, a->id);
    while ((rc = db_step(q)) == 1) {
        const char *down = db_cs(q, 0), *up = db_cs(q, 1);
        store_job_t *t = NULL;
        size_t ui = *a->n;
        for (size_t i = 0; i < *a->n; i++) {
            if (strcmp((*a->out)[i].id, down) == 0) t = &(*a->out)[i];
            if (strcmp((*a->out)[i].id, up) == 0) ui = i;
        }
        if (!t || ui == *a->n) continue;
        t->deps = xrealloc(t->deps, (t->ndeps + 1) * sizeof *t->deps);
        store_dep_t *d = &t->deps[t->ndeps++];
        memset(d, 0, sizeof *d);
        snprintf(d->job_id, sizeof d->job_id, "%s", up);
        d->task = ui;
        d->cond = DEP_TASK;
    }
    return rc;
}

int v_workflow_tasks(store_t *st, const char *id, store_job_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct tasks_args a = {id, out, n};
    int rc = store__tx(st, DB_READ, tasks_fn, &a, NULL);
    if (rc < 0) {
        for (size_t i = 0; *out && i < *n; i++)
            store_job_clear(&(*out)[i]);
        FREE_NULL(*out);
        *n = 0;
    }
    return rc;
}

/* ---- group runs ----------------------------------------------------------------------------- */

static void group_row(db_q_t *q, int o, store_group_t *g)
{
    g->is_group = !db_cnull(q, o);
    g->n = (int)db_ci(q, o + 0);
    g->open = (int)db_ci(q, o + 1);
    g->ok = (int)db_ci(q, o + 2);
    g->failed = (int)db_ci(q, o + 3);
    g->canceled = (int)db_ci(q, o + 4);
    g->skipped = (int)db_ci(q, o + 5);
    g->parallel = (int)db_ci(q, o + 6);
    g->started = db_cb(q, o + 7);
}

static void member_row(db_q_t *q, void *e)
{
    store_member_t *m = e;
    store__row_run(q, &m->run);
    m->name = db_ct(q, RUN_NCOLS);
}

static void member_clear(void *e)
{
    store_member_clear(e);
}

static const db_rows_t member_rows = {sizeof(store_member_t), member_row, member_clear, NULL};

struct group_get_args {
    const char *id;
    store_run_t *run;
    store_group_t *g;
    store_member_t **members;
    size_t *n;
};

static int group_get_fn(db_t *db, void *arg)
{
    struct group_get_args *a = arg;
    store_run_clear(a->run);
    for (size_t i = 0; *a->members && i < *a->n; i++)
        store_member_clear(&(*a->members)[i]);
    FREE_NULL(*a->members);
    *a->n = 0;
    memset(a->g, 0, sizeof *a->g);
    db_q_t *q = db_q(db, &Q_GROUP_RUN);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    store__row_run(q, a->run);
    int graph = (int)db_ci(q, RUN_NCOLS);
    if (!(graph & (STORE_GRAPH_WORKFLOW | STORE_GRAPH_ARRAY))) return SKED_EINVAL;
    /* No row: the group waits on its upstreams (is_group stays false). */
    if (!(q = db_q(db, &Q_GROUP_ROW))) return SKED_ESTORE;
    db_bt(q, a->id);
    rc = db_one(q);
    if (rc == 0) group_row(q, 0, a->g);
    if (rc < 0 && rc != SKED_ENOTFOUND) return rc; /* not started, or waiting on upstreams */
    if (!(q = db_q(db, &Q_MEMBERS))) return SKED_ESTORE;
    db_bt(q, a->id);
    return db_page(q, &member_rows, -1, (void **)a->members, a->n, NULL);
}

int v_group_get(store_t *st, const char *run_id, store_run_t *run, store_group_t *g,
                store_member_t **members, size_t *n)
{
    memset(run, 0, sizeof *run);
    *members = NULL;
    *n = 0;
    struct group_get_args a = {run_id, run, g, members, n};
    int rc = store__tx(st, DB_READ, group_get_fn, &a, NULL);
    if (rc < 0) {
        store_run_clear(run);
        for (size_t i = 0; *members && i < *n; i++)
            store_member_clear(&(*members)[i]);
        FREE_NULL(*members);
        *n = 0;
    }
    return rc;
}

struct group_list_args {
    const char *job_id;
    int64_t cms;
    char cid[SKED_ID_LEN];
    bool after;
    int limit;
    store_grouped_t **out;
    size_t *n;
    char **next;
};

static void grouped_row(db_q_t *q, void *e)
{
    store_grouped_t *x = e;
    store__row_run(q, &x->run);
    group_row(q, RUN_NCOLS, &x->group);
}

static void grouped_clear(void *e)
{
    store_run_clear(&((store_grouped_t *)e)->run);
}

static void grouped_key(const void *e, int64_t *ms, const char **id)
{
    const store_grouped_t *x = e;
    *ms = x->run.fire_ms;
    *id = x->run.id;
}

static const db_rows_t grouped_rows = {sizeof(store_grouped_t), grouped_row, grouped_clear,
                                       grouped_key};

static int group_list_fn(db_t *db, void *arg)
{
    struct group_list_args *a = arg;
    db_q_t *q = db_q(db, &Q_GROUPS_OF_JOB);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->job_id);
    db_bin(q, a->after ? a->cms : -1);
    db_bt(q, a->cid);
    db_bi(q, a->limit + 1);
    return db_page(q, &grouped_rows, a->limit, (void **)a->out, a->n, a->next);
}

int v_group_list(store_t *st, const char *job_id, const char *cursor, int limit,
                 store_grouped_t **out, size_t *n, char **next_cursor)
{
    struct group_list_args a = {job_id, 0, "", cursor != NULL, limit, out, n, next_cursor};
    if (cursor) store__cursor_decode(cursor, &a.cms, a.cid); /* checked by store.c */
    return store__tx(st, DB_READ1, group_list_fn, &a, NULL);
}

/* ---- retry ------------------------------------------------------------------------------------
 */

struct retry_args {
    const char *group_id, *member_id;
    bool downstream;
    const store_audit_t *audit;
    int64_t now_ms;
};

typedef char idbuf_t[SKED_ID_LEN];

static bool listed(idbuf_t *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], id) == 0) return true;
    return false;
}

/* Starts member id over: its upstreams counted again from their states
 * now (those being retried with it count as not ended), pending at once
 * when it is the one retried, else waiting (retry_fn decides it over the
 * new counts once the group is recounted). */
static int reset_member(db_t *db, const char *id, bool first, idbuf_t *set, size_t nset,
                        int64_t now_ms)
{
    int ok = 0, fail = 0, sk = 0, n = 0, rc;
    db_q_t *q = db_q(db, &Q_UPS_OF);
    if (!q) return SKED_ESTORE;
    db_bt(q, id);
    while ((rc = db_step(q)) == 1) {
        n++;
        run_state_t us = (run_state_t)db_ci(q, 2);
        if (listed(set, nset, db_cs(q, 0)) || !run_state_terminal(us)) continue;
        switch (dep_classify_ended((dep_cond_t)db_ci(q, 1), us, db_cs(q, 3))) {
        case DEP_OK:
            ok++;
            break;
        case DEP_FAIL:
            fail++;
            break;
        default:
            sk++;
        }
    }
    if (rc < 0) return rc;
    /* the one retried goes whatever its upstreams did: the operator said so */
    run_state_t to = first ? RUN_PENDING : RUN_WAITING;
    if (!(q = db_q(db, &Q_MEMBER_RESET))) return SKED_ESTORE;
    db_bt(q, id);
    db_bi(q, to);
    db_bi(q, now_ms);
    db_bi(q, ok);
    db_bi(q, fail);
    db_bi(q, sk);
    (void)n;
    return db_exec(q, NULL);
}

static int retry_fn(db_t *db, void *arg)
{
    struct retry_args *a = arg;
    db_q_t *q = db_q(db, &Q_RUN_LOCK);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->group_id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    if (!(db_ci(q, 2) & STORE_GRAPH_WORKFLOW)) return SKED_ENOTFOUND;
    run_state_t gs = (run_state_t)db_ci(q, 0);
    if (gs == RUN_CANCELED || gs == RUN_SKIPPED) return SKED_ECONFLICT;
    if (db_ci(q, 3) == JOB_DELETED) return SKED_ECONFLICT; /* nothing of it can run again */
    if (!(q = db_q(db, &Q_RUN_LOCK))) return SKED_ESTORE;
    db_bt(q, a->member_id);
    if ((rc = db_one(q)) < 0) return rc;
    if (strcmp(db_cs(q, 1), a->group_id) != 0) return SKED_ENOTFOUND;
    if (db_ci(q, 3) == JOB_DELETED) return SKED_ECONFLICT; /* a task replaced away */
    if (!run_state_terminal((run_state_t)db_ci(q, 0)) || (run_state_t)db_ci(q, 0) == RUN_SUCCEEDED)
        return SKED_ECONFLICT; /* going, or nothing to retry */

    /* The set: the member, and with downstream everything reachable from
     * it (O(edges of the set)). */
    idbuf_t *set = xmalloc(sizeof *set);
    size_t nset = 1, cap = 1;
    snprintf(set[0], SKED_ID_LEN, "%s", a->member_id);
    for (size_t i = 0; a->downstream && i < nset && rc >= 0; i++) {
        if (!(q = db_q(db, &Q_DOWN_OF))) {
            rc = SKED_ESTORE;
            break;
        }
        /* bound by reference: the set may move (xrealloc) while q steps */
        idbuf_t up;
        memcpy(up, set[i], sizeof up);
        db_bt(q, up);
        while ((rc = db_step(q)) == 1) {
            if (listed(set, nset, db_cs(q, 0))) continue;
            if (nset == cap) set = xrealloc(set, (cap *= 2) * sizeof *set);
            db_cid(q, 0, set[nset++]);
        }
    }
    /* Members of the set still going (waiting on the one retried, or
     * running) keep going; the ended ones start over. */
    for (size_t i = 0; rc >= 0 && i < nset; i++)
        rc = reset_member(db, set[i], i == 0, set, nset, a->now_ms);
    /* The workflow run is going again, its counts those of its members,
     * before the reset ones are decided: one skipped again at once (an
     * upstream outside the set failed) counts as an end in a group that
     * is open and counted right, so the run cannot end on the way (a
     * spurious end would also start the next queued run). */
    if (rc >= 0 && !(q = db_q(db, &Q_GROUP_REOPEN))) rc = SKED_ESTORE;
    if (rc >= 0) {
        db_bt(q, a->group_id);
        rc = db_exec(q, NULL);
    }
    if (rc >= 0 && !(q = db_q(db, &Q_GROUP_RECOUNT))) rc = SKED_ESTORE;
    if (rc >= 0) {
        db_bt(q, a->group_id);
        rc = db_exec(q, NULL);
    }
    for (size_t i = 1; rc >= 0 && i < nset; i++)
        rc = store__graph_recheck(db, set[i], a->now_ms);
    free(set);
    if (rc < 0) return rc;
    db_notify(db);
    return store__put_audit(db, a->audit, a->member_id);
}

int v_group_retry(store_t *st, const char *group_id, const char *member_id, bool downstream,
                  const store_audit_t *audit, int64_t now_ms)
{
    struct retry_args a = {group_id, member_id, downstream, audit, now_ms};
    return store__tx(st, DB_WRITE, retry_fn, &a, &a.now_ms);
}
