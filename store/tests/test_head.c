/*
 * Copyright (C) ngx_tsdb authors
 *
 * ts_head: tenants, series, appends and their rejections, chunk cuts,
 * reads, postings, full regions, and several processes sharing one
 * MAP_SHARED region, some of them SIGKILLed mid-write; the same for
 * native histogram chunks.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts_chunk.h"
#include "ts_head.h"


#define T_SIZE  (4 * 1024 * 1024)
#define T_STALE 0x7ff0000000000002ull


#define T_READ_MAX  (1 << 20)

typedef struct {
    int64_t    t[T_READ_MAX];
    uint64_t   v[T_READ_MAX];
    size_t     n;
    size_t     chunks;
} t_read_t;


static void     *t_mem;
static size_t    t_size;
static t_read_t  t_rd;
static t_read_t *rd = &t_rd;
static uint32_t  t_max_series;


static int
t_alive(int64_t pid)
{
    return kill((pid_t) pid, 0) == 0;
}


static int
t_setup_size(size_t size)
{
    t_size = size;
    t_mem = mmap(NULL, t_size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    return t_mem == MAP_FAILED ? -1 : 0;
}


static int
t_setup(void **state)
{
    (void) state;

    return t_setup_size(T_SIZE);
}


static int
t_setup_big(void **state)
{
    (void) state;

    return t_setup_size(16 * T_SIZE);
}


static int
t_teardown(void **state)
{
    (void) state;

    munmap(t_mem, t_size);

    return 0;
}


static void
t_open(ts_head_t *h)
{
    assert_int_equal(ts_head_open(h, t_mem, t_size, getpid(), t_alive),
                     TS_OK);
}


static uint64_t
t_bits(double d)
{
    uint64_t  v;

    memcpy(&v, &d, sizeof(v));

    return v;
}


/* labels "__name__"=name, "job"=job, "i"=inst; hash over their bytes */

static int
t_series(ts_head_t *h, uint32_t tenant, const char *name, const char *job,
    const char *inst, uint32_t *ref)
{
    uint64_t    hash;
    ts_label_t  l[3];

    l[0].name = "__name__";
    l[0].value = name;
    l[1].name = "i";
    l[1].value = inst;
    l[2].name = "job";
    l[2].value = job;

    hash = 1469598103934665603ull;

    for (int i = 0; i < 3; i++) {
        l[i].name_len = (uint32_t) strlen(l[i].name);
        l[i].value_len = (uint32_t) strlen(l[i].value);

        for (const char *p = l[i].value; *p; p++) {
            hash = (hash ^ (uint8_t) *p) * 1099511628211ull;
        }

        hash = (hash ^ 0xff) * 1099511628211ull;
    }

    return ts_head_series(h, tenant, l, 3, hash, t_max_series, ref);
}


static int
t_collect(void *data, const ts_head_chunk_t *c)
{
    int            rc;
    int64_t        t;
    uint64_t       v;
    t_read_t      *r;
    ts_xor_iter_t  it;

    r = data;
    r->chunks++;
    ts_xor_iter_init(&it, c->data, c->len);

    while ((rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1) {
        assert_true(r->n < T_READ_MAX);
        r->t[r->n] = t;
        r->v[r->n] = v;
        r->n++;
    }

    assert_int_equal(rc, 0);

    return 0;
}


static void
t_read(ts_head_t *h, uint32_t ref, int64_t mint, int64_t maxt, t_read_t *r)
{
    r->n = 0;
    r->chunks = 0;
    assert_int_equal(ts_head_read(h, ref, mint, maxt, t_collect, r), TS_OK);
}


static void
test_too_small(void **state)
{
    ts_head_t  h;

    (void) state;

    assert_int_equal(ts_head_open(&h, t_mem, 4096, 1, NULL),
                     TS_ERR_INVALID);
}


static void
test_reopen_keeps_data(void **state)
{
    uint32_t   tn, r, r2;
    ts_head_t  h, h2;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "a", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h, tn, "up", "j", "1", &r), 1);
    assert_int_equal(ts_head_append(&h, r, 1000, t_bits(1)), TS_OK);

    t_open(&h2);
    assert_int_equal(ts_head_tenant_find(&h2, "a", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h2, tn, "up", "j", "1", &r2), 0);
    assert_int_equal(r2, r);

    t_read(&h2, r, 0, 2000, rd);
    assert_int_equal(rd->n, 1);
}


