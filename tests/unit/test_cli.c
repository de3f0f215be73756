/*
 * Unit tests of the CLI (src/cli/). The pure parts first: the table
 * printer, error texts, time and schedule formatting, token resolution
 * order, and the job documents `sked submit` and `sked jobs edit` build from
 * their arguments. Then the commands themselves against a scripted fake API
 * (libmicrohttpd on 127.0.0.1, port 0) that records each request and plays
 * back canned answers: paths, headers (Authorization, If-Match,
 * Idempotency-Key), bodies, output and exit statuses as scripts see them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/xalloc.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- helpers -------------------------------------------------------------- */

static void clear_env(void)
{
    unsetenv("SKED_SERVER");
    unsetenv("SKED_TOKEN");
    unsetenv("SKED_TOKEN_FILE");
}

static int setup_env(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

/* A mutable argv (getopt permutes it) from a NULL-terminated list. */
typedef struct argv_copy {
    int argc;
    char *argv[64];
} argv_copy_t;

static void argv_make(argv_copy_t *a, const char *const *words)
{
    a->argc = 0;
    while (words[a->argc]) {
        a->argv[a->argc] = xstrdup(words[a->argc]);
        a->argc++;
    }
    a->argv[a->argc] = NULL;
}

static void argv_free(argv_copy_t *a)
{
    for (int i = 0; i < a->argc; i++)
        free(a->argv[i]);
    a->argc = 0;
}

static char *slurp_fd(int fd)
{
    buf_t b = BUF_INIT;
    char tmp[4096];
    ssize_t n;
    lseek(fd, 0, SEEK_SET);
    buf_puts(&b, "");
    while ((n = read(fd, tmp, sizeof tmp)) > 0)
        buf_append(&b, tmp, (size_t)n);
    return buf_steal(&b);
}

/* Runs a command entry point with stdout and stderr captured. */
static int run_cmd(int (*fn)(int, char **), const char *const *words, char **out, char **err)
{
    argv_copy_t a;
    char out_path[] = "/tmp/test_cli_outXXXXXX", err_path[] = "/tmp/test_cli_errXXXXXX";
    int ofd = mkstemp(out_path), efd = mkstemp(err_path);
    assert_true(ofd >= 0 && efd >= 0);
    unlink(out_path);
    unlink(err_path);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(ofd, 1);
    dup2(efd, 2);
    argv_make(&a, words);
    int rc = fn(a.argc, a.argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    argv_free(&a);
    *out = slurp_fd(ofd);
    *err = slurp_fd(efd);
    close(ofd);
    close(efd);
    return rc;
}

/* --- table ---------------------------------------------------------------- */

static void test_table_aligns_columns(void **state)
{
    (void)state;
    cli_table_t *t = cli_table_new(3, "ID", "NAME", "STATE");
    cli_table_add(t, "job_1", "a-long-name", "active");
    cli_table_add(t, "job_22", NULL, "paused");
    char *s = cli_table_render(t);
    assert_string_equal(s, "ID      NAME         STATE\n"
                           "job_1   a-long-name  active\n"
                           "job_22  -            paused\n");
    free(s);
    cli_table_free(t);
}

static void test_table_counts_utf8_characters(void **state)
{
    (void)state;
    cli_table_t *t = cli_table_new(2, "NAME", "X");
    cli_table_add(t, "grüße", "1"); /* 5 characters, 7 bytes */
    cli_table_add(t, "abc", "2");
    char *s = cli_table_render(t);
    assert_string_equal(s, "NAME   X\n"
                           "grüße  1\n"
                           "abc    2\n");
    free(s);
    cli_table_free(t);
}

static void test_table_without_header(void **state)
{
    (void)state;
    cli_table_t *t = cli_table_new(2, NULL, NULL);
    cli_table_add(t, "ID:", "job_1");
    cli_table_add(t, "Version:", "3");
    char *s = cli_table_render(t);
    assert_string_equal(s, "ID:       job_1\n"
                           "Version:  3\n");
    free(s);
    cli_table_free(t);
    /* An empty headed table still prints its header. */
    t = cli_table_new(2, "A", "B");
    s = cli_table_render(t);
    assert_string_equal(s, "A  B\n");
    free(s);
    cli_table_free(t);
}

/* --- error texts ------------------------------------------------------------ */

static void test_error_text_problem_with_field(void **state)
{
    (void)state;
    const char *body = "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
                       "\"detail\":\"cron field 'hour': 24 is out of range 0-23\","
                       "\"field\":\"schedules[0].cron\"}";
    char *s = cli_error_text(400, body, strlen(body));
    assert_string_equal(s, "400 Bad Request: schedules[0].cron: cron field 'hour': 24 is out of "
                           "range 0-23");
    free(s);
}

static void test_error_text_without_problem(void **state)
{
    (void)state;
    const char *body = "{\"title\":\"Not Found\",\"status\":404,\"detail\":\"no job job_x\"}";
    char *s = cli_error_text(404, body, strlen(body));
    assert_string_equal(s, "404 Not Found: no job job_x");
    free(s);
    s = cli_error_text(503, NULL, 0);
    assert_string_equal(s, "503 Service Unavailable");
    free(s);
    /* A proxy's HTML page: its first line is the clue. */
    const char *html = "Bad gateway\nmore";
    s = cli_error_text(502, html, strlen(html));
    assert_string_equal(s, "502 Bad Gateway: Bad gateway");
    free(s);
}

static void test_transport_text_names_servers(void **state)
{
    (void)state;
    char *s = cli_transport_text("http://127.0.0.1:1", "Connection refused");
    assert_string_equal(s, "could not reach http://127.0.0.1:1: Connection refused");
    free(s);
    s = cli_transport_text("http://a:1,http://b:2", "timeout");
    assert_string_equal(s, "could not reach any server of http://a:1,http://b:2: timeout");
    free(s);
    s = cli_transport_text("http://a:1,http://b:2/", "http://b:2: Connection refused");
    assert_string_equal(s,
                        "could not reach any server of http://a:1,http://b:2/: Connection refused");
    free(s);
}

/* --- formatting ----------------------------------------------------------------- */

static void test_fmt_time_is_utc_seconds(void **state)
{
    (void)state;
    char out[SKED_RFC3339_LEN];
    json_t *v = json_string("2026-11-22T23:59:19.123Z");
    assert_string_equal(cli_fmt_time(v, out, sizeof out), "2026-11-22T23:59:19Z");
    json_decref(v);
    v = json_string("2026-03-29T03:00:00+02:00");
    assert_string_equal(cli_fmt_time(v, out, sizeof out), "2026-03-29T01:00:00Z");
    json_decref(v);
    v = json_null();
    assert_string_equal(cli_fmt_time(v, out, sizeof out), "-");
    assert_string_equal(cli_fmt_time(NULL, out, sizeof out), "-");
    json_decref(v);
}

static void test_fmt_schedule_and_next_fire(void **state)
{
    (void)state;
    char out[256], t[SKED_RFC3339_LEN];
    json_t *job = json_loads("{\"schedules\":["
                             "{\"cron\":\"0 2 * * *\",\"timezone\":\"Europe/Berlin\","
                             "\"next_fire_at\":\"2026-01-02T01:00:00Z\"},"
                             "{\"every\":\"15m\",\"next_fire_at\":\"2026-01-01T00:15:00.5Z\"},"
                             "{\"at\":\"2026-12-24T18:00:00Z\",\"next_fire_at\":null}]}",
                             0, NULL);
    assert_non_null(job);
    json_t *s = json_object_get(job, "schedules");
    assert_string_equal(cli_fmt_schedule(json_array_get(s, 0), out, sizeof out),
                        "cron 0 2 * * * Europe/Berlin");
    assert_string_equal(cli_fmt_schedule(json_array_get(s, 1), out, sizeof out), "every 15m");
    assert_string_equal(cli_fmt_schedule(json_array_get(s, 2), out, sizeof out),
                        "at 2026-12-24T18:00:00Z");
    assert_string_equal(cli_job_next_fire(job, t, sizeof t), "2026-01-01T00:15:00Z");
    json_decref(job);
    job = json_loads("{\"schedules\":[]}", 0, NULL);
    assert_string_equal(cli_job_next_fire(job, t, sizeof t), "-");
    json_decref(job);
}

static void test_query_and_escape(void **state)
{
    (void)state;
    buf_t b = BUF_INIT;
    buf_puts(&b, "/v1/jobs");
    cli_query_add(&b, "state", NULL);
    cli_query_add(&b, "name", "a b&c=d/é");
    cli_query_add(&b, "limit", "5");
    assert_string_equal(b.data, "/v1/jobs?name=a%20b%26c%3Dd%2F%C3%A9&limit=5");
    buf_free(&b);
}

static void test_parse_int(void **state)
{
    (void)state;
    long long v;
    assert_int_equal(cli_parse_int("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(cli_parse_int("-5", -10, 10, &v), 0);
    assert_int_equal(v, -5);
    assert_int_equal(cli_parse_int("101", 0, 100, &v), SKED_EINVAL);
    assert_int_equal(cli_parse_int("4x", 0, 100, &v), SKED_EINVAL);
    assert_int_equal(cli_parse_int("", 0, 100, &v), SKED_EINVAL);
    assert_int_equal(cli_parse_int(" 4", 0, 100, &v), SKED_EINVAL);
}

/* --- token resolution --------------------------------------------------------------- */

static char tmpdir[64];
static char oldcwd[4096];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup_tmpdir(void **state)
{
    (void)state;
    clear_env();
    strcpy(tmpdir, "/tmp/test_cli_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    assert_non_null(getcwd(oldcwd, sizeof oldcwd));
    assert_int_equal(chdir(tmpdir), 0);
    return 0;
}

static int teardown_tmpdir(void **state)
{
    (void)state;
    unlink("sked-data/admin.token");
    rmdir("sked-data");
    unlink("flag.token");
    unlink("env.token");
    unlink("empty.token");
    assert_int_equal(chdir(oldcwd), 0);
    rmdir(tmpdir);
    clear_env();
    return 0;
}

static void test_token_resolution_order(void **state)
{
    (void)state;
    char *tok = NULL;
    mkdir("sked-data", 0700);
    write_file("sked-data/admin.token", "default-tok\n");
    write_file("flag.token", "  flag-file-tok \n");
    write_file("env.token", "env-file-tok\n");

    /* Nothing given: the `sked dev` default file, trimmed. */
    assert_int_equal(cli_token_resolve(NULL, NULL, &tok), 0);
    assert_string_equal(tok, "default-tok");
    FREE_NULL(tok);
    /* SKED_TOKEN_FILE beats the default. */
    setenv("SKED_TOKEN_FILE", "env.token", 1);
    assert_int_equal(cli_token_resolve(NULL, NULL, &tok), 0);
    assert_string_equal(tok, "env-file-tok");
    FREE_NULL(tok);
    /* SKED_TOKEN beats SKED_TOKEN_FILE. */
    setenv("SKED_TOKEN", "env-tok", 1);
    assert_int_equal(cli_token_resolve(NULL, NULL, &tok), 0);
    assert_string_equal(tok, "env-tok");
    FREE_NULL(tok);
    /* --token-file beats the environment. */
    assert_int_equal(cli_token_resolve(NULL, "flag.token", &tok), 0);
    assert_string_equal(tok, "flag-file-tok");
    FREE_NULL(tok);
    /* --token beats everything. */
    assert_int_equal(cli_token_resolve("flag-tok", "flag.token", &tok), 0);
    assert_string_equal(tok, "flag-tok");
    FREE_NULL(tok);
}

static void test_token_file_errors(void **state)
{
    (void)state;
    char *tok = NULL;
    /* No default file: no token, not an error (the server's 401 explains). */
    assert_int_equal(cli_token_resolve(NULL, NULL, &tok), 0);
    assert_null(tok);
    /* A named file that is missing or empty is an error, not a silent
     * fall-through to another token. */
    setenv("SKED_TOKEN", "env-tok", 1);
    assert_int_equal(cli_token_resolve(NULL, "missing.token", &tok), -ENOENT);
    assert_null(tok);
    write_file("empty.token", " \n");
    assert_int_equal(cli_token_resolve(NULL, "empty.token", &tok), SKED_EINVAL);
    assert_null(tok);
    unsetenv("SKED_TOKEN");
    setenv("SKED_TOKEN_FILE", "missing.token", 1);
    assert_int_equal(cli_token_resolve(NULL, NULL, &tok), -ENOENT);
    assert_null(tok);
}

/* --- submit and edit documents -------------------------------------------------------- */

/* The argv copy stays alive until the next call: the request borrows
 * strings from it, as it does from the real argv. */
static argv_copy_t parsed_argv;

static json_t *parse_submit(const char *const *words, cli_submit_req_t *req, cli_t *c, int *rc)
{
    argv_free(&parsed_argv);
    argv_make(&parsed_argv, words);
    cli_init(c, "submit");
    *rc = cli_submit_parse(c, parsed_argv.argc, parsed_argv.argv, req);
    return req->doc;
}

static void assert_json_eq(const json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_SORT_KEYS);
        print_error("got  %s\nwant %s\n", g, w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

static void test_submit_builds_full_document(void **state)
{
    (void)state;
    const char *w[] = {"submit",
                       "--cron",
                       "0 2 * * *",
                       "--tz",
                       "Europe/Berlin",
                       "--name",
                       "nightly",
                       "--priority",
                       "-5",
                       "--queue",
                       "gpu",
                       "--timeout",
                       "30m",
                       "--retries",
                       "3",
                       "--env",
                       "A=1",
                       "--env",
                       "B=x=y",
                       "--cwd",
                       "/srv",
                       "--constraint",
                       "disk=ssd",
                       "--overlap",
                       "forbid",
                       "--misfire",
                       "skip",
                       "--max-concurrency",
                       "2",
                       "--tag",
                       "reports",
                       "--idempotency-key",
                       "k1",
                       "--wait",
                       "-q",
                       "-o",
                       "json",
                       "--",
                       "/usr/bin/report",
                       "--day",
                       "yesterday",
                       NULL};
    cli_submit_req_t req;
    cli_t c;
    int rc;
    json_t *doc = parse_submit(w, &req, &c, &rc);
    assert_int_equal(rc, CLI_EXIT_OK);
    assert_json_eq(doc, "{\"name\":\"nightly\",\"command\":[\"/usr/bin/report\",\"--day\","
                        "\"yesterday\"],\"schedules\":[{\"cron\":\"0 2 * * *\","
                        "\"timezone\":\"Europe/Berlin\"}],\"priority\":-5,\"queue\":\"gpu\","
                        "\"timeout\":\"30m\",\"retry\":{\"max_attempts\":4},"
                        "\"env\":{\"A\":\"1\",\"B\":\"x=y\"},\"cwd\":\"/srv\","
                        "\"constraints\":{\"disk\":\"ssd\"},\"overlap\":\"forbid\","
                        "\"misfire\":\"skip\",\"max_concurrency\":2,\"tags\":[\"reports\"]}");
    assert_string_equal(req.idem_key, "k1");
    assert_int_equal(req.wait, 1);
    assert_int_equal(req.quiet, 1);
    assert_int_equal(c.json, 1);
    json_decref(req.doc);
    cli_fini(&c);
}

static void test_submit_command_options_stay_with_command(void **state)
{
    (void)state;
    /* Without --, parsing stops at CMD: its own flags are not ours. */
    const char *w[] = {"submit", "--every", "15m", "ls", "-l", "--name", "x", NULL};
    cli_submit_req_t req;
    cli_t c;
    int rc;
    json_t *doc = parse_submit(w, &req, &c, &rc);
    assert_int_equal(rc, CLI_EXIT_OK);
    assert_json_eq(json_object_get(doc, "command"), "[\"ls\",\"-l\",\"--name\",\"x\"]");
    assert_json_eq(json_object_get(doc, "schedules"), "[{\"every\":\"15m\"}]");
    /* Default name: basename of CMD, '-', six random characters. */
    const char *name = json_string_value(json_object_get(doc, "name"));
    assert_non_null(name);
    assert_int_equal(strlen(name), strlen("ls-") + 6);
    assert_memory_equal(name, "ls-", 3);
    assert_null(json_object_get(doc, "retry"));
    assert_int_equal(req.wait, 0);
    json_decref(req.doc);
    cli_fini(&c);
}

static void test_submit_default_name_uses_basename(void **state)
{
    (void)state;
    const char *w[] = {"submit", "--", "/usr/local/bin/backup.sh", NULL};
    cli_submit_req_t req;
    cli_t c;
    int rc;
    json_t *doc = parse_submit(w, &req, &c, &rc);
    assert_int_equal(rc, CLI_EXIT_OK);
    const char *name = json_string_value(json_object_get(doc, "name"));
    assert_int_equal(strncmp(name, "backup.sh-", 10), 0);
    assert_int_equal(strlen(name), 16);
    /* No schedule option: no schedules (the server runs it now). */
    assert_null(json_object_get(doc, "schedules"));
    /* Two submissions do not collide on the name. */
    char *first = xstrdup(name);
    json_decref(req.doc);
    cli_fini(&c);
    doc = parse_submit(w, &req, &c, &rc);
    assert_string_not_equal(first, json_string_value(json_object_get(doc, "name")));
    free(first);
    json_decref(req.doc);
    cli_fini(&c);
}

static void test_submit_at_is_utc(void **state)
{
    (void)state;
    const char *w[] = {"submit", "--at", "2026-12-24T19:00:00+01:00", "--", "true", NULL};
    cli_submit_req_t req;
    cli_t c;
    int rc;
    json_t *doc = parse_submit(w, &req, &c, &rc);
    assert_int_equal(rc, CLI_EXIT_OK);
    assert_json_eq(json_object_get(doc, "schedules"), "[{\"at\":\"2026-12-24T18:00:00Z\"}]");
    json_decref(req.doc);
    cli_fini(&c);

    /* "+DUR" is relative to now. */
    const char *w2[] = {"submit", "--at", "+1h", "--", "true", NULL};
    int64_t before = clock_now_ms();
    doc = parse_submit(w2, &req, &c, &rc);
    int64_t after = clock_now_ms();
    assert_int_equal(rc, CLI_EXIT_OK);
    const char *at = json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "schedules"), 0), "at"));
    int64_t ms;
    assert_int_equal(clock_parse_rfc3339(at, &ms), 0);
    assert_true(ms >= before + 3600000 && ms <= after + 3600000);
    json_decref(req.doc);
    cli_fini(&c);
}

/* --type and --config: a job of another type, given its config (inline or
 * from a file) instead of a command, named after its type. */
static void test_submit_type_and_config(void **state)
{
    (void)state;
    const char *w[] = {"submit",
                       "--type",
                       "http",
                       "--config",
                       "{\"url\": \"https://example.com/ping\", \"expect\": [200]}",
                       "--every",
                       "1m",
                       NULL};
    cli_submit_req_t req;
    cli_t c;
    int rc;
    json_t *doc = parse_submit(w, &req, &c, &rc);
    assert_int_equal(rc, CLI_EXIT_OK);
    assert_string_equal(json_string_value(json_object_get(doc, "type")), "http");
    assert_json_eq(json_object_get(doc, "config"),
                   "{\"url\": \"https://example.com/ping\", \"expect\": [200]}");
    assert_null(json_object_get(doc, "command"));
    assert_int_equal(json_array_size(json_object_get(doc, "schedules")), 1);
    assert_int_equal(strncmp(json_string_value(json_object_get(doc, "name")), "http-", 5), 0);
    json_decref(req.doc);
    cli_fini(&c);

    write_file("cfg.yaml", "path: /srv/backup/db.dump\nalgorithm: sha256\n");
    const char *w2[] = {"submit", "--type", "checksum", "--config", "@cfg.yaml", NULL};
    doc = parse_submit(w2, &req, &c, &rc);
    assert_int_equal(rc, CLI_EXIT_OK);
    assert_json_eq(json_object_get(doc, "config"),
                   "{\"path\": \"/srv/backup/db.dump\", \"algorithm\": \"sha256\"}");
    json_decref(req.doc);
    cli_fini(&c);
}

static void test_submit_rejects_bad_arguments(void **state)
{
    (void)state;
    static const char *const cases[][8] = {
        {"submit", NULL},                                                 /* no command */
        {"submit", "--tz", "UTC", "--", "true", NULL},                    /* tz without cron */
        {"submit", "--cron", "* * * * *", "--every", "1m", "true", NULL}, /* two kinds */
        {"submit", "--at", "tomorrow", "--", "true", NULL},
        {"submit", "--env", "NOEQUALS", "--", "true", NULL},
        {"submit", "--retries", "-1", "--", "true", NULL},
        {"submit", "--priority", "high", "--", "true", NULL},
        {"submit", "--bogus", "--", "true", NULL},
        {"submit", "--name", NULL}, /* missing value */
        {"submit", "-o", "yaml", "--", "true", NULL},
        {"submit", "--type", "http", "--", "true", NULL},      /* a command for a non-shell type */
        {"submit", "--type", "http", "--config", "[1]", NULL}, /* not an object */
        {"submit", "--type", "http", "--config", "{\"url\"", NULL}, /* not JSON */
        {"submit", "--type", "http", "--config", "@/no/such/file.json", NULL},
        {"submit", "--type", "shell", NULL}, /* shell still needs its command */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_submit_req_t req;
        cli_t c;
        int rc;
        json_t *doc = parse_submit(cases[i], &req, &c, &rc);
        if (rc != CLI_EXIT_USAGE) print_error("case %zu\n", i);
        assert_int_equal(rc, CLI_EXIT_USAGE);
        assert_null(doc);
        cli_fini(&c);
    }
}

static json_t *parse_edit(const char *const *words, cli_edit_req_t *req, int *rc)
{
    cli_t c;
    argv_free(&parsed_argv);
    argv_make(&parsed_argv, words);
    cli_init(&c, "jobs edit");
    *rc = cli_edit_parse(&c, parsed_argv.argc, parsed_argv.argv, req);
    cli_fini(&c);
    return req->patch;
}

static void test_edit_builds_patch(void **state)
{
    (void)state;
    /* Options after the id work too. */
    const char *w[] = {"edit", "job_1",   "--priority", "7", "--retries",
                       "0",    "--every", "30m",        NULL};
    cli_edit_req_t req;
    int rc;
    json_t *p = parse_edit(w, &req, &rc);
    assert_int_equal(rc, CLI_EXIT_OK);
    assert_string_equal(req.id, "job_1");
    assert_json_eq(p, "{\"priority\":7,\"retry\":{\"max_attempts\":1},"
                      "\"schedules\":[{\"every\":\"30m\"}]}");
    json_decref(req.patch);
}

static void test_edit_merges_raw_json_under_options(void **state)
{
    (void)state;
    const char *w[] = {"edit",
                       "--json",
                       "{\"env\":{\"DEBUG\":null,\"A\":\"old\"},\"queue\":\"q1\",\"retry\":"
                       "{\"initial\":\"5s\"}}",
                       "--env",
                       "A=new",
                       "--queue",
                       "q2",
                       "--retries",
                       "2",
                       "job_2",
                       NULL};
    cli_edit_req_t req;
    int rc;
    json_t *p = parse_edit(w, &req, &rc);
    assert_int_equal(rc, CLI_EXIT_OK);
    assert_string_equal(req.id, "job_2");
    assert_json_eq(p, "{\"env\":{\"DEBUG\":null,\"A\":\"new\"},\"queue\":\"q2\","
                      "\"retry\":{\"initial\":\"5s\",\"max_attempts\":3}}");
    json_decref(req.patch);
}

static void test_edit_rejects_bad_arguments(void **state)
{
    (void)state;
    static const char *const cases[][6] = {
        {"edit", "job_1", NULL},           /* nothing to change */
        {"edit", "--priority", "1", NULL}, /* no id */
        {"edit", "job_1", "job_2", "--priority", "1", NULL},
        {"edit", "job_1", "--json", "[1]", NULL}, /* not an object */
        {"edit", "job_1", "--json", "{bad", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_edit_req_t req;
        int rc;
        json_t *p = parse_edit(cases[i], &req, &rc);
        if (rc != CLI_EXIT_USAGE) print_error("case %zu\n", i);
        assert_int_equal(rc, CLI_EXIT_USAGE);
        assert_null(p);
    }
}

/* --- the commands against a fake API ---------------------------------------------------- */

#define FAKE_MAX 16

typedef struct fake_req {
    char method[16];
    char *url;  /* path and query as received */
    char *body; /* request body */
    char *auth; /* Authorization header or NULL */
    char *ifmatch;
    char *idem;
} fake_req_t;

typedef struct fake {
    struct MHD_Daemon *d;
    char base[64];
    pthread_mutex_t mu;
    int nanswers, next;
    int status[FAKE_MAX];
    const char *answer[FAKE_MAX];
    int nreqs;
    fake_req_t reqs[FAKE_MAX];
} fake_t;

static fake_t fake;

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    buf_t *b = cls;
    buf_printf(b, "%c%s=%s", strchr(b->data, '?') ? '&' : '?', key, value ? value : "");
    return MHD_YES;
}

static char *hdr(struct MHD_Connection *conn, const char *name)
{
    return xstrdup(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    buf_t *body = *con_cls;
    if (!body) {
        body = xcalloc(1, sizeof *body);
        buf_puts(body, "");
        *con_cls = body;
        return MHD_YES;
    }
    if (*upload_size) {
        buf_append(body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    pthread_mutex_lock(&fake.mu);
    int status = 500;
    const char *answer = "{\"title\":\"Internal Server Error\",\"detail\":\"unscripted\"}";
    if (fake.next < fake.nanswers) {
        status = fake.status[fake.next];
        answer = fake.answer[fake.next];
        fake.next++;
    }
    if (fake.nreqs < FAKE_MAX) {
        fake_req_t *r = &fake.reqs[fake.nreqs++];
        buf_t u = BUF_INIT;
        buf_puts(&u, url);
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_arg, &u);
        snprintf(r->method, sizeof r->method, "%s", method);
        r->url = buf_steal(&u);
        r->body = buf_steal(body);
        r->auth = hdr(conn, "Authorization");
        r->ifmatch = hdr(conn, "If-Match");
        r->idem = hdr(conn, "Idempotency-Key");
    }
    pthread_mutex_unlock(&fake.mu);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(answer), (void *)answer, MHD_RESPMEM_PERSISTENT);
    const char *ctype = status >= 400      ? "application/problem+json"
                        : answer[0] == '{' ? "application/json"
                                           : "text/plain";
    MHD_add_response_header(resp, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode code)
{
    buf_t *body = *con_cls;
    if (body) {
        buf_free(body);
        free(body);
    }
    *con_cls = NULL;
}

static int fake_start(void **state)
{
    (void)state;
    clear_env();
    memset(&fake, 0, sizeof fake);
    pthread_mutex_init(&fake.mu, NULL);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fake.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, handle, NULL,
                              MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_NOTIFY_COMPLETED, completed,
                              NULL, MHD_OPTION_END);
    assert_non_null(fake.d);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(fake.d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(fake.base, sizeof fake.base, "http://127.0.0.1:%u", (unsigned)info->port);
    setenv("SKED_SERVER", fake.base, 1);
    setenv("SKED_TOKEN", "secret-token", 1);
    return 0;
}

static int fake_stop(void **state)
{
    (void)state;
    MHD_stop_daemon(fake.d);
    for (int i = 0; i < fake.nreqs; i++) {
        free(fake.reqs[i].url);
        free(fake.reqs[i].body);
        free(fake.reqs[i].auth);
        free(fake.reqs[i].ifmatch);
        free(fake.reqs[i].idem);
    }
    pthread_mutex_destroy(&fake.mu);
    clear_env();
    return 0;
}

static void script(int status, const char *answer)
{
    fake.status[fake.nanswers] = status;
    fake.answer[fake.nanswers] = answer;
    fake.nanswers++;
}

static const fake_req_t *req_at(int i)
{
    pthread_mutex_lock(&fake.mu);
    assert_true(i < fake.nreqs);
    const fake_req_t *r = &fake.reqs[i];
    pthread_mutex_unlock(&fake.mu);
    return r;
}

static void test_cmd_submit_quiet_prints_id(void **state)
{
    (void)state;
    script(201, "{\"id\":\"job_1\",\"name\":\"n\",\"schedules\":[]}");
    const char *w[] = {"submit", "-q", "--idempotency-key", "key-1", "--", "echo", "hi", NULL};
    char *out, *err;
    int rc = run_cmd(cmd_submit, w, &out, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "job_1\n");
    const fake_req_t *r = req_at(0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "/v1/jobs");
    assert_string_equal(r->auth, "Bearer secret-token");
    assert_string_equal(r->idem, "key-1");
    json_t *body = json_loads(r->body, 0, NULL);
    assert_json_eq(json_object_get(body, "command"), "[\"echo\",\"hi\"]");
    json_decref(body);
    free(out);
    free(err);
}

static void test_cmd_submit_table_output(void **state)
{
    (void)state;
    script(201, "{\"id\":\"job_1\",\"name\":\"nightly\",\"schedules\":[{\"cron\":\"0 2 * * *\","
                "\"next_fire_at\":\"2026-01-02T02:00:00.000Z\"}]}");
    const char *w[] = {"submit", "--cron", "0 2 * * *", "--name", "nightly", "true", NULL};
    char *out, *err;
    int rc = run_cmd(cmd_submit, w, &out, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "ID     NAME     NEXT FIRE\n"
                             "job_1  nightly  2026-01-02T02:00:00Z\n");
    free(out);
    free(err);
}

static void test_cmd_problem_goes_to_stderr(void **state)
{
    (void)state;
    script(400, "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":400,"
                "\"detail\":\"cron field 'hour': 24 is out of range 0-23\","
                "\"field\":\"schedules[0].cron\"}");
    const char *w[] = {"submit", "--cron", "0 24 * * *", "--", "true", NULL};
    char *out, *err;
    int rc = run_cmd(cmd_submit, w, &out, &err);
    assert_int_equal(rc, CLI_EXIT_FAIL);
    assert_string_equal(out, "");
    assert_string_equal(err, "sked: 400 Bad Request: schedules[0].cron: cron field 'hour': 24 is "
                             "out of range 0-23\n");
    free(out);
    free(err);
}

static void test_cmd_submit_wait_exits_with_outcome(void **state)
{
    (void)state;
    script(201, "{\"id\":\"job_1\",\"name\":\"n\",\"schedules\":[]}");
    script(200, "{\"items\":[],\"next_cursor\":null}");
    script(200, "{\"items\":[{\"id\":\"run_2\",\"state\":\"pending\"},"
                "{\"id\":\"run_1\",\"state\":\"pending\"}],\"next_cursor\":null}");
    script(200, "{\"id\":\"run_1\",\"state\":\"running\"}");
    script(200, "{\"id\":\"run_1\",\"state\":\"failed\",\"exit_code\":3,\"reason\":null}");
    const char *w[] = {"submit", "-q", "--wait", "--", "false", NULL};
    char *out, *err;
    int rc = run_cmd(cmd_submit, w, &out, &err);
    assert_int_equal(rc, 3); /* the job's own exit code, as srun and docker run */
    assert_string_equal(out, "job_1\n");
    assert_string_equal(err, "sked: run run_1 failed (exit code 3)\n");
    assert_string_equal(req_at(1)->url, "/v1/runs?job_id=job_1&limit=1000");
    /* The oldest run (last in the newest-first list) is the first run. */
    assert_string_equal(req_at(3)->url, "/v1/runs/run_1");
    assert_string_equal(req_at(4)->url, "/v1/runs/run_1");
    free(out);
    free(err);
}

static void test_cmd_jobs_edit_sends_if_match(void **state)
{
    (void)state;
    script(200, "{\"id\":\"job_1\",\"version\":7}");
    script(200, "{\"id\":\"job_1\",\"version\":8}");
    const char *w[] = {"jobs", "edit", "job_1", "--priority", "9", NULL};
    char *out, *err;
    int rc = run_cmd(cmd_jobs, w, &out, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "job_1 updated (version 8)\n");
    assert_string_equal(req_at(0)->method, "GET");
    assert_string_equal(req_at(0)->url, "/v1/jobs/job_1");
    const fake_req_t *r = req_at(1);
    assert_string_equal(r->method, "PATCH");
    assert_string_equal(r->url, "/v1/jobs/job_1");
    assert_string_equal(r->ifmatch, "7");
    json_t *body = json_loads(r->body, 0, NULL);
    assert_json_eq(body, "{\"priority\":9}");
    json_decref(body);
    free(out);
    free(err);
}

static void test_cmd_jobs_edit_conflict_fails(void **state)
{
    (void)state;
    script(200, "{\"id\":\"job_1\",\"version\":7}");
    script(412, "{\"title\":\"Precondition Failed\",\"status\":412,"
                "\"detail\":\"version is 8, not 7\",\"field\":\"header.If-Match\"}");
    const char *w[] = {"jobs", "edit", "job_1", "--queue", "q", NULL};
    char *out, *err;
    int rc = run_cmd(cmd_jobs, w, &out, &err);
    assert_int_equal(rc, CLI_EXIT_FAIL);
    assert_string_equal(err,
                        "sked: 412 Precondition Failed: header.If-Match: version is 8, not 7\n");
    free(out);
    free(err);
}

static void test_cmd_jobs_ls_all_follows_cursor(void **state)
{
    (void)state;
    script(200, "{\"items\":[{\"id\":\"job_2\",\"name\":\"b\",\"state\":\"active\","
                "\"queue\":\"default\",\"priority\":0,\"schedules\":[]}],\"next_cursor\":\"c1\"}");
    script(200, "{\"items\":[{\"id\":\"job_1\",\"name\":\"a\",\"state\":\"paused\","
                "\"queue\":\"default\",\"priority\":5,\"schedules\":[{\"every\":\"1m\","
                "\"next_fire_at\":null}]}],\"next_cursor\":null}");
    const char *w[] = {"jobs", "ls", "--all", "--state", "active", "--limit", "1", NULL};
    char *out, *err;
    int rc = run_cmd(cmd_jobs, w, &out, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(req_at(0)->url, "/v1/jobs?state=active&limit=1");
    assert_string_equal(req_at(1)->url, "/v1/jobs?state=active&limit=1&cursor=c1");
    assert_string_equal(out, "ID     NAME  STATE   QUEUE    PRIO  SCHEDULE  NEXT FIRE\n"
                             "job_2  b     active  default  0     -         -\n"
                             "job_1  a     paused  default  5     every 1m  -\n");
    free(out);
    free(err);
}

static void test_cmd_jobs_trigger_and_json(void **state)
{
    (void)state;
    script(201, "{\"id\":\"run_9\",\"state\":\"pending\"}");
    script(200, "{\"id\":\"job_1\",\"state\":\"paused\"}");
    char *out, *err;
    const char *w[] = {"jobs", "trigger", "job_1", NULL};
    assert_int_equal(run_cmd(cmd_jobs, w, &out, &err), 0);
    assert_string_equal(out, "run_9\n");
    assert_string_equal(req_at(0)->url, "/v1/jobs/job_1/trigger");
    free(out);
    free(err);
    const char *w2[] = {"jobs", "pause", "-o", "json", "job_1", NULL};
    assert_int_equal(run_cmd(cmd_jobs, w2, &out, &err), 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_json_eq(j, "{\"id\":\"job_1\",\"state\":\"paused\"}");
    json_decref(j);
    assert_string_equal(req_at(1)->url, "/v1/jobs/job_1/pause");
    free(out);
    free(err);
}

static void test_cmd_preview_unsaved_schedule(void **state)
{
    (void)state;
    script(200, "{\"fire_times\":[{\"at\":\"2026-03-29T01:00:00Z\","
                "\"local\":\"2026-03-29T03:00:00+02:00\",\"timezone\":\"Europe/Berlin\","
                "\"dst_shifted\":true,\"schedule\":0},{\"at\":\"2026-03-30T00:30:00Z\","
                "\"local\":\"2026-03-30T02:30:00+02:00\",\"timezone\":\"Europe/Berlin\","
                "\"dst_shifted\":false,\"schedule\":0}]}");
    const char *w[] = {"jobs",          "preview", "--cron", "30 2 * * *", "--tz",
                       "Europe/Berlin", "-n",      "2",      NULL};
    char *out, *err;
    assert_int_equal(run_cmd(cmd_jobs, w, &out, &err), 0);
    assert_string_equal(req_at(0)->url, "/v1/schedules/preview");
    json_t *body = json_loads(req_at(0)->body, 0, NULL);
    assert_json_eq(body, "{\"schedules\":[{\"cron\":\"30 2 * * *\",\"timezone\":"
                         "\"Europe/Berlin\"}],\"n\":2}");
    json_decref(body);
    assert_string_equal(out, "UTC                   LOCAL                      ZONE           DST\n"
                             "2026-03-29T01:00:00Z  2026-03-29T03:00:00+02:00  Europe/Berlin  "
                             "shifted\n"
                             "2026-03-30T00:30:00Z  2026-03-30T02:30:00+02:00  Europe/Berlin\n");
    free(out);
    free(err);
}

static void test_cmd_runs_logs_prints_body(void **state)
{
    (void)state;
    script(200, "line 1\n[sked] attempt 2\nline 2\n");
    script(200, "{\"id\":\"run_1\",\"state\":\"succeeded\"}");
    script(200, "streamed\n");
    char *out, *err;
    const char *w[] = {"runs", "logs", "run_1", "--attempt", "2", NULL};
    assert_int_equal(run_cmd(cmd_runs, w, &out, &err), 0);
    assert_string_equal(out, "line 1\n[sked] attempt 2\nline 2\n");
    assert_string_equal(req_at(0)->url, "/v1/runs/run_1/log?attempt=2");
    free(out);
    free(err);
    const char *w2[] = {"runs", "logs", "-f", "run_1", NULL};
    assert_int_equal(run_cmd(cmd_runs, w2, &out, &err), 0);
    assert_string_equal(out, "streamed\n");
    assert_string_equal(req_at(2)->url, "/v1/runs/run_1/log?follow=1");
    free(out);
    free(err);
}

static void test_cmd_runs_get_not_found(void **state)
{
    (void)state;
    script(404, "{\"title\":\"Not Found\",\"status\":404,\"detail\":\"no run run_x\","
                "\"field\":\"path.id\"}");
    const char *w[] = {"runs", "get", "run_x", NULL};
    char *out, *err;
    assert_int_equal(run_cmd(cmd_runs, w, &out, &err), CLI_EXIT_FAIL);
    assert_string_equal(err, "sked: 404 Not Found: path.id: no run run_x\n");
    free(out);
    free(err);
}

static void test_cmd_workers_ls_table(void **state)
{
    (void)state;
    script(200, "{\"items\":[{\"id\":\"wrk_1\",\"name\":\"w1\",\"host\":\"h\",\"labels\":"
                "{\"disk\":\"ssd\"},\"queues\":[\"default\",\"gpu\"],\"slots\":4,\"running\":1,"
                "\"state\":\"active\",\"registered_at\":\"2026-01-01T00:00:00Z\","
                "\"heartbeat_at\":\"2026-01-01T00:00:05.250Z\"}],\"next_cursor\":null}");
    const char *w[] = {"workers", "ls", NULL};
    char *out, *err;
    assert_int_equal(run_cmd(cmd_workers, w, &out, &err), 0);
    assert_string_equal(out, "ID     NAME  HOST  STATE   SLOTS  RUNNING  QUEUES       LABELS    "
                             "HEARTBEAT\n"
                             "wrk_1  w1    h     active  4      1        default,gpu  disk=ssd  "
                             "2026-01-01T00:00:05Z\n");
    free(out);
    free(err);
}

static void test_cmd_unreachable_server_is_named(void **state)
{
    (void)state;
    /* A port nothing listens on: bind one, note it, close it. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    char server[64];
    snprintf(server, sizeof server, "http://127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
    const char *w[] = {"workers", "ls", "--server", server, NULL};
    char *out, *err;
    assert_int_equal(run_cmd(cmd_workers, w, &out, &err), CLI_EXIT_FAIL);
    assert_non_null(strstr(err, "could not reach"));
    assert_non_null(strstr(err, server));
    assert_string_equal(out, "");
    free(out);
    free(err);
}

static void test_cmd_usage_errors_exit_2(void **state)
{
    (void)state;
    char *out, *err;
    const char *w1[] = {"jobs", "frobnicate", NULL};
    assert_int_equal(run_cmd(cmd_jobs, w1, &out, &err), CLI_EXIT_USAGE);
    free(out);
    free(err);
    const char *w2[] = {"runs", "cancel", NULL};
    assert_int_equal(run_cmd(cmd_runs, w2, &out, &err), CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "missing RUN_ID"));
    free(out);
    free(err);
    const char *w3[] = {"jobs", "preview", "job_1", "--every", "1m", NULL};
    assert_int_equal(run_cmd(cmd_jobs, w3, &out, &err), CLI_EXIT_USAGE);
    free(out);
    free(err);
    /* --help succeeds, names its options and shows an example. */
    const char *w4[] = {"submit", "--help", NULL};
    assert_int_equal(run_cmd(cmd_submit, w4, &out, &err), 0);
    assert_non_null(strstr(out, "--retries N"));
    assert_non_null(strstr(out, "example"));
    free(out);
    free(err);
    /* No request reached the server. */
    assert_int_equal(fake.nreqs, 0);
}

/* --- sked workflows ------------------------------------------------------------------------ */

#define WF_ID "wf_01JD0000000000000000000001"

/* A file in /tmp holding text, named with suffix (".yaml"); caller unlinks. */
static char *temp_doc(const char *suffix, const char *text)
{
    char *path = xasprintf("/tmp/test_cli_wfXXXXXX%s", suffix);
    int fd = mkstemps(path, (int)strlen(suffix));
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static const char wf_yaml[] = "name: etl\n"
                              "schedules:\n"
                              "  - cron: '0 2 * * *'\n"
                              "    timezone: Europe/Berlin\n"
                              "tasks:\n"
                              "  - name: extract\n"
                              "    command: [extract, --day, yesterday]\n"
                              "    retry: {max_attempts: 3}\n"
                              "  - name: load\n"
                              "    command: [load]\n"
                              "    depends_on: [extract]\n"
                              "    trigger_rule: all_done\n"
                              "    priority: -5\n";

static const char wf_json[] =
    "{\"name\":\"etl\",\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":\"Europe/Berlin\"}],"
    "\"tasks\":[{\"name\":\"extract\",\"command\":[\"extract\",\"--day\",\"yesterday\"],"
    "\"retry\":{\"max_attempts\":3}},{\"name\":\"load\",\"command\":[\"load\"],"
    "\"depends_on\":[\"extract\"],\"trigger_rule\":\"all_done\",\"priority\":-5}]}";

static void test_cmd_workflows_submit_yaml(void **state)
{
    (void)state;
    script(201, "{\"id\":\"" WF_ID "\",\"name\":\"etl\",\"state\":\"active\",\"version\":1,"
                "\"next_fire_at\":\"2026-01-02T01:00:00.000Z\",\"tasks\":[{},{}]}");
    char *path = temp_doc(".yaml", wf_yaml);
    const char *w[] = {"workflows", "submit", "-f", path, "--idempotency-key", "k1", NULL};
    char *out, *err;
    assert_int_equal(run_cmd(cmd_workflows, w, &out, &err), 0);
    const fake_req_t *r = req_at(0);
    assert_string_equal(r->method, "POST");
    assert_string_equal(r->url, "/v1/workflows");
    assert_string_equal(r->idem, "k1");
    json_t *body = json_loads(r->body, 0, NULL);
    assert_json_eq(body, wf_json);
    json_decref(body);
    assert_string_equal(out, "ID                             NAME  TASKS  NEXT FIRE\n" WF_ID
                             "  etl   2      2026-01-02T01:00:00Z\n");
    unlink(path);
    free(path);
    free(out);
    free(err);
}

static void test_cmd_workflows_dry_run_sends_nothing(void **state)
{
    (void)state;
    char *path = temp_doc(".yml", wf_yaml);
    const char *w[] = {"workflows", "submit", "--dry-run", "-f", path, NULL};
    char *out, *err;
    assert_int_equal(run_cmd(cmd_workflows, w, &out, &err), 0);
    json_t *printed = json_loads(out, 0, NULL);
    assert_json_eq(printed, wf_json);
    json_decref(printed);
    assert_string_equal(err, "");
    unlink(path);
    free(path);
    free(out);
    free(err);
    /* A document this sked would refuse still prints (exit 0), with a note
     * naming the field. */
    path = temp_doc(".yaml", "name: w\ntasks:\n  - name: a\n    command: [x]\n"
                             "    depends_on: [b]\n");
    const char *w2[] = {"workflows", "submit", "--dry-run", "-f", path, NULL};
    assert_int_equal(run_cmd(cmd_workflows, w2, &out, &err), 0);
    assert_non_null(strstr(out, "\"depends_on\""));
    assert_string_equal(err, "sked workflows submit: note: this document would be refused: "
                             "tasks[0].depends_on[0]: unknown task \"b\"\n");
    unlink(path);
    free(path);
    free(out);
    free(err);
    /* A YAML error names the file, line and column; exit 2. */
    path = temp_doc(".yaml", "name: w\ntasks: [\n  {a: 1}, *x]\n");
    const char *w3[] = {"workflows", "submit", "--dry-run", "-f", path, NULL};
    assert_int_equal(run_cmd(cmd_workflows, w3, &out, &err), CLI_EXIT_USAGE);
    char *want = xasprintf("sked workflows submit: %s:3:11: aliases (*x) are not supported: "
                           "write the value out\n",
                           path);
    if (!strstr(err, want)) fail_msg("stderr: %s", err);
    free(want);
    unlink(path);
    free(path);
    free(out);
    free(err);
    assert_int_equal(fake.nreqs, 0);
}

static const char run_answer[] =
    "{\"id\":\"wfr_1\",\"workflow_id\":\"" WF_ID "\",\"state\":\"failed\","
    "\"fire_time\":\"2026-01-02T01:00:00Z\",\"started_at\":\"2026-01-02T01:00:01Z\","
    "\"finished_at\":\"2026-01-02T01:05:00Z\",\"counts\":{\"waiting\":0,\"pending\":0,"
    "\"running\":0,\"succeeded\":1,\"failed\":1,\"canceled\":0,\"skipped\":0},"
    "\"tasks\":[{\"name\":\"extract\",\"run_id\":\"run_1\",\"state\":\"failed\",\"attempt\":3,"
    "\"exit_code\":1,\"depends_on\":[],\"trigger_rule\":\"all_success\"},"
    "{\"name\":\"load\",\"run_id\":\"run_2\",\"state\":\"succeeded\",\"attempt\":1,"
    "\"exit_code\":0,\"depends_on\":[\"extract\"],\"trigger_rule\":\"all_done\"}]}";

static void test_cmd_workflows_get_by_name_draws_latest_run(void **state)
{
    (void)state;
    script(200, "{\"items\":[{\"id\":\"wf_other\",\"name\":\"etl-2\"},{\"id\":\"" WF_ID
                "\",\"name\":\"etl\"}],\"next_cursor\":null}");
    script(200, "{\"id\":\"" WF_ID "\",\"name\":\"etl\",\"state\":\"active\",\"version\":4,"
                "\"max_active_runs\":1,\"overlap\":\"allow\",\"misfire\":\"run_once\","
                "\"schedules\":[{\"cron\":\"0 2 * * *\",\"timezone\":\"UTC\"}],"
                "\"next_fire_at\":\"2026-01-03T02:00:00Z\",\"tags\":[\"etl\"],\"tasks\":[{},{}],"
                "\"created_at\":\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}");
    script(200, "{\"items\":[{\"id\":\"wfr_1\",\"state\":\"failed\"}],\"next_cursor\":\"c\"}");
    script(200, run_answer);
    const char *w[] = {"workflows", "get", "etl", NULL};
    char *out, *err;
    assert_int_equal(run_cmd(cmd_workflows, w, &out, &err), 0);
    assert_string_equal(req_at(0)->url, "/v1/workflows?limit=1000");
    assert_string_equal(req_at(1)->url, "/v1/workflows/" WF_ID);
    assert_string_equal(req_at(2)->url, "/v1/workflows/" WF_ID "/runs?limit=1");
    assert_string_equal(req_at(3)->url, "/v1/workflow-runs/wfr_1");
    const char *tail =
        "Run wfr_1: failed (fired 2026-01-02T01:00:00Z, started 2026-01-02T01:00:01Z, finished "
        "2026-01-02T01:05:00Z): 1 succeeded, 1 failed\n"
        "TASK                 STATE      ATTEMPT  EXIT  REASON\n"
        "extract              failed     3        1     -\n"
        "\u2514\u2500\u2500 load [all_done]  succeeded  1        0     -\n";
    size_t lo = strlen(out), lt = strlen(tail);
    if (lo < lt || strcmp(out + lo - lt, tail) != 0) fail_msg("out:\n%s", out);
    assert_non_null(strstr(out, "Schedules:        cron 0 2 * * * UTC\n"));
    assert_non_null(strstr(out, "Max active runs:  1 (overlap: allow)\n"));
    free(out);
    free(err);
}

static void test_cmd_workflows_run_actions(void **state)
{
    (void)state;
    char *out, *err;
    /* retry: the task's name arrives whole (escaped on the wire; the fake's
     * server hands over the path decoded); --downstream goes in the body. */
    script(200, run_answer);
    const char *w1[] = {"workflows", "retry", "wfr_1", "load eu/1", "--downstream", NULL};
    assert_int_equal(run_cmd(cmd_workflows, w1, &out, &err), 0);
    assert_string_equal(req_at(0)->method, "POST");
    assert_string_equal(req_at(0)->url, "/v1/workflow-runs/wfr_1/tasks/load eu/1/retry");
    json_t *body = json_loads(req_at(0)->body, 0, NULL);
    assert_json_eq(body, "{\"downstream\":true}");
    json_decref(body);
    assert_non_null(strstr(out, "Run wfr_1: failed"));
    free(out);
    free(err);
    script(200, run_answer);
    const char *w2[] = {"workflows", "retry", "-o", "json", "wfr_1", "load", NULL};
    assert_int_equal(run_cmd(cmd_workflows, w2, &out, &err), 0);
    body = json_loads(req_at(1)->body, 0, NULL);
    assert_json_eq(body, "{\"downstream\":false}");
    json_decref(body);
    json_t *printed = json_loads(out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(printed, "id")), "wfr_1");
    json_decref(printed);
    free(out);
    free(err);
    /* cancel */
    script(200, "{\"id\":\"wfr_1\",\"state\":\"canceled\"}");
    const char *w3[] = {"workflows", "cancel", "wfr_1", NULL};
    assert_int_equal(run_cmd(cmd_workflows, w3, &out, &err), 0);
    assert_string_equal(req_at(2)->url, "/v1/workflow-runs/wfr_1/cancel");
    assert_string_equal(out, "wfr_1 canceled\n");
    free(out);
    free(err);
    /* trigger prints the run id alone; pause the state; delete says so. */
    script(201, "{\"id\":\"wfr_2\",\"state\":\"running\"}");
    script(200, "{\"id\":\"" WF_ID "\",\"state\":\"paused\"}");
    script(204, "");
    const char *w4[] = {"workflows", "trigger", WF_ID, NULL};
    assert_int_equal(run_cmd(cmd_workflows, w4, &out, &err), 0);
    assert_string_equal(out, "wfr_2\n");
    assert_string_equal(req_at(3)->url, "/v1/workflows/" WF_ID "/trigger");
    free(out);
    free(err);
    const char *w5[] = {"workflows", "pause", WF_ID, NULL};
    assert_int_equal(run_cmd(cmd_workflows, w5, &out, &err), 0);
    assert_string_equal(out, WF_ID " paused\n");
    assert_string_equal(req_at(4)->url, "/v1/workflows/" WF_ID "/pause");
    free(out);
    free(err);
    const char *w6[] = {"workflows", "rm", WF_ID, NULL};
    assert_int_equal(run_cmd(cmd_workflows, w6, &out, &err), 0);
    assert_string_equal(req_at(5)->method, "DELETE");
    assert_string_equal(req_at(5)->url, "/v1/workflows/" WF_ID);
    assert_string_equal(out, WF_ID " deleted\n");
    free(out);
    free(err);
}

static void test_cmd_workflows_update_sends_if_match(void **state)
{
    (void)state;
    script(200, "{\"id\":\"" WF_ID "\",\"version\":7}");
    script(200, "{\"id\":\"" WF_ID "\",\"version\":8}");
    char *path = temp_doc(".json", wf_json);
    const char *w[] = {"workflows", "update", WF_ID, "-f", path, NULL};
    char *out, *err;
    assert_int_equal(run_cmd(cmd_workflows, w, &out, &err), 0);
    assert_string_equal(req_at(0)->method, "GET");
    assert_string_equal(req_at(1)->method, "PUT");
    assert_string_equal(req_at(1)->url, "/v1/workflows/" WF_ID);
    assert_string_equal(req_at(1)->ifmatch, "7");
    json_t *body = json_loads(req_at(1)->body, 0, NULL);
    assert_json_eq(body, wf_json);
    json_decref(body);
    assert_string_equal(out, WF_ID " updated (version 8)\n");
    unlink(path);
    free(path);
    free(out);
    free(err);
}

static void test_cmd_workflows_lists(void **state)
{
    (void)state;
    script(200, "{\"items\":[{\"id\":\"" WF_ID "\",\"name\":\"etl\",\"state\":\"active\","
                "\"schedules\":[{\"every\":\"1h\"}],\"next_fire_at\":\"2026-01-01T01:00:00Z\","
                "\"tasks\":[{},{},{}]}],\"next_cursor\":\"c1\"}");
    script(200, "{\"items\":[],\"next_cursor\":null}");
    const char *w[] = {"workflows", "ls", "--state", "active", "--all", NULL};
    char *out, *err;
    assert_int_equal(run_cmd(cmd_workflows, w, &out, &err), 0);
    assert_string_equal(req_at(0)->url, "/v1/workflows?state=active");
    assert_string_equal(req_at(1)->url, "/v1/workflows?state=active&cursor=c1");
    assert_string_equal(out, "ID                             NAME  STATE   TASKS  SCHEDULE  "
                             "NEXT FIRE\n" WF_ID "  etl   active  3      every 1h  "
                             "2026-01-01T01:00:00Z\n");
    free(out);
    free(err);
    script(200, "{\"items\":[{\"id\":\"wfr_1\",\"state\":\"running\","
                "\"fire_time\":\"2026-01-01T01:00:00Z\",\"started_at\":\"2026-01-01T01:00:00Z\","
                "\"counts\":{\"running\":2,\"succeeded\":1,\"waiting\":3}}],"
                "\"next_cursor\":null}");
    const char *w2[] = {"workflows", "runs", WF_ID, "--limit", "5", NULL};
    assert_int_equal(run_cmd(cmd_workflows, w2, &out, &err), 0);
    assert_string_equal(req_at(2)->url, "/v1/workflows/" WF_ID "/runs?limit=5");
    assert_string_equal(out,
                        "ID     STATE    FIRE TIME             STARTED               FINISHED  "
                        "TASKS\n"
                        "wfr_1  running  2026-01-01T01:00:00Z  2026-01-01T01:00:00Z  -         "
                        "1 succeeded, 2 running, 3 waiting\n");
    free(out);
    free(err);
}

static void test_cmd_workflows_usage(void **state)
{
    (void)state;
    char *out, *err;
    const char *subs[] = {"submit", "update", "ls",    "get",    "runs",   "trigger",
                          "cancel", "retry",  "pause", "resume", "delete", NULL};
    for (int i = 0; subs[i]; i++) {
        const char *w[] = {"workflows", subs[i], "--help", NULL};
        assert_int_equal(run_cmd(cmd_workflows, w, &out, &err), 0);
        char *want = xasprintf("usage: sked workflows %s", subs[i]);
        if (strncmp(out, want, strlen(want)) != 0) fail_msg("%s --help: %s", subs[i], out);
        assert_non_null(strstr(out, "example"));
        free(want);
        free(out);
        free(err);
    }
    const char *bad[][6] = {
        {"workflows", "retry", "wfr_1", NULL},                  /* no TASK */
        {"workflows", "cancel", "wfr_1", "--downstream", NULL}, /* not its option */
        {"workflows", "submit", NULL},                          /* no -f */
        {"workflows", "get", WF_ID, "--dry-run", NULL},         /* not its option */
        {"workflows", "submit", "-f", "/nonexistent/x.yaml", NULL},
        {"workflows", "frobnicate", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(run_cmd(cmd_workflows, bad[i], &out, &err), CLI_EXIT_USAGE);
        assert_string_equal(out, "");
        free(out);
        free(err);
    }
    assert_int_equal(fake.nreqs, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_aligns_columns),
        cmocka_unit_test(test_table_counts_utf8_characters),
        cmocka_unit_test(test_table_without_header),
        cmocka_unit_test(test_error_text_problem_with_field),
        cmocka_unit_test(test_error_text_without_problem),
        cmocka_unit_test(test_transport_text_names_servers),
        cmocka_unit_test(test_fmt_time_is_utc_seconds),
        cmocka_unit_test(test_fmt_schedule_and_next_fire),
        cmocka_unit_test(test_query_and_escape),
        cmocka_unit_test(test_parse_int),
        cmocka_unit_test_setup_teardown(test_token_resolution_order, setup_tmpdir, teardown_tmpdir),
        cmocka_unit_test_setup_teardown(test_token_file_errors, setup_tmpdir, teardown_tmpdir),
        cmocka_unit_test_setup(test_submit_builds_full_document, setup_env),
        cmocka_unit_test_setup(test_submit_command_options_stay_with_command, setup_env),
        cmocka_unit_test_setup(test_submit_default_name_uses_basename, setup_env),
        cmocka_unit_test_setup(test_submit_at_is_utc, setup_env),
        cmocka_unit_test_setup(test_submit_type_and_config, setup_env),
        cmocka_unit_test_setup(test_submit_rejects_bad_arguments, setup_env),
        cmocka_unit_test_setup(test_edit_builds_patch, setup_env),
        cmocka_unit_test_setup(test_edit_merges_raw_json_under_options, setup_env),
        cmocka_unit_test_setup(test_edit_rejects_bad_arguments, setup_env),
        cmocka_unit_test_setup_teardown(test_cmd_submit_quiet_prints_id, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_submit_table_output, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_problem_goes_to_stderr, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_submit_wait_exits_with_outcome, fake_start,
                                        fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_jobs_edit_sends_if_match, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_jobs_edit_conflict_fails, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_jobs_ls_all_follows_cursor, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_jobs_trigger_and_json, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_preview_unsaved_schedule, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_runs_logs_prints_body, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_runs_get_not_found, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_workers_ls_table, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_unreachable_server_is_named, fake_start,
                                        fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_usage_errors_exit_2, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_workflows_submit_yaml, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_workflows_dry_run_sends_nothing, fake_start,
                                        fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_workflows_get_by_name_draws_latest_run, fake_start,
                                        fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_workflows_run_actions, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_workflows_update_sends_if_match, fake_start,
                                        fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_workflows_lists, fake_start, fake_stop),
        cmocka_unit_test_setup_teardown(test_cmd_workflows_usage, fake_start, fake_stop),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    argv_free(&parsed_argv);
    return failed;
}
