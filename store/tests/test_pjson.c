/*
 * Copyright (C) ngx_tsdb authors
 *
 * protojson over protobuf-c descriptors (ts_pjson.c), table-driven:
 * each case is a JSON body for a querier.v1 request and either the JSON
 * protojson.Marshal writes back for the decoded message (defaults left
 * out, 64-bit integers quoted, enums by name) or the error.  Then the
 * encoding of a response with nested and repeated messages, bytes and
 * doubles, and allocator failure at every allocation.
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

#include "profile.pb-c.h"
#include "pyroscope_querier.pb-c.h"
#include "pyroscope_types.pb-c.h"
#include "ts_error.h"
#include "ts_pjson.h"


typedef struct {
    const char                         *name;
    const ProtobufCMessageDescriptor   *d;
    const char                         *in;
    int                                 rc;
    const char                         *want;   /* JSON out, or the error */
} tpj_case_t;


#define TPJ_SMS  &querier__v1__select_merge_stacktraces_request__descriptor
#define TPJ_SS   &querier__v1__select_series_request__descriptor
#define TPJ_LV   &types__v1__label_values_request__descriptor
#define TPJ_PR   &perftools__profiles__profile__descriptor
#define TPJ_SMSR                                                          \
    &querier__v1__select_merge_stacktraces_response__descriptor


