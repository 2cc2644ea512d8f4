/*
 * Copyright (C) ngx_tsdb authors
 *
 * ts_sset: series of two heads (two sources) merged by labels and read
 * in label order; samples merged in time order with duplicates keeping
 * the first source's value; chunks passed through when they overlap
 * nothing and re-encoded when they do; the [mint, maxt] window; the
 * series limit; an empty selection; reuse of one set.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ts_chunk.h"
#include "ts_head.h"
#include "ts_sset.h"


#define T_SIZE  (8 * 1024 * 1024)


typedef struct {
    void               *mem;
    ts_head_t           head;
    ts_source_head_t    hs;
} t_zone_t;


static t_zone_t  t_z[2];


static int
t_alive(int64_t pid)
{
    (void) pid;

    return 1;
}


static const char  *t_name = "m";


static uint32_t
t_series(t_zone_t *z, const char *job)
{
    uint32_t    tn, ref;
    ts_label_t  l[2];

    l[0].name = "__name__";
    l[0].name_len = 8;
    l[0].value = t_name;
    l[0].value_len = (uint32_t) strlen(t_name);
    l[1].name = "job";
    l[1].name_len = 3;
    l[1].value = job;
    l[1].value_len = (uint32_t) strlen(job);

    assert_int_equal(ts_head_tenant(&z->head, "t", 1, &tn), TS_OK);
    assert_true(ts_head_series(&z->head, tn, l, 2, ts_labels_hash(l, 2), 0,
                               &ref) >= 0);

    return ref;
}


/* samples t = from, from + step, ... < to with value t / 1000 + add */

static void
t_fill(t_zone_t *z, const char *job, int64_t from, int64_t to, int64_t step,
    double add)
{
    double    d;
    int64_t   t;
    uint32_t  ref;
    uint64_t  v;

    ref = t_series(z, job);

    for (t = from; t < to; t += step) {
        d = (double) t / 1000 + add;
        memcpy(&v, &d, sizeof(v));
        assert_int_equal(ts_head_append(&z->head, ref, t, v), TS_OK);
    }
}


