/*
 * Copyright (C) ngx_tsdb authors
 *
 * Native histograms read back: a head and an LMDB index (ts_source_db)
 * as the two sources of a series set and of remote read, as the module
 * has them.  Integer histograms in LMDB only, in the head only, and in
 * both with overlapping times (the head wins); float histograms; a
 * series switching from floats to histograms; a histogram stale marker.
 * Checks ts_sset_histogram() / _value() / _sample() against the values
 * written, chunks passed through as stored (encodings 2 and 3) or
 * re-encoded into chunks that decode to the merged samples, remote
 * read's SAMPLES TimeSeries.histograms field by field, and STREAMED
 * chunk types.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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
#include "ts_source_db.h"
#include "ts_sset.h"


#define T_SIZE     (16 * 1024 * 1024)
#define T_MAXH     256


/* one histogram of the data set and its arrays */
typedef struct {
    ts_hist_t           h;
    ts_hspan_t          sp[2];
    int64_t             d[4];
    double              c[4];
} t_hist_t;


/* what a series holds at t: its kind and the "add" of its values */
typedef struct {
    const char         *name;
    int                 is_float;
    int64_t             lmdb_from, lmdb_to;     /* seconds, [from, to) */
    int64_t             head_from, head_to;
    double              lmdb_add, head_add;
} t_series_t;


static const t_series_t  t_set[] = {
    { "h",  0,  0, 60,  30, 90,  0,   100 },    /* both, overlapping */
    { "fh", 1,  0, 0,   0, 50,   0,   0.5 },    /* head only, float */
    { "lh", 0,  0, 20,  0, 0,    7,   0 },      /* LMDB only */
};


static struct {
    void               *mem;
    ts_head_t           head;
    char                root[64];
    ts_db_t            *db;
    ts_source_head_t    hs;
    ts_source_db_t      ds;
    ts_source_t        *src[2];
} t_env;


static int
t_alive(int64_t pid)
{
    (void) pid;

    return 1;
}


/*
 * The histogram at t (ms): schema 0, zero threshold 0.001, zero count
 * 1, buckets {0, 1} and {3, 4} with k, k + 1, 2k, 1 where k = t/1000 +
 * add; sum 1.5k.  Counters grow with t for a fixed add.
 */

static void
t_hist(t_hist_t *th, int64_t t, double add, int is_float)
{
    int       i;
    double    k, b[4], sum;

    memset(th, 0, sizeof(t_hist_t));

    k = (double) (t / 1000) + add;
    b[0] = k;
    b[1] = k + 1;
    b[2] = 2 * k;
    b[3] = 1;
    sum = 1.5 * k;

    th->sp[0].offset = 0;
    th->sp[0].length = 2;
    th->sp[1].offset = 1;
    th->sp[1].length = 2;

    th->h.schema = 0;
    th->h.zero_threshold = 0.001;
    th->h.is_float = (uint8_t) is_float;
    th->h.n_pos_spans = 2;
    th->h.pos_spans = th->sp;
    th->h.n_pos = 4;
    memcpy(&th->h.sum, &sum, 8);

    if (is_float) {
        th->h.fcount = 1 + b[0] + b[1] + b[2] + b[3];
        th->h.fzero_count = 1;

        for (i = 0; i < 4; i++) {
            th->c[i] = b[i];
        }

        th->h.pos_counts = th->c;

    } else {
        th->h.count = (uint64_t) (1 + b[0] + b[1] + b[2] + b[3]);
        th->h.zero_count = 1;
        th->d[0] = (int64_t) b[0];

        for (i = 1; i < 4; i++) {
            th->d[i] = (int64_t) b[i] - (int64_t) b[i - 1];
        }

        th->h.pos_deltas = th->d;
    }
}


/* h equals t_hist(t, add, is_float) */

