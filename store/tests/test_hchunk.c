/*
 * Copyright (C) ngx_tsdb authors
 *
 * Histogram chunk codec tests: chunks written by Prometheus 2.42 itself
 * (golden), one named case per encoding edge, truncation and corruption,
 * buffer and memory limits, recovery, snapshots, and random sequences
 * checked chunk by chunk, byte for byte, against tr_*, a literal model
 * of Prometheus 3's HistogramAppender, FloatHistogramAppender and the
 * head's chunk cutting over bstream.
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

#include "ts_error.h"
#include "ts_hchunk.h"
#include "ts_rw.h"


#define TH_MAXS       32          /* spans per side */
#define TH_MAXB       96          /* buckets per side */
#define TH_MAXC       8           /* custom values */
#define TH_MAXN       160         /* samples per sequence */
#define TH_CAP        65536       /* chunk buffer */
#define TH_MEM        65536       /* iterator scratch */
#define TH_T0         1699999200000LL
#define TH_STALE      0x7ff0000000000002ULL

#define th_check(name, cond)                                              \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fail_msg("%s: %s (line %d)", (name), #cond, __LINE__);        \
        }                                                                 \
    } while (0)


/* ts_hist_t and ts_rw_histogram_t share fields: the write path copies */
_Static_assert(sizeof(ts_hspan_t) == sizeof(ts_rw_span_t), "span size");
_Static_assert(offsetof(ts_hspan_t, length)
               == offsetof(ts_rw_span_t, length), "span layout");
_Static_assert(TS_HIST_HINT_GAUGE == TS_RESET_GAUGE
               && TS_HIST_HINT_RESET == TS_RESET_YES
               && TS_HIST_HINT_NOT_RESET == TS_RESET_NO, "hints");
_Static_assert(TS_HIST_SCHEMA_CUSTOM == TS_RW_SCHEMA_CUSTOM
               && TS_HIST_SCHEMA_MIN == TS_RW_SCHEMA_MIN
               && TS_HIST_SCHEMA_MAX == TS_RW_SCHEMA_MAX, "schemas");


/* one histogram sample, owning its arrays */
typedef struct {
    int64_t       t;
    int           flt;
    int32_t       schema;
    double        zt;
    uint64_t      sum;        /* bits */
    uint64_t      cnt;
    uint64_t      zcnt;
    double        fcnt;
    double        fzcnt;
    unsigned      hint;
    uint32_t      nps;
    uint32_t      nns;
    ts_hspan_t    ps[TH_MAXS];
    ts_hspan_t    ns[TH_MAXS];
    uint32_t      np;
    uint32_t      nn;
    int64_t       pd[TH_MAXB];   /* integer: delta-encoded */
    int64_t       nd[TH_MAXB];
    double        pc[TH_MAXB];   /* float: counts */
    double        nc[TH_MAXB];
    uint32_t      ncv;
    double        cv[TH_MAXC];
} th_h_t;


static uint64_t  th_rng_state;


/* helpers */

static uint64_t
th_rand(void)
{
    uint64_t  x;

    x = th_rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    th_rng_state = x;

    return x * 0x2545f4914f6cdd1dULL;
}


static uint64_t
th_bits(double d)
{
    uint64_t  u;

    memcpy(&u, &d, sizeof(u));

    return u;
}


static double
th_double(uint64_t u)
{
    double  d;

    memcpy(&d, &u, sizeof(d));

    return d;
}


/* Go's wrapping int64 arithmetic */

static int64_t
th_sub(int64_t a, int64_t b)
{
    return (int64_t) ((uint64_t) a - (uint64_t) b);
}


static int64_t
th_add(int64_t a, int64_t b)
{
    return (int64_t) ((uint64_t) a + (uint64_t) b);
}


/* the ts_hist_t view of a test sample */

static void
th_view(const th_h_t *s, ts_hist_t *h)
{
    memset(h, 0, sizeof(ts_hist_t));

    h->sum = s->sum;
    h->zero_threshold = s->zt;
    h->count = s->cnt;
    h->zero_count = s->zcnt;
    h->fcount = s->fcnt;
    h->fzero_count = s->fzcnt;
    h->schema = s->schema;
    h->is_float = (uint8_t) s->flt;
    h->reset_hint = (uint8_t) s->hint;
    h->n_pos_spans = s->nps;
    h->n_neg_spans = s->nns;
    h->pos_spans = s->ps;
    h->neg_spans = s->ns;
    h->n_pos = s->np;
    h->n_neg = s->nn;
    h->pos_deltas = s->pd;
    h->neg_deltas = s->nd;
    h->pos_counts = s->pc;
    h->neg_counts = s->nc;
    h->n_custom = s->ncv;
    h->custom_values = s->ncv ? s->cv : NULL;
}


/* a test sample from a decoded one */

static void
th_own(th_h_t *s, int64_t t, const ts_hist_t *h)
{
    memset(s, 0, sizeof(th_h_t));

    s->t = t;
    s->flt = h->is_float;
    s->schema = h->schema;
    s->zt = h->zero_threshold;
    s->sum = h->sum;
    s->cnt = h->count;
    s->zcnt = h->zero_count;
    s->fcnt = h->fcount;
    s->fzcnt = h->fzero_count;
    s->hint = h->reset_hint;
    s->nps = h->n_pos_spans;
    s->nns = h->n_neg_spans;
    assert_true(s->nps <= TH_MAXS && s->nns <= TH_MAXS);
    assert_true(h->n_pos <= TH_MAXB && h->n_neg <= TH_MAXB);
    assert_true(h->n_custom <= TH_MAXC);

    if (s->nps) {
        memcpy(s->ps, h->pos_spans, s->nps * sizeof(ts_hspan_t));
    }

    if (s->nns) {
        memcpy(s->ns, h->neg_spans, s->nns * sizeof(ts_hspan_t));
    }

    s->np = h->n_pos;
    s->nn = h->n_neg;

    if (h->is_float) {
        if (s->np) {
            memcpy(s->pc, h->pos_counts, s->np * sizeof(double));
        }

        if (s->nn) {
            memcpy(s->nc, h->neg_counts, s->nn * sizeof(double));
        }

    } else {
        if (s->np) {
            memcpy(s->pd, h->pos_deltas, s->np * sizeof(int64_t));
        }

        if (s->nn) {
            memcpy(s->nd, h->neg_deltas, s->nn * sizeof(int64_t));
        }
    }

    s->ncv = h->n_custom;

    if (s->ncv) {
        memcpy(s->cv, h->custom_values, s->ncv * sizeof(double));
    }
}


/* bit-exact equality of the fields a chunk keeps (not the hint) */

static int
th_same(const th_h_t *a, const th_h_t *b)
{
    uint32_t  i;

    if (a->t != b->t || a->flt != b->flt || a->sum != b->sum) {
        return 0;
    }

    if (a->sum == TH_STALE) {
        return 1;
    }

    if (a->schema != b->schema || th_bits(a->zt) != th_bits(b->zt)
        || a->nps != b->nps || a->nns != b->nns || a->np != b->np
        || a->nn != b->nn || a->ncv != b->ncv
        || memcmp(a->ps, b->ps, a->nps * sizeof(ts_hspan_t)) != 0
        || memcmp(a->ns, b->ns, a->nns * sizeof(ts_hspan_t)) != 0)
    {
        return 0;
    }

    for (i = 0; i < a->ncv; i++) {
        if (th_bits(a->cv[i]) != th_bits(b->cv[i])) {
            return 0;
        }
    }

    if (a->flt) {
        if (th_bits(a->fcnt) != th_bits(b->fcnt)
            || th_bits(a->fzcnt) != th_bits(b->fzcnt))
        {
            return 0;
        }

        for (i = 0; i < a->np; i++) {
            if (th_bits(a->pc[i]) != th_bits(b->pc[i])) {
                return 0;
            }
        }

        for (i = 0; i < a->nn; i++) {
            if (th_bits(a->nc[i]) != th_bits(b->nc[i])) {
                return 0;
            }
        }

        return 1;
    }

    return a->cnt == b->cnt && a->zcnt == b->zcnt
           && memcmp(a->pd, b->pd, a->np * sizeof(int64_t)) == 0
           && memcmp(a->nd, b->nd, a->nn * sizeof(int64_t)) == 0;
}


static size_t
th_unhex(const char *hex, uint8_t *out)
{
    size_t        n;
    unsigned int  byte;

    for (n = 0; hex[0] && hex[1]; hex += 2, n++) {
        assert_int_equal(sscanf(hex, "%2x", &byte), 1);
        out[n] = (uint8_t) byte;
    }

    return n;
}


/*
 * Builds a sample the way the golden recipe (docs/format/chunk.md,
 * gen.py hist()) does: spans as (offset, length) pairs, absolute bucket
 * counts; floats are half the integer counts plus a quarter of i % 3 on
 * the count.  stale: the sum is the stale marker.
 */

static void
th_mk(th_h_t *s, int i, int flt, int32_t schema, double zt, int64_t zc,
    const int32_t *psp, uint32_t nps, const int64_t *pabs, uint32_t np,
    const int32_t *nsp, uint32_t nns, const int64_t *nabs, uint32_t nn,
    double sum, int stale, unsigned hint)
{
    uint32_t  k;
    int64_t   cnt, prev;

    memset(s, 0, sizeof(th_h_t));

    s->t = TH_T0 + 15000 * (int64_t) i + (i * 7 % 11);
    s->flt = flt;
    s->schema = schema;
    s->zt = zt;
    s->hint = hint;
    s->sum = stale ? TH_STALE : th_bits(sum);
    s->nps = nps;
    s->nns = nns;
    s->np = np;
    s->nn = nn;

    for (k = 0; k < nps; k++) {
        s->ps[k].offset = psp[2 * k];
        s->ps[k].length = (uint32_t) psp[2 * k + 1];
    }

    for (k = 0; k < nns; k++) {
        s->ns[k].offset = nsp[2 * k];
        s->ns[k].length = (uint32_t) nsp[2 * k + 1];
    }

    cnt = zc;

    for (prev = 0, k = 0; k < np; prev = pabs[k], k++) {
        cnt += pabs[k];
        s->pd[k] = (int64_t) ((uint64_t) pabs[k] - (uint64_t) prev);
        s->pc[k] = 0.5 * (double) pabs[k];
    }

    for (prev = 0, k = 0; k < nn; prev = nabs[k], k++) {
        cnt += nabs[k];
        s->nd[k] = (int64_t) ((uint64_t) nabs[k] - (uint64_t) prev);
        s->nc[k] = 0.5 * (double) nabs[k];
    }

    s->cnt = (uint64_t) cnt;
    s->zcnt = (uint64_t) zc;
    s->fcnt = 0.5 * (double) cnt + 0.25 * (i % 3);
    s->fzcnt = 0.5 * (double) zc;
}


/*
 * The golden series (docs/format/chunk.md, gen.py): sample i of case
 * "name"; returns the sample count.
 */

static uint32_t
th_case(const char *name, int flt, th_h_t *s)
{
    int             i;
    int64_t         pabs[5], nabs[2], big;
    static const int32_t  cp[] = { 2, 3, 1, 2 }, cn[] = { -1, 2 };
    static const int32_t  g0[] = { 0, 2 }, g1[] = { 1, 2 },
                          g2[] = { 0, 1, 1, 1 }, g3[] = { -1, 4 };
    static const int32_t  r0[] = { 0, 2 }, r1[] = { 0, 2, 1, 1 },
                          r2[] = { -2, 1, 1, 2, 1, 1 }, n0[] = { 0, 1 };
    static const int32_t  st[] = { 0, 3 }, o1[] = { 0, 1 },
                          m1[] = { 0, 1, 1, 1 };
    static const int32_t  wp[] = { -300, 2, 70000, 1 }, wn[] = { 5, 1 };
    static const int64_t  bigs[] = {
        0, 3, 30, 250, 2000, 130000, 16000000, 1LL << 54, 1LL << 60
    };

    if (strcmp(name, "counter") == 0) {
        for (i = 0; i < 30; i++) {
            for (int k = 0; k < 5; k++) {
                pabs[k] = i * (k + 1) + (i / 3) * k;
            }

            nabs[0] = i / 2;
            nabs[1] = i / 2 + 1;
            th_mk(&s[i], i, flt, 3, ldexp(1, -128), 2 * i, cp, 2, pabs, 5,
                  cn, 1, nabs, 2, i * 1.5 + 0.25 * i * i, 0, 0);
        }

        return 30;
    }

    if (strcmp(name, "grow") == 0) {
        for (i = 0; i < 15; i++) {
            pabs[0] = i < 9 ? i : i - 9;
            pabs[1] = i < 9 ? 2 * i : i;
            pabs[2] = i < 9 ? i - 5 : 2 * i;
            pabs[3] = i - 5;
            nabs[0] = i - 12;
            th_mk(&s[i], i, flt, 0, ldexp(1, -128), i,
                  i < 5 ? r0 : i < 9 ? r1 : r2, i < 5 ? 1 : i < 9 ? 2 : 3,
                  pabs, i < 5 ? 2 : i < 9 ? 3 : 4,
                  n0, i >= 12, nabs, i >= 12, (double) (i * i), 0, 0);
        }

        return 15;
    }

    if (strcmp(name, "stale") == 0) {
        for (i = 0; i < 9; i++) {
            pabs[0] = i;
            pabs[1] = i + 1;
            pabs[2] = 2 * i;
            th_mk(&s[i], i, flt, 1, 0.0, i < 6 ? i : 0, st, i < 6, pabs,
                  i < 6 ? 3 : 0, NULL, 0, NULL, 0, 10.0 * i, i >= 6, 0);
        }

        return 9;
    }

    if (strcmp(name, "gauge") == 0) {
        for (i = 0; i < 16; i++) {
            switch (i % 4) {
            case 0:
                pabs[0] = 5 - i % 3;
                pabs[1] = 3;
                break;
            case 1:
                pabs[0] = 1;
                pabs[1] = 7 - i % 5;
                break;
            case 2:
                pabs[0] = i % 7;
                pabs[1] = 2;
                break;
            default:
                pabs[0] = 1;
                pabs[1] = 0;
                pabs[2] = 4;
                pabs[3] = 2;
            }

            th_mk(&s[i], i, flt, 2, ldexp(1, -128), 3 - i % 4,
                  i % 4 == 0 ? g0 : i % 4 == 1 ? g1 : i % 4 == 2 ? g2 : g3,
                  i % 4 == 2 ? 2 : 1, pabs, i % 4 == 3 ? 4 : 2,
                  NULL, 0, NULL, 0, 100.0 - 3.5 * i, 0, TS_HIST_HINT_GAUGE);
        }

        return 16;
    }

    if (strcmp(name, "wide") == 0) {
        for (i = 0; i < 9; i++) {
            big = bigs[i];
            pabs[0] = big + i;
            pabs[1] = 2 * big;
            pabs[2] = big / 3;
            nabs[0] = big / 2;
            th_mk(&s[i], i, flt, flt ? -4 : 8, 0.001, big, wp, 2, pabs, 3,
                  wn, 1, nabs, 1, -1.0e300 * (1 + i), 0, 0);
            s[i].t += (int64_t) i * i * i * 977;
        }

        return 9;
    }

    if (strcmp(name, "reset") == 0) {
        for (i = 0; i < 12; i++) {
            pabs[0] = i < 6 ? i : i - 6;
            pabs[1] = 2 * pabs[0] + 1;
            th_mk(&s[i], i, flt, 0, ldexp(1, -128), pabs[0], r0, 1, pabs, 2,
                  NULL, 0, NULL, 0, (double) pabs[0], 0, 0);
        }

        return 12;
    }

    if (strcmp(name, "ztchange") == 0) {
        for (i = 0; i < 8; i++) {
            pabs[0] = i;
            th_mk(&s[i], i, flt, 0, ldexp(1, i < 4 ? -128 : -10), i, o1, 1,
                  pabs, 1, NULL, 0, NULL, 0, (double) i, 0, 0);
        }

        return 8;
    }

    /* "missing" */
    for (i = 0; i < 8; i++) {
        pabs[0] = i;
        pabs[1] = i < 4 ? 0 : i;
        pabs[2] = i;
        th_mk(&s[i], i, flt, 0, ldexp(1, -128), 0, i < 4 ? st : m1,
              i < 4 ? 1 : 2, pabs, i < 4 ? 3 : 2, NULL, 0, NULL, 0,
              (double) i, 0, 0);
    }

    return 8;
}


