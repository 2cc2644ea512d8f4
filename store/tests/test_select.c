/*
 * Copyright (C) ngx_tsdb authors
 *
 * ts_select: one named case per matcher kind and per empty-matching
 * edge (Prometheus PostingsForMatchers semantics), regex literals,
 * alternations, classes and anchoring, RE2-only syntax, intersections,
 * unknown labels and tenants, limits; every case is also checked
 * against the definition (ts_selector_match() over all series); a
 * generated label space compares many matcher combinations with that
 * oracle; an array-backed source with seek checks the abstraction and
 * the labels check of subtracting plans.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ts_head.h"
#include "ts_select.h"


#define T_SIZE       (8 * 1024 * 1024)
#define T_OUT        1024
#define T_MAXM       4
#define T_MAXL       8

#define EQ           TS_MATCH_EQ
#define NEQ          TS_MATCH_NEQ
#define RE           TS_MATCH_RE
#define NRE          TS_MATCH_NRE


typedef struct {
    int              type;
    const char      *name;          /* NULL ends the list */
    const char      *value;
} t_m_t;


typedef struct {
    const char      *name;
    const char      *tenant;
    t_m_t            m[T_MAXM];
    const char      *want;          /* ids in ascending ref order */
} t_case_t;


typedef struct {
    const char      *tenant;
    const char      *kv[2 * T_MAXL + 1];
} t_series_t;


typedef struct {
    const char      *pattern;
    const char      *value;
    int              want;
} t_sem_t;


static void      *t_mem;
static ts_head_t  t_head;


/* the id label comes first in each row; refs ascend in this order */

static const t_series_t  t_data[] = {
    { "t1", { "id", "s0", "__name__", "up", "job", "api",
              "instance", "a", NULL } },
    { "t1", { "id", "s1", "__name__", "up", "job", "api",
              "instance", "b", NULL } },
    { "t1", { "id", "s2", "__name__", "up", "job", "db",
              "instance", "a", NULL } },
    { "t1", { "id", "s3", "__name__", "up", "instance", "c", NULL } },
    { "t1", { "id", "s4", "__name__", "http_requests_total",
              "job", "api", "code", "200", NULL } },
    { "t1", { "id", "s5", "__name__", "http_requests_total",
              "job", "api", "code", "500", NULL } },
    { "t1", { "id", "s6", "__name__", "http_requests_total",
              "job", "web", "code", "404", NULL } },
    { "t1", { "id", "s7", "__name__", "node_load1", "job", "node",
              "env", "prod\nx", NULL } },
    { "t1", { "id", "s8", "__name__", "up", "job", "API",
              "instance", "d", NULL } },
    { "t1", { "id", "s9", "__name__", "temp", "job", "weird.job",
              "instance", "e", NULL } },
    { "t1", { "id", "s10", "__name__", "utf", "job", "caf\xc3\xa9",
              "instance", "f", NULL } },
    { "t1", { "id", "s11", "__name__", "nl", "job", "line\n", NULL } },
    { "t2", { "id", "s12", "__name__", "up", "job", "api",
              "instance", "a", NULL } },
};


#define T_ALL1  "s0 s1 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11"
#define T_UP    "s0 s1 s2 s3 s8"

