/*
 * The run state machine of DESIGN §4: state and attempt-outcome names as
 * the API spells them, and the table of allowed transitions. The store
 * checks every state change of a run against run_transition_ok() so that a
 * late report, a double cancel or a racing reaper cannot move a run
 * backwards or out of a terminal state.
 */
#include "core/run.h"
#include "common/error.h"

#include <string.h>

static const char *const state_names[RUN_STATE_COUNT] = {
    [RUN_SCHEDULED] = "scheduled", [RUN_WAITING] = "waiting",     [RUN_PENDING] = "pending",
    [RUN_RUNNING] = "running",     [RUN_SUCCEEDED] = "succeeded", [RUN_FAILED] = "failed",
    [RUN_CANCELED] = "canceled",   [RUN_SKIPPED] = "skipped",
};

static const char *const outcome_names[ATTEMPT_OUTCOME_COUNT] = {
    [ATTEMPT_SUCCEEDED] = "succeeded", [ATTEMPT_FAILED] = "failed",
    [ATTEMPT_TIMEOUT] = "timeout",     [ATTEMPT_CANCELED] = "canceled",
    [ATTEMPT_LOST] = "lost",           [ATTEMPT_NOT_STARTED] = "not_started",
};

#define BIT(s) (1u << (s))

/* allowed[from] is the set of states `from` may move to. Self-transitions
 * are not in the table: a store update that would "move" a run to its own
 * state is a lost race, and the caller must see it as such. */
static const unsigned allowed[RUN_STATE_COUNT] = {
    /* Due (pending), blocked on upstream (waiting), claimed directly when
     * already due (running), misfire/overlap (skipped), cancel. */
    [RUN_SCHEDULED] = BIT(RUN_PENDING) | BIT(RUN_WAITING) | BIT(RUN_RUNNING) | BIT(RUN_SKIPPED) |
                      BIT(RUN_CANCELED),
    /* Upstream done: ready, or upstream failed (skipped); cancel. A
     * workflow run or a job array's run waits on its members and ends
     * when the last of them does (succeeded or failed). */
    [RUN_WAITING] = BIT(RUN_PENDING) | BIT(RUN_SUCCEEDED) | BIT(RUN_FAILED) | BIT(RUN_SKIPPED) |
                    BIT(RUN_CANCELED),
    /* Pending never goes back to scheduled: once due it stays due. */
    [RUN_PENDING] = BIT(RUN_RUNNING) | BIT(RUN_SKIPPED) | BIT(RUN_CANCELED),
    /* Finish, or back to scheduled for a retry or after a lost lease. */
    [RUN_RUNNING] = BIT(RUN_SUCCEEDED) | BIT(RUN_FAILED) | BIT(RUN_SCHEDULED) | BIT(RUN_CANCELED),
    /* Terminal states go nowhere. */
    [RUN_SUCCEEDED] = 0,
    [RUN_FAILED] = 0,
    [RUN_CANCELED] = 0,
    [RUN_SKIPPED] = 0,
};

const char *run_state_name(run_state_t s)
{
    if ((unsigned)s >= RUN_STATE_COUNT) return NULL;
    return state_names[s];
}

int run_state_parse(const char *name, run_state_t *out)
{
    if (!name) return SKED_EINVAL;
    for (int i = 0; i < RUN_STATE_COUNT; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (run_state_t)i;
            return 0;
        }
    }
    return SKED_EINVAL;
}

bool run_state_terminal(run_state_t s)
{
    return s == RUN_SUCCEEDED || s == RUN_FAILED || s == RUN_CANCELED || s == RUN_SKIPPED;
}

bool run_transition_ok(run_state_t from, run_state_t to)
{
    if ((unsigned)from >= RUN_STATE_COUNT || (unsigned)to >= RUN_STATE_COUNT) return false;
    return (allowed[from] & BIT(to)) != 0;
}

const char *attempt_outcome_name(attempt_outcome_t o)
{
    if ((unsigned)o >= ATTEMPT_OUTCOME_COUNT) return NULL;
    return outcome_names[o];
}

int attempt_outcome_parse(const char *name, attempt_outcome_t *out)
{
    if (!name) return SKED_EINVAL;
    for (int i = 0; i < ATTEMPT_OUTCOME_COUNT; i++) {
        if (strcmp(name, outcome_names[i]) == 0) {
            *out = (attempt_outcome_t)i;
            return 0;
        }
    }
    return SKED_EINVAL;
}
