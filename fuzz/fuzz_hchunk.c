/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target for the histogram chunk codecs.  The first byte picks
 * what the rest is:
 *
 *   0, 1  an integer / float histogram chunk.  The decoder must stop
 *         cleanly (end, TS_ERR_CORRUPT) without reading outside the
 *         input; whatever it returned is appended again through the
 *         appender (cutting chunks where it refuses), and the new
 *         chunks must decode to the same samples bit for bit.
 *   2     a program: every 4 bytes make one sample (buckets that come
 *         and go, resets, stale markers, gauges, schema changes, time
 *         steps).  It goes through the appender, recodes included; the
 *         chunks must decode to the same histograms bucket by bucket,
 *         and rebuilding each appender (ts_hist_recover) must give back
 *         its state.
 *
 * Any mismatch aborts.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_hchunk.h"


#define FZ_MAXN      256
#define FZ_W         16          /* bucket indices per side */
#define FZ_CAP       (1 << 19)   /* all chunks of one run */
#define FZ_CHUNK     4096        /* one chunk */
#define FZ_BLK       4096        /* one appender: 32 buckets a side */


/* one sample, owning its arrays */
typedef struct {
    int64_t      t;
    ts_hist_t    h;
    ts_hspan_t   sp[2][FZ_W];
    int64_t      d[2][FZ_W];
    double       c[2][FZ_W];
    double       cv[FZ_W];
} fz_h_t;


/* the appender and its chunks, cut and recoded as the head would */
typedef struct {
    ts_hist_app_t  *a;          /* fz_blk[cur] or NULL */
    uint8_t        *buf;        /* fz_buf[cur] */
    int             cur;
    uint8_t        *out;        /* chunks, each: length, bytes */
    size_t          outlen;
    uint32_t        nchunks;
    unsigned        enc[FZ_MAXN];
} fz_drv_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_chunk(const uint8_t *data, size_t size, unsigned enc);
static void fz_program(const uint8_t *data, size_t size);
static void fz_drv_append(fz_drv_t *d, int64_t t, const ts_hist_t *h);
static void fz_drv_close(fz_drv_t *d);
static void fz_check_recover(const ts_hist_app_t *a, const uint8_t *buf);
static void fz_copy(fz_h_t *s, int64_t t, const ts_hist_t *h);
static int fz_same(const ts_hist_t *a, const ts_hist_t *b);
static double fz_bucket(const ts_hist_t *h, int neg, int64_t idx);
static void *fz_alloc(size_t n);


/*
 * Static: ASan fills every allocation, which made a run slow.  The
 * driver flips between two appenders and chunk buffers (recode writes
 * the other one); the samples kept have at most FZ_W spans and buckets
 * a side, so FZ_BLK always holds their appender.
 */
static fz_h_t    fz_samples[FZ_MAXN];
static uint8_t   fz_out[FZ_CAP];
static uint64_t  fz_blk[3][FZ_BLK / 8];
static uint8_t   fz_buf[3][FZ_CHUNK];
static uint64_t  fz_mem[FZ_BLK / 8];


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }

    switch (data[0]) {
    case 0:
        fz_chunk(data + 1, size - 1, TS_HIST_ENCODING);
        break;
    case 1:
        fz_chunk(data + 1, size - 1, TS_FHIST_ENCODING);
        break;
    case 2:
        fz_program(data + 1, size - 1);
        break;
    default:
        break;
    }

    return 0;
}


static void *
fz_alloc(size_t n)
{
    void  *p;

    p = aligned_alloc(8, (n + 7) & ~(size_t) 7);
    if (p == NULL) {
        abort();
    }

    return p;
}


/* decodes the chunks a driver wrote, calling back per sample */

typedef void (*fz_sample_pt)(void *ctx, uint32_t i, int64_t t,
    const ts_hist_t *h);

