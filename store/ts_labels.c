/*
 * Copyright (C) ngx_tsdb authors
 *
 * Label sets.  Nothing here allocates or keeps state: every function works
 * on the caller's array of views, so it is safe from any thread or
 * process and on label bytes in shared memory.
 *
 * Rules and their sources:
 *   - syntax: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 *     [a-zA-Z_][a-zA-Z0-9_]*, values UTF-8 (remote-write 1.0 spec;
 *     Prometheus labels.IsValid with the legacy name rules of 2.42);
 *     "__"-prefixed names are reserved for the system but accepted on
 *     ingest, as Prometheus does;
 *   - order: Prometheus's receiver does not reject unsorted sets, it
 *     sorts them (storage/remote codec.go labelProtosToLabels: a
 *     ScratchBuilder, Add each pair, Sort), so neither do we;
 *   - empty values: tsdb/head_append.go getOrCreate() stores
 *     lset.WithoutEmpty() after the write handler has validated and
 *     duplicate-checked the full set, so an empty-valued label is
 *     checked like any other and then dropped;
 *   - limits and reason wording: Mimir's distributor validateLabels()
 *     (pkg/distributor/validate.go): metric name first, then the count,
 *     then per label name length, name syntax, value length, value
 *     UTF-8, duplicates; default limits from Mimir's limits.go.
 *
 * The hash is XXH64 with seed 0 over "name\xffvalue\xff..." exactly as
 * Prometheus's labels.Labels.Hash() (model/labels, slice build).  It is
 * computed with explicit little-endian loads, so its value does not
 * depend on the host and may be stored on disk.
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_labels.h"


#define TS_XXH_P1  0x9E3779B185EBCA87ULL
#define TS_XXH_P2  0xC2B2AE3D27D4EB4FULL
#define TS_XXH_P3  0x165667B19E3779F9ULL
#define TS_XXH_P4  0x85EBCA77C2B2AE63ULL
#define TS_XXH_P5  0x27D4EB2F165667C5ULL

#define TS_LABELS_ISORT_MAX  16
#define TS_LABELS_HASH_BUF   1024


typedef struct {
    uint64_t        v[4];
    uint64_t        total;
    uint8_t         mem[32];
    uint32_t        memsize;
} ts_xxh64_t;


typedef struct {
    char           *p;
    char           *end;
} ts_out_t;


static void ts_out_uint(ts_out_t *o, unsigned v);


static const char *ts_reject_names[] = {
    "none",
    "missing_metric_name",
    "invalid_metric_name",
    "max_label_names_per_series",
    "empty_label_name",
    "label_name_too_long",
    "label_invalid",
    "duplicate_label_names",
    "label_value_too_long",
    "label_value_invalid",
    "nul_in_string",
    "bad_symbol_ref",
    "too_many_samples",
    "invalid_native_histogram",
    "max_native_histogram_buckets",
    "exemplar_invalid",
    "too_many_exemplars",
    "metadata_invalid",
    "body_too_large",
    "malformed_body",
    "too_many_series",
    "decode_memory",
    "invalid_symbols"
};


void
ts_limits_default(ts_limits_t *lim)
{
    lim->max_body_size = 32 * 1024 * 1024;
    lim->max_decode_memory = 256 * 1024 * 1024;
    lim->max_series = 100000;
    lim->max_samples_per_series = 100000;
    lim->max_label_names_per_series = 30;
    lim->max_label_name_length = 1024;
    lim->max_label_value_length = 2048;
    lim->max_exemplars_per_series = 0;
    lim->max_exemplar_labels_length = 128;
    lim->max_histogram_buckets = 0;
    lim->max_metadata_length = 1024;
}


const char *
ts_reject_name(ts_reject_code_t code)
{
    if ((unsigned) code >= TS_REJECT_LAST) {
        return "unknown";
    }

    return ts_reject_names[code];
}


/* reasons */

static void
ts_out_char(ts_out_t *o, char c)
{
    if (o->p < o->end) {
        *o->p++ = c;
    }
}


static void
ts_out_str(ts_out_t *o, const char *s)
{
    while (*s) {
        ts_out_char(o, *s++);
    }
}


