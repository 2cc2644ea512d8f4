/*
 * Copyright (C) ngx_tsdb authors
 *
 * PromQL lexer, string unquoting and the parser's arena.
 *
 * The lexer is a port of the state machine of Prometheus 2.42
 * (promql/parser/lex.go), quirks included, because which inputs are
 * errors, and where, is decided here: it tracks open parentheses,
 * braces and brackets itself; inside braces every word is an
 * identifier; inside brackets the first item must be a duration and a
 * letter stands for the colon ("foo[5m x 1m]" is a subquery); a bad
 * escape in a string is an error at the string's start.  It runs ahead
 * of the parser over the whole input and stops at the first error,
 * which the parser reports when it reaches that token, as the Go
 * parser does when it asks its lexer for that token.
 *
 * The arena hands out memory in blocks malloc()ed on demand up to a
 * cap; nothing is freed before the whole parse result is.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_promql_lex.h"


#define TS_ARENA_BLOCK   (16 * 1024)
#define TS_LEX_EOF       (-1)
#define TS_RUNE_ERROR    0xFFFD
#define TS_MAX_RUNE      0x10FFFF


struct ts_arena_blk_s {
    ts_arena_blk_t         *next;
};


typedef enum {
    TS_LS_DONE = 0,
    TS_LS_STATEMENTS,
    TS_LS_INSIDE_BRACES,
    TS_LS_STRING,
    TS_LS_RAW_STRING,
    TS_LS_NUMBER_OR_DURATION,
    TS_LS_DURATION,
    TS_LS_KEYWORD,
    TS_LS_IDENTIFIER,
    TS_LS_SPACE,
    TS_LS_COMMENT
} ts_lex_state_t;


typedef struct {
    const char             *in;
    size_t                  len;
    size_t                  pos;
    size_t                  start;
    size_t                  width;
    int                     paren_depth;
    unsigned                brace_open:1;
    unsigned                bracket_open:1;
    unsigned                got_colon:1;
    int32_t                 string_open;
    ts_lex_t               *lx;
} ts_lexer_t;


typedef struct {
    const char             *word;
    ts_tok_type_t           type;
} ts_keyword_t;


static int32_t ts_lex_next(ts_lexer_t *l);
static int32_t ts_lex_peek(ts_lexer_t *l);
static int ts_lex_accept(ts_lexer_t *l, const char *valid);
static void ts_lex_accept_run(ts_lexer_t *l, const char *valid);
static void ts_lex_emit(ts_lexer_t *l, ts_tok_type_t t);
static ts_lex_state_t ts_lex_errorf(ts_lexer_t *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static ts_lex_state_t ts_lex_statements(ts_lexer_t *l);
static ts_lex_state_t ts_lex_operator(ts_lexer_t *l, int32_t r);
static ts_lex_state_t ts_lex_bracket_alpha(ts_lexer_t *l, int32_t r);
static ts_lex_state_t ts_lex_inside_braces(ts_lexer_t *l);
static ts_lex_state_t ts_lex_string(ts_lexer_t *l);
static int ts_lex_escape(ts_lexer_t *l);
static ts_lex_state_t ts_lex_raw_string(ts_lexer_t *l);
static int ts_lex_scan_number(ts_lexer_t *l);
static int ts_lex_remaining_duration(ts_lexer_t *l);
static ts_lex_state_t ts_lex_number_or_duration(ts_lexer_t *l);
static ts_lex_state_t ts_lex_duration(ts_lexer_t *l);
static ts_lex_state_t ts_lex_keyword(ts_lexer_t *l);
static ts_lex_state_t ts_lex_identifier(ts_lexer_t *l);
static size_t ts_utf8_encode(char *out, uint32_t r);
static void ts_lex_rune_desc(char *buf, size_t size, int32_t r);
static void ts_lex_rune_q(char *buf, size_t size, int32_t r);
static int ts_unquote_char(const char **sp, const char *end, char quote,
    char *out, size_t *n);


static const ts_keyword_t  ts_keywords[] = {
    { "and", TS_T_LAND },
    { "or", TS_T_LOR },
    { "unless", TS_T_LUNLESS },
    { "atan2", TS_T_ATAN2 },
    { "sum", TS_T_SUM },
    { "avg", TS_T_AVG },
    { "count", TS_T_COUNT },
    { "min", TS_T_MIN },
    { "max", TS_T_MAX },
    { "group", TS_T_GROUP },
    { "stddev", TS_T_STDDEV },
    { "stdvar", TS_T_STDVAR },
    { "topk", TS_T_TOPK },
    { "bottomk", TS_T_BOTTOMK },
    { "count_values", TS_T_COUNT_VALUES },
    { "quantile", TS_T_QUANTILE },
    { "offset", TS_T_OFFSET },
    { "by", TS_T_BY },
    { "without", TS_T_WITHOUT },
    { "on", TS_T_ON },
    { "ignoring", TS_T_IGNORING },
    { "group_left", TS_T_GROUP_LEFT },
    { "group_right", TS_T_GROUP_RIGHT },
    { "bool", TS_T_BOOL },
    { "start", TS_T_START },
    { "end", TS_T_END },
    { "inf", TS_T_NUMBER },
    { "nan", TS_T_NUMBER },
};


void *
ts_arena_alloc(ts_arena_t *a, size_t size)
{
    char            *p;
    size_t           bsize;
    ts_arena_blk_t  *b;

    size = (size + 7) & ~(size_t) 7;

    if (size > a->left) {
        bsize = size + sizeof(ts_arena_blk_t) + 8;
        if (bsize < TS_ARENA_BLOCK) {
            bsize = TS_ARENA_BLOCK;
        }

        if (a->used + bsize > a->max || bsize < size) {
            return NULL;
        }

        b = malloc(bsize);
        if (b == NULL) {
            return NULL;
        }

        b->next = a->head;
        a->head = b;
        a->used += bsize;

        /* the header is 8 bytes: data stays 8-aligned */
        a->p = (char *) b + ((sizeof(ts_arena_blk_t) + 7) & ~(size_t) 7);
        a->left = bsize - (size_t) (a->p - (char *) b);
    }

    p = a->p;
    a->p += size;
    a->left -= size;

    return p;
}


