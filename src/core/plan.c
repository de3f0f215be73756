/* Misfire planning; see plan.h. */
#include "core/plan.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/xalloc.h"

/* Reasons recorded for missed fire times (promise §5.3: every fire time
 * that does not run says why). Static so a large backlog costs no
 * allocations, and so the ledger can tell by pointer whether a stretch goes
 * on for the same reason. */
static const char reason_run_once[] =
    "misfire: missed by more than the misfire grace; only the latest missed fire time runs "
    "(run_once)";
static const char reason_catch_up[] =
    "misfire: missed and older than the job's catch_up_window (catch_up)";
static const char reason_skip[] = "misfire: missed by more than the misfire grace (skip)";

/* Why the i-th of the k walked fire times does not run (NULL: it runs).
 * The first nmiss are missed; stretch_goes_on says that more missed fire
 * times lie beyond the walk. */
static const char *pass_over(const plan_due_t *due, int64_t now_ms, const int64_t *fires, size_t i,
                             size_t nmiss, bool stretch_goes_on)
{
    if (i >= nmiss) return NULL;
    switch (due->misfire) {
    case MISFIRE_CATCH_UP:
        return fires[i] < now_ms - due->catch_up_window_ms ? reason_catch_up : NULL;
    case MISFIRE_SKIP:
        return reason_skip;
    case MISFIRE_RUN_ONCE:
    default:
        /* Only the latest of the stretch runs; if the walk stopped inside
         * the stretch, the latest is still ahead, seen on a later pass. */
        return i + 1 < nmiss || stretch_goes_on ? reason_run_once : NULL;
    }
}

/* Walks due's fire times up to pass->until_ms (at most walk_max) into
 * fires; returns how many, with the next one (or -1) in out. */
static size_t walk(const plan_due_t *due, const plan_pass_t *pass, int64_t *fires, plan_t *out)
{
    size_t k = 0;
    int64_t t = due->next_fire_ms;
    while (t >= 0 && t <= pass->until_ms && k < pass->walk_max) {
        if (t > due->end_ms) { /* belt and braces: schedule_next honours end already */
            t = -1;
            break;
        }
        fires[k++] = t;
        int64_t nx = schedule_next(due->compiled, t);
        if (nx >= 0 && nx <= t) {
            out->note = PLAN_BACKWARDS;
            out->back_from_ms = t;
            out->back_to_ms = nx;
            nx = -1;
        }
        t = nx;
    }
    out->new_next_ms = t;
    out->bounded = t >= 0 && t <= pass->until_ms;
    return k;
}

void plan_make(const plan_due_t *due, const plan_pass_t *pass, plan_t *out)
{
    memset(out, 0, sizeof *out);
    out->note = PLAN_WALKED;
    out->new_next_ms = -1;
    if (due->next_fire_ms < 0) return; /* exhausted; nothing to do */

    if (!due->compiled && due->compile_rc == SKED_EIO) {
        /* A zone file that could not be read just now (out of descriptors,
         * an I/O error) is no reason to retire a schedule: leave it due and
         * try again on the next pass. */
        out->note = PLAN_RETRY;
        out->new_next_ms = due->next_fire_ms;
        return;
    }
    if (!due->compiled) {
        /* A stored schedule that no longer compiles (say, a time zone gone
         * from a newer tzdata) cannot fire again. Record why on a skipped
         * run so the job's history explains the silence, and retire it. */
        out->note = PLAN_RETIRED;
        out->owned_reason =
            xasprintf("schedule no longer valid: %s", due->compile_err ? due->compile_err : "");
        out->runs = xcalloc(1, sizeof *out->runs);
        out->runs[0] = (plan_run_t){due->next_fire_ms, RUN_SKIPPED, out->owned_reason};
        out->nruns = 1;
        return;
    }

    int64_t *fires = xmalloc((pass->walk_max ? pass->walk_max : 1) * sizeof *fires);
    size_t k = walk(due, pass, fires, out);

    const int64_t misfire_before = pass->now_ms - pass->grace_ms;
    const bool stretch_goes_on = out->bounded && out->new_next_ms < misfire_before;
    size_t nmiss = 0;
    while (nmiss < k && fires[nmiss] < misfire_before)
        nmiss++;

    out->runs = xcalloc(k ? k : 1, sizeof *out->runs);
    plan_miss_t *m = &out->miss;
    for (size_t i = 0; i < k; i++) {
        const char *reason = pass_over(due, pass->now_ms, fires, i, nmiss, stretch_goes_on);
        /* Only a leading stretch of one reason goes to the ledger; a fire
         * time passed over after one that runs is a skipped run. */
        if (reason && out->nruns == 0 && (m->count == 0 || m->reason == reason)) {
            if (m->count++ == 0) {
                m->first_ms = fires[i];
                m->prev_ms = due->last_fire_ms;
                m->reason = reason;
            }
            m->last_ms = fires[i];
            continue;
        }
        out->runs[out->nruns++] =
            (plan_run_t){fires[i], reason ? RUN_SKIPPED : RUN_SCHEDULED, reason};
    }
    free(fires);
}

void plan_clear(plan_t *p)
{
    if (!p) return;
    free(p->runs);
    free(p->owned_reason);
    memset(p, 0, sizeof *p);
}

int64_t plan_first_fire(const schedule_t *compiled, schedule_kind_t kind, int64_t now_ms)
{
    /* "Strictly after now - 1" so a schedule stored exactly at one of its
     * fire instants still fires that instant. */
    int64_t next = schedule_next(compiled, now_ms - 1);
    /* An `at` already past: its instant, whenever it was (within its own
     * start/end), so the misfire policy decides. */
    if (next < 0 && kind == SCHEDULE_AT) next = schedule_next(compiled, INT64_MIN);
    return next;
}
