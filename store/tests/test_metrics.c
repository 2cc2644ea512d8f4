/*
 * Copyright (C) ngx_tsdb authors
 *
 * ts_metrics: registry layout, slots, series, rendering, and the
 * multi-process behaviour in a MAP_SHARED region across fork().
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts_metrics.h"


#define NSLOTS   8
#define NSERIES  32
#define NCELLS   256


static const double  t_buckets[] = { 0.1, 1, 2.5 };

static const ts_metric_family_t  t_families[] = {
    { "t_requests_total", "Requests.", TS_MFAM_COUNTER, 2,
      { "handler", "code" }, 0, NULL, 0 },
    { "t_in_flight", "In flight.", TS_MFAM_GAUGE, 1,
      { "handler" }, 0, NULL, 0 },
    { "t_duration_seconds", "Duration.", TS_MFAM_HISTOGRAM, 1,
      { "handler" }, 3, t_buckets, 0 },
    { "t_up", "Up.", TS_MFAM_GAUGE, 0, { NULL }, 0, NULL, 0 },
    { "t_info", "Info.", TS_MFAM_GAUGE, 0, { NULL }, 0, NULL,
      TS_MFAM_MAX },
};

#define NFAMILIES  (sizeof(t_families) / sizeof(t_families[0]))


typedef struct {
    pthread_mutex_t   mutex;
    char              mem[];
} t_shared_t;


typedef struct {
    char             *buf;
    size_t            len;
    size_t            cap;
} t_out_t;


static t_shared_t  *t_shm;
static size_t       t_size;
static int64_t      t_dead_pid;


static void
t_lock(void *data)
{
    pthread_mutex_lock(data);
}


static void
t_unlock(void *data)
{
    pthread_mutex_unlock(data);
}


static int
t_alive(int64_t pid)
{
    return pid != t_dead_pid;
}


static int
t_write(void *data, const char *p, size_t len)
{
    t_out_t  *o;

    o = data;

    if (o->len + len + 1 > o->cap) {
        return -1;
    }

    memcpy(o->buf + o->len, p, len);
    o->len += len;
    o->buf[o->len] = '\0';

    return 0;
}


static int
t_setup(void **state)
{
    pthread_mutexattr_t  a;

    (void) state;

    t_size = ts_metrics_region_size(NSLOTS, NSERIES, NCELLS);
    t_shm = mmap(NULL, sizeof(t_shared_t) + t_size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t_shm == MAP_FAILED) {
        return -1;
    }

    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&t_shm->mutex, &a);
    t_dead_pid = -1;

    return 0;
}


static int
t_teardown(void **state)
{
    (void) state;

    munmap(t_shm, sizeof(t_shared_t) + t_size);

    return 0;
}


static void
t_open(ts_metrics_t *m)
{
    assert_int_equal(ts_metrics_open(m, t_shm->mem, t_size, t_families,
                                     NFAMILIES, NSLOTS, NSERIES, NCELLS),
                     TS_OK);
}


static int
t_series(ts_metrics_t *m, unsigned family, const char *a, const char *b)
{
    ts_lock_t    lock = { t_lock, t_unlock, &t_shm->mutex };
    const char  *v[2];

    v[0] = a;
    v[1] = b;

    return ts_metrics_series(m, &lock, family, v);
}


static void
t_render(ts_metrics_t *m, char *buf, size_t cap)
{
    t_out_t  o = { buf, 0, cap };

    buf[0] = '\0';
    assert_int_equal(ts_metrics_render(m, t_alive, t_write, &o), TS_OK);
}


static void
test_open_too_small(void **state)
{
    ts_metrics_t  m;

    (void) state;

    assert_int_equal(ts_metrics_open(&m, t_shm->mem, 100, t_families,
                                     NFAMILIES, NSLOTS, NSERIES, NCELLS),
                     TS_ERR_INVALID);
}


static void
test_reopen_keeps_values(void **state)
{
    int           s;
    ts_metrics_t  m, m2;

    (void) state;

    t_open(&m);
    s = t_series(&m, 0, "metrics", "200");
    assert_true(s >= 0);
    ts_metrics_add(&m, 0, s, 5);

    /* a reload opens the same region again: same layout, same values */

    t_open(&m2);
    assert_int_equal(t_series(&m2, 0, "metrics", "200"), s);
    assert_int_equal(ts_metrics_counter_value(&m2, s), 5);
}


