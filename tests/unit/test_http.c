/*
 * The HTTP layer, end to end over a real socket: a server started with
 * server_start() on 127.0.0.1:0 and a temporary SQLite store, spoken to
 * with libcurl. Covers what clients rely on: 401/403 with problem+json,
 * 404 and 405 (with Allow), 413 for bodies over 1 MiB (announced or
 * chunked), 400 naming the body for malformed JSON, health probes, the
 * worker protocol (register, heartbeat, claim, log, complete, drain), a
 * claim that waits and is woken the moment a run appears, 200 waiting
 * claims served by a 4-thread pool without one thread each, and a stop
 * that answers parked claims instead of hanging them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/id.h"
#include "common/xalloc.h"
#include "core/jobspec.h"
#include "server/auth.h"
#include "server/http.h"
#include "server/server.h"
#include "store/store.h"

#define POOL 4
#define MS   INT64_C(1000000) /* ns */

struct fixture {
    char dir[64];
    char url[64];
    server_t *srv;
    char *admin;  /* admin token */
    store_t *st2; /* a second handle on the same store, for tokens */
    char worker_tok[AUTH_TOKEN_BUFLEN];
    char viewer_tok[AUTH_TOKEN_BUFLEN];
};

static struct fixture *fx;

/* ---- a small HTTP client ------------------------------------------------ */

typedef struct resp {
    long status;
    buf_t body;
    buf_t hdrs;
    json_t *json;
} resp_t;

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
    buf_append(arg, p, sz * n);
    return sz * n;
}

static void resp_free(resp_t *r)
{
    buf_free(&r->body);
    buf_free(&r->hdrs);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

/* Value of response header name (new string), or NULL. */
static char *resp_header(const resp_t *r, const char *name)
{
    size_t n = strlen(name);
    const char *p = r->hdrs.data;
    while (p && *p) {
        const char *eol = strstr(p, "\r\n");
        if (!eol) break;
        if ((size_t)(eol - p) > n && !strncasecmp(p, name, n) && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ')
                v++;
            return xstrndup(v, (size_t)(eol - v));
        }
        p = eol + 2;
    }
    return NULL;
}

/* Prepares an easy handle; the caller performs it (alone or in a multi). */
static CURL *prepare(const char *method, const char *path, const char *token, const char *body,
                     long len, resp_t *r, struct curl_slist **hl)
{
    CURL *e = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "%s%s", fx->url, path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &r->hdrs);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    *hl = curl_slist_append(*hl, "Expect:");
    if (token) {
        char h[128];
        snprintf(h, sizeof h, "Authorization: Bearer %s", token);
        *hl = curl_slist_append(*hl, h);
    }
    if (body) {
        *hl = curl_slist_append(*hl, "Content-Type: application/json");
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, len < 0 ? (long)strlen(body) : len);
    }
    if (strcmp(method, "GET") != 0 && !(body && !strcmp(method, "POST")))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hl);
    return e;
}

static void finish(CURL *e, resp_t *r)
{
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->body.len) r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
}

/* Performs one request; body NULL = none; len -1 = strlen. */
static void req(resp_t *r, const char *method, const char *path, const char *token,
                const char *body, long len)
{
    struct curl_slist *hl = NULL;
    memset(r, 0, sizeof *r);
    CURL *e = prepare(method, path, token, body, len, r, &hl);
    CURLcode cc = curl_easy_perform(e);
    assert_int_equal(cc, CURLE_OK);
    finish(e, r);
    curl_easy_cleanup(e);
    curl_slist_free_all(hl);
}

static void assert_problem(const resp_t *r, long status, const char *field)
{
    assert_int_equal(r->status, status);
    char *ct = resp_header(r, "Content-Type");
    assert_non_null(ct);
    assert_string_equal(ct, "application/problem+json");
    free(ct);
    assert_non_null(r->json);
    assert_string_equal(json_string_value(json_object_get(r->json, "type")), "about:blank");
    assert_int_equal(json_integer_value(json_object_get(r->json, "status")), status);
    assert_non_null(json_string_value(json_object_get(r->json, "title")));
    assert_non_null(json_string_value(json_object_get(r->json, "detail")));
    if (field) assert_string_equal(json_string_value(json_object_get(r->json, "field")), field);
}

