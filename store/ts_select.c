/*
 * Copyright (C) ngx_tsdb authors
 *
 * Series selection by label matchers.
 *
 * Semantics.  A series is selected when every matcher accepts the value
 * of its label, "" for a missing label.  Evaluation mirrors Prometheus's
 * PostingsForMatchers (tsdb/querier.go): a label "must be set" when one
 * of its matchers rejects "".  Then each matcher becomes a term over the
 * postings of the values of its label that pass a predicate P:
 *
 *   - label must be set and the matcher is not (!= or !~ accepting ""):
 *     intersect with the series whose value passes P = the matcher;
 *   - otherwise: subtract the series whose value passes P = not the
 *     matcher (they have the label, with a value the matcher rejects).
 *
 * The result is the intersection of the intersect terms (all series of
 * the tenant when there is none) minus the union of the subtract terms;
 * no matchers select nothing, as Intersect() of nothing in Prometheus.
 * A term's lists: one for an equality, one per string of a regex that
 * is a literal alternation ("a|b|c", as Prometheus's set matches),
 * else one per label value passing P (all of them: the label's own
 * list instead).
 *
 * Regexes.  Prometheus compiles Go RE2 "^(?s:re)$" (model/labels/
 * regexp.go; since 3.0.0, "regexp . now matches all characters", #14505;
 * 2.x used "^(?:re)$", where "." does not match "\n").  Here: PCRE2 with
 * PCRE2_ANCHORED | PCRE2_ENDANCHORED (whole value, no wrapping group, so
 * "a)|(b" stays an error), PCRE2_DOTALL, PCRE2_DOLLAR_ENDONLY ("$" is
 * the end, not before a final "\n"), PCRE2_UTF with
 * PCRE2_MATCH_INVALID_UTF, newline LF, no \C, and no PCRE2_UCP (\d \w \b
 * ASCII as in RE2).  Before compiling, a scanner accepts RE2 syntax
 * only: lookaround, atomic groups, possessive and nested quantifiers,
 * backreferences, recursion, conditionals, callouts, (*VERBS), escapes
 * RE2 lacks (\K \G \R \X \h \Z \e \c \g \k ...), \Q inside a class and
 * repeat counts over 1000 are rejected as RE2 rejects them; RE2's \v
 * (vertical tab) becomes \x0b, since PCRE2's \v is a class.  Left
 * different: PCRE2's \s also matches \x0b; Unicode property names and
 * case folding follow PCRE2's tables; a value that is not valid UTF-8
 * cannot be matched by "." at its bad bytes (RE2 reads U+FFFD); "\12"
 * is rejected (RE2: octal).  Every match runs under match, depth and
 * heap limits; hitting one fails the query (TS_ERR_LIMIT), so the work
 * of a hostile regex is bounded by the number of label values times
 * match_limit.
 *
 * Memory.  A selection holds one iterator per postings list and a heap
 * per term, never a list of series.  Lists are read lazily, so series
 * added meanwhile may or may not show; a subtraction could then let
 * one through whose subtracted list was read before it was indexed,
 * hence the labels check of plans that subtract.
 */

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH  8
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "ts_chunk.h"
#include "ts_select.h"


#define TS_RE2_MAX_REPEAT     1000
#define TS_JIT_STACK_MIN      (32 * 1024)
#define TS_JIT_STACK_MAX      (1024 * 1024)

#define TS_TERM_AND           0
#define TS_TERM_SUB           1

#define TS_PRED_ONE           0     /* the list of name=value */
#define TS_PRED_SET           1     /* the lists of the literal set */
#define TS_PRED_VALUES        2     /* label values passing P */


typedef struct {
    const char             *s;
    size_t                  len;
} ts_str_t;


typedef struct {
    ts_match_type_t         type;
    char                   *name;
    size_t                  nlen;
    char                   *value;
    size_t                  vlen;
    pcre2_code             *re;
    ts_str_t               *set;        /* sorted, unique */
    uint32_t                nset;
    int                     set_ok;     /* a literal alternation */
    int                     empty;      /* accepts "" */
    int                     kind;       /* TS_TERM_* */
    int                     pred;       /* TS_PRED_* */
} ts_match_t;


struct ts_selector_s {
    ts_match_t             *m;
    uint32_t                n;
    int                     subtracts;
    pcre2_match_data       *md;
    pcre2_match_context    *mctx;
    pcre2_jit_stack        *jit;
};


typedef struct {
    ts_pit_t                it;
    uint64_t                cur;
} ts_list_t;


typedef struct {
    uint32_t                first;      /* lists */
    uint32_t                n;
    uint32_t               *heap;       /* list indexes by cur */
    uint32_t                hn;
    int                     kind;
} ts_term_t;


struct ts_select_s {
    ts_selector_t          *sel;
    const ts_source_t      *src;
    ts_list_t              *lists;
    uint32_t                nlists;
    uint32_t                lcap;
    ts_term_t              *terms;
    uint32_t                nterms;
    uint32_t                nand;
    uint32_t               *heaps;
    uint64_t                next;
    int                     done;
    int                     verify;     /* check labels before output */
    ts_label_t              labels[TS_SELECT_MAX_LABELS];
};


typedef struct {
    ts_select_t            *s;
    ts_match_t             *m;
    uint32_t                total;
    uint32_t                matched;
    int                     rc;
} ts_values_ctx_t;


static int ts_selector_add(ts_selector_t *sel, ts_match_t *m,
    const ts_matcher_t *in, const ts_select_limits_t *lim, char *msg,
    size_t msglen);
static int ts_selector_regex(ts_selector_t *sel, ts_match_t *m,
    const ts_select_limits_t *lim, char *msg, size_t msglen);
static int ts_selector_pcre2(ts_match_t *m, const char *name, char *msg,
    size_t msglen);
