/*
 * The store's front door: store_open picks a backend from the URL scheme,
 * the public verbs of store.h check their arguments once here and call the
 * verbs written once over the driver (verbs.h), and the backend-neutral
 * helpers live here too — state names, spec-to-columns, the *_clear
 * functions, paging cursors, label matching and the retry decision — so
 * every verb shares one definition of them. There is no SQL in this file.
 */
#include "store/store.h"
#include "store/store_int.h"
#include "store/verbs.h"
#include "core/jobspec.h"
#include "core/workflow.h"
#include "core/results.h"
#include "common/clock.h"

#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"

/* ---- lifecycle --------------------------------------------------------- */

void store__init(store_t *st, const struct db_driver *db)
{
    st->db = db;
    pthread_mutex_init(&st->notify_mu, NULL);
    st->notify = NULL;
    st->notify_arg = NULL;
    st->log_cap = STORE_LOG_CAP_DEFAULT;
    pthread_mutex_init(&st->ready_mu, NULL);
    st->ready_at_ns = 0;
    atomic_init(&st->ready_rc, 0);
    pthread_mutex_init(&st->ev_mu, NULL);
    st->ev_final = 0;
    st->ev_pend_id = st->ev_pend_xid = -1;
}

void store__fini(store_t *st)
{
    pthread_mutex_destroy(&st->notify_mu);
    pthread_mutex_destroy(&st->ready_mu);
    pthread_mutex_destroy(&st->ev_mu);
}

void store__notify(store_t *st)
{
    pthread_mutex_lock(&st->notify_mu);
    store_notify_fn fn = st->notify;
    void *arg = st->notify_arg;
    pthread_mutex_unlock(&st->notify_mu);
    if (fn) fn(arg);
}

static void set_errmsg(char **errmsg, const char *msg)
{
    if (errmsg) *errmsg = xstrdup(msg);
}

int store_open(const char *url, store_t **out, char **errmsg)
{
    if (errmsg) *errmsg = NULL;
    if (!url || !out) {
        set_errmsg(errmsg, "no store URL given");
        return SKED_EINVAL;
    }
    *out = NULL;
    if (strncmp(url, "sqlite:", 7) == 0) {
        const char *path = url + 7;
        /* Accept "sqlite://PATH" as well, as people write it by analogy. */
        if (strncmp(path, "//", 2) == 0) path += 2;
        if (!*path) {
            set_errmsg(errmsg, "sqlite store URL has no path (sqlite:PATH)");
            return SKED_EINVAL;
        }
        return store__sqlite_open(path, out, errmsg);
    }
    if (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13))
        return store__pg_open(url, out, errmsg);
    if (errmsg)
        *errmsg =
            xasprintf("unknown store URL scheme in '%s' (use sqlite:PATH or postgres://...)", url);
    return SKED_EINVAL;
}

int64_t store_now_ms(store_t *st)
{
    return st->db->now_ms ? st->db->now_ms(st) : clock_now_ms();
}

void store_close(store_t *st)
{
    if (!st) return;
    st->db->close(st);
}

const char *store_backend(const store_t *st)
{
    return st->db->name;
}

int store_ping(store_t *st)
{
    return v_ping(st);
}

int store_counts(store_t *st, store_counts_t *out)
{
    if (!out) return SKED_EINVAL;
    return v_counts(st, out);
}

#define READY_PROBE_NS 1000000000LL /* at most one probe write a second */

int store_ready(store_t *st)
{
    /* One prober at a time. While a probe is in flight the others answer
     * what the last one found, rather than queue writes of their own or
     * hold HTTP threads behind a slow store. */
    if (pthread_mutex_trylock(&st->ready_mu) != 0) return atomic_load(&st->ready_rc);
    int64_t now = clock_mono_ns();
    if (st->ready_at_ns == 0 || now - st->ready_at_ns >= READY_PROBE_NS) {
        int rc = v_ping(st);
        if (rc == 0) rc = v_probe_write(st, store_now_ms(st));
        atomic_store(&st->ready_rc, rc);
        st->ready_at_ns = clock_mono_ns();
    }
    int rc = atomic_load(&st->ready_rc);
    pthread_mutex_unlock(&st->ready_mu);
    return rc;
}

void store_set_notify(store_t *st, store_notify_fn fn, void *arg)
{
    pthread_mutex_lock(&st->notify_mu);
    st->notify = fn;
    st->notify_arg = arg;
    pthread_mutex_unlock(&st->notify_mu);
}

void store_set_log_cap(store_t *st, int64_t bytes)
{
    /* Read by the writer thread under its own ordering; a plain store is
     * enough because the value is only ever set at start-up or in tests. */
    st->log_cap = bytes > 0 ? bytes : STORE_LOG_CAP_DEFAULT;
}

/* Clears each of the n rules of v and frees v. */
static void alert_rules_clear(store_alert_rule_t *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_alert_rule_clear(&v[i]);
    free(v);
}

/* ---- names ------------------------------------------------------------- */

static const char *const job_state_names[] = {"active", "paused", "done", "deleted"};
static const char *const worker_state_names[] = {"active", "draining", "lost", "gone"};
static const char *const role_names[] = {"admin",  "operator", "user",
                                         "viewer", "worker",   "metrics"};

const char *job_state_name(job_state_t s)
{
    if ((unsigned)s >= sizeof job_state_names / sizeof *job_state_names) return NULL;
    return job_state_names[s];
}

int job_state_parse(const char *name, job_state_t *out)
{
    for (size_t i = 0; name && i < sizeof job_state_names / sizeof *job_state_names; i++)
        if (strcmp(name, job_state_names[i]) == 0) {
            *out = (job_state_t)i;
            return 0;
        }
    return SKED_EINVAL;
}