void
ts_arena_free(ts_arena_t *a)
{
    ts_arena_blk_t  *b, *next;

    for (b = a->head; b != NULL; b = next) {
        next = b->next;
        free(b);
    }

    a->head = NULL;
    a->p = NULL;
    a->left = 0;
    a->used = 0;
}


uint32_t
ts_promql_utf8_decode(const char *s, size_t len, size_t *width)
{
    const uint8_t  *p;
    uint32_t        r, min;
    size_t          n, i;

    p = (const uint8_t *) s;
    *width = 1;

    if (len == 0) {
        *width = 0;
        return TS_RUNE_ERROR;
    }

    if (p[0] < 0x80) {
        return p[0];
    }

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2; r = p[0] & 0x1f; min = 0x80;

    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3; r = p[0] & 0x0f; min = 0x800;

    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4; r = p[0] & 0x07; min = 0x10000;

    } else {
        return TS_RUNE_ERROR;
    }

    if (len < n) {
        return TS_RUNE_ERROR;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return TS_RUNE_ERROR;
        }

        r = (r << 6) | (p[i] & 0x3f);
    }

    if (r < min || r > TS_MAX_RUNE || (r >= 0xd800 && r < 0xe000)) {
        return TS_RUNE_ERROR;
    }

    *width = n;

    return r;
}


ts_tok_type_t
ts_promql_keyword(const char *s, size_t len)
{
    char    low[16];
    size_t  i;

    if (len >= sizeof(low)) {
        return TS_T_IDENT;
    }

    for (i = 0; i < len; i++) {
        low[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i];
    }

    for (i = 0; i < sizeof(ts_keywords) / sizeof(ts_keywords[0]); i++) {
        if (strlen(ts_keywords[i].word) == len
            && memcmp(ts_keywords[i].word, low, len) == 0)
        {
            return ts_keywords[i].type;
        }
    }

    return TS_T_IDENT;
}


static int
ts_is_space(int32_t r)
{
    return r == ' ' || r == '\t' || r == '\n' || r == '\r';
}


static int
ts_is_alpha(int32_t r)
{
    return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z');
}


static int
ts_is_digit(int32_t r)
{
    return r >= '0' && r <= '9';
}


