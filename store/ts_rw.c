/*
 * Copyright (C) ngx_tsdb authors
 *
 * Remote-write decoding.  Flow: ts_rw_uncompress() (declared length
 * checked before any allocation) -> ts_rw_decode(): protobuf-c unpack
 * through a counting allocator -> one pass over the wire bytes for what
 * unpack loses (exact v2 symbol lengths, NUL bytes inside strings) ->
 * totals -> one array per kind (labels, samples, histograms, spans,
 * exemplars) carved per series -> per-series checks.
 *
 * Invariants:
 *   - every byte allocated goes through ts_rw_alloc(), which refuses
 *     past lim->max_decode_memory; our own arrays are listed in req->mem
 *     so ts_rw_request_free() releases exactly what was taken;
 *   - decoding never reads outside buf[0 .. len) or the unpacked
 *     message; all v2 refs are bounds-checked before use;
 *   - an accepted series (reject == TS_REJECT_NONE) has sorted, valid
 *     labels without empty values, valid histograms and only valid
 *     exemplars; a rejected one is counted whole in req->rejected;
 *   - a problem in one series never fails the request; only an
 *     undecodable body, a limit on the whole request or a malformed v2
 *     symbols table does.
 *
 * Why the wire pass: protobuf-c hands strings back NUL-terminated
 * without their length, so "a\0b" would silently read as "a".  Strings
 * with a NUL byte are rejected (the series, or the metadata entry);
 * without one, strlen() is the wire length.  For v2 the pass also gives
 * each symbol's length, so no strlen() is needed at all.
 *
 * Leniency, following Prometheus's own receiver
 * (storage/remote/write_handler.go): unsorted labels are sorted, a
 * series may carry both samples and histograms or neither, exemplar
 * problems drop the exemplar (never the series), an unknown reset hint
 * or metric type reads as unknown.  Integer histograms need count >=
 * the sum of their buckets and the zero bucket (the rule Prometheus
 * applies when the sum is NaN, and the only one older releases had).
 */

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <snappy-c.h>

#include "prometheus_remote.pb-c.h"
#include "rw2.pb-c.h"

#include "ts_error.h"
#include "ts_rw.h"


/* oneof case numbers, equal in the v1 and v2 generated enums */
#define TS_RW_COUNT_FLOAT   2
#define TS_RW_ZERO_INT      6
#define TS_RW_ZERO_FLOAT    7

#define TS_RW_SYM_NUL       UINT32_MAX
#define TS_RW_LEN_MAX       (UINT32_MAX - 1)

#define TS_PB_SUBS          6


typedef struct {
    const uint8_t          *p;
    const uint8_t          *end;
} ts_pb_t;


typedef struct ts_pb_shape_s  ts_pb_shape_t;

/* which fields of a message are strings and which are messages */
struct ts_pb_shape_s {
    uint32_t                strings;
    const ts_pb_shape_t    *sub[TS_PB_SUBS];
};


typedef struct {
    size_t                  labels;
    size_t                  samples;
    size_t                  hists;
    size_t                  spans;
    size_t                  exemplars;
    size_t                  metas;
    unsigned                need_st:1;
} ts_rw_totals_t;


/* cursors into the per-kind arrays while series are filled */
typedef struct {
    ts_label_t             *labels;
    ts_rw_sample_t         *samples;
    int64_t                *start_ts;
    ts_rw_histogram_t      *hists;
    ts_rw_span_t           *spans;
    ts_rw_exemplar_t       *exemplars;
    ts_rw_metadata_t       *metas;
    ts_label_t             *labels_end;   /* the fast path's bounds */
    ts_rw_sample_t         *samples_end;
} ts_rw_fill_t;


typedef struct {
    char                  **s;
    const uint32_t         *len;
    size_t                  n;
} ts_rw_symbols_t;


static void *ts_rw_malloc(void *data, size_t size);
static void ts_rw_mfree(void *data, void *p);
static int ts_rw_v1(ts_rw_request_t *req, const uint8_t *buf, size_t len);
static int ts_rw_v2(ts_rw_request_t *req, const uint8_t *buf, size_t len);


#define ts_rw_same(v1, v2, n)                                             \
    _Static_assert((v1) == (n) && (v2) == (n), "v1 and v2 numbers differ")

ts_rw_same(PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT,
           IO__PROMETHEUS__WRITE__V2__HISTOGRAM__COUNT_COUNT_FLOAT,
           TS_RW_COUNT_FLOAT);
ts_rw_same(PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT,
           IO__PROMETHEUS__WRITE__V2__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT,
           TS_RW_ZERO_INT);
ts_rw_same(PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT,
           IO__PROMETHEUS__WRITE__V2__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT,
           TS_RW_ZERO_FLOAT);


static const ts_pb_shape_t  ts_pb_label = { (1u << 1) | (1u << 2), { 0 } };

static const ts_pb_shape_t  ts_pb_exemplar = {
    0, { NULL, &ts_pb_label, NULL, NULL, NULL, NULL }
};

static const ts_pb_shape_t  ts_pb_series = {
    0, { NULL, &ts_pb_label, NULL, &ts_pb_exemplar, NULL, NULL }
};

static const ts_pb_shape_t  ts_pb_metadata = {
    (1u << 2) | (1u << 4) | (1u << 5), { 0 }
};


/* content negotiation */

static int
ts_rw_ows(char c)
{
    return c == ' ' || c == '\t';
}


static void
ts_rw_trim(const char **s, size_t *len)
{
    while (*len && ts_rw_ows(**s)) {
        (*s)++;
        (*len)--;
    }

    while (*len && ts_rw_ows((*s)[*len - 1])) {
        (*len)--;
    }
}


static int
ts_rw_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}


static size_t
ts_rw_token(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len && ts_rw_tchar(s[i]); i++) {
        /* void */
    }

    return i;
}


/* a quoted-string at s; its length with quotes, 0 if malformed */
static size_t
ts_rw_quoted(const char *s, size_t len)
{
    size_t  i;

    for (i = 1; i < len; i++) {
        if (s[i] == '\\') {
            i++;
            continue;
        }

        if (s[i] == '"') {
            return i + 1;
        }
    }

    return 0;
}


/* the proto parameter value, unquoted, compared exactly */
static ts_rw_version_t
ts_rw_proto_value(const char *v, size_t n)
{
    char    buf[sizeof(TS_RW_PROTO_V2)];
    size_t  i, k;

    if (n && v[0] == '"') {
        for (i = 1, k = 0; i + 1 < n; i++) {
            if (v[i] == '\\') {
                i++;
            }

            if (k == sizeof(buf)) {
                return TS_RW_UNSUPPORTED;
            }

            buf[k++] = v[i];
        }

        v = buf;
        n = k;
    }

    if (n == sizeof(TS_RW_PROTO_V1) - 1
        && memcmp(v, TS_RW_PROTO_V1, n) == 0)
    {
        return TS_RW_V1;
    }

    if (n == sizeof(TS_RW_PROTO_V2) - 1
        && memcmp(v, TS_RW_PROTO_V2, n) == 0)
    {
        return TS_RW_V2;
    }

    return TS_RW_UNSUPPORTED;
}


/*
 * parameters after the media type: *( OWS ";" OWS [ name "=" value ] )
 * (RFC 9110 5.6.6); no blanks around "="
 */
static ts_rw_version_t
ts_rw_params(const char *s, size_t len)
{
    size_t  i, n, v;

    i = 0;

    for ( ;; ) {
        while (i < len && ts_rw_ows(s[i])) {
            i++;
        }

        if (i == len) {
            return TS_RW_V1;
        }

        if (s[i++] != ';') {
            return TS_RW_UNSUPPORTED;
        }

        while (i < len && ts_rw_ows(s[i])) {
            i++;
        }

        if (i == len || s[i] == ';') {
            continue;
        }

        n = ts_rw_token(s + i, len - i);
        if (n == 0 || i + n == len || s[i + n] != '=') {
            return TS_RW_UNSUPPORTED;
        }

        v = i + n + 1;
        v += (v < len && s[v] == '"') ? ts_rw_quoted(s + v, len - v)
                                      : ts_rw_token(s + v, len - v);

        if (v == i + n + 1) {
            return TS_RW_UNSUPPORTED;
        }

        if (n == 5 && strncasecmp(s + i, "proto", 5) == 0) {
            return ts_rw_proto_value(s + i + n + 1, v - (i + n + 1));
        }

        i = v;
    }
}


ts_rw_version_t
ts_rw_content_type(const char *s, size_t len)
{
    size_t  n;

    if (s == NULL) {
        return TS_RW_V1;
    }

    ts_rw_trim(&s, &len);

    if (len == 0) {
        return TS_RW_V1;
    }

    n = sizeof(TS_RW_CT_V1) - 1;

    if (len < n || strncasecmp(s, TS_RW_CT_V1, n) != 0
        || (len > n && s[n] != ';' && !ts_rw_ows(s[n])))
    {
        return TS_RW_UNSUPPORTED;
    }

    return ts_rw_params(s + n, len - n);
}


