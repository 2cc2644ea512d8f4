/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target: Pyroscope folded and lines bodies -> ts_folded_parse()
 * with small limits; an accepted profile must be normalized (every
 * reference in range, no all-zero sample unless counts summed to zero,
 * at most max_depth frames, at most max_samples stacks, strings[0] "")
 * and must encode and decode back to the same number of samples.  Both
 * formats see every input.
 *
 * Seeds (fuzz/corpus/fuzz_folded/): folded and lines bodies as
 * flamegraph.pl's stackcollapse tools and Pyroscope's clients send them.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_folded.h"
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


static void
fz_check(const ts_pprof_t *p)
{
    uint32_t                    i, k;
    const ts_pprof_sample_t    *s;
    const ts_pprof_location_t  *loc;

    fz_assert(p->nstrings >= 1 && p->strings[0].len == 0);
    fz_assert(p->ntypes == 1 && p->nmappings == 0);
    fz_assert(p->nsamples <= p->lim.max_samples);
    fz_assert(p->nlocations == p->nfunctions);

    for (i = 0; i < p->nlocations; i++) {
        loc = &p->locations[i];
        fz_assert(loc->nlines == 1);
        fz_assert(p->lines[loc->line].function >= 1);
        fz_assert(p->lines[loc->line].function <= p->nfunctions);
    }

    for (i = 0; i < p->nfunctions; i++) {
        fz_assert(p->functions[i].name < p->nstrings);
    }

    for (i = 0; i < p->nsamples; i++) {
        s = &p->samples[i];
        fz_assert(s->depth >= 1 && s->depth <= p->lim.max_depth);
        fz_assert(p->values[i] != 0 || p->zero);

        for (k = 0; k < s->depth; k++) {
            fz_assert(p->stacks[s->stack + k] >= 1);
            fz_assert(p->stacks[s->stack + k] <= p->nlocations);
        }
    }
}


static void
fz_parse(const uint8_t *data, size_t size, ts_folded_fmt_t fmt)
{
    int                 rc;
    fz_buf_t            b;
    ts_pprof_t          p, q;
    ts_pprof_why_t      why;
    ts_pprof_limits_t   lim;
    ts_folded_opts_t    o = { "cpu", "nanoseconds", "cpu", "nanoseconds",
                              10000000, 10000000, 0, 0 };

    ts_pprof_limits_default(&lim);
    lim.max_depth = 16;
    lim.max_samples = 256;
    lim.max_memory = 32 << 20;

    ts_pprof_init(&p, NULL, &lim);
    rc = ts_folded_parse(&p, fmt, (const char *) data, size, &o, &why);

    if (rc != TS_OK) {
        fz_assert(rc == TS_ERR_INVALID || rc == TS_ERR_LIMIT);
        fz_assert(why.msg[0] != '\0');
        ts_pprof_free(&p);
        return;
    }

    fz_check(&p);

    memset(&b, 0, sizeof(b));
    fz_assert(ts_pprof_encode(&p, 0, fz_write, &b) == TS_OK);

    ts_pprof_init(&q, NULL, &lim);
    fz_assert(ts_pprof_decode(&q, b.p, b.len, &why) == TS_OK);
    fz_assert(p.zero || q.nsamples == p.nsamples);
    fz_assert(p.zero || q.nfunctions == p.nfunctions);
    fz_assert(q.nsamples <= p.nsamples);

    ts_pprof_free(&q);
    ts_pprof_free(&p);
    free(b.p);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_parse(data, size, TS_FOLDED);
    fz_parse(data, size, TS_FOLDED_LINES);

    return 0;
}
