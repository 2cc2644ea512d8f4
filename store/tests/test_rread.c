/*
 * Copyright (C) ngx_tsdb authors
 *
 * ts_rread: requests built with the protobuf-c encoder and snappy;
 * negotiation; SAMPLES responses decoded back to the exact samples
 * (stale NaN, NaN payloads, -0.0 bit for bit), sorted series, one
 * QueryResult per query; STREAMED frames checked byte by byte (uvarint
 * length, CRC-32C, one series per frame, series sorted, frames split at
 * max_bytes_in_frame, chunk bytes as stored and decoding to the right
 * samples, min/max times); trimming; hints; tenants; limits; corrupt and
 * oversized bodies; the caller's allocator; two sources merged.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <snappy-c.h>

#include "prometheus_remote.pb-c.h"
#include "ts_chunk.h"
#include "ts_crc32c.h"
#include "ts_head.h"
#include "ts_rread.h"


#define T_SIZE      (16 * 1024 * 1024)
#define T_MAXL      8
#define T_MAXF      4096
#define T_MAXS      (1 << 17)
#define T_STALE     0x7ff0000000000002ull
#define T_NAN_PAY   0x7ff8000000000abcull
#define T_NEG_ZERO  0x8000000000000000ull

/* prometheus.LabelMatcher.Type, as t_query() takes them */
#define EQ_T        PROMETHEUS__LABEL_MATCHER__TYPE__EQ
#define NEQ_T       PROMETHEUS__LABEL_MATCHER__TYPE__NEQ
#define RE_T        PROMETHEUS__LABEL_MATCHER__TYPE__RE
#define NRE_T       PROMETHEUS__LABEL_MATCHER__TYPE__NRE


typedef struct {
    void          *mem;
    ts_head_t      head;
} t_zone_t;


typedef struct {
    uint8_t       *p;
    size_t         len;
} t_bytes_t;


typedef struct {
    Prometheus__ChunkedReadResponse  *f[T_MAXF];
    size_t                            n;
} t_frames_t;


typedef struct {
    int64_t        t[T_MAXS];
    uint64_t       v[T_MAXS];
    size_t         n;
} t_samples_t;


static t_zone_t     t_z[2];
static t_samples_t  t_got;


static int
t_alive(int64_t pid)
{
    (void) pid;

    return 1;
}


static int
t_setup(void **state)
{
    int  i;

    (void) state;

    for (i = 0; i < 2; i++) {
        t_z[i].mem = mmap(NULL, T_SIZE, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (t_z[i].mem == MAP_FAILED) {
            return -1;
        }

        if (ts_head_open(&t_z[i].head, t_z[i].mem, T_SIZE, getpid(),
                         t_alive) != TS_OK)
        {
            return -1;
        }
    }

    return 0;
}


static int
t_teardown(void **state)
{
    (void) state;

    munmap(t_z[0].mem, T_SIZE);
    munmap(t_z[1].mem, T_SIZE);

    return 0;
}


static uint64_t
t_bits(double d)
{
    uint64_t  v;

    memcpy(&v, &d, sizeof(v));

    return v;
}


/* a series from name/value pairs (NULL-terminated), in zone z */

static uint32_t
t_add(int z, const char *tenant, const char *const *kv)
{
    uint32_t    tn, n, ref;
    ts_label_t  l[T_MAXL];

    for (n = 0; kv[2 * n] != NULL; n++) {
        l[n].name = kv[2 * n];
        l[n].name_len = (uint32_t) strlen(kv[2 * n]);
        l[n].value = kv[2 * n + 1];
        l[n].value_len = (uint32_t) strlen(kv[2 * n + 1]);
    }

    ts_labels_sort(l, n);

    assert_int_equal(ts_head_tenant(&t_z[z].head, tenant, strlen(tenant),
                                    &tn), TS_OK);
    assert_true(ts_head_series(&t_z[z].head, tn, l, n,
                               ts_labels_hash(l, n), 0, &ref) >= 0);

    return ref;
}


static void
t_append(int z, uint32_t ref, int64_t t, uint64_t v)
{
    assert_int_equal(ts_head_append(&t_z[z].head, ref, t, v), TS_OK);
}


/* n samples every step ms from t0, value i * 0.5 */

static void
t_fill(int z, uint32_t ref, int64_t t0, int64_t step, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        t_append(z, ref, t0 + (int64_t) i * step, t_bits((double) i * 0.5));
    }
}


/* packs and snappy-compresses a request with the real encoders */

static void
t_pack(const Prometheus__ReadRequest *req, t_bytes_t *out)
{
    size_t    n, c;
    uint8_t  *raw;

    n = prometheus__read_request__get_packed_size(req);
    raw = malloc(n ? n : 1);
    assert_non_null(raw);
    assert_int_equal(prometheus__read_request__pack(req, raw), n);

    c = snappy_max_compressed_length(n);
    out->p = malloc(c);
    assert_non_null(out->p);
    assert_int_equal(snappy_compress((char *) raw, n, (char *) out->p, &c),
                     SNAPPY_OK);
    out->len = c;

    free(raw);
}


/* one query, matchers as (type, name, value) triples ending with -1 */

typedef struct {
    Prometheus__LabelMatcher   m[8];
    Prometheus__LabelMatcher  *mp[8];
    Prometheus__Query          q;
} t_query_t;


static void
t_query(t_query_t *tq, int64_t start, int64_t end, ...)
{
    int       type;
    size_t    n;
    va_list   args;

    prometheus__query__init(&tq->q);
    tq->q.start_timestamp_ms = start;
    tq->q.end_timestamp_ms = end;

    va_start(args, end);

    for (n = 0; (type = va_arg(args, int)) >= 0; n++) {
        prometheus__label_matcher__init(&tq->m[n]);
        tq->m[n].type = (Prometheus__LabelMatcher__Type) type;
        tq->m[n].name = (char *) va_arg(args, const char *);
        tq->m[n].value = (char *) va_arg(args, const char *);
        tq->mp[n] = &tq->m[n];
    }

    va_end(args);

    tq->q.n_matchers = n;
    tq->q.matchers = tq->mp;
}


static void
t_request(t_bytes_t *body, t_query_t **tq, size_t nq, int type)
{
    size_t                                 i;
    Prometheus__Query                     *qs[8];
    Prometheus__ReadRequest                req;
    Prometheus__ReadRequest__ResponseType  rt;

    prometheus__read_request__init(&req);

    for (i = 0; i < nq; i++) {
        qs[i] = &tq[i]->q;
    }

    req.n_queries = nq;
    req.queries = qs;

    if (type >= 0) {
        rt = (Prometheus__ReadRequest__ResponseType) type;
        req.n_accepted_response_types = 1;
        req.accepted_response_types = &rt;
    }

    t_pack(&req, body);
}


