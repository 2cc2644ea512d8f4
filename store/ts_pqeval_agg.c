/*
 * Copyright (C) ngx_tsdb authors
 *
 * PromQL aggregations, as Prometheus 2.42's aggregation(): groups in
 * the order their first sample comes, labels by "by" (those present) or
 * "without" (all others, the name dropped), sum without compensation,
 * avg by incremental mean guarded for infinities, stddev/stdvar by
 * Welford's method, topk/bottomk keeping each sample's own labels and
 * emitting a group's samples best first, count_values labelled with
 * FormatFloat(v, 'f', -1).
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ts_pqeval_int.h"


/* the running state of one group at one step */
typedef struct {
    double                  value;
    double                  mean;
    double                  count;      /* 0: no sample yet */
} ts_pq_acc_t;


typedef struct {
    const ts_pq_ls_t       *ls;
    ts_pq_acc_t             acc;
    ts_pq_vec_t             heap;       /* topk, bottomk, quantile */
} ts_pq_group_t;


/* a group of the whole range: its labels, where it first has a sample */
typedef struct {
    const ts_pq_ls_t       *ls;
    uint32_t                step;
    uint32_t                series;
    uint32_t                index;
} ts_pq_rgroup_t;


typedef struct {
    ts_pq_rgroup_t         *g;
    uint32_t                n;
    uint32_t                cap;
    uint32_t               *slot;       /* group + 1, 0: free */
    uint32_t                mask;
} ts_pq_groups_t;


/* the step loop's aggregation: groups over all steps, state per step */
typedef struct {
    uint32_t                gen;        /* on the input label sets */
    ts_pq_groups_t          gs;
    ts_pq_group_t          *g;          /* per group of gs */
    uint32_t               *stamp;      /* the step g[i] is of */
    uint32_t               *order;      /* of the groups at this step */
    uint32_t                cap;
    uint32_t                stamp_now;
} ts_pq_agg_st_t;


/* groups x steps at most for topk's and bottomk's heaps per cell */
#define TS_PQ_TOPK_CELLS  65536


/* a group's heap at one step, and the first series that reached it */
typedef struct {
    ts_pq_vec_t             heap;
    uint32_t                first;
} ts_pq_kcell_t;


static int ts_pq_agg_dense_op(ts_promql_agg_t op);
static void ts_pq_agg_dense(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    ts_pq_mat_t *in, ts_pq_val_t *v);
static void ts_pq_agg_emit(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    ts_pq_groups_t *gs, const ts_pq_acc_t *acc, uint32_t nsteps,
    ts_pq_val_t *v);
static int ts_pq_agg_fused(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    ts_pq_val_t *v);
static void ts_pq_agg_fused_one(ts_pq_ev_t *ev, const ts_pq_ls_t *ls,
    const uint32_t *step, const double *v, uint32_t n, void *data);
static int ts_pq_agg_topk(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    ts_pq_val_t *args, ts_pq_val_t *v);
static void ts_pq_agg_topk_emit(ts_pq_ev_t *ev, uint32_t ngroups,
    ts_pq_kcell_t *cell, uint32_t nsteps, int top, ts_pq_val_t *v);
static int ts_pq_agg_topk_fused(ts_pq_ev_t *ev,
    const ts_promql_aggregate_t *a, ts_pq_val_t *v);
static void ts_pq_agg_topk_one(ts_pq_ev_t *ev, const ts_pq_ls_t *ls,
    const uint32_t *step, const double *v, uint32_t n, void *data);
static int ts_pq_first_cmp(const void *a, const void *b);
static uint32_t ts_pq_group_of(ts_pq_ev_t *ev, ts_pq_groups_t *gs,
    const ts_pq_ls_t *ls);
static int ts_pq_rgroup_cmp(const void *a, const void *b);
static const ts_pq_ls_t *ts_pq_agg_ls(ts_pq_ev_t *ev,
    const ts_promql_aggregate_t *a, const ts_pq_ls_t *ls);
static void ts_pq_agg_step(ts_pq_ev_t *ev, ts_pq_step_t *st);
static void ts_pq_acc_init(ts_promql_agg_t op, ts_pq_acc_t *acc, double v);
static void ts_pq_acc_add(ts_promql_agg_t op, ts_pq_acc_t *acc, double v);
static double ts_pq_acc_value(ts_promql_agg_t op, const ts_pq_acc_t *acc);
static void ts_pq_agg_add(ts_pq_ev_t *ev, ts_promql_agg_t op,
    ts_pq_group_t *g, const ts_pq_sample_t *s, int64_t k);
static void ts_pq_heap_put(ts_pq_ev_t *ev, ts_pq_vec_t *h,
    const ts_pq_sample_t *s, int64_t k, int top);
static int ts_pq_heap_less(const ts_pq_vec_t *h, uint32_t i, uint32_t j,
    int top);
static void ts_pq_swap(ts_pq_sample_t *s, uint32_t i, uint32_t j);
static int ts_pq_sort_less(const ts_pq_sample_t *a,
    const ts_pq_sample_t *b, int desc);
static int ts_pq_agg_hist(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    ts_pq_mat_t *in, ts_pq_val_t *v);


