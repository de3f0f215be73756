/*
 * Workflow documents: parsing, validation and the canonical JSON (see
 * workflow.h). The workflow-level fields it shares with a job (schedules,
 * overlap, misfire, catch_up_window, tags) go through the very parsers of
 * core/jobspec.c (jobspec_int.h), and each task through jobspec_parse
 * itself, its errors moved under "tasks[i].", so a task is checked with the
 * same words and limits as the job it becomes.
 *
 * The graph is checked in three linear passes. Task names go into an
 * open-addressing hash table as the tasks are parsed (a duplicate is found
 * there). Each depends_on entry is then looked up (unknown names and
 * self-dependencies are refused, repeats folded). Last, Kahn's algorithm
 * orders the tasks, roots first; the tasks it cannot order all sit on or
 * behind a cycle, and following the not-yet-ordered upstreams of any of
 * them must come back to a task already seen, which closes the cycle the
 * error names. Nothing recurses, so the depth of the graph costs no stack.
 */
#include "core/workflow.h"
#include "core/jobspec_int.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NO_TASK SIZE_MAX

/* How many bytes of task names a cycle's error lists before it elides the
 * middle; the whole detail is clipped to jobspec_error_t's 256 bytes. */
#define CYCLE_TEXT_MAX 120

/* ---- names --------------------------------------------------------------- */

/* Task name -> index, open addressing with linear probing; a slot holds
 * index + 1 (0 = empty). At most half full, so probes stay short. */
typedef struct names {
    size_t *slot;
    size_t mask;
} names_t;

static uint64_t hash_name(const char *s)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static void names_init(names_t *h, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    h->slot = xcalloc(cap, sizeof *h->slot);
    h->mask = cap - 1;
}

/* The slot where name is, or the empty slot where it would go. */
static size_t names_probe(const names_t *h, const wf_task_t *tasks, const char *name)
{
    size_t i = (size_t)hash_name(name) & h->mask;
    while (h->slot[i] && strcmp(tasks[h->slot[i] - 1].name, name) != 0)
        i = (i + 1) & h->mask;
    return i;
}

static size_t names_find(const names_t *h, const wf_task_t *tasks, const char *name)
{
    size_t i = names_probe(h, tasks, name);
    return h->slot[i] ? h->slot[i] - 1 : NO_TASK;
}

/* Adds task idx; returns the index of an earlier task of the same name, or
 * NO_TASK when the name is new. */
static size_t names_add(names_t *h, const wf_task_t *tasks, size_t idx)
{
    size_t i = names_probe(h, tasks, tasks[idx].name);
    if (h->slot[i]) return h->slot[i] - 1;
    h->slot[i] = idx + 1;
    return NO_TASK;
}

/* ---- one task ------------------------------------------------------------ */

/* Re-records a failure of jobspec_parse on task i under "tasks[i].". */
static int task_fail(jobspec_error_t *err, size_t i, const jobspec_error_t *inner)
{
    char field[sizeof err->field];
    size_t flen = strlen(inner->field);
    const char *msg = inner->detail;
    /* The detail repeats the field ("command: is required"): keep the
     * sentence only, fail() puts the new path in front. */
    if (flen && strncmp(msg, inner->field, flen) == 0 && msg[flen] == ':' && msg[flen + 1] == ' ')
        msg += flen + 2;
    if (flen)
        jobspec__strf(field, sizeof field, "tasks[%zu].%s", i, inner->field);
    else
        jobspec__strf(field, sizeof field, "tasks[%zu]", i);
    return jobspec__fail(err, field, "%s", msg);
}

static int parse_rule(const json_t *v, const char *field, trigger_rule_t *out, jobspec_error_t *err)
{
    if (json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) &&
        trigger_rule_parse(json_string_value(v), out) == 0)
        return 0;
    buf_t list = BUF_INIT;
    for (int r = 0; r < RULE_COUNT; r++)
        buf_printf(&list, "%s\"%s\"", r ? ", " : "", trigger_rule_name((trigger_rule_t)r));
    jobspec__fail(err, field, "must be one of %s", list.data);
    buf_free(&list);
    return SKED_EINVAL;
}

