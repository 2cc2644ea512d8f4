/*
 * Copyright (C) ngx_tsdb authors
 *
 * ts_pqeval: Prometheus's "load / eval" test files (promql/testdata of
 * 2.42, ported cases under store/tests/data/promql/) run against the
 * real head: "load <step>" appends the series' samples (expanding
 * a+bxN, _ and stale), "eval instant at <time> <expr>" evaluates and
 * compares the result's labels and values (relative 1e-10, NaN equal to
 * NaN; in order for eval_ordered), "eval_fail" expects an error,
 * "clear" starts a fresh head.  Every case is counted; the summary line
 * gives passed and failed.  Plus direct cases: range queries, limits,
 * the JSON writer.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ts_head.h"
#include "ts_pqeval.h"
#include "ts_pqjson.h"
#include "ts_promql.h"


#define T_SIZE      (64 * 1024 * 1024)
#define T_LINE      4096
#define T_MAXEXP    512
#define T_DATA      "store/tests/data/promql"


typedef struct {
    ts_label_t      l[64];
    uint32_t        n;
    char            buf[2048];
    double          v;
    int             matched;
} t_exp_t;


typedef struct {
    void           *mem;
    ts_head_t       head;
    uint32_t        tenant;
    int             passed;
    int             failed;
    const char     *file;
    int             line;
} t_env_t;


static t_env_t  t_env;


static int
t_alive(int64_t pid)
{
    (void) pid;

    return 1;
}


static void
t_clear(void)
{
    if (t_env.mem != NULL) {
        munmap(t_env.mem, T_SIZE);
    }

    t_env.mem = mmap(NULL, T_SIZE, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(t_env.mem != MAP_FAILED);
    assert_int_equal(ts_head_open(&t_env.head, t_env.mem, T_SIZE, getpid(),
                                  t_alive), TS_OK);
    assert_int_equal(ts_head_tenant(&t_env.head, "t", 1, &t_env.tenant),
                     TS_OK);
}


/* "5m", "1h30m", "10s", "0"; ms */

static int64_t
t_duration(const char *s)
{
    char     *end;
    double    n;
    int64_t   ms;

    ms = 0;

    while (*s) {
        n = strtod(s, &end);

        if (end == s) {
            break;
        }

        s = end;

        if (s[0] == 'm' && s[1] == 's') {
            ms += (int64_t) n;
            s += 2;

        } else if (*s == 's') {
            ms += (int64_t) (n * 1000);
            s++;

        } else if (*s == 'm') {
            ms += (int64_t) (n * 60000);
            s++;

        } else if (*s == 'h') {
            ms += (int64_t) (n * 3600000);
            s++;

        } else if (*s == 'd') {
            ms += (int64_t) (n * 86400000);
            s++;

        } else {
            ms += (int64_t) (n * 1000);
        }
    }

    return ms;
}


static double
t_number(const char *s, char **end)
{
    if (strncmp(s, "Inf", 3) == 0 || strncmp(s, "+Inf", 4) == 0) {
        *end = (char *) s + (s[0] == '+' ? 4 : 3);
        return INFINITY;
    }

    if (strncmp(s, "-Inf", 4) == 0) {
        *end = (char *) s + 4;
        return -INFINITY;
    }

    if (strncmp(s, "NaN", 3) == 0) {
        *end = (char *) s + 3;
        return NAN;
    }

    return strtod(s, end);
}


/* a series descriptor through the PromQL parser: its = matchers */

static int
t_labels(const char *s, size_t len, t_exp_t *x)
{
    char                     *p;
    uint32_t                  i;
    ts_promql_t              *pq;
    const ts_promql_expr_t   *e;

    x->n = 0;

    if (ts_promql_parse(s, len, NULL, &pq, NULL) != TS_OK) {
        return -1;
    }

    e = ts_promql_root(pq);

    if (e->kind != TS_PQ_VECTOR) {
        ts_promql_free(pq);
        return -1;
    }

    p = x->buf;

    for (i = 0; i < e->u.vector.nmatchers && x->n < 64; i++) {
        const ts_matcher_t  *m = &e->u.vector.matchers[i];

        if (m->value_len == 0
            || (size_t) (p - x->buf) + m->name_len + m->value_len
               > sizeof(x->buf))
        {
            continue;
        }

        x->l[x->n].name = memcpy(p, m->name, m->name_len);
        x->l[x->n].name_len = (uint32_t) m->name_len;
        p += m->name_len;
        x->l[x->n].value = memcpy(p, m->value, m->value_len);
        x->l[x->n].value_len = (uint32_t) m->value_len;
        p += m->value_len;
        x->n++;
    }

    ts_promql_free(pq);
    ts_labels_sort(x->l, x->n);

    return 0;
}


/* the end of a series descriptor: after its closing brace or name */

static size_t
t_desc_len(const char *s)
{
    int     quote;
    size_t  i;

    quote = 0;

    for (i = 0; s[i]; i++) {
        if (quote) {
            if (s[i] == '\\' && s[i + 1]) {
                i++;

            } else if (s[i] == '"') {
                quote = 0;
            }

            continue;
        }

        if (s[i] == '"') {
            quote = 1;

        } else if (s[i] == '}') {
            return i + 1;

        } else if ((s[i] == ' ' || s[i] == '\t') && strchr(s, '{') == NULL)
        {
            return i;

        } else if ((s[i] == ' ' || s[i] == '\t')
                   && strchr(s, '{') > s + i)
        {
            return i;
        }
    }

    return i;
}


