/*
 * Copyright (C) ngx_tsdb authors
 *
 * PromQL functions for float samples, as Prometheus 2.42's functions.go
 * computes them (extrapolation of rate/increase/delta, Kahan sums in
 * *_over_time, linear regression, Holt-Winters, bucketQuantile with its
 * monotonicity fix).  Functions of a range argument run per series and
 * step over the window; the others are step functions (ts_pq_steps()).
 * Native histograms (ts_pqeval_hist.c): histogram_count, _sum,
 * _fraction and _quantile, rate and increase over them, as 2.42.
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "ts_pqeval_int.h"


typedef struct {
    double                  le;
    double                  count;
} ts_pq_bucket_t;


typedef struct {
    const ts_pq_ls_t       *ls;
    uint64_t                sig;
    ts_pq_bucket_t         *b;
    uint32_t                n;
    uint32_t                cap;
} ts_pq_hgroup_t;


static void ts_pq_hist_args(ts_pq_ev_t *ev, ts_promql_fn_t fn,
    ts_pq_val_t *args, uint32_t nargs);
static void ts_pq_call_range(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    uint32_t mi, ts_pq_val_t *v);
static void ts_pq_call_range_one(ts_pq_ev_t *ev, ts_pq_series_t *s,
    void *data);
static int ts_pq_over(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    ts_pq_range_t *r, const ts_pq_point_t *p, uint32_t n, int64_t ts,
    const double *sc, double *out);
static int ts_pq_rate(ts_pq_range_t *r, const ts_pq_point_t *p,
    uint32_t n, int64_t ts, int counter, int rate, double *out);
static int ts_pq_hist_rate(ts_pq_ev_t *ev, ts_pq_range_t *r,
    const ts_pq_point_t *p, uint32_t n, int64_t ts, int counter, int rate,
    double *out);
static int ts_pq_instant_delta(const ts_pq_point_t *p, uint32_t n, int rate,
    double *out);
static void ts_pq_regression(const ts_pq_point_t *p, uint32_t n,
    int64_t t0, double *slope, double *icpt);
static double ts_pq_holt_winters(ts_pq_ev_t *ev, const ts_pq_point_t *p,
    uint32_t n, double sf, double tf);
static void ts_pq_kahan(double inc, double *sum, double *c);
static void ts_pq_absent_over_time(ts_pq_ev_t *ev,
    const ts_promql_expr_t *e, ts_pq_range_t *r, ts_pq_val_t *v);
static const ts_pq_ls_t *ts_pq_absent_labels(ts_pq_ev_t *ev,
    const ts_promql_expr_t *arg);
static void ts_pq_timestamp(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    ts_pq_val_t *v);
static void ts_pq_fn_step(ts_pq_ev_t *ev, ts_pq_step_t *st);
static double ts_pq_math(ts_promql_fn_t fn, double x, int *ok);
static double ts_pq_date(ts_promql_fn_t fn, double x);
static void ts_pq_histogram_quantile(ts_pq_ev_t *ev, ts_pq_step_t *st);
static double ts_pq_bucket_quantile(double q, ts_pq_bucket_t *b, uint32_t n);
static int ts_pq_bucket_cmp(const void *a, const void *b);
static int ts_pq_double_cmp(const void *a, const void *b);
static int ts_pq_parse_float(const char *s, size_t len, double *v);
static void ts_pq_label_replace(ts_pq_ev_t *ev, ts_pq_step_t *st);
static void ts_pq_label_join(ts_pq_ev_t *ev, ts_pq_step_t *st);
static void ts_pq_expand(ts_pq_ev_t *ev, const ts_promql_str_t *tpl,
    const char *src, size_t slen, pcre2_code *re, PCRE2_SIZE *ov,
    uint32_t nov, char **out, size_t *olen);
static void ts_pq_sort(ts_pq_ev_t *ev, ts_pq_step_t *st, int desc);


void
ts_pq_call(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_val_t *v)
{
    uint32_t                 i, nargs;
    ts_pq_val_t             *args;
    const ts_promql_call_t  *c;

    c = &e->u.call;
    nargs = c->nargs;

    for (i = 0; i < nargs; i++) {
        if (c->args[i]->type == TS_PQ_TYPE_MATRIX) {
            ts_pq_call_range(ev, e, i, v);
            return;
        }
    }

    if (c->func->id == TS_PQ_FN_TIMESTAMP
        && ts_pq_unparen(c->args[0])->kind == TS_PQ_VECTOR)
    {
        ts_pq_timestamp(ev, e, v);
        return;
    }

    args = ts_pq_alloc(ev, (nargs + 1) * sizeof(ts_pq_val_t));

    for (i = 0; i < nargs; i++) {
        ts_pq_eval(ev, c->args[i], &args[i]);
    }

    ts_pq_hist_args(ev, c->func->id, args, nargs);

    ts_pq_steps(ev, e, args, nargs, ts_pq_fn_step, NULL, v);

    for (i = 0; i < nargs; i++) {
        ts_pq_mat_free(ev, &args[i].m);
    }

    ts_pq_free(ev, args);

    if (c->func->ret == TS_PQ_TYPE_SCALAR) {
        v->type = TS_PQ_TYPE_SCALAR;
    }
}


/*
 * 2.42's functions of instant vectors read a histogram sample's V, 0,
 * but for histogram_*() and sort(), sort_desc() (which keep the sample)
 */

static void
ts_pq_hist_args(ts_pq_ev_t *ev, ts_promql_fn_t fn, ts_pq_val_t *args,
    uint32_t nargs)
{
    uint32_t         i, j, k;
    ts_pq_series_t  *s;

    if (ev->nhist == 0) {
        /* no histogram read in this evaluation */
        return;
    }

    switch (fn) {
    case TS_PQ_FN_HISTOGRAM_COUNT:
    case TS_PQ_FN_HISTOGRAM_SUM:
    case TS_PQ_FN_HISTOGRAM_FRACTION:
    case TS_PQ_FN_HISTOGRAM_QUANTILE:
    case TS_PQ_FN_SORT:
    case TS_PQ_FN_SORT_DESC:
        return;
    default:
        break;
    }

    for (i = 0; i < nargs; i++) {
        if (args[i].type != TS_PQ_TYPE_VECTOR) {
            continue;
        }

        for (j = 0; j < args[i].m.n; j++) {
            s = &args[i].m.s[j];

            for (k = 0; k < s->n; k++) {
                if (ts_pq_is_hist(s->p[k].v)) {
                    s->p[k].v = 0;
                }
            }
        }
    }
}


/* a function of a range vector, per series and step */

typedef struct {
    const ts_promql_expr_t *e;
    ts_pq_range_t          *r;
    ts_pq_val_t            *args;
    uint32_t                nargs;
    ts_pq_val_t            *v;
    ts_pq_fuse_t           *fu;         /* or the output to here */
    uint32_t               *reset;      /* rate, increase: per point */
    uint32_t                rcap;
} ts_pq_call_range_t;


static void ts_pq_call_range_sel(ts_pq_ev_t *ev, ts_pq_call_range_t *cr,
    const ts_promql_expr_t *arg);


