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
static int ts_pq_heap_less(const ts_pq_vec_t *h, uint32_t i, uint32_t j,
    int top);
static void ts_pq_swap(ts_pq_sample_t *s, uint32_t i, uint32_t j);
static int ts_pq_sort_less(const ts_pq_sample_t *a,
    const ts_pq_sample_t *b, int desc);


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
            ts_pq_go_sort(ev, g[i].heap.s, g[i].heap.n,
                          a->op == TS_PQ_AGG_TOPK);

            for (j = 0; j < g[i].heap.n; j++) {
                smp = g[i].heap.s[j];
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
