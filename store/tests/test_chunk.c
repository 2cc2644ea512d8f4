/*
 * Copyright (C) ngx_tsdb authors
 *
 * XOR chunk codec tests: chunks written by Prometheus itself (golden),
 * one named case per encoding edge, truncation and corruption, buffer
 * limits, the lock-free reader protocol across fork(), crash recovery,
 * and random round trips checked byte for byte against tc_ref_*, a
 * literal model of Prometheus 3's xorAppender and bstream.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "ts_chunk.h"
#include "ts_error.h"


#define TC_MAX        512
#define TC_REF_CAP    (2 + TC_MAX * TS_XOR_SAMPLE_MAX_BYTES)
#define TC_BASE       1699999200000LL
#define TC_ONE        0x3ff0000000000000ULL
#define TC_TWO        0x4000000000000000ULL
#define TC_STALE      0x7ff0000000000002ULL
#define TC_NORMAL_NAN 0x7ff8000000000001ULL

#define tc_check(name, cond)                                              \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fail_msg("%s: %s (line %d)", (name), #cond, __LINE__);        \
        }                                                                 \
    } while (0)


typedef struct {
    int64_t   t;
    uint64_t  v;
} tc_sample_t;


/* Prometheus 3 xorAppender over bstream, transcribed call for call */
typedef struct {
    uint8_t   b[TC_REF_CAP];
    size_t    len;
    unsigned  count;
    int64_t   t;
    uint64_t  v;
    uint64_t  tdelta;
    uint8_t   leading;
    uint8_t   trailing;
} tc_ref_t;


/* a bit writer for hand-made malformed chunks */
typedef struct {
    uint8_t   b[64];
    size_t    bits;
} tc_bw_t;


static uint64_t  tc_rng_state;


/* helpers */

static uint64_t
tc_rand(void)
{
    uint64_t  x;

    x = tc_rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    tc_rng_state = x;

    return x * 0x2545f4914f6cdd1dULL;
}


static uint64_t
tc_dbits(double d)
{
    uint64_t  u;

    memcpy(&u, &d, sizeof(u));

    return u;
}


static size_t
tc_encode(const tc_sample_t *s, size_t n, uint8_t *buf, size_t cap,
    ts_xor_appender_t *a)
{
    size_t  i;

    assert_int_equal(ts_xor_init(a, buf, cap), TS_OK);

    for (i = 0; i < n; i++) {
        assert_int_equal(ts_xor_append_bits(a, buf, s[i].t, s[i].v), TS_OK);
    }

    return ts_xor_bytes(a);
}


/* decodes into out (room for max); returns the count, *rc the last rc */

static size_t
tc_decode(const uint8_t *data, size_t len, tc_sample_t *out, size_t max,
    int *rc)
{
    size_t         n;
    int64_t        t;
    uint64_t       v;
    ts_xor_iter_t  it;

    ts_xor_iter_init(&it, data, len);

    for (n = 0; (*rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1; n++) {
        if (n < max) {
            out[n].t = t;
            out[n].v = v;
        }
    }

    return n;
}


/* decodes from a heap copy of exactly len bytes, so ASan sees overreads */

static size_t
tc_decode_exact(const uint8_t *data, size_t len, tc_sample_t *out,
    size_t max, int *rc)
{
    size_t    n;
    uint8_t  *copy;

    copy = malloc(len ? len : 1);
    assert_non_null(copy);

    if (len) {
        memcpy(copy, data, len);
    }

    n = tc_decode(copy, len, out, max, rc);
    free(copy);

    return n;
}


static void
tc_same_samples(const char *name, const tc_sample_t *a, const tc_sample_t *b,
    size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (a[i].t != b[i].t || a[i].v != b[i].v) {
            fail_msg("%s: sample %zu: %lld %016llx != %lld %016llx", name,
                     i, (long long) a[i].t, (unsigned long long) a[i].v,
                     (long long) b[i].t, (unsigned long long) b[i].v);
        }
    }
}


static void
tc_roundtrip(const char *name, const tc_sample_t *s, size_t n,
    const uint8_t *chunk, size_t len)
{
    int          rc;
    size_t       m;
    tc_sample_t  out[TC_MAX];

    m = tc_decode_exact(chunk, len, out, TC_MAX, &rc);

    tc_check(name, rc == 0);
    tc_check(name, m == n);
    tc_same_samples(name, s, out, n);
}


/* n bits of buf from bit "from", as '0'/'1' */

static void
tc_bitstr(const uint8_t *buf, size_t from, size_t n, char *out)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        out[i] = (buf[(from + i) >> 3] >> (7 - ((from + i) & 7)) & 1)
                 ? '1' : '0';
    }

    out[n] = '\0';
}


/* drops the spaces and '|' that make expected bit strings readable */

static void
tc_squeeze(const char *in, char *out)
{
    for ( /* void */ ; *in; in++) {
        if (*in == '0' || *in == '1') {
            *out++ = *in;
        }
    }

    *out = '\0';
}


static size_t
tc_unhex(const char *hex, uint8_t *out)
{
    size_t        n;
    unsigned int  byte;

    for (n = 0; hex[0] && hex[1]; hex += 2, n++) {
        assert_int_equal(sscanf(hex, "%2x", &byte), 1);
        out[n] = (uint8_t) byte;
    }

    return n;
}


/* the reference model */

static void
tc_ref_bit(tc_ref_t *r, int bit)
{
    if (r->count == 0) {
        r->b[r->len++] = 0;
        r->count = 8;
    }

    if (bit) {
        r->b[r->len - 1] |= (uint8_t) (1 << (r->count - 1));
    }

    r->count--;
}


static void
tc_ref_byte(tc_ref_t *r, uint8_t byt)
{
    if (r->count == 0) {
        r->b[r->len++] = byt;
        return;
    }

    r->b[r->len - 1] |= (uint8_t) (byt >> (8 - r->count));
    r->b[r->len++] = (uint8_t) (byt << r->count);
}


static void
tc_ref_bits(tc_ref_t *r, uint64_t u, int nbits)
{
    u <<= 64 - nbits;

    for ( /* void */ ; nbits >= 8; nbits -= 8) {
        tc_ref_byte(r, (uint8_t) (u >> 56));
        u <<= 8;
    }

    for ( /* void */ ; nbits > 0; nbits--) {
        tc_ref_bit(r, (int) (u >> 63));
        u <<= 1;
    }
}


static void
tc_ref_uvarint(tc_ref_t *r, uint64_t x)
{
    while (x >= 0x80) {
        tc_ref_byte(r, (uint8_t) (x | 0x80));
        x >>= 7;
    }

    tc_ref_byte(r, (uint8_t) x);
}


static int
tc_ref_bitrange(int64_t x, int nbits)
{
    return -((1LL << (nbits - 1)) - 1) <= x && x <= 1LL << (nbits - 1);
}


static void
tc_ref_xor(tc_ref_t *r, uint64_t v)
{
    int       sig;
    uint8_t   leading, trailing;
    uint64_t  delta;

    delta = v ^ r->v;

    if (delta == 0) {
        tc_ref_bit(r, 0);
        return;
    }

    tc_ref_bit(r, 1);

    leading = (uint8_t) __builtin_clzll(delta);
    trailing = (uint8_t) __builtin_ctzll(delta);

    if (leading >= 32) {
        leading = 31;
    }

    if (r->leading != 0xff && leading >= r->leading
        && trailing >= r->trailing)
    {
        tc_ref_bit(r, 0);
        tc_ref_bits(r, delta >> r->trailing, 64 - r->leading - r->trailing);
        return;
    }

    r->leading = leading;
    r->trailing = trailing;

    tc_ref_bit(r, 1);
    tc_ref_bits(r, leading, 5);
    sig = 64 - leading - trailing;
    tc_ref_bits(r, (uint64_t) sig, 6);
    tc_ref_bits(r, delta >> trailing, sig);
}


static void
tc_ref_init(tc_ref_t *r)
{
    memset(r, 0, sizeof(*r));
    r->len = 2;
    r->leading = 0xff;
}


