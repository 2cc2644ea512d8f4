/*
 * Copyright (C) ngx_tsdb authors
 *
 * Bounded inflate of gzip (RFC 1952, members may be concatenated as Go's
 * gzip.Reader accepts), zlib (RFC 1950) and raw deflate (RFC 1951)
 * bodies.
 *
 * The decompressed-size cap is enforced while inflating: the output
 * buffer starts small, grows by doubling and never beyond limit + 1
 * bytes, so a gzip bomb stops with TS_ERR_LIMIT after producing at most
 * limit + 1 bytes, whatever its trailer or headers claim.  That code is
 * distinct from TS_ERR_CORRUPT (a bad or truncated stream, trailing
 * garbage), so the glue can answer 413 and 400 respectively.
 *
 * Memory comes from the caller's ProtobufCAllocator (NULL: malloc/free);
 * with a pool allocator (free NULL) the abandoned smaller buffers stay in
 * the pool until it ends, at most as much again as the final buffer.
 */

#ifndef TS_INFLATE_H
#define TS_INFLATE_H


#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>


typedef enum {
    TS_INFLATE_NONE = 0,     /* not compressed (detect only) */
    TS_INFLATE_GZIP,
    TS_INFLATE_ZLIB,
    TS_INFLATE_RAW           /* bare deflate, "Content-Encoding: deflate"
                                as some clients misuse it */
} ts_inflate_fmt_t;


/*
 * The format the first bytes announce: GZIP for 1f 8b, ZLIB for a valid
 * zlib header (CM 8, window <= 32K, FCHECK right, no preset dictionary),
 * else NONE.
 */
ts_inflate_fmt_t ts_inflate_detect(const uint8_t *in, size_t len);

/*
 * Inflates in[0 .. len) of format fmt into *out (allocated from a) and
 * sets *out_len.  Returns TS_OK; TS_ERR_LIMIT when the output would
 * exceed limit bytes; TS_ERR_CORRUPT for a malformed or truncated
 * stream or bytes after its end (gzip: anything but another member);
 * TS_ERR_INVALID for fmt NONE; TS_ERR_NOMEM.  On failure *out is NULL
 * and nothing stays allocated (with a free function).  reason (may be
 * NULL) gets a static one-line description.
 */
int ts_inflate(const uint8_t *in, size_t len, ts_inflate_fmt_t fmt,
    size_t limit, ProtobufCAllocator *a, uint8_t **out, size_t *out_len,
    const char **reason);


#endif /* TS_INFLATE_H */
