/*
 * Copyright (C) ngx_tsdb authors
 *
 * PromQL evaluator: entry points, memory, label sets, selectors,
 * subqueries and the step loop.  Semantics of Prometheus 2.42's
 * engine.go:
 *
 *   - an instant vector selector takes, per step, the newest sample in
 *     [t - offset - lookback, t - offset] (both ends included, as 2.42's
 *     vectorSelectorSingle), none when that sample is a staleness marker;
 *     @ fixes t, @ start() and @ end() to the query's start and end;
 *   - a range selector takes the samples in [t - offset - range,
 *     t - offset] (2.42's matrixIterSlice keeps both ends; later versions
 *     drop the left one), staleness markers left out;
 *   - a subquery evaluates its expression from the first multiple of its
 *     step at or after start - offset - range to end - offset, and is
 *     read like a range selector over those points;
 *   - an instant query's vector keeps the order the expression produced;
 *     a matrix (range query, or a range selector or subquery at the top)
 *     is sorted by labels.
 *
 * Memory: every block is on the evaluator's list (ts_pq_alloc()) and
 * counted against max_memory; an error unwinds with longjmp to the
 * entry point, which frees the list.  Samples held (loaded points and
 * points of live intermediate matrices) count against max_samples.
 */

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ts_chunk.h"
#include "ts_pqeval_int.h"
#include "ts_pqjson.h"


#define TS_PQ_ARENA_BLOCK  (64 * 1024)
#define TS_PQ_CACHE_MAX    ((size_t) 128 * 1024 * 1024)

#if defined(__SANITIZE_ADDRESS__)
#define TS_PQ_NO_CACHE  1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TS_PQ_NO_CACHE  1
#endif
#endif

#ifndef TS_PQ_NO_CACHE
#define TS_PQ_NO_CACHE  0
#endif


struct ts_pqeval_result_s {
    ts_promql_type_t        type;
    int64_t                 t;
    double                  v;
    char                   *str;
    size_t                  len;
    ts_pqeval_series_t     *s;
    uint32_t                n;
    ts_pqeval_hist_t      **hist;       /* of histogram points */
    uint32_t                nhist;
};


#if !(TS_PQ_NO_CACHE)
static ts_pq_cache_t  ts_pq_cache = { PTHREAD_MUTEX_INITIALIZER, { NULL }, 0 };
#endif


static ts_pq_cache_t *ts_pq_cache_get(void);
static int ts_pq_run(const ts_promql_expr_t *e, ts_source_t *const *src,
    uint32_t nsrc, int64_t start, int64_t end, int64_t step, int range,
    const ts_pqeval_conf_t *conf, ts_pqeval_result_t **res,
    ts_pqeval_error_t *err);
static int ts_pq_guard(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    int range, ts_pqeval_result_t **res);
static void ts_pq_top(ts_pq_ev_t *ev, const ts_promql_expr_t *e, int range,
    ts_pqeval_result_t **res);
static void ts_pq_result(ts_pq_ev_t *ev, ts_pq_val_t *v, int range,
    ts_pqeval_result_t **res);
static int ts_pq_series_cmp(const void *a, const void *b);
static void ts_pq_free_all(ts_pq_ev_t *ev);
static int64_t ts_pq_now(void);

static void ts_pq_number(ts_pq_ev_t *ev, double d, ts_pq_val_t *v);
static void ts_pq_unary(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    ts_pq_val_t *v);
static void ts_pq_matrix_top(ts_pq_ev_t *ev, const ts_promql_expr_t *e,
    ts_pq_val_t *v);
static void ts_pq_subquery(ts_pq_ev_t *ev, const ts_promql_subquery_t *sq,
    ts_pq_mat_t *m);
static void ts_pq_load(ts_pq_ev_t *ev, const ts_promql_vector_t *vs,
    int64_t mint, int64_t maxt, int keep_stale, ts_pq_mat_t *m,
    ts_pq_each_t *each);
static int ts_pq_load_series(ts_pq_ev_t *ev, ts_sset_t *ss, int keep_stale,
    ts_pq_mat_t *m, ts_pq_each_t *each);
static void ts_pq_select_to(ts_pq_ev_t *ev, const ts_promql_vector_t *vs,
    int times, ts_pq_val_t *v, ts_pq_fuse_t *fu);
static void ts_pq_select_one(ts_pq_ev_t *ev, ts_pq_series_t *s,
    void *data);
static int64_t ts_pq_at(ts_pq_ev_t *ev, ts_promql_at_t kind, int64_t at,
    int64_t ts);
static ts_pq_series_t *ts_pq_map_get(ts_pq_ev_t *ev, ts_pq_map_t *map,
    const ts_pq_ls_t *ls);
static void ts_pq_args_at(ts_pq_ev_t *ev, ts_pq_val_t *args, uint32_t nargs,
    ts_pq_step_t *st);


void
ts_pqeval_conf_default(ts_pqeval_conf_t *conf)
{
    conf->lookback = 300000;
    conf->default_step = 60000;
    conf->max_samples = 50000000;
    conf->max_series = 0;
    conf->max_memory = (size_t) 1024 * 1024 * 1024;
    conf->timeout = 120000;
    conf->max_points = 11000;
    ts_select_limits_default(&conf->select);
    conf->no_fuse = 0;
}


const char *
ts_pqeval_errtype_name(ts_pqeval_errtype_t type)
{
    switch (type) {
    case TS_PQE_BAD_DATA:
        return "bad_data";
    case TS_PQE_EXECUTION:
        return "execution";
    case TS_PQE_TIMEOUT:
        return "timeout";
    case TS_PQE_INTERNAL:
        return "internal";
    default:
        return "none";
    }
}


int
ts_pqeval_instant(const ts_promql_expr_t *e, ts_source_t *const *src,
    uint32_t nsrc, int64_t t, const ts_pqeval_conf_t *conf,
    ts_pqeval_result_t **res, ts_pqeval_error_t *err)
{
    return ts_pq_run(e, src, nsrc, t, t, 1, 0, conf, res, err);
}


int
ts_pqeval_range(const ts_promql_expr_t *e, ts_source_t *const *src,
    uint32_t nsrc, int64_t start, int64_t end, int64_t step,
    const ts_pqeval_conf_t *conf, ts_pqeval_result_t **res,
    ts_pqeval_error_t *err)
{
    return ts_pq_run(e, src, nsrc, start, end, step, 1, conf, res, err);
}


ts_promql_type_t
ts_pqeval_result_type(const ts_pqeval_result_t *res)
{
    return res->type;
}


uint32_t
ts_pqeval_result_count(const ts_pqeval_result_t *res)
{
    return res->n;
}


const ts_pqeval_series_t *
ts_pqeval_result_series(const ts_pqeval_result_t *res, uint32_t i)
{
    return &res->s[i];
}


void
ts_pqeval_result_scalar(const ts_pqeval_result_t *res, int64_t *t,
    double *v, const char **str, size_t *len)
{
    *t = res->t;
    *v = res->v;

    if (str != NULL) {
        *str = res->str;
    }

    if (len != NULL) {
        *len = res->len;
    }
}


const ts_pqeval_hist_t *
ts_pqeval_point_hist(const ts_pqeval_result_t *res,
    const ts_pqeval_point_t *p)
{
    uint64_t  bits;

    memcpy(&bits, &p->v, sizeof(bits));

    if ((bits & TS_PQ_HIST_MASK) != TS_PQ_HIST_TAG
        || (bits & TS_PQ_HIST_IDX) >= res->nhist)
    {
        return NULL;
    }

    return res->hist[bits & TS_PQ_HIST_IDX];
}


void
ts_pqeval_result_free(ts_pqeval_result_t *res)
{
    free(res);
}


