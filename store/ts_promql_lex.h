/*
 * Copyright (C) ngx_tsdb authors
 *
 * Internals shared by the ts_promql_*.c files: the arena, the lexer's
 * tokens, Go-compatible quoting and number formatting.  Not an API.
 */

#ifndef TS_PROMQL_LEX_H
#define TS_PROMQL_LEX_H


#include <stddef.h>
#include <stdint.h>

#include "ts_promql.h"


typedef enum {
    TS_T_EOF = 0,
    TS_T_ERROR,
    TS_T_IDENT,
    TS_T_METRIC_IDENT,
    TS_T_NUMBER,
    TS_T_DURATION,
    TS_T_STRING,
    TS_T_LPAREN,
    TS_T_RPAREN,
    TS_T_LBRACE,
    TS_T_RBRACE,
    TS_T_LBRACKET,
    TS_T_RBRACKET,
    TS_T_COMMA,
    TS_T_EQL,               /* = */
    TS_T_COLON,
    TS_T_AT,

    /* operators, in the order of ts_promql_op_t */
    TS_T_ADD,
    TS_T_SUB,
    TS_T_MUL,
    TS_T_DIV,
    TS_T_MOD,
    TS_T_POW,
    TS_T_ATAN2,
    TS_T_EQLC,
    TS_T_NEQ,
    TS_T_GTR,
    TS_T_LSS,
    TS_T_GTE,
    TS_T_LTE,
    TS_T_LAND,
    TS_T_LOR,
    TS_T_LUNLESS,
    TS_T_EQL_REGEX,
    TS_T_NEQ_REGEX,

    /* aggregators, in the order of ts_promql_agg_t */
    TS_T_SUM,
    TS_T_AVG,
    TS_T_COUNT,
    TS_T_MIN,
    TS_T_MAX,
    TS_T_GROUP,
    TS_T_STDDEV,
    TS_T_STDVAR,
    TS_T_TOPK,
    TS_T_BOTTOMK,
    TS_T_COUNT_VALUES,
    TS_T_QUANTILE,

    /* keywords */
    TS_T_BOOL,
    TS_T_BY,
    TS_T_GROUP_LEFT,
    TS_T_GROUP_RIGHT,
    TS_T_IGNORING,
    TS_T_OFFSET,
    TS_T_ON,
    TS_T_WITHOUT,

    /* preprocessors */
    TS_T_START,
    TS_T_END
} ts_tok_type_t;


#define ts_tok_is_binop(t)    ((t) >= TS_T_ADD && (t) <= TS_T_LUNLESS)
#define ts_tok_is_agg(t)      ((t) >= TS_T_SUM && (t) <= TS_T_QUANTILE)
#define ts_tok_is_keyword(t)  ((t) >= TS_T_BOOL && (t) <= TS_T_WITHOUT)


typedef struct {
    ts_tok_type_t           type;
    uint32_t                pos;
    uint32_t                len;
} ts_tok_t;


typedef struct ts_arena_blk_s  ts_arena_blk_t;

typedef struct {
    ts_arena_blk_t         *head;
    char                   *p;
    size_t                  left;
    size_t                  used;       /* bytes malloc()ed */
    size_t                  max;
} ts_arena_t;


typedef struct {
    ts_tok_t               *tok;
    uint32_t                n;
    uint32_t                err_pos;    /* of the TS_T_ERROR token */
    char                    err[TS_PROMQL_MSG_SIZE];
} ts_lex_t;


void *ts_arena_alloc(ts_arena_t *a, size_t size);
void ts_arena_free(ts_arena_t *a);

/*
 * Tokens of q up to and including the first TS_T_EOF or TS_T_ERROR
 * (comments dropped).  TS_OK or TS_ERR_NOMEM (arena cap).
 */
int ts_promql_lex(ts_lex_t *lx, const char *q, size_t len, ts_arena_t *a);

/*
 * Prometheus's strutil.Unquote() of a string token (quotes included):
 * TS_OK with a NUL-terminated copy in the arena, TS_ERR_INVALID, or
 * TS_ERR_NOMEM.
 */
int ts_promql_unquote(const char *s, size_t len, ts_arena_t *a,
    ts_promql_str_t *out);

/* the keyword or aggregator a word is (any case), else TS_T_IDENT */
ts_tok_type_t ts_promql_keyword(const char *s, size_t len);

/* Go's utf8.DecodeRune: 0xFFFD and width 1 for a bad sequence */
uint32_t ts_promql_utf8_decode(const char *s, size_t len, size_t *width);
int ts_promql_is_print(uint32_t r);

/*
 * Output buffer for the printer and messages: writes what fits, counts
 * all of it.
 */
typedef struct {
    char                   *buf;
    size_t                  size;
    size_t                  len;
} ts_pq_out_t;

void ts_pq_put(ts_pq_out_t *o, const char *s, size_t len);
void ts_pq_puts(ts_pq_out_t *o, const char *s);
void ts_pq_printf(ts_pq_out_t *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Go's strconv.Quote(s) with quote '"', or QuoteRune with '\'' */
void ts_pq_quote(ts_pq_out_t *o, const char *s, size_t len, char quote);
/* Go's fmt.Sprint(float64) */
void ts_pq_float(ts_pq_out_t *o, double v);
/* Prometheus's model.Duration(ms).String() */
void ts_pq_duration(ts_pq_out_t *o, int64_t ms);


#endif /* TS_PROMQL_LEX_H */