void
ts_pq_aggregate(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_val_t *v)
{
    uint32_t                      n, i;
    ts_pq_val_t                   args[2];
    ts_pq_agg_st_t                as;
    const ts_promql_aggregate_t  *a;

    a = &e->u.aggregate;

    if (!ev->conf.no_fuse
        && ((ts_pq_agg_dense_op(a->op) && a->param == NULL
             && ts_pq_agg_fused(ev, a, v))
            || ((a->op == TS_PQ_AGG_TOPK || a->op == TS_PQ_AGG_BOTTOMK)
                && ts_pq_agg_topk_fused(ev, a, v))))
    {
        return;
    }

    memset(args, 0, sizeof(args));
    n = 1;

    ts_pq_eval(ev, a->expr, &args[0]);

    if (a->param != NULL) {
        ts_pq_eval(ev, a->param, &args[1]);
        n = 2;

        if (a->op == TS_PQ_AGG_COUNT_VALUES
            && !ts_label_name_valid(args[1].str.data, args[1].str.len))
        {
            ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                       "invalid label name \"%s\"", args[1].str.data);
        }
    }

    if (args[0].type == TS_PQ_TYPE_VECTOR
        && ts_pq_agg_hist(ev, a, &args[0].m, v))
    {
        /* sum over native histograms */

    } else if (ts_pq_agg_dense_op(a->op)
               && args[0].type == TS_PQ_TYPE_VECTOR)
    {
        ts_pq_agg_dense(ev, a, &args[0].m, v);

    } else if ((a->op == TS_PQ_AGG_TOPK || a->op == TS_PQ_AGG_BOTTOMK)
               && args[0].type == TS_PQ_TYPE_VECTOR
               && ts_pq_agg_topk(ev, a, args, v))
    {
        /* done */

    } else {
        memset(&as, 0, sizeof(ts_pq_agg_st_t));
        as.gen = ++ev->agg_gen;
        ts_pq_steps(ev, e, args, n, ts_pq_agg_step, &as, v);

        for (i = 0; i < as.cap; i++) {
            ts_pq_free(ev, as.g[i].heap.s);
        }

        ts_pq_free(ev, as.g);
        ts_pq_free(ev, as.stamp);
        ts_pq_free(ev, as.order);
        ts_pq_free(ev, as.gs.slot);
        ts_pq_free(ev, as.gs.g);
    }

    ts_pq_mat_free(ev, &args[0].m);
    ts_pq_mat_free(ev, &args[1].m);
}


/* the aggregations that keep a number per group and step */

static int
ts_pq_agg_dense_op(ts_promql_agg_t op)
{
    switch (op) {
    case TS_PQ_AGG_SUM:
    case TS_PQ_AGG_AVG:
    case TS_PQ_AGG_COUNT:
    case TS_PQ_AGG_MIN:
    case TS_PQ_AGG_MAX:
    case TS_PQ_AGG_GROUP:
    case TS_PQ_AGG_STDDEV:
    case TS_PQ_AGG_STDVAR:
        return 1;
    default:
        return 0;
    }
}


/*
 * Such an aggregation over the whole range at once: each input series'
 * group is found once (not per sample per step), and its points go into
 * the group's row of a dense groups x steps table.  Series by series in
 * input order is, at every step, the order the step loop would add the
 * samples in, so sums round alike; the groups come out in the step
 * loop's order too: by the first step with a sample, then by the first
 * series with a sample at that step.
 */

static void
ts_pq_agg_dense(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    ts_pq_mat_t *in, ts_pq_val_t *v)
{
    int64_t           off;
    uint32_t          i, k, g, nsteps, step, *gidx;
    ts_pq_acc_t      *acc, *c;
    ts_pq_series_t   *s;
    ts_pq_groups_t    gs;

    memset(v, 0, sizeof(ts_pq_val_t));
    v->type = TS_PQ_TYPE_VECTOR;

    if (ev->start > ev->end) {
        return;
    }

    nsteps = ts_pq_steps_left(ev, ev->start);
    memset(&gs, 0, sizeof(ts_pq_groups_t));
    gidx = ts_pq_alloc(ev, (in->n + 1) * sizeof(uint32_t));

    for (i = 0; i < in->n; i++) {
        ts_pq_tick(ev);
        s = &in->s[i];
        gidx[i] = UINT32_MAX;

        for (k = 0; k < s->n; k++) {
            off = s->p[k].t - ev->start;

            if (off >= 0 && off % ev->interval == 0
                && s->p[k].t <= ev->end)
            {
                break;
            }
        }

        if (k == s->n) {
            continue;
        }

        step = (uint32_t) ((s->p[k].t - ev->start) / ev->interval);
        g = ts_pq_group_of(ev, &gs, ts_pq_agg_ls(ev, a, s->ls));
        gidx[i] = g;

        if (step < gs.g[g].step) {
            gs.g[g].step = step;
            gs.g[g].series = i;
        }
    }

    if (gs.n == 0) {
        ts_pq_free(ev, gidx);
        ts_pq_free(ev, gs.slot);
        ts_pq_free(ev, gs.g);
        return;
    }

    if ((uint64_t) gs.n * nsteps * sizeof(ts_pq_acc_t)
        > ev->conf.max_memory)
    {
        ts_pq_fail(ev, TS_ERR_LIMIT, TS_PQE_EXECUTION,
                   "query processing would use more than %zu bytes of "
                   "memory", ev->conf.max_memory);
    }

    acc = ts_pq_alloc(ev, (size_t) gs.n * nsteps * sizeof(ts_pq_acc_t));
    memset(acc, 0, (size_t) gs.n * nsteps * sizeof(ts_pq_acc_t));

    for (i = 0; i < in->n; i++) {
        if (gidx[i] == UINT32_MAX) {
            continue;
        }

        ts_pq_tick(ev);
        s = &in->s[i];
        c = &acc[(size_t) gidx[i] * nsteps];

        for (k = 0; k < s->n; k++) {
            off = s->p[k].t - ev->start;

            if (off < 0 || off % ev->interval != 0 || s->p[k].t > ev->end) {
                continue;
            }

            step = (uint32_t) (off / ev->interval);

            if (c[step].count == 0) {
                ts_pq_acc_init(a->op, &c[step], s->p[k].v);

            } else {
                ts_pq_acc_add(a->op, &c[step], s->p[k].v);
            }
        }
    }

    ts_pq_free(ev, gidx);

    ts_pq_agg_emit(ev, a, &gs, acc, nsteps, v);

    ts_pq_free(ev, acc);
    ts_pq_free(ev, gs.slot);
    ts_pq_free(ev, gs.g);
}


/*
 * The groups of a dense table (a row of nsteps per group index) into v:
 * by the first step with a sample, then by the first series with a
 * sample at that step (reorders gs)
 */

static void
ts_pq_agg_emit(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    ts_pq_groups_t *gs, const ts_pq_acc_t *acc, uint32_t nsteps,
    ts_pq_val_t *v)
{
    uint32_t             j, n, step;
    ts_pq_series_t      *d;
    ts_pq_rgroup_t      *rg;
    const ts_pq_acc_t   *c;

    if (gs->n == 0) {
        return;
    }

    rg = gs->g;
    qsort(rg, gs->n, sizeof(ts_pq_rgroup_t), ts_pq_rgroup_cmp);

    for (j = 0; j < gs->n; j++) {
        ts_pq_tick(ev);
        c = &acc[(size_t) rg[j].index * nsteps];

        for (n = 0, step = 0; step < nsteps; step++) {
            n += c[step].count != 0;
        }

        d = ts_pq_mat_add(ev, &v->m, rg[j].ls);
        ts_pq_series_reserve(ev, d, n);
        ts_pq_samples(ev, n);

        for (step = 0; step < nsteps; step++) {
            if (c[step].count == 0) {
                continue;
            }

            d->p[d->n].t = ev->start + (int64_t) step * ev->interval;
            d->p[d->n].v = ts_pq_acc_value(a->op, &c[step]);
            d->n++;
        }
    }
}


