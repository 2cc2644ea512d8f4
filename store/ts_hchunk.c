/*
 * Copyright (C) ngx_tsdb authors
 *
 * Native histogram chunk codecs, byte-compatible with Prometheus 3's
 * tsdb/chunkenc histogram.go, float_histogram.go, histogram_meta.go and
 * varbit.go (the per-sample encoding is the same since 2.40; chunks of
 * Prometheus 2 may end in one more zero byte, which decoders ignore).
 * The bit stream and the XOR value fields come from ts_chunk.c.
 *
 * Invariants:
 *
 * - "pub" (count << 32 | length in bits) is the commit point, as in
 *   ts_chunk.c: an append computes the sample's exact size first and
 *   returns TS_ERR_FULL having changed nothing, writes its bits, then
 *   the state and the header count, and stores "pub" last with release
 *   order.  Bits before the published end never change.
 * - The appender block holds its arrays after the fixed part, in this
 *   order: positive spans, negative spans, custom values, bucket values
 *   (positive then negative; integer: the delta-encoded values, float:
 *   the counts), then per bucket the integer delta or the float XOR
 *   window (leading bytes, then trailing bytes).  An iterator lays its
 *   scratch memory out the same way, so ts_hist_recover() decodes
 *   straight into the block.
 * - A writer killed mid-append leaves "pub" at the previous sample and
 *   the state up to one sample ahead; ts_hist_recover() rebuilds it.
 * - The decoder reads data only below len, checks the consumed length
 *   after every field whose count it does not control and after every
 *   sample, and bounds the bucket count by the bits left, so its memory
 *   and work are bounded by len.
 */


#include <math.h>
#include <string.h>

#include "ts_chunk.h"
#include "ts_error.h"
#include "ts_hchunk.h"


#define TS_HIST_PUB(n, bits)   ((uint64_t) (n) << 32 | (uint64_t) (bits))
#define TS_HIST_PUB_N(pub)     ((uint32_t) ((pub) >> 32))
#define TS_HIST_PUB_BITS(pub)  ((uint32_t) (pub))

#define TS_HIST_NO_WINDOW      0xff

#define TS_HIST_ALIGN8(n)      (((n) + 7) & ~(uint64_t) 7)


/* pointers into an appender's (or iterator's) arrays */
typedef struct {
    ts_hspan_t          *pspans;
    ts_hspan_t          *nspans;
    double              *custom;
    int64_t             *ival;     /* integer: delta-encoded values */
    double              *fval;     /* float: counts */
    int64_t             *dlt;      /* integer: deltas */
    uint8_t             *lead;     /* float: XOR windows */
    uint8_t             *trail;
} ts_hist_view_t;


/* Go's bucketIterator over a span list */
typedef struct {
    const ts_hspan_t    *s;
    uint32_t             n;
    uint32_t             si;
    int64_t              bi;
    int64_t              idx;
} ts_hist_walk_t;


/*
 * Yields a histogram's buckets on one side laid out as "to": the
 * buckets "to" has and the source lacks are zero.  With to NULL, the
 * source's own values.  Integer values come out delta-encoded.
 */
typedef struct {
    const int64_t       *ival;
    const double        *fval;
    uint32_t             k;        /* next source value */
    uint32_t             n;
    int                  fl;
    int                  same;
    ts_hist_walk_t       src;
    ts_hist_walk_t       dst;
    int64_t              sidx;
    int                  sok;
    uint64_t             sabs;     /* integer: the source bucket count */
    uint64_t             prev;     /* integer: the last count yielded */
} ts_hist_cur_t;


/* a bit writer that may only count */
typedef struct {
    uint8_t             *buf;      /* NULL: count only */
    size_t               cap;
    uint64_t             pos;
} ts_hist_bw_t;


/* what ts_hist_appendable() found */
typedef struct {
    int                  rc;       /* TS_OK, TS_HIST_CUT, TS_HIST_RECODE */
    unsigned             hdr;
    unsigned             fwd[2];   /* [0] positive, [1] negative */
    unsigned             bwd[2];
    unsigned             uni[2];   /* recode: union, else h's spans */
} ts_hist_plan_t;


static uint64_t ts_hist_fbits(double d);
static double ts_hist_fdouble(uint64_t u);
static int ts_hist_stale(const ts_hist_t *h);
static uint8_t *ts_hist_arr(const ts_hist_app_t *a);
static size_t ts_hist_block(uint64_t nspans, uint64_t ncustom, uint64_t nb,
    int fl);
static void ts_hist_view(const ts_hist_app_t *st, uint8_t *arr,
    ts_hist_view_t *v);
static int ts_hist_check(const ts_hist_t *h);
static int ts_hist_check_side(const ts_hspan_t *s, uint32_t ns, uint32_t nb,
    const void *vals);
static void ts_hist_walk_init(ts_hist_walk_t *w, const ts_hspan_t *s,
    uint32_t n);
static int ts_hist_walk_next(ts_hist_walk_t *w);
static void ts_hist_cur_init(ts_hist_cur_t *c, const ts_hist_t *h, int neg,
    const ts_hspan_t *to, uint32_t nto);
static uint64_t ts_hist_cur_next(ts_hist_cur_t *c);
static void ts_hist_put(ts_hist_bw_t *w, uint64_t u, unsigned n);
static void ts_hist_put_vb(ts_hist_bw_t *w, unsigned k, uint64_t u);
static void ts_hist_put_varint(ts_hist_bw_t *w, int64_t v);
static void ts_hist_put_uvarint(ts_hist_bw_t *w, uint64_t v);
static void ts_hist_put_xor(ts_hist_bw_t *w, uint64_t *prev, uint8_t *lead,
    uint8_t *trail, uint64_t v, int update);
static void ts_hist_put_zt(ts_hist_bw_t *w, double zt);
static void ts_hist_put_custom(ts_hist_bw_t *w, double f);
static void ts_hist_put_spans(ts_hist_bw_t *w, const ts_hspan_t *s,
    uint32_t n);
static void ts_hist_emit_first(ts_hist_app_t *a, ts_hist_bw_t *w, int64_t t,
    const ts_hist_t *h, const unsigned same[2]);
static void ts_hist_emit_next(ts_hist_app_t *a, ts_hist_bw_t *w, int64_t t,
    const ts_hist_t *h, const unsigned same[2]);
static void ts_hist_emit_buckets(ts_hist_app_t *a, ts_hist_bw_t *w,
    const ts_hist_t *h, const unsigned same[2], int first);
static int ts_hist_write(ts_hist_app_t *a, uint8_t *buf, int64_t t,
    const ts_hist_t *h, const unsigned same[2]);
static void ts_hist_commit(ts_hist_app_t *a, uint8_t *buf, uint64_t bits);
static int ts_hist_setup(ts_hist_app_t *a, size_t asize, size_t cap,
    unsigned header, int fl, uint32_t nps, uint32_t nns, uint32_t np,
    uint32_t nn, uint32_t nc);
static void ts_hist_buf_init(const ts_hist_app_t *a, uint8_t *buf);
static void ts_hist_appendable(const ts_hist_app_t *a, const ts_hist_t *h,
    ts_hist_plan_t *p);
static int ts_hist_appendable_counter(const ts_hist_app_t *a,
    const ts_hist_t *h, ts_hist_plan_t *p);
static int ts_hist_custom_match(const ts_hist_app_t *a, const ts_hist_t *h);
static int ts_hist_expand(const ts_hist_app_t *a, const ts_hist_t *h, int neg,
    int check, unsigned *fwd, unsigned *bwd);
static uint32_t ts_hist_union(const ts_hspan_t *a, uint32_t na,
    const ts_hspan_t *b, uint32_t nb, ts_hspan_t *out, uint64_t *nbuckets);
static void ts_hist_new_layout(const ts_hist_app_t *a, const ts_hist_t *h,
    const ts_hist_plan_t *p, int neg, ts_hspan_t *out, uint32_t *nspans,
    uint64_t *nbuckets);
static uint64_t ts_hist_rd(ts_hist_iter_t *it, unsigned n);
static unsigned ts_hist_rd_vb(ts_hist_iter_t *it, uint64_t *u);
static int ts_hist_rd_varint(ts_hist_iter_t *it, int64_t *v);
static int ts_hist_rd_uvarint(ts_hist_iter_t *it, uint64_t *v);
static int ts_hist_rd_spans(ts_hist_iter_t *it, ts_hspan_t *out, uint32_t *n,
    uint64_t *nb);
