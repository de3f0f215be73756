/*
 * The limits of what an attempt hands back besides its exit status
 * (docs/results.md): its result, a JSON value written to
 * $SKED_RESULT_FILE and shipped with the completion, and its progress
 * checkpoint, text written to $SKED_CHECKPOINT_FILE and shipped with the
 * heartbeats, which the next attempt of a retried run reads at
 * $SKED_CHECKPOINT_IN.
 *
 * The worker caps both (--result-max, --checkpoint-max, default
 * RESULTS_DEFAULT_BYTES); the server refuses more than RESULTS_MAX_BYTES
 * of either, which is also the highest cap a worker accepts, so a worker
 * never ships what the server would refuse (a refused completion would
 * leave its run to the reaper). Both fit an HTTP body (1 MiB) whole.
 */
#ifndef SKED_CORE_RESULTS_H
#define SKED_CORE_RESULTS_H

#define RESULTS_DEFAULT_BYTES (64 * 1024)  /* the worker's default cap of each */
#define RESULTS_MAX_BYTES     (256 * 1024) /* the most the server takes of either */

#endif