static const t_case_t  t_cases[] = {

    /* equality */

    { "eq_metric_name", "t1", { { EQ, "__name__", "up" } }, T_UP },
    { "eq_two_labels", "t1",
      { { EQ, "__name__", "up" }, { EQ, "job", "api" } }, "s0 s1" },
    { "eq_unknown_value", "t1", { { EQ, "job", "nope" } }, "" },
    { "eq_unknown_label", "t1", { { EQ, "nolabel", "x" } }, "" },
    { "eq_empty_selects_absent", "t1",
      { { EQ, "__name__", "up" }, { EQ, "job", "" } }, "s3" },
    { "eq_empty_alone", "t1", { { EQ, "job", "" } }, "s3" },
    { "eq_empty_unknown_label", "t1",
      { { EQ, "__name__", "up" }, { EQ, "nolabel", "" } }, T_UP },
    { "eq_same_label_twice", "t1",
      { { EQ, "job", "api" }, { EQ, "job", "db" } }, "" },

    /* inequality */

    { "neq_includes_absent", "t1",
      { { EQ, "__name__", "up" }, { NEQ, "job", "api" } }, "s2 s3 s8" },
    { "neq_alone", "t1", { { NEQ, "job", "api" } },
      "s2 s3 s6 s7 s8 s9 s10 s11" },
    { "neq_empty_requires_label", "t1",
      { { EQ, "__name__", "up" }, { NEQ, "job", "" } }, "s0 s1 s2 s8" },
    { "neq_unknown_label", "t1",
      { { EQ, "__name__", "up" }, { NEQ, "nolabel", "x" } }, T_UP },
    { "neq_unknown_value", "t1",
      { { EQ, "__name__", "up" }, { NEQ, "job", "nope" } }, T_UP },

    /* regex */

    { "re_literal", "t1", { { RE, "job", "api" } }, "s0 s1 s4 s5" },
    { "re_alternation", "t1", { { RE, "job", "api|db" } },
      "s0 s1 s2 s4 s5" },
    { "re_alternation_unknown", "t1", { { RE, "job", "api|nope" } },
      "s0 s1 s4 s5" },
    { "re_alternation_group", "t1", { { RE, "job", "(api|db)" } },
      "s0 s1 s2 s4 s5" },
    { "re_char_class", "t1", { { RE, "code", "[45]0[04]" } }, "s5 s6" },
    { "re_negated_class", "t1",
      { { EQ, "__name__", "up" }, { RE, "instance", "[^a]" } },
      "s1 s3 s8" },
    { "re_anchored_end", "t1", { { RE, "job", "ap" } }, "" },
    { "re_anchored_start", "t1", { { RE, "job", "pi" } }, "" },
    { "re_prefix", "t1", { { RE, "job", "a.*" } }, "s0 s1 s4 s5" },
    { "re_dot_star_matches_absent", "t1",
      { { EQ, "__name__", "up" }, { RE, "job", ".*" } }, T_UP },
    { "re_dot_plus_requires_label", "t1",
      { { EQ, "__name__", "up" }, { RE, "job", ".+" } }, "s0 s1 s2 s8" },
    { "re_empty_alternative", "t1",
      { { EQ, "__name__", "up" }, { RE, "job", "db|" } }, "s2 s3" },
    { "re_case_insensitive", "t1",
      { { EQ, "__name__", "up" }, { RE, "job", "(?i)API" } },
      "s0 s1 s8" },
    { "re_escaped_dot", "t1", { { RE, "job", "weird\\.job" } }, "s9" },
    { "re_escaped_dot_anchored", "t1", { { RE, "job", "weird\\.jo" } },
      "" },
    { "re_dot_matches_newline", "t1", { { RE, "env", "prod.x" } }, "s7" },
    { "re_dollar_is_the_end", "t1", { { RE, "job", "line$" } }, "" },
    { "re_newline_literal", "t1", { { RE, "job", "line\n" } }, "s11" },
    { "re_newline_escape", "t1", { { RE, "job", "li.e\\n" } }, "s11" },
    { "re_utf8_code_point", "t1", { { RE, "job", "caf." } }, "s10" },
    { "re_utf8_one_code_point", "t1", { { RE, "job", "caf.." } }, "" },
    { "re_every_value", "t1", { { RE, "job", ".+" } },
      "s0 s1 s2 s4 s5 s6 s7 s8 s9 s10 s11" },

    /* negated regex */

    { "nre_alternation", "t1",
      { { EQ, "__name__", "up" }, { NRE, "job", "api|db" } }, "s3 s8" },
    { "nre_regex", "t1",
      { { EQ, "__name__", "http_requests_total" },
        { NRE, "code", "5.." } }, "s4 s6" },
    { "nre_nonempty_selects_absent", "t1",
      { { EQ, "__name__", "up" }, { NRE, "job", ".+" } }, "s3" },
    { "nre_everything", "t1", { { NRE, "job", ".*" } }, "" },
    { "nre_empty_requires_label", "t1",
      { { EQ, "__name__", "up" }, { NRE, "job", "" } }, "s0 s1 s2 s8" },

    /* combinations */

    { "intersect_three", "t1",
      { { EQ, "__name__", "http_requests_total" }, { EQ, "job", "api" },
        { RE, "code", "2.." } }, "s4" },
    { "must_set_and_neq", "t1",
      { { RE, "job", ".+" }, { NEQ, "job", "api" } },
      "s2 s6 s7 s8 s9 s10 s11" },
    { "must_set_and_nre", "t1",
      { { NEQ, "job", "" }, { NRE, "job", "(?i)api|db" } },
      "s6 s7 s9 s10 s11" },
    { "all_match_empty", "t1", { { RE, "job", ".*" } }, T_ALL1 },
    { "only_empty_matchers", "t1",
      { { EQ, "job", "" }, { EQ, "code", "" } }, "s3" },
    { "empty_name_matcher", "t1", { { EQ, "", "" } }, T_ALL1 },
    { "no_matchers", "t1", { { 0, NULL, NULL } }, "" },

    /* tenants */

    { "tenant_isolated", "t2",
      { { EQ, "__name__", "up" }, { EQ, "job", "api" } }, "s12" },
    { "tenant_isolated_negative", "t2", { { NEQ, "job", "x" } }, "s12" },
    { "tenant_isolated_regex", "t2", { { RE, "instance", ".*" } },
      "s12" },
    { "tenant_unknown", "t3", { { NEQ, "job", "x" } }, "" },
    { "tenant_unknown_empty", "t3", { { EQ, "job", "" } }, "" },
};