static int
ts_is_alnum(int32_t r)
{
    return ts_is_alpha(r) || ts_is_digit(r);
}


int
ts_promql_lex(ts_lex_t *lx, const char *q, size_t len, ts_arena_t *a)
{
    ts_lexer_t      l;
    ts_lex_state_t  st;

    memset(lx, 0, sizeof(ts_lex_t));

    /* at most one token per byte, plus the EOF */
    lx->tok = ts_arena_alloc(a, (len + 1) * sizeof(ts_tok_t));
    if (lx->tok == NULL) {
        return TS_ERR_NOMEM;
    }

    memset(&l, 0, sizeof(ts_lexer_t));
    l.in = q;
    l.len = len;
    l.lx = lx;

    st = TS_LS_STATEMENTS;

    while (st != TS_LS_DONE) {
        switch (st) {
        case TS_LS_STATEMENTS:
            st = ts_lex_statements(&l);
            break;
        case TS_LS_INSIDE_BRACES:
            st = ts_lex_inside_braces(&l);
            break;
        case TS_LS_STRING:
            st = ts_lex_string(&l);
            break;
        case TS_LS_RAW_STRING:
            st = ts_lex_raw_string(&l);
            break;
        case TS_LS_NUMBER_OR_DURATION:
            st = ts_lex_number_or_duration(&l);
            break;
        case TS_LS_DURATION:
            st = ts_lex_duration(&l);
            break;
        case TS_LS_KEYWORD:
            st = ts_lex_keyword(&l);
            break;
        case TS_LS_IDENTIFIER:
            st = ts_lex_identifier(&l);
            break;
        case TS_LS_SPACE:
            while (ts_is_space(ts_lex_peek(&l))) {
                (void) ts_lex_next(&l);
            }
            l.start = l.pos;
            st = TS_LS_STATEMENTS;
            break;
        default: /* TS_LS_COMMENT */
            l.pos++;
            for ( ;; ) {
                int32_t  r = ts_lex_next(&l);
                if (r == '\n' || r == '\r' || r == TS_LEX_EOF) {
                    break;
                }
            }
            l.pos -= l.width;
            l.start = l.pos;
            st = TS_LS_STATEMENTS;
            break;
        }
    }

    return TS_OK;
}


static int32_t
ts_lex_next(ts_lexer_t *l)
{
    uint32_t  r;

    if (l->pos >= l->len) {
        l->width = 0;
        return TS_LEX_EOF;
    }

    r = ts_promql_utf8_decode(l->in + l->pos, l->len - l->pos, &l->width);
    l->pos += l->width;

    return (int32_t) r;
}


static int32_t
ts_lex_peek(ts_lexer_t *l)
{
    int32_t  r;

    r = ts_lex_next(l);
    l->pos -= l->width;

    return r;
}


static int
ts_lex_accept(ts_lexer_t *l, const char *valid)
{
    int32_t  r;

    r = ts_lex_next(l);

    if (r > 0 && r < 0x80 && strchr(valid, (int) r) != NULL) {
        return 1;
    }

    l->pos -= l->width;

    return 0;
}


static void
ts_lex_accept_run(ts_lexer_t *l, const char *valid)
{
    while (ts_lex_accept(l, valid)) {
        /* void */
    }
}


static void
ts_lex_emit(ts_lexer_t *l, ts_tok_type_t t)
{
    ts_tok_t  *tok;

    tok = &l->lx->tok[l->lx->n++];
    tok->type = t;
    tok->pos = (uint32_t) l->start;
    tok->len = (uint32_t) (l->pos - l->start);
    l->start = l->pos;
}


static ts_lex_state_t
ts_lex_errorf(ts_lexer_t *l, const char *fmt, ...)
{
    va_list    ap;
    ts_tok_t  *tok;

    va_start(ap, fmt);
    vsnprintf(l->lx->err, sizeof(l->lx->err), fmt, ap);
    va_end(ap);

    tok = &l->lx->tok[l->lx->n++];
    tok->type = TS_T_ERROR;
    tok->pos = (uint32_t) l->start;
    tok->len = 0;
    l->lx->err_pos = (uint32_t) l->start;

    return TS_LS_DONE;
}