static void
test_tenants(void **state)
{
    uint32_t   a, b, a2, ra, rb;
    ts_head_t  h;

    (void) state;

    t_open(&h);

    assert_int_equal(ts_head_tenant_find(&h, "a", 1, &a), TS_ERR_NOTFOUND);
    assert_int_equal(ts_head_tenant(&h, "a", 1, &a), TS_OK);
    assert_int_equal(ts_head_tenant(&h, "bb", 2, &b), TS_OK);
    assert_int_equal(ts_head_tenant(&h, "a", 1, &a2), TS_OK);
    assert_int_equal(a, a2);
    assert_int_not_equal(a, b);
    assert_int_equal(ts_head_tenant(&h, "", 0, &a2), TS_ERR_INVALID);

    /* the same labels in two tenants are two series */

    assert_int_equal(t_series(&h, a, "up", "j", "1", &ra), 1);
    assert_int_equal(t_series(&h, b, "up", "j", "1", &rb), 1);
    assert_int_not_equal(ra, rb);

    assert_int_equal(t_series(&h, 99, "up", "j", "1", &ra),
                     TS_ERR_INVALID);
}


static void
test_series_labels(void **state)
{
    uint32_t    tn, r, n;
    ts_label_t  l[8];
    ts_head_t   h;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h, tn, "up", "node", "host:9100", &r), 1);

    assert_int_equal(ts_head_labels(&h, r, l, 8, &n), TS_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(l[0].name, "__name__", 8);
    assert_memory_equal(l[1].value, "host:9100", 9);
    assert_int_equal(l[2].value_len, 4);

    assert_int_equal(ts_head_labels(&h, r, l, 2, &n), TS_ERR_LIMIT);
    assert_int_equal(ts_head_labels(&h, r + 1, l, 8, &n), TS_ERR_INVALID);
}


/*
 * ts_head_find_many(): over several windows, finds what ts_head_series()
 * created, with its refs, and nothing else: not a missing series, not
 * another tenant's, not one whose hash matches but labels differ (or
 * are a prefix), and nothing in a tenant that does not exist.
 */

#define T_FIND_N  200

static void
test_find_many(void **state)
{
    static char     vals[T_FIND_N][16];
    uint32_t        a, b, refs[T_FIND_N], rb;
    size_t          i;
    ts_label_t      l[T_FIND_N][2], other[2];
    ts_head_key_t   k[T_FIND_N + 4];
    ts_head_t       h;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "a", 1, &a), TS_OK);
    assert_int_equal(ts_head_tenant(&h, "b", 1, &b), TS_OK);

    for (i = 0; i < T_FIND_N; i++) {
        snprintf(vals[i], sizeof(vals[i]), "s%zu", i);
        l[i][0] = (ts_label_t) { "__name__", 8, "up", 2 };
        l[i][1] = (ts_label_t) { "i", 1, vals[i],
                                 (uint32_t) strlen(vals[i]) };

        k[i].labels = l[i];
        k[i].n = 2;
        k[i].hash = ts_labels_hash(l[i], 2);

        /* every third one is not created */
        if (i % 3 == 2) {
            refs[i] = 0;
            continue;
        }

        assert_int_equal(ts_head_series(&h, i % 7 == 6 ? b : a, l[i], 2,
                                         k[i].hash, 0, &refs[i]), 1);

        if (i % 7 == 6) {
            refs[i] = 0;
        }
    }

    /* the hash of series 0 with other labels; series 1 cut to a prefix */
    other[0] = (ts_label_t) { "__name__", 8, "up", 2 };
    other[1] = (ts_label_t) { "i", 1, "zz", 2 };
    k[T_FIND_N] = (ts_head_key_t) { other, 2, 7, k[0].hash };
    k[T_FIND_N + 1] = (ts_head_key_t) { l[1], 1, 7, k[1].hash };
    k[T_FIND_N + 2] = (ts_head_key_t) { l[1], 1, 7,
                                        ts_labels_hash(l[1], 1) };
    k[T_FIND_N + 3] = k[0];

    ts_head_find_many(&h, a, k, T_FIND_N + 4);

    for (i = 0; i < T_FIND_N; i++) {
        assert_int_equal(k[i].ref, refs[i]);
    }

    assert_int_not_equal(refs[0], 0);
    assert_int_equal(k[T_FIND_N].ref, 0);
    assert_int_equal(k[T_FIND_N + 1].ref, 0);
    assert_int_equal(k[T_FIND_N + 2].ref, 0);
    assert_int_equal(k[T_FIND_N + 3].ref, refs[0]);

    /* tenant b finds its own: series 6 */
    ts_head_find_many(&h, b, &k[6], 1);
    assert_int_equal(ts_head_series(&h, b, l[6], 2, k[6].hash, 0, &rb), 0);
    assert_int_equal(k[6].ref, rb);

    ts_head_find_many(&h, 99, k, T_FIND_N);

    for (i = 0; i < T_FIND_N; i++) {
        assert_int_equal(k[i].ref, 0);
    }
}


typedef struct {
    const char  *name;
    int64_t      t;
    double       v;
    int          want;
} t_append_case_t;


