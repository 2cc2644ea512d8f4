/*
 * Copyright (C) ngx_tsdb authors
 *
 * push.v1.PushRequest decoders, binary and protojson: see ts_push.h.
 *
 * Memory.  The binary form is unpacked by protobuf-c with the caller's
 * allocator (its allocations are bounded by the body size, which the
 * caller capped) and the flat arrays point into it.  The JSON form
 * allocates each series' arrays at the limits' sizes and the unescaped
 * strings and decoded profiles at most the body size again; every
 * allocation is a chunk on one list, so ts_push_free() releases all of
 * them with a free function and nothing is left behind on any error.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_json.h"
#include "ts_push.h"
#include "pyroscope_push.pb-c.h"


typedef struct ts_push_chunk_s  ts_push_chunk_t;

struct ts_push_chunk_s {
    ts_push_chunk_t    *next;
    uint64_t            pad;        /* 16-byte header keeps alignment */
};


typedef struct {
    ts_push_t          *p;
    ts_json_t           j;
    ts_push_limits_t    lim;
    char               *err;
    size_t              errlen;
} ts_push_jctx_t;


static void *ts_push_alloc(ts_push_t *p, size_t size);
static void ts_push_start(ts_push_t *p, ProtobufCAllocator *a,
    const ts_push_limits_t *lim, ts_push_limits_t *out);
static int ts_push_fail(char *err, size_t errlen, int rc,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int ts_push_proto_series(ts_push_t *p, ts_push_series_t *s,
    const Push__V1__RawProfileSeries *in, const ts_push_limits_t *lim,
    char *err, size_t errlen);
static int ts_push_json_request(ts_push_jctx_t *c);
static int ts_push_json_series(ts_push_jctx_t *c, ts_push_series_t *s);
static int ts_push_json_label(ts_push_jctx_t *c, ts_push_series_t *s);
static int ts_push_json_sample(ts_push_jctx_t *c, ts_push_series_t *s);
static int ts_push_json_text(ts_push_jctx_t *c, const char *what,
    const char **out, uint32_t *len);
static int ts_push_jfail(ts_push_jctx_t *c);


void
ts_push_limits_default(ts_push_limits_t *lim)
{
    lim->max_series = 64;
    lim->max_profiles = 256;
    lim->max_labels = 64;
    lim->max_label_len = 1024;
}


static void
ts_push_start(ts_push_t *p, ProtobufCAllocator *a,
    const ts_push_limits_t *lim, ts_push_limits_t *out)
{
    memset(p, 0, sizeof(ts_push_t));

    if (a != NULL) {
        p->alloc = *a;

    } else {
        p->alloc.alloc = NULL;
        p->alloc.free = NULL;
        p->alloc.allocator_data = NULL;
    }

    if (lim != NULL) {
        *out = *lim;

    } else {
        ts_push_limits_default(out);
    }
}


static void *
ts_push_alloc(ts_push_t *p, size_t size)
{
    ts_push_chunk_t  *c;

    if (size > SIZE_MAX - sizeof(ts_push_chunk_t)) {
        return NULL;
    }

    if (p->alloc.alloc != NULL) {
        c = p->alloc.alloc(p->alloc.allocator_data,
                           sizeof(ts_push_chunk_t) + size);

    } else {
        c = malloc(sizeof(ts_push_chunk_t) + size);
    }

    if (c == NULL) {
        return NULL;
    }

    c->next = p->chunks;
    p->chunks = c;

    return c + 1;
}


void
ts_push_free(ts_push_t *p)
{
    ts_push_chunk_t  *c, *next;

    if (p->msg != NULL && (p->alloc.alloc == NULL || p->alloc.free != NULL))
    {
        protobuf_c_message_free_unpacked(p->msg,
                                          p->alloc.alloc ? &p->alloc : NULL);
    }

    p->msg = NULL;

    for (c = p->chunks; c != NULL; c = next) {
        next = c->next;

        if (p->alloc.alloc == NULL) {
            free(c);

        } else if (p->alloc.free != NULL) {
            p->alloc.free(p->alloc.allocator_data, c);
        }
    }

    p->chunks = NULL;
    p->series = NULL;
    p->nseries = 0;
    p->nprofiles = 0;
}


static int
ts_push_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list  ap;

    if (errlen > 0) {
        va_start(ap, fmt);
        (void) vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }

    return rc;
}


