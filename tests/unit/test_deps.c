/*
 * Unit tests for core/deps, written from the rules' definitions rather
 * than from the code: every trigger rule is checked against an oracle that
 * enumerates the ways the still-running upstreams could end (a run is
 * ready when its rule holds, or for the two "one_" rules as soon as it
 * can; skipped when no way of ending can make it hold; else it waits),
 * over every count of up to 6 upstreams. Then the diamond a -> {b, c} -> d
 * with one failing (and one skipped) branch under each rule, in both
 * orders of completion; dep_classify over every ended state and condition;
 * the skip reasons of job conditions; and the names, parsed and printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "core/deps.h"

/* ---- names --------------------------------------------------------------- */

static const char *const rule_names[RULE_COUNT] = {
    "all_success", "all_done", "all_failed", "one_success", "one_failed", "none_failed",
};

static void test_rule_names_round_trip(void **state)
{
    (void)state;
    for (int r = 0; r < RULE_COUNT; r++) {
        trigger_rule_t got = RULE_COUNT;
        assert_string_equal(trigger_rule_name((trigger_rule_t)r), rule_names[r]);
        assert_int_equal(trigger_rule_parse(rule_names[r], &got), 0);
        assert_int_equal(got, r);
    }
    assert_null(trigger_rule_name(RULE_COUNT));
    assert_null(trigger_rule_name((trigger_rule_t)-1));
    assert_null(trigger_rule_name((trigger_rule_t)1000));
    const char *bad[] = {
        "",     "ALL_SUCCESS", "all_success ", " all_success", "all-success",  "all",
        "task", "afterok",     "one_failedx",  "none",         "none_failed\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        trigger_rule_t got = RULE_ONE_FAILED;
        if (trigger_rule_parse(bad[i], &got) != SKED_EINVAL) fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(got, RULE_ONE_FAILED); /* untouched */
    }
    trigger_rule_t got = RULE_ALL_DONE;
    assert_int_equal(trigger_rule_parse(NULL, &got), SKED_EINVAL);
    assert_int_equal(got, RULE_ALL_DONE);
}

static void test_cond_names_round_trip(void **state)
{
    (void)state;
    static const char *const names[DEP_COND_COUNT] = {"task", "afterok", "afterany", "afternotok"};
    for (int c = 0; c < DEP_COND_COUNT; c++)
        assert_string_equal(dep_cond_name((dep_cond_t)c), names[c]);
    assert_null(dep_cond_name(DEP_COND_COUNT));
    assert_null(dep_cond_name((dep_cond_t)-1));
    /* Only the three job conditions parse: "task" is no job's condition. */
    for (int c = DEP_AFTEROK; c < DEP_COND_COUNT; c++) {
        dep_cond_t got = DEP_TASK;
        assert_int_equal(dep_cond_parse(names[c], &got), 0);
        assert_int_equal(got, c);
    }
    const char *bad[] = {"task",     "",      "AFTEROK",  "after_ok",
                         "afterok ", "after", "afternot", "all_success"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        dep_cond_t got = DEP_AFTERANY;
        if (dep_cond_parse(bad[i], &got) != SKED_EINVAL) fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(got, DEP_AFTERANY);
    }
    dep_cond_t got = DEP_AFTERANY;
    assert_int_equal(dep_cond_parse(NULL, &got), SKED_EINVAL);
}

/* ---- dep_classify -------------------------------------------------------- */

static const run_state_t ended[] = {RUN_SUCCEEDED, RUN_FAILED, RUN_CANCELED, RUN_SKIPPED};

