/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target: the Connect request decoders of tsdb_profile_query.
 * The first byte picks the request type (the six querier.v1 requests,
 * plus perftools' Profile for the deepest nesting and every scalar
 * type); the rest is the body, decoded as protojson by ts_pjson_decode
 * and as protobuf by protobuf-c, as the handler does.  The label
 * selectors a decoded request carries go through the PromQL parser, as
 * the handler parses them.  An accepted JSON message must encode back
 * to JSON that decodes to the same protobuf bytes, and encoding that
 * again must give the same JSON (a fixed point).  Everything is freed:
 * ASan's leak check catches what the decoder would leak on errors.
 *
 * Seeds (fuzz/corpus/fuzz_pquery/): the requests t/052 sends, as
 * Grafana's Pyroscope data source sends them.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "profile.pb-c.h"
#include "pyroscope_querier.pb-c.h"
#include "pyroscope_types.pb-c.h"
#include "ts_error.h"
#include "ts_pjson.h"
#include "ts_promql.h"


#define fz_assert(cond)                                                   \
    do {                                                                  \
        if (!(cond)) {                                                    \
            abort();                                                      \
        }                                                                 \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const ProtobufCMessageDescriptor  *fz_descs[] = {
    &querier__v1__profile_types_request__descriptor,
    &types__v1__label_names_request__descriptor,
    &types__v1__label_values_request__descriptor,
    &querier__v1__select_series_request__descriptor,
    &querier__v1__select_merge_stacktraces_request__descriptor,
    &querier__v1__select_merge_profile_request__descriptor,
    &perftools__profiles__profile__descriptor,
};


static void
fz_selector(const char *s)
{
    ts_promql_t  *pq;

    if (s != NULL && ts_promql_parse(s, strlen(s), NULL, &pq, NULL)
                     == TS_OK)
    {
        ts_promql_free(pq);
    }
}


/* the selectors in the request, as the handler reads them */

static void
fz_selectors(const ProtobufCMessage *m)
{
    size_t                                       i;
    const Types__V1__LabelNamesRequest          *ln;
    const Types__V1__LabelValuesRequest         *lv;
    const Querier__V1__SelectSeriesRequest      *ss;
    const Querier__V1__SelectMergeStacktracesRequest  *ms;
    const Querier__V1__SelectMergeProfileRequest      *mp;

    if (m->descriptor == &types__v1__label_names_request__descriptor) {
        ln = (const void *) m;
        for (i = 0; i < ln->n_matchers; i++) {
            fz_selector(ln->matchers[i]);
        }

    } else if (m->descriptor == &types__v1__label_values_request__descriptor)
    {
        lv = (const void *) m;
        for (i = 0; i < lv->n_matchers; i++) {
            fz_selector(lv->matchers[i]);
        }

    } else if (m->descriptor
               == &querier__v1__select_series_request__descriptor)
    {
        ss = (const void *) m;
        fz_selector(ss->label_selector);

    } else if (m->descriptor
               == &querier__v1__select_merge_stacktraces_request__descriptor)
    {
        ms = (const void *) m;
        fz_selector(ms->label_selector);

    } else if (m->descriptor
               == &querier__v1__select_merge_profile_request__descriptor)
    {
        mp = (const void *) m;
        fz_selector(mp->label_selector);
    }
}


static uint8_t *
fz_pack(const ProtobufCMessage *m, size_t *len)
{
    uint8_t  *b;

    *len = protobuf_c_message_get_packed_size(m);
    b = malloc(*len + 1);
    fz_assert(b != NULL);
    fz_assert(protobuf_c_message_pack(m, b) == *len);

    return b;
}


static void
fz_json(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
    int                rc;
    char               err[256];
    size_t             l1, l2;
    uint8_t           *b1, *b2;
    ts_buf_t           j1, j2;
    ProtobufCMessage  *m, *m2;

    rc = ts_pjson_decode(d, p, n, NULL, &m, err, sizeof(err));
    if (rc != TS_OK) {
        fz_assert(m == NULL && err[0] != '\0');
        return;
    }

    fz_selectors(m);

    memset(&j1, 0, sizeof(j1));
    memset(&j2, 0, sizeof(j2));

    fz_assert(ts_pjson_encode(m, &j1) == TS_OK);
    fz_assert(ts_pjson_decode(d, j1.p, j1.len, NULL, &m2, err, sizeof(err))
              == TS_OK);
    fz_assert(ts_pjson_encode(m2, &j2) == TS_OK);

    b1 = fz_pack(m, &l1);
    b2 = fz_pack(m2, &l2);

    fz_assert(j1.len == j2.len && memcmp(j1.p, j2.p, j1.len) == 0);

    /* NaN payloads aside, the same message: the same bytes */
    if (d != &querier__v1__select_series_request__descriptor) {
        fz_assert(l1 == l2 && memcmp(b1, b2, l1) == 0);
    }

    free(b1);
    free(b2);
    free(j1.p);
    free(j2.p);
    protobuf_c_message_free_unpacked(m, NULL);
    protobuf_c_message_free_unpacked(m2, NULL);
}


static void
fz_proto(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
    ts_buf_t           j;
    ProtobufCMessage  *m;

    m = protobuf_c_message_unpack(d, NULL, n, p);
    if (m == NULL) {
        return;
    }

    fz_selectors(m);

    memset(&j, 0, sizeof(j));
    fz_assert(ts_pjson_encode(m, &j) == TS_OK);

    free(j.p);
    protobuf_c_message_free_unpacked(m, NULL);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const ProtobufCMessageDescriptor  *d;

    if (size < 1) {
        return 0;
    }

    d = fz_descs[data[0] % (sizeof(fz_descs) / sizeof(fz_descs[0]))];

    fz_json(d, data + 1, size - 1);
    fz_proto(d, data + 1, size - 1);

    return 0;
}
