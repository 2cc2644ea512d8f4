/*
 * Copyright (C) ngx_tsdb authors
 *
 * WAL record payload codecs.  Layouts: docs/format/wal.md.
 *
 * Invariants.  Everything here is pure: no allocation, no I/O, no state
 * outside the caller's reader.  A reader only moves forward between pos
 * and end, checks every length and count against end - pos before using
 * it, and reports the end of a payload only when exactly "count" entries
 * consumed exactly every byte, so any truncation or extension of a valid
 * payload is TS_ERR_CORRUPT.  Sample deltas use unsigned wrap-around, so
 * any int64 timestamp and any ref round-trip without undefined behaviour.
 *
 * SAMPLES are written in layout 2 (one control byte per sample, deltas
 * only where they differ from the common case, values packed), and read
 * in both layouts, so that a WAL written by an older version replays.
 * Every value's bits round-trip: the integer form is chosen only when
 * converting back gives the same bits, so -0.0 and NaN payloads keep
 * theirs.  One exception to the truncation rule: a layout-2 payload cut
 * to its first byte is the valid empty layout-1 payload; the record's
 * CRC is what catches a torn payload.
 */

#include "ts_walrec.h"


#define TS_WALREC_VARINT_MAX   10
#define TS_WALREC_SAMPLE_MIN   10      /* two 1-byte varints + 8 bytes */
#define TS_WALREC_SERIES_MIN   2       /* ref + label count */
#define TS_WALREC_LABEL_MIN    2       /* two empty strings */
#define TS_WALREC_PACKED_MIN   1       /* a layout-2 control byte */
#define TS_WALREC_HIST_MIN     27      /* a histogram without buckets */

/* layout-2 control byte: value kind, delta flags, reserved bits */
#define TS_WALREC_C_KIND       0x0f
#define TS_WALREC_C_REF        0x10    /* a ref delta follows */
#define TS_WALREC_C_T          0x20    /* a time delta follows */
#define TS_WALREC_C_RESERVED   0xc0

/* kinds 0..8 are that many high-order bytes of the value's bits */
#define TS_WALREC_K_INT        9       /* zigzag uvarint of an integer */
#define TS_WALREC_K_REPEAT     10      /* the previous sample's value */

#define TS_WALREC_INT_MAX      9007199254740992.0      /* 2^53 */


/* What a layout-2 sample is encoded against: the previous one. */
typedef struct {
    uint64_t                ref;
    uint64_t                dref;
    uint64_t                t;
    uint64_t                v;
} ts_walrec_prev_t;


/* A layout-2 sample before it is written. */
typedef struct {
    uint8_t                 ctrl;
    size_t                  len;
    uint64_t                dref;
    uint64_t                dt;
    uint64_t                val;
} ts_walrec_packed_t;


static size_t ts_walrec_uvarint_len(uint64_t v);
static uint8_t *ts_walrec_put_uvarint(uint8_t *p, uint64_t v);
static uint64_t ts_walrec_zigzag(uint64_t v);
static uint64_t ts_walrec_unzigzag(uint64_t v);
static int ts_walrec_get_uvarint(ts_walrec_reader_t *rd, uint64_t *v);
static int ts_walrec_get64(ts_walrec_reader_t *rd, uint64_t *v);
static int ts_walrec_get_str(ts_walrec_reader_t *rd, ts_walrec_str_t *s);
static int ts_walrec_open(ts_walrec_reader_t *rd, const void *payload,
    size_t len, size_t min, uint64_t *count);
static int ts_walrec_end(ts_walrec_reader_t *rd);
static void ts_walrec_pack(const ts_walrec_sample_t *s,
    ts_walrec_prev_t *prev, ts_walrec_packed_t *pk);
static int ts_walrec_int(uint64_t v, uint64_t *zz);
static uint8_t *ts_walrec_put_packed(uint8_t *p,
    const ts_walrec_packed_t *pk);
static int ts_walrec_get_packed(ts_walrec_reader_t *rd);
static size_t ts_walrec_hist_size(const ts_walrec_hist_t *s);
static uint8_t *ts_walrec_put64(uint8_t *p, uint64_t v);
static uint8_t *ts_walrec_put_varint(uint8_t *p, int64_t v);
static uint8_t *ts_walrec_put_hist(uint8_t *p, const ts_walrec_hist_t *s);
static int ts_walrec_get_varint(ts_walrec_reader_t *rd, int64_t *v);
static int ts_walrec_get_count(ts_walrec_reader_t *rd, size_t min,
    uint32_t *n);
