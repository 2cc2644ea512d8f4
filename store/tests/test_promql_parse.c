/*
 * Copyright (C) ngx_tsdb authors
 *
 * PromQL parser tests.  The big table holds every expression of
 * t/data/promql/parse-corpus.txt with what Prometheus 2.42 made of it:
 * for a valid one the canonical form Prometheus printed (the "query" of
 * a recording rule in /api/v1/rules), for an invalid one the error
 * promtool printed ("line:col: parse error: msg"; for a bad regex only
 * the prefix, as RE2's wording differs).  The other tests check the
 * AST handed to the evaluator, the error position on several lines,
 * the limits and the printer's buffer handling.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_promql.h"


#define tp_check(name, cond)                                              \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fail_msg("%s: %s (line %d)", (name), #cond, __LINE__);        \
        }                                                                 \
    } while (0)


typedef struct {
    const char  *in;
    int          ok;
    int          prefix;     /* expected is a prefix of the error */
    const char  *expected;   /* canonical form, or the error */
} tp_case_t;


/* generated from Prometheus 2.42's answers; see the top of this file */
static const tp_case_t  tp_cases[] = {
    { "1",
      1, 0, "1" },
    { "+Inf",
      1, 0, "+Inf" },
    { "-Inf",
      1, 0, "-Inf" },
    { "inf",
      1, 0, "+Inf" },
    { "NaN",
      1, 0, "NaN" },
    { "nan",
      1, 0, "NaN" },
    { "-nan",
      1, 0, "NaN" },
    { ".5",
      1, 0, "0.5" },
    { "5.",
      1, 0, "5" },
    { "123.4567",
      1, 0, "123.4567" },
    { "5e-3",
      1, 0, "0.005" },
    { "5e3",
      1, 0, "5000" },
    { "5E+3",
      1, 0, "5000" },
    { "0xc",
      1, 0, "12" },
    { "0XFF",
      1, 0, "255" },
    { "0x",
      0, 0, "1:1: parse error: error parsing number: strconv.ParseFloat: pa"
      "rsing \"0x\": invalid syntax" },
    { "0xg",
      0, 0, "1:1: parse error: bad number or duration syntax: \"0x\"" },
    { "0755",
      1, 0, "493" },
    { "-0755",
      1, 0, "-493" },
    { "08",
      1, 0, "8" },
    { "0755.5",
      1, 0, "755.5" },
    { "1e",
      0, 0, "1:1: parse error: error parsing number: strconv.ParseFloat: pa"
      "rsing \"1e\": invalid syntax" },
    { "1e+",
      0, 0, "1:1: parse error: error parsing number: strconv.ParseFloat: pa"
      "rsing \"1e+\": invalid syntax" },
    { "1.e5",
      1, 0, "100000" },
    { "9223372036854775807",
      1, 0, "9.223372036854776e+18" },
    { "9223372036854775808",
      1, 0, "9.223372036854776e+18" },
    { "0x7fffffffffffffff",
      1, 0, "9.223372036854776e+18" },
    { "0x8000000000000000",
      0, 0, "1:1: parse error: error parsing number: strconv.ParseFloat: pa"
      "rsing \"0x8000000000000000\": invalid syntax" },
    { "1e308",
      1, 0, "1e+308" },
    { "1e309",
      0, 0, "1:1: parse error: error parsing number: strconv.ParseFloat: pa"
      "rsing \"1e309\": value out of range" },
    { "4.9e-324",
      1, 0, "5e-324" },
    { "1e-400",
      1, 0, "0" },
    { "0.1+0.2",
      1, 0, "0.1 + 0.2" },
    { "1 + 1",
      1, 0, "1 + 1" },
    { "1 - 1",
      1, 0, "1 - 1" },
    { "1 * 1",
      1, 0, "1 * 1" },
    { "1 % 1",
      1, 0, "1 % 1" },
    { "1 / 1",
      1, 0, "1 / 1" },
    { "1 ^ 1",
      1, 0, "1 ^ 1" },
    { "1 atan2 1",
      1, 0, "1 atan2 1" },
    { "1 == bool 1",
      1, 0, "1 == bool 1" },
    { "1 != bool 1",
      1, 0, "1 != bool 1" },
    { "1 > bool 1",
      1, 0, "1 > bool 1" },
    { "1 >= bool 1",
      1, 0, "1 >= bool 1" },
    { "1 < bool 1",
      1, 0, "1 < bool 1" },
    { "1 <= bool 1",
      1, 0, "1 <= bool 1" },
    { "-1^2",
      1, 0, "-1 ^ 2" },
    { "-1*2",
      1, 0, "-1 * 2" },
    { "-1+2",
      1, 0, "-1 + 2" },
    { "-1^-2",
      1, 0, "-1 ^ -2" },
    { "+1 + -2 * 1",
      1, 0, "1 + -2 * 1" },
    { "1 + 2/(3*1)",
      1, 0, "1 + 2 / (3 * 1)" },
    { "1 < bool 2 - 1 * 2",
      1, 0, "1 < bool 2 - 1 * 2" },
    { "-some_metric",
      1, 0, "-some_metric" },
    { "+some_metric",
      1, 0, "+some_metric" },
    { " +some_metric",
      1, 0, "+some_metric" },
    { "- - 1",
      1, 0, "1" },
    { "-(-(1))",
      1, 0, "-(-(1))" },
    { "--1",
      1, 0, "1" },
    { "+-+-1",
      1, 0, "1" },
    { "# just a comment",
      0, 0, "1:1: parse error: no expression found in input" },
    { "1+",
      0, 0, "1:3: parse error: unexpected end of input" },
    { ".",
      0, 0, "1:1: parse error: unexpected character: '.'" },
    { "2.5.",
      0, 0, "1:4: parse error: unexpected character: '.'" },
    { "100..4",
      0, 0, "1:5: parse error: unexpected number \".4\"" },
    { "0deadbeef",
      0, 0, "1:1: parse error: bad number or duration syntax: \"0de\"" },
    { "1 /",
      0, 0, "1:4: parse error: unexpected end of input" },
    { "*1",
      0, 0, "1:1: parse error: unexpected <op:*>" },
    { "(1))",
      0, 0, "1:5: parse error: unexpected right parenthesis ')'" },
    { "((1)",
      0, 0, "1:5: parse error: unclosed left parenthesis" },
    { "(",
      0, 0, "1:2: parse error: unclosed left parenthesis" },
    { "1 and 1",
      0, 0, "1:1: parse error: set operator \"and\" not allowed in binary s"
      "calar expression" },
    { "1 == 1",
      0, 0, "1:3: parse error: comparisons between scalars must use BOOL mo"
      "difier" },
    { "1 or 1",
      0, 0, "1:1: parse error: set operator \"or\" not allowed in binary sc"
      "alar expression" },
    { "1 unless 1",
      0, 0, "1:1: parse error: set operator \"unless\" not allowed in binar"
      "y scalar expression" },
    { "1 !~ 1",
      0, 0, "1:3: parse error: unexpected character after '!': '~'" },
    { "1 =~ 1",
      0, 0, "1:3: parse error: unexpected character after '=': '~'" },
    { "-\"string\"",
      0, 0, "1:1: parse error: unary expression only allowed on expressions"
      " of type scalar or instant vector, got \"string\"" },
    { "-test[5m]",
      0, 0, "1:1: parse error: unary expression only allowed on expressions"
      " of type scalar or instant vector, got \"range vector\"" },
    { "*test",
      0, 0, "1:1: parse error: unexpected <op:*>" },
    { "1 offset 1d",
      0, 0, "1:1: parse error: offset modifier must be preceded by an insta"
      "nt vector selector or range vector selector or a subquery" },
    { "foo offset 1s offset 2s",
      0, 0, "1:1: parse error: offset may not be set multiple times" },
    { "a - on(b) ignoring(c) d",
      0, 0, "1:11: parse error: unexpected <ignoring>" },
    { "foo * bar",
      1, 0, "foo * bar" },
    { "foo * sum",
      1, 0, "foo * sum" },
    { "foo == 1",
      1, 0, "foo == 1" },
    { "foo == bool 1",
      1, 0, "foo == bool 1" },
    { "2.5 / bar",
      1, 0, "2.5 / bar" },
    { "foo and bar",
      1, 0, "foo and bar" },
    { "foo or bar",
      1, 0, "foo or bar" },
    { "foo unless bar",
      1, 0, "foo unless bar" },
    { "foo + bar or bla and blub",
      1, 0, "foo + bar or bla and blub" },
    { "foo and bar unless baz or qux",
      1, 0, "foo and bar unless baz or qux" },
    { "bar + on(foo) bla / on(baz, buz) group_right(test) blub",
      1, 0, "bar + on (foo) bla / on (baz, buz) group_right (test) blub" },
    { "foo * on(test,blub) bar",
      1, 0, "foo * on (test, blub) bar" },
    { "foo * on(test,blub) group_left bar",
      1, 0, "foo * on (test, blub) group_left () bar" },
    { "foo and on(test,blub) bar",
      1, 0, "foo and on (test, blub) bar" },
    { "foo and on() bar",
      1, 0, "foo and on () bar" },
    { "foo and ignoring(test,blub) bar",
      1, 0, "foo and ignoring (test, blub) bar" },
    { "foo and ignoring() bar",
      1, 0, "foo and bar" },
    { "foo unless on(bar) baz",
      1, 0, "foo unless on (bar) baz" },
    { "foo / on(test,blub) group_left(bar) bar",
      1, 0, "foo / on (test, blub) group_left (bar) bar" },
    { "foo / ignoring(test,blub) group_left(blub) bar",
      1, 0, "foo / ignoring (test, blub) group_left (blub) bar" },
    { "foo / ignoring(test,blub) group_left(bar) bar",
      1, 0, "foo / ignoring (test, blub) group_left (bar) bar" },
    { "foo - on(test,blub) group_right(bar,foo) bar",
      1, 0, "foo - on (test, blub) group_right (bar, foo) bar" },
    { "foo - ignoring(test,blub) group_right(bar,foo) bar",
      1, 0, "foo - ignoring (test, blub) group_right (bar, foo) bar" },
    { "foo and 1",
      0, 0, "1:1: parse error: set operator \"and\" not allowed in binary s"
      "calar expression" },
    { "1 and foo",
      0, 0, "1:1: parse error: set operator \"and\" not allowed in binary s"
      "calar expression" },
    { "foo or 1",
      0, 0, "1:1: parse error: set operator \"or\" not allowed in binary sc"
      "alar expression" },
    { "1 or foo",
      0, 0, "1:1: parse error: set operator \"or\" not allowed in binary sc"
      "alar expression" },
    { "foo unless 1",
      0, 0, "1:1: parse error: set operator \"unless\" not allowed in binar"
      "y scalar expression" },
    { "1 unless foo",
      0, 0, "1:1: parse error: set operator \"unless\" not allowed in binar"
      "y scalar expression" },
    { "1 or on(bar) foo",
      0, 0, "1:1: parse error: vector matching only allowed between instant"
      " vectors" },
    { "foo == on(bar) 10",
      0, 0, "1:1: parse error: vector matching only allowed between instant"
      " vectors" },
    { "foo + group_left(baz) bar",
      0, 0, "1:7: parse error: unexpected <group_left>" },
    { "foo and on(bar) group_left(baz) bar",
      0, 0, "1:1: parse error: no grouping allowed for \"and\" operation" },
    { "foo and on(bar) group_right(baz) bar",
      0, 0, "1:1: parse error: no grouping allowed for \"and\" operation" },
    { "foo or on(bar) group_left(baz) bar",
      0, 0, "1:1: parse error: no grouping allowed for \"or\" operation" },
    { "foo or on(bar) group_right(baz) bar",
      0, 0, "1:1: parse error: no grouping allowed for \"or\" operation" },
    { "foo unless on(bar) group_left(baz) bar",
      0, 0, "1:1: parse error: no grouping allowed for \"unless\" operation" },
    { "foo unless on(bar) group_right(baz) bar",
      0, 0, "1:1: parse error: no grouping allowed for \"unless\" operation" },
    { "http_requests{group=\"production\"} + on(instance) group_left("
      "job,instance) cpu_count{type=\"smp\"}",
      0, 0, "1:35: parse error: label \"instance\" must not occur in ON and"
      " GROUP clause at once" },
    { "foo + bool bar",
      0, 0, "1:5: parse error: bool modifier can only be used on comparison"
      " operators" },
    { "foo + bool 10",
      0, 0, "1:5: parse error: bool modifier can only be used on comparison"
      " operators" },
    { "foo and bool 10",
      0, 0, "1:5: parse error: bool modifier can only be used on comparison"
      " operators" },
    { "foo",
      1, 0, "foo" },
    { "min",
      1, 0, "min" },
    { "foo offset 5m",
      1, 0, "foo offset 5m" },
    { "foo offset -7m",
      1, 0, "foo offset -7m" },
    { "foo OFFSET 1h30m",
      1, 0, "foo offset 1h30m" },
    { "foo OFFSET 1m30ms",
      1, 0, "foo offset 1m30ms" },
    { "foo @ 1603774568",
      1, 0, "foo @ 1603774568.000" },
    { "foo @ -100",
      1, 0, "foo @ -100.000" },
    { "foo @ .3",
      1, 0, "foo @ 0.300" },
    { "foo @ 3.",
      1, 0, "foo @ 3.000" },
    { "foo @ 3.33",
      1, 0, "foo @ 3.330" },
    { "foo @ 3.3333",
      1, 0, "foo @ 3.333" },
    { "foo @ 3.3335",
      1, 0, "foo @ 3.334" },
    { "foo @ 3e2",
      1, 0, "foo @ 300.000" },
    { "foo @ 3e-1",
      1, 0, "foo @ 0.300" },
    { "foo @ 0xA",
      1, 0, "foo @ 10.000" },
    { "foo @ -3.3e1",
      1, 0, "foo @ -33.000" },
    { "foo @ +Inf",
      0, 0, "1:1: parse error: timestamp out of bounds for @ modifier: +Inf" },
    { "foo @ -Inf",
      0, 0, "1:1: parse error: timestamp out of bounds for @ modifier: -Inf" },
    { "foo @ NaN",
      0, 0, "1:1: parse error: timestamp out of bounds for @ modifier: NaN" },
    { "foo @ 9223372036854775807",
      0, 0, "1:1: parse error: timestamp out of bounds for @ modifier: 9223"
      "372036854775808.000000" },
    { "foo @ -9223372036854775808",
      0, 0, "1:1: parse error: timestamp out of bounds for @ modifier: -922"
      "3372036854775808.000000" },
    { "foo:bar{a=\"bc\"}",
      1, 0, "foo:bar{a=\"bc\"}" },
    { "foo{NaN='bc'}",
      1, 0, "foo{NaN=\"bc\"}" },
    { "foo{bar='}'}",
      1, 0, "foo{bar=\"}\"}" },
    { "foo{a=\"b\", foo!=\"bar\", test=~\"test\", bar!~\"baz\"}",
      1, 0, "foo{a=\"b\",bar!~\"baz\",foo!=\"bar\",test=~\"test\"}" },
    { "foo{a=\"b\", foo!~\"bar\", test=~\"test\", bar!~\"baz\"}",
      1, 0, "foo{a=\"b\",bar!~\"baz\",foo!~\"bar\",test=~\"test\"}" },
    { "foo{a=\"b\", foo!~\"bar\", test=~\"test\", bar!~\"baz\",}",
      1, 0, "foo{a=\"b\",bar!~\"baz\",foo!~\"bar\",test=~\"test\"}" },
    { "{",
      0, 0, "1:2: parse error: unexpected end of input inside braces" },
    { "}",
      0, 0, "1:1: parse error: unexpected character: '}'" },
    { "some{",
      0, 0, "1:6: parse error: unexpected end of input inside braces" },
    { "some}",
      0, 0, "1:5: parse error: unexpected character: '}'" },
    { "some_metric{a=b}",
      0, 0, "1:15: parse error: unexpected identifier \"b\" in label matchi"
      "ng, expected string" },
    { "some_metric{a:b=\"b\"}",
      0, 0, "1:14: parse error: unexpected character inside braces: ':'" },
    { "foo{a*\"b\"}",
      0, 0, "1:6: parse error: unexpected character inside braces: '*'" },
    { "foo{a>=\"b\"}",
      0, 0, "1:6: parse error: unexpected character inside braces: '>'" },
    { "some_metric{a=\"\\xff\"}",
      1, 0, "some_metric{a=\"\\xff\"}" },
    { "foo{gibberish}",
      0, 0, "1:14: parse error: unexpected \"}\" in label matching, expecte"
      "d label matching operator" },
    { "foo{1}",
      0, 0, "1:5: parse error: unexpected character inside braces: '1'" },
    { "{}",
      0, 0, "1:1: parse error: vector selector must contain at least one no"
      "n-empty matcher" },
    { "{x=\"\"}",
      0, 0, "1:1: parse error: vector selector must contain at least one no"
      "n-empty matcher" },
    { "{x=~\".*\"}",
      0, 0, "1:1: parse error: vector selector must contain at least one no"
      "n-empty matcher" },
    { "{x!~\".+\"}",
      0, 0, "1:1: parse error: vector selector must contain at least one no"
      "n-empty matcher" },
    { "{x!=\"a\"}",
      0, 0, "1:1: parse error: vector selector must contain at least one no"
      "n-empty matcher" },
    { "foo{__name__=\"bar\"}",
      0, 0, "1:1: parse error: metric name must not be set twice: \"foo\" o"
      "r \"bar\"" },
    { "foo{__name__= \"bar\"}",
      0, 0, "1:1: parse error: metric name must not be set twice: \"foo\" o"
      "r \"bar\"" },
    { "foo{__name__=~\"bar\" }",
      0, 0, "1:1: parse error: metric name must not be set twice: \"foo\" o"
      "r \"bar\"" },
    { "foo{__name__=\"bar\", lol=\"lol\"}",
      0, 0, "1:1: parse error: metric name must not be set twice: \"foo\" o"
      "r \"bar\"" },
    { "{__name__=\"foo\",__name__=\"bar\"}",
      1, 0, "{__name__=\"bar\",__name__=\"foo\"}" },
    { "{__name__=~\"foo.+\",__name__=~\".*bar\"}",
      1, 0, "{__name__=~\".*bar\",__name__=~\"foo.+\"}" },
    { "foo{__name__!=\"bar\"}",
      0, 0, "1:1: parse error: metric name must not be set twice: \"foo\" o"
      "r \"bar\"" },
    { "test[5s]",
      1, 0, "test[5s]" },
    { "test[5m]",
      1, 0, "test[5m]" },
    { "test[5m30s]",
      1, 0, "test[5m30s]" },
    { "test[5h] OFFSET 5m",
      1, 0, "test[5h] offset 5m" },
    { "test[5d] OFFSET 10s",
      1, 0, "test[5d] offset 10s" },
    { "test[5w] offset 2w",
      1, 0, "test[5w] offset 2w" },
    { "test:name{on!~\"b:ar\"}[4m] offset 4m",
      1, 0, "test:name{on!~\"b:ar\"}[4m] offset 4m" },
    { "test{a=\"b\"}[5y] @ 1603774699",
      1, 0, "test{a=\"b\"}[5y] @ 1603774699.000" },
    { "foo[5mm]",
      0, 0, "1:5: parse error: bad duration syntax: \"5mm\"" },
    { "foo[5m1]",
      0, 0, "1:5: parse error: bad duration syntax: \"5m1\"" },
    { "foo[5m:1m1]",
      0, 0, "1:8: parse error: bad number or duration syntax: \"1m1\"" },
    { "foo[5y1hs]",
      0, 0, "1:5: parse error: not a valid duration string: \"5y1hs\"" },
    { "foo[5m1h]",
      0, 0, "1:5: parse error: not a valid duration string: \"5m1h\"" },
    { "foo[5m1m]",
      0, 0, "1:5: parse error: not a valid duration string: \"5m1m\"" },
    { "foo[0m]",
      0, 0, "1:5: parse error: duration must be greater than 0" },
    { "foo[\"5m\"]",
      0, 0, "1:5: parse error: missing unit character in duration" },
    { "foo[]",
      0, 0, "1:5: parse error: missing unit character in duration" },
    { "foo[1]",
      0, 0, "1:5: parse error: missing unit character in duration" },
    { "some_metric[5m] OFFSET 1",
      0, 0, "1:24: parse error: unexpected number \"1\" in offset, expected"
      " duration" },
    { "some_metric[5m] OFFSET 1mm",
      0, 0, "1:24: parse error: bad number or duration syntax: \"1mm\"" },
    { "some_metric[5m] OFFSET",
      0, 0, "1:23: parse error: unexpected end of input in offset, expected"
      " duration" },
    { "some_metric OFFSET 1m[5m]",
      0, 0, "1:22: parse error: no offset modifiers allowed before range" },
    { "some_metric @ 123 [5m]",
      0, 0, "1:19: parse error: no @ modifiers allowed before range" },
    { "some_metric[5m] @",
      0, 0, "1:18: parse error: unexpected end of input in @, expected time"
      "stamp" },
    { "(foo + bar)[5m]",
      0, 0, "1:12: parse error: ranges only allowed for vector selectors" },
    { "sum by (foo)(some_metric)",
      1, 0, "sum by (foo) (some_metric)" },
    { "avg by (foo)(some_metric)",
      1, 0, "avg by (foo) (some_metric)" },
    { "max by (foo)(some_metric)",
      1, 0, "max by (foo) (some_metric)" },
    { "sum without (foo) (some_metric)",
      1, 0, "sum without (foo) (some_metric)" },
    { "sum (some_metric) without (foo)",
      1, 0, "sum without (foo) (some_metric)" },
    { "stddev(some_metric)",
      1, 0, "stddev(some_metric)" },
    { "stdvar by (foo)(some_metric)",
      1, 0, "stdvar by (foo) (some_metric)" },
    { "sum by ()(some_metric)",
      1, 0, "sum(some_metric)" },
    { "sum by (foo,bar,)(some_metric)",
      1, 0, "sum by (foo, bar) (some_metric)" },
    { "sum by (foo,)(some_metric)",
      1, 0, "sum by (foo) (some_metric)" },
    { "topk(5, some_metric)",
      1, 0, "topk(5, some_metric)" },
    { "count_values(\"value\", some_metric)",
      1, 0, "count_values(\"value\", some_metric)" },
    { "sum without(and, by, avg, count, alert, annotations)(some_metr"
      "ic)",
      1, 0, "sum without (and, by, avg, count, alert, annotations) (some_me"
      "tric)" },
    { "sum without(==)(some_metric)",
      0, 0, "1:13: parse error: unexpected <op:==> in grouping opts, expect"
      "ed label" },
    { "sum without(~)(some_metric)",
      0, 0, "1:13: parse error: unexpected character: '~'" },
    { "sum without(=~)(some_metric)",
      0, 0, "1:13: parse error: unexpected character after '=': '~'" },
    { "sum some_metric by (test)",
      0, 0, "1:5: parse error: unexpected identifier \"some_metric\"" },
    { "sum (some_metric) by test",
      0, 0, "1:22: parse error: unexpected identifier \"test\" in grouping "
      "opts, expected \"(\"" },
    { "sum (some_metric) by test)",
      0, 0, "1:22: parse error: unexpected identifier \"test\" in grouping "
      "opts, expected \"(\"" },
    { "sum () by (test)",
      0, 0, "1:1: parse error: no arguments for aggregate expression provid"
      "ed" },
    { "MIN keep_common (some_metric)",
      0, 0, "1:5: parse error: unexpected identifier \"keep_common\"" },
    { "MIN (some_metric) keep_common",
      0, 0, "1:19: parse error: unexpected identifier \"keep_common\"" },
    { "sum (some_metric) without (test) by (test)",
      0, 0, "1:34: parse error: unexpected <by>" },
    { "sum without (test) (some_metric) by (test)",
      0, 0, "1:34: parse error: unexpected <by>" },
    { "topk(some_metric)",
      0, 0, "1:1: parse error: wrong number of arguments for aggregate expr"
      "ession provided, expected 2, got 1" },
    { "topk(some_metric,)",
      0, 0, "1:17: parse error: trailing commas not allowed in function cal"
      "l args" },
    { "topk(some_metric, other_metric)",
      0, 0, "1:6: parse error: expected type scalar in aggregation paramete"
      "r, got instant vector" },
    { "count_values(5, other_metric)",
      0, 0, "1:14: parse error: expected type string in aggregation paramet"
      "er, got scalar" },
    { "rate(some_metric[5m]) @ 1234",
      0, 0, "1:1: parse error: @ modifier must be preceded by an instant ve"
      "ctor selector or range vector selector or a subquery" },
    { "group(foo)",
      1, 0, "group(foo)" },
    { "quantile(0.95, foo) without (a)",
      1, 0, "quantile without (a) (0.95, foo)" },
    { "bottomk by (a) (3, foo)",
      1, 0, "bottomk by (a) (3, foo)" },
    { "group without (a, b) (foo)",
      1, 0, "group without (a, b) (foo)" },
    { "stddev without () (foo)",
      1, 0, "stddev without () (foo)" },
    { "time()",
      1, 0, "time()" },
    { "floor(some_metric{foo!=\"bar\"})",
      1, 0, "floor(some_metric{foo!=\"bar\"})" },
    { "rate(some_metric[5m])",
      1, 0, "rate(some_metric[5m])" },
    { "round(some_metric)",
      1, 0, "round(some_metric)" },
    { "round(some_metric, 5)",
      1, 0, "round(some_metric, 5)" },
    { "floor()",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"floor\","
      " got 0" },
    { "floor(some_metric, other_metric)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"floor\","
      " got 2" },
    { "floor(some_metric, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"floor\","
      " got 2" },
    { "floor(1)",
      0, 0, "1:7: parse error: expected type instant vector in call to func"
      "tion \"floor\", got scalar" },
    { "hour(some_metric, some_metric, some_metric)",
      0, 0, "1:1: parse error: expected at most 1 argument(s) in call to \""
      "hour\", got 3" },
    { "time(some_metric)",
      0, 0, "1:1: parse error: expected 0 argument(s) in call to \"time\", "
      "got 1" },
    { "non_existent_function_far_bar()",
      0, 0, "1:1: parse error: unknown function with name \"non_existent_fu"
      "nction_far_bar\"" },
    { "rate(some_metric)",
      0, 0, "1:6: parse error: expected type range vector in call to functi"
      "on \"rate\", got instant vector" },
    { "label_replace(a, `b`, `c\\xff`, `d`, `.*`)",
      1, 0, "label_replace(a, \"b\", \"c\\\\xff\", \"d\", \".*\")" },
    { "-=",
      0, 0, "1:2: parse error: unexpected \"=\"" },
    { "++-++-+-+-<",
      0, 0, "1:11: parse error: unexpected <op:<>" },
    { "e-+=/(0)",
      0, 0, "1:4: parse error: unexpected \"=\"" },
    { "a>b()",
      0, 0, "1:3: parse error: unknown function with name \"b\"" },
    { "rate(avg)",
      0, 0, "1:6: parse error: expected type range vector in call to functi"
      "on \"rate\", got instant vector" },
    { "sum(sum)",
      1, 0, "sum(sum)" },
    { "a + sum",
      1, 0, "a + sum" },
    { "\"double-quoted string \\\" with escaped quote\"",
      1, 0, "\"double-quoted string \\\" with escaped quote\"" },
    { "'single-quoted string \\' with escaped quote'",
      1, 0, "\"single-quoted string ' with escaped quote\"" },
    { "`backtick-quoted string`",
      1, 0, "\"backtick-quoted string\"" },
    { "\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\" - \\xFF\\377\\u1234\\U00010111"
      "\\U0001011111\342\230\272\"",
      1, 0, "\"\\a\\b\\f\\n\\r\\t\\v\\\\\\\" - \\xff\\xff\341\210\264\360"
      "\220\204\221\360\220\204\22111\342\230\272\"" },
    { "'\\a\\b\\f\\n\\r\\t\\v\\\\\\' - \\xFF\\377\\u1234\\U00010111\\"
      "U0001011111\342\230\272'",
      1, 0, "\"\\a\\b\\f\\n\\r\\t\\v\\\\' - \\xff\\xff\341\210\264\360\220"
      "\204\221\360\220\204\22111\342\230\272\"" },
    { "`\\a\\b\\f\\n\\r\\t\\v\\\\\\\"' - \\xFF\\377\\u1234\\U00010111"
      "\\U0001011111\342\230\272`",
      1, 0, "\"\\\\a\\\\b\\\\f\\\\n\\\\r\\\\t\\\\v\\\\\\\\\\\\\\\"' - \\\\x"
      "FF\\\\377\\\\u1234\\\\U00010111\\\\U0001011111\342\230\272\"" },
    { "`\\``",
      0, 0, "1:4: parse error: unterminated raw string" },
    { "\"\\",
      0, 0, "1:1: parse error: escape sequence not terminated" },
    { "\"\\c\"",
      0, 0, "1:1: parse error: unknown escape sequence U+0063 'c'" },
    { "\"\\x.\"",
      0, 0, "1:1: parse error: illegal character U+002E '.' in escape seque"
      "nce" },
    { "foo{bar=\"baz\"}[10m:6s]",
      1, 0, "foo{bar=\"baz\"}[10m:6s]" },
    { "foo{bar=\"baz\"}[10m5s:1h6ms]",
      1, 0, "foo{bar=\"baz\"}[10m5s:1h6ms]" },
    { "foo[10m:]",
      1, 0, "foo[10m:]" },
    { "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:5s])",
      1, 0, "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:5s])" },
    { "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:])[4m:3s]",
      1, 0, "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:])[4m:3s]" },
    { "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] offset 4m)[4m:3s"
      "]",
      1, 0, "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] offset 4m)[4m:3s"
      "]" },
    { "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] @ 1603775091)[4m"
      ":3s]",
      1, 0, "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] @ 1603775091.000"
      ")[4m:3s]" },
    { "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] @ -160377509)[4m"
      ":3s]",
      1, 0, "min_over_time(rate(foo{bar=\"baz\"}[2s])[5m:] @ -160377509.000"
      ")[4m:3s]" },
    { "sum without(and, by, avg, count, alert, annotations)(some_metr"
      "ic) [30m:10s]",
      1, 0, "sum without (and, by, avg, count, alert, annotations) (some_me"
      "tric)[30m:10s]" },
    { "some_metric OFFSET 1m [10m:5s]",
      1, 0, "some_metric offset 1m[10m:5s]" },
    { "some_metric @ 123 [10m:5s]",
      1, 0, "some_metric @ 123.000[10m:5s]" },
    { "(foo + bar{nm=\"val\"})[5m:]",
      1, 0, "(foo + bar{nm=\"val\"})[5m:]" },
    { "(foo + bar{nm=\"val\"})[5m:] offset 10m",
      1, 0, "(foo + bar{nm=\"val\"})[5m:] offset 10m" },
    { "(foo + bar{nm=\"val\"} @ 1234)[5m:] @ 1603775019",
      1, 0, "(foo + bar{nm=\"val\"} @ 1234.000)[5m:] @ 1603775019.000" },
    { "test[5d] OFFSET 10s [10m:5s]",
      0, 0, "1:1: parse error: subquery is only allowed on instant vector, "
      "got matrix instead" },
    { "(foo + bar{nm=\"val\"})[5m:][10m:5s]",
      0, 0, "1:1: parse error: subquery is only allowed on instant vector, "
      "got matrix instead" },
    { "rate(food[1m])[1h] offset 1h",
      0, 0, "1:15: parse error: ranges only allowed for vector selectors" },
    { "rate(food[1m])[1h] @ 100",
      0, 0, "1:15: parse error: ranges only allowed for vector selectors" },
    { "foo @ start()",
      1, 0, "foo @ start()" },
    { "foo @ end()",
      1, 0, "foo @ end()" },
    { "test[5y] @ start()",
      1, 0, "test[5y] @ start()" },
    { "test[5y] @ end()",
      1, 0, "test[5y] @ end()" },
    { "foo[10m:6s] @ start()",
      1, 0, "foo[10m:6s] @ start()" },
    { "foo[10m:6s] @ end()",
      1, 0, "foo[10m:6s] @ end()" },
    { "start()",
      0, 0, "1:6: parse error: unexpected \"(\"" },
    { "end()",
      0, 0, "1:4: parse error: unexpected \"(\"" },
    { "foo @ start",
      0, 0, "1:12: parse error: unexpected end of input in @, expected time"
      "stamp" },
    { "foo @ end",
      0, 0, "1:10: parse error: unexpected end of input in @, expected time"
      "stamp" },
    { "foo @ start(",
      0, 0, "1:13: parse error: unclosed left parenthesis" },
    { "foo @ end(",
      0, 0, "1:11: parse error: unclosed left parenthesis" },
    { "foo @ start()()",
      0, 0, "1:14: parse error: unexpected \"(\"" },
    { "foo @ start ()",
      1, 0, "foo @ start()" },
    { "foo @ end ( )",
      1, 0, "foo @ end()" },
    { "start",
      1, 0, "start" },
    { "end",
      1, 0, "end" },
    { "start{end=\"foo\"}",
      1, 0, "start{end=\"foo\"}" },
    { "end{start=\"foo\"}",
      1, 0, "end{start=\"foo\"}" },
    { "foo unless on(start) bar",
      1, 0, "foo unless on (start) bar" },
    { "foo unless on(end) bar",
      1, 0, "foo unless on (end) bar" },
    { "foo @ 1 offset 5m",
      1, 0, "foo @ 1.000 offset 5m" },
    { "foo offset 5m @ 1",
      1, 0, "foo @ 1.000 offset 5m" },
    { "foo[5m] offset 5m @ start()",
      1, 0, "foo[5m] @ start() offset 5m" },
    { "foo offset 1s @ 2 offset 3s",
      0, 0, "1:1: parse error: offset may not be set multiple times" },
    { "sum(foo) @ 1",
      0, 0, "1:1: parse error: @ modifier must be preceded by an instant ve"
      "ctor selector or range vector selector or a subquery" },
    { "1 @ 1",
      0, 0, "1:1: parse error: @ modifier must be preceded by an instant ve"
      "ctor selector or range vector selector or a subquery" },
    { "(foo) offset 5m",
      0, 0, "1:1: parse error: offset modifier must be preceded by an insta"
      "nt vector selector or range vector selector or a subquery" },
    { "\"x\" @ 5",
      0, 0, "1:1: parse error: @ modifier must be preceded by an instant ve"
      "ctor selector or range vector selector or a subquery" },
    { "foo[5m:1m] @ 5 @ 6",
      0, 0, "1:1: parse error: @ <timestamp> may not be set multiple times" },
    { "foo # comment",
      1, 0, "foo" },
    { "foo{# comment",
      0, 0, "1:14: parse error: unexpected end of input inside braces" },
    { "a=\"b\"}",
      0, 0, "1:2: parse error: unexpected \"=\"" },
    { "sum(# c",
      0, 0, "1:8: parse error: unclosed left parenthesis" },
    { "foo)",
      0, 0, "1:5: parse error: unexpected right parenthesis ')'" },
    { "sum",
      1, 0, "sum" },
    { "sum + 1",
      1, 0, "sum + 1" },
    { "sum{a=\"b\"}",
      1, 0, "sum{a=\"b\"}" },
    { "sum offset 5m",
      1, 0, "sum offset 5m" },
    { "and",
      1, 0, "and" },
    { "foo and and",
      1, 0, "foo and and" },
    { "by",
      1, 0, "by" },
    { "on",
      0, 0, "1:1: parse error: unexpected <on>" },
    { "bool",
      0, 0, "1:1: parse error: unexpected <bool>" },
    { "ignoring",
      0, 0, "1:1: parse error: unexpected <ignoring>" },
    { "group_left",
      0, 0, "1:1: parse error: unexpected <group_left>" },
    { "atan2",
      0, 0, "1:1: parse error: unexpected <op:atan2>" },
    { "offset offset 5m",
      1, 0, "offset offset 5m" },
    { "without",
      1, 0, "without" },
    { "without{a=\"b\"}",
      1, 0, "without{a=\"b\"}" },
    { "count_values",
      1, 0, "count_values" },
    { "quantile + topk",
      1, 0, "quantile + topk" },
    { "foo[5m x 1m]",
      1, 0, "foo[5m:1m]" },
    { "foo[5mx1m]",
      0, 0, "1:5: parse error: bad duration syntax: \"5mx\"" },
    { "foo[5m:1m:]",
      0, 0, "1:10: parse error: unexpected colon ':'" },
    { "foo[ 5m ]",
      1, 0, "foo[5m]" },
    { "foo[5m :1m]",
      1, 0, "foo[5m:1m]" },
    { "foo[5m: 1m]",
      1, 0, "foo[5m:1m]" },
    { "foo[ 5m : 1m ]",
      1, 0, "foo[5m:1m]" },
    { "foo[5m:1m:1m]",
      0, 0, "1:10: parse error: unexpected colon ':'" },
    { "foo[5m][5m]",
      0, 0, "1:8: parse error: ranges only allowed for vector selectors" },
    { "foo[5m][5m:]",
      0, 0, "1:1: parse error: subquery is only allowed on instant vector, "
      "got matrix instead" },
    { "foo offset 0s",
      0, 0, "1:12: parse error: duration must be greater than 0" },
    { "foo[1h:0s]",
      0, 0, "1:8: parse error: duration must be greater than 0" },
    { "foo[1h30m]",
      1, 0, "foo[1h30m]" },
    { "foo[30m1h]",
      0, 0, "1:5: parse error: not a valid duration string: \"30m1h\"" },
    { "foo[5.5m]",
      0, 0, "1:5: parse error: not a valid duration string: \"5.5m\"" },
    { "foo offset 1y2w3d4h5m6s7ms",
      1, 0, "foo offset 382d4h5m6s7ms" },
    { "foo[9999999999999999999y]",
      0, 0, "1:5: parse error: duration out of range" },
    { "foo[300y]",
      0, 0, "1:5: parse error: duration out of range" },
    { "foo[290y]",
      1, 0, "foo[290y]" },
    { "foo[106751d]",
      1, 0, "foo[106751d]" },
    { "foo[106752d]",
      0, 0, "1:5: parse error: duration out of range" },
    { "foo[1000ms]",
      1, 0, "foo[1s]" },
    { "foo[60s]",
      1, 0, "foo[1m]" },
    { "foo[3600s]",
      1, 0, "foo[1h]" },
    { "foo[86400s]",
      1, 0, "foo[1d]" },
    { "foo[604800s]",
      1, 0, "foo[1w]" },
    { "foo[365d]",
      1, 0, "foo[1y]" },
    { "foo[366d]",
      1, 0, "foo[366d]" },
    { "foo[14d]",
      1, 0, "foo[2w]" },
    { "foo[8d]",
      1, 0, "foo[8d]" },
    { "foo[2w1d]",
      1, 0, "foo[15d]" },
    { "foo[1y1w]",
      1, 0, "foo[372d]" },
    { "foo[1y1d]",
      1, 0, "foo[366d]" },
    { "\"a\" + 1",
      0, 0, "1:1: parse error: binary expression must contain only scalar a"
      "nd instant vector types" },
    { "foo + on(a) 1",
      0, 0, "1:1: parse error: vector matching only allowed between instant"
      " vectors" },
    { "foo + on() 1",
      1, 0, "foo + 1" },
    { "foo + ignoring() 1",
      1, 0, "foo + 1" },
    { "foo + ignoring() group_left() bar",
      1, 0, "foo + bar" },
    { "foo + ignoring() group_left(x) bar",
      1, 0, "foo + bar" },
    { "foo + on(a) group_left(a) bar",
      0, 0, "1:5: parse error: label \"a\" must not occur in ON and GROUP c"
      "lause at once" },
    { "foo + ignoring(a) group_left(a) bar",
      1, 0, "foo + ignoring (a) group_left (a) bar" },
    { "foo + on(a) group_right(b, a) bar",
      0, 0, "1:5: parse error: label \"a\" must not occur in ON and GROUP c"
      "lause at once" },
    { "sum(foo) offset 5m",
      0, 0, "1:1: parse error: offset modifier must be preceded by an insta"
      "nt vector selector or range vector selector or a subquery" },
    { "foo @ 5 [5m]",
      0, 0, "1:9: parse error: no @ modifiers allowed before range" },
    { "foo @ start() [5m]",
      1, 0, "foo[5m] @ start()" },
    { "sum(foo)[5m]",
      0, 0, "1:9: parse error: ranges only allowed for vector selectors" },
    { "rate(foo[5m],)",
      0, 0, "1:13: parse error: trailing commas not allowed in function cal"
      "l args" },
    { "rate()",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"rate\", "
      "got 0" },
    { "foo()",
      0, 0, "1:1: parse error: unknown function with name \"foo\"" },
    { "SUM(foo)",
      1, 0, "sum(foo)" },
    { "Sum(foo) BY (a)",
      1, 0, "sum by (a) (foo)" },
    { "sum(foo) by (a) without (b)",
      0, 0, "1:17: parse error: unexpected <without>" },
    { "sum by (a) (foo) by (b)",
      0, 0, "1:18: parse error: unexpected <by>" },
    { "topk(\"a\", foo)",
      0, 0, "1:6: parse error: expected type scalar in aggregation paramete"
      "r, got string" },
    { "quantile(foo, bar)",
      0, 0, "1:10: parse error: expected type scalar in aggregation paramet"
      "er, got instant vector" },
    { "topk(1)",
      0, 0, "1:1: parse error: wrong number of arguments for aggregate expr"
      "ession provided, expected 2, got 1" },
    { "sum()",
      0, 0, "1:1: parse error: no arguments for aggregate expression provid"
      "ed" },
    { "sum(a, b)",
      0, 0, "1:1: parse error: wrong number of arguments for aggregate expr"
      "ession provided, expected 1, got 2" },
    { "label_join(foo, \"a\")",
      0, 0, "1:1: parse error: expected at least 3 argument(s) in call to "
      "\"label_join\", got 2" },
    { "label_join(foo, \"a\", \"b\", \"c\", \"d\", \"e\", \"f\")",
      1, 0, "label_join(foo, \"a\", \"b\", \"c\", \"d\", \"e\", \"f\")" },
    { "round(foo, 1, 2)",
      0, 0, "1:1: parse error: expected at most 2 argument(s) in call to \""
      "round\", got 3" },
    { "days_in_month()",
      1, 0, "days_in_month()" },
    { "day_of_week(foo, bar)",
      0, 0, "1:1: parse error: expected at most 1 argument(s) in call to \""
      "day_of_week\", got 2" },
    { "time() + foo",
      1, 0, "time() + foo" },
    { "scalar(foo) > 1",
      0, 0, "1:13: parse error: comparisons between scalars must use BOOL m"
      "odifier" },
    { "scalar(foo) > bool 1",
      1, 0, "scalar(foo) > bool 1" },
    { "foo{a=\"b\",}",
      1, 0, "foo{a=\"b\"}" },
    { "foo{,}",
      0, 0, "1:5: parse error: unexpected \",\" in label matching, expected"
      " identifier or \"}\"" },
    { "{a=~\"a\?\"}",
      0, 0, "1:1: parse error: vector selector must contain at least one no"
      "n-empty matcher" },
    { "{a=~\"a+\"}",
      1, 0, "{a=~\"a+\"}" },
    { "{a!~\"\"}",
      1, 0, "{a!~\"\"}" },
    { "{a=~\"(\?i)A\"}",
      1, 0, "{a=~\"(\?i)A\"}" },
    { "{a=~\"a{1000}\"}",
      1, 0, "{a=~\"a{1000}\"}" },
    { "{a=~\"a{1001}\"}",
      0, 1, "1:2: parse error: error parsing regexp: " },
    { "{a=~\"(\?=a)\"}",
      0, 1, "1:2: parse error: error parsing regexp: " },
    { "{a=~\"\\\\d+\"}",
      1, 0, "{a=~\"\\\\d+\"}" },
    { "{a=~\"\\\\p{L}+\"}",
      1, 0, "{a=~\"\\\\p{L}+\"}" },
    { "{a=~\"[[:alpha:]]\"}",
      1, 0, "{a=~\"[[:alpha:]]\"}" },
    { "{a=~\"a**\"}",
      0, 1, "1:2: parse error: error parsing regexp: " },
    { "{a=~\"\\\\1\"}",
      0, 1, "1:2: parse error: error parsing regexp: " },
    { "{a=~\"x|\"}",
      0, 0, "1:1: parse error: vector selector must contain at least one no"
      "n-empty matcher" },
    { "{a=~\"|x\"}",
      0, 0, "1:1: parse error: vector selector must contain at least one no"
      "n-empty matcher" },
    { "{a=~\"()\"}",
      0, 0, "1:1: parse error: vector selector must contain at least one no"
      "n-empty matcher" },
    { "{a=~\"\\\\b\"}",
      1, 0, "{a=~\"\\\\b\"}" },
    { "{a=~\"^x$\"}",
      1, 0, "{a=~\"^x$\"}" },
    { "1234567",
      1, 0, "1.234567e+06" },
    { "100000",
      1, 0, "100000" },
    { "123456789012",
      1, 0, "1.23456789012e+11" },
    { "1e20",
      1, 0, "1e+20" },
    { "1e21",
      1, 0, "1e+21" },
    { "0.0001",
      1, 0, "0.0001" },
    { "0.00001",
      1, 0, "1e-05" },
    { "-0",
      1, 0, "-0" },
    { "0.1",
      1, 0, "0.1" },
    { "1/3",
      1, 0, "1 / 3" },
    { "2^3^4",
      1, 0, "2 ^ 3 ^ 4" },
    { "(2^3)^4",
      1, 0, "(2 ^ 3) ^ 4" },
    { "-2^-3",
      1, 0, "-2 ^ -3" },
    { "a * b + c / d - e % f ^ g atan2 h",
      1, 0, "a * b + c / d - e % f ^ g atan2 h" },
    { "a or b and c unless d",
      1, 0, "a or b and c unless d" },
    { "a > b == c",
      1, 0, "a > b == c" },
    { "a + b[5m:]",
      0, 0, "1:5: parse error: binary expression must contain only scalar a"
      "nd instant vector types" },
    { "(a + b)[5m:1m]",
      1, 0, "(a + b)[5m:1m]" },
    { "a / b ^ c ^ d * e",
      1, 0, "a / b ^ c ^ d * e" },
    { "-a ^ b",
      1, 0, "-a ^ b" },
    { "-a * b",
      1, 0, "-a * b" },
    { "- a[5m:] ",
      0, 0, "1:1: parse error: unary expression only allowed on expressions"
      " of type scalar or instant vector, got \"range vector\"" },
    { "a + -b",
      1, 0, "a + -b" },
    { "a - - b",
      1, 0, "a - -b" },
    { "a * -1",
      1, 0, "a * -1" },
    { "a atan2 b",
      1, 0, "a atan2 b" },
    { "a atan2 bool b",
      0, 0, "1:3: parse error: bool modifier can only be used on comparison"
      " operators" },
    { "1 atan2 2",
      1, 0, "1 atan2 2" },
    { "1 atan2 bool 2",
      0, 0, "1:3: parse error: bool modifier can only be used on comparison"
      " operators" },
    { "a > bool on(x) group_left(y) b",
      1, 0, "a > bool on (x) group_left (y) b" },
    { "a > on(x) bool b",
      0, 0, "1:11: parse error: unexpected <bool>" },
    { "a == bool b",
      1, 0, "a == bool b" },
    { "a != bool on(x) b",
      1, 0, "a != bool on (x) b" },
    { "foo{a=\"\303\251\"}",
      1, 0, "foo{a=\"\303\251\"}" },
    { "foo{a=\"\346\227\245\346\234\254\350\252\236\"}",
      1, 0, "foo{a=\"\346\227\245\346\234\254\350\252\236\"}" },
    { "foo{a=\"\\u00ad\"}",
      1, 0, "foo{a=\"\\u00ad\"}" },
    { "foo{a=\"\\u200b\"}",
      1, 0, "foo{a=\"\\u200b\"}" },
    { "foo{a=\"\\x01\\t\\n\"}",
      1, 0, "foo{a=\"\\x01\\t\\n\"}" },
    { "foo{a=\"\\xff\\xfe\"}",
      1, 0, "foo{a=\"\\xff\\xfe\"}" },
    { "foo{a=\"\\u0378\"}",
      1, 0, "foo{a=\"\\u0378\"}" },
    { "foo{a=\"\\U0001F600\"}",
      1, 0, "foo{a=\"\360\237\230\200\"}" },
    { "foo{a=\"\\U000E0001\"}",
      1, 0, "foo{a=\"\\U000e0001\"}" },
    { "\"\\uFEFF\"",
      1, 0, "\"\\ufeff\"" },
    { "\"\\u00a0\"",
      1, 0, "\"\\u00a0\"" },
    { "\"a\\\"b\"",
      1, 0, "\"a\\\"b\"" },
    { "'a\"b'",
      1, 0, "\"a\\\"b\"" },
    { "'a\\'b'",
      1, 0, "\"a'b\"" },
    { "\"a'b\"",
      1, 0, "\"a'b\"" },
    { "`a\"b`",
      1, 0, "\"a\\\"b\"" },
    { "`a'b`",
      1, 0, "\"a'b\"" },
    { "foo{b=\"1\", a=\"2\", c=\"3\"}",
      1, 0, "foo{a=\"2\",b=\"1\",c=\"3\"}" },
    { "foo{a=\"2\", a=\"1\"}",
      1, 0, "foo{a=\"1\",a=\"2\"}" },
    { "foo{a!=\"1\", a=\"1\"}",
      1, 0, "foo{a!=\"1\",a=\"1\"}" },
    { "foo{a=~\"1\", a=\"1\"}",
      1, 0, "foo{a=\"1\",a=~\"1\"}" },
    { "{__name__=\"foo\", a=\"b\"}",
      1, 0, "{__name__=\"foo\",a=\"b\"}" },
    { "{__name__!=\"foo\", a=\"b\"}",
      1, 0, "{__name__!=\"foo\",a=\"b\"}" },
    { "{a=\"b\", __name__=\"foo\"}",
      1, 0, "{__name__=\"foo\",a=\"b\"}" },
    { "foo:bar(x)",
      0, 0, "1:8: parse error: unexpected \"(\"" },
    { ":foo",
      1, 0, ":foo" },
    { "a:b:c",
      1, 0, "a:b:c" },
    { "foo 1",
      0, 0, "1:5: parse error: unexpected number \"1\"" },
    { "\"a\" \"b\"",
      0, 0, "1:5: parse error: unexpected string \"\\\"b\\\"\"" },
    { "rate(foo[5m] bar)",
      0, 0, "1:14: parse error: unexpected identifier \"bar\"" },
    { "sum(rate(foo bar))",
      0, 0, "1:14: parse error: unexpected identifier \"bar\" in aggregatio"
      "n" },
    { "topk(1, foo bar)",
      0, 0, "1:13: parse error: unexpected identifier \"bar\" in aggregatio"
      "n" },
    { "sum by (without) (foo)",
      0, 0, "1:9: parse error: unexpected <without> in grouping opts, expec"
      "ted label" },
    { "sum by (group_left) (foo)",
      1, 0, "sum by (group_left) (foo)" },
    { "sum by (inf) (foo)",
      0, 0, "1:9: parse error: unexpected number \"inf\" in grouping opts, "
      "expected label" },
    { "sum by (a:b) (foo)",
      0, 0, "1:9: parse error: unexpected metric identifier \"a:b\" in grou"
      "ping opts, expected label" },
    { "sum by (a b) (foo)",
      0, 0, "1:11: parse error: unexpected identifier \"b\" in grouping opt"
      "s, expected \",\" or \")\"" },
    { "sum by (1) (foo)",
      0, 0, "1:9: parse error: unexpected number \"1\" in grouping opts, ex"
      "pected label" },
    { "sum by foo (x)",
      0, 0, "1:8: parse error: unexpected identifier \"foo\" in grouping op"
      "ts, expected \"(\"" },
    { "sum by (a,,b) (foo)",
      0, 0, "1:11: parse error: unexpected \",\" in grouping opts, expected"
      " label" },
    { "sum by (,) (foo)",
      0, 0, "1:9: parse error: unexpected \",\" in grouping opts, expected "
      "label" },
    { "foo + on(offset, bool) bar",
      1, 0, "foo + on (offset, bool) bar" },
    { "foo + on (a) group_left b",
      1, 0, "foo + on (a) group_left () b" },
    { "foo + on (a) group_left",
      0, 0, "1:24: parse error: unexpected end of input in grouping opts, e"
      "xpected \"(\"" },
    { "foo + on (a) group_left ()",
      0, 0, "1:27: parse error: unexpected end of input" },
    { "foo + on (a) group_left () b",
      1, 0, "foo + on (a) group_left () b" },
    { "foo and on () bar",
      1, 0, "foo and on () bar" },
    { "foo > on (a) bool bar",
      0, 0, "1:14: parse error: unexpected <bool>" },
    { "foo offset - 5m",
      1, 0, "foo offset -5m" },
    { "foo offset -5",
      0, 0, "1:13: parse error: unexpected number \"5\" in offset, expected"
      " duration" },
    { "foo offset +5m",
      0, 0, "1:12: parse error: unexpected <op:+> in offset, expected durat"
      "ion" },
    { "foo[5m:1]",
      0, 0, "1:8: parse error: unexpected number \"1\" in subquery selector"
      ", expected duration or \"]\"" },
    { "foo[5m 1m]",
      0, 0, "1:8: parse error: unexpected duration \"1m\" in subquery or ra"
      "nge, expected \":\" or \"]\"" },
    { "foo[5m:1m 1m]",
      0, 0, "1:11: parse error: unexpected duration \"1m\" in subquery sele"
      "ctor, expected \"]\"" },
    { "foo[",
      0, 0, "1:5: parse error: missing unit character in duration" },
    { "rate(foo[5m] [5m])",
      0, 0, "1:14: parse error: ranges only allowed for vector selectors" },
    { "sum foo",
      0, 0, "1:5: parse error: unexpected identifier \"foo\"" },
    { "sum (foo) (bar)",
      0, 0, "1:11: parse error: unexpected \"(\"" },
    { "()",
      0, 0, "1:2: parse error: unexpected \")\"" },
    { "foo{a=\"b\" c=\"d\"}",
      0, 0, "1:11: parse error: unexpected identifier \"c\" in label matchi"
      "ng, expected \",\" or \"}\"" },
    { "foo{a}",
      0, 0, "1:6: parse error: unexpected \"}\" in label matching, expected"
      " label matching operator" },
    { "foo{a=}",
      0, 0, "1:7: parse error: unexpected \"}\" in label matching, expected"
      " string" },
    { "foo{=}",
      0, 0, "1:5: parse error: unexpected \"=\" in label matching, expected"
      " identifier or \"}\"" },
    { "{a=\"b\"}{c=\"d\"}",
      0, 0, "1:8: parse error: unexpected \"{\"" },
    { "foo{a=~\"x\"}[5m]",
      1, 0, "foo{a=~\"x\"}[5m]" },
    { "((((((((((((((((((((((((((((((foo)))))))))))))))))))))))))))))"
      ")",
      1, 0, "((((((((((((((((((((((((((((((foo)))))))))))))))))))))))))))))"
      ")" },
    { "sum(sum(sum(sum(sum(sum(sum(sum(foo))))))))",
      1, 0, "sum(sum(sum(sum(sum(sum(sum(sum(foo))))))))" },
    { "abs(abs(abs(abs(abs(abs(abs(foo)))))))",
      1, 0, "abs(abs(abs(abs(abs(abs(abs(foo)))))))" },
    { "1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10",
      1, 0, "1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10" },
    { "histogram_quantile(0.9, sum by (le) (rate(http_request_duratio"
      "n_seconds_bucket[5m])))",
      1, 0, "histogram_quantile(0.9, sum by (le) (rate(http_request_duratio"
      "n_seconds_bucket[5m])))" },
    { "sum by (job) (rate(http_requests_total[5m])) / on (job) group_"
      "left sum by (job) (up)",
      1, 0, "sum by (job) (rate(http_requests_total[5m])) / on (job) group_"
      "left () sum by (job) (up)" },
    { "max_over_time(deriv(rate(distance_covered_total[5s])[30s:5s])["
      "10m:])",
      1, 0, "max_over_time(deriv(rate(distance_covered_total[5s])[30s:5s])["
      "10m:])" },
    { "rate(http_requests_total[5m] offset -1w)",
      1, 0, "rate(http_requests_total[5m] offset -1w)" },
    { "count by (app) (count by (app, version) (app_info))",
      1, 0, "count by (app) (count by (app, version) (app_info))" },
    { "label_replace(up{job=\"api-server\",service=\"a:c\"}, \"foo\","
      " \"$1\", \"service\", \"(.*):.*\")",
      1, 0, "label_replace(up{job=\"api-server\",service=\"a:c\"}, \"foo\","
      " \"$1\", \"service\", \"(.*):.*\")" },
    { "label_join(up{job=\"api-server\",src1=\"a\",src2=\"b\",src3=\""
      "c\"}, \"foo\", \",\", \"src1\", \"src2\", \"src3\")",
      1, 0, "label_join(up{job=\"api-server\",src1=\"a\",src2=\"b\",src3=\""
      "c\"}, \"foo\", \",\", \"src1\", \"src2\", \"src3\")" },
    { "vector(1) and on() (hour() >= 6 < 18)",
      1, 0, "vector(1) and on () (hour() >= 6 < 18)" },
    { "absent(nonexistent{job=\"myjob\",instance=~\".*\"})",
      1, 0, "absent(nonexistent{instance=~\".*\",job=\"myjob\"})" },
    { "predict_linear(node_filesystem_free_bytes{job=\"node\"}[1h], 4"
      " * 3600) < 0",
      1, 0, "predict_linear(node_filesystem_free_bytes{job=\"node\"}[1h], 4"
      " * 3600) < 0" },
    { "quantile_over_time(0.99, rate(x[1m])[10m:1m])",
      1, 0, "quantile_over_time(0.99, rate(x[1m])[10m:1m])" },
    { "clamp(x, -1, +1)",
      1, 0, "clamp(x, -1, 1)" },
    { "sort_desc(topk(3, sum by (code) (rate(http_requests_total[5m])"
      ")))",
      1, 0, "sort_desc(topk(3, sum by (code) (rate(http_requests_total[5m])"
      ")))" },
    { "timestamp(up) - time() > bool -60",
      1, 0, "timestamp(up) - time() > bool -60" },
    { "year(), month(), hour()",
      0, 0, "1:7: parse error: unexpected \",\"" },
    { "avg_over_time(up[5m]) * 100 > 99.9",
      1, 0, "avg_over_time(up[5m]) * 100 > 99.9" },
    { "abs(http_requests_total{job=\"api\"})",
      1, 0, "abs(http_requests_total{job=\"api\"})" },
    { "abs(http_requests_total[5m])",
      0, 0, "1:5: parse error: expected type instant vector in call to func"
      "tion \"abs\", got range vector" },
    { "abs(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"abs\", g"
      "ot 2" },
    { "absent(http_requests_total{job=\"api\"})",
      1, 0, "absent(http_requests_total{job=\"api\"})" },
    { "absent(http_requests_total[5m])",
      0, 0, "1:8: parse error: expected type instant vector in call to func"
      "tion \"absent\", got range vector" },
    { "absent(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"absent\""
      ", got 2" },
    { "absent_over_time(http_requests_total[5m])",
      1, 0, "absent_over_time(http_requests_total[5m])" },
    { "absent_over_time(http_requests_total)",
      0, 0, "1:18: parse error: expected type range vector in call to funct"
      "ion \"absent_over_time\", got instant vector" },
    { "absent_over_time(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"absent_o"
      "ver_time\", got 2" },
    { "acos(http_requests_total{job=\"api\"})",
      1, 0, "acos(http_requests_total{job=\"api\"})" },
    { "acos(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"acos\", got range vector" },
    { "acos(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"acos\", "
      "got 2" },
    { "acosh(http_requests_total{job=\"api\"})",
      1, 0, "acosh(http_requests_total{job=\"api\"})" },
    { "acosh(http_requests_total[5m])",
      0, 0, "1:7: parse error: expected type instant vector in call to func"
      "tion \"acosh\", got range vector" },
    { "acosh(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"acosh\","
      " got 2" },
    { "asin(http_requests_total{job=\"api\"})",
      1, 0, "asin(http_requests_total{job=\"api\"})" },
    { "asin(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"asin\", got range vector" },
    { "asin(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"asin\", "
      "got 2" },
    { "asinh(http_requests_total{job=\"api\"})",
      1, 0, "asinh(http_requests_total{job=\"api\"})" },
    { "asinh(http_requests_total[5m])",
      0, 0, "1:7: parse error: expected type instant vector in call to func"
      "tion \"asinh\", got range vector" },
    { "asinh(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"asinh\","
      " got 2" },
    { "atan(http_requests_total{job=\"api\"})",
      1, 0, "atan(http_requests_total{job=\"api\"})" },
    { "atan(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"atan\", got range vector" },
    { "atan(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"atan\", "
      "got 2" },
    { "atanh(http_requests_total{job=\"api\"})",
      1, 0, "atanh(http_requests_total{job=\"api\"})" },
    { "atanh(http_requests_total[5m])",
      0, 0, "1:7: parse error: expected type instant vector in call to func"
      "tion \"atanh\", got range vector" },
    { "atanh(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"atanh\","
      " got 2" },
    { "avg_over_time(http_requests_total[5m])",
      1, 0, "avg_over_time(http_requests_total[5m])" },
    { "avg_over_time(http_requests_total)",
      0, 0, "1:15: parse error: expected type range vector in call to funct"
      "ion \"avg_over_time\", got instant vector" },
    { "avg_over_time(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"avg_over"
      "_time\", got 2" },
    { "ceil(http_requests_total{job=\"api\"})",
      1, 0, "ceil(http_requests_total{job=\"api\"})" },
    { "ceil(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"ceil\", got range vector" },
    { "ceil(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"ceil\", "
      "got 2" },
    { "changes(http_requests_total[5m])",
      1, 0, "changes(http_requests_total[5m])" },
    { "changes(http_requests_total)",
      0, 0, "1:9: parse error: expected type range vector in call to functi"
      "on \"changes\", got instant vector" },
    { "changes(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"changes"
      "\", got 2" },
    { "clamp(http_requests_total{job=\"api\"}, 0.5, 0.5)",
      1, 0, "clamp(http_requests_total{job=\"api\"}, 0.5, 0.5)" },
    { "clamp(http_requests_total[5m], 0.5, 0.5)",
      0, 0, "1:7: parse error: expected type instant vector in call to func"
      "tion \"clamp\", got range vector" },
    { "clamp(http_requests_total{job=\"api\"}, 0.5, 0.5, 1)",
      0, 0, "1:1: parse error: expected 3 argument(s) in call to \"clamp\","
      " got 4" },
    { "clamp_max(http_requests_total{job=\"api\"}, 0.5)",
      1, 0, "clamp_max(http_requests_total{job=\"api\"}, 0.5)" },
    { "clamp_max(http_requests_total[5m], 0.5)",
      0, 0, "1:11: parse error: expected type instant vector in call to fun"
      "ction \"clamp_max\", got range vector" },
    { "clamp_max(http_requests_total{job=\"api\"}, 0.5, 1)",
      0, 0, "1:1: parse error: expected 2 argument(s) in call to \"clamp_ma"
      "x\", got 3" },
    { "clamp_min(http_requests_total{job=\"api\"}, 0.5)",
      1, 0, "clamp_min(http_requests_total{job=\"api\"}, 0.5)" },
    { "clamp_min(http_requests_total[5m], 0.5)",
      0, 0, "1:11: parse error: expected type instant vector in call to fun"
      "ction \"clamp_min\", got range vector" },
    { "clamp_min(http_requests_total{job=\"api\"}, 0.5, 1)",
      0, 0, "1:1: parse error: expected 2 argument(s) in call to \"clamp_mi"
      "n\", got 3" },
    { "cos(http_requests_total{job=\"api\"})",
      1, 0, "cos(http_requests_total{job=\"api\"})" },
    { "cos(http_requests_total[5m])",
      0, 0, "1:5: parse error: expected type instant vector in call to func"
      "tion \"cos\", got range vector" },
    { "cos(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"cos\", g"
      "ot 2" },
    { "cosh(http_requests_total{job=\"api\"})",
      1, 0, "cosh(http_requests_total{job=\"api\"})" },
    { "cosh(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"cosh\", got range vector" },
    { "cosh(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"cosh\", "
      "got 2" },
    { "count_over_time(http_requests_total[5m])",
      1, 0, "count_over_time(http_requests_total[5m])" },
    { "count_over_time(http_requests_total)",
      0, 0, "1:17: parse error: expected type range vector in call to funct"
      "ion \"count_over_time\", got instant vector" },
    { "count_over_time(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"count_ov"
      "er_time\", got 2" },
    { "days_in_month(http_requests_total{job=\"api\"})",
      1, 0, "days_in_month(http_requests_total{job=\"api\"})" },
    { "days_in_month(http_requests_total[5m])",
      0, 0, "1:15: parse error: expected type instant vector in call to fun"
      "ction \"days_in_month\", got range vector" },
    { "days_in_month(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected at most 1 argument(s) in call to \""
      "days_in_month\", got 2" },
    { "day_of_month(http_requests_total{job=\"api\"})",
      1, 0, "day_of_month(http_requests_total{job=\"api\"})" },
    { "day_of_month(http_requests_total[5m])",
      0, 0, "1:14: parse error: expected type instant vector in call to fun"
      "ction \"day_of_month\", got range vector" },
    { "day_of_month(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected at most 1 argument(s) in call to \""
      "day_of_month\", got 2" },
    { "day_of_week(http_requests_total{job=\"api\"})",
      1, 0, "day_of_week(http_requests_total{job=\"api\"})" },
    { "day_of_week(http_requests_total[5m])",
      0, 0, "1:13: parse error: expected type instant vector in call to fun"
      "ction \"day_of_week\", got range vector" },
    { "day_of_week(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected at most 1 argument(s) in call to \""
      "day_of_week\", got 2" },
    { "day_of_year(http_requests_total{job=\"api\"})",
      1, 0, "day_of_year(http_requests_total{job=\"api\"})" },
    { "day_of_year(http_requests_total[5m])",
      0, 0, "1:13: parse error: expected type instant vector in call to fun"
      "ction \"day_of_year\", got range vector" },
    { "day_of_year(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected at most 1 argument(s) in call to \""
      "day_of_year\", got 2" },
    { "deg(http_requests_total{job=\"api\"})",
      1, 0, "deg(http_requests_total{job=\"api\"})" },
    { "deg(http_requests_total[5m])",
      0, 0, "1:5: parse error: expected type instant vector in call to func"
      "tion \"deg\", got range vector" },
    { "deg(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"deg\", g"
      "ot 2" },
    { "delta(http_requests_total[5m])",
      1, 0, "delta(http_requests_total[5m])" },
    { "delta(http_requests_total)",
      0, 0, "1:7: parse error: expected type range vector in call to functi"
      "on \"delta\", got instant vector" },
    { "delta(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"delta\","
      " got 2" },
    { "deriv(http_requests_total[5m])",
      1, 0, "deriv(http_requests_total[5m])" },
    { "deriv(http_requests_total)",
      0, 0, "1:7: parse error: expected type range vector in call to functi"
      "on \"deriv\", got instant vector" },
    { "deriv(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"deriv\","
      " got 2" },
    { "exp(http_requests_total{job=\"api\"})",
      1, 0, "exp(http_requests_total{job=\"api\"})" },
    { "exp(http_requests_total[5m])",
      0, 0, "1:5: parse error: expected type instant vector in call to func"
      "tion \"exp\", got range vector" },
    { "exp(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"exp\", g"
      "ot 2" },
    { "floor(http_requests_total{job=\"api\"})",
      1, 0, "floor(http_requests_total{job=\"api\"})" },
    { "floor(http_requests_total[5m])",
      0, 0, "1:7: parse error: expected type instant vector in call to func"
      "tion \"floor\", got range vector" },
    { "floor(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"floor\","
      " got 2" },
    { "histogram_count(http_requests_total{job=\"api\"})",
      1, 0, "histogram_count(http_requests_total{job=\"api\"})" },
    { "histogram_count(http_requests_total[5m])",
      0, 0, "1:17: parse error: expected type instant vector in call to fun"
      "ction \"histogram_count\", got range vector" },
    { "histogram_count(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"histogra"
      "m_count\", got 2" },
    { "histogram_sum(http_requests_total{job=\"api\"})",
      1, 0, "histogram_sum(http_requests_total{job=\"api\"})" },
    { "histogram_sum(http_requests_total[5m])",
      0, 0, "1:15: parse error: expected type instant vector in call to fun"
      "ction \"histogram_sum\", got range vector" },
    { "histogram_sum(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"histogra"
      "m_sum\", got 2" },
    { "histogram_fraction(0.5, 0.5, http_requests_total{job=\"api\"})",
      1, 0, "histogram_fraction(0.5, 0.5, http_requests_total{job=\"api\"})" },
    { "histogram_fraction(\"x\", 0.5, http_requests_total{job=\"api\""
      "})",
      0, 0, "1:20: parse error: expected type scalar in call to function \""
      "histogram_fraction\", got string" },
    { "histogram_fraction(0.5, 0.5, http_requests_total{job=\"api\"},"
      " 1)",
      0, 0, "1:1: parse error: expected 3 argument(s) in call to \"histogra"
      "m_fraction\", got 4" },
    { "histogram_quantile(0.5, http_requests_total{job=\"api\"})",
      1, 0, "histogram_quantile(0.5, http_requests_total{job=\"api\"})" },
    { "histogram_quantile(\"x\", http_requests_total{job=\"api\"})",
      0, 0, "1:20: parse error: expected type scalar in call to function \""
      "histogram_quantile\", got string" },
    { "histogram_quantile(0.5, http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 2 argument(s) in call to \"histogra"
      "m_quantile\", got 3" },
    { "holt_winters(http_requests_total[5m], 0.5, 0.5)",
      1, 0, "holt_winters(http_requests_total[5m], 0.5, 0.5)" },
    { "holt_winters(http_requests_total, 0.5, 0.5)",
      0, 0, "1:14: parse error: expected type range vector in call to funct"
      "ion \"holt_winters\", got instant vector" },
    { "holt_winters(http_requests_total[5m], 0.5, 0.5, 1)",
      0, 0, "1:1: parse error: expected 3 argument(s) in call to \"holt_win"
      "ters\", got 4" },
    { "hour(http_requests_total{job=\"api\"})",
      1, 0, "hour(http_requests_total{job=\"api\"})" },
    { "hour(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"hour\", got range vector" },
    { "hour(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected at most 1 argument(s) in call to \""
      "hour\", got 2" },
    { "idelta(http_requests_total[5m])",
      1, 0, "idelta(http_requests_total[5m])" },
    { "idelta(http_requests_total)",
      0, 0, "1:8: parse error: expected type range vector in call to functi"
      "on \"idelta\", got instant vector" },
    { "idelta(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"idelta\""
      ", got 2" },
    { "increase(http_requests_total[5m])",
      1, 0, "increase(http_requests_total[5m])" },
    { "increase(http_requests_total)",
      0, 0, "1:10: parse error: expected type range vector in call to funct"
      "ion \"increase\", got instant vector" },
    { "increase(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"increase"
      "\", got 2" },
    { "irate(http_requests_total[5m])",
      1, 0, "irate(http_requests_total[5m])" },
    { "irate(http_requests_total)",
      0, 0, "1:7: parse error: expected type range vector in call to functi"
      "on \"irate\", got instant vector" },
    { "irate(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"irate\","
      " got 2" },
    { "label_replace(http_requests_total{job=\"api\"}, \"a\", \"a\", "
      "\"a\", \"a\")",
      1, 0, "label_replace(http_requests_total{job=\"api\"}, \"a\", \"a\", "
      "\"a\", \"a\")" },
    { "label_replace(http_requests_total[5m], \"a\", \"a\", \"a\", \""
      "a\")",
      0, 0, "1:15: parse error: expected type instant vector in call to fun"
      "ction \"label_replace\", got range vector" },
    { "label_replace(http_requests_total{job=\"api\"}, \"a\", \"a\", "
      "\"a\", \"a\", 1)",
      0, 0, "1:1: parse error: expected 5 argument(s) in call to \"label_re"
      "place\", got 6" },
    { "label_join(http_requests_total{job=\"api\"}, \"a\", \"a\", \"a"
      "\")",
      1, 0, "label_join(http_requests_total{job=\"api\"}, \"a\", \"a\", \"a"
      "\")" },
    { "label_join(http_requests_total[5m], \"a\", \"a\", \"a\")",
      0, 0, "1:12: parse error: expected type instant vector in call to fun"
      "ction \"label_join\", got range vector" },
    { "label_join(http_requests_total{job=\"api\"}, \"a\", \"a\", \"a"
      "\", 1)",
      0, 0, "1:59: parse error: expected type string in call to function \""
      "label_join\", got scalar" },
    { "last_over_time(http_requests_total[5m])",
      1, 0, "last_over_time(http_requests_total[5m])" },
    { "last_over_time(http_requests_total)",
      0, 0, "1:16: parse error: expected type range vector in call to funct"
      "ion \"last_over_time\", got instant vector" },
    { "last_over_time(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"last_ove"
      "r_time\", got 2" },
    { "ln(http_requests_total{job=\"api\"})",
      1, 0, "ln(http_requests_total{job=\"api\"})" },
    { "ln(http_requests_total[5m])",
      0, 0, "1:4: parse error: expected type instant vector in call to func"
      "tion \"ln\", got range vector" },
    { "ln(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"ln\", go"
      "t 2" },
    { "log10(http_requests_total{job=\"api\"})",
      1, 0, "log10(http_requests_total{job=\"api\"})" },
    { "log10(http_requests_total[5m])",
      0, 0, "1:7: parse error: expected type instant vector in call to func"
      "tion \"log10\", got range vector" },
    { "log10(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"log10\","
      " got 2" },
    { "log2(http_requests_total{job=\"api\"})",
      1, 0, "log2(http_requests_total{job=\"api\"})" },
    { "log2(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"log2\", got range vector" },
    { "log2(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"log2\", "
      "got 2" },
    { "max_over_time(http_requests_total[5m])",
      1, 0, "max_over_time(http_requests_total[5m])" },
    { "max_over_time(http_requests_total)",
      0, 0, "1:15: parse error: expected type range vector in call to funct"
      "ion \"max_over_time\", got instant vector" },
    { "max_over_time(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"max_over"
      "_time\", got 2" },
    { "min_over_time(http_requests_total[5m])",
      1, 0, "min_over_time(http_requests_total[5m])" },
    { "min_over_time(http_requests_total)",
      0, 0, "1:15: parse error: expected type range vector in call to funct"
      "ion \"min_over_time\", got instant vector" },
    { "min_over_time(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"min_over"
      "_time\", got 2" },
    { "minute(http_requests_total{job=\"api\"})",
      1, 0, "minute(http_requests_total{job=\"api\"})" },
    { "minute(http_requests_total[5m])",
      0, 0, "1:8: parse error: expected type instant vector in call to func"
      "tion \"minute\", got range vector" },
    { "minute(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected at most 1 argument(s) in call to \""
      "minute\", got 2" },
    { "month(http_requests_total{job=\"api\"})",
      1, 0, "month(http_requests_total{job=\"api\"})" },
    { "month(http_requests_total[5m])",
      0, 0, "1:7: parse error: expected type instant vector in call to func"
      "tion \"month\", got range vector" },
    { "month(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected at most 1 argument(s) in call to \""
      "month\", got 2" },
    { "pi()",
      1, 0, "pi()" },
    { "pi(1)",
      0, 0, "1:1: parse error: expected 0 argument(s) in call to \"pi\", go"
      "t 1" },
    { "predict_linear(http_requests_total[5m], 0.5)",
      1, 0, "predict_linear(http_requests_total[5m], 0.5)" },
    { "predict_linear(http_requests_total, 0.5)",
      0, 0, "1:16: parse error: expected type range vector in call to funct"
      "ion \"predict_linear\", got instant vector" },
    { "predict_linear(http_requests_total[5m], 0.5, 1)",
      0, 0, "1:1: parse error: expected 2 argument(s) in call to \"predict_"
      "linear\", got 3" },
    { "present_over_time(http_requests_total[5m])",
      1, 0, "present_over_time(http_requests_total[5m])" },
    { "present_over_time(http_requests_total)",
      0, 0, "1:19: parse error: expected type range vector in call to funct"
      "ion \"present_over_time\", got instant vector" },
    { "present_over_time(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"present_"
      "over_time\", got 2" },
    { "quantile_over_time(0.5, http_requests_total[5m])",
      1, 0, "quantile_over_time(0.5, http_requests_total[5m])" },
    { "quantile_over_time(\"x\", http_requests_total[5m])",
      0, 0, "1:20: parse error: expected type scalar in call to function \""
      "quantile_over_time\", got string" },
    { "quantile_over_time(0.5, http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 2 argument(s) in call to \"quantile"
      "_over_time\", got 3" },
    { "rad(http_requests_total{job=\"api\"})",
      1, 0, "rad(http_requests_total{job=\"api\"})" },
    { "rad(http_requests_total[5m])",
      0, 0, "1:5: parse error: expected type instant vector in call to func"
      "tion \"rad\", got range vector" },
    { "rad(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"rad\", g"
      "ot 2" },
    { "rate(http_requests_total[5m])",
      1, 0, "rate(http_requests_total[5m])" },
    { "rate(http_requests_total)",
      0, 0, "1:6: parse error: expected type range vector in call to functi"
      "on \"rate\", got instant vector" },
    { "rate(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"rate\", "
      "got 2" },
    { "resets(http_requests_total[5m])",
      1, 0, "resets(http_requests_total[5m])" },
    { "resets(http_requests_total)",
      0, 0, "1:8: parse error: expected type range vector in call to functi"
      "on \"resets\", got instant vector" },
    { "resets(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"resets\""
      ", got 2" },
    { "round(http_requests_total{job=\"api\"}, 0.5)",
      1, 0, "round(http_requests_total{job=\"api\"}, 0.5)" },
    { "round(http_requests_total[5m], 0.5)",
      0, 0, "1:7: parse error: expected type instant vector in call to func"
      "tion \"round\", got range vector" },
    { "round(http_requests_total{job=\"api\"}, 0.5, 1)",
      0, 0, "1:1: parse error: expected at most 2 argument(s) in call to \""
      "round\", got 3" },
    { "scalar(http_requests_total{job=\"api\"})",
      1, 0, "scalar(http_requests_total{job=\"api\"})" },
    { "scalar(http_requests_total[5m])",
      0, 0, "1:8: parse error: expected type instant vector in call to func"
      "tion \"scalar\", got range vector" },
    { "scalar(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"scalar\""
      ", got 2" },
    { "sgn(http_requests_total{job=\"api\"})",
      1, 0, "sgn(http_requests_total{job=\"api\"})" },
    { "sgn(http_requests_total[5m])",
      0, 0, "1:5: parse error: expected type instant vector in call to func"
      "tion \"sgn\", got range vector" },
    { "sgn(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"sgn\", g"
      "ot 2" },
    { "sin(http_requests_total{job=\"api\"})",
      1, 0, "sin(http_requests_total{job=\"api\"})" },
    { "sin(http_requests_total[5m])",
      0, 0, "1:5: parse error: expected type instant vector in call to func"
      "tion \"sin\", got range vector" },
    { "sin(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"sin\", g"
      "ot 2" },
    { "sinh(http_requests_total{job=\"api\"})",
      1, 0, "sinh(http_requests_total{job=\"api\"})" },
    { "sinh(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"sinh\", got range vector" },
    { "sinh(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"sinh\", "
      "got 2" },
    { "sort(http_requests_total{job=\"api\"})",
      1, 0, "sort(http_requests_total{job=\"api\"})" },
    { "sort(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"sort\", got range vector" },
    { "sort(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"sort\", "
      "got 2" },
    { "sort_desc(http_requests_total{job=\"api\"})",
      1, 0, "sort_desc(http_requests_total{job=\"api\"})" },
    { "sort_desc(http_requests_total[5m])",
      0, 0, "1:11: parse error: expected type instant vector in call to fun"
      "ction \"sort_desc\", got range vector" },
    { "sort_desc(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"sort_des"
      "c\", got 2" },
    { "sqrt(http_requests_total{job=\"api\"})",
      1, 0, "sqrt(http_requests_total{job=\"api\"})" },
    { "sqrt(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"sqrt\", got range vector" },
    { "sqrt(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"sqrt\", "
      "got 2" },
    { "stddev_over_time(http_requests_total[5m])",
      1, 0, "stddev_over_time(http_requests_total[5m])" },
    { "stddev_over_time(http_requests_total)",
      0, 0, "1:18: parse error: expected type range vector in call to funct"
      "ion \"stddev_over_time\", got instant vector" },
    { "stddev_over_time(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"stddev_o"
      "ver_time\", got 2" },
    { "stdvar_over_time(http_requests_total[5m])",
      1, 0, "stdvar_over_time(http_requests_total[5m])" },
    { "stdvar_over_time(http_requests_total)",
      0, 0, "1:18: parse error: expected type range vector in call to funct"
      "ion \"stdvar_over_time\", got instant vector" },
    { "stdvar_over_time(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"stdvar_o"
      "ver_time\", got 2" },
    { "sum_over_time(http_requests_total[5m])",
      1, 0, "sum_over_time(http_requests_total[5m])" },
    { "sum_over_time(http_requests_total)",
      0, 0, "1:15: parse error: expected type range vector in call to funct"
      "ion \"sum_over_time\", got instant vector" },
    { "sum_over_time(http_requests_total[5m], 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"sum_over"
      "_time\", got 2" },
    { "tan(http_requests_total{job=\"api\"})",
      1, 0, "tan(http_requests_total{job=\"api\"})" },
    { "tan(http_requests_total[5m])",
      0, 0, "1:5: parse error: expected type instant vector in call to func"
      "tion \"tan\", got range vector" },
    { "tan(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"tan\", g"
      "ot 2" },
    { "tanh(http_requests_total{job=\"api\"})",
      1, 0, "tanh(http_requests_total{job=\"api\"})" },
    { "tanh(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"tanh\", got range vector" },
    { "tanh(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"tanh\", "
      "got 2" },
    { "time(1)",
      0, 0, "1:1: parse error: expected 0 argument(s) in call to \"time\", "
      "got 1" },
    { "timestamp(http_requests_total{job=\"api\"})",
      1, 0, "timestamp(http_requests_total{job=\"api\"})" },
    { "timestamp(http_requests_total[5m])",
      0, 0, "1:11: parse error: expected type instant vector in call to fun"
      "ction \"timestamp\", got range vector" },
    { "timestamp(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"timestam"
      "p\", got 2" },
    { "vector(0.5)",
      1, 0, "vector(0.5)" },
    { "vector(\"x\")",
      0, 0, "1:8: parse error: expected type scalar in call to function \"v"
      "ector\", got string" },
    { "vector(0.5, 1)",
      0, 0, "1:1: parse error: expected 1 argument(s) in call to \"vector\""
      ", got 2" },
    { "year(http_requests_total{job=\"api\"})",
      1, 0, "year(http_requests_total{job=\"api\"})" },
    { "year(http_requests_total[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"year\", got range vector" },
    { "year(http_requests_total{job=\"api\"}, 1)",
      0, 0, "1:1: parse error: expected at most 1 argument(s) in call to \""
      "year\", got 2" },
    { "histogram_stddev(foo)",
      0, 0, "1:1: parse error: unknown function with name \"histogram_stdde"
      "v\"" },
    { "histogram_stdvar(foo)",
      0, 0, "1:1: parse error: unknown function with name \"histogram_stdva"
      "r\"" },
    { "mad_over_time(foo)",
      0, 0, "1:1: parse error: unknown function with name \"mad_over_time\"" },
    { "sort_by_label(foo)",
      0, 0, "1:1: parse error: unknown function with name \"sort_by_label\"" },
    { "sort_by_label_desc(foo)",
      0, 0, "1:1: parse error: unknown function with name \"sort_by_label_d"
      "esc\"" },
    { "info(foo)",
      0, 0, "1:1: parse error: unknown function with name \"info\"" },
    { "double_exponential_smoothing(foo)",
      0, 0, "1:1: parse error: unknown function with name \"double_exponent"
      "ial_smoothing\"" },
    { "histogram_avg(foo)",
      0, 0, "1:1: parse error: unknown function with name \"histogram_avg\"" },
    { "limitk(foo)",
      0, 0, "1:1: parse error: unknown function with name \"limitk\"" },
    { "RATE(foo)",
      0, 0, "1:1: parse error: unknown function with name \"RATE\"" },
    { "Rate(foo)",
      0, 0, "1:1: parse error: unknown function with name \"Rate\"" },
    { "label_replace_all(foo)",
      0, 0, "1:1: parse error: unknown function with name \"label_replace_a"
      "ll\"" },
    { "foo{a=~\"(\"",
      0, 1, "1:5: parse error: error parsing regexp: " },
    { "foo{a=~\"(\" b",
      0, 1, "1:5: parse error: error parsing regexp: " },
    { "foo offset 0s)",
      0, 0, "1:12: parse error: duration must be greater than 0" },
    { "sum(1 2)",
      0, 0, "1:7: parse error: unexpected number \"2\" in aggregation" },
    { "foo[0s",
      0, 0, "1:5: parse error: duration must be greater than 0" },
    { "foo{a=\"b\"}offset 5m",
      1, 0, "foo{a=\"b\"} offset 5m" },
    { "foo[5m]offset 5m",
      1, 0, "foo[5m] offset 5m" },
    { "1+-1",
      1, 0, "1 + -1" },
    { "1--1",
      1, 0, "1 - -1" },
    { "foo@5",
      1, 0, "foo @ 5.000" },
    { "foo @ 5.5.5",
      0, 0, "1:10: parse error: unexpected number \".5\"" },
    { "foo offset 5m5s",
      1, 0, "foo offset 5m5s" },
    { "foo offset 5ms5",
      0, 0, "1:12: parse error: bad number or duration syntax: \"5ms5\"" },
    { "sum by(a)(foo)",
      1, 0, "sum by (a) (foo)" },
    { "count_values by (a) (\"x\", foo)",
      1, 0, "count_values by (a) (\"x\", foo)" },
    { "foo{a=~'b'}",
      1, 0, "foo{a=~\"b\"}" },
    { "{__name__=~\"a\"}[5m]",
      1, 0, "{__name__=~\"a\"}[5m]" },
    { "foo{}[5m]",
      1, 0, "foo[5m]" },
    { "rate(foo[5m:])",
      1, 0, "rate(foo[5m:])" },
    { "-{a=\"b\"}",
      1, 0, "-{a=\"b\"}" },
    { "foo offset -0s",
      0, 0, "1:13: parse error: duration must be greater than 0" },
    { "1 + (2",
      0, 0, "1:7: parse error: unclosed left parenthesis" },
    { "f\303\266o",
      0, 0, "1:2: parse error: unexpected character: '\303\266'" },
    { "foo{a=\"b\"}}",
      0, 0, "1:11: parse error: unexpected character: '}'" },
    { "foo{{",
      0, 0, "1:5: parse error: unexpected left brace '{'" },
    { "foo[[5m]]",
      0, 0, "1:5: parse error: missing unit character in duration" },
    { "foo[5m]]",
      0, 0, "1:8: parse error: unexpected right bracket ']'" },
    { "foo}",
      0, 0, "1:4: parse error: unexpected character: '}'" },
    { "@",
      0, 0, "1:1: parse error: unexpected \"<Item 57385>\" <op:@>" },
    { "offset",
      1, 0, "offset" },
    { "1 @ start()",
      0, 0, "1:1: parse error: @ modifier must be preceded by an instant ve"
      "ctor selector or range vector selector or a subquery" },
    { "time() @ 5",
      0, 0, "1:1: parse error: @ modifier must be preceded by an instant ve"
      "ctor selector or range vector selector or a subquery" },
    { "foo and on(a) group_left() bar",
      0, 0, "1:1: parse error: no grouping allowed for \"and\" operation" },
    { "foo + on(a,) bar",
      1, 0, "foo + on (a) bar" },
    { "sum without(a,) (x)",
      1, 0, "sum without (a) (x)" },
    { "label_replace(foo, \"a\", \"b\", \"c\")",
      0, 0, "1:1: parse error: expected 5 argument(s) in call to \"label_re"
      "place\", got 4" },
    { "histogram_quantile(0.9)",
      0, 0, "1:1: parse error: expected 2 argument(s) in call to \"histogra"
      "m_quantile\", got 1" },
    { "vector(time())",
      1, 0, "vector(time())" },
    { "scalar(time())",
      0, 0, "1:8: parse error: expected type instant vector in call to func"
      "tion \"scalar\", got scalar" },
    { "abs(1)",
      0, 0, "1:5: parse error: expected type instant vector in call to func"
      "tion \"abs\", got scalar" },
    { "round(foo, \"x\")",
      0, 0, "1:12: parse error: expected type scalar in call to function \""
      "round\", got string" },
    { "sort(foo[5m])",
      0, 0, "1:6: parse error: expected type instant vector in call to func"
      "tion \"sort\", got range vector" },
    { "absent_over_time(foo)",
      0, 0, "1:18: parse error: expected type range vector in call to funct"
      "ion \"absent_over_time\", got instant vector" },
    { "count_over_time(foo[5m:1m])",
      1, 0, "count_over_time(foo[5m:1m])" },
    { "rate(foo[5m] offset 5m)",
      1, 0, "rate(foo[5m] offset 5m)" },
    { "rate((foo[5m]))",
      1, 0, "rate((foo[5m]))" },
    { "rate(-foo[5m])",
      0, 0, "1:6: parse error: unary expression only allowed on expressions"
      " of type scalar or instant vector, got \"range vector\"" },
    { "(foo[5m])[5m]",
      0, 0, "1:10: parse error: ranges only allowed for vector selectors" },
    { "((foo))[5m:]",
      1, 0, "((foo))[5m:]" },
    { "foo[5m] @ 1 @ 2",
      0, 0, "1:1: parse error: @ <timestamp> may not be set multiple times" },
    { "\"a\"[5m:]",
      0, 0, "1:1: parse error: subquery is only allowed on instant vector, "
      "got string instead" },
    { "1 > bool 2 > bool 3",
      1, 0, "1 > bool 2 > bool 3" },
    { "1 > 2 == bool 3",
      0, 0, "1:3: parse error: comparisons between scalars must use BOOL mo"
      "difier" },
    { "foo > bool 1 and bar",
      1, 0, "foo > bool 1 and bar" },
    { "foo unless bool bar",
      0, 0, "1:5: parse error: bool modifier can only be used on comparison"
      " operators" },
    { "foo ^ bool bar",
      0, 0, "1:5: parse error: bool modifier can only be used on comparison"
      " operators" },
    { "foo == on() group_left bar",
      1, 0, "foo == on () group_left () bar" },
    { "foo + ignoring(a) group_right bar",
      1, 0, "foo + ignoring (a) group_right () bar" },
    { " ",
      0, 0, "1:1: parse error: no expression found in input" },
    { "#",
      0, 0, "1:1: parse error: no expression found in input" },
    { "1 # c",
      1, 0, "1" },
    { "foo{a=\"b\"} # c",
      1, 0, "foo{a=\"b\"}" },
    { "\"unterminated",
      0, 0, "1:1: parse error: unterminated quoted string" },
    { "'unterminated",
      0, 0, "1:1: parse error: unterminated quoted string" },
    { "`unterminated",
      0, 0, "1:1: parse error: unterminated raw string" },
    { "foo{a='\\''}",
      1, 0, "foo{a=\"'\"}" },
    { "\"\\0\"",
      0, 0, "1:1: parse error: illegal character U+0022 '\"' in escape sequ"
      "ence" },
    { "\"\\08\"",
      0, 0, "1:1: parse error: illegal character U+0038 '8' in escape seque"
      "nce" },
    { "\"\\777\"",
      0, 0, "1:1: parse error: escape sequence is an invalid Unicode code p"
      "oint" },
    { "\"\\xFFz\"",
      1, 0, "\"\\xffz\"" },
    { "quantile(0.5, foo[5m])",
      0, 0, "1:15: parse error: expected type instant vector in aggregation"
      " expression, got range vector" },
    { "sum(1)",
      0, 0, "1:5: parse error: expected type instant vector in aggregation "
      "expression, got scalar" },
    { "count_values(\"a\", 1)",
      0, 0, "1:19: parse error: expected type instant vector in aggregation"
      " expression, got scalar" },
    { "topk(foo, bar)",
      0, 0, "1:6: parse error: expected type scalar in aggregation paramete"
      "r, got instant vector" },
    { "sum(foo) by ()",
      1, 0, "sum(foo)" },
    { "sum(foo) without ()",
      1, 0, "sum without () (foo)" },
    { "max by (a) (foo) * on(a) group_left(b) min by (a, b) (bar)",
      1, 0, "max by (a) (foo) * on (a) group_left (b) min by (a, b) (bar)" },
    { "0x1F",
      1, 0, "31" },
    { "1E3",
      1, 0, "1000" },
    { ".1e-2",
      1, 0, "0.001" },
    { "00",
      1, 0, "0" },
    { "0.",
      1, 0, "0" },
    { "1e+1",
      1, 0, "10" },
    { "1_000",
      0, 0, "1:1: parse error: bad number or duration syntax: \"1\"" },
    { "1.5h",
      0, 0, "1:1: parse error: unexpected duration \"1.5h\"" },
    { "foo[1.5h]",
      0, 0, "1:5: parse error: not a valid duration string: \"1.5h\"" },
    { "foo[1h30]",
      0, 0, "1:5: parse error: bad duration syntax: \"1h30\"" },
    { "foo[1hh]",
      0, 0, "1:5: parse error: bad duration syntax: \"1hh\"" },
    { "foo offset5m",
      0, 0, "1:5: parse error: unexpected identifier \"offset5m\"" },
    { "sum(foo)by(a)",
      1, 0, "sum by (a) (foo)" },
    { "foo{a=\"b\",b=\"c\"}@5",
      1, 0, "foo{a=\"b\",b=\"c\"} @ 5.000" },
    { "foo@start()",
      1, 0, "foo @ start()" },
    { "foo @ START()",
      1, 0, "foo @ start()" },
    { "foo OFFSET 5M",
      0, 0, "1:12: parse error: bad number or duration syntax: \"5\"" },
    { "foo[5M]",
      0, 0, "1:5: parse error: bad duration syntax: \"5\"" },
    { "foo[1d1h1m1s1ms]",
      1, 0, "foo[1d1h1m1s1ms]" },
    { "foo[1ms]",
      1, 0, "foo[1ms]" },
    { "foo[1000y]",
      0, 0, "1:5: parse error: duration out of range" },
    { "foo{a=~\"\\\\\"}",
      0, 1, "1:5: parse error: error parsing regexp: " },
    { "foo{a=~\"[\"}",
      0, 1, "1:5: parse error: error parsing regexp: " },
    { "foo{a=~\"a{2,1}\"}",
      0, 1, "1:5: parse error: error parsing regexp: " },
    { "foo{a=~\"(\?P<n>x)\"}",
      1, 0, "foo{a=~\"(\?P<n>x)\"}" },
    { "foo{a=~\"(\?<n>x)\"}",
      0, 1, "1:5: parse error: error parsing regexp: " },
    { "foo{a=~\"\\\\Q.\\\\E\"}",
      1, 0, "foo{a=~\"\\\\Q.\\\\E\"}" },
    { "foo{a=~\"\\\\z\"}",
      1, 0, "foo{a=~\"\\\\z\"}" },
    { "foo{a=~\"\\\\C\"}",
      0, 1, "1:5: parse error: error parsing regexp: " },
    { "foo{a=~\"[a-\\\\d]\"}",
      0, 1, "1:5: parse error: error parsing regexp: " },
    { "foo{a=~\"\\\\pN\"}",
      1, 0, "foo{a=~\"\\\\pN\"}" },
    { "foo{a=~\"\\\\p{Greek}\"}",
      1, 0, "foo{a=~\"\\\\p{Greek}\"}" },
    { "foo{a=~\"(\?i:a)(\?-i)b\"}",
      1, 0, "foo{a=~\"(\?i:a)(\?-i)b\"}" },
    { "foo{a=~\"(\?U)a+\"}",
      1, 0, "foo{a=~\"(\?U)a+\"}" },
    { "foo{a=~\"x{,3}\"}",
      1, 0, "foo{a=~\"x{,3}\"}" },
    { "foo{a=~\"a++\"}",
      0, 1, "1:5: parse error: error parsing regexp: " },
    { "foo{a=~\"[(\?<]\"}",
      1, 0, "foo{a=~\"[(\?<]\"}" },
    { "foo{a=~\"[[:alpha:](\?<]\"}",
      1, 0, "foo{a=~\"[[:alpha:](\?<]\"}" },
    { "foo{a=~\"\\\\(\?<\"}",
      1, 0, "foo{a=~\"\\\\(\?<\"}" },
    { "foo{a=~\"x(\?<n>y)\"}",
      0, 1, "1:5: parse error: error parsing regexp: " },
    { "foo{a=~\"[]](\?<n>y)\"}",
      0, 1, "1:5: parse error: error parsing regexp: " },
    { "foo{a=~\"(\?P<n>y)\"}",
      1, 0, "foo{a=~\"(\?P<n>y)\"}" },
    { "round(quantile(0.5,foo, \"x\")",
      0, 0, "1:29: parse error: unclosed left parenthesis" },
    { "sum(foo, \"x\"",
      0, 0, "1:13: parse error: unclosed left parenthesis" },
    { "rate(foo[5m]) + sum(foo",
      0, 0, "1:24: parse error: unclosed left parenthesis" },
    { "clamp(http_requests_total{job=\"api\"},ignoring 0, 0.5)",
      0, 0, "1:37: parse error: trailing commas not allowed in function cal"
      "l args" },
    { "label_join(foo, \"a\", \"b\", \"c\",!= \"d\")",
      0, 0, "1:30: parse error: trailing commas not allowed in function cal"
      "l args" },
    { "log2(foo,/ 1)",
      0, 0, "1:9: parse error: trailing commas not allowed in function call"
      " args" },
    { "sum(foo,, bar)",
      0, 0, "1:8: parse error: trailing commas not allowed in function call"
      " args" },
    { "tanh(foo,atan2 1)",
      0, 0, "1:9: parse error: trailing commas not allowed in function call"
      " args" },
    { "sum(foo, ) by (a)",
      0, 0, "1:8: parse error: trailing commas not allowed in function call"
      " args" },
    { "{__name__=\"\", a=\"b\"}",
      1, 0, "{a=\"b\"}" },
    { "{__name__=\"\"}",
      0, 0, "1:1: parse error: vector selector must contain at least one no"
      "n-empty matcher" },
    { "foo{__name__=\"\"}",
      0, 0, "1:1: parse error: metric name must not be set twice: \"foo\" o"
      "r \"\"" },
};


