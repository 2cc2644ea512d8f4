/*
 * Copyright (C) ngx_tsdb authors
 *
 * The proto3 JSON mapping over protobuf-c descriptors (ts_pjson.h).
 *
 * The decoder is a recursive descent over the bytes, one message per
 * level (bounded by TS_PJSON_MAX_DEPTH, so the C stack is too).  A
 * repeated field is collected in a temporary array and stored only
 * when complete, so that on any error the message holds only complete
 * values and protobuf_c_message_free_unpacked() can free it.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_pjson.h"
#include "ts_pqjson.h"


#define TS_PJSON_NAME_MAX   128


typedef struct {
    const uint8_t              *p;
    const uint8_t              *start;
    const uint8_t              *end;
    ProtobufCAllocator         *a;
    char                       *err;
    size_t                      errlen;
    int                         depth;
} ts_pj_t;


static void *ts_pj_malloc(void *data, size_t size);
static void ts_pj_mfree(void *data, void *p);
static int ts_pj_fail(ts_pj_t *j, const char *what);
static void ts_pj_ws(ts_pj_t *j);
static int ts_pj_lit(ts_pj_t *j, const char *lit);
static int ts_pj_string(ts_pj_t *j, char **s, size_t *len);
static int ts_pj_valid(const uint8_t *p, size_t n);
static int ts_pj_hex4(const uint8_t *p, uint32_t *v);
static size_t ts_pj_utf8(uint32_t cp, uint8_t *out);
static int ts_pj_number(ts_pj_t *j, const uint8_t **tok, size_t *len);
static int ts_pj_skip(ts_pj_t *j);
static int ts_pj_message(ts_pj_t *j, const ProtobufCMessageDescriptor *d,
    ProtobufCMessage **out);
static const ProtobufCFieldDescriptor *ts_pj_lookup(
    const ProtobufCMessageDescriptor *d, const char *key, size_t len,
    unsigned *index);
static size_t ts_pj_json_name(const char *name, char *buf, size_t size);
static int ts_pj_field(ts_pj_t *j, ProtobufCMessage *m,
    const ProtobufCFieldDescriptor *f);
static int ts_pj_repeated(ts_pj_t *j, ProtobufCMessage *m,
    const ProtobufCFieldDescriptor *f);
static size_t ts_pj_size(ProtobufCType type);
static int ts_pj_value(ts_pj_t *j, const ProtobufCFieldDescriptor *f,
    void *dst);
static int ts_pj_int(ts_pj_t *j, ProtobufCType type, void *dst);
static int ts_pj_parse_int(const char *s, ProtobufCType type, void *dst);
static int ts_pj_float(ts_pj_t *j, ProtobufCType type, void *dst);
static int ts_pj_enum(ts_pj_t *j, const ProtobufCEnumDescriptor *ed,
    int32_t *dst);
static int ts_pj_bytes(ts_pj_t *j, ProtobufCBinaryData *dst);
static void ts_pj_free_value(ts_pj_t *j, ProtobufCType type, void *v);
static int ts_pj_put(ts_buf_t *out, const char *s, size_t len);
static int ts_pj_enc_message(const ProtobufCMessage *m, ts_buf_t *out);
static int ts_pj_enc_value(const ProtobufCFieldDescriptor *f,
    const void *v, ts_buf_t *out);
static int ts_pj_is_default(const ProtobufCFieldDescriptor *f,
    const void *v);
static int ts_pj_enc_base64(const ProtobufCBinaryData *b, ts_buf_t *out);


static ProtobufCAllocator  ts_pj_malloc_allocator = {
    ts_pj_malloc, ts_pj_mfree, NULL
};


static void *
ts_pj_malloc(void *data, size_t size)
{
    (void) data;

    return malloc(size);
}


static void
ts_pj_mfree(void *data, void *p)
{
    (void) data;

    free(p);
}


static int
ts_pj_fail(ts_pj_t *j, const char *what)
{
    if (j->err != NULL && j->errlen) {
        snprintf(j->err, j->errlen, "invalid JSON at offset %zu: %s",
                 (size_t) (j->p - j->start), what);
    }

    return TS_ERR_INVALID;
}


static void
ts_pj_ws(ts_pj_t *j)
{
    while (j->p < j->end
           && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n'
               || *j->p == '\r'))
    {
        j->p++;
    }
}


/* 1 if the literal is next (consumed), else 0 */

static int
ts_pj_lit(ts_pj_t *j, const char *lit)
{
    size_t  n;

    n = strlen(lit);

    if ((size_t) (j->end - j->p) >= n && memcmp(j->p, lit, n) == 0) {
        j->p += n;
        return 1;
    }

    return 0;
}