static uint32_t
fz_decode_all(const fz_drv_t *d, fz_sample_pt cb, void *ctx)
{
    int             rc;
    size_t          off, len, need;
    uint8_t        *mem;
    int64_t         t, last;
    uint32_t        c, n;
    ts_hist_t       h;
    ts_hist_iter_t  it;

    off = 0;
    n = 0;
    last = INT64_MIN;

    for (c = 0; c < d->nchunks; c++) {
        memcpy(&len, d->out + off, sizeof(len));
        off += sizeof(len);

        need = ts_hist_iter_need(d->out + off, len, d->enc[c]);
        if (need > sizeof(fz_mem)) {
            abort();
        }

        mem = (uint8_t *) fz_mem;
        ts_hist_iter_init(&it, d->out + off, len, d->enc[c], mem, need);

        while ((rc = ts_hist_iter_next(&it, &t, &h)) == 1) {
            if (t <= last && n > 0) {
                abort();
            }

            last = t;
            cb(ctx, n++, t, &h);
        }

        if (rc != 0) {
            abort();
        }

        off += len;
    }

    return n;
}


/* mode 0, 1 */

typedef struct {
    fz_h_t      *s;
    uint32_t     n;
} fz_chunk_ctx_t;


static void
fz_chunk_cmp(void *ctx, uint32_t i, int64_t t, const ts_hist_t *h)
{
    fz_chunk_ctx_t  *c;

    c = ctx;

    if (i >= c->n || t != c->s[i].t || !fz_same(h, &c->s[i].h)) {
        abort();
    }
}


static void
fz_chunk(const uint8_t *data, size_t size, unsigned enc)
{
    int             rc;
    size_t          need;
    uint8_t        *mem;
    int64_t         t;
    uint32_t        n;
    fz_h_t         *s;
    fz_drv_t        d;
    ts_hist_t       h;
    ts_hist_iter_t  it;
    fz_chunk_ctx_t  ctx;

    need = ts_hist_iter_need(data, size, enc);
    mem = fz_alloc(need);
    s = fz_samples;

    ts_hist_iter_init(&it, data, size, enc, mem, need);
    n = 0;

    while ((rc = ts_hist_iter_next(&it, &t, &h)) == 1) {
        if (n > 0 && t <= s[n - 1].t) {
            abort();
        }

        /* keep the samples that fit our copies; the rest only decode */
        if (n < FZ_MAXN && h.n_pos_spans <= FZ_W && h.n_neg_spans <= FZ_W
            && h.n_pos <= FZ_W && h.n_neg <= FZ_W && h.n_custom <= FZ_W)
        {
            fz_copy(&s[n++], t, &h);
        }
    }

    if (rc != 0 && rc != TS_ERR_CORRUPT) {
        abort();
    }

    /* append them again: same samples, whatever the chunk cuts */
    memset(&d, 0, sizeof(d));
    d.out = fz_out;

    for (ctx.n = 0; ctx.n < n; ctx.n++) {
        fz_drv_append(&d, s[ctx.n].t, &s[ctx.n].h);
    }

    fz_drv_close(&d);

    ctx.s = s;

    if (fz_decode_all(&d, fz_chunk_cmp, &ctx) != n) {
        abort();
    }

    free(mem);
}


static void
fz_copy(fz_h_t *s, int64_t t, const ts_hist_t *h)
{
    int  side;

    s->t = t;
    s->h = *h;
    s->h.custom_values = h->n_custom ? s->cv : NULL;

    if (h->n_custom) {
        memcpy(s->cv, h->custom_values, h->n_custom * sizeof(double));
    }

    /* a stale marker comes back with no arrays at all */
    for (side = 0; side < 2 && h->sum != TS_HIST_STALE_SUM; side++) {
        memcpy(s->sp[side], side ? h->neg_spans : h->pos_spans,
               (side ? h->n_neg_spans : h->n_pos_spans) * sizeof(ts_hspan_t));

        if (h->is_float) {
            memcpy(s->c[side], side ? h->neg_counts : h->pos_counts,
                   (side ? h->n_neg : h->n_pos) * sizeof(double));

        } else {
            memcpy(s->d[side], side ? h->neg_deltas : h->pos_deltas,
                   (side ? h->n_neg : h->n_pos) * sizeof(int64_t));
        }
    }

    s->h.pos_spans = s->sp[0];
    s->h.neg_spans = s->sp[1];
    s->h.pos_deltas = s->d[0];
    s->h.neg_deltas = s->d[1];
    s->h.pos_counts = s->c[0];
    s->h.neg_counts = s->c[1];
}


