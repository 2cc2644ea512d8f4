/*
 * Copyright (C) ngx_tsdb authors
 *
 * Label set tests: name syntax, UTF-8 (Go's rules), Prometheus ordering
 * and labels.Compare, XXH64 against the published test vectors and the
 * labels.Hash() byte layout, and ts_labels_validate() with one named
 * case per rejection kind, limits at and past their edge, and the
 * reason text (quoting, truncation).
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
#include "ts_labels.h"


#define TL_MAX  64

#define tl_check(name, cond)                                              \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fail_msg("%s: %s (line %d)", (name), #cond, __LINE__);        \
        }                                                                 \
    } while (0)


typedef struct {
    const char  *s;
    int          metric;
    int          label;
} tl_name_case_t;


typedef struct {
    const char  *name;
    const char  *s;
    size_t       len;
    int          valid;
    size_t       runes;
} tl_utf8_case_t;


/* "n=v" pairs separated by "|", with \1 standing for an empty value */
typedef struct {
    const char        *name;
    const char        *set;
    int                rc;
    ts_reject_code_t   code;
    const char        *msg_has;
    uint32_t           n_after;
} tl_validate_case_t;


typedef struct {
    ts_label_t  l[TL_MAX];
    uint32_t    n;
    char        buf[8192];
} tl_set_t;


static const tl_name_case_t  tl_names[] = {
    { "up", 1, 1 },
    { "__name__", 1, 1 },
    { "__reserved_by_prometheus", 1, 1 },
    { "_", 1, 1 },
    { "A_Z09_az", 1, 1 },
    { "job:rate5m", 1, 0 },
    { ":", 1, 0 },
    { ":leading_colon", 1, 0 },
    { "0abc", 0, 0 },
    { "9", 0, 0 },
    { "", 0, 0 },
    { "a-b", 0, 0 },
    { "a b", 0, 0 },
    { "a.b", 0, 0 },
    { "\xc3\xa4", 0, 0 },
    { "a\xc3\xa4", 0, 0 },
};


static const tl_utf8_case_t  tl_utf8[] = {
    { "empty", "", 0, 1, 0 },
    { "ascii", "abc", 3, 1, 3 },
    { "nul_is_valid", "a\0b", 3, 1, 3 },
    { "two_byte", "\xc3\xa4", 2, 1, 1 },
    { "three_byte", "\xe2\x82\xac", 3, 1, 1 },
    { "four_byte", "\xf0\x9f\x98\x80", 4, 1, 1 },
    { "max_code_point", "\xf4\x8f\xbf\xbf", 4, 1, 1 },
    { "long_ascii_then_two_byte", "abcdefghijklmnop\xc3\xa4", 18, 1, 17 },
    { "truncated_two_byte", "\xc3", 1, 0, 0 },
    { "truncated_four_byte", "\xf0\x9f\x98", 3, 0, 0 },
    { "lone_continuation", "\x80", 1, 0, 0 },
    { "overlong_slash", "\xc0\xaf", 2, 0, 0 },
    { "overlong_c1", "\xc1\xbf", 2, 0, 0 },
    { "overlong_three_byte", "\xe0\x80\x80", 3, 0, 0 },
    { "overlong_four_byte", "\xf0\x80\x80\x80", 4, 0, 0 },
    { "surrogate_high", "\xed\xa0\x80", 3, 0, 0 },
    { "surrogate_low", "\xed\xbf\xbf", 3, 0, 0 },
    { "above_max", "\xf4\x90\x80\x80", 4, 0, 0 },
    { "f5_lead", "\xf5\x80\x80\x80", 4, 0, 0 },
    { "ff_byte", "\xff", 1, 0, 0 },
    { "bad_after_ascii_run", "abcdefghijklmnop\xff", 17, 0, 0 },
    { "bad_second_continuation", "\xe2\x82\x41", 3, 0, 0 },
};


