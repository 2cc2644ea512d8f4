/*
 * Copyright (C) ngx_tsdb authors
 *
 * Prometheus XOR chunk codec, byte-compatible with tsdb/chunkenc xor.go
 * and bstream.go as of Prometheus 3 (older writers may add one zero byte
 * at the end, which decoders ignore).  Bits go MSB first; a sample is
 * never split into a partial write.
 *
 * Invariants:
 *
 * - "pub" (count << 32 | length in bits) is the commit point.  An append
 *   writes its bits, then the state fields, then the header count, and
 *   stores "pub" last with release order.  Readers load "pub" once with
 *   acquire order and use nothing the writer did after it; they never
 *   trust the header count in the live buffer.
 * - Bits before the published end are never changed again.  The writer
 *   rewrites the byte holding the end (with the same published bits) and
 *   the bytes after it, so whatever a dead writer left there is simply
 *   overwritten.  Readers clear the bits after the end in their copy.
 * - An append either writes the whole sample or returns an error having
 *   changed nothing: its exact size is known before the first write.
 * - A writer killed mid-append leaves "pub" at the previous sample while
 *   t, tdelta, v and the window may be one sample ahead;
 *   ts_xor_recover() decodes the published samples to rebuild them.
 * - The decoder reads data only below len (64-bit loads near the end go
 *   through a zero-filled copy), checks the consumed length once per
 *   sample and stops at the header count: bounded work per call.
 */


#include <string.h>

#include "ts_chunk.h"
#include "ts_error.h"


#define TS_XOR_PUB(n, bits)  ((uint64_t) (n) << 32 | (uint64_t) (bits))
#define TS_XOR_PUB_N(pub)    ((uint32_t) ((pub) >> 32))
#define TS_XOR_PUB_BITS(pub) ((uint32_t) (pub))

#define TS_XOR_NO_WINDOW     0xff


static unsigned ts_xor_dod(uint64_t dod, uint64_t *code);
static void ts_xor_value(const ts_xor_appender_t *a, uint64_t v,
    ts_xor_val_t *x);
static unsigned ts_xor_uvarint(uint8_t *p, uint64_t x);
static int ts_xor_first(ts_xor_appender_t *a, uint8_t *buf, int64_t t,
    uint64_t v);
static int ts_xor_second(ts_xor_appender_t *a, uint8_t *buf, int64_t t,
    uint64_t v);
static int ts_xor_later(ts_xor_appender_t *a, uint8_t *buf, int64_t t,
    uint64_t v);
static uint32_t ts_xor_put(uint8_t *buf, size_t cap, uint32_t pos,
    uint64_t u, unsigned n);
static uint32_t ts_xor_put56(uint8_t *buf, size_t cap, uint32_t pos,
    uint64_t u, unsigned n);
static void ts_xor_commit(ts_xor_appender_t *a, uint8_t *buf, int64_t t,
    uint64_t v, uint64_t tdelta, uint32_t bits);
static uint64_t ts_xor_peek(const ts_xor_iter_t *it);
static uint64_t ts_xor_read(ts_xor_iter_t *it, unsigned n);
static int ts_xor_read_uvarint(ts_xor_iter_t *it, uint64_t *x);
static int ts_xor_read_first(ts_xor_iter_t *it);
static int ts_xor_read_second(ts_xor_iter_t *it);
static int ts_xor_read_later(ts_xor_iter_t *it);
static int ts_xor_read_value(ts_xor_iter_t *it);
static int ts_xor_read_value_w(ts_xor_iter_t *it, uint64_t w,
    unsigned used);
static int ts_xor_advance(ts_xor_iter_t *it, uint64_t tdelta);


/* the 4-bit dod prefix read ahead: bits it takes, payload width */
static const uint8_t  ts_xor_dod_prefix[16] = {
    1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4
};

static const uint8_t  ts_xor_dod_width[16] = {
    0, 0, 0, 0, 0, 0, 0, 0, 14, 14, 14, 14, 17, 17, 20, 64
};


