/*
 * Copyright (C) ngx_tsdb authors
 *
 * Internals of the PromQL evaluator shared by ts_pqeval*.c.
 *
 * Every node evaluates, as in Prometheus's engine, to a matrix over the
 * evaluator's steps: a series per label set with a point at each step
 * where it has a value (a scalar is one series without labels and a
 * point at every step).  Functions, aggregations and binary operators
 * are step functions from vectors to a vector, run by ts_pq_steps().
 *
 * Errors unwind with longjmp to the entry point: every allocation is
 * tracked by the evaluator (ts_pq_alloc()), so nothing leaks and no
 * caller checks a return code.
 */

#ifndef TS_PQEVAL_INT_H
#define TS_PQEVAL_INT_H


#include <pthread.h>
#include <setjmp.h>

#include "ts_pqeval.h"
#include "ts_sset.h"


#define TS_PQ_STALE_BITS  0x7ff0000000000002ull

/*
 * A point holding a native histogram: v is a signalling NaN whose low
 * bits index ev->hist (arithmetic on it gives a quiet NaN, never
 * another histogram's bits).
 */
#define TS_PQ_HIST_TAG    0x7ff4000000000000ull
#define TS_PQ_HIST_MASK   0xfffc000000000000ull
#define TS_PQ_HIST_IDX    0x0003ffffffffffffull


typedef ts_pqeval_hist_t  ts_pq_hist_t;


typedef struct ts_pq_ls_s  ts_pq_ls_t;

/* a label set, interned per evaluation; immutable */
struct ts_pq_ls_s {
    ts_label_t             *l;
    uint32_t                n;
    uint64_t                hash;
    ts_pq_ls_t             *noname;     /* without __name__, cached */
    uint32_t                gen;        /* the aggregation gidx is of */
    uint32_t                gidx;       /* its group there, cached */
};


typedef struct {
    const ts_pq_ls_t       *ls;
    int64_t                 t;
    double                  v;
} ts_pq_sample_t;


typedef struct {
    ts_pq_sample_t         *s;
    uint32_t                n;
    uint32_t                cap;
} ts_pq_vec_t;


typedef ts_pqeval_point_t  ts_pq_point_t;


typedef struct {
    const ts_pq_ls_t       *ls;
    ts_pq_point_t          *p;
    uint32_t                n;
    uint32_t                cap;
    uint32_t                cur;        /* cursor of the step loop, or
                                           a window's first point */
    uint32_t                hi;         /* past a window's last point */
} ts_pq_series_t;


typedef struct {
    ts_pq_series_t         *s;
    uint32_t                n;
    uint32_t                cap;
} ts_pq_mat_t;


typedef struct {
    ts_promql_type_t        type;
    ts_pq_mat_t             m;          /* scalar, vector, matrix */
    ts_promql_str_t         str;
} ts_pq_val_t;


/* a series per label set while steps append to it */
typedef struct {
    ts_pq_mat_t            *m;
    uint32_t               *slot;       /* series index + 1, 0: free */
    uint32_t                mask;
} ts_pq_map_t;


typedef struct ts_pq_mem_s  ts_pq_mem_t;

struct ts_pq_mem_s {
    ts_pq_mem_t            *prev;
    ts_pq_mem_t            *next;
    size_t                  size;       /* asked for */
    uint32_t                cls;        /* size class, TS_PQ_CLASSES:
                                           none (malloc'd to size) */
};


/* 4 size classes per power of two, 64 bytes to 32 MiB */
#define TS_PQ_CLASSES  (4 * 19 + 1)

/* the blocks kept between queries */
typedef struct {
    pthread_mutex_t         mutex;
    ts_pq_mem_t            *free[TS_PQ_CLASSES];
    size_t                  bytes;
} ts_pq_cache_t;


