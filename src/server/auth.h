/*
 * Identity and access: API tokens (how secrets are minted, hashed, verified
 * and bootstrapped), user passwords, the role table, namespace scoping and
 * the audit trail. The HTTP layer calls auth_verify() and
 * auth_role_allows() for every request; handlers call the scoping and
 * audit helpers below.
 *
 * A token's secret is "sked_" followed by the unpadded base64url encoding of
 * 32 random bytes from libsodium. The store never sees a secret: it keeps
 * the hex of a 32-byte BLAKE2b hash (crypto_generichash) and finds a token
 * by that hash. On a store with no tokens at all the server mints one admin
 * token and writes its secret to a file only the owner may read, so the
 * first person to start sked can use it.
 *
 * Every function is thread-safe (libsodium is initialised once, lazily).
 */
#ifndef SKED_SERVER_AUTH_H
#define SKED_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/http.h"
#include "store/store.h"

#define AUTH_TOKEN_PREFIX "sked_"
#define AUTH_SECRET_BYTES 32
/* "sked_" + 43 base64url characters + NUL. */
#define AUTH_TOKEN_BUFLEN 49
/* 64 hex digits + NUL. */
#define AUTH_HASH_HEX_LEN 65

/* Writes a new random secret ("sked_...") into out. Aborts only if the
 * system's randomness source is unusable (libsodium cannot initialise). */
void auth_token_generate(char out[AUTH_TOKEN_BUFLEN]);

/* Writes the hex hash under which the store keeps `token` into out. */
void auth_token_hash(const char *token, char out[AUTH_HASH_HEX_LEN]);

/* Returns the token of an "Authorization: Bearer <token>" header value
 * (borrowed: a pointer into `header`, up to its end), or NULL when the
 * header is absent, of another scheme, or empty. */
const char *auth_bearer(const char *header);

/* Verifies a presented secret. On success returns 0 and fills *out (caller
 * clears with store_token_clear); a user's token carries the user's current
 * role and namespaces. Records the token's use (last_used_ms), writing at
 * most once per STORE_TOKEN_TOUCH_MS per token. SKED_EUNAUTH for a
 * malformed, unknown, revoked or expired token; a store error (e.g.
 * SKED_ESTORE) otherwise, in which case *out is left cleared. */
int auth_verify(store_t *st, const char *token, int64_t now_ms, store_token_t *out);

/* auth_verify keeps tokens it verified for this long (docs/security.md:
 * a token revoked on any server stops working everywhere within 1 s). */
#define AUTH_CACHE_TTL_MS 500
/* Forgets every cached token: called after this server revokes a token or
 * changes or removes a user, so the change takes effect here at once. */
void auth_cache_forget(void);

/* Mints a token for `name` with `role` (ns: namespace scope, "" = all;
 * expires_ms -1 = never) and stores its hash. OUT: the secret in
 * out_token (shown once; sked cannot recover it), the token id in out_id
 * (may be NULL). Returns 0 or the store's error. */
int auth_token_create(store_t *st, const char *name, token_role_t role, const char *ns,
                      int64_t expires_ms, int64_t now_ms, char out_token[AUTH_TOKEN_BUFLEN],
                      char *out_id);

/* On a store that never had a token, mints an admin token named "admin"
 * and writes its secret (plus a newline) to token_file with mode 0600,
 * replacing any older file atomically; token_file may be NULL (the secret
 * is then only returned). *admin_token receives a new copy of the secret
 * (caller frees) when one was minted, else NULL. Returns 0 or an error
 * (nothing is stored when the file cannot be written). */
int auth_bootstrap(store_t *st, const char *token_file, int64_t now_ms, char **admin_token);

/* Whether a token of `role` may call a route of the access class. The one
 * place the role table lives (http.c asks it for every request). */
bool auth_role_allows(token_role_t role, enum http_access access);

/* ---- passwords (Argon2id via libsodium's crypto_pwhash_str) ---- */

#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024

/* Hashes a password into a new string (caller frees). Bounded concurrency:
 * at most a few hashes run at once, since each needs tens of MiB.
 * Returns NULL only if the system cannot provide the memory. */
char *auth_password_hash(const char *password);

/* Whether password matches hash (a crypto_pwhash_str string). hash NULL
 * means "no such user": the work done is the same as for a real hash, so
 * the answer's timing does not tell whether a user exists. */
bool auth_password_check(const char *hash, const char *password);

/* Login throttling, per user name given (existing or not): after
 * AUTH_LOGIN_FAILS failures within AUTH_LOGIN_WINDOW_MS further attempts
 * are refused until the window passes. auth_login_blocked returns the
 * seconds to wait (0 = go ahead); auth_login_result records an outcome
 * (success clears the count). Thread-safe. */
#define AUTH_LOGIN_FAILS     10
#define AUTH_LOGIN_WINDOW_MS (5 * 60 * 1000)
int auth_login_blocked(const char *user, int64_t now_ms);
void auth_login_result(const char *user, bool ok, int64_t now_ms);

/* ---- roles and namespaces ---- */

/* Namespace names: 1..63 of [a-z0-9_.-], starting with a letter or digit. */
bool auth_ns_name_ok(const char *ns);
/* User names: 1..64 of [A-Za-z0-9_.@-], starting with a letter or digit. */
bool auth_user_name_ok(const char *name);

/* Whether who may see everything in every namespace (admin, or a grant of
 * all namespaces). who NULL (a public route) sees nothing scoped. */
bool auth_sees_all(const http_principal_t *who);
/* Whether ns is one of who's namespaces. */
bool auth_ns_visible(const http_principal_t *who, const char *ns);
/* The ns_in filter for who's lists: NULL (any) or who->ns (borrowed). */
const char *auth_ns_filter(const http_principal_t *who);
/* Whether who may change a job of namespace ns owned by owner: admin and
 * operator in their namespaces; user only for jobs it owns there. */
bool auth_job_writable(const http_principal_t *who, const char *ns, const char *owner);
/* The namespace a new job of who's goes to when none is named: who's first
 * granted namespace, or "default". Written into out. */
void auth_default_ns(const http_principal_t *who, char *out, size_t outlen);

/* ---- the audit trail ---- */

/* Fills *a (borrowed strings, valid while req is) for an action of req on
 * target (NULL = none) in namespace ns (NULL = none) answered with status.
 * The route is req's pattern, found in http_routes. */
void auth_audit_entry(const http_req_t *req, const char *target, const char *ns, int status,
                      store_audit_t *a);
/* Appends that entry on its own: for a refusal, where nothing changed. (A
 * change's entry is passed to the store verb that makes it and commits in
 * the same transaction.) A failed append is retried once, then the whole
 * entry is logged as an error, so no entry vanishes silently. */
void auth_audit(const http_req_t *req, const char *target, const char *ns, int status);

/* Audits a refusal the HTTP layer made before any handler ran (401, 403),
 * with its route pattern and no target. A flood of refusals must not fill
 * the disk: at most AUTH_REFUSALS_PER_S entries a second (in bursts of up
 * to AUTH_REFUSALS_BURST) are written for callers without a valid token,
 * and as many per token for 403s; the ones beyond are counted, and the
 * count is logged with the next entry written. */
#define AUTH_REFUSALS_PER_S 20
#define AUTH_REFUSALS_BURST 100
void auth_audit_refusal(const http_req_t *req, int status);

/* Reads a token file written by auth_bootstrap: the first line, trimmed.
 * Returns a new string (caller frees) or NULL (errno set) if unreadable or
 * empty. */
char *auth_token_file_read(const char *path);

#endif
