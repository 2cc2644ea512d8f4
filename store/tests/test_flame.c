/*
 * Copyright (C) ngx_tsdb authors
 *
 * Flame graphs (ts_flame.c), table-driven: each case is a folded body
 * (built into a profile by ts_folded_parse) and maxNodes, with the
 * names and levels Pyroscope's NewFlameGraph gives for that tree,
 * worked out by hand from its walk (children by name, visited last
 * first, x offsets delta-encoded).  Then inline frames and locations
 * without lines, the folded export, the flat-per-function identity
 * and the whole /render JSON; the pprof cut to max_nodes.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_flame.h"
#include "ts_folded.h"
#include "ts_pprof.h"


typedef struct {
    const char         *name;
    const char         *body;
    int64_t             max_nodes;
    const char         *names;     /* joined by "," */
    const char         *levels;    /* "[..],[..]" */
    int64_t             total;
    int64_t             max_self;
} tfl_case_t;


static const tfl_case_t  tfl_cases[] = {
    { "children by name, visited last first",
      "main;a;b 3\nmain;a 2\nmain;c 5\n", 0,
      "total,main,c,a,b",
      "[0,10,0,0],[0,10,0,1],[0,5,2,3,0,5,5,2],[2,3,3,4]", 10, 5 },
    { "maxNodes folds the lightest into other",
      "main;a;b 3\nmain;a 2\nmain;c 5\n", 3,
      "total,main,c,a,other",
      "[0,10,0,0],[0,10,0,1],[0,5,2,3,0,5,5,2],[2,3,3,4]", 10, 5 },
    { "other collects several siblings",
      "m;a 1\nm;b 1\nm;c 8\n", 2,
      "total,m,other,c",
      "[0,10,0,0],[0,10,0,1],[0,8,8,3,0,2,2,2]", 10, 8 },
    { "maxNodes at the node count keeps all",
      "m;a 1\nm;b 1\n", 3,
      "total,m,b,a",
      "[0,2,0,0],[0,2,0,1],[0,1,1,3,0,1,1,2]", 2, 1 },
    { "two roots and self on an inner node",
      "x 4\ny;z 6\nx;w 1\n", 0,
      "total,y,z,x,w",
      "[0,11,0,0],[0,5,4,3,0,6,0,1],[4,1,1,4,0,6,6,2]", 11, 6 },
    { "recursion is a path, not a cycle",
      "f;f;f 2\nf 1\n", 0,
      "total,f",
      "[0,3,0,0],[0,3,1,1],[1,2,0,1],[1,2,2,1]", 3, 2 },
    { "a frame named total shares index 0",
      "total;a 1\n", 0,
      "total,a",
      "[0,1,0,0],[0,1,0,0],[0,1,1,1]", 1, 1 },
    { "an empty profile is the root alone",
      "", 0, "total", "[0,0,0,0]", 0, 0 },
};


static void
tfl_profile(ts_pprof_t *p, const char *body)
{
    ts_pprof_why_t    why;
    ts_folded_opts_t  o;

    memset(&o, 0, sizeof(o));
    o.type = "samples";
    o.unit = "count";

    ts_pprof_init(p, NULL, NULL);
    assert_int_equal(ts_folded_parse(p, TS_FOLDED, body, strlen(body), &o,
                                     &why), TS_OK);
}


static void
tfl_render(const ts_flame_graph_t *g, char *names, char *levels,
    size_t size)
{
    size_t    n;
    uint32_t  i, j;

    for (i = 0, n = 0; i < g->nnames; i++) {
        n += snprintf(names + n, size - n, "%s%s", i ? "," : "",
                      g->names[i]);
    }

    levels[0] = '\0';

    for (i = 0, n = 0; i < g->nlevels; i++) {
        n += snprintf(levels + n, size - n, "%s[", i ? "," : "");

        for (j = 0; j < g->levels[i].n; j++) {
            n += snprintf(levels + n, size - n, "%s%lld", j ? "," : "",
                          (long long) g->levels[i].v[j]);
        }

        n += snprintf(levels + n, size - n, "]");
    }
}


static void
test_cases(void **state)
{
    char               names[1024], levels[1024];
    size_t             i;
    ts_pprof_t         p;
    ts_flame_tree_t    t;
    ts_flame_graph_t   g;
    const tfl_case_t  *c;

    (void) state;

    for (i = 0; i < sizeof(tfl_cases) / sizeof(tfl_cases[0]); i++) {
        c = &tfl_cases[i];
        print_message("case: %s\n", c->name);

        tfl_profile(&p, c->body);
        assert_int_equal(ts_flame_tree(&t, &p, 0), TS_OK);
        assert_int_equal(ts_flame_graph(&g, &t, c->max_nodes), TS_OK);

        tfl_render(&g, names, levels, sizeof(names));
        assert_string_equal(names, c->names);
        assert_string_equal(levels, c->levels);
        assert_int_equal(g.total, c->total);
        assert_int_equal(g.max_self, c->max_self);

        ts_flame_graph_free(&g);
        ts_flame_tree_free(&t);
        ts_pprof_free(&p);
    }
}


