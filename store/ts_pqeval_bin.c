/*
 * Copyright (C) ngx_tsdb authors
 *
 * PromQL binary operators, as Prometheus 2.42's VectorBinop,
 * VectorscalarBinop, scalarBinop and the set operators: one-to-one and
 * many-to-one matching on signatures (on: the labels listed; ignoring:
 * all but those and __name__), cardinality errors in Prometheus's
 * words, the name dropped by arithmetic (not by atan2, as 2.42) and by
 * bool, comparisons filtering and keeping the vector's value, % and ^
 * as Go's math.Mod and math.Pow (C's fmod and pow agree on them).
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ts_pqeval_int.h"


typedef struct {
    uint64_t                sig;
    uint32_t                i;
} ts_pq_sigent_t;


static void ts_pq_bin_step(ts_pq_ev_t *ev, ts_pq_step_t *st);
static void ts_pq_vv(ts_pq_ev_t *ev, ts_pq_step_t *st);
static void ts_pq_set(ts_pq_ev_t *ev, ts_pq_step_t *st);
static void ts_pq_vs(ts_pq_ev_t *ev, ts_pq_step_t *st, ts_pq_vec_t *vec,
    double sc, int swap);
static int ts_pq_drops_name(ts_promql_op_t op);
static const ts_pq_ls_t *ts_pq_result_ls(ts_pq_ev_t *ev,
    const ts_promql_binary_t *b, const ts_pq_ls_t *l, const ts_pq_ls_t *r);
static uint32_t ts_pq_find(const ts_pq_sigent_t *idx, uint32_t n,
    uint64_t sig);
static ts_pq_sigent_t *ts_pq_index(ts_pq_ev_t *ev, const ts_pq_vec_t *v,
    const ts_promql_binary_t *b);
static int ts_pq_sigent_cmp(const void *a, const void *b);


void
ts_pq_binary(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_val_t *v)
{
    ts_pq_val_t  args[2];

    ts_pq_eval(ev, e->u.binary.lhs, &args[0]);
    ts_pq_eval(ev, e->u.binary.rhs, &args[1]);

    ts_pq_steps(ev, e, args, 2, ts_pq_bin_step, NULL, v);

    if (args[0].type == TS_PQ_TYPE_SCALAR
        && args[1].type == TS_PQ_TYPE_SCALAR)
    {
        v->type = TS_PQ_TYPE_SCALAR;
    }

    ts_pq_mat_free(ev, &args[0].m);
    ts_pq_mat_free(ev, &args[1].m);
}


double
ts_pq_binop(ts_promql_op_t op, double l, double r, int *keep)
{
    *keep = 1;

    switch (op) {
    case TS_PQ_OP_ADD:
        return l + r;
    case TS_PQ_OP_SUB:
        return l - r;
    case TS_PQ_OP_MUL:
        return l * r;
    case TS_PQ_OP_DIV:
        return l / r;
    case TS_PQ_OP_MOD:
        return fmod(l, r);
    case TS_PQ_OP_POW:
        return pow(l, r);
    case TS_PQ_OP_ATAN2:
        return atan2(l, r);
    case TS_PQ_OP_EQLC:
        *keep = l == r;
        return l;
    case TS_PQ_OP_NEQ:
        *keep = l != r;
        return l;
    case TS_PQ_OP_GTR:
        *keep = l > r;
        return l;
    case TS_PQ_OP_LSS:
        *keep = l < r;
        return l;
    case TS_PQ_OP_GTE:
        *keep = l >= r;
        return l;
    case TS_PQ_OP_LTE:
        *keep = l <= r;
        return l;
    default:
        *keep = 0;
        return NAN;
    }
}


static void
ts_pq_bin_step(ts_pq_ev_t *ev, ts_pq_step_t *st)
{
    int                        keep;
    double                     x;
    const ts_promql_binary_t  *b;

    b = &st->e->u.binary;

    if (st->val[0].type == TS_PQ_TYPE_SCALAR
        && st->val[1].type == TS_PQ_TYPE_SCALAR)
    {
        x = ts_pq_binop(b->op, st->scalar[0], st->scalar[1], &keep);

        if (ts_promql_op_is_comparison(b->op)) {
            x = keep;
        }

        ts_pq_vec_push(ev, st->out, ts_pq_ls(ev, NULL, 0), st->ts, x);
        return;
    }

    if (st->val[0].type == TS_PQ_TYPE_SCALAR) {
        ts_pq_vs(ev, st, &st->vec[1], st->scalar[0], 1);
        return;
    }

    if (st->val[1].type == TS_PQ_TYPE_SCALAR) {
        ts_pq_vs(ev, st, &st->vec[0], st->scalar[1], 0);
        return;
    }

    if (ts_promql_op_is_set(b->op)) {
        ts_pq_set(ev, st);
        return;
    }

    ts_pq_vv(ev, st);
}


static void
ts_pq_vs(ts_pq_ev_t *ev, ts_pq_step_t *st, ts_pq_vec_t *vec, double sc,
    int swap)
{
    int                        keep, cmp, hist;
    double                     x, l, r;
    uint32_t                   i;
    const ts_pq_ls_t          *ls;
    const ts_promql_binary_t  *b;

    b = &st->e->u.binary;
    cmp = ts_promql_op_is_comparison(b->op);

    for (i = 0; i < vec->n; i++) {
        /* a histogram's V is 0 in 2.42, and its H stays the result's */

        hist = ts_pq_is_hist(vec->s[i].v);
        x = hist ? 0 : vec->s[i].v;
        l = swap ? sc : x;
        r = swap ? x : sc;

        x = ts_pq_binop(b->op, l, r, &keep);

        if (cmp && swap) {
            x = r;
        }

        if (b->return_bool) {
            x = keep;
            keep = 1;
        }

        if (!keep) {
            continue;
        }

        ls = vec->s[i].ls;

        if (ts_pq_drops_name(b->op) || b->return_bool) {
            ls = ts_pq_ls_noname(ev, ls);
        }

        ts_pq_vec_push(ev, st->out, ls, st->ts, hist ? vec->s[i].v : x);
    }
}