static void
test_append_rules(void **state)
{
    size_t     i;
    uint32_t   tn, r;
    ts_head_t  h;

    static const t_append_case_t  cases[] = {
        { "first sample", 1000, 1, TS_OK },
        { "in order", 2000, 2, TS_OK },
        { "retry of the last sample", 2000, 2, TS_HEAD_DUPLICATE },
        { "same time, other value", 2000, 3, TS_ERR_DUPLICATE },
        { "retry of an older sample", 1000, 1, TS_HEAD_DUPLICATE },
        { "older, other value", 1000, 5, TS_ERR_DUPLICATE },
        { "older, absent", 1500, 1, TS_ERR_OUT_OF_ORDER },
        { "before the first", 500, 1, TS_ERR_OUT_OF_ORDER },
        { "after the rejections", 3000, 3, TS_OK },
    };

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h, tn, "c", "j", "1", &r), 1);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (ts_head_append(&h, r, cases[i].t, t_bits(cases[i].v))
            != cases[i].want)
        {
            fail_msg("case \"%s\"", cases[i].name);
        }
    }

    t_read(&h, r, 0, 10000, rd);
    assert_int_equal(rd->n, 3);
    assert_int_equal(rd->t[2], 3000);
}


/*
 * ts_head_append_n(): the results of ts_head_append() sample by sample
 * in one take of the lock, TS_ERR_TOO_OLD before oldest, and the head's
 * sample total grows only by what ts_head_count_samples() is given.
 */
static void
test_append_n(void **state)
{
    int               rcs[8];
    size_t            n, stored;
    uint32_t          tn, r;
    ts_head_t         h;
    ts_head_stats_t   st;
    ts_head_sample_t  smp[8];

    static const int  want[] = {
        TS_ERR_TOO_OLD, TS_OK, TS_OK, TS_HEAD_DUPLICATE, TS_ERR_DUPLICATE,
        TS_ERR_OUT_OF_ORDER, TS_OK
    };

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h, tn, "c", "j", "1", &r), 1);

    smp[0] = (ts_head_sample_t) { 500, t_bits(0) };     /* too old */
    smp[1] = (ts_head_sample_t) { 1000, t_bits(1) };
    smp[2] = (ts_head_sample_t) { 2000, t_bits(2) };
    smp[3] = (ts_head_sample_t) { 2000, t_bits(2) };    /* retry */
    smp[4] = (ts_head_sample_t) { 2000, t_bits(3) };
    smp[5] = (ts_head_sample_t) { 1500, t_bits(1) };
    smp[6] = (ts_head_sample_t) { 3000, t_bits(3) };

    stored = 0;
    n = ts_head_append_n(&h, r, smp, 7, 1000, rcs, &stored);
    assert_int_equal(n, 7);
    assert_int_equal(stored, 3);
    assert_memory_equal(rcs, want, sizeof(want));

    ts_head_stats(&h, &st);
    assert_int_equal(st.samples, 0);
    ts_head_count_samples(&h, stored);
    ts_head_stats(&h, &st);
    assert_int_equal(st.samples, 3);

    t_read(&h, r, 0, 10000, rd);
    assert_int_equal(rd->n, 3);
    assert_int_equal(rd->t[0], 1000);
    assert_int_equal(rd->t[2], 3000);

    /* no such series: every sample invalid, nothing stored */
    stored = 0;
    assert_int_equal(ts_head_append_n(&h, r + 100, smp, 2, INT64_MIN, rcs,
                                      &stored), 2);
    assert_int_equal(rcs[0], TS_ERR_INVALID);
    assert_int_equal(rcs[1], TS_ERR_INVALID);
    assert_int_equal(stored, 0);
}

static void
test_chunks_and_ranges(void **state)
{
    int64_t    i;
    uint32_t   tn, r;
    ts_head_t  h;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h, tn, "c", "j", "1", &r), 1);

    for (i = 0; i < 1000; i++) {
        assert_int_equal(ts_head_append(&h, r, 15000 * i,
                                        i == 500 ? T_STALE
                                                 : t_bits((double) i)),
                         TS_OK);
    }

    /* 120 samples a chunk at most */

    t_read(&h, r, INT64_MIN, INT64_MAX, rd);
    assert_int_equal(rd->n, 1000);
    assert_true(rd->chunks >= 9);

    for (i = 0; i < 1000; i++) {
        assert_int_equal(rd->t[i], 15000 * i);
        assert_true(rd->v[i] == (i == 500 ? T_STALE : t_bits((double) i)));
    }

    /* chunks overlapping the range, whole */

    t_read(&h, r, 15000 * 300, 15000 * 310, rd);
    assert_true(rd->n >= 11 && rd->n <= 240);
    assert_true(rd->t[0] <= 15000 * 300);
    assert_true(rd->t[rd->n - 1] >= 15000 * 310);

    t_read(&h, r, 15000 * 2000, 15000 * 3000, rd);
    assert_int_equal(rd->n, 0);
}


typedef struct {
    char      seen[64][16];
    int       n;
} t_strs_t;


static int
t_str(void *data, const char *s, size_t len)
{
    t_strs_t  *st;

    st = data;
    assert_true(st->n < 64 && len < 16);
    memcpy(st->seen[st->n], s, len);
    st->seen[st->n][len] = '\0';
    st->n++;

    return 0;
}