/* a location with two lines (inline) and one without lines */

static void
test_inline_and_address(void **state)
{
    char               names[1024], levels[1024];
    int64_t            v;
    uint32_t           fn[3], loc[2];
    ts_pprof_t         p;
    ts_pprof_why_t     why;
    ts_flame_tree_t    t;
    ts_flame_graph_t   g;
    ts_pprof_line_t    ln[2];
    ts_pprof_vtype_t   vt;
    ts_pprof_function_t  f;

    (void) state;

    ts_pprof_init(&p, NULL, NULL);
    vt.type = ts_pprof_add_string(&p, "samples", 7);
    vt.unit = ts_pprof_add_string(&p, "count", 5);
    assert_int_equal(ts_pprof_set_types(&p, &vt, 1), TS_OK);

    memset(&f, 0, sizeof(f));
    f.name = ts_pprof_add_string(&p, "inl", 3);
    fn[0] = ts_pprof_add_function(&p, &f);
    f.name = ts_pprof_add_string(&p, "outer", 5);
    fn[1] = ts_pprof_add_function(&p, &f);
    f.name = ts_pprof_add_string(&p, "main", 4);
    fn[2] = ts_pprof_add_function(&p, &f);

    /* callee first: inl was inlined into outer */
    ln[0].function = fn[0];
    ln[0].line = 10;
    ln[0].column = 0;
    ln[1].function = fn[1];
    ln[1].line = 20;
    ln[1].column = 0;
    loc[0] = ts_pprof_add_location(&p, 0, 0x1000, 0, ln, 2);
    loc[1] = ts_pprof_add_location(&p, 0, 0xabc, 0, NULL, 0);
    assert_true(loc[0] != 0 && loc[1] != 0);

    /* leaf first: inl/outer called from an unsymbolized frame */
    v = 7;
    assert_int_equal(ts_pprof_add_sample(&p, loc, 2, &v, NULL, 0, &why),
                     TS_OK);

    assert_int_equal(ts_flame_tree(&t, &p, 0), TS_OK);
    assert_int_equal(ts_flame_graph(&g, &t, 0), TS_OK);
    tfl_render(&g, names, levels, sizeof(names));

    assert_string_equal(names, "total,0xabc,outer,inl");
    assert_string_equal(levels, "[0,7,0,0],[0,7,0,1],[0,7,0,2],[0,7,7,3]");

    ts_flame_graph_free(&g);
    ts_flame_tree_free(&t);

    assert_int_equal(ts_flame_tree(&t, &p, 1), TS_ERR_INVALID);
    ts_flame_tree_free(&t);
    ts_pprof_free(&p);
}


typedef struct {
    char        buf[1024];
    size_t      len;
} tfl_out_t;


static int
tfl_write(void *data, const char *p, size_t len)
{
    tfl_out_t  *o = data;

    if (o->len + len >= sizeof(o->buf)) {
        return -1;
    }

    memcpy(o->buf + o->len, p, len);
    o->len += len;
    o->buf[o->len] = '\0';

    return 0;
}


static void
test_folded(void **state)
{
    ts_pprof_t       p;
    tfl_out_t        o;
    ts_flame_tree_t  t;

    (void) state;

    tfl_profile(&p, "main;c 5\nmain;a;b 3\nmain;a 2\nmain 1\n");
    assert_int_equal(ts_flame_tree(&t, &p, 0), TS_OK);

    o.len = 0;
    assert_int_equal(ts_flame_folded(&t, tfl_write, &o), TS_OK);
    assert_string_equal(o.buf, "main 1\nmain;a 2\nmain;a;b 3\nmain;c 5\n");

    ts_flame_tree_free(&t);
    ts_pprof_free(&p);
}


/* self summed per name is flat per function, whatever the paths */

static void
test_flat(void **state)
{
    int64_t           fsum, xsum;
    uint32_t          d, i, j;
    ts_pprof_t        p;
    ts_flame_tree_t   t;
    ts_flame_graph_t  g;

    (void) state;

    tfl_profile(&p, "m;f;x;f 4\nm;x 3\nm;f 2\nx;f;x 1\n");
    assert_int_equal(ts_flame_tree(&t, &p, 0), TS_OK);
    assert_int_equal(ts_flame_graph(&g, &t, 0), TS_OK);

    fsum = 0;
    xsum = 0;

    for (d = 0; d < g.nlevels; d++) {
        for (i = 0; i < g.levels[d].n; i += 4) {
            j = (uint32_t) g.levels[d].v[i + 3];

            if (strcmp(g.names[j], "f") == 0) {
                fsum += g.levels[d].v[i + 2];

            } else if (strcmp(g.names[j], "x") == 0) {
                xsum += g.levels[d].v[i + 2];
            }
        }
    }

    assert_int_equal(fsum, 6);
    assert_int_equal(xsum, 4);
    assert_int_equal(g.total, 10);

    ts_flame_graph_free(&g);
    ts_flame_tree_free(&t);
    ts_pprof_free(&p);
}


