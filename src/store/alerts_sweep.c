/*
 * The evaluator of the time-based alert conditions, written once over the
 * SQL driver (db.h): one pass (store_alert_sweep) looks at what is late
 * now and opens or resolves alerts to match, each condition in its own
 * unit of work, the alert and its notices together.
 *
 *   sla_missed  runs of jobs with an SLA, not yet started or finished
 *               (the unclaimed and the running: both indexed, and few in a
 *               healthy system), judged by core's alert_sla_late: an alert
 *               is open while any run of the job is late, so it opens on
 *               time, while the run is late, and resolves once none is.
 *   overrun     running attempts of jobs with an overrun rule against k x
 *               the p95 of the job's recent successful durations.
 *   missed      each rule with the condition judges the fire times that
 *               became window-old since its watermark (alert_rules.
 *               scanned_ms, advanced by compare-and-set, so one server
 *               judges a stretch): a run started within the window keeps
 *               its fire time, a run started later, never, or skipped, and
 *               an entry of the missed-fire ledger (fire times an outage
 *               passed over, written when the scheduler came back) miss
 *               it; the latest fire time of a job decides. A schedule
 *               whose next fire time is a window overdue (nobody is firing
 *               it) misses too, so a recovery is judged whichever of the
 *               scheduler and this pass runs first.
 *   backlog     a queue's claimable runs, counted up to N + 1, over N for
 *               T (alert_watch holds since when).
 *   worker_lost opened by the reaper (lease.c); cleared here when the
 *               worker is active again or gone.
 * Open alerts of deleted jobs close here without a notice, and a retry
 * alert whose run ended without its attempt ending (canceled while it
 * waited) resolves here.
 *
 * Level-based conditions are reconciled: what holds now is opened (a
 * no-op for what is open already: the unique index on open alerts makes
 * that hold against other servers doing the same), and what is open but
 * no longer holds resolves. A scan cut short by its bound resolves nothing.
 */
#include "store/verbs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"
#include "store/store_int.h"

#define SCAN_MAX 10000 /* rows one condition looks at per pass */

/* ---- statements ------------------------------------------------------------- */

static db_sql_t Q_CONDS_IN_USE = DB_SAME("SELECT DISTINCT conds FROM alert_rules");
/* Whether any alert is open (the partial index on open alerts answers). */
static db_sql_t Q_ANY_OPEN = DB_SAME("SELECT 1 FROM alerts WHERE state = 0 LIMIT 1");

/* The rules of cond that apply to a job (as alerts.c's, with parameters). */
#define RULE_SCOPE(instr_tag)                                                                      \
    " AND (r.scope_ns = '' OR r.scope_ns = j.ns) AND (r.scope_queue = '' OR r.scope_queue ="       \
    " j.queue) AND (r.scope_job = '' OR r.scope_job = j.name) AND (r.scope_tag = '' OR " instr_tag \
    " > 0)"
#define RULE_PARAMS "r.id, j.ns, j.name, r.overrun_factor, r.overrun_min_samples"
#define RULES_OF_JOB(instr_tag)                                                                    \
    "SELECT " RULE_PARAMS " FROM jobs j JOIN alert_rules r ON r.job_id = j.id"                     \
    " WHERE j.id = ?1 AND (r.conds & ?2) != 0 UNION ALL"                                           \
    " SELECT " RULE_PARAMS " FROM jobs j JOIN alert_rules r ON r.job_id = ''"                      \
    " WHERE j.id = ?1 AND (r.conds & ?2) != 0" RULE_SCOPE(instr_tag)
static db_sql_t Q_RULES_OF_JOB = DB_SQL(RULES_OF_JOB("instr(j.tags, ',' || r.scope_tag || ',')"),
                                        RULES_OF_JOB("strpos(j.tags, ',' || r.scope_tag || ',')"));

#define SLA_COLS "r.id, r.job_id, r.fire_ms, r.started_ms, j.sla_start_ms, j.sla_finish_ms"
/* Unclaimed runs (due or not yet) and running runs of jobs with an SLA. */
static db_sql_t Q_SLA_WAITING =
    DB_SQL("SELECT " SLA_COLS " FROM runs r INDEXED BY runs_due JOIN jobs j ON j.id = r.job_id"
           " WHERE r.state IN (0, 2) AND r.held = 0 AND j.state = 0"
           " AND (j.sla_start_ms > 0 OR j.sla_finish_ms > 0) ORDER BY r.not_before_ms LIMIT ?1",
           "SELECT " SLA_COLS " FROM runs r JOIN jobs j ON j.id = r.job_id"
           " WHERE r.state IN (0, 2) AND NOT r.held AND j.state = 0"
           " AND (j.sla_start_ms > 0 OR j.sla_finish_ms > 0) ORDER BY r.not_before_ms LIMIT $1");