/* bit-exact equality of what a chunk keeps, layout included */

static int
fz_same(const ts_hist_t *a, const ts_hist_t *b)
{
    size_t  vs;

    if (a->sum != b->sum || a->is_float != b->is_float) {
        return 0;
    }

    if (a->sum == TS_HIST_STALE_SUM) {
        return 1;
    }

    vs = a->is_float ? sizeof(double) : sizeof(int64_t);

    return a->schema == b->schema && a->n_custom == b->n_custom
           && (a->n_custom == 0
               || memcmp(a->custom_values, b->custom_values,
                         a->n_custom * sizeof(double)) == 0)
           && memcmp(&a->zero_threshold, &b->zero_threshold, 8) == 0
           && a->count == b->count && a->zero_count == b->zero_count
           && memcmp(&a->fcount, &b->fcount, 8) == 0
           && memcmp(&a->fzero_count, &b->fzero_count, 8) == 0
           && a->n_pos_spans == b->n_pos_spans
           && a->n_neg_spans == b->n_neg_spans
           && a->n_pos == b->n_pos && a->n_neg == b->n_neg
           && memcmp(a->pos_spans, b->pos_spans,
                     a->n_pos_spans * sizeof(ts_hspan_t)) == 0
           && memcmp(a->neg_spans, b->neg_spans,
                     a->n_neg_spans * sizeof(ts_hspan_t)) == 0
           && memcmp(a->is_float ? (const void *) a->pos_counts
                                 : (const void *) a->pos_deltas,
                     b->is_float ? (const void *) b->pos_counts
                                 : (const void *) b->pos_deltas,
                     a->n_pos * vs) == 0
           && memcmp(a->is_float ? (const void *) a->neg_counts
                                 : (const void *) a->neg_deltas,
                     b->is_float ? (const void *) b->neg_counts
                                 : (const void *) b->neg_deltas,
                     a->n_neg * vs) == 0;
}


/* the driver */

static void
fz_drv_start(fz_drv_t *d, unsigned hdr, int64_t t, const ts_hist_t *h)
{
    size_t  size;

    fz_drv_close(d);

    size = ts_hist_app_size(h);
    if (size == 0 || size > FZ_BLK) {
        abort();
    }

    d->a = (ts_hist_app_t *) fz_blk[d->cur];
    d->buf = fz_buf[d->cur];

    if (ts_hist_start(d->a, size, d->buf, FZ_CHUNK, hdr, t, h) != TS_OK) {
        abort();
    }
}


static void
fz_drv_append(fz_drv_t *d, int64_t t, const ts_hist_t *h)
{
    int             rc;
    size_t          size, need;
    uint8_t        *nbuf, *mem;
    unsigned        hdr;
    ts_hist_app_t  *na;

    if (d->a == NULL) {
        fz_drv_start(d, ts_hist_cut_header(NULL, h), t, h);
        return;
    }

    rc = ts_hist_append(d->a, d->buf, t, h, &hdr);

    if (rc == TS_OK) {
        return;
    }

    if (rc == TS_HIST_CUT) {
        fz_drv_start(d, hdr, t, h);
        return;
    }

    if (rc == TS_ERR_FULL) {
        fz_drv_start(d, ts_hist_cut_header(d->a, h), t, h);
        return;
    }

    if (rc != TS_HIST_RECODE) {
        abort();
    }

    size = ts_hist_recode_size(d->a, h);
    need = ts_hist_iter_need(d->buf, ts_hist_bytes(d->a),
                             d->a->is_float ? TS_FHIST_ENCODING
                                            : TS_HIST_ENCODING);
    if (size > FZ_BLK || need > sizeof(fz_mem)) {
        abort();
    }

    na = (ts_hist_app_t *) fz_blk[!d->cur];
    nbuf = fz_buf[!d->cur];
    mem = (uint8_t *) fz_mem;

    rc = ts_hist_recode(d->a, d->buf, na, size, nbuf, FZ_CHUNK, t, h, mem,
                        need);

    if (rc == TS_ERR_FULL) {
        fz_drv_start(d, TS_HIST_HDR_NOT_RESET, t, h);
        return;
    }

    if (rc != TS_OK) {
        abort();
    }

    d->cur = !d->cur;
    d->a = na;
    d->buf = nbuf;
}