static void
ts_out_quoted(ts_out_t *o, const char *s, size_t len)
{
    static const char  hex[] = "0123456789abcdef";
    size_t             i, n;
    unsigned char      c;

    n = len < TS_REJECT_QUOTE_MAX ? len : TS_REJECT_QUOTE_MAX;

    for (i = 0; i < n; i++) {
        c = (unsigned char) s[i];

        if (c < 0x20 || c > 0x7e || c == '\'' || c == '\\') {
            ts_out_char(o, '\\');
            ts_out_char(o, 'x');
            ts_out_char(o, hex[c >> 4]);
            ts_out_char(o, hex[c & 0xf]);
            continue;
        }

        ts_out_char(o, (char) c);
    }

    if (n < len) {
        ts_out_str(o, "...");
    }
}


static void
ts_out_int(ts_out_t *o, int v)
{
    if (v < 0) {
        ts_out_char(o, '-');
        ts_out_uint(o, 0u - (unsigned) v);
        return;
    }

    ts_out_uint(o, (unsigned) v);
}


static void
ts_out_uint(ts_out_t *o, unsigned v)
{
    char   buf[16];
    int    i;

    i = 0;

    do {
        buf[i++] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    while (i) {
        ts_out_char(o, buf[--i]);
    }
}


void
ts_reject_set(ts_reject_t *why, ts_reject_code_t code, const char *fmt, ...)
{
    va_list      ap;
    ts_out_t     o;
    const char  *s;
    size_t       len;

    if (why == NULL) {
        return;
    }

    why->code = code;
    o.p = why->msg;
    o.end = why->msg + sizeof(why->msg) - 1;

    va_start(ap, fmt);

    for ( /* void */ ; *fmt; fmt++) {
        if (fmt[0] != '%' || fmt[1] == '\0'
            || strchr("sud", fmt[1]) == NULL)
        {
            ts_out_char(&o, *fmt);
            continue;
        }

        fmt++;

        if (*fmt == 'u') {
            ts_out_uint(&o, va_arg(ap, unsigned));
            continue;
        }

        if (*fmt == 'd') {
            ts_out_int(&o, va_arg(ap, int));
            continue;
        }

        s = va_arg(ap, const char *);
        len = va_arg(ap, size_t);
        ts_out_quoted(&o, s, len);
    }

    va_end(ap);

    *o.p = '\0';
}


/* syntax */

/* bit 1: [a-zA-Z0-9_], bit 2: ':' too; digits are refused first */
static const uint8_t  ts_name_class[256] = {
    ['0'] = 3, ['1'] = 3, ['2'] = 3, ['3'] = 3, ['4'] = 3,
    ['5'] = 3, ['6'] = 3, ['7'] = 3, ['8'] = 3, ['9'] = 3,
    ['A'] = 3, ['B'] = 3, ['C'] = 3, ['D'] = 3, ['E'] = 3, ['F'] = 3,
    ['G'] = 3, ['H'] = 3, ['I'] = 3, ['J'] = 3, ['K'] = 3, ['L'] = 3,
    ['M'] = 3, ['N'] = 3, ['O'] = 3, ['P'] = 3, ['Q'] = 3, ['R'] = 3,
    ['S'] = 3, ['T'] = 3, ['U'] = 3, ['V'] = 3, ['W'] = 3, ['X'] = 3,
    ['Y'] = 3, ['Z'] = 3,
    ['a'] = 3, ['b'] = 3, ['c'] = 3, ['d'] = 3, ['e'] = 3, ['f'] = 3,
    ['g'] = 3, ['h'] = 3, ['i'] = 3, ['j'] = 3, ['k'] = 3, ['l'] = 3,
    ['m'] = 3, ['n'] = 3, ['o'] = 3, ['p'] = 3, ['q'] = 3, ['r'] = 3,
    ['s'] = 3, ['t'] = 3, ['u'] = 3, ['v'] = 3, ['w'] = 3, ['x'] = 3,
    ['y'] = 3, ['z'] = 3,
    ['_'] = 3, [':'] = 2
};


static int
ts_name_valid(const char *s, size_t len, uint8_t bit)
{
    size_t  i;

    if (len == 0 || (s[0] >= '0' && s[0] <= '9')) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!(ts_name_class[(unsigned char) s[i]] & bit)) {
            return 0;
        }
    }

    return 1;
}


int
ts_metric_name_valid(const char *s, size_t len)
{
    return ts_name_valid(s, len, 2);
}


int
ts_label_name_valid(const char *s, size_t len)
{
    return ts_name_valid(s, len, 1);
}