static void
tp_run(const char *in, size_t len, char *out, size_t size, int *ok)
{
    int                 rc;
    size_t              n;
    ts_promql_t        *pq;
    ts_promql_error_t   err;

    rc = ts_promql_parse(in, len, NULL, &pq, &err);

    if (rc != TS_OK) {
        assert_null(pq);
        assert_int_equal(rc, TS_ERR_INVALID);
        (void) ts_promql_error_format(&err, out, size);
        *ok = 0;
        return;
    }

    n = ts_promql_format(ts_promql_root(pq), out, size);
    assert_true(n < size);
    *ok = 1;

    ts_promql_free(pq);
}


static void
test_table(void **state)
{
    int     ok;
    char    out[4096], name[64];
    size_t  i, n;

    (void) state;

    n = sizeof(tp_cases) / sizeof(tp_cases[0]);

    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "case %zu", i);
        tp_run(tp_cases[i].in, strlen(tp_cases[i].in), out, sizeof(out),
               &ok);

        if (ok != tp_cases[i].ok) {
            fail_msg("%s: %s: expected %s, got %s", name, tp_cases[i].in,
                     tp_cases[i].ok ? "valid" : "an error", out);
        }

        if (tp_cases[i].prefix) {
            tp_check(tp_cases[i].in, strncmp(out, tp_cases[i].expected,
                                             strlen(tp_cases[i].expected))
                                     == 0);
            continue;
        }

        if (strcmp(out, tp_cases[i].expected) != 0) {
            fail_msg("%s: %s: expected \"%s\", got \"%s\"", name,
                     tp_cases[i].in, tp_cases[i].expected, out);
        }
    }

    print_message("%zu expressions as Prometheus 2.42\n", n);
}


