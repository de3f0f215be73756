/*
 * Identity and access (see auth.h): token minting with libsodium's
 * randomness, hashing with BLAKE2b, verification through the store's
 * lookup-by-hash, the bootstrap of the first admin token into a private
 * file; Argon2id passwords with a constant-work failure path and login
 * throttling; the role table; namespace scoping; audit entries.
 */
#include "server/auth.h"
#include "server/ratelimit.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
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
    ensure_sodium(); /* auth_verify hashes the same way, keeping the raw bytes */
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

/* ---- the token cache -----------------------------------------------------
 *
 * Every request presents a token; looking it up in the store costs a read
 * transaction, a tenth of what an ordinary write costs the whole server.
 * Verified tokens are kept here by the BLAKE2b hash of their secret for
 * AUTH_CACHE_TTL_MS, so a token revoked, expired or re-roled on any server
 * of a cluster stops working here within that time (the promise, in
 * docs/security.md: within a second). Changes made through this server
 * take effect at once: auth_cache_forget() empties the cache.
 *
 * Direct-mapped: a slot per hash prefix, a newer token evicting an older
 * one in the same slot. Only tokens the store accepted are kept: a
 * guessed secret always reaches the store (and the per-address limit), so
 * guessing cannot fill memory or evict the tokens in use. The hash, not
 * the secret, is compared, with sodium_memcmp. */

#define TC_SLOTS 1024 /* a power of two */

struct tc_entry {
    unsigned char key[32];
    bool used;
    uint64_t gen;       /* tc_gen when fetched: older ones are forgotten */
    int64_t fetched_ns; /* monotonic */
    store_token_t tok;  /* its strings owned here */
};

static struct tc_entry tcache[TC_SLOTS];
static pthread_mutex_t tc_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t tc_gen = 1; /* under tc_mu */
static void tok_copy(store_token_t *dst, const store_token_t *src)
{
    *dst = *src;
    dst->name = src->name ? xstrdup(src->name) : NULL;
    dst->ns = src->ns ? xstrdup(src->ns) : NULL;
    dst->user = src->user ? xstrdup(src->user) : NULL;
}

static struct tc_entry *tc_slot(const unsigned char key[32])
{
    uint32_t h;
    memcpy(&h, key, sizeof h);
    return &tcache[h & (TC_SLOTS - 1)];
}

void auth_cache_forget(void)
{
    pthread_mutex_lock(&tc_mu);
    tc_gen++;
    pthread_mutex_unlock(&tc_mu);
}

/* A fresh cached copy of the token hashed to key into *out: true. Else
 * *gen is the generation a lookup starting now must be kept under (one
 * that auth_cache_forget overtakes is stale as soon as it is kept). */
static bool tc_get(const unsigned char key[32], int64_t now_ns, store_token_t *out, uint64_t *gen)
{
    bool hit = false;
    pthread_mutex_lock(&tc_mu);
    *gen = tc_gen;
    struct tc_entry *e = tc_slot(key);
    if (e->used && e->gen == tc_gen &&
        now_ns - e->fetched_ns < (int64_t)AUTH_CACHE_TTL_MS * 1000000 &&
        sodium_memcmp(e->key, key, sizeof e->key) == 0) {
        tok_copy(out, &e->tok);
        hit = true;
    }
    pthread_mutex_unlock(&tc_mu);
    return hit;
}

static void tc_put(const unsigned char key[32], int64_t now_ns, const store_token_t *tok,
                   uint64_t gen)
{
    pthread_mutex_lock(&tc_mu);
    struct tc_entry *e = tc_slot(key);
    if (e->used) store_token_clear(&e->tok);
    memcpy(e->key, key, sizeof e->key);
    e->used = true;
    e->gen = gen;
    e->fetched_ns = now_ns;
    tok_copy(&e->tok, tok);
    pthread_mutex_unlock(&tc_mu);
}

/* Records a use written to the store in the cached copy, so the next
 * requests within the cache's life do not write it again. */
static void tc_touched(const unsigned char key[32], int64_t now_ms)
{
    pthread_mutex_lock(&tc_mu);
    struct tc_entry *e = tc_slot(key);
    if (e->used && sodium_memcmp(e->key, key, sizeof e->key) == 0) e->tok.last_used_ms = now_ms;
    pthread_mutex_unlock(&tc_mu);
}