static int ts_hist_rd_layout(ts_hist_iter_t *it, uint8_t *mem, size_t memlen,
    size_t *need);
static int ts_hist_rd_first(ts_hist_iter_t *it);
static int ts_hist_rd_next(ts_hist_iter_t *it);
static void ts_hist_out(ts_hist_iter_t *it, ts_hist_t *h);


/* the varbit buckets: prefix of k ones and a zero (none for k = 8) */
static const uint8_t  ts_hist_vb_width[9] = {
    0, 3, 6, 9, 12, 18, 25, 56, 64
};


/* helpers */

static uint64_t
ts_hist_fbits(double d)
{
    uint64_t  u;

    memcpy(&u, &d, sizeof(u));

    return u;
}


static double
ts_hist_fdouble(uint64_t u)
{
    double  d;

    memcpy(&d, &u, sizeof(d));

    return d;
}


static int
ts_hist_stale(const ts_hist_t *h)
{
    return h->sum == TS_HIST_STALE_SUM;
}


static uint8_t *
ts_hist_arr(const ts_hist_app_t *a)
{
    return (uint8_t *) a + sizeof(ts_hist_app_t);
}


/* bytes of the arrays; the caller keeps every count below 2^32 */

static size_t
ts_hist_block(uint64_t nspans, uint64_t ncustom, uint64_t nb, int fl)
{
    return (size_t) (nspans * sizeof(ts_hspan_t) + ncustom * 8 + nb * 8
                     + (fl ? TS_HIST_ALIGN8(2 * nb) : nb * 8));
}


static void
ts_hist_view(const ts_hist_app_t *st, uint8_t *arr, ts_hist_view_t *v)
{
    uint32_t  nb;

    nb = st->n_pos + st->n_neg;

    v->pspans = (ts_hspan_t *) arr;
    v->nspans = v->pspans + st->n_pos_spans;
    v->custom = (double *) (v->nspans + st->n_neg_spans);
    v->ival = (int64_t *) (v->custom + st->n_custom);
    v->fval = (double *) v->ival;
    v->dlt = v->ival + nb;
    v->lead = (uint8_t *) v->dlt;
    v->trail = v->lead + nb;
}


/*
 * Prometheus's Validate() covers more (counts, signs); this checks what
 * the codec relies on: bucket counts that match the spans, and span
 * offsets that keep bucket indices increasing.
 */

static int
ts_hist_check(const ts_hist_t *h)
{
    if (ts_hist_stale(h)) {
        return TS_OK;
    }

    if (h->schema != TS_HIST_SCHEMA_CUSTOM
        && (h->schema < TS_HIST_SCHEMA_MIN || h->schema > TS_HIST_SCHEMA_MAX))
    {
        return TS_ERR_INVALID;
    }

    if (h->n_custom && (h->schema != TS_HIST_SCHEMA_CUSTOM
                        || h->custom_values == NULL))
    {
        return TS_ERR_INVALID;
    }

    if (ts_hist_check_side(h->pos_spans, h->n_pos_spans, h->n_pos,
                           h->is_float ? (const void *) h->pos_counts
                                       : (const void *) h->pos_deltas)
        != TS_OK
        || ts_hist_check_side(h->neg_spans, h->n_neg_spans, h->n_neg,
                              h->is_float ? (const void *) h->neg_counts
                                          : (const void *) h->neg_deltas)
           != TS_OK)
    {
        return TS_ERR_INVALID;
    }

    return TS_OK;
}


static int
ts_hist_check_side(const ts_hspan_t *s, uint32_t ns, uint32_t nb,
    const void *vals)
{
    uint32_t  i;
    uint64_t  sum;

    if ((ns && s == NULL) || (nb && vals == NULL)) {
        return TS_ERR_INVALID;
    }

    sum = 0;

    for (i = 0; i < ns; i++) {
        if (i > 0 && s[i].offset < 0) {
            return TS_ERR_INVALID;
        }

        sum += s[i].length;
    }

    return sum == nb ? TS_OK : TS_ERR_INVALID;
}


size_t
ts_hist_app_size(const ts_hist_t *h)
{
    uint64_t  ns, nb, size;

    if (ts_hist_check(h) != TS_OK) {
        return 0;
    }

    if (ts_hist_stale(h)) {
        return sizeof(ts_hist_app_t);
    }

    ns = (uint64_t) h->n_pos_spans + h->n_neg_spans;
    nb = (uint64_t) h->n_pos + h->n_neg;
    size = sizeof(ts_hist_app_t)
           + ts_hist_block(ns, h->n_custom, nb, h->is_float);

    return size < (uint64_t) 1 << 31 && nb < (uint64_t) 1 << 28
           ? (size_t) size : 0;
}


/* span walks */

static void
ts_hist_walk_init(ts_hist_walk_t *w, const ts_hspan_t *s, uint32_t n)
{
    w->s = s;
    w->n = n;
    w->si = 0;
    w->bi = -1;
    w->idx = n ? (int64_t) s[0].offset - 1 : -1;
}


/* Go's bucketIterator.Next(): 1 and w->idx, or 0; skips empty spans */

static int
ts_hist_walk_next(ts_hist_walk_t *w)
{
    if (w->si >= w->n) {
        return 0;
    }

    if (w->bi < (int64_t) w->s[w->si].length - 1) {
        w->bi++;
        w->idx++;
        return 1;
    }

    while (w->si + 1 < w->n) {
        w->si++;
        w->idx += (int64_t) w->s[w->si].offset + 1;
        w->bi = 0;

        if (w->s[w->si].length == 0) {
            w->idx--;
            continue;
        }

        return 1;
    }

    return 0;
}


static void
ts_hist_cur_init(ts_hist_cur_t *c, const ts_hist_t *h, int neg,
    const ts_hspan_t *to, uint32_t nto)
{
    c->fl = h->is_float;
    c->ival = neg ? h->neg_deltas : h->pos_deltas;
    c->fval = neg ? h->neg_counts : h->pos_counts;
    c->n = neg ? h->n_neg : h->n_pos;
    c->k = 0;
    c->same = (to == NULL);
    c->sabs = 0;
    c->prev = 0;

    if (c->same) {
        return;
    }

    ts_hist_walk_init(&c->src, neg ? h->neg_spans : h->pos_spans,
                      neg ? h->n_neg_spans : h->n_pos_spans);
    ts_hist_walk_init(&c->dst, to, nto);

    c->sok = ts_hist_walk_next(&c->src);
}


static uint64_t
ts_hist_cur_next(ts_hist_cur_t *c)
{
    uint64_t  v, abs;

    if (c->same) {
        v = c->fl ? ts_hist_fbits(c->fval[c->k]) : (uint64_t) c->ival[c->k];
        c->k++;
        return v;
    }

    if (!ts_hist_walk_next(&c->dst)) {
        return 0;
    }

    /* a source bucket the target lacks: only if the caller erred */
    while (c->sok && c->src.idx < c->dst.idx && c->k < c->n) {
        if (!c->fl) {
            c->sabs += (uint64_t) c->ival[c->k];
        }

        c->k++;
        c->sok = ts_hist_walk_next(&c->src);
    }

    abs = 0;
    v = 0;

    if (c->sok && c->src.idx == c->dst.idx && c->k < c->n) {
        if (c->fl) {
            v = ts_hist_fbits(c->fval[c->k]);

        } else {
            c->sabs += (uint64_t) c->ival[c->k];
            abs = c->sabs;
        }

        c->k++;
        c->sok = ts_hist_walk_next(&c->src);

    } else if (c->fl) {
        /* an inserted bucket is +0.0 */
        return 0;
    }

    if (!c->fl) {
        v = abs - c->prev;
        c->prev = abs;
    }

    return v;
}


/* writing */

static void
ts_hist_put(ts_hist_bw_t *w, uint64_t u, unsigned n)
{
    if (w->buf != NULL) {
        w->pos = ts_xor_bits_put(w->buf, w->cap, (uint32_t) w->pos, u, n);

    } else {
        w->pos += n;
    }
}


/* the varbit prefix for bucket k: k ones and a zero, or eight ones */