int
ts_push_decode_proto(ts_push_t *p, const uint8_t *buf, size_t len,
    const ts_push_limits_t *lim, ProtobufCAllocator *a, char *err,
    size_t errlen)
{
    int                     rc;
    size_t                  i;
    ts_push_limits_t        l;
    Push__V1__PushRequest  *req;

    ts_push_start(p, a, lim, &l);

    req = push__v1__push_request__unpack(p->alloc.alloc ? &p->alloc : NULL,
                                         len, buf);
    if (req == NULL) {
        return ts_push_fail(err, errlen, TS_ERR_CORRUPT,
                            "malformed protobuf PushRequest");
    }

    p->msg = req;

    if (req->n_series == 0) {
        return ts_push_fail(err, errlen, TS_ERR_INVALID,
                            "PushRequest without series");
    }

    if (req->n_series > l.max_series) {
        return ts_push_fail(err, errlen, TS_ERR_LIMIT,
                            "too many series in one request: %zu, at most"
                            " %u", req->n_series, l.max_series);
    }

    p->series = ts_push_alloc(p, req->n_series * sizeof(ts_push_series_t));
    if (p->series == NULL) {
        return ts_push_fail(err, errlen, TS_ERR_NOMEM, "out of memory");
    }

    for (i = 0; i < req->n_series; i++) {
        rc = ts_push_proto_series(p, &p->series[i], req->series[i], &l, err,
                                  errlen);
        if (rc != TS_OK) {
            return rc;
        }

        p->nseries++;
    }

    return TS_OK;
}


static int
ts_push_proto_series(ts_push_t *p, ts_push_series_t *s,
    const Push__V1__RawProfileSeries *in, const ts_push_limits_t *lim,
    char *err, size_t errlen)
{
    size_t                       i, nl, vl;
    const Push__V1__RawSample   *rs;
    const Types__V1__LabelPair  *lp;

    memset(s, 0, sizeof(ts_push_series_t));

    if (in->n_labels > lim->max_labels) {
        return ts_push_fail(err, errlen, TS_ERR_LIMIT,
                            "too many labels in a series: %zu, at most %u",
                            in->n_labels, lim->max_labels);
    }

    if (in->n_samples > lim->max_profiles - p->nprofiles) {
        return ts_push_fail(err, errlen, TS_ERR_LIMIT,
                            "too many profiles in one request, at most %u",
                            lim->max_profiles);
    }

    s->labels = ts_push_alloc(p, (in->n_labels + 1) * sizeof(ts_label_t));
    s->profiles = ts_push_alloc(p,
                                (in->n_samples + 1) * sizeof(ts_push_raw_t));

    if (s->labels == NULL || s->profiles == NULL) {
        return ts_push_fail(err, errlen, TS_ERR_NOMEM, "out of memory");
    }

    for (i = 0; i < in->n_labels; i++) {
        lp = in->labels[i];
        nl = strlen(lp->name);
        vl = strlen(lp->value);

        if (nl > lim->max_label_len || vl > lim->max_label_len) {
            return ts_push_fail(err, errlen, TS_ERR_LIMIT,
                                "label name or value longer than %u bytes",
                                lim->max_label_len);
        }

        s->labels[i].name = lp->name;
        s->labels[i].name_len = (uint32_t) nl;
        s->labels[i].value = lp->value;
        s->labels[i].value_len = (uint32_t) vl;
    }

    s->nlabels = (uint32_t) in->n_labels;

    for (i = 0; i < in->n_samples; i++) {
        rs = in->samples[i];
        s->profiles[i].data = rs->raw_profile.data;
        s->profiles[i].len = rs->raw_profile.len;
    }

    s->nprofiles = (uint32_t) in->n_samples;
    p->nprofiles += s->nprofiles;

    return TS_OK;
}


int
ts_push_decode_json(ts_push_t *p, const char *buf, size_t len,
    const ts_push_limits_t *lim, ProtobufCAllocator *a, char *err,
    size_t errlen)
{
    int             rc;
    ts_push_jctx_t  c;

    memset(&c, 0, sizeof(ts_push_jctx_t));
    ts_push_start(p, a, lim, &c.lim);

    c.p = p;
    c.err = err;
    c.errlen = errlen;

    ts_json_init(&c.j, buf, len, 0);

    rc = ts_push_json_request(&c);
    if (rc != TS_OK) {
        return rc;
    }

    if (ts_json_end(&c.j) != 0) {
        return ts_push_jfail(&c);
    }

    if (p->nseries == 0) {
        return ts_push_fail(err, errlen, TS_ERR_INVALID,
                            "PushRequest without series");
    }

    return TS_OK;
}