static inline uint64_t
ts_xor_load_be64(const uint8_t *p)
{
    uint64_t  w;

    memcpy(&w, p, 8);

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w = __builtin_bswap64(w);
#endif

    return w;
}


static inline void
ts_xor_store_be64(uint8_t *p, uint64_t w)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w = __builtin_bswap64(w);
#endif

    memcpy(p, &w, 8);
}


int
ts_xor_init(ts_xor_appender_t *a, uint8_t *buf, size_t cap)
{
    if (cap < TS_XOR_MIN_CAP || cap > TS_XOR_MAX_CAP) {
        return TS_ERR_INVALID;
    }

    a->tdelta = 0;
    a->v = 0;
    a->t = 0;
    a->cap = (uint32_t) cap;
    a->leading = TS_XOR_NO_WINDOW;
    a->trailing = 0;

    buf[0] = 0;
    buf[1] = 0;

    __atomic_store_n(&a->pub, TS_XOR_PUB(0, TS_XOR_HEADER_SIZE * 8),
                     __ATOMIC_RELEASE);

    return TS_OK;
}


int
ts_xor_append(ts_xor_appender_t *a, uint8_t *buf, int64_t t, double v)
{
    uint64_t  bits;

    memcpy(&bits, &v, sizeof(bits));

    return ts_xor_append_bits(a, buf, t, bits);
}


int
ts_xor_append_bits(ts_xor_appender_t *a, uint8_t *buf, int64_t t,
    uint64_t v)
{
    uint32_t  n;

    /* the writer's own fields need no atomic load */
    n = TS_XOR_PUB_N(a->pub);

    if (n >= 2) {
        if (t <= a->t) {
            return TS_ERR_OUT_OF_ORDER;
        }

        if (n == TS_XOR_MAX_SAMPLES) {
            return TS_ERR_FULL;
        }

        return ts_xor_later(a, buf, t, v);
    }

    if (n == 0) {
        return ts_xor_first(a, buf, t, v);
    }

    if (t <= a->t) {
        return TS_ERR_OUT_OF_ORDER;
    }

    return ts_xor_second(a, buf, t, v);
}


static int
ts_xor_first(ts_xor_appender_t *a, uint8_t *buf, int64_t t, uint64_t v)
{
    unsigned  k;
    uint8_t   var[10];
    uint32_t  pos;

    /* zigzag, as Go's binary.PutVarint */
    k = ts_xor_uvarint(var, (uint64_t) t << 1 ^ (0 - ((uint64_t) t >> 63)));

    pos = TS_XOR_HEADER_SIZE * 8;
    memcpy(buf + TS_XOR_HEADER_SIZE, var, k);
    pos = ts_xor_put(buf, a->cap, pos + k * 8, v, 64);

    ts_xor_commit(a, buf, t, v, 0, pos);

    return TS_OK;
}


static int
ts_xor_second(ts_xor_appender_t *a, uint8_t *buf, int64_t t, uint64_t v)
{
    unsigned      k;
    uint8_t       var[10];
    uint32_t      pos;
    uint64_t      tdelta;
    ts_xor_val_t  x;

    tdelta = (uint64_t) t - (uint64_t) a->t;
    k = ts_xor_uvarint(var, tdelta);
    ts_xor_value(a, v, &x);

    pos = TS_XOR_PUB_BITS(a->pub);

    if (pos + k * 8 + x.nctl + x.nsig > (uint64_t) a->cap * 8) {
        return TS_ERR_FULL;
    }

    /* the first sample is whole bytes: the delta starts byte-aligned */
    memcpy(buf + pos / 8, var, k);
    pos = ts_xor_put(buf, a->cap, pos + k * 8, x.ctl, x.nctl);

    if (x.nsig) {
        pos = ts_xor_put(buf, a->cap, pos, x.sig, x.nsig);
    }

    a->leading = x.leading;
    a->trailing = x.trailing;
    ts_xor_commit(a, buf, t, v, tdelta, pos);

    return TS_OK;
}