static const tl_validate_case_t  tl_validate[] = {
    { "ok_sorted", "__name__=up|instance=a|job=b",
      TS_OK, TS_REJECT_NONE, NULL, 3 },
    { "ok_unsorted_is_sorted", "job=b|__name__=up|instance=a",
      TS_OK, TS_REJECT_NONE, NULL, 3 },
    { "ok_empty_value_dropped", "__name__=up|env=\1|job=b",
      TS_OK, TS_REJECT_NONE, NULL, 2 },
    { "ok_reserved_prefix", "__name__=up|__meta_x=1",
      TS_OK, TS_REJECT_NONE, NULL, 2 },
    { "ok_utf8_value", "__name__=up|city=K\xc3\xb6ln",
      TS_OK, TS_REJECT_NONE, NULL, 2 },
    { "missing_metric_name", "job=b|instance=a",
      TS_ERR_INVALID, TS_REJECT_MISSING_METRIC_NAME,
      "received series has no metric name", 0 },
    { "empty_metric_name", "__name__=\1|job=b",
      TS_ERR_INVALID, TS_REJECT_MISSING_METRIC_NAME, "no metric name", 0 },
    { "invalid_metric_name", "__name__=1up|job=b",
      TS_ERR_INVALID, TS_REJECT_INVALID_METRIC_NAME,
      "invalid metric name: '1up'", 0 },
    { "metric_name_with_dash", "__name__=up-time",
      TS_ERR_INVALID, TS_REJECT_INVALID_METRIC_NAME, "'up-time'", 0 },
    { "empty_label_name", "__name__=up|=x",
      TS_ERR_INVALID, TS_REJECT_EMPTY_LABEL_NAME,
      "empty label name, metric: 'up'", 0 },
    { "invalid_label_name", "__name__=up|a-b=x",
      TS_ERR_INVALID, TS_REJECT_INVALID_LABEL_NAME,
      "invalid label: 'a-b' metric: 'up'", 0 },
    { "label_name_with_colon", "__name__=up|a:b=x",
      TS_ERR_INVALID, TS_REJECT_INVALID_LABEL_NAME, "'a:b'", 0 },
    { "invalid_label_name_empty_value", "__name__=up|a-b=\1",
      TS_ERR_INVALID, TS_REJECT_INVALID_LABEL_NAME, "'a-b'", 0 },
    { "duplicate_label_name", "__name__=up|job=a|job=b",
      TS_ERR_INVALID, TS_REJECT_DUPLICATE_LABEL_NAME,
      "duplicate label name, label: 'job' metric: 'up'", 0 },
    { "duplicate_with_empty_value", "__name__=up|job=a|job=\1",
      TS_ERR_INVALID, TS_REJECT_DUPLICATE_LABEL_NAME, "'job'", 0 },
    { "duplicate_metric_name", "__name__=up|__name__=down",
      TS_ERR_INVALID, TS_REJECT_DUPLICATE_LABEL_NAME, "'__name__'", 0 },
    { "invalid_utf8_value", "__name__=up|job=\xc0\xaf",
      TS_ERR_INVALID, TS_REJECT_INVALID_LABEL_VALUE,
      "invalid value in label 'job': not valid UTF-8", 0 },
    { "surrogate_value", "__name__=up|job=\xed\xa0\x80",
      TS_ERR_INVALID, TS_REJECT_INVALID_LABEL_VALUE, "'job'", 0 },
    { "quote_in_label_name_escaped", "__name__=up|a'b\n=x",
      TS_ERR_INVALID, TS_REJECT_INVALID_LABEL_NAME, "'a\\x27b\\x0a'", 0 },
};


static void
tl_parse(tl_set_t *s, const char *set)
{
    char  *p, *eq, *bar;

    snprintf(s->buf, sizeof(s->buf), "%s", set);
    s->n = 0;
    p = s->buf;

    while (*p && s->n < TL_MAX) {
        bar = strchr(p, '|');
        if (bar != NULL) {
            *bar = '\0';
        }

        eq = strrchr(p, '=');
        assert_non_null(eq);
        *eq = '\0';

        s->l[s->n].name = p;
        s->l[s->n].name_len = (uint32_t) strlen(p);
        s->l[s->n].value = eq + 1;
        s->l[s->n].value_len = (uint32_t) strlen(eq + 1);

        if (eq[1] == '\1') {
            s->l[s->n].value_len = 0;
        }

        s->n++;

        if (bar == NULL) {
            break;
        }

        p = bar + 1;
    }
}


static void
test_limits_default(void **state)
{
    ts_limits_t  lim;

    (void) state;

    ts_limits_default(&lim);

    assert_int_equal(lim.max_body_size, 32 * 1024 * 1024);
    assert_int_equal(lim.max_label_names_per_series, 30);
    assert_int_equal(lim.max_label_name_length, 1024);
    assert_int_equal(lim.max_label_value_length, 2048);
    assert_int_equal(lim.max_metadata_length, 1024);
    assert_int_equal(lim.max_exemplar_labels_length, 128);
    assert_true(lim.max_decode_memory >= 6 * lim.max_body_size);
}


