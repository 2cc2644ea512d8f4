/*
 * Copyright (C) ngx_tsdb authors
 *
 * Push request decoders (ts_push.c) and the JSON reader under them
 * (ts_json.c): one named case per accepted form and per refusal kind.
 * Binary requests are packed with the protobuf-c generated encoder.
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
#include "ts_json.h"
#include "ts_push.h"
#include "pyroscope_push.pb-c.h"


typedef struct {
    const char         *name;
    const char         *body;
    int                 rc;
    const char         *err;        /* a substring of the reason */
} t_case_t;


static const t_case_t  t_json_cases[] = {
    { "minimal",
      "{\"series\":[{\"labels\":[{\"name\":\"__name__\",\"value\":\"x\"}],"
      "\"samples\":[{\"rawProfile\":\"aGVsbG8=\",\"ID\":\"1\"}]}]}",
      TS_OK, NULL },
    { "whitespace, unknown members, nulls, proto names",
      " { \"series\" : [ { \"labels\" : null , \"x\" : [ 1.5e3 , true ,"
      " { } ] , \"samples\" : [ { \"raw_profile\" : \"aGVsbG8\" } ] ,"
      " \"annotations\" : [ { \"key\" : \"k\" } ] } ] , \"y\" : null } ",
      TS_OK, NULL },
    { "no series", "{}", TS_ERR_INVALID, "without series" },
    { "empty series array", "{\"series\":[]}", TS_ERR_INVALID,
      "without series" },
    { "not an object", "[]", TS_ERR_CORRUPT, "expected an object" },
    { "trailing data", "{\"series\":[{}]} x", TS_ERR_CORRUPT,
      "trailing data" },
    { "unterminated string", "{\"series", TS_ERR_CORRUPT,
      "unterminated string" },
    { "bad escape", "{\"series\":[{\"labels\":[{\"name\":\"\\q\"}]}]}",
      TS_ERR_CORRUPT, "bad escape" },
    { "control character", "{\"a\":\"x\ty\"}", TS_ERR_CORRUPT,
      "control character" },
    { "bad number", "{\"a\":-}", TS_ERR_CORRUPT, "bad number" },
    { "bad literal", "{\"a\":nul}", TS_ERR_CORRUPT, "bad literal" },
    { "label value not a string",
      "{\"series\":[{\"labels\":[{\"name\":\"a\",\"value\":1}]}]}",
      TS_ERR_INVALID, "label value is not a string" },
    { "bad base64",
      "{\"series\":[{\"samples\":[{\"rawProfile\":\"a$==\"}]}]}",
      TS_ERR_INVALID, "base64" },
    { "base64 of impossible length",
      "{\"series\":[{\"samples\":[{\"rawProfile\":\"aGVsb\"}]}]}",
      TS_ERR_INVALID, "base64" },
    { "too many labels",
      "{\"series\":[{\"labels\":[{},{},{},{},{}]}]}", TS_ERR_LIMIT,
      "too many labels" },
    { "label too long",
      "{\"series\":[{\"labels\":[{\"name\":\"0123456789abcdefX\"}]}]}",
      TS_ERR_LIMIT, "longer than 16" },
    { "too many series", "{\"series\":[{},{},{},{}]}", TS_ERR_LIMIT,
      "too many series" },
    { "too many profiles",
      "{\"series\":[{\"samples\":[{},{}]},{\"samples\":[{},{}]}]}",
      TS_ERR_LIMIT, "too many profiles" },
};


static void
t_limits(ts_push_limits_t *lim)
{
    lim->max_series = 3;
    lim->max_profiles = 3;
    lim->max_labels = 4;
    lim->max_label_len = 16;
}


static void
t_json_table(void **state)
{
    int                rc;
    char               err[TS_PUSH_ERR_MAX];
    size_t             i;
    ts_push_t          p;
    ts_push_limits_t   lim;
    const t_case_t    *c;

    (void) state;
    t_limits(&lim);

    for (i = 0; i < sizeof(t_json_cases) / sizeof(t_json_cases[0]); i++) {
        c = &t_json_cases[i];
        err[0] = '\0';

        rc = ts_push_decode_json(&p, c->body, strlen(c->body), &lim, NULL,
                                 err, sizeof(err));
        if (rc != c->rc || (c->err && strstr(err, c->err) == NULL)) {
            fail_msg("%s: rc %d (want %d), \"%s\"", c->name, rc, c->rc,
                     err);
        }

        ts_push_free(&p);
    }
}


