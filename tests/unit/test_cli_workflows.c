/*
 * Unit tests of the CLI's pure workflow parts (src/cli/cli_yaml.c and the
 * tree of cmd_workflows.c): YAML converted to the JSON its JSON twin is
 * (every scalar type of the YAML 1.2 core schema, quoted and block
 * scalars, tags, keys as written), every refusal with its line and column,
 * JSON-or-YAML by file name and content, and the task tree drawn from a
 * fixed WorkflowRun, a workflow's definition, and bad data (a cycle, an
 * unknown upstream) on which it must still end. The commands themselves
 * are tested against a fake API in test_cli.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/xalloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void expect_yaml(const char *yaml, const char *want_json)
{
    json_t *got = NULL;
    char err[256] = "";
    json_error_t jerr;
    if (cli_yaml_parse(yaml, strlen(yaml), &got, err, sizeof err) != 0)
        fail_msg("refused:\n%s\n-> %s", yaml, err);
    json_t *want = json_loads(want_json, JSON_DECODE_ANY, &jerr);
    if (!want) fail_msg("bad test JSON %s: %s", want_json, jerr.text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS);
        fail_msg("%s\n got: %s\nwant: %s", yaml, g, want_json);
    }
    /* Types too: json_equal takes 1 and 1.0 as different, which is wanted. */
    json_decref(got);
    json_decref(want);
}

static void expect_yaml_error(const char *yaml, size_t len, const char *want)
{
    json_t *got = (json_t *)1;
    char err[256] = "";
    if (cli_yaml_parse(yaml, len, &got, err, sizeof err) != SKED_EINVAL) {
        char *g = json_dumps(got, JSON_ENCODE_ANY);
        fail_msg("accepted:\n%s\n-> %s", yaml, g);
    }
    assert_null(got);
    size_t n = strlen(want);
    bool prefix = want[n - 1] == '*';
    if (prefix ? strncmp(err, want, n - 1) != 0 : strcmp(err, want) != 0)
        fail_msg("%s\n error '%s'\n  want '%s'", yaml, err, want);
}

static void test_yaml_structure(void **state)
{
    (void)state;
    expect_yaml("# a comment\n"
                "name: etl   # trailing comment\n"
                "tasks:\n"
                "  - name: a\n"
                "    command: [echo, hi]\n"
                "    env: {A: b, C: d}\n"
                "  - name: b\n"
                "    depends_on:\n"
                "    - a\n"
                "    retry:\n"
                "      max_attempts: 3\n"
                "empty_map: {}\n"
                "empty_seq: []\n"
                "nested: [[1, [2]], {x: [y]}]\n",
                "{\"name\":\"etl\",\"tasks\":[{\"name\":\"a\",\"command\":[\"echo\",\"hi\"],"
                "\"env\":{\"A\":\"b\",\"C\":\"d\"}},{\"name\":\"b\",\"depends_on\":[\"a\"],"
                "\"retry\":{\"max_attempts\":3}}],\"empty_map\":{},\"empty_seq\":[],"
                "\"nested\":[[1,[2]],{\"x\":[\"y\"]}]}");
    /* A document that is a sequence, or a scalar; explicit --- and ... */
    expect_yaml("- 1\n- two\n", "[1,\"two\"]");
    expect_yaml("--- 42\n...\n", "42");
    expect_yaml("%YAML 1.2\n---\nk: v\n", "{\"k\":\"v\"}");
    /* JSON is YAML. */
    expect_yaml("{\"a\": [1, 2.5, true, null, \"x\"]}", "{\"a\":[1,2.5,true,null,\"x\"]}");
}