static const t_sem_t  t_sems[] = {
    { "", "", 1 },
    { "", "a", 0 },
    { "\\v", "\x0b", 1 },
    { "\\v", "\n", 0 },
    { "[\\v]", "\x0b", 1 },
    { "\\Qa.b\\E", "a.b", 1 },
    { "\\Qa.b\\E", "aXb", 0 },
    { "\\Qa.b", "a.b", 1 },
    { "a{,2}", "a{,2}", 1 },
    { "a{,2}", "aa", 0 },
    { "a{2}", "aa", 1 },
    { "a{2,}", "aaaa", 1 },
    { "a{1000}", "a", 0 },
    { "a*?", "aaa", 1 },
    { "x|xy", "xy", 1 },
    { "\\d+", "123", 1 },
    { "\\d", "\xd9\xa1", 0 },
    { "\\w", "\xc3\xa9", 0 },
    { "[[:alpha:]]+", "abc", 1 },
    { "\\pL+", "\xc3\xa9" "a", 1 },
    { "\\p{Greek}", "\xce\xb1", 1 },
    { "(?i)\xc3\xa9", "\xc3\x89", 1 },
    { "(?-s:.)", "\n", 0 },
    { ".", "\n", 1 },
    { "(?m)a$", "a", 1 },
    { "\\x41", "A", 1 },
    { "\\x{263a}", "\xe2\x98\xba", 1 },
    { "(?P<n>a)b", "ab", 1 },
    { "(?<n>a)b", "ab", 1 },
    { "(?i:A)b", "ab", 1 },
    { "\\Aa\\z", "a", 1 },
    { "\\bfoo\\b", "foo", 1 },
    { "a\\.b", "a.b", 1 },
    { "a\\.b", "aXb", 0 },
    { "\\0101", "A", 0 },
    { "\\101", "A", -1 },
    { "a.b", "a\xff" "b", 0 },
    { "[]a]", "]", 1 },
    { "[^]a]", "b", 1 },
};


static const char  *t_rejects[] = {
    "(?=a)", "(?!a)", "(?<=a)b", "(?<!a)b", "(?>a)", "a++", "a*+", "a?+",
    "a{2}+", "(a)\\1", "\\1", "a\\Kb", "(?R)", "(?1)", "(?(1)a|b)",
    "(*ACCEPT)a", "(*UTF)a", "a{1001}", "a{2,1}", "a{1,1001}", "[a", "(a",
    "a)|(b", "\\", "a\\Z", "\\e", "\\cA", "\\h", "\\R", "\\X", "\\G",
    "(?x)a", "(?#c)a", "a**", "a+*", "a*??", "(?C1)a", "\\x4", "\\xg1",
    "[\\Qa\\E]", "\\\xc3\xa9", "\\N", "\xff", "(?|a)", "(?P=n)",
    "(?'n'a)", "(?)", "[\\b]", "\\E", "\\u0041",
};


static int
t_alive(int64_t pid)
{
    (void) pid;

    return 1;
}


