/*
 * Copyright (C) ngx_tsdb authors
 *
 * pstore-dump: reads a zone's profile store (<zone path>/profiles) the
 * way the query endpoints will, for tests and operators.
 *
 *   pstore-dump [-t tenant] ZONE_PATH
 *       one line per series: its labels, rows and row bytes; then the
 *       bytes the environment uses
 *   pstore-dump [-t tenant] [-f from_ns] [-u until_ns] -o OUT ZONE_PATH
 *       TYPE [name=value...]
 *       the rows of TYPE's series matching the labels, merged, written
 *       to OUT as gzip pprof (what `go tool pprof` reads)
 *
 * The tenant defaults to "anonymous" (no X-Scope-OrgID).  Exit status 0,
 * 1 on a store error, 2 on bad usage.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_pprof.h"
#include "ts_pstore.h"


#define PD_MAX_MATCHERS  32


static int
pd_series(void *data, const ts_label_t *l, uint32_t n, uint64_t rows,
    uint64_t bytes)
{
    uint32_t  i;

    (void) data;

    printf("{");

    for (i = 0; i < n; i++) {
        printf("%s%.*s=\"%.*s\"", i ? ", " : "", (int) l[i].name_len,
               l[i].name, (int) l[i].value_len, l[i].value);
    }

    printf("} rows=%llu bytes=%llu\n", (unsigned long long) rows,
           (unsigned long long) bytes);

    return 0;
}


static int
pd_write(void *data, const char *p, size_t len)
{
    return fwrite(p, 1, len, data) == len ? 0 : -1;
}


static int
pd_usage(void)
{
    fprintf(stderr, "usage: pstore-dump [-t tenant] ZONE_PATH\n"
            "       pstore-dump [-t tenant] [-f from] [-u until] -o OUT"
            " ZONE_PATH TYPE [name=value...]\n");
    return 2;
}


int
main(int argc, char **argv)
{
    int                c, rc;
    char               err[TS_PSTORE_ERR_MAX], *eq;
    FILE              *f;
    uint32_t           i;
    uint64_t           used, n;
    const char        *out;
    ts_pprof_t         p;
    ts_matcher_t       m[PD_MAX_MATCHERS];
    ts_pstore_t       *ps;
    ts_pstore_conf_t   conf;
    ts_pstore_query_t  q;

    memset(&q, 0, sizeof(q));
    q.tenant = "anonymous";
    q.from = INT64_MIN;
    q.until = INT64_MAX;
    out = NULL;

    while ((c = getopt(argc, argv, "t:f:u:o:")) != -1) {
        switch (c) {
        case 't':
            q.tenant = optarg;
            break;
        case 'f':
            q.from = strtoll(optarg, NULL, 10);
            break;
        case 'u':
            q.until = strtoll(optarg, NULL, 10);
            break;
        case 'o':
            out = optarg;
            break;
        default:
            return pd_usage();
        }
    }

    if (optind >= argc || (out != NULL && optind + 1 >= argc)
        || argc - optind - 2 > PD_MAX_MATCHERS)
    {
        return pd_usage();
    }

    q.tenant_len = strlen(q.tenant);

    memset(&conf, 0, sizeof(conf));
    conf.path = argv[optind];
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;

    rc = ts_pstore_open(&ps, &conf, err, sizeof(err));
    if (rc != TS_OK) {
        fprintf(stderr, "pstore-dump: %s\n", err);
        return 1;
    }

    if (out == NULL) {
        rc = ts_pstore_series(ps, &q, pd_series, NULL, err, sizeof(err));
        if (rc == TS_OK && ts_pstore_used(ps, &used) == TS_OK) {
            printf("used_bytes=%llu\n", (unsigned long long) used);
        }

        goto done;
    }

    q.type = argv[optind + 1];
    q.type_len = strlen(q.type);

    for (i = 0; optind + 2 + (int) i < argc; i++) {
        eq = strchr(argv[optind + 2 + i], '=');
        if (eq == NULL) {
            ts_pstore_close(ps);
            return pd_usage();
        }

        m[i].type = TS_MATCH_EQ;
        m[i].name = argv[optind + 2 + i];
        m[i].name_len = (size_t) (eq - m[i].name);
        m[i].value = eq + 1;
        m[i].value_len = strlen(eq + 1);
    }

    q.matchers = m;
    q.nmatchers = i;

    ts_pprof_init(&p, NULL, NULL);

    rc = ts_pstore_merge(ps, &q, &p, &n, err, sizeof(err));

    if (rc == TS_OK) {
        f = fopen(out, "wb");
        rc = (f == NULL) ? TS_ERR_IO : ts_pprof_encode(&p, 6, pd_write, f);

        if (f != NULL && fclose(f) != 0) {
            rc = TS_ERR_IO;
        }

        snprintf(err, sizeof(err), "cannot write \"%s\"", out);
        fprintf(stderr, "pstore-dump: %llu profiles, %u samples merged\n",
                (unsigned long long) n, p.nsamples);
    }

    ts_pprof_free(&p);

done:

    if (rc != TS_OK) {
        fprintf(stderr, "pstore-dump: %s\n", err);
    }

    ts_pstore_close(ps);

    return rc == TS_OK ? 0 : 1;
}