static void
ts_hist_put_vb(ts_hist_bw_t *w, unsigned k, uint64_t u)
{
    unsigned  width, np;
    uint64_t  prefix;

    width = ts_hist_vb_width[k];

    if (k == 8) {
        ts_hist_put(w, 0xff, 8);
        ts_hist_put(w, u, 64);
        return;
    }

    np = k + 1;
    prefix = ((uint64_t) 1 << k) - 1;
    prefix <<= 1;

    if (width == 0) {
        ts_hist_put(w, prefix, np);
        return;
    }

    /* at most 8 + 56 bits: one write */
    u &= ((uint64_t) 1 << width) - 1;
    ts_hist_put(w, prefix << width | u, np + width);
}


/* Go's putVarbitInt: bucket k holds bitRange(v, width) */

static void
ts_hist_put_varint(ts_hist_bw_t *w, int64_t v)
{
    unsigned  k;
    uint64_t  u, half;

    u = (uint64_t) v;

    if (v == 0) {
        ts_hist_put_vb(w, 0, 0);
        return;
    }

    for (k = 1; k < 8; k++) {
        half = (uint64_t) 1 << (ts_hist_vb_width[k] - 1);

        if (u + (half - 1) <= 2 * half - 1) {
            break;
        }
    }

    ts_hist_put_vb(w, k, u);
}


static void
ts_hist_put_uvarint(ts_hist_bw_t *w, uint64_t v)
{
    unsigned  k;

    if (v == 0) {
        ts_hist_put_vb(w, 0, 0);
        return;
    }

    for (k = 1; k < 8; k++) {
        if (v < (uint64_t) 1 << ts_hist_vb_width[k]) {
            break;
        }
    }

    ts_hist_put_vb(w, k, v);
}


static void
ts_hist_put_xor(ts_hist_bw_t *w, uint64_t *prev, uint8_t *lead,
    uint8_t *trail, uint64_t v, int update)
{
    ts_xor_val_t  x;

    ts_xor_val_encode(*prev, *lead, *trail, v, &x);

    ts_hist_put(w, x.ctl, x.nctl);

    if (x.nsig) {
        ts_hist_put(w, x.sig, x.nsig);
    }

    if (update) {
        *prev = v;
        *lead = x.leading;
        *trail = x.trailing;
    }
}


/* Go's putZeroThreshold: 0, a power of two as one byte, or 255 + bits */

static void
ts_hist_put_zt(ts_hist_bw_t *w, double zt)
{
    int     exp;
    double  frac;

    if (zt == 0) {
        ts_hist_put(w, 0, 8);
        return;
    }

    exp = 0;
    frac = frexp(zt, &exp);

    if (frac != 0.5 || exp < -242 || exp > 11) {
        ts_hist_put(w, 255, 8);
        ts_hist_put(w, ts_hist_fbits(zt), 64);
        return;
    }

    ts_hist_put(w, (uint64_t) (exp + 243), 8);
}


/*
 * Go's putCustomBound: multiples of 0.001 in [0, 33554.430] as
 * varbit(bound * 1000 + 1), anything else as '0' + bits.  NaN takes the
 * second path in Go as well (its uint conversion makes the test fail).
 */

static void
ts_hist_put_custom(ts_hist_bw_t *w, double f)
{
    double  tf;

    tf = f * 1000;

    if (isnan(f) || tf < 0 || tf > 33554430
        || (double) (uint64_t) round(tf) / 1000 != f)
    {
        ts_hist_put(w, 0, 1);
        ts_hist_put(w, ts_hist_fbits(f), 64);
        return;
    }

    ts_hist_put_uvarint(w, (uint64_t) round(tf) + 1);
}


static void
ts_hist_put_spans(ts_hist_bw_t *w, const ts_hspan_t *s, uint32_t n)
{
    uint32_t  i;

    ts_hist_put_uvarint(w, n);

    for (i = 0; i < n; i++) {
        ts_hist_put_uvarint(w, s[i].length);
        ts_hist_put_varint(w, s[i].offset);
    }
}


/*
 * The first sample: the layout (a's, already in its block), then the
 * raw fields.  With w->buf set, also the state.
 */

static void
ts_hist_emit_first(ts_hist_app_t *a, ts_hist_bw_t *w, int64_t t,
    const ts_hist_t *h, const unsigned same[2])
{
    int             stale, up;
    uint32_t        i;
    ts_hist_view_t  v;

    stale = ts_hist_stale(h);
    up = (w->buf != NULL);
    ts_hist_view(a, ts_hist_arr(a), &v);

    ts_hist_put_zt(w, a->zt);
    ts_hist_put_varint(w, a->schema);
    ts_hist_put_spans(w, v.pspans, a->n_pos_spans);
    ts_hist_put_spans(w, v.nspans, a->n_neg_spans);

    if (a->schema == TS_HIST_SCHEMA_CUSTOM) {
        ts_hist_put_uvarint(w, a->n_custom);

        for (i = 0; i < a->n_custom; i++) {
            ts_hist_put_custom(w, v.custom[i]);
        }
    }

    ts_hist_put_varint(w, t);

    if (a->is_float) {
        ts_hist_put(w, stale ? 0 : ts_hist_fbits(h->fcount), 64);
        ts_hist_put(w, stale ? 0 : ts_hist_fbits(h->fzero_count), 64);

    } else {
        ts_hist_put_uvarint(w, stale ? 0 : h->count);
        ts_hist_put_uvarint(w, stale ? 0 : h->zero_count);
    }

    ts_hist_put(w, h->sum, 64);

    if (!stale) {
        ts_hist_emit_buckets(a, w, h, same, 1);
    }

    if (!up) {
        return;
    }

    a->t = t;
    a->tdelta = 0;
    a->cnt_delta = 0;
    a->zcnt_delta = 0;
    a->sum = h->sum;
    memset(a->win, TS_HIST_NO_WINDOW, sizeof(a->win));

    if (a->is_float) {
        a->cnt = stale ? 0 : ts_hist_fbits(h->fcount);
        a->zcnt = stale ? 0 : ts_hist_fbits(h->fzero_count);

    } else {
        a->cnt = stale ? 0 : h->count;
        a->zcnt = stale ? 0 : h->zero_count;
    }
}


static void
ts_hist_emit_next(ts_hist_app_t *a, ts_hist_bw_t *w, int64_t t,
    const ts_hist_t *h, const unsigned same[2])
{
    int       stale, up;
    uint64_t  tdelta, cnt, zcnt, cd, zd;

    stale = ts_hist_stale(h);
    up = (w->buf != NULL);

    tdelta = (uint64_t) t - (uint64_t) a->t;
    ts_hist_put_varint(w, (int64_t) (tdelta - a->tdelta));

    if (a->is_float) {
        cnt = stale ? 0 : ts_hist_fbits(h->fcount);
        zcnt = stale ? 0 : ts_hist_fbits(h->fzero_count);
        cd = 0;
        zd = 0;

        ts_hist_put_xor(w, &a->cnt, &a->win[2], &a->win[3], cnt, up);
        ts_hist_put_xor(w, &a->zcnt, &a->win[4], &a->win[5], zcnt, up);

    } else {
        cnt = stale ? 0 : h->count;
        zcnt = stale ? 0 : h->zero_count;
        cd = cnt - a->cnt;
        zd = zcnt - a->zcnt;

        /* a stale marker keeps the count dods at 0, as in Go */
        ts_hist_put_varint(w, stale ? 0 : (int64_t) (cd - a->cnt_delta));
        ts_hist_put_varint(w, stale ? 0 : (int64_t) (zd - a->zcnt_delta));
    }

    ts_hist_put_xor(w, &a->sum, &a->win[0], &a->win[1], h->sum, up);

    if (!stale) {
        ts_hist_emit_buckets(a, w, h, same, 0);
    }

    if (!up) {
        return;
    }

    a->t = t;
    a->tdelta = tdelta;

    if (!a->is_float) {
        a->cnt = cnt;
        a->zcnt = zcnt;
        a->cnt_delta = cd;
        a->zcnt_delta = zd;
    }
}


/*
 * h's buckets in a's layout: raw in the first sample, then integer
 * dods or float XORs against a's per-bucket state.
 */