static int
ts_pq_run(const ts_promql_expr_t *e, ts_source_t *const *src, uint32_t nsrc,
    int64_t start, int64_t end, int64_t step, int range,
    const ts_pqeval_conf_t *conf, ts_pqeval_result_t **res,
    ts_pqeval_error_t *err)
{
    int                 rc;
    ts_pq_ev_t         *ev;
    ts_pqeval_error_t   dummy;

    if (err == NULL) {
        err = &dummy;
    }

    memset(err, 0, sizeof(ts_pqeval_error_t));
    *res = NULL;

    ev = calloc(1, sizeof(ts_pq_ev_t));
    if (ev == NULL) {
        err->rc = TS_ERR_NOMEM;
        err->type = TS_PQE_INTERNAL;
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return TS_ERR_NOMEM;
    }

    if (conf != NULL) {
        ev->conf = *conf;
    } else {
        ts_pqeval_conf_default(&ev->conf);
    }

    ev->src = (ts_source_t **) src;
    ev->nsrc = nsrc;
    ev->start = start;
    ev->end = end;
    ev->interval = step;
    ev->qstart = start;
    ev->qend = end;
    ev->err = err;
    ev->head.next = &ev->head;
    ev->head.prev = &ev->head;
    ev->cache = ts_pq_cache_get();

    if (ev->conf.timeout > 0) {
        ev->deadline = ts_pq_now() + ev->conf.timeout;
    }

    rc = ts_pq_guard(ev, e, range, res);

    ts_pq_free_all(ev);
    free(ev);

    return rc;
}


/* where errors unwind to; a function of its own for setjmp's sake */

static int
ts_pq_guard(ts_pq_ev_t *ev, const ts_promql_expr_t *e, int range,
    ts_pqeval_result_t **res)
{
    if (setjmp(ev->jb) != 0) {
        return ev->err->rc;
    }

    ts_pq_top(ev, e, range, res);

    return TS_OK;
}


static void
ts_pq_top(ts_pq_ev_t *ev, const ts_promql_expr_t *e, int range,
    ts_pqeval_result_t **res)
{
    ts_pq_val_t  v;

    if (range) {
        if (e->type != TS_PQ_TYPE_SCALAR && e->type != TS_PQ_TYPE_VECTOR) {
            ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_BAD_DATA,
                       "invalid expression type \"%s\" for range query, "
                       "must be Scalar or instant Vector",
                       ts_promql_type_name(e->type));
        }

        if (ev->interval <= 0) {
            ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_BAD_DATA,
                       "zero or negative query resolution step widths are "
                       "not accepted. Try a positive integer");
        }

        if (ev->end < ev->start) {
            ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_BAD_DATA,
                       "end timestamp must not be before start time");
        }

        if ((ev->end - ev->start) / ev->interval >= ev->conf.max_points) {
            ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_BAD_DATA,
                       "exceeded maximum resolution of %u points per "
                       "timeseries. Try decreasing the query resolution "
                       "(?step=XX)", ev->conf.max_points);
        }
    }

    e = ts_pq_unparen(e);

    if (e->kind == TS_PQ_MATRIX || e->kind == TS_PQ_SUBQUERY) {
        ts_pq_matrix_top(ev, e, &v);

    } else {
        ts_pq_eval(ev, e, &v);
    }

    ts_pq_result(ev, &v, range, res);
}


/* copies the value out of the evaluator's memory into one block */

static void
ts_pq_result(ts_pq_ev_t *ev, ts_pq_val_t *v, int range,
    ts_pqeval_result_t **resp)
{
    int                  res_vector;
    char                *p;
    size_t               size;
    uint32_t             i, k, n, nh;
    uint64_t             bits;
    ts_pq_hist_t        *h;
    ts_pq_series_t      *s;
    ts_pqeval_hist_t    *oh;
    ts_pqeval_series_t  *o;
    ts_pqeval_result_t  *res;

    n = v->type == TS_PQ_TYPE_STRING ? 0 : v->m.n;

    if (v->type == TS_PQ_TYPE_SCALAR && !range) {
        n = 0;
    }

    if ((v->type == TS_PQ_TYPE_MATRIX || range) && v->m.n > 1) {
        qsort(v->m.s, v->m.n, sizeof(ts_pq_series_t), ts_pq_series_cmp);
    }

    size = sizeof(ts_pqeval_result_t) + n * sizeof(ts_pqeval_series_t)
           + v->str.len + 1 + 8;

    res_vector = !range && v->type == TS_PQ_TYPE_VECTOR;
    nh = 0;

    for (i = 0; i < n; i++) {
        s = &v->m.s[i];
        size += s->n * sizeof(ts_pq_point_t) + s->ls->n * sizeof(ts_label_t);

        for (k = 0; k < s->ls->n; k++) {
            size += s->ls->l[k].name_len + s->ls->l[k].value_len;
        }

        size += 16;

        for (k = 0; k < s->n; k++) {
            h = ts_pq_hist_get(ev, s->p[k].v);

            if (h != NULL) {
                nh++;
                size += sizeof(ts_pqeval_hist_t *) + sizeof(ts_pqeval_hist_t)
                        + (h->n_pos + h->n_neg) * sizeof(ts_pqeval_bucket_t);
            }

            if (res_vector) {
                break;
            }
        }
    }

    res = calloc(1, size);
    if (res == NULL) {
        ts_pq_fail(ev, TS_ERR_NOMEM, TS_PQE_INTERNAL, "out of memory");
    }

    res->type = range ? TS_PQ_TYPE_MATRIX : v->type;
    res->t = ev->qstart;
    res->s = (ts_pqeval_series_t *) (res + 1);
    res->n = n;
    p = (char *) (res->s + n);

    if (v->type == TS_PQ_TYPE_SCALAR && !range) {
        res->v = v->m.n && v->m.s[0].n ? v->m.s[0].p[0].v : NAN;
    }

    res->str = p;
    res->len = v->str.len;

    if (v->str.len) {
        memcpy(p, v->str.data, v->str.len);
    }

    p += v->str.len + 1;
    p = (char *) (((uintptr_t) p + 7) & ~(uintptr_t) 7);
    res->hist = (ts_pqeval_hist_t **) p;
    p += nh * sizeof(ts_pqeval_hist_t *);

    for (i = 0; i < n; i++) {
        s = &v->m.s[i];
        o = &res->s[i];
        p = (char *) (((uintptr_t) p + 7) & ~(uintptr_t) 7);

        o->points = (ts_pq_point_t *) p;
        o->npoints = s->n;
        memcpy(p, s->p, s->n * sizeof(ts_pq_point_t));
        p += s->n * sizeof(ts_pq_point_t);

        if (res->type == TS_PQ_TYPE_VECTOR && s->n) {
            ((ts_pq_point_t *) o->points)[0].t = ev->qstart;
            o->npoints = 1;
        }

        /* histograms into the block, the points tagged with their index */

        for (k = 0; k < o->npoints; k++) {
            h = ts_pq_hist_get(ev, o->points[k].v);

            if (h == NULL) {
                continue;
            }

            oh = (ts_pqeval_hist_t *) p;
            p += sizeof(ts_pqeval_hist_t);
            *oh = *h;
            oh->pos = (ts_pqeval_bucket_t *) p;
            memcpy(p, h->pos, h->n_pos * sizeof(ts_pqeval_bucket_t));
            p += h->n_pos * sizeof(ts_pqeval_bucket_t);
            oh->neg = (ts_pqeval_bucket_t *) p;
            memcpy(p, h->neg, h->n_neg * sizeof(ts_pqeval_bucket_t));
            p += h->n_neg * sizeof(ts_pqeval_bucket_t);

            bits = TS_PQ_HIST_TAG | res->nhist;
            memcpy((void *) &o->points[k].v, &bits, sizeof(double));
            res->hist[res->nhist++] = oh;
        }

        o->labels = (ts_label_t *) p;
        o->nlabels = s->ls->n;
        p += s->ls->n * sizeof(ts_label_t);

        for (k = 0; k < s->ls->n; k++) {
            ts_label_t  *l = (ts_label_t *) &o->labels[k];

            *l = s->ls->l[k];
            l->name = memcpy(p, s->ls->l[k].name, l->name_len);
            p += l->name_len;
            l->value = memcpy(p, s->ls->l[k].value, l->value_len);
            p += l->value_len;
        }
    }

    *resp = res;
}


