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


typedef struct {
    const ts_pq_ls_t       *ls;
    uint64_t                sig;
    double                  value;
    double                  mean;
    double                  count;
    ts_pq_vec_t             heap;       /* topk, bottomk, quantile */
} ts_pq_group_t;


static void ts_pq_agg_step(ts_pq_ev_t *ev, ts_pq_step_t *st);
static void ts_pq_agg_add(ts_pq_ev_t *ev, ts_promql_agg_t op,
    ts_pq_group_t *g, const ts_pq_sample_t *s, int64_t k);
static void ts_pq_heap_put(ts_pq_ev_t *ev, ts_pq_vec_t *h,
    const ts_pq_sample_t *s, int64_t k, int top);
static int ts_pq_top_less(double a, double b);
static int ts_pq_top_cmp(const void *a, const void *b);
static int ts_pq_bottom_less(double a, double b);
static int ts_pq_bottom_cmp(const void *a, const void *b);


void
ts_pq_aggregate(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_val_t *v)
{
    uint32_t                      n;
    ts_pq_val_t                   args[2];
    const ts_promql_aggregate_t  *a;

    a = &e->u.aggregate;
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

    ts_pq_steps(ev, e, args, n, ts_pq_agg_step, NULL, v);

    ts_pq_mat_free(ev, &args[0].m);
    ts_pq_mat_free(ev, &args[1].m);
}


static void
ts_pq_agg_step(ts_pq_ev_t *ev, ts_pq_step_t *st)
{
    char                          num[64];
    double                        p, *vals;
    int64_t                       k;
    uint32_t                      i, j, ng, mask, *slot;
    uint64_t                      sig;
    ts_pq_vec_t                  *in;
    ts_pq_group_t                *g;
    ts_pq_sample_t                smp;
    const ts_pq_ls_t             *ls;
    const ts_promql_str_t        *vl;
    const ts_promql_aggregate_t  *a;

    a = &st->e->u.aggregate;
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

    g = ts_pq_alloc(ev, in->n * sizeof(ts_pq_group_t));
    ng = 0;

    for (mask = 15; mask < in->n * 2; mask = mask * 2 + 1) {
        /* void */
    }

    slot = ts_pq_alloc(ev, (mask + 1) * sizeof(uint32_t));
    memset(slot, 0, (mask + 1) * sizeof(uint32_t));

    for (i = 0; i < in->n; i++) {
        smp = in->s[i];

        if (a->op == TS_PQ_AGG_COUNT_VALUES) {
            ts_pq_go_format(smp.v, num, sizeof(num));
            smp.ls = ts_pq_ls_set(ev, smp.ls, vl->data, vl->len, num,
                                  strlen(num));
        }

        ls = smp.ls;

        if (a->without) {
            ls = ts_pq_ls_filter(ev, ls, &a->grouping, 0, 1);

            if (a->op == TS_PQ_AGG_COUNT_VALUES) {
                /* without drops only the names listed, never vl */
                ls = ts_pq_ls_set(ev, ls, vl->data, vl->len,
                                  ts_pq_ls_get(smp.ls, vl->data,
                                               vl->len)->value,
                                  ts_pq_ls_get(smp.ls, vl->data,
                                               vl->len)->value_len);
            }

        } else {
            ls = ts_pq_ls_filter(ev, ls, &a->grouping, 1, 0);

            if (a->op == TS_PQ_AGG_COUNT_VALUES) {
                ls = ts_pq_ls_set(ev, ls, vl->data, vl->len,
                                  ts_pq_ls_get(smp.ls, vl->data,
                                               vl->len)->value,
                                  ts_pq_ls_get(smp.ls, vl->data,
                                               vl->len)->value_len);
            }
        }

        sig = ls->hash;

        for (j = (uint32_t) sig & mask; slot[j]; j = (j + 1) & mask) {
            if (ts_pq_ls_equal(g[slot[j] - 1].ls, ls)) {
                break;
            }
        }

        if (slot[j] == 0) {
            memset(&g[ng], 0, sizeof(ts_pq_group_t));
            g[ng].ls = ls;
            g[ng].value = smp.v;
            g[ng].mean = smp.v;
            g[ng].count = 1;
            slot[j] = ++ng;

            switch (a->op) {
            case TS_PQ_AGG_STDDEV:
            case TS_PQ_AGG_STDVAR:
                g[ng - 1].value = 0;
                break;
            case TS_PQ_AGG_GROUP:
                g[ng - 1].value = 1;
                break;
            case TS_PQ_AGG_TOPK:
            case TS_PQ_AGG_BOTTOMK:
            case TS_PQ_AGG_QUANTILE:
                ts_pq_vec_push(ev, &g[ng - 1].heap, smp.ls, smp.t, smp.v);
                break;
            default:
                break;
            }

            continue;
        }

        ts_pq_agg_add(ev, a->op, &g[slot[j] - 1], &smp, k);
    }

    for (i = 0; i < ng; i++) {
        switch (a->op) {

        case TS_PQ_AGG_AVG:
            g[i].value = g[i].mean;
            break;

        case TS_PQ_AGG_COUNT:
        case TS_PQ_AGG_COUNT_VALUES:
            g[i].value = g[i].count;
            break;

        case TS_PQ_AGG_STDVAR:
            g[i].value /= g[i].count;
            break;

        case TS_PQ_AGG_STDDEV:
            g[i].value = sqrt(g[i].value / g[i].count);
            break;

        case TS_PQ_AGG_QUANTILE:
            vals = ts_pq_alloc(ev, g[i].heap.n * sizeof(double));

            for (j = 0; j < g[i].heap.n; j++) {
                vals[j] = g[i].heap.s[j].v;
            }

            g[i].value = ts_pq_quantile(p, vals, g[i].heap.n);
            ts_pq_free(ev, vals);
            ts_pq_free(ev, g[i].heap.s);
            break;

        case TS_PQ_AGG_TOPK:
        case TS_PQ_AGG_BOTTOMK:
            qsort(g[i].heap.s, g[i].heap.n, sizeof(ts_pq_sample_t),
                  a->op == TS_PQ_AGG_TOPK ? ts_pq_top_cmp
                                          : ts_pq_bottom_cmp);

            for (j = 0; j < g[i].heap.n; j++) {
                smp = g[i].heap.s[a->op == TS_PQ_AGG_TOPK
                                  ? g[i].heap.n - 1 - j : j];
                ts_pq_vec_push(ev, st->out, smp.ls, st->ts, smp.v);
            }

            ts_pq_free(ev, g[i].heap.s);
            continue;

        default:
            break;
        }

        ts_pq_vec_push(ev, st->out, g[i].ls, st->ts, g[i].value);
    }

    ts_pq_free(ev, slot);
    ts_pq_free(ev, g);
}