static const char *const job_sort_names[JOB_SORT_COUNT] = {"-created", "created",  "name",
                                                           "-name",    "priority", "-priority"};

const char *job_sort_name(job_sort_t s)
{
    return (unsigned)s < JOB_SORT_COUNT ? job_sort_names[s] : NULL;
}

int job_sort_parse(const char *name, job_sort_t *out)
{
    for (int i = 0; name && i < JOB_SORT_COUNT; i++)
        if (strcmp(name, job_sort_names[i]) == 0) {
            *out = (job_sort_t)i;
            return 0;
        }
    return SKED_EINVAL;
}

const char *worker_state_name(worker_state_t s)
{
    if ((unsigned)s >= sizeof worker_state_names / sizeof *worker_state_names) return NULL;
    return worker_state_names[s];
}

const char *token_role_name(token_role_t r)
{
    if ((unsigned)r >= sizeof role_names / sizeof *role_names) return NULL;
    return role_names[r];
}

int token_role_parse(const char *name, token_role_t *out)
{
    for (size_t i = 0; name && i < sizeof role_names / sizeof *role_names; i++)
        if (strcmp(name, role_names[i]) == 0) {
            *out = (token_role_t)i;
            return 0;
        }
    return SKED_EINVAL;
}

/* ---- value helpers ------------------------------------------------------ */

void store_job_from_spec(store_job_t *job, const jobspec_t *spec)
{
    /* Replaces what was there, so calling it twice on one job (create, then
     * update) does not leak: the job must be zeroed or previously filled. */
    free(job->name);
    free(job->queue);
    free(job->constraints);
    free(job->tags);
    free(job->type);
    job->name = xstrdup(spec->name ? spec->name : "");
    job->type = xstrdup(spec->type ? spec->type : "shell");
    job->queue = xstrdup(spec->queue ? spec->queue : "default");
    job->constraints = xstrdup(spec->constraints ? spec->constraints : "");
    job->tags = xstrdup(spec->tags ? spec->tags : "");
    job->priority = spec->priority;
    job->overlap = spec->overlap;
    job->misfire = spec->misfire;
    job->catch_up_window_ms = spec->catch_up_window_ms;
    job->max_concurrency = spec->max_concurrency;
    job->timeout_ms = spec->timeout_ms;
    job->retry = spec->retry;
    job->sla_start_ms = spec->sla_start_ms;
    job->sla_finish_ms = spec->sla_finish_ms;
    alert_rules_clear(job->alerts, job->nalerts);
    job->alerts = spec->nalerts ? xcalloc(spec->nalerts, sizeof *job->alerts) : NULL;
    job->nalerts = spec->nalerts;
    for (size_t i = 0; i < spec->nalerts; i++) {
        store_alert_rule_from_spec(&job->alerts[i], &spec->alerts[i]);
        job->alerts[i].pos = (int)i;
    }
    free(job->deps);
    job->ndeps = spec->ndeps;
    job->deps = spec->ndeps ? xcalloc(spec->ndeps, sizeof *job->deps) : NULL;
    for (size_t i = 0; i < spec->ndeps; i++) {
        snprintf(job->deps[i].job_id, sizeof job->deps[i].job_id, "%s", spec->deps[i].job);
        job->deps[i].cond = spec->deps[i].cond;
    }
    job->array_count = spec->array_count;
    job->array_parallel = spec->array_parallel;
    job->bad_dep = -1;
}

void store_workflow_from_spec(store_job_t *wf, store_job_t *tasks, const struct wfspec *spec)
{
    free(wf->name);
    free(wf->queue);
    free(wf->constraints);
    free(wf->tags);
    wf->name = xstrdup(spec->name);
    wf->queue = xstrdup("default");
    wf->constraints = xstrdup("");
    wf->tags = xstrdup(spec->tags ? spec->tags : "");
    wf->overlap = spec->overlap;
    wf->misfire = spec->misfire;
    wf->catch_up_window_ms = spec->catch_up_window_ms;
    wf->max_active = spec->max_active_runs;
    wf->kind = JOB_KIND_WORKFLOW;
    /* A workflow's own run is never claimed: its retry policy is moot. */
    wf->retry =
        (retry_policy_t){.max_attempts = 1, .initial_ms = 1000, .max_ms = 1000, .multiplier = 1.0};
    for (size_t i = 0; i < spec->ntasks; i++) {
        const wf_task_t *t = &spec->tasks[i];
        store_job_t *j = &tasks[i];
        store_job_from_spec(j, &t->job);
        j->kind = JOB_KIND_TASK;
        j->deps_rule = t->rule;
        free(j->deps);
        j->ndeps = t->ndeps;
        j->deps = t->ndeps ? xcalloc(t->ndeps, sizeof *j->deps) : NULL;
        for (size_t k = 0; k < t->ndeps; k++) {
            j->deps[k].task = t->up[k];
            j->deps[k].cond = DEP_TASK;
        }
    }
}

void store_job_clear(store_job_t *job)
{
    if (!job) return;
    free(job->ns);
    free(job->owner);
    free(job->name);
    free(job->queue);
    free(job->spec_json);
    free(job->constraints);
    free(job->tags);
    free(job->type);
    alert_rules_clear(job->alerts, job->nalerts);
    free(job->deps);
    memset(job, 0, sizeof *job);
}

void store_schedule_clear(store_schedule_t *s)
{
    if (!s) return;
    free(s->expr);
    free(s->timezone);
    memset(s, 0, sizeof *s);
}

void store_run_clear(store_run_t *r)
{
    if (!r) return;
    free(r->queue);
    free(r->reason);
    memset(r, 0, sizeof *r);
}

void store_miss_clear(store_miss_t *m)
{
    if (!m) return;
    free(m->reason);
    memset(m, 0, sizeof *m);
}