static db_sql_t Q_SLA_RUNNING =
    DB_SQL("SELECT " SLA_COLS " FROM runs r INDEXED BY runs_lease JOIN jobs j ON j.id = r.job_id"
           " WHERE r.state = 3 AND j.state != 3 AND (j.sla_start_ms > 0 OR j.sla_finish_ms > 0)"
           " LIMIT ?1",
           "SELECT " SLA_COLS " FROM runs r JOIN jobs j ON j.id = r.job_id"
           " WHERE r.state = 3 AND j.state <> 3 AND (j.sla_start_ms > 0 OR j.sla_finish_ms > 0)"
           " LIMIT $1");
/* Running attempts, with when each began. */
static db_sql_t Q_RUNNING_ATTEMPTS =
    DB_SQL("SELECT r.id, r.job_id, a.started_ms FROM runs r INDEXED BY runs_lease"
           " JOIN attempts a ON a.run_id = r.id AND a.n = r.attempt"
           " JOIN jobs j ON j.id = r.job_id WHERE r.state = 3 AND j.state != 3 LIMIT ?1",
           "SELECT r.id, r.job_id, a.started_ms FROM runs r"
           " JOIN attempts a ON a.run_id = r.id AND a.n = r.attempt"
           " JOIN jobs j ON j.id = r.job_id WHERE r.state = 3 AND j.state <> 3 LIMIT $1");
/* A job's latest successful durations (the attempt that succeeded). */
static db_sql_t Q_RECENT_DURATIONS =
    DB_SAME("SELECT a.finished_ms - a.started_ms FROM runs r"
            " JOIN attempts a ON a.run_id = r.id AND a.n = r.attempt"
            " WHERE r.job_id = ?1 AND r.state = 4 ORDER BY r.fire_ms DESC LIMIT ?2");

/* Open alerts of a condition (of one rule, when ?2 is not NULL). */
static db_sql_t Q_OPEN_OF_COND = DB_SAME("SELECT id, rule_id, subject FROM alerts"
                                         " WHERE cond = ?1 AND state = 0"
                                         " AND (?2 IS NULL OR rule_id = ?2)");
static db_sql_t Q_WORKER_LOST_CLEARED =
    DB_SAME("SELECT a.id, w.state FROM alerts a LEFT JOIN workers w ON w.id = a.subject"
            " WHERE a.cond = 5 AND a.state = 0 AND (w.state IS NULL OR w.state != 2)");
static db_sql_t Q_ORPHANS = DB_SAME("SELECT a.id FROM alerts a JOIN jobs j ON j.id = a.job_id"
                                    " WHERE a.state = 0 AND a.job_id != '' AND j.state = 3");
/* Retry alerts of runs that ended without an attempt ending (a run canceled
 * while it waited for its retry). */
static db_sql_t Q_RETRIES_ENDED = DB_SAME("SELECT a.id FROM alerts a JOIN runs r ON r.id = a.run_id"
                                          " WHERE a.cond = 1 AND a.state = 0 AND r.state >= 4");

/* Missed fire times. A rule's scope with its values as parameters ?3..?7
 * (job id, namespace, queue, job name, tag; '' = any). */
#define RULE_COLS_MISSED                                                                           \
    "id, job_id, scope_ns, scope_queue, scope_job, scope_tag, missed_window_ms, scanned_ms,"       \
    " backlog_depth, backlog_for_ms"
static db_sql_t Q_RULES_WITH = DB_SAME("SELECT " RULE_COLS_MISSED " FROM alert_rules"
                                       " WHERE (conds & ?1) != 0 ORDER BY id");
#define PSCOPE(instr_tag)                                                                          \
    " AND ((?3 != '' AND j.id = ?3) OR (?3 = '' AND (?4 = '' OR j.ns = ?4)"                        \
    " AND (?5 = '' OR j.queue = ?5) AND (?6 = '' OR j.name = ?6)"                                  \
    " AND (?7 = '' OR " instr_tag " > 0)))"
#define TAG_LITE   "instr(j.tags, ',' || ?7 || ',')"
#define TAG_PG     "strpos(j.tags, ',' || $7 || ',')"
#define FIRES_COLS "r.job_id, r.fire_ms, r.started_ms, r.state, r.id, j.ns, j.name"
static db_sql_t Q_FIRES_JUDGED =
    DB_SQL("SELECT " FIRES_COLS " FROM runs r INDEXED BY runs_fire JOIN jobs j ON j.id = r.job_id"
           " WHERE r.fire_ms > ?1 AND r.fire_ms <= ?2 AND r.schedule_id IS NOT NULL"
           " AND j.state = 0" PSCOPE(TAG_LITE) " ORDER BY r.fire_ms LIMIT ?8",
           "SELECT " FIRES_COLS " FROM runs r JOIN jobs j ON j.id = r.job_id"
           " WHERE r.fire_ms > $1 AND r.fire_ms <= $2 AND r.schedule_id IS NOT NULL"
           " AND j.state = 0" PSCOPE(TAG_PG) " ORDER BY r.fire_ms LIMIT $8");