static int
t_setup(void **state)
{
    (void) state;

    t_mem = mmap(NULL, T_SIZE, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (t_mem == MAP_FAILED) {
        return -1;
    }

    return ts_head_open(&t_head, t_mem, T_SIZE, getpid(), t_alive);
}


static int
t_teardown(void **state)
{
    (void) state;

    munmap(t_mem, T_SIZE);

    return 0;
}


static uint32_t
t_add(const char *tenant, const char *const *kv)
{
    uint32_t    tn, n, ref;
    ts_label_t  l[T_MAXL];

    for (n = 0; kv[2 * n] != NULL; n++) {
        l[n].name = kv[2 * n];
        l[n].name_len = (uint32_t) strlen(kv[2 * n]);
        l[n].value = kv[2 * n + 1];
        l[n].value_len = (uint32_t) strlen(kv[2 * n + 1]);
    }

    ts_labels_sort(l, n);

    assert_int_equal(ts_head_tenant(&t_head, tenant, strlen(tenant), &tn),
                     TS_OK);
    assert_int_equal(ts_head_series(&t_head, tn, l, n,
                                    ts_labels_hash(l, n), 0, &ref), 1);
    assert_int_equal(ts_head_append(&t_head, ref, 1000, 0), TS_OK);

    return ref;
}


static void
t_load(void)
{
    size_t  i;

    for (i = 0; i < sizeof(t_data) / sizeof(t_data[0]); i++) {
        t_add(t_data[i].tenant, t_data[i].kv);
    }
}


static uint32_t
t_matchers(const t_m_t *in, ts_matcher_t *m)
{
    uint32_t  n;

    for (n = 0; n < T_MAXM && in[n].name != NULL; n++) {
        m[n].type = (ts_match_type_t) in[n].type;
        m[n].name = in[n].name;
        m[n].name_len = strlen(in[n].name);
        m[n].value = in[n].value;
        m[n].value_len = strlen(in[n].value);
    }

    return n;
}


/* appends the id of each selected series; refs must ascend */

static int
t_run(ts_selector_t *sel, const ts_source_t *src, char *out, size_t size)
{
    int                rc;
    uint32_t           n;
    uint64_t           ref, prev;
    ts_label_t         l[TS_SELECT_MAX_LABELS];
    ts_select_t       *it;
    const ts_label_t  *id;

    out[0] = '\0';
    prev = 0;

    rc = ts_select_open(&it, sel, src);
    if (rc != TS_OK) {
        return rc;
    }

    while ((rc = ts_select_next(it, &ref)) == 1) {
        assert_true(ref > prev);
        prev = ref;

        assert_int_equal(src->labels(src->data, ref, l,
                                     TS_SELECT_MAX_LABELS, &n), TS_OK);
        id = ts_labels_find(l, n, "id", 2);
        assert_non_null(id);

        snprintf(out + strlen(out), size - strlen(out), "%s%.*s",
                 out[0] ? " " : "", (int) id->value_len, id->value);
    }

    ts_select_close(it);

    return rc;
}


/* the definition: every series of the source's tenant, one by one */

static void
t_oracle(ts_selector_t *sel, const ts_source_t *src, char *out,
    size_t size)
{
    int                rc;
    uint32_t           n;
    uint64_t           ref;
    ts_pit_t           all;
    ts_label_t         l[TS_SELECT_MAX_LABELS];
    const ts_label_t  *id;

    out[0] = '\0';
    assert_int_equal(src->postings(src->data, NULL, 0, NULL, 0, &all),
                     TS_OK);

    while ((rc = all.ops->next(&all, &ref)) == 1) {
        assert_int_equal(src->labels(src->data, ref, l,
                                     TS_SELECT_MAX_LABELS, &n), TS_OK);

        if (ts_selector_match(sel, l, n) != 1) {
            continue;
        }

        id = ts_labels_find(l, n, "id", 2);
        snprintf(out + strlen(out), size - strlen(out), "%s%.*s",
                 out[0] ? " " : "", (int) id->value_len, id->value);
    }

    assert_int_equal(rc, 0);

    if (all.ops->close != NULL) {
        all.ops->close(&all);
    }
}


static void
test_cases(void **state)
{
    int                rc;
    size_t             i;
    uint32_t           n;
    char               got[T_OUT], want[T_OUT], msg[TS_SELECT_MSG_SIZE];
    ts_matcher_t       m[T_MAXM];
    ts_selector_t     *sel;
    ts_source_head_t   hs;

    (void) state;

    t_load();

    for (i = 0; i < sizeof(t_cases) / sizeof(t_cases[0]); i++) {
        n = t_matchers(t_cases[i].m, m);
        rc = ts_selector_compile(&sel, m, n, NULL, msg, sizeof(msg));

        if (rc != TS_OK) {
            fail_msg("%s: compile: %s", t_cases[i].name, msg);
        }

        ts_source_head_init(&hs, &t_head, t_cases[i].tenant,
                            strlen(t_cases[i].tenant));

        assert_int_equal(t_run(sel, &hs.src, got, sizeof(got)), 0);
        t_oracle(sel, &hs.src, want, sizeof(want));

        if (strcmp(got, t_cases[i].want) != 0 || strcmp(want, got) != 0) {
            fail_msg("%s: got \"%s\", want \"%s\", oracle \"%s\"",
                     t_cases[i].name, got, t_cases[i].want, want);
        }

        ts_selector_free(sel);
    }
}


static int
t_match1(const char *pattern, const char *value, int *compile_rc)
{
    int             rc;
    char            msg[TS_SELECT_MSG_SIZE];
    ts_label_t      l;
    ts_matcher_t    m;
    ts_selector_t  *sel;

    m.type = TS_MATCH_RE;
    m.name = "x";
    m.name_len = 1;
    m.value = pattern;
    m.value_len = strlen(pattern);

    *compile_rc = ts_selector_compile(&sel, &m, 1, NULL, msg, sizeof(msg));
    if (*compile_rc != TS_OK) {
        assert_true(msg[0] != '\0');
        return -1;
    }

    l.name = "x";
    l.name_len = 1;
    l.value = value;
    l.value_len = (uint32_t) strlen(value);

    rc = ts_selector_match(sel, &l, 1);
    ts_selector_free(sel);

    return rc;
}


static void
test_regex_semantics(void **state)
{
    int     rc, crc;
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(t_sems) / sizeof(t_sems[0]); i++) {
        rc = t_match1(t_sems[i].pattern, t_sems[i].value, &crc);

        if (rc != t_sems[i].want) {
            fail_msg("/%s/ on \"%s\": got %d (compile %d), want %d",
                     t_sems[i].pattern, t_sems[i].value, rc, crc,
                     t_sems[i].want);
        }
    }
}


static void
test_regex_rejected(void **state)
{
    int     rc, crc;
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(t_rejects) / sizeof(t_rejects[0]); i++) {
        rc = t_match1(t_rejects[i], "a", &crc);

        if (rc != -1 || crc != TS_ERR_INVALID) {
            fail_msg("/%s/ should be rejected (got %d, compile %d)",
                     t_rejects[i], rc, crc);
        }
    }
}


