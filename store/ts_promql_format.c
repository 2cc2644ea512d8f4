/*
 * Copyright (C) ngx_tsdb authors
 *
 * PromQL printer and tables: ts_promql_format() prints an AST the way
 * Prometheus 2.42's String() methods (promql/parser/printer.go) do,
 * with Go's number formatting (fmt "%v" of a float64: shortest
 * round-trip digits, exponent below 1e-4 and from 1e6 up), Go's string
 * quoting (strconv.Quote) and model.Duration's spelling; the function
 * table is functions.go's.
 *
 * The printer recurses over the tree; the parser bounds its height.
 * Label matchers are printed sorted as strings, as Prometheus does;
 * sorting more than a few takes one malloc() for the order.
 */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_promql_lex.h"


#define V  TS_PQ_TYPE_VECTOR
#define M  TS_PQ_TYPE_MATRIX
#define S  TS_PQ_TYPE_SCALAR
#define T  TS_PQ_TYPE_STRING

#define TS_PQ_SORT_STACK  32


/* a formatted matcher, name op "value", read byte by byte */
typedef struct {
    const ts_matcher_t     *m;
    int                     stage;
    size_t                  pos;
    char                    buf[16];
    size_t                  blen;
    size_t                  bpos;
} ts_pq_mstream_t;


static void ts_pq_print(ts_pq_out_t *o, const ts_promql_expr_t *e);


