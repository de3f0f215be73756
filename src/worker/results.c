/*
 * What an attempt hands back besides its exit status (docs/results.md),
 * on the worker's side: the attempt's private directory that holds the
 * files of the handoff ($SKED_RESULT_FILE, $SKED_CHECKPOINT_FILE and, for a
 * retry, $SKED_CHECKPOINT_IN), and the careful reading of what the job
 * left there. See worker_int.h for the contract.
 *
 * The job may run as another user than the worker (a root worker with
 * --run-as), and it owns the directory, so everything in it is hostile:
 * a name may be a symbolic link to a file only root may read, a FIFO that
 * would block a reader forever, a device, or a file that keeps growing.
 * Files are opened relative to the directory, never following a link and
 * never blocking, and taken only when they are regular files owned by the
 * job's user (a hard link to someone else's file is not: the kernel's
 * protected_hardlinks keeps a user from linking files it does not own),
 * and read up to the cap and no further.
 */
#include "worker/worker_int.h"
#include "common/error.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes len bytes of data to a new file name in dirfd (mode 0600, owned by
 * cred's user when given). Returns 0 or -errno. */
static int write_new(int dirfd, const char *name, const char *data, size_t len,
                     const spawn_cred_t *cred)
{
    int rc = 0;
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            rc = -errno;
            break;
        }
        data += w;
        len -= (size_t)w;
    }
    if (rc == 0 && cred && fchown(fd, cred->uid, cred->gid) < 0) rc = -errno;
    if (close(fd) < 0 && rc == 0) rc = -errno;
    return rc;
}

int results_dir_new(const char *base, const char *prefix, const spawn_cred_t *cred,
                    const char *checkpoint_in, size_t in_len, const char *upstream, char **dir_out,
                    char ***env_out)
{
    char *dir = NULL;
    int dfd = -1;
    *dir_out = NULL;
    *env_out = NULL;
    int rc = spawn_workdir_new(base, prefix, cred, &dir);
    if (rc < 0) return rc;
    if (checkpoint_in || upstream) {
        /* Freshly made, 0700 and not yet known to the job: nothing can be
         * planted here yet, and O_EXCL|O_NOFOLLOW would refuse it anyway. */
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        rc = dfd < 0 ? -errno : 0;
        if (rc == 0 && checkpoint_in)
            rc = write_new(dfd, RESULTS_CHECKPOINT_IN, checkpoint_in, in_len, cred);
        if (rc == 0 && upstream)
            rc = write_new(dfd, RESULTS_UPSTREAM, upstream, strlen(upstream), cred);
        if (dfd >= 0) close(dfd);
        if (rc < 0) {
            spawn_tree_remove(dir);
            free(dir);
            return rc;
        }
    }
    char **env = xcalloc(RESULTS_ENV_MAX + 1, sizeof *env);
    int n = 0;
    env[n++] = xasprintf("SKED_RESULT_FILE=%s/" RESULTS_RESULT, dir);
    env[n++] = xasprintf("SKED_CHECKPOINT_FILE=%s/" RESULTS_CHECKPOINT, dir);
    if (checkpoint_in) env[n++] = xasprintf("SKED_CHECKPOINT_IN=%s/" RESULTS_CHECKPOINT_IN, dir);
    if (upstream) env[n++] = xasprintf("SKED_UPSTREAM_RESULTS=%s/" RESULTS_UPSTREAM, dir);
    *dir_out = dir;
    *env_out = env;
    return 0;
}

