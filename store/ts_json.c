/*
 * Copyright (C) ngx_tsdb authors
 *
 * Bounded JSON reader and base64: see ts_json.h.  Invariant: j->p never
 * passes j->end, and every loop consumes at least one byte or stops,
 * so any input is read in one pass.
 */

#include <stdio.h>
#include <string.h>

#include "ts_json.h"


static void ts_json_ws(ts_json_t *j);
static int ts_json_literal(ts_json_t *j, const char *lit, size_t len);
static int ts_json_number(ts_json_t *j);
static int ts_json_hex4(const char *p, uint32_t *cp);
static char *ts_json_utf8(char *o, uint32_t cp);


void
ts_json_init(ts_json_t *j, const char *buf, size_t len, uint32_t max_depth)
{
    memset(j, 0, sizeof(ts_json_t));
    j->start = buf;
    j->p = buf;
    j->end = buf + len;
    j->max_depth = max_depth ? max_depth : TS_JSON_MAX_DEPTH;
}


int
ts_json_fail(ts_json_t *j, const char *what)
{
    if (!j->failed) {
        j->failed = 1;
        snprintf(j->err, sizeof(j->err), "invalid JSON at byte %zu: %s",
                 (size_t) (j->p - j->start), what);
    }

    return -1;
}


static void
ts_json_ws(ts_json_t *j)
{
    while (j->p < j->end
           && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n'
               || *j->p == '\r'))
    {
        j->p++;
    }
}


ts_json_type_t
ts_json_peek(ts_json_t *j)
{
    if (j->failed) {
        return TS_JSON_BAD;
    }

    ts_json_ws(j);

    if (j->p == j->end) {
        return TS_JSON_EOF;
    }

    switch (*j->p) {
    case '{':
        return TS_JSON_OBJECT;
    case '[':
        return TS_JSON_ARRAY;
    case '"':
        return TS_JSON_STRING;
    case 't':
        return TS_JSON_TRUE;
    case 'f':
        return TS_JSON_FALSE;
    case 'n':
        return TS_JSON_NULL;
    case '-':
        return TS_JSON_NUMBER;
    default:
        return (*j->p >= '0' && *j->p <= '9') ? TS_JSON_NUMBER : TS_JSON_BAD;
    }
}


int
ts_json_obj_next(ts_json_t *j, int first, ts_json_str_t *key)
{
    if (j->failed) {
        return -1;
    }

    ts_json_ws(j);

    if (first) {
        if (j->p == j->end || *j->p != '{') {
            return ts_json_fail(j, "expected an object");
        }

        if (++j->depth > j->max_depth) {
            return ts_json_fail(j, "nested too deeply");
        }

        j->p++;
        ts_json_ws(j);

        if (j->p < j->end && *j->p == '}') {
            j->p++;
            j->depth--;
            return 0;
        }

    } else {
        if (j->p == j->end) {
            return ts_json_fail(j, "unterminated object");
        }

        if (*j->p == '}') {
            j->p++;
            j->depth--;
            return 0;
        }

        if (*j->p != ',') {
            return ts_json_fail(j, "expected , or } in an object");
        }

        j->p++;
        ts_json_ws(j);
    }

    if (ts_json_string(j, key) != 0) {
        return ts_json_fail(j, "expected a member name");
    }

    ts_json_ws(j);

    if (j->p == j->end || *j->p != ':') {
        return ts_json_fail(j, "expected : after a member name");
    }

    j->p++;

    return 1;
}


int
ts_json_arr_next(ts_json_t *j, int first)
{
    if (j->failed) {
        return -1;
    }

    ts_json_ws(j);

    if (first) {
        if (j->p == j->end || *j->p != '[') {
            return ts_json_fail(j, "expected an array");
        }

        if (++j->depth > j->max_depth) {
            return ts_json_fail(j, "nested too deeply");
        }

        j->p++;
        ts_json_ws(j);

        if (j->p < j->end && *j->p == ']') {
            j->p++;
            j->depth--;
            return 0;
        }

        return 1;
    }

    if (j->p == j->end) {
        return ts_json_fail(j, "unterminated array");
    }

    if (*j->p == ']') {
        j->p++;
        j->depth--;
        return 0;
    }

    if (*j->p != ',') {
        return ts_json_fail(j, "expected , or ] in an array");
    }

    j->p++;

    return 1;
}


