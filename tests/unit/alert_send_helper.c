/*
 * The alert senders' window for tests/e2e/test_alert_send.py, which drives
 * them against real receivers (tests/e2e/sinks.py): one alert_send() call
 * per run, the channel, relay and message taken from the command line.
 *
 *     sked-alert-send-helper webhook|slack|email [--url U] [--secret S]
 *         [--to A,B] [--subject S] [--text T] [--json J] [--id ID]
 *         [--timeout-ms N] [--smtp-url U --smtp-from F
 *         [--smtp-credentials-file P]] [--alert-ca PEM]
 *
 * Prints one line and exits with its status: "ok" (0); "send-error NAME:
 * REASON" (1), NAME the SKED_E* code's short name; "init-error: REASON"
 * (3) when the relay's configuration is refused; usage (2). Nothing else
 * is printed, so whatever the senders leak would show in that line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "server/alert_send.h"

static int usage(void)
{
    fprintf(stderr, "usage: sked-alert-send-helper webhook|slack|email [--url U] [--secret S] "
                    "[--to T] [--subject S] [--text T] [--json J] [--id ID] [--timeout-ms N] "
                    "[--smtp-url U] [--smtp-from F] [--smtp-credentials-file P] "
                    "[--alert-ca PEM]\n");
    return 2;
}

int main(int argc, char **argv)
{
    alert_channel_t ch = {0};
    alert_message_t msg = {0};
    alert_smtp_t smtp = {0};
    const char *smtp_url = NULL, *smtp_from = NULL, *creds = NULL, *ca = NULL;
    long timeout_ms = 5000;
    char err[256];
    int rc;

    if (argc < 2 || alert_channel_kind_parse(argv[1], &ch.kind) < 0) return usage();
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **slot = !strcmp(o, "--url")                     ? &ch.url
                            : !strcmp(o, "--secret")                ? &ch.secret
                            : !strcmp(o, "--to")                    ? &ch.to
                            : !strcmp(o, "--subject")               ? &msg.subject
                            : !strcmp(o, "--text")                  ? &msg.text
                            : !strcmp(o, "--json")                  ? &msg.json
                            : !strcmp(o, "--id")                    ? &msg.id
                            : !strcmp(o, "--smtp-url")              ? &smtp_url
                            : !strcmp(o, "--smtp-from")             ? &smtp_from
                            : !strcmp(o, "--smtp-credentials-file") ? &creds
                            : !strcmp(o, "--alert-ca")              ? &ca
                                                                    : NULL;
        if (!v) return usage();
        if (slot) {
            *slot = v;
        } else if (!strcmp(o, "--timeout-ms")) {
            timeout_ms = strtol(v, NULL, 10);
        } else {
            return usage();
        }
        i++;
    }
    rc = alert_smtp_init(&smtp, smtp_url, smtp_from, creds, err);
    if (rc == 0) rc = alert_smtp_set_ca(&smtp, ca, err);
    if (rc < 0) {
        printf("init-error: %s\n", err);
        alert_smtp_clear(&smtp);
        return 3;
    }
    rc = alert_send(&ch, &smtp, &msg, timeout_ms, err);
    alert_smtp_clear(&smtp);
    if (rc < 0) {
        printf("send-error %s: %s\n", sked_errname(rc), err);
        return 1;
    }
    printf("ok\n");
    return 0;
}
