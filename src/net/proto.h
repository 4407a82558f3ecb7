/* The control-plane message protocol of src/net: frames, messages, encoder, decoder and a
 * streaming frame splitter. No sockets here; the event loop and endpoints build on this.
 *
 * Frame (all integers little-endian):
 *
 *   offset  size  field
 *   0       4     length   u32, bytes that follow this field (4 + body size), >= 4
 *   4       2     version  u16, EM_PROTO_VERSION
 *   6       2     type     u16, a message id of src/net/messages.def
 *   8       n     body     the message's fields in declaration order, nothing after the last
 *
 * A frame is at most max_frame bytes in total (4 + length), max_frame coming from
 * ember.rpc.message.maxSize; a larger length is refused from the header alone, before any
 * allocation. Field encodings are listed in messages.def.
 *
 * Ownership: a decoded message BORROWS from the frame: em_str / em_bytes / em_strlist point
 * into the frame bytes, are not NUL-terminated, and live as long as the frame does. Copy what
 * must outlive it (em__strndup(s.p, s.len)). To encode, fill a struct with views of your own
 * data; the encoder copies them into the output buffer.
 *
 * Thread rule: every function is any thread; an em_frame_reader belongs to one thread at a time.
 */
#ifndef EMBER_NET_PROTO_H
#define EMBER_NET_PROTO_H

#include "base/base.h"

#include <stddef.h>
#include <stdint.h>

#define EM_PROTO_VERSION     1
#define EM_FRAME_HEADER_SIZE 8            /* length + version + type */
#define EM_FRAME_DEFAULT_MAX (128u << 20) /* ember.rpc.message.maxSize default */

/* Roles named in Hello. */
enum em_role {
    EM_ROLE_MASTER = 1,
    EM_ROLE_WORKER = 2,
    EM_ROLE_DRIVER = 3,
    EM_ROLE_EXECUTOR = 4,
    EM_ROLE_CLIENT = 5, /* ember submit --status / --kill */
    EM_ROLE_FETCHER = 6,
};

/* ---- field types ---------------------------------------------------------------------------- */
/* A string view: len bytes at p, no NUL terminator (decoded strings never contain NUL). */
typedef struct em_str {
    const char *p;
    uint32_t len;
} em_str;
/* A byte view. */
typedef struct em_bytes {
    const uint8_t *p;
    uint32_t len;
} em_bytes;
/* A list of strings. To encode: set count and items (count em_str). A decoded list has
 * items == NULL and wire/wire_len pointing at its encoded entries (count x (u32 len + bytes),
 * already validated); walk it with em_strlist_next(). An encoder given items == NULL copies
 * wire verbatim, so a decoded message re-encodes as is. */
typedef struct em_strlist {
    uint32_t count;
    const em_str *items;
    const uint8_t *wire;
    size_t wire_len;
} em_strlist;

/* Builds a view of a NUL-terminated C string (NULL gives the empty string). */
static inline em_str em_str_c(const char *s)
{
    size_t n = 0;
    if (s)
        while (s[n]) n++;
    return (em_str){s ? s : "", (uint32_t)n};
}
/* The next entry of a list: set *pos = 0 first, then each call returns 1 with *out set, or 0
 * at the end. Works on encode-side (items) and decoded (wire) lists. */
int em_strlist_next(const em_strlist *l, size_t *pos, em_str *out);

/* ---- messages ---------------------------------------------------------------------------------
 */
#define EM__FT_u8      uint8_t
#define EM__FT_u32     uint32_t
#define EM__FT_i32     int32_t
#define EM__FT_i64     int64_t
#define EM__FT_u64     uint64_t
#define EM__FT_f64     double
#define EM__FT_str     em_str
#define EM__FT_bytes   em_bytes
#define EM__FT_strlist em_strlist

/* enum { EM_MSG_HELLO = 1, ... } */
enum em_msg_type {
    EM_MSG_NONE = 0,
#define EM_F(kind, field)
#define EM_MSG(ENUM, name, id, fields) EM_MSG_##ENUM = id,
#include "net/messages.def"
#undef EM_MSG
#undef EM_F
};

/* typedef struct em_msg_hello { uint32_t version; ... } em_msg_hello; */
#define EM_F(kind, field) EM__FT_##kind field;
#define EM_MSG(ENUM, name, id, fields)                                                             \
    typedef struct em_msg_##name {                                                                 \
        fields                                                                                     \
    } em_msg_##name;
#include "net/messages.def"
#undef EM_MSG
#undef EM_F

/* A decoded message: type selects the member of u named like the message. */
typedef struct em_msg {
    int type;
    union {
#define EM_F(kind, field)
#define EM_MSG(ENUM, name, id, fields) em_msg_##name name;
#include "net/messages.def"
#undef EM_MSG
#undef EM_F
    } u;
} em_msg;

/* The message's name ("register_worker"), or NULL for an unknown type. */
const char *em_msg_name(int type);

/* Appends one complete frame of message type to out; msg points at the em_msg_<name> of that
 * type. 0, EM_EINVAL (unknown type, a NULL view with a non-zero length), EM_ETOOBIG (frame
 * over 4 GiB) or EM_ENOMEM; on failure out->len is unchanged. */
int em_msg_encode(em_buf *out, int type, const void *msg);

/* Decodes one complete frame of len bytes (header included) into out, whose views borrow from
 * frame. 0, or EM_EFORMAT with a message naming the type, field and reason (length field not
 * matching len, frame over max_frame, wrong version, unknown type, a length beyond the bytes
 * that remain, NUL inside a str, bytes left after the last field). Never reads outside
 * [frame, frame + len); does not allocate. */
int em_msg_decode(const uint8_t *frame, size_t len, size_t max_frame, em_msg *out);

/* ---- streaming frame splitter -----------------------------------------------------------------
 */
/* Feed bytes as they arrive from a connection; take complete frames out. Memory: at most one
 * partial frame (< max_frame) plus the last chunk fed. The header of a frame is checked as soon
 * as its 8 bytes are in: a length under 4 or over max_frame, or a wrong version, is an error
 * at once and the reader stays failed (the connection is to be closed). Unknown types are left
 * to em_msg_decode. One thread at a time. */
typedef struct em_frame_reader {
    em_buf buf;       /* buffered bytes; [start, buf.len) not yet returned */
    size_t start;     /* first byte not yet returned by next() */
    size_t max_frame; /* limit on 4 + length */
    int failed;       /* the sticky error, 0 while healthy */
    uint64_t frames;  /* frames returned so far (for log lines) */
} em_frame_reader;

void em_frame_reader_init(em_frame_reader *r, size_t max_frame);
void em_frame_reader_free(em_frame_reader *r);
/* Appends n bytes. 0, EM_ENOMEM, or the sticky EM_EFORMAT of a bad header (checked here too,
 * so an oversize length is refused before its body is buffered). Invalidates frames returned
 * before. */
int em_frame_reader_feed(em_frame_reader *r, const void *data, size_t n);
/* The next complete frame: EM_ROW with *frame / *len set (valid until the next feed or free),
 * EM_DONE when more bytes are needed, or EM_EFORMAT (sticky). */
int em_frame_reader_next(em_frame_reader *r, const uint8_t **frame, size_t *len);
/* Bytes buffered and not yet returned (a partial frame at end of stream is a truncation). */
static inline size_t em_frame_reader_pending(const em_frame_reader *r)
{
    return r->buf.len - r->start;
}

#endif
