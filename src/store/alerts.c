/*
 * Store verbs of alerts, written once over the SQL driver (db.h): global
 * rules (create, get, list, update, delete), a job's own rules (written
 * with the job), the alerts themselves (list, get with their notices,
 * acknowledge), the outbox of notices (claimed like runs), and the hooks
 * other verbs call inside their own unit of work, so that a change and
 * the alert it causes commit together: the end of an attempt (failed,
 * retrying, and their resolution by a later success) and lost workers.
 *
 * An alert is opened by an INSERT guarded by a partial unique index on
 * open alerts (rule, subject, condition): however many servers race, one
 * open alert exists, and only the unit that inserted it queues its notices
 * (one outbox row per channel of the rule, in the same unit). Resolving is
 * an UPDATE ... WHERE state = 0, so it too happens once, with its notices.
 * jobs.alerts_open counts a job's open alerts, +1 and -1 in the unit that
 * opens or resolves one, so a completion that finds it 0 (read with the
 * facts it reads anyway) has nothing to resolve and runs no statement.
 *
 * Secrets of channels are copied to the outbox rows that need them and are
 * never returned by a read verb except store_outbox_claim (the deliverer).
 */
#include "store/verbs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"
#include "store/store_int.h"

/* ---- statements ------------------------------------------------------------- */

#define RULE_COLS                                                                                  \
    "id, job_id, pos, name, conds, scope_ns, scope_queue, scope_job, scope_tag, overrun_factor,"   \
    " overrun_min_samples, missed_window_ms, backlog_depth, backlog_for_ms, version, created_ms,"  \
    " updated_ms"
#define ALERT_COLS                                                                                 \
    "id, rule_id, cond, subject, name, job_id, ns, run_id, state, detail, resolve_detail,"         \
    " opened_ms, resolved_ms, acked_by, acked_ms"
#define DELIVERY_COLS "id, event, kind, target, state, tries, due_ms, sent_ms, last_error"

static db_sql_t Q_RULE_INSERT = DB_SAME("INSERT INTO alert_rules (" RULE_COLS
                                        ", scanned_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                                        " ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?16)");
static db_sql_t Q_RULE_GET =
    DB_SAME("SELECT " RULE_COLS " FROM alert_rules WHERE id = ?1 AND job_id = ''");
static db_sql_t Q_RULE_UPDATE = DB_SAME(
    "UPDATE alert_rules SET name = ?2, conds = ?3, scope_ns = ?4, scope_queue = ?5,"
    " scope_job = ?6, scope_tag = ?7, overrun_factor = ?8, overrun_min_samples = ?9,"
    " missed_window_ms = ?10, backlog_depth = ?11, backlog_for_ms = ?12, version = version + 1,"
    " updated_ms = ?13 WHERE id = ?1 AND job_id = '' AND (?14 = 0 OR version = ?14)"
    " RETURNING version, created_ms");
static db_sql_t Q_RULE_VERSION =
    DB_SAME("SELECT version FROM alert_rules WHERE id = ?1 AND job_id = ''");
static db_sql_t Q_RULE_DELETE = DB_SAME("DELETE FROM alert_rules WHERE id = ?1");
static db_sql_t Q_RULE_LIST = DB_SAME("SELECT " RULE_COLS " FROM alert_rules WHERE job_id = ''"
                                      " ORDER BY created_ms, id LIMIT ?1");
static db_sql_t Q_RULE_LIST_AFTER =
    DB_SAME("SELECT " RULE_COLS " FROM alert_rules WHERE job_id = ''"
            " AND (created_ms, id) > (?2, ?3) ORDER BY created_ms, id LIMIT ?1");
static db_sql_t Q_CHANNELS_OF =
    DB_SAME("SELECT kind, target, secret FROM alert_channels WHERE rule_id = ?1 ORDER BY n");
static db_sql_t Q_CHANNELS_DROP = DB_SAME("DELETE FROM alert_channels WHERE rule_id = ?1");
static db_sql_t Q_CHANNEL_INSERT = DB_SAME(
    "INSERT INTO alert_channels (rule_id, n, kind, target, secret) VALUES (?1, ?2, ?3, ?4, ?5)");

/* A job's own rules, by position. */
static db_sql_t Q_JOB_SLA =
    DB_SAME("UPDATE jobs SET sla_start_ms = ?2, sla_finish_ms = ?3 WHERE id = ?1");
static db_sql_t Q_JOB_RULE_UPDATE =
    DB_SAME("UPDATE alert_rules SET conds = ?3, overrun_factor = ?4, overrun_min_samples = ?5,"
            " missed_window_ms = ?6, version = version + 1, updated_ms = ?7"
            " WHERE job_id = ?1 AND pos = ?2 RETURNING id");
static db_sql_t Q_JOB_RULES_FROM =
    DB_SAME("SELECT id FROM alert_rules WHERE job_id = ?1 AND pos >= ?2");

/* Alerts. */
static db_sql_t Q_ALERT_OPEN = DB_SAME(
    "INSERT INTO alerts (" ALERT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, NULL,"
    " ?10, -1, NULL, -1) ON CONFLICT (rule_id, subject, cond) WHERE state = 0 DO NOTHING");
static db_sql_t Q_ALERT_RESOLVE =
    DB_SAME("UPDATE alerts SET state = 1, resolved_ms = ?2, resolve_detail = ?3"
            " WHERE id = ?1 AND state = 0 RETURNING rule_id, job_id, acked_ms");
static db_sql_t Q_JOB_ALERTS_ADD =
    DB_SAME("UPDATE jobs SET alerts_open = alerts_open + ?2 WHERE id = ?1");
/* One notice per channel of the rule; ids "<alert>:o<n>" / ":r<n>". */
static db_sql_t Q_OUTBOX_ENQUEUE = DB_SAME(
    "INSERT INTO alert_outbox (id, alert_id, event, kind, target, secret, state, tries, due_ms,"
    " owner, claim, last_error, created_ms, sent_ms) SELECT ?1 || c.n, ?2, ?3, c.kind, c.target,"
    " c.secret, 0, 0, ?4, '', 0, NULL, ?4, -1 FROM alert_channels c WHERE c.rule_id = ?5");