static int ts_selector_empty(ts_selector_t *sel, ts_match_t *m);
static void ts_selector_plan(ts_selector_t *sel);
static int ts_selector_scratch(ts_selector_t *sel,
    const ts_select_limits_t *lim);
static int ts_match_value(ts_selector_t *sel, ts_match_t *m, const char *s,
    size_t len);
static int ts_literal_set(ts_match_t *m);
static int ts_str_cmp(const void *a, const void *b);
static int ts_re2_check(const char *p, size_t n, char *out, size_t *on,
    char *msg, size_t msglen);
static int ts_re2_escape(const char *p, size_t n, size_t *i, char *out,
    size_t *o, int cls, char *msg, size_t msglen);
static int ts_re2_class(const char *p, size_t n, size_t *i, char *out,
    size_t *o, char *msg, size_t msglen);
static int ts_re2_group(const char *p, size_t n, size_t i, char *msg,
    size_t msglen);
static int ts_re2_repeat(const char *p, size_t n, size_t i, size_t *end,
    char *msg, size_t msglen);
static int ts_re2_number(const char *p, size_t n, size_t *jp, uint64_t *v);
static void ts_msg_quote(char *dst, size_t size, const char *s,
    size_t len);

static int ts_select_term(ts_select_t *s, ts_match_t *m);
static int ts_select_values(void *data, const char *v, size_t len);
static int ts_select_list(ts_select_t *s, const char *name, size_t nlen,
    const char *value, size_t vlen);
static void ts_select_drop(ts_select_t *s, uint32_t from);
static int ts_select_heaps(ts_select_t *s);
static int ts_list_seek(ts_list_t *l, uint64_t target);
static void ts_heap_down(ts_list_t *l, uint32_t *h, uint32_t n, uint32_t i);
static int ts_term_seek(ts_select_t *s, ts_term_t *t, uint64_t target,
    uint64_t *out);
static int ts_select_candidate(ts_select_t *s, uint64_t *ref);
static int ts_select_excluded(ts_select_t *s, uint64_t ref);
static int ts_select_verify(ts_select_t *s, uint64_t ref);

static int ts_source_head_postings(void *data, const char *name,
    size_t nlen, const char *value, size_t vlen, ts_pit_t *it);
static int ts_source_head_next(ts_pit_t *it, uint64_t *ref);
static int ts_source_head_seek(ts_pit_t *it, uint64_t target,
    uint64_t *ref);
static int ts_source_empty_next(ts_pit_t *it, uint64_t *ref);
static int ts_source_head_values(void *data, const char *name, size_t nlen,
    ts_source_str_pt cb, void *cbdata);
static int ts_source_head_labels(void *data, uint64_t ref, ts_label_t *out,
    uint32_t max, uint32_t *n);
static int ts_source_head_chunks(void *data, uint64_t ref, int64_t mint,
    int64_t maxt, ts_source_chunk_pt cb, void *cbdata);
static int ts_source_head_chunk(void *data, const ts_head_chunk_t *c);


static const ts_pit_ops_t  ts_source_head_ops = {
    ts_source_head_next, ts_source_head_seek, NULL
};

static const ts_pit_ops_t  ts_source_empty_ops = {
    ts_source_empty_next, NULL, NULL
};


void
ts_select_limits_default(ts_select_limits_t *lim)
{
    lim->max_matchers = 64;
    lim->max_regex_len = 16 * 1024;
    lim->match_limit = 100000;
    lim->depth_limit = 10000;
    lim->heap_limit = 8192;
}


int
ts_selector_compile(ts_selector_t **selp, const ts_matcher_t *m,
    uint32_t n, const ts_select_limits_t *lim, char *msg, size_t msglen)
{
    int                  rc;
    uint32_t             i;
    ts_selector_t       *sel;
    ts_select_limits_t   def;

    if (msg != NULL && msglen > 0) {
        msg[0] = '\0';
    }

    if (lim == NULL) {
        ts_select_limits_default(&def);
        lim = &def;
    }

    if (n > lim->max_matchers) {
        if (msg != NULL) {
            snprintf(msg, msglen, "%u matchers, more than %u", n,
                     lim->max_matchers);
        }

        return TS_ERR_LIMIT;
    }

    sel = calloc(1, sizeof(ts_selector_t));
    if (sel == NULL) {
        return TS_ERR_NOMEM;
    }

    sel->m = calloc(n ? n : 1, sizeof(ts_match_t));
    if (sel->m == NULL || ts_selector_scratch(sel, lim) != TS_OK) {
        ts_selector_free(sel);
        return TS_ERR_NOMEM;
    }

    for (i = 0; i < n; i++) {
        rc = ts_selector_add(sel, &sel->m[i], &m[i], lim, msg, msglen);
        sel->n = i + 1;

        if (rc != TS_OK) {
            ts_selector_free(sel);
            return rc;
        }
    }

    ts_selector_plan(sel);
    *selp = sel;

    return TS_OK;
}


void
ts_selector_free(ts_selector_t *sel)
{
    uint32_t  i;

    if (sel == NULL) {
        return;
    }

    for (i = 0; i < sel->n; i++) {
        free(sel->m[i].name);
        free(sel->m[i].value);
        free(sel->m[i].set);
        pcre2_code_free(sel->m[i].re);
    }

    free(sel->m);
    pcre2_match_data_free(sel->md);
    pcre2_match_context_free(sel->mctx);
    pcre2_jit_stack_free(sel->jit);
    free(sel);
}


int
ts_selector_match(ts_selector_t *sel, const ts_label_t *l, uint32_t n)
{
    int                rc;
    uint32_t           i;
    ts_match_t        *m;
    const ts_label_t  *lb;

    for (i = 0; i < sel->n; i++) {
        m = &sel->m[i];
        lb = ts_labels_find(l, n, m->name, m->nlen);

        rc = lb ? ts_match_value(sel, m, lb->value, lb->value_len)
                : m->empty;

        if (rc != 1) {
            return rc;
        }
    }

    return sel->n > 0;
}


