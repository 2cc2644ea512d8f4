/*
 * Copyright (C) ngx_tsdb authors
 *
 * rread-dump: a remote-read client's two halves, for tests (t/039).
 *
 *     rread-dump request samples|streamed MATCHER START END > body
 *     rread-dump decode samples|streamed < response > text
 *     rread-dump write samples|streamed < response > body
 *
 * request builds a snappy-compressed prometheus.ReadRequest with one
 * query: MATCHER is NAME=VALUE, NAME!=VALUE, NAME=~RE or NAME!~RE,
 * START and END milliseconds.  "samples" leaves accepted_response_types
 * empty (what Prometheus 2.42 sends: the server answers SAMPLES),
 * "streamed" asks for STREAMED_XOR_CHUNKS only.
 *
 * decode reads the response of that type (a snappy ReadResponse, or
 * uvarint | CRC-32C | ChunkedReadResponse frames, checked) and prints
 * one line per sample, whatever the type, so that both print the same
 * text for the same data:
 *
 *     {labels} TIME f VALUE_BITS
 *     {labels} TIME h|fh count=.. sum=.. schema=.. zt=.. zero=..
 *         p=OFF_LEN/.. pb=ABS/.. n=.. nb=..
 *
 * write turns the series of a response into a snappy remote-write
 * prometheus.WriteRequest (samples and histograms as read, reset hints
 * included), so that a real Prometheus can store what was read back.
 *
 * Histogram buckets are printed as absolute counts (%.17g), the
 * float64 fields as %.17g, a stale sum as "stale".  Reset hints are not
 * printed: a server may cut chunks differently from one read to the
 * next.  Chunks (streamed) are decoded with the store's XOR and
 * histogram iterators; the exit status is 1 on any malformed input.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "prometheus_remote.pb-c.h"
#include "ts_chunk.h"
#include "ts_crc32c.h"
#include "ts_hchunk.h"


#define RD_MAX_INPUT  (256 * 1024 * 1024)


static int rd_request(const char *type, const char *matcher,
    const char *start, const char *end);
static int rd_decode(const char *type, int write);
static int rd_samples(const uint8_t *p, size_t len);
static int rd_streamed(const uint8_t *p, size_t len);
static int rd_chunk(Prometheus__TimeSeries *ts, const Prometheus__Chunk *c);
static Prometheus__TimeSeries *rd_series(Prometheus__Label **l, size_t n);
static void rd_add_float(Prometheus__TimeSeries *ts, int64_t t, double v);
static void rd_add_hist(Prometheus__TimeSeries *ts, int64_t t,
    const ts_hist_t *h);
static void *rd_copy(const void *p, size_t size);
static void *rd_alloc(size_t size);
static void rd_print(Prometheus__TimeSeries *ts);
static int rd_write(void);
static char *rd_labels(Prometheus__Label **l, size_t n);
static void rd_float(const char *labels, int64_t t, double v);
static void rd_hist(const char *labels, int64_t t, const ts_hist_t *h);
static void rd_buckets(const char *name, const ts_hspan_t *sp, uint32_t ns,
    const char *bname, const ts_hist_t *h, int neg);


int
main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "request") == 0) {
        return rd_request(argv[2], argv[3], argv[4], argv[5]);
    }

    if (argc == 3 && strcmp(argv[1], "decode") == 0) {
        return rd_decode(argv[2], 0);
    }

    if (argc == 3 && strcmp(argv[1], "write") == 0) {
        return rd_decode(argv[2], 1);
    }

    fprintf(stderr, "usage: rread-dump request samples|streamed MATCHER "
                    "START END\n       rread-dump decode|write "
                    "samples|streamed\n");

    return 2;
}


static int
rd_request(const char *type, const char *matcher, const char *start,
    const char *end)
{
    char                                  *name, *op;
    size_t                                 n, c;
    uint8_t                               *raw, *out;
    Prometheus__Query                      q, *qp;
    Prometheus__LabelMatcher               m, *mp;
    Prometheus__ReadRequest                req;
    Prometheus__ReadRequest__ResponseType  rt;

    prometheus__label_matcher__init(&m);
    name = strdup(matcher);
    op = name ? strpbrk(name, "=!") : NULL;

    if (op == NULL) {
        fprintf(stderr, "rread-dump: bad matcher: %s\n", matcher);
        return 1;
    }

    if (op[0] == '!' && op[1] == '=') {
        m.type = PROMETHEUS__LABEL_MATCHER__TYPE__NEQ;
        m.value = op + 2;

    } else if (op[0] == '!' && op[1] == '~') {
        m.type = PROMETHEUS__LABEL_MATCHER__TYPE__NRE;
        m.value = op + 2;

    } else if (op[0] == '=' && op[1] == '~') {
        m.type = PROMETHEUS__LABEL_MATCHER__TYPE__RE;
        m.value = op + 2;

    } else if (op[0] == '=') {
        m.type = PROMETHEUS__LABEL_MATCHER__TYPE__EQ;
        m.value = op + 1;

    } else {
        fprintf(stderr, "rread-dump: bad matcher: %s\n", matcher);
        return 1;
    }

    *op = '\0';
    m.name = name;
    mp = &m;

    prometheus__query__init(&q);
    q.start_timestamp_ms = strtoll(start, NULL, 10);
    q.end_timestamp_ms = strtoll(end, NULL, 10);
    q.n_matchers = 1;
    q.matchers = &mp;
    qp = &q;

    prometheus__read_request__init(&req);
    req.n_queries = 1;
    req.queries = &qp;

    if (strcmp(type, "streamed") == 0) {
        rt = PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS;
        req.n_accepted_response_types = 1;
        req.accepted_response_types = &rt;

    } else if (strcmp(type, "samples") != 0) {
        fprintf(stderr, "rread-dump: unknown type %s\n", type);
        return 1;
    }

    n = prometheus__read_request__get_packed_size(&req);
    c = snappy_max_compressed_length(n);
    raw = malloc(n + 1);
    out = malloc(c);

    if (raw == NULL || out == NULL) {
        fprintf(stderr, "rread-dump: out of memory\n");
        return 1;
    }

    prometheus__read_request__pack(&req, raw);

    if (snappy_compress((char *) raw, n, (char *) out, &c) != SNAPPY_OK
        || fwrite(out, 1, c, stdout) != c)
    {
        fprintf(stderr, "rread-dump: cannot write the request\n");
        return 1;
    }

    free(raw);
    free(out);
    free(name);

    return 0;
}


/* every series read, in order */
static Prometheus__TimeSeries  **rd_ts;
static size_t                    rd_nts;


