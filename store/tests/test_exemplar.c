/*
 * Copyright (C) ngx_tsdb authors
 *
 * Exemplar ring tests: Prometheus's acceptance rules (newer per series,
 * exact duplicates idempotent, 128-rune label sets), eviction by count
 * and by label bytes with the per-series index kept right, prepending
 * a checkpoint's copy, a lock taken over from a dead writer (the index
 * rebuilt), two processes writing at once and one SIGKILLed while
 * writing, takeover on reload, the EXEMPLARS WAL record (round trip,
 * every truncation rejected) and the index's exemplar blocks (put,
 * read back in order, evicted blocks deleted).
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "ts_db.h"
#include "ts_error.h"
#include "ts_exemplar.h"


/* the lock word's offset in the header, see ts_exemplar.c */
#define TX_LOCK_OFF  56
#define TX_HDR       128


typedef struct {
    int64_t      t[4096];
    uint64_t     v[4096];
    uint32_t     ref[4096];
    char         labels[4096][64];
    size_t       n;
} tx_got_t;


static int
tx_alive(int64_t pid)
{
    return kill((pid_t) pid, 0) == 0;
}


static int
tx_dead(int64_t pid)
{
    (void) pid;
    return 0;
}


static void *
tx_region(uint32_t max, int shared, size_t *size)
{
    void  *mem;

    *size = ts_exemplar_region_size(max);

    mem = mmap(NULL, *size, PROT_READ | PROT_WRITE,
               (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);

    return mem;
}


static ts_label_t
tx_label(const char *name, const char *value)
{
    ts_label_t  l;

    l.name = name;
    l.name_len = (uint32_t) strlen(name);
    l.value = value;
    l.value_len = (uint32_t) strlen(value);

    return l;
}


static uint64_t
tx_bits(double v)
{
    uint64_t  u;

    memcpy(&u, &v, sizeof(u));

    return u;
}


static int
tx_add(ts_exemplar_t *x, uint32_t ref, int64_t t, double v, const char *id)
{
    ts_label_t  l;

    l = tx_label("trace_id", id);

    return ts_exemplar_add(x, 1, ref, t, tx_bits(v), &l, 1);
}


/* labels flattened as name=value,... */

static int
tx_collect(void *data, const ts_exemplar_entry_t *e)
{
    tx_got_t       *g = data;
    char           *p;
    ts_label_t      l;
    const uint8_t  *q, *end;

    assert_true(g->n < 4096);
    g->t[g->n] = e->t;
    g->v[g->n] = e->v;
    g->ref[g->n] = e->ref;

    p = g->labels[g->n];
    *p = '\0';
    q = e->labels;
    end = q + e->labels_len;

    while (ts_exemplar_labels_next(&q, end, &l) == 1) {
        p += snprintf(p, 64 - (p - g->labels[g->n]), "%s%.*s=%.*s",
                      p == g->labels[g->n] ? "" : ",", (int) l.name_len,
                      l.name, (int) l.value_len, l.value);
    }

    g->n++;

    return 0;
}


static void
test_rules(void **state)
{
    size_t          size;
    void           *mem;
    tx_got_t       *g;
    ts_exemplar_t   x;

    (void) state;

    mem = tx_region(16, 0, &size);
    g = calloc(1, sizeof(tx_got_t));
    assert_non_null(g);
    assert_int_equal(ts_exemplar_open(&x, mem, size, 16, getpid(),
                                      tx_alive), TS_OK);

    assert_int_equal(tx_add(&x, 1, 1000, 1.5, "a"), 1);
    /* the same again: a retry */
    assert_int_equal(tx_add(&x, 1, 1000, 1.5, "a"), 0);
    /* same time, another value or label: out of order */
    assert_int_equal(tx_add(&x, 1, 1000, 2.5, "a"), TS_ERR_OUT_OF_ORDER);
    assert_int_equal(tx_add(&x, 1, 1000, 1.5, "b"), TS_ERR_OUT_OF_ORDER);
    assert_int_equal(tx_add(&x, 1, 999, 1.5, "a"), TS_ERR_OUT_OF_ORDER);
    assert_int_equal(tx_add(&x, 1, 2000, 1.5, "a"), 1);
    /* only the newest counts as a duplicate */
    assert_int_equal(tx_add(&x, 1, 1000, 1.5, "a"), TS_ERR_OUT_OF_ORDER);
    /* other series are independent */
    assert_int_equal(tx_add(&x, 2, 500, 3, "c"), 1);
    assert_int_equal(tx_add(&x, 0, 500, 3, "c"), TS_ERR_INVALID);

    assert_int_equal(ts_exemplar_series(&x, 1, INT64_MIN, INT64_MAX,
                                        tx_collect, g), TS_OK);
    assert_int_equal(g->n, 2);
    assert_int_equal(g->t[0], 1000);
    assert_int_equal(g->t[1], 2000);
    assert_string_equal(g->labels[0], "trace_id=a");

    /* the range is inclusive at both ends */
    g->n = 0;
    assert_int_equal(ts_exemplar_series(&x, 1, 1001, 2000, tx_collect, g),
                     TS_OK);
    assert_int_equal(g->n, 1);
    assert_int_equal(g->t[0], 2000);
    g->n = 0;
    assert_int_equal(ts_exemplar_series(&x, 1, 0, 999, tx_collect, g),
                     TS_OK);
    assert_int_equal(g->n, 0);
    assert_int_equal(ts_exemplar_series(&x, 3, INT64_MIN, INT64_MAX,
                                        tx_collect, g), TS_OK);
    assert_int_equal(g->n, 0);

    munmap(mem, size);
    free(g);
}


static void
test_labels(void **state)
{
    char            long_v[200], uni[256];
    size_t          size, i;
    void           *mem;
    tx_got_t       *g;
    ts_label_t      l[3];
    ts_exemplar_t   x;

    (void) state;

    mem = tx_region(16, 0, &size);
    g = calloc(1, sizeof(tx_got_t));
    assert_non_null(g);
    assert_int_equal(ts_exemplar_open(&x, mem, size, 16, getpid(),
                                      tx_alive), TS_OK);

    /* sorted, empty values dropped, none at all is fine */
    l[0] = tx_label("span_id", "s1");
    l[1] = tx_label("empty", "");
    l[2] = tx_label("trace_id", "t1");
    assert_int_equal(ts_exemplar_add(&x, 0, 1, 10, 0, l, 3), 1);
    assert_int_equal(ts_exemplar_add(&x, 0, 1, 20, 0, NULL, 0), 1);

    /* "trace_id" (8) + 120 = 128 runes: the limit */
    memset(long_v, 'x', 120);
    long_v[120] = '\0';
    l[0] = tx_label("trace_id", long_v);
    assert_int_equal(ts_exemplar_add(&x, 0, 2, 10, 0, l, 1), 1);
    long_v[120] = 'x';
    long_v[121] = '\0';
    l[0] = tx_label("trace_id", long_v);
    assert_int_equal(ts_exemplar_add(&x, 0, 2, 20, 0, l, 1),
                     TS_ERR_INVALID);

    /* runes, not bytes: 120 two-byte characters fit */
    for (i = 0; i < 120; i++) {
        uni[i * 2] = (char) 0xc3;
        uni[i * 2 + 1] = (char) 0xa9;
    }
    uni[240] = '\0';
    l[0] = tx_label("trace_id", uni);
    assert_int_equal(ts_exemplar_add(&x, 0, 2, 30, 0, l, 1), 1);

    assert_int_equal(ts_exemplar_series(&x, 1, INT64_MIN, INT64_MAX,
                                        tx_collect, g), TS_OK);
    assert_int_equal(g->n, 2);
    assert_string_equal(g->labels[0], "span_id=s1,trace_id=t1");
    assert_string_equal(g->labels[1], "");

    munmap(mem, size);
    free(g);
}


/* every series' list in order, counts as the stats say */

static void
tx_check(ts_exemplar_t *x, uint32_t nrefs, size_t *total)
{
    uint32_t             ref;
    size_t               i, n;
    tx_got_t            *g;
    ts_exemplar_stats_t  st;

    g = calloc(1, sizeof(tx_got_t));
    assert_non_null(g);

    n = 0;

    for (ref = 1; ref <= nrefs; ref++) {
        g->n = 0;
        assert_int_equal(ts_exemplar_series(x, ref, INT64_MIN, INT64_MAX,
                                            tx_collect, g), TS_OK);

        for (i = 0; i < g->n; i++) {
            assert_int_equal(g->ref[i], ref);
            if (i) {
                assert_true(g->t[i] > g->t[i - 1]);
            }
        }

        n += g->n;
    }

    ts_exemplar_stats(x, &st);
    assert_int_equal(st.exemplars, n);
    assert_true(st.exemplars <= st.max);
    *total = n;

    g->n = 0;
    assert_int_equal(ts_exemplar_each(x, 0, tx_collect, g), TS_OK);
    assert_int_equal(g->n, n);

    free(g);
}


static void
test_evict_count(void **state)
{
    size_t               size, n;
    void                *mem;
    tx_got_t            *g;
    uint32_t             i;
    ts_exemplar_t        x;
    ts_exemplar_stats_t  st;

    (void) state;

    mem = tx_region(100, 0, &size);
    g = calloc(1, sizeof(tx_got_t));
    assert_non_null(g);
    assert_int_equal(ts_exemplar_open(&x, mem, size, 100, getpid(),
                                      tx_alive), TS_OK);

    /* 250 exemplars over 7 series: the last 100 stay */
    for (i = 0; i < 250; i++) {
        assert_int_equal(tx_add(&x, i % 7 + 1, 1000 + i, i, "id"), 1);
    }

    tx_check(&x, 7, &n);
    assert_int_equal(n, 100);

    assert_int_equal(ts_exemplar_each(&x, 0, tx_collect, g), TS_OK);
    assert_int_equal(g->t[0], 1150);
    assert_int_equal(g->t[99], 1249);

    /* a series whose exemplars all went leaves the index */
    for (i = 0; i < 100; i++) {
        assert_int_equal(tx_add(&x, 1, 5000 + i, i, "id"), 1);
    }

    ts_exemplar_stats(&x, &st);
    assert_int_equal(st.series, 1);
    tx_check(&x, 7, &n);
    assert_int_equal(n, 100);

    /* and comes back without an out-of-order check against old data */
    assert_int_equal(tx_add(&x, 2, 1, 0, "id"), 1);

    munmap(mem, size);
    free(g);
}


static void
test_evict_bytes(void **state)
{
    char                 id[600];
    size_t               size, n;
    void                *mem;
    uint32_t             i;
    ts_label_t           l[4];
    ts_exemplar_t        x;
    ts_exemplar_stats_t  st;

    (void) state;

    /* 2000 slots, 128000 label bytes: long labels evict by bytes */
    mem = tx_region(2000, 0, &size);
    assert_int_equal(ts_exemplar_open(&x, mem, size, 2000, getpid(),
                                      tx_alive), TS_OK);

    for (i = 0; i < 5000; i++) {
        memset(id, 'a' + i % 26, 30);
        id[30] = '\0';
        l[0] = tx_label("a", id);
        l[1] = tx_label("b", id);
        l[2] = tx_label("c", id);
        l[3] = tx_label("d", id + (i % 30));
        assert_int_equal(ts_exemplar_add(&x, 1, i % 50 + 1, i, i, l, 4),
                         1);
    }

    ts_exemplar_stats(&x, &st);
    assert_true(st.exemplars < 2000);
    assert_true(st.exemplars > 128000 / 140);
    tx_check(&x, 50, &n);

    /* short ones fill every slot again */
    for (i = 0; i < 3000; i++) {
        assert_int_equal(tx_add(&x, i % 50 + 1, 10000 + i, i, "x"), 1);
    }

    tx_check(&x, 50, &n);
    assert_int_equal(n, 2000);

    munmap(mem, size);
}


static void
test_prepend(void **state)
{
    size_t                i, size, added;
    void                 *mem;
    uint8_t               enc[TS_EXEMPLAR_LABELS_BYTES];
    tx_got_t             *g;
    ts_label_t            l;
    ts_exemplar_t         x;
    ts_exemplar_stats_t   st;
    ts_exemplar_entry_t   old[3];

    (void) state;

    mem = tx_region(16, 0, &size);
    g = calloc(1, sizeof(tx_got_t));
    assert_non_null(g);
    assert_int_equal(ts_exemplar_open(&x, mem, size, 16, getpid(),
                                      tx_alive), TS_OK);

    /* the WAL replay added t=20 and 30 */
    assert_int_equal(tx_add(&x, 1, 20, 2, "b"), 1);
    assert_int_equal(tx_add(&x, 1, 30, 3, "c"), 1);

    /* the checkpoint's copy holds t=10 and 20 (20 also in the WAL) */
    l = tx_label("trace_id", "a");
    assert_int_equal(ts_exemplar_labels_encode(&l, 1, enc, &size), TS_OK);
    memset(old, 0, sizeof(old));

    for (i = 0; i < 2; i++) {
        old[i].tenant = 1;
        old[i].ref = 1;
        old[i].t = 10 * (i + 1);
        old[i].labels = enc;
        old[i].labels_len = size;
    }

    old[0].v = tx_bits(1);
    old[1].v = tx_bits(2);

    assert_int_equal(ts_exemplar_prepend(&x, old, 2, 1000, &added), TS_OK);
    assert_int_equal(added, 2);
    ts_exemplar_stats(&x, &st);
    assert_int_equal(st.tail, 1000);
    assert_int_equal(st.head, 1003);

    assert_int_equal(ts_exemplar_series(&x, 1, INT64_MIN, INT64_MAX,
                                        tx_collect, g), TS_OK);
    assert_int_equal(g->n, 3);
    assert_int_equal(g->t[0], 10);
    assert_int_equal(g->t[1], 20);
    assert_int_equal(g->t[2], 30);

    munmap(mem, ts_exemplar_region_size(16));
    free(g);
}


static void
test_dead_writer(void **state)
{
    size_t          size, n;
    void           *mem;
    int64_t        *lock;
    uint32_t        i;
    ts_exemplar_t   x;

    (void) state;

    mem = tx_region(64, 0, &size);
    assert_int_equal(ts_exemplar_open(&x, mem, size, 64, getpid(), tx_dead),
                     TS_OK);

    for (i = 0; i < 100; i++) {
        assert_int_equal(tx_add(&x, i % 5 + 1, i, i, "id"), 1);
    }

    /*
     * A writer died holding the lock in the middle of an eviction: the
     * index is garbage.  The next locker rebuilds it from the slots.
     */
    lock = (int64_t *) ((char *) mem + TX_LOCK_OFF);
    assert_int_equal(*lock, 0);
    *lock = 999999;
    memset((char *) mem + TX_HDR + 64 * 48, 0xff, 16 * 4);

    tx_check(&x, 5, &n);
    assert_int_equal(n, 64);
    assert_int_equal(tx_add(&x, 1, 1000, 0, "id"), 1);
    assert_int_equal(tx_add(&x, 1, 999, 0, "id"), TS_ERR_OUT_OF_ORDER);

    munmap(mem, size);
}


static void
test_reload(void **state)
{
    size_t          size, n;
    void           *mem;
    ts_exemplar_t   x;

    (void) state;

    mem = tx_region(64, 0, &size);
    assert_int_equal(ts_exemplar_open(&x, mem, size, 64, getpid(),
                                      tx_alive), TS_OK);
    assert_int_equal(tx_add(&x, 1, 1, 0, "id"), 1);
    ts_exemplar_set_loaded(&x);

    /* the same layout is taken over */
    assert_int_equal(ts_exemplar_open(&x, mem, size, 64, getpid(),
                                      tx_alive), TS_OK);
    assert_true(ts_exemplar_loaded(&x));
    tx_check(&x, 1, &n);
    assert_int_equal(n, 1);

    /* another one is formatted */
    assert_int_equal(ts_exemplar_open(&x, mem, size, 32, getpid(),
                                      tx_alive), TS_OK);
    assert_false(ts_exemplar_loaded(&x));
    tx_check(&x, 1, &n);
    assert_int_equal(n, 0);

    /* too small, and disabled */
    assert_int_equal(ts_exemplar_open(&x, mem, 1024, 64, getpid(),
                                      tx_alive), TS_ERR_INVALID);
    assert_int_equal(ts_exemplar_open(&x, NULL, 0, 0, getpid(), tx_alive),
                     TS_OK);
    assert_int_equal(tx_add(&x, 1, 1, 0, "id"), TS_ERR_UNSUPPORTED);
    assert_int_equal(ts_exemplar_region_size(0), 0);

    munmap(mem, size);
}


static void
tx_writer(ts_exemplar_t *x, uint32_t first, int64_t t0, int forever)
{
    int64_t   t;
    uint32_t  i;

    x->pid = getpid();

    for (t = t0; forever || t < t0 + 3000; t++) {
        for (i = 0; i < 4; i++) {
            if (tx_add(x, first + i, t, (double) t, "p") != 1) {
                _exit(1);
            }
        }

        /* a series both write: either one's exemplar may win a time */
        (void) tx_add(x, 100, t, 0, "shared");
    }
}


static void
test_two_processes(void **state)
{
    int             status;
    size_t          size, n;
    void           *mem;
    pid_t           pid;
    tx_got_t       *g;
    ts_exemplar_t   x;

    (void) state;

    mem = tx_region(4000, 1, &size);
    g = calloc(1, sizeof(tx_got_t));
    assert_non_null(g);
    assert_int_equal(ts_exemplar_open(&x, mem, size, 4000, getpid(),
                                      tx_alive), TS_OK);

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        tx_writer(&x, 1, 0, 0);
        _exit(0);
    }

    tx_writer(&x, 11, 0, 0);

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    tx_check(&x, 100, &n);
    assert_int_equal(n, 4000);

    munmap(mem, size);
    free(g);
}