static void
test_compile_errors(void **state)
{
    int                 rc;
    char                msg[TS_SELECT_MSG_SIZE], big[64];
    ts_matcher_t        m[3];
    ts_selector_t      *sel;
    ts_select_limits_t  lim;

    (void) state;

    ts_select_limits_default(&lim);
    lim.max_matchers = 2;
    lim.max_regex_len = 16;

    memset(m, 0, sizeof(m));

    m[0].type = (ts_match_type_t) 7;
    m[0].name = "a";
    m[0].name_len = 1;
    m[0].value = "";

    rc = ts_selector_compile(&sel, m, 1, &lim, msg, sizeof(msg));
    assert_int_equal(rc, TS_ERR_INVALID);
    assert_non_null(strstr(msg, "unknown matcher type"));

    m[0].type = TS_MATCH_EQ;
    m[1] = m[0];
    m[2] = m[0];

    rc = ts_selector_compile(&sel, m, 3, &lim, msg, sizeof(msg));
    assert_int_equal(rc, TS_ERR_LIMIT);

    /* long regexes are refused, long literal alternations are not */

    m[0].type = TS_MATCH_RE;
    m[0].value = "a.*b.*c.*d.*e.*f.*";
    m[0].value_len = strlen(m[0].value);

    rc = ts_selector_compile(&sel, m, 1, &lim, msg, sizeof(msg));
    assert_int_equal(rc, TS_ERR_LIMIT);
    assert_non_null(strstr(msg, "longer than 16 bytes"));

    m[0].value = "aaaa|bbbb|cccc|dddd|eeee";
    m[0].value_len = strlen(m[0].value);

    rc = ts_selector_compile(&sel, m, 1, &lim, msg, sizeof(msg));
    assert_int_equal(rc, TS_OK);
    ts_selector_free(sel);

    /* the message quotes the label name safely */

    m[0].name = "bad\"\x01name";
    m[0].name_len = strlen(m[0].name);
    m[0].value = "(?=x)";
    m[0].value_len = strlen(m[0].value);

    rc = ts_selector_compile(&sel, m, 1, NULL, msg, sizeof(msg));
    assert_int_equal(rc, TS_ERR_INVALID);
    assert_non_null(strstr(msg, "bad\\x22\\x01name"));

    memset(big, 'a', sizeof(big));
    m[0].name = "n";
    m[0].name_len = 1;
    m[0].value = big;
    m[0].value_len = sizeof(big);

    rc = ts_selector_compile(&sel, m, 1, &lim, msg, sizeof(msg));
    assert_int_equal(rc, TS_OK);
    ts_selector_free(sel);

    rc = ts_selector_compile(&sel, m, 0, NULL, NULL, 0);
    assert_int_equal(rc, TS_OK);
    assert_int_equal(ts_selector_match(sel, NULL, 0), 0);
    ts_selector_free(sel);
}


/* a catastrophic pattern stops at the match limit instead of hanging */

static void
test_match_limit(void **state)
{
    int                 rc;
    char                v[64];
    ts_label_t          l;
    ts_matcher_t        m;
    ts_select_t        *it;
    ts_selector_t      *sel;
    ts_source_head_t    hs;
    ts_select_limits_t  lim;
    const char         *kv[] = { "__name__", "x", "v", v, NULL };

    (void) state;

    memset(v, 'a', 40);
    v[40] = '!';
    v[41] = '\0';

    ts_select_limits_default(&lim);
    lim.match_limit = 10000;

    m.type = TS_MATCH_RE;
    m.name = "v";
    m.name_len = 1;
    m.value = "(a|aa)+";
    m.value_len = strlen(m.value);

    assert_int_equal(ts_selector_compile(&sel, &m, 1, &lim, NULL, 0),
                     TS_OK);

    l.name = "v";
    l.name_len = 1;
    l.value = v;
    l.value_len = (uint32_t) strlen(v);

    assert_int_equal(ts_selector_match(sel, &l, 1), TS_ERR_LIMIT);

    t_add("t", kv);
    ts_source_head_init(&hs, &t_head, "t", 1);

    rc = ts_select_open(&it, sel, &hs.src);
    assert_int_equal(rc, TS_ERR_LIMIT);

    ts_selector_free(sel);
}


/*
 * Many series, labels a b c d with overlapping value sets (c missing on
 * a fifth of them): every combination below must give the oracle's
 * series, in ascending order.
 */

static const t_m_t  t_combos[][T_MAXM] = {
    { { EQ, "a", "3" } },
    { { EQ, "a", "3" }, { EQ, "b", "4" } },
    { { RE, "a", "1|2|3" }, { NEQ, "b", "4" } },
    { { RE, "a", "[1-3]" }, { NRE, "b", "[0-5]" } },
    { { RE, "b", "1.*" }, { EQ, "c", "" } },
    { { RE, "c", "" } },
    { { NEQ, "c", "" }, { NRE, "a", "0|6" } },
    { { RE, "d", "x1[0-9]*" } },
    { { RE, "d", "x(1|2)0" }, { RE, "c", ".*" } },
    { { NRE, "d", "x.*7" }, { NEQ, "a", "0" }, { RE, "b", "[13579]|10" } },
    { { EQ, "c", "" }, { EQ, "b", "" } },
    { { NRE, "c", "1|2|3" }, { NRE, "a", "4" } },
    { { RE, "a", ".*" }, { RE, "b", ".+" }, { NEQ, "c", "5" } },
    { { RE, "b", "10|1|0" }, { RE, "a", "6|5" }, { RE, "c", "[0-9]" } },
};