static void *ts_walrec_take(uint8_t **mem, size_t *left, size_t n);
static int ts_walrec_get_spans(ts_walrec_reader_t *rd, uint8_t **mem,
    size_t *left, const ts_hspan_t **out, uint32_t *n);
static int ts_walrec_get_buckets(ts_walrec_reader_t *rd, int fl,
    uint8_t **mem, size_t *left, const int64_t **deltas,
    const double **counts, uint32_t *n);
static int ts_walrec_get_hist(ts_walrec_reader_t *rd, ts_walrec_hist_t *s,
    uint8_t *mem, size_t left);


static size_t
ts_walrec_uvarint_len(uint64_t v)
{
    size_t  n;

    for (n = 1; v >= 0x80; n++) {
        v >>= 7;
    }

    return n;
}


static uint8_t *
ts_walrec_put_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t) (v | 0x80);
        v >>= 7;
    }

    *p++ = (uint8_t) v;

    return p;
}


/* Two's complement bits of a signed delta -> small unsigned number. */
static uint64_t
ts_walrec_zigzag(uint64_t v)
{
    return (v << 1) ^ (0 - (v >> 63));
}


static uint64_t
ts_walrec_unzigzag(uint64_t v)
{
    return (v >> 1) ^ (0 - (v & 1));
}


static int
ts_walrec_get_uvarint(ts_walrec_reader_t *rd, uint64_t *v)
{
    int       i;
    uint8_t   b;
    uint64_t  x;

    x = 0;

    for (i = 0; i < TS_WALREC_VARINT_MAX; i++) {
        if (rd->pos == rd->end) {
            return TS_ERR_CORRUPT;
        }

        b = *rd->pos++;

        if (i == TS_WALREC_VARINT_MAX - 1 && b > 1) {
            return TS_ERR_CORRUPT;
        }

        x |= (uint64_t) (b & 0x7f) << (7 * i);

        if (b < 0x80) {
            *v = x;
            return TS_OK;
        }
    }

    return TS_ERR_CORRUPT;
}


static int
ts_walrec_get64(ts_walrec_reader_t *rd, uint64_t *v)
{
    int       i;
    uint64_t  x;

    if (rd->end - rd->pos < 8) {
        return TS_ERR_CORRUPT;
    }

    x = 0;

    for (i = 0; i < 8; i++) {
        x |= (uint64_t) rd->pos[i] << (8 * i);
    }

    rd->pos += 8;
    *v = x;

    return TS_OK;
}


static int
ts_walrec_get_str(ts_walrec_reader_t *rd, ts_walrec_str_t *s)
{
    uint64_t  n;

    if (ts_walrec_get_uvarint(rd, &n) != TS_OK
        || n > (uint64_t) (rd->end - rd->pos))
    {
        return TS_ERR_CORRUPT;
    }

    s->data = rd->pos;
    s->len = (size_t) n;
    rd->pos += n;

    return TS_OK;
}


static int
ts_walrec_open(ts_walrec_reader_t *rd, const void *payload, size_t len,
    size_t min, uint64_t *count)
{
    uint64_t  n;

    rd->pos = payload;
    rd->end = len ? rd->pos + len : rd->pos;
    rd->left = 0;
    rd->ref = 0;
    rd->t = 0;
    rd->v = 0;
    rd->dref = 1;
    rd->started = 0;
    rd->layout = 0;

    if (len == 0 || ts_walrec_get_uvarint(rd, &n) != TS_OK
        || n > (uint64_t) (rd->end - rd->pos) / min)
    {
        rd->pos = rd->end;
        return TS_ERR_CORRUPT;
    }

    rd->left = n;

    if (count) {
        *count = n;
    }

    return TS_OK;
}


static int
ts_walrec_end(ts_walrec_reader_t *rd)
{
    return rd->pos == rd->end ? TS_ERR_NOTFOUND : TS_ERR_CORRUPT;
}


/* SERIES */

