/*
 * sked's version, as GET /metrics reports it (sked_build_info). One place,
 * so a release changes one line.
 */
#ifndef SKED_COMMON_VERSION_H
#define SKED_COMMON_VERSION_H

#define SKED_VERSION "0.1.0"

#endif
