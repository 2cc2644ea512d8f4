/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target for remote read: arbitrary bytes go through
 * ts_rread_open() (snappy, protobuf, negotiation, matchers and regexes)
 * and ts_rread_next() (selection, merging, encoding) against two small
 * heads built once per process, the second overlapping the first.
 *
 * Input: one mode byte, then the body.  Mode bits: 0x01 the body is a
 * raw ReadRequest, snappy-compressed here first (random bytes seldom
 * form snappy, so this lets the fuzzer reach everything after it);
 * 0x02 read both heads as two sources (merging); 0x04 trim chunks;
 * 0x08 frames of at most 256 bytes.
 *
 * The heads hold float series and native histogram series (integer and
 * float histograms, one overlapping across the heads, one switching
 * from floats to histograms, stale markers).  Whatever comes out must
 * decode: SAMPLES one ReadResponse with a result per query, samples and
 * histograms of a series in range, increasing, never two at one time;
 * STREAMED frames with a good uvarint length and CRC-32C, one series
 * each, queries in order, XOR and histogram chunks decoding cleanly
 * with min/max times of their first/last samples.  Every series must
 * satisfy its query's matchers and hold only samples in range (SAMPLES).
 * Any violation aborts.
 *
 * Built with -DTS_FUZZ_SEEDS and without libFuzzer, main() writes the
 * seed corpus (requests packed by protobuf-c) into the directory named
 * by argv[1]: fuzz/corpus/fuzz_rread was made that way.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <snappy-c.h>

#include "prometheus_remote.pb-c.h"
#include "ts_chunk.h"
#include "ts_crc32c.h"
#include "ts_hchunk.h"
#include "ts_head.h"
#include "ts_rread.h"


#define TS_FUZZ_RAW          0x01
#define TS_FUZZ_TWO          0x02
#define TS_FUZZ_TRIM         0x04
#define TS_FUZZ_SMALL        0x08

#define TS_FUZZ_ZONE         (4 * 1024 * 1024)
#define TS_FUZZ_INPUT_MAX    (1 << 20)


typedef struct {
    ts_head_t                 head[2];
    ts_source_head_t          hs[2];
    ts_source_t              *src[2];
} ts_fuzz_t;


static ts_fuzz_t  *ts_fuzz;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ts_fuzz_t *ts_fuzz_init(void);
static void ts_fuzz_series(ts_head_t *h, const char *tenant,
    const char *const *kv, int64_t t0, size_t n, int stale);
static void ts_fuzz_hseries(ts_head_t *h, const char *const *kv,
    int64_t t0, size_t n, int is_float, int stale);
static void ts_fuzz_run(ts_fuzz_t *f, int mode, const uint8_t *body,
    size_t len);
static void ts_fuzz_check(const uint8_t *body, size_t len, int type,
    const uint8_t *out, size_t olen);
static ts_selector_t **ts_fuzz_selectors(const Prometheus__ReadRequest *req);
static void ts_fuzz_series_ok(ts_selector_t *sel,
    Prometheus__Label **labels, size_t n);
static void ts_fuzz_samples(const Prometheus__ReadRequest *req,
    ts_selector_t **sels, const uint8_t *out, size_t olen);
static void ts_fuzz_frames(const Prometheus__ReadRequest *req,
    ts_selector_t **sels, const uint8_t *out, size_t olen);
static void ts_fuzz_chunk(const Prometheus__Chunk *c);


static int
ts_fuzz_alive(int64_t pid)
{
    (void) pid;

    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t  n;
    char   *buf;

    if (size < 1 || size > TS_FUZZ_INPUT_MAX) {
        return 0;
    }

    if (ts_fuzz == NULL) {
        ts_fuzz = ts_fuzz_init();
    }

    if (!(data[0] & TS_FUZZ_RAW)) {
        ts_fuzz_run(ts_fuzz, data[0], data + 1, size - 1);
        return 0;
    }

    n = snappy_max_compressed_length(size - 1);
    buf = malloc(n);
    if (buf == NULL) {
        return 0;
    }

    if (snappy_compress((const char *) data + 1, size - 1, buf, &n)
        == SNAPPY_OK)
    {
        ts_fuzz_run(ts_fuzz, data[0], (uint8_t *) buf, n);
    }

    free(buf);

    return 0;
}


