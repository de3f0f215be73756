/*
 * Dependencies between runs: the trigger rules of workflow tasks, the
 * conditions of Slurm-style job dependencies, and the one decision both
 * come down to. Value types and pure functions only (the store decides
 * with them inside its units of work; the API parses and prints them).
 *
 * A run that depends on others keeps four counts: how many upstream edges
 * it has (n) and how many of them ended ok, failed and skipped. Each time
 * an upstream ends, the store adds it to one count and asks deps_decide()
 * whether the run may go (ready), must keep waiting, or can never go
 * (skipped, with the reason). The counts grow one at a time and never
 * shrink while the run waits, so each answer other than "wait" is given
 * exactly once.
 *
 * The numeric values are stored (runs.deps_rule, run_edges.cond): they
 * never change; new values take new numbers.
 */
#ifndef SKED_CORE_DEPS_H
#define SKED_CORE_DEPS_H

#include <stdbool.h>

#include "core/run.h"

/* How a run's upstreams combine (Airflow's trigger rules). */
typedef enum trigger_rule {
    RULE_ALL_SUCCESS = 0, /* every upstream succeeded (the default) */
    RULE_ALL_DONE,        /* every upstream ended, however */
    RULE_ALL_FAILED,      /* every upstream failed (or was canceled) */
    RULE_ONE_SUCCESS,     /* at least one succeeded: goes at the first success */
    RULE_ONE_FAILED,      /* at least one failed: goes at the first failure */
    RULE_NONE_FAILED,     /* every upstream ended, none failed (skips allowed) */
    RULE_COUNT
} trigger_rule_t;

_Static_assert(RULE_ALL_SUCCESS == 0 && RULE_ALL_DONE == 1 && RULE_ALL_FAILED == 2 &&
                   RULE_ONE_SUCCESS == 3 && RULE_ONE_FAILED == 4 && RULE_NONE_FAILED == 5,
               "runs.deps_rule holds these numbers");

/* What one upstream edge asks of its upstream run. Workflow edges ask
 * nothing of their own (the downstream's rule decides over all of them);
 * a job dependency's edge carries Slurm's condition, and its run waits
 * for every edge (all_success over "condition met"). */
typedef enum dep_cond {
    DEP_TASK = 0,   /* a workflow edge: counted by the upstream's outcome */
    DEP_AFTEROK,    /* met when the upstream succeeded */
    DEP_AFTERANY,   /* met when the upstream ended, however */
    DEP_AFTERNOTOK, /* met when the upstream ended other than succeeded */
    DEP_COND_COUNT
} dep_cond_t;

_Static_assert(DEP_TASK == 0 && DEP_AFTEROK == 1 && DEP_AFTERANY == 2 && DEP_AFTERNOTOK == 3,
               "run_edges.cond holds these numbers");

/* How an ended upstream counts. */
typedef enum dep_class { DEP_OK = 0, DEP_FAIL, DEP_SKIP } dep_class_t;

/* The decision. */
typedef enum deps_verdict { DEPS_WAIT = 0, DEPS_READY, DEPS_SKIP } deps_verdict_t;

/* "all_success", ...; NULL out of range. Static strings. */
const char *trigger_rule_name(trigger_rule_t r);
/* 0 and *out, or SKED_EINVAL. */
int trigger_rule_parse(const char *name, trigger_rule_t *out);
/* "afterok", "afterany", "afternotok"; "task" for DEP_TASK; NULL out of range. */
const char *dep_cond_name(dep_cond_t c);
/* Parses the three job conditions (not "task"): 0 and *out, or SKED_EINVAL. */
int dep_cond_parse(const char *name, dep_cond_t *out);

/* How an upstream that ended in state `s` counts on an edge with condition
 * `c`. For a workflow edge: succeeded = ok, skipped = skip, failed and
 * canceled = fail. For a job condition the edge is ok when the condition
 * is met and fail when it never can be (DEP_SKIP is not used). */
dep_class_t dep_classify(dep_cond_t c, run_state_t s);
/* dep_classify for an upstream that ended in state s with `reason` (may be
 * NULL): on a workflow edge, a task skipped "upstream_failed" counts as
 * failed, so a failure carries down a chain as upstream_failed (as
 * Airflow's does) instead of turning into upstream_skipped one step down. */
dep_class_t dep_classify_ended(dep_cond_t c, run_state_t s, const char *reason);

/* Why a job dependency can never be met, for the run's skip reason: the
 * edge with condition c whose upstream ended in state s classified
 * DEP_FAIL. deps_decide() cannot tell (under all_success every unmet edge
 * counts as a failure, so it would say "upstream_failed" for an afternotok
 * whose upstream succeeded): the store takes the reason from here for job
 * conditions, from deps_decide() for workflow edges. "upstream_succeeded"
 * (afternotok over a success), "upstream_skipped" (afterok over a skipped
 * run), "upstream_failed" (afterok over a failure or a cancel); NULL when
 * the condition is met, for DEP_TASK and out of range. Static strings. */
const char *dep_cond_skip_reason(dep_cond_t c, run_state_t s);

/* The verdict of `rule` over n upstream edges of which ok, fail and skip
 * have ended that way (ok + fail + skip <= n). When DEPS_SKIP, *reason
 * (may be NULL) is "upstream_failed", "upstream_skipped" or
 * "upstream_succeeded" (all_failed and one_failed when the upstreams
 * succeeded instead): a static string. A run with no edges (n = 0) is
 * ready. */
deps_verdict_t deps_decide(trigger_rule_t rule, int n, int ok, int fail, int skip,
                           const char **reason);

#endif