static void
t_check(const ts_hist_t *h, int64_t t, double add, int is_float)
{
    uint32_t  i;
    t_hist_t  want;

    t_hist(&want, t, add, is_float);

    assert_int_equal(h->is_float, is_float);
    assert_int_equal(h->schema, 0);
    assert_true(h->zero_threshold == 0.001);
    assert_true(h->sum == want.h.sum);
    assert_int_equal(h->n_pos_spans, 2);
    assert_int_equal(h->n_neg_spans, 0);
    assert_int_equal(h->n_pos, 4);

    for (i = 0; i < 2; i++) {
        assert_int_equal(h->pos_spans[i].offset, want.sp[i].offset);
        assert_int_equal(h->pos_spans[i].length, want.sp[i].length);
    }

    if (is_float) {
        assert_true(h->fcount == want.h.fcount);
        assert_true(h->fzero_count == 1);

        for (i = 0; i < 4; i++) {
            assert_true(h->pos_counts[i] == want.c[i]);
        }

    } else {
        assert_int_equal(h->count, want.h.count);
        assert_int_equal(h->zero_count, 1);

        for (i = 0; i < 4; i++) {
            assert_int_equal(h->pos_deltas[i], want.d[i]);
        }
    }
}


static uint32_t
t_head_series(const char *name)
{
    uint32_t    tn, ref;
    ts_label_t  l[1];

    l[0] = (ts_label_t) { "__name__", 8, name, (uint32_t) strlen(name) };

    assert_int_equal(ts_head_tenant(&t_env.head, "t", 1, &tn), TS_OK);
    assert_true(ts_head_series(&t_env.head, tn, l, 1, ts_labels_hash(l, 1),
                               0, &ref) >= 0);

    return ref;
}


/* histograms at from .. to - 1 s into one LMDB chunk */

static void
t_lmdb(const char *name, int64_t from, int64_t to, double add, int is_float)
{
    int64_t         s;
    unsigned        hdr;
    uint8_t         buf[8192];
    uint32_t        idx;
    t_hist_t        th;
    ts_label_t      l[1];
    ts_db_batch_t  *b;
    union {
        ts_hist_app_t  a;
        uint8_t        mem[4096];
    } a;

    l[0] = (ts_label_t) { "__name__", 8, name, (uint32_t) strlen(name) };

    for (s = from; s < to; s++) {
        t_hist(&th, s * 1000, add, is_float);

        if (s == from) {
            assert_true(ts_hist_app_size(&th.h) <= sizeof(a));
            assert_int_equal(ts_hist_start(&a.a, sizeof(a), buf, sizeof(buf),
                                           TS_HIST_HDR_UNKNOWN, s * 1000,
                                           &th.h), TS_OK);
            continue;
        }

        assert_int_equal(ts_hist_append(&a.a, buf, s * 1000, &th.h, &hdr),
                         TS_OK);
    }

    assert_int_equal(ts_db_batch_create(&b), TS_OK);
    assert_int_equal(ts_db_batch_series(b, "t", 1, l, 1, 0, &idx), TS_OK);
    assert_int_equal(ts_db_batch_chunk(b, idx, from * 1000, (to - 1) * 1000,
                                       is_float ? TS_FHIST_ENCODING
                                                : TS_HIST_ENCODING,
                                       buf, ts_hist_bytes(&a.a)), TS_OK);
    assert_int_equal(ts_db_apply(t_env.db, b), TS_OK);
    ts_db_batch_destroy(b);
}