static void
test_sigkill(void **state)
{
    int             status, round;
    size_t          size, n;
    void           *mem;
    pid_t           pid;
    ts_exemplar_t   x;

    (void) state;

    mem = tx_region(1000, 1, &size);
    assert_int_equal(ts_exemplar_open(&x, mem, size, 1000, getpid(),
                                      tx_alive), TS_OK);

    for (round = 0; round < 20; round++) {
        pid = fork();
        assert_true(pid >= 0);

        if (pid == 0) {
            tx_writer(&x, 1, (int64_t) round << 32, 1);
            _exit(0);
        }

        usleep(2000 + round * 500);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));

        /* whatever the child left, the ring is whole and usable */
        x.pid = getpid();
        tx_check(&x, 100, &n);
        assert_int_equal(tx_add(&x, 50, ((int64_t) round << 32) - 1, 0,
                                "parent"), 1);
    }

    munmap(mem, size);
}


typedef struct {
    size_t                  n;
    ts_exemplar_record_t    r[4];
    char                    strs[4][8][32];
} tx_dec_t;


static int
tx_decoded(void *data, const ts_exemplar_record_t *r)
{
    tx_dec_t  *d = data;

    assert_true(d->n < 4);
    d->r[d->n] = *r;
    /* strings point into the payload: keep a few */
    snprintf(d->strs[d->n][0], 32, "%.*s", (int) r->tenant_len, r->tenant);
    snprintf(d->strs[d->n][1], 32, "%.*s", (int) r->series[0].value_len,
             r->series[0].value);
    snprintf(d->strs[d->n][2], 32, "%.*s",
             r->nlabels ? (int) r->labels[0].value_len : 0,
             r->nlabels ? r->labels[0].value : "");
    d->n++;

    return 0;
}


