/*
 * Backend parity: the SQLite and the PostgreSQL store must be the same
 * store. The conformance suite (test_store.c) checks each backend against
 * the rules of store.h one rule at a time; this file checks them against
 * each other, where drift hides in what no single rule pins down (a
 * timestamp one backend leaves at -1, a reason only one of them writes, a
 * column one migration made nullable):
 *
 *   - test_scenario runs one script of verbs, with fixed now_ms values, on
 *     a fresh store of each backend and, at every checkpoint, reads back
 *     everything through the public API and compares every field of every
 *     struct. Ids are random per store, so the test keeps a map between the
 *     two stores' ids (filled in creation order, or when an object is first
 *     seen) and compares ids through it; fences are random too, so they are
 *     compared by structure: one bijection between the two stores' fences,
 *     each in 1..2^53-1.
 *   - test_catalog reads both live schemas from the engines' catalogs and
 *     compares tables, columns, indexes and constraints.
 *
 * Run it under tests/store/pg_harness.sh (a throwaway PostgreSQL in
 * SKED_TEST_PG_URL); each test uses its own schema there and its own temp
 * directory for SQLite. A difference fails the test at the checkpoint with
 * every difference found there, each naming the step, the struct, the
 * field and both values. SKED_PARITY_KEEP_GOING=1 runs the whole script
 * and fails at the end instead, to see every difference at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <ftw.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "store/store.h"

#define T0         INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define SEC        INT64_C(1000)
#define MIN        INT64_C(60000)
#define HOUR       INT64_C(3600000)
#define LEASE_MS   INT64_C(30000)
#define CONFIRM_MS INT64_C(5000)
#define LOG_CAP    256                       /* bytes kept per run, small enough to truncate */
#define FENCE_MAX  INT64_C(0x1FFFFFFFFFFFFF) /* fences are 53 random bits */
#define NEVER      INT64_C(86400000)         /* a heartbeat timeout that never strikes */

enum { SQ = 0, PG = 1, NSIDE = 2 };
static const char *const side_name[NSIDE] = {"sqlite", "postgres"};

static const char *g_base; /* $SKED_TEST_PG_URL */

/* ---- the two stores and the maps between them --------------------------------- */

/* One object as each store names it. */
struct pair {
    char id[NSIDE][SKED_ID_LEN];
    char label[96];       /* "run:retry", or where it was first seen */
    int64_t fence[NSIDE]; /* runs: the fence of the last claim, per store */
    int attempt;          /* runs: the attempt of the last claim */
};

struct par {
    store_t *st[NSIDE];
    char dir[64];     /* the SQLite store's temp directory */
    char db_path[96]; /* its database file */
    char *pg_url;     /* the PostgreSQL store's URL, with its own sked_schema */
    char schema[64];
    char icu_db[64]; /* a database this test made (and drops), or "" */
    char step[96];   /* what the script is doing, for messages */
    struct pair *pairs;
    size_t npairs, cap;
    int64_t (*fences)[NSIDE]; /* the fence bijection */
    size_t nfences, capf;
    int ndiff;       /* differences at this step */
    int ndiff_total; /* in the whole test */
    char first[1200];
    bool keep_going;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void par_free(struct par *p)
{
    for (int s = 0; s < NSIDE; s++)
        store_close(p->st[s]);
    if (p->dir[0]) nftw(p->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (p->icu_db[0]) {
        /* The stores are closed; FORCE also ends anything else still on it. */
        PGconn *db = PQconnectdb(g_base);
        char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", p->icu_db);
        PQclear(PQexec(db, sql));
        free(sql);
        PQfinish(db);
    }
    free(p->pg_url);
    free(p->pairs);
    free(p->fences);
    free(p);
}

/* Opens a fresh SQLite store in a temp directory and a PostgreSQL store in
 * a schema of its own in the database at pg_base. */
static int open_pair(struct par *p, const char *pg_base)
{
    static unsigned seq;
    const char *kg = getenv("SKED_PARITY_KEEP_GOING");
    p->keep_going = kg && *kg && strcmp(kg, "0") != 0;
    snprintf(p->dir, sizeof p->dir, "/tmp/sked-parity-XXXXXX");
    if (!mkdtemp(p->dir)) {
        p->dir[0] = '\0';
        return -1;
    }
    snprintf(p->db_path, sizeof p->db_path, "%s/sked.db", p->dir);
    snprintf(p->schema, sizeof p->schema, "parity%d_%u", (int)getpid(), ++seq);
    p->pg_url =
        xasprintf("%s%ssked_schema=%s", pg_base, strchr(pg_base, '?') ? "&" : "?", p->schema);
    char *sq_url = xasprintf("sqlite:%s", p->db_path);
    const char *urls[NSIDE] = {sq_url, p->pg_url};
    int rc = 0;
    for (int s = 0; s < NSIDE && rc == 0; s++) {
        char *err = NULL;
        rc = store_open(urls[s], &p->st[s], &err);
        if (rc != 0)
            print_error("store_open(%s): %s: %s\n", side_name[s], sked_errname(rc), err ? err : "");
        else
            store_set_log_cap(p->st[s], LOG_CAP);
        free(err);
    }
    free(sq_url);
    return rc == 0 ? 0 : -1;
}

static int setup(void **state)
{
    struct par *p = xcalloc(1, sizeof *p);
    if (open_pair(p, g_base) != 0) {
        par_free(p);
        return -1;
    }
    *state = p;
    return 0;
}

/* As setup, but the PostgreSQL store lives in a database of its own whose
 * collation is a natural language's (ICU en-US), as production databases
 * often are (initdb takes the system locale), rather than the harness's
 * C.UTF-8, which happens to sort as SQLite does. */
static int setup_icu(void **state)
{
    struct par *p = xcalloc(1, sizeof *p);
    PGconn *db = PQconnectdb(g_base);
    PQconninfoOption *opts = PQconninfo(db);
    const char *host = "", *user = "", *port = "";
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val) continue;
        if (strcmp(o->keyword, "host") == 0) host = o->val;
        if (strcmp(o->keyword, "user") == 0) user = o->val;
        if (strcmp(o->keyword, "port") == 0) port = o->val;
    }
    snprintf(p->icu_db, sizeof p->icu_db, "sked_parity_icu_%d", (int)getpid());
    char *sql = xasprintf("CREATE DATABASE %s TEMPLATE template0 LOCALE_PROVIDER icu"
                          " ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
                          p->icu_db);
    PGresult *r = PQexec(db, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0) {
        print_error("%s: %s", sql, PQresultErrorMessage(r));
        p->icu_db[0] = '\0';
    }
    char *url = xasprintf("postgresql://%s@/%s?host=%s%s%s", user, p->icu_db, host,
                          *port ? "&port=" : "", port);
    PQclear(r);
    free(sql);
    PQconninfoFree(opts);
    PQfinish(db);
    if (rc == 0) rc = open_pair(p, url);
    free(url);
    if (rc != 0) {
        par_free(p);
        return -1;
    }
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    par_free(*state);
    return 0;
}

/* ---- differences ------------------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static void diff(struct par *p, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_message("DIFF at step '%s': %s\n", p->step, msg);
    if (p->ndiff_total == 0) snprintf(p->first, sizeof p->first, "at step '%s': %s", p->step, msg);
    p->ndiff++;
    p->ndiff_total++;
}

static void step(struct par *p, const char *name)
{
    snprintf(p->step, sizeof p->step, "%s", name);
    p->ndiff = 0;
}

/* Ends a checkpoint: fails the test if the stores differed, unless keep_going. */
static void checkpoint_end(struct par *p)
{
    if (p->ndiff && !p->keep_going)
        fail_msg("%d backend difference(s) at step '%s' (all listed above); first %s", p->ndiff,
                 p->step, p->first);
}

static void finish(struct par *p)
{
    if (p->ndiff_total)
        fail_msg("%d backend difference(s) in all (listed above); first %s", p->ndiff_total,
                 p->first);
}

/* ---- the id map and the fence bijection ------------------------------------------- */

static struct pair *find_id(struct par *p, int side, const char *id)
{
    for (size_t i = 0; i < p->npairs; i++)
        if (strcmp(p->pairs[i].id[side], id) == 0) return &p->pairs[i];
    return NULL;
}

static struct pair *find_label(struct par *p, const char *label)
{
    for (size_t i = 0; i < p->npairs; i++)
        if (strcmp(p->pairs[i].label, label) == 0) return &p->pairs[i];
    return NULL;
}

/* The id of object `label` in store `side` (a test bug if unknown). */
static const char *ID(struct par *p, const char *label, int side)
{
    struct pair *x = find_label(p, label);
    if (!x) fail_msg("test bug: no object named '%s'", label);
    return x->id[side];
}

static struct pair *add_pair(struct par *p, const char *label, const char *a, const char *b)
{
    if (p->npairs == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->pairs = xrealloc(p->pairs, p->cap * sizeof *p->pairs);
    }
    struct pair *x = &p->pairs[p->npairs++];
    memset(x, 0, sizeof *x);
    snprintf(x->id[SQ], SKED_ID_LEN, "%s", a);
    snprintf(x->id[PG], SKED_ID_LEN, "%s", b);
    snprintf(x->label, sizeof x->label, "%s", label);
    return x;
}

/* The label of the object sqlite calls id, or id itself. */
static const char *label_of(struct par *p, const char *id)
{
    struct pair *x = find_id(p, SQ, id);
    return x ? x->label : id;
}

/* Ids are prefix_ + 10 characters of the now_ms they were minted at + 16
 * random ones: the prefix and the time part must be the same in both. */
static bool id_shape_same(const char *a, const char *b)
{
    const char *ua = strchr(a, '_'), *ub = strchr(b, '_');
    if (!ua || !ub || ua - a != ub - b) return false;
    size_t n = (size_t)(ua - a) + 1 + 10;
    return strlen(a) == strlen(b) && strncmp(a, b, n) == 0;
}

/* Compares two ids through the map; a pair of ids neither store has shown
 * before is a new object, mapped from now on. */
static void cmp_id(struct par *p, const char *what, const char *field, const char *a, const char *b)
{
    if (!*a || !*b) {
        if (*a || *b) diff(p, "%s.%s: sqlite='%s' postgres='%s'", what, field, a, b);
        return;
    }
    if (!id_shape_same(a, b))
        diff(p, "%s.%s: sqlite=%s postgres=%s (prefix or time part differ)", what, field, a, b);
    struct pair *x = find_id(p, SQ, a), *y = find_id(p, PG, b);
    if (!x && !y) {
        char label[96];
        snprintf(label, sizeof label, "%.3s first seen at '%.40s' %.30s", a, p->step, field);
        add_pair(p, label, a, b);
    } else if (x != y) {
        diff(p, "%s.%s: sqlite=%s (%s) postgres=%s (%s): not the same object", what, field, a,
             x ? x->label : "new", b, y ? y->label : "new");
    }
}

/* Names an object each store reported (a create's OUT id): binds the two
 * ids under label, or checks they are the pair already named so (a verb
 * that store.h says hands back an existing object). */
static void bind_pair(struct par *p, const char *label, const char *a, const char *b)
{
    struct pair *x = find_id(p, SQ, a), *y = find_id(p, PG, b), *named = find_label(p, label);
    if (!x && !y && !named) {
        if (!id_shape_same(a, b))
            diff(p, "id of %s: sqlite=%s postgres=%s (prefix or time part differ)", label, a, b);
        add_pair(p, label, a, b);
    } else if (named ? x == named && y == named : x == y) {
        if (!named) snprintf(x->label, sizeof x->label, "%s", label);
    } else {
        diff(p, "id of %s: sqlite=%s (%s) postgres=%s (%s)%s%s", label, a, x ? x->label : "new", b,
             y ? y->label : "new", named ? "; expected the ids of " : "", named ? label : "");
    }
}

static bool fence_ok(int64_t f)
{
    return f > 0 && f <= FENCE_MAX;
}

/* Fences: 0 (never leased) is a value; others must correspond one to one. */
static void cmp_fence(struct par *p, const char *what, const char *field, int64_t a, int64_t b)
{
    if (a == 0 || b == 0) {
        if (a != b) diff(p, "%s.%s: sqlite=%" PRId64 " postgres=%" PRId64, what, field, a, b);
        return;
    }
    const int64_t v[NSIDE] = {a, b};
    for (int s = 0; s < NSIDE; s++)
        if (!fence_ok(v[s]))
            diff(p, "%s.%s: %s fence %" PRId64 " is not in 1..2^53-1", what, field, side_name[s],
                 v[s]);
    long ia = -1, ib = -1;
    for (size_t i = 0; i < p->nfences; i++) {
        if (p->fences[i][SQ] == a) ia = (long)i;
        if (p->fences[i][PG] == b) ib = (long)i;
    }
    if (ia < 0 && ib < 0) {
        if (p->nfences == p->capf) {
            p->capf = p->capf ? p->capf * 2 : 64;
            p->fences = xrealloc(p->fences, p->capf * sizeof *p->fences);
        }
        p->fences[p->nfences][SQ] = a;
        p->fences[p->nfences][PG] = b;
        p->nfences++;
    } else if (ia != ib) {
        diff(p,
             "%s.%s: sqlite=%" PRId64 " postgres=%" PRId64
             ": fences that are equal in one store differ in the other",
             what, field, a, b);
    }
}

/* ---- field comparisons ----------------------------------------------------------- */

static void cmp_i(struct par *p, const char *what, const char *field, int64_t a, int64_t b)
{
    if (a != b) diff(p, "%s.%s: sqlite=%" PRId64 " postgres=%" PRId64, what, field, a, b);
}

static void cmp_d(struct par *p, const char *what, const char *field, double a, double b)
{
    if (a != b) diff(p, "%s.%s: sqlite=%.17g postgres=%.17g", what, field, a, b);
}

/* NULL and "" are different values. */
static void cmp_s(struct par *p, const char *what, const char *field, const char *a, const char *b)
{
    if ((!a) != (!b) || (a && strcmp(a, b) != 0))
        diff(p, "%s.%s: sqlite=%s%s%s postgres=%s%s%s", what, field, a ? "'" : "", a ? a : "NULL",
             a ? "'" : "", b ? "'" : "", b ? b : "NULL", b ? "'" : "");
}

/* The field comparisons below expect p, what, a and b in scope. */
#define CI(f)  cmp_i(p, what, #f, (int64_t)a->f, (int64_t)b->f)
#define CS(f)  cmp_s(p, what, #f, a->f, b->f)
#define CID(f) cmp_id(p, what, #f, a->f, b->f)

static void cmp_job(struct par *p, const char *what, const store_job_t *a, const store_job_t *b)
{
    CID(id);
    CS(ns);
    CS(owner);
    CS(name);
    CS(queue);
    CS(spec_json);
    CS(constraints);
    CS(tags);
    CI(priority);
    CI(state);
    CI(overlap);
    CI(misfire);
    CI(catch_up_window_ms);
    CI(max_concurrency);
    CI(timeout_ms);
    CI(retry.max_attempts);
    CI(retry.initial_ms);
    CI(retry.max_ms);
    cmp_d(p, what, "retry.multiplier", a->retry.multiplier, b->retry.multiplier);
    CI(retry.jitter);
    CI(version);
    CI(created_ms);
    CI(updated_ms);
}

static void cmp_sched(struct par *p, const char *what, const store_schedule_t *a,
                      const store_schedule_t *b)
{
    CID(id);
    CID(job_id);
    CI(kind);
    CS(expr);
    CS(timezone);
    CI(start_ms);
    CI(end_ms);
    CI(jitter_ms);
    CI(anchor_ms);
    CI(next_fire_ms);
    CI(last_fire_ms);
}

