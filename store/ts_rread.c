/*
 * Copyright (C) ngx_tsdb authors
 *
 * Remote read.  Behaviour follows Prometheus's storage/remote
 * (read_handler.go, codec.go, chunked.go):
 *
 *   - Negotiation (NegotiateResponseType): the first type of
 *     accepted_response_types we implement; an empty list is SAMPLES;
 *     none implemented is a client error.
 *   - Errors: undecodable bodies and unsupported types are 400 in
 *     Prometheus, the sample limit is its HTTPError 400 ("exceeded sample
 *     limit (N)"), storage failures 500.  Prometheus answers 500 for a
 *     matcher that does not compile (FromLabelMatchers' error is not an
 *     HTTPError); here that is a client error (400), as everything the
 *     request alone decides.  The series limit (ours) is 400 too.
 *   - SAMPLES: per query, the series sorted by labels, samples in
 *     [start, end]; the sample limit counts per query, as ToQueryResult
 *     does, histograms included.  Series without a sample in range are
 *     left out.  Native histograms go to TimeSeries.histograms as
 *     HistogramToHistogramProto / FloatHistogramToHistogramProto fill
 *     them; fields are written in time order, Sample and Histogram
 *     fields interleaved when a series switched kinds (decoders append
 *     each repeated field to its own list).
 *   - STREAMED_XOR_CHUNKS (StreamChunkedReadResponses): one series per
 *     frame, a series split over frames when the chunk bytes pass
 *     max_bytes_in_frame minus the labels' size (measured as Prometheus
 *     does: Label and Chunk message sizes, at least one chunk a frame);
 *     chunks as stored, type XOR, HISTOGRAM or FLOAT_HISTOGRAM (the chunk
 *     encoding), min/max time the first/last sample.
 *     Prometheus re-encodes chunks crossing the range to drop samples
 *     outside it; here they go untouched unless trim_chunks is set, as
 *     clients filter by time (Prometheus's chunkedSeriesIterator does).
 *   - Hints: start_ms/end_ms narrow [start, end] when either is set
 *     (Prometheus's queriers read data within hints.Start/End).  step,
 *     func, grouping, by and range are not used: they only let a
 *     querier return less, and sending everything is always correct.
 *     External labels are not merged in (ngx_tsdb has none).
 *
 * Several sources: a query's series come from a series set (ts_sset.h),
 * which sorts them by labels, reads equal label sets as one series and
 * merges their samples and chunks (equal timestamps: the earlier source
 * wins); chunks that overlap nothing go as stored.
 *
 * Memory: the request is decoded and freed in ts_rread_open(); after
 * that, one query's entries and labels, one chunk batch per source of
 * the current series (ts_sset.h), one frame (or, for SAMPLES,
 * the whole response, as Prometheus buffers it).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "prometheus_remote.pb-c.h"
#include "ts_chunk.h"
#include "ts_crc32c.h"
#include "ts_hchunk.h"
#include "ts_rread.h"
#include "ts_sset.h"


/* the largest block Go's snappy decoder accepts */
#define TS_RR_MAX_RESPONSE   0xffffffffu

#define TS_PB_LEN1           0x0a       /* field 1, length-delimited */
#define TS_PB_LEN2           0x12
#define TS_PB_LEN4           0x22
#define TS_PB_VAR1           0x08       /* field 1, varint */
#define TS_PB_VAR2           0x10
#define TS_PB_VAR3           0x18
#define TS_PB_F64_1          0x09       /* field 1, fixed64 */


typedef struct {
    ProtobufCAllocator      a;
    ProtobufCAllocator     *inner;
    size_t                  used;
    size_t                  max;
    int                     refused;
} ts_rr_alloc_t;


typedef struct {
    ts_selector_t          *sel;
    int64_t                 mint;
    int64_t                 maxt;
} ts_rr_query_t;


typedef struct {
    int64_t                 mint;
    int64_t                 maxt;
    size_t                  off;
    size_t                  len;
    uint32_t                enc;
} ts_rr_cmeta_t;


struct ts_rread_s {
    ts_rread_conf_t         conf;
    ts_rread_type_t         type;
    ts_source_t           **src;
    uint32_t                nsrc;
    ts_rr_query_t          *q;
    uint32_t                nq;

    uint32_t                qi;         /* current query */
    int                     loaded;
    int                     done;
    int                     err;        /* sticky, with e */
    ts_rread_error_t        e;

    ts_sset_t              *ss;         /* current query's series */
    const ts_label_t       *labels;     /* current series */
    uint32_t                nlabels;
    int                     in_series;
    int                     sent;       /* frames of it went out */
    uint64_t                qsamples;

    ts_buf_t                out;        /* what next hands out */
    ts_buf_t                stage;      /* chunk bytes of a frame */
    ts_rr_cmeta_t          *staged;
    uint32_t                nstaged;
    uint32_t                stcap;
    ts_buf_t                rbuf;       /* SAMPLES, uncompressed */

    ts_rread_stats_t        st;
};


static int ts_rr_fail(ts_rread_error_t *e, int err, int client,
    const char *fmt, ...);
static void *ts_rr_pb_alloc(void *data, size_t size);
static void ts_rr_pb_free(void *data, void *p);
static int ts_rr_decode(const void *body, size_t len,
    const ts_rread_conf_t *conf, ProtobufCAllocator *alloc,
    Prometheus__ReadRequest **req, ts_rr_alloc_t *ca, ts_rread_error_t *e);