int
ts_pjson_decode(const ProtobufCMessageDescriptor *d, const uint8_t *json,
    size_t len, ProtobufCAllocator *a, ProtobufCMessage **out, char *err,
    size_t errlen)
{
    int      rc;
    ts_pj_t  j;

    *out = NULL;

    if (err != NULL && errlen) {
        err[0] = '\0';
    }

    j.p = json;
    j.start = json;
    j.end = json + len;
    j.a = a ? a : &ts_pj_malloc_allocator;
    j.err = err;
    j.errlen = errlen;
    j.depth = 0;

    ts_pj_ws(&j);

    rc = ts_pj_message(&j, d, out);
    if (rc != TS_OK) {
        return rc;
    }

    ts_pj_ws(&j);

    if (j.p != j.end) {
        protobuf_c_message_free_unpacked(*out, j.a);
        *out = NULL;
        return ts_pj_fail(&j, "trailing data");
    }

    return TS_OK;
}


/* a JSON string into a new NUL-terminated buffer (UTF-8, as is) */

static int
ts_pj_string(ts_pj_t *j, char **s, size_t *len)
{
    size_t          n;
    uint8_t        *b;
    uint32_t        cp, lo;
    const uint8_t  *p, *q;

    if (j->p >= j->end || *j->p != '"') {
        return ts_pj_fail(j, "expected a string");
    }

    /* the decoded string is never longer than the raw one */

    for (q = j->p + 1; q < j->end && *q != '"'; q++) {
        if (*q == '\\') {
            q++;
        }
    }

    if (q >= j->end) {
        return ts_pj_fail(j, "unterminated string");
    }

    b = j->a->alloc(j->a->allocator_data, (size_t) (q - j->p));
    if (b == NULL) {
        return TS_ERR_NOMEM;
    }

    n = 0;

    for (p = j->p + 1; p < q; p++) {
        if (*p < 0x20) {
            j->p = p;
            j->a->free(j->a->allocator_data, b);
            return ts_pj_fail(j, "control character in a string");
        }

        if (*p != '\\') {
            b[n++] = *p;
            continue;
        }

        p++;

        switch (*p) {
        case '"': case '\\': case '/': b[n++] = *p; continue;
        case 'b': b[n++] = '\b'; continue;
        case 'f': b[n++] = '\f'; continue;
        case 'n': b[n++] = '\n'; continue;
        case 'r': b[n++] = '\r'; continue;
        case 't': b[n++] = '\t'; continue;
        case 'u': break;
        default: goto bad;
        }

        if (q - p < 5 || ts_pj_hex4(p + 1, &cp) != 0) {
            goto bad;
        }

        p += 4;

        if (cp >= 0xd800 && cp < 0xdc00 && q - p >= 7 && p[1] == '\\'
            && p[2] == 'u' && ts_pj_hex4(p + 3, &lo) == 0
            && lo >= 0xdc00 && lo < 0xe000)
        {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p += 6;

        } else if (cp >= 0xd800 && cp < 0xe000) {
            cp = 0xfffd;                 /* a lone surrogate, as Go */
        }

        n += ts_pj_utf8(cp, b + n);
    }

    b[n] = '\0';

    /* protojson refuses invalid UTF-8; C strings cannot hold a NUL */

    if (!ts_pj_valid(b, n)) {
        j->a->free(j->a->allocator_data, b);
        return ts_pj_fail(j, "invalid UTF-8 or NUL in a string");
    }

    *s = (char *) b;
    *len = n;
    j->p = q + 1;

    return TS_OK;

bad:

    j->p = p;
    j->a->free(j->a->allocator_data, b);

    return ts_pj_fail(j, "bad escape in a string");
}


/* well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF), no NUL */

static int
ts_pj_valid(const uint8_t *p, size_t n)
{
    size_t    i, k, need;
    uint32_t  cp, min;

    for (i = 0; i < n; i += need + 1) {
        if (p[i] == 0) {
            return 0;
        }

        if (p[i] < 0x80) {
            need = 0;
            continue;
        }

        if ((p[i] & 0xe0) == 0xc0) {
            need = 1, cp = p[i] & 0x1f, min = 0x80;
        } else if ((p[i] & 0xf0) == 0xe0) {
            need = 2, cp = p[i] & 0x0f, min = 0x800;
        } else if ((p[i] & 0xf8) == 0xf0) {
            need = 3, cp = p[i] & 0x07, min = 0x10000;
        } else {
            return 0;
        }

        if (n - i <= need) {
            return 0;
        }

        for (k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }

            cp = cp << 6 | (p[i + k] & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
            return 0;
        }
    }

    return 1;
}