static int
rd_decode(const char *type, int write)
{
    int       rc;
    size_t    len, cap, n, i;
    uint8_t  *buf, *p;

    cap = 1 << 20;
    len = 0;
    buf = malloc(cap);

    while (buf != NULL
           && (n = fread(buf + len, 1, cap - len, stdin)) > 0)
    {
        len += n;

        if (len == cap) {
            if (cap >= RD_MAX_INPUT) {
                fprintf(stderr, "rread-dump: input too large\n");
                return 1;
            }

            cap *= 2;
            p = realloc(buf, cap);
            if (p == NULL) {
                free(buf);
                buf = NULL;
                break;
            }

            buf = p;
        }
    }

    if (buf == NULL) {
        fprintf(stderr, "rread-dump: out of memory\n");
        return 1;
    }

    if (strcmp(type, "samples") == 0) {
        rc = rd_samples(buf, len);

    } else if (strcmp(type, "streamed") == 0) {
        rc = rd_streamed(buf, len);

    } else {
        fprintf(stderr, "rread-dump: unknown type %s\n", type);
        rc = 1;
    }

    free(buf);

    if (rc != 0) {
        return rc;
    }

    if (write) {
        return rd_write();
    }

    for (i = 0; i < rd_nts; i++) {
        rd_print(rd_ts[i]);
    }

    return 0;
}