static int ts_rr_negotiate(const Prometheus__ReadRequest *req,
    ts_rread_type_t *type, ts_rread_error_t *e);
static int ts_rr_queries(ts_rread_t *rr, const Prometheus__ReadRequest *req,
    ts_rread_error_t *e);
static int ts_rr_query(ts_rread_t *rr, uint32_t i, const Prometheus__Query *pq,
    ts_rread_error_t *e);

static int ts_rr_begin(ts_rread_t *rr);
static int ts_rr_streamed(ts_rread_t *rr);
static int ts_rr_samples(ts_rread_t *rr);
static int ts_rr_load(ts_rread_t *rr);
static int ts_rr_series(ts_rread_t *rr);


static int ts_rr_frame(ts_rread_t *rr);
static int ts_rr_stage(ts_rread_t *rr, const ts_sset_chunk_t *ch);
static int ts_rr_frame_encode(ts_rread_t *rr);
static int ts_rr_series_samples(ts_rread_t *rr);
static int ts_rr_sample(ts_buf_t *b, int64_t t, uint64_t v);
static int ts_rr_histogram(ts_buf_t *b, int64_t t, const ts_hist_t *h);
static uint8_t *ts_pb_spans(uint8_t *p, uint8_t tag, const ts_hspan_t *sp,
    uint32_t n);
static uint8_t *ts_pb_packed_f64(uint8_t *p, uint8_t tag, const double *v,
    uint32_t n);
static int ts_rr_compress(ts_rread_t *rr);

static int ts_buf_open(ts_buf_t *b, uint8_t tag, size_t *start);
static void ts_buf_close(ts_buf_t *b, size_t start);
static size_t ts_pb_vsize(uint64_t v);
static uint64_t ts_rr_f64(double d);
static uint8_t *ts_pb_varint(uint8_t *p, uint64_t v);
static uint8_t *ts_pb_fixed64(uint8_t *p, uint64_t v);
static size_t ts_pb_label_size(const ts_label_t *l);
static size_t ts_pb_labels_size(const ts_label_t *l, uint32_t n);
static uint8_t *ts_pb_labels(uint8_t *p, const ts_label_t *l, uint32_t n);
static size_t ts_pb_chunk_size(const ts_rr_cmeta_t *c);


void
ts_rread_conf_default(ts_rread_conf_t *conf)
{
    conf->max_body_size = 32 * 1024 * 1024;
    conf->max_decode_memory = 64 * 1024 * 1024;
    conf->max_queries = 256;
    conf->max_series = 100000;
    conf->max_samples = 50000000;
    conf->max_bytes_in_frame = 1024 * 1024;
    conf->trim_chunks = 0;
    ts_select_limits_default(&conf->select);
}


int
ts_rread_open(ts_rread_t **rrp, const void *body, size_t len,
    ts_source_t *const *sources, uint32_t nsrc, const ts_rread_conf_t *conf,
    ProtobufCAllocator *alloc, ts_rread_error_t *e)
{
    int                       rc;
    ts_rread_t               *rr;
    ts_rr_alloc_t             ca;
    ts_sset_conf_t            ssc;
    ts_rread_error_t          dummy;
    Prometheus__ReadRequest  *req;

    e = e ? e : &dummy;
    memset(e, 0, sizeof(ts_rread_error_t));

    rr = calloc(1, sizeof(ts_rread_t));
    if (rr == NULL) {
        return ts_rr_fail(e, TS_ERR_NOMEM, 0, "out of memory");
    }

    if (conf != NULL) {
        rr->conf = *conf;
    } else {
        ts_rread_conf_default(&rr->conf);
    }

    rr->nsrc = nsrc;
    rr->src = malloc((nsrc ? nsrc : 1) * sizeof(ts_source_t *));

    if (rr->src == NULL) {
        ts_rread_free(rr);
        return ts_rr_fail(e, TS_ERR_NOMEM, 0, "out of memory");
    }

    if (nsrc > 0) {
        memcpy(rr->src, sources, nsrc * sizeof(ts_source_t *));
    }

    ssc.max_series = rr->conf.max_series;
    ssc.trim_chunks = rr->conf.trim_chunks;

    if (ts_sset_create(&rr->ss, sources, nsrc, &ssc) != TS_OK) {
        ts_rread_free(rr);
        return ts_rr_fail(e, TS_ERR_NOMEM, 0, "out of memory");
    }

    rc = ts_rr_decode(body, len, &rr->conf, alloc, &req, &ca, e);
    if (rc != TS_OK) {
        ts_rread_free(rr);
        return rc;
    }

    rc = ts_rr_negotiate(req, &rr->type, e);

    if (rc == TS_OK) {
        rc = ts_rr_queries(rr, req, e);
    }

    prometheus__read_request__free_unpacked(req, &ca.a);

    if (rc != TS_OK) {
        ts_rread_free(rr);
        return rc;
    }

    rr->st.queries = rr->nq;
    *rrp = rr;

    return TS_OK;
}


ts_rread_type_t
ts_rread_type(const ts_rread_t *rr)
{
    return rr->type;
}