static int
ts_xor_later(ts_xor_appender_t *a, uint8_t *buf, int64_t t, uint64_t v)
{
    unsigned      nts;
    uint32_t      pos;
    uint64_t      tdelta, dod, ts;
    ts_xor_val_t  x;

    tdelta = (uint64_t) t - (uint64_t) a->t;
    dod = tdelta - a->tdelta;

    nts = ts_xor_dod(dod, &ts);
    ts_xor_value(a, v, &x);

    pos = TS_XOR_PUB_BITS(a->pub);

    if (pos + nts + (nts == 4 ? 64 : 0) + x.nctl + x.nsig
        > (uint64_t) a->cap * 8)
    {
        return TS_ERR_FULL;
    }

    if (nts == 4) {
        pos = ts_xor_put(buf, a->cap, pos, ts, 4);
        pos = ts_xor_put(buf, a->cap, pos, dod, 64);
        pos = ts_xor_put(buf, a->cap, pos, x.ctl, x.nctl);

    } else {
        /* at most 24 + 13 bits: one write for the common case */
        pos = ts_xor_put(buf, a->cap, pos, ts << x.nctl | x.ctl,
                         nts + x.nctl);
    }

    if (x.nsig) {
        pos = ts_xor_put(buf, a->cap, pos, x.sig, x.nsig);
    }

    a->leading = x.leading;
    a->trailing = x.trailing;
    ts_xor_commit(a, buf, t, v, tdelta, pos);

    return TS_OK;
}


/*
 * The dod field in *code, its width returned; for the 64-bit bucket only
 * the 4-bit prefix, the caller writes the payload.  The buckets are Go's
 * bitRange(dod, n), -(2^(n-1) - 1) <= dod <= 2^(n-1), tested here in
 * unsigned arithmetic.
 */

static unsigned
ts_xor_dod(uint64_t dod, uint64_t *code)
{
    if (dod == 0) {
        *code = 0;
        return 1;
    }

    if (dod + 8191 <= 16383) {
        *code = 0x2 << 14 | (dod & 0x3fff);
        return 16;
    }

    if (dod + 65535 <= 131071) {
        *code = 0x6 << 17 | (dod & 0x1ffff);
        return 20;
    }

    if (dod + 524287 <= 1048575) {
        *code = 0xe << 20 | (dod & 0xfffff);
        return 24;
    }

    /* the 64-bit payload follows */
    *code = 0xf;
    return 4;
}


/*
 * Go's xorWrite.  The "no window yet" sentinel 0xff needs no test of its
 * own: leading is clamped to 31, so "leading >= 0xff" never holds.
 */

static void
ts_xor_value(const ts_xor_appender_t *a, uint64_t v, ts_xor_val_t *x)
{
    unsigned  leading, trailing;
    uint64_t  delta;

    delta = v ^ a->v;

    x->leading = a->leading;
    x->trailing = a->trailing;

    if (delta == 0) {
        x->ctl = 0;
        x->nctl = 1;
        x->nsig = 0;
        return;
    }

    leading = (unsigned) __builtin_clzll(delta);
    trailing = (unsigned) __builtin_ctzll(delta);

    if (leading > 31) {
        leading = 31;
    }

    if (leading >= a->leading && trailing >= a->trailing) {
        x->ctl = 0x2;
        x->nctl = 2;
        x->nsig = (uint8_t) (64 - a->leading - a->trailing);
        x->sig = delta >> a->trailing;
        return;
    }

    /* a 64-bit width is written as 0 in its 6-bit field */
    x->nsig = (uint8_t) (64 - leading - trailing);
    x->ctl = 0x3 << 11 | leading << 6 | (x->nsig & 0x3f);
    x->nctl = 13;
    x->sig = delta >> trailing;
    x->leading = (uint8_t) leading;
    x->trailing = (uint8_t) trailing;
}


