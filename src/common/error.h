/*
 * The one error table of sked. Functions return 0 on success or a negative
 * SKED_E* code; errno values map as -errno and domain codes join the same
 * table. The X-macro below generates the enum, sked_strerror(), the code's
 * short name and the HTTP status each code answers with, so the three can
 * never drift apart (the shape of libuv's UV_ERRNO_MAP).
 */
#ifndef SKED_COMMON_ERROR_H
#define SKED_COMMON_ERROR_H

#include <errno.h>

/* X(name, value, http_status, message) */
#define SKED_ERRNO_MAP(X)                                                                          \
    X(EINVAL, -EINVAL, 400, "invalid argument")                                                    \
    X(ENOMEM, -ENOMEM, 500, "out of memory")                                                       \
    X(EIO, -EIO, 500, "input/output error")                                                        \
    X(EEXIST, -EEXIST, 409, "already exists")                                                      \
    X(ENOTFOUND, -1001, 404, "not found")                                                          \
    X(ECONFLICT, -1002, 409, "conflict with the current state")                                    \
    X(EPRECOND, -1003, 412, "version does not match If-Match")                                     \
    X(ESTALE, -1004, 409, "stale fencing token")                                                   \
    X(EUNAUTH, -1005, 401, "missing or invalid bearer token")                                      \
    X(EFORBID, -1006, 403, "not allowed for this token")                                           \
    X(ETOOBIG, -1007, 413, "too large")                                                            \
    X(ESTORE, -1008, 503, "store unavailable")                                                     \
    X(EINTERNAL, -1009, 500, "internal error")                                                     \
    X(EMETHOD, -1010, 405, "method not allowed")                                                   \
    X(ESCHEMA, -1011, 500, "store schema is newer than this binary")                               \
    X(EBUSY, -1012, 503, "busy, try again")                                                        \
    X(ENOSPC, -ENOSPC, 507, "the store's disk is full")                                            \
    X(ELIMIT, -1013, 429, "too many requests, try again later")

enum sked_errno {
#define SKED_X(name, value, status, msg) SKED_##name = (value),
    SKED_ERRNO_MAP(SKED_X)
#undef SKED_X
};

/* Message for an error code; static storage, never NULL. */
const char *sked_strerror(int err);
/* Short name ("ENOTFOUND"); static storage, never NULL. */
const char *sked_errname(int err);
/* HTTP status an API answer with this error uses (500 for unknown codes). */
int sked_http_status(int err);

#endif
