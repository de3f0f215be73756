/*
 * Token buckets (ratelimit.h): a chained hash table of buckets under one
 * mutex. A bucket stores its level as of its last use and is refilled
 * lazily on the next one, so an idle caller costs nothing but its entry.
 *
 * Entries are dropped by a sweep that runs when the table has doubled since
 * the last sweep: any bucket that would be full by now is indistinguishable
 * from a fresh one and can go. A flood of distinct keys (addresses) thus
 * costs memory only for those seen within one refill period, and each
 * sweep is paid for by the insertions that triggered it.
 */
#include "server/ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

#define KEY_MAX     64
#define NBUCKETS    1024 /* hash chains; fixed, the sweep keeps chains short */
#define SWEEP_FLOOR 1024 /* never sweep below this many entries */

struct entry {
    struct entry *next;
    char key[KEY_MAX];
    double level;    /* requests available as of last_ns */
    int64_t last_ns; /* monotonic */
};

struct ratelimit {
    pthread_mutex_t mu;
    double rate;  /* per second */
    double burst; /* bucket size */
    struct entry *chains[NBUCKETS];
    size_t n;        /* entries */
    size_t sweep_at; /* sweep when n reaches this */
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

ratelimit_t *ratelimit_new(double rate_per_s, double burst)
{
    ratelimit_t *rl = xcalloc(1, sizeof *rl);
    pthread_mutex_init(&rl->mu, NULL);
    rl->rate = rate_per_s > 0 ? rate_per_s : 1;
    rl->burst = burst >= 1 ? burst : 1;
    rl->sweep_at = SWEEP_FLOOR;
    return rl;
}

void ratelimit_free(ratelimit_t *rl)
{
    if (!rl) return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct entry *e = rl->chains[i];
        while (e) {
            struct entry *next = e->next;
            free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&rl->mu);
    free(rl);
}

/* The level of e at now, refilled but not above the burst. */
static double level_at(const ratelimit_t *rl, const struct entry *e, int64_t now_ns)
{
    double dt = now_ns > e->last_ns ? (double)(now_ns - e->last_ns) / 1e9 : 0;
    double l = e->level + dt * rl->rate;
    return l < rl->burst ? l : rl->burst;
}

/* Drops every bucket that is full at now. Caller holds mu. */
static void sweep(ratelimit_t *rl, int64_t now_ns)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct entry **pp = &rl->chains[i];
        while (*pp) {
            struct entry *e = *pp;
            if (level_at(rl, e, now_ns) >= rl->burst) {
                *pp = e->next;
                free(e);
                rl->n--;
            } else {
                pp = &e->next;
            }
        }
    }
    rl->sweep_at = rl->n * 2 > SWEEP_FLOOR ? rl->n * 2 : SWEEP_FLOOR;
}

/* The entry of key k in slot, or NULL. Caller holds mu. */
static struct entry *find(ratelimit_t *rl, uint32_t slot, const char *k)
{
    struct entry *e = rl->chains[slot];
    while (e && strcmp(e->key, k) != 0)
        e = e->next;
    return e;
}

static int64_t retry_after_ns(const ratelimit_t *rl, double level)
{
    return (int64_t)((1 - level) / rl->rate * 1e9) + 1;
}

bool ratelimit_take(ratelimit_t *rl, const char *key, int64_t now_ns, int64_t *retry_ns)
{
    char k[KEY_MAX];
    bool ok;
    snprintf(k, sizeof k, "%s", key ? key : "");
    uint32_t slot = hash(k) % NBUCKETS;

    pthread_mutex_lock(&rl->mu);
    struct entry *e = find(rl, slot, k);
    if (!e) {
        if (rl->n >= rl->sweep_at) sweep(rl, now_ns);
        e = xcalloc(1, sizeof *e);
        memcpy(e->key, k, sizeof k);
        e->level = rl->burst;
        e->last_ns = now_ns;
        e->next = rl->chains[slot];
        rl->chains[slot] = e;
        rl->n++;
    }
    double l = level_at(rl, e, now_ns);
    /* A clock that stepped back must not drain or overfill: keep the later
     * instant as the reference. */
    if (now_ns > e->last_ns) e->last_ns = now_ns;
    if (l >= 1) {
        e->level = l - 1;
        ok = true;
    } else {
        e->level = l;
        ok = false;
        if (retry_ns) *retry_ns = retry_after_ns(rl, l);
    }
    pthread_mutex_unlock(&rl->mu);
    return ok;
}

size_t ratelimit_size(ratelimit_t *rl)
{
    pthread_mutex_lock(&rl->mu);
    size_t n = rl->n;
    pthread_mutex_unlock(&rl->mu);
    return n;
}