static int count_threads(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    if (!d) return -1;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Registers a worker; writes its id into id. */
static void register_worker(const char *name, char id[SKED_ID_LEN])
{
    resp_t r;
    char body[256];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"host\":\"h\",\"slots\":4}", name);
    /* With the worker token, as `sked worker` does: the worker is then
     * bound to it (the admin token may act for any worker). A second
     * fixture (test_stop_answers_waiters) has only its admin token. */
    req(&r, "POST", "/v1/workers", fx->worker_tok[0] ? fx->worker_tok : fx->admin, body, -1);
    assert_int_equal(r.status, 201);
    const char *s = json_string_value(json_object_get(r.json, "id"));
    assert_non_null(s);
    assert_true(id_valid(s));
    snprintf(id, SKED_ID_LEN, "%s", s);
    resp_free(&r);
}

/* Creates a job that runs once, now (no schedules), through the API. */
static void submit_job(const char *name)
{
    resp_t r;
    char body[256];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"command\":[\"/bin/true\"]}", name);
    req(&r, "POST", "/v1/jobs", fx->admin, body, -1);
    assert_int_equal(r.status, 201);
    resp_free(&r);
}

/* ---- fixture ------------------------------------------------------------ */

static int start_server(struct fixture *f)
{
    server_config_t cfg;
    char store[128];
    memset(&cfg, 0, sizeof cfg);
    snprintf(store, sizeof store, "sqlite:%s/sked.db", f->dir);
    cfg.listen = "127.0.0.1:0";
    cfg.store_url = store;
    cfg.threads = POOL;
    /* Claims here are never confirmed (no worker starts anything): a
     * confirm window as long as the default lease keeps a claimed run with
     * its claimer for the longest wait these tests make. */
    cfg.confirm_ms = SERVER_DEFAULT_LEASE_MS;
    if (server_start(&cfg, &f->srv, &f->admin) != 0) return -1;
    snprintf(f->url, sizeof f->url, "%s", server_url(f->srv));
    return 0;
}

static int group_setup(void **state)
{
    char url[128], *err = NULL;
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fx = xcalloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sked-test-http-XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    if (start_server(fx) != 0 || !fx->admin) return -1;
    snprintf(url, sizeof url, "sqlite:%s/sked.db", fx->dir);
    if (store_open(url, &fx->st2, &err) != 0) {
        fprintf(stderr, "store_open: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    int64_t now = clock_now_ms();
    if (auth_token_create(fx->st2, "w1", ROLE_WORKER, "", -1, now, fx->worker_tok, NULL) != 0 ||
        auth_token_create(fx->st2, "v1", ROLE_VIEWER, "", -1, now, fx->viewer_tok, NULL) != 0)
        return -1;
    return 0;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[512];
    if (!d) return;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int group_teardown(void **state)
{
    (void)state;
    server_stop(fx->srv);
    store_close(fx->st2);
    rm_dir(fx->dir);
    free(fx->admin);
    free(fx);
    curl_global_cleanup();
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_bootstrap_token_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/admin.token", fx->dir);
    char *t = auth_token_file_read(path);
    assert_non_null(t);
    assert_string_equal(t, fx->admin);
    assert_int_equal(strncmp(t, "sked_", 5), 0);
    assert_int_equal(strlen(t), AUTH_TOKEN_BUFLEN - 1);
    free(t);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_health(void **state)
{
    resp_t r;
    (void)state;
    req(&r, "GET", "/healthz", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ok");
    resp_free(&r);
    req(&r, "GET", "/readyz", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ready");
    char *ct = resp_header(&r, "Content-Type");
    assert_string_equal(ct, "application/json");
    free(ct);
    resp_free(&r);
}

static void test_unauthorized(void **state)
{
    resp_t r;
    (void)state;
    req(&r, "GET", "/v1/workers", NULL, NULL, 0);
    assert_problem(&r, 401, "header.Authorization");
    char *www = resp_header(&r, "WWW-Authenticate");
    assert_non_null(www);
    assert_int_equal(strncmp(www, "Bearer", 6), 0);
    free(www);
    resp_free(&r);

    /* Well-formed but unknown, malformed, and another scheme. */
    char fake[AUTH_TOKEN_BUFLEN];
    auth_token_generate(fake);
    const char *bad[] = {fake, "sked_short", "x"};
    for (size_t i = 0; i < 3; i++) {
        req(&r, "GET", "/v1/workers", bad[i], NULL, 0);
        assert_problem(&r, 401, "header.Authorization");
        www = resp_header(&r, "WWW-Authenticate");
        assert_non_null(www);
        free(www);
        resp_free(&r);
    }
    /* A rejected write changes nothing: the worker does not appear. */
    req(&r, "POST", "/v1/workers", fake, "{\"name\":\"sneaky\"}", -1);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    req(&r, "GET", "/v1/workers", fx->admin, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body.data, "sneaky"));
    resp_free(&r);
}

static void test_forbidden(void **state)
{
    resp_t r;
    char id[SKED_ID_LEN];
    (void)state;
    /* A viewer may read but not use the worker protocol. */
    req(&r, "GET", "/v1/workers", fx->viewer_tok, NULL, 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    req(&r, "POST", "/v1/workers", fx->viewer_tok, "{\"name\":\"v\"}", -1);
    assert_problem(&r, 403, NULL);
    resp_free(&r);
    /* A worker token has the worker protocol only. */
    req(&r, "GET", "/v1/workers", fx->worker_tok, NULL, 0);
    assert_problem(&r, 403, NULL);
    resp_free(&r);
    req(&r, "POST", "/v1/workers", fx->worker_tok, "{\"name\":\"wt\"}", -1);
    assert_int_equal(r.status, 201);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "id")));
    resp_free(&r);
    char path[128];
    /* A worker drains itself on SIGTERM, so drain is part of its protocol. */
    snprintf(path, sizeof path, "/v1/workers/%s/drain", id);
    req(&r, "POST", path, fx->worker_tok, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "state")), "draining");
    resp_free(&r);
}

static void test_not_found(void **state)
{
    resp_t r;
    (void)state;
    /* "/" is the dashboard (api_ui.c); nothing else of it is a route. */
    const char *paths[] = {"/nope",   "/v1/jobs/a/b/c/d", "/index.html",
                           "/assets", "/v1/workers/",     "//v1/workers"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        req(&r, "GET", paths[i], fx->admin, NULL, 0);
        assert_problem(&r, 404, NULL);
        resp_free(&r);
    }
    /* Unknown routes answer 404 even without a token. */
    req(&r, "GET", "/v2/anything", NULL, NULL, 0);
    assert_problem(&r, 404, NULL);
    resp_free(&r);
}

static void test_method_not_allowed(void **state)
{
    resp_t r;
    (void)state;
    req(&r, "DELETE", "/v1/workers", fx->admin, NULL, 0);
    assert_problem(&r, 405, NULL);
    char *allow = resp_header(&r, "Allow");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "GET"));
    assert_non_null(strstr(allow, "POST"));
    free(allow);
    resp_free(&r);
    req(&r, "PUT", "/healthz", NULL, NULL, 0);
    assert_problem(&r, 405, NULL);
    allow = resp_header(&r, "Allow");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "GET"));
    free(allow);
    resp_free(&r);
}

