/*
 * Copyright (C) ngx_tsdb authors
 *
 * A small bounded JSON reader (RFC 8259) for request bodies whose
 * schema the caller knows (Connect's protojson Push): the caller walks
 * objects and arrays with ts_json_obj_next() / ts_json_arr_next(),
 * reads the values it wants and skips the others with ts_json_skip().
 *
 * Nothing is allocated: strings are spans of the input, unescaped into
 * a caller's buffer on demand (the unescaped form is never longer than
 * the span).  Nesting is bounded by max_depth, also while skipping, so
 * a hostile body costs at most one pass over its bytes.  The first
 * error sticks: every later call fails, and err holds one line with
 * the byte offset.
 *
 * Also here: base64 (RFC 4648, standard and URL alphabets, padding
 * optional), as protojson encodes bytes fields.
 */

#ifndef TS_JSON_H
#define TS_JSON_H


#include <stddef.h>
#include <stdint.h>


#define TS_JSON_ERR_MAX      128
#define TS_JSON_MAX_DEPTH    64


typedef struct {
    const char         *start;
    const char         *p;
    const char         *end;
    uint32_t            depth;
    uint32_t            max_depth;
    int                 failed;
    char                err[TS_JSON_ERR_MAX];
} ts_json_t;


/* a string value as it appears between the quotes, escapes validated */
typedef struct {
    const char         *data;
    size_t              len;
    unsigned            escaped:1;
} ts_json_str_t;


typedef enum {
    TS_JSON_EOF = 0,
    TS_JSON_OBJECT,
    TS_JSON_ARRAY,
    TS_JSON_STRING,
    TS_JSON_NUMBER,
    TS_JSON_TRUE,
    TS_JSON_FALSE,
    TS_JSON_NULL,
    TS_JSON_BAD
} ts_json_type_t;


/* max_depth 0: TS_JSON_MAX_DEPTH */
void ts_json_init(ts_json_t *j, const char *buf, size_t len,
    uint32_t max_depth);

/* the type of the next value, by its first byte; nothing consumed */
ts_json_type_t ts_json_peek(ts_json_t *j);

/*
 * Objects: call ts_json_obj_next() with first = 1 at the '{' (it is
 * consumed), then with first = 0 after reading or skipping each value.
 * Returns 1 with *key set and the ':' consumed, 0 after the closing
 * '}', -1 on an error.
 */
int ts_json_obj_next(ts_json_t *j, int first, ts_json_str_t *key);

/* Arrays, likewise: 1 when an element follows, 0 after ']', -1 error. */
int ts_json_arr_next(ts_json_t *j, int first);

/* A string value (0), or -1 if the next value is not a valid string. */
int ts_json_string(ts_json_t *j, ts_json_str_t *s);

/* Skips one value of any type (nesting bounded); 0 or -1. */
int ts_json_skip(ts_json_t *j);

/* 0 when only whitespace is left, else -1 (trailing garbage). */
int ts_json_end(ts_json_t *j);

/*
 * Writes s unescaped (UTF-8; a \u surrogate pair becomes one code point,
 * a lone surrogate U+FFFD) into out, which has room for s->len bytes;
 * returns the length written.
 */
size_t ts_json_unescape(const ts_json_str_t *s, char *out);

/* 1 if s (unescaped) equals the NUL-terminated lit */
int ts_json_str_eq(const ts_json_str_t *s, const char *lit);

/* sets the error (if none yet) at the current offset; returns -1 */
int ts_json_fail(ts_json_t *j, const char *what);

/*
 * Base64 of in[0 .. len) into out (room for len * 3 / 4 + 3 bytes):
 * standard or URL alphabet, '=' padding optional, no whitespace.
 * Returns 0 with *out_len set, -1 for a bad character or length.
 */
int ts_base64_decode(const char *in, size_t len, uint8_t *out,
    size_t *out_len);


#endif /* TS_JSON_H */
