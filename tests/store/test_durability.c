/*
 * Promise §5.1 on SQLite, attacked below the page cache: a write the store
 * acknowledges is on disk, not merely in the kernel. (Killing the server
 * with -9 cannot prove this: the page cache survives a process's death, so
 * a store running with synchronous=OFF would pass such a test.)
 *
 * A shim VFS, registered as SQLite's default before the store opens its
 * files, sits between SQLite and the real "unix" VFS. It counts, per file,
 * the bytes written since the last xSync, and can refuse writes with
 * SQLITE_FULL as a full disk does. The store is the real one; nothing in it
 * knows about the shim.
 *
 *   - every write verb that returns 0 has left no file with unsynced bytes;
 *   - the shim itself catches a connection with synchronous=OFF (so the
 *     check above can fail);
 *   - with writes refused, a write verb fails with SKED_ENOSPC, changes
 *     nothing, and the store works again once writes are accepted;
 *   - two writes that share one group commit when the commit's WAL write
 *     fails both fail (the batch is lost as a whole, not half-applied);
 *   - a write that fails leaves no trace and takes none of the other writes
 *     of its group commit with it, whether it failed before changing
 *     anything or half-way (the writer holds still in a stalled WAL write
 *     while the group is queued behind it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "store/store.h"

#define T0 INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */

/* ---- the shim VFS ------------------------------------------------------------- */

static sqlite3_vfs *real_vfs;
static atomic_long unsynced_files; /* files written since their last sync */
static atomic_bool refuse_writes;  /* answer every write with SQLITE_FULL */
static atomic_bool refuse_syncs;   /* answer every sync with SQLITE_IOERR_FSYNC */
static atomic_long syncs;
static atomic_long main_db_writes; /* writes to a main database file: checkpoints */
/* While set, a write blocks (the first one sets `stalled`) until cleared. */
static atomic_bool stall_writes, stalled;
static pthread_mutex_t stall_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stall_cv = PTHREAD_COND_INITIALIZER;

struct shim_file {
    sqlite3_file base;
    bool dirty;
    bool main_db;       /* SQLITE_OPEN_MAIN_DB */
    sqlite3_file *real; /* allocated right after this struct */
};

static int shim_close(sqlite3_file *f)
{
    struct shim_file *s = (struct shim_file *)f;
    if (s->dirty) atomic_fetch_sub(&unsynced_files, 1);
    s->dirty = false;
    return s->real->pMethods ? s->real->pMethods->xClose(s->real) : SQLITE_OK;
}

static int shim_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    struct shim_file *s = (struct shim_file *)f;
    return s->real->pMethods->xRead(s->real, p, n, off);
}

static int shim_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    struct shim_file *s = (struct shim_file *)f;
    if (atomic_load(&refuse_writes)) return SQLITE_FULL;
    if (atomic_load(&stall_writes)) {
        pthread_mutex_lock(&stall_mu);
        atomic_store(&stalled, true);
        while (atomic_load(&stall_writes))
            pthread_cond_wait(&stall_cv, &stall_mu);
        pthread_mutex_unlock(&stall_mu);
    }
    int rc = s->real->pMethods->xWrite(s->real, p, n, off);
    if (rc == SQLITE_OK && s->main_db) atomic_fetch_add(&main_db_writes, 1);
    if (rc == SQLITE_OK && !s->dirty) {
        s->dirty = true;
        atomic_fetch_add(&unsynced_files, 1);
    }
    return rc;
}

static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct shim_file *s = (struct shim_file *)f;
    return s->real->pMethods->xTruncate(s->real, size);
}

static int shim_sync(sqlite3_file *f, int flags)
{
    struct shim_file *s = (struct shim_file *)f;
    if (atomic_load(&refuse_syncs)) return SQLITE_IOERR_FSYNC;
    int rc = s->real->pMethods->xSync(s->real, flags);
    if (rc == SQLITE_OK && s->dirty) {
        s->dirty = false;
        atomic_fetch_sub(&unsynced_files, 1);
    }
    atomic_fetch_add(&syncs, 1);
    return rc;
}

#define PASS(name, sig, args)                                                                      \
    static int shim_##name sig                                                                     \
    {                                                                                              \
        struct shim_file *s = (struct shim_file *)f;                                               \
        return s->real->pMethods->x##name args;                                                    \
    }