static ts_lex_state_t
ts_lex_statements(ts_lexer_t *l)
{
    int32_t  r;
    char     q[16];

    if (l->brace_open) {
        return TS_LS_INSIDE_BRACES;
    }

    if (l->pos < l->len && l->in[l->pos] == '#') {
        return TS_LS_COMMENT;
    }

    r = ts_lex_next(l);

    if (r == TS_LEX_EOF) {
        if (l->paren_depth != 0) {
            return ts_lex_errorf(l, "unclosed left parenthesis");
        }

        if (l->bracket_open) {
            return ts_lex_errorf(l, "unclosed left bracket");
        }

        ts_lex_emit(l, TS_T_EOF);
        return TS_LS_DONE;
    }

    if (ts_is_space(r)) {
        return TS_LS_SPACE;
    }

    if (ts_is_digit(r) || (r == '.' && ts_is_digit(ts_lex_peek(l)))) {
        l->pos -= l->width;
        return TS_LS_NUMBER_OR_DURATION;
    }

    if (r == '"' || r == '\'') {
        l->string_open = r;
        return TS_LS_STRING;
    }

    if (r == '`') {
        l->string_open = r;
        return TS_LS_RAW_STRING;
    }

    if (ts_is_alpha(r) || r == ':') {
        if (!l->bracket_open) {
            l->pos -= l->width;
            return TS_LS_KEYWORD;
        }

        return ts_lex_bracket_alpha(l, r);
    }

    switch (r) {
    case '(':
        ts_lex_emit(l, TS_T_LPAREN);
        l->paren_depth++;
        return TS_LS_STATEMENTS;

    case ')':
        ts_lex_emit(l, TS_T_RPAREN);
        l->paren_depth--;
        if (l->paren_depth < 0) {
            /* the Go lexer's error replaces the token it just emitted */
            l->lx->n--;
            return ts_lex_errorf(l, "unexpected right parenthesis ')'");
        }
        return TS_LS_STATEMENTS;

    case '{':
        ts_lex_emit(l, TS_T_LBRACE);
        l->brace_open = 1;
        return TS_LS_INSIDE_BRACES;

    case '[':
        if (l->bracket_open) {
            return ts_lex_errorf(l, "unexpected left bracket '['");
        }

        l->got_colon = 0;
        ts_lex_emit(l, TS_T_LBRACKET);

        while (ts_is_space(ts_lex_peek(l))) {
            (void) ts_lex_next(l);
        }

        l->start = l->pos;
        l->bracket_open = 1;
        return TS_LS_DURATION;

    case ']':
        if (!l->bracket_open) {
            return ts_lex_errorf(l, "unexpected right bracket ']'");
        }

        ts_lex_emit(l, TS_T_RBRACKET);
        l->bracket_open = 0;
        return TS_LS_STATEMENTS;

    case '@':
        ts_lex_emit(l, TS_T_AT);
        return TS_LS_STATEMENTS;
    }

    if (ts_lex_operator(l, r) == TS_LS_STATEMENTS) {
        return TS_LS_STATEMENTS;
    }

    if (l->lx->n > 0 && l->lx->tok[l->lx->n - 1].type == TS_T_ERROR) {
        return TS_LS_DONE;
    }

    ts_lex_rune_q(q, sizeof(q), r);

    return ts_lex_errorf(l, "unexpected character: %s", q);
}


/* TS_LS_STATEMENTS when r began an operator, else TS_LS_DONE */
static ts_lex_state_t
ts_lex_operator(ts_lexer_t *l, int32_t r)
{
    int32_t  t;
    char     q[16];

    switch (r) {
    case ',': ts_lex_emit(l, TS_T_COMMA); break;
    case '*': ts_lex_emit(l, TS_T_MUL); break;
    case '/': ts_lex_emit(l, TS_T_DIV); break;
    case '%': ts_lex_emit(l, TS_T_MOD); break;
    case '+': ts_lex_emit(l, TS_T_ADD); break;
    case '-': ts_lex_emit(l, TS_T_SUB); break;
    case '^': ts_lex_emit(l, TS_T_POW); break;

    case '=':
        t = ts_lex_peek(l);
        if (t == '=') {
            (void) ts_lex_next(l);
            ts_lex_emit(l, TS_T_EQLC);

        } else if (t == '~') {
            (void) ts_lex_errorf(l, "unexpected character after '=': '~'");
            return TS_LS_DONE;

        } else {
            ts_lex_emit(l, TS_T_EQL);
        }
        break;

    case '!':
        t = ts_lex_next(l);
        if (t != '=') {
            ts_lex_rune_q(q, sizeof(q), t);
            (void) ts_lex_errorf(l, "unexpected character after '!': %s", q);
            return TS_LS_DONE;
        }
        ts_lex_emit(l, TS_T_NEQ);
        break;

    case '<':
    case '>':
        if (ts_lex_peek(l) == '=') {
            (void) ts_lex_next(l);
            ts_lex_emit(l, r == '<' ? TS_T_LTE : TS_T_GTE);

        } else {
            ts_lex_emit(l, r == '<' ? TS_T_LSS : TS_T_GTR);
        }
        break;

    default:
        return TS_LS_DONE;
    }

    return TS_LS_STATEMENTS;
}