/* the canonical form parses back to itself */
static void
test_roundtrip(void **state)
{
    int     ok;
    char    out[4096];
    size_t  i;

    (void) state;

    for (i = 0; i < sizeof(tp_cases) / sizeof(tp_cases[0]); i++) {
        if (!tp_cases[i].ok) {
            continue;
        }

        tp_run(tp_cases[i].expected, strlen(tp_cases[i].expected), out,
               sizeof(out), &ok);
        tp_check(tp_cases[i].expected, ok);
        tp_check(tp_cases[i].expected,
                 strcmp(out, tp_cases[i].expected) == 0);
    }
}


static ts_promql_t *
tp_parse(const char *q)
{
    int                 rc;
    ts_promql_t        *pq;
    ts_promql_error_t   err;

    rc = ts_promql_parse(q, strlen(q), NULL, &pq, &err);
    if (rc != TS_OK) {
        fail_msg("%s: %s", q, err.msg);
    }

    return pq;
}


static void
test_ast_selector(void **state)
{
    ts_promql_t               *pq;
    const ts_promql_expr_t    *e, *v;
    const ts_promql_vector_t  *vs;

    (void) state;

    pq = tp_parse("rate(http_requests_total{job=~\"api|web\", code!=\"200\"}"
                  "[5m] offset -1h @ 1700000000.5)");
    e = ts_promql_root(pq);

    assert_int_equal(e->kind, TS_PQ_CALL);
    assert_int_equal(e->type, TS_PQ_TYPE_VECTOR);
    assert_int_equal(e->u.call.func->id, TS_PQ_FN_RATE);
    assert_int_equal(e->u.call.nargs, 1);

    e = e->u.call.args[0];
    assert_int_equal(e->kind, TS_PQ_MATRIX);
    assert_int_equal(e->type, TS_PQ_TYPE_MATRIX);
    assert_int_equal(e->u.matrix.range, 5 * 60 * 1000);

    v = e->u.matrix.vector;
    vs = &v->u.vector;
    assert_int_equal(v->kind, TS_PQ_VECTOR);
    assert_string_equal(vs->name.data, "http_requests_total");
    assert_int_equal(vs->offset, -3600 * 1000);
    assert_int_equal(vs->at_kind, TS_PQ_AT_TIME);
    assert_int_equal(vs->at, 1700000000500LL);

    /* braces first, in order, then the name, as Prometheus */
    assert_int_equal(vs->nmatchers, 3);
    assert_int_equal(vs->matchers[0].type, TS_MATCH_RE);
    assert_string_equal(vs->matchers[0].name, "job");
    assert_string_equal(vs->matchers[0].value, "api|web");
    assert_int_equal(vs->matchers[1].type, TS_MATCH_NEQ);
    assert_int_equal(vs->matchers[2].type, TS_MATCH_EQ);
    assert_string_equal(vs->matchers[2].name, "__name__");
    assert_memory_equal(vs->matchers[2].value, "http_requests_total", 19);
    assert_int_equal(vs->matchers[2].value_len, 19);

    assert_true(ts_promql_memory(pq) > 0);
    ts_promql_free(pq);

    /* escapes are unquoted; a NUL byte keeps its length */
    pq = tp_parse("{a=\"x\\x00y\\u00e9\"}");
    vs = &ts_promql_root(pq)->u.vector;
    assert_int_equal(vs->name.len, 0);
    assert_int_equal(vs->nmatchers, 1);
    assert_int_equal(vs->matchers[0].value_len, 5);
    assert_memory_equal(vs->matchers[0].value, "x\0y\xc3\xa9", 5);
    ts_promql_free(pq);
}


