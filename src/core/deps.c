/*
 * Trigger rules, job dependency conditions and the decision over a run's
 * upstream counts (see deps.h).
 */
#include "core/deps.h"

#include <string.h>

#include "common/error.h"

static const char *const rule_names[RULE_COUNT] = {
    [RULE_ALL_SUCCESS] = "all_success", [RULE_ALL_DONE] = "all_done",
    [RULE_ALL_FAILED] = "all_failed",   [RULE_ONE_SUCCESS] = "one_success",
    [RULE_ONE_FAILED] = "one_failed",   [RULE_NONE_FAILED] = "none_failed",
};

static const char *const cond_names[DEP_COND_COUNT] = {
    [DEP_TASK] = "task",
    [DEP_AFTEROK] = "afterok",
    [DEP_AFTERANY] = "afterany",
    [DEP_AFTERNOTOK] = "afternotok",
};

const char *trigger_rule_name(trigger_rule_t r)
{
    return (unsigned)r < RULE_COUNT ? rule_names[r] : NULL;
}

int trigger_rule_parse(const char *name, trigger_rule_t *out)
{
    for (int i = 0; name && i < RULE_COUNT; i++) {
        if (strcmp(name, rule_names[i]) == 0) {
            *out = (trigger_rule_t)i;
            return 0;
        }
    }
    return SKED_EINVAL;
}

const char *dep_cond_name(dep_cond_t c)
{
    return (unsigned)c < DEP_COND_COUNT ? cond_names[c] : NULL;
}

int dep_cond_parse(const char *name, dep_cond_t *out)
{
    for (int i = DEP_AFTEROK; name && i < DEP_COND_COUNT; i++) {
        if (strcmp(name, cond_names[i]) == 0) {
            *out = (dep_cond_t)i;
            return 0;
        }
    }
    return SKED_EINVAL;
}

dep_class_t dep_classify(dep_cond_t c, run_state_t s)
{
    bool ok = s == RUN_SUCCEEDED;
    switch (c) {
    case DEP_AFTEROK:
        return ok ? DEP_OK : DEP_FAIL;
    case DEP_AFTERANY:
        return DEP_OK;
    case DEP_AFTERNOTOK:
        return ok ? DEP_FAIL : DEP_OK;
    case DEP_TASK:
    default:
        return ok ? DEP_OK : s == RUN_SKIPPED ? DEP_SKIP : DEP_FAIL;
    }
}

const char *dep_cond_skip_reason(dep_cond_t c, run_state_t s)
{
    if (c == DEP_TASK || (unsigned)c >= DEP_COND_COUNT || dep_classify(c, s) != DEP_FAIL)
        return NULL;
    if (c == DEP_AFTERNOTOK) return "upstream_succeeded";
    return s == RUN_SKIPPED ? "upstream_skipped" : "upstream_failed";
}

dep_class_t dep_classify_ended(dep_cond_t c, run_state_t s, const char *reason)
{
    if (c == DEP_TASK && s == RUN_SKIPPED && reason && strcmp(reason, "upstream_failed") == 0)
        return DEP_FAIL;
    return dep_classify(c, s);
}

static deps_verdict_t skip(const char **reason, const char *why)
{
    if (reason) *reason = why;
    return DEPS_SKIP;
}

deps_verdict_t deps_decide(trigger_rule_t rule, int n, int ok, int fail, int skipped,
                           const char **reason)
{
    int done = ok + fail + skipped;
    if (reason) *reason = NULL;
    if (n <= 0) return DEPS_READY;
    switch (rule) {
    case RULE_ALL_DONE:
        return done >= n ? DEPS_READY : DEPS_WAIT;
    case RULE_ALL_FAILED:
        if (ok > 0) return skip(reason, "upstream_succeeded");
        if (skipped > 0) return skip(reason, "upstream_skipped");
        return fail >= n ? DEPS_READY : DEPS_WAIT;
    case RULE_ONE_SUCCESS:
        if (ok > 0) return DEPS_READY;
        if (done >= n) return skip(reason, fail > 0 ? "upstream_failed" : "upstream_skipped");
        return DEPS_WAIT;
    case RULE_ONE_FAILED:
        if (fail > 0) return DEPS_READY;
        if (done >= n) return skip(reason, ok > 0 ? "upstream_succeeded" : "upstream_skipped");
        return DEPS_WAIT;
    case RULE_NONE_FAILED:
        if (fail > 0) return skip(reason, "upstream_failed");
        return done >= n ? DEPS_READY : DEPS_WAIT;
    case RULE_ALL_SUCCESS:
    default:
        if (fail > 0) return skip(reason, "upstream_failed");
        if (skipped > 0) return skip(reason, "upstream_skipped");
        return ok >= n ? DEPS_READY : DEPS_WAIT;
    }
}