size_t
ts_walrec_series_size(const ts_walrec_series_t *s, size_t n)
{
    size_t                    i, k, size;
    const ts_walrec_label_t  *l;

    size = ts_walrec_uvarint_len(n);

    for (i = 0; i < n; i++) {
        size += ts_walrec_uvarint_len(s[i].ref)
                + ts_walrec_uvarint_len(s[i].nlabels);

        for (k = 0; k < s[i].nlabels; k++) {
            l = &s[i].labels[k];
            size += ts_walrec_uvarint_len(l->name.len) + l->name.len
                    + ts_walrec_uvarint_len(l->value.len) + l->value.len;
        }
    }

    return size;
}


int
ts_walrec_series_encode(uint8_t *buf, size_t size,
    const ts_walrec_series_t *s, size_t n, size_t *len)
{
    size_t                    i, k;
    uint8_t                  *p;
    const ts_walrec_label_t  *l;

    *len = ts_walrec_series_size(s, n);

    if (*len > size) {
        return TS_ERR_FULL;
    }

    p = ts_walrec_put_uvarint(buf, n);

    for (i = 0; i < n; i++) {
        p = ts_walrec_put_uvarint(p, s[i].ref);
        p = ts_walrec_put_uvarint(p, s[i].nlabels);

        for (k = 0; k < s[i].nlabels; k++) {
            l = &s[i].labels[k];

            p = ts_walrec_put_uvarint(p, l->name.len);
            if (l->name.len) {
                memcpy(p, l->name.data, l->name.len);
                p += l->name.len;
            }

            p = ts_walrec_put_uvarint(p, l->value.len);
            if (l->value.len) {
                memcpy(p, l->value.data, l->value.len);
                p += l->value.len;
            }
        }
    }

    return TS_OK;
}


int
ts_walrec_series_open(ts_walrec_reader_t *rd, const void *payload,
    size_t len, uint64_t *count)
{
    return ts_walrec_open(rd, payload, len, TS_WALREC_SERIES_MIN, count);
}


int
ts_walrec_series_next(ts_walrec_reader_t *rd, ts_walrec_series_t *s,
    ts_walrec_label_t *labels, size_t max)
{
    size_t    k;
    uint64_t  nl;

    if (rd->left == 0) {
        return ts_walrec_end(rd);
    }

    if (ts_walrec_get_uvarint(rd, &s->ref) != TS_OK
        || ts_walrec_get_uvarint(rd, &nl) != TS_OK
        || nl > (uint64_t) (rd->end - rd->pos) / TS_WALREC_LABEL_MIN)
    {
        return TS_ERR_CORRUPT;
    }

    if (nl > max) {
        return TS_ERR_LIMIT;
    }

    for (k = 0; k < nl; k++) {
        if (ts_walrec_get_str(rd, &labels[k].name) != TS_OK
            || ts_walrec_get_str(rd, &labels[k].value) != TS_OK)
        {
            return TS_ERR_CORRUPT;
        }
    }

    s->nlabels = (size_t) nl;
    s->labels = labels;
    rd->left--;

    return TS_OK;
}


/* SAMPLES */

/*
 * What one layout-2 sample takes, given the previous one, which it then
 * becomes.  A ref that moves by the same step as the one before and a
 * time equal to the one before cost nothing.
 */
static void
ts_walrec_pack(const ts_walrec_sample_t *s, ts_walrec_prev_t *prev,
    ts_walrec_packed_t *pk)
{
    unsigned  nb;
    uint64_t  iv, v;

    pk->ctrl = 0;
    pk->len = 1;

    if (s->ref - prev->ref != prev->dref) {
        prev->dref = s->ref - prev->ref;
        pk->ctrl |= TS_WALREC_C_REF;
        pk->dref = ts_walrec_zigzag(prev->dref);
        pk->len += ts_walrec_uvarint_len(pk->dref);
    }

    if ((uint64_t) s->t != prev->t) {
        pk->ctrl |= TS_WALREC_C_T;
        pk->dt = ts_walrec_zigzag((uint64_t) s->t - prev->t);
        pk->len += ts_walrec_uvarint_len(pk->dt);
    }

    v = prev->v;
    prev->ref = s->ref;
    prev->t = (uint64_t) s->t;
    prev->v = s->v;

    if (s->v == v && s->v != 0) {
        pk->ctrl |= TS_WALREC_K_REPEAT;
        return;
    }

    /* the high-order bytes up to the last non-zero one */
    nb = s->v ? 8 - (unsigned) __builtin_ctzll(s->v) / 8 : 0;

    if (nb > 1 && ts_walrec_int(s->v, &iv)
        && ts_walrec_uvarint_len(iv) < nb)
    {
        pk->ctrl |= TS_WALREC_K_INT;
        pk->val = iv;
        pk->len += ts_walrec_uvarint_len(iv);
        return;
    }

    pk->ctrl |= (uint8_t) nb;
    pk->val = nb ? s->v >> (64 - 8 * nb) : 0;
    pk->len += nb;
}


