/*
 * Unit tests for common/httpc against a small libmicrohttpd server on
 * 127.0.0.1 (port 0) inside the test: the bearer token and body arrive,
 * any HTTP status is an answer, a dead server in the list is skipped
 * (failover), all-dead is a transport error, keep-alive reuses one
 * connection, timeouts and the abort flag end a hanging call, and
 * streaming delivers the whole body.
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
#include "common/httpc.h"
#include "common/xalloc.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct srv {
    struct MHD_Daemon *d;
    int port;
    atomic_int hits;
    atomic_int connections;
    char auth[256];
    char method[16];
    buf_t body;
};

static struct srv S;

struct req_ctx {
    buf_t body;
};

static void on_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                    enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) atomic_fetch_add(&S.connections, 1);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
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
    atomic_fetch_add(&S.hits, 1);
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    snprintf(S.auth, sizeof S.auth, "%s", auth ? auth : "");
    snprintf(S.method, sizeof S.method, "%s", method);
    buf_reset(&S.body);
    if (rc->body.len) buf_append(&S.body, rc->body.data, rc->body.len);
    if (!strcmp(url, "/slow")) {
        struct timespec ts = {2, 0};
        nanosleep(&ts, NULL); /* plays a server that does not answer in time */
        return reply(c, 200, "text/plain", "late", 4);
    }
    if (!strcmp(url, "/teapot")) return reply(c, 418, "application/problem+json", "{}", 2);
    if (!strcmp(url, "/big")) {
        buf_t b = BUF_INIT;
        for (int i = 0; i < 20000; i++)
            buf_printf(&b, "row %05d\n", i);
        enum MHD_Result r = reply(c, 200, "text/plain", b.data, b.len);
        buf_free(&b);
        return r;
    }
    char *echo = xasprintf("{\"path\":\"%s\",\"len\":%zu}", url, rc->body.len);
    enum MHD_Result r = reply(c, 200, "application/json", echo, strlen(echo));
    free(echo);
    return r;
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

static int group_setup(void **state)
{
    S.d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handler,
        NULL, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_conn,
        NULL, MHD_OPTION_SOCK_ADDR,
        &(struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
        MHD_OPTION_END);
    if (!S.d) return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(S.d, MHD_DAEMON_INFO_BIND_PORT);
    S.port = info->port;
    return 0;
}

static int group_teardown(void **state)
{
    MHD_stop_daemon(S.d);
    buf_free(&S.body);
    return 0;
}

/* A loopback port nobody listens on (bound, then closed). */
static int dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static char *url_of(int port)
{
    return xasprintf("http://127.0.0.1:%d", port);
}

