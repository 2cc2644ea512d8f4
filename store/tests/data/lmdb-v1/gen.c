/*
 * Copyright (C) ngx_tsdb authors
 *
 * Writes the version-1 LMDB index fixture of this directory (data.mdb)
 * and what the version-1 read API answers for it (expected.txt, by
 * store/tests/db_dump.h), with the ts_db of commit 2903863, the last
 * one that wrote format version 1.  test_db.c's migration tests open a
 * copy with the current code, which converts it to version 2, and
 * compare the dump.  Not built by make; README.md says how to
 * regenerate it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_chunk.h"
#include "ts_db.h"
#include "db_dump.h"


#define GEN_A       300             /* series of tenant team-a */
#define GEN_B       40              /* series of tenant team-b */
#define GEN_BATCH   64
#define GEN_T0      1700000000000LL


static char  gen_long[498 + 1];         /* v1 plain key, v2 hashed */
static char  gen_huge[600 + 1];         /* hashed in both */
static char  gen_lname[520 + 1];        /* a hashed 'N' key */


static int
gen_cmp(const void *a, const void *b)
{
    const ts_label_t  *x = a, *y = b;
    size_t             n;
    int                c;

    n = x->name_len < y->name_len ? x->name_len : y->name_len;
    c = memcmp(x->name, y->name, n);

    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}


/* A real XOR chunk of n samples from t0, 15 s apart; its length. */

static size_t
gen_chunk(uint8_t *buf, size_t cap, int64_t t0, int n, int seed)
{
    int                 i;
    ts_xor_appender_t   a;

    if (ts_xor_init(&a, buf, cap) != TS_OK) {
        exit(1);
    }

    for (i = 0; i < n; i++) {
        if (ts_xor_append(&a, buf, t0 + i * 15000,
                          (double) (seed * 100 + i * (seed % 7 + 1)))
            != TS_OK)
        {
            exit(1);
        }
    }

    return ts_xor_bytes(&a);
}


static void
gen_die(const char *what, int rc, ts_db_t *db)
{
    fprintf(stderr, "gen: %s: %d %s\n", what, rc, db ? ts_db_errmsg(db) : "");
    exit(1);
}


static void
gen_tenant(ts_db_t *db, const char *tenant, int count, const char *prefix)
{
    int             i, rc, n;
    char            v[8][32];
    size_t          len;
    uint8_t         chunk[1024];
    uint32_t        idx;
    int64_t         t0;
    ts_label_t      l[8];
    ts_db_batch_t  *b;

    rc = ts_db_batch_create(&b);
    if (rc != TS_OK) {
        gen_die("batch_create", rc, NULL);
    }

    for (i = 0; i < count; i++) {
        n = 0;
        snprintf(v[0], sizeof(v[0]), "%s%d", prefix, i % 5);
        l[n++] = (ts_label_t) { "__name__", 8, v[0], strlen(v[0]) };
        snprintf(v[1], sizeof(v[1]), "i%d", i % 17);
        l[n++] = (ts_label_t) { "instance", 8, v[1], strlen(v[1]) };
        snprintf(v[2], sizeof(v[2]), "j%d", i % 3);
        l[n++] = (ts_label_t) { "job", 3, v[2], strlen(v[2]) };
        snprintf(v[3], sizeof(v[3]), "%d", i);
        l[n++] = (ts_label_t) { "idx", 3, v[3], strlen(v[3]) };

        if (i % 50 == 3) {
            l[n++] = (ts_label_t) { "long", 4, gen_long, 498 };
        }

        if (i % 70 == 5) {
            l[n++] = (ts_label_t) { "huge", 4, gen_huge, 600 };
        }

        if (i % 100 == 7) {
            l[n++] = (ts_label_t) { gen_lname, 520, "x", 1 };
        }

        qsort(l, n, sizeof(ts_label_t), gen_cmp);

        rc = ts_db_batch_series(b, tenant, strlen(tenant), l, n, 0, &idx);
        if (rc != TS_OK) {
            gen_die("batch_series", rc, NULL);
        }

        /* every 9th series has only an old chunk: retention deletes it;
           4 or 8 samples 15 s apart, every 4th series a second chunk */

        t0 = (i % 9 == 4) ? 1000 : GEN_T0 + (i % 40) * 1000;
        n = 4 + (i % 2) * 4;

        len = gen_chunk(chunk, sizeof(chunk), t0, n, i);
        rc = ts_db_batch_chunk(b, idx, t0, t0 + (n - 1) * 15000, 1, chunk,
                               len);

        if (rc == TS_OK && i % 9 != 4 && i % 4 == 0) {
            len = gen_chunk(chunk, sizeof(chunk), t0 + n * 15000, 4, i + 1);
            rc = ts_db_batch_chunk(b, idx, t0 + n * 15000,
                                   t0 + (n + 3) * 15000, 1, chunk, len);
        }

        if (rc != TS_OK) {
            gen_die("batch_chunk", rc, NULL);
        }

        if ((i + 1) % GEN_BATCH == 0 || i + 1 == count) {
            rc = ts_db_apply(db, b);
            if (rc != TS_OK) {
                gen_die("apply", rc, db);
            }

            ts_db_batch_reset(b);
        }
    }

    ts_db_batch_destroy(b);
}


