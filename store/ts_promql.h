/*
 * Copyright (C) ngx_tsdb authors
 *
 * PromQL parser: the grammar, type rules and error positions of
 * Prometheus 2.42 (promql/parser), an AST made for evaluation, and a
 * printer giving what Prometheus's expr.String() gives.  See
 * docs/promql.md for coverage, limits and known differences.
 *
 * A parse result owns one arena: every node, string and array hangs
 * off it and goes with ts_promql_free().  Strings in the AST are
 * unquoted, NUL-terminated copies with explicit lengths (a label value
 * may hold "\x00").  The input is not referenced after parsing.
 *
 * Errors: one, the first Prometheus would report (it reports only the
 * first as well), with the byte offset it points at and a message in
 * Prometheus's words.  Bounded work: input length, nesting depth (of
 * the parser's recursion and of the tree, so that walking a tree
 * recursively is safe to max_depth) and arena bytes are capped.
 */

#ifndef TS_PROMQL_H
#define TS_PROMQL_H


#include <stddef.h>
#include <stdint.h>

#include "ts_select.h"


#define TS_PROMQL_MSG_SIZE  256


typedef enum {
    TS_PQ_NUMBER = 0,
    TS_PQ_STRING,
    TS_PQ_VECTOR,           /* instant vector selector */
    TS_PQ_MATRIX,           /* range vector selector: vector[range] */
    TS_PQ_SUBQUERY,         /* expr[range:step] */
    TS_PQ_CALL,
    TS_PQ_AGGREGATE,
    TS_PQ_BINARY,
    TS_PQ_UNARY,
    TS_PQ_PAREN
} ts_promql_kind_t;


/* Prometheus's ValueType */
typedef enum {
    TS_PQ_TYPE_NONE = 0,
    TS_PQ_TYPE_SCALAR,
    TS_PQ_TYPE_VECTOR,
    TS_PQ_TYPE_MATRIX,
    TS_PQ_TYPE_STRING
} ts_promql_type_t;


/* binary (and unary: ADD, SUB) operators, in Prometheus's spelling */
typedef enum {
    TS_PQ_OP_ADD = 0,       /* + */
    TS_PQ_OP_SUB,           /* - */
    TS_PQ_OP_MUL,           /* * */
    TS_PQ_OP_DIV,           /* / */
    TS_PQ_OP_MOD,           /* % */
    TS_PQ_OP_POW,           /* ^, right-associative */
    TS_PQ_OP_ATAN2,
    TS_PQ_OP_EQLC,          /* == */
    TS_PQ_OP_NEQ,           /* != */
    TS_PQ_OP_GTR,           /* > */
    TS_PQ_OP_LSS,           /* < */
    TS_PQ_OP_GTE,           /* >= */
    TS_PQ_OP_LTE,           /* <= */
    TS_PQ_OP_AND,
    TS_PQ_OP_OR,
    TS_PQ_OP_UNLESS
} ts_promql_op_t;


typedef enum {
    TS_PQ_AGG_SUM = 0,
    TS_PQ_AGG_AVG,
    TS_PQ_AGG_COUNT,
    TS_PQ_AGG_MIN,
    TS_PQ_AGG_MAX,
    TS_PQ_AGG_GROUP,
    TS_PQ_AGG_STDDEV,
    TS_PQ_AGG_STDVAR,
    TS_PQ_AGG_TOPK,         /* param: scalar */
    TS_PQ_AGG_BOTTOMK,      /* param: scalar */
    TS_PQ_AGG_COUNT_VALUES, /* param: string */
    TS_PQ_AGG_QUANTILE      /* param: scalar */
} ts_promql_agg_t;