/*
 * An integer-valued float64 whose bits (double) (int64_t) x gives back
 * exactly: not -0.0, NaN, the infinities or anything past 2^53.
 */
static int
ts_walrec_int(uint64_t v, uint64_t *zz)
{
    double   f;
    int64_t  i;

    f = ts_walrec_u2f(v);

    if (!(f >= -TS_WALREC_INT_MAX && f <= TS_WALREC_INT_MAX)) {
        return 0;
    }

    i = (int64_t) f;

    if (ts_walrec_f2u((double) i) != v) {
        return 0;
    }

    *zz = ts_walrec_zigzag((uint64_t) i);

    return 1;
}


static uint8_t *
ts_walrec_put_packed(uint8_t *p, const ts_walrec_packed_t *pk)
{
    unsigned  k, nb;

    *p++ = pk->ctrl;

    if (pk->ctrl & TS_WALREC_C_REF) {
        p = ts_walrec_put_uvarint(p, pk->dref);
    }

    if (pk->ctrl & TS_WALREC_C_T) {
        p = ts_walrec_put_uvarint(p, pk->dt);
    }

    nb = pk->ctrl & TS_WALREC_C_KIND;

    if (nb == TS_WALREC_K_INT) {
        return ts_walrec_put_uvarint(p, pk->val);
    }

    if (nb == TS_WALREC_K_REPEAT) {
        return p;
    }

    for (k = 0; k < nb; k++) {
        *p++ = (uint8_t) (pk->val >> (8 * k));
    }

    return p;
}


static void
ts_walrec_prev_init(ts_walrec_prev_t *prev)
{
    prev->ref = 0;
    prev->dref = 1;
    prev->t = 0;
    prev->v = 0;
}


size_t
ts_walrec_samples_size(const ts_walrec_sample_t *s, size_t n)
{
    size_t              i, size;
    ts_walrec_prev_t    prev;
    ts_walrec_packed_t  pk;

    size = 2 + ts_walrec_uvarint_len(n);
    ts_walrec_prev_init(&prev);

    for (i = 0; i < n; i++) {
        ts_walrec_pack(&s[i], &prev, &pk);
        size += pk.len;
    }

    return size;
}


/* a packed sample: control byte, ref and time deltas, 8 value bytes */
#define TS_WALREC_PACKED_MAX  (1 + 10 + 10 + 8)

size_t
ts_walrec_samples_bound(size_t n)
{
    return 2 + ts_walrec_uvarint_len(n) + n * TS_WALREC_PACKED_MAX;
}


int
ts_walrec_samples_encode(uint8_t *buf, size_t size,
    const ts_walrec_sample_t *s, size_t n, size_t *len)
{
    size_t              i;
    uint8_t            *p, *end;
    ts_walrec_prev_t    prev;
    ts_walrec_packed_t  pk;

    end = buf + size;

    if (size < 2 + ts_walrec_uvarint_len(n)) {
        goto full;
    }

    buf[0] = 0;
    buf[1] = TS_WALREC_SAMPLES_LAYOUT;
    p = ts_walrec_put_uvarint(buf + 2, n);
    ts_walrec_prev_init(&prev);

    for (i = 0; i < n; i++) {
        ts_walrec_pack(&s[i], &prev, &pk);

        if (pk.len > (size_t) (end - p)) {
            goto full;
        }

        p = ts_walrec_put_packed(p, &pk);
    }

    *len = (size_t) (p - buf);

    return TS_OK;

full:

    *len = ts_walrec_samples_size(s, n);

    return TS_ERR_FULL;
}