int
ts_rw_content_encoding(const char *s, size_t len)
{
    if (s == NULL) {
        return TS_OK;
    }

    ts_rw_trim(&s, &len);

    if (len == 0 || (len == 6 && strncasecmp(s, "snappy", 6) == 0)) {
        return TS_OK;
    }

    return TS_ERR_UNSUPPORTED;
}


/* memory */

static void *
ts_rw_malloc(void *data, size_t size)
{
    (void) data;

    return malloc(size);
}


static void
ts_rw_mfree(void *data, void *p)
{
    (void) data;

    free(p);
}


static void *
ts_rw_alloc(void *data, size_t size)
{
    ts_rw_request_t  *req = data;
    void             *p;

    if (size > req->lim->max_decode_memory - req->used) {
        req->over = 1;
        return NULL;
    }

    p = req->parent.alloc(req->parent.allocator_data, size);
    if (p == NULL) {
        req->nomem = 1;
        return NULL;
    }

    req->used += size;

    return p;
}


static void
ts_rw_free(void *data, void *p)
{
    ts_rw_request_t  *req = data;

    if (req->parent.free != NULL && p != NULL) {
        req->parent.free(req->parent.allocator_data, p);
    }
}


static int
ts_rw_failed(ts_rw_request_t *req)
{
    if (req->nomem) {
        return TS_ERR_NOMEM;
    }

    if (req->over) {
        ts_reject_set(&req->why, TS_REJECT_DECODE_MEMORY,
                      "request too large: decoding it needs more than %u "
                      "bytes of memory",
                      (unsigned) req->lim->max_decode_memory);
        return TS_ERR_LIMIT;
    }

    return TS_OK;
}


/*
 * An array of n elements listed for freeing, not zeroed.  For n == 0 it
 * is a shared empty object, never written, so that cursors may still
 * move by zero (arithmetic on NULL is undefined).  NULL if *rc is
 * already an error (calls chain until one fails) or becomes one.
 */
static void *
ts_rw_array_raw(ts_rw_request_t *req, size_t n, size_t size, int *rc)
{
    static max_align_t  none;
    void               *p;

    if (*rc != TS_OK) {
        return NULL;
    }

    if (n == 0) {
        return &none;
    }

    if (n > req->lim->max_decode_memory / size) {
        req->over = 1;
        *rc = ts_rw_failed(req);
        return NULL;
    }

    p = ts_rw_alloc(req, n * size);
    if (p == NULL) {
        *rc = ts_rw_failed(req);
        return NULL;
    }

    req->mem[req->nmem++] = p;

    return p;
}


/* the same, zeroed */
static void *
ts_rw_array(ts_rw_request_t *req, size_t n, size_t size, int *rc)
{
    void  *p;

    p = ts_rw_array_raw(req, n, size, rc);

    if (p != NULL && n != 0) {
        memset(p, 0, n * size);
    }

    return p;
}


/* snappy */

int
ts_rw_uncompress(const uint8_t *in, size_t len, size_t limit,
    ProtobufCAllocator *a, uint8_t **out, size_t *out_len,
    ts_reject_t *why)
{
    ProtobufCAllocator  sys = { ts_rw_malloc, ts_rw_mfree, NULL };
    size_t              n, got;
    char               *p;

    *out = NULL;
    *out_len = 0;

    if (a == NULL) {
        a = &sys;
    }

    if (snappy_uncompressed_length((const char *) in, len, &n)
        != SNAPPY_OK)
    {
        ts_reject_set(why, TS_REJECT_MALFORMED_BODY,
                      "snappy: corrupt input (bad length header)");
        return TS_ERR_CORRUPT;
    }

    if (n > limit) {
        ts_reject_set(why, TS_REJECT_BODY_TOO_LARGE,
                      "decompressed body size %u exceeds the limit of %u "
                      "bytes", (unsigned) n, (unsigned) limit);
        return TS_ERR_LIMIT;
    }

    p = a->alloc(a->allocator_data, n ? n : 1);
    if (p == NULL) {
        return TS_ERR_NOMEM;
    }

    got = n;

    if (snappy_uncompress((const char *) in, len, p, &got) != SNAPPY_OK
        || got != n)
    {
        if (a->free != NULL) {
            a->free(a->allocator_data, p);
        }

        ts_reject_set(why, TS_REJECT_MALFORMED_BODY,
                      "snappy: corrupt input");
        return TS_ERR_CORRUPT;
    }

    *out = (uint8_t *) p;
    *out_len = n;

    return TS_OK;
}


/* request */

void
ts_rw_request_init(ts_rw_request_t *req, ProtobufCAllocator *a,
    const ts_limits_t *lim)
{
    memset(req, 0, sizeof(ts_rw_request_t));

    req->lim = lim;

    if (a != NULL) {
        req->parent = *a;

    } else {
        req->parent.alloc = ts_rw_malloc;
        req->parent.free = ts_rw_mfree;
    }

    req->alloc.alloc = ts_rw_alloc;
    req->alloc.free = ts_rw_free;
    req->alloc.allocator_data = req;
}


void
ts_rw_request_free(ts_rw_request_t *req)
{
    ProtobufCAllocator   parent;
    const ts_limits_t   *lim;
    unsigned             i;

    /* a pool (no free) gets it all back at once: skip the walk */
    if (req->parent.free != NULL) {

        if (req->pb == NULL) {
            /* nothing unpacked: the v1 fast path or an early failure */

        } else if (req->version == TS_RW_V1) {
            prometheus__write_request__free_unpacked(req->pb, &req->alloc);

        } else {
            io__prometheus__write__v2__request__free_unpacked(req->pb,
                                                              &req->alloc);
        }

        for (i = 0; i < req->nmem; i++) {
            ts_rw_free(req, req->mem[i]);
        }
    }

    parent = req->parent;
    lim = req->lim;

    ts_rw_request_init(req, &parent, lim);
}


int
ts_rw_decode(ts_rw_request_t *req, ts_rw_version_t v, const uint8_t *buf,
    size_t len)
{
    size_t  max;

    req->version = v;

    max = req->lim->max_body_size;
    if (max > TS_RW_LEN_MAX) {
        max = TS_RW_LEN_MAX;
    }

    if (len > max) {
        ts_reject_set(&req->why, TS_REJECT_BODY_TOO_LARGE,
                      "decompressed body size %u exceeds the limit of %u "
                      "bytes", (unsigned) (len > UINT32_MAX ? UINT32_MAX
                                                            : len),
                      (unsigned) max);
        return TS_ERR_LIMIT;
    }

    switch (v) {

    case TS_RW_V1:
        return ts_rw_v1(req, buf, len);

    case TS_RW_V2:
        return ts_rw_v2(req, buf, len);

    default:
        return TS_ERR_UNSUPPORTED;
    }
}


static int
ts_rw_unpack_failed(ts_rw_request_t *req, const char *what)
{
    int  rc;

    rc = ts_rw_failed(req);
    if (rc != TS_OK) {
        return rc;
    }

    ts_reject_set(&req->why, TS_REJECT_MALFORMED_BODY,
                  "request body is not a valid %s protobuf message",
                  what, strlen(what));

    return TS_ERR_CORRUPT;
}


static int
ts_rw_too_many_series(ts_rw_request_t *req, size_t n)
{
    if (n <= req->lim->max_series) {
        return TS_OK;
    }

    ts_reject_set(&req->why, TS_REJECT_TOO_MANY_SERIES,
                  "request has too many series (actual: %u, limit: %u)",
                  (unsigned) n, (unsigned) req->lim->max_series);

    return TS_ERR_LIMIT;
}


/* the wire pass */

static int
ts_pb_varint_long(ts_pb_t *pb, uint64_t *v)
{
    uint64_t  x;
    unsigned  shift;
    uint8_t   c;

    x = 0;

    for (shift = 0; shift < 64 && pb->p < pb->end; shift += 7) {
        c = *pb->p++;
        x |= (uint64_t) (c & 0x7f) << shift;

        if (c < 0x80) {
            *v = x;
            return TS_OK;
        }
    }

    return TS_ERR_CORRUPT;
}


/* most are one byte (keys, lengths of labels): inlined */
static inline int
ts_pb_varint(ts_pb_t *pb, uint64_t *v)
{
    if (pb->p < pb->end && *pb->p < 0x80) {
        *v = *pb->p++;
        return TS_OK;
    }

    return ts_pb_varint_long(pb, v);
}


static int
ts_pb_skip(ts_pb_t *pb, size_t n)
{
    if ((size_t) (pb->end - pb->p) < n) {
        return TS_ERR_CORRUPT;
    }

    pb->p += n;

    return TS_OK;
}


/*
 * Next field: 1 with *field and, for length-delimited fields, *val and
 * *len (else *val is NULL); 0 at the end; TS_ERR_CORRUPT if malformed.
 */
