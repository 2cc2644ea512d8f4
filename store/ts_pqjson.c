/*
 * Copyright (C) ngx_tsdb authors
 *
 * Prometheus query results as JSON (ts_pqjson.h).  Floats: the shortest
 * decimal that reads back to the same double, found by printing with
 * growing precision (at most 17 digits), then laid out as Go's strconv
 * does for 'f' and 'e'.  Output goes to a ts_buf_t; TS_ERR_NOMEM is the
 * only error.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_pqjson.h"


static size_t ts_pqj_digits(double v, char *d, int *exp);
static int ts_pqj_put(ts_buf_t *out, const char *s, size_t len);
static int ts_pqj_puts(ts_buf_t *out, const char *s);
static int ts_pqj_value(ts_buf_t *out, double v);
static int ts_pqj_time(ts_buf_t *out, int64_t t);
static int ts_pqj_gotime(ts_buf_t *out, int64_t t);
static int ts_pqj_metric(ts_buf_t *out, const ts_pqeval_series_t *s);
static int ts_pqj_hist(ts_buf_t *out, const ts_pqeval_hist_t *h);
static int ts_pqj_series(ts_buf_t *out, const ts_pqeval_result_t *res,
    const ts_pqeval_series_t *s, int vector);
static size_t ts_pqj_utf8(const unsigned char *p, size_t len, unsigned *cp);


size_t
ts_pqjson_float(double v, char fmt, char *buf, size_t size)
{
    int     exp, i, n, len;
    char    d[32], tmp[400];
    size_t  nd;

    if (isnan(v)) {
        return (size_t) snprintf(buf, size, "NaN");
    }

    if (isinf(v)) {
        return (size_t) snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    }

    len = 0;

    if (signbit(v)) {
        tmp[len++] = '-';
        v = -v;
    }

    if (v == 0) {
        tmp[len++] = '0';

        if (fmt == 'e') {
            memcpy(tmp + len, "e+00", 4);
            len += 4;
        }

        tmp[len] = '\0';
        return (size_t) snprintf(buf, size, "%s", tmp);
    }

    nd = ts_pqj_digits(v, d, &exp);

    if (fmt == 'e') {
        tmp[len++] = d[0];

        if (nd > 1) {
            tmp[len++] = '.';
            memcpy(tmp + len, d + 1, nd - 1);
            len += (int) nd - 1;
        }

        len += snprintf(tmp + len, sizeof(tmp) - (size_t) len, "e%c%02d",
                        exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);

        return (size_t) snprintf(buf, size, "%s", tmp);
    }

    /* 'f': digits d[0] d[1] ... with the point after exp + 1 of them */

    if (exp < 0) {
        tmp[len++] = '0';
        tmp[len++] = '.';

        for (i = -1; i > exp; i--) {
            tmp[len++] = '0';
        }

        memcpy(tmp + len, d, nd);
        len += (int) nd;

    } else {
        for (i = 0; i <= exp; i++) {
            tmp[len++] = (size_t) i < nd ? d[i] : '0';
        }

        n = (int) nd - exp - 1;

        if (n > 0) {
            tmp[len++] = '.';
            memcpy(tmp + len, d + exp + 1, (size_t) n);
            len += n;
        }
    }

    tmp[len] = '\0';

    return (size_t) snprintf(buf, size, "%s", tmp);
}


/* the shortest digits of v > 0 that read back to v, and its exponent */

static size_t
ts_pqj_digits(double v, char *d, int *exp)
{
    int     p, lo, hi;
    char    s[40], *e;
    size_t  n;

    /*
     * The fewest digits after the point that read back to v, by binary
     * search over 0..16 (16 always does): if p digits read back, so do
     * p + 1, the nearest number of p + 1 digits being at most as far
     * from v as the one of p digits.  4 or 5 tries instead of up to 17.
     */

    lo = 0;
    hi = 16;

    while (lo < hi) {
        p = (lo + hi) / 2;
        snprintf(s, sizeof(s), "%.*e", p, v);

        if (strtod(s, NULL) == v) {
            hi = p;

        } else {
            lo = p + 1;
        }
    }

    snprintf(s, sizeof(s), "%.*e", lo, v);

    e = strchr(s, 'e');
    *exp = atoi(e + 1);
    n = 0;

    for (p = 0; s + p < e; p++) {
        if (s[p] != '.') {
            d[n++] = s[p];
        }
    }

    while (n > 1 && d[n - 1] == '0') {
        n--;
    }

    d[n] = '\0';

    return n;
}


