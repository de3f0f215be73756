/*
 * The min-heap of heap.h: an array where v[i] is no greater than its
 * children v[2i+1] and v[2i+2]. Every move of a node goes through set(),
 * which writes the node's position back into it, so the positions can
 * never go stale.
 */
#include "common/heap.h"
#include "common/xalloc.h"

#include <assert.h>
#include <stdlib.h>

static void set(heap_t *h, size_t i, heap_node_t *node)
{
    h->v[i] = node;
    node->pos = i + 1;
}

/* Moves the node at i towards the root while its parent's key is greater. */
static void sift_up(heap_t *h, size_t i)
{
    heap_node_t *node = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->v[parent]->key <= node->key) break;
        set(h, i, h->v[parent]);
        i = parent;
    }
    set(h, i, node);
}

/* Moves the node at i towards the leaves while a child's key is less. */
static void sift_down(heap_t *h, size_t i)
{
    heap_node_t *node = h->v[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, least = i;
        int64_t k = node->key;
        if (l < h->n && h->v[l]->key < k) least = l, k = h->v[l]->key;
        if (r < h->n && h->v[r]->key < k) least = r;
        if (least == i) break;
        set(h, i, h->v[least]);
        i = least;
    }
    set(h, i, node);
}

/* Puts the node at i where its key belongs, up or down. */
static void fix(heap_t *h, size_t i)
{
    if (i > 0 && h->v[(i - 1) / 2]->key > h->v[i]->key)
        sift_up(h, i);
    else
        sift_down(h, i);
}

void heap_push(heap_t *h, heap_node_t *node, int64_t key)
{
    assert(!node->pos);
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 64;
        h->v = xrealloc(h->v, h->cap * sizeof *h->v);
    }
    node->key = key;
    set(h, h->n++, node);
    sift_up(h, h->n - 1);
}

heap_node_t *heap_min(const heap_t *h)
{
    return h->n ? h->v[0] : NULL;
}

heap_node_t *heap_pop(heap_t *h)
{
    heap_node_t *top = heap_min(h);
    if (top) heap_remove(h, top);
    return top;
}

void heap_remove(heap_t *h, heap_node_t *node)
{
    if (!node->pos) return;
    size_t i = node->pos - 1;
    assert(i < h->n && h->v[i] == node);
    node->pos = 0;
    heap_node_t *last = h->v[--h->n];
    if (last == node) return;
    /* The last node fills the hole; it may belong above or below it. */
    set(h, i, last);
    fix(h, i);
}

void heap_update(heap_t *h, heap_node_t *node, int64_t key)
{
    assert(node->pos && node->pos <= h->n && h->v[node->pos - 1] == node);
    node->key = key;
    fix(h, node->pos - 1);
}

bool heap_contains(const heap_node_t *node)
{
    return node->pos != 0;
}

size_t heap_len(const heap_t *h)
{
    return h->n;
}

heap_node_t *heap_at(const heap_t *h, size_t i)
{
    assert(i < h->n);
    return h->v[i];
}

void heap_clear(heap_t *h)
{
    for (size_t i = 0; i < h->n; i++)
        h->v[i]->pos = 0;
    h->n = 0;
}

void heap_free(heap_t *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