static void
ts_hist_emit_buckets(ts_hist_app_t *a, ts_hist_bw_t *w, const ts_hist_t *h,
    const unsigned same[2], int first)
{
    int             up, side;
    uint32_t        i, j, n;
    uint64_t        u, delta, prev;
    ts_hist_cur_t   c;
    ts_hist_view_t  v;

    up = (w->buf != NULL);
    ts_hist_view(a, ts_hist_arr(a), &v);

    j = 0;

    for (side = 0; side < 2; side++) {
        n = side ? a->n_neg : a->n_pos;
        ts_hist_cur_init(&c, h, side, same[side] ? NULL
                                      : side ? v.nspans : v.pspans,
                         side ? a->n_neg_spans : a->n_pos_spans);

        for (i = 0; i < n; i++, j++) {
            u = ts_hist_cur_next(&c);

            if (a->is_float) {
                if (first) {
                    ts_hist_put(w, u, 64);

                    if (up) {
                        v.fval[j] = ts_hist_fdouble(u);
                        v.lead[j] = TS_HIST_NO_WINDOW;
                        v.trail[j] = 0;
                    }

                    continue;
                }

                prev = ts_hist_fbits(v.fval[j]);
                ts_hist_put_xor(w, &prev, &v.lead[j], &v.trail[j], u, up);

                if (up) {
                    v.fval[j] = ts_hist_fdouble(prev);
                }

                continue;
            }

            if (first) {
                ts_hist_put_varint(w, (int64_t) u);

                if (up) {
                    v.ival[j] = (int64_t) u;
                    v.dlt[j] = 0;
                }

                continue;
            }

            delta = u - (uint64_t) v.ival[j];
            ts_hist_put_varint(w, (int64_t) (delta - (uint64_t) v.dlt[j]));

            if (up) {
                v.dlt[j] = (int64_t) delta;
                v.ival[j] = (int64_t) u;
            }
        }
    }
}


/* sizes the sample, then writes it: all of it or nothing */

static int
ts_hist_write(ts_hist_app_t *a, uint8_t *buf, int64_t t, const ts_hist_t *h,
    const unsigned same[2])
{
    uint32_t      n;
    ts_hist_bw_t  w;

    n = TS_HIST_PUB_N(a->pub);

    if (n == TS_HIST_MAX_SAMPLES) {
        return TS_ERR_FULL;
    }

    w.buf = NULL;
    w.cap = a->cap;
    w.pos = TS_HIST_PUB_BITS(a->pub);

    if (n == 0) {
        ts_hist_emit_first(a, &w, t, h, same);

    } else {
        ts_hist_emit_next(a, &w, t, h, same);
    }

    if (w.pos > (uint64_t) a->cap * 8) {
        return TS_ERR_FULL;
    }

    w.buf = buf;
    w.pos = TS_HIST_PUB_BITS(a->pub);

    if (n == 0) {
        ts_hist_emit_first(a, &w, t, h, same);

    } else {
        ts_hist_emit_next(a, &w, t, h, same);
    }

    ts_hist_commit(a, buf, w.pos);

    return TS_OK;
}


static void
ts_hist_commit(ts_hist_app_t *a, uint8_t *buf, uint64_t bits)
{
    uint32_t  n;

    n = TS_HIST_PUB_N(a->pub) + 1;

    buf[0] = (uint8_t) (n >> 8);
    buf[1] = (uint8_t) n;

    __atomic_store_n(&a->pub, TS_HIST_PUB(n, bits), __ATOMIC_RELEASE);
}


/* the block's layout: counts, then spans and custom values copied in */

static int
ts_hist_setup(ts_hist_app_t *a, size_t asize, size_t cap, unsigned header,
    int fl, uint32_t nps, uint32_t nns, uint32_t np, uint32_t nn,
    uint32_t nc)
{
    if (((uintptr_t) a & 7) || asize < sizeof(ts_hist_app_t)
        || asize > UINT32_MAX
        || asize - sizeof(ts_hist_app_t)
           < ts_hist_block((uint64_t) nps + nns, nc, (uint64_t) np + nn, fl)
        || cap < TS_HIST_HEADER_SIZE || cap > TS_HIST_MAX_CAP)
    {
        return TS_ERR_INVALID;
    }

    memset(a, 0, sizeof(ts_hist_app_t));

    a->cap = (uint32_t) cap;
    a->size = (uint32_t) asize;
    a->is_float = (uint8_t) (fl != 0);
    a->header = (uint8_t) (header & TS_HIST_HDR_MASK);
    a->n_pos_spans = nps;
    a->n_neg_spans = nns;
    a->n_pos = np;
    a->n_neg = nn;
    a->n_custom = nc;
    memset(a->win, TS_HIST_NO_WINDOW, sizeof(a->win));

    a->pub = TS_HIST_PUB(0, TS_HIST_HEADER_SIZE * 8);

    return TS_OK;
}


static void
ts_hist_buf_init(const ts_hist_app_t *a, uint8_t *buf)
{
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = a->header;
}


int
ts_hist_start(ts_hist_app_t *a, size_t asize, uint8_t *buf, size_t cap,
    unsigned header, int64_t t, const ts_hist_t *h)
{
    int             rc, stale;
    ts_hist_view_t  v;
    const unsigned  same[2] = { 1, 1 };

    if (ts_hist_check(h) != TS_OK) {
        return TS_ERR_INVALID;
    }

    /* a stale marker writes an empty layout, as in Go */
    stale = ts_hist_stale(h);

    rc = ts_hist_setup(a, asize, cap, header, h->is_float,
                       stale ? 0 : h->n_pos_spans, stale ? 0 : h->n_neg_spans,
                       stale ? 0 : h->n_pos, stale ? 0 : h->n_neg,
                       stale ? 0 : h->n_custom);
    if (rc != TS_OK) {
        return rc;
    }

    if (!stale) {
        a->schema = h->schema;
        a->zt = h->zero_threshold;

        ts_hist_view(a, ts_hist_arr(a), &v);

        if (a->n_pos_spans) {
            memcpy(v.pspans, h->pos_spans,
                   a->n_pos_spans * sizeof(ts_hspan_t));
        }

        if (a->n_neg_spans) {
            memcpy(v.nspans, h->neg_spans,
                   a->n_neg_spans * sizeof(ts_hspan_t));
        }

        if (a->n_custom) {
            memcpy(v.custom, h->custom_values, a->n_custom * sizeof(double));
        }
    }

    ts_hist_buf_init(a, buf);

    return ts_hist_write(a, buf, t, h, same);
}


int
ts_hist_append(ts_hist_app_t *a, uint8_t *buf, int64_t t,
    const ts_hist_t *h, unsigned *hdr)
{
    unsigned        same[2];
    ts_hist_plan_t  p;

    if (ts_hist_check(h) != TS_OK) {
        return TS_ERR_INVALID;
    }

    /* a chunk is started with its first sample */
    if (TS_HIST_PUB_N(a->pub) == 0) {
        return TS_ERR_INVALID;
    }

    if (t <= a->t) {
        return TS_ERR_OUT_OF_ORDER;
    }

    ts_hist_appendable(a, h, &p);

    if (p.rc != TS_OK) {
        if (hdr != NULL) {
            *hdr = p.hdr;
        }

        return p.rc;
    }

    same[0] = !p.bwd[0];
    same[1] = !p.bwd[1];

    return ts_hist_write(a, buf, t, h, same);
}


/* Prometheus 3's appendable() and appendableGauge(), both encodings */