static db_sql_t Q_OPEN_OF_RULE =
    DB_SAME("SELECT id FROM alerts WHERE rule_id = ?1 AND state = 0 AND (?2 & (1 << cond)) = 0");
/* A job's open alerts of some conditions (SQLite uses the partial index
 * only with its own WHERE term repeated). */
static db_sql_t Q_OPEN_OF_JOB =
    DB_SAME("SELECT id FROM alerts WHERE job_id = ?1 AND state = 0 AND (?2 & (1 << cond)) != 0");

/* The rules that apply to a job: its own, and the global ones whose scope
 * it is in. */
#define RULE_SCOPE(instr_tag)                                                                      \
    " AND (r.scope_ns = '' OR r.scope_ns = j.ns) AND (r.scope_queue = '' OR "                      \
    "r.scope_queue ="                                                                              \
    " j.queue) AND (r.scope_job = '' OR r.scope_job = j.name) AND (r.scope_tag = '' "              \
    "OR " instr_tag " > 0)"
#define RULES_FOR_JOB(instr_tag)                                                                   \
    "SELECT r.id, j.ns, j.name FROM jobs j JOIN alert_rules r ON r.job_id = j.id"                  \
    " WHERE j.id = ?1 AND (r.conds & ?2) != 0 UNION ALL"                                           \
    " SELECT r.id, j.ns, j.name FROM jobs j JOIN alert_rules r ON r.job_id = ''"                   \
    " WHERE j.id = ?1 AND (r.conds & ?2) != 0" RULE_SCOPE(instr_tag)
static db_sql_t Q_RULES_FOR_JOB =
    DB_SQL(RULES_FOR_JOB("instr(j.tags, ',' || r.scope_tag || ',')"),
           RULES_FOR_JOB("strpos(j.tags, ',' || r.scope_tag || ',')"));
static db_sql_t Q_RULES_WORKER_LOST =
    DB_SAME("SELECT id, scope_queue FROM alert_rules WHERE job_id = '' AND (conds & ?1) != 0"
            " AND (scope_ns = '' OR scope_ns = ?2) AND scope_job = '' AND scope_tag = ''");

#define ALERT_LIST_LITE                                                                            \
    " WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR job_id = ?2)"                            \
    " AND (?3 IS NULL OR cond = ?3)"                                                               \
    " AND (?4 IS NULL OR instr(',' || ?4 || ',', ',' || ns || ',') > 0)"
#define ALERT_LIST_PG                                                                              \
    " WHERE ($1::integer IS NULL OR state = $1) AND ($2::text IS NULL OR job_id = $2)"             \
    " AND ($3::integer IS NULL OR cond = $3)"                                                      \
    " AND ($4::text IS NULL OR ns = ANY (string_to_array($4, ',')))"
#define ALERT_LIST_ORDER " ORDER BY opened_ms DESC, id DESC LIMIT ?5"
static db_sql_t Q_ALERT_LIST =
    DB_SQL("SELECT " ALERT_COLS " FROM alerts" ALERT_LIST_LITE ALERT_LIST_ORDER,
           "SELECT " ALERT_COLS " FROM alerts" ALERT_LIST_PG ALERT_LIST_ORDER);
static db_sql_t Q_ALERT_LIST_AFTER =
    DB_SQL("SELECT " ALERT_COLS " FROM alerts" ALERT_LIST_LITE
           " AND (opened_ms, id) < (?6, ?7)" ALERT_LIST_ORDER,
           "SELECT " ALERT_COLS " FROM alerts" ALERT_LIST_PG
           " AND (opened_ms, id) < ($6::bigint, $7::text)" ALERT_LIST_ORDER);
static db_sql_t Q_ALERT_GET = DB_SAME("SELECT " ALERT_COLS " FROM alerts WHERE id = ?1");
static db_sql_t Q_DELIVERIES_OF = DB_SAME("SELECT " DELIVERY_COLS " FROM alert_outbox"
                                          " WHERE alert_id = ?1 ORDER BY created_ms, id");
static db_sql_t Q_ALERT_ACK =
    DB_SAME("UPDATE alerts SET acked_by = coalesce(acked_by, ?2),"
            " acked_ms = CASE WHEN acked_ms < 0 THEN ?3 ELSE acked_ms END WHERE id = ?1"
            " RETURNING ns");

/* The outbox. SKIP LOCKED: deliverers on several servers share it. */
static db_sql_t Q_OUTBOX_DUE =
    DB_SQL("SELECT id FROM alert_outbox INDEXED BY alert_outbox_due WHERE state = 0"
           " AND due_ms <= ?1 ORDER BY due_ms LIMIT ?2",
           "SELECT id FROM alert_outbox WHERE state = 0 AND due_ms <= $1"
           " ORDER BY due_ms LIMIT $2 FOR UPDATE SKIP LOCKED");
static db_sql_t Q_OUTBOX_TAKE =
    DB_SAME("UPDATE alert_outbox SET due_ms = ?2, owner = ?3, claim = ?4"
            " WHERE id = ?1 AND state = 0 RETURNING " DELIVERY_COLS ", secret, alert_id");
static db_sql_t Q_OUTBOX_SETTLE =
    DB_SAME("UPDATE alert_outbox SET state = ?3, tries = tries + 1,"
            " due_ms = CASE WHEN ?3 = 0 THEN ?4 ELSE due_ms END,"
            " sent_ms = CASE WHEN ?3 = 1 THEN ?5 ELSE sent_ms END, last_error = ?6, owner = ''"
            " WHERE id = ?1 AND claim = ?2 AND state = 0");
static db_sql_t Q_OUTBOX_NEXT =
    DB_SQL("SELECT due_ms FROM alert_outbox INDEXED BY alert_outbox_due WHERE state = 0"
           " ORDER BY due_ms LIMIT 1",
           "SELECT due_ms FROM alert_outbox WHERE state = 0 ORDER BY due_ms LIMIT 1");

/* ---- rows ---------------------------------------------------------------------- */