/* runs a request to the end; all output concatenated in out */

static int
t_run(const t_bytes_t *body, ts_source_t **src, uint32_t nsrc,
    const ts_rread_conf_t *conf, t_bytes_t *out, ts_rread_error_t *e,
    ts_rread_stats_t *st)
{
    int                rc;
    size_t             len;
    ts_rread_t        *rr;
    const uint8_t     *p;

    out->p = NULL;
    out->len = 0;

    rc = ts_rread_open(&rr, body->p, body->len, src, nsrc, conf, NULL, e);
    if (rc != TS_OK) {
        return rc;
    }

    while ((rc = ts_rread_next(rr, &p, &len, e)) == 1) {
        out->p = realloc(out->p, out->len + len);
        assert_non_null(out->p);
        memcpy(out->p + out->len, p, len);
        out->len += len;
    }

    if (st != NULL) {
        ts_rread_stats(rr, st);
    }

    ts_rread_free(rr);

    return rc;
}


static Prometheus__ReadResponse *
t_samples_response(const t_bytes_t *out)
{
    size_t                     n;
    char                      *raw;
    Prometheus__ReadResponse  *resp;

    assert_int_equal(snappy_uncompressed_length((char *) out->p, out->len,
                                                &n), SNAPPY_OK);
    raw = malloc(n ? n : 1);
    assert_int_equal(snappy_uncompress((char *) out->p, out->len, raw, &n),
                     SNAPPY_OK);

    resp = prometheus__read_response__unpack(NULL, n, (uint8_t *) raw);
    assert_non_null(resp);
    free(raw);

    return resp;
}


/* splits a stream into frames, checking lengths and CRC-32C */

static void
t_frames(const t_bytes_t *out, t_frames_t *fr)
{
    int       shift;
    size_t    pos;
    uint32_t  crc;
    uint64_t  len;

    fr->n = 0;
    pos = 0;

    while (pos < out->len) {
        len = 0;

        for (shift = 0; ; shift += 7) {
            assert_true(pos < out->len && shift < 64);
            len |= (uint64_t) (out->p[pos] & 0x7f) << shift;

            if ((out->p[pos++] & 0x80) == 0) {
                break;
            }
        }

        assert_true(len > 0 && pos + 4 + len <= out->len);

        crc = (uint32_t) out->p[pos] << 24 | (uint32_t) out->p[pos + 1] << 16
              | (uint32_t) out->p[pos + 2] << 8 | out->p[pos + 3];
        assert_int_equal(crc, ts_crc32c(0, out->p + pos + 4, len));
        pos += 4;

        assert_true(fr->n < T_MAXF);
        fr->f[fr->n] = prometheus__chunked_read_response__unpack(NULL, len,
                                                            out->p + pos);
        assert_non_null(fr->f[fr->n]);
        assert_int_equal(fr->f[fr->n]->n_chunked_series, 1);
        fr->n++;
        pos += len;
    }
}


static void
t_frames_free(t_frames_t *fr)
{
    size_t  i;

    for (i = 0; i < fr->n; i++) {
        prometheus__chunked_read_response__free_unpacked(fr->f[i], NULL);
    }

    fr->n = 0;
}


/* decodes a chunk, checks its min/max times, appends its samples */

static void
t_chunk_samples(const Prometheus__Chunk *c, t_samples_t *s)
{
    int            rc;
    size_t         first;
    int64_t        t;
    uint64_t       v;
    ts_xor_iter_t  it;

    assert_int_equal(c->type, PROMETHEUS__CHUNK__ENCODING__XOR);

    first = s->n;
    ts_xor_iter_init(&it, c->data.data, c->data.len);

    while ((rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1) {
        assert_true(s->n < T_MAXS);
        s->t[s->n] = t;
        s->v[s->n++] = v;
    }

    assert_int_equal(rc, 0);
    assert_true(s->n > first);
    assert_int_equal(c->min_time_ms, s->t[first]);
    assert_int_equal(c->max_time_ms, s->t[s->n - 1]);
}


static int
t_label_cmp(Prometheus__Label **a, size_t na, Prometheus__Label **b,
    size_t nb)
{
    int     rc;
    size_t  i;

    for (i = 0; i < na && i < nb; i++) {
        rc = strcmp(a[i]->name, b[i]->name);
        if (rc == 0) {
            rc = strcmp(a[i]->value, b[i]->value);
        }

        if (rc != 0) {
            return rc;
        }
    }

    return (na > nb) - (na < nb);
}


static const char *
t_label(Prometheus__Label **l, size_t n, const char *name)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (strcmp(l[i]->name, name) == 0) {
            return l[i]->value;
        }
    }

    return NULL;
}


/*
 * Checks the stream's invariants and gathers the samples of the series
 * whose "id" is id: one series per frame, a series' frames adjacent,
 * series in label order within a query, queries in order.
 */

static size_t
t_streamed(t_frames_t *fr, const char *id, t_samples_t *s)
{
    size_t                   i, k, series;
    Prometheus__ChunkedSeries  *cs, *prev;

    s->n = 0;
    series = 0;
    prev = NULL;

    for (i = 0; i < fr->n; i++) {
        cs = fr->f[i]->chunked_series[0];
        assert_true(cs->n_chunks > 0);

        if (i > 0 && fr->f[i]->query_index < fr->f[i - 1]->query_index) {
            fail_msg("frame %zu: query index goes back", i);
        }

        if (prev == NULL || fr->f[i]->query_index != fr->f[i - 1]->query_index
            || t_label_cmp(prev->labels, prev->n_labels, cs->labels,
                           cs->n_labels) != 0)
        {
            if (prev != NULL
                && fr->f[i]->query_index == fr->f[i - 1]->query_index)
            {
                assert_true(t_label_cmp(prev->labels, prev->n_labels,
                                        cs->labels, cs->n_labels) < 0);
            }

            series++;
        }

        prev = cs;

        if (id == NULL
            || strcmp(t_label(cs->labels, cs->n_labels, "id"), id) != 0)
        {
            continue;
        }

        for (k = 0; k < cs->n_chunks; k++) {
            t_chunk_samples(cs->chunks[k], s);
        }
    }

    return series;
}


