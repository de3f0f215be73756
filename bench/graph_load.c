/*
 * sked-graph-load: a workflow of N tasks through the store alone, no HTTP
 * and no processes (issue 10, point 7): how fast a document validates and
 * how fast the store releases a workflow's tasks when each task is a
 * no-op. Uses only core/workflow.h and store.h.
 *
 *     sked-graph-load URL [--tasks N] [--batch N] [--shape SHAPE[,SHAPE...]]
 *
 * For each shape (by default all three; `make bench` runs wide and deep):
 *  - wide: 1 -> N-2 -> 1 (a source, N-2 tasks waiting for it, a join
 *    waiting for all of them);
 *  - deep: a chain of N tasks;
 *  - lattice: rows of 10 tasks, each waiting for the two tasks above it
 *    (same column and the next), so every task but the first row's is a
 *    join of two;
 * it times wfspec_parse of the document (best of 5), stores the workflow
 * (store_workflow_put) and triggers one run (store_run_trigger), then
 * drives the run to its end as one worker would: claim up to --batch runs
 * (default 64), confirm them in one heartbeat, complete each succeeded,
 * until every task has completed; the workflow run must then be
 * succeeded (store_group_get). "released/s" is tasks / the time from the
 * trigger to the last completion; the per-task columns split that time by
 * verb. URL is "sqlite:PATH" (a fresh file) or a PostgreSQL URL (tests/
 * store/pg_harness.sh exports one as SKED_TEST_PG_URL). Every loop is
 * bounded: a run that stops releasing tasks is reported and fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "core/workflow.h"
#include "store/store.h"

#define LATTICE_WIDTH   10
#define VALIDATE_ROUNDS 5
#define DRIVE_MAX_S     300.0 /* a shape that takes longer is reported as failed */

typedef enum shape { SHAPE_WIDE, SHAPE_DEEP, SHAPE_LATTICE, SHAPE_N } shape_t;
static const char *const shape_names[SHAPE_N] = {"wide", "deep", "lattice"};

static store_t *st;
static int ntasks = 1000, batch = 64;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Task i's upstreams in shape s, as a JSON array's items. */
static void deps_of(shape_t s, int i, int n, buf_t *b)
{
    switch (s) {
    case SHAPE_WIDE:
        if (i == n - 1)
            for (int k = 1; k < n - 1; k++)
                buf_printf(b, "%s\"t%d\"", k > 1 ? "," : "", k);
        else if (i > 0)
            buf_puts(b, "\"t0\"");
        break;
    case SHAPE_DEEP:
        if (i > 0) buf_printf(b, "\"t%d\"", i - 1);
        break;
    case SHAPE_LATTICE: {
        int r = i / LATTICE_WIDTH, c = i % LATTICE_WIDTH;
        if (r == 0) break;
        int up = (r - 1) * LATTICE_WIDTH + c;
        buf_printf(b, "\"t%d\"", up);
        if (c + 1 < LATTICE_WIDTH) buf_printf(b, ",\"t%d\"", up + 1);
        break;
    }
    default:
        break;
    }
}

/* The workflow document of shape s with n no-op tasks. New; caller frees. */
static char *make_doc(shape_t s, int n)
{
    buf_t b = {0};
    buf_printf(&b, "{\"name\":\"graph-%s-%d-%ld\",\"tasks\":[", shape_names[s], n, (long)getpid());
    for (int i = 0; i < n; i++) {
        buf_printf(&b, "%s{\"name\":\"t%d\",\"command\":[\"true\"],\"depends_on\":[", i ? "," : "",
                   i);
        deps_of(s, i, n, &b);
        buf_puts(&b, "]}");
    }
    buf_puts(&b, "]}");
    return buf_steal(&b);
}

/* The stored records of a parsed workflow, as the service makes them
 * (server/jobsvc.c): store_workflow_from_spec, the canonical documents. */