static int
t_setup(void **state)
{
    int  i;

    (void) state;

    for (i = 0; i < 2; i++) {
        t_z[i].mem = mmap(NULL, T_SIZE, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (t_z[i].mem == MAP_FAILED) {
            return -1;
        }

        if (ts_head_open(&t_z[i].head, t_z[i].mem, T_SIZE, getpid(),
                         t_alive) != TS_OK)
        {
            return -1;
        }
    }

    /* a: only in zone 0; b: both, overlapping; c: both, disjoint */

    t_fill(&t_z[0], "a", 0, 600000, 15000, 0);
    t_fill(&t_z[0], "b", 0, 300000, 10000, 0);
    t_fill(&t_z[1], "b", 150000, 450000, 10000, 0.5);
    t_fill(&t_z[0], "c", 0, 100000, 10000, 0);
    t_fill(&t_z[1], "c", 100000, 200000, 10000, 0);

    /*
     * "n" (test_value_ref): d: the sources take turns sample by sample;
     * e: zone 1 overlaps zone 0's second chunk, twice as dense, and goes
     * on after it; f: zone 1 inside zone 0's range
     */

    t_name = "n";
    t_fill(&t_z[0], "d", 0, 3000000, 20000, 0);
    t_fill(&t_z[1], "d", 10000, 3000000, 20000, 0.25);
    t_fill(&t_z[0], "e", 0, 2400000, 10000, 0);
    t_fill(&t_z[1], "e", 1000000, 3600000, 5000, 0.5);
    t_fill(&t_z[0], "f", 0, 2000000, 15000, 0);
    t_fill(&t_z[1], "f", 500000, 900000, 15000, 0.5);
    t_fill(&t_z[1], "f", 1000000, 1100000, 7000, 0.5);
    t_name = "m";

    for (i = 0; i < 2; i++) {
        ts_source_head_init(&t_z[i].hs, &t_z[i].head, "t", 1);
    }

    return 0;
}


static int
t_teardown(void **state)
{
    int  i;

    (void) state;

    for (i = 0; i < 2; i++) {
        munmap(t_z[i].mem, T_SIZE);
    }

    return 0;
}


static ts_sset_t *
t_open(uint32_t max_series, int64_t mint, int64_t maxt, int rc_want)
{
    int             rc;
    char            msg[TS_SSET_MSG_SIZE];
    ts_sset_t      *ss;
    ts_source_t    *src[2];
    ts_matcher_t    m;
    ts_sset_conf_t  conf;
    ts_selector_t  *sel;

    src[0] = &t_z[0].hs.src;
    src[1] = &t_z[1].hs.src;
    conf.max_series = max_series;
    conf.trim_chunks = 0;

    assert_int_equal(ts_sset_create(&ss, src, 2, &conf), TS_OK);

    m.type = TS_MATCH_EQ;
    m.name = "__name__";
    m.name_len = 8;
    m.value = t_name;
    m.value_len = strlen(t_name);

    assert_int_equal(ts_selector_compile(&sel, &m, 1, NULL, NULL, 0),
                     TS_OK);

    msg[0] = '\0';
    rc = ts_sset_select(ss, sel, mint, maxt, msg, sizeof(msg));
    ts_selector_free(sel);

    assert_int_equal(rc, rc_want);

    if (rc == TS_ERR_LIMIT) {
        assert_string_equal(msg, "exceeded series limit (2)");
    }

    return ss;
}


static void
test_samples_merged(void **state)
{
    int                rc;
    double             d;
    int64_t            t, prev;
    uint32_t           n, k, count[3];
    uint64_t           v;
    ts_sset_t         *ss;
    const ts_label_t  *l;

    (void) state;

    ss = t_open(0, 0, INT64_MAX, TS_OK);
    assert_int_equal(ts_sset_count(ss), 3);

    for (k = 0; k < 3; k++) {
        assert_int_equal(ts_sset_next(ss, &l, &n), 1);
        assert_int_equal(n, 2);
        assert_int_equal(l[1].value[0], 'a' + (char) k);

        count[k] = 0;
        prev = -1;

        while ((rc = ts_sset_sample(ss, &t, &v)) == 1) {
            assert_true(t > prev);
            memcpy(&d, &v, sizeof(d));

            /* b: zone 0 wins where both have a sample */

            if (k == 1 && t >= 300000) {
                assert_true(d == (double) t / 1000 + 0.5);

            } else {
                assert_true(d == (double) t / 1000);
            }

            prev = t;
            count[k]++;
        }

        assert_int_equal(rc, 0);
    }

    assert_int_equal(ts_sset_next(ss, &l, &n), 0);
    assert_int_equal(count[0], 40);
    assert_int_equal(count[1], 45);
    assert_int_equal(count[2], 20);

    ts_sset_free(ss);
}


static void
test_window(void **state)
{
    int                rc;
    int64_t            t, first, last;
    uint32_t           n, cnt;
    uint64_t           v;
    ts_sset_t         *ss;
    const ts_label_t  *l;

    (void) state;

    ss = t_open(0, 100000, 200000, TS_OK);

    assert_int_equal(ts_sset_next(ss, &l, &n), 1);

    cnt = 0;
    first = -1;
    last = -1;

    while ((rc = ts_sset_sample(ss, &t, &v)) == 1) {
        first = cnt++ == 0 ? t : first;
        last = t;
    }

    assert_int_equal(rc, 0);
    assert_int_equal(first, 105000);
    assert_int_equal(last, 195000);
    assert_int_equal(cnt, 7);

    ts_sset_free(ss);
}


static void
test_chunks(void **state)
{
    int                rc;
    int64_t            t, prev;
    uint32_t           n, k, samples;
    uint64_t           v, re;
    ts_sset_t         *ss;
    ts_xor_iter_t      it;
    ts_sset_chunk_t    ch;
    const ts_label_t  *l;

    (void) state;

    ss = t_open(0, 0, INT64_MAX, TS_OK);

    for (k = 0; k < 3; k++) {
        assert_int_equal(ts_sset_next(ss, &l, &n), 1);
        re = ts_sset_reencoded(ss);
        samples = 0;
        prev = -1;

        while ((rc = ts_sset_chunk(ss, &ch)) == 1) {
            ts_xor_iter_init(&it, ch.data, ch.len);

            while (ts_xor_iter_next_bits(&it, &t, &v) == 1) {
                assert_true(t > prev);
                assert_true(t >= ch.mint && t <= ch.maxt);
                prev = t;
                samples++;
            }
        }

        assert_int_equal(rc, 0);
        assert_int_equal(samples, k == 0 ? 40 : k == 1 ? 45 : 20);

        /* only b's sources overlap */

        if (k == 1) {
            assert_true(ts_sset_reencoded(ss) > re);

        } else {
            assert_int_equal(ts_sset_reencoded(ss), re);
        }
    }

    ts_sset_free(ss);
}


static void
test_limit_and_reuse(void **state)
{
    char               msg[TS_SSET_MSG_SIZE];
    uint32_t           n;
    ts_sset_t         *ss;
    ts_matcher_t       m;
    ts_selector_t     *sel;
    const ts_label_t  *l;

    (void) state;

    ss = t_open(2, 0, INT64_MAX, TS_ERR_LIMIT);

    /* the same set, another selector: just one series */

    m.type = TS_MATCH_EQ;
    m.name = "job";
    m.name_len = 3;
    m.value = "c";
    m.value_len = 1;

    assert_int_equal(ts_selector_compile(&sel, &m, 1, NULL, NULL, 0),
                     TS_OK);
    assert_int_equal(ts_sset_select(ss, sel, 0, 1000, msg, sizeof(msg)),
                     TS_OK);
    assert_int_equal(ts_sset_count(ss), 1);
    assert_int_equal(ts_sset_next(ss, &l, &n), 1);
    assert_int_equal(ts_sset_next(ss, &l, &n), 0);

    /* an empty range selects nothing */

    assert_int_equal(ts_sset_select(ss, sel, 10, 9, msg, sizeof(msg)),
                     TS_OK);
    assert_int_equal(ts_sset_count(ss), 0);
    assert_int_equal(ts_sset_next(ss, &l, &n), 0);

    ts_selector_free(sel);
    ts_sset_free(ss);
}


/*
 * ts_sset_value_ref() (runs of one source's samples while they come
 * before every other source's next one) gives what ts_sset_value() gives
 * (the earliest source looked for at every sample), for series whose
 * sources take turns, overlap with duplicates, or nest, in several
 * windows
 */

static void
test_value_ref(void **state)
{
    int                     ra, rb;
    size_t                  w;
    uint32_t                n, na, nb, series;
    ts_sset_t              *a, *b;
    ts_sset_value_t         va;
    const ts_label_t       *l;
    const ts_sset_value_t  *vb;
    static const int64_t    win[][2] = {
        { 0, INT64_MAX }, { 10000, 2999999 }, { 1000000, 1000000 },
        { 995000, 1205000 }, { 2390000, 2410000 }, { 5000000, 6000000 },
    };

    (void) state;

    t_name = "n";

    for (w = 0; w < sizeof(win) / sizeof(win[0]); w++) {
        a = t_open(0, win[w][0], win[w][1], TS_OK);
        b = t_open(0, win[w][0], win[w][1], TS_OK);
        series = 0;
        na = 0;

        while (ts_sset_next(a, &l, &n) == 1) {
            assert_int_equal(ts_sset_next(b, &l, &n), 1);
            series++;
            nb = 0;

            for ( ;; ) {
                ra = ts_sset_value(a, &va);
                rb = ts_sset_value_ref(b, &vb);
                assert_int_equal(ra, rb);

                if (ra != 1) {
                    break;
                }

                assert_int_equal(va.t, vb->t);
                assert_int_equal(va.enc, vb->enc);
                assert_true(va.v == vb->v);
                nb++;
            }

            assert_int_equal(ra, 0);
            na += nb;
        }

        assert_int_equal(ts_sset_next(b, &l, &n), 0);
        assert_int_equal(series, 3);

        /*
         * the whole range: d 150 + 150; e 240 + 520 less 140 duplicates;
         * f 134 + 27 + 15 less one duplicate (1035000)
         */
        if (w == 0) {
            assert_int_equal(na, 300 + 620 + 175);
        }

        ts_sset_free(a);
        ts_sset_free(b);
    }

    t_name = "m";
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_samples_merged),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_limit_and_reuse),
        cmocka_unit_test(test_value_ref),
    };

    return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