/* a dense aggregation fused with the range function under it */

typedef struct {
    ts_pq_fuse_t                  fu;
    const ts_promql_aggregate_t  *a;
    ts_pq_groups_t                gs;
    ts_pq_acc_t                  *acc;      /* rows x nsteps */
    uint32_t                      rows;
    uint32_t                      nsteps;
    uint32_t                      series;   /* given so far */
    int                           over;     /* the table would pass
                                               max_memory */
} ts_pq_fagg_t;


/*
 * sum, avg, count, min, max, group, stddev, stdvar of a range function
 * over a range selector: each series' output goes straight into its
 * group's row of the table, no series of its own.  The series come in
 * the order the range function would have output them, so everything
 * is as ts_pq_agg_dense() over that output would have it: the sums per
 * step in input order, the groups' order, the samples counted (the
 * function's output stays counted until the end), the errors and their
 * order (max_samples while reading, a repeated label set, the table's
 * size).  0: not such an expression, or a sum that met a native
 * histogram (ts_pq_agg_hist()'s): nothing done.
 */

static int
ts_pq_agg_fused(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    ts_pq_val_t *v)
{
    int           done;
    ts_pq_fagg_t  fa;

    if (ev->start > ev->end) {
        return 0;
    }

    memset(&fa, 0, sizeof(ts_pq_fagg_t));
    fa.a = a;
    fa.nsteps = ts_pq_steps_left(ev, ev->start);
    fa.fu.fn = ts_pq_agg_fused_one;
    fa.fu.data = &fa;
    fa.fu.step = ts_pq_alloc(ev, fa.nsteps * sizeof(uint32_t));
    fa.fu.v = ts_pq_alloc(ev, fa.nsteps * sizeof(double));

    done = ts_pq_call_fused(ev, a->expr, &fa.fu) && !fa.fu.stop;

    ts_pq_free(ev, fa.fu.step);
    ts_pq_free(ev, fa.fu.v);
    ts_pq_free(ev, fa.fu.ls);

    if (done) {
        memset(v, 0, sizeof(ts_pq_val_t));
        v->type = TS_PQ_TYPE_VECTOR;

        if (fa.over) {
            ts_pq_fail(ev, TS_ERR_LIMIT, TS_PQE_EXECUTION,
                       "query processing would use more than %zu bytes of "
                       "memory", ev->conf.max_memory);
        }

        ts_pq_agg_emit(ev, a, &fa.gs, fa.acc, fa.nsteps, v);
    }

    /* the function's output is gone now */

    ts_pq_samples(ev, -(int64_t) fa.fu.held);

    ts_pq_free(ev, fa.acc);
    ts_pq_free(ev, fa.gs.slot);
    ts_pq_free(ev, fa.gs.g);

    return done;
}


/* one series' output of the range function into its group's row */

static void
ts_pq_agg_fused_one(ts_pq_ev_t *ev, const ts_pq_ls_t *ls,
    const uint32_t *step, const double *v, uint32_t n, void *data)
{
    int                           hist;
    double                        x;
    size_t                        max;
    uint32_t                      g, i, k, rows;
    ts_pq_acc_t                  *c;
    ts_pq_fagg_t                 *fa;
    const ts_promql_aggregate_t  *a;

    fa = data;
    a = fa->a;
    i = fa->series++;
    hist = 0;

    for (k = 0; ev->nhist > 0 && k < n; k++) {
        if (ts_pq_is_hist(v[k])) {
            hist = 1;
            break;
        }
    }

    if (hist && a->op == TS_PQ_AGG_SUM) {
        /* a sum of histograms: ts_pq_agg_hist() over the whole output */
        fa->fu.stop = 1;
        return;
    }

    g = ts_pq_group_of(ev, &fa->gs, ts_pq_agg_ls(ev, a, ls));

    if (step[0] < fa->gs.g[g].step) {
        fa->gs.g[g].step = step[0];
        fa->gs.g[g].series = i;
    }

    if (fa->gs.n > fa->rows && !fa->over) {
        /* as ts_pq_agg_dense() checks the table it would allocate */

        max = ev->conf.max_memory / (fa->nsteps * sizeof(ts_pq_acc_t));

        if (fa->gs.n > max) {
            fa->over = 1;
            ts_pq_free(ev, fa->acc);
            fa->acc = NULL;

        } else {
            rows = fa->rows ? fa->rows * 2 : 16;
            rows = rows < max ? rows : (uint32_t) max;
            fa->acc = ts_pq_realloc(ev, fa->acc, (size_t) rows * fa->nsteps
                                                 * sizeof(ts_pq_acc_t));
            memset(&fa->acc[(size_t) fa->rows * fa->nsteps], 0,
                   (size_t) (rows - fa->rows) * fa->nsteps
                   * sizeof(ts_pq_acc_t));
            fa->rows = rows;
        }
    }

    if (fa->over) {
        return;
    }

    c = &fa->acc[(size_t) g * fa->nsteps];

    for (k = 0; k < n; k++) {
        x = v[k];

        if (hist && ts_pq_is_hist(x)) {
            /* 2.42's other aggregations read a histogram sample's V */
            x = 0;
        }

        if (c[step[k]].count == 0) {
            ts_pq_acc_init(a->op, &c[step[k]], x);

        } else {
            ts_pq_acc_add(a->op, &c[step[k]], x);
        }
    }
}



/*
 * topk and bottomk over the whole range at once, as the dense
 * aggregations: each series' group found once, its points put into its
 * group's heap at their steps, series by series in input order (the
 * order the step loop would give each heap its samples in); then, step
 * by step, the groups in the order of their first series at that step,
 * each heap sorted, into the output series.  0 (nothing done) when the
 * groups times steps are too many for a heap each: the step loop then.
 */

