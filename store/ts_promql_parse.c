/*
 * Copyright (C) ngx_tsdb authors
 *
 * PromQL parser: recursive descent with precedence climbing over the
 * tokens of ts_promql_lex.c, then Prometheus's checkAST() type rules.
 *
 * Prometheus parses with a yacc grammar (generated_parser.y); this
 * parser accepts the same language and reports the error Prometheus
 * reports first.  Errors the grammar's actions raise (bad numbers and
 * durations, regexes, unknown functions, aggregation arity, misplaced
 * offset and @) are raised here as the tokens are read; the type rules
 * run only on a tree without such errors, as in Prometheus.  Binding:
 *
 *   or < and unless < == != <= < >= > < + - < * / % atan2 < ^ (right)
 *   unary + - bind like * but take ^ and the postfix forms into their
 *   operand; postfix [range], [range:step], offset and @ bind to the
 *   closest operand.
 *
 * Depth: every recursion counts against max_depth, and so does the
 * height of every node built, so that the checker and the printer,
 * which recurse over the tree, stay within the same bound.
 */

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_promql_lex.h"


#define TS_PQ_PREC_OR    1
#define TS_PQ_PREC_POW   6

#define TS_MS_PER_DAY    (1000LL * 60 * 60 * 24)


struct ts_promql_s {
    ts_arena_t              arena;
    ts_promql_expr_t       *root;
};


typedef struct {
    const char             *q;
    size_t                  len;
    ts_lex_t                lx;
    uint32_t                i;
    ts_arena_t             *a;
    const ts_promql_limits_t *lim;
    uint32_t                depth;
    uint32_t                last_closing;
    const char             *ctx;        /* "aggregation" inside one */
    ts_promql_error_t      *err;
    int                     failed;
} ts_pq_parser_t;