static void
ts_pq_agg_add(ts_pq_ev_t *ev, ts_promql_agg_t op, ts_pq_group_t *g,
    const ts_pq_sample_t *s, int64_t k)
{
    double  delta;

    switch (op) {

    case TS_PQ_AGG_SUM:
        g->value += s->v;
        break;

    case TS_PQ_AGG_AVG:
        g->count++;

        if (isinf(g->mean)) {
            if (isinf(s->v) && (g->mean > 0) == (s->v > 0)) {
                break;
            }

            if (!isinf(s->v) && !isnan(s->v)) {
                break;
            }
        }

        g->mean += s->v / g->count - g->mean / g->count;
        break;

    case TS_PQ_AGG_GROUP:
        break;

    case TS_PQ_AGG_COUNT:
    case TS_PQ_AGG_COUNT_VALUES:
        g->count++;
        break;

    case TS_PQ_AGG_MAX:
        if (g->value < s->v || isnan(g->value)) {
            g->value = s->v;
        }

        break;

    case TS_PQ_AGG_MIN:
        if (g->value > s->v || isnan(g->value)) {
            g->value = s->v;
        }

        break;

    case TS_PQ_AGG_STDDEV:
    case TS_PQ_AGG_STDVAR:
        g->count++;
        delta = s->v - g->mean;
        g->mean += delta / g->count;
        g->value += delta * (s->v - g->mean);
        break;

    case TS_PQ_AGG_TOPK:
    case TS_PQ_AGG_BOTTOMK:
        ts_pq_heap_put(ev, &g->heap, s, k, op == TS_PQ_AGG_TOPK);
        break;

    case TS_PQ_AGG_QUANTILE:
        ts_pq_vec_push(ev, &g->heap, s->ls, s->t, s->v);
        break;
    }
}


/*
 * Keeps the k best samples: for topk the lowest kept one is replaced
 * by a larger value (a NaN is the lowest), for bottomk the other way.
 * A linear scan for the worst: k is small in practice.
 */

static void
ts_pq_heap_put(ts_pq_ev_t *ev, ts_pq_vec_t *h, const ts_pq_sample_t *s,
    int64_t k, int top)
{
    uint32_t  i, w;

    if ((int64_t) h->n < k) {
        ts_pq_vec_push(ev, h, s->ls, s->t, s->v);
        return;
    }

    w = 0;

    for (i = 1; i < h->n; i++) {
        if (top ? ts_pq_top_less(h->s[i].v, h->s[w].v)
                : ts_pq_bottom_less(h->s[i].v, h->s[w].v))
        {
            w = i;
        }
    }

    if (top) {
        if (h->s[w].v < s->v || (isnan(h->s[w].v) && !isnan(s->v))) {
            h->s[w] = *s;
        }

    } else if (h->s[w].v > s->v || (isnan(h->s[w].v) && !isnan(s->v))) {
        h->s[w] = *s;
    }
}


/* vectorByReverseValueHeap's Less: NaN, then larger first */

static int
ts_pq_bottom_less(double a, double b)
{
    if (isnan(a)) {
        return 1;
    }

    return a > b;
}


static int
ts_pq_bottom_cmp(const void *a, const void *b)
{
    double  x, y;

    x = ((const ts_pq_sample_t *) a)->v;
    y = ((const ts_pq_sample_t *) b)->v;

    /* ascending, NaN last: sort.Reverse of the reverse heap */

    if (ts_pq_bottom_less(y, x)) {
        return -1;
    }

    return ts_pq_bottom_less(x, y) ? 1 : 0;
}


/* vectorByValueHeap's Less: NaN below everything */

static int
ts_pq_top_less(double a, double b)
{
    if (isnan(a)) {
        return 1;
    }

    return a < b;
}


static int
ts_pq_top_cmp(const void *a, const void *b)
{
    double  x, y;

    x = ((const ts_pq_sample_t *) a)->v;
    y = ((const ts_pq_sample_t *) b)->v;

    if (ts_pq_top_less(x, y)) {
        return -1;
    }

    return ts_pq_top_less(y, x) ? 1 : 0;
}