static void
test_combinations(void **state)
{
    int                rc;
    char               got[8192], want[8192], v[4][16], id[16];
    size_t             i;
    uint32_t           n, k;
    ts_matcher_t       m[T_MAXM];
    ts_selector_t     *sel;
    ts_source_head_t   hs;
    const char        *kv[2 * T_MAXL + 1];

    (void) state;

    for (i = 0; i < 600; i++) {
        snprintf(id, sizeof(id), "n%zu", i);
        snprintf(v[0], sizeof(v[0]), "%zu", i % 7);
        snprintf(v[1], sizeof(v[1]), "%zu", i % 11);
        snprintf(v[2], sizeof(v[2]), "%zu", i % 13);
        snprintf(v[3], sizeof(v[3]), "x%zu", i);

        k = 0;
        kv[k++] = "id";
        kv[k++] = id;
        kv[k++] = "a";
        kv[k++] = v[0];
        kv[k++] = "b";
        kv[k++] = v[1];
        kv[k++] = "d";
        kv[k++] = v[3];

        if (i % 5 != 0) {
            kv[k++] = "c";
            kv[k++] = v[2];
        }

        kv[k] = NULL;
        t_add("g", kv);
    }

    ts_source_head_init(&hs, &t_head, "g", 1);

    for (i = 0; i < sizeof(t_combos) / sizeof(t_combos[0]); i++) {
        n = t_matchers(t_combos[i], m);
        assert_int_equal(ts_selector_compile(&sel, m, n, NULL, NULL, 0),
                         TS_OK);

        rc = t_run(sel, &hs.src, got, sizeof(got));
        assert_int_equal(rc, 0);
        t_oracle(sel, &hs.src, want, sizeof(want));

        if (strcmp(got, want) != 0) {
            fail_msg("combination %zu: got \"%s\", want \"%s\"", i, got,
                     want);
        }

        ts_selector_free(sel);
    }
}


/*
 * An array-backed source with seek, whose postings can leave a series
 * out of one value's list, as a head does while a series is being
 * indexed: a subtracting plan must not let that series through.
 */

typedef struct {
    const ts_label_t  *l[8];
    uint32_t           n[8];
    uint32_t           count;
    uint64_t           hidden;        /* ref missing from value lists */
    uint32_t           seeks;
} t_fake_t;


static int
t_fake_next(ts_pit_t *it, uint64_t *ref)
{
    uint64_t  *refs;

    refs = it->st[0].p;

    if (it->st[2].u == it->st[1].u) {
        return 0;
    }

    *ref = refs[it->st[2].u++];

    return 1;
}


static int
t_fake_seek(ts_pit_t *it, uint64_t target, uint64_t *ref)
{
    int        rc;
    t_fake_t  *f;

    f = it->st[3].p;
    f->seeks++;

    while ((rc = t_fake_next(it, ref)) == 1 && *ref < target) {
        /* void */
    }

    return rc;
}


static void
t_fake_close(ts_pit_t *it)
{
    free(it->st[0].p);
}


static const ts_pit_ops_t  t_fake_ops = {
    t_fake_next, t_fake_seek, t_fake_close
};


static int
t_fake_postings(void *data, const char *name, size_t nlen,
    const char *value, size_t vlen, ts_pit_t *it)
{
    uint32_t           i, k;
    uint64_t          *refs;
    t_fake_t          *f;
    const ts_label_t  *l;

    f = data;
    refs = malloc(8 * sizeof(uint64_t));
    k = 0;

    for (i = 0; i < f->count; i++) {
        l = name ? ts_labels_find(f->l[i], f->n[i], name, nlen) : NULL;

        if (name != NULL
            && (l == NULL
                || (value != NULL
                    && (l->value_len != vlen
                        || memcmp(l->value, value, vlen) != 0))))
        {
            continue;
        }

        if (value != NULL && i + 1 == f->hidden) {
            continue;
        }

        refs[k++] = i + 1;
    }

    it->ops = &t_fake_ops;
    it->st[0].p = refs;
    it->st[1].u = k;
    it->st[2].u = 0;
    it->st[3].p = f;

    return TS_OK;
}


static int
t_fake_values(void *data, const char *name, size_t nlen,
    ts_source_str_pt cb, void *cbdata)
{
    uint32_t           i, j;
    t_fake_t          *f;
    const ts_label_t  *l, *o;

    f = data;

    for (i = 0; i < f->count; i++) {
        l = ts_labels_find(f->l[i], f->n[i], name, nlen);
        if (l == NULL) {
            continue;
        }

        for (j = 0; j < i; j++) {
            o = ts_labels_find(f->l[j], f->n[j], name, nlen);
            if (o != NULL && o->value_len == l->value_len
                && memcmp(o->value, l->value, l->value_len) == 0)
            {
                break;
            }
        }

        if (j == i && cb(cbdata, l->value, l->value_len) != 0) {
            break;
        }
    }

    return TS_OK;
}


static int
t_fake_labels(void *data, uint64_t ref, ts_label_t *out, uint32_t max,
    uint32_t *n)
{
    t_fake_t  *f;

    f = data;

    if (ref == 0 || ref > f->count) {
        return TS_ERR_NOTFOUND;
    }

    if (f->n[ref - 1] > max) {
        return TS_ERR_LIMIT;
    }

    memcpy(out, f->l[ref - 1], f->n[ref - 1] * sizeof(ts_label_t));
    *n = f->n[ref - 1];

    return TS_OK;
}


#define T_L(n, v)  { n, sizeof(n) - 1, v, sizeof(v) - 1 }

static const ts_label_t  t_f0[] = { T_L("id", "f0"), T_L("job", "a") };
static const ts_label_t  t_f1[] = { T_L("id", "f1"), T_L("job", "b") };
static const ts_label_t  t_f2[] = { T_L("id", "f2"), T_L("job", "a") };
static const ts_label_t  t_f3[] = { T_L("id", "f3") };