static void ts_pq_fail(ts_pq_parser_t *p, int rc, uint32_t pos,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void ts_pq_unexpected(ts_pq_parser_t *p, const char *context,
    const char *expected);
static ts_promql_expr_t *ts_pq_parse_expr(ts_pq_parser_t *p, int min_prec);
static ts_promql_expr_t *ts_pq_parse_unary(ts_pq_parser_t *p);
static ts_promql_expr_t *ts_pq_parse_postfix(ts_pq_parser_t *p,
    ts_promql_expr_t *e);
static ts_promql_expr_t *ts_pq_parse_primary(ts_pq_parser_t *p);
static int ts_pq_parse_bin_modifiers(ts_pq_parser_t *p,
    ts_promql_binary_t *b);
static void ts_pq_check(ts_pq_parser_t *p, ts_promql_expr_t *e);
static int ts_pq_parse_input(const char *q, size_t len,
    const ts_promql_limits_t *lim, ts_promql_t **out, ts_promql_error_t *err,
    int selector);
static int ts_pq_selector_start(ts_tok_type_t t);
static ts_promql_expr_t *ts_pq_parse_vector(ts_pq_parser_t *p);


static const char  *ts_pq_op_names[] = {
    "+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=",
    "<=", "and", "or", "unless"
};

static const char  *ts_pq_agg_names[] = {
    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
    "topk", "bottomk", "count_values", "quantile"
};


void
ts_promql_limits_default(ts_promql_limits_t *lim)
{
    lim->max_input = 256 * 1024;
    lim->max_depth = 1024;
    lim->max_memory = 64 * 1024 * 1024;
}


const char *
ts_promql_op_name(ts_promql_op_t op)
{
    return (unsigned) op <= TS_PQ_OP_UNLESS ? ts_pq_op_names[op] : "?";
}


const char *
ts_promql_agg_name(ts_promql_agg_t op)
{
    return (unsigned) op <= TS_PQ_AGG_QUANTILE ? ts_pq_agg_names[op] : "?";
}


const char *
ts_promql_type_name(ts_promql_type_t t)
{
    switch (t) {
    case TS_PQ_TYPE_SCALAR: return "scalar";
    case TS_PQ_TYPE_VECTOR: return "instant vector";
    case TS_PQ_TYPE_MATRIX: return "range vector";
    case TS_PQ_TYPE_STRING: return "string";
    default: return "none";
    }
}


/* Prometheus's ValueType.String() */
static const char *
ts_pq_type_str(ts_promql_type_t t)
{
    switch (t) {
    case TS_PQ_TYPE_SCALAR: return "scalar";
    case TS_PQ_TYPE_VECTOR: return "vector";
    case TS_PQ_TYPE_MATRIX: return "matrix";
    case TS_PQ_TYPE_STRING: return "string";
    default: return "none";
    }
}


int
ts_promql_op_is_comparison(ts_promql_op_t op)
{
    return op >= TS_PQ_OP_EQLC && op <= TS_PQ_OP_LTE;
}


int
ts_promql_op_is_set(ts_promql_op_t op)
{
    return op >= TS_PQ_OP_AND && op <= TS_PQ_OP_UNLESS;
}


static int
ts_pq_prec(ts_tok_type_t t)
{
    switch (t) {
    case TS_T_LOR:
        return 1;
    case TS_T_LAND: case TS_T_LUNLESS:
        return 2;
    case TS_T_EQLC: case TS_T_NEQ: case TS_T_GTR: case TS_T_LSS:
    case TS_T_GTE: case TS_T_LTE:
        return 3;
    case TS_T_ADD: case TS_T_SUB:
        return 4;
    case TS_T_MUL: case TS_T_DIV: case TS_T_MOD: case TS_T_ATAN2:
        return 5;
    case TS_T_POW:
        return 6;
    default:
        return 0;
    }
}


int
ts_promql_parse(const char *q, size_t len, const ts_promql_limits_t *lim,
    ts_promql_t **out, ts_promql_error_t *err)
{
    return ts_pq_parse_input(q, len, lim, out, err, 0);
}


int
ts_promql_parse_selector(const char *q, size_t len,
    const ts_promql_limits_t *lim, ts_promql_t **out, ts_promql_error_t *err)
{
    return ts_pq_parse_input(q, len, lim, out, err, 1);
}


/*
 * selector: Prometheus's ParseMetricSelector(), the grammar's
 * START_METRIC_SELECTOR: a vector selector and nothing else (no offset,
 * @, range or parentheses), with none of the checks an expression gets
 * after parsing (a second metric name is just another matcher).
 */
static int
ts_pq_parse_input(const char *q, size_t len, const ts_promql_limits_t *lim,
    ts_promql_t **out, ts_promql_error_t *err, int selector)
{
    int                  rc;
    ts_promql_t         *pq;
    ts_pq_parser_t       p;
    ts_promql_error_t    dummy;
    ts_promql_limits_t   def;
    ts_promql_expr_t    *e;

    *out = NULL;

    if (err == NULL) {
        err = &dummy;
    }

    memset(err, 0, sizeof(ts_promql_error_t));

    if (lim == NULL) {
        ts_promql_limits_default(&def);
        lim = &def;
    }

    memset(&p, 0, sizeof(ts_pq_parser_t));
    p.q = q;
    p.len = len;
    p.lim = lim;
    p.err = err;

    if (len > lim->max_input || len >= UINT32_MAX) {
        ts_pq_fail(&p, TS_ERR_LIMIT, 0,
                   "query of %zu bytes is longer than the limit of %zu",
                   len, lim->max_input);
        return err->rc;
    }

    pq = calloc(1, sizeof(ts_promql_t));
    if (pq == NULL) {
        ts_pq_fail(&p, TS_ERR_NOMEM, 0, "out of memory");
        return err->rc;
    }

    pq->arena.max = lim->max_memory;
    p.a = &pq->arena;

    rc = ts_promql_lex(&p.lx, q, len, p.a);
    if (rc != TS_OK) {
        ts_pq_fail(&p, TS_ERR_LIMIT, 0, "query needs more than %zu bytes "
                   "of memory to parse", lim->max_memory);
        goto failed;
    }

    if (selector) {
        e = ts_pq_selector_start(p.lx.tok[0].type) ? ts_pq_parse_vector(&p)
                                                   : NULL;
        if (e == NULL && !p.failed) {
            ts_pq_unexpected(&p, NULL, NULL);
        }

    } else if (p.lx.tok[0].type == TS_T_EOF) {
        ts_pq_fail(&p, TS_ERR_INVALID, 0, "no expression found in input");
        goto failed;

    } else {
        e = ts_pq_parse_expr(&p, TS_PQ_PREC_OR);
    }

    if (e != NULL && p.lx.tok[p.i].type != TS_T_EOF) {
        ts_pq_unexpected(&p, NULL, NULL);
    }

    if (!p.failed && !selector) {
        ts_pq_check(&p, e);
    }

    if (p.failed) {
        goto failed;
    }

    pq->root = e;
    *out = pq;

    return TS_OK;

failed:

    ts_arena_free(&pq->arena);
    free(pq);

    return err->rc;
}


const ts_promql_expr_t *
ts_promql_root(const ts_promql_t *pq)
{
    return pq->root;
}


size_t
ts_promql_memory(const ts_promql_t *pq)
{
    return pq->arena.used;
}


void
ts_promql_free(ts_promql_t *pq)
{
    if (pq == NULL) {
        return;
    }

    ts_arena_free(&pq->arena);
    free(pq);
}


size_t
ts_promql_error_format(const ts_promql_error_t *err, char *buf, size_t size)
{
    int  n;

    n = snprintf(buf, size, "%u:%u: parse error: %s", err->line, err->col,
                 err->msg);

    return n < 0 ? 0 : (size_t) n;
}


static void
ts_pq_fail(ts_pq_parser_t *p, int rc, uint32_t pos, const char *fmt, ...)
{
    size_t              i;
    va_list             ap;
    ts_promql_error_t  *err;

    if (p->failed) {
        return;
    }

    p->failed = 1;
    err = p->err;
    err->rc = rc;
    err->pos = pos;
    err->line = 1;
    err->col = pos + 1;

    for (i = 0; i < pos && i < p->len; i++) {
        if (p->q[i] == '\n') {
            err->line++;
            err->col = (uint32_t) (pos - i);
        }
    }

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}


static void *
ts_pq_alloc(ts_pq_parser_t *p, size_t size)
{
    void  *m;

    m = ts_arena_alloc(p->a, size);

    if (m == NULL) {
        ts_pq_fail(p, TS_ERR_LIMIT, p->lx.tok[p->i].pos,
                   "query needs more than %zu bytes of memory to parse",
                   p->lim->max_memory);
        return NULL;
    }

    memset(m, 0, size);

    return m;
}


/*
 * Room for element n of an array growing by doubling in the arena (the
 * copies left behind add up to less than the final array).
 */
static void *
ts_pq_grow(ts_pq_parser_t *p, void *arr, uint32_t *cap, uint32_t n,
    size_t size)
{
    void  *m;

    if (n < *cap) {
        return arr;
    }

    m = ts_pq_alloc(p, (size_t) (*cap ? *cap * 2 : 4) * size);
    if (m == NULL) {
        return NULL;
    }

    if (n > 0) {
        memcpy(m, arr, n * size);
    }

    *cap = *cap ? *cap * 2 : 4;

    return m;
}


static ts_tok_t *
ts_pq_tok(ts_pq_parser_t *p)
{
    return &p->lx.tok[p->i];
}


static ts_tok_type_t
ts_pq_peek2(ts_pq_parser_t *p)
{
    ts_tok_t  *t;

    t = &p->lx.tok[p->i];

    if (t->type == TS_T_EOF || t->type == TS_T_ERROR) {
        return t->type;
    }

    return t[1].type;
}


static ts_tok_t *
ts_pq_next(ts_pq_parser_t *p)
{
    ts_tok_t  *t;

    t = &p->lx.tok[p->i];

    switch (t->type) {
    case TS_T_RPAREN: case TS_T_RBRACE: case TS_T_RBRACKET:
    case TS_T_DURATION: case TS_T_NUMBER:
        p->last_closing = t->pos + t->len;
        break;
    default:
        break;
    }

    if (t->type != TS_T_EOF && t->type != TS_T_ERROR) {
        p->i++;
    }

    return t;
}


/* Go's %q of a token's text, or its first 10 runes and "..." */
static void
ts_pq_tok_quote(ts_pq_out_t *o, const char *s, size_t len, int cut)
{
    size_t  n, k, w;

    if (cut) {
        for (n = 0, k = 0; n < 10 && k < len; n++) {
            (void) ts_promql_utf8_decode(s + k, len - k, &w);
            k += w;
        }

        if (k < len) {
            ts_pq_quote(o, s, k, '"');
            ts_pq_puts(o, "...");
            return;
        }
    }

    ts_pq_quote(o, s, len, '"');
}


/* Prometheus's Item.desc() */
static void
ts_pq_tok_desc(ts_pq_parser_t *p, ts_tok_t *t, ts_pq_out_t *o)
{
    const char  *s, *what;

    s = p->q + t->pos;
    what = NULL;

    switch (t->type) {
    case TS_T_EOF:
        ts_pq_puts(o, "end of input");
        return;
    case TS_T_IDENT:
        ts_pq_puts(o, "identifier ");
        ts_pq_tok_quote(o, s, t->len, 0);
        return;
    case TS_T_METRIC_IDENT:
        ts_pq_puts(o, "metric identifier ");
        ts_pq_tok_quote(o, s, t->len, 0);
        return;
    case TS_T_NUMBER:
        what = "number ";
        break;
    case TS_T_DURATION:
        what = "duration ";
        break;
    case TS_T_STRING:
        what = "string ";
        break;
    default:
        break;
    }

    if (what != NULL) {
        ts_pq_puts(o, what);
        ts_pq_tok_quote(o, s, t->len, 1);
        return;
    }

    if (t->type == TS_T_AT) {
        /* AT is missing from Go's ItemTypeStr: it is described thus */
        ts_pq_puts(o, "\"<Item 57385>\" <op:@>");

    } else if (ts_tok_is_keyword(t->type)) {
        ts_pq_printf(o, "<%.*s>", (int) t->len, s);

    } else if (ts_tok_is_binop(t->type) || t->type == TS_T_EQL_REGEX
               || t->type == TS_T_NEQ_REGEX)
    {
        ts_pq_printf(o, "<op:%.*s>", (int) t->len, s);

    } else if (ts_tok_is_agg(t->type)) {
        ts_pq_printf(o, "<aggr:%.*s>", (int) t->len, s);

    } else {
        ts_pq_tok_quote(o, s, t->len, 1);
    }
}


/* Prometheus's parser.unexpected() at the current token */
static void
ts_pq_unexpected(ts_pq_parser_t *p, const char *context,
    const char *expected)
{
    char         msg[TS_PROMQL_MSG_SIZE];
    ts_tok_t    *t;
    ts_pq_out_t  o;

    t = ts_pq_tok(p);

    if (t->type == TS_T_ERROR) {
        ts_pq_fail(p, TS_ERR_INVALID, p->lx.err_pos, "%s", p->lx.err);
        return;
    }

    if (context == NULL) {
        context = p->ctx;
    }

    o.buf = msg;
    o.size = sizeof(msg);
    o.len = 0;

    ts_pq_puts(&o, "unexpected ");
    ts_pq_tok_desc(p, t, &o);

    if (context != NULL) {
        ts_pq_printf(&o, " in %s", context);
    }

    if (expected != NULL) {
        ts_pq_printf(&o, ", expected %s", expected);
    }

    ts_pq_fail(p, TS_ERR_INVALID, t->pos, "%s", msg);
}


static ts_promql_expr_t *
ts_pq_node(ts_pq_parser_t *p, ts_promql_kind_t kind, uint32_t start,
    uint32_t end)
{
    ts_promql_expr_t  *e;

    e = ts_pq_alloc(p, sizeof(ts_promql_expr_t));
    if (e == NULL) {
        return NULL;
    }

    e->kind = kind;
    e->start = start;
    e->end = end;
    e->height = 1;

    return e;
}


/* a node over children: height one more than theirs, bounded */
static int
ts_pq_over(ts_pq_parser_t *p, ts_promql_expr_t *e, ts_promql_expr_t *c)
{
    if (c != NULL && c->height + 1 > e->height) {
        e->height = c->height + 1;
    }

    if (e->height > p->lim->max_depth) {
        ts_pq_fail(p, TS_ERR_LIMIT, e->start,
                   "expression nests deeper than the limit of %u",
                   p->lim->max_depth);
        return TS_ERR_LIMIT;
    }

    return TS_OK;
}


static int
ts_pq_enter(ts_pq_parser_t *p)
{
    if (++p->depth > p->lim->max_depth) {
        ts_pq_fail(p, TS_ERR_LIMIT, ts_pq_tok(p)->pos,
                   "expression nests deeper than the limit of %u",
                   p->lim->max_depth);
        return TS_ERR_LIMIT;
    }

    return TS_OK;
}


static ts_promql_expr_t *
ts_pq_parse_expr(ts_pq_parser_t *p, int min_prec)
{
    int                  prec;
    ts_tok_t            *op;
    ts_promql_expr_t    *lhs, *rhs, *b;
    ts_promql_binary_t   mod;

    if (ts_pq_enter(p) != TS_OK) {
        return NULL;
    }

    lhs = ts_pq_parse_unary(p);

    while (lhs != NULL) {
        op = ts_pq_tok(p);
        prec = ts_pq_prec(op->type);

        if (prec == 0 || prec < min_prec) {
            break;
        }

        (void) ts_pq_next(p);

        memset(&mod, 0, sizeof(ts_promql_binary_t));

        if (ts_pq_parse_bin_modifiers(p, &mod) != TS_OK) {
            lhs = NULL;
            break;
        }

        /* ^ is right-associative, the others left */
        rhs = ts_pq_parse_expr(p, op->type == TS_T_POW ? prec : prec + 1);
        if (rhs == NULL) {
            lhs = NULL;
            break;
        }

        b = ts_pq_node(p, TS_PQ_BINARY, lhs->start, rhs->end);
        if (b == NULL) {
            lhs = NULL;
            break;
        }

        b->u.binary = mod;
        b->u.binary.op = (ts_promql_op_t) (op->type - TS_T_ADD);
        b->u.binary.lhs = lhs;
        b->u.binary.rhs = rhs;
        b->type = (lhs->type == TS_PQ_TYPE_SCALAR
                   && rhs->type == TS_PQ_TYPE_SCALAR)
                  ? TS_PQ_TYPE_SCALAR : TS_PQ_TYPE_VECTOR;

        if (ts_pq_over(p, b, lhs) != TS_OK || ts_pq_over(p, b, rhs) != TS_OK)
        {
            lhs = NULL;
            break;
        }

        lhs = b;
    }

    p->depth--;

    return lhs;
}


static ts_promql_expr_t *
ts_pq_parse_unary(ts_pq_parser_t *p)
{
    ts_tok_t          *op;
    ts_promql_expr_t  *e, *u;

    op = ts_pq_tok(p);

    if (op->type != TS_T_ADD && op->type != TS_T_SUB) {
        e = ts_pq_parse_primary(p);
        return e ? ts_pq_parse_postfix(p, e) : NULL;
    }

    (void) ts_pq_next(p);

    /* the operand takes ^ and the postfix forms, as "%prec MUL" does */
    e = ts_pq_parse_expr(p, TS_PQ_PREC_POW);
    if (e == NULL) {
        return NULL;
    }

    if (e->kind == TS_PQ_NUMBER) {
        if (op->type == TS_T_SUB) {
            e->u.number *= -1;
        }

        e->start = op->pos;
        return e;
    }

    u = ts_pq_node(p, TS_PQ_UNARY, op->pos, e->end);
    if (u == NULL) {
        return NULL;
    }

    u->u.unary.op = op->type == TS_T_SUB ? TS_PQ_OP_SUB : TS_PQ_OP_ADD;
    u->u.unary.expr = e;
    u->type = e->type;

    return ts_pq_over(p, u, e) == TS_OK ? u : NULL;
}


/*
 * Prometheus's model.ParseDuration() and parseDuration(): units y w d h
 * m s ms, each at most once and in that order; milliseconds, > 0.
 */
static int
ts_pq_parse_duration(ts_pq_parser_t *p, ts_tok_t *t, int64_t *ms)
{
    static const struct {
        const char  *unit;
        int64_t      mult;
    } units[] = {
        { "y", 365 * TS_MS_PER_DAY }, { "w", 7 * TS_MS_PER_DAY },
        { "d", TS_MS_PER_DAY }, { "h", 1000LL * 60 * 60 },
        { "m", 1000LL * 60 }, { "s", 1000 }, { "ms", 1 }
    };

    int          over;
    size_t       k, len, ulen, u, next;
    int64_t      n, dur, add;
    const char  *s;

    s = p->q + t->pos;
    len = t->len;
    k = 0;
    next = 0;
    dur = 0;
    over = 0;

    while (k < len) {
        if (s[k] < '0' || s[k] > '9') {
            goto invalid;
        }

        n = 0;

        while (k < len && s[k] >= '0' && s[k] <= '9') {
            n = (n > (INT64_MAX - 9) / 10) ? INT64_MAX : n * 10 + (s[k] - '0');
            k++;
        }

        ulen = (k + 1 < len && s[k] == 'm' && s[k + 1] == 's') ? 2 : 1;

        for (u = next; u < 7; u++) {
            if (k + ulen <= len && strlen(units[u].unit) == ulen
                && memcmp(units[u].unit, s + k, ulen) == 0)
            {
                break;
            }
        }

        if (u == 7) {
            goto invalid;
        }

        k += ulen;
        next = u + 1;

        /* Go counts in nanoseconds: bound by INT64_MAX ns */
        if (n > INT64_MAX / units[u].mult / 1000000) {
            over = 1;
            continue;
        }

        add = n * units[u].mult;

        if (add > INT64_MAX / 1000000 - dur) {
            over = 1;
            continue;
        }

        dur += add;
    }

    if (over) {
        ts_pq_fail(p, TS_ERR_INVALID, t->pos, "duration out of range");
        return TS_ERR_INVALID;
    }

    if (dur == 0) {
        ts_pq_fail(p, TS_ERR_INVALID, t->pos,
                   "duration must be greater than 0");
        return TS_ERR_INVALID;
    }

    *ms = dur;

    return TS_OK;

invalid:

    ts_pq_fail(p, TS_ERR_INVALID, t->pos,
               "not a valid duration string: \"%.*s\"", (int) len, s);

    return TS_ERR_INVALID;
}


/* Go's strconv.ParseInt(s, 0, 64): 0, or -1 (syntax or range) */
static int
ts_pq_parse_int(const char *s, size_t len, double *v)
{
    int       d;
    size_t    k;
    uint64_t  n, base;

    k = 0;
    base = 10;

    if (len > 1 && s[0] == '0') {
        if (s[1] == 'x' || s[1] == 'X') {
            base = 16;
            k = 2;

        } else {
            base = 8;
            k = 1;
        }
    }

    if (k == len && base == 16) {
        return -1;
    }

    n = 0;

    for ( ; k < len; k++) {
        if (s[k] >= '0' && s[k] <= '9') {
            d = s[k] - '0';
        } else if (s[k] >= 'a' && s[k] <= 'f') {
            d = s[k] - 'a' + 10;
        } else if (s[k] >= 'A' && s[k] <= 'F') {
            d = s[k] - 'A' + 10;
        } else {
            return -1;
        }

        if ((uint64_t) d >= base || n > (uint64_t) (INT64_MAX - d) / base) {
            return -1;
        }

        n = n * base + (uint64_t) d;
    }

    *v = (double) n;

    return 0;
}


/* Prometheus's parser.number(): ParseInt(s, 0, 64), else ParseFloat */
static int
ts_pq_number(ts_pq_parser_t *p, ts_tok_t *t, double *v)
{
    char        *buf, *end;
    size_t       k, len, digits;
    const char  *s;

    s = p->q + t->pos;
    len = t->len;

    if (ts_pq_parse_int(s, len, v) == 0) {
        return TS_OK;
    }

    if (len == 3 && strncasecmp(s, "inf", 3) == 0) {
        *v = INFINITY;
        return TS_OK;
    }

    if (len == 3 && strncasecmp(s, "nan", 3) == 0) {
        *v = NAN;
        return TS_OK;
    }

    /* what Go's ParseFloat takes of what the lexer gives: decimals */
    k = 0;
    digits = 0;

    while (k < len && s[k] >= '0' && s[k] <= '9') {
        k++; digits++;
    }

    if (k < len && s[k] == '.') {
        for (k++; k < len && s[k] >= '0' && s[k] <= '9'; k++) {
            digits++;
        }
    }

    if (digits > 0 && k < len && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < len && (s[k] == '+' || s[k] == '-')) {
            k++;
        }

        if (k == len || s[k] < '0' || s[k] > '9') {
            digits = 0;
        }

        while (k < len && s[k] >= '0' && s[k] <= '9') {
            k++;
        }
    }

    if (digits == 0 || k != len) {
        ts_pq_fail(p, TS_ERR_INVALID, t->pos, "error parsing number: "
                   "strconv.ParseFloat: parsing \"%.*s\": invalid syntax",
                   (int) len, s);
        return TS_ERR_INVALID;
    }

    buf = ts_pq_alloc(p, len + 1);
    if (buf == NULL) {
        return TS_ERR_NOMEM;
    }

    memcpy(buf, s, len);
    buf[len] = '\0';

    *v = strtod(buf, &end);

    if (isinf(*v)) {
        ts_pq_fail(p, TS_ERR_INVALID, t->pos, "error parsing number: "
                   "strconv.ParseFloat: parsing \"%.*s\": value out of "
                   "range", (int) len, s);
        return TS_ERR_INVALID;
    }

    return TS_OK;
}


