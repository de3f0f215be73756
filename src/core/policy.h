/*
 * The policies a job carries that the store decides on: what happens when
 * a run would overlap a running one, and what happens to fire times missed
 * while the server was down or the job paused. Value types only, so that
 * the store (and anything below the API) can name them without the job
 * document parser and its JSON library. Their names ("forbid", "run_once")
 * are parsed and printed by jobspec.c.
 *
 * The numeric values are stored in the database (jobs.overlap,
 * jobs.misfire): they never change; new policies take new numbers.
 */
#ifndef SKED_CORE_POLICY_H
#define SKED_CORE_POLICY_H

typedef enum overlap_policy { OVERLAP_ALLOW = 0, OVERLAP_FORBID, OVERLAP_REPLACE } overlap_policy_t;
typedef enum misfire_policy {
    MISFIRE_RUN_ONCE = 0,
    MISFIRE_CATCH_UP,
    MISFIRE_SKIP
} misfire_policy_t;

_Static_assert(OVERLAP_ALLOW == 0 && OVERLAP_FORBID == 1 && OVERLAP_REPLACE == 2,
               "jobs.overlap holds these numbers");
_Static_assert(MISFIRE_RUN_ONCE == 0 && MISFIRE_CATCH_UP == 1 && MISFIRE_SKIP == 2,
               "jobs.misfire holds these numbers");

/* "allow", "forbid", "replace"; NULL out of range. Static strings. */
const char *overlap_policy_name(overlap_policy_t p);
/* "run_once", "catch_up", "skip"; NULL out of range. Static strings. */
const char *misfire_policy_name(misfire_policy_t p);

#endif