typedef struct {
    ts_pqeval_conf_t        conf;
    ts_source_t           **src;
    uint32_t                nsrc;

    int64_t                 start;      /* of the current evaluation */
    int64_t                 end;
    int64_t                 interval;
    int64_t                 qstart;     /* the query's, for @ start() */
    int64_t                 qend;

    uint64_t                samples;
    size_t                  mem;
    ts_pq_mem_t             head;       /* every allocation */
    ts_pq_cache_t          *cache;      /* the process's, or NULL */
    uint8_t                *arena;
    size_t                  arena_left;
    int64_t                 deadline;   /* CLOCK_MONOTONIC ms, 0: none */
    uint32_t                ticks;
    uint32_t                agg_gen;    /* aggregations run, numbers
                                           ts_pq_ls_t.gen */

    ts_pq_hist_t          **hist;       /* of histogram points */
    uint32_t                nhist;
    uint32_t                hcap;

    ts_pqeval_error_t      *err;
    jmp_buf                 jb;
} ts_pq_ev_t;


/* the arguments of a step function at one step */
typedef struct {
    const ts_promql_expr_t *e;          /* the call, aggregate, binary */
    int64_t                 ts;
    ts_pq_vec_t            *vec;        /* per argument */
    double                 *scalar;     /* per argument */
    ts_pq_val_t            *val;        /* per argument, whole */
    ts_pq_vec_t            *out;
    void                   *data;
} ts_pq_step_t;

typedef void (*ts_pq_step_pt)(ts_pq_ev_t *ev, ts_pq_step_t *st);


/* the window of a range argument: raw points or a subquery's */
typedef struct {
    ts_pq_mat_t             m;
    int64_t                 range;
    double                  range_s;    /* (double) range / 1000 */
    int64_t                 offset;
    int                     has_at;
    int64_t                 at;
    const ts_pq_point_t    *base;       /* the series' points, and */
    const uint32_t         *reset;      /* the next counter reset at or
                                           after each (NULL: none known) */
    int                     has_hist;   /* the series has histograms */

    /*
     * rate()'s last window's times: the next window mostly has the same
     * distances to its ends and points, so the same quotients
     */
    int64_t                 memo_d0;    /* first point - window start */
    int64_t                 memo_d1;    /* window end - last point */
    int64_t                 memo_ds;    /* last point - first point */
    uint32_t                memo_n;     /* points, 0: none yet */
    double                  memo_to_start;
    double                  memo_to_end;
    double                  memo_sampled;
    double                  memo_avg;
} ts_pq_range_t;


/* a selector's series one at a time (ts_pq_load_each()) */
typedef struct {
    void                  (*fn)(ts_pq_ev_t *ev, ts_pq_series_t *s,
                                void *data);
    void                   *data;
    uint64_t                held;       /* samples read and counted */
} ts_pq_each_t;


/*
 * A range function's output per series handed to an aggregation above it
 * (ts_pq_call_fused()) instead of becoming a series of its own: the
 * steps with a value and the values, in step order, and the output
 * label set.  The points stay counted against max_samples (held of
 * them) as if they had been kept, until the aggregation is done.
 */
typedef struct {
    void                  (*fn)(ts_pq_ev_t *ev, const ts_pq_ls_t *ls,
                                const uint32_t *step, const double *v,
                                uint32_t n, void *data);
    void                   *data;
    uint32_t               *step;       /* room for every step */
    double                 *v;
    const ts_pq_ls_t      **ls;         /* of each series given to fn */
    uint32_t                nls;
    uint32_t                lscap;
    uint64_t                held;
    int                     stop;       /* fn wants no more series */
} ts_pq_fuse_t;


/* ts_pqeval.c */
void ts_pq_fail(ts_pq_ev_t *ev, int rc, ts_pqeval_errtype_t type,
    const char *fmt, ...) __attribute__((noreturn, format(printf, 4, 5)));
void *ts_pq_alloc(ts_pq_ev_t *ev, size_t size);
void *ts_pq_realloc(ts_pq_ev_t *ev, void *p, size_t size);
void ts_pq_free(ts_pq_ev_t *ev, void *p);
void *ts_pq_palloc(ts_pq_ev_t *ev, size_t size);
void ts_pq_tick_check(ts_pq_ev_t *ev);
void ts_pq_samples(ts_pq_ev_t *ev, int64_t n);