static int
ts_pq_agg_topk(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    ts_pq_val_t *args, ts_pq_val_t *v)
{
    int               top;
    double            p;
    int64_t           off, *kv;
    uint32_t          i, j, nsteps, step, *gidx;
    ts_pq_sample_t    smp;
    ts_pq_kcell_t    *cell, *c;
    ts_pq_series_t   *s, *ps;
    ts_pq_groups_t    gs;

    if (ev->start > ev->end) {
        return 0;
    }

    nsteps = ts_pq_steps_left(ev, ev->start);
    memset(&gs, 0, sizeof(ts_pq_groups_t));
    gidx = ts_pq_alloc(ev, (args[0].m.n + 1) * sizeof(uint32_t));

    for (i = 0; i < args[0].m.n; i++) {
        ts_pq_tick(ev);
        s = &args[0].m.s[i];
        gidx[i] = s->n ? ts_pq_group_of(ev, &gs,
                                         ts_pq_agg_ls(ev, a, s->ls))
                       : UINT32_MAX;
    }

    if (gs.n == 0 || (uint64_t) gs.n * nsteps > TS_PQ_TOPK_CELLS) {
        ts_pq_free(ev, gidx);
        ts_pq_free(ev, gs.slot);
        ts_pq_free(ev, gs.g);
        return 0;
    }

    /* k per step, as the step loop reads the parameter: NaN if none */

    kv = ts_pq_alloc(ev, (size_t) nsteps * sizeof(int64_t) + 8);
    ps = args[1].m.n ? &args[1].m.s[0] : NULL;
    top = a->op == TS_PQ_AGG_TOPK;

    cell = ts_pq_alloc(ev, ((size_t) gs.n * nsteps + 1)
                           * sizeof(ts_pq_kcell_t));
    memset(cell, 0, ((size_t) gs.n * nsteps + 1) * sizeof(ts_pq_kcell_t));

    /* which steps have an input sample at all: k is checked at those */

    for (i = 0; i < args[0].m.n; i++) {
        s = &args[0].m.s[i];

        for (j = 0; j < s->n; j++) {
            off = s->p[j].t - ev->start;

            if (off >= 0 && off % ev->interval == 0
                && s->p[j].t <= ev->end)
            {
                cell[(off / ev->interval)].first = 1;
            }
        }
    }

    for (step = 0, j = 0; step < nsteps; step++) {
        p = NAN;

        if (ps != NULL) {
            while (j < ps->n
                   && ps->p[j].t < ev->start + (int64_t) step * ev->interval)
            {
                j++;
            }

            if (j < ps->n
                && ps->p[j].t == ev->start + (int64_t) step * ev->interval)
            {
                p = ps->p[j].v;
            }
        }

        kv[step] = 0;

        if (!cell[step].first) {
            continue;
        }

        if (!(p >= -9.223372036854775e18 && p <= 9.223372036854775e18)) {
            ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                       "Scalar value %s overflows int64",
                       isnan(p) ? "NaN" : p > 0 ? "+Inf" : "-Inf");
        }

        kv[step] = (int64_t) p;
    }

    memset(cell, 0, (size_t) nsteps * sizeof(ts_pq_kcell_t));

    /* the heaps, series by series */

    for (i = 0; i < args[0].m.n; i++) {
        if (gidx[i] == UINT32_MAX) {
            continue;
        }

        ts_pq_tick(ev);
        s = &args[0].m.s[i];

        for (j = 0; j < s->n; j++) {
            off = s->p[j].t - ev->start;

            if (off < 0 || off % ev->interval != 0 || s->p[j].t > ev->end) {
                continue;
            }

            step = (uint32_t) (off / ev->interval);

            if (kv[step] < 1) {
                continue;
            }

            c = &cell[(size_t) gidx[i] * nsteps + step];
            smp.ls = s->ls;
            smp.t = s->p[j].t;
            smp.v = s->p[j].v;

            if (c->heap.n == 0) {
                c->first = i;
            }

            ts_pq_heap_put(ev, &c->heap, &smp, kv[step], top);
        }
    }

    ts_pq_free(ev, gidx);

    ts_pq_agg_topk_emit(ev, gs.n, cell, nsteps, top, v);

    ts_pq_free(ev, cell);
    ts_pq_free(ev, kv);
    ts_pq_free(ev, gs.slot);
    ts_pq_free(ev, gs.g);

    return 1;
}


/*
 * The heaps of ngroups x nsteps cells into v, step by step as the step
 * loop: at each step the groups in the order of their first series
 * there, each heap sorted; the heaps are freed
 */

static void
ts_pq_agg_topk_emit(ts_pq_ev_t *ev, uint32_t ngroups, ts_pq_kcell_t *cell,
    uint32_t nsteps, int top, ts_pq_val_t *v)
{
    uint32_t         i, j, g, n, step;
    uint64_t        *first;
    ts_pq_map_t      map;
    ts_pq_kcell_t   *c;

    memset(v, 0, sizeof(ts_pq_val_t));
    v->type = TS_PQ_TYPE_VECTOR;
    ts_pq_map_init(ev, &map, &v->m);

    first = ts_pq_alloc(ev, ((size_t) ngroups + 1) * sizeof(uint64_t));

    for (step = 0; step < nsteps; step++) {
        ts_pq_tick(ev);

        for (n = 0, g = 0; g < ngroups; g++) {
            c = &cell[(size_t) g * nsteps + step];

            if (c->heap.n > 0) {
                first[n++] = (uint64_t) c->first << 32 | g;
            }
        }

        qsort(first, n, sizeof(uint64_t), ts_pq_first_cmp);

        for (i = 0; i < n; i++) {
            c = &cell[(size_t) (first[i] & 0xffffffff) * nsteps + step];
            ts_pq_go_sort(ev, c->heap.s, c->heap.n, top);

            for (j = 0; j < c->heap.n; j++) {
                ts_pq_map_put(ev, &map, c->heap.s[j].ls,
                              ev->start + (int64_t) step * ev->interval,
                              c->heap.s[j].v);
            }

            ts_pq_free(ev, c->heap.s);
            c->heap.s = NULL;
        }
    }

    ts_pq_free(ev, first);
    ts_pq_free(ev, map.slot);
}


/* topk or bottomk fused with the range function under it */

typedef struct {
    ts_pq_fuse_t                  fu;
    const ts_promql_aggregate_t  *a;
    ts_pq_groups_t                gs;
    ts_pq_kcell_t                *cell;     /* rows x nsteps */
    uint32_t                      rows;
    uint32_t                      nsteps;
    uint32_t                      series;   /* given so far */
    int64_t                       k;
    int                           top;
} ts_pq_ktop_t;