static int
ts_pq_string(ts_pq_parser_t *p, ts_tok_t *t, ts_promql_str_t *out)
{
    int          rc;
    char         msg[TS_PROMQL_MSG_SIZE];
    ts_pq_out_t  o;

    rc = ts_promql_unquote(p->q + t->pos, t->len, p->a, out);

    if (rc == TS_ERR_NOMEM) {
        ts_pq_fail(p, TS_ERR_LIMIT, t->pos, "query needs more than %zu "
                   "bytes of memory to parse", p->lim->max_memory);
        return rc;
    }

    if (rc != TS_OK) {
        o.buf = msg;
        o.size = sizeof(msg);
        o.len = 0;
        ts_pq_quote(&o, p->q + t->pos, t->len, '"');
        ts_pq_fail(p, TS_ERR_INVALID, t->pos,
                   "error unquoting string %s: invalid syntax", msg);
    }

    return rc;
}


static ts_promql_expr_t *
ts_pq_parse_number(ts_pq_parser_t *p)
{
    ts_tok_t          *t;
    ts_promql_expr_t  *e;

    t = ts_pq_next(p);

    e = ts_pq_node(p, TS_PQ_NUMBER, t->pos, t->pos + t->len);
    if (e == NULL || ts_pq_number(p, t, &e->u.number) != TS_OK) {
        return NULL;
    }

    e->type = TS_PQ_TYPE_SCALAR;

    return e;
}