/* the matchers go to ts_select as they are */
static void
test_ast_matchers_compile(void **state)
{
    int                        rc;
    ts_label_t                 l[2];
    ts_promql_t               *pq;
    ts_selector_t             *sel;
    const ts_promql_vector_t  *vs;

    (void) state;

    pq = tp_parse("up{job=~\"a.*\"}");
    vs = &ts_promql_root(pq)->u.vector;

    rc = ts_selector_compile(&sel, vs->matchers, vs->nmatchers, NULL, NULL,
                             0);
    assert_int_equal(rc, TS_OK);

    l[0].name = "__name__"; l[0].name_len = 8;
    l[0].value = "up"; l[0].value_len = 2;
    l[1].name = "job"; l[1].name_len = 3;
    l[1].value = "abc"; l[1].value_len = 3;
    assert_int_equal(ts_selector_match(sel, l, 2), 1);

    l[1].value = "xbc";
    assert_int_equal(ts_selector_match(sel, l, 2), 0);

    ts_selector_free(sel);
    ts_promql_free(pq);
}


static void
test_ast_binary(void **state)
{
    ts_promql_t               *pq;
    const ts_promql_expr_t    *e;
    const ts_promql_binary_t  *b;

    (void) state;

    pq = tp_parse("a / on (x, y) group_left (z) b ^ 2 ^ 3 > bool 1");
    e = ts_promql_root(pq);

    /* > binds last; ^ to the right */
    assert_int_equal(e->kind, TS_PQ_BINARY);
    b = &e->u.binary;
    assert_int_equal(b->op, TS_PQ_OP_GTR);
    assert_true(b->return_bool);
    assert_false(b->has_matching);   /* vector > scalar: dropped */

    e = b->lhs;
    b = &e->u.binary;
    assert_int_equal(b->op, TS_PQ_OP_DIV);
    assert_true(b->has_matching);
    assert_true(b->on);
    assert_int_equal(b->card, TS_PQ_CARD_MANY_TO_ONE);
    assert_int_equal(b->matching.n, 2);
    assert_string_equal(b->matching.v[1].data, "y");
    assert_int_equal(b->include.n, 1);
    assert_string_equal(b->include.v[0].data, "z");

    e = b->rhs;
    assert_int_equal(e->u.binary.op, TS_PQ_OP_POW);
    assert_int_equal(e->u.binary.rhs->kind, TS_PQ_BINARY);
    assert_int_equal(e->type, TS_PQ_TYPE_VECTOR);
    ts_promql_free(pq);

    /* set operators become many-to-many */
    pq = tp_parse("a and b");
    assert_int_equal(ts_promql_root(pq)->u.binary.card,
                     TS_PQ_CARD_MANY_TO_MANY);
    ts_promql_free(pq);

    /* scalar op scalar is a scalar; -1 is a number, -(1) is not */
    pq = tp_parse("-1 + -(2)");
    e = ts_promql_root(pq);
    assert_int_equal(e->type, TS_PQ_TYPE_SCALAR);
    assert_int_equal(e->u.binary.lhs->kind, TS_PQ_NUMBER);
    assert_true(e->u.binary.lhs->u.number == -1);
    assert_int_equal(e->u.binary.rhs->kind, TS_PQ_UNARY);
    ts_promql_free(pq);
}