static int
ts_pq_series_cmp(const void *a, const void *b)
{
    const ts_pq_series_t  *x, *y;

    x = a;
    y = b;

    return ts_labels_cmp(x->ls->l, x->ls->n, y->ls->l, y->ls->n);
}


void
ts_pq_fail(ts_pq_ev_t *ev, int rc, ts_pqeval_errtype_t type,
    const char *fmt, ...)
{
    va_list  args;

    ev->err->rc = rc;
    ev->err->type = type;

    va_start(args, fmt);
    vsnprintf(ev->err->msg, sizeof(ev->err->msg), fmt, args);
    va_end(args);

    longjmp(ev->jb, 1);
}


/*
 * Blocks come in size classes, four per power of two from 64 bytes to
 * 32 MiB (header included), and a freed block goes onto its class's
 * free list in the process's cache, up to TS_PQ_CACHE_MAX bytes in all,
 * which the next query takes again: its pages stay mapped, where malloc
 * would give a thread heap's top back to the kernel after each query
 * and fault it in again for the next.  The cache is one per process,
 * under a mutex, not one per thread: nginx's thread pool hands the next
 * task to whichever of its (32 by default) threads waits, so a thread's
 * own cache would mostly be cold.  Larger blocks, and every block under
 * AddressSanitizer (so that it still sees use after free), go to malloc
 * and free.  max_memory counts the bytes asked for, as before.
 */

static uint32_t
ts_pq_class(size_t size)
{
    uint32_t  k;

    if (size <= 64) {
        return 0;
    }

    k = 63 - (uint32_t) __builtin_clzll((unsigned long long) size - 1);

    return (k - 6) * 4 + (uint32_t) ((size - 1 - ((size_t) 1 << k))
                                     >> (k - 2)) + 1;
}


static size_t
ts_pq_class_size(uint32_t c)
{
    uint32_t  k;

    if (c == 0) {
        return 64;
    }

    k = (c - 1) / 4 + 6;

    return ((size_t) 1 << k) + ((c - 1) % 4 + 1) * ((size_t) 1 << (k - 2));
}


/* the process's cache, NULL if there is none to have */

static ts_pq_cache_t *
ts_pq_cache_get(void)
{
#if (TS_PQ_NO_CACHE)
    return NULL;
#else
    return &ts_pq_cache;
#endif
}


/* a block for size bytes after the header, from the cache or malloc */

static ts_pq_mem_t *
ts_pq_block(ts_pq_ev_t *ev, size_t size)
{
    size_t          total;
    uint32_t        c;
    ts_pq_mem_t    *m;

    total = sizeof(ts_pq_mem_t) + size;
    c = total <= ts_pq_class_size(TS_PQ_CLASSES - 1) ? ts_pq_class(total)
                                                     : TS_PQ_CLASSES;

    if (c < TS_PQ_CLASSES && ev->cache != NULL) {
        pthread_mutex_lock(&ev->cache->mutex);
        m = ev->cache->free[c];

        if (m != NULL) {
            ev->cache->free[c] = m->next;
            ev->cache->bytes -= ts_pq_class_size(c);
        }

        pthread_mutex_unlock(&ev->cache->mutex);

        if (m != NULL) {
            m->cls = c;
            return m;
        }
    }

    m = malloc(c < TS_PQ_CLASSES ? ts_pq_class_size(c) : total);
    if (m == NULL) {
        return NULL;
    }

    m->cls = c;

    return m;
}


/* a block off the evaluator's list back to the cache or to free() */

static void
ts_pq_unblock(ts_pq_ev_t *ev, ts_pq_mem_t *m)
{
    size_t  cs;

    if (m->cls < TS_PQ_CLASSES && ev->cache != NULL) {
        cs = ts_pq_class_size(m->cls);
        pthread_mutex_lock(&ev->cache->mutex);

        if (ev->cache->bytes + cs <= TS_PQ_CACHE_MAX) {
            m->next = ev->cache->free[m->cls];
            ev->cache->free[m->cls] = m;
            ev->cache->bytes += cs;
            m = NULL;
        }

        pthread_mutex_unlock(&ev->cache->mutex);
    }

    free(m);
}


/* the bytes a block can hold after its header */

static size_t
ts_pq_room(const ts_pq_mem_t *m)
{
    if (m->cls >= TS_PQ_CLASSES) {
        return m->size;
    }

    return ts_pq_class_size(m->cls) - sizeof(ts_pq_mem_t);
}


void *
ts_pq_alloc(ts_pq_ev_t *ev, size_t size)
{
    ts_pq_mem_t  *m;

    if (size > ev->conf.max_memory - ev->mem
        || ev->mem > ev->conf.max_memory)
    {
        ts_pq_fail(ev, TS_ERR_LIMIT, TS_PQE_EXECUTION,
                   "query processing would use more than %zu bytes of "
                   "memory", ev->conf.max_memory);
    }

    m = ts_pq_block(ev, size);
    if (m == NULL) {
        ts_pq_fail(ev, TS_ERR_NOMEM, TS_PQE_INTERNAL, "out of memory");
    }

    m->size = size;
    m->next = ev->head.next;
    m->prev = &ev->head;
    ev->head.next->prev = m;
    ev->head.next = m;
    ev->mem += size;

    return m + 1;
}


void *
ts_pq_realloc(ts_pq_ev_t *ev, void *p, size_t size)
{
    void         *np;
    ts_pq_mem_t  *m;

    if (p == NULL) {
        return ts_pq_alloc(ev, size);
    }

    m = (ts_pq_mem_t *) p - 1;

    if (m->size >= size) {
        return p;
    }

    if (ts_pq_room(m) >= size) {

        /* grows in its block, counted as if it were a new one */

        if (size - m->size > ev->conf.max_memory - ev->mem
            || ev->mem > ev->conf.max_memory)
        {
            ts_pq_fail(ev, TS_ERR_LIMIT, TS_PQE_EXECUTION,
                       "query processing would use more than %zu bytes of "
                       "memory", ev->conf.max_memory);
        }

        ev->mem += size - m->size;
        m->size = size;

        return p;
    }

    np = ts_pq_alloc(ev, size);
    memcpy(np, p, m->size);
    ts_pq_free(ev, p);

    return np;
}


void
ts_pq_free(ts_pq_ev_t *ev, void *p)
{
    ts_pq_mem_t  *m;

    if (p == NULL) {
        return;
    }

    m = (ts_pq_mem_t *) p - 1;
    m->prev->next = m->next;
    m->next->prev = m->prev;
    ev->mem -= m->size;
    ts_pq_unblock(ev, m);
}


/* small blocks that live as long as the evaluation */

void *
ts_pq_palloc(ts_pq_ev_t *ev, size_t size)
{
    void  *p;

    size = (size + 7) & ~(size_t) 7;

    if (size > ev->arena_left) {
        if (size > TS_PQ_ARENA_BLOCK / 4) {
            return ts_pq_alloc(ev, size);
        }

        ev->arena = ts_pq_alloc(ev, TS_PQ_ARENA_BLOCK);
        ev->arena_left = TS_PQ_ARENA_BLOCK;
    }

    p = ev->arena;
    ev->arena += size;
    ev->arena_left -= size;

    return p;
}