static void
test_fake_source(void **state)
{
    char           got[T_OUT];
    t_fake_t       f;
    ts_source_t    src;
    ts_matcher_t   m[2];
    ts_selector_t *sel;

    (void) state;

    memset(&f, 0, sizeof(f));
    f.l[0] = t_f0;
    f.n[0] = 2;
    f.l[1] = t_f1;
    f.n[1] = 2;
    f.l[2] = t_f2;
    f.n[2] = 2;
    f.l[3] = t_f3;
    f.n[3] = 1;
    f.count = 4;

    memset(&src, 0, sizeof(src));
    src.data = &f;
    src.postings = t_fake_postings;
    src.label_values = t_fake_values;
    src.labels = t_fake_labels;

    m[0].type = TS_MATCH_NEQ;
    m[0].name = "job";
    m[0].name_len = 3;
    m[0].value = "a";
    m[0].value_len = 1;

    assert_int_equal(ts_selector_compile(&sel, m, 1, NULL, NULL, 0),
                     TS_OK);

    assert_int_equal(t_run(sel, &src, got, sizeof(got)), 0);
    assert_string_equal(got, "f1 f3");
    assert_true(f.seeks > 0);

    /* f2 (job="a") missing from the job="a" list: still not selected */

    f.hidden = 3;
    assert_int_equal(t_run(sel, &src, got, sizeof(got)), 0);
    assert_string_equal(got, "f1 f3");
    ts_selector_free(sel);

    /* an intersection only misses it, as Prometheus's head would */

    m[0].type = TS_MATCH_EQ;
    assert_int_equal(ts_selector_compile(&sel, m, 1, NULL, NULL, 0),
                     TS_OK);
    assert_int_equal(t_run(sel, &src, got, sizeof(got)), 0);
    assert_string_equal(got, "f0");
    ts_selector_free(sel);

    /* every value passing: the label's own list, checked by labels */

    m[0].type = TS_MATCH_RE;
    m[0].value = "[ab]";
    m[0].value_len = 4;
    m[1].type = TS_MATCH_NRE;
    m[1].name = "id";
    m[1].name_len = 2;
    m[1].value = "f0";
    m[1].value_len = 2;

    f.hidden = 0;
    assert_int_equal(ts_selector_compile(&sel, m, 2, NULL, NULL, 0),
                     TS_OK);
    assert_int_equal(t_run(sel, &src, got, sizeof(got)), 0);
    assert_string_equal(got, "f1 f2");
    ts_selector_free(sel);
}


/* a union of many lists comes out ascending and without duplicates */

static void
test_many_values(void **state)
{
    char              got[16384], want[16384], id[16], inst[16];
    size_t            i;
    ts_matcher_t      m[2];
    ts_selector_t    *sel;
    ts_source_head_t  hs;
    const char       *kv[] = { "id", id, "__name__", "m", "instance", inst,
                               NULL };

    (void) state;

    for (i = 0; i < 1500; i++) {
        snprintf(id, sizeof(id), "m%zu", i);
        snprintf(inst, sizeof(inst), "%zu", i * 7919 % 1000);
        t_add("u", kv);
    }

    ts_source_head_init(&hs, &t_head, "u", 1);

    m[0].type = TS_MATCH_RE;
    m[0].name = "instance";
    m[0].name_len = 8;
    m[0].value = "[0-9]*[13579]";
    m[0].value_len = strlen(m[0].value);
    m[1].type = TS_MATCH_NEQ;
    m[1].name = "instance";
    m[1].name_len = 8;
    m[1].value = "1";
    m[1].value_len = 1;

    assert_int_equal(ts_selector_compile(&sel, m, 2, NULL, NULL, 0),
                     TS_OK);
    assert_int_equal(t_run(sel, &hs.src, got, sizeof(got)), 0);
    t_oracle(sel, &hs.src, want, sizeof(want));
    assert_string_equal(got, want);
    assert_true(strlen(got) > 1000);
    ts_selector_free(sel);
}


/*
 * Series selection goes by the postings index: picking 1,000 series out
 * of 200,000 reads the labels of those 1,000 only and moves the
 * postings iterators a number of times that grows with the answer, not
 * with the tenant (the big lists are intersected by seeking).  A
 * counting source wraps the head's.
 */

#define T_BIG_SIZE    ((size_t) 256 * 1024 * 1024)
#define T_BIG_SERIES  200000
#define T_BIG_EVERY   200

typedef struct {
    const ts_source_t   *inner;
    uint64_t             labels;
    uint64_t             moves;
} t_count_t;

static t_count_t            t_count;
static const ts_pit_ops_t  *t_count_inner;
static const ts_pit_ops_t   t_count_ops;


static int
t_count_next(ts_pit_t *it, uint64_t *ref)
{
    int  rc;

    t_count.moves++;
    it->ops = t_count_inner;
    rc = t_count_inner->next(it, ref);
    it->ops = &t_count_ops;

    return rc;
}


static int
t_count_seek(ts_pit_t *it, uint64_t target, uint64_t *ref)
{
    int  rc;

    t_count.moves++;
    it->ops = t_count_inner;
    rc = t_count_inner->seek != NULL
         ? t_count_inner->seek(it, target, ref)
         : t_count_inner->next(it, ref);
    it->ops = &t_count_ops;

    return rc;
}