static db_sql_t Q_MISSES_JUDGED =
    DB_SQL("SELECT m.job_id, m.last_ms, m.count, m.reason, j.ns, j.name, m.first_ms FROM misses m"
           " INDEXED BY misses_last JOIN jobs j ON j.id = m.job_id"
           " WHERE m.last_ms > ?1 AND m.last_ms <= ?2 AND j.state = 0" PSCOPE(
               TAG_LITE) " ORDER BY m.last_ms LIMIT ?8",
           "SELECT m.job_id, m.last_ms, m.count, m.reason, j.ns, j.name, m.first_ms FROM misses m"
           " JOIN jobs j ON j.id = m.job_id"
           " WHERE m.last_ms > $1 AND m.last_ms <= $2 AND j.state = 0" PSCOPE(
               TAG_PG) " ORDER BY m.last_ms LIMIT $8");
/* Schedules a window overdue: nobody fired them. (?1, ?2 unused here but
 * bound, so PSCOPE's numbering holds.) */
static db_sql_t Q_OVERDUE = DB_SQL(
    "SELECT s.job_id, s.next_fire_ms, j.ns, j.name FROM schedules s INDEXED BY schedules_due"
    " JOIN jobs j ON j.id = s.job_id WHERE s.active = 1 AND s.next_fire_ms <= ?2"
    " AND ?1 = ?1 AND j.state = 0" PSCOPE(TAG_LITE) " ORDER BY s.next_fire_ms LIMIT ?8",
    "SELECT s.job_id, s.next_fire_ms, j.ns, j.name FROM schedules s"
    " JOIN jobs j ON j.id = s.job_id WHERE s.active AND s.next_fire_ms <= $2"
    " AND $1::bigint = $1 AND j.state = 0" PSCOPE(TAG_PG) " ORDER BY s.next_fire_ms LIMIT $8");
static db_sql_t Q_RULE_SCANNED =
    DB_SAME("UPDATE alert_rules SET scanned_ms = ?3 WHERE id = ?1 AND scanned_ms = ?2");
static db_sql_t Q_OPEN_ONE = DB_SAME("SELECT id FROM alerts WHERE rule_id = ?1 AND subject = ?2"
                                     " AND cond = ?3 AND state = 0");

/* Backlog. */
static db_sql_t Q_QUEUES =
    DB_SAME("SELECT DISTINCT queue FROM jobs WHERE state != 3 AND (?1 = '' OR ns = ?1)"
            " ORDER BY queue LIMIT 1000");
static db_sql_t Q_DEPTH =
    DB_SQL("SELECT count(*) FROM (SELECT 1 FROM runs INDEXED BY runs_claim WHERE state IN (0, 2)"
           " AND held = 0 AND queue = ?1 AND not_before_ms <= ?2 LIMIT ?3)",
           "SELECT count(*) FROM (SELECT 1 FROM runs WHERE state IN (0, 2) AND NOT held"
           " AND queue = $1 AND not_before_ms <= $2 LIMIT $3) d");
static db_sql_t Q_WATCH_SET = DB_SAME("INSERT INTO alert_watch (rule_id, subject, since_ms)"
                                      " VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING");
static db_sql_t Q_WATCH_GET =
    DB_SAME("SELECT since_ms FROM alert_watch WHERE rule_id = ?1 AND subject = ?2");
static db_sql_t Q_WATCH_DROP =
    DB_SAME("DELETE FROM alert_watch WHERE rule_id = ?1 AND subject = ?2");

/* ---- violations and reconciling ------------------------------------------------- */

/* One (rule, subject) for which a condition holds now. */
struct viol {
    char rule_id[SKED_ID_LEN];
    char *subject, *name, *job_id, *ns, *run_id, *detail; /* owned */
};

struct viols {
    struct viol *v;
    size_t n, cap;
};

static void viols_add(struct viols *vs, const char *rule_id, const char *subject, const char *name,
                      const char *job_id, const char *ns, const char *run_id, const char *detail)
{
    if (vs->n == vs->cap) {
        vs->cap = vs->cap ? vs->cap * 2 : 8;
        vs->v = xrealloc(vs->v, vs->cap * sizeof *vs->v);
    }
    struct viol *x = &vs->v[vs->n++];
    snprintf(x->rule_id, sizeof x->rule_id, "%s", rule_id);
    x->subject = xstrdup(subject);
    x->name = xstrdup(name ? name : "");
    x->job_id = xstrdup(job_id ? job_id : "");
    x->ns = xstrdup(ns ? ns : "");
    x->run_id = xstrdup(run_id ? run_id : "");
    x->detail = xstrdup(detail ? detail : "");
}

static void viols_free(struct viols *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->v[i].subject);
        free(vs->v[i].name);
        free(vs->v[i].job_id);
        free(vs->v[i].ns);
        free(vs->v[i].run_id);
        free(vs->v[i].detail);
    }
    free(vs->v);
    memset(vs, 0, sizeof *vs);
}

static bool viols_has(const struct viols *vs, const char *rule_id, const char *subject)
{
    for (size_t i = 0; i < vs->n; i++)
        if (!strcmp(vs->v[i].rule_id, rule_id) && !strcmp(vs->v[i].subject, subject)) return true;
    return false;
}

/* Opens an alert of cond for each violation; when complete (the scan saw
 * everything), resolves the open alerts of cond (of rule_id only, when not
 * NULL) that none matches, with why. */