static const ts_promql_func_t  ts_promql_funcs[] = {
    { "abs", TS_PQ_FN_ABS, 1, 0, { V }, V },
    { "absent", TS_PQ_FN_ABSENT, 1, 0, { V }, V },
    { "absent_over_time", TS_PQ_FN_ABSENT_OVER_TIME, 1, 0, { M }, V },
    { "acos", TS_PQ_FN_ACOS, 1, 0, { V }, V },
    { "acosh", TS_PQ_FN_ACOSH, 1, 0, { V }, V },
    { "asin", TS_PQ_FN_ASIN, 1, 0, { V }, V },
    { "asinh", TS_PQ_FN_ASINH, 1, 0, { V }, V },
    { "atan", TS_PQ_FN_ATAN, 1, 0, { V }, V },
    { "atanh", TS_PQ_FN_ATANH, 1, 0, { V }, V },
    { "avg_over_time", TS_PQ_FN_AVG_OVER_TIME, 1, 0, { M }, V },
    { "ceil", TS_PQ_FN_CEIL, 1, 0, { V }, V },
    { "changes", TS_PQ_FN_CHANGES, 1, 0, { M }, V },
    { "clamp", TS_PQ_FN_CLAMP, 3, 0, { V, S, S }, V },
    { "clamp_max", TS_PQ_FN_CLAMP_MAX, 2, 0, { V, S }, V },
    { "clamp_min", TS_PQ_FN_CLAMP_MIN, 2, 0, { V, S }, V },
    { "cos", TS_PQ_FN_COS, 1, 0, { V }, V },
    { "cosh", TS_PQ_FN_COSH, 1, 0, { V }, V },
    { "count_over_time", TS_PQ_FN_COUNT_OVER_TIME, 1, 0, { M }, V },
    { "days_in_month", TS_PQ_FN_DAYS_IN_MONTH, 1, 1, { V }, V },
    { "day_of_month", TS_PQ_FN_DAY_OF_MONTH, 1, 1, { V }, V },
    { "day_of_week", TS_PQ_FN_DAY_OF_WEEK, 1, 1, { V }, V },
    { "day_of_year", TS_PQ_FN_DAY_OF_YEAR, 1, 1, { V }, V },
    { "deg", TS_PQ_FN_DEG, 1, 0, { V }, V },
    { "delta", TS_PQ_FN_DELTA, 1, 0, { M }, V },
    { "deriv", TS_PQ_FN_DERIV, 1, 0, { M }, V },
    { "exp", TS_PQ_FN_EXP, 1, 0, { V }, V },
    { "floor", TS_PQ_FN_FLOOR, 1, 0, { V }, V },
    { "histogram_count", TS_PQ_FN_HISTOGRAM_COUNT, 1, 0, { V }, V },
    { "histogram_sum", TS_PQ_FN_HISTOGRAM_SUM, 1, 0, { V }, V },
    { "histogram_fraction", TS_PQ_FN_HISTOGRAM_FRACTION, 3, 0,
      { S, S, V }, V },
    { "histogram_quantile", TS_PQ_FN_HISTOGRAM_QUANTILE, 2, 0, { S, V }, V },
    { "holt_winters", TS_PQ_FN_HOLT_WINTERS, 3, 0, { M, S, S }, V },
    { "hour", TS_PQ_FN_HOUR, 1, 1, { V }, V },
    { "idelta", TS_PQ_FN_IDELTA, 1, 0, { M }, V },
    { "increase", TS_PQ_FN_INCREASE, 1, 0, { M }, V },
    { "irate", TS_PQ_FN_IRATE, 1, 0, { M }, V },
    { "label_replace", TS_PQ_FN_LABEL_REPLACE, 5, 0, { V, T, T, T, T }, V },
    { "label_join", TS_PQ_FN_LABEL_JOIN, 4, -1, { V, T, T, T }, V },
    { "last_over_time", TS_PQ_FN_LAST_OVER_TIME, 1, 0, { M }, V },
    { "ln", TS_PQ_FN_LN, 1, 0, { V }, V },
    { "log10", TS_PQ_FN_LOG10, 1, 0, { V }, V },
    { "log2", TS_PQ_FN_LOG2, 1, 0, { V }, V },
    { "max_over_time", TS_PQ_FN_MAX_OVER_TIME, 1, 0, { M }, V },
    { "min_over_time", TS_PQ_FN_MIN_OVER_TIME, 1, 0, { M }, V },
    { "minute", TS_PQ_FN_MINUTE, 1, 1, { V }, V },
    { "month", TS_PQ_FN_MONTH, 1, 1, { V }, V },
    { "pi", TS_PQ_FN_PI, 0, 0, { TS_PQ_TYPE_NONE }, S },
    { "predict_linear", TS_PQ_FN_PREDICT_LINEAR, 2, 0, { M, S }, V },
    { "present_over_time", TS_PQ_FN_PRESENT_OVER_TIME, 1, 0, { M }, V },
    { "quantile_over_time", TS_PQ_FN_QUANTILE_OVER_TIME, 2, 0, { S, M }, V },
    { "rad", TS_PQ_FN_RAD, 1, 0, { V }, V },
    { "rate", TS_PQ_FN_RATE, 1, 0, { M }, V },
    { "resets", TS_PQ_FN_RESETS, 1, 0, { M }, V },
    { "round", TS_PQ_FN_ROUND, 2, 1, { V, S }, V },
    { "scalar", TS_PQ_FN_SCALAR, 1, 0, { V }, S },
    { "sgn", TS_PQ_FN_SGN, 1, 0, { V }, V },
    { "sin", TS_PQ_FN_SIN, 1, 0, { V }, V },
    { "sinh", TS_PQ_FN_SINH, 1, 0, { V }, V },
    { "sort", TS_PQ_FN_SORT, 1, 0, { V }, V },
    { "sort_desc", TS_PQ_FN_SORT_DESC, 1, 0, { V }, V },
    { "sqrt", TS_PQ_FN_SQRT, 1, 0, { V }, V },
    { "stddev_over_time", TS_PQ_FN_STDDEV_OVER_TIME, 1, 0, { M }, V },
    { "stdvar_over_time", TS_PQ_FN_STDVAR_OVER_TIME, 1, 0, { M }, V },
    { "sum_over_time", TS_PQ_FN_SUM_OVER_TIME, 1, 0, { M }, V },
    { "tan", TS_PQ_FN_TAN, 1, 0, { V }, V },
    { "tanh", TS_PQ_FN_TANH, 1, 0, { V }, V },
    { "time", TS_PQ_FN_TIME, 0, 0, { TS_PQ_TYPE_NONE }, S },
    { "timestamp", TS_PQ_FN_TIMESTAMP, 1, 0, { V }, V },
    { "vector", TS_PQ_FN_VECTOR, 1, 0, { S }, V },
    { "year", TS_PQ_FN_YEAR, 1, 1, { V }, V },
};