/*
 * Golden chunks written by Prometheus 2.42 (Debian's prometheus with
 * --enable-feature=native-histograms): th_case() pushed through remote
 * write, read back with remote read (STREAMED_XOR_CHUNKS) once a later
 * sample had closed them.  Recipe in docs/format/chunk.md.
 */

static const uint8_t  th_prom_counter_0[] = {
    0x00, 0x1e, 0x00, 0x74, 0x9c, 0xa7, 0x29, 0x46, 0x32, 0xbf, 0xf0, 0x00,
    0x0c, 0x5e, 0x7e, 0xc9, 0x98, 0x04, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x47, 0xe0, 0xea, 0x7f, 0x23, 0x2c, 0x46, 0x7f, 0xfc,
    0x63, 0x18, 0xc4, 0xda, 0xc9, 0x84, 0xdf, 0xfd, 0x82, 0x2c, 0x5e, 0x21,
    0xb0, 0x4b, 0x46, 0x31, 0x8d, 0xdb, 0x5d, 0xc3, 0x50, 0xdf, 0xaf, 0x7b,
    0xde, 0x25, 0x9b, 0x05, 0xf8, 0x2e, 0xc5, 0xe3, 0x1a, 0xc6, 0xcd, 0x18,
    0xc6, 0x31, 0x6d, 0x76, 0x8d, 0xa2, 0xcd, 0x7b, 0xde, 0xf7, 0x24, 0xd8,
    0x35, 0x60, 0x8b, 0x17, 0x88, 0x69, 0x2b, 0xe7, 0x46, 0x31, 0x8d, 0xdb,
    0x5d, 0xc2, 0x09, 0xd7, 0xbd, 0xef, 0x12, 0xc8, 0x1b, 0x05, 0xd8, 0xbc,
    0x62, 0x18, 0xd1, 0x8c, 0x63, 0x16, 0xd7, 0x68, 0x82, 0xf5, 0xef, 0x7b,
    0xdd, 0x8b, 0x92, 0x3e, 0xc1, 0x16, 0xd7, 0x10, 0xdc, 0x34, 0x68, 0xc6,
    0x31, 0xb9, 0xb8, 0x6d, 0x1e, 0xda, 0xf7, 0xbd, 0xe2, 0xc5, 0xd9, 0xb0,
    0x8e, 0x70, 0x5d, 0xb5, 0xc6, 0x23, 0x74, 0x63, 0x18, 0xc4, 0xda, 0x26,
    0xb5, 0xef, 0x7b, 0xdd, 0x8b, 0x93, 0x51, 0x5e, 0xf8, 0x22, 0xda, 0xe2,
    0x1b, 0xc6, 0xfd, 0x18, 0xc6, 0x37, 0x37, 0x0d, 0xc3, 0xdf, 0x5e, 0xf7,
    0xbc, 0x58, 0xbb, 0x36, 0x91, 0xe6, 0x0b, 0xb6, 0xb8, 0xc4, 0x96, 0x8c,
    0x63, 0x18, 0xb1, 0x7b, 0x46, 0xc2, 0x7a, 0xeb, 0xde, 0xf7, 0xbb, 0x6b,
    0x24, 0x47, 0x04, 0x4c, 0x42, 0x1d, 0xa3, 0x18, 0xc6, 0xec, 0x5e, 0xe1,
    0x30, 0xd7, 0xbd, 0xef, 0x16, 0xd6, 0xc8, 0x9e, 0x0b, 0x80
};

static const uint8_t  th_prom_grow_0[] = {
    0x00, 0x0f, 0x00, 0x74, 0x4e, 0x36, 0x94, 0x63, 0x18, 0xc5, 0xfc, 0x00,
    0x03, 0x17, 0x9f, 0xb2, 0x66, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x03, 0xe0, 0xea, 0x7e, 0x91, 0xc4, 0x57, 0xfe, 0x8c, 0x6c,
    0xda, 0x98, 0x4a, 0xff, 0xc1, 0x8b, 0x35, 0x0b, 0x90, 0x6d, 0x49, 0x20,
    0x1b, 0x04, 0x90, 0x62, 0xe2, 0xd2, 0x3f, 0xb1, 0x16, 0xd4, 0xd8, 0x2d,
    0x40, 0x35, 0x8d, 0x88, 0x31, 0x66, 0xd1, 0x62, 0x0d, 0xac, 0x5b, 0x06,
    0xd6, 0x37, 0x02, 0x74, 0x18, 0xb3, 0x51, 0x1e, 0x20, 0xda, 0xc5, 0xb4,
    0x6e, 0x42, 0x38, 0xb3, 0x60, 0xfb, 0x40
};

static const uint8_t  th_prom_stale_0[] = {
    0x00, 0x09, 0x00, 0x00, 0x8c, 0x66, 0x7f, 0x00, 0x00, 0xc5, 0xe7, 0xec,
    0x99, 0x80, 0x44, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x8d,
    0xfe, 0x0e, 0xa7, 0xf0, 0xb1, 0xc2, 0x6c, 0x02, 0x62, 0x8e, 0xd4, 0x80,
    0x08, 0x31, 0x66, 0xc0, 0xe8, 0xda, 0x9a, 0x46, 0xf4, 0x0d, 0x82, 0x68,
    0xc5, 0x98, 0xbd, 0xfe, 0xe4, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0e, 0xd4,
    0x00
};

static const uint8_t  th_prom_gauge_0[] = {
    0x00, 0x10, 0xc0, 0x74, 0x94, 0x69, 0x77, 0xf0, 0x00, 0x0c, 0x5e, 0x7e,
    0xc9, 0x98, 0x06, 0x2e, 0x68, 0x0b, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x0c, 0x2d, 0xab, 0xf0, 0x75, 0x3f, 0x6b, 0xef, 0x12, 0x5b, 0xb9, 0xe2,
    0x36, 0xb6, 0x6c, 0x1f, 0xdb, 0x0f, 0xba, 0xda, 0xe2, 0xf0, 0xc8, 0x4c,
    0x77, 0x78, 0x9b, 0xed, 0x63, 0x48, 0xfd, 0xb1, 0x1b, 0x59, 0xab, 0xbc,
    0x84, 0xc7, 0x6f, 0x87, 0xc5, 0x62, 0xee, 0x9d, 0xb1, 0x5b, 0x7d, 0x9e,
    0xd6, 0xe8, 0x4c, 0x76, 0x79, 0x12, 0x94, 0x83, 0xdb, 0x17, 0xb2, 0x9e,
    0x2f, 0x77, 0xbc, 0x8c, 0xc7, 0x73, 0x85, 0xc3, 0x6d, 0x66, 0x85, 0xb0,
    0xdb, 0xbd, 0xda, 0x2d, 0x63, 0x7b, 0x1d, 0xce, 0x2f, 0x79, 0x8b, 0x9d,
    0x37, 0x09, 0xf6, 0xc5, 0x6c, 0xe7, 0xb5, 0xdc, 0x6f, 0x36, 0x8b, 0x98,
    0xed, 0x71, 0x38, 0x7c, 0x59, 0x2d, 0x85, 0xde, 0x6e, 0x76, 0xb8, 0x86,
    0xc1, 0xb9, 0x8d, 0xf0, 0xb5
};

static const uint8_t  th_prom_wide_0[] = {
    0x00, 0x09, 0x00, 0xff, 0x3f, 0x50, 0x62, 0x4d, 0xd2, 0xf1, 0xa9, 0xfc,
    0xc4, 0x4a, 0x5e, 0xed, 0x48, 0xfc, 0x88, 0xb8, 0x46, 0x38, 0x5f, 0xe0,
    0x00, 0x18, 0xbc, 0xfd, 0x93, 0x30, 0x03, 0xf8, 0xdf, 0x90, 0xf2, 0x20,
    0x01, 0xd6, 0x70, 0x3e, 0x0f, 0x9c, 0x31, 0xf3, 0xd2, 0x1f, 0xa4, 0xb7,
    0x71, 0xf8, 0x16, 0xdb, 0xe3, 0xae, 0x63, 0x5e, 0xb6, 0x0f, 0x11, 0xee,
    0x00, 0x2d, 0xa9, 0xcc, 0x66, 0x3b, 0xb1, 0x8d, 0xf8, 0x2d, 0xd7, 0xf1,
    0xd2, 0x73, 0x06, 0x30, 0x78, 0x8f, 0x70, 0x01, 0x6d, 0x4f, 0x30, 0x79,
    0x83, 0xee, 0xbe, 0xe3, 0x07, 0xc2, 0x25, 0x3f, 0xc0, 0xe7, 0x1f, 0x97,
    0xea, 0x51, 0xcb, 0xb9, 0x10, 0x07, 0x34, 0xff, 0x97, 0xeb, 0xcb, 0xf5,
    0xf7, 0xec, 0x15, 0xe2, 0xfd, 0xf8, 0x5b, 0x98, 0xfc, 0x09, 0x4f, 0xa1,
    0xf9, 0xed, 0x2a, 0xd5, 0xaf, 0x86, 0xcc, 0xd9, 0x80, 0x19, 0x66, 0xfe,
    0x7b, 0x4a, 0xbe, 0x7b, 0x4a, 0xbf, 0x7f, 0x32, 0x84, 0x3e, 0x3d, 0xa5,
    0x7e, 0x1c, 0xa2, 0x7f, 0x80, 0x00, 0x00, 0x01, 0x22, 0x3f, 0x0f, 0x7f,
    0x3c, 0x0d, 0x0c, 0x36, 0xe7, 0x43, 0x26, 0x64, 0x40, 0x0f, 0xb7, 0x7f,
    0x3c, 0x0d, 0x0c, 0x3f, 0x3c, 0x0d, 0x0c, 0x3f, 0xbf, 0xff, 0xff, 0xff,
    0x9b, 0xea, 0x41, 0x7f, 0x1e, 0x06, 0x86, 0x3e, 0x22, 0x56, 0x7f, 0xc0,
    0x4d, 0x55, 0x55, 0x53, 0x09, 0xb9, 0x46, 0x3f, 0x8f, 0xff, 0xff, 0xff,
    0x86, 0x6c, 0xf4, 0x26, 0x07, 0x10, 0xfe, 0x00, 0x26, 0xe9, 0xfc, 0x7f,
    0xff, 0xff, 0xfc, 0x33, 0x67, 0xa1, 0xfc, 0x7f, 0xff, 0xff, 0xfc, 0x33,
    0x67, 0xa1, 0xfd, 0x2a, 0xaa, 0xaa, 0xb0, 0xff, 0xa8, 0xa1, 0xfc, 0x3f,
    0xff, 0xff, 0xfe, 0x19, 0xb3, 0xd1, 0xf1, 0x40, 0x95, 0xfe, 0x95, 0xd5,
    0x55, 0x55, 0x5e, 0x8d, 0x5c, 0x01, 0xfe, 0x1f, 0x00, 0x00, 0x00, 0x01,
    0xe8, 0x48, 0x01, 0xb3, 0x2d, 0x04, 0xf8, 0x91, 0x00, 0xf1, 0xcf, 0xfc,
    0x3e, 0x00, 0x00, 0x00, 0x03, 0xd0, 0x90, 0x03, 0xfc, 0x3e, 0x00, 0x00,
    0x00, 0x03, 0xd0, 0x90, 0x03, 0xff, 0x98, 0xaa, 0xaa, 0xaa, 0xa4, 0x4f,
    0x10, 0x03, 0xfc, 0x1f, 0x00, 0x00, 0x00, 0x01, 0xe8, 0x48, 0x00
};

static const uint8_t  th_prom_reset_0[] = {
    0x00, 0x06, 0x00, 0x74, 0x46, 0x47, 0xf0, 0x00, 0x0c, 0x5e, 0x7e, 0xc9,
    0x98, 0x04, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0xfc,
    0x1d, 0x4f, 0xd2, 0x38, 0x8a, 0xff, 0xe3, 0x1d, 0xa9, 0x84, 0xbf, 0xfe,
    0x62, 0xcd, 0x80, 0xcd, 0xa9, 0xac, 0x2c, 0x1b, 0x41, 0x80
};

static const uint8_t  th_prom_reset_1[] = {
    0x00, 0x06, 0x80, 0x74, 0x46, 0x47, 0xf0, 0x00, 0x0c, 0x5e, 0x7e, 0xd4,
    0x94, 0xcc, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0xfc,
    0x1d, 0x4a, 0x52, 0x38, 0x8a, 0xff, 0xe3, 0x11, 0x84, 0xbf, 0xfe, 0x62,
    0xcd, 0x80, 0xcd, 0xa9, 0xac, 0x2c, 0x1b, 0x41, 0x80
};

static const uint8_t  th_prom_ztchange_0[] = {
    0x00, 0x04, 0x00, 0x74, 0x46, 0x27, 0xf0, 0x00, 0x0c, 0x5e, 0x7e, 0xc9,
    0x98, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3a,
    0x9f, 0x94, 0x71, 0x15, 0xff, 0xc7, 0x6a, 0x61, 0x2f, 0xff, 0xb1, 0x66,
    0xc0, 0x60
};

static const uint8_t  th_prom_ztchange_1[] = {
    0x00, 0x04, 0x00, 0xea, 0x46, 0x27, 0xf0, 0x00, 0x0c, 0x5e, 0x7e, 0xd0,
    0xeb, 0x36, 0x22, 0x88, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14,
    0xf8, 0x3a, 0x94, 0x94, 0x76, 0x83, 0x8e, 0x2c, 0xd8, 0x16, 0xda, 0x92
};

static const uint8_t  th_prom_missing_0[] = {
    0x00, 0x04, 0x00, 0x74, 0x46, 0x67, 0xf0, 0x00, 0x0c, 0x5e, 0x7e, 0xc9,
    0x98, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3e, 0x0e,
    0xa7, 0xe4, 0xc4, 0x57, 0xff, 0x1b, 0xc7, 0x6a, 0x61, 0x2f, 0xff, 0x8c,
    0x59, 0xb0, 0x18
};

static const uint8_t  th_prom_missing_1[] = {
    0x00, 0x04, 0x80, 0x74, 0x4a, 0x28, 0xc5, 0xfc, 0x00, 0x03, 0x17, 0x9f,
    0xb4, 0x3a, 0xcd, 0x88, 0x20, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x51, 0xf0, 0x75, 0x29, 0x26, 0xd0, 0x71, 0x62, 0xcd, 0x81, 0x66, 0xd4,
    0x90
};

typedef struct {
    const char     *name;
    uint32_t        chunk;
    const uint8_t  *data;
    size_t          len;
} th_golden_t;


#define TH_G(n, c)  { #n, c, th_prom_##n##_##c, sizeof(th_prom_##n##_##c) }

static const th_golden_t  th_goldens[] = {
    TH_G(counter, 0), TH_G(grow, 0), TH_G(stale, 0), TH_G(gauge, 0),
    TH_G(wide, 0), TH_G(reset, 0), TH_G(reset, 1), TH_G(ztchange, 0),
    TH_G(ztchange, 1), TH_G(missing, 0), TH_G(missing, 1)
};


/* our head: cuts, recodes and restarts chunks as Prometheus 3's does */

typedef struct {
    ts_hist_app_t  *a;
    uint8_t        *buf;
    size_t          cap;
    uint32_t        nchunks;
    uint8_t        *chunks[TH_MAXN];
    size_t          lens[TH_MAXN];
    uint32_t        recodes;
    uint32_t        max;        /* samples per chunk, then cut */
} th_drv_t;


static void
th_drv_close(th_drv_t *d)
{
    size_t  len;

    if (d->a == NULL) {
        return;
    }

    len = d->cap;
    assert_true(d->nchunks < TH_MAXN);
    d->chunks[d->nchunks] = malloc(len);
    assert_non_null(d->chunks[d->nchunks]);
    assert_int_equal(ts_hist_snapshot(d->a, d->buf, d->chunks[d->nchunks],
                                      &len), TS_OK);
    d->lens[d->nchunks++] = len;

    free(d->a);
    free(d->buf);
    d->a = NULL;
    d->buf = NULL;
}