/* the timeout, checked every 256 calls: the hot loops call it inline */
static inline void
ts_pq_tick(ts_pq_ev_t *ev)
{
    if (ev->deadline != 0 && (++ev->ticks & 255) == 0) {
        ts_pq_tick_check(ev);
    }
}

const ts_pq_ls_t *ts_pq_ls(ts_pq_ev_t *ev, const ts_label_t *l, uint32_t n);
const ts_pq_ls_t *ts_pq_ls_noname(ts_pq_ev_t *ev, const ts_pq_ls_t *ls);
const ts_label_t *ts_pq_ls_get(const ts_pq_ls_t *ls, const char *name,
    size_t len);
/* ls with name set to value ("" removes it) */
const ts_pq_ls_t *ts_pq_ls_set(ts_pq_ev_t *ev, const ts_pq_ls_t *ls,
    const char *name, size_t nlen, const char *value, size_t vlen);
int ts_pq_ls_equal(const ts_pq_ls_t *a, const ts_pq_ls_t *b);
int ts_pq_ls_in(const ts_promql_labels_t *names, const char *name,
    size_t len);
/* the labels kept (keep 1: those named; 0: all but those and __name__) */
const ts_pq_ls_t *ts_pq_ls_filter(ts_pq_ev_t *ev, const ts_pq_ls_t *ls,
    const ts_promql_labels_t *names, int keep, int drop_name);
/* a signature of ls for matching (on/ignoring) or grouping */
uint64_t ts_pq_ls_sig(const ts_pq_ls_t *ls, const ts_promql_labels_t *names,
    int on);
int ts_pq_ls_sig_equal(const ts_pq_ls_t *a, const ts_pq_ls_t *b,
    const ts_promql_labels_t *names, int on);
size_t ts_pq_ls_format(const ts_pq_ls_t *ls, char *buf, size_t size);

void ts_pq_vec_push(ts_pq_ev_t *ev, ts_pq_vec_t *v, const ts_pq_ls_t *ls,
    int64_t t, double val);
void ts_pq_series_push(ts_pq_ev_t *ev, ts_pq_series_t *s, int64_t t,
    double v);
/* room for n points in all */
void ts_pq_series_reserve(ts_pq_ev_t *ev, ts_pq_series_t *s, uint32_t n);
uint32_t ts_pq_steps_left(ts_pq_ev_t *ev, int64_t ts);
uint32_t ts_pq_steps_until(ts_pq_ev_t *ev, int64_t ts, int at, int64_t last);
ts_pq_series_t *ts_pq_mat_add(ts_pq_ev_t *ev, ts_pq_mat_t *m,
    const ts_pq_ls_t *ls);
void ts_pq_mat_free(ts_pq_ev_t *ev, ts_pq_mat_t *m);
/* fails unless every series has its own label set */
void ts_pq_mat_unique(ts_pq_ev_t *ev, ts_pq_mat_t *m);
/* the same for label sets (reorders ls) */
void ts_pq_ls_unique(ts_pq_ev_t *ev, const ts_pq_ls_t **ls, uint32_t n);

void ts_pq_eval(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_val_t *v);
void ts_pq_map_init(ts_pq_ev_t *ev, ts_pq_map_t *map, ts_pq_mat_t *m);
void ts_pq_map_put(ts_pq_ev_t *ev, ts_pq_map_t *map, const ts_pq_ls_t *ls,
    int64_t ts, double v);
void ts_pq_steps(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    ts_pq_val_t *args, uint32_t nargs, ts_pq_step_pt fn, void *data,
    ts_pq_val_t *out);
void ts_pq_select(ts_pq_ev_t *ev, const ts_promql_vector_t *vs, int times,
    ts_pq_val_t *v);
void ts_pq_select_fused(ts_pq_ev_t *ev, const ts_promql_vector_t *vs,
    ts_pq_fuse_t *fu);
void ts_pq_range_arg(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    ts_pq_range_t *r);
void ts_pq_range_sel(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    ts_pq_range_t *r, const ts_promql_vector_t **vs, int64_t *mint,
    int64_t *maxt);