static int reconcile(db_t *db, alert_cond_t cond, const struct viols *vs, bool complete,
                     const char *rule_id, const char *why, int64_t now_ms, int *changed)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < vs->n; i++) {
        const struct viol *x = &vs->v[i];
        bool opened = false;
        rc = store__alert_open(db, x->rule_id, cond, x->subject, x->name, x->job_id, x->ns,
                               x->run_id, x->detail, now_ms, &opened);
        if (opened) ++*changed;
    }
    if (rc < 0 || !complete) return rc;
    struct {
        char id[SKED_ID_LEN], rule[SKED_ID_LEN];
        char *subject;
    } *open = NULL;
    size_t n = 0, cap = 0;
    db_q_t *q = db_q(db, &Q_OPEN_OF_COND);
    if (!q) return SKED_ESTORE;
    db_bi(q, cond);
    db_bt(q, rule_id);
    while ((rc = db_step(q)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            open = xrealloc(open, cap * sizeof *open);
        }
        db_cid(q, 0, open[n].id);
        db_cid(q, 1, open[n].rule);
        open[n++].subject = db_ct0(q, 2);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (viols_has(vs, open[i].rule, open[i].subject)) continue;
        bool done = false;
        rc = store__alert_resolve(db, open[i].id, why, false, now_ms, &done);
        if (done) ++*changed;
    }
    for (size_t i = 0; i < n; i++)
        free(open[i].subject);
    free(open);
    return rc;
}

/* A rule of a job as Q_RULES_OF_JOB returns it. */
struct job_rule {
    char id[SKED_ID_LEN];
    char *ns, *name;
    double factor;
    int min_samples;
};

static void job_rules_free(struct job_rule *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].ns);
        free(r[i].name);
    }
    free(r);
}

static int rules_of_job(db_t *db, const char *job_id, alert_cond_t cond, struct job_rule **out,
                        size_t *n)
{
    size_t cap = 0;
    int rc;
    *out = NULL;
    *n = 0;
    db_q_t *q = db_q(db, &Q_RULES_OF_JOB);
    if (!q) return SKED_ESTORE;
    db_bt(q, job_id);
    db_bi(q, ALERT_BIT(cond));
    while ((rc = db_step(q)) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        struct job_rule *r = &(*out)[(*n)++];
        db_cid(q, 0, r->id);
        r->ns = db_ct0(q, 1);
        r->name = db_ct0(q, 2);
        r->factor = db_cd(q, 3);
        r->min_samples = (int)db_ci(q, 4);
    }
    if (rc < 0) {
        job_rules_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc < 0 ? rc : 0;
}

struct sweep {
    int64_t now_ms;
    int changed; /* alerts opened and resolved so far */
    int base;    /* changed before the running step: a step run again starts from it */
};

/* ---- sla_missed ------------------------------------------------------------------- */

/* The first late run seen of each job. */
struct late {
    char job_id[SKED_ID_LEN], run_id[SKED_ID_LEN];
    char detail[256];
};

static int scan_sla(db_t *db, db_sql_t *sql, int64_t now_ms, struct late **v, size_t *n,
                    size_t *cap, bool *cut)
{
    char when[SKED_RFC3339_LEN];
    db_q_t *q = db_q(db, sql);
    if (!q) return SKED_ESTORE;
    db_bi(q, SCAN_MAX);
    int rc, rows = 0;
    while ((rc = db_step(q)) == 1) {
        rows++;
        int64_t fire = db_ci(q, 2), started = db_ci(q, 3);
        int64_t start_within = db_ci(q, 4), finish_within = db_ci(q, 5);
        unsigned late = alert_sla_late(fire, started, false, start_within, finish_within, now_ms);
        if (!late) continue;
        bool seen = false;
        for (size_t i = 0; i < *n && !seen; i++)
            seen = !strcmp((*v)[i].job_id, db_cs(q, 1));
        if (seen) continue;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 8;
            *v = xrealloc(*v, *cap * sizeof **v);
        }
        struct late *l = &(*v)[(*n)++];
        db_cid(q, 0, l->run_id);
        db_cid(q, 1, l->job_id);
        clock_format_rfc3339(fire, when, sizeof when);
        if (late & ALERT_SLA_START_LATE)
            snprintf(l->detail, sizeof l->detail,
                     "run %s has not started %lld s after its fire time %s (sla.start_within)",
                     l->run_id, (long long)((now_ms - fire) / 1000), when);
        else
            snprintf(l->detail, sizeof l->detail,
                     "run %s has not finished %lld s after its fire time %s (sla.finish_within)",
                     l->run_id, (long long)((now_ms - fire) / 1000), when);
    }
    if (rows >= SCAN_MAX) *cut = true;
    return rc < 0 ? rc : 0;
}

