/*
 * Copyright (C) ngx_tsdb authors
 *
 * What the WAL costs per sample (issue 3).  Two loads go through the
 * real writer the way the module writes them (a SERIES record for the
 * series a request brings first, then one SAMPLES record per request,
 * one flush per request) and are replayed and decoded back:
 *
 *   - bench/rwload's: node_exporter-like series (7 labels, counters that
 *     grow by up to 999, gauges that wander by +-100), batches of 1000;
 *     T_WAL_SERIES x T_WAL_ROUNDS, default 10000 x 60 (the bench runs
 *     100000 x 60).  The first round's refs are interleaved the way two
 *     workers creating series at the same time leave them.
 *   - the 40 requests Prometheus 2.42 sent (t/data/rw/).
 *
 * Printed: bytes per sample of the WAL files for layout 1 (the previous
 * encoding, sized here by its formula), layout 2, and layout 2 with
 * snappy records; encode and decode throughput.  Asserted: every sample
 * comes back, and layout 2 with snappy stays within 6 bytes per sample
 * on the rwload load.  Timings are printed, never asserted.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ts_labels.h"
#include "ts_rw.h"
#include "ts_wal.h"
#include "ts_walrec.h"


#define TW_BATCH        1000
#define TW_NAMES        101
#define TW_NLABELS      8               /* the tenant and 7 labels */
#define TW_TARGET       6.0             /* bytes per sample, issue 3 */
#define TW_RW_DATA      "t/data/rw/"
#define TW_HASH_SIZE    (1 << 16)


typedef struct {
    char                root[64];
    ts_wal_t           *w;
    size_t              nsamples;
    size_t              v1_bytes;       /* layout 1, headers included */
    double              encode_s;
    double              write_s;        /* all of tw_request() */
    size_t              encoded;        /* layout-2 payload bytes */
    ts_walrec_sample_t *samples;
    ts_walrec_series_t *series;
    ts_walrec_label_t  *labels;
} tw_run_t;


typedef struct {
    size_t              nsamples;
    size_t              payload;        /* SAMPLES payload bytes */
    uint64_t            sum;            /* of ref, t and value bits */
    double              decode_s;
    double              replay_s;       /* all of the replay */
} tw_replay_t;


typedef struct {
    uint64_t            key;
    uint64_t            ref;
} tw_slot_t;


/* bench/rwload.c's metric names: 'c' for a counter, 'g' for a gauge */
static const char  tw_kinds[TW_NAMES + 1] =
    "ccgccgccgccgccgccgccgccgccgccggggggggggggggggccgccgccgccgccgccgcc"
    "gccgccgccgccgccgggggggggggggggcggggc";

static const char  *tw_modes[] = {
    "idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"
};

static const char  *tw_regions[] = {
    "eu-west-1", "eu-central-1", "us-east-1", "us-west-2"
};


static double
tw_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


static size_t
tw_env(const char *name, size_t def)
{
    const char  *s;

    s = getenv(name);

    return s ? strtoul(s, NULL, 10) : def;
}


static size_t
tw_uvarint_len(uint64_t v)
{
    size_t  n;

    for (n = 1; v >= 0x80; n++) {
        v >>= 7;
    }

    return n;
}


static uint64_t
tw_zigzag(uint64_t v)
{
    return (v << 1) ^ (0 - (v >> 63));
}


/* The previous SAMPLES layout's size, from docs/format/wal.md. */
static size_t
tw_v1_size(const ts_walrec_sample_t *s, size_t n)
{
    size_t    i, size;
    uint64_t  dref, dt;

    size = tw_uvarint_len(n) + 8 * n;

    for (i = 0; i < n; i++) {
        dref = i ? tw_zigzag(s[i].ref - s[i - 1].ref) : s[i].ref;
        dt = tw_zigzag((uint64_t) s[i].t - (i ? (uint64_t) s[i - 1].t : 0));
        size += tw_uvarint_len(dref) + tw_uvarint_len(dt);
    }

    return size;
}


static int
tw_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;

    return remove(path);
}