PASS(FileSize, (sqlite3_file * f, sqlite3_int64 *size), (s->real, size))
PASS(Lock, (sqlite3_file * f, int l), (s->real, l))
PASS(Unlock, (sqlite3_file * f, int l), (s->real, l))
PASS(CheckReservedLock, (sqlite3_file * f, int *out), (s->real, out))
PASS(FileControl, (sqlite3_file * f, int op, void *arg), (s->real, op, arg))
PASS(SectorSize, (sqlite3_file * f), (s->real))
PASS(DeviceCharacteristics, (sqlite3_file * f), (s->real))
PASS(ShmMap, (sqlite3_file * f, int pg, int sz, int ext, void volatile **pp),
     (s->real, pg, sz, ext, pp))
PASS(ShmLock, (sqlite3_file * f, int off, int n, int flags), (s->real, off, n, flags))
PASS(ShmUnmap, (sqlite3_file * f, int del), (s->real, del))
#undef PASS

static void shim_ShmBarrier(sqlite3_file *f)
{
    struct shim_file *s = (struct shim_file *)f;
    s->real->pMethods->xShmBarrier(s->real);
}

static const sqlite3_io_methods shim_io = {
    .iVersion = 2,
    .xClose = shim_close,
    .xRead = shim_read,
    .xWrite = shim_write,
    .xTruncate = shim_truncate,
    .xSync = shim_sync,
    .xFileSize = shim_FileSize,
    .xLock = shim_Lock,
    .xUnlock = shim_Unlock,
    .xCheckReservedLock = shim_CheckReservedLock,
    .xFileControl = shim_FileControl,
    .xSectorSize = shim_SectorSize,
    .xDeviceCharacteristics = shim_DeviceCharacteristics,
    .xShmMap = shim_ShmMap,
    .xShmLock = shim_ShmLock,
    .xShmBarrier = shim_ShmBarrier,
    .xShmUnmap = shim_ShmUnmap,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)vfs;
    struct shim_file *s = (struct shim_file *)f;
    memset(s, 0, sizeof *s);
    s->real = (sqlite3_file *)(s + 1);
    s->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
    int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
    s->base.pMethods = rc == SQLITE_OK ? &shim_io : NULL;
    return rc;
}

static sqlite3_vfs shim_vfs;

static void shim_register(void)
{
    real_vfs = sqlite3_vfs_find("unix");
    assert_non_null(real_vfs);
    shim_vfs = *real_vfs;
    shim_vfs.zName = "sked-test-shim";
    shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
    shim_vfs.xOpen = shim_open;
    assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}

/* ---- fixture -------------------------------------------------------------------- */

struct fx {
    char dir[64];
    store_t *st;
};