static int
ts_pj_hex4(const uint8_t *p, uint32_t *v)
{
    int  i, d;

    *v = 0;

    for (i = 0; i < 4; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            d = p[i] - '0';
        } else if (p[i] >= 'a' && p[i] <= 'f') {
            d = p[i] - 'a' + 10;
        } else if (p[i] >= 'A' && p[i] <= 'F') {
            d = p[i] - 'A' + 10;
        } else {
            return -1;
        }

        *v = *v << 4 | (uint32_t) d;
    }

    return 0;
}


/* at most 4 bytes, never more than the 6 of its \uXXXX escape */

static size_t
ts_pj_utf8(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t) cp;
        return 1;
    }

    if (cp < 0x800) {
        out[0] = (uint8_t) (0xc0 | (cp >> 6));
        out[1] = (uint8_t) (0x80 | (cp & 0x3f));
        return 2;
    }

    if (cp < 0x10000) {
        out[0] = (uint8_t) (0xe0 | (cp >> 12));
        out[1] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t) (0x80 | (cp & 0x3f));
        return 3;
    }

    out[0] = (uint8_t) (0xf0 | (cp >> 18));
    out[1] = (uint8_t) (0x80 | ((cp >> 12) & 0x3f));
    out[2] = (uint8_t) (0x80 | ((cp >> 6) & 0x3f));
    out[3] = (uint8_t) (0x80 | (cp & 0x3f));

    return 4;
}


/* a JSON number token: -?digits(.digits)?([eE][+-]?digits)? */

static int
ts_pj_number(ts_pj_t *j, const uint8_t **tok, size_t *len)
{
    const uint8_t  *p, *d;

    p = j->p;

    if (p < j->end && *p == '-') {
        p++;
    }

    for (d = p; p < j->end && *p >= '0' && *p <= '9'; p++) { /* void */ }

    if (p == d || (*d == '0' && p - d > 1)) {
        return ts_pj_fail(j, "expected a number");
    }

    if (p < j->end && *p == '.') {
        for (d = ++p; p < j->end && *p >= '0' && *p <= '9'; p++) {
            /* void */
        }

        if (p == d) {
            return ts_pj_fail(j, "bad number");
        }
    }

    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < j->end && (*p == '+' || *p == '-')) {
            p++;
        }

        for (d = p; p < j->end && *p >= '0' && *p <= '9'; p++) {
            /* void */
        }

        if (p == d) {
            return ts_pj_fail(j, "bad number");
        }
    }

    if (p - j->p > 64) {
        return ts_pj_fail(j, "number too long");
    }

    *tok = j->p;
    *len = (size_t) (p - j->p);
    j->p = p;

    return TS_OK;
}


static int
ts_pj_skip(ts_pj_t *j)
{
    int             rc;
    char           *s;
    size_t          len;
    const uint8_t  *tok;

    ts_pj_ws(j);

    if (j->p >= j->end) {
        return ts_pj_fail(j, "unexpected end");
    }

    if (*j->p == '"') {
        rc = ts_pj_string(j, &s, &len);
        if (rc == TS_OK) {
            j->a->free(j->a->allocator_data, s);
        }

        return rc;
    }

    if (*j->p == '{' || *j->p == '[') {
        if (++j->depth > TS_PJSON_MAX_DEPTH) {
            return ts_pj_fail(j, "nested too deeply");
        }

        rc = (*j->p == '{');
        j->p++;
        ts_pj_ws(j);

        if (j->p < j->end && *j->p == (rc ? '}' : ']')) {
            j->p++;
            j->depth--;
            return TS_OK;
        }

        for ( ;; ) {
            if (rc) {
                ts_pj_ws(j);
                if (ts_pj_skip(j) != TS_OK) {
                    return TS_ERR_INVALID;
                }

                ts_pj_ws(j);
                if (!ts_pj_lit(j, ":")) {
                    return ts_pj_fail(j, "expected ':'");
                }
            }

            if (ts_pj_skip(j) != TS_OK) {
                return TS_ERR_INVALID;
            }

            ts_pj_ws(j);

            if (ts_pj_lit(j, ",")) {
                continue;
            }

            if (ts_pj_lit(j, rc ? "}" : "]")) {
                j->depth--;
                return TS_OK;
            }

            return ts_pj_fail(j, "expected ',' or the end");
        }
    }

    if (ts_pj_lit(j, "true") || ts_pj_lit(j, "false")
        || ts_pj_lit(j, "null"))
    {
        return TS_OK;
    }

    return ts_pj_number(j, &tok, &len);
}