/* a letter or ':' inside brackets: a subquery's colon, or an error */
static ts_lex_state_t
ts_lex_bracket_alpha(ts_lexer_t *l, int32_t r)
{
    char  q[16];

    if (l->got_colon) {
        ts_lex_rune_q(q, sizeof(q), r);
        return ts_lex_errorf(l, "unexpected colon %s", q);
    }

    ts_lex_emit(l, TS_T_COLON);
    l->got_colon = 1;

    return TS_LS_STATEMENTS;
}


static ts_lex_state_t
ts_lex_inside_braces(ts_lexer_t *l)
{
    int32_t  r;
    char     q[16];

    if (l->pos < l->len && l->in[l->pos] == '#') {
        return TS_LS_COMMENT;
    }

    r = ts_lex_next(l);

    if (r == TS_LEX_EOF) {
        return ts_lex_errorf(l, "unexpected end of input inside braces");
    }

    if (ts_is_space(r)) {
        return TS_LS_SPACE;
    }

    if (ts_is_alpha(r)) {
        l->pos -= l->width;
        return TS_LS_IDENTIFIER;
    }

    switch (r) {
    case ',':
        ts_lex_emit(l, TS_T_COMMA);
        return TS_LS_INSIDE_BRACES;

    case '"':
    case '\'':
        l->string_open = r;
        return TS_LS_STRING;

    case '`':
        l->string_open = r;
        return TS_LS_RAW_STRING;

    case '=':
        if (ts_lex_next(l) == '~') {
            ts_lex_emit(l, TS_T_EQL_REGEX);

        } else {
            l->pos -= l->width;
            ts_lex_emit(l, TS_T_EQL);
        }
        return TS_LS_INSIDE_BRACES;

    case '!':
        r = ts_lex_next(l);
        if (r == '~') {
            ts_lex_emit(l, TS_T_NEQ_REGEX);
            return TS_LS_INSIDE_BRACES;
        }

        if (r == '=') {
            ts_lex_emit(l, TS_T_NEQ);
            return TS_LS_INSIDE_BRACES;
        }

        ts_lex_rune_q(q, sizeof(q), r);
        return ts_lex_errorf(l,
                             "unexpected character after '!' inside braces: %s",
                             q);

    case '{':
        return ts_lex_errorf(l, "unexpected left brace '{'");

    case '}':
        ts_lex_emit(l, TS_T_RBRACE);
        l->brace_open = 0;
        return TS_LS_STATEMENTS;
    }

    ts_lex_rune_q(q, sizeof(q), r);

    return ts_lex_errorf(l, "unexpected character inside braces: %s", q);
}


static ts_lex_state_t
ts_lex_string(ts_lexer_t *l)
{
    int32_t  r;

    for ( ;; ) {
        r = ts_lex_next(l);

        if (r == '\\') {
            if (ts_lex_escape(l) != TS_OK) {
                return TS_LS_DONE;
            }

            continue;
        }

        if (r == TS_RUNE_ERROR) {
            return ts_lex_errorf(l, "invalid UTF-8 rune");
        }

        if (r == TS_LEX_EOF || r == '\n') {
            return ts_lex_errorf(l, "unterminated quoted string");
        }

        if (r == l->string_open) {
            break;
        }
    }

    ts_lex_emit(l, TS_T_STRING);

    return TS_LS_STATEMENTS;
}