static int setup(void **state)
{
    struct fx *fx = xcalloc(1, sizeof *fx);
    char url[128], *err = NULL;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sked-test-durability-XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    snprintf(url, sizeof url, "sqlite:%s/sked.db", fx->dir);
    atomic_store(&refuse_writes, false);
    if (store_open(url, &fx->st, &err) != 0) {
        fprintf(stderr, "store_open: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    char path[128];
    store_close(fx->st);
    static const char *const files[] = {"sked.db",    "sked.db-wal", "sked.db-shm",   "raw.db",
                                        "raw.db-wal", "raw.db-shm",  "raw.db-journal"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", fx->dir, files[i]);
        unlink(path);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void job_doc(store_job_t *j, const char *name)
{
    memset(j, 0, sizeof *j);
    j->name = xstrdup(name);
    j->ns = xstrdup("default");
    j->owner = xstrdup("test");
    j->queue = xstrdup("default");
    j->constraints = xstrdup("");
    j->tags = xstrdup("");
    j->spec_json = xstrdup("{\"command\":[\"true\"]}");
    j->retry = retry_policy_default();
}

/* Asserts that nothing written is waiting for a sync. */
#define ASSERT_SYNCED(what)                                                                        \
    do {                                                                                           \
        if (atomic_load(&unsynced_files) != 0)                                                     \
            fail_msg("%s returned before its write was synced (%ld file(s) unsynced)", what,       \
                     atomic_load(&unsynced_files));                                                \
    } while (0)

/* ---- tests ----------------------------------------------------------------------- */

static void test_every_acknowledged_write_is_synced(void **state)
{
    struct fx *fx = *state;
    ASSERT_SYNCED("store_open");
    long before = atomic_load(&syncs);

    store_job_t j;
    job_doc(&j, "durable");
    assert_int_equal(store_job_create(fx->st, &j, NULL, 0, true, "key-1", NULL, T0), 0);
    ASSERT_SYNCED("store_job_create");
    char run_id[SKED_ID_LEN];
    assert_int_equal(store_run_trigger(fx->st, j.id, NULL, T0 + 1, run_id), 0);
    ASSERT_SYNCED("store_run_trigger");
    assert_int_equal(store_run_cancel(fx->st, run_id, "test", NULL, T0 + 2), 0);
    ASSERT_SYNCED("store_run_cancel");
    assert_int_equal(store_job_set_state(fx->st, j.id, JOB_PAUSED, NULL, T0 + 3), 0);
    ASSERT_SYNCED("store_job_set_state");

    store_worker_t w = {0};
    w.name = xstrdup("w1");
    w.queues = xstrdup("default");
    w.labels = xstrdup("");
    w.slots = 1;
    assert_int_equal(store_worker_register(fx->st, &w, NULL, T0 + 4), 0);
    ASSERT_SYNCED("store_worker_register");

    store_token_t t = {0};
    t.name = xstrdup("t1");
    t.role = ROLE_VIEWER;
    t.expires_ms = -1;
    assert_int_equal(store_token_create(fx->st, &t, "00ff", T0 + 5), 0);
    ASSERT_SYNCED("store_token_create");

    store_audit_t a = {.at_ms = T0 + 6,
                       .actor = "test",
                       .role = "admin",
                       .method = "POST",
                       .route = "/v1/x",
                       .target = "",
                       .ns = "",
                       .source = "127.0.0.1",
                       .status = 200};
    assert_int_equal(store_audit_append(fx->st, &a), 0);
    ASSERT_SYNCED("store_audit_append");
    assert_int_equal(store_ready(fx->st), 0);
    ASSERT_SYNCED("store_ready (its probe write)");

    /* Seven verbs, each its own commit: at least one sync each. */
    assert_true(atomic_load(&syncs) - before >= 7);
    store_job_clear(&j);
    store_worker_clear(&w);
    store_token_clear(&t);
}

/* The check above can fail: a connection that commits without syncing is
 * caught by the shim. */
static void test_the_shim_sees_unsynced_commits(void **state)
{
    struct fx *fx = *state;
    char path[128];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/raw.db", fx->dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
                                  " CREATE TABLE t (x); INSERT INTO t VALUES (1);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_true(atomic_load(&unsynced_files) > 0);
    sqlite3_close(db);
    assert_int_equal(atomic_load(&unsynced_files), 0);
}

static void test_full_disk_refuses_and_recovers(void **state)
{
    struct fx *fx = *state;
    store_job_t kept, refused, after;
    job_doc(&kept, "kept");
    job_doc(&refused, "refused");
    job_doc(&after, "after");
    assert_int_equal(store_job_create(fx->st, &kept, NULL, 0, false, NULL, NULL, T0), 0);

    atomic_store(&refuse_writes, true);
    assert_int_equal(store_job_create(fx->st, &refused, NULL, 0, false, NULL, NULL, T0 + 1),
                     SKED_ENOSPC);
    assert_int_equal(sked_http_status(SKED_ENOSPC), 507);
    atomic_store(&refuse_writes, false);

    assert_int_equal(store_job_create(fx->st, &after, NULL, 0, false, NULL, NULL, T0 + 2), 0);
    store_job_filter_t f = {.limit = 10};
    store_job_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_job_list(fx->st, &f, &v, &n, &next), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "after");
    assert_string_equal(v[1].name, "kept");
    for (size_t i = 0; i < n; i++)
        store_job_clear(&v[i]);
    free(v);
    free(next);
    store_job_clear(&kept);
    store_job_clear(&refused);
    store_job_clear(&after);
}

/* Writers racing into one group commit whose WAL write fails: every one of
 * them is told it failed, and none of their changes is there afterwards. */
struct racer {
    store_t *st;
    int i;
    int rc;
    pthread_barrier_t *go;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    store_job_t j;
    char name[32];
    snprintf(name, sizeof name, "racer-%d", r->i);
    job_doc(&j, name);
    pthread_barrier_wait(r->go);
    r->rc = store_job_create(r->st, &j, NULL, 0, false, NULL, NULL, T0 + r->i);
    store_job_clear(&j);
    return NULL;
}

/* A sync that fails (EIO from fdatasync: the kernel may have dropped the
 * pages it could not write) must never be answered as a kept write: the
 * store stops the process before any caller of that batch returns. In a
 * child, since stopping is the point; the parent sees it die by SIGABRT
 * with the write never acknowledged. */
static void test_a_failed_sync_acknowledges_nothing(void **state)
{
    struct fx *fx = *state;
    store_job_t kept;
    job_doc(&kept, "kept");
    assert_int_equal(store_job_create(fx->st, &kept, NULL, 0, false, NULL, NULL, T0), 0);
    store_job_clear(&kept);
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child's own store on the same file (the parent's writer
         * thread does not exist in it). */
        char url[128], *err = NULL;
        store_t *st = NULL;
        close(p[0]);
        snprintf(url, sizeof url, "sqlite:%s/sked.db", fx->dir);
        if (store_open(url, &st, &err) != 0) _exit(3);
        atomic_store(&refuse_syncs, true);
        store_job_t lost;
        job_doc(&lost, "lost");
        int rc = store_job_create(st, &lost, NULL, 0, false, NULL, NULL, T0 + 1);
        /* Reaching here is the failure: tell the parent what came back. */
        (void)!write(p[1], &rc, sizeof rc);
        _exit(0);
    }
    close(p[1]);
    int status = 0, rc = 1;
    ssize_t got = read(p[0], &rc, sizeof rc);
    close(p[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_int_equal(got, 0); /* no answer at all, not even an error */
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void test_a_lost_batch_fails_every_writer(void **state)
{
    struct fx *fx = *state;
    enum { N = 8 };
    pthread_t th[N];
    struct racer r[N];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, N);
    atomic_store(&refuse_writes, true);
    for (int i = 0; i < N; i++) {
        r[i] = (struct racer){fx->st, i, 1, &go};
        pthread_create(&th[i], NULL, race, &r[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    atomic_store(&refuse_writes, false);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].rc, SKED_ENOSPC);

    store_job_filter_t f = {.limit = 100};
    store_job_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_job_list(fx->st, &f, &v, &n, &next), 0);
    assert_int_equal(n, 0);
    free(v);
    free(next);
    ASSERT_SYNCED("the store after a lost batch");
}

/* Writes made one at a time (each alone, so each commits and syncs on its
 * caller's thread, with no writer thread involved: the first test shows
 * each is synced when it returns) still get the WAL
 * checkpointed into the database every CHECKPOINT_FRAMES frames, not only
 * when it reaches its cap (WAL_MAX_FRAMES, 16,000 frames): 400 job creates
 * are a few thousand frames. */
static bool eventually(bool (*cond)(int64_t), int64_t arg);

static bool main_db_written(int64_t before)
{
    return atomic_load(&main_db_writes) > before;
}

static void test_writes_one_at_a_time_are_checkpointed(void **state)
{
    struct fx *fx = *state;
    long before = atomic_load(&main_db_writes);
    for (int i = 0; i < 400; i++) {
        char name[32];
        store_job_t j;
        snprintf(name, sizeof name, "alone-%d", i);
        job_doc(&j, name);
        /* (Not ASSERT_SYNCED: a checkpoint may be writing the database
         * meanwhile, copies of what the WAL holds synced already.) */
        assert_int_equal(store_job_create(fx->st, &j, NULL, 0, false, NULL, NULL, T0 + i), 0);
        store_job_clear(&j);
    }
    if (!eventually(main_db_written, before))
        fail_msg("400 writes one at a time and no checkpoint wrote the database");
}

/* ---- one failed write in a group commit ----------------------------------------- */

struct writer {
    store_t *st;
    const char *name, *also; /* also: a batch of two, `name` first */
    int want;                /* the answer it must get */
    int rc;
    pthread_t th;
};

static void *write_job(void *arg)
{
    struct writer *w = arg;
    store_job_t j[2];
    job_doc(&j[0], w->name);
    if (w->also) {
        job_doc(&j[1], w->also);
        store_job_new_t items[2] = {{&j[0], NULL, 0, false}, {&j[1], NULL, 0, false}};
        size_t bad = 0;
        w->rc = store_job_create_batch(w->st, items, 2, NULL, NULL, T0, &bad, NULL);
        store_job_clear(&j[1]);
    } else {
        w->rc = store_job_create(w->st, &j[0], NULL, 0, false, NULL, NULL, T0);
    }
    store_job_clear(&j[0]);
    return NULL;
}

/* Waits (10 s at most) until cond() holds. */
static bool eventually(bool (*cond)(int64_t), int64_t arg)
{
    for (int i = 0; i < 10000; i++) {
        if (cond(arg)) return true;
        usleep(1000);
    }
    return cond(arg);
}

static bool is_stalled(int64_t unused)
{
    (void)unused;
    return atomic_load(&stalled);
}

static bool queue_is(int64_t n)
{
    return atomic_load(&store_stats()->write_queue) == n;
}

/* Runs w[0] into a stalled WAL write, queues w[1..n-1] behind it one after
 * the other (so they form the next group commit, in that order), lets the
 * writer go on, waits for all and checks each got its answer. */
static void one_group(struct writer *w, int n)
{
    atomic_store(&stalled, false);
    atomic_store(&stall_writes, true);
    pthread_create(&w[0].th, NULL, write_job, &w[0]);
    assert_true(eventually(is_stalled, 0));
    for (int i = 1; i < n; i++) {
        pthread_create(&w[i].th, NULL, write_job, &w[i]);
        assert_true(eventually(queue_is, i));
    }
    pthread_mutex_lock(&stall_mu);
    atomic_store(&stall_writes, false);
    pthread_cond_broadcast(&stall_cv);
    pthread_mutex_unlock(&stall_mu);
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].th, NULL);
        assert_int_equal(w[i].rc, w[i].want);
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const store_job_t *)a)->name, ((const store_job_t *)b)->name);
}

