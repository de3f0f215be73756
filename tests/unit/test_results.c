/*
 * Unit tests for the worker's side of results and checkpoints
 * (worker/results.c, docs/results.md): the attempt's private directory and
 * the checkpoint it starts from, and the reading of what a job left there,
 * which must treat every name as hostile: a symbolic link (to a file only
 * the worker may read), a FIFO (that would block a reader for ever), a file
 * of another user, a file over the cap or one that grows; and the checks
 * of a result (one JSON value, kept as written) and of a checkpoint (UTF-8
 * text). Real files in a temp dir; the ownership cases need root (as the
 * tests run here) and are checked the other way round otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/xalloc.h"
#include "worker/spawn.h"
#include "worker/worker_int.h"

#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct fx {
    char dir[64];
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/sked-results-test-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

#define DIR_ (((struct fx *)*state)->dir)

static void put(const char *dir, const char *name, const char *data, size_t len)
{
    char *path = xasprintf("%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
    free(path);
}

/* results_read of dir/name for the worker's own user, cap max. */
static int rd(const char *dir, const char *name, size_t max, char **data, size_t *len, char *err)
{
    return results_read(dir, name, geteuid(), max, NULL, NULL, data, len, err, 256);
}

static void test_read_plain_empty_missing(void **state)
{
    char *data = NULL, err[256] = "";
    size_t len = 0;
    assert_int_equal(rd(DIR_, "result.json", 100, &data, &len, err), RESULTS_NONE);
    assert_null(data);
    put(DIR_, "result.json", "", 0);
    assert_int_equal(rd(DIR_, "result.json", 100, &data, &len, err), RESULTS_NONE);
    put(DIR_, "result.json", "{\"a\": 1}\n", 9);
    assert_int_equal(rd(DIR_, "result.json", 100, &data, &len, err), 0);
    assert_int_equal(len, 9);
    assert_string_equal(data, "{\"a\": 1}\n");
    free(data);
    /* Exactly the cap is taken; one byte more is not. */
    assert_int_equal(rd(DIR_, "result.json", 9, &data, &len, err), 0);
    free(data);
    assert_int_equal(rd(DIR_, "result.json", 8, &data, &len, err), SKED_ETOOBIG);
    assert_null(data);
    assert_string_equal(err, "9 bytes, over the 8-byte cap");
    /* A directory that is gone (the attempt's, removed): no file. */
    char *gone = xasprintf("%s/nope", DIR_);
    assert_int_equal(rd(gone, "result.json", 100, &data, &len, err), RESULTS_NONE);
    free(gone);
}

static void test_read_refuses_links_fifos_dirs(void **state)
{
    char *data = NULL, err[256] = "";
    size_t len = 0;
    put(DIR_, "secret", "root only", 9);
    char *secret = xasprintf("%s/secret", DIR_), *link = xasprintf("%s/result.json", DIR_);
    assert_int_equal(symlink(secret, link), 0);
    assert_true(rd(DIR_, "result.json", 100, &data, &len, err) < 0);
    assert_null(data);
    assert_string_equal(err, "it is a symbolic link, which is not followed");
    unlink(link);
    /* A FIFO nobody writes: refused at once, without blocking. */
    assert_int_equal(mkfifo(link, 0600), 0);
    assert_int_equal(rd(DIR_, "result.json", 100, &data, &len, err), SKED_EINVAL);
    assert_string_equal(err, "it is not a regular file");
    unlink(link);
    assert_int_equal(mkdir(link, 0700), 0);
    assert_int_equal(rd(DIR_, "result.json", 100, &data, &len, err), SKED_EINVAL);
    assert_string_equal(err, "it is not a regular file");
    rmdir(link);
    /* The directory itself may not be a link either. */
    char *dlink = xasprintf("%s/io", DIR_);
    assert_int_equal(symlink(DIR_, dlink), 0);
    assert_true(rd(dlink, "secret", 100, &data, &len, err) < 0);
    assert_null(data);
    free(dlink);
    free(secret);
    free(link);
}

/* A file the job's user does not own is refused: as root, a file of root's
 * for a job of nobody's (what a hard link to /etc/shadow would be). */