static ts_source_t *
t_src(ts_source_head_t *hs, int z, const char *tenant)
{
    ts_source_head_init(hs, &t_z[z].head, tenant, strlen(tenant));

    return &hs->src;
}


static void
test_negotiation(void **state)
{
    int                                    rc;
    size_t                                 i;
    t_bytes_t                              body;
    ts_rread_t                            *rr;
    ts_rread_error_t                       e;
    Prometheus__ReadRequest                req;
    Prometheus__ReadRequest__ResponseType  types[2];

    static const struct {
        const char  *name;
        int          n;
        int          t[2];
        int          want;          /* -1: refused */
    } cases[] = {
        { "empty_is_samples", 0, { 0, 0 }, TS_RREAD_SAMPLES },
        { "samples", 1, { 0, 0 }, TS_RREAD_SAMPLES },
        { "streamed", 1, { 1, 0 }, TS_RREAD_STREAMED_XOR_CHUNKS },
        { "first_wins_streamed", 2, { 1, 0 }, TS_RREAD_STREAMED_XOR_CHUNKS },
        { "first_wins_samples", 2, { 0, 1 }, TS_RREAD_SAMPLES },
        { "unknown_skipped", 2, { 7, 1 }, TS_RREAD_STREAMED_XOR_CHUNKS },
        { "none_supported", 1, { 7, 0 }, -1 },
    };

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        prometheus__read_request__init(&req);
        types[0] = (Prometheus__ReadRequest__ResponseType) cases[i].t[0];
        types[1] = (Prometheus__ReadRequest__ResponseType) cases[i].t[1];
        req.n_accepted_response_types = (size_t) cases[i].n;
        req.accepted_response_types = types;
        t_pack(&req, &body);

        rc = ts_rread_open(&rr, body.p, body.len, NULL, 0, NULL, NULL, &e);
        free(body.p);

        if (cases[i].want < 0) {
            assert_int_equal(rc, TS_ERR_UNSUPPORTED);
            assert_int_equal(e.client, 1);
            assert_non_null(strstr(e.msg, "response types"));
            continue;
        }

        if (rc != TS_OK || (int) ts_rread_type(rr) != cases[i].want) {
            fail_msg("%s: rc %d", cases[i].name, rc);
        }

        if (cases[i].want == TS_RREAD_SAMPLES) {
            assert_string_equal(ts_rread_content_type(rr),
                                "application/x-protobuf");
            assert_string_equal(ts_rread_content_encoding(rr), "snappy");

        } else {
            assert_string_equal(ts_rread_content_type(rr),
                                "application/x-streamed-protobuf; "
                                "proto=prometheus.ChunkedReadResponse");
            assert_null(ts_rread_content_encoding(rr));
        }

        ts_rread_free(rr);
    }
}


static void
test_samples_roundtrip(void **state)
{
    size_t                     i, k;
    uint32_t                   a, b, c;
    t_bytes_t                  body, out;
    t_query_t                  q0, q1, *qs[2];
    ts_source_t               *src;
    ts_source_head_t           hs;
    ts_rread_error_t           e;
    Prometheus__TimeSeries    *ts;
    Prometheus__ReadResponse  *resp;

    static const char *const  ka[] = { "__name__", "up", "job", "b",
                                       "id", "a", NULL };
    static const char *const  kb[] = { "__name__", "up", "job", "a",
                                       "id", "b", NULL };
    static const char *const  kc[] = { "__name__", "down", "id", "c", NULL };
    static const uint64_t     vals[] = {
        0x3ff0000000000000ull, T_STALE, T_NAN_PAY, T_NEG_ZERO, 0,
        0x7ff0000000000000ull, 0x0000000000000001ull
    };

    (void) state;

    a = t_add(0, "t", ka);
    b = t_add(0, "t", kb);
    c = t_add(0, "t", kc);

    for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        t_append(0, a, 1000 + (int64_t) i * 1000, vals[i]);
        t_append(0, b, 1000 + (int64_t) i * 1000, vals[i]);
    }

    t_append(0, c, 500, t_bits(1));

    /* q0: up in [2000, 6000]; q1 matches nothing */

    t_query(&q0, 2000, 6000, EQ_T, "__name__", "up", -1);
    t_query(&q1, 0, 10000, EQ_T, "__name__", "nope", -1);
    qs[0] = &q0;
    qs[1] = &q1;
    t_request(&body, qs, 2, TS_RREAD_SAMPLES);

    src = t_src(&hs, 0, "t");
    assert_int_equal(t_run(&body, &src, 1, NULL, &out, &e, NULL), 0);

    resp = t_samples_response(&out);
    assert_int_equal(resp->n_results, 2);
    assert_int_equal(resp->results[1]->n_timeseries, 0);
    assert_int_equal(resp->results[0]->n_timeseries, 2);

    /* sorted by labels: __name__ equal, then id "a" < "b" */

    for (k = 0; k < 2; k++) {
        ts = resp->results[0]->timeseries[k];
        assert_string_equal(t_label(ts->labels, ts->n_labels, "id"),
                            k == 0 ? "a" : "b");
        assert_string_equal(ts->labels[0]->name, "__name__");
        assert_int_equal(ts->n_samples, 5);

        for (i = 0; i < 5; i++) {
            assert_int_equal(ts->samples[i]->timestamp,
                             2000 + (int64_t) i * 1000);
            assert_int_equal(t_bits(ts->samples[i]->value), vals[i + 1]);
        }
    }

    prometheus__read_response__free_unpacked(resp, NULL);
    free(out.p);
    free(body.p);
}


