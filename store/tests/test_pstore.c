/*
 * Copyright (C) ngx_tsdb authors
 *
 * The profile store (ts_pstore.c, ts_pstore_read.c) on a real LMDB in a
 * mkdtemp() directory, with the Go fixtures of t/data/pprof/: a merge
 * out of the store must equal ts_pprof_merge() of the same inputs in
 * total and per-function flat value, for every sample type; the same
 * profile twice stores its symbols once; tenants, label matchers and
 * time ranges select; bad input is refused; a reopen keeps everything;
 * retention deletes the old rows in bounded steps and leaves the rest.
 */

#define _XOPEN_SOURCE 700

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_error.h"
#include "ts_folded.h"
#include "ts_pprof.h"
#include "ts_pstore.h"


#define TS_DATA          "t/data/pprof/"
#define T_T0             1700000000000000000LL


typedef struct {
    char                root[64];
    ts_pstore_t        *ps;
} t_env_t;


/* function name -> flat value of one sample type */
typedef struct {
    char                name[256];
    int64_t             flat;
} t_flat_t;


static int
t_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;

    return remove(path);
}


static void
t_open(t_env_t *e)
{
    int               rc;
    char              err[512];
    ts_pstore_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.path = e->root;
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;
    conf.nosync = 1;
    conf.map_size = 1 << 20;         /* small: growth is exercised */

    rc = ts_pstore_open(&e->ps, &conf, err, sizeof(err));
    if (rc != TS_OK) {
        fprintf(stderr, "open: %s\n", err);
    }

    assert_int_equal(rc, TS_OK);
}


static int
t_setup(void **state)
{
    t_env_t  *e;

    e = calloc(1, sizeof(t_env_t));
    assert_non_null(e);

    strcpy(e->root, "/tmp/ts_pstore_test.XXXXXX");
    assert_non_null(mkdtemp(e->root));

    t_open(e);
    *state = e;

    return 0;
}


static int
t_teardown(void **state)
{
    t_env_t  *e = *state;

    ts_pstore_close(e->ps);
    if (getenv("T_KEEP") == NULL) {
        (void) nftw(e->root, t_rm, 16, FTW_DEPTH | FTW_PHYS);

    } else {
        fprintf(stderr, "kept %s\n", e->root);
    }
    free(e);

    return 0;
}


static void
t_parse(const char *name, ts_pprof_t *p)
{
    FILE            *f;
    char             path[256];
    size_t           len;
    uint8_t         *buf;
    ts_pprof_why_t   why;

    snprintf(path, sizeof(path), TS_DATA "%s", name);
    f = fopen(path, "rb");
    assert_non_null(f);

    buf = malloc(1 << 20);
    assert_non_null(buf);
    len = fread(buf, 1, 1 << 20, f);
    fclose(f);

    ts_pprof_init(p, NULL, NULL);
    assert_int_equal(ts_pprof_parse(p, buf, len, &why), TS_OK);
    free(buf);
}


static int
t_put(t_env_t *e, const char *tenant, const char *name, const ts_pprof_t *p,
    const char *env, int64_t t, ts_pstore_stats_t *st)
{
    int              rc;
    char             err[512];
    uint32_t         n;
    ts_label_t       l[2];
    ts_pstore_put_t  in;

    n = 0;
    l[n].name = "service_name";
    l[n].name_len = 12;
    l[n].value = "myapp";
    l[n++].value_len = 5;

    if (env != NULL) {
        l[n].name = "env";
        l[n].name_len = 3;
        l[n].value = env;
        l[n++].value_len = (uint32_t) strlen(env);
    }

    memset(&in, 0, sizeof(in));
    in.tenant = tenant;
    in.tenant_len = strlen(tenant);
    in.name = name;
    in.name_len = strlen(name);
    in.labels = l;
    in.nlabels = n;
    in.time_nanos = t;
    in.prof = p;

    rc = ts_pstore_put(e->ps, &in, st, err, sizeof(err));
    if (rc != TS_OK && getenv("T_VERBOSE") != NULL) {
        fprintf(stderr, "put: %s\n", err);
    }

    return rc;
}