static void
test_ast_aggregate_subquery(void **state)
{
    ts_promql_t                  *pq;
    const ts_promql_expr_t       *e;
    const ts_promql_aggregate_t  *a;

    (void) state;

    pq = tp_parse("topk without (instance) (5, sum_over_time(x[1h:5m] "
                  "offset 1d @ end()))");
    e = ts_promql_root(pq);
    a = &e->u.aggregate;

    assert_int_equal(e->kind, TS_PQ_AGGREGATE);
    assert_int_equal(a->op, TS_PQ_AGG_TOPK);
    assert_true(a->without);
    assert_int_equal(a->grouping.n, 1);
    assert_int_equal(a->param->kind, TS_PQ_NUMBER);
    assert_true(a->param->u.number == 5);

    e = a->expr->u.call.args[0];
    assert_int_equal(e->kind, TS_PQ_SUBQUERY);
    assert_int_equal(e->u.subquery.range, 3600 * 1000);
    assert_int_equal(e->u.subquery.step, 5 * 60 * 1000);
    assert_int_equal(e->u.subquery.offset, 86400 * 1000);
    assert_int_equal(e->u.subquery.at_kind, TS_PQ_AT_END);
    assert_int_equal(e->u.subquery.expr->kind, TS_PQ_VECTOR);
    ts_promql_free(pq);
}