const ts_promql_func_t *
ts_promql_func_lookup(const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < sizeof(ts_promql_funcs) / sizeof(ts_promql_funcs[0]);
         i++)
    {
        if (strlen(ts_promql_funcs[i].name) == len
            && memcmp(ts_promql_funcs[i].name, name, len) == 0)
        {
            return &ts_promql_funcs[i];
        }
    }

    return NULL;
}


const ts_promql_func_t *
ts_promql_func(ts_promql_fn_t id)
{
    if ((unsigned) id >= TS_PQ_FN_COUNT) {
        return NULL;
    }

    return &ts_promql_funcs[id];
}


void
ts_pq_put(ts_pq_out_t *o, const char *s, size_t len)
{
    size_t  n;

    if (o->len < o->size) {
        n = o->size - o->len - 1;
        n = len < n ? len : n;
        memcpy(o->buf + o->len, s, n);
        o->buf[o->len + n] = '\0';
    }

    o->len += len;
}


void
ts_pq_puts(ts_pq_out_t *o, const char *s)
{
    ts_pq_put(o, s, strlen(s));
}


void
ts_pq_printf(ts_pq_out_t *o, const char *fmt, ...)
{
    int      n;
    char     buf[64];
    va_list  ap;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    if (n > 0) {
        ts_pq_put(o, buf, (size_t) n < sizeof(buf) ? (size_t) n
                                                   : sizeof(buf) - 1);
    }
}


/* Go's appendQuotedWith() for the rune at s: bytes into out (<= 10) */
static size_t
ts_pq_quote_rune(const char *s, size_t len, size_t *w, char quote,
    char *out)
{
    static const char  hex[] = "0123456789abcdef";
    uint32_t           r;

    r = ts_promql_utf8_decode(s, len, w);

    if (r == 0xFFFD && *w == 1) {
        out[0] = '\\'; out[1] = 'x';
        out[2] = hex[(uint8_t) s[0] >> 4];
        out[3] = hex[(uint8_t) s[0] & 0xf];
        return 4;
    }

    if (r == (uint32_t) quote || r == '\\') {
        out[0] = '\\';
        out[1] = (char) r;
        return 2;
    }

    if (ts_promql_is_print(r)) {
        memcpy(out, s, *w);
        return *w;
    }

    switch (r) {
    case '\a': memcpy(out, "\\a", 2); return 2;
    case '\b': memcpy(out, "\\b", 2); return 2;
    case '\f': memcpy(out, "\\f", 2); return 2;
    case '\n': memcpy(out, "\\n", 2); return 2;
    case '\r': memcpy(out, "\\r", 2); return 2;
    case '\t': memcpy(out, "\\t", 2); return 2;
    case '\v': memcpy(out, "\\v", 2); return 2;
    }

    if (r < ' ' || r == 0x7f) {
        out[0] = '\\'; out[1] = 'x';
        out[2] = hex[r >> 4];
        out[3] = hex[r & 0xf];
        return 4;
    }

    if (r < 0x10000) {
        snprintf(out, 10, "\\u%04x", r);
        return 6;
    }

    snprintf(out, 11, "\\U%08x", r);

    return 10;
}


void
ts_pq_quote(ts_pq_out_t *o, const char *s, size_t len, char quote)
{
    char    buf[12];
    size_t  k, n, w;

    ts_pq_put(o, &quote, 1);

    for (k = 0; k < len; k += w) {
        n = ts_pq_quote_rune(s + k, len - k, &w, quote, buf);
        ts_pq_put(o, buf, n);
    }

    ts_pq_put(o, &quote, 1);
}


