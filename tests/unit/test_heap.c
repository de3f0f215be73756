/*
 * Unit tests for common/heap: the order entries come out in, removal from
 * anywhere, re-keying both ways, and a long run of random operations
 * checked against a plain array that finds its minimum by scanning. After
 * every step the heap property and every node's recorded position are
 * checked against the array itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/heap.h"

#include <stdlib.h>

struct item {
    int id;
    heap_node_t node;
};

/* The heap property, and each node's position naming its own slot. */
static void check(const heap_t *h)
{
    for (size_t i = 0; i < heap_len(h); i++) {
        const heap_node_t *n = heap_at(h, i);
        assert_int_equal(n->pos, i + 1);
        if (i > 0) assert_true(heap_at(h, (i - 1) / 2)->key <= n->key);
    }
}

/* Pushes items 0..n-1 of it, item i with key keys[i] (i * 10 when keys is
 * NULL). */
static void push_items(heap_t *h, struct item *it, int n, const int64_t *keys)
{
    for (int i = 0; i < n; i++) {
        it[i] = (struct item){.id = i, .node = HEAP_NODE_INIT};
        assert_false(heap_contains(&it[i].node));
        heap_push(h, &it[i].node, keys ? keys[i] : (int64_t)i * 10);
        assert_true(heap_contains(&it[i].node));
        check(h);
    }
}

static int pop_id(heap_t *h)
{
    heap_node_t *n = heap_pop(h);
    assert_non_null(n);
    assert_false(heap_contains(n));
    check(h);
    return HEAP_ENTRY(n, struct item, node)->id;
}

static void test_empty(void **state)
{
    (void)state;
    heap_t h = HEAP_INIT;
    assert_null(heap_min(&h));
    assert_null(heap_pop(&h));
    assert_int_equal(heap_len(&h), 0);
    heap_free(&h);
    heap_free(&h);
}

static void test_push_pop_order(void **state)
{
    (void)state;
    static const int64_t keys[] = {50, 10, 40, 30, 20, 60, 0, -5, 45, 15};
    enum { N = sizeof keys / sizeof keys[0] };
    struct item it[N];
    heap_t h = HEAP_INIT;
    push_items(&h, it, N, keys);
    assert_int_equal(heap_len(&h), N);
    assert_ptr_equal(heap_min(&h), &it[7].node); /* -5 */
    static const int want[] = {7, 6, 1, 9, 4, 3, 2, 8, 0, 5};
    for (int i = 0; i < N; i++)
        assert_int_equal(pop_id(&h), want[i]);
    assert_null(heap_pop(&h));
    heap_free(&h);
}

static void test_equal_keys(void **state)
{
    (void)state;
    static const int64_t keys[] = {7, 7, 1, 7, 7};
    struct item it[5];
    heap_t h = HEAP_INIT;
    push_items(&h, it, 5, keys);
    assert_int_equal(pop_id(&h), 2);
    int seen = 0;
    for (int i = 0; i < 4; i++)
        seen |= 1 << pop_id(&h);
    assert_int_equal(seen, 0x1b); /* 0, 1, 3 and 4, in some order */
    heap_free(&h);
}

static void test_remove_from_middle(void **state)
{
    (void)state;
    struct item it[20];
    heap_t h = HEAP_INIT;
    push_items(&h, it, 20, NULL);
    /* A leaf, an inner node, the root, and the last slot. */
    heap_remove(&h, &it[13].node);
    check(&h);
    heap_remove(&h, &it[4].node);
    check(&h);
    heap_remove(&h, &it[0].node);
    check(&h);
    heap_remove(&h, heap_at(&h, heap_len(&h) - 1));
    check(&h);
    assert_int_equal(heap_len(&h), 16);
    assert_false(heap_contains(&it[13].node));
    /* Removing a node in no heap changes nothing. */
    heap_remove(&h, &it[13].node);
    assert_int_equal(heap_len(&h), 16);

    int prev = -1, n = 0;
    while (heap_len(&h)) {
        int id = pop_id(&h);
        assert_true(id != 13 && id != 4 && id != 0);
        assert_true(id > prev);
        prev = id;
        n++;
    }
    assert_int_equal(n, 16);
    heap_free(&h);
}

/* The last node moved into the hole may have to go up, not down: here it
 * lands in another subtree under a larger key. */
static void test_remove_moves_last_up(void **state)
{
    (void)state;
    static const int64_t keys[] = {0, 100, 1, 101, 102, 2, 3};
    struct item it[7];
    heap_t h = HEAP_INIT;
    push_items(&h, it, 7, keys);
    heap_remove(&h, &it[3].node); /* 101, a child of 100: 3 takes its place */
    check(&h);
    assert_int_equal(heap_at(&h, 1)->key, 3);
    heap_free(&h);
}