static int
ts_selector_scratch(ts_selector_t *sel, const ts_select_limits_t *lim)
{
    sel->md = pcre2_match_data_create(1, NULL);
    sel->mctx = pcre2_match_context_create(NULL);

    if (sel->md == NULL || sel->mctx == NULL) {
        return TS_ERR_NOMEM;
    }

    pcre2_set_match_limit(sel->mctx, lim->match_limit);
    pcre2_set_depth_limit(sel->mctx, lim->depth_limit);
    pcre2_set_heap_limit(sel->mctx, lim->heap_limit);

    /* without JIT support this stays NULL and matching interprets */
    sel->jit = pcre2_jit_stack_create(TS_JIT_STACK_MIN, TS_JIT_STACK_MAX,
                                      NULL);
    if (sel->jit != NULL) {
        pcre2_jit_stack_assign(sel->mctx, NULL, sel->jit);
    }

    return TS_OK;
}


static int
ts_selector_add(ts_selector_t *sel, ts_match_t *m, const ts_matcher_t *in,
    const ts_select_limits_t *lim, char *msg, size_t msglen)
{
    if ((unsigned) in->type > TS_MATCH_NRE) {
        if (msg != NULL) {
            snprintf(msg, msglen, "unknown matcher type %d", (int) in->type);
        }

        return TS_ERR_INVALID;
    }

    m->type = in->type;
    m->nlen = in->name_len;
    m->vlen = in->value_len;
    m->name = malloc(m->nlen + 1);
    m->value = malloc(m->vlen + 1);

    if (m->name == NULL || m->value == NULL) {
        return TS_ERR_NOMEM;
    }

    memcpy(m->name, in->name, m->nlen);
    m->name[m->nlen] = '\0';
    memcpy(m->value, in->value, m->vlen);
    m->value[m->vlen] = '\0';

    if (m->type == TS_MATCH_EQ || m->type == TS_MATCH_NEQ) {
        m->empty = (m->vlen == 0) == (m->type == TS_MATCH_EQ);
        return TS_OK;
    }

    return ts_selector_regex(sel, m, lim, msg, msglen);
}


static int
ts_selector_regex(ts_selector_t *sel, ts_match_t *m,
    const ts_select_limits_t *lim, char *msg, size_t msglen)
{
    int    rc;
    char   name[80];

    ts_msg_quote(name, sizeof(name), m->name, m->nlen);

    if (!ts_utf8_valid(m->value, m->vlen)) {
        if (msg != NULL) {
            snprintf(msg, msglen, "regex for \"%s\" is not valid UTF-8",
                     name);
        }

        return TS_ERR_INVALID;
    }

    rc = ts_literal_set(m);
    if (rc != TS_OK) {
        return rc;
    }

    if (m->set_ok) {
        m->empty = (m->nset > 0 && m->set[0].len == 0)
                   == (m->type == TS_MATCH_RE);
        return TS_OK;
    }

    if (m->vlen > lim->max_regex_len) {
        if (msg != NULL) {
            snprintf(msg, msglen, "regex for \"%s\" longer than %u bytes",
                     name, lim->max_regex_len);
        }

        return TS_ERR_LIMIT;
    }

    rc = ts_selector_pcre2(m, name, msg, msglen);
    if (rc != TS_OK) {
        return rc;
    }

    /* JIT is an optimization: without it pcre2_match() interprets */
    (void) pcre2_jit_compile(m->re, PCRE2_JIT_COMPLETE);

    rc = ts_selector_empty(sel, m);

    if (rc != TS_OK && msg != NULL) {
        snprintf(msg, msglen, "regex for \"%s\" hit the match limits",
                 name);
    }

    return rc;
}


/* RE2 syntax check, then PCRE2 with the options described on top */

static int
ts_selector_pcre2(ts_match_t *m, const char *name, char *msg,
    size_t msglen)
{
    int          err;
    char        *pat, why[256];
    size_t       plen;
    uint32_t     opts;
    PCRE2_SIZE   off;

    pat = malloc(2 * m->vlen + 1);
    if (pat == NULL) {
        return TS_ERR_NOMEM;
    }

    if (ts_re2_check(m->value, m->vlen, pat, &plen, why, sizeof(why))
        != TS_OK)
    {
        free(pat);

        if (msg != NULL) {
            snprintf(msg, msglen, "invalid regex for \"%s\": %s", name,
                     why);
        }

        return TS_ERR_INVALID;
    }

    opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOTALL
           | PCRE2_DOLLAR_ENDONLY | PCRE2_ANCHORED | PCRE2_ENDANCHORED
           | PCRE2_NEVER_BACKSLASH_C | PCRE2_NO_AUTO_CAPTURE;

    m->re = pcre2_compile((PCRE2_SPTR) pat, plen, opts, &err, &off, NULL);
    free(pat);

    if (m->re != NULL) {
        return TS_OK;
    }

    if (msg != NULL) {
        pcre2_get_error_message(err, (PCRE2_UCHAR *) why, sizeof(why));
        snprintf(msg, msglen, "invalid regex for \"%s\": %s", name, why);
    }

    return err == PCRE2_ERROR_NOMEMORY ? TS_ERR_NOMEM : TS_ERR_INVALID;
}


static int
ts_selector_empty(ts_selector_t *sel, ts_match_t *m)
{
    int  rc;

    rc = pcre2_match(m->re, (PCRE2_SPTR) "", 0, 0, 0, sel->md, sel->mctx);

    if (rc >= 0) {
        m->empty = m->type == TS_MATCH_RE;
        return TS_OK;
    }

    if (rc == PCRE2_ERROR_NOMATCH) {
        m->empty = m->type == TS_MATCH_NRE;
        return TS_OK;
    }

    return TS_ERR_LIMIT;
}