void store_attempt_clear(store_attempt_t *a)
{
    if (!a) return;
    free(a->reason);
    free(a->result);
    memset(a, 0, sizeof *a);
}

void store_checkpoint_clear(store_checkpoint_t *c)
{
    if (!c) return;
    free(c->data);
    memset(c, 0, sizeof *c);
}

void store_worker_clear(store_worker_t *w)
{
    if (!w) return;
    free(w->name);
    free(w->host);
    free(w->labels);
    free(w->queues);
    free(w->owner);
    free(w->ns);
    free(w->types);
    for (size_t i = 0; w->plugins && i < w->nplugins; i++)
        store_plugin_type_clear(&w->plugins[i]);
    free(w->plugins);
    memset(w, 0, sizeof *w);
}

void store_claimed_clear(store_claimed_t *c)
{
    if (!c) return;
    store_run_clear(&c->run);
    free(c->spec_json);
    store_checkpoint_clear(&c->checkpoint);
    free(c->upstream_results);
    memset(c, 0, sizeof *c);
}

void store_log_chunk_clear(store_log_chunk_t *c)
{
    if (!c) return;
    free(c->data);
    memset(c, 0, sizeof *c);
}

void store_token_clear(store_token_t *t)
{
    if (!t) return;
    free(t->name);
    free(t->ns);
    free(t->user);
    memset(t, 0, sizeof *t);
}

void store_user_clear(store_user_t *u)
{
    if (!u) return;
    free(u->name);
    if (u->pwhash) memset(u->pwhash, 0, strlen(u->pwhash));
    free(u->pwhash);
    free(u->namespaces);
    memset(u, 0, sizeof *u);
}

void store_audit_clear(store_audit_t *a)
{
    if (!a) return;
    free(a->actor);
    free(a->role);
    free(a->method);
    free(a->route);
    free(a->target);
    free(a->ns);
    free(a->source);
    memset(a, 0, sizeof *a);
}

/* ---- backend-neutral internals ----------------------------------------- */

/* Cursors are "<ms>.<id>": opaque to clients by contract, readable to us
 * when debugging. The id part makes the key total even when many rows share
 * a millisecond. */
char *store__cursor_encode(int64_t ms, const char *id)
{
    return xasprintf("%" PRId64 ".%s", ms, id);
}

int store__cursor_decode(const char *cursor, int64_t *ms, char id[SKED_ID_LEN])
{
    char *end = NULL;
    if (!cursor || !*cursor) return SKED_EINVAL;
    long long v = strtoll(cursor, &end, 10);
    if (end == cursor || *end != '.') return SKED_EINVAL;
    const char *p = end + 1;
    size_t len = strlen(p);
    if (len == 0 || len >= SKED_ID_LEN || !id_valid(p)) return SKED_EINVAL;
    memcpy(id, p, len + 1);
    *ms = (int64_t)v;
    return 0;
}

/* 1 if the comma-separated list contains item exactly (item has no comma). */
static bool list_has(const char *list, const char *item, size_t ilen)
{
    const char *p = list;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == ilen && memcmp(p, item, ilen) == 0) return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

bool store__type_runs(const char *types, const char *type)
{
    if (!strcmp(type, "shell") || !strcmp(type, "http")) return true;
    size_t n = strlen(type);
    for (const char *p = types ? strstr(types, type) : NULL; p; p = strstr(p + 1, type))
        if (p > types && p[-1] == ',' && p[n] == ',') return true;
    return false;
}

bool store__labels_satisfy(const char *labels, const char *constraints)
{
    const char *p = constraints;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0 && !list_has(labels ? labels : "", p, len)) return false;
        p = comma ? comma + 1 : NULL;
    }
    return true;
}

bool store__listed(const char *list, const char *item)
{
    return list_has(list ? list : "", item, strlen(item));
}

double store__jitter_unit(void)
{
    /* 30 bits of resolution: plenty for a delay of at most a few hours. */
    return (double)randombytes_uniform(1u << 30) / (double)(1u << 30);
}

int64_t store__fence_new(void)
{
    uint64_t v = 0;
    do
        randombytes_buf(&v, sizeof v);
    while ((v >> 11) == 0);
    return (int64_t)(v >> 11); /* 53 bits: exact in every JSON parser, positive in SQL */
}

bool store__owner_ok(const char *owner, const char *worker_owner)
{
    return !owner || !worker_owner || !*worker_owner || strcmp(owner, worker_owner) == 0;
}

const char *store__not_started_reason(bool refused)
{
    return refused ? "not started: the worker refused it (its lease was over on arrival)"
                   : "not started: the worker never confirmed it";
}

int64_t store__effective_priority(int priority, int64_t not_before_ms, int64_t now_ms)
{
    int64_t waited = now_ms > not_before_ms ? (now_ms - not_before_ms) / 60000 : 0;
    if (waited > STORE__AGING_CAP) waited = STORE__AGING_CAP;
    return (int64_t)priority + waited;
}

/* ---- verbs -------------------------------------------------------------- */

static bool limit_ok(int limit)
{
    return limit >= 1 && limit <= 1000;
}

int store_job_create(store_t *st, store_job_t *job, store_schedule_t *scheds, size_t nscheds,
                     bool run_now, const char *idem_key, const store_audit_t *audit, int64_t now_ms)
{
    if (!job || !job->name || !*job->name || (nscheds && !scheds)) return SKED_EINVAL;
    return v_job_create(st, job, scheds, nscheds, run_now, idem_key, audit, now_ms);
}