static void test_yaml_core_schema_scalars(void **state)
{
    (void)state;
    expect_yaml("a: 1\nb: -0\nc: +12\nd: 012\ne: 0o17\nf: 0x1F\ng: -9223372036854775808\n"
                "h: 9223372036854775807\n",
                "{\"a\":1,\"b\":0,\"c\":12,\"d\":12,\"e\":15,\"f\":31,"
                "\"g\":-9223372036854775808,\"h\":9223372036854775807}");
    expect_yaml("a: 1.5\nb: 1e3\nc: .5\nd: -.5e-2\ne: 1.\nf: 2.5E+2\n",
                "{\"a\":1.5,\"b\":1000.0,\"c\":0.5,\"d\":-0.005,\"e\":1.0,\"f\":250.0}");
    expect_yaml("a: true\nb: False\nc: TRUE\nd: null\ne: ~\nf:\ng: NULL\nh: Null\n",
                "{\"a\":true,\"b\":false,\"c\":true,\"d\":null,\"e\":null,\"f\":null,"
                "\"g\":null,\"h\":null}");
    /* What YAML 1.1 typed and 1.2's core schema leaves as strings. */
    expect_yaml("a: yes\nb: no\nc: on\nd: off\ne: 2026-01-01\nf: 1_000\ng: 0x\nh: .\n"
                "i: 0b101\nj: tRUE\nk: 12:30\nl: 1e\nm: +.5x\n",
                "{\"a\":\"yes\",\"b\":\"no\",\"c\":\"on\",\"d\":\"off\",\"e\":\"2026-01-01\","
                "\"f\":\"1_000\",\"g\":\"0x\",\"h\":\".\",\"i\":\"0b101\",\"j\":\"tRUE\","
                "\"k\":\"12:30\",\"l\":\"1e\",\"m\":\"+.5x\"}");
    /* Quoted and block scalars are strings, whatever they read like. */
    expect_yaml(
        "a: \"true\"\nb: '12'\nc: \"\"\nd: 'null'\ne: \"tab\\there\\u00e9\"\n"
        "f: '.inf'\ng: 'it''s'\n",
        "{\"a\":\"true\",\"b\":\"12\",\"c\":\"\",\"d\":\"null\",\"e\":\"tab\\there\\u00e9\","
        "\"f\":\".inf\",\"g\":\"it's\"}");
    expect_yaml("lit: |\n  line 1\n  line 2\nfold: >-\n  one\n  two\nkeep: |+\n  x\n\nend: 1\n",
                "{\"lit\":\"line 1\\nline 2\\n\",\"fold\":\"one two\",\"keep\":\"x\\n\\n\","
                "\"end\":1}");
    /* A plain scalar over several lines folds into one string. */
    expect_yaml("cmd: echo\n  hello\n", "{\"cmd\":\"echo hello\"}");
    /* NUL inside a double-quoted string is refused where it is written:
     * no JSON document sked reads can hold it (the fuzzer found it). */
    json_t *got = NULL;
    char err[256];
    const char *nul = "a: \"x\\0y\"\n";
    assert_int_not_equal(cli_yaml_parse(nul, strlen(nul), &got, err, sizeof err), 0);
    assert_null(got);
    assert_non_null(strstr(err, "1:4: "));
    assert_non_null(strstr(err, "NUL"));
}

static void test_yaml_keys_and_tags(void **state)
{
    (void)state;
    /* Keys are the text as written: JSON keys are strings. */
    expect_yaml("0x1F: a\n1.50: b\nnull: c\n~: d\ntrue: e\n\"q\": f\n",
                "{\"0x1F\":\"a\",\"1.50\":\"b\",\"null\":\"c\",\"~\":\"d\",\"true\":\"e\","
                "\"q\":\"f\"}");
    /* The core tags are honoured, the value must fit. */
    expect_yaml("a: !!str 123\nb: !!int \"42\"\nc: !!float 1\nd: !!bool \"false\"\n"
                "e: !!null \"\"\nf: !!str\ng: !!map {x: 1}\nh: !!seq [1]\ni: ! 12\n",
                "{\"a\":\"123\",\"b\":42,\"c\":1.0,\"d\":false,\"e\":null,\"f\":\"\","
                "\"g\":{\"x\":1},\"h\":[1],\"i\":\"12\"}");
}