static void
test_layout_change_reformats(void **state)
{
    int           s;
    ts_metrics_t  m;

    (void) state;

    t_open(&m);
    s = t_series(&m, 0, "metrics", "200");
    ts_metrics_add(&m, 0, s, 5);

    assert_int_equal(ts_metrics_open(&m, t_shm->mem, t_size, t_families,
                                     NFAMILIES - 1, NSLOTS, NSERIES, NCELLS),
                     TS_OK);
    assert_int_equal(t_series(&m, 0, "metrics", "200"), 0);
    assert_int_equal(ts_metrics_counter_value(&m, 0), 0);
}


static void
test_series_lookup(void **state)
{
    int           a, b, c;
    ts_metrics_t  m;

    (void) state;

    t_open(&m);
    a = t_series(&m, 0, "metrics", "200");
    b = t_series(&m, 0, "metrics", "404");
    c = t_series(&m, 0, "metrics", "200");

    assert_true(a >= 0 && b >= 0);
    assert_int_not_equal(a, b);
    assert_int_equal(a, c);

    /* same values, other family: another series */
    assert_int_not_equal(t_series(&m, 1, "metrics", NULL), a);
    assert_int_equal(t_series(&m, 9, "x", "y"), TS_ERR_INVALID);
}


static void
test_series_label_limit(void **state)
{
    char          big[TS_METRICS_LABELS_LEN + 1];
    ts_metrics_t  m;

    (void) state;

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';

    t_open(&m);
    assert_int_equal(t_series(&m, 0, big, "200"), TS_ERR_LIMIT);
}


static void
test_series_table_full(void **state)
{
    int           i, rc;
    char          code[16];
    ts_metrics_t  m;

    (void) state;

    t_open(&m);

    for (i = 0; i < NSERIES; i++) {
        snprintf(code, sizeof(code), "%d", i);
        assert_true(t_series(&m, 0, "h", code) >= 0);
    }

    rc = t_series(&m, 0, "h", "overflow");
    assert_int_equal(rc, TS_ERR_FULL);

    /* existing series are still found */
    assert_true(t_series(&m, 0, "h", "0") >= 0);
}


static void
test_cells_full(void **state)
{
    int           i, rc;
    char          h[16];
    ts_metrics_t  m;

    (void) state;

    assert_int_equal(ts_metrics_open(&m, t_shm->mem, t_size, t_families,
                                     NFAMILIES, NSLOTS, NSERIES, 12),
                     TS_OK);

    /* histograms take 3 buckets + Inf + sum = 5 cells: two fit in 12 */

    for (i = 0, rc = 0; i < 3; i++) {
        snprintf(h, sizeof(h), "h%d", i);
        rc = t_series(&m, 2, h, NULL);
    }

    assert_int_equal(rc, TS_ERR_FULL);
}


static void
test_claim_slots(void **state)
{
    int           i, s, g;
    ts_metrics_t  m;

    (void) state;

    t_open(&m);

    for (i = 0; i < NSLOTS; i++) {
        assert_int_equal(ts_metrics_claim_slot(&m, 100 + i, t_alive), i);
    }

    assert_int_equal(ts_metrics_claim_slot(&m, 200, t_alive), TS_ERR_FULL);

    s = t_series(&m, 0, "metrics", "200");
    g = t_series(&m, 1, "metrics", NULL);
    ts_metrics_add(&m, 3, s, 7);
    ts_metrics_gauge_add(&m, 3, g, 2);
    ts_metrics_gauge_add(&m, 4, g, 1);

    /* pid 103 dies: its slot is adopted, counters kept, gauges reset */

    t_dead_pid = 103;
    assert_int_equal(ts_metrics_claim_slot(&m, 200, t_alive), 3);
    assert_int_equal(ts_metrics_counter_value(&m, s), 7);
    assert_int_equal(ts_metrics_counter_value(&m, g), 1);

    ts_metrics_add(&m, 3, s, 1);
    assert_int_equal(ts_metrics_counter_value(&m, s), 8);
}