/* one-to-one and many-to-one (group_left), one-to-many swapped */

static void
ts_pq_vv(ts_pq_ev_t *ev, ts_pq_step_t *st)
{
    int                        keep;
    char                       m[256], a[256], c[256];
    uint8_t                   *used;
    double                     x, l, r;
    uint32_t                   i, k, j, nout0;
    ts_pq_hist_t              *hl, *hr;
    uint64_t                   sig;
    ts_pq_vec_t               *lhs, *rhs;
    ts_pq_sigent_t            *idx, *done;
    const ts_pq_ls_t          *ls, *one;
    const ts_promql_binary_t  *b;

    b = &st->e->u.binary;
    lhs = &st->vec[0];
    rhs = &st->vec[1];

    if (b->card == TS_PQ_CARD_ONE_TO_MANY) {
        lhs = &st->vec[1];
        rhs = &st->vec[0];
    }

    idx = ts_pq_index(ev, rhs, b);

    for (i = 1; i < rhs->n; i++) {
        if (idx[i].sig != idx[i - 1].sig
            || !ts_pq_ls_sig_equal(rhs->s[idx[i].i].ls,
                                   rhs->s[idx[i - 1].i].ls, &b->matching,
                                   b->on))
        {
            continue;
        }

        one = ts_pq_ls_filter(ev, rhs->s[idx[i].i].ls, &b->matching, b->on,
                              !b->on);
        ts_pq_ls_format(one, m, sizeof(m));
        ts_pq_ls_format(rhs->s[idx[i].i].ls, a, sizeof(a));
        ts_pq_ls_format(rhs->s[idx[i - 1].i].ls, c, sizeof(c));

        ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                   "found duplicate series for the match group %s on the "
                   "%s hand-side of the operation: [%s, %s];many-to-many "
                   "matching not allowed: matching labels must be unique "
                   "on one side", m,
                   b->card == TS_PQ_CARD_ONE_TO_MANY ? "left" : "right",
                   idx[i].i > idx[i - 1].i ? a : c,
                   idx[i].i > idx[i - 1].i ? c : a);
    }

    /* which rhs were matched, and by which output label sets */

    done = ts_pq_alloc(ev, (lhs->n + 1) * sizeof(ts_pq_sigent_t));
    used = ts_pq_alloc(ev, rhs->n + 1);
    memset(used, 0, rhs->n + 1);
    nout0 = st->out->n;

    for (i = 0; i < lhs->n; i++) {
        sig = ts_pq_ls_sig(lhs->s[i].ls, &b->matching, b->on);
        k = ts_pq_find(idx, rhs->n, sig);

        while (k < rhs->n && idx[k].sig == sig
               && !ts_pq_ls_sig_equal(lhs->s[i].ls, rhs->s[idx[k].i].ls,
                                      &b->matching, b->on))
        {
            k++;
        }

        if (k == rhs->n || idx[k].sig != sig) {
            continue;
        }

        k = idx[k].i;
        l = lhs->s[i].v;
        r = rhs->s[k].v;

        if (b->card == TS_PQ_CARD_ONE_TO_MANY) {
            x = l;
            l = r;
            r = x;
        }

        /*
         * 2.42 adds two histograms; a float and a histogram give
         * nothing; any other operation on two histograms reads their V,
         * 0, and gives a float
         */

        hl = ts_pq_hist_get(ev, l);
        hr = ts_pq_hist_get(ev, r);

        if ((hl == NULL) != (hr == NULL)) {
            continue;
        }

        if (hl != NULL && hr != NULL && b->op == TS_PQ_OP_ADD) {
            x = ts_pq_hist_ref(ev, ts_pq_hist_add(ev, hl, hr, 1));
            keep = 1;

        } else {
            x = ts_pq_binop(b->op, hl != NULL ? 0 : l, hr != NULL ? 0 : r,
                            &keep);
        }

        if (b->return_bool) {
            x = keep;

        } else if (!keep) {
            continue;
        }

        ls = ts_pq_result_ls(ev, b, lhs->s[i].ls, rhs->s[k].ls);

        if (b->return_bool) {
            ls = ts_pq_ls_noname(ev, ls);
        }

        /* one-to-one: each rhs once; many-to-one: each result once */

        if (b->card == TS_PQ_CARD_ONE_TO_ONE && used[k]) {
            ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                       "multiple matches for labels: many-to-one matching "
                       "must be explicit (group_left/group_right)");
        }

        used[k] = 1;

        for (j = nout0; b->card != TS_PQ_CARD_ONE_TO_ONE
                        && j < st->out->n; j++)
        {
            if (done[j - nout0].i == k
                && ts_pq_ls_equal(st->out->s[j].ls, ls))
            {
                ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                           "multiple matches for labels: grouping labels "
                           "must ensure unique matches");
            }
        }

        done[st->out->n - nout0].i = k;
        ts_pq_vec_push(ev, st->out, ls, st->ts, x);
    }

    ts_pq_free(ev, used);
    ts_pq_free(ev, done);
    ts_pq_free(ev, idx);
}


