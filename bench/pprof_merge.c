/*
 * Copyright (C) ngx_tsdb authors
 *
 * pprof-merge: merges pprof files through the store's API (ts_pprof_parse
 * then ts_pprof_merge) and writes one gzip-compressed profile, as
 * `go tool pprof -proto a b > merged` does.
 *
 *     pprof-merge [-u] [-q] [-l] [-d DEPTH] -o OUT FILE...
 *
 * Inputs may be gzip-compressed or plain.  -u writes plain protobuf; -q
 * prints nothing on success (otherwise one summary line on stderr); -l
 * lifts the decode limits (for big local files); -d sets max_depth.
 * Exit status 1 with the reason on stderr if any file is rejected.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_error.h"
#include "ts_pprof.h"


static int
pm_write(void *data, const char *p, size_t len)
{
    return fwrite(p, 1, len, data) == len ? 0 : -1;
}


static uint8_t *
pm_slurp(const char *path, size_t *len)
{
    FILE     *f;
    uint8_t  *buf, *b;
    size_t    cap, n;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    cap = 65536;
    *len = 0;
    buf = malloc(cap);

    while (buf != NULL) {
        n = fread(buf + *len, 1, cap - *len, f);
        *len += n;

        if (*len < cap) {
            break;
        }

        cap *= 2;
        b = realloc(buf, cap);
        if (b == NULL) {
            free(buf);
        }

        buf = b;
    }

    if (buf != NULL && ferror(f)) {
        free(buf);
        buf = NULL;
    }

    fclose(f);

    return buf;
}


static int
pm_add(ts_pprof_t *acc, const char *path, const ts_pprof_limits_t *lim)
{
    int             rc;
    size_t          len;
    uint8_t        *buf;
    ts_pprof_t      p;
    ts_pprof_why_t  why;

    buf = pm_slurp(path, &len);
    if (buf == NULL) {
        fprintf(stderr, "pprof-merge: %s: %s\n", path, strerror(errno));
        return -1;
    }

    ts_pprof_init(&p, NULL, lim);

    rc = ts_pprof_parse(&p, buf, len, &why);
    free(buf);

    if (rc == TS_OK) {
        rc = ts_pprof_merge(acc, &p, &why);
    }

    ts_pprof_free(&p);

    if (rc != TS_OK) {
        fprintf(stderr, "pprof-merge: %s: %s (%s)\n", path, why.msg,
                ts_pprof_reason_name(why.code));
        return -1;
    }

    return 0;
}


int
main(int argc, char **argv)
{
    int                 c, gz, quiet, rc;
    FILE               *out;
    const char         *path;
    ts_pprof_t          acc;
    ts_pprof_limits_t   lim;

    gz = 6;
    quiet = 0;
    path = NULL;
    ts_pprof_limits_default(&lim);

    while ((c = getopt(argc, argv, "uqld:o:")) != -1) {
        switch (c) {
        case 'u':
            gz = 0;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'l':
            lim.max_decompressed = 0;
            lim.max_samples = 0;
            lim.max_labels = 0;
            lim.max_memory = 0;
            break;
        case 'd':
            lim.max_depth = (uint32_t) strtoul(optarg, NULL, 10);
            break;
        case 'o':
            path = optarg;
            break;
        default:
            goto usage;
        }
    }

    if (path == NULL || optind == argc) {
        goto usage;
    }

    ts_pprof_init(&acc, NULL, &lim);

    for (c = optind; c < argc; c++) {
        if (pm_add(&acc, argv[c], &lim) != 0) {
            ts_pprof_free(&acc);
            return 1;
        }
    }

    out = fopen(path, "wb");
    if (out == NULL) {
        fprintf(stderr, "pprof-merge: %s: %s\n", path, strerror(errno));
        ts_pprof_free(&acc);
        return 1;
    }

    rc = ts_pprof_encode(&acc, gz, pm_write, out);

    if (fclose(out) != 0 && rc == TS_OK) {
        rc = TS_ERR_IO;
    }

    if (rc != TS_OK) {
        fprintf(stderr, "pprof-merge: %s: %s\n", path, ts_strerror(rc));
        ts_pprof_free(&acc);
        return 1;
    }

    if (!quiet) {
        fprintf(stderr, "pprof-merge: %u profiles, %u samples, %u "
                "locations, %u functions, %u mappings, %u strings\n",
                acc.nmerged, acc.nsamples, acc.nlocations, acc.nfunctions,
                acc.nmappings, acc.nstrings);
    }

    ts_pprof_free(&acc);

    return 0;

usage:

    fprintf(stderr, "usage: pprof-merge [-u] [-q] [-l] [-d DEPTH] -o OUT "
            "FILE...\n");
    return 2;
}