static void
tc_ref_append(tc_ref_t *r, int64_t t, uint64_t v)
{
    int64_t   dod;
    uint64_t  tdelta, ux;
    unsigned  num;

    num = (unsigned) r->b[0] << 8 | r->b[1];
    tdelta = 0;

    if (num == 0) {
        ux = (uint64_t) t << 1;
        ux = t < 0 ? ~ux : ux;
        tc_ref_uvarint(r, ux);
        tc_ref_bits(r, v, 64);

    } else if (num == 1) {
        tdelta = (uint64_t) t - (uint64_t) r->t;
        tc_ref_uvarint(r, tdelta);
        tc_ref_xor(r, v);

    } else {
        tdelta = (uint64_t) t - (uint64_t) r->t;
        dod = (int64_t) (tdelta - r->tdelta);

        if (dod == 0) {
            tc_ref_bit(r, 0);

        } else if (tc_ref_bitrange(dod, 14)) {
            tc_ref_byte(r, (uint8_t) (0x2 << 6 | ((uint64_t) dod >> 8 & 0x3f)));
            tc_ref_byte(r, (uint8_t) dod);

        } else if (tc_ref_bitrange(dod, 17)) {
            tc_ref_bits(r, 0x6, 3);
            tc_ref_bits(r, (uint64_t) dod, 17);

        } else if (tc_ref_bitrange(dod, 20)) {
            tc_ref_bits(r, 0xe, 4);
            tc_ref_bits(r, (uint64_t) dod, 20);

        } else {
            tc_ref_bits(r, 0xf, 4);
            tc_ref_bits(r, (uint64_t) dod, 64);
        }

        tc_ref_xor(r, v);
    }

    r->t = t;
    r->v = v;
    r->b[0] = (uint8_t) ((num + 1) >> 8);
    r->b[1] = (uint8_t) (num + 1);
    r->tdelta = tdelta;
}


static void
tc_ref_same(const char *name, const tc_sample_t *s, size_t n,
    const uint8_t *chunk, size_t len)
{
    size_t     i;
    tc_ref_t  *r;

    r = malloc(sizeof(tc_ref_t));
    assert_non_null(r);
    tc_ref_init(r);

    for (i = 0; i < n; i++) {
        tc_ref_append(r, s[i].t, s[i].v);
    }

    tc_check(name, r->len == len);
    tc_check(name, memcmp(r->b, chunk, len) == 0);

    free(r);
}


static void
tc_bw_put(tc_bw_t *w, uint64_t u, unsigned n)
{
    unsigned  i;

    for (i = n; i > 0; i--) {
        if (u >> (i - 1) & 1) {
            w->b[w->bits >> 3] |= (uint8_t) (0x80 >> (w->bits & 7));
        }

        w->bits++;
    }
}


/*
 * Golden chunks written by Prometheus 2.42 (Debian's promtool), recipe
 * in docs/format/chunk.md: "promtool tsdb create-blocks-from openmetrics"
 * on four series, then each chunk's data cut out of chunks/000001.
 * tc_prom_values ends with the one zero byte Prometheus 2 appended after
 * a byte-aligned write; Prometheus 3 and we do not write it.
 */

static const uint8_t  tc_prom_counter[] = {
    0x00, 0x78, 0xa6, 0xb6, 0xcb, 0xfd, 0xf9, 0x62, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x9a, 0x75, 0xc2, 0x74, 0x02, 0xb7, 0xff, 0x9a,
    0x48, 0xd3, 0x80, 0x07, 0x88, 0x2f, 0xff, 0x36, 0x8b, 0x7b, 0xff, 0xcd,
    0x81, 0xd8, 0x00, 0x7d, 0x43, 0xfd, 0xbf, 0xfc, 0xde, 0x24, 0xdf, 0xfe,
    0x6d, 0x16, 0xb0, 0x00, 0xfb, 0x07, 0xdb, 0x7f, 0xf9, 0x07, 0xbf, 0xfc,
    0x96, 0x40, 0x03, 0xeb, 0x23, 0xe6, 0xff, 0xf3, 0x80, 0x9b, 0x00, 0x0f,
    0xb8, 0x5c, 0xdf, 0xfe, 0x6d, 0x1f, 0x0d, 0xff, 0xe4, 0x1e, 0x00, 0x1e,
    0x21, 0x7f, 0xf9, 0x27, 0xbf, 0xfc, 0x80, 0xc0, 0x03, 0xec, 0x1f, 0xcd,
    0xff, 0xe6, 0xe1, 0xad, 0xbf, 0xfc, 0xda, 0x26, 0xc0, 0x03, 0xef, 0x0e,
    0xdf, 0xfe, 0x6e, 0x1a, 0x98, 0x00, 0x7d, 0x06, 0xff, 0xd6, 0xff, 0xf2,
    0x01, 0xb5, 0xff, 0xe4, 0x01, 0x98, 0x00, 0x78, 0x0c, 0x97, 0xff, 0x90,
    0x0e, 0x2f, 0xff, 0x20, 0x0e, 0xc0, 0x03, 0xc0, 0xe2, 0xbf, 0xfc, 0x80,
    0x75, 0x7f, 0xf9, 0x00, 0x56, 0x00, 0x1e, 0x03, 0x05, 0xff, 0xe4, 0x00,
    0xc8, 0x00, 0x78, 0x06, 0x37, 0xff, 0x90, 0x7b, 0xaf, 0xff, 0x20, 0x07,
    0x40, 0x03, 0xc0, 0x11, 0xbf, 0xfc, 0x80, 0x59, 0x7f, 0xf8, 0x80, 0x07,
    0x80, 0xeb, 0x7f, 0xf9, 0x00, 0x6a, 0xff, 0xf2, 0x06, 0xcc, 0x00, 0x3c,
    0x00, 0xfb, 0xff, 0xc8, 0x05, 0x10, 0x00, 0xf0, 0x1b, 0xef, 0xff, 0x20,
    0x0c, 0xdf, 0xfe, 0x40, 0x3a, 0x80, 0x07, 0x87, 0xdf, 0x7f, 0xf9, 0xc4,
    0x5f, 0xdf, 0xfe, 0x70, 0x13, 0x60, 0x01, 0xf7, 0x8f, 0xbe, 0xff, 0xf2,
    0x0b, 0x7f, 0xf9, 0x12, 0x80, 0x07, 0x90, 0xdf, 0xfe, 0x6e, 0x23, 0xfe,
    0x00, 0x1e, 0x10, 0xbf, 0xfc, 0x8f, 0xef, 0xff, 0x20, 0x18, 0x00, 0x78,
    0x4a, 0xff, 0xf2, 0x65, 0xbf, 0xfc, 0xda, 0x37, 0x70, 0x00, 0xfc, 0x82,
    0xef, 0xff, 0x38, 0x0d, 0x4d, 0xff, 0xe6, 0xf1, 0xb7, 0x80, 0x07, 0x8f,
    0xbf, 0xfc, 0xe0, 0x37, 0x30, 0x00, 0xfb, 0x86, 0xfe, 0xff, 0xf2, 0x0a,
    0xff, 0xf3, 0x80, 0xda, 0xc0, 0x03, 0xef, 0x1b, 0x1b, 0xff, 0xc8, 0xdb,
    0xff, 0xce, 0x03, 0x7b, 0x00, 0x0f, 0xb0, 0x5f, 0xdf, 0xfe, 0x73, 0x07,
    0x7f, 0xf9, 0xc4, 0x58, 0xc0, 0x03, 0xf0, 0x16, 0x77, 0xff, 0x90, 0xe0,
    0x01, 0xf7, 0x8f, 0xc6, 0xff, 0xf2, 0x49, 0x7f, 0xf8, 0x80, 0x07, 0x8e,
    0xdf, 0xfe, 0x6e, 0x1f, 0xed, 0xff, 0xe7, 0x01, 0xb9, 0x80, 0x07, 0xde,
    0x3f, 0x7b, 0xff, 0xc8, 0xc5, 0xff, 0xe4, 0x9e, 0x00, 0x1f, 0x69, 0x3f,
    0x9b, 0xff, 0xc8, 0x35, 0x00, 0x0f, 0x17, 0x6f, 0xff, 0x20, 0x3d, 0xff,
    0xe4, 0x1c, 0x80, 0x07, 0x84, 0xf7, 0xff, 0x93, 0xf6, 0xff, 0xf2, 0x09,
    0x40, 0x03, 0xc2, 0x1b, 0xff, 0xc8, 0x0f, 0x7f, 0xf9, 0x1c, 0x20, 0x01,
    0xe1, 0x3d, 0xff, 0xe4, 0x01, 0x80, 0x07, 0x82, 0x57, 0xff, 0x9a, 0x8c,
    0xff, 0x7b, 0xff, 0xc8, 0x07, 0x20, 0x01, 0xe0, 0x3a, 0xbf, 0xfc, 0xe4,
    0x2e, 0x6f, 0xff, 0x38, 0x8b, 0x38, 0x00, 0x7d, 0xe3, 0xfb, 0xbf, 0xfc,
    0xe2, 0x35, 0x37, 0xff, 0x9c, 0x05, 0xcc, 0x00, 0x3c, 0x2b, 0xff, 0xce,
    0x23, 0x5b, 0x00, 0x0f, 0xb8, 0x8f, 0x1b, 0xff, 0xc8, 0x16, 0xff, 0xf3,
    0x90, 0xb5, 0x80, 0x07, 0xe2, 0x0e, 0xff, 0xf3, 0x80, 0xbf, 0xbf, 0xfc,
    0xe4, 0x2c, 0x60, 0x01, 0xf8, 0x8b, 0xf0
};