/* depends_on as given: t->depends_on gets a copy of every name (resolved
 * and folded later, when all task names are known). */
static int parse_depends_on(const json_t *v, size_t i, wf_task_t *t, jobspec_error_t *err)
{
    char field[sizeof err->field];
    jobspec__strf(field, sizeof field, "tasks[%zu].depends_on", i);
    if (!json_is_array(v)) return jobspec__fail(err, field, "must be an array of task names");
    size_t n = json_array_size(v);
    if (n > WORKFLOW_TASKS_MAX)
        return jobspec__fail(err, field, "must have at most %d entries", WORKFLOW_TASKS_MAX);
    t->depends_on = xcalloc(n ? n : 1, sizeof *t->depends_on);
    for (size_t j = 0; j < n; j++) {
        const char *s;
        jobspec__strf(field, sizeof field, "tasks[%zu].depends_on[%zu]", i, j);
        int rc = jobspec__get_label(json_array_get(v, j), field, NULL, &s, err);
        if (rc) return rc;
        t->depends_on[j] = xstrdup(s);
        t->ndeps = j + 1;
    }
    return 0;
}

static int parse_task(const json_t *v, size_t i, wf_task_t *t, jobspec_error_t *err)
{
    char field[sizeof err->field];
    jobspec_error_t inner;
    const json_t *f;
    int rc;

    t->rule = RULE_ALL_SUCCESS;
    jobspec__strf(field, sizeof field, "tasks[%zu]", i);
    if (!json_is_object(v))
        return jobspec__fail(err, field,
                             "must be an object: a job document with \"depends_on\" and "
                             "\"trigger_rule\"");
    f = json_object_get(v, "schedules");
    if (f && !(json_is_array(f) && json_array_size(f) == 0)) {
        jobspec__strf(field, sizeof field, "tasks[%zu].schedules", i);
        return jobspec__fail(err, field,
                             "a task has no schedules of its own: the workflow's \"schedules\" "
                             "fire all of its tasks");
    }
    /* (null: no array, as a canonical job document may one day write it.) */
    if ((f = json_object_get(v, "array")) && !json_is_null(f)) {
        jobspec__strf(field, sizeof field, "tasks[%zu].array", i);
        return jobspec__fail(err, field, "a workflow task cannot be a job array");
    }

    /* The job fields alone, checked as a job document. (A shallow copy:
     * deleting members does not touch v.) */
    json_t *job = json_copy((json_t *)v);
    json_object_del(job, "depends_on");
    json_object_del(job, "trigger_rule");
    json_object_del(job, "schedules");
    rc = jobspec_parse(job, &t->job, &inner);
    json_decref(job);
    if (rc) return task_fail(err, i, &inner);
    t->name = xstrdup(t->job.name);

    if ((f = json_object_get(v, "trigger_rule"))) {
        jobspec__strf(field, sizeof field, "tasks[%zu].trigger_rule", i);
        if ((rc = parse_rule(f, field, &t->rule, err))) return rc;
    }
    if ((f = json_object_get(v, "depends_on")) && (rc = parse_depends_on(f, i, t, err))) return rc;
    return 0;
}

/* ---- the graph ----------------------------------------------------------- */

/* Resolves every depends_on name to its task, refusing unknown names and
 * self-dependencies, and folds repeats (keeping the first). */
