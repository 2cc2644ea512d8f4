/*
 * Copyright (C) ngx_tsdb authors
 *
 * ts_source_db: series persisted in LMDB seen through the source
 * interface: selection by matchers, labels, chunks in a range, tenants
 * kept apart, and a tenant that appears between two reader steps.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_chunk.h"
#include "ts_source_db.h"


typedef struct {
    char         root[64];
    ts_db_t     *db;
} t_env_t;


static int
t_setup(void **state)
{
    char           err[TS_DB_ERR_MAX];
    t_env_t       *e;
    ts_db_conf_t   conf;

    e = calloc(1, sizeof(t_env_t));
    if (e == NULL) {
        return -1;
    }

    strcpy(e->root, "/tmp/ts-source-db-XXXXXX");
    if (mkdtemp(e->root) == NULL) {
        return -1;
    }

    memset(&conf, 0, sizeof(conf));
    conf.path = e->root;
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;

    if (ts_db_open(&e->db, &conf, err, sizeof(err)) != TS_OK) {
        return -1;
    }

    *state = e;

    return 0;
}


static int
t_teardown(void **state)
{
    char      cmd[128];
    t_env_t  *e;

    e = *state;
    ts_db_close(e->db);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->root);

    if (system(cmd) != 0) {
        return -1;
    }

    free(e);

    return 0;
}


/* one series of tenant with job=job, i=inst and samples at t0, t0+1s.. */

static void
t_put(ts_db_t *db, const char *tenant, const char *job, const char *inst,
    int64_t t0, int n)
{
    int                i;
    size_t             len;
    uint8_t            buf[1024];
    uint32_t           idx;
    ts_label_t         l[3];
    ts_db_batch_t     *b;
    ts_xor_appender_t  a;

    l[0] = (ts_label_t) { "__name__", 8, "up", 2 };
    l[1] = (ts_label_t) { "i", 1, inst, (uint32_t) strlen(inst) };
    l[2] = (ts_label_t) { "job", 3, job, (uint32_t) strlen(job) };

    assert_int_equal(ts_xor_init(&a, buf, sizeof(buf)), TS_OK);
    for (i = 0; i < n; i++) {
        assert_int_equal(ts_xor_append(&a, buf, t0 + 1000 * i, i), TS_OK);
    }

    len = ts_xor_bytes(&a);

    assert_int_equal(ts_db_batch_create(&b), TS_OK);
    assert_int_equal(ts_db_batch_series(b, tenant, strlen(tenant), l, 3, 0,
                                        &idx), TS_OK);
    assert_int_equal(ts_db_batch_chunk(b, idx, t0, t0 + 1000 * (n - 1),
                                       TS_XOR_ENCODING, buf, len), TS_OK);
    assert_int_equal(ts_db_apply(db, b), TS_OK);
    ts_db_batch_destroy(b);
}


typedef struct {
    int          chunks;
    int          samples;
    int64_t      mint;
} t_chunks_t;


static int
t_chunk(void *data, const ts_source_chunk_t *c)
{
    int            rc;
    double         v;
    int64_t        t;
    t_chunks_t    *tc;
    ts_xor_iter_t  it;

    tc = data;
    tc->chunks++;
    tc->mint = c->mint;

    ts_xor_iter_init(&it, c->data, c->len);
    while ((rc = ts_xor_iter_next(&it, &t, &v)) == 1) {
        tc->samples++;
    }

    assert_int_equal(rc, 0);

    return 0;
}


