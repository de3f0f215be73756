/*
 * Unit tests for worker/http_job, the built-in "http" job type: the SSRF
 * guard's address classifier and --http-allow list, and real requests made
 * by http_job_plugin.run against two small libmicrohttpd servers inside
 * the test, on 127.0.0.1 and 127.0.0.2 (port 0).
 *
 * run is driven through a minimal sked_host of the test's own (the
 * plugin's whole interface): it keeps the log, the result and the failure
 * reason, and refuses results over the worker's default --result-max as
 * the worker does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"
#include "core/results.h"
#include "worker/http_job.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the test's sked_host ------------------------------------------------ */

struct sked_attempt {
    const char *config;
    int64_t deadline_ms; /* -1 = none */
    atomic_int stop;
    int pipe[2]; /* cancel_fd is pipe[0]; written once to stop */
    pthread_mutex_t mu;
    buf_t out; /* stdout and stderr, interleaved, as the run's log */
    char *result;
    char reason[512];
    int failed_calls;
    size_t result_max; /* the worker's --result-max */
};

static const char *h_config(sked_attempt *a, size_t *len)
{
    if (len) *len = strlen(a->config);
    return a->config;
}

static const char *h_getenv(sked_attempt *a, const char *name)
{
    return NULL;
}

static int h_output(sked_attempt *a, int stream, const char *data, size_t len)
{
    assert_true(stream == SKED_STDOUT || stream == SKED_STDERR);
    pthread_mutex_lock(&a->mu);
    buf_append(&a->out, data, len);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

static int h_outputf(sked_attempt *a, int stream, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int h_outputf(sked_attempt *a, int stream, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return h_output(a, stream, line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
}

static int h_progress(sked_attempt *a, double fraction, const char *msg)
{
    return 0;
}

static int h_checkpoint(sked_attempt *a, const char *data, size_t len)
{
    return 0;
}

static const char *h_none(sked_attempt *a, size_t *len)
{
    return NULL;
}

/* As the worker: one JSON value, at most its --result-max. */
static int h_result(sked_attempt *a, const char *json, size_t len)
{
    if (len > a->result_max) {
        h_outputf(a, SKED_STDERR, "result: too large (%zu bytes)\n", len);
        return -1;
    }
    json_error_t jerr;
    json_t *v = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
    if (!v) fail_msg("result is not JSON (%s): %.*s", jerr.text, (int)len, json);
    json_decref(v);
    free(a->result);
    a->result = xstrndup(json, len);
    return 0;
}

static void h_fail(sked_attempt *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void h_fail(sked_attempt *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->reason, sizeof a->reason, fmt, ap);
    va_end(ap);
    a->failed_calls++;
}

static int h_cancelled(sked_attempt *a)
{
    return atomic_load(&a->stop);
}

static int h_cancel_fd(sked_attempt *a)
{
    return a->pipe[0];
}

static int h_sleep(sked_attempt *a, int64_t ms)
{
    fail_msg("the http job has no reason to sleep");
    return 0;
}

static int64_t h_deadline(sked_attempt *a)
{
    return a->deadline_ms;
}

static const sked_host host = {
    SKED_PLUGIN_ABI, sizeof(sked_host), h_config, h_getenv,   h_output, h_outputf,
    h_progress,      h_checkpoint,      h_none,   h_result,   h_none,   h_fail,
    h_cancelled,     h_cancel_fd,       h_sleep,  h_deadline,
};

static void att_init(sked_attempt *a, const char *config)
{
    memset(a, 0, sizeof *a);
    a->config = config;
    a->deadline_ms = -1;
    a->result_max = RESULTS_DEFAULT_BYTES;
    pthread_mutex_init(&a->mu, NULL);
    assert_int_equal(pipe(a->pipe), 0);
}

static void att_clear(sked_attempt *a)
{
    close(a->pipe[0]);
    close(a->pipe[1]);
    buf_free(&a->out);
    free(a->result);
    pthread_mutex_destroy(&a->mu);
}

static const char *logged(sked_attempt *a)
{
    return a->out.data ? a->out.data : "";
}

/* Runs config to its end; returns what run returned. */
static int run_config(sked_attempt *a, const char *config)
{
    att_init(a, config);
    return http_job_plugin.run(NULL, a, &host);
}

static json_t *result_of(sked_attempt *a)
{
    if (!a->result) fail_msg("no result; reason '%s'; log:\n%s", a->reason, logged(a));
    json_t *v = json_loads(a->result, 0, NULL);
    assert_non_null(v);
    return v;
}

/* ---- the servers --------------------------------------------------------- */

struct srv {
    struct MHD_Daemon *d;
    int port;
    atomic_int hits;
};

static struct srv S1, S2;   /* on 127.0.0.1 and 127.0.0.2 */
static atomic_int slow_in;  /* requests that reached /slow */
static atomic_int slow_gen; /* bumped to release the /slow requests waiting */

struct req_ctx {
    buf_t body;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body,
                             size_t len, const char *location)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(r, "X-Twice", "one");
    MHD_add_response_header(r, "X-Twice", "two");
    if (location) MHD_add_response_header(r, "Location", location);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static const char *hdr(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v ? v : "";
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    struct srv *s = cls;
    struct req_ctx *rc = *con_cls;
    if (!rc) {
        rc = xcalloc(1, sizeof *rc);
        *con_cls = rc;
        return MHD_YES;
    }
    if (*upload_size) {
        buf_append(&rc->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&s->hits, 1);
    if (!strcmp(url, "/echo")) {
        /* Echoes what a test checks arrived, but never the Authorization
         * value: the test proves sked does not write it anywhere. */
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:s%}", "method", method, "x_test",
                              hdr(c, "X-Test"), "content_type", hdr(c, "Content-Type"), "expect",
                              hdr(c, "Expect"), "user_agent", hdr(c, "User-Agent"), "auth_len",
                              (int)strlen(hdr(c, "Authorization")), "body",
                              rc->body.data ? rc->body.data : "", rc->body.len);
        json_object_set_new(
            o, "x_empty_sent",
            json_boolean(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Empty") != NULL));
        char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(o);
        enum MHD_Result r = reply(c, 200, text, strlen(text), NULL);
        free(text);
        return r;
    }
    if (!strncmp(url, "/status/", 8)) {
        char body[32];
        int code = atoi(url + 8);
        snprintf(body, sizeof body, "status %d", code);
        return reply(c, (unsigned)code, body, strlen(body), NULL);
    }
    if (!strcmp(url, "/redirect")) {
        const char *to = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "to");
        return reply(c, 302, "moved", 5, to ? to : "/echo");
    }
    if (!strncmp(url, "/chain/", 7)) {
        int n = atoi(url + 7);
        if (n <= 0) return reply(c, 200, "end of chain", 12, NULL);
        char next[32];
        snprintf(next, sizeof next, "/chain/%d", n - 1);
        return reply(c, 302, "next link of the chain", 22, next);
    }
    if (!strcmp(url, "/big")) {
        buf_t b = BUF_INIT;
        for (int i = 0; i < 20000; i++)
            buf_printf(&b, "row %05d\n", i);
        enum MHD_Result r = reply(c, 200, b.data, b.len, NULL);
        buf_free(&b);
        return r;
    }
    if (!strcmp(url, "/binary")) {
        char bytes[256];
        for (int i = 0; i < 256; i++)
            bytes[i] = (char)i;
        return reply(c, 200, bytes, sizeof bytes, NULL);
    }
    if (!strcmp(url, "/utf8")) /* "é" is 2 bytes: a cap of 5 cuts the third one in two */
        return reply(c, 200, "\xc3\xa9\xc3\xa9\xc3\xa9", 6, NULL);
    if (!strcmp(url, "/slow")) {
        /* Answers only when the test releases it (or after 5 s, so that
         * the daemon always stops). */
        int gen = atomic_load(&slow_gen);
        atomic_fetch_add(&slow_in, 1);
        for (int i = 0; i < 500 && atomic_load(&slow_gen) == gen; i++)
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        return reply(c, 200, "late", 4, NULL);
    }
    return reply(c, 404, "no such path", 12, NULL);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    struct req_ctx *rc = *con_cls;
    if (rc) {
        buf_free(&rc->body);
        free(rc);
    }
    *con_cls = NULL;
}

static int start(struct srv *s, const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    s->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
                            NULL, NULL, handler, s, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                            MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_END);
    if (!s->d) return -1;
    s->port = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT)->port;
    return 0;
}

static int group_setup(void **state)
{
    char err[256];
    void *st = NULL;
    if (http_job_plugin.init(&host, &st, err, sizeof err) != SKED_PLUGIN_OK) return -1;
    /* A proxy in the environment must not be used (nor break the tests). */
    setenv("http_proxy", "http://127.0.0.1:9", 1);
    setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:9", 1);
    return start(&S1, "127.0.0.1") || start(&S2, "127.0.0.2");
}

static int group_teardown(void **state)
{
    atomic_fetch_add(&slow_gen, 1);
    MHD_stop_daemon(S1.d);
    MHD_stop_daemon(S2.d);
    http_job_plugin.fini(NULL);
    return 0;
}

/* Each test starts with loopback allowed (the servers live there), unless
 * it sets its own list. */
static int allow_loopback(void **state)
{
    char err[256];
    return http_job_allow("127.0.0.0/8", err, sizeof err);
}

/* ---- the classifier and the allow list ----------------------------------- */

static struct sockaddr_storage sa_of(const char *text)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
    } else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
    } else {
        fail_msg("bad test address %s", text);
    }
    return ss;
}