static void
ts_pq_call_range(ts_pq_ev_t *ev, const ts_promql_expr_t *e, uint32_t mi,
    ts_pq_val_t *v)
{
    uint32_t                 i, nargs;
    ts_pq_val_t              args[4];
    ts_pq_range_t            r;
    ts_pq_call_range_t       cr;
    const ts_promql_expr_t  *arg;
    const ts_promql_call_t  *c;

    c = &e->u.call;
    nargs = c->nargs < 4 ? c->nargs : 4;
    memset(args, 0, sizeof(args));

    for (i = 0; i < nargs; i++) {
        if (i != mi) {
            ts_pq_eval(ev, c->args[i], &args[i]);
        }
    }

    arg = ts_pq_unparen(c->args[mi]);

    memset(v, 0, sizeof(ts_pq_val_t));
    v->type = TS_PQ_TYPE_VECTOR;

    cr.e = e;
    cr.r = &r;
    cr.args = args;
    cr.nargs = nargs;
    cr.v = v;
    cr.fu = NULL;
    cr.reset = NULL;
    cr.rcap = 0;

    if (arg->kind == TS_PQ_MATRIX
        && c->func->id != TS_PQ_FN_ABSENT_OVER_TIME)
    {
        ts_pq_call_range_sel(ev, &cr, arg);

    } else {
        ts_pq_range_arg(ev, c->args[mi], &r);

        if (c->func->id == TS_PQ_FN_ABSENT_OVER_TIME) {
            ts_pq_absent_over_time(ev, e, &r, v);
            ts_pq_mat_free(ev, &r.m);
            return;
        }

        for (i = 0; i < r.m.n; i++) {
            ts_pq_call_range_one(ev, &r.m.s[i], &cr);
        }

        /* names dropped: two series may now be one */

        ts_pq_mat_unique(ev, &v->m);

        ts_pq_mat_free(ev, &r.m);
    }

    ts_pq_free(ev, cr.reset);

    for (i = 0; i < nargs; i++) {
        ts_pq_mat_free(ev, &args[i].m);
    }
}


/*
 * A range function over a range selector: its series straight from the
 * storage to the windows, one at a time, and their output into cr->v or
 * to cr->fu.
 */

static void
ts_pq_call_range_sel(ts_pq_ev_t *ev, ts_pq_call_range_t *cr,
    const ts_promql_expr_t *arg)
{
    int64_t                    mint, maxt;
    ts_pq_each_t               each;
    const ts_promql_vector_t  *vs;

    ts_pq_range_sel(ev, arg, cr->r, &vs, &mint, &maxt);

    each.fn = ts_pq_call_range_one;
    each.data = cr;
    ts_pq_load_each(ev, vs, mint, maxt, 0, &each);

    /* names dropped: two series may now be one */

    if (cr->fu == NULL) {
        ts_pq_mat_unique(ev, &cr->v->m);

    } else if (!cr->fu->stop) {
        ts_pq_ls_unique(ev, cr->fu->ls, cr->fu->nls);
    }

    ts_pq_samples(ev, -(int64_t) each.held);
}


/*
 * A range function over a range selector, or an instant selector, whose
 * output goes to fu, one series at a time, instead of into series of its
 * own: as ts_pq_call_range() or ts_pq_select() would compute them, with
 * the same checks and the same samples counted.  0: e is neither
 * (nothing done).
 */

int
ts_pq_call_fused(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_fuse_t *fu)
{
    uint32_t                 i, mi, nargs;
    ts_pq_val_t              args[4];
    ts_pq_range_t            r;
    ts_pq_call_range_t       cr;
    const ts_promql_expr_t  *arg;
    const ts_promql_call_t  *c;

    e = ts_pq_unparen(e);

    if (e->kind == TS_PQ_VECTOR) {
        /* an instant selector: its samples at each step */
        ts_pq_select_fused(ev, &e->u.vector, fu);
        return 1;
    }

    if (e->kind != TS_PQ_CALL) {
        return 0;
    }

    c = &e->u.call;

    for (mi = 0; mi < c->nargs; mi++) {
        if (c->args[mi]->type == TS_PQ_TYPE_MATRIX) {
            break;
        }
    }

    if (mi == c->nargs || c->func->id == TS_PQ_FN_ABSENT_OVER_TIME) {
        return 0;
    }

    arg = ts_pq_unparen(c->args[mi]);

    if (arg->kind != TS_PQ_MATRIX) {
        return 0;
    }

    nargs = c->nargs < 4 ? c->nargs : 4;
    memset(args, 0, sizeof(args));

    for (i = 0; i < nargs; i++) {
        if (i != mi) {
            ts_pq_eval(ev, c->args[i], &args[i]);
        }
    }

    cr.e = e;
    cr.r = &r;
    cr.args = args;
    cr.nargs = nargs;
    cr.v = NULL;
    cr.fu = fu;
    cr.reset = NULL;
    cr.rcap = 0;

    ts_pq_call_range_sel(ev, &cr, arg);

    ts_pq_free(ev, cr.reset);

    for (i = 0; i < nargs; i++) {
        ts_pq_mat_free(ev, &args[i].m);
    }

    return 1;
}


/* the function over one series' windows at every step */

static void
ts_pq_call_range_one(ts_pq_ev_t *ev, ts_pq_series_t *s, void *data)
{
    double                   out, sc[4];
    int64_t                  ts;
    uint32_t                 k, lo, n, step, nout;
    ts_pq_fuse_t            *fu;
    ts_pq_range_t           *r;
    ts_pq_series_t          *d;
    const ts_pq_ls_t        *ls;
    ts_pq_call_range_t      *cr;
    const ts_promql_call_t  *c;

    cr = data;
    r = cr->r;
    c = &cr->e->u.call;
    fu = cr->fu;
    nout = 0;

    if (fu != NULL && fu->stop) {
        return;
    }

    s->cur = 0;
    s->hi = 0;
    d = NULL;
    ls = c->func->id == TS_PQ_FN_LAST_OVER_TIME
         ? s->ls : ts_pq_ls_noname(ev, s->ls);

    /*
     * rate() and increase() add up the counter resets in each window:
     * the index of the next reset at or after each point lets a window
     * go from one reset to the next instead of over all its points
     */

    r->base = NULL;
    r->reset = NULL;
    r->has_hist = 0;

    for (k = 0; ev->nhist > 0 && k < s->n; k++) {
        if (ts_pq_is_hist(s->p[k].v)) {
            r->has_hist = 1;
            break;
        }
    }

    if (r->has_hist && c->func->id != TS_PQ_FN_RATE
        && c->func->id != TS_PQ_FN_INCREASE && c->func->id != TS_PQ_FN_DELTA)
    {
        /*
         * 2.42's other range functions read a histogram point's V,
         * which is 0: the points are the evaluator's, so in place
         */

        for (k = 0; k < s->n; k++) {
            if (ts_pq_is_hist(s->p[k].v)) {
                s->p[k].v = 0;
            }
        }

        r->has_hist = 0;
    }

    if ((c->func->id == TS_PQ_FN_RATE || c->func->id == TS_PQ_FN_INCREASE)
        && s->n >= 2 && !r->has_hist)
    {
        if (s->n + 1 > cr->rcap) {
            ts_pq_free(ev, cr->reset);
            cr->rcap = s->n + 1;
            cr->reset = ts_pq_alloc(ev, cr->rcap * sizeof(uint32_t));
        }

        cr->reset[s->n] = s->n;

        for (k = s->n - 1; k > 0; k--) {
            cr->reset[k] = s->p[k].v < s->p[k - 1].v ? k : cr->reset[k + 1];
        }

        cr->reset[0] = cr->reset[1];
        r->base = s->p;
        r->reset = cr->reset;
    }

    for (ts = ev->start, step = 0; ts <= ev->end;
         ts += ev->interval, step++)
    {
        ts_pq_tick(ev);
        n = ts_pq_window(r, s, ts, &lo);

        for (k = 0; k < cr->nargs; k++) {
            sc[k] = cr->args[k].type == TS_PQ_TYPE_SCALAR
                    && cr->args[k].m.n && step < cr->args[k].m.s[0].n
                    ? cr->args[k].m.s[0].p[step].v : NAN;
        }

        if (n == 0
            || !ts_pq_over(ev, cr->e, r, s->p + lo, n, ts, sc, &out))
        {
            continue;
        }

        if (fu != NULL) {
            fu->step[nout] = step;
            fu->v[nout] = out;
            nout++;
            continue;
        }

        if (d == NULL) {
            d = ts_pq_mat_add(ev, &cr->v->m, ls);
            ts_pq_series_reserve(ev, d,
                ts_pq_steps_until(ev, ts, r->has_at,
                                  s->p[s->n - 1].t + r->offset
                                  + r->range));
        }

        ts_pq_series_push(ev, d, ts, out);
    }

    r->base = NULL;
    r->reset = NULL;

    if (nout == 0) {
        return;
    }

    /* counted as the points of a series of its own would be */

    ts_pq_samples(ev, nout);
    fu->held += nout;

    if (fu->nls == fu->lscap) {
        fu->lscap = fu->lscap ? fu->lscap * 2 : 256;
        fu->ls = ts_pq_realloc(ev, fu->ls,
                               fu->lscap * sizeof(ts_pq_ls_t *));
    }

    fu->ls[fu->nls++] = ls;
    fu->fn(ev, ls, fu->step, fu->v, nout, fu->data);
}