static void
ts_pq_free_all(ts_pq_ev_t *ev)
{
    ts_pq_mem_t  *m, *next;

    for (m = ev->head.next; m != &ev->head; m = next) {
        next = m->next;
        ts_pq_unblock(ev, m);
    }

    ev->head.next = &ev->head;
    ev->head.prev = &ev->head;
}


static int64_t
ts_pq_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* every 256th ts_pq_tick() with a deadline */

void
ts_pq_tick_check(ts_pq_ev_t *ev)
{
    if (ts_pq_now() > ev->deadline) {
        ts_pq_fail(ev, TS_ERR_LIMIT, TS_PQE_TIMEOUT,
                   "query timed out in expression evaluation");
    }
}


void
ts_pq_samples(ts_pq_ev_t *ev, int64_t n)
{
    if (n < 0) {
        ev->samples -= (uint64_t) -n < ev->samples ? (uint64_t) -n
                                                   : ev->samples;
        return;
    }

    ev->samples += (uint64_t) n;

    if (ev->conf.max_samples && ev->samples > ev->conf.max_samples) {
        ts_pq_fail(ev, TS_ERR_LIMIT, TS_PQE_EXECUTION,
                   "query processing would load too many samples into "
                   "memory in query execution");
    }
}


/* label sets */

const ts_pq_ls_t *
ts_pq_ls(ts_pq_ev_t *ev, const ts_label_t *l, uint32_t n)
{
    char        *p;
    size_t       size;
    uint32_t     i;
    ts_pq_ls_t  *ls;

    size = sizeof(ts_pq_ls_t) + n * sizeof(ts_label_t);

    for (i = 0; i < n; i++) {
        size += l[i].name_len + l[i].value_len;
    }

    ls = ts_pq_palloc(ev, size);
    ls->l = (ts_label_t *) (ls + 1);
    ls->n = n;
    ls->noname = NULL;
    ls->gen = 0;
    ls->gidx = 0;
    p = (char *) (ls->l + n);

    for (i = 0; i < n; i++) {
        ls->l[i] = l[i];
        ls->l[i].name = memcpy(p, l[i].name, l[i].name_len);
        p += l[i].name_len;
        ls->l[i].value = memcpy(p, l[i].value, l[i].value_len);
        p += l[i].value_len;
    }

    ls->hash = ts_labels_hash(ls->l, n);

    return ls;
}


const ts_pq_ls_t *
ts_pq_ls_noname(ts_pq_ev_t *ev, const ts_pq_ls_t *ls)
{
    ts_pq_ls_t  *m;

    if (ls->noname != NULL) {
        return ls->noname;
    }

    m = (ts_pq_ls_t *) ls;

    if (ts_pq_ls_get(ls, TS_METRIC_NAME_LABEL, TS_METRIC_NAME_LABEL_LEN)
        == NULL)
    {
        m->noname = m;

    } else {
        m->noname = (ts_pq_ls_t *) ts_pq_ls_set(ev, ls, TS_METRIC_NAME_LABEL,
                                                TS_METRIC_NAME_LABEL_LEN,
                                                "", 0);
        m->noname->noname = m->noname;
    }

    return m->noname;
}


const ts_label_t *
ts_pq_ls_get(const ts_pq_ls_t *ls, const char *name, size_t len)
{
    return ts_labels_find(ls->l, ls->n, name, len);
}


const ts_pq_ls_t *
ts_pq_ls_set(ts_pq_ev_t *ev, const ts_pq_ls_t *ls, const char *name,
    size_t nlen, const char *value, size_t vlen)
{
    int          c;
    uint32_t     i, n;
    ts_label_t  *l;

    l = ts_pq_alloc(ev, (ls->n + 1) * sizeof(ts_label_t));
    n = 0;

    for (i = 0; i < ls->n; i++) {
        if (ls->l[i].name_len == nlen
            && memcmp(ls->l[i].name, name, nlen) == 0)
        {
            continue;
        }

        l[n++] = ls->l[i];
    }

    if (vlen > 0) {
        l[n].name = name;
        l[n].name_len = (uint32_t) nlen;
        l[n].value = value;
        l[n].value_len = (uint32_t) vlen;
        n++;

        /* keep the order: move the new label to its place */

        for (i = n - 1; i > 0; i--) {
            c = ts_labels_cmp(&l[i - 1], 1, &l[i], 1);
            if (c < 0) {
                break;
            }

            ts_label_t  tmp = l[i];
            l[i] = l[i - 1];
            l[i - 1] = tmp;
        }
    }

    ls = ts_pq_ls(ev, l, n);
    ts_pq_free(ev, l);

    return ls;
}


int
ts_pq_ls_equal(const ts_pq_ls_t *a, const ts_pq_ls_t *b)
{
    if (a == b) {
        return 1;
    }

    return a->hash == b->hash && ts_labels_cmp(a->l, a->n, b->l, b->n) == 0;
}