static void
test_name_syntax(void **state)
{
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(tl_names) / sizeof(tl_names[0]); i++) {
        tl_check(tl_names[i].s,
                 ts_metric_name_valid(tl_names[i].s, strlen(tl_names[i].s))
                 == tl_names[i].metric);
        tl_check(tl_names[i].s,
                 ts_label_name_valid(tl_names[i].s, strlen(tl_names[i].s))
                 == tl_names[i].label);
    }
}


static void
test_utf8(void **state)
{
    const tl_utf8_case_t  *c;
    size_t                 i;

    (void) state;

    for (i = 0; i < sizeof(tl_utf8) / sizeof(tl_utf8[0]); i++) {
        c = &tl_utf8[i];
        tl_check(c->name, ts_utf8_valid(c->s, c->len) == c->valid);

        if (c->valid) {
            tl_check(c->name, ts_utf8_count(c->s, c->len) == c->runes);
        }
    }
}


static void
test_utf8_cut(void **state)
{
    const char  *s = "ab\xe2\x82\xac" "cd";

    (void) state;

    assert_int_equal(ts_utf8_cut(s, 7, 10), 7);
    assert_int_equal(ts_utf8_cut(s, 7, 5), 5);
    assert_int_equal(ts_utf8_cut(s, 7, 4), 2);
    assert_int_equal(ts_utf8_cut(s, 7, 3), 2);
    assert_int_equal(ts_utf8_cut(s, 7, 2), 2);
    assert_int_equal(ts_utf8_cut(s, 7, 0), 0);
}


static void
test_sort_bytewise(void **state)
{
    tl_set_t  s;

    (void) state;

    /* Go string order: 'A' < '_' < 'a', and a prefix sorts first */
    tl_parse(&s, "job=1|ab=2|a=3|__name__=4|Zeta=5|_x=6|A=7");
    assert_false(ts_labels_sorted(s.l, s.n));

    ts_labels_sort(s.l, s.n);

    assert_true(ts_labels_sorted(s.l, s.n));
    assert_string_equal(s.l[0].name, "A");
    assert_string_equal(s.l[1].name, "Zeta");
    assert_string_equal(s.l[2].name, "__name__");
    assert_string_equal(s.l[3].name, "_x");
    assert_string_equal(s.l[4].name, "a");
    assert_string_equal(s.l[5].name, "ab");
    assert_string_equal(s.l[6].name, "job");
}


static void
test_sort_many(void **state)
{
    ts_label_t  l[TL_MAX];
    char        names[TL_MAX][8];
    uint32_t    i;

    (void) state;

    /* more than the insertion-sort threshold, reversed */
    for (i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "l%03u", 39 - i);
        l[i].name = names[i];
        l[i].name_len = 4;
        l[i].value = "v";
        l[i].value_len = 1;
    }

    ts_labels_sort(l, 40);

    assert_true(ts_labels_sorted(l, 40));
    assert_memory_equal(l[0].name, "l000", 4);
    assert_memory_equal(l[39].name, "l039", 4);
}


static void
test_cmp(void **state)
{
    static const struct {
        const char  *name;
        const char  *a;
        const char  *b;
        int          sign;
    } cases[] = {
        { "equal", "a=1|b=2", "a=1|b=2", 0 },
        { "name_less", "a=1|b=2", "a=1|c=2", -1 },
        { "value_less", "a=1|b=2", "a=1|b=3", -1 },
        { "value_before_next_name", "a=1|z=0", "a=2|b=0", -1 },
        { "value_prefix_first", "a=1", "a=10", -1 },
        { "shorter_set_first", "a=1", "a=1|b=2", -1 },
        { "longer_set_after", "a=1|b=2", "a=1", 1 },
        { "name_greater", "b=1", "a=9|c=9", 1 },
    };
    tl_set_t  a, b;
    size_t    i;
    int       rc;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tl_parse(&a, cases[i].a);
        tl_parse(&b, cases[i].b);
        rc = ts_labels_cmp(a.l, a.n, b.l, b.n);
        tl_check(cases[i].name, (rc > 0) - (rc < 0) == cases[i].sign);
        rc = ts_labels_cmp(b.l, b.n, a.l, a.n);
        tl_check(cases[i].name, (rc > 0) - (rc < 0) == -cases[i].sign);
    }
}