static int resolve_edges(wfspec_t *w, const names_t *h, jobspec_error_t *err)
{
    size_t *seen = xmalloc(w->ntasks * sizeof *seen); /* task -> last task that listed it */
    char field[sizeof err->field];
    int rc = 0;

    for (size_t i = 0; i < w->ntasks; i++)
        seen[i] = NO_TASK;
    for (size_t i = 0; i < w->ntasks; i++) {
        wf_task_t *t = &w->tasks[i];
        size_t kept = 0;
        t->up = xcalloc(t->ndeps ? t->ndeps : 1, sizeof *t->up);
        for (size_t j = 0; j < t->ndeps; j++) {
            size_t u = names_find(h, w->tasks, t->depends_on[j]);
            jobspec__strf(field, sizeof field, "tasks[%zu].depends_on[%zu]", i, j);
            if (u == NO_TASK) {
                rc = jobspec__fail(err, field, "unknown task \"%s\"", t->depends_on[j]);
                goto out;
            }
            if (u == i) {
                rc = jobspec__fail(err, field, "task \"%s\" cannot depend on itself", t->name);
                goto out;
            }
            if (seen[u] == i) { /* listed twice: once is enough */
                free(t->depends_on[j]);
                t->depends_on[j] = NULL;
                continue;
            }
            seen[u] = i;
            t->up[kept] = u;
            t->depends_on[kept] = t->depends_on[j];
            if (kept != j) t->depends_on[j] = NULL;
            kept++;
        }
        /* Folded entries are freed above; the rest moved down. */
        t->ndeps = kept;
        w->nedges += kept;
    }
out:
    free(seen);
    return rc;
}

/* The error for the tasks Kahn's algorithm could not order (indeg > 0 for
 * each of them, counting only upstreams also left over). Walks upstream
 * from the first of them until a task repeats; the repeat closes a cycle,
 * written in the order the tasks would run ("a -> b": b depends on a),
 * starting from its task listed first. */
static int cycle_fail(const wfspec_t *w, const size_t *indeg, jobspec_error_t *err)
{
    size_t n = w->ntasks, steps = 0, cur = 0;
    size_t *pos = xmalloc(n * sizeof *pos);   /* task -> step it was met at */
    size_t *path = xmalloc(n * sizeof *path); /* step -> task */
    buf_t b = BUF_INIT;

    for (size_t i = 0; i < n; i++)
        pos[i] = NO_TASK;
    while (cur < n && indeg[cur] == 0)
        cur++;
    /* Every left-over task has a left-over upstream, so this ends at a
     * repeat within n steps. */
    while (cur < n && pos[cur] == NO_TASK) {
        const wf_task_t *t = &w->tasks[cur];
        size_t next = n;
        pos[cur] = steps;
        path[steps++] = cur;
        for (size_t j = 0; j < t->ndeps && next == n; j++)
            if (indeg[t->up[j]] > 0) next = t->up[j];
        cur = next;
    }
    /* The cycle is path[pos[cur]..steps-1], each entry an upstream of the one
     * before it; in running order that is path[first], path[steps-1], ...,
     * path[first+1]. */
    size_t first = cur < n ? pos[cur] : 0, len = steps - first, start = 0;
    size_t *cyc = xmalloc((len ? len : 1) * sizeof *cyc);
    for (size_t k = 0; k < len; k++)
        cyc[k] = path[k == 0 ? first : steps - k];
    for (size_t k = 1; k < len; k++)
        if (cyc[k] < cyc[start]) start = k;

    bool elided = false;
    buf_puts(&b, "");
    for (size_t k = 0; k < len; k++) {
        if (b.len > CYCLE_TEXT_MAX && k + 1 < len) {
            /* Too long to list: the head, then the last task before the
             * cycle closes. */
            buf_printf(&b, " -> ... -> %s", w->tasks[cyc[(start + len - 1) % len]].name);
            elided = true;
            break;
        }
        buf_printf(&b, "%s%s", k ? " -> " : "", w->tasks[cyc[(start + k) % len]].name);
    }
    char count[48] = "";
    if (elided) jobspec__strf(count, sizeof count, " of %zu tasks", len);
    int rc =
        jobspec__fail(err, "tasks", "cycle%s: %s -> %s (each task depends on the one before it)",
                      count, b.data, w->tasks[cyc[start]].name);
    buf_free(&b);
    free(cyc);
    free(path);
    free(pos);
    return rc;
}

/* Orders the tasks (Kahn): w->topo, roots first in the order given, then
 * each task as soon as all its upstreams are placed. O(tasks + edges). */