void
ts_pq_float(ts_pq_out_t *o, double v)
{
    int     prec, exp, nd, i;
    char    buf[48], digs[24], *p;

    if (isnan(v)) {
        ts_pq_puts(o, "NaN");
        return;
    }

    if (isinf(v)) {
        ts_pq_puts(o, v > 0 ? "+Inf" : "-Inf");
        return;
    }

    if (v == 0) {
        ts_pq_puts(o, signbit(v) ? "-0" : "0");
        return;
    }

    if (v < 0) {
        ts_pq_puts(o, "-");
        v = -v;
    }

    /* the shortest digits that read back as v, as Go's strconv */
    for (prec = 1; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }

    snprintf(buf, sizeof(buf), "%.*e", prec - 1, v);

    nd = 0;

    for (p = buf; *p != 'e'; p++) {
        if (*p != '.') {
            digs[nd++] = *p;
        }
    }

    exp = atoi(p + 1);

    while (nd > 1 && digs[nd - 1] == '0') {
        nd--;
    }

    digs[nd] = '\0';

    if (exp < -4 || exp >= 6) {
        ts_pq_put(o, digs, 1);

        if (nd > 1) {
            ts_pq_puts(o, ".");
            ts_pq_put(o, digs + 1, (size_t) nd - 1);
        }

        ts_pq_printf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }

    if (exp < 0) {
        ts_pq_puts(o, "0.");

        for (i = -1; i > exp; i--) {
            ts_pq_puts(o, "0");
        }

        ts_pq_put(o, digs, (size_t) nd);
        return;
    }

    for (i = 0; i <= exp; i++) {
        ts_pq_put(o, i < nd ? &digs[i] : "0", 1);
    }

    if (nd > exp + 1) {
        ts_pq_puts(o, ".");
        ts_pq_put(o, digs + exp + 1, (size_t) (nd - exp - 1));
    }
}


void
ts_pq_duration(ts_pq_out_t *o, int64_t ms)
{
    static const struct {
        const char  *unit;
        int64_t      mult;
        int          exact;
    } units[] = {
        { "y", 1000LL * 60 * 60 * 24 * 365, 1 },
        { "w", 1000LL * 60 * 60 * 24 * 7, 1 },
        { "d", 1000LL * 60 * 60 * 24, 0 },
        { "h", 1000LL * 60 * 60, 0 },
        { "m", 1000LL * 60, 0 },
        { "s", 1000, 0 },
        { "ms", 1, 0 }
    };

    size_t   i;
    int64_t  n;

    if (ms == 0) {
        ts_pq_puts(o, "0s");
        return;
    }

    /* model.Duration is unsigned in spirit: print the magnitude */
    if (ms < 0) {
        ts_pq_puts(o, "-");
        ms = ms == INT64_MIN ? INT64_MAX : -ms;
    }

    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (units[i].exact && ms % units[i].mult != 0) {
            continue;
        }

        n = ms / units[i].mult;

        if (n > 0) {
            ts_pq_printf(o, "%lld%s", (long long) n, units[i].unit);
            ms -= n * units[i].mult;
        }
    }
}


static int
ts_pq_mstream_next(ts_pq_mstream_t *st)
{
    size_t              w;
    const char         *op;
    const ts_matcher_t *m;

    m = st->m;

    for ( ;; ) {
        if (st->bpos < st->blen) {
            return (uint8_t) st->buf[st->bpos++];
        }

        switch (st->stage) {
        case 0:
            if (st->pos < m->name_len) {
                return (uint8_t) m->name[st->pos++];
            }

            op = m->type == TS_MATCH_EQ ? "="
                 : m->type == TS_MATCH_NEQ ? "!="
                 : m->type == TS_MATCH_RE ? "=~" : "!~";
            st->blen = strlen(op);
            memcpy(st->buf, op, st->blen);
            st->buf[st->blen++] = '"';
            st->bpos = 0;
            st->pos = 0;
            st->stage = 1;
            break;

        case 1:
            st->bpos = 0;

            if (st->pos < m->value_len) {
                st->blen = ts_pq_quote_rune(m->value + st->pos,
                                            m->value_len - st->pos, &w, '"',
                                            st->buf);
                st->pos += w;
                break;
            }

            st->buf[0] = '"';
            st->blen = 1;
            st->stage = 2;
            break;

        default:
            return -1;
        }
    }
}


/* Go's string comparison of two printed matchers */
static int
ts_pq_matcher_cmp(const void *a, const void *b)
{
    int              x, y;
    ts_pq_mstream_t  sa, sb;

    memset(&sa, 0, sizeof(sa));
    memset(&sb, 0, sizeof(sb));
    sa.m = *(const ts_matcher_t * const *) a;
    sb.m = *(const ts_matcher_t * const *) b;

    do {
        x = ts_pq_mstream_next(&sa);
        y = ts_pq_mstream_next(&sb);
    } while (x == y && x != -1);

    return x - y;
}