/* the value of a range function over one window: 1, or 0 for none */

static int
ts_pq_over(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_range_t *r,
    const ts_pq_point_t *p, uint32_t n, int64_t ts, const double *sc,
    double *out)
{
    double    sum, c, mean, cm, aux, ca, delta, x, slope, icpt, cnt;
    double   *vals;
    uint32_t  i;

    switch (e->u.call.func->id) {

    case TS_PQ_FN_RATE:
    case TS_PQ_FN_INCREASE:
    case TS_PQ_FN_DELTA:
        if (r->has_hist) {
            return ts_pq_hist_rate(ev, r, p, n, ts,
                                   e->u.call.func->id != TS_PQ_FN_DELTA,
                                   e->u.call.func->id == TS_PQ_FN_RATE, out);
        }

        return ts_pq_rate(r, p, n, ts, e->u.call.func->id != TS_PQ_FN_DELTA,
                          e->u.call.func->id == TS_PQ_FN_RATE, out);
    case TS_PQ_FN_IRATE:
        return ts_pq_instant_delta(p, n, 1, out);
    case TS_PQ_FN_IDELTA:
        return ts_pq_instant_delta(p, n, 0, out);

    case TS_PQ_FN_CHANGES:
    case TS_PQ_FN_RESETS:
        cnt = 0;

        for (i = 1; i < n; i++) {
            if (e->u.call.func->id == TS_PQ_FN_RESETS) {
                cnt += p[i].v < p[i - 1].v;

            } else {
                cnt += p[i].v != p[i - 1].v
                       && !(isnan(p[i].v) && isnan(p[i - 1].v));
            }
        }

        *out = cnt;
        return 1;

    case TS_PQ_FN_DERIV:
        if (n < 2) {
            return 0;
        }

        ts_pq_regression(p, n, p[0].t, &slope, &icpt);
        *out = slope;
        return 1;

    case TS_PQ_FN_PREDICT_LINEAR:
        if (n < 2) {
            return 0;
        }

        ts_pq_regression(p, n, ts, &slope, &icpt);
        *out = slope * sc[1] + icpt;
        return 1;

    case TS_PQ_FN_HOLT_WINTERS:
        *out = ts_pq_holt_winters(ev, p, n, sc[1], sc[2]);
        return n >= 2;

    case TS_PQ_FN_AVG_OVER_TIME:
        mean = 0;
        c = 0;

        for (i = 0; i < n; i++) {
            cnt = i + 1;

            if (isinf(mean)) {
                if (isinf(p[i].v) && (mean > 0) == (p[i].v > 0)) {
                    continue;
                }

                if (!isinf(p[i].v) && !isnan(p[i].v)) {
                    continue;
                }
            }

            ts_pq_kahan(p[i].v / cnt - mean / cnt, &mean, &c);
        }

        *out = isinf(mean) ? mean : mean + c;
        return 1;

    case TS_PQ_FN_SUM_OVER_TIME:
        sum = 0;
        c = 0;

        for (i = 0; i < n; i++) {
            ts_pq_kahan(p[i].v, &sum, &c);
        }

        *out = isinf(sum) ? sum : sum + c;
        return 1;

    case TS_PQ_FN_COUNT_OVER_TIME:
        *out = n;
        return 1;

    case TS_PQ_FN_MIN_OVER_TIME:
    case TS_PQ_FN_MAX_OVER_TIME:
        x = p[0].v;

        for (i = 0; i < n; i++) {
            if (isnan(x)
                || (e->u.call.func->id == TS_PQ_FN_MIN_OVER_TIME
                    ? p[i].v < x : p[i].v > x))
            {
                x = p[i].v;
            }
        }

        *out = x;
        return 1;

    case TS_PQ_FN_LAST_OVER_TIME:
        *out = p[n - 1].v;
        return 1;

    case TS_PQ_FN_PRESENT_OVER_TIME:
        *out = 1;
        return 1;

    case TS_PQ_FN_QUANTILE_OVER_TIME:
        vals = ts_pq_alloc(ev, n * sizeof(double));

        for (i = 0; i < n; i++) {
            vals[i] = p[i].v;
        }

        *out = ts_pq_quantile(sc[0], vals, n);
        ts_pq_free(ev, vals);
        return 1;

    case TS_PQ_FN_STDDEV_OVER_TIME:
    case TS_PQ_FN_STDVAR_OVER_TIME:
        mean = 0;
        cm = 0;
        aux = 0;
        ca = 0;

        for (i = 0; i < n; i++) {
            cnt = i + 1;
            delta = p[i].v - (mean + cm);
            ts_pq_kahan(delta / cnt, &mean, &cm);
            ts_pq_kahan(delta * (p[i].v - (mean + cm)), &aux, &ca);
        }

        *out = (aux + ca) / n;

        if (e->u.call.func->id == TS_PQ_FN_STDDEV_OVER_TIME) {
            *out = sqrt(*out);
        }

        return 1;

    default:
        return 0;
    }
}


/* rate, increase and delta: extrapolatedRate of Prometheus 2.42 */

