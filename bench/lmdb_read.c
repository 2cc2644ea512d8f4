/*
 * Copyright (C) ngx_tsdb authors
 *
 * The read cost of series records and the time of the version 1 -> 2
 * index migration, on the same data (bench/RESULTS.md, "Index format
 * version 2").  Not built by make: link it with the store objects of
 * the build to measure (a version-1 tree from `git archive 2903863`
 * after its `make build`, or this one):
 *
 *     T=<tree>/build/obj
 *     gcc -std=c11 -D_GNU_SOURCE -O2 -I<tree>/store bench/lmdb_read.c \
 *         $(ls $T/store/[a-z]*.o $T/proto/[a-z]*.o) \
 *         -o lmdb_read -lprotobuf-c -lsnappy -llmdb -lz -lpcre2-8 -lm \
 *         -lpthread
 *
 *     lmdb_read gen DIR N   N series of tenant "t" with rwload's 7 labels
 *                           and one 60-sample XOR chunk, 1000 a batch
 *     lmdb_read read DIR    every series of "t" (postings) and its
 *                           labels, 5 times: CPU seconds of the fastest
 *     lmdb_read open DIR    ts_db_open() (converts a version-1 index):
 *                           CPU and wall seconds, then ts_db_verify()
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ts_chunk.h"
#include "ts_db.h"

static double cpu(void);
static double wall(void);
static ts_db_t *open_db(const char *dir);


static double
cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double
wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static ts_db_t *
open_db(const char *dir)
{
    char          err[TS_DB_ERR_MAX];
    ts_db_t      *db;
    ts_db_conf_t  c;

    memset(&c, 0, sizeof(c));
    c.path = dir;
    c.uid = (uid_t) -1;
    c.gid = (gid_t) -1;
    c.map_size = (size_t) 1 << 30;
    if (ts_db_open(&db, &c, err, sizeof(err)) != TS_OK) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
    return db;
}

static const char  *names[] = { "node_cpu_seconds_total", "node_memory_x",
    "node_disk_io", "node_net_rx", "node_load1" };
static const char  *modes[] = { "idle", "user", "system", "iowait", "irq",
    "softirq", "steal", "nice" };
static const char  *regions[] = { "eu-west", "us-east", "ap-south", "sa" };

int
main(int argc, char **argv)
{
    int              i, k, r;
    size_t           var, target;
    double           c0, w0, best;
    char             cpu_s[16], inst[32];
    uint8_t          buf[2048];
    size_t           len;
    uint32_t         idx, tid, n, nl;
    uint64_t         id, bytes;
    ts_db_t         *db;
    ts_label_t       l[8];
    ts_db_batch_t   *b;
    ts_db_rtxn_t    *t;
    ts_db_postings_t p;
    ts_xor_appender_t a;

    db = NULL;
    if (argc >= 4 && strcmp(argv[1], "gen") == 0) {
        db = open_db(argv[2]);
        n = (uint32_t) atoi(argv[3]);
        ts_db_batch_create(&b);
        for (i = 0; i < (int) n; i++) {
            var = (i / 5) % 8;
            target = i / 40;
            snprintf(cpu_s, sizeof(cpu_s), "%zu", var);
            snprintf(inst, sizeof(inst), "10.%zu.%zu:9100", target / 250,
                     target % 250 + 1);
            l[0] = (ts_label_t) { "__name__", 8, names[i % 5],
                                  strlen(names[i % 5]) };
            l[1] = (ts_label_t) { "cpu", 3, cpu_s, strlen(cpu_s) };
            l[2] = (ts_label_t) { "env", 3, target % 5 ? "prod" : "staging",
                                  target % 5 ? 4 : 7 };
            l[3] = (ts_label_t) { "instance", 8, inst, strlen(inst) };
            l[4] = (ts_label_t) { "job", 3, "node", 4 };
            l[5] = (ts_label_t) { "mode", 4, modes[var], strlen(modes[var]) };
            l[6] = (ts_label_t) { "region", 6, regions[target % 4],
                                  strlen(regions[target % 4]) };
            ts_db_batch_series(b, "t", 1, l, 7, 0, &idx);
            ts_xor_init(&a, buf, sizeof(buf));
            for (k = 0; k < 60; k++) {
                ts_xor_append(&a, buf, 1700000000000LL + k * 15000,
                              (double) (i + k * (i % 13)));
            }
            len = ts_xor_bytes(&a);
            ts_db_batch_chunk(b, idx, 1700000000000LL,
                              1700000000000LL + 59 * 15000, 1, buf, len);
            if ((i + 1) % 1000 == 0 || i + 1 == (int) n) {
                if (ts_db_apply(db, b) != TS_OK) {
                    fprintf(stderr, "apply: %s\n", ts_db_errmsg(db));
                    return 1;
                }
                ts_db_batch_reset(b);
            }
        }
        ts_db_batch_destroy(b);

    } else if (argc >= 3 && strcmp(argv[1], "read") == 0) {
        db = open_db(argv[2]);
        best = 1e9;
        for (r = 0; r < 5; r++) {
            c0 = cpu();
            bytes = 0;
            n = 0;
            ts_db_rtxn_begin(db, &t);
            ts_db_tenant(t, "t", 1, &tid);
            ts_db_postings_open(t, &p, tid, NULL, 0, NULL, 0);
            while (ts_db_postings_next(&p, &id) == 1) {
                if (ts_db_series_labels(t, id, NULL, l, 8, &nl) != TS_OK) {
                    return 1;
                }
                for (k = 0; k < (int) nl; k++) {
                    bytes += l[k].name_len + l[k].value_len;
                }
                n++;
            }
            ts_db_postings_close(&p);
            ts_db_rtxn_abort(t);
            c0 = cpu() - c0;
            best = c0 < best ? c0 : best;
        }
        printf("read: %u series, %llu label bytes, best of 5: %.3f CPU s"
               " (%.0f ns/series)\n", n, (unsigned long long) bytes, best,
               best * 1e9 / n);

    } else if (argc >= 3 && strcmp(argv[1], "open") == 0) {
        c0 = cpu();
        w0 = wall();
        db = open_db(argv[2]);
        printf("open: %.3f CPU s, %.3f s\n", cpu() - c0, wall() - w0);
        if (ts_db_verify(db) != TS_OK) {
            fprintf(stderr, "verify: %s\n", ts_db_errmsg(db));
            return 1;
        }
    }

    if (db != NULL) {
        ts_db_close(db);
    }
    return 0;
}