const char *
ts_rread_content_type(const ts_rread_t *rr)
{
    return rr->type == TS_RREAD_SAMPLES ? TS_RREAD_CT_SAMPLES
                                        : TS_RREAD_CT_STREAMED;
}


const char *
ts_rread_content_encoding(const ts_rread_t *rr)
{
    return rr->type == TS_RREAD_SAMPLES ? TS_RREAD_CE_SAMPLES : NULL;
}


int
ts_rread_next(ts_rread_t *rr, const uint8_t **p, size_t *len,
    ts_rread_error_t *e)
{
    int  rc;

    if (rr->err == TS_OK && !rr->done) {
        rc = ts_rr_begin(rr);

        if (rc == TS_OK) {
            rc = rr->type == TS_RREAD_SAMPLES ? ts_rr_samples(rr)
                                              : ts_rr_streamed(rr);
            ts_sources_end(rr->src, rr->nsrc);
        }

        if (rc < 0) {
            rr->err = rc;

            if (rr->e.err == TS_OK) {
                ts_rr_fail(&rr->e, rc, 0, "%s", ts_strerror(rc));
            }

        } else if (rc == 1) {
            *p = rr->out.p;
            *len = rr->out.len;
            rr->st.bytes += rr->out.len;

            /* SAMPLES is one piece */
            rr->done = rr->type == TS_RREAD_SAMPLES;

            return 1;

        } else {
            rr->done = 1;
        }
    }

    if (rr->err != TS_OK) {
        if (e != NULL) {
            *e = rr->e;
        }

        return rr->err;
    }

    return 0;
}


void
ts_rread_stats(const ts_rread_t *rr, ts_rread_stats_t *st)
{
    *st = rr->st;
    st->reencoded = ts_sset_reencoded(rr->ss);
}


void
ts_rread_free(ts_rread_t *rr)
{
    uint32_t  i;

    if (rr == NULL) {
        return;
    }

    ts_sset_free(rr->ss);

    for (i = 0; i < rr->nq; i++) {
        ts_selector_free(rr->q[i].sel);
    }

    free(rr->q);
    free(rr->src);
    free(rr->out.p);
    free(rr->stage.p);
    free(rr->staged);
    free(rr->rbuf.p);
    free(rr);
}


static int
ts_rr_fail(ts_rread_error_t *e, int err, int client, const char *fmt, ...)
{
    va_list  args;

    e->err = err;
    e->client = client;

    va_start(args, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, args);
    va_end(args);

    return err;
}


/* protobuf-c's allocations, counted against max_decode_memory */

static void *
ts_rr_pb_alloc(void *data, size_t size)
{
    ts_rr_alloc_t  *ca;

    ca = data;

    if (size > ca->max - ca->used) {
        ca->refused = 1;
        return NULL;
    }

    ca->used += size;

    if (ca->inner != NULL) {
        return ca->inner->alloc(ca->inner->allocator_data, size);
    }

    return malloc(size);
}


static void
ts_rr_pb_free(void *data, void *p)
{
    ts_rr_alloc_t  *ca;

    ca = data;

    if (ca->inner != NULL) {
        ca->inner->free(ca->inner->allocator_data, p);
        return;
    }

    free(p);
}


static int
ts_rr_decode(const void *body, size_t len, const ts_rread_conf_t *conf,
    ProtobufCAllocator *alloc, Prometheus__ReadRequest **req,
    ts_rr_alloc_t *ca, ts_rread_error_t *e)
{
    size_t   n;
    uint8_t *buf;

    ca->a.alloc = ts_rr_pb_alloc;
    ca->a.free = ts_rr_pb_free;
    ca->a.allocator_data = ca;
    ca->inner = alloc;
    ca->used = 0;
    ca->max = conf->max_decode_memory;
    ca->refused = 0;

    if (len == 0 || snappy_uncompressed_length(body, len, &n) != SNAPPY_OK) {
        return ts_rr_fail(e, TS_ERR_INVALID, 1,
                          "malformed snappy body");
    }

    if (n > conf->max_body_size) {
        return ts_rr_fail(e, TS_ERR_LIMIT, 1,
                          "decompressed body of %zu bytes, more than %zu",
                          n, conf->max_body_size);
    }

    buf = ts_rr_pb_alloc(ca, n ? n : 1);
    if (buf == NULL) {
        if (ca->refused) {
            return ts_rr_fail(e, TS_ERR_LIMIT, 1, "decoding needs more "
                              "than %zu bytes", conf->max_decode_memory);
        }

        return ts_rr_fail(e, TS_ERR_NOMEM, 0, "out of memory");
    }

    if (snappy_uncompress(body, len, (char *) buf, &n) != SNAPPY_OK) {
        ts_rr_pb_free(ca, buf);
        return ts_rr_fail(e, TS_ERR_INVALID, 1, "malformed snappy body");
    }

    *req = prometheus__read_request__unpack(&ca->a, n, buf);
    ts_rr_pb_free(ca, buf);

    if (*req != NULL) {
        return TS_OK;
    }

    if (ca->refused) {
        return ts_rr_fail(e, TS_ERR_LIMIT, 1, "decoding needs more than "
                          "%zu bytes", conf->max_decode_memory);
    }

    return ts_rr_fail(e, TS_ERR_INVALID, 1,
                      "malformed protobuf ReadRequest");
}


