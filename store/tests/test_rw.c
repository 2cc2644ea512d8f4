/*
 * Copyright (C) ngx_tsdb authors
 *
 * Remote-write decoding tests.  Real payloads: the 40 requests
 * Prometheus 2.42 sent (t/data/rw/, headers included) must negotiate as
 * v1 and decode to exactly the counts in tr_fixtures[], which were
 * computed independently (a stdlib snappy decoder plus protoc-c
 * --decode=prometheus.WriteRequest / --decode_raw).  Every other body is
 * built with protobuf-c's encoder; where a case needs a NUL byte inside a
 * string, which protobuf-c cannot encode from a C string, the packed
 * bytes get one placeholder byte patched.  Tables: Content-Type and
 * Content-Encoding, snappy edges, one case per histogram rule, per v2
 * reference error, per whole-request failure; allocator accounting
 * (every allocation freed, failure at every allocation, the decode
 * memory budget).
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

#include <snappy-c.h>

#include "prometheus_remote.pb-c.h"
#include "rw2.pb-c.h"
#include "ts_error.h"
#include "ts_rw.h"
#include "rw_same.h"


#define TR_DATA         "t/data/rw/"
#define TR_N            64
#define TR_NAN_GO       0x7ff8000000000001ULL

#define tr_check(name, cond)                                              \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fail_msg("%s: %s (line %d)", (name), #cond, __LINE__);        \
        }                                                                 \
    } while (0)


typedef struct {
    const char  *file;
    uint32_t     series;
    uint32_t     samples;
    uint32_t     labels;
    uint32_t     metadata;
    uint32_t     nan_go;        /* samples with bits 0x7ff8000000000001 */
    uint32_t     stale;         /* samples with the stale marker */
    uint32_t     raw_len;       /* decompressed bytes */
} tr_fixture_t;


/* counting allocator; fails every call from fail_at on (0: never) */
typedef struct {
    size_t       allocs;
    size_t       frees;
    size_t       fail_at;
} tr_alloc_t;


typedef struct {
    Prometheus__WriteRequest    wr;
    Prometheus__TimeSeries      ts[TR_N];
    Prometheus__TimeSeries     *tsp[TR_N];
    Prometheus__Label           lab[TR_N];
    Prometheus__Label          *labp[TR_N];
    Prometheus__Sample          smp[TR_N];
    Prometheus__Sample         *smpp[TR_N];
    Prometheus__Exemplar        ex[TR_N];
    Prometheus__Exemplar       *exp[TR_N];
    Prometheus__MetricMetadata  md[TR_N];
    Prometheus__MetricMetadata *mdp[TR_N];
    Prometheus__Histogram      *hp[TR_N];
    size_t                      nlab, nsmp, nex, nh;
    char                        pool[8192];
    size_t                      npool;
} tr_v1_t;


typedef struct {
    Prometheus__Histogram       h;
    Prometheus__BucketSpan      ps[4];
    Prometheus__BucketSpan      ns[4];
    Prometheus__BucketSpan     *psp[4];
    Prometheus__BucketSpan     *nsp[4];
    int64_t                     pd[8];
    int64_t                     nd[8];
    double                      pc[8];
    double                      nc[8];
    double                      cv[8];
} tr_hist_t;


typedef struct {
    const char                 *name;
    void                      (*mod)(tr_hist_t *t, ts_limits_t *lim);
    ts_reject_code_t            code;
} tr_hist_case_t;


typedef struct {
    Io__Prometheus__Write__V2__Request     r;
    char                                  *sym[TR_N];
    Io__Prometheus__Write__V2__TimeSeries  ts[TR_N];
    Io__Prometheus__Write__V2__TimeSeries *tsp[TR_N];
    uint32_t                               refs[4 * TR_N];
    Io__Prometheus__Write__V2__Sample      smp[TR_N];
    Io__Prometheus__Write__V2__Sample     *smpp[TR_N];
    Io__Prometheus__Write__V2__Exemplar    ex[TR_N];
    Io__Prometheus__Write__V2__Exemplar   *exp[TR_N];
    Io__Prometheus__Write__V2__Metadata    md[TR_N];
    Io__Prometheus__Write__V2__Histogram   h[4];
    Io__Prometheus__Write__V2__Histogram  *hp[4];
    Io__Prometheus__Write__V2__BucketSpan  sp[4];
    Io__Prometheus__Write__V2__BucketSpan *spp[4];
    int64_t                                deltas[4];
    size_t                                 nref, nsmp, nex;
    char                                   pool[8192];
    size_t                                 npool;
} tr_v2_t;


typedef struct {
    const char                 *name;
    void                      (*mod)(tr_v2_t *b,
                                     Io__Prometheus__Write__V2__TimeSeries *s);
    ts_reject_code_t            code;
} tr_v2_case_t;