static int
ts_pq_rate(ts_pq_range_t *r, const ts_pq_point_t *p, uint32_t n,
    int64_t ts, int counter, int rate, double *out)
{
    double    res, to_start, to_end, sampled, avg, zero, thr, ext, factor;
    int64_t   start, end, d0, d1, ds;
    uint32_t  i, off;

    if (n < 2) {
        return 0;
    }

    end = (r->has_at ? r->at : ts) - r->offset;
    start = end - r->range;

    res = p[n - 1].v - p[0].v;

    if (counter && r->reset != NULL) {
        /* the same resets, added in the same order, without the scan */
        off = (uint32_t) (p - r->base);

        for (i = r->reset[off + 1]; i < off + n; i = r->reset[i + 1]) {
            res += r->base[i - 1].v;
        }

    } else if (counter) {
        for (i = 1; i < n; i++) {
            if (p[i].v < p[i - 1].v) {
                res += p[i - 1].v;
            }
        }
    }

    d0 = p[0].t - start;
    d1 = end - p[n - 1].t;
    ds = p[n - 1].t - p[0].t;

    if (n == r->memo_n && d0 == r->memo_d0 && d1 == r->memo_d1
        && ds == r->memo_ds)
    {
        /* the same operands as the last window's: the same results */
        to_start = r->memo_to_start;
        to_end = r->memo_to_end;
        sampled = r->memo_sampled;
        avg = r->memo_avg;

    } else {
        to_start = (double) d0 / 1000;
        to_end = (double) d1 / 1000;
        sampled = (double) ds / 1000;
        avg = sampled / (n - 1);

        r->memo_n = n;
        r->memo_d0 = d0;
        r->memo_d1 = d1;
        r->memo_ds = ds;
        r->memo_to_start = to_start;
        r->memo_to_end = to_end;
        r->memo_sampled = sampled;
        r->memo_avg = avg;
    }

    if (counter && res > 0 && p[0].v >= 0) {
        zero = sampled * (p[0].v / res);

        if (zero < to_start) {
            to_start = zero;
        }
    }

    thr = avg * 1.1;
    ext = sampled;
    ext += to_start < thr ? to_start : avg / 2;
    ext += to_end < thr ? to_end : avg / 2;

    factor = ext / sampled;

    if (rate) {
        factor /= r->range_s;
    }

    *out = res * factor;

    return 1;
}


/*
 * rate, increase and delta of a window that has histograms: 2.42's
 * extrapolatedRate with histogramRate; a mix of floats and histograms
 * gives nothing
 */

static int
ts_pq_hist_rate(ts_pq_ev_t *ev, ts_pq_range_t *r,
    const ts_pq_point_t *p, uint32_t n, int64_t ts, int counter, int rate,
    double *out)
{
    double         to_start, to_end, sampled, avg, thr, ext, factor;
    int32_t        schema;
    int64_t        start, end;
    uint32_t       i;
    ts_pq_hist_t  *h, *prev, *curr, *t;

    if (n < 2) {
        return 0;
    }

    prev = ts_pq_hist_get(ev, p[0].v);

    if (prev == NULL) {
        /* floats first: a histogram later in the window spoils it */

        for (i = 1; i < n; i++) {
            if (ts_pq_is_hist(p[i].v)) {
                return 0;
            }
        }

        return ts_pq_rate(r, p, n, ts, counter, rate, out);
    }

    curr = ts_pq_hist_get(ev, p[n - 1].v);

    if (curr == NULL) {
        return 0;
    }

    schema = prev->schema < curr->schema ? prev->schema : curr->schema;

    for (i = 1; i + 1 < n; i++) {
        t = ts_pq_hist_get(ev, p[i].v);

        if (t == NULL) {
            return 0;
        }

        if (counter && t->schema < schema) {
            schema = t->schema;
        }
    }

    /* last at the lowest schema, minus the first */

    t = ts_pq_hist_to_schema(ev, curr, schema);
    h = ts_pq_hist_add(ev, t, prev, -1);

    if (counter) {
        for (i = 1; i < n; i++) {
            t = ts_pq_hist_get(ev, p[i].v);

            if (ts_pq_hist_reset(t, prev)) {
                h = ts_pq_hist_add(ev, h, prev, 1);
            }

            prev = t;
        }
    }

    h->reset_hint = TS_HIST_HINT_GAUGE;
    ts_pq_hist_compact(h);

    end = (r->has_at ? r->at : ts) - r->offset;
    start = end - r->range;

    to_start = (double) (p[0].t - start) / 1000;
    to_end = (double) (end - p[n - 1].t) / 1000;
    sampled = (double) (p[n - 1].t - p[0].t) / 1000;
    avg = sampled / (n - 1);

    /* no zero point: 2.42 looks at the float result, 0 for histograms */

    thr = avg * 1.1;
    ext = sampled;
    ext += to_start < thr ? to_start : avg / 2;
    ext += to_end < thr ? to_end : avg / 2;

    factor = ext / sampled;

    if (rate) {
        factor /= r->range_s;
    }

    ts_pq_hist_mul(h, factor);
    *out = ts_pq_hist_ref(ev, h);

    return 1;
}


static int
ts_pq_instant_delta(const ts_pq_point_t *p, uint32_t n, int rate,
    double *out)
{
    double  res;
    int64_t dt;

    if (n < 2) {
        return 0;
    }

    res = p[n - 1].v - p[n - 2].v;

    if (rate && p[n - 1].v < p[n - 2].v) {
        res = p[n - 1].v;
    }

    dt = p[n - 1].t - p[n - 2].t;

    if (dt == 0) {
        return 0;
    }

    if (rate) {
        res /= (double) dt / 1000;
    }

    *out = res;

    return 1;
}


/* least squares with Kahan sums, as 2.42's linearRegression */

static void
ts_pq_regression(const ts_pq_point_t *p, uint32_t n, int64_t t0,
    double *slope, double *icpt)
{
    int       konst;
    double    sx, cx, sy, cy, sxy, cxy, sx2, cx2, x, cnt, cov, var;
    uint32_t  i;

    sx = cx = sy = cy = sxy = cxy = sx2 = cx2 = 0;
    konst = 1;

    for (i = 0; i < n; i++) {
        if (konst && i > 0 && p[i].v != p[0].v) {
            konst = 0;
        }

        x = (double) (p[i].t - t0) / 1e3;
        ts_pq_kahan(x, &sx, &cx);
        ts_pq_kahan(p[i].v, &sy, &cy);
        ts_pq_kahan(x * p[i].v, &sxy, &cxy);
        ts_pq_kahan(x * x, &sx2, &cx2);
    }

    if (konst) {
        if (isinf(p[0].v)) {
            *slope = NAN;
            *icpt = NAN;

        } else {
            *slope = 0;
            *icpt = p[0].v;
        }

        return;
    }

    cnt = n;
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;

    cov = sxy - sx * sy / cnt;
    var = sx2 - sx * sx / cnt;

    *slope = cov / var;
    *icpt = sy / cnt - *slope * sx / cnt;
}


static double
ts_pq_holt_winters(ts_pq_ev_t *ev, const ts_pq_point_t *p, uint32_t n,
    double sf, double tf)
{
    double    s0, s1, b, x, y;
    uint32_t  i;

    if (!(sf > 0 && sf < 1)) {
        ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                   "invalid smoothing factor. Expected: 0 < sf < 1, "
                   "got: %f", sf);
    }

    if (!(tf > 0 && tf < 1)) {
        ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                   "invalid trend factor. Expected: 0 < tf < 1, got: %f",
                   tf);
    }

    if (n < 2) {
        return NAN;
    }

    s0 = 0;
    s1 = p[0].v;
    b = p[1].v - p[0].v;

    for (i = 1; i < n; i++) {
        x = sf * p[i].v;

        if (i > 1) {
            b = tf * (s1 - s0) + (1 - tf) * b;
        }

        y = (1 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }

    return s1;
}


/* Kahan-Babuska-Neumaier summation step (kahanSumInc) */

