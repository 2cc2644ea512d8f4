/*
 * Copyright (C) ngx_tsdb authors
 *
 * Folded and lines text -> ts_pprof_t through the builder API of
 * ts_pprof.h: each frame name is interned as a string, a function
 * (name only) and a location (one line, no mapping), each line's stack
 * is added as a sample; the builder dedups and sums.  Memory: what the
 * builder keeps (distinct names and stacks) plus one stack of scratch.
 * The body is read once, never beyond len, never written.
 */

#include <string.h>

#include "ts_error.h"
#include "ts_folded.h"


typedef struct {
    ts_pprof_t                *p;
    ts_pprof_why_t            *why;
    ts_folded_fmt_t            fmt;
    int64_t                    scale;
    uint32_t                  *stack;      /* leaf first */
    uint32_t                   max;        /* its room */
    uint32_t                   lineno;
} ts_folded_t;


/* a decimal integer as Go's strconv.Atoi takes it: sign, digits, int64 */
static int
ts_folded_count(const char *s, size_t len, int64_t *out)
{
    int       neg;
    size_t    i;
    uint64_t  v, lim;

    neg = len > 0 && s[0] == '-';
    i = len > 0 && (s[0] == '-' || s[0] == '+');

    if (i == len) {
        return -1;
    }

    lim = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;

    for (v = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9'
            || v > (lim - (uint64_t) (s[i] - '0')) / 10)
        {
            return -1;
        }

        v = v * 10 + (uint64_t) (s[i] - '0');
    }

    *out = neg ? (int64_t) (0 - v) : (int64_t) v;

    return 0;
}


static int
ts_folded_bad(ts_folded_t *f, const char *what)
{
    return ts_pprof_fail(f->why, TS_ERR_INVALID, TS_PPROF_BAD_TEXT,
                         "line %u: %s", f->lineno, what);
}


static int
ts_folded_nomem(ts_folded_t *f)
{
    return ts_pprof_fail(f->why, TS_ERR_LIMIT, TS_PPROF_MEMORY,
                         "line %u: out of memory or over %zu bytes",
                         f->lineno, f->p->lim.max_memory);
}


/* the location of one frame name; 0 on memory failure */
static uint32_t
ts_folded_frame(ts_folded_t *f, const char *s, size_t len)
{
    ts_pprof_line_t      line;
    ts_pprof_function_t  fn;

    memset(&fn, 0, sizeof(fn));

    fn.name = ts_pprof_add_string(f->p, s, len);
    if (fn.name == TS_PPROF_NONE) {
        return 0;
    }

    memset(&line, 0, sizeof(line));

    line.function = ts_pprof_add_function(f->p, &fn);
    if (line.function == 0) {
        return 0;
    }

    return ts_pprof_add_location(f->p, 0, 0, 0, &line, 1);
}


/* one stack, root first in s[0 .. len), counted n times */
static int
ts_folded_stack(ts_folded_t *f, const char *s, size_t len, int64_t n)
{
    int          rc;
    int64_t      v;
    uint32_t     depth, i, k, max;
    const char  *end, *semi;

    if (__builtin_mul_overflow(n, f->scale, &v)) {
        return ts_folded_bad(f, "count out of range");
    }

    /* nothing of an empty or zero sample is kept, not even its names */
    if (len == 0 || v == 0) {
        return TS_OK;
    }

    max = f->p->lim.max_depth ? f->p->lim.max_depth : UINT32_MAX;
    max = max < f->max ? max : f->max;
    end = s + len;

    /* frames root first, so the root side is what stays of a deep one */
    for (depth = 0; ; s = semi + 1) {
        semi = memchr(s, ';', (size_t) (end - s));
        semi = semi != NULL ? semi : end;

        f->stack[depth] = ts_folded_frame(f, s, (size_t) (semi - s));
        if (f->stack[depth++] == 0) {
            return ts_folded_nomem(f);
        }

        if (semi == end) {
            break;
        }

        if (depth == max) {
            f->p->truncated++;
            break;
        }
    }

    for (i = 0, k = depth - 1; i < k; i++, k--) {
        max = f->stack[i];
        f->stack[i] = f->stack[k];
        f->stack[k] = max;
    }

    rc = ts_pprof_add_sample(f->p, f->stack, depth, &v, NULL, 0, f->why);
    if (rc != TS_OK) {
        return rc;
    }

    if (f->p->lim.max_samples && f->p->nsamples > f->p->lim.max_samples) {
        return ts_pprof_fail(f->why, TS_ERR_LIMIT,
                             TS_PPROF_TOO_MANY_SAMPLES,
                             "more than %u distinct stacks",
                             f->p->lim.max_samples);
    }

    return TS_OK;
}