static void test_classify_every_ended_state(void **state)
{
    (void)state;
    /* [condition][succeeded, failed, canceled, skipped] */
    static const dep_class_t want[DEP_COND_COUNT][4] = {
        [DEP_TASK] = {DEP_OK, DEP_FAIL, DEP_FAIL, DEP_SKIP},
        [DEP_AFTEROK] = {DEP_OK, DEP_FAIL, DEP_FAIL, DEP_FAIL},
        [DEP_AFTERANY] = {DEP_OK, DEP_OK, DEP_OK, DEP_OK},
        [DEP_AFTERNOTOK] = {DEP_FAIL, DEP_OK, DEP_OK, DEP_OK},
    };
    for (int c = 0; c < DEP_COND_COUNT; c++)
        for (size_t s = 0; s < 4; s++)
            if (dep_classify((dep_cond_t)c, ended[s]) != want[c][s])
                fail_msg("%s over %s: %d, want %d", dep_cond_name((dep_cond_t)c),
                         run_state_name(ended[s]), dep_classify((dep_cond_t)c, ended[s]),
                         want[c][s]);
    /* A job condition never says "skip": its run waits for every edge. */
    for (int c = DEP_AFTEROK; c < DEP_COND_COUNT; c++)
        for (int s = 0; s < RUN_STATE_COUNT; s++)
            assert_int_not_equal(dep_classify((dep_cond_t)c, (run_state_t)s), DEP_SKIP);
}

static void test_cond_skip_reasons(void **state)
{
    (void)state;
    /* [condition][succeeded, failed, canceled, skipped]; NULL = met */
    static const char *const want[DEP_COND_COUNT][4] = {
        [DEP_TASK] = {NULL, NULL, NULL, NULL},
        [DEP_AFTEROK] = {NULL, "upstream_failed", "upstream_failed", "upstream_skipped"},
        [DEP_AFTERANY] = {NULL, NULL, NULL, NULL},
        [DEP_AFTERNOTOK] = {"upstream_succeeded", NULL, NULL, NULL},
    };
    for (int c = 0; c < DEP_COND_COUNT; c++) {
        for (size_t s = 0; s < 4; s++) {
            const char *got = dep_cond_skip_reason((dep_cond_t)c, ended[s]);
            if (!want[c][s] ? got != NULL : !got || strcmp(got, want[c][s]) != 0)
                fail_msg("%s over %s: %s, want %s", dep_cond_name((dep_cond_t)c),
                         run_state_name(ended[s]), got ? got : "NULL",
                         want[c][s] ? want[c][s] : "NULL");
            /* A reason exactly when the edge can never be met. */
            if (c != DEP_TASK)
                assert_true((got != NULL) == (dep_classify((dep_cond_t)c, ended[s]) == DEP_FAIL));
        }
    }
    assert_null(dep_cond_skip_reason(DEP_COND_COUNT, RUN_FAILED));
}

/* ---- deps_decide against an oracle ---------------------------------------- */

/* Whether rule holds once all n upstreams have ended as ok/fail/skip. */
static bool holds(trigger_rule_t r, int n, int ok, int fail, int skip)
{
    switch (r) {
    case RULE_ALL_SUCCESS:
        return ok == n;
    case RULE_ALL_DONE:
        return true;
    case RULE_ALL_FAILED:
        return fail == n;
    case RULE_ONE_SUCCESS:
        return ok >= 1;
    case RULE_ONE_FAILED:
        return fail >= 1;
    case RULE_NONE_FAILED:
        return fail == 0;
    default:
        fail_msg("no rule %d", r);
        return false;
    }
}

/* The two rules that go at the first upstream that makes them hold. */
static bool eager(trigger_rule_t r)
{
    return r == RULE_ONE_SUCCESS || r == RULE_ONE_FAILED;
}

/* The verdict from the definition: ready when the rule holds over the
 * ended upstreams (eager rules) or all have ended and it holds; skip when
 * no way the others could end makes it hold; else wait. The ways are
 * enumerated, not reasoned about. */
static deps_verdict_t oracle(trigger_rule_t r, int n, int ok, int fail, int skip)
{
    int left = n - ok - fail - skip;
    if (n == 0) return DEPS_READY;
    if (left == 0) return holds(r, n, ok, fail, skip) ? DEPS_READY : DEPS_SKIP;
    if (eager(r) && holds(r, n, ok, fail, skip)) return DEPS_READY;
    for (int a = 0; a <= left; a++)
        for (int b = 0; a + b <= left; b++)
            if (holds(r, n, ok + a, fail + b, skip + left - a - b)) return DEPS_WAIT;
    return DEPS_SKIP;
}

/* The reason a skip gives: what made the rule impossible. A failure is
 * named before a skip where both count against the rule. */
