/*
 * Copyright (C) ngx_tsdb authors
 *
 * Folded and lines parsing (ts_folded.c), table-driven: each case is a
 * body, a format and either the stacks it must produce (rendered back
 * as "root;...;leaf=value" lines, sorted) or the error and reason.  The
 * semantics are Pyroscope's ParseGroups/ParseIndividualLines.  Then the
 * round trip through the pprof encoder and decoder, and allocator
 * failure at every allocation.
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
#include "ts_folded.h"
#include "ts_pprof.h"


typedef struct {
    const char         *name;
    ts_folded_fmt_t     fmt;
    const char         *body;
    uint32_t            max_depth;
    uint32_t            max_samples;
    int                 rc;
    ts_pprof_reason_t   code;
    const char         *want;      /* sorted "stack=value\n" lines */
} tf_case_t;


static const tf_case_t  tf_cases[] = {
    { "folded sums equal stacks", TS_FOLDED,
      "a;b;c 3\na;b 2\na;b;c 4\n", 0, 0, TS_OK, TS_PPROF_OK,
      "a;b;c=7\na;b=2\n" },
    { "crlf and no final newline", TS_FOLDED,
      "a;b 1\r\nx 2", 0, 0, TS_OK, TS_PPROF_OK, "a;b=1\nx=2\n" },
    { "the count follows the last space", TS_FOLDED,
      "main;do work 5\n", 0, 0, TS_OK, TS_PPROF_OK, "main;do work=5\n" },
    { "a line without a space is skipped", TS_FOLDED,
      "garbage\na 1\n\n", 0, 0, TS_OK, TS_PPROF_OK, "a=1\n" },
    { "signs as strconv.Atoi", TS_FOLDED,
      "a +5\nb -2\nc -9223372036854775808\n", 0, 0, TS_OK, TS_PPROF_OK,
      "a=5\nb=-2\nc=-9223372036854775808\n" },
    { "zero counts leave no sample", TS_FOLDED,
      "a 0\nb 1\n", 0, 0, TS_OK, TS_PPROF_OK, "b=1\n" },
    { "an empty stack is skipped", TS_FOLDED,
      " 5\na 1\n", 0, 0, TS_OK, TS_PPROF_OK, "a=1\n" },
    { "empty frames are frames", TS_FOLDED,
      "a;;b 1\n", 0, 0, TS_OK, TS_PPROF_OK, "a;;b=1\n" },
    { "depth keeps the root side", TS_FOLDED,
      "a;b;c;d 1\na;b 2\n", 2, 0, TS_OK, TS_PPROF_OK, "a;b=3\n" },
    { "count not a number", TS_FOLDED,
      "a 1\na;b x\n", 0, 0, TS_ERR_INVALID, TS_PPROF_BAD_TEXT, NULL },
    { "count missing", TS_FOLDED,
      "a;b \n", 0, 0, TS_ERR_INVALID, TS_PPROF_BAD_TEXT, NULL },
    { "count overflows int64", TS_FOLDED,
      "a 9223372036854775808\n", 0, 0, TS_ERR_INVALID, TS_PPROF_BAD_TEXT,
      NULL },
    { "count with a decimal point", TS_FOLDED,
      "a 1.5\n", 0, 0, TS_ERR_INVALID, TS_PPROF_BAD_TEXT, NULL },
    { "max_samples counts distinct stacks", TS_FOLDED,
      "a 1\nb 1\na 1\nc 1\n", 0, 2, TS_ERR_LIMIT,
      TS_PPROF_TOO_MANY_SAMPLES, NULL },
    { "lines: one sample per line", TS_FOLDED_LINES,
      "a;b\na;b\n\nc\r\n", 0, 0, TS_OK, TS_PPROF_OK, "a;b=2\nc=1\n" },
    { "lines: spaces are part of names", TS_FOLDED_LINES,
      "a b;c 1\n", 0, 0, TS_OK, TS_PPROF_OK, "a b;c 1=1\n" },
};


static int
tf_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


