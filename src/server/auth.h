/*
 * API tokens: how secrets are minted, hashed, verified and bootstrapped.
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
 * clears with store_token_clear). SKED_EUNAUTH for a malformed, unknown,
 * revoked or expired token; a store error (e.g. SKED_ESTORE) otherwise, in
 * which case *out is left cleared. */
int auth_verify(store_t *st, const char *token, int64_t now_ms, store_token_t *out);

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

/* Reads a token file written by auth_bootstrap: the first line, trimmed.
 * Returns a new string (caller frees) or NULL (errno set) if unreadable or
 * empty. */
char *auth_token_file_read(const char *path);

#endif