static void
t_load_line(const char *line, int64_t step)
{
    int       rc;
    char     *p, *end, num[64];
    double    a, b, v;
    size_t    len;
    int64_t   t, times, k;
    uint32_t  ref;
    uint64_t  bits;
    t_exp_t   x;

    while (*line == ' ' || *line == '\t') {
        line++;
    }

    len = t_desc_len(line);
    assert_int_equal(t_labels(line, len, &x), 0);

    rc = ts_head_series(&t_env.head, t_env.tenant, x.l, x.n,
                        ts_labels_hash(x.l, x.n), 0, &ref);
    assert_true(rc >= 0);

    p = (char *) line + len;
    t = 0;

    for ( ;; ) {
        while (*p == ' ' || *p == '\t') {
            p++;
        }

        if (*p == '\0' || *p == '\n' || *p == '#') {
            break;
        }

        if (*p == '_' || strncmp(p, "stale", 5) == 0) {
            int  stale = *p == 's';

            p += stale ? 5 : 1;
            times = 1;

            if (*p == 'x') {
                times = strtoll(p + 1, &p, 10);
            }

            for (k = 0; k < times; k++) {
                if (stale) {
                    bits = 0x7ff0000000000002ull;
                    assert_int_equal(ts_head_append(&t_env.head, ref, t,
                                                    bits), TS_OK);
                }

                t += step;
            }

            continue;
        }

        a = t_number(p, &end);

        if (end == p) {
            fprintf(stderr, "%s:%d: bad load value: %s", t_env.file,
                    t_env.line, line);
        }

        assert_true(end != p);
        p = end;
        b = 0;
        times = 0;

        if ((*p == '+' || *p == '-') && strchr(p, 'x') != NULL) {
            int  neg = *p == '-';

            /* up to the x: strtod would read "0x10" as hex */

            len = strcspn(p + 1, "x");
            snprintf(num, sizeof(num), "%.*s", (int) len, p + 1);
            b = t_number(num, &end);
            b = neg ? -b : b;
            p += 1 + len;

            if (*p != 'x') {
                fprintf(stderr, "%s:%d: bad load value: %s", t_env.file,
                    t_env.line, line);
            }

            assert_true(*p == 'x');
            times = strtoll(p + 1, &p, 10);
        }

        for (k = 0; k <= times; k++) {
            v = a + b * (double) k;
            memcpy(&bits, &v, sizeof(bits));
            assert_int_equal(ts_head_append(&t_env.head, ref, t, bits),
                             TS_OK);
            t += step;
        }
    }
}


static int
t_close(double a, double b)
{
    if (isnan(a) || isnan(b)) {
        return isnan(a) && isnan(b);
    }

    if (a == b) {
        return 1;
    }

    return fabs(a - b) <= 1e-10 * fmax(fabs(a), fabs(b))
           || fabs(a - b) < 1e-300;
}


static void
t_report(const char *expr, const char *why)
{
    t_env.failed++;
    fprintf(stderr, "%s:%d: %s: %s\n", t_env.file, t_env.line, expr, why);
}


/* compares a result with the expected lines */

static void
t_check(const char *expr, const ts_pqeval_result_t *res, t_exp_t *x,
    int nx, int ordered)
{
    char                       why[256];
    double                     v;
    int64_t                    t;
    uint32_t                   i, n;
    int                        k;
    const ts_pqeval_series_t  *s;

    if (ts_pqeval_result_type(res) == TS_PQ_TYPE_SCALAR) {
        ts_pqeval_result_scalar(res, &t, &v, NULL, NULL);

        if (nx != 1 || !t_close(v, x[0].v)) {
            snprintf(why, sizeof(why), "scalar %.17g, want %.17g", v,
                     nx ? x[0].v : NAN);
            t_report(expr, why);
            return;
        }

        t_env.passed++;
        return;
    }

    n = ts_pqeval_result_count(res);

    if ((int) n != nx) {
        snprintf(why, sizeof(why), "%u series, want %d", n, nx);
        t_report(expr, why);
        return;
    }

    for (i = 0; i < n; i++) {
        s = ts_pqeval_result_series(res, i);

        for (k = 0; k < nx; k++) {
            if (!x[k].matched && (!ordered || k == (int) i)
                && ts_labels_cmp(s->labels, s->nlabels, x[k].l, x[k].n)
                   == 0)
            {
                break;
            }
        }

        if (k == nx) {
            snprintf(why, sizeof(why), "unexpected series %u (%.*s=%.*s...)",
                     i, s->nlabels ? (int) s->labels[0].name_len : 0,
                     s->nlabels ? s->labels[0].name : "",
                     s->nlabels ? (int) s->labels[0].value_len : 0,
                     s->nlabels ? s->labels[0].value : "");
            t_report(expr, why);
            return;
        }

        x[k].matched = 1;

        if (s->npoints == 0 || !t_close(s->points[s->npoints - 1].v,
                                        x[k].v))
        {
            snprintf(why, sizeof(why), "series %u: %.17g, want %.17g", i,
                     s->npoints ? s->points[s->npoints - 1].v : NAN,
                     x[k].v);
            t_report(expr, why);
            return;
        }
    }

    t_env.passed++;
}