static void row_rule(db_q_t *q, void *e)
{
    store_alert_rule_t *r = e;
    db_cid(q, 0, r->id);
    db_cid(q, 1, r->job_id);
    r->pos = (int)db_ci(q, 2);
    r->def.name = db_ct0(q, 3);
    r->def.conds = (unsigned)db_ci(q, 4);
    r->def.scope_ns = db_ct0(q, 5);
    r->def.scope_queue = db_ct0(q, 6);
    r->def.scope_job = db_ct0(q, 7);
    r->def.scope_tag = db_ct0(q, 8);
    r->def.params.overrun_factor = db_cd(q, 9);
    r->def.params.overrun_min_samples = (int)db_ci(q, 10);
    r->def.params.missed_window_ms = db_ci(q, 11);
    r->def.params.backlog_depth = (int)db_ci(q, 12);
    r->def.params.backlog_for_ms = db_ci(q, 13);
    r->version = db_ci(q, 14);
    r->created_ms = db_ci(q, 15);
    r->updated_ms = db_ci(q, 16);
}

static void clear_rule(void *e)
{
    store_alert_rule_clear(e);
}

static void key_rule(const void *e, int64_t *ms, const char **id)
{
    const store_alert_rule_t *r = e;
    *ms = r->created_ms;
    *id = r->id;
}

static const db_rows_t rule_rows = {sizeof(store_alert_rule_t), row_rule, clear_rule, key_rule};

/* The columns of ALERT_COLS from column off. */
static void row_alert_at(db_q_t *q, int off, store_alert_t *a)
{
    db_cid(q, off + 0, a->id);
    db_cid(q, off + 1, a->rule_id);
    a->cond = (alert_cond_t)db_ci(q, off + 2);
    a->subject = db_ct0(q, off + 3);
    a->name = db_ct0(q, off + 4);
    db_cid(q, off + 5, a->job_id);
    a->ns = db_ct0(q, off + 6);
    db_cid(q, off + 7, a->run_id);
    a->state = (alert_state_t)db_ci(q, off + 8);
    a->detail = db_ct0(q, off + 9);
    a->resolve_detail = db_ct(q, off + 10);
    a->opened_ms = db_ci(q, off + 11);
    a->resolved_ms = db_ci(q, off + 12);
    a->acked_by = db_ct(q, off + 13);
    a->acked_ms = db_ci(q, off + 14);
}

static void row_alert(db_q_t *q, void *e)
{
    row_alert_at(q, 0, e);
}

static void clear_alert(void *e)
{
    store_alert_clear(e);
}

static void key_alert(const void *e, int64_t *ms, const char **id)
{
    const store_alert_t *a = e;
    *ms = a->opened_ms;
    *id = a->id;
}

static const db_rows_t alert_rows = {sizeof(store_alert_t), row_alert, clear_alert, key_alert};

static void row_delivery(db_q_t *q, void *e)
{
    store_alert_delivery_t *d = e;
    db_cid(q, 0, d->id);
    d->event = (alert_event_t)db_ci(q, 1);
    d->kind = (alert_channel_kind_t)db_ci(q, 2);
    d->target = db_ct0(q, 3);
    d->state = (store_delivery_state_t)db_ci(q, 4);
    d->tries = (int)db_ci(q, 5);
    d->due_ms = db_ci(q, 6);
    d->sent_ms = db_ci(q, 7);
    d->last_error = db_ct(q, 8);
}

static void clear_delivery(void *e)
{
    store_alert_delivery_clear(e);
}

static const db_rows_t delivery_rows = {sizeof(store_alert_delivery_t), row_delivery,
                                        clear_delivery, NULL};

/* ---- opening and resolving (inside other units of work) --------------------------- */

/* Collects the ids a statement returns (column 0) into a new array. */
static int collect_ids(db_q_t *q, char (**ids)[SKED_ID_LEN], size_t *n)
{
    size_t cap = 0;
    int rc;
    *ids = NULL;
    *n = 0;
    while ((rc = db_step(q)) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *ids = xrealloc(*ids, cap * sizeof **ids);
        }
        db_cid(q, 0, (*ids)[(*n)++]);
    }
    if (rc < 0) {
        FREE_NULL(*ids);
        *n = 0;
    }
    return rc < 0 ? rc : 0;
}

static int job_alerts_add(db_t *db, const char *job_id, int delta)
{
    if (!job_id || !*job_id) return 0;
    db_q_t *q = db_q(db, &Q_JOB_ALERTS_ADD);
    if (!q) return SKED_ESTORE;
    db_bt(q, job_id);
    db_bi(q, delta);
    return db_exec(q, NULL);
}

/* Queues the notice of event for alert_id on every channel of rule_id. */
static int enqueue(db_t *db, const char *alert_id, const char *rule_id, alert_event_t event,
                   int64_t now_ms)
{
    char prefix[SKED_ID_LEN + 4];
    snprintf(prefix, sizeof prefix, "%s:%c", alert_id, event == ALERT_EV_OPENED ? 'o' : 'r');
    db_q_t *q = db_q(db, &Q_OUTBOX_ENQUEUE);
    if (!q) return SKED_ESTORE;
    db_bt(q, prefix);
    db_bt(q, alert_id);
    db_bi(q, event);
    db_bi(q, now_ms);
    db_bt(q, rule_id);
    int64_t added = 0;
    int rc = db_exec(q, &added);
    /* Wake the deliverers once this commits. */
    if (rc == 0 && added > 0) db_notify(db);
    return rc;
}

/* What a new alert is about. */
struct opening {
    const char *rule_id;
    alert_cond_t cond;
    const char *subject, *name, *job_id, *ns, *run_id, *detail;
};

/* Opens the alert unless one of (rule, subject, cond) is open already;
 * only then its notices are queued and the job's count goes up. *opened
 * OUT (may be NULL). */