int
main(int argc, char **argv)
{
    int                rc;
    FILE              *f;
    ts_db_t           *db;
    ts_db_conf_t       conf;
    ts_db_batch_t     *b;
    ts_db_metadata_t   md;
    ts_db_retention_t  st;
    char               err[TS_DB_ERR_MAX];

    if (argc != 3) {
        fprintf(stderr, "usage: gen DIR EXPECTED\n");
        return 2;
    }

    memset(gen_long, 'L', 498);
    memset(gen_huge, 'H', 600);
    memset(gen_lname, 'n', 520);

    memset(&conf, 0, sizeof(conf));
    conf.path = argv[1];
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;

    rc = ts_db_open(&db, &conf, err, sizeof(err));
    if (rc != TS_OK) {
        fprintf(stderr, "gen: open: %s\n", err);
        return 1;
    }

    gen_tenant(db, "team-a", GEN_A, "m");
    gen_tenant(db, "team-b", GEN_B, "node_");

    rc = ts_db_batch_create(&b);
    if (rc != TS_OK) {
        gen_die("batch_create", rc, NULL);
    }

    memset(&md, 0, sizeof(md));
    md.unit = "seconds";
    md.unit_len = 7;
    md.help = "the first family";
    md.help_len = 16;
    md.name = "m0";
    md.name_len = 2;
    md.type = 1;

    rc = ts_db_batch_metadata(b, "team-a", 6, &md);

    md.name = "node_1";
    md.name_len = 6;
    md.unit = "";
    md.unit_len = 0;
    md.type = 2;

    if (rc == TS_OK) {
        rc = ts_db_batch_metadata(b, "team-b", 6, &md);
    }

    if (rc == TS_OK) {
        rc = ts_db_apply(db, b);
    }

    if (rc != TS_OK) {
        gen_die("metadata", rc, db);
    }

    ts_db_batch_destroy(b);

    do {
        rc = ts_db_retention(db, 1000000000LL, 100, &st);
        if (rc != TS_OK) {
            gen_die("retention", rc, db);
        }
    } while (st.more);

    rc = ts_db_verify(db);
    if (rc != TS_OK) {
        gen_die("verify", rc, db);
    }

    f = fopen(argv[2], "w");
    if (f == NULL) {
        perror(argv[2]);
        return 1;
    }

    rc = dd_dump(f, db);
    if (rc != TS_OK) {
        gen_die("dump", rc, db);
    }

    fclose(f);
    ts_db_close(db);

    return 0;
}