int
ts_json_string(ts_json_t *j, ts_json_str_t *s)
{
    uint32_t        cp;
    unsigned char   c;

    if (j->failed) {
        return -1;
    }

    ts_json_ws(j);

    if (j->p == j->end || *j->p != '"') {
        return ts_json_fail(j, "expected a string");
    }

    j->p++;
    s->data = j->p;
    s->escaped = 0;

    while (j->p < j->end) {
        c = (unsigned char) *j->p;

        if (c == '"') {
            s->len = (size_t) (j->p - s->data);
            j->p++;
            return 0;
        }

        if (c < 0x20) {
            return ts_json_fail(j, "control character in a string");
        }

        if (c != '\\') {
            j->p++;
            continue;
        }

        s->escaped = 1;

        if (j->end - j->p < 2) {
            break;
        }

        switch (j->p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n':
        case 'r': case 't':
            j->p += 2;
            break;

        case 'u':
            if (j->end - j->p < 6 || ts_json_hex4(j->p + 2, &cp) != 0) {
                return ts_json_fail(j, "bad \\u escape");
            }

            j->p += 6;
            break;

        default:
            return ts_json_fail(j, "bad escape in a string");
        }
    }

    return ts_json_fail(j, "unterminated string");
}


static int
ts_json_literal(ts_json_t *j, const char *lit, size_t len)
{
    if ((size_t) (j->end - j->p) < len || memcmp(j->p, lit, len) != 0) {
        return ts_json_fail(j, "bad literal");
    }

    j->p += len;

    return 0;
}


/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */

static int
ts_json_number(ts_json_t *j)
{
    const char  *d;

    if (j->p < j->end && *j->p == '-') {
        j->p++;
    }

    d = j->p;

    if (j->p < j->end && *j->p == '0') {
        j->p++;

    } else {
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            j->p++;
        }
    }

    if (j->p == d) {
        return ts_json_fail(j, "bad number");
    }

    if (j->p < j->end && *j->p == '.') {
        d = ++j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            j->p++;
        }

        if (j->p == d) {
            return ts_json_fail(j, "bad number");
        }
    }

    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
            j->p++;
        }

        d = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            j->p++;
        }

        if (j->p == d) {
            return ts_json_fail(j, "bad number");
        }
    }

    return 0;
}


/*
 * Skips one value.  Nesting is tracked by j->depth, bounded by
 * max_depth, so the loop needs no stack of its own: the brackets are
 * checked for balance and order by the obj/arr helpers.
 */

int
ts_json_skip(ts_json_t *j)
{
    int             rc;
    ts_json_str_t   s;

    switch (ts_json_peek(j)) {

    case TS_JSON_OBJECT:
        for (rc = ts_json_obj_next(j, 1, &s); rc == 1;
             rc = ts_json_obj_next(j, 0, &s))
        {
            if (ts_json_skip(j) != 0) {
                return -1;
            }
        }

        return rc;

    case TS_JSON_ARRAY:
        for (rc = ts_json_arr_next(j, 1); rc == 1; rc = ts_json_arr_next(j, 0))
        {
            if (ts_json_skip(j) != 0) {
                return -1;
            }
        }

        return rc;

    case TS_JSON_STRING:
        return ts_json_string(j, &s);

    case TS_JSON_NUMBER:
        return ts_json_number(j);

    case TS_JSON_TRUE:
        return ts_json_literal(j, "true", 4);

    case TS_JSON_FALSE:
        return ts_json_literal(j, "false", 5);

    case TS_JSON_NULL:
        return ts_json_literal(j, "null", 4);

    case TS_JSON_EOF:
        return ts_json_fail(j, "unexpected end");

    default:
        return ts_json_fail(j, "unexpected character");
    }
}