static void
th_drv_start(th_drv_t *d, unsigned hdr, const th_h_t *s)
{
    size_t     size;
    ts_hist_t  h;

    th_view(s, &h);
    th_drv_close(d);

    size = ts_hist_app_size(&h);
    assert_true(size > 0);

    d->a = aligned_alloc(8, (size + 7) & ~(size_t) 7);
    d->buf = malloc(d->cap);
    assert_non_null(d->a);
    assert_non_null(d->buf);

    assert_int_equal(ts_hist_start(d->a, size, d->buf, d->cap, hdr, s->t, &h),
                     TS_OK);
}


static void
th_drv_append(th_drv_t *d, const th_h_t *s)
{
    int             rc;
    size_t          size;
    unsigned        hdr;
    uint8_t        *nbuf, *mem;
    ts_hist_t       h;
    ts_hist_app_t  *na;

    th_view(s, &h);

    if (d->a == NULL) {
        th_drv_start(d, ts_hist_cut_header(NULL, &h), s);
        return;
    }

    if (d->max && ts_hist_count(d->a) >= d->max) {
        th_drv_start(d, ts_hist_cut_header(d->a, &h), s);
        return;
    }

    hdr = 0xff;
    rc = ts_hist_append(d->a, d->buf, s->t, &h, &hdr);

    if (rc == TS_OK) {
        return;
    }

    if (rc == TS_HIST_CUT) {
        assert_true(hdr != 0xff);
        th_drv_start(d, hdr, s);
        return;
    }

    assert_int_equal(rc, TS_HIST_RECODE);

    size = ts_hist_recode_size(d->a, &h);
    assert_true(size > 0);

    na = aligned_alloc(8, (size + 7) & ~(size_t) 7);
    nbuf = malloc(d->cap);
    mem = aligned_alloc(8, TH_MEM);
    assert_non_null(na);
    assert_non_null(nbuf);
    assert_non_null(mem);

    assert_int_equal(ts_hist_recode(d->a, d->buf, na, size, nbuf, d->cap,
                                    s->t, &h, mem, TH_MEM), TS_OK);

    free(mem);
    free(d->a);
    free(d->buf);
    d->a = na;
    d->buf = nbuf;
    d->recodes++;
}


static void
th_drv_init(th_drv_t *d, uint32_t max)
{
    memset(d, 0, sizeof(th_drv_t));
    d->cap = TH_CAP;
    d->max = max;
}


static void
th_drv_free(th_drv_t *d)
{
    uint32_t  i;

    free(d->a);
    free(d->buf);

    for (i = 0; i < d->nchunks; i++) {
        free(d->chunks[i]);
    }
}


/* decodes a chunk into s[0 .. max); returns the count, *rc the last */

static uint32_t
th_decode(const uint8_t *data, size_t len, unsigned enc, th_h_t *s,
    uint32_t max, int *rc)
{
    uint8_t        *mem, *copy;
    int64_t         t;
    uint32_t        n;
    ts_hist_t       h;
    ts_hist_iter_t  it;

    /* a heap copy of exactly len bytes, so ASan sees overreads */
    copy = malloc(len ? len : 1);
    mem = aligned_alloc(8, TH_MEM);
    assert_non_null(copy);
    assert_non_null(mem);
    memcpy(copy, data, len);

    assert_true(ts_hist_iter_need(copy, len, enc) <= TH_MEM);
    ts_hist_iter_init(&it, copy, len, enc, mem, TH_MEM);

    for (n = 0; (*rc = ts_hist_iter_next(&it, &t, &h)) == 1; n++) {
        if (n < max) {
            th_own(&s[n], t, &h);
        }
    }

    free(mem);
    free(copy);

    return n;
}


/* the absolute count of bucket idx on one side, 0 if absent */

static double
th_bucket(const th_h_t *s, int neg, int64_t idx)
{
    int64_t            at, abs;
    uint32_t           i, j, k, ns;
    const ts_hspan_t  *sp;

    sp = neg ? s->ns : s->ps;
    ns = neg ? s->nns : s->nps;
    at = 0;
    abs = 0;
    k = 0;

    for (i = 0; i < ns; i++) {
        at += sp[i].offset;

        for (j = 0; j < sp[i].length; j++, k++, at++) {
            abs += neg ? s->nd[k] : s->pd[k];

            if (at == idx) {
                return s->flt ? (neg ? s->nc[k] : s->pc[k]) : (double) abs;
            }
        }
    }

    return 0;
}


/* same histogram, whatever the layout: counts by bucket index */

static int
th_equiv(const th_h_t *a, const th_h_t *b)
{
    int      neg;
    int64_t  idx;

    if (a->t != b->t || a->sum != b->sum) {
        return 0;
    }

    if (a->sum == TH_STALE) {
        return 1;
    }

    if (a->schema != b->schema || a->zt != b->zt
        || (a->flt ? th_bits(a->fcnt) != th_bits(b->fcnt)
                     || th_bits(a->fzcnt) != th_bits(b->fzcnt)
                   : a->cnt != b->cnt || a->zcnt != b->zcnt))
    {
        return 0;
    }

    for (neg = 0; neg < 2; neg++) {
        for (idx = -400; idx <= 400; idx++) {
            if (th_bucket(a, neg, idx) != th_bucket(b, neg, idx)) {
                return 0;
            }
        }
    }

    return 1;
}


static void
th_golden_same(const th_golden_t *g, const uint8_t *ours, size_t len)
{
    /* Prometheus 2 may end a chunk with one more zero byte */
    th_check(g->name, g->len == len || (g->len == len + 1
                                        && g->data[len] == 0));
    th_check(g->name, memcmp(g->data, ours, len) == 0);
}


static void
test_prometheus_chunks(void **state)
{
    int                 rc;
    uint32_t            i, j, n, m, k, first;
    th_h_t             *s, *out;
    th_drv_t            d;
    const th_golden_t  *g;

    (void) state;

    s = malloc(TH_MAXN * sizeof(th_h_t));
    out = malloc(TH_MAXN * sizeof(th_h_t));
    assert_non_null(s);
    assert_non_null(out);

    for (i = 0; i < sizeof(th_goldens) / sizeof(th_goldens[0]); i++) {
        g = &th_goldens[i];
        n = th_case(g->name, 0, s);

        th_drv_init(&d, 0);

        for (j = 0; j < n; j++) {
            th_drv_append(&d, &s[j]);
        }

        th_drv_close(&d);

        /* the samples this chunk holds, as Prometheus 2.42 cut them */
        first = 0;

        if (strcmp(g->name, "reset") == 0 || strcmp(g->name, "missing") == 0
            || strcmp(g->name, "ztchange") == 0)
        {
            first = g->chunk ? (strcmp(g->name, "reset") == 0 ? 6 : 4) : 0;
            n = first + (strcmp(g->name, "reset") == 0 ? 6 : 4);
        }

        m = th_decode(g->data, g->len, TS_HIST_ENCODING, out, TH_MAXN, &rc);
        th_check(g->name, rc == 0 && m == n - first);

        for (k = 0; k < m; k++) {
            th_check(g->name, th_equiv(&out[k], &s[first + k]));
        }

        if (strcmp(g->name, "missing") != 0) {
            th_check(g->name, g->chunk < d.nchunks);
            th_golden_same(g, d.chunks[g->chunk], d.lens[g->chunk]);
            th_check(g->name, strcmp(g->name, "grow") || d.recodes == 3);
            th_drv_free(&d);
            continue;
        }

        /*
         * 2.42 cut a chunk (CounterReset) where an empty bucket went
         * missing; Prometheus 3 and we fill it in and keep appending.
         */
        th_check(g->name, d.nchunks == 1);
        th_drv_free(&d);

        th_drv_init(&d, 0);
        th_drv_start(&d, g->chunk ? TS_HIST_HDR_RESET : TS_HIST_HDR_UNKNOWN,
                     &s[first]);

        for (j = first + 1; j < n; j++) {
            th_drv_append(&d, &s[j]);
        }

        th_drv_close(&d);
        th_check(g->name, d.nchunks == 1);
        th_golden_same(g, d.chunks[0], d.lens[0]);
        th_drv_free(&d);
    }

    free(out);
    free(s);
}



/* the reference model: Prometheus 3 over bstream, transcribed */

#define TR_CAP        65536

typedef struct {
    uint8_t       b[TR_CAP];
    size_t        len;
    unsigned      count;
} tr_bs_t;


typedef struct {
    uint64_t      value;
    uint8_t       leading;
    uint8_t       trailing;
} tr_xv_t;


/* Go's Insert */
typedef struct {
    int           pos;
    int           num;
    int64_t       idx;
} tr_ins_t;


typedef struct {
    tr_ins_t      v[2 * TH_MAXB];
    int           n;
} tr_inss_t;


/* HistogramAppender and FloatHistogramAppender in one */
typedef struct {
    tr_bs_t       b;
    int           flt;
    int32_t       schema;
    double        zt;
    uint32_t      nps;
    uint32_t      nns;
    ts_hspan_t    ps[TH_MAXS];
    ts_hspan_t    ns[TH_MAXS];
    uint32_t      ncv;
    double        cv[TH_MAXC];
    int64_t       t;
    int64_t       tdelta;
    uint64_t      cnt;
    uint64_t      zcnt;
    int64_t       cntdelta;
    int64_t       zcntdelta;
    uint32_t      np;
    uint32_t      nn;
    int64_t       pb[TH_MAXB];
    int64_t       nb[TH_MAXB];
    int64_t       pbd[TH_MAXB];
    int64_t       nbd[TH_MAXB];
    uint64_t      sum;
    uint8_t       leading;
    uint8_t       trailing;
    tr_xv_t       fsum;
    tr_xv_t       fcnt;
    tr_xv_t       fzcnt;
    tr_xv_t       fpb[TH_MAXB];
    tr_xv_t       fnb[TH_MAXB];
    uint32_t      nrec;
    th_h_t        rec[TH_MAXN];    /* what the chunk's iterator returns */
} tr_app_t;


/* set when Go's adjustForInserts() emits a bucket out of order */
static int  tr_bug;


static void
tr_bit(tr_bs_t *s, int bit)
{
    if (s->count == 0) {
        s->b[s->len++] = 0;
        s->count = 8;
    }

    if (bit) {
        s->b[s->len - 1] |= (uint8_t) (1 << (s->count - 1));
    }

    s->count--;
}


static void
tr_byte(tr_bs_t *s, uint8_t byt)
{
    if (s->count == 0) {
        s->b[s->len++] = byt;
        return;
    }

    s->b[s->len - 1] |= (uint8_t) (byt >> (8 - s->count));
    s->b[s->len++] = (uint8_t) (byt << s->count);
}


static void
tr_bits(tr_bs_t *s, uint64_t u, int nbits)
{
    u = nbits == 64 ? u : u << (64 - nbits);

    for ( /* void */ ; nbits >= 8; nbits -= 8) {
        tr_byte(s, (uint8_t) (u >> 56));
        u <<= 8;
    }

    for ( /* void */ ; nbits > 0; nbits--) {
        tr_bit(s, (int) (u >> 63));
        u <<= 1;
    }
}


static int
tr_bitrange(int64_t x, int n)
{
    return -((1LL << (n - 1)) - 1) <= x && x <= 1LL << (n - 1);
}


static void
tr_varbit_int(tr_bs_t *b, int64_t val)
{
    if (val == 0) {
        tr_bit(b, 0);
    } else if (tr_bitrange(val, 3)) {
        tr_bits(b, 0x2, 2);
        tr_bits(b, (uint64_t) val, 3);
    } else if (tr_bitrange(val, 6)) {
        tr_bits(b, 0x6, 3);
        tr_bits(b, (uint64_t) val, 6);
    } else if (tr_bitrange(val, 9)) {
        tr_bits(b, 0xe, 4);
        tr_bits(b, (uint64_t) val, 9);
    } else if (tr_bitrange(val, 12)) {
        tr_bits(b, 0x1e, 5);
        tr_bits(b, (uint64_t) val, 12);
    } else if (tr_bitrange(val, 18)) {
        tr_bits(b, 0x3e, 6);
        tr_bits(b, (uint64_t) val, 18);
    } else if (tr_bitrange(val, 25)) {
        tr_bits(b, 0x7e, 7);
        tr_bits(b, (uint64_t) val, 25);
    } else if (tr_bitrange(val, 56)) {
        tr_bits(b, 0xfe, 8);
        tr_bits(b, (uint64_t) val, 56);
    } else {
        tr_bits(b, 0xff, 8);
        tr_bits(b, (uint64_t) val, 64);
    }
}


static void
tr_varbit_uint(tr_bs_t *b, uint64_t val)
{
    static const int  w[] = { 3, 6, 9, 12, 18, 25, 56 };
    int               k;

    if (val == 0) {
        tr_bit(b, 0);
        return;
    }

    for (k = 0; k < 7; k++) {
        if (val >> w[k] == 0) {
            tr_bits(b, ((1ULL << (k + 1)) - 1) << 1, k + 2);
            tr_bits(b, val, w[k]);
            return;
        }
    }

    tr_bits(b, 0xff, 8);
    tr_bits(b, val, 64);
}


static void
tr_xor_write(tr_bs_t *b, uint64_t nv, uint64_t cv, uint8_t *leading,
    uint8_t *trailing)
{
    int       sig;
    uint8_t   nl, nt;
    uint64_t  delta;

    delta = nv ^ cv;

    if (delta == 0) {
        tr_bit(b, 0);
        return;
    }

    tr_bit(b, 1);

    nl = (uint8_t) __builtin_clzll(delta);
    nt = (uint8_t) __builtin_ctzll(delta);

    if (nl >= 32) {
        nl = 31;
    }

    if (*leading != 0xff && nl >= *leading && nt >= *trailing) {
        tr_bit(b, 0);
        tr_bits(b, delta >> *trailing, 64 - *leading - *trailing);
        return;
    }

    *leading = nl;
    *trailing = nt;

    tr_bit(b, 1);
    tr_bits(b, nl, 5);
    sig = 64 - nl - nt;
    tr_bits(b, (uint64_t) sig, 6);
    tr_bits(b, delta >> nt, sig);
}


static void
tr_zt(tr_bs_t *b, double zt)
{
    int     exp;
    double  frac;

    if (zt == 0) {
        tr_byte(b, 0);
        return;
    }

    exp = 0;
    frac = frexp(zt, &exp);

    if (frac != 0.5 || exp < -242 || exp > 11) {
        tr_byte(b, 255);
        tr_bits(b, th_bits(zt), 64);
        return;
    }

    tr_byte(b, (uint8_t) (exp + 243));
}


/* Go's isWholeWhenMultiplied; uint(NaN) is 2^63 on amd64: not whole */

static int
tr_whole(double in)
{
    uint64_t  i;

    if (isnan(in)) {
        return 0;
    }

    i = (uint64_t) round(in * 1000);

    return in == (double) i / 1000;
}


static void
tr_custom(tr_bs_t *b, double f)
{
    double  tf;

    tf = f * 1000;

    if (tf < 0 || tf > 33554430 || !tr_whole(f)) {
        tr_bit(b, 0);
        tr_bits(b, th_bits(f), 64);
        return;
    }

    tr_varbit_uint(b, (uint64_t) round(tf) + 1);
}


static void
tr_spans(tr_bs_t *b, const ts_hspan_t *s, uint32_t n)
{
    uint32_t  i;

    tr_varbit_uint(b, n);

    for (i = 0; i < n; i++) {
        tr_varbit_uint(b, s[i].length);
        tr_varbit_int(b, s[i].offset);
    }
}


static uint32_t
tr_count_spans(const ts_hspan_t *s, uint32_t n)
{
    uint32_t  i, c;

    for (c = 0, i = 0; i < n; i++) {
        c += s[i].length;
    }

    return c;
}


static tr_app_t *
tr_new(int flt)
{
    tr_app_t  *a;

    a = calloc(1, sizeof(tr_app_t));
    assert_non_null(a);

    a->flt = flt;
    a->b.len = 3;
    a->t = INT64_MIN;
    a->leading = 0xff;
    a->fsum.leading = 0xff;
    a->fcnt.leading = 0xff;
    a->fzcnt.leading = 0xff;

    return a;
}