static const tr_fixture_t  tr_fixtures[] = {
    { "req0000", 373, 373, 1814, 0, 26, 0, 57676 },
    { "req0001", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0002", 424, 424, 2090, 0, 26, 0, 66293 },
    { "req0003", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0004", 424, 424, 2090, 0, 26, 0, 66275 },
    { "req0005", 0, 0, 0, 448, 0, 0, 40771 },
    { "req0006", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0007", 424, 424, 2090, 0, 26, 0, 66293 },
    { "req0008", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0009", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0010", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0011", 0, 0, 0, 448, 0, 0, 40771 },
    { "req0012", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0013", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0014", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0015", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0016", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0017", 0, 0, 0, 448, 0, 0, 40771 },
    { "req0018", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0019", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0020", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0021", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0022", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0023", 0, 0, 0, 448, 0, 0, 40771 },
    { "req0024", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0025", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0026", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0027", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0028", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0029", 0, 0, 0, 448, 0, 0, 40771 },
    { "req0030", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0031", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0032", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0033", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0034", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0035", 0, 0, 0, 448, 0, 0, 40771 },
    { "req0036", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0037", 500, 500, 2371, 0, 0, 0, 65536 },
    { "req0038", 424, 424, 2090, 0, 26, 0, 66302 },
    { "req0039", 500, 500, 2371, 0, 0, 0, 65536 },
};


/* helpers */

static uint8_t *
tr_read(const char *path, size_t *len)
{
    FILE     *f;
    uint8_t  *buf;
    long      n;

    f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open %s (run from the repository root)", path);
    }

    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);

    buf = malloc((size_t) n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
    buf[n] = '\0';
    fclose(f);

    *len = (size_t) n;

    return buf;
}


/* the value of header name in a captured header block, or NULL */
static const char *
tr_header(const char *text, const char *name, size_t *len)
{
    const char  *p, *eol;
    size_t       n;

    n = strlen(name);

    for (p = text; p && *p; p = eol ? eol + 1 : NULL) {
        eol = strchr(p, '\n');

        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            p += n + 1;
            *len = eol ? (size_t) (eol - p) : strlen(p);
            while (*len && (p[*len - 1] == '\r')) {
                (*len)--;
            }
            return p;
        }
    }

    return NULL;
}


static void *
tr_alloc(void *data, size_t size)
{
    tr_alloc_t  *a = data;

    if (a->fail_at && a->allocs + 1 >= a->fail_at) {
        return NULL;
    }

    a->allocs++;

    return malloc(size);
}


static void
tr_free(void *data, void *p)
{
    tr_alloc_t  *a = data;

    a->frees++;
    free(p);
}


static uint8_t *
tr_snappy(const uint8_t *in, size_t len, size_t *out_len)
{
    uint8_t  *out;
    size_t    n;

    n = snappy_max_compressed_length(len);
    out = malloc(n);
    assert_non_null(out);
    assert_int_equal(snappy_compress((const char *) in, len, (char *) out,
                                     &n), SNAPPY_OK);
    *out_len = n;

    return out;
}


static size_t
tr_varint(uint8_t *p, uint64_t v)
{
    size_t  n;

    for (n = 0; v >= 0x80; v >>= 7) {
        p[n++] = (uint8_t) (v | 0x80);
    }

    p[n++] = (uint8_t) v;

    return n;
}


/* replaces the single byte after marker in buf with b */
static void
tr_patch(uint8_t *buf, size_t len, const char *marker, uint8_t b)
{
    uint8_t  *p;

    p = memmem(buf, len, marker, strlen(marker));
    assert_non_null(p);
    assert_null(memmem(p + 1, len - (size_t) (p + 1 - buf), marker,
                       strlen(marker)));
    p[strlen(marker)] = b;
}


static char *
tr_strdup(char *pool, size_t *npool, const char *s)
{
    char  *p;

    p = pool + *npool;
    *npool += strlen(s) + 1;
    assert_true(*npool <= 8192);
    memcpy(p, s, strlen(s) + 1);

    return p;
}


static uint64_t
tr_bits(double d)
{
    uint64_t  v;

    memcpy(&v, &d, sizeof(v));

    return v;
}


static double
tr_double(uint64_t v)
{
    double  d;

    memcpy(&d, &v, sizeof(d));

    return d;
}


static int
tr_decode(ts_rw_request_t *req, const ts_limits_t *lim, ts_rw_version_t v,
    const uint8_t *buf, size_t len)
{
    ts_rw_request_init(req, NULL, lim);

    return ts_rw_decode(req, v, buf, len);
}


/* v1 builder: "name=value|..." label sets */

static void
tr_v1_init(tr_v1_t *b)
{
    memset(b, 0, sizeof(tr_v1_t));
    prometheus__write_request__init(&b->wr);
    b->wr.timeseries = b->tsp;
    b->wr.metadata = b->mdp;
}


static Prometheus__Label **
tr_v1_labels(tr_v1_t *b, const char *set, size_t *n)
{
    Prometheus__Label **first;
    char               *s, *p, *eq, *bar;

    first = &b->labp[b->nlab];
    *n = 0;

    if (*set == '\0') {
        return first;
    }

    s = tr_strdup(b->pool, &b->npool, set);

    for (p = s; p; p = bar ? bar + 1 : NULL) {
        bar = strchr(p, '|');
        if (bar) {
            *bar = '\0';
        }

        eq = strchr(p, '=');
        assert_non_null(eq);
        *eq = '\0';

        prometheus__label__init(&b->lab[b->nlab]);
        b->lab[b->nlab].name = p;
        b->lab[b->nlab].value = eq + 1;
        b->labp[b->nlab] = &b->lab[b->nlab];
        b->nlab++;
        (*n)++;
    }

    return first;
}


static Prometheus__TimeSeries *
tr_v1_series(tr_v1_t *b, const char *set, size_t nsamples, int64_t t0)
{
    Prometheus__TimeSeries  *ts;
    size_t                   i;

    ts = &b->ts[b->wr.n_timeseries];
    prometheus__time_series__init(ts);
    b->tsp[b->wr.n_timeseries++] = ts;

    ts->labels = tr_v1_labels(b, set, &ts->n_labels);
    ts->samples = &b->smpp[b->nsmp];
    ts->n_samples = nsamples;

    for (i = 0; i < nsamples; i++) {
        prometheus__sample__init(&b->smp[b->nsmp]);
        b->smp[b->nsmp].timestamp = t0 + (int64_t) i * 15000;
        b->smp[b->nsmp].value = (double) i + 0.5;
        b->smpp[b->nsmp] = &b->smp[b->nsmp];
        b->nsmp++;
    }

    return ts;
}


static Prometheus__Exemplar *
tr_v1_exemplar(tr_v1_t *b, Prometheus__TimeSeries *ts, const char *set)
{
    Prometheus__Exemplar  *e;

    if (ts->n_exemplars == 0) {
        ts->exemplars = &b->exp[b->nex];
    }

    e = &b->ex[b->nex];
    prometheus__exemplar__init(e);
    e->labels = tr_v1_labels(b, set, &e->n_labels);
    e->value = 0.25;
    e->timestamp = 1700000000123;
    b->exp[b->nex++] = e;
    ts->n_exemplars++;

    return e;
}


static Prometheus__MetricMetadata *
tr_v1_meta(tr_v1_t *b, const char *name, int type, const char *help,
    const char *unit)
{
    Prometheus__MetricMetadata  *m;

    m = &b->md[b->wr.n_metadata];
    prometheus__metric_metadata__init(m);
    m->metric_family_name = tr_strdup(b->pool, &b->npool, name);
    m->type = (Prometheus__MetricMetadata__MetricType) type;
    m->help = tr_strdup(b->pool, &b->npool, help);
    m->unit = tr_strdup(b->pool, &b->npool, unit);
    b->mdp[b->wr.n_metadata++] = m;

    return m;
}


static uint8_t *
tr_v1_pack(tr_v1_t *b, size_t *len)
{
    uint8_t  *buf;

    *len = prometheus__write_request__get_packed_size(&b->wr);
    buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(prometheus__write_request__pack(&b->wr, buf), *len);

    return buf;
}


/* v2 builder: symbols interned, symbols[0] = "" */

static uint32_t
tr_sym(tr_v2_t *b, const char *s)
{
    size_t  i;

    for (i = 0; i < b->r.n_symbols; i++) {
        if (strcmp(b->sym[i], s) == 0) {
            return (uint32_t) i;
        }
    }

    b->sym[i] = tr_strdup(b->pool, &b->npool, s);
    b->r.n_symbols++;

    return (uint32_t) i;
}


static void
tr_v2_init(tr_v2_t *b)
{
    memset(b, 0, sizeof(tr_v2_t));
    io__prometheus__write__v2__request__init(&b->r);
    b->r.symbols = b->sym;
    b->r.timeseries = b->tsp;
    tr_sym(b, "");
}


static uint32_t *
tr_v2_refs(tr_v2_t *b, const char *set, size_t *n)
{
    char      buf[512], *p, *eq, *bar;
    uint32_t *first;

    first = &b->refs[b->nref];
    *n = 0;

    if (*set == '\0') {
        return first;
    }

    snprintf(buf, sizeof(buf), "%s", set);

    for (p = buf; p; p = bar ? bar + 1 : NULL) {
        bar = strchr(p, '|');
        if (bar) {
            *bar = '\0';
        }

        eq = strchr(p, '=');
        assert_non_null(eq);
        *eq = '\0';

        b->refs[b->nref++] = tr_sym(b, p);
        b->refs[b->nref++] = tr_sym(b, eq + 1);
        *n += 2;
    }

    return first;
}


static Io__Prometheus__Write__V2__TimeSeries *
tr_v2_series(tr_v2_t *b, const char *set, size_t nsamples, int64_t t0)
{
    Io__Prometheus__Write__V2__TimeSeries  *ts;
    size_t                                  i;

    ts = &b->ts[b->r.n_timeseries];
    io__prometheus__write__v2__time_series__init(ts);
    b->tsp[b->r.n_timeseries++] = ts;

    ts->labels_refs = tr_v2_refs(b, set, &ts->n_labels_refs);
    ts->samples = &b->smpp[b->nsmp];
    ts->n_samples = nsamples;

    for (i = 0; i < nsamples; i++) {
        io__prometheus__write__v2__sample__init(&b->smp[b->nsmp]);
        b->smp[b->nsmp].timestamp = t0 + (int64_t) i * 15000;
        b->smp[b->nsmp].value = (double) i + 0.5;
        b->smpp[b->nsmp] = &b->smp[b->nsmp];
        b->nsmp++;
    }

    return ts;
}


static Io__Prometheus__Write__V2__Exemplar *
tr_v2_exemplar(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *ts,
    const char *set)
{
    Io__Prometheus__Write__V2__Exemplar  *e;

    if (ts->n_exemplars == 0) {
        ts->exemplars = &b->exp[b->nex];
    }

    e = &b->ex[b->nex];
    io__prometheus__write__v2__exemplar__init(e);
    e->labels_refs = tr_v2_refs(b, set, &e->n_labels_refs);
    e->value = 0.25;
    e->timestamp = 1700000000123;
    b->exp[b->nex++] = e;
    ts->n_exemplars++;

    return e;
}


static void
tr_v2_meta(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *ts, int type,
    const char *help, const char *unit)
{
    Io__Prometheus__Write__V2__Metadata  *m;

    m = &b->md[ts - b->ts];
    io__prometheus__write__v2__metadata__init(m);
    m->type = (Io__Prometheus__Write__V2__Metadata__MetricType) type;
    m->help_ref = tr_sym(b, help);
    m->unit_ref = tr_sym(b, unit);
    ts->metadata = m;
}


static uint8_t *
tr_v2_pack(tr_v2_t *b, size_t *len)
{
    uint8_t  *buf;

    *len = io__prometheus__write__v2__request__get_packed_size(&b->r);
    buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(io__prometheus__write__v2__request__pack(&b->r, buf),
                     *len);

    return buf;
}


/* negotiation */

static void
test_content_type(void **state)
{
    static const struct {
        const char       *s;
        ts_rw_version_t   v;
    } cases[] = {
        { "", TS_RW_V1 },
        { "   ", TS_RW_V1 },
        { "application/x-protobuf", TS_RW_V1 },
        { "APPLICATION/X-Protobuf", TS_RW_V1 },
        { "application/x-protobuf;", TS_RW_V1 },
        { "application/x-protobuf ; ;", TS_RW_V1 },
        { "application/x-protobuf;proto=prometheus.WriteRequest", TS_RW_V1 },
        { "application/x-protobuf;proto=io.prometheus.write.v2.Request",
          TS_RW_V2 },
        { " application/x-protobuf ;\tproto=io.prometheus.write.v2.Request ",
          TS_RW_V2 },
        { "application/x-protobuf;PROTO=io.prometheus.write.v2.Request",
          TS_RW_V2 },
        { "application/x-protobuf;proto=\"io.prometheus.write.v2.Request\"",
          TS_RW_V2 },
        { "application/x-protobuf;charset=utf-8;"
          "proto=io.prometheus.write.v2.Request", TS_RW_V2 },
        { "application/x-protobuf;a=\"x;y\";"
          "proto=io.prometheus.write.v2.Request", TS_RW_V2 },
        { "application/x-protobuf;proto=prometheus.WriteRequest;"
          "proto=io.prometheus.write.v2.Request", TS_RW_V1 },
        { "application/x-protobuf;charset=utf-8", TS_RW_V1 },
        { "application/x-protobuf;proto=io.prometheus.write.v2.request",
          TS_RW_UNSUPPORTED },
        { "application/x-protobuf;proto=io.prometheus.write.v3.Request",
          TS_RW_UNSUPPORTED },
        { "application/x-protobuf;proto=", TS_RW_UNSUPPORTED },
        { "application/x-protobuf;proto", TS_RW_UNSUPPORTED },
        { "application/x-protobuf;proto = prometheus.WriteRequest",
          TS_RW_UNSUPPORTED },
        { "application/x-protobuf;proto=\"unterminated", TS_RW_UNSUPPORTED },
        { "application/x-protobuf garbage", TS_RW_UNSUPPORTED },
        { "application/x-protobuffer", TS_RW_UNSUPPORTED },
        { "application/json", TS_RW_UNSUPPORTED },
        { "application/x-www-form-urlencoded", TS_RW_UNSUPPORTED },
        { "text/plain", TS_RW_UNSUPPORTED },
    };
    size_t  i;

    (void) state;

    assert_int_equal(ts_rw_content_type(NULL, 0), TS_RW_V1);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tr_check(cases[i].s, ts_rw_content_type(cases[i].s,
                                                strlen(cases[i].s))
                             == cases[i].v);
    }
}


static void
test_content_encoding(void **state)
{
    static const struct {
        const char  *s;
        int          rc;
    } cases[] = {
        { "", TS_OK },
        { " ", TS_OK },
        { "snappy", TS_OK },
        { "Snappy", TS_OK },
        { " SNAPPY\t", TS_OK },
        { "gzip", TS_ERR_UNSUPPORTED },
        { "zstd", TS_ERR_UNSUPPORTED },
        { "identity", TS_ERR_UNSUPPORTED },
        { "snappy, gzip", TS_ERR_UNSUPPORTED },
        { "x-snappy-framed", TS_ERR_UNSUPPORTED },
        { "snap", TS_ERR_UNSUPPORTED },
    };
    size_t  i;

    (void) state;

    assert_int_equal(ts_rw_content_encoding(NULL, 0), TS_OK);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tr_check(cases[i].s, ts_rw_content_encoding(cases[i].s,
                                                    strlen(cases[i].s))
                             == cases[i].rc);
    }
}


/* snappy */

static void
test_uncompress_edges(void **state)
{
    ProtobufCAllocator  pa;
    tr_alloc_t          a;
    ts_reject_t         why;
    uint8_t             data[5000], *z, *out, bomb[64];
    size_t              zlen, len, hl, i;
    uint64_t            declared;

    (void) state;

    for (i = 0; i < sizeof(data); i++) {
        data[i] = (uint8_t) (i * 7 % 251);
    }

    z = tr_snappy(data, sizeof(data), &zlen);
    memset(&a, 0, sizeof(a));
    pa = (ProtobufCAllocator) { tr_alloc, tr_free, &a };

    /* round trip, limit exactly the size */
    assert_int_equal(ts_rw_uncompress(z, zlen, sizeof(data), &pa, &out, &len,
                                      &why), TS_OK);
    assert_int_equal(len, sizeof(data));
    assert_memory_equal(out, data, len);
    tr_free(&a, out);

    /* one byte over the limit: refused before any allocation */
    memset(&a, 0, sizeof(a));
    assert_int_equal(ts_rw_uncompress(z, zlen, sizeof(data) - 1, &pa, &out,
                                      &len, &why), TS_ERR_LIMIT);
    assert_int_equal(why.code, TS_REJECT_BODY_TOO_LARGE);
    assert_int_equal(a.allocs, 0);
    assert_null(out);

    /* a bomb: a 4 GiB header in front of the real stream */
    for (hl = 0; z[hl] & 0x80; hl++) {
        /* void */
    }
    hl++;

    declared = 0xffffffffULL;
    i = tr_varint(bomb, declared);
    memcpy(bomb + i, z + hl, 16);
    assert_int_equal(ts_rw_uncompress(bomb, i + 16, 32 << 20, &pa, &out, &len,
                                      &why), TS_ERR_LIMIT);
    assert_int_equal(a.allocs, 0);
    assert_non_null(strstr(why.msg, "4294967295 exceeds the limit of "
                                    "33554432"));

    /* the header claims one byte more than the stream yields */
    i = tr_varint(bomb, sizeof(data) + 1);
    {
        uint8_t  *lie = malloc(zlen - hl + i);

        assert_non_null(lie);
        memcpy(lie, bomb, i);
        memcpy(lie + i, z + hl, zlen - hl);
        assert_int_equal(ts_rw_uncompress(lie, zlen - hl + i, 1 << 20, &pa,
                                          &out, &len, &why),
                         TS_ERR_CORRUPT);
        free(lie);
    }

    /* truncated stream */
    assert_int_equal(ts_rw_uncompress(z, zlen - 3, 1 << 20, &pa, &out, &len,
                                      &why), TS_ERR_CORRUPT);
    assert_int_equal(why.code, TS_REJECT_MALFORMED_BODY);

    /* empty body: no length header at all */
    assert_int_equal(ts_rw_uncompress(z, 0, 1 << 20, &pa, &out, &len, &why),
                     TS_ERR_CORRUPT);

    /* every failure freed what it took */
    assert_int_equal(a.allocs, a.frees);
    free(z);

    /* an empty message compresses to a valid, empty block */
    z = tr_snappy(data, 0, &zlen);
    assert_int_equal(ts_rw_uncompress(z, zlen, 0, NULL, &out, &len, NULL),
                     TS_OK);
    assert_int_equal(len, 0);
    free(out);
    free(z);
}


/* the real payloads */

static void
tr_fixture_check(const tr_fixture_t *fx, const ts_rw_request_t *req)
{
    const ts_rw_series_t  *s;
    uint64_t               labels, nan_go, stale;
    uint32_t               i, j;

    labels = 0;
    nan_go = 0;
    stale = 0;

    tr_check(fx->file, req->decoded.series == fx->series);
    tr_check(fx->file, req->nseries == fx->series);
    tr_check(fx->file, req->decoded.samples == fx->samples);
    tr_check(fx->file, req->decoded.metadata == fx->metadata);
    tr_check(fx->file, req->nmetadata == fx->metadata);
    tr_check(fx->file, req->decoded.histograms == 0);
    tr_check(fx->file, req->decoded.exemplars == 0);
    tr_check(fx->file, req->rejected.series == 0);
    tr_check(fx->file, req->rejected.metadata == 0);
    tr_check(fx->file, req->why.code == TS_REJECT_NONE);

    for (i = 0; i < req->nseries; i++) {
        s = &req->series[i];
        labels += s->nlabels;

        tr_check(fx->file, s->reject == TS_REJECT_NONE);
        tr_check(fx->file, ts_labels_sorted(s->labels, s->nlabels));
        tr_check(fx->file, s->hash == ts_labels_hash(s->labels, s->nlabels));
        tr_check(fx->file, ts_labels_find(s->labels, s->nlabels, "cluster",
                                          7) != NULL);

        for (j = 0; j < s->nsamples; j++) {
            nan_go += s->samples[j].v == TR_NAN_GO;
            stale += s->samples[j].v == TS_RW_STALE_NAN;
        }
    }

    tr_check(fx->file, labels == fx->labels);
    tr_check(fx->file, nan_go == fx->nan_go);
    tr_check(fx->file, stale == fx->stale);
}


static void
test_fixtures(void **state)
{
    const tr_fixture_t  *fx;
    ts_rw_request_t      req;
    ts_limits_t          lim;
    const char          *v;
    uint8_t             *z, *raw;
    char                *hdr, path[256];
    size_t               zlen, hlen, rlen, vlen, i;

    (void) state;

    ts_limits_default(&lim);
    assert_int_equal(sizeof(tr_fixtures) / sizeof(tr_fixtures[0]), 40);

    for (i = 0; i < sizeof(tr_fixtures) / sizeof(tr_fixtures[0]); i++) {
        fx = &tr_fixtures[i];

        snprintf(path, sizeof(path), TR_DATA "%s.headers", fx->file);
        hdr = (char *) tr_read(path, &hlen);
        snprintf(path, sizeof(path), TR_DATA "%s.snappy", fx->file);
        z = tr_read(path, &zlen);

        v = tr_header(hdr, "Content-Type", &vlen);
        tr_check(fx->file, v != NULL);
        tr_check(fx->file, ts_rw_content_type(v, vlen) == TS_RW_V1);
        v = tr_header(hdr, "Content-Encoding", &vlen);
        tr_check(fx->file, v != NULL);
        tr_check(fx->file, ts_rw_content_encoding(v, vlen) == TS_OK);

        tr_check(fx->file, ts_rw_uncompress(z, zlen, lim.max_body_size, NULL,
                                            &raw, &rlen, NULL) == TS_OK);
        tr_check(fx->file, rlen == fx->raw_len);

        tr_check(fx->file, tr_decode(&req, &lim, TS_RW_V1, raw, rlen)
                           == TS_OK);

        tr_fixture_check(fx, &req);

        /* the body goes after the request: labels may point into it */
        ts_rw_request_free(&req);
        free(raw);
        free(z);
        free(hdr);
    }
}


static void
test_fixture_content(void **state)
{
    const ts_rw_metadata_t  *m;
    const ts_rw_series_t    *s;
    ts_rw_request_t          req;
    ts_limits_t              lim;
    uint8_t                 *z, *raw;
    size_t                   zlen, rlen;

    (void) state;

    ts_limits_default(&lim);

    /* first series of req0000, as protoc-c --decode prints it */
    z = tr_read(TR_DATA "req0000.snappy", &zlen);
    assert_int_equal(ts_rw_uncompress(z, zlen, lim.max_body_size, NULL, &raw,
                                      &rlen, NULL), TS_OK);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, raw, rlen), TS_OK);

    s = &req.series[0];
    assert_int_equal(s->nlabels, 5);
    assert_memory_equal(s->labels[0].value, "go_gc_duration_seconds", 22);
    assert_memory_equal(s->labels[2].name, "instance", 8);
    assert_memory_equal(s->labels[2].value, "127.0.0.1:19092", 15);
    assert_memory_equal(s->labels[4].name, "quantile", 8);
    assert_int_equal(s->labels[4].value_len, 1);
    assert_int_equal(s->nsamples, 1);
    assert_true(s->samples[0].t == 1795376413745LL);
    assert_true(s->samples[0].v == tr_bits(2.9736e-05));
    assert_null(s->start_ts);
    assert_null(s->meta);

    ts_rw_request_free(&req);
    free(raw);
    free(z);

    /* a metadata-only request */
    z = tr_read(TR_DATA "req0005.snappy", &zlen);
    assert_int_equal(ts_rw_uncompress(z, zlen, lim.max_body_size, NULL, &raw,
                                      &rlen, NULL), TS_OK);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, raw, rlen), TS_OK);

    m = ts_rw_metadata_find(&req, "node_filesystem_readonly", 24);
    assert_non_null(m);
    assert_int_equal(m->type, TS_METRIC_GAUGE);
    assert_int_equal(m->help_len, strlen("Filesystem read-only status."));
    assert_memory_equal(m->help, "Filesystem read-only status.", m->help_len);
    assert_int_equal(m->unit_len, 0);

    m = ts_rw_metadata_find(&req, "node_netstat_Udp_RcvbufErrors", 29);
    assert_non_null(m);
    assert_int_equal(m->type, TS_METRIC_UNKNOWN);

    assert_null(ts_rw_metadata_find(&req, "node_filesystem", 15));

    ts_rw_request_free(&req);
    free(raw);
    free(z);
}


/* v1 built with the encoder */

static void
test_v1_partial(void **state)
{
    const ts_rw_series_t  *s;
    ts_rw_request_t        req;
    ts_limits_t            lim;
    tr_v1_t               *b;
    uint8_t               *buf;
    size_t                 len;

    (void) state;

    ts_limits_default(&lim);
    b = malloc(sizeof(tr_v1_t));
    assert_non_null(b);
    tr_v1_init(b);

    tr_v1_series(b, "__name__=up|job=node", 2, 1000);
    tr_v1_series(b, "__name__=up|bad-name=x", 3, 1000);
    tr_v1_series(b, "__name__=up|job=NULMARK\001X", 1, 1000);
    tr_v1_series(b, "zone=b|job=node|__name__=up|empty=", 1, 1000);
    tr_v1_series(b, "__name__=9up", 1, 1000);

    buf = tr_v1_pack(b, &len);
    tr_patch(buf, len, "NULMARK", 0);

    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, buf, len), TS_OK);

    assert_int_equal(req.decoded.series, 5);
    assert_int_equal(req.decoded.samples, 8);
    assert_int_equal(req.rejected.series, 3);
    assert_int_equal(req.rejected.samples, 5);

    assert_int_equal(req.series[0].reject, TS_REJECT_NONE);
    assert_int_equal(req.series[1].reject, TS_REJECT_INVALID_LABEL_NAME);
    assert_int_equal(req.series[2].reject, TS_REJECT_NUL_IN_STRING);
    assert_int_equal(req.series[3].reject, TS_REJECT_NONE);
    assert_int_equal(req.series[4].reject, TS_REJECT_INVALID_METRIC_NAME);

    /* the first rejected series explains the 400 */
    assert_int_equal(req.why.code, TS_REJECT_INVALID_LABEL_NAME);
    assert_non_null(strstr(req.why.msg, "invalid label: 'bad-name' "
                                        "metric: 'up'"));

    /* sorted, empty value dropped, hash of what remains */
    s = &req.series[3];
    assert_int_equal(s->nlabels, 3);
    assert_memory_equal(s->labels[0].name, "__name__", 8);
    assert_memory_equal(s->labels[1].name, "job", 3);
    assert_memory_equal(s->labels[2].name, "zone", 4);
    assert_true(s->hash == req.series[3].hash);
    assert_true(s->hash == ts_labels_hash(s->labels, 3));
    assert_true(req.series[0].hash != s->hash);

    ts_rw_request_free(&req);
    free(buf);
    free(b);
}