int
ts_json_end(ts_json_t *j)
{
    if (j->failed) {
        return -1;
    }

    ts_json_ws(j);

    return (j->p == j->end) ? 0 : ts_json_fail(j, "trailing data");
}


static int
ts_json_hex4(const char *p, uint32_t *cp)
{
    int       i;
    char      c;
    uint32_t  v;

    v = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];
        v <<= 4;

        if (c >= '0' && c <= '9') {
            v |= (uint32_t) (c - '0');

        } else if (c >= 'a' && c <= 'f') {
            v |= (uint32_t) (c - 'a' + 10);

        } else if (c >= 'A' && c <= 'F') {
            v |= (uint32_t) (c - 'A' + 10);

        } else {
            return -1;
        }
    }

    *cp = v;

    return 0;
}


static char *
ts_json_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char) cp;

    } else if (cp < 0x800) {
        *o++ = (char) (0xc0 | (cp >> 6));
        *o++ = (char) (0x80 | (cp & 0x3f));

    } else if (cp < 0x10000) {
        *o++ = (char) (0xe0 | (cp >> 12));
        *o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char) (0x80 | (cp & 0x3f));

    } else {
        *o++ = (char) (0xf0 | (cp >> 18));
        *o++ = (char) (0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char) (0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char) (0x80 | (cp & 0x3f));
    }

    return o;
}


/*
 * The span was validated by ts_json_string(), so escapes are complete.
 * Each escape is at least as long as its UTF-8: \uXXXX (6) -> <= 3
 * bytes, a pair (12) -> 4 bytes.
 */

size_t
ts_json_unescape(const ts_json_str_t *s, char *out)
{
    char        *o;
    uint32_t     cp, lo;
    const char  *p, *end;

    if (!s->escaped) {
        memcpy(out, s->data, s->len);
        return s->len;
    }

    o = out;
    p = s->data;
    end = s->data + s->len;

    while (p < end) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }

        switch (p[1]) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': break;
        default: *o++ = p[1]; break;
        }

        if (p[1] != 'u') {
            p += 2;
            continue;
        }

        (void) ts_json_hex4(p + 2, &cp);
        p += 6;

        if (cp >= 0xd800 && cp < 0xdc00) {
            if (end - p >= 6 && p[0] == '\\' && p[1] == 'u'
                && ts_json_hex4(p + 2, &lo) == 0
                && lo >= 0xdc00 && lo < 0xe000)
            {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;

            } else {
                cp = 0xfffd;
            }

        } else if (cp >= 0xdc00 && cp < 0xe000) {
            cp = 0xfffd;
        }

        o = ts_json_utf8(o, cp);
    }

    return (size_t) (o - out);
}


int
ts_json_str_eq(const ts_json_str_t *s, const char *lit)
{
    size_t  n;
    char    buf[64];

    n = strlen(lit);

    if (!s->escaped) {
        return s->len == n && memcmp(s->data, lit, n) == 0;
    }

    if (s->len > sizeof(buf)) {
        return 0;
    }

    return ts_json_unescape(s, buf) == n && memcmp(buf, lit, n) == 0;
}


static int
ts_base64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '+' || c == '-') {
        return 62;
    }

    if (c == '/' || c == '_') {
        return 63;
    }

    return -1;
}


int
ts_base64_decode(const char *in, size_t len, uint8_t *out, size_t *out_len)
{
    int       v;
    size_t    i, n;
    uint32_t  acc, bits;

    while (len > 0 && in[len - 1] == '=') {
        len--;
    }

    if (len % 4 == 1) {
        return -1;
    }

    acc = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        v = ts_base64_val((unsigned char) in[i]);
        if (v < 0) {
            return -1;
        }

        acc = (acc << 6) | (uint32_t) v;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }

    *out_len = n;

    return 0;
}
