/*
 * sked-stmt-cost: what one SQL statement costs SQLite on a real store,
 * for callgrind to count (bench/README, "Issue 13, fifth session").
 *
 * Runs SQL once for each pending run of a sked SQLite store (state 2, at
 * most 20,000), ?1 bound to the run's id, each in its own savepoint as
 * sked's writer does, all in one transaction that is rolled back: the
 * store is left as it was. SETUP, when given, runs inside that transaction
 * first (e.g. "DROP TRIGGER ev_runs_upd" to see a statement without it),
 * so it is rolled back too. Under valgrind --tool=callgrind, the
 * difference between two runs' totals over the number of runs is the
 * difference of the two statements' costs; a run with SQL = "SELECT ?1"
 * is the loop's own.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNS 20000

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "sked-stmt-cost: %s: %s\n", sql, sqlite3_errmsg(db));
        exit(1);
    }
    return st;
}

/* Steps st to its end (rows are read and dropped) and resets it. */
static void run(sqlite3 *db, sqlite3_stmt *st)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "sked-stmt-cost: %s: %s\n", sqlite3_sql(st), sqlite3_errmsg(db));
        exit(1);
    }
    sqlite3_reset(st);
}

static void exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "sked-stmt-cost: %s: %s\n", sql, err ? err : "failed");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || !strcmp(argv[1], "--help")) {
        fprintf(argc < 3 ? stderr : stdout,
                "usage: sked-stmt-cost DB SQL [SETUP]\n"
                "Runs SQL (?1 = a run's id) once for each pending run of the sked SQLite\n"
                "store DB (at most %d), each in a savepoint, in one transaction that is\n"
                "rolled back; SETUP runs first in it. For valgrind --tool=callgrind.\n",
                MAX_RUNS);
        return argc < 3 ? 2 : 0;
    }
    /* As sked's store sets SQLite up (store_sqlite.c). */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "sked-stmt-cost: %s: %s\n", argv[1], db ? sqlite3_errmsg(db) : "no memory");
        return 1;
    }
    exec(db, "PRAGMA foreign_keys=ON");

    static char ids[MAX_RUNS][64];
    int n = 0;
    sqlite3_stmt *st = prep(db, "SELECT id FROM runs WHERE state = 2 ORDER BY id");
    while (n < MAX_RUNS && sqlite3_step(st) == SQLITE_ROW)
        snprintf(ids[n++], sizeof ids[0], "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);

    exec(db, "BEGIN IMMEDIATE");
    if (argc == 4) exec(db, argv[3]);
    sqlite3_stmt *q = prep(db, argv[2]);
    sqlite3_stmt *save = prep(db, "SAVEPOINT op"), *release = prep(db, "RELEASE op");
    for (int i = 0; i < n; i++) {
        run(db, save);
        sqlite3_bind_text(q, 1, ids[i], -1, SQLITE_STATIC);
        run(db, q);
        run(db, release);
    }
    sqlite3_finalize(q);
    sqlite3_finalize(save);
    sqlite3_finalize(release);
    exec(db, "ROLLBACK");
    sqlite3_close(db);
    printf("%d runs\n", n);
    return 0;
}