/* length of the sequence at s[0..len), 0 if ill-formed (Go's rules) */
static size_t
ts_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char  c, lo, hi;
    size_t         n, i;

    c = s[0];
    lo = 0x80;
    hi = 0xbf;

    if (c < 0x80) {
        return 1;

    } else if (c >= 0xc2 && c <= 0xdf) {
        n = 2;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        lo = (c == 0xe0) ? 0xa0 : 0x80;
        hi = (c == 0xed) ? 0x9f : 0xbf;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        lo = (c == 0xf0) ? 0x90 : 0x80;
        hi = (c == 0xf4) ? 0x8f : 0xbf;

    } else {
        return 0;
    }

    if (len < n || s[1] < lo || s[1] > hi) {
        return 0;
    }

    for (i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }

    return n;
}


int
ts_utf8_valid(const char *s, size_t len)
{
    const unsigned char  *p, *end;
    uint64_t              w;
    size_t                n;

    p = (const unsigned char *) s;
    end = p + len;

    while (p < end) {

        /* ASCII runs, 8 bytes at a time */
        while (end - p >= 8) {
            memcpy(&w, p, 8);
            if (w & 0x8080808080808080ULL) {
                break;
            }
            p += 8;
        }

        if (p == end) {
            break;
        }

        n = ts_utf8_seq(p, (size_t) (end - p));
        if (n == 0) {
            return 0;
        }

        p += n;
    }

    return 1;
}


size_t
ts_utf8_count(const char *s, size_t len)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


size_t
ts_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max) {
        return len;
    }

    while (max > 0 && ((unsigned char) s[max] & 0xc0) == 0x80) {
        max--;
    }

    return max;
}


/* order */

static int
ts_str_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    size_t  n;
    int     rc;

    n = na < nb ? na : nb;

    rc = n ? memcmp(a, b, n) : 0;
    if (rc != 0) {
        return rc;
    }

    return (na > nb) - (na < nb);
}


static int
ts_label_qcmp(const void *a, const void *b)
{
    const ts_label_t  *x = a, *y = b;

    return ts_str_cmp(x->name, x->name_len, y->name, y->name_len);
}


int
ts_labels_sorted(const ts_label_t *l, uint32_t n)
{
    uint32_t  i;

    for (i = 1; i < n; i++) {
        if (ts_label_qcmp(&l[i - 1], &l[i]) > 0) {
            return 0;
        }
    }

    return 1;
}


void
ts_labels_sort(ts_label_t *l, uint32_t n)
{
    uint32_t    i, j;
    ts_label_t  t;

    if (ts_labels_sorted(l, n)) {
        return;
    }

    if (n > TS_LABELS_ISORT_MAX) {
        qsort(l, n, sizeof(ts_label_t), ts_label_qcmp);
        return;
    }

    for (i = 1; i < n; i++) {
        t = l[i];

        for (j = i; j > 0 && ts_label_qcmp(&l[j - 1], &t) > 0; j--) {
            l[j] = l[j - 1];
        }

        l[j] = t;
    }
}


int
ts_labels_cmp(const ts_label_t *a, uint32_t na, const ts_label_t *b,
    uint32_t nb)
{
    uint32_t  i, n;
    int       rc;

    n = na < nb ? na : nb;

    for (i = 0; i < n; i++) {
        rc = ts_str_cmp(a[i].name, a[i].name_len, b[i].name, b[i].name_len);
        if (rc != 0) {
            return rc;
        }

        rc = ts_str_cmp(a[i].value, a[i].value_len, b[i].value,
                        b[i].value_len);
        if (rc != 0) {
            return rc;
        }
    }

    return (na > nb) - (na < nb);
}


/* XXH64, streaming, after the published algorithm description */

static inline uint64_t
ts_rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64 - r));
}


static inline uint64_t
ts_le64(const uint8_t *p)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t  v;

    memcpy(&v, p, 8);

    return v;
#else
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
           | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
           | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
           | (uint64_t) p[7] << 56;
#endif
}


static uint64_t
ts_le32(const uint8_t *p)
{
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
           | (uint64_t) p[3] << 24;
}


static inline uint64_t
ts_xxh_round(uint64_t acc, uint64_t in)
{
    acc += in * TS_XXH_P2;
    acc = ts_rotl64(acc, 31);
    return acc * TS_XXH_P1;
}


static inline uint64_t
ts_xxh_merge(uint64_t acc, uint64_t v)
{
    acc ^= ts_xxh_round(0, v);
    return acc * TS_XXH_P1 + TS_XXH_P4;
}