static void
test_v1_values_bit_exact(void **state)
{
    /*
     * -0.0 is missing: protobuf-c's proto3 packer compares the value with
     * 0 and omits it (Go's compares the bits and sends it); the decoder
     * copies fixed64 bits, so it would keep it either way.
     */
    static const uint64_t  bits[] = {
        TS_RW_STALE_NAN, TR_NAN_GO, 0x7ff8000000000000ULL,
        0xfff0000000000001ULL, 0xfff8000000000000ULL, 0x7ff0000000000000ULL,
        0x0000000000000001ULL, 0x3ff0000000000000ULL,
    };
    ts_rw_request_t  req;
    ts_limits_t      lim;
    tr_v1_t         *b;
    uint8_t         *buf;
    size_t           len, i, n;

    (void) state;

    n = sizeof(bits) / sizeof(bits[0]);
    ts_limits_default(&lim);
    b = malloc(sizeof(tr_v1_t));
    assert_non_null(b);
    tr_v1_init(b);

    tr_v1_series(b, "__name__=x", n, -5000);

    for (i = 0; i < n; i++) {
        b->smp[i].value = tr_double(bits[i]);
    }

    buf = tr_v1_pack(b, &len);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, buf, len), TS_OK);

    for (i = 0; i < n; i++) {
        assert_true(req.series[0].samples[i].v == bits[i]);
        assert_true(req.series[0].samples[i].t == -5000 + (int64_t) i * 15000);
    }

    ts_rw_request_free(&req);
    free(buf);
    free(b);
}