static unsigned
tr_num(const tr_app_t *a)
{
    return (unsigned) a->b.b[0] << 8 | a->b.b[1];
}


static unsigned
tr_header(const tr_app_t *a)
{
    return a->b.b[2] & 0xc0;
}


static void
tr_set_header(tr_app_t *a, unsigned h)
{
    a->b.b[2] = (uint8_t) ((a->b.b[2] & 0x3f) | (h & 0xc0));
}


static int
tr_stale(const th_h_t *h)
{
    return h->sum == TH_STALE;
}


/* the sample as the chunk's iterator gives it back */

static void
tr_record(tr_app_t *a, const th_h_t *h)
{
    th_h_t  *r;

    assert_true(a->nrec < TH_MAXN);
    r = &a->rec[a->nrec++];
    *r = *h;

    if (tr_stale(h)) {
        return;
    }

    r->schema = a->schema;
    r->zt = a->zt;
    r->nps = a->nps;
    r->nns = a->nns;
    memcpy(r->ps, a->ps, sizeof(r->ps));
    memcpy(r->ns, a->ns, sizeof(r->ns));
    r->ncv = a->ncv;
    memcpy(r->cv, a->cv, sizeof(r->cv));
}


static void
tr_layout(tr_app_t *a, const th_h_t *h)
{
    uint32_t  k;

    tr_zt(&a->b, h->zt);
    tr_varbit_int(&a->b, h->schema);
    tr_spans(&a->b, h->ps, h->nps);
    tr_spans(&a->b, h->ns, h->nns);

    if (h->schema == -53) {
        tr_varbit_uint(&a->b, h->ncv);

        for (k = 0; k < h->ncv; k++) {
            tr_custom(&a->b, h->cv[k]);
        }
    }

    a->schema = h->schema;
    a->zt = h->zt;
    a->nps = h->nps;
    a->nns = h->nns;
    memcpy(a->ps, h->ps, sizeof(a->ps));
    memcpy(a->ns, h->ns, sizeof(a->ns));
    a->ncv = h->ncv;
    memcpy(a->cv, h->cv, sizeof(a->cv));
    a->np = tr_count_spans(h->ps, h->nps);
    a->nn = tr_count_spans(h->ns, h->nns);
}


/* Go's appendHistogram */

static void
tr_append_int(tr_app_t *a, int64_t t, const th_h_t *in)
{
    unsigned  num, i;
    int64_t   tdelta, cntdelta, zcntdelta, delta, dod;
    th_h_t    h;

    num = tr_num(a);
    h = *in;
    tdelta = cntdelta = zcntdelta = 0;

    if (tr_stale(in)) {
        memset(&h, 0, sizeof(h));
        h.sum = in->sum;
        h.t = in->t;
        h.flt = in->flt;
    }

    if (num == 0) {
        tr_layout(a, &h);
        memset(a->pb, 0, sizeof(a->pb));
        memset(a->nb, 0, sizeof(a->nb));
        memset(a->pbd, 0, sizeof(a->pbd));
        memset(a->nbd, 0, sizeof(a->nbd));

        tr_varbit_int(&a->b, t);
        tr_varbit_uint(&a->b, h.cnt);
        tr_varbit_uint(&a->b, h.zcnt);
        tr_bits(&a->b, h.sum, 64);

        for (i = 0; i < h.np; i++) {
            tr_varbit_int(&a->b, h.pd[i]);
        }

        for (i = 0; i < h.nn; i++) {
            tr_varbit_int(&a->b, h.nd[i]);
        }

    } else {
        tdelta = th_sub(t, a->t);
        cntdelta = th_sub((int64_t) h.cnt, (int64_t) a->cnt);
        zcntdelta = th_sub((int64_t) h.zcnt, (int64_t) a->zcnt);

        tr_varbit_int(&a->b, th_sub(tdelta, a->tdelta));
        tr_varbit_int(&a->b, tr_stale(&h) ? 0 : th_sub(cntdelta, a->cntdelta));
        tr_varbit_int(&a->b, tr_stale(&h) ? 0
                                          : th_sub(zcntdelta, a->zcntdelta));
        tr_xor_write(&a->b, h.sum, a->sum, &a->leading, &a->trailing);

        for (i = 0; i < h.np; i++) {
            delta = th_sub(h.pd[i], a->pb[i]);
            dod = th_sub(delta, a->pbd[i]);
            tr_varbit_int(&a->b, dod);
            a->pbd[i] = delta;
        }

        for (i = 0; i < h.nn; i++) {
            delta = th_sub(h.nd[i], a->nb[i]);
            dod = th_sub(delta, a->nbd[i]);
            tr_varbit_int(&a->b, dod);
            a->nbd[i] = delta;
        }
    }

    a->b.b[0] = (uint8_t) ((num + 1) >> 8);
    a->b.b[1] = (uint8_t) (num + 1);

    a->t = t;
    a->cnt = h.cnt;
    a->zcnt = h.zcnt;
    a->tdelta = tdelta;
    a->cntdelta = cntdelta;
    a->zcntdelta = zcntdelta;
    memcpy(a->pb, h.pd, h.np * sizeof(int64_t));
    memcpy(a->nb, h.nd, h.nn * sizeof(int64_t));
    a->sum = h.sum;

    tr_record(a, &h);
}


/* Go's appendFloatHistogram */

static void
tr_append_float(tr_app_t *a, int64_t t, const th_h_t *in)
{
    unsigned  num, i;
    int64_t   tdelta;
    th_h_t    h;

    num = tr_num(a);
    h = *in;
    tdelta = 0;

    if (tr_stale(in)) {
        memset(&h, 0, sizeof(h));
        h.sum = in->sum;
        h.t = in->t;
        h.flt = in->flt;
    }

    if (num == 0) {
        tr_layout(a, &h);

        for (i = 0; i < a->np; i++) {
            a->fpb[i].value = th_bits(h.pc[i]);
            a->fpb[i].leading = 0xff;
        }

        for (i = 0; i < a->nn; i++) {
            a->fnb[i].value = th_bits(h.nc[i]);
            a->fnb[i].leading = 0xff;
        }

        tr_varbit_int(&a->b, t);
        tr_bits(&a->b, th_bits(h.fcnt), 64);
        tr_bits(&a->b, th_bits(h.fzcnt), 64);
        tr_bits(&a->b, h.sum, 64);
        a->fcnt.value = th_bits(h.fcnt);
        a->fzcnt.value = th_bits(h.fzcnt);
        a->fsum.value = h.sum;

        for (i = 0; i < h.np; i++) {
            tr_bits(&a->b, th_bits(h.pc[i]), 64);
        }

        for (i = 0; i < h.nn; i++) {
            tr_bits(&a->b, th_bits(h.nc[i]), 64);
        }

    } else {
        tdelta = th_sub(t, a->t);
        tr_varbit_int(&a->b, th_sub(tdelta, a->tdelta));

#define tr_xv(x, v)                                                       \
        do {                                                              \
            tr_xor_write(&a->b, v, (x)->value, &(x)->leading,             \
                         &(x)->trailing);                                 \
            (x)->value = v;                                               \
        } while (0)

        tr_xv(&a->fcnt, th_bits(h.fcnt));
        tr_xv(&a->fzcnt, th_bits(h.fzcnt));
        tr_xv(&a->fsum, h.sum);

        for (i = 0; i < h.np; i++) {
            tr_xv(&a->fpb[i], th_bits(h.pc[i]));
        }

        for (i = 0; i < h.nn; i++) {
            tr_xv(&a->fnb[i], th_bits(h.nc[i]));
        }

#undef tr_xv
    }

    a->b.b[0] = (uint8_t) ((num + 1) >> 8);
    a->b.b[1] = (uint8_t) (num + 1);

    a->t = t;
    a->tdelta = tdelta;

    tr_record(a, &h);
}


static void
tr_append(tr_app_t *a, int64_t t, const th_h_t *h)
{
    if (a->flt) {
        tr_append_float(a, t, h);

    } else {
        tr_append_int(a, t, h);
    }
}


/* Go's bucketIterator (Prometheus 3) */

typedef struct {
    const ts_hspan_t  *spans;
    uint32_t           n;
    uint32_t           span;
    int64_t            bucket;
    int64_t            idx;
} tr_bit_t;


static void
tr_bit_init(tr_bit_t *b, const ts_hspan_t *spans, uint32_t n)
{
    b->spans = spans;
    b->n = n;
    b->span = 0;
    b->bucket = -1;
    b->idx = -1;

    if (n > 0) {
        b->idx += spans[0].offset;
    }
}


static int
tr_bit_next(tr_bit_t *b, int64_t *idx)
{
    if (b->span >= b->n) {
        return 0;
    }

    if (b->bucket < (int64_t) b->spans[b->span].length - 1) {
        b->bucket++;
        b->idx++;
        *idx = b->idx;
        return 1;
    }

    while (b->span + 1 < b->n) {
        b->span++;
        b->idx += b->spans[b->span].offset + 1;
        b->bucket = 0;

        if (b->spans[b->span].length == 0) {
            b->idx--;
            continue;
        }

        *idx = b->idx;
        return 1;
    }

    return 0;
}


static void
tr_add_insert(tr_inss_t *l, tr_ins_t *ins, int64_t other)
{
    if (ins->num == 0) {
        ins->idx = other;

    } else if (ins->idx + ins->num != other) {
        l->v[l->n++] = *ins;
        ins->num = 0;
        ins->idx = other;
    }

    ins->num++;
}


/*
 * Go's expandIntSpansAndBuckets (flt 0) and expandFloatSpansAndBuckets
 * (flt 1): values of a are the appender's, of b the new histogram's.
 */

static int
tr_expand(const ts_hspan_t *as, uint32_t nas, const ts_hspan_t *bs,
    uint32_t nbs, const int64_t *ai64, const tr_xv_t *axv,
    const int64_t *bi64, const double *bf, int flt, tr_inss_t *fwd,
    tr_inss_t *bwd)
{
    int       aok, bok;
    int64_t   aidx, bidx, aci, bci;
    double    acf, bcf;
    uint32_t  acix, bcix;
    tr_bit_t  ai, bi;
    tr_ins_t  ainter, binter;

    fwd->n = 0;
    bwd->n = 0;
    memset(&ainter, 0, sizeof(ainter));
    memset(&binter, 0, sizeof(binter));

    tr_bit_init(&ai, as, nas);
    tr_bit_init(&bi, bs, nbs);
    aidx = bidx = 0;
    aok = tr_bit_next(&ai, &aidx);
    bok = tr_bit_next(&bi, &bidx);

    aci = bci = 0;
    acf = bcf = 0;
    acix = bcix = 0;

    if (aok) {
        aci = flt ? 0 : ai64[0];
        acf = flt ? th_double(axv[0].value) : 0;
    }

    if (bok) {
        bci = flt ? 0 : bi64[0];
        bcf = flt ? bf[0] : 0;
    }

#define tr_adv_a()                                                        \
    do {                                                                  \
        if (ainter.num > 0) {                                             \
            fwd->v[fwd->n++] = ainter;                                    \
            ainter.num = 0;                                               \
        }                                                                 \
        aok = tr_bit_next(&ai, &aidx);                                    \
        ainter.pos++;                                                     \
        acix++;                                                           \
        if (aok) {                                                        \
            if (flt) {                                                    \
                acf = th_double(axv[acix].value);                         \
            } else {                                                      \
                aci = (int64_t) ((uint64_t) aci + (uint64_t) ai64[acix]); \
            }                                                             \
        }                                                                 \
    } while (0)

#define tr_adv_b()                                                        \
    do {                                                                  \
        if (binter.num > 0) {                                             \
            bwd->v[bwd->n++] = binter;                                    \
            binter.num = 0;                                               \
        }                                                                 \
        bok = tr_bit_next(&bi, &bidx);                                    \
        binter.pos++;                                                     \
        bcix++;                                                           \
        if (bok) {                                                        \
            if (flt) {                                                    \
                bcf = bf[bcix];                                           \
            } else {                                                      \
                bci = (int64_t) ((uint64_t) bci + (uint64_t) bi64[bcix]); \
            }                                                             \
        }                                                                 \
    } while (0)

    for ( ;; ) {
        if (aok && bok) {
            if (aidx == bidx) {
                if (flt ? acf > bcf : aci > bci) {
                    return 0;
                }

                tr_adv_a();
                tr_adv_b();
                continue;
            }

            if (aidx < bidx) {
                if (flt ? acf == 0 : aci == 0) {
                    tr_add_insert(bwd, &binter, aidx);
                    tr_adv_a();
                    continue;
                }

                return 0;
            }

            tr_add_insert(fwd, &ainter, bidx);
            tr_adv_b();

        } else if (aok) {
            if (flt ? acf == 0 : aci == 0) {
                tr_add_insert(bwd, &binter, aidx);
                tr_adv_a();
                continue;
            }

            return 0;

        } else if (bok) {
            tr_add_insert(fwd, &ainter, bidx);
            tr_adv_b();

        } else {
            if (ainter.num > 0) {
                fwd->v[fwd->n++] = ainter;
            }

            if (binter.num > 0) {
                bwd->v[bwd->n++] = binter;
            }

            return 1;
        }
    }

#undef tr_adv_a
#undef tr_adv_b
}


static void
tr_add_bucket(ts_hspan_t *m, uint32_t *nm, int64_t *last, int64_t b)
{
    int64_t  offset;

    offset = b - *last - 1;

    if (*nm > 0 && b <= *last) {
        tr_bug = 1;
    }

    if (offset == 0 && *nm > 0) {
        m[*nm - 1].length++;

    } else {
        if (*nm == 0) {
            offset++;
        }

        m[*nm].offset = (int32_t) offset;
        m[*nm].length = 1;
        (*nm)++;
    }

    *last = b;
}


/* Go's expandSpansBothWays */

static void
tr_both(const ts_hspan_t *a, uint32_t na, const ts_hspan_t *b, uint32_t nb,
    tr_inss_t *fwd, tr_inss_t *bwd, ts_hspan_t *m, uint32_t *nm)
{
    int       aok, bok;
    int64_t   av, bv, last;
    tr_bit_t  ai, bi;
    tr_ins_t  fi, bi2;

    fwd->n = 0;
    bwd->n = 0;
    *nm = 0;
    last = 0;
    memset(&fi, 0, sizeof(fi));
    memset(&bi2, 0, sizeof(bi2));

    tr_bit_init(&ai, a, na);
    tr_bit_init(&bi, b, nb);
    av = bv = 0;
    aok = tr_bit_next(&ai, &av);
    bok = tr_bit_next(&bi, &bv);

    for ( ;; ) {
        if (aok && bok) {
            if (av == bv) {
                if (fi.num > 0) {
                    fwd->v[fwd->n++] = fi;
                    fi.num = 0;
                }

                if (bi2.num > 0) {
                    bwd->v[bwd->n++] = bi2;
                    bi2.num = 0;
                }

                tr_add_bucket(m, nm, &last, av);
                aok = tr_bit_next(&ai, &av);
                bok = tr_bit_next(&bi, &bv);
                fi.pos++;
                bi2.pos++;

            } else if (av < bv) {
                bi2.num++;

                if (fi.num > 0) {
                    fwd->v[fwd->n++] = fi;
                    fi.num = 0;
                }

                tr_add_bucket(m, nm, &last, av);
                fi.pos++;
                aok = tr_bit_next(&ai, &av);

            } else {
                fi.num++;

                if (bi2.num > 0) {
                    bwd->v[bwd->n++] = bi2;
                    bi2.num = 0;
                }

                tr_add_bucket(m, nm, &last, bv);
                bi2.pos++;
                bok = tr_bit_next(&bi, &bv);
            }

        } else if (aok) {
            bi2.num++;
            tr_add_bucket(m, nm, &last, av);
            aok = tr_bit_next(&ai, &av);

        } else if (bok) {
            fi.num++;
            tr_add_bucket(m, nm, &last, bv);
            bok = tr_bit_next(&bi, &bv);

        } else {
            if (fi.num > 0) {
                fwd->v[fwd->n++] = fi;
            }

            if (bi2.num > 0) {
                bwd->v[bwd->n++] = bi2;
            }

            return;
        }
    }
}