static int
t_merge(t_env_t *e, const char *tenant, const char *type,
    const ts_matcher_t *m, uint32_t nm, int64_t from, int64_t until,
    ts_pprof_t *out, uint64_t *n)
{
    int                rc;
    char               err[512];
    ts_pstore_query_t  q;

    memset(&q, 0, sizeof(q));
    q.tenant = tenant;
    q.tenant_len = strlen(tenant);
    q.type = type;
    q.type_len = strlen(type);
    q.matchers = m;
    q.nmatchers = nm;
    q.from = from;
    q.until = until;

    ts_pprof_init(out, NULL, NULL);

    rc = ts_pstore_merge(e->ps, &q, out, n, err, sizeof(err));
    if (rc != TS_OK && getenv("T_VERBOSE") != NULL) {
        fprintf(stderr, "merge: %s\n", err);
    }

    return rc;
}


/* the index of a sample type named type, or -1 */

static int
t_type(const ts_pprof_t *p, const char *type)
{
    uint32_t               i;
    const ts_pprof_str_t  *s;

    for (i = 0; i < p->ntypes; i++) {
        s = ts_pprof_string(p, p->types[i].type);
        if (s->len == strlen(type) && memcmp(s->data, type, s->len) == 0) {
            return (int) i;
        }
    }

    return -1;
}


static int
t_flat_cmp(const void *a, const void *b)
{
    return strcmp(((const t_flat_t *) a)->name, ((const t_flat_t *) b)->name);
}


/* per-function flat values (leaf's innermost frame) of type t, sorted */

static t_flat_t *
t_flats(const ts_pprof_t *p, int t, uint32_t *n, int64_t *total)
{
    uint32_t                    i, j, loc;
    t_flat_t                   *f;
    int64_t                     v;
    const ts_pprof_str_t       *s;
    const ts_pprof_sample_t    *sm;
    const ts_pprof_location_t  *l;

    f = calloc(p->nsamples + 1, sizeof(t_flat_t));
    assert_non_null(f);

    *n = 0;
    *total = 0;

    for (i = 0; i < p->nsamples; i++) {
        sm = &p->samples[i];
        v = p->values[(size_t) i * p->ntypes + t];
        *total += v;

        if (sm->depth == 0 || v == 0) {
            continue;
        }

        loc = p->stacks[sm->stack];
        l = &p->locations[loc - 1];
        s = ts_pprof_string(p, l->nlines
            ? p->functions[p->lines[l->line].function - 1].name : 0);

        for (j = 0; j < *n; j++) {
            if (strlen(f[j].name) == s->len
                && memcmp(f[j].name, s->data, s->len) == 0)
            {
                break;
            }
        }

        if (j == *n) {
            snprintf(f[j].name, sizeof(f[j].name), "%.*s", (int) s->len,
                     s->data);
            (*n)++;
        }

        f[j].flat += v;
    }

    qsort(f, *n, sizeof(t_flat_t), t_flat_cmp);

    return f;
}


static void
t_same(const ts_pprof_t *want, const char *type, const ts_pprof_t *got)
{
    int        t;
    int64_t    wt, gt;
    uint32_t   i, wn, gn;
    t_flat_t  *wf, *gf;

    t = t_type(want, type);
    assert_true(t >= 0);
    assert_int_equal(got->ntypes, 1);

    wf = t_flats(want, t, &wn, &wt);
    gf = t_flats(got, 0, &gn, &gt);

    assert_int_equal(wt, gt);
    assert_true(wt != 0);
    assert_int_equal(wn, gn);

    for (i = 0; i < wn; i++) {
        assert_string_equal(wf[i].name, gf[i].name);
        assert_int_equal(wf[i].flat, gf[i].flat);
    }

    assert_int_equal(want->period, got->period);

    free(wf);
    free(gf);
}


