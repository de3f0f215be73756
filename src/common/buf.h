/*
 * A growable byte buffer, always NUL-terminated (like redis's sds, but a
 * plain struct). Functions may reallocate b->data.
 */
#ifndef SKED_COMMON_BUF_H
#define SKED_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
void buf_putc(buf_t *b, char c);
/* n in decimal. */
void buf_put_i64(buf_t *b, int64_t n);
/* s as a JSON string: quoted, with '"', '\\' and the control characters
 * escaped exactly as jansson's json_dumps writes them (UTF-8 is left as it
 * is), so that text written with it equals json_dumps(..., JSON_COMPACT) of
 * the same value. s must be valid UTF-8 (all text sked got through jansson
 * is). A third of the CPU of a batch submit went to building jansson trees
 * only to dump them; this is what lets the hot documents be written
 * directly (core/jobspec.c). NULL is written as null. */
void buf_json_str(buf_t *b, const char *s);
/* An object member's key: "key": (with a comma before it unless first).
 * The key is written as given: keys here are constants, nothing to
 * escape. */
void buf_json_key(buf_t *b, const char *key, bool first);
/* Steals the buffer's data (caller frees; "" if empty) and resets b. */
char *buf_steal(buf_t *b);
void buf_reset(buf_t *b); /* len = 0, keeps memory */
/* Drops the first n bytes (at most len): what a reader has consumed. */
void buf_consume(buf_t *b, size_t n);
void buf_free(buf_t *b); /* frees data; b is reusable */

#endif