/*
 * topk(k, rangefn(sel[r])) and bottomk with k a number: as
 * ts_pq_agg_topk() over the function's output, each series' points put
 * into its group's heaps as they come, with no series of its own; k, a
 * literal, is the same at every step.  The parameter is evaluated after
 * the function, as unfused, so samples count alike.  0 (nothing done):
 * not such an expression, a k the step loop reports or ignores, or more
 * groups x steps than heaps are kept for (then the step loop, from the
 * start).
 */

static int
ts_pq_agg_topk_fused(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    ts_pq_val_t *v)
{
    int                      done;
    double                   k;
    size_t                   i;
    ts_pq_val_t              param;
    ts_pq_ktop_t             kt;
    const ts_promql_expr_t  *pe;

    pe = ts_pq_unparen(a->param);

    if (pe->kind != TS_PQ_NUMBER || ev->start > ev->end) {
        return 0;
    }

    k = pe->u.number;

    if (!(k >= 1 && k <= 9.223372036854775e18)) {
        return 0;
    }

    memset(&kt, 0, sizeof(ts_pq_ktop_t));
    kt.a = a;
    kt.k = (int64_t) k;
    kt.top = a->op == TS_PQ_AGG_TOPK;
    kt.nsteps = ts_pq_steps_left(ev, ev->start);
    kt.fu.fn = ts_pq_agg_topk_one;
    kt.fu.data = &kt;
    kt.fu.step = ts_pq_alloc(ev, kt.nsteps * sizeof(uint32_t));
    kt.fu.v = ts_pq_alloc(ev, kt.nsteps * sizeof(double));

    done = ts_pq_call_fused(ev, a->expr, &kt.fu) && !kt.fu.stop;

    ts_pq_free(ev, kt.fu.step);
    ts_pq_free(ev, kt.fu.v);
    ts_pq_free(ev, kt.fu.ls);

    if (done) {
        memset(&param, 0, sizeof(ts_pq_val_t));
        ts_pq_eval(ev, a->param, &param);

        if (kt.gs.n > 0) {
            ts_pq_agg_topk_emit(ev, kt.gs.n, kt.cell, kt.nsteps, kt.top, v);

        } else {
            memset(v, 0, sizeof(ts_pq_val_t));
            v->type = TS_PQ_TYPE_VECTOR;
        }

        ts_pq_mat_free(ev, &param.m);
    }

    ts_pq_samples(ev, -(int64_t) kt.fu.held);

    for (i = 0; i < (size_t) kt.rows * kt.nsteps; i++) {
        ts_pq_free(ev, kt.cell[i].heap.s);
    }

    ts_pq_free(ev, kt.cell);
    ts_pq_free(ev, kt.gs.slot);
    ts_pq_free(ev, kt.gs.g);

    return done;
}


/* one series' output of the range function into its group's heaps */

static void
ts_pq_agg_topk_one(ts_pq_ev_t *ev, const ts_pq_ls_t *ls,
    const uint32_t *step, const double *v, uint32_t n, void *data)
{
    int              hist;
    uint32_t         g, i, k, rows, max;
    ts_pq_ktop_t    *kt;
    ts_pq_kcell_t   *c;
    ts_pq_sample_t   smp;

    kt = data;
    i = kt->series++;
    hist = 0;

    for (k = 0; ev->nhist > 0 && k < n; k++) {
        if (ts_pq_is_hist(v[k])) {
            hist = 1;
            break;
        }
    }

    g = ts_pq_group_of(ev, &kt->gs, ts_pq_agg_ls(ev, kt->a, ls));

    if (kt->gs.n > kt->rows) {
        max = TS_PQ_TOPK_CELLS / kt->nsteps;

        if (kt->gs.n > max) {
            /* as ts_pq_agg_topk(): the step loop's */
            kt->fu.stop = 1;
            return;
        }

        rows = kt->rows ? kt->rows * 2 : 4;
        rows = rows < max ? rows : max;
        kt->cell = ts_pq_realloc(ev, kt->cell, (size_t) rows * kt->nsteps
                                               * sizeof(ts_pq_kcell_t));
        memset(&kt->cell[(size_t) kt->rows * kt->nsteps], 0,
               (size_t) (rows - kt->rows) * kt->nsteps
               * sizeof(ts_pq_kcell_t));
        kt->rows = rows;
    }

    smp.ls = ls;

    for (k = 0; k < n; k++) {
        c = &kt->cell[(size_t) g * kt->nsteps + step[k]];
        smp.t = ev->start + (int64_t) step[k] * ev->interval;
        smp.v = v[k];

        if (hist && ts_pq_is_hist(smp.v)) {
            /* 2.42's other aggregations read a histogram sample's V */
            smp.v = 0;
        }

        if (c->heap.n == 0) {
            c->first = i;
        }

        ts_pq_heap_put(ev, &c->heap, &smp, kt->k, kt->top);
    }
}


static int
ts_pq_first_cmp(const void *a, const void *b)
{
    uint64_t  x, y;

    x = *(const uint64_t *) a;
    y = *(const uint64_t *) b;

    return (x > y) - (x < y);
}


/* the index of ls's group in gs, a new one at the end if none yet */

static uint32_t
ts_pq_group_of(ts_pq_ev_t *ev, ts_pq_groups_t *gs, const ts_pq_ls_t *ls)
{
    uint32_t         i, j, k, size, *slot;
    ts_pq_rgroup_t  *g;

    if (gs->slot == NULL) {
        gs->mask = 63;
        gs->slot = ts_pq_alloc(ev, 64 * sizeof(uint32_t));
        memset(gs->slot, 0, 64 * sizeof(uint32_t));
    }

    for (i = (uint32_t) ls->hash & gs->mask; gs->slot[i];
         i = (i + 1) & gs->mask)
    {
        if (ts_pq_ls_equal(gs->g[gs->slot[i] - 1].ls, ls)) {
            return gs->slot[i] - 1;
        }
    }

    if (gs->n == gs->cap) {
        gs->cap = gs->cap ? gs->cap * 2 : 16;
        gs->g = ts_pq_realloc(ev, gs->g, gs->cap * sizeof(ts_pq_rgroup_t));
    }

    g = &gs->g[gs->n];
    g->ls = ls;
    g->step = UINT32_MAX;
    g->series = UINT32_MAX;
    g->index = gs->n;
    gs->slot[i] = ++gs->n;

    if (gs->n * 2 > gs->mask) {
        size = (gs->mask + 1) * 2;
        slot = ts_pq_alloc(ev, size * sizeof(uint32_t));
        memset(slot, 0, size * sizeof(uint32_t));

        for (k = 0; k < gs->n; k++) {
            for (j = (uint32_t) gs->g[k].ls->hash & (size - 1); slot[j];
                 j = (j + 1) & (size - 1))
            {
                /* void */
            }

            slot[j] = k + 1;
        }

        ts_pq_free(ev, gs->slot);
        gs->slot = slot;
        gs->mask = size - 1;
    }

    return gs->n - 1;
}