/* PostingsForMatchers' planning; see the comment at the top. */

static void
ts_selector_plan(ts_selector_t *sel)
{
    int          must, neg;
    uint32_t     i, j;
    ts_match_t  *m, *o;

    for (i = 0; i < sel->n; i++) {
        m = &sel->m[i];
        must = 0;

        for (j = 0; j < sel->n; j++) {
            o = &sel->m[j];

            if (!o->empty && o->nlen == m->nlen
                && memcmp(o->name, m->name, m->nlen) == 0)
            {
                must = 1;
                break;
            }
        }

        neg = m->type == TS_MATCH_NEQ || m->type == TS_MATCH_NRE;
        m->kind = (must && !(neg && m->empty)) ? TS_TERM_AND : TS_TERM_SUB;

        /* P is the matcher for AND terms and its negation for SUB ones */

        if ((m->type == TS_MATCH_EQ && m->kind == TS_TERM_AND)
            || (m->type == TS_MATCH_NEQ && m->kind == TS_TERM_SUB))
        {
            m->pred = TS_PRED_ONE;

        } else if (m->set_ok
                   && ((m->type == TS_MATCH_RE && m->kind == TS_TERM_AND)
                       || (m->type == TS_MATCH_NRE
                           && m->kind == TS_TERM_SUB)))
        {
            m->pred = TS_PRED_SET;

        } else {
            m->pred = TS_PRED_VALUES;
        }

        if (m->kind == TS_TERM_SUB) {
            sel->subtracts = 1;
        }
    }
}


/* 1 if the matcher accepts s, 0 if not, TS_ERR_LIMIT */

static int
ts_match_value(ts_selector_t *sel, ts_match_t *m, const char *s,
    size_t len)
{
    int       rc;
    ts_str_t  key;

    switch (m->type) {

    case TS_MATCH_EQ:
        return len == m->vlen && memcmp(s, m->value, len) == 0;

    case TS_MATCH_NEQ:
        return !(len == m->vlen && memcmp(s, m->value, len) == 0);

    default:
        break;
    }

    if (m->set_ok) {
        key.s = s;
        key.len = len;
        rc = bsearch(&key, m->set, m->nset, sizeof(ts_str_t), ts_str_cmp)
             != NULL;

    } else {
        rc = pcre2_match(m->re, (PCRE2_SPTR) s, len, 0, 0, sel->md,
                         sel->mctx);

        if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
            return rc == PCRE2_ERROR_NOMEMORY ? TS_ERR_NOMEM : TS_ERR_LIMIT;
        }

        rc = rc >= 0;
    }

    return m->type == TS_MATCH_RE ? rc : !rc;
}


/*
 * A regex made only of literal strings separated by "|", meta
 * characters escaped (what Go's regexp.QuoteMeta writes), matches
 * exactly those strings: m->set gets them unescaped.
 */

static int
ts_literal_set(ts_match_t *m)
{
    char         *buf, c;
    size_t        i, o, start;
    uint32_t      n, k;
    const char   *meta;

    meta = "\\.+*?()|[]{}^$";
    n = 1;

    for (i = 0; i < m->vlen; i++) {
        c = m->value[i];

        if (c == '\\') {
            if (i + 1 == m->vlen || strchr(meta, m->value[i + 1]) == NULL
                || m->value[i + 1] == '\0')
            {
                return TS_OK;
            }

            i++;

        } else if (c == '|') {
            n++;

        } else if (c == '\0' || strchr(meta, c) != NULL) {
            return TS_OK;
        }
    }

    /* the strings go after the array, in one allocation */

    m->set = malloc(n * sizeof(ts_str_t) + m->vlen + 1);
    if (m->set == NULL) {
        return TS_ERR_NOMEM;
    }

    buf = (char *) (m->set + n);
    o = 0;
    start = 0;
    k = 0;

    for (i = 0; i <= m->vlen; i++) {
        if (i == m->vlen || m->value[i] == '|') {
            m->set[k].s = buf + start;
            m->set[k++].len = o - start;
            start = o;
            continue;
        }

        if (m->value[i] == '\\') {
            i++;
        }

        buf[o++] = m->value[i];
    }

    qsort(m->set, n, sizeof(ts_str_t), ts_str_cmp);

    for (i = 1, k = 1; i < n; i++) {
        if (ts_str_cmp(&m->set[k - 1], &m->set[i]) != 0) {
            m->set[k++] = m->set[i];
        }
    }

    m->nset = k;
    m->set_ok = 1;

    return TS_OK;
}


static int
ts_str_cmp(const void *a, const void *b)
{
    int              rc;
    const ts_str_t  *x, *y;

    x = a;
    y = b;

    rc = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (rc != 0) {
        return rc;
    }

    return (x->len > y->len) - (x->len < y->len);
}


/* printable ASCII, other bytes as \xNN, cut with "..." */

static void
ts_msg_quote(char *dst, size_t size, const char *s, size_t len)
{
    size_t         i, o;
    unsigned char  c;

    o = 0;

    for (i = 0; i < len && o + 8 < size; i++) {
        c = (unsigned char) s[i];

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            dst[o++] = (char) c;

        } else {
            o += (size_t) snprintf(dst + o, size - o, "\\x%02x", c);
        }
    }

    if (i < len) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }

    dst[o] = '\0';
}


/*
 * Copies an RE2 pattern to out (room for 2 * n bytes) as PCRE2 should
 * read it, or explains in msg why RE2 would reject it.
 */

