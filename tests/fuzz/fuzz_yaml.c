/*
 * libFuzzer target for the CLI's YAML reader (src/cli/cli_yaml.c), which
 * turns `sked workflows submit -f FILE` documents into JSON.
 *
 * Properties, beyond "no crash, no leak, no undefined behaviour, no stack
 * overflow on deep nesting":
 *  - a refusal says where and why: "LINE:COLUMN: reason", both at least 1;
 *  - an accepted document is JSON that serialises and reloads to the same
 *    value (no NaN, no infinity, valid UTF-8 everywhere);
 *  - the same bytes read as a file of unknown type (cli_doc_parse) are
 *    accepted or refused with the same kind of message, and when both
 *    readers accept a text not opening with '{' or '[', they agree.
 */
#include "cli/cli.h"
#include "fuzz.h"

#include <jansson.h>
#include <stdbool.h>

static void check_error(const char *err, const char *what)
{
    unsigned line = 0, col = 0;
    int used = 0;
    if (sscanf(err, "%u:%u: %n", &line, &col, &used) != 2 || used == 0 || line < 1 || col < 1 ||
        err[used] == '\0')
        fuzz_fail("%s: refusal without a place or a reason: '%s'", what, err);
}

static void check_value(const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) fuzz_fail("accepted value cannot be serialised");
    json_error_t jerr;
    json_t *back = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!back) fuzz_fail("serialised value does not reload (%s): %s", jerr.text, text);
    if (!json_equal(back, v)) fuzz_fail("value changes through text: %s", text);
    json_decref(back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_t *v = NULL, *d = NULL;
    char err[512] = "", derr[512] = "";
    int rc = cli_yaml_parse(text, size, &v, err, sizeof err);
    if (rc != 0) {
        if (v) fuzz_fail("refused, yet a value came back");
        check_error(err, "yaml");
    } else {
        check_value(v);
    }
    int drc = cli_doc_parse("", text, size, &d, derr, sizeof derr);
    if (drc != 0) {
        check_error(derr, "doc");
    } else {
        check_value(d);
        size_t i = 0;
        while (i < size && strchr(" \t\r\n", text[i]) && text[i])
            i++;
        bool json_like = i < size && (text[i] == '{' || text[i] == '[');
        if (!json_like && (rc != 0 || !json_equal(v, d)))
            fuzz_fail("cli_doc_parse and cli_yaml_parse disagree on a YAML text");
    }
    json_decref(v);
    json_decref(d);
    return 0;
}