int auth_verify(store_t *st, const char *token, int64_t now_ms, store_token_t *out)
{
    unsigned char key[32];
    char hash[AUTH_HASH_HEX_LEN];
    memset(out, 0, sizeof *out);
    if (!token || !well_formed(token)) return SKED_EUNAUTH;
    ensure_sodium();
    crypto_generichash(key, sizeof key, (const unsigned char *)token, strlen(token), NULL, 0);
    int64_t now_ns = clock_mono_ns();
    uint64_t gen;
    bool cached = tc_get(key, now_ns, out, &gen);
    if (!cached) {
        sodium_bin2hex(hash, sizeof hash, key, sizeof key);
        /* Timing: the store finds the token by the hash of the presented
         * secret, so how long a lookup takes depends only on a hash an
         * attacker cannot steer towards a stored one (BLAKE2b is
         * preimage-resistant); there is no byte-by-byte comparison of
         * secrets to leak through timing. */
        int rc = store_token_lookup(st, hash, now_ms, out);
        if (rc == SKED_ENOTFOUND) return SKED_EUNAUTH;
        if (rc < 0) {
            store_token_clear(out);
            return rc;
        }
    }
    if (out->revoked || (out->expires_ms >= 0 && out->expires_ms <= now_ms)) {
        /* The store already filters these; checked again so a backend bug
         * cannot let a revoked token in, and so a cached token expires on
         * time. */
        store_token_clear(out);
        return SKED_EUNAUTH;
    }
    if (!cached) tc_put(key, now_ns, out, gen);
    /* last_used_ms costs a write only when the stored value is a minute
     * old: at most one write per token per minute, whatever the request
     * rate. A failure costs only the precision of that field. */
    if (out->last_used_ms < 0 || now_ms - out->last_used_ms >= STORE_TOKEN_TOUCH_MS) {
        int trc = store_token_touch(st, out->id, now_ms);
        if (trc < 0)
            log_debug("auth", "token %s: last use not recorded: %s", out->id, sked_strerror(trc));
        else
            tc_touched(key, now_ms);
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
    case ACCESS_METRICS:
        return role == ROLE_ADMIN || role == ROLE_METRICS;
    }
    return false;
}

/* ---- passwords ------------------------------------------------------------ */

/* Argon2id at libsodium's "interactive" cost (2 passes, 64 MiB): what it
 * recommends for logins. At most PWHASH_SLOTS hashes run at once, so a
 * burst of logins costs bounded memory and leaves cores for the API. */
#define PWHASH_OPS   crypto_pwhash_OPSLIMIT_INTERACTIVE
#define PWHASH_MEM   crypto_pwhash_MEMLIMIT_INTERACTIVE
#define PWHASH_SLOTS 2

static pthread_mutex_t pw_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pw_cv = PTHREAD_COND_INITIALIZER;
static int pw_busy;

static void pw_enter(void)
{
    pthread_mutex_lock(&pw_mu);
    while (pw_busy >= PWHASH_SLOTS)
        pthread_cond_wait(&pw_cv, &pw_mu);
    pw_busy++;
    pthread_mutex_unlock(&pw_mu);
}

static void pw_leave(void)
{
    pthread_mutex_lock(&pw_mu);
    pw_busy--;
    pthread_cond_signal(&pw_cv);
    pthread_mutex_unlock(&pw_mu);
}

char *auth_password_hash(const char *password)
{
    char out[crypto_pwhash_STRBYTES];
    ensure_sodium();
    pw_enter();
    int rc = crypto_pwhash_str(out, password, strlen(password), PWHASH_OPS, PWHASH_MEM);
    pw_leave();
    if (rc != 0) {
        log_error("auth", "cannot hash a password: out of memory");
        return NULL;
    }
    return xstrdup(out);
}

/* A hash of a random password, made once: what an unknown user's login is
 * checked against, so that it costs what a known user's does. */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];

static void dummy_setup(void)
{
    char pw[AUTH_TOKEN_BUFLEN];
    auth_token_generate(pw);
    if (crypto_pwhash_str(dummy_hash, pw, strlen(pw), PWHASH_OPS, PWHASH_MEM) != 0)
        dummy_hash[0] = 0;
    sodium_memzero(pw, sizeof pw);
}

bool auth_password_check(const char *hash, const char *password)
{
    ensure_sodium();
    pthread_once(&dummy_once, dummy_setup);
    bool real = hash && *hash;
    const char *h = real ? hash : dummy_hash;
    if (!*h) return false;
    pw_enter();
    int rc = crypto_pwhash_str_verify(h, password, strlen(password));
    pw_leave();
    return real && rc == 0;
}