static unsigned
ts_xor_uvarint(uint8_t *p, uint64_t x)
{
    unsigned  k;

    for (k = 0; x >= 0x80; k++) {
        p[k] = (uint8_t) (x | 0x80);
        x >>= 7;
    }

    p[k] = (uint8_t) x;

    return k + 1;
}


/* writes the n (0 < n <= 64) low bits of u; u has no bits above them */

static inline uint32_t
ts_xor_put(uint8_t *buf, size_t cap, uint32_t pos, uint64_t u, unsigned n)
{
    if (n > 56) {
        pos = ts_xor_put56(buf, cap, pos, u >> 32, n - 32);
        u &= 0xffffffff;
        n = 32;
    }

    return ts_xor_put56(buf, cap, pos, u, n);
}


/*
 * The byte at pos keeps its bits before pos and the rest of the 8-byte
 * window is rewritten; near the end of the buffer only the bytes the
 * bits reach are stored.  The caller checked that they fit.
 */

static inline uint32_t
ts_xor_put56(uint8_t *buf, size_t cap, uint32_t pos, uint64_t u, unsigned n)
{
    size_t    i, k, nb;
    unsigned  s;
    uint64_t  w;

    i = pos >> 3;
    s = pos & 7;

    w = (uint64_t) (buf[i] & (0xff00 >> s)) << 56 | u << (64 - s - n);

    if (i + 8 <= cap) {
        ts_xor_store_be64(buf + i, w);

    } else {
        nb = (s + n + 7) >> 3;

        for (k = 0; k < nb; k++) {
            buf[i + k] = (uint8_t) (w >> (56 - 8 * k));
        }
    }

    return pos + n;
}


static void
ts_xor_commit(ts_xor_appender_t *a, uint8_t *buf, int64_t t, uint64_t v,
    uint64_t tdelta, uint32_t bits)
{
    uint32_t  n;

    n = TS_XOR_PUB_N(a->pub) + 1;

    a->t = t;
    a->v = v;
    a->tdelta = tdelta;

    buf[0] = (uint8_t) (n >> 8);
    buf[1] = (uint8_t) n;

    __atomic_store_n(&a->pub, TS_XOR_PUB(n, bits), __ATOMIC_RELEASE);
}


uint32_t
ts_xor_count(const ts_xor_appender_t *a)
{
    return TS_XOR_PUB_N(__atomic_load_n(&a->pub, __ATOMIC_ACQUIRE));
}


size_t
ts_xor_bytes(const ts_xor_appender_t *a)
{
    uint32_t  bits;

    bits = TS_XOR_PUB_BITS(__atomic_load_n(&a->pub, __ATOMIC_ACQUIRE));

    return ((size_t) bits + 7) >> 3;
}


int
ts_xor_snapshot(const ts_xor_appender_t *a, const uint8_t *buf,
    uint8_t *dst, size_t *len)
{
    size_t    size;
    uint32_t  n, bits;
    uint64_t  pub;

    pub = __atomic_load_n(&a->pub, __ATOMIC_ACQUIRE);
    n = TS_XOR_PUB_N(pub);
    bits = TS_XOR_PUB_BITS(pub);
    size = ((size_t) bits + 7) >> 3;

    if (size > *len) {
        return TS_ERR_FULL;
    }

    dst[0] = (uint8_t) (n >> 8);
    dst[1] = (uint8_t) n;
    memcpy(dst + TS_XOR_HEADER_SIZE, buf + TS_XOR_HEADER_SIZE,
           size - TS_XOR_HEADER_SIZE);

    /* the writer may already be filling the rest of the last byte */
    if (bits & 7) {
        dst[size - 1] &= (uint8_t) (0xff00 >> (bits & 7));
    }

    *len = size;

    return TS_OK;
}


