/*
 * A growable byte buffer, always NUL-terminated (like redis's sds, but a
 * plain struct). Functions may reallocate b->data.
 */
#ifndef SKED_COMMON_BUF_H
#define SKED_COMMON_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data; /* owned; NUL-terminated; NULL until first append */
    size_t len; /* bytes used, NUL excluded */
    size_t cap; /* bytes allocated */
} buf_t;

#define BUF_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void buf_append(buf_t *b, const void *p, size_t n);
void buf_puts(buf_t *b, const char *s);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Steals the buffer's data (caller frees; "" if empty) and resets b. */
char *buf_steal(buf_t *b);
void buf_reset(buf_t *b); /* len = 0, keeps memory */
/* Drops the first n bytes (at most len): what a reader has consumed. */
void buf_consume(buf_t *b, size_t n);
void buf_free(buf_t *b); /* frees data; b is reusable */

#endif