struct feed {
    size_t left;
};

static size_t feed_read(char *buf, size_t sz, size_t n, void *arg)
{
    struct feed *f = arg;
    size_t k = sz * n < f->left ? sz * n : f->left;
    memset(buf, ' ', k);
    f->left -= k;
    return k;
}

static void test_too_big(void **state)
{
    resp_t r;
    (void)state;
    /* Announced by Content-Length: refused before the body is read. */
    size_t n = HTTP_BODY_MAX + 1;
    char *big = xmalloc(n);
    memset(big, ' ', n);
    req(&r, "POST", "/v1/workers", fx->admin, big, (long)n);
    assert_problem(&r, 413, NULL);
    resp_free(&r);
    /* Exactly the limit is still read (and then judged as JSON). */
    big[0] = '{';
    memcpy(big + HTTP_BODY_MAX - 1, "}", 1);
    req(&r, "POST", "/v1/workers", fx->admin, big, HTTP_BODY_MAX);
    assert_problem(&r, 400, "name");
    resp_free(&r);
    free(big);

    /* Chunked: no size announced, caught while reading. */
    struct curl_slist *hl = NULL;
    struct feed f = {.left = HTTP_BODY_MAX + 200000};
    memset(&r, 0, sizeof r);
    CURL *e = prepare("POST", "/v1/workers", fx->admin, NULL, 0, &r, &hl);
    hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
    hl = curl_slist_append(hl, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, feed_read);
    curl_easy_setopt(e, CURLOPT_READDATA, &f);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    finish(e, &r);
    curl_easy_cleanup(e);
    curl_slist_free_all(hl);
    assert_problem(&r, 413, "body");
    resp_free(&r);
}