static void cmp_due(struct par *p, const char *what, const store_due_t *a, const store_due_t *b)
{
    cmp_sched(p, what, &a->sched, &b->sched);
    CI(misfire);
    CI(overlap);
    CI(catch_up_window_ms);
}

static void cmp_miss(struct par *p, const char *what, const store_miss_t *a, const store_miss_t *b)
{
    CID(id);
    CID(job_id);
    CID(schedule_id);
    CI(first_ms);
    CI(last_ms);
    CI(count);
    CS(reason);
    CI(created_ms);
}

static void cmp_run(struct par *p, const char *what, const store_run_t *a, const store_run_t *b)
{
    CID(id);
    CID(job_id);
    CID(schedule_id);
    CID(worker_id);
    CI(state);
    CI(fire_ms);
    CI(not_before_ms);
    CI(priority);
    CS(queue);
    CI(attempt);
    cmp_fence(p, what, "fence", a->fence, b->fence);
    CI(lease_expires_ms);
    CI(cancel_requested);
    CI(created_ms);
    CI(started_ms);
    CI(finished_ms);
    CI(exit_code);
    CI(signal);
    CS(reason);
    CI(log_bytes);
    CI(log_truncated);
}

static void cmp_attempt(struct par *p, const char *what, const store_attempt_t *a,
                        const store_attempt_t *b)
{
    CI(n);
    CID(worker_id);
    cmp_fence(p, what, "fence", a->fence, b->fence);
    CI(started_ms);
    CI(finished_ms);
    /* store.h: the outcome is valid only once the attempt finished. */
    if (a->finished_ms >= 0 || b->finished_ms >= 0) CI(outcome);
    CI(exit_code);
    CI(signal);
    CS(reason);
    CS(result);
}

static void cmp_checkpoint(struct par *p, const char *what, const store_checkpoint_t *a,
                           const store_checkpoint_t *b)
{
    CI(attempt);
    CI(at_ms);
    CS(data);
    CI(len);
}

static void cmp_worker(struct par *p, const char *what, const store_worker_t *a,
                       const store_worker_t *b)
{
    CID(id);
    CS(name);
    CS(host);
    CS(labels);
    CS(queues);
    CI(slots);
    CI(running);
    CI(state);
    CI(registered_ms);
    CI(heartbeat_ms);
    CS(owner);
    CS(ns);
}

static void cmp_claimed(struct par *p, const char *what, const store_claimed_t *a,
                        const store_claimed_t *b)
{
    cmp_run(p, what, &a->run, &b->run);
    CS(spec_json);
    CI(timeout_ms);
    CS(job_name);
    cmp_checkpoint(p, what, &a->checkpoint, &b->checkpoint);
}

static void cmp_chunk(struct par *p, const char *what, const store_log_chunk_t *a,
                      const store_log_chunk_t *b)
{
    CI(attempt);
    CI(seq);
    CI(stream);
    CI(at_ms);
    CI(len);
    if (a->len == b->len && a->len && memcmp(a->data, b->data, a->len) != 0)
        diff(p, "%s.data: the bytes differ (sqlite '%.*s', postgres '%.*s')", what, (int)a->len,
             a->data, (int)b->len, b->data);
}

static void cmp_token(struct par *p, const char *what, const store_token_t *a,
                      const store_token_t *b)
{
    CID(id);
    CS(name);
    CI(role);
    CS(ns);
    CI(created_ms);
    CI(expires_ms);
    CI(revoked);
    CS(user);
    CI(last_used_ms);
}

static void cmp_user(struct par *p, const char *what, const store_user_t *a, const store_user_t *b)
{
    CS(name);
    CS(pwhash);
    CI(role);
    CS(namespaces);
    CI(created_ms);
    CI(updated_ms);
}

static void cmp_audit(struct par *p, const char *what, const store_audit_t *a,
                      const store_audit_t *b)
{
    CID(id);
    CI(at_ms);
    CS(actor);
    CS(role);
    CS(method);
    CS(route);
    CS(target);
    CS(ns);
    CS(source);
    CI(status);
}

#undef CI
#undef CS
#undef CID

/* Compares a verb's return codes: equal in both, and what store.h says. */
/* A return code as text: the error's name, or the count a verb returned. */
static const char *rc_str(int rc, char buf[24])
{
    if (rc < 0) return sked_errname(rc);
    snprintf(buf, 24, "%d", rc);
    return buf;
}

static bool cmp_rc(struct par *p, const char *verb, const int rc[NSIDE], int want)
{
    char b1[24], b2[24];
    if (rc[SQ] != rc[PG])
        diff(p, "%s returned sqlite=%s postgres=%s", verb, rc_str(rc[SQ], b1), rc_str(rc[PG], b2));
    else if (rc[SQ] != want)
        diff(p, "%s returned %s in both stores, expected %s", verb, rc_str(rc[SQ], b1),
             rc_str(want, b2));
    return rc[SQ] == want && rc[PG] == want;
}

/* Compares the return codes of a read whose answer may rightly be an
 * error (an object deleted or pruned): they need only agree. True if both
 * read something. */
static bool same_rc(struct par *p, const char *verb, const int rc[NSIDE])
{
    if (rc[SQ] != rc[PG])
        diff(p, "%s returned sqlite=%s postgres=%s", verb, sked_errname(rc[SQ]),
             sked_errname(rc[PG]));
    return rc[SQ] == 0 && rc[PG] == 0;
}

/* A typed comparison seen through void pointers, for the generic helpers. */
typedef void cmp_fn(struct par *p, const char *what, const void *a, const void *b);
#define VOID_CMP(cmpf, T)                                                                          \
    static void cmpf##_v(struct par *p, const char *what, const void *a, const void *b)            \
    {                                                                                              \
        cmpf(p, what, (const T *)a, (const T *)b);                                                 \
    }

VOID_CMP(cmp_sched, store_schedule_t)
VOID_CMP(cmp_attempt, store_attempt_t)
VOID_CMP(cmp_chunk, store_log_chunk_t)
VOID_CMP(cmp_due, store_due_t)
VOID_CMP(cmp_claimed, store_claimed_t)

/* Compares two arrays of items (each store's answer) by position: their
 * sizes, then each item. noun names the items in messages; id (NULL for
 * none) gives an item's id, to name it by its label. */
static void cmp_array(struct par *p, const char *what, const char *noun, const void *a, size_t na,
                      const void *b, size_t nb, size_t size, cmp_fn *cmp,
                      const char *(*id)(const void *item))
{
    if (na != nb) diff(p, "%s: %zu %s in sqlite, %zu in postgres", what, na, noun, nb);
    for (size_t i = 0; i < na && i < nb; i++) {
        const char *ai = (const char *)a + i * size, *bi = (const char *)b + i * size;
        char w[512];
        snprintf(w, sizeof w, "%.250s %s #%zu %s", what, noun, i, id ? label_of(p, id(ai)) : "");
        cmp(p, w, ai, bi);
    }
}

static const char *sched_id(const void *item)
{
    return ((const store_schedule_t *)item)->id;
}

static const char *due_id(const void *item)
{
    return ((const store_due_t *)item)->sched.id;
}

static const char *claimed_id(const void *item)
{
    return ((const store_claimed_t *)item)->run.id;
}

/* ---- lists, page by page --------------------------------------------------------- */

/* A list verb seen generically, so one walker pages through every kind. */
struct lister {
    const char *type; /* "store_job_t" */
    size_t size;      /* of one item */
    size_t id_off;    /* where an item keeps its id */
    int (*list)(store_t *st, const void *filter, const char *cursor, int limit, void **out,
                size_t *n, char **next);
    cmp_fn *cmp;
    void (*clear)(void *item);
};

static const char *item_id(const struct lister *l, const void *item)
{
    return (const char *)item + l->id_off;
}

/* A lister over T's typed comparison and clear (and list_##name). */
#define LISTER_OF(name, T, cmpf, clearf)                                                           \
    VOID_CMP(cmpf, T)                                                                              \
    static void name##_clear(void *item)                                                           \
    {                                                                                              \
        clearf(item);                                                                              \
    }                                                                                              \
    static const struct lister name##_lister = {#T,          sizeof(T), offsetof(T, id),           \
                                                list_##name, cmpf##_v,  name##_clear};

/* A lister of a list verb whose filter F has cursor and limit members. */
#define LISTER(name, T, F, verb, cmpf, clearf)                                                     \
    static int list_##name(store_t *st, const void *filter, const char *cursor, int limit,         \
                           void **out, size_t *n, char **next)                                     \
    {                                                                                              \
        F f = *(const F *)filter;                                                                  \
        f.cursor = cursor;                                                                         \
        f.limit = limit;                                                                           \
        return verb(st, &f, (T **)out, n, next);                                                   \
    }                                                                                              \
    LISTER_OF(name, T, cmpf, clearf)

LISTER(jobs, store_job_t, store_job_filter_t, store_job_list, cmp_job, store_job_clear)
LISTER(runs, store_run_t, store_run_filter_t, store_run_list, cmp_run, store_run_clear)
LISTER(misses, store_miss_t, store_miss_filter_t, store_miss_list, cmp_miss, store_miss_clear)
LISTER(tokens, store_token_t, store_token_filter_t, store_token_list, cmp_token, store_token_clear)
LISTER(audit, store_audit_t, store_audit_filter_t, store_audit_list, cmp_audit, store_audit_clear)

/* store_run_list_in: the run filter and the namespaces. */
struct runs_in_filter {
    store_run_filter_t f;
    const char *ns_in;
};

static int list_runs_in(store_t *st, const void *filter, const char *cursor, int limit, void **out,
                        size_t *n, char **next)
{
    const struct runs_in_filter *fi = filter;
    store_run_filter_t f = fi->f;
    f.cursor = cursor;
    f.limit = limit;
    return store_run_list_in(st, &f, fi->ns_in, (store_run_t **)out, n, next);
}

static void runs_in_clear(void *item)
{
    store_run_clear(item);
}

static const struct lister runs_in_lister = {
    "store_run_t", sizeof(store_run_t), offsetof(store_run_t, id),
    list_runs_in,  cmp_run_v,           runs_in_clear};

/* The pool has no filter, only paging. */
static int list_workers(store_t *st, const void *filter, const char *cursor, int limit, void **out,
                        size_t *n, char **next)
{
    return store_worker_list(st, cursor, limit, (store_worker_t **)out, n, next);
}
LISTER_OF(workers, store_worker_t, cmp_worker, store_worker_clear)

/* Whether the two stores' ids name the same object (two ids neither store
 * has shown yet count as the same: they are paired on first sight). */
static bool same_object(struct par *p, const char *a, const char *b)
{
    struct pair *x = find_id(p, SQ, a), *y = find_id(p, PG, b);
    return x ? x == y : !y;
}

/* The labels of a page's items, in order, into buf. */
static void page_labels(struct par *p, const struct lister *l, int side, const char *v, size_t n,
                        char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && at < size; i++) {
        const char *id = item_id(l, v + i * l->size);
        struct pair *x = find_id(p, side, id);
        at += (size_t)snprintf(buf + at, size - at, "%s%s", i ? ", " : "", x ? x->label : id);
    }
}

/* Compares one page of a list: item by item if both stores list the same
 * objects in the same order; else one difference naming both orders, and
 * then each object with its counterpart, wherever that is on the page. */
static void cmp_page(struct par *p, const struct lister *l, const char *verb, void *const v[NSIDE],
                     const size_t n[NSIDE])
{
    const char *a = v[SQ], *b = v[PG];
    bool in_order = true;
    for (size_t i = 0; i < n[SQ] && i < n[PG]; i++)
        in_order &= same_object(p, item_id(l, a + i * l->size), item_id(l, b + i * l->size));
    if (!in_order) {
        char la[1024], lb[1024];
        page_labels(p, l, SQ, a, n[SQ], la, sizeof la);
        page_labels(p, l, PG, b, n[PG], lb, sizeof lb);
        diff(p, "%s: the order differs: sqlite [%s] postgres [%s]", verb, la, lb);
    }
    for (size_t i = 0; i < n[SQ]; i++) {
        const char *ai = a + i * l->size, *bi = NULL;
        if (in_order && i < n[PG]) {
            bi = b + i * l->size;
        } else {
            const struct pair *x = find_id(p, SQ, item_id(l, ai));
            for (size_t k = 0; x && k < n[PG] && !bi; k++)
                if (strcmp(item_id(l, b + k * l->size), x->id[PG]) == 0) bi = b + k * l->size;
        }
        if (!bi) continue;
        char what[512];
        snprintf(what, sizeof what, "%.250s #%zu %s %s", verb, i, l->type,
                 label_of(p, item_id(l, ai)));
        l->cmp(p, what, ai, bi);
    }
}

/* Pages through a list in both stores at once (each with its own filter,
 * as filters name ids, and its own cursor) and compares page by page:
 * return codes, sizes, every item in order, whether there is a next page. */
static void walk(struct par *p, const struct lister *l, const char *title, const void *f_sq,
                 const void *f_pg, int limit)
{
    const void *filter[NSIDE] = {f_sq, f_pg};
    char *cursor[NSIDE] = {NULL, NULL};
    for (int page = 1; page <= 100; page++) {
        void *v[NSIDE] = {NULL, NULL};
        size_t n[NSIDE] = {0, 0};
        char *next[NSIDE] = {NULL, NULL};
        int rc[NSIDE];
        char verb[512];
        snprintf(verb, sizeof verb, "list %s page %d", title, page);
        for (int s = 0; s < NSIDE; s++)
            rc[s] = l->list(p->st[s], filter[s], cursor[s], limit, &v[s], &n[s], &next[s]);
        bool ok = cmp_rc(p, verb, rc, 0);
        if (ok && n[SQ] != n[PG])
            diff(p, "%s: %zu %s in sqlite, %zu in postgres", verb, n[SQ], l->type, n[PG]);
        if (ok) cmp_page(p, l, verb, v, n);
        if (ok && (!next[SQ]) != (!next[PG]))
            diff(p, "%s: next_cursor sqlite=%s postgres=%s", verb, next[SQ] ? "set" : "NULL",
                 next[PG] ? "set" : "NULL");
        for (int s = 0; s < NSIDE; s++) {
            for (size_t i = 0; i < n[s]; i++)
                l->clear((char *)v[s] + i * l->size);
            free(v[s]);
            free(cursor[s]);
            cursor[s] = next[s];
        }
        if (!ok || !cursor[SQ] || !cursor[PG]) break;
    }
    free(cursor[SQ]);
    free(cursor[PG]);
}

/* walk() with one filter for both stores (one that names no ids). */
static void walk1(struct par *p, const struct lister *l, const char *title, const void *f,
                  int limit)
{
    walk(p, l, title, f, f, limit);
}

/* ---- reading back everything ------------------------------------------------------- */