static int sweep_sla_fn(db_t *db, void *arg)
{
    struct sweep *s = arg;
    s->changed = s->base;
    struct late *v = NULL;
    size_t n = 0, cap = 0;
    bool cut = false;
    struct viols vs = {0};
    int rc = scan_sla(db, &Q_SLA_WAITING, s->now_ms, &v, &n, &cap, &cut);
    if (rc == 0) rc = scan_sla(db, &Q_SLA_RUNNING, s->now_ms, &v, &n, &cap, &cut);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct job_rule *r = NULL;
        size_t nr = 0;
        if ((rc = rules_of_job(db, v[i].job_id, ALERT_SLA_MISSED, &r, &nr)) < 0) break;
        for (size_t k = 0; k < nr; k++)
            viols_add(&vs, r[k].id, v[i].job_id, r[k].name, v[i].job_id, r[k].ns, v[i].run_id,
                      v[i].detail);
        job_rules_free(r, nr);
    }
    if (rc == 0)
        rc = reconcile(db, ALERT_SLA_MISSED, &vs, !cut, NULL,
                       "no run of the job is late any more (started and finished within its sla)",
                       s->now_ms, &s->changed);
    viols_free(&vs);
    free(v);
    return rc;
}

/* ---- overrun ---------------------------------------------------------------------- */

static int durations_of(db_t *db, const char *job_id, int64_t *d, size_t *n)
{
    db_q_t *q = db_q(db, &Q_RECENT_DURATIONS);
    if (!q) return SKED_ESTORE;
    db_bt(q, job_id);
    db_bi(q, ALERT_OVERRUN_SAMPLES);
    int rc;
    *n = 0;
    while ((rc = db_step(q)) == 1)
        if (*n < ALERT_OVERRUN_SAMPLES) d[(*n)++] = db_ci(q, 0);
    return rc < 0 ? rc : 0;
}

static int sweep_overrun_fn(db_t *db, void *arg)
{
    struct sweep *s = arg;
    s->changed = s->base;
    struct running {
        char run_id[SKED_ID_LEN], job_id[SKED_ID_LEN];
        int64_t started_ms;
    } *v = NULL;
    size_t n = 0, cap = 0;
    struct viols vs = {0};
    db_q_t *q = db_q(db, &Q_RUNNING_ATTEMPTS);
    if (!q) return SKED_ESTORE;
    db_bi(q, SCAN_MAX);
    int rc;
    while ((rc = db_step(q)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = xrealloc(v, cap * sizeof *v);
        }
        db_cid(q, 0, v[n].run_id);
        db_cid(q, 1, v[n].job_id);
        v[n++].started_ms = db_ci(q, 2);
    }
    bool cut = n >= SCAN_MAX;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct job_rule *r = NULL;
        size_t nr = 0;
        int64_t d[ALERT_OVERRUN_SAMPLES];
        size_t nd = 0;
        if ((rc = rules_of_job(db, v[i].job_id, ALERT_OVERRUN, &r, &nr)) < 0) break;
        if (nr && (rc = durations_of(db, v[i].job_id, d, &nd)) < 0) {
            job_rules_free(r, nr);
            break;
        }
        int64_t running = s->now_ms - v[i].started_ms;
        for (size_t k = 0; k < nr; k++) {
            int64_t copy[ALERT_OVERRUN_SAMPLES], limit = -1;
            memcpy(copy, d, nd * sizeof *d);
            if (!alert_overrun(running, copy, nd, r[k].factor, r[k].min_samples, &limit)) continue;
            char detail[256];
            snprintf(detail, sizeof detail,
                     "run %s has been running %lld s, over %g x the p95 of its last %zu "
                     "successful runs (%lld s)",
                     v[i].run_id, (long long)(running / 1000), r[k].factor, nd,
                     (long long)(limit / 1000));
            viols_add(&vs, r[k].id, v[i].job_id, r[k].name, v[i].job_id, r[k].ns, v[i].run_id,
                      detail);
        }
        job_rules_free(r, nr);
    }
    if (rc == 0)
        rc =
            reconcile(db, ALERT_OVERRUN, &vs, !cut, NULL,
                      "no attempt of the job runs past its limit any more", s->now_ms, &s->changed);
    viols_free(&vs);
    free(v);
    return rc;
}

/* ---- rules with a condition ---------------------------------------------------------- */

/* What the per-rule conditions need of a rule. */
struct prule {
    char id[SKED_ID_LEN], job_id[SKED_ID_LEN];
    char *ns, *queue, *job, *tag;
    int64_t window_ms, scanned_ms;
    int depth;
    int64_t for_ms;
};

static void prules_free(struct prule *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].ns);
        free(r[i].queue);
        free(r[i].job);
        free(r[i].tag);
    }
    free(r);
}

static int rules_with(db_t *db, alert_cond_t cond, struct prule **out, size_t *n)
{
    size_t cap = 0;
    int rc;
    *out = NULL;
    *n = 0;
    db_q_t *q = db_q(db, &Q_RULES_WITH);
    if (!q) return SKED_ESTORE;
    db_bi(q, ALERT_BIT(cond));
    while ((rc = db_step(q)) == 1) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 4;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        struct prule *r = &(*out)[(*n)++];
        db_cid(q, 0, r->id);
        db_cid(q, 1, r->job_id);
        r->ns = db_ct0(q, 2);
        r->queue = db_ct0(q, 3);
        r->job = db_ct0(q, 4);
        r->tag = db_ct0(q, 5);
        r->window_ms = db_ci(q, 6);
        r->scanned_ms = db_ci(q, 7);
        r->depth = (int)db_ci(q, 8);
        r->for_ms = db_ci(q, 9);
    }
    if (rc < 0) {
        prules_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc < 0 ? rc : 0;
}