static void
test_samples_range_and_hints(void **state)
{
    size_t                     i;
    uint32_t                   a;
    t_bytes_t                  body, out;
    t_query_t                  q, *qs[1];
    ts_source_t               *src;
    ts_source_head_t           hs;
    ts_rread_error_t           e;
    Prometheus__ReadHints      h;
    Prometheus__ReadResponse  *resp;

    static const char *const  ka[] = { "__name__", "m", NULL };

    static const struct {
        int64_t  start, end, hstart, hend;
        int      hints;
        size_t   want;
        int64_t  first;
    } cases[] = {
        { 0, 100000, 0, 0, 0, 100, 0 },
        { 10000, 19999, 0, 0, 0, 10, 10000 },
        { 10000, 19999, 0, 0, 1, 10, 10000 },    /* 0/0 hints: unset */
        { 0, 100000, 5000, 7000, 1, 3, 5000 },
        { 6000, 100000, 5000, 7000, 1, 2, 6000 },
        { 50000, 40000, 0, 0, 0, 0, 0 },
        { 0, 100000, 200000, 300000, 1, 0, 0 },
    };

    (void) state;

    a = t_add(0, "t", ka);
    t_fill(0, a, 0, 1000, 100);
    src = t_src(&hs, 0, "t");

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t_query(&q, cases[i].start, cases[i].end, EQ_T, "__name__", "m", -1);

        if (cases[i].hints) {
            prometheus__read_hints__init(&h);
            h.start_ms = cases[i].hstart;
            h.end_ms = cases[i].hend;
            h.step_ms = 15000;
            h.func = "rate";
            q.q.hints = &h;
        }

        qs[0] = &q;
        t_request(&body, qs, 1, -1);
        assert_int_equal(t_run(&body, &src, 1, NULL, &out, &e, NULL), 0);

        resp = t_samples_response(&out);
        assert_int_equal(resp->n_results, 1);

        if (cases[i].want == 0) {
            assert_int_equal(resp->results[0]->n_timeseries, 0);

        } else {
            assert_int_equal(resp->results[0]->n_timeseries, 1);
            assert_int_equal(resp->results[0]->timeseries[0]->n_samples,
                             cases[i].want);
            assert_int_equal(
                resp->results[0]->timeseries[0]->samples[0]->timestamp,
                cases[i].first);
        }

        prometheus__read_response__free_unpacked(resp, NULL);
        free(out.p);
        free(body.p);
    }
}


/*
 * Three series of 2000 samples: frames carry whole head chunks (the
 * bytes ts_head_read() gives), decode to every sample of the range.
 */

static void
test_streamed_frames(void **state)
{
    size_t            i, k, chunks;
    uint32_t          ref[3];
    t_bytes_t         body, out;
    t_query_t         q, *qs[1];
    t_frames_t        fr;
    ts_source_t      *src;
    ts_source_head_t  hs;
    ts_rread_error_t  e;
    ts_rread_stats_t  st;

    static const char *const  kv[3][7] = {
        { "__name__", "cpu", "id", "z", "mode", "user", NULL },
        { "__name__", "cpu", "id", "x", "mode", "idle", NULL },
        { "__name__", "cpu", "id", "y", NULL },
    };

    (void) state;

    for (i = 0; i < 3; i++) {
        ref[i] = t_add(0, "t", kv[i]);
        t_fill(0, ref[i], 1000000, 15000, 2000);
    }

    t_append(0, ref[2], 1000000 + 2000 * 15000, T_STALE);

    t_query(&q, 0, INT64_MAX, RE_T, "__name__", "c.u", -1);
    qs[0] = &q;
    t_request(&body, qs, 1, TS_RREAD_STREAMED_XOR_CHUNKS);

    src = t_src(&hs, 0, "t");
    assert_int_equal(t_run(&body, &src, 1, NULL, &out, &e, &st), 0);

    t_frames(&out, &fr);
    assert_int_equal(fr.n, 3);
    assert_int_equal(t_streamed(&fr, NULL, &t_got), 3);
    assert_int_equal(st.series, 3);
    assert_int_equal(st.frames, 3);
    assert_int_equal(st.reencoded, 0);

    /* label order: {cpu, x, idle} < {cpu, y} < {cpu, z, user} */

    assert_string_equal(t_label(fr.f[0]->chunked_series[0]->labels,
                                fr.f[0]->chunked_series[0]->n_labels, "id"),
                        "x");
    assert_string_equal(t_label(fr.f[1]->chunked_series[0]->labels,
                                fr.f[1]->chunked_series[0]->n_labels, "id"),
                        "y");

    for (k = 0; k < 3; k++) {
        t_streamed(&fr, (const char *[]) { "x", "y", "z" }[k], &t_got);
        assert_int_equal(t_got.n, k == 1 ? 2001 : 2000);

        for (i = 0; i < 2000; i++) {
            assert_int_equal(t_got.t[i], 1000000 + (int64_t) i * 15000);
            assert_int_equal(t_got.v[i], t_bits((double) i * 0.5));
        }
    }

    assert_int_equal(t_got.n, 2000);
    t_streamed(&fr, "y", &t_got);
    assert_int_equal(t_got.v[2000], T_STALE);

    chunks = fr.f[0]->chunked_series[0]->n_chunks;
    assert_true(chunks > 10);
    assert_int_equal(fr.f[0]->query_index, 0);

    t_frames_free(&fr);
    free(out.p);
    free(body.p);
}


/*
 * Big enough for 3-byte lengths on TimeSeries and QueryResult: both
 * response types give the same samples, the range cut inside a chunk.
 */

static void
test_large_both_types(void **state)
{
    int                        type;
    size_t                     i, k;
    uint32_t                   ref;
    char                       id[8];
    t_bytes_t                  body, out;
    t_query_t                  q, *qs[1];
    t_frames_t                 fr;
    ts_source_t               *src;
    ts_source_head_t           hs;
    ts_rread_error_t           e;
    Prometheus__TimeSeries    *ts;
    Prometheus__ReadResponse  *resp;
    const char                *kv[] = { "__name__", "big", "id", id, NULL };

    (void) state;

    for (k = 0; k < 3; k++) {
        snprintf(id, sizeof(id), "%zu", k);
        ref = t_add(0, "t", kv);
        t_fill(0, ref, 1700000000000, 15000, 20000);
    }

    t_query(&q, 1700000000000 + 7500, INT64_MAX, EQ_T, "__name__", "big",
            -1);
    qs[0] = &q;
    src = t_src(&hs, 0, "t");

    for (type = 0; type < 2; type++) {
        t_request(&body, qs, 1, type);
        assert_int_equal(t_run(&body, &src, 1, NULL, &out, &e, NULL), 0);

        for (k = 0; k < 3; k++) {
            snprintf(id, sizeof(id), "%zu", k);

            if (type == TS_RREAD_SAMPLES) {
                resp = t_samples_response(&out);
                assert_int_equal(resp->results[0]->n_timeseries, 3);
                ts = resp->results[0]->timeseries[k];
                assert_string_equal(t_label(ts->labels, ts->n_labels, "id"),
                                    id);

                for (i = 0; i < ts->n_samples; i++) {
                    t_got.t[i] = ts->samples[i]->timestamp;
                    t_got.v[i] = t_bits(ts->samples[i]->value);
                }

                t_got.n = ts->n_samples;
                prometheus__read_response__free_unpacked(resp, NULL);

            } else {
                t_frames(&out, &fr);
                t_streamed(&fr, id, &t_got);
                t_frames_free(&fr);

                /* the first chunk crosses the start: the client skips */

                assert_int_equal(t_got.t[0], 1700000000000);
                memmove(t_got.t, t_got.t + 1, (t_got.n - 1) * 8);
                memmove(t_got.v, t_got.v + 1, (t_got.n - 1) * 8);
                t_got.n--;
            }

            assert_int_equal(t_got.n, 19999);

            for (i = 0; i < t_got.n; i++) {
                assert_int_equal(t_got.t[i],
                                 1700000000000 + (int64_t) (i + 1) * 15000);
                assert_int_equal(t_got.v[i], t_bits((double) (i + 1) * 0.5));
            }
        }

        free(out.p);
        free(body.p);
    }
}


