/*
 * Copyright (C) ngx_tsdb authors
 *
 * pstore-merge: the merge-latency half of bench/profile-bench.  Fills a
 * new profile store with N real profiles, then times ts_pstore_merge()
 * over all of them, as a query over N stored profiles does.
 *
 *     pstore-merge [-n N] [-r RUNS] [-m NAME] [-t TYPE] DIR FILE...
 *
 * DIR is a zone path (the store goes to DIR/profiles; it must not hold
 * one yet).  Profile i is FILE i % nfiles, stored under __name__ NAME
 * (process_cpu) with service_name=bench and pod=pod-<i % 10>, at time
 * T0 + i * 10 s, synced as the server stores them.  TYPE (default: NAME
 * with the first sample type of the first FILE) is merged RUNS times
 * (5) over every row; the figures are the fastest and the median run.
 * Output: one "key value" line per figure.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ts_pprof.h"
#include "ts_pstore.h"


#define PM_MAX_FILES  64
#define PM_T0         1700000000000000000LL


static double
pm_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static int
pm_cmp(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static int
pm_load(const char *path, ts_pprof_t *p)
{
    FILE            *f;
    size_t           len;
    uint8_t         *buf;
    ts_pprof_why_t   why;

    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "pstore-merge: cannot open %s\n", path);
        return -1;
    }

    buf = malloc(16 << 20);
    if (buf == NULL) {
        fclose(f);
        return -1;
    }

    len = fread(buf, 1, 16 << 20, f);
    fclose(f);

    ts_pprof_init(p, NULL, NULL);

    if (ts_pprof_parse(p, buf, len, &why) != TS_OK) {
        fprintf(stderr, "pstore-merge: %s: %s\n", path, why.msg);
        free(buf);
        return -1;
    }

    free(buf);

    return 0;
}


static int
pm_fill(ts_pstore_t *ps, const char *name, ts_pprof_t *prof,
    uint32_t nfiles, uint32_t n, double *secs)
{
    char               err[TS_PSTORE_ERR_MAX], pod[16];
    double             t0;
    uint32_t           i;
    ts_label_t         l[2];
    ts_pstore_put_t    in;

    l[0].name = "service_name";
    l[0].name_len = 12;
    l[0].value = "bench";
    l[0].value_len = 5;
    l[1].name = "pod";
    l[1].name_len = 3;
    l[1].value = pod;

    memset(&in, 0, sizeof(in));
    in.tenant = "anonymous";
    in.tenant_len = 9;
    in.name = name;
    in.name_len = strlen(name);
    in.labels = l;
    in.nlabels = 2;

    t0 = pm_now();

    for (i = 0; i < n; i++) {
        l[1].value_len = (uint32_t) snprintf(pod, sizeof(pod), "pod-%u",
                                             i % 10);
        prof[i % nfiles].time_nanos = PM_T0 + (int64_t) i * 10000000000LL;
        in.prof = &prof[i % nfiles];

        if (ts_pstore_put(ps, &in, NULL, err, sizeof(err)) != TS_OK) {
            fprintf(stderr, "pstore-merge: put: %s\n", err);
            return -1;
        }
    }

    *secs = pm_now() - t0;

    return 0;
}


int
main(int argc, char **argv)
{
    int                 c;
    char                err[TS_PSTORE_ERR_MAX], type[1024];
    double             *runs, fill;
    uint32_t            i, n, nruns, nfiles;
    uint64_t            rows, used;
    const char         *name, *tp;
    ts_pprof_t          prof[PM_MAX_FILES], out;
    ts_pstore_t        *ps;
    ts_pstore_conf_t    conf;
    ts_pstore_query_t   q;
    const ts_pprof_str_t  *s[4];

    n = 1000;
    nruns = 5;
    name = "process_cpu";
    tp = NULL;

    while ((c = getopt(argc, argv, "n:r:m:t:")) != -1) {
        switch (c) {
        case 'n': n = (uint32_t) atoi(optarg); break;
        case 'r': nruns = (uint32_t) atoi(optarg); break;
        case 'm': name = optarg; break;
        case 't': tp = optarg; break;
        default: goto usage;
        }
    }

    if (argc - optind < 2 || argc - optind - 1 > PM_MAX_FILES || n < 1
        || nruns < 1)
    {
        goto usage;
    }

    nfiles = (uint32_t) (argc - optind - 1);

    for (i = 0; i < nfiles; i++) {
        if (pm_load(argv[optind + 1 + i], &prof[i]) != 0) {
            return 1;
        }
    }

    if (tp == NULL) {
        s[0] = ts_pprof_string(&prof[0], prof[0].types[0].type);
        s[1] = ts_pprof_string(&prof[0], prof[0].types[0].unit);
        s[2] = ts_pprof_string(&prof[0], prof[0].period_type.type);
        s[3] = ts_pprof_string(&prof[0], prof[0].period_type.unit);
        snprintf(type, sizeof(type), "%s:%.*s:%.*s:%.*s:%.*s", name,
                 (int) s[0]->len, s[0]->data, (int) s[1]->len, s[1]->data,
                 (int) s[2]->len, s[2]->data, (int) s[3]->len, s[3]->data);
        tp = type;
    }

    (void) mkdir(argv[optind], 0700);

    memset(&conf, 0, sizeof(conf));
    conf.path = argv[optind];
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;

    if (ts_pstore_open(&ps, &conf, err, sizeof(err)) != TS_OK) {
        fprintf(stderr, "pstore-merge: %s\n", err);
        return 1;
    }

    if (pm_fill(ps, name, prof, nfiles, n, &fill) != 0) {
        return 1;
    }

    (void) ts_pstore_used(ps, &used);

    memset(&q, 0, sizeof(q));
    q.tenant = "anonymous";
    q.tenant_len = 9;
    q.type = tp;
    q.type_len = strlen(tp);
    q.from = INT64_MIN;
    q.until = INT64_MAX;

    runs = calloc(nruns, sizeof(double));
    if (runs == NULL) {
        return 1;
    }

    for (i = 0; i < nruns; i++) {
        ts_pprof_init(&out, NULL, NULL);
        runs[i] = pm_now();

        if (ts_pstore_merge(ps, &q, &out, &rows, err, sizeof(err))
            != TS_OK)
        {
            fprintf(stderr, "pstore-merge: merge: %s\n", err);
            return 1;
        }

        runs[i] = (pm_now() - runs[i]) * 1000;

        if (i + 1 == nruns) {
            printf("type %s\n", tp);
            printf("profiles_stored %u\n", n);
            printf("store_puts_per_second %.1f\n", n / fill);
            printf("store_used_bytes %llu\n", (unsigned long long) used);
            printf("store_bytes_per_profile %.0f\n", (double) used / n);
            printf("rows_merged %llu\n", (unsigned long long) rows);
            printf("merged_samples %u\n", out.nsamples);
            printf("merged_functions %u\n", out.nfunctions);
        }

        ts_pprof_free(&out);
    }

    qsort(runs, nruns, sizeof(double), pm_cmp);
    printf("merge_runs %u\n", nruns);
    printf("merge_ms_min %.2f\n", runs[0]);
    printf("merge_ms_median %.2f\n", runs[nruns / 2]);

    for (i = 0; i < nfiles; i++) {
        ts_pprof_free(&prof[i]);
    }

    free(runs);
    ts_pstore_close(ps);

    return 0;

usage:

    fprintf(stderr, "usage: pstore-merge [-n N] [-r RUNS] [-m NAME]"
            " [-t TYPE] DIR FILE...\n");
    return 2;
}