/* positions: bytes, lines counted like Prometheus's ParseErr */
static void
test_error_positions(void **state)
{
    static const struct {
        const char  *in;
        int          rc;
        uint32_t     pos;
        uint32_t     line;
        uint32_t     col;
        const char  *msg;
    } cases[] = {
        { "sum(\n  rate(foo)\n)", TS_ERR_INVALID, 12, 2, 8,
          "expected type range vector in call to function \"rate\", got "
          "instant vector" },
        { "foo +\n\n  bar{a=~\"(\"}", TS_ERR_INVALID, 13, 3, 7,
          "error parsing regexp" },
        { "# c\nfoo bar", TS_ERR_INVALID, 8, 2, 5,
          "unexpected identifier \"bar\"" },
        { "foo{a=\"b\"\n", TS_ERR_INVALID, 10, 2, 1,
          "unexpected end of input inside braces" },
        { "", TS_ERR_INVALID, 0, 1, 1, "no expression found in input" },
        { "\xff", TS_ERR_INVALID, 0, 1, 1,
          "unexpected character: '\xef\xbf\xbd'" },
    };

    int                 rc;
    size_t              i;
    ts_promql_t        *pq;
    ts_promql_error_t   err;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc = ts_promql_parse(cases[i].in, strlen(cases[i].in), NULL, &pq,
                             &err);
        tp_check(cases[i].in, rc == cases[i].rc);
        tp_check(cases[i].in, pq == NULL);
        tp_check(cases[i].in, err.rc == rc);
        tp_check(cases[i].in, err.pos == cases[i].pos);
        tp_check(cases[i].in, err.line == cases[i].line);
        tp_check(cases[i].in, err.col == cases[i].col);

        if (strstr(err.msg, cases[i].msg) == NULL) {
            fail_msg("%s: \"%s\" lacks \"%s\"", cases[i].in, err.msg,
                     cases[i].msg);
        }
    }

    /* err may be NULL */
    assert_int_equal(ts_promql_parse("(", 1, NULL, &pq, NULL),
                     TS_ERR_INVALID);
}