static int
rd_write(void)
{
    size_t                    n, c;
    uint8_t                  *raw, *out;
    Prometheus__WriteRequest  req;

    prometheus__write_request__init(&req);
    req.n_timeseries = rd_nts;
    req.timeseries = rd_ts;

    n = prometheus__write_request__get_packed_size(&req);
    c = snappy_max_compressed_length(n);
    raw = rd_alloc(n + 1);
    out = rd_alloc(c);
    prometheus__write_request__pack(&req, raw);

    if (snappy_compress((char *) raw, n, (char *) out, &c) != SNAPPY_OK
        || fwrite(out, 1, c, stdout) != c)
    {
        fprintf(stderr, "rread-dump: cannot write the body\n");
        return 1;
    }

    free(raw);
    free(out);

    return 0;
}


/* one series' lines: samples and histograms merged by time */

static void
rd_print(Prometheus__TimeSeries *ts)
{
    char                   *labels;
    size_t                  n, si, hi;
    ts_hist_t               h;
    ts_hspan_t              ps[256], ns[256];
    Prometheus__Histogram  *ph;

    labels = rd_labels(ts->labels, ts->n_labels);
    si = 0;
    hi = 0;

    while (si < ts->n_samples || hi < ts->n_histograms) {
        if (hi == ts->n_histograms
            || (si < ts->n_samples
                && ts->samples[si]->timestamp
                   < ts->histograms[hi]->timestamp))
        {
            rd_float(labels, ts->samples[si]->timestamp,
                     ts->samples[si]->value);
            si++;
            continue;
        }

        ph = ts->histograms[hi++];

        if (ph->n_positive_spans > 256 || ph->n_negative_spans > 256) {
            fprintf(stderr, "rread-dump: too many spans\n");
            exit(1);
        }

        memset(&h, 0, sizeof(h));
        memcpy(&h.sum, &ph->sum, 8);
        h.schema = ph->schema;
        h.zero_threshold = ph->zero_threshold;
        h.is_float = ph->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;

        for (n = 0; n < ph->n_positive_spans; n++) {
            ps[n].offset = ph->positive_spans[n]->offset;
            ps[n].length = ph->positive_spans[n]->length;
        }

        for (n = 0; n < ph->n_negative_spans; n++) {
            ns[n].offset = ph->negative_spans[n]->offset;
            ns[n].length = ph->negative_spans[n]->length;
        }

        h.n_pos_spans = (uint32_t) ph->n_positive_spans;
        h.pos_spans = ps;
        h.n_neg_spans = (uint32_t) ph->n_negative_spans;
        h.neg_spans = ns;

        if (h.is_float) {
            h.fcount = ph->count_float;
            h.fzero_count = ph->zero_count_float;
            h.n_pos = (uint32_t) ph->n_positive_counts;
            h.pos_counts = ph->positive_counts;
            h.n_neg = (uint32_t) ph->n_negative_counts;
            h.neg_counts = ph->negative_counts;

        } else {
            h.count = ph->count_int;
            h.zero_count = ph->zero_count_int;
            h.n_pos = (uint32_t) ph->n_positive_deltas;
            h.pos_deltas = ph->positive_deltas;
            h.n_neg = (uint32_t) ph->n_negative_deltas;
            h.neg_deltas = ph->negative_deltas;
        }

        rd_hist(labels, ph->timestamp, &h);
    }

    free(labels);
}


/* the response stays unpacked: its series are rd_ts */

static int
rd_samples(const uint8_t *p, size_t len)
{
    char                      *raw;
    size_t                     n, i, k;
    Prometheus__ReadResponse  *resp;

    if (snappy_uncompressed_length((const char *) p, len, &n) != SNAPPY_OK
        || (raw = malloc(n + 1)) == NULL
        || snappy_uncompress((const char *) p, len, raw, &n) != SNAPPY_OK)
    {
        fprintf(stderr, "rread-dump: bad snappy body\n");
        return 1;
    }

    resp = prometheus__read_response__unpack(NULL, n, (uint8_t *) raw);
    free(raw);

    if (resp == NULL) {
        fprintf(stderr, "rread-dump: bad ReadResponse\n");
        return 1;
    }

    for (i = 0; i < resp->n_results; i++) {
        n = resp->results[i]->n_timeseries;
        rd_ts = realloc(rd_ts, (rd_nts + n + 1) * sizeof(void *));

        if (rd_ts == NULL) {
            fprintf(stderr, "rread-dump: out of memory\n");
            return 1;
        }

        for (k = 0; k < n; k++) {
            rd_ts[rd_nts++] = resp->results[i]->timeseries[k];
        }
    }

    return 0;
}


