/*
 * Copyright (C) ngx_tsdb authors
 *
 * Remote-write requests: content negotiation, bounded snappy
 * decompression, decoding of 1.0 (prometheus.WriteRequest) and 2.0
 * (io.prometheus.write.v2.Request) bodies into one representation, and
 * per-series validation.  Independent of storage: the result says what
 * the request holds and which series are acceptable, and why not.
 *
 * Memory.  Everything (the decompressed body, protobuf-c's unpacked
 * message, our arrays) comes from a ProtobufCAllocator the caller passes,
 * so the nginx glue can bind it to the request pool: with free NULL,
 * nothing is freed piecemeal and ts_rw_request_free() costs nothing
 * (protobuf-c itself needs a free function; it only ever sees ours).
 * A NULL allocator means malloc/free.  Decoding counts every byte it
 * asks for and fails with TS_ERR_LIMIT past max_decode_memory, which
 * bounds protobuf-c's allocation amplification (an empty Label costs 2
 * wire bytes and ~50 bytes unpacked; real requests take ~6x their
 * decompressed size).
 *
 * Lifetime.  Decoded strings point into the unpacked message (labels,
 * v2 symbols, help, unit) or, on the v1 fast path (labels and float
 * samples only, see ts_rw.c), into the decompressed body itself; so
 * the body must outlive the ts_rw_request_t, which stays valid until
 * ts_rw_request_free() or the pool's end.
 *
 * Values are kept as IEEE-754 bits (uint64_t): the stale marker NaN
 * 0x7ff0000000000002 and every other NaN payload survive bit for bit.
 */

#ifndef TS_RW_H
#define TS_RW_H


#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "ts_head.h"
#include "ts_labels.h"


#define TS_RW_STALE_NAN        0x7ff0000000000002ULL

#define TS_RW_CT_V1            "application/x-protobuf"
#define TS_RW_PROTO_V1         "prometheus.WriteRequest"
#define TS_RW_PROTO_V2         "io.prometheus.write.v2.Request"

/* Prometheus's exponential schemas and the custom-buckets schema */
#define TS_RW_SCHEMA_MIN       -4
#define TS_RW_SCHEMA_MAX       8
#define TS_RW_SCHEMA_CUSTOM    -53


typedef enum {
    TS_RW_UNSUPPORTED = 0,
    TS_RW_V1 = 1,
    TS_RW_V2 = 2
} ts_rw_version_t;


/* same numbers in v1 MetricMetadata.type and v2 Metadata.type */
typedef enum {
    TS_METRIC_UNKNOWN = 0,
    TS_METRIC_COUNTER,
    TS_METRIC_GAUGE,
    TS_METRIC_HISTOGRAM,
    TS_METRIC_GAUGEHISTOGRAM,
    TS_METRIC_SUMMARY,
    TS_METRIC_INFO,
    TS_METRIC_STATESET
} ts_metric_type_t;


/* same numbers in v1 and v2 Histogram.reset_hint */
typedef enum {
    TS_RESET_UNKNOWN = 0,
    TS_RESET_YES,
    TS_RESET_NO,
    TS_RESET_GAUGE
} ts_reset_hint_t;


/* t in ms since epoch, v the float64 bits: what ts_head_append_n() takes */
typedef ts_head_sample_t ts_rw_sample_t;


typedef struct {
    int32_t                    offset;
    uint32_t                   length;
} ts_rw_span_t;


/*
 * A native histogram, checked like Prometheus's Histogram.Validate() /
 * FloatHistogram.Validate().  Integer histograms (is_float 0) use count,
 * zero_count and the delta-encoded *_deltas exactly as on the wire;
 * float histograms use fcount, fzero_count and absolute *_counts.
 * Bucket arrays point into the unpacked message (zero-copy).
 */