static int order_tasks(wfspec_t *w, jobspec_error_t *err)
{
    size_t n = w->ntasks, head = 0, tail = 0;
    size_t *indeg = xcalloc(n, sizeof *indeg);
    size_t *start = xcalloc(n + 1, sizeof *start); /* downstream lists, CSR */
    size_t *down = xcalloc(w->nedges ? w->nedges : 1, sizeof *down);
    size_t *fill = xcalloc(n + 1, sizeof *fill);
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        indeg[i] = w->tasks[i].ndeps;
        for (size_t j = 0; j < w->tasks[i].ndeps; j++)
            start[w->tasks[i].up[j] + 1]++;
    }
    for (size_t i = 0; i < n; i++)
        start[i + 1] += start[i];
    memcpy(fill, start, (n + 1) * sizeof *fill);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < w->tasks[i].ndeps; j++)
            down[fill[w->tasks[i].up[j]]++] = i;

    w->topo = xcalloc(n, sizeof *w->topo);
    for (size_t i = 0; i < n; i++)
        if (indeg[i] == 0) w->topo[tail++] = i;
    while (head < tail) {
        size_t u = w->topo[head++];
        for (size_t k = start[u]; k < start[u + 1]; k++)
            if (--indeg[down[k]] == 0) w->topo[tail++] = down[k];
    }
    if (tail < n) rc = cycle_fail(w, indeg, err);
    free(indeg);
    free(start);
    free(down);
    free(fill);
    return rc;
}

/* ---- the document -------------------------------------------------------- */

static int parse_tasks(const json_t *v, wfspec_t *out, jobspec_error_t *err)
{
    names_t h = {0};
    size_t raw_edges = 0;
    int rc = 0;

    if (!v) return jobspec__fail(err, "tasks", "is required: give an array of tasks");
    if (!json_is_array(v)) return jobspec__fail(err, "tasks", "must be an array of tasks");
    size_t n = json_array_size(v);
    if (n == 0) return jobspec__fail(err, "tasks", "must have at least one task");
    if (n > WORKFLOW_TASKS_MAX)
        return jobspec__fail(err, "tasks", "must have at most %d entries", WORKFLOW_TASKS_MAX);
    out->tasks = xcalloc(n, sizeof *out->tasks);
    names_init(&h, n);
    for (size_t i = 0; i < n; i++) {
        out->ntasks = i + 1; /* counted first, so wfspec_free releases a partial one */
        wf_task_t *t = &out->tasks[i];
        if ((rc = parse_task(json_array_get(v, i), i, t, err))) goto out;
        size_t dup = names_add(&h, out->tasks, i);
        if (dup != NO_TASK) {
            char field[sizeof err->field];
            jobspec__strf(field, sizeof field, "tasks[%zu].name", i);
            rc = jobspec__fail(err, field, "duplicate task name \"%s\" (also tasks[%zu])", t->name,
                               dup);
            goto out;
        }
        raw_edges += t->ndeps;
        if (raw_edges > WORKFLOW_EDGES_MAX) {
            char field[sizeof err->field];
            jobspec__strf(field, sizeof field, "tasks[%zu].depends_on", i);
            rc = jobspec__fail(err, field, "a workflow may have at most %d dependencies in all",
                               WORKFLOW_EDGES_MAX);
            goto out;
        }
    }
    if ((rc = resolve_edges(out, &h, err))) goto out;
    rc = order_tasks(out, err);
out:
    free(h.slot);
    return rc;
}