static void
ts_pq_set(ts_pq_ev_t *ev, ts_pq_step_t *st)
{
    int                        found;
    uint32_t                   i, k, n;
    uint64_t                   sig;
    ts_pq_vec_t               *lhs, *rhs, *in, *other;
    ts_pq_sigent_t            *idx;
    const ts_promql_binary_t  *b;

    b = &st->e->u.binary;
    lhs = &st->vec[0];
    rhs = &st->vec[1];

    if (b->op == TS_PQ_OP_OR) {
        for (i = 0; i < lhs->n; i++) {
            ts_pq_vec_push(ev, st->out, lhs->s[i].ls, st->ts, lhs->s[i].v);
        }

        in = rhs;
        other = lhs;

    } else {
        in = lhs;
        other = rhs;
    }

    idx = ts_pq_index(ev, other, b);
    n = other->n;

    for (i = 0; i < in->n; i++) {
        sig = ts_pq_ls_sig(in->s[i].ls, &b->matching, b->on);
        found = 0;

        for (k = ts_pq_find(idx, n, sig); k < n && idx[k].sig == sig; k++) {
            if (ts_pq_ls_sig_equal(in->s[i].ls, other->s[idx[k].i].ls,
                                   &b->matching, b->on))
            {
                found = 1;
                break;
            }
        }

        if (found == (b->op == TS_PQ_OP_AND)) {
            ts_pq_vec_push(ev, st->out, in->s[i].ls, st->ts, in->s[i].v);
        }
    }

    ts_pq_free(ev, idx);
}


