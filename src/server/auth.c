/*
 * API tokens (see auth.h): minting with libsodium's randomness, hashing
 * with BLAKE2b, verification through the store's lookup-by-hash, and the
 * bootstrap of the first admin token into a private file.
 */
#include "server/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/log.h"
#include "common/xalloc.h"

#define PREFIX_LEN (sizeof AUTH_TOKEN_PREFIX - 1)
#define B64_LEN    43 /* unpadded base64 of 32 bytes */

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_rc;

static void sodium_setup(void)
{
    sodium_rc = sodium_init();
}

static void ensure_sodium(void)
{
    pthread_once(&sodium_once, sodium_setup);
    if (sodium_rc < 0) {
        /* Without a randomness source no token can be minted safely; this
         * is as unrecoverable as running out of memory. */
        log_error("auth", "libsodium failed to initialise");
        abort();
    }
}

void auth_token_generate(char out[AUTH_TOKEN_BUFLEN])
{
    unsigned char raw[AUTH_SECRET_BYTES];
    ensure_sodium();
    randombytes_buf(raw, sizeof raw);
    memcpy(out, AUTH_TOKEN_PREFIX, PREFIX_LEN);
    sodium_bin2base64(out + PREFIX_LEN, AUTH_TOKEN_BUFLEN - PREFIX_LEN, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

void auth_token_hash(const char *token, char out[AUTH_HASH_HEX_LEN])
{
    unsigned char h[32];
    ensure_sodium();
    crypto_generichash(h, sizeof h, (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, AUTH_HASH_HEX_LEN, h, sizeof h);
}

const char *auth_bearer(const char *header)
{
    if (!header) return NULL;
    while (*header == ' ' || *header == '\t')
        header++;
    if (strncasecmp(header, "Bearer", 6) != 0) return NULL;
    header += 6;
    if (*header != ' ' && *header != '\t') return NULL;
    while (*header == ' ' || *header == '\t')
        header++;
    return *header ? header : NULL;
}

/* Only strings that could be one of our secrets reach the store: a bounded,
 * fixed shape keeps garbage (and megabyte headers) away from the hash and
 * the query. Trailing whitespace a client may leave is not accepted. */
static int well_formed(const char *token)
{
    if (strncmp(token, AUTH_TOKEN_PREFIX, PREFIX_LEN) != 0) return 0;
    const char *p = token + PREFIX_LEN;
    size_t n = 0;
    for (; p[n]; n++) {
        char ch = p[n];
        if (n >= B64_LEN) return 0;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return 0;
    }
    return n == B64_LEN;
}

int auth_verify(store_t *st, const char *token, int64_t now_ms, store_token_t *out)
{
    char hash[AUTH_HASH_HEX_LEN];
    memset(out, 0, sizeof *out);
    if (!token || !well_formed(token)) return SKED_EUNAUTH;
    auth_token_hash(token, hash);
    /* Timing: the store finds the token by the hash of the presented
     * secret, so how long a lookup takes depends only on a hash an attacker
     * cannot steer towards a stored one (BLAKE2b is preimage-resistant);
     * there is no byte-by-byte comparison of secrets to leak through
     * timing. */
    int rc = store_token_lookup(st, hash, now_ms, out);
    if (rc == SKED_ENOTFOUND) return SKED_EUNAUTH;
    if (rc < 0) {
        store_token_clear(out);
        return rc;
    }
    if (out->revoked || (out->expires_ms >= 0 && out->expires_ms <= now_ms)) {
        /* The store already filters these; checked again so a backend bug
         * cannot let a revoked token in. */
        store_token_clear(out);
        return SKED_EUNAUTH;
    }
    return 0;
}

int auth_token_create(store_t *st, const char *name, token_role_t role, const char *ns,
                      int64_t expires_ms, int64_t now_ms, char out_token[AUTH_TOKEN_BUFLEN],
                      char *out_id)
{
    char hash[AUTH_HASH_HEX_LEN];
    store_token_t t;
    memset(&t, 0, sizeof t);
    auth_token_generate(out_token);
    auth_token_hash(out_token, hash);
    t.name = (char *)name; /* borrowed for the call; not cleared below */
    t.role = role;
    t.ns = (char *)(ns ? ns : "");
    t.created_ms = now_ms;
    t.expires_ms = expires_ms;
    int rc = store_token_create(st, &t, hash, now_ms);
    if (rc == 0 && out_id) memcpy(out_id, t.id, SKED_ID_LEN);
    if (rc < 0) sodium_memzero(out_token, AUTH_TOKEN_BUFLEN);
    return rc;
}

char *auth_token_file_read(const char *path)
{
    char line[256];
    FILE *f = fopen(path, "re");
    if (!f) return NULL;
    char *got = fgets(line, sizeof line, f);
    int saved = errno;
    fclose(f);
    if (!got) {
        errno = saved ? saved : ENODATA;
        return NULL;
    }
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
        line[--n] = 0;
    if (!n) {
        errno = ENODATA;
        return NULL;
    }
    char *s = xstrdup(line);
    sodium_memzero(line, sizeof line);
    return s;
}

/* Writes secret to path atomically: a fresh temporary file beside it
 * (created exclusively, so nobody else's file or symlink is followed, and
 * private from its first instant), synced, then renamed over path, then
 * the directory synced so the name survives a crash. */
static int write_secret(const char *path, const char *secret)
{
    int rc = 0, fd = -1;
    char *tmp = xasprintf("%s.tmp-XXXXXX", path);
    char *dircopy = xstrdup(path);
    int dfd = -1;

    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        log_error("auth", "cannot create %s: %s", tmp, strerror(errno));
        FREE_NULL(tmp);
        goto out;
    }
    if (fchmod(fd, 0600) < 0) {
        rc = -errno;
        goto out;
    }
    size_t len = strlen(secret);
    char *line = xasprintf("%s\n", secret);
    ssize_t w = write(fd, line, len + 1);
    int saved = errno;
    sodium_memzero(line, len + 1);
    free(line);
    if (w != (ssize_t)(len + 1)) {
        rc = w < 0 ? -saved : SKED_EIO;
        goto out;
    }
    if (fsync(fd) < 0) {
        rc = -errno;
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = -errno;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto out;
    }
    FREE_NULL(tmp); /* renamed: nothing left to unlink */
    dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) fsync(dfd);
out:
    if (rc < 0 && tmp) log_error("auth", "cannot write token file %s: %s", path, sked_strerror(rc));
    if (fd >= 0) close(fd);
    if (dfd >= 0) close(dfd);
    if (tmp) unlink(tmp);
    free(tmp);
    free(dircopy);
    return rc;
}

int auth_bootstrap(store_t *st, const char *token_file, int64_t now_ms, char **admin_token)
{
    int rc = 0;
    int64_t count = 0;
    char secret[AUTH_TOKEN_BUFLEN];
    char hash[AUTH_HASH_HEX_LEN];
    char *readback = NULL;
    store_token_t t;
    memset(&t, 0, sizeof t);
    *admin_token = NULL;

    rc = store_token_count(st, &count);
    if (rc < 0 || count > 0) goto out;

    auth_token_generate(secret);
    auth_token_hash(secret, hash);
    /* The file first, the store second: if the store write fails, the next
     * start sees no token and bootstraps again, overwriting the file. The
     * other order could leave an admin token that nobody can read, locking
     * everyone out of a store for good. */
    if (token_file) {
        rc = write_secret(token_file, secret);
        if (rc < 0) goto out;
        /* Read back and compare before committing to it, in constant time
         * as any comparison of secrets should be. */
        readback = auth_token_file_read(token_file);
        if (!readback || strlen(readback) != strlen(secret) ||
            sodium_memcmp(readback, secret, strlen(secret)) != 0) {
            log_error("auth", "token file %s does not read back as written", token_file);
            rc = SKED_EIO;
            goto out;
        }
    }
    t.name = "admin";
    t.role = ROLE_ADMIN;
    t.ns = "";
    t.created_ms = now_ms;
    t.expires_ms = -1;
    rc = store_token_create(st, &t, hash, now_ms);
    if (rc < 0) {
        log_error("auth", "cannot store the bootstrap admin token: %s", sked_strerror(rc));
        goto out;
    }
    log_info("auth", "created the bootstrap admin token %s%s%s", t.id, token_file ? " in " : "",
             token_file ? token_file : "");
    *admin_token = xstrdup(secret);
out:
    if (readback) {
        sodium_memzero(readback, strlen(readback));
        free(readback);
    }
    sodium_memzero(secret, sizeof secret);
    return rc;
}

bool auth_role_allows(token_role_t role, enum http_access access)
{
    switch (access) {
    case ACCESS_PUBLIC:
        return true;
    case ACCESS_READ:
        return role == ROLE_ADMIN || role == ROLE_OPERATOR || role == ROLE_USER ||
               role == ROLE_VIEWER;
    case ACCESS_WRITE:
        return role == ROLE_ADMIN || role == ROLE_OPERATOR || role == ROLE_USER;
    case ACCESS_WORKER:
        return role == ROLE_ADMIN || role == ROLE_WORKER;
    case ACCESS_ADMIN:
        return role == ROLE_ADMIN;
    }
    return false;
}