static int
ts_push_jfail(ts_push_jctx_t *c)
{
    return ts_push_fail(c->err, c->errlen, TS_ERR_CORRUPT, "%s", c->j.err);
}


/* { "series": [ RawProfileSeries... ] } */

static int
ts_push_json_request(ts_push_jctx_t *c)
{
    int                rc, more, first;
    ts_json_str_t      key;
    ts_push_series_t  *s;

    for (more = ts_json_obj_next(&c->j, 1, &key); more == 1;
         more = ts_json_obj_next(&c->j, 0, &key))
    {
        if (!ts_json_str_eq(&key, "series")
            || ts_json_peek(&c->j) == TS_JSON_NULL)
        {
            if (ts_json_skip(&c->j) != 0) {
                return ts_push_jfail(c);
            }

            continue;
        }

        for (first = 1; (rc = ts_json_arr_next(&c->j, first)) == 1;
             first = 0)
        {
            if (c->p->nseries >= c->lim.max_series) {
                return ts_push_fail(c->err, c->errlen, TS_ERR_LIMIT,
                                    "too many series in one request, at"
                                    " most %u", c->lim.max_series);
            }

            if (c->p->series == NULL) {
                c->p->series = ts_push_alloc(c->p, c->lim.max_series
                                                   * sizeof(ts_push_series_t));
                if (c->p->series == NULL) {
                    return ts_push_fail(c->err, c->errlen, TS_ERR_NOMEM,
                                        "out of memory");
                }
            }

            s = &c->p->series[c->p->nseries];

            rc = ts_push_json_series(c, s);
            if (rc != TS_OK) {
                return rc;
            }

            c->p->nseries++;
        }

        if (rc < 0) {
            return ts_push_jfail(c);
        }
    }

    return (more < 0) ? ts_push_jfail(c) : TS_OK;
}


/* { "labels": [ {name, value}... ], "samples": [ {rawProfile, ID}... ] } */

static int
ts_push_json_series(ts_push_jctx_t *c, ts_push_series_t *s)
{
    int             rc, more, first, labels;
    ts_json_str_t   key;

    memset(s, 0, sizeof(ts_push_series_t));

    s->labels = ts_push_alloc(c->p, c->lim.max_labels * sizeof(ts_label_t));
    if (s->labels == NULL) {
        return ts_push_fail(c->err, c->errlen, TS_ERR_NOMEM, "out of memory");
    }

    for (more = ts_json_obj_next(&c->j, 1, &key); more == 1;
         more = ts_json_obj_next(&c->j, 0, &key))
    {
        labels = ts_json_str_eq(&key, "labels");

        if ((!labels && !ts_json_str_eq(&key, "samples"))
            || ts_json_peek(&c->j) == TS_JSON_NULL)
        {
            if (ts_json_skip(&c->j) != 0) {
                return ts_push_jfail(c);
            }

            continue;
        }

        for (first = 1; (rc = ts_json_arr_next(&c->j, first)) == 1;
             first = 0)
        {
            rc = labels ? ts_push_json_label(c, s)
                        : ts_push_json_sample(c, s);
            if (rc != TS_OK) {
                return rc;
            }
        }

        if (rc < 0) {
            return ts_push_jfail(c);
        }
    }

    return (more < 0) ? ts_push_jfail(c) : TS_OK;
}