static int
ts_pq_rgroup_cmp(const void *a, const void *b)
{
    const ts_pq_rgroup_t  *x, *y;

    x = a;
    y = b;

    if (x->step != y->step) {
        return x->step < y->step ? -1 : 1;
    }

    return (x->series > y->series) - (x->series < y->series);
}


/* the labels of ls's group: "by" keeps those listed, "without" drops
   those and the name */

static const ts_pq_ls_t *
ts_pq_agg_ls(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    const ts_pq_ls_t *ls)
{
    if (a->without) {
        return ts_pq_ls_filter(ev, ls, &a->grouping, 0, 1);
    }

    return ts_pq_ls_filter(ev, ls, &a->grouping, 1, 0);
}


static void
ts_pq_agg_step(ts_pq_ev_t *ev, ts_pq_step_t *st)
{
    char                          num[64];
    double                        p, *vals;
    int64_t                       k;
    uint32_t                      i, j, gi, n, nord;
    ts_pq_vec_t                  *in;
    ts_pq_group_t                *g;
    ts_pq_sample_t                smp;
    ts_pq_ls_t                   *m;
    ts_pq_agg_st_t               *as;
    const ts_pq_ls_t             *ls;
    const ts_label_t             *vlab;
    const ts_promql_str_t        *vl;
    const ts_promql_aggregate_t  *a;

    a = &st->e->u.aggregate;
    as = st->data;
    in = &st->vec[0];
    p = st->scalar[1];
    vl = &st->val[1].str;
    k = 0;

    if (in->n == 0) {
        return;
    }

    if (a->op == TS_PQ_AGG_TOPK || a->op == TS_PQ_AGG_BOTTOMK) {
        if (!(p >= -9.223372036854775e18 && p <= 9.223372036854775e18)) {
            ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                       "Scalar value %s overflows int64",
                       isnan(p) ? "NaN" : p > 0 ? "+Inf" : "-Inf");
        }

        k = (int64_t) p;

        if (k < 1) {
            return;
        }
    }

    /* a group's state is fresh at a step when its stamp is not this one */

    as->stamp_now++;
    nord = 0;

    for (i = 0; i < in->n; i++) {
        smp = in->s[i];

        if (a->op == TS_PQ_AGG_COUNT_VALUES) {
            ts_pq_go_format(smp.v, num, sizeof(num));
            smp.ls = ts_pq_ls_set(ev, smp.ls, vl->data, vl->len, num,
                                  strlen(num));

            /* the value's label stays: "without" drops only those named */
            ls = ts_pq_agg_ls(ev, a, smp.ls);
            vlab = ts_pq_ls_get(smp.ls, vl->data, vl->len);
            ls = ts_pq_ls_set(ev, ls, vl->data, vl->len, vlab->value,
                              vlab->value_len);
            gi = ts_pq_group_of(ev, &as->gs, ls);

        } else if (smp.ls->gen == as->gen) {
            gi = smp.ls->gidx;

        } else {
            gi = ts_pq_group_of(ev, &as->gs, ts_pq_agg_ls(ev, a, smp.ls));
            m = (ts_pq_ls_t *) smp.ls;
            m->gen = as->gen;
            m->gidx = gi;
        }

        if (as->gs.n > as->cap) {
            n = as->gs.n * 2;
            as->g = ts_pq_realloc(ev, as->g, n * sizeof(ts_pq_group_t));
            as->stamp = ts_pq_realloc(ev, as->stamp, n * sizeof(uint32_t));
            as->order = ts_pq_realloc(ev, as->order, n * sizeof(uint32_t));
            memset(&as->g[as->cap], 0,
                   (n - as->cap) * sizeof(ts_pq_group_t));
            memset(&as->stamp[as->cap], 0,
                   (n - as->cap) * sizeof(uint32_t));
            as->cap = n;
        }

        g = &as->g[gi];

        if (as->stamp[gi] != as->stamp_now) {
            as->stamp[gi] = as->stamp_now;
            as->order[nord++] = gi;
            g->ls = as->gs.g[gi].ls;
            g->heap.n = 0;
            ts_pq_acc_init(a->op, &g->acc, smp.v);

            switch (a->op) {
            case TS_PQ_AGG_TOPK:
            case TS_PQ_AGG_BOTTOMK:
            case TS_PQ_AGG_QUANTILE:
                ts_pq_vec_push(ev, &g->heap, smp.ls, smp.t, smp.v);
                break;
            default:
                break;
            }

            continue;
        }

        ts_pq_agg_add(ev, a->op, g, &smp, k);
    }

    for (i = 0; i < nord; i++) {
        g = &as->g[as->order[i]];

        switch (a->op) {

        case TS_PQ_AGG_QUANTILE:
            vals = ts_pq_alloc(ev, g->heap.n * sizeof(double));

            for (j = 0; j < g->heap.n; j++) {
                vals[j] = g->heap.s[j].v;
            }

            g->acc.value = ts_pq_quantile(p, vals, g->heap.n);
            ts_pq_free(ev, vals);
            break;

        case TS_PQ_AGG_TOPK:
        case TS_PQ_AGG_BOTTOMK:
            ts_pq_go_sort(ev, g->heap.s, g->heap.n,
                          a->op == TS_PQ_AGG_TOPK);

            for (j = 0; j < g->heap.n; j++) {
                smp = g->heap.s[j];
                ts_pq_vec_push(ev, st->out, smp.ls, st->ts, smp.v);
            }

            continue;

        default:
            g->acc.value = ts_pq_acc_value(a->op, &g->acc);
            break;
        }

        ts_pq_vec_push(ev, st->out, g->ls, st->ts, g->acc.value);
    }
}