static void
test_v1_samples_limit(void **state)
{
    ts_rw_request_t  req;
    ts_limits_t      lim;
    tr_v1_t         *b;
    uint8_t         *buf;
    size_t           len;

    (void) state;

    ts_limits_default(&lim);
    lim.max_samples_per_series = 2;
    b = malloc(sizeof(tr_v1_t));
    assert_non_null(b);
    tr_v1_init(b);

    tr_v1_series(b, "__name__=a", 2, 0);
    tr_v1_series(b, "__name__=b", 3, 0);

    buf = tr_v1_pack(b, &len);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, buf, len), TS_OK);
    assert_int_equal(req.series[0].reject, TS_REJECT_NONE);
    assert_int_equal(req.series[1].reject, TS_REJECT_TOO_MANY_SAMPLES);
    assert_non_null(strstr(req.why.msg, "(actual: 3, limit: 2) metric: 'b'"));

    ts_rw_request_free(&req);
    free(buf);
    free(b);
}


static void
test_v1_exemplars(void **state)
{
    ts_rw_request_t          req;
    ts_limits_t              lim;
    Prometheus__TimeSeries  *ts;
    tr_v1_t                 *b;
    uint8_t                 *buf;
    char                     longv[200];
    size_t                   len;

    (void) state;

    ts_limits_default(&lim);
    lim.max_exemplars_per_series = 3;
    b = malloc(sizeof(tr_v1_t));
    assert_non_null(b);
    tr_v1_init(b);

    memset(longv, 'v', 125);
    memcpy(longv, "trace_id=", 9);
    longv[125] = '\0';

    ts = tr_v1_series(b, "__name__=rq_total", 1, 0);
    tr_v1_exemplar(b, ts, "trace_id=abc");
    tr_v1_exemplar(b, ts, "trace-id=abc");
    tr_v1_exemplar(b, ts, longv);
    tr_v1_exemplar(b, ts, "");
    tr_v1_exemplar(b, ts, "span_id=1");
    tr_v1_exemplar(b, ts, "span_id=2");

    buf = tr_v1_pack(b, &len);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, buf, len), TS_OK);

    /* exemplar problems drop the exemplar, never the series */
    assert_int_equal(req.series[0].reject, TS_REJECT_NONE);
    assert_int_equal(req.decoded.exemplars, 6);
    assert_int_equal(req.rejected.exemplars, 3);
    assert_int_equal(req.rejected.series, 0);
    assert_int_equal(req.series[0].nexemplars, 3);
    assert_int_equal(req.series[0].exemplars[0].nlabels, 1);
    assert_memory_equal(req.series[0].exemplars[0].labels[0].value, "abc", 3);
    assert_true(req.series[0].exemplars[0].t == 1700000000123LL);
    assert_true(req.series[0].exemplars[0].v == tr_bits(0.25));
    /* 8 + 116 code points: under the limit */
    assert_int_equal(req.series[0].exemplars[1].labels[0].value_len, 116);
    assert_int_equal(req.series[0].exemplars[2].nlabels, 0);
    assert_int_equal(req.why_other.code, TS_REJECT_INVALID_EXEMPLAR);
    assert_non_null(strstr(req.why_other.msg, "'trace-id'"));

    ts_rw_request_free(&req);
    free(buf);

    /* 8 + 116 + 3 two-byte characters = 127 code points: kept */
    tr_v1_init(b);
    ts = tr_v1_series(b, "__name__=rq_total", 1, 0);
    memcpy(longv + 125, "\xc3\xa4\xc3\xa4\xc3\xa4", 7);
    tr_v1_exemplar(b, ts, longv);

    buf = tr_v1_pack(b, &len);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, buf, len), TS_OK);
    assert_int_equal(req.series[0].nexemplars, 1);
    ts_rw_request_free(&req);
    free(buf);

    /* two more: 129 code points, over the limit of 128 */
    memcpy(longv + 131, "xy", 3);
    tr_v1_init(b);
    ts = tr_v1_series(b, "__name__=rq_total", 1, 0);
    tr_v1_exemplar(b, ts, longv);

    buf = tr_v1_pack(b, &len);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, buf, len), TS_OK);
    assert_int_equal(req.series[0].nexemplars, 0);
    assert_non_null(strstr(req.why_other.msg, "limit of 128 characters"));
    ts_rw_request_free(&req);
    free(buf);
    free(b);
}


static void
test_v1_metadata(void **state)
{
    const ts_rw_metadata_t  *m;
    ts_rw_request_t          req;
    ts_limits_t              lim;
    tr_v1_t                 *b;
    uint8_t                 *buf;
    static char              help[1100], unit[1100];
    size_t                   len;

    (void) state;

    ts_limits_default(&lim);
    b = malloc(sizeof(tr_v1_t));
    assert_non_null(b);
    tr_v1_init(b);

    /* 1023 ASCII then a 2-byte character straddling the limit */
    memset(help, 'h', 1023);
    memcpy(help + 1023, "\xc3\xa4tail", 7);
    memset(unit, 'u', 1025);

    tr_v1_meta(b, "zz_total", 1, "Zs.", "");
    tr_v1_meta(b, "aa_seconds", 3, help, "seconds");
    tr_v1_meta(b, "", 2, "no name", "");
    tr_v1_meta(b, "bad_unit", 2, "x", unit);
    tr_v1_meta(b, "nul_help", 2, "NULMARK\001", "");
    tr_v1_meta(b, "bad_utf8", 2, "\xc0\xaf", "");
    tr_v1_meta(b, "odd_type", 42, "", "");

    buf = tr_v1_pack(b, &len);
    tr_patch(buf, len, "NULMARK", 0);

    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, buf, len), TS_OK);
    assert_int_equal(req.decoded.metadata, 7);
    assert_int_equal(req.rejected.metadata, 4);
    assert_int_equal(req.nmetadata, 3);
    assert_int_equal(req.why_other.code, TS_REJECT_INVALID_METADATA);
    assert_non_null(strstr(req.why_other.msg, "no metric name"));

    /* sorted by name */
    assert_memory_equal(req.metadata[0].name, "aa_seconds", 10);
    assert_memory_equal(req.metadata[2].name, "zz_total", 8);

    m = ts_rw_metadata_find(&req, "aa_seconds", 10);
    assert_non_null(m);
    assert_int_equal(m->type, TS_METRIC_HISTOGRAM);
    assert_int_equal(m->help_len, 1023);
    assert_int_equal(m->unit_len, 7);

    m = ts_rw_metadata_find(&req, "odd_type", 8);
    assert_non_null(m);
    assert_int_equal(m->type, TS_METRIC_UNKNOWN);

    assert_null(ts_rw_metadata_find(&req, "nul_help", 8));
    assert_null(ts_rw_metadata_find(&req, "bad_unit", 8));

    ts_rw_request_free(&req);
    free(buf);
    free(b);
}


/* histograms: one case per rule, on top of a valid integer histogram */

static void
tr_hist_base(tr_hist_t *t)
{
    Prometheus__Histogram  *h = &t->h;
    int                     i;

    memset(t, 0, sizeof(tr_hist_t));
    prometheus__histogram__init(h);

    for (i = 0; i < 4; i++) {
        prometheus__bucket_span__init(&t->ps[i]);
        prometheus__bucket_span__init(&t->ns[i]);
        t->psp[i] = &t->ps[i];
        t->nsp[i] = &t->ns[i];
    }

    /* zero 1 + positive 1, 2, 1 + negative 2 = 7 observations */
    h->schema = 3;
    h->sum = 10.5;
    h->zero_threshold = 1e-128;
    h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
    h->count_int = 7;
    h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
    h->zero_count_int = 1;
    t->ps[0].offset = 0;
    t->ps[0].length = 2;
    t->ps[1].offset = 1;
    t->ps[1].length = 1;
    h->positive_spans = t->psp;
    h->n_positive_spans = 2;
    t->pd[0] = 1;
    t->pd[1] = 1;
    t->pd[2] = -1;
    h->positive_deltas = t->pd;
    h->n_positive_deltas = 3;
    t->ns[0].offset = -2;
    t->ns[0].length = 1;
    h->negative_spans = t->nsp;
    h->n_negative_spans = 1;
    t->nd[0] = 2;
    h->negative_deltas = t->nd;
    h->n_negative_deltas = 1;
    h->reset_hint = PROMETHEUS__HISTOGRAM__RESET_HINT__NO;
    h->timestamp = 1700000000000;
}


