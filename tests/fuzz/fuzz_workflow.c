/*
 * libFuzzer target for workflow documents (src/core/workflow.h), the body
 * of POST /v1/workflows and PUT /v1/workflows/{id}. The input is JSON text,
 * loaded the way the server loads bodies (json_loadb, duplicate keys
 * rejected).
 *
 * Properties, beyond "no crash, no leak, no undefined behaviour, no stack
 * overflow on deep graphs":
 *  - a rejection names a reason, and leaves the output spec empty;
 *  - an accepted workflow's graph is sound: every depends_on entry is the
 *    name of the task its index points at, no task waits for itself or for
 *    the same task twice, nedges is their sum, and topo is a permutation in
 *    which every task comes after all of its upstreams;
 *  - its canonical JSON, after a trip through text as the store makes it,
 *    parses again to the very same canonical JSON;
 *  - wfspec_redact leaves no secret value in any task's env.
 */
#include "core/workflow.h"
#include "fuzz.h"

#include <jansson.h>

static void check_graph(const wfspec_t *w)
{
    size_t n = w->ntasks, edges = 0;
    size_t *pos = xmalloc((n ? n : 1) * sizeof *pos);
    if (n == 0 || !w->topo) fuzz_fail("accepted a workflow without tasks or order");
    for (size_t i = 0; i < n; i++)
        pos[i] = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        size_t t = w->topo[k];
        if (t >= n || pos[t] != SIZE_MAX) fuzz_fail("topo is not a permutation at %zu", k);
        pos[t] = k;
    }
    for (size_t i = 0; i < n; i++) {
        const wf_task_t *t = &w->tasks[i];
        if (strcmp(t->name, t->job.name) != 0) fuzz_fail("task %zu: name and job name differ", i);
        for (size_t j = 0; j < t->ndeps; j++) {
            size_t u = t->up[j];
            if (u >= n || u == i) fuzz_fail("task %zu: upstream %zu out of range or self", i, u);
            if (strcmp(w->tasks[u].name, t->depends_on[j]) != 0)
                fuzz_fail("task %zu: depends_on[%zu] '%s' points at '%s'", i, j, t->depends_on[j],
                          w->tasks[u].name);
            for (size_t k = 0; k < j; k++)
                if (t->up[k] == u) fuzz_fail("task %zu: upstream %zu listed twice", i, u);
            if (pos[u] >= pos[i]) fuzz_fail("task %zu ordered before its upstream %zu", i, u);
        }
        edges += t->ndeps;
    }
    if (edges != w->nedges) fuzz_fail("nedges %zu, counted %zu", w->nedges, edges);
    free(pos);
}

static void check_canonical(const json_t *canon)
{
    char *text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) fuzz_fail("canonical document cannot be serialised");
    json_error_t jerr;
    json_t *reloaded = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!reloaded) fuzz_fail("canonical text does not load (%s): %s", jerr.text, text);
    wfspec_t again;
    jobspec_error_t err;
    if (wfspec_parse(reloaded, &again, &err) != 0)
        fuzz_fail("canonical document rejected at %s: %s\n%s", err.field, err.detail, text);
    json_t *canon2 = wfspec_to_json(&again);
    if (!json_equal(canon2, canon)) {
        char *t2 = json_dumps(canon2, JSON_COMPACT | JSON_SORT_KEYS);
        fuzz_fail("canonical form is not stable:\n  %s\n  %s", text, t2 ? t2 : "(null)");
    }
    json_decref(canon2);
    wfspec_free(&again);
    json_decref(reloaded);
    free(text);
}

static void check_redacted(const json_t *canon)
{
    json_t *r = wfspec_redact(canon);
    size_t i;
    json_t *task;
    json_array_foreach(json_object_get(r, "tasks"), i, task)
    {
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(task, "env"), k, v)
        {
            const json_t *s = json_object_get(v, "secret");
            if (s && strcmp(json_string_value(s), JOBSPEC_SECRET_MASK) != 0)
                fuzz_fail("tasks[%zu].env.%s: a secret survives redaction", i, k);
        }
    }
    json_decref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) return 0;
    wfspec_t w;
    jobspec_error_t err;
    if (wfspec_parse(doc, &w, &err) != 0) {
        static const wfspec_t zero;
        size_t dl = strnlen(err.detail, sizeof err.detail);
        if (dl == 0 || dl == sizeof err.detail) fuzz_fail("rejection without a reason");
        if (memcmp(&w, &zero, sizeof zero) != 0) fuzz_fail("rejected spec is not empty");
        json_decref(doc);
        return 0;
    }
    check_graph(&w);
    json_t *canon = wfspec_to_json(&w);
    check_canonical(canon);
    check_redacted(canon);
    json_decref(canon);
    wfspec_free(&w);
    json_decref(doc);
    return 0;
}