static void
test_xxh64_vectors(void **state)
{
    static const struct {
        const char  *s;
        uint64_t     h;
    } v[] = {
        /* published XXH64 results, seed 0 */
        { "", 0xEF46DB3751D8E999ULL },
        { "a", 0xD24EC4F1A98C6E5BULL },
        { "abc", 0x44BC2CF5AD770999ULL },
        { "0123456789abcdef0123456789abcdef", 0x642A94958E71E6C5ULL },
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0x856E843298F99AD7ULL },
        { "Nobody inspects the spammish repetition",
          0xFBCEA83C8A378BF1ULL },
    };
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        tl_check(v[i].s, ts_xxh64(v[i].s, strlen(v[i].s), 0) == v[i].h);
    }
}


/* labels.Hash() bytes: name 0xff value 0xff ..., hashed in one go */
static uint64_t
tl_hash_flat(const ts_label_t *l, uint32_t n)
{
    static char  buf[16384];
    size_t       k;
    uint32_t     i;

    k = 0;

    for (i = 0; i < n; i++) {
        memcpy(buf + k, l[i].name, l[i].name_len);
        k += l[i].name_len;
        buf[k++] = (char) 0xff;
        memcpy(buf + k, l[i].value, l[i].value_len);
        k += l[i].value_len;
        buf[k++] = (char) 0xff;
    }

    return ts_xxh64(buf, k, 0);
}


static void
test_labels_hash(void **state)
{
    static const char  *sets[] = {
        "__name__=up",
        "__name__=up|instance=127.0.0.1:9100|job=node",
        "__name__=go_gc_duration_seconds|cluster=demo|instance=127.0.0.1:"
            "19092|job=prometheus|quantile=0.25",
        "__name__=a_rather_long_metric_name_to_cross_stripes_total|"
            "label_one=value_number_one|label_two=value_number_two",
    };
    tl_set_t  a, b;
    char      big[3000];
    size_t    i;

    (void) state;

    for (i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
        tl_parse(&a, sets[i]);
        tl_check(sets[i], ts_labels_hash(a.l, a.n) == tl_hash_flat(a.l, a.n));
    }

    /* one long value: the streaming path over many stripes */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    a.l[0] = (ts_label_t) { "k", 1, big, (uint32_t) strlen(big) };
    assert_true(ts_labels_hash(a.l, 1) == tl_hash_flat(a.l, 1));

    /* a small label laid out first, then streaming */
    a.l[0] = (ts_label_t) { "__name__", 8, "up", 2 };
    a.l[1] = (ts_label_t) { "k", 1, big, (uint32_t) strlen(big) };
    a.l[2] = (ts_label_t) { "z", 1, "last", 4 };
    assert_true(ts_labels_hash(a.l, 3) == tl_hash_flat(a.l, 3));

    /* the separator keeps name/value boundaries apart */
    tl_parse(&a, "a=bc");
    tl_parse(&b, "ab=c");
    assert_true(ts_labels_hash(a.l, a.n) != ts_labels_hash(b.l, b.n));

    tl_parse(&a, "a=1|b=2");
    tl_parse(&b, "a=1|b=3");
    assert_true(ts_labels_hash(a.l, a.n) != ts_labels_hash(b.l, b.n));
    assert_true(ts_labels_hash(NULL, 0) == ts_xxh64("", 0, 0));
}


/*
 * ts_labels_hash_in(): the same value as ts_labels_hash() wherever the
 * strings lie in the buffer (start, middle, the last bytes before end,
 * lengths around the 16-byte move), and for strings outside it.
 */