static int
ts_push_json_label(ts_push_jctx_t *c, ts_push_series_t *s)
{
    int             rc, more;
    ts_label_t     *l;
    ts_json_str_t   key;

    if (s->nlabels >= c->lim.max_labels) {
        return ts_push_fail(c->err, c->errlen, TS_ERR_LIMIT,
                            "too many labels in a series, at most %u",
                            c->lim.max_labels);
    }

    l = &s->labels[s->nlabels];
    memset(l, 0, sizeof(ts_label_t));
    l->name = "";
    l->value = "";

    for (more = ts_json_obj_next(&c->j, 1, &key); more == 1;
         more = ts_json_obj_next(&c->j, 0, &key))
    {
        if (ts_json_str_eq(&key, "name")) {
            rc = ts_push_json_text(c, "label name", &l->name, &l->name_len);

        } else if (ts_json_str_eq(&key, "value")) {
            rc = ts_push_json_text(c, "label value", &l->value,
                                   &l->value_len);

        } else {
            rc = ts_json_skip(&c->j) ? ts_push_jfail(c) : TS_OK;
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    if (more < 0) {
        return ts_push_jfail(c);
    }

    s->nlabels++;

    return TS_OK;
}


/* a string member, unescaped into a new allocation; null is "" */

static int
ts_push_json_text(ts_push_jctx_t *c, const char *what, const char **out,
    uint32_t *len)
{
    char           *b;
    size_t          n;
    ts_json_str_t   s;

    if (ts_json_peek(&c->j) == TS_JSON_NULL) {
        return ts_json_skip(&c->j) ? ts_push_jfail(c) : TS_OK;
    }

    if (ts_json_peek(&c->j) != TS_JSON_STRING) {
        return ts_push_fail(c->err, c->errlen, TS_ERR_INVALID,
                            "%s is not a string", what);
    }

    if (ts_json_string(&c->j, &s) != 0) {
        return ts_push_jfail(c);
    }

    if (s.len > (size_t) c->lim.max_label_len * 6) {
        return ts_push_fail(c->err, c->errlen, TS_ERR_LIMIT,
                            "%s longer than %u bytes", what,
                            c->lim.max_label_len);
    }

    b = ts_push_alloc(c->p, s.len + 1);
    if (b == NULL) {
        return ts_push_fail(c->err, c->errlen, TS_ERR_NOMEM, "out of memory");
    }

    n = ts_json_unescape(&s, b);
    b[n] = '\0';

    if (n > c->lim.max_label_len) {
        return ts_push_fail(c->err, c->errlen, TS_ERR_LIMIT,
                            "%s longer than %u bytes", what,
                            c->lim.max_label_len);
    }

    *out = b;
    *len = (uint32_t) n;

    return TS_OK;
}


static int
ts_push_json_sample(ts_push_jctx_t *c, ts_push_series_t *s)
{
    int             more;
    size_t          n;
    uint8_t        *b;
    ts_json_str_t   key, v;
    ts_push_raw_t  *r;

    if (c->p->nprofiles >= c->lim.max_profiles) {
        return ts_push_fail(c->err, c->errlen, TS_ERR_LIMIT,
                            "too many profiles in one request, at most %u",
                            c->lim.max_profiles);
    }

    if (s->profiles == NULL) {
        s->profiles = ts_push_alloc(c->p, c->lim.max_profiles
                                          * sizeof(ts_push_raw_t));
        if (s->profiles == NULL) {
            return ts_push_fail(c->err, c->errlen, TS_ERR_NOMEM,
                                "out of memory");
        }
    }

    r = &s->profiles[s->nprofiles];
    r->data = (const uint8_t *) "";
    r->len = 0;

    for (more = ts_json_obj_next(&c->j, 1, &key); more == 1;
         more = ts_json_obj_next(&c->j, 0, &key))
    {
        if ((!ts_json_str_eq(&key, "rawProfile")
             && !ts_json_str_eq(&key, "raw_profile"))
            || ts_json_peek(&c->j) == TS_JSON_NULL)
        {
            if (ts_json_skip(&c->j) != 0) {
                return ts_push_jfail(c);
            }

            continue;
        }

        if (ts_json_peek(&c->j) != TS_JSON_STRING) {
            return ts_push_fail(c->err, c->errlen, TS_ERR_INVALID,
                                "rawProfile is not a base64 string");
        }

        if (ts_json_string(&c->j, &v) != 0) {
            return ts_push_jfail(c);
        }

        /* base64 has no escapes a JSON encoder must use; "\/" may be */

        b = ts_push_alloc(c->p, v.len + 4);
        if (b == NULL) {
            return ts_push_fail(c->err, c->errlen, TS_ERR_NOMEM,
                                "out of memory");
        }

        n = v.len;

        if (v.escaped) {
            n = ts_json_unescape(&v, (char *) b);
            v.data = (const char *) b;
        }

        if (ts_base64_decode(v.data, n, b, &n) != 0) {
            return ts_push_fail(c->err, c->errlen, TS_ERR_INVALID,
                                "rawProfile is not valid base64");
        }

        r->data = b;
        r->len = n;
    }

    if (more < 0) {
        return ts_push_jfail(c);
    }

    s->nprofiles++;
    c->p->nprofiles++;

    return TS_OK;
}