static void test_yaml_refusals_say_where(void **state)
{
    (void)state;
#define BAD(text, want) expect_yaml_error(text, strlen(text), want)
    BAD("a: &x 1\nb: *x\n", "1:4: anchors (&x) are not supported: write the value out");
    BAD("a: *x\n", "1:4: aliases (*x) are not supported: write the value out");
    BAD("base: &b {k: v}\n", "1:7: anchors (&b) are not supported: write the value out");
    BAD("a: 1\nb: 2\na: 3\n", "3:1: the key \"a\" appears twice in this mapping");
    BAD("a: 1\n---\nb: 2\n", "2:1: more than one document: give one per file");
    BAD("", "1:1: the document is empty");
    BAD("# nothing here\n", "1:1: the document is empty");
    BAD("a: b: c\n", "1:5: mapping values are not allowed in this context");
    BAD("a:\n\tb: 1\n", "2:1: found character that cannot start any token (while scanning for "
                        "the next token)");
    BAD("a: \"x\n", "2:1: found unexpected end of stream (while scanning a quoted scalar)");
    BAD("? [a, b]\n: c\n", "1:3: a mapping key must be a scalar");
    BAD("? {a: b}\n: c\n", "1:3: a mapping key must be a scalar");
    BAD("a: .inf\n", "1:4: .inf is not a number JSON can hold; quote it to make it a string");
    BAD("a: -.Inf\n", "1:4: -.Inf is not a number JSON can hold; quote it to make it a string");
    BAD("a: .nan\n", "1:4: .nan is not a number JSON can hold; quote it to make it a string");
    BAD("a: 1e999\n", "1:4: 1e999 is not a number JSON can hold; quote it to make it a string");
    BAD("a: 99999999999999999999\n", "1:4: the integer 99999999999999999999 does not fit in 64 "
                                     "bits");
    BAD("a: 0x1FFFFFFFFFFFFFFFF\n", "1:4: the integer 0x1FFFFFFFFFFFFFFFF does not fit in 64 "
                                    "bits");
    BAD("a: !!bool yes\n", "1:4: 'yes' is not a valid bool");
    BAD("a: !!int 1.5\n", "1:4: '1.5' is not a valid int");
    BAD("a: !!null x\n", "1:4: 'x' is not a valid null");
    BAD("a: !!binary aGk=\n", "1:4: the tag tag:yaml.org,2002:binary is not supported");
    BAD("a: !custom x\n", "1:4: the tag !custom is not supported");
    BAD("a: !!set {x}\n", "1:4: the tag tag:yaml.org,2002:set is not supported");
    BAD("\"a\\0b\": 1\n", "1:1: a mapping key must not contain NUL characters");
    BAD("a: b\n- c\n", "2:1: did not find expected key (while parsing a block mapping)");
#undef BAD
    /* Not UTF-8. */
    const char latin1[] = "a: caf\xe9\n";
    expect_yaml_error(latin1, sizeof latin1 - 1, "1:7: incomplete UTF-8 octet sequence");
    /* Nesting is bounded (an explicit stack: no recursion to overflow). */
    buf_t deep = BUF_INIT;
    for (int i = 0; i < 600; i++)
        buf_puts(&deep, "[");
    expect_yaml_error(deep.data, deep.len, "1:513: nested deeper than 512 levels");
    buf_free(&deep);
    /* 512 is fine. */
    buf_t ok = BUF_INIT;
    for (int i = 0; i < 512; i++)
        buf_puts(&ok, "[");
    for (int i = 0; i < 512; i++)
        buf_puts(&ok, "]");
    json_t *got;
    char err[256];
    assert_int_equal(cli_yaml_parse(ok.data, ok.len, &got, err, sizeof err), 0);
    json_decref(got);
    buf_free(&ok);
}

static void expect_doc(const char *name, const char *text, const char *want_json)
{
    json_t *got = NULL;
    char err[256] = "";
    if (cli_doc_parse(name, text, strlen(text), &got, err, sizeof err) != 0)
        fail_msg("%s: refused %s: %s", name, text, err);
    json_t *want = json_loads(want_json, JSON_DECODE_ANY, NULL);
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
}