int store_job_create_batch(store_t *st, store_job_new_t *items, size_t n, const char *idem_key,
                           const store_audit_t *audit, int64_t now_ms, size_t *bad, char **earlier)
{
    if (earlier) *earlier = NULL;
    if (bad) *bad = 0;
    if (!items || n == 0 || n > STORE_BATCH_MAX) return SKED_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const store_job_new_t *it = &items[i];
        if (!it->job || !it->job->name || !*it->job->name || (it->nscheds && !it->scheds)) {
            if (bad) *bad = i;
            return SKED_EINVAL;
        }
    }
    return v_job_create_batch(st, items, n, idem_key, audit, now_ms, bad, earlier);
}

int store_job_get(store_t *st, const char *id, store_job_t *out, store_schedule_t **scheds,
                  size_t *nscheds)
{
    if (!id || !out || (scheds && !nscheds)) return SKED_EINVAL;
    return v_job_get(st, id, out, scheds, nscheds);
}

int store_job_list(store_t *st, const store_job_filter_t *f, store_job_t **out, size_t *n,
                   char **next_cursor)
{
    job_state_t js;
    *out = NULL;
    *n = 0;
    *next_cursor = NULL;
    if (!f || !limit_ok(f->limit) || !job_sort_name(f->sort)) return SKED_EINVAL;
    if (f->state && job_state_parse(f->state, &js) < 0) return SKED_EINVAL;
    return v_job_list(st, f, out, n, next_cursor); /* checks the cursor against the sort */
}

int store_job_update(store_t *st, store_job_t *job, int64_t expect_version,
                     store_schedule_t *scheds, size_t nscheds, const store_audit_t *audit,
                     int64_t now_ms)
{
    if (!job || !job->name || !*job->name || (nscheds && !scheds)) return SKED_EINVAL;
    return v_job_update(st, job, expect_version, scheds, nscheds, audit, now_ms);
}

int store_job_set_state(store_t *st, const char *id, job_state_t state, const store_audit_t *audit,
                        int64_t now_ms)
{
    if (!id || !job_state_name(state)) return SKED_EINVAL;
    return v_job_set_state(st, id, state, audit, now_ms);
}

int store_due_schedules(store_t *st, int64_t until_ms, int limit, store_due_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (limit < 1) return SKED_EINVAL;
    return v_due_schedules(st, until_ms, limit, out, n);
}

int store_fire(store_t *st, store_fire_t *items, size_t n, int64_t now_ms)
{
    if (n == 0) return 0;
    if (!items) return SKED_EINVAL;
    for (size_t i = 0; i < n; i++) {
        items[i].applied = 0;
        if (!items[i].schedule_id || (items[i].nruns && !items[i].runs)) return SKED_EINVAL;
        for (size_t j = 0; j < items[i].nruns; j++)
            if (items[i].runs[j].state != RUN_SCHEDULED && items[i].runs[j].state != RUN_SKIPPED)
                return SKED_EINVAL;
        const store_fire_miss_t *m = &items[i].miss;
        if (m->count < 0 || (m->count && (!m->reason || m->first_ms > m->last_ms)))
            return SKED_EINVAL;
    }
    return v_fire(st, items, n, now_ms);
}

int store_miss_list(store_t *st, const store_miss_filter_t *f, store_miss_t **out, size_t *n,
                    char **next_cursor)
{
    int64_t ms;
    char id[SKED_ID_LEN];
    *out = NULL;
    *n = 0;
    *next_cursor = NULL;
    if (!f || !f->job_id || !limit_ok(f->limit)) return SKED_EINVAL;
    if (f->cursor && store__cursor_decode(f->cursor, &ms, id) < 0) return SKED_EINVAL;
    return v_miss_list(st, f, out, n, next_cursor);
}

int store_run_trigger(store_t *st, const char *job_id, const store_audit_t *audit, int64_t now_ms,
                      char run_id[SKED_ID_LEN])
{
    if (!job_id || !run_id) return SKED_EINVAL;
    return v_run_trigger(st, job_id, audit, now_ms, run_id);
}

int store_next_claimable_ms(store_t *st, int64_t *out_ms)
{
    *out_ms = -1;
    int rc = v_next_claimable_ms(st, out_ms);
    if (rc < 0) *out_ms = -1;
    return rc;
}

int store_next_fire_ms(store_t *st, int64_t *out_ms)
{
    *out_ms = -1;
    int rc = v_next_fire_ms(st, out_ms);
    if (rc < 0) *out_ms = -1;
    return rc;
}

int store_run_get(store_t *st, const char *id, store_run_t *out, store_attempt_t **attempts,
                  size_t *nattempts)
{
    if (!id || !out || (attempts && !nattempts)) return SKED_EINVAL;
    return v_run_get(st, id, out, attempts, nattempts, NULL);
}

int store_run_get_detail(store_t *st, const char *id, store_run_t *out, store_attempt_t **attempts,
                         size_t *nattempts, store_checkpoint_t *cp)
{
    if (!id || !out || (attempts && !nattempts)) return SKED_EINVAL;
    return v_run_get(st, id, out, attempts, nattempts, cp);
}

int store_run_result(store_t *st, const char *id, char **json)
{
    if (json) *json = NULL;
    if (!id || !json) return SKED_EINVAL;
    return v_run_result(st, id, json);
}

/* A result or checkpoint the store takes: at most RESULTS_MAX_BYTES. */
static bool handoff_ok(const char *s)
{
    return !s || strlen(s) <= RESULTS_MAX_BYTES;
}

int store_run_list(store_t *st, const store_run_filter_t *f, store_run_t **out, size_t *n,
                   char **next_cursor)
{
    return store_run_list_in(st, f, NULL, out, n, next_cursor);
}

int store_run_list_in(store_t *st, const store_run_filter_t *f, const char *ns_in,
                      store_run_t **out, size_t *n, char **next_cursor)
{
    int64_t ms;
    char id[SKED_ID_LEN];
    run_state_t rs;
    *out = NULL;
    *n = 0;
    *next_cursor = NULL;
    if (!f || !limit_ok(f->limit)) return SKED_EINVAL;
    if (f->cursor && store__cursor_decode(f->cursor, &ms, id) < 0) return SKED_EINVAL;
    if (f->state && run_state_parse(f->state, &rs) < 0) return SKED_EINVAL;
    return v_run_list(st, f, ns_in, out, n, next_cursor);
}