static int
ts_pb_next(ts_pb_t *pb, uint32_t *field, const uint8_t **val, size_t *len)
{
    uint64_t  key, n;
    int       rc;

    if (pb->p == pb->end) {
        return 0;
    }

    if (ts_pb_varint(pb, &key) != TS_OK || (key >> 3) > UINT32_MAX) {
        return TS_ERR_CORRUPT;
    }

    *field = (uint32_t) (key >> 3);
    *val = NULL;
    *len = 0;

    switch (key & 7) {

    case 0:
        rc = ts_pb_varint(pb, &n);
        break;

    case 1:
        rc = ts_pb_skip(pb, 8);
        break;

    case 2:
        rc = ts_pb_varint(pb, &n);
        if (rc == TS_OK && n > (uint64_t) (pb->end - pb->p)) {
            rc = TS_ERR_CORRUPT;
        }

        if (rc == TS_OK) {
            *val = pb->p;
            *len = (size_t) n;
            pb->p += n;
        }

        break;

    case 5:
        rc = ts_pb_skip(pb, 4);
        break;

    default:
        rc = TS_ERR_CORRUPT;
    }

    return rc == TS_OK ? 1 : rc;
}


/* 1 if a string field anywhere in the message holds a NUL byte */
static int
ts_pb_has_nul(const uint8_t *p, size_t len, const ts_pb_shape_t *shape)
{
    ts_pb_t         pb = { p, p + len };
    const uint8_t  *val;
    uint32_t        f;
    size_t          n;
    int             rc;

    while ((rc = ts_pb_next(&pb, &f, &val, &n)) == 1) {
        if (val == NULL || f >= 32) {
            continue;
        }

        if ((shape->strings & (1u << f)) && memchr(val, 0, n) != NULL) {
            return 1;
        }

        if (f < TS_PB_SUBS && shape->sub[f] != NULL) {
            rc = ts_pb_has_nul(val, n, shape->sub[f]);
            if (rc != 0) {
                return rc;
            }
        }
    }

    return rc;
}


/* marks series with NUL bytes; bad[j] for metadata entry j */
static int
ts_rw_v1_scan(ts_rw_request_t *req, const uint8_t *buf, size_t len,
    uint8_t *bad, size_t nmeta)
{
    ts_pb_t         pb = { buf, buf + len };
    const uint8_t  *val;
    uint32_t        f;
    size_t          n, i, j;
    int             rc, nul;

    i = 0;
    j = 0;

    while ((rc = ts_pb_next(&pb, &f, &val, &n)) == 1) {
        if (val == NULL || (f != 1 && f != 3)) {
            continue;
        }

        if ((f == 1 && i == req->nseries) || (f == 3 && j == nmeta)) {
            return TS_ERR_CORRUPT;
        }

        nul = ts_pb_has_nul(val, n, f == 1 ? &ts_pb_series : &ts_pb_metadata);
        if (nul < 0) {
            return TS_ERR_CORRUPT;
        }

        if (f == 1 && nul) {
            req->series[i].reject = TS_REJECT_NUL_IN_STRING;
        }

        if (f == 3) {
            bad[j++] = (uint8_t) nul;

        } else {
            i++;
        }
    }

    return (rc == 0 && i == req->nseries && j == nmeta) ? TS_OK
                                                        : TS_ERR_CORRUPT;
}


/* exact symbol lengths, TS_RW_SYM_NUL for symbols holding a NUL */
static int
ts_rw_v2_scan(const uint8_t *buf, size_t len, uint32_t *sl, size_t nsym)
{
    ts_pb_t         pb = { buf, buf + len };
    const uint8_t  *val;
    uint32_t        f;
    size_t          n, k;
    int             rc;

    k = 0;

    while ((rc = ts_pb_next(&pb, &f, &val, &n)) == 1) {
        if (val == NULL || f != 4) {
            continue;
        }

        if (k == nsym) {
            return TS_ERR_CORRUPT;
        }

        sl[k++] = memchr(val, 0, n) != NULL ? TS_RW_SYM_NUL : (uint32_t) n;
    }

    return (rc == 0 && k == nsym) ? TS_OK : TS_ERR_CORRUPT;
}


/* histograms */

#define ts_rw_hist_copy(d, s, sp, bad)                                    \
    do {                                                                  \
        (d)->pb = (s);                                                    \
        (d)->t = (s)->timestamp;                                          \
        memcpy(&(d)->sum, &(s)->sum, sizeof(uint64_t));                   \
        (d)->zero_threshold = (s)->zero_threshold;                        \
        (d)->schema = (s)->schema;                                        \
        (d)->reset_hint = (unsigned) (s)->reset_hint <= TS_RESET_GAUGE    \
                          ? (uint8_t) (s)->reset_hint : TS_RESET_UNKNOWN; \
        (d)->is_float = (int) (s)->count_case == TS_RW_COUNT_FLOAT;       \
        (d)->n_custom = (uint32_t) (s)->n_custom_values;                  \
        (d)->custom_values = (s)->custom_values;                          \
        (d)->n_neg_spans = (uint32_t) (s)->n_negative_spans;              \
        (d)->n_pos_spans = (uint32_t) (s)->n_positive_spans;              \
        ts_rw_spans_copy(sp, (s)->negative_spans, (s)->n_negative_spans); \
        (d)->neg_spans = (sp);                                            \
        (sp) += (s)->n_negative_spans;                                    \
        ts_rw_spans_copy(sp, (s)->positive_spans, (s)->n_positive_spans); \
        (d)->pos_spans = (sp);                                            \
        (sp) += (s)->n_positive_spans;                                    \
        if ((d)->is_float) {                                              \
            (d)->fcount = (s)->count_float;                               \
            (d)->fzero_count = (int) (s)->zero_count_case                 \
                               == TS_RW_ZERO_FLOAT                        \
                               ? (s)->zero_count_float : 0.0;             \
            (d)->n_neg = (uint32_t) (s)->n_negative_counts;               \
            (d)->n_pos = (uint32_t) (s)->n_positive_counts;               \
            (d)->neg_counts = (s)->negative_counts;                       \
            (d)->pos_counts = (s)->positive_counts;                       \
            (bad) = (s)->n_negative_deltas || (s)->n_positive_deltas      \
                    || (int) (s)->zero_count_case == TS_RW_ZERO_INT;      \
        } else {                                                          \
            (d)->count = (s)->count_int;                                  \
            (d)->zero_count = (int) (s)->zero_count_case                  \
                              == TS_RW_ZERO_INT                           \
                              ? (s)->zero_count_int : 0;                  \
            (d)->n_neg = (uint32_t) (s)->n_negative_deltas;               \
            (d)->n_pos = (uint32_t) (s)->n_positive_deltas;               \
            (d)->neg_deltas = (s)->negative_deltas;                       \
            (d)->pos_deltas = (s)->positive_deltas;                       \
            (bad) = (s)->n_negative_counts || (s)->n_positive_counts      \
                    || (int) (s)->zero_count_case == TS_RW_ZERO_FLOAT;    \
        }                                                                 \
    } while (0)

#define ts_rw_spans_copy(dst, src, n)                                     \
    do {                                                                  \
        size_t  k_;                                                       \
        for (k_ = 0; k_ < (n); k_++) {                                    \
            (dst)[k_].offset = (src)[k_]->offset;                         \
            (dst)[k_].length = (src)[k_]->length;                         \
        }                                                                 \
    } while (0)


/* spans against bucket count; *extent: buckets the spans cover */
static const char *
ts_rw_spans_check(const ts_rw_span_t *sp, uint32_t n, uint32_t nbuckets,
    int custom, uint64_t *extent)
{
    uint64_t  total, ext;
    uint32_t  i;

    total = 0;
    ext = 0;

    for (i = 0; i < n; i++) {
        if ((i > 0 || custom) && sp[i].offset < 0) {
            return "span with a negative offset";
        }

        total += sp[i].length;
        ext += (uint64_t) sp[i].length + (uint64_t) (int64_t) sp[i].offset;
    }

    if (total != nbuckets) {
        return "spans and buckets do not match";
    }

    *extent = ext;

    return NULL;
}


static const char *
ts_rw_deltas_check(const int64_t *d, uint32_t n, uint64_t *sum)
{
    int64_t   c;
    uint32_t  i;

    c = 0;

    for (i = 0; i < n; i++) {
        if (__builtin_add_overflow(c, d[i], &c)) {
            return "bucket count overflows";
        }

        if (c < 0) {
            return "negative bucket count";
        }

        if (__builtin_add_overflow(*sum, (uint64_t) c, sum)) {
            return "bucket counts overflow";
        }
    }

    return NULL;
}


static const char *
ts_rw_counts_check(const double *c, uint32_t n)
{
    uint32_t  i;

    for (i = 0; i < n; i++) {
        if (c[i] < 0) {
            return "negative bucket count";
        }
    }

    return NULL;
}