/* the profile as sorted "root;...;leaf=value" lines */
static char *
tf_render(const ts_pprof_t *p)
{
    char                       *out, *lines[64], *l;
    size_t                      n;
    uint32_t                    i, k;
    const ts_pprof_str_t       *s;
    const ts_pprof_sample_t    *smp;
    const ts_pprof_location_t  *loc;

    assert_true(p->nsamples <= 64);
    out = calloc(1, 8192);
    assert_non_null(out);

    for (i = 0; i < p->nsamples; i++) {
        smp = &p->samples[i];
        l = calloc(1, 512);
        assert_non_null(l);
        n = 0;

        for (k = smp->depth; k > 0; k--) {
            loc = &p->locations[p->stacks[smp->stack + k - 1] - 1];
            assert_int_equal(loc->nlines, 1);
            s = &p->strings[p->functions[p->lines[loc->line].function - 1]
                            .name];
            n += snprintf(l + n, 512 - n, "%s%.*s", n ? ";" : "",
                          (int) s->len, s->data);
        }

        snprintf(l + n, 512 - n, "=%lld\n",
                 (long long) p->values[(size_t) i * p->ntypes]);
        lines[i] = l;
    }

    qsort(lines, p->nsamples, sizeof(char *), tf_cmp);

    for (i = 0, n = 0; i < p->nsamples; i++) {
        n += snprintf(out + n, 8192 - n, "%s", lines[i]);
        free(lines[i]);
    }

    return out;
}


static char *
tf_sorted(const char *want)
{
    char    *copy, *lines[64], *l, *out, *save;
    size_t   n, i, k;

    copy = strdup(want);
    out = calloc(1, 8192);
    assert_non_null(copy);
    assert_non_null(out);

    for (n = 0, l = strtok_r(copy, "\n", &save); l != NULL;
         l = strtok_r(NULL, "\n", &save))
    {
        lines[n++] = l;
    }

    qsort(lines, n, sizeof(char *), tf_cmp);

    for (i = 0, k = 0; i < n; i++) {
        k += snprintf(out + k, 8192 - k, "%s\n", lines[i]);
    }

    free(copy);

    return out;
}


static const ts_folded_opts_t  tf_opts = {
    "samples", "count", NULL, NULL, 0, 1, 0, 0
};


static void
test_cases(void **state)
{
    int                 rc;
    char               *got, *want;
    size_t              i;
    ts_pprof_t          p;
    ts_pprof_why_t      why;
    ts_pprof_limits_t   lim;
    const tf_case_t    *c;

    (void) state;

    for (i = 0; i < sizeof(tf_cases) / sizeof(tf_cases[0]); i++) {
        c = &tf_cases[i];
        ts_pprof_limits_default(&lim);
        lim.max_depth = c->max_depth;
        lim.max_samples = c->max_samples;

        ts_pprof_init(&p, NULL, &lim);
        memset(&why, 0, sizeof(why));

        rc = ts_folded_parse(&p, c->fmt, c->body, strlen(c->body),
                             &tf_opts, &why);

        if (rc != c->rc || why.code != c->code) {
            fail_msg("%s: rc %d reason %s (%s)", c->name, rc,
                     ts_pprof_reason_name(why.code), why.msg);
        }

        if (c->want != NULL) {
            got = tf_render(&p);
            want = tf_sorted(c->want);

            if (strcmp(got, want) != 0) {
                fail_msg("%s: got\n%swant\n%s", c->name, got, want);
            }

            free(got);
            free(want);

        } else {
            assert_non_null(strstr(why.msg, why.code == TS_PPROF_BAD_TEXT
                                            ? "line " : ""));
            print_message("%-36s %s\n", c->name, why.msg);
        }

        ts_pprof_free(&p);
    }
}


static int
tf_write(void *data, const char *p, size_t len)
{
    FILE  *f;

    f = data;

    return fwrite(p, 1, len, f) == len ? 0 : -1;
}


/* headers, dedup, and the pprof round trip */
static void
test_round_trip(void **state)
{
    char              *buf;
    size_t             len;
    FILE              *f;
    ts_pprof_t         p, q;
    ts_pprof_why_t     why;
    ts_folded_opts_t   o;
    const char        *body = "main;a;b 2\nmain;a 1\nmain;c;b 4\n";

    (void) state;

    o = tf_opts;
    o.type = "cpu";
    o.unit = "nanoseconds";
    o.period_type = "cpu";
    o.period_unit = "nanoseconds";
    o.period = 10000000;
    o.scale = 10000000;
    o.time_nanos = 1700000000000000000LL;

    ts_pprof_init(&p, NULL, NULL);
    assert_int_equal(ts_folded_parse(&p, TS_FOLDED, body, strlen(body), &o,
                                     &why), TS_OK);
    assert_int_equal(p.nsamples, 3);
    assert_int_equal(p.nfunctions, 4);
    assert_int_equal(p.nlocations, 4);
    assert_int_equal(p.nmappings, 0);
    assert_int_equal(p.values[0], 20000000);
    assert_int_equal(p.nmerged, 1);

    /* a second parse into it is refused */
    assert_int_equal(ts_folded_parse(&p, TS_FOLDED, body, strlen(body), &o,
                                     &why), TS_ERR_INVALID);

    f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(ts_pprof_encode(&p, 0, tf_write, f), TS_OK);
    fclose(f);

    ts_pprof_init(&q, NULL, NULL);
    assert_int_equal(ts_pprof_decode(&q, (uint8_t *) buf, len, &why), TS_OK);
    assert_int_equal(q.nsamples, 3);
    assert_int_equal(q.period, 10000000);
    assert_int_equal(q.time_nanos, 1700000000000000000LL);
    assert_memory_equal(q.values, p.values, 3 * sizeof(int64_t));

    /* merging the same text again doubles every value */
    assert_int_equal(ts_pprof_merge(&q, &p, &why), TS_OK);
    assert_int_equal(q.nsamples, 3);
    assert_int_equal(q.values[2], 80000000);

    ts_pprof_free(&q);
    ts_pprof_free(&p);
    free(buf);
}