static void
test_record(void **state)
{
    int                    rc;
    size_t                 len, cut, size, elen;
    uint8_t                buf[1024], enc[TS_EXEMPLAR_LABELS_BYTES];
    tx_dec_t               d;
    ts_label_t             series[2], el[2];
    ts_exemplar_record_t   r[3];

    (void) state;

    series[0] = tx_label("__name__", "http_requests_total");
    series[1] = tx_label("job", "api");
    el[0] = tx_label("trace_id", "abc123");
    el[1] = tx_label("span_id", "s1");

    memset(r, 0, sizeof(r));
    r[0].tenant = "anonymous";
    r[0].tenant_len = 9;
    r[0].series = series;
    r[0].nseries = 2;
    r[0].t = -5;
    r[0].v = 0x7ff0000000000002ULL;
    r[0].labels = el;
    r[0].nlabels = 2;

    r[1] = r[0];
    r[1].tenant = "team-a";
    r[1].tenant_len = 6;
    r[1].t = 1700000000123LL;
    r[1].nlabels = 0;

    /* labels as the ring encodes them: sorted */
    r[2] = r[0];
    r[2].labels = NULL;
    r[2].nlabels = 0;
    assert_int_equal(ts_exemplar_labels_encode(el, 2, enc, &elen), TS_OK);
    r[2].enc = enc;
    r[2].enc_len = elen;

    size = ts_exemplar_record_size(r, 3);
    assert_true(size <= sizeof(buf));
    assert_int_equal(ts_exemplar_record_encode(buf, size - 1, r, 3, &len),
                     TS_ERR_LIMIT);
    assert_int_equal(ts_exemplar_record_encode(buf, size, r, 3, &len),
                     TS_OK);

    memset(&d, 0, sizeof(d));
    assert_int_equal(ts_exemplar_record_decode(buf, len, tx_decoded, &d),
                     TS_OK);
    assert_int_equal(d.n, 3);
    assert_string_equal(d.strs[0][0], "anonymous");
    assert_string_equal(d.strs[0][1], "http_requests_total");
    assert_string_equal(d.strs[0][2], "abc123");
    assert_int_equal(d.r[0].t, -5);
    assert_true(d.r[0].v == 0x7ff0000000000002ULL);
    assert_int_equal(d.r[0].nseries, 2);
    assert_int_equal(d.r[0].nlabels, 2);
    assert_string_equal(d.strs[1][0], "team-a");
    assert_int_equal(d.r[1].t, 1700000000123LL);
    assert_int_equal(d.r[1].nlabels, 0);
    assert_int_equal(d.r[2].nlabels, 2);
    assert_string_equal(d.strs[2][2], "s1");

    /* every truncation and a trailing byte are corrupt */
    for (cut = 0; cut < len; cut++) {
        memset(&d, 0, sizeof(d));
        rc = ts_exemplar_record_decode(buf, cut, tx_decoded, &d);
        assert_int_equal(rc, TS_ERR_CORRUPT);
    }

    buf[len] = 0;
    memset(&d, 0, sizeof(d));
    assert_int_equal(ts_exemplar_record_decode(buf, len + 1, tx_decoded,
                                               &d), TS_ERR_CORRUPT);

    /* a count the payload cannot hold */
    buf[0] = 0x7f;
    memset(&d, 0, sizeof(d));
    assert_int_equal(ts_exemplar_record_decode(buf, len, tx_decoded, &d),
                     TS_ERR_CORRUPT);
    assert_int_equal(d.n, 0);
}