static ts_promql_expr_t *
ts_pq_parse_string(ts_pq_parser_t *p)
{
    ts_tok_t          *t;
    ts_promql_expr_t  *e;

    t = ts_pq_next(p);

    e = ts_pq_node(p, TS_PQ_STRING, t->pos, t->pos + t->len);
    if (e == NULL || ts_pq_string(p, t, &e->u.string) != TS_OK) {
        return NULL;
    }

    e->type = TS_PQ_TYPE_STRING;

    return e;
}


static ts_promql_expr_t *
ts_pq_parse_paren(ts_pq_parser_t *p)
{
    ts_tok_t          *t;
    ts_promql_expr_t  *e, *inner;

    t = ts_pq_next(p);

    inner = ts_pq_parse_expr(p, TS_PQ_PREC_OR);
    if (inner == NULL) {
        return NULL;
    }

    if (ts_pq_tok(p)->type != TS_T_RPAREN) {
        ts_pq_unexpected(p, NULL, NULL);
        return NULL;
    }

    (void) ts_pq_next(p);

    e = ts_pq_node(p, TS_PQ_PAREN, t->pos, p->last_closing);
    if (e == NULL) {
        return NULL;
    }

    e->u.paren = inner;
    e->type = inner->type;

    return ts_pq_over(p, e, inner) == TS_OK ? e : NULL;
}


/*
 * Go 1.19's regexp (Prometheus 2.42) does not know "(?<name>re)",
 * which RE2, Go 1.22 and ts_select take: reject it as 2.42 does.
 */
static int
ts_pq_regex_go119(const char *s, size_t n)
{
    int     cls;
    size_t  i;

    cls = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '\\') {
            i++;

        } else if (cls) {
            if (s[i] == '[' && i + 1 < n && s[i + 1] == ':') {
                while (i + 1 < n && !(s[i] == ':' && s[i + 1] == ']')) {
                    i++;
                }
                i++;

            } else if (s[i] == ']') {
                cls = 0;
            }

        } else if (s[i] == '[') {
            cls = 1;
            i += (i + 1 < n && s[i + 1] == '^');
            i += (i + 1 < n && s[i + 1] == ']');

        } else if (s[i] == '(' && i + 2 < n && s[i + 1] == '?'
                   && s[i + 2] == '<')
        {
            return TS_ERR_INVALID;
        }
    }

    return TS_OK;
}


/*
 * One matcher of a selector; "" matched by every matcher so far is
 * tracked in *nonempty (Prometheus's Matches("") check needs the
 * regex, compiled here with the same code the evaluator uses).
 */
static int
ts_pq_matcher(ts_pq_parser_t *p, ts_matcher_t *m, ts_tok_t *name,
    int *nonempty)
{
    int                  rc;
    char                 msg[TS_SELECT_MSG_SIZE], *r;
    ts_tok_t            *op, *val;
    ts_promql_str_t      v;
    ts_selector_t       *sel;
    ts_select_limits_t   sl;

    op = ts_pq_next(p);
    val = ts_pq_next(p);

    if (ts_pq_string(p, val, &v) != TS_OK) {
        return TS_ERR_INVALID;
    }

    m->name = p->q + name->pos;
    m->name_len = name->len;
    m->value = v.data;
    m->value_len = v.len;

    switch (op->type) {
    case TS_T_EQL:
        m->type = TS_MATCH_EQ;
        *nonempty |= v.len > 0;
        return TS_OK;

    case TS_T_NEQ:
        m->type = TS_MATCH_NEQ;
        *nonempty |= v.len == 0;
        return TS_OK;

    case TS_T_EQL_REGEX:
        m->type = TS_MATCH_RE;
        break;

    default:
        m->type = TS_MATCH_NRE;
        break;
    }

    if (ts_pq_regex_go119(v.data, v.len) != TS_OK) {
        ts_pq_fail(p, TS_ERR_INVALID, name->pos, "error parsing regexp: "
                   "invalid or unsupported Perl syntax: `(?<`");
        return TS_ERR_INVALID;
    }

    ts_select_limits_default(&sl);
    sl.max_regex_len = UINT32_MAX;

    rc = ts_selector_compile(&sel, m, 1, &sl, msg, sizeof(msg));

    if (rc == TS_ERR_NOMEM) {
        ts_pq_fail(p, TS_ERR_NOMEM, name->pos, "out of memory");
        return rc;
    }

    if (rc != TS_OK) {
        /* ts_select names the matcher; Prometheus's position does */
        r = strstr(msg, "\": ");
        r = (r != NULL && strncmp(msg, "invalid regex for ", 18) == 0)
            ? r + 3 : msg;

        ts_pq_fail(p, TS_ERR_INVALID, name->pos,
                   "error parsing regexp: %s", r);
        return rc;
    }

    *nonempty |= ts_selector_match(sel, NULL, 0) == 0;

    ts_selector_free(sel);

    return TS_OK;
}


/* "{" matchers "}" into v: copies the names into the arena */
static int
ts_pq_parse_matchers(ts_pq_parser_t *p, ts_promql_vector_t *v, int *nonempty)
{
    char          *s;
    uint32_t       n, cap, i;
    ts_tok_t      *t;
    ts_matcher_t  *m;

    (void) ts_pq_next(p);

    m = NULL;
    n = 0;
    cap = 0;

    while (ts_pq_tok(p)->type != TS_T_RBRACE) {
        t = ts_pq_tok(p);

        if (t->type != TS_T_IDENT) {
            ts_pq_unexpected(p, "label matching", "identifier or \"}\"");
            return TS_ERR_INVALID;
        }

        (void) ts_pq_next(p);

        switch (ts_pq_tok(p)->type) {
        case TS_T_EQL: case TS_T_NEQ: case TS_T_EQL_REGEX: case TS_T_NEQ_REGEX:
            break;
        default:
            ts_pq_unexpected(p, "label matching", "label matching operator");
            return TS_ERR_INVALID;
        }

        if (ts_pq_peek2(p) != TS_T_STRING) {
            (void) ts_pq_next(p);
            ts_pq_unexpected(p, "label matching", "string");
            return TS_ERR_INVALID;
        }

        m = ts_pq_grow(p, m, &cap, n, sizeof(ts_matcher_t));

        if (m == NULL || ts_pq_matcher(p, &m[n++], t, nonempty) != TS_OK) {
            return TS_ERR_INVALID;
        }

        if (ts_pq_tok(p)->type == TS_T_COMMA) {
            (void) ts_pq_next(p);
            continue;
        }

        if (ts_pq_tok(p)->type != TS_T_RBRACE) {
            ts_pq_unexpected(p, "label matching", "\",\" or \"}\"");
            return TS_ERR_INVALID;
        }
    }

    (void) ts_pq_next(p);

    /* names point into the query: copy them */
    for (i = 0; i < n; i++) {
        s = ts_pq_alloc(p, m[i].name_len + 1);
        if (s == NULL) {
            return TS_ERR_NOMEM;
        }

        memcpy(s, m[i].name, m[i].name_len);
        m[i].name = s;
    }

    v->matchers = m;
    v->nmatchers = n;

    return TS_OK;
}