static const uint8_t  tc_prom_dod14_17[] = {
    0x00, 0x0d, 0x80, 0xcc, 0xc9, 0xfd, 0xf9, 0x62, 0x3f, 0xf0, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xa0, 0x8d, 0x06, 0x10, 0x00, 0x2b, 0xff, 0xf5,
    0x00, 0x02, 0x80, 0x05, 0x84, 0x00, 0x2d, 0xe0, 0x00, 0x68, 0x00, 0x03,
    0x40, 0x00, 0x5c, 0x20, 0x00, 0x2e, 0xf0, 0x00, 0x00
};

static const uint8_t  tc_prom_dod20_64[] = {
    0x00, 0x07, 0x80, 0xcc, 0xc9, 0xfd, 0xf9, 0x62, 0x40, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xc0, 0xcf, 0x24, 0x74, 0x00, 0x00, 0x3a, 0x00,
    0x00, 0x5e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x02, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0x80, 0x00, 0x07, 0x80, 0x00, 0x00, 0x00, 0x00,
    0x0f, 0x42, 0x40, 0x00
};

static const uint8_t  tc_prom_values[] = {
    0x00, 0x16, 0x80, 0xcc, 0xc9, 0xfd, 0xf9, 0x62, 0x3f, 0xf0, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x98, 0x75, 0x30, 0x97, 0xff, 0xdb, 0x41, 0x8c,
    0x5f, 0x7f, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x20, 0x02, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x58, 0x01, 0xb0, 0x19, 0xff, 0xea, 0x00,
    0x18, 0x3f, 0xbf, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a, 0xc5, 0xf7,
    0xc3, 0x9e, 0xf0, 0xcb, 0x6c, 0x2d, 0x58, 0x6c, 0x3f, 0x7e, 0x4a, 0x91,
    0xe0, 0x3d, 0x07, 0x0c, 0xa6, 0xbf, 0xf7, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x60, 0x03, 0x00, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x40,
    0xcb, 0xb7, 0x9a, 0x2a, 0x3e, 0xf9, 0xdb, 0x2c, 0x19, 0xd6, 0xf3, 0x45,
    0x47, 0xdf, 0x3b, 0x65, 0x7f, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x9f, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0xa0, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x02, 0x01, 0x32, 0x84, 0x80, 0x00, 0x00, 0x00,
    0x00, 0x00
};

/* the recipe's "values" series; NaN is Prometheus's value.NormalNaN */
static const uint64_t  tc_prom_values_v[] = {
    TC_ONE, TC_ONE, TC_TWO, 0x4004000000000000, 0x4004000000000000,
    TC_NORMAL_NAN, TC_NORMAL_NAN, 0x7ff0000000000000, 0xfff0000000000000,
    0, 0x8000000000000000, 0x3fb999999999999a, 0x01a56e1fc2f8f359,
    0x7fefffffffffffff, 1, 0xc00a000000000000, 0x419d6f34547df3b6,
    0x8000000000000000, TC_ONE, 0x4008000000000000, 0x401c000000000000,
    0x412e848000000000
};

static const int64_t  tc_prom_dods14_17[] = {
    0, 1, -1, 8192, -8191, 8193, -8192, 65536, -65535, 65537, -65536
};

static const int64_t  tc_prom_dods20_64[] = {
    524288, -524287, 524289, -524288, 2000000
};


/* the recipe's series rebuilt; returns the count */

static size_t
tc_prom_samples(const char *name, tc_sample_t *s)
{
    size_t         i, n;
    int64_t        d, t, c;
    const int64_t  *dods;

    if (strcmp(name, "values") == 0) {
        n = sizeof(tc_prom_values_v) / sizeof(tc_prom_values_v[0]);

        for (i = 0; i < n; i++) {
            s[i].t = TC_BASE + 15000 * (int64_t) i;
            s[i].v = tc_prom_values_v[i];
        }

        return n;
    }

    if (strcmp(name, "counter") == 0) {
        t = TC_BASE;
        c = 0;

        for (i = 0; i < 120; i++) {
            t += 15000 + (int64_t) (i * 7 % 11) - 5;
            c += (int64_t) (i * 13 % 41);
            s[i].t = t;
            s[i].v = tc_dbits((double) c);
        }

        return 120;
    }

    if (strcmp(name, "dod14_17") == 0) {
        dods = tc_prom_dods14_17;
        n = sizeof(tc_prom_dods14_17) / sizeof(int64_t);
        d = 100000;
        s[0].v = TC_ONE;

    } else {
        dods = tc_prom_dods20_64;
        n = sizeof(tc_prom_dods20_64) / sizeof(int64_t);
        d = 600000;
        s[0].v = TC_TWO;
    }

    s[0].t = TC_BASE;
    s[1].t = TC_BASE + d;
    s[1].v = s[0].v;

    for (i = 0; i < n; i++) {
        d += dods[i];
        s[i + 2].t = s[i + 1].t + d;
        s[i + 2].v = s[0].v;
    }

    return n + 2;
}


typedef struct {
    const char     *name;
    const uint8_t  *data;
    size_t          len;
    size_t          pad;        /* Prometheus 2 trailing zero bytes */
} tc_golden_t;


static const tc_golden_t  tc_goldens[] = {
    { "counter", tc_prom_counter, sizeof(tc_prom_counter), 0 },
    { "dod14_17", tc_prom_dod14_17, sizeof(tc_prom_dod14_17), 0 },
    { "dod20_64", tc_prom_dod20_64, sizeof(tc_prom_dod20_64), 0 },
    { "values", tc_prom_values, sizeof(tc_prom_values), 1 },
};


static void
test_prometheus_chunks(void **state)
{
    size_t              i, n, len;
    uint8_t             buf[TC_REF_CAP];
    tc_sample_t         s[TC_MAX];
    ts_xor_appender_t   a;
    const tc_golden_t  *g;

    (void) state;

    for (i = 0; i < sizeof(tc_goldens) / sizeof(tc_goldens[0]); i++) {
        g = &tc_goldens[i];
        n = tc_prom_samples(g->name, s);

        tc_roundtrip(g->name, s, n, g->data, g->len);

        len = tc_encode(s, n, buf, sizeof(buf), &a);
        tc_check(g->name, len == g->len - g->pad);
        tc_check(g->name, memcmp(buf, g->data, len) == 0);
        tc_check(g->name, g->pad == 0 || g->data[len] == 0);

        tc_ref_same(g->name, s, n, buf, len);
    }
}


/* section 5.6 of the reference notes: each agrees with Prometheus 3 */

typedef struct {
    const char   *name;
    tc_sample_t   s[5];
    size_t        n;
    const char   *hex;
} tc_vector_t;


static const tc_vector_t  tc_vectors[] = {
    { "one sample", { { 1000, TC_ONE } }, 1, "0001d00f3ff0000000000000" },
    { "two samples", { { 1000, TC_ONE }, { 2000, TC_ONE } }, 2,
      "0002d00f3ff0000000000000e80700" },
    { "three samples",
      { { 1000, TC_ONE }, { 2000, TC_ONE }, { 3000, TC_ONE } }, 3,
      "0003d00f3ff0000000000000e80700" },
    { "window change",
      { { 1700000000000, TC_ONE }, { 1700000015000, TC_ONE },
        { 1700000030000, TC_TWO }, { 1700000045000, 0x4004000000000000 },
        { 1700000060001, 0x4004000000000000 } }, 5,
      "000580a0abfef9623ff000000000000098753097ffdb41c00080" },
};