int
ts_pqjson_success(const ts_pqeval_result_t *res, ts_buf_t *out)
{
    if (ts_pqj_puts(out, "{\"status\":\"success\",\"data\":") != TS_OK
        || ts_pqjson_data(res, out) != TS_OK)
    {
        return TS_ERR_NOMEM;
    }

    return ts_pqj_puts(out, "}");
}


int
ts_pqjson_error(const char *type, const char *msg, size_t len,
    ts_buf_t *out)
{
    if (ts_pqj_puts(out, "{\"status\":\"error\",\"errorType\":") != TS_OK
        || ts_pqjson_string(type, strlen(type), out) != TS_OK
        || ts_pqj_puts(out, ",\"error\":") != TS_OK
        || ts_pqjson_string(msg, len, out) != TS_OK)
    {
        return TS_ERR_NOMEM;
    }

    return ts_pqj_puts(out, "}");
}


int
ts_pqjson_data(const ts_pqeval_result_t *res, ts_buf_t *out)
{
    int                        vector;
    char                       num[64];
    double                     v;
    size_t                     len;
    int64_t                    t;
    uint32_t                   i, n;
    const char                *str;
    const ts_pqeval_series_t  *s;

    switch (ts_pqeval_result_type(res)) {

    case TS_PQ_TYPE_SCALAR:
    case TS_PQ_TYPE_STRING:
        ts_pqeval_result_scalar(res, &t, &v, &str, &len);

        if (ts_pqj_puts(out, ts_pqeval_result_type(res) == TS_PQ_TYPE_SCALAR
                             ? "{\"resultType\":\"scalar\",\"result\":["
                             : "{\"resultType\":\"string\",\"result\":[")
            != TS_OK
            || ts_pqj_gotime(out, t) != TS_OK
            || ts_pqj_puts(out, ",") != TS_OK)
        {
            return TS_ERR_NOMEM;
        }

        if (ts_pqeval_result_type(res) == TS_PQ_TYPE_SCALAR) {
            ts_pqjson_float(v, 'f', num, sizeof(num));

            if (ts_pqjson_string(num, strlen(num), out) != TS_OK) {
                return TS_ERR_NOMEM;
            }

        } else if (ts_pqjson_string(str, len, out) != TS_OK) {
            return TS_ERR_NOMEM;
        }

        return ts_pqj_puts(out, "]}");

    case TS_PQ_TYPE_VECTOR:
        vector = 1;
        break;

    default:
        vector = 0;
        break;
    }

    if (ts_pqj_puts(out, vector ? "{\"resultType\":\"vector\",\"result\":["
                                : "{\"resultType\":\"matrix\",\"result\":[")
        != TS_OK)
    {
        return TS_ERR_NOMEM;
    }

    n = ts_pqeval_result_count(res);

    for (i = 0; i < n; i++) {
        s = ts_pqeval_result_series(res, i);

        if ((i > 0 && ts_pqj_puts(out, ",") != TS_OK)
            || ts_pqj_series(out, res, s, vector) != TS_OK)
        {
            return TS_ERR_NOMEM;
        }
    }

    return ts_pqj_puts(out, "]}");
}


static int
ts_pqj_series(ts_buf_t *out, const ts_pqeval_result_t *res,
    const ts_pqeval_series_t *s, int vector)
{
    int                      pass, found;
    uint32_t                 k;
    const ts_pqeval_hist_t  *h;

    if (ts_pqj_puts(out, "{\"metric\":") != TS_OK
        || ts_pqj_metric(out, s) != TS_OK)
    {
        return TS_ERR_NOMEM;
    }

    /* floats as "values", then histograms as "histograms", as 2.42 */

    for (pass = 0; pass < 2; pass++) {
        found = 0;

        for (k = 0; k < s->npoints && (!vector || k == 0); k++) {
            h = ts_pqeval_point_hist(res, &s->points[k]);

            if ((h != NULL) != pass) {
                continue;
            }

            if (ts_pqj_puts(out, found ? ","
                                 : vector ? (pass ? ",\"histogram\":"
                                                  : ",\"value\":")
                                 : (pass ? ",\"histograms\":["
                                         : ",\"values\":["))
                != TS_OK
                || ts_pqj_puts(out, "[") != TS_OK
                || ts_pqj_time(out, s->points[k].t) != TS_OK
                || ts_pqj_puts(out, ",") != TS_OK
                || (h != NULL ? ts_pqj_hist(out, h)
                              : ts_pqj_value(out, s->points[k].v)) != TS_OK
                || ts_pqj_puts(out, "]") != TS_OK)
            {
                return TS_ERR_NOMEM;
            }

            found = 1;
        }

        if (found && !vector && ts_pqj_puts(out, "]") != TS_OK) {
            return TS_ERR_NOMEM;
        }
    }

    return ts_pqj_puts(out, "}");
}