static void check_job(struct par *p, const struct pair *x)
{
    store_job_t j[NSIDE];
    store_schedule_t *sc[NSIDE] = {NULL, NULL};
    size_t n[NSIDE] = {0, 0};
    int rc[NSIDE];
    char what[512];
    snprintf(what, sizeof what, "store_job_get(%s)", x->label);
    for (int s = 0; s < NSIDE; s++) {
        memset(&j[s], 0, sizeof j[s]);
        rc[s] = store_job_get(p->st[s], x->id[s], &j[s], &sc[s], &n[s]);
    }
    if (same_rc(p, what, rc)) {
        cmp_job(p, what, &j[SQ], &j[PG]);
        cmp_array(p, what, "schedule", sc[SQ], n[SQ], sc[PG], n[PG], sizeof **sc, cmp_sched_v,
                  sched_id);
    }
    for (int s = 0; s < NSIDE; s++) {
        if (rc[s] == 0) store_job_clear(&j[s]);
        for (size_t i = 0; i < n[s]; i++)
            store_schedule_clear(&sc[s][i]);
        free(sc[s]);
    }

    /* The scope outlives deletion. */
    char *ns[NSIDE] = {NULL, NULL}, *owner[NSIDE] = {NULL, NULL};
    snprintf(what, sizeof what, "store_job_scope(%s)", x->label);
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_job_scope(p->st[s], x->id[s], &ns[s], &owner[s]);
    if (cmp_rc(p, what, rc, 0)) {
        cmp_s(p, what, "ns", ns[SQ], ns[PG]);
        cmp_s(p, what, "owner", owner[SQ], owner[PG]);
    }
    for (int s = 0; s < NSIDE; s++) {
        free(ns[s]);
        free(owner[s]);
    }

    /* The job's missed-fire ledger, deleted jobs included. */
    store_miss_filter_t mf[NSIDE];
    for (int s = 0; s < NSIDE; s++)
        mf[s] = (store_miss_filter_t){x->id[s], INT64_MIN, NULL, 0};
    snprintf(what, sizeof what, "misses of %s", x->label);
    walk(p, &misses_lister, what, &mf[SQ], &mf[PG], 2);
}

static void check_logs(struct par *p, const struct pair *x, int attempt, int after_attempt,
                       int64_t after_seq, int limit)
{
    store_log_chunk_t *c[NSIDE] = {NULL, NULL};
    size_t n[NSIDE] = {0, 0};
    int rc[NSIDE];
    char what[512];
    snprintf(what, sizeof what, "store_log_read(%s, attempt %d, after %d/%" PRId64 ", limit %d)",
             x->label, attempt, after_attempt, after_seq, limit);
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_log_read(p->st[s], x->id[s], attempt, after_attempt, after_seq, limit, &c[s],
                               &n[s]);
    same_rc(p, what, rc);
    cmp_array(p, what, "chunk", c[SQ], n[SQ], c[PG], n[PG], sizeof **c, cmp_chunk_v, NULL);
    for (int s = 0; s < NSIDE; s++) {
        for (size_t i = 0; i < n[s]; i++)
            store_log_chunk_clear(&c[s][i]);
        free(c[s]);
    }
}

static void check_run(struct par *p, const struct pair *x)
{
    store_run_t r[NSIDE];
    store_attempt_t *at[NSIDE] = {NULL, NULL};
    store_checkpoint_t cp[NSIDE];
    size_t n[NSIDE] = {0, 0};
    int rc[NSIDE];
    char what[512];
    snprintf(what, sizeof what, "store_run_get_detail(%s)", x->label);
    for (int s = 0; s < NSIDE; s++) {
        memset(&r[s], 0, sizeof r[s]);
        rc[s] = store_run_get_detail(p->st[s], x->id[s], &r[s], &at[s], &n[s], &cp[s]);
    }
    if (same_rc(p, what, rc)) {
        cmp_run(p, what, &r[SQ], &r[PG]);
        cmp_checkpoint(p, what, &cp[SQ], &cp[PG]);
        /* The run's result, through the other door too. */
        char *res[NSIDE] = {NULL, NULL};
        int rrc[NSIDE];
        for (int s = 0; s < NSIDE; s++)
            rrc[s] = store_run_result(p->st[s], x->id[s], &res[s]);
        if (same_rc(p, "store_run_result", rrc)) cmp_s(p, what, "run result", res[SQ], res[PG]);
        free(res[SQ]);
        free(res[PG]);
        cmp_array(p, what, "attempt", at[SQ], n[SQ], at[PG], n[PG], sizeof **at, cmp_attempt_v,
                  NULL);
        /* Within each store: a running run's fence is its current attempt's. */
        for (int s = 0; s < NSIDE; s++)
            for (size_t i = 0; r[s].state == RUN_RUNNING && i < n[s]; i++)
                if (at[s][i].n == r[s].attempt && at[s][i].fence != r[s].fence)
                    diff(p, "%s: %s run fence %" PRId64 " != fence %" PRId64 " of attempt %d", what,
                         side_name[s], r[s].fence, at[s][i].fence, at[s][i].n);
    }
    for (int s = 0; s < NSIDE; s++) {
        if (rc[s] == 0) store_run_clear(&r[s]);
        if (rc[s] == 0) store_checkpoint_clear(&cp[s]);
        for (size_t i = 0; i < n[s]; i++)
            store_attempt_clear(&at[s][i]);
        free(at[s]);
    }
    check_logs(p, x, 0, 0, -1, 1000);
}

static void check_worker(struct par *p, const struct pair *x)
{
    store_worker_t w[NSIDE];
    int rc[NSIDE];
    char what[512];
    snprintf(what, sizeof what, "store_worker_get(%s)", x->label);
    for (int s = 0; s < NSIDE; s++) {
        memset(&w[s], 0, sizeof w[s]);
        rc[s] = store_worker_get(p->st[s], x->id[s], &w[s]);
    }
    if (same_rc(p, what, rc)) cmp_worker(p, what, &w[SQ], &w[PG]);
    for (int s = 0; s < NSIDE; s++)
        if (rc[s] == 0) store_worker_clear(&w[s]);
}

static void check_due(struct par *p, int64_t until_ms, int limit)
{
    store_due_t *d[NSIDE] = {NULL, NULL};
    size_t n[NSIDE] = {0, 0};
    int rc[NSIDE];
    char what[512];
    snprintf(what, sizeof what, "store_due_schedules(until %+" PRId64 " ms, limit %d)",
             until_ms - T0, limit);
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_due_schedules(p->st[s], until_ms, limit, &d[s], &n[s]);
    if (cmp_rc(p, what, rc, 0))
        cmp_array(p, what, "due", d[SQ], n[SQ], d[PG], n[PG], sizeof **d, cmp_due_v, due_id);
    for (int s = 0; s < NSIDE; s++) {
        for (size_t i = 0; i < n[s]; i++)
            store_schedule_clear(&d[s][i].sched);
        free(d[s]);
    }
}

static void check_next(struct par *p)
{
    int64_t v[NSIDE];
    int rc[NSIDE];
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_next_claimable_ms(p->st[s], &v[s]);
    if (cmp_rc(p, "store_next_claimable_ms", rc, 0))
        cmp_i(p, "store_next_claimable_ms", "out_ms", v[SQ], v[PG]);
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_next_fire_ms(p->st[s], &v[s]);
    if (cmp_rc(p, "store_next_fire_ms", rc, 0))
        cmp_i(p, "store_next_fire_ms", "out_ms", v[SQ], v[PG]);
}

/* The maintained counts (store_counts): the same pairs, in the same
 * order, with the same figures. */
static void check_counts(struct par *p)
{
    store_counts_t c[NSIDE];
    int rc[NSIDE];
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_counts(p->st[s], &c[s]);
    if (cmp_rc(p, "store_counts", rc, 0)) {
        cmp_i(p, "store_counts", "nruns", (int64_t)c[SQ].nruns, (int64_t)c[PG].nruns);
        for (size_t i = 0; i < c[SQ].nruns && i < c[PG].nruns; i++) {
            char what[128];
            snprintf(what, sizeof what, "store_counts runs[%zu]", i);
            cmp_s(p, what, "queue", c[SQ].runs[i].queue, c[PG].runs[i].queue);
            cmp_i(p, what, "state", c[SQ].runs[i].state, c[PG].runs[i].state);
            cmp_i(p, what, "n", c[SQ].runs[i].n, c[PG].runs[i].n);
        }
        for (int w = 0; w <= WORKER_GONE; w++) {
            char what[128];
            snprintf(what, sizeof what, "store_counts workers[%s]",
                     worker_state_name((worker_state_t)w));
            cmp_i(p, what, "workers", c[SQ].workers[w].workers, c[PG].workers[w].workers);
            cmp_i(p, what, "slots", c[SQ].workers[w].slots, c[PG].workers[w].slots);
            cmp_i(p, what, "busy", c[SQ].workers[w].busy, c[PG].workers[w].busy);
        }
    }
    for (int s = 0; s < NSIDE; s++)
        if (rc[s] == 0) store_counts_clear(&c[s]);
}

/* Reads back everything both stores hold, compares it, and ends the
 * checkpoint (failing on any difference). */
static void check_all(struct par *p)
{
    static const char *const run_states[] = {"scheduled", "waiting", "pending",  "running",
                                             "succeeded", "failed",  "canceled", "skipped"};
    store_job_filter_t jf[] = {
        {.state = NULL},
        {.state = "deleted"},
        {.state = "paused"},
        {.ns = "team-a"},
        {.queue = "default"},
        {.name = "re"},
        {.tag = "nightly"},
        {.ns_in = "default,team-a"},
        {.ns_in = "nowhere"},
        {.sort = JOB_SORT_NAME},
        {.sort = JOB_SORT_NAME_DESC},
        {.sort = JOB_SORT_PRIORITY_DESC},
        {.sort = JOB_SORT_CREATED},
    };
    static const char *const jf_title[] = {
        "jobs",
        "jobs state=deleted",
        "jobs state=paused",
        "jobs ns=team-a",
        "jobs queue=default",
        "jobs name~re",
        "jobs tag=nightly",
        "jobs ns_in=default,team-a",
        "jobs ns_in=nowhere",
        "jobs sort=name",
        "jobs sort=-name",
        "jobs sort=-priority",
        "jobs sort=created",
    };
    for (size_t i = 0; i < sizeof jf / sizeof *jf; i++)
        walk1(p, &jobs_lister, jf_title[i], &jf[i], 3);

    store_run_filter_t rf = {NULL, NULL, INT64_MIN, INT64_MAX, NULL, 0};
    walk1(p, &runs_lister, "runs", &rf, 4);
    for (size_t i = 0; i < sizeof run_states / sizeof *run_states; i++) {
        char title[64];
        snprintf(title, sizeof title, "runs state=%s", run_states[i]);
        rf.state = run_states[i];
        walk1(p, &runs_lister, title, &rf, 1000);
    }
    rf = (store_run_filter_t){NULL, NULL, T0 + 30 * SEC, T0 + 25 * MIN, NULL, 0};
    walk1(p, &runs_lister, "runs fire in [+30s, +25min)", &rf, 3);
    struct runs_in_filter ri = {{NULL, NULL, INT64_MIN, INT64_MAX, NULL, 0}, "team-a"};
    walk1(p, &runs_in_lister, "runs in team-a", &ri, 2);
    ri.ns_in = "default,nowhere";
    ri.f.state = "canceled";
    walk1(p, &runs_in_lister, "canceled runs in default,nowhere", &ri, 2);
    walk1(p, &workers_lister, "workers", NULL, 2);
    check_due(p, T0 + 400 * 24 * HOUR, 100);
    check_due(p, T0 + 400 * 24 * HOUR, 1);
    check_next(p);
    check_counts(p);

    /* Everything either store ever named, also what lists no longer show
     * (deleted jobs, gone workers, pruned runs). */
    for (size_t i = 0; i < p->npairs; i++) {
        const struct pair *x = &p->pairs[i];
        if (strncmp(x->id[SQ], "job_", 4) == 0) {
            check_job(p, x);
            store_run_filter_t f[NSIDE];
            for (int s = 0; s < NSIDE; s++)
                f[s] = (store_run_filter_t){x->id[s], NULL, INT64_MIN, INT64_MAX, NULL, 0};
            char title[512];
            snprintf(title, sizeof title, "runs of %s", x->label);
            walk(p, &runs_lister, title, &f[SQ], &f[PG], 2);
        } else if (strncmp(x->id[SQ], "run_", 4) == 0) {
            check_run(p, x);
        } else if (strncmp(x->id[SQ], "wrk_", 4) == 0) {
            check_worker(p, x);
        }
    }
    checkpoint_end(p);
}

/* ---- the verbs, on both stores ------------------------------------------------------- */

struct sched_def {
    const char *label;
    schedule_kind_t kind;
    const char *expr, *tz;
    int64_t start_ms, end_ms, jitter_ms, anchor_ms, next_ms;
    bool keep; /* update: pass the existing schedule's id back */
};

struct job_def {
    const char *label, *name, *ns, *queue, *tags, *constraints;
    int priority;
    overlap_policy_t overlap;
    misfire_policy_t misfire;
    int64_t catch_up_ms, timeout_ms;
    int max_concurrency;
    retry_policy_t retry;
    int spec_rev; /* makes the spec document differ between revisions */
    size_t nscheds;
    struct sched_def sched[3];
};

static const retry_policy_t no_retry = {1, 10 * SEC, 10 * MIN, 2.0, false};

static void build_job(const struct job_def *d, store_job_t *j, store_schedule_t *sc, struct par *p,
                      int side)
{
    memset(j, 0, sizeof *j);
    j->ns = xstrdup(d->ns ? d->ns : "default");
    j->owner = xstrdup("admin");
    j->name = xstrdup(d->name);
    j->queue = xstrdup(d->queue ? d->queue : "default");
    j->spec_json =
        xasprintf("{\"name\":\"%s\",\"command\":[\"true\"],\"rev\":%d}", d->name, d->spec_rev);
    j->constraints = xstrdup(d->constraints ? d->constraints : "");
    j->tags = xstrdup(d->tags ? d->tags : "");
    j->priority = d->priority;
    j->overlap = d->overlap;
    j->misfire = d->misfire;
    j->catch_up_window_ms = d->catch_up_ms;
    j->max_concurrency = d->max_concurrency;
    j->timeout_ms = d->timeout_ms;
    j->retry = d->retry.max_attempts ? d->retry : no_retry;
    for (size_t i = 0; i < d->nscheds; i++) {
        const struct sched_def *s = &d->sched[i];
        memset(&sc[i], 0, sizeof sc[i]);
        if (s->keep) snprintf(sc[i].id, SKED_ID_LEN, "%s", ID(p, s->label, side));
        sc[i].kind = s->kind;
        sc[i].expr = xstrdup(s->expr);
        sc[i].timezone = xstrdup(s->tz ? s->tz : "UTC");
        sc[i].start_ms = s->start_ms;
        sc[i].end_ms = s->end_ms;
        sc[i].jitter_ms = s->jitter_ms;
        sc[i].anchor_ms = s->anchor_ms;
        sc[i].next_fire_ms = s->next_ms;
        sc[i].last_fire_ms = -1;
    }
}

/* Compares what a create or update hands back (OUT fields) and names the
 * job and its schedules. */
static void job_out(struct par *p, const char *verb, const struct job_def *d, store_job_t *j,
                    store_schedule_t (*sc)[3])
{
    bind_pair(p, d->label, j[SQ].id, j[PG].id);
    cmp_job(p, verb, &j[SQ], &j[PG]);
    for (size_t i = 0; i < d->nscheds; i++) {
        char w[512];
        snprintf(w, sizeof w, "%s schedule %s", verb, d->sched[i].label);
        if (!d->sched[i].keep) bind_pair(p, d->sched[i].label, sc[SQ][i].id, sc[PG][i].id);
        cmp_sched(p, w, &sc[SQ][i], &sc[PG][i]);
    }
}

static void job_free(store_job_t *j, store_schedule_t *sc, size_t n)
{
    store_job_clear(j);
    for (size_t i = 0; i < n; i++)
        store_schedule_clear(&sc[i]);
}

