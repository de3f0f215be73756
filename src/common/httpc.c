/*
 * The HTTP client of the worker and the CLI, on libcurl's easy interface.
 * One easy handle per client is reused for every call, so keep-alive
 * connections survive between calls (curl_easy_reset keeps the connection
 * cache). The server list is tried in order starting from the one that
 * last answered; a transport error moves on to the next server after a
 * short backoff, so a dead server costs one connect attempt, not every
 * call. See httpc.h for the contract.
 *
 * TLS: peer and host verification stay at libcurl's defaults (on) and are
 * never switched off. A configured CA file replaces the system store
 * entirely (CAPATH cleared too), so `--ca` means "this CA and no other".
 * libcurl accepts a non-self-signed certificate in that file as a trust
 * anchor (partial chains), which is how a server's own certificate can be
 * pinned. Only http and https are allowed as protocols, whatever URL a
 * user types.
 */
#include "common/httpc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONNECT_TIMEOUT_MS  3000 /* a blackholed server must not eat the whole budget */
#define FAILOVER_BACKOFF_MS 50   /* pause before trying the next server */

struct httpc {
    CURL *curl;
    char **servers; /* base URLs without a trailing '/' */
    size_t nservers;
    size_t cur; /* index of the server to try first */
    char *auth; /* "Authorization: Bearer ..." or NULL */
    int64_t timeout_ms;
    const atomic_int *abort_flag; /* see httpc_set_abort; NULL = never */
    char *ca_file;                /* trusted CAs for https; NULL = the system's */
};

static char *default_ca; /* httpc_set_default_ca; set before threads start */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    /* Not thread-safe in older libcurl, hence once, before any handle. */
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

httpc_t *httpc_new(const char *servers, const char *token)
{
    pthread_once(&global_once, global_init);
    httpc_t *c = xcalloc(1, sizeof *c);
    c->curl = curl_easy_init();
    if (!c->curl) {
        free(c);
        return NULL;
    }
    c->timeout_ms = 60000;
    const char *p = servers ? servers : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n && (*p == ' ' || *p == '\t'))
            p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '/' || p[n - 1] == '\t'))
            n--;
        if (n) {
            c->servers = xrealloc(c->servers, (c->nservers + 1) * sizeof *c->servers);
            c->servers[c->nservers++] = xstrndup(p, n);
        }
        if (!end) break;
        p = end + 1;
    }
    if (token && *token) c->auth = xasprintf("Authorization: Bearer %s", token);
    if (default_ca) c->ca_file = xstrdup(default_ca);
    return c;
}

void httpc_free(httpc_t *c)
{
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    for (size_t i = 0; i < c->nservers; i++)
        free(c->servers[i]);
    free(c->servers);
    free(c->auth);
    free(c->ca_file);
    free(c);
}

void httpc_set_ca(httpc_t *c, const char *ca_file)
{
    FREE_NULL(c->ca_file);
    if (ca_file && *ca_file) c->ca_file = xstrdup(ca_file);
}

void httpc_set_default_ca(const char *ca_file)
{
    FREE_NULL(default_ca);
    if (ca_file && *ca_file) default_ca = xstrdup(ca_file);
}

void httpc_set_timeout_ms(httpc_t *c, int64_t ms)
{
    c->timeout_ms = ms;
}

/* curl polls the flag from its progress callback, at least once a second. */
void httpc_set_abort(httpc_t *c, const atomic_int *flag)
{
    c->abort_flag = flag;
}

void httpc_resp_clear(httpc_resp_t *r)
{
    if (!r) return;
    FREE_NULL(r->body);
    FREE_NULL(r->content_type);
    r->len = 0;
    r->status = 0;
    r->errbuf[0] = '\0';
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* "server: curl's message", truncated to fit the response's errbuf. */
static void set_err(httpc_resp_t *out, const char *server, const char *msg)
{
    buf_t b = BUF_INIT;
    buf_printf(&b, "%s: %s", server, msg);
    size_t n = b.len < sizeof out->errbuf - 1 ? b.len : sizeof out->errbuf - 1;
    memcpy(out->errbuf, b.data, n);
    out->errbuf[n] = '\0';
    buf_free(&b);
}

static size_t write_buf(char *data, size_t size, size_t nmemb, void *arg)
{
    buf_append(arg, data, size * nmemb);
    return size * nmemb;
}

static int progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                    curl_off_t ulnow)
{
    const httpc_t *c = arg;
    return c->abort_flag && atomic_load(c->abort_flag) ? 1 : 0;
}