int
ts_walrec_samples_open(ts_walrec_reader_t *rd, const void *payload,
    size_t len, uint64_t *count)
{
    int             rc;
    const uint8_t  *p;

    p = payload;

    if (len < 2 || p[0] != 0) {
        rc = ts_walrec_open(rd, payload, len, TS_WALREC_SAMPLE_MIN, count);
        rd->layout = 1;
        return rc;
    }

    rc = ts_walrec_open(rd, p + 2, len - 2, TS_WALREC_PACKED_MIN, count);
    rd->layout = TS_WALREC_SAMPLES_LAYOUT;

    if (rc == TS_OK && p[1] != TS_WALREC_SAMPLES_LAYOUT) {
        rd->pos = rd->end;
        rd->left = 0;
        return TS_ERR_CORRUPT;
    }

    return rc;
}


int
ts_walrec_samples_next(ts_walrec_reader_t *rd, ts_walrec_sample_t *s)
{
    int       rc;
    uint64_t  dref, dt, v;

    if (rd->left == 0) {
        return ts_walrec_end(rd);
    }

    if (rd->layout == TS_WALREC_SAMPLES_LAYOUT) {
        rc = ts_walrec_get_packed(rd);
        if (rc != TS_OK) {
            return rc;
        }

    } else {
        if (ts_walrec_get_uvarint(rd, &dref) != TS_OK
            || ts_walrec_get_uvarint(rd, &dt) != TS_OK
            || ts_walrec_get64(rd, &v) != TS_OK)
        {
            return TS_ERR_CORRUPT;
        }

        rd->ref = rd->started ? rd->ref + ts_walrec_unzigzag(dref) : dref;
        rd->t += ts_walrec_unzigzag(dt);
        rd->v = v;
    }

    rd->started = 1;
    rd->left--;

    s->ref = rd->ref;
    s->t = (int64_t) rd->t;
    s->v = rd->v;

    return TS_OK;
}


/* One layout-2 sample into rd->ref, rd->t and rd->v. */
static int
ts_walrec_get_packed(ts_walrec_reader_t *rd)
{
    unsigned  c, k, nb;
    uint64_t  x;

    if (rd->pos == rd->end) {
        return TS_ERR_CORRUPT;
    }

    c = *rd->pos++;
    nb = c & TS_WALREC_C_KIND;

    if ((c & TS_WALREC_C_RESERVED) || nb > TS_WALREC_K_REPEAT) {
        return TS_ERR_CORRUPT;
    }

    if (c & TS_WALREC_C_REF) {
        if (ts_walrec_get_uvarint(rd, &x) != TS_OK) {
            return TS_ERR_CORRUPT;
        }

        rd->dref = ts_walrec_unzigzag(x);
    }

    rd->ref += rd->dref;

    if (c & TS_WALREC_C_T) {
        if (ts_walrec_get_uvarint(rd, &x) != TS_OK) {
            return TS_ERR_CORRUPT;
        }

        rd->t += ts_walrec_unzigzag(x);
    }

    if (nb == TS_WALREC_K_REPEAT) {
        return TS_OK;
    }

    if (nb == TS_WALREC_K_INT) {
        if (ts_walrec_get_uvarint(rd, &x) != TS_OK) {
            return TS_ERR_CORRUPT;
        }

        rd->v = ts_walrec_f2u((double) (int64_t) ts_walrec_unzigzag(x));
        return TS_OK;
    }

    if ((size_t) (rd->end - rd->pos) < nb) {
        return TS_ERR_CORRUPT;
    }

    for (x = 0, k = 0; k < nb; k++) {
        x |= (uint64_t) rd->pos[k] << (8 * k);
    }

    rd->pos += nb;
    rd->v = nb ? x << (64 - 8 * nb) : 0;

    return TS_OK;
}


int
ts_walrec_samples_decode(const void *payload, size_t len,
    ts_walrec_sample_t *out, size_t max, size_t *n)
{
    int                 rc;
    uint64_t            count;
    ts_walrec_reader_t  rd;

    *n = 0;

    rc = ts_walrec_samples_open(&rd, payload, len, &count);
    if (rc != TS_OK) {
        return rc;
    }

    if (count > max) {
        return TS_ERR_LIMIT;
    }

    while (rd.left) {
        rc = ts_walrec_samples_next(&rd, &out[*n]);
        if (rc != TS_OK) {
            return rc;
        }

        (*n)++;
    }

    return ts_walrec_end(&rd) == TS_ERR_NOTFOUND ? TS_OK : TS_ERR_CORRUPT;
}