/* Binds lo, hi, the rule's scope (?3..?7) and the row bound (?8). */
static void bind_scope(db_q_t *q, int64_t lo, int64_t hi, const struct prule *r)
{
    db_bi(q, lo);
    db_bi(q, hi);
    db_bt(q, r->job_id);
    db_bt(q, r->ns);
    db_bt(q, r->queue);
    db_bt(q, r->job);
    db_bt(q, r->tag);
    db_bi(q, SCAN_MAX);
}

/* ---- missed ----------------------------------------------------------------------- */

/* The latest judged fire time of one job in one pass. */
struct verdict {
    char job_id[SKED_ID_LEN], run_id[SKED_ID_LEN];
    char *ns, *name;
    int64_t fire_ms;
    bool kept;
    char detail[320];
};

static struct verdict *verdict_for(struct verdict **v, size_t *n, size_t *cap, const char *job_id)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i].job_id, job_id)) return &(*v)[i];
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *v = xrealloc(*v, *cap * sizeof **v);
    }
    struct verdict *x = &(*v)[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->job_id, sizeof x->job_id, "%s", job_id);
    x->fire_ms = INT64_MIN;
    return x;
}

/* Records a judged fire time of job (columns: ns at col_ns, name next):
 * the latest wins, a miss over a kept one at the same instant. */
static void judge(struct verdict **v, size_t *n, size_t *cap, db_q_t *q, int col_ns,
                  int64_t fire_ms, bool kept, const char *run_id, const char *detail)
{
    struct verdict *x = verdict_for(v, n, cap, db_cs(q, 0));
    if (fire_ms < x->fire_ms || (fire_ms == x->fire_ms && kept)) return;
    x->fire_ms = fire_ms;
    x->kept = kept;
    snprintf(x->run_id, sizeof x->run_id, "%s", run_id ? run_id : "");
    snprintf(x->detail, sizeof x->detail, "%s", detail);
    free(x->ns);
    free(x->name);
    x->ns = db_ct0(q, col_ns);
    x->name = db_ct0(q, col_ns + 1);
}

static int sweep_missed_rule(db_t *db, const struct prule *r, int64_t now_ms, int *changed)
{
    struct verdict *v = NULL;
    size_t n = 0, cap = 0;
    char at[SKED_RFC3339_LEN], at2[SKED_RFC3339_LEN], detail[320];
    int64_t lo = r->scanned_ms, hi = now_ms - r->window_ms, upto = hi;
    int rc = 0;
    db_q_t *q;

    if (hi > lo) {
        /* Claim the stretch (lo, hi]: on another server's concurrent pass
         * the compare-and-set fails and this rule is left to it. */
        int64_t won = 0;
        if (!(q = db_q(db, &Q_RULE_SCANNED))) return SKED_ESTORE;
        db_bt(q, r->id);
        db_bi(q, lo);
        db_bi(q, hi);
        if ((rc = db_exec(q, &won)) < 0) return rc;
        if (!won) return 0;

        if (!(q = db_q(db, &Q_FIRES_JUDGED))) return SKED_ESTORE;
        bind_scope(q, lo, hi, r);
        int rows = 0;
        while ((rc = db_step(q)) == 1) {
            int64_t fire = db_ci(q, 1), started = db_ci(q, 2);
            run_state_t state = (run_state_t)db_ci(q, 3);
            rows++;
            upto = fire;
            if (state == RUN_CANCELED && started < 0) continue; /* someone decided */
            bool kept = alert_fire_kept(fire, started, state == RUN_SKIPPED, r->window_ms);
            clock_format_rfc3339(fire, at, sizeof at);
            if (kept)
                snprintf(detail, sizeof detail, "fire time %s started on time", at);
            else if (state == RUN_SKIPPED)
                snprintf(detail, sizeof detail, "fire time %s was skipped", at);
            else if (started < 0)
                snprintf(detail, sizeof detail, "fire time %s has not started within %lld s", at,
                         (long long)(r->window_ms / 1000));
            else
                snprintf(detail, sizeof detail, "fire time %s started %lld s late", at,
                         (long long)((started - fire) / 1000));
            judge(&v, &n, &cap, q, 5, fire, kept, db_cs(q, 4), detail);
        }
        if (rc < 0) goto out;
        if (rows >= SCAN_MAX && upto < hi) {
            /* Cut short: judge up to just before the last instant seen, and
             * move the watermark only that far. */
            if (!(q = db_q(db, &Q_RULE_SCANNED))) {
                rc = SKED_ESTORE;
                goto out;
            }
            db_bt(q, r->id);
            db_bi(q, hi);
            db_bi(q, upto - 1);
            if ((rc = db_exec(q, NULL)) < 0) goto out;
            hi = upto - 1;
        }

        if (!(q = db_q(db, &Q_MISSES_JUDGED))) {
            rc = SKED_ESTORE;
            goto out;
        }
        bind_scope(q, lo, hi, r);
        while ((rc = db_step(q)) == 1) {
            int64_t last = db_ci(q, 1), count = db_ci(q, 2), first = db_ci(q, 6);
            clock_format_rfc3339(first, at, sizeof at);
            clock_format_rfc3339(last, at2, sizeof at2);
            snprintf(detail, sizeof detail, "%lld fire time%s from %s to %s did not run (%s)",
                     (long long)count, count == 1 ? "" : "s", at, at2, db_cs(q, 3));
            judge(&v, &n, &cap, q, 4, last, false, "", detail);
        }
        if (rc < 0) goto out;
    }

    if (!(q = db_q(db, &Q_OVERDUE))) {
        rc = SKED_ESTORE;
        goto out;
    }
    bind_scope(q, 0, now_ms - r->window_ms, r);
    while ((rc = db_step(q)) == 1) {
        int64_t next = db_ci(q, 1);
        clock_format_rfc3339(next, at, sizeof at);
        snprintf(detail, sizeof detail, "fire time %s is overdue by %lld s: no server has fired it",
                 at, (long long)((now_ms - next) / 1000));
        judge(&v, &n, &cap, q, 2, next, false, "", detail);
    }
    if (rc < 0) goto out;
    rc = 0;

    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct verdict *x = &v[i];
        if (!x->kept) {
            bool opened = false;
            rc = store__alert_open(db, r->id, ALERT_MISSED, x->job_id, x->name, x->job_id, x->ns,
                                   x->run_id, x->detail, now_ms, &opened);
            if (opened) ++*changed;
            continue;
        }
        if (!(q = db_q(db, &Q_OPEN_ONE))) {
            rc = SKED_ESTORE;
            break;
        }
        db_bt(q, r->id);
        db_bt(q, x->job_id);
        db_bi(q, ALERT_MISSED);
        char id[SKED_ID_LEN];
        if ((rc = db_step(q)) <= 0) continue;
        db_cid(q, 0, id);
        if ((rc = db_step(q)) < 0) break;
        bool done = false;
        rc = store__alert_resolve(db, id, x->detail, false, now_ms, &done);
        if (done) ++*changed;
    }