static int
ts_digit_val(int32_t r)
{
    if (r >= '0' && r <= '9') {
        return r - '0';
    }

    if (r >= 'a' && r <= 'f') {
        return r - 'a' + 10;
    }

    if (r >= 'A' && r <= 'F') {
        return r - 'A' + 10;
    }

    return 16;
}


/* Go's lexEscape: the backslash is read; TS_OK or an error token */
static int
ts_lex_escape(ts_lexer_t *l)
{
    int       n;
    int32_t   ch;
    uint32_t  base, max, x, d;
    char      desc[32];

    ch = ts_lex_next(l);

    switch (ch) {
    case 'a': case 'b': case 'f': case 'n': case 'r': case 't': case 'v':
    case '\\':
        return TS_OK;

    case '0': case '1': case '2': case '3':
    case '4': case '5': case '6': case '7':
        n = 3; base = 8; max = 255;
        break;

    case 'x':
        ch = ts_lex_next(l);
        n = 2; base = 16; max = 255;
        break;

    case 'u':
        ch = ts_lex_next(l);
        n = 4; base = 16; max = TS_MAX_RUNE;
        break;

    case 'U':
        ch = ts_lex_next(l);
        n = 8; base = 16; max = TS_MAX_RUNE;
        break;

    case TS_LEX_EOF:
        (void) ts_lex_errorf(l, "escape sequence not terminated");
        return TS_ERR_INVALID;

    default:
        if (ch == l->string_open) {
            return TS_OK;
        }

        ts_lex_rune_desc(desc, sizeof(desc), ch);
        (void) ts_lex_errorf(l, "unknown escape sequence %s", desc);
        return TS_ERR_INVALID;
    }

    x = 0;

    while (n > 0) {
        d = (uint32_t) ts_digit_val(ch);

        if (d >= base) {
            if (ch == TS_LEX_EOF) {
                (void) ts_lex_errorf(l, "escape sequence not terminated");
                return TS_ERR_INVALID;
            }

            ts_lex_rune_desc(desc, sizeof(desc), ch);
            (void) ts_lex_errorf(l, "illegal character %s in escape sequence",
                                 desc);
            return TS_ERR_INVALID;
        }

        x = x * base + d;
        n--;

        if (n > 0) {
            ch = ts_lex_next(l);
        }
    }

    if (x > max || (x >= 0xd800 && x < 0xe000)) {
        (void) ts_lex_errorf(l, "escape sequence is an invalid Unicode "
                             "code point");
        return TS_ERR_INVALID;
    }

    return TS_OK;
}


static ts_lex_state_t
ts_lex_raw_string(ts_lexer_t *l)
{
    int32_t  r;

    for ( ;; ) {
        r = ts_lex_next(l);

        if (r == TS_RUNE_ERROR) {
            return ts_lex_errorf(l, "invalid UTF-8 rune");
        }

        if (r == TS_LEX_EOF) {
            return ts_lex_errorf(l, "unterminated raw string");
        }

        if (r == l->string_open) {
            break;
        }
    }

    ts_lex_emit(l, TS_T_STRING);

    return TS_LS_STATEMENTS;
}


/* Go's scanNumber: 1 if what follows cannot continue the number */
static int
ts_lex_scan_number(ts_lexer_t *l)
{
    const char  *digits;

    digits = "0123456789";

    if (ts_lex_accept(l, "0") && ts_lex_accept(l, "xX")) {
        digits = "0123456789abcdefABCDEF";
    }

    ts_lex_accept_run(l, digits);

    if (ts_lex_accept(l, ".")) {
        ts_lex_accept_run(l, digits);
    }

    if (ts_lex_accept(l, "eE")) {
        (void) ts_lex_accept(l, "+-");
        ts_lex_accept_run(l, "0123456789");
    }

    return !ts_is_alnum(ts_lex_peek(l));
}


/* Go's acceptRemainingDuration; reads one rune past a good one */
static int
ts_lex_remaining_duration(ts_lexer_t *l)
{
    if (!ts_lex_accept(l, "smhdwy")) {
        return 0;
    }

    (void) ts_lex_accept(l, "s");

    while (ts_lex_accept(l, "0123456789")) {
        ts_lex_accept_run(l, "0123456789");

        if (!ts_lex_accept(l, "smhdw")) {
            return 0;
        }

        (void) ts_lex_accept(l, "s");
    }

    return !ts_is_alnum(ts_lex_next(l));
}