/* HISTOGRAM_SAMPLES */


static size_t
ts_walrec_hist_size(const ts_walrec_hist_t *s)
{
    size_t            n;
    uint32_t          i, k;
    const ts_hist_t  *h;
    const ts_hspan_t *sp;

    h = &s->h;
    n = ts_walrec_uvarint_len(s->ref)
        + ts_walrec_uvarint_len(ts_walrec_zigzag((uint64_t) s->t)) + 1
        + ts_walrec_uvarint_len(ts_walrec_zigzag((uint64_t) (int64_t)
                                                 h->schema))
        + 16;

    n += h->is_float ? 16 : ts_walrec_uvarint_len(h->count)
                            + ts_walrec_uvarint_len(h->zero_count);

    for (k = 0; k < 2; k++) {
        sp = k ? h->neg_spans : h->pos_spans;
        n += ts_walrec_uvarint_len(k ? h->n_neg_spans : h->n_pos_spans);

        for (i = 0; i < (k ? h->n_neg_spans : h->n_pos_spans); i++) {
            n += ts_walrec_uvarint_len(ts_walrec_zigzag((uint64_t) (int64_t)
                                                        sp[i].offset))
                 + ts_walrec_uvarint_len(sp[i].length);
        }
    }

    for (k = 0; k < 2; k++) {
        n += ts_walrec_uvarint_len(k ? h->n_neg : h->n_pos);

        for (i = 0; i < (k ? h->n_neg : h->n_pos); i++) {
            n += h->is_float ? 8
                 : ts_walrec_uvarint_len(ts_walrec_zigzag((uint64_t)
                       (k ? h->neg_deltas[i] : h->pos_deltas[i])));
        }
    }

    return n + ts_walrec_uvarint_len(h->n_custom) + 8 * (size_t) h->n_custom;
}


size_t
ts_walrec_hists_size(const ts_walrec_hist_t *s, size_t n)
{
    size_t  i, size;

    size = 1 + ts_walrec_uvarint_len(n);

    for (i = 0; i < n; i++) {
        size += ts_walrec_hist_size(&s[i]);
    }

    return size;
}


static uint8_t *
ts_walrec_put64(uint8_t *p, uint64_t v)
{
    int  i;

    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t) (v >> (8 * i));
    }

    return p + 8;
}


static uint8_t *
ts_walrec_put_varint(uint8_t *p, int64_t v)
{
    return ts_walrec_put_uvarint(p, ts_walrec_zigzag((uint64_t) v));
}


static uint8_t *
ts_walrec_put_hist(uint8_t *p, const ts_walrec_hist_t *s)
{
    uint32_t          i, k, ns, nb;
    const ts_hist_t  *h;
    const ts_hspan_t *sp;

    h = &s->h;
    p = ts_walrec_put_uvarint(p, s->ref);
    p = ts_walrec_put_varint(p, s->t);
    *p++ = (uint8_t) ((h->is_float ? 1 : 0) | (h->reset_hint & 3) << 1);
    p = ts_walrec_put_varint(p, h->schema);
    p = ts_walrec_put64(p, ts_walrec_f2u(h->zero_threshold));
    p = ts_walrec_put64(p, h->sum);

    if (h->is_float) {
        p = ts_walrec_put64(p, ts_walrec_f2u(h->fcount));
        p = ts_walrec_put64(p, ts_walrec_f2u(h->fzero_count));

    } else {
        p = ts_walrec_put_uvarint(p, h->count);
        p = ts_walrec_put_uvarint(p, h->zero_count);
    }

    for (k = 0; k < 2; k++) {
        sp = k ? h->neg_spans : h->pos_spans;
        ns = k ? h->n_neg_spans : h->n_pos_spans;
        p = ts_walrec_put_uvarint(p, ns);

        for (i = 0; i < ns; i++) {
            p = ts_walrec_put_varint(p, sp[i].offset);
            p = ts_walrec_put_uvarint(p, sp[i].length);
        }
    }

    for (k = 0; k < 2; k++) {
        nb = k ? h->n_neg : h->n_pos;
        p = ts_walrec_put_uvarint(p, nb);

        for (i = 0; i < nb; i++) {
            if (h->is_float) {
                p = ts_walrec_put64(p, ts_walrec_f2u(k ? h->neg_counts[i]
                                                       : h->pos_counts[i]));

            } else {
                p = ts_walrec_put_varint(p, k ? h->neg_deltas[i]
                                              : h->pos_deltas[i]);
            }
        }
    }

    p = ts_walrec_put_uvarint(p, h->n_custom);

    for (i = 0; i < h->n_custom; i++) {
        p = ts_walrec_put64(p, ts_walrec_f2u(h->custom_values[i]));
    }

    return p;
}