static int
t_has(t_strs_t *st, const char *s)
{
    int  i;

    for (i = 0; i < st->n; i++) {
        if (strcmp(st->seen[i], s) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
test_postings(void **state)
{
    int            k;
    uint32_t       tn, t2, r[6], ref, prev;
    t_strs_t       st;
    ts_head_t      h;
    ts_postings_t  p;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    assert_int_equal(ts_head_tenant(&h, "u", 1, &t2), TS_OK);

    assert_int_equal(t_series(&h, tn, "up", "node", "1", &r[0]), 1);
    assert_int_equal(t_series(&h, tn, "up", "prom", "1", &r[1]), 1);
    assert_int_equal(t_series(&h, tn, "x", "node", "2", &r[2]), 1);
    assert_int_equal(t_series(&h, t2, "up", "node", "1", &r[3]), 1);

    /* all of a tenant, ascending */

    ts_head_postings(&h, tn, NULL, 0, NULL, 0, &p);
    for (k = 0, prev = 0; ts_postings_next(&p, &ref) == 1; k++) {
        assert_true(ref > prev);
        prev = ref;
    }
    assert_int_equal(k, 3);

    ts_head_postings(&h, tn, "job", 3, "node", 4, &p);
    assert_int_equal(ts_postings_next(&p, &ref), 1);
    assert_int_equal(ref, r[0]);
    assert_int_equal(ts_postings_next(&p, &ref), 1);
    assert_int_equal(ref, r[2]);
    assert_int_equal(ts_postings_next(&p, &ref), 0);

    ts_head_postings(&h, tn, "job", 3, NULL, 0, &p);
    for (k = 0; ts_postings_next(&p, &ref) == 1; k++) { /* void */ }
    assert_int_equal(k, 3);

    ts_head_postings(&h, tn, "job", 3, "none", 4, &p);
    assert_int_equal(ts_postings_next(&p, &ref), 0);

    ts_head_postings(&h, t2, "job", 3, "prom", 4, &p);
    assert_int_equal(ts_postings_next(&p, &ref), 0);

    memset(&st, 0, sizeof(st));
    assert_int_equal(ts_head_label_names(&h, tn, t_str, &st), TS_OK);
    assert_int_equal(st.n, 3);
    assert_true(t_has(&st, "__name__") && t_has(&st, "job")
                && t_has(&st, "i"));

    memset(&st, 0, sizeof(st));
    assert_int_equal(ts_head_label_values(&h, tn, "job", 3, t_str, &st),
                     TS_OK);
    assert_int_equal(st.n, 2);
    assert_true(t_has(&st, "node") && t_has(&st, "prom"));
}


static void
test_postings_many_blocks(void **state)
{
    int            i, k;
    char           inst[16];
    uint32_t       tn, r, ref, prev;
    ts_head_t      h;
    ts_postings_t  p;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);

    for (i = 0; i < 1000; i++) {
        snprintf(inst, sizeof(inst), "%d", i);
        assert_int_equal(t_series(&h, tn, "m", "j", inst, &r), 1);
    }

    ts_head_postings(&h, tn, "__name__", 8, "m", 1, &p);
    for (k = 0, prev = 0; ts_postings_next(&p, &ref) == 1; k++) {
        assert_true(ref > prev);
        prev = ref;
    }
    assert_int_equal(k, 1000);
}


static void
test_tenant_limit(void **state)
{
    uint32_t   a, b, r;
    ts_head_t  h;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "a", 1, &a), TS_OK);
    assert_int_equal(ts_head_tenant(&h, "b", 1, &b), TS_OK);

    t_max_series = 2;
    assert_int_equal(t_series(&h, a, "m", "j", "1", &r), 1);
    assert_int_equal(t_series(&h, a, "m", "j", "2", &r), 1);
    assert_int_equal(t_series(&h, a, "m", "j", "3", &r), TS_ERR_LIMIT);

    /* existing series stay writable, other tenants are not affected */
    assert_int_equal(t_series(&h, a, "m", "j", "1", &r), 0);
    assert_int_equal(t_series(&h, b, "m", "j", "3", &r), 1);
    t_max_series = 0;

    assert_int_equal(ts_head_tenant_series(&h, a), 2);
    assert_int_equal(ts_head_tenant_series(&h, b), 1);
}


static void
test_full(void **state)
{
    int              i, rc;
    char             inst[16];
    uint32_t         tn, r;
    ts_head_t        h;
    ts_head_stats_t  st;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    ts_head_stats(&h, &st);

    for (i = 0, rc = 1; rc == 1; i++) {
        snprintf(inst, sizeof(inst), "%d", i);
        rc = t_series(&h, tn, "m", "j", inst, &r);
        if (rc == 1) {
            rc = ts_head_append(&h, r, 1000, t_bits(1)) == TS_OK ? 1 : -100;
        }
    }

    assert_true(rc == TS_ERR_FULL || rc == -100);
    assert_true((uint64_t) i > st.series_max / 2);

    /* what was stored stays readable and appendable */

    assert_int_equal(t_series(&h, tn, "m", "j", "0", &r), 0);
    assert_int_equal(ts_head_append(&h, r, 2000, t_bits(2)), TS_OK);
}