static void
ts_pq_kahan(double inc, double *sum, double *c)
{
    double  t;

    t = *sum + inc;

    if (fabs(*sum) >= fabs(inc)) {
        *c += (*sum - t) + inc;

    } else {
        *c += (inc - t) + *sum;
    }

    *sum = t;
}


static void
ts_pq_absent_over_time(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    ts_pq_range_t *r, ts_pq_val_t *v)
{
    int              present;
    int64_t          ts;
    uint32_t         i, lo;
    ts_pq_series_t  *d;

    memset(v, 0, sizeof(ts_pq_val_t));
    v->type = TS_PQ_TYPE_VECTOR;
    d = NULL;

    for (i = 0; i < r->m.n; i++) {
        r->m.s[i].cur = 0;
        r->m.s[i].hi = 0;
    }

    for (ts = ev->start; ts <= ev->end; ts += ev->interval) {
        ts_pq_tick(ev);
        present = 0;

        for (i = 0; i < r->m.n && !present; i++) {
            present = ts_pq_window(r, &r->m.s[i], ts, &lo) > 0;
        }

        if (present) {
            continue;
        }

        if (d == NULL) {
            d = ts_pq_mat_add(ev, &v->m,
                              ts_pq_absent_labels(ev, e->u.call.args[0]));
        }

        ts_pq_series_push(ev, d, ts, 1);
    }
}


/* absent()'s labels: the equality matchers but of names seen twice */

static const ts_pq_ls_t *
ts_pq_absent_labels(ts_pq_ev_t *ev, const ts_promql_expr_t *arg)
{
    uint32_t                   i, k, n;
    ts_label_t                *l;
    const ts_matcher_t        *m;
    const ts_pq_ls_t          *ls;
    const ts_promql_vector_t  *vs;

    arg = ts_pq_unparen(arg);

    if (arg->kind == TS_PQ_MATRIX) {
        arg = arg->u.matrix.vector;
    }

    if (arg->kind != TS_PQ_VECTOR) {
        return ts_pq_ls(ev, NULL, 0);
    }

    vs = &arg->u.vector;
    l = ts_pq_alloc(ev, (vs->nmatchers + 1) * sizeof(ts_label_t));
    n = 0;

    for (i = 0; i < vs->nmatchers; i++) {
        m = &vs->matchers[i];

        if (m->type != TS_MATCH_EQ || m->value_len == 0
            || (m->name_len == TS_METRIC_NAME_LABEL_LEN
                && memcmp(m->name, TS_METRIC_NAME_LABEL,
                          TS_METRIC_NAME_LABEL_LEN) == 0))
        {
            continue;
        }

        for (k = 0; k < vs->nmatchers; k++) {
            if (k != i && vs->matchers[k].name_len == m->name_len
                && memcmp(vs->matchers[k].name, m->name, m->name_len) == 0)
            {
                break;
            }
        }

        if (k < vs->nmatchers) {
            continue;
        }

        l[n].name = m->name;
        l[n].name_len = (uint32_t) m->name_len;
        l[n].value = m->value;
        l[n].value_len = (uint32_t) m->value_len;
        n++;
    }

    ts_labels_sort(l, n);
    ls = ts_pq_ls(ev, l, n);
    ts_pq_free(ev, l);

    return ls;
}


/* timestamp(selector): the samples' own times, not the steps */

static void
ts_pq_timestamp(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_val_t *v)
{
    uint32_t  i;

    ts_pq_select(ev, &ts_pq_unparen(e->u.call.args[0])->u.vector, 1, v);

    for (i = 0; i < v->m.n; i++) {
        v->m.s[i].ls = ts_pq_ls_noname(ev, v->m.s[i].ls);
    }

    ts_pq_mat_unique(ev, &v->m);
}


/* the functions of instant vectors and scalars, at one step */

static void
ts_pq_fn_step(ts_pq_ev_t *ev, ts_pq_step_t *st)
{
    int                      ok;
    double                   x, lo, hi;
    uint32_t                 i;
    ts_pq_vec_t             *in;
    ts_pq_hist_t            *h;
    ts_promql_fn_t           fn;
    const ts_promql_call_t  *c;

    c = &st->e->u.call;
    fn = c->func->id;
    in = &st->vec[0];

    switch (fn) {

    case TS_PQ_FN_TIME:
        ts_pq_vec_push(ev, st->out, ts_pq_ls(ev, NULL, 0), st->ts,
                       (double) st->ts / 1000);
        return;

    case TS_PQ_FN_PI:
        ts_pq_vec_push(ev, st->out, ts_pq_ls(ev, NULL, 0), st->ts, M_PI);
        return;

    case TS_PQ_FN_VECTOR:
        ts_pq_vec_push(ev, st->out, ts_pq_ls(ev, NULL, 0), st->ts,
                       st->scalar[0]);
        return;

    case TS_PQ_FN_SCALAR:
        ts_pq_vec_push(ev, st->out, ts_pq_ls(ev, NULL, 0), st->ts,
                       in->n == 1 ? in->s[0].v : NAN);
        return;

    case TS_PQ_FN_ABSENT:
        if (in->n == 0) {
            ts_pq_vec_push(ev, st->out, ts_pq_absent_labels(ev, c->args[0]),
                           st->ts, 1);
        }

        return;

    case TS_PQ_FN_HISTOGRAM_QUANTILE:
        ts_pq_histogram_quantile(ev, st);
        return;

    case TS_PQ_FN_HISTOGRAM_COUNT:
    case TS_PQ_FN_HISTOGRAM_SUM:
    case TS_PQ_FN_HISTOGRAM_FRACTION:
        /* native histograms only; float samples give nothing */

        if (fn == TS_PQ_FN_HISTOGRAM_FRACTION) {
            in = &st->vec[2];
        }

        for (i = 0; i < in->n; i++) {
            h = ts_pq_hist_get(ev, in->s[i].v);

            if (h == NULL) {
                continue;
            }

            x = fn == TS_PQ_FN_HISTOGRAM_COUNT ? h->count
                : fn == TS_PQ_FN_HISTOGRAM_SUM ? h->sum
                : ts_pq_hist_fraction(st->scalar[0], st->scalar[1], h);

            ts_pq_vec_push(ev, st->out, ts_pq_ls_noname(ev, in->s[i].ls),
                           st->ts, x);
        }

        return;

    case TS_PQ_FN_LABEL_REPLACE:
        ts_pq_label_replace(ev, st);
        return;

    case TS_PQ_FN_LABEL_JOIN:
        ts_pq_label_join(ev, st);
        return;

    case TS_PQ_FN_SORT:
    case TS_PQ_FN_SORT_DESC:
        ts_pq_sort(ev, st, fn == TS_PQ_FN_SORT_DESC);
        return;

    case TS_PQ_FN_DAYS_IN_MONTH:
    case TS_PQ_FN_DAY_OF_MONTH:
    case TS_PQ_FN_DAY_OF_WEEK:
    case TS_PQ_FN_DAY_OF_YEAR:
    case TS_PQ_FN_HOUR:
    case TS_PQ_FN_MINUTE:
    case TS_PQ_FN_MONTH:
    case TS_PQ_FN_YEAR:
        if (c->nargs == 0) {
            ts_pq_vec_push(ev, st->out, ts_pq_ls(ev, NULL, 0), st->ts,
                           ts_pq_date(fn, (double) (st->ts / 1000)));
            return;
        }

        for (i = 0; i < in->n; i++) {
            ts_pq_vec_push(ev, st->out, ts_pq_ls_noname(ev, in->s[i].ls),
                           st->ts, ts_pq_date(fn, in->s[i].v));
        }

        return;

    case TS_PQ_FN_CLAMP:
    case TS_PQ_FN_CLAMP_MAX:
    case TS_PQ_FN_CLAMP_MIN:
        lo = fn == TS_PQ_FN_CLAMP_MAX ? -INFINITY : st->scalar[1];
        hi = fn == TS_PQ_FN_CLAMP ? st->scalar[2]
             : fn == TS_PQ_FN_CLAMP_MAX ? st->scalar[1] : INFINITY;

        if (fn == TS_PQ_FN_CLAMP && hi < lo) {
            return;
        }

        for (i = 0; i < in->n; i++) {
            x = in->s[i].v;

            if (fn != TS_PQ_FN_CLAMP_MIN) {
                x = ts_pq_go_min(hi, x);
            }

            if (fn != TS_PQ_FN_CLAMP_MAX) {
                x = ts_pq_go_max(lo, x);
            }

            ts_pq_vec_push(ev, st->out, ts_pq_ls_noname(ev, in->s[i].ls),
                           st->ts, x);
        }

        return;

    case TS_PQ_FN_ROUND:
        x = c->nargs > 1 ? 1 / st->scalar[1] : 1;

        for (i = 0; i < in->n; i++) {
            ts_pq_vec_push(ev, st->out, ts_pq_ls_noname(ev, in->s[i].ls),
                           st->ts, floor(in->s[i].v * x + 0.5) / x);
        }

        return;

    case TS_PQ_FN_TIMESTAMP:
        for (i = 0; i < in->n; i++) {
            ts_pq_vec_push(ev, st->out, ts_pq_ls_noname(ev, in->s[i].ls),
                           st->ts, (double) in->s[i].t / 1000);
        }

        return;

    default:
        for (i = 0; i < in->n; i++) {
            x = ts_pq_math(fn, in->s[i].v, &ok);

            if (!ok) {
                ts_pq_fail(ev, TS_ERR_UNSUPPORTED, TS_PQE_EXECUTION,
                           "function %s not implemented", c->func->name);
            }

            ts_pq_vec_push(ev, st->out, ts_pq_ls_noname(ev, in->s[i].ls),
                           st->ts, x);
        }
    }
}