static void
t_eval(const char *line0, FILE *f, char *line)
{
    int                  rc, fail, ordered, nx;
    char                *expr, *at, *end, *p;
    size_t               len;
    int64_t              t;
    t_exp_t             *x;
    ts_source_t         *src[1];
    ts_promql_t         *pq;
    ts_source_head_t     hs;
    ts_pqeval_error_t    err;
    ts_pqeval_result_t  *res;
    char                 cmd[T_LINE];

    snprintf(cmd, sizeof(cmd), "%s", line0);
    fail = strncmp(cmd, "eval_fail", 9) == 0;
    ordered = strncmp(cmd, "eval_ordered", 12) == 0;

    at = strstr(cmd, " at ");
    assert_non_null(at);
    at += 4;
    end = strchr(at, ' ');
    assert_non_null(end);
    *end = '\0';
    t = t_duration(at);
    expr = end + 1;
    expr[strcspn(expr, "\n")] = '\0';

    x = calloc(T_MAXEXP, sizeof(t_exp_t));
    assert_non_null(x);
    nx = 0;

    /* the expected lines follow, indented */

    for ( ;; ) {
        long  pos = ftell(f);

        if (fgets(line, T_LINE, f) == NULL) {
            break;
        }

        if (line[0] != ' ' && line[0] != '\t') {
            fseek(f, pos, SEEK_SET);
            break;
        }

        t_env.line++;
        p = line + strspn(line, " \t");

        if (*p == '\n' || *p == '\0') {
            break;
        }

        assert_true(nx < T_MAXEXP);

        if ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+'
            || *p == '.' || strncmp(p, "NaN", 3) == 0
            || strncmp(p, "Inf", 3) == 0)
        {
            x[nx].n = 0;
            x[nx].v = t_number(p, &end);
            nx++;
            continue;
        }

        len = t_desc_len(p);

        if (len == 2 && memcmp(p, "{}", 2) == 0) {
            x[nx].n = 0;
            x[nx].v = t_number(p + 2 + strspn(p + 2, " \t"), &end);
            nx++;
            continue;
        }

        if (t_labels(p, len, &x[nx]) != 0) {
            t_report(expr, "bad expected line");
            free(x);
            return;
        }

        x[nx].v = t_number(p + len + strspn(p + len, " \t"), &end);
        nx++;
    }

    rc = ts_promql_parse(expr, strlen(expr), NULL, &pq, NULL);

    if (rc != TS_OK) {
        if (fail) {
            t_env.passed++;

        } else {
            t_report(expr, "does not parse");
        }

        free(x);
        return;
    }

    ts_source_head_init(&hs, &t_env.head, "t", 1);
    src[0] = &hs.src;

    rc = ts_pqeval_instant(ts_promql_root(pq), src, 1, t, NULL, &res, &err);

    if (fail) {
        if (rc == TS_OK) {
            t_report(expr, "no error");
            ts_pqeval_result_free(res);

        } else {
            t_env.passed++;
        }

    } else if (rc != TS_OK) {
        t_report(expr, err.msg);

    } else {
        t_check(expr, res, x, nx, ordered);
        ts_pqeval_result_free(res);
    }

    ts_promql_free(pq);
    free(x);
}


static void
t_run_file(const char *path)
{
    FILE     *f;
    char      line[T_LINE];
    int64_t   step;
    int       loading;

    f = fopen(path, "r");
    assert_non_null(f);

    t_env.file = path;
    t_env.line = 0;
    loading = 0;
    step = 0;
    t_clear();

    while (fgets(line, sizeof(line), f) != NULL) {
        t_env.line++;

        if (line[0] == '#' || line[0] == '\n') {
            loading = 0;
            continue;
        }

        if (line[0] == ' ' || line[0] == '\t') {
            if (loading) {
                t_load_line(line, step);
            }

            continue;
        }

        loading = 0;

        if (strncmp(line, "load ", 5) == 0) {
            line[strcspn(line, "\n")] = '\0';
            step = t_duration(line + 5);
            loading = 1;

        } else if (strncmp(line, "clear", 5) == 0) {
            t_clear();

        } else if (strncmp(line, "eval", 4) == 0) {
            t_eval(line, f, line);
        }
    }

    fclose(f);
}


static int
t_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


static void
test_testdata(void **state)
{
    int             i, n;
    DIR            *d;
    char           *names[64], path[512];
    struct dirent  *de;

    (void) state;

    d = opendir(T_DATA);
    assert_non_null(d);
    n = 0;

    while ((de = readdir(d)) != NULL && n < 64) {
        size_t  len = strlen(de->d_name);

        if (len > 5 && strcmp(de->d_name + len - 5, ".test") == 0) {
            names[n++] = strdup(de->d_name);
        }
    }

    closedir(d);
    qsort(names, (size_t) n, sizeof(char *), t_name_cmp);

    for (i = 0; i < n; i++) {
        int  p0 = t_env.passed, f0 = t_env.failed;

        snprintf(path, sizeof(path), "%s/%s", T_DATA, names[i]);
        t_run_file(path);
        fprintf(stderr, "promql testdata %s: %d passed, %d failed\n",
                names[i], t_env.passed - p0, t_env.failed - f0);
        free(names[i]);
    }

    fprintf(stderr, "promql testdata: %d eval cases passed, %d failed\n",
            t_env.passed, t_env.failed);

    if (t_env.mem != NULL) {
        munmap(t_env.mem, T_SIZE);
        t_env.mem = NULL;
    }

    assert_int_equal(t_env.failed, 0);
}


/* expected bodies as Prometheus 2.42 answered the same queries */

typedef struct {
    const char      *name;
    const char      *query;
    int64_t          start;
    int64_t          end;           /* 0: instant */
    int64_t          step;
    const char      *want;
} t_json_t;


