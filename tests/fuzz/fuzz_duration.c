/*
 * libFuzzer target for durations (src/core/duration.h), the strings every
 * timeout, retry delay, interval and jitter is written in. Two views of
 * each input:
 *  - as text: when duration_parse accepts it, the value is within
 *    [0, DURATION_MAX_MS] and its canonical form (duration_format) parses
 *    back to the same value and formats to the same text again;
 *  - as a number (its first 8 bytes): formatting any int64 into buffers of
 *    any size stays inside the buffer and NUL-terminated, a short buffer
 *    gets a prefix of the full text, and every value in range survives
 *    format -> parse unchanged.
 */
#include "common/error.h"
#include "core/duration.h"
#include "fuzz.h"

#include <inttypes.h>

#define TEXT_MAX 64 /* "1043w..." is ~30 bytes; any int64 fits in far less than this */

static void check_text(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    int64_t v = -1;
    int rc = duration_parse(s, &v);
    if (rc == 0) {
        if (v < 0 || v > DURATION_MAX_MS)
            fuzz_fail("'%s' parsed to %" PRId64 ", outside [0, max]", s, v);
        char canon[TEXT_MAX], again[TEXT_MAX];
        duration_format(v, canon, sizeof canon);
        int64_t v2 = -1;
        if (duration_parse(canon, &v2) != 0)
            fuzz_fail("'%s' = %" PRId64 " ms formats as '%s', which does not parse", s, v, canon);
        if (v2 != v)
            fuzz_fail("'%s' = %" PRId64 " ms but its canonical '%s' = %" PRId64 " ms", s, v, canon,
                      v2);
        duration_format(v2, again, sizeof again);
        if (strcmp(canon, again) != 0)
            fuzz_fail("canonical form not stable: '%s' then '%s'", canon, again);
    } else if (rc != SKED_EINVAL) {
        fuzz_fail("duration_parse('%s') returned %d, not 0 or SKED_EINVAL", s, rc);
    }
    free(s);
}

static void check_number(const uint8_t *data, size_t size)
{
    int64_t v;
    if (size < sizeof v) return;
    memcpy(&v, data, sizeof v);

    char full[TEXT_MAX];
    duration_format(v, full, sizeof full);
    size_t len = strnlen(full, sizeof full);
    if (len == 0 || len == sizeof full)
        fuzz_fail("format(%" PRId64 ") is empty or unterminated", v);

    /* Every buffer size up to the full length: truncation, never overflow.
     * Heap buffers of the exact size let ASan see a one-byte overrun. */
    for (size_t n = 1; n <= len + 1; n++) {
        char *small = xmalloc(n);
        duration_format(v, small, n);
        size_t sl = strnlen(small, n);
        if (sl == n) fuzz_fail("format(%" PRId64 ") into %zu bytes is unterminated", v, n);
        if (strncmp(small, full, sl) != 0)
            fuzz_fail("format(%" PRId64 ") into %zu bytes is '%s', not a prefix of '%s'", v, n,
                      small, full);
        free(small);
    }
    duration_format(v, NULL, 0); /* documented as harmless */

    int64_t in_range = v < 0 ? -(v + 1) : v; /* fold negatives without overflow */
    in_range %= DURATION_MAX_MS + 1;
    char text[TEXT_MAX];
    duration_format(in_range, text, sizeof text);
    int64_t back = -1;
    if (duration_parse(text, &back) != 0 || back != in_range)
        fuzz_fail("%" PRId64 " ms formats as '%s', which parses to %" PRId64, in_range, text, back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    check_text(data, size);
    check_number(data, size);
    return 0;
}