static void
test_labels_hash_in(void **state)
{
    char        *buf, *end;
    size_t       len, nl, vl, pos;
    ts_label_t   l[3];
    static char  other[] = "outside_the_buffer";

    (void) state;

    len = 96;
    buf = malloc(len);
    assert_non_null(buf);
    end = buf + len;

    for (pos = 0; pos < len; pos++) {
        buf[pos] = (char) ('a' + pos % 26);
    }

    for (nl = 0; nl <= 20; nl++) {
        for (vl = 0; vl <= 20; vl++) {
            for (pos = 0; pos + nl + vl <= len; pos += 7) {
                l[0] = (ts_label_t) { "__name__", 8, buf + pos,
                                      (uint32_t) nl };
                l[1] = (ts_label_t) { buf + len - nl, (uint32_t) nl,
                                      buf + len - vl, (uint32_t) vl };
                l[2] = (ts_label_t) { other, sizeof(other) - 1,
                                      buf + pos + nl, (uint32_t) vl };

                if (ts_labels_hash_in(l, 3, buf, end)
                    != ts_labels_hash(l, 3)
                    || ts_labels_hash_in(l, 3, buf, end)
                       != tl_hash_flat(l, 3))
                {
                    fail_msg("name %zu value %zu at %zu", nl, vl, pos);
                }
            }
        }
    }

    /* a buffer shorter than 16 bytes, no buffer */
    l[0] = (ts_label_t) { buf, 3, buf + 3, 5 };
    assert_true(ts_labels_hash_in(l, 1, buf, buf + 8)
                == ts_labels_hash(l, 1));
    assert_true(ts_labels_hash_in(l, 1, NULL, NULL)
                == ts_labels_hash(l, 1));

    free(buf);
}

static void
tl_validate_one(const tl_validate_case_t *c, const ts_limits_t *lim)
{
    ts_reject_t  why;
    tl_set_t     s;
    int          rc;

    tl_parse(&s, c->set);
    memset(&why, 0x55, sizeof(why));

    rc = ts_labels_validate(s.l, &s.n, lim, &why);

    tl_check(c->name, rc == c->rc);
    tl_check(c->name, why.code == c->code);
    tl_check(c->name, strlen(why.msg) < TS_REJECT_MSG_SIZE);

    if (c->msg_has != NULL && strstr(why.msg, c->msg_has) == NULL) {
        fail_msg("%s: reason \"%s\" lacks \"%s\"", c->name, why.msg,
                 c->msg_has);
    }

    if (rc == TS_OK) {
        tl_check(c->name, ts_labels_sorted(s.l, s.n));
        tl_check(c->name, why.msg[0] == '\0');
        tl_check(c->name, s.n == c->n_after);
    }
}


static void
test_validate_table(void **state)
{
    ts_limits_t  lim;
    size_t       i;

    (void) state;

    ts_limits_default(&lim);

    for (i = 0; i < sizeof(tl_validate) / sizeof(tl_validate[0]); i++) {
        tl_validate_one(&tl_validate[i], &lim);
    }
}


/* n labels: __name__ plus n - 1 named l00.. */
static void
tl_make(tl_set_t *s, uint32_t n)
{
    uint32_t  i;

    s->l[0] = (ts_label_t) { "__name__", 8, "up", 2 };

    for (i = 1; i < n; i++) {
        snprintf(s->buf + i * 4, 4, "l%02u", i);
        s->l[i] = (ts_label_t) { s->buf + i * 4, 3, "v", 1 };
    }

    s->n = n;
}


static void
test_validate_label_count(void **state)
{
    ts_limits_t  lim;
    ts_reject_t  why;
    tl_set_t     s;

    (void) state;

    ts_limits_default(&lim);

    tl_make(&s, 30);
    assert_int_equal(ts_labels_validate(s.l, &s.n, &lim, &why), TS_OK);

    tl_make(&s, 31);
    assert_int_equal(ts_labels_validate(s.l, &s.n, &lim, &why),
                     TS_ERR_LIMIT);
    assert_int_equal(why.code, TS_REJECT_TOO_MANY_LABELS);
    assert_non_null(strstr(why.msg, "(actual: 31, limit: 30) metric: 'up'"));

    /* empty values count: the limit is on the pairs as sent */
    tl_make(&s, 31);
    s.l[30].value_len = 0;
    assert_int_equal(ts_labels_validate(s.l, &s.n, &lim, &why),
                     TS_ERR_LIMIT);
}


