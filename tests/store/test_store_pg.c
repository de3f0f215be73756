/*
 * Cluster tests of the PostgreSQL store backend: what only PostgreSQL does
 * and the backend-neutral suite (test_store.c) cannot check. Several store
 * handles on one database stand in for several sked servers:
 *
 *   - a run submitted through one handle wakes a claim waiting on another
 *     (LISTEN/NOTIFY), also after the listener's connection was killed;
 *   - pooled connections killed by the database are replaced transparently;
 *   - servers starting together migrate the schema exactly once;
 *   - per-job max_concurrency holds when several servers claim at once;
 *   - reapers and pruners on several servers share the work exactly;
 *   - sked_clock=db takes times from the database, not the caller;
 *   - the run graph decides once across servers: a join whose two
 *     upstreams end at the same moment on two servers is released (or
 *     skipped) exactly once, and a group run whose two last members end
 *     at once ends exactly once;
 *   - bad URLs are refused with a clear message that never shows a password.
 *
 * Run it under tests/store/pg_harness.sh, which provides a throwaway server
 * in SKED_TEST_PG_URL. Each test works in its own schema (sked_schema=...),
 * so tests never see each other's rows. The test itself talks SQL to the
 * server only to inject faults (pg_terminate_backend) and to inspect.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "store/store.h"

#include "run_events.h"
#include "store/store_int.h" /* store__schema_version */

#define T0       INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define LEASE_MS INT64_C(30000)
#define WAIT_S   15 /* bound on any wait for a wake-up */

static const char *g_base; /* $SKED_TEST_PG_URL */

/* ---- helpers ------------------------------------------------------------------ */

/* A URL for a schema of its own, plus extra parameters ("" or "&k=v"). New. */
static char *schema_url(const char *extra)
{
    static unsigned seq;
    return xasprintf("%s%ssked_schema=pgt%d_%u%s", g_base, strchr(g_base, '?') ? "&" : "?",
                     (int)getpid(), ++seq, extra);
}

static store_t *open_ok(const char *url)
{
    store_t *st = NULL;
    char *err = NULL;
    int rc = store_open(url, &st, &err);
    if (rc != 0) fail_msg("store_open: %s: %s", sked_errname(rc), err ? err : "");
    free(err);
    return st;
}

/* A plain libpq connection to the test database, for fault injection. */
static PGconn *admin_conn(void)
{
    PGconn *db = PQconnectdb(g_base);
    if (PQstatus(db) != CONNECTION_OK) fail_msg("admin connect: %s", PQerrorMessage(db));
    return db;
}