static void create_job(struct par *p, const struct job_def *d, bool run_now, const char *idem,
                       int64_t now, int want)
{
    store_job_t j[NSIDE];
    store_schedule_t sc[NSIDE][3];
    int rc[NSIDE];
    char verb[512];
    snprintf(verb, sizeof verb, "store_job_create(NULL, %s)", d->label);
    for (int s = 0; s < NSIDE; s++) {
        build_job(d, &j[s], sc[s], p, s);
        rc[s] = store_job_create(p->st[s], &j[s], d->nscheds ? sc[s] : NULL, d->nscheds, run_now,
                                 idem, NULL, now);
    }
    if (cmp_rc(p, verb, rc, want) && want == 0) job_out(p, verb, d, j, sc);
    /* A repeated idempotency key hands back the earlier job's id. store.h
     * promises nothing about the other OUT fields then (the API reads only
     * the id), but the backends must still agree on them: a caller that
     * trusted them would see a version and times of no stored job. */
    if (want == SKED_EEXIST && rc[SQ] == want && rc[PG] == want) {
        bind_pair(p, d->label, j[SQ].id, j[PG].id);
        cmp_job(p, verb, &j[SQ], &j[PG]);
    }
    for (int s = 0; s < NSIDE; s++)
        job_free(&j[s], sc[s], d->nscheds);
}

/* expect: the version to expect, or -1 for the job's current one. */
static void update_job(struct par *p, const struct job_def *d, int64_t expect, int64_t now,
                       int want)
{
    store_job_t j[NSIDE];
    store_schedule_t sc[NSIDE][3];
    int rc[NSIDE];
    char verb[512];
    snprintf(verb, sizeof verb, "store_job_update(NULL, %s)", d->label);
    for (int s = 0; s < NSIDE; s++) {
        int64_t ex = expect;
        if (ex < 0) {
            store_job_t cur;
            assert_int_equal(store_job_get(p->st[s], ID(p, d->label, s), &cur, NULL, NULL), 0);
            ex = cur.version;
            store_job_clear(&cur);
        }
        build_job(d, &j[s], sc[s], p, s);
        snprintf(j[s].id, SKED_ID_LEN, "%s", ID(p, d->label, s));
        rc[s] =
            store_job_update(p->st[s], &j[s], ex, d->nscheds ? sc[s] : NULL, d->nscheds, NULL, now);
    }
    if (cmp_rc(p, verb, rc, want) && want == 0) job_out(p, verb, d, j, sc);
    for (int s = 0; s < NSIDE; s++)
        job_free(&j[s], sc[s], d->nscheds);
}

static void set_state(struct par *p, const char *job, job_state_t state, int64_t now, int want)
{
    int rc[NSIDE];
    char verb[512];
    snprintf(verb, sizeof verb, "store_job_set_state(%s, NULL, %s)", job, job_state_name(state));
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_job_set_state(p->st[s], ID(p, job, s), state, NULL, now);
    cmp_rc(p, verb, rc, want);
}

/* Names the run of job with fire time fire_ms in both stores. */
static void name_run(struct par *p, const char *label, const char *job, int64_t fire_ms)
{
    char id[NSIDE][SKED_ID_LEN];
    for (int s = 0; s < NSIDE; s++) {
        store_run_filter_t f = {ID(p, job, s), NULL, fire_ms, fire_ms + 1, NULL, 10};
        store_run_t *v = NULL;
        size_t n = 0;
        char *next = NULL;
        assert_int_equal(store_run_list(p->st[s], &f, &v, &n, &next), 0);
        id[s][0] = '\0';
        if (n == 1)
            snprintf(id[s], SKED_ID_LEN, "%s", v[0].id);
        else
            diff(p, "%s: %zu runs of %s at %+" PRId64 " ms, not 1", side_name[s], n, job,
                 fire_ms - T0);
        for (size_t i = 0; i < n; i++)
            store_run_clear(&v[i]);
        free(v);
        free(next);
    }
    if (id[SQ][0] && id[PG][0]) bind_pair(p, label, id[SQ], id[PG]);
    checkpoint_end(p);
}

static void trigger(struct par *p, const char *job, const char *run, int64_t now, int want)
{
    char rid[NSIDE][SKED_ID_LEN];
    int rc[NSIDE];
    char verb[512];
    snprintf(verb, sizeof verb, "store_run_trigger(NULL, %s)", job);
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_run_trigger(p->st[s], ID(p, job, s), NULL, now, rid[s]);
    if (cmp_rc(p, verb, rc, want) && want == 0) bind_pair(p, run, rid[SQ], rid[PG]);
}

struct fire_def {
    const char *sched;
    int64_t expect_ms, new_next_ms;
    store_fire_run_t runs[3];
    size_t nruns;
    store_fire_miss_t miss;
    int want_applied;
};

/* One store_fire call with items built by hand (as sched.c builds them). */
static void fire(struct par *p, const struct fire_def *d, size_t n, int64_t now)
{
    store_fire_t *items[NSIDE];
    int rc[NSIDE];
    for (int s = 0; s < NSIDE; s++) {
        items[s] = xcalloc(n, sizeof *items[s]);
        for (size_t i = 0; i < n; i++)
            items[s][i] = (store_fire_t){ID(p, d[i].sched, s),
                                         d[i].expect_ms,
                                         d[i].new_next_ms,
                                         d[i].runs,
                                         d[i].nruns,
                                         d[i].miss,
                                         -1};
        rc[s] = store_fire(p->st[s], items[s], n, now);
    }
    if (cmp_rc(p, "store_fire", rc, 0))
        for (size_t i = 0; i < n; i++) {
            char what[512];
            snprintf(what, sizeof what, "store_fire item %zu (%s)", i, d[i].sched);
            cmp_i(p, what, "applied", items[SQ][i].applied, items[PG][i].applied);
            for (int s = 0; s < NSIDE; s++)
                if (items[s][i].applied != d[i].want_applied)
                    diff(p, "%s: %s applied=%d, expected %d", what, side_name[s],
                         items[s][i].applied, d[i].want_applied);
        }
    free(items[SQ]);
    free(items[PG]);
}

struct worker_def {
    const char *label, *name, *host, *labels, *queues, *owner, *ns;
    int slots;
};

static void register_worker(struct par *p, const struct worker_def *d, int64_t now)
{
    store_worker_t w[NSIDE];
    int rc[NSIDE];
    char verb[512];
    snprintf(verb, sizeof verb, "store_worker_register(NULL, %s)", d->label);
    for (int s = 0; s < NSIDE; s++) {
        memset(&w[s], 0, sizeof w[s]);
        w[s].name = xstrdup(d->name);
        w[s].host = xstrdup(d->host);
        w[s].labels = xstrdup(d->labels);
        w[s].queues = xstrdup(d->queues);
        w[s].owner = xstrdup(d->owner);
        w[s].ns = xstrdup(d->ns);
        w[s].slots = d->slots;
        rc[s] = store_worker_register(p->st[s], &w[s], NULL, now);
    }
    if (cmp_rc(p, verb, rc, 0)) bind_pair(p, d->label, w[SQ].id, w[PG].id);
    store_worker_clear(&w[SQ]);
    store_worker_clear(&w[PG]);
}

/* Claims on both stores; compares what each handed out, in order, and
 * remembers each run's fence and attempt. Returns how many sqlite gave. */
static size_t claim(struct par *p, const char *worker, const char *owner, int max, int64_t now,
                    int want_rc, size_t want_n)
{
    store_claimed_t *v[NSIDE] = {NULL, NULL};
    size_t n[NSIDE] = {0, 0};
    int rc[NSIDE];
    char verb[512];
    snprintf(verb, sizeof verb, "store_claim(%s, max %d, at %+" PRId64 " ms)", worker, max,
             now - T0);
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_claim(p->st[s], ID(p, worker, s), owner, max, CONFIRM_MS, now, &v[s], &n[s]);
    if (cmp_rc(p, verb, rc, want_rc))
        for (int s = 0; s < NSIDE; s++)
            if (n[s] != want_n)
                diff(p, "%s: %s gave %zu runs, expected %zu", verb, side_name[s], n[s], want_n);
    cmp_array(p, verb, "run", v[SQ], n[SQ], v[PG], n[PG], sizeof **v, cmp_claimed_v, claimed_id);
    for (size_t i = 0; i < n[SQ] && i < n[PG]; i++) {
        struct pair *x = find_id(p, SQ, v[SQ][i].run.id);
        if (x && strcmp(x->id[PG], v[PG][i].run.id) == 0) {
            x->fence[SQ] = v[SQ][i].run.fence;
            x->fence[PG] = v[PG][i].run.fence;
            x->attempt = v[SQ][i].run.attempt;
        }
    }
    for (int s = 0; s < NSIDE; s++) {
        for (size_t i = 0; i < n[s]; i++)
            store_claimed_clear(&v[s][i]);
        free(v[s]);
    }
    return n[SQ];
}

/* What the next heartbeat's held runs and the next completion carry
 * (docs/results.md); NULL = nothing. */
static const char *g_checkpoint, *g_result;

/* A heartbeat holding runs (labels), all reported started or not; stale:
 * with fences that are not the runs' (their current ones + 1). Each held
 * run carries g_checkpoint. */
static void heartbeat(struct par *p, const char *worker, const char *owner, const char *const *runs,
                      const bool *want_keep, size_t nruns, bool started, bool stale, int64_t now,
                      int want_rc, bool want_draining)
{
    store_held_t h[NSIDE][8];
    bool draining[NSIDE] = {false, false};
    int rc[NSIDE];
    char verb[512];
    assert_true(nruns <= 8);
    snprintf(verb, sizeof verb, "store_heartbeat(%s, at %+" PRId64 " ms)", worker, now - T0);
    for (int s = 0; s < NSIDE; s++) {
        for (size_t i = 0; i < nruns; i++) {
            const struct pair *x = find_label(p, runs[i]);
            assert_non_null(x);
            h[s][i] = (store_held_t){x->id[s], x->fence[s] + (stale ? 1 : 0), started, false,
                                     g_checkpoint};
        }
        rc[s] = store_heartbeat(p->st[s], ID(p, worker, s), owner, h[s], nruns, LEASE_MS, now,
                                &draining[s]);
    }
    if (!cmp_rc(p, verb, rc, want_rc) || want_rc != 0) return;
    cmp_i(p, verb, "draining", draining[SQ], draining[PG]);
    if (draining[SQ] != want_draining)
        diff(p, "%s: draining=%d in both stores, expected %d", verb, draining[SQ], want_draining);
    for (size_t i = 0; i < nruns; i++) {
        char what[512];
        snprintf(what, sizeof what, "%.250s held %s", verb, runs[i]);
        cmp_i(p, what, "keep", h[SQ][i].keep, h[PG][i].keep);
        if (h[SQ][i].keep != want_keep[i])
            diff(p, "%s: keep=%d in both stores, expected %d", what, h[SQ][i].keep, want_keep[i]);
    }
}

/* A worker reporting the one run it holds as started. */
static void confirm(struct par *p, const char *worker, const char *run, int64_t now)
{
    const bool keep = true;
    heartbeat(p, worker, NULL, &run, &keep, 1, true, false, now, 0, false);
}

/* stale: report with a fence that is not the run's (its current one + 1). */
static void complete(struct par *p, const char *run, const char *owner, attempt_outcome_t outcome,
                     int exit_code, int sig, const char *reason, bool stale, int64_t now, int want)
{
    const struct pair *x = find_label(p, run);
    store_result_t res = {outcome, exit_code, sig, reason, g_result, g_checkpoint};
    int rc[NSIDE];
    char verb[512];
    assert_non_null(x);
    snprintf(verb, sizeof verb, "store_complete(%s, attempt %d, %s%s)", run, x->attempt,
             attempt_outcome_name(outcome), stale ? ", stale fence" : "");
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_complete(p->st[s], x->id[s], x->attempt, x->fence[s] + (stale ? 1 : 0), owner,
                               &res, now);
    cmp_rc(p, verb, rc, want);
}

static void append_log(struct par *p, const char *run, const char *owner, int64_t seq, int stream,
                       const char *data, size_t len, bool stale, int64_t now, int want)
{
    const struct pair *x = find_label(p, run);
    int rc[NSIDE];
    char verb[512];
    assert_non_null(x);
    snprintf(verb, sizeof verb, "store_log_append(%s, seq %" PRId64 "%s)", run, seq,
             stale ? ", stale fence" : "");
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_log_append(p->st[s], x->id[s], x->attempt, x->fence[s] + (stale ? 1 : 0),
                                 owner, seq, stream, data, len, now);
    cmp_rc(p, verb, rc, want);
}

static void cancel(struct par *p, const char *run, const char *reason, int64_t now, int want)
{
    int rc[NSIDE];
    char verb[512];
    snprintf(verb, sizeof verb, "store_run_cancel(NULL, %s)", run);
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_run_cancel(p->st[s], ID(p, run, s), reason, NULL, now);
    cmp_rc(p, verb, rc, want);
}

static void reap(struct par *p, int64_t hb_timeout_ms, int64_t now, int want)
{
    int rc[NSIDE];
    char verb[512];
    snprintf(verb, sizeof verb, "store_reap(at %+" PRId64 " ms)", now - T0);
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_reap(p->st[s], 0, hb_timeout_ms, now);
    cmp_rc(p, verb, rc, want);
}

static void worker_state(struct par *p, const char *worker, const char *owner, bool drain,
                         int64_t now, int want)
{
    int rc[NSIDE];
    char verb[512];
    snprintf(verb, sizeof verb, "store_worker_%s(%s, owner %s)", drain ? "drain" : "deregister",
             worker, owner ? owner : "any");
    for (int s = 0; s < NSIDE; s++)
        rc[s] = drain ? store_worker_drain(p->st[s], ID(p, worker, s), owner, NULL, now)
                      : store_worker_deregister(p->st[s], ID(p, worker, s), owner, NULL, now);
    cmp_rc(p, verb, rc, want);
}

/* ---- the scenario -------------------------------------------------------------------- */

/* Every id a step names is for both stores; every time is T0 + an offset. */
static const struct job_def J_EVERY = {.label = "job:every",
                                       .name = "every-min",
                                       .tags = ",hourly,",
                                       .priority = 5,
                                       .nscheds = 1,
                                       .sched = {{"sch:every", SCHEDULE_EVERY, "60s", "UTC",
                                                  INT64_MIN, INT64_MAX, 0, INT64_MIN, T0 + MIN}}};
static const struct job_def J_CRON = {
    .label = "job:cron",
    .name = "cron-etl",
    .ns = "team-a",
    .queue = "q2",
    .tags = ",nightly,etl,",
    .constraints = "gpu=1",
    .priority = 10,
    .overlap = OVERLAP_FORBID,
    .misfire = MISFIRE_SKIP,
    .catch_up_ms = 30 * SEC,
    .timeout_ms = 2 * MIN,
    .max_concurrency = 1,
    .retry = {2, 5 * SEC, MIN, 1.5, false},
    .nscheds = 2,
    .sched = {{"sch:cron", SCHEDULE_CRON, "*/5 * * * *", "Europe/Berlin", T0, T0 + 24 * HOUR, 1500,
               0, T0 + 5 * MIN},
              {"sch:at", SCHEDULE_AT, "2026-01-01T12:00:00Z", "UTC", INT64_MIN, INT64_MAX, 0, 0,
               T0 + 12 * HOUR}}};
static const struct job_def J_NOW = {.label = "job:now", .name = "run-now"};
static const struct job_def J_RETRY = {.label = "job:retry",
                                       .name = "retry-3",
                                       .queue = "rq",
                                       .retry = {3, SEC, 10 * SEC, 2.0, false}};
