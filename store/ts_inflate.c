/*
 * Copyright (C) ngx_tsdb authors
 *
 * Bounded inflate.  One z_stream, fed at most UINT_MAX input bytes at a
 * time (avail_in is a uInt), writing into a buffer whose capacity never
 * exceeds limit + 1: reaching limit + 1 bytes of output is the bomb
 * signal.  zlib's own state is allocated through the caller's allocator
 * as well, so a request pool bounds everything.
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "ts_error.h"
#include "ts_inflate.h"


#define TS_INFLATE_MIN      4096


typedef struct {
    ProtobufCAllocator     *a;
    z_stream                zs;
    uint8_t                *buf;
    size_t                  cap;
    size_t                  limit;
    const char            **reason;
} ts_inflate_t;


static void *
ts_inflate_malloc(void *data, size_t size)
{
    (void) data;

    return malloc(size);
}


static void
ts_inflate_mfree(void *data, void *p)
{
    (void) data;

    free(p);
}


static voidpf
ts_inflate_zalloc(voidpf opaque, uInt items, uInt size)
{
    ProtobufCAllocator  *a;

    a = opaque;

    return a->alloc(a->allocator_data, (size_t) items * size);
}


static void
ts_inflate_zfree(voidpf opaque, voidpf p)
{
    ProtobufCAllocator  *a;

    a = opaque;

    if (a->free != NULL) {
        a->free(a->allocator_data, p);
    }
}


static void
ts_inflate_why(ts_inflate_t *z, const char *msg)
{
    if (z->reason != NULL) {
        *z->reason = msg;
    }
}


ts_inflate_fmt_t
ts_inflate_detect(const uint8_t *in, size_t len)
{
    if (len >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
        return TS_INFLATE_GZIP;
    }

    if (len >= 2 && (in[0] & 0x0f) == 8 && (in[0] >> 4) <= 7
        && ((in[0] << 8) | in[1]) % 31 == 0 && (in[1] & 0x20) == 0)
    {
        return TS_INFLATE_ZLIB;
    }

    return TS_INFLATE_NONE;
}


/* doubles the output buffer, up to limit + 1 bytes */
static int
ts_inflate_grow(ts_inflate_t *z)
{
    uint8_t  *p;
    size_t    cap, used;

    used = z->cap - z->zs.avail_out;
    cap = z->cap * 2;

    if (cap > z->limit + 1 || cap < z->cap) {
        cap = z->limit + 1;
    }

    p = z->a->alloc(z->a->allocator_data, cap);
    if (p == NULL) {
        ts_inflate_why(z, "out of memory");
        return TS_ERR_NOMEM;
    }

    memcpy(p, z->buf, used);

    if (z->a->free != NULL) {
        z->a->free(z->a->allocator_data, z->buf);
    }

    z->buf = p;
    z->cap = cap;
    z->zs.next_out = p + used;
    z->zs.avail_out = (uInt) (cap - used > UINT_MAX ? UINT_MAX
                                                    : cap - used);
    return TS_OK;
}


/* output room for the next inflate() call; TS_ERR_LIMIT when full */
static int
ts_inflate_room(ts_inflate_t *z)
{
    size_t  used, left;

    if (z->zs.avail_out > 0) {
        return TS_OK;
    }

    used = (size_t) (z->zs.next_out - z->buf);

    if (used > z->limit) {
        ts_inflate_why(z, "decompressed size exceeds the limit");
        return TS_ERR_LIMIT;
    }

    if (used == z->cap) {
        return ts_inflate_grow(z);
    }

    left = z->cap - used;
    z->zs.avail_out = (uInt) (left > UINT_MAX ? UINT_MAX : left);

    return TS_OK;
}


/* a gzip member ended: another may follow, nothing else may */
static int
ts_inflate_next_member(ts_inflate_t *z, const uint8_t *end,
    ts_inflate_fmt_t fmt)
{
    if (fmt != TS_INFLATE_GZIP
        || ts_inflate_detect(z->zs.next_in, (size_t) (end - z->zs.next_in))
           != TS_INFLATE_GZIP)
    {
        ts_inflate_why(z, "data after the end of the compressed stream");
        return TS_ERR_CORRUPT;
    }

    if (inflateReset(&z->zs) != Z_OK) {
        ts_inflate_why(z, "inflateReset() failed");
        return TS_ERR_CORRUPT;
    }

    return TS_OK;
}