/* Runs sql and returns the first value of the first row as an integer. */
static long long admin_int(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void mkjob(store_job_t *j, const char *name)
{
    memset(j, 0, sizeof *j);
    j->name = xstrdup(name);
    j->queue = xstrdup("default");
    j->spec_json = xasprintf("{\"name\":\"%s\"}", name);
    j->constraints = xstrdup("");
    j->tags = xstrdup("");
    j->owner = xstrdup("admin");
    j->retry = retry_policy_default();
}

static void new_worker(store_t *st, const char *name, char id[SKED_ID_LEN])
{
    store_worker_t w = {0};
    w.name = xstrdup(name);
    w.host = xstrdup("localhost");
    w.queues = xstrdup("default");
    w.labels = xstrdup("");
    w.slots = 8;
    assert_int_equal(store_worker_register(st, &w, NULL, T0), 0);
    memcpy(id, w.id, SKED_ID_LEN);
    store_worker_clear(&w);
}

/* Counts wake-ups delivered to a handle's notify hook; waitable. */
struct wakes {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
};

static void on_wake(void *arg)
{
    struct wakes *w = arg;
    pthread_mutex_lock(&w->mu);
    w->n++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static int wakes_get(struct wakes *w)
{
    pthread_mutex_lock(&w->mu);
    int n = w->n;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* Waits until more than `seen` wake-ups arrived, at most WAIT_S seconds.
 * Returns true if they did. */
static bool wakes_wait(struct wakes *w, int seen)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_S;
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    while (w->n <= seen && rc == 0)
        rc = pthread_cond_timedwait(&w->cv, &w->mu, &deadline);
    bool ok = w->n > seen;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

static void wakes_init(struct wakes *w)
{
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->n = 0;
}

static void wakes_fini(struct wakes *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

/* Kills the backends of our store connections: the listeners (their last
 * statement was LISTEN) or the pooled ones (all others of application sked).
 * Returns how many were killed. */
static long long kill_backends(PGconn *admin, bool listeners)
{
    char *sql = xasprintf("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                          " AND application_name = 'sked' AND query %s 'LISTEN%%'",
                          listeners ? "LIKE" : "NOT LIKE");
    long long n = admin_int(admin, sql);
    free(sql);
    return n;
}

/* ---- wake-ups across servers ------------------------------------------------------ */

static void test_wakeup_across_servers(void **state)
{
    (void)state;
    char *url = schema_url("");
    store_t *a = open_ok(url), *b = open_ok(url);
    struct wakes wa, wb;
    wakes_init(&wa);
    wakes_init(&wb);
    store_set_notify(a, on_wake, &wa);
    store_set_notify(b, on_wake, &wb);

    store_job_t j;
    mkjob(&j, "cross");
    assert_int_equal(store_job_create(a, &j, NULL, 0, false, NULL, NULL, T0), 0);
    int seen_b = wakes_get(&wb);
    char rid[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(a, j.id, NULL, T0, rid), 0);
    /* Server A's own hook ran before the trigger returned ... */
    assert_true(wakes_get(&wa) >= 1);
    /* ... and server B hears of it through LISTEN/NOTIFY. */
    assert_true(wakes_wait(&wb, seen_b));
    /* Which is what a waiting claim on B needs: the run is there for it. */
    char wid[SKED_ID_LEN];
    new_worker(b, "on-b", wid);
    store_claimed_t *cl = NULL;
    size_t n = 0;
    assert_int_equal(store_claim(b, wid, NULL, 1, LEASE_MS, T0, &cl, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(cl[0].run.id, rid);
    int seen_a = wakes_get(&wa);
    /* The other way round: B completes, A hears it (log followers). */
    store_result_t ok = {ATTEMPT_SUCCEEDED, 0, 0, NULL, NULL, NULL};
    assert_int_equal(store_complete(b, rid, 1, cl[0].run.fence, NULL, &ok, T0 + 1), 0);
    assert_true(wakes_wait(&wa, seen_a));
    store_claimed_clear(&cl[0]);
    free(cl);

    store_set_notify(a, NULL, NULL);
    store_set_notify(b, NULL, NULL);
    store_job_clear(&j);
    store_close(a);
    store_close(b);
    wakes_fini(&wa);
    wakes_fini(&wb);
    free(url);
}

static void test_listener_reconnects(void **state)
{
    (void)state;
    char *url = schema_url("");
    store_t *a = open_ok(url), *b = open_ok(url);
    PGconn *admin = admin_conn();
    struct wakes wb;
    wakes_init(&wb);
    store_set_notify(b, on_wake, &wb);

    /* Cut both listeners off. Wake-ups sent while a listener is away are
     * lost, so on reconnecting it wakes its server once to look again. */
    int seen = wakes_get(&wb);
    assert_true(kill_backends(admin, true) >= 2);
    assert_true(wakes_wait(&wb, seen));

    /* And it listens again: wait until B's listener is back (its wake-up
     * above proves it), then a trigger on A reaches B. */
    store_job_t j;
    mkjob(&j, "after-cut");
    assert_int_equal(store_job_create(a, &j, NULL, 0, false, NULL, NULL, T0), 0);
    seen = wakes_get(&wb);
    char rid[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(a, j.id, NULL, T0, rid), 0);
    assert_true(wakes_wait(&wb, seen));

    store_set_notify(b, NULL, NULL);
    store_job_clear(&j);
    store_close(a);
    store_close(b);
    PQfinish(admin);
    wakes_fini(&wb);
    free(url);
}

/* ---- the event log's final horizon ------------------------------------------------ */

/* Runs sql on db; fails the test unless it succeeds. */
static void admin_ok(PGconn *db, const char *sql)
{
    PGresult *r = PQexec(db, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

/* The types of the events after *after, space-separated; *after moves on
 * and *pending says whether newer, not yet final, events exist. New. */
static char *read_events(store_t *st, int64_t *after, bool *pending)
{
    store_event_t *v = NULL;
    size_t n = 0;
    assert_int_equal(store_events_read(st, *after, 100, &v, &n, pending), 0);
    char *out = xstrdup("");
    for (size_t i = 0; i < n; i++) {
        char *t = xasprintf("%s%s%s", out, *out ? " " : "", v[i].type);
        free(out);
        out = t;
        *after = v[i].id;
        store_event_clear(&v[i]);
    }
    free(v);
    return out;
}

/* PostgreSQL draws event ids before commit, so id N+1 can commit while N's
 * transaction still runs. A reader that resumes after the last id it saw
 * would then never see N: it must be served nothing past N until N's
 * transaction ends, then N and N+1 in order. A transaction that rolls back
 * leaves a hole, which must not stall the reader. */
static void test_events_never_skip_an_uncommitted_id(void **state)
{
    (void)state;
    char *url = schema_url("");
    store_t *st = open_ok(url), *other = open_ok(url);
    char wid[SKED_ID_LEN];
    new_worker(st, "w", wid);
    int64_t after = 0;
    bool pending = true;
    char *got = read_events(st, &after, &pending);
    assert_string_equal(got, "worker.registered");
    free(got);
    assert_false(pending);

    const char *schema = strstr(url, "sked_schema=") + strlen("sked_schema=");
    PGconn *admin = admin_conn();
    char *sql = xasprintf("SET search_path TO %s", schema);
    admin_ok(admin, sql);
    free(sql);
    char *drain = xasprintf("UPDATE workers SET state = 1 WHERE id = '%s'", wid);
    char *undrain = xasprintf("UPDATE workers SET state = 0 WHERE id = '%s'", wid);

    for (int round = 0; round < 2; round++) {
        bool commit = round == 0;
        /* A transaction draws the next id (its worker changes) and stays open. */
        admin_ok(admin, "BEGIN");
        admin_ok(admin, commit ? drain : undrain);
        /* Another server commits a change with a higher id meanwhile. */
        store_job_t j;
        mkjob(&j, commit ? "later" : "later2");
        assert_int_equal(store_job_create(other, &j, NULL, 0, false, NULL, NULL, T0), 0);
        store_job_clear(&j);
        for (int i = 0; i < 3; i++) {
            got = read_events(st, &after, &pending);
            assert_string_equal(got, ""); /* not the later id: it would skip the open one */
            free(got);
            assert_true(pending);
        }
        admin_ok(admin, commit ? "COMMIT" : "ROLLBACK");
        got = read_events(st, &after, &pending);
        assert_string_equal(got, commit ? "worker.draining job.created" : "job.created");
        free(got);
        assert_false(pending);
    }

    free(drain);
    free(undrain);
    PQfinish(admin);
    store_close(other);
    store_close(st);
    free(url);
}

/* Many readers share one handle (one horizon) while two other servers
 * write: each reader's stream, resumed after the last id it saw, must be
 * exactly the log as it ends up: no id skipped, none twice. (A horizon one
 * reader's newer snapshot proved final must not serve another reader whose
 * read looks through an older snapshot.) */
enum { EV_READERS = 4, EV_WRITERS = 4, EV_JOBS = 150 };

struct ev_writer {
    store_t *st;
    int id;
};

struct ev_reader {
    store_t *st;
    atomic_int *stop;
    int64_t *ids;
    size_t n, cap;
};

static void *ev_write_main(void *arg)
{
    struct ev_writer *w = arg;
    for (int i = 0; i < EV_JOBS; i++) {
        store_job_t j;
        char name[32];
        snprintf(name, sizeof name, "w%d-%d", w->id, i);
        mkjob(&j, name);
        assert_int_equal(store_job_create(w->st, &j, NULL, 0, true, NULL, NULL, T0), 0);
        store_job_clear(&j);
    }
    return NULL;
}

static void ev_take(struct ev_reader *r, bool *pending)
{
    store_event_t *v = NULL;
    size_t n = 0;
    int64_t after = r->n ? r->ids[r->n - 1] : 0;
    assert_int_equal(store_events_read(r->st, after, 50, &v, &n, pending), 0);
    for (size_t i = 0; i < n; i++) {
        if (r->n == r->cap) r->ids = xrealloc(r->ids, (r->cap = r->cap * 2 + 64) * sizeof *r->ids);
        r->ids[r->n++] = v[i].id;
        store_event_clear(&v[i]);
    }
    free(v);
}

static void *ev_read_main(void *arg)
{
    struct ev_reader *r = arg;
    bool pending = false;
    while (!atomic_load(r->stop))
        ev_take(r, &pending);
    for (int i = 0; i < 1000; i++) { /* the tail, once the writers are done */
        size_t before = r->n;
        ev_take(r, &pending);
        if (r->n == before && !pending) break;
    }
    return NULL;
}

static void test_events_concurrent_readers_miss_nothing(void **state)
{
    (void)state;
    char *url = schema_url("");
    store_t *rd = open_ok(url), *wr[2] = {open_ok(url), open_ok(url)};
    atomic_int stop = 0;
    struct ev_reader readers[EV_READERS];
    struct ev_writer writers[EV_WRITERS];
    pthread_t rt[EV_READERS], wt[EV_WRITERS];
    for (int i = 0; i < EV_READERS; i++) {
        readers[i] = (struct ev_reader){rd, &stop, NULL, 0, 0};
        assert_int_equal(pthread_create(&rt[i], NULL, ev_read_main, &readers[i]), 0);
    }
    for (int i = 0; i < EV_WRITERS; i++) {
        writers[i] = (struct ev_writer){wr[i % 2], i};
        assert_int_equal(pthread_create(&wt[i], NULL, ev_write_main, &writers[i]), 0);
    }
    for (int i = 0; i < EV_WRITERS; i++)
        pthread_join(wt[i], NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < EV_READERS; i++)
        pthread_join(rt[i], NULL);

    /* The log as it ended up, read by a fresh handle. */
    store_t *fresh = open_ok(url);
    struct ev_reader all = {fresh, &stop, NULL, 0, 0};
    ev_read_main(&all);
    assert_int_equal(all.n, EV_WRITERS * EV_JOBS * 2); /* job.created, run.pending */
    for (int i = 0; i < EV_READERS; i++) {
        for (size_t k = 0; k < all.n && k < readers[i].n; k++)
            if (readers[i].ids[k] != all.ids[k])
                fail_msg("reader %d: event %zu is id %lld, the log has %lld there", i, k,
                         (long long)readers[i].ids[k], (long long)all.ids[k]);
        assert_int_equal(readers[i].n, all.n);
        free(readers[i].ids);
    }
    free(all.ids);
    store_close(fresh);
    store_close(rd);
    store_close(wr[0]);
    store_close(wr[1]);
    free(url);
}

/* ---- connection faults ----------------------------------------------------------- */

static void test_pool_survives_killed_connections(void **state)
{
    (void)state;
    char *url = schema_url("");
    store_t *st = open_ok(url);
    PGconn *admin = admin_conn();
    store_job_t j;
    mkjob(&j, "before");
    assert_int_equal(store_job_create(st, &j, NULL, 0, false, NULL, NULL, T0), 0);
    store_job_clear(&j);

    /* The database drops every pooled connection (a failover, a restart,
     * an administrator): the next verbs reconnect instead of failing. */
    assert_true(kill_backends(admin, false) >= 1);
    assert_int_equal(store_ping(st), 0);
    mkjob(&j, "after");
    assert_int_equal(store_job_create(st, &j, NULL, 0, true, NULL, NULL, T0), 0);
    store_job_t got;
    assert_int_equal(store_job_get(st, j.id, &got, NULL, NULL), 0);
    assert_string_equal(got.name, "after");
    store_job_clear(&got);
    store_job_clear(&j);

    store_close(st);
    PQfinish(admin);
    free(url);
}

/* The connection dies in the middle of a write (the database is restarted,
 * an administrator kills the session, the network drops): the verb reports
 * a failure, the change is not there, and the store carries on. Promise
 * §5.1 from the other side: nothing is acknowledged that was not
 * committed. A trigger holds the insert in pg_sleep so the kill lands
 * inside the transaction, not before or after it. */
struct slow_create {
    store_t *st;
    int rc;
};

static void *slow_create_main(void *arg)
{
    struct slow_create *c = arg;
    store_job_t j;
    mkjob(&j, "doomed");
    c->rc = store_job_create(c->st, &j, NULL, 0, true, NULL, NULL, T0);
    store_job_clear(&j);
    return NULL;
}

static void test_connection_dropped_mid_write(void **state)
{
    (void)state;
    char *url = schema_url("");
    const char *schema = strstr(url, "sked_schema=") + strlen("sked_schema=");
    store_t *st = open_ok(url);
    PGconn *admin = admin_conn();
    char *sql = xasprintf("CREATE FUNCTION %s.slow() RETURNS trigger LANGUAGE plpgsql AS"
                          " $$ BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$;"
                          " CREATE TRIGGER slow BEFORE INSERT ON %s.jobs FOR EACH ROW"
                          " EXECUTE FUNCTION %s.slow()",
                          schema, schema, schema);
    PGresult *r = PQexec(admin, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s", PQresultErrorMessage(r));
    PQclear(r);
    free(sql);

    struct slow_create c = {st, 1};
    pthread_t th;
    pthread_create(&th, NULL, slow_create_main, &c);
    /* Wait until the insert sleeps inside its transaction, then kill it. */
    long long killed = 0;
    for (int i = 0; i < WAIT_S * 10 && !killed; i++) {
        killed = admin_int(admin, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                  " WHERE wait_event = 'PgSleep' AND state = 'active'"
                                  " AND query LIKE '%INSERT INTO jobs%'");
        if (!killed) usleep(100 * 1000);
    }
    assert_true(killed == 1);
    pthread_join(th, NULL);
    assert_true(c.rc < 0); /* not acknowledged */

    sql = xasprintf("DROP TRIGGER slow ON %s.jobs", schema);
    r = PQexec(admin, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    free(sql);
    /* Not there, on a fresh connection of the same store, which works. */
    store_job_filter_t f = {.limit = 10};
    store_job_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_job_list(st, &f, &v, &n, &next), 0);
    assert_int_equal(n, 0);
    free(v);
    store_job_t j;
    mkjob(&j, "after");
    assert_int_equal(store_job_create(st, &j, NULL, 0, false, NULL, NULL, T0), 0);
    store_job_clear(&j);

    store_close(st);
    PQfinish(admin);
    free(url);
}

/* ---- migrations ------------------------------------------------------------------- */

struct opener {
    const char *url;
    int rc;
    store_t *st;
};

static void *open_main(void *arg)
{
    struct opener *o = arg;
    char *err = NULL;
    o->rc = store_open(o->url, &o->st, &err);
    free(err);
    return NULL;
}

static void test_concurrent_open_migrates_once(void **state)
{
    (void)state;
    enum { N = 6 };
    char *url = schema_url("");
    struct opener o[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        o[i] = (struct opener){url, -1, NULL};
        assert_int_equal(pthread_create(&th[i], NULL, open_main, &o[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].rc, 0);
        assert_string_equal(store_backend(o[i].st), "postgres");
    }
    /* One version row at the latest version (whatever the number of
     * migrations this build has), and every server can use the store at
     * once. */
    PGconn *admin = admin_conn();
    const char *schema = strstr(url, "sked_schema=") + strlen("sked_schema=");
    char *sql = xasprintf("SELECT count(*) * 1000 + max(version) FROM %s.schema_version", schema);
    assert_int_equal(admin_int(admin, sql), 1000 + store__schema_version);
    free(sql);
    for (int i = 0; i < N; i++) {
        char name[16];
        snprintf(name, sizeof name, "j%d", i);
        store_job_t j;
        mkjob(&j, name);
        assert_int_equal(store_job_create(o[i].st, &j, NULL, 0, false, NULL, NULL, T0), 0);
        store_job_clear(&j);
        store_close(o[i].st);
    }
    PQfinish(admin);
    free(url);
}

/* ---- races between servers ------------------------------------------------------ */

struct claimer {
    store_t *st;
    char wid[SKED_ID_LEN];
    pthread_barrier_t *go;
    size_t got;
};

static void *claim_once_main(void *arg)
{
    struct claimer *c = arg;
    store_claimed_t *v = NULL;
    size_t n = 0;
    pthread_barrier_wait(c->go);
    if (store_claim(c->st, c->wid, NULL, 5, LEASE_MS, T0 + 1000, &v, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            store_claimed_clear(&v[i]);
        free(v);
        c->got = n;
    }
    return NULL;
}

static void test_max_concurrency_across_servers(void **state)
{
    (void)state;
    enum { SERVERS = 4, ROUNDS = 5 };
    char *url = schema_url("");
    store_t *st[SERVERS];
    struct claimer c[SERVERS];
    pthread_barrier_t go;
    for (int i = 0; i < SERVERS; i++)
        st[i] = open_ok(url);

    store_job_t j;
    mkjob(&j, "one-at-a-time");
    j.max_concurrency = 1;
    assert_int_equal(store_job_create(st[0], &j, NULL, 0, false, NULL, NULL, T0), 0);
    for (int i = 0; i < 20; i++) {
        char rid[SKED_ID_LEN];
        assert_int_equal(store_run_trigger(st[0], j.id, NULL, T0 + i, rid), 0);
    }
    for (int i = 0; i < SERVERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        new_worker(st[i], name, c[i].wid);
        c[i].st = st[i];
    }
    /* Each round all servers claim at the same instant; exactly one run
     * may be handed out, then it finishes and the next round starts. */
    for (int round = 0; round < ROUNDS; round++) {
        pthread_t th[SERVERS];
        pthread_barrier_init(&go, NULL, SERVERS);
        for (int i = 0; i < SERVERS; i++) {
            c[i].go = &go;
            c[i].got = 0;
            assert_int_equal(pthread_create(&th[i], NULL, claim_once_main, &c[i]), 0);
        }
        size_t total = 0;
        for (int i = 0; i < SERVERS; i++) {
            pthread_join(th[i], NULL);
            total += c[i].got;
        }
        pthread_barrier_destroy(&go);
        assert_int_equal(total, 1);

        store_run_filter_t f = {j.id, "running", INT64_MIN, INT64_MAX, NULL, 10};
        store_run_t *v;
        size_t n;
        char *next;
        assert_int_equal(store_run_list(st[0], &f, &v, &n, &next), 0);
        assert_int_equal(n, 1);
        store_result_t ok = {ATTEMPT_SUCCEEDED, 0, 0, NULL, NULL, NULL};
        assert_int_equal(store_complete(st[0], v[0].id, 1, v[0].fence, NULL, &ok, T0 + 2000), 0);
        store_run_clear(&v[0]);
        free(v);
        free(next);
    }
    store_job_clear(&j);
    for (int i = 0; i < SERVERS; i++)
        store_close(st[i]);
    free(url);
}

struct reaper {
    store_t *st;
    pthread_barrier_t *go;
    int64_t now_ms;
    bool prune; /* prune instead of reap */
    int rc;
};

static void *reap_main(void *arg)
{
    struct reaper *r = arg;
    pthread_barrier_wait(r->go);
    r->rc = r->prune ? store_prune(r->st, r->now_ms)
                     : store_reap(r->st, 0, INT64_C(1) << 50, r->now_ms);
    return NULL;
}

/* Runs reap (or prune) on every server at once; returns the sum of counts. */
static int on_all_servers(store_t **st, int n, bool prune, int64_t now_ms)
{
    pthread_t th[8];
    struct reaper r[8];
    pthread_barrier_t go;
    int sum = 0;
    pthread_barrier_init(&go, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        r[i] = (struct reaper){st[i], &go, now_ms, prune, -1};
        assert_int_equal(pthread_create(&th[i], NULL, reap_main, &r[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        assert_true(r[i].rc >= 0);
        sum += r[i].rc;
    }
    pthread_barrier_destroy(&go);
    return sum;
}

static void test_reap_and_prune_on_every_server(void **state)
{
    (void)state;
    enum { SERVERS = 3, RUNS = 600 }; /* more than one reap batch */
    char *url = schema_url("");
    store_t *st[SERVERS];
    for (int i = 0; i < SERVERS; i++)
        st[i] = open_ok(url);
    store_job_t j;
    mkjob(&j, "leased");
    j.retry = (retry_policy_t){1, 1000, 1000, 2.0, false}; /* lost once = failed */
    assert_int_equal(store_job_create(st[0], &j, NULL, 0, false, NULL, NULL, T0), 0);
    for (int i = 0; i < RUNS; i++) {
        char rid[SKED_ID_LEN];
        assert_int_equal(store_run_trigger(st[0], j.id, NULL, T0, rid), 0);
    }
    char wid[SKED_ID_LEN];
    new_worker(st[0], "dies", wid);
    size_t claimed = 0;
    while (claimed < RUNS) {
        store_claimed_t *v;
        size_t n;
        assert_int_equal(store_claim(st[0], wid, NULL, 200, LEASE_MS, T0, &v, &n), 0);
        assert_true(n > 0);
        /* Reported started, so each lease that runs out is a lost attempt. */
        store_held_t *h = xcalloc(n, sizeof *h);
        for (size_t i = 0; i < n; i++)
            h[i] = (store_held_t){v[i].run.id, v[i].run.fence, true, false, NULL};
        assert_int_equal(store_heartbeat(st[0], wid, NULL, h, n, LEASE_MS, T0, NULL), 0);
        for (size_t i = 0; i < n; i++) {
            assert_true(h[i].keep);
            store_claimed_clear(&v[i]);
        }
        free(h);
        free(v);
        claimed += n;
    }

    /* Every lease expired; three reapers at once fail each run once. */
    int64_t later = T0 + LEASE_MS + 1;
    assert_int_equal(on_all_servers(st, SERVERS, false, later), RUNS);
    assert_int_equal(on_all_servers(st, SERVERS, false, later + 1), 0);
    store_run_filter_t f = {j.id, "failed", INT64_MIN, INT64_MAX, NULL, 1000};
    store_run_t *v;
    size_t n;
    char *next;
    assert_int_equal(store_run_list(st[1], &f, &v, &n, &next), 0);
    assert_int_equal(n, RUNS);
    for (size_t i = 0; i < n; i++) {
        store_attempt_t *att;
        size_t na;
        store_run_t r;
        if (i % 50 == 0) { /* each run had exactly one attempt, lost */
            assert_int_equal(store_run_get(st[2], v[i].id, &r, &att, &na), 0);
            assert_int_equal(na, 1);
            assert_int_equal(att[0].outcome, ATTEMPT_LOST);
            store_attempt_clear(&att[0]);
            free(att);
            store_run_clear(&r);
        }
        store_run_clear(&v[i]);
    }
    free(v);
    free(next);

    /* Three pruners at once remove each run once. */
    assert_int_equal(on_all_servers(st, SERVERS, true, later + 1), RUNS);
    f.state = NULL;
    assert_int_equal(store_run_list(st[0], &f, &v, &n, &next), 0);
    assert_int_equal(n, 0);
    free(v);
    store_job_clear(&j);
    for (int i = 0; i < SERVERS; i++)
        store_close(st[i]);
    free(url);
}

/* ---- the database's clock ------------------------------------------------------------ */

static void test_db_clock(void **state)
{
    (void)state;
    char *url = schema_url("&sked_clock=db");
    store_t *st = open_ok(url);
    int64_t before = (int64_t)time(NULL) * 1000;
    store_job_t j;
    mkjob(&j, "clocked");
    /* now_ms = 0 is ignored: the database's now() is used. */
    assert_int_equal(store_job_create(st, &j, NULL, 0, false, NULL, NULL, 0), 0);
    char rid[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(st, j.id, NULL, 0, rid), 0);
    int64_t after = (int64_t)time(NULL) * 1000 + 1000;
    assert_true(j.created_ms >= before - 1000 && j.created_ms <= after);
    store_run_t r;
    assert_int_equal(store_run_get(st, rid, &r, NULL, NULL), 0);
    assert_true(r.created_ms >= before - 1000 && r.created_ms <= after);
    assert_true(r.not_before_ms >= before - 1000 && r.not_before_ms <= after);
    store_run_clear(&r);
    store_job_clear(&j);
    store_close(st);
    free(url);
}

/* ---- URLs ------------------------------------------------------------------------------ */

static void expect_refused(const char *url, int want, const char *needle)
{
    store_t *st = NULL;
    char *err = NULL;
    assert_int_equal(store_open(url, &st, &err), want);
    assert_null(st);
    assert_non_null(err);
    if (!strstr(err, needle)) fail_msg("'%s' not in '%s'", needle, err);
    /* A password in the URL never appears in a message. */
    assert_null(strstr(err, "s3cret"));
    free(err);
}

static void test_bad_urls(void **state)
{
    (void)state;
    char *u;
    u = schema_url("&sked_pool=0");
    expect_refused(u, SKED_EINVAL, "sked_pool");
    free(u);
    u = schema_url("&sked_clock=sundial");
    expect_refused(u, SKED_EINVAL, "sked_clock");
    free(u);
    u = schema_url("&sked_colour=blue");
    expect_refused(u, SKED_EINVAL, "sked_colour");
    free(u);
    expect_refused("postgresql://u:s3cret@/sked?nosuchoption=1", SKED_EINVAL, "nosuchoption");
    expect_refused("postgresql://u:s3cret@/sked?host=/nonexistent-sked-dir", SKED_ESTORE,
                   "cannot connect");
    /* The pool size is honoured: one connection still serves threads. */
    u = schema_url("&sked_pool=1");
    store_t *st = open_ok(u);
    assert_int_equal(store_ping(st), 0);
    store_close(st);
    free(u);
}

/* ---- the run graph across servers ---------------------------------------------------- */

/* One claimed run to end on one server (handle) at the barrier. */
struct ender {
    store_t *st;
    pthread_barrier_t *go;
    char run_id[SKED_ID_LEN];
    int attempt;
    int64_t fence;
    attempt_outcome_t outcome;
    int64_t now_ms;
    int rc;
};

static void *end_main(void *arg)
{
    struct ender *e = arg;
    store_result_t res = {.outcome = e->outcome,
                          .exit_code = e->outcome == ATTEMPT_SUCCEEDED ? 0 : 1};
    pthread_barrier_wait(e->go);
    e->rc = store_complete(e->st, e->run_id, e->attempt, e->fence, NULL, &res, e->now_ms);
    return NULL;
}

/* Ends the two claimed runs at the same moment, one on each server. */
static void end_two_at_once(store_t *a, store_t *b, const store_claimed_t *x, attempt_outcome_t ox,
                            const store_claimed_t *y, attempt_outcome_t oy, int64_t now_ms)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    struct ender e[2] = {
        {a, &go, "", x->run.attempt, x->run.fence, ox, now_ms, -1},
        {b, &go, "", y->run.attempt, y->run.fence, oy, now_ms, -1},
    };
    memcpy(e[0].run_id, x->run.id, SKED_ID_LEN);
    memcpy(e[1].run_id, y->run.id, SKED_ID_LEN);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, end_main, &e[i]), 0);
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(e[i].rc, 0);
    }
    pthread_barrier_destroy(&go);
}

/* A workflow of two roots b, c and a join d over them, with d's rule. */
static void join_workflow(store_t *st, const char *name, trigger_rule_t rule, char id[SKED_ID_LEN])
{
    store_job_t wf, t[3];
    mkjob(&wf, name);
    static const char *const names[] = {"b", "c", "d"};
    for (int i = 0; i < 3; i++)
        mkjob(&t[i], names[i]);
    t[2].deps_rule = rule;
    t[2].deps = xcalloc(2, sizeof *t[2].deps);
    t[2].ndeps = 2;
    t[2].deps[0].task = 0;
    t[2].deps[1].task = 1;
    assert_int_equal(store_workflow_put(st, &wf, NULL, 0, t, 3, -1, NULL, NULL, T0), 0);
    memcpy(id, wf.id, SKED_ID_LEN);
    for (int i = 0; i < 3; i++)
        store_job_clear(&t[i]);
    store_job_clear(&wf);
}

/* The member of group run g named `name`. */
static store_run_t member(store_t *st, const char *g, const char *name)
{
    store_run_t run, out;
    store_group_t grp;
    store_member_t *m = NULL;
    size_t n = 0;
    memset(&out, 0, sizeof out);
    assert_int_equal(store_group_get(st, g, &run, &grp, &m, &n), 0);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (!found && strcmp(m[i].name, name) == 0) {
            out = m[i].run;
            memset(&m[i].run, 0, sizeof m[i].run);
            found = true;
        }
        store_member_clear(&m[i]);
    }
    free(m);
    store_run_clear(&run);
    assert_true(found);
    return out;
}

/* The two upstreams of a join end at the same moment on two servers,
 * ~50 times, under rules where the join goes (all_success, all_done over
 * a failure, one_success) or is skipped (all_success over a failure):
 * each time it is decided exactly once (one run.pending or one
 * run.skipped event, never both), its counts hold each end once, and the
 * workflow run's counts add up. */
static void test_join_released_once_across_servers(void **state)
{
    (void)state;
    enum { ROUNDS = 48 };
    char *url = schema_url("");
    store_t *a = open_ok(url), *b = open_ok(url);
    char wid[SKED_ID_LEN];
    new_worker(a, "w", wid);
    struct variant {
        trigger_rule_t rule;
        attempt_outcome_t ob, oc;
        run_state_t d; /* the join's state after both ended */
        int ok, fail;  /* its counts */
    } const variants[] = {
        {RULE_ALL_SUCCESS, ATTEMPT_SUCCEEDED, ATTEMPT_SUCCEEDED, RUN_PENDING, 2, 0},
        {RULE_ALL_DONE, ATTEMPT_SUCCEEDED, ATTEMPT_FAILED, RUN_PENDING, 1, 1},
        {RULE_ONE_SUCCESS, ATTEMPT_SUCCEEDED, ATTEMPT_SUCCEEDED, RUN_PENDING, 1, 0},
        {RULE_ALL_SUCCESS, ATTEMPT_FAILED, ATTEMPT_FAILED, RUN_SKIPPED, 0, 1},
    };
    char wf[4][SKED_ID_LEN];
    for (int v = 0; v < 4; v++) {
        char name[32];
        snprintf(name, sizeof name, "join%d", v);
        join_workflow(a, name, variants[v].rule, wf[v]);
    }
    for (int round = 0; round < ROUNDS; round++) {
        const struct variant *v = &variants[round % 4];
        int64_t t = T0 + (int64_t)round * 1000;
        char g[SKED_ID_LEN];
        assert_int_equal(store_run_trigger(a, wf[round % 4], NULL, t, g), 0);
        store_claimed_t *cl = NULL;
        size_t n = 0;
        assert_int_equal(store_claim(a, wid, NULL, 10, LEASE_MS, t + 1, &cl, &n), 0);
        assert_int_equal(n, 2);
        bool b_first = strcmp(cl[0].job_name, "b") == 0;
        const store_claimed_t *cb = b_first ? &cl[0] : &cl[1], *cc = b_first ? &cl[1] : &cl[0];
        /* alternate which server ends which */
        if (round % 2)
            end_two_at_once(a, b, cb, v->ob, cc, v->oc, t + 2);
        else
            end_two_at_once(b, a, cb, v->ob, cc, v->oc, t + 2);
        for (size_t i = 0; i < n; i++)
            store_claimed_clear(&cl[i]);
        free(cl);

        store_run_t d = member(a, g, "d");
        assert_int_equal(d.state, v->d);
        assert_int_equal(d.deps_ok, v->ok);
        /* a skip is decided at the first failure: the second is not counted */
        assert_int_equal(d.deps_fail, v->fail);
        assert_int_equal(d.deps_skip, 0);
        assert_int_equal(run_events(a, d.id, "run.pending"), v->d == RUN_PENDING);
        assert_int_equal(run_events(a, d.id, "run.skipped"), v->d == RUN_SKIPPED);
        store_run_t gr;
        store_group_t grp;
        store_member_t *m = NULL;
        size_t nm = 0;
        assert_int_equal(store_group_get(a, g, &gr, &grp, &m, &nm), 0);
        int ok = (v->ob == ATTEMPT_SUCCEEDED) + (v->oc == ATTEMPT_SUCCEEDED);
        assert_int_equal(grp.ok, ok);
        assert_int_equal(grp.failed, 2 - ok);
        assert_int_equal(grp.skipped, v->d == RUN_SKIPPED);
        assert_int_equal(grp.open, v->d == RUN_PENDING);
        assert_int_equal(gr.state, v->d == RUN_PENDING ? RUN_WAITING : RUN_FAILED);
        for (size_t i = 0; i < nm; i++)
            store_member_clear(&m[i]);
        free(m);
        store_run_clear(&gr);
        if (v->d == RUN_PENDING) { /* the join runs, once */
            assert_int_equal(store_claim(b, wid, NULL, 10, LEASE_MS, t + 3, &cl, &n), 0);
            assert_int_equal(n, 1);
            assert_string_equal(cl[0].run.id, d.id);
            store_result_t res = {.outcome = ATTEMPT_SUCCEEDED};
            assert_int_equal(store_complete(b, cl[0].run.id, 1, cl[0].run.fence, NULL, &res, t + 4),
                             0);
            store_claimed_clear(&cl[0]);
            free(cl);
        }
        assert_int_equal(run_events(a, g, ok == 2 ? "run.succeeded" : "run.failed"), 1);
        store_run_clear(&d);
    }
    store_close(a);
    store_close(b);
    free(url);
}

/* The two last members of a group run end at the same moment on two
 * servers (an array of 2; a workflow of two independent tasks): the
 * group ends exactly once, with both counted. */
static void test_group_ends_once_across_servers(void **state)
{
    (void)state;
    enum { ROUNDS = 50 };
    char *url = schema_url("");
    store_t *a = open_ok(url), *b = open_ok(url);
    char wid[SKED_ID_LEN];
    new_worker(a, "w", wid);
    store_job_t arr;
    mkjob(&arr, "pair");
    arr.array_count = 2;
    assert_int_equal(store_job_create(a, &arr, NULL, 0, false, NULL, NULL, T0), 0);
    store_job_t wf, t[2];
    mkjob(&wf, "two");
    mkjob(&t[0], "x");
    mkjob(&t[1], "y");
    assert_int_equal(store_workflow_put(a, &wf, NULL, 0, t, 2, -1, NULL, NULL, T0), 0);
    for (int round = 0; round < ROUNDS; round++) {
        int64_t tm = T0 + (int64_t)round * 1000;
        bool failing = round % 3 == 2;
        char g[SKED_ID_LEN];
        assert_int_equal(store_run_trigger(a, round % 2 ? arr.id : wf.id, NULL, tm, g), 0);
        store_claimed_t *cl = NULL;
        size_t n = 0;
        assert_int_equal(store_claim(b, wid, NULL, 10, LEASE_MS, tm + 1, &cl, &n), 0);
        assert_int_equal(n, 2);
        end_two_at_once(a, b, &cl[0], ATTEMPT_SUCCEEDED, &cl[1],
                        failing ? ATTEMPT_FAILED : ATTEMPT_SUCCEEDED, tm + 2);
        for (size_t i = 0; i < n; i++)
            store_claimed_clear(&cl[i]);
        free(cl);
        store_run_t gr;
        store_group_t grp;
        store_member_t *m = NULL;
        size_t nm = 0;
        assert_int_equal(store_group_get(b, g, &gr, &grp, &m, &nm), 0);
        assert_int_equal(gr.state, failing ? RUN_FAILED : RUN_SUCCEEDED);
        assert_int_equal(gr.finished_ms, tm + 2);
        assert_int_equal(grp.n, 2);
        assert_int_equal(grp.open, 0);
        assert_int_equal(grp.ok, failing ? 1 : 2);
        assert_int_equal(grp.failed, failing ? 1 : 0);
        for (size_t i = 0; i < nm; i++)
            store_member_clear(&m[i]);
        free(m);
        store_run_clear(&gr);
        assert_int_equal(run_events(a, g, "run.succeeded"), !failing);
        assert_int_equal(run_events(a, g, "run.failed"), failing);
    }
    for (int i = 0; i < 2; i++)
        store_job_clear(&t[i]);
    store_job_clear(&wf);
    store_job_clear(&arr);
    store_close(a);
    store_close(b);
    free(url);
}

int main(void)
{
    g_base = getenv("SKED_TEST_PG_URL");
    if (!g_base || !*g_base) {
        fprintf(stderr, "set SKED_TEST_PG_URL (run under tests/store/pg_harness.sh)\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wakeup_across_servers),
        cmocka_unit_test(test_listener_reconnects),
        cmocka_unit_test(test_pool_survives_killed_connections),
        cmocka_unit_test(test_connection_dropped_mid_write),
        cmocka_unit_test(test_concurrent_open_migrates_once),
        cmocka_unit_test(test_max_concurrency_across_servers),
        cmocka_unit_test(test_reap_and_prune_on_every_server),
        cmocka_unit_test(test_db_clock),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_events_never_skip_an_uncommitted_id),
        cmocka_unit_test(test_events_concurrent_readers_miss_nothing),
        cmocka_unit_test(test_join_released_once_across_servers),
        cmocka_unit_test(test_group_ends_once_across_servers),
    };
    return cmocka_run_group_tests_name("postgres-cluster", tests, NULL, NULL);
}
