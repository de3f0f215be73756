/*
 * checksum: the SHA-256 or BLAKE2b-512 digest of a file on the worker, as
 * sha256sum or b2sum print it, computed with libsodium's streaming API.
 * The example of a plugin that does real work in blocks: it checks for a
 * cancel between blocks, reports progress by bytes (at most once a
 * second), and sets a result the runs after it can use.
 *
 *     {"name": "verify-backup", "type": "checksum",
 *      "config": {"path": "/srv/backup/db.dump", "algorithm": "sha256"}}
 *
 * config: "path" (required, absolute: the plugin host's working directory
 * is nobody's business) and "algorithm" ("sha256", the default, or
 * "blake2b"). Result: {"path", "algorithm", "hex", "bytes"}; stdout gets
 * the sha256sum-style line "<hex>  <path>". A file that is missing,
 * unreadable (the plugin host runs as the worker's job user) or not a
 * regular file fails the attempt with the reason.
 */
#include <sked/plugin.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (64 * 1024) /* bytes read between two looks at the cancel flag */

SKED_PLUGIN_MANIFEST("checksum", "1.0.0",
                     "{\"type\":\"object\","
                     "\"properties\":{"
                     "\"path\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":4095,"
                     "\"pattern\":\"^/\",\"description\":\"absolute path of the file\"},"
                     "\"algorithm\":{\"enum\":[\"sha256\",\"blake2b\"],\"default\":\"sha256\"}},"
                     "\"required\":[\"path\"],"
                     "\"additionalProperties\":false}");

typedef struct cfg {
    char *path;  /* owned; free() */
    int blake2b; /* 0: SHA-256, 1: BLAKE2b-512 */
} cfg;

/* Reads config into *c (free c->path after). Returns 0, or -1 with the bad
 * field and a sentence. The schema already said most of this; the plugin
 * checks again what it relies on, and what no schema can say: a NUL byte
 * inside the path (JSON allows "\u0000"; a file name cannot hold it). */