static void
tw_open(tw_run_t *run, unsigned flags)
{
    ts_wal_conf_t  conf;
    char           err[TS_WAL_ERR_MAX];

    memset(run, 0, sizeof(*run));
    strcpy(run->root, "/tmp/ts_walrec_test.XXXXXX");
    assert_non_null(mkdtemp(run->root));

    memset(&conf, 0, sizeof(conf));
    conf.path = run->root;
    conf.name = "w-bench";
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;
    conf.flags = flags;
    assert_int_equal(ts_wal_open(&run->w, &conf, err, sizeof(err)), TS_OK);

    run->samples = malloc(TW_BATCH * 16 * sizeof(ts_walrec_sample_t));
    run->series = malloc(TW_BATCH * 16 * sizeof(ts_walrec_series_t));
    assert_non_null(run->samples);
    assert_non_null(run->series);
}


/* One request: a SERIES record if it has new series, then SAMPLES. */
static void
tw_request(tw_run_t *run, size_t nseries, size_t nsamples)
{
    size_t    size, len;
    uint8_t  *p;
    double    t0, t1;

    t1 = tw_now();

    if (nseries) {
        size = ts_walrec_series_size(run->series, nseries);
        assert_int_equal(ts_wal_reserve(run->w, size, &p), TS_OK);
        assert_int_equal(ts_walrec_series_encode(p, size, run->series,
                                                 nseries, &len), TS_OK);
        assert_int_equal(ts_wal_commit(run->w, TS_WALREC_SERIES, len, NULL),
                         TS_OK);
        run->v1_bytes += TS_WAL_REC_HDR + len;
    }

    t0 = tw_now();
    size = ts_walrec_samples_size(run->samples, nsamples);
    assert_int_equal(ts_wal_reserve(run->w, size, &p), TS_OK);
    assert_int_equal(ts_walrec_samples_encode(p, size, run->samples,
                                              nsamples, &len), TS_OK);
    run->encode_s += tw_now() - t0;
    assert_int_equal(len, size);
    assert_int_equal(ts_wal_commit(run->w, TS_WALREC_SAMPLES, len, NULL),
                     TS_OK);
    assert_int_equal(ts_wal_flush(run->w), TS_OK);

    run->write_s += tw_now() - t1;
    run->encoded += len;
    run->v1_bytes += TS_WAL_REC_HDR + tw_v1_size(run->samples, nsamples);
    run->nsamples += nsamples;
}


static int
tw_on_record(void *data, const ts_wal_rec_t *rec)
{
    double              t0;
    tw_replay_t        *rp;
    ts_walrec_sample_t  s;
    ts_walrec_reader_t  rd;

    rp = data;

    if (rec->type != TS_WALREC_SAMPLES) {
        return TS_OK;
    }

    t0 = tw_now();
    assert_int_equal(ts_walrec_samples_open(&rd, rec->payload, rec->len,
                                            NULL), TS_OK);

    while (ts_walrec_samples_next(&rd, &s) == TS_OK) {
        rp->sum += s.ref + (uint64_t) s.t + s.v;
        rp->nsamples++;
    }

    rp->decode_s += tw_now() - t0;
    rp->payload += rec->len;

    return TS_OK;
}


