/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target for the XOR chunk codec.  Arbitrary bytes are decoded
 * as a chunk: the decoder must stop cleanly (end or TS_ERR_CORRUPT)
 * without reading outside the input.  Whatever samples came out are
 * encoded again; that chunk must decode to the same samples bit for bit,
 * its snapshot must be the chunk itself, and rebuilding the appender
 * from it (ts_xor_recover) must give back the same state.  Any mismatch
 * aborts.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_chunk.h"
#include "ts_error.h"


typedef struct {
    int64_t   t;
    uint64_t  v;
} fz_sample_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t fz_decode(const uint8_t *data, size_t size, fz_sample_t *s,
    size_t max, int *rc);
static void fz_reencode(const fz_sample_t *s, size_t n);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           rc;
    size_t        n, count, max;
    fz_sample_t  *s;

    count = size >= 2 ? ((size_t) data[0] << 8 | data[1]) : 0;

    /* samples after the second take 2 bits or more */
    max = 2 + size * 4;
    max = count < max ? count : max;

    s = malloc((max + 1) * sizeof(fz_sample_t));
    if (s == NULL) {
        return 0;
    }

    n = fz_decode(data, size, s, max, &rc);

    if (rc != 0 && rc != TS_ERR_CORRUPT) {
        abort();
    }

    /* a clean end means every sample the header announced */
    if (rc == 0 && n != count) {
        abort();
    }

    fz_reencode(s, n);
    free(s);

    return 0;
}


static size_t
fz_decode(const uint8_t *data, size_t size, fz_sample_t *s, size_t max,
    int *rc)
{
    size_t         n;
    int64_t        t;
    uint64_t       v;
    ts_xor_iter_t  it;

    ts_xor_iter_init(&it, data, size);

    for (n = 0; (*rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1; n++) {
        if (n == max || (n > 0 && t <= s[n - 1].t)) {
            abort();
        }

        s[n].t = t;
        s[n].v = v;
    }

    return n;
}


static void
fz_reencode(const fz_sample_t *s, size_t n)
{
    int                rc;
    size_t             i, cap, len, m;
    uint8_t           *buf, *snap;
    fz_sample_t       *back;
    ts_xor_appender_t  a, keep;

    cap = TS_XOR_HEADER_SIZE + (n ? n : 1) * TS_XOR_SAMPLE_MAX_BYTES;

    buf = malloc(cap);
    snap = malloc(cap);
    back = malloc((n + 1) * sizeof(fz_sample_t));

    if (buf == NULL || snap == NULL || back == NULL) {
        abort();
    }

    if (ts_xor_init(&a, buf, cap) != TS_OK) {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (ts_xor_append_bits(&a, buf, s[i].t, s[i].v) != TS_OK) {
            abort();
        }
    }

    len = ts_xor_bytes(&a);
    m = fz_decode(buf, len, back, n, &rc);

    if (rc != 0 || m != n || memcmp(back, s, n * sizeof(fz_sample_t)) != 0)
    {
        abort();
    }

    i = cap;

    if (ts_xor_snapshot(&a, buf, snap, &i) != TS_OK || i != len
        || memcmp(snap, buf, len) != 0)
    {
        abort();
    }

    keep = a;

    if (ts_xor_recover(&a, buf) != TS_OK || a.pub != keep.pub
        || a.t != keep.t || a.v != keep.v || a.tdelta != keep.tdelta
        || a.leading != keep.leading || a.trailing != keep.trailing)
    {
        abort();
    }

    free(back);
    free(snap);
    free(buf);
}