static void
t_json_values(void **state)
{
    char        err[TS_PUSH_ERR_MAX];
    ts_push_t   p;
    const char *body =
        "{\"series\":[{\"labels\":[{\"name\":\"service_name\","
        "\"value\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\/\"},"
        "{\"name\":\"lone\",\"value\":\"\\udc00\"}],"
        "\"samples\":[{\"rawProfile\":\"AP8-_w\"},"
        "{\"rawProfile\":\"AP8+/w==\"},{\"ID\":\"none\"}]}]}";

    (void) state;

    assert_int_equal(ts_push_decode_json(&p, body, strlen(body), NULL, NULL,
                                         err, sizeof(err)),
                     TS_OK);
    assert_int_equal(p.nseries, 1);
    assert_int_equal(p.nprofiles, 3);
    assert_int_equal(p.series[0].nlabels, 2);

    assert_int_equal(p.series[0].labels[0].value_len,
                     strlen("caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" /"));
    assert_memory_equal(p.series[0].labels[0].value,
                        "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" /",
                        p.series[0].labels[0].value_len);
    assert_int_equal(p.series[0].labels[1].value_len, 3);
    assert_memory_equal(p.series[0].labels[1].value, "\xef\xbf\xbd", 3);

    /* URL and standard alphabets, with and without padding */
    assert_int_equal(p.series[0].profiles[0].len, 4);
    assert_memory_equal(p.series[0].profiles[0].data, "\x00\xff\x3e\xff",
                        4);
    assert_int_equal(p.series[0].profiles[1].len, 4);
    assert_memory_equal(p.series[0].profiles[1].data, "\x00\xff\x3e\xff",
                        4);
    assert_int_equal(p.series[0].profiles[2].len, 0);

    ts_push_free(&p);
}


static void
t_json_depth(void **state)
{
    char        err[TS_PUSH_ERR_MAX], *b;
    size_t      i, n;
    ts_push_t   p;

    (void) state;

    n = 10000;
    b = malloc(2 * n + 16);
    assert_non_null(b);

    strcpy(b, "{\"series\":[{\"x\":");
    i = strlen(b);
    memset(b + i, '[', n);
    b[i + n] = '\0';

    assert_int_equal(ts_push_decode_json(&p, b, strlen(b), NULL, NULL, err,
                                         sizeof(err)),
                     TS_ERR_CORRUPT);
    assert_non_null(strstr(err, "nested too deeply"));

    ts_push_free(&p);
    free(b);
}


static void
t_proto(void **state)
{
    char                         err[TS_PUSH_ERR_MAX];
    size_t                       len;
    uint8_t                     *buf;
    ts_push_t                    p;
    ts_push_limits_t             lim;
    Push__V1__RawSample          s[2], *sp[2];
    Push__V1__PushRequest        req;
    Types__V1__LabelPair         l[2], *lp[2];
    Push__V1__RawProfileSeries   ser, *serp;

    (void) state;

    types__v1__label_pair__init(&l[0]);
    types__v1__label_pair__init(&l[1]);
    l[0].name = "__name__";
    l[0].value = "process_cpu";
    l[1].name = "service_name";
    l[1].value = "myapp";
    lp[0] = &l[0];
    lp[1] = &l[1];

    push__v1__raw_sample__init(&s[0]);
    push__v1__raw_sample__init(&s[1]);
    s[0].raw_profile.data = (uint8_t *) "\x1f\x8b\x08";
    s[0].raw_profile.len = 3;
    s[1].raw_profile.data = (uint8_t *) "\x0a\x00";
    s[1].raw_profile.len = 2;
    sp[0] = &s[0];
    sp[1] = &s[1];

    push__v1__raw_profile_series__init(&ser);
    ser.n_labels = 2;
    ser.labels = lp;
    ser.n_samples = 2;
    ser.samples = sp;
    serp = &ser;

    push__v1__push_request__init(&req);
    req.n_series = 1;
    req.series = &serp;

    len = push__v1__push_request__get_packed_size(&req);
    buf = malloc(len);
    assert_non_null(buf);
    push__v1__push_request__pack(&req, buf);

    assert_int_equal(ts_push_decode_proto(&p, buf, len, NULL, NULL, err,
                                          sizeof(err)),
                     TS_OK);
    assert_int_equal(p.nseries, 1);
    assert_int_equal(p.nprofiles, 2);
    assert_int_equal(p.series[0].nlabels, 2);
    assert_int_equal(p.series[0].labels[1].value_len, 5);
    assert_memory_equal(p.series[0].labels[1].value, "myapp", 5);
    assert_int_equal(p.series[0].profiles[0].len, 3);
    assert_memory_equal(p.series[0].profiles[1].data, "\x0a\x00", 2);
    ts_push_free(&p);

    t_limits(&lim);
    lim.max_profiles = 1;
    assert_int_equal(ts_push_decode_proto(&p, buf, len, &lim, NULL, err,
                                          sizeof(err)),
                     TS_ERR_LIMIT);
    assert_non_null(strstr(err, "too many profiles"));
    ts_push_free(&p);

    /* truncated: malformed */
    assert_int_equal(ts_push_decode_proto(&p, buf, len - 1, NULL, NULL,
                                          err, sizeof(err)),
                     TS_ERR_CORRUPT);
    ts_push_free(&p);

    /* empty: no series */
    assert_int_equal(ts_push_decode_proto(&p, buf, 0, NULL, NULL, err,
                                          sizeof(err)),
                     TS_ERR_INVALID);
    ts_push_free(&p);

    free(buf);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(t_json_table),
        cmocka_unit_test(t_json_values),
        cmocka_unit_test(t_json_depth),
        cmocka_unit_test(t_proto),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