/* Failure counts live in a small fixed table: bounded memory whatever names
 * an attacker sends. A name maps by a keyed hash to a set of a few entries,
 * each tagged with the full hash, so two names never share a count (they
 * once did: any 10 failures of names that happened to share a slot locked
 * out an innocent name). A new name takes a free or expired entry of its
 * set, else the one whose window began first. */
#define THROTTLE_SETS 1024
#define THROTTLE_WAYS 4

struct throttle {
    uint64_t tag; /* keyed hash of the name; 0 = free */
    int fails;
    int64_t first_ms; /* start of the current window */
};

static pthread_mutex_t th_mu = PTHREAD_MUTEX_INITIALIZER;
static struct throttle th[THROTTLE_SETS][THROTTLE_WAYS];
static unsigned char th_key[crypto_shorthash_KEYBYTES];
static pthread_once_t th_once = PTHREAD_ONCE_INIT;

static void th_setup(void)
{
    randombytes_buf(th_key, sizeof th_key);
}

static uint64_t th_tag(const char *user)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t tag = 0;
    ensure_sodium();
    pthread_once(&th_once, th_setup);
    crypto_shorthash(h, (const unsigned char *)user, strlen(user), th_key);
    memcpy(&tag, h, sizeof tag);
    return tag ? tag : 1; /* 0 marks a free entry */
}

/* The entry of tag, or NULL; with make, a fresh one if it has none. Caller
 * holds th_mu. */
static struct throttle *th_find(uint64_t tag, bool make, int64_t now_ms)
{
    struct throttle *set = th[tag % THROTTLE_SETS], *victim = &set[0];
    for (int i = 0; i < THROTTLE_WAYS; i++)
        if (set[i].tag == tag) return &set[i];
    if (!make) return NULL;
    for (int i = 0; i < THROTTLE_WAYS; i++) {
        bool idle = set[i].tag == 0 || now_ms - set[i].first_ms >= AUTH_LOGIN_WINDOW_MS;
        if (idle) {
            victim = &set[i];
            break;
        }
        if (set[i].first_ms < victim->first_ms) victim = &set[i];
    }
    *victim = (struct throttle){tag, 0, now_ms};
    return victim;
}

int auth_login_blocked(const char *user, int64_t now_ms)
{
    int wait_s = 0;
    uint64_t tag = th_tag(user ? user : "");
    pthread_mutex_lock(&th_mu);
    struct throttle *t = th_find(tag, false, now_ms);
    if (t && t->fails >= AUTH_LOGIN_FAILS && now_ms - t->first_ms < AUTH_LOGIN_WINDOW_MS)
        wait_s = (int)((t->first_ms + AUTH_LOGIN_WINDOW_MS - now_ms + 999) / 1000);
    pthread_mutex_unlock(&th_mu);
    return wait_s;
}

void auth_login_result(const char *user, bool ok, int64_t now_ms)
{
    uint64_t tag = th_tag(user ? user : "");
    pthread_mutex_lock(&th_mu);
    struct throttle *t = th_find(tag, !ok, now_ms);
    if (t && ok) {
        t->fails = 0;
    } else if (t) {
        if (t->fails == 0 || now_ms - t->first_ms >= AUTH_LOGIN_WINDOW_MS) {
            t->fails = 0;
            t->first_ms = now_ms;
        }
        t->fails++;
    }
    pthread_mutex_unlock(&th_mu);
}

/* ---- roles and namespaces --------------------------------------------------- */

static bool alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool auth_ns_name_ok(const char *ns)
{
    size_t n = ns ? strlen(ns) : 0;
    if (n == 0 || n > 63 || !alnum(ns[0])) return false;
    for (size_t i = 0; i < n; i++)
        if (!alnum(ns[i]) && ns[i] != '-' && ns[i] != '_' && ns[i] != '.') return false;
    return true;
}

bool auth_user_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = alnum(c) || (c >= 'A' && c <= 'Z');
        if (!ok && (i == 0 || (c != '-' && c != '_' && c != '.' && c != '@'))) return false;
    }
    return true;
}

bool auth_sees_all(const http_principal_t *who)
{
    return who && (who->role == ROLE_ADMIN || !who->ns || !*who->ns);
}

bool auth_ns_visible(const http_principal_t *who, const char *ns)
{
    if (!who) return false;
    if (auth_sees_all(who)) return true;
    if (!ns || !*ns) return false;
    size_t n = strlen(ns);
    for (const char *p = who->ns; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && !memcmp(p, ns, n)) return true;
        p += len;
        if (*p == ',') p++;
    }
    return false;
}

const char *auth_ns_filter(const http_principal_t *who)
{
    return auth_sees_all(who) ? NULL : who ? who->ns : "";
}