/* Go's adjustForInserts, its tail loop included */

static void
tr_adjust(ts_hspan_t *spans, uint32_t *ns, const tr_inss_t *ins)
{
    int         i, ok, num;
    int64_t     last, b, iidx;
    uint32_t    nm;
    tr_bit_t    it;
    ts_hspan_t  m[TH_MAXS * 2];

    if (ins->n == 0) {
        return;
    }

    tr_bit_init(&it, spans, *ns);
    last = 0;
    nm = 0;
    i = 0;
    iidx = ins->v[0].idx;
    num = ins->v[0].num;
    b = 0;

#define tr_consume()                                                      \
    do {                                                                  \
        num--;                                                            \
        if (num == 0) {                                                   \
            i++;                                                          \
            if (i < ins->n) {                                             \
                iidx = ins->v[i].idx;                                     \
                num = ins->v[i].num;                                      \
            }                                                             \
        } else {                                                          \
            iidx++;                                                       \
        }                                                                 \
    } while (0)

    ok = tr_bit_next(&it, &b);

    while (ok) {
        if (i < ins->n && iidx < b) {
            tr_add_bucket(m, &nm, &last, iidx);
            tr_consume();

        } else {
            tr_add_bucket(m, &nm, &last, b);
            ok = tr_bit_next(&it, &b);
        }
    }

    while (i < ins->n) {
        tr_add_bucket(m, &nm, &last, ins->v[i].idx);
        tr_consume();
    }

#undef tr_consume

    assert_true(nm <= TH_MAXS);
    memcpy(spans, m, nm * sizeof(ts_hspan_t));
    *ns = nm;
}


/* Go's insert(): deltas for integer buckets, zeros for float ones */

static void
tr_insert_int(int64_t *vals, uint32_t n, uint32_t nout, const tr_inss_t *ins)
{
    int       ii, x;
    int64_t   v, d, out[TH_MAXB];
    uint32_t  i, oi;

    v = 0;
    oi = 0;
    ii = 0;

    for (i = 0; i < n; i++) {
        d = vals[i];

        if (ii < ins->n && (int) i == ins->v[ii].pos) {
            out[oi++] = th_sub(0, v);

            for (x = 1; x < ins->v[ii].num; x++) {
                out[oi++] = 0;
            }

            ii++;
            out[oi++] = th_add(d, v);
            v = th_add(d, v);
            continue;
        }

        out[oi++] = d;
        v = th_add(v, d);
    }

    if (ii == ins->n - 1) {
        out[oi++] = th_sub(0, v);

        for (x = 1; x < ins->v[ii].num; x++) {
            out[oi++] = 0;
        }
    }

    assert_int_equal(oi, nout);
    memcpy(vals, out, nout * sizeof(int64_t));
}


static void
tr_insert_float(double *vals, uint32_t n, uint32_t nout,
    const tr_inss_t *ins)
{
    int       ii, x;
    double    out[TH_MAXB];
    uint32_t  i, oi;

    oi = 0;
    ii = 0;

    for (i = 0; i < n; i++) {
        if (ii < ins->n && (int) i == ins->v[ii].pos) {
            out[oi++] = 0;

            for (x = 1; x < ins->v[ii].num; x++) {
                out[oi++] = 0;
            }

            ii++;
        }

        out[oi++] = vals[i];
    }

    if (ii == ins->n - 1) {
        out[oi++] = 0;

        for (x = 1; x < ins->v[ii].num; x++) {
            out[oi++] = 0;
        }
    }

    assert_int_equal(oi, nout);
    memcpy(vals, out, nout * sizeof(double));
}


/* h's buckets widened to its (already widened) spans */

static void
tr_insert_h(th_h_t *h, const tr_inss_t *pins, const tr_inss_t *nins)
{
    uint32_t  np, nn;

    np = tr_count_spans(h->ps, h->nps);
    nn = tr_count_spans(h->ns, h->nns);

    if (pins->n > 0) {
        if (h->flt) {
            tr_insert_float(h->pc, h->np, np, pins);

        } else {
            tr_insert_int(h->pd, h->np, np, pins);
        }

        h->np = np;
    }

    if (nins->n > 0) {
        if (h->flt) {
            tr_insert_float(h->nc, h->nn, nn, nins);

        } else {
            tr_insert_int(h->nd, h->nn, nn, nins);
        }

        h->nn = nn;
    }
}


static int
tr_custom_match(const tr_app_t *a, const th_h_t *h)
{
    uint32_t  i;

    if (h->ncv != a->ncv) {
        return 0;
    }

    for (i = 0; i < h->ncv; i++) {
        if (h->cv[i] != a->cv[i]) {
            return 0;
        }
    }

    return 1;
}


/*
 * Go's appendable() for both encodings: *hint is the integer
 * appender's counterResetHint; the float one's counterReset is
 * *hint == CounterReset.  Returns okToAppend.
 */

static int
tr_appendable(const tr_app_t *a, const th_h_t *h, tr_inss_t *pf,
    tr_inss_t *nf, tr_inss_t *pb, tr_inss_t *nb, unsigned *hint)
{
    pf->n = nf->n = pb->n = nb->n = 0;
    *hint = TS_HIST_HDR_NOT_RESET;

    if (tr_num(a) > 0 && tr_header(a) == TS_HIST_HDR_GAUGE) {
        return 0;
    }

    if (h->hint == TS_HIST_HINT_RESET) {
        *hint = TS_HIST_HDR_RESET;
        return 0;
    }

    if (tr_stale(h)) {
        return 1;
    }

    if ((a->flt ? a->fsum.value : a->sum) == TH_STALE) {
        *hint = TS_HIST_HDR_UNKNOWN;
        return 0;
    }

    if (a->flt ? h->fcnt < th_double(a->fcnt.value) : h->cnt < a->cnt) {
        *hint = TS_HIST_HDR_RESET;
        return 0;
    }

    if (h->schema != a->schema || h->zt != a->zt) {
        *hint = TS_HIST_HDR_UNKNOWN;
        return 0;
    }

    if (h->schema == -53 && !tr_custom_match(a, h)) {
        *hint = TS_HIST_HDR_RESET;
        return 0;
    }

    if (a->flt ? h->fzcnt < th_double(a->fzcnt.value) : h->zcnt < a->zcnt) {
        *hint = TS_HIST_HDR_RESET;
        return 0;
    }

    if (!tr_expand(a->ps, a->nps, h->ps, h->nps, a->pb, a->fpb, h->pd, h->pc,
                   a->flt, pf, pb)
        || !tr_expand(a->ns, a->nns, h->ns, h->nns, a->nb, a->fnb, h->nd,
                      h->nc, a->flt, nf, nb))
    {
        *hint = TS_HIST_HDR_RESET;
        return 0;
    }

    return 1;
}


static int
tr_appendable_gauge(const tr_app_t *a, const th_h_t *h, tr_inss_t *pf,
    tr_inss_t *nf, tr_inss_t *pb, tr_inss_t *nb, ts_hspan_t *pm,
    uint32_t *npm, ts_hspan_t *nm, uint32_t *nnm)
{
    pf->n = nf->n = pb->n = nb->n = 0;

    if (tr_num(a) > 0 && tr_header(a) != TS_HIST_HDR_GAUGE) {
        return 0;
    }

    if (tr_stale(h)) {
        return 1;
    }

    if ((a->flt ? a->fsum.value : a->sum) == TH_STALE
        || h->schema != a->schema || h->zt != a->zt
        || (h->schema == -53 && !tr_custom_match(a, h)))
    {
        return 0;
    }

    tr_both(a->ps, a->nps, h->ps, h->nps, pf, pb, pm, npm);
    tr_both(a->ns, a->nns, h->ns, h->nns, nf, nb, nm, nnm);

    return 1;
}


/* Go's recode(): every recorded sample again, widened */

static tr_app_t *
tr_recode(const tr_app_t *a, const tr_inss_t *pf, const tr_inss_t *nf,
    const th_h_t *lay)
{
    uint32_t   i;
    th_h_t     old;
    tr_app_t  *n;

    n = tr_new(a->flt);

    for (i = 0; i < a->nrec; i++) {
        old = a->rec[i];

        if (!tr_stale(&old)) {
            old.nps = lay->nps;
            old.nns = lay->nns;
            memcpy(old.ps, lay->ps, sizeof(old.ps));
            memcpy(old.ns, lay->ns, sizeof(old.ns));
            tr_insert_h(&old, pf, nf);
        }

        tr_append(n, old.t, &old);
    }

    tr_set_header(n, tr_header(a));

    return n;
}


/*
 * Go's AppendHistogram / AppendFloatHistogram: returns a new chunk's
 * appender (*recoded: it replaces a) or NULL when h went into a.
 */

static tr_app_t *
tr_append_full(tr_app_t *prev, tr_app_t *a, const th_h_t *in, int *recoded)
{
    int         ok;
    unsigned    hint;
    uint32_t    npm, nnm;
    th_h_t      h;
    tr_app_t   *n;
    tr_inss_t   pf, nf, pb, nb;
    ts_hspan_t  pm[TH_MAXS * 2], nm[TH_MAXS * 2];

    h = *in;
    *recoded = 0;

    if (tr_num(a) == 0) {
        tr_append(a, h.t, &h);

        if (h.hint == TS_HIST_HINT_GAUGE) {
            tr_set_header(a, TS_HIST_HDR_GAUGE);

        } else if (h.hint == TS_HIST_HINT_RESET) {
            tr_set_header(a, TS_HIST_HDR_RESET);

        } else if (prev != NULL) {
            tr_appendable(prev, &h, &pf, &nf, &pb, &nb, &hint);

            if (a->flt && hint != TS_HIST_HDR_RESET) {
                hint = TS_HIST_HDR_NOT_RESET;
            }

            tr_set_header(a, hint);
        }

        return NULL;
    }

    if (h.hint != TS_HIST_HINT_GAUGE) {
        ok = tr_appendable(a, &h, &pf, &nf, &pb, &nb, &hint);

        if (!ok || hint != TS_HIST_HDR_NOT_RESET) {
            n = tr_new(a->flt);

            if (!a->flt || hint == TS_HIST_HDR_RESET) {
                tr_set_header(n, a->flt ? TS_HIST_HDR_RESET : hint);
            }

            tr_append(n, h.t, &h);
            return n;
        }

        if (pb.n > 0 || nb.n > 0) {
            if (pf.n == 0 && nf.n == 0) {
                h.nps = a->nps;
                h.nns = a->nns;
                memcpy(h.ps, a->ps, sizeof(h.ps));
                memcpy(h.ns, a->ns, sizeof(h.ns));

            } else {
                tr_adjust(h.ps, &h.nps, &pb);
                tr_adjust(h.ns, &h.nns, &nb);
            }

            tr_insert_h(&h, &pb, &nb);
        }

    } else {
        ok = tr_appendable_gauge(a, &h, &pf, &nf, &pb, &nb, pm, &npm, nm,
                                 &nnm);

        if (!ok) {
            n = tr_new(a->flt);
            tr_set_header(n, TS_HIST_HDR_GAUGE);
            tr_append(n, h.t, &h);
            return n;
        }

        if (pb.n > 0 || nb.n > 0) {
            assert_true(npm <= TH_MAXS && nnm <= TH_MAXS);
            h.nps = npm;
            h.nns = nnm;
            memcpy(h.ps, pm, npm * sizeof(ts_hspan_t));
            memcpy(h.ns, nm, nnm * sizeof(ts_hspan_t));
            tr_insert_h(&h, &pb, &nb);
        }
    }

    if (pf.n > 0 || nf.n > 0) {
        n = tr_recode(a, &pf, &nf, &h);
        tr_append(n, h.t, &h);
        *recoded = 1;
        return n;
    }

    tr_append(a, h.t, &h);

    return NULL;
}


/* Prometheus 3's head around it: cut at max samples, encoding changes */

typedef struct {
    tr_app_t   *a;
    uint32_t    nchunks;
    uint8_t    *chunks[TH_MAXN];
    size_t      lens[TH_MAXN];
    tr_app_t   *apps[TH_MAXN];
    uint32_t    max;
} tr_head_t;


static void
tr_head_close(tr_head_t *hd)
{
    if (hd->a == NULL) {
        return;
    }

    assert_true(hd->nchunks < TH_MAXN);
    hd->chunks[hd->nchunks] = malloc(hd->a->b.len);
    assert_non_null(hd->chunks[hd->nchunks]);
    memcpy(hd->chunks[hd->nchunks], hd->a->b.b, hd->a->b.len);
    hd->lens[hd->nchunks] = hd->a->b.len;
    hd->apps[hd->nchunks++] = hd->a;
    hd->a = NULL;
}


static void
tr_head_append(tr_head_t *hd, const th_h_t *h)
{
    int        recoded;
    tr_app_t  *prev, *n;

    if (hd->a == NULL || hd->a->flt != h->flt) {
        tr_head_close(hd);
        hd->a = tr_new(h->flt);
        tr_append_full(NULL, hd->a, h, &recoded);
        return;
    }

    if (hd->max && tr_num(hd->a) >= hd->max) {
        prev = hd->a;
        tr_head_close(hd);
        hd->a = tr_new(h->flt);
        tr_append_full(prev, hd->a, h, &recoded);
        return;
    }

    n = tr_append_full(NULL, hd->a, h, &recoded);

    if (n == NULL) {
        return;
    }

    if (recoded) {
        free(hd->a);

    } else {
        tr_head_close(hd);
    }

    hd->a = n;
}


static void
tr_head_free(tr_head_t *hd)
{
    uint32_t  i;

    free(hd->a);

    for (i = 0; i < hd->nchunks; i++) {
        free(hd->chunks[i]);
        free(hd->apps[i]);
    }
}



/* random sequences */

#define TH_R          12          /* bucket indices -TH_R .. TH_R */
#define TH_W          (2 * TH_R + 1)

typedef struct {
    int           flt;
    int           gauge;
    int           custom;
    int32_t       schema;
    double        zt;
    int64_t       t;
    int64_t       dt;
    int           have[2][TH_W];
    int64_t       cnt[2][TH_W];
    double        fx[2][TH_W];     /* float: added to half the count */
    int64_t       zc;
    double        sum;
    int           stale;
    uint32_t      ncv;
    double        cv[TH_MAXC];
} th_gen_t;


static const double  th_zts[] = {
    0, 0x1p-128, 0x1p-10, 0.001, 1.5, 0x1p-242, 0x1p10, 0x1p11
};

static const double  th_cvs[] = {
    0.001, 0.25, 1, 2.5, 33554.43, 33554.431, 0.0005, -1, 1e9
};


static int64_t
th_big(void)
{
    switch (th_rand() % 8) {
    case 0:
        return (int64_t) (th_rand() >> 20);
    case 1:
        return (int64_t) (th_rand() % 300000);
    default:
        return (int64_t) (th_rand() % 5);
    }
}


static void
th_gen_init(th_gen_t *g)
{
    int  side, k;

    memset(g, 0, sizeof(th_gen_t));

    g->flt = th_rand() % 2;
    g->gauge = th_rand() % 4 == 0;
    g->custom = th_rand() % 6 == 0;
    g->schema = g->custom ? -53 : (int32_t) (th_rand() % 13) - 4;
    g->zt = g->custom ? 0 : th_zts[th_rand() % 8];
    g->t = TH_T0 + (int64_t) (th_rand() % 1000000) - 500000;
    g->dt = 15000;
    g->ncv = 1 + th_rand() % 5;

    for (k = 0; k < (int) g->ncv; k++) {
        g->cv[k] = th_cvs[th_rand() % 9] + k;
    }

    for (side = 0; side < 2; side++) {
        for (k = 0; k < TH_W; k++) {
            if (g->custom && (side || k < TH_R || k > TH_R + (int) g->ncv))
            {
                continue;
            }

            g->have[side][k] = th_rand() % 3 == 0;
            g->cnt[side][k] = th_big();
        }
    }
}


/* spans and values of one side; sometimes not the canonical spans */

