/*
 * Unit tests for core/run: the state and outcome names of the API, and the
 * full transition matrix of the run lifecycle (every pair checked, so a
 * transition added or lost by accident fails here).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "core/run.h"

static void test_state_names(void **state)
{
    (void)state;
    static const char *const want[RUN_STATE_COUNT] = {
        "scheduled", "waiting", "pending", "running", "succeeded", "failed", "canceled", "skipped",
    };
    for (int i = 0; i < RUN_STATE_COUNT; i++) {
        assert_string_equal(run_state_name((run_state_t)i), want[i]);
        run_state_t s = RUN_STATE_COUNT;
        assert_int_equal(run_state_parse(want[i], &s), 0);
        assert_int_equal(s, i);
    }
    assert_null(run_state_name(RUN_STATE_COUNT));
    assert_null(run_state_name((run_state_t)-1));
    static const char *const bad[] = {"", "Scheduled", "queued", "done", "cancelled", "running "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        run_state_t s = RUN_PENDING;
        assert_int_equal(run_state_parse(bad[i], &s), SKED_EINVAL);
        assert_int_equal(s, RUN_PENDING);
    }
    run_state_t s;
    assert_int_equal(run_state_parse(NULL, &s), SKED_EINVAL);
}

static void test_terminal(void **state)
{
    (void)state;
    assert_false(run_state_terminal(RUN_SCHEDULED));
    assert_false(run_state_terminal(RUN_WAITING));
    assert_false(run_state_terminal(RUN_PENDING));
    assert_false(run_state_terminal(RUN_RUNNING));
    assert_true(run_state_terminal(RUN_SUCCEEDED));
    assert_true(run_state_terminal(RUN_FAILED));
    assert_true(run_state_terminal(RUN_CANCELED));
    assert_true(run_state_terminal(RUN_SKIPPED));
}

/* The whole matrix, spelled out: 1 = allowed. Rows are from, columns to, in
 * enum order (scheduled waiting pending running succeeded failed canceled
 * skipped). */
static const int matrix[RUN_STATE_COUNT][RUN_STATE_COUNT] = {
    /*              sch wai pen run suc fai can ski */
    /* scheduled */ {0, 1, 1, 1, 0, 0, 1, 1},
    /* waiting   */ {0, 0, 1, 0, 1, 1, 1, 1},
    /* pending   */ {0, 0, 0, 1, 0, 0, 1, 1},
    /* running   */ {1, 0, 0, 0, 1, 1, 1, 0},
    /* succeeded */ {0, 0, 0, 0, 0, 0, 0, 0},
    /* failed    */ {0, 0, 0, 0, 0, 0, 0, 0},
    /* canceled  */ {0, 0, 0, 0, 0, 0, 0, 0},
    /* skipped   */ {0, 0, 0, 0, 0, 0, 0, 0},
};

static void test_transition_matrix(void **state)
{
    (void)state;
    for (int from = 0; from < RUN_STATE_COUNT; from++) {
        for (int to = 0; to < RUN_STATE_COUNT; to++) {
            bool got = run_transition_ok((run_state_t)from, (run_state_t)to);
            if (got != (matrix[from][to] != 0))
                fail_msg("%s -> %s: got %s, want %s", run_state_name((run_state_t)from),
                         run_state_name((run_state_t)to), got ? "allowed" : "refused",
                         matrix[from][to] ? "allowed" : "refused");
        }
    }
}

/* The rules users rely on, stated one by one on top of the matrix. */
static void test_transition_rules(void **state)
{
    (void)state;
    for (int s = 0; s < RUN_STATE_COUNT; s++) {
        /* any non-terminal state can be canceled; terminal ones go nowhere */
        assert_int_equal(run_transition_ok((run_state_t)s, RUN_CANCELED),
                         !run_state_terminal((run_state_t)s));
        /* never to itself */
        assert_false(run_transition_ok((run_state_t)s, (run_state_t)s));
        if (run_state_terminal((run_state_t)s))
            for (int t = 0; t < RUN_STATE_COUNT; t++)
                assert_false(run_transition_ok((run_state_t)s, (run_state_t)t));
    }
    assert_false(run_transition_ok(RUN_PENDING, RUN_SCHEDULED));
    assert_true(run_transition_ok(RUN_RUNNING, RUN_SCHEDULED)); /* retry or lease lost */
    assert_true(run_transition_ok(RUN_SCHEDULED, RUN_RUNNING)); /* claim of a due run */
    assert_false(run_transition_ok(RUN_SCHEDULED, RUN_SUCCEEDED));
    assert_false(run_transition_ok(RUN_PENDING, RUN_FAILED));
    assert_false(run_transition_ok(RUN_RUNNING, RUN_SKIPPED));
    /* out of range */
    assert_false(run_transition_ok(RUN_STATE_COUNT, RUN_PENDING));
    assert_false(run_transition_ok(RUN_SCHEDULED, RUN_STATE_COUNT));
    assert_false(run_transition_ok((run_state_t)-1, RUN_CANCELED));
}

static void test_outcomes(void **state)
{
    (void)state;
    static const char *const want[ATTEMPT_OUTCOME_COUNT] = {"succeeded", "failed", "timeout",
                                                            "canceled",  "lost",   "not_started"};
    for (int i = 0; i < ATTEMPT_OUTCOME_COUNT; i++) {
        assert_string_equal(attempt_outcome_name((attempt_outcome_t)i), want[i]);
        attempt_outcome_t o = ATTEMPT_OUTCOME_COUNT;
        assert_int_equal(attempt_outcome_parse(want[i], &o), 0);
        assert_int_equal(o, i);
    }
    assert_null(attempt_outcome_name(ATTEMPT_OUTCOME_COUNT));
    attempt_outcome_t o = ATTEMPT_LOST;
    assert_int_equal(attempt_outcome_parse("skipped", &o), SKED_EINVAL);
    assert_int_equal(attempt_outcome_parse("", &o), SKED_EINVAL);
    assert_int_equal(attempt_outcome_parse("TIMEOUT", &o), SKED_EINVAL);
    assert_int_equal(attempt_outcome_parse(NULL, &o), SKED_EINVAL);
    assert_int_equal(o, ATTEMPT_LOST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),       cmocka_unit_test(test_terminal),
        cmocka_unit_test(test_transition_matrix), cmocka_unit_test(test_transition_rules),
        cmocka_unit_test(test_outcomes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
