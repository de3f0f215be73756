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
 * - slack: POST of {"text": "<summary>"} to an incoming-webhook URL.
 * - email: one message over SMTP (smtp:// or smtps://) through libcurl,
 *   STARTTLS whenever the server offers it; the SMTP relay, sender and
 *   credentials are the server's (alert_smtp_t), the recipients the
 *   channel's.
 *
 * Secrets (webhook secrets, SMTP passwords) never appear in err or in logs.
 * Thread-safe: each call uses its own curl handle.
 */
#ifndef SKED_SERVER_ALERT_SEND_H
#define SKED_SERVER_ALERT_SEND_H

#include <stdbool.h>
#include <stddef.h>

typedef enum alert_chan_kind {
    ALERT_CHAN_WEBHOOK = 0,
    ALERT_CHAN_SLACK,
    ALERT_CHAN_EMAIL
} alert_chan_kind_t;

/* "webhook", "slack", "email"; and back (0 or SKED_EINVAL). */
const char *alert_chan_name(alert_chan_kind_t k);
int alert_chan_parse(const char *name, alert_chan_kind_t *out);

typedef struct alert_channel {
    alert_chan_kind_t kind;
    const char *url;    /* webhook, slack: http(s):// URL */
    const char *secret; /* webhook: HMAC key; NULL or "" = unsigned */
    const char *to;     /* email: "a@x,b@y" */
} alert_channel_t;

/* The server's SMTP relay, for email channels. */
typedef struct alert_smtp {
    char *url;      /* "smtp://host:port" or "smtps://host:port"; NULL = email disabled */
    char *from;     /* envelope and header sender */
    char *user;     /* NULL = no AUTH */
    char *password; /* never logged */
} alert_smtp_t;

/* Fills *out from the server's flags; credentials_file (NULL = none) holds
 * one line "user:password". 0, or SKED_EINVAL with a reason in err (which
 * names the file, never its content). */
int alert_smtp_init(alert_smtp_t *out, const char *url, const char *from,
                    const char *credentials_file, char err[256]);
void alert_smtp_clear(alert_smtp_t *s); /* frees members (wiping the password), zeroes */

/* One notice: an alert opening or resolving. */
typedef struct alert_message {
    const char *subject; /* one line, e.g. "[sked] FAILED nightly-report (run run_...)" */
    const char *text;    /* a few human lines: slack text and email body */
    const char *json;    /* the webhook body: the alert document as GET /v1/alerts shows it */
} alert_message_t;

/* Delivers msg on ch within timeout_ms. 0 on delivery; otherwise a
 * negative SKED_E* code and a one-line reason in err (e.g. "HTTP 503",
 * "connect: Connection refused"). */
int alert_send(const alert_channel_t *ch, const alert_smtp_t *smtp, const alert_message_t *msg,
               long timeout_ms, char err[256]);

#endif