static void
ts_xxh_init(ts_xxh64_t *h, uint64_t seed)
{
    h->v[0] = seed + TS_XXH_P1 + TS_XXH_P2;
    h->v[1] = seed + TS_XXH_P2;
    h->v[2] = seed;
    h->v[3] = seed - TS_XXH_P1;
    h->total = 0;
    h->memsize = 0;
}


static inline void
ts_xxh_stripe(ts_xxh64_t *h, const uint8_t *p)
{
    h->v[0] = ts_xxh_round(h->v[0], ts_le64(p));
    h->v[1] = ts_xxh_round(h->v[1], ts_le64(p + 8));
    h->v[2] = ts_xxh_round(h->v[2], ts_le64(p + 16));
    h->v[3] = ts_xxh_round(h->v[3], ts_le64(p + 24));
}


static void
ts_xxh_update(ts_xxh64_t *h, const void *in, size_t len)
{
    const uint8_t  *p = in, *end;
    size_t          fill;

    if (len == 0) {
        return;
    }

    h->total += len;

    if (h->memsize + len < 32) {
        memcpy(h->mem + h->memsize, p, len);
        h->memsize += (uint32_t) len;
        return;
    }

    end = p + len;

    if (h->memsize) {
        fill = 32 - h->memsize;
        memcpy(h->mem + h->memsize, p, fill);
        ts_xxh_stripe(h, h->mem);
        p += fill;
        h->memsize = 0;
    }

    while (end - p >= 32) {
        ts_xxh_stripe(h, p);
        p += 32;
    }

    memcpy(h->mem, p, (size_t) (end - p));
    h->memsize = (uint32_t) (end - p);
}


/* the four lanes into one, after 32 or more bytes */
static inline uint64_t
ts_xxh_lanes(const uint64_t *v)
{
    uint64_t  acc;

    acc = ts_rotl64(v[0], 1) + ts_rotl64(v[1], 7) + ts_rotl64(v[2], 12)
          + ts_rotl64(v[3], 18);
    acc = ts_xxh_merge(acc, v[0]);
    acc = ts_xxh_merge(acc, v[1]);
    acc = ts_xxh_merge(acc, v[2]);
    acc = ts_xxh_merge(acc, v[3]);

    return acc;
}


/* the last n < 32 bytes at p and the avalanche */
static inline uint64_t
ts_xxh_tail(uint64_t acc, const uint8_t *p, size_t n)
{
    size_t  i;

    for (i = 0; n - i >= 8; i += 8) {
        acc ^= ts_xxh_round(0, ts_le64(p + i));
        acc = ts_rotl64(acc, 27) * TS_XXH_P1 + TS_XXH_P4;
    }

    if (n - i >= 4) {
        acc ^= ts_le32(p + i) * TS_XXH_P1;
        acc = ts_rotl64(acc, 23) * TS_XXH_P2 + TS_XXH_P3;
        i += 4;
    }

    for ( /* void */ ; i < n; i++) {
        acc ^= p[i] * TS_XXH_P5;
        acc = ts_rotl64(acc, 11) * TS_XXH_P1;
    }

    acc ^= acc >> 33;
    acc *= TS_XXH_P2;
    acc ^= acc >> 29;
    acc *= TS_XXH_P3;
    acc ^= acc >> 32;

    return acc;
}


static uint64_t
ts_xxh_digest(const ts_xxh64_t *h, uint64_t seed)
{
    uint64_t  acc;

    acc = (h->total >= 32) ? ts_xxh_lanes(h->v) : seed + TS_XXH_P5;
    acc += h->total;

    return ts_xxh_tail(acc, h->mem, h->memsize);
}


/* one buffer: the stripes read in place, nothing copied */
uint64_t
ts_xxh64(const void *in, size_t len, uint64_t seed)
{
    const uint8_t  *p = in;
    uint64_t        acc;
    size_t          i;
    ts_xxh64_t      h;

    i = 0;

    if (len >= 32) {
        ts_xxh_init(&h, seed);

        for ( /* void */ ; len - i >= 32; i += 32) {
            ts_xxh_stripe(&h, p + i);
        }

        acc = ts_xxh_lanes(h.v);

    } else {
        acc = seed + TS_XXH_P5;
    }

    acc += len;

    return ts_xxh_tail(acc, len ? p + i : p, len - i);
}