static int
t_setup(void **state)
{
    char           err[TS_DB_ERR_MAX];
    double         d;
    int64_t        s;
    size_t         i;
    uint32_t       ref;
    uint64_t       v;
    t_hist_t       th;
    ts_db_conf_t   conf;
    const t_series_t  *ts;

    (void) state;

    t_env.mem = mmap(NULL, T_SIZE, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t_env.mem == MAP_FAILED
        || ts_head_open(&t_env.head, t_env.mem, T_SIZE, getpid(), t_alive)
           != TS_OK)
    {
        return -1;
    }

    strcpy(t_env.root, "/tmp/ts-sset-hist-XXXXXX");
    if (mkdtemp(t_env.root) == NULL) {
        return -1;
    }

    memset(&conf, 0, sizeof(conf));
    conf.path = t_env.root;
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;

    if (ts_db_open(&t_env.db, &conf, err, sizeof(err)) != TS_OK) {
        return -1;
    }

    for (i = 0; i < sizeof(t_set) / sizeof(t_set[0]); i++) {
        ts = &t_set[i];

        if (ts->lmdb_to > ts->lmdb_from) {
            t_lmdb(ts->name, ts->lmdb_from, ts->lmdb_to, ts->lmdb_add,
                   ts->is_float);
        }

        if (ts->head_to > ts->head_from) {
            ref = t_head_series(ts->name);

            for (s = ts->head_from; s < ts->head_to; s++) {
                t_hist(&th, s * 1000, ts->head_add, ts->is_float);
                assert_int_equal(ts_head_append_hist(&t_env.head, ref,
                                                     s * 1000, &th.h),
                                 TS_OK);
            }
        }
    }

    /* mx: floats at 0 .. 9 s, then histograms at 10 .. 19 s */

    ref = t_head_series("mx");

    for (s = 0; s < 10; s++) {
        d = (double) s;
        memcpy(&v, &d, 8);
        assert_int_equal(ts_head_append(&t_env.head, ref, s * 1000, v),
                         TS_OK);
    }

    for (s = 10; s < 20; s++) {
        t_hist(&th, s * 1000, 0, 0);
        assert_int_equal(ts_head_append_hist(&t_env.head, ref, s * 1000,
                                             &th.h), TS_OK);
    }

    /* st: histograms at 0 .. 4 s, a stale marker at 5 s, then 6 .. 7 s */

    ref = t_head_series("st");

    for (s = 0; s < 8; s++) {
        t_hist(&th, s * 1000, 0, 0);

        if (s == 5) {
            th.h.sum = TS_HIST_STALE_SUM;
        }

        assert_int_equal(ts_head_append_hist(&t_env.head, ref, s * 1000,
                                             &th.h), TS_OK);
    }

    ts_source_head_init(&t_env.hs, &t_env.head, "t", 1);
    ts_source_db_init(&t_env.ds, t_env.db, "t", 1);
    t_env.src[0] = &t_env.hs.src;
    t_env.src[1] = &t_env.ds.src;

    return 0;
}


static int
t_teardown(void **state)
{
    char  cmd[128];

    (void) state;

    ts_source_db_free(&t_env.ds);
    ts_db_close(t_env.db);
    munmap(t_env.mem, T_SIZE);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", t_env.root);

    return system(cmd) == 0 ? 0 : -1;
}


/* a set with the series named, current; begin of the sources done */

static ts_sset_t *
t_open(const char *name, int64_t mint, int64_t maxt, int trim)
{
    char               msg[TS_SSET_MSG_SIZE];
    uint32_t           n;
    ts_sset_t         *ss;
    ts_matcher_t       m;
    ts_sset_conf_t     conf;
    ts_selector_t     *sel;
    const ts_label_t  *l;

    conf.max_series = 0;
    conf.trim_chunks = trim;

    assert_int_equal(ts_sset_create(&ss, t_env.src, 2, &conf), TS_OK);

    m.type = TS_MATCH_EQ;
    m.name = "__name__";
    m.name_len = 8;
    m.value = name;
    m.value_len = strlen(name);

    assert_int_equal(ts_selector_compile(&sel, &m, 1, NULL, NULL, 0),
                     TS_OK);
    assert_int_equal(ts_sources_begin(t_env.src, 2), TS_OK);
    assert_int_equal(ts_sset_select(ss, sel, mint, maxt, msg, sizeof(msg)),
                     TS_OK);
    ts_selector_free(sel);

    assert_int_equal(ts_sset_count(ss), 1);
    assert_int_equal(ts_sset_next(ss, &l, &n), 1);
    assert_int_equal(n, 1);
    assert_int_equal(l[0].value_len, strlen(name));

    return ss;
}