static void
t_count_close(ts_pit_t *it)
{
    if (t_count_inner->close != NULL) {
        it->ops = t_count_inner;
        t_count_inner->close(it);
    }
}


static const ts_pit_ops_t  t_count_ops = {
    t_count_next, t_count_seek, t_count_close
};


static int
t_count_postings(void *data, const char *name, size_t nlen,
    const char *value, size_t vlen, ts_pit_t *it)
{
    int         rc;
    t_count_t  *c = data;

    rc = c->inner->postings(c->inner->data, name, nlen, value, vlen, it);
    if (rc != TS_OK) {
        return rc;
    }

    /* every list this test asks for exists: one kind of iterator */
    if (t_count_inner == NULL) {
        t_count_inner = it->ops;
    }

    assert_ptr_equal(it->ops, t_count_inner);

    /* a seek that is not the inner one's is a walk: counted as such */
    it->ops = &t_count_ops;

    return TS_OK;
}


static int
t_count_labels(void *data, uint64_t ref, ts_label_t *out, uint32_t max,
    uint32_t *n)
{
    t_count_t  *c = data;

    c->labels++;

    return c->inner->labels(c->inner->data, ref, out, max, n);
}


static void
test_postings_not_scan(void **state)
{
    int                rc;
    char               id[16], job[16];
    void              *mem;
    size_t             i;
    uint64_t           ref, found;
    ts_head_t          big;
    ts_select_t       *it;
    ts_matcher_t       m[3];
    ts_selector_t     *sel;
    ts_source_t        src;
    ts_source_head_t   hs;
    uint32_t           tn, n, r;
    ts_label_t         l[4];

    (void) state;

    mem = mmap(NULL, T_BIG_SIZE, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    assert_int_equal(ts_head_open(&big, mem, T_BIG_SIZE, getpid(), t_alive),
                     TS_OK);
    assert_int_equal(ts_head_tenant(&big, "t", 1, &tn), TS_OK);

    for (i = 0; i < T_BIG_SERIES; i++) {
        snprintf(id, sizeof(id), "s%zu", i);
        snprintf(job, sizeof(job), "%s",
                 i % T_BIG_EVERY == 7 ? "needle" : "hay");

        l[0] = (ts_label_t) { "__name__", 8, "m", 1 };
        l[1] = (ts_label_t) { "id", 2, id, (uint32_t) strlen(id) };
        l[2] = (ts_label_t) { "job", 3, job, (uint32_t) strlen(job) };
        n = 3;

        assert_int_equal(ts_head_series(&big, tn, l, n,
                                        ts_labels_hash(l, n), 0, &r), 1);
    }

    ts_source_head_init(&hs, &big, "t", 1);

    memset(&src, 0, sizeof(src));
    src.data = &t_count;
    src.postings = t_count_postings;
    src.labels = t_count_labels;
    src.label_values = hs.src.label_values;
    src.chunks = hs.src.chunks;

    /* {__name__="m", job="needle"}, then with a regex and a != too */
    m[0] = (ts_matcher_t) { TS_MATCH_EQ, "__name__", 8, "m", 1 };
    m[1] = (ts_matcher_t) { TS_MATCH_EQ, "job", 3, "needle", 6 };
    m[2] = (ts_matcher_t) { TS_MATCH_NEQ, "id", 2, "s7", 2 };

    for (n = 2; n <= 3; n++) {
        memset(&t_count, 0, sizeof(t_count));
        t_count.inner = &hs.src;
        t_count_inner = NULL;

        assert_int_equal(ts_selector_compile(&sel, m, n, NULL, NULL, 0),
                         TS_OK);
        assert_int_equal(ts_select_open(&it, sel, &src), TS_OK);

        found = 0;
        while ((rc = ts_select_next(it, &ref)) == 1) {
            found++;
        }

        assert_int_equal(rc, 0);
        ts_select_close(it);
        ts_selector_free(sel);

        assert_int_equal(found, T_BIG_SERIES / T_BIG_EVERY - (n == 3));

        print_message("select %u matchers: %llu of %d series, "
                      "%llu labels read, %llu postings moves\n", n,
                      (unsigned long long) found, T_BIG_SERIES,
                      (unsigned long long) t_count.labels,
                      (unsigned long long) t_count.moves);

        /* labels read for the answer (and its != check) only */
        assert_true(t_count.labels <= T_BIG_SERIES / T_BIG_EVERY);

        /* iterator moves: a few per series found, never one per series */
        assert_true(t_count.moves <= 4 * (T_BIG_SERIES / T_BIG_EVERY) + 8);
    }

    munmap(mem, T_BIG_SIZE);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cases, t_setup, t_teardown),
        cmocka_unit_test(test_regex_semantics),
        cmocka_unit_test(test_regex_rejected),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test_setup_teardown(test_match_limit, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_combinations, t_setup,
                                        t_teardown),
        cmocka_unit_test(test_fake_source),
        cmocka_unit_test_setup_teardown(test_many_values, t_setup,
                                        t_teardown),
        cmocka_unit_test(test_postings_not_scan),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