static void
test_reference_vectors(void **state)
{
    size_t              i, n, len;
    uint8_t             buf[256], want[64];
    ts_xor_appender_t   a;
    const tc_vector_t  *c;

    (void) state;

    for (i = 0; i < sizeof(tc_vectors) / sizeof(tc_vectors[0]); i++) {
        c = &tc_vectors[i];
        n = tc_unhex(c->hex, want);

        len = tc_encode(c->s, c->n, buf, sizeof(buf), &a);
        tc_check(c->name, len == n);
        tc_check(c->name, memcmp(buf, want, n) == 0);

        tc_roundtrip(c->name, c->s, c->n, want, n);
        tc_ref_same(c->name, c->s, c->n, buf, len);
    }
}


/*
 * One case per encoding edge.  "bits" is the last sample as written:
 * the timestamp field, '|', the value field.  Timestamp cases step
 * 1000000 then 1000000 + dod; value cases keep a steady step (dod '0').
 */

typedef struct {
    const char   *name;
    tc_sample_t   s[3];
    const char   *bits;
} tc_edge_t;


#define TC_DOD(d)                                                         \
    { { 0, TC_ONE }, { 1000000, TC_ONE }, { 2000000 + (d), TC_ONE } }
#define TC_VAL(a, b, c)  { { 1000, a }, { 2000, b }, { 3000, c } }


static const tc_edge_t  tc_edges[] = {
    { "dod 0", TC_DOD(0), "0 | 0" },
    { "dod 1", TC_DOD(1), "10 00000000000001 | 0" },
    { "dod -1", TC_DOD(-1), "10 11111111111111 | 0" },
    { "dod 8192, 14-bit max", TC_DOD(8192), "10 10000000000000 | 0" },
    { "dod -8191, 14-bit min", TC_DOD(-8191), "10 10000000000001 | 0" },
    { "dod 8193, 17-bit", TC_DOD(8193), "110 00010000000000001 | 0" },
    { "dod -8192, 17-bit", TC_DOD(-8192), "110 11110000000000000 | 0" },
    { "dod 65536, 17-bit max", TC_DOD(65536),
      "110 10000000000000000 | 0" },
    { "dod -65535, 17-bit min", TC_DOD(-65535),
      "110 10000000000000001 | 0" },
    { "dod 65537, 20-bit", TC_DOD(65537),
      "1110 00010000000000000001 | 0" },
    { "dod -65536, 20-bit", TC_DOD(-65536),
      "1110 11110000000000000000 | 0" },
    { "dod 524288, 20-bit max", TC_DOD(524288),
      "1110 10000000000000000000 | 0" },
    { "dod -524287, 20-bit min", TC_DOD(-524287),
      "1110 10000000000000000001 | 0" },
    { "dod 524289, 64-bit", TC_DOD(524289),
      "1111 0000000000000000 0000000000000000 0000000000001000"
      " 0000000000000001 | 0" },
    { "dod -524288, 64-bit", TC_DOD(-524288),
      "1111 1111111111111111 1111111111111111 1111111111111000"
      " 0000000000000000 | 0" },
    { "dod 2^40, 64-bit", TC_DOD(1LL << 40),
      "1111 0000000000000000 0000000100000000 0000000000000000"
      " 0000000000000000 | 0" },
    { "dod wraps modulo 2^64",
      { { INT64_MIN, TC_ONE }, { INT64_MIN + 1, TC_ONE },
        { INT64_MAX, TC_ONE } },
      "10 11111111111101 | 0" },

    { "value repeat", TC_VAL(TC_ONE, TC_ONE, TC_ONE), "0 | 0" },
    { "reuse window", TC_VAL(0, 0xff, 0xef),
      "0 | 10 000000000000000000000000000010000" },
    { "new window, fewer leading zeros", TC_VAL(0, 0xff, 0xff ^ 1ULL << 40),
      "0 | 11 10111 000001 1" },
    { "new window, fewer trailing zeros", TC_VAL(0, 0xff00, 0xff01),
      "0 | 11 11111 100001 000000000000000000000000000000001" },
    { "leading 31", TC_VAL(0, 0, 1ULL << 32 | 1),
      "0 | 11 11111 100001 100000000000000000000000000000001" },
    { "leading 32 clamps to 31", TC_VAL(0, 0, 1ULL << 31 | 1),
      "0 | 11 11111 100001 010000000000000000000000000000001" },
    { "leading 63 clamps to 31", TC_VAL(0, 0, 1),
      "0 | 11 11111 100001 000000000000000000000000000000001" },
    { "64 significant bits as 0", TC_VAL(0, 0, 0x8000000000000001),
      "0 | 11 00000 000000 1000000000000000 0000000000000000"
      " 0000000000000000 0000000000000001" },
    { "reuse 64-bit window",
      TC_VAL(0, 0x8000000000000001, 0x8000000000000011),
      "0 | 10 0000000000000000 0000000000000000 0000000000000000"
      " 0000000000010000" },
    { "-0.0 after 0.0", TC_VAL(0, 0, 0x8000000000000000),
      "0 | 11 00000 000001 1" },
    { "stale marker", TC_VAL(TC_ONE, TC_ONE, TC_STALE),
      "0 | 11 00001 111110 10000000000000 0000000000000000"
      " 0000000000000000 0000000000000001" },
    { "stale marker repeat", TC_VAL(TC_STALE, TC_STALE, TC_STALE),
      "0 | 0" },
    { "+Inf", TC_VAL(TC_ONE, TC_ONE, 0x7ff0000000000000),
      "0 | 11 00001 000001 1" },
    { "-Inf", TC_VAL(TC_ONE, TC_ONE, 0xfff0000000000000),
      "0 | 11 00000 000010 11" },
};


static void
test_encoding_edges(void **state)
{
    char                want[256], got[256];
    size_t              i, len;
    uint8_t             buf[64];
    uint32_t            before;
    ts_xor_appender_t   a;
    const tc_edge_t    *c;

    (void) state;

    for (i = 0; i < sizeof(tc_edges) / sizeof(tc_edges[0]); i++) {
        c = &tc_edges[i];

        len = tc_encode(c->s, 2, buf, sizeof(buf), &a);
        before = (uint32_t) a.pub;
        assert_int_equal(ts_xor_append_bits(&a, buf, c->s[2].t, c->s[2].v),
                         TS_OK);
        len = ts_xor_bytes(&a);

        tc_squeeze(c->bits, want);
        tc_bitstr(buf, before, (uint32_t) a.pub - before, got);

        if (strcmp(want, got) != 0) {
            fail_msg("%s: wrote %s, want %s", c->name, got, want);
        }

        tc_roundtrip(c->name, c->s, 3, buf, len);
        tc_ref_same(c->name, c->s, 3, buf, len);
    }
}


/* the first timestamp (zigzag varint) and the first delta (uvarint) */

typedef struct {
    const char   *name;
    int64_t       t0;
    int64_t       t1;
    const char   *hex;
} tc_varint_t;


static const tc_varint_t  tc_firsts[] = {
    { "t0 0", 0, 1, "00" },
    { "t0 -1", -1, 0, "01" },
    { "t0 1", 1, 2, "02" },
    { "t0 -1000", -1000, 0, "cf0f" },
    { "t0 1.7e12", 1700000000000, 1700000000001, "80a0abfef962" },
    { "t0 INT64_MAX", INT64_MAX - 1, INT64_MAX, "fcffffffffffffffff01" },
    { "t0 INT64_MIN", INT64_MIN, 0, "ffffffffffffffffff01" },
};

static const tc_varint_t  tc_deltas[] = {
    { "delta1 1", 0, 1, "01" },
    { "delta1 127", 0, 127, "7f" },
    { "delta1 128", 0, 128, "8001" },
    { "delta1 15000", 0, 15000, "9875" },
    { "delta1 2^35", -5, (1LL << 35) - 5, "808080808001" },
    { "delta1 2^64-1", INT64_MIN, INT64_MAX, "ffffffffffffffffff01" },
};