static void
t_close(ts_sset_t *ss)
{
    const ts_label_t  *l;
    uint32_t           n;

    assert_int_equal(ts_sset_next(ss, &l, &n), 0);
    ts_sources_end(t_env.src, 2);
    ts_sset_free(ss);
}


/* the add of series ts at t s: the head wins where both have a sample */

static double
t_add(const t_series_t *ts, int64_t s)
{
    if (s >= ts->head_from && s < ts->head_to) {
        return ts->head_add;
    }

    return ts->lmdb_add;
}


static void
test_histograms(void **state)
{
    int                rc;
    size_t             i;
    int64_t            t, s, from, to, n;
    uint64_t           v;
    ts_hist_t          h;
    ts_sset_t         *ss;
    const t_series_t  *ts;

    (void) state;

    for (i = 0; i < sizeof(t_set) / sizeof(t_set[0]); i++) {
        ts = &t_set[i];
        from = ts->head_to > ts->head_from ? ts->head_from : ts->lmdb_from;
        if (ts->lmdb_to > ts->lmdb_from && ts->lmdb_from < from) {
            from = ts->lmdb_from;
        }
        to = ts->head_to > ts->lmdb_to ? ts->head_to : ts->lmdb_to;

        ss = t_open(ts->name, 0, INT64_MAX, 0);
        n = 0;

        while ((rc = ts_sset_histogram(ss, &t, &h)) == 1) {
            s = from + n;
            assert_int_equal(t, s * 1000);
            t_check(&h, t, t_add(ts, s), ts->is_float);
            n++;
        }

        assert_int_equal(rc, 0);
        assert_int_equal(n, to - from);
        t_close(ss);

        /* the float call sees no sample in a histogram series */

        ss = t_open(ts->name, 0, INT64_MAX, 0);
        assert_int_equal(ts_sset_sample(ss, &t, &v), 0);
        t_close(ss);
    }

    /* a window: [25 s, 35 s] of h, LMDB then head */

    ss = t_open("h", 25000, 35000, 0);

    for (s = 25; (rc = ts_sset_histogram(ss, &t, &h)) == 1; s++) {
        assert_int_equal(t, s * 1000);
        t_check(&h, t, s >= 30 ? 100 : 0, 0);
    }

    assert_int_equal(rc, 0);
    assert_int_equal(s, 36);
    t_close(ss);
}


static void
test_mixed_and_stale(void **state)
{
    int              rc;
    double           d;
    int64_t          t, s;
    uint64_t         v;
    ts_hist_t        h;
    ts_sset_t       *ss;
    ts_sset_value_t  val;

    (void) state;

    /* every sample in time order, floats then histograms */

    ss = t_open("mx", 0, INT64_MAX, 0);

    for (s = 0; (rc = ts_sset_value(ss, &val)) == 1; s++) {
        assert_int_equal(val.t, s * 1000);

        if (s < 10) {
            assert_int_equal(val.enc, TS_XOR_ENCODING);
            memcpy(&d, &val.v, 8);
            assert_true(d == (double) s);

        } else {
            assert_int_equal(val.enc, TS_HIST_ENCODING);
            t_check(&val.h, val.t, 0, 0);
        }
    }

    assert_int_equal(rc, 0);
    assert_int_equal(s, 20);
    t_close(ss);

    ss = t_open("mx", 0, INT64_MAX, 0);

    for (s = 0; (rc = ts_sset_sample(ss, &t, &v)) == 1; s++) {
        assert_int_equal(t, s * 1000);
    }

    assert_int_equal(rc, 0);
    assert_int_equal(s, 10);
    t_close(ss);

    ss = t_open("mx", 0, INT64_MAX, 0);

    for (s = 10; (rc = ts_sset_histogram(ss, &t, &h)) == 1; s++) {
        assert_int_equal(t, s * 1000);
    }

    assert_int_equal(rc, 0);
    assert_int_equal(s, 20);
    t_close(ss);

    /* the stale marker comes back as one, the samples around it too */

    ss = t_open("st", 0, INT64_MAX, 0);

    for (s = 0; (rc = ts_sset_histogram(ss, &t, &h)) == 1; s++) {
        assert_int_equal(t, s * 1000);

        if (s == 5) {
            assert_true(h.sum == TS_HIST_STALE_SUM);

        } else {
            t_check(&h, t, 0, 0);
        }
    }

    assert_int_equal(rc, 0);
    assert_int_equal(s, 8);
    t_close(ss);
}