static void
t_child_append(ts_head_t *h, uint32_t ref, int64_t from, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (ts_head_append(h, ref, from + i, t_bits(i)) != TS_OK) {
            _exit(2);
        }
    }
}


static void
test_fork_writers(void **state)
{
    int        i, st;
    uint32_t   tn, r[2];
    pid_t      pid[2];
    ts_head_t  h;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h, tn, "a", "j", "1", &r[0]), 1);
    assert_int_equal(t_series(&h, tn, "b", "j", "1", &r[1]), 1);

    for (i = 0; i < 2; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);

        if (pid[i] == 0) {
            ts_head_t  ch;

            if (ts_head_open(&ch, t_mem, t_size, getpid(), t_alive)
                != TS_OK)
            {
                _exit(1);
            }

            t_child_append(&ch, r[i], 1, 3000);
            _exit(0);
        }
    }

    for (i = 0; i < 2; i++) {
        assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }

    for (i = 0; i < 2; i++) {
        t_read(&h, r[i], INT64_MIN, INT64_MAX, rd);
        assert_int_equal(rd->n, 3000);
    }
}


/*
 * Children append to one series and create series until SIGKILLed at a
 * random moment; afterwards the parent can still append and create, and
 * everything reads back in order, with every series in its postings.
 */

static void
test_fork_sigkill(void **state)
{
    int            round, k, st, fd[2];
    char           inst[32], c;
    int64_t        last;
    uint32_t       tn, r, ref, n;
    pid_t          pid;
    ts_head_t      h;
    ts_postings_t  p;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h, tn, "k", "j", "1", &r), 1);
    srand(7);

    for (round = 0; round < 20; round++) {
        /*
         * The child says when its first sample is in, so that every
         * round appends at least one however loaded the machine is.
         */
        assert_int_equal(pipe(fd), 0);
        pid = fork();
        assert_true(pid >= 0);

        if (pid == 0) {
            ts_head_t  ch;
            int64_t    t;
            uint32_t   x;

            if (ts_head_open(&ch, t_mem, t_size, getpid(), t_alive)
                != TS_OK)
            {
                _exit(1);
            }

            close(fd[0]);

            for (t = 1000000 * (round + 1); ; t++) {
                (void) ts_head_append(&ch, r, t, t_bits((double) t));

                if (t == 1000000 * (round + 1)) {
                    c = 1;
                    if (write(fd[1], &c, 1) != 1) {
                        _exit(1);
                    }
                }

                if (t % 8 == 0) {
                    snprintf(inst, sizeof(inst), "%d-%lld", round,
                             (long long) t);
                    (void) t_series(&ch, tn, "s", "j", inst, &x);
                }
            }
        }

        close(fd[1]);
        assert_int_equal(read(fd[0], &c, 1), 1);
        close(fd[0]);

        usleep(1000 + rand() % 5000);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &st, 0), pid);
    }

    snprintf(inst, sizeof(inst), "after");
    assert_int_equal(t_series(&h, tn, "s", "j", inst, &ref), 1);
    assert_int_equal(ts_head_append(&h, r, INT64_MAX / 2, t_bits(1)), TS_OK);

    t_read(&h, r, INT64_MIN, INT64_MAX, rd);
    assert_true(rd->n > 20);

    for (k = 1, last = rd->t[0]; k < (int) rd->n; k++) {
        assert_true(rd->t[k] > last);
        last = rd->t[k];
    }

    assert_int_equal(rd->t[rd->n - 1], INT64_MAX / 2);

    /* every series that exists is in the postings of its name */

    ts_head_postings(&h, tn, "__name__", 8, "s", 1, &p);
    for (n = 0; ts_postings_next(&p, &ref) == 1; n++) { /* void */ }

    ts_head_postings(&h, tn, NULL, 0, NULL, 0, &p);
    for (k = 0; ts_postings_next(&p, &ref) == 1; k++) { /* void */ }

    assert_int_equal(n + 1, (uint32_t) k);
}


static void
test_epoch(void **state)
{
    int        st;
    pid_t      pid;
    ts_head_t  h;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_epoch(&h), 0);
    assert_int_equal(ts_head_ckpt_done(&h), 0);
    assert_int_equal(ts_head_epoch_begin(&h), 1);
    assert_int_equal(ts_head_epoch(&h), 1);
    ts_head_ckpt_publish(&h, 1);
    assert_int_equal(ts_head_ckpt_done(&h), 1);

    /* one flusher at a time; a dead flusher's lock is taken over */

    assert_int_equal(ts_head_flush_trylock(&h), 0);
    assert_int_equal(ts_head_flush_trylock(&h), TS_ERR_AGAIN);
    ts_head_flush_unlock(&h);

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        ts_head_t  ch;

        if (ts_head_open(&ch, t_mem, t_size, getpid(), t_alive) != TS_OK
            || ts_head_flush_trylock(&ch) != 0)
        {
            _exit(1);
        }

        _exit(0);
    }

    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(ts_head_flush_trylock(&h), 1);
    ts_head_flush_unlock(&h);
}


