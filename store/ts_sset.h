/*
 * Copyright (C) ngx_tsdb authors
 *
 * Series sets: the series a selector picks from one or more sources
 * (ts_select.h), merged into one sorted stream, for remote read and the
 * PromQL engine.
 *
 * A set is created once for a list of sources and reused: each
 * ts_sset_select() collects the series of a selector from every source,
 * copies their labels, sorts them by (labels, source), and reads equal
 * label sets as one series.  ts_sset_next() moves to the next series in
 * Prometheus's label order.  Its data come merged over its sources, in
 * time order, a duplicate timestamp keeping the earlier source's
 * sample, through one of four calls (a series is read with one of them,
 * not several):
 *
 *   ts_sset_sample()     float samples only (XOR chunks); histogram
 *                        chunks are passed over;
 *   ts_sset_histogram()  native histograms only (histogram and float
 *                        histogram chunks), decoded; float chunks are
 *                        passed over;
 *   ts_sset_value()      every sample, a float or a histogram, as
 *                        Prometheus's chunkenc.Iterator gives them
 *                        (ValFloat, ValHistogram, ValFloatHistogram):
 *                        what an evaluator that handles histograms
 *                        reads;
 *   ts_sset_chunk()      chunks of every encoding.
 *
 * A series may switch between floats and histograms: the chunks then
 * alternate and time orders them; a timestamp present in two sources
 * with different kinds keeps the earlier source's sample.
 *
 * Histograms come as ts_hist_t (ts_hchunk.h): is_float 0 is an integer
 * histogram (count, zero_count, delta-encoded buckets), 1 a float
 * histogram (fcount, fzero_count, absolute counts).  A stale marker has
 * the sum bits TS_HIST_STALE_SUM.  reset_hint is the chunk's, as
 * Prometheus's iterators give it.  The arrays belong to the set and
 * stay valid until the next call on it.
 *
 * Chunks: a chunk that overlaps neither the last sample given nor
 * another source's next chunk goes as stored; otherwise samples are
 * merged and re-encoded, in their own encoding, until every source is
 * back at a chunk boundary (a head chunk that grew between two batches
 * and shows up again is merged the same way): XOR chunks of at most 120
 * samples, histogram chunks cut where Prometheus's head cuts them
 * (ts_hchunk.h: counter reset, layout change, size), a bucket layout
 * change that Prometheus would recode starting a new chunk.  Chunks of
 * unknown encodings are left out.
 *
 * Sources: every call but ts_sset_create() and ts_sset_free() must run
 * between ts_sources_begin() and ts_sources_end() of the set's sources
 * (an LMDB source's strings and chunks live in its read transaction);
 * labels handed out are copies and stay valid until the next select,
 * reset or free.  Memory: the selected series' entries and labels, one
 * chunk batch per source of the current series, its decoded histogram
 * buckets and, when histograms are re-encoded, one chunk of at most
 * 256 KiB.
 */

#ifndef TS_SSET_H
#define TS_SSET_H


#include <stddef.h>
#include <stdint.h>

#include "ts_hchunk.h"
#include "ts_select.h"


#define TS_SSET_MSG_SIZE  256


typedef struct {
    uint32_t                max_series;     /* distinct, 0: none */
    int                     trim_chunks;    /* re-encode chunks crossing
                                               [mint, maxt] */
} ts_sset_conf_t;


typedef struct {
    int64_t                 mint;
    int64_t                 maxt;
    uint32_t                encoding;       /* TS_XOR_ENCODING,
                                               TS_HIST_ENCODING or
                                               TS_FHIST_ENCODING */
    const uint8_t          *data;           /* header included; valid
                                               until the next call */
    size_t                  len;
} ts_sset_chunk_t;


/* one sample of ts_sset_value() */
typedef struct {
    int64_t                 t;
    uint32_t                enc;            /* TS_XOR_ENCODING: v;
                                               TS_HIST_ENCODING,
                                               TS_FHIST_ENCODING: h */
    uint64_t                v;              /* float64 bits */
    ts_hist_t               h;              /* arrays valid until the
                                               next call */
} ts_sset_value_t;


/* a growable byte buffer (also remote read's output) */
typedef struct {
    uint8_t                *p;
    size_t                  len;
    size_t                  cap;
} ts_buf_t;


typedef struct ts_sset_s  ts_sset_t;


/* sources must outlive the set; conf NULL: no limits */
int ts_sset_create(ts_sset_t **ss, ts_source_t *const *src, uint32_t nsrc,
    const ts_sset_conf_t *conf);
void ts_sset_free(ts_sset_t *ss);

/*
 * Selects the series of sel with a sample in [mint, maxt] (as far as
 * postings tell: a series may still turn out empty).  TS_OK; or an
 * error with msg filled: TS_ERR_LIMIT for max_series ("exceeded series
 * limit (N)") or a regex match limit ("regex match limit exceeded"),
 * else a storage error or TS_ERR_NOMEM.
 */
int ts_sset_select(ts_sset_t *ss, ts_selector_t *sel, int64_t mint,
    int64_t maxt, char *msg, size_t msglen);

/* distinct series of the last select */
uint32_t ts_sset_count(const ts_sset_t *ss);

/* 1 and the next series' labels, 0 after the last, or TS_ERR_NOMEM */
int ts_sset_next(ts_sset_t *ss, const ts_label_t **l, uint32_t *n);

/*
 * The current series' next sample in [mint, maxt]: 1, 0 at its end, or
 * an error (TS_ERR_CORRUPT for a chunk that does not decode).  _sample:
 * floats (value bits); _histogram: native histograms; _value: both.
 */
int ts_sset_sample(ts_sset_t *ss, int64_t *t, uint64_t *v);
int ts_sset_histogram(ts_sset_t *ss, int64_t *t, ts_hist_t *h);
int ts_sset_value(ts_sset_t *ss, ts_sset_value_t *val);

/* the current series' next chunk: 1, 0 at its end, or an error */
int ts_sset_chunk(ts_sset_t *ss, ts_sset_chunk_t *ch);

/* chunks re-encoded since the set was created */
uint64_t ts_sset_reencoded(const ts_sset_t *ss);

/* forgets the selected series (the next select does it too) */
void ts_sset_reset(ts_sset_t *ss);

/*
 * begin of every source, in order; on failure the ones begun are ended
 * and the error returned.
 */
int ts_sources_begin(ts_source_t *const *src, uint32_t n);
void ts_sources_end(ts_source_t *const *src, uint32_t n);

/* makes room for more bytes after len: TS_OK or TS_ERR_NOMEM */
int ts_buf_reserve(ts_buf_t *b, size_t more);

/*
 * ts_sset_value() without the copy: *val is the set's, valid until the
 * next call on it (the PromQL evaluator's read)
 */
int ts_sset_value_ref(ts_sset_t *ss, const ts_sset_value_t **val);


#endif /* TS_SSET_H */