static void test_bad_json(void **state)
{
    resp_t r;
    (void)state;
    req(&r, "POST", "/v1/workers", fx->admin, "{\"name\": ", -1);
    assert_problem(&r, 400, "body");
    assert_non_null(strstr(json_string_value(json_object_get(r.json, "detail")), "malformed"));
    resp_free(&r);
    req(&r, "POST", "/v1/workers", fx->admin, "[1,2]", -1);
    assert_problem(&r, 400, "body");
    resp_free(&r);
    req(&r, "POST", "/v1/workers", fx->admin, "{\"name\":\"a\",\"name\":\"b\"}", -1);
    assert_problem(&r, 400, "body");
    resp_free(&r);
    /* Bytes that are not UTF-8 and embedded NULs never crash it. */
    req(&r, "POST", "/v1/workers", fx->admin, "{\"name\":\"\xff\xfe\"}", -1);
    assert_problem(&r, 400, "body");
    resp_free(&r);
    req(&r, "POST", "/v1/workers", fx->admin, "{\"name\":\"a\0b\"}", 14);
    assert_problem(&r, 400, "body");
    resp_free(&r);
    req(&r, "POST", "/v1/workers", fx->admin, "{\"name\":\"x\",\"bogus\":1}", -1);
    assert_problem(&r, 400, "bogus");
    resp_free(&r);
}