static const struct job_def J_PAUSE = {
    .label = "job:pause",
    .name = "pausable",
    .misfire = MISFIRE_CATCH_UP,
    .catch_up_ms = 10 * MIN,
    .nscheds = 1,
    .sched = {{"sch:pause", SCHEDULE_EVERY, "30s", "UTC", INT64_MIN, INT64_MAX, 0, T0 + 7 * SEC,
               T0 + 37 * SEC}}};
static const struct job_def J_DOOMED = {.label = "job:doomed", .name = "doomed", .queue = "dq"};
static const struct job_def J_IDEM = {.label = "job:idem", .name = "idem"};

static void scenario_create(struct par *p)
{
    step(p, "create jobs");
    create_job(p, &J_EVERY, false, NULL, T0, 0);
    create_job(p, &J_CRON, false, NULL, T0 + 1, 0);
    create_job(p, &J_NOW, true, NULL, T0 + 2, 0);
    create_job(p, &J_RETRY, false, NULL, T0 + 3, 0);
    create_job(p, &J_PAUSE, false, NULL, T0 + 4, 0);
    create_job(p, &J_DOOMED, true, NULL, T0 + 5, 0);
    create_job(p, &J_IDEM, false, "key-1", T0 + 6, 0);
    /* The same key again: nothing new, the earlier job handed back. */
    const struct job_def again = {.label = "job:idem", .name = "idem-again"};
    create_job(p, &again, false, "key-1", T0 + 7, SKED_EEXIST);
    /* A name taken in the namespace, and the same name in another one. */
    const struct job_def clash = {.label = "job:clash", .name = "run-now"};
    create_job(p, &clash, false, NULL, T0 + 8, SKED_ECONFLICT);
    const struct job_def other_ns = {.label = "job:samename", .name = "run-now", .ns = "team-a"};
    create_job(p, &other_ns, false, NULL, T0 + 9, 0);
    checkpoint_end(p);
    name_run(p, "run:now", "job:now", T0 + 2);
    name_run(p, "run:doomed", "job:doomed", T0 + 5);
    check_all(p);

    step(p, "register workers");
    const struct worker_def w1 = {"wrk:1",      "w1",     "h1", "gpu=1,zone=a",
                                  "default,q2", "tok_w1", "",   4};
    const struct worker_def w2 = {"wrk:2", "w2", "h2", "", "default,dq", "tok_w2", "default", 2};
    const struct worker_def w3 = {"wrk:3", "w3", "h3", "zone=b", "rq", "tok_w3", "", 1};
    register_worker(p, &w1, T0 + 10 * SEC);
    register_worker(p, &w2, T0 + 10 * SEC + 1);
    register_worker(p, &w3, T0 + 10 * SEC + 2);
    check_all(p);
}

static void scenario_logs_and_success(struct par *p)
{
    step(p, "claim the run-now run");
    claim(p, "wrk:2", "tok_w1", 1, T0 + 19 * SEC, SKED_EFORBID, 0); /* another token's worker */
    claim(p, "wrk:2", "tok_w2", 1, T0 + 20 * SEC, 0, 1);
    check_all(p);

    step(p, "confirm the run-now run");
    confirm(p, "wrk:2", "run:now", T0 + 21 * SEC);
    check_all(p);

    step(p, "append logs");
    static const char bin[] = {'\0', '\xff', ' ', 'w', 'a', 'r', 'n', '\n'};
    char big[300];
    memset(big, 'x', sizeof big);
    append_log(p, "run:now", NULL, 0, 1, "hello\n", 6, false, T0 + 22 * SEC, 0);
    append_log(p, "run:now", NULL, 1, 2, bin, sizeof bin, false, T0 + 23 * SEC, 0);
    append_log(p, "run:now", NULL, 1, 1, "again", 5, false, T0 + 24 * SEC, 0); /* repeated seq */
    append_log(p, "run:now", NULL, 2, 1, big, sizeof big, false, T0 + 25 * SEC,
               0); /* over the cap */
    append_log(p, "run:now", NULL, 3, 2, "more", 4, false, T0 + 26 * SEC, 0);
    append_log(p, "run:now", NULL, 4, 1, "stale", 5, true, T0 + 27 * SEC, SKED_ESTALE);
    const struct pair *x = find_label(p, "run:now");
    check_logs(p, x, 1, 0, -1, 1000);
    check_logs(p, x, 0, 1, 0, 2);
    check_logs(p, x, 2, 0, -1, 1000);
    check_all(p);

    step(p, "checkpoints with heartbeats");
    const char *held = "run:now";
    const bool keep = true, lost = false;
    g_checkpoint = "{\"step\": 1, \"note\": \"h\u00e9\"}";
    heartbeat(p, "wrk:2", NULL, &held, &keep, 1, true, false, T0 + 28 * SEC, 0, false);
    g_checkpoint = "stale: never stored";
    heartbeat(p, "wrk:2", NULL, &held, &lost, 1, true, true, T0 + 29 * SEC, 0, false);
    g_checkpoint = NULL;
    check_all(p);

    step(p, "complete with success");
    g_result = "{\"rows\": 3, \"ratio\": 0.1, \"big\": 12345678901234567}";
    complete(p, "run:now", NULL, ATTEMPT_SUCCEEDED, 0, 0, NULL, false, T0 + 30 * SEC, 0);
    g_result = "[\"a repeat never overwrites\"]";
    complete(p, "run:now", NULL, ATTEMPT_SUCCEEDED, 0, 0, NULL, false, T0 + 31 * SEC,
             0); /* repeat */
    complete(p, "run:now", NULL, ATTEMPT_SUCCEEDED, 0, 0, NULL, true, T0 + 32 * SEC, SKED_ESTALE);
    g_result = NULL;
    /* Late chunks of a finished attempt still count (here: past the cap). */
    append_log(p, "run:now", NULL, 5, 1, "late", 4, false, T0 + 33 * SEC, 0);
    check_all(p);
}

static void scenario_fire(struct par *p)
{
    step(p, "fire due schedules");
    check_due(p, T0 + 71 * SEC, 10);
    const struct fire_def f1[] = {
        {"sch:pause",
         T0 + 37 * SEC,
         T0 + 67 * SEC,
         {{T0 + 37 * SEC, T0 + 37 * SEC, RUN_SCHEDULED, NULL}},
         1,
         {0},
         1},
        {"sch:every",
         T0 + MIN,
         T0 + 2 * MIN,
         {{T0 + MIN, T0 + MIN, RUN_SCHEDULED, NULL}},
         1,
         {0},
         1},
        /* A lost compare-and-set does not affect the other items. */
        {"sch:cron", T0 + 1, T0 + 10 * MIN, {{0}}, 0, {0}, 0},
    };
    fire(p, f1, 3, T0 + 61 * SEC);
    struct fire_def again[2] = {f1[0], f1[1]}; /* again: both lost now */
    again[0].want_applied = again[1].want_applied = 0;
    fire(p, again, 2, T0 + 62 * SEC);
    checkpoint_end(p);
    name_run(p, "run:pause1", "job:pause", T0 + 37 * SEC);
    name_run(p, "run:every1", "job:every", T0 + MIN);
    check_all(p);

    step(p, "record missed fire times");
    static const char skip[] = "misfire: skip (the server was down)";
    static const char window[] = "misfire: catch_up window passed";
    const struct fire_def f2[] = {
        {"sch:cron",
         T0 + 5 * MIN,
         T0 + 20 * MIN,
         {{0}},
         0,
         {T0 + 5 * MIN, T0 + 15 * MIN, 3, -1, skip},
         1},
        {"sch:pause",
         T0 + 67 * SEC,
         T0 + 1237 * SEC,
         {{T0 + 1207 * SEC, T0 + 1207 * SEC, RUN_SCHEDULED, NULL}},
         1,
         {T0 + 67 * SEC, T0 + 1177 * SEC, 38, T0 + 37 * SEC, window},
         1},
    };
    fire(p, f2, 2, T0 + 21 * MIN);
    /* The stretch goes on: the entry grows, then a run (skipped by hand
     * here, with its reason) and a scheduled one. */
    const struct fire_def f3[] = {
        {"sch:cron",
         T0 + 20 * MIN,
         T0 + 30 * MIN,
         {{T0 + 20 * MIN + 1, T0 + 20 * MIN + 1, RUN_SKIPPED, "overlap"},
          {T0 + 25 * MIN, T0 + 25 * MIN + 700, RUN_SCHEDULED, NULL}},
         2,
         {T0 + 20 * MIN, T0 + 20 * MIN, 1, T0 + 15 * MIN, skip},
         1},
    };
    fire(p, f3, 1, T0 + 21 * MIN + SEC);
    checkpoint_end(p);
    name_run(p, "run:pause2", "job:pause", T0 + 1207 * SEC);
    name_run(p, "run:cronskip", "job:cron", T0 + 20 * MIN + 1);
    name_run(p, "run:cron1", "job:cron", T0 + 25 * MIN);
    store_miss_filter_t mf[NSIDE];
    for (int s = 0; s < NSIDE; s++)
        mf[s] = (store_miss_filter_t){ID(p, "job:cron", s), T0 + 10 * MIN, NULL, 10};
    walk(p, &misses_lister, "misses of job:cron at +10min", &mf[SQ], &mf[PG], 10);
    for (int s = 0; s < NSIDE; s++)
        mf[s].at_ms = T0 + 26 * MIN;
    walk(p, &misses_lister, "misses of job:cron at +26min", &mf[SQ], &mf[PG], 10);
    check_all(p);
}

static void scenario_reap(struct par *p)
{
    step(p, "claim for the reaper");
    claim(p, "wrk:1", NULL, 2, T0 + 21 * MIN + 10 * SEC, 0, 2);
    confirm(p, "wrk:1", "run:every1", T0 + 21 * MIN + 11 * SEC);
    /* A log of the unconfirmed attempt, which its undoing removes. */
    append_log(p, "run:pause1", NULL, 0, 1, "early", 5, false, T0 + 21 * MIN + 12 * SEC, 0);
    check_all(p);

    step(p, "reap an unconfirmed lease");
    reap(p, NEVER, T0 + 21 * MIN + 20 * SEC, 1);
    check_all(p);

    step(p, "reap an expired lease");
    reap(p, NEVER, T0 + 22 * MIN, 1);
    check_all(p);
}

static void scenario_retry(struct par *p)
{
    const int64_t t = T0 + 23 * MIN;
    step(p, "retry: first failure");
    trigger(p, "job:retry", "run:retry", t, 0);
    claim(p, "wrk:3", NULL, 1, t + SEC, 0, 1);
    confirm(p, "wrk:3", "run:retry", t + 2 * SEC);
    /* A failure's last checkpoint and result, which the retry's claim hands on. */
    g_checkpoint = "42";
    g_result = "{\"error\": \"disk full\"}";
    complete(p, "run:retry", NULL, ATTEMPT_FAILED, 3, 0, "exit status 3", false, t + 3 * SEC, 0);
    g_checkpoint = g_result = NULL;
    check_all(p);

    step(p, "retry: backoff, then a timeout");
    claim(p, "wrk:3", NULL, 1, t + 3500, 0, 0);    /* not before t + 4s */
    claim(p, "wrk:3", NULL, 1, t + 5 * SEC, 0, 1); /* with the checkpoint */
    confirm(p, "wrk:3", "run:retry", t + 6 * SEC);
    complete(p, "run:retry", NULL, ATTEMPT_TIMEOUT, -1, 9, "timeout after 1s", false, t + 7 * SEC,
             0);
    check_all(p);

    step(p, "retry: attempts used up");
    claim(p, "wrk:3", NULL, 1, t + 10 * SEC, 0, 1);
    confirm(p, "wrk:3", "run:retry", t + 11 * SEC);
    complete(p, "run:retry", NULL, ATTEMPT_FAILED, 1, 0, NULL, false, t + 12 * SEC, 0);
    complete(p, "run:retry", NULL, ATTEMPT_FAILED, 1, 0, NULL, false, t + 13 * SEC, 0); /* repeat */
    check_all(p);
}

static void scenario_cancel(struct par *p)
{
    const int64_t t = T0 + 24 * MIN;
    step(p, "not started, then cancel a running run");
    trigger(p, "job:retry", "run:refuse", t, 0);
    claim(p, "wrk:3", NULL, 1, t + SEC, 0, 1);
    complete(p, "run:refuse", NULL, ATTEMPT_NOT_STARTED, -1, 0, "lease over on arrival", false,
             t + 2 * SEC, 0);
    claim(p, "wrk:3", NULL, 1, t + 3 * SEC, 0, 1);
    confirm(p, "wrk:3", "run:refuse", t + 4 * SEC);
    cancel(p, "run:refuse", "operator", t + 5 * SEC, 0);
    check_all(p);

    step(p, "the worker learns of the cancel");
    const char *held = "run:refuse";
    const bool stop = false;
    heartbeat(p, "wrk:3", NULL, &held, &stop, 1, true, false, t + 6 * SEC, 0, false);
    complete(p, "run:refuse", NULL, ATTEMPT_CANCELED, -1, 15, "canceled", false, t + 7 * SEC, 0);
    cancel(p, "run:refuse", "again", t + 8 * SEC, SKED_ECONFLICT);
    check_all(p);

    step(p, "cancel a pending run");
    trigger(p, "job:retry", "run:cancelme", t + 10 * SEC, 0);
    cancel(p, "run:cancelme", "not needed", t + 11 * SEC, 0);
    int rc[NSIDE];
    for (int s = 0; s < NSIDE; s++)
        rc[s] =
            store_run_cancel(p->st[s], "run_01KDWHSG000000000000000000", "x", NULL, t + 12 * SEC);
    cmp_rc(p, "store_run_cancel(NULL, unknown run)", rc, SKED_ENOTFOUND);
    check_all(p);
}

static void scenario_pause(struct par *p)
{
    const int64_t t = T0 + 25 * MIN;
    step(p, "pause a job");
    set_state(p, "job:pause", JOB_PAUSED, t, 0);
    trigger(p, "job:pause", "run:pausetrig", t + SEC, 0);
    /* A paused job's schedule does not fire. */
    const struct fire_def f[] = {
        {"sch:pause",
         T0 + 1237 * SEC,
         T0 + 1537 * SEC,
         {{T0 + 1237 * SEC, T0 + 1237 * SEC, RUN_SCHEDULED, NULL}},
         1,
         {0},
         0},
    };
    fire(p, f, 1, t + 1500);
    claim(p, "wrk:1", NULL, 5, t + 2 * SEC, 0, 1); /* only run:cron1: the paused job's wait */
    confirm(p, "wrk:1", "run:cron1", t + 3 * SEC);
    check_all(p);

    step(p, "resume the job");
    set_state(p, "job:pause", JOB_ACTIVE, T0 + 26 * MIN, 0);
    check_all(p);

    step(p, "run the resumed job's runs");
    claim(p, "wrk:1", NULL, 3, T0 + 26 * MIN + SEC, 0, 3);
    const char *held[] = {"run:cron1", "run:pause1", "run:pause2", "run:pausetrig"};
    const bool keep[] = {true, true, true, true};
    heartbeat(p, "wrk:1", "tok_w1", held, keep, 4, true, false, T0 + 26 * MIN + 2 * SEC, 0, false);
    complete(p, "run:pause1", NULL, ATTEMPT_SUCCEEDED, 0, 0, NULL, false, T0 + 26 * MIN + 3 * SEC,
             0);
    complete(p, "run:pause2", NULL, ATTEMPT_FAILED, 2, 0, NULL, false, T0 + 26 * MIN + 4 * SEC, 0);
    complete(p, "run:pausetrig", NULL, ATTEMPT_SUCCEEDED, 0, 0, NULL, false,
             T0 + 26 * MIN + 5 * SEC, 0);
    check_all(p);

    step(p, "overlap forbid");
    trigger(p, "job:cron", "run:crontrig", T0 + 27 * MIN, 0);
    claim(p, "wrk:1", NULL, 2, T0 + 27 * MIN + SEC, 0, 0); /* run:cron1 still runs */
    complete(p, "run:cron1", NULL, ATTEMPT_SUCCEEDED, 0, 0, NULL, false, T0 + 27 * MIN + 2 * SEC,
             0);
    check_all(p);
}