static int open_alert(db_t *db, const struct opening *o, int64_t now_ms, bool *opened)
{
    char id[SKED_ID_LEN];
    int64_t changed = 0;
    if (opened) *opened = false;
    id_new("alr", now_ms, id);
    db_q_t *q = db_q(db, &Q_ALERT_OPEN);
    if (!q) return SKED_ESTORE;
    db_bt(q, id);
    db_bt(q, o->rule_id);
    db_bi(q, o->cond);
    db_bt(q, o->subject);
    db_bt(q, o->name ? o->name : "");
    db_bt(q, o->job_id ? o->job_id : "");
    db_bt(q, o->ns ? o->ns : "");
    db_bt(q, o->run_id ? o->run_id : "");
    db_bt(q, o->detail ? o->detail : "");
    db_bi(q, now_ms);
    int rc = db_exec(q, &changed);
    if (rc < 0 || changed == 0) return rc;
    if ((rc = enqueue(db, id, o->rule_id, ALERT_EV_OPENED, now_ms)) < 0) return rc;
    if ((rc = job_alerts_add(db, o->job_id, 1)) < 0) return rc;
    if (opened) *opened = true;
    return 0;
}

/* Resolves open alert id with why; its resolved notice is queued unless
 * silent (a rule or job that went away) or the alert was acknowledged.
 * *done OUT (may be NULL): it was open. */
static int resolve_alert(db_t *db, const char *id, const char *why, bool silent, int64_t now_ms,
                         bool *done)
{
    char rule_id[SKED_ID_LEN], job_id[SKED_ID_LEN];
    if (done) *done = false;
    db_q_t *q = db_q(db, &Q_ALERT_RESOLVE);
    if (!q) return SKED_ESTORE;
    db_bt(q, id);
    db_bi(q, now_ms);
    db_bt(q, why);
    int rc = db_step(q);
    if (rc <= 0) return rc;
    db_cid(q, 0, rule_id);
    db_cid(q, 1, job_id);
    bool acked = db_ci(q, 2) >= 0;
    if ((rc = db_step(q)) < 0) return rc; /* to its end: SQLite frees the RETURNING table */
    if (!silent && !acked && (rc = enqueue(db, id, rule_id, ALERT_EV_RESOLVED, now_ms)) < 0)
        return rc;
    if ((rc = job_alerts_add(db, job_id, -1)) < 0) return rc;
    if (done) *done = true;
    return 0;
}

/* Resolves every alert q (bound, not yet stepped) returns the id of. */
static int resolve_all(db_t *db, db_q_t *q, const char *why, bool silent, int64_t now_ms,
                       int *count)
{
    char(*ids)[SKED_ID_LEN] = NULL;
    size_t n = 0;
    int rc = collect_ids(q, &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bool done = false;
        rc = resolve_alert(db, ids[i], why, silent, now_ms, &done);
        if (count && done) ++*count;
    }
    free(ids);
    return rc;
}

/* Closes, without a notice, the open alerts of rule_id whose condition is
 * not in conds (0: all of them). */
static int close_rule_alerts(db_t *db, const char *rule_id, unsigned conds, const char *why,
                             int64_t now_ms)
{
    db_q_t *q = db_q(db, &Q_OPEN_OF_RULE);
    if (!q) return SKED_ESTORE;
    db_bt(q, rule_id);
    db_bi(q, conds);
    return resolve_all(db, q, why, true, now_ms, NULL);
}

/* ---- the end of an attempt ------------------------------------------------------- */

/* What the job's rules for cond open, in db's unit. */
static int open_for_job(db_t *db, const char *job_id, alert_cond_t cond, const char *run_id,
                        const char *detail, int64_t now_ms)
{
    struct rule_hit {
        char id[SKED_ID_LEN];
        char *ns, *name;
    } *hits = NULL;
    size_t n = 0, cap = 0;
    db_q_t *q = db_q(db, &Q_RULES_FOR_JOB);
    if (!q) return SKED_ESTORE;
    db_bt(q, job_id);
    db_bi(q, ALERT_BIT(cond));
    int rc;
    while ((rc = db_step(q)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            hits = xrealloc(hits, cap * sizeof *hits);
        }
        db_cid(q, 0, hits[n].id);
        hits[n].ns = db_ct0(q, 1);
        hits[n].name = db_ct0(q, 2);
        n++;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct opening o = {hits[i].id, cond,       job_id, hits[i].name,
                            job_id,     hits[i].ns, run_id, detail};
        rc = open_alert(db, &o, now_ms, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        free(hits[i].ns);
        free(hits[i].name);
    }
    free(hits);
    return rc;
}

/* "exit code 3", "signal 9", or the reason, as an attempt ended. */
static void ending(const store__attempt_end_t *e, char *out, size_t len)
{
    if (e->reason && *e->reason)
        snprintf(out, len, "%s", e->reason);
    else if (e->signal > 0)
        snprintf(out, len, "killed by signal %d", e->signal);
    else if (e->exit_code >= 0)
        snprintf(out, len, "exit code %d", e->exit_code);
    else
        snprintf(out, len, "%s", attempt_outcome_name(e->outcome));
}

int store__alerts_attempt_end(db_t *db, const store__attempt_end_t *e, int64_t now_ms)
{
    char why[320], end[256], at[SKED_RFC3339_LEN];
    int rc;
    /* First what this end clears: a success clears the job's failure and
     * retry alerts, any other end of the run its retry alert. */
    unsigned clears = e->next == RUN_SUCCEEDED ? ALERT_BIT(ALERT_FAILED) | ALERT_BIT(ALERT_RETRYING)
                      : run_state_terminal(e->next) ? ALERT_BIT(ALERT_RETRYING)
                                                    : 0;
    if (e->alerts_open > 0 && clears) {
        db_q_t *q = db_q(db, &Q_OPEN_OF_JOB);
        if (!q) return SKED_ESTORE;
        db_bt(q, e->job_id);
        db_bi(q, clears);
        snprintf(why, sizeof why, "run %s %s", e->run_id, run_state_name(e->next));
        if ((rc = resolve_all(db, q, why, false, now_ms, NULL)) < 0) return rc;
    }
    bool failed =
        e->outcome == ATTEMPT_FAILED || e->outcome == ATTEMPT_TIMEOUT || e->outcome == ATTEMPT_LOST;
    ending(e, end, sizeof end);
    if (e->next == RUN_FAILED) {
        snprintf(why, sizeof why, "run failed after %d attempt%s: %.250s", e->attempt,
                 e->attempt == 1 ? "" : "s", end);
        return open_for_job(db, e->job_id, ALERT_FAILED, e->run_id, why, now_ms);
    }
    if (e->next == RUN_SCHEDULED && failed) {
        clock_format_rfc3339(e->retry_at_ms, at, sizeof at);
        snprintf(why, sizeof why, "attempt %d failed (%.200s); attempt %d is due at %s", e->attempt,
                 end, e->attempt + 1, at);
        return open_for_job(db, e->job_id, ALERT_RETRYING, e->run_id, why, now_ms);
    }
    return 0;
}

/* ---- lost workers ------------------------------------------------------------------- */

int store__alerts_workers_lost(db_t *db, const store__lost_worker_t *w, size_t n, int64_t now_ms)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct {
            char id[SKED_ID_LEN];
            char *queue;
        } *hits = NULL;
        size_t k = 0, cap = 0;
        db_q_t *q = db_q(db, &Q_RULES_WORKER_LOST);
        if (!q) return SKED_ESTORE;
        db_bi(q, ALERT_BIT(ALERT_WORKER_LOST));
        db_bt(q, w[i].ns ? w[i].ns : "");
        while ((rc = db_step(q)) == 1) {
            if (k == cap) {
                cap = cap ? cap * 2 : 4;
                hits = xrealloc(hits, cap * sizeof *hits);
            }
            db_cid(q, 0, hits[k].id);
            hits[k++].queue = db_ct0(q, 1);
        }
        char detail[512];
        snprintf(detail, sizeof detail, "worker %s stopped heartbeating (queues: %s)",
                 w[i].name ? w[i].name : w[i].id, w[i].queues ? w[i].queues : "");
        for (size_t j = 0; rc == 0 && j < k; j++) {
            if (*hits[j].queue && !store__listed(w[i].queues, hits[j].queue)) continue;
            struct opening o = {hits[j].id, ALERT_WORKER_LOST, w[i].id, w[i].name,
                                "",         w[i].ns,           "",      detail};
            rc = open_alert(db, &o, now_ms, NULL);
        }
        for (size_t j = 0; j < k; j++)
            free(hits[j].queue);
        free(hits);
    }
    return rc;
}