static int
t_select(ts_source_db_t *ds, ts_match_type_t type, const char *name,
    const char *value, uint64_t *refs, int max)
{
    int             n, rc;
    uint64_t        ref;
    ts_matcher_t    m;
    ts_select_t    *it;
    ts_selector_t  *sel;

    m.type = type;
    m.name = name;
    m.name_len = strlen(name);
    m.value = value;
    m.value_len = strlen(value);

    assert_int_equal(ts_selector_compile(&sel, &m, 1, NULL, NULL, 0), TS_OK);
    assert_int_equal(ds->src.begin(ds), TS_OK);
    assert_int_equal(ts_select_open(&it, sel, &ds->src), TS_OK);

    for (n = 0; (rc = ts_select_next(it, &ref)) == 1; n++) {
        assert_true(n < max);
        refs[n] = ref;
    }

    assert_int_equal(rc, 0);
    ts_select_close(it);
    ds->src.end(ds);
    ts_selector_free(sel);

    return n;
}


static void
test_select_and_read(void **state)
{
    int             n;
    uint32_t        nl;
    uint64_t        refs[8];
    t_env_t        *e;
    ts_label_t      l[8];
    t_chunks_t      tc;
    ts_source_db_t  ds;

    e = *state;
    t_put(e->db, "a", "node", "1", 100000, 10);
    t_put(e->db, "a", "node", "2", 100000, 5);
    t_put(e->db, "a", "prom", "1", 200000, 3);
    t_put(e->db, "b", "node", "1", 100000, 7);

    ts_source_db_init(&ds, e->db, "a", 1);

    n = t_select(&ds, TS_MATCH_EQ, "job", "node", refs, 8);
    assert_int_equal(n, 2);

    n = t_select(&ds, TS_MATCH_RE, "job", "no.*|prom", refs, 8);
    assert_int_equal(n, 3);

    n = t_select(&ds, TS_MATCH_NEQ, "i", "1", refs, 8);
    assert_int_equal(n, 1);

    /* labels and chunks of the selected series, within a range */

    assert_int_equal(ds.src.begin(&ds), TS_OK);
    assert_int_equal(ds.src.labels(&ds, refs[0], l, 8, &nl), TS_OK);
    assert_int_equal(nl, 3);
    assert_memory_equal(l[1].value, "2", 1);

    memset(&tc, 0, sizeof(tc));
    assert_int_equal(ds.src.chunks(&ds, refs[0], 0, 1000000, t_chunk, &tc),
                     TS_OK);
    assert_int_equal(tc.chunks, 1);
    assert_int_equal(tc.samples, 5);
    assert_int_equal(tc.mint, 100000);

    memset(&tc, 0, sizeof(tc));
    assert_int_equal(ds.src.chunks(&ds, refs[0], 500000, 600000, t_chunk,
                                   &tc), TS_OK);
    assert_int_equal(tc.chunks, 0);
    ds.src.end(&ds);

    ts_source_db_free(&ds);
}


static void
test_tenants(void **state)
{
    uint32_t        nl;
    uint64_t        refs[8];
    t_env_t        *e;
    ts_label_t      l[8];
    ts_source_db_t  ds, other;

    e = *state;
    t_put(e->db, "a", "node", "1", 100000, 2);

    ts_source_db_init(&ds, e->db, "a", 1);
    ts_source_db_init(&other, e->db, "b", 1);

    assert_int_equal(t_select(&other, TS_MATCH_EQ, "job", "node", refs, 8),
                     0);
    assert_int_equal(t_select(&ds, TS_MATCH_EQ, "job", "node", refs, 8), 1);

    /* a's series is not b's, even by ref */

    assert_int_equal(other.src.begin(&other), TS_OK);
    assert_int_equal(other.src.labels(&other, refs[0], l, 8, &nl),
                     TS_ERR_NOTFOUND);
    other.src.end(&other);

    /* b's first checkpoint lands between two steps: seen from then on */

    t_put(e->db, "b", "node", "9", 100000, 2);
    assert_int_equal(t_select(&other, TS_MATCH_EQ, "job", "node", refs, 8),
                     1);

    ts_source_db_free(&ds);
    ts_source_db_free(&other);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_select_and_read, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_tenants, t_setup, t_teardown),
    };

    return cmocka_run_group_tests_name("ts_source_db", tests, NULL, NULL);
}