static void
t_roundtrip_cpu(void **state)
{
    t_env_t        *e = *state;
    uint64_t        n;
    ts_pprof_t      a, b, want, got;
    ts_pprof_why_t  why;

    t_parse("cpu1.pb.gz", &a);
    t_parse("cpu2.pb.gz", &b);

    assert_int_equal(t_put(e, "t1", "process_cpu", &a, "prod", 0, NULL),
                     TS_OK);
    assert_int_equal(t_put(e, "t1", "process_cpu", &b, "prod", 0, NULL),
                     TS_OK);

    ts_pprof_init(&want, NULL, NULL);
    assert_int_equal(ts_pprof_merge(&want, &a, &why), TS_OK);
    assert_int_equal(ts_pprof_merge(&want, &b, &why), TS_OK);

    assert_int_equal(t_merge(e, "t1",
                             "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                             NULL, 0, INT64_MIN, INT64_MAX, &got, &n),
                     TS_OK);
    assert_int_equal(n, 2);
    t_same(&want, "cpu", &got);
    assert_int_equal(got.duration_nanos, want.duration_nanos);
    assert_int_equal(got.time_nanos, want.time_nanos);
    ts_pprof_free(&got);

    assert_int_equal(t_merge(e, "t1",
                             "process_cpu:samples:count:cpu:nanoseconds",
                             NULL, 0, INT64_MIN, INT64_MAX, &got, &n),
                     TS_OK);
    t_same(&want, "samples", &got);
    ts_pprof_free(&got);

    ts_pprof_free(&want);
    ts_pprof_free(&a);
    ts_pprof_free(&b);
}


static void
t_roundtrip_heap(void **state)
{
    t_env_t     *e = *state;
    uint64_t     n;
    uint32_t     i;
    ts_pprof_t   h, got;
    char         type[128];

    static const char  *types[] = {
        "alloc_objects:count", "alloc_space:bytes", "inuse_objects:count",
        "inuse_space:bytes"
    };

    t_parse("heap1.pb.gz", &h);

    assert_int_equal(t_put(e, "t1", "memory", &h, NULL, 0, NULL), TS_OK);

    for (i = 0; i < 4; i++) {
        snprintf(type, sizeof(type), "memory:%s:space:bytes", types[i]);
        assert_int_equal(t_merge(e, "t1", type, NULL, 0, INT64_MIN,
                                 INT64_MAX, &got, &n), TS_OK);
        assert_int_equal(n, 1);
        *strchr(type + 7, ':') = '\0';
        t_same(&h, type + 7, &got);
        ts_pprof_free(&got);
    }

    ts_pprof_free(&h);
}


static void
t_dedup(void **state)
{
    t_env_t            *e = *state;
    ts_pprof_t          a;
    ts_pstore_stats_t   s1, s2;

    t_parse("cpu1.pb.gz", &a);

    assert_int_equal(t_put(e, "t1", "process_cpu", &a, NULL, T_T0, &s1),
                     TS_OK);
    assert_true(s1.new_strings > 0);
    assert_true(s1.new_functions > 0);
    assert_true(s1.new_locations > 0);
    assert_true(s1.new_nodes > 0);
    assert_int_equal(s1.new_series, 2);
    assert_int_equal(s1.series, 2);

    assert_int_equal(t_put(e, "t1", "process_cpu", &a, NULL, T_T0, &s2),
                     TS_OK);
    assert_int_equal(s2.new_strings, 0);
    assert_int_equal(s2.new_functions, 0);
    assert_int_equal(s2.new_mappings, 0);
    assert_int_equal(s2.new_locations, 0);
    assert_int_equal(s2.new_nodes, 0);
    assert_int_equal(s2.new_series, 0);
    assert_int_equal(s2.symbol_bytes, 0);
    assert_int_equal(s2.series, 2);
    assert_int_equal(s2.row_bytes, s1.row_bytes);

    if (getenv("T_VERBOSE") != NULL) {
        fprintf(stderr, "cpu1: first %llu symbol + %llu row bytes, "
                "again %llu row bytes (%u samples)\n",
                (unsigned long long) s1.symbol_bytes,
                (unsigned long long) s1.row_bytes,
                (unsigned long long) s2.row_bytes, a.nsamples);
    }

    ts_pprof_free(&a);
}


static void
t_tenants(void **state)
{
    t_env_t     *e = *state;
    uint64_t     n;
    ts_pprof_t   a, got;

    t_parse("cpu1.pb.gz", &a);

    assert_int_equal(t_put(e, "t1", "process_cpu", &a, NULL, 0, NULL),
                     TS_OK);

    assert_int_equal(t_merge(e, "t2",
                             "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                             NULL, 0, INT64_MIN, INT64_MAX, &got, &n),
                     TS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(got.nsamples, 0);
    ts_pprof_free(&got);

    /* t2's own data does not leak into t1 either */
    assert_int_equal(t_put(e, "t2", "process_cpu", &a, NULL, 0, NULL),
                     TS_OK);
    assert_int_equal(t_merge(e, "t1",
                             "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                             NULL, 0, INT64_MIN, INT64_MAX, &got, &n),
                     TS_OK);
    assert_int_equal(n, 1);
    ts_pprof_free(&got);

    ts_pprof_free(&a);
}


static void
t_select(void **state)
{
    t_env_t       *e = *state;
    uint64_t       n;
    ts_pprof_t     a, got;
    ts_matcher_t   m;

    static const char  *cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

    t_parse("cpu1.pb.gz", &a);
    a.time_nanos = 0;             /* rows at the times given here */

    assert_int_equal(t_put(e, "t1", "process_cpu", &a, "prod", T_T0, NULL),
                     TS_OK);
    assert_int_equal(t_put(e, "t1", "process_cpu", &a, "dev", T_T0 + 10,
                           NULL), TS_OK);
    assert_int_equal(t_put(e, "t1", "process_cpu", &a, "dev", T_T0 + 20,
                           NULL), TS_OK);

    m.type = TS_MATCH_EQ;
    m.name = "env";
    m.name_len = 3;
    m.value = "dev";
    m.value_len = 3;

    assert_int_equal(t_merge(e, "t1", cpu, &m, 1, INT64_MIN, INT64_MAX,
                             &got, &n), TS_OK);
    assert_int_equal(n, 2);
    ts_pprof_free(&got);

    m.type = TS_MATCH_RE;
    m.value = "pro.*";
    m.value_len = 5;
    assert_int_equal(t_merge(e, "t1", cpu, &m, 1, INT64_MIN, INT64_MAX,
                             &got, &n), TS_OK);
    assert_int_equal(n, 1);
    ts_pprof_free(&got);

    /* time range, inclusive */
    assert_int_equal(t_merge(e, "t1", cpu, NULL, 0, T_T0 + 10, T_T0 + 20,
                             &got, &n), TS_OK);
    assert_int_equal(n, 2);
    ts_pprof_free(&got);
    assert_int_equal(t_merge(e, "t1", cpu, NULL, 0, T_T0 + 21, INT64_MAX,
                             &got, &n), TS_OK);
    assert_int_equal(n, 0);
    ts_pprof_free(&got);

    /* another type selects nothing */
    assert_int_equal(t_merge(e, "t1", "memory:alloc_space:bytes:space:bytes",
                             NULL, 0, INT64_MIN, INT64_MAX, &got, &n),
                     TS_OK);
    assert_int_equal(n, 0);
    ts_pprof_free(&got);

    ts_pprof_free(&a);
}


static void
t_invalid(void **state)
{
    t_env_t          *e = *state;
    char              err[256];
    uint64_t          n;
    ts_label_t        l;
    ts_pprof_t        a, got;
    ts_pstore_put_t   in;

    static const struct {
        const char   *name;
        const char   *value;
    } bad[] = {
        { "__reserved", "x" },
        { "1abc", "x" },
        { "env", "\xff\xfe" },
    };

    size_t  i;

    t_parse("cpu1.pb.gz", &a);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        l.name = bad[i].name;
        l.name_len = (uint32_t) strlen(bad[i].name);
        l.value = bad[i].value;
        l.value_len = (uint32_t) strlen(bad[i].value);

        memset(&in, 0, sizeof(in));
        in.tenant = "t1";
        in.tenant_len = 2;
        in.name = "process_cpu";
        in.name_len = 11;
        in.labels = &l;
        in.nlabels = 1;
        in.prof = &a;

        assert_int_equal(ts_pstore_put(e->ps, &in, NULL, err, sizeof(err)),
                         TS_ERR_INVALID);
        assert_non_null(strstr(err, "invalid label"));
    }

    /* nothing was stored by the refused puts */
    assert_int_equal(t_merge(e, "t1",
                             "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                             NULL, 0, INT64_MIN, INT64_MAX, &got, &n),
                     TS_OK);
    assert_int_equal(n, 0);
    ts_pprof_free(&got);

    assert_int_equal(t_merge(e, "t1", "process_cpu", NULL, 0, INT64_MIN,
                             INT64_MAX, &got, &n), TS_ERR_INVALID);
    ts_pprof_free(&got);

    ts_pprof_free(&a);
}


static void
t_folded(void **state)
{
    t_env_t           *e = *state;
    uint64_t           n;
    ts_pprof_t         p, got;
    ts_pprof_why_t     why;
    ts_folded_opts_t   o;

    static const char  body[] = "main;work;spin 30\nmain;idle 10\n";

    memset(&o, 0, sizeof(o));
    o.type = "cpu";
    o.unit = "nanoseconds";
    o.period_type = "cpu";
    o.period_unit = "nanoseconds";
    o.period = 10000000;
    o.scale = 10000000;

    ts_pprof_init(&p, NULL, NULL);
    assert_int_equal(ts_folded_parse(&p, TS_FOLDED, body, sizeof(body) - 1,
                                     &o, &why), TS_OK);
    assert_int_equal(t_put(e, "t1", "process_cpu", &p, NULL, T_T0, NULL),
                     TS_OK);

    assert_int_equal(t_merge(e, "t1",
                             "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                             NULL, 0, INT64_MIN, INT64_MAX, &got, &n),
                     TS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(got.time_nanos, T_T0);
    t_same(&p, "cpu", &got);
    ts_pprof_free(&got);
    ts_pprof_free(&p);
}


static void
t_reopen(void **state)
{
    t_env_t     *e = *state;
    uint64_t     n, used1, used2;
    ts_pprof_t   a, got;

    t_parse("cpu1.pb.gz", &a);

    assert_int_equal(t_put(e, "t1", "process_cpu", &a, NULL, 0, NULL),
                     TS_OK);
    assert_int_equal(ts_pstore_used(e->ps, &used1), TS_OK);

    ts_pstore_close(e->ps);
    t_open(e);

    assert_int_equal(ts_pstore_used(e->ps, &used2), TS_OK);
    assert_int_equal(used1, used2);

    assert_int_equal(t_merge(e, "t1",
                             "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                             NULL, 0, INT64_MIN, INT64_MAX, &got, &n),
                     TS_OK);
    assert_int_equal(n, 1);
    t_same(&a, "cpu", &got);
    ts_pprof_free(&got);

    /* ids continue where they were: the same profile adds no symbols */
    assert_int_equal(t_put(e, "t1", "process_cpu", &a, NULL, 0, NULL),
                     TS_OK);

    ts_pprof_free(&a);
}


/* many distinct profiles: the 1 MiB map grows several times */

static void
t_growth(void **state)
{
    t_env_t          *e = *state;
    char              body[64 * 40];
    size_t            len;
    uint32_t          i, j;
    uint64_t          n;
    ts_pprof_t        p, got;
    ts_pprof_why_t    why;
    ts_folded_opts_t  o;

    memset(&o, 0, sizeof(o));
    o.type = "samples";
    o.unit = "count";

    for (i = 0; i < 200; i++) {
        len = 0;
        for (j = 0; j < 40; j++) {
            len += (size_t) snprintf(body + len, sizeof(body) - len,
                                     "main;f%u;g%u;h%u 1\n", i, j, i * j);
        }

        ts_pprof_init(&p, NULL, NULL);
        assert_int_equal(ts_folded_parse(&p, TS_FOLDED, body, len, &o,
                                         &why), TS_OK);
        assert_int_equal(t_put(e, "t1", "wall", &p, NULL, T_T0 + i, NULL),
                         TS_OK);
        ts_pprof_free(&p);
    }

    assert_int_equal(t_merge(e, "t1", "wall:samples:count::", NULL, 0,
                             INT64_MIN, INT64_MAX, &got, &n), TS_OK);
    assert_int_equal(n, 200);
    assert_int_equal(got.nsamples, 200 * 40);
    ts_pprof_free(&got);
}


/*
 * A profile with string sample labels (Go's pprof labels) becomes one
 * series per distinct label set, as Pyroscope splits it: numeric labels
 * and span_id do not split, a series label wins over a sample label of
 * the same name, and samples without labels keep the series' own
 * labels.
 */

typedef struct {
    char                sets[8][128];
    uint32_t            n;
} t_sets_t;


static int
t_sets_cb(void *data, const ts_label_t *l, uint32_t n, uint64_t rows,
    uint64_t row_bytes)
{
    char      *b;
    size_t     len;
    uint32_t   i;
    t_sets_t  *s = data;

    (void) row_bytes;

    assert_true(s->n < 8);
    assert_int_equal(rows, 1);

    b = s->sets[s->n++];
    len = 0;
    b[0] = '\0';

    for (i = 0; i < n; i++) {
        if (l[i].name_len >= 2 && l[i].name[0] == '_' && l[i].name[1] == '_')
        {
            continue;
        }

        len += snprintf(b + len, 128 - len, "%.*s=%.*s,", (int) l[i].name_len,
                        l[i].name, (int) l[i].value_len, l[i].value);
    }

    return TS_OK;
}


static int
t_sets_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}


static void
t_labelled(ts_pprof_t *p)
{
    uint32_t             i, s[5], f, loc[3];
    int64_t              v;
    ts_pprof_why_t       why;
    ts_pprof_line_t      line;
    ts_pprof_label_t     l[3];
    ts_pprof_vtype_t     vt;
    ts_pprof_function_t  fn;
    static const char   *names[] = { "main.a", "main.b", "main.c" };
    static const char   *strs[] = { "cpu", "nanoseconds", "handler", "/a",
                                    "/b", "span_id", "42", "service_name",
                                    "other", "bytes" };

    ts_pprof_init(p, NULL, NULL);

    for (i = 0; i < 5; i++) {
        s[i] = ts_pprof_add_string(p, strs[i], strlen(strs[i]));
    }

    vt.type = s[0];
    vt.unit = s[1];
    assert_int_equal(ts_pprof_set_types(p, &vt, 1), TS_OK);
    p->period_type = vt;
    p->period = 10000000;

    for (i = 0; i < 3; i++) {
        memset(&fn, 0, sizeof(fn));
        fn.name = ts_pprof_add_string(p, names[i], strlen(names[i]));
        f = ts_pprof_add_function(p, &fn);
        line.function = f;
        line.line = 10;
        line.column = 0;
        loc[i] = ts_pprof_add_location(p, 0, 0, 0, &line, 1);
        assert_true(loc[i] != 0);
    }

    /* main.a {handler=/a, bytes=10 (numeric)}: 10 */
    memset(l, 0, sizeof(l));
    l[0].key = s[2];
    l[0].str = s[3];
    l[1].key = ts_pprof_add_string(p, strs[9], strlen(strs[9]));
    l[1].num = 10;
    v = 10;
    assert_int_equal(ts_pprof_add_sample(p, &loc[0], 1, &v, l, 2, &why),
                     TS_OK);

    /* main.b {handler=/b, span_id=42}: 20 */
    memset(l, 0, sizeof(l));
    l[0].key = s[2];
    l[0].str = s[4];
    l[1].key = ts_pprof_add_string(p, strs[5], strlen(strs[5]));
    l[1].str = ts_pprof_add_string(p, strs[6], strlen(strs[6]));
    v = 20;
    assert_int_equal(ts_pprof_add_sample(p, &loc[1], 1, &v, l, 2, &why),
                     TS_OK);

    /* main.c, no labels: 30 */
    v = 30;
    assert_int_equal(ts_pprof_add_sample(p, &loc[2], 1, &v, NULL, 0, &why),
                     TS_OK);

    /* main.a {handler=/a, service_name=other}: 5, the /a series */
    memset(l, 0, sizeof(l));
    l[0].key = s[2];
    l[0].str = s[3];
    l[1].key = ts_pprof_add_string(p, strs[7], strlen(strs[7]));
    l[1].str = ts_pprof_add_string(p, strs[8], strlen(strs[8]));
    v = 5;
    assert_int_equal(ts_pprof_add_sample(p, &loc[0], 1, &v, l, 2, &why),
                     TS_OK);
}


static int64_t
t_total(t_env_t *e, const char *handler, uint64_t *n)
{
    int64_t        total;
    uint32_t       i;
    ts_pprof_t     got;
    ts_matcher_t   m;

    memset(&m, 0, sizeof(m));
    m.type = TS_MATCH_EQ;
    m.name = "handler";
    m.name_len = 7;
    m.value = handler;
    m.value_len = handler ? strlen(handler) : 0;

    assert_int_equal(t_merge(e, "t1",
                             "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                             &m, handler ? 1 : 0, INT64_MIN, INT64_MAX, &got,
                             n),
                     TS_OK);

    total = 0;
    for (i = 0; i < got.nsamples; i++) {
        total += got.values[i];
    }

    ts_pprof_free(&got);

    return total;
}


static void
t_sample_labels(void **state)
{
    t_env_t            *e = *state;
    char                err[512];
    uint64_t            n;
    ts_pprof_t          a;
    t_sets_t            sets;
    ts_pstore_query_t   q;
    ts_pstore_stats_t   st;

    t_labelled(&a);

    assert_int_equal(t_put(e, "t1", "process_cpu", &a, "prod", T_T0, &st),
                     TS_OK);
    assert_int_equal(st.new_series, 3);
    assert_int_equal(st.series, 3);

    memset(&q, 0, sizeof(q));
    q.tenant = "t1";
    q.tenant_len = 2;
    q.from = INT64_MIN;
    q.until = INT64_MAX;
    memset(&sets, 0, sizeof(sets));

    assert_int_equal(ts_pstore_series(e->ps, &q, t_sets_cb, &sets, err,
                                      sizeof(err)),
                     TS_OK);
    assert_int_equal(sets.n, 3);
    qsort(sets.sets, sets.n, sizeof(sets.sets[0]), t_sets_cmp);
    assert_string_equal(sets.sets[0], "env=prod,handler=/a,"
                                      "service_name=myapp,");
    assert_string_equal(sets.sets[1], "env=prod,handler=/b,"
                                      "service_name=myapp,");
    assert_string_equal(sets.sets[2], "env=prod,service_name=myapp,");

    assert_int_equal(t_total(e, "/a", &n), 15);
    assert_int_equal(n, 1);
    assert_int_equal(t_total(e, "/b", &n), 20);
    assert_int_equal(t_total(e, NULL, &n), 65);
    assert_int_equal(n, 3);

    ts_pprof_free(&a);
}


/* a sample label that cannot be a label name refuses the profile */

static void
t_sample_label_invalid(void **state)
{
    t_env_t          *e = *state;
    char              err[512];
    uint64_t          n;
    int64_t           v;
    uint32_t          loc;
    ts_pprof_t        a;
    ts_pprof_why_t    why;
    ts_pprof_label_t  l;
    ts_pstore_put_t   in[2];

    t_labelled(&a);

    loc = a.stacks[a.samples[0].stack];
    memset(&l, 0, sizeof(l));
    l.key = ts_pprof_add_string(&a, "bad-key", 7);
    l.str = ts_pprof_add_string(&a, "x", 1);
    v = 1;
    assert_int_equal(ts_pprof_add_sample(&a, &loc, 1, &v, &l, 1, &why),
                     TS_OK);

    assert_int_equal(t_put(e, "t1", "process_cpu", &a, NULL, T_T0, NULL),
                     TS_ERR_INVALID);

    /* a batch with one bad profile stores none of them */

    ts_pprof_free(&a);
    t_labelled(&a);

    memset(in, 0, sizeof(in));
    in[0].tenant = "t1";
    in[0].tenant_len = 2;
    in[0].name = "process_cpu";
    in[0].name_len = 11;
    in[0].time_nanos = T_T0;
    in[0].prof = &a;
    in[1] = in[0];
    in[1].name = "bad name";
    in[1].name_len = 8;

    assert_int_equal(ts_pstore_putv(e->ps, in, 2, NULL, err, sizeof(err)),
                     TS_ERR_INVALID);
    assert_non_null(strstr(err, "invalid profile name"));
    assert_int_equal(t_total(e, NULL, &n), 0);
    assert_int_equal(n, 0);

    in[1].name = "process_cpu";
    in[1].name_len = 11;
    in[1].time_nanos = T_T0 + 1000;
    assert_int_equal(ts_pstore_putv(e->ps, in, 2, NULL, err, sizeof(err)),
                     TS_OK);
    /* without a series service_name, the sample's one splits too */
    assert_int_equal(t_total(e, NULL, &n), 130);
    assert_int_equal(n, 8);

    ts_pprof_free(&a);
}


/*
 * Retention: 10 rows 1 s apart in each of 6 series (2 tenants, 2
 * label sets, 2 sample types); a cutoff at the 6th deletes 5 rows of
 * each series, in steps of at most 3 keys, and what is left merges to
 * exactly what the range [cutoff, end] merged before.
 */

static void
t_retention(void **state)
{
    t_env_t                *e = *state;
    char                    err[512];
    int64_t                 cutoff;
    uint32_t                i, steps;
    uint64_t                n, rows;
    const char             *type;
    ts_pprof_t              a, b, want, got;
    ts_pstore_retention_t   st;

    type = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    t_parse("cpu1.pb.gz", &a);
    t_parse("cpu2.pb.gz", &b);

    for (i = 0; i < 10; i++) {
        a.time_nanos = T_T0 + (int64_t) i * 1000000000;
        b.time_nanos = a.time_nanos;
        assert_int_equal(t_put(e, "t1", "process_cpu", &a, "x", 0, NULL),
                         TS_OK);
        assert_int_equal(t_put(e, "t1", "process_cpu", &b, "y", 0, NULL),
                         TS_OK);
        assert_int_equal(t_put(e, "t2", "process_cpu", &a, NULL, 0, NULL),
                         TS_OK);
    }

    cutoff = T_T0 + 5 * 1000000000LL;

    assert_int_equal(t_merge(e, "t1", type, NULL, 0, cutoff, INT64_MAX,
                             &want, &n), TS_OK);
    assert_int_equal(n, 10);

    assert_int_equal(ts_pstore_retention(e->ps, cutoff, 0, &st, err,
                                         sizeof(err)), TS_ERR_INVALID);

    /* bounded steps until the pass is complete */
    rows = 0;

    for (steps = 0; steps < 100; steps++) {
        assert_int_equal(ts_pstore_retention(e->ps, cutoff, 3, &st, err,
                                             sizeof(err)), TS_OK);
        assert_true(st.visited <= 3);
        assert_true(st.rows <= st.visited);
        assert_true(st.rows == 0 || st.row_bytes > st.rows * 16);
        rows += st.rows;

        if (!st.more) {
            break;
        }
    }

    /* 30 deletions and 6 looks at a kept row: 12 full steps, one more */
    assert_int_equal(rows, 6 * 5);
    assert_int_equal(steps + 1, 12);

    assert_int_equal(t_merge(e, "t1", type, NULL, 0, INT64_MIN, INT64_MAX,
                             &got, &n), TS_OK);
    assert_int_equal(n, 10);
    t_same(&want, "cpu", &got);
    ts_pprof_free(&got);

    assert_int_equal(t_merge(e, "t1", type, NULL, 0, INT64_MIN, cutoff - 1,
                             &got, &n), TS_OK);
    assert_int_equal(n, 0);
    ts_pprof_free(&got);

    assert_int_equal(t_merge(e, "t2", type, NULL, 0, INT64_MIN, INT64_MAX,
                             &got, &n), TS_OK);
    assert_int_equal(n, 5);
    ts_pprof_free(&got);

    /* a second pass finds nothing, in one step of 6 looks */
    assert_int_equal(ts_pstore_retention(e->ps, cutoff, 1000, &st, err,
                                         sizeof(err)), TS_OK);
    assert_int_equal(st.rows, 0);
    assert_int_equal(st.visited, 6);
    assert_false(st.more);

    /* a later cutoff takes the rest; the series stay, selecting nothing */
    assert_int_equal(ts_pstore_retention(e->ps, INT64_MAX, 1000, &st, err,
                                         sizeof(err)), TS_OK);
    assert_int_equal(st.rows, 30);
    assert_false(st.more);

    assert_int_equal(t_merge(e, "t1", type, NULL, 0, INT64_MIN, INT64_MAX,
                             &got, &n), TS_OK);
    assert_int_equal(n, 0);
    assert_int_equal(got.nsamples, 0);
    ts_pprof_free(&got);

    /* and the store takes new rows after it */
    assert_int_equal(t_put(e, "t1", "process_cpu", &a, "x", 0, NULL), TS_OK);
    assert_int_equal(t_merge(e, "t1", type, NULL, 0, INT64_MIN, INT64_MAX,
                             &got, &n), TS_OK);
    assert_int_equal(n, 1);
    ts_pprof_free(&got);

    ts_pprof_free(&want);
    ts_pprof_free(&a);
    ts_pprof_free(&b);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(t_roundtrip_cpu, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(t_roundtrip_heap, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(t_dedup, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(t_tenants, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(t_select, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(t_invalid, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(t_folded, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(t_reopen, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(t_growth, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(t_sample_labels, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(t_sample_label_invalid, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(t_retention, t_setup, t_teardown),
    };

    if (getenv("T_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("T_FILTER"));
    }

    return cmocka_run_group_tests(tests, NULL, NULL);
}