static const char *
ts_rw_hist_custom(const ts_rw_histogram_t *h)
{
    const char  *err;
    uint64_t     ext;
    uint32_t     i;
    double       prev;

    prev = -INFINITY;

    for (i = 0; i < h->n_custom; i++) {
        if (isnan(h->custom_values[i]) || h->custom_values[i] <= prev) {
            return "custom bounds not strictly increasing";
        }

        prev = h->custom_values[i];
    }

    if (prev == INFINITY) {
        return "custom bounds end in +Inf";
    }

    if (h->n_neg_spans || h->n_neg || h->zero_threshold != 0
        || h->zero_count != 0 || h->fzero_count != 0)
    {
        return "custom buckets with negative or zero buckets";
    }

    err = ts_rw_spans_check(h->pos_spans, h->n_pos_spans, h->n_pos, 1,
                            &ext);
    if (err == NULL && ext > (uint64_t) h->n_custom + 1) {
        err = "spans beyond the custom bounds";
    }

    return err;
}


static const char *
ts_rw_hist_exp(const ts_rw_histogram_t *h)
{
    const char  *err;
    uint64_t     ext;

    if (h->n_custom) {
        return "custom bounds with an exponential schema";
    }

    err = ts_rw_spans_check(h->neg_spans, h->n_neg_spans, h->n_neg, 0,
                            &ext);
    if (err == NULL) {
        err = ts_rw_spans_check(h->pos_spans, h->n_pos_spans, h->n_pos, 0,
                                &ext);
    }

    return err;
}


static const char *
ts_rw_hist_counts(const ts_rw_histogram_t *h)
{
    const char  *err;
    uint64_t     total;

    if (h->is_float) {
        err = ts_rw_counts_check(h->neg_counts, h->n_neg);
        return err ? err : ts_rw_counts_check(h->pos_counts, h->n_pos);
    }

    total = h->zero_count;

    err = ts_rw_deltas_check(h->neg_deltas, h->n_neg, &total);
    if (err == NULL) {
        err = ts_rw_deltas_check(h->pos_deltas, h->n_pos, &total);
    }

    if (err == NULL && total > h->count) {
        err = "count smaller than the sum of the buckets";
    }

    return err;
}


static ts_reject_code_t
ts_rw_hist_check(const ts_rw_histogram_t *h, int mixed,
    const ts_limits_t *lim, const ts_label_t *mn, ts_reject_t *why)
{
    const char  *err;
    uint64_t     nb;

    nb = (uint64_t) h->n_neg + h->n_pos;

    if (lim->max_histogram_buckets && nb > lim->max_histogram_buckets) {
        ts_reject_set(why, TS_REJECT_TOO_MANY_BUCKETS,
                      "received a native histogram sample with too many "
                      "buckets (actual: %u, limit: %u) metric: '%s'",
                      (unsigned) nb, (unsigned) lim->max_histogram_buckets,
                      mn->value, (size_t) mn->value_len);
        return TS_REJECT_TOO_MANY_BUCKETS;
    }

    if (mixed) {
        err = "integer and float fields mixed";

    } else if (h->schema == TS_RW_SCHEMA_CUSTOM) {
        err = ts_rw_hist_custom(h);

    } else if (h->schema >= TS_RW_SCHEMA_MIN
               && h->schema <= TS_RW_SCHEMA_MAX)
    {
        err = ts_rw_hist_exp(h);

    } else {
        err = "invalid schema";
    }

    if (err == NULL) {
        err = ts_rw_hist_counts(h);
    }

    if (err == NULL) {
        return TS_REJECT_NONE;
    }

    ts_reject_set(why, TS_REJECT_INVALID_HISTOGRAM,
                  "received an invalid native histogram sample (schema %d):"
                  " %s, metric: '%s'", (int) h->schema, err, strlen(err),
                  mn->value, (size_t) mn->value_len);

    return TS_REJECT_INVALID_HISTOGRAM;
}


/* exemplars and metadata */

static ts_reject_code_t
ts_rw_exemplar_check(const ts_rw_exemplar_t *e, const ts_limits_t *lim,
    ts_reject_t *why)
{
    const ts_label_t  *l;
    uint64_t           runes;
    uint32_t           i;

    runes = 0;

    for (i = 0; i < e->nlabels; i++) {
        l = &e->labels[i];

        if (!ts_label_name_valid(l->name, l->name_len)) {
            ts_reject_set(why, TS_REJECT_INVALID_EXEMPLAR,
                          "received an exemplar with an invalid label: '%s'",
                          l->name, (size_t) l->name_len);
            return TS_REJECT_INVALID_EXEMPLAR;
        }

        if (!ts_utf8_valid(l->value, l->value_len)) {
            ts_reject_set(why, TS_REJECT_INVALID_EXEMPLAR,
                          "received an exemplar with invalid value in "
                          "label '%s': not valid UTF-8",
                          l->name, (size_t) l->name_len);
            return TS_REJECT_INVALID_EXEMPLAR;
        }

        runes += ts_utf8_count(l->name, l->name_len)
                 + ts_utf8_count(l->value, l->value_len);
    }

    if (runes > lim->max_exemplar_labels_length) {
        ts_reject_set(why, TS_REJECT_INVALID_EXEMPLAR,
                      "received an exemplar where the size of its combined "
                      "labels exceeds the limit of %u characters",
                      (unsigned) lim->max_exemplar_labels_length);
        return TS_REJECT_INVALID_EXEMPLAR;
    }

    return TS_REJECT_NONE;
}


/* keeps the valid exemplars of an accepted series, in order */
static void
ts_rw_exemplars_filter(ts_rw_request_t *req, ts_rw_series_t *s)
{
    ts_rw_exemplar_t  *e;
    ts_reject_t        r, *why;
    uint32_t           i, k, max;

    e = (ts_rw_exemplar_t *) s->exemplars;
    max = req->lim->max_exemplars_per_series;
    r.code = TS_REJECT_NONE;
    r.msg[0] = '\0';

    for (i = 0, k = 0; i < s->nexemplars; i++) {
        why = req->why_other.code ? NULL : &r;

        if (max && k == max) {
            ts_reject_set(why, TS_REJECT_TOO_MANY_EXEMPLARS,
                          "received a series with too many exemplars "
                          "(actual: %u, limit: %u)",
                          (unsigned) s->nexemplars, (unsigned) max);

        } else if (ts_rw_exemplar_check(&e[i], req->lim, why)
                   == TS_REJECT_NONE)
        {
            e[k++] = e[i];
            continue;
        }

        if (why != NULL) {
            req->why_other = r;
        }

        req->rejected.exemplars++;
    }

    s->nexemplars = k;
}


static ts_reject_code_t
ts_rw_meta_check(ts_rw_metadata_t *m, const ts_limits_t *lim,
    ts_reject_t *why)
{
    uint32_t  max;

    max = lim->max_metadata_length;

    if (!ts_utf8_valid(m->name, m->name_len)
        || !ts_utf8_valid(m->help, m->help_len)
        || !ts_utf8_valid(m->unit, m->unit_len))
    {
        ts_reject_set(why, TS_REJECT_INVALID_METADATA,
                      "received a metric metadata that is not valid UTF-8, "
                      "metric name: '%s'", m->name, (size_t) m->name_len);
        return TS_REJECT_INVALID_METADATA;
    }

    if (m->name_len > max || m->unit_len > max) {
        ts_reject_set(why, TS_REJECT_INVALID_METADATA,
                      "received a metric metadata whose metric name or unit"
                      " length exceeds the limit of %u, metric name: '%s'",
                      (unsigned) max, m->name, (size_t) m->name_len);
        return TS_REJECT_INVALID_METADATA;
    }

    /* Mimir keeps an over-long help, cut */
    m->help_len = (uint32_t) ts_utf8_cut(m->help, m->help_len, max);

    return TS_REJECT_NONE;
}


static void
ts_rw_meta_dropped(ts_rw_request_t *req, const ts_reject_t *r)
{
    if (req->why_other.code == TS_REJECT_NONE) {
        req->why_other = *r;
    }

    req->rejected.metadata++;
}


/* per series, after filling */

static const ts_label_t *
ts_rw_metric(const ts_rw_series_t *s)
{
    static const ts_label_t  none = { "", 0, "", 0 };
    const ts_label_t        *l;

    l = ts_labels_find(s->labels, s->nlabels, TS_METRIC_NAME_LABEL,
                       TS_METRIC_NAME_LABEL_LEN);

    return l ? l : &none;
}


static ts_reject_code_t
ts_rw_series_check(ts_rw_request_t *req, ts_rw_series_t *s,
    const uint8_t *mixed, ts_reject_t *r)
{
    const ts_limits_t  *lim = req->lim;
    const ts_label_t   *mn;
    uint64_t            n;
    uint32_t            i;
    ts_reject_code_t    rc;

    if (ts_labels_validate(s->labels, &s->nlabels, lim, r) != TS_OK) {
        return r->code;
    }

    mn = ts_rw_metric(s);
    n = (uint64_t) s->nsamples + s->nhistograms;

    if (n > lim->max_samples_per_series) {
        ts_reject_set(r, TS_REJECT_TOO_MANY_SAMPLES,
                      "received a series with too many samples (actual: %u,"
                      " limit: %u) metric: '%s'", (unsigned) n,
                      (unsigned) lim->max_samples_per_series,
                      mn->value, (size_t) mn->value_len);
        return TS_REJECT_TOO_MANY_SAMPLES;
    }

    for (i = 0; i < s->nhistograms; i++) {
        rc = ts_rw_hist_check(&s->histograms[i], mixed[i], lim, mn, r);
        if (rc != TS_REJECT_NONE) {
            return rc;
        }
    }

    return TS_REJECT_NONE;
}