/* the published chunk goes to out */

static void
fz_drv_close(fz_drv_t *d)
{
    size_t  len;

    if (d->a == NULL) {
        return;
    }

    len = ts_hist_bytes(d->a);

    if (d->nchunks == FZ_MAXN
        || d->outlen + sizeof(len) + len > FZ_CAP)
    {
        abort();
    }

    memcpy(d->out + d->outlen, &len, sizeof(len));
    d->outlen += sizeof(len);

    if (ts_hist_snapshot(d->a, d->buf, d->out + d->outlen, &len) != TS_OK) {
        abort();
    }

    d->outlen += len;
    d->enc[d->nchunks++] = d->a->is_float ? TS_FHIST_ENCODING
                                          : TS_HIST_ENCODING;

    fz_check_recover(d->a, d->buf);

    d->a = NULL;
    d->buf = NULL;
}


/*
 * A writer killed after this append: garbage state and garbage after
 * the published end; ts_hist_recover() gives back the state and bytes.
 */

static void
fz_check_recover(const ts_hist_app_t *a, const uint8_t *buf)
{
    size_t          len;
    uint8_t        *b2;
    ts_hist_app_t  *a2;

    len = ts_hist_bytes(a);
    a2 = (ts_hist_app_t *) fz_blk[2];
    b2 = fz_buf[2];

    memset(a2, 0x5a, a->size);
    a2->pub = a->pub;
    a2->size = a->size;
    a2->cap = a->cap;
    a2->is_float = a->is_float;

    /* garbage where a dead writer may have left some */
    memset(b2, 0xa5, len + 64 < a->cap ? len + 64 : a->cap);
    memcpy(b2, buf, len);
    b2[0] = 0xff;

    if ((uint32_t) a->pub & 7) {
        b2[len - 1] |= (uint8_t) (0xff >> ((uint32_t) a->pub & 7));
    }

    if (ts_hist_recover(a2, b2) != TS_OK
        || memcmp(a2, a, sizeof(ts_hist_app_t)) != 0
        || memcmp(b2, buf, len) != 0)
    {
        abort();
    }

}


/* mode 2 */

typedef struct {
    fz_h_t      *s;
    uint32_t     n;
} fz_prog_ctx_t;


static double
fz_bucket(const ts_hist_t *h, int neg, int64_t idx)
{
    int64_t            at, abs;
    uint32_t           i, j, k, ns;
    const ts_hspan_t  *sp;

    sp = neg ? h->neg_spans : h->pos_spans;
    ns = neg ? h->n_neg_spans : h->n_pos_spans;
    at = 0;
    abs = 0;
    k = 0;

    for (i = 0; i < ns; i++) {
        at += sp[i].offset;

        for (j = 0; j < sp[i].length; j++, k++, at++) {
            if (!h->is_float) {
                abs += neg ? h->neg_deltas[k] : h->pos_deltas[k];
            }

            if (at == idx) {
                return h->is_float ? (neg ? h->neg_counts[k]
                                          : h->pos_counts[k])
                                   : (double) abs;
            }
        }
    }

    return 0;
}


static void
fz_prog_cmp(void *ctx, uint32_t i, int64_t t, const ts_hist_t *h)
{
    int              neg;
    int64_t          idx;
    fz_prog_ctx_t   *c;
    const ts_hist_t *w;

    c = ctx;

    if (i >= c->n || t != c->s[i].t || h->sum != c->s[i].h.sum) {
        abort();
    }

    w = &c->s[i].h;

    if (w->sum == TS_HIST_STALE_SUM) {
        return;
    }

    if (h->schema != w->schema || h->is_float != w->is_float
        || (h->is_float ? memcmp(&h->fcount, &w->fcount, 8) != 0
                        : h->count != w->count))
    {
        abort();
    }

    for (neg = 0; neg < 2; neg++) {
        for (idx = -2; idx < FZ_W + 2; idx++) {
            if (memcmp(&(double) { fz_bucket(h, neg, idx) },
                       &(double) { fz_bucket(w, neg, idx) }, 8) != 0)
            {
                abort();
            }
        }
    }
}