static void
test_limits(void **state)
{
    char               *big;
    size_t              n;
    ts_pprof_t          p;
    ts_pprof_why_t      why;
    ts_pprof_limits_t   lim;

    (void) state;

    /* one line over TS_FOLDED_MAX_LINE */
    n = TS_FOLDED_MAX_LINE + 10;
    big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    memcpy(big + n - 2, " 1", 2);

    ts_pprof_init(&p, NULL, NULL);
    assert_int_equal(ts_folded_parse(&p, TS_FOLDED, big, n, &tf_opts, &why),
                     TS_ERR_INVALID);
    assert_int_equal(why.code, TS_PPROF_BAD_TEXT);
    ts_pprof_free(&p);

    /* the body size */
    ts_pprof_limits_default(&lim);
    lim.max_decompressed = 100;
    ts_pprof_init(&p, NULL, &lim);
    assert_int_equal(ts_folded_parse(&p, TS_FOLDED, big, 101, &tf_opts,
                                     &why), TS_ERR_LIMIT);
    assert_int_equal(why.code, TS_PPROF_TOO_LARGE);
    ts_pprof_free(&p);

    /* the deepest stack a line can hold: only ';', max_depth off */
    memset(big, ';', TS_FOLDED_MAX_LINE - 2);
    memcpy(big + TS_FOLDED_MAX_LINE - 2, " 1", 2);
    lim.max_decompressed = 0;
    lim.max_depth = 0;
    ts_pprof_init(&p, NULL, &lim);
    assert_int_equal(ts_folded_parse(&p, TS_FOLDED, big, TS_FOLDED_MAX_LINE,
                                     &tf_opts, &why), TS_OK);
    assert_int_equal(p.samples[0].depth, TS_FOLDED_MAX_LINE - 1);
    assert_int_equal(p.nfunctions, 1);
    ts_pprof_free(&p);

    /* memory */
    lim.max_memory = 4096;
    ts_pprof_init(&p, NULL, &lim);
    assert_int_equal(ts_folded_parse(&p, TS_FOLDED, "a;b;c 1\n", 8,
                                     &tf_opts, &why), TS_ERR_LIMIT);
    ts_pprof_free(&p);

    free(big);
}


typedef struct {
    size_t       allocs;
    size_t       frees;
    size_t       fail_at;
} tf_alloc_t;


static void *
tf_alloc(void *data, size_t size)
{
    tf_alloc_t  *a;

    a = data;

    if (a->fail_at && a->allocs + 1 >= a->fail_at) {
        return NULL;
    }

    a->allocs++;

    return malloc(size);
}


static void
tf_free(void *data, void *p)
{
    tf_alloc_t  *a;

    a = data;
    a->frees += p != NULL;
    free(p);
}


static void
test_allocator(void **state)
{
    int                 rc;
    size_t              k, total;
    ts_pprof_t          p;
    tf_alloc_t          ta;
    ts_pprof_why_t      why;
    ProtobufCAllocator  a = { tf_alloc, tf_free, &ta };
    const char         *body = "a;b;c 1\nb;c 2\nlong;stack;of;frames 3\n";

    (void) state;

    total = 0;

    for (k = 0; k == 0 || k <= total; k++) {
        memset(&ta, 0, sizeof(ta));
        ta.fail_at = k;

        ts_pprof_init(&p, &a, NULL);
        rc = ts_folded_parse(&p, TS_FOLDED, body, strlen(body), &tf_opts,
                             &why);
        assert_true(k == 0 ? rc == TS_OK
                           : (rc == TS_ERR_NOMEM || rc == TS_ERR_LIMIT));
        ts_pprof_free(&p);

        assert_int_equal(ta.allocs, ta.frees);
        total = k == 0 ? ta.allocs : total;
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_allocator),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