static int
ts_inflate_run(ts_inflate_t *z, const uint8_t *in, size_t len,
    ts_inflate_fmt_t fmt)
{
    int             rc, zrc;
    size_t          left;
    const uint8_t  *end;

    end = in + len;
    z->zs.next_in = (Bytef *) in;
    z->zs.avail_in = 0;

    for ( ;; ) {
        if (z->zs.avail_in == 0) {
            left = (size_t) (end - z->zs.next_in);
            z->zs.avail_in = (uInt) (left > UINT_MAX ? UINT_MAX : left);
        }

        rc = ts_inflate_room(z);
        if (rc != TS_OK) {
            return rc;
        }

        zrc = inflate(&z->zs, Z_NO_FLUSH);

        if (zrc == Z_STREAM_END) {
            if (z->zs.next_in == end) {
                return TS_OK;
            }

            rc = ts_inflate_next_member(z, end, fmt);
            if (rc != TS_OK) {
                return rc;
            }

            continue;
        }

        if (zrc == Z_BUF_ERROR && z->zs.avail_out > 0
            && z->zs.next_in == end)
        {
            ts_inflate_why(z, "compressed stream is truncated");
            return TS_ERR_CORRUPT;
        }

        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            ts_inflate_why(z, zrc == Z_MEM_ERROR ? "out of memory"
                              : "compressed stream is corrupt");
            return zrc == Z_MEM_ERROR ? TS_ERR_NOMEM : TS_ERR_CORRUPT;
        }
    }
}


int
ts_inflate(const uint8_t *in, size_t len, ts_inflate_fmt_t fmt,
    size_t limit, ProtobufCAllocator *a, uint8_t **out, size_t *out_len,
    const char **reason)
{
    int                  rc, bits;
    size_t               used;
    ts_inflate_t         z;
    ProtobufCAllocator   sys = { ts_inflate_malloc, ts_inflate_mfree, NULL };

    *out = NULL;
    *out_len = 0;

    memset(&z, 0, sizeof(z));
    z.a = a != NULL ? a : &sys;
    z.reason = reason;
    z.limit = limit < SIZE_MAX - 1 ? limit : SIZE_MAX - 2;

    switch (fmt) {
    case TS_INFLATE_GZIP:
        bits = 16 + MAX_WBITS;
        break;
    case TS_INFLATE_ZLIB:
        bits = MAX_WBITS;
        break;
    case TS_INFLATE_RAW:
        bits = -MAX_WBITS;
        break;
    default:
        ts_inflate_why(&z, "not a compressed format");
        return TS_ERR_INVALID;
    }

    z.zs.zalloc = ts_inflate_zalloc;
    z.zs.zfree = ts_inflate_zfree;
    z.zs.opaque = z.a;

    if (inflateInit2(&z.zs, bits) != Z_OK) {
        ts_inflate_why(&z, "out of memory");
        return TS_ERR_NOMEM;
    }

    /* a guess, never the limit itself: a bomb must not get it for free */
    z.cap = len < SIZE_MAX / 4 ? len * 4 : SIZE_MAX;
    z.cap = z.cap < TS_INFLATE_MIN ? TS_INFLATE_MIN : z.cap;
    z.cap = z.cap > z.limit + 1 ? z.limit + 1 : z.cap;

    z.buf = z.a->alloc(z.a->allocator_data, z.cap);
    if (z.buf == NULL) {
        (void) inflateEnd(&z.zs);
        ts_inflate_why(&z, "out of memory");
        return TS_ERR_NOMEM;
    }

    z.zs.next_out = z.buf;
    z.zs.avail_out = (uInt) (z.cap > UINT_MAX ? UINT_MAX : z.cap);

    rc = ts_inflate_run(&z, in, len, fmt);

    (void) inflateEnd(&z.zs);

    used = (size_t) (z.zs.next_out - z.buf);

    if (rc == TS_OK && used > z.limit) {
        ts_inflate_why(&z, "decompressed size exceeds the limit");
        rc = TS_ERR_LIMIT;
    }

    if (rc != TS_OK) {
        if (z.a->free != NULL) {
            z.a->free(z.a->allocator_data, z.buf);
        }

        return rc;
    }

    *out = z.buf;
    *out_len = used;

    return TS_OK;
}