static ts_promql_expr_t *
ts_pq_parse_vector(ts_pq_parser_t *p)
{
    int                  nonempty;
    char                *s;
    ts_tok_t            *t;
    ts_matcher_t        *m;
    ts_promql_expr_t    *e;
    ts_promql_vector_t  *v;

    t = ts_pq_tok(p);

    e = ts_pq_node(p, TS_PQ_VECTOR, t->pos, t->pos + t->len);
    if (e == NULL) {
        return NULL;
    }

    e->type = TS_PQ_TYPE_VECTOR;
    v = &e->u.vector;
    v->name.data = "";
    nonempty = 0;

    if (t->type != TS_T_LBRACE) {
        s = ts_pq_alloc(p, t->len + 1);
        if (s == NULL) {
            return NULL;
        }

        memcpy(s, p->q + t->pos, t->len);
        v->name.data = s;
        v->name.len = t->len;
        (void) ts_pq_next(p);
    }

    if (ts_pq_tok(p)->type == TS_T_LBRACE) {
        if (ts_pq_parse_matchers(p, v, &nonempty) != TS_OK) {
            return NULL;
        }

        e->end = p->last_closing;
    }

    if (v->name.len > 0) {
        /* Prometheus appends __name__="name" to the matchers */
        m = ts_pq_alloc(p, (v->nmatchers + 1) * sizeof(ts_matcher_t));
        if (m == NULL) {
            return NULL;
        }

        if (v->nmatchers > 0) {
            memcpy(m, v->matchers, v->nmatchers * sizeof(ts_matcher_t));
        }

        m[v->nmatchers].type = TS_MATCH_EQ;
        m[v->nmatchers].name = TS_METRIC_NAME_LABEL;
        m[v->nmatchers].name_len = TS_METRIC_NAME_LABEL_LEN;
        m[v->nmatchers].value = v->name.data;
        m[v->nmatchers].value_len = v->name.len;
        v->matchers = m;
        v->nmatchers++;
        nonempty = 1;
    }

    /* checked with the types, after parsing, as Prometheus does */
    v->nonempty = nonempty;

    return e;
}


static int
ts_pq_is_label(const char *s, size_t len)
{
    size_t  i;

    if (len == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z')
              || (s[i] >= 'A' && s[i] <= 'Z')
              || (i > 0 && s[i] >= '0' && s[i] <= '9')))
        {
            return 0;
        }
    }

    return 1;
}


/* the tokens the grammar's maybe_label takes */
static int
ts_pq_maybe_label(ts_tok_type_t t)
{
    switch (t) {
    case TS_T_IDENT: case TS_T_METRIC_IDENT:
    case TS_T_LAND: case TS_T_LOR: case TS_T_LUNLESS: case TS_T_ATAN2:
    case TS_T_BOOL: case TS_T_BY: case TS_T_GROUP_LEFT:
    case TS_T_GROUP_RIGHT: case TS_T_IGNORING: case TS_T_OFFSET:
    case TS_T_ON: case TS_T_START: case TS_T_END:
        return 1;
    default:
        return ts_tok_is_agg(t);
    }
}


/* "(" labels ")" of by, without, on, ignoring, group_left/right */
static int
ts_pq_parse_labels(ts_pq_parser_t *p, ts_promql_labels_t *out)
{
    char       *s;
    uint32_t    n, cap;
    ts_tok_t   *t;

    if (ts_pq_tok(p)->type != TS_T_LPAREN) {
        ts_pq_unexpected(p, "grouping opts", "\"(\"");
        return TS_ERR_INVALID;
    }

    (void) ts_pq_next(p);

    out->v = NULL;
    n = 0;
    cap = 0;

    while (ts_pq_tok(p)->type != TS_T_RPAREN) {
        t = ts_pq_tok(p);

        if (!ts_pq_maybe_label(t->type)
            || !ts_pq_is_label(p->q + t->pos, t->len))
        {
            ts_pq_unexpected(p, "grouping opts", "label");
            return TS_ERR_INVALID;
        }

        s = ts_pq_alloc(p, t->len + 1);
        out->v = ts_pq_grow(p, out->v, &cap, n, sizeof(ts_promql_str_t));

        if (s == NULL || out->v == NULL) {
            return TS_ERR_NOMEM;
        }

        memcpy(s, p->q + t->pos, t->len);
        out->v[n].data = s;
        out->v[n].len = t->len;
        n++;

        (void) ts_pq_next(p);

        if (ts_pq_tok(p)->type == TS_T_COMMA) {
            (void) ts_pq_next(p);
            continue;
        }

        if (ts_pq_tok(p)->type != TS_T_RPAREN) {
            ts_pq_unexpected(p, "grouping opts", "\",\" or \")\"");
            return TS_ERR_INVALID;
        }
    }

    (void) ts_pq_next(p);
    out->n = n;

    return TS_OK;
}


/* whether t can begin an expression */
static int
ts_pq_starts_expr(ts_tok_type_t t)
{
    switch (t) {
    case TS_T_NUMBER: case TS_T_STRING: case TS_T_LPAREN: case TS_T_LBRACE:
    case TS_T_ADD: case TS_T_SUB: case TS_T_IDENT: case TS_T_METRIC_IDENT:
    case TS_T_LAND: case TS_T_LOR: case TS_T_LUNLESS: case TS_T_BY:
    case TS_T_WITHOUT: case TS_T_OFFSET: case TS_T_START: case TS_T_END:
        return 1;
    default:
        return ts_tok_is_agg(t);
    }
}


/* bool, on/ignoring (...), group_left/group_right [(...)] */
static int
ts_pq_parse_bin_modifiers(ts_pq_parser_t *p, ts_promql_binary_t *b)
{
    ts_tok_type_t  t;

    b->card = TS_PQ_CARD_ONE_TO_ONE;
    b->has_matching = 1;

    if (ts_pq_tok(p)->type == TS_T_BOOL) {
        (void) ts_pq_next(p);
        b->return_bool = 1;
    }

    t = ts_pq_tok(p)->type;

    if (t != TS_T_ON && t != TS_T_IGNORING) {
        return TS_OK;
    }

    (void) ts_pq_next(p);
    b->on = t == TS_T_ON;

    if (ts_pq_parse_labels(p, &b->matching) != TS_OK) {
        return TS_ERR_INVALID;
    }

    t = ts_pq_tok(p)->type;

    if (t != TS_T_GROUP_LEFT && t != TS_T_GROUP_RIGHT) {
        return TS_OK;
    }

    (void) ts_pq_next(p);
    b->card = t == TS_T_GROUP_LEFT ? TS_PQ_CARD_MANY_TO_ONE
                                   : TS_PQ_CARD_ONE_TO_MANY;

    if (ts_pq_tok(p)->type == TS_T_LPAREN
        || !ts_pq_starts_expr(ts_pq_tok(p)->type))
    {
        return ts_pq_parse_labels(p, &b->include);
    }

    return TS_OK;
}