static void
tc_check_varint(const tc_varint_t *c, int second)
{
    size_t              n, at, len;
    uint8_t             buf[64], want[16];
    tc_sample_t         s[2];
    ts_xor_appender_t   a;

    s[0].t = c->t0;
    s[0].v = 0x0123456789abcdef;
    s[1].t = c->t1;
    s[1].v = s[0].v;

    n = tc_unhex(c->hex, want);
    len = tc_encode(s, 2, buf, sizeof(buf), &a);

    if (second) {
        at = len - n - 1;
        tc_check(c->name, buf[len - 1] == 0);

    } else {
        at = TS_XOR_HEADER_SIZE;
        tc_check(c->name, buf[at + n] == 0x01 && buf[at + n + 7] == 0xef);
    }

    tc_check(c->name, memcmp(buf + at, want, n) == 0);

    tc_roundtrip(c->name, s, 2, buf, len);
    tc_ref_same(c->name, s, 2, buf, len);
}


static void
test_varints(void **state)
{
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(tc_firsts) / sizeof(tc_firsts[0]); i++) {
        tc_check_varint(&tc_firsts[i], 0);
    }

    for (i = 0; i < sizeof(tc_deltas) / sizeof(tc_deltas[0]); i++) {
        tc_check_varint(&tc_deltas[i], 1);
    }
}


/* NaN payloads and signed zeros survive the double API bit for bit */

static void
test_double_api(void **state)
{
    int                 rc;
    double              d;
    size_t              i, n;
    int64_t             t;
    uint8_t             buf[256];
    ts_xor_iter_t       it;
    ts_xor_appender_t   a;

    static const uint64_t  vals[] = {
        TC_STALE, TC_STALE, TC_NORMAL_NAN, 0x7ff0000000000001,
        0xfff8000000000000, 0x7fffffffffffffff, 0x8000000000000000, 0,
        0x0000000000000001, 0xfff0000000000000, TC_ONE
    };

    (void) state;

    n = sizeof(vals) / sizeof(vals[0]);
    assert_int_equal(ts_xor_init(&a, buf, sizeof(buf)), TS_OK);

    for (i = 0; i < n; i++) {
        memcpy(&d, &vals[i], sizeof(d));
        assert_int_equal(ts_xor_append(&a, buf, 1000 * (int64_t) i, d),
                         TS_OK);
    }

    ts_xor_iter_init(&it, buf, ts_xor_bytes(&a));

    for (i = 0; (rc = ts_xor_iter_next(&it, &t, &d)) == 1; i++) {
        assert_int_equal(t, 1000 * (int64_t) i);
        assert_int_equal(tc_dbits(d), vals[i]);
    }

    assert_int_equal(rc, 0);
    assert_int_equal(i, n);
}


/* a 120-sample scrape: 15 s with jitter, a gauge moving in steps */

static void
test_realistic_120(void **state)
{
    size_t              i, len;
    uint8_t             buf[TC_REF_CAP];
    double              g;
    tc_sample_t         s[120];
    ts_xor_appender_t   a;

    (void) state;

    tc_rng_state = 0x9e3779b97f4a7c15ULL;
    g = 512.25;

    for (i = 0; i < 120; i++) {
        s[i].t = TC_BASE + 15000 * (int64_t) i
                 + (int64_t) (tc_rand() % 7) - 3;
        g += (double) (tc_rand() % 5) * 0.25 - 0.5;
        s[i].v = (i % 10 == 3) ? s[i - 1].v : tc_dbits(g);
    }

    len = tc_encode(s, 120, buf, sizeof(buf), &a);

    assert_int_equal(ts_xor_count(&a), 120);
    assert_true(len < 120 * 5);
    tc_roundtrip("realistic", s, 120, buf, len);
    tc_ref_same("realistic", s, 120, buf, len);
}


static void
test_out_of_order(void **state)
{
    size_t              n;
    uint8_t             buf[64], copy[64];
    uint64_t            pub;
    tc_sample_t         s[3] = { { 1000, TC_ONE }, { 2000, TC_TWO },
                                 { 3000, TC_ONE } };
    ts_xor_appender_t   a, keep;

    (void) state;

    for (n = 1; n <= 3; n++) {
        tc_encode(s, n, buf, sizeof(buf), &a);
        keep = a;
        pub = a.pub;
        memcpy(copy, buf, sizeof(buf));

        assert_int_equal(ts_xor_append_bits(&a, buf, s[n - 1].t, TC_ONE),
                         TS_ERR_OUT_OF_ORDER);
        assert_int_equal(ts_xor_append_bits(&a, buf, s[n - 1].t - 1, 0),
                         TS_ERR_OUT_OF_ORDER);
        assert_int_equal(ts_xor_append_bits(&a, buf, INT64_MIN, 0),
                         TS_ERR_OUT_OF_ORDER);

        assert_int_equal(a.pub, pub);
        assert_memory_equal(&a, &keep, sizeof(a));
        assert_memory_equal(buf, copy, sizeof(buf));
    }
}


static void
test_init_limits(void **state)
{
    uint8_t             buf[TS_XOR_MIN_CAP];
    ts_xor_appender_t   a;

    (void) state;

    assert_int_equal(ts_xor_init(&a, buf, 0), TS_ERR_INVALID);
    assert_int_equal(ts_xor_init(&a, buf, TS_XOR_MIN_CAP - 1),
                     TS_ERR_INVALID);
    assert_int_equal(ts_xor_init(&a, buf, (size_t) TS_XOR_MAX_CAP + 1),
                     TS_ERR_INVALID);

    /* the worst first sample fits the smallest chunk */
    assert_int_equal(ts_xor_init(&a, buf, TS_XOR_MIN_CAP), TS_OK);
    assert_int_equal(ts_xor_count(&a), 0);
    assert_int_equal(ts_xor_bytes(&a), TS_XOR_HEADER_SIZE);
    assert_int_equal(ts_xor_append_bits(&a, buf, INT64_MIN, ~0ULL), TS_OK);
    assert_int_equal(ts_xor_bytes(&a), 2 + 10 + 8);
}


/*
 * TS_ERR_FULL exactly when Prometheus's encoding of the sample would not
 * fit: random samples into exact-size heap buffers of random capacity,
 * so the writes near the end are bounds-checked by ASan.
 */

static size_t tc_random_series(tc_sample_t *s, size_t n);


static void
test_buffer_full(void **state)
{
    int                 rc;
    size_t              round, i, n, cap, accepted;
    uint8_t            *buf;
    uint64_t            pub;
    tc_ref_t           *r;
    tc_sample_t         s[TC_MAX];
    ts_xor_appender_t   a;

    (void) state;

    tc_rng_state = 0x1234567;
    r = malloc(sizeof(tc_ref_t));
    assert_non_null(r);

    for (round = 0; round < 300; round++) {
        cap = TS_XOR_MIN_CAP + tc_rand() % 200;
        buf = malloc(cap);
        assert_non_null(buf);
        assert_int_equal(ts_xor_init(&a, buf, cap), TS_OK);
        tc_ref_init(r);
        accepted = 0;
        n = tc_random_series(s, TC_MAX);

        for (i = 0; i < n; i++) {
            tc_ref_append(r, s[i].t, s[i].v);
            pub = a.pub;

            rc = ts_xor_append_bits(&a, buf, s[i].t, s[i].v);

            if (r->len > cap) {
                assert_int_equal(rc, TS_ERR_FULL);
                assert_int_equal(a.pub, pub);
                break;
            }

            assert_int_equal(rc, TS_OK);
            accepted++;
        }

        assert_true(accepted >= 1);
        tc_roundtrip("full", s, accepted, buf, ts_xor_bytes(&a));
        tc_ref_same("full", s, accepted, buf, ts_xor_bytes(&a));
        free(buf);
    }

    free(r);
}


/* after TS_ERR_FULL a smaller sample may still fit */

static void
test_full_then_smaller(void **state)
{
    size_t              len;
    uint8_t             buf[TS_XOR_MIN_CAP];
    tc_sample_t         s[2] = { { 0, 0 }, { 1, 0 } };
    ts_xor_appender_t   a;

    (void) state;

    /* 13 bytes and 1 bit used, 8 bytes and 7 bits left */
    len = tc_encode(s, 2, buf, sizeof(buf), &a);
    assert_int_equal(len, 2 + 1 + 8 + 2);

    /* 64-bit dod and 64-bit window: 145 bits */
    assert_int_equal(ts_xor_append_bits(&a, buf, 2 + (1LL << 40), ~0ULL),
                     TS_ERR_FULL);
    /* two bits each */
    assert_int_equal(ts_xor_append_bits(&a, buf, 2, 0), TS_OK);
    assert_int_equal(ts_xor_append_bits(&a, buf, 3, 0), TS_OK);
    assert_int_equal(ts_xor_count(&a), 4);
    assert_int_equal(ts_xor_bytes(&a), 13);
}