static ts_lex_state_t
ts_lex_number_or_duration(ts_lexer_t *l)
{
    if (ts_lex_scan_number(l)) {
        ts_lex_emit(l, TS_T_NUMBER);
        return TS_LS_STATEMENTS;
    }

    if (ts_lex_remaining_duration(l)) {
        l->pos -= l->width;
        ts_lex_emit(l, TS_T_DURATION);
        return TS_LS_STATEMENTS;
    }

    return ts_lex_errorf(l, "bad number or duration syntax: \"%.*s\"",
                         (int) (l->pos - l->start), l->in + l->start);
}


static ts_lex_state_t
ts_lex_duration(ts_lexer_t *l)
{
    if (ts_lex_scan_number(l)) {
        return ts_lex_errorf(l, "missing unit character in duration");
    }

    if (!ts_lex_remaining_duration(l)) {
        return ts_lex_errorf(l, "bad duration syntax: \"%.*s\"",
                             (int) (l->pos - l->start), l->in + l->start);
    }

    l->pos -= l->width;
    ts_lex_emit(l, TS_T_DURATION);

    return TS_LS_STATEMENTS;
}


static ts_lex_state_t
ts_lex_keyword(ts_lexer_t *l)
{
    int32_t        r;
    size_t         len;
    const char    *w;
    ts_tok_type_t  t;

    for ( ;; ) {
        r = ts_lex_next(l);
        if (!ts_is_alnum(r) && r != ':') {
            break;
        }
    }

    l->pos -= l->width;

    w = l->in + l->start;
    len = l->pos - l->start;
    t = ts_promql_keyword(w, len);

    if (t == TS_T_IDENT && memchr(w, ':', len) != NULL) {
        t = TS_T_METRIC_IDENT;
    }

    ts_lex_emit(l, t);

    return TS_LS_STATEMENTS;
}


static ts_lex_state_t
ts_lex_identifier(ts_lexer_t *l)
{
    while (ts_is_alnum(ts_lex_next(l))) {
        /* void */
    }

    l->pos -= l->width;
    ts_lex_emit(l, TS_T_IDENT);

    return TS_LS_INSIDE_BRACES;
}


/* Go's %#U */
static void
ts_lex_rune_desc(char *buf, size_t size, int32_t r)
{
    char  u[4];

    if (r < 0) {
        snprintf(buf, size, "U+FFFFFFFFFFFFFFFF");
        return;
    }

    if (!ts_promql_is_print((uint32_t) r)) {
        snprintf(buf, size, "U+%04X", (unsigned) r);
        return;
    }

    snprintf(buf, size, "U+%04X '%.*s'", (unsigned) r,
             (int) ts_utf8_encode(u, (uint32_t) r), u);
}


/* Go's %q of a rune */
static void
ts_lex_rune_q(char *buf, size_t size, int32_t r)
{
    char         u[4];
    size_t       n;
    ts_pq_out_t  o;

    o.buf = buf;
    o.size = size;
    o.len = 0;

    n = ts_utf8_encode(u, r < 0 ? TS_RUNE_ERROR : (uint32_t) r);

    ts_pq_quote(&o, u, n, '\'');
}


int
ts_promql_unquote(const char *s, size_t len, ts_arena_t *a,
    ts_promql_str_t *out)
{
    char        quote, *buf;
    size_t      n, k;
    const char *p, *end;

    if (len < 2 || s[0] != s[len - 1]) {
        return TS_ERR_INVALID;
    }

    quote = s[0];
    p = s + 1;
    end = s + len - 1;

    buf = ts_arena_alloc(a, len + 1);
    if (buf == NULL) {
        return TS_ERR_NOMEM;
    }

    if (quote == '`') {
        if (memchr(p, '`', (size_t) (end - p)) != NULL) {
            return TS_ERR_INVALID;
        }

        memcpy(buf, p, (size_t) (end - p));
        buf[end - p] = '\0';
        out->data = buf;
        out->len = (size_t) (end - p);
        return TS_OK;
    }

    if ((quote != '"' && quote != '\'')
        || memchr(p, '\n', (size_t) (end - p)) != NULL)
    {
        return TS_ERR_INVALID;
    }

    /* escapes never grow: len - 2 bytes are enough */
    k = 0;

    while (p < end) {
        if (ts_unquote_char(&p, end, quote, buf + k, &n) != TS_OK) {
            return TS_ERR_INVALID;
        }

        k += n;
    }

    buf[k] = '\0';
    out->data = buf;
    out->len = k;

    return TS_OK;
}