static void
th_gen_side(const th_gen_t *g, int side, th_h_t *s)
{
    int          k, weird;
    int64_t      prev, start[TH_W], end, gap, z;
    uint32_t     nr, ns, nb, r, len[TH_W], cut;
    ts_hspan_t  *sp;

    sp = side ? s->ns : s->ps;
    nr = 0;
    nb = 0;
    prev = 0;

    /* the runs of present buckets, then their values */
    for (k = 0; k < TH_W; k++) {
        if (!g->have[side][k]) {
            continue;
        }

        if (nr > 0 && start[nr - 1] + len[nr - 1] == k - TH_R) {
            len[nr - 1]++;

        } else {
            start[nr] = k - TH_R;
            len[nr++] = 1;
        }

        if (g->flt) {
            (side ? s->nc : s->pc)[nb] = 0.5 * (double) g->cnt[side][k]
                                         + g->fx[side][k];
        } else {
            (side ? s->nd : s->pd)[nb] = th_sub(g->cnt[side][k], prev);
            prev = g->cnt[side][k];
        }

        s->cnt += (uint64_t) g->cnt[side][k];
        s->fcnt += 0.5 * (double) g->cnt[side][k] + g->fx[side][k];
        nb++;
    }

    /* spans: canonical, or with empty spans and split runs */
    weird = th_rand() % 6 == 0;
    ns = 0;
    end = 0;

    for (r = 0; r < nr; r++) {
        gap = r == 0 ? start[0] : start[r] - end;

        if (weird && th_rand() % 3 == 0) {
            z = r == 0 ? gap - (int64_t) (th_rand() % 3)
                       : (int64_t) (th_rand() % (uint64_t) (gap + 1));
            sp[ns].offset = (int32_t) z;
            sp[ns++].length = 0;
            gap -= z;
        }

        cut = len[r];

        if (weird && len[r] > 1 && th_rand() % 2) {
            cut = 1 + th_rand() % (len[r] - 1);
        }

        sp[ns].offset = (int32_t) gap;
        sp[ns++].length = cut;

        if (cut < len[r]) {
            sp[ns].offset = 0;
            sp[ns++].length = len[r] - cut;
        }

        end = start[r] + len[r];
    }

    if (weird && ns > 0 && th_rand() % 3 == 0) {
        sp[ns].offset = (int32_t) (th_rand() % 4);
        sp[ns++].length = 0;
    }

    if (side) {
        s->nns = ns;
        s->nn = nb;

    } else {
        s->nps = ns;
        s->np = nb;
    }
}


static void
th_gen_events(th_gen_t *g, th_h_t *s)
{
    int  r, side, k;

    r = (int) (th_rand() % 100);
    side = th_rand() % 2 && !g->custom;
    k = g->custom ? TH_R + (int) (th_rand() % (g->ncv + 1))
                  : (int) (th_rand() % TH_W);

    if (r < 2 && !g->custom) {
        g->schema = (int32_t) (th_rand() % 13) - 4;
    } else if (r < 4 && !g->custom) {
        g->zt = th_zts[th_rand() % 8];
    } else if (r < 8) {
        for (side = 0; side < 2; side++) {
            for (k = 0; k < TH_W; k++) {
                g->cnt[side][k] /= 3;
            }
        }
        g->zc /= 2;
    } else if (r < 16) {
        g->have[side][k] = 1;
    } else if (r < 24) {
        if (g->cnt[side][k] == 0 || th_rand() % 4 == 0 || g->gauge) {
            g->have[side][k] = 0;
        }
    } else if (r < 26) {
        s->hint = TS_HIST_HINT_RESET;
    } else if (r < 28) {
        g->gauge = !g->gauge;
    } else if (r < 29) {
        g->flt = !g->flt;
    } else if (r < 31 && g->custom) {
        g->cv[th_rand() % g->ncv] += 1;
    } else if (r < 33) {
        g->cnt[side][k] = 0;
    }
}


static void
th_gen_next(th_gen_t *g, th_h_t *s)
{
    int  side, k;

    memset(s, 0, sizeof(th_h_t));

    switch (th_rand() % 12) {
    case 0:
    case 1:
        g->dt += (int64_t) (th_rand() % 41) - 20;
        break;
    case 2:
        g->dt += (int64_t) (th_rand() % 300000) - 150000;
        break;
    case 3:
        g->dt = 1 + (int64_t) (th_rand() >> (24 + th_rand() % 30));
        break;
    default:
        break;
    }

    if (g->dt < 1) {
        g->dt = 1 + (int64_t) (th_rand() % 100);
    }

    g->t += g->dt;
    th_gen_events(g, s);

    for (side = 0; side < 2; side++) {
        for (k = 0; k < TH_W; k++) {
            if (g->gauge) {
                g->cnt[side][k] += (int64_t) (th_rand() % 7) - 3;
                g->cnt[side][k] = g->cnt[side][k] < 0 ? 0 : g->cnt[side][k];
            } else if (th_rand() % 3) {
                g->cnt[side][k] += th_big() >> 8;
            }

            if (th_rand() % 50 == 0) {
                g->fx[side][k] = th_rand() % 2 ? NAN : 0.125;
            }
        }
    }

    g->zc += (int64_t) (th_rand() % 3);
    g->sum += (double) (int64_t) (th_rand() % 2001 - 1000) / 8;

    s->t = g->t;
    s->flt = g->flt;
    s->schema = g->schema;
    s->zt = g->zt;
    s->hint = g->gauge ? TS_HIST_HINT_GAUGE : s->hint;

    switch (th_rand() % 40) {
    case 0:
        s->sum = th_bits(NAN);
        break;
    case 1:
        s->sum = th_bits(-0.0);
        break;
    case 2:
        s->sum = th_bits(INFINITY);
        break;
    default:
        s->sum = th_bits(g->sum);
    }

    g->stale = g->stale ? th_rand() % 2 : th_rand() % 16 == 0;

    if (g->stale) {
        s->sum = TH_STALE;
        return;
    }

    if (g->custom) {
        s->ncv = g->ncv;
        memcpy(s->cv, g->cv, sizeof(s->cv));
    }

    th_gen_side(g, 0, s);
    th_gen_side(g, 1, s);

    s->cnt += (uint64_t) g->zc;
    s->zcnt = (uint64_t) g->zc;
    s->fzcnt = 0.5 * (double) g->zc;
    s->fcnt += s->fzcnt + (th_rand() % 8 == 0 ? 0.5 : 0);
}


static void
th_compare(const char *name, tr_head_t *ref, th_drv_t *d)
{
    int       rc;
    uint32_t  i, j, m;
    th_h_t   *out;

    out = malloc(TH_MAXN * sizeof(th_h_t));
    assert_non_null(out);

    th_check(name, ref->nchunks == d->nchunks);

    for (i = 0; i < d->nchunks; i++) {
        if (ref->lens[i] != d->lens[i]
            || memcmp(ref->chunks[i], d->chunks[i], d->lens[i]) != 0)
        {
            fail_msg("%s: chunk %u of %u differs (%zu / %zu bytes)", name, i,
                     d->nchunks, ref->lens[i], d->lens[i]);
        }

        m = th_decode(d->chunks[i], d->lens[i],
                      ref->apps[i]->flt ? TS_FHIST_ENCODING
                                        : TS_HIST_ENCODING,
                      out, TH_MAXN, &rc);

        th_check(name, rc == 0 && m == ref->apps[i]->nrec);

        for (j = 0; j < m; j++) {
            if (!th_same(&out[j], &ref->apps[i]->rec[j])) {
                fail_msg("%s: chunk %u sample %u decodes differently",
                         name, i, j);
            }
        }
    }

    free(out);
}


/*
 * Random sequences through both heads: every event the appender decides
 * on (resets, schema and threshold changes, buckets that come and go,
 * non-canonical spans, stale runs, gauges, floats, custom buckets, cuts
 * for size) gives the same chunks, byte for byte.
 */

static void
test_random_vs_reference(void **state)
{
    char        name[64];
    uint32_t    seq, i, n, skipped, chunks, recodes;
    th_h_t     *s;
    th_gen_t    g;
    th_drv_t    d;
    tr_head_t  *ref;

    (void) state;

    s = malloc(TH_MAXN * sizeof(th_h_t));
    ref = calloc(1, sizeof(tr_head_t));
    assert_non_null(s);
    assert_non_null(ref);

    skipped = 0;
    chunks = 0;
    recodes = 0;

    for (seq = 0; seq < 600; seq++) {
        th_rng_state = 0x9e3779b97f4a7c15ULL * (seq + 1);
        snprintf(name, sizeof(name), "sequence %u", seq);

        th_gen_init(&g);
        n = 10 + th_rand() % (TH_MAXN - 20);

        for (i = 0; i < n; i++) {
            th_gen_next(&g, &s[i]);
        }

        memset(ref, 0, sizeof(tr_head_t));
        ref->max = th_rand() % 3 ? 5 + th_rand() % 60 : 0;
        th_drv_init(&d, ref->max);
        tr_bug = 0;

        for (i = 0; i < n; i++) {
            tr_head_append(ref, &s[i]);
            th_drv_append(&d, &s[i]);
        }

        tr_head_close(ref);
        th_drv_close(&d);

        if (tr_bug) {
            /* Go's adjustForInserts() bug: see docs/format/chunk.md */
            skipped++;

        } else {
            th_compare(name, ref, &d);
        }

        chunks += d.nchunks;
        recodes += d.recodes;

        tr_head_free(ref);
        th_drv_free(&d);
    }

    /* the generator reaches what it is meant to */
    assert_true(skipped < 30);
    assert_true(chunks > 2000);
    assert_true(recodes > 200);

    free(ref);
    free(s);
}



/* hand-worked chunks, field by field in docs/format/chunk.md */

static void
test_worked_examples(void **state)
{
    size_t           n, len;
    uint8_t          want[64];
    th_h_t           s[2];
    th_drv_t         d;
    tr_head_t       *ref;
    static const int32_t  sp0[] = { 0, 2 }, sp1[] = { 1, 1 };
    static const int64_t  a0[] = { 1, 1 }, a1[] = { 2, 2 }, f[] = { 4 };

    (void) state;

    ref = calloc(1, sizeof(tr_head_t));
    assert_non_null(ref);

    /* integer: two buckets; the sum's first XOR opens a window */
    th_mk(&s[0], 0, 0, 0, 0.0, 0, sp0, 1, a0, 2, NULL, 0, NULL, 0, 1.5, 0,
          0);
    th_mk(&s[1], 0, 0, 0, 0.0, 0, sp0, 1, a1, 2, NULL, 0, NULL, 0, 3.0, 0,
          0);
    s[0].t = 1000;
    s[1].t = 2000;

    th_drv_init(&d, 0);
    th_drv_append(&d, &s[0]);
    th_drv_append(&d, &s[1]);
    th_drv_close(&d);

    n = th_unhex("0002000046478fa243ff80000000000008bc7d12612fffc4", want);
    len = d.lens[0];
    th_check("integer", d.nchunks == 1 && len == n);
    th_check("integer", memcmp(d.chunks[0], want, n) == 0);
    th_drv_free(&d);

    /* float: one bucket, then a sample that repeats every value */
    th_mk(&s[0], 0, 1, 0, 0x1p-128, 0, sp1, 1, f, 1, NULL, 0, NULL, 0, 0.5,
          0, 0);
    s[0].t = 1000;
    s[0].fcnt = 2.0;
    s[1] = s[0];
    s[1].t = 16000;

    th_drv_init(&d, 0);
    th_drv_append(&d, &s[0]);
    th_drv_append(&d, &s[1]);
    th_drv_close(&d);

    n = th_unhex("00020074463178fa10000000000000000000000000000000"
                 "0ff800000000000010000000000000003e0ea600", want);
    th_check("float", d.nchunks == 1 && d.lens[0] == n);
    th_check("float", memcmp(d.chunks[0], want, n) == 0);

    tr_head_append(ref, &s[0]);
    tr_head_append(ref, &s[1]);
    tr_head_close(ref);
    th_compare("float", ref, &d);

    tr_head_free(ref);
    th_drv_free(&d);
    free(ref);
}


/* the bits of buf from bit "from" as '0'/'1' */

static void
th_bitstr(const uint8_t *buf, size_t from, size_t n, char *out)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        out[i] = (buf[(from + i) >> 3] >> (7 - ((from + i) & 7)) & 1)
                 ? '1' : '0';
    }

    out[n] = '\0';
}


static void
th_squeeze(const char *in, char *out)
{
    for ( /* void */ ; *in; in++) {
        if (*in == '0' || *in == '1') {
            *out++ = *in;
        }
    }

    *out = '\0';
}


/*
 * One case per varbit bucket edge.  An empty stale first sample puts
 * its t (signed) at bit 35 and its count (unsigned) right after.
 */

typedef struct {
    const char   *name;
    int           uns;
    uint64_t      v;
    const char   *bits;
} th_vb_t;


static const th_vb_t  th_vbs[] = {
    { "0", 0, 0, "0" },
    { "1", 0, 1, "10 001" },
    { "-1", 0, (uint64_t) -1, "10 111" },
    { "4, 3-bit max", 0, 4, "10 100" },
    { "-3, 3-bit min", 0, (uint64_t) -3, "10 101" },
    { "5", 0, 5, "110 000101" },
    { "-4", 0, (uint64_t) -4, "110 111100" },
    { "32, 6-bit max", 0, 32, "110 100000" },
    { "-31", 0, (uint64_t) -31, "110 100001" },
    { "33", 0, 33, "1110 000100001" },
    { "256, 9-bit max", 0, 256, "1110 100000000" },
    { "257", 0, 257, "11110 000100000001" },
    { "2048, 12-bit max", 0, 2048, "11110 100000000000" },
    { "-2047", 0, (uint64_t) -2047, "11110 100000000001" },
    { "2049", 0, 2049, "111110 000000100000000001" },
    { "131072, 18-bit max", 0, 131072, "111110 100000000000000000" },
    { "131073", 0, 131073, "1111110 0000000100000000000000001" },
    { "16777216, 25-bit max", 0, 16777216,
      "1111110 1000000000000000000000000" },
    { "16777217", 0, 16777217,
      "11111110 00000000000000000000000000000001000000000000000000000001" },
    { "2^55, 56-bit max", 0, 1ULL << 55,
      "11111110 10000000000000000000000000000000000000000000000000000000" },
    { "-(2^55 - 1)", 0, (uint64_t) -((1LL << 55) - 1),
      "11111110 10000000000000000000000000000000000000000000000000000001" },
    { "2^55 + 1, 64-bit", 0, (1ULL << 55) + 1,
      "11111111 0000000010000000000000000000000000000000000000000000000000"
      "000001" },
    { "INT64_MIN", 0, 1ULL << 63,
      "11111111 1000000000000000000000000000000000000000000000000000000000"
      "000000" },
    { "u 0", 1, 0, "0" },
    { "u 7, 3-bit max", 1, 7, "10 111" },
    { "u 8", 1, 8, "110 001000" },
    { "u 63", 1, 63, "110 111111" },
    { "u 511", 1, 511, "1110 111111111" },
    { "u 4095", 1, 4095, "11110 111111111111" },
    { "u 262143", 1, 262143, "111110 111111111111111111" },
    { "u 33554431", 1, 33554431, "1111110 1111111111111111111111111" },
    { "u 2^56 - 1", 1, (1ULL << 56) - 1,
      "11111110 11111111111111111111111111111111111111111111111111111111" },
    { "u 2^56", 1, 1ULL << 56,
      "11111111 0000000100000000000000000000000000000000000000000000000000"
      "000000" },
    { "u max", 1, UINT64_MAX,
      "11111111 1111111111111111111111111111111111111111111111111111111111"
      "111111" },
};