static void
ts_hist_appendable(const ts_hist_app_t *a, const ts_hist_t *h,
    ts_hist_plan_t *p)
{
    unsigned  hint;

    memset(p, 0, sizeof(ts_hist_plan_t));
    p->rc = TS_HIST_CUT;

    hint = h->reset_hint;

    /* another chunk encoding: Go's head starts it without a "prev" */
    if (h->is_float != a->is_float) {
        p->hdr = hint == TS_HIST_HINT_GAUGE ? TS_HIST_HDR_GAUGE
                 : hint == TS_HIST_HINT_RESET ? TS_HIST_HDR_RESET
                 : TS_HIST_HDR_UNKNOWN;
        return;
    }

    if (hint != TS_HIST_HINT_GAUGE) {
        p->hdr = ts_hist_appendable_counter(a, h, p);

        /* the float appender only ever sets CounterReset here */
        if (p->rc == TS_HIST_CUT && a->is_float
            && p->hdr != TS_HIST_HDR_RESET)
        {
            p->hdr = TS_HIST_HDR_UNKNOWN;
        }

        return;
    }

    p->hdr = TS_HIST_HDR_GAUGE;

    if (a->header != TS_HIST_HDR_GAUGE) {
        return;
    }

    if (!ts_hist_stale(h)) {
        if (a->sum == TS_HIST_STALE_SUM || h->schema != a->schema
            || h->zero_threshold != a->zt || !ts_hist_custom_match(a, h))
        {
            return;
        }

        ts_hist_expand(a, h, 0, 0, &p->fwd[0], &p->bwd[0]);
        ts_hist_expand(a, h, 1, 0, &p->fwd[1], &p->bwd[1]);

        /* backward inserts make Go lay both sides out merged */
        p->uni[0] = p->bwd[0] || p->bwd[1];
        p->uni[1] = p->uni[0];
    }

    p->rc = (p->fwd[0] || p->fwd[1]) ? TS_HIST_RECODE : TS_OK;
}


/* sets p->rc and returns Go's counterResetHint for a counter h */

static int
ts_hist_appendable_counter(const ts_hist_app_t *a, const ts_hist_t *h,
    ts_hist_plan_t *p)
{
    int  less;

    p->rc = TS_HIST_CUT;

    if (a->header == TS_HIST_HDR_GAUGE) {
        return TS_HIST_HDR_NOT_RESET;
    }

    if (h->reset_hint == TS_HIST_HINT_RESET) {
        return TS_HIST_HDR_RESET;
    }

    if (ts_hist_stale(h)) {
        p->rc = TS_OK;
        return TS_HIST_HDR_NOT_RESET;
    }

    if (a->sum == TS_HIST_STALE_SUM) {
        return TS_HIST_HDR_UNKNOWN;
    }

    less = a->is_float ? h->fcount < ts_hist_fdouble(a->cnt)
                       : h->count < a->cnt;
    if (less) {
        return TS_HIST_HDR_RESET;
    }

    if (h->schema != a->schema || h->zero_threshold != a->zt) {
        return TS_HIST_HDR_UNKNOWN;
    }

    if (!ts_hist_custom_match(a, h)) {
        return TS_HIST_HDR_RESET;
    }

    less = a->is_float ? h->fzero_count < ts_hist_fdouble(a->zcnt)
                       : h->zero_count < a->zcnt;

    if (less
        || ts_hist_expand(a, h, 0, 1, &p->fwd[0], &p->bwd[0]) != TS_OK
        || ts_hist_expand(a, h, 1, 1, &p->fwd[1], &p->bwd[1]) != TS_OK)
    {
        return TS_HIST_HDR_RESET;
    }

    /* adjustForInserts() merges only a side with backward inserts */
    p->uni[0] = p->bwd[0];
    p->uni[1] = p->bwd[1];
    p->rc = (p->fwd[0] || p->fwd[1]) ? TS_HIST_RECODE : TS_OK;

    return TS_HIST_HDR_NOT_RESET;
}


static int
ts_hist_custom_match(const ts_hist_app_t *a, const ts_hist_t *h)
{
    uint32_t        i;
    ts_hist_view_t  v;

    if (h->schema != TS_HIST_SCHEMA_CUSTOM) {
        return 1;
    }

    if (h->n_custom != a->n_custom) {
        return 0;
    }

    ts_hist_view(a, ts_hist_arr(a), &v);

    for (i = 0; i < h->n_custom; i++) {
        if (h->custom_values[i] != v.custom[i]) {
            return 0;
        }
    }

    return 1;
}


/*
 * Go's expandIntSpansAndBuckets / expandFloatSpansAndBuckets (check 1)
 * and expandSpansBothWays (check 0) on one side: whether h has buckets
 * the chunk lacks (*fwd) and the reverse (*bwd).  With check, a bucket
 * that shrank, or that h lacks while it is not empty in the chunk, is a
 * counter reset: TS_ERR_INVALID.
 */

static int
ts_hist_expand(const ts_hist_app_t *a, const ts_hist_t *h, int neg,
    int check, unsigned *fwd, unsigned *bwd)
{
    int             aok, bok, fl, adv_a, adv_b;
    double          fa, fb;
    uint32_t        ai, bi, na, nb;
    uint64_t        ca, cb;
    ts_hist_walk_t  wa, wb;
    ts_hist_view_t  v;
    const int64_t  *ia, *ib;
    const double   *da, *db;

    ts_hist_view(a, ts_hist_arr(a), &v);
    fl = a->is_float;

    ts_hist_walk_init(&wa, neg ? v.nspans : v.pspans,
                      neg ? a->n_neg_spans : a->n_pos_spans);
    ts_hist_walk_init(&wb, neg ? h->neg_spans : h->pos_spans,
                      neg ? h->n_neg_spans : h->n_pos_spans);

    na = neg ? a->n_neg : a->n_pos;
    nb = neg ? h->n_neg : h->n_pos;
    ia = v.ival + (neg ? a->n_pos : 0);
    da = v.fval + (neg ? a->n_pos : 0);
    ib = neg ? h->neg_deltas : h->pos_deltas;
    db = neg ? h->neg_counts : h->pos_counts;

    ai = 0;
    bi = 0;
    ca = 0;
    cb = 0;
    fa = 0;
    fb = 0;

    aok = ts_hist_walk_next(&wa) && ai < na;
    bok = ts_hist_walk_next(&wb) && bi < nb;

    if (check && aok) {
        ca = fl ? 0 : (uint64_t) ia[0];
        fa = fl ? da[0] : 0;
    }

    if (check && bok) {
        cb = fl ? 0 : (uint64_t) ib[0];
        fb = fl ? db[0] : 0;
    }

    for ( ;; ) {
        if (aok && bok && wa.idx == wb.idx) {
            if (check && (fl ? fa > fb : (int64_t) ca > (int64_t) cb)) {
                return TS_ERR_INVALID;
            }

            adv_a = 1;
            adv_b = 1;

        } else if (aok && (!bok || wa.idx < wb.idx)) {
            /* h lacks a chunk bucket: fine while it is empty */
            if (check && (fl ? fa != 0 : ca != 0)) {
                return TS_ERR_INVALID;
            }

            *bwd = 1;
            adv_a = 1;
            adv_b = 0;

        } else if (bok) {
            *fwd = 1;
            adv_a = 0;
            adv_b = 1;

        } else {
            return TS_OK;
        }

        if (adv_a) {
            aok = ts_hist_walk_next(&wa) && ++ai < na;

            if (check && aok) {
                ca += fl ? 0 : (uint64_t) ia[ai];
                fa = fl ? da[ai] : 0;
            }
        }

        if (adv_b) {
            bok = ts_hist_walk_next(&wb) && ++bi < nb;

            if (check && bok) {
                cb += fl ? 0 : (uint64_t) ib[bi];
                fb = fl ? db[bi] : 0;
            }
        }
    }
}


/*
 * The canonical span list of the buckets a or b has, built bucket by
 * bucket as Go's addBucket() does; out NULL: count only.  Returns the
 * span count, *nbuckets the bucket count.
 */

static uint32_t
ts_hist_union(const ts_hspan_t *a, uint32_t na, const ts_hspan_t *b,
    uint32_t nb, ts_hspan_t *out, uint64_t *nbuckets)
{
    int             aok, bok;
    int64_t         idx, last, off;
    uint32_t        ns;
    ts_hist_walk_t  wa, wb;

    ts_hist_walk_init(&wa, a, na);
    ts_hist_walk_init(&wb, b, nb);

    aok = ts_hist_walk_next(&wa);
    bok = ts_hist_walk_next(&wb);

    ns = 0;
    last = 0;
    *nbuckets = 0;

    while (aok || bok) {
        if (aok && (!bok || wa.idx <= wb.idx)) {
            idx = wa.idx;

            if (bok && wb.idx == idx) {
                bok = ts_hist_walk_next(&wb);
            }

            aok = ts_hist_walk_next(&wa);

        } else {
            idx = wb.idx;
            bok = ts_hist_walk_next(&wb);
        }

        off = idx - last - 1;

        if (off == 0 && ns > 0) {
            if (out != NULL) {
                out[ns - 1].length++;
            }

        } else {
            if (out != NULL) {
                out[ns].offset = (int32_t) (ns == 0 ? off + 1 : off);
                out[ns].length = 1;
            }

            ns++;
        }

        last = idx;
        (*nbuckets)++;
    }

    return ns;
}