/* ---- rules ------------------------------------------------------------------------ */

/* Replaces the channels of rule r->id with r's. */
static int put_channels(db_t *db, const store_alert_rule_t *r)
{
    db_q_t *q = db_q(db, &Q_CHANNELS_DROP);
    if (!q) return SKED_ESTORE;
    db_bt(q, r->id);
    int rc = db_exec(q, NULL);
    for (size_t i = 0; rc == 0 && i < r->def.nchannels; i++) {
        const alert_channel_spec_t *c = &r->def.channels[i];
        if (!(q = db_q(db, &Q_CHANNEL_INSERT))) return SKED_ESTORE;
        db_bt(q, r->id);
        db_bi(q, (int64_t)i);
        db_bi(q, c->kind);
        db_bt(q, c->target);
        db_bt(q, c->secret ? c->secret : "");
        rc = db_exec(q, NULL);
    }
    return rc;
}

/* Reads the channels of rule_id into r (new array). */
static int read_channels(db_t *db, const char *rule_id, store_alert_rule_t *r)
{
    size_t cap = 0;
    int rc;
    db_q_t *q = db_q(db, &Q_CHANNELS_OF);
    if (!q) return SKED_ESTORE;
    db_bt(q, rule_id);
    while ((rc = db_step(q)) == 1) {
        if (r->def.nchannels == cap) {
            cap = cap ? cap * 2 : 4;
            r->def.channels = xrealloc(r->def.channels, cap * sizeof *r->def.channels);
        }
        alert_channel_spec_t *c = &r->def.channels[r->def.nchannels++];
        memset(c, 0, sizeof *c);
        c->kind = (alert_channel_kind_t)db_ci(q, 0);
        c->target = db_ct0(q, 1);
        c->secret = *db_cs(q, 2) ? db_ct0(q, 2) : NULL;
    }
    return rc < 0 ? rc : 0;
}

/* Binds a rule's definition: name, conditions, scope, parameters. */
static void bind_def(db_q_t *q, const alert_rule_spec_t *d)
{
    db_bt(q, d->name ? d->name : "");
    db_bi(q, d->conds);
    db_bt(q, d->scope_ns ? d->scope_ns : "");
    db_bt(q, d->scope_queue ? d->scope_queue : "");
    db_bt(q, d->scope_job ? d->scope_job : "");
    db_bt(q, d->scope_tag ? d->scope_tag : "");
    db_bd(q, d->params.overrun_factor);
    db_bi(q, d->params.overrun_min_samples);
    db_bi(q, d->params.missed_window_ms);
    db_bi(q, d->params.backlog_depth);
    db_bi(q, d->params.backlog_for_ms);
}

static int insert_rule(db_t *db, store_alert_rule_t *r, int64_t now_ms)
{
    id_new("arl", now_ms, r->id);
    r->version = 1;
    r->created_ms = r->updated_ms = now_ms;
    db_q_t *q = db_q(db, &Q_RULE_INSERT);
    if (!q) return SKED_ESTORE;
    db_bt(q, r->id);
    db_bt(q, r->job_id);
    db_bi(q, r->pos);
    bind_def(q, &r->def);
    db_bi(q, r->version);
    db_bi(q, now_ms);
    db_bi(q, now_ms);
    int rc = db_exec(q, NULL);
    return rc < 0 ? rc : put_channels(db, r);
}