static void
fz_program(const uint8_t *data, size_t size)
{
    int           have[2][FZ_W], side, k, last, flt, gauge, schema;
    double        fsum;
    int64_t       t, cnt[2][FZ_W];
    uint32_t      n, i, ns, nb;
    uint64_t      total;
    fz_h_t       *s;
    fz_drv_t      d;
    ts_hist_t    *h;
    const uint8_t *p;
    fz_prog_ctx_t ctx;

    s = fz_samples;
    memset(have, 0, sizeof(have));
    memset(cnt, 0, sizeof(cnt));
    flt = 0;
    gauge = 0;
    schema = 0;
    t = 1000;
    n = 0;

    for (p = data; p + 4 <= data + size && n < FZ_MAXN; p += 4, n++) {
        side = p[1] >> 7;
        k = p[1] % FZ_W;

        if (p[0] & 0x08) {
            have[side][k] = 1;
        }

        if (p[0] & 0x10) {
            have[side][k] = 0;
        }

        if (p[0] & 0x20) {
            schema = (p[1] % 13) - 4;
        }

        if ((p[0] & 0x40) && (p[1] & 1)) {
            flt = !flt;
        }

        if (p[0] & 0x02) {
            gauge = !gauge;
        }

        cnt[side][k] = (p[0] & 0x80) ? cnt[side][k] / 2
                                     : cnt[side][k] + (p[2] << (p[2] & 7));
        t += 1 + ((int64_t) p[3] << (p[3] >> 4));

        memset(&s[n], 0, sizeof(fz_h_t));
        s[n].t = t;
        h = &s[n].h;
        h->is_float = (uint8_t) flt;
        h->reset_hint = gauge ? TS_HIST_HINT_GAUGE
                        : (p[0] & 0x04) ? TS_HIST_HINT_RESET : 0;

        if (p[0] & 0x01) {
            h->sum = TS_HIST_STALE_SUM;
            continue;
        }

        fsum = (double) p[2] / 4;
        memcpy(&h->sum, &fsum, 8);
        h->schema = schema;
        h->zero_threshold = (p[3] & 1) ? 0.001 : 0x1p-128;
        total = 0;

        for (side = 0; side < 2; side++) {
            ns = 0;
            nb = 0;

            for (k = 0, last = -1; k < FZ_W; k++) {
                if (!have[side][k]) {
                    continue;
                }

                if (ns > 0 && last == k - 1) {
                    s[n].sp[side][ns - 1].length++;

                } else {
                    s[n].sp[side][ns].offset = ns ? k - last - 1 : k;
                    s[n].sp[side][ns++].length = 1;
                }

                /* integer buckets are delta-encoded */
                s[n].c[side][nb] = (double) cnt[side][k] / 2;
                s[n].d[side][nb] = (int64_t) ((uint64_t) cnt[side][k]
                                   - (uint64_t) (last < 0 ? 0
                                                 : cnt[side][last]));
                total += (uint64_t) cnt[side][k];
                last = k;
                nb++;
            }

            if (side) {
                h->n_neg_spans = ns;
                h->n_neg = nb;

            } else {
                h->n_pos_spans = ns;
                h->n_pos = nb;
            }
        }

        h->count = total;
        h->fcount = (double) total / 2;
        h->pos_spans = s[n].sp[0];
        h->neg_spans = s[n].sp[1];
        h->pos_deltas = s[n].d[0];
        h->neg_deltas = s[n].d[1];
        h->pos_counts = s[n].c[0];
        h->neg_counts = s[n].c[1];
    }

    memset(&d, 0, sizeof(d));
    d.out = fz_out;

    for (i = 0; i < n; i++) {
        fz_drv_append(&d, s[i].t, &s[i].h);
    }

    fz_drv_close(&d);

    ctx.s = s;
    ctx.n = n;

    if (fz_decode_all(&d, fz_prog_cmp, &ctx) != n) {
        abort();
    }
}