static void
test_max_samples(void **state)
{
    int                 rc;
    size_t              n, cap;
    int64_t             t;
    uint8_t            *buf;
    uint64_t            v;
    ts_xor_iter_t       it;
    ts_xor_appender_t   a;

    (void) state;

    cap = 20000;
    buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(ts_xor_init(&a, buf, cap), TS_OK);

    for (n = 0; n < TS_XOR_MAX_SAMPLES; n++) {
        assert_int_equal(ts_xor_append_bits(&a, buf, (int64_t) n * 10, 7),
                         TS_OK);
    }

    assert_int_equal(ts_xor_append_bits(&a, buf, (int64_t) n * 10, 7),
                     TS_ERR_FULL);
    assert_int_equal(ts_xor_count(&a), TS_XOR_MAX_SAMPLES);
    assert_int_equal(buf[0], 0xff);
    assert_int_equal(buf[1], 0xff);

    ts_xor_iter_init(&it, buf, ts_xor_bytes(&a));

    for (n = 0; (rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1; n++) {
        assert_int_equal(t, (int64_t) n * 10);
    }

    assert_int_equal(rc, 0);
    assert_int_equal(n, TS_XOR_MAX_SAMPLES);
    free(buf);
}


/*
 * Every truncation of every golden chunk: a prefix of the samples, then
 * TS_ERR_CORRUPT, again on the next call; never a read past the end.
 */

static void
tc_truncate_all(const char *name, const uint8_t *chunk, size_t full,
    size_t minimal, const tc_sample_t *s, size_t n)
{
    int          rc;
    size_t       len, m;
    tc_sample_t  out[TC_MAX];

    for (len = 0; len <= full; len++) {
        m = tc_decode_exact(chunk, len, out, TC_MAX, &rc);

        tc_check(name, m <= n);
        tc_same_samples(name, s, out, m);

        if (len < minimal) {
            tc_check(name, rc == TS_ERR_CORRUPT);
            tc_check(name, m < n);

        } else {
            tc_check(name, rc == 0 && m == n);
        }
    }
}


static void
test_truncation(void **state)
{
    size_t              i, n, len;
    uint8_t             buf[TC_REF_CAP];
    tc_sample_t         s[TC_MAX];
    ts_xor_appender_t   a;
    const tc_golden_t  *g;

    (void) state;

    for (i = 0; i < sizeof(tc_goldens) / sizeof(tc_goldens[0]); i++) {
        g = &tc_goldens[i];
        n = tc_prom_samples(g->name, s);
        tc_truncate_all(g->name, g->data, g->len, g->len - g->pad, s, n);
    }

    for (i = 0; i < sizeof(tc_edges) / sizeof(tc_edges[0]); i++) {
        len = tc_encode(tc_edges[i].s, 3, buf, sizeof(buf), &a);
        tc_truncate_all(tc_edges[i].name, buf, len, len, tc_edges[i].s, 3);
    }
}


static void
test_sticky_error(void **state)
{
    int64_t        t;
    uint64_t       v;
    ts_xor_iter_t  it;

    (void) state;

    /* the first sample and half of the second's delta */
    ts_xor_iter_init(&it, tc_prom_values, 17);

    assert_int_equal(ts_xor_iter_next_bits(&it, &t, &v), 1);
    assert_int_equal(ts_xor_iter_next_bits(&it, &t, &v), TS_ERR_CORRUPT);
    assert_int_equal(ts_xor_iter_next_bits(&it, &t, &v), TS_ERR_CORRUPT);
}


/* the header count disagrees with the data */

static void
test_header_count(void **state)
{
    int                 rc;
    size_t              len, m;
    uint8_t             buf[TC_REF_CAP];
    tc_sample_t         s[TC_MAX], out[TC_MAX];
    ts_xor_appender_t   a;

    (void) state;

    tc_prom_samples("counter", s);
    len = tc_encode(s, 120, buf, sizeof(buf), &a);

    /* five more than written: padding holds at most three '00' samples */
    buf[1] = 125;
    m = tc_decode_exact(buf, len, out, TC_MAX, &rc);
    assert_int_equal(rc, TS_ERR_CORRUPT);
    assert_true(m >= 120 && m < 125);
    tc_same_samples("count+5", s, out, 120);

    buf[1] = 7;
    m = tc_decode_exact(buf, len, out, TC_MAX, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(m, 7);
    tc_same_samples("count 7", s, out, 7);

    /* bytes after the last sample are ignored */
    buf[1] = 120;
    memset(buf + len, 0xff, 16);
    m = tc_decode_exact(buf, len + 16, out, TC_MAX, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(m, 120);
}


/*
 * Malformed chunks, built bit by bit: where decoding must stop.  "ok"
 * is how many samples come out first; fail 0 means the input is valid.
 */

typedef struct {
    const char  *name;
    unsigned     count;
    size_t       ok;
    int          fail;
    void       (*build)(tc_bw_t *w);
} tc_bad_t;


static void
tc_bad_first(tc_bw_t *w, uint64_t zigzag)
{
    while (zigzag >= 0x80) {
        tc_bw_put(w, (zigzag & 0x7f) | 0x80, 8);
        zigzag >>= 7;
    }

    tc_bw_put(w, zigzag, 8);
    tc_bw_put(w, TC_ONE, 32);
    tc_bw_put(w, 0, 32);
}


static void
tc_bad_none(tc_bw_t *w)
{
    (void) w;
}


static void
tc_bad_varint_11(tc_bw_t *w)
{
    int  i;

    for (i = 0; i < 10; i++) {
        tc_bw_put(w, 0x80, 8);
    }

    tc_bw_put(w, 0, 8);
}


static void
tc_bad_varint_big(tc_bw_t *w)
{
    int  i;

    for (i = 0; i < 9; i++) {
        tc_bw_put(w, 0xff, 8);
    }

    tc_bw_put(w, 0x02, 8);
}


static void
tc_bad_delta_zero(tc_bw_t *w)
{
    tc_bad_first(w, 2000);
    tc_bw_put(w, 0, 8);
    tc_bw_put(w, 0, 1);
}


static void
tc_bad_delta_back(tc_bw_t *w)
{
    int  i;

    /* t0 = 0, delta 2^63: t1 would be INT64_MIN */
    tc_bad_first(w, 0);

    for (i = 0; i < 9; i++) {
        tc_bw_put(w, 0x80, 8);
    }

    tc_bw_put(w, 0x01, 8);
    tc_bw_put(w, 0, 1);
}


static void
tc_bad_dod_stall(tc_bw_t *w)
{
    tc_bad_first(w, 2000);
    tc_bw_put(w, 0xe807, 16);
    tc_bw_put(w, 0, 1);

    /* dod -1000: the delta becomes 0 */
    tc_bw_put(w, 0x2, 2);
    tc_bw_put(w, (uint64_t) -1000 & 0x3fff, 14);
    tc_bw_put(w, 0, 1);
}


static void
tc_bad_window(tc_bw_t *w, unsigned leading, unsigned width)
{
    tc_bad_first(w, 2000);
    tc_bw_put(w, 0xe807, 16);
    tc_bw_put(w, 0x3, 2);
    tc_bw_put(w, leading, 5);
    tc_bw_put(w, width & 0x3f, 6);
    tc_bw_put(w, 1, 32);
    tc_bw_put(w, 0, 32);
}


static void
tc_bad_window_31_64(tc_bw_t *w)
{
    tc_bad_window(w, 31, 64);
}


static void
tc_bad_window_31_34(tc_bw_t *w)
{
    tc_bad_window(w, 31, 34);
}


static void
tc_bad_window_31_33(tc_bw_t *w)
{
    tc_bad_window(w, 31, 33);
}


static void
tc_bad_reuse_unset(tc_bw_t *w)
{
    /* Prometheus reads a window never set as 64 bits wide */
    tc_bad_first(w, 2000);
    tc_bw_put(w, 0xe807, 16);
    tc_bw_put(w, 0x2, 2);
    tc_bw_put(w, 1, 32);
    tc_bw_put(w, 0, 32);
}


static const tc_bad_t  tc_bads[] = {
    { "no samples", 0, 0, 0, tc_bad_none },
    { "count without data", 1, 0, TS_ERR_CORRUPT, tc_bad_none },
    { "varint of 11 bytes", 1, 0, TS_ERR_CORRUPT, tc_bad_varint_11 },
    { "varint over 64 bits", 1, 0, TS_ERR_CORRUPT, tc_bad_varint_big },
    { "first delta 0", 2, 1, TS_ERR_CORRUPT, tc_bad_delta_zero },
    { "first delta wraps back", 2, 1, TS_ERR_CORRUPT, tc_bad_delta_back },
    { "dod stalls time", 3, 2, TS_ERR_CORRUPT, tc_bad_dod_stall },
    { "window 31 + 64 bits", 2, 1, TS_ERR_CORRUPT, tc_bad_window_31_64 },
    { "window 31 + 34 bits", 2, 1, TS_ERR_CORRUPT, tc_bad_window_31_34 },
    { "window 31 + 33 bits", 2, 2, 0, tc_bad_window_31_33 },
    { "reuse before a window", 2, 2, 0, tc_bad_reuse_unset },
};


static void
test_malformed(void **state)
{
    int              rc;
    size_t           i, m, len;
    tc_bw_t          w;
    tc_sample_t      out[8];
    const tc_bad_t  *c;

    (void) state;

    for (i = 0; i < sizeof(tc_bads) / sizeof(tc_bads[0]); i++) {
        c = &tc_bads[i];

        memset(&w, 0, sizeof(w));
        tc_bw_put(&w, c->count, 16);
        c->build(&w);
        len = (w.bits + 7) / 8;

        m = tc_decode_exact(w.b, len, out, 8, &rc);
        tc_check(c->name, m == c->ok);
        tc_check(c->name, rc == c->fail);
    }

    m = tc_decode_exact(w.b, 0, out, 8, &rc);
    tc_check("empty", m == 0 && rc == TS_ERR_CORRUPT);
    m = tc_decode_exact(w.b, 1, out, 8, &rc);
    tc_check("one byte", m == 0 && rc == TS_ERR_CORRUPT);
}


/* random samples covering every bucket and value class */

static int64_t
tc_random_dod(void)
{
    int64_t  sign;

    static const int64_t  edges[] = {
        0, 1, -1, 8192, -8191, 8193, -8192, 65536, -65535, 65537, -65536,
        524288, -524287, 524289, -524288
    };

    sign = (tc_rand() & 1) ? 1 : -1;

    switch (tc_rand() % 8) {
    case 0:
    case 1:
        return 0;
    case 2:
    case 3:
        return (int64_t) (tc_rand() % 21) - 10;
    case 4:
    case 5:
        return edges[tc_rand() % (sizeof(edges) / sizeof(edges[0]))];
    case 6:
        return sign * (int64_t) (tc_rand() >> (20 + tc_rand() % 44));
    default:
        return sign * (int64_t) (tc_rand() >> (2 + tc_rand() % 62));
    }
}


static uint64_t
tc_random_value(uint64_t prev)
{
    static const uint64_t  specials[] = {
        TC_STALE, TC_NORMAL_NAN, 0x7ff0000000000001, 0xfff8000000000000,
        0x7ff0000000000000, 0xfff0000000000000, 0, 0x8000000000000000, 1
    };

    switch (tc_rand() % 8) {
    case 0:
    case 1:
        return prev;
    case 2:
        return prev ^ (tc_rand() & 0xffff) << (tc_rand() % 48);
    case 3:
        return prev ^ 1ULL << (tc_rand() % 64);
    case 4:
        return specials[tc_rand() % (sizeof(specials) / sizeof(specials[0]))];
    case 5:
        return tc_dbits((double) (tc_rand() % 100000) / 8);
    default:
        return tc_rand();
    }
}


/*
 * Fills s after prev (NULL for the first sample), prev2 the one before
 * prev or NULL.  0 if time cannot move forward any more.
 */

static int
tc_random_sample(tc_sample_t *s, const tc_sample_t *prev,
    const tc_sample_t *prev2)
{
    uint64_t  step;

    s->v = tc_random_value(prev ? prev->v : 0);

    if (prev == NULL) {
        switch (tc_rand() % 4) {
        case 0:
            s->t = (int64_t) tc_rand();
            break;
        case 1:
            s->t = -(int64_t) (tc_rand() % 100000);
            break;
        default:
            s->t = TC_BASE + (int64_t) (tc_rand() % 100000);
        }

        return 1;
    }

    if (prev->t == INT64_MAX) {
        return 0;
    }

    /* the last step plus a dod; a step that is not positive restarts */
    step = prev2 ? (uint64_t) prev->t - (uint64_t) prev2->t : 0;
    step += (uint64_t) tc_random_dod();

    if ((int64_t) step <= 0) {
        step = 1 + tc_rand() % 100000;
    }

    if (step > (uint64_t) INT64_MAX - (uint64_t) prev->t) {
        step = (uint64_t) INT64_MAX - (uint64_t) prev->t;
    }

    s->t = (int64_t) ((uint64_t) prev->t + step);

    return 1;
}


static size_t
tc_random_series(tc_sample_t *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!tc_random_sample(&s[i], i ? &s[i - 1] : NULL,
                              i > 1 ? &s[i - 2] : NULL))
        {
            break;
        }
    }

    return i;
}


/* 15 s steps with a few ms of jitter, random values */

static void
tc_scrape_series(tc_sample_t *s, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        s[i].t = TC_BASE + 15000 * (int64_t) i + (int64_t) (tc_rand() % 9);
        s[i].v = tc_random_value(i ? s[i - 1].v : 0);
    }
}