static void test_worker_protocol(void **state)
{
    resp_t r;
    char id[SKED_ID_LEN], path[256], body[256];
    (void)state;
    register_worker("proto", id);

    /* Registration answers lease and heartbeat interval. */
    req(&r, "POST", "/v1/workers", fx->admin,
        "{\"name\":\"proto2\",\"queues\":[\"q1\",\"q2\"],\"labels\":{\"z\":\"1\",\"a\":\"2\"}}",
        -1);
    assert_int_equal(r.status, 201);
    assert_string_equal(json_string_value(json_object_get(r.json, "lease")), "10s");
    assert_string_equal(json_string_value(json_object_get(r.json, "heartbeat_interval")), "2s");
    resp_free(&r);

    req(&r, "POST", "/v1/workers", fx->admin, "{\"name\":\"x\",\"slots\":0}", -1);
    assert_problem(&r, 400, "slots");
    resp_free(&r);
    req(&r, "POST", "/v1/workers", fx->admin, "{\"name\":\"x\",\"queues\":[\"a,b\"]}", -1);
    assert_problem(&r, 400, "queues[0]");
    resp_free(&r);

    /* Heartbeat: known worker, nothing held. */
    snprintf(path, sizeof path, "/v1/workers/%s/heartbeat", id);
    req(&r, "POST", path, fx->admin, "{\"runs\":[]}", -1);
    assert_int_equal(r.status, 200);
    assert_true(json_is_false(json_object_get(r.json, "draining")));
    assert_int_equal(json_array_size(json_object_get(r.json, "stop")), 0);
    resp_free(&r);
    req(&r, "POST", path, fx->admin, "{\"runs\":[{\"run_id\":\"nope\",\"fence\":1}]}", -1);
    assert_problem(&r, 400, "runs[0].run_id");
    resp_free(&r);

    /* Unknown worker (well-formed id): 404, so it registers again. */
    char ghost[SKED_ID_LEN];
    id_new("wrk", clock_now_ms(), ghost);
    snprintf(path, sizeof path, "/v1/workers/%s/heartbeat", ghost);
    req(&r, "POST", path, fx->admin, "{}", -1);
    assert_problem(&r, 404, "path.id");
    resp_free(&r);

    /* Claim validation. */
    snprintf(path, sizeof path, "/v1/workers/%s/claim", id);
    req(&r, "POST", path, fx->admin, "{\"max\":0}", -1);
    assert_problem(&r, 400, "max");
    resp_free(&r);
    req(&r, "POST", path, fx->admin, "{\"max\":1,\"wait\":\"1h\"}", -1);
    assert_problem(&r, 400, "wait");
    resp_free(&r);
    req(&r, "POST", path, fx->admin, "{\"max\":1,\"wait\":12}", -1);
    assert_problem(&r, 400, "wait");
    resp_free(&r);

    /* Nothing claimable and no wait: an immediate empty answer. */
    req(&r, "POST", path, fx->admin, "{\"max\":2,\"wait\":\"0s\"}", -1);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "runs")), 0);
    resp_free(&r);

    /* A short wait with nothing arriving ends empty after the wait. */
    int64_t t0 = clock_mono_ns();
    req(&r, "POST", path, fx->admin, "{\"max\":1,\"wait\":\"300ms\"}", -1);
    int64_t took = clock_mono_ns() - t0;
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "runs")), 0);
    assert_true(took >= 250 * MS);
    assert_true(took < 5000 * MS);
    resp_free(&r);

    /* A run to work on: claim it, ship log, complete it. */
    submit_job("proto-job");
    req(&r, "POST", path, fx->admin, "{\"max\":4,\"wait\":\"5s\"}", -1);
    assert_int_equal(r.status, 200);
    json_t *runs = json_object_get(r.json, "runs");
    assert_int_equal(json_array_size(runs), 1);
    json_t *run = json_array_get(runs, 0);
    char run_id[SKED_ID_LEN];
    snprintf(run_id, sizeof run_id, "%s", json_string_value(json_object_get(run, "run_id")));
    long long fence = json_integer_value(json_object_get(run, "fence"));
    long long attempt = json_integer_value(json_object_get(run, "attempt"));
    assert_string_equal(json_string_value(json_object_get(run, "job_name")), "proto-job");
    assert_int_equal(attempt, 1);
    assert_true(json_is_object(json_object_get(run, "spec")));
    assert_non_null(json_string_value(json_object_get(run, "lease_expires_at")));
    resp_free(&r);

    /* The heartbeat renews it and asks to stop nothing. */
    snprintf(path, sizeof path, "/v1/workers/%s/heartbeat", id);
    snprintf(body, sizeof body, "{\"runs\":[{\"run_id\":\"%s\",\"fence\":%lld}]}", run_id, fence);
    req(&r, "POST", path, fx->admin, body, -1);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "stop")), 0);
    resp_free(&r);

    /* Log: good fence 204; stale fence 409; missing fence 400. */
    snprintf(path, sizeof path, "/v1/runs/%s/attempts/%lld/log?fence=%lld&seq=0&stream=1", run_id,
             attempt, fence);
    req(&r, "POST", path, fx->worker_tok, "hello\n", -1);
    assert_int_equal(r.status, 204);
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/runs/%s/attempts/%lld/log?fence=%lld&seq=1", run_id, attempt,
             fence + 1000);
    req(&r, "POST", path, fx->worker_tok, "late\n", -1);
    assert_problem(&r, 409, "query.fence");
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/runs/%s/attempts/%lld/log?seq=1", run_id, attempt);
    req(&r, "POST", path, fx->worker_tok, "x", -1);
    assert_problem(&r, 400, "query.fence");
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/runs/%s/attempts/%lld/log?fence=%lld&seq=1&stream=3", run_id,
             attempt, fence);
    req(&r, "POST", path, fx->worker_tok, "x", -1);
    assert_problem(&r, 400, "query.stream");
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/runs/%s/attempts/zero/log?fence=1&seq=1", run_id);
    req(&r, "POST", path, fx->worker_tok, "x", -1);
    assert_problem(&r, 400, "path.n");
    resp_free(&r);

    /* Complete: stale 409, bad outcome 400, good 200 with the state, repeat 200. */
    snprintf(path, sizeof path, "/v1/runs/%s/attempts/%lld/complete", run_id, attempt);
    snprintf(body, sizeof body, "{\"fence\":%lld,\"outcome\":\"succeeded\",\"exit_code\":0}",
             fence + 1000);
    req(&r, "POST", path, fx->worker_tok, body, -1);
    assert_problem(&r, 409, "fence");
    resp_free(&r);
    snprintf(body, sizeof body, "{\"fence\":%lld,\"outcome\":\"lost\"}", fence);
    req(&r, "POST", path, fx->worker_tok, body, -1);
    assert_problem(&r, 400, "outcome");
    resp_free(&r);
    snprintf(body, sizeof body,
             "{\"fence\":%lld,\"outcome\":\"succeeded\",\"exit_code\":0,\"signal\":null,"
             "\"reason\":null}",
             fence);
    for (int i = 0; i < 2; i++) {
        req(&r, "POST", path, fx->worker_tok, body, -1);
        assert_int_equal(r.status, 200);
        assert_string_equal(json_string_value(json_object_get(r.json, "state")), "succeeded");
        resp_free(&r);
    }

    /* The pool shows the worker; drain marks it. */
    req(&r, "GET", "/v1/workers", fx->admin, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_true(json_array_size(json_object_get(r.json, "items")) >= 2);
    assert_non_null(strstr(r.body.data, id));
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/workers/%s/drain", id);
    req(&r, "POST", path, fx->admin, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "state")), "draining");
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/workers/%s/heartbeat", id);
    req(&r, "POST", path, fx->admin, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_true(json_is_true(json_object_get(r.json, "draining")));
    resp_free(&r);
    req(&r, "POST", "/v1/workers/garbage/drain", fx->admin, NULL, 0);
    assert_problem(&r, 404, "path.id");
    resp_free(&r);
}

/* A multi-handle batch of claims, driven from this one thread. */
struct batch {
    CURLM *m;
    size_t n;
    CURL **e;
    resp_t *r;
    struct curl_slist **hl;
    int64_t *done_ns; /* 0 until complete */
    size_t ndone;
};