static int
rd_streamed(const uint8_t *p, size_t len)
{
    int                               shift;
    char                             *labels, *prev;
    size_t                            pos, i, k;
    Prometheus__TimeSeries           *ts;
    uint32_t                          crc;
    uint64_t                          flen;
    Prometheus__ChunkedSeries        *cs;
    Prometheus__ChunkedReadResponse  *f;

    pos = 0;
    prev = NULL;
    ts = NULL;

    while (pos < len) {
        flen = 0;

        for (shift = 0; ; shift += 7) {
            if (pos == len || shift > 63) {
                fprintf(stderr, "rread-dump: bad frame length\n");
                return 1;
            }

            flen |= (uint64_t) (p[pos] & 0x7f) << shift;

            if ((p[pos++] & 0x80) == 0) {
                break;
            }
        }

        if (flen > len - pos || len - pos - flen < 4) {
            fprintf(stderr, "rread-dump: truncated frame\n");
            return 1;
        }

        crc = (uint32_t) p[pos] << 24 | (uint32_t) p[pos + 1] << 16
              | (uint32_t) p[pos + 2] << 8 | p[pos + 3];
        pos += 4;

        if (crc != ts_crc32c(0, p + pos, flen)) {
            fprintf(stderr, "rread-dump: frame CRC mismatch\n");
            return 1;
        }

        f = prometheus__chunked_read_response__unpack(NULL, flen, p + pos);
        if (f == NULL) {
            fprintf(stderr, "rread-dump: bad ChunkedReadResponse\n");
            return 1;
        }

        pos += flen;

        for (i = 0; i < f->n_chunked_series; i++) {
            cs = f->chunked_series[i];
            labels = rd_labels(cs->labels, cs->n_labels);

            /* a series split over frames goes on in the last one */

            if (prev == NULL || strcmp(prev, labels) != 0) {
                free(prev);
                prev = labels;
                ts = rd_series(cs->labels, cs->n_labels);

            } else {
                free(labels);
            }

            for (k = 0; k < cs->n_chunks; k++) {
                if (rd_chunk(ts, cs->chunks[k]) != 0) {
                    return 1;
                }
            }
        }

        /* labels were copied: the frame may go */

        prometheus__chunked_read_response__free_unpacked(f, NULL);
    }

    return 0;
}


static int
rd_chunk(Prometheus__TimeSeries *ts, const Prometheus__Chunk *c)
{
    int             rc;
    void           *mem;
    size_t          need;
    double          v;
    int64_t         t;
    ts_hist_t       h;
    ts_xor_iter_t   xi;
    ts_hist_iter_t  hi;

    switch (c->type) {

    case PROMETHEUS__CHUNK__ENCODING__XOR:
        ts_xor_iter_init(&xi, c->data.data, c->data.len);

        while ((rc = ts_xor_iter_next(&xi, &t, &v)) == 1) {
            rd_add_float(ts, t, v);
        }

        break;

    case PROMETHEUS__CHUNK__ENCODING__HISTOGRAM:
    case PROMETHEUS__CHUNK__ENCODING__FLOAT_HISTOGRAM:
        need = ts_hist_iter_need(c->data.data, c->data.len, c->type);

        mem = malloc(need);
        if (mem == NULL) {
            fprintf(stderr, "rread-dump: out of memory\n");
            return 1;
        }

        ts_hist_iter_init(&hi, c->data.data, c->data.len, c->type, mem,
                          need);

        while ((rc = ts_hist_iter_next(&hi, &t, &h)) == 1) {
            rd_add_hist(ts, t, &h);
        }

        free(mem);
        break;

    default:
        fprintf(stderr, "rread-dump: chunk type %d\n", (int) c->type);
        return 1;
    }

    if (rc != 0) {
        fprintf(stderr, "rread-dump: chunk does not decode: %d\n", rc);
        return 1;
    }

    return 0;
}