static void expect_doc_error(const char *name, const char *text, const char *want)
{
    json_t *got = NULL;
    char err[256] = "";
    assert_int_equal(cli_doc_parse(name, text, strlen(text), &got, err, sizeof err), SKED_EINVAL);
    assert_null(got);
    if (strcmp(err, want) != 0) fail_msg("%s: error '%s', want '%s'", name, err, want);
}

static void test_json_or_yaml(void **state)
{
    (void)state;
    /* By name. */
    expect_doc("wf.json", "{\"a\": 1}", "{\"a\":1}");
    expect_doc("wf.YAML", "a: 1", "{\"a\":1}");
    expect_doc("dir/wf.yml", "{\"a\": 1}", "{\"a\":1}");
    expect_doc_error("wf.json", "a: 1", "1:1: '[' or '{' expected near 'a'");
    expect_doc_error("wf.json", "{\"a\": 1, \"a\": 2}", "1:12: duplicate object key near '\"a\"'");
    /* By content (stdin, other names). */
    expect_doc("", "  {\"a\": [1]}", "{\"a\":[1]}");
    expect_doc("", "{a: 1}", "{\"a\":1}"); /* not JSON: YAML's flow style */
    expect_doc("wf.txt", "a: [x]", "{\"a\":[\"x\"]}");
    /* Looks like JSON and is neither: JSON's complaint is the one shown. */
    expect_doc_error("", "{\"a\": 1,", "1:8: string or '}' expected near end of file");
    /* At a line's start jansson's column is 0: shown as 1, never 0. */
    expect_doc_error("", "\n{\n", "3:1: string or '}' expected near end of file");
}

/* ---- the tree ------------------------------------------------------------ */

static const char run_json[] =
    "{\"id\":\"wfr_1\",\"tasks\":["
    "{\"name\":\"extract\",\"state\":\"succeeded\",\"attempt\":1,\"exit_code\":0,"
    "\"depends_on\":[],\"trigger_rule\":\"all_success\"},"
    "{\"name\":\"transform-eu\",\"state\":\"succeeded\",\"attempt\":1,\"exit_code\":0,"
    "\"depends_on\":[\"extract\"],\"trigger_rule\":\"all_success\"},"
    "{\"name\":\"transform-us\",\"state\":\"failed\",\"attempt\":3,\"exit_code\":2,"
    "\"depends_on\":[\"extract\"],\"trigger_rule\":\"all_success\"},"
    "{\"name\":\"load\",\"state\":\"skipped\",\"attempt\":0,"
    "\"depends_on\":[\"transform-eu\",\"transform-us\"],\"trigger_rule\":\"all_success\","
    "\"reason\":\"upstream_failed\"},"
    "{\"name\":\"report\",\"state\":\"skipped\",\"attempt\":0,\"depends_on\":[\"load\"],"
    "\"trigger_rule\":\"all_success\",\"reason\":\"upstream_skipped\"},"
    "{\"name\":\"notify\",\"state\":\"succeeded\",\"attempt\":1,\"exit_code\":0,"
    "\"depends_on\":[\"transform-eu\",\"transform-us\",\"load\"],\"trigger_rule\":\"one_failed\"},"
    "{\"name\":\"audit\",\"state\":\"pending\",\"attempt\":0,\"depends_on\":[],"
    "\"trigger_rule\":\"all_success\"}]}";

static char *tree_of(const char *text, const char *member)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    char *out = cli_workflow_tree(member ? json_object_get(j, member) : j);
    json_decref(j);
    return out;
}

static void expect_tree(const char *text, const char *member, const char *want)
{
    char *got = tree_of(text, member);
    if (strcmp(got, want) != 0) fail_msg("tree:\n%s\nwant:\n%s", got, want);
    free(got);
}