static int parse(const char *text, size_t len, cfg *c, char *field, size_t fieldlen, char *detail,
                 size_t detaillen)
{
    json_t *root = json_loadb(text, len, JSON_ALLOW_NUL, NULL);
    int rc = -1;
    c->path = NULL;
    c->blake2b = 0;
    if (!json_is_object(root)) {
        snprintf(field, fieldlen, "config");
        snprintf(detail, detaillen, "must be a JSON object");
        goto out;
    }
    json_t *p = json_object_get(root, "path");
    if (!json_is_string(p) || json_string_value(p)[0] != '/') {
        snprintf(field, fieldlen, "config.path");
        snprintf(detail, detaillen, "must be an absolute path");
        goto out;
    }
    if (strlen(json_string_value(p)) != json_string_length(p)) {
        snprintf(field, fieldlen, "config.path");
        snprintf(detail, detaillen, "must not contain a NUL byte");
        goto out;
    }
    json_t *a = json_object_get(root, "algorithm");
    if (a && !(json_is_string(a) && (!strcmp(json_string_value(a), "sha256") ||
                                     !strcmp(json_string_value(a), "blake2b")))) {
        snprintf(field, fieldlen, "config.algorithm");
        snprintf(detail, detaillen, "must be one of: sha256, blake2b");
        goto out;
    }
    c->blake2b = a && !strcmp(json_string_value(a), "blake2b");
    c->path = strdup(json_string_value(p));
    if (!c->path) {
        snprintf(field, fieldlen, "config");
        snprintf(detail, detaillen, "out of memory");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static int init(const sked_host *host, void **state, char *err, size_t errlen)
{
    /* Once, on the main thread, before any run: sodium_init picks the
     * fastest implementations and is not to be raced. */
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return SKED_PLUGIN_FAILED;
    }
    return SKED_PLUGIN_OK;
}

static int validate(void *state, const char *config, size_t len, char *field, size_t fieldlen,
                    char *detail, size_t detaillen)
{
    cfg c;
    int rc = parse(config, len, &c, field, fieldlen, detail, detaillen);
    free(c.path);
    return rc ? SKED_PLUGIN_FAILED : SKED_PLUGIN_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Opens path for reading, refusing what is not a regular file. O_NONBLOCK
 * so that a FIFO cannot block the open (and the attempt with it) forever.
 * Returns the fd and its size in *size, or -1 with errno (EINVAL: not a
 * regular file). */
static int open_regular(const char *path, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return -1;
    struct stat st;
    int e = fstat(fd, &st) < 0 ? errno : !S_ISREG(st.st_mode) ? EINVAL : 0;
    if (e) {
        close(fd);
        errno = e;
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

static int run(void *state, sked_attempt *att, const sked_host *host)
{
    size_t len = 0;
    const char *config = host->config(att, &len);
    char field[64], detail[128], eb[128];
    cfg c;
    int fd = -1, rc = SKED_PLUGIN_FAILED;
    unsigned char *buf = NULL;
    if (parse(config, len, &c, field, sizeof field, detail, sizeof detail)) {
        host->fail(att, "%s: %s", field, detail);
        goto out;
    }
    uint64_t size = 0;
    fd = open_regular(c.path, &size);
    if (fd < 0) {
        int e = errno;
        host->fail(att, "config.path: %s: %s", c.path,
                   e == EINVAL ? "not a regular file" : strerror_r(e, eb, sizeof eb));
        goto out;
    }
    buf = malloc(BLOCK); /* not on the stack: a host thread's may be small */
    if (!buf) {
        host->fail(att, "out of memory");
        goto out;
    }

    /* libsodium wants its BLAKE2b state aligned to 64 bytes, which the
     * stack gives (the type says so) and malloc does not. */
    crypto_hash_sha256_state sha;
    crypto_generichash_state b2;
    if (c.blake2b)
        crypto_generichash_init(&b2, NULL, 0, crypto_generichash_BYTES_MAX);
    else
        crypto_hash_sha256_init(&sha);

    uint64_t bytes = 0;
    double last = now_s();
    for (;;) {
        if (host->cancelled(att)) {
            host->fail(att, "stopped after %llu of %llu bytes", (unsigned long long)bytes,
                       (unsigned long long)size);
            goto out;
        }
        ssize_t n = read(fd, buf, BLOCK);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n < 0) {
            host->fail(att, "config.path: %s: %s", c.path, strerror_r(errno, eb, sizeof eb));
            goto out;
        }
        if (n == 0) break;
        if (c.blake2b)
            crypto_generichash_update(&b2, buf, (unsigned long long)n);
        else
            crypto_hash_sha256_update(&sha, buf, (unsigned long long)n);
        bytes += (uint64_t)n;
        double t = now_s();
        if (t - last >= 1.0) {
            last = t;
            char msg[96];
            snprintf(msg, sizeof msg, "%llu of %llu bytes", (unsigned long long)bytes,
                     (unsigned long long)size);
            /* The file may grow while it is read: never report more than all. */
            host->progress(att, size && bytes < size ? (double)bytes / (double)size : 1.0, msg);
        }
    }

    unsigned char digest[crypto_generichash_BYTES_MAX];
    size_t dlen = c.blake2b ? crypto_generichash_BYTES_MAX : crypto_hash_sha256_BYTES;
    if (c.blake2b)
        crypto_generichash_final(&b2, digest, dlen);
    else
        crypto_hash_sha256_final(&sha, digest);
    char hex[2 * crypto_generichash_BYTES_MAX + 1];
    sodium_bin2hex(hex, sizeof hex, digest, dlen);

    json_t *res =
        json_pack("{s:s, s:s, s:s, s:I}", "path", c.path, "algorithm",
                  c.blake2b ? "blake2b" : "sha256", "hex", hex, "bytes", (json_int_t)bytes);
    char *text = res ? json_dumps(res, JSON_COMPACT) : NULL;
    json_decref(res);
    if (!text) {
        host->fail(att, "out of memory");
        goto out;
    }
    host->result(att, text, strlen(text));
    free(text);
    host->outputf(att, SKED_STDOUT, "%s  %s\n", hex, c.path);
    rc = SKED_PLUGIN_OK;
out:
    if (fd >= 0) close(fd);
    free(buf);
    free(c.path);
    return rc;
}

SKED_PLUGIN_DESCRIPTOR("checksum", "1.0.0", init, NULL, validate, run);
