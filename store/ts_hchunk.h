/*
 * Copyright (C) ngx_tsdb authors
 *
 * Native histogram chunk codecs: Prometheus's chunkenc.EncHistogram
 * (integer histograms) and chunkenc.EncFloatHistogram.  A chunk holds
 * the bytes of Prometheus 3's HistogramChunk.Bytes() /
 * FloatHistogramChunk.Bytes() for the same samples, and the appender
 * takes Prometheus 3's decisions: when a sample needs a new chunk, with
 * which counter reset header, and when the chunk must be recoded because
 * buckets appeared.  Layout and rules: docs/format/chunk.md.
 *
 * Nothing here allocates.  An appender is one caller-allocated block of
 * ts_hist_app_size() bytes (a header and its arrays, without pointers),
 * and the chunk buffer is passed to every call, so both may live in a
 * shared memory zone.  The block's size follows the bucket layout of the
 * chunk's first sample; a recode writes a new chunk with a new appender.
 *
 * Concurrency contract, as for ts_chunk.h: one writer per chunk at a
 * time (the caller serializes start, append, recover); any number of
 * lock-free readers through ts_hist_snapshot() or
 * ts_hist_iter_init_live(), which read the published (count, length)
 * pair once and decode nothing beyond it.  ts_hist_recode() only reads
 * the old chunk: readers keep using it until the caller publishes the new
 * one and retires the old one.
 */

#ifndef TS_HCHUNK_H
#define TS_HCHUNK_H


#include <stddef.h>
#include <stdint.h>


/* chunkenc.EncHistogram / EncFloatHistogram, also prompb Chunk.Encoding */
#define TS_HIST_ENCODING         2
#define TS_FHIST_ENCODING        3

#define TS_HIST_HEADER_SIZE      3

/* the header count is a uint16 */
#define TS_HIST_MAX_SAMPLES      65535

/* bit positions are uint32 */
#define TS_HIST_MAX_CAP          ((size_t) 1 << 28)

/* Prometheus 3 cuts histogram chunks near 1 KiB, at 10 samples or more */
#define TS_HIST_TARGET_BYTES     1024
#define TS_HIST_MIN_SAMPLES      10

#define TS_HIST_STALE_SUM        0x7ff0000000000002ULL

/* the counter reset header: the two top bits of byte 2 */
#define TS_HIST_HDR_UNKNOWN      0x00
#define TS_HIST_HDR_NOT_RESET    0x40
#define TS_HIST_HDR_RESET        0x80
#define TS_HIST_HDR_GAUGE        0xc0
#define TS_HIST_HDR_MASK         0xc0

/* reset hints: the numbers of ts_reset_hint_t and the wire enums */
#define TS_HIST_HINT_UNKNOWN     0
#define TS_HIST_HINT_RESET       1
#define TS_HIST_HINT_NOT_RESET   2
#define TS_HIST_HINT_GAUGE       3

#define TS_HIST_SCHEMA_MIN       -4
#define TS_HIST_SCHEMA_MAX       8
#define TS_HIST_SCHEMA_CUSTOM    -53

/* positive results of ts_hist_append(): what the caller must do */
#define TS_HIST_CUT              1
#define TS_HIST_RECODE           2


/* same layout as ts_rw_span_t */
typedef struct {
    int32_t                offset;
    uint32_t               length;
} ts_hspan_t;


/*
 * One native histogram, the fields of ts_rw_histogram_t without the
 * timestamps, so the write path copies what it decoded (pointers, no
 * data).  Integer histograms (is_float 0) use count, zero_count and
 * the delta-encoded *_deltas; float histograms fcount, fzero_count and
 * absolute *_counts.  A sum with the bits TS_HIST_STALE_SUM is a stale
 * marker: the rest is then ignored.  custom_values only with schema -53.
 */
