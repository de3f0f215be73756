/*
 * Durations as people write them: "90s", "1h30m", "250ms", "2d", "1w".
 * Units: ms, s, m, h, d (24h), w (7d); components in descending order, each
 * once. A bare "0" is allowed. Pure; no clock.
 */
#ifndef SKED_CORE_DURATION_H
#define SKED_CORE_DURATION_H

#include <stddef.h>
#include <stdint.h>

#define DURATION_MAX_MS ((int64_t)366 * 10 * 86400 * 1000) /* ten years: anything more is absurd   \
                                                            */

/* Parses s into *out_ms. Returns 0, or SKED_EINVAL for empty, negative,
 * malformed, or > DURATION_MAX_MS input. */
int duration_parse(const char *s, int64_t *out_ms);
/* Formats ms canonically ("1h30m", "250ms", "0s") into out. */
void duration_format(int64_t ms, char *out, size_t outlen);

#endif