/*
 * 2.42's marshalHistogram: count, sum and the populated buckets from the
 * lowest, each [boundaries, "lower", "upper", "count"]; boundaries 0:
 * (lower, upper], 1: [lower, upper), 3: the zero bucket [lower, upper]
 */

static int
ts_pqj_bucket(ts_buf_t *out, int *found, int kind, double lower,
    double upper, double count)
{
    char  num[8];

    if (count == 0) {
        return TS_OK;
    }

    snprintf(num, sizeof(num), "[%d,", kind);

    if (ts_pqj_puts(out, *found ? "," : ",\"buckets\":[") != TS_OK
        || ts_pqj_puts(out, num) != TS_OK
        || ts_pqj_value(out, lower) != TS_OK
        || ts_pqj_puts(out, ",") != TS_OK
        || ts_pqj_value(out, upper) != TS_OK
        || ts_pqj_puts(out, ",") != TS_OK
        || ts_pqj_value(out, count) != TS_OK
        || ts_pqj_puts(out, "]") != TS_OK)
    {
        return TS_ERR_NOMEM;
    }

    *found = 1;

    return TS_OK;
}


static int
ts_pqj_hist(ts_buf_t *out, const ts_pqeval_hist_t *h)
{
    int                        found;
    uint32_t                   i;
    const ts_pqeval_bucket_t  *b;

    found = 0;

    if (ts_pqj_puts(out, "{\"count\":") != TS_OK
        || ts_pqj_value(out, h->count) != TS_OK
        || ts_pqj_puts(out, ",\"sum\":") != TS_OK
        || ts_pqj_value(out, h->sum) != TS_OK)
    {
        return TS_ERR_NOMEM;
    }

    for (i = h->n_neg; i > 0; i--) {
        b = &h->neg[i - 1];

        if (ts_pqj_bucket(out, &found, 1,
                          -ts_pqeval_hist_bound(b->idx, h->schema),
                          -ts_pqeval_hist_bound(b->idx - 1, h->schema),
                          b->count) != TS_OK)
        {
            return TS_ERR_NOMEM;
        }
    }

    if (h->zero_count > 0
        && ts_pqj_bucket(out, &found, 3, -h->zero_threshold,
                         h->zero_threshold, h->zero_count) != TS_OK)
    {
        return TS_ERR_NOMEM;
    }

    for (i = 0; i < h->n_pos; i++) {
        b = &h->pos[i];

        if (ts_pqj_bucket(out, &found, 0,
                          ts_pqeval_hist_bound(b->idx - 1, h->schema),
                          ts_pqeval_hist_bound(b->idx, h->schema),
                          b->count) != TS_OK)
        {
            return TS_ERR_NOMEM;
        }
    }

    if (found && ts_pqj_puts(out, "]") != TS_OK) {
        return TS_ERR_NOMEM;
    }

    return ts_pqj_puts(out, "}");
}


static int
ts_pqj_metric(ts_buf_t *out, const ts_pqeval_series_t *s)
{
    uint32_t  i;

    if (ts_pqj_puts(out, "{") != TS_OK) {
        return TS_ERR_NOMEM;
    }

    for (i = 0; i < s->nlabels; i++) {
        if ((i > 0 && ts_pqj_puts(out, ",") != TS_OK)
            || ts_pqjson_string(s->labels[i].name, s->labels[i].name_len,
                                out) != TS_OK
            || ts_pqj_puts(out, ":") != TS_OK
            || ts_pqjson_string(s->labels[i].value, s->labels[i].value_len,
                                out) != TS_OK)
        {
            return TS_ERR_NOMEM;
        }
    }

    return ts_pqj_puts(out, "}");
}


/* Prometheus's marshalValue: a string, 'e' for tiny and huge values */

static int
ts_pqj_value(ts_buf_t *out, double v)
{
    char    num[64];
    double  a;

    a = fabs(v);
    ts_pqjson_float(v, a != 0 && (a < 1e-6 || a >= 1e21) ? 'e' : 'f', num,
                    sizeof(num));

    if (ts_pqj_puts(out, "\"") != TS_OK || ts_pqj_puts(out, num) != TS_OK) {
        return TS_ERR_NOMEM;
    }

    return ts_pqj_puts(out, "\"");
}


/* Prometheus's MarshalTimestamp */