/* the functions of Prometheus 2.42, in the order of its functions.go */
typedef enum {
    TS_PQ_FN_ABS = 0,
    TS_PQ_FN_ABSENT,
    TS_PQ_FN_ABSENT_OVER_TIME,
    TS_PQ_FN_ACOS,
    TS_PQ_FN_ACOSH,
    TS_PQ_FN_ASIN,
    TS_PQ_FN_ASINH,
    TS_PQ_FN_ATAN,
    TS_PQ_FN_ATANH,
    TS_PQ_FN_AVG_OVER_TIME,
    TS_PQ_FN_CEIL,
    TS_PQ_FN_CHANGES,
    TS_PQ_FN_CLAMP,
    TS_PQ_FN_CLAMP_MAX,
    TS_PQ_FN_CLAMP_MIN,
    TS_PQ_FN_COS,
    TS_PQ_FN_COSH,
    TS_PQ_FN_COUNT_OVER_TIME,
    TS_PQ_FN_DAYS_IN_MONTH,
    TS_PQ_FN_DAY_OF_MONTH,
    TS_PQ_FN_DAY_OF_WEEK,
    TS_PQ_FN_DAY_OF_YEAR,
    TS_PQ_FN_DEG,
    TS_PQ_FN_DELTA,
    TS_PQ_FN_DERIV,
    TS_PQ_FN_EXP,
    TS_PQ_FN_FLOOR,
    TS_PQ_FN_HISTOGRAM_COUNT,
    TS_PQ_FN_HISTOGRAM_SUM,
    TS_PQ_FN_HISTOGRAM_FRACTION,
    TS_PQ_FN_HISTOGRAM_QUANTILE,
    TS_PQ_FN_HOLT_WINTERS,
    TS_PQ_FN_HOUR,
    TS_PQ_FN_IDELTA,
    TS_PQ_FN_INCREASE,
    TS_PQ_FN_IRATE,
    TS_PQ_FN_LABEL_REPLACE,
    TS_PQ_FN_LABEL_JOIN,
    TS_PQ_FN_LAST_OVER_TIME,
    TS_PQ_FN_LN,
    TS_PQ_FN_LOG10,
    TS_PQ_FN_LOG2,
    TS_PQ_FN_MAX_OVER_TIME,
    TS_PQ_FN_MIN_OVER_TIME,
    TS_PQ_FN_MINUTE,
    TS_PQ_FN_MONTH,
    TS_PQ_FN_PI,
    TS_PQ_FN_PREDICT_LINEAR,
    TS_PQ_FN_PRESENT_OVER_TIME,
    TS_PQ_FN_QUANTILE_OVER_TIME,
    TS_PQ_FN_RAD,
    TS_PQ_FN_RATE,
    TS_PQ_FN_RESETS,
    TS_PQ_FN_ROUND,
    TS_PQ_FN_SCALAR,
    TS_PQ_FN_SGN,
    TS_PQ_FN_SIN,
    TS_PQ_FN_SINH,
    TS_PQ_FN_SORT,
    TS_PQ_FN_SORT_DESC,
    TS_PQ_FN_SQRT,
    TS_PQ_FN_STDDEV_OVER_TIME,
    TS_PQ_FN_STDVAR_OVER_TIME,
    TS_PQ_FN_SUM_OVER_TIME,
    TS_PQ_FN_TAN,
    TS_PQ_FN_TANH,
    TS_PQ_FN_TIME,
    TS_PQ_FN_TIMESTAMP,
    TS_PQ_FN_VECTOR,
    TS_PQ_FN_YEAR,
    TS_PQ_FN_COUNT
} ts_promql_fn_t;


/*
 * A function's signature as functions.go has it: nargs types; variadic
 * 0: exactly nargs arguments; > 0: the last up to variadic times more
 * (nargs - 1 to nargs - 1 + variadic arguments); -1: the last any
 * number of times (at least nargs - 1).
 */
typedef struct {
    const char             *name;
    ts_promql_fn_t          id;
    uint8_t                 nargs;
    int8_t                  variadic;
    ts_promql_type_t        args[5];
    ts_promql_type_t        ret;
} ts_promql_func_t;


/* @ modifier */
typedef enum {
    TS_PQ_AT_NONE = 0,
    TS_PQ_AT_TIME,          /* at: milliseconds since the epoch */
    TS_PQ_AT_START,         /* @ start() */
    TS_PQ_AT_END            /* @ end() */
} ts_promql_at_t;


typedef enum {
    TS_PQ_CARD_ONE_TO_ONE = 0,
    TS_PQ_CARD_MANY_TO_ONE,     /* group_left */
    TS_PQ_CARD_ONE_TO_MANY,     /* group_right */
    TS_PQ_CARD_MANY_TO_MANY     /* set operators */
} ts_promql_card_t;


typedef struct {
    const char             *data;
    size_t                  len;
} ts_promql_str_t;


typedef struct {
    ts_promql_str_t        *v;
    uint32_t                n;
} ts_promql_labels_t;


typedef struct ts_promql_expr_s  ts_promql_expr_t;


/*
 * An instant vector selector.  matchers are ready for
 * ts_selector_compile(): those in braces in order, then __name__="name"
 * when the name was written outside the braces (as Prometheus appends
 * it).  Offsets are milliseconds as written (negative: later);
 * Prometheus keeps the offset and @ of a range selector on its vector
 * selector, and so does this AST.
 */
typedef struct {
    ts_promql_str_t         name;       /* "" when written as {...} */
    ts_matcher_t           *matchers;
    uint32_t                nmatchers;
    int64_t                 offset;
    ts_promql_at_t          at_kind;
    int64_t                 at;
    unsigned                nonempty:1; /* some matcher rejects "" */
} ts_promql_vector_t;


typedef struct {
    ts_promql_expr_t       *vector;     /* a TS_PQ_VECTOR node */
    int64_t                 range;      /* ms, > 0 */
} ts_promql_matrix_t;


typedef struct {
    ts_promql_expr_t       *expr;
    int64_t                 range;      /* ms, > 0 */
    int64_t                 step;       /* ms, 0: the default step */
    int64_t                 offset;
    ts_promql_at_t          at_kind;
    int64_t                 at;
} ts_promql_subquery_t;


