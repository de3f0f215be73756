/*
 * Small helpers shared by the libFuzzer targets in tests/fuzz: turning the
 * fuzzer's byte buffer into a C string and failing loudly. A property that
 * does not hold is reported with abort(), which libFuzzer treats like a
 * crash: it prints the stack and saves the input as a reproducer.
 */
#ifndef SKED_TESTS_FUZZ_H
#define SKED_TESTS_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

/* Reports a broken property and aborts; never returns. */
__attribute__((format(printf, 1, 2), noreturn)) static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("\n*** sked fuzz property violated: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    abort();
}

/* A NUL-terminated copy of data[0..size) (embedded NULs end the string
 * early, as they would for any C caller). New; caller frees. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = xmalloc(size + 1);
    if (size) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