/* match[]: ParseMetricSelector()'s grammar; messages from a real 2.42 */
static void
test_selector(void **state)
{
    static const struct {
        const char  *in;
        int          nonempty;   /* -1: an error */
        uint32_t     nmatchers;
        uint32_t     col;
        const char  *msg;
    } cases[] = {
        { "up", 1, 1, 0, NULL },
        { "up{}", 1, 1, 0, NULL },
        { "up{a=\"b\",}", 1, 2, 0, NULL },
        { "{a=\"\"}", 0, 1, 0, NULL },
        { "{a=~\".*\"}", 0, 1, 0, NULL },
        { "{}", 0, 0, 0, NULL },
        { "up{__name__=\"x\"}", 1, 2, 0, NULL },
        { "offset", 1, 1, 0, NULL },
        { "sum", 1, 1, 0, NULL },
        { "rate", 1, 1, 0, NULL },
        { "up # c", 1, 1, 0, NULL },
        { "", -1, 0, 1, "unexpected end of input" },
        { " ", -1, 0, 2, "unexpected end of input" },
        { "rate(up[5m])", -1, 0, 5, "unexpected \"(\"" },
        { "up[5m]", -1, 0, 3, "unexpected \"[\"" },
        { "up offset 5m", -1, 0, 4, "unexpected <offset>" },
        { "up @ 5", -1, 0, 4, "unexpected \"<Item 57385>\" <op:@>" },
        { "up{a=\"b\"} or up", -1, 0, 11, "unexpected <op:or>" },
        { "(up)", -1, 0, 1, "unexpected \"(\"" },
        { "1", -1, 0, 1, "unexpected number \"1\"" },
        { "bool", -1, 0, 1, "unexpected <bool>" },
        { "atan2", -1, 0, 1, "unexpected <op:atan2>" },
        { "up{a}", -1, 0, 5, "unexpected \"}\" in label matching, "
          "expected label matching operator" },
    };

    int                      rc;
    size_t                   i;
    ts_promql_t             *pq;
    ts_promql_error_t        err;
    const ts_promql_expr_t  *e;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc = ts_promql_parse_selector(cases[i].in, strlen(cases[i].in), NULL,
                                      &pq, &err);

        if (cases[i].nonempty < 0) {
            tp_check(cases[i].in, rc == TS_ERR_INVALID && pq == NULL);
            tp_check(cases[i].in, err.line == 1 && err.col == cases[i].col);

            if (strcmp(err.msg, cases[i].msg) != 0) {
                fail_msg("%s: \"%s\", not \"%s\"", cases[i].in, err.msg,
                         cases[i].msg);
            }

            continue;
        }

        tp_check(cases[i].in, rc == TS_OK);
        e = ts_promql_root(pq);
        tp_check(cases[i].in, e->kind == TS_PQ_VECTOR);
        tp_check(cases[i].in, e->u.vector.nonempty == cases[i].nonempty);
        tp_check(cases[i].in, e->u.vector.nmatchers == cases[i].nmatchers);
        ts_promql_free(pq);
    }

    /* the same text as an expression is checked as one */
    assert_int_equal(ts_promql_parse("up{__name__=\"x\"}", 16, NULL, &pq,
                                     &err), TS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "metric name must not be set twice"));
}