/*
 * Releasing frees sealed chunks up to the floor, keeps the open one,
 * answers retries of released samples as duplicates and reuses the
 * chunks it freed.
 */

static void
test_release(void **state)
{
    int              i, rc;
    char             inst[16];
    uint32_t         tn, r, x, freed;
    ts_head_t        h;
    ts_head_stats_t  st;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h, tn, "m", "j", "1", &r), 1);

    for (i = 1; i <= 1000; i++) {
        assert_int_equal(ts_head_append(&h, r, i, t_bits(i)), TS_OK);
    }

    t_read(&h, r, INT64_MIN, INT64_MAX, rd);
    assert_int_equal(rd->n, 1000);
    assert_true(rd->chunks > 4);

    assert_int_equal(ts_head_release(&h, r, 600, &freed), TS_OK);
    assert_true(freed >= 3);

    t_read(&h, r, INT64_MIN, INT64_MAX, rd);
    assert_int_equal(rd->t[rd->n - 1], 1000);
    assert_true(rd->t[0] <= 601 && rd->t[0] > 1);

    for (i = 1; i < (int) rd->n; i++) {
        assert_int_equal(rd->t[i], rd->t[i - 1] + 1);
    }

    assert_int_equal(ts_head_append(&h, r, 5, t_bits(5)), TS_HEAD_DUPLICATE);
    assert_int_equal(ts_head_append(&h, r, 1000, t_bits(1000)),
                     TS_HEAD_DUPLICATE);
    assert_int_equal(ts_head_append(&h, r, 1000, t_bits(7)),
                     TS_ERR_DUPLICATE);
    assert_int_equal(ts_head_append(&h, r, 1001, t_bits(1001)), TS_OK);

    /* releasing everything keeps the open chunk */

    assert_int_equal(ts_head_release(&h, r, 2000, &freed), TS_OK);
    t_read(&h, r, INT64_MIN, INT64_MAX, rd);
    assert_int_equal(rd->chunks, 1);
    assert_int_equal(rd->t[rd->n - 1], 1001);

    /* fill the head, free, and the freed chunks serve new series */

    for (i = 0, rc = 1; rc == 1; i++) {
        snprintf(inst, sizeof(inst), "f%d", i);
        rc = t_series(&h, tn, "f", "j", inst, &x);
        if (rc == 1) {
            rc = ts_head_append(&h, x, 1, t_bits(1)) == TS_OK ? 1 : -100;
        }
    }

    ts_head_stats(&h, &st);
    assert_true(rc == -100 || rc == TS_ERR_FULL);

    for (i = 1002; i < 1200; i++) {
        if (ts_head_append(&h, r, i, t_bits(i)) != TS_OK) {
            break;
        }
    }

    assert_int_equal(ts_head_release(&h, r, i, &freed), TS_OK);
    (void) freed;
}


static int
t_check_chunk(void *data, const ts_head_chunk_t *c)
{
    int            rc;
    int64_t        t, *last;
    uint64_t       v;
    ts_xor_iter_t  it;

    last = data;
    ts_xor_iter_init(&it, c->data, c->len);

    while ((rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1) {
        if (t <= *last || v != t_bits((double) t) || t < c->mint
            || t > c->maxt)
        {
            return -1;
        }

        *last = t;
    }

    return rc == 0 ? 0 : -1;
}


/*
 * A child appends to two series, releasing all but the newest chunks
 * of both again and again, so chunks are freed and reused by the other
 * series under the reader.  Every read is consistent or TS_ERR_AGAIN.
 */

static void
test_release_race(void **state)
{
    int        k, rc, st, again, ok;
    int64_t    last;
    uint32_t   tn, r[2];
    pid_t      pid;
    ts_head_t  h;

    (void) state;

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h, tn, "a", "j", "1", &r[0]), 1);
    assert_int_equal(t_series(&h, tn, "b", "j", "1", &r[1]), 1);
    assert_int_equal(ts_head_append(&h, r[0], 1, t_bits(1)), TS_OK);

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        ts_head_t  ch;
        int64_t    t;
        uint32_t   f;

        if (ts_head_open(&ch, t_mem, t_size, getpid(), t_alive) != TS_OK) {
            _exit(1);
        }

        for (t = 2; t < 2000000; t++) {
            if (ts_head_append(&ch, r[t & 1], t, t_bits((double) t))
                != TS_OK)
            {
                _exit(2);
            }

            if (t % 97 == 0) {
                (void) ts_head_release(&ch, r[0], t - 150, &f);
                (void) ts_head_release(&ch, r[1], t - 150, &f);
            }
        }

        _exit(0);
    }

    again = 0;
    ok = 0;

    for (k = 0; waitpid(pid, &st, WNOHANG) == 0; k++) {
        last = INT64_MIN;
        rc = ts_head_read(&h, r[k & 1], INT64_MIN, INT64_MAX,
                          t_check_chunk, &last);
        assert_true(rc == TS_OK || rc == TS_ERR_AGAIN);

        if (rc == TS_OK) {
            ok++;

        } else {
            again++;
        }
    }

    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(ok > 0);
    print_message("reads: %d consistent, %d again\n", ok, again);
}