int
ts_walrec_hists_encode(uint8_t *buf, size_t size, const ts_walrec_hist_t *s,
    size_t n, size_t *len)
{
    size_t    i, need;
    uint8_t  *p;

    need = ts_walrec_hists_size(s, n);
    *len = need;

    if (size < need) {
        return TS_ERR_FULL;
    }

    p = buf;
    *p++ = TS_WALREC_HISTS_LAYOUT;
    p = ts_walrec_put_uvarint(p, n);

    for (i = 0; i < n; i++) {
        p = ts_walrec_put_hist(p, &s[i]);
    }

    return TS_OK;
}


int
ts_walrec_hists_open(ts_walrec_reader_t *rd, const void *payload,
    size_t len, uint64_t *count)
{
    const uint8_t  *p;

    p = payload;

    if (len < 2 || p[0] != TS_WALREC_HISTS_LAYOUT) {
        rd->pos = rd->end = p;
        rd->left = 0;
        return TS_ERR_CORRUPT;
    }

    return ts_walrec_open(rd, p + 1, len - 1, TS_WALREC_HIST_MIN, count);
}


static int
ts_walrec_get_varint(ts_walrec_reader_t *rd, int64_t *v)
{
    uint64_t  u;

    if (ts_walrec_get_uvarint(rd, &u) != TS_OK) {
        return TS_ERR_CORRUPT;
    }

    *v = (int64_t) ts_walrec_unzigzag(u);

    return TS_OK;
}


/* a count of entries of at least min bytes each, checked against the
 * bytes left before anything is taken for them */

static int
ts_walrec_get_count(ts_walrec_reader_t *rd, size_t min, uint32_t *n)
{
    uint64_t  u;

    if (ts_walrec_get_uvarint(rd, &u) != TS_OK
        || u > (uint64_t) (rd->end - rd->pos) / min)
    {
        return TS_ERR_CORRUPT;
    }

    *n = (uint32_t) u;

    return TS_OK;
}


static void *
ts_walrec_take(uint8_t **mem, size_t *left, size_t n)
{
    void  *p;

    if (n > *left) {
        return NULL;
    }

    p = *mem;
    *mem += n;
    *left -= n;

    return p;
}


static int
ts_walrec_get_spans(ts_walrec_reader_t *rd, uint8_t **mem, size_t *left,
    const ts_hspan_t **out, uint32_t *n)
{
    int64_t      off;
    uint32_t     i;
    uint64_t     len;
    ts_hspan_t  *sp;

    if (ts_walrec_get_count(rd, 2, n) != TS_OK) {
        return TS_ERR_CORRUPT;
    }

    sp = ts_walrec_take(mem, left, *n * sizeof(ts_hspan_t));
    if (sp == NULL) {
        return TS_ERR_LIMIT;
    }

    for (i = 0; i < *n; i++) {
        if (ts_walrec_get_varint(rd, &off) != TS_OK
            || ts_walrec_get_uvarint(rd, &len) != TS_OK
            || off < INT32_MIN || off > INT32_MAX || len > UINT32_MAX)
        {
            return TS_ERR_CORRUPT;
        }

        sp[i].offset = (int32_t) off;
        sp[i].length = (uint32_t) len;
    }

    *out = sp;

    return TS_OK;
}


static int
ts_walrec_get_buckets(ts_walrec_reader_t *rd, int fl, uint8_t **mem,
    size_t *left, const int64_t **deltas, const double **counts,
    uint32_t *n)
{
    uint32_t   i;
    uint64_t  *v;

    if (ts_walrec_get_count(rd, fl ? 8 : 1, n) != TS_OK) {
        return TS_ERR_CORRUPT;
    }

    v = ts_walrec_take(mem, left, *n * sizeof(uint64_t));
    if (v == NULL) {
        return TS_ERR_LIMIT;
    }

    for (i = 0; i < *n; i++) {
        if ((fl ? ts_walrec_get64(rd, &v[i])
                : ts_walrec_get_varint(rd, (int64_t *) &v[i])) != TS_OK)
        {
            return TS_ERR_CORRUPT;
        }
    }

    *deltas = fl ? NULL : (const int64_t *) v;
    *counts = fl ? (const double *) v : NULL;

    return TS_OK;
}