static int parse_doc(const json_t *doc, wfspec_t *out, jobspec_error_t *err)
{
    static const char *const keys[] = {
        "name",    "description", "schedules",       "overlap", "max_active_runs",
        "misfire", "tags",        "catch_up_window", "tasks",   NULL};
    const json_t *v;
    const char *s;
    int rc;

    out->tags = xstrdup("");
    out->max_active_runs = 1;
    if (!json_is_object(doc))
        return jobspec__fail(err, "", "the workflow document must be a JSON object");
    if (json_is_null(json_object_get(doc, "tasks")))
        return jobspec__fail(err, "tasks", "is required and must not be null");
    if ((rc = jobspec__check_keys(doc, keys, NULL, "", err))) return rc;

    if (!(v = jobspec__opt(doc, "name"))) return jobspec__fail(err, "name", "is required");
    if ((rc = jobspec__get_label(v, "name", NULL, &s, err))) return rc;
    out->name = xstrdup(s);
    if ((v = jobspec__opt(doc, "description"))) {
        if ((rc = jobspec__get_string(v, "description", 0, WORKFLOW_DESCRIPTION_MAX, &s, err)))
            return rc;
        out->description = xstrdup(s);
    }
    if ((rc = jobspec__parse_schedules(jobspec__opt(doc, "schedules"), &out->schedules,
                                       &out->nschedules, err)))
        return rc;
    if ((v = jobspec__opt(doc, "max_active_runs")) &&
        (rc = jobspec__get_int(v, "max_active_runs", 1, WORKFLOW_ACTIVE_RUNS_MAX,
                               &out->max_active_runs, err)))
        return rc;
    if ((rc = jobspec__parse_policies(doc, &out->overlap, &out->misfire, &out->catch_up_window_ms,
                                      err)))
        return rc;
    if ((rc = jobspec__parse_tags(jobspec__opt(doc, "tags"), &out->tags, err))) return rc;
    return parse_tasks(jobspec__opt(doc, "tasks"), out, err);
}

int wfspec_parse(const json_t *doc, wfspec_t *out, jobspec_error_t *err)
{
    jobspec_error_t scratch;
    if (!err) err = &scratch;
    memset(err, 0, sizeof *err);
    memset(out, 0, sizeof *out);
    int rc = parse_doc(doc, out, err);
    if (rc) wfspec_free(out);
    return rc;
}

json_t *wfspec_to_json(const wfspec_t *spec)
{
    buf_t b = BUF_INIT;
    buf_puts(&b, "{\"name\":");
    buf_json_str(&b, spec->name ? spec->name : "");
    if (spec->description) {
        buf_puts(&b, ",\"description\":");
        buf_json_str(&b, spec->description);
    }
    buf_puts(&b, ",\"schedules\":");
    jobspec_write_schedules(&b, spec->schedules, spec->nschedules);
    buf_puts(&b, ",\"max_active_runs\":");
    buf_put_i64(&b, spec->max_active_runs);
    jobspec__write_policies(&b, spec->overlap, spec->misfire, spec->catch_up_window_ms);
    buf_puts(&b, ",\"tags\":");
    jobspec__write_tags(&b, spec->tags);
    buf_puts(&b, ",\"tasks\":[");
    for (size_t i = 0; i < spec->ntasks; i++) {
        const wf_task_t *t = &spec->tasks[i];
        buf_puts(&b, i ? ",{" : "{");
        /* No "schedules": always empty, the workflow's fire it. */
        jobspec_write_members(&b, &t->job, false);
        buf_puts(&b, ",\"depends_on\":[");
        for (size_t j = 0; j < t->ndeps; j++) {
            if (j) buf_putc(&b, ',');
            buf_json_str(&b, t->depends_on[j]);
        }
        buf_puts(&b, "],\"trigger_rule\":");
        buf_json_str(&b, trigger_rule_name(t->rule));
        buf_putc(&b, '}');
    }
    buf_puts(&b, "]}");
    json_t *o = jobspec__text_json(b.data);
    buf_free(&b);
    return o;
}

json_t *wfspec_redact(const json_t *doc)
{
    json_t *copy = json_deep_copy(doc);
    json_t *tasks = json_object_get(copy, "tasks");
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        json_array_set_new(tasks, i, jobspec_redact(t));
    }
    return copy;
}

void wfspec_free(wfspec_t *spec)
{
    if (!spec) return;
    free(spec->name);
    free(spec->description);
    jobspec__schedules_free(spec->schedules, spec->nschedules);
    free(spec->tags);
    for (size_t i = 0; spec->tasks && i < spec->ntasks; i++) {
        wf_task_t *t = &spec->tasks[i];
        free(t->name);
        for (size_t j = 0; t->depends_on && j < t->ndeps; j++)
            free(t->depends_on[j]);
        free(t->depends_on);
        free(t->up);
        jobspec_free(&t->job);
    }
    free(spec->tasks);
    free(spec->topo);
    memset(spec, 0, sizeof *spec);
}
