/*
 * Allocation that never returns NULL: on failure it logs and aborts, as
 * redis's zmalloc and slurm's xmalloc do. Out of memory is not a condition
 * sked tries to survive; every other failure is.
 */
#ifndef SKED_COMMON_XALLOC_H
#define SKED_COMMON_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);                 /* new; caller frees with free() */
void *xcalloc(size_t nmemb, size_t n);   /* new, zeroed; caller frees */
void *xrealloc(void *p, size_t n);       /* may move p */
char *xstrdup(const char *s);            /* new; xstrdup(NULL) == NULL */
char *xstrndup(const char *s, size_t n); /* new; at most n bytes plus NUL */
/* new; printf into a fresh string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees and clears a pointer variable. */
#define FREE_NULL(p)                                                                               \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

#endif