static void scenario_update_delete(struct par *p)
{
    step(p, "update jobs");
    trigger(p, "job:every", "run:every2", T0 + 28 * MIN, 0);
    struct job_def every = J_EVERY;
    every.priority = 7;
    every.queue = "q3";
    every.tags = ",hourly,ops,";
    every.spec_rev = 2;
    every.nscheds = 2;
    every.sched[0] =
        (struct sched_def){"sch:every", SCHEDULE_EVERY, "120s",        "UTC", INT64_MIN, INT64_MAX,
                           0,           INT64_MIN,      T0 + 30 * MIN, true};
    every.sched[1] = (struct sched_def){"sch:every-b", SCHEDULE_CRON, "0 * * * *", "UTC",
                                        INT64_MIN,     INT64_MAX,     0,           0,
                                        T0 + HOUR,     false};
    update_job(p, &every, 99, T0 + 28 * MIN + SEC, SKED_EPRECOND);
    update_job(p, &every, -1, T0 + 28 * MIN + 2 * SEC, 0);
    struct job_def cron = J_CRON;
    cron.spec_rev = 2;
    cron.sched[0].expr = "*/10 * * * *";
    cron.sched[0].next_ms = T0 + 30 * MIN;
    cron.sched[0].keep = true;
    cron.sched[1] = (struct sched_def){
        "sch:cron-b", SCHEDULE_EVERY, "1h", "UTC", INT64_MIN, INT64_MAX, 0, T0, T0 + HOUR, false};
    update_job(p, &cron, 0, T0 + 28 * MIN + 3 * SEC, 0);
    struct job_def idem = J_IDEM;
    idem.name = "every-min"; /* taken */
    update_job(p, &idem, 0, T0 + 28 * MIN + 4 * SEC, SKED_ECONFLICT);
    check_all(p);

    const int64_t t = T0 + 29 * MIN;
    step(p, "delete a job");
    trigger(p, "job:doomed", "run:doomed2", t, 0);
    claim(p, "wrk:2", NULL, 1, t + SEC, 0, 1); /* run:doomed, aged 29 minutes */
    confirm(p, "wrk:2", "run:doomed", t + 2 * SEC);
    set_state(p, "job:doomed", JOB_DELETED, t + 3 * SEC, 0);
    trigger(p, "job:doomed", "run:doomed3", t + 4 * SEC, SKED_ECONFLICT);
    set_state(p, "job:doomed", JOB_PAUSED, t + 4 * SEC, SKED_ENOTFOUND);
    check_all(p);

    step(p, "the deleted job's running run stops");
    const char *held = "run:doomed";
    const bool stop = false;
    heartbeat(p, "wrk:2", NULL, &held, &stop, 1, true, false, t + 5 * SEC, 0, false);
    complete(p, "run:doomed", NULL, ATTEMPT_CANCELED, -1, 15, NULL, false, t + 6 * SEC, 0);
    check_all(p);
}

static const struct job_def J_REPLACE = {.label = "job:replace",
                                         .name = "replacer",
                                         .queue = "rp",
                                         .overlap = OVERLAP_REPLACE,
                                         .retry = {2, 2 * SEC, 10 * SEC, 2.0, false}};
static const struct job_def J_MAXC = {.label = "job:maxc",
                                      .name = "two-at-a-time",
                                      .queue = "mc",
                                      .constraints = "zone=a",
                                      .max_concurrency = 2};
static const struct job_def J_NOMATCH = {.label = "job:nomatch",
                                         .name = "no-match-\xc3\xb1-\xe2\x98\x95",
                                         .queue = "mc",
                                         .tags = ",caf\xc3\xa9,",
                                         .constraints = "zone=z"};
static const struct job_def J_ONCE = {
    .label = "job:once",
    .name = "once",
    .queue = "mc",
    .nscheds = 1,
    .sched = {{"sch:once", SCHEDULE_AT, "2026-01-01T00:33:00Z", "UTC", INT64_MIN, INT64_MAX, 0, 0,
               T0 + 33 * MIN}}};

static void scenario_claims(struct par *p)
{
    const int64_t t = T0 + 31 * MIN;
    step(p, "more jobs and a worker");
    create_job(p, &J_REPLACE, false, NULL, t, 0);
    create_job(p, &J_MAXC, false, NULL, t + 1, 0);
    create_job(p, &J_NOMATCH, false, NULL, t + 2, 0);
    create_job(p, &J_ONCE, false, NULL, t + 3, 0);
    const struct worker_def w4 = {"wrk:4", "w4", "h4", "zone=a", "rp,mc", "tok_w4", "", 3};
    register_worker(p, &w4, t + 4);
    /* A registration that leaves out what it may (the store fills in). */
    store_worker_t bare[NSIDE];
    int rc[NSIDE];
    for (int s = 0; s < NSIDE; s++) {
        bare[s] = (store_worker_t){.name = xstrdup("bare"), .queues = xstrdup(""), .slots = 1};
        rc[s] = store_worker_register(p->st[s], &bare[s], NULL, t + 5);
    }
    if (cmp_rc(p, "store_worker_register(NULL, bare)", rc, 0)) {
        bind_pair(p, "wrk:bare", bare[SQ].id, bare[PG].id);
        cmp_worker(p, "store_worker_register(NULL, bare) OUT", &bare[SQ], &bare[PG]);
    }
    store_worker_clear(&bare[SQ]);
    store_worker_clear(&bare[PG]);
    check_all(p);

    step(p, "an unconfirmed lease and a stale fence");
    trigger(p, "job:replace", "run:rep1", t + SEC, 0);
    claim(p, "wrk:4", NULL, 1, t + 2 * SEC, 0, 1);
    const char *rep1 = "run:rep1";
    const bool yes = true, no = false;
    heartbeat(p, "wrk:4", NULL, &rep1, &yes, 1, false, false, t + 3 * SEC, 0, false);
    confirm(p, "wrk:4", "run:rep1", t + 4 * SEC);
    heartbeat(p, "wrk:4", NULL, &rep1, &no, 1, true, true, t + 4500, 0, false);
    check_all(p);

    step(p, "overlap replace");
    trigger(p, "job:replace", "run:rep2", t + 5 * SEC, 0);
    claim(p, "wrk:4", NULL, 2, t + 6 * SEC, 0, 0); /* run:rep2 waits, run:rep1 is asked to stop */
    heartbeat(p, "wrk:4", NULL, &rep1, &no, 1, true, false, t + 7 * SEC, 0, false);
    complete(p, "run:rep1", NULL, ATTEMPT_CANCELED, -1, 15, NULL, false, t + 8 * SEC, 0);
    claim(p, "wrk:4", NULL, 2, t + 9 * SEC, 0, 1);
    confirm(p, "wrk:4", "run:rep2", t + 10 * SEC);
    check_all(p);

    step(p, "another token's worker");
    complete(p, "run:rep2", "tok_w1", ATTEMPT_SUCCEEDED, 0, 0, NULL, false, t + 11 * SEC,
             SKED_EFORBID);
    append_log(p, "run:rep2", "tok_w1", 0, 1, "x", 1, false, t + 11 * SEC, SKED_EFORBID);
    append_log(p, "run:rep2", "tok_w4", 0, 1, "mine\n", 5, false, t + 12 * SEC, 0);
    append_log(p, "run:rep2", "tok_w4", 1, 2, "", 0, false, t + 12 * SEC + 1, 0); /* empty */
    const char *rep2 = "run:rep2";
    heartbeat(p, "wrk:4", "tok_w1", &rep2, &yes, 1, true, false, t + 13 * SEC, SKED_EFORBID, false);
    check_all(p);

    step(p, "reap a lease with retries left");
    reap(p, NEVER, t + 41 * SEC, 1);
    /* The lost attempt's worker speaks up late: too late. */
    heartbeat(p, "wrk:4", NULL, &rep2, &no, 1, true, false, t + 41 * SEC + 1, 0, false);
    append_log(p, "run:rep2", NULL, 2, 1, "late", 4, false, t + 41 * SEC + 2, SKED_ESTALE);
    complete(p, "run:rep2", NULL, ATTEMPT_SUCCEEDED, 0, 0, NULL, false, t + 41 * SEC + 3,
             SKED_ESTALE);
    check_all(p);

    step(p, "max concurrency and constraints");
    trigger(p, "job:maxc", "run:mc1", t + 42 * SEC, 0);
    trigger(p, "job:maxc", "run:mc2", t + 43 * SEC, 0);
    trigger(p, "job:maxc", "run:mc3", t + 44 * SEC, 0);
    trigger(p, "job:nomatch", "run:nm", t + 45 * SEC, 0);
    claim(p, "wrk:4", NULL, 5, t + 50 * SEC, 0, 3); /* run:rep2, run:mc1, run:mc2 */
    const char *held[] = {"run:rep2", "run:mc1", "run:mc2"};
    const bool keep[] = {true, true, true};
    heartbeat(p, "wrk:4", "tok_w4", held, keep, 3, true, false, t + 52 * SEC, 0, false);
    cancel(p, "run:mc1", "operator", t + 53 * SEC, 0);
    check_all(p);

    step(p, "reap: canceled, failed, out of retries");
    reap(p, NEVER, t + 83 * SEC, 3);
    check_all(p);

    step(p, "a schedule runs out");
    const struct fire_def f[] = {
        {"sch:once",
         T0 + 33 * MIN,
         -1,
         {{T0 + 33 * MIN, T0 + 33 * MIN, RUN_SCHEDULED, NULL}},
         1,
         {0},
         1},
    };
    fire(p, f, 1, T0 + 33 * MIN + SEC);
    checkpoint_end(p);
    name_run(p, "run:once", "job:once", T0 + 33 * MIN);
    check_all(p);
}

static void scenario_workers_prune(struct par *p)
{
    const int64_t t = T0 + 40 * MIN;
    step(p, "drain and deregister a worker");
    worker_state(p, "wrk:2", "tok_w1", true, t, SKED_EFORBID);
    worker_state(p, "wrk:2", "tok_w2", true, t, 0);
    heartbeat(p, "wrk:2", NULL, NULL, NULL, 0, true, false, t + SEC, 0, true);
    trigger(p, "job:idem", "run:idem", t + 2 * SEC, 0);
    claim(p, "wrk:2", NULL, 1, t + 3 * SEC, 0, 0);
    worker_state(p, "wrk:2", NULL, false, t + 4 * SEC, 0);
    check_all(p);

    step(p, "lost workers come back");
    reap(p, 10 * MIN, T0 + 45 * MIN, 0);
    const struct worker_def w3 = {"wrk:3", "w3", "h3b", "zone=b", "rq", "tok_w3", "", 2};
    register_worker(p, &w3, T0 + 46 * MIN); /* a lost worker of the same owner: its id */
    const struct worker_def w1b = {"wrk:1b", "w1", "h9", "", "default", "tok_other", "", 1};
    register_worker(p, &w1b, T0 + 46 * MIN + 1); /* another owner's: a new worker */
    heartbeat(p, "wrk:9", NULL, NULL, NULL, 0, true, false, T0 + 46 * MIN + 2, SKED_ENOTFOUND,
              false);
    heartbeat(p, "wrk:2", NULL, NULL, NULL, 0, true, false, T0 + 46 * MIN + 3, SKED_ENOTFOUND,
              false);                                    /* gone */
    claim(p, "wrk:4", NULL, 5, T0 + 46 * MIN + 4, 0, 2); /* lost, back: run:mc3 and run:once */
    const struct worker_def w4b = {"wrk:4b", "w4", "h4", "zone=a", "rp,mc", "tok_w4", "", 3};
    register_worker(p, &w4b, T0 + 46 * MIN + 5); /* wrk:4 is active again: a new worker */
    check_all(p);

    step(p, "edge cases");
    /* A deleted job's name is free again. */
    const struct job_def reborn = {.label = "job:reborn", .name = "doomed", .queue = "dq"};
    create_job(p, &reborn, false, NULL, T0 + 47 * MIN, 0);
    struct job_def doomed = J_DOOMED;
    doomed.spec_rev = 9;
    update_job(p, &doomed, 0, T0 + 47 * MIN + 1, SKED_ENOTFOUND); /* deleted */
    /* Pausing twice, resuming what runs: no harm, no change of outcome. */
    set_state(p, "job:cron", JOB_PAUSED, T0 + 47 * MIN + 2, 0);
    set_state(p, "job:cron", JOB_PAUSED, T0 + 47 * MIN + 3, 0);
    struct job_def cron = J_CRON;
    cron.spec_rev = 3;
    cron.nscheds = 1;
    cron.sched[0] = (struct sched_def){
        "sch:cron", SCHEDULE_CRON, "*/15 * * * *", "UTC", T0, T0 + 24 * HOUR, 0, 0,
        T0 + HOUR,  true};
    update_job(p, &cron, -1, T0 + 47 * MIN + 4, 0); /* paused: its schedule stays inactive */
    check_due(p, T0 + 400 * 24 * HOUR, 100);
    set_state(p, "job:idem", JOB_ACTIVE, T0 + 47 * MIN + 5, 0);
    /* A gone worker of the same name and owner comes back under its id. */
    const struct worker_def w2 = {"wrk:2", "w2", "h2b", "", "default,dq", "tok_w2", "default", 2};
    register_worker(p, &w2, T0 + 47 * MIN + 6);
    worker_state(p, "wrk:9", NULL, true, T0 + 47 * MIN + 7, SKED_ENOTFOUND);
    int rcp[NSIDE];
    for (int s = 0; s < NSIDE; s++)
        rcp[s] = store_ping(p->st[s]);
    cmp_rc(p, "store_ping", rcp, 0);
    check_all(p);

    step(p, "prune");
    reap(p, NEVER, T0 + 50 * MIN, 2); /* run:mc3 and run:once were never confirmed */
    int rc[NSIDE];
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_prune(p->st[s], T0 + 24 * MIN);
    cmp_i(p, "store_prune(+24min)", "removed", rc[SQ], rc[PG]);
    if (rc[SQ] != 4) diff(p, "store_prune(+24min): sqlite removed %d runs, expected 4", rc[SQ]);
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_prune(p->st[s], T0 + 24 * MIN);
    cmp_rc(p, "store_prune(+24min) again", rc, 0);
    check_all(p);
}

/* ---- tokens, users and the audit log ---------------------------------------------- */

static void check_token(struct par *p, const char *what, int rc_want,
                        int (*get)(store_t *, const char *, store_token_t *),
                        const char *const key[NSIDE])
{
    store_token_t t[NSIDE];
    int rc[NSIDE];
    for (int s = 0; s < NSIDE; s++) {
        memset(&t[s], 0, sizeof t[s]);
        rc[s] = get(p->st[s], key[s], &t[s]);
    }
    if (cmp_rc(p, what, rc, rc_want) && rc_want == 0) cmp_token(p, what, &t[SQ], &t[PG]);
    for (int s = 0; s < NSIDE; s++)
        store_token_clear(&t[s]);
}

static int64_t g_lookup_now; /* the now_ms of lookup_at */

static int lookup_at(store_t *st, const char *hash, store_token_t *out)
{
    return store_token_lookup(st, hash, g_lookup_now, out);
}