static void records(const wfspec_t *spec, store_job_t *wf, store_job_t *tasks)
{
    store_workflow_from_spec(wf, tasks, spec);
    wf->ns = xstrdup("default");
    wf->owner = xstrdup("bench");
    json_t *canon = wfspec_to_json(spec);
    wf->spec_json = json_dumps(canon, JSON_COMPACT);
    json_decref(canon);
    for (size_t i = 0; i < spec->ntasks; i++) {
        canon = jobspec_to_json(&spec->tasks[i].job);
        tasks[i].spec_json = json_dumps(canon, JSON_COMPACT);
        json_decref(canon);
    }
}

typedef struct figures {
    size_t edges;
    double validate_ms; /* wfspec_parse, best of VALIDATE_ROUNDS */
    double put_ms;      /* store_workflow_put */
    double trigger_ms;  /* store_run_trigger: the run, its members and their edges */
    double drive_s;     /* trigger to the last completion */
    double claim_s, confirm_s, complete_s;
    double complete_max_ms; /* the slowest single completion */
    int claims;             /* claim calls that returned runs */
    int done;               /* tasks completed */
} figures_t;

/* Task "tI" of the bench's documents: I, or -1. */
static int task_index(const char *name)
{
    char *end = NULL;
    long i = name[0] == 't' ? strtol(name + 1, &end, 10) : -1;
    return end && *end == '\0' && i >= 0 && i < ntasks ? (int)i : -1;
}

/* A claimed task is one not claimed before, whose upstreams have all
 * completed: else the store released it twice or too early. */
static int check_claimed(const wfspec_t *spec, char *seen, const char *name)
{
    int i = task_index(name);
    if (i < 0 || seen[i]) {
        fprintf(stderr, "graph-load: task %s claimed %s\n", name, i < 0 ? "unknown" : "twice");
        return -1;
    }
    for (size_t k = 0; k < spec->tasks[i].ndeps; k++)
        if (seen[spec->tasks[i].up[k]] != 2) {
            fprintf(stderr, "graph-load: task %s claimed before its upstream %s completed\n", name,
                    spec->tasks[spec->tasks[i].up[k]].name);
            return -1;
        }
    seen[i] = 1;
    return 0;
}

/* Claims, confirms and completes until every task of the run is done,
 * checking that each task is released once, after its upstreams. */
static int drive(const wfspec_t *spec, const char *worker_id, figures_t *f, double t0)
{
    const store_result_t ok = {.outcome = ATTEMPT_SUCCEEDED, .exit_code = 0};
    char *seen = xcalloc((size_t)ntasks, 1); /* task: 1 claimed, 2 completed */
    int empty = 0, rc = 0;
    while (f->done < ntasks) {
        if (now_s() - t0 > DRIVE_MAX_S) {
            fprintf(stderr, "graph-load: still %d of %d tasks to go after %.0f s\n",
                    ntasks - f->done, ntasks, DRIVE_MAX_S);
            rc = -1;
            break;
        }
        store_claimed_t *v = NULL;
        size_t n = 0;
        double a = now_s();
        rc = store_claim(st, worker_id, NULL, batch, 30000, store_now_ms(st), &v, &n);
        double b = now_s();
        f->claim_s += b - a;
        if (rc != 0) {
            fprintf(stderr, "graph-load: store_claim: %d\n", rc);
            break;
        }
        if (n == 0) {
            /* A completion releases its downstream in its own commit: with
             * tasks left, an empty claim means the release was lost. */
            free(v);
            if (++empty > 3) {
                fprintf(stderr, "graph-load: nothing to claim with %d of %d tasks done\n", f->done,
                        ntasks);
                rc = -1;
                break;
            }
            continue;
        }
        empty = 0;
        f->claims++;
        store_held_t *h = xcalloc(n, sizeof *h);
        for (size_t i = 0; i < n; i++) {
            h[i] = (store_held_t){.run_id = v[i].run.id, .fence = v[i].run.fence, .started = true};
            if (rc == 0) rc = check_claimed(spec, seen, v[i].job_name);
        }
        if (rc == 0) rc = store_heartbeat(st, worker_id, NULL, h, n, 30000, store_now_ms(st), NULL);
        double c = now_s();
        f->confirm_s += c - b;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            double d = now_s();
            rc = store_complete(st, v[i].run.id, v[i].run.attempt, v[i].run.fence, NULL, &ok,
                                store_now_ms(st));
            double e = now_s();
            f->complete_s += e - d;
            if ((e - d) * 1e3 > f->complete_max_ms) f->complete_max_ms = (e - d) * 1e3;
            if (rc == 0) {
                f->done++;
                seen[task_index(v[i].job_name)] = 2;
            }
        }
        for (size_t i = 0; i < n; i++)
            store_claimed_clear(&v[i]);
        free(h);
        free(v);
        if (rc != 0) {
            fprintf(stderr, "graph-load: claimed runs not confirmed or completed: %d\n", rc);
            break;
        }
    }
    free(seen);
    return rc;
}