static void test_tree_of_a_run(void **state)
{
    (void)state;
    expect_tree(run_json, "tasks",
                "TASK                                  STATE      ATTEMPT  EXIT  REASON\n"
                "extract                               succeeded  1        0     -\n"
                "├── transform-eu                      succeeded  1        0     -\n"
                "│   ├── load                          skipped    0        -     upstream_failed\n"
                "│   │   ├── report                    skipped    0        -     upstream_skipped\n"
                "│   │   └── notify [one_failed]       succeeded  1        0     -\n"
                "│   └── notify [one_failed] (repeat)  succeeded  1        0     -\n"
                "└── transform-us                      failed     3        2     -\n"
                "    ├── load (repeat)                 skipped    0        -     upstream_failed\n"
                "    └── notify [one_failed] (repeat)  succeeded  1        0     -\n"
                "audit                                 pending    0        -     -\n");
}

static void test_tree_of_a_definition(void **state)
{
    (void)state;
    expect_tree("[{\"name\":\"a\",\"command\":[\"echo\",\"hello world\"]},"
                "{\"name\":\"b\",\"command\":[\"true\"],\"depends_on\":[\"a\"]},"
                "{\"name\":\"c\",\"command\":[\"true\"],\"depends_on\":[\"a\"]},"
                "{\"name\":\"d\",\"command\":[\"true\"],\"depends_on\":[\"b\",\"c\"],"
                "\"trigger_rule\":\"all_done\"}]",
                NULL,
                "TASK                           COMMAND\n"
                "a                              echo 'hello world'\n"
                "├── b                          true\n"
                "│   └── d [all_done]           true\n"
                "└── c                          true\n"
                "    └── d [all_done] (repeat)  true\n");
}

static void test_tree_ends_on_bad_data(void **state)
{
    (void)state;
    /* A cycle (x <-> y), an unknown upstream, a self-reference, no name,
     * and an entry that is not an object: every task is drawn, once in
     * full, and the drawing ends. */
    char *got = tree_of("[{\"name\":\"x\",\"depends_on\":[\"y\"],\"state\":\"waiting\"},"
                        "{\"name\":\"y\",\"depends_on\":[\"x\"]},"
                        "{\"name\":\"z\",\"depends_on\":[\"nobody\",\"z\"]},"
                        "{\"depends_on\":[7]}, 5]",
                        NULL);
    assert_string_equal(got, "TASK                STATE    ATTEMPT  EXIT  REASON\n"
                             "z                   -        -        -     -\n"
                             "?                   -        -        -     -\n"
                             "?                   -        -        -     -\n"
                             "x                   waiting  -        -     -\n"
                             "└── y               -        -        -     -\n"
                             "    └── x (repeat)  waiting  -        -     -\n");
    free(got);
    /* Nothing to draw: the header alone. */
    got = tree_of("[]", NULL);
    assert_string_equal(got, "TASK  COMMAND\n");
    free(got);
}

/* A deep chain draws without recursion and with one line per task. */
static void test_tree_of_a_long_chain(void **state)
{
    (void)state;
    json_t *tasks = json_array();
    for (int i = 0; i < 3000; i++) {
        char name[16], prev[16];
        snprintf(name, sizeof name, "t%d", i);
        snprintf(prev, sizeof prev, "t%d", i - 1);
        json_array_append_new(tasks, i ? json_pack("{s:s, s:[s]}", "name", name, "depends_on", prev)
                                       : json_pack("{s:s}", "name", name));
    }
    char *out = cli_workflow_tree(tasks);
    size_t lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3001);
    assert_non_null(strstr(out, "└── t2999"));
    free(out);
    json_decref(tasks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_structure),
        cmocka_unit_test(test_yaml_core_schema_scalars),
        cmocka_unit_test(test_yaml_keys_and_tags),
        cmocka_unit_test(test_yaml_refusals_say_where),
        cmocka_unit_test(test_json_or_yaml),
        cmocka_unit_test(test_tree_of_a_run),
        cmocka_unit_test(test_tree_of_a_definition),
        cmocka_unit_test(test_tree_ends_on_bad_data),
        cmocka_unit_test(test_tree_of_a_long_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