static const t_json_t  t_json[] = {
    { "vector_tiny_value", "vector(1e-7)", 1700000000500, 0, 0,
      "{\"resultType\":\"vector\",\"result\":[{\"metric\":{},"
      "\"value\":[1700000000.500,\"1e-07\"]}]}" },
    { "vector_huge_value", "vector(1.5e21)", 1700000000500, 0, 0,
      "{\"resultType\":\"vector\",\"result\":[{\"metric\":{},"
      "\"value\":[1700000000.500,\"1.5e+21\"]}]}" },
    { "vector_shortest", "vector(123456789012345678)", 1700000000500, 0, 0,
      "{\"resultType\":\"vector\",\"result\":[{\"metric\":{},"
      "\"value\":[1700000000.500,\"123456789012345680\"]}]}" },
    { "vector_neg_zero", "vector(-0.0)", 1700000000500, 0, 0,
      "{\"resultType\":\"vector\",\"result\":[{\"metric\":{},"
      "\"value\":[1700000000.500,\"-0\"]}]}" },
    { "scalar_inf", "1/0", 1700000000500, 0, 0,
      "{\"resultType\":\"scalar\",\"result\":[1700000000.5,"
      "\"+Inf\"]}" },
    { "scalar_tiny", "scalar(vector(1e-7))", 1700000000001, 0, 0,
      "{\"resultType\":\"scalar\",\"result\":[1700000000.001,"
      "\"0.0000001\"]}" },
    { "scalar_huge", "1.5e21", 1700000000001, 0, 0,
      "{\"resultType\":\"scalar\",\"result\":[1700000000.001,"
      "\"1500000000000000000000\"]}" },
    { "time", "time()", 1700000000500, 0, 0,
      "{\"resultType\":\"scalar\",\"result\":[1700000000.5,"
      "\"1700000000.5\"]}" },
    { "string", "\"a<b\"", 1700000000001, 0, 0,
      "{\"resultType\":\"string\",\"result\":[1700000000.001,"
      "\"a\\u003cb\"]}" },
    { "html_escape", "label_replace(vector(1),\"a\",\"<&>\",\"\",\"\")",
      1700000000001, 0, 0,
      "{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"a\":"
      "\"\\u003c\\u0026\\u003e\"},\"value\":[1700000000.001,\"1\"]}]}" },
    { "empty_vector", "nonexistent", 1700000000001, 0, 0,
      "{\"resultType\":\"vector\",\"result\":[]}" },
    { "subquery_top", "vector(1)[2m:1m]", 1700000000001, 0, 0,
      "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},"
      "\"values\":[[1699999920,\"1\"],[1699999980,\"1\"]]}]}" },
    { "range", "vector(1)", 1700000000000, 1700000060000, 30000,
      "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},"
      "\"values\":[[1700000000,\"1\"],[1700000030,\"1\"],"
      "[1700000060,\"1\"]]}]}" },
};


/* c evaluated over src, its answer as JSON exactly c->want */

static void
t_json_case(const t_json_t *c, ts_source_t *const *src, uint32_t nsrc)
{
    int                  rc;
    ts_buf_t             out;
    ts_promql_t         *pq;
    ts_pqeval_error_t    err;
    ts_pqeval_result_t  *res;

    assert_int_equal(ts_promql_parse(c->query, strlen(c->query), NULL,
                                     &pq, NULL), TS_OK);

    if (c->end) {
        rc = ts_pqeval_range(ts_promql_root(pq), src, nsrc, c->start,
                             c->end, c->step, NULL, &res, &err);

    } else {
        rc = ts_pqeval_instant(ts_promql_root(pq), src, nsrc, c->start,
                               NULL, &res, &err);
    }

    if (rc != TS_OK) {
        fail_msg("%s: %s", c->name, err.msg);
    }

    memset(&out, 0, sizeof(ts_buf_t));
    assert_int_equal(ts_pqjson_data(res, &out), TS_OK);
    assert_int_equal(ts_buf_reserve(&out, 1), TS_OK);
    out.p[out.len] = '\0';

    if (strcmp((char *) out.p, c->want) != 0) {
        fail_msg("%s:\n got %s\nwant %s", c->name, out.p, c->want);
    }

    free(out.p);
    ts_pqeval_result_free(res);
    ts_promql_free(pq);
}


static void
test_json(void **state)
{
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(t_json) / sizeof(t_json[0]); i++) {
        t_json_case(&t_json[i], NULL, 0);
    }
}


/* errors: Prometheus's type and words */

static void
test_errors(void **state)
{
    ts_promql_t         *pq;
    ts_pqeval_conf_t     conf;
    ts_pqeval_error_t    err;
    ts_pqeval_result_t  *res;

    (void) state;

    ts_pqeval_conf_default(&conf);
    conf.max_samples = 10;

    assert_int_equal(ts_promql_parse("vector(1)[1h:1m]", 16, NULL, &pq,
                                     NULL), TS_OK);
    assert_int_equal(ts_pqeval_instant(ts_promql_root(pq), NULL, 0, 0,
                                       &conf, &res, &err), TS_ERR_LIMIT);
    assert_int_equal(err.type, TS_PQE_EXECUTION);
    assert_string_equal(err.msg, "query processing would load too many "
                        "samples into memory in query execution");

    assert_int_equal(ts_pqeval_range(ts_promql_root(pq), NULL, 0, 0, 60000,
                                     1000, NULL, &res, &err),
                     TS_ERR_INVALID);
    assert_int_equal(err.type, TS_PQE_BAD_DATA);
    assert_string_equal(err.msg, "invalid expression type \"range vector\" "
                        "for range query, must be Scalar or instant Vector");
    ts_promql_free(pq);

    assert_int_equal(ts_promql_parse("vector(1)", 9, NULL, &pq, NULL),
                     TS_OK);
    assert_int_equal(ts_pqeval_range(ts_promql_root(pq), NULL, 0, 0,
                                     11000000, 1000, NULL, &res, &err),
                     TS_ERR_INVALID);
    assert_string_equal(err.msg, "exceeded maximum resolution of 11000 "
                        "points per timeseries. Try decreasing the query "
                        "resolution (?step=XX)");
    ts_promql_free(pq);
}


/*
 * ts_pqjson_float's digits are the fewest that read back to v, as Go's
 * FormatFloat(v, 'e', -1): checked against a plain search from 0 digits
 * up over values of every kind (integers, short decimals, full-precision
 * quotients, tiny and huge exponents).
 */