static int
ts_pj_message(ts_pj_t *j, const ProtobufCMessageDescriptor *d,
    ProtobufCMessage **out)
{
    int                              rc;
    char                            *key;
    size_t                           klen;
    unsigned                         idx;
    uint64_t                         seen;
    ProtobufCMessage                *m;
    const ProtobufCFieldDescriptor  *f;

    if (j->p >= j->end || *j->p != '{') {
        return ts_pj_fail(j, "expected an object");
    }

    if (++j->depth > TS_PJSON_MAX_DEPTH) {
        return ts_pj_fail(j, "nested too deeply");
    }

    m = j->a->alloc(j->a->allocator_data, d->sizeof_message);
    if (m == NULL) {
        return TS_ERR_NOMEM;
    }

    d->message_init(m);
    j->p++;
    seen = 0;

    ts_pj_ws(j);

    if (ts_pj_lit(j, "}")) {
        goto done;
    }

    for ( ;; ) {
        ts_pj_ws(j);

        rc = ts_pj_string(j, &key, &klen);
        if (rc != TS_OK) {
            goto failed;
        }

        f = ts_pj_lookup(d, key, klen, &idx);
        j->a->free(j->a->allocator_data, key);

        ts_pj_ws(j);

        if (!ts_pj_lit(j, ":")) {
            rc = ts_pj_fail(j, "expected ':'");
            goto failed;
        }

        ts_pj_ws(j);

        if (f == NULL) {
            rc = ts_pj_skip(j);

        } else if (idx < 64 && (seen & ((uint64_t) 1 << idx))) {
            rc = ts_pj_fail(j, "duplicate field");

        } else {
            seen |= (idx < 64) ? (uint64_t) 1 << idx : 0;
            rc = ts_pj_field(j, m, f);
        }

        if (rc != TS_OK) {
            goto failed;
        }

        ts_pj_ws(j);

        if (ts_pj_lit(j, ",")) {
            continue;
        }

        if (ts_pj_lit(j, "}")) {
            break;
        }

        rc = ts_pj_fail(j, "expected ',' or '}'");
        goto failed;
    }

done:

    j->depth--;
    *out = m;

    return TS_OK;

failed:

    protobuf_c_message_free_unpacked(m, j->a);

    return rc;
}


/* a field by its proto name or its JSON name */

static const ProtobufCFieldDescriptor *
ts_pj_lookup(const ProtobufCMessageDescriptor *d, const char *key,
    size_t len, unsigned *index)
{
    char      jn[TS_PJSON_NAME_MAX];
    size_t    n;
    unsigned  i;

    for (i = 0; i < d->n_fields; i++) {
        if (strlen(d->fields[i].name) == len
            && memcmp(d->fields[i].name, key, len) == 0)
        {
            *index = i;
            return &d->fields[i];
        }

        n = ts_pj_json_name(d->fields[i].name, jn, sizeof(jn));

        if (n == len && memcmp(jn, key, len) == 0) {
            *index = i;
            return &d->fields[i];
        }
    }

    return NULL;
}


/* protoc's json_name: underscores dropped, the next letter upper case */

static size_t
ts_pj_json_name(const char *name, char *buf, size_t size)
{
    int     up;
    size_t  n;

    for (n = 0, up = 0; *name && n + 1 < size; name++) {
        if (*name == '_') {
            up = 1;
            continue;
        }

        buf[n++] = (up && *name >= 'a' && *name <= 'z')
                   ? (char) (*name - 'a' + 'A') : *name;
        up = 0;
    }

    buf[n] = '\0';

    return n;
}


static int
ts_pj_field(ts_pj_t *j, ProtobufCMessage *m,
    const ProtobufCFieldDescriptor *f)
{
    int       rc;
    uint8_t  *base, tmp[sizeof(ProtobufCBinaryData) + sizeof(void *)];

    base = (uint8_t *) m;

    if (ts_pj_lit(j, "null")) {
        return TS_OK;
    }

    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        return ts_pj_repeated(j, m, f);
    }

    memset(tmp, 0, sizeof(tmp));

    rc = ts_pj_value(j, f, tmp);
    if (rc != TS_OK) {
        return rc;
    }

    memcpy(base + f->offset, tmp, ts_pj_size(f->type));

    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        *(uint32_t *) (base + f->quantifier_offset) = f->id;

    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL
               && f->type != PROTOBUF_C_TYPE_STRING
               && f->type != PROTOBUF_C_TYPE_MESSAGE)
    {
        *(protobuf_c_boolean *) (base + f->quantifier_offset) = 1;
    }

    return TS_OK;
}