bool auth_job_writable(const http_principal_t *who, const char *ns, const char *owner)
{
    if (!auth_ns_visible(who, ns)) return false;
    switch (who->role) {
    case ROLE_ADMIN:
    case ROLE_OPERATOR:
        return true;
    case ROLE_USER:
        return owner && who->name && !strcmp(owner, who->name);
    default:
        return false;
    }
}

void auth_default_ns(const http_principal_t *who, char *out, size_t outlen)
{
    if (auth_sees_all(who) || !who) {
        snprintf(out, outlen, "default");
        return;
    }
    /* "default" when granted, else the first grant: a user of one team
     * need not name its namespace on every submit. */
    if (auth_ns_visible(who, "default")) {
        snprintf(out, outlen, "default");
        return;
    }
    size_t len = strcspn(who->ns, ",");
    snprintf(out, outlen, "%.*s", (int)len, who->ns);
}

/* ---- the audit trail ---------------------------------------------------------- */

/* The pattern of the route that req came in on: the handler is not known
 * here, so the path is matched against the table as http.c does. */
static const char *route_of(const http_req_t *req)
{
    const char *m = req->method ? req->method : "";
    for (const http_route_t *r = http_routes; r->method; r++) {
        if (strcmp(r->method, m) != 0) continue;
        const char *p = r->pattern, *u = req->path ? req->path : "";
        bool ok = true;
        while (ok && *p && *u) {
            if (*p != '/' || *u != '/') {
                ok = false;
                break;
            }
            p++;
            u++;
            size_t pl = strcspn(p, "/"), ul = strcspn(u, "/");
            if (pl >= 2 && p[0] == '{' && p[pl - 1] == '}')
                ok = ul > 0;
            else
                ok = pl == ul && !memcmp(p, u, pl);
            p += pl;
            u += ul;
        }
        if (ok && !*p && !*u) return r->pattern;
    }
    return req->path ? req->path : "";
}

void auth_audit_entry(const http_req_t *req, const char *target, const char *ns, int status,
                      store_audit_t *a)
{
    memset(a, 0, sizeof *a);
    a->at_ms = req->now_ms;
    a->actor = (char *)(req->who && req->who->name ? req->who->name : "");
    a->role = (char *)(req->who ? token_role_name(req->who->role) : "");
    if (!a->role) a->role = (char *)"";
    a->method = (char *)(req->method ? req->method : "");
    a->route = (char *)route_of(req);
    a->target = (char *)(target ? target : "");
    a->ns = (char *)(ns ? ns : "");
    a->source = (char *)(req->peer ? req->peer : "");
    a->status = status;
}

void auth_audit(const http_req_t *req, const char *target, const char *ns, int status)
{
    store_audit_t a;
    auth_audit_entry(req, target, ns, status, &a);
    int rc = store_audit_append(req->st, &a);
    if (rc < 0) rc = store_audit_append(req->st, &a);
    if (rc < 0)
        log_error("audit",
                  "entry lost from the store (%s): at=%lld actor=%s role=%s %s %s "
                  "target=%s ns=%s source=%s status=%d",
                  sked_strerror(rc), (long long)a.at_ms, a.actor, a.role, a.method, a.route,
                  a.target, a.ns, a.source, a.status);
}

static ratelimit_t *refusals_rl;
static atomic_llong refusals_dropped;

static void refusals_init(void)
{
    refusals_rl = ratelimit_new(AUTH_REFUSALS_PER_S, AUTH_REFUSALS_BURST);
}

void auth_audit_refusal(const http_req_t *req, int status)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, refusals_init);
    /* A bucket per token for 403s (a real caller probing above its role),
     * one for everyone without a valid token: a flood of anonymous 401s
     * cannot drown a token's refusals. */
    char key[SKED_ID_LEN + 2] = "-";
    if (status == 403 && req->who) snprintf(key, sizeof key, "t:%s", req->who->token_id);
    int64_t retry_ns = 0;
    if (refusals_rl && !ratelimit_take(refusals_rl, key, clock_mono_ns(), &retry_ns)) {
        atomic_fetch_add(&refusals_dropped, 1);
        return;
    }
    long long dropped = atomic_exchange(&refusals_dropped, 0);
    if (dropped)
        log_warn("audit", "%lld refused calls were not audited: more than %d a second", dropped,
                 AUTH_REFUSALS_PER_S);
    /* No target: the route pattern says what was called, and the path, as
     * long as a request may be, would let a flood write large entries. */
    auth_audit(req, NULL, NULL, status);
}
