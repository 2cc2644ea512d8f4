/*
 * Copyright (C) ngx_tsdb authors
 *
 * Prometheus remote read (POST /api/v1/read): decodes a snappy-
 * compressed prometheus.ReadRequest, negotiates the response type as
 * Prometheus does, selects each query's series from one or more sources
 * (ts_select.h) bound to the caller's tenant, and produces the response:
 *
 *   SAMPLES              one snappy-compressed prometheus.ReadResponse,
 *                        one QueryResult per query, in query order;
 *   STREAMED_XOR_CHUNKS  frames of uvarint(len) | CRC-32C(data) big-
 *                        endian | data, data a ChunkedReadResponse with
 *                        one series and its chunks as stored: XOR for
 *                        floats, HISTOGRAM / FLOAT_HISTOGRAM for native
 *                        histograms.
 *
 * Native histograms: SAMPLES puts them in TimeSeries.histograms as
 * Prometheus's HistogramToHistogramProto does (count_int / count_float,
 * zero count, spans, deltas or counts, reset_hint, timestamp); a series
 * that switched between floats and histograms has both lists.
 *
 * Use: ts_rread_open() (errors of the request itself: body, response
 * types, matchers), then ts_rread_next() until it returns 0; each call
 * yields one piece of output: the whole body for SAMPLES, one frame for
 * STREAMED.  Limits met while reading (series, samples, regex match
 * limits) come from ts_rread_next(); the first call does the first
 * query's selection, so its errors still precede any output.  Memory per
 * request: one query's selected series (refs and copied labels, at most
 * max_series), one chunk batch per source, and one frame (STREAMED) or
 * the whole response (SAMPLES, as Prometheus buffers it).  Nothing here
 * logs or knows HTTP; ts_rread_error_t says whether the client is at
 * fault.
 *
 * Decisions (sources in ts_rread.c): series of a query come sorted by
 * labels (Prometheus order) and a series present in several sources is
 * merged, duplicate timestamps keeping the first source's sample;
 * streamed chunks are sent untouched unless they overlap another
 * source's chunks (then re-encoded, deduplicated) or trim_chunks asks
 * for Prometheus's trimming to the query range; the time range is the
 * query's [start, end] narrowed by hints.start_ms/end_ms when set.
 */

#ifndef TS_RREAD_H
#define TS_RREAD_H


#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "ts_select.h"


/* response headers; STREAMED has no Content-Encoding */
#define TS_RREAD_CT_SAMPLES     "application/x-protobuf"
#define TS_RREAD_CE_SAMPLES     "snappy"
#define TS_RREAD_CT_STREAMED                                              \
    "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"

#define TS_RREAD_MSG_SIZE       256


/* same numbers as prometheus.ReadRequest.ResponseType */
typedef enum {
    TS_RREAD_SAMPLES = 0,
    TS_RREAD_STREAMED_XOR_CHUNKS = 1
} ts_rread_type_t;


typedef struct {
    size_t                  max_body_size;      /* decompressed request,
                                                   32 MiB (Prometheus's
                                                   decodeReadLimit) */
    size_t                  max_decode_memory;  /* protobuf-c allocations,
                                                   64 MiB */
    uint32_t                max_queries;        /* per request, 256 */
    uint32_t                max_series;         /* per query, 100000;
                                                   0: none */
    uint64_t                max_samples;        /* per query, SAMPLES only,
                                                   50000000 (Prometheus's
                                                   read-sample-limit);
                                                   0: none */
    size_t                  max_bytes_in_frame; /* 1 MiB (Prometheus's
                                                   read-max-bytes-in-
                                                   frame) */
    int                     trim_chunks;        /* 0: chunks crossing the
                                                   range go untouched */
    ts_select_limits_t      select;             /* matchers and regexes */
} ts_rread_conf_t;


typedef struct {
    int                     err;        /* a ts_err_t, TS_OK if none */
    int                     client;     /* 1: the request's fault (HTTP
                                           400), 0: ours (HTTP 500) */
    char                    msg[TS_RREAD_MSG_SIZE];  /* one line */
} ts_rread_error_t;


typedef struct {
    uint64_t                queries;
    uint64_t                series;     /* sent */
    uint64_t                samples;    /* SAMPLES, histograms included */
    uint64_t                histograms; /* SAMPLES, of those */
    uint64_t                chunks;     /* STREAMED, sent */
    uint64_t                reencoded;  /* of those, re-encoded */
    uint64_t                frames;
    uint64_t                bytes;      /* output */
} ts_rread_stats_t;


typedef struct ts_rread_s  ts_rread_t;


void ts_rread_conf_default(ts_rread_conf_t *conf);

/*
 * Decodes body[0 .. len) (one contiguous snappy block), negotiates the
 * response type and compiles every query's matchers.  The declared
 * decompressed length is checked against max_body_size before anything
 * is allocated for it.  alloc (NULL: malloc) serves the decompressed
 * body and protobuf-c's unpacking, which are freed (alloc->free) before
 * returning; the result keeps its own malloc'd state.  sources (nsrc of
 * them, all bound to the same tenant; earlier ones win on duplicate
 * timestamps) must outlive the result.  On error e says why and
 * whether the client is at fault; TS_ERR_INVALID / TS_ERR_LIMIT /
 * TS_ERR_UNSUPPORTED for a bad request, TS_ERR_NOMEM otherwise.
 */
int ts_rread_open(ts_rread_t **rr, const void *body, size_t len,
    ts_source_t *const *sources, uint32_t nsrc, const ts_rread_conf_t *conf,
    ProtobufCAllocator *alloc, ts_rread_error_t *e);

ts_rread_type_t ts_rread_type(const ts_rread_t *rr);
const char *ts_rread_content_type(const ts_rread_t *rr);
const char *ts_rread_content_encoding(const ts_rread_t *rr); /* or NULL */

/*
 * The next piece of output: 1 with *p and *len (valid until the next
 * call or ts_rread_free()), 0 when the response is complete, or a
 * negative ts_err_t with e filled (client: a limit such as max_series
 * or max_samples was exceeded or a regex hit its match limit; else a
 * storage error).  After an error every call returns it again.  For
 * SAMPLES the first call yields the whole body; for STREAMED one frame
 * per call, and an error after frames went out can only abort the
 * response.  Calls the sources' begin and end around its work.
 */
int ts_rread_next(ts_rread_t *rr, const uint8_t **p, size_t *len,
    ts_rread_error_t *e);

void ts_rread_stats(const ts_rread_t *rr, ts_rread_stats_t *st);
void ts_rread_free(ts_rread_t *rr);


#endif /* TS_RREAD_H */