/* "(" args ")" of a call or an aggregation */
static int
ts_pq_parse_args(ts_pq_parser_t *p, ts_promql_expr_t ***args, uint32_t *n)
{
    uint32_t            cap;
    ts_promql_expr_t  **v, *e;

    (void) ts_pq_next(p);

    *n = 0;
    *args = NULL;
    v = NULL;
    cap = 0;

    if (ts_pq_tok(p)->type == TS_T_RPAREN) {
        (void) ts_pq_next(p);
        return TS_OK;
    }

    for ( ;; ) {
        e = ts_pq_parse_expr(p, TS_PQ_PREC_OR);
        if (e == NULL) {
            return TS_ERR_INVALID;
        }

        v = ts_pq_grow(p, v, &cap, *n, sizeof(ts_promql_expr_t *));
        if (v == NULL) {
            return TS_ERR_NOMEM;
        }

        v[(*n)++] = e;
        *args = v;

        if (ts_pq_tok(p)->type == TS_T_RPAREN) {
            break;
        }

        if (ts_pq_tok(p)->type != TS_T_COMMA) {
            ts_pq_unexpected(p, NULL, NULL);
            return TS_ERR_INVALID;
        }

        (void) ts_pq_next(p);

        /*
         * yacc reduces "args ," on any token that cannot begin an
         * argument, a lexer error (already reported) aside
         */
        if (ts_pq_tok(p)->type != TS_T_ERROR
            && !ts_pq_starts_expr(ts_pq_tok(p)->type))
        {
            ts_pq_fail(p, TS_ERR_INVALID, ts_pq_tok(p)[-1].pos,
                       "trailing commas not allowed in function call args");
            return TS_ERR_INVALID;
        }
    }

    (void) ts_pq_next(p);

    return TS_OK;
}


static ts_promql_expr_t *
ts_pq_parse_call(ts_pq_parser_t *p)
{
    uint32_t                 i;
    ts_tok_t                *name;
    ts_promql_expr_t        *e;
    const ts_promql_func_t  *f;

    name = ts_pq_next(p);

    e = ts_pq_node(p, TS_PQ_CALL, name->pos, 0);
    if (e == NULL) {
        return NULL;
    }

    if (ts_pq_parse_args(p, &e->u.call.args, &e->u.call.nargs) != TS_OK) {
        return NULL;
    }

    e->end = p->last_closing;

    f = ts_promql_func_lookup(p->q + name->pos, name->len);

    if (f == NULL) {
        ts_pq_fail(p, TS_ERR_INVALID, name->pos,
                   "unknown function with name \"%.*s\"",
                   (int) name->len, p->q + name->pos);
        return NULL;
    }

    e->u.call.func = f;
    e->type = f->ret;

    for (i = 0; i < e->u.call.nargs; i++) {
        if (ts_pq_over(p, e, e->u.call.args[i]) != TS_OK) {
            return NULL;
        }
    }

    return e;
}


static int
ts_pq_parse_grouping(ts_pq_parser_t *p, ts_promql_aggregate_t *a)
{
    a->without = ts_pq_next(p)->type == TS_T_WITHOUT;

    return ts_pq_parse_labels(p, &a->grouping);
}


static ts_promql_expr_t *
ts_pq_parse_aggregate(ts_pq_parser_t *p)
{
    int                     grouped, want;
    uint32_t                nargs;
    ts_tok_t               *op;
    const char             *ctx;
    ts_promql_expr_t       *e, **args;
    ts_promql_aggregate_t  *a;

    op = ts_pq_next(p);

    e = ts_pq_node(p, TS_PQ_AGGREGATE, op->pos, 0);
    if (e == NULL) {
        return NULL;
    }

    e->type = TS_PQ_TYPE_VECTOR;
    a = &e->u.aggregate;
    a->op = (ts_promql_agg_t) (op->type - TS_T_SUM);
    grouped = 0;

    if (ts_pq_tok(p)->type == TS_T_BY || ts_pq_tok(p)->type == TS_T_WITHOUT) {
        if (ts_pq_parse_grouping(p, a) != TS_OK) {
            return NULL;
        }

        grouped = 1;
    }

    if (ts_pq_tok(p)->type != TS_T_LPAREN) {
        ts_pq_unexpected(p, "aggregation", NULL);
        return NULL;
    }

    ctx = p->ctx;
    p->ctx = "aggregation";

    if (ts_pq_parse_args(p, &args, &nargs) != TS_OK) {
        return NULL;
    }

    p->ctx = ctx;

    /* yacc reads the next token to see whether by/without follows */
    if (!grouped && ts_pq_tok(p)->type == TS_T_ERROR) {
        ts_pq_unexpected(p, NULL, NULL);
        return NULL;
    }

    if (!grouped
        && (ts_pq_tok(p)->type == TS_T_BY
            || ts_pq_tok(p)->type == TS_T_WITHOUT))
    {
        if (ts_pq_parse_grouping(p, a) != TS_OK) {
            return NULL;
        }
    }

    e->end = p->last_closing;

    if (nargs == 0) {
        ts_pq_fail(p, TS_ERR_INVALID, e->start,
                   "no arguments for aggregate expression provided");
        return NULL;
    }

    want = (a->op == TS_PQ_AGG_TOPK || a->op == TS_PQ_AGG_BOTTOMK
            || a->op == TS_PQ_AGG_COUNT_VALUES
            || a->op == TS_PQ_AGG_QUANTILE) ? 2 : 1;

    if (nargs != (uint32_t) want) {
        ts_pq_fail(p, TS_ERR_INVALID, e->start, "wrong number of arguments "
                   "for aggregate expression provided, expected %d, got %u",
                   want, nargs);
        return NULL;
    }

    a->param = want == 2 ? args[0] : NULL;
    a->expr = args[want - 1];

    if (ts_pq_over(p, e, a->param) != TS_OK
        || ts_pq_over(p, e, a->expr) != TS_OK)
    {
        return NULL;
    }

    return e;
}


/* the grammar's vector_selector begins with metric_identifier or "{" */
static int
ts_pq_selector_start(ts_tok_type_t t)
{
    switch (t) {
    case TS_T_LBRACE:
    case TS_T_METRIC_IDENT:
    case TS_T_IDENT:
    case TS_T_LAND: case TS_T_LOR: case TS_T_LUNLESS:
    case TS_T_BY: case TS_T_WITHOUT: case TS_T_OFFSET:
    case TS_T_START: case TS_T_END:
        return 1;
    default:
        return ts_tok_is_agg(t);
    }
}


static ts_promql_expr_t *
ts_pq_parse_primary(ts_pq_parser_t *p)
{
    ts_tok_type_t  t;

    t = ts_pq_tok(p)->type;

    switch (t) {
    case TS_T_NUMBER:
        return ts_pq_parse_number(p);

    case TS_T_STRING:
        return ts_pq_parse_string(p);

    case TS_T_LPAREN:
        return ts_pq_parse_paren(p);

    case TS_T_LBRACE:
    case TS_T_METRIC_IDENT:
    case TS_T_LAND: case TS_T_LOR: case TS_T_LUNLESS:
    case TS_T_BY: case TS_T_WITHOUT: case TS_T_OFFSET:
    case TS_T_START: case TS_T_END:
        return ts_pq_parse_vector(p);

    case TS_T_IDENT:
        if (ts_pq_peek2(p) == TS_T_LPAREN) {
            return ts_pq_parse_call(p);
        }

        return ts_pq_parse_vector(p);

    default:
        break;
    }

    if (ts_tok_is_agg(t)) {
        switch (ts_pq_peek2(p)) {
        case TS_T_LPAREN: case TS_T_BY: case TS_T_WITHOUT:
            return ts_pq_parse_aggregate(p);
        default:
            /* the grammar's metric_identifier takes aggregators too */
            return ts_pq_parse_vector(p);
        }
    }

    ts_pq_unexpected(p, NULL, NULL);

    return NULL;
}


/* where Prometheus keeps the offset and @ of e, or NULL */
static ts_promql_vector_t *
ts_pq_selector_of(ts_promql_expr_t *e)
{
    if (e->kind == TS_PQ_VECTOR) {
        return &e->u.vector;
    }

    if (e->kind == TS_PQ_MATRIX) {
        return &e->u.matrix.vector->u.vector;
    }

    return NULL;
}


static int
ts_pq_parse_offset(ts_pq_parser_t *p, ts_promql_expr_t *e)
{
    int                  neg;
    int64_t              ms, *offset;
    ts_tok_t            *t;
    ts_promql_vector_t  *v;

    (void) ts_pq_next(p);

    neg = 0;

    if (ts_pq_tok(p)->type == TS_T_SUB) {
        (void) ts_pq_next(p);
        neg = 1;
    }

    t = ts_pq_tok(p);

    if (t->type != TS_T_DURATION) {
        ts_pq_unexpected(p, "offset", "duration");
        return TS_ERR_INVALID;
    }

    (void) ts_pq_next(p);

    if (ts_pq_parse_duration(p, t, &ms) != TS_OK) {
        return TS_ERR_INVALID;
    }

    v = ts_pq_selector_of(e);

    if (v != NULL) {
        offset = &v->offset;

    } else if (e->kind == TS_PQ_SUBQUERY) {
        offset = &e->u.subquery.offset;

    } else {
        ts_pq_fail(p, TS_ERR_INVALID, e->start, "offset modifier must be "
                   "preceded by an instant vector selector or range vector "
                   "selector or a subquery");
        return TS_ERR_INVALID;
    }

    if (*offset != 0) {
        ts_pq_fail(p, TS_ERR_INVALID, e->start,
                   "offset may not be set multiple times");
        return TS_ERR_INVALID;
    }

    *offset = neg ? -ms : ms;
    e->end = p->last_closing;

    return TS_OK;
}


