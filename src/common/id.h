/*
 * Opaque, time-sortable identifiers: a short type prefix, an underscore and
 * 26 Crockford base32 characters (48-bit ms timestamp, 80 random bits from
 * libsodium), as ULIDs are. "job_01JD7...", "run_...", "wrk_...", "sch_...".
 */
#ifndef SKED_COMMON_ID_H
#define SKED_COMMON_ID_H

#include <stdint.h>

#define SKED_ID_LEN 40 /* buffer size for any id, NUL included */

/* Writes a new id with the given prefix ("job") into out[SKED_ID_LEN]. Thread-safe. */
void id_new(const char *prefix, int64_t now_ms, char out[SKED_ID_LEN]);
/* 1 if s looks like an id (prefix_ + 26 base32 chars), else 0. */
int id_valid(const char *s);

#endif
