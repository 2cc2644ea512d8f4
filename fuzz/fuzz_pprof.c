/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target: pprof bodies as received, gzip or plain ->
 * ts_pprof_parse() (bounded inflate, decode, normalize) -> what
 * ts_pprof.h promises checked (abort() on a broken promise): every
 * reference in range, tables deduplicated under Merge's keys, no
 * all-zero sample, max_memory kept.  An accepted profile is then
 * encoded, decoded again (same tables, same values), and merged into
 * itself (values doubled).  The input also goes through ts_inflate() as
 * zlib and raw deflate.
 *
 * Seeds (fuzz/corpus/fuzz_pprof/): the Go 1.19 fixtures of t/data/pprof/
 * as sent (gzip) and inflated.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_inflate.h"
#include "ts_pprof.h"


#define fz_assert(cond)                                                   \
    do {                                                                  \
        if (!(cond)) {                                                    \
            abort();                                                      \
        }                                                                 \
    } while (0)


typedef struct {
    uint8_t     *p;
    size_t       len;
    size_t       cap;
} fz_buf_t;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fz_check(const ts_pprof_t *p)
{
    uint32_t                    i, k;
    const ts_pprof_label_t     *l;
    const ts_pprof_sample_t    *s;
    const ts_pprof_location_t  *loc;
    const ts_pprof_function_t  *f;

    fz_assert(p->nstrings >= 1 && p->strings[0].len == 0);
    fz_assert(p->used <= p->lim.max_memory);
    fz_assert(p->nsamples <= p->lim.max_samples);

    for (i = 1; i < p->nstrings; i++) {
        fz_assert(p->strings[i].len > 0);
    }

    for (i = 0; i < p->ntypes; i++) {
        fz_assert(p->types[i].type < p->nstrings);
        fz_assert(p->types[i].unit < p->nstrings);
    }

    for (i = 0; i < p->nfunctions; i++) {
        f = &p->functions[i];
        fz_assert(f->name < p->nstrings && f->system_name < p->nstrings
                  && f->filename < p->nstrings);
    }

    for (i = 0; i < p->nmappings; i++) {
        fz_assert(p->mappings[i].file < p->nstrings);
        fz_assert(p->mappings[i].build_id < p->nstrings);
    }

    for (i = 0; i < p->nlocations; i++) {
        loc = &p->locations[i];
        fz_assert(loc->mapping <= p->nmappings);
        fz_assert((uint64_t) loc->line + loc->nlines <= p->nlines);

        for (k = 0; k < loc->nlines; k++) {
            fz_assert(p->lines[loc->line + k].function >= 1);
            fz_assert(p->lines[loc->line + k].function <= p->nfunctions);
        }
    }

    for (i = 0; i < p->nsamples; i++) {
        s = &p->samples[i];
        fz_assert(s->depth <= p->lim.max_depth);
        fz_assert((uint64_t) s->stack + s->depth <= p->nstacks);
        fz_assert((uint64_t) s->label + s->nlabels <= p->nlabels);

        for (k = 0; k < s->depth; k++) {
            fz_assert(p->stacks[s->stack + k] >= 1);
            fz_assert(p->stacks[s->stack + k] <= p->nlocations);
        }

        for (k = 0; k < s->nlabels; k++) {
            l = &p->labels[s->label + k];
            fz_assert(l->key < p->nstrings && l->str < p->nstrings
                      && l->unit < p->nstrings);
            fz_assert(l->str || l->num || l->unit);
        }

        for (k = 0; k < p->ntypes; k++) {
            if (p->values[(size_t) i * p->ntypes + k] != 0) {
                break;
            }
        }

        fz_assert(k < p->ntypes);
    }
}


static int
fz_write(void *data, const char *p, size_t len)
{
    fz_buf_t  *b;
    uint8_t   *n;

    b = data;

    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        n = realloc(b->p, b->cap);
        if (n == NULL) {
            return -1;
        }

        b->p = n;
    }

    memcpy(b->p + b->len, p, len);
    b->len += len;

    return 0;
}


/* encode, decode again: the same normalized profile */
static void
fz_round_trip(const ts_pprof_t *p, const ts_pprof_limits_t *lim)
{
    int             rc;
    fz_buf_t        b;
    ts_pprof_t      q, m;
    ts_pprof_why_t  why;

    memset(&b, 0, sizeof(b));
    rc = ts_pprof_encode(p, (int) (p->nsamples % 2), fz_write, &b);
    fz_assert(rc == TS_OK || rc == TS_ERR_LIMIT);

    ts_pprof_init(&q, NULL, lim);
    rc = ts_pprof_parse(&q, b.p, b.len, &why);

    /* only the memory budget may differ (dedup makes it smaller) */
    fz_assert(rc == TS_OK || rc == TS_ERR_LIMIT);

    /* a sample that summed to zero was compacted away by the encoder */
    if (rc == TS_OK && !p->zero) {
        fz_check(&q);
        fz_assert(q.nsamples == p->nsamples);
        fz_assert(q.nstrings == p->nstrings);
        fz_assert(q.nlocations == p->nlocations);
        fz_assert(q.nfunctions == p->nfunctions);
        fz_assert(q.nmappings == p->nmappings);
        fz_assert(p->nsamples == 0 || p->ntypes == 0
                  || memcmp(q.values, p->values, (size_t) p->nsamples
                            * p->ntypes * sizeof(int64_t)) == 0);
    }

    ts_pprof_free(&q);
    free(b.p);

    ts_pprof_init(&m, NULL, lim);
    rc = ts_pprof_merge(&m, p, &why);
    rc = rc ? rc : ts_pprof_merge(&m, p, &why);
    fz_assert(rc == TS_OK || rc == TS_ERR_LIMIT);

    if (rc == TS_OK) {
        fz_assert(m.nmerged == 2);
        fz_assert(m.nsamples <= p->nsamples);
    }

    ts_pprof_free(&m);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 rc;
    size_t              n;
    uint8_t            *out;
    ts_pprof_t          p;
    ts_pprof_why_t      why;
    ts_pprof_limits_t   lim;

    ts_pprof_limits_default(&lim);
    lim.max_decompressed = 1 << 20;
    lim.max_memory = 64 << 20;
    lim.max_depth = 64;
    lim.max_labels = 8;
    lim.max_samples = 4096;
    lim.keep_leaf = size & 1;

    ts_pprof_init(&p, NULL, &lim);
    memset(&why, 0, sizeof(why));

    rc = ts_pprof_parse(&p, data, size, &why);

    if (rc == TS_OK) {
        fz_check(&p);
        fz_round_trip(&p, &lim);

    } else {
        fz_assert(rc == TS_ERR_CORRUPT || rc == TS_ERR_INVALID
                  || rc == TS_ERR_LIMIT);
        fz_assert(why.code != TS_PPROF_OK && why.msg[0] != '\0');
    }

    ts_pprof_free(&p);
    fz_assert(p.used == 0);

    if (ts_inflate(data, size, TS_INFLATE_ZLIB, 1 << 20, NULL, &out, &n,
                   NULL) == TS_OK)
    {
        free(out);
    }

    if (ts_inflate(data, size, TS_INFLATE_RAW, 1 << 20, NULL, &out, &n,
                   NULL) == TS_OK)
    {
        free(out);
    }

    return 0;
}