void ts_pq_load_each(ts_pq_ev_t *ev, const ts_promql_vector_t *vs,
    int64_t mint, int64_t maxt, int keep_stale, ts_pq_each_t *each);

/*
 * The points of s in the window of step ts: their count, and the first
 * one's index in *lo.  s->cur and s->hi remember where the last window
 * started and ended: steps come in increasing order (both are reset to 0
 * together).
 */

static inline uint32_t
ts_pq_window(const ts_pq_range_t *r, const ts_pq_series_t *s, int64_t ts,
    uint32_t *lo)
{
    int64_t   ref;
    uint32_t  i, k;

    ref = (r->has_at ? r->at : ts) - r->offset;
    i = s->cur;

    while (i < s->n && s->p[i].t < ref - r->range) {
        i++;
    }

    /* the last window ended at or before this one's end */

    for (k = s->hi > i ? s->hi : i; k < s->n && s->p[k].t <= ref; k++) {
        /* void */
    }

    ((ts_pq_series_t *) s)->cur = i;
    ((ts_pq_series_t *) s)->hi = k;
    *lo = i;

    return k - i;
}


const ts_promql_expr_t *ts_pq_unparen(const ts_promql_expr_t *e);
int ts_pq_is_stale(double v);

/* Go's float semantics */
double ts_pq_go_min(double a, double b);
double ts_pq_go_max(double a, double b);
void ts_pq_go_format(double v, char *buf, size_t size);

/* ts_pqeval_fn.c */
void ts_pq_call(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_val_t *v);
/* e, a range function over a range selector or an instant selector,
   into fu; 0: e is neither */
int ts_pq_call_fused(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    ts_pq_fuse_t *fu);
double ts_pq_quantile(double q, double *v, uint32_t n);

/* ts_pqeval_agg.c */
void ts_pq_aggregate(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    ts_pq_val_t *v);
/* Prometheus's sort order: sort.Sort(sort.Reverse(value heap)) */
void ts_pq_go_sort(ts_pq_ev_t *ev, ts_pq_sample_t *s, uint32_t n,
    int desc);

/* ts_pqeval_bin.c */
void ts_pq_binary(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    ts_pq_val_t *v);
double ts_pq_binop(ts_promql_op_t op, double l, double r, int *keep);


/* ts_pqeval_hist.c: native histograms as Prometheus 2.42's FloatHistogram */
ts_pq_hist_t *ts_pq_hist_new(ts_pq_ev_t *ev, uint32_t n_pos, uint32_t n_neg);
ts_pq_hist_t *ts_pq_hist_from(ts_pq_ev_t *ev, const ts_hist_t *src);
ts_pq_hist_t *ts_pq_hist_copy(ts_pq_ev_t *ev, const ts_pq_hist_t *h);
/* a copy at a schema no higher than h's */
ts_pq_hist_t *ts_pq_hist_to_schema(ts_pq_ev_t *ev, const ts_pq_hist_t *h,
    int32_t schema);
/* the point value that stands for h */
double ts_pq_hist_ref(ts_pq_ev_t *ev, ts_pq_hist_t *h);
/* the histogram of a point value, NULL for a float */
ts_pq_hist_t *ts_pq_hist_get(ts_pq_ev_t *ev, double v);
int ts_pq_is_hist(double v);
/* a + b (sign 1) or a - b (sign -1), at the lower schema of the two */
ts_pq_hist_t *ts_pq_hist_add(ts_pq_ev_t *ev, const ts_pq_hist_t *a,
    const ts_pq_hist_t *b, int sign);
void ts_pq_hist_mul(ts_pq_hist_t *h, double f);
void ts_pq_hist_div(ts_pq_hist_t *h, double d);
/* drops buckets of count 0 (Compact(0)) */
void ts_pq_hist_compact(ts_pq_hist_t *h);
int ts_pq_hist_reset(const ts_pq_hist_t *curr, const ts_pq_hist_t *prev);
double ts_pq_hist_quantile(double q, const ts_pq_hist_t *h);
double ts_pq_hist_fraction(double lower, double upper, const ts_pq_hist_t *h);


#endif /* TS_PQEVAL_INT_H */