static void test_read_refuses_foreign_owner(void **state)
{
    char *data = NULL, err[256] = "";
    size_t len = 0;
    put(DIR_, "checkpoint", "42", 2);
    struct passwd *pw = getpwnam("nobody");
    assert_non_null(pw);
    if (geteuid() != 0) {
        /* Not root: the file is ours and a job of another uid is refused. */
        assert_int_equal(results_read(DIR_, "checkpoint", geteuid() + 1, 100, NULL, NULL, &data,
                                      &len, err, sizeof err),
                         SKED_EINVAL);
        return;
    }
    assert_int_equal(
        results_read(DIR_, "checkpoint", pw->pw_uid, 100, NULL, NULL, &data, &len, err, sizeof err),
        SKED_EINVAL);
    assert_null(data);
    char want[128];
    snprintf(want, sizeof want, "it belongs to uid 0, not to the job's user (uid %u)",
             (unsigned)pw->pw_uid);
    assert_string_equal(err, want);
    char *path = xasprintf("%s/checkpoint", DIR_);
    assert_int_equal(chown(path, pw->pw_uid, pw->pw_gid), 0);
    free(path);
    assert_int_equal(
        results_read(DIR_, "checkpoint", pw->pw_uid, 100, NULL, NULL, &data, &len, err, sizeof err),
        0);
    assert_string_equal(data, "42");
    free(data);
}

/* The heartbeat's look: a file as it was last seen is not read again (and
 * a refused one not judged again); any change is. */
static void test_read_unless_same(void **state)
{
    char *data = NULL, err[256] = "";
    size_t len = 0;
    results_sig_t seen, now;
    put(DIR_, "checkpoint", "1", 1);
    assert_int_equal(
        results_read(DIR_, "checkpoint", geteuid(), 100, NULL, &seen, &data, &len, err, sizeof err),
        0);
    free(data);
    assert_int_equal(
        results_read(DIR_, "checkpoint", geteuid(), 100, &seen, &now, &data, &len, err, sizeof err),
        RESULTS_SAME);
    assert_null(data);
    /* Rewritten by rename (a new inode), even with the same size. */
    put(DIR_, "checkpoint.tmp", "2", 1);
    char *a = xasprintf("%s/checkpoint.tmp", DIR_), *b = xasprintf("%s/checkpoint", DIR_);
    assert_int_equal(rename(a, b), 0);
    assert_int_equal(
        results_read(DIR_, "checkpoint", geteuid(), 100, &seen, &now, &data, &len, err, sizeof err),
        0);
    assert_string_equal(data, "2");
    free(data);
    /* Over the cap: refused once, then the same version is left alone. */
    put(DIR_, "checkpoint", "12345", 5);
    assert_int_equal(
        results_read(DIR_, "checkpoint", geteuid(), 4, &now, &seen, &data, &len, err, sizeof err),
        SKED_ETOOBIG);
    assert_int_equal(
        results_read(DIR_, "checkpoint", geteuid(), 4, &seen, &now, &data, &len, err, sizeof err),
        RESULTS_SAME);
    free(a);
    free(b);
}