static void
ts_pq_print_matcher(ts_pq_out_t *o, const ts_matcher_t *m)
{
    ts_pq_put(o, m->name, m->name_len);
    ts_pq_puts(o, m->type == TS_MATCH_EQ ? "="
                  : m->type == TS_MATCH_NEQ ? "!="
                  : m->type == TS_MATCH_RE ? "=~" : "!~");
    ts_pq_quote(o, m->value, m->value_len, '"');
}


static void
ts_pq_print_at_offset(ts_pq_out_t *o, ts_promql_at_t kind, int64_t at,
    int64_t offset)
{
    switch (kind) {
    case TS_PQ_AT_TIME:
        ts_pq_printf(o, " @ %.3f", (double) at / 1000.0);
        break;
    case TS_PQ_AT_START:
        ts_pq_puts(o, " @ start()");
        break;
    case TS_PQ_AT_END:
        ts_pq_puts(o, " @ end()");
        break;
    default:
        break;
    }

    if (offset != 0) {
        ts_pq_puts(o, " offset ");
        ts_pq_duration(o, offset);
    }
}


/* as Prometheus, also __name__="" when the name is empty */
static int
ts_pq_is_name_matcher(const ts_promql_vector_t *v, const ts_matcher_t *m)
{
    return m->type == TS_MATCH_EQ
           && m->name_len == TS_METRIC_NAME_LABEL_LEN
           && memcmp(m->name, TS_METRIC_NAME_LABEL, m->name_len) == 0
           && m->value_len == v->name.len
           && memcmp(m->value, v->name.data, v->name.len) == 0;
}


/*
 * The matchers sorted, but for the one the name stands for.  Without
 * memory for the order (many matchers and malloc() failing) they come
 * in the order written.
 */
static void
ts_pq_print_matchers(ts_pq_out_t *o, const ts_promql_vector_t *v)
{
    uint32_t             i, n;
    const ts_matcher_t  *stack[TS_PQ_SORT_STACK], **sorted;

    sorted = stack;

    if (v->nmatchers > TS_PQ_SORT_STACK) {
        sorted = malloc(v->nmatchers * sizeof(ts_matcher_t *));
    }

    n = 0;

    for (i = 0; i < v->nmatchers; i++) {
        if (ts_pq_is_name_matcher(v, &v->matchers[i])) {
            continue;
        }

        if (sorted == NULL) {
            ts_pq_puts(o, n++ == 0 ? "{" : ",");
            ts_pq_print_matcher(o, &v->matchers[i]);
            continue;
        }

        sorted[n++] = &v->matchers[i];
    }

    if (sorted == NULL) {
        if (n > 0) {
            ts_pq_puts(o, "}");
        }

        return;
    }

    if (n > 0) {
        qsort(sorted, n, sizeof(ts_matcher_t *), ts_pq_matcher_cmp);
        ts_pq_puts(o, "{");

        for (i = 0; i < n; i++) {
            if (i > 0) {
                ts_pq_puts(o, ",");
            }

            ts_pq_print_matcher(o, sorted[i]);
        }

        ts_pq_puts(o, "}");
    }

    if (sorted != stack) {
        free(sorted);
    }
}


static void
ts_pq_print_labels(ts_pq_out_t *o, const ts_promql_labels_t *l)
{
    uint32_t  i;

    ts_pq_puts(o, "(");

    for (i = 0; i < l->n; i++) {
        if (i > 0) {
            ts_pq_puts(o, ", ");
        }

        ts_pq_put(o, l->v[i].data, l->v[i].len);
    }

    ts_pq_puts(o, ")");
}