static int
ts_pj_repeated(ts_pj_t *j, ProtobufCMessage *m,
    const ProtobufCFieldDescriptor *f)
{
    int       rc;
    size_t    n, cap, size, i;
    uint8_t  *arr, *bigger;

    if (!ts_pj_lit(j, "[")) {
        return ts_pj_fail(j, "expected an array");
    }

    size = ts_pj_size(f->type);
    arr = NULL;
    n = 0;
    cap = 0;
    rc = TS_OK;

    ts_pj_ws(j);

    if (ts_pj_lit(j, "]")) {
        return TS_OK;
    }

    for ( ;; ) {
        ts_pj_ws(j);

        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            bigger = j->a->alloc(j->a->allocator_data, cap * size);
            if (bigger == NULL) {
                rc = TS_ERR_NOMEM;
                break;
            }

            if (n) {
                memcpy(bigger, arr, n * size);
            }

            if (arr != NULL) {
                j->a->free(j->a->allocator_data, arr);
            }

            arr = bigger;
        }

        memset(arr + n * size, 0, size);

        rc = ts_pj_value(j, f, arr + n * size);
        if (rc != TS_OK) {
            break;
        }

        n++;
        ts_pj_ws(j);

        if (ts_pj_lit(j, ",")) {
            continue;
        }

        if (ts_pj_lit(j, "]")) {
            break;
        }

        rc = ts_pj_fail(j, "expected ',' or ']'");
        break;
    }

    if (rc != TS_OK) {
        for (i = 0; i < n; i++) {
            ts_pj_free_value(j, f->type, arr + i * size);
        }

        if (arr != NULL) {
            j->a->free(j->a->allocator_data, arr);
        }

        return rc;
    }

    *(size_t *) ((uint8_t *) m + f->quantifier_offset) = n;
    *(void **) ((uint8_t *) m + f->offset) = arr;

    return TS_OK;
}


static size_t
ts_pj_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 8;
    }
}


static int
ts_pj_value(ts_pj_t *j, const ProtobufCFieldDescriptor *f, void *dst)
{
    int     rc;
    char   *s;
    size_t  len;

    switch (f->type) {

    case PROTOBUF_C_TYPE_STRING:
        rc = ts_pj_string(j, &s, &len);
        if (rc == TS_OK) {
            *(char **) dst = s;
        }

        return rc;

    case PROTOBUF_C_TYPE_BYTES:
        return ts_pj_bytes(j, dst);

    case PROTOBUF_C_TYPE_MESSAGE:
        return ts_pj_message(j, f->descriptor, dst);

    case PROTOBUF_C_TYPE_ENUM:
        return ts_pj_enum(j, f->descriptor, dst);

    case PROTOBUF_C_TYPE_BOOL:
        if (ts_pj_lit(j, "true")) {
            *(protobuf_c_boolean *) dst = 1;
            return TS_OK;
        }

        if (ts_pj_lit(j, "false")) {
            *(protobuf_c_boolean *) dst = 0;
            return TS_OK;
        }

        return ts_pj_fail(j, "expected true or false");

    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        return ts_pj_float(j, f->type, dst);

    default:
        return ts_pj_int(j, f->type, dst);
    }
}


/* an integer: a number, or a string holding one */

static int
ts_pj_int(ts_pj_t *j, ProtobufCType type, void *dst)
{
    int             rc;
    char            buf[72], *s;
    size_t          len;
    const uint8_t  *tok, *at;

    at = j->p;

    if (j->p < j->end && *j->p == '"') {
        rc = ts_pj_string(j, &s, &len);
        if (rc != TS_OK) {
            return rc;
        }

        rc = (len > 0 && len < sizeof(buf)) ? TS_OK : TS_ERR_INVALID;

        if (rc == TS_OK) {
            memcpy(buf, s, len + 1);
        }

        j->a->free(j->a->allocator_data, s);

    } else {
        rc = ts_pj_number(j, &tok, &len);
        if (rc != TS_OK) {
            return rc;
        }

        memcpy(buf, tok, len);
        buf[len] = '\0';
    }

    if (rc == TS_OK) {
        rc = ts_pj_parse_int(buf, type, dst);
    }

    if (rc != TS_OK) {
        j->p = at;
        return ts_pj_fail(j, "not an integer in range");
    }

    return TS_OK;
}