/* one side of the recoded layout: the union, or h's spans as they are */

static void
ts_hist_new_layout(const ts_hist_app_t *a, const ts_hist_t *h,
    const ts_hist_plan_t *p, int neg, ts_hspan_t *out, uint32_t *nspans,
    uint64_t *nbuckets)
{
    uint32_t           n;
    ts_hist_view_t     v;
    const ts_hspan_t  *hs;

    hs = neg ? h->neg_spans : h->pos_spans;
    n = neg ? h->n_neg_spans : h->n_pos_spans;

    if (!p->uni[neg]) {
        if (out != NULL && n) {
            memcpy(out, hs, n * sizeof(ts_hspan_t));
        }

        *nspans = n;
        *nbuckets = neg ? h->n_neg : h->n_pos;
        return;
    }

    ts_hist_view(a, ts_hist_arr(a), &v);

    *nspans = ts_hist_union(neg ? v.nspans : v.pspans,
                            neg ? a->n_neg_spans : a->n_pos_spans,
                            hs, n, out, nbuckets);
}


unsigned
ts_hist_cut_header(const ts_hist_app_t *prev, const ts_hist_t *h)
{
    unsigned        hdr;
    ts_hist_plan_t  p;

    if (h->reset_hint == TS_HIST_HINT_GAUGE) {
        return TS_HIST_HDR_GAUGE;
    }

    if (h->reset_hint == TS_HIST_HINT_RESET) {
        return TS_HIST_HDR_RESET;
    }

    if (prev == NULL || TS_HIST_PUB_N(prev->pub) == 0
        || prev->is_float != h->is_float || ts_hist_check(h) != TS_OK)
    {
        return TS_HIST_HDR_UNKNOWN;
    }

    memset(&p, 0, sizeof(p));
    hdr = ts_hist_appendable_counter(prev, h, &p);

    /* the float appender knows only reset or not */
    if (prev->is_float && hdr != TS_HIST_HDR_RESET) {
        hdr = TS_HIST_HDR_NOT_RESET;
    }

    return hdr;
}


size_t
ts_hist_recode_size(const ts_hist_app_t *a, const ts_hist_t *h)
{
    uint32_t        nps, nns;
    uint64_t        npb, nnb;
    ts_hist_plan_t  p;

    if (ts_hist_check(h) != TS_OK || TS_HIST_PUB_N(a->pub) == 0) {
        return 0;
    }

    ts_hist_appendable(a, h, &p);

    if (p.rc != TS_HIST_RECODE) {
        return 0;
    }

    ts_hist_new_layout(a, h, &p, 0, NULL, &nps, &npb);
    ts_hist_new_layout(a, h, &p, 1, NULL, &nns, &nnb);

    if (npb + nnb >= (uint64_t) 1 << 28) {
        return 0;
    }

    return sizeof(ts_hist_app_t)
           + ts_hist_block((uint64_t) nps + nns, a->n_custom, npb + nnb,
                           a->is_float);
}


int
ts_hist_recode(const ts_hist_app_t *a, const uint8_t *buf,
    ts_hist_app_t *na, size_t nasize, uint8_t *nbuf, size_t ncap,
    int64_t t, const ts_hist_t *h, void *mem, size_t memlen)
{
    int             rc;
    int64_t         ot;
    uint32_t        nps, nns;
    uint64_t        npb, nnb;
    ts_hist_t       oh;
    ts_hist_plan_t  p;
    ts_hist_iter_t  it;
    ts_hist_view_t  ov, nv;
    const unsigned  expand[2] = { 0, 0 };
    unsigned        same[2];

    if (ts_hist_check(h) != TS_OK || TS_HIST_PUB_N(a->pub) == 0
        || t <= a->t)
    {
        return TS_ERR_INVALID;
    }

    ts_hist_appendable(a, h, &p);

    if (p.rc != TS_HIST_RECODE) {
        return TS_ERR_INVALID;
    }

    ts_hist_new_layout(a, h, &p, 0, NULL, &nps, &npb);
    ts_hist_new_layout(a, h, &p, 1, NULL, &nns, &nnb);

    if (npb + nnb >= (uint64_t) 1 << 28) {
        return TS_ERR_INVALID;
    }

    rc = ts_hist_setup(na, nasize, ncap, a->header, a->is_float, nps, nns,
                       (uint32_t) npb, (uint32_t) nnb, a->n_custom);
    if (rc != TS_OK) {
        return rc;
    }

    na->schema = a->schema;
    na->zt = a->zt;

    ts_hist_view(a, ts_hist_arr(a), &ov);
    ts_hist_view(na, ts_hist_arr(na), &nv);

    ts_hist_new_layout(a, h, &p, 0, nv.pspans, &nps, &npb);
    ts_hist_new_layout(a, h, &p, 1, nv.nspans, &nns, &nnb);

    if (na->n_custom) {
        memcpy(nv.custom, ov.custom, na->n_custom * sizeof(double));
    }

    ts_hist_buf_init(na, nbuf);

    /* Go's recode(): every sample again, its new buckets zero */
    ts_hist_iter_init_live(&it, a, buf, mem, memlen);

    while ((rc = ts_hist_iter_next(&it, &ot, &oh)) == 1) {
        rc = ts_hist_write(na, nbuf, ot, &oh, expand);
        if (rc != TS_OK) {
            return rc;
        }
    }

    if (rc != 0) {
        return rc == TS_ERR_FULL ? TS_ERR_INVALID : TS_ERR_CORRUPT;
    }

    same[0] = !p.uni[0];
    same[1] = !p.uni[1];

    return ts_hist_write(na, nbuf, t, h, same);
}


uint32_t
ts_hist_count(const ts_hist_app_t *a)
{
    return TS_HIST_PUB_N(__atomic_load_n(&a->pub, __ATOMIC_ACQUIRE));
}


size_t
ts_hist_bytes(const ts_hist_app_t *a)
{
    uint32_t  bits;

    bits = TS_HIST_PUB_BITS(__atomic_load_n(&a->pub, __ATOMIC_ACQUIRE));

    return ((size_t) bits + 7) >> 3;
}


int
ts_hist_snapshot(const ts_hist_app_t *a, const uint8_t *buf,
    uint8_t *dst, size_t *len)
{
    size_t    size;
    uint32_t  n, bits;
    uint64_t  pub;

    pub = __atomic_load_n(&a->pub, __ATOMIC_ACQUIRE);
    n = TS_HIST_PUB_N(pub);
    bits = TS_HIST_PUB_BITS(pub);
    size = ((size_t) bits + 7) >> 3;

    if (size > *len || size < TS_HIST_HEADER_SIZE) {
        return TS_ERR_FULL;
    }

    dst[0] = (uint8_t) (n >> 8);
    dst[1] = (uint8_t) n;
    dst[2] = buf[2];
    memcpy(dst + TS_HIST_HEADER_SIZE, buf + TS_HIST_HEADER_SIZE,
           size - TS_HIST_HEADER_SIZE);

    /* the writer may already be filling the rest of the last byte */
    if (bits & 7) {
        dst[size - 1] &= (uint8_t) (0xff00 >> (bits & 7));
    }

    *len = size;

    return TS_OK;
}


/* reading */

size_t
ts_hist_iter_need(const uint8_t *data, size_t len, unsigned enc)
{
    size_t          need;
    ts_hist_iter_t  it;

    ts_hist_iter_init(&it, data, len, enc, NULL, 0);

    if (it.err || it.n == 0 || ts_hist_rd_layout(&it, NULL, 0, &need) != TS_OK)
    {
        return 8;
    }

    return need > 8 ? need : 8;
}