static void
ts_pq_print_binary(ts_pq_out_t *o, const ts_promql_binary_t *b)
{
    ts_pq_print(o, b->lhs);
    ts_pq_puts(o, " ");
    ts_pq_puts(o, ts_promql_op_name(b->op));

    if (b->return_bool) {
        ts_pq_puts(o, " bool");
    }

    if (b->has_matching && (b->matching.n > 0 || b->on)) {
        ts_pq_puts(o, b->on ? " on " : " ignoring ");
        ts_pq_print_labels(o, &b->matching);

        if (b->card == TS_PQ_CARD_MANY_TO_ONE
            || b->card == TS_PQ_CARD_ONE_TO_MANY)
        {
            ts_pq_puts(o, b->card == TS_PQ_CARD_MANY_TO_ONE
                          ? " group_left " : " group_right ");
            ts_pq_print_labels(o, &b->include);
        }
    }

    ts_pq_puts(o, " ");
    ts_pq_print(o, b->rhs);
}


static void
ts_pq_print_aggregate(ts_pq_out_t *o, const ts_promql_aggregate_t *a)
{
    ts_pq_puts(o, ts_promql_agg_name(a->op));

    if (a->without || a->grouping.n > 0) {
        ts_pq_puts(o, a->without ? " without " : " by ");
        ts_pq_print_labels(o, &a->grouping);
        ts_pq_puts(o, " ");
    }

    ts_pq_puts(o, "(");

    if (a->param != NULL) {
        ts_pq_print(o, a->param);
        ts_pq_puts(o, ", ");
    }

    ts_pq_print(o, a->expr);
    ts_pq_puts(o, ")");
}


static void
ts_pq_print(ts_pq_out_t *o, const ts_promql_expr_t *e)
{
    uint32_t                    i;
    const ts_promql_vector_t   *v;
    const ts_promql_subquery_t *sq;

    switch (e->kind) {
    case TS_PQ_NUMBER:
        ts_pq_float(o, e->u.number);
        break;

    case TS_PQ_STRING:
        ts_pq_quote(o, e->u.string.data, e->u.string.len, '"');
        break;

    case TS_PQ_VECTOR:
        v = &e->u.vector;
        ts_pq_put(o, v->name.data, v->name.len);
        ts_pq_print_matchers(o, v);
        ts_pq_print_at_offset(o, v->at_kind, v->at, v->offset);
        break;

    case TS_PQ_MATRIX:
        v = &e->u.matrix.vector->u.vector;
        ts_pq_put(o, v->name.data, v->name.len);
        ts_pq_print_matchers(o, v);
        ts_pq_puts(o, "[");
        ts_pq_duration(o, e->u.matrix.range);
        ts_pq_puts(o, "]");
        ts_pq_print_at_offset(o, v->at_kind, v->at, v->offset);
        break;

    case TS_PQ_SUBQUERY:
        sq = &e->u.subquery;
        ts_pq_print(o, sq->expr);
        ts_pq_puts(o, "[");
        ts_pq_duration(o, sq->range);
        ts_pq_puts(o, ":");

        if (sq->step != 0) {
            ts_pq_duration(o, sq->step);
        }

        ts_pq_puts(o, "]");
        ts_pq_print_at_offset(o, sq->at_kind, sq->at, sq->offset);
        break;

    case TS_PQ_CALL:
        ts_pq_puts(o, e->u.call.func->name);
        ts_pq_puts(o, "(");

        for (i = 0; i < e->u.call.nargs; i++) {
            if (i > 0) {
                ts_pq_puts(o, ", ");
            }

            ts_pq_print(o, e->u.call.args[i]);
        }

        ts_pq_puts(o, ")");
        break;

    case TS_PQ_AGGREGATE:
        ts_pq_print_aggregate(o, &e->u.aggregate);
        break;

    case TS_PQ_BINARY:
        ts_pq_print_binary(o, &e->u.binary);
        break;

    case TS_PQ_UNARY:
        ts_pq_puts(o, ts_promql_op_name(e->u.unary.op));
        ts_pq_print(o, e->u.unary.expr);
        break;

    case TS_PQ_PAREN:
        ts_pq_puts(o, "(");
        ts_pq_print(o, e->u.paren);
        ts_pq_puts(o, ")");
        break;
    }
}


size_t
ts_promql_format(const ts_promql_expr_t *e, char *buf, size_t size)
{
    ts_pq_out_t  o;

    o.buf = buf;
    o.size = size;
    o.len = 0;

    if (size > 0) {
        buf[0] = '\0';
    }

    ts_pq_print(&o, e);

    return o.len;
}