/*
 * 1 if a series whose labels req->known found passes what depends on
 * the limits (the rest it passed when it was stored); else it is
 * checked in full, which finds the reason.  Histograms and exemplars
 * never reach here (the v1 fast path has none).
 */
static int
ts_rw_known_check(ts_rw_request_t *req, const ts_rw_series_t *s)
{
    const ts_limits_t  *lim = req->lim;
    const ts_label_t   *l;
    uint32_t            i;

    if (s->nlabels > lim->max_label_names_per_series
        || (uint64_t) s->nsamples + s->nhistograms
           > lim->max_samples_per_series
        || s->nhistograms != 0 || s->nexemplars != 0)
    {
        return 0;
    }

    for (i = 0; i < s->nlabels; i++) {
        l = &s->labels[i];

        if (l->name_len > lim->max_label_name_length
            || l->value_len > lim->max_label_value_length)
        {
            return 0;
        }
    }

    return 1;
}


static void
ts_rw_preset_reason(ts_rw_series_t *s, ts_reject_t *r)
{
    const ts_label_t  *mn;

    mn = ts_rw_metric(s);

    if (s->reject == TS_REJECT_NUL_IN_STRING) {
        ts_reject_set(r, s->reject, "received a series with a NUL byte in "
                      "a label or exemplar string, metric: '%s'",
                      mn->value, (size_t) mn->value_len);
        return;
    }

    ts_reject_set(r, s->reject, "received a series with a symbol "
                  "reference that is odd in number, out of range or points "
                  "at a string with a NUL byte, metric: '%s'",
                  mn->value, (size_t) mn->value_len);
}


static void
ts_rw_series_finish(ts_rw_request_t *req, ts_rw_series_t *s,
    const uint8_t *mixed)
{
    ts_reject_t  r;

    req->decoded.series++;
    req->decoded.samples += s->nsamples;
    req->decoded.histograms += s->nhistograms;
    req->decoded.exemplars += s->nexemplars;
    req->decoded.metadata += s->meta != NULL;

    r.code = TS_REJECT_NONE;

    if (s->reject != TS_REJECT_NONE) {
        ts_rw_preset_reason(s, &r);

    } else if (s->ref != 0 && ts_rw_known_check(req, s)) {
        /* labels as stored, hash set by ts_rw_fast_known() */
        return;

    } else {
        s->ref = 0;
        s->reject = ts_rw_series_check(req, s, mixed, &r);
    }

    if (s->reject == TS_REJECT_NONE) {
        ts_rw_exemplars_filter(req, s);
        s->hash = ts_labels_hash(s->labels, s->nlabels);
        return;
    }

    if (req->why.code == TS_REJECT_NONE) {
        req->why = r;
    }

    req->rejected.series++;
    req->rejected.samples += s->nsamples;
    req->rejected.histograms += s->nhistograms;
    req->rejected.exemplars += s->nexemplars;
    req->rejected.metadata += s->meta != NULL;
}


static int
ts_rw_alloc_totals(ts_rw_request_t *req, const ts_rw_totals_t *t,
    ts_rw_fill_t *f, uint8_t **mixed)
{
    int  rc;

    rc = TS_OK;

    f->labels = ts_rw_array(req, t->labels, sizeof(ts_label_t), &rc);
    f->samples = ts_rw_array(req, t->samples, sizeof(ts_rw_sample_t), &rc);
    f->start_ts = ts_rw_array(req, t->need_st ? t->samples : 0,
                              sizeof(int64_t), &rc);
    f->hists = ts_rw_array(req, t->hists, sizeof(ts_rw_histogram_t), &rc);
    *mixed = ts_rw_array(req, t->hists, 1, &rc);
    f->spans = ts_rw_array(req, t->spans, sizeof(ts_rw_span_t), &rc);
    f->exemplars = ts_rw_array(req, t->exemplars, sizeof(ts_rw_exemplar_t),
                               &rc);
    f->metas = ts_rw_array(req, t->metas, sizeof(ts_rw_metadata_t), &rc);

    return rc;
}


/* v1 */

static void
ts_rw_v1_label(ts_label_t *d, const Prometheus__Label *l)
{
    size_t  n;

    /* no NUL inside (checked on the wire), so strlen is the length */
    n = strlen(l->name);
    d->name = l->name;
    d->name_len = (uint32_t) n;

    n = strlen(l->value);
    d->value = l->value;
    d->value_len = (uint32_t) n;
}


static void
ts_rw_v1_totals(const Prometheus__WriteRequest *wr, ts_rw_totals_t *t)
{
    const Prometheus__TimeSeries  *ts;
    const Prometheus__Histogram   *h;
    size_t                         i, j;

    memset(t, 0, sizeof(ts_rw_totals_t));

    for (i = 0; i < wr->n_timeseries; i++) {
        ts = wr->timeseries[i];
        t->labels += ts->n_labels;
        t->samples += ts->n_samples;
        t->hists += ts->n_histograms;
        t->exemplars += ts->n_exemplars;

        for (j = 0; j < ts->n_exemplars; j++) {
            t->labels += ts->exemplars[j]->n_labels;
        }

        for (j = 0; j < ts->n_histograms; j++) {
            h = ts->histograms[j];
            t->spans += h->n_negative_spans + h->n_positive_spans;
        }
    }

    t->metas = wr->n_metadata;
}


static void
ts_rw_v1_exemplars(ts_rw_fill_t *f, ts_rw_series_t *s,
    const Prometheus__TimeSeries *ts)
{
    const Prometheus__Exemplar  *x;
    ts_rw_exemplar_t            *e;
    size_t                       j, k;

    s->exemplars = f->exemplars;
    s->nexemplars = (uint32_t) ts->n_exemplars;

    for (j = 0; j < ts->n_exemplars; j++) {
        x = ts->exemplars[j];
        e = f->exemplars++;

        e->labels = f->labels;
        e->nlabels = (uint32_t) x->n_labels;
        e->t = x->timestamp;
        memcpy(&e->v, &x->value, sizeof(uint64_t));

        for (k = 0; k < x->n_labels; k++) {
            ts_rw_v1_label(f->labels++, x->labels[k]);
        }
    }
}


static void
ts_rw_v1_series(ts_rw_fill_t *f, ts_rw_series_t *s,
    const Prometheus__TimeSeries *ts, uint8_t *mixed)
{
    const Prometheus__Histogram  *h;
    ts_rw_sample_t               *d;
    size_t                        j;
    int                           bad;

    s->labels = f->labels;
    s->nlabels = (uint32_t) ts->n_labels;

    for (j = 0; j < ts->n_labels; j++) {
        ts_rw_v1_label(f->labels++, ts->labels[j]);
    }

    s->samples = f->samples;
    s->nsamples = (uint32_t) ts->n_samples;

    for (j = 0; j < ts->n_samples; j++) {
        d = f->samples++;
        d->t = ts->samples[j]->timestamp;
        memcpy(&d->v, &ts->samples[j]->value, sizeof(uint64_t));
    }

    s->histograms = f->hists;
    s->nhistograms = (uint32_t) ts->n_histograms;

    for (j = 0; j < ts->n_histograms; j++) {
        h = ts->histograms[j];
        ts_rw_hist_copy(f->hists, h, f->spans, bad);
        f->hists++;
        mixed[j] = (uint8_t) bad;
    }

    ts_rw_v1_exemplars(f, s, ts);
}


static int
ts_rw_meta_cmp(const void *a, const void *b)
{
    const ts_rw_metadata_t  *x = a, *y = b;
    int                      rc;

    rc = (x->name_len && y->name_len)
         ? memcmp(x->name, y->name,
                  x->name_len < y->name_len ? x->name_len : y->name_len)
         : 0;

    return rc ? rc : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}


static void
ts_rw_v1_metadata(ts_rw_request_t *req, const Prometheus__WriteRequest *wr,
    ts_rw_metadata_t *out, const uint8_t *bad)
{
    const Prometheus__MetricMetadata  *pm;
    ts_rw_metadata_t                  *m;
    ts_reject_t                        r;
    size_t                             j;
    uint32_t                           k;

    for (j = 0, k = 0; j < wr->n_metadata; j++) {
        pm = wr->metadata[j];
        m = &out[k];

        m->name = pm->metric_family_name;
        m->name_len = (uint32_t) strlen(pm->metric_family_name);
        m->type = (unsigned) pm->type <= TS_METRIC_STATESET
                  ? (uint32_t) pm->type : TS_METRIC_UNKNOWN;
        m->help = pm->help;
        m->help_len = (uint32_t) strlen(pm->help);
        m->unit = pm->unit;
        m->unit_len = (uint32_t) strlen(pm->unit);

        req->decoded.metadata++;

        if (bad[j]) {
            ts_reject_set(&r, TS_REJECT_NUL_IN_STRING, "received a metric "
                          "metadata with a NUL byte in a string");

        } else if (m->name_len == 0) {
            ts_reject_set(&r, TS_REJECT_INVALID_METADATA,
                          "received a metric metadata with no metric name");

        } else if (ts_rw_meta_check(m, req->lim, &r) == TS_REJECT_NONE) {
            k++;
            continue;
        }

        ts_rw_meta_dropped(req, &r);
    }

    req->metadata = out;
    req->nmetadata = k;

    if (k > 1) {
        qsort(out, k, sizeof(ts_rw_metadata_t), ts_rw_meta_cmp);
    }
}