/*
 * Decimal integers; like protojson also 1e3 or 2.0 when the value is
 * integral and in range.
 */

static int
ts_pj_parse_int(const char *s, ProtobufCType type, void *dst)
{
    int                 neg;
    char               *end;
    double              f;
    int64_t             i;
    uint64_t            u;
    unsigned long long  ull;

    neg = (s[0] == '-');

    if (strpbrk(s, ".eE") != NULL) {
        f = strtod(s, &end);

        if (*end != '\0' || !isfinite(f) || f != floor(f)
            || f >= 18446744073709551616.0 || f < -9223372036854775808.0)
        {
            return TS_ERR_INVALID;
        }

        if (f < 0) {
            i = (int64_t) f;
            u = 0;

        } else {
            u = (uint64_t) f;
            i = (f < 9223372036854775808.0) ? (int64_t) u : -1;
        }

    } else {
        errno = 0;

        if (neg) {
            i = strtoll(s, &end, 10);
            u = 0;

        } else {
            ull = strtoull(s, &end, 10);
            u = ull;
            i = (ull <= INT64_MAX) ? (int64_t) ull : -1;
        }

        if (*end != '\0' || errno != 0 || end == s) {
            return TS_ERR_INVALID;
        }
    }

    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((neg ? i : (int64_t) u) < INT32_MIN || (!neg && u > INT32_MAX))
        {
            return TS_ERR_INVALID;
        }

        *(int32_t *) dst = (int32_t) (neg ? i : (int64_t) u);
        return TS_OK;

    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((neg && i != 0) || u > UINT32_MAX) {
            return TS_ERR_INVALID;
        }

        *(uint32_t *) dst = (uint32_t) u;
        return TS_OK;

    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (neg && i != 0) {
            return TS_ERR_INVALID;
        }

        *(uint64_t *) dst = u;
        return TS_OK;

    default:
        if (!neg && u > INT64_MAX) {
            return TS_ERR_INVALID;
        }

        *(int64_t *) dst = neg ? i : (int64_t) u;
        return TS_OK;
    }
}


static int
ts_pj_float(ts_pj_t *j, ProtobufCType type, void *dst)
{
    int             rc;
    char            buf[72], *s, *end;
    double          v;
    size_t          len;
    const uint8_t  *tok, *at;

    at = j->p;

    if (j->p < j->end && *j->p == '"') {
        rc = ts_pj_string(j, &s, &len);
        if (rc != TS_OK) {
            return rc;
        }

        rc = (len > 0 && len < sizeof(buf)) ? TS_OK : TS_ERR_INVALID;

        if (rc == TS_OK) {
            memcpy(buf, s, len + 1);
        }

        j->a->free(j->a->allocator_data, s);

        if (rc == TS_OK && strcmp(buf, "NaN") == 0) {
            v = NAN;
            goto store;
        }

        if (rc == TS_OK && strcmp(buf, "Infinity") == 0) {
            v = INFINITY;
            goto store;
        }

        if (rc == TS_OK && strcmp(buf, "-Infinity") == 0) {
            v = -INFINITY;
            goto store;
        }

        if (rc != TS_OK || strspn(buf, "-0123456789.eE+") != len) {
            j->p = at;
            return ts_pj_fail(j, "not a number");
        }

    } else {
        rc = ts_pj_number(j, &tok, &len);
        if (rc != TS_OK) {
            return rc;
        }

        memcpy(buf, tok, len);
        buf[len] = '\0';
    }

    errno = 0;
    v = strtod(buf, &end);

    if (*end != '\0' || end == buf || (errno == ERANGE && isinf(v))) {
        j->p = at;
        return ts_pj_fail(j, "not a number in range");
    }

store:

    if (type == PROTOBUF_C_TYPE_FLOAT) {
        *(float *) dst = (float) v;

    } else {
        *(double *) dst = v;
    }

    return TS_OK;
}


static int
ts_pj_enum(ts_pj_t *j, const ProtobufCEnumDescriptor *ed, int32_t *dst)
{
    int             rc;
    char           *s;
    size_t          len;
    unsigned        i;
    const uint8_t  *at;

    if (j->p >= j->end || *j->p != '"') {
        return ts_pj_int(j, PROTOBUF_C_TYPE_INT32, dst);
    }

    at = j->p;

    rc = ts_pj_string(j, &s, &len);
    if (rc != TS_OK) {
        return rc;
    }

    for (i = 0; i < ed->n_values; i++) {
        if (strcmp(ed->values[i].name, s) == 0) {
            *dst = ed->values[i].value;
            j->a->free(j->a->allocator_data, s);
            return TS_OK;
        }
    }

    j->a->free(j->a->allocator_data, s);
    j->p = at;

    return ts_pj_fail(j, "unknown enum value");
}