/* a short string's copy without a call: most label strings */
static void
ts_labels_copy(uint8_t *d, const char *s, size_t n)
{
    uint64_t  a, b;
    uint32_t  x, y;

    if (n > 16) {
        memcpy(d, s, n);

    } else if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);

    } else if (n >= 4) {
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        memcpy(d, &x, 4);
        memcpy(d + n - 4, &y, 4);

    } else if (n > 0) {
        d[0] = (uint8_t) s[0];
        d[n / 2] = (uint8_t) s[n / 2];
        d[n - 1] = (uint8_t) s[n - 1];
    }
}


/*
 * Like Prometheus: sets that fit in a small buffer are laid out and
 * hashed in one call; larger ones are streamed.  Same value either way.
 */
uint64_t
ts_labels_hash(const ts_label_t *l, uint32_t n)
{
    return ts_labels_hash_in(l, n, NULL, NULL);
}


/*
 * A string of up to 16 bytes that lies in [start, end) and starts 16 or
 * more bytes before end is laid out with one 16-byte move (the bytes
 * after it are overwritten by the next string or not hashed); others as
 * ts_labels_copy() does.
 */
#define ts_labels_in16(p, lo, last)                                           \
    ((uintptr_t) (p) >= (lo) && (uintptr_t) (p) <= (last))

uint64_t
ts_labels_hash_in(const ts_label_t *l, uint32_t n, const char *start,
    const char *end)
{
    uintptr_t             lo, last;
    static const uint8_t  sep = 0xff;
    ts_xxh64_t            h;
    uint8_t               buf[TS_LABELS_HASH_BUF + 16];
    size_t                k;
    uint32_t              i;

    /* strings starting in [lo, last] may be read 16 bytes at a time */

    if (start != NULL && end != NULL && end - start >= 16) {
        lo = (uintptr_t) start;
        last = (uintptr_t) end - 16;

    } else {
        lo = 1;
        last = 0;
    }

    for (i = 0, k = 0; i < n; i++) {
        if ((size_t) l[i].name_len + l[i].value_len + 2
            > TS_LABELS_HASH_BUF - k)
        {
            break;
        }

        if (l[i].name_len <= 16 && ts_labels_in16(l[i].name, lo, last)) {
            memcpy(buf + k, l[i].name, 16);

        } else {
            ts_labels_copy(buf + k, l[i].name, l[i].name_len);
        }

        k += l[i].name_len;
        buf[k++] = sep;

        if (l[i].value_len <= 16 && ts_labels_in16(l[i].value, lo, last)) {
            memcpy(buf + k, l[i].value, 16);

        } else {
            ts_labels_copy(buf + k, l[i].value, l[i].value_len);
        }

        k += l[i].value_len;
        buf[k++] = sep;
    }

    if (i == n) {
        return ts_xxh64(buf, k, 0);
    }

    ts_xxh_init(&h, 0);
    ts_xxh_update(&h, buf, k);

    for ( /* void */ ; i < n; i++) {
        ts_xxh_update(&h, l[i].name, l[i].name_len);
        ts_xxh_update(&h, &sep, 1);
        ts_xxh_update(&h, l[i].value, l[i].value_len);
        ts_xxh_update(&h, &sep, 1);
    }

    return ts_xxh_digest(&h, 0);
}


/* validation */

const ts_label_t *
ts_labels_find(const ts_label_t *l, uint32_t n, const char *name,
    size_t len)
{
    uint32_t  i;

    for (i = 0; i < n; i++) {
        if (l[i].name_len == len
            && (len == 0 || memcmp(l[i].name, name, len) == 0))
        {
            return &l[i];
        }
    }

    return NULL;
}


static const ts_label_t *
ts_labels_metric(const ts_label_t *l, uint32_t n)
{
    return ts_labels_find(l, n, TS_METRIC_NAME_LABEL,
                          TS_METRIC_NAME_LABEL_LEN);
}


static int
ts_labels_check_name(const ts_label_t *mn, ts_reject_t *why)
{
    if (mn == NULL || mn->value_len == 0) {
        ts_reject_set(why, TS_REJECT_MISSING_METRIC_NAME,
                      "received series has no metric name");
        return TS_ERR_INVALID;
    }

    if (!ts_metric_name_valid(mn->value, mn->value_len)) {
        ts_reject_set(why, TS_REJECT_INVALID_METRIC_NAME,
                      "received a series with invalid metric name: '%s'",
                      mn->value, (size_t) mn->value_len);
        return TS_ERR_INVALID;
    }

    return TS_OK;
}