/* an integer histogram: buckets 0 .. nb-1 of counts i + k, schema 0 */

typedef struct {
    ts_hist_t   h;
    ts_hspan_t  span;
    int64_t     deltas[8];
} t_hist_t;


static const ts_hist_t *
t_hist(t_hist_t *th, int64_t i, uint32_t nb)
{
    uint32_t  k;

    memset(th, 0, sizeof(t_hist_t));

    th->span.offset = 0;
    th->span.length = nb;
    th->h.pos_spans = &th->span;
    th->h.n_pos_spans = 1;
    th->h.n_pos = nb;
    th->h.pos_deltas = th->deltas;
    th->h.zero_threshold = 1e-128;
    th->h.sum = t_bits((double) i);
    th->h.count = 0;

    for (k = 0; k < nb; k++) {
        th->deltas[k] = k == 0 ? i : 1;
        th->h.count += (uint64_t) (i + k);
    }

    return &th->h;
}


typedef struct {
    int64_t    t[4096];
    uint64_t   count[4096];
    uint32_t   enc[64];
    size_t     n;
    size_t     chunks;
} t_hread_t;


static int
t_hcollect(void *data, const ts_head_chunk_t *c)
{
    int             rc;
    int64_t         t;
    uint64_t        v, mem[1024];
    ts_hist_t       h;
    t_hread_t      *r;
    ts_xor_iter_t   it;
    ts_hist_iter_t  hit;

    r = data;
    assert_true(r->chunks < 64);
    r->enc[r->chunks++] = c->encoding;

    if (c->encoding == TS_XOR_ENCODING) {
        ts_xor_iter_init(&it, c->data, c->len);

        while ((rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1) {
            r->t[r->n] = t;
            r->count[r->n++] = UINT64_MAX;
        }

        assert_int_equal(rc, 0);
        return 0;
    }

    assert_true(ts_hist_iter_need(c->data, c->len, c->encoding)
                <= sizeof(mem));
    ts_hist_iter_init(&hit, c->data, c->len, c->encoding, mem, sizeof(mem));

    while ((rc = ts_hist_iter_next(&hit, &t, &h)) == 1) {
        assert_true(r->n < 4096);
        r->t[r->n] = t;
        r->count[r->n++] = h.count;
    }

    assert_int_equal(rc, 0);

    return 0;
}


static void
t_hread(ts_head_t *h, uint32_t ref, t_hread_t *r)
{
    memset(r, 0, sizeof(t_hread_t));
    assert_int_equal(ts_head_read(h, ref, INT64_MIN, INT64_MAX, t_hcollect,
                                  r), TS_OK);
}


/*
 * Histograms: appends, duplicates and rejections, a recode when a
 * bucket appears, cuts on float/histogram switches and near 1 KiB.
 */

static void
test_hist_append(void **state)
{
    int64_t     i;
    uint32_t    tn, r, k;
    t_hist_t    th;
    ts_head_t   h;
    t_hread_t  *hr;

    (void) state;

    hr = malloc(sizeof(t_hread_t));
    assert_non_null(hr);

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h, tn, "h", "j", "1", &r), 1);

    for (i = 0; i < 20; i++) {
        assert_int_equal(ts_head_append_hist(&h, r, 1000 * (i + 1),
                                             t_hist(&th, i, 2)), TS_OK);
    }

    /* a retry is a duplicate; another histogram at the same time not */

    assert_int_equal(ts_head_append_hist(&h, r, 5000, t_hist(&th, 4, 2)),
                     TS_HEAD_DUPLICATE);
    assert_int_equal(ts_head_append_hist(&h, r, 5000, t_hist(&th, 5, 2)),
                     TS_ERR_DUPLICATE);
    assert_int_equal(ts_head_append(&h, r, 5000, t_bits(1)),
                     TS_ERR_DUPLICATE);
    assert_int_equal(ts_head_append_hist(&h, r, 500, t_hist(&th, 5, 2)),
                     TS_ERR_OUT_OF_ORDER);
    assert_int_equal(ts_head_append_hist(&h, r, 5500, t_hist(&th, 5, 2)),
                     TS_ERR_OUT_OF_ORDER);

    /* a third bucket: the chunk is recoded, still one chunk */

    assert_int_equal(ts_head_append_hist(&h, r, 21000, t_hist(&th, 20, 3)),
                     TS_OK);
    t_hread(&h, r, hr);
    assert_int_equal(hr->chunks, 1);
    assert_int_equal(hr->enc[0], TS_HIST_ENCODING);
    assert_int_equal(hr->n, 21);

    for (k = 0; k < 20; k++) {
        assert_int_equal(hr->t[k], 1000 * (k + 1));
        assert_int_equal(hr->count[k], 2 * k + 1);
    }

    assert_int_equal(hr->count[20], 20 + 21 + 22);

    /* float, then histograms again: three more chunks */

    assert_int_equal(ts_head_append(&h, r, 22000, t_bits(2)), TS_OK);
    assert_int_equal(ts_head_append_hist(&h, r, 23000,
                                         t_hist(&th, 30, 3)), TS_OK);
    assert_int_equal(ts_head_append_hist(&h, r, 23000,
                                         t_hist(&th, 30, 3)),
                     TS_HEAD_DUPLICATE);

    /* a counter reset cuts */

    assert_int_equal(ts_head_append_hist(&h, r, 24000, t_hist(&th, 1, 3)),
                     TS_OK);

    t_hread(&h, r, hr);
    assert_int_equal(hr->chunks, 4);
    assert_int_equal(hr->enc[1], TS_XOR_ENCODING);
    assert_int_equal(hr->enc[2], TS_HIST_ENCODING);
    assert_int_equal(hr->enc[3], TS_HIST_ENCODING);
    assert_int_equal(hr->n, 24);
    assert_int_equal(hr->count[23], 1 + 2 + 3);

    /* many samples: cut near 1 KiB */

    for (i = 0; i < 1000; i++) {
        assert_int_equal(ts_head_append_hist(&h, r, 100000 + i * 15000,
                                             t_hist(&th, 10 + i * i, 3)),
                         TS_OK);
    }

    t_hread(&h, r, hr);
    assert_int_equal(hr->n, 1024);
    assert_true(hr->chunks > 6);

    for (k = 1; k < hr->n; k++) {
        assert_true(hr->t[k] > hr->t[k - 1]);
    }

    /* released chunks give their blocks back for reuse */

    assert_int_equal(ts_head_release(&h, r, INT64_MAX - 1, &k), TS_OK);
    assert_true(k > 4);

    free(hr);
}