int
ts_pq_ls_in(const ts_promql_labels_t *names, const char *name, size_t len)
{
    uint32_t  i;

    for (i = 0; i < names->n; i++) {
        if (names->v[i].len == len
            && memcmp(names->v[i].data, name, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static int
ts_pq_is_name(const ts_label_t *l)
{
    return l->name_len == TS_METRIC_NAME_LABEL_LEN
           && memcmp(l->name, TS_METRIC_NAME_LABEL,
                     TS_METRIC_NAME_LABEL_LEN) == 0;
}


/* whether label l takes part in a signature over names */

static int
ts_pq_sig_has(const ts_label_t *l, const ts_promql_labels_t *names, int on)
{
    if (on) {
        return ts_pq_ls_in(names, l->name, l->name_len);
    }

    return !ts_pq_is_name(l) && !ts_pq_ls_in(names, l->name, l->name_len);
}


const ts_pq_ls_t *
ts_pq_ls_filter(ts_pq_ev_t *ev, const ts_pq_ls_t *ls,
    const ts_promql_labels_t *names, int keep, int drop_name)
{
    uint32_t           i, n;
    ts_label_t        *l;
    const ts_pq_ls_t  *r;

    l = ts_pq_alloc(ev, (ls->n + 1) * sizeof(ts_label_t));
    n = 0;

    for (i = 0; i < ls->n; i++) {
        if (!ts_pq_sig_has(&ls->l[i], names, keep)) {
            continue;
        }

        if (drop_name && ts_pq_is_name(&ls->l[i])) {
            continue;
        }

        l[n++] = ls->l[i];
    }

    r = ts_pq_ls(ev, l, n);
    ts_pq_free(ev, l);

    return r;
}


uint64_t
ts_pq_ls_sig(const ts_pq_ls_t *ls, const ts_promql_labels_t *names, int on)
{
    uint32_t  i;
    uint64_t  h;

    h = 14695981039346656037ull;

    for (i = 0; i < ls->n; i++) {
        if (!ts_pq_sig_has(&ls->l[i], names, on)) {
            continue;
        }

        h = (h ^ ts_xxh64(ls->l[i].name, ls->l[i].name_len, 0))
            * 1099511628211ull;
        h = (h ^ ts_xxh64(ls->l[i].value, ls->l[i].value_len, 1))
            * 1099511628211ull;
    }

    return h;
}


int
ts_pq_ls_sig_equal(const ts_pq_ls_t *a, const ts_pq_ls_t *b,
    const ts_promql_labels_t *names, int on)
{
    uint32_t  i, k;

    i = 0;
    k = 0;

    for ( ;; ) {
        while (i < a->n && !ts_pq_sig_has(&a->l[i], names, on)) {
            i++;
        }

        while (k < b->n && !ts_pq_sig_has(&b->l[k], names, on)) {
            k++;
        }

        if (i == a->n || k == b->n) {
            return i == a->n && k == b->n;
        }

        if (ts_labels_cmp(&a->l[i], 1, &b->l[k], 1) != 0) {
            return 0;
        }

        i++;
        k++;
    }
}


/* {a="b", c="d"}, as Prometheus's labels.String() */

size_t
ts_pq_ls_format(const ts_pq_ls_t *ls, char *buf, size_t size)
{
    int       n;
    size_t    len, j;
    uint32_t  i;

    len = 0;

#define TS_PQ_PUT(c)                                                      \
    do { if (len + 1 < size) { buf[len] = (c); } len++; } while (0)

    TS_PQ_PUT('{');

    for (i = 0; i < ls->n; i++) {
        if (i > 0) {
            TS_PQ_PUT(',');
            TS_PQ_PUT(' ');
        }

        for (j = 0; j < ls->l[i].name_len; j++) {
            TS_PQ_PUT(ls->l[i].name[j]);
        }

        TS_PQ_PUT('=');
        TS_PQ_PUT('"');

        for (j = 0; j < ls->l[i].value_len; j++) {
            char  c = ls->l[i].value[j];

            if (c == '"' || c == '\\') {
                TS_PQ_PUT('\\');
                TS_PQ_PUT(c);

            } else if (c == '\n') {
                TS_PQ_PUT('\\');
                TS_PQ_PUT('n');

            } else {
                TS_PQ_PUT(c);
            }
        }

        TS_PQ_PUT('"');
    }

    TS_PQ_PUT('}');

#undef TS_PQ_PUT

    n = 0;

    if (size > 0) {
        buf[len < size ? len : size - 1] = '\0';
    }

    return len + (size_t) n;
}


/* vectors and matrices */

void
ts_pq_vec_push(ts_pq_ev_t *ev, ts_pq_vec_t *v, const ts_pq_ls_t *ls,
    int64_t t, double val)
{
    uint32_t  cap;

    if (v->n == v->cap) {
        cap = v->cap ? v->cap * 2 : 16;
        v->s = ts_pq_realloc(ev, v->s, cap * sizeof(ts_pq_sample_t));
        v->cap = cap;
    }

    v->s[v->n].ls = ls;
    v->s[v->n].t = t;
    v->s[v->n].v = val;
    v->n++;
}


void
ts_pq_series_push(ts_pq_ev_t *ev, ts_pq_series_t *s, int64_t t, double v)
{
    uint32_t  cap;

    if (s->n == s->cap) {
        cap = s->cap ? s->cap * 2 : 4;
        s->p = ts_pq_realloc(ev, s->p, cap * sizeof(ts_pq_point_t));
        s->cap = cap;
    }

    s->p[s->n].t = t;
    s->p[s->n].v = v;
    s->n++;
    ts_pq_samples(ev, 1);
}


void
ts_pq_series_reserve(ts_pq_ev_t *ev, ts_pq_series_t *s, uint32_t n)
{
    if (n <= s->cap) {
        return;
    }

    s->p = ts_pq_realloc(ev, s->p, n * sizeof(ts_pq_point_t));
    s->cap = n;
}


/* the steps of [ts, ev->end] */

uint32_t
ts_pq_steps_left(ts_pq_ev_t *ev, int64_t ts)
{
    if (ts > ev->end) {
        return 0;
    }

    return (uint32_t) ((ev->end - ts) / ev->interval) + 1;
}


/*
 * The steps of [ts, ev->end] a series can have a point at when its last
 * input point counts up to step "last" (not fixed by @), for its room.
 */

uint32_t
ts_pq_steps_until(ts_pq_ev_t *ev, int64_t ts, int at, int64_t last)
{
    if (at || last >= ev->end) {
        return ts_pq_steps_left(ev, ts);
    }

    if (last < ts) {
        return 1;
    }

    return (uint32_t) ((last - ts) / ev->interval) + 1;
}


ts_pq_series_t *
ts_pq_mat_add(ts_pq_ev_t *ev, ts_pq_mat_t *m, const ts_pq_ls_t *ls)
{
    uint32_t         cap;
    ts_pq_series_t  *s;

    if (m->n == m->cap) {
        cap = m->cap ? m->cap * 2 : 16;
        m->s = ts_pq_realloc(ev, m->s, cap * sizeof(ts_pq_series_t));
        m->cap = cap;
    }

    s = &m->s[m->n++];
    memset(s, 0, sizeof(ts_pq_series_t));
    s->ls = ls;

    return s;
}


void
ts_pq_mat_free(ts_pq_ev_t *ev, ts_pq_mat_t *m)
{
    uint32_t  i;

    for (i = 0; i < m->n; i++) {
        ts_pq_samples(ev, -(int64_t) m->s[i].n);
        ts_pq_free(ev, m->s[i].p);
    }

    ts_pq_free(ev, m->s);
    memset(m, 0, sizeof(ts_pq_mat_t));
}


static int
ts_pq_hash_cmp(const void *a, const void *b)
{
    const ts_pq_ls_t  *x, *y;

    x = *(const ts_pq_ls_t *const *) a;
    y = *(const ts_pq_ls_t *const *) b;

    return (x->hash > y->hash) - (x->hash < y->hash);
}


void
ts_pq_mat_unique(ts_pq_ev_t *ev, ts_pq_mat_t *m)
{
    uint32_t           i;
    const ts_pq_ls_t **idx;

    if (m->n < 2) {
        return;
    }

    idx = ts_pq_alloc(ev, m->n * sizeof(ts_pq_ls_t *));

    for (i = 0; i < m->n; i++) {
        idx[i] = m->s[i].ls;
    }

    ts_pq_ls_unique(ev, idx, m->n);
    ts_pq_free(ev, idx);
}


void
ts_pq_ls_unique(ts_pq_ev_t *ev, const ts_pq_ls_t **ls, uint32_t n)
{
    uint32_t  i, k;

    if (n < 2) {
        return;
    }

    qsort(ls, n, sizeof(ts_pq_ls_t *), ts_pq_hash_cmp);

    for (i = 0; i < n; i++) {
        for (k = i + 1; k < n && ls[k]->hash == ls[i]->hash; k++) {
            if (ts_pq_ls_equal(ls[i], ls[k])) {
                ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                           "vector cannot contain metrics with the same "
                           "labelset");
            }
        }
    }
}


int
ts_pq_is_stale(double v)
{
    uint64_t  b;

    memcpy(&b, &v, sizeof(b));

    return b == TS_PQ_STALE_BITS;
}


const ts_promql_expr_t *
ts_pq_unparen(const ts_promql_expr_t *e)
{
    while (e->kind == TS_PQ_PAREN) {
        e = e->u.paren;
    }

    return e;
}


/* the evaluation of one node over [ev->start, ev->end] */

void
ts_pq_eval(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_val_t *v)
{
    ts_pq_tick(ev);
    memset(v, 0, sizeof(ts_pq_val_t));

    switch (e->kind) {

    case TS_PQ_NUMBER:
        ts_pq_number(ev, e->u.number, v);
        break;

    case TS_PQ_STRING:
        v->type = TS_PQ_TYPE_STRING;
        v->str = e->u.string;
        break;

    case TS_PQ_PAREN:
        ts_pq_eval(ev, e->u.paren, v);
        break;

    case TS_PQ_UNARY:
        ts_pq_unary(ev, e, v);
        break;

    case TS_PQ_VECTOR:
        ts_pq_select(ev, &e->u.vector, 0, v);
        break;

    case TS_PQ_CALL:
        ts_pq_call(ev, e, v);
        break;

    case TS_PQ_AGGREGATE:
        ts_pq_aggregate(ev, e, v);
        break;

    case TS_PQ_BINARY:
        ts_pq_binary(ev, e, v);
        break;

    default:
        ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                   "unexpected range vector in expression evaluation");
    }
}


static void
ts_pq_number(ts_pq_ev_t *ev, double d, ts_pq_val_t *v)
{
    int64_t          ts;
    ts_pq_series_t  *s;

    v->type = TS_PQ_TYPE_SCALAR;
    s = ts_pq_mat_add(ev, &v->m, ts_pq_ls(ev, NULL, 0));
    ts_pq_series_reserve(ev, s, ts_pq_steps_left(ev, ev->start));

    for (ts = ev->start; ts <= ev->end; ts += ev->interval) {
        ts_pq_series_push(ev, s, ts, d);
    }
}


static void
ts_pq_unary(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_val_t *v)
{
    uint32_t         i, k;
    ts_pq_map_t      map;
    ts_pq_mat_t      m;
    ts_pq_series_t  *s, *d;

    ts_pq_eval(ev, e->u.unary.expr, v);

    if (e->u.unary.op != TS_PQ_OP_SUB) {
        return;
    }

    if (v->type == TS_PQ_TYPE_SCALAR) {
        for (k = 0; k < v->m.s[0].n; k++) {
            v->m.s[0].p[k].v = -v->m.s[0].p[k].v;
        }

        return;
    }

    memset(&m, 0, sizeof(ts_pq_mat_t));
    ts_pq_map_init(ev, &map, &m);

    for (i = 0; i < v->m.n; i++) {
        s = &v->m.s[i];
        d = ts_pq_map_get(ev, &map, ts_pq_ls_noname(ev, s->ls));

        if (d->n > 0) {
            ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                       "vector cannot contain metrics with the same "
                       "labelset");
        }

        *d = *s;
        d->ls = ts_pq_ls_noname(ev, s->ls);

        for (k = 0; k < d->n; k++) {
            /* 2.42 negates V; a histogram's H stays */

            if (!ts_pq_is_hist(d->p[k].v)) {
                d->p[k].v = -d->p[k].v;
            }
        }
    }

    ts_pq_free(ev, map.slot);
    ts_pq_free(ev, v->m.s);
    v->m = m;
}


static int64_t
ts_pq_at(ts_pq_ev_t *ev, ts_promql_at_t kind, int64_t at, int64_t ts)
{
    switch (kind) {
    case TS_PQ_AT_TIME:
        return at;
    case TS_PQ_AT_START:
        return ev->qstart;
    case TS_PQ_AT_END:
        return ev->qend;
    default:
        return ts;
    }
}


/*
 * An instant vector selector, sampled at every step; times: the value
 * is the sample's time in seconds (timestamp()).
 */

typedef struct {
    const ts_promql_vector_t  *vs;
    int                        times;
    ts_pq_val_t               *v;
    ts_pq_fuse_t              *fu;      /* or the output to here */
} ts_pq_select_t;


void
ts_pq_select(ts_pq_ev_t *ev, const ts_promql_vector_t *vs, int times,
    ts_pq_val_t *v)
{
    memset(v, 0, sizeof(ts_pq_val_t));
    v->type = TS_PQ_TYPE_VECTOR;

    ts_pq_select_to(ev, vs, times, v, NULL);
}


/*
 * An instant vector selector whose samples at each step go to fu, one
 * series at a time (as ts_pq_call_fused() for a range function)
 */

void
ts_pq_select_fused(ts_pq_ev_t *ev, const ts_promql_vector_t *vs,
    ts_pq_fuse_t *fu)
{
    ts_pq_select_to(ev, vs, 0, NULL, fu);
}


static void
ts_pq_select_to(ts_pq_ev_t *ev, const ts_promql_vector_t *vs, int times,
    ts_pq_val_t *v, ts_pq_fuse_t *fu)
{
    int64_t          first, last;
    ts_pq_each_t     each;
    ts_pq_select_t   sel;

    first = ts_pq_at(ev, vs->at_kind, vs->at, ev->start) - vs->offset;
    last = ts_pq_at(ev, vs->at_kind, vs->at, ev->end) - vs->offset;

    sel.vs = vs;
    sel.times = times;
    sel.v = v;
    sel.fu = fu;
    each.fn = ts_pq_select_one;
    each.data = &sel;

    ts_pq_load_each(ev, vs, first - ev->conf.lookback, last, 1, &each);
    ts_pq_samples(ev, -(int64_t) each.held);
}


/* one loaded series of an instant vector selector, sampled at each step */

static void
ts_pq_select_one(ts_pq_ev_t *ev, ts_pq_series_t *s, void *data)
{
    int64_t                    ts, ref;
    uint32_t                   k, step, nout;
    ts_pq_fuse_t              *fu;
    ts_pq_series_t            *d;
    ts_pq_select_t            *sel;
    const ts_promql_vector_t  *vs;

    sel = data;
    vs = sel->vs;
    fu = sel->fu;
    d = NULL;
    k = 0;
    nout = 0;

    if (fu != NULL && fu->stop) {
        return;
    }

    for (ts = ev->start, step = 0; ts <= ev->end;
         ts += ev->interval, step++)
    {
        ts_pq_tick(ev);
        ref = ts_pq_at(ev, vs->at_kind, vs->at, ts) - vs->offset;

        while (k < s->n && s->p[k].t <= ref) {
            k++;
        }

        if (k == 0 || s->p[k - 1].t < ref - ev->conf.lookback
            || ts_pq_is_stale(s->p[k - 1].v))
        {
            continue;
        }

        if (fu != NULL) {
            fu->step[nout] = step;
            fu->v[nout] = s->p[k - 1].v;
            nout++;
            continue;
        }

        if (d == NULL) {
            d = ts_pq_mat_add(ev, &sel->v->m, s->ls);
            ts_pq_series_reserve(ev, d,
                ts_pq_steps_until(ev, ts, vs->at_kind != TS_PQ_AT_NONE,
                                  s->p[s->n - 1].t + vs->offset
                                  + ev->conf.lookback));
        }

        ts_pq_series_push(ev, d, ts, sel->times ? (double) s->p[k - 1].t / 1000
                                                : s->p[k - 1].v);
    }

    if (nout == 0) {
        return;
    }

    /* counted as the points of a series of its own would be */

    ts_pq_samples(ev, nout);
    fu->held += nout;
    fu->fn(ev, s->ls, fu->step, fu->v, nout, fu->data);
}


/* a range selector or subquery as the whole query */

static void
ts_pq_matrix_top(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_val_t *v)
{
    uint32_t         i, lo, n, k;
    ts_pq_range_t    r;
    ts_pq_series_t  *s, *d;

    memset(v, 0, sizeof(ts_pq_val_t));
    ts_pq_range_arg(ev, e, &r);
    v->type = TS_PQ_TYPE_MATRIX;

    for (i = 0; i < r.m.n; i++) {
        s = &r.m.s[i];
        s->cur = 0;
        s->hi = 0;
        n = ts_pq_window(&r, s, ev->start, &lo);

        if (n == 0) {
            continue;
        }

        d = ts_pq_mat_add(ev, &v->m, s->ls);

        for (k = 0; k < n; k++) {
            ts_pq_series_push(ev, d, s->p[lo + k].t, s->p[lo + k].v);
        }
    }
}


/*
 * The series and points a range function reads: a range selector's
 * samples (without staleness markers) over every step's window, or a
 * subquery's points.
 */

void
ts_pq_range_arg(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_range_t *r)
{
    int64_t                    first, last;
    const ts_promql_vector_t  *vs;

    memset(r, 0, sizeof(ts_pq_range_t));
    e = ts_pq_unparen(e);

    if (e->kind == TS_PQ_SUBQUERY) {
        r->range = e->u.subquery.range;
        r->range_s = (double) r->range / 1000;
        r->offset = e->u.subquery.offset;
        r->has_at = e->u.subquery.at_kind != TS_PQ_AT_NONE;
        r->at = ts_pq_at(ev, e->u.subquery.at_kind, e->u.subquery.at, 0);
        ts_pq_subquery(ev, &e->u.subquery, &r->m);
        return;
    }

    ts_pq_range_sel(ev, e, r, &vs, &first, &last);
    ts_pq_load(ev, vs, first, last, 0, &r->m, NULL);
}


/* a range selector's window, and the samples it reads: [*mint, *maxt] */

void
ts_pq_range_sel(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_range_t *r,
    const ts_promql_vector_t **vsp, int64_t *mint, int64_t *maxt)
{
    const ts_promql_vector_t  *vs;

    memset(r, 0, sizeof(ts_pq_range_t));
    e = ts_pq_unparen(e);
    vs = &e->u.matrix.vector->u.vector;
    r->range = e->u.matrix.range;
    r->range_s = (double) r->range / 1000;
    r->offset = vs->offset;
    r->has_at = vs->at_kind != TS_PQ_AT_NONE;
    r->at = ts_pq_at(ev, vs->at_kind, vs->at, 0);

    *mint = (r->has_at ? r->at : ev->start) - r->offset - r->range;
    *maxt = (r->has_at ? r->at : ev->end) - r->offset;
    *vsp = vs;
}


/*
 * The series of a selector one at a time, each handed to each->fn and
 * its buffer then reused: what the selector reads is never all in
 * memory at once.  The samples read stay counted against max_samples
 * (each->held of them), as if they were, until the caller takes them
 * off.
 */

void
ts_pq_load_each(ts_pq_ev_t *ev, const ts_promql_vector_t *vs, int64_t mint,
    int64_t maxt, int keep_stale, ts_pq_each_t *each)
{
    each->held = 0;
    ts_pq_load(ev, vs, mint, maxt, keep_stale, NULL, each);
}


static void
ts_pq_subquery(ts_pq_ev_t *ev, const ts_promql_subquery_t *sq,
    ts_pq_mat_t *m)
{
    int64_t      start, end, interval, from, to, step;
    ts_pq_val_t  v;

    start = ev->start;
    end = ev->end;
    interval = ev->interval;

    step = sq->step ? sq->step : ev->conf.default_step;

    if (sq->at_kind != TS_PQ_AT_NONE) {
        from = ts_pq_at(ev, sq->at_kind, sq->at, 0) - sq->offset;
        to = from;

    } else {
        from = start - sq->offset;
        to = end - sq->offset;
    }

    from -= sq->range;
    ev->start = step * (from / step);

    if (ev->start < from) {
        ev->start += step;
    }

    ev->end = to;
    ev->interval = step;

    if (ev->start <= ev->end) {
        ts_pq_eval(ev, sq->expr, &v);

    } else {
        memset(&v, 0, sizeof(ts_pq_val_t));
    }

    ev->start = start;
    ev->end = end;
    ev->interval = interval;

    *m = v.m;
}


/* the series of a selector with their samples in [mint, maxt] */

static void
ts_pq_load(ts_pq_ev_t *ev, const ts_promql_vector_t *vs, int64_t mint,
    int64_t maxt, int keep_stale, ts_pq_mat_t *m, ts_pq_each_t *each)
{
    ts_pq_mat_t      one;

    int              rc;
    char             msg[TS_SSET_MSG_SIZE];
    ts_sset_t       *ss;
    ts_selector_t   *sel;
    ts_sset_conf_t   conf;

    if (m == NULL) {
        m = &one;
    }

    memset(m, 0, sizeof(ts_pq_mat_t));
    msg[0] = '\0';

    rc = ts_selector_compile(&sel, vs->matchers, vs->nmatchers,
                             &ev->conf.select, msg, sizeof(msg));
    if (rc != TS_OK) {
        ts_pq_fail(ev, rc, rc == TS_ERR_NOMEM ? TS_PQE_INTERNAL
                                              : TS_PQE_BAD_DATA,
                   "%s", rc == TS_ERR_NOMEM ? "out of memory" : msg);
    }

    conf.max_series = ev->conf.max_series;
    conf.trim_chunks = 0;

    rc = ts_sset_create(&ss, ev->src, ev->nsrc, &conf);
    if (rc != TS_OK) {
        ts_selector_free(sel);
        ts_pq_fail(ev, rc, TS_PQE_INTERNAL, "out of memory");
    }

    rc = ts_sources_begin(ev->src, ev->nsrc);

    if (rc == TS_OK) {
        rc = ts_sset_select(ss, sel, mint, maxt, msg, sizeof(msg));

        if (rc == TS_OK) {
            rc = ts_pq_load_series(ev, ss, keep_stale, m, each);
        }

        ts_sources_end(ev->src, ev->nsrc);

    } else {
        snprintf(msg, sizeof(msg), "opening storage: %s", ts_strerror(rc));
    }

    ts_sset_free(ss);
    ts_selector_free(sel);

    if (rc == TS_OK) {
        return;
    }

    if (ev->err->type != TS_PQE_NONE) {
        longjmp(ev->jb, 1);
    }

    ts_pq_fail(ev, rc, rc == TS_ERR_LIMIT ? TS_PQE_EXECUTION
                                          : TS_PQE_INTERNAL, "%s", msg);
}


/*
 * Reads every selected series; errors of the evaluator (limits) are
 * caught here so that the set and the sources are released first.
 */

static int
ts_pq_load_series(ts_pq_ev_t *ev, ts_sset_t *ss, int keep_stale,
    ts_pq_mat_t *m, ts_pq_each_t *each)
{
    int                rc;
    double             d;
    uint32_t           n;
    uint64_t           v;
    jmp_buf            saved;
    const ts_sset_value_t  *val;
    ts_pq_series_t    *s;
    const ts_label_t  *l;
    volatile uint32_t  guess;

    memcpy(saved, ev->jb, sizeof(jmp_buf));
    guess = 0;

    if (setjmp(ev->jb) != 0) {
        memcpy(ev->jb, saved, sizeof(jmp_buf));
        return ev->err->rc;
    }

    if (each != NULL) {
        /* one series, its buffer used again for each */
        ts_pq_mat_add(ev, m, NULL);
    }

    while ((rc = ts_sset_next(ss, &l, &n)) == 1) {
        if (each != NULL) {
            s = &m->s[0];
            s->ls = ts_pq_ls(ev, l, n);
            s->n = 0;
            s->cur = 0;
            s->hi = 0;

        } else {
            s = ts_pq_mat_add(ev, m, ts_pq_ls(ev, l, n));

            /*
             * the series of a selector mostly have as many samples in
             * range as each other: room for as many as the last one had,
             * and a few
             */

            if (guess > 0) {
                ts_pq_series_reserve(ev, s, guess + 4);
            }
        }

        while ((rc = ts_sset_value_ref(ss, &val)) == 1) {
            v = val->enc == TS_XOR_ENCODING ? val->v
                : val->h.sum == TS_HIST_STALE_SUM ? TS_PQ_STALE_BITS : 0;

            if (!keep_stale && v == TS_PQ_STALE_BITS) {
                continue;
            }

            if (val->enc != TS_XOR_ENCODING && v == 0) {
                /* a histogram, as 2.42's iterators give it: a float one */
                d = ts_pq_hist_ref(ev, ts_pq_hist_from(ev, &val->h));

            } else {
                memcpy(&d, &v, sizeof(d));
            }

            ts_pq_series_push(ev, s, val->t, d);
            ts_pq_tick(ev);
        }

        if (rc < 0) {
            break;
        }

        if (each != NULL) {
            if (s->n > 0) {
                each->held += s->n;
                each->fn(ev, s, each->data);
            }

            continue;
        }

        if (s->n == 0) {
            ts_pq_free(ev, s->p);
            m->n--;

        } else {
            guess = s->n;
        }
    }

    memcpy(ev->jb, saved, sizeof(jmp_buf));

    if (each != NULL) {
        ts_pq_free(ev, m->s[0].p);
        ts_pq_free(ev, m->s);
        memset(m, 0, sizeof(ts_pq_mat_t));
    }

    return rc < 0 ? rc : TS_OK;
}


/* the step loop */

void
ts_pq_map_init(ts_pq_ev_t *ev, ts_pq_map_t *map, ts_pq_mat_t *m)
{
    map->m = m;
    map->mask = 63;
    map->slot = ts_pq_alloc(ev, 64 * sizeof(uint32_t));
    memset(map->slot, 0, 64 * sizeof(uint32_t));
}


static ts_pq_series_t *
ts_pq_map_get(ts_pq_ev_t *ev, ts_pq_map_t *map, const ts_pq_ls_t *ls)
{
    uint32_t   i, k, j, size;
    uint32_t  *slot;

    for (i = (uint32_t) ls->hash & map->mask; map->slot[i];
         i = (i + 1) & map->mask)
    {
        if (ts_pq_ls_equal(map->m->s[map->slot[i] - 1].ls, ls)) {
            return &map->m->s[map->slot[i] - 1];
        }
    }

    ts_pq_mat_add(ev, map->m, ls);
    map->slot[i] = map->m->n;

    if (map->m->n * 2 > map->mask) {
        size = (map->mask + 1) * 2;
        slot = ts_pq_alloc(ev, size * sizeof(uint32_t));
        memset(slot, 0, size * sizeof(uint32_t));

        for (k = 0; k < map->m->n; k++) {
            for (j = (uint32_t) map->m->s[k].ls->hash & (size - 1); slot[j];
                 j = (j + 1) & (size - 1))
            {
                /* void */
            }

            slot[j] = k + 1;
        }

        ts_pq_free(ev, map->slot);
        map->slot = slot;
        map->mask = size - 1;
    }

    return &map->m->s[map->m->n - 1];
}


/*
 * A step's output sample into the series of its label set; two at one
 * step are Prometheus's "vector cannot contain metrics with the same
 * labelset".
 */

void
ts_pq_map_put(ts_pq_ev_t *ev, ts_pq_map_t *map, const ts_pq_ls_t *ls,
    int64_t ts, double v)
{
    uint32_t         n;
    ts_pq_series_t  *s;

    s = ts_pq_map_get(ev, map, ls);

    /*
     * a series there from the first step likely goes on at every step:
     * room for all of them at once; one that comes later (topk's, say)
     * may be rare: it grows as it needs
     */

    if (s->cap == 0) {
        n = ts_pq_steps_left(ev, ts);
        ts_pq_series_reserve(ev, s, ts == ev->start ? n : n < 16 ? n : 16);
    }

    if (s->n > 0 && s->p[s->n - 1].t == ts) {
        ts_pq_fail(ev, TS_ERR_INVALID, TS_PQE_EXECUTION,
                   "vector cannot contain metrics with the same "
                   "labelset");
    }

    ts_pq_series_push(ev, s, ts, v);
}


/*
 * Runs fn at every step with the arguments' vectors (and scalars) at
 * that step and gathers its output vectors into out, a series per
 * label set.  Two samples with one label set at one step are
 * Prometheus's "vector cannot contain metrics with the same labelset".
 */

void
ts_pq_steps(ts_pq_ev_t *ev, const ts_promql_expr_t *e, ts_pq_val_t *args,
    uint32_t nargs, ts_pq_step_pt fn, void *data, ts_pq_val_t *out)
{
    uint32_t         i, k;
    ts_pq_map_t      map;
    ts_pq_vec_t      vout;
    ts_pq_step_t     st;

    memset(out, 0, sizeof(ts_pq_val_t));
    memset(&vout, 0, sizeof(ts_pq_vec_t));
    memset(&st, 0, sizeof(ts_pq_step_t));

    out->type = TS_PQ_TYPE_VECTOR;
    ts_pq_map_init(ev, &map, &out->m);

    st.e = e;
    st.val = args;
    st.out = &vout;
    st.data = data;
    st.vec = ts_pq_alloc(ev, (nargs + 1) * sizeof(ts_pq_vec_t));
    st.scalar = ts_pq_alloc(ev, (nargs + 1) * sizeof(double));
    memset(st.vec, 0, (nargs + 1) * sizeof(ts_pq_vec_t));

    for (i = 0; i < nargs; i++) {
        for (k = 0; k < args[i].m.n; k++) {
            args[i].m.s[k].cur = 0;
        }
    }

    for (st.ts = ev->start; st.ts <= ev->end; st.ts += ev->interval) {
        ts_pq_tick(ev);
        ts_pq_args_at(ev, args, nargs, &st);

        vout.n = 0;
        fn(ev, &st);

        for (i = 0; i < vout.n; i++) {
            ts_pq_map_put(ev, &map, vout.s[i].ls, st.ts, vout.s[i].v);
        }
    }

    for (i = 0; i < nargs; i++) {
        ts_pq_free(ev, st.vec[i].s);
    }

    ts_pq_free(ev, st.vec);
    ts_pq_free(ev, st.scalar);
    ts_pq_free(ev, vout.s);
    ts_pq_free(ev, map.slot);
}


static void
ts_pq_args_at(ts_pq_ev_t *ev, ts_pq_val_t *args, uint32_t nargs,
    ts_pq_step_t *st)
{
    uint32_t         i, k;
    ts_pq_vec_t     *vec;
    ts_pq_series_t  *s;

    for (i = 0; i < nargs; i++) {
        vec = &st->vec[i];
        vec->n = 0;
        st->scalar[i] = NAN;

        if (args[i].type != TS_PQ_TYPE_VECTOR
            && args[i].type != TS_PQ_TYPE_SCALAR)
        {
            continue;
        }

        for (k = 0; k < args[i].m.n; k++) {
            s = &args[i].m.s[k];

            while (s->cur < s->n && s->p[s->cur].t < st->ts) {
                s->cur++;
            }

            if (s->cur == s->n || s->p[s->cur].t != st->ts) {
                continue;
            }

            if (args[i].type == TS_PQ_TYPE_SCALAR) {
                st->scalar[i] = s->p[s->cur].v;
                continue;
            }

            ts_pq_vec_push(ev, vec, s->ls, st->ts, s->p[s->cur].v);
        }
    }
}


/* Go's math.Min and math.Max: NaN wins, -0 < +0 */

double
ts_pq_go_min(double a, double b)
{
    if (isinf(a) && a < 0) {
        return a;
    }

    if (isinf(b) && b < 0) {
        return b;
    }

    if (isnan(a) || isnan(b)) {
        return NAN;
    }

    if (a == 0 && a == b) {
        return signbit(a) ? a : b;
    }

    return a < b ? a : b;
}


double
ts_pq_go_max(double a, double b)
{
    if (isinf(a) && a > 0) {
        return a;
    }

    if (isinf(b) && b > 0) {
        return b;
    }

    if (isnan(a) || isnan(b)) {
        return NAN;
    }

    if (a == 0 && a == b) {
        return signbit(a) ? b : a;
    }

    return a > b ? a : b;
}


void
ts_pq_go_format(double v, char *buf, size_t size)
{
    ts_pqjson_float(v, 'f', buf, size);
}
