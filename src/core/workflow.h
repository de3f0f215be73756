/*
 * A workflow as clients describe it (POST /v1/workflows, PUT
 * /v1/workflows/{id}): a named DAG of tasks, each a job document plus the
 * names of the tasks it waits for and the trigger rule that combines
 * them, fired on the workflow's own schedules (or only by hand). Parsing,
 * validation and the canonical JSON, as core/jobspec.h does for a job, and
 * with the same words: every rejection names the field by its JSON path
 * ("tasks[3].depends_on[1]", "schedules[0].cron") and says why.
 *
 * The graph is checked whole at submission: unknown and duplicate task
 * names, a task depending on itself, and cycles (the error lists one
 * cycle's path, "cycle: a -> c -> b -> a"). All of it is O(tasks + edges)
 * and iterative, so a chain of WORKFLOW_TASKS_MAX tasks costs no stack.
 *
 * The workflow level takes: name, description, schedules (as a job's),
 * max_active_runs, overlap, misfire, catch_up_window, tags, tasks. A task
 * takes any job field (jobspec_parse checks them, naming them under
 * "tasks[i].") and depends_on, trigger_rule; not schedules (the
 * workflow's fire every task; an empty array is let through, as a copied
 * job document may carry one) and not array.
 */
#ifndef SKED_CORE_WORKFLOW_H
#define SKED_CORE_WORKFLOW_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/deps.h"
#include "core/jobspec.h"
#include "core/policy.h"

#define WORKFLOW_TASKS_MAX       10000  /* tasks in one workflow */
#define WORKFLOW_EDGES_MAX       100000 /* depends_on entries over all tasks */
#define WORKFLOW_ACTIVE_RUNS_MAX 1000   /* max_active_runs */
#define WORKFLOW_DESCRIPTION_MAX 4096   /* bytes in description */

/* One task. All owned by the wfspec. */
typedef struct wf_task {
    char *name;        /* job-name rules; unique in the workflow */
    char **depends_on; /* upstream task names, as given (duplicates folded) */
    size_t ndeps;
    size_t *up;          /* the same upstreams as indices into wfspec_t.tasks */
    trigger_rule_t rule; /* default RULE_ALL_SUCCESS */
    jobspec_t job;       /* the task's job fields (jobspec_parse); job.name = name */
} wf_task_t;

/* A parsed, validated workflow. Free with wfspec_free. */
typedef struct wfspec {
    char *name;
    char *description;             /* NULL = none */
    jobspec_schedule_t *schedules; /* as a job's; none = only manual triggers */
    size_t nschedules;
    int max_active_runs; /* default 1, 1..WORKFLOW_ACTIVE_RUNS_MAX */
    /* What a firing does when max_active_runs runs are active: allow =
     * queue it (it waits for a slot), forbid = skip it (reason overlap),
     * replace = cancel the oldest active run. Default allow. */
    overlap_policy_t overlap;
    misfire_policy_t misfire;   /* default run_once */
    int64_t catch_up_window_ms; /* misfire catch_up: default 1h */
    char *tags;                 /* canonical ",a,b," as jobspec; "" = none */
    wf_task_t *tasks;           /* 1..WORKFLOW_TASKS_MAX, in the order given */
    size_t ntasks;
    size_t *topo;  /* ntasks task indices in a topological order: roots first,
                      then breadth by breadth (Kahn's order, ties by index) */
    size_t nedges; /* sum of the tasks' ndeps */
} wfspec_t;

/* Parses and validates a workflow document. On success returns 0 and fills
 * *out (caller frees with wfspec_free). On failure returns SKED_EINVAL and
 * fills *err (may be NULL); *out is left empty. */
int wfspec_parse(const json_t *doc, wfspec_t *out, jobspec_error_t *err);

/* The canonical document: every workflow field with its default filled in
 * (description only when there is one), and each task as its canonical job
 * document (jobspec_to_json, without "schedules") plus "depends_on" and
 * "trigger_rule". wfspec_parse(wfspec_to_json(x)) yields x again. Secret
 * env values are kept (workers need them): show it through wfspec_redact.
 * New reference. */
json_t *wfspec_to_json(const wfspec_t *spec);

/* A deep copy of doc (a canonical workflow document or a Workflow resource)
 * with jobspec_redact applied to each entry of its "tasks". New reference;
 * doc is not changed. */
json_t *wfspec_redact(const json_t *doc);

/* Frees members; the struct itself is the caller's. NULL is a no-op. */
void wfspec_free(wfspec_t *spec);

#endif
