/*
 * Copyright (C) ngx_tsdb authors
 */

#include "ts_error.h"


static const char *ts_errors[] = {
    "ok",
    "out of memory",
    "i/o error",
    "corrupt data",
    "storage full",
    "limit exceeded",
    "invalid argument",
    "not found",
    "already exists",
    "out of order sample",
    "sample too old",
    "duplicate sample for timestamp",
    "unsupported",
    "try again",
    "unsupported format version",
    "locked by another process",
};


const char *
ts_strerror(int err)
{
    int  i;

    i = -err;

    if (i < 0 || i >= (int) (sizeof(ts_errors) / sizeof(ts_errors[0]))) {
        return "unknown error";
    }

    return ts_errors[i];
}