static void
test_float_shortest(void **state)
{
    int       p, i;
    char      buf[64], ref[64], want[64], *e;
    double    v;
    uint64_t  x;

    (void) state;

    x = 88172645463325252ull;

    for (i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;

        switch (i % 5) {
        case 0:
            v = (double) (x % 100000000);
            break;
        case 1:
            v = (double) (x % 100000) / 1000;
            break;
        case 2:
            v = (double) (x % 1000003) / (double) (x % 977 + 1);
            break;
        case 3:
            memcpy(&v, &x, sizeof(v));
            v = fabs(v);
            break;
        default:
            v = (double) (x >> 11) / 9007199254740992.0 * pow(10, i % 40 - 20);
            break;
        }

        if (isnan(v) || isinf(v) || v == 0) {
            continue;
        }

        for (p = 0; p < 17; p++) {
            snprintf(ref, sizeof(ref), "%.*e", p, v);

            if (strtod(ref, NULL) == v) {
                break;
            }
        }

        /* the reference without trailing zeros in the mantissa */

        e = strchr(ref, 'e');
        snprintf(want, sizeof(want), "%.*s", (int) (e - ref), ref);

        while (strchr(want, '.') != NULL && want[strlen(want) - 1] == '0') {
            want[strlen(want) - 1] = '\0';
        }

        if (want[strlen(want) - 1] == '.') {
            want[strlen(want) - 1] = '\0';
        }

        ts_pqjson_float(v, 'e', buf, sizeof(buf));

        if (strncmp(buf, want, strlen(want)) != 0
            || buf[strlen(want)] != 'e' || strtod(buf, NULL) != v)
        {
            fail_msg("%.17g: %s, want %s%s", v, buf, want, e);
        }
    }
}


/*
 * Native histograms: two counter histograms, schema 0 and 1, with a
 * zero bucket, negative buckets and a counter reset at the 7th sample;
 * the same data (rwgen's text in the comment) went by remote write into
 * a real Prometheus 2.42, whose answers at 1795390120 are the wanted
 * values and JSON here.
 *
 *   {__name__="h",job="x"} T:h{s=0,zt=0.001,z=K,sum=0.75K,n=-1_2,
 *       nb=K/K,p=0_3,pb=K/2K/3K}
 *   {__name__="h",job="y"} T:h{s=1,zt=0.001,z=K,sum=2.25K,n=-1_2,
 *       nb=K/K,p=0_3,pb=2K/4K/6K}
 *
 * T = 1795390000000 + 15000 i, i = 0..9; K = i + 1 before i = 6, i - 5
 * from there.
 */

#define T_H0    1795390000000LL
#define T_HAT   1795390120000LL


typedef struct {
    const char     *query;
    double          x;          /* job="x" */
    double          y;          /* job="y", NAN: the only result is x */
} t_hcase_t;


static const t_hcase_t  t_hcases[] = {
    { "histogram_count(h)", 27, 45 },
    { "histogram_sum(h)", 2.25, 6.75 },
    { "histogram_quantile(0.5, h)", 1.25, 1.2588834764831844 },
    { "histogram_quantile(0.99, rate(h[1m]))", 3.94, 1.9853553390593275 },
    { "histogram_quantile(0.01, h)", -0.955, -0.9560660171779821 },
    { "histogram_fraction(-0.5, 2, h)", 0.5555555555555556,
      0.8666666666666667 },
    { "histogram_sum(increase(h[1m]))", 3, 9 },
    { "histogram_count(rate(h[2m]))", 0.6, 1 },
    { "histogram_count(sum(h))", 72, NAN },
    { "histogram_quantile(0.3, sum(h))", 0.6999999999999998, NAN },
};


static const t_json_t  t_hjson[] = {
    { "vector", "h{job=\"x\"}", T_HAT, 0, 0,
      "{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":"
      "\"h\",\"job\":\"x\"},\"histogram\":[1795390120,{\"count\":\"27\","
      "\"sum\":\"2.25\",\"buckets\":[[1,\"-1\",\"-0.5\",\"3\"],[1,\"-0.5\","
      "\"-0.25\",\"3\"],[3,\"-0.001\",\"0.001\",\"3\"],[0,\"0.5\",\"1\","
      "\"3\"],[0,\"1\",\"2\",\"6\"],[0,\"2\",\"4\",\"9\"]]}]}]}" },
    { "sum", "sum(h)", T_HAT, 0, 0,
      "{\"resultType\":\"vector\",\"result\":[{\"metric\":{},\"histogram\":"
      "[1795390120,{\"count\":\"72\",\"sum\":\"9\",\"buckets\":[[1,\"-1\","
      "\"-0.5\",\"9\"],[1,\"-0.5\",\"-0.25\",\"3\"],[3,\"-0.001\",\"0.001\","
      "\"6\"],[0,\"0.5\",\"1\",\"9\"],[0,\"1\",\"2\",\"36\"],[0,\"2\",\"4\","
      "\"9\"]]}]}]}" },
    { "rate", "rate(h{job=\"y\"}[1m])", T_HAT, 0, 0,
      "{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"job\":\"y\"},"
      "\"histogram\":[1795390120,{\"count\":\"1\",\"sum\":\"0.15\","
      "\"buckets\":[[1,\"-1\",\"-0.7071067811865475\","
      "\"0.06666666666666667\"],[1,\"-0.7071067811865475\",\"-0.5\","
      "\"0.06666666666666667\"],[3,\"-0.001\",\"0.001\","
      "\"0.06666666666666667\"],[0,\"0.7071067811865475\",\"1\","
      "\"0.13333333333333333\"],[0,\"1\",\"1.414213562373095\","
      "\"0.26666666666666666\"],[0,\"1.414213562373095\",\"2\",\"0.4\"]]}]}"
      "]}" },
    { "range", "h{job=\"y\"}", T_HAT - 30000, T_HAT, 15000,
      "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"__name__\":"
      "\"h\",\"job\":\"y\"},\"histograms\":[[1795390090,{\"count\":\"15\","
      "\"sum\":\"2.25\",\"buckets\":[[1,\"-1\",\"-0.7071067811865475\","
      "\"1\"],[1,\"-0.7071067811865475\",\"-0.5\",\"1\"],[3,\"-0.001\","
      "\"0.001\",\"1\"],[0,\"0.7071067811865475\",\"1\",\"2\"],[0,\"1\","
      "\"1.414213562373095\",\"4\"],[0,\"1.414213562373095\",\"2\",\"6\"]]}],"
      "[1795390105,{\"count\":\"30\",\"sum\":\"4.5\",\"buckets\":[[1,\"-1\","
      "\"-0.7071067811865475\",\"2\"],[1,\"-0.7071067811865475\",\"-0.5\","
      "\"2\"],[3,\"-0.001\",\"0.001\",\"2\"],[0,\"0.7071067811865475\",\"1\","
      "\"4\"],[0,\"1\",\"1.414213562373095\",\"8\"],[0,\"1.414213562373095\","
      "\"2\",\"12\"]]}],[1795390120,{\"count\":\"45\",\"sum\":\"6.75\","
      "\"buckets\":[[1,\"-1\",\"-0.7071067811865475\",\"3\"],[1,"
      "\"-0.7071067811865475\",\"-0.5\",\"3\"],[3,\"-0.001\",\"0.001\","
      "\"3\"],[0,\"0.7071067811865475\",\"1\",\"6\"],[0,\"1\","
      "\"1.414213562373095\",\"12\"],[0,\"1.414213562373095\",\"2\","
      "\"18\"]]}]]}]}" },
};


