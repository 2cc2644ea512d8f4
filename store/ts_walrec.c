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
 */

#include "ts_walrec.h"


#define TS_WALREC_VARINT_MAX   10
#define TS_WALREC_SAMPLE_MIN   10      /* two 1-byte varints + 8 bytes */
#define TS_WALREC_SERIES_MIN   2       /* ref + label count */
#define TS_WALREC_LABEL_MIN    2       /* two empty strings */


static size_t ts_walrec_uvarint_len(uint64_t v);
static uint8_t *ts_walrec_put_uvarint(uint8_t *p, uint64_t v);
static uint8_t *ts_walrec_put64(uint8_t *p, uint64_t v);
static uint64_t ts_walrec_zigzag(uint64_t v);
static uint64_t ts_walrec_unzigzag(uint64_t v);
static int ts_walrec_get_uvarint(ts_walrec_reader_t *rd, uint64_t *v);
static int ts_walrec_get64(ts_walrec_reader_t *rd, uint64_t *v);
static int ts_walrec_get_str(ts_walrec_reader_t *rd, ts_walrec_str_t *s);
static int ts_walrec_open(ts_walrec_reader_t *rd, const void *payload,
    size_t len, size_t min, uint64_t *count);
static int ts_walrec_end(ts_walrec_reader_t *rd);


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


static uint8_t *
ts_walrec_put64(uint8_t *p, uint64_t v)
{
    int  i;

    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t) (v >> (8 * i));
    }

    return p + 8;
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
    rd->started = 0;

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

size_t
ts_walrec_samples_size(const ts_walrec_sample_t *s, size_t n)
{
    size_t    i, size;
    uint64_t  ref, t;

    size = ts_walrec_uvarint_len(n) + 8 * n;
    ref = 0;
    t = 0;

    for (i = 0; i < n; i++) {
        size += ts_walrec_uvarint_len(i ? ts_walrec_zigzag(s[i].ref - ref)
                                        : s[i].ref);
        size += ts_walrec_uvarint_len(ts_walrec_zigzag((uint64_t) s[i].t
                                                       - t));
        ref = s[i].ref;
        t = (uint64_t) s[i].t;
    }

    return size;
}


int
ts_walrec_samples_encode(uint8_t *buf, size_t size,
    const ts_walrec_sample_t *s, size_t n, size_t *len)
{
    size_t    i;
    uint8_t  *p;
    uint64_t  ref, t;

    *len = ts_walrec_samples_size(s, n);

    if (*len > size) {
        return TS_ERR_FULL;
    }

    p = ts_walrec_put_uvarint(buf, n);
    ref = 0;
    t = 0;

    /* the first t is zigzag(t - 0): negative timestamps stay short */

    for (i = 0; i < n; i++) {
        p = ts_walrec_put_uvarint(p, i ? ts_walrec_zigzag(s[i].ref - ref)
                                       : s[i].ref);
        p = ts_walrec_put_uvarint(p, ts_walrec_zigzag((uint64_t) s[i].t
                                                      - t));
        p = ts_walrec_put64(p, s[i].v);
        ref = s[i].ref;
        t = (uint64_t) s[i].t;
    }

    return TS_OK;
}


int
ts_walrec_samples_open(ts_walrec_reader_t *rd, const void *payload,
    size_t len, uint64_t *count)
{
    return ts_walrec_open(rd, payload, len, TS_WALREC_SAMPLE_MIN, count);
}


int
ts_walrec_samples_next(ts_walrec_reader_t *rd, ts_walrec_sample_t *s)
{
    uint64_t  dref, dt, v;

    if (rd->left == 0) {
        return ts_walrec_end(rd);
    }

    if (ts_walrec_get_uvarint(rd, &dref) != TS_OK
        || ts_walrec_get_uvarint(rd, &dt) != TS_OK
        || ts_walrec_get64(rd, &v) != TS_OK)
    {
        return TS_ERR_CORRUPT;
    }

    rd->ref = rd->started ? rd->ref + ts_walrec_unzigzag(dref) : dref;
    rd->t += ts_walrec_unzigzag(dt);
    rd->started = 1;
    rd->left--;

    s->ref = rd->ref;
    s->t = (int64_t) rd->t;
    s->v = v;

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

    default:
        return "unknown";
    }
}