static void test_post_with_token(void **state)
{
    char *u = url_of(S.port);
    httpc_t *c = httpc_new(u, "tok123");
    httpc_resp_t r;
    assert_int_equal(httpc_do(c, "POST", "/v1/x?a=1", "application/json", "{\"k\":1}", 7, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"path\":\"/v1/x\",\"len\":7}");
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(S.auth, "Bearer tok123");
    assert_string_equal(S.method, "POST");
    assert_string_equal(S.body.data, "{\"k\":1}");
    httpc_resp_clear(&r);
    assert_null(r.body);
    httpc_free(c);
    free(u);
}

static void test_large_body_and_methods(void **state)
{
    /* Over 1 KiB: no "Expect: 100-continue" stall, and every byte arrives. */
    char *u = url_of(S.port);
    httpc_t *c = httpc_new(u, NULL);
    size_t n = 200000;
    char *big = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    httpc_resp_t r;
    int64_t t0 = clock_mono_ns();
    assert_int_equal(httpc_do(c, "POST", "/log", "application/octet-stream", big, n, NULL, &r), 0);
    assert_true((clock_mono_ns() - t0) / 1000000 < 900);
    assert_int_equal(r.status, 200);
    assert_int_equal(S.body.len, n);
    assert_memory_equal(S.body.data, big, n);
    assert_string_equal(S.auth, ""); /* no token, no header */
    httpc_resp_clear(&r);
    assert_int_equal(httpc_do(c, "DELETE", "/v1/jobs/j", NULL, NULL, 0, NULL, &r), 0);
    assert_string_equal(S.method, "DELETE");
    httpc_resp_clear(&r);
    const char *hdrs[] = {"If-Match: 3", NULL};
    assert_int_equal(httpc_do(c, "PATCH", "/v1/jobs/j", "application/json", "{}", 2, hdrs, &r), 0);
    assert_string_equal(S.method, "PATCH");
    httpc_resp_clear(&r);
    free(big);
    httpc_free(c);
    free(u);
}

static void test_error_status_is_an_answer(void **state)
{
    char *u = url_of(S.port);
    httpc_t *c = httpc_new(u, "t");
    httpc_resp_t r;
    int before = atomic_load(&S.hits);
    assert_int_equal(httpc_do(c, "GET", "/teapot", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 418);
    assert_string_equal(r.content_type, "application/problem+json");
    assert_int_equal(atomic_load(&S.hits), before + 1); /* not retried elsewhere */
    httpc_resp_clear(&r);
    httpc_free(c);
    free(u);
}

static void test_failover(void **state)
{
    char *list = xasprintf(" http://127.0.0.1:%d/ , http://127.0.0.1:%d", dead_port(), S.port);
    httpc_t *c = httpc_new(list, "t");
    httpc_resp_t r;
    assert_int_equal(httpc_do(c, "GET", "/a", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"path\":\"/a\",\"len\":0}");
    httpc_resp_clear(&r);
    /* And the next call too (it starts at the server that answered). */
    assert_int_equal(httpc_do(c, "GET", "/b", NULL, NULL, 0, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_resp_clear(&r);
    httpc_free(c);
    free(list);
}

static void test_all_down(void **state)
{
    char *list = xasprintf("http://127.0.0.1:%d,http://127.0.0.1:%d", dead_port(), dead_port());
    httpc_t *c = httpc_new(list, "t");
    httpc_resp_t r;
    assert_true(httpc_do(c, "GET", "/a", NULL, NULL, 0, NULL, &r) < 0);
    assert_int_equal(r.status, 0);
    assert_null(r.body);
    assert_true(strlen(r.errbuf) > 0);
    httpc_resp_clear(&r);
    httpc_free(c);
    free(list);
}

static void test_keepalive(void **state)
{
    char *u = url_of(S.port);
    httpc_t *c = httpc_new(u, "t");
    httpc_resp_t r;
    int before = atomic_load(&S.connections);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(httpc_do(c, "POST", "/k", "application/json", "{}", 2, NULL, &r), 0);
        httpc_resp_clear(&r);
    }
    assert_int_equal(atomic_load(&S.connections), before + 1);
    httpc_free(c);
    free(u);
}

static void test_timeout(void **state)
{
    char *u = url_of(S.port);
    httpc_t *c = httpc_new(u, "t");
    httpc_set_timeout_ms(c, 300);
    httpc_resp_t r;
    int64_t t0 = clock_mono_ns();
    assert_true(httpc_do(c, "GET", "/slow", NULL, NULL, 0, NULL, &r) < 0);
    int64_t ms = (clock_mono_ns() - t0) / 1000000;
    assert_true(ms >= 250 && ms < 1500);
    httpc_resp_clear(&r);
    httpc_free(c);
    free(u);
}

struct aborter {
    atomic_int *flag;
};

static void *abort_later(void *arg)
{
    struct timespec ts = {0, 200 * 1000000};
    nanosleep(&ts, NULL); /* the call must be in flight: it hangs for 2 s */
    atomic_store(((struct aborter *)arg)->flag, 1);
    return NULL;
}

static void test_abort_flag(void **state)
{
    char *u = url_of(S.port);
    httpc_t *c = httpc_new(u, "t");
    atomic_int flag;
    atomic_init(&flag, 0);
    httpc_set_abort(c, &flag);
    struct aborter a = {&flag};
    pthread_t t;
    pthread_create(&t, NULL, abort_later, &a);
    httpc_resp_t r;
    int64_t t0 = clock_mono_ns();
    assert_true(httpc_do(c, "GET", "/slow", NULL, NULL, 0, NULL, &r) < 0);
    int64_t ms = (clock_mono_ns() - t0) / 1000000;
    pthread_join(t, NULL);
    assert_true(ms < 1900); /* well before the server's 2 s answer */
    httpc_resp_clear(&r);
    /* With the flag set, calls fail at once. */
    assert_true(httpc_do(c, "GET", "/a", NULL, NULL, 0, NULL, &r) < 0);
    httpc_resp_clear(&r);
    httpc_free(c);
    free(u);
}

static int sink(const char *data, size_t len, void *arg)
{
    buf_append(arg, data, len);
    return 0;
}

static int sink_stop(const char *data, size_t len, void *arg)
{
    buf_append(arg, data, len);
    return 1;
}

static void test_stream(void **state)
{
    char *list = xasprintf("http://127.0.0.1:%d,http://127.0.0.1:%d", dead_port(), S.port);
    httpc_t *c = httpc_new(list, "t");
    buf_t got = BUF_INIT;
    long status = 0;
    assert_int_equal(httpc_stream(c, "/big", sink, &got, &status), 0);
    assert_int_equal(status, 200);
    assert_int_equal(got.len, 20000 * 10);
    assert_memory_equal(got.data + 10 * 19999, "row 19999\n", 10);
    buf_reset(&got);
    assert_int_equal(httpc_stream(c, "/big", sink_stop, &got, &status), 0);
    assert_true(got.len > 0 && got.len < 20000 * 10);
    buf_free(&got);
    httpc_free(c);
    free(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_with_token),
        cmocka_unit_test(test_large_body_and_methods),
        cmocka_unit_test(test_error_status_is_an_answer),
        cmocka_unit_test(test_failover),
        cmocka_unit_test(test_all_down),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_abort_flag),
        cmocka_unit_test(test_stream),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