typedef struct {
    const void                *pb;         /* Prometheus__Histogram or
                                              Io__Prometheus__Write__V2__
                                              Histogram, per version */
    int64_t                    t;
    int64_t                    start_t;    /* 0: unset */
    uint64_t                   sum;        /* float64 bits */
    double                     zero_threshold;
    uint64_t                   count;
    uint64_t                   zero_count;
    double                     fcount;
    double                     fzero_count;
    int32_t                    schema;
    uint8_t                    is_float;
    uint8_t                    reset_hint; /* ts_reset_hint_t */
    uint32_t                   n_neg_spans;
    uint32_t                   n_pos_spans;
    const ts_rw_span_t        *neg_spans;
    const ts_rw_span_t        *pos_spans;
    uint32_t                   n_neg;      /* buckets */
    uint32_t                   n_pos;
    const int64_t             *neg_deltas; /* integer, else NULL */
    const int64_t             *pos_deltas;
    const double              *neg_counts; /* float, else NULL */
    const double              *pos_counts;
    uint32_t                   n_custom;
    const double              *custom_values;  /* schema -53 */
} ts_rw_histogram_t;


typedef struct {
    const ts_label_t          *labels;     /* as sent, not sorted */
    uint32_t                   nlabels;
    int64_t                    t;
    uint64_t                   v;          /* float64 bits */
} ts_rw_exemplar_t;


typedef struct {
    const char                *name;       /* v1 family name; v2 "" */
    uint32_t                   name_len;
    uint32_t                   type;       /* ts_metric_type_t */
    const char                *help;       /* cut to max_metadata_length
                                              on a code point */
    uint32_t                   help_len;
    const char                *unit;
    uint32_t                   unit_len;
} ts_rw_metadata_t;


/*
 * One series.  When reject is TS_REJECT_NONE the series is acceptable:
 * labels sorted, valid, without empty values, hash set; histograms
 * valid; exemplars only the valid ones.  Otherwise nothing of it should
 * be stored; the arrays may be partly filled.
 */
typedef struct {
    ts_label_t                *labels;
    uint32_t                   nlabels;
    uint32_t                   nsamples;
    uint32_t                   nhistograms;
    uint32_t                   nexemplars;
    const ts_rw_sample_t      *samples;    /* in the order sent */
    const int64_t             *start_ts;   /* per sample, NULL: none;
                                              v2 Sample.start_timestamp,
                                              else created_timestamp */
    const ts_rw_histogram_t   *histograms;
    const ts_rw_exemplar_t    *exemplars;
    const ts_rw_metadata_t    *meta;       /* v2 only; NULL: none */
    int64_t                    created_t;  /* v2 rc.1-3 TimeSeries
                                              .created_timestamp; 0 */
    uint64_t                   hash;       /* ts_labels_hash() */
    uint32_t                   ref;        /* set by req->known: the
                                              store's series with these
                                              labels, 0 if none */
    ts_reject_code_t           reject;
} ts_rw_series_t;


/*
 * An optional lookup of the series a store already holds, called by
 * the v1 fast path before any series is validated, with every series
 * of the request at once (so that it can prefetch): labels exactly as
 * sent, hash their ts_labels_hash().  It sets s->ref (non-zero) for a
 * series whose labels are, byte for byte and in the same order, those
 * of a stored series.  Stored labels passed validation when they were
 * stored, so such a series skips the character checks, the sort and
 * the NUL check; the limits (label count, name and value lengths,
 * samples per series) are still checked, and a series that fails one
 * is validated in full, as if it were new, and loses its ref.
 */
typedef void (*ts_rw_known_pt)(void *data, ts_rw_series_t *s, size_t n);


typedef struct {
    uint64_t                   series;
    uint64_t                   samples;    /* float samples */
    uint64_t                   histograms;
    uint64_t                   exemplars;
    uint64_t                   metadata;
} ts_rw_counts_t;


