/*
 * Copyright (C) ngx_tsdb authors
 *
 * Writes the version 1 WAL fixture 00000001.wal of this directory with
 * the ts_wal and ts_walrec of commit ed8646c, the last version that wrote
 * version 1 segments and layout-1 SAMPLES payloads.  test_wal.c's
 * test_replay_v1_fixture checks that the current code replays it.  Not
 * built by make; to regenerate:
 *
 *     mkdir -p /tmp/v1/out
 *     for f in ts_wal.c ts_wal.h ts_walrec.c ts_walrec.h ts_crc32c.c \
 *         ts_crc32c.h ts_error.c ts_error.h; do
 *         git show ed8646c:store/$f > /tmp/v1/$f; done
 *     cp gen.c /tmp/v1 && cd /tmp/v1
 *     gcc -std=c11 -D_GNU_SOURCE -I. gen.c ts_*.c -o gen && ./gen out
 *     cd - && cp /tmp/v1/out/wal/v1/00000001.wal .
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_wal.h"
#include "ts_walrec.h"


#define GEN_N  1000


static const ts_walrec_label_t  gen_labels[] = {
    { { (const uint8_t *) "", 0 }, { (const uint8_t *) "default", 7 } },
    { { (const uint8_t *) "__name__", 8 }, { (const uint8_t *) "up", 2 } },
    { { (const uint8_t *) "job", 3 }, { (const uint8_t *) "node", 4 } },
};

static const ts_walrec_series_t  gen_series[] = {
    { 5, 3, gen_labels },
    { 6, 2, gen_labels },
};

/* the same as test_wal.c's t_samples */
static const ts_walrec_sample_t  gen_edges[] = {
    { 5, 1700000000000, 0x3ff0000000000000ULL },
    { 6, 1700000000000, TS_WALREC_STALE_NAN },
    { 6, -1, 0x7ff8000000000001ULL },
    { 2, INT64_MIN, 0xfff0000000000000ULL },
    { UINT64_MAX, INT64_MAX, 0x8000000000000000ULL },
    { 0, 0, 0 },
    { 1000000, -86400000, 0x7ff0000000000000ULL },
};


static void
gen_record(ts_wal_t *w, uint8_t type, const ts_walrec_series_t *s,
    size_t ns, const ts_walrec_sample_t *m, size_t nm)
{
    int       rc;
    size_t    size, len;
    uint8_t  *p;

    size = s ? ts_walrec_series_size(s, ns) : ts_walrec_samples_size(m, nm);

    if (ts_wal_reserve(w, size, &p) != TS_OK) {
        exit(1);
    }

    rc = s ? ts_walrec_series_encode(p, size, s, ns, &len)
           : ts_walrec_samples_encode(p, size, m, nm, &len);

    if (rc != TS_OK || ts_wal_commit(w, type, len, NULL) != TS_OK) {
        exit(1);
    }
}


int
main(int argc, char **argv)
{
    size_t               i;
    ts_wal_t            *w;
    ts_wal_conf_t        conf;
    ts_walrec_sample_t  *m;
    char                 err[TS_WAL_ERR_MAX];

    if (argc != 2) {
        fprintf(stderr, "usage: gen DIR\n");
        return 2;
    }

    memset(&conf, 0, sizeof(conf));
    conf.path = argv[1];
    conf.name = "v1";
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;

    if (ts_wal_open(&w, &conf, err, sizeof(err)) != TS_OK) {
        fprintf(stderr, "gen: %s\n", err);
        return 1;
    }

    m = calloc(GEN_N, sizeof(ts_walrec_sample_t));
    if (m == NULL) {
        return 1;
    }

    /* one scrape: consecutive refs, a few timestamps, halves */

    for (i = 0; i < GEN_N; i++) {
        m[i].ref = 100000 + i;
        m[i].t = 1700000000000 + (int64_t) (i % 3);
        m[i].v = ts_walrec_f2u((double) i * 0.5);
    }

    gen_record(w, TS_WALREC_SERIES, gen_series, 2, NULL, 0);
    gen_record(w, TS_WALREC_SAMPLES, NULL, 0, gen_edges,
               sizeof(gen_edges) / sizeof(gen_edges[0]));
    gen_record(w, TS_WALREC_SAMPLES, NULL, 0, m, GEN_N);

    if (ts_wal_append(w, 9, "opaque", 6, NULL) != TS_OK
        || ts_wal_close(w) != TS_OK)
    {
        return 1;
    }

    free(m);

    return 0;
}