/*
 * Chunks of a series: each decodes (ts_hist_iter) to the samples
 * ts_sset_histogram() gives, in order; the encodings and how many were
 * re-encoded are returned.
 */

static void
t_chunks(const char *name, int trim, int64_t mint, int64_t maxt,
    uint32_t *encs, uint32_t *nchunks, uint64_t *reencoded)
{
    int              rc;
    void            *mem;
    size_t           need;
    int64_t          t, ct, prev;
    uint32_t         n, k;
    ts_hist_t        h, ch;
    ts_sset_t       *ss;
    ts_hist_iter_t   it;
    ts_sset_chunk_t  c;
    int64_t          ts[T_MAXH];
    uint64_t         sums[T_MAXH];
    uint64_t         counts[T_MAXH];

    ss = t_open(name, mint, maxt, trim);

    for (n = 0; (rc = ts_sset_histogram(ss, &t, &h)) == 1; n++) {
        assert_true(n < T_MAXH);
        ts[n] = t;
        sums[n] = h.sum;
        counts[n] = h.is_float ? (uint64_t) h.fcount : h.count;
    }

    assert_int_equal(rc, 0);
    t_close(ss);

    ss = t_open(name, mint, maxt, trim);
    k = 0;
    *nchunks = 0;
    prev = INT64_MIN;

    while ((rc = ts_sset_chunk(ss, &c)) == 1) {
        assert_true(c.encoding == TS_HIST_ENCODING
                    || c.encoding == TS_FHIST_ENCODING);
        assert_true(c.mint > prev && c.mint <= c.maxt);
        encs[(*nchunks)++] = c.encoding;
        prev = c.maxt;

        need = ts_hist_iter_need(c.data, c.len, c.encoding);
        mem = malloc(need);
        assert_non_null(mem);
        ts_hist_iter_init(&it, c.data, c.len, c.encoding, mem, need);

        while ((rc = ts_hist_iter_next(&it, &ct, &ch)) == 1) {
            assert_true(k < n);
            assert_int_equal(ct, ts[k]);
            assert_true(ch.sum == sums[k]);
            assert_int_equal(ch.is_float ? (uint64_t) ch.fcount : ch.count,
                             counts[k]);
            assert_true(ct >= c.mint && ct <= c.maxt);
            k++;
        }

        assert_int_equal(rc, 0);
        free(mem);
    }

    assert_int_equal(rc, 0);
    assert_int_equal(k, n);
    *reencoded = ts_sset_reencoded(ss);
    t_close(ss);
}


static void
test_chunks(void **state)
{
    uint32_t  encs[64], n;
    uint64_t  re;

    (void) state;

    /* one source each: as stored */

    t_chunks("lh", 0, 0, INT64_MAX, encs, &n, &re);
    assert_int_equal(n, 1);
    assert_int_equal(encs[0], TS_HIST_ENCODING);
    assert_int_equal(re, 0);

    t_chunks("fh", 0, 0, INT64_MAX, encs, &n, &re);
    assert_true(n >= 1);
    assert_int_equal(encs[0], TS_FHIST_ENCODING);
    assert_int_equal(re, 0);

    /* overlapping LMDB and head chunks are merged and re-encoded */

    t_chunks("h", 0, 0, INT64_MAX, encs, &n, &re);
    assert_true(n >= 1 && re >= 1);
    assert_int_equal(encs[0], TS_HIST_ENCODING);

    /* trimming re-encodes what crosses the window */

    t_chunks("lh", 1, 5000, 9000, encs, &n, &re);
    assert_int_equal(n, 1);
    assert_int_equal(re, 1);

    /* the stale marker survives both */

    t_chunks("st", 0, 0, INT64_MAX, encs, &n, &re);
    t_chunks("st", 1, 3000, 6000, encs, &n, &re);
    assert_true(re >= 1);
}