/* the chunks of a frame are the head's bytes, untouched */

typedef struct {
    const Prometheus__ChunkedSeries  *cs;
    size_t                            i;
} t_cmp_ctx_t;


static int
t_cmp_chunk(void *data, const ts_head_chunk_t *c)
{
    t_cmp_ctx_t             *ctx;
    const Prometheus__Chunk  *pc;

    ctx = data;
    assert_true(ctx->i < ctx->cs->n_chunks);
    pc = ctx->cs->chunks[ctx->i++];

    assert_int_equal(pc->data.len, c->len);
    assert_memory_equal(pc->data.data, c->data, c->len);
    assert_int_equal(pc->min_time_ms, c->mint);
    assert_int_equal(pc->max_time_ms, c->maxt);

    return 0;
}


static void
test_streamed_untouched(void **state)
{
    uint32_t          ref, tn;
    t_bytes_t         body, out;
    t_query_t         q, *qs[1];
    t_frames_t        fr;
    t_cmp_ctx_t       ctx;
    ts_source_t      *src;
    ts_source_head_t  hs;
    ts_rread_error_t  e;

    static const char *const  kv[] = { "__name__", "m", NULL };

    (void) state;

    ref = t_add(0, "t", kv);
    t_fill(0, ref, 0, 1000, 1000);

    /* [100500, 700500]: chunks crossing either end go whole */

    t_query(&q, 100500, 700500, EQ_T, "__name__", "m", -1);
    qs[0] = &q;
    t_request(&body, qs, 1, TS_RREAD_STREAMED_XOR_CHUNKS);

    src = t_src(&hs, 0, "t");
    assert_int_equal(t_run(&body, &src, 1, NULL, &out, &e, NULL), 0);
    t_frames(&out, &fr);
    assert_int_equal(fr.n, 1);

    ctx.cs = fr.f[0]->chunked_series[0];
    ctx.i = 0;
    assert_int_equal(ts_head_tenant_find(&t_z[0].head, "t", 1, &tn), TS_OK);
    assert_int_equal(ts_head_read(&t_z[0].head, ref, 100500, 700500,
                                  t_cmp_chunk, &ctx), TS_OK);
    assert_int_equal(ctx.i, ctx.cs->n_chunks);
    assert_true(ctx.cs->chunks[0]->min_time_ms < 100500);

    t_frames_free(&fr);
    free(out.p);
    free(body.p);
}


/* trim_chunks: chunks re-encoded to hold only the range's samples */

static void
test_streamed_trim(void **state)
{
    size_t            i;
    uint32_t          ref;
    t_bytes_t         body, out;
    t_query_t         q, *qs[1];
    t_frames_t        fr;
    ts_source_t      *src;
    ts_rread_conf_t   conf;
    ts_source_head_t  hs;
    ts_rread_error_t  e;
    ts_rread_stats_t  st;

    static const char *const  kv[] = { "__name__", "m", "id", "m", NULL };

    (void) state;

    ref = t_add(0, "t", kv);
    t_fill(0, ref, 0, 1000, 1000);

    ts_rread_conf_default(&conf);
    conf.trim_chunks = 1;

    t_query(&q, 100500, 700500, EQ_T, "__name__", "m", -1);
    qs[0] = &q;
    t_request(&body, qs, 1, TS_RREAD_STREAMED_XOR_CHUNKS);

    src = t_src(&hs, 0, "t");
    assert_int_equal(t_run(&body, &src, 1, &conf, &out, &e, &st), 0);
    t_frames(&out, &fr);
    t_streamed(&fr, "m", &t_got);

    assert_int_equal(t_got.n, 600);

    for (i = 0; i < 600; i++) {
        assert_int_equal(t_got.t[i], 101000 + (int64_t) i * 1000);
        assert_int_equal(t_got.v[i], t_bits((double) (101 + i) * 0.5));
    }

    assert_int_equal(st.reencoded, 2);

    t_frames_free(&fr);
    free(out.p);
    free(body.p);
}


/* small frames: a series over several frames, each at least a chunk */

static void
test_streamed_split(void **state)
{
    size_t            i, total;
    uint32_t          ref[2];
    t_bytes_t         body, out;
    t_query_t         q0, q1, *qs[2];
    t_frames_t        fr;
    ts_source_t      *src;
    ts_rread_conf_t   conf;
    ts_source_head_t  hs;
    ts_rread_error_t  e;
    ts_rread_stats_t  st;

    static const char *const  ka[] = { "__name__", "a", "id", "a", NULL };
    static const char *const  kb[] = { "__name__", "b", "id", "b", NULL };

    (void) state;

    ref[0] = t_add(0, "t", ka);
    ref[1] = t_add(0, "t", kb);
    t_fill(0, ref[0], 0, 1000, 3000);
    t_fill(0, ref[1], 0, 1000, 3000);

    ts_rread_conf_default(&conf);
    conf.max_bytes_in_frame = 400;

    t_query(&q0, 0, 10000000, RE_T, "__name__", "a|b", -1);
    t_query(&q1, 0, 10000000, EQ_T, "__name__", "b", -1);
    qs[0] = &q0;
    qs[1] = &q1;
    t_request(&body, qs, 2, TS_RREAD_STREAMED_XOR_CHUNKS);

    src = t_src(&hs, 0, "t");
    assert_int_equal(t_run(&body, &src, 1, &conf, &out, &e, &st), 0);
    assert_int_equal(st.series, 3);
    assert_int_equal(st.queries, 2);
    assert_int_equal(st.bytes, out.len);
    t_frames(&out, &fr);
    assert_int_equal(st.frames, fr.n);

    /* 2 series in query 0 and 1 in query 1, many frames each */

    assert_int_equal(t_streamed(&fr, NULL, &t_got), 3);
    assert_true(fr.n > 12);

    total = 0;

    for (i = 0; i < fr.n; i++) {
        assert_true(fr.f[i]->chunked_series[0]->n_chunks <= 3);
        total += fr.f[i]->query_index == 1;
    }

    assert_true(total > 4);
    assert_int_equal(fr.f[fr.n - 1]->query_index, 1);

    t_streamed(&fr, "a", &t_got);
    assert_int_equal(t_got.n, 3000);
    t_streamed(&fr, "b", &t_got);
    assert_int_equal(t_got.n, 6000);

    t_frames_free(&fr);
    free(out.p);
    free(body.p);
}