/* "@" number | "@" start() | "@" end() */
static int
ts_pq_parse_at(ts_pq_parser_t *p, ts_promql_expr_t *e)
{
    int                  sign;
    double               ts, r;
    int64_t             *at;
    ts_tok_t            *t;
    ts_promql_at_t       kind, *at_kind;
    ts_promql_vector_t  *v;

    (void) ts_pq_next(p);

    t = ts_pq_tok(p);
    kind = TS_PQ_AT_TIME;
    ts = 0;
    sign = 1;

    if (t->type == TS_T_START || t->type == TS_T_END) {
        if (t[1].type != TS_T_LPAREN || t[2].type != TS_T_RPAREN) {
            p->i += t[1].type == TS_T_LPAREN ? 2 : 1;
            ts_pq_unexpected(p, "@", "timestamp");
            return TS_ERR_INVALID;
        }

        kind = t->type == TS_T_START ? TS_PQ_AT_START : TS_PQ_AT_END;
        (void) ts_pq_next(p);
        (void) ts_pq_next(p);
        (void) ts_pq_next(p);

    } else {
        if (t->type == TS_T_ADD || t->type == TS_T_SUB) {
            sign = t->type == TS_T_SUB ? -1 : 1;
            (void) ts_pq_next(p);
            t = ts_pq_tok(p);
        }

        if (t->type != TS_T_NUMBER) {
            ts_pq_unexpected(p, "@", "timestamp");
            return TS_ERR_INVALID;
        }

        (void) ts_pq_next(p);

        if (ts_pq_number(p, t, &ts) != TS_OK) {
            return TS_ERR_INVALID;
        }

        ts *= sign;

        if (isinf(ts) || isnan(ts) || ts >= 9223372036854775807.0
            || ts <= -9223372036854775808.0)
        {
            if (isnan(ts) || isinf(ts)) {
                ts_pq_fail(p, TS_ERR_INVALID, e->start,
                           "timestamp out of bounds for @ modifier: %s",
                           isnan(ts) ? "NaN" : (ts > 0 ? "+Inf" : "-Inf"));

            } else {
                ts_pq_fail(p, TS_ERR_INVALID, e->start,
                           "timestamp out of bounds for @ modifier: %f", ts);
            }

            return TS_ERR_INVALID;
        }
    }

    v = ts_pq_selector_of(e);

    if (v != NULL) {
        at = &v->at;
        at_kind = &v->at_kind;

    } else if (e->kind == TS_PQ_SUBQUERY) {
        at = &e->u.subquery.at;
        at_kind = &e->u.subquery.at_kind;

    } else {
        ts_pq_fail(p, TS_ERR_INVALID, e->start, "@ modifier must be "
                   "preceded by an instant vector selector or range vector "
                   "selector or a subquery");
        return TS_ERR_INVALID;
    }

    if (*at_kind != TS_PQ_AT_NONE) {
        ts_pq_fail(p, TS_ERR_INVALID, e->start,
                   "@ <timestamp> may not be set multiple times");
        return TS_ERR_INVALID;
    }

    *at_kind = kind;

    if (kind == TS_PQ_AT_TIME) {
        /* int64(math.Round(ts * 1000)); amd64 gives MinInt64 past range */
        r = round(ts * 1000);
        *at = (r >= -9223372036854775808.0 && r < 9223372036854775808.0)
              ? (int64_t) r : INT64_MIN;
    }

    e->end = p->last_closing;

    return TS_OK;
}


/* "[" range "]" or "[" range ":" [step] "]" */
static ts_promql_expr_t *
ts_pq_parse_range(ts_pq_parser_t *p, ts_promql_expr_t *e)
{
    int64_t              range, step;
    ts_tok_t            *lb, *t;
    ts_promql_expr_t    *r;
    ts_promql_vector_t  *v;

    lb = ts_pq_next(p);
    t = ts_pq_tok(p);

    if (t->type != TS_T_DURATION) {
        ts_pq_unexpected(p, "subquery selector", "duration");
        return NULL;
    }

    (void) ts_pq_next(p);

    if (ts_pq_parse_duration(p, t, &range) != TS_OK) {
        return NULL;
    }

    t = ts_pq_tok(p);

    if (t->type == TS_T_RBRACKET) {
        (void) ts_pq_next(p);

        v = e->kind == TS_PQ_VECTOR ? &e->u.vector : NULL;

        if (v == NULL || v->offset != 0 || v->at_kind == TS_PQ_AT_TIME) {
            ts_pq_fail(p, TS_ERR_INVALID, lb->pos, "%s",
                       v == NULL ? "ranges only allowed for vector selectors"
                       : v->offset != 0
                       ? "no offset modifiers allowed before range"
                       : "no @ modifiers allowed before range");
            return NULL;
        }

        r = ts_pq_node(p, TS_PQ_MATRIX, e->start, p->last_closing);
        if (r == NULL) {
            return NULL;
        }

        r->type = TS_PQ_TYPE_MATRIX;
        r->u.matrix.vector = e;
        r->u.matrix.range = range;

        return ts_pq_over(p, r, e) == TS_OK ? r : NULL;
    }

    if (t->type != TS_T_COLON) {
        ts_pq_unexpected(p, "subquery or range", "\":\" or \"]\"");
        return NULL;
    }

    (void) ts_pq_next(p);
    t = ts_pq_tok(p);
    step = 0;

    if (t->type == TS_T_DURATION) {
        (void) ts_pq_next(p);

        if (ts_pq_parse_duration(p, t, &step) != TS_OK) {
            return NULL;
        }

        if (ts_pq_tok(p)->type != TS_T_RBRACKET) {
            ts_pq_unexpected(p, "subquery selector", "\"]\"");
            return NULL;
        }

    } else if (t->type != TS_T_RBRACKET) {
        ts_pq_unexpected(p, "subquery selector", "duration or \"]\"");
        return NULL;
    }

    (void) ts_pq_next(p);

    r = ts_pq_node(p, TS_PQ_SUBQUERY, e->start, p->last_closing);
    if (r == NULL) {
        return NULL;
    }

    r->type = TS_PQ_TYPE_MATRIX;
    r->u.subquery.expr = e;
    r->u.subquery.range = range;
    r->u.subquery.step = step;

    return ts_pq_over(p, r, e) == TS_OK ? r : NULL;
}


static ts_promql_expr_t *
ts_pq_parse_postfix(ts_pq_parser_t *p, ts_promql_expr_t *e)
{
    while (e != NULL) {
        switch (ts_pq_tok(p)->type) {
        case TS_T_LBRACKET:
            e = ts_pq_parse_range(p, e);
            break;

        case TS_T_OFFSET:
            if (ts_pq_parse_offset(p, e) != TS_OK) {
                return NULL;
            }
            break;

        case TS_T_AT:
            if (ts_pq_parse_at(p, e) != TS_OK) {
                return NULL;
            }
            break;

        default:
            return e;
        }
    }

    return NULL;
}


/* the checks of Prometheus's checkAST(), in its order */

static void
ts_pq_expect_type(ts_pq_parser_t *p, ts_promql_expr_t *e,
    ts_promql_type_t want, const char *ctx, const char *fn)
{
    ts_pq_check(p, e);

    if (p->failed || e->type == want) {
        return;
    }

    if (fn != NULL) {
        ts_pq_fail(p, TS_ERR_INVALID, e->start, "expected type %s in call "
                   "to function \"%s\", got %s", ts_promql_type_name(want),
                   fn, ts_promql_type_name(e->type));
        return;
    }

    ts_pq_fail(p, TS_ERR_INVALID, e->start, "expected type %s in %s, got %s",
               ts_promql_type_name(want), ctx, ts_promql_type_name(e->type));
}


