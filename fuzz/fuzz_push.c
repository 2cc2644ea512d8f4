/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target: Pyroscope Push bodies -> ts_push_decode_proto() and
 * ts_push_decode_json() with small limits.  Every input goes to both.
 * An accepted request must respect the limits, and must survive a round
 * trip: written back as protojson (labels escaped, profiles base64) and
 * decoded again, it gives the same series, labels and profile bytes.
 * A refused one must say why.
 *
 * Seeds (fuzz/corpus/fuzz_push/): binary PushRequests made with protoc
 * --encode and protojson bodies as Connect clients send them, with the
 * Go fixture profiles and small ones.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_json.h"
#include "ts_push.h"


#define fz_assert(cond)                                                   \
    do {                                                                  \
        if (!(cond)) {                                                    \
            abort();                                                      \
        }                                                                 \
    } while (0)


typedef struct {
    char        *p;
    size_t       len;
    size_t       cap;
} fz_buf_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fz_put(fz_buf_t *b, const char *s, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        fz_assert(b->p != NULL);
    }

    memcpy(b->p + b->len, s, len);
    b->len += len;
}


static void
fz_str(fz_buf_t *b, const char *s, size_t len)
{
    char    e[8];
    size_t  i;

    fz_put(b, "\"", 1);

    for (i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\' || (unsigned char) s[i] < 0x20) {
            snprintf(e, sizeof(e), "\\u%04x", (unsigned char) s[i]);
            fz_put(b, e, 6);

        } else {
            fz_put(b, &s[i], 1);
        }
    }

    fz_put(b, "\"", 1);
}


static void
fz_base64(fz_buf_t *b, const uint8_t *d, size_t len)
{
    char         q[4];
    size_t       i;
    uint32_t     v;
    static const char  *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv"
                            "wxyz0123456789+/";

    fz_put(b, "\"", 1);

    for (i = 0; i < len; i += 3) {
        v = (uint32_t) d[i] << 16;
        v |= (i + 1 < len) ? (uint32_t) d[i + 1] << 8 : 0;
        v |= (i + 2 < len) ? d[i + 2] : 0;

        q[0] = a[v >> 18];
        q[1] = a[(v >> 12) & 63];
        q[2] = (i + 1 < len) ? a[(v >> 6) & 63] : '=';
        q[3] = (i + 2 < len) ? a[v & 63] : '=';
        fz_put(b, q, 4);
    }

    fz_put(b, "\"", 1);
}


static void
fz_json(const ts_push_t *p, fz_buf_t *b)
{
    uint32_t                 i, k;
    const ts_push_series_t  *s;

    fz_put(b, "{\"series\":[", 11);

    for (i = 0; i < p->nseries; i++) {
        s = &p->series[i];
        fz_put(b, i ? ",{\"labels\":[" : "{\"labels\":[", i ? 12 : 11);

        for (k = 0; k < s->nlabels; k++) {
            fz_put(b, k ? ",{\"name\":" : "{\"name\":", k ? 9 : 8);
            fz_str(b, s->labels[k].name, s->labels[k].name_len);
            fz_put(b, ",\"value\":", 9);
            fz_str(b, s->labels[k].value, s->labels[k].value_len);
            fz_put(b, "}", 1);
        }

        fz_put(b, "],\"samples\":[", 13);

        for (k = 0; k < s->nprofiles; k++) {
            fz_put(b, k ? ",{\"rawProfile\":" : "{\"rawProfile\":",
                   k ? 15 : 14);
            fz_base64(b, s->profiles[k].data, s->profiles[k].len);
            fz_put(b, ",\"ID\":\"x\"}", 10);
        }

        fz_put(b, "]}", 2);
    }

    fz_put(b, "]}", 2);
}


static void
fz_same(const ts_push_t *a, const ts_push_t *b)
{
    uint32_t                 i, k;
    const ts_push_series_t  *x, *y;

    fz_assert(a->nseries == b->nseries && a->nprofiles == b->nprofiles);

    for (i = 0; i < a->nseries; i++) {
        x = &a->series[i];
        y = &b->series[i];
        fz_assert(x->nlabels == y->nlabels && x->nprofiles == y->nprofiles);

        for (k = 0; k < x->nlabels; k++) {
            fz_assert(x->labels[k].name_len == y->labels[k].name_len);
            fz_assert(x->labels[k].value_len == y->labels[k].value_len);
            fz_assert(memcmp(x->labels[k].name, y->labels[k].name,
                             x->labels[k].name_len) == 0);
            fz_assert(memcmp(x->labels[k].value, y->labels[k].value,
                             x->labels[k].value_len) == 0);
        }

        for (k = 0; k < x->nprofiles; k++) {
            fz_assert(x->profiles[k].len == y->profiles[k].len);
            fz_assert(x->profiles[k].len == 0
                      || memcmp(x->profiles[k].data, y->profiles[k].data,
                                x->profiles[k].len) == 0);
        }
    }
}


static void
fz_check(const ts_push_t *p, const ts_push_limits_t *lim)
{
    uint32_t                 i, k, n;
    const ts_push_series_t  *s;

    fz_assert(p->nseries >= 1 && p->nseries <= lim->max_series);
    fz_assert(p->nprofiles <= lim->max_profiles);

    for (i = 0, n = 0; i < p->nseries; i++) {
        s = &p->series[i];
        n += s->nprofiles;
        fz_assert(s->nlabels <= lim->max_labels);

        for (k = 0; k < s->nlabels; k++) {
            fz_assert(s->labels[k].name_len <= lim->max_label_len);
            fz_assert(s->labels[k].value_len <= lim->max_label_len);
        }
    }

    fz_assert(n == p->nprofiles);
}


static void
fz_decode(const uint8_t *data, size_t size, int json)
{
    int               rc;
    char              err[TS_PUSH_ERR_MAX];
    fz_buf_t          b;
    ts_push_t         p, q;
    ts_push_limits_t  lim;

    lim.max_series = 8;
    lim.max_profiles = 16;
    lim.max_labels = 8;
    lim.max_label_len = 64;

    err[0] = '\0';
    rc = json ? ts_push_decode_json(&p, (const char *) data, size, &lim,
                                    NULL, err, sizeof(err))
              : ts_push_decode_proto(&p, data, size, &lim, NULL, err,
                                     sizeof(err));

    if (rc != TS_OK) {
        fz_assert(rc == TS_ERR_CORRUPT || rc == TS_ERR_LIMIT
                  || rc == TS_ERR_INVALID);
        fz_assert(err[0] != '\0');
        ts_push_free(&p);
        return;
    }

    fz_check(&p, &lim);

    memset(&b, 0, sizeof(b));
    fz_json(&p, &b);

    rc = ts_push_decode_json(&q, b.p, b.len, &lim, NULL, err, sizeof(err));
    fz_assert(rc == TS_OK);
    fz_same(&p, &q);

    ts_push_free(&q);
    ts_push_free(&p);
    free(b.p);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_decode(data, size, 0);
    fz_decode(data, size, 1);

    return 0;
}