/* Looks a token up by the hash of its secret, at now. */
static void lookup(struct par *p, const char *hash, int64_t now, int want)
{
    const char *const key[NSIDE] = {hash, hash};
    char what[512];
    snprintf(what, sizeof what, "store_token_lookup(%.8s..., at %+" PRId64 " ms)", hash, now - T0);
    g_lookup_now = now;
    check_token(p, what, want, lookup_at, key);
}

static void check_auth(struct par *p)
{
    store_token_filter_t tf[] = {
        {.user = NULL}, {.user = "alice"}, {.user = ""}, {.name = "admin"}};
    static const char *const tf_title[] = {"tokens", "tokens of alice", "standalone tokens",
                                           "tokens named admin"};
    for (size_t i = 0; i < sizeof tf / sizeof *tf; i++)
        walk1(p, &tokens_lister, tf_title[i], &tf[i], 2);
    store_audit_filter_t af[] = {{.since_ms = INT64_MIN},
                                 {.since_ms = T0 + HOUR + 3 * SEC},
                                 {.since_ms = INT64_MIN, .actor = "root"}};
    static const char *const af_title[] = {"audit", "audit since +1h3s", "audit by root"};
    for (size_t i = 0; i < sizeof af / sizeof *af; i++)
        walk1(p, &audit_lister, af_title[i], &af[i], 2);
    for (size_t i = 0; i < p->npairs; i++) {
        const struct pair *x = &p->pairs[i];
        if (strncmp(x->id[SQ], "tok_", 4) != 0) continue;
        char what[512];
        snprintf(what, sizeof what, "store_token_get(%s)", x->label);
        const char *const key[NSIDE] = {x->id[SQ], x->id[PG]};
        check_token(p, what, 0, store_token_get, key);
    }
    store_user_t *u[NSIDE] = {NULL, NULL};
    size_t n[NSIDE] = {0, 0};
    int rc[NSIDE];
    int64_t count[NSIDE] = {-1, -1};
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_user_list(p->st[s], &u[s], &n[s]);
    if (cmp_rc(p, "store_user_list", rc, 0) && n[SQ] != n[PG])
        diff(p, "store_user_list: %zu users in sqlite, %zu in postgres", n[SQ], n[PG]);
    /* By name, in the same order (a name is a user's identity). */
    char order[NSIDE][1024];
    for (int s = 0; s < NSIDE; s++) {
        size_t at = 0;
        order[s][0] = '\0';
        for (size_t i = 0; i < n[s] && at < sizeof order[s]; i++)
            at += (size_t)snprintf(order[s] + at, sizeof order[s] - at, "%s%s", i ? ", " : "",
                                   u[s][i].name);
    }
    if (strcmp(order[SQ], order[PG]) != 0)
        diff(p, "store_user_list: the order differs: sqlite [%s] postgres [%s]", order[SQ],
             order[PG]);
    for (size_t i = 0; i < n[SQ]; i++)
        for (size_t k = 0; k < n[PG]; k++)
            if (strcmp(u[SQ][i].name, u[PG][k].name) == 0) {
                char what[512];
                snprintf(what, sizeof what, "store_user_list #%zu store_user_t %s", i,
                         u[SQ][i].name);
                cmp_user(p, what, &u[SQ][i], &u[PG][k]);
            }
    for (int s = 0; s < NSIDE; s++) {
        for (size_t i = 0; i < n[s]; i++)
            store_user_clear(&u[s][i]);
        free(u[s]);
        rc[s] = store_token_count(p->st[s], &count[s]);
    }
    if (cmp_rc(p, "store_token_count", rc, 0))
        cmp_i(p, "store_token_count", "count", count[SQ], count[PG]);
    checkpoint_end(p);
}

static store_audit_t audit_entry(int64_t at, const char *actor, const char *method,
                                 const char *route, const char *target, int status)
{
    return (store_audit_t){.at_ms = at,
                           .actor = (char *)actor,
                           .role = (char *)"admin",
                           .method = (char *)method,
                           .route = (char *)route,
                           .target = (char *)target,
                           .ns = (char *)"",
                           .source = (char *)"[::1]",
                           .status = status};
}

/* Creates (issue) a token on both stores and names it. */
static void issue(struct par *p, const char *label, store_token_t *t, const char *hash,
                  const store_audit_t *a, int64_t now)
{
    char id[NSIDE][SKED_ID_LEN];
    int rc[NSIDE];
    char verb[512];
    snprintf(verb, sizeof verb, "store_token_issue(%s)", label);
    for (int s = 0; s < NSIDE; s++) {
        rc[s] = store_token_issue(p->st[s], t, hash, a, now);
        snprintf(id[s], SKED_ID_LEN, "%s", t->id);
    }
    if (cmp_rc(p, verb, rc, 0)) bind_pair(p, label, id[SQ], id[PG]);
}

static void user_verb(struct par *p, const char *verb, const store_user_t *u,
                      const store_audit_t *a, int64_t now, int want)
{
    int rc[NSIDE];
    for (int s = 0; s < NSIDE; s++) {
        if (strcmp(verb, "create") == 0)
            rc[s] = store_user_create(p->st[s], u, a, now);
        else if (strcmp(verb, "update") == 0)
            rc[s] = store_user_update(p->st[s], u, a, now);
        else
            rc[s] = store_user_delete(p->st[s], u->name, a, now);
    }
    char what[512];
    snprintf(what, sizeof what, "store_user_%s(%s)", verb, u->name);
    cmp_rc(p, what, rc, want);
}

static void scenario_auth(struct par *p)
{
    static const char h_admin[] =
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    static const char h_alice[] =
        "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
    static const char h_bob[] = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
    const int64_t t = T0 + HOUR;
    step(p, "tokens and users");
    store_token_t admin = {
        .name = (char *)"admin", .role = ROLE_ADMIN, .ns = (char *)"", .expires_ms = -1};
    issue(p, "tok:admin", &admin, h_admin, NULL, t);
    store_user_t alice = {(char *)"alice",
                          (char *)"$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA",
                          ROLE_USER,
                          (char *)"default,team-a",
                          0,
                          0};
    store_audit_t a = audit_entry(t + SEC, "root", "POST", "/v1/users", "alice", 201);
    user_verb(p, "create", &alice, &a, t + SEC, 0);
    user_verb(p, "create", &alice, NULL, t + SEC, SKED_ECONFLICT);
    store_token_t at = {.name = (char *)"alice",
                        .role = ROLE_USER,
                        .ns = (char *)"",
                        .expires_ms = t + 24 * HOUR,
                        .user = (char *)"alice"};
    a = audit_entry(t + 2 * SEC, "alice", "POST", "/v1/tokens", "alice", 201);
    issue(p, "tok:alice", &at, h_alice, &a, t + 2 * SEC);
    store_user_t bob = {(char *)"bob", (char *)"$argon2id$bob", ROLE_OPERATOR, (char *)"", 0, 0};
    user_verb(p, "create", &bob, NULL, t + 3 * SEC, 0);
    store_token_t bt = {.name = (char *)"bob",
                        .role = ROLE_OPERATOR,
                        .ns = (char *)"",
                        .expires_ms = -1,
                        .user = (char *)"bob"};
    issue(p, "tok:bob", &bt, h_bob, NULL, t + 4 * SEC);
    lookup(p, h_admin, t + 5 * SEC, 0);
    lookup(p, h_alice, t + 5 * SEC, 0);
    lookup(p, h_alice, t + 25 * HOUR, SKED_ENOTFOUND); /* expired */
    int rc[NSIDE];
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_token_touch(p->st[s], ID(p, "tok:alice", s), t + 6 * SEC);
    cmp_rc(p, "store_token_touch", rc, 0);
    for (int s = 0; s < NSIDE; s++) /* within STORE_TOKEN_TOUCH_MS: no write */
        rc[s] = store_token_touch(p->st[s], ID(p, "tok:alice", s), t + 7 * SEC);
    cmp_rc(p, "store_token_touch again", rc, 0);
    check_auth(p);

    step(p, "change users and revoke tokens");
    alice.role = ROLE_VIEWER;
    alice.namespaces = (char *)"team-a";
    a = audit_entry(t + 8 * SEC, "root", "PATCH", "/v1/users/{name}", "alice", 200);
    user_verb(p, "update", &alice, &a, t + 8 * SEC, 0);
    lookup(p, h_alice, t + 9 * SEC, 0); /* the user's role and namespaces now */
    a = audit_entry(t + 10 * SEC, "root", "DELETE", "/v1/users/{name}", "bob", 204);
    user_verb(p, "delete", &bob, &a, t + 10 * SEC, 0);
    user_verb(p, "delete", &bob, NULL, t + 11 * SEC, SKED_ENOTFOUND);
    lookup(p, h_bob, t + 12 * SEC, SKED_ENOTFOUND);
    a = audit_entry(t + 13 * SEC, "root", "DELETE", "/v1/tokens/{id}", "tok", 204);
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_token_revoke(p->st[s], ID(p, "tok:alice", s), &a, t + 13 * SEC);
    cmp_rc(p, "store_token_revoke", rc, 0);
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_token_revoke(p->st[s], ID(p, "tok:alice", s), NULL, t + 14 * SEC);
    cmp_rc(p, "store_token_revoke again", rc, 0);
    lookup(p, h_alice, t + 15 * SEC, SKED_ENOTFOUND);
    a = audit_entry(t + 16 * SEC, "nobody", "POST", "/v1/login", "", 401);
    a.role = (char *)"";
    for (int s = 0; s < NSIDE; s++)
        rc[s] = store_audit_append(p->st[s], &a);
    cmp_rc(p, "store_audit_append", rc, 0);
    store_user_t got[NSIDE];
    for (int s = 0; s < NSIDE; s++) {
        memset(&got[s], 0, sizeof got[s]);
        rc[s] = store_user_get(p->st[s], "alice", &got[s]);
    }
    if (cmp_rc(p, "store_user_get(alice)", rc, 0))
        cmp_user(p, "store_user_get(alice)", &got[SQ], &got[PG]);
    for (int s = 0; s < NSIDE; s++) {
        store_user_clear(&got[s]);
        rc[s] = store_user_get(p->st[s], "bob", &got[s]);
    }
    cmp_rc(p, "store_user_get(bob)", rc, SKED_ENOTFOUND);
    check_auth(p);
}

static void test_scenario(void **state)
{
    struct par *p = *state;
    /* An unknown worker id (the same string in both stores) for the
     * not-found paths. */
    add_pair(p, "wrk:9", "wrk_01KDWHSG000000000000000000", "wrk_01KDWHSG000000000000000000");
    scenario_create(p);
    scenario_logs_and_success(p);
    scenario_fire(p);
    scenario_reap(p);
    scenario_retry(p);
    scenario_cancel(p);
    scenario_pause(p);
    scenario_update_delete(p);
    scenario_claims(p);
    scenario_workers_prune(p);
    scenario_auth(p);
    finish(p);
}

/* ---- names in a natural-language collation --------------------------------------- */

static void test_collation(void **state)
{
    struct par *p = *state;
    static const char *const names[] = {"w1",           "W2",  "_x", "x-1", "X0",
                                        "\xc3\xa4rger", "a b", "ab", "a-c", "B"};
    step(p, "workers and users by name");
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char label[32];
        snprintf(label, sizeof label, "wrk:%s", names[i]);
        const struct worker_def w = {label, names[i], "h", "", "default", "tok", "", 1};
        register_worker(p, &w, T0 + (int64_t)i);
    }
    walk1(p, &workers_lister, "workers (pages of 3)", NULL, 3);
    walk1(p, &workers_lister, "workers (one page)", NULL, 100);
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        store_user_t u = {(char *)names[i], (char *)"$argon2id$x", ROLE_VIEWER, (char *)"", 0, 0};
        user_verb(p, "create", &u, NULL, T0 + HOUR + (int64_t)i, 0);
    }
    check_auth(p);
    finish(p);
}

/* ---- the schema catalogs ------------------------------------------------------------- */

/* One schema as a list of facts, one line each ("column jobs.id text notnull
 * default=no"), built from each engine's catalog in a shared vocabulary so
 * that the two lists can be compared line by line. */
struct facts {
    char **v;
    size_t n, cap;
};

__attribute__((format(printf, 2, 3))) static void fact(struct facts *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    if (vasprintf(&line, fmt, ap) < 0) abort();
    va_end(ap);
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 128;
        f->v = xrealloc(f->v, f->cap * sizeof *f->v);
    }
    f->v[f->n++] = line;
}

static void facts_free(struct facts *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i]);
    free(f->v);
}

/* Column types in the shared vocabulary: how each engine's type is read. */
static const char *type_class(const char *t)
{
    static const struct {
        const char *type, *cls;
    } map[] = {
        /* SQLite's declared types (what the migrations spell). */
        {"INTEGER", "int"},
        {"TEXT", "text"},
        {"REAL", "real"},
        {"BLOB", "bytes"},
        /* PostgreSQL's. A boolean is an INTEGER 0/1 in SQLite. */
        {"integer", "int"},
        {"bigint", "int"},
        {"smallint", "int"},
        {"boolean", "int"},
        {"text", "text"},
        {"double precision", "real"},
        {"bytea", "bytes"},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(t, map[i].type) == 0) return map[i].cls;
    return t; /* unmapped: compared as is, so it shows up */
}

static char *str_lower(const char *s)
{
    char *r = xstrdup(s);
    for (char *c = r; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return r;
}

/* Strips whitespace at both ends and, while they wrap all of it, parentheses. */
static void strip(char **s, size_t *len)
{
    for (;;) {
        while (*len && isspace((unsigned char)**s))
            (*s)++, (*len)--;
        while (*len && isspace((unsigned char)(*s)[*len - 1]))
            (*len)--;
        if (*len < 2 || (*s)[0] != '(' || (*s)[*len - 1] != ')') return;
        int depth = 0;
        for (size_t i = 0; i < *len; i++) {
            depth += (*s)[i] == '(' ? 1 : (*s)[i] == ')' ? -1 : 0;
            if (depth == 0 && i + 1 < *len) return; /* "(a) and (b)" */
        }
        (*s)++;
        *len -= 2;
    }
}

/* Appends one conjunct of a partial-index predicate in normal form. */
static void pred_term(char *t, size_t len, char *out, size_t outsz)
{
    char term[256] = "", *w = term;
    strip(&t, &len);
    bool neg = len > 4 && strncmp(t, "not ", 4) == 0;
    if (neg) t += 4, len -= 4;
    for (size_t i = 0; i < len && w < term + sizeof term - 1; i++)
        if (!isspace((unsigned char)t[i]) && t[i] != '(' && t[i] != ')') *w++ = t[i];
    *w = '\0';
    /* PostgreSQL writes "x IN (a, b)" back as "x = ANY (ARRAY[a, b])". */
    char *any = strstr(term, "=anyarray[");
    if (any) {
        memmove(any + 2, any + 10, strlen(any + 10) + 1);
        memcpy(any, "in", 2);
        char *br = strchr(any, ']');
        if (br) memmove(br, br + 1, strlen(br));
    }
    char *ne = strstr(term, "!=");
    if (ne) memcpy(ne, "<>", 2);
    /* A boolean column: PostgreSQL's "active" / "NOT held" is SQLite's
     * "active = 1" / "held = 0". */
    bool bare =
        term[0] != '\0' && strspn(term, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(term);
    size_t at = strlen(out);
    snprintf(out + at, outsz - at, "%s%s%s", at ? " & " : "", term,
             bare ? (neg ? "=0" : "=1") : "");
}

/* A predicate in normal form: conjuncts, each without spaces or brackets,
 * IN lists and booleans spelt one way. NULL in, "-" out. */
static char *pred_norm(const char *pred)
{
    if (!pred || !*pred) return xstrdup("-");
    char *low = str_lower(pred), *s = low, out[512] = "";
    size_t len = strlen(s);
    strip(&s, &len);
    int depth = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] == '(') depth++;
        if (i < len && s[i] == ')') depth--;
        if (i == len || (depth == 0 && strncmp(s + i, " and ", 5) == 0)) {
            pred_term(s + start, i - start, out, sizeof out);
            start = i + 5;
            i += 4;
        }
    }
    free(low);
    return xstrdup(out);
}