static const tpj_case_t  tpj_cases[] = {
    { "JSON names, quoted and bare integers, enum by name", TPJ_SMS,
      "{\"profileTypeID\":\"a:b:c:d:e\",\"labelSelector\":\"{}\","
      "\"start\":\"1700000000000\",\"end\":1700000001000,"
      "\"maxNodes\":\"16\",\"format\":\"PROFILE_FORMAT_FLAMEGRAPH\"}",
      TS_OK,
      "{\"profileTypeID\":\"a:b:c:d:e\",\"labelSelector\":\"{}\","
      "\"start\":\"1700000000000\",\"end\":\"1700000001000\","
      "\"maxNodes\":\"16\",\"format\":\"PROFILE_FORMAT_FLAMEGRAPH\"}" },
    { "proto names too; defaults and nulls left out", TPJ_SMS,
      " { \"profile_typeID\" : \"x\" , \"max_nodes\": 0, \"start\": null,"
      " \"format\": 4 } ", TS_OK,
      "{\"profileTypeID\":\"x\",\"format\":\"PROFILE_FORMAT_PPROF\"}" },
    { "unknown fields are skipped, whatever they hold", TPJ_SMS,
      "{\"other\":{\"a\":[1,true,null,\"x\",{\"b\":[]}]},\"end\":\"5\"}",
      TS_OK, "{\"end\":\"5\"}" },
    { "nested messages and repeated strings", TPJ_SMS,
      "{\"stackTraceSelector\":{\"callSite\":[{\"name\":\"main\"},"
      "{\"name\":\"f\"}],\"goPgo\":{\"keepLocations\":2}},"
      "\"profileIdSelector\":[\"u1\",\"u2\"]}", TS_OK,
      "{\"stackTraceSelector\":{\"callSite\":[{\"name\":\"main\"},"
      "{\"name\":\"f\"}],\"goPgo\":{\"keepLocations\":2}},"
      "\"profileIdSelector\":[\"u1\",\"u2\"]}" },
    { "escapes and surrogate pairs to UTF-8", TPJ_LV,
      "{\"name\":\"a\\\"\\\\\\/\\n\\u00e9\\ud83d\\ude00\"}", TS_OK,
      "{\"name\":\"a\\\"\\\\/\\n\xc3\xa9\xf0\x9f\x98\x80\"}" },
    { "doubles: exponent, integral, strings", TPJ_SS,
      "{\"step\":1.5e1,\"limit\":\"2e2\",\"groupBy\":[]}", TS_OK,
      "{\"step\":15,\"limit\":\"200\"}" },
    { "double NaN as a string", TPJ_SS, "{\"step\":\"NaN\"}", TS_OK,
      "{\"step\":\"NaN\"}" },
    { "int64 limits", TPJ_SS,
      "{\"start\":\"-9223372036854775808\",\"end\":9223372036854775807}",
      TS_OK, "{\"start\":\"-9223372036854775808\","
      "\"end\":\"9223372036854775807\"}" },
    { "bytes in base64, URL-safe and unpadded accepted", TPJ_SMSR,
      "{\"tree\":\"-_8AQQ\"}", TS_OK, "{\"tree\":\"+/8AQQ==\"}" },
    { "bad base64", TPJ_SMSR, "{\"tree\":\"A\"}", TS_ERR_INVALID,
      "invalid JSON at offset 11: bad base64" },
    { "uint64 max and bools in repeated messages", TPJ_PR,
      "{\"mapping\":[{\"id\":1,\"memoryLimit\":\"18446744073709551615\","
      "\"hasFunctions\":true}],\"stringTable\":[\"\",\"x\"]}", TS_OK,
      "{\"mapping\":[{\"id\":\"1\",\"memoryLimit\":\"18446744073709551615\","
      "\"hasFunctions\":true}],\"stringTable\":[\"\",\"x\"]}" },
    { "int64 out of range", TPJ_SS, "{\"start\":9223372036854775808}",
      TS_ERR_INVALID, "invalid JSON at offset 9: not an integer in range" },
    { "a fraction for an integer", TPJ_SS, "{\"limit\":1.5}",
      TS_ERR_INVALID, "invalid JSON at offset 9: not an integer in range" },
    { "an unknown enum name", TPJ_SMS, "{\"format\":\"NOPE\"}",
      TS_ERR_INVALID, "invalid JSON at offset 10: unknown enum value" },
    { "a duplicate field", TPJ_SMS, "{\"end\":1,\"end\":2}",
      TS_ERR_INVALID, "invalid JSON at offset 15: duplicate field" },
    { "the same field by both names", TPJ_SMS,
      "{\"max_nodes\":1,\"maxNodes\":2}",
      TS_ERR_INVALID, "invalid JSON at offset 26: duplicate field" },
    { "a string where a list goes", TPJ_LV, "{\"matchers\":\"{}\"}",
      TS_ERR_INVALID, "invalid JSON at offset 12: expected an array" },
    { "invalid UTF-8", TPJ_LV, "{\"name\":\"\xff\"}",
      TS_ERR_INVALID, "invalid JSON at offset 8: invalid UTF-8 or NUL in a"
      " string" },
    { "a NUL escape", TPJ_LV, "{\"name\":\"a\\u0000\"}",
      TS_ERR_INVALID, "invalid JSON at offset 8: invalid UTF-8 or NUL in a"
      " string" },
    { "trailing data", TPJ_LV, "{} x", TS_ERR_INVALID,
      "invalid JSON at offset 3: trailing data" },
    { "truncated", TPJ_LV, "{\"name\":", TS_ERR_INVALID,
      "invalid JSON at offset 8: expected a string" },
    { "not an object", TPJ_LV, "[]", TS_ERR_INVALID,
      "invalid JSON at offset 0: expected an object" },
    { "nested too deeply", TPJ_SMS,
      "{\"x\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
      "]]]]]]}", TS_ERR_INVALID,
      "invalid JSON at offset 36: nested too deeply" },
};


