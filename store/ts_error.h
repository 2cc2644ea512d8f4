/*
 * Copyright (C) ngx_tsdb authors
 *
 * Typed error codes shared by every store/ component.  Functions return
 * TS_OK (0) or a negative ts_err_t; ts_strerror() gives a fixed string
 * that log lines and HTTP reasons may quote.  New codes are appended at
 * the end of the enum and of the table in ts_error.c.
 */

#ifndef TS_ERROR_H
#define TS_ERROR_H


typedef enum {
    TS_OK = 0,
    TS_ERR_NOMEM = -1,
    TS_ERR_IO = -2,
    TS_ERR_CORRUPT = -3,
    TS_ERR_FULL = -4,
    TS_ERR_LIMIT = -5,
    TS_ERR_INVALID = -6,
    TS_ERR_NOTFOUND = -7,
    TS_ERR_EXISTS = -8,
    TS_ERR_OUT_OF_ORDER = -9,
    TS_ERR_TOO_OLD = -10,
    TS_ERR_DUPLICATE = -11,
    TS_ERR_UNSUPPORTED = -12,
    TS_ERR_AGAIN = -13,
    TS_ERR_VERSION = -14,
    TS_ERR_LOCKED = -15,
    TS_ERR_LAST = -16
} ts_err_t;


const char *ts_strerror(int err);


#endif /* TS_ERROR_H */
