/*
 * Copyright (C) ngx_tsdb authors
 *
 * Metadata table tests: set/get/update and the generations checkpoints
 * rely on, tenants kept apart, limits (table and arena full), a lock
 * taken over from a dead writer, takeover of a region on reload, two
 * processes writing at once, and the METADATA WAL record (round trip,
 * every truncation and corruption rejected).
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

#include "ts_error.h"
#include "ts_meta.h"


#define TM_SIZE  (256 * 1024)


static int
tm_alive(int64_t pid)
{
    return kill((pid_t) pid, 0) == 0;
}


static ts_meta_entry_t
tm_entry(uint32_t tenant, const char *name, uint32_t type, const char *help,
    const char *unit)
{
    ts_meta_entry_t  e;

    memset(&e, 0, sizeof(e));
    e.tenant = tenant;
    e.type = type;
    e.name = name;
    e.name_len = strlen(name);
    e.help = help;
    e.help_len = strlen(help);
    e.unit = unit;
    e.unit_len = strlen(unit);

    return e;
}


static void
tm_expect(ts_meta_t *m, uint32_t tenant, const char *name, uint32_t type,
    const char *help, const char *unit)
{
    ts_meta_entry_t  e;

    assert_int_equal(ts_meta_get(m, tenant, name, strlen(name), &e), TS_OK);
    assert_int_equal(e.type, type);
    assert_int_equal(e.tenant, tenant);
    assert_int_equal(e.name_len, strlen(name));
    assert_memory_equal(e.name, name, e.name_len);
    assert_int_equal(e.help_len, strlen(help));
    assert_memory_equal(e.help, help, e.help_len);
    assert_int_equal(e.unit_len, strlen(unit));
    assert_memory_equal(e.unit, unit, e.unit_len);
}


static void
test_set_get(void **state)
{
    void             *mem;
    ts_meta_t         m;
    ts_meta_entry_t   e, got;

    (void) state;

    mem = calloc(1, TM_SIZE);
    assert_non_null(mem);
    assert_int_equal(ts_meta_open(&m, mem, TM_SIZE, getpid(), tm_alive),
                     TS_OK);

    e = tm_entry(0, "up", 2, "1 if the target is up", "");
    assert_int_equal(ts_meta_set(&m, &e), 1);
    assert_int_equal(ts_meta_set(&m, &e), 0);
    tm_expect(&m, 0, "up", 2, "1 if the target is up", "");

    /* another tenant, same name: its own entry */
    e = tm_entry(1, "up", 1, "other", "seconds");
    assert_int_equal(ts_meta_set(&m, &e), 1);
    tm_expect(&m, 1, "up", 1, "other", "seconds");
    tm_expect(&m, 0, "up", 2, "1 if the target is up", "");

    assert_int_equal(ts_meta_get(&m, 2, "up", 2, &got), TS_ERR_NOTFOUND);
    assert_int_equal(ts_meta_get(&m, 0, "upx", 3, &got), TS_ERR_NOTFOUND);

    /* a change bumps the generation and leaves the entry dirty */
    assert_int_equal(ts_meta_get(&m, 0, "up", 2, &got), TS_OK);
    assert_true(got.dirty);
    ts_meta_saved(&m, got.slot, got.gen);
    assert_int_equal(ts_meta_get(&m, 0, "up", 2, &got), TS_OK);
    assert_false(got.dirty);

    e = tm_entry(0, "up", 2, "changed help", "");
    assert_int_equal(ts_meta_set(&m, &e), 1);
    assert_int_equal(ts_meta_get(&m, 0, "up", 2, &e), TS_OK);
    assert_true(e.dirty);
    assert_int_equal(e.gen, got.gen + 1);
    tm_expect(&m, 0, "up", 2, "changed help", "");

    /* the type alone, the unit alone */
    e = tm_entry(0, "up", 3, "changed help", "");
    assert_int_equal(ts_meta_set(&m, &e), 1);
    e = tm_entry(0, "up", 3, "changed help", "bytes");
    assert_int_equal(ts_meta_set(&m, &e), 1);
    tm_expect(&m, 0, "up", 3, "changed help", "bytes");

    /* invalid */
    e = tm_entry(0, "", 1, "", "");
    assert_int_equal(ts_meta_set(&m, &e), TS_ERR_INVALID);
    e = tm_entry(0, "x", 1, "", "");
    e.name_len = TS_META_NAME_MAX + 1;
    assert_int_equal(ts_meta_set(&m, &e), TS_ERR_INVALID);

    /* a second open of the same region takes it over as it is */
    assert_int_equal(ts_meta_open(&m, mem, TM_SIZE, getpid(), tm_alive),
                     TS_OK);
    tm_expect(&m, 1, "up", 1, "other", "seconds");

    /* another size: formatted anew */
    assert_int_equal(ts_meta_open(&m, mem, TM_SIZE - 4096, getpid(),
                                  tm_alive), TS_OK);
    assert_int_equal(ts_meta_get(&m, 1, "up", 2, &got), TS_ERR_NOTFOUND);

    assert_int_equal(ts_meta_open(&m, mem, 1024, getpid(), tm_alive),
                     TS_ERR_INVALID);

    free(mem);
}