static const char *oracle_reason(trigger_rule_t r, int ok, int fail)
{
    switch (r) {
    case RULE_ALL_SUCCESS:
    case RULE_ONE_SUCCESS:
        return fail ? "upstream_failed" : "upstream_skipped";
    case RULE_ALL_FAILED:
    case RULE_ONE_FAILED:
        return ok ? "upstream_succeeded" : "upstream_skipped";
    case RULE_NONE_FAILED:
        return "upstream_failed";
    default:
        return "(never skips)";
    }
}

#define N_MAX 6

static void test_decide_matches_oracle(void **state)
{
    (void)state;
    int checked = 0;
    for (int r = 0; r < RULE_COUNT; r++) {
        for (int n = 0; n <= N_MAX; n++) {
            for (int ok = 0; ok <= n; ok++) {
                for (int fail = 0; ok + fail <= n; fail++) {
                    for (int skip = 0; ok + fail + skip <= n; skip++) {
                        trigger_rule_t rule = (trigger_rule_t)r;
                        const char *reason = "unset";
                        deps_verdict_t got = deps_decide(rule, n, ok, fail, skip, &reason);
                        deps_verdict_t want = oracle(rule, n, ok, fail, skip);
                        if (got != want)
                            fail_msg("%s n=%d ok=%d fail=%d skip=%d: verdict %d, want %d",
                                     rule_names[r], n, ok, fail, skip, got, want);
                        if (want != DEPS_SKIP) {
                            assert_null(reason);
                        } else if (!reason || strcmp(reason, oracle_reason(rule, ok, fail))) {
                            fail_msg("%s n=%d ok=%d fail=%d skip=%d: reason %s, want %s",
                                     rule_names[r], n, ok, fail, skip, reason ? reason : "NULL",
                                     oracle_reason(rule, ok, fail));
                        }
                        /* reason may be NULL. */
                        assert_int_equal(deps_decide(rule, n, ok, fail, skip, NULL), want);
                        checked++;
                    }
                }
            }
        }
    }
    assert_int_equal(checked, RULE_COUNT * 210); /* sum over n<=6 of C(n+3,3) */
}

/* The store asks once per ended upstream and stops at the first answer
 * other than wait: that answer must not change as the rest end, whichever
 * way they do (so no run is released and then found skipped, or back). */
static void test_decide_never_takes_an_answer_back(void **state)
{
    (void)state;
    for (int r = 0; r < RULE_COUNT; r++) {
        for (int n = 1; n <= N_MAX; n++) {
            for (int ok = 0; ok <= n; ok++) {
                for (int fail = 0; ok + fail <= n; fail++) {
                    for (int skip = 0; ok + fail + skip < n; skip++) {
                        trigger_rule_t rule = (trigger_rule_t)r;
                        deps_verdict_t v = deps_decide(rule, n, ok, fail, skip, NULL);
                        if (v == DEPS_WAIT) continue;
                        assert_int_equal(deps_decide(rule, n, ok + 1, fail, skip, NULL), v);
                        assert_int_equal(deps_decide(rule, n, ok, fail + 1, skip, NULL), v);
                        assert_int_equal(deps_decide(rule, n, ok, fail, skip + 1, NULL), v);
                    }
                }
            }
        }
    }
}

static void test_decide_edges(void **state)
{
    (void)state;
    /* No upstream: ready under every rule (and an out-of-range rule). */
    for (int r = 0; r <= RULE_COUNT; r++) {
        const char *reason = "unset";
        assert_int_equal(deps_decide((trigger_rule_t)r, 0, 0, 0, 0, &reason), DEPS_READY);
        assert_null(reason);
    }
    /* An unknown rule is taken as the default, all_success. */
    assert_int_equal(deps_decide(RULE_COUNT, 2, 1, 0, 0, NULL), DEPS_WAIT);
    assert_int_equal(deps_decide(RULE_COUNT, 2, 2, 0, 0, NULL), DEPS_READY);
    assert_int_equal(deps_decide(RULE_COUNT, 2, 1, 1, 0, NULL), DEPS_SKIP);
}

/* ---- the diamond a -> {b, c} -> d ---------------------------------------- */