typedef struct {
    uint64_t    first[8];
    uint64_t    last[8];
    char        data[8][16];
    size_t      n;
} tx_blocks_t;


static int
tx_block(void *data, const ts_db_exemplars_t *b)
{
    tx_blocks_t  *bl = data;

    assert_true(bl->n < 8);
    bl->first[bl->n] = b->first;
    bl->last[bl->n] = b->last;
    assert_true(b->len < 16);
    memcpy(bl->data[bl->n], b->data, b->len);
    bl->data[bl->n][b->len] = '\0';
    bl->n++;

    return 0;
}


static void
tx_read_blocks(ts_db_t *db, tx_blocks_t *bl)
{
    ts_db_rtxn_t  *t;

    memset(bl, 0, sizeof(tx_blocks_t));
    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    assert_int_equal(ts_db_exemplars_each(t, tx_block, bl), TS_OK);
    ts_db_rtxn_abort(t);
}


static void
test_db_blocks(void **state)
{
    char                err[TS_DB_ERR_MAX], root[64], cmd[128];
    ts_db_t            *db;
    tx_blocks_t         bl;
    ts_db_conf_t        conf;
    ts_db_exemplars_t   b[3];

    (void) state;

    snprintf(root, sizeof(root), "/tmp/test_exemplar.XXXXXX");
    assert_non_null(mkdtemp(root));
    memset(&conf, 0, sizeof(conf));
    conf.path = root;
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;
    assert_int_equal(ts_db_open(&db, &conf, err, sizeof(err)), TS_OK);

    /* nothing yet */
    tx_read_blocks(db, &bl);
    assert_int_equal(bl.n, 0);

    b[0].first = 0;
    b[0].last = 9;
    b[0].data = "zero";
    b[0].len = 4;
    b[1].first = 10;
    b[1].last = 19;
    b[1].data = "ten";
    b[1].len = 3;
    b[2].first = 300;           /* sorts after 10 numerically */
    b[2].last = 300;
    b[2].data = "";
    b[2].len = 0;
    assert_int_equal(ts_db_exemplars_put(db, b, 3, 0), TS_OK);

    tx_read_blocks(db, &bl);
    assert_int_equal(bl.n, 3);
    assert_int_equal(bl.first[0], 0);
    assert_int_equal(bl.last[0], 9);
    assert_string_equal(bl.data[0], "zero");
    assert_int_equal(bl.first[1], 10);
    assert_string_equal(bl.data[1], "ten");
    assert_int_equal(bl.first[2], 300);
    assert_string_equal(bl.data[2], "");

    /* the ring moved past 9 and 19: those blocks go, 300 stays */
    assert_int_equal(ts_db_exemplars_put(db, NULL, 0, 20), TS_OK);
    tx_read_blocks(db, &bl);
    assert_int_equal(bl.n, 1);
    assert_int_equal(bl.first[0], 300);

    /* a block past 9 but before 10 survives keep=10 only if last >= 10 */
    b[0].first = 5;
    b[0].last = 12;
    assert_int_equal(ts_db_exemplars_put(db, b, 1, 10), TS_OK);
    tx_read_blocks(db, &bl);
    assert_int_equal(bl.n, 2);
    assert_int_equal(bl.first[0], 5);
    assert_int_equal(bl.first[1], 300);

    /* the index still verifies: the blocks live in "meta" */
    assert_int_equal(ts_db_verify(db), TS_OK);

    ts_db_close(db);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_evict_count),
        cmocka_unit_test(test_evict_bytes),
        cmocka_unit_test(test_prepend),
        cmocka_unit_test(test_dead_writer),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_two_processes),
        cmocka_unit_test(test_sigkill),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_db_blocks),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