out:
    for (size_t i = 0; i < n; i++) {
        free(v[i].ns);
        free(v[i].name);
    }
    free(v);
    return rc < 0 ? rc : 0;
}

static int sweep_missed_fn(db_t *db, void *arg)
{
    struct sweep *s = arg;
    s->changed = s->base;
    struct prule *r = NULL;
    size_t n = 0;
    int rc = rules_with(db, ALERT_MISSED, &r, &n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = sweep_missed_rule(db, &r[i], s->now_ms, &s->changed);
    prules_free(r, n);
    return rc;
}

/* ---- backlog ---------------------------------------------------------------------- */

static int backlog_queue(db_t *db, const struct prule *r, const char *queue, int64_t now_ms,
                         struct viols *vs)
{
    db_q_t *q = db_q(db, &Q_DEPTH);
    if (!q) return SKED_ESTORE;
    db_bt(q, queue);
    db_bi(q, now_ms);
    db_bi(q, (int64_t)r->depth + 1);
    int rc = db_one(q);
    if (rc < 0) return rc;
    int depth = (int)db_ci(q, 0);
    if ((rc = db_step(q)) < 0) return rc;
    if (depth <= r->depth) {
        if (!(q = db_q(db, &Q_WATCH_DROP))) return SKED_ESTORE;
        db_bt(q, r->id);
        db_bt(q, queue);
        return db_exec(q, NULL);
    }
    if (!(q = db_q(db, &Q_WATCH_SET))) return SKED_ESTORE;
    db_bt(q, r->id);
    db_bt(q, queue);
    db_bi(q, now_ms);
    if ((rc = db_exec(q, NULL)) < 0) return rc;
    if (!(q = db_q(db, &Q_WATCH_GET))) return SKED_ESTORE;
    db_bt(q, r->id);
    db_bt(q, queue);
    if ((rc = db_one(q)) < 0) return rc;
    int64_t since = db_ci(q, 0);
    if ((rc = db_step(q)) < 0) return rc;
    if (!alert_backlog_due(depth, r->depth, since, r->for_ms, now_ms)) return 0;
    char when[SKED_RFC3339_LEN], detail[320];
    clock_format_rfc3339(since, when, sizeof when);
    snprintf(detail, sizeof detail, "queue %s has had more than %d pending runs since %s", queue,
             r->depth, when);
    viols_add(vs, r->id, queue, queue, "", "", "", detail);
    return 0;
}

static int sweep_backlog_fn(db_t *db, void *arg)
{
    struct sweep *s = arg;
    s->changed = s->base;
    struct prule *r = NULL;
    size_t n = 0;
    int rc = rules_with(db, ALERT_BACKLOG, &r, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct viols vs = {0};
        if (*r[i].queue) {
            rc = backlog_queue(db, &r[i], r[i].queue, s->now_ms, &vs);
        } else {
            char **queues = NULL;
            size_t nq = 0, cap = 0;
            db_q_t *q = db_q(db, &Q_QUEUES);
            if (!q) {
                rc = SKED_ESTORE;
                break;
            }
            db_bt(q, r[i].ns);
            while ((rc = db_step(q)) == 1) {
                if (nq == cap) {
                    cap = cap ? cap * 2 : 8;
                    queues = xrealloc(queues, cap * sizeof *queues);
                }
                queues[nq++] = db_ct0(q, 0);
            }
            for (size_t k = 0; rc == 0 && k < nq; k++)
                rc = backlog_queue(db, &r[i], queues[k], s->now_ms, &vs);
            for (size_t k = 0; k < nq; k++)
                free(queues[k]);
            free(queues);
        }
        if (rc == 0)
            rc = reconcile(db, ALERT_BACKLOG, &vs, true, r[i].id,
                           "the queue's pending runs are back at or below the limit", s->now_ms,
                           &s->changed);
        viols_free(&vs);
    }
    prules_free(r, n);
    return rc;
}

/* ---- clearing what went away --------------------------------------------------------- */

static int sweep_clear_fn(db_t *db, void *arg)
{
    struct sweep *s = arg;
    s->changed = s->base;
    struct cleared {
        char id[SKED_ID_LEN];
        bool gone;
    } *v = NULL;
    size_t n = 0, cap = 0;
    db_q_t *q = db_q(db, &Q_WORKER_LOST_CLEARED);
    if (!q) return SKED_ESTORE;
    int rc;
    while ((rc = db_step(q)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            v = xrealloc(v, cap * sizeof *v);
        }
        db_cid(q, 0, v[n].id);
        v[n++].gone = db_cnull(q, 1) || db_ci(q, 1) == WORKER_GONE;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        bool done = false;
        rc = store__alert_resolve(db, v[i].id,
                                  v[i].gone ? "the worker is gone (deregistered)"
                                            : "the worker is heartbeating again",
                                  false, s->now_ms, &done);
        if (done) s->changed++;
    }
    free(v);
    if (rc < 0) return rc;

    /* A deleted job's alerts close silently; a retry alert whose run
     * ended resolves with its notice. */
    if (!(q = db_q(db, &Q_ORPHANS))) return SKED_ESTORE;
    if ((rc = store__alert_resolve_all(db, q, "the job was deleted", true, s->now_ms,
                                       &s->changed)) < 0)
        return rc;
    if (!(q = db_q(db, &Q_RETRIES_ENDED))) return SKED_ESTORE;
    return store__alert_resolve_all(db, q, "the run ended", false, s->now_ms, &s->changed);
}

/* ---- the pass ----------------------------------------------------------------------- */

/* What the pass has to do: the conditions rules use, and whether any
 * alert is open. */
struct todo {
    unsigned used;
    bool any_open;
};

static int todo_fn(db_t *db, void *arg)
{
    struct todo *t = arg;
    db_q_t *q = db_q(db, &Q_CONDS_IN_USE);
    if (!q) return SKED_ESTORE;
    int rc;
    t->used = 0;
    while ((rc = db_step(q)) == 1)
        t->used |= (unsigned)db_ci(q, 0);
    if (rc < 0) return rc;
    if (!(q = db_q(db, &Q_ANY_OPEN))) return SKED_ESTORE;
    if ((rc = db_step(q)) < 0) return rc;
    t->any_open = rc == 1;
    return 0;
}

int v_alert_sweep(store_t *st, int64_t now_ms, int *changed)
{
    struct todo t = {0, false};
    struct sweep s = {now_ms, 0, 0};
    /* An idle store (no rule, no open alert) costs this one read a pass. */
    int rc = store__tx(st, DB_READ, todo_fn, &t, NULL);
    /* Each condition in a unit of its own: a long pass holds no writer
     * (SQLite) or row locks (PostgreSQL) across conditions. */
    static const struct {
        alert_cond_t cond;
        db_fn fn;
    } steps[] = {
        {ALERT_WORKER_LOST, sweep_clear_fn}, {ALERT_SLA_MISSED, sweep_sla_fn},
        {ALERT_OVERRUN, sweep_overrun_fn},   {ALERT_MISSED, sweep_missed_fn},
        {ALERT_BACKLOG, sweep_backlog_fn},
    };
    for (size_t i = 0; rc == 0 && i < sizeof steps / sizeof *steps; i++) {
        /* Clearing looks at open alerts only: a deleted job's must close
         * even when no rule names its condition any more. */
        if (steps[i].fn == sweep_clear_fn ? !t.any_open : !(t.used & ALERT_BIT(steps[i].cond)))
            continue;
        s.now_ms = now_ms;
        s.base = s.changed;
        rc = store__tx(st, DB_WRITE, steps[i].fn, &s, &s.now_ms);
    }
    if (changed) *changed = s.changed;
    return rc;
}