static void
test_random_roundtrip(void **state)
{
    size_t              round, n, len;
    uint8_t            *buf;
    tc_sample_t         s[TC_MAX];
    ts_xor_appender_t   a;

    (void) state;

    tc_rng_state = 0xdeadbeefcafef00dULL;
    buf = malloc(TC_REF_CAP);
    assert_non_null(buf);

    for (round = 0; round < 2000; round++) {
        n = tc_random_series(s, 1 + tc_rand() % 300);
        len = tc_encode(s, n, buf, TC_REF_CAP, &a);
        tc_roundtrip("random", s, n, buf, len);
        tc_ref_same("random", s, n, buf, len);
    }

    free(buf);
}


/*
 * A reader sees the appender between the writer's bit writes and its
 * publish: snapshot and live iteration must give the old samples only.
 */

static void
test_snapshot_mid_append(void **state)
{
    int                 rc;
    size_t              i, n, len, clen, m;
    uint8_t             buf[TC_REF_CAP], snap[TC_REF_CAP];
    uint8_t             clean[TC_REF_CAP];
    int64_t             t;
    uint64_t            v, pub, next;
    tc_sample_t         s[TC_MAX], out[TC_MAX];
    ts_xor_iter_t       it;
    ts_xor_appender_t   a, c;

    (void) state;

    tc_rng_state = 42;
    n = 200;
    tc_scrape_series(s, n);

    assert_int_equal(ts_xor_init(&a, buf, sizeof(buf)), TS_OK);

    for (i = 0; i < n; i++) {
        pub = a.pub;
        assert_int_equal(ts_xor_append_bits(&a, buf, s[i].t, s[i].v),
                         TS_OK);
        next = a.pub;

        /* what a reader sees if it loads "pub" before this publish */
        a.pub = pub;

        clen = tc_encode(s, i, clean, sizeof(clean), &c);

        len = sizeof(snap);
        assert_int_equal(ts_xor_snapshot(&a, buf, snap, &len), TS_OK);
        assert_int_equal(len, clen);
        assert_memory_equal(snap, clean, len);

        ts_xor_iter_init_live(&it, &a, buf);

        for (m = 0; (rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1; m++) {
            out[m].t = t;
            out[m].v = v;
        }

        assert_int_equal(rc, 0);
        assert_int_equal(m, i);
        tc_same_samples("live", s, out, m);

        a.pub = next;
    }

    /* and a writer that is idle: the snapshot is the chunk itself */
    len = sizeof(snap);
    assert_int_equal(ts_xor_snapshot(&a, buf, snap, &len), TS_OK);
    assert_int_equal(len, ts_xor_bytes(&a));
    assert_memory_equal(snap, buf, len);

    len = ts_xor_bytes(&a) - 1;
    assert_int_equal(ts_xor_snapshot(&a, buf, snap, &len), TS_ERR_FULL);
    assert_int_equal(len, ts_xor_bytes(&a) - 1);
}


/*
 * A writer killed mid-append: "pub" at sample k, everything else one
 * sample ahead, the header already counting it, garbage after the end.
 * ts_xor_recover() must give back the state of an appender that wrote
 * k samples, so that the chunk continues exactly as if nothing happened.
 */

static void
test_recover(void **state)
{
    size_t              i, k, n, len, clen, end;
    uint8_t             buf[TC_REF_CAP], clean[TC_REF_CAP];
    uint32_t            bits;
    tc_sample_t         s[TC_MAX];
    ts_xor_appender_t   a, c;

    static const size_t  crash[] = { 0, 1, 2, 3, 17, 64, 119 };

    (void) state;

    tc_rng_state = 7;
    n = 120;
    tc_scrape_series(s, n);
    clen = tc_encode(s, n, clean, sizeof(clean), &c);

    for (i = 0; i < sizeof(crash) / sizeof(crash[0]); i++) {
        k = crash[i];

        tc_encode(s, k, buf, sizeof(buf), &a);
        c = a;
        bits = (uint32_t) a.pub;

        assert_int_equal(ts_xor_append_bits(&a, buf, s[k].t, s[k].v),
                         TS_OK);
        a.pub = c.pub;

        end = (bits + 7) / 8;
        memset(buf + end, 0xa5, sizeof(buf) - end);

        if (bits & 7) {
            buf[bits / 8] |= (uint8_t) (0xff >> (bits & 7));
        }

        assert_int_equal(ts_xor_recover(&a, buf), TS_OK);
        assert_int_equal(a.pub, c.pub);
        assert_int_equal(a.t, c.t);
        assert_int_equal(a.v, c.v);
        assert_int_equal(a.tdelta, c.tdelta);
        assert_int_equal(a.leading, c.leading);
        assert_int_equal(a.trailing, c.trailing);
        /* the published bits are intact, the padding after them clear */
        assert_memory_equal(buf + 2, clean + 2, bits / 8 - 2);

        if (bits & 7) {
            assert_int_equal(buf[bits / 8],
                             clean[bits / 8] & (0xff00 >> (bits & 7)));
        }

        for (len = k; len < n; len++) {
            assert_int_equal(ts_xor_append_bits(&a, buf, s[len].t,
                                                s[len].v), TS_OK);
        }

        assert_int_equal(ts_xor_bytes(&a), clen);
        assert_memory_equal(buf, clean, clen);
    }

    /* a "pub" that cannot be right */
    a.pub = (uint64_t) 3 << 32 | 16;
    assert_int_equal(ts_xor_recover(&a, buf), TS_ERR_CORRUPT);
    a.pub = (uint64_t) 1 << 32 | (a.cap * 8 + 8);
    assert_int_equal(ts_xor_recover(&a, buf), TS_ERR_CORRUPT);
}


/*
 * The writer runs in a child process and appends to chunk after chunk
 * in MAP_SHARED memory, cutting on TS_ERR_FULL; the parent snapshots and
 * live-iterates the current chunk without a lock.  Every sample it sees
 * must be the one the writer appended.
 */

#define TC_SLOTS      128
#define TC_SLOT_CAP   4096


typedef struct {
    uint32_t           ready;
    uint32_t           slot;
    uint32_t           done;
    ts_xor_appender_t  a[TC_SLOTS];
    uint8_t            buf[TC_SLOTS][TC_SLOT_CAP];
} tc_shared_t;


static void
tc_expected(uint32_t slot, uint32_t i, tc_sample_t *s)
{
    s->t = (int64_t) slot * 100000000 + (int64_t) i * 15000
           + (int64_t) (i * 7 % 5);
    s->v = (i % 50 == 49) ? TC_STALE
                          : tc_dbits((double) slot + (double) (i % 9) / 4);
}


static void
tc_writer(tc_shared_t *sh)
{
    uint32_t           slot, i, k;
    tc_sample_t        s;
    volatile uint32_t  spin;

    while (!__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE)) {
        /* void */
    }

    for (slot = 0; slot < TC_SLOTS; slot++) {
        if (ts_xor_init(&sh->a[slot], sh->buf[slot], TC_SLOT_CAP) != TS_OK) {
            _exit(1);
        }

        __atomic_store_n(&sh->slot, slot, __ATOMIC_RELEASE);

        for (i = 0; /* void */; i++) {
            tc_expected(slot, i, &s);

            if (ts_xor_append_bits(&sh->a[slot], sh->buf[slot], s.t, s.v)
                != TS_OK)
            {
                break;
            }

            /* give the reader time to land between appends */
            for (k = 0; k < 500; k++) {
                spin = k;
            }

            (void) spin;
        }
    }

    __atomic_store_n(&sh->done, 1, __ATOMIC_RELEASE);
    _exit(0);
}