static int
ts_rw_v1_fill(ts_rw_request_t *req, const Prometheus__WriteRequest *wr,
    const uint8_t *buf, size_t len)
{
    ts_rw_totals_t     t;
    ts_rw_fill_t       f;
    ts_rw_metadata_t  *metas;
    uint8_t           *mixed, *bad;
    size_t             i;
    int                rc;

    ts_rw_v1_totals(wr, &t);

    rc = ts_rw_alloc_totals(req, &t, &f, &mixed);
    bad = ts_rw_array(req, wr->n_metadata, 1, &rc);

    if (rc != TS_OK) {
        return rc;
    }

    metas = f.metas;

    rc = ts_rw_v1_scan(req, buf, len, bad, wr->n_metadata);
    if (rc != TS_OK) {
        return ts_rw_unpack_failed(req, "prometheus.WriteRequest");
    }

    for (i = 0; i < wr->n_timeseries; i++) {
        ts_rw_v1_series(&f, &req->series[i], wr->timeseries[i], mixed);
        ts_rw_series_finish(req, &req->series[i], mixed);
        mixed += wr->timeseries[i]->n_histograms;
    }

    ts_rw_v1_metadata(req, wr, metas, bad);

    return TS_OK;
}


/*
 * The v1 fast path.  A WriteRequest whose series hold labels and float
 * samples only, each field once per Label and Sample, no unknown field
 * -- what Prometheus and vmagent send for samples -- is decoded
 * straight from the wire with labels pointing into buf: no protobuf-c
 * unpack, no allocation per message.  Anything else is declined before
 * req changes, or, when the fill finds it, with every change undone,
 * and goes to protobuf-c, so the answers are the slow path's by
 * construction.  The first pass only counts the labels and samples of
 * each series (it does not look inside them), the second parses and
 * fills.  A NUL byte in a label does not decline: such a series is
 * rejected as protobuf-c's path rejects it, with its strings cut at
 * the NUL as strlen() cuts them there; a series req->known found needs
 * no such check (stored labels hold no NUL).
 */

#define TS_RW_DECLINED  1
#define TS_RW_FULL      2       /* the fast path's arrays were too short */

/*
 * The fast path sizes its label and sample arrays from the body: one
 * per TS_RW_LABEL_BYTES and TS_RW_SAMPLE_BYTES bytes of it (a label of
 * a real series takes 20 bytes or more, a sample 11 or more, and most
 * series have one sample and several labels), for bodies up to
 * TS_RW_GUESS_MAX.  A denser body is counted first, as larger ones are.
 */
#define TS_RW_LABEL_BYTES   8
#define TS_RW_SAMPLE_BYTES  16
#define TS_RW_GUESS_MAX     (4 * 1024 * 1024)


static int
ts_rw_fast_key(ts_pb_t *pb, uint32_t *field, unsigned *wt)
{
    uint64_t  key;

    if (ts_pb_varint(pb, &key) != TS_OK || (key >> 3) > 31) {
        return TS_RW_DECLINED;
    }

    *field = (uint32_t) (key >> 3);
    *wt = (unsigned) (key & 7);

    return TS_OK;
}


static int
ts_rw_fast_sub(ts_pb_t *pb, ts_pb_t *sub)
{
    uint64_t  n;

    if (ts_pb_varint(pb, &n) != TS_OK
        || n > (uint64_t) (pb->end - pb->p))
    {
        return TS_RW_DECLINED;
    }

    sub->p = pb->p;
    sub->end = pb->p + n;
    pb->p += n;

    return TS_OK;
}


/* Label { string name = 1; string value = 2; } */
static int
ts_rw_fast_label(ts_pb_t *pb, ts_label_t *l)
{
    size_t          n;
    ts_pb_t         sub;
    uint32_t        f, seen;
    unsigned        wt;
    const uint8_t  *p;

    /* the usual encoding: name, then value, both shorter than 128 */

    p = pb->p;
    n = (size_t) (pb->end - p);

    if (n >= 4 && p[0] == 0x0a && p[1] < 0x80 && n >= 4 + (size_t) p[1]
        && p[2 + p[1]] == 0x12 && p[3 + p[1]] < 0x80
        && n == 4 + (size_t) p[1] + p[3 + p[1]])
    {
        l->name = (const char *) p + 2;
        l->name_len = p[1];
        l->value = (const char *) p + 4 + p[1];
        l->value_len = p[3 + p[1]];
        pb->p = pb->end;

        return TS_OK;
    }

    seen = 0;
    l->name = "";
    l->name_len = 0;
    l->value = "";
    l->value_len = 0;

    while (pb->p < pb->end) {
        if (ts_rw_fast_key(pb, &f, &wt) != TS_OK
            || wt != 2 || (f != 1 && f != 2) || (seen & (1u << f))
            || ts_rw_fast_sub(pb, &sub) != TS_OK
            || sub.end - sub.p > (ptrdiff_t) TS_RW_LEN_MAX)
        {
            return TS_RW_DECLINED;
        }

        seen |= 1u << f;

        if (f == 1) {
            l->name = (const char *) sub.p;
            l->name_len = (uint32_t) (sub.end - sub.p);

        } else {
            l->value = (const char *) sub.p;
            l->value_len = (uint32_t) (sub.end - sub.p);
        }
    }

    return TS_OK;
}


/* Sample { double value = 1; int64 timestamp = 2; } */
static uint64_t
ts_rw_le64(const uint8_t *p)
{
    uint64_t  v;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__

    /* one load: gcc does not merge the loop below into one */
    memcpy(&v, p, 8);

#else
    unsigned  i;

    v = 0;

    for (i = 0; i < 8; i++) {
        v |= (uint64_t) p[i] << (8 * i);
    }
#endif

    return v;
}


static int
ts_rw_fast_sample(ts_pb_t *pb, ts_rw_sample_t *d)
{
    ts_pb_t   sub;
    uint32_t  f, seen;
    uint64_t  v;
    unsigned  wt;

    /* the usual encoding: value, then timestamp */

    if (pb->end - pb->p >= 11 && pb->p[0] == 0x09 && pb->p[9] == 0x10) {
        sub.p = pb->p + 10;
        sub.end = pb->end;

        if (ts_pb_varint(&sub, &v) == TS_OK && sub.p == sub.end) {
            d->v = ts_rw_le64(pb->p + 1);
            d->t = (int64_t) v;
            pb->p = pb->end;

            return TS_OK;
        }
    }

    seen = 0;
    d->t = 0;
    d->v = 0;

    while (pb->p < pb->end) {
        if (ts_rw_fast_key(pb, &f, &wt) != TS_OK || (seen & (1u << f))) {
            return TS_RW_DECLINED;
        }

        seen |= 1u << f;

        if (f == 1 && wt == 1) {
            if (pb->end - pb->p < 8) {
                return TS_RW_DECLINED;
            }

            d->v = ts_rw_le64(pb->p);
            pb->p += 8;
            continue;
        }

        if (f == 2 && wt == 0 && ts_pb_varint(pb, &v) == TS_OK) {
            d->t = (int64_t) v;
            continue;
        }

        return TS_RW_DECLINED;
    }

    return TS_OK;
}


/*
 * TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
 * With s NULL only counts into t (labels and samples unparsed); else
 * parses and fills from f.
 */
static int
ts_rw_fast_series(ts_pb_t *pb, ts_rw_totals_t *t, ts_rw_fill_t *f,
    ts_rw_series_t *s)
{
    ts_pb_t   sub;
    uint32_t  field;
    unsigned  wt;

    if (s != NULL) {
        s->labels = f->labels;
        s->samples = f->samples;
    }

    while (pb->p < pb->end) {
        if (ts_rw_fast_key(pb, &field, &wt) != TS_OK || wt != 2
            || (field != 1 && field != 2)
            || ts_rw_fast_sub(pb, &sub) != TS_OK)
        {
            return TS_RW_DECLINED;
        }

        if (s == NULL) {
            if (field == 1) {
                t->labels++;

            } else {
                t->samples++;
            }

            continue;
        }

        if (field == 1) {
            if (f->labels == f->labels_end) {
                return TS_RW_FULL;
            }

            if (ts_rw_fast_label(&sub, f->labels++) != TS_OK) {
                return TS_RW_DECLINED;
            }

            s->nlabels++;
            continue;
        }

        if (f->samples == f->samples_end) {
            return TS_RW_FULL;
        }

        if (ts_rw_fast_sample(&sub, f->samples++) != TS_OK) {
            return TS_RW_DECLINED;
        }

        s->nsamples++;
    }

    return TS_OK;
}