/* d's verdict after each of its two upstreams (b, c) ends, in that order,
 * each counted on its workflow edge as the store counts it. */
static void diamond(trigger_rule_t rule, run_state_t first, run_state_t second,
                    deps_verdict_t *after1, deps_verdict_t *after2, const char **reason)
{
    int counts[3] = {0, 0, 0}; /* ok, fail, skip */
    *reason = NULL;
    counts[dep_classify(DEP_TASK, first)]++;
    *after1 = deps_decide(rule, 2, counts[DEP_OK], counts[DEP_FAIL], counts[DEP_SKIP], reason);
    if (*after1 != DEPS_WAIT) { /* decided: the store does not ask again */
        *after2 = *after1;
        return;
    }
    counts[dep_classify(DEP_TASK, second)]++;
    *after2 = deps_decide(rule, 2, counts[DEP_OK], counts[DEP_FAIL], counts[DEP_SKIP], reason);
}

typedef struct diamond_case {
    trigger_rule_t rule;
    run_state_t first, second;
    deps_verdict_t after1, after2;
    const char *reason;
} diamond_case_t;

#define W DEPS_WAIT
#define R DEPS_READY
#define S DEPS_SKIP

/* b succeeds, c fails (or is canceled, or skipped), in both orders: what d
 * does, as docs/workflows.md tells it. */
static const diamond_case_t diamond_cases[] = {
    /* one failing branch */
    {RULE_ALL_SUCCESS, RUN_SUCCEEDED, RUN_FAILED, W, S, "upstream_failed"},
    {RULE_ALL_SUCCESS, RUN_FAILED, RUN_SUCCEEDED, S, S, "upstream_failed"}, /* at once */
    {RULE_ALL_DONE, RUN_SUCCEEDED, RUN_FAILED, W, R, NULL},
    {RULE_ALL_DONE, RUN_FAILED, RUN_SUCCEEDED, W, R, NULL},
    {RULE_ALL_FAILED, RUN_SUCCEEDED, RUN_FAILED, S, S, "upstream_succeeded"},
    {RULE_ALL_FAILED, RUN_FAILED, RUN_SUCCEEDED, W, S, "upstream_succeeded"},
    {RULE_ONE_SUCCESS, RUN_SUCCEEDED, RUN_FAILED, R, R, NULL}, /* at the first success */
    {RULE_ONE_SUCCESS, RUN_FAILED, RUN_SUCCEEDED, W, R, NULL},
    {RULE_ONE_FAILED, RUN_SUCCEEDED, RUN_FAILED, W, R, NULL},
    {RULE_ONE_FAILED, RUN_FAILED, RUN_SUCCEEDED, R, R, NULL}, /* at the first failure */
    {RULE_NONE_FAILED, RUN_SUCCEEDED, RUN_FAILED, W, S, "upstream_failed"},
    {RULE_NONE_FAILED, RUN_FAILED, RUN_SUCCEEDED, S, S, "upstream_failed"},
    /* a canceled branch counts as a failed one */
    {RULE_ALL_SUCCESS, RUN_CANCELED, RUN_SUCCEEDED, S, S, "upstream_failed"},
    {RULE_ONE_FAILED, RUN_SUCCEEDED, RUN_CANCELED, W, R, NULL},
    {RULE_ALL_FAILED, RUN_CANCELED, RUN_FAILED, W, R, NULL},
    /* one skipped branch (its own rule could not be met) */
    {RULE_ALL_SUCCESS, RUN_SUCCEEDED, RUN_SKIPPED, W, S, "upstream_skipped"},
    {RULE_ALL_DONE, RUN_SKIPPED, RUN_SUCCEEDED, W, R, NULL},
    {RULE_ALL_FAILED, RUN_SKIPPED, RUN_FAILED, S, S, "upstream_skipped"},
    {RULE_ONE_SUCCESS, RUN_SKIPPED, RUN_SUCCEEDED, W, R, NULL},
    {RULE_ONE_SUCCESS, RUN_SKIPPED, RUN_SKIPPED, W, S, "upstream_skipped"},
    {RULE_ONE_FAILED, RUN_SKIPPED, RUN_SUCCEEDED, W, S, "upstream_succeeded"},
    {RULE_ONE_FAILED, RUN_SKIPPED, RUN_SKIPPED, W, S, "upstream_skipped"},
    {RULE_NONE_FAILED, RUN_SKIPPED, RUN_SUCCEEDED, W, R, NULL},
    /* both branches fail */
    {RULE_ALL_FAILED, RUN_FAILED, RUN_FAILED, W, R, NULL},
    {RULE_ONE_SUCCESS, RUN_FAILED, RUN_FAILED, W, S, "upstream_failed"},
};