static void
test_tenants(void **state)
{
    int                        type;
    uint32_t                   a, b;
    t_bytes_t                  body, out;
    t_query_t                  q, *qs[1];
    t_frames_t                 fr;
    ts_source_t               *src;
    ts_source_head_t           hs;
    ts_rread_error_t           e;
    Prometheus__ReadResponse  *resp;

    static const char *const  kv[] = { "__name__", "up", "id", "u", NULL };

    (void) state;

    a = t_add(0, "alpha", kv);
    b = t_add(0, "beta", kv);
    t_append(0, a, 1000, t_bits(1));
    t_append(0, b, 1000, t_bits(2));
    t_append(0, b, 2000, t_bits(3));

    t_query(&q, 0, 10000, NEQ_T, "__name__", "x", -1);
    qs[0] = &q;

    for (type = 0; type < 2; type++) {
        t_request(&body, qs, 1, type);

        src = t_src(&hs, 0, "alpha");
        assert_int_equal(t_run(&body, &src, 1, NULL, &out, &e, NULL), 0);

        if (type == TS_RREAD_SAMPLES) {
            resp = t_samples_response(&out);
            assert_int_equal(resp->results[0]->n_timeseries, 1);
            assert_int_equal(resp->results[0]->timeseries[0]->n_samples, 1);
            assert_true(resp->results[0]->timeseries[0]->samples[0]->value
                        == 1.0);
            prometheus__read_response__free_unpacked(resp, NULL);

        } else {
            t_frames(&out, &fr);
            assert_int_equal(fr.n, 1);
            t_streamed(&fr, "u", &t_got);
            assert_int_equal(t_got.n, 1);
            t_frames_free(&fr);
        }

        free(out.p);

        /* a tenant that never wrote has nothing */

        src = t_src(&hs, 0, "gamma");
        assert_int_equal(t_run(&body, &src, 1, NULL, &out, &e, NULL), 0);

        if (type == TS_RREAD_SAMPLES) {
            resp = t_samples_response(&out);
            assert_int_equal(resp->results[0]->n_timeseries, 0);
            prometheus__read_response__free_unpacked(resp, NULL);

        } else {
            assert_int_equal(out.len, 0);
        }

        free(out.p);
        free(body.p);
    }
}


static void
test_limits(void **state)
{
    int               rc, type;
    size_t            i;
    uint32_t          ref;
    char              id[16];
    t_bytes_t         body, out;
    t_query_t         q, *qs[1];
    ts_source_t      *src;
    ts_rread_conf_t   conf;
    ts_source_head_t  hs;
    ts_rread_error_t  e;
    const char       *kv[] = { "__name__", "m", "id", id, NULL };

    (void) state;

    for (i = 0; i < 10; i++) {
        snprintf(id, sizeof(id), "%zu", i);
        ref = t_add(0, "t", kv);
        t_fill(0, ref, 0, 1000, 100);
    }

    src = t_src(&hs, 0, "t");
    t_query(&q, 0, 1000000, EQ_T, "__name__", "m", -1);
    qs[0] = &q;

    for (type = 0; type < 2; type++) {
        t_request(&body, qs, 1, type);

        /* series: 10 allowed, 9 not */

        ts_rread_conf_default(&conf);
        conf.max_series = 10;
        assert_int_equal(t_run(&body, &src, 1, &conf, &out, &e, NULL), 0);
        free(out.p);

        conf.max_series = 9;
        rc = t_run(&body, &src, 1, &conf, &out, &e, NULL);
        assert_int_equal(rc, TS_ERR_LIMIT);
        assert_int_equal(e.client, 1);
        assert_string_equal(e.msg, "query 0: exceeded series limit (9)");
        assert_int_equal(out.len, 0);
        free(out.p);

        /* samples: 1000 allowed, 999 not (SAMPLES only) */

        ts_rread_conf_default(&conf);
        conf.max_samples = 1000;
        assert_int_equal(t_run(&body, &src, 1, &conf, &out, &e, NULL), 0);
        free(out.p);

        conf.max_samples = 999;
        rc = t_run(&body, &src, 1, &conf, &out, &e, NULL);

        if (type == TS_RREAD_SAMPLES) {
            assert_int_equal(rc, TS_ERR_LIMIT);
            assert_int_equal(e.client, 1);
            assert_string_equal(e.msg, "exceeded sample limit (999)");

        } else {
            assert_int_equal(rc, 0);
        }

        free(out.p);
        free(body.p);
    }
}


/* requests refused by ts_rread_open(), with the fault and the reason */

