/*
 * Internals shared by the three files of the spawn module: spawn.c (the
 * child, its pipes and its exit), spawn_isolate.c (identity, limits, the
 * environment, working directories) and spawn_watcher.c (the orphan
 * watcher). Not for use outside them; the API is spawn.h.
 */
#ifndef SKED_WORKER_SPAWN_INT_H
#define SKED_WORKER_SPAWN_INT_H

#include <sys/types.h>

/* The PATH of every job's base environment (spawn_env_base), and the one
 * searched for argv[0] when the job's environment sets none. */
#define SPAWN_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* waitpid(pid, NULL, 0), looping on EINTR: reaps a child of ours that has
 * exited or is about to. Returns what waitpid returned. */
pid_t spawn__reap(pid_t pid);

#endif