static int
ts_pj_bytes(ts_pj_t *j, ProtobufCBinaryData *dst)
{
    int      rc, v;
    char    *s;
    size_t   len, i, n;
    uint8_t *b;
    uint32_t acc, bits;

    rc = ts_pj_string(j, &s, &len);
    if (rc != TS_OK) {
        return rc;
    }

    while (len > 0 && s[len - 1] == '=') {
        len--;
    }

    b = j->a->alloc(j->a->allocator_data, len * 3 / 4 + 1);
    if (b == NULL) {
        j->a->free(j->a->allocator_data, s);
        return TS_ERR_NOMEM;
    }

    acc = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        v = s[i];

        if (v >= 'A' && v <= 'Z') {
            v -= 'A';
        } else if (v >= 'a' && v <= 'z') {
            v = v - 'a' + 26;
        } else if (v >= '0' && v <= '9') {
            v = v - '0' + 52;
        } else if (v == '+' || v == '-') {
            v = 62;
        } else if (v == '/' || v == '_') {
            v = 63;
        } else {
            break;
        }

        acc = (acc << 6) | (uint32_t) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            b[n++] = (uint8_t) (acc >> bits);
        }
    }

    j->a->free(j->a->allocator_data, s);

    if (i != len || len % 4 == 1) {
        j->a->free(j->a->allocator_data, b);
        return ts_pj_fail(j, "bad base64");
    }

    dst->data = b;
    dst->len = n;

    return TS_OK;
}


static void
ts_pj_free_value(ts_pj_t *j, ProtobufCType type, void *v)
{
    switch (type) {
    case PROTOBUF_C_TYPE_STRING:
        j->a->free(j->a->allocator_data, *(char **) v);
        break;
    case PROTOBUF_C_TYPE_BYTES:
        j->a->free(j->a->allocator_data, ((ProtobufCBinaryData *) v)->data);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        protobuf_c_message_free_unpacked(*(ProtobufCMessage **) v, j->a);
        break;
    default:
        break;
    }
}


static int
ts_pj_put(ts_buf_t *out, const char *s, size_t len)
{
    if (ts_buf_reserve(out, len) != TS_OK) {
        return TS_ERR_NOMEM;
    }

    memcpy(out->p + out->len, s, len);
    out->len += len;

    return TS_OK;
}


int
ts_pjson_encode(const ProtobufCMessage *m, ts_buf_t *out)
{
    return ts_pj_enc_message(m, out);
}


static int
ts_pj_enc_message(const ProtobufCMessage *m, ts_buf_t *out)
{
    int                              rc, first;
    char                             jn[TS_PJSON_NAME_MAX];
    size_t                           n, i, size;
    unsigned                         k;
    const uint8_t                   *base, *arr;
    const ProtobufCFieldDescriptor  *f;

    base = (const uint8_t *) m;
    first = 1;
    rc = ts_pj_put(out, "{", 1);

    for (k = 0; rc == TS_OK && k < m->descriptor->n_fields; k++) {
        f = &m->descriptor->fields[k];

        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *) (base + f->quantifier_offset);
            if (n == 0) {
                continue;
            }

        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *) (base + f->quantifier_offset) != f->id) {
                continue;
            }

        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL
                   && f->type != PROTOBUF_C_TYPE_STRING
                   && f->type != PROTOBUF_C_TYPE_MESSAGE)
        {
            if (!*(const protobuf_c_boolean *) (base + f->quantifier_offset))
            {
                continue;
            }

        } else if (ts_pj_is_default(f, base + f->offset)) {
            continue;
        }

        n = ts_pj_json_name(f->name, jn, sizeof(jn));

        rc = (first ? TS_OK : ts_pj_put(out, ",", 1))
             || ts_pqjson_string(jn, n, out) || ts_pj_put(out, ":", 1);
        first = 0;

        if (rc != TS_OK) {
            break;
        }

        if (f->label != PROTOBUF_C_LABEL_REPEATED) {
            rc = ts_pj_enc_value(f, base + f->offset, out);
            continue;
        }

        n = *(const size_t *) (base + f->quantifier_offset);
        arr = *(const uint8_t * const *) (base + f->offset);
        size = ts_pj_size(f->type);
        rc = ts_pj_put(out, "[", 1);

        for (i = 0; rc == TS_OK && i < n; i++) {
            rc = (i ? ts_pj_put(out, ",", 1) : TS_OK)
                 || ts_pj_enc_value(f, arr + i * size, out);
        }

        rc = rc ? rc : ts_pj_put(out, "]", 1);
    }

    rc = rc ? rc : ts_pj_put(out, "}", 1);

    return rc ? TS_ERR_NOMEM : TS_OK;
}