/* The workflow run ended succeeded, every member with it. */
static int check_run(const char *run_id)
{
    store_run_t run;
    store_group_t g;
    store_member_t *m = NULL;
    size_t n = 0;
    memset(&run, 0, sizeof run);
    int rc = store_group_get(st, run_id, &run, &g, &m, &n);
    if (rc == 0 && (run.state != RUN_SUCCEEDED || g.ok != ntasks || n != (size_t)ntasks)) {
        fprintf(stderr, "graph-load: workflow run %s is %s with %d of %d tasks succeeded\n", run_id,
                run_state_name(run.state), g.ok, ntasks);
        rc = -1;
    } else if (rc != 0) {
        fprintf(stderr, "graph-load: store_group_get: %d\n", rc);
    }
    for (size_t i = 0; i < n; i++)
        store_member_clear(&m[i]);
    free(m);
    store_run_clear(&run);
    return rc;
}

static int one_shape(shape_t s, const char *worker_id, figures_t *f)
{
    char *text = make_doc(s, ntasks);
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    free(text);
    if (!doc) {
        fprintf(stderr, "graph-load: bad document: %s\n", jerr.text);
        return -1;
    }
    wfspec_t spec;
    jobspec_error_t err;
    memset(&spec, 0, sizeof spec);
    f->validate_ms = 1e9;
    for (int r = 0; r < VALIDATE_ROUNDS; r++) {
        if (r) wfspec_free(&spec);
        memset(&err, 0, sizeof err);
        double a = now_s();
        int rc = wfspec_parse(doc, &spec, &err);
        double ms = (now_s() - a) * 1e3;
        if (rc != 0) {
            fprintf(stderr, "graph-load: wfspec_parse: %s: %s\n", err.field, err.detail);
            json_decref(doc);
            return -1;
        }
        if (ms < f->validate_ms) f->validate_ms = ms;
    }
    json_decref(doc);
    f->edges = spec.nedges;

    store_job_t wf;
    memset(&wf, 0, sizeof wf);
    store_job_t *tasks = xcalloc(spec.ntasks, sizeof *tasks);
    records(&spec, &wf, tasks);
    double a = now_s();
    int rc =
        store_workflow_put(st, &wf, NULL, 0, tasks, spec.ntasks, -1, NULL, NULL, store_now_ms(st));
    f->put_ms = (now_s() - a) * 1e3;
    char run_id[SKED_ID_LEN] = "";
    if (rc != 0) {
        fprintf(stderr, "graph-load: store_workflow_put: %d\n", rc);
    } else {
        double t0 = now_s();
        rc = store_run_trigger(st, wf.id, NULL, store_now_ms(st), run_id);
        f->trigger_ms = (now_s() - t0) * 1e3;
        if (rc != 0)
            fprintf(stderr, "graph-load: store_run_trigger: %d\n", rc);
        else
            rc = drive(&spec, worker_id, f, t0);
        f->drive_s = now_s() - t0;
        if (rc == 0) rc = check_run(run_id);
    }
    for (size_t i = 0; i < spec.ntasks; i++)
        store_job_clear(&tasks[i]);
    free(tasks);
    store_job_clear(&wf);
    wfspec_free(&spec);
    return rc;
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s URL [--tasks N] [--batch N] [--shape SHAPE[,SHAPE...]]\n"
            "  URL      sqlite:PATH (a fresh file) or a postgresql:// URL\n"
            "  --tasks  tasks per workflow, 3..%d (default 1000)\n"
            "  --batch  runs per claim, 1..1000 (default 64)\n"
            "  --shape  wide (1 -> N-2 -> 1), deep (a chain of N), lattice (rows of %d,\n"
            "           each task waiting for the two above it); default: all three\n",
            argv0, WORKFLOW_TASKS_MAX, LATTICE_WIDTH);
    return 2;
}