/* Deletes rule id and its channels, closing its open alerts silently. */
static int drop_rule(db_t *db, const char *id, const char *why, int64_t now_ms, int64_t *deleted)
{
    int rc = close_rule_alerts(db, id, 0, why, now_ms);
    if (rc < 0) return rc;
    db_q_t *q = db_q(db, &Q_CHANNELS_DROP);
    if (!q) return SKED_ESTORE;
    db_bt(q, id);
    if ((rc = db_exec(q, NULL)) < 0) return rc;
    if (!(q = db_q(db, &Q_RULE_DELETE))) return SKED_ESTORE;
    db_bt(q, id);
    return db_exec(q, deleted);
}

int store__alerts_put_job(db_t *db, const store_job_t *job, bool update, int64_t now_ms)
{
    int rc;
    db_q_t *q;
    if (!update && !job->nalerts && !job->sla_start_ms && !job->sla_finish_ms) return 0;
    if (!(q = db_q(db, &Q_JOB_SLA))) return SKED_ESTORE;
    db_bt(q, job->id);
    db_bi(q, job->sla_start_ms);
    db_bi(q, job->sla_finish_ms);
    if ((rc = db_exec(q, NULL)) < 0) return rc;

    /* Rules keep their id by position, so the alerts they opened stay
     * theirs; alerts of conditions a rule dropped close silently. */
    for (size_t i = 0; i < job->nalerts; i++) {
        store_alert_rule_t r = job->alerts[i];
        memcpy(r.job_id, job->id, sizeof r.job_id);
        r.pos = (int)i;
        bool found = false;
        if (update) {
            if (!(q = db_q(db, &Q_JOB_RULE_UPDATE))) return SKED_ESTORE;
            db_bt(q, job->id);
            db_bi(q, r.pos);
            db_bi(q, r.def.conds);
            db_bd(q, r.def.params.overrun_factor);
            db_bi(q, r.def.params.overrun_min_samples);
            db_bi(q, r.def.params.missed_window_ms);
            db_bi(q, now_ms);
            if ((rc = db_step(q)) < 0) return rc;
            if ((found = rc == 1)) db_cid(q, 0, r.id);
            if ((rc = db_step(q)) < 0) return rc;
        }
        if (!found) {
            rc = insert_rule(db, &r, now_ms);
        } else {
            if ((rc = put_channels(db, &r)) < 0) return rc;
            rc = close_rule_alerts(db, r.id, r.def.conds, "the job's alert rule changed", now_ms);
        }
        if (rc < 0) return rc;
    }
    if (!update) return 0;
    char(*ids)[SKED_ID_LEN] = NULL;
    size_t n = 0;
    if (!(q = db_q(db, &Q_JOB_RULES_FROM))) return SKED_ESTORE;
    db_bt(q, job->id);
    db_bi(q, (int64_t)job->nalerts);
    rc = collect_ids(q, &ids, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = drop_rule(db, ids[i], "the job's alert rule was removed", now_ms, NULL);
    free(ids);
    return rc;
}

struct rule_args {
    store_alert_rule_t *r;
    const char *id;
    int64_t expect_version;
    const store_audit_t *audit;
    int64_t now_ms;
};

/* Whether a global rule is named r->def.name already (other than r->id). */
static db_sql_t Q_RULE_NAMED =
    DB_SAME("SELECT id FROM alert_rules WHERE job_id = '' AND name = ?1 AND id != ?2");

static int name_free(db_t *db, const store_alert_rule_t *r)
{
    db_q_t *q = db_q(db, &Q_RULE_NAMED);
    if (!q) return SKED_ESTORE;
    db_bt(q, r->def.name);
    db_bt(q, r->id);
    int rc = db_one(q);
    return rc == SKED_ENOTFOUND ? 0 : rc < 0 ? rc : SKED_ECONFLICT;
}

static int rule_create_fn(db_t *db, void *arg)
{
    struct rule_args *a = arg;
    a->r->job_id[0] = '\0';
    a->r->id[0] = '\0';
    a->r->pos = -1; /* global: the unique index on names covers these */
    int rc = name_free(db, a->r);
    if (rc < 0) return rc;
    if ((rc = insert_rule(db, a->r, a->now_ms)) < 0) return rc;
    return store__put_audit(db, a->audit, a->r->id);
}

int v_alert_rule_create(store_t *st, store_alert_rule_t *r, const store_audit_t *audit,
                        int64_t now_ms)
{
    struct rule_args a = {.r = r, .audit = audit, .now_ms = now_ms};
    return store__tx(st, DB_WRITE, rule_create_fn, &a, &a.now_ms);
}

static int rule_get_fn(db_t *db, void *arg)
{
    struct rule_args *a = arg;
    store_alert_rule_clear(a->r);
    db_q_t *q = db_q(db, &Q_RULE_GET);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    row_rule(q, a->r);
    if ((rc = db_step(q)) < 0 || (rc = read_channels(db, a->id, a->r)) < 0)
        store_alert_rule_clear(a->r);
    return rc < 0 ? rc : 0;
}

int v_alert_rule_get(store_t *st, const char *id, store_alert_rule_t *out)
{
    memset(out, 0, sizeof *out);
    struct rule_args a = {.r = out, .id = id};
    return store__tx(st, DB_READ, rule_get_fn, &a, NULL);
}

static int rule_update_fn(db_t *db, void *arg)
{
    struct rule_args *a = arg;
    store_alert_rule_t *r = a->r;
    int rc = name_free(db, r);
    if (rc < 0) return rc;
    db_q_t *q = db_q(db, &Q_RULE_UPDATE);
    if (!q) return SKED_ESTORE;
    db_bt(q, r->id);
    bind_def(q, &r->def);
    db_bi(q, a->now_ms);
    db_bi(q, a->expect_version);
    rc = db_step(q);
    if (rc < 0) return rc;
    if (rc == 0) {
        /* Which refusal: no such rule, or another version. */
        if (!(q = db_q(db, &Q_RULE_VERSION))) return SKED_ESTORE;
        db_bt(q, r->id);
        rc = db_one(q);
        return rc < 0 ? rc : SKED_EPRECOND;
    }
    r->version = db_ci(q, 0);
    r->created_ms = db_ci(q, 1);
    r->updated_ms = a->now_ms;
    r->job_id[0] = '\0';
    if ((rc = db_step(q)) < 0) return rc;
    if ((rc = put_channels(db, r)) < 0) return rc;
    if ((rc = close_rule_alerts(db, r->id, r->def.conds, "the alert rule changed", a->now_ms)) < 0)
        return rc;
    return store__put_audit(db, a->audit, r->id);
}

int v_alert_rule_update(store_t *st, store_alert_rule_t *r, int64_t expect_version,
                        const store_audit_t *audit, int64_t now_ms)
{
    struct rule_args a = {
        .r = r, .expect_version = expect_version, .audit = audit, .now_ms = now_ms};
    return store__tx(st, DB_WRITE, rule_update_fn, &a, &a.now_ms);
}

static int rule_delete_fn(db_t *db, void *arg)
{
    struct rule_args *a = arg;
    db_q_t *q = db_q(db, &Q_RULE_VERSION);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    if ((rc = db_step(q)) < 0) return rc;
    if ((rc = drop_rule(db, a->id, "the alert rule was deleted", a->now_ms, NULL)) < 0) return rc;
    return store__put_audit(db, a->audit, a->id);
}

int v_alert_rule_delete(store_t *st, const char *id, const store_audit_t *audit, int64_t now_ms)
{
    struct rule_args a = {.id = id, .audit = audit, .now_ms = now_ms};
    return store__tx(st, DB_WRITE, rule_delete_fn, &a, &a.now_ms);
}

struct rule_list_args {
    const char *cursor;
    int limit;
    store_alert_rule_t **out;
    size_t *n;
    char **next;
};

static int rule_list_fn(db_t *db, void *arg)
{
    struct rule_list_args *a = arg;
    int64_t cms = 0;
    char cid[SKED_ID_LEN] = "";
    if (a->cursor) store__cursor_decode(a->cursor, &cms, cid); /* checked by store.c */
    db_q_t *q = db_q(db, a->cursor ? &Q_RULE_LIST_AFTER : &Q_RULE_LIST);
    if (!q) return SKED_ESTORE;
    db_bi(q, a->limit + 1);
    if (a->cursor) {
        db_bi(q, cms);
        db_bt(q, cid);
    }
    int rc = db_page(q, &rule_rows, a->limit, (void **)a->out, a->n, a->next);
    for (size_t i = 0; rc == 0 && i < *a->n; i++)
        rc = read_channels(db, (*a->out)[i].id, &(*a->out)[i]);
    if (rc < 0 && *a->out) {
        for (size_t i = 0; i < *a->n; i++)
            store_alert_rule_clear(&(*a->out)[i]);
        FREE_NULL(*a->out);
        *a->n = 0;
        if (a->next) FREE_NULL(*a->next);
    }
    return rc;
}

int v_alert_rule_list(store_t *st, const char *cursor, int limit, store_alert_rule_t **out,
                      size_t *n, char **next_cursor)
{
    struct rule_list_args a = {cursor, limit, out, n, next_cursor};
    *out = NULL;
    *n = 0;
    if (next_cursor) *next_cursor = NULL;
    return store__tx(st, DB_READ, rule_list_fn, &a, NULL);
}

/* ---- alerts ------------------------------------------------------------------------- */

struct alert_list_args {
    const store_alert_filter_t *f;
    store_alert_t **out;
    size_t *n;
    char **next;
};

static int alert_list_fn(db_t *db, void *arg)
{
    struct alert_list_args *a = arg;
    const store_alert_filter_t *f = a->f;
    int64_t cms = 0;
    char cid[SKED_ID_LEN] = "";
    if (f->cursor) store__cursor_decode(f->cursor, &cms, cid); /* checked by store.c */
    db_q_t *q = db_q(db, f->cursor ? &Q_ALERT_LIST_AFTER : &Q_ALERT_LIST);
    if (!q) return SKED_ESTORE;
    db_bin(q, f->state);
    db_bt(q, f->job_id);
    db_bin(q, f->cond);
    db_bt(q, f->ns_in);
    db_bi(q, f->limit + 1);
    if (f->cursor) {
        db_bi(q, cms);
        db_bt(q, cid);
    }
    return db_page(q, &alert_rows, f->limit, (void **)a->out, a->n, a->next);
}

int v_alert_list(store_t *st, const store_alert_filter_t *f, store_alert_t **out, size_t *n,
                 char **next_cursor)
{
    struct alert_list_args a = {f, out, n, next_cursor};
    if (next_cursor) *next_cursor = NULL;
    return store__tx(st, DB_READ1, alert_list_fn, &a, NULL);
}

struct alert_get_args {
    const char *id;
    store_alert_t *out;
    store_alert_delivery_t **d;
    size_t *nd;
};

static int alert_get_fn(db_t *db, void *arg)
{
    struct alert_get_args *a = arg;
    store_alert_clear(a->out);
    db_q_t *q = db_q(db, &Q_ALERT_GET);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    int rc = db_one(q);
    if (rc < 0) return rc;
    row_alert(q, a->out);
    if ((rc = db_step(q)) < 0) goto out;
    if (!a->d) return 0;
    if (!(q = db_q(db, &Q_DELIVERIES_OF))) {
        rc = SKED_ESTORE;
        goto out;
    }
    db_bt(q, a->id);
    rc = db_page(q, &delivery_rows, -1, (void **)a->d, a->nd, NULL);
out:
    if (rc < 0) store_alert_clear(a->out);
    return rc < 0 ? rc : 0;
}

int v_alert_get(store_t *st, const char *id, store_alert_t *out,
                store_alert_delivery_t **deliveries, size_t *ndeliveries)
{
    memset(out, 0, sizeof *out);
    if (deliveries) {
        *deliveries = NULL;
        *ndeliveries = 0;
    }
    struct alert_get_args a = {id, out, deliveries, ndeliveries};
    return store__tx(st, DB_READ, alert_get_fn, &a, NULL);
}

struct ack_args {
    const char *id, *who;
    const store_audit_t *audit;
    int64_t now_ms;
};

static int ack_fn(db_t *db, void *arg)
{
    struct ack_args *a = arg;
    db_q_t *q = db_q(db, &Q_ALERT_ACK);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    db_bt(q, a->who);
    db_bi(q, a->now_ms);
    int rc = db_one(q);
    if (rc < 0) return rc;
    if ((rc = db_step(q)) < 0) return rc;
    return store__put_audit(db, a->audit, a->id);
}

int v_alert_ack(store_t *st, const char *id, const char *who, const store_audit_t *audit,
                int64_t now_ms)
{
    struct ack_args a = {id, who, audit, now_ms};
    return store__tx(st, DB_WRITE, ack_fn, &a, &a.now_ms);
}

/* ---- the outbox ------------------------------------------------------------------- */

struct claim_args {
    const char *owner;
    int max;
    int64_t lease_ms, now_ms;
    store_outbox_item_t *out;
    size_t n;
};

static void claim_reset(struct claim_args *a)
{
    for (size_t i = 0; i < a->n; i++)
        store_outbox_item_clear(&a->out[i]);
    FREE_NULL(a->out);
    a->n = 0;
}

static int outbox_claim_fn(db_t *db, void *arg)
{
    struct claim_args *a = arg;
    char(*ids)[SKED_ID_LEN] = NULL;
    size_t n = 0;
    claim_reset(a);
    db_q_t *q = db_q(db, &Q_OUTBOX_DUE);
    if (!q) return SKED_ESTORE;
    db_bi(q, a->now_ms);
    db_bi(q, a->max);
    int rc = collect_ids(q, &ids, &n);
    if (rc < 0 || n == 0) goto out;
    a->out = xcalloc(n, sizeof *a->out);
    for (size_t i = 0; i < n; i++) {
        store_outbox_item_t *it = &a->out[a->n];
        char alert_id[SKED_ID_LEN];
        if (!(q = db_q(db, &Q_OUTBOX_TAKE))) {
            rc = SKED_ESTORE;
            goto out;
        }
        it->claim = store__fence_new();
        db_bt(q, ids[i]);
        db_bi(q, a->now_ms + a->lease_ms);
        db_bt(q, a->owner);
        db_bi(q, it->claim);
        if ((rc = db_step(q)) < 0) goto out;
        if (rc == 0) continue; /* taken since the scan */
        row_delivery(q, &it->d);
        it->secret = db_ct0(q, 9);
        db_cid(q, 10, alert_id);
        a->n++;
        if ((rc = db_step(q)) < 0) goto out;
        if (!(q = db_q(db, &Q_ALERT_GET))) {
            rc = SKED_ESTORE;
            goto out;
        }
        db_bt(q, alert_id);
        if ((rc = db_one(q)) < 0) goto out;
        row_alert(q, &it->alert);
        if ((rc = db_step(q)) < 0) goto out;
    }
    rc = 0;
out:
    free(ids);
    if (rc < 0) claim_reset(a);
    return rc;
}

int v_outbox_claim(store_t *st, const char *owner, int max, int64_t lease_ms, int64_t now_ms,
                   store_outbox_item_t **out, size_t *n)
{
    struct claim_args a = {owner, max, lease_ms, now_ms, NULL, 0};
    int rc = store__tx(st, DB_WRITE, outbox_claim_fn, &a, &a.now_ms);
    if (rc < 0) claim_reset(&a);
    *out = a.out;
    *n = a.n;
    return rc;
}

struct settle_args {
    const char *id;
    int64_t claim;
    bool sent;
    const char *error;
    int64_t retry_ms, now_ms;
};

static int settle_fn(db_t *db, void *arg)
{
    struct settle_args *a = arg;
    int64_t changed = 0;
    store_delivery_state_t state = a->sent           ? DELIVERY_SENT
                                   : a->retry_ms < 0 ? DELIVERY_FAILED
                                                     : DELIVERY_PENDING;
    db_q_t *q = db_q(db, &Q_OUTBOX_SETTLE);
    if (!q) return SKED_ESTORE;
    db_bt(q, a->id);
    db_bi(q, a->claim);
    db_bi(q, state);
    db_bi(q, a->retry_ms);
    db_bi(q, a->now_ms);
    db_bt(q, a->sent ? NULL : a->error ? a->error : "failed");
    int rc = db_exec(q, &changed);
    return rc < 0 ? rc : changed ? 0 : SKED_ESTALE;
}

int v_outbox_settle(store_t *st, const char *id, int64_t claim, bool sent, const char *error,
                    int64_t retry_ms, int64_t now_ms)
{
    struct settle_args a = {id, claim, sent, error, retry_ms, now_ms};
    return store__tx(st, DB_WRITE1, settle_fn, &a, &a.now_ms);
}

static int next_due_fn(db_t *db, void *arg)
{
    int64_t *out = arg;
    db_q_t *q = db_q(db, &Q_OUTBOX_NEXT);
    if (!q) return SKED_ESTORE;
    int rc = db_step(q);
    if (rc < 0) return rc;
    *out = rc == 1 && !db_cnull(q, 0) ? db_ci(q, 0) : -1;
    return 0;
}

int v_outbox_next_due_ms(store_t *st, int64_t *out_ms)
{
    *out_ms = -1;
    int rc = store__tx(st, DB_READ1, next_due_fn, out_ms, NULL);
    if (rc < 0) *out_ms = -1;
    return rc;
}

/* ---- shared with the sweep (alerts_sweep.c) --------------------------------------- */

int store__alert_open(db_t *db, const char *rule_id, alert_cond_t cond, const char *subject,
                      const char *name, const char *job_id, const char *ns, const char *run_id,
                      const char *detail, int64_t now_ms, bool *opened)
{
    struct opening o = {rule_id, cond, subject, name, job_id, ns, run_id, detail};
    return open_alert(db, &o, now_ms, opened);
}

int store__alert_resolve(db_t *db, const char *id, const char *why, bool silent, int64_t now_ms,
                         bool *done)
{
    return resolve_alert(db, id, why, silent, now_ms, done);
}

int store__alert_resolve_all(db_t *db, db_q_t *q, const char *why, bool silent, int64_t now_ms,
                             int *count)
{
    return resolve_all(db, q, why, silent, now_ms, count);
}