/* a writer SIGKILLed mid-append leaves a histogram chunk appendable */

static void
test_hist_sigkill(void **state)
{
    int         round, st;
    uint32_t    tn, r, k;
    pid_t       pid;
    t_hist_t    th;
    ts_head_t   h;
    t_hread_t  *hr;

    (void) state;

    hr = malloc(sizeof(t_hread_t));
    assert_non_null(hr);

    t_open(&h);
    assert_int_equal(ts_head_tenant(&h, "t", 1, &tn), TS_OK);
    assert_int_equal(t_series(&h, tn, "h", "j", "1", &r), 1);

    for (round = 0; round < 10; round++) {
        pid = fork();
        assert_true(pid >= 0);

        if (pid == 0) {
            ts_head_t  ch;
            int64_t    i;

            if (ts_head_open(&ch, t_mem, t_size, getpid(), t_alive)
                != TS_OK)
            {
                _exit(1);
            }

            for (i = 0; ; i++) {
                (void) ts_head_append_hist(&ch, r,
                                           1000000 * (round + 1) + i,
                                           t_hist(&th, i, 1 + i % 3));
            }
        }

        usleep(1000 + rand() % 3000);
        kill(pid, SIGKILL);
        assert_int_equal(waitpid(pid, &st, 0), pid);
    }

    assert_int_equal(ts_head_append_hist(&h, r, INT64_MAX / 2,
                                         t_hist(&th, 1, 2)), TS_OK);

    /* too many samples to collect: read the newest chunks only */

    memset(hr, 0, sizeof(t_hread_t));
    assert_int_equal(ts_head_read(&h, r, 10000000, INT64_MAX, t_hcollect,
                                  hr), TS_OK);
    assert_true(hr->n > 0);

    for (k = 1; k < hr->n; k++) {
        assert_true(hr->t[k] > hr->t[k - 1]);
    }

    assert_int_equal(hr->t[hr->n - 1], INT64_MAX / 2);

    free(hr);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_too_small, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_tenants, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_series_labels, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_append_rules, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_append_n, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_chunks_and_ranges, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_postings, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_postings_many_blocks, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_find_many, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_tenant_limit, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_full, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_fork_writers, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_fork_sigkill, t_setup_big,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_epoch, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_release, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_release_race, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_hist_append, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_hist_sigkill, t_setup_big,
                                        t_teardown),
    };

    return cmocka_run_group_tests_name("ts_head", tests, NULL, NULL);
}