int store_run_minutes(store_t *st, int64_t from_ms, int minutes, const char *ns_in,
                      store_run_minute_t *out)
{
    if (!out || minutes < 1 || minutes > 1440 || from_ms % 60000 != 0) return SKED_EINVAL;
    return v_run_minutes(st, from_ms, minutes, ns_in, out);
}

int store_workflow_put(store_t *st, store_job_t *wf, store_schedule_t *scheds, size_t nscheds,
                       store_job_t *tasks, size_t ntasks, int64_t expect_version,
                       const char *idem_key, const store_audit_t *audit, int64_t now_ms)
{
    if (!wf || !wf->name || !*wf->name || (nscheds && !scheds) || (ntasks && !tasks))
        return SKED_EINVAL;
    if (expect_version >= 0 && !wf->id[0]) return SKED_EINVAL;
    for (size_t i = 0; i < ntasks; i++) {
        if (!tasks[i].name || !*tasks[i].name) return SKED_EINVAL;
        for (size_t k = 0; k < tasks[i].ndeps; k++)
            if (tasks[i].deps[k].task >= ntasks || tasks[i].deps[k].task == i) return SKED_EINVAL;
    }
    return v_workflow_put(st, wf, scheds, nscheds, tasks, ntasks, expect_version, idem_key, audit,
                          now_ms);
}

int store_workflow_tasks(store_t *st, const char *workflow_id, store_job_t **out, size_t *n)
{
    if (!workflow_id || !out || !n) return SKED_EINVAL;
    return v_workflow_tasks(st, workflow_id, out, n);
}

void store_member_clear(store_member_t *m)
{
    if (!m) return;
    store_run_clear(&m->run);
    free(m->name);
    memset(m, 0, sizeof *m);
}

int store_group_get(store_t *st, const char *run_id, store_run_t *run, store_group_t *g,
                    store_member_t **members, size_t *n)
{
    if (!run_id || !run || !g || !members || !n) return SKED_EINVAL;
    return v_group_get(st, run_id, run, g, members, n);
}

int store_group_list(store_t *st, const char *job_id, const char *cursor, int limit,
                     store_grouped_t **out, size_t *n, char **next_cursor)
{
    int64_t ms;
    char id[SKED_ID_LEN];
    *out = NULL;
    *n = 0;
    *next_cursor = NULL;
    if (!job_id || !limit_ok(limit)) return SKED_EINVAL;
    if (cursor && store__cursor_decode(cursor, &ms, id) < 0) return SKED_EINVAL;
    return v_group_list(st, job_id, cursor, limit, out, n, next_cursor);
}

int store_group_retry(store_t *st, const char *group_id, const char *member_id, bool downstream,
                      const store_audit_t *audit, int64_t now_ms)
{
    if (!group_id || !member_id) return SKED_EINVAL;
    return v_group_retry(st, group_id, member_id, downstream, audit, now_ms);
}

int store_run_cancel(store_t *st, const char *id, const char *reason, const store_audit_t *audit,
                     int64_t now_ms)
{
    if (!id) return SKED_EINVAL;
    return v_run_cancel(st, id, reason, audit, now_ms);
}

int store_worker_register(store_t *st, store_worker_t *w, const store_audit_t *audit,
                          int64_t now_ms)
{
    if (!w || !w->name || !*w->name) return SKED_EINVAL;
    return v_worker_register(st, w, audit, now_ms);
}

void store_plugin_type_clear(store_plugin_type_t *p)
{
    if (!p) return;
    free(p->version);
    free(p->schema_json);
    memset(p, 0, sizeof *p);
}

int store_plugin_upsert(store_t *st, const store_plugin_type_t *p, size_t n, int64_t now_ms)
{
    if (n && !p) return SKED_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!p[i].type[0]) return SKED_EINVAL;
    if (n == 0) return 0;
    return v_plugin_upsert(st, p, n, now_ms);
}

int store_plugin_get(store_t *st, const char *type, store_plugin_type_t *out)
{
    if (!type || !out) return SKED_EINVAL;
    return v_plugin_get(st, type, out);
}

int store_plugin_list(store_t *st, store_plugin_type_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return v_plugin_list(st, out, n);
}

int store_worker_get(store_t *st, const char *id, store_worker_t *out)
{
    if (!id || !out) return SKED_EINVAL;
    return v_worker_get(st, id, out);
}

int store_worker_list(store_t *st, const char *cursor, int limit, store_worker_t **out, size_t *n,
                      char **next_cursor)
{
    *out = NULL;
    *n = 0;
    *next_cursor = NULL;
    /* A worker list's cursor is the id of the previous page's last worker
     * (see the backends' SQL): the key is (name, id), and a name is not
     * something to put in a URL as it is. */
    if (!limit_ok(limit) || (cursor && !id_valid(cursor))) return SKED_EINVAL;
    return v_worker_list(st, cursor, limit, out, n, next_cursor);
}

int store_worker_drain(store_t *st, const char *id, const char *owner, const store_audit_t *audit,
                       int64_t now_ms)
{
    if (!id) return SKED_EINVAL;
    return v_worker_set_state(st, id, owner, WORKER_DRAINING, audit, now_ms);
}

int store_worker_deregister(store_t *st, const char *id, const char *owner,
                            const store_audit_t *audit, int64_t now_ms)
{
    if (!id) return SKED_EINVAL;
    return v_worker_set_state(st, id, owner, WORKER_GONE, audit, now_ms);
}