static void
tr_h_none(tr_hist_t *t, ts_limits_t *lim)
{
    (void) t;
    (void) lim;
}


static void
tr_h_float(tr_hist_t *t, ts_limits_t *lim)
{
    Prometheus__Histogram  *h = &t->h;

    (void) lim;

    h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
    h->count_float = 7.0;
    h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT;
    h->zero_count_float = 1.0;
    t->pc[0] = 1;
    t->pc[1] = 2;
    t->pc[2] = 1;
    h->positive_counts = t->pc;
    h->n_positive_counts = 3;
    t->nc[0] = 2;
    h->negative_counts = t->nc;
    h->n_negative_counts = 1;
    h->n_positive_deltas = 0;
    h->n_negative_deltas = 0;
}


static void
tr_h_custom(tr_hist_t *t, ts_limits_t *lim)
{
    Prometheus__Histogram  *h = &t->h;

    (void) lim;

    h->schema = TS_RW_SCHEMA_CUSTOM;
    h->zero_threshold = 0;
    h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT__NOT_SET;
    h->zero_count_int = 0;
    h->n_negative_spans = 0;
    h->n_negative_deltas = 0;
    t->cv[0] = 0.1;
    t->cv[1] = 1;
    t->cv[2] = 10;
    h->custom_values = t->cv;
    h->n_custom_values = 3;
    /* buckets 0..3, the last one +Inf */
    t->ps[0].offset = 0;
    t->ps[0].length = 4;
    h->n_positive_spans = 1;
    t->pd[0] = 1;
    t->pd[1] = 0;
    t->pd[2] = 0;
    t->pd[3] = 0;
    h->n_positive_deltas = 4;
    h->count_int = 4;
}


static void
tr_h_count_larger(tr_hist_t *t, ts_limits_t *lim)
{
    (void) lim;
    t->h.count_int = 100;
}


static void
tr_h_stale(tr_hist_t *t, ts_limits_t *lim)
{
    Prometheus__Histogram  *h = &t->h;

    (void) lim;

    h->sum = tr_double(TS_RW_STALE_NAN);
    h->count_int = 0;
    h->zero_count_int = 0;
    h->n_positive_spans = 0;
    h->n_positive_deltas = 0;
    h->n_negative_spans = 0;
    h->n_negative_deltas = 0;
}


static void
tr_h_schema_high(tr_hist_t *t, ts_limits_t *lim)
{
    (void) lim;
    t->h.schema = 9;
}


static void
tr_h_schema_low(tr_hist_t *t, ts_limits_t *lim)
{
    (void) lim;
    t->h.schema = -5;
}


static void
tr_h_spans_mismatch(tr_hist_t *t, ts_limits_t *lim)
{
    (void) lim;
    t->ps[1].length = 2;
}


static void
tr_h_negative_offset(tr_hist_t *t, ts_limits_t *lim)
{
    (void) lim;
    t->ps[1].offset = -1;
}


static void
tr_h_negative_bucket(tr_hist_t *t, ts_limits_t *lim)
{
    (void) lim;
    t->pd[1] = -2;
}


static void
tr_h_count_small(tr_hist_t *t, ts_limits_t *lim)
{
    (void) lim;
    t->h.count_int = 6;
}


static void
tr_h_mixed(tr_hist_t *t, ts_limits_t *lim)
{
    (void) lim;
    t->pc[0] = 1;
    t->h.positive_counts = t->pc;
    t->h.n_positive_counts = 1;
}


static void
tr_h_float_zero_int(tr_hist_t *t, ts_limits_t *lim)
{
    tr_h_float(t, lim);
    t->h.zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
    t->h.zero_count_int = 1;
}


static void
tr_h_float_negative(tr_hist_t *t, ts_limits_t *lim)
{
    tr_h_float(t, lim);
    t->pc[1] = -1;
}


static void
tr_h_delta_overflow(tr_hist_t *t, ts_limits_t *lim)
{
    (void) lim;
    t->pd[0] = INT64_MAX;
    t->pd[1] = 1;
}


static void
tr_h_custom_not_increasing(tr_hist_t *t, ts_limits_t *lim)
{
    tr_h_custom(t, lim);
    t->cv[1] = 0.1;
}


static void
tr_h_custom_inf(tr_hist_t *t, ts_limits_t *lim)
{
    tr_h_custom(t, lim);
    t->cv[2] = INFINITY;
}


static void
tr_h_custom_nan(tr_hist_t *t, ts_limits_t *lim)
{
    tr_h_custom(t, lim);
    t->cv[0] = NAN;
}


static void
tr_h_custom_negative(tr_hist_t *t, ts_limits_t *lim)
{
    tr_h_custom(t, lim);
    t->ns[0].offset = 0;
    t->ns[0].length = 1;
    t->h.n_negative_spans = 1;
    t->nd[0] = 1;
    t->h.n_negative_deltas = 1;
    t->h.count_int = 5;
}


static void
tr_h_custom_beyond(tr_hist_t *t, ts_limits_t *lim)
{
    tr_h_custom(t, lim);
    t->ps[0].offset = 1;
}


static void
tr_h_custom_on_exp(tr_hist_t *t, ts_limits_t *lim)
{
    (void) lim;
    t->cv[0] = 1;
    t->h.custom_values = t->cv;
    t->h.n_custom_values = 1;
}


static void
tr_h_bucket_limit(tr_hist_t *t, ts_limits_t *lim)
{
    (void) t;
    lim->max_histogram_buckets = 3;
}


static void
tr_h_bucket_limit_ok(tr_hist_t *t, ts_limits_t *lim)
{
    (void) t;
    lim->max_histogram_buckets = 4;
}


static const tr_hist_case_t  tr_hist_cases[] = {
    { "valid_int", tr_h_none, TS_REJECT_NONE },
    { "valid_float", tr_h_float, TS_REJECT_NONE },
    { "valid_custom", tr_h_custom, TS_REJECT_NONE },
    { "count_above_buckets", tr_h_count_larger, TS_REJECT_NONE },
    { "stale_marker", tr_h_stale, TS_REJECT_NONE },
    { "bucket_limit_at_edge", tr_h_bucket_limit_ok, TS_REJECT_NONE },
    { "schema_above_8", tr_h_schema_high, TS_REJECT_INVALID_HISTOGRAM },
    { "schema_below_minus_4", tr_h_schema_low, TS_REJECT_INVALID_HISTOGRAM },
    { "spans_buckets_mismatch", tr_h_spans_mismatch,
      TS_REJECT_INVALID_HISTOGRAM },
    { "negative_offset_second_span", tr_h_negative_offset,
      TS_REJECT_INVALID_HISTOGRAM },
    { "negative_bucket_count", tr_h_negative_bucket,
      TS_REJECT_INVALID_HISTOGRAM },
    { "count_below_buckets", tr_h_count_small, TS_REJECT_INVALID_HISTOGRAM },
    { "int_with_float_counts", tr_h_mixed, TS_REJECT_INVALID_HISTOGRAM },
    { "float_with_int_zero_count", tr_h_float_zero_int,
      TS_REJECT_INVALID_HISTOGRAM },
    { "float_negative_count", tr_h_float_negative,
      TS_REJECT_INVALID_HISTOGRAM },
    { "delta_overflow", tr_h_delta_overflow, TS_REJECT_INVALID_HISTOGRAM },
    { "custom_not_increasing", tr_h_custom_not_increasing,
      TS_REJECT_INVALID_HISTOGRAM },
    { "custom_ends_in_inf", tr_h_custom_inf, TS_REJECT_INVALID_HISTOGRAM },
    { "custom_nan_bound", tr_h_custom_nan, TS_REJECT_INVALID_HISTOGRAM },
    { "custom_negative_buckets", tr_h_custom_negative,
      TS_REJECT_INVALID_HISTOGRAM },
    { "custom_span_beyond_bounds", tr_h_custom_beyond,
      TS_REJECT_INVALID_HISTOGRAM },
    { "custom_bounds_exponential", tr_h_custom_on_exp,
      TS_REJECT_INVALID_HISTOGRAM },
    { "too_many_buckets", tr_h_bucket_limit, TS_REJECT_TOO_MANY_BUCKETS },
};


static void
tr_hist_view_check(const ts_rw_histogram_t *v)
{
    assert_false(v->is_float);
    assert_int_equal(v->schema, 3);
    assert_int_equal(v->reset_hint, TS_RESET_NO);
    assert_true(v->t == 1700000000000LL);
    assert_true(v->sum == tr_bits(10.5));
    assert_true(v->count == 7);
    assert_true(v->zero_count == 1);
    assert_int_equal(v->n_pos_spans, 2);
    assert_int_equal(v->pos_spans[1].offset, 1);
    assert_int_equal(v->pos_spans[1].length, 1);
    assert_int_equal(v->n_neg_spans, 1);
    assert_int_equal(v->neg_spans[0].offset, -2);
    assert_int_equal(v->n_pos, 3);
    assert_true(v->pos_deltas[2] == -1);
    assert_int_equal(v->n_neg, 1);
    assert_true(v->neg_deltas[0] == 2);
    assert_null(v->pos_counts);
}


static void
test_histograms(void **state)
{
    const tr_hist_case_t  *c;
    ts_rw_request_t        req;
    ts_limits_t            lim;
    tr_hist_t              t;
    tr_v1_t               *b;
    uint8_t               *buf;
    size_t                 len, i;

    (void) state;

    b = malloc(sizeof(tr_v1_t));
    assert_non_null(b);

    for (i = 0; i < sizeof(tr_hist_cases) / sizeof(tr_hist_cases[0]); i++) {
        c = &tr_hist_cases[i];
        ts_limits_default(&lim);
        tr_hist_base(&t);
        c->mod(&t, &lim);

        tr_v1_init(b);
        b->hp[0] = &t.h;
        tr_v1_series(b, "__name__=h", 0, 0);
        b->ts[0].histograms = b->hp;
        b->ts[0].n_histograms = 1;

        buf = tr_v1_pack(b, &len);
        tr_check(c->name, tr_decode(&req, &lim, TS_RW_V1, buf, len) == TS_OK);
        tr_check(c->name, req.series[0].reject == c->code);
        tr_check(c->name, req.decoded.histograms == 1);
        tr_check(c->name, req.rejected.histograms == (c->code != 0));

        if (c->mod == tr_h_none) {
            tr_hist_view_check(&req.series[0].histograms[0]);
        }

        if (c->code != TS_REJECT_NONE
            && strstr(req.why.msg, "metric: 'h'") == NULL)
        {
            fail_msg("%s: reason \"%s\"", c->name, req.why.msg);
        }

        ts_rw_request_free(&req);
        free(buf);
    }

    free(b);
}


