/*
 * Copyright (C) ngx_tsdb authors
 *
 * Prometheus's JSON for query results (web/api/v1 of 2.42), byte for
 * byte: the "data" object {"resultType": ..., "result": ...} and the
 * whole success and error envelopes.
 *
 *   - vector and matrix points: [seconds, "value"], seconds written as
 *     Prometheus's MarshalTimestamp does (integer part, then "." and
 *     three digits unless the milliseconds are 0), the value as
 *     strconv.AppendFloat(v, 'f' or, for |v| < 1e-6 or >= 1e21, 'e', -1)
 *     ("NaN", "+Inf", "-Inf");
 *   - scalar and string: [seconds, "value"] as Go's encoding/json writes
 *     a float64 (1700000000.5), the scalar as FormatFloat(v, 'f', -1);
 *   - strings escaped as Go's encoding/json: <, > and & as \u003c ...,
 *     U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd.
 */

#ifndef TS_PQJSON_H
#define TS_PQJSON_H


#include <stddef.h>

#include "ts_pqeval.h"
#include "ts_sset.h"


/* strconv.FormatFloat(v, fmt, -1, 64), fmt 'f' or 'e'; NUL-terminated */
size_t ts_pqjson_float(double v, char fmt, char *buf, size_t size);

/* the "data" object of a query's result */
int ts_pqjson_data(const ts_pqeval_result_t *res, ts_buf_t *out);

/* {"status":"success","data":...} */
int ts_pqjson_success(const ts_pqeval_result_t *res, ts_buf_t *out);

/* {"status":"error","errorType":"...","error":"..."} */
int ts_pqjson_error(const char *type, const char *msg, size_t len,
    ts_buf_t *out);

/* a JSON string, quotes included */
int ts_pqjson_string(const char *s, size_t len, ts_buf_t *out);


#endif /* TS_PQJSON_H */
