/*
 * Alert delivery: one message to one channel, synchronously, over libcurl.
 * The alerter (the outbox loop) calls this for each claimed outbox entry
 * and retries with backoff on failure; this module knows nothing of rules,
 * the outbox or the store.
 *
 * Channels:
 * - webhook: POST of the message's JSON document, Content-Type
 *   application/json, signed with the channel's secret (when set) in
 *   `X-Sked-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
 *   "<t>.<body>")>` (docs/observability.md tells a receiver how to check
 *   it). Any 2xx is delivered; anything else, or no answer, is a failure.
 *   With msg->id set, `X-Sked-Delivery: <id>` is sent too, the same on every
 *   retry, so a receiver can drop a repeat (delivery is at least once).
 * - slack: POST of {"text": "<text>"} to an incoming-webhook URL.
 * - email: one message over SMTP (smtp:// or smtps://) through libcurl,
 *   STARTTLS whenever the server offers it; the SMTP relay, sender and
 *   credentials are the server's (alert_smtp_t), the recipients the
 *   channel's. With credentials, a relay that is not on a loopback address
 *   must offer STARTTLS (or be smtps://): the password never crosses a
 *   network in clear (Go's net/smtp PlainAuth rule).
 *
 * TLS peers are always verified (chain and host name) against the system's
 * CAs or the server's alert CA file; there is no switch to turn it off.
 * Redirects are not followed (a 3xx is a failure).
 *
 * Secrets (webhook secrets, SMTP passwords, webhook URLs, which for Slack
 * are themselves credentials) never appear in err; this module logs nothing.
 * Thread-safe: each call uses its own curl handle.
 */
#ifndef SKED_SERVER_ALERT_SEND_H
#define SKED_SERVER_ALERT_SEND_H

#include <stdbool.h>
#include <stddef.h>

#include "core/alert.h"

typedef struct alert_channel {
    alert_channel_kind_t kind; /* core/alert.h */
    const char *url;           /* webhook, slack: http(s):// URL */
    const char *secret;        /* webhook: HMAC key; NULL or "" = unsigned */
    const char *to;            /* email: plain addresses, "a@x,b@y" (spaces around commas ok) */
} alert_channel_t;

/* The server's SMTP relay, for email channels, and the server's trust for
 * alert TLS (ca_file), for every channel: pass it to every alert_send. */
typedef struct alert_smtp {
    char *url;      /* "smtp://host:port" or "smtps://host:port"; NULL = email disabled */
    char *from;     /* header sender: "a@x" or "Name <a@x>"; the envelope sender is a@x */
    char *user;     /* NULL = no AUTH */
    char *password; /* never logged */
    char *ca_file;  /* PEM CA(s) trusted, instead of the system's, by TLS to the relay,
                       webhooks and Slack; NULL = the system's (alert_smtp_set_ca) */
} alert_smtp_t;

/* Fills *out (OUT; owned members, free with alert_smtp_clear) from the
 * server's flags. url NULL or "" = email disabled (then from and
 * credentials_file must be NULL too). credentials_file (NULL = no AUTH)
 * holds one line "user:password" (split at the first ':'; a trailing
 * newline is ignored) and must be a regular file that neither group nor
 * others may access (mode 0600 or 0400, as libpq demands of .pgpass);
 * anything else is refused. 0, or SKED_EINVAL with a reason in err, which
 * names the file, never its content; *out is then cleared. */
int alert_smtp_init(alert_smtp_t *out, const char *url, const char *from,
                    const char *credentials_file, char err[256]);
/* Sets s->ca_file to a copy of ca_file (NULL or "" = the system's CAs)
 * after checking it is a readable PEM file holding a certificate. 0, or
 * SKED_EINVAL with a reason in err naming the file; s unchanged then. */
int alert_smtp_set_ca(alert_smtp_t *s, const char *ca_file, char err[256]);
void alert_smtp_clear(alert_smtp_t *s); /* frees members (wiping the password), zeroes; NULL ok */

/* One notice: an alert opening or resolving. */
typedef struct alert_message {
    const char *subject; /* one line, e.g. "[sked] FAILED nightly-report (run run_...)" */
    const char *text;    /* a few human lines: slack text and email body */
    const char *json;    /* the webhook body: the alert document as GET /v1/alerts shows it */
    const char *id;      /* NULL, or the delivery's stable id (1-128 of [A-Za-z0-9._-]):
                            webhook X-Sked-Delivery, and the email's Message-ID */
} alert_message_t;

/* Delivers msg on ch within timeout_ms (<= 0: 10 s). smtp: the server's
 * (borrowed; NULL = no relay, system CAs). Returns 0 on delivery (a 2xx, or
 * the relay's acceptance of the message); otherwise a one-line reason in
 * err (e.g. "HTTP 503", "HTTP 404: no_service" with the start of the
 * answer, "Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't
 * connect to server", "SMTP authentication failed: ...") and
 * - SKED_EINVAL: the channel or message cannot be sent as given (no URL,
 *   no relay configured, a recipient that is not an address, a line break
 *   in a header field, text that is not UTF-8); retrying will not help;
 * - SKED_EIO: the delivery failed (transport error, timeout, TLS, a
 *   non-2xx answer, the relay refusing); worth retrying;
 * - SKED_ENOMEM, SKED_EINTERNAL: libcurl or libsodium could not start.
 * A subject's control characters (CR, LF, ...) become spaces, so a subject
 * never adds a header line; recipients with them are refused (EINVAL). */
int alert_send(const alert_channel_t *ch, const alert_smtp_t *smtp, const alert_message_t *msg,
               long timeout_ms, char err[256]);

#endif