static double
ts_pq_math(ts_promql_fn_t fn, double x, int *ok)
{
    *ok = 1;

    switch (fn) {
    case TS_PQ_FN_ABS:
        return fabs(x);
    case TS_PQ_FN_ACOS:
        return acos(x);
    case TS_PQ_FN_ACOSH:
        return acosh(x);
    case TS_PQ_FN_ASIN:
        return asin(x);
    case TS_PQ_FN_ASINH:
        return asinh(x);
    case TS_PQ_FN_ATAN:
        return atan(x);
    case TS_PQ_FN_ATANH:
        return atanh(x);
    case TS_PQ_FN_CEIL:
        return ceil(x);
    case TS_PQ_FN_COS:
        return cos(x);
    case TS_PQ_FN_COSH:
        return cosh(x);
    case TS_PQ_FN_DEG:
        return x * 180 / M_PI;
    case TS_PQ_FN_EXP:
        return exp(x);
    case TS_PQ_FN_FLOOR:
        return floor(x);
    case TS_PQ_FN_LN:
        return log(x);
    case TS_PQ_FN_LOG10:
        return log10(x);
    case TS_PQ_FN_LOG2:
        return log2(x);
    case TS_PQ_FN_RAD:
        return x * M_PI / 180;
    case TS_PQ_FN_SGN:
        return x > 0 ? 1 : x < 0 ? -1 : x;
    case TS_PQ_FN_SIN:
        return sin(x);
    case TS_PQ_FN_SINH:
        return sinh(x);
    case TS_PQ_FN_SQRT:
        return sqrt(x);
    case TS_PQ_FN_TAN:
        return tan(x);
    case TS_PQ_FN_TANH:
        return tanh(x);
    default:
        *ok = 0;
        return NAN;
    }
}


/*
 * Go's time.Unix(int64(x), 0).UTC() fields with Go's arithmetic (time.go
 * absDate): int64(x) of NaN, an infinity or a value out of range is
 * INT64_MIN on amd64, and the seconds since the absolute zero year wrap
 * in uint64, so Prometheus answers those with a day in the year
 * 292277026596, not NaN.
 */

#define TS_PQ_UNIX_TO_ABS  (62135596800ull + 9223371966579724800ull)
#define TS_PQ_ABS_ZERO_YEAR  (-292277022399ll)

static double
ts_pq_date(ts_promql_fn_t fn, double x)
{
    static const int  before[] = { 0, 31, 59, 90, 120, 151, 181, 212, 243,
                                   273, 304, 334, 365 };
    int64_t   year, sec;
    uint64_t  abs, d, n, y;
    int       day, mon, leap;

    sec = (isnan(x) || x >= 9223372036854775807.0
           || x < -9223372036854775807.0)
          ? INT64_MIN : (int64_t) x;
    abs = (uint64_t) sec + TS_PQ_UNIX_TO_ABS;

    switch (fn) {
    case TS_PQ_FN_HOUR:
        return (double) (abs % 86400 / 3600);
    case TS_PQ_FN_MINUTE:
        return (double) (abs % 3600 / 60);
    case TS_PQ_FN_DAY_OF_WEEK:
        return (double) ((abs + 86400) % 604800 / 86400);
    default:
        break;
    }

    /* 400, 100, 4 and 1 year cycles, as absDate() */

    d = abs / 86400;
    n = d / 146097;
    y = 400 * n;
    d -= 146097 * n;
    n = d / 36524;
    n -= n >> 2;
    y += 100 * n;
    d -= 36524 * n;
    n = d / 1461;
    y += 4 * n;
    d -= 1461 * n;
    n = d / 365;
    n -= n >> 2;
    y += n;
    d -= 365 * n;

    year = (int64_t) y + TS_PQ_ABS_ZERO_YEAR;
    day = (int) d;
    leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);

    if (fn == TS_PQ_FN_YEAR) {
        return (double) year;
    }

    if (fn == TS_PQ_FN_DAY_OF_YEAR) {
        return day + 1;
    }

    if (leap && day == 31 + 29 - 1) {
        mon = 1;
        day = 29;

    } else {
        day -= leap && day > 31 + 29 - 1;
        mon = day / 31;
        if (day >= before[mon + 1]) {
            mon++;
        }
        day = day - before[mon] + 1;
    }

    switch (fn) {
    case TS_PQ_FN_DAY_OF_MONTH:
        return day;
    case TS_PQ_FN_MONTH:
        return mon + 1;
    default:
        return mon == 1 ? 28 + leap : before[mon + 1] - before[mon];
    }
}


/* whether two label sets are equal but for le */

static int
ts_pq_hq_same(const ts_pq_ls_t *a, const ts_pq_ls_t *b)
{
    static ts_promql_str_t     le = { "le", 2 };
    static ts_promql_labels_t  names = { &le, 1 };

    /* names are compared apart: the signature leaves __name__ out */

    const ts_label_t  *x, *y;

    x = ts_pq_ls_get(a, TS_METRIC_NAME_LABEL, TS_METRIC_NAME_LABEL_LEN);
    y = ts_pq_ls_get(b, TS_METRIC_NAME_LABEL, TS_METRIC_NAME_LABEL_LEN);

    if ((x == NULL) != (y == NULL)
        || (x != NULL && ts_labels_cmp(x, 1, y, 1) != 0))
    {
        return 0;
    }

    return ts_pq_ls_sig_equal(a, b, &names, 0);
}