static void test_diamond_under_each_rule(void **state)
{
    (void)state;
    bool covered[RULE_COUNT] = {false};
    for (size_t i = 0; i < sizeof diamond_cases / sizeof diamond_cases[0]; i++) {
        const diamond_case_t *k = &diamond_cases[i];
        deps_verdict_t v1, v2;
        const char *reason;
        diamond(k->rule, k->first, k->second, &v1, &v2, &reason);
        if (v1 != k->after1 || v2 != k->after2 ||
            (k->reason ? !reason || strcmp(reason, k->reason) : reason != NULL))
            fail_msg("%s, %s then %s: %d then %d (%s), want %d then %d (%s)", rule_names[k->rule],
                     run_state_name(k->first), run_state_name(k->second), v1, v2,
                     reason ? reason : "-", k->after1, k->after2, k->reason ? k->reason : "-");
        if (k->first == RUN_FAILED || k->second == RUN_FAILED) covered[k->rule] = true;
    }
    for (int r = 0; r < RULE_COUNT; r++)
        if (!covered[r]) fail_msg("no failing-branch diamond for %s", rule_names[r]);
}

/* A job dependency waits for every edge (all_success over "condition
 * met"): a run with afterok on X and afternotok on Y. */
static void test_job_conditions_combine(void **state)
{
    (void)state;
    struct {
        run_state_t x, y;
        deps_verdict_t want;
        const char *reason;
    } cases[] = {
        {RUN_SUCCEEDED, RUN_FAILED, DEPS_READY, NULL},
        {RUN_SUCCEEDED, RUN_CANCELED, DEPS_READY, NULL},
        {RUN_FAILED, RUN_FAILED, DEPS_SKIP, "upstream_failed"},
        {RUN_SUCCEEDED, RUN_SUCCEEDED, DEPS_SKIP, "upstream_succeeded"},
        {RUN_SKIPPED, RUN_FAILED, DEPS_SKIP, "upstream_skipped"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        dep_class_t cx = dep_classify(DEP_AFTEROK, cases[i].x);
        dep_class_t cy = dep_classify(DEP_AFTERNOTOK, cases[i].y);
        int ok = (cx == DEP_OK) + (cy == DEP_OK), fail = (cx == DEP_FAIL) + (cy == DEP_FAIL);
        deps_verdict_t v = deps_decide(RULE_ALL_SUCCESS, 2, ok, fail, 0, NULL);
        assert_int_equal(v, cases[i].want);
        if (v != DEPS_SKIP) continue;
        /* The store names the first edge that can never be met. */
        const char *reason = cx == DEP_FAIL ? dep_cond_skip_reason(DEP_AFTEROK, cases[i].x)
                                            : dep_cond_skip_reason(DEP_AFTERNOTOK, cases[i].y);
        assert_string_equal(reason, cases[i].reason);
    }
    /* Only one edge ended, met: the run keeps waiting. */
    assert_int_equal(deps_decide(RULE_ALL_SUCCESS, 2, 1, 0, 0, NULL), DEPS_WAIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule_names_round_trip),
        cmocka_unit_test(test_cond_names_round_trip),
        cmocka_unit_test(test_classify_every_ended_state),
        cmocka_unit_test(test_cond_skip_reasons),
        cmocka_unit_test(test_decide_matches_oracle),
        cmocka_unit_test(test_decide_never_takes_an_answer_back),
        cmocka_unit_test(test_decide_edges),
        cmocka_unit_test(test_diamond_under_each_rule),
        cmocka_unit_test(test_job_conditions_combine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