static void batch_start(struct batch *b, size_t n, const char *path, const char *body)
{
    memset(b, 0, sizeof *b);
    b->m = curl_multi_init();
    b->n = n;
    b->e = xcalloc(n, sizeof *b->e);
    b->r = xcalloc(n, sizeof *b->r);
    b->hl = xcalloc(n, sizeof *b->hl);
    b->done_ns = xcalloc(n, sizeof *b->done_ns);
    for (size_t i = 0; i < n; i++) {
        b->e[i] = prepare("POST", path, fx->admin, body, -1, &b->r[i], &b->hl[i]);
        curl_easy_setopt(b->e[i], CURLOPT_PRIVATE, (void *)(uintptr_t)i);
        curl_multi_add_handle(b->m, b->e[i]);
    }
}

/* Drives the batch for up to ms; returns the number complete so far. */
static size_t batch_drive(struct batch *b, int ms)
{
    int64_t until = clock_mono_ns() + ms * MS;
    do {
        int running = 0, left = 0;
        curl_multi_perform(b->m, &running);
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(b->m, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            void *p = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
            size_t i = (size_t)(uintptr_t)p;
            assert_int_equal(msg->data.result, CURLE_OK);
            finish(b->e[i], &b->r[i]);
            b->done_ns[i] = clock_mono_ns();
            b->ndone++;
        }
        if (b->ndone == b->n) break;
        curl_multi_poll(b->m, NULL, 0, 50, NULL);
    } while (clock_mono_ns() < until);
    return b->ndone;
}

/* True once every request of the batch has been sent in full. */
static bool batch_sent(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        long sent = 0;
        curl_easy_getinfo(b->e[i], CURLINFO_REQUEST_SIZE, &sent);
        if (sent <= 0) return false;
    }
    return true;
}

static void batch_free(struct batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        curl_multi_remove_handle(b->m, b->e[i]);
        curl_easy_cleanup(b->e[i]);
        curl_slist_free_all(b->hl[i]);
        resp_free(&b->r[i]);
    }
    curl_multi_cleanup(b->m);
    free(b->e);
    free(b->r);
    free(b->hl);
    free(b->done_ns);
}

/* Counts the runs in the answers; *which = index of the last with runs. */
static size_t batch_runs(struct batch *b, size_t *which)
{
    size_t total = 0;
    for (size_t i = 0; i < b->n; i++) {
        assert_int_equal(b->r[i].status, 200);
        assert_non_null(b->r[i].json);
        size_t k = json_array_size(json_object_get(b->r[i].json, "runs"));
        if (k) *which = i;
        total += k;
    }
    return total;
}

static void test_claim_is_woken(void **state)
{
    char id[SKED_ID_LEN], path[128];
    struct batch b;
    size_t which = 0;
    (void)state;
    register_worker("waker", id);
    snprintf(path, sizeof path, "/v1/workers/%s/claim", id);
    batch_start(&b, 1, path, "{\"max\":1,\"wait\":\"20s\"}");
    /* With nothing claimable the claim must not answer. */
    assert_int_equal(batch_drive(&b, 300), 0);
    assert_true(batch_sent(&b));

    int64_t t0 = clock_mono_ns();
    submit_job("wake-me");
    assert_int_equal(batch_drive(&b, 10000), 1);
    assert_true(b.done_ns[0] - t0 < 3000 * MS); /* woken, not timed out */
    assert_int_equal(batch_runs(&b, &which), 1);
    json_t *run = json_array_get(json_object_get(b.r[0].json, "runs"), 0);
    assert_string_equal(json_string_value(json_object_get(run, "job_name")), "wake-me");
    batch_free(&b);
}

static void wake_server(void *arg)
{
    server_wake(arg);
}

/* Creates a run-now job through a second store handle, the way another
 * server sharing the store would: the server learns of it only through
 * server_wake (here wired to this handle's notify hook). */
static void store_job_now(store_t *st, const char *name)
{
    char doc[256];
    jobspec_t spec;
    jobspec_error_t jerr;
    store_job_t job;
    memset(&spec, 0, sizeof spec);
    memset(&job, 0, sizeof job);
    snprintf(doc, sizeof doc, "{\"name\":\"%s\",\"command\":[\"/bin/true\"]}", name);
    json_t *j = json_loads(doc, 0, NULL);
    assert_non_null(j);
    assert_int_equal(jobspec_parse(j, &spec, &jerr), 0);
    store_job_from_spec(&job, &spec);
    job.ns = xstrdup("default");
    job.owner = xstrdup("test");
    json_t *canon = jobspec_to_json(&spec);
    job.spec_json = json_dumps(canon, JSON_COMPACT);
    assert_int_equal(store_job_create(st, &job, NULL, 0, true, NULL, NULL, clock_now_ms()), 0);
    json_decref(canon);
    json_decref(j);
    store_job_clear(&job);
    jobspec_free(&spec);
}

