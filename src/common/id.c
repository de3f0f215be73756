/* ULID-style ids; see id.h. */
#include "common/id.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void id_new(const char *prefix, int64_t now_ms, char out[SKED_ID_LEN])
{
    unsigned char rnd[10];
    randombytes_buf(rnd, sizeof rnd);
    char body[27];
    uint64_t t = (uint64_t)now_ms;
    for (int i = 9; i >= 0; i--) {
        body[i] = b32[t & 31];
        t >>= 5;
    }
    /* 80 random bits -> 16 chars */
    uint64_t hi = 0, lo = 0;
    for (int i = 0; i < 5; i++)
        hi = (hi << 8) | rnd[i];
    for (int i = 5; i < 10; i++)
        lo = (lo << 8) | rnd[i];
    for (int i = 17; i >= 10; i--) {
        body[i] = b32[hi & 31];
        hi >>= 5;
    }
    for (int i = 25; i >= 18; i--) {
        body[i] = b32[lo & 31];
        lo >>= 5;
    }
    body[26] = '\0';
    snprintf(out, SKED_ID_LEN, "%s_%s", prefix, body);
}

int id_valid(const char *s)
{
    const char *us = strchr(s, '_');
    if (!us || us == s || us - s > 8) return 0;
    for (const char *p = s; p < us; p++)
        if (*p < 'a' || *p > 'z') return 0;
    const char *b = us + 1;
    if (strlen(b) != 26) return 0;
    for (; *b; b++)
        if (!strchr(b32, *b)) return 0;
    return 1;
}