static void
test_chunks_mixed(void **state)
{
    int              rc;
    int64_t          t, prev;
    uint32_t         nx, nh;
    ts_sset_t       *ss;
    ts_sset_chunk_t  c;
    ts_xor_iter_t    it;
    double           d;

    (void) state;

    /* trimmed to [5 s, 14 s]: a re-encoded XOR chunk, then histograms */

    ss = t_open("mx", 5000, 14000, 1);
    nx = 0;
    nh = 0;
    prev = INT64_MIN;

    while ((rc = ts_sset_chunk(ss, &c)) == 1) {
        assert_true(c.mint > prev);
        prev = c.maxt;

        if (c.encoding == TS_XOR_ENCODING) {
            assert_int_equal(nh, 0);
            ts_xor_iter_init(&it, c.data, c.len);

            while ((rc = ts_xor_iter_next(&it, &t, &d)) == 1) {
                assert_int_equal(t, (int64_t) (5 + nx) * 1000);
                nx++;
            }

            assert_int_equal(rc, 0);
            continue;
        }

        assert_int_equal(c.encoding, TS_HIST_ENCODING);
        assert_int_equal(c.mint, 10000);
        assert_int_equal(c.maxt, 14000);
        nh++;
    }

    assert_int_equal(rc, 0);
    assert_int_equal(nx, 5);
    assert_int_equal(nh, 1);
    t_close(ss);
}


/* remote read of one series by name, all output in *out */

static void
t_read(const char *name, int type, uint8_t **out, size_t *outlen,
    ts_rread_stats_t *st)
{
    int                                    rc;
    size_t                                 n, c, len;
    uint8_t                               *raw, *body;
    ts_rread_t                            *rr;
    const uint8_t                         *p;
    ts_rread_error_t                       e;
    Prometheus__Query                      q, *qp;
    Prometheus__LabelMatcher               m, *mp;
    Prometheus__ReadRequest                req;
    Prometheus__ReadRequest__ResponseType  rt;

    prometheus__label_matcher__init(&m);
    m.type = PROMETHEUS__LABEL_MATCHER__TYPE__EQ;
    m.name = "__name__";
    m.value = (char *) name;
    mp = &m;

    prometheus__query__init(&q);
    q.start_timestamp_ms = 0;
    q.end_timestamp_ms = 1000000;
    q.n_matchers = 1;
    q.matchers = &mp;
    qp = &q;

    prometheus__read_request__init(&req);
    req.n_queries = 1;
    req.queries = &qp;

    if (type >= 0) {
        rt = (Prometheus__ReadRequest__ResponseType) type;
        req.n_accepted_response_types = 1;
        req.accepted_response_types = &rt;
    }

    n = prometheus__read_request__get_packed_size(&req);
    raw = malloc(n);
    assert_non_null(raw);
    prometheus__read_request__pack(&req, raw);
    c = snappy_max_compressed_length(n);
    body = malloc(c);
    assert_non_null(body);
    assert_int_equal(snappy_compress((char *) raw, n, (char *) body, &c),
                     SNAPPY_OK);
    free(raw);

    assert_int_equal(ts_rread_open(&rr, body, c, t_env.src, 2, NULL, NULL,
                                   &e), TS_OK);
    free(body);

    *out = NULL;
    *outlen = 0;

    while ((rc = ts_rread_next(rr, &p, &len, &e)) == 1) {
        *out = realloc(*out, *outlen + len);
        assert_non_null(*out);
        memcpy(*out + *outlen, p, len);
        *outlen += len;
    }

    assert_int_equal(rc, 0);
    ts_rread_stats(rr, st);
    ts_rread_free(rr);
}