/* a group's state from its first sample */

static void
ts_pq_acc_init(ts_promql_agg_t op, ts_pq_acc_t *acc, double v)
{
    acc->value = v;
    acc->mean = v;
    acc->count = 1;

    switch (op) {
    case TS_PQ_AGG_STDDEV:
    case TS_PQ_AGG_STDVAR:
        acc->value = 0;
        break;
    case TS_PQ_AGG_GROUP:
        acc->value = 1;
        break;
    default:
        break;
    }
}


/* the next sample into a group's state (not topk, bottomk, quantile) */

static void
ts_pq_acc_add(ts_promql_agg_t op, ts_pq_acc_t *acc, double v)
{
    double  delta;

    switch (op) {

    case TS_PQ_AGG_SUM:
        acc->value += v;
        break;

    case TS_PQ_AGG_AVG:
        acc->count++;

        if (isinf(acc->mean)) {
            if (isinf(v) && (acc->mean > 0) == (v > 0)) {
                break;
            }

            if (!isinf(v) && !isnan(v)) {
                break;
            }
        }

        acc->mean += v / acc->count - acc->mean / acc->count;
        break;

    case TS_PQ_AGG_GROUP:
        break;

    case TS_PQ_AGG_COUNT:
    case TS_PQ_AGG_COUNT_VALUES:
        acc->count++;
        break;

    case TS_PQ_AGG_MAX:
        if (acc->value < v || isnan(acc->value)) {
            acc->value = v;
        }

        break;

    case TS_PQ_AGG_MIN:
        if (acc->value > v || isnan(acc->value)) {
            acc->value = v;
        }

        break;

    case TS_PQ_AGG_STDDEV:
    case TS_PQ_AGG_STDVAR:
        acc->count++;
        delta = v - acc->mean;
        acc->mean += delta / acc->count;
        acc->value += delta * (v - acc->mean);
        break;

    default:
        break;
    }
}


/* a group's result (not topk, bottomk, quantile) */

static double
ts_pq_acc_value(ts_promql_agg_t op, const ts_pq_acc_t *acc)
{
    switch (op) {
    case TS_PQ_AGG_AVG:
        return acc->mean;
    case TS_PQ_AGG_COUNT:
    case TS_PQ_AGG_COUNT_VALUES:
        return acc->count;
    case TS_PQ_AGG_STDVAR:
        return acc->value / acc->count;
    case TS_PQ_AGG_STDDEV:
        return sqrt(acc->value / acc->count);
    default:
        return acc->value;
    }
}


static void
ts_pq_agg_add(ts_pq_ev_t *ev, ts_promql_agg_t op, ts_pq_group_t *g,
    const ts_pq_sample_t *s, int64_t k)
{
    switch (op) {

    case TS_PQ_AGG_TOPK:
    case TS_PQ_AGG_BOTTOMK:
        ts_pq_heap_put(ev, &g->heap, s, k, op == TS_PQ_AGG_TOPK);
        break;

    case TS_PQ_AGG_QUANTILE:
        ts_pq_vec_push(ev, &g->heap, s->ls, s->t, s->v);
        break;

    default:
        ts_pq_acc_add(op, &g->acc, s->v);
        break;
    }
}


/*
 * Keeps the k best samples exactly as Prometheus 2.42 does, in Go's
 * container/heap over vectorByValueHeap (topk) or
 * vectorByReverseValueHeap (bottomk), the worst kept sample at [0]: a
 * sample better than that one, or any sample when that one is NaN,
 * takes its place: in place for k == 1, else by heap.Pop() and
 * heap.Push().  The same heap operations keep the same one of equal
 * values and leave the same order for the final sort.
 */

static void
ts_pq_heap_put(ts_pq_ev_t *ev, ts_pq_vec_t *h, const ts_pq_sample_t *s,
    int64_t k, int top)
{
    double    w;
    uint32_t  i, c, n;

    if ((int64_t) h->n == k) {
        w = h->s[0].v;

        if (!(top ? w < s->v : w > s->v) && !isnan(w)) {
            return;
        }

        if (k == 1) {
            h->s[0] = *s;
            return;
        }

        /* heap.Pop: the top to the end, down() over the rest, drop it */

        n = h->n - 1;
        ts_pq_swap(h->s, 0, n);

        for (i = 0; 2 * i + 1 < n; i = c) {
            c = 2 * i + 1;

            if (c + 1 < n && ts_pq_heap_less(h, c + 1, c, top)) {
                c++;
            }

            if (!ts_pq_heap_less(h, c, i, top)) {
                break;
            }

            ts_pq_swap(h->s, i, c);
        }

        h->n = n;
    }

    /* heap.Push: append, up() */

    ts_pq_vec_push(ev, h, s->ls, s->t, s->v);

    for (c = h->n - 1; c > 0; c = i) {
        i = (c - 1) / 2;

        if (!ts_pq_heap_less(h, c, i, top)) {
            break;
        }

        ts_pq_swap(h->s, i, c);
    }
}


/* the heaps' Less: NaN first, then the smaller (top) or larger value */

static int
ts_pq_heap_less(const ts_pq_vec_t *h, uint32_t i, uint32_t j, int top)
{
    if (isnan(h->s[i].v)) {
        return 1;
    }

    return top ? h->s[i].v < h->s[j].v : h->s[i].v > h->s[j].v;
}


static void
ts_pq_swap(ts_pq_sample_t *s, uint32_t i, uint32_t j)
{
    ts_pq_sample_t  t;

    t = s[i];
    s[i] = s[j];
    s[j] = t;
}


/*
 * Go's sort.Sort(sort.Reverse(h)) of those heaps, as sort, sort_desc,
 * topk and bottomk do: larger values first if desc, else smaller; NaN
 * last either way.  Go 1.19 (Debian's Prometheus 2.42) sorts up to 12
 * elements by insertion with that Less, exactly as here, ties and NaNs
 * included; more by pdqsort, here a stable merge sort, so equal values
 * among more than 12 may come in another order.
 */

