/*
 * A store test's look at the event log: how many events of one type one
 * run has, read through store_events_read to the log's final end. Shared
 * by the store test programs (test_graph.c, test_store_pg.c); include it
 * after cmocka.h and store/store.h.
 */
#ifndef SKED_TESTS_STORE_RUN_EVENTS_H
#define SKED_TESTS_STORE_RUN_EVENTS_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The number of events of type `type` about run run_id. Reads the whole
 * log (bounded), waiting (bounded) while newer events are not final yet
 * (PostgreSQL). */
static int run_events(store_t *st, const char *run_id, const char *type)
{
    int64_t after = 0;
    int count = 0;
    for (int page = 0; page < 100000; page++) {
        store_event_t *v = NULL;
        size_t n = 0;
        bool pending = false;
        assert_int_equal(store_events_read(st, after, 1000, &v, &n, &pending), 0);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(v[i].run_id, run_id) == 0 && strcmp(v[i].type, type) == 0) count++;
            after = v[i].id;
            store_event_clear(&v[i]);
        }
        free(v);
        if (n == 0 && !pending) return count;
        if (n == 0) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
    }
    fail_msg("the event log did not settle");
    return -1;
}

#endif
