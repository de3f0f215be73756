/*
 * The built-in job type "http": one HTTP request per attempt, made with
 * libcurl, as a plugin compiled into sked. It implements the same ABI as
 * external plugins (include/sked/plugin.h) and runs in a plugin host like
 * them (`sked plugin-host`), so a hung server or a crash costs only the
 * attempts of that host.
 *
 * The config is core/httpspec.h's. An attempt logs one line per request to
 * stdout ("GET https://x/y -> 200 (12 ms)", redirects each on their own
 * line), then the response body (at most config.max_response bytes), and
 * sets the attempt's result:
 *
 *   {"status": 200, "headers": {"content-type": "..."}, "body": "...",
 *    "truncated": false, "url": "https://x/y", "redirects": 0, "time_ms": 12}
 *
 * with "body_base64" instead of "body" when the body is not UTF-8 text.
 * Header names are lower-case; repeated ones are joined with ", ". The
 * body in the result is cut further (and "truncated" set) when the whole
 * result would not fit the worker's --result-max. URLs are shown without
 * their user:password part. Request header values (secret or not) are
 * never written anywhere.
 *
 * An attempt fails with "HTTP 503 (expected 2xx)" when the final status is
 * not one of config.expect, "timeout" when config.timeout passes first,
 * "canceled" when the host stops it (the job's own timeout, a cancel: the
 * worker then reports its own cause; the request gives up by itself only a
 * second after the job's deadline), or "http: ..." with libcurl's reason
 * otherwise.
 *
 * SSRF guard: every address the request connects to, redirects included,
 * is checked after name resolution, just before the connect. Loopback,
 * link-local (cloud metadata included), private, shared (CGNAT), this
 * network, multicast, broadcast, reserved and unspecified addresses, and
 * the IPv6 forms embedding such an IPv4 address, are refused unless an
 * --http-allow entry holds them:
 *   "http: refused to connect to 127.0.0.1:8080 (loopback; allow it with
 *    --http-allow)".
 * Only http and https are spoken, redirects included, and no proxy is
 * taken from the environment.
 */
#ifndef SKED_WORKER_HTTP_JOB_H
#define SKED_WORKER_HTTP_JOB_H

#include <sked/plugin.h>

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define HTTP_JOB_ALLOW_MAX 256 /* entries of --http-allow */

/* The plugin: type "jobtype/http". init calls curl_global_init, so call it
 * before threads that use libcurl start (as plugin.h says of init); state
 * is unused (NULL). */
extern const sked_plugin http_job_plugin;

/* Sets the allow list from cidrs, "CIDR,CIDR,..." (IPv4 and IPv6, e.g.
 * "10.0.0.0/8,fd00::/8"; a bare address is a /32 or /128; NULL or "" =
 * none). Replaces the previous list. Returns 0, or SKED_EINVAL with a
 * sentence naming the bad entry in err (then the list is left as it was).
 * Not thread-safe: call before init, never while attempts run. */
int http_job_allow(const char *cidrs, char *err, size_t errlen);

/* Which refused class the address sa (AF_INET or AF_INET6) is in:
 * "loopback", "link-local", "cloud metadata", "private", "shared",
 * "this network", "unspecified", "multicast", "broadcast", "reserved";
 * or NULL for a public address (and for other families). IPv6 addresses
 * embedding an IPv4 one (mapped ::ffff:0:0/96, compatible ::/96, NAT64
 * 64:ff9b::/96, 6to4 2002::/16) are judged by it. Static strings. */
const char *http_job_addr_class(const struct sockaddr *sa);

/* Whether sa is inside an --http-allow entry. An IPv6 address embedding an
 * IPv4 one is inside an IPv4 entry that holds that address. */
bool http_job_addr_allowed(const struct sockaddr *sa);

#endif
