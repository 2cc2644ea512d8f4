/*
 * Copyright (C) ngx_tsdb authors
 *
 * rw_same(): 1 if two decoded remote-write requests agree on what
 * storage and the answer depend on: counts, reasons, and per series
 * the reject code, labels, hash and samples.  The v1 fast path is
 * checked against protobuf-c by decoding a body as is and with an
 * unknown field appended (which the fast path declines and protobuf-c
 * skips), by store/tests/test_rw.c and fuzz/fuzz_rw1.c.
 */

#ifndef RW_SAME_H
#define RW_SAME_H


#include <string.h>

#include "ts_rw.h"


/* field 15, varint 0: unknown to WriteRequest, skipped by protobuf-c */
#define RW_SAME_SUFFIX      "\x78\x00"
#define RW_SAME_SUFFIX_LEN  2


static int
rw_same_counts(const ts_rw_counts_t *a, const ts_rw_counts_t *b)
{
    return a->series == b->series && a->samples == b->samples
           && a->histograms == b->histograms && a->exemplars == b->exemplars
           && a->metadata == b->metadata;
}


static int
rw_same_labels(const ts_label_t *a, const ts_label_t *b, uint32_t n)
{
    uint32_t  i;

    for (i = 0; i < n; i++) {
        if (a[i].name_len != b[i].name_len
            || a[i].value_len != b[i].value_len
            || memcmp(a[i].name, b[i].name, a[i].name_len) != 0
            || memcmp(a[i].value, b[i].value, a[i].value_len) != 0)
        {
            return 0;
        }
    }

    return 1;
}


static int
rw_same(const ts_rw_request_t *a, const ts_rw_request_t *b)
{
    uint32_t               i;
    const ts_rw_series_t  *x, *y;

    if (a->nseries != b->nseries || a->nmetadata != b->nmetadata
        || !rw_same_counts(&a->decoded, &b->decoded)
        || !rw_same_counts(&a->rejected, &b->rejected)
        || a->why.code != b->why.code
        || strcmp(a->why.msg, b->why.msg) != 0)
    {
        return 0;
    }

    for (i = 0; i < a->nseries; i++) {
        x = &a->series[i];
        y = &b->series[i];

        if (x->reject != y->reject || x->nlabels != y->nlabels
            || x->nsamples != y->nsamples
            || x->nhistograms != y->nhistograms
            || x->nexemplars != y->nexemplars)
        {
            return 0;
        }

        if (x->reject != TS_REJECT_NONE) {
            continue;
        }

        if (x->hash != y->hash
            || !rw_same_labels(x->labels, y->labels, x->nlabels)
            || (x->nsamples
                && memcmp(x->samples, y->samples,
                          x->nsamples * sizeof(ts_rw_sample_t)) != 0))
        {
            return 0;
        }
    }

    return 1;
}


/*
 * A ts_rw_known_pt that stands in for the head: the accepted series of
 * an earlier decode (whose body must still be there) are the stored
 * ones; a series is found when its labels as sent are one of them byte
 * for byte, in the same order.  Decoding with it must give what
 * decoding without it gives (rw_same()), under any limits.
 */
typedef struct {
    const ts_rw_request_t  *store;
    size_t                  found;
} rw_known_t;


static void
rw_known(void *data, ts_rw_series_t *s, size_t n)
{
    rw_known_t            *k = data;
    const ts_rw_series_t  *x;
    size_t                 i;
    uint32_t               j;

    for (i = 0; i < n; i++) {
        s[i].ref = 0;

        for (j = 0; j < k->store->nseries; j++) {
            x = &k->store->series[j];

            if (x->reject == TS_REJECT_NONE && x->hash == s[i].hash
                && x->nlabels == s[i].nlabels
                && rw_same_labels(x->labels, s[i].labels, x->nlabels))
            {
                s[i].ref = j + 1;
                k->found++;
                break;
            }
        }
    }
}


#endif /* RW_SAME_H */