/* Closes the writer, replays, returns the bytes of the segment files. */
static size_t
tw_close(tw_run_t *run, tw_replay_t *rp)
{
    char                    dir[128], path[512];
    double                  t0;
    size_t                  bytes;
    DIR                    *d;
    struct stat             sb;
    struct dirent          *de;
    ts_wal_replay_t         r;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    assert_int_equal(ts_wal_close(run->w), TS_OK);
    snprintf(dir, sizeof(dir), "%s/wal/w-bench", run->root);

    bytes = 0;
    d = opendir(dir);
    assert_non_null(d);

    while ((de = readdir(d)) != NULL) {
        if (strstr(de->d_name, ".wal") != NULL) {
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
            assert_int_equal(stat(path, &sb), 0);
            bytes += (size_t) sb.st_size;
        }
    }

    closedir(d);

    memset(rp, 0, sizeof(*rp));
    memset(&st, 0, sizeof(st));
    r.record = tw_on_record;
    r.report = NULL;
    r.data = rp;
    r.flags = 0;
    t0 = tw_now();
    assert_int_equal(ts_wal_replay_dir(dir, &r, &st, err, sizeof(err)),
                     TS_OK);
    rp->replay_s = tw_now() - t0;
    assert_int_equal(st.corruptions, 0);
    assert_int_equal(rp->nsamples, run->nsamples);

    (void) nftw(run->root, tw_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(run->samples);
    free(run->series);
    free(run->labels);

    return bytes;
}


/* The node_exporter-like load. */

typedef struct {
    size_t              nseries;
    size_t              rounds;
    double             *value;
    uint64_t           *rng;
    uint64_t           *ref;
    char               *pool;           /* label strings */
    ts_walrec_label_t  *labels;         /* TW_NLABELS per series */
} tw_load_t;


static void
tw_label(ts_walrec_label_t *l, const char *name, const char *value)
{
    l->name.data = (const uint8_t *) name;
    l->name.len = strlen(name);
    l->value.data = (const uint8_t *) value;
    l->value.len = strlen(value);
}


/* As bench/rwload.c builds its series, in the order the glue logs them. */
static void
tw_load_init(tw_load_t *ld)
{
    size_t              i, var, target, g, k;
    char               *p;
    uint64_t            next;
    ts_walrec_label_t  *l;

    ld->nseries = tw_env("T_WAL_SERIES", 10000);
    ld->rounds = tw_env("T_WAL_ROUNDS", 60);
    ld->value = malloc(ld->nseries * sizeof(double));
    ld->rng = malloc(ld->nseries * sizeof(uint64_t));
    ld->ref = malloc(ld->nseries * sizeof(uint64_t));
    ld->pool = malloc(ld->nseries * 64);
    ld->labels = malloc(ld->nseries * TW_NLABELS * sizeof(*l));
    assert_true(ld->value && ld->rng && ld->ref && ld->pool && ld->labels);

    for (i = 0; i < ld->nseries; i++) {
        var = (i / TW_NAMES) % 8;
        target = i / (TW_NAMES * 8);
        p = ld->pool + i * 64;
        l = ld->labels + i * TW_NLABELS;

        snprintf(p, 32, "node_exporter_metric_%03zu_%s", i % TW_NAMES,
                 tw_kinds[i % TW_NAMES] == 'c' ? "total" : "bytes");
        snprintf(p + 32, 4, "%zu", var);
        snprintf(p + 36, 28, "10.%zu.%zu:9100", target / 250,
                 target % 250 + 1);

        tw_label(&l[0], "", "default");
        tw_label(&l[1], "__name__", p);
        tw_label(&l[2], "cpu", p + 32);
        tw_label(&l[3], "env", target % 5 ? "prod" : "staging");
        tw_label(&l[4], "instance", p + 36);
        tw_label(&l[5], "job", "node");
        tw_label(&l[6], "mode", tw_modes[var]);
        tw_label(&l[7], "region", tw_regions[target % 4]);

        ld->rng[i] = 0x9e3779b97f4a7c15ull * (i + 1);
        ld->value[i] = (double) (ld->rng[i] % 100000);
    }

    /* two workers create two batches at once: their refs interleave */

    next = 1;

    for (g = 0; g < ld->nseries; g += 2 * TW_BATCH) {
        for (k = 0; k < TW_BATCH; k++) {
            for (i = g + k; i < g + 2 * TW_BATCH; i += TW_BATCH) {
                if (i < ld->nseries) {
                    ld->ref[i] = next++;
                }
            }
        }
    }
}


static double
tw_next_value(tw_load_t *ld, size_t i)
{
    uint64_t  x;

    x = ld->rng[i];
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    ld->rng[i] = x;

    if (tw_kinds[i % TW_NAMES] == 'c') {
        ld->value[i] += (double) (x % 1000);

    } else {
        ld->value[i] += (double) (x % 201) - 100.0;
    }

    return ld->value[i];
}


static size_t
tw_load_run(tw_load_t *ld, unsigned flags, tw_run_t *run, tw_replay_t *rp)
{
    size_t  r, g, i, n;

    tw_open(run, flags);

    for (r = 0; r < ld->rounds; r++) {
        for (g = 0; g < ld->nseries; g += TW_BATCH) {
            n = ld->nseries - g < TW_BATCH ? ld->nseries - g : TW_BATCH;

            for (i = 0; i < n; i++) {
                run->samples[i].ref = ld->ref[g + i];
                run->samples[i].t = 1700000000000 + (int64_t) r * 15000;
                run->samples[i].v = ts_walrec_f2u(tw_next_value(ld, g + i));
                run->series[i].ref = ld->ref[g + i];
                run->series[i].nlabels = TW_NLABELS;
                run->series[i].labels = ld->labels + (g + i) * TW_NLABELS;
            }

            tw_request(run, r == 0 ? n : 0, n);
        }
    }

    return tw_close(run, rp);
}


static void
tw_load_free(tw_load_t *ld)
{
    free(ld->value);
    free(ld->rng);
    free(ld->ref);
    free(ld->pool);
    free(ld->labels);
}


static void
test_rwload(void **state)
{
    size_t       i, raw, z, n;
    uint64_t     sum;
    tw_load_t    ld;
    tw_run_t     run;
    tw_replay_t  rp, rpz;

    (void) state;

    tw_load_init(&ld);
    raw = tw_load_run(&ld, TS_WAL_NO_SNAPPY, &run, &rp);
    sum = rp.sum;
    n = run.nsamples;

    /* the same load again, from the same start, with snappy */

    for (i = 0; i < ld.nseries; i++) {
        ld.rng[i] = 0x9e3779b97f4a7c15ull * (i + 1);
        ld.value[i] = (double) (ld.rng[i] % 100000);
    }

    z = tw_load_run(&ld, 0, &run, &rpz);
    assert_int_equal(rpz.sum, sum);

    printf("wal, rwload %zu series x %zu rounds, %zu samples:\n"
           "  layout 1 %.2f B/sample, layout 2 %.2f, layout 2 + snappy"
           " %.2f\n"
           "  encode %.1f Msamples/s (%.0f MB/s of layout 2),"
           " decode %.1f Msamples/s (%.0f MB/s)\n"
           "  wal write (encode, snappy, CRC, write) %.1f Msamples/s,"
           " replay (read, CRC, unsnappy, decode) %.1f Msamples/s\n",
           ld.nseries, ld.rounds, n, (double) run.v1_bytes / n,
           (double) raw / n, (double) z / n,
           n / run.encode_s / 1e6, run.encoded / run.encode_s / 1e6,
           n / rpz.decode_s / 1e6, rpz.payload / rpz.decode_s / 1e6,
           n / run.write_s / 1e6, n / rpz.replay_s / 1e6);

    assert_true((double) z / n <= TW_TARGET);
    assert_true(z < raw && raw < run.v1_bytes);

    tw_load_free(&ld);
}


/* The Prometheus 2.42 requests: refs in order of first appearance. */

static uint64_t
tw_ref(tw_slot_t *tab, uint64_t hash, uint64_t *next, int *created)
{
    size_t  i;

    hash |= 1;
    i = hash & (TW_HASH_SIZE - 1);

    while (tab[i].key && tab[i].key != hash) {
        i = (i + 1) & (TW_HASH_SIZE - 1);
    }

    *created = tab[i].key == 0;

    if (*created) {
        tab[i].key = hash;
        tab[i].ref = (*next)++;
    }

    return tab[i].ref;
}


static void
tw_rw_request(tw_run_t *run, const ts_rw_request_t *req, tw_slot_t *tab,
    uint64_t *next)
{
    int                  created;
    size_t               ns, nm, nl, cap;
    uint32_t             i, k;
    uint64_t             ref;
    ts_rw_series_t      *s;
    ts_walrec_label_t   *l;

    ns = 0;
    nm = 0;
    nl = 0;
    cap = 0;

    for (i = 0; i < req->nseries; i++) {
        cap += req->series[i].nsamples + req->series[i].nlabels + 1;
    }

    free(run->labels);
    run->labels = malloc(cap * sizeof(ts_walrec_label_t) + 1);
    free(run->samples);
    run->samples = malloc(cap * sizeof(ts_walrec_sample_t) + 1);
    free(run->series);
    run->series = malloc(req->nseries * sizeof(ts_walrec_series_t) + 1);
    assert_true(run->labels && run->samples && run->series);

    for (i = 0; i < req->nseries; i++) {
        s = &req->series[i];

        if (s->reject != TS_REJECT_NONE || s->nsamples == 0) {
            continue;
        }

        ref = tw_ref(tab, s->hash, next, &created);

        if (created) {
            l = run->labels + nl;
            tw_label(&l[0], "", "default");

            for (k = 0; k < s->nlabels; k++) {
                l[k + 1].name.data = (const uint8_t *) s->labels[k].name;
                l[k + 1].name.len = s->labels[k].name_len;
                l[k + 1].value.data = (const uint8_t *) s->labels[k].value;
                l[k + 1].value.len = s->labels[k].value_len;
            }

            run->series[ns].ref = ref;
            run->series[ns].nlabels = s->nlabels + 1;
            run->series[ns].labels = l;
            nl += s->nlabels + 1;
            ns++;
        }

        for (k = 0; k < s->nsamples; k++) {
            run->samples[nm].ref = ref;
            run->samples[nm].t = s->samples[k].t;
            run->samples[nm].v = s->samples[k].v;
            nm++;
        }
    }

    if (nm) {
        tw_request(run, ns, nm);
    }
}


static size_t
tw_prometheus_run(unsigned flags, tw_run_t *run, tw_replay_t *rp)
{
    int               i;
    char              path[64];
    FILE             *f;
    size_t            zlen, len;
    uint8_t          *z, *body;
    uint64_t          next;
    tw_slot_t        *tab;
    ts_limits_t       lim;
    ts_rw_request_t   req;

    ts_limits_default(&lim);
    tab = calloc(TW_HASH_SIZE, sizeof(tw_slot_t));
    z = malloc(1 << 22);
    assert_true(tab && z);
    next = 1;
    tw_open(run, flags);

    for (i = 0; ; i++) {
        snprintf(path, sizeof(path), TW_RW_DATA "req%04d.snappy", i);

        f = fopen(path, "rb");
        if (f == NULL) {
            break;
        }

        zlen = fread(z, 1, 1 << 22, f);
        fclose(f);

        assert_int_equal(ts_rw_uncompress(z, zlen, 64 << 20, NULL, &body,
                                          &len, NULL), TS_OK);
        ts_rw_request_init(&req, NULL, &lim);
        assert_int_equal(ts_rw_decode(&req, TS_RW_V1, body, len), TS_OK);
        tw_rw_request(run, &req, tab, &next);
        ts_rw_request_free(&req);
        free(body);
    }

    assert_true(i >= 40);
    free(tab);
    free(z);

    return tw_close(run, rp);
}


static void
test_prometheus(void **state)
{
    size_t       raw, z, n, v1;
    tw_run_t     run;
    tw_replay_t  rp;

    (void) state;

    raw = tw_prometheus_run(TS_WAL_NO_SNAPPY, &run, &rp);
    z = tw_prometheus_run(0, &run, &rp);
    n = run.nsamples;
    v1 = run.v1_bytes;

    printf("wal, t/data/rw (Prometheus 2.42, %zu samples): layout 1 %.2f"
           " B/sample, layout 2 %.2f, layout 2 + snappy %.2f\n",
           n, (double) v1 / n, (double) raw / n, (double) z / n);

    assert_true(z < raw && raw < v1);
}


/*
 * ts_walrec_samples_bound(): never below the exact size, for samples
 * whose ref and time deltas take 10 varint bytes and values 8 bytes,
 * and a buffer of that size takes the encoding, of the exact length.
 */
static void
test_samples_bound(void **state)
{
    size_t              i, n, size, len;
    uint8_t            *buf;
    uint64_t            x;
    ts_walrec_sample_t  s[64];

    (void) state;

    x = 88172645463325252ULL;

    for (i = 0; i < 64; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s[i].ref = (i & 1) ? UINT64_MAX - i : i;
        s[i].t = (i & 1) ? INT64_MIN + (int64_t) i : INT64_MAX - (int64_t) i;
        s[i].v = x | 1;
    }

    for (n = 0; n <= 64; n++) {
        size = ts_walrec_samples_size(s, n);
        assert_true(size <= ts_walrec_samples_bound(n));

        buf = malloc(ts_walrec_samples_bound(n));
        assert_non_null(buf);
        assert_int_equal(ts_walrec_samples_encode(buf,
                                                  ts_walrec_samples_bound(n),
                                                  s, n, &len), TS_OK);
        assert_int_equal(len, size);
        free(buf);
    }
}

int
main(void)
{
    static const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_rwload),
        cmocka_unit_test(test_prometheus),
        cmocka_unit_test(test_samples_bound),
    };

    return cmocka_run_group_tests_name("walrec", tests, NULL, NULL);
}