void
ts_hist_iter_init(ts_hist_iter_t *it, const uint8_t *data, size_t len,
    unsigned enc, void *mem, size_t memlen)
{
    /* no chunk is longer: later bytes are never needed */
    if (len > TS_HIST_MAX_CAP) {
        len = TS_HIST_MAX_CAP;
    }

    memset(it, 0, sizeof(ts_hist_iter_t));

    it->data = data;
    it->len = len;
    it->pos = TS_HIST_HEADER_SIZE * 8;
    it->end = (uint64_t) len * 8;
    it->mem = mem;
    it->memlen = ((uintptr_t) mem & 7) ? 0 : memlen;
    it->is_float = (enc == TS_FHIST_ENCODING);
    it->st.is_float = it->is_float;
    memset(it->st.win, TS_HIST_NO_WINDOW, sizeof(it->st.win));

    if (len < TS_HIST_HEADER_SIZE
        || (enc != TS_HIST_ENCODING && enc != TS_FHIST_ENCODING))
    {
        it->err = TS_ERR_CORRUPT;
        return;
    }

    it->n = (uint32_t) data[0] << 8 | data[1];
    it->header = data[2] & TS_HIST_HDR_MASK;
}


void
ts_hist_iter_init_live(ts_hist_iter_t *it, const ts_hist_app_t *a,
    const uint8_t *buf, void *mem, size_t memlen)
{
    uint32_t  bits;
    uint64_t  pub;

    pub = __atomic_load_n(&a->pub, __ATOMIC_ACQUIRE);
    bits = TS_HIST_PUB_BITS(pub);

    ts_hist_iter_init(it, buf, ((size_t) bits + 7) >> 3,
                      a->is_float ? TS_FHIST_ENCODING : TS_HIST_ENCODING,
                      mem, memlen);

    if (it->err == 0) {
        it->n = TS_HIST_PUB_N(pub);
        it->end = bits < it->end ? bits : it->end;
    }
}


int
ts_hist_iter_next(ts_hist_iter_t *it, int64_t *t, ts_hist_t *h)
{
    int  rc;

    if (it->err) {
        return it->err;
    }

    if (it->i == it->n) {
        return 0;
    }

    rc = it->i == 0 ? ts_hist_rd_first(it) : ts_hist_rd_next(it);

    /* fields read past the end came from zero fill: discard them */
    if (rc == TS_OK && it->pos > it->end) {
        rc = TS_ERR_CORRUPT;
    }

    if (rc != TS_OK) {
        it->err = (int8_t) rc;
        return rc;
    }

    it->i++;
    *t = it->st.t;
    ts_hist_out(it, h);

    return 1;
}


static uint64_t
ts_hist_rd(ts_hist_iter_t *it, unsigned n)
{
    return ts_xor_bits_read(it->data, it->len, &it->pos, n);
}


/* the varbit prefix: up to eight ones, then the payload */

static unsigned
ts_hist_rd_vb(ts_hist_iter_t *it, uint64_t *u)
{
    unsigned  k, width;
    uint64_t  w;

    w = ts_xor_bits_peek(it->data, it->len, it->pos);
    k = (unsigned) __builtin_clzll(~w | 0xffffffffffffffULL);
    it->pos += k < 8 ? k + 1 : 8;

    width = ts_hist_vb_width[k];
    *u = width ? ts_hist_rd(it, width) : 0;

    return width;
}


static int
ts_hist_rd_varint(ts_hist_iter_t *it, int64_t *v)
{
    unsigned  width;
    uint64_t  u;

    width = ts_hist_rd_vb(it, &u);

    /* payloads above 2^(width-1) are negative, as in Go */
    if (width && width < 64 && u > (uint64_t) 1 << (width - 1)) {
        u -= (uint64_t) 1 << width;
    }

    *v = (int64_t) u;

    return it->pos <= it->end ? TS_OK : TS_ERR_CORRUPT;
}


static int
ts_hist_rd_uvarint(ts_hist_iter_t *it, uint64_t *v)
{
    ts_hist_rd_vb(it, v);

    return it->pos <= it->end ? TS_OK : TS_ERR_CORRUPT;
}


static int
ts_hist_rd_spans(ts_hist_iter_t *it, ts_hspan_t *out, uint32_t *n,
    uint64_t *nb)
{
    int64_t   off;
    uint64_t  i, cnt, len;

    if (ts_hist_rd_uvarint(it, &cnt) != TS_OK
        || cnt > (it->end - it->pos) / 2)
    {
        return TS_ERR_CORRUPT;
    }

    *nb = 0;

    for (i = 0; i < cnt; i++) {
        if (ts_hist_rd_uvarint(it, &len) != TS_OK || len > UINT32_MAX
            || ts_hist_rd_varint(it, &off) != TS_OK
            || off < INT32_MIN || off > INT32_MAX
            || (i > 0 && off < 0))
        {
            return TS_ERR_CORRUPT;
        }

        if (out != NULL) {
            out[i].length = (uint32_t) len;
            out[i].offset = (int32_t) off;
        }

        *nb += len;
    }

    *n = (uint32_t) cnt;

    return TS_OK;
}


/*
 * The layout: zero threshold, schema, spans, custom values.  With mem
 * NULL it only sizes; *need gets the bytes of the arrays.
 */

static int
ts_hist_rd_layout(ts_hist_iter_t *it, uint8_t *mem, size_t memlen,
    size_t *need)
{
    int64_t         schema;
    uint32_t        i, nps, nns;
    uint64_t        b, npb, nnb, nc, min;
    ts_hist_app_t  *st;
    ts_hist_view_t  v;

    st = &it->st;
    memset(&v, 0, sizeof(v));

    b = ts_hist_rd(it, 8);
    st->zt = b == 0 ? 0 : b == 255 ? ts_hist_fdouble(ts_hist_rd(it, 64))
                                   : ldexp(0.5, (int) b - 243);

    if (ts_hist_rd_varint(it, &schema) != TS_OK
        || (schema != TS_HIST_SCHEMA_CUSTOM
            && (schema < TS_HIST_SCHEMA_MIN || schema > TS_HIST_SCHEMA_MAX)))
    {
        return TS_ERR_CORRUPT;
    }

    st->schema = (int32_t) schema;

    /* the first pass sizes, the second stores where the first said */
    v.pspans = (ts_hspan_t *) mem;

    if (ts_hist_rd_spans(it, mem ? v.pspans : NULL, &nps, &npb) != TS_OK
        || ts_hist_rd_spans(it, mem ? v.pspans + nps : NULL, &nns, &nnb)
           != TS_OK)
    {
        return TS_ERR_CORRUPT;
    }

    nc = 0;

    if (schema == TS_HIST_SCHEMA_CUSTOM
        && (ts_hist_rd_uvarint(it, &nc) != TS_OK
            || nc > (it->end - it->pos) / 5))
    {
        return TS_ERR_CORRUPT;
    }

    /* every bucket of the first sample takes a bit, or 64 if float */
    min = (npb + nnb) * (it->is_float ? 64 : 1);

    if (npb + nnb >= (uint64_t) 1 << 28 || (uint64_t) nps + nns >= 1 << 28
        || min > it->end - it->pos)
    {
        return TS_ERR_CORRUPT;
    }

    st->n_pos_spans = nps;
    st->n_neg_spans = nns;
    st->n_pos = (uint32_t) npb;
    st->n_neg = (uint32_t) nnb;
    st->n_custom = (uint32_t) nc;

    *need = ts_hist_block((uint64_t) nps + nns, nc, npb + nnb,
                          it->is_float);

    if (mem != NULL && *need > memlen) {
        return TS_ERR_FULL;
    }

    if (mem != NULL) {
        ts_hist_view(st, mem, &v);
    }

    for (i = 0; i < nc; i++) {
        b = 0;

        if (ts_hist_rd_uvarint(it, &b) != TS_OK) {
            return TS_ERR_CORRUPT;
        }

        b = b ? ts_hist_fbits((double) (b - 1) / 1000) : ts_hist_rd(it, 64);

        if (mem != NULL) {
            v.custom[i] = ts_hist_fdouble(b);
        }
    }

    return it->pos <= it->end ? TS_OK : TS_ERR_CORRUPT;
}