int
ts_xor_recover(ts_xor_appender_t *a, uint8_t *buf)
{
    int            rc;
    double         v;
    int64_t        t;
    uint32_t       bits;
    ts_xor_iter_t  it;

    bits = TS_XOR_PUB_BITS(a->pub);

    if (a->cap < TS_XOR_MIN_CAP || a->cap > TS_XOR_MAX_CAP
        || bits < TS_XOR_HEADER_SIZE * 8 || bits > (uint64_t) a->cap * 8
        || TS_XOR_PUB_N(a->pub) > TS_XOR_MAX_SAMPLES)
    {
        return TS_ERR_CORRUPT;
    }

    ts_xor_iter_init_live(&it, a, buf);

    while ((rc = ts_xor_iter_next(&it, &t, &v)) == 1) {
        /* void */
    }

    if (rc != 0 || it.pos != bits) {
        return TS_ERR_CORRUPT;
    }

    a->t = it.t;
    a->v = it.v;
    a->tdelta = it.tdelta;
    a->leading = it.leading;
    a->trailing = it.trailing;

    buf[0] = (uint8_t) (it.n >> 8);
    buf[1] = (uint8_t) it.n;

    if (bits & 7) {
        buf[bits >> 3] &= (uint8_t) (0xff00 >> (bits & 7));
    }

    return TS_OK;
}


void
ts_xor_iter_init(ts_xor_iter_t *it, const uint8_t *data, size_t len)
{
    /* no chunk is longer: later bytes are never needed */
    if (len > TS_XOR_MAX_CAP) {
        len = TS_XOR_MAX_CAP;
    }

    it->data = data;
    it->len = len;
    it->pos = TS_XOR_HEADER_SIZE * 8;
    it->end = (uint64_t) len * 8;
    it->tdelta = 0;
    it->v = 0;
    it->t = 0;
    it->i = 0;
    it->leading = TS_XOR_NO_WINDOW;
    it->trailing = 0;

    if (len < TS_XOR_HEADER_SIZE) {
        it->n = 0;
        it->err = TS_ERR_CORRUPT;
        return;
    }

    it->n = (uint32_t) data[0] << 8 | data[1];
    it->err = 0;
}


void
ts_xor_iter_init_live(ts_xor_iter_t *it, const ts_xor_appender_t *a,
    const uint8_t *buf)
{
    uint32_t  bits;
    uint64_t  pub;

    pub = __atomic_load_n(&a->pub, __ATOMIC_ACQUIRE);
    bits = TS_XOR_PUB_BITS(pub);

    ts_xor_iter_init(it, buf, ((size_t) bits + 7) >> 3);

    if (it->err == 0) {
        it->n = TS_XOR_PUB_N(pub);
        it->end = bits < it->end ? bits : it->end;
    }
}


int
ts_xor_iter_next(ts_xor_iter_t *it, int64_t *t, double *v)
{
    int       rc;
    uint64_t  bits;

    rc = ts_xor_iter_next_bits(it, t, &bits);

    if (rc == 1) {
        memcpy(v, &bits, sizeof(bits));
    }

    return rc;
}


int
ts_xor_iter_next_bits(ts_xor_iter_t *it, int64_t *t, uint64_t *v)
{
    int  rc;

    if (it->err) {
        return it->err;
    }

    if (it->i == it->n) {
        return 0;
    }

    if (it->i >= 2) {
        rc = ts_xor_read_later(it);

    } else if (it->i == 0) {
        rc = ts_xor_read_first(it);

    } else {
        rc = ts_xor_read_second(it);
    }

    /* fields read past the end came from zero fill: discard them */
    if (rc != TS_OK || it->pos > it->end) {
        it->err = TS_ERR_CORRUPT;
        return TS_ERR_CORRUPT;
    }

    it->i++;
    *t = it->t;
    *v = it->v;

    return 1;
}


/* the next 64 bits at pos, zeros past len; at least 57 are valid */