/* WriteRequest { repeated TimeSeries timeseries = 1; } */
static int
ts_rw_fast_walk(const uint8_t *buf, size_t len, ts_rw_totals_t *t,
    ts_rw_fill_t *f, ts_rw_series_t *series, size_t *n)
{
    int       rc;
    ts_pb_t   pb = { buf, buf + len }, sub;
    uint32_t  field;
    unsigned  wt;

    *n = 0;

    while (pb.p < pb.end) {
        if (ts_rw_fast_key(&pb, &field, &wt) != TS_OK || wt != 2
            || field != 1 || ts_rw_fast_sub(&pb, &sub) != TS_OK)
        {
            return TS_RW_DECLINED;
        }

        if (t != NULL || series != NULL) {
            rc = ts_rw_fast_series(&sub, t, f,
                                   series != NULL ? &series[*n] : NULL);
            if (rc != TS_OK) {
                return rc;
            }
        }

        (*n)++;
    }

    return TS_OK;
}


/* cuts a string at its first NUL, as strlen() would; 1 if it had one */
static int
ts_rw_fast_cut(const char *s, uint32_t *len)
{
    const char  *nul;

    nul = memchr(s, 0, *len);
    if (nul == NULL) {
        return 0;
    }

    *len = (uint32_t) (nul - s);

    return 1;
}


static void
ts_rw_fast_nul(ts_rw_series_t *s)
{
    uint32_t     i;
    int          nul;
    ts_label_t  *l;

    nul = 0;

    for (i = 0; i < s->nlabels; i++) {
        l = &s->labels[i];
        nul |= ts_rw_fast_cut(l->name, &l->name_len);
        nul |= ts_rw_fast_cut(l->value, &l->value_len);
    }

    if (nul) {
        s->reject = TS_REJECT_NUL_IN_STRING;
    }
}


/* the series the store holds, see ts_rw_known_pt; buf: the labels' */
static void
ts_rw_fast_known(ts_rw_request_t *req, const uint8_t *buf, size_t len)
{
    uint32_t         i;
    ts_rw_series_t  *s;

    if (req->known == NULL) {
        return;
    }

    for (i = 0; i < req->nseries; i++) {
        s = &req->series[i];
        s->hash = ts_labels_hash_in(s->labels, s->nlabels,
                                    (const char *) buf,
                                    (const char *) buf + len);
    }

    req->known(req->known_data, req->series, req->nseries);
}


static int ts_rw_v1_fast_fill(ts_rw_request_t *req, const uint8_t *buf,
    size_t len, const ts_rw_totals_t *t, size_t nseries);


static int
ts_rw_v1_fast(ts_rw_request_t *req, const uint8_t *buf, size_t len)
{
    int              rc;
    size_t           i, n;
    uint8_t          none;
    ts_rw_totals_t   t;
    ts_rw_series_t  *s;

    memset(&t, 0, sizeof(ts_rw_totals_t));
    none = 0;

    /* the series only, for their array */

    if (ts_rw_fast_walk(buf, len, NULL, NULL, NULL, &n) != TS_OK) {
        return TS_RW_DECLINED;
    }

    rc = ts_rw_too_many_series(req, n);
    if (rc != TS_OK) {
        return rc;
    }

    rc = TS_RW_FULL;

    if (len <= TS_RW_GUESS_MAX) {
        t.labels = len / TS_RW_LABEL_BYTES + 1;
        t.samples = len / TS_RW_SAMPLE_BYTES + 1;

        rc = ts_rw_v1_fast_fill(req, buf, len, &t, n);
    }

    if (rc == TS_RW_FULL) {
        t.labels = 0;
        t.samples = 0;

        if (ts_rw_fast_walk(buf, len, &t, NULL, NULL, &n) != TS_OK) {
            return TS_RW_DECLINED;
        }

        rc = ts_rw_v1_fast_fill(req, buf, len, &t, n);
    }

    if (rc != TS_OK) {
        return rc;
    }

    ts_rw_fast_known(req, buf, len);

    for (i = 0; i < n; i++) {
        s = &req->series[i];

        if (s->ref == 0) {
            ts_rw_fast_nul(s);
        }

        /* no histograms: nothing reads mixed */
        ts_rw_series_finish(req, s, &none);
    }

    return TS_OK;
}


/*
 * The fill walk into arrays of t's sizes; on TS_RW_DECLINED (something
 * inside a label or sample, for protobuf-c) and TS_RW_FULL (arrays too
 * short) whatever it allocated is undone.
 */
static int
ts_rw_v1_fast_fill(ts_rw_request_t *req, const uint8_t *buf, size_t len,
    const ts_rw_totals_t *t, size_t nseries)
{
    int           rc;
    size_t        n, used;
    unsigned      nmem;
    ts_rw_fill_t  f;

    nmem = req->nmem;
    used = req->used;

    rc = TS_OK;

    req->series = ts_rw_array(req, nseries, sizeof(ts_rw_series_t), &rc);

    /* the fill writes every label and sample it counts: not zeroed */

    memset(&f, 0, sizeof(ts_rw_fill_t));
    f.labels = ts_rw_array_raw(req, t->labels, sizeof(ts_label_t), &rc);
    f.samples = ts_rw_array_raw(req, t->samples, sizeof(ts_rw_sample_t),
                                &rc);
    if (rc != TS_OK) {
        return rc;
    }

    f.labels_end = f.labels + t->labels;
    f.samples_end = f.samples + t->samples;

    req->nseries = (uint32_t) nseries;

    rc = ts_rw_fast_walk(buf, len, NULL, &f, req->series, &n);

    if (rc != TS_OK) {
        while (req->nmem > nmem) {
            ts_rw_free(req, req->mem[--req->nmem]);
        }

        req->used = used;
        req->series = NULL;
        req->nseries = 0;

        return rc;
    }

    return TS_OK;
}


static int
ts_rw_v1(ts_rw_request_t *req, const uint8_t *buf, size_t len)
{
    Prometheus__WriteRequest  *wr;
    int                        rc;

    rc = ts_rw_v1_fast(req, buf, len);
    if (rc != TS_RW_DECLINED) {
        return rc;
    }

    wr = prometheus__write_request__unpack(&req->alloc, len, buf);
    if (wr == NULL) {
        return ts_rw_unpack_failed(req, "prometheus.WriteRequest");
    }

    req->pb = wr;

    rc = ts_rw_too_many_series(req, wr->n_timeseries);
    if (rc != TS_OK) {
        return rc;
    }

    req->series = ts_rw_array(req, wr->n_timeseries, sizeof(ts_rw_series_t),
                              &rc);
    if (rc != TS_OK) {
        return rc;
    }

    req->nseries = (uint32_t) wr->n_timeseries;

    return ts_rw_v1_fill(req, wr, buf, len);
}


const ts_rw_metadata_t *
ts_rw_metadata_find(const ts_rw_request_t *req, const char *name,
    size_t len)
{
    ts_rw_metadata_t  key;

    if (req->nmetadata == 0) {
        return NULL;
    }

    key.name = name;
    key.name_len = (uint32_t) len;

    return bsearch(&key, req->metadata, req->nmetadata,
                   sizeof(ts_rw_metadata_t), ts_rw_meta_cmp);
}


/* v2 */

static ts_reject_code_t
ts_rw_sym(const ts_rw_symbols_t *sym, uint32_t ref, const char **s,
    uint32_t *len)
{
    if (ref >= sym->n || sym->len[ref] == TS_RW_SYM_NUL) {
        return TS_REJECT_BAD_SYMBOL_REF;
    }

    *s = sym->s[ref];
    *len = sym->len[ref];

    return TS_REJECT_NONE;
}


/* resolves pairs of refs into out; *done: pairs resolved */
static ts_reject_code_t
ts_rw_v2_labels(const ts_rw_symbols_t *sym, const uint32_t *refs,
    size_t n, ts_label_t *out, uint32_t *done)
{
    size_t  i;

    *done = 0;

    for (i = 0; i + 1 < n; i += 2, out++) {
        if (ts_rw_sym(sym, refs[i], &out->name, &out->name_len)
            != TS_REJECT_NONE
            || ts_rw_sym(sym, refs[i + 1], &out->value, &out->value_len)
               != TS_REJECT_NONE)
        {
            return TS_REJECT_BAD_SYMBOL_REF;
        }

        (*done)++;
    }

    return (n & 1) ? TS_REJECT_BAD_SYMBOL_REF : TS_REJECT_NONE;
}


static int
ts_rw_v2_has_st(const Io__Prometheus__Write__V2__TimeSeries *ts)
{
    size_t  j;

    if (ts->created_timestamp != 0 && ts->n_samples) {
        return 1;
    }

    for (j = 0; j < ts->n_samples; j++) {
        if (ts->samples[j]->start_timestamp != 0) {
            return 1;
        }
    }

    return 0;
}


