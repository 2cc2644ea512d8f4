/*
 * Copyright (C) ngx_tsdb authors
 *
 * promql_parse: reads PromQL expressions, one per line, and prints for
 * each "OK<tab>canonical form" or "ERR<tab>line:col: parse error: msg",
 * Prometheus's wording.  t/040-promql-parse.t compares these with
 * promtool and Prometheus.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_promql.h"


int
main(void)
{
    int                 rc;
    char               *line, *out;
    size_t              cap, len, n;
    ssize_t             got;
    ts_promql_t        *pq;
    ts_promql_error_t   err;

    line = NULL;
    cap = 0;

    while ((got = getline(&line, &cap, stdin)) != -1) {
        len = (size_t) got;

        if (len > 0 && line[len - 1] == '\n') {
            len--;
        }

        rc = ts_promql_parse(line, len, NULL, &pq, &err);

        if (rc != TS_OK) {
            char  msg[512];

            (void) ts_promql_error_format(&err, msg, sizeof(msg));
            printf("ERR\t%s\n", msg);
            continue;
        }

        n = ts_promql_format(ts_promql_root(pq), NULL, 0);

        out = malloc(n + 1);
        if (out == NULL) {
            ts_promql_free(pq);
            return 1;
        }

        (void) ts_promql_format(ts_promql_root(pq), out, n + 1);
        printf("OK\t%s\n", out);

        free(out);
        ts_promql_free(pq);
    }

    free(line);

    return 0;
}