static inline uint64_t
ts_xor_peek(const ts_xor_iter_t *it)
{
    size_t   i;
    uint8_t  tmp[8];

    i = it->pos >> 3;

    if (i + 8 <= it->len) {
        return ts_xor_load_be64(it->data + i) << (it->pos & 7);
    }

    memset(tmp, 0, sizeof(tmp));

    if (i < it->len) {
        memcpy(tmp, it->data + i, it->len - i);
    }

    return ts_xor_load_be64(tmp) << (it->pos & 7);
}


/* reads n bits, 0 < n <= 64 */

static inline uint64_t
ts_xor_read(ts_xor_iter_t *it, unsigned n)
{
    uint64_t  hi, w;

    if (n > 56) {
        hi = ts_xor_peek(it) >> (64 - (n - 32));
        it->pos += n - 32;
        n = 32;

    } else {
        hi = 0;
    }

    w = ts_xor_peek(it) >> (64 - n);
    it->pos += n;

    return hi << 32 | w;
}


/* Go's binary.ReadUvarint: at most 10 bytes, overflow is an error */

static int
ts_xor_read_uvarint(ts_xor_iter_t *it, uint64_t *x)
{
    size_t    i;
    uint8_t   b;
    unsigned  k;
    uint64_t  r;

    i = it->pos >> 3;
    r = 0;

    for (k = 0; k < 10; k++) {
        if ((uint64_t) (i + k + 1) * 8 > it->end) {
            return TS_ERR_CORRUPT;
        }

        b = it->data[i + k];

        if (k == 9 && b > 1) {
            return TS_ERR_CORRUPT;
        }

        r |= (uint64_t) (b & 0x7f) << (7 * k);

        if (b < 0x80) {
            it->pos = (uint64_t) (i + k + 1) * 8;
            *x = r;
            return TS_OK;
        }
    }

    return TS_ERR_CORRUPT;
}


static int
ts_xor_read_first(ts_xor_iter_t *it)
{
    uint64_t  z;

    if (ts_xor_read_uvarint(it, &z) != TS_OK) {
        return TS_ERR_CORRUPT;
    }

    it->t = (int64_t) (z >> 1 ^ (0 - (z & 1)));
    it->v = ts_xor_read(it, 64);

    return TS_OK;
}


static int
ts_xor_read_second(ts_xor_iter_t *it)
{
    uint64_t  tdelta;

    if (ts_xor_read_uvarint(it, &tdelta) != TS_OK
        || ts_xor_advance(it, tdelta) != TS_OK)
    {
        return TS_ERR_CORRUPT;
    }

    return ts_xor_read_value(it);
}


static int
ts_xor_read_later(ts_xor_iter_t *it)
{
    unsigned  k, width, used;
    uint64_t  w, dod;

    w = ts_xor_peek(it);
    k = (unsigned) (w >> 60);
    width = ts_xor_dod_width[k];
    it->pos += ts_xor_dod_prefix[k];

    used = ts_xor_dod_prefix[k];

    if (width == 0) {
        dod = 0;

    } else if (width == 64) {
        dod = ts_xor_read(it, 64);
        used = 64;

    } else {
        /* payloads above 2^(width-1) are negative, as in Go */
        dod = (w << ts_xor_dod_prefix[k]) >> (64 - width);
        dod -= (dod > (uint64_t) 1 << (width - 1)) ? (uint64_t) 1 << width
                                                   : 0;
        it->pos += width;
        used += width;
    }

    if (ts_xor_advance(it, it->tdelta + dod) != TS_OK) {
        return TS_ERR_CORRUPT;
    }

    return ts_xor_read_value_w(it, w, used);
}


/* wrapping arithmetic, as the encoder's; time must move forward */

static int
ts_xor_advance(ts_xor_iter_t *it, uint64_t tdelta)
{
    int64_t  t;

    t = (int64_t) ((uint64_t) it->t + tdelta);

    if (t <= it->t) {
        return TS_ERR_CORRUPT;
    }

    it->t = t;
    it->tdelta = tdelta;

    return TS_OK;
}