static int
ts_rr_negotiate(const Prometheus__ReadRequest *req, ts_rread_type_t *type,
    ts_rread_error_t *e)
{
    size_t  i;

    if (req->n_accepted_response_types == 0) {
        *type = TS_RREAD_SAMPLES;
        return TS_OK;
    }

    for (i = 0; i < req->n_accepted_response_types; i++) {
        switch ((int) req->accepted_response_types[i]) {

        case TS_RREAD_SAMPLES:
            *type = TS_RREAD_SAMPLES;
            return TS_OK;

        case TS_RREAD_STREAMED_XOR_CHUNKS:
            *type = TS_RREAD_STREAMED_XOR_CHUNKS;
            return TS_OK;

        default:
            break;
        }
    }

    return ts_rr_fail(e, TS_ERR_UNSUPPORTED, 1, "server does not support "
                      "any of the requested response types");
}


static int
ts_rr_queries(ts_rread_t *rr, const Prometheus__ReadRequest *req,
    ts_rread_error_t *e)
{
    int       rc;
    uint32_t  i;

    if (req->n_queries > rr->conf.max_queries) {
        return ts_rr_fail(e, TS_ERR_LIMIT, 1, "%zu queries, more than %u",
                          req->n_queries, rr->conf.max_queries);
    }

    rr->q = calloc(req->n_queries ? req->n_queries : 1,
                   sizeof(ts_rr_query_t));
    if (rr->q == NULL) {
        return ts_rr_fail(e, TS_ERR_NOMEM, 0, "out of memory");
    }

    for (i = 0; i < req->n_queries; i++) {
        rc = ts_rr_query(rr, i, req->queries[i], e);
        if (rc != TS_OK) {
            return rc;
        }
    }

    return TS_OK;
}


static int
ts_rr_query(ts_rread_t *rr, uint32_t i, const Prometheus__Query *pq,
    ts_rread_error_t *e)
{
    int                        rc;
    char                       msg[TS_SELECT_MSG_SIZE];
    size_t                     k;
    ts_matcher_t              *m;
    ts_rr_query_t             *q;
    Prometheus__ReadHints     *h;
    Prometheus__LabelMatcher  *pm;

    q = &rr->q[i];
    q->mint = pq->start_timestamp_ms;
    q->maxt = pq->end_timestamp_ms;
    h = pq->hints;

    if (h != NULL && (h->start_ms != 0 || h->end_ms != 0)) {
        q->mint = h->start_ms > q->mint ? h->start_ms : q->mint;
        q->maxt = h->end_ms < q->maxt ? h->end_ms : q->maxt;
    }

    if (pq->n_matchers > rr->conf.select.max_matchers) {
        return ts_rr_fail(e, TS_ERR_LIMIT, 1, "query %u: %zu matchers, "
                          "more than %u", i, pq->n_matchers,
                          rr->conf.select.max_matchers);
    }

    m = malloc((pq->n_matchers ? pq->n_matchers : 1) * sizeof(ts_matcher_t));
    if (m == NULL) {
        return ts_rr_fail(e, TS_ERR_NOMEM, 0, "out of memory");
    }

    /* protobuf-c strings end at the first NUL: no NUL reaches us */

    for (k = 0; k < pq->n_matchers; k++) {
        pm = pq->matchers[k];
        m[k].type = (ts_match_type_t) pm->type;
        m[k].name = pm->name ? pm->name : "";
        m[k].name_len = strlen(m[k].name);
        m[k].value = pm->value ? pm->value : "";
        m[k].value_len = strlen(m[k].value);
    }

    rc = ts_selector_compile(&q->sel, m, (uint32_t) pq->n_matchers,
                             &rr->conf.select, msg, sizeof(msg));
    free(m);

    if (rc != TS_OK) {
        return ts_rr_fail(e, rc, rc != TS_ERR_NOMEM, "query %u: %s", i,
                          rc == TS_ERR_NOMEM ? "out of memory" : msg);
    }

    rr->nq = i + 1;

    return TS_OK;
}


static int
ts_rr_begin(ts_rread_t *rr)
{
    int  rc;

    rc = ts_sources_begin(rr->src, rr->nsrc);
    if (rc != TS_OK) {
        return ts_rr_fail(&rr->e, rc, 0, "opening storage: %s",
                          ts_strerror(rc));
    }

    return TS_OK;
}


/* 1 with a frame in rr->out, 0 at the end, or an error */

static int
ts_rr_streamed(ts_rread_t *rr)
{
    int  rc;

    for ( ;; ) {
        if (!rr->in_series) {
            if (!rr->loaded) {
                if (rr->qi == rr->nq) {
                    return 0;
                }

                rc = ts_rr_load(rr);
                if (rc != TS_OK) {
                    return rc;
                }
            }

            rc = ts_rr_series(rr);
            if (rc < 0) {
                return rc;
            }

            if (rc == 0) {
                ts_sset_reset(rr->ss);
                rr->loaded = 0;
                rr->qi++;
                continue;
            }
        }

        rc = ts_rr_frame(rr);
        if (rc != 0) {
            return rc;
        }
    }
}


/*
 * The whole SAMPLES response, compressed, in rr->out.  It is encoded in
 * place in rr->rbuf: each QueryResult and TimeSeries gets room for a
 * 5-byte length, and its content moves back once the length is known
 * (copying into fresh buffers instead costs page faults on big
 * responses).
 */

