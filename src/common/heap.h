/*
 * A binary min-heap of intrusive nodes keyed by int64_t (in sked, a
 * deadline in monotonic ns), in the manner of libuv's timer heap. The
 * caller embeds a heap_node_t in its own struct and gets the struct back
 * from a node with HEAP_ENTRY. Each node records where it sits in the
 * heap, so removing or re-keying an entry costs O(log n) with no search:
 * an entry can leave before its turn, or move when its deadline does.
 *
 * The heap owns its array, never the nodes: a node must stay valid while it
 * is in a heap, and is in at most one heap at a time. Entries with equal
 * keys come out in no particular order. Not thread-safe: the caller locks.
 */
#ifndef SKED_COMMON_HEAP_H
#define SKED_COMMON_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct heap_node {
    int64_t key; /* the ordering key; read freely, change only with heap_update */
    size_t pos;  /* the heap's: 1 + the index in its array; 0 = in no heap */
} heap_node_t;

/* A zeroed node (calloc, = {0}) is in no heap, ready for heap_push. */
#define HEAP_NODE_INIT                                                                             \
    {                                                                                              \
        0, 0                                                                                       \
    }

typedef struct heap {
    heap_node_t **v; /* owned array: v[0] has the least key; n of cap slots used */
    size_t n, cap;
} heap_t;

#define HEAP_INIT                                                                                  \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* The struct of type `type` whose member `member` is the node at `node`. */
#define HEAP_ENTRY(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

/* Adds node (in no heap) with the given key. May reallocate h's array;
 * aborts on out of memory (xalloc). */
void heap_push(heap_t *h, heap_node_t *node, int64_t key);

/* The node with the least key, left in place; NULL when h is empty. */
heap_node_t *heap_min(const heap_t *h);

/* Takes out the node with the least key and returns it (now in no heap);
 * NULL when h is empty. */
heap_node_t *heap_pop(heap_t *h);

/* Takes node out of h, wherever it sits. node must be in h; a node in no
 * heap is left alone. */
void heap_remove(heap_t *h, heap_node_t *node);

/* Gives node (in h) a new key and moves it to its place. */
void heap_update(heap_t *h, heap_node_t *node, int64_t key);

/* Whether node is in a heap. */
bool heap_contains(const heap_node_t *node);

/* The number of nodes in h, and the node at index i < heap_len(h), in no
 * particular order: for visiting every node without taking them out. */
size_t heap_len(const heap_t *h);
heap_node_t *heap_at(const heap_t *h, size_t i);

/* Takes every node out at once (each is then in no heap); keeps the
 * array for reuse. */
void heap_clear(heap_t *h);

/* Frees the array; the nodes are the caller's and are not touched. h is
 * empty and reusable afterwards. heap_free of an empty heap is a no-op. */
void heap_free(heap_t *h);

#endif
