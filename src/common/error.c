/* The error table's generated lookups; see error.h. */
#include "common/error.h"

#include <string.h>

const char *sked_strerror(int err)
{
    switch (err) {
#define SKED_X(name, value, status, msg)                                                           \
    case value:                                                                                    \
        return msg;
        SKED_ERRNO_MAP(SKED_X)
#undef SKED_X
    default:
        return err < 0 ? strerror(-err) : "success";
    }
}

const char *sked_errname(int err)
{
    switch (err) {
#define SKED_X(name, value, status, msg)                                                           \
    case value:                                                                                    \
        return #name;
        SKED_ERRNO_MAP(SKED_X)
#undef SKED_X
    default:
        return err < 0 ? "EUNKNOWN" : "OK";
    }
}

int sked_http_status(int err)
{
    switch (err) {
#define SKED_X(name, value, status, msg)                                                           \
    case value:                                                                                    \
        return status;
        SKED_ERRNO_MAP(SKED_X)
#undef SKED_X
    default:
        return err < 0 ? 500 : 200;
    }
}