static int
ts_rr_samples(ts_rread_t *rr)
{
    int     rc;
    size_t  qstart;

    rr->rbuf.len = 0;

    for (rr->qi = 0; rr->qi < rr->nq; rr->qi++) {
        rc = ts_rr_load(rr);
        if (rc != TS_OK) {
            return rc;
        }

        /* every query has its QueryResult, even an empty one */

        if (ts_buf_open(&rr->rbuf, TS_PB_LEN1, &qstart) != TS_OK) {
            return ts_rr_fail(&rr->e, TS_ERR_NOMEM, 0, "out of memory");
        }

        rr->qsamples = 0;

        while ((rc = ts_rr_series(rr)) == 1) {
            rc = ts_rr_series_samples(rr);
            if (rc != TS_OK) {
                return rc;
            }
        }

        if (rc < 0) {
            return rc;
        }

        ts_sset_reset(rr->ss);
        rr->loaded = 0;
        ts_buf_close(&rr->rbuf, qstart);

        if (rr->rbuf.len > TS_RR_MAX_RESPONSE) {
            return ts_rr_fail(&rr->e, TS_ERR_LIMIT, 1, "response larger "
                              "than %u bytes", TS_RR_MAX_RESPONSE);
        }
    }

    rc = ts_rr_compress(rr);

    return rc == TS_OK ? 1 : rc;
}


/* selects the series of query rr->qi */

static int
ts_rr_load(ts_rread_t *rr)
{
    int             rc;
    char            msg[TS_SSET_MSG_SIZE];
    ts_rr_query_t  *q;

    q = &rr->q[rr->qi];
    rr->loaded = 1;
    rr->in_series = 0;

    rc = ts_sset_select(rr->ss, q->sel, q->mint, q->maxt, msg, sizeof(msg));
    if (rc == TS_OK) {
        return TS_OK;
    }

    if (rc == TS_ERR_NOMEM) {
        return ts_rr_fail(&rr->e, rc, 0, "out of memory");
    }

    return ts_rr_fail(&rr->e, rc, rc == TS_ERR_LIMIT, "query %u: %s",
                      rr->qi, msg);
}


/* 1 when the next series of the query is current, 0 at the end */

static int
ts_rr_series(ts_rread_t *rr)
{
    int  rc;

    rc = ts_sset_next(rr->ss, &rr->labels, &rr->nlabels);
    if (rc < 0) {
        return ts_rr_fail(&rr->e, rc, 0, "out of memory");
    }

    rr->in_series = rc;
    rr->sent = 0;

    return rc;
}


/* 1 with the series' next frame in rr->out, 0 at its end, or error */

static int
ts_rr_frame(ts_rread_t *rr)
{
    int              rc;
    int64_t          left;
    uint32_t         i;
    ts_sset_chunk_t  ch;

    rr->nstaged = 0;
    rr->stage.len = 0;
    memset(&ch, 0, sizeof(ts_sset_chunk_t));

    left = (int64_t) rr->conf.max_bytes_in_frame;

    for (i = 0; i < rr->nlabels; i++) {
        left -= (int64_t) ts_pb_label_size(&rr->labels[i]);
    }

    for ( ;; ) {
        rc = ts_sset_chunk(rr->ss, &ch);

        if (rc == 0) {
            rr->in_series = 0;
            break;
        }

        if (rc < 0 || (rc = ts_rr_stage(rr, &ch)) != TS_OK) {
            if (rc == TS_ERR_NOMEM) {
                return ts_rr_fail(&rr->e, rc, 0, "out of memory");
            }

            return ts_rr_fail(&rr->e, rc, 0, "query %u: reading chunks: %s",
                              rr->qi, ts_strerror(rc));
        }

        left -= (int64_t) ts_pb_chunk_size(&rr->staged[rr->nstaged - 1]);

        if (left <= 0) {
            break;
        }
    }

    rr->sent |= rr->nstaged > 0;
    rr->st.series += !rr->in_series && rr->sent;

    if (rr->nstaged == 0) {
        return 0;
    }

    return ts_rr_frame_encode(rr);
}


static int
ts_rr_stage(ts_rread_t *rr, const ts_sset_chunk_t *ch)
{
    void      *p;
    uint32_t   cap;

    if (rr->nstaged == rr->stcap) {
        cap = rr->stcap ? rr->stcap * 2 : 64;

        p = realloc(rr->staged, cap * sizeof(ts_rr_cmeta_t));
        if (p == NULL) {
            return TS_ERR_NOMEM;
        }

        rr->staged = p;
        rr->stcap = cap;
    }

    if (ts_buf_reserve(&rr->stage, ch->len) != TS_OK) {
        return TS_ERR_NOMEM;
    }

    rr->staged[rr->nstaged].mint = ch->mint;
    rr->staged[rr->nstaged].maxt = ch->maxt;
    rr->staged[rr->nstaged].off = rr->stage.len;
    rr->staged[rr->nstaged].len = ch->len;
    rr->staged[rr->nstaged].enc = ch->encoding;
    rr->nstaged++;

    memcpy(rr->stage.p + rr->stage.len, ch->data, ch->len);
    rr->stage.len += ch->len;

    return TS_OK;
}


