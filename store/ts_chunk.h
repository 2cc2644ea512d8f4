/*
 * Copyright (C) ngx_tsdb authors
 *
 * Prometheus XOR chunk codec (chunkenc.EncXOR).  The bytes a chunk
 * holds are those of Prometheus's XORChunk.Bytes() for the same samples,
 * so remote read may send them as they are.  Layout and a worked example:
 * docs/format/chunk.md.
 *
 * Nothing here allocates.  The appender state is a plain struct without
 * pointers and the chunk buffer is passed to every call, so both may live
 * in a shared memory zone mapped at different addresses.
 *
 * Concurrency contract: one writer per chunk at a time (the caller
 * serializes ts_xor_init(), ts_xor_append*() and ts_xor_recover());
 * any number of readers in any process, without a lock, through
 * ts_xor_snapshot() or ts_xor_iter_init_live().  Those read the
 * published (count, length) pair once, with acquire order, and decode
 * nothing beyond it.  The caller keeps the buffer alive and unreused
 * while readers may still look at it.
 */

#ifndef TS_CHUNK_H
#define TS_CHUNK_H


#include <stddef.h>
#include <stdint.h>


/* chunkenc.EncXOR, also prompb Chunk.Encoding XOR */
#define TS_XOR_ENCODING          1

#define TS_XOR_HEADER_SIZE       2

/* Prometheus cuts head chunks at about this many samples */
#define TS_XOR_SAMPLES_TARGET    120

/* the header count is a uint16 */
#define TS_XOR_MAX_SAMPLES       65535

/* the largest sample: 10-byte uvarint delta + 77-bit value, 157 bits */
#define TS_XOR_SAMPLE_MAX_BYTES  20

/* a fresh chunk always takes one sample; no chunk can need more */
#define TS_XOR_MIN_CAP          (TS_XOR_HEADER_SIZE + TS_XOR_SAMPLE_MAX_BYTES)
#define TS_XOR_MAX_CAP                                                    \
    (TS_XOR_HEADER_SIZE + TS_XOR_MAX_SAMPLES * TS_XOR_SAMPLE_MAX_BYTES)


typedef struct {
    uint64_t        pub;        /* count << 32 | length in bits incl.
                                   header; stored last, release order */
    uint64_t        tdelta;     /* last timestamp delta */
    uint64_t        v;          /* bits of the last value */
    int64_t         t;          /* last timestamp */
    uint32_t        cap;        /* bytes in the chunk buffer */
    uint8_t         leading;    /* XOR window, 0xff before the first */
    uint8_t         trailing;
} ts_xor_appender_t;


typedef struct {
    const uint8_t  *data;
    size_t          len;        /* bytes that may be read at data */
    uint64_t        pos;        /* next bit */
    uint64_t        end;        /* bits that may be consumed */
    uint64_t        tdelta;
    uint64_t        v;
    int64_t         t;
    uint32_t        n;          /* samples in the chunk */
    uint32_t        i;          /* samples returned */
    uint8_t         leading;
    uint8_t         trailing;
    int8_t          err;        /* sticky TS_ERR_CORRUPT */
} ts_xor_iter_t;


/*
 * Starts an empty chunk in buf[0 .. cap).  TS_ERR_INVALID unless
 * TS_XOR_MIN_CAP <= cap <= TS_XOR_MAX_CAP.  Not safe against readers of
 * the same state: initialize before publishing the chunk.
 */
int ts_xor_init(ts_xor_appender_t *a, uint8_t *buf, size_t cap);

/*
 * Appends one sample: TS_OK; TS_ERR_OUT_OF_ORDER if t is not after the
 * last timestamp (equal included: the caller tells duplicates apart by
 * comparing with a->t); TS_ERR_FULL if this sample does not fit in the
 * buffer or the chunk holds TS_XOR_MAX_SAMPLES.  On error nothing
 * changed, and a smaller sample may still fit after TS_ERR_FULL: cut a
 * new chunk on the first one.  Values are kept bit for bit (NaN payloads,
 * the 0x7ff0000000000002 stale marker, -0.0); _bits takes the IEEE-754
 * bit pattern.
 */
int ts_xor_append(ts_xor_appender_t *a, uint8_t *buf, int64_t t, double v);
int ts_xor_append_bits(ts_xor_appender_t *a, uint8_t *buf, int64_t t,
    uint64_t v);