typedef struct {
    uint64_t               sum;        /* float64 bits */
    double                 zero_threshold;
    uint64_t               count;
    uint64_t               zero_count;
    double                 fcount;
    double                 fzero_count;
    int32_t                schema;
    uint8_t                is_float;
    uint8_t                reset_hint; /* TS_HIST_HINT_* */
    uint32_t               n_neg_spans;
    uint32_t               n_pos_spans;
    const ts_hspan_t      *neg_spans;
    const ts_hspan_t      *pos_spans;
    uint32_t               n_neg;      /* buckets */
    uint32_t               n_pos;
    const int64_t         *neg_deltas; /* integer, else unused */
    const int64_t         *pos_deltas;
    const double          *neg_counts; /* float, else unused */
    const double          *pos_counts;
    uint32_t               n_custom;
    const double          *custom_values;
} ts_hist_t;


/*
 * The appender's fixed part; its arrays follow in the same block (spans,
 * custom values, per-bucket state), addressed by offsets.  Plain data
 * only: the caller may place it anywhere, copy it or map it elsewhere.
 */
typedef struct {
    uint64_t               pub;        /* count << 32 | length in bits incl.
                                          header; stored last, release */
    int64_t                t;
    uint64_t               tdelta;
    uint64_t               sum;        /* bits */
    uint64_t               cnt;        /* integer: count; float: bits */
    uint64_t               zcnt;
    uint64_t               cnt_delta;  /* integer only */
    uint64_t               zcnt_delta;
    double                 zt;
    int32_t                schema;
    uint32_t               cap;        /* chunk buffer bytes */
    uint32_t               size;       /* this block's bytes */
    uint32_t               n_pos_spans;
    uint32_t               n_neg_spans;
    uint32_t               n_pos;
    uint32_t               n_neg;
    uint32_t               n_custom;
    uint8_t                is_float;
    uint8_t                header;     /* TS_HIST_HDR_* */
    uint8_t                win[6];     /* leading, trailing of sum, cnt,
                                          zcnt; 0xff: none yet */
} ts_hist_app_t;


typedef struct {
    const uint8_t         *data;
    size_t                 len;
    uint64_t               pos;        /* next bit */
    uint64_t               end;        /* bits that may be consumed */
    uint8_t               *mem;        /* the caller's scratch */
    size_t                 memlen;
    ts_hist_app_t          st;         /* decoder state, as an appender's */
    uint8_t               *arr;        /* its arrays, in mem */
    uint32_t               n;          /* samples in the chunk */
    uint32_t               i;          /* samples returned */
    uint32_t               stale;      /* stale samples in a row */
    uint64_t               cnt0;       /* count before them */
    uint64_t               zcnt0;
    uint8_t                is_float;
    uint8_t                header;
    int8_t                 err;        /* sticky */
} ts_hist_iter_t;


/*
 * Bytes of the appender block for a chunk whose layout is h's; 0 if h
 * is malformed (bucket counts not matching the spans, a later span with
 * a negative offset, an unknown schema, custom values without schema
 * -53) or needs more than a block can hold.
 */
size_t ts_hist_app_size(const ts_hist_t *h);

/*
 * Starts a chunk in buf[0 .. cap) with the counter reset header "header"
 * (TS_HIST_HDR_*) and appends h as its first sample; h's layout becomes
 * the chunk's.  a is a block of asize >= ts_hist_app_size(h) bytes.
 * TS_ERR_INVALID for a malformed h, a too small block, or cap out of
 * range; TS_ERR_FULL if the sample does not fit in cap.  Not safe
 * against readers of the same state: start before publishing.
 */
int ts_hist_start(ts_hist_app_t *a, size_t asize, uint8_t *buf, size_t cap,
    unsigned header, int64_t t, const ts_hist_t *h);

/*
 * Appends h at t, or says why Prometheus would not:
 *   TS_OK                appended;
 *   TS_HIST_CUT          start a new chunk with header *hdr for h (schema
 *                        or zero threshold change, counter reset, a
 *                        sample after a stale marker, counter after gauge
 *                        or back, integer after float or back);
 *   TS_HIST_RECODE       buckets appeared: ts_hist_recode() into a new
 *                        chunk, which also appends h;
 *   TS_ERR_OUT_OF_ORDER  t is not after the last timestamp;
 *   TS_ERR_FULL          h does not fit, or the chunk holds 65535 samples:
 *                        cut a new chunk, header ts_hist_cut_header();
 *   TS_ERR_INVALID       h is malformed.
 * On every result but TS_OK nothing changed.  A stale marker always
 * appends.  Missing buckets that are empty in the chunk are filled in
 * with zeros, as Prometheus 3 does.
 */