static char *
tp_repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    char    *s, *p;
    size_t   i;

    s = malloc(strlen(head) + strlen(unit) * n + strlen(tail) + 1);
    assert_non_null(s);

    p = stpcpy(s, head);

    for (i = 0; i < n; i++) {
        p = stpcpy(p, unit);
    }

    strcpy(p, tail);

    return s;
}


static void
test_limits(void **state)
{
    int                  rc;
    char                *q, *c;
    size_t               i;
    ts_promql_t         *pq;
    ts_promql_error_t    err;
    ts_promql_limits_t   lim;

    (void) state;

    ts_promql_limits_default(&lim);

    /* nesting by parentheses, unary signs, calls, a ^ chain, a + chain */
    {
        static const char  *units[][3] = {
            { "", "(", "1" },
            { "", "-", "foo" },
            { "", "abs(", "foo" },
            { "1", " ^ 1", "" },
            { "1", " + 1", "" },
            { "", "sum(", "foo" },
        };

        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            q = tp_repeat(units[i][0], units[i][1], 100000, units[i][2]);
            c = strchr(units[i][1], '(') ? tp_repeat(q, ")", 100000, "")
                                         : strdup(q);
            assert_non_null(c);
            lim.max_input = strlen(c);

            rc = ts_promql_parse(c, strlen(c), &lim, &pq, &err);
            tp_check(units[i][1], rc == TS_ERR_LIMIT);
            tp_check(units[i][1], strstr(err.msg, "nests deeper") != NULL);

            free(q);
            free(c);
        }
    }

    /* at the limit it parses */
    ts_promql_limits_default(&lim);
    q = tp_repeat("", "(", lim.max_depth - 1, "1");
    c = tp_repeat(q, ")", lim.max_depth - 1, "");
    rc = ts_promql_parse(c, strlen(c), &lim, &pq, &err);
    assert_int_equal(rc, TS_OK);
    assert_true(ts_promql_root(pq)->height <= lim.max_depth);
    ts_promql_free(pq);
    free(q);
    free(c);

    /* input length */
    lim.max_input = 8;
    rc = ts_promql_parse("up + up + up", 12, &lim, &pq, &err);
    assert_int_equal(rc, TS_ERR_LIMIT);
    assert_null(pq);

    /* memory */
    ts_promql_limits_default(&lim);
    lim.max_memory = 64 * 1024;
    q = tp_repeat("{a=\"", "x", 200000, "\"}");
    rc = ts_promql_parse(q, strlen(q), &lim, &pq, &err);
    assert_int_equal(rc, TS_ERR_LIMIT);
    assert_null(pq);
    free(q);

    q = tp_repeat("x", " or x", 200, "");
    rc = ts_promql_parse(q, strlen(q), &lim, &pq, &err);
    assert_int_equal(rc, TS_OK);
    assert_true(ts_promql_memory(pq) <= lim.max_memory);
    ts_promql_free(pq);
    free(q);
}


static void
test_format_buffer(void **state)
{
    char          buf[8];
    size_t        n;
    ts_promql_t  *pq;

    (void) state;

    pq = tp_parse("sum by (job) (rate(x[5m]))");

    n = ts_promql_format(ts_promql_root(pq), NULL, 0);
    assert_int_equal(n, strlen("sum by (job) (rate(x[5m]))"));

    n = ts_promql_format(ts_promql_root(pq), buf, sizeof(buf));
    assert_int_equal(n, strlen("sum by (job) (rate(x[5m]))"));
    assert_string_equal(buf, "sum by ");

    ts_promql_free(pq);

    /* many matchers: sorted through the heap */
    {
        char  q[4096], *p, out[4096];

        p = stpcpy(q, "m{");
        for (n = 0; n < 100; n++) {
            p += sprintf(p, "%sl%02zu=\"v\"", n ? "," : "", 99 - n);
        }
        strcpy(p, "}");

        pq = tp_parse(q);
        (void) ts_promql_format(ts_promql_root(pq), out, sizeof(out));
        assert_memory_equal(out, "m{l00=\"v\",l01=\"v\",", 18);
        ts_promql_free(pq);
    }
}


static void
test_tables(void **state)
{
    int                      i;
    const ts_promql_func_t  *f;

    (void) state;

    for (i = 0; i < TS_PQ_FN_COUNT; i++) {
        f = ts_promql_func((ts_promql_fn_t) i);
        assert_non_null(f);
        assert_int_equal(f->id, i);
        assert_ptr_equal(ts_promql_func_lookup(f->name, strlen(f->name)), f);
    }

    assert_null(ts_promql_func(TS_PQ_FN_COUNT));
    assert_null(ts_promql_func_lookup("Rate", 4));
    assert_string_equal(ts_promql_op_name(TS_PQ_OP_UNLESS), "unless");
    assert_string_equal(ts_promql_agg_name(TS_PQ_AGG_COUNT_VALUES),
                        "count_values");
    assert_string_equal(ts_promql_type_name(TS_PQ_TYPE_MATRIX),
                        "range vector");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_ast_selector),
        cmocka_unit_test(test_ast_matchers_compile),
        cmocka_unit_test(test_ast_binary),
        cmocka_unit_test(test_ast_aggregate_subquery),
        cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_selector),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_format_buffer),
        cmocka_unit_test(test_tables),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