/*
 * uvarint(len) | CRC-32C(data) big-endian | data, where data is
 * ChunkedReadResponse{chunked_series: [{labels, chunks}], query_index}.
 */

static int
ts_rr_frame_encode(ts_rread_t *rr)
{
    size_t          cs, body, data, csize;
    uint8_t        *p, *d;
    uint32_t        i, crc;
    ts_rr_cmeta_t  *c;

    cs = ts_pb_labels_size(rr->labels, rr->nlabels);

    for (i = 0; i < rr->nstaged; i++) {
        csize = ts_pb_chunk_size(&rr->staged[i]);
        cs += 1 + ts_pb_vsize(csize) + csize;
    }

    data = 1 + ts_pb_vsize(cs) + cs;
    data += rr->qi ? 1 + ts_pb_vsize(rr->qi) : 0;

    rr->out.len = 0;

    if (ts_buf_reserve(&rr->out, ts_pb_vsize(data) + 4 + data) != TS_OK) {
        return ts_rr_fail(&rr->e, TS_ERR_NOMEM, 0, "out of memory");
    }

    p = ts_pb_varint(rr->out.p, data);
    d = p + 4;
    p = d;

    *p++ = TS_PB_LEN1;
    p = ts_pb_varint(p, cs);
    p = ts_pb_labels(p, rr->labels, rr->nlabels);

    for (i = 0; i < rr->nstaged; i++) {
        c = &rr->staged[i];
        body = ts_pb_chunk_size(c);

        *p++ = TS_PB_LEN2;
        p = ts_pb_varint(p, body);

        if (c->mint != 0) {
            *p++ = TS_PB_VAR1;
            p = ts_pb_varint(p, (uint64_t) c->mint);
        }

        if (c->maxt != 0) {
            *p++ = TS_PB_VAR2;
            p = ts_pb_varint(p, (uint64_t) c->maxt);
        }

        *p++ = TS_PB_VAR3;
        *p++ = (uint8_t) c->enc;
        *p++ = TS_PB_LEN4;
        p = ts_pb_varint(p, c->len);
        memcpy(p, rr->stage.p + c->off, c->len);
        p += c->len;
    }

    if (rr->qi) {
        *p++ = TS_PB_VAR2;
        p = ts_pb_varint(p, rr->qi);
    }

    crc = ts_crc32c(0, d, data);
    d[-4] = (uint8_t) (crc >> 24);
    d[-3] = (uint8_t) (crc >> 16);
    d[-2] = (uint8_t) (crc >> 8);
    d[-1] = (uint8_t) crc;

    rr->out.len = (size_t) (p - rr->out.p);
    rr->st.frames++;
    rr->st.chunks += rr->nstaged;

    return 1;
}


/* appends the current series as a TimeSeries unless it has no sample */

static int
ts_rr_series_samples(ts_rread_t *rr)
{
    int              rc;
    size_t           start, n;
    uint8_t         *p;
    ts_sset_value_t  val;

    if (ts_buf_open(&rr->rbuf, TS_PB_LEN1, &start) != TS_OK
        || ts_buf_reserve(&rr->rbuf, ts_pb_labels_size(rr->labels,
                                                       rr->nlabels))
           != TS_OK)
    {
        return ts_rr_fail(&rr->e, TS_ERR_NOMEM, 0, "out of memory");
    }

    p = ts_pb_labels(rr->rbuf.p + rr->rbuf.len, rr->labels, rr->nlabels);
    rr->rbuf.len = (size_t) (p - rr->rbuf.p);
    n = 0;

    /*
     * Samples (field 2) and histograms (field 4) in time order: repeated
     * fields may interleave, a decoder appends each to its own list
     */

    while ((rc = ts_sset_value(rr->ss, &val)) == 1) {
        if (rr->conf.max_samples && ++rr->qsamples > rr->conf.max_samples) {
            return ts_rr_fail(&rr->e, TS_ERR_LIMIT, 1, "exceeded sample "
                              "limit (%llu)",
                              (unsigned long long) rr->conf.max_samples);
        }

        if (val.enc == TS_XOR_ENCODING) {
            rc = ts_rr_sample(&rr->rbuf, val.t, val.v);

        } else {
            rc = ts_rr_histogram(&rr->rbuf, val.t, &val.h);
            rr->st.histograms++;
        }

        if (rc != TS_OK) {
            return ts_rr_fail(&rr->e, TS_ERR_NOMEM, 0, "out of memory");
        }

        n++;
    }

    if (rc < 0) {
        return ts_rr_fail(&rr->e, rc, 0, "query %u: reading chunks: %s",
                          rr->qi, ts_strerror(rc));
    }

    if (n == 0) {
        rr->rbuf.len = start - 1;
        return TS_OK;
    }

    ts_buf_close(&rr->rbuf, start);
    rr->st.series++;
    rr->st.samples += n;

    return TS_OK;
}


/* a Sample field; proto3 leaves zeros out (-0.0 and NaNs have bits) */

static int
ts_rr_sample(ts_buf_t *b, int64_t t, uint64_t v)
{
    size_t    body;
    uint8_t  *p;

    if (ts_buf_reserve(b, 22) != TS_OK) {
        return TS_ERR_NOMEM;
    }

    body = (v ? 9 : 0) + (t ? 1 + ts_pb_vsize((uint64_t) t) : 0);
    p = b->p + b->len;

    *p++ = TS_PB_LEN2;
    p = ts_pb_varint(p, body);

    if (v) {
        *p++ = TS_PB_F64_1;
        p = ts_pb_fixed64(p, v);
    }

    if (t) {
        *p++ = TS_PB_VAR2;
        p = ts_pb_varint(p, (uint64_t) t);
    }

    b->len = (size_t) (p - b->p);

    return TS_OK;
}


