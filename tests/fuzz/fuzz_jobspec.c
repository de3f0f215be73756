/*
 * libFuzzer target for job documents (src/core/jobspec.h), the body of
 * POST /v1/jobs and PATCH /v1/jobs/{id}. The input is JSON text, loaded the
 * way the server loads bodies (json_loadb, duplicate keys rejected).
 *
 * Properties, beyond "no crash, no leak, no undefined behaviour":
 *  - a rejection names a reason, and leaves the output spec empty;
 *  - an accepted document's canonical JSON (what the store keeps and the
 *    API returns), after a trip through text as the store makes it, parses
 *    again to the very same canonical JSON: a stored job always reloads;
 *  - the input used as a JSON merge patch over a fixed, valid job either is
 *    rejected with a reason and no result, or yields a merged document that
 *    is itself canonical and agrees with the spec returned beside it.
 */
#include "core/jobspec.h"
#include "fuzz.h"

#include <jansson.h>

/* The job document of docs/api.md: every field set, several schedules. */
static const char base_text[] =
    "{\"name\": \"nightly-report\", \"type\": \"shell\","
    " \"command\": [\"/usr/local/bin/report\", \"--day\", \"yesterday\"],"
    " \"env\": {\"REPORT_DIR\": \"/srv/reports\"}, \"cwd\": \"/srv\","
    " \"schedules\": [{\"cron\": \"0 2 * * *\", \"timezone\": \"Europe/Berlin\"},"
    "   {\"every\": \"15m\", \"anchor\": \"2026-01-01T00:00:00Z\"},"
    "   {\"at\": \"2026-12-24T18:00:00Z\"}],"
    " \"priority\": 50, \"queue\": \"default\", \"constraints\": {\"disk\": \"ssd\"},"
    " \"timeout\": \"30m\","
    " \"retry\": {\"max_attempts\": 4, \"initial\": \"10s\", \"max\": \"10m\","
    "   \"multiplier\": 2, \"jitter\": true},"
    " \"overlap\": \"forbid\", \"misfire\": \"catch_up\", \"catch_up_window\": \"1h\","
    " \"max_concurrency\": 2, \"tags\": [\"reports\", \"nightly\"]}";

static json_t *base; /* canonical form of base_text; lives for the process */

static void check_error(const jobspec_error_t *err, const char *what)
{
    if (strnlen(err->field, sizeof err->field) == sizeof err->field)
        fuzz_fail("%s: error field is unterminated", what);
    size_t dl = strnlen(err->detail, sizeof err->detail);
    if (dl == sizeof err->detail || dl == 0)
        fuzz_fail("%s: rejection without a reason (field '%s')", what, err->field);
}

static void check_empty(const jobspec_t *spec, const char *what)
{
    static const jobspec_t zero;
    if (memcmp(spec, &zero, sizeof zero) != 0) fuzz_fail("%s: rejected spec is not empty", what);
}

/* canon (a canonical document) must survive dump -> load -> parse -> to_json
 * unchanged. */
static void check_canonical(const json_t *canon, const char *what)
{
    char *text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) fuzz_fail("%s: canonical document cannot be serialised", what);
    json_error_t jerr;
    json_t *reloaded = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!reloaded) fuzz_fail("%s: canonical text does not load (%s): %s", what, jerr.text, text);

    jobspec_t spec;
    jobspec_error_t err;
    if (jobspec_parse(reloaded, &spec, &err) != 0)
        fuzz_fail("%s: canonical document rejected at %s: %s\n%s", what, err.field, err.detail,
                  text);
    json_t *again = jobspec_to_json(&spec);
    if (!json_equal(again, canon)) {
        char *t2 = json_dumps(again, JSON_COMPACT | JSON_SORT_KEYS);
        fuzz_fail("%s: canonical form is not stable:\n  %s\n  %s", what, text, t2 ? t2 : "(null)");
    }
    json_decref(again);
    jobspec_free(&spec);
    json_decref(reloaded);
    free(text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    json_error_t jerr;
    json_t *doc = json_loads(base_text, 0, &jerr);
    jobspec_t spec;
    jobspec_error_t err;
    if (!doc) fuzz_fail("base document does not load: %s", jerr.text);
    if (jobspec_parse(doc, &spec, &err) != 0)
        fuzz_fail("base document rejected at %s: %s", err.field, err.detail);
    base = jobspec_to_json(&spec);
    jobspec_free(&spec);
    json_decref(doc);
    return 0;
}

static void check_parse(const json_t *doc)
{
    jobspec_t spec;
    jobspec_error_t err;
    if (jobspec_parse(doc, &spec, &err) != 0) {
        check_error(&err, "parse");
        check_empty(&spec, "parse");
        return;
    }
    json_t *canon = jobspec_to_json(&spec);
    check_canonical(canon, "parse");
    json_decref(canon);
    jobspec_free(&spec);
}

static void check_patch(const json_t *patch)
{
    json_t *merged = (json_t *)base; /* must be replaced by the call */
    jobspec_t spec;
    jobspec_error_t err;
    if (jobspec_patch(base, patch, &merged, &spec, &err) != 0) {
        check_error(&err, "patch");
        check_empty(&spec, "patch");
        if (merged) fuzz_fail("patch: rejected, yet a merged document came back");
        return;
    }
    if (!merged) fuzz_fail("patch: accepted without a merged document");
    json_t *from_spec = jobspec_to_json(&spec);
    if (!json_equal(from_spec, merged)) fuzz_fail("patch: merged document and spec disagree");
    check_canonical(merged, "patch");
    json_decref(from_spec);
    json_decref(merged);
    jobspec_free(&spec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The server caps bodies at 1 MiB; a fuzzer learns nothing more from
     * inputs beyond a few KiB. */
    if (size > 16384) return 0;
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) return 0;
    check_parse(doc);
    check_patch(doc);
    json_decref(doc);
    return 0;
}