int ts_hist_append(ts_hist_app_t *a, uint8_t *buf, int64_t t,
    const ts_hist_t *h, unsigned *hdr);

/*
 * The header of the chunk Prometheus starts for h when it cuts after
 * prev for size or sample count (prev NULL: the series' first chunk).
 */
unsigned ts_hist_cut_header(const ts_hist_app_t *prev, const ts_hist_t *h);

/*
 * After TS_HIST_RECODE: writes the chunk of a / buf again with the
 * bucket layout that also holds h's buckets, then appends h, into a new
 * appender na (nasize >= ts_hist_recode_size(a, h) bytes) and buffer
 * nbuf[0 .. ncap), as Go's recode() does.  a and buf are only read;
 * mem[0 .. memlen) is scratch for decoding them, memlen >=
 * ts_hist_iter_need(buf, ts_hist_bytes(a), encoding).  TS_ERR_FULL if
 * the result does not fit in ncap (cutting a new chunk instead, header
 * TS_HIST_HDR_NOT_RESET, also gives valid data), TS_ERR_INVALID if h
 * does not call for a recode or a block is too small, TS_ERR_CORRUPT if
 * the old chunk does not decode.
 */
size_t ts_hist_recode_size(const ts_hist_app_t *a, const ts_hist_t *h);
int ts_hist_recode(const ts_hist_app_t *a, const uint8_t *buf,
    ts_hist_app_t *na, size_t nasize, uint8_t *nbuf, size_t ncap,
    int64_t t, const ts_hist_t *h, void *mem, size_t memlen);

/* published sample count and chunk length in bytes, header included */
uint32_t ts_hist_count(const ts_hist_app_t *a);
size_t ts_hist_bytes(const ts_hist_app_t *a);

/*
 * Copies a consistent chunk into dst while the writer may be appending;
 * *len is dst's size on input, the chunk's length on output.  TS_ERR_FULL
 * (nothing copied) if dst is too small.
 */
int ts_hist_snapshot(const ts_hist_app_t *a, const uint8_t *buf,
    uint8_t *dst, size_t *len);

/*
 * Rebuilds the appender state from the published samples after the
 * writer died mid-append.  a->size, a->cap, a->is_float and a->pub
 * must be intact (only start writes the first three; pub is stored
 * whole); the rest is recomputed, decoding into the block's arrays.
 * TS_ERR_CORRUPT if the published data do not decode or do not fit the
 * block.
 */
int ts_hist_recover(ts_hist_app_t *a, uint8_t *buf);

/*
 * Bytes of scratch memory an iterator needs for the chunk data[0 .. len)
 * of encoding enc (TS_HIST_ENCODING or TS_FHIST_ENCODING); at least 8.
 * Reads only the layout.
 */
size_t ts_hist_iter_need(const uint8_t *data, size_t len, unsigned enc);

/*
 * Iterates the chunk data[0 .. len); mem[0 .. memlen) holds the decoded
 * layout and buckets, 8-byte aligned.  Never reads outside data, work
 * bounded by len.  _live iterates an appender's chunk in place.
 */
void ts_hist_iter_init(ts_hist_iter_t *it, const uint8_t *data, size_t len,
    unsigned enc, void *mem, size_t memlen);
void ts_hist_iter_init_live(ts_hist_iter_t *it, const ts_hist_app_t *a,
    const uint8_t *buf, void *mem, size_t memlen);

/*
 * 1 and the next sample, 0 at the end, TS_ERR_CORRUPT on malformed
 * input, TS_ERR_FULL if mem is too small (both sticky).  *h points into
 * the iterator's memory until the next call.  Its reset_hint is
 * Prometheus's: GAUGE in a gauge chunk, NOT_RESET after the first
 * sample, else UNKNOWN.  A stale marker comes back as a histogram with
 * only sum set.  Beyond Prometheus, rejects timestamps that do not
 * increase and unknown schemas.
 */
int ts_hist_iter_next(ts_hist_iter_t *it, int64_t *t, ts_hist_t *h);


#endif /* TS_HCHUNK_H */