static void
test_claim_without_alive(void **state)
{
    ts_metrics_t  m;

    (void) state;

    t_open(&m);
    assert_int_equal(ts_metrics_claim_slot(&m, 1, NULL), 0);
}


static void
test_gauge_set_and_dead_slots(void **state)
{
    int           g;
    char          out[4096];
    ts_metrics_t  m;

    (void) state;

    t_open(&m);
    assert_int_equal(ts_metrics_claim_slot(&m, 11, NULL), 0);
    assert_int_equal(ts_metrics_claim_slot(&m, 12, NULL), 1);

    g = t_series(&m, 3, NULL, NULL);
    ts_metrics_gauge_set(&m, 0, g, 1);
    ts_metrics_gauge_set(&m, 1, g, 1);

    t_render(&m, out, sizeof(out));
    assert_non_null(strstr(out, "\nt_up 2\n"));

    /* a max gauge: the largest value of the live processes */

    g = t_series(&m, 4, NULL, NULL);
    ts_metrics_gauge_set(&m, 0, g, 1);
    ts_metrics_gauge_set(&m, 1, g, 3);
    t_render(&m, out, sizeof(out));
    assert_non_null(strstr(out, "\nt_info 3\n"));

    /* a dead process's gauges are left out of the scrape */

    t_dead_pid = 12;
    t_render(&m, out, sizeof(out));
    assert_non_null(strstr(out, "\nt_up 1\n"));
    assert_non_null(strstr(out, "\nt_info 1\n"));
}


static void
test_render_exact(void **state)
{
    int           s, h;
    char          out[4096];
    ts_metrics_t  m;

    (void) state;

    t_open(&m);
    s = t_series(&m, 0, "a\"b\\c\nd", "200");
    ts_metrics_add(&m, 0, s, 3);
    ts_metrics_add(&m, 1, s, 4);

    h = t_series(&m, 2, "metrics", NULL);
    ts_metrics_observe(&m, 0, h, 0.05);
    ts_metrics_observe(&m, 1, h, 0.5);
    ts_metrics_observe(&m, 1, h, 2.5);
    ts_metrics_observe(&m, 1, h, 100);

    t_render(&m, out, sizeof(out));

    assert_string_equal(out,
        "# HELP t_requests_total Requests.\n"
        "# TYPE t_requests_total counter\n"
        "t_requests_total{handler=\"a\\\"b\\\\c\\nd\",code=\"200\"} 7\n"
        "# HELP t_duration_seconds Duration.\n"
        "# TYPE t_duration_seconds histogram\n"
        "t_duration_seconds_bucket{handler=\"metrics\",le=\"0.1\"} 1\n"
        "t_duration_seconds_bucket{handler=\"metrics\",le=\"1\"} 2\n"
        "t_duration_seconds_bucket{handler=\"metrics\",le=\"2.5\"} 3\n"
        "t_duration_seconds_bucket{handler=\"metrics\",le=\"+Inf\"} 4\n"
        "t_duration_seconds_sum{handler=\"metrics\"} 103.05\n"
        "t_duration_seconds_count{handler=\"metrics\"} 4\n");
}


static void
test_render_writer_error(void **state)
{
    int           s;
    char          out[16];
    t_out_t       o = { out, 0, sizeof(out) };
    ts_metrics_t  m;

    (void) state;

    t_open(&m);
    s = t_series(&m, 0, "metrics", "200");
    ts_metrics_add(&m, 0, s, 1);

    assert_int_equal(ts_metrics_render(&m, NULL, t_write, &o), TS_ERR_IO);
}