static void
test_validate_lengths(void **state)
{
    static char  name[1100], value[2100];
    ts_limits_t  lim;
    ts_reject_t  why;
    ts_label_t   l[2];
    uint32_t     n;

    (void) state;

    ts_limits_default(&lim);
    memset(name, 'n', sizeof(name));
    memset(value, 'v', sizeof(value));

    l[0] = (ts_label_t) { "__name__", 8, "up", 2 };
    l[1] = (ts_label_t) { name, 1024, value, 2048 };
    n = 2;
    assert_int_equal(ts_labels_validate(l, &n, &lim, &why), TS_OK);

    l[1] = (ts_label_t) { name, 1025, "v", 1 };
    n = 2;
    assert_int_equal(ts_labels_validate(l, &n, &lim, &why), TS_ERR_LIMIT);
    assert_int_equal(why.code, TS_REJECT_LABEL_NAME_TOO_LONG);
    assert_non_null(strstr(why.msg, "(actual: 1025, limit: 1024)"));
    /* the quoted name is cut */
    assert_non_null(strstr(why.msg, "nnnnnnnn...'"));
    assert_true(strlen(why.msg) < 300);

    l[0] = (ts_label_t) { "__name__", 8, "up", 2 };
    l[1] = (ts_label_t) { "job", 3, value, 2049 };
    n = 2;
    assert_int_equal(ts_labels_validate(l, &n, &lim, &why), TS_ERR_LIMIT);
    assert_int_equal(why.code, TS_REJECT_LABEL_VALUE_TOO_LONG);
    assert_non_null(strstr(why.msg, "label: 'job' metric: 'up'"));

    /* the value limit applies to the metric name too (Mimir) */
    memset(value, 'm', sizeof(value));
    l[0] = (ts_label_t) { "__name__", 8, value, 2049 };
    n = 1;
    assert_int_equal(ts_labels_validate(l, &n, &lim, &why), TS_ERR_LIMIT);
    assert_int_equal(why.code, TS_REJECT_LABEL_VALUE_TOO_LONG);
}


static void
test_reject_format(void **state)
{
    ts_reject_t  why;
    char         big[600];

    (void) state;

    ts_reject_set(&why, TS_REJECT_INVALID_LABEL_NAME, "x=%u y=%d z=%s %%",
                  42u, -7, "a\tb\\c", (size_t) 5);
    assert_int_equal(why.code, TS_REJECT_INVALID_LABEL_NAME);
    assert_string_equal(why.msg, "x=42 y=-7 z=a\\x09b\\x5cc %%");

    /* cut at the buffer, never past it */
    memset(big, 'a', sizeof(big));
    ts_reject_set(&why, TS_REJECT_NONE, "%s %s %s %s %s", big, (size_t) 600,
                  big, (size_t) 600, big, (size_t) 600, big, (size_t) 600,
                  big, (size_t) 600);
    assert_int_equal(strlen(why.msg), TS_REJECT_MSG_SIZE - 1);

    /* a dangling % is copied */
    ts_reject_set(&why, TS_REJECT_NONE, "100%");
    assert_string_equal(why.msg, "100%");

    ts_reject_set(NULL, TS_REJECT_NONE, "ignored");
}


static void
test_reject_names(void **state)
{
    int  c;

    (void) state;

    for (c = 0; c < TS_REJECT_LAST; c++) {
        assert_string_not_equal(ts_reject_name((ts_reject_code_t) c),
                                "unknown");
    }

    assert_string_equal(ts_reject_name(TS_REJECT_LAST), "unknown");
    assert_string_equal(ts_reject_name(TS_REJECT_MISSING_METRIC_NAME),
                        "missing_metric_name");
}


static void
test_find(void **state)
{
    tl_set_t  s;

    (void) state;

    tl_parse(&s, "__name__=up|job=node");

    assert_ptr_equal(ts_labels_find(s.l, s.n, "job", 3), &s.l[1]);
    assert_null(ts_labels_find(s.l, s.n, "jo", 2));
    assert_null(ts_labels_find(s.l, 0, "job", 3));
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_limits_default),
        cmocka_unit_test(test_name_syntax),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_utf8_cut),
        cmocka_unit_test(test_sort_bytewise),
        cmocka_unit_test(test_sort_many),
        cmocka_unit_test(test_cmp),
        cmocka_unit_test(test_xxh64_vectors),
        cmocka_unit_test(test_labels_hash),
        cmocka_unit_test(test_labels_hash_in),
        cmocka_unit_test(test_validate_table),
        cmocka_unit_test(test_validate_label_count),
        cmocka_unit_test(test_validate_lengths),
        cmocka_unit_test(test_reject_format),
        cmocka_unit_test(test_reject_names),
        cmocka_unit_test(test_find),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
