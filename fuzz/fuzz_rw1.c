/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target: remote-write 1.0 (and, included by fuzz_rw2.c with
 * FZ_RW_VERSION set, 2.0).  The input is a request body as received:
 * snappy block -> ts_rw_uncompress() (bounded) -> ts_rw_decode() ->
 * every series checked against what ts_rw.h promises (abort() on a
 * broken promise).  The same bytes are also decoded as an already
 * decompressed body, so mutations that break snappy still reach the
 * protobuf decoder, and fed to the header parsers.  For 1.0, a body
 * that decodes is decoded again with an unknown field appended, which
 * the fast path declines: both must agree (store/tests/rw_same.h); and
 * again with a lookup of known series (ts_rw_known_pt) that finds its
 * own accepted series, which must not change any answer.
 *
 * Seeds (fuzz/corpus/fuzz_rw1/): requests Prometheus 2.42 sent
 * (t/data/rw/) plus bodies built with protobuf-c's encoder and
 * snappy_compress() that carry histograms, exemplars and metadata.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_rw.h"
#include "tests/rw_same.h"


#ifndef FZ_RW_VERSION
#define FZ_RW_VERSION  TS_RW_V1
#endif

#define FZ_BODY_MAX    (4 * 1024 * 1024)

#define fz_assert(cond)                                                   \
    do {                                                                  \
        if (!(cond)) {                                                    \
            abort();                                                      \
        }                                                                 \
    } while (0)


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fz_labels(const ts_rw_series_t *s, const ts_limits_t *lim)
{
    const ts_label_t  *l;
    uint32_t           i;

    fz_assert(s->nlabels <= lim->max_label_names_per_series);
    fz_assert(ts_labels_sorted(s->labels, s->nlabels));
    fz_assert(s->hash == ts_labels_hash(s->labels, s->nlabels));
    fz_assert(ts_labels_find(s->labels, s->nlabels, TS_METRIC_NAME_LABEL,
                             TS_METRIC_NAME_LABEL_LEN) != NULL);

    for (i = 0; i < s->nlabels; i++) {
        l = &s->labels[i];
        fz_assert(l->value_len > 0);
        fz_assert(l->name_len <= lim->max_label_name_length);
        fz_assert(l->value_len <= lim->max_label_value_length);
        fz_assert(ts_label_name_valid(l->name, l->name_len));
        fz_assert(ts_utf8_valid(l->value, l->value_len));
        fz_assert(i == 0 || ts_labels_cmp(&s->labels[i - 1], 1, l, 1) < 0);
    }
}


static uint64_t
fz_bits(double d)
{
    uint64_t  v;

    memcpy(&v, &d, sizeof(v));

    return v;
}


/* reads everything an accepted series points at */
static uint64_t
fz_touch(const ts_rw_series_t *s)
{
    const ts_rw_histogram_t  *h;
    uint64_t                  x;
    uint32_t                  i, j;

    x = 0;

    for (i = 0; i < s->nsamples; i++) {
        x += s->samples[i].v + (uint64_t) s->samples[i].t;
        x += s->start_ts ? (uint64_t) s->start_ts[i] : 0;
    }

    for (i = 0; i < s->nhistograms; i++) {
        h = &s->histograms[i];
        fz_assert(h->schema == TS_RW_SCHEMA_CUSTOM
                  || (h->schema >= TS_RW_SCHEMA_MIN
                      && h->schema <= TS_RW_SCHEMA_MAX));

        for (j = 0; j < h->n_pos; j++) {
            x += h->is_float ? fz_bits(h->pos_counts[j])
                             : (uint64_t) h->pos_deltas[j];
        }

        for (j = 0; j < h->n_neg; j++) {
            x += h->is_float ? fz_bits(h->neg_counts[j])
                             : (uint64_t) h->neg_deltas[j];
        }

        for (j = 0; j < h->n_pos_spans; j++) {
            x += h->pos_spans[j].length;
        }

        for (j = 0; j < h->n_neg_spans; j++) {
            x += h->neg_spans[j].length;
        }

        for (j = 0; j < h->n_custom; j++) {
            x += fz_bits(h->custom_values[j]);
        }
    }

    for (i = 0; i < s->nexemplars; i++) {
        x += ts_labels_hash(s->exemplars[i].labels, s->exemplars[i].nlabels);
    }

    if (s->meta != NULL) {
        x += ts_xxh64(s->meta->help, s->meta->help_len, 0)
             + ts_xxh64(s->meta->unit, s->meta->unit_len, 0);
    }

    return x;
}