/* v2 */

static void
tr_v2_example(tr_v2_t *b)
{
    Io__Prometheus__Write__V2__TimeSeries  *ts;
    Io__Prometheus__Write__V2__Histogram   *h;

    tr_v2_init(b);

    ts = tr_v2_series(b, "__name__=http_requests_total|job=api", 2, 1000);
    ts->created_timestamp = 400;
    b->smp[0].start_timestamp = 500;
    b->smp[1].value = tr_double(TS_RW_STALE_NAN);
    tr_v2_exemplar(b, ts, "trace_id=abc123");
    tr_v2_meta(b, ts, 1, "Number of requests.", "requests");

    ts = tr_v2_series(b, "__name__=latency_seconds|job=api", 0, 0);
    h = &b->h[0];
    io__prometheus__write__v2__histogram__init(h);
    io__prometheus__write__v2__bucket_span__init(&b->sp[0]);
    b->sp[0].offset = 2;
    b->sp[0].length = 2;
    b->spp[0] = &b->sp[0];
    b->deltas[0] = 3;
    b->deltas[1] = -1;
    h->schema = 0;
    h->count_case = IO__PROMETHEUS__WRITE__V2__HISTOGRAM__COUNT_COUNT_INT;
    h->count_int = 5;
    h->sum = 2.5;
    h->positive_spans = b->spp;
    h->n_positive_spans = 1;
    h->positive_deltas = b->deltas;
    h->n_positive_deltas = 2;
    h->timestamp = 2000;
    h->start_timestamp = 300;
    b->hp[0] = h;
    ts->histograms = b->hp;
    ts->n_histograms = 1;
    tr_v2_meta(b, ts, 3, "Latency.", "seconds");

    tr_v2_series(b, "job=api|__name__=up", 1, 5000);
}


static void
test_v2_round_trip(void **state)
{
    const ts_rw_series_t  *s;
    ts_rw_request_t        req, req1;
    ts_limits_t            lim;
    tr_v2_t               *b;
    tr_v1_t               *b1;
    uint8_t               *buf;
    size_t                 len;

    (void) state;

    ts_limits_default(&lim);
    b = malloc(sizeof(tr_v2_t));
    b1 = malloc(sizeof(tr_v1_t));
    assert_non_null(b);
    assert_non_null(b1);

    tr_v2_example(b);
    buf = tr_v2_pack(b, &len);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V2, buf, len), TS_OK);
    free(buf);

    assert_int_equal(req.decoded.series, 3);
    assert_int_equal(req.decoded.samples, 3);
    assert_int_equal(req.decoded.histograms, 1);
    assert_int_equal(req.decoded.exemplars, 1);
    assert_int_equal(req.decoded.metadata, 2);
    assert_int_equal(req.rejected.series, 0);

    s = &req.series[0];
    assert_int_equal(s->nlabels, 2);
    assert_int_equal(s->labels[0].value_len, 19);
    assert_memory_equal(s->labels[0].value, "http_requests_total", 19);
    assert_true(s->samples[0].t == 1000 && s->samples[1].t == 16000);
    assert_true(s->samples[0].v == tr_bits(0.5));
    assert_true(s->samples[1].v == TS_RW_STALE_NAN);
    assert_non_null(s->start_ts);
    assert_true(s->start_ts[0] == 500);
    assert_true(s->start_ts[1] == 400);
    assert_true(s->created_t == 400);
    assert_int_equal(s->nexemplars, 1);
    assert_memory_equal(s->exemplars[0].labels[0].name, "trace_id", 8);
    assert_non_null(s->meta);
    assert_int_equal(s->meta->type, TS_METRIC_COUNTER);
    assert_int_equal(s->meta->help_len, 19);
    assert_memory_equal(s->meta->unit, "requests", 8);

    s = &req.series[1];
    assert_int_equal(s->nhistograms, 1);
    assert_true(s->histograms[0].start_t == 300);
    assert_true(s->histograms[0].count == 5);
    assert_int_equal(s->histograms[0].pos_spans[0].offset, 2);
    assert_int_equal(s->meta->type, TS_METRIC_HISTOGRAM);

    s = &req.series[2];
    assert_null(s->start_ts);
    assert_null(s->meta);
    assert_memory_equal(s->labels[0].name, "__name__", 8);

    /* the same labels sent as v1 hash the same */
    tr_v1_init(b1);
    tr_v1_series(b1, "job=api|__name__=up", 1, 5000);
    buf = tr_v1_pack(b1, &len);
    assert_int_equal(tr_decode(&req1, &lim, TS_RW_V1, buf, len), TS_OK);
    assert_true(req1.series[0].hash == req.series[2].hash);
    assert_int_equal(ts_labels_cmp(req1.series[0].labels,
                                   req1.series[0].nlabels,
                                   req.series[2].labels,
                                   req.series[2].nlabels), 0);

    ts_rw_request_free(&req1);
    ts_rw_request_free(&req);
    free(buf);
    free(b1);
    free(b);
}


static void
tr_v2_odd_refs(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *s)
{
    (void) b;
    s->n_labels_refs = 3;
}


static void
tr_v2_ref_range(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *s)
{
    s->labels_refs[3] = (uint32_t) b->r.n_symbols;
}


static void
tr_v2_ref_huge(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *s)
{
    (void) b;
    s->labels_refs[1] = UINT32_MAX;
}


static void
tr_v2_exemplar_ref(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *s)
{
    Io__Prometheus__Write__V2__Exemplar  *e;

    e = tr_v2_exemplar(b, s, "trace_id=t");
    e->labels_refs[1] = (uint32_t) b->r.n_symbols + 5;
}


static void
tr_v2_exemplar_odd(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *s)
{
    Io__Prometheus__Write__V2__Exemplar  *e;

    e = tr_v2_exemplar(b, s, "trace_id=t");
    e->n_labels_refs = 1;
}


static void
tr_v2_help_ref(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *s)
{
    tr_v2_meta(b, s, 2, "help", "");
    b->md[s - b->ts].help_ref = 1000;
}


static void
tr_v2_unit_ref(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *s)
{
    tr_v2_meta(b, s, 2, "help", "");
    b->md[s - b->ts].unit_ref = 1000;
}


static void
tr_v2_no_labels(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *s)
{
    (void) b;
    s->n_labels_refs = 0;
}


static void
tr_v2_bad_name(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *s)
{
    s->labels_refs[2] = tr_sym(b, "not-valid");
}


static void
tr_v2_long_unit(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *s)
{
    static char  unit[1100];

    memset(unit, 'u', 1025);
    tr_v2_meta(b, s, 2, "help", unit);
}


static void
tr_v2_ok(tr_v2_t *b, Io__Prometheus__Write__V2__TimeSeries *s)
{
    (void) b;
    (void) s;
}


static const tr_v2_case_t  tr_v2_cases[] = {
    { "valid", tr_v2_ok, TS_REJECT_NONE },
    { "odd_label_refs", tr_v2_odd_refs, TS_REJECT_BAD_SYMBOL_REF },
    { "label_ref_out_of_range", tr_v2_ref_range, TS_REJECT_BAD_SYMBOL_REF },
    { "label_ref_uint32_max", tr_v2_ref_huge, TS_REJECT_BAD_SYMBOL_REF },
    { "exemplar_ref_out_of_range", tr_v2_exemplar_ref,
      TS_REJECT_BAD_SYMBOL_REF },
    { "exemplar_odd_refs", tr_v2_exemplar_odd, TS_REJECT_BAD_SYMBOL_REF },
    { "help_ref_out_of_range", tr_v2_help_ref, TS_REJECT_BAD_SYMBOL_REF },
    { "unit_ref_out_of_range", tr_v2_unit_ref, TS_REJECT_BAD_SYMBOL_REF },
    { "no_label_refs", tr_v2_no_labels, TS_REJECT_MISSING_METRIC_NAME },
    { "invalid_label_name", tr_v2_bad_name, TS_REJECT_INVALID_LABEL_NAME },
    { "unit_too_long_drops_metadata", tr_v2_long_unit, TS_REJECT_NONE },
};


static void
test_v2_series_rejects(void **state)
{
    Io__Prometheus__Write__V2__TimeSeries  *bad;
    const tr_v2_case_t                     *c;
    ts_rw_request_t                         req;
    ts_limits_t                             lim;
    tr_v2_t                                *b;
    uint8_t                                *buf;
    size_t                                  len, i;

    (void) state;

    ts_limits_default(&lim);
    b = malloc(sizeof(tr_v2_t));
    assert_non_null(b);

    for (i = 0; i < sizeof(tr_v2_cases) / sizeof(tr_v2_cases[0]); i++) {
        c = &tr_v2_cases[i];

        tr_v2_init(b);
        tr_v2_series(b, "__name__=good|job=a", 1, 0);
        bad = tr_v2_series(b, "__name__=bad|job=b", 2, 0);
        c->mod(b, bad);

        buf = tr_v2_pack(b, &len);
        tr_check(c->name, tr_decode(&req, &lim, TS_RW_V2, buf, len) == TS_OK);
        tr_check(c->name, req.series[0].reject == TS_REJECT_NONE);
        tr_check(c->name, req.series[1].reject == c->code);
        tr_check(c->name, req.decoded.samples == 3);
        tr_check(c->name, req.rejected.samples == (c->code ? 2u : 0u));
        tr_check(c->name, req.why.code == c->code);

        if (c->mod == tr_v2_long_unit) {
            tr_check(c->name, req.series[1].meta == NULL);
            tr_check(c->name, req.rejected.metadata == 1);
        }

        ts_rw_request_free(&req);
        free(buf);
    }

    free(b);
}