static void
test_varbit_edges(void **state)
{
    char             want[128], got[128];
    size_t           i, n;
    th_h_t           s, out;
    th_drv_t         d;
    tr_head_t       *ref;
    int              rc;
    const th_vb_t   *c;

    (void) state;

    ref = calloc(1, sizeof(tr_head_t));
    assert_non_null(ref);

    for (i = 0; i < sizeof(th_vbs) / sizeof(th_vbs[0]); i++) {
        c = &th_vbs[i];

        /* an integer histogram without buckets, count in the t slot */
        memset(&s, 0, sizeof(s));
        s.t = c->uns ? 0 : (int64_t) c->v;
        s.cnt = c->uns ? c->v : 0;
        s.sum = th_bits(1.0);

        th_drv_init(&d, 0);
        th_drv_append(&d, &s);
        th_drv_close(&d);

        th_squeeze(c->bits, want);
        n = strlen(want);
        th_bitstr(d.chunks[0], c->uns ? 36 : 35, n, got);
        th_check(c->name, strcmp(got, want) == 0);

        th_check(c->name, th_decode(d.chunks[0], d.lens[0], TS_HIST_ENCODING,
                                    &out, 1, &rc) == 1 && rc == 0);
        th_check(c->name, th_same(&out, &s));

        memset(ref, 0, sizeof(tr_head_t));
        tr_head_append(ref, &s);
        tr_head_close(ref);
        th_compare(c->name, ref, &d);
        tr_head_free(ref);
        th_drv_free(&d);
    }

    free(ref);
}


/* zero thresholds and custom bounds: their bytes and what comes back */

typedef struct {
    const char   *name;
    double        v;
    const char   *bits;
    double        back;
} th_fl_t;


static const th_fl_t  th_zts_edges[] = {
    { "0", 0.0, "00000000", 0.0 },
    { "-0.0 is 0", -0.0, "00000000", 0.0 },
    { "2^-128, the default", 0x1p-128, "01110100", 0x1p-128 },
    { "2^-243, smallest byte", 0x1p-243, "00000001", 0x1p-243 },
    { "2^10, largest byte", 0x1p10, "11111110", 0x1p10 },
    { "2^11 raw", 0x1p11, "11111111 0100000010100000", 0x1p11 },
    { "2^-244 raw", 0x1p-244, "11111111 0011000010110000", 0x1p-244 },
    { "0.001 raw", 0.001, "11111111 0011111101010000", 0.001 },
    { "-0.5 raw", -0.5, "11111111 1011111111100000", -0.5 },
};


static const th_fl_t  th_cb_edges[] = {
    { "0", 0.0, "10 001", 0.0 },
    { "-0.0 as 0", -0.0, "10 001", 0.0 },
    { "0.001", 0.001, "10 010", 0.001 },
    { "0.25", 0.25, "1110 011111011", 0.25 },
    { "33554.43, 25-bit max", 33554.43,
      "1111110 1111111111111111111111111", 33554.43 },
    { "33554.431 raw", 33554.431, "0 0100000011100000011000", 33554.431 },
    { "0.0005 raw", 0.0005, "0 0011111101000000011000", 0.0005 },
    { "-1 raw", -1.0, "0 1011111111110000", -1.0 },
    { "1e9 raw", 1e9, "0 0100000111001101110011", 1e9 },
};


static void
test_threshold_and_bounds(void **state)
{
    int              rc;
    char             want[128], got[128];
    size_t           i, n;
    th_h_t           s, out;
    th_drv_t         d;
    tr_head_t       *ref;
    const th_fl_t   *c;

    (void) state;

    ref = calloc(1, sizeof(tr_head_t));
    assert_non_null(ref);

    for (i = 0; i < sizeof(th_zts_edges) / sizeof(th_zts_edges[0]); i++) {
        c = &th_zts_edges[i];

        memset(&s, 0, sizeof(s));
        s.t = 1;
        s.zt = c->v;
        s.sum = th_bits(2.0);

        th_drv_init(&d, 0);
        th_drv_append(&d, &s);
        th_drv_close(&d);

        th_squeeze(c->bits, want);
        n = strlen(want);
        th_bitstr(d.chunks[0], 24, n, got);
        th_check(c->name, strcmp(got, want) == 0);

        th_decode(d.chunks[0], d.lens[0], TS_HIST_ENCODING, &out, 1, &rc);
        th_check(c->name, rc == 0 && th_bits(out.zt) == th_bits(c->back));

        memset(ref, 0, sizeof(tr_head_t));
        tr_head_append(ref, &s);
        tr_head_close(ref);
        th_check(c->name, ref->lens[0] == d.lens[0]
                          && memcmp(ref->chunks[0], d.chunks[0],
                                    d.lens[0]) == 0);
        tr_head_free(ref);
        th_drv_free(&d);
    }

    /* custom bounds follow zt 0, schema -53 and two empty span lists */
    for (i = 0; i < sizeof(th_cb_edges) / sizeof(th_cb_edges[0]); i++) {
        c = &th_cb_edges[i];

        memset(&s, 0, sizeof(s));
        s.t = 1;
        s.schema = -53;
        s.ncv = 1;
        s.cv[0] = c->v;
        s.sum = th_bits(2.0);

        th_drv_init(&d, 0);
        th_drv_append(&d, &s);
        th_drv_close(&d);

        /* 8 + 13 (schema) + 1 + 1 + 5 (count 1) bits before the bound */
        th_squeeze(c->bits, want);
        n = strlen(want);
        th_bitstr(d.chunks[0], 24 + 28, n, got);
        th_check(c->name, strcmp(got, want) == 0);

        th_decode(d.chunks[0], d.lens[0], TS_HIST_ENCODING, &out, 1, &rc);
        th_check(c->name, rc == 0 && out.ncv == 1
                          && th_bits(out.cv[0]) == th_bits(c->back));

        memset(ref, 0, sizeof(tr_head_t));
        tr_head_append(ref, &s);
        tr_head_close(ref);
        th_check(c->name, ref->lens[0] == d.lens[0]
                          && memcmp(ref->chunks[0], d.chunks[0],
                                    d.lens[0]) == 0);
        tr_head_free(ref);
        th_drv_free(&d);
    }

    free(ref);
}



/* a small integer histogram at t with buckets {0, 1} counting c, 2c */

static void
th_small(th_h_t *s, int64_t t, int64_t c, int flt, unsigned hint)
{
    static const int32_t  sp[] = { 0, 2 };
    int64_t               abs[2];

    abs[0] = c;
    abs[1] = 2 * c;
    th_mk(s, 0, flt, 0, 0x1p-128, c, sp, 1, abs, 2, NULL, 0, NULL, 0,
          (double) c, 0, hint);
    s->t = t;
}


static void
th_stale_at(th_h_t *s, int64_t t, int flt, unsigned hint)
{
    memset(s, 0, sizeof(th_h_t));
    s->t = t;
    s->flt = flt;
    s->sum = TH_STALE;
    s->hint = hint;
}


/* one named case per append decision, for both encodings */

typedef struct {
    const char   *name;
    unsigned      hint0;      /* of the chunk's samples */
    int           stale0;     /* the chunk ends in a stale marker */
    int           op;         /* what the next sample changes */
    unsigned      hint1;
    int           rc;
    unsigned      hdr_int;
    unsigned      hdr_float;
} th_rule_t;


enum { TH_SAME, TH_LESS, TH_STALE1, TH_SCHEMA, TH_ZT, TH_NEWB, TH_ZLESS,
       TH_FLIP };


static const th_rule_t  th_rules[] = {
    { "more of the same", 0, 0, TH_SAME, 0, TS_OK, 0, 0 },
    { "count shrinks", 0, 0, TH_LESS, 0, TS_HIST_CUT, TS_HIST_HDR_RESET,
      TS_HIST_HDR_RESET },
    { "explicit reset hint", 0, 0, TH_SAME, TS_HIST_HINT_RESET,
      TS_HIST_CUT, TS_HIST_HDR_RESET, TS_HIST_HDR_RESET },
    { "stale marker appends", 0, 0, TH_STALE1, 0, TS_OK, 0, 0 },
    { "stale after stale", 0, 1, TH_STALE1, 0, TS_OK, 0, 0 },
    { "sample after stale", 0, 1, TH_SAME, 0, TS_HIST_CUT,
      TS_HIST_HDR_UNKNOWN, TS_HIST_HDR_UNKNOWN },
    { "schema change", 0, 0, TH_SCHEMA, 0, TS_HIST_CUT,
      TS_HIST_HDR_UNKNOWN, TS_HIST_HDR_UNKNOWN },
    { "zero threshold change", 0, 0, TH_ZT, 0, TS_HIST_CUT,
      TS_HIST_HDR_UNKNOWN, TS_HIST_HDR_UNKNOWN },
    { "zero count shrinks", 0, 0, TH_ZLESS, 0, TS_HIST_CUT,
      TS_HIST_HDR_RESET, TS_HIST_HDR_RESET },
    { "new bucket recodes", 0, 0, TH_NEWB, 0, TS_HIST_RECODE, 0, 0 },
    { "gauge after counter", 0, 0, TH_SAME, TS_HIST_HINT_GAUGE,
      TS_HIST_CUT, TS_HIST_HDR_GAUGE, TS_HIST_HDR_GAUGE },
    { "counter after gauge", TS_HIST_HINT_GAUGE, 0, TH_SAME, 0,
      TS_HIST_CUT, TS_HIST_HDR_NOT_RESET, TS_HIST_HDR_UNKNOWN },
    { "stale counter marker after gauge", TS_HIST_HINT_GAUGE, 0,
      TH_STALE1, 0, TS_HIST_CUT, TS_HIST_HDR_NOT_RESET,
      TS_HIST_HDR_UNKNOWN },
    { "gauge count shrinks", TS_HIST_HINT_GAUGE, 0, TH_LESS,
      TS_HIST_HINT_GAUGE, TS_OK, 0, 0 },
    { "gauge after stale", TS_HIST_HINT_GAUGE, 1, TH_SAME,
      TS_HIST_HINT_GAUGE, TS_HIST_CUT, TS_HIST_HDR_GAUGE,
      TS_HIST_HDR_GAUGE },
    { "gauge schema change", TS_HIST_HINT_GAUGE, 0, TH_SCHEMA,
      TS_HIST_HINT_GAUGE, TS_HIST_CUT, TS_HIST_HDR_GAUGE,
      TS_HIST_HDR_GAUGE },
    { "other encoding", 0, 0, TH_FLIP, 0, TS_HIST_CUT, TS_HIST_HDR_UNKNOWN,
      TS_HIST_HDR_UNKNOWN },
};


static void
test_append_rules(void **state)
{
    int               rc, flt;
    size_t            i;
    unsigned          hdr;
    th_h_t            s[3];
    ts_hist_t         h;
    th_drv_t          d;
    const th_rule_t  *c;

    (void) state;

    for (flt = 0; flt < 2; flt++) {
        for (i = 0; i < sizeof(th_rules) / sizeof(th_rules[0]); i++) {
            c = &th_rules[i];

            th_small(&s[0], 1000, 5, flt, c->hint0);
            th_small(&s[1], 2000, 6, flt, c->hint0);

            if (c->stale0) {
                th_stale_at(&s[1], 2000, flt, c->hint0);
            }

            th_small(&s[2], 3000, 7, flt, c->hint1);

            switch (c->op) {
            case TH_LESS:
                th_small(&s[2], 3000, 4, flt, c->hint1);
                break;
            case TH_STALE1:
                th_stale_at(&s[2], 3000, flt, c->hint1);
                break;
            case TH_SCHEMA:
                s[2].schema = 1;
                break;
            case TH_ZT:
                s[2].zt = 0x1p-127;
                break;
            case TH_NEWB:
                s[2].ps[0].length = 3;
                s[2].np = 3;
                s[2].pd[2] = 1;
                s[2].pc[2] = 1;
                break;
            case TH_ZLESS:
                s[2].zcnt = 1;
                s[2].fzcnt = 0.5;
                break;
            case TH_FLIP:
                s[2].flt = !flt;
                break;
            }

            th_drv_init(&d, 0);
            th_drv_append(&d, &s[0]);
            th_drv_append(&d, &s[1]);

            th_view(&s[2], &h);
            hdr = 0xff;
            rc = ts_hist_append(d.a, d.buf, s[2].t, &h, &hdr);

            th_check(c->name, rc == c->rc);
            th_check(c->name, rc != TS_HIST_CUT
                              || hdr == (flt ? c->hdr_float : c->hdr_int));
            th_check(c->name, ts_hist_count(d.a) == 2 + (rc == TS_OK));
            th_drv_free(&d);
        }
    }
}


static void
test_invalid_input(void **state)
{
    size_t          len;
    unsigned        hdr;
    uint8_t         buf[64], big[TH_CAP];
    th_h_t          s, bad;
    ts_hist_t       h;
    ts_hist_app_t  *a;

    (void) state;

    a = aligned_alloc(8, 4096);
    assert_non_null(a);

    th_small(&s, 1000, 5, 0, 0);
    th_view(&s, &h);

    /* blocks, buffers */
    len = ts_hist_app_size(&h);
    th_check("block size", len > sizeof(ts_hist_app_t) && len < 4096);
    th_check("short block", ts_hist_start(a, len - 1, big, sizeof(big), 0,
                                          s.t, &h) == TS_ERR_INVALID);
    th_check("misaligned block",
             ts_hist_start((ts_hist_app_t *) ((char *) a + 4), len, big,
                           sizeof(big), 0, s.t, &h) == TS_ERR_INVALID);
    th_check("cap 2", ts_hist_start(a, len, big, 2, 0, s.t, &h)
                      == TS_ERR_INVALID);
    th_check("cap too big", ts_hist_start(a, len, big, TS_HIST_MAX_CAP + 1,
                                          0, s.t, &h) == TS_ERR_INVALID);
    th_check("first sample too big", ts_hist_start(a, len, buf, 12, 0, s.t,
                                                   &h) == TS_ERR_FULL);
    th_check("append before start", ts_hist_append(a, buf, s.t, &h, &hdr)
                                    == TS_ERR_INVALID);

    /* malformed histograms */
    bad = s;
    bad.np = 3;
    th_view(&bad, &h);
    th_check("buckets not as spans", ts_hist_app_size(&h) == 0);

    bad = s;
    bad.nps = 2;
    bad.ps[1].offset = -1;
    bad.ps[1].length = 0;
    th_view(&bad, &h);
    th_check("negative later offset", ts_hist_app_size(&h) == 0);

    bad = s;
    bad.schema = 9;
    th_view(&bad, &h);
    th_check("schema 9", ts_hist_app_size(&h) == 0);

    bad = s;
    bad.ncv = 1;
    th_view(&bad, &h);
    th_check("custom values, schema 0", ts_hist_app_size(&h) == 0);

    bad = s;
    th_view(&bad, &h);
    h.pos_deltas = NULL;
    th_check("no bucket array", ts_hist_app_size(&h) == 0);

    /* a stale marker needs no layout, whatever it carries */
    bad = s;
    bad.sum = TH_STALE;
    bad.np = 7;
    th_view(&bad, &h);
    th_check("stale", ts_hist_app_size(&h) == sizeof(ts_hist_app_t));

    /* out of order, and nothing changes */
    th_view(&s, &h);
    assert_int_equal(ts_hist_start(a, len, big, sizeof(big), 0, 1000, &h),
                     TS_OK);
    th_check("same t", ts_hist_append(a, big, 1000, &h, &hdr)
                       == TS_ERR_OUT_OF_ORDER);
    th_check("earlier t", ts_hist_append(a, big, 999, &h, &hdr)
                          == TS_ERR_OUT_OF_ORDER);
    th_check("unchanged", ts_hist_count(a) == 1);

    bad = s;
    bad.np = 1;
    th_view(&bad, &h);
    th_check("append malformed", ts_hist_append(a, big, 2000, &h, &hdr)
                                 == TS_ERR_INVALID);
    th_check("no recode size", ts_hist_recode_size(a, &h) == 0);

    free(a);
}


/* TS_ERR_FULL changes nothing; the 65535th sample is the last */