typedef struct {
    const ts_promql_func_t *func;
    ts_promql_expr_t      **args;
    uint32_t                nargs;
} ts_promql_call_t;


typedef struct {
    ts_promql_agg_t         op;
    ts_promql_expr_t       *expr;
    ts_promql_expr_t       *param;      /* topk, bottomk, quantile,
                                           count_values; else NULL */
    ts_promql_labels_t      grouping;   /* as written, duplicates kept */
    unsigned                without:1;
} ts_promql_aggregate_t;


/*
 * matching is meaningful only between two instant vectors (Prometheus
 * drops it otherwise: has_matching 0).  on with no labels is "on ()";
 * include holds the group_left/group_right labels.
 */
typedef struct {
    ts_promql_op_t          op;
    ts_promql_expr_t       *lhs;
    ts_promql_expr_t       *rhs;
    unsigned                return_bool:1;
    unsigned                has_matching:1;
    unsigned                on:1;
    ts_promql_card_t        card;
    ts_promql_labels_t      matching;
    ts_promql_labels_t      include;
} ts_promql_binary_t;


typedef struct {
    ts_promql_op_t          op;         /* TS_PQ_OP_ADD or TS_PQ_OP_SUB */
    ts_promql_expr_t       *expr;
} ts_promql_unary_t;


struct ts_promql_expr_s {
    ts_promql_kind_t        kind;
    ts_promql_type_t        type;
    uint32_t                start;      /* byte offsets in the query, */
    uint32_t                end;        /* Prometheus's PositionRange */
    uint32_t                height;     /* of the subtree: 1 for a leaf,
                                           at most max_depth */
    union {
        double                  number;
        ts_promql_str_t         string;
        ts_promql_vector_t      vector;
        ts_promql_matrix_t      matrix;
        ts_promql_subquery_t    subquery;
        ts_promql_call_t        call;
        ts_promql_aggregate_t   aggregate;
        ts_promql_binary_t      binary;
        ts_promql_unary_t       unary;
        ts_promql_expr_t       *paren;
    } u;
};


typedef struct {
    size_t                  max_input;  /* bytes of query, 256 KiB */
    uint32_t                max_depth;  /* nesting and tree height, 1024 */
    size_t                  max_memory; /* arena bytes, 64 MiB */
} ts_promql_limits_t;


/*
 * rc: TS_ERR_INVALID (the query is not valid PromQL: Prometheus's
 * bad_data), TS_ERR_LIMIT (past a limit), TS_ERR_NOMEM.  pos is the byte
 * offset the message refers to; line and col are Prometheus's
 * ("1:6: parse error: ..."): col counts bytes from 1.
 */
typedef struct {
    int                     rc;
    uint32_t                pos;
    uint32_t                line;
    uint32_t                col;
    char                    msg[TS_PROMQL_MSG_SIZE];
} ts_promql_error_t;


typedef struct ts_promql_s  ts_promql_t;


void ts_promql_limits_default(ts_promql_limits_t *lim);

/*
 * Parses q (len bytes, no NUL needed) into *out.  TS_OK, or a negative
 * ts_err_t with err filled (err may be NULL); *out is NULL on error.
 * lim NULL: defaults.
 */
int ts_promql_parse(const char *q, size_t len, const ts_promql_limits_t *lim,
    ts_promql_t **out, ts_promql_error_t *err);

/*
 * A metric selector alone, as Prometheus's ParseMetricSelector() takes
 * match[]: `name`, `name{...}` or `{...}`, nothing around it; the root
 * is a TS_PQ_VECTOR.  The selector's emptiness is not checked here
 * (vector.nonempty tells the caller).
 */
int ts_promql_parse_selector(const char *q, size_t len,
    const ts_promql_limits_t *lim, ts_promql_t **out, ts_promql_error_t *err);

const ts_promql_expr_t *ts_promql_root(const ts_promql_t *pq);
size_t ts_promql_memory(const ts_promql_t *pq);
void ts_promql_free(ts_promql_t *pq);

/*
 * The expression as Prometheus 2.42 prints it (expr.String()), like
 * snprintf: writes at most size bytes including the NUL and returns
 * the length of the whole string.
 */
size_t ts_promql_format(const ts_promql_expr_t *e, char *buf, size_t size);

/* "1:6: parse error: msg", Prometheus's wording of an error */
size_t ts_promql_error_format(const ts_promql_error_t *err, char *buf,
    size_t size);

const ts_promql_func_t *ts_promql_func_lookup(const char *name, size_t len);
const ts_promql_func_t *ts_promql_func(ts_promql_fn_t id);

const char *ts_promql_op_name(ts_promql_op_t op);
const char *ts_promql_agg_name(ts_promql_agg_t op);
/* "scalar", "instant vector", "range vector", "string", "none" */
const char *ts_promql_type_name(ts_promql_type_t t);

int ts_promql_op_is_comparison(ts_promql_op_t op);
int ts_promql_op_is_set(ts_promql_op_t op);


#endif /* TS_PROMQL_H */
