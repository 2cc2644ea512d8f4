/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target: the PromQL parser.  The input is a query.  An
 * error must come with a position inside the query and a message; a
 * parse must print, and the printed form must parse again and print
 * the same (Prometheus's String() round-trips; the one exception is an
 * @ timestamp that Go's float-to-int conversion turned into MinInt64,
 * which Prometheus would not read back either).  Printing into short
 * buffers must stay inside them.
 *
 * Seeds (fuzz/corpus/fuzz_promql/): lines of
 * t/data/promql/parse-corpus.txt, valid and invalid.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_promql.h"


#define fz_assert(cond)                                                   \
    do {                                                                  \
        if (!(cond)) {                                                    \
            abort();                                                      \
        }                                                                 \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fz_error(const ts_promql_error_t *err, size_t size, int rc)
{
    fz_assert(rc == TS_ERR_INVALID || rc == TS_ERR_LIMIT
              || rc == TS_ERR_NOMEM);
    fz_assert(err->rc == rc);
    fz_assert(err->pos <= size);
    fz_assert(err->line >= 1 && err->col >= 1);
    fz_assert(err->col <= err->pos + 1);
    fz_assert(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
    fz_assert(err->msg[0] != '\0');
}


static char *
fz_format(const ts_promql_t *pq, size_t *len)
{
    char    *s, small[16];
    size_t   n, m;

    n = ts_promql_format(ts_promql_root(pq), NULL, 0);

    s = malloc(n + 1);
    fz_assert(s != NULL);

    m = ts_promql_format(ts_promql_root(pq), s, n + 1);
    fz_assert(m == n && s[n] == '\0' && strlen(s) <= n);

    m = ts_promql_format(ts_promql_root(pq), small, sizeof(small));
    fz_assert(m == n && strlen(small) == (n < 15 ? n : 15));
    fz_assert(memcmp(small, s, strlen(small)) == 0);

    *len = n;

    return s;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  rc;
    char                *s, *s2;
    size_t               n, n2;
    ts_promql_t         *pq, *pq2;
    ts_promql_error_t    err;
    ts_promql_limits_t   lim;

    ts_promql_limits_default(&lim);
    lim.max_memory = 16 * 1024 * 1024;

    /* the same bytes as a match[] selector */
    rc = ts_promql_parse_selector((const char *) data, size, &lim, &pq,
                                  &err);
    if (rc != TS_OK) {
        fz_assert(pq == NULL);
        fz_error(&err, size, rc);

    } else {
        fz_assert(ts_promql_root(pq)->kind == TS_PQ_VECTOR);
        s = fz_format(pq, &n);
        free(s);
        ts_promql_free(pq);
    }

    rc = ts_promql_parse((const char *) data, size, &lim, &pq, &err);

    if (rc != TS_OK) {
        fz_assert(pq == NULL);
        fz_error(&err, size, rc);
        return 0;
    }

    fz_assert(ts_promql_root(pq)->height <= lim.max_depth);
    fz_assert(ts_promql_memory(pq) <= lim.max_memory);

    s = fz_format(pq, &n);

    lim.max_input = n;
    rc = ts_promql_parse(s, n, &lim, &pq2, &err);

    if (rc == TS_OK) {
        s2 = fz_format(pq2, &n2);
        fz_assert(n2 == n && memcmp(s, s2, n) == 0);
        free(s2);
        ts_promql_free(pq2);

    } else {
        fz_assert(strstr(err.msg, "timestamp out of bounds") != NULL);
    }

    free(s);
    ts_promql_free(pq);

    return 0;
}