/* Sets every option of one request; the handle was reset before. */
static struct curl_slist *setup(httpc_t *c, const char *base, const char *method, const char *path,
                                const char *content_type, const char *body, size_t body_len,
                                const char *const *headers, char **url, char *errbuf)
{
    CURL *h = c->curl;
    struct curl_slist *hl = NULL;
    *url = xasprintf("%s%s", base, path);
    curl_easy_setopt(h, CURLOPT_URL, *url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(c->timeout_ms > 0 && c->timeout_ms < CONNECT_TIMEOUT_MS
                                ? c->timeout_ms
                                : CONNECT_TIMEOUT_MS));
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, c->abort_flag ? 0L : 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->ca_file) {
        curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    if (!strcmp(method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(method, "POST")) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body || !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH")) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        }
    }
    if (c->auth) hl = curl_slist_append(hl, c->auth);
    if (content_type && body) {
        char *ct = xasprintf("Content-Type: %s", content_type);
        hl = curl_slist_append(hl, ct);
        free(ct);
    } else if (body) {
        /* curl would otherwise claim form encoding. */
        hl = curl_slist_append(hl, "Content-Type:");
    }
    /* "Expect: 100-continue" costs a round trip (or a 1 s stall) on every
     * body over 1 KiB, which log shipping sends all the time. */
    hl = curl_slist_append(hl, "Expect:");
    for (const char *const *p = headers; p && *p; p++)
        hl = curl_slist_append(hl, *p);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    return hl;
}

int httpc_do(httpc_t *c, const char *method, const char *path, const char *content_type,
             const char *body, size_t body_len, const char *const *headers, httpc_resp_t *out)
{
    int rc = SKED_EIO;
    memset(out, 0, sizeof *out);
    if (c->nservers == 0) {
        snprintf(out->errbuf, sizeof out->errbuf, "no server configured");
        return SKED_EINVAL;
    }
    for (size_t tries = 0; tries < c->nservers; tries++) {
        if (c->abort_flag && atomic_load(c->abort_flag)) {
            snprintf(out->errbuf, sizeof out->errbuf, "aborted");
            break;
        }
        if (tries) sleep_ms(FAILOVER_BACKOFF_MS);
        size_t idx = (c->cur + tries) % c->nservers;
        buf_t b = BUF_INIT;
        char *url = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        curl_easy_reset(c->curl);
        struct curl_slist *hl = setup(c, c->servers[idx], method, path, content_type, body,
                                      body_len, headers, &url, errbuf);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, write_buf);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
        if (c->timeout_ms > 0) curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
        int64_t sent_ns = clock_mono_ns();
        CURLcode cc = curl_easy_perform(c->curl);
        if (cc == CURLE_OK) {
            out->sent_ns = sent_ns;
            char *ct = NULL;
            curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &out->status);
            curl_easy_getinfo(c->curl, CURLINFO_CONTENT_TYPE, &ct);
            out->content_type = xstrdup(ct);
            out->len = b.len;
            out->body = buf_steal(&b);
            c->cur = idx;
            rc = 0;
        } else {
            set_err(out, c->servers[idx], errbuf[0] ? errbuf : curl_easy_strerror(cc));
            buf_free(&b);
        }
        curl_slist_free_all(hl);
        free(url);
        if (rc == 0) break;
    }
    if (rc != 0) c->cur = (c->cur + 1) % c->nservers; /* start elsewhere next time */
    return rc;
}

struct stream_ctx {
    httpc_sink_fn fn;
    void *arg;
    int stopped;   /* the sink asked to stop */
    size_t nbytes; /* delivered so far: no failover once the caller has data */
};

static size_t write_sink(char *data, size_t size, size_t nmemb, void *arg)
{
    struct stream_ctx *s = arg;
    size_t n = size * nmemb;
    s->nbytes += n;
    if (s->fn(data, n, s->arg) != 0) {
        s->stopped = 1;
        return 0; /* makes curl abort with CURLE_WRITE_ERROR */
    }
    return n;
}

int httpc_stream(httpc_t *c, const char *path, httpc_sink_fn fn, void *arg, long *status)
{
    int rc = SKED_EIO;
    *status = 0;
    if (c->nservers == 0) return SKED_EINVAL;
    struct stream_ctx s = {fn, arg, 0, 0};
    for (size_t tries = 0; tries < c->nservers; tries++) {
        if (tries) sleep_ms(FAILOVER_BACKOFF_MS);
        size_t idx = (c->cur + tries) % c->nservers;
        char *url = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        curl_easy_reset(c->curl);
        struct curl_slist *hl =
            setup(c, c->servers[idx], "GET", path, NULL, NULL, 0, NULL, &url, errbuf);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, write_sink);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &s);
        /* A followed log may legitimately stream for hours: no total
         * timeout, but a connection that goes silent for 2 minutes is dead
         * (the server sends keep-alive output while following). */
        curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, 120L);
        CURLcode cc = curl_easy_perform(c->curl);
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
        curl_slist_free_all(hl);
        free(url);
        if (cc == CURLE_OK || s.stopped) {
            c->cur = idx;
            rc = 0;
            break;
        }
        if (s.nbytes) { /* the caller already has part of it; retrying would repeat it */
            rc = SKED_EIO;
            break;
        }
        *status = 0;
    }
    if (rc != 0 && s.nbytes == 0) c->cur = (c->cur + 1) % c->nservers;
    return rc;
}