/* ---- SQLite's catalog ---- */

static sqlite3_stmt *sq_prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        fail_msg("sqlite: %s: %s", sql, sqlite3_errmsg(db));
    return q;
}

static const char *sq_text(sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    return t ? (const char *)t : "";
}

/* SQLite's partial-index predicate: what follows WHERE in its CREATE INDEX. */
static char *sq_index_pred(sqlite3 *db, const char *index)
{
    sqlite3_stmt *q =
        sq_prep(db, "SELECT sql FROM sqlite_schema WHERE type = 'index' AND name = ?");
    sqlite3_bind_text(q, 1, index, -1, SQLITE_TRANSIENT);
    char *pred = NULL;
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0)) {
        char *low = str_lower(sq_text(q, 0));
        const char *w = strstr(low, " where ");
        if (w) pred = xstrdup(sq_text(q, 0) + (w - low) + 7);
        free(low);
    }
    sqlite3_finalize(q);
    return pred;
}

/* The columns of an index or constraint, "a,b", in order. New. */
static char *sq_index_cols(sqlite3 *db, const char *index)
{
    char *sql = xasprintf("SELECT name FROM pragma_index_info('%s') ORDER BY seqno", index);
    sqlite3_stmt *q = sq_prep(db, sql);
    char cols[512] = "";
    while (sqlite3_step(q) == SQLITE_ROW) {
        size_t at = strlen(cols);
        snprintf(cols + at, sizeof cols - at, "%s%s", at ? "," : "", sq_text(q, 0));
    }
    sqlite3_finalize(q);
    free(sql);
    return xstrdup(cols);
}

static void sq_table(sqlite3 *db, const char *t, const char *create_sql, struct facts *f)
{
    char *sql = xasprintf("SELECT name, type, \"notnull\", dflt_value IS NOT NULL, pk, hidden"
                          " FROM pragma_table_xinfo('%s') ORDER BY cid",
                          t);
    sqlite3_stmt *q = sq_prep(db, sql);
    int pos = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (sqlite3_column_int(q, 5) != 0) continue; /* generated or hidden: none expected */
        /* A PRIMARY KEY column is NOT NULL in both engines' intent, but a
         * rowid table in SQLite reports (and, for legacy reasons, allows)
         * NULL in a non-INTEGER primary key; PostgreSQL always forbids it.
         * The store never writes one, so the key counts as NOT NULL here. */
        bool notnull = sqlite3_column_int(q, 2) || sqlite3_column_int(q, 4);
        fact(f, "column %s.%s #%d %s %s default=%s", t, sq_text(q, 0), ++pos,
             type_class(sq_text(q, 1)), notnull ? "notnull" : "null",
             sqlite3_column_int(q, 3) ? "yes" : "no");
    }
    sqlite3_finalize(q);
    free(sql);
    sql = xasprintf("SELECT group_concat(name) FROM (SELECT name FROM pragma_table_xinfo('%s')"
                    " WHERE pk > 0 ORDER BY pk)",
                    t);
    q = sq_prep(db, sql);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
        fact(f, "primary key %s(%s)", t, sq_text(q, 0));
    sqlite3_finalize(q);
    free(sql);

    sql = xasprintf("SELECT name, \"unique\", origin, partial FROM pragma_index_list('%s')", t);
    q = sq_prep(db, sql);
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *name = sq_text(q, 0), *origin = sq_text(q, 2);
        char *cols = sq_index_cols(db, name);
        if (strcmp(origin, "pk") == 0) {
            /* The primary key's own index: the key is listed above. */
        } else if (strcmp(origin, "u") == 0) {
            fact(f, "unique constraint %s(%s)", t, cols);
        } else {
            char *pred = sq_index_pred(db, name);
            char *norm = pred_norm(pred);
            fact(f, "index %s on %s(%s) %s where %s", name, t, cols,
                 sqlite3_column_int(q, 1) ? "unique" : "nonunique", norm);
            free(norm);
            free(pred);
        }
        free(cols);
    }
    sqlite3_finalize(q);
    free(sql);

    sql = xasprintf("SELECT \"table\", group_concat(\"from\"), group_concat(\"to\"), on_delete"
                    " FROM (SELECT * FROM pragma_foreign_key_list('%s') ORDER BY id, seq)"
                    " GROUP BY id",
                    t);
    q = sq_prep(db, sql);
    while (sqlite3_step(q) == SQLITE_ROW) {
        char *del = str_lower(sq_text(q, 3));
        fact(f, "foreign key %s(%s) references %s(%s) on delete %s", t, sq_text(q, 1),
             sq_text(q, 0), sq_text(q, 2), del);
        free(del);
    }
    sqlite3_finalize(q);
    free(sql);

    /* CHECK constraints have no pragma; count them in the CREATE text. */
    char *low = str_lower(create_sql);
    int checks = 0;
    for (const char *c = low; (c = strstr(c, "check")); c += 5)
        if ((c == low || !isalnum((unsigned char)c[-1])) && !isalnum((unsigned char)c[5])) checks++;
    free(low);
    fact(f, "check constraints on %s: %d", t, checks);
}

/* Tables only SQLite has, on purpose. */
static const char *const sq_only[] = {
    /* The fence counter of the first schema. Fences are random since
     * migration 3 (store__fence_new); PostgreSQL kept a sequence for the
     * same purpose (fence_seq, see pg_only_sequences). Both are unused. */
    "counters",
};

static void sq_catalog(const char *path, struct facts *f)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        fail_msg("sqlite: open %s: %s", path, sqlite3_errmsg(db));
    sqlite3_stmt *q = sq_prep(db, "SELECT name, sql FROM sqlite_schema WHERE type = 'table'"
                                  " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name");
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *t = sq_text(q, 0);
        bool known = false;
        for (size_t i = 0; i < sizeof sq_only / sizeof *sq_only; i++)
            known |= strcmp(t, sq_only[i]) == 0;
        if (known) continue;
        fact(f, "table %s", t);
        sq_table(db, t, sq_text(q, 1), f);
    }
    sqlite3_finalize(q);
    q = sq_prep(db, "SELECT type, name FROM sqlite_schema WHERE type NOT IN ('table', 'index')");
    while (sqlite3_step(q) == SQLITE_ROW) /* views (none expected) and triggers */
        fact(f, "%s %s", sq_text(q, 0), sq_text(q, 1));
    sqlite3_finalize(q);
    sqlite3_close(db);
}

/* ---- PostgreSQL's catalog ---- */

static PGresult *pg_query(PGconn *db, const char *sql, const char *schema)
{
    const char *params[1] = {schema};
    PGresult *r = PQexecParams(db, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    return r;
}

/* Sequences only PostgreSQL has, on purpose. */
static const char *const pg_only_sequences[] = {
    /* The fence counter of the first schema, as SQLite's counters table:
     * unused since fences are random (migration 3). */
    "fence_seq",
    /* The event log's ids (SQLite: the rowid). */
    "events_id_seq",
};

/* Functions only PostgreSQL has, on purpose: the bodies of triggers (the
 * event log's of migration 4, the counts' of migration 5). SQLite writes a
 * trigger's body inline (its triggers have the same names as PostgreSQL's,
 * and are compared). */
static const char *const pg_only_functions[] = {
    "sked_ev_job",   "sked_ev_run",     "sked_ev_worker",
    "sked_ev_alert", "sked_runs_count", "sked_workers_count",
};

static void pg_catalog(PGconn *db, const char *schema, struct facts *f)
{
    /* Tables, and each table's columns in order. */
    PGresult *r = pg_query(db,
                           "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable,"
                           " c.column_default IS NOT NULL, c.ordinal_position"
                           " FROM information_schema.columns c JOIN information_schema.tables t"
                           " USING (table_schema, table_name)"
                           " WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE'"
                           " ORDER BY c.table_name, c.ordinal_position",
                           schema);
    char last[128] = "";
    int pos = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *t = PQgetvalue(r, i, 0);
        if (strcmp(t, last) != 0) {
            snprintf(last, sizeof last, "%s", t);
            fact(f, "table %s", t);
            pos = 0;
        }
        fact(f, "column %s.%s #%d %s %s default=%s", t, PQgetvalue(r, i, 1), ++pos,
             type_class(PQgetvalue(r, i, 2)),
             strcmp(PQgetvalue(r, i, 3), "NO") == 0 ? "notnull" : "null",
             strcmp(PQgetvalue(r, i, 4), "t") == 0 ? "yes" : "no");
    }
    PQclear(r);

    /* Constraints: primary, unique, foreign keys, checks. */
    r = pg_query(db,
                 "SELECT t.relname, k.contype,"
                 " (SELECT string_agg(a.attname, ',' ORDER BY u.ord) FROM unnest(k.conkey)"
                 "  WITH ORDINALITY u(attnum, ord) JOIN pg_attribute a"
                 "  ON a.attrelid = k.conrelid AND a.attnum = u.attnum),"
                 " ft.relname,"
                 " (SELECT string_agg(a.attname, ',' ORDER BY u.ord) FROM unnest(k.confkey)"
                 "  WITH ORDINALITY u(attnum, ord) JOIN pg_attribute a"
                 "  ON a.attrelid = k.confrelid AND a.attnum = u.attnum),"
                 " CASE k.confdeltype WHEN 'a' THEN 'no action' WHEN 'r' THEN 'restrict'"
                 "  WHEN 'c' THEN 'cascade' WHEN 'n' THEN 'set null' WHEN 'd' THEN 'set default'"
                 "  END"
                 " FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid"
                 " JOIN pg_namespace n ON n.oid = t.relnamespace"
                 " LEFT JOIN pg_class ft ON ft.oid = k.confrelid"
                 " WHERE n.nspname = $1 AND k.contype IN ('p', 'u', 'f')"
                 " ORDER BY t.relname, k.contype, 3",
                 schema);
    for (int i = 0; i < PQntuples(r); i++) {
        const char *t = PQgetvalue(r, i, 0), *type = PQgetvalue(r, i, 1),
                   *cols = PQgetvalue(r, i, 2);
        if (*type == 'p')
            fact(f, "primary key %s(%s)", t, cols);
        else if (*type == 'u')
            fact(f, "unique constraint %s(%s)", t, cols);
        else
            fact(f, "foreign key %s(%s) references %s(%s) on delete %s", t, cols,
                 PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), PQgetvalue(r, i, 5));
    }
    PQclear(r);
    r = pg_query(db,
                 "SELECT c.relname, (SELECT count(*) FROM pg_constraint k"
                 "  WHERE k.conrelid = c.oid AND k.contype = 'c')"
                 " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                 " WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1",
                 schema);
    for (int i = 0; i < PQntuples(r); i++)
        fact(f, "check constraints on %s: %s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);

    /* Indexes that no constraint owns (those are listed above). */
    r = pg_query(db,
                 "SELECT i.relname, t.relname,"
                 " (SELECT string_agg(a.attname, ',' ORDER BY u.ord) FROM unnest(x.indkey)"
                 "  WITH ORDINALITY u(attnum, ord) JOIN pg_attribute a"
                 "  ON a.attrelid = x.indrelid AND a.attnum = u.attnum),"
                 " x.indisunique, pg_get_expr(x.indpred, x.indrelid)"
                 " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
                 " JOIN pg_class t ON t.oid = x.indrelid"
                 " JOIN pg_namespace n ON n.oid = t.relnamespace"
                 " WHERE n.nspname = $1"
                 " AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)"
                 " ORDER BY 2, 1",
                 schema);
    for (int i = 0; i < PQntuples(r); i++) {
        char *norm = pred_norm(PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4));
        fact(f, "index %s on %s(%s) %s where %s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
             PQgetvalue(r, i, 2), strcmp(PQgetvalue(r, i, 3), "t") == 0 ? "unique" : "nonunique",
             norm);
        free(norm);
    }
    PQclear(r);

    /* Everything else in the schema: sequences, views, functions, types. */
    r = pg_query(db,
                 "SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view'"
                 "  WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'"
                 "  WHEN 'p' THEN 'partitioned table' END, c.relname"
                 " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                 " WHERE n.nspname = $1 AND c.relkind IN ('S', 'v', 'm', 'f', 'p')"
                 " UNION ALL SELECT 'function', p.proname FROM pg_proc p"
                 " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1"
                 " UNION ALL SELECT 'trigger', g.tgname FROM pg_trigger g"
                 " JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n"
                 " ON n.oid = c.relnamespace WHERE n.nspname = $1 AND NOT g.tgisinternal"
                 " ORDER BY 1, 2",
                 schema);
    for (int i = 0; i < PQntuples(r); i++) {
        bool known = false;
        for (size_t k = 0; k < sizeof pg_only_sequences / sizeof *pg_only_sequences; k++)
            known |= strcmp(PQgetvalue(r, i, 0), "sequence") == 0 &&
                     strcmp(PQgetvalue(r, i, 1), pg_only_sequences[k]) == 0;
        for (size_t k = 0; k < sizeof pg_only_functions / sizeof *pg_only_functions; k++)
            known |= strcmp(PQgetvalue(r, i, 0), "function") == 0 &&
                     strcmp(PQgetvalue(r, i, 1), pg_only_functions[k]) == 0;
        if (!known) fact(f, "%s %s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    }
    PQclear(r);
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reports every fact only one engine has; matching is by sorted merge. */
static void cmp_facts(struct par *p, struct facts *a, struct facts *b)
{
    qsort(a->v, a->n, sizeof *a->v, cmp_line);
    qsort(b->v, b->n, sizeof *b->v, cmp_line);
    size_t i = 0, k = 0;
    while (i < a->n || k < b->n) {
        int c = i == a->n ? 1 : k == b->n ? -1 : strcmp(a->v[i], b->v[k]);
        if (c < 0)
            diff(p, "catalog: only in sqlite: %s", a->v[i++]);
        else if (c > 0)
            diff(p, "catalog: only in postgres: %s", b->v[k++]);
        else
            i++, k++;
    }
}

static void test_catalog(void **state)
{
    struct par *p = *state;
    struct facts fs = {0}, fp = {0};
    step(p, "schema catalog");
    sq_catalog(p->db_path, &fs);
    PGconn *db = PQconnectdb(g_base);
    if (PQstatus(db) != CONNECTION_OK) fail_msg("connect: %s", PQerrorMessage(db));
    pg_catalog(db, p->schema, &fp);
    PQfinish(db);
    /* Both catalogs must be there at all: an empty read is no comparison. */
    if (fs.n < 50 || fp.n < 50)
        diff(p, "catalog: only %zu facts from sqlite and %zu from postgres", fs.n, fp.n);
    cmp_facts(p, &fs, &fp);
    facts_free(&fs);
    facts_free(&fp);
    finish(p);
}

int main(void)
{
    g_base = getenv("SKED_TEST_PG_URL");
    if (!g_base || !*g_base) {
        fprintf(stderr, "set SKED_TEST_PG_URL (run under tests/store/pg_harness.sh)\n");
        return 2;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scenario, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collation, setup_icu, teardown),
    };
    return cmocka_run_group_tests_name("store-parity", tests, NULL, NULL);
}