static void
test_v2_symbols(void **state)
{
    ts_rw_request_t  req;
    ts_limits_t      lim;
    tr_v2_t         *b;
    uint8_t         *buf;
    size_t           len;

    (void) state;

    ts_limits_default(&lim);
    b = malloc(sizeof(tr_v2_t));
    assert_non_null(b);

    /* a NUL inside a referenced symbol: that series only */
    tr_v2_init(b);
    tr_v2_series(b, "__name__=good", 1, 0);
    tr_v2_series(b, "__name__=bad|job=NULMARK\001", 1, 0);
    buf = tr_v2_pack(b, &len);
    tr_patch(buf, len, "NULMARK", 0);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V2, buf, len), TS_OK);
    assert_int_equal(req.series[0].reject, TS_REJECT_NONE);
    assert_int_equal(req.series[1].reject, TS_REJECT_BAD_SYMBOL_REF);
    assert_non_null(strstr(req.why.msg, "NUL byte, metric: 'bad'"));
    ts_rw_request_free(&req);
    free(buf);

    /* symbols[0] must be "": the whole request is invalid */
    tr_v2_init(b);
    b->sym[0] = "x";
    tr_v2_series(b, "__name__=a", 1, 0);
    buf = tr_v2_pack(b, &len);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V2, buf, len),
                     TS_ERR_INVALID);
    assert_int_equal(req.why.code, TS_REJECT_INVALID_SYMBOLS);
    ts_rw_request_free(&req);
    free(buf);

    /* "\0" is not "" either: protobuf-c packs symbols (field 4) first */
    tr_v2_init(b);
    b->sym[0] = "\001";
    tr_v2_series(b, "__name__=a", 1, 0);
    buf = tr_v2_pack(b, &len);
    assert_int_equal(buf[0], 4 << 3 | 2);
    assert_int_equal(buf[1], 1);
    assert_int_equal(buf[2], 1);
    buf[2] = 0;
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V2, buf, len),
                     TS_ERR_INVALID);
    ts_rw_request_free(&req);
    free(buf);

    /* no symbols at all: every series' refs are out of range */
    tr_v2_init(b);
    tr_v2_series(b, "__name__=a", 1, 0);
    b->r.n_symbols = 0;
    buf = tr_v2_pack(b, &len);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V2, buf, len), TS_OK);
    assert_int_equal(req.series[0].reject, TS_REJECT_BAD_SYMBOL_REF);
    ts_rw_request_free(&req);
    free(buf);

    /* an empty request */
    tr_v2_init(b);
    b->r.n_symbols = 0;
    buf = tr_v2_pack(b, &len);
    assert_int_equal(len, 0);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V2, buf, len), TS_OK);
    assert_int_equal(req.nseries, 0);
    ts_rw_request_free(&req);
    free(buf);
    free(b);
}


/* the whole request */

static void
test_request_failures(void **state)
{
    ts_rw_request_t  req;
    ts_limits_t      lim;
    tr_v1_t         *b;
    tr_v2_t         *b2;
    uint8_t         *buf;
    size_t           len;

    (void) state;

    ts_limits_default(&lim);
    b = malloc(sizeof(tr_v1_t));
    b2 = malloc(sizeof(tr_v2_t));
    assert_non_null(b);
    assert_non_null(b2);

    tr_v1_init(b);
    tr_v1_series(b, "__name__=a", 1, 0);
    tr_v1_series(b, "__name__=b", 1, 0);
    tr_v1_series(b, "__name__=c", 1, 0);
    buf = tr_v1_pack(b, &len);

    /* truncated: a submessage runs past the end */
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, buf, len - 1),
                     TS_ERR_CORRUPT);
    assert_int_equal(req.why.code, TS_REJECT_MALFORMED_BODY);
    assert_non_null(strstr(req.why.msg, "prometheus.WriteRequest"));
    ts_rw_request_free(&req);

    lim.max_series = 2;
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, buf, len),
                     TS_ERR_LIMIT);
    assert_int_equal(req.why.code, TS_REJECT_TOO_MANY_SERIES);
    assert_non_null(strstr(req.why.msg, "(actual: 3, limit: 2)"));
    ts_rw_request_free(&req);

    ts_limits_default(&lim);
    lim.max_body_size = len - 1;
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, buf, len),
                     TS_ERR_LIMIT);
    assert_int_equal(req.why.code, TS_REJECT_BODY_TOO_LARGE);
    ts_rw_request_free(&req);

    ts_limits_default(&lim);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_UNSUPPORTED, buf, len),
                     TS_ERR_UNSUPPORTED);
    ts_rw_request_free(&req);

    /* v1 bytes read as v2 (and the reverse) decode to nothing */
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V2, buf, len), TS_OK);
    assert_int_equal(req.nseries, 0);
    ts_rw_request_free(&req);
    free(buf);

    tr_v2_example(b2);
    buf = tr_v2_pack(b2, &len);
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, buf, len), TS_OK);
    assert_int_equal(req.nseries, 0);
    ts_rw_request_free(&req);

    /* v2 truncated */
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V2, buf, len - 2),
                     TS_ERR_CORRUPT);
    assert_non_null(strstr(req.why.msg, "io.prometheus.write.v2.Request"));
    ts_rw_request_free(&req);
    free(buf);

    free(b2);
    free(b);
}


/* allocators */

static uint8_t *
tr_fixture_raw(const char *file, size_t *len)
{
    char      path[256];
    uint8_t  *z, *raw;
    size_t    zlen;

    snprintf(path, sizeof(path), TR_DATA "%s.snappy", file);
    z = tr_read(path, &zlen);
    assert_int_equal(ts_rw_uncompress(z, zlen, 1 << 30, NULL, &raw, len,
                                      NULL), TS_OK);
    free(z);

    return raw;
}


/*
 * The v1 fast path against protobuf-c: every fixture, then mutated
 * copies of each (bytes changed, a tail cut), each decoded as is and
 * with an unknown field appended, which sends it to protobuf-c.  Both
 * must give the same request whenever the body decodes.
 */

#define TR_MUTATIONS  400

static uint64_t
tr_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;

    return *x;
}


static int
tr_fast_slow(const ts_limits_t *lim, const uint8_t *raw, size_t len,
    uint8_t *slow)
{
    int              rc1, rc2, same;
    ts_rw_request_t  a, b;

    memcpy(slow, raw, len);
    memcpy(slow + len, RW_SAME_SUFFIX, RW_SAME_SUFFIX_LEN);

    rc1 = tr_decode(&a, lim, TS_RW_V1, raw, len);
    rc2 = tr_decode(&b, lim, TS_RW_V1, slow, len + RW_SAME_SUFFIX_LEN);

    /*
     * the fast path fails nothing itself: a failure came from protobuf-c
     * (then the suffix may complete a cut message: nothing to compare)
     */
    same = rc1 != TS_OK || (rc2 == TS_OK && rw_same(&a, &b));

    ts_rw_request_free(&a);
    ts_rw_request_free(&b);

    return same;
}


static void
test_v1_fast_path(void **state)
{
    ts_limits_t  lim;
    uint8_t     *raw, *mut, *slow;
    uint64_t     x;
    size_t       i, k, len, n, pos;
    char         name[64];

    (void) state;

    ts_limits_default(&lim);
    x = 0x9e3779b97f4a7c15ULL;

    for (i = 0; i < sizeof(tr_fixtures) / sizeof(tr_fixtures[0]); i++) {
        raw = tr_fixture_raw(tr_fixtures[i].file, &len);
        mut = malloc(len + 1);
        slow = malloc(len + RW_SAME_SUFFIX_LEN + 1);
        assert_non_null(mut);
        assert_non_null(slow);

        snprintf(name, sizeof(name), "%s as is", tr_fixtures[i].file);
        tr_check(name, tr_fast_slow(&lim, raw, len, slow));

        for (k = 0; k < TR_MUTATIONS; k++) {
            memcpy(mut, raw, len);
            n = len;

            if (k % 8 == 7) {
                n = (size_t) (tr_rand(&x) % (len + 1));

            } else {
                pos = (size_t) (tr_rand(&x) % (len ? len : 1));
                mut[pos] = (uint8_t) tr_rand(&x);

                if (k % 3 == 0) {
                    pos = (size_t) (tr_rand(&x) % (len ? len : 1));
                    mut[pos] ^= (uint8_t) (1u << (tr_rand(&x) % 8));
                }
            }

            snprintf(name, sizeof(name), "%s mutation %zu",
                     tr_fixtures[i].file, k);
            tr_check(name, tr_fast_slow(&lim, mut, n, slow));
        }

        free(slow);
        free(mut);
        free(raw);
    }
}


/*
 * Bodies denser than the fast path's guess (one label per 8 bytes, one
 * sample per 16): 100 labels of 6 bytes, then 200 empty samples of 2
 * bytes.  The fill stops, the body is counted and filled again, and the
 * request equals protobuf-c's.
 */
static void
test_v1_fast_dense(void **state)
{
    uint8_t          buf[2048], slow[2048 + RW_SAME_SUFFIX_LEN];
    size_t           i, k, len, ts;
    ts_limits_t      lim;
    ts_rw_request_t  a;

    (void) state;

    ts_limits_default(&lim);
    lim.max_label_names_per_series = 200;

    for (k = 0; k < 2; k++) {
        len = 0;
        buf[len++] = 0x0a;                          /* timeseries */
        ts = len;
        buf[len++] = 0x80;                          /* 2-byte length */
        buf[len++] = 0x00;

        /* labels "aa", "ab", ... with empty values; k == 1: one */

        for (i = 0; i < (k == 0 ? 100 : 1); i++) {
            buf[len++] = 0x0a;
            buf[len++] = 4;
            buf[len++] = 0x0a;
            buf[len++] = 2;
            buf[len++] = (uint8_t) ('a' + i / 26);
            buf[len++] = (uint8_t) ('a' + i % 26);
        }

        /* one sample, or 200 empty ones */

        for (i = 0; i < (k == 0 ? 1 : 200); i++) {
            buf[len++] = 0x12;
            buf[len++] = 0;
        }

        buf[ts] = (uint8_t) (0x80 | ((len - ts - 2) & 0x7f));
        buf[ts + 1] = (uint8_t) ((len - ts - 2) >> 7);

        assert_int_equal(tr_decode(&a, &lim, TS_RW_V1, buf, len), TS_OK);
        assert_int_equal(a.nseries, 1);
        assert_int_equal(a.series[0].nlabels, k == 0 ? 100 : 1);
        assert_int_equal(a.series[0].nsamples, k == 0 ? 1 : 200);
        ts_rw_request_free(&a);

        assert_true(tr_fast_slow(&lim, buf, len, slow));
    }
}

/*
 * req->known: series found in a stand-in store (rw_same.h) skip the
 * character checks but not the limits.  Every fixture, and mutated
 * copies, decoded with the lookup over the fixture's own accepted
 * series must equal the decode without it, with the default limits
 * and with limits that the stored series break.
 */

