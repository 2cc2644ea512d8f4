/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target for the EXEMPLARS record (WAL type 6, and the
 * payload of the index's exemplar blocks): arbitrary bytes go through
 * ts_exemplar_record_decode(); every exemplar it hands out goes into a
 * small ring through Prometheus's rules, as replay does.
 *
 * Checked: strings point inside the input; an accepted payload encodes
 * again to a payload that decodes to the same exemplars; the ring's
 * per-series lists stay in strictly increasing time order, its count
 * within its size, its labels decodable.  Any violation aborts.
 *
 * Built with -DTS_FUZZ_SEEDS and without libFuzzer, main() writes the
 * seed corpus into the directory named by argv[1]:
 * fuzz/corpus/fuzz_exemplar was made that way.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_exemplar.h"


#define TS_FUZZ_MAX          32
#define TS_FUZZ_REFS         8
#define TS_FUZZ_RECORDS      256


typedef struct {
    const uint8_t          *in;
    size_t                  len;
    ts_exemplar_t           x;
    ts_exemplar_record_t    r[TS_FUZZ_RECORDS];
    ts_label_t              labels[TS_FUZZ_RECORDS * 8];
    size_t                  nlabels;
    size_t                  n;
    int                     second;     /* decoding the re-encoding */
    size_t                  k;
    int64_t                 last;
} ts_fuzz_t;


static int ts_fuzz_alive(int64_t pid);
static int ts_fuzz_entry(void *data, const ts_exemplar_record_t *r);
static int ts_fuzz_inside(ts_fuzz_t *f, const char *s, size_t len);
static int ts_fuzz_same(void *data, const ts_exemplar_record_t *r);
static int ts_fuzz_order(void *data, const ts_exemplar_entry_t *e);
static int ts_fuzz_label_eq(const ts_label_t *a, const ts_label_t *b);


static void   *ts_fuzz_mem;


static int
ts_fuzz_alive(int64_t pid)
{
    (void) pid;
    return 1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int         rc;
    size_t      len, esize;
    uint8_t    *enc;
    uint32_t    ref;
    ts_fuzz_t  *f;

    if (ts_fuzz_mem == NULL) {
        ts_fuzz_mem = malloc(ts_exemplar_region_size(TS_FUZZ_MAX));
        if (ts_fuzz_mem == NULL) {
            abort();
        }
    }

    f = calloc(1, sizeof(ts_fuzz_t));
    if (f == NULL) {
        abort();
    }

    /* a fresh ring each time */
    memset(ts_fuzz_mem, 0, ts_exemplar_region_size(TS_FUZZ_MAX));

    if (ts_exemplar_open(&f->x, ts_fuzz_mem,
                         ts_exemplar_region_size(TS_FUZZ_MAX), TS_FUZZ_MAX,
                         1, ts_fuzz_alive) != TS_OK)
    {
        abort();
    }

    f->in = data;
    f->len = size;

    rc = ts_exemplar_record_decode(data, size, ts_fuzz_entry, f);

    if (rc == TS_OK && f->n < TS_FUZZ_RECORDS) {
        esize = ts_exemplar_record_size(f->r, f->n);
        enc = malloc(esize + 1);
        if (enc == NULL
            || ts_exemplar_record_encode(enc, esize, f->r, f->n, &len)
               != TS_OK
            || len > esize)
        {
            abort();
        }

        f->second = 1;
        f->k = 0;

        if (ts_exemplar_record_decode(enc, len, ts_fuzz_same, f) != TS_OK
            || f->k != f->n)
        {
            abort();
        }

        free(enc);

    } else if (rc != TS_OK && rc != TS_ERR_CORRUPT && rc != TS_ERR_LIMIT) {
        abort();
    }

    for (ref = 1; ref <= TS_FUZZ_REFS; ref++) {
        f->last = INT64_MIN;

        if (ts_exemplar_series(&f->x, ref, INT64_MIN, INT64_MAX,
                               ts_fuzz_order, f) != TS_OK)
        {
            abort();
        }
    }

    free(f);

    return 0;
}


static int
ts_fuzz_inside(ts_fuzz_t *f, const char *s, size_t len)
{
    return len == 0
           || ((const uint8_t *) s >= f->in
               && (const uint8_t *) s + len <= f->in + f->len);
}


static int
ts_fuzz_entry(void *data, const ts_exemplar_record_t *r)
{
    ts_fuzz_t  *f = data;

    int       rc;
    uint32_t  i;

    if (!ts_fuzz_inside(f, r->tenant, r->tenant_len)) {
        abort();
    }

    for (i = 0; i < r->nseries; i++) {
        if (!ts_fuzz_inside(f, r->series[i].name, r->series[i].name_len)
            || !ts_fuzz_inside(f, r->series[i].value, r->series[i].value_len))
        {
            abort();
        }
    }

    for (i = 0; i < r->nlabels; i++) {
        if (!ts_fuzz_inside(f, r->labels[i].name, r->labels[i].name_len)
            || !ts_fuzz_inside(f, r->labels[i].value, r->labels[i].value_len))
        {
            abort();
        }
    }

    /* the series picks one of a few refs, as replay would resolve it */

    rc = ts_exemplar_add(&f->x, 1,
                         (uint32_t) (r->nseries
                                     ? r->series[0].value_len : 0)
                         % TS_FUZZ_REFS + 1,
                         r->t, r->v, r->labels, r->nlabels);

    if (rc != 0 && rc != 1 && rc != TS_ERR_OUT_OF_ORDER
        && rc != TS_ERR_INVALID)
    {
        abort();
    }

    /* keep copies of the arrays for the round trip */

    if (f->n < TS_FUZZ_RECORDS
        && f->nlabels + r->nseries + r->nlabels
           <= TS_FUZZ_RECORDS * 8)
    {
        f->r[f->n] = *r;
        f->r[f->n].series = &f->labels[f->nlabels];
        memcpy(&f->labels[f->nlabels], r->series,
               r->nseries * sizeof(ts_label_t));
        f->nlabels += r->nseries;
        f->r[f->n].labels = &f->labels[f->nlabels];
        memcpy(&f->labels[f->nlabels], r->labels,
               r->nlabels * sizeof(ts_label_t));
        f->nlabels += r->nlabels;

    } else {
        f->n = TS_FUZZ_RECORDS;     /* no round trip */
        return 0;
    }

    f->n++;

    return 0;
}


static int
ts_fuzz_label_eq(const ts_label_t *a, const ts_label_t *b)
{
    return a->name_len == b->name_len && a->value_len == b->value_len
           && memcmp(a->name, b->name, a->name_len) == 0
           && memcmp(a->value, b->value, a->value_len) == 0;
}


static int
ts_fuzz_same(void *data, const ts_exemplar_record_t *r)
{
    ts_fuzz_t  *f = data;

    uint32_t                     i;
    const ts_exemplar_record_t  *o;

    if (f->k >= f->n) {
        abort();
    }

    o = &f->r[f->k++];

    if (r->tenant_len != o->tenant_len
        || memcmp(r->tenant, o->tenant, r->tenant_len) != 0
        || r->t != o->t || r->v != o->v
        || r->nseries != o->nseries || r->nlabels != o->nlabels)
    {
        abort();
    }

    for (i = 0; i < r->nseries; i++) {
        if (!ts_fuzz_label_eq(&r->series[i], &o->series[i])) {
            abort();
        }
    }

    for (i = 0; i < r->nlabels; i++) {
        if (!ts_fuzz_label_eq(&r->labels[i], &o->labels[i])) {
            abort();
        }
    }

    return 0;
}


static int
ts_fuzz_order(void *data, const ts_exemplar_entry_t *e)
{
    ts_fuzz_t  *f = data;

    int             rc;
    ts_label_t      l;
    const uint8_t  *p, *end;

    if (e->t <= f->last && f->last != INT64_MIN) {
        abort();
    }

    f->last = e->t;

    p = e->labels;
    end = p + e->labels_len;

    while ((rc = ts_exemplar_labels_next(&p, end, &l)) == 1) {
        if (l.value_len == 0) {
            abort();
        }
    }

    if (rc != 0) {
        abort();
    }

    return 0;
}


#ifdef TS_FUZZ_SEEDS

static void
ts_fuzz_write(const char *dir, const char *name, const ts_exemplar_record_t *r,
    size_t n)
{
    char     path[4096];
    size_t   size, len;
    uint8_t  buf[4096];
    FILE    *fp;

    size = ts_exemplar_record_size(r, n);

    if (size > sizeof(buf)
        || ts_exemplar_record_encode(buf, size, r, n, &len) != TS_OK)
    {
        abort();
    }

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    fp = fopen(path, "wb");
    if (fp == NULL || fwrite(buf, 1, len, fp) != len || fclose(fp) != 0) {
        perror(path);
        exit(1);
    }
}


#define ts_fuzz_l(n, v)                                                   \
    { n, sizeof(n) - 1, v, sizeof(v) - 1 }


int
main(int argc, char **argv)
{
    size_t                i;
    ts_exemplar_record_t  r[8];

    static const ts_label_t  series[] = {
        ts_fuzz_l("__name__", "http_requests_total"),
        ts_fuzz_l("code", "200"),
        ts_fuzz_l("job", "api")
    };

    static const ts_label_t  ex[] = {
        ts_fuzz_l("span_id", "s1"),
        ts_fuzz_l("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")
    };

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 1;
    }

    memset(r, 0, sizeof(r));

    for (i = 0; i < 8; i++) {
        r[i].tenant = i % 2 ? "team-a" : "anonymous";
        r[i].tenant_len = strlen(r[i].tenant);
        r[i].series = series;
        r[i].nseries = 3 - (uint32_t) (i % 3);
        r[i].t = 1700000000000LL + (int64_t) (i / 2) * 15000;
        r[i].v = 0x3ff8000000000000ULL + i;
        r[i].labels = &ex[i % 2];
        r[i].nlabels = 2 - (uint32_t) (i % 2);
    }

    ts_fuzz_write(argv[1], "one", r, 1);
    ts_fuzz_write(argv[1], "eight-interleaved", r, 8);

    r[1] = r[0];                /* a duplicate, then out of order */
    r[2] = r[0];
    r[2].t -= 1;
    ts_fuzz_write(argv[1], "dup-and-out-of-order", r, 3);

    r[0].nlabels = 0;
    r[0].t = -1;
    r[0].v = 0x7ff0000000000002ULL;
    ts_fuzz_write(argv[1], "no-labels-stale", r, 1);

    ts_fuzz_write(argv[1], "empty", r, 0);

    return 0;
}

#endif /* TS_FUZZ_SEEDS */