void
ts_pq_go_sort(ts_pq_ev_t *ev, ts_pq_sample_t *s, uint32_t n, int desc)
{
    uint32_t         i, j, w, l, r, le, re;
    ts_pq_sample_t  *tmp, *from, *to, *t;

    if (n <= 12) {
        for (i = 1; i < n; i++) {
            for (j = i; j > 0 && ts_pq_sort_less(&s[j], &s[j - 1], desc);
                 j--)
            {
                ts_pq_swap(s, j, j - 1);
            }
        }

        return;
    }

    tmp = ts_pq_alloc(ev, n * sizeof(ts_pq_sample_t));
    from = s;
    to = tmp;

    for (w = 1; w < n; w *= 2) {
        for (i = 0; i < n; i += 2 * w) {
            l = i;
            le = i + w < n ? i + w : n;
            r = le;
            re = i + 2 * w < n ? i + 2 * w : n;

            for (j = i; j < re; j++) {
                to[j] = (r < re && (l == le
                                    || ts_pq_sort_less(&from[r], &from[l],
                                                       desc)))
                        ? from[r++] : from[l++];
            }
        }

        t = from;
        from = to;
        to = t;
    }

    if (from != s) {
        memcpy(s, from, n * sizeof(ts_pq_sample_t));
    }

    ts_pq_free(ev, tmp);
}


/* sort.Reverse's Less(a, b): the heap's Less(b, a) */

static int
ts_pq_sort_less(const ts_pq_sample_t *a, const ts_pq_sample_t *b,
    int desc)
{
    if (isnan(b->v)) {
        return 1;
    }

    return desc ? b->v < a->v : b->v > a->v;
}


/*
 * An input with native histograms.  2.42's aggregation() adds them up
 * for sum only (at the lowest schema, compacted); a group with floats
 * and histograms gives nothing.  Every other aggregation reads a
 * histogram sample's V, 0: the points become 0 and the usual code runs
 * (returns 0).
 */

typedef struct {
    ts_pq_hist_t           *h;
    double                  f;
    uint32_t                kind;       /* 1 floats, 2 histograms, 3 both */
    uint32_t                owned;      /* h is a sum, not an input's */
} ts_pq_hacc_t;


static int
ts_pq_agg_hist(ts_pq_ev_t *ev, const ts_promql_aggregate_t *a,
    ts_pq_mat_t *in, ts_pq_val_t *v)
{
    int               any;
    int64_t           off;
    uint32_t          i, j, k, n, nsteps, step, *gidx;
    ts_pq_hist_t     *h, *t;
    ts_pq_hacc_t     *acc, *c;
    ts_pq_series_t   *s, *d;
    ts_pq_groups_t    gs;

    any = 0;

    for (i = 0; ev->nhist > 0 && i < in->n && !any; i++) {
        for (k = 0; k < in->s[i].n; k++) {
            if (ts_pq_is_hist(in->s[i].p[k].v)) {
                any = 1;
                break;
            }
        }
    }

    if (!any) {
        return 0;
    }

    if (a->op != TS_PQ_AGG_SUM) {
        for (i = 0; i < in->n; i++) {
            for (k = 0; k < in->s[i].n; k++) {
                if (ts_pq_is_hist(in->s[i].p[k].v)) {
                    in->s[i].p[k].v = 0;
                }
            }
        }

        return 0;
    }

    memset(v, 0, sizeof(ts_pq_val_t));
    v->type = TS_PQ_TYPE_VECTOR;

    if (ev->start > ev->end) {
        return 1;
    }

    nsteps = ts_pq_steps_left(ev, ev->start);
    memset(&gs, 0, sizeof(ts_pq_groups_t));
    gidx = ts_pq_alloc(ev, (in->n + 1) * sizeof(uint32_t));

    for (i = 0; i < in->n; i++) {
        gidx[i] = ts_pq_group_of(ev, &gs, ts_pq_agg_ls(ev, a, in->s[i].ls));
    }

    if ((uint64_t) gs.n * nsteps * sizeof(ts_pq_hacc_t)
        > ev->conf.max_memory)
    {
        ts_pq_fail(ev, TS_ERR_LIMIT, TS_PQE_EXECUTION,
                   "query processing would use more than %zu bytes of "
                   "memory", ev->conf.max_memory);
    }

    n = gs.n ? gs.n : 1;
    acc = ts_pq_alloc(ev, (size_t) n * nsteps * sizeof(ts_pq_hacc_t));
    memset(acc, 0, (size_t) n * nsteps * sizeof(ts_pq_hacc_t));

    /* series by series in input order: each step's samples in order */

    for (i = 0; i < in->n; i++) {
        ts_pq_tick(ev);
        s = &in->s[i];
        c = &acc[(size_t) gidx[i] * nsteps];

        for (k = 0; k < s->n; k++) {
            off = s->p[k].t - ev->start;

            if (off < 0 || off % ev->interval != 0 || s->p[k].t > ev->end) {
                continue;
            }

            step = (uint32_t) (off / ev->interval);
            h = ts_pq_hist_get(ev, s->p[k].v);

            if (h == NULL) {
                c[step].f += s->p[k].v;
                c[step].kind |= 1;

            } else if (c[step].kind == 0) {
                c[step].h = h;
                c[step].kind = 2;

            } else if (c[step].kind == 2) {
                t = ts_pq_hist_add(ev, c[step].h, h, 1);

                if (c[step].owned) {
                    ts_pq_free(ev, c[step].h);
                }

                c[step].h = t;
                c[step].owned = 1;

            } else {
                c[step].kind = 3;
            }
        }
    }

    ts_pq_free(ev, gidx);

    for (j = 0; j < gs.n; j++) {
        ts_pq_tick(ev);
        c = &acc[(size_t) j * nsteps];
        d = NULL;

        for (step = 0; step < nsteps; step++) {
            if (c[step].kind == 0 || c[step].kind == 3) {
                continue;
            }

            if (d == NULL) {
                d = ts_pq_mat_add(ev, &v->m, gs.g[j].ls);
            }

            if (c[step].kind == 2) {
                h = ts_pq_hist_copy(ev, c[step].h);
                ts_pq_hist_compact(h);
                ts_pq_series_push(ev, d,
                                  ev->start + (int64_t) step * ev->interval,
                                  ts_pq_hist_ref(ev, h));

            } else {
                ts_pq_series_push(ev, d,
                                  ev->start + (int64_t) step * ev->interval,
                                  c[step].f);
            }
        }
    }

    ts_pq_free(ev, acc);
    ts_pq_free(ev, gs.slot);
    ts_pq_free(ev, gs.g);

    return 1;
}