static void
test_cases(void **state)
{
    int                 rc;
    char                err[256];
    size_t              i;
    ts_buf_t            out;
    ProtobufCMessage   *m;
    const tpj_case_t   *c;

    (void) state;

    for (i = 0; i < sizeof(tpj_cases) / sizeof(tpj_cases[0]); i++) {
        c = &tpj_cases[i];
        print_message("case: %s\n", c->name);

        rc = ts_pjson_decode(c->d, (const uint8_t *) c->in, strlen(c->in),
                             NULL, &m, err, sizeof(err));
        assert_int_equal(rc, c->rc);

        if (rc != TS_OK) {
            assert_null(m);
            assert_string_equal(err, c->want);
            continue;
        }

        memset(&out, 0, sizeof(out));
        assert_int_equal(ts_pjson_encode(m, &out), TS_OK);
        assert_int_equal(ts_buf_reserve(&out, 1), TS_OK);
        out.p[out.len] = '\0';
        assert_string_equal((char *) out.p, c->want);

        free(out.p);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}


static void
test_values(void **state)
{
    char                                        err[256];
    const char                                 *in;
    Querier__V1__SelectSeriesRequest           *ss;

    (void) state;

    in = "{\"profileTypeID\":\"t\",\"step\":0.25,\"groupBy\":[\"a\",\"b\"],"
         "\"aggregation\":\"TIME_SERIES_AGGREGATION_TYPE_AVERAGE\"}";

    assert_int_equal(ts_pjson_decode(TPJ_SS, (const uint8_t *) in,
                                     strlen(in), NULL,
                                     (ProtobufCMessage **) &ss, err,
                                     sizeof(err)), TS_OK);
    assert_string_equal(ss->profile_typeid, "t");
    assert_true(ss->step == 0.25);
    assert_int_equal(ss->n_group_by, 2);
    assert_string_equal(ss->group_by[1], "b");
    assert_int_equal(ss->aggregation, 1);
    assert_string_equal(ss->label_selector, "");

    protobuf_c_message_free_unpacked(&ss->base, NULL);
}


static void
test_encode_response(void **state)
{
    ts_buf_t                           out;
    int64_t                            v[4] = { 0, 10, 3, 0 };
    char                              *names[1] = { "total" };
    Querier__V1__Level                 lv = QUERIER__V1__LEVEL__INIT;
    Querier__V1__Level                *lvp[1] = { &lv };
    Querier__V1__FlameGraph            fg = QUERIER__V1__FLAME_GRAPH__INIT;
    Querier__V1__SelectMergeStacktracesResponse  r =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_RESPONSE__INIT;
    uint8_t                            tree[4] = { 0xfb, 0xff, 0x00, 0x41 };

    (void) state;

    lv.values = v;
    lv.n_values = 4;
    fg.names = names;
    fg.n_names = 1;
    fg.levels = lvp;
    fg.n_levels = 1;
    fg.total = 10;
    fg.max_self = 3;
    r.flamegraph = &fg;
    r.tree.data = tree;
    r.tree.len = 4;

    memset(&out, 0, sizeof(out));
    assert_int_equal(ts_pjson_encode(&r.base, &out), TS_OK);
    assert_int_equal(ts_buf_reserve(&out, 1), TS_OK);
    out.p[out.len] = '\0';

    assert_string_equal((char *) out.p,
        "{\"flamegraph\":{\"names\":[\"total\"],\"levels\":[{\"values\":"
        "[\"0\",\"10\",\"3\",\"0\"]}],\"total\":\"10\",\"maxSelf\":\"3\"},"
        "\"tree\":\"+/8AQQ==\"}");

    free(out.p);
}


/* every allocation failing in turn: an error, nothing leaked (ASan) */

static int  tpj_budget;

static void *
tpj_alloc(void *data, size_t size)
{
    (void) data;

    if (tpj_budget-- <= 0) {
        return NULL;
    }

    return malloc(size);
}


static void
tpj_free(void *data, void *p)
{
    (void) data;

    free(p);
}


static void
test_allocator(void **state)
{
    int                  rc, i;
    const char          *in;
    ProtobufCMessage    *m;
    ProtobufCAllocator   a = { tpj_alloc, tpj_free, NULL };

    (void) state;

    in = tpj_cases[3].in;

    for (i = 0; ; i++) {
        tpj_budget = i;
        rc = ts_pjson_decode(TPJ_SMS, (const uint8_t *) in, strlen(in), &a,
                             &m, NULL, 0);

        if (rc == TS_OK) {
            protobuf_c_message_free_unpacked(m, &a);
            break;
        }

        assert_int_equal(rc, TS_ERR_NOMEM);
        assert_null(m);
    }

    assert_true(i > 5);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_encode_response),
        cmocka_unit_test(test_allocator),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