static void
test_full(void **state)
{
    int             rc;
    size_t          len, size;
    uint8_t        *buf, *copy;
    uint32_t        i, n;
    uint64_t        pub;
    th_h_t          s;
    ts_hist_t       h;
    ts_hist_app_t  *a;

    (void) state;

    buf = malloc(TH_CAP);
    copy = malloc(TH_CAP);
    a = aligned_alloc(8, 4096);
    assert_non_null(buf);
    assert_non_null(copy);
    assert_non_null(a);

    th_small(&s, 1000, 5, 0, 0);
    th_view(&s, &h);
    size = ts_hist_app_size(&h);

    for (len = 20; len < 40; len++) {
        th_small(&s, 1000, 5, 0, 0);
        th_view(&s, &h);
        rc = ts_hist_start(a, size, buf, len, 0, s.t, &h);

        if (rc == TS_ERR_FULL) {
            continue;
        }

        assert_int_equal(rc, TS_OK);

        for (n = 1; ; n++) {
            th_small(&s, 1000 + 1000 * n, 5 + n * n * 100, 0, 0);
            th_view(&s, &h);
            pub = a->pub;
            memcpy(copy, buf, len);

            rc = ts_hist_append(a, buf, s.t, &h, NULL);

            if (rc == TS_ERR_FULL) {
                th_check("full", a->pub == pub);
                th_check("full", memcmp(copy, buf, ts_hist_bytes(a)) == 0);
                break;
            }

            assert_int_equal(rc, TS_OK);
            th_check("fits", ts_hist_bytes(a) <= len);
        }
    }

    /* stale markers take 4 bits: 65535 fit in 32 KiB */
    th_stale_at(&s, 1, 0, 0);
    th_view(&s, &h);
    assert_int_equal(ts_hist_start(a, 4096, buf, TH_CAP, 0, 1, &h), TS_OK);

    for (i = 2; (rc = ts_hist_append(a, buf, i, &h, NULL)) == TS_OK; i++) {
        /* void */
    }

    th_check("65535", rc == TS_ERR_FULL && ts_hist_count(a) == 65535);
    th_check("65535", ts_hist_bytes(a) < TH_CAP);

    free(a);
    free(copy);
    free(buf);
}


/*
 * Where Prometheus 3's adjustForInserts() lists a run of trailing
 * inserted buckets as one index repeated, we write the right layout.
 */

static void
test_adjust_for_inserts_deviation(void **state)
{
    int                   rc;
    uint32_t              m;
    th_h_t                s[3], out[3];
    th_drv_t              d;
    tr_head_t            *ref;
    static const int32_t  sp0[] = { 0, 3, 2, 2 }, sp1[] = { -3, 1, 2, 3 };
    static const int64_t  a0[] = { 1, 1, 1, 0, 0 }, a1[] = { 1, 2, 2, 2 };

    (void) state;

    ref = calloc(1, sizeof(tr_head_t));
    assert_non_null(ref);

    /* buckets 0 1 2 5 6 (5, 6 empty), then -3 0 1 2: 5 and 6 go missing */
    th_mk(&s[0], 0, 0, 0, 0.0, 0, sp0, 2, a0, 5, NULL, 0, NULL, 0, 1, 0, 0);
    th_mk(&s[1], 1, 0, 0, 0.0, 0, sp0, 2, a0, 5, NULL, 0, NULL, 0, 1, 0, 0);
    th_mk(&s[2], 2, 0, 0, 0.0, 0, sp1, 2, a1, 4, NULL, 0, NULL, 0, 2, 0, 0);

    tr_bug = 0;
    th_drv_init(&d, 0);

    for (m = 0; m < 3; m++) {
        tr_head_append(ref, &s[m]);
        th_drv_append(&d, &s[m]);
    }

    tr_head_close(ref);
    th_drv_close(&d);

    th_check("go", tr_bug == 1);
    th_check("recoded", d.nchunks == 1 && d.recodes == 1);

    m = th_decode(d.chunks[0], d.lens[0], TS_HIST_ENCODING, out, 3, &rc);
    th_check("decodes", rc == 0 && m == 3);
    th_check("layout -3 0 1 2 5 6", out[2].nps == 3
             && out[2].ps[0].offset == -3 && out[2].ps[0].length == 1
             && out[2].ps[1].offset == 2 && out[2].ps[1].length == 3
             && out[2].ps[2].offset == 2 && out[2].ps[2].length == 2);

    for (m = 0; m < 3; m++) {
        th_check("same counts", th_equiv(&out[m], &s[m]));
    }

    tr_head_free(ref);
    th_drv_free(&d);
    free(ref);
}



/* a few chunks of both encodings for the decoder tests */

static void
th_some_chunks(th_drv_t *d, int flt)
{
    uint32_t  i, n;
    th_h_t   *s;
    th_gen_t  g;

    s = malloc(TH_MAXN * sizeof(th_h_t));
    assert_non_null(s);

    th_rng_state = 0x1234567 + (uint64_t) flt;
    th_gen_init(&g);
    g.flt = flt;
    n = 120;

    for (i = 0; i < n; i++) {
        th_gen_next(&g, &s[i]);
        s[i].flt = flt;
    }

    th_drv_init(d, 30);

    for (i = 0; i < n; i++) {
        th_drv_append(d, &s[i]);
    }

    th_drv_close(d);
    free(s);
}


/* every truncation is an error after the samples that fit */

static void
test_truncation(void **state)
{
    int        rc, flt;
    size_t     cut;
    uint32_t   i, m, full;
    th_h_t    *all, *part;
    th_drv_t   d;

    (void) state;

    all = malloc(TH_MAXN * sizeof(th_h_t));
    part = malloc(TH_MAXN * sizeof(th_h_t));
    assert_non_null(all);
    assert_non_null(part);

    for (flt = 0; flt < 2; flt++) {
        th_some_chunks(&d, flt);

        for (i = 0; i < d.nchunks; i++) {
            full = th_decode(d.chunks[i], d.lens[i],
                             flt ? TS_FHIST_ENCODING : TS_HIST_ENCODING,
                             all, TH_MAXN, &rc);
            th_check("whole", rc == 0);

            for (cut = 0; cut < d.lens[i]; cut++) {
                m = th_decode(d.chunks[i], cut,
                              flt ? TS_FHIST_ENCODING : TS_HIST_ENCODING,
                              part, TH_MAXN, &rc);

                th_check("truncated", rc == TS_ERR_CORRUPT && m < full);

                while (m--) {
                    th_check("prefix", th_same(&part[m], &all[m]));
                }
            }
        }

        th_drv_free(&d);
    }

    free(part);
    free(all);
}


/* hand-made layouts: a bit writer, then the decoder's verdict */

typedef struct {
    uint8_t   b[256];
    size_t    bits;
} th_bw_t;


static void
th_bw(th_bw_t *w, const char *bits)
{
    for ( /* void */ ; *bits; bits++) {
        if (*bits != '0' && *bits != '1') {
            continue;
        }

        if (*bits == '1') {
            w->b[w->bits >> 3] |= (uint8_t) (0x80 >> (w->bits & 7));
        }

        w->bits++;
    }
}


typedef struct {
    const char   *name;
    const char   *bits;      /* after the 3-byte header, count 2 */
    unsigned      enc;
} th_bad_t;


static const th_bad_t  th_bads[] = {
    { "schema 9", "00000000 1110 000001001 0 0 0 0 0"
      " 00000000 00000000 00000000 00000000 00000000 00000000 00000000"
      " 00000000", TS_HIST_ENCODING },
    { "schema -5", "00000000 110 111011 0 0 0 0 0 00000000 00000000"
      " 00000000 00000000 00000000 00000000 00000000 00000000",
      TS_HIST_ENCODING },
    { "span length over 32 bits", "00000000 0 10001"
      " 11111111 0000000000000000000000000000000100000000000000000000000000"
      "000000 0 0", TS_HIST_ENCODING },
    { "span offset over 32 bits", "00000000 0 10001 10001"
      " 11111110 00000000000000000000000010000000000000000000000000000000"
      " 0", TS_HIST_ENCODING },
    { "later span offset negative", "00000000 0 10010 10001 0 10001 10111"
      " 0", TS_HIST_ENCODING },
    { "more buckets than bits", "00000000 0 10001"
      " 1111110 1111111111111111111111111 0 0 0 0 0", TS_HIST_ENCODING },
    { "more spans than bits", "00000000 0 1111110"
      " 1111111111111111111111111 0 0", TS_HIST_ENCODING },
    { "float buckets need 64 bits", "00000000 0 10001 1110 100000000 0 0"
      " 0 00000000 00000000 00000000 00000000 00000000 00000000 00000000"
      " 00000000 00000000", TS_FHIST_ENCODING },
    { "time stands still", "00000000 0 0 0 0 0 0"
      " 0011111111110000000000000000000000000000000000000000000000000000"
      " 0 0 0 0", TS_HIST_ENCODING },
    { "time goes back", "00000000 0 0 0 10 001 0 0"
      " 0011111111110000000000000000000000000000000000000000000000000000"
      " 10 111 0 0 0", TS_HIST_ENCODING },
    { "window wider than 64", "00000000 0 0 0 0 0 0"
      " 0011111111110000000000000000000000000000000000000000000000000000"
      " 10 001 0 0 11 11111 111111", TS_HIST_ENCODING },
    { "custom count over the bits", "00000000 1110 111001011 0 0"
      " 1111110 1111111111111111111111111", TS_HIST_ENCODING },
    { "unknown encoding", "00000000 0 0 0 0 0 0", 4 },
};


static void
test_malformed(void **state)
{
    int              rc;
    size_t           i, len;
    uint8_t         *mem;
    int64_t          t;
    ts_hist_t        h;
    th_bw_t          w;
    ts_hist_iter_t   it;
    const th_bad_t  *c;

    (void) state;

    mem = aligned_alloc(8, TH_MEM);
    assert_non_null(mem);

    for (i = 0; i < sizeof(th_bads) / sizeof(th_bads[0]); i++) {
        c = &th_bads[i];

        memset(&w, 0, sizeof(w));
        th_bw(&w, "00000000 00000010 00000000");
        th_bw(&w, c->bits);
        len = (w.bits + 7) / 8;

        ts_hist_iter_init(&it, w.b, len, c->enc, mem, TH_MEM);

        while ((rc = ts_hist_iter_next(&it, &t, &h)) == 1) {
            /* void */
        }

        th_check(c->name, rc == TS_ERR_CORRUPT);
        th_check(c->name, ts_hist_iter_next(&it, &t, &h) == TS_ERR_CORRUPT);
        th_check(c->name, ts_hist_iter_need(w.b, len, c->enc) < TH_MEM);
    }

    /* shorter than a header, no samples, a sample count beyond the data */
    ts_hist_iter_init(&it, w.b, 2, TS_HIST_ENCODING, mem, TH_MEM);
    th_check("2 bytes", ts_hist_iter_next(&it, &t, &h) == TS_ERR_CORRUPT);

    memset(w.b, 0, sizeof(w.b));
    ts_hist_iter_init(&it, w.b, 3, TS_HIST_ENCODING, mem, TH_MEM);
    th_check("empty", ts_hist_iter_next(&it, &t, &h) == 0);

    w.b[1] = 1;
    ts_hist_iter_init(&it, w.b, 3, TS_HIST_ENCODING, mem, TH_MEM);
    th_check("count 1, no data",
             ts_hist_iter_next(&it, &t, &h) == TS_ERR_CORRUPT);

    free(mem);
}


/* the scratch memory: exactly ts_hist_iter_need() bytes suffice */

static void
test_iter_memory(void **state)
{
    int             rc, flt;
    size_t          need;
    uint8_t        *mem;
    int64_t         t;
    uint32_t        i;
    ts_hist_t       h;
    th_drv_t        d;
    ts_hist_iter_t  it;
    unsigned        enc;

    (void) state;

    for (flt = 0; flt < 2; flt++) {
        th_some_chunks(&d, flt);
        enc = flt ? TS_FHIST_ENCODING : TS_HIST_ENCODING;

        for (i = 0; i < d.nchunks; i++) {
            need = ts_hist_iter_need(d.chunks[i], d.lens[i], enc);
            mem = aligned_alloc(8, (need + 7) & ~(size_t) 7);
            assert_non_null(mem);

            ts_hist_iter_init(&it, d.chunks[i], d.lens[i], enc, mem, need);

            while ((rc = ts_hist_iter_next(&it, &t, &h)) == 1) {
                /* void */
            }

            th_check("need", rc == 0);

            if (need > 8) {
                ts_hist_iter_init(&it, d.chunks[i], d.lens[i], enc, mem,
                                  need - 8);
                th_check("short", ts_hist_iter_next(&it, &t, &h)
                                  == TS_ERR_FULL);
                th_check("sticky", ts_hist_iter_next(&it, &t, &h)
                                   == TS_ERR_FULL);
            }

            ts_hist_iter_init(&it, d.chunks[i], d.lens[i], enc, mem + 1,
                              need);
            th_check("misaligned", ts_hist_iter_next(&it, &t, &h)
                                   == TS_ERR_FULL);
            free(mem);
        }

        th_drv_free(&d);
    }
}


/*
 * A writer killed anywhere: the block's state and the bytes after the
 * published end are garbage, recovery rebuilds them, and appending goes
 * on exactly as without the crash.  Snapshots taken meanwhile are the
 * published chunk.
 */

static void
test_recover_and_snapshot(void **state)
{
    int             flt;
    size_t          len, size, need;
    uint8_t        *snap, *buf2;
    uint32_t        i, n, bits;
    th_h_t         *s;
    th_gen_t        g;
    th_drv_t        d, e;
    ts_hist_app_t  *a2;

    (void) state;

    s = malloc(TH_MAXN * sizeof(th_h_t));
    snap = malloc(TH_CAP);
    assert_non_null(s);
    assert_non_null(snap);

    for (flt = 0; flt < 2; flt++) {
        th_rng_state = 0xabcdef + (uint64_t) flt;
        th_gen_init(&g);
        n = 100;

        for (i = 0; i < n; i++) {
            th_gen_next(&g, &s[i]);
            s[i].flt = flt;
        }

        th_drv_init(&d, 0);
        th_drv_init(&e, 0);

        for (i = 0; i < n; i++) {
            th_drv_append(&d, &s[i]);

            /* e crashes after every append and recovers */
            th_drv_append(&e, &s[i]);

            size = e.a->size;
            a2 = aligned_alloc(8, (size + 7) & ~(size_t) 7);
            buf2 = malloc(e.cap);
            assert_non_null(a2);
            assert_non_null(buf2);

            memset(a2, 0x5a, size);
            a2->pub = e.a->pub;
            a2->size = e.a->size;
            a2->cap = e.a->cap;
            a2->is_float = e.a->is_float;

            bits = (uint32_t) e.a->pub;
            memset(buf2, 0xa5, e.cap);
            memcpy(buf2, e.buf, (bits + 7) / 8);
            buf2[0] = 0xff;

            if (bits & 7) {
                buf2[bits >> 3] |= (uint8_t) (0xff >> (bits & 7));
            }

            len = TH_CAP;
            th_check("snapshot", ts_hist_snapshot(e.a, e.buf, snap, &len)
                                 == TS_OK && len == ts_hist_bytes(e.a));
            th_check("snapshot", memcmp(snap, e.buf, len) == 0);

            len = 2;
            th_check("small", ts_hist_snapshot(e.a, e.buf, snap, &len)
                              == TS_ERR_FULL);

            th_check("recover", ts_hist_recover(a2, buf2) == TS_OK);
            th_check("state", memcmp(a2, e.a, sizeof(ts_hist_app_t)) == 0);
            /* the arrays in use; float windows may leave padding */
            need = sizeof(ts_hist_app_t)
                   + 8 * ((size_t) a2->n_pos_spans + a2->n_neg_spans
                          + a2->n_custom)
                   + ((size_t) a2->n_pos + a2->n_neg) * (flt ? 10 : 16);
            th_check("arrays", need <= size && memcmp(a2, e.a, need) == 0);
            th_check("bytes", memcmp(buf2, e.buf, (bits + 7) / 8) == 0);

            free(e.a);
            free(e.buf);
            e.a = a2;
            e.buf = buf2;
        }

        th_drv_close(&d);
        th_drv_close(&e);

        th_check("same chunks", d.nchunks == e.nchunks);

        for (i = 0; i < d.nchunks; i++) {
            th_check("same chunks", d.lens[i] == e.lens[i]
                     && memcmp(d.chunks[i], e.chunks[i], d.lens[i]) == 0);
        }

        th_drv_free(&d);
        th_drv_free(&e);
    }

    free(snap);
    free(s);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_prometheus_chunks),
        cmocka_unit_test(test_random_vs_reference),
        cmocka_unit_test(test_worked_examples),
        cmocka_unit_test(test_varbit_edges),
        cmocka_unit_test(test_threshold_and_bounds),
        cmocka_unit_test(test_append_rules),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_adjust_for_inserts_deviation),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_iter_memory),
        cmocka_unit_test(test_recover_and_snapshot),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
