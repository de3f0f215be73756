/*
 * The channel between a worker and one of its plugin hosts (docs/plugins.md
 * "How plugins run"): a stream socket (a socketpair made by the worker, the
 * host's stdin) carrying frames. A frame is a 16-byte head — payload length
 * (u32), type (u8), stream (u8), two zero bytes, key (u64), all in host
 * byte order since both ends are the same binary on the same machine —
 * and the payload. The key names an attempt (the worker's number for it),
 * or a ping.
 *
 *   worker -> host: START (key, JSON: the attempt), CANCEL (key), PING
 *                   (key = sequence number)
 *   host -> worker: HELLO (JSON: type, version, abi, once, when the plugin
 *                   is loaded and initialised), FATAL (text: why it could
 *                   not be, then the host exits), OUTPUT (key, stream,
 *                   bytes), DONE (key, JSON: ok, reason), PONG (key of the
 *                   PING)
 *
 * The worker closing its end tells the host to stop. Both ends are sked;
 * the worker still treats what the host sends as untrusted (a plugin runs
 * in the host's address space): a malformed frame kills the host.
 */
#ifndef SKED_WORKER_PLUGIN_PROTO_H
#define SKED_WORKER_PLUGIN_PROTO_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_HEAD   16
#define PROTO_MAX    (8u << 20) /* payload bytes of one frame, at most */
#define PROTO_OUTPUT (64 << 10) /* output bytes per OUTPUT frame, at most */

enum proto_type {
    PROTO_HELLO = 1,
    PROTO_FATAL,
    PROTO_START,
    PROTO_CANCEL,
    PROTO_OUTPUT_T,
    PROTO_DONE,
    PROTO_PING,
    PROTO_PONG,
    PROTO_TYPE_END
};

typedef struct proto_frame {
    int type;         /* enum proto_type */
    int stream;       /* OUTPUT: 1 stdout, 2 stderr */
    uint64_t key;     /* the attempt (or ping) it is about */
    const char *data; /* borrowed from the buffer parsed */
    size_t len;
} proto_frame_t;

/* Appends one frame to b. */
void proto_put(buf_t *b, int type, int stream, uint64_t key, const void *data, size_t len);

/* Parses the frame at the start of data[0..len). Returns the bytes it takes
 * (> 0) and fills *f; 0 when the frame is not complete yet; -1 when the
 * head is malformed (unknown type, payload over PROTO_MAX, nonzero pad). */
ssize_t proto_get(const char *data, size_t len, proto_frame_t *f);

#endif