static int
ts_labels_check_one(const ts_label_t *l, const ts_label_t *prev,
    const ts_label_t *mn, const ts_limits_t *lim, ts_reject_t *why)
{
    if (l->name_len == 0) {
        ts_reject_set(why, TS_REJECT_EMPTY_LABEL_NAME,
                      "received a series with an empty label name, "
                      "metric: '%s'", mn->value, (size_t) mn->value_len);
        return TS_ERR_INVALID;
    }

    if (l->name_len > lim->max_label_name_length) {
        ts_reject_set(why, TS_REJECT_LABEL_NAME_TOO_LONG,
                      "received a series whose label name length exceeds "
                      "the limit (actual: %u, limit: %u), label: '%s' "
                      "metric: '%s'", (unsigned) l->name_len,
                      (unsigned) lim->max_label_name_length,
                      l->name, (size_t) l->name_len,
                      mn->value, (size_t) mn->value_len);
        return TS_ERR_LIMIT;
    }

    if (!ts_label_name_valid(l->name, l->name_len)) {
        ts_reject_set(why, TS_REJECT_INVALID_LABEL_NAME,
                      "received a series with an invalid label: '%s' "
                      "metric: '%s'", l->name, (size_t) l->name_len,
                      mn->value, (size_t) mn->value_len);
        return TS_ERR_INVALID;
    }

    if (prev != NULL && prev->name_len == l->name_len
        && memcmp(prev->name, l->name, l->name_len) == 0)
    {
        ts_reject_set(why, TS_REJECT_DUPLICATE_LABEL_NAME,
                      "received a series with duplicate label name, "
                      "label: '%s' metric: '%s'",
                      l->name, (size_t) l->name_len,
                      mn->value, (size_t) mn->value_len);
        return TS_ERR_INVALID;
    }

    if (l->value_len > lim->max_label_value_length) {
        ts_reject_set(why, TS_REJECT_LABEL_VALUE_TOO_LONG,
                      "received a series whose label value length exceeds "
                      "the limit (actual: %u, limit: %u), label: '%s' "
                      "metric: '%s'", (unsigned) l->value_len,
                      (unsigned) lim->max_label_value_length,
                      l->name, (size_t) l->name_len,
                      mn->value, (size_t) mn->value_len);
        return TS_ERR_LIMIT;
    }

    if (!ts_utf8_valid(l->value, l->value_len)) {
        ts_reject_set(why, TS_REJECT_INVALID_LABEL_VALUE,
                      "received a series with invalid value in label '%s': "
                      "not valid UTF-8, metric: '%s'",
                      l->name, (size_t) l->name_len,
                      mn->value, (size_t) mn->value_len);
        return TS_ERR_INVALID;
    }

    return TS_OK;
}


static uint32_t
ts_labels_drop_empty(ts_label_t *l, uint32_t n)
{
    uint32_t  i, k;

    for (i = 0, k = 0; i < n; i++) {
        if (l[i].value_len != 0) {
            l[k++] = l[i];
        }
    }

    return k;
}


int
ts_labels_validate(ts_label_t *l, uint32_t *n, const ts_limits_t *lim,
    ts_reject_t *why)
{
    const ts_label_t  *mn;
    uint32_t           i;
    int                rc;

    mn = ts_labels_metric(l, *n);

    rc = ts_labels_check_name(mn, why);
    if (rc != TS_OK) {
        return rc;
    }

    if (*n > lim->max_label_names_per_series) {
        ts_reject_set(why, TS_REJECT_TOO_MANY_LABELS,
                      "received a series whose number of labels exceeds "
                      "the limit (actual: %u, limit: %u) metric: '%s'",
                      (unsigned) *n,
                      (unsigned) lim->max_label_names_per_series,
                      mn->value, (size_t) mn->value_len);
        return TS_ERR_LIMIT;
    }

    ts_labels_sort(l, *n);

    /* the sort moved it */
    mn = ts_labels_metric(l, *n);

    for (i = 0; i < *n; i++) {
        rc = ts_labels_check_one(&l[i], i ? &l[i - 1] : NULL, mn, lim, why);
        if (rc != TS_OK) {
            return rc;
        }
    }

    *n = ts_labels_drop_empty(l, *n);

    if (why != NULL) {
        why->code = TS_REJECT_NONE;
        why->msg[0] = '\0';
    }

    return TS_OK;
}
