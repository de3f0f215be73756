/*
 * HTTPS at the C level: a server started with server_start() and a
 * certificate made by `openssl` in a temp dir (a private CA and a server
 * certificate for 127.0.0.1 signed by it), spoken to with the httpc client
 * the worker and CLI use. Covers what they rely on: the URL says https://,
 * a client trusting the CA (per client or as the process default) is
 * served, so is one pinning the server's own certificate (what `sked dev`
 * gives its local worker), a client with only the system CAs or with
 * another CA is refused by verification, plain HTTP to the TLS port gets no
 * answer, and a certificate without its key is refused at start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/httpc.h"
#include "common/xalloc.h"
#include "server/server.h"

struct fixture {
    char dir[64];
    char *ca, *other_ca, *cert, *key;
    server_t *srv;
};

static struct fixture *fx;

static char *in_dir(const char *name)
{
    return xasprintf("%s/%s", fx->dir, name);
}

/* Runs a shell command in the fixture's directory; 0 on success. */
static int sh(const char *cmd)
{
    char *full = xasprintf("cd '%s' && %s >/dev/null 2>&1", fx->dir, cmd);
    int rc = system(full);
    free(full);
    return rc;
}

static int setup(void **state)
{
    fx = xcalloc(1, sizeof *fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/sked-test-tls-XXXXXX");
    if (!mkdtemp(fx->dir)) return -1;
    static const char *const cmds[] = {
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
        "-subj '/CN=sked unit CA' -addext basicConstraints=critical,CA:TRUE "
        "-addext keyUsage=critical,keyCertSign,cRLSign",
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem -days 2 "
        "-subj '/CN=another CA' -addext basicConstraints=critical,CA:TRUE",
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
        "-subj '/CN=localhost'",
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 2 -extfile ext.cnf",
    };
    char *ext = in_dir("ext.cnf");
    FILE *f = fopen(ext, "w");
    free(ext);
    if (!f) return -1;
    fputs("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n", f);
    fclose(f);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (sh(cmds[i]) != 0) {
            fprintf(stderr, "test_tls: failed: %s\n", cmds[i]);
            return -1;
        }
    fx->ca = in_dir("ca.pem");
    fx->other_ca = in_dir("other.pem");
    fx->cert = in_dir("server.pem");
    fx->key = in_dir("server.key");

    server_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    char *store = xasprintf("sqlite:%s/sked.db", fx->dir);
    cfg.listen = "127.0.0.1:0";
    cfg.store_url = store;
    cfg.threads = 2;
    cfg.tls_cert_file = fx->cert;
    cfg.tls_key_file = fx->key;
    int rc = server_start(&cfg, &fx->srv, NULL);
    free(store);
    return rc;
}

static int teardown(void **state)
{
    server_stop(fx->srv);
    sh("rm -f ca.* other.* server.* ext.cnf sked.db* admin.token");
    rmdir(fx->dir);
    free(fx->ca);
    free(fx->other_ca);
    free(fx->cert);
    free(fx->key);
    free(fx);
    return 0;
}

/* GET /healthz with c; returns httpc_do's code, *status the HTTP status. */
static int healthz(httpc_t *c, long *status, char *err, size_t errlen)
{
    httpc_resp_t r;
    int rc = httpc_do(c, "GET", "/healthz", NULL, NULL, 0, NULL, &r);
    *status = r.status;
    if (err) snprintf(err, errlen, "%s", r.errbuf);
    httpc_resp_clear(&r);
    return rc;
}

static void test_url_is_https(void **state)
{
    const char *url = server_url(fx->srv);
    assert_non_null(strstr(url, "https://127.0.0.1:"));
    assert_ptr_equal(strstr(url, "https://"), url);
}

static void test_trusted_ca_is_served(void **state)
{
    long status = 0;
    httpc_t *c = httpc_new(server_url(fx->srv), NULL);
    httpc_set_ca(c, fx->ca);
    assert_int_equal(healthz(c, &status, NULL, 0), 0);
    assert_int_equal(status, 200);
    httpc_free(c);

    /* The process-wide default, as `sked worker --ca` sets it. */
    httpc_set_default_ca(fx->ca);
    c = httpc_new(server_url(fx->srv), NULL);
    httpc_set_default_ca(NULL);
    assert_int_equal(healthz(c, &status, NULL, 0), 0);
    assert_int_equal(status, 200);
    httpc_free(c);
}

static void test_pinned_server_certificate_is_served(void **state)
{
    long status = 0;
    httpc_t *c = httpc_new(server_url(fx->srv), NULL);
    httpc_set_ca(c, fx->cert);
    assert_int_equal(healthz(c, &status, NULL, 0), 0);
    assert_int_equal(status, 200);
    httpc_free(c);
}

static void test_untrusted_certificate_is_refused(void **state)
{
    long status = 0;
    char err[256];
    /* The system's CAs only. */
    httpc_t *c = httpc_new(server_url(fx->srv), NULL);
    assert_true(healthz(c, &status, err, sizeof err) < 0);
    assert_int_equal(status, 0);
    assert_non_null(strstr(err, "certificate"));
    /* Another CA. */
    httpc_set_ca(c, fx->other_ca);
    assert_true(healthz(c, &status, err, sizeof err) < 0);
    assert_int_equal(status, 0);
    /* And back to trusting the right one on the same client. */
    httpc_set_ca(c, fx->ca);
    assert_int_equal(healthz(c, &status, NULL, 0), 0);
    assert_int_equal(status, 200);
    httpc_free(c);
}

static void test_plain_http_gets_no_answer(void **state)
{
    long status = 0;
    const char *url = server_url(fx->srv);
    char *plain = xasprintf("http://%s", url + strlen("https://"));
    httpc_t *c = httpc_new(plain, NULL);
    httpc_set_timeout_ms(c, 5000);
    assert_true(healthz(c, &status, NULL, 0) < 0);
    assert_int_equal(status, 0);
    httpc_free(c);
    free(plain);
}

static void test_cert_without_key_is_refused(void **state)
{
    server_config_t cfg;
    server_t *srv = NULL;
    memset(&cfg, 0, sizeof cfg);
    char *store = xasprintf("sqlite:%s/other.db", fx->dir);
    cfg.listen = "127.0.0.1:0";
    cfg.store_url = store;
    cfg.tls_cert_file = fx->cert;
    assert_int_equal(server_start(&cfg, &srv, NULL), SKED_EINVAL);
    assert_null(srv);
    /* A key where the certificate belongs. */
    cfg.tls_cert_file = fx->key;
    cfg.tls_key_file = fx->key;
    assert_int_equal(server_start(&cfg, &srv, NULL), SKED_EINVAL);
    assert_null(srv);
    /* Refused before the store was made. */
    char *db = in_dir("other.db");
    struct stat sb;
    assert_int_not_equal(stat(db, &sb), 0);
    free(db);
    free(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_is_https),
        cmocka_unit_test(test_trusted_ca_is_served),
        cmocka_unit_test(test_pinned_server_certificate_is_served),
        cmocka_unit_test(test_untrusted_certificate_is_refused),
        cmocka_unit_test(test_plain_http_gets_no_answer),
        cmocka_unit_test(test_cert_without_key_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
