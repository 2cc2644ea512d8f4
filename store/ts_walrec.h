/*
 * Copyright (C) ngx_tsdb authors
 *
 * Payload codecs of the WAL record types (docs/format/wal.md).  Encoders
 * write into a caller buffer sized by the matching _size() function.
 * Decoders are iterators over one payload: bounded by its length, they
 * never trust a count before checking it against the bytes left, return
 * TS_ERR_CORRUPT on any inconsistency (a truncated payload, trailing
 * bytes, an overlong varint) and point label strings into the payload
 * instead of copying them.
 */

#ifndef TS_WALREC_H
#define TS_WALREC_H


#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ts_error.h"
#include "ts_hchunk.h"


/* Record types (the WAL record header's type byte); 0 is never used. */
#define TS_WALREC_SERIES             1
#define TS_WALREC_SAMPLES            2
#define TS_WALREC_HISTOGRAM_SAMPLES  3
#define TS_WALREC_TOMBSTONES         4   /* reserved */
#define TS_WALREC_EXEMPLARS          6   /* codec in store/ts_exemplar.c */

/*
 * SAMPLES payload layouts.  Layout 1 (the first version) starts with the
 * sample count; layout 2 starts with the byte 0 and then this number, a
 * prefix no valid layout-1 payload has.  Encoders write layout 2;
 * decoders read both.
 */
#define TS_WALREC_SAMPLES_LAYOUT     2

/* Prometheus's staleness marker: a NaN with this exact bit pattern. */
#define TS_WALREC_STALE_NAN          0x7ff0000000000002ULL


typedef struct {
    const uint8_t          *data;
    size_t                  len;
} ts_walrec_str_t;


typedef struct {
    ts_walrec_str_t         name;
    ts_walrec_str_t         value;
} ts_walrec_label_t;


typedef struct {
    uint64_t                ref;
    size_t                  nlabels;
    const ts_walrec_label_t  *labels;
} ts_walrec_series_t;


typedef struct {
    uint64_t                ref;
    int64_t                 t;          /* milliseconds since the epoch */
    uint64_t                v;          /* IEEE 754 bits of the value */
} ts_walrec_sample_t;


/* A native histogram sample; h's arrays belong to the caller. */
typedef struct {
    uint64_t                ref;
    int64_t                 t;
    ts_hist_t               h;
} ts_walrec_hist_t;

/* HISTOGRAM_SAMPLES payload layout, its first byte */
#define TS_WALREC_HISTS_LAYOUT       1


/* Decoder state; treat as opaque. */
typedef struct {
    const uint8_t          *pos;
    const uint8_t          *end;
    uint64_t                left;
    uint64_t                ref;
    uint64_t                t;
    uint64_t                v;
    uint64_t                dref;
    int                     started;
    int                     layout;
} ts_walrec_reader_t;


/*
 * SERIES: a list of {ref, labels}.  _size() is the exact encoded size;
 * _encode() returns TS_ERR_FULL if size is smaller and sets *len.
 */
size_t ts_walrec_series_size(const ts_walrec_series_t *s, size_t n);
int ts_walrec_series_encode(uint8_t *buf, size_t size,
    const ts_walrec_series_t *s, size_t n, size_t *len);

/*
 * Starts decoding; *count (may be NULL) gets the number of entries.
 * _next() fills *s, with s->labels pointing to the caller's labels[]
 * (TS_ERR_LIMIT if the series has more than max labels), and returns
 * TS_OK, or TS_ERR_NOTFOUND after the last entry.
 */
int ts_walrec_series_open(ts_walrec_reader_t *rd, const void *payload,
    size_t len, uint64_t *count);
int ts_walrec_series_next(ts_walrec_reader_t *rd, ts_walrec_series_t *s,
    ts_walrec_label_t *labels, size_t max);

/*
 * SAMPLES: a list of {ref, t, v}, delta-encoded in list order, values
 * packed (layout 2).  _size() is the exact encoded size; _encode()
 * returns TS_ERR_FULL if size is smaller and then sets *len to it.
 * _open() reads layout 1 and layout 2 payloads alike.
 */
size_t ts_walrec_samples_size(const ts_walrec_sample_t *s, size_t n);
/* no encoding of n samples is longer: a size to reserve without a pass */
size_t ts_walrec_samples_bound(size_t n);
int ts_walrec_samples_encode(uint8_t *buf, size_t size,
    const ts_walrec_sample_t *s, size_t n, size_t *len);

int ts_walrec_samples_open(ts_walrec_reader_t *rd, const void *payload,
    size_t len, uint64_t *count);
int ts_walrec_samples_next(ts_walrec_reader_t *rd, ts_walrec_sample_t *s);

/* Decodes a whole SAMPLES payload; TS_ERR_LIMIT if more than max. */
int ts_walrec_samples_decode(const void *payload, size_t len,
    ts_walrec_sample_t *out, size_t max, size_t *n);

/*
 * HISTOGRAM_SAMPLES: a list of {ref, t, histogram}, each entry on its
 * own.  _size() is the exact encoded size; _encode() returns TS_ERR_FULL
 * if size is smaller and then sets *len to it.  _next() decodes the
 * next entry with the histogram's spans and buckets in mem[0 ..
 * memlen) (8-byte aligned); TS_ERR_LIMIT if they do not fit, with the
 * reader unchanged, so the caller may retry with more: 8 bytes per
 * payload byte always suffice.  TS_ERR_NOTFOUND after the last entry.
 */
size_t ts_walrec_hists_size(const ts_walrec_hist_t *s, size_t n);
int ts_walrec_hists_encode(uint8_t *buf, size_t size,
    const ts_walrec_hist_t *s, size_t n, size_t *len);
int ts_walrec_hists_open(ts_walrec_reader_t *rd, const void *payload,
    size_t len, uint64_t *count);
int ts_walrec_hists_next(ts_walrec_reader_t *rd, ts_walrec_hist_t *s,
    void *mem, size_t memlen);

const char *ts_walrec_type_name(unsigned type);


static inline uint64_t
ts_walrec_f2u(double f)
{
    uint64_t  u;

    memcpy(&u, &f, sizeof(u));

    return u;
}


static inline double
ts_walrec_u2f(uint64_t u)
{
    double  f;

    memcpy(&f, &u, sizeof(f));

    return f;
}


#endif /* TS_WALREC_H */
