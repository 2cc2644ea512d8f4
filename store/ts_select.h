/*
 * Copyright (C) ngx_tsdb authors
 *
 * Series selection by Prometheus label matchers over abstract "sources"
 * of series (the head now, LMDB later).
 *
 * A selector (compiled matchers) selects exactly the series of which
 * every matcher accepts the label's value, "" standing for a missing
 * label: {foo=""} and {foo!="bar"} also select series without foo, as in
 * Prometheus (tsdb/querier.go PostingsForMatchers).  Regexes are fully
 * anchored and use RE2 syntax: patterns RE2 rejects (lookaround,
 * backreferences, possessive or atomic groups, ...) are rejected here
 * too; see ts_select.c for the PCRE2 options and what still differs.
 *
 * A source is bound to one tenant: its postings, label values, labels
 * and chunks never show another tenant's series.  Refs are the source's
 * own ids; the same series (same labels) in two sources has unrelated
 * refs, so callers merge sources by labels, never by ref.
 */

#ifndef TS_SELECT_H
#define TS_SELECT_H


#include <stddef.h>
#include <stdint.h>

#include "ts_head.h"
#include "ts_labels.h"


/* the most labels a source gives for one series */
#define TS_SELECT_MAX_LABELS    TS_HEAD_MAX_LABELS

#define TS_SELECT_MSG_SIZE      256


/* same numbers as prometheus.LabelMatcher.Type */
typedef enum {
    TS_MATCH_EQ = 0,
    TS_MATCH_NEQ = 1,
    TS_MATCH_RE = 2,
    TS_MATCH_NRE = 3
} ts_match_type_t;


typedef struct {
    ts_match_type_t         type;
    const char             *name;
    size_t                  name_len;
    const char             *value;      /* the regex for RE and NRE */
    size_t                  value_len;
} ts_matcher_t;


typedef struct {
    uint32_t                max_matchers;   /* per selector, 64 */
    uint32_t                max_regex_len;  /* bytes of a regex that is
                                               not a plain literal
                                               alternation, 16 KiB */
    uint32_t                match_limit;    /* pcre2_set_match_limit()
                                               per value, 100000 */
    uint32_t                depth_limit;    /* pcre2_set_depth_limit(),
                                               10000 */
    uint32_t                heap_limit;     /* KiB, pcre2_set_heap_limit(),
                                               8192 */
} ts_select_limits_t;


/*
 * A postings iterator of a source: ascending refs.  next gives 1 and the
 * next ref, 0 at the end, or a negative ts_err_t; seek moves to the
 * first ref >= target (never backwards; it may stay put) with the same
 * results, and may be NULL (then next is called until it gets there).
 * close may be NULL.  The state lives inside the struct and contains no
 * pointer to itself: an open iterator may be moved with memcpy.
 */
typedef struct ts_pit_s  ts_pit_t;

typedef struct {
    int                   (*next)(ts_pit_t *it, uint64_t *ref);
    int                   (*seek)(ts_pit_t *it, uint64_t target,
                                  uint64_t *ref);
    void                  (*close)(ts_pit_t *it);
} ts_pit_ops_t;

struct ts_pit_s {
    const ts_pit_ops_t     *ops;
    union {
        void               *p;
        uint64_t            u;
    }                       st[8];
};


/* A chunk handed out by a source; data is valid during the callback. */
typedef struct {
    int64_t                 mint;       /* first sample's timestamp */
    int64_t                 maxt;       /* last sample's timestamp */
    uint32_t                samples;    /* 0: unknown */
    uint32_t                encoding;   /* TS_XOR_, TS_[F]HIST_ENCODING */
    const uint8_t          *data;       /* header included */
    size_t                  len;
} ts_source_chunk_t;

/* Callbacks: 0 goes on, anything else stops the walk (not an error). */
typedef int (*ts_source_str_pt)(void *data, const char *s, size_t len);
typedef int (*ts_source_chunk_pt)(void *data, const ts_source_chunk_t *c);