static void
t_hload(void)
{
    int          i, j, k, m;
    double       sum;
    int64_t      nd[2], pd[3];
    uint32_t     ref;
    ts_hist_t    h;
    ts_label_t   l[2];
    ts_hspan_t   ns = { -1, 2 }, ps = { 0, 3 };

    for (j = 0; j < 2; j++) {
        l[0].name = "__name__";
        l[0].name_len = 8;
        l[0].value = "h";
        l[0].value_len = 1;
        l[1].name = "job";
        l[1].name_len = 3;
        l[1].value = j ? "y" : "x";
        l[1].value_len = 1;

        assert_true(ts_head_series(&t_env.head, t_env.tenant, l, 2,
                                   ts_labels_hash(l, 2), 0, &ref) >= 0);

        for (i = 0; i < 10; i++) {
            k = i < 6 ? i + 1 : i - 5;
            m = j ? 2 : 1;
            sum = k * 1.5 * m - k * 0.75;

            /* integer histograms, buckets as deltas */
            nd[0] = k;
            nd[1] = 0;
            pd[0] = k * m;
            pd[1] = k * m;
            pd[2] = k * m;

            memset(&h, 0, sizeof(ts_hist_t));
            memcpy(&h.sum, &sum, sizeof(double));
            h.zero_threshold = 0.001;
            h.zero_count = (uint64_t) k;
            h.count = (uint64_t) (k + 2 * k + 6 * k * m);
            h.schema = j;
            h.n_neg_spans = 1;
            h.n_pos_spans = 1;
            h.neg_spans = &ns;
            h.pos_spans = &ps;
            h.n_neg = 2;
            h.n_pos = 3;
            h.neg_deltas = nd;
            h.pos_deltas = pd;

            assert_int_equal(ts_head_append_hist(&t_env.head, ref,
                                                 T_H0 + 15000 * i, &h),
                             TS_OK);
        }
    }
}


static void
test_histograms(void **state)
{
    int                  rc;
    size_t               i;
    double               got, want;
    uint32_t             k, n;
    ts_promql_t         *pq;
    ts_source_t         *src[1];
    ts_pqeval_error_t    err;
    ts_pqeval_result_t  *res;
    ts_source_head_t     hs;
    const ts_pqeval_series_t  *s;

    (void) state;

    t_clear();
    t_hload();
    ts_source_head_init(&hs, &t_env.head, "t", 1);
    src[0] = &hs.src;

    for (i = 0; i < sizeof(t_hcases) / sizeof(t_hcases[0]); i++) {
        const t_hcase_t  *c = &t_hcases[i];

        assert_int_equal(ts_promql_parse(c->query, strlen(c->query), NULL,
                                         &pq, NULL), TS_OK);
        rc = ts_pqeval_instant(ts_promql_root(pq), src, 1, T_HAT, NULL,
                               &res, &err);

        if (rc != TS_OK) {
            fail_msg("%s: %s", c->query, err.msg);
        }

        n = ts_pqeval_result_count(res);

        if (n != (isnan(c->y) ? 1u : 2u)) {
            fail_msg("%s: %u results", c->query, n);
        }

        for (k = 0; k < n; k++) {
            s = ts_pqeval_result_series(res, k);
            assert_int_equal(s->npoints, 1);
            assert_null(ts_pqeval_point_hist(res, &s->points[0]));
            got = s->points[0].v;

            want = c->x;

            if (s->nlabels == 1 && s->labels[0].value[0] == 'y') {
                want = c->y;
            }

            if (got != want && fabs(got - want) > 1e-12 * fabs(want)) {
                fail_msg("%s: %.17g, want %.17g", c->query, got, want);
            }
        }

        ts_pqeval_result_free(res);
        ts_promql_free(pq);
    }

    for (i = 0; i < sizeof(t_hjson) / sizeof(t_hjson[0]); i++) {
        t_json_case(&t_hjson[i], src, 1);
    }
}