static bool sig_equal(const results_sig_t *a, const results_sig_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static void sig_of(const struct stat *st, results_sig_t *sig)
{
    sig->dev = st->st_dev;
    sig->ino = st->st_ino;
    sig->size = st->st_size;
    sig->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    sig->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

#define ERRF(...) snprintf(err, errlen, __VA_ARGS__)

int results_read(const char *dir, const char *name, uid_t uid, size_t max,
                 const results_sig_t *unless, results_sig_t *sig, char **data, size_t *len,
                 char *err, size_t errlen)
{
    int dfd = -1, fd = -1, rc;
    char *buf = NULL;
    struct stat st;
    *data = NULL;
    *len = 0;
    if (sig) memset(sig, 0, sizeof *sig);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        rc = errno == ENOENT ? RESULTS_NONE : -errno;
        if (rc < 0) ERRF("cannot open its directory: %s", strerror(-rc));
        goto out;
    }
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        if (rc == -ENOENT)
            rc = RESULTS_NONE;
        else if (rc == -ELOOP)
            ERRF("it is a symbolic link, which is not followed");
        else
            ERRF("cannot open it: %s", strerror(-rc));
        goto out;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        ERRF("cannot stat it: %s", strerror(-rc));
        goto out;
    }
    if (sig) sig_of(&st, sig);
    /* Before judging it: a file found wanting is reported once per version. */
    if (unless && sig && sig_equal(unless, sig)) {
        rc = RESULTS_SAME;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = SKED_EINVAL;
        ERRF("it is not a regular file");
        goto out;
    }
    if (st.st_uid != uid) {
        rc = SKED_EINVAL;
        ERRF("it belongs to uid %u, not to the job's user (uid %u)", (unsigned)st.st_uid,
             (unsigned)uid);
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = SKED_ETOOBIG;
        ERRF("%lld bytes, over the %zu-byte cap", (long long)st.st_size, max);
        goto out;
    }
    /* One byte more than the cap tells a file that grew since the stat. */
    buf = xmalloc(max + 2);
    size_t got = 0;
    while (got <= max) {
        ssize_t r = read(fd, buf + got, max + 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = -errno;
            ERRF("cannot read it: %s", strerror(-rc));
            goto out;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    if (got > max) {
        rc = SKED_ETOOBIG;
        ERRF("more than the %zu-byte cap", max);
        goto out;
    }
    if (got == 0) {
        rc = RESULTS_NONE; /* an empty file is no result and no checkpoint */
        goto out;
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (fd >= 0) close(fd);
    if (dfd >= 0) close(dfd);
    return rc;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int results_check_json(char *data, size_t *len, char *err, size_t errlen)
{
    json_error_t e;
    /* A NUL inside would end the text the store keeps early. */
    if (memchr(data, '\0', *len)) {
        ERRF("not valid JSON: it holds a NUL byte");
        return SKED_EINVAL;
    }
    /* As reals, integers of any size are JSON jansson takes (numbers
     * beyond a double's range are refused). */
    json_t *v = json_loadb(data, *len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &e);
    if (!v) {
        ERRF("not valid JSON at line %d: %s", e.line, e.text);
        return SKED_EINVAL;
    }
    json_decref(v);
    /* Kept as written, less the whitespace around the value (a trailing
     * newline from echo). */
    size_t a = 0, b = *len;
    while (a < b && is_space(data[a]))
        a++;
    while (b > a && is_space(data[b - 1]))
        b--;
    memmove(data, data + a, b - a);
    data[b - a] = '\0';
    *len = b - a;
    return 0;
}

int results_check_text(const char *data, size_t len, char *err, size_t errlen)
{
    if (memchr(data, '\0', len)) {
        ERRF("not text: it holds a NUL byte");
        return SKED_EINVAL;
    }
    json_t *s = json_stringn(data, len); /* NULL: not UTF-8 */
    if (!s) {
        ERRF("not UTF-8 text");
        return SKED_EINVAL;
    }
    json_decref(s);
    return 0;
}

uint64_t results_hash(const char *data, size_t len)
{
    uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)data[i];
        h *= UINT64_C(1099511628211);
    }
    return h;
}

size_t results_json_len(const char *s, size_t len)
{
    size_t n = 2; /* the quotes */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            n += 2;
        else if (c < 0x20)
            n += 6;
        else
            n++;
    }
    return n;
}