static Prometheus__TimeSeries *
t_samples(const char *name, Prometheus__ReadResponse **resp,
    ts_rread_stats_t *st)
{
    size_t     len, n;
    uint8_t   *out;
    char      *raw;

    t_read(name, -1, &out, &len, st);

    assert_int_equal(snappy_uncompressed_length((char *) out, len, &n),
                     SNAPPY_OK);
    raw = malloc(n ? n : 1);
    assert_non_null(raw);
    assert_int_equal(snappy_uncompress((char *) out, len, raw, &n),
                     SNAPPY_OK);
    free(out);

    *resp = prometheus__read_response__unpack(NULL, n, (uint8_t *) raw);
    free(raw);
    assert_non_null(*resp);
    assert_int_equal((*resp)->n_results, 1);
    assert_int_equal((*resp)->results[0]->n_timeseries, 1);

    return (*resp)->results[0]->timeseries[0];
}


/* a decoded prompb Histogram as a ts_hist_t, checked against t_hist() */

static void
t_check_pb(const Prometheus__Histogram *ph, int64_t s, double add,
    int is_float)
{
    size_t      i;
    ts_hist_t   h;
    ts_hspan_t  sp[4];

    assert_int_equal(ph->timestamp, s * 1000);
    assert_true(ph->n_positive_spans <= 4);

    memset(&h, 0, sizeof(h));
    h.is_float = (uint8_t) is_float;
    h.schema = ph->schema;
    h.zero_threshold = ph->zero_threshold;
    memcpy(&h.sum, &ph->sum, 8);

    for (i = 0; i < ph->n_positive_spans; i++) {
        sp[i].offset = ph->positive_spans[i]->offset;
        sp[i].length = ph->positive_spans[i]->length;
    }

    h.n_pos_spans = (uint32_t) ph->n_positive_spans;
    h.pos_spans = sp;

    if (is_float) {
        assert_int_equal(ph->count_case,
                         PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT);
        assert_int_equal(ph->zero_count_case,
                         PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT);
        assert_int_equal(ph->n_positive_deltas, 0);
        h.fcount = ph->count_float;
        h.fzero_count = ph->zero_count_float;
        h.n_pos = (uint32_t) ph->n_positive_counts;
        h.pos_counts = ph->positive_counts;

    } else {
        assert_int_equal(ph->count_case,
                         PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT);
        assert_int_equal(ph->zero_count_case,
                         PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT);
        assert_int_equal(ph->n_positive_counts, 0);
        h.count = ph->count_int;
        h.zero_count = ph->zero_count_int;
        h.n_pos = (uint32_t) ph->n_positive_deltas;
        h.pos_deltas = ph->positive_deltas;
    }

    t_check(&h, s * 1000, add, is_float);
}


static void
test_read_samples(void **state)
{
    double                     d;
    size_t                     i;
    int64_t                    s;
    ts_rread_stats_t           st;
    Prometheus__TimeSeries    *ts;
    Prometheus__ReadResponse  *resp;

    (void) state;

    ts = t_samples("h", &resp, &st);
    assert_int_equal(ts->n_samples, 0);
    assert_int_equal(ts->n_histograms, 90);

    for (i = 0; i < ts->n_histograms; i++) {
        s = (int64_t) i;
        t_check_pb(ts->histograms[i], s, s >= 30 ? 100 : 0, 0);

        /* the first sample of a chunk is UNKNOWN, the rest NOT_RESET */

        assert_true(ts->histograms[i]->reset_hint
                        == PROMETHEUS__HISTOGRAM__RESET_HINT__UNKNOWN
                    || ts->histograms[i]->reset_hint
                        == PROMETHEUS__HISTOGRAM__RESET_HINT__NO);
    }

    assert_int_equal(st.histograms, 90);
    prometheus__read_response__free_unpacked(resp, NULL);

    ts = t_samples("fh", &resp, &st);
    assert_int_equal(ts->n_histograms, 50);

    for (i = 0; i < ts->n_histograms; i++) {
        t_check_pb(ts->histograms[i], (int64_t) i, 0.5, 1);
    }

    prometheus__read_response__free_unpacked(resp, NULL);

    /* a series that switched kinds has both lists */

    ts = t_samples("mx", &resp, &st);
    assert_int_equal(ts->n_samples, 10);
    assert_int_equal(ts->n_histograms, 10);

    for (i = 0; i < 10; i++) {
        assert_int_equal(ts->samples[i]->timestamp, (int64_t) i * 1000);
        assert_true(ts->samples[i]->value == (double) i);
        t_check_pb(ts->histograms[i], (int64_t) i + 10, 0, 0);
    }

    assert_int_equal(st.samples, 20);
    assert_int_equal(st.histograms, 10);
    prometheus__read_response__free_unpacked(resp, NULL);

    /* the stale marker: its sum bits, nothing else needed */

    ts = t_samples("st", &resp, &st);
    assert_int_equal(ts->n_histograms, 8);
    memcpy(&s, &ts->histograms[5]->sum, 8);
    assert_true((uint64_t) s == TS_HIST_STALE_SUM);
    assert_int_equal(ts->histograms[5]->timestamp, 5000);
    d = ts->histograms[6]->sum;
    assert_true(d == 9.0);
    prometheus__read_response__free_unpacked(resp, NULL);
}