static const char *class_of(const char *text)
{
    struct sockaddr_storage ss = sa_of(text);
    return http_job_addr_class((struct sockaddr *)&ss);
}

static bool allowed(const char *text)
{
    struct sockaddr_storage ss = sa_of(text);
    return http_job_addr_allowed((struct sockaddr *)&ss);
}

static void test_classifier(void **state)
{
    static const struct {
        const char *addr, *class; /* NULL = public */
    } cases[] = {
        /* IPv4, each range at its edges and just outside them. */
        {"127.0.0.1", "loopback"},
        {"127.0.0.0", "loopback"},
        {"127.255.255.255", "loopback"},
        {"126.255.255.255", NULL},
        {"128.0.0.0", NULL},
        {"10.0.0.0", "private"},
        {"10.255.255.255", "private"},
        {"9.255.255.255", NULL},
        {"11.0.0.0", NULL},
        {"172.16.0.0", "private"},
        {"172.31.255.255", "private"},
        {"172.15.255.255", NULL},
        {"172.32.0.0", NULL},
        {"192.168.0.0", "private"},
        {"192.168.255.255", "private"},
        {"192.167.255.255", NULL},
        {"192.169.0.0", NULL},
        {"169.254.0.0", "link-local"},
        {"169.254.255.255", "link-local"},
        {"169.254.169.254", "cloud metadata"},
        {"169.253.255.255", NULL},
        {"169.255.0.0", NULL},
        {"100.64.0.0", "shared"},
        {"100.100.100.200", "shared"}, /* Alibaba Cloud's metadata */
        {"100.127.255.255", "shared"},
        {"100.63.255.255", NULL},
        {"100.128.0.0", NULL},
        {"0.0.0.0", "unspecified"},
        {"0.1.2.3", "this network"},
        {"0.255.255.255", "this network"},
        {"1.0.0.0", NULL},
        {"224.0.0.1", "multicast"},
        {"239.255.255.255", "multicast"},
        {"223.255.255.255", NULL},
        {"240.0.0.1", "reserved"},
        {"255.255.255.254", "reserved"},
        {"255.255.255.255", "broadcast"},
        {"192.0.0.8", "reserved"},
        {"198.18.0.1", "reserved"},
        {"198.19.255.255", "reserved"},
        {"198.20.0.0", NULL},
        {"8.8.8.8", NULL},
        {"1.1.1.1", NULL},
        /* IPv6. */
        {"::", "unspecified"},
        {"::1", "loopback"},
        {"fe80::1", "link-local"},
        {"febf:ffff::1", "link-local"},
        {"fe7f::1", NULL},
        {"fec0::1", "private"},
        {"fc00::1", "private"},
        {"fdff:ffff::1", "private"},
        {"fbff::1", NULL},
        {"fd00:ec2::254", "cloud metadata"},
        {"fd00:ec2::253", "private"},
        {"ff02::1", "multicast"},
        {"100::1", "reserved"},
        {"2001:4860:4860::8888", NULL},
        {"2a00:1450:4001:80b::200e", NULL},
        /* IPv6 forms of IPv4 addresses are judged by the IPv4 address. */
        {"::ffff:127.0.0.1", "loopback"},
        {"::ffff:7f00:1", "loopback"},
        {"::ffff:169.254.169.254", "cloud metadata"},
        {"::ffff:10.1.2.3", "private"},
        {"::ffff:0.0.0.0", "unspecified"},
        {"::ffff:8.8.8.8", NULL},
        {"::127.0.0.1", "loopback"},
        {"::169.254.169.254", "cloud metadata"},
        {"::8.8.8.8", NULL},
        {"::5", "this network"}, /* ::0.0.0.5; only :: and ::1 are IPv6's own */
        {"64:ff9b::10.0.0.1", "private"},
        {"64:ff9b::169.254.169.254", "cloud metadata"},
        {"64:ff9b::8.8.8.8", NULL},
        {"2002:7f00:1::", "loopback"},
        {"2002:a9fe:a9fe::1", "cloud metadata"},
        {"2002:808:808::", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = class_of(cases[i].addr);
        if (!cases[i].class != !got || (got && strcmp(got, cases[i].class)))
            fail_msg("%s: class '%s', want '%s'", cases[i].addr, got ? got : "(public)",
                     cases[i].class ? cases[i].class : "(public)");
    }
    struct sockaddr_un_like {
        sa_family_t family;
    } unix_sa = {AF_UNIX};
    assert_null(http_job_addr_class((struct sockaddr *)&unix_sa));
}

static void test_allow_list(void **state)
{
    char err[256];
    assert_int_equal(
        http_job_allow(" 127.0.0.0/8, fd00::/8,192.168.1.5 ,2001:db8::1", err, sizeof err), 0);
    assert_true(allowed("127.0.0.1"));
    assert_true(allowed("127.255.255.255"));
    assert_true(allowed("::ffff:127.0.0.1")); /* the mapped form of an allowed address */
    assert_true(allowed("64:ff9b::127.1.1.1"));
    assert_true(allowed("fd00:ec2::254"));
    assert_true(allowed("fdff::1"));
    assert_true(allowed("192.168.1.5"));
    assert_true(allowed("2001:db8::1"));
    assert_false(allowed("2001:db8::2"));
    assert_false(allowed("192.168.1.4"));
    assert_false(allowed("192.168.1.6"));
    assert_false(allowed("128.0.0.0"));
    assert_false(allowed("::1")); /* IPv6 loopback is not in 127.0.0.0/8 */
    assert_false(allowed("fc00::1"));
    assert_false(allowed("169.254.169.254"));

    /* Edge prefixes. */
    assert_int_equal(http_job_allow("0.0.0.0/0", err, sizeof err), 0);
    assert_true(allowed("169.254.169.254"));
    assert_true(allowed("::ffff:10.0.0.1"));
    assert_false(allowed("::1"));
    assert_int_equal(http_job_allow("::/0", err, sizeof err), 0);
    assert_true(allowed("::1"));
    assert_true(allowed("::ffff:10.0.0.1")); /* an IPv6 address, in ::/0 */
    assert_false(allowed("10.0.0.1"));
    assert_int_equal(http_job_allow("10.0.0.2/31,fe80::/10", err, sizeof err), 0);
    assert_true(allowed("10.0.0.2"));
    assert_true(allowed("10.0.0.3"));
    assert_false(allowed("10.0.0.1"));
    assert_false(allowed("10.0.0.4"));
    assert_true(allowed("febf::1"));
    assert_false(allowed("fec0::1"));
    assert_int_equal(http_job_allow("172.16.0.0/12", err, sizeof err), 0);
    assert_true(allowed("172.31.255.255"));
    assert_false(allowed("172.32.0.0"));

    /* Refusals name the entry, and leave the list as it was. */
    static const struct {
        const char *list, *want;
    } bad[] = {
        {"10.1.2.3/8", "\"10.1.2.3/8\" has bits set past its /8 prefix (did you mean 10.0.0.0/8?)"},
        {"fe80::1/10", "did you mean fe80::/10?"},
        {"10.0.0.0/33", "\"10.0.0.0/33\" is not an address or CIDR"},
        {"::/129", "\"::/129\" is not"},
        {"10.0.0.0/", "\"10.0.0.0/\" is not"},
        {"10.0.0.0/-1", "\"10.0.0.0/-1\" is not"},
        {"10.0.0.0/8x", "\"10.0.0.0/8x\" is not"},
        {"localhost", "\"localhost\" is not"},
        {"127.0.0.0/8;10.0.0.0/8", "\"127.0.0.0/8;10.0.0.0/8\" is not"},
        {"10.0.0.0/8,", "an entry is empty"},
        {",10.0.0.0/8", "an entry is empty"},
        {"10.0.0.0/8,,::1", "an entry is empty"},
        {"10.0.0.0/8, bogus", "\"bogus\" is not"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        if (http_job_allow(bad[i].list, err, sizeof err) != SKED_EINVAL)
            fail_msg("accepted --http-allow %s", bad[i].list);
        if (!strstr(err, bad[i].want) || strncmp(err, "--http-allow: ", 14))
            fail_msg("--http-allow %s: '%s' lacks '%s'", bad[i].list, err, bad[i].want);
        assert_true(allowed("172.16.0.1")); /* still the list set before */
    }
    /* Empty and NULL: nothing allowed. */
    assert_int_equal(http_job_allow("", err, sizeof err), 0);
    assert_false(allowed("172.16.0.1"));
    assert_int_equal(http_job_allow("172.16.0.0/12", err, sizeof err), 0);
    assert_int_equal(http_job_allow(NULL, err, sizeof err), 0);
    assert_false(allowed("172.16.0.1"));
}

/* ---- requests ------------------------------------------------------------ */

static void test_get_with_headers(void **state)
{
    sked_attempt a;
    char *cfg = xasprintf("{\"url\":\"http://user:pw@127.0.0.1:%d/echo\","
                          "\"headers\":{\"X-Test\":\"hello\",\"X-Empty\":\"\","
                          "\"Authorization\":\"Bearer s3cret-t0ken\"}}",
                          S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    assert_int_equal(a.failed_calls, 0);
    json_t *r = result_of(&a);
    assert_int_equal(json_integer_value(json_object_get(r, "status")), 200);
    json_t *echo = json_loads(json_string_value(json_object_get(r, "body")), 0, NULL);
    assert_non_null(echo);
    assert_string_equal(json_string_value(json_object_get(echo, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(echo, "x_test")), "hello");
    assert_true(json_is_true(json_object_get(echo, "x_empty_sent")));
    assert_int_equal(json_integer_value(json_object_get(echo, "auth_len")),
                     strlen("Bearer s3cret-t0ken"));
    assert_string_equal(json_string_value(json_object_get(echo, "user_agent")), "sked/0.1.0");
    json_decref(echo);
    /* Response headers: lower-case names, repeated ones joined. */
    json_t *h = json_object_get(r, "headers");
    assert_string_equal(json_string_value(json_object_get(h, "content-type")),
                        "text/plain; charset=utf-8");
    assert_string_equal(json_string_value(json_object_get(h, "x-twice")), "one, two");
    assert_false(json_is_true(json_object_get(r, "truncated")));
    assert_int_equal(json_integer_value(json_object_get(r, "redirects")), 0);
    assert_true(json_is_integer(json_object_get(r, "time_ms")));
    /* The URL is shown without its credentials, in the result and the log. */
    char *want = xasprintf("http://127.0.0.1:%d/echo", S1.port);
    assert_string_equal(json_string_value(json_object_get(r, "url")), want);
    char *line = xasprintf("GET %s -> 200 (", want);
    if (!strstr(logged(&a), line)) fail_msg("log lacks '%s':\n%s", line, logged(&a));
    /* The body is in the log too. */
    assert_non_null(strstr(logged(&a), "\"x_test\":\"hello\""));
    /* No request header value is written anywhere. */
    assert_null(strstr(logged(&a), "s3cret"));
    assert_null(strstr(a.result, "s3cret"));
    assert_null(strstr(logged(&a), "pw@"));
    json_decref(r);
    free(line);
    free(want);
    free(cfg);
    att_clear(&a);
}

static void test_methods_and_body(void **state)
{
    static const char *const methods[] = {"POST", "PUT", "PATCH", "DELETE", "OPTIONS", "GET"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        sked_attempt a;
        /* Over 1 KiB: no "Expect: 100-continue" round trip. */
        buf_t body = BUF_INIT;
        for (int k = 0; k < 200; k++)
            buf_printf(&body, "line %03d ", k);
        char *cfg = xasprintf("{\"method\":\"%s\",\"url\":\"http://127.0.0.1:%d/echo\","
                              "\"headers\":{\"Content-Type\":\"text/x-test\"},\"body\":\"%s\"}",
                              methods[i], S1.port, body.data);
        assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
        json_t *r = result_of(&a);
        json_t *echo = json_loads(json_string_value(json_object_get(r, "body")), 0, NULL);
        assert_non_null(echo);
        assert_string_equal(json_string_value(json_object_get(echo, "method")), methods[i]);
        assert_string_equal(json_string_value(json_object_get(echo, "body")), body.data);
        assert_string_equal(json_string_value(json_object_get(echo, "content_type")),
                            "text/x-test");
        assert_string_equal(json_string_value(json_object_get(echo, "expect")), "");
        json_decref(echo);
        json_decref(r);
        free(cfg);
        buf_free(&body);
        att_clear(&a);
    }
    /* A body without a Content-Type is not claimed to be a form; a POST
     * without a body sends an empty one. */
    sked_attempt a;
    char *cfg = xasprintf("{\"method\":\"POST\",\"url\":\"http://127.0.0.1:%d/echo\","
                          "\"body\":\"x=1\"}",
                          S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    assert_null(strstr(a.result, "form-urlencoded"));
    free(cfg);
    att_clear(&a);
    /* HEAD: a status and headers, no body. */
    cfg = xasprintf("{\"method\":\"HEAD\",\"url\":\"http://127.0.0.1:%d/big\"}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    json_t *r = result_of(&a);
    assert_int_equal(json_integer_value(json_object_get(r, "status")), 200);
    assert_string_equal(json_string_value(json_object_get(r, "body")), "");
    json_decref(r);
    free(cfg);
    att_clear(&a);
}

static void test_expected_status(void **state)
{
    sked_attempt a;
    char *cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/status/503\"}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    assert_string_equal(a.reason, "HTTP 503 (expected 2xx)");
    /* The answer is kept all the same: it says why. */
    json_t *r = result_of(&a);
    assert_int_equal(json_integer_value(json_object_get(r, "status")), 503);
    assert_string_equal(json_string_value(json_object_get(r, "body")), "status 503");
    assert_non_null(strstr(logged(&a), "-> 503 ("));
    json_decref(r);
    free(cfg);
    att_clear(&a);

    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/status/503\",\"expect\":[200,204]}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    assert_string_equal(a.reason, "HTTP 503 (expected 200, 204)");
    free(cfg);
    att_clear(&a);

    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/status/404\",\"expect\":[404,410]}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    free(cfg);
    att_clear(&a);

    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/status/204\"}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    free(cfg);
    att_clear(&a);

    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/status/200\",\"expect\":[201]}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    assert_string_equal(a.reason, "HTTP 200 (expected 201)");
    free(cfg);
    att_clear(&a);
}

static void test_redirects(void **state)
{
    sked_attempt a;
    char *cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/chain/3\"}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    json_t *r = result_of(&a);
    assert_int_equal(json_integer_value(json_object_get(r, "status")), 200);
    assert_int_equal(json_integer_value(json_object_get(r, "redirects")), 3);
    assert_string_equal(json_string_value(json_object_get(r, "body")), "end of chain");
    char *want = xasprintf("http://127.0.0.1:%d/chain/0", S1.port);
    assert_string_equal(json_string_value(json_object_get(r, "url")), want);
    /* One log line per request. */
    for (int i = 3; i >= 0; i--) {
        char *line =
            xasprintf("GET http://127.0.0.1:%d/chain/%d -> %d (", S1.port, i, i ? 302 : 200);
        if (!strstr(logged(&a), line)) fail_msg("log lacks '%s':\n%s", line, logged(&a));
        free(line);
    }
    json_decref(r);
    free(want);
    free(cfg);
    att_clear(&a);

    /* The cap applies to the final answer, not to the bodies of the
     * redirects on the way (each longer than it). */
    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/chain/2\",\"max_response\":3}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    r = result_of(&a);
    assert_int_equal(json_integer_value(json_object_get(r, "redirects")), 2);
    assert_string_equal(json_string_value(json_object_get(r, "body")), "end");
    assert_true(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    free(cfg);
    att_clear(&a);

    /* Bounded: one more than max_redirects fails. */
    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/chain/3\",\"max_redirects\":2}", S1.port);
    int hits = atomic_load(&S1.hits);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    assert_string_equal(a.reason, "http: more than 2 redirects (config.max_redirects)");
    assert_int_equal(atomic_load(&S1.hits) - hits, 3);
    free(cfg);
    att_clear(&a);

    /* max_redirects 0: the 3xx is the answer, judged by expect. */
    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/chain/1\",\"max_redirects\":0}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    assert_string_equal(a.reason, "HTTP 302 (expected 2xx)");
    r = result_of(&a);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "headers"), "location")), "/chain/0");
    json_decref(r);
    free(cfg);
    att_clear(&a);
    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/chain/1\",\"max_redirects\":0,"
                    "\"expect\":[302]}",
                    S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    free(cfg);
    att_clear(&a);

    /* Redirects only to http and https. */
    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/redirect?to=file:///etc/passwd\"}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    if (!strstr(a.reason, "http: GET ") || !strstr(a.reason, "file"))
        fail_msg("reason: %s", a.reason);
    assert_null(strstr(logged(&a), "root:"));
    free(cfg);
    att_clear(&a);
}

static void test_response_cap(void **state)
{
    sked_attempt a;
    char *cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/big\",\"max_response\":1000}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    json_t *r = result_of(&a);
    const char *body = json_string_value(json_object_get(r, "body"));
    assert_int_equal(strlen(body), 1000);
    assert_memory_equal(body, "row 00000\nrow 00001\n", 20);
    assert_true(json_is_true(json_object_get(r, "truncated")));
    assert_non_null(strstr(logged(&a), "(response body cut at 1000 bytes: max_response)"));
    json_decref(r);
    free(cfg);
    att_clear(&a);

    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/big\",\"max_response\":0}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    r = result_of(&a);
    assert_string_equal(json_string_value(json_object_get(r, "body")), "");
    assert_true(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    free(cfg);
    att_clear(&a);

    /* The whole body when it fits. */
    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/big\",\"max_response\":1048576}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    /* The log has all 200000 bytes; the result, cut to fit the worker's
     * --result-max, says it was truncated. */
    assert_non_null(strstr(logged(&a), "row 19999\n"));
    r = result_of(&a);
    assert_true(strlen(a.result) <= RESULTS_DEFAULT_BYTES);
    assert_true(strlen(a.result) > RESULTS_DEFAULT_BYTES / 2);
    assert_true(json_is_true(json_object_get(r, "truncated")));
    assert_memory_equal(json_string_value(json_object_get(r, "body")), "row 00000\n", 10);
    json_decref(r);
    free(cfg);
    att_clear(&a);

    /* A worker whose --result-max holds no body at all: the rest of the
     * result is kept, without the body. */
    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/big\",\"max_response\":1000}", S1.port);
    att_init(&a, cfg);
    a.result_max = 300;
    assert_int_equal(http_job_plugin.run(NULL, &a, &host), SKED_PLUGIN_OK);
    r = result_of(&a);
    assert_int_equal(json_integer_value(json_object_get(r, "status")), 200);
    assert_string_equal(json_string_value(json_object_get(r, "body")), "");
    assert_true(json_is_true(json_object_get(r, "truncated")));
    assert_non_null(strstr(logged(&a), "row 00099\n")); /* the log has the 1000 bytes */
    json_decref(r);
    free(cfg);
    att_clear(&a);

    /* Default: 64 KiB kept. */
    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/big\"}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    assert_non_null(strstr(logged(&a), "(response body cut at 65536 bytes: max_response)"));
    /* Row k is bytes 10k..10k+9: row 06553 is cut after "row 06". */
    assert_non_null(strstr(logged(&a), "row 06552\nrow 06\n(response body cut"));
    assert_null(strstr(logged(&a), "row 06553"));
    free(cfg);
    att_clear(&a);
}

static void test_binary_and_utf8(void **state)
{
    sked_attempt a;
    char *cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/binary\"}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    json_t *r = result_of(&a);
    assert_null(json_object_get(r, "body"));
    const char *b64 = json_string_value(json_object_get(r, "body_base64"));
    assert_non_null(b64);
    unsigned char bin[300];
    size_t n = 0;
    assert_int_equal(sodium_base642bin(bin, sizeof bin, b64, strlen(b64), NULL, &n, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(n, 256);
    for (int i = 0; i < 256; i++)
        assert_int_equal(bin[i], i);
    assert_non_null(
        strstr(logged(&a), "(256 bytes of binary response body; base64 in the result)"));
    json_decref(r);
    free(cfg);
    att_clear(&a);

    /* Cut inside a character: still text, the broken character left out. */
    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/utf8\",\"max_response\":5}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    r = result_of(&a);
    assert_string_equal(json_string_value(json_object_get(r, "body")), "\xc3\xa9\xc3\xa9");
    assert_true(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    free(cfg);
    att_clear(&a);
}

/* Waits (bounded) until /slow has received n requests in all. */
static void wait_slow_in(int n)
{
    int64_t until = clock_mono_ns() + (int64_t)5 * 1000000000;
    while (atomic_load(&slow_in) < n && clock_mono_ns() < until)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    if (atomic_load(&slow_in) < n) fail_msg("/slow never got request %d", n);
}

static void test_timeouts(void **state)
{
    sked_attempt a;
    char *cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/slow\",\"timeout\":\"300ms\"}", S1.port);
    int64_t t0 = clock_mono_ns();
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    int64_t ms = (clock_mono_ns() - t0) / 1000000;
    assert_string_equal(a.reason, "timeout");
    assert_true(ms >= 290 && ms < 3000);
    assert_non_null(strstr(logged(&a), "no complete answer within 300 ms"));
    assert_null(a.result);
    free(cfg);
    att_clear(&a);

    /* The job's own deadline bounds the request when it comes first: the
     * worker stops the attempt then; the request itself gives up a second
     * later (here, where nobody stops it). */
    cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/slow\"}", S1.port);
    att_init(&a, cfg);
    a.deadline_ms = 200;
    t0 = clock_mono_ns();
    assert_int_equal(http_job_plugin.run(NULL, &a, &host), SKED_PLUGIN_FAILED);
    ms = (clock_mono_ns() - t0) / 1000000;
    assert_string_equal(a.reason, "timeout");
    assert_true(ms >= 1190 && ms < 5000);
    att_clear(&a);

    /* No time left: no request at all. */
    int hits = atomic_load(&S1.hits);
    att_init(&a, cfg);
    a.deadline_ms = 0;
    assert_int_equal(http_job_plugin.run(NULL, &a, &host), SKED_PLUGIN_FAILED);
    assert_string_equal(a.reason, "timeout");
    assert_int_equal(atomic_load(&S1.hits), hits);
    att_clear(&a);
    free(cfg);
    atomic_fetch_add(&slow_gen, 1);
}

struct runner {
    sked_attempt *a;
    int rc;
};

static void *run_thread(void *arg)
{
    struct runner *r = arg;
    r->rc = http_job_plugin.run(NULL, r->a, &host);
    return NULL;
}

static void test_cancel(void **state)
{
    /* By the cancel fd: the request ends at once. */
    for (int by_fd = 1; by_fd >= 0; by_fd--) {
        sked_attempt a;
        char *cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/slow\"}", S1.port);
        att_init(&a, cfg);
        struct runner r = {&a, -1};
        int before = atomic_load(&slow_in);
        pthread_t t;
        pthread_create(&t, NULL, run_thread, &r);
        wait_slow_in(before + 1);
        int64_t t0 = clock_mono_ns();
        atomic_store(&a.stop, 1);
        if (by_fd) assert_int_equal(write(a.pipe[1], "x", 1), 1);
        pthread_join(t, NULL);
        int64_t ms = (clock_mono_ns() - t0) / 1000000;
        assert_int_equal(r.rc, SKED_PLUGIN_FAILED);
        assert_string_equal(a.reason, "canceled");
        /* By the fd: at once (bounds loose for a loaded machine; the server
         * holds the request 5 s). By the flag alone: within the 1 s poll. */
        if (ms >= (by_fd ? 800 : 2500))
            fail_msg("cancel took %lld ms (fd %d)", (long long)ms, by_fd);
        free(cfg);
        att_clear(&a);
        atomic_fetch_add(&slow_gen, 1);
    }
}

/* ---- the SSRF guard ------------------------------------------------------ */

static void test_guard_refuses_loopback(void **state)
{
    char err[256];
    assert_int_equal(http_job_allow(NULL, err, sizeof err), 0);
    int hits = atomic_load(&S1.hits);
    sked_attempt a;
    char *cfg = xasprintf("{\"url\":\"http://127.0.0.1:%d/echo\"}", S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    char *want = xasprintf(
        "http: refused to connect to 127.0.0.1:%d (loopback; allow it with --http-allow)", S1.port);
    assert_string_equal(a.reason, want);
    assert_null(a.result);
    free(want);
    free(cfg);
    att_clear(&a);

    /* A name that resolves to loopback, and IPv6 forms of it. */
    static const char *const hosts[] = {"localhost", "[::1]",      "[::ffff:127.0.0.1]",
                                        "127.1",     "2130706433", "0x7f.0.0.1"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        cfg = xasprintf("{\"url\":\"http://%s:%d/echo\"}", hosts[i], S1.port);
        assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
        if (!strstr(a.reason, "http: refused to connect to ") || !strstr(a.reason, "(loopback;"))
            fail_msg("%s: reason '%s'", hosts[i], a.reason);
        free(cfg);
        att_clear(&a);
    }
    /* Cloud metadata, refused before any packet is sent. */
    cfg = xasprintf("{\"url\":\"http://169.254.169.254/latest/meta-data/\"}");
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    assert_string_equal(a.reason, "http: refused to connect to 169.254.169.254:80 (cloud "
                                  "metadata; allow it with --http-allow)");
    free(cfg);
    att_clear(&a);
    cfg = xasprintf("{\"url\":\"https://[fd00:ec2::254]/latest/meta-data/\"}");
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    assert_string_equal(a.reason, "http: refused to connect to [fd00:ec2::254]:443 (cloud "
                                  "metadata; allow it with --http-allow)");
    free(cfg);
    att_clear(&a);
    assert_int_equal(atomic_load(&S1.hits), hits);
}

static void test_guard_checks_redirects(void **state)
{
    char err[256];
    /* Only the server on 127.0.0.2 is allowed. */
    assert_int_equal(http_job_allow("127.0.0.2/32", err, sizeof err), 0);
    int hits1 = atomic_load(&S1.hits), hits2 = atomic_load(&S2.hits);
    sked_attempt a;
    char *cfg = xasprintf("{\"url\":\"http://127.0.0.2:%d/redirect?to=http://127.0.0.1:%d/echo\"}",
                          S2.port, S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    char *want = xasprintf(
        "http: refused to connect to 127.0.0.1:%d (loopback; allow it with --http-allow)", S1.port);
    assert_string_equal(a.reason, want);
    char *line = xasprintf("GET http://127.0.0.2:%d/redirect?to=http://127.0.0.1:%d/echo -> 302",
                           S2.port, S1.port);
    if (!strstr(logged(&a), line)) fail_msg("log lacks '%s':\n%s", line, logged(&a));
    assert_int_equal(atomic_load(&S2.hits), hits2 + 1);
    assert_int_equal(atomic_load(&S1.hits), hits1); /* never reached */
    free(line);
    free(want);
    free(cfg);
    att_clear(&a);

    cfg = xasprintf("{\"url\":\"http://127.0.0.2:%d/redirect?to=http://169.254.169.254/latest/\"}",
                    S2.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_FAILED);
    assert_string_equal(a.reason, "http: refused to connect to 169.254.169.254:80 (cloud "
                                  "metadata; allow it with --http-allow)");
    free(cfg);
    att_clear(&a);

    /* Allowed, the same redirect goes through. The Authorization header
     * stays with the host it was meant for (libcurl drops it on a redirect
     * to another host); other headers go along. */
    assert_int_equal(http_job_allow("127.0.0.2/32,127.0.0.1", err, sizeof err), 0);
    cfg = xasprintf("{\"url\":\"http://127.0.0.2:%d/redirect?to=http://127.0.0.1:%d/echo\","
                    "\"headers\":{\"Authorization\":\"Bearer s3cret\",\"X-Test\":\"kept\"}}",
                    S2.port, S1.port);
    assert_int_equal(run_config(&a, cfg), SKED_PLUGIN_OK);
    json_t *r = result_of(&a);
    assert_int_equal(json_integer_value(json_object_get(r, "redirects")), 1);
    json_t *echo = json_loads(json_string_value(json_object_get(r, "body")), 0, NULL);
    assert_non_null(echo);
    assert_int_equal(json_integer_value(json_object_get(echo, "auth_len")), 0);
    assert_string_equal(json_string_value(json_object_get(echo, "x_test")), "kept");
    json_decref(echo);
    json_decref(r);
    assert_int_equal(atomic_load(&S1.hits), hits1 + 1);
    free(cfg);
    att_clear(&a);
}

/* ---- config -------------------------------------------------------------- */

static void test_bad_config(void **state)
{
    char field[128], detail[256];
    const char *cfg = "{\"url\":\"ftp://h/x\"}";
    assert_int_equal(http_job_plugin.validate(NULL, cfg, strlen(cfg), field, sizeof field, detail,
                                              sizeof detail),
                     SKED_PLUGIN_FAILED);
    assert_string_equal(field, "config.url");
    assert_string_equal(detail,
                        "config.url: must start with http:// or https:// (no other scheme is "
                        "allowed)");
    cfg = "{\"url\":\"http://h\",\"expect\":[200]}";
    assert_int_equal(http_job_plugin.validate(NULL, cfg, strlen(cfg), field, sizeof field, detail,
                                              sizeof detail),
                     SKED_PLUGIN_OK);
    cfg = "{\"url\":";
    assert_int_equal(http_job_plugin.validate(NULL, cfg, strlen(cfg), field, sizeof field, detail,
                                              sizeof detail),
                     SKED_PLUGIN_FAILED);
    assert_string_equal(field, "config");

    /* run checks again, whatever the host did. */
    sked_attempt a;
    int hits = atomic_load(&S1.hits);
    assert_int_equal(run_config(&a, "{\"url\":\"http://127.0.0.1/\",\"max_redirects\":99}"),
                     SKED_PLUGIN_FAILED);
    assert_string_equal(a.reason, "config.max_redirects: must be between 0 and 20");
    att_clear(&a);
    assert_int_equal(run_config(&a, "not json"), SKED_PLUGIN_FAILED);
    assert_non_null(strstr(a.reason, "config: not JSON"));
    att_clear(&a);
    assert_int_equal(atomic_load(&S1.hits), hits);

    /* A host that does not listen: libcurl's reason. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    char *c = xasprintf("{\"url\":\"http://127.0.0.1:%d/\"}", ntohs(sa.sin_port));
    assert_int_equal(run_config(&a, c), SKED_PLUGIN_FAILED);
    char *want = xasprintf("http: GET http://127.0.0.1:%d/: ", ntohs(sa.sin_port));
    if (strncmp(a.reason, want, strlen(want))) fail_msg("reason: %s", a.reason);
    free(want);
    free(c);
    att_clear(&a);
}

static void test_descriptor(void **state)
{
    assert_int_equal(http_job_plugin.abi, SKED_PLUGIN_ABI);
    assert_int_equal(http_job_plugin.size, sizeof(sked_plugin));
    assert_string_equal(http_job_plugin.type, "jobtype/http");
    assert_non_null(http_job_plugin.run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_classifier),
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test_setup(test_get_with_headers, allow_loopback),
        cmocka_unit_test_setup(test_methods_and_body, allow_loopback),
        cmocka_unit_test_setup(test_expected_status, allow_loopback),
        cmocka_unit_test_setup(test_redirects, allow_loopback),
        cmocka_unit_test_setup(test_response_cap, allow_loopback),
        cmocka_unit_test_setup(test_binary_and_utf8, allow_loopback),
        cmocka_unit_test_setup(test_timeouts, allow_loopback),
        cmocka_unit_test_setup(test_cancel, allow_loopback),
        cmocka_unit_test(test_guard_refuses_loopback),
        cmocka_unit_test(test_guard_checks_redirects),
        cmocka_unit_test_setup(test_bad_config, allow_loopback),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