/*
 * An aggregation fused with the range function under it
 * (ts_pq_agg_fused()) gives what the two evaluated one after the other
 * give (conf.no_fuse): the same series in the same order, the same
 * timestamps, bit-identical values; the same errors, and max_samples
 * trips at the same limit.
 */

static const char  *t_fload[] = {
    "x{job=\"a\",i=\"1\"} 0+10x40 5+10x40",
    "x{job=\"a\",i=\"2\"} 1+3x20 _x5 100+1.3x50",
    "x{job=\"b\",i=\"3\"} 0+1x10 stale 0+2.7x60",
    "x{job=\"b\",i=\"4\"} NaN 1 2 Inf 3 -Inf 4 5 6 7 NaN 8 9 10 0+1x60",
    "x{i=\"5\"} 1e300+1e299x80",
    "x{job=\"c\",i=\"6\"} _x30 3+0.1x40",
    "y{job=\"a\",i=\"1\"} 1+1x80",
};

static const char  *t_fops[][2] = {
    { "sum", "" }, { "avg", "" }, { "count", "" }, { "min", "" },
    { "max", "" }, { "group", "" }, { "stddev", "" }, { "stdvar", "" },
    { "topk", "2, " }, { "bottomk", "1, " }, { "topk", "100, " },
    { "bottomk", "(3), " }, { "topk", "0, " }, { "topk", "NaN, " },
    { "topk", "scalar(vector(2)), " },
};

static const char  *t_fgroup[] = {
    "", " by (job)", " without (i)", " by (i)", " by (nope)",
};

static const char  *t_ffn[] = {
    "rate(x[1m])", "increase(x[2m])", "delta(x[1m])", "irate(x[1m])",
    "idelta(x[45s])", "avg_over_time(x[1m])", "sum_over_time(x[50s])",
    "max_over_time(x[30s])", "min_over_time(x[1m])",
    "count_over_time(x[1m])", "quantile_over_time(0.3, x[1m])",
    "stddev_over_time(x[1m])", "deriv(x[1m])", "predict_linear(x[1m], 60)",
    "last_over_time(x[1m])", "changes(x[5m])", "resets(x[5m])",
    "rate(x[1m] offset 30s)", "rate(x[1m] @ 300)", "(rate((x[1m])))",
    "holt_winters(x[2m], 0.5, 0.5)", "present_over_time(x[20s])",
    "rate({__name__=~\"x|y\"}[1m])", "rate({__name__=~\"x|y\",i=\"2\"}[1m])",
    "rate(h[1m])", "increase(h[1m])", "delta(h[1m])",
    "sum_over_time(h[1m])", "rate({__name__=~\"h|x\"}[1m])",
    "rate(nothing[1m])", "x", "(x)", "x offset 1m", "x @ 300",
    "{__name__=~\"x|y\"}", "h", "{__name__=~\"h|x\"}", "nothing",
};


static int
t_fsame(const char *q, const ts_pqeval_result_t *a, int ra,
    const ts_pqeval_error_t *ea, const ts_pqeval_result_t *b, int rb,
    const ts_pqeval_error_t *eb)
{
    uint32_t                   i, k;
    const ts_pqeval_series_t  *x, *y;

    if (ra != rb) {
        fprintf(stderr, "%s: rc %d fused, %d not (%s / %s)\n", q, ra, rb,
                ra ? ea->msg : "", rb ? eb->msg : "");
        return 0;
    }

    if (ra != TS_OK) {
        if (strcmp(ea->msg, eb->msg) != 0 || ea->type != eb->type) {
            fprintf(stderr, "%s: \"%s\" fused, \"%s\" not\n", q, ea->msg,
                    eb->msg);
            return 0;
        }

        return 1;
    }

    if (ts_pqeval_result_count(a) != ts_pqeval_result_count(b)) {
        fprintf(stderr, "%s: %u series fused, %u not\n", q,
                ts_pqeval_result_count(a), ts_pqeval_result_count(b));
        return 0;
    }

    for (i = 0; i < ts_pqeval_result_count(a); i++) {
        x = ts_pqeval_result_series(a, i);
        y = ts_pqeval_result_series(b, i);

        if (x->nlabels != y->nlabels || x->npoints != y->npoints) {
            fprintf(stderr, "%s: series %u differs\n", q, i);
            return 0;
        }

        for (k = 0; k < x->nlabels; k++) {
            if (ts_labels_cmp(&x->labels[k], 1, &y->labels[k], 1) != 0) {
                fprintf(stderr, "%s: series %u's labels differ\n", q, i);
                return 0;
            }
        }

        for (k = 0; k < x->npoints; k++) {
            if (x->points[k].t != y->points[k].t
                || (memcmp(&x->points[k].v, &y->points[k].v,
                           sizeof(double)) != 0
                    && ts_pqeval_point_hist(a, &x->points[k]) == NULL))
            {
                fprintf(stderr, "%s: series %u point %u: %.17g at %lld "
                        "fused, %.17g at %lld not\n", q, i, k,
                        x->points[k].v, (long long) x->points[k].t,
                        y->points[k].v, (long long) y->points[k].t);
                return 0;
            }
        }
    }

    return 1;
}


static uint64_t
t_fpoints(const ts_pqeval_result_t *res)
{
    uint32_t  i;
    uint64_t  n;

    n = 0;

    for (i = 0; i < ts_pqeval_result_count(res); i++) {
        n += ts_pqeval_result_series(res, i)->npoints;
    }

    return n;
}