static int
ts_pqj_time(ts_buf_t *out, int64_t t)
{
    int       n;
    char      num[48];
    uint64_t  u;

    u = t < 0 ? (uint64_t) -(t + 1) + 1 : (uint64_t) t;

    n = snprintf(num, sizeof(num), "%s%llu", t < 0 ? "-" : "",
                 (unsigned long long) (u / 1000));

    if (u % 1000) {
        n += snprintf(num + n, sizeof(num) - (size_t) n, ".%03u",
                      (unsigned) (u % 1000));
    }

    return ts_pqj_put(out, num, (size_t) n);
}


/* float64(t) / 1000 as Go's encoding/json writes it */

static int
ts_pqj_gotime(ts_buf_t *out, int64_t t)
{
    char    num[64], *e;
    double  v, a;
    size_t  n;

    v = (double) t / 1000;
    a = fabs(v);

    if (a != 0 && (a < 1e-6 || a >= 1e21)) {
        n = ts_pqjson_float(v, 'e', num, sizeof(num));

        /* e-07 becomes e-7, as encoding/json cleans it */

        e = strchr(num, 'e');

        if (e != NULL && n >= 4 && e[2] == '0' && e[3] != '\0') {
            memmove(e + 2, e + 3, strlen(e + 3) + 1);
        }

    } else {
        ts_pqjson_float(v, 'f', num, sizeof(num));
    }

    return ts_pqj_puts(out, num);
}


int
ts_pqjson_string(const char *s, size_t len, ts_buf_t *out)
{
    char                  esc[8];
    size_t                i, n;
    unsigned              cp;
    const unsigned char  *p;
    static const char     hex[] = "0123456789abcdef";

    p = (const unsigned char *) s;

    if (ts_buf_reserve(out, len + 2) != TS_OK) {
        return TS_ERR_NOMEM;
    }

    out->p[out->len++] = '"';

    for (i = 0; i < len; i += n) {
        n = 1;

        if (p[i] >= 0x80) {
            n = ts_pqj_utf8(p + i, len - i, &cp);

            if (n == 0) {
                n = 1;

                if (ts_pqj_puts(out, "\\ufffd") != TS_OK) {
                    return TS_ERR_NOMEM;
                }

            } else if (cp == 0x2028 || cp == 0x2029) {
                if (ts_pqj_puts(out, cp == 0x2028 ? "\\u2028" : "\\u2029")
                    != TS_OK)
                {
                    return TS_ERR_NOMEM;
                }

            } else if (ts_pqj_put(out, s + i, n) != TS_OK) {
                return TS_ERR_NOMEM;
            }

            continue;
        }

        switch (p[i]) {
        case '"':
            memcpy(esc, "\\\"", 3);
            break;
        case '\\':
            memcpy(esc, "\\\\", 3);
            break;
        case '\n':
            memcpy(esc, "\\n", 3);
            break;
        case '\r':
            memcpy(esc, "\\r", 3);
            break;
        case '\t':
            memcpy(esc, "\\t", 3);
            break;
        default:
            if (p[i] < 0x20 || p[i] == '<' || p[i] == '>' || p[i] == '&') {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[p[i] >> 4];
                esc[5] = hex[p[i] & 15];
                esc[6] = '\0';

            } else {
                esc[0] = (char) p[i];
                esc[1] = '\0';
            }
        }

        if (ts_pqj_puts(out, esc) != TS_OK) {
            return TS_ERR_NOMEM;
        }
    }

    return ts_pqj_puts(out, "\"");
}


/* the length of the valid UTF-8 sequence at p and its code point, 0 */

static size_t
ts_pqj_utf8(const unsigned char *p, size_t len, unsigned *cp)
{
    size_t    n, i;
    unsigned  c, min;

    if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        c = p[0] & 7;
        min = 0x10000;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        c = p[0] & 15;
        min = 0x800;

    } else if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
        c = p[0] & 31;
        min = 0x80;

    } else {
        return 0;
    }

    if (n > len) {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }

        c = c << 6 | (p[i] & 0x3f);
    }

    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        return 0;
    }

    *cp = c;

    return n;
}


static int
ts_pqj_put(ts_buf_t *out, const char *s, size_t len)
{
    if (ts_buf_reserve(out, len) != TS_OK) {
        return TS_ERR_NOMEM;
    }

    memcpy(out->p + out->len, s, len);
    out->len += len;

    return TS_OK;
}


static int
ts_pqj_puts(ts_buf_t *out, const char *s)
{
    return ts_pqj_put(out, s, strlen(s));
}