static void test_claim_woken_by_server_wake(void **state)
{
    char id[SKED_ID_LEN], path[128];
    struct batch b;
    size_t which = 0;
    (void)state;
    register_worker("remote-waker", id);
    snprintf(path, sizeof path, "/v1/workers/%s/claim", id);
    batch_start(&b, 2, path, "{\"max\":1,\"wait\":\"20s\"}");
    assert_int_equal(batch_drive(&b, 300), 0);
    assert_true(batch_sent(&b));

    store_set_notify(fx->st2, wake_server, fx->srv);
    int64_t t0 = clock_mono_ns();
    store_job_now(fx->st2, "remote-job");
    /* One waiter gets the run at once; the other goes back to waiting. */
    assert_int_equal(batch_drive(&b, 3000), 1);
    store_set_notify(fx->st2, NULL, NULL);
    for (size_t i = 0; i < b.n; i++)
        if (b.done_ns[i]) {
            assert_true(b.done_ns[i] - t0 < 2000 * MS);
            json_t *run = json_array_get(json_object_get(b.r[i].json, "runs"), 0);
            assert_string_equal(json_string_value(json_object_get(run, "job_name")), "remote-job");
            which = i;
        }
    /* server_wake alone, with nothing new, must not make it answer early. */
    server_wake(fx->srv);
    assert_int_equal(batch_drive(&b, 300), 1);
    /* Another run for the one still waiting. */
    store_set_notify(fx->st2, wake_server, fx->srv);
    store_job_now(fx->st2, "remote-job-2");
    store_set_notify(fx->st2, NULL, NULL);
    assert_int_equal(batch_drive(&b, 3000), 2);
    assert_int_equal(batch_runs(&b, &which), 2);
    batch_free(&b);
}

static void test_many_waiters_few_threads(void **state)
{
    enum { N = 200 };
    char id[SKED_ID_LEN], path[128];
    struct batch b;
    size_t which = 0;
    (void)state;
    register_worker("herd", id);
    snprintf(path, sizeof path, "/v1/workers/%s/claim", id);
    int before = count_threads();
    assert_true(before > 0);

    int64_t t0 = clock_mono_ns();
    batch_start(&b, N, path, "{\"max\":1,\"wait\":\"4s\"}");
    for (int i = 0; i < 100 && !batch_sent(&b); i++)
        batch_drive(&b, 20);
    assert_true(batch_sent(&b));
    /* Let the server read them all; none may answer: nothing is claimable. */
    assert_int_equal(batch_drive(&b, 500), 0);
    int during = count_threads();
    assert_true(during <= before + 4);
    assert_true(during < N / 4);

    /* One run appears: exactly one waiter gets it, at once. */
    int64_t t1 = clock_mono_ns();
    submit_job("herd-job");
    assert_int_equal(batch_drive(&b, 2000) >= 1, 1);
    assert_true(count_threads() <= before + 4);

    /* The rest end with no runs when their wait ends, all together: a
     * thread per waiter on a 4-thread pool would need 50 rounds of 4 s. */
    assert_int_equal(batch_drive(&b, 10000), N);
    assert_int_equal(batch_runs(&b, &which), 1);
    assert_true(b.done_ns[which] - t1 < 1500 * MS);
    for (size_t i = 0; i < N; i++)
        assert_true(b.done_ns[i] - t0 < 8000 * MS);
    batch_free(&b);
}