static int
ts_pq_drops_name(ts_promql_op_t op)
{
    switch (op) {
    case TS_PQ_OP_ADD:
    case TS_PQ_OP_SUB:
    case TS_PQ_OP_MUL:
    case TS_PQ_OP_DIV:
    case TS_PQ_OP_MOD:
    case TS_PQ_OP_POW:
        return 1;
    default:
        return 0;
    }
}


/* resultMetric: l is the "many" side, r the "one" side */

static const ts_pq_ls_t *
ts_pq_result_ls(ts_pq_ev_t *ev, const ts_promql_binary_t *b,
    const ts_pq_ls_t *l, const ts_pq_ls_t *r)
{
    uint32_t           i;
    const ts_label_t  *v;

    if (ts_pq_drops_name(b->op)) {
        l = ts_pq_ls_noname(ev, l);
    }

    if (b->card == TS_PQ_CARD_ONE_TO_ONE) {
        if (b->on) {
            l = ts_pq_ls_filter(ev, l, &b->matching, 1, 0);

        } else {
            for (i = 0; i < b->matching.n; i++) {
                l = ts_pq_ls_set(ev, l, b->matching.v[i].data,
                                 b->matching.v[i].len, "", 0);
            }
        }
    }

    for (i = 0; i < b->include.n; i++) {
        v = ts_pq_ls_get(r, b->include.v[i].data, b->include.v[i].len);
        l = ts_pq_ls_set(ev, l, b->include.v[i].data, b->include.v[i].len,
                         v ? v->value : "", v ? v->value_len : 0);
    }

    return l;
}


static ts_pq_sigent_t *
ts_pq_index(ts_pq_ev_t *ev, const ts_pq_vec_t *v, const ts_promql_binary_t *b)
{
    uint32_t         i;
    ts_pq_sigent_t  *idx;

    idx = ts_pq_alloc(ev, (v->n + 1) * sizeof(ts_pq_sigent_t));

    for (i = 0; i < v->n; i++) {
        idx[i].sig = ts_pq_ls_sig(v->s[i].ls, &b->matching, b->on);
        idx[i].i = i;
    }

    qsort(idx, v->n, sizeof(ts_pq_sigent_t), ts_pq_sigent_cmp);

    return idx;
}


/* the first entry with sig, or n */

static uint32_t
ts_pq_find(const ts_pq_sigent_t *idx, uint32_t n, uint64_t sig)
{
    uint32_t  lo, hi, mid;

    lo = 0;
    hi = n;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (idx[mid].sig < sig) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return lo < n && idx[lo].sig == sig ? lo : n;
}


static int
ts_pq_sigent_cmp(const void *a, const void *b)
{
    const ts_pq_sigent_t  *x, *y;

    x = a;
    y = b;

    if (x->sig != y->sig) {
        return x->sig < y->sig ? -1 : 1;
    }

    return (x->i > y->i) - (x->i < y->i);
}