static void test_check_json(void **state)
{
    char err[256];
    char *d = xstrdup("  \n{\"rows\": 3, \"ratio\": 0.10, \"big\": 12345678901234567890}\n\t ");
    size_t len = strlen(d);
    assert_int_equal(results_check_json(d, &len, err, sizeof err), 0);
    /* Kept as written (the spelling of numbers too), less the whitespace. */
    assert_string_equal(d, "{\"rows\": 3, \"ratio\": 0.10, \"big\": 12345678901234567890}");
    assert_int_equal(len, strlen(d));
    free(d);
    static const char *const ok[] = {"null", "\"text\"", "-1.5e3", "[]", "true"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        d = xstrdup(ok[i]);
        len = strlen(d);
        assert_int_equal(results_check_json(d, &len, err, sizeof err), 0);
        free(d);
    }
    struct {
        const char *text, *why;
    } bad[] = {
        {"{\n  \"a\": 1,\n  \"b\": oops\n}\n", "not valid JSON at line 3: "},
        {"{\"a\": 1} {\"b\": 2}", "not valid JSON at line 1: "},
        {"{'a': 1}", "not valid JSON at line 1: "},
        {"1e400", "not valid JSON at line 1: "},
        {"\"caf\xe9\"", "not valid JSON at line 1: "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        d = xstrdup(bad[i].text);
        len = strlen(d);
        assert_int_equal(results_check_json(d, &len, err, sizeof err), SKED_EINVAL);
        assert_true(!strncmp(err, bad[i].why, strlen(bad[i].why)));
        free(d);
    }
    char nul[] = "[1,\0 2]";
    len = sizeof nul - 1;
    assert_int_equal(results_check_json(nul, &len, err, sizeof err), SKED_EINVAL);
    assert_string_equal(err, "not valid JSON: it holds a NUL byte");
}

static void test_check_text_and_encoding(void **state)
{
    char err[256];
    assert_int_equal(results_check_text("step 7\n", 7, err, sizeof err), 0);
    assert_int_equal(results_check_text("\xc3\xa9t\xc3\xa9", 5, err, sizeof err), 0);
    assert_int_equal(results_check_text("caf\xe9", 4, err, sizeof err), SKED_EINVAL);
    assert_string_equal(err, "not UTF-8 text");
    assert_int_equal(results_check_text("a\0b", 3, err, sizeof err), SKED_EINVAL);
    assert_string_equal(err, "not text: it holds a NUL byte");
    /* The encoded length the heartbeat budgets is jansson's. */
    static const char *const s[] = {"plain", "q\"b\\s", "\n\t\r\b\f", "\x01\x1f", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
        json_t *j = json_string(s[i]);
        char *enc = json_dumps(j, JSON_ENCODE_ANY);
        assert_int_equal(results_json_len(s[i], strlen(s[i])), strlen(enc));
        free(enc);
        json_decref(j);
    }
    assert_int_not_equal(results_hash("a", 1), results_hash("b", 1));
    assert_int_equal(results_hash("abc", 3), results_hash("abc", 3));
}

static void test_dir_new(void **state)
{
    char *dir = NULL, **env = NULL;
    assert_int_equal(results_dir_new(DIR_, "run_x.2.io", NULL, "41\n", 3, "{\"a\":1}", &dir, &env),
                     0);
    struct stat st;
    assert_int_equal(lstat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    char *want = xasprintf("SKED_RESULT_FILE=%s/result.json", dir);
    assert_string_equal(env[0], want);
    free(want);
    want = xasprintf("SKED_CHECKPOINT_FILE=%s/checkpoint", dir);
    assert_string_equal(env[1], want);
    free(want);
    want = xasprintf("SKED_CHECKPOINT_IN=%s/checkpoint.in", dir);
    assert_string_equal(env[2], want);
    free(want);
    want = xasprintf("SKED_UPSTREAM_RESULTS=%s/upstream.json", dir);
    assert_string_equal(env[3], want);
    free(want);
    assert_null(env[4]);
    char *data = NULL, err[256];
    size_t len;
    assert_int_equal(rd(dir, "checkpoint.in", 100, &data, &len, err), 0);
    assert_string_equal(data, "41\n");
    free(data);
    assert_int_equal(rd(dir, "upstream.json", 100, &data, &len, err), 0);
    assert_string_equal(data, "{\"a\":1}");
    free(data);
    spawn_env_free(env);
    assert_int_equal(spawn_tree_remove(dir), 0);
    free(dir);

    /* Without a checkpoint there is no SKED_CHECKPOINT_IN; as root, the
     * directory and the file belong to the job's user. */
    struct passwd *pw = getpwnam("nobody");
    assert_non_null(pw);
    spawn_cred_t cred = {pw->pw_uid, pw->pw_gid, 0, NULL};
    bool root = geteuid() == 0;
    assert_int_equal(
        results_dir_new(DIR_, "run_y.1.io", root ? &cred : NULL, NULL, 0, NULL, &dir, &env), 0);
    assert_non_null(env[1]);
    assert_null(env[2]);
    assert_int_equal(lstat(dir, &st), 0);
    assert_int_equal(st.st_uid, root ? pw->pw_uid : geteuid());
    spawn_env_free(env);
    free(dir);
    if (root) {
        assert_int_equal(results_dir_new(DIR_, "run_z.3.io", &cred, "cp", 2, NULL, &dir, &env), 0);
        char *in = xasprintf("%s/checkpoint.in", dir);
        assert_int_equal(lstat(in, &st), 0);
        assert_int_equal(st.st_uid, pw->pw_uid);
        assert_int_equal(st.st_mode & 0777, 0600);
        free(in);
        spawn_env_free(env);
        free(dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_plain_empty_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_refuses_links_fifos_dirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_refuses_foreign_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_unless_same, setup, teardown),
        cmocka_unit_test(test_check_json),
        cmocka_unit_test(test_check_text_and_encoding),
        cmocka_unit_test_setup_teardown(test_dir_new, setup, teardown),
    };
    return cmocka_run_group_tests_name("results", tests, NULL, NULL);
}