/*
 * A source of series, bound to one tenant.  Every call returns TS_OK or
 * a negative ts_err_t; a callback that stops a walk gives TS_OK.
 *
 *   begin, end   bracket each synchronous step of a reader (an LMDB
 *                source opens and resets its read transaction there);
 *                either may be NULL.  Iterators and strings handed out
 *                are valid only until end.
 *   postings     name NULL: every series of the tenant; value NULL:
 *                every series having label name; else name="value".
 *                An unknown key gives an empty iterator.
 *   label_values the values of label name, in any order, each once.
 *   labels       the sorted labels of ref; TS_ERR_NOTFOUND if the
 *                series is gone or belongs to another tenant;
 *                TS_ERR_LIMIT if more than max.
 *   chunks       the chunks of ref overlapping [mint, maxt], oldest
 *                first; chunks of one source do not overlap in time,
 *                except that a chunk still being appended to may show
 *                up again, grown, in a later call.
 */
typedef struct {
    void                   *data;
    int                   (*begin)(void *data);
    void                  (*end)(void *data);
    int                   (*postings)(void *data, const char *name,
                                      size_t nlen, const char *value,
                                      size_t vlen, ts_pit_t *it);
    int                   (*label_values)(void *data, const char *name,
                                          size_t nlen, ts_source_str_pt cb,
                                          void *cbdata);
    int                   (*labels)(void *data, uint64_t ref,
                                    ts_label_t *out, uint32_t max,
                                    uint32_t *n);
    int                   (*chunks)(void *data, uint64_t ref, int64_t mint,
                                    int64_t maxt, ts_source_chunk_pt cb,
                                    void *cbdata);
} ts_source_t;


/*
 * The head as a source for the tenant named; a tenant that never wrote
 * simply has no series.  No begin/end: head reads need no transaction.
 */
typedef struct {
    ts_source_t             src;
    ts_head_t              *head;
    uint32_t                tenant;
    int                     found;
} ts_source_head_t;


typedef struct ts_selector_s  ts_selector_t;
typedef struct ts_select_s    ts_select_t;


void ts_select_limits_default(ts_select_limits_t *lim);

/*
 * Compiles n matchers (strings are copied).  TS_ERR_INVALID for an
 * unknown type, a regex that does not compile or is not RE2 syntax, or
 * a regex that is not valid UTF-8; TS_ERR_LIMIT past lim (NULL:
 * defaults); TS_ERR_NOMEM.  msg (may be NULL) gets one line naming the
 * matcher.  No matchers select nothing (as in Prometheus).
 */
int ts_selector_compile(ts_selector_t **sel, const ts_matcher_t *m,
    uint32_t n, const ts_select_limits_t *lim, char *msg, size_t msglen);
void ts_selector_free(ts_selector_t *sel);

/*
 * Whether a sorted label set satisfies every matcher: 1 or 0, or
 * TS_ERR_LIMIT when a regex hit its match limits.  A selector is used
 * by one thread at a time (it holds PCRE2 match data).
 */
int ts_selector_match(ts_selector_t *sel, const ts_label_t *l, uint32_t n);

/*
 * Evaluates the selector against a source's postings: open plans and
 * opens one postings iterator per postings list involved (memory is
 * proportional to the number of lists, not of series), next streams the
 * refs in ascending order (1, 0 at the end, or a negative ts_err_t).
 * When the plan subtracts lists, each ref is checked against its labels
 * before it is returned, so series created while the lists were read
 * cannot slip through.  Call between the source's begin and end.
 */
int ts_select_open(ts_select_t **it, ts_selector_t *sel,
    const ts_source_t *src);
int ts_select_next(ts_select_t *it, uint64_t *ref);
void ts_select_close(ts_select_t *it);

void ts_source_head_init(ts_source_head_t *hs, ts_head_t *h,
    const char *tenant, size_t len);


#endif /* TS_SELECT_H */
