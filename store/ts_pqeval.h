/*
 * Copyright (C) ngx_tsdb authors
 *
 * PromQL evaluation with the semantics of Prometheus 2.42 (promql/
 * engine.go, functions.go, quantile.go) over ts_source_t sources: an
 * instant query at time t, or a range query over [start, end] at step.
 * See docs/promql.md, "Evaluation", for coverage and known differences.
 *
 * The tree comes from ts_promql_parse() and is not changed.  A result
 * owns its memory (malloc'd) and goes with ts_pqeval_result_free(); it
 * does not point into the tree nor into the sources.
 *
 * Limits, each an error of Prometheus's kind and wording: samples held
 * in memory at once (Prometheus's query.max-samples), series per
 * selector, bytes of memory, a deadline checked in every loop.  The
 * sources are read between their begin and end, once per selector.
 */

#ifndef TS_PQEVAL_H
#define TS_PQEVAL_H


#include <stddef.h>
#include <stdint.h>

#include "ts_promql.h"
#include "ts_select.h"


#define TS_PQEVAL_MSG_SIZE  512


typedef struct {
    int64_t                 lookback;       /* ms, 300000 (5m) */
    int64_t                 default_step;   /* ms, subqueries without a
                                               step, 60000 */
    uint64_t                max_samples;    /* 50000000 */
    uint32_t                max_series;     /* per selector, 0: none */
    size_t                  max_memory;     /* bytes, 1 GiB */
    int64_t                 timeout;        /* ms, 120000; 0: none */
    uint32_t                max_points;     /* steps of a range query,
                                               11000 */
    ts_select_limits_t      select;
    int                     no_fuse;        /* 1: range functions not
                                               fused into the aggregation
                                               above them (tests compare
                                               the two), 0 */
} ts_pqeval_conf_t;


/* Prometheus's errorType of the HTTP API */
typedef enum {
    TS_PQE_NONE = 0,
    TS_PQE_BAD_DATA,        /* "bad_data", HTTP 400 */
    TS_PQE_EXECUTION,       /* "execution", HTTP 422 */
    TS_PQE_TIMEOUT,         /* "timeout", HTTP 503 */
    TS_PQE_INTERNAL         /* "internal", HTTP 500 */
} ts_pqeval_errtype_t;


typedef struct {
    int                     rc;         /* negative ts_err_t */
    ts_pqeval_errtype_t     type;
    char                    msg[TS_PQEVAL_MSG_SIZE];
} ts_pqeval_error_t;


typedef struct {
    int64_t                 t;          /* ms */
    double                  v;
} ts_pqeval_point_t;


/*
 * A native histogram as Prometheus 2.42's FloatHistogram: integer
 * histograms come converted.  Buckets by index, ascending, each side;
 * the bucket of index i has the bounds (b(i-1), b(i)] (positive) or
 * [-b(i), -b(i-1)) (negative), b() of the schema (ts_pqeval_hist_bound()).
 */
typedef struct {
    int32_t                 idx;
    double                  count;
} ts_pqeval_bucket_t;

typedef struct {
    int32_t                 schema;
    uint32_t                reset_hint;     /* TS_HIST_HINT_* */
    double                  zero_threshold;
    double                  zero_count;
    double                  count;
    double                  sum;
    uint32_t                n_pos;
    uint32_t                n_neg;
    ts_pqeval_bucket_t     *pos;
    ts_pqeval_bucket_t     *neg;
} ts_pqeval_hist_t;


/* vector: one point (at the evaluation time); matrix: points by time */
typedef struct {
    const ts_label_t       *labels;     /* sorted */
    uint32_t                nlabels;
    const ts_pqeval_point_t *points;
    uint32_t                npoints;
} ts_pqeval_series_t;


typedef struct ts_pqeval_result_s  ts_pqeval_result_t;


void ts_pqeval_conf_default(ts_pqeval_conf_t *conf);

/*
 * Evaluates e at t (ms).  TS_OK with *res, or a negative ts_err_t with
 * err filled: TS_ERR_INVALID (bad_data or execution: what Prometheus
 * rejects), TS_ERR_LIMIT (execution: max_samples, max_series,
 * max_memory; timeout), TS_ERR_NOMEM, or a storage error (internal).
 * conf NULL: defaults.  The sources are bound to the caller's tenant.
 */
int ts_pqeval_instant(const ts_promql_expr_t *e, ts_source_t *const *src,
    uint32_t nsrc, int64_t t, const ts_pqeval_conf_t *conf,
    ts_pqeval_result_t **res, ts_pqeval_error_t *err);

/*
 * Evaluates e at start, start + step, ... <= end (ms, step > 0).  The
 * expression must be a scalar or an instant vector (else bad_data, as
 * Prometheus); the result is a matrix sorted by labels.
 */
int ts_pqeval_range(const ts_promql_expr_t *e, ts_source_t *const *src,
    uint32_t nsrc, int64_t start, int64_t end, int64_t step,
    const ts_pqeval_conf_t *conf, ts_pqeval_result_t **res,
    ts_pqeval_error_t *err);

/*
 * The histogram of a result's point, NULL if the point is a float: a
 * histogram point's v is a NaN that says which (not a value).
 */
const ts_pqeval_hist_t *ts_pqeval_point_hist(const ts_pqeval_result_t *res,
    const ts_pqeval_point_t *p);

/* the upper bound of bucket idx in schema, as Prometheus's getBound() */
double ts_pqeval_hist_bound(int32_t idx, int32_t schema);

/* TS_PQ_TYPE_SCALAR, _VECTOR, _MATRIX or _STRING */
ts_promql_type_t ts_pqeval_result_type(const ts_pqeval_result_t *res);

/* series of a vector or matrix, in output order */
uint32_t ts_pqeval_result_count(const ts_pqeval_result_t *res);
const ts_pqeval_series_t *ts_pqeval_result_series(
    const ts_pqeval_result_t *res, uint32_t i);

/* a scalar's or string's time and value (str NULL for a scalar) */
void ts_pqeval_result_scalar(const ts_pqeval_result_t *res, int64_t *t,
    double *v, const char **str, size_t *len);

void ts_pqeval_result_free(ts_pqeval_result_t *res);

/* "bad_data", "execution", "timeout", "internal" */
const char *ts_pqeval_errtype_name(ts_pqeval_errtype_t type);


#endif /* TS_PQEVAL_H */
