/*
 * The run state machine (DESIGN §4). Names are the API's strings.
 *
 *   scheduled --(due)--> pending --claim--> running --> succeeded | failed
 *   scheduled/waiting/pending/running --cancel--> canceled
 *   running --(retry, lease lost)--> scheduled
 *   scheduled/pending --(misfire, overlap, ...)--> skipped
 *   waiting --(upstreams ended)--> pending | skipped; a group run (workflow run,
 *     job array) waits on its members --> succeeded | failed
 *
 * Terminal: succeeded, failed, canceled, skipped.
 */
#ifndef SKED_CORE_RUN_H
#define SKED_CORE_RUN_H

#include <stdbool.h>

typedef enum run_state {
    RUN_SCHEDULED = 0, /* waiting for its not_before (materialised ahead, or retry backoff) */
    RUN_WAITING,       /* waiting for upstream dependencies */
    RUN_PENDING,       /* due; waiting for a worker */
    RUN_RUNNING,       /* leased to a worker */
    RUN_SUCCEEDED,
    RUN_FAILED,
    RUN_CANCELED,
    RUN_SKIPPED,
    RUN_STATE_COUNT
} run_state_t;

/* Stored as integers (runs.state; partial indexes spell them): fixed. */
_Static_assert(RUN_SCHEDULED == 0 && RUN_WAITING == 1 && RUN_PENDING == 2 && RUN_RUNNING == 3 &&
                   RUN_SUCCEEDED == 4 && RUN_FAILED == 5 && RUN_CANCELED == 6 && RUN_SKIPPED == 7,
               "runs.state holds these numbers");

/* "scheduled", "pending", ...; NULL for out-of-range. */
const char *run_state_name(run_state_t s);
/* Parses a state name; returns 0 and sets *out, or SKED_EINVAL. */
int run_state_parse(const char *name, run_state_t *out);
bool run_state_terminal(run_state_t s);
/* true if the lifecycle allows from -> to. */
bool run_transition_ok(run_state_t from, run_state_t to);

/* Attempt outcomes, as workers report them and history shows them. */
typedef enum attempt_outcome {
    ATTEMPT_SUCCEEDED = 0, /* exit 0 */
    ATTEMPT_FAILED,        /* non-zero exit, signal, spawn error */
    ATTEMPT_TIMEOUT,       /* killed for exceeding the job's timeout */
    ATTEMPT_CANCELED,      /* killed because the run was canceled */
    ATTEMPT_LOST,          /* lease expired: worker died or was cut off */
    ATTEMPT_NOT_STARTED,   /* handed out but never started: refused by the worker (its lease
                              was over on arrival) or never confirmed; not charged against
                              the retry budget, and the run goes back to pending */
    ATTEMPT_OUTCOME_COUNT
} attempt_outcome_t;

/* Stored as integers (attempts.outcome): fixed; new outcomes take new numbers. */
_Static_assert(ATTEMPT_SUCCEEDED == 0 && ATTEMPT_FAILED == 1 && ATTEMPT_TIMEOUT == 2 &&
                   ATTEMPT_CANCELED == 3 && ATTEMPT_LOST == 4 && ATTEMPT_NOT_STARTED == 5,
               "attempts.outcome holds these numbers");

const char *attempt_outcome_name(attempt_outcome_t o);
int attempt_outcome_parse(const char *name, attempt_outcome_t *out);

#endif