static void test_claim_waits_for_materialised_run(void **state)
{
    /* A run due in the future is claimable at its not_before without any
     * wake-up: the claim's deadline is cut to that instant. Use an "at"
     * schedule two seconds ahead; the scheduler materialises it 1 s ahead. */
    char id[SKED_ID_LEN], path[128], body[256], at[SKED_RFC3339_LEN];
    struct batch b;
    size_t which = 0;
    resp_t r;
    (void)state;
    /* Its own queue: runs other tests claimed and never confirmed come back
     * to "default" (uncharged) while this one waits, and must not be what
     * it gets. */
    req(&r, "POST", "/v1/workers", fx->worker_tok,
        "{\"name\":\"punctual\",\"queues\":[\"punctual\"]}", -1);
    assert_int_equal(r.status, 201);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.json, "id")));
    resp_free(&r);
    int64_t due = clock_now_ms() + 2500;
    clock_format_rfc3339(due, at, sizeof at);
    snprintf(body, sizeof body,
             "{\"name\":\"at-job\",\"queue\":\"punctual\",\"command\":[\"/bin/true\"],"
             "\"schedules\":[{\"at\":\"%s\"}]}",
             at);
    req(&r, "POST", "/v1/jobs", fx->admin, body, -1);
    assert_int_equal(r.status, 201);
    resp_free(&r);
    snprintf(path, sizeof path, "/v1/workers/%s/claim", id);
    batch_start(&b, 1, path, "{\"max\":1,\"wait\":\"10s\"}");
    assert_int_equal(batch_drive(&b, 12000), 1);
    int64_t got_ms = clock_now_ms();
    assert_int_equal(batch_runs(&b, &which), 1);
    assert_true(got_ms >= due - 50);  /* not before it was due */
    assert_true(got_ms < due + 1500); /* and promptly after */
    batch_free(&b);
}

static void test_stop_answers_waiters(void **state)
{
    /* A second server: stop it while a claim waits; the claim answers. */
    struct fixture *saved = fx, f2;
    char id[SKED_ID_LEN], path[128];
    struct batch b;
    size_t which = 0;
    (void)state;
    memset(&f2, 0, sizeof f2);
    snprintf(f2.dir, sizeof f2.dir, "/tmp/sked-test-http-XXXXXX");
    assert_non_null(mkdtemp(f2.dir));
    assert_int_equal(start_server(&f2), 0);
    fx = &f2;
    register_worker("stopper", id);
    snprintf(path, sizeof path, "/v1/workers/%s/claim", id);
    batch_start(&b, 3, path, "{\"max\":1,\"wait\":\"30s\"}");
    assert_int_equal(batch_drive(&b, 300), 0);
    assert_true(batch_sent(&b));
    int64_t t0 = clock_mono_ns();
    server_stop(f2.srv);
    assert_int_equal(batch_drive(&b, 5000), 3);
    assert_int_equal(batch_runs(&b, &which), 0);
    assert_true(clock_mono_ns() - t0 < 6000 * MS);
    batch_free(&b);
    fx = saved;
    rm_dir(f2.dir);
    free(f2.admin);
}

/* Sends raw bytes on a fresh connection and reads whatever comes back
 * until the server answers or closes (bounded by a receive timeout). */
static void raw_exchange(const char *data, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    const char *colon = strrchr(fx->url, ':');
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
    (void)w;
    shutdown(fd, SHUT_WR);
    char buf[4096];
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    }
    close(fd);
}

static void test_garbage_input(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    const char *plain[] = {
        "GARBAGE\r\n\r\n",
        "\x00\x01\x02\xff\xfe\r\n\r\n",
        "GET /v1/workers/%ZZ/heartbeat HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v1/workers/%00/claim HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
        "POST /v1/workers HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        "POST /v1/workers HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST /v1/workers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET /healthz?a=%ff&b HTTP/1.0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        raw_exchange(plain[i], strlen(plain[i]));
    /* A huge header and a path of many segments. */
    buf_puts(&b, "GET /v1/workers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sked_");
    for (int i = 0; i < 100000; i++)
        buf_puts(&b, "A");
    buf_puts(&b, "\r\n\r\n");
    raw_exchange(b.data, b.len);
    buf_reset(&b);
    buf_puts(&b, "GET ");
    for (int i = 0; i < 200; i++)
        buf_puts(&b, "/x");
    buf_puts(&b, " HTTP/1.1\r\nHost: x\r\n\r\n");
    raw_exchange(b.data, b.len);
    buf_free(&b);

    /* Still serving, and still authenticating. */
    resp_t r;
    req(&r, "GET", "/healthz", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    req(&r, "GET", "/v1/workers/%ZZ/x", fx->admin, NULL, 0);
    assert_problem(&r, 404, NULL);
    resp_free(&r);
    req(&r, "POST", "/v1/workers/%ZZ/heartbeat", fx->admin, "{}", -1);
    assert_problem(&r, 404, "path.id");
    resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bootstrap_token_file),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_unauthorized),
        cmocka_unit_test(test_forbidden),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_garbage_input),
        cmocka_unit_test(test_worker_protocol),
        cmocka_unit_test(test_claim_is_woken),
        cmocka_unit_test(test_claim_woken_by_server_wake),
        cmocka_unit_test(test_many_waiters_few_threads),
        cmocka_unit_test(test_claim_waits_for_materialised_run),
        cmocka_unit_test(test_stop_answers_waiters),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