static void
fz_check(const ts_rw_request_t *req, const ts_limits_t *lim)
{
    const ts_rw_series_t  *s;
    uint64_t               samples, rejected;
    uint32_t               i;

    samples = 0;
    rejected = 0;

    fz_assert(req->nseries == req->decoded.series);
    fz_assert(req->rejected.series <= req->decoded.series);
    fz_assert(req->rejected.samples <= req->decoded.samples);
    fz_assert(req->rejected.exemplars <= req->decoded.exemplars);
    fz_assert(req->rejected.metadata <= req->decoded.metadata);
    fz_assert((req->rejected.series == 0)
              == (req->why.code == TS_REJECT_NONE));
    fz_assert(strlen(req->why.msg) < TS_REJECT_MSG_SIZE);

    for (i = 0; i < req->nseries; i++) {
        s = &req->series[i];
        samples += s->nsamples;

        if (s->reject != TS_REJECT_NONE) {
            rejected++;
            continue;
        }

        fz_labels(s, lim);
        (void) fz_touch(s);
    }

    for (i = 0; i < req->nmetadata; i++) {
        fz_assert(req->metadata[i].help_len <= lim->max_metadata_length);
        fz_assert(ts_rw_metadata_find(req, req->metadata[i].name,
                                      req->metadata[i].name_len) != NULL);
    }

    fz_assert(samples == req->decoded.samples);
    fz_assert(rejected == req->rejected.series);
}


/* the v1 fast path against protobuf-c, see rw_same.h */
static void
fz_same(const ts_rw_request_t *req, const uint8_t *body, size_t len,
    const ts_limits_t *lim)
{
    int               rc;
    uint8_t          *slow;
    ts_rw_request_t   other;

    slow = malloc(len + RW_SAME_SUFFIX_LEN);
    fz_assert(slow != NULL);

    memcpy(slow, body, len);
    memcpy(slow + len, RW_SAME_SUFFIX, RW_SAME_SUFFIX_LEN);

    ts_rw_request_init(&other, NULL, lim);

    /* protobuf-c needs more memory: it may run out of the budget */

    rc = ts_rw_decode(&other, TS_RW_V1, slow, len + RW_SAME_SUFFIX_LEN);
    fz_assert(rc == TS_OK || rc == TS_ERR_LIMIT);
    fz_assert(rc != TS_OK || rw_same(req, &other));

    ts_rw_request_free(&other);
    free(slow);
}


/*
 * With req->known over req's own accepted series (rw_same.h), under the
 * same limits and under limits those series break: the same answers.
 * The stand-in store is a linear search, so only for smaller requests.
 */
static void
fz_known(const ts_rw_request_t *store, const uint8_t *body, size_t len,
    const ts_limits_t *lim)
{
    int               rc1, rc2, i;
    rw_known_t        k;
    ts_limits_t       strict;
    ts_rw_request_t   a, b;
    const ts_limits_t *l;

    if (store->nseries > 512) {
        return;
    }

    strict = *lim;
    strict.max_label_names_per_series = 3;
    strict.max_label_value_length = 8;

    for (i = 0; i < 2; i++) {
        l = i ? &strict : lim;

        k.store = store;
        k.found = 0;

        ts_rw_request_init(&a, NULL, l);
        rc1 = ts_rw_decode(&a, TS_RW_V1, body, len);

        ts_rw_request_init(&b, NULL, l);
        b.known = rw_known;
        b.known_data = &k;
        rc2 = ts_rw_decode(&b, TS_RW_V1, body, len);

        fz_assert(rc1 == rc2);
        fz_assert(rc1 != TS_OK || rw_same(&a, &b));

        if (rc2 == TS_OK) {
            fz_check(&b, l);
        }

        ts_rw_request_free(&a);
        ts_rw_request_free(&b);
    }
}


static void
fz_decode(const uint8_t *body, size_t len, const ts_limits_t *lim)
{
    ts_rw_request_t  req;
    int              rc;

    ts_rw_request_init(&req, NULL, lim);

    rc = ts_rw_decode(&req, FZ_RW_VERSION, body, len);

    if (rc == TS_OK) {
        fz_check(&req, lim);

        if (FZ_RW_VERSION == TS_RW_V1) {
            fz_same(&req, body, len, lim);
            fz_known(&req, body, len, lim);
        }

    } else {
        fz_assert(rc == TS_ERR_CORRUPT || rc == TS_ERR_LIMIT
                  || rc == TS_ERR_INVALID);
        fz_assert(req.why.code != TS_REJECT_NONE);
    }

    fz_assert(req.used <= lim->max_decode_memory);

    ts_rw_request_free(&req);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_limits_t  lim;
    ts_reject_t  why;
    uint8_t     *body;
    size_t       len;
    int          rc;

    ts_limits_default(&lim);
    lim.max_body_size = FZ_BODY_MAX;
    lim.max_decode_memory = 16 * FZ_BODY_MAX;

    (void) ts_rw_content_type((const char *) data, size < 256 ? size : 256);
    (void) ts_rw_content_encoding((const char *) data, size < 64 ? size : 64);

    rc = ts_rw_uncompress(data, size, lim.max_body_size, NULL, &body, &len,
                          &why);

    if (rc == TS_OK) {
        fz_decode(body, len, &lim);
        free(body);

    } else {
        fz_assert(rc == TS_ERR_CORRUPT || rc == TS_ERR_LIMIT);
        fz_assert(body == NULL);
    }

    fz_decode(data, size, &lim);

    return 0;
}