static int
ts_unhex(char c)
{
    int  d;

    d = ts_digit_val((unsigned char) c);

    return d < 16 ? d : -1;
}


static size_t
ts_utf8_encode(char *out, uint32_t r)
{
    if (r < 0x80) {
        out[0] = (char) r;
        return 1;
    }

    if (r < 0x800) {
        out[0] = (char) (0xc0 | (r >> 6));
        out[1] = (char) (0x80 | (r & 0x3f));
        return 2;
    }

    if (r >= 0xd800 && r < 0xe000) {
        r = TS_RUNE_ERROR;
    }

    if (r < 0x10000) {
        out[0] = (char) (0xe0 | (r >> 12));
        out[1] = (char) (0x80 | ((r >> 6) & 0x3f));
        out[2] = (char) (0x80 | (r & 0x3f));
        return 3;
    }

    out[0] = (char) (0xf0 | (r >> 18));
    out[1] = (char) (0x80 | ((r >> 12) & 0x3f));
    out[2] = (char) (0x80 | ((r >> 6) & 0x3f));
    out[3] = (char) (0x80 | (r & 0x3f));

    return 4;
}


/* strutil.unquoteChar: one (possibly escaped) character of *sp */
static int
ts_unquote_char(const char **sp, const char *end, char quote, char *out,
    size_t *n)
{
    int          j, k, x;
    char         c;
    uint32_t     v;
    const char  *s;

    s = *sp;
    c = *s;

    if (c == quote) {
        return TS_ERR_INVALID;
    }

    if (c != '\\') {
        /* a multi-byte character is copied as it is */
        *out = c;
        *n = 1;
        *sp = s + 1;
        return TS_OK;
    }

    if (end - s < 2) {
        return TS_ERR_INVALID;
    }

    c = s[1];
    s += 2;

    switch (c) {
    case 'a': *out = '\a'; break;
    case 'b': *out = '\b'; break;
    case 'f': *out = '\f'; break;
    case 'n': *out = '\n'; break;
    case 'r': *out = '\r'; break;
    case 't': *out = '\t'; break;
    case 'v': *out = '\v'; break;
    case '\\': *out = '\\'; break;

    case '\'':
    case '"':
        if (c != quote) {
            return TS_ERR_INVALID;
        }
        *out = c;
        break;

    case 'x':
    case 'u':
    case 'U':
        k = c == 'x' ? 2 : (c == 'u' ? 4 : 8);

        if (end - s < k) {
            return TS_ERR_INVALID;
        }

        v = 0;

        for (j = 0; j < k; j++) {
            x = ts_unhex(s[j]);
            if (x < 0) {
                return TS_ERR_INVALID;
            }
            v = (v << 4) | (uint32_t) x;
        }

        s += k;

        if (c == 'x') {
            *out = (char) v;
            break;
        }

        if (v > TS_MAX_RUNE) {
            return TS_ERR_INVALID;
        }

        *n = ts_utf8_encode(out, v);
        *sp = s;
        return TS_OK;

    case '0': case '1': case '2': case '3':
    case '4': case '5': case '6': case '7':
        v = (uint32_t) (c - '0');

        if (end - s < 2) {
            return TS_ERR_INVALID;
        }

        for (j = 0; j < 2; j++) {
            x = s[j] - '0';
            if (x < 0 || x > 7) {
                return TS_ERR_INVALID;
            }
            v = (v << 3) | (uint32_t) x;
        }

        s += 2;

        if (v > 255) {
            return TS_ERR_INVALID;
        }

        *out = (char) v;
        break;

    default:
        return TS_ERR_INVALID;
    }

    *n = 1;
    *sp = s;

    return TS_OK;
}