/*
 * A Histogram field (4) of TimeSeries, as Prometheus's
 * HistogramToHistogramProto / FloatHistogramToHistogramProto fill it:
 * the count and zero count oneofs always set (integer or float), other
 * scalars left out when zero, repeated numbers packed.
 */

#define TS_PB_ZZ(v)  (((uint64_t) (v) << 1) ^ (uint64_t) ((v) >> 63))

static int
ts_rr_histogram(ts_buf_t *b, int64_t t, const ts_hist_t *h)
{
    size_t     start, need;
    uint8_t   *p;
    uint32_t   i;
    uint64_t   zt;
    size_t     dsize;

    need = 6 + 11 + 9 + 6 + 9 + 11 + 11 + 11
           + (size_t) (h->n_neg_spans + h->n_pos_spans) * 18
           + (size_t) (h->n_neg + h->n_pos + h->n_custom) * 10 + 3 * 11;

    if (ts_buf_open(b, TS_PB_LEN4, &start) != TS_OK
        || ts_buf_reserve(b, need) != TS_OK)
    {
        return TS_ERR_NOMEM;
    }

    p = b->p + b->len;
    memcpy(&zt, &h->zero_threshold, 8);

    if (h->is_float) {
        *p++ = 0x11;                                /* count_float */
        p = ts_pb_fixed64(p, ts_rr_f64(h->fcount));

    } else {
        *p++ = 0x08;                                /* count_int */
        p = ts_pb_varint(p, h->count);
    }

    if (h->sum != 0) {
        *p++ = 0x19;
        p = ts_pb_fixed64(p, h->sum);
    }

    if (h->schema != 0) {
        *p++ = 0x20;                                /* sint32 */
        p = ts_pb_varint(p, (uint32_t) ((uint32_t) h->schema << 1)
                            ^ (uint32_t) (h->schema >> 31));
    }

    if (zt != 0) {
        *p++ = 0x29;
        p = ts_pb_fixed64(p, zt);
    }

    if (h->is_float) {
        *p++ = 0x39;                                /* zero_count_float */
        p = ts_pb_fixed64(p, ts_rr_f64(h->fzero_count));

    } else {
        *p++ = 0x30;                                /* zero_count_int */
        p = ts_pb_varint(p, h->zero_count);
    }

    p = ts_pb_spans(p, 0x42, h->neg_spans, h->n_neg_spans);

    if (h->n_neg && !h->is_float) {
        dsize = 0;

        for (i = 0; i < h->n_neg; i++) {
            dsize += ts_pb_vsize(TS_PB_ZZ(h->neg_deltas[i]));
        }

        *p++ = 0x4a;
        p = ts_pb_varint(p, dsize);

        for (i = 0; i < h->n_neg; i++) {
            p = ts_pb_varint(p, TS_PB_ZZ(h->neg_deltas[i]));
        }
    }

    if (h->n_neg && h->is_float) {
        p = ts_pb_packed_f64(p, 0x52, h->neg_counts, h->n_neg);
    }

    p = ts_pb_spans(p, 0x5a, h->pos_spans, h->n_pos_spans);

    if (h->n_pos && !h->is_float) {
        dsize = 0;

        for (i = 0; i < h->n_pos; i++) {
            dsize += ts_pb_vsize(TS_PB_ZZ(h->pos_deltas[i]));
        }

        *p++ = 0x62;
        p = ts_pb_varint(p, dsize);

        for (i = 0; i < h->n_pos; i++) {
            p = ts_pb_varint(p, TS_PB_ZZ(h->pos_deltas[i]));
        }
    }

    if (h->n_pos && h->is_float) {
        p = ts_pb_packed_f64(p, 0x6a, h->pos_counts, h->n_pos);
    }

    if (h->reset_hint != 0) {
        *p++ = 0x70;
        p = ts_pb_varint(p, h->reset_hint);
    }

    if (t != 0) {
        *p++ = 0x78;
        p = ts_pb_varint(p, (uint64_t) t);
    }

    if (h->n_custom) {
        *p++ = 0x82;                                /* field 16 */
        p = ts_pb_packed_f64(p, 0x01, h->custom_values, h->n_custom);
    }

    b->len = (size_t) (p - b->p);
    ts_buf_close(b, start);

    return TS_OK;
}


/* repeated BucketSpan{sint32 offset = 1; uint32 length = 2} */

static uint8_t *
ts_pb_spans(uint8_t *p, uint8_t tag, const ts_hspan_t *sp, uint32_t n)
{
    size_t    body;
    uint32_t  i, zz;

    for (i = 0; i < n; i++) {
        zz = ((uint32_t) sp[i].offset << 1)
             ^ (uint32_t) (sp[i].offset >> 31);
        body = (zz ? 1 + ts_pb_vsize(zz) : 0)
               + (sp[i].length ? 1 + ts_pb_vsize(sp[i].length) : 0);

        *p++ = tag;
        p = ts_pb_varint(p, body);

        if (zz) {
            *p++ = TS_PB_VAR1;
            p = ts_pb_varint(p, zz);
        }

        if (sp[i].length) {
            *p++ = TS_PB_VAR2;
            p = ts_pb_varint(p, sp[i].length);
        }
    }

    return p;
}