/* The names of the jobs there, sorted, comma-separated, into out. */
static void job_names(store_t *st, char *out, size_t cap)
{
    store_job_filter_t f = {.limit = 100};
    store_job_t *v = NULL;
    size_t n = 0;
    char *next = NULL;
    assert_int_equal(store_job_list(st, &f, &v, &n, &next), 0);
    qsort(v, n, sizeof *v, by_name);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", i ? "," : "", v[i].name);
        store_job_clear(&v[i]);
    }
    free(v);
    free(next);
}

static void test_a_failed_write_leaves_its_group_alone(void **state)
{
    struct fx *fx = *state;
    char names[512];
    store_job_t taken;
    job_doc(&taken, "taken");
    assert_int_equal(store_job_create(fx->st, &taken, NULL, 0, false, NULL, NULL, T0), 0);
    store_job_clear(&taken);
    uint64_t redos = prom_get(&store_stats()->batch_redos);

    /* A write that fails before changing anything (its name is taken) is
     * left out; the writes beside it commit, and the group runs once. */
    struct writer g1[] = {{fx->st, "a", NULL, 0, 1, 0},
                          {fx->st, "b", NULL, 0, 1, 0},
                          {fx->st, "taken", NULL, SKED_ECONFLICT, 0, 0},
                          {fx->st, "c", NULL, 0, 1, 0}};
    one_group(g1, 4);
    assert_int_equal(prom_get(&store_stats()->batch_redos), redos);
    job_names(fx->st, names, sizeof names);
    assert_string_equal(names, "a,b,c,taken");
    ASSERT_SYNCED("a group with a write refused at once");

    /* A batch whose second job's name is taken fails after writing its
     * first: that job must go, the writes before and after it stay. */
    struct writer g2[] = {{fx->st, "d", NULL, 0, 1, 0},
                          {fx->st, "e", NULL, 0, 1, 0},
                          {fx->st, "half", "taken", SKED_ECONFLICT, 0, 0},
                          {fx->st, "f", NULL, 0, 1, 0},
                          {fx->st, "taken", NULL, SKED_ECONFLICT, 0, 0}};
    one_group(g2, 5);
    assert_int_equal(prom_get(&store_stats()->batch_redos), redos + 1);
    job_names(fx->st, names, sizeof names);
    assert_string_equal(names, "a,b,c,d,e,f,taken");
    ASSERT_SYNCED("a group with a write failed half-way");
}

int main(void)
{
    shim_register();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_acknowledged_write_is_synced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_shim_sees_unsynced_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk_refuses_and_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_lost_batch_fails_every_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_sync_acknowledges_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_one_at_a_time_are_checkpointed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_write_leaves_its_group_alone, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