int store_claim(store_t *st, const char *worker_id, const char *owner, int max, int64_t confirm_ms,
                int64_t now_ms, store_claimed_t **out, size_t *n)
{
    return store_claim_ahead(st, worker_id, owner, max, confirm_ms, 0, now_ms, out, n);
}

int store_claim_ahead(store_t *st, const char *worker_id, const char *owner, int max,
                      int64_t confirm_ms, int64_t ahead_ms, int64_t now_ms, store_claimed_t **out,
                      size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!worker_id || max < 0 || confirm_ms <= 0 || ahead_ms < 0 || ahead_ms > STORE_AHEAD_MAX_MS)
        return SKED_EINVAL;
    if (max > 1000) max = 1000;
    return v_claim(st, worker_id, owner, max, confirm_ms, ahead_ms, now_ms, out, n);
}

int store_heartbeat(store_t *st, const char *worker_id, const char *owner, store_held_t *held,
                    size_t nheld, int64_t lease_ms, int64_t now_ms, bool *draining)
{
    bool dummy;
    if (!worker_id || (nheld && !held) || lease_ms <= 0) return SKED_EINVAL;
    for (size_t i = 0; i < nheld; i++) {
        if (!held[i].run_id || !handoff_ok(held[i].checkpoint)) return SKED_EINVAL;
        held[i].keep = false;
    }
    return v_heartbeat(st, worker_id, owner, held, nheld, lease_ms, now_ms,
                       draining ? draining : &dummy);
}

int store_complete(store_t *st, const char *run_id, int attempt, int64_t fence, const char *owner,
                   const store_result_t *res, int64_t now_ms)
{
    if (!run_id || !res || attempt < 1 || (unsigned)res->outcome >= ATTEMPT_OUTCOME_COUNT ||
        res->outcome == ATTEMPT_LOST || !handoff_ok(res->result) || !handoff_ok(res->checkpoint))
        return SKED_EINVAL;
    return v_complete(st, run_id, attempt, fence, owner, res, now_ms);
}

int store_complete_batch(store_t *st, const char *worker_id, const char *owner,
                         store_completion_t *items, size_t n, int64_t now_ms)
{
    return store_complete_claim(st, worker_id, owner, items, n, 0, 1, 0, now_ms, NULL, NULL);
}

int store_complete_claim(store_t *st, const char *worker_id, const char *owner,
                         store_completion_t *items, size_t n, int claim_max, int64_t confirm_ms,
                         int64_t ahead_ms, int64_t now_ms, store_claimed_t **claimed,
                         size_t *nclaimed)
{
    if (claimed) {
        *claimed = NULL;
        *nclaimed = 0;
    }
    if (!worker_id || (n && !items) || n > STORE_COMPLETE_BATCH_MAX || claim_max < 0 ||
        ahead_ms < 0 || ahead_ms > STORE_AHEAD_MAX_MS ||
        (claim_max > 0 && (!claimed || !nclaimed || confirm_ms <= 0)))
        return SKED_EINVAL;
    if (claim_max > 1000) claim_max = 1000;
    for (size_t i = 0; i < n; i++) {
        const store_result_t *res = &items[i].res;
        items[i].rc = 0;
        if (!items[i].run_id || items[i].attempt < 1 ||
            (unsigned)res->outcome >= ATTEMPT_OUTCOME_COUNT || res->outcome == ATTEMPT_LOST ||
            !handoff_ok(res->result) || !handoff_ok(res->checkpoint))
            items[i].rc = SKED_EINVAL;
    }
    return v_complete_batch(st, worker_id, owner, items, n, claim_max, confirm_ms, ahead_ms, now_ms,
                            claimed, nclaimed);
}

int store_reap(store_t *st, int64_t grace_ms, int64_t heartbeat_timeout_ms, int64_t now_ms)
{
    if (grace_ms < 0 || heartbeat_timeout_ms < 0) return SKED_EINVAL;
    return v_reap(st, grace_ms, heartbeat_timeout_ms, now_ms);
}

int store_log_append(store_t *st, const char *run_id, int attempt, int64_t fence, const char *owner,
                     int64_t seq, int stream, const char *data, size_t len, int64_t now_ms)
{
    if (!run_id || attempt < 1 || seq < 0 || (stream != 1 && stream != 2) || (len && !data))
        return SKED_EINVAL;
    return v_log_append(st, run_id, attempt, fence, owner, seq, stream, data, len, now_ms);
}

int store_log_read(store_t *st, const char *run_id, int attempt, int after_attempt,
                   int64_t after_seq, int limit, store_log_chunk_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!run_id || attempt < 0 || limit < 1) return SKED_EINVAL;
    if (limit > 10000) limit = 10000;
    return v_log_read(st, run_id, attempt, after_attempt, after_seq, limit, out, n);
}

int store_prune(store_t *st, int64_t older_than_ms)
{
    return v_prune(st, older_than_ms);
}

int store_events_read(store_t *st, int64_t after_id, int limit, store_event_t **out, size_t *n,
                      bool *pending)
{
    *out = NULL;
    *n = 0;
    *pending = false;
    if (after_id < 0 || limit < 1 || limit > 1000) return SKED_EINVAL;
    return v_events_read(st, after_id, limit, out, n, pending);
}

int store_events_bounds(store_t *st, int64_t *pruned_through, int64_t *last_id)
{
    *pruned_through = *last_id = 0;
    return v_events_bounds(st, pruned_through, last_id);
}

int store_events_prune(store_t *st, int64_t older_than_ms)
{
    return v_events_prune(st, older_than_ms);
}

int store_token_create(store_t *st, store_token_t *t, const char *hash_hex, int64_t now_ms)
{
    return store_token_issue(st, t, hash_hex, NULL, now_ms);
}

/* An audit entry must name at least what was done. */
static bool audit_ok(const store_audit_t *a)
{
    return a->actor && a->method && a->route;
}