/* tag, then a packed repeated double (the tag's last byte given) */

static uint8_t *
ts_pb_packed_f64(uint8_t *p, uint8_t tag, const double *v, uint32_t n)
{
    uint32_t  i;

    *p++ = tag;
    p = ts_pb_varint(p, (uint64_t) n * 8);

    for (i = 0; i < n; i++) {
        p = ts_pb_fixed64(p, ts_rr_f64(v[i]));
    }

    return p;
}


static int
ts_rr_compress(ts_rread_t *rr)
{
    size_t  n;

    n = snappy_max_compressed_length(rr->rbuf.len);
    rr->out.len = 0;

    if (ts_buf_reserve(&rr->out, n) != TS_OK) {
        return ts_rr_fail(&rr->e, TS_ERR_NOMEM, 0, "out of memory");
    }

    if (snappy_compress((const char *) rr->rbuf.p, rr->rbuf.len,
                        (char *) rr->out.p, &n) != SNAPPY_OK)
    {
        return ts_rr_fail(&rr->e, TS_ERR_NOMEM, 0, "snappy_compress() "
                          "failed");
    }

    rr->out.len = n;

    free(rr->rbuf.p);
    memset(&rr->rbuf, 0, sizeof(ts_buf_t));

    return TS_OK;
}


/*
 * Starts a length-delimited field: the tag and room for a length of up
 * to 5 bytes (2^35, far above any response); *start is where the
 * length goes.
 */

static int
ts_buf_open(ts_buf_t *b, uint8_t tag, size_t *start)
{
    if (ts_buf_reserve(b, 6) != TS_OK) {
        return TS_ERR_NOMEM;
    }

    b->p[b->len] = tag;
    *start = b->len + 1;
    b->len += 6;

    return TS_OK;
}


/* writes the field's length and moves its content up to it */

static void
ts_buf_close(ts_buf_t *b, size_t start)
{
    size_t  body, vs;

    body = b->len - start - 5;
    vs = ts_pb_vsize(body);

    ts_pb_varint(b->p + start, body);
    memmove(b->p + start + vs, b->p + start + 5, body);
    b->len -= 5 - vs;
}


static size_t
ts_pb_vsize(uint64_t v)
{
    size_t  n;

    for (n = 1; v >= 0x80; n++) {
        v >>= 7;
    }

    return n;
}


static uint8_t *
ts_pb_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t) (v | 0x80);
        v >>= 7;
    }

    *p++ = (uint8_t) v;

    return p;
}


static uint64_t
ts_rr_f64(double d)
{
    uint64_t  u;

    memcpy(&u, &d, sizeof(u));

    return u;
}


/* little-endian, as protobuf's fixed64 and double */

static uint8_t *
ts_pb_fixed64(uint8_t *p, uint64_t v)
{
    int  i;

    for (i = 0; i < 8; i++) {
        *p++ = (uint8_t) (v >> (8 * i));
    }

    return p;
}


/* a Label message's size, as gogo's Label.Size() */

static size_t
ts_pb_label_size(const ts_label_t *l)
{
    size_t  n;

    n = 0;

    if (l->name_len) {
        n += 1 + ts_pb_vsize(l->name_len) + l->name_len;
    }

    if (l->value_len) {
        n += 1 + ts_pb_vsize(l->value_len) + l->value_len;
    }

    return n;
}


/* the labels as repeated field 1 */

static size_t
ts_pb_labels_size(const ts_label_t *l, uint32_t n)
{
    size_t    size, body;
    uint32_t  i;

    size = 0;

    for (i = 0; i < n; i++) {
        body = ts_pb_label_size(&l[i]);
        size += 1 + ts_pb_vsize(body) + body;
    }

    return size;
}


static uint8_t *
ts_pb_labels(uint8_t *p, const ts_label_t *l, uint32_t n)
{
    uint32_t  i;

    for (i = 0; i < n; i++) {
        *p++ = TS_PB_LEN1;
        p = ts_pb_varint(p, ts_pb_label_size(&l[i]));

        if (l[i].name_len) {
            *p++ = TS_PB_LEN1;
            p = ts_pb_varint(p, l[i].name_len);
            memcpy(p, l[i].name, l[i].name_len);
            p += l[i].name_len;
        }

        if (l[i].value_len) {
            *p++ = TS_PB_LEN2;
            p = ts_pb_varint(p, l[i].value_len);
            memcpy(p, l[i].value, l[i].value_len);
            p += l[i].value_len;
        }
    }

    return p;
}


/* a Chunk message's size, as gogo's Chunk.Size() */

static size_t
ts_pb_chunk_size(const ts_rr_cmeta_t *c)
{
    size_t  n;

    n = 2 + 1 + ts_pb_vsize(c->len) + c->len;

    if (c->mint != 0) {
        n += 1 + ts_pb_vsize((uint64_t) c->mint);
    }

    if (c->maxt != 0) {
        n += 1 + ts_pb_vsize((uint64_t) c->maxt);
    }

    return n;
}