static void
ts_pq_check_call(ts_pq_parser_t *p, ts_promql_expr_t *e)
{
    uint32_t                 i, k, na, n;
    const ts_promql_func_t  *f;

    f = e->u.call.func;
    n = e->u.call.nargs;

    if (f->variadic == 0) {
        if (n != f->nargs) {
            ts_pq_fail(p, TS_ERR_INVALID, e->start, "expected %u argument(s) "
                       "in call to \"%s\", got %u", f->nargs, f->name, n);
            return;
        }

    } else {
        na = f->nargs - 1u;

        if (na > n) {
            ts_pq_fail(p, TS_ERR_INVALID, e->start, "expected at least %u "
                       "argument(s) in call to \"%s\", got %u", na, f->name,
                       n);
            return;
        }

        if (f->variadic > 0 && na + (uint32_t) f->variadic < n) {
            ts_pq_fail(p, TS_ERR_INVALID, e->start, "expected at most %u "
                       "argument(s) in call to \"%s\", got %u",
                       na + (uint32_t) f->variadic, f->name, n);
            return;
        }
    }

    for (i = 0; i < n && !p->failed; i++) {
        k = i < f->nargs ? i : f->nargs - 1u;
        ts_pq_expect_type(p, e->u.call.args[i], f->args[k], NULL, f->name);
    }
}


/* Prometheus's opRange(): the operator, spaces trimmed */
static uint32_t
ts_pq_op_pos(ts_pq_parser_t *p, ts_promql_expr_t *e)
{
    uint32_t  i;

    for (i = e->u.binary.lhs->end; i < p->len; i++) {
        if (p->q[i] != ' ' && p->q[i] != '\t' && p->q[i] != '\n'
            && p->q[i] != '\r')
        {
            break;
        }
    }

    return i;
}


static void
ts_pq_check_binary(ts_pq_parser_t *p, ts_promql_expr_t *e)
{
    uint32_t             i, j;
    ts_promql_type_t     lt, rt;
    ts_promql_binary_t  *b;

    b = &e->u.binary;

    ts_pq_check(p, b->lhs);
    ts_pq_check(p, b->rhs);

    if (p->failed) {
        return;
    }

    lt = b->lhs->type;
    rt = b->rhs->type;

    if (b->return_bool && !ts_promql_op_is_comparison(b->op)) {
        ts_pq_fail(p, TS_ERR_INVALID, ts_pq_op_pos(p, e),
                   "bool modifier can only be used on comparison operators");
        return;
    }

    if (ts_promql_op_is_comparison(b->op) && !b->return_bool
        && lt == TS_PQ_TYPE_SCALAR && rt == TS_PQ_TYPE_SCALAR)
    {
        ts_pq_fail(p, TS_ERR_INVALID, ts_pq_op_pos(p, e),
                   "comparisons between scalars must use BOOL modifier");
        return;
    }

    if (ts_promql_op_is_set(b->op) && b->card == TS_PQ_CARD_ONE_TO_ONE) {
        b->card = TS_PQ_CARD_MANY_TO_MANY;
    }

    for (i = 0; b->on && i < b->matching.n; i++) {
        for (j = 0; j < b->include.n; j++) {
            if (b->matching.v[i].len == b->include.v[j].len
                && memcmp(b->matching.v[i].data, b->include.v[j].data,
                          b->include.v[j].len) == 0)
            {
                ts_pq_fail(p, TS_ERR_INVALID, ts_pq_op_pos(p, e),
                           "label \"%s\" must not occur in ON and GROUP "
                           "clause at once", b->matching.v[i].data);
                return;
            }
        }
    }

    if (lt != TS_PQ_TYPE_SCALAR && lt != TS_PQ_TYPE_VECTOR) {
        ts_pq_fail(p, TS_ERR_INVALID, b->lhs->start, "binary expression "
                   "must contain only scalar and instant vector types");
        return;
    }

    if (rt != TS_PQ_TYPE_SCALAR && rt != TS_PQ_TYPE_VECTOR) {
        ts_pq_fail(p, TS_ERR_INVALID, b->rhs->start, "binary expression "
                   "must contain only scalar and instant vector types");
        return;
    }

    if (lt != TS_PQ_TYPE_VECTOR || rt != TS_PQ_TYPE_VECTOR) {
        if (b->matching.n > 0) {
            ts_pq_fail(p, TS_ERR_INVALID, e->start, "vector matching only "
                       "allowed between instant vectors");
            return;
        }

        b->has_matching = 0;

    } else if (ts_promql_op_is_set(b->op)) {
        if (b->card == TS_PQ_CARD_ONE_TO_MANY
            || b->card == TS_PQ_CARD_MANY_TO_ONE)
        {
            ts_pq_fail(p, TS_ERR_INVALID, e->start,
                       "no grouping allowed for \"%s\" operation",
                       ts_promql_op_name(b->op));
            return;
        }
    }

    if ((lt == TS_PQ_TYPE_SCALAR || rt == TS_PQ_TYPE_SCALAR)
        && ts_promql_op_is_set(b->op))
    {
        ts_pq_fail(p, TS_ERR_INVALID, e->start, "set operator \"%s\" not "
                   "allowed in binary scalar expression",
                   ts_promql_op_name(b->op));
    }
}


static void
ts_pq_check_vector(ts_pq_parser_t *p, ts_promql_expr_t *e)
{
    uint32_t             i;
    ts_promql_vector_t  *v;

    v = &e->u.vector;

    if (v->name.len == 0) {
        if (!v->nonempty) {
            ts_pq_fail(p, TS_ERR_INVALID, e->start, "vector selector must "
                       "contain at least one non-empty matcher");
        }

        return;
    }

    /* the last matcher is the name's own */
    for (i = 0; i + 1 < v->nmatchers; i++) {
        if (v->matchers[i].name_len == TS_METRIC_NAME_LABEL_LEN
            && memcmp(v->matchers[i].name, TS_METRIC_NAME_LABEL,
                      TS_METRIC_NAME_LABEL_LEN) == 0)
        {
            ts_pq_fail(p, TS_ERR_INVALID, e->start, "metric name must not "
                       "be set twice: \"%s\" or \"%s\"", v->name.data,
                       v->matchers[i].value);
            return;
        }
    }
}


static void
ts_pq_check(ts_pq_parser_t *p, ts_promql_expr_t *e)
{
    ts_promql_type_t        t;
    ts_promql_aggregate_t  *a;

    if (p->failed) {
        return;
    }

    switch (e->kind) {
    case TS_PQ_AGGREGATE:
        a = &e->u.aggregate;
        ts_pq_expect_type(p, a->expr, TS_PQ_TYPE_VECTOR,
                          "aggregation expression", NULL);

        if (a->op == TS_PQ_AGG_TOPK || a->op == TS_PQ_AGG_BOTTOMK
            || a->op == TS_PQ_AGG_QUANTILE)
        {
            ts_pq_expect_type(p, a->param, TS_PQ_TYPE_SCALAR,
                              "aggregation parameter", NULL);
        }

        if (a->op == TS_PQ_AGG_COUNT_VALUES) {
            ts_pq_expect_type(p, a->param, TS_PQ_TYPE_STRING,
                              "aggregation parameter", NULL);
        }
        break;

    case TS_PQ_BINARY:
        ts_pq_check_binary(p, e);
        break;

    case TS_PQ_CALL:
        ts_pq_check_call(p, e);
        break;

    case TS_PQ_PAREN:
        ts_pq_check(p, e->u.paren);
        break;

    case TS_PQ_UNARY:
        ts_pq_check(p, e->u.unary.expr);
        t = e->u.unary.expr->type;

        if (!p->failed && t != TS_PQ_TYPE_SCALAR && t != TS_PQ_TYPE_VECTOR) {
            ts_pq_fail(p, TS_ERR_INVALID, e->start, "unary expression only "
                       "allowed on expressions of type scalar or instant "
                       "vector, got \"%s\"", ts_promql_type_name(t));
        }
        break;

    case TS_PQ_SUBQUERY:
        ts_pq_check(p, e->u.subquery.expr);
        t = e->u.subquery.expr->type;

        if (!p->failed && t != TS_PQ_TYPE_VECTOR) {
            ts_pq_fail(p, TS_ERR_INVALID, e->start, "subquery is only "
                       "allowed on instant vector, got %s instead",
                       ts_pq_type_str(t));
        }
        break;

    case TS_PQ_MATRIX:
        ts_pq_check(p, e->u.matrix.vector);
        break;

    case TS_PQ_VECTOR:
        ts_pq_check_vector(p, e);
        break;

    default:
        break;
    }
}