int main(int argc, char **argv)
{
    const char *url = NULL;
    unsigned shapes = 0; /* bit s: run shape s; 0 = all */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tasks") && i + 1 < argc) {
            ntasks = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            batch = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            for (char *tok = strtok(argv[++i], ","); tok; tok = strtok(NULL, ",")) {
                int s = 0;
                while (s < SHAPE_N && strcmp(tok, shape_names[s]) != 0)
                    s++;
                if (s == SHAPE_N) return usage(argv[0]);
                shapes |= 1u << s;
            }
            if (!shapes) return usage(argv[0]);
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(argv[0]);
            return 0;
        } else if (argv[i][0] != '-' && !url) {
            url = argv[i];
        } else {
            return usage(argv[0]);
        }
    }
    if (!url || ntasks < 3 || ntasks > WORKFLOW_TASKS_MAX || batch < 1 || batch > 1000)
        return usage(argv[0]);

    log_set_level(LOG_WARN); /* the schema's migration notes are not figures */
    char *err = NULL;
    if (store_open(url, &st, &err) != 0) {
        fprintf(stderr, "store_open(%s): %s\n", url, err ? err : "?");
        free(err);
        return 1;
    }
    store_worker_t w;
    memset(&w, 0, sizeof w);
    w.name = xasprintf("graph-load-%ld", (long)getpid());
    w.host = xstrdup("localhost");
    w.queues = xstrdup("default");
    w.labels = xstrdup("");
    w.slots = batch;
    int status = 0;
    if (store_worker_register(st, &w, NULL, store_now_ms(st)) != 0) {
        fprintf(stderr, "graph-load: store_worker_register failed\n");
        status = 1;
    }
    const char *engine = strncmp(url, "sqlite:", 7) == 0 ? "SQLite" : "PostgreSQL";
    if (status == 0)
        printf("workflows, %s: %d no-op tasks, one worker claiming %d at a time\n"
               "%-8s %6s %10s %8s %9s %8s %11s %20s %12s\n",
               engine, ntasks, batch, "shape", "edges", "validate", "put", "trigger", "drive",
               "released", "claim/confirm/done", "max complete");
    for (int s = 0; status == 0 && s < SHAPE_N; s++) {
        if (shapes && !(shapes & (1u << s))) continue;
        figures_t f;
        memset(&f, 0, sizeof f);
        if (one_shape((shape_t)s, w.id, &f) != 0) {
            printf("%-8s failed (see above)\n", shape_names[s]);
            status = 1;
            continue;
        }
        double per = 1e6 / f.done;
        printf(
            "%-8s %6zu %7.2f ms %5.0f ms %6.0f ms %6.2f s %9.0f/s %6.0f/%4.0f/%4.0f µs %9.1f ms\n",
            shape_names[s], f.edges, f.validate_ms, f.put_ms, f.trigger_ms, f.drive_s,
            f.done / f.drive_s, f.claim_s * per, f.confirm_s * per, f.complete_s * per,
            f.complete_max_ms);
    }
    store_worker_clear(&w);
    store_close(st);
    return status;
}