static int
ts_re2_check(const char *p, size_t n, char *out, size_t *on, char *msg,
    size_t msglen)
{
    int     quant, rc;
    char    c;
    size_t  i, o, end;

    quant = 0;
    o = 0;
    i = 0;
    rc = 0;
    end = 0;

    while (i < n) {
        c = p[i];

        if (c == '\\') {
            rc = ts_re2_escape(p, n, &i, out, &o, 0, msg, msglen);
            quant = 0;

        } else if (c == '[') {
            rc = ts_re2_class(p, n, &i, out, &o, msg, msglen);
            quant = 0;

        } else if (c == '(') {
            rc = ts_re2_group(p, n, i, msg, msglen);

            /* "(?" must not be read as a quantifier "?" */

            if (i + 1 < n && p[i + 1] == '?') {
                out[o++] = p[i++];
            }

            out[o++] = p[i++];
            quant = 0;

        } else if (c == '*' || c == '+' || c == '?'
                   || (c == '{'
                       && (rc = ts_re2_repeat(p, n, i, &end, msg, msglen))
                          != 0))
        {
            if (c == '{' && rc < 0) {
                return rc;
            }

            if (quant == 1 && c == '?') {
                quant = 2;

            } else if (quant) {
                snprintf(msg, msglen, "invalid nested repetition operator "
                         "at offset %zu", i);
                return TS_ERR_INVALID;

            } else {
                quant = 1;
            }

            end = c == '{' ? end : i + 1;

            while (i < end) {
                out[o++] = p[i++];
            }

            rc = TS_OK;

        } else {
            out[o++] = p[i++];
            quant = 0;
            rc = TS_OK;
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    *on = o;

    return TS_OK;
}


static int
ts_re2_escape(const char *p, size_t n, size_t *ip, char *out, size_t *op,
    int cls, char *msg, size_t msglen)
{
    char          c;
    size_t        i, o;
    const char   *ok;

    i = *ip;
    o = *op;

    if (i + 1 == n) {
        snprintf(msg, msglen, "trailing backslash");
        return TS_ERR_INVALID;
    }

    c = p[i + 1];
    ok = cls ? "afnrtvxdDsSwWpP0" : "afnrtvxdDsSwWpPbBAzQ0";

    if ((unsigned char) c >= 0x80
        || (((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
             || (c >= '0' && c <= '9'))
            && strchr(ok, c) == NULL))
    {
        snprintf(msg, msglen, "invalid escape sequence at offset %zu", i);
        return TS_ERR_INVALID;
    }

    if (c == 'v') {
        memcpy(out + o, "\\x0b", 4);
        *op = o + 4;
        *ip = i + 2;
        return TS_OK;
    }

    out[o++] = p[i++];
    out[o++] = p[i++];

    if (c == 'Q') {

        /* literal text up to \E or the end, read alike by both */

        while (i < n && !(p[i] == '\\' && i + 1 < n && p[i + 1] == 'E')) {
            out[o++] = p[i++];
        }

        if (i < n) {
            out[o++] = p[i++];
            out[o++] = p[i++];
        }

    } else if ((c == 'x' || c == 'p' || c == 'P') && i < n && p[i] == '{') {
        while (i < n && p[i] != '}') {
            out[o++] = p[i++];
        }

    } else if (c == 'x') {
        if (i + 2 > n || strchr("0123456789abcdefABCDEF", p[i]) == NULL
            || strchr("0123456789abcdefABCDEF", p[i + 1]) == NULL
            || p[i] == '\0' || p[i + 1] == '\0')
        {
            snprintf(msg, msglen, "invalid escape sequence at offset %zu",
                     *ip);
            return TS_ERR_INVALID;
        }
    }

    *ip = i;
    *op = o;

    return TS_OK;
}


static int
ts_re2_class(const char *p, size_t n, size_t *ip, char *out, size_t *op,
    char *msg, size_t msglen)
{
    int     rc;
    size_t  i, o, start;

    i = *ip;
    o = *op;
    start = i;

    out[o++] = p[i++];

    if (i < n && p[i] == '^') {
        out[o++] = p[i++];
    }

    if (i < n && p[i] == ']') {
        out[o++] = p[i++];
    }

    while (i < n && p[i] != ']') {
        if (p[i] == '\\') {
            rc = ts_re2_escape(p, n, &i, out, &o, 1, msg, msglen);
            if (rc != TS_OK) {
                return rc;
            }

            continue;
        }

        if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
            while (i < n && !(p[i] == ']' && p[i - 1] == ':')) {
                out[o++] = p[i++];
            }

            if (i == n) {
                break;
            }
        }

        out[o++] = p[i++];
    }

    if (i == n) {
        snprintf(msg, msglen, "missing closing ] for the class at offset "
                 "%zu", start);
        return TS_ERR_INVALID;
    }

    out[o++] = p[i++];
    *ip = i;
    *op = o;

    return TS_OK;
}


/* RE2 groups: (re) (?:re) (?flags) (?flags:re) (?P<name>re) (?<name>re) */

static int
ts_re2_group(const char *p, size_t n, size_t i, char *msg, size_t msglen)
{
    size_t  j;

    if (i + 1 < n && p[i + 1] == '*') {
        snprintf(msg, msglen, "(* at offset %zu is not RE2 syntax", i);
        return TS_ERR_INVALID;
    }

    if (i + 1 == n || p[i + 1] != '?') {
        return TS_OK;
    }

    j = i + 2;

    if (j < n && p[j] == ':') {
        return TS_OK;
    }

    if (j + 1 < n && p[j] == 'P' && p[j + 1] == '<') {
        return TS_OK;
    }

    if (j + 1 < n && p[j] == '<' && p[j + 1] != '=' && p[j + 1] != '!') {
        return TS_OK;
    }

    while (j < n && p[j] != '\0' && strchr("imsU-", p[j]) != NULL) {
        j++;
    }

    if (j > i + 2 && j < n && (p[j] == ')' || p[j] == ':')) {
        return TS_OK;
    }

    snprintf(msg, msglen, "group at offset %zu is not RE2 syntax (no "
             "lookaround, atomic groups, recursion, conditionals)", i);

    return TS_ERR_INVALID;
}


/*
 * At "{": 1 and *end past "}" for a repeat {n}, {n,} or {n,m} within
 * RE2's limit, 0 for a literal "{" (as RE2 and PCRE2 both read one that
 * does not form a repeat), TS_ERR_INVALID for a bad count.
 */

static int
ts_re2_repeat(const char *p, size_t n, size_t i, size_t *end, char *msg,
    size_t msglen)
{
    size_t    j;
    uint64_t  lo, hi;

    j = i + 1;

    if (ts_re2_number(p, n, &j, &lo) != TS_OK) {
        return 0;
    }

    hi = lo;

    if (j < n && p[j] == ',') {
        j++;

        if (j < n && p[j] == '}') {
            hi = lo;

        } else if (ts_re2_number(p, n, &j, &hi) != TS_OK) {
            return 0;
        }
    }

    if (j == n || p[j] != '}') {
        return 0;
    }

    if (lo > TS_RE2_MAX_REPEAT || hi > TS_RE2_MAX_REPEAT || hi < lo) {
        snprintf(msg, msglen, "invalid repeat count at offset %zu", i);
        return TS_ERR_INVALID;
    }

    *end = j + 1;

    return 1;
}


/* decimal digits at *j (at least one), saturating past the limit */

static int
ts_re2_number(const char *p, size_t n, size_t *jp, uint64_t *v)
{
    size_t  j;

    *v = 0;

    for (j = *jp; j < n && p[j] >= '0' && p[j] <= '9'; j++) {
        if (*v <= TS_RE2_MAX_REPEAT) {
            *v = *v * 10 + (uint64_t) (p[j] - '0');
        }
    }

    if (j == *jp) {
        return TS_ERR_INVALID;
    }

    *jp = j;

    return TS_OK;
}


int
ts_select_open(ts_select_t **itp, ts_selector_t *sel,
    const ts_source_t *src)
{
    int           rc;
    uint32_t      i, pass;
    ts_select_t  *s;

    s = calloc(1, sizeof(ts_select_t));
    if (s == NULL) {
        return TS_ERR_NOMEM;
    }

    s->sel = sel;
    s->src = src;
    s->terms = calloc(sel->n + 1, sizeof(ts_term_t));

    if (s->terms == NULL) {
        free(s);
        return TS_ERR_NOMEM;
    }

    /*
     * Intersect terms first, then subtract ones; with nothing to
     * intersect, subtract from all series of the tenant.
     */

    rc = TS_OK;

    for (pass = 0; pass < 2 && rc == TS_OK && !s->done; pass++) {
        for (i = 0; i < sel->n && rc == TS_OK && !s->done; i++) {
            if (sel->m[i].kind == (pass ? TS_TERM_SUB : TS_TERM_AND)) {
                rc = ts_select_term(s, &sel->m[i]);
            }
        }

        if (pass == 0 && rc == TS_OK && s->nterms == 0 && sel->n > 0) {
            rc = ts_select_term(s, NULL);
        }

        s->nand = pass == 0 ? s->nterms : s->nand;
    }

    if (rc == TS_OK && !s->done) {
        s->done = s->nand == 0;
        rc = ts_select_heaps(s);
    }

    s->verify |= sel->subtracts;

    if (rc != TS_OK) {
        ts_select_close(s);
        return rc;
    }

    *itp = s;

    return TS_OK;
}


int
ts_select_next(ts_select_t *s, uint64_t *ref)
{
    int       rc;
    uint64_t  x;

    while (!s->done) {
        rc = ts_select_candidate(s, &x);
        if (rc <= 0) {
            s->done = 1;
            return rc;
        }

        if (x == UINT64_MAX) {
            s->done = 1;
        }

        s->next = x + 1;

        rc = ts_select_excluded(s, x);

        if (rc == 0 && s->verify) {
            rc = ts_select_verify(s, x);
            rc = rc < 0 ? rc : !rc;
        }

        if (rc < 0) {
            s->done = 1;
            return rc;
        }

        if (rc == 0) {
            *ref = x;
            return 1;
        }
    }

    return 0;
}


void
ts_select_close(ts_select_t *s)
{
    if (s == NULL) {
        return;
    }

    ts_select_drop(s, 0);
    free(s->lists);
    free(s->terms);
    free(s->heaps);
    free(s);
}


/*
 * Adds the term of matcher m (NULL: all series of the tenant).  An
 * intersect term without lists empties the result: s->done.
 */

static int
ts_select_term(ts_select_t *s, ts_match_t *m)
{
    int               rc;
    uint32_t          first, i;
    ts_term_t        *t;
    ts_values_ctx_t   ctx;

    first = s->nlists;

    if (m == NULL) {
        rc = ts_select_list(s, NULL, 0, NULL, 0);

    } else if (m->pred == TS_PRED_ONE) {
        rc = ts_select_list(s, m->name, m->nlen, m->value, m->vlen);

    } else if (m->pred == TS_PRED_SET) {
        rc = TS_OK;

        for (i = 0; i < m->nset && rc == TS_OK; i++) {
            rc = ts_select_list(s, m->name, m->nlen, m->set[i].s,
                                m->set[i].len);
        }

    } else {
        ctx.s = s;
        ctx.m = m;
        ctx.total = 0;
        ctx.matched = 0;
        ctx.rc = TS_OK;

        rc = s->src->label_values(s->src->data, m->name, m->nlen,
                                  ts_select_values, &ctx);
        rc = rc != TS_OK ? rc : ctx.rc;

        /*
         * Every value passes: the label's own list is the same union,
         * except for series indexed after the values were listed, whose
         * values P did not see; an intersect term then needs the labels
         * check (a subtract one only misses such new series).
         */

        if (rc == TS_OK && ctx.matched == ctx.total && ctx.total > 1) {
            ts_select_drop(s, first);
            rc = ts_select_list(s, m->name, m->nlen, NULL, 0);
            s->verify |= m->kind == TS_TERM_AND;
        }
    }

    if (rc != TS_OK) {
        return rc;
    }

    if (s->nlists == first) {
        s->done = m != NULL && m->kind == TS_TERM_AND;
        return TS_OK;
    }

    t = &s->terms[s->nterms++];
    t->first = first;
    t->n = s->nlists - first;
    t->kind = m ? m->kind : TS_TERM_AND;

    return TS_OK;
}


static int
ts_select_values(void *data, const char *v, size_t len)
{
    int               rc;
    ts_match_t       *m;
    ts_values_ctx_t  *ctx;

    ctx = data;
    m = ctx->m;

    rc = ts_match_value(ctx->s->sel, m, v, len);

    if (rc >= 0 && m->kind == TS_TERM_SUB) {
        rc = !rc;
    }

    if (rc == 1) {
        rc = ts_select_list(ctx->s, m->name, m->nlen, v, len);
        ctx->matched++;
    }

    ctx->total++;

    if (rc < 0) {
        ctx->rc = rc;
        return 1;
    }

    return 0;
}


static int
ts_select_list(ts_select_t *s, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
    int         rc;
    void       *p;
    uint32_t    cap;
    ts_list_t  *l;

    if (s->nlists == s->lcap) {
        cap = s->lcap ? s->lcap * 2 : 8;

        p = realloc(s->lists, cap * sizeof(ts_list_t));
        if (p == NULL) {
            return TS_ERR_NOMEM;
        }

        s->lists = p;
        s->lcap = cap;
    }

    l = &s->lists[s->nlists];
    memset(l, 0, sizeof(ts_list_t));

    rc = s->src->postings(s->src->data, name, nlen, value, vlen, &l->it);
    if (rc != TS_OK) {
        return rc;
    }

    s->nlists++;

    return TS_OK;
}


static void
ts_select_drop(ts_select_t *s, uint32_t from)
{
    uint32_t  i;

    for (i = from; i < s->nlists; i++) {
        if (s->lists[i].it.ops->close != NULL) {
            s->lists[i].it.ops->close(&s->lists[i].it);
        }
    }

    s->nlists = from;
}


/* Reads the first ref of every list and heapifies each term. */

static int
ts_select_heaps(ts_select_t *s)
{
    int         rc;
    uint32_t    i, k, j;
    ts_term_t  *t;

    s->heaps = malloc((s->nlists ? s->nlists : 1) * sizeof(uint32_t));
    if (s->heaps == NULL) {
        return TS_ERR_NOMEM;
    }

    for (k = 0; k < s->nterms; k++) {
        t = &s->terms[k];
        t->heap = s->heaps + t->first;
        t->hn = 0;

        for (i = t->first; i < t->first + t->n; i++) {
            rc = s->lists[i].it.ops->next(&s->lists[i].it, &s->lists[i].cur);
            if (rc < 0) {
                return rc;
            }

            if (rc == 1) {
                t->heap[t->hn++] = i;
            }
        }

        for (j = t->hn / 2; j > 0; j--) {
            ts_heap_down(s->lists, t->heap, t->hn, j - 1);
        }
    }

    return TS_OK;
}


/* 1 at the first ref >= target, 0 at the end, or an error */

static int
ts_list_seek(ts_list_t *l, uint64_t target)
{
    int  rc;

    if (l->cur >= target) {
        return 1;
    }

    if (l->it.ops->seek != NULL) {
        return l->it.ops->seek(&l->it, target, &l->cur);
    }

    do {
        rc = l->it.ops->next(&l->it, &l->cur);
    } while (rc == 1 && l->cur < target);

    return rc;
}


static void
ts_heap_down(ts_list_t *l, uint32_t *h, uint32_t n, uint32_t i)
{
    uint32_t  c, x;

    for ( ;; ) {
        c = 2 * i + 1;

        if (c >= n) {
            return;
        }

        if (c + 1 < n && l[h[c + 1]].cur < l[h[c]].cur) {
            c++;
        }

        if (l[h[i]].cur <= l[h[c]].cur) {
            return;
        }

        x = h[i];
        h[i] = h[c];
        h[c] = x;
        i = c;
    }
}


/* the smallest ref >= target in the union of the term's lists */

static int
ts_term_seek(ts_select_t *s, ts_term_t *t, uint64_t target, uint64_t *out)
{
    int         rc;
    ts_list_t  *l;

    while (t->hn > 0) {
        l = &s->lists[t->heap[0]];

        if (l->cur >= target) {
            *out = l->cur;
            return 1;
        }

        rc = ts_list_seek(l, target);
        if (rc < 0) {
            return rc;
        }

        if (rc == 0) {
            t->heap[0] = t->heap[--t->hn];
        }

        ts_heap_down(s->lists, t->heap, t->hn, 0);
    }

    return 0;
}


/* leapfrog: the smallest ref >= s->next found in every intersect term */

static int
ts_select_candidate(ts_select_t *s, uint64_t *ref)
{
    int       rc;
    uint32_t  i, agreed;
    uint64_t  target, x;

    target = s->next;
    agreed = 0;
    i = 0;

    for ( ;; ) {
        rc = ts_term_seek(s, &s->terms[i], target, &x);
        if (rc <= 0) {
            return rc;
        }

        if (x == target) {
            agreed++;

        } else {
            target = x;
            agreed = 1;
        }

        if (agreed == s->nand) {
            *ref = target;
            return 1;
        }

        i = (i + 1) % s->nand;
    }
}


static int
ts_select_excluded(ts_select_t *s, uint64_t ref)
{
    int       rc;
    uint32_t  i;
    uint64_t  x;

    for (i = s->nand; i < s->nterms; i++) {
        rc = ts_term_seek(s, &s->terms[i], ref, &x);
        if (rc < 0) {
            return rc;
        }

        if (rc == 1 && x == ref) {
            return 1;
        }
    }

    return 0;
}


/* 1 if ref's labels satisfy the selector, 0 if not or gone, or error */

static int
ts_select_verify(ts_select_t *s, uint64_t ref)
{
    int       rc;
    uint32_t  n;

    rc = s->src->labels(s->src->data, ref, s->labels, TS_SELECT_MAX_LABELS,
                        &n);
    if (rc == TS_ERR_NOTFOUND) {
        return 0;
    }

    if (rc != TS_OK) {
        return rc;
    }

    return ts_selector_match(s->sel, s->labels, n);
}


void
ts_source_head_init(ts_source_head_t *hs, ts_head_t *h, const char *tenant,
    size_t len)
{
    memset(hs, 0, sizeof(ts_source_head_t));

    hs->head = h;
    hs->found = ts_head_tenant_find(h, tenant, len, &hs->tenant) == TS_OK;

    hs->src.data = hs;
    hs->src.postings = ts_source_head_postings;
    hs->src.label_values = ts_source_head_values;
    hs->src.labels = ts_source_head_labels;
    hs->src.chunks = ts_source_head_chunks;
}


static int
ts_source_head_postings(void *data, const char *name, size_t nlen,
    const char *value, size_t vlen, ts_pit_t *it)
{
    ts_postings_t      p;
    ts_source_head_t  *hs;

    _Static_assert(sizeof(ts_postings_t) <= sizeof(it->st),
                   "ts_postings_t must fit in ts_pit_t");

    hs = data;

    if (!hs->found) {
        it->ops = &ts_source_empty_ops;
        return TS_OK;
    }

    ts_head_postings(hs->head, hs->tenant, name, nlen, value, vlen, &p);

    it->ops = &ts_source_head_ops;
    memcpy(it->st, &p, sizeof(p));

    return TS_OK;
}


static int
ts_source_head_next(ts_pit_t *it, uint64_t *ref)
{
    int            rc;
    uint32_t       r;
    ts_postings_t  p;

    memcpy(&p, it->st, sizeof(p));
    rc = ts_postings_next(&p, &r);
    memcpy(it->st, &p, sizeof(p));

    if (rc == 1) {
        *ref = r;
    }

    return rc;
}


static int
ts_source_head_seek(ts_pit_t *it, uint64_t target, uint64_t *ref)
{
    int            rc;
    uint32_t       r;
    ts_postings_t  p;

    memcpy(&p, it->st, sizeof(p));

    if (target > UINT32_MAX) {
        /* head refs are 32-bit: nothing at or after target */
        p.block = 0;
        memcpy(it->st, &p, sizeof(p));
        return 0;
    }

    rc = ts_postings_seek(&p, (uint32_t) target, &r);
    memcpy(it->st, &p, sizeof(p));

    if (rc == 1) {
        *ref = r;
    }

    return rc;
}


static int
ts_source_empty_next(ts_pit_t *it, uint64_t *ref)
{
    (void) it;
    (void) ref;

    return 0;
}


static int
ts_source_head_values(void *data, const char *name, size_t nlen,
    ts_source_str_pt cb, void *cbdata)
{
    ts_source_head_t  *hs;

    hs = data;

    if (!hs->found) {
        return TS_OK;
    }

    return ts_head_label_values(hs->head, hs->tenant, name, nlen, cb,
                                cbdata);
}


static int
ts_source_head_labels(void *data, uint64_t ref, ts_label_t *out,
    uint32_t max, uint32_t *n)
{
    uint32_t           tenant;
    ts_source_head_t  *hs;

    hs = data;

    if (!hs->found || ref == 0 || ref > UINT32_MAX
        || ts_head_series_tenant(hs->head, (uint32_t) ref, &tenant) != TS_OK
        || tenant != hs->tenant)
    {
        return TS_ERR_NOTFOUND;
    }

    return ts_head_labels(hs->head, (uint32_t) ref, out, max, n);
}


typedef struct {
    ts_source_chunk_pt      cb;
    void                   *data;
} ts_source_head_ctx_t;


static int
ts_source_head_chunks(void *data, uint64_t ref, int64_t mint, int64_t maxt,
    ts_source_chunk_pt cb, void *cbdata)
{
    uint32_t               tenant;
    ts_source_head_t      *hs;
    ts_source_head_ctx_t   ctx;

    hs = data;

    if (!hs->found || ref == 0 || ref > UINT32_MAX
        || ts_head_series_tenant(hs->head, (uint32_t) ref, &tenant) != TS_OK
        || tenant != hs->tenant)
    {
        return TS_ERR_NOTFOUND;
    }

    ctx.cb = cb;
    ctx.data = cbdata;

    return ts_head_read(hs->head, (uint32_t) ref, mint, maxt,
                        ts_source_head_chunk, &ctx);
}


static int
ts_source_head_chunk(void *data, const ts_head_chunk_t *c)
{
    ts_source_chunk_t      sc;
    ts_source_head_ctx_t  *ctx;

    ctx = data;

    if (c->samples == 0) {
        return 0;
    }

    sc.mint = c->mint;
    sc.maxt = c->maxt;
    sc.samples = c->samples;
    sc.encoding = c->encoding;
    sc.data = c->data;
    sc.len = c->len;

    return ctx->cb(ctx->data, &sc);
}