static void
t_child_loop(ts_metrics_t *m, int slot, int s, int h, long n)
{
    long  i;

    for (i = 0; i < n; i++) {
        ts_metrics_add(m, slot, s, 1);
        ts_metrics_observe(m, slot, h, 0.2);
    }
}


static void
test_fork_concurrent(void **state)
{
    int           i, s, h, st, slot;
    char          out[4096], want[128];
    pid_t         pid[4];
    ts_metrics_t  m;

    (void) state;

    t_open(&m);

    for (i = 0; i < 4; i++) {
        pid[i] = fork();
        assert_true(pid[i] >= 0);

        if (pid[i] == 0) {
            slot = ts_metrics_claim_slot(&m, getpid(), NULL);
            s = t_series(&m, 0, "w", "200");
            h = t_series(&m, 2, "w", NULL);

            if (slot < 0 || s < 0 || h < 0) {
                _exit(1);
            }

            t_child_loop(&m, slot, s, h, 100000);
            _exit(0);
        }
    }

    for (i = 0; i < 4; i++) {
        assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }

    s = t_series(&m, 0, "w", "200");
    assert_int_equal(ts_metrics_counter_value(&m, s), 400000);

    t_render(&m, out, sizeof(out));
    snprintf(want, sizeof(want),
             "t_duration_seconds_count{handler=\"w\"} %d\n", 400000);
    assert_non_null(strstr(out, want));
}


static void
test_fork_sigkill_monotonic(void **state)
{
    int           s, st, slot;
    pid_t         pid;
    uint64_t      before, after;
    ts_metrics_t  m;

    (void) state;

    t_open(&m);
    s = t_series(&m, 0, "k", "200");

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        slot = ts_metrics_claim_slot(&m, getpid(), NULL);
        for ( ;; ) {
            ts_metrics_add(&m, slot, s, 1);
        }
    }

    while (ts_metrics_counter_value(&m, s) < 100000) {
        usleep(1000);
    }

    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));

    /* the dead process's slot is adopted: the total continues from it */

    before = ts_metrics_counter_value(&m, s);
    t_dead_pid = pid;
    slot = ts_metrics_claim_slot(&m, getpid(), t_alive);
    assert_int_equal(slot, 0);
    ts_metrics_add(&m, slot, s, 1);
    after = ts_metrics_counter_value(&m, s);

    assert_int_equal(after, before + 1);
}


static void
test_fmt_double(void **state)
{
    size_t  i;
    char    buf[32];

    static const struct {
        double       v;
        const char  *want;
    } cases[] = {
        { 0, "0" },
        { 1, "1" },
        { 0.1, "0.1" },
        { 0.005, "0.005" },
        { 2.5, "2.5" },
        { 1e21, "1e+21" },
        { 1e20, "100000000000000000000" },
        { 10, "10" },
        { 30, "30" },
        { 1234.5, "1234.5" },
        { 0.0001, "0.0001" },
        { 0.00001, "1e-05" },
        { 5e-324, "5e-324" },
        { 1.7976931348623157e308, "1.7976931348623157e+308" },
        { -3.25, "-3.25" },
        { 1.0 / 3, "0.3333333333333333" },
        { INFINITY, "+Inf" },
        { -INFINITY, "-Inf" },
        { NAN, "NaN" },
    };

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_true(ts_fmt_double(buf, sizeof(buf), cases[i].v) > 0);
        assert_string_equal(buf, cases[i].want);
    }

    assert_int_equal(ts_fmt_double(buf, 3, 0.125), 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_open_too_small,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_values,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_layout_change_reformats,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_series_lookup,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_series_label_limit,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_series_table_full,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_cells_full,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_claim_slots,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_claim_without_alive,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_gauge_set_and_dead_slots,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_render_exact,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_render_writer_error,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_fork_concurrent,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_fork_sigkill_monotonic,
                                        t_setup, t_teardown),
        cmocka_unit_test(test_fmt_double),
    };

    return cmocka_run_group_tests_name("ts_metrics", tests, NULL, NULL);
}