static size_t
tr_known_same(const ts_limits_t *lim, const ts_rw_request_t *store,
    const uint8_t *raw, size_t len, int *same)
{
    int              rc1, rc2;
    rw_known_t       k;
    ts_rw_request_t  a, b;

    k.store = store;
    k.found = 0;

    rc1 = tr_decode(&a, lim, TS_RW_V1, raw, len);

    ts_rw_request_init(&b, NULL, lim);
    b.known = rw_known;
    b.known_data = &k;
    rc2 = ts_rw_decode(&b, TS_RW_V1, raw, len);

    *same = rc1 == rc2 && (rc1 != TS_OK || rw_same(&a, &b));

    ts_rw_request_free(&a);
    ts_rw_request_free(&b);

    return k.found;
}


static void
test_v1_known(void **state)
{
    static const struct {
        const char  *name;
        uint32_t     labels;
        uint32_t     name_len;
        uint32_t     value_len;
        uint32_t     samples;
    } strict[] = {
        { "label count", 4, 1024, 2048, 100000 },
        { "name length", 30, 6, 2048, 100000 },
        { "value length", 30, 1024, 12, 100000 },
        { "samples", 30, 1024, 2048, 0 },
    };
    ts_rw_request_t  store, strict_req;
    ts_limits_t      lim, lim2;
    uint8_t         *raw, *mut;
    uint64_t         x;
    size_t           i, j, k, len, found, accepted;
    int              same;
    char             name[96];

    (void) state;

    ts_limits_default(&lim);
    x = 0x2545f4914f6cdd1dULL;

    for (i = 0; i < sizeof(tr_fixtures) / sizeof(tr_fixtures[0]); i++) {
        raw = tr_fixture_raw(tr_fixtures[i].file, &len);
        assert_int_equal(tr_decode(&store, &lim, TS_RW_V1, raw, len), TS_OK);
        accepted = store.decoded.series - store.rejected.series;

        /* Prometheus sends labels sorted: all of them are found */
        found = tr_known_same(&lim, &store, raw, len, &same);
        snprintf(name, sizeof(name), "%s known", tr_fixtures[i].file);
        tr_check(name, same);
        tr_check(name, found == accepted);

        for (j = 0; j < sizeof(strict) / sizeof(strict[0]); j++) {
            lim2 = lim;
            lim2.max_label_names_per_series = strict[j].labels;
            lim2.max_label_name_length = strict[j].name_len;
            lim2.max_label_value_length = strict[j].value_len;
            lim2.max_samples_per_series = strict[j].samples;

            found = tr_known_same(&lim2, &store, raw, len, &same);
            snprintf(name, sizeof(name), "%s known, strict %s",
                     tr_fixtures[i].file, strict[j].name);
            tr_check(name, same);
            tr_check(name, found == accepted);

            /* the limit bites: found series are rejected all the same */
            assert_int_equal(tr_decode(&strict_req, &lim2, TS_RW_V1, raw,
                                       len), TS_OK);
            tr_check(name, accepted == 0 || strict_req.rejected.series > 0);
            ts_rw_request_free(&strict_req);
        }

        mut = malloc(len + 1);
        assert_non_null(mut);

        for (k = 0; k < TR_MUTATIONS / 4; k++) {
            memcpy(mut, raw, len);
            mut[tr_rand(&x) % (len ? len : 1)] = (uint8_t) tr_rand(&x);

            (void) tr_known_same(&lim, &store, mut, len, &same);
            snprintf(name, sizeof(name), "%s known, mutation %zu",
                     tr_fixtures[i].file, k);
            tr_check(name, same);
        }

        free(mut);
        ts_rw_request_free(&store);
        free(raw);
    }
}


static void
test_allocator_accounting(void **state)
{
    ProtobufCAllocator  pa;
    ts_rw_request_t     req;
    ts_limits_t         lim;
    tr_alloc_t          a;
    tr_v2_t            *b;
    uint8_t            *raw, *buf;
    size_t              len, blen, total, k;
    int                 rc;

    (void) state;

    ts_limits_default(&lim);
    raw = tr_fixture_raw("req0000", &len);
    pa = (ProtobufCAllocator) { tr_alloc, tr_free, &a };

    /* everything taken is given back */
    memset(&a, 0, sizeof(a));
    ts_rw_request_init(&req, &pa, &lim);
    assert_int_equal(ts_rw_decode(&req, TS_RW_V1, raw, len), TS_OK);
    total = a.allocs;
    assert_true(total > 0);
    ts_rw_request_free(&req);
    assert_int_equal(a.allocs, a.frees);

    /* failing at any allocation: NOMEM, nothing leaked */
    for (k = 1; k <= total; k += (k < 64) ? 1 : total / 64) {
        memset(&a, 0, sizeof(a));
        a.fail_at = k;
        ts_rw_request_init(&req, &pa, &lim);
        rc = ts_rw_decode(&req, TS_RW_V1, raw, len);
        tr_check("fail_at", rc == TS_ERR_NOMEM);
        ts_rw_request_free(&req);
        tr_check("fail_at", a.allocs == a.frees);
    }

    /* the same for v2 */
    b = malloc(sizeof(tr_v2_t));
    assert_non_null(b);
    tr_v2_example(b);
    buf = tr_v2_pack(b, &blen);

    memset(&a, 0, sizeof(a));
    ts_rw_request_init(&req, &pa, &lim);
    assert_int_equal(ts_rw_decode(&req, TS_RW_V2, buf, blen), TS_OK);
    total = a.allocs;
    ts_rw_request_free(&req);
    assert_int_equal(a.allocs, a.frees);

    for (k = 1; k <= total; k++) {
        memset(&a, 0, sizeof(a));
        a.fail_at = k;
        ts_rw_request_init(&req, &pa, &lim);
        tr_check("v2 fail_at", ts_rw_decode(&req, TS_RW_V2, buf, blen)
                               == TS_ERR_NOMEM);
        ts_rw_request_free(&req);
        tr_check("v2 fail_at", a.allocs == a.frees);
    }

    free(buf);
    free(b);
    free(raw);
}


static void
test_decode_memory_budget(void **state)
{
    ts_rw_request_t  req;
    ts_limits_t      lim;
    uint8_t         *raw;
    size_t           len, need, budget;

    (void) state;

    ts_limits_default(&lim);
    raw = tr_fixture_raw("req0001", &len);

    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, raw, len), TS_OK);
    need = req.used;
    ts_rw_request_free(&req);

    /* measured amplification of a real request, kept in check here */
    assert_true(need > len && need < 8 * len);

    for (budget = 0; budget < need; budget += need / 16 + 1) {
        lim.max_decode_memory = budget;
        tr_check("budget", tr_decode(&req, &lim, TS_RW_V1, raw, len)
                           == TS_ERR_LIMIT);
        tr_check("budget", req.why.code == TS_REJECT_DECODE_MEMORY);
        tr_check("budget", req.used <= budget);
        ts_rw_request_free(&req);
    }

    lim.max_decode_memory = need;
    assert_int_equal(tr_decode(&req, &lim, TS_RW_V1, raw, len), TS_OK);
    ts_rw_request_free(&req);

    free(raw);
}


/* an nginx-like pool: bump allocation, free is NULL */
typedef struct {
    uint8_t     *base;
    size_t       used;
    size_t       cap;
} tr_pool_t;


static void *
tr_pool_alloc(void *data, size_t size)
{
    tr_pool_t  *p = data;
    void       *r;

    size = (size + 15) & ~(size_t) 15;

    if (size > p->cap - p->used) {
        return NULL;
    }

    r = p->base + p->used;
    p->used += size;

    return r;
}


static void
test_pool_allocator(void **state)
{
    ProtobufCAllocator  pa;
    ts_rw_request_t     req;
    ts_limits_t         lim;
    tr_pool_t           pool;
    tr_v2_t            *b;
    uint8_t            *z, *raw, *buf;
    size_t              zlen, rlen, blen;

    (void) state;

    ts_limits_default(&lim);
    pool.cap = 8 << 20;
    pool.used = 0;
    pool.base = malloc(pool.cap);
    assert_non_null(pool.base);
    pa = (ProtobufCAllocator) { tr_pool_alloc, NULL, &pool };

    z = tr_read(TR_DATA "req0003.snappy", &zlen);
    assert_int_equal(ts_rw_uncompress(z, zlen, lim.max_body_size, &pa, &raw,
                                      &rlen, NULL), TS_OK);
    ts_rw_request_init(&req, &pa, &lim);
    assert_int_equal(ts_rw_decode(&req, TS_RW_V1, raw, rlen), TS_OK);
    assert_int_equal(req.decoded.samples, 500);
    ts_rw_request_free(&req);

    /* a corrupt body with a pool: nothing to give back either */
    assert_int_equal(ts_rw_uncompress(z, zlen - 1, lim.max_body_size, &pa,
                                      &raw, &rlen, NULL), TS_ERR_CORRUPT);
    free(z);

    b = malloc(sizeof(tr_v2_t));
    assert_non_null(b);
    tr_v2_example(b);
    buf = tr_v2_pack(b, &blen);
    ts_rw_request_init(&req, &pa, &lim);
    assert_int_equal(ts_rw_decode(&req, TS_RW_V2, buf, blen), TS_OK);
    assert_int_equal(req.decoded.series, 3);
    ts_rw_request_free(&req);

    /* the pool running dry is NOMEM, not a limit */
    pool.cap = pool.used + 64;
    ts_rw_request_init(&req, &pa, &lim);
    assert_int_equal(ts_rw_decode(&req, TS_RW_V2, buf, blen), TS_ERR_NOMEM);
    ts_rw_request_free(&req);

    free(buf);
    free(b);
    free(pool.base);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_content_encoding),
        cmocka_unit_test(test_uncompress_edges),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_fixture_content),
        cmocka_unit_test(test_v1_fast_path),
        cmocka_unit_test(test_v1_fast_dense),
        cmocka_unit_test(test_v1_known),
        cmocka_unit_test(test_v1_partial),
        cmocka_unit_test(test_v1_values_bit_exact),
        cmocka_unit_test(test_v1_samples_limit),
        cmocka_unit_test(test_v1_exemplars),
        cmocka_unit_test(test_v1_metadata),
        cmocka_unit_test(test_histograms),
        cmocka_unit_test(test_v2_round_trip),
        cmocka_unit_test(test_v2_series_rejects),
        cmocka_unit_test(test_v2_symbols),
        cmocka_unit_test(test_request_failures),
        cmocka_unit_test(test_allocator_accounting),
        cmocka_unit_test(test_decode_memory_budget),
        cmocka_unit_test(test_pool_allocator),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