static int
ts_hist_rd_first(ts_hist_iter_t *it)
{
    int             rc;
    size_t          need;
    int64_t         t;
    uint64_t        start, u;
    uint32_t        i, nb;
    ts_hist_app_t  *st;
    ts_hist_view_t  v;

    st = &it->st;
    start = it->pos;

    rc = ts_hist_rd_layout(it, NULL, 0, &need);
    if (rc != TS_OK) {
        return rc;
    }

    if (need > it->memlen) {
        return TS_ERR_FULL;
    }

    it->pos = start;
    it->arr = it->mem;

    rc = ts_hist_rd_layout(it, it->arr, it->memlen, &need);
    if (rc != TS_OK) {
        return rc;
    }

    ts_hist_view(st, it->arr, &v);

    if (ts_hist_rd_varint(it, &t) != TS_OK) {
        return TS_ERR_CORRUPT;
    }

    st->t = t;

    if (it->is_float) {
        st->cnt = ts_hist_rd(it, 64);
        st->zcnt = ts_hist_rd(it, 64);

    } else if (ts_hist_rd_uvarint(it, &st->cnt) != TS_OK
               || ts_hist_rd_uvarint(it, &st->zcnt) != TS_OK)
    {
        return TS_ERR_CORRUPT;
    }

    st->sum = ts_hist_rd(it, 64);
    nb = st->n_pos + st->n_neg;

    for (i = 0; i < nb; i++) {
        if (it->is_float) {
            v.fval[i] = ts_hist_fdouble(ts_hist_rd(it, 64));
            v.lead[i] = TS_HIST_NO_WINDOW;
            v.trail[i] = 0;
            continue;
        }

        if (ts_hist_rd_varint(it, &v.ival[i]) != TS_OK) {
            return TS_ERR_CORRUPT;
        }

        v.dlt[i] = 0;
    }

    u = st->sum;
    it->stale = (u == TS_HIST_STALE_SUM);

    return TS_OK;
}


static int
ts_hist_rd_next(ts_hist_iter_t *it)
{
    int64_t         d, t;
    uint64_t        prev;
    uint32_t        i, nb;
    ts_hist_app_t  *st;
    ts_hist_view_t  v;

    st = &it->st;
    ts_hist_view(st, it->arr, &v);

    if (ts_hist_rd_varint(it, &d) != TS_OK) {
        return TS_ERR_CORRUPT;
    }

    st->tdelta += (uint64_t) d;
    t = (int64_t) ((uint64_t) st->t + st->tdelta);

    if (t <= st->t) {
        return TS_ERR_CORRUPT;
    }

    st->t = t;

    if (!it->stale) {
        it->cnt0 = st->cnt;
        it->zcnt0 = st->zcnt;
    }

    if (it->is_float) {
        if (ts_xor_val_decode(it->data, it->len, &it->pos, &st->cnt,
                              &st->win[2], &st->win[3]) != TS_OK
            || ts_xor_val_decode(it->data, it->len, &it->pos, &st->zcnt,
                                 &st->win[4], &st->win[5]) != TS_OK)
        {
            return TS_ERR_CORRUPT;
        }

    } else {
        if (ts_hist_rd_varint(it, &d) != TS_OK) {
            return TS_ERR_CORRUPT;
        }

        st->cnt_delta += (uint64_t) d;
        st->cnt += st->cnt_delta;

        if (ts_hist_rd_varint(it, &d) != TS_OK) {
            return TS_ERR_CORRUPT;
        }

        st->zcnt_delta += (uint64_t) d;
        st->zcnt += st->zcnt_delta;
    }

    if (ts_xor_val_decode(it->data, it->len, &it->pos, &st->sum,
                          &st->win[0], &st->win[1]) != TS_OK)
    {
        return TS_ERR_CORRUPT;
    }

    /* a stale marker has no buckets */
    if (st->sum == TS_HIST_STALE_SUM) {
        it->stale++;
        return TS_OK;
    }

    it->stale = 0;
    nb = st->n_pos + st->n_neg;

    for (i = 0; i < nb; i++) {
        if (it->is_float) {
            prev = ts_hist_fbits(v.fval[i]);

            if (ts_xor_val_decode(it->data, it->len, &it->pos, &prev,
                                  &v.lead[i], &v.trail[i]) != TS_OK)
            {
                return TS_ERR_CORRUPT;
            }

            v.fval[i] = ts_hist_fdouble(prev);
            continue;
        }

        if (ts_hist_rd_varint(it, &d) != TS_OK) {
            return TS_ERR_CORRUPT;
        }

        v.dlt[i] = (int64_t) ((uint64_t) v.dlt[i] + (uint64_t) d);
        v.ival[i] = (int64_t) ((uint64_t) v.ival[i] + (uint64_t) v.dlt[i]);
    }

    return TS_OK;
}


static void
ts_hist_out(ts_hist_iter_t *it, ts_hist_t *h)
{
    ts_hist_app_t  *st;
    ts_hist_view_t  v;

    st = &it->st;

    memset(h, 0, sizeof(ts_hist_t));
    h->is_float = it->is_float;
    h->sum = st->sum;

    /* Go returns a stale marker as a histogram with only the sum */
    if (st->sum == TS_HIST_STALE_SUM) {
        return;
    }

    ts_hist_view(st, it->arr, &v);

    h->schema = st->schema;
    h->zero_threshold = st->zt;
    h->reset_hint = it->header == TS_HIST_HDR_GAUGE ? TS_HIST_HINT_GAUGE
                    : it->i > 1 ? TS_HIST_HINT_NOT_RESET
                    : TS_HIST_HINT_UNKNOWN;
    h->n_pos_spans = st->n_pos_spans;
    h->n_neg_spans = st->n_neg_spans;
    h->pos_spans = v.pspans;
    h->neg_spans = v.nspans;
    h->n_pos = st->n_pos;
    h->n_neg = st->n_neg;
    h->n_custom = st->n_custom;
    h->custom_values = st->n_custom ? v.custom : NULL;

    if (it->is_float) {
        h->fcount = ts_hist_fdouble(st->cnt);
        h->fzero_count = ts_hist_fdouble(st->zcnt);
        h->pos_counts = v.fval;
        h->neg_counts = v.fval + st->n_pos;
        return;
    }

    h->count = st->cnt;
    h->zero_count = st->zcnt;
    h->pos_deltas = v.ival;
    h->neg_deltas = v.ival + st->n_pos;
}


int
ts_hist_recover(ts_hist_app_t *a, uint8_t *buf)
{
    int             rc;
    int64_t         t;
    uint32_t        bits, n;
    ts_hist_t       h;
    ts_hist_iter_t  it;

    bits = TS_HIST_PUB_BITS(a->pub);
    n = TS_HIST_PUB_N(a->pub);

    if (((uintptr_t) a & 7) || a->size < sizeof(ts_hist_app_t)
        || a->cap < TS_HIST_HEADER_SIZE || a->cap > TS_HIST_MAX_CAP
        || bits < TS_HIST_HEADER_SIZE * 8 || bits > (uint64_t) a->cap * 8
        || n == 0 || n > TS_HIST_MAX_SAMPLES)
    {
        return TS_ERR_CORRUPT;
    }

    /* decodes straight into the block's arrays */
    ts_hist_iter_init_live(&it, a, buf, ts_hist_arr(a),
                           a->size - sizeof(ts_hist_app_t));

    while ((rc = ts_hist_iter_next(&it, &t, &h)) == 1) {
        /* void */
    }

    if (rc != 0 || it.pos != bits) {
        return TS_ERR_CORRUPT;
    }

    a->t = it.st.t;
    a->tdelta = it.st.tdelta;
    a->sum = it.st.sum;
    a->cnt = it.st.cnt;
    a->zcnt = it.st.zcnt;
    a->cnt_delta = it.st.cnt_delta;
    a->zcnt_delta = it.st.zcnt_delta;
    a->zt = it.st.zt;
    a->schema = it.st.schema;
    a->n_pos_spans = it.st.n_pos_spans;
    a->n_neg_spans = it.st.n_neg_spans;
    a->n_pos = it.st.n_pos;
    a->n_neg = it.st.n_neg;
    a->n_custom = it.st.n_custom;
    a->header = it.header;
    memcpy(a->win, it.st.win, sizeof(a->win));

    /* the integer writer zeroes the counts of a stale marker */
    if (!a->is_float && it.stale) {
        a->cnt = 0;
        a->zcnt = 0;
        a->cnt_delta = it.stale == 1 && n > 1 ? 0 - it.cnt0 : 0;
        a->zcnt_delta = it.stale == 1 && n > 1 ? 0 - it.zcnt0 : 0;
    }

    buf[0] = (uint8_t) (n >> 8);
    buf[1] = (uint8_t) n;

    if (bits & 7) {
        buf[bits >> 3] &= (uint8_t) (0xff00 >> (bits & 7));
    }

    return TS_OK;
}