/* histogram_quantile over classic buckets: per label set without le */

static void
ts_pq_histogram_quantile(ts_pq_ev_t *ev, ts_pq_step_t *st)
{
    double             le;
    uint32_t           i, k, ng, mask, *slot;
    uint64_t           h;
    ts_pq_vec_t       *in;
    ts_pq_hist_t      *hist;
    ts_pq_hgroup_t    *g;
    const ts_label_t  *l, *name;

    static ts_promql_str_t     le_name = { "le", 2 };
    static ts_promql_labels_t  names = { &le_name, 1 };

    in = &st->vec[1];
    g = ts_pq_alloc(ev, (in->n + 1) * sizeof(ts_pq_hgroup_t));
    ng = 0;

    for (mask = 15; mask < in->n * 2; mask = mask * 2 + 1) {
        /* void */
    }

    slot = ts_pq_alloc(ev, (mask + 1) * sizeof(uint32_t));
    memset(slot, 0, (mask + 1) * sizeof(uint32_t));

    /* native histograms first, as 2.42 */

    for (i = 0; i < in->n; i++) {
        hist = ts_pq_hist_get(ev, in->s[i].v);

        if (hist != NULL) {
            ts_pq_vec_push(ev, st->out, ts_pq_ls_noname(ev, in->s[i].ls),
                           st->ts, ts_pq_hist_quantile(st->scalar[0], hist));
        }
    }

    for (i = 0; i < in->n; i++) {
        l = ts_pq_ls_get(in->s[i].ls, "le", 2);

        if (ts_pq_is_hist(in->s[i].v)) {
            continue;
        }

        if (l == NULL
            || ts_pq_parse_float(l->value, l->value_len, &le) != TS_OK)
        {
            continue;
        }

        h = ts_pq_ls_sig(in->s[i].ls, &names, 0);
        name = ts_pq_ls_get(in->s[i].ls, TS_METRIC_NAME_LABEL,
                            TS_METRIC_NAME_LABEL_LEN);

        if (name != NULL) {
            h ^= ts_xxh64(name->value, name->value_len, 7);
        }

        for (k = (uint32_t) h & mask; slot[k]; k = (k + 1) & mask) {
            if (ts_pq_hq_same(g[slot[k] - 1].ls, in->s[i].ls)) {
                break;
            }
        }

        if (slot[k] == 0) {
            memset(&g[ng], 0, sizeof(ts_pq_hgroup_t));
            g[ng].ls = in->s[i].ls;
            slot[k] = ++ng;
        }

        k = slot[k] - 1;

        if (g[k].n == g[k].cap) {
            g[k].cap = g[k].cap ? g[k].cap * 2 : 16;
            g[k].b = ts_pq_realloc(ev, g[k].b,
                                   g[k].cap * sizeof(ts_pq_bucket_t));
        }

        g[k].b[g[k].n].le = le;
        g[k].b[g[k].n].count = in->s[i].v;
        g[k].n++;
    }

    for (k = 0; k < ng; k++) {
        ts_pq_vec_push(ev, st->out,
                       ts_pq_ls_noname(ev, ts_pq_ls_set(ev, g[k].ls, "le", 2,
                                                        "", 0)),
                       st->ts, ts_pq_bucket_quantile(st->scalar[0], g[k].b,
                                                     g[k].n));
        ts_pq_free(ev, g[k].b);
    }

    ts_pq_free(ev, slot);
    ts_pq_free(ev, g);
}


/* Prometheus's bucketQuantile, with coalescing and monotonicity fix */

static double
ts_pq_bucket_quantile(double q, ts_pq_bucket_t *b, uint32_t n)
{
    double    rank, start, end, count, max;
    uint32_t  i, k;

    if (isnan(q)) {
        return NAN;
    }

    if (q < 0) {
        return -INFINITY;
    }

    if (q > 1) {
        return INFINITY;
    }

    qsort(b, n, sizeof(ts_pq_bucket_t), ts_pq_bucket_cmp);

    if (!(isinf(b[n - 1].le) && b[n - 1].le > 0)) {
        return NAN;
    }

    for (i = 0, k = 1; k < n; k++) {
        if (b[k].le == b[i].le) {
            b[i].count += b[k].count;

        } else {
            b[++i] = b[k];
        }
    }

    n = i + 1;
    max = -INFINITY;

    for (i = 0; i < n; i++) {
        if (b[i].count > max) {
            max = b[i].count;

        } else if (b[i].count < max) {
            b[i].count = max;
        }
    }

    if (n < 2) {
        return NAN;
    }

    if (b[n - 1].count == 0) {
        return NAN;
    }

    rank = q * b[n - 1].count;

    for (i = 0; i < n - 1 && !(b[i].count >= rank); i++) {
        /* void */
    }

    if (i == n - 1) {
        return b[n - 2].le;
    }

    if (i == 0 && b[0].le <= 0) {
        return b[0].le;
    }

    start = 0;
    end = b[i].le;
    count = b[i].count;

    if (i > 0) {
        start = b[i - 1].le;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }

    return start + (end - start) * (rank / count);
}


static int
ts_pq_bucket_cmp(const void *a, const void *b)
{
    const ts_pq_bucket_t  *x, *y;

    x = a;
    y = b;

    return (x->le > y->le) - (x->le < y->le);
}


/* Prometheus's quantile(): linear between the closest ranks */

double
ts_pq_quantile(double q, double *v, uint32_t n)
{
    double    rank, w;
    uint32_t  lo, hi;

    if (n == 0 || isnan(q)) {
        return NAN;
    }

    if (q < 0) {
        return -INFINITY;
    }

    if (q > 1) {
        return INFINITY;
    }

    qsort(v, n, sizeof(double), ts_pq_double_cmp);

    rank = q * (n - 1);
    lo = (uint32_t) fmax(0, floor(rank));
    hi = (uint32_t) fmin(n - 1, lo + 1);
    w = rank - floor(rank);

    return v[lo] * (1 - w) + v[hi] * w;
}


/* ascending, NaN first (vectorByValueHeap's Less) */

static int
ts_pq_double_cmp(const void *a, const void *b)
{
    double  x, y;

    x = *(const double *) a;
    y = *(const double *) b;

    if (isnan(x) || isnan(y)) {
        return isnan(y) - isnan(x);
    }

    return (x > y) - (x < y);
}


/* Go's strconv.ParseFloat, near enough for le values */

static int
ts_pq_parse_float(const char *s, size_t len, double *v)
{
    char  buf[64], *end;

    if (len == 0 || len >= sizeof(buf) || s[0] == ' ' || s[0] == '\t'
        || s[0] == '\n')
    {
        return TS_ERR_INVALID;
    }

    memcpy(buf, s, len);
    buf[len] = '\0';

    *v = strtod(buf, &end);

    return *end == '\0' ? TS_OK : TS_ERR_INVALID;
}