int store_token_issue(store_t *st, store_token_t *t, const char *hash_hex,
                      const store_audit_t *audit, int64_t now_ms)
{
    if (!t || !t->name || !hash_hex || !*hash_hex || !token_role_name(t->role)) return SKED_EINVAL;
    if (audit && !audit_ok(audit)) return SKED_EINVAL;
    return v_token_create(st, t, hash_hex, audit, now_ms);
}

int store_token_get(store_t *st, const char *id, store_token_t *out)
{
    if (!id || !out) return SKED_EINVAL;
    memset(out, 0, sizeof *out);
    return v_token_get(st, id, out);
}

int store_token_list(store_t *st, const store_token_filter_t *f, store_token_t **out, size_t *n,
                     char **next_cursor)
{
    int64_t ms;
    char id[SKED_ID_LEN];
    *out = NULL;
    *n = 0;
    *next_cursor = NULL;
    if (!f || !limit_ok(f->limit)) return SKED_EINVAL;
    if (f->cursor && store__cursor_decode(f->cursor, &ms, id) < 0) return SKED_EINVAL;
    return v_token_list(st, f, out, n, next_cursor);
}

int store_token_revoke(store_t *st, const char *id, const store_audit_t *audit, int64_t now_ms)
{
    if (!id || (audit && !audit_ok(audit))) return SKED_EINVAL;
    return v_token_revoke(st, id, audit, now_ms);
}

int store_token_touch(store_t *st, const char *id, int64_t now_ms)
{
    if (!id) return SKED_EINVAL;
    return v_token_touch(st, id, now_ms);
}

static bool user_ok(const store_user_t *u)
{
    return u && u->name && *u->name && u->pwhash && u->namespaces && token_role_name(u->role);
}

int store_user_create(store_t *st, const store_user_t *u, const store_audit_t *audit,
                      int64_t now_ms)
{
    if (!user_ok(u) || (audit && !audit_ok(audit))) return SKED_EINVAL;
    return v_user_create(st, u, audit, now_ms);
}

int store_user_get(store_t *st, const char *name, store_user_t *out)
{
    if (!name || !out) return SKED_EINVAL;
    memset(out, 0, sizeof *out);
    return v_user_get(st, name, out);
}

int store_user_list(store_t *st, store_user_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    return v_user_list(st, out, n);
}

int store_user_update(store_t *st, const store_user_t *u, const store_audit_t *audit,
                      int64_t now_ms)
{
    if (!user_ok(u) || (audit && !audit_ok(audit))) return SKED_EINVAL;
    return v_user_update(st, u, audit, now_ms);
}

int store_user_delete(store_t *st, const char *name, const store_audit_t *audit, int64_t now_ms)
{
    if (!name || (audit && !audit_ok(audit))) return SKED_EINVAL;
    return v_user_delete(st, name, audit, now_ms);
}

int store_audit_append(store_t *st, const store_audit_t *a)
{
    if (!a || !audit_ok(a)) return SKED_EINVAL;
    return v_audit_append(st, a);
}

int store_audit_list(store_t *st, const store_audit_filter_t *f, store_audit_t **out, size_t *n,
                     char **next_cursor)
{
    int64_t ms;
    char id[SKED_ID_LEN];
    *out = NULL;
    *n = 0;
    *next_cursor = NULL;
    if (!f || !limit_ok(f->limit)) return SKED_EINVAL;
    if (f->cursor && store__cursor_decode(f->cursor, &ms, id) < 0) return SKED_EINVAL;
    return v_audit_list(st, f, out, n, next_cursor);
}

int store_job_scope(store_t *st, const char *id, char **ns, char **owner)
{
    *ns = NULL;
    if (owner) *owner = NULL;
    if (!id) return SKED_EINVAL;
    return v_job_scope(st, id, ns, owner);
}

int store_token_lookup(store_t *st, const char *hash_hex, int64_t now_ms, store_token_t *out)
{
    if (!hash_hex || !out) return SKED_EINVAL;
    return v_token_lookup(st, hash_hex, now_ms, out);
}

int store_token_count(store_t *st, int64_t *count)
{
    if (!count) return SKED_EINVAL;
    return v_token_count(st, count);
}

int store__set_schema_version(store_t *st, int version)
{
    return v_set_schema_version(st, version);
}

/* ---- alerts ------------------------------------------------------------ */

void store_alert_rule_from_spec(store_alert_rule_t *r, const alert_rule_spec_t *spec)
{
    alert_rule_spec_t *d = &r->def;
    alert_rule_spec_clear(d);
    d->name = xstrdup(spec->name ? spec->name : "");
    d->conds = spec->conds;
    d->scope_ns = xstrdup(spec->scope_ns ? spec->scope_ns : "");
    d->scope_queue = xstrdup(spec->scope_queue ? spec->scope_queue : "");
    d->scope_job = xstrdup(spec->scope_job ? spec->scope_job : "");
    d->scope_tag = xstrdup(spec->scope_tag ? spec->scope_tag : "");
    d->params = spec->params;
    d->nchannels = spec->nchannels;
    d->channels = spec->nchannels ? xcalloc(spec->nchannels, sizeof *d->channels) : NULL;
    for (size_t i = 0; i < spec->nchannels; i++) {
        d->channels[i].kind = spec->channels[i].kind;
        d->channels[i].target = xstrdup(spec->channels[i].target ? spec->channels[i].target : "");
        d->channels[i].secret = spec->channels[i].secret ? xstrdup(spec->channels[i].secret) : NULL;
    }
}

void store_alert_rule_clear(store_alert_rule_t *r)
{
    if (!r) return;
    alert_rule_spec_clear(&r->def);
    memset(r, 0, sizeof *r);
}