static void
test_bad_requests(void **state)
{
    int               rc;
    size_t            i, n, c;
    char             *raw;
    t_bytes_t         body;
    t_query_t         q, *qs[1];
    ts_rread_t       *rr;
    ts_rread_conf_t   conf;
    ts_rread_error_t  e;

    static const struct {
        const char  *name;
        int          type;
        const char  *value;
        int          want;
        const char  *msg;
    } matchers[] = {
        { "bad_regex", RE_T, "(", TS_ERR_INVALID, "query 0: invalid regex" },
        { "lookahead", NRE_T, "(?!a)", TS_ERR_INVALID,
          "query 0: invalid regex" },
        { "unknown_type", 9, "a", TS_ERR_INVALID,
          "query 0: unknown matcher type 9" },
        { "bad_utf8", RE_T, "\xff", TS_ERR_INVALID, "not valid UTF-8" },
    };

    (void) state;

    for (i = 0; i < sizeof(matchers) / sizeof(matchers[0]); i++) {
        t_query(&q, 0, 1, EQ_T, "a", "b", matchers[i].type, "x",
                matchers[i].value, -1);
        qs[0] = &q;
        t_request(&body, qs, 1, -1);

        rc = ts_rread_open(&rr, body.p, body.len, NULL, 0, NULL, NULL, &e);
        free(body.p);

        if (rc != matchers[i].want || e.client != 1
            || strstr(e.msg, matchers[i].msg) == NULL)
        {
            fail_msg("%s: rc %d, \"%s\"", matchers[i].name, rc, e.msg);
        }
    }

    /* too many queries and matchers */

    ts_rread_conf_default(&conf);
    conf.max_queries = 1;
    conf.select.max_matchers = 1;

    t_query(&q, 0, 1, EQ_T, "a", "b", EQ_T, "c", "d", -1);
    qs[0] = &q;
    t_request(&body, qs, 1, -1);
    rc = ts_rread_open(&rr, body.p, body.len, NULL, 0, &conf, NULL, &e);
    assert_int_equal(rc, TS_ERR_LIMIT);
    assert_string_equal(e.msg, "query 0: 2 matchers, more than 1");
    free(body.p);

    {
        t_query_t  *two[2] = { &q, &q };

        t_request(&body, two, 2, -1);
        rc = ts_rread_open(&rr, body.p, body.len, NULL, 0, &conf, NULL, &e);
        assert_int_equal(rc, TS_ERR_LIMIT);
        assert_string_equal(e.msg, "2 queries, more than 1");
    }

    /* snappy that does not decode: truncated, then not snappy at all */

    rc = ts_rread_open(&rr, body.p, body.len - 3, NULL, 0, NULL, NULL, &e);
    assert_int_equal(rc, TS_ERR_INVALID);
    assert_string_equal(e.msg, "malformed snappy body");
    assert_int_equal(e.client, 1);

    rc = ts_rread_open(&rr, "\xff\xff\xff\xff\xff\xff", 6, NULL, 0, NULL,
                       NULL, &e);
    assert_int_equal(rc, TS_ERR_INVALID);

    rc = ts_rread_open(&rr, "", 0, NULL, 0, NULL, NULL, &e);
    assert_int_equal(rc, TS_ERR_INVALID);

    /* the decoding budget: the same request, with too little of it */

    conf.max_queries = 256;
    conf.select.max_matchers = 64;
    conf.max_decode_memory = 200;
    rc = ts_rread_open(&rr, body.p, body.len, NULL, 0, &conf, NULL, &e);
    assert_int_equal(rc, TS_ERR_LIMIT);
    assert_non_null(strstr(e.msg, "decoding needs more than 200 bytes"));
    free(body.p);

    /* valid snappy, not a ReadRequest */

    n = 64;
    raw = malloc(n);
    memset(raw, 0xff, n);
    c = snappy_max_compressed_length(n);
    body.p = malloc(c);
    assert_int_equal(snappy_compress(raw, n, (char *) body.p, &c),
                     SNAPPY_OK);
    rc = ts_rread_open(&rr, body.p, c, NULL, 0, NULL, NULL, &e);
    assert_int_equal(rc, TS_ERR_INVALID);
    assert_string_equal(e.msg, "malformed protobuf ReadRequest");
    free(body.p);
    free(raw);

    /* declared size over the limit: refused before it is allocated */

    n = 32 * 1024 * 1024 + 1;
    raw = calloc(1, n);
    c = snappy_max_compressed_length(n);
    body.p = malloc(c);
    assert_int_equal(snappy_compress(raw, n, (char *) body.p, &c),
                     SNAPPY_OK);

    ts_rread_conf_default(&conf);
    conf.max_decode_memory = 1024;
    rc = ts_rread_open(&rr, body.p, c, NULL, 0, &conf, NULL, &e);
    assert_int_equal(rc, TS_ERR_LIMIT);
    assert_string_equal(e.msg, "decompressed body of 33554433 bytes, "
                        "more than 33554432");
    free(body.p);
    free(raw);
}


/* the caller's allocator serves decoding and gets everything back */

typedef struct {
    size_t  allocs;
    size_t  frees;
} t_alloc_t;


static void *
t_alloc(void *data, size_t size)
{
    ((t_alloc_t *) data)->allocs++;

    return malloc(size);
}


static void
t_free(void *data, void *p)
{
    ((t_alloc_t *) data)->frees++;
    free(p);
}


static void
test_allocator(void **state)
{
    t_bytes_t           body;
    t_query_t           q, *qs[1];
    t_alloc_t           count;
    ts_rread_t         *rr;
    ts_rread_error_t    e;
    ProtobufCAllocator  a;

    (void) state;

    t_query(&q, 0, 1, EQ_T, "a", "b", RE_T, "c", "d.*", -1);
    qs[0] = &q;
    t_request(&body, qs, 1, 1);

    memset(&count, 0, sizeof(count));
    a.alloc = t_alloc;
    a.free = t_free;
    a.allocator_data = &count;

    assert_int_equal(ts_rread_open(&rr, body.p, body.len, NULL, 0, NULL, &a,
                                   &e), TS_OK);
    assert_true(count.allocs > 3);
    assert_int_equal(count.allocs, count.frees);

    ts_rread_free(rr);
    free(body.p);
}


/*
 * Two sources holding the same series with overlapping samples (equal
 * timestamps: the first source's value wins) and series only in one:
 * both response types give one sorted, deduplicated series.
 */

static void
test_two_sources(void **state)
{
    int                        type;
    size_t                     i;
    uint32_t                   a0, a1, b1;
    t_bytes_t                  body, out;
    t_query_t                  q, *qs[1];
    t_frames_t                 fr;
    ts_source_t               *src[2];
    ts_source_head_t           hs[2];
    ts_rread_error_t           e;
    ts_rread_stats_t           st;
    Prometheus__TimeSeries    *ts;
    Prometheus__ReadResponse  *resp;

    static const char *const  ka[] = { "__name__", "m", "id", "a", NULL };
    static const char *const  kb[] = { "__name__", "m", "id", "b", NULL };

    (void) state;

    /* zone 0: a at 0..599 s; zone 1: a at 300..899 s (other values), b */

    a0 = t_add(0, "t", ka);
    a1 = t_add(1, "t", ka);
    b1 = t_add(1, "t", kb);

    for (i = 0; i < 600; i++) {
        t_append(0, a0, (int64_t) i * 1000, t_bits((double) i));
        t_append(1, a1, (int64_t) (i + 300) * 1000, t_bits(-1.0));
        t_append(1, b1, (int64_t) i * 1000, t_bits(7));
    }

    t_query(&q, 0, 10000000, EQ_T, "__name__", "m", -1);
    qs[0] = &q;

    for (type = 0; type < 2; type++) {
        t_request(&body, qs, 1, type);
        src[0] = t_src(&hs[0], 0, "t");
        src[1] = t_src(&hs[1], 1, "t");

        assert_int_equal(t_run(&body, src, 2, NULL, &out, &e, &st), 0);
        assert_int_equal(st.series, 2);
        t_got.n = 0;

        if (type == TS_RREAD_SAMPLES) {
            resp = t_samples_response(&out);
            assert_int_equal(resp->results[0]->n_timeseries, 2);
            ts = resp->results[0]->timeseries[0];
            assert_string_equal(t_label(ts->labels, ts->n_labels, "id"),
                                "a");

            for (i = 0; i < ts->n_samples; i++) {
                t_got.t[i] = ts->samples[i]->timestamp;
                t_got.v[i] = t_bits(ts->samples[i]->value);
            }

            t_got.n = ts->n_samples;
            prometheus__read_response__free_unpacked(resp, NULL);

        } else {
            t_frames(&out, &fr);
            assert_int_equal(t_streamed(&fr, NULL, &t_got), 2);
            t_streamed(&fr, "a", &t_got);
            t_frames_free(&fr);
            assert_true(st.reencoded > 0);
            assert_true(st.chunks > st.reencoded);
        }

        assert_int_equal(t_got.n, 900);

        for (i = 0; i < 900; i++) {
            assert_int_equal(t_got.t[i], (int64_t) i * 1000);
            assert_int_equal(t_got.v[i],
                             t_bits(i < 600 ? (double) i : -1.0));
        }

        free(out.p);
        free(body.p);
    }
}