static void
test_json(void **state)
{
    ts_buf_t             out;
    uint64_t             s[3] = { 0, 7, 3 };
    ts_pprof_t           p;
    ts_flame_meta_t      m;
    ts_flame_tree_t      t;
    ts_flame_graph_t     g;
    ts_flame_timeline_t  tl;

    (void) state;

    tfl_profile(&p, "main;a<b> 3\nmain 7\n");
    assert_int_equal(ts_flame_tree(&t, &p, 0), TS_OK);
    assert_int_equal(ts_flame_graph(&g, &t, 0), TS_OK);

    ts_flame_meta(&m, "cpu", "nanoseconds");
    assert_string_equal(m.units, "samples");
    assert_int_equal(m.sample_rate, 1000000000);
    ts_flame_meta(&m, "inuse_space", "bytes");
    assert_string_equal(m.units, "bytes");
    assert_int_equal(m.sample_rate, 100);
    m.spy_name = "gospy";

    tl.start = 1700000000;
    tl.step = 15;
    tl.samples = s;
    tl.n = 3;

    memset(&out, 0, sizeof(out));
    assert_int_equal(ts_flame_json(&g, &m, &tl, &out), TS_OK);
    assert_int_equal(ts_buf_reserve(&out, 1), TS_OK);
    out.p[out.len] = '\0';

    assert_string_equal((char *) out.p,
        "{\"version\":1,\"flamebearer\":{\"names\":[\"total\",\"main\","
        "\"a\\u003cb\\u003e\"],\"levels\":[[0,10,0,0],[0,10,7,1],"
        "[7,3,3,2]],\"numTicks\":10,\"maxSelf\":7},\"metadata\":{"
        "\"format\":\"single\",\"spyName\":\"gospy\",\"sampleRate\":100,"
        "\"units\":\"bytes\",\"name\":\"inuse_space\"},\"timeline\":{"
        "\"startTime\":1700000000,\"samples\":[0,7,3],\"durationDelta\":15,"
        "\"watermarks\":null},\"groups\":null,\"heatmap\":null}\n");

    free(out.p);
    ts_flame_graph_free(&g);
    ts_flame_tree_free(&t);
    ts_pprof_free(&p);
}


/* the cut profile, as folded text */

static void
tfl_cut(const char *body, int64_t max_nodes, int want_cut, const char *want)
{
    int              cut;
    ts_pprof_t       p, out;
    tfl_out_t        o;
    ts_flame_tree_t  t;

    tfl_profile(&p, body);
    ts_pprof_init(&out, NULL, NULL);

    assert_int_equal(ts_flame_truncate(&p, max_nodes, &out, &cut), TS_OK);
    assert_int_equal(cut, want_cut);

    assert_int_equal(ts_flame_tree(&t, cut ? &out : &p, 0), TS_OK);
    o.len = 0;
    assert_int_equal(ts_flame_folded(&t, tfl_write, &o), TS_OK);
    assert_string_equal(o.buf, want);

    ts_flame_tree_free(&t);
    ts_pprof_free(&out);
    ts_pprof_free(&p);
}


/*
 * totals main 12, c 5, a 5, b 3, x 1: max_nodes 2 keeps what reaches
 * 5 (b and x go), 1 keeps main only; 5, 0 and -1 keep everything
 */

static void
test_truncate(void **state)
{
    const char  *body;

    (void) state;

    body = "main;c 5\nmain;a;b 3\nmain;a 2\nmain 1\nx 1\n";

    tfl_cut(body, 2, 1, "main 1\nmain;a 2\nmain;a;other 3\nmain;c 5\n"
                        "other 1\n");
    tfl_cut(body, 1, 1, "main 1\nmain;other 10\nother 1\n");
    tfl_cut(body, 5, 0, "main 1\nmain;a 2\nmain;a;b 3\nmain;c 5\nx 1\n");
    tfl_cut(body, 0, 0, "main 1\nmain;a 2\nmain;a;b 3\nmain;c 5\nx 1\n");
    tfl_cut(body, -1, 0, "main 1\nmain;a 2\nmain;a;b 3\nmain;c 5\nx 1\n");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_inline_and_address),
        cmocka_unit_test(test_folded),
        cmocka_unit_test(test_flat),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_truncate),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