/* a new series with copies of the labels, appended to rd_ts */

static Prometheus__TimeSeries *
rd_series(Prometheus__Label **l, size_t n)
{
    size_t                   i;
    Prometheus__TimeSeries  *ts;

    ts = rd_alloc(sizeof(Prometheus__TimeSeries));
    prometheus__time_series__init(ts);

    ts->labels = rd_alloc((n + 1) * sizeof(void *));
    ts->n_labels = n;

    for (i = 0; i < n; i++) {
        ts->labels[i] = rd_alloc(sizeof(Prometheus__Label));
        prometheus__label__init(ts->labels[i]);
        ts->labels[i]->name = rd_copy(l[i]->name, strlen(l[i]->name) + 1);
        ts->labels[i]->value = rd_copy(l[i]->value, strlen(l[i]->value) + 1);
    }

    rd_ts = realloc(rd_ts, (rd_nts + 2) * sizeof(void *));
    if (rd_ts == NULL) {
        fprintf(stderr, "rread-dump: out of memory\n");
        exit(1);
    }

    rd_ts[rd_nts++] = ts;

    return ts;
}


static void
rd_add_float(Prometheus__TimeSeries *ts, int64_t t, double v)
{
    Prometheus__Sample  *s;

    s = rd_alloc(sizeof(Prometheus__Sample));
    prometheus__sample__init(s);
    s->timestamp = t;
    s->value = v;

    ts->samples = realloc(ts->samples, (ts->n_samples + 1) * sizeof(void *));
    if (ts->samples == NULL) {
        fprintf(stderr, "rread-dump: out of memory\n");
        exit(1);
    }

    ts->samples[ts->n_samples++] = s;
}


/* h as Prometheus's HistogramToHistogramProto would send it */

static void
rd_add_hist(Prometheus__TimeSeries *ts, int64_t t, const ts_hist_t *h)
{
    uint32_t                 i;
    Prometheus__BucketSpan **sp;
    Prometheus__Histogram   *ph;

    ph = rd_alloc(sizeof(Prometheus__Histogram));
    prometheus__histogram__init(ph);

    ph->timestamp = t;
    ph->schema = h->schema;
    ph->zero_threshold = h->zero_threshold;
    memcpy(&ph->sum, &h->sum, 8);
    ph->reset_hint = (Prometheus__Histogram__ResetHint) h->reset_hint;

    if (h->is_float) {
        ph->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
        ph->count_float = h->fcount;
        ph->zero_count_case =
            PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT;
        ph->zero_count_float = h->fzero_count;
        ph->n_positive_counts = h->n_pos;
        ph->positive_counts = rd_copy(h->pos_counts, h->n_pos * 8);
        ph->n_negative_counts = h->n_neg;
        ph->negative_counts = rd_copy(h->neg_counts, h->n_neg * 8);

    } else {
        ph->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
        ph->count_int = h->count;
        ph->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
        ph->zero_count_int = h->zero_count;
        ph->n_positive_deltas = h->n_pos;
        ph->positive_deltas = rd_copy(h->pos_deltas, h->n_pos * 8);
        ph->n_negative_deltas = h->n_neg;
        ph->negative_deltas = rd_copy(h->neg_deltas, h->n_neg * 8);
    }

    sp = rd_alloc((h->n_pos_spans + h->n_neg_spans + 1) * sizeof(void *));

    for (i = 0; i < h->n_pos_spans + h->n_neg_spans; i++) {
        sp[i] = rd_alloc(sizeof(Prometheus__BucketSpan));
        prometheus__bucket_span__init(sp[i]);
        sp[i]->offset = i < h->n_pos_spans
                        ? h->pos_spans[i].offset
                        : h->neg_spans[i - h->n_pos_spans].offset;
        sp[i]->length = i < h->n_pos_spans
                        ? h->pos_spans[i].length
                        : h->neg_spans[i - h->n_pos_spans].length;
    }

    ph->n_positive_spans = h->n_pos_spans;
    ph->positive_spans = sp;
    ph->n_negative_spans = h->n_neg_spans;
    ph->negative_spans = sp + h->n_pos_spans;

    ts->histograms = realloc(ts->histograms,
                             (ts->n_histograms + 1) * sizeof(void *));
    if (ts->histograms == NULL) {
        fprintf(stderr, "rread-dump: out of memory\n");
        exit(1);
    }

    ts->histograms[ts->n_histograms++] = ph;
}