static void
ts_rw_v2_totals(const Io__Prometheus__Write__V2__Request *r,
    ts_rw_totals_t *t)
{
    const Io__Prometheus__Write__V2__TimeSeries  *ts;
    const Io__Prometheus__Write__V2__Histogram   *h;
    size_t                                        i, j;

    memset(t, 0, sizeof(ts_rw_totals_t));

    for (i = 0; i < r->n_timeseries; i++) {
        ts = r->timeseries[i];
        t->labels += ts->n_labels_refs / 2;
        t->samples += ts->n_samples;
        t->hists += ts->n_histograms;
        t->exemplars += ts->n_exemplars;
        t->metas += ts->metadata != NULL;
        t->need_st |= ts_rw_v2_has_st(ts);

        for (j = 0; j < ts->n_exemplars; j++) {
            t->labels += ts->exemplars[j]->n_labels_refs / 2;
        }

        for (j = 0; j < ts->n_histograms; j++) {
            h = ts->histograms[j];
            t->spans += h->n_negative_spans + h->n_positive_spans;
        }
    }
}


static void
ts_rw_v2_samples(ts_rw_fill_t *f, ts_rw_series_t *s,
    const Io__Prometheus__Write__V2__TimeSeries *ts)
{
    const Io__Prometheus__Write__V2__Sample  *x;
    ts_rw_sample_t                           *d;
    size_t                                    j;
    int                                       st;

    s->samples = f->samples;
    s->nsamples = (uint32_t) ts->n_samples;
    st = ts_rw_v2_has_st(ts);

    if (st) {
        s->start_ts = f->start_ts;
    }

    for (j = 0; j < ts->n_samples; j++) {
        x = ts->samples[j];
        d = f->samples++;
        d->t = x->timestamp;
        memcpy(&d->v, &x->value, sizeof(uint64_t));

        if (st) {
            *f->start_ts++ = x->start_timestamp ? x->start_timestamp
                                                : ts->created_timestamp;
        }
    }
}


static void
ts_rw_v2_hists(ts_rw_fill_t *f, ts_rw_series_t *s,
    const Io__Prometheus__Write__V2__TimeSeries *ts, uint8_t *mixed)
{
    const Io__Prometheus__Write__V2__Histogram  *h;
    size_t                                       j;
    int                                          bad;

    s->histograms = f->hists;
    s->nhistograms = (uint32_t) ts->n_histograms;

    for (j = 0; j < ts->n_histograms; j++) {
        h = ts->histograms[j];
        ts_rw_hist_copy(f->hists, h, f->spans, bad);
        f->hists->start_t = h->start_timestamp ? h->start_timestamp
                                               : ts->created_timestamp;
        f->hists++;
        mixed[j] = (uint8_t) bad;
    }
}


static ts_reject_code_t
ts_rw_v2_exemplars(const ts_rw_symbols_t *sym, ts_rw_fill_t *f,
    ts_rw_series_t *s, const Io__Prometheus__Write__V2__TimeSeries *ts)
{
    const Io__Prometheus__Write__V2__Exemplar  *x;
    ts_rw_exemplar_t                           *e;
    ts_reject_code_t                            rc;
    size_t                                      j;

    s->exemplars = f->exemplars;
    s->nexemplars = (uint32_t) ts->n_exemplars;

    for (j = 0; j < ts->n_exemplars; j++) {
        x = ts->exemplars[j];
        e = f->exemplars++;

        e->labels = f->labels;
        e->nlabels = (uint32_t) (x->n_labels_refs / 2);
        e->t = x->timestamp;
        memcpy(&e->v, &x->value, sizeof(uint64_t));

        rc = ts_rw_v2_labels(sym, x->labels_refs, x->n_labels_refs,
                             f->labels, &e->nlabels);
        f->labels += x->n_labels_refs / 2;

        if (rc != TS_REJECT_NONE) {
            return rc;
        }
    }

    return TS_REJECT_NONE;
}


static ts_reject_code_t
ts_rw_v2_meta(ts_rw_request_t *req, const ts_rw_symbols_t *sym,
    ts_rw_fill_t *f, ts_rw_series_t *s,
    const Io__Prometheus__Write__V2__Metadata *pm)
{
    ts_rw_metadata_t  *m;
    ts_reject_t        r;

    if (pm == NULL) {
        return TS_REJECT_NONE;
    }

    m = f->metas++;
    m->name = "";
    m->type = (unsigned) pm->type <= TS_METRIC_STATESET
              ? (uint32_t) pm->type : TS_METRIC_UNKNOWN;

    if (ts_rw_sym(sym, pm->help_ref, &m->help, &m->help_len)
        != TS_REJECT_NONE
        || ts_rw_sym(sym, pm->unit_ref, &m->unit, &m->unit_len)
           != TS_REJECT_NONE)
    {
        return TS_REJECT_BAD_SYMBOL_REF;
    }

    if (m->type == TS_METRIC_UNKNOWN && m->help_len == 0
        && m->unit_len == 0)
    {
        return TS_REJECT_NONE;
    }

    if (ts_rw_meta_check(m, req->lim, &r) != TS_REJECT_NONE) {
        req->decoded.metadata++;
        ts_rw_meta_dropped(req, &r);
        return TS_REJECT_NONE;
    }

    s->meta = m;

    return TS_REJECT_NONE;
}


static void
ts_rw_v2_series(ts_rw_request_t *req, const ts_rw_symbols_t *sym,
    ts_rw_fill_t *f, ts_rw_series_t *s,
    const Io__Prometheus__Write__V2__TimeSeries *ts, uint8_t *mixed)
{
    ts_reject_code_t  rc, rc2, rc3;

    s->labels = f->labels;
    s->created_t = ts->created_timestamp;

    rc = ts_rw_v2_labels(sym, ts->labels_refs, ts->n_labels_refs,
                         f->labels, &s->nlabels);
    f->labels += ts->n_labels_refs / 2;

    ts_rw_v2_samples(f, s, ts);
    ts_rw_v2_hists(f, s, ts, mixed);
    rc2 = ts_rw_v2_exemplars(sym, f, s, ts);
    rc3 = ts_rw_v2_meta(req, sym, f, s, ts->metadata);

    if (rc == TS_REJECT_NONE && rc2 == TS_REJECT_NONE
        && rc3 == TS_REJECT_NONE)
    {
        return;
    }

    s->reject = TS_REJECT_BAD_SYMBOL_REF;
}


static int
ts_rw_v2_symbols(ts_rw_request_t *req,
    const Io__Prometheus__Write__V2__Request *r, const uint8_t *buf,
    size_t len, ts_rw_symbols_t *sym)
{
    uint32_t  *sl;
    int        rc;

    rc = TS_OK;
    sl = ts_rw_array(req, r->n_symbols, sizeof(uint32_t), &rc);
    if (rc != TS_OK) {
        return rc;
    }

    if (ts_rw_v2_scan(buf, len, sl, r->n_symbols) != TS_OK) {
        return ts_rw_unpack_failed(req, "io.prometheus.write.v2.Request");
    }

    if (r->n_symbols && sl[0] != 0) {
        ts_reject_set(&req->why, TS_REJECT_INVALID_SYMBOLS,
                      "invalid symbols table: symbols[0] must be the empty "
                      "string");
        return TS_ERR_INVALID;
    }

    sym->s = r->symbols;
    sym->len = sl;
    sym->n = r->n_symbols;

    return TS_OK;
}


static int
ts_rw_v2_fill(ts_rw_request_t *req, const Io__Prometheus__Write__V2__Request *r,
    const ts_rw_symbols_t *sym)
{
    ts_rw_totals_t   t;
    ts_rw_fill_t     f;
    uint8_t         *mixed;
    size_t           i;
    int              rc;

    ts_rw_v2_totals(r, &t);

    rc = ts_rw_alloc_totals(req, &t, &f, &mixed);
    if (rc != TS_OK) {
        return rc;
    }

    for (i = 0; i < r->n_timeseries; i++) {
        ts_rw_v2_series(req, sym, &f, &req->series[i], r->timeseries[i],
                        mixed);
        ts_rw_series_finish(req, &req->series[i], mixed);
        mixed += r->timeseries[i]->n_histograms;
    }

    return TS_OK;
}


static int
ts_rw_v2(ts_rw_request_t *req, const uint8_t *buf, size_t len)
{
    Io__Prometheus__Write__V2__Request  *r;
    ts_rw_symbols_t                      sym;
    int                                  rc;

    r = io__prometheus__write__v2__request__unpack(&req->alloc, len, buf);
    if (r == NULL) {
        return ts_rw_unpack_failed(req, "io.prometheus.write.v2.Request");
    }

    req->pb = r;

    rc = ts_rw_too_many_series(req, r->n_timeseries);
    if (rc == TS_OK) {
        rc = ts_rw_v2_symbols(req, r, buf, len, &sym);
    }

    req->series = ts_rw_array(req, r->n_timeseries, sizeof(ts_rw_series_t),
                              &rc);

    if (rc != TS_OK) {
        return rc;
    }

    req->nseries = (uint32_t) r->n_timeseries;

    return ts_rw_v2_fill(req, r, &sym);
}