static int
ts_folded_line(ts_folded_t *f, const char *s, size_t len)
{
    int64_t      n;
    const char  *sp;

    if (len > 0 && s[len - 1] == '\r') {
        len--;
    }

    if (len > TS_FOLDED_MAX_LINE) {
        return ts_folded_bad(f, "longer than 65536 bytes");
    }

    if (f->fmt == TS_FOLDED_LINES) {
        return ts_folded_stack(f, s, len, 1);
    }

    for (sp = s + len; sp > s && sp[-1] != ' '; sp--) {
        /* void */
    }

    if (sp == s) {
        return TS_OK;
    }

    sp--;

    if (ts_folded_count(sp + 1, (size_t) (s + len - sp - 1), &n) != 0) {
        return ts_folded_bad(f, "the count after the last space is not an "
                             "integer");
    }

    return ts_folded_stack(f, s, (size_t) (sp - s), n);
}


static int
ts_folded_headers(ts_pprof_t *p, const ts_folded_opts_t *o)
{
    ts_pprof_vtype_t  vt;

    vt.type = ts_pprof_add_string(p, o->type, strlen(o->type));
    vt.unit = ts_pprof_add_string(p, o->unit, strlen(o->unit));

    if (o->period_type != NULL && o->period_unit != NULL) {
        p->period_type.type = ts_pprof_add_string(p, o->period_type,
                                                  strlen(o->period_type));
        p->period_type.unit = ts_pprof_add_string(p, o->period_unit,
                                                  strlen(o->period_unit));
    }

    if (vt.type == TS_PPROF_NONE || vt.unit == TS_PPROF_NONE
        || p->period_type.type == TS_PPROF_NONE
        || p->period_type.unit == TS_PPROF_NONE)
    {
        return TS_ERR_NOMEM;
    }

    p->period = o->period;
    p->time_nanos = o->time_nanos;
    p->duration_nanos = o->duration_nanos;

    return ts_pprof_set_types(p, &vt, 1);
}


int
ts_folded_parse(ts_pprof_t *p, ts_folded_fmt_t fmt, const char *buf,
    size_t len, const ts_folded_opts_t *opts, ts_pprof_why_t *why)
{
    int          rc;
    size_t       max;
    ts_folded_t  f;
    const char  *end, *nl;

    if (p->nmerged != 0 || p->nstrings != 0) {
        return ts_pprof_fail(why, TS_ERR_INVALID, TS_PPROF_BAD_TEXT,
                             "parsing into a used profile");
    }

    if (p->lim.max_decompressed && len > p->lim.max_decompressed) {
        return ts_pprof_fail(why, TS_ERR_LIMIT, TS_PPROF_TOO_LARGE,
                             "body is %zu bytes, the limit is %zu", len,
                             p->lim.max_decompressed);
    }

    if (ts_folded_headers(p, opts) != TS_OK) {
        return ts_pprof_fail(why, TS_ERR_LIMIT, TS_PPROF_MEMORY,
                             "out of memory");
    }

    memset(&f, 0, sizeof(f));
    f.p = p;
    f.why = why;
    f.fmt = fmt;
    f.scale = opts->scale ? opts->scale : 1;

    /* a line has at most TS_FOLDED_MAX_LINE + 1 frames (all empty) */
    max = TS_FOLDED_MAX_LINE + 1;
    max = p->lim.max_depth && p->lim.max_depth < max ? p->lim.max_depth
                                                     : max;
    f.max = (uint32_t) max;

    f.stack = p->alloc.alloc(p->alloc.allocator_data,
                             max * sizeof(uint32_t));
    if (f.stack == NULL) {
        return ts_pprof_fail(why, TS_ERR_NOMEM, TS_PPROF_NOMEM,
                             "out of memory");
    }

    rc = TS_OK;
    end = buf + len;

    while (buf < end && rc == TS_OK) {
        f.lineno++;
        nl = memchr(buf, '\n', (size_t) (end - buf));
        nl = nl != NULL ? nl : end;

        rc = ts_folded_line(&f, buf, (size_t) (nl - buf));
        buf = nl + 1;
    }

    if (p->alloc.free != NULL) {
        p->alloc.free(p->alloc.allocator_data, f.stack);
    }

    return rc;
}