/* Go's xorRead */

static int
ts_xor_read_value(ts_xor_iter_t *it)
{
    return ts_xor_read_value_w(it, 0, 64);
}


/*
 * The same with w, peeked "used" bits before it->pos (its first 57 bits
 * are the stream's): the bits at pos are w << used while enough of them
 * are left; else peeked again
 */

static inline int
ts_xor_read_value_w(ts_xor_iter_t *it, uint64_t w, unsigned used)
{
    unsigned  leading, trailing, width, ctl, avail;

    if (used > 57 - 13) {
        w = ts_xor_peek(it);
        avail = 57;

    } else {
        w <<= used;
        avail = 57 - used;
    }

    if ((w >> 63) == 0) {
        it->pos += 1;
        return TS_OK;
    }

    if ((w >> 62 & 1) == 0) {
        ctl = 2;

        /* Go reads a window never set as leading = trailing = 0 */
        if (it->leading == TS_XOR_NO_WINDOW) {
            leading = 0;
            trailing = 0;

        } else {
            leading = it->leading;
            trailing = it->trailing;
        }

        width = 64 - leading - trailing;

    } else {
        ctl = 13;
        leading = (unsigned) (w >> 57 & 0x1f);
        width = (unsigned) (w >> 51 & 0x3f);
        width = width ? width : 64;

        if (leading + width > 64) {
            return TS_ERR_CORRUPT;
        }

        trailing = 64 - leading - width;
        it->leading = (uint8_t) leading;
        it->trailing = (uint8_t) trailing;
    }

    if (width > 0 && ctl + width <= avail) {
        /* the field is within the valid bits already peeked */
        it->v ^= (w << ctl) >> (64 - width) << trailing;
        it->pos += ctl + width;
        return TS_OK;
    }

    it->pos += ctl;
    it->v ^= ts_xor_read(it, width) << trailing;

    return TS_OK;
}


/*
 * The bit stream and XOR value field, exported for the histogram chunk
 * codec (ts_hchunk.c), which writes the same fields.  Thin wrappers: the
 * XOR chunk itself keeps using the inline functions above.
 */

uint32_t
ts_xor_bits_put(uint8_t *buf, size_t cap, uint32_t pos, uint64_t u,
    unsigned n)
{
    return ts_xor_put(buf, cap, pos, u, n);
}


uint64_t
ts_xor_bits_peek(const uint8_t *data, size_t len, uint64_t pos)
{
    ts_xor_iter_t  it;

    it.data = data;
    it.len = len;
    it.pos = pos;

    return ts_xor_peek(&it);
}


uint64_t
ts_xor_bits_read(const uint8_t *data, size_t len, uint64_t *pos, unsigned n)
{
    uint64_t       u;
    ts_xor_iter_t  it;

    it.data = data;
    it.len = len;
    it.pos = *pos;

    u = ts_xor_read(&it, n);
    *pos = it.pos;

    return u;
}


void
ts_xor_val_encode(uint64_t prev, uint8_t leading, uint8_t trailing,
    uint64_t v, ts_xor_val_t *x)
{
    ts_xor_appender_t  a;

    a.v = prev;
    a.leading = leading;
    a.trailing = trailing;

    ts_xor_value(&a, v, x);
}


int
ts_xor_val_decode(const uint8_t *data, size_t len, uint64_t *pos,
    uint64_t *v, uint8_t *leading, uint8_t *trailing)
{
    int            rc;
    ts_xor_iter_t  it;

    it.data = data;
    it.len = len;
    it.pos = *pos;
    it.v = *v;
    it.leading = *leading;
    it.trailing = *trailing;

    rc = ts_xor_read_value(&it);

    *pos = it.pos;
    *v = it.v;
    *leading = it.leading;
    *trailing = it.trailing;

    return rc;
}
