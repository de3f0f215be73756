/*
 * Frames of the worker <-> plugin host channel (plugin_proto.h).
 */
#include "worker/plugin_proto.h"

#include <string.h>

void proto_put(buf_t *b, int type, int stream, uint64_t key, const void *data, size_t len)
{
    unsigned char h[PROTO_HEAD] = {0};
    uint32_t n = (uint32_t)len;
    memcpy(h, &n, 4);
    h[4] = (unsigned char)type;
    h[5] = (unsigned char)stream;
    memcpy(h + 8, &key, 8);
    buf_append(b, h, sizeof h);
    if (len) buf_append(b, data, len);
}

ssize_t proto_get(const char *data, size_t len, proto_frame_t *f)
{
    if (len < PROTO_HEAD) return 0;
    const unsigned char *h = (const unsigned char *)data;
    uint32_t n;
    memcpy(&n, h, 4);
    if (h[4] == 0 || h[4] >= PROTO_TYPE_END || h[6] || h[7] || n > PROTO_MAX) return -1;
    if (len - PROTO_HEAD < n) return 0;
    f->type = h[4];
    f->stream = h[5];
    memcpy(&f->key, h + 8, 8);
    f->data = data + PROTO_HEAD;
    f->len = n;
    return (ssize_t)(PROTO_HEAD + n);
}