static int
ts_walrec_get_hist(ts_walrec_reader_t *rd, ts_walrec_hist_t *s,
    uint8_t *mem, size_t left)
{
    int             rc;
    int64_t         schema;
    uint64_t        zt, c, z;
    ts_hist_t      *h;
    const int64_t  *none;

    h = &s->h;
    memset(h, 0, sizeof(ts_hist_t));

    if (ts_walrec_get_uvarint(rd, &s->ref) != TS_OK
        || ts_walrec_get_varint(rd, &s->t) != TS_OK
        || rd->pos == rd->end || (*rd->pos & ~0x07) != 0)
    {
        return TS_ERR_CORRUPT;
    }

    h->is_float = *rd->pos & 1;
    h->reset_hint = (*rd->pos++ >> 1) & 3;

    if (ts_walrec_get_varint(rd, &schema) != TS_OK
        || schema < INT32_MIN || schema > INT32_MAX
        || ts_walrec_get64(rd, &zt) != TS_OK
        || ts_walrec_get64(rd, &h->sum) != TS_OK)
    {
        return TS_ERR_CORRUPT;
    }

    h->schema = (int32_t) schema;
    h->zero_threshold = ts_walrec_u2f(zt);

    rc = h->is_float
         ? ts_walrec_get64(rd, &c) | ts_walrec_get64(rd, &z)
         : ts_walrec_get_uvarint(rd, &c) | ts_walrec_get_uvarint(rd, &z);
    if (rc != TS_OK) {
        return TS_ERR_CORRUPT;
    }

    h->count = h->is_float ? 0 : c;
    h->zero_count = h->is_float ? 0 : z;
    h->fcount = h->is_float ? ts_walrec_u2f(c) : 0;
    h->fzero_count = h->is_float ? ts_walrec_u2f(z) : 0;

    if ((rc = ts_walrec_get_spans(rd, &mem, &left, &h->pos_spans,
                                  &h->n_pos_spans)) != TS_OK
        || (rc = ts_walrec_get_spans(rd, &mem, &left, &h->neg_spans,
                                     &h->n_neg_spans)) != TS_OK
        || (rc = ts_walrec_get_buckets(rd, h->is_float, &mem, &left,
                                       &h->pos_deltas, &h->pos_counts,
                                       &h->n_pos)) != TS_OK
        || (rc = ts_walrec_get_buckets(rd, h->is_float, &mem, &left,
                                       &h->neg_deltas, &h->neg_counts,
                                       &h->n_neg)) != TS_OK
        || (rc = ts_walrec_get_buckets(rd, 1, &mem, &left,
                                       &none,
                                       &h->custom_values, &h->n_custom))
           != TS_OK)
    {
        return rc;
    }

    return TS_OK;
}


int
ts_walrec_hists_next(ts_walrec_reader_t *rd, ts_walrec_hist_t *s,
    void *mem, size_t memlen)
{
    int                 rc;
    ts_walrec_reader_t  save;

    if (rd->left == 0) {
        return ts_walrec_end(rd);
    }

    save = *rd;

    rc = ts_walrec_get_hist(rd, s, mem, memlen);

    if (rc == TS_ERR_LIMIT) {
        *rd = save;
        return rc;
    }

    if (rc != TS_OK) {
        rd->pos = rd->end;
        rd->left = 0;
        return TS_ERR_CORRUPT;
    }

    rd->left--;

    return TS_OK;
}


const char *
ts_walrec_type_name(unsigned type)
{
    switch (type) {

    case TS_WALREC_SERIES:
        return "series";

    case TS_WALREC_SAMPLES:
        return "samples";

    case TS_WALREC_HISTOGRAM_SAMPLES:
        return "histogram_samples";

    case TS_WALREC_TOMBSTONES:
        return "tombstones";

    case TS_WALREC_EXEMPLARS:
        return "exemplars";

    default:
        return "unknown";
    }
}