static uint32_t
tc_reader_check(tc_shared_t *sh, uint32_t slot, int live)
{
    int            rc;
    size_t         len;
    int64_t        t;
    uint32_t       i;
    uint64_t       v;
    tc_sample_t    s;
    ts_xor_iter_t  it;
    uint8_t        snap[TC_SLOT_CAP];

    if (live) {
        ts_xor_iter_init_live(&it, &sh->a[slot], sh->buf[slot]);

    } else {
        len = sizeof(snap);
        assert_int_equal(ts_xor_snapshot(&sh->a[slot], sh->buf[slot], snap,
                                         &len), TS_OK);
        ts_xor_iter_init(&it, snap, len);
    }

    for (i = 0; (rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1; i++) {
        tc_expected(slot, i, &s);

        if (t != s.t || v != s.v) {
            fail_msg("slot %u sample %u: %lld %016llx", slot, i,
                     (long long) t, (unsigned long long) v);
        }
    }

    assert_int_equal(rc, 0);

    return i;
}


static void
test_concurrent_reader(void **state)
{
    int           status;
    pid_t         pid;
    uint32_t      slot, reads, partial, n, i;
    uint32_t     *seen;
    tc_shared_t  *sh;

    (void) state;

    sh = mmap(NULL, sizeof(tc_shared_t), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    sh->slot = UINT32_MAX;

    /* (slot, count) of each read, to tell partial chunks afterwards */
    seen = malloc(2 * sizeof(uint32_t) << 20);
    assert_non_null(seen);

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        tc_writer(sh);
    }

    reads = 0;
    __atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);

    while (!__atomic_load_n(&sh->done, __ATOMIC_ACQUIRE) && reads < 1 << 20) {
        slot = __atomic_load_n(&sh->slot, __ATOMIC_ACQUIRE);

        if (slot == UINT32_MAX) {
            continue;
        }

        seen[2 * reads] = slot;
        seen[2 * reads + 1] = tc_reader_check(sh, slot, reads & 1);
        reads++;
    }

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    for (slot = 0; slot < TC_SLOTS; slot++) {
        n = tc_reader_check(sh, slot, 0);
        assert_int_equal(n, ts_xor_count(&sh->a[slot]));
        assert_true(n > 100);
    }

    partial = 0;

    for (i = 0; i < reads; i++) {
        partial += seen[2 * i + 1] < ts_xor_count(&sh->a[seen[2 * i]]);
    }

    print_message("concurrent: %u reads, %u of a chunk being filled\n",
                  reads, partial);

    free(seen);
    munmap(sh, sizeof(tc_shared_t));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_prometheus_chunks),
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_encoding_edges),
        cmocka_unit_test(test_varints),
        cmocka_unit_test(test_double_api),
        cmocka_unit_test(test_realistic_120),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_init_limits),
        cmocka_unit_test(test_buffer_full),
        cmocka_unit_test(test_full_then_smaller),
        cmocka_unit_test(test_max_samples),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_header_count),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_random_roundtrip),
        cmocka_unit_test(test_snapshot_mid_append),
        cmocka_unit_test(test_recover),
        cmocka_unit_test(test_concurrent_reader),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