static int
tm_count(void *data, const ts_meta_entry_t *e)
{
    (*(uint32_t *) data)++;

    return e->name_len == 0;
}


static void
test_full(void **state)
{
    int               rc;
    char              name[32], help[512];
    void             *mem;
    uint32_t          i, n;
    ts_meta_t         m;
    ts_meta_stats_t   st;
    ts_meta_entry_t   e;

    (void) state;

    mem = calloc(1, TM_SIZE);
    assert_non_null(mem);
    assert_int_equal(ts_meta_open(&m, mem, TM_SIZE, getpid(), tm_alive),
                     TS_OK);
    ts_meta_stats(&m, &st);
    assert_true(st.slots >= 64);

    /* the table fills at three quarters of its slots */
    for (i = 0; ; i++) {
        snprintf(name, sizeof(name), "metric_%u", i);
        e = tm_entry(7, name, 1, "h", "");
        rc = ts_meta_set(&m, &e);
        if (rc != 1) {
            break;
        }
    }

    assert_int_equal(rc, TS_ERR_FULL);
    ts_meta_stats(&m, &st);
    assert_int_equal(st.entries, i);
    assert_int_equal(i, st.slots / 4 * 3);

    n = 0;
    assert_int_equal(ts_meta_each(&m, tm_count, &n), TS_OK);
    assert_int_equal(n, i);

    /* known entries still change until the arena is full */
    memset(help, 'x', sizeof(help) - 1);
    help[sizeof(help) - 1] = '\0';

    for (i = 0; ; i++) {
        help[0] = (char) ('a' + i % 26);
        help[1] = (char) ('a' + i / 26 % 26);
        help[2] = (char) ('a' + i / 676 % 26);
        e = tm_entry(7, "metric_0", 1, help, "");
        rc = ts_meta_set(&m, &e);
        if (rc != 1) {
            break;
        }
    }

    assert_int_equal(rc, TS_ERR_FULL);
    assert_true(i > 100);

    /* what was there stays readable */
    help[0] = (char) ('a' + (i - 1) % 26);
    help[1] = (char) ('a' + (i - 1) / 26 % 26);
    help[2] = (char) ('a' + (i - 1) / 676 % 26);
    tm_expect(&m, 7, "metric_0", 1, help, "");
    tm_expect(&m, 7, "metric_5", 1, "h", "");

    free(mem);
}


static int
tm_dead(int64_t pid)
{
    (void) pid;
    return 0;
}


static void
test_dead_writer(void **state)
{
    void             *mem;
    int64_t          *lock;
    ts_meta_t         m;
    ts_meta_entry_t   e, a, b;

    (void) state;

    mem = calloc(1, TM_SIZE);
    assert_non_null(mem);
    assert_int_equal(ts_meta_open(&m, mem, TM_SIZE, getpid(), tm_dead),
                     TS_OK);

    e = tm_entry(0, "a", 1, "", "");
    assert_int_equal(ts_meta_set(&m, &e), 1);
    e = tm_entry(0, "b", 1, "", "");
    assert_int_equal(ts_meta_set(&m, &e), 1);

    assert_int_equal(ts_meta_get(&m, 0, "a", 1, &a), TS_OK);
    ts_meta_saved(&m, a.slot, a.gen);
    assert_int_equal(ts_meta_get(&m, 0, "b", 1, &b), TS_OK);
    ts_meta_saved(&m, b.slot, b.gen);

    /* the header's lock word (offset 48, see ts_meta.c), held by a pid
     * that is gone */
    lock = (int64_t *) ((char *) mem + 48);
    assert_int_equal(*lock, 0);
    *lock = 999999;

    e = tm_entry(0, "c", 1, "", "");
    assert_int_equal(ts_meta_set(&m, &e), 1);

    /* every earlier entry counts as changed */
    assert_int_equal(ts_meta_get(&m, 0, "a", 1, &a), TS_OK);
    assert_true(a.dirty);
    assert_int_equal(ts_meta_get(&m, 0, "b", 1, &b), TS_OK);
    assert_true(b.dirty);

    free(mem);
}