/*
 * Published sample count and chunk length in bytes, header included.
 * Each is read atomically, but two calls may see different appends: a
 * reader racing the writer uses ts_xor_snapshot() instead.  Without a
 * concurrent writer, buf[0 .. ts_xor_bytes()) is the complete chunk.
 */
uint32_t ts_xor_count(const ts_xor_appender_t *a);
size_t ts_xor_bytes(const ts_xor_appender_t *a);

/*
 * Copies a consistent chunk into dst while the writer may be appending:
 * loads the published pair once, copies that many bytes, writes the
 * count into the copy's header and clears the bits after the published
 * end.  *len is dst's size on input, the chunk's length on output.
 * TS_ERR_FULL (nothing copied) if dst is too small; TS_XOR_MAX_CAP bytes
 * always suffice.
 */
int ts_xor_snapshot(const ts_xor_appender_t *a, const uint8_t *buf,
    uint8_t *dst, size_t *len);

/*
 * Rebuilds the appender state from the published samples, after the
 * writer died or before a new writer takes over a chunk whose previous
 * writer may have died mid-append.  Restores the header, clears bits past
 * the published end.  TS_ERR_CORRUPT if the published data do not decode.
 */
int ts_xor_recover(ts_xor_appender_t *a, uint8_t *buf);

/*
 * Iterates the chunk data[0 .. len) (header included; bytes after the
 * last sample are ignored).  Never reads outside it, constant work per
 * sample.  _live iterates the chunk of an appender in place, racing the
 * writer safely as ts_xor_snapshot() does.
 */
void ts_xor_iter_init(ts_xor_iter_t *it, const uint8_t *data, size_t len);
void ts_xor_iter_init_live(ts_xor_iter_t *it, const ts_xor_appender_t *a,
    const uint8_t *buf);

/*
 * 1 and the next sample, 0 at the end, TS_ERR_CORRUPT (then on every
 * later call) on truncated or malformed input: samples returned before
 * it stay valid.  Beyond Prometheus, rejects timestamps that do not
 * increase and XOR windows wider than 64 bits, which no encoder writes.
 */
int ts_xor_iter_next(ts_xor_iter_t *it, int64_t *t, double *v);
int ts_xor_iter_next_bits(ts_xor_iter_t *it, int64_t *t, uint64_t *v);


/*
 * Shared with the histogram chunk codec (ts_hchunk.c), which writes the
 * same MSB-first bit stream and Gorilla XOR value fields.
 */

/* one XOR value field, computed but not written yet */
typedef struct {
    uint64_t        sig;        /* significant bits of the XOR */
    uint32_t        ctl;        /* '0', '10' or '11' + leading + width */
    uint8_t         nctl;
    uint8_t         nsig;       /* 0: no significant bits follow */
    uint8_t         leading;    /* the window after this value */
    uint8_t         trailing;
} ts_xor_val_t;

/*
 * Writes the n (0 < n <= 64) low bits of u at bit pos, returns pos + n.
 * Bits before pos in the same byte are kept, later bytes of an 8-byte
 * window may be overwritten: the caller checked pos + n <= cap * 8.
 */
uint32_t ts_xor_bits_put(uint8_t *buf, size_t cap, uint32_t pos, uint64_t u,
    unsigned n);

/* the 64 bits at bit pos, zeros past len; never reads outside data */
uint64_t ts_xor_bits_peek(const uint8_t *data, size_t len, uint64_t pos);

/* reads n (0 < n <= 64) bits at *pos and advances it; zeros past len */
uint64_t ts_xor_bits_read(const uint8_t *data, size_t len, uint64_t *pos,
    unsigned n);

/*
 * Go's xorWrite: the field for value v after prev with the window
 * (leading, trailing); leading 0xff means no window yet.
 */
void ts_xor_val_encode(uint64_t prev, uint8_t leading, uint8_t trailing,
    uint64_t v, ts_xor_val_t *x);

/*
 * Go's xorRead at *pos: updates *v and the window, advances *pos.
 * TS_ERR_CORRUPT if a new window is wider than 64 bits.  Bits past len
 * read as zeros: the caller checks *pos against its end afterwards.
 */
int ts_xor_val_decode(const uint8_t *data, size_t len, uint64_t *pos,
    uint64_t *v, uint8_t *leading, uint8_t *trailing);


#endif /* TS_CHUNK_H */