static void
test_fused(void **state)
{
    int                  ra, rb, bad, nerr;
    char                 q[256];
    size_t               i, j, k, st;
    int64_t              t0, t1;
    uint64_t             lim, npts;
    ts_promql_t         *pq;
    ts_source_t         *src[1];
    ts_pqeval_conf_t     ca, cb;
    ts_pqeval_error_t    ea, eb;
    ts_pqeval_result_t  *a, *b;
    ts_source_head_t     hs;
    static const int64_t  steps[] = { 15000, 7000, 60000 };

    (void) state;

    t_clear();

    for (i = 0; i < sizeof(t_fload) / sizeof(t_fload[0]); i++) {
        t_load_line(t_fload[i], 15000);
    }

    t_hload();
    ts_source_head_init(&hs, &t_env.head, "t", 1);
    src[0] = &hs.src;
    ts_pqeval_conf_default(&ca);
    ts_pqeval_conf_default(&cb);
    cb.no_fuse = 1;
    bad = 0;
    nerr = 0;
    npts = 0;

    for (i = 0; i < sizeof(t_fops) / sizeof(t_fops[0]); i++) {
        for (j = 0; j < sizeof(t_fgroup) / sizeof(t_fgroup[0]); j++) {
            for (k = 0; k < sizeof(t_ffn) / sizeof(t_ffn[0]); k++) {
                snprintf(q, sizeof(q), "%s%s (%s%s)", t_fops[i][0],
                         t_fgroup[j], t_fops[i][1], t_ffn[k]);
                assert_int_equal(ts_promql_parse(q, strlen(q), NULL, &pq,
                                                 NULL), TS_OK);

                for (st = 0; st < 2 * sizeof(steps) / sizeof(steps[0]);
                     st++)
                {
                    /* the floats' range, then the histograms' */
                    t0 = st % 2 ? T_H0 - 30000 : 0;
                    t1 = st % 2 ? T_H0 + 200000 : 1300000;

                    ra = ts_pqeval_range(ts_promql_root(pq), src, 1, t0, t1,
                                         steps[st / 2], &ca, &a, &ea);
                    rb = ts_pqeval_range(ts_promql_root(pq), src, 1, t0, t1,
                                         steps[st / 2], &cb, &b, &eb);

                    bad += !t_fsame(q, a, ra, &ea, b, rb, &eb);
                    nerr += ra != TS_OK;

                    if (ra == TS_OK) {
                        npts += t_fpoints(a);
                        ts_pqeval_result_free(a);
                    }

                    if (rb == TS_OK) {
                        ts_pqeval_result_free(b);
                    }
                }

                ts_promql_free(pq);
            }
        }
    }

    fprintf(stderr, "fused: %zu queries x 6 ranges alike, %d of them "
            "errors, %llu points\n",
            sizeof(t_fops) / sizeof(t_fops[0])
            * (sizeof(t_fgroup) / sizeof(t_fgroup[0]))
            * (sizeof(t_ffn) / sizeof(t_ffn[0])), nerr,
            (unsigned long long) npts);

    /* both the errors and the answers are there to compare */
    assert_true(nerr > 0);
    assert_true(npts > 100000);

    /* topk with more groups x steps than it keeps heaps for */

    snprintf(q, sizeof(q), "topk by (i) (1, rate(x[1m]))");
    assert_int_equal(ts_promql_parse(q, strlen(q), NULL, &pq, NULL), TS_OK);
    ca.max_points = 20000;
    cb.max_points = 20000;
    ra = ts_pqeval_range(ts_promql_root(pq), src, 1, 0, 1300000, 100, &ca,
                         &a, &ea);
    rb = ts_pqeval_range(ts_promql_root(pq), src, 1, 0, 1300000, 100, &cb,
                         &b, &eb);
    /* 6 groups (by i) x 13001 steps, a point at most steps of each */
    assert_int_equal(ra, TS_OK);
    assert_true(t_fpoints(a) > 40000);
    bad += !t_fsame(q, a, ra, &ea, b, rb, &eb);
    ts_pqeval_result_free(a);
    ts_pqeval_result_free(b);
    ts_promql_free(pq);

    /* max_samples: every limit from 1 up trips alike */

    snprintf(q, sizeof(q), "avg by (job) (rate(x[1m]))");

limits:

    assert_int_equal(ts_promql_parse(q, strlen(q), NULL, &pq, NULL), TS_OK);
    ra = TS_ERR_LIMIT;

    for (lim = 1; ra == TS_ERR_LIMIT; lim++) {
        ca.max_samples = lim;
        cb.max_samples = lim;
        ra = ts_pqeval_range(ts_promql_root(pq), src, 1, 0, 1300000, 15000,
                             &ca, &a, &ea);
        rb = ts_pqeval_range(ts_promql_root(pq), src, 1, 0, 1300000, 15000,
                             &cb, &b, &eb);

        bad += !t_fsame(q, a, ra, &ea, b, rb, &eb);

        if (ra == TS_OK) {
            ts_pqeval_result_free(a);
        }

        if (rb == TS_OK) {
            ts_pqeval_result_free(b);
        }
    }

    /* the limit is the peak: what was read, the rate()s, the result */
    assert_true(lim > 400);
    assert_int_equal(ra, TS_OK);
    fprintf(stderr, "fused: %s: max_samples of %llu needed\n", q,
            (unsigned long long) lim - 1);
    ts_promql_free(pq);

    if (strncmp(q, "avg", 3) == 0) {
        snprintf(q, sizeof(q), "bottomk by (job) (2, rate(x[1m]))");
        goto limits;
    }

    if (strncmp(q, "bottomk", 7) == 0) {
        snprintf(q, sizeof(q), "count by (i) (x)");
        goto limits;
    }

    assert_int_equal(bad, 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_testdata),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_float_shortest),
        cmocka_unit_test(test_histograms),
        cmocka_unit_test(test_fused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