/*
 * A source that hands the last chunk of a batch out again at the start
 * of the next one, as the head does with a chunk appended to between
 * two reads: no sample may come out twice.
 */

typedef struct {
    ts_source_head_t     hs;
    ts_source_t          src;
    int64_t              first;
    ts_source_chunk_pt   cb;
    void                *cbdata;
    int64_t              before;
} t_again_t;


static int
t_again_prev(void *data, const ts_head_chunk_t *c)
{
    ts_source_chunk_t   sc;
    t_again_t          *ag;

    ag = data;

    if (c->maxt != ag->before) {
        return 0;
    }

    sc.mint = c->mint;
    sc.maxt = c->maxt;
    sc.samples = c->samples;
    sc.encoding = TS_XOR_ENCODING;
    sc.data = c->data;
    sc.len = c->len;

    return ag->cb(ag->cbdata, &sc);
}


static int
t_again_chunks(void *data, uint64_t ref, int64_t mint, int64_t maxt,
    ts_source_chunk_pt cb, void *cbdata)
{
    t_again_t  *ag;

    ag = data;

    if (mint > ag->first) {
        ag->cb = cb;
        ag->cbdata = cbdata;
        ag->before = mint - 1;
        assert_int_equal(ts_head_read(ag->hs.head, (uint32_t) ref,
                                      mint - 1, mint - 1, t_again_prev, ag),
                         TS_OK);
    }

    return ag->hs.src.chunks(&ag->hs, ref, mint, maxt, cb, cbdata);
}


static void
test_chunk_again(void **state)
{
    int               type;
    size_t            i;
    uint32_t          ref;
    t_bytes_t         body, out;
    t_query_t         q, *qs[1];
    t_frames_t        fr;
    t_again_t         ag;
    ts_source_t      *src;
    ts_rread_error_t  e;
    ts_rread_stats_t  st;

    static const char *const  kv[] = { "__name__", "m", "id", "m", NULL };

    (void) state;

    /* over 256 chunks: several batches */

    ref = t_add(0, "t", kv);
    t_fill(0, ref, 0, 1000, 40000);

    /*
     * The head source's functions get &ag as their data: hs is its
     * first member, so that is a pointer to hs as well.
     */

    ts_source_head_init(&ag.hs, &t_z[0].head, "t", 1);
    ag.src = ag.hs.src;
    ag.src.data = &ag;
    ag.src.chunks = t_again_chunks;
    ag.first = 0;
    src = &ag.src;

    t_query(&q, 0, 100000000, EQ_T, "__name__", "m", -1);
    qs[0] = &q;

    for (type = 0; type < 2; type++) {
        t_request(&body, qs, 1, type);

        assert_int_equal(t_run(&body, &src, 1, NULL, &out, &e, &st), 0);

        if (type == TS_RREAD_SAMPLES) {
            assert_int_equal(st.samples, 40000);

        } else {
            t_frames(&out, &fr);
            t_streamed(&fr, "m", &t_got);
            t_frames_free(&fr);
            assert_int_equal(t_got.n, 40000);

            for (i = 0; i < 40000; i++) {
                assert_int_equal(t_got.t[i], (int64_t) i * 1000);
            }

            assert_true(st.reencoded > 0);
        }

        free(out.p);
        free(body.p);
    }
}


static void
test_sticky_error(void **state)
{
    int               rc;
    size_t            len;
    uint32_t          ref;
    t_bytes_t         body;
    t_query_t         q, *qs[1];
    ts_rread_t       *rr;
    ts_source_t      *src;
    ts_rread_conf_t   conf;
    ts_source_head_t  hs;
    ts_rread_error_t  e;
    const uint8_t    *p;

    static const char *const  kv[] = { "__name__", "m", NULL };

    (void) state;

    ref = t_add(0, "t", kv);
    t_fill(0, ref, 0, 1000, 10);

    ts_rread_conf_default(&conf);
    conf.max_samples = 5;

    t_query(&q, 0, 100000, EQ_T, "__name__", "m", -1);
    qs[0] = &q;
    t_request(&body, qs, 1, TS_RREAD_SAMPLES);

    src = t_src(&hs, 0, "t");
    assert_int_equal(ts_rread_open(&rr, body.p, body.len, &src, 1, &conf,
                                   NULL, &e), TS_OK);

    rc = ts_rread_next(rr, &p, &len, &e);
    assert_int_equal(rc, TS_ERR_LIMIT);

    memset(&e, 0, sizeof(e));
    rc = ts_rread_next(rr, &p, &len, &e);
    assert_int_equal(rc, TS_ERR_LIMIT);
    assert_string_equal(e.msg, "exceeded sample limit (5)");

    ts_rread_free(rr);
    free(body.p);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiation),
        cmocka_unit_test_setup_teardown(test_samples_roundtrip, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_samples_range_and_hints,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_streamed_frames, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_streamed_untouched, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_large_both_types, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_streamed_trim, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_streamed_split, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_tenants, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_limits, t_setup, t_teardown),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_allocator),
        cmocka_unit_test_setup_teardown(test_two_sources, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_chunk_again, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_sticky_error, t_setup,
                                        t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