static void test_update_key(void **state)
{
    (void)state;
    struct item it[10];
    heap_t h = HEAP_INIT;
    push_items(&h, it, 10, NULL);
    heap_update(&h, &it[9].node, -1); /* to the front */
    check(&h);
    assert_ptr_equal(heap_min(&h), &it[9].node);
    heap_update(&h, &it[9].node, 1000); /* to the back */
    check(&h);
    assert_ptr_equal(heap_min(&h), &it[0].node);
    heap_update(&h, &it[0].node, 55); /* the root, down to the middle */
    check(&h);
    heap_update(&h, &it[5].node, 50); /* unchanged */
    check(&h);
    static const int want[] = {1, 2, 3, 4, 5, 0, 6, 7, 8, 9};
    for (int i = 0; i < 10; i++)
        assert_int_equal(pop_id(&h), want[i]);
    heap_free(&h);
}

static void test_clear(void **state)
{
    (void)state;
    static const int64_t keys[] = {8, 7, 6, 5, 4, 3, 2, 1};
    struct item it[8];
    heap_t h = HEAP_INIT;
    push_items(&h, it, 8, keys);
    heap_clear(&h);
    assert_int_equal(heap_len(&h), 0);
    assert_null(heap_min(&h));
    for (int i = 0; i < 8; i++)
        assert_false(heap_contains(&it[i].node));
    /* Every node can go straight back in. */
    for (int i = 0; i < 8; i++)
        heap_push(&h, &it[i].node, i);
    check(&h);
    assert_int_equal(pop_id(&h), 0);
    heap_free(&h);
}

/* A deterministic generator (xorshift64), so a failure replays. */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Random pushes, pops, removals and updates over a pool of items; the
 * reference is each item's key and whether it is in, and the minimum is
 * found by scanning. Keys come from a small range so ties are common. */
static void test_random_against_reference(void **state)
{
    (void)state;
    enum { POOL = 300, STEPS = 40000 };
    static struct item it[POOL];
    static int64_t ref_key[POOL];
    static bool ref_in[POOL];
    size_t ref_n = 0;
    heap_t h = HEAP_INIT;
    for (int i = 0; i < POOL; i++)
        it[i] = (struct item){.id = i, .node = HEAP_NODE_INIT};

    for (int step = 0; step < STEPS; step++) {
        int i = (int)(next_rand() % POOL);
        int64_t key = (int64_t)(next_rand() % 1000) - 500;
        switch (next_rand() % 5) {
        case 0:
        case 1: /* push, or re-key when already in */
            if (ref_in[i]) {
                heap_update(&h, &it[i].node, key);
            } else {
                heap_push(&h, &it[i].node, key);
                ref_in[i] = true;
                ref_n++;
            }
            ref_key[i] = key;
            break;
        case 2: { /* pop: some item with the least key */
            heap_node_t *n = heap_pop(&h);
            if (!ref_n) {
                assert_null(n);
                break;
            }
            assert_non_null(n);
            int id = HEAP_ENTRY(n, struct item, node)->id;
            assert_true(ref_in[id]);
            for (int j = 0; j < POOL; j++)
                if (ref_in[j]) assert_true(ref_key[id] <= ref_key[j]);
            ref_in[id] = false;
            ref_n--;
            break;
        }
        case 3: /* remove, in the heap or not */
            heap_remove(&h, &it[i].node);
            if (ref_in[i]) ref_n--;
            ref_in[i] = false;
            break;
        default: /* clear, rarely */
            if (next_rand() % 200) break;
            heap_clear(&h);
            for (int j = 0; j < POOL; j++)
                ref_in[j] = false;
            ref_n = 0;
            break;
        }
        assert_int_equal(heap_len(&h), ref_n);
        for (int j = 0; j < POOL; j++) {
            assert_int_equal(heap_contains(&it[j].node), ref_in[j]);
            if (ref_in[j]) assert_int_equal(it[j].node.key, ref_key[j]);
        }
        check(&h);
        if (ref_n) {
            int64_t least = INT64_MAX;
            for (int j = 0; j < POOL; j++)
                if (ref_in[j] && ref_key[j] < least) least = ref_key[j];
            assert_int_equal(heap_min(&h)->key, least);
        }
    }
    /* Drain: keys come out in order. */
    int64_t prev = INT64_MIN;
    while (heap_len(&h)) {
        heap_node_t *n = heap_pop(&h);
        assert_true(n->key >= prev);
        prev = n->key;
    }
    heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_push_pop_order),
        cmocka_unit_test(test_equal_keys),
        cmocka_unit_test(test_remove_from_middle),
        cmocka_unit_test(test_remove_moves_last_up),
        cmocka_unit_test(test_update_key),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