static void
ts_pq_label_replace(ts_pq_ev_t *ev, ts_pq_step_t *st)
{
    int                     rc, ec;
    char                   *pat, *res, emsg[128];
    size_t                  rlen;
    uint32_t                i;
    PCRE2_SIZE              eoff, *ov;
    pcre2_code             *re;
    pcre2_match_data       *md;
    const ts_label_t       *src;
    const ts_promql_str_t  *dst, *tpl, *sname, *rx;

    dst = &st->val[1].str;
    tpl = &st->val[2].str;
    sname = &st->val[3].str;
    rx = &st->val[4].str;

    pat = ts_pq_alloc(ev, rx->len + 8);
    memcpy(pat, "^(?:", 4);
    memcpy(pat + 4, rx->data, rx->len);
    memcpy(pat + 4 + rx->len, ")$", 3);

    re = pcre2_compile((PCRE2_SPTR) pat, rx->len + 6,
                       PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK,
                       &ec, &eoff, NULL);
    ts_pq_free(ev, pat);

    if (re == NULL) {
        pcre2_get_error_message(ec, (PCRE2_UCHAR *) emsg, sizeof(emsg));
        ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                   "invalid regular expression in label_replace(): %s",
                   emsg);
    }

    if (!ts_label_name_valid(dst->data, dst->len)) {
        pcre2_code_free(re);
        ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                   "invalid destination label name in label_replace(): %s",
                   dst->data);
    }

    md = pcre2_match_data_create_from_pattern(re, NULL);
    if (md == NULL) {
        pcre2_code_free(re);
        ts_pq_fail(ev, TS_ERR_NOMEM, TS_PQE_INTERNAL, "out of memory");
    }

    for (i = 0; i < st->vec[0].n; i++) {
        src = ts_pq_ls_get(st->vec[0].s[i].ls, sname->data, sname->len);
        rc = pcre2_match(re, (PCRE2_SPTR) (src ? src->value : ""),
                         src ? src->value_len : 0, 0, 0, md, NULL);

        if (rc < 0) {
            ts_pq_vec_push(ev, st->out, st->vec[0].s[i].ls, st->ts,
                           st->vec[0].s[i].v);
            continue;
        }

        ov = pcre2_get_ovector_pointer(md);
        ts_pq_expand(ev, tpl, src ? src->value : "", src ? src->value_len : 0,
                     re, ov, pcre2_get_ovector_count(md), &res, &rlen);

        ts_pq_vec_push(ev, st->out,
                       ts_pq_ls_set(ev, st->vec[0].s[i].ls, dst->data,
                                    dst->len, res, rlen),
                       st->ts, st->vec[0].s[i].v);
    }

    pcre2_match_data_free(md);
    pcre2_code_free(re);
}


/* Go's Regexp.ExpandString: $1, ${1}, $name, ${name}, $$ */

static void
ts_pq_expand(ts_pq_ev_t *ev, const ts_promql_str_t *tpl, const char *src,
    size_t slen, pcre2_code *re, PCRE2_SIZE *ov, uint32_t nov, char **out,
    size_t *olen)
{
    int          num, brace;
    char         name[256];
    size_t       i, k, n, cap, len, nl;
    const char  *t;

    (void) slen;

    t = tpl->data;
    n = tpl->len;
    cap = n + 64;
    *out = ts_pq_palloc(ev, cap);
    len = 0;

#define TS_PQ_OUT(p, l)                                                   \
    do {                                                                  \
        if (len + (l) > cap) {                                            \
            char  *np_ = ts_pq_palloc(ev, (cap + (l)) * 2);               \
            memcpy(np_, *out, len);                                       \
            *out = np_;                                                   \
            cap = (cap + (l)) * 2;                                        \
        }                                                                 \
        memcpy(*out + len, (p), (l));                                     \
        len += (l);                                                       \
    } while (0)

    for (i = 0; i < n; i++) {
        if (t[i] != '$' || i + 1 == n) {
            TS_PQ_OUT(&t[i], 1);
            continue;
        }

        if (t[i + 1] == '$') {
            TS_PQ_OUT("$", 1);
            i++;
            continue;
        }

        brace = t[i + 1] == '{';
        k = i + 1 + brace;
        nl = 0;

        while (k < n && nl < sizeof(name) - 1
               && (t[k] == '_' || (t[k] >= 'a' && t[k] <= 'z')
                   || (t[k] >= 'A' && t[k] <= 'Z')
                   || (t[k] >= '0' && t[k] <= '9')))
        {
            name[nl++] = t[k++];
        }

        name[nl] = '\0';

        if (nl == 0 || (brace && (k == n || t[k] != '}'))) {
            TS_PQ_OUT("$", 1);      /* malformed: the $ as it is */
            continue;
        }

        i = k - 1 + brace;

        num = -1;

        if (name[0] >= '0' && name[0] <= '9') {
            num = 0;

            for (k = 0; k < nl; k++) {
                if (name[k] < '0' || name[k] > '9' || num > 100000) {
                    num = -2;
                    break;
                }

                num = num * 10 + (name[k] - '0');
            }
        }

        if (num == -1) {
            num = pcre2_substring_number_from_name(re, (PCRE2_SPTR) name);
        }

        if (num < 0 || (uint32_t) num >= nov || ov[2 * num] == PCRE2_UNSET) {
            continue;
        }

        TS_PQ_OUT(src + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
    }

#undef TS_PQ_OUT

    *olen = len;
}


static void
ts_pq_label_join(ts_pq_ev_t *ev, ts_pq_step_t *st)
{
    char                   *buf;
    size_t                  size, len;
    uint32_t                i, k, nargs;
    const ts_label_t       *l;
    const ts_promql_str_t  *dst, *sep, *s;

    nargs = st->e->u.call.nargs;
    dst = &st->val[1].str;
    sep = &st->val[2].str;

    if (!ts_label_name_valid(dst->data, dst->len)) {
        ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                   "invalid destination label name in label_join(): %s",
                   dst->data);
    }

    for (k = 3; k < nargs; k++) {
        s = &st->val[k].str;

        if (!ts_label_name_valid(s->data, s->len)) {
            ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                       "invalid source label name in label_join(): %s",
                       s->data);
        }
    }

    for (i = 0; i < st->vec[0].n; i++) {
        size = sep->len * nargs + 1;

        for (k = 3; k < nargs; k++) {
            s = &st->val[k].str;
            l = ts_pq_ls_get(st->vec[0].s[i].ls, s->data, s->len);
            size += l ? l->value_len : 0;
        }

        buf = ts_pq_alloc(ev, size);
        len = 0;

        for (k = 3; k < nargs; k++) {
            s = &st->val[k].str;
            l = ts_pq_ls_get(st->vec[0].s[i].ls, s->data, s->len);

            if (k > 3) {
                memcpy(buf + len, sep->data, sep->len);
                len += sep->len;
            }

            if (l != NULL) {
                memcpy(buf + len, l->value, l->value_len);
                len += l->value_len;
            }
        }

        ts_pq_vec_push(ev, st->out,
                       ts_pq_ls_set(ev, st->vec[0].s[i].ls, dst->data,
                                    dst->len, buf, len),
                       st->ts, st->vec[0].s[i].v);
        ts_pq_free(ev, buf);
    }
}


static void
ts_pq_sort(ts_pq_ev_t *ev, ts_pq_step_t *st, int desc)
{
    uint32_t      i;
    ts_pq_vec_t  *in;

    in = &st->vec[0];

    ts_pq_go_sort(ev, in->s, in->n, desc);

    for (i = 0; i < in->n; i++) {
        ts_pq_vec_push(ev, st->out, in->s[i].ls, st->ts, in->s[i].v);
    }
}