static void
test_two_processes(void **state)
{
    int               status;
    char              name[32];
    void             *mem;
    pid_t             pid;
    uint32_t          i, n;
    ts_meta_t         m;
    ts_meta_entry_t   e;

    (void) state;

    mem = mmap(NULL, TM_SIZE, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    assert_int_equal(ts_meta_open(&m, mem, TM_SIZE, getpid(), tm_alive),
                     TS_OK);

    pid = fork();
    assert_true(pid >= 0);

    /* both write 200 names, half of them the same ones */
    m.pid = getpid();

    for (i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "%s_%u", (i % 2) ? "shared" : "own",
                 i / 2);
        if (i % 2 == 0 && pid == 0) {
            name[0] = 'O';
        }

        e = tm_entry(0, name, 1, "help", "");
        if (ts_meta_set(&m, &e) < 0) {
            if (pid == 0) {
                _exit(1);
            }
            fail();
        }
    }

    if (pid == 0) {
        _exit(0);
    }

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    n = 0;
    assert_int_equal(ts_meta_each(&m, tm_count, &n), TS_OK);
    assert_int_equal(n, 300);
    tm_expect(&m, 0, "Own_3", 1, "help", "");
    tm_expect(&m, 0, "own_3", 1, "help", "");
    tm_expect(&m, 0, "shared_3", 1, "help", "");

    munmap(mem, TM_SIZE);
}


typedef struct {
    ts_meta_record_t  r[4];
    size_t            n;
} tm_got_t;


static int
tm_collect(void *data, const ts_meta_record_t *r)
{
    tm_got_t  *g = data;

    g->r[g->n++] = *r;

    return 0;
}


static void
test_record(void **state)
{
    int               rc;
    size_t            len, cut, i, size;
    uint8_t          *buf, *bad;
    tm_got_t          got;
    ts_meta_record_t  r[3];

    (void) state;

    memset(r, 0, sizeof(r));
    r[0].tenant = "anonymous";
    r[0].tenant_len = 9;
    r[0].e = tm_entry(0, "node_cpu_seconds_total", 1,
                      "Seconds the CPUs spent in each mode.", "seconds");
    r[1].tenant = "";
    r[1].tenant_len = 0;
    r[1].e = tm_entry(0, "up", 2, "", "");
    r[2].tenant = "team-a";
    r[2].tenant_len = 6;
    r[2].e = tm_entry(0, "x", 7, "h", "u");

    size = ts_meta_record_size(r, 3);
    buf = malloc(size);
    assert_non_null(buf);

    assert_int_equal(ts_meta_record_encode(buf, size - 60, r, 3, &len),
                     TS_ERR_LIMIT);
    assert_int_equal(ts_meta_record_encode(buf, size, r, 3, &len), TS_OK);
    assert_true(len <= size);

    memset(&got, 0, sizeof(got));
    assert_int_equal(ts_meta_record_decode(buf, len, tm_collect, &got),
                     TS_OK);
    assert_int_equal(got.n, 3);

    for (i = 0; i < 3; i++) {
        assert_int_equal(got.r[i].tenant_len, r[i].tenant_len);
        assert_memory_equal(got.r[i].tenant, r[i].tenant, r[i].tenant_len);
        assert_int_equal(got.r[i].e.name_len, r[i].e.name_len);
        assert_memory_equal(got.r[i].e.name, r[i].e.name, r[i].e.name_len);
        assert_int_equal(got.r[i].e.help_len, r[i].e.help_len);
        assert_int_equal(got.r[i].e.unit_len, r[i].e.unit_len);
        assert_int_equal(got.r[i].e.type, r[i].e.type);
    }

    /* every cut is corrupt, never a crash or a read past the end */
    for (cut = 0; cut < len; cut++) {
        bad = malloc(cut ? cut : 1);
        assert_non_null(bad);
        memcpy(bad, buf, cut);
        memset(&got, 0, sizeof(got));
        rc = ts_meta_record_decode(bad, cut, tm_collect, &got);
        assert_int_equal(rc, TS_ERR_CORRUPT);
        free(bad);
    }

    /* trailing bytes, an absurd count */
    bad = malloc(len + 1);
    assert_non_null(bad);
    memcpy(bad, buf, len);
    bad[len] = 0;
    memset(&got, 0, sizeof(got));
    assert_int_equal(ts_meta_record_decode(bad, len + 1, tm_collect, &got),
                     TS_ERR_CORRUPT);
    bad[0] = 0x7f;
    memset(&got, 0, sizeof(got));
    assert_int_equal(ts_meta_record_decode(bad, len, tm_collect, &got),
                     TS_ERR_CORRUPT);
    free(bad);

    /* an empty record */
    assert_int_equal(ts_meta_record_encode(buf, size, r, 0, &len), TS_OK);
    assert_int_equal(len, 1);
    memset(&got, 0, sizeof(got));
    assert_int_equal(ts_meta_record_decode(buf, len, tm_collect, &got),
                     TS_OK);
    assert_int_equal(got.n, 0);

    free(buf);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_dead_writer),
        cmocka_unit_test(test_two_processes),
        cmocka_unit_test(test_record),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