static void
test_read_streamed(void **state)
{
    int                                rc, shift;
    void                              *mem;
    size_t                             len, pos, need, i, k, nh;
    int64_t                            t;
    uint8_t                           *out;
    uint32_t                           crc;
    uint64_t                           flen;
    ts_hist_t                          h;
    ts_hist_iter_t                     it;
    ts_rread_stats_t                   st;
    Prometheus__Chunk                 *c;
    Prometheus__ChunkedReadResponse   *f;

    (void) state;

    t_read("h", PROMETHEUS__READ_REQUEST__RESPONSE_TYPE__STREAMED_XOR_CHUNKS,
           &out, &len, &st);

    pos = 0;
    nh = 0;

    while (pos < len) {
        flen = 0;

        for (shift = 0; ; shift += 7) {
            assert_true(pos < len && shift < 64);
            flen |= (uint64_t) (out[pos] & 0x7f) << shift;

            if ((out[pos++] & 0x80) == 0) {
                break;
            }
        }

        assert_true(pos + 4 + flen <= len);
        crc = (uint32_t) out[pos] << 24 | (uint32_t) out[pos + 1] << 16
              | (uint32_t) out[pos + 2] << 8 | out[pos + 3];
        assert_int_equal(crc, ts_crc32c(0, out + pos + 4, flen));
        pos += 4;

        f = prometheus__chunked_read_response__unpack(NULL, flen, out + pos);
        assert_non_null(f);
        assert_int_equal(f->n_chunked_series, 1);
        pos += flen;

        for (i = 0; i < f->chunked_series[0]->n_chunks; i++) {
            c = f->chunked_series[0]->chunks[i];
            assert_int_equal(c->type, PROMETHEUS__CHUNK__ENCODING__HISTOGRAM);

            need = ts_hist_iter_need(c->data.data, c->data.len,
                                     TS_HIST_ENCODING);
            mem = malloc(need);
            assert_non_null(mem);
            ts_hist_iter_init(&it, c->data.data, c->data.len,
                              TS_HIST_ENCODING, mem, need);

            for (k = 0; (rc = ts_hist_iter_next(&it, &t, &h)) == 1; k++) {
                assert_int_equal(t, (int64_t) nh * 1000);
                t_check(&h, t, nh >= 30 ? 100 : 0, 0);
                assert_true(k > 0 || t == c->min_time_ms);
                nh++;
            }

            assert_int_equal(rc, 0);
            assert_int_equal(t, c->max_time_ms);
            free(mem);
        }

        prometheus__chunked_read_response__free_unpacked(f, NULL);
    }

    assert_int_equal(nh, 90);
    assert_true(st.chunks >= 1);
    free(out);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_histograms),
        cmocka_unit_test(test_mixed_and_stale),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_chunks_mixed),
        cmocka_unit_test(test_read_samples),
        cmocka_unit_test(test_read_streamed),
    };

    return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