void store_alert_clear(store_alert_t *a)
{
    if (!a) return;
    free(a->subject);
    free(a->name);
    free(a->ns);
    free(a->detail);
    free(a->resolve_detail);
    free(a->acked_by);
    memset(a, 0, sizeof *a);
}

void store_alert_delivery_clear(store_alert_delivery_t *d)
{
    if (!d) return;
    free(d->target);
    free(d->last_error);
    memset(d, 0, sizeof *d);
}

void store_outbox_item_clear(store_outbox_item_t *it)
{
    if (!it) return;
    store_alert_delivery_clear(&it->d);
    if (it->secret) memset(it->secret, 0, strlen(it->secret));
    free(it->secret);
    store_alert_clear(&it->alert);
    memset(it, 0, sizeof *it);
}

static bool rule_ok(const store_alert_rule_t *r)
{
    const alert_rule_spec_t *d = r ? &r->def : NULL;
    if (!d || !d->name || !*d->name || !d->conds || !d->nchannels || !d->channels) return false;
    for (size_t i = 0; i < d->nchannels; i++)
        if (!d->channels[i].target) return false;
    return true;
}

int store_alert_rule_create(store_t *st, store_alert_rule_t *r, const store_audit_t *audit,
                            int64_t now_ms)
{
    if (!rule_ok(r)) return SKED_EINVAL;
    return v_alert_rule_create(st, r, audit, now_ms);
}

int store_alert_rule_get(store_t *st, const char *id, store_alert_rule_t *out)
{
    if (!id || !out) return SKED_EINVAL;
    return v_alert_rule_get(st, id, out);
}

int store_alert_rule_update(store_t *st, store_alert_rule_t *r, int64_t expect_version,
                            const store_audit_t *audit, int64_t now_ms)
{
    if (!rule_ok(r) || !*r->id) return SKED_EINVAL;
    return v_alert_rule_update(st, r, expect_version, audit, now_ms);
}

int store_alert_rule_delete(store_t *st, const char *id, const store_audit_t *audit, int64_t now_ms)
{
    if (!id) return SKED_EINVAL;
    return v_alert_rule_delete(st, id, audit, now_ms);
}

int store_alert_rule_list(store_t *st, const char *cursor, int limit, store_alert_rule_t **out,
                          size_t *n, char **next_cursor)
{
    int64_t ms;
    char id[SKED_ID_LEN];
    if (!out || !n || !limit_ok(limit)) return SKED_EINVAL;
    if (cursor && store__cursor_decode(cursor, &ms, id) != 0) return SKED_EINVAL;
    return v_alert_rule_list(st, cursor, limit, out, n, next_cursor);
}

int store_alert_list(store_t *st, const store_alert_filter_t *f, store_alert_t **out, size_t *n,
                     char **next_cursor)
{
    int64_t ms;
    char id[SKED_ID_LEN];
    if (!f || !out || !n || !limit_ok(f->limit)) return SKED_EINVAL;
    if (f->cursor && store__cursor_decode(f->cursor, &ms, id) != 0) return SKED_EINVAL;
    return v_alert_list(st, f, out, n, next_cursor);
}

int store_alert_get(store_t *st, const char *id, store_alert_t *out,
                    store_alert_delivery_t **deliveries, size_t *ndeliveries)
{
    if (!id || !out || (deliveries && !ndeliveries)) return SKED_EINVAL;
    return v_alert_get(st, id, out, deliveries, ndeliveries);
}

int store_alert_ack(store_t *st, const char *id, const char *who, const store_audit_t *audit,
                    int64_t now_ms)
{
    if (!id || !who) return SKED_EINVAL;
    return v_alert_ack(st, id, who, audit, now_ms);
}

int store_outbox_claim(store_t *st, const char *owner, int max, int64_t lease_ms, int64_t now_ms,
                       store_outbox_item_t **out, size_t *n)
{
    if (!owner || max < 1 || max > 1000 || lease_ms <= 0 || !out || !n) return SKED_EINVAL;
    return v_outbox_claim(st, owner, max, lease_ms, now_ms, out, n);
}

int store_outbox_settle(store_t *st, const char *id, int64_t claim, bool sent, const char *error,
                        int64_t retry_ms, int64_t now_ms)
{
    if (!id) return SKED_EINVAL;
    return v_outbox_settle(st, id, claim, sent, error, retry_ms, now_ms);
}

int store_outbox_next_due_ms(store_t *st, int64_t *out_ms)
{
    if (!out_ms) return SKED_EINVAL;
    return v_outbox_next_due_ms(st, out_ms);
}

int store_alert_sweep(store_t *st, int64_t now_ms, int *changed)
{
    return v_alert_sweep(st, now_ms, changed);
}

int store_explain(store_t *st, const char *job_id, const char *run_id, int64_t live_since_ms,
                  int64_t now_ms, store_explain_t *out)
{
    if (!out) return SKED_EINVAL;
    memset(out, 0, sizeof *out);
    if (!job_id && !run_id) return SKED_EINVAL;
    return v_explain(st, job_id, run_id, live_since_ms, now_ms, out);
}

static void explain_run_clear(store_explain_run_t *r)
{
    store_run_clear(&r->run);
    store_attempt_clear(&r->last);
}

void store_explain_clear(store_explain_t *e)
{
    if (!e) return;
    store_job_clear(&e->job);
    for (size_t i = 0; i < e->nscheds; i++)
        store_schedule_clear(&e->scheds[i]);
    free(e->scheds);
    explain_run_clear(&e->target);
    for (size_t i = 0; i < e->nruns; i++)
        explain_run_clear(&e->runs[i]);
    free(e->runs);
    for (size_t i = 0; i < e->nworkers; i++)
        store_worker_clear(&e->workers[i]);
    free(e->workers);
    memset(e, 0, sizeof *e);
}