typedef struct {
    ts_rw_version_t            version;
    ts_rw_series_t            *series;
    uint32_t                   nseries;

    /* v1 WriteRequest.metadata that passed, sorted by name */
    ts_rw_metadata_t          *metadata;
    uint32_t                   nmetadata;

    /*
     * decoded: what the request holds; rejected: the part of it that is
     * not acceptable (everything of a rejected series, plus dropped
     * exemplars and metadata).  Written = decoded - rejected - what
     * storage then refuses.
     */
    ts_rw_counts_t             decoded;
    ts_rw_counts_t             rejected;

    ts_reject_t                why;        /* first rejected series, or
                                              why the request failed */
    ts_reject_t                why_other;  /* first dropped exemplar or
                                              metadata entry */

    /* set after ts_rw_request_init(), optional, see ts_rw_known_pt */
    ts_rw_known_pt             known;
    void                      *known_data;

    /* private */
    const ts_limits_t         *lim;
    ProtobufCAllocator         alloc;      /* counting, over parent */
    ProtobufCAllocator         parent;
    size_t                     used;
    unsigned                   over:1;
    unsigned                   nomem:1;
    void                      *pb;
    void                      *mem[12];    /* our arrays, at most 10 */
    unsigned                   nmem;
} ts_rw_request_t;


/*
 * Content-Type -> version.  Absent (NULL or blank) is V1, as Prometheus
 * does; the media type must be application/x-protobuf (any case, OWS
 * around ';' allowed); a "proto" parameter (name in any case, token or
 * quoted value, exact match) selects prometheus.WriteRequest (V1) or
 * io.prometheus.write.v2.Request (V2); none is V1; another proto value,
 * another media type or a malformed parameter is TS_RW_UNSUPPORTED
 * (answer 415).  The first proto parameter counts.
 */
ts_rw_version_t ts_rw_content_type(const char *s, size_t len);

/*
 * Content-Encoding: TS_OK for snappy (any case, surrounding OWS) or an
 * absent/blank header (Prometheus assumes snappy), else
 * TS_ERR_UNSUPPORTED (answer 415).
 */
int ts_rw_content_encoding(const char *s, size_t len);

/*
 * Snappy block -> *out (allocated from a, or malloc if a is NULL).
 * Reads the declared length first and fails with TS_ERR_LIMIT if it is
 * above limit, before allocating anything.  A malformed stream (bad
 * header, bad copy offset, length not as declared) is TS_ERR_CORRUPT;
 * TS_ERR_NOMEM if a fails.  why (may be NULL) gets a one-line reason.
 */
int ts_rw_uncompress(const uint8_t *in, size_t len, size_t limit,
    ProtobufCAllocator *a, uint8_t **out, size_t *out_len,
    ts_reject_t *why);

/* a NULL: malloc/free; lim must outlive req */
void ts_rw_request_init(ts_rw_request_t *req, ProtobufCAllocator *a,
    const ts_limits_t *lim);

/*
 * Decodes and validates buf[0 .. len) (decompressed) as version v.
 * Returns TS_OK when the message decoded, even if series were rejected
 * (req->rejected.series > 0: answer 400 after storing the rest).
 * Whole-request failures, with req->why set:
 *   TS_ERR_LIMIT    len > max_body_size, more than max_series series, or
 *                   max_decode_memory exhausted (answer 413);
 *   TS_ERR_CORRUPT  not a valid protobuf message (400);
 *   TS_ERR_INVALID  v2 symbols table malformed: symbols[0] not "" (400);
 *   TS_ERR_UNSUPPORTED  v is not V1 or V2;
 *   TS_ERR_NOMEM    the caller's allocator failed (500).
 * Call once per ts_rw_request_init().
 */
int ts_rw_decode(ts_rw_request_t *req, ts_rw_version_t v,
    const uint8_t *buf, size_t len);

/* v1 metadata for a metric family name, NULL if none */
const ts_rw_metadata_t *ts_rw_metadata_find(const ts_rw_request_t *req,
    const char *name, size_t len);

/* frees through the allocator; req may then be initialized again */
void ts_rw_request_free(ts_rw_request_t *req);


#endif /* TS_RW_H */