static int
ts_pj_is_default(const ProtobufCFieldDescriptor *f, const void *v)
{
    const char  *s;

    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        s = *(const char * const *) v;
        return s == NULL || s[0] == '\0';
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void * const *) v == NULL;
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *) v)->len == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *) v == 0 && !signbit(*(const float *) v);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *) v == 0 && !signbit(*(const double *) v);
    default:
        break;
    }

    return ts_pj_size(f->type) == 4 ? *(const uint32_t *) v == 0
                                    : *(const uint64_t *) v == 0;
}


static int
ts_pj_enc_value(const ProtobufCFieldDescriptor *f, const void *v,
    ts_buf_t *out)
{
    char                            buf[64];
    double                          d;
    unsigned                        i;
    const char                     *s;
    const ProtobufCEnumDescriptor  *ed;

    switch (f->type) {

    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(buf, sizeof(buf), "%d", *(const int32_t *) v);
        break;

    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(buf, sizeof(buf), "%u", *(const uint32_t *) v);
        break;

    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(buf, sizeof(buf), "\"%lld\"",
                 (long long) *(const int64_t *) v);
        break;

    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(buf, sizeof(buf), "\"%llu\"",
                 (unsigned long long) *(const uint64_t *) v);
        break;

    case PROTOBUF_C_TYPE_BOOL:
        snprintf(buf, sizeof(buf), "%s",
                 *(const protobuf_c_boolean *) v ? "true" : "false");
        break;

    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        d = (f->type == PROTOBUF_C_TYPE_FLOAT) ? *(const float *) v
                                               : *(const double *) v;

        if (isnan(d)) {
            snprintf(buf, sizeof(buf), "\"NaN\"");

        } else if (isinf(d)) {
            snprintf(buf, sizeof(buf), d > 0 ? "\"Infinity\""
                                             : "\"-Infinity\"");

        } else {
            (void) ts_pqjson_float(d, (d != 0 && (fabs(d) < 1e-6
                                                  || fabs(d) >= 1e21))
                                      ? 'e' : 'f', buf, sizeof(buf));
        }

        break;

    case PROTOBUF_C_TYPE_ENUM:
        ed = f->descriptor;

        for (i = 0; i < ed->n_values; i++) {
            if (ed->values[i].value == *(const int32_t *) v) {
                return ts_pqjson_string(ed->values[i].name,
                                        strlen(ed->values[i].name), out);
            }
        }

        snprintf(buf, sizeof(buf), "%d", *(const int32_t *) v);
        break;

    case PROTOBUF_C_TYPE_STRING:
        s = *(const char * const *) v;
        s = s ? s : "";
        return ts_pqjson_string(s, strlen(s), out);

    case PROTOBUF_C_TYPE_BYTES:
        return ts_pj_enc_base64(v, out);

    case PROTOBUF_C_TYPE_MESSAGE:
        if (*(const ProtobufCMessage * const *) v == NULL) {
            return ts_pj_put(out, "{}", 2);
        }

        return ts_pj_enc_message(*(const ProtobufCMessage * const *) v, out);

    default:
        return ts_pj_put(out, "null", 4);
    }

    return ts_pj_put(out, buf, strlen(buf));
}


static int
ts_pj_enc_base64(const ProtobufCBinaryData *b, ts_buf_t *out)
{
    size_t          i, n;
    uint32_t        v;
    uint8_t        *o;
    static const char  tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    n = (b->len + 2) / 3 * 4 + 2;

    if (ts_buf_reserve(out, n) != TS_OK) {
        return TS_ERR_NOMEM;
    }

    o = out->p + out->len;
    *o++ = '"';

    for (i = 0; i + 2 < b->len; i += 3) {
        v = (uint32_t) b->data[i] << 16 | (uint32_t) b->data[i + 1] << 8
            | b->data[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }

    if (i < b->len) {
        v = (uint32_t) b->data[i] << 16;
        if (i + 1 < b->len) {
            v |= (uint32_t) b->data[i + 1] << 8;
        }

        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = (i + 1 < b->len) ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }

    *o++ = '"';
    out->len = (size_t) (o - out->p);

    return TS_OK;
}