static ts_fuzz_t *
ts_fuzz_init(void)
{
    int         i;
    void       *mem;
    ts_fuzz_t  *f;

    static const char *const  up_a[] = { "__name__", "up", "job", "api",
                                         "instance", "a", NULL };
    static const char *const  up_b[] = { "__name__", "up", "job", "db",
                                         "instance", "b", NULL };
    static const char *const  up_c[] = { "__name__", "up", "instance", "c",
                                         NULL };
    static const char *const  req[] = { "__name__", "http_requests_total",
                                        "job", "api", "code", "200", NULL };
    static const char *const  nl[] = { "__name__", "x", "v", "a\nb", NULL };
    static const char *const  utf[] = { "__name__", "x", "v",
                                        "caf\xc3\xa9", NULL };
    static const char *const  lat[] = { "__name__", "lat", "job", "api",
                                        NULL };
    static const char *const  flat[] = { "__name__", "lat", "job", "db",
                                         NULL };
    static const char *const  mix[] = { "__name__", "mix", NULL };

    f = calloc(1, sizeof(ts_fuzz_t));
    if (f == NULL) {
        abort();
    }

    for (i = 0; i < 2; i++) {
        mem = mmap(NULL, TS_FUZZ_ZONE, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

        if (mem == MAP_FAILED
            || ts_head_open(&f->head[i], mem, TS_FUZZ_ZONE, getpid(),
                            ts_fuzz_alive) != TS_OK)
        {
            abort();
        }
    }

    ts_fuzz_series(&f->head[0], "t", up_a, 0, 600, 1);
    ts_fuzz_series(&f->head[0], "t", up_b, 100000, 300, 0);
    ts_fuzz_series(&f->head[0], "t", up_c, 0, 10, 0);
    ts_fuzz_series(&f->head[0], "t", req, 5000, 400, 0);
    ts_fuzz_series(&f->head[0], "t", nl, 0, 3, 0);
    ts_fuzz_series(&f->head[0], "t", utf, 0, 3, 0);
    ts_fuzz_series(&f->head[0], "other", up_a, 0, 50, 0);

    /* the second head overlaps the first in time and adds a series */

    ts_fuzz_series(&f->head[1], "t", up_a, 300000, 600, 0);
    ts_fuzz_series(&f->head[1], "t", req, 0, 100, 0);
    ts_fuzz_series(&f->head[1], "t", up_c, 1000000, 5, 1);

    /* native histograms: overlapping, float, floats then histograms */

    ts_fuzz_hseries(&f->head[0], lat, 0, 300, 0, 1);
    ts_fuzz_hseries(&f->head[1], lat, 200000, 200, 0, 0);
    ts_fuzz_hseries(&f->head[1], flat, 0, 150, 1, 1);
    ts_fuzz_series(&f->head[0], "t", mix, 0, 50, 0);
    ts_fuzz_hseries(&f->head[0], mix, 50000, 50, 0, 0);

    for (i = 0; i < 2; i++) {
        ts_source_head_init(&f->hs[i], &f->head[i], "t", 1);
        f->src[i] = &f->hs[i].src;
    }

    return f;
}


/* n samples a second apart from t0, then a stale marker if asked */

static void
ts_fuzz_series(ts_head_t *h, const char *tenant, const char *const *kv,
    int64_t t0, size_t n, int stale)
{
    size_t      i;
    double      d;
    uint32_t    tn, k, ref;
    uint64_t    v;
    ts_label_t  l[8];

    for (k = 0; kv[2 * k] != NULL; k++) {
        l[k].name = kv[2 * k];
        l[k].name_len = (uint32_t) strlen(kv[2 * k]);
        l[k].value = kv[2 * k + 1];
        l[k].value_len = (uint32_t) strlen(kv[2 * k + 1]);
    }

    ts_labels_sort(l, k);

    if (ts_head_tenant(h, tenant, strlen(tenant), &tn) != TS_OK
        || ts_head_series(h, tn, l, k, ts_labels_hash(l, k), 0, &ref) < 0)
    {
        abort();
    }

    for (i = 0; i < n; i++) {
        d = (double) (i % 17) * 1.5;
        memcpy(&v, &d, sizeof(v));

        if (ts_head_append(h, ref, t0 + (int64_t) i * 1000, v) != TS_OK) {
            abort();
        }
    }

    if (stale
        && ts_head_append(h, ref, t0 + (int64_t) n * 1000,
                          0x7ff0000000000002ull) != TS_OK)
    {
        abort();
    }
}


/*
 * n histograms a second apart from t0 in tenant "t", buckets growing
 * (one appears at i = 100: a recode), then a stale marker if asked
 */

static void
ts_fuzz_hseries(ts_head_t *h, const char *const *kv, int64_t t0, size_t n,
    int is_float, int stale)
{
    size_t      i;
    double      c[5], sum;
    int64_t     d[5];
    uint32_t    tn, k, ref;
    ts_hist_t   hist;
    ts_label_t  l[8];
    ts_hspan_t  sp[2];

    for (k = 0; kv[2 * k] != NULL; k++) {
        l[k].name = kv[2 * k];
        l[k].name_len = (uint32_t) strlen(kv[2 * k]);
        l[k].value = kv[2 * k + 1];
        l[k].value_len = (uint32_t) strlen(kv[2 * k + 1]);
    }

    ts_labels_sort(l, k);

    if (ts_head_tenant(h, "t", 1, &tn) != TS_OK
        || ts_head_series(h, tn, l, k, ts_labels_hash(l, k), 0, &ref) < 0)
    {
        abort();
    }

    for (i = 0; i <= n; i++) {
        memset(&hist, 0, sizeof(hist));

        if (i == n) {
            if (!stale) {
                break;
            }

            hist.sum = TS_HIST_STALE_SUM;
            hist.is_float = (uint8_t) is_float;

        } else {
            c[0] = (double) i;
            c[1] = (double) (2 * i);
            c[2] = 1;
            c[3] = (double) (i / 3);
            c[4] = (double) (i >= 100 ? i - 100 : 0);
            sum = 0.5 * (double) i;

            sp[0].offset = -1;
            sp[0].length = 3;
            sp[1].offset = 2;
            sp[1].length = i >= 100 ? 2 : 1;

            hist.schema = 2;
            hist.zero_threshold = 1e-3;
            hist.is_float = (uint8_t) is_float;
            hist.n_pos_spans = 2;
            hist.pos_spans = sp;
            hist.n_pos = i >= 100 ? 5 : 4;
            memcpy(&hist.sum, &sum, 8);

            if (is_float) {
                hist.fcount = c[0] + c[1] + c[2] + c[3] + c[4] + 1.5;
                hist.fzero_count = 1.5;
                hist.pos_counts = c;

            } else {
                hist.count = (uint64_t) (c[0] + c[1] + c[2] + c[3] + c[4])
                             + 1;
                hist.zero_count = 1;

                for (k = 0; k < 5; k++) {
                    d[k] = (int64_t) c[k] - (k ? (int64_t) c[k - 1] : 0);
                }

                hist.pos_deltas = d;
            }
        }

        if (ts_head_append_hist(h, ref, t0 + (int64_t) i * 1000, &hist)
            != TS_OK)
        {
            abort();
        }
    }
}


static void
ts_fuzz_run(ts_fuzz_t *f, int mode, const uint8_t *body, size_t len)
{
    int               rc;
    size_t            n, olen;
    uint8_t          *out;
    ts_rread_t       *rr;
    const uint8_t    *p;
    ts_rread_conf_t   conf;
    ts_rread_error_t  e;

    ts_rread_conf_default(&conf);
    conf.max_body_size = 1 << 20;
    conf.max_decode_memory = 16 << 20;
    conf.max_queries = 16;
    conf.max_series = 64;
    conf.max_samples = 20000;
    conf.trim_chunks = (mode & TS_FUZZ_TRIM) != 0;
    conf.max_bytes_in_frame = (mode & TS_FUZZ_SMALL) ? 256 : 1 << 20;
    conf.select.match_limit = 10000;
    conf.select.depth_limit = 1000;
    conf.select.max_regex_len = 1024;

    rc = ts_rread_open(&rr, body, len, f->src, (mode & TS_FUZZ_TWO) ? 2 : 1,
                       &conf, NULL, &e);
    if (rc != TS_OK) {
        if (rc >= 0 || e.msg[0] == '\0') {
            abort();
        }

        return;
    }

    out = NULL;
    olen = 0;

    while ((rc = ts_rread_next(rr, &p, &n, &e)) == 1) {
        out = realloc(out, olen + n);
        if (out == NULL) {
            abort();
        }

        memcpy(out + olen, p, n);
        olen += n;
    }

    if (rc == 0) {
        ts_fuzz_check(body, len, ts_rread_type(rr), out, olen);

    } else if (e.msg[0] == '\0' || (rc != TS_ERR_LIMIT && e.client)) {
        abort();
    }

    free(out);
    ts_rread_free(rr);
}


static void
ts_fuzz_check(const uint8_t *body, size_t len, int type, const uint8_t *out,
    size_t olen)
{
    size_t                    n, i;
    char                     *raw;
    ts_selector_t           **sels;
    Prometheus__ReadRequest  *req;

    if (snappy_uncompressed_length((const char *) body, len, &n)
        != SNAPPY_OK || (raw = malloc(n ? n : 1)) == NULL
        || snappy_uncompress((const char *) body, len, raw, &n) != SNAPPY_OK)
    {
        abort();
    }

    req = prometheus__read_request__unpack(NULL, n, (uint8_t *) raw);
    free(raw);

    if (req == NULL) {
        abort();
    }

    sels = ts_fuzz_selectors(req);

    if (type == TS_RREAD_SAMPLES) {
        ts_fuzz_samples(req, sels, out, olen);

    } else {
        ts_fuzz_frames(req, sels, out, olen);
    }

    for (i = 0; i < req->n_queries; i++) {
        ts_selector_free(sels[i]);
    }

    free(sels);
    prometheus__read_request__free_unpacked(req, NULL);
}


static ts_selector_t **
ts_fuzz_selectors(const Prometheus__ReadRequest *req)
{
    size_t                     i, k;
    ts_matcher_t               m[64];
    ts_selector_t            **sels;
    const Prometheus__Query   *q;

    sels = calloc(req->n_queries + 1, sizeof(ts_selector_t *));
    if (sels == NULL) {
        abort();
    }

    for (i = 0; i < req->n_queries; i++) {
        q = req->queries[i];

        for (k = 0; k < q->n_matchers && k < 64; k++) {
            m[k].type = (ts_match_type_t) q->matchers[k]->type;
            m[k].name = q->matchers[k]->name;
            m[k].name_len = strlen(m[k].name);
            m[k].value = q->matchers[k]->value;
            m[k].value_len = strlen(m[k].value);
        }

        /* ts_rread_open() took them, so they compile */

        if (ts_selector_compile(&sels[i], m, (uint32_t) k, NULL, NULL, 0)
            != TS_OK)
        {
            abort();
        }
    }

    return sels;
}


static void
ts_fuzz_series_ok(ts_selector_t *sel, Prometheus__Label **labels, size_t n)
{
    int         rc;
    size_t      i;
    ts_label_t  l[TS_SELECT_MAX_LABELS];

    if (n == 0 || n > TS_SELECT_MAX_LABELS) {
        abort();
    }

    for (i = 0; i < n; i++) {
        l[i].name = labels[i]->name;
        l[i].name_len = (uint32_t) strlen(labels[i]->name);
        l[i].value = labels[i]->value;
        l[i].value_len = (uint32_t) strlen(labels[i]->value);

        if (i > 0 && strcmp(labels[i - 1]->name, labels[i]->name) >= 0) {
            abort();
        }
    }

    rc = ts_selector_match(sel, l, (uint32_t) n);

    if (rc != 1 && rc != TS_ERR_LIMIT) {
        abort();
    }
}


static void
ts_fuzz_samples(const Prometheus__ReadRequest *req, ts_selector_t **sels,
    const uint8_t *out, size_t olen)
{
    size_t                     n, i, k, s, h;
    char                      *raw;
    int64_t                    t;
    Prometheus__Query         *q;
    Prometheus__TimeSeries    *ts;
    Prometheus__ReadResponse  *resp;

    if (snappy_uncompressed_length((const char *) out, olen, &n) != SNAPPY_OK
        || (raw = malloc(n ? n : 1)) == NULL
        || snappy_uncompress((const char *) out, olen, raw, &n) != SNAPPY_OK)
    {
        abort();
    }

    resp = prometheus__read_response__unpack(NULL, n, (uint8_t *) raw);
    free(raw);

    if (resp == NULL || resp->n_results != req->n_queries) {
        abort();
    }

    for (i = 0; i < resp->n_results; i++) {
        q = req->queries[i];

        for (k = 0; k < resp->results[i]->n_timeseries; k++) {
            ts = resp->results[i]->timeseries[k];
            ts_fuzz_series_ok(sels[i], ts->labels, ts->n_labels);

            if (ts->n_samples == 0 && ts->n_histograms == 0) {
                abort();
            }

            for (s = 0; s < ts->n_samples; s++) {
                if (ts->samples[s]->timestamp < q->start_timestamp_ms
                    || ts->samples[s]->timestamp > q->end_timestamp_ms
                    || (s > 0 && ts->samples[s]->timestamp
                                 <= ts->samples[s - 1]->timestamp))
                {
                    abort();
                }
            }

            /* histograms likewise, never at a float sample's time */

            for (s = 0, h = 0; s < ts->n_histograms; s++) {
                t = ts->histograms[s]->timestamp;

                if (t < q->start_timestamp_ms || t > q->end_timestamp_ms
                    || (s > 0 && t <= ts->histograms[s - 1]->timestamp)
                    || (ts->histograms[s]->count_case
                        == PROMETHEUS__HISTOGRAM__COUNT__NOT_SET))
                {
                    abort();
                }

                while (h < ts->n_samples && ts->samples[h]->timestamp < t) {
                    h++;
                }

                if (h < ts->n_samples && ts->samples[h]->timestamp == t) {
                    abort();
                }
            }
        }
    }

    prometheus__read_response__free_unpacked(resp, NULL);
}


static void
ts_fuzz_frames(const Prometheus__ReadRequest *req, ts_selector_t **sels,
    const uint8_t *out, size_t olen)
{
    int                               shift;
    size_t                            pos, k;
    int64_t                           qi;
    uint32_t                          crc;
    uint64_t                          len;
    Prometheus__ChunkedSeries        *cs;
    Prometheus__ChunkedReadResponse  *f;

    pos = 0;
    qi = 0;

    while (pos < olen) {
        len = 0;

        for (shift = 0; ; shift += 7) {
            if (pos == olen || shift > 63) {
                abort();
            }

            len |= (uint64_t) (out[pos] & 0x7f) << shift;

            if ((out[pos++] & 0x80) == 0) {
                break;
            }
        }

        if (len == 0 || len > olen - pos || olen - pos - len < 4) {
            abort();
        }

        crc = (uint32_t) out[pos] << 24 | (uint32_t) out[pos + 1] << 16
              | (uint32_t) out[pos + 2] << 8 | out[pos + 3];
        pos += 4;

        if (crc != ts_crc32c(0, out + pos, len)) {
            abort();
        }

        f = prometheus__chunked_read_response__unpack(NULL, len, out + pos);

        if (f == NULL || f->n_chunked_series != 1 || f->query_index < qi
            || f->query_index >= (int64_t) req->n_queries)
        {
            abort();
        }

        qi = f->query_index;
        cs = f->chunked_series[0];
        ts_fuzz_series_ok(sels[qi], cs->labels, cs->n_labels);

        if (cs->n_chunks == 0) {
            abort();
        }

        for (k = 0; k < cs->n_chunks; k++) {
            ts_fuzz_chunk(cs->chunks[k]);
        }

        prometheus__chunked_read_response__free_unpacked(f, NULL);
        pos += len;
    }
}


static void
ts_fuzz_chunk(const Prometheus__Chunk *c)
{
    int             rc;
    void           *mem;
    size_t          n, need;
    int64_t         t, first, last;
    uint64_t        v;
    ts_hist_t       h;
    ts_xor_iter_t   it;
    ts_hist_iter_t  hit;

    first = 0;
    last = 0;

    switch (c->type) {

    case PROMETHEUS__CHUNK__ENCODING__XOR:
        ts_xor_iter_init(&it, c->data.data, c->data.len);

        for (n = 0; (rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1; n++) {
            first = n == 0 ? t : first;
            last = t;
        }

        break;

    case PROMETHEUS__CHUNK__ENCODING__HISTOGRAM:
    case PROMETHEUS__CHUNK__ENCODING__FLOAT_HISTOGRAM:
        need = ts_hist_iter_need(c->data.data, c->data.len, c->type);

        mem = malloc(need);
        if (mem == NULL) {
            abort();
        }

        ts_hist_iter_init(&hit, c->data.data, c->data.len, c->type, mem,
                          need);

        for (n = 0; (rc = ts_hist_iter_next(&hit, &t, &h)) == 1; n++) {
            if (h.is_float
                != (c->type == PROMETHEUS__CHUNK__ENCODING__FLOAT_HISTOGRAM))
            {
                abort();
            }

            first = n == 0 ? t : first;
            last = t;
        }

        free(mem);
        break;

    default:
        abort();
    }

    if (rc != 0 || n == 0 || c->min_time_ms != first
        || c->max_time_ms != last)
    {
        abort();
    }
}


#ifdef TS_FUZZ_SEEDS

/* the seed corpus: a few requests as Prometheus's client sends them */

static void ts_fuzz_seed(const char *dir, const char *name, int mode,
    int64_t start, int64_t end, const char *const *m, int type);


int
main(int argc, char **argv)
{
    static const char *const  eq[] = { "0", "__name__", "up", NULL };
    static const char *const  re[] = { "0", "__name__", "up",
                                       "2", "job", "api|db", NULL };
    static const char *const  neg[] = { "1", "job", "api",
                                        "3", "instance", "[ab]", NULL };
    static const char *const  empty[] = { "0", "job", "", NULL };
    static const char *const  dot[] = { "2", "v", "a.b", NULL };
    static const char *const  nre[] = { "0", "__name__", "up",
                                        "3", "job", ".+", NULL };
    static const char *const  lat[] = { "2", "__name__", "lat|mix", NULL };

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 1;
    }

    ts_fuzz_seed(argv[1], "samples-eq", 0, 0, 1000000, eq, 0);
    ts_fuzz_seed(argv[1], "streamed-eq", 0, 0, 10000000, eq, 1);
    ts_fuzz_seed(argv[1], "streamed-re-two-trim", TS_FUZZ_TWO | TS_FUZZ_TRIM,
                 50000, 400000, re, 1);
    ts_fuzz_seed(argv[1], "samples-neg-two", TS_FUZZ_TWO, 0, 2000000, neg,
                 0);
    ts_fuzz_seed(argv[1], "streamed-empty-small", TS_FUZZ_SMALL, 0, 1000000,
                 empty, 1);
    ts_fuzz_seed(argv[1], "raw-samples-dot", TS_FUZZ_RAW, 0, 10000, dot, 0);
    ts_fuzz_seed(argv[1], "raw-streamed-nre-small",
                 TS_FUZZ_RAW | TS_FUZZ_SMALL | TS_FUZZ_TWO, 0, 1000000, nre,
                 1);
    ts_fuzz_seed(argv[1], "samples-hist-two", TS_FUZZ_TWO, 0, 1000000, lat,
                 0);
    ts_fuzz_seed(argv[1], "streamed-hist-two-trim",
                 TS_FUZZ_TWO | TS_FUZZ_TRIM, 100000, 350000, lat, 1);
    ts_fuzz_seed(argv[1], "raw-streamed-hist-small",
                 TS_FUZZ_RAW | TS_FUZZ_SMALL | TS_FUZZ_TWO, 0, 1000000, lat,
                 1);

    return 0;
}


/* m: (type, name, value) triples as strings, NULL-terminated */

static void
ts_fuzz_seed(const char *dir, const char *name, int mode, int64_t start,
    int64_t end, const char *const *m, int type)
{
    char                                   path[512];
    size_t                                 n, c, k;
    FILE                                  *fp;
    uint8_t                               *raw, *z;
    Prometheus__Query                      q, *qs[1];
    Prometheus__ReadHints                  h;
    Prometheus__LabelMatcher               lm[8], *lmp[8];
    Prometheus__ReadRequest                req;
    Prometheus__ReadRequest__ResponseType  rt[2];

    prometheus__query__init(&q);
    prometheus__read_hints__init(&h);
    prometheus__read_request__init(&req);

    for (k = 0; m[3 * k] != NULL; k++) {
        prometheus__label_matcher__init(&lm[k]);
        lm[k].type = (Prometheus__LabelMatcher__Type) atoi(m[3 * k]);
        lm[k].name = (char *) m[3 * k + 1];
        lm[k].value = (char *) m[3 * k + 2];
        lmp[k] = &lm[k];
    }

    h.start_ms = start;
    h.end_ms = end;
    h.step_ms = 15000;
    h.func = "rate";

    q.start_timestamp_ms = start;
    q.end_timestamp_ms = end;
    q.n_matchers = k;
    q.matchers = lmp;
    q.hints = &h;
    qs[0] = &q;

    rt[0] = (Prometheus__ReadRequest__ResponseType) type;
    rt[1] = PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__SAMPLES;
    req.n_queries = 1;
    req.queries = qs;
    req.n_accepted_response_types = 2;
    req.accepted_response_types = rt;

    n = prometheus__read_request__get_packed_size(&req);
    raw = malloc(n);
    c = snappy_max_compressed_length(n);
    z = malloc(c + 1);

    if (raw == NULL || z == NULL) {
        abort();
    }

    prometheus__read_request__pack(&req, raw);
    z[0] = (uint8_t) mode;

    if (mode & TS_FUZZ_RAW) {
        memcpy(z + 1, raw, n);
        c = n;

    } else if (snappy_compress((char *) raw, n, (char *) z + 1, &c)
               != SNAPPY_OK)
    {
        abort();
    }

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    fp = fopen(path, "wb");
    if (fp == NULL || fwrite(z, 1, c + 1, fp) != c + 1 || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }

    free(raw);
    free(z);
}

#endif /* TS_FUZZ_SEEDS */