static void *
rd_copy(const void *p, size_t size)
{
    void  *d;

    d = rd_alloc(size + 1);

    if (size) {
        memcpy(d, p, size);
    }

    return d;
}


static void *
rd_alloc(size_t size)
{
    void  *p;

    p = calloc(1, size ? size : 1);
    if (p == NULL) {
        fprintf(stderr, "rread-dump: out of memory\n");
        exit(1);
    }

    return p;
}


static char *
rd_labels(Prometheus__Label **l, size_t n)
{
    char    *s;
    size_t   i, len, off;

    len = 3;

    for (i = 0; i < n; i++) {
        len += strlen(l[i]->name) + strlen(l[i]->value) + 4;
    }

    s = malloc(len);
    if (s == NULL) {
        fprintf(stderr, "rread-dump: out of memory\n");
        exit(1);
    }

    off = 0;
    s[off++] = '{';

    for (i = 0; i < n; i++) {
        off += (size_t) sprintf(s + off, "%s%s=\"%s\"", i ? "," : "",
                                l[i]->name, l[i]->value);
    }

    s[off++] = '}';
    s[off] = '\0';

    return s;
}


static void
rd_float(const char *labels, int64_t t, double v)
{
    uint64_t  bits;

    memcpy(&bits, &v, 8);
    printf("%s %lld f %016llx\n", labels, (long long) t,
           (unsigned long long) bits);
}


static void
rd_hist(const char *labels, int64_t t, const ts_hist_t *h)
{
    double  sum;

    printf("%s %lld %s", labels, (long long) t, h->is_float ? "fh" : "h");

    if (h->sum == TS_HIST_STALE_SUM) {
        printf(" stale\n");
        return;
    }

    memcpy(&sum, &h->sum, 8);

    if (h->is_float) {
        printf(" count=%.17g zero=%.17g", h->fcount, h->fzero_count);

    } else {
        printf(" count=%llu zero=%llu", (unsigned long long) h->count,
               (unsigned long long) h->zero_count);
    }

    printf(" sum=%.17g schema=%d zt=%.17g", sum, (int) h->schema,
           h->zero_threshold);
    rd_buckets("p", h->pos_spans, h->n_pos_spans, "pb", h, 0);
    rd_buckets("n", h->neg_spans, h->n_neg_spans, "nb", h, 1);
    printf("\n");
}


static void
rd_buckets(const char *name, const ts_hspan_t *sp, uint32_t ns,
    const char *bname, const ts_hist_t *h, int neg)
{
    double    v;
    int64_t   acc;
    uint32_t  i, nb;

    printf(" %s=", name);

    for (i = 0; i < ns; i++) {
        printf("%s%d_%u", i ? "/" : "", (int) sp[i].offset,
               (unsigned) sp[i].length);
    }

    printf(" %s=", bname);
    nb = neg ? h->n_neg : h->n_pos;
    acc = 0;

    for (i = 0; i < nb; i++) {
        if (h->is_float) {
            v = neg ? h->neg_counts[i] : h->pos_counts[i];

        } else {
            acc += neg ? h->neg_deltas[i] : h->pos_deltas[i];
            v = (double) acc;
        }

        printf("%s%.17g", i ? "/" : "", v);
    }
}
