/*
 * Copyright (C) ngx_tsdb authors
 *
 * Series sets (ts_sset.h).  Invariants:
 *
 *   - ents[0 .. nents) are the selected (labels, source, ref) triples
 *     sorted by labels then source; a series is the run of entries with
 *     equal labels, pos the first entry of the next one.
 *   - Per current series one cursor per entry of its run reads that
 *     source's chunks in batches (TS_SS_BATCH_BYTES or
 *     TS_SS_BATCH_CHUNKS), starting after the last chunk it took.
 *   - last is the newest timestamp given out for the series: samples
 *     and chunks at or before it are dropped or merged, so the output
 *     is strictly increasing whatever the sources hold.
 *   - Labels live in blocks freed by reset; nothing points into a
 *     source's memory after the call that read it returns.
 */

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_chunk.h"
#include "ts_hchunk.h"
#include "ts_sset.h"


#define TS_SS_BATCH_BYTES    (64 * 1024)
#define TS_SS_BATCH_CHUNKS   256
#define TS_SS_BLOCK          (64 * 1024)
#define TS_SS_ENC_CAP                                                     \
    (TS_XOR_HEADER_SIZE + TS_XOR_SAMPLES_TARGET * TS_XOR_SAMPLE_MAX_BYTES)

/*
 * Label blocks and one entry array are kept between sets (the PromQL
 * evaluator makes a set per selector): fresh memory faults on its first
 * touch, which was 5% of a query over 10,000 series.  At most 8 MiB of
 * blocks and an array of 256 Ki entries (6 MiB) per process.  Off under
 * AddressSanitizer, which then still sees every use after free.
 */
#define TS_SS_CACHE_BLOCKS   128
#define TS_SS_CACHE_ENTS     (256 * 1024)

#if defined(__SANITIZE_ADDRESS__)
#define TS_SS_NO_CACHE  1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TS_SS_NO_CACHE  1
#endif
#endif

#ifndef TS_SS_NO_CACHE
#define TS_SS_NO_CACHE  0
#endif

/* a re-encoded histogram chunk; one sample larger than this is an error */
#define TS_SS_HENC_CAP       (256 * 1024)

/* kinds of samples a call reads: bits 1 << encoding */
#define TS_SS_FLOATS         (1u << TS_XOR_ENCODING)
#define TS_SS_HISTS          ((1u << TS_HIST_ENCODING)                     \
                              | (1u << TS_FHIST_ENCODING))
#define TS_SS_ALL            (TS_SS_FLOATS | TS_SS_HISTS)


typedef struct ts_ss_block_s  ts_ss_block_t;

struct ts_ss_block_s {
    ts_ss_block_t          *next;
    size_t                  used;
    size_t                  size;
    uint64_t                data[];
};


typedef struct {
    const ts_label_t       *labels;
    uint32_t                n;
    uint32_t                src;
    uint64_t                ref;
} ts_ss_entry_t;


typedef struct {
    int64_t                 mint;
    int64_t                 maxt;
    size_t                  off;
    size_t                  len;
    uint32_t                enc;
} ts_ss_cmeta_t;


/* one source's chunks of the current series, a batch at a time */
typedef struct {
    const ts_source_t      *src;
    uint64_t                ref;
    int64_t                 next_mint;
    int64_t                 maxt;
    ts_buf_t                data;
    ts_ss_cmeta_t          *cm;
    uint32_t                n;
    uint32_t                i;
    uint32_t                cmcap;
    int                     more;       /* the source may have more */
    int                     stopped;    /* the batch is full */
    int                     err;
    int                     active;     /* decoding cm[i] */
    uint32_t                enc;        /* cm[i]'s when active */
    ts_xor_iter_t           it;
    ts_hist_iter_t          hit;
    void                   *hmem;       /* hit's scratch */
    size_t                  hmemlen;
    int64_t                 t;          /* next sample when active */
    uint64_t                v;
    ts_hist_t               h;          /* in hmem */
} ts_ss_cursor_t;


struct ts_sset_s {
    ts_sset_conf_t          conf;
    ts_source_t           **src;
    uint32_t                nsrc;

    ts_ss_entry_t          *ents;
    uint32_t                nents;
    uint32_t                ecap;
    uint32_t                distinct;
    uint32_t                pos;        /* first entry of next series */
    ts_ss_block_t          *blocks;     /* their labels */
    char                   *msg;        /* of the select under way */
    size_t                  msglen;

    ts_ss_cursor_t         *cur;        /* current series */
    uint32_t                ncur;
    uint32_t                curcap;
    ts_ss_cursor_t         *run;        /* ts_sset_value_ref() reads on
                                           from it while its samples */
    int64_t                 run_until;  /* come before this, as long as
                                           no other cursor moves */
    int                     has_last;
    int64_t                 last;       /* last sample time given */
    int64_t                 mint;
    int64_t                 maxt;

    unsigned                mask;       /* kinds the call reads */
    int                     pending;    /* val is read but not used */
    unsigned                next_hdr;   /* for pending, TS_HIST_HDR_* */
    ts_sset_value_t         val;        /* the last value read */
    ts_buf_t                hcopy;      /* val.h's arrays */

    uint64_t                reencoded;
    ts_xor_appender_t       a;          /* re-encoding */
    uint8_t                 enc[TS_SS_ENC_CAP];
    ts_hist_app_t          *ha;         /* histogram re-encoding */
    size_t                  hasize;
    uint8_t                *henc;       /* TS_SS_HENC_CAP */
};


static pthread_mutex_t  ts_ss_cache_mutex = PTHREAD_MUTEX_INITIALIZER;
static ts_ss_block_t   *ts_ss_cache_blocks;
static uint32_t         ts_ss_cache_nblocks;
static ts_ss_entry_t   *ts_ss_cache_ents;
static uint32_t         ts_ss_cache_ecap;


static int ts_ss_fail(ts_sset_t *ss, int rc, const char *fmt, ...);
static int ts_ss_load_source(ts_sset_t *ss, ts_selector_t *sel, uint32_t s);
static int ts_ss_entry(ts_sset_t *ss, uint32_t s, uint64_t ref,
    const ts_label_t *l, uint32_t n);
static int ts_ss_entry_cmp(const void *a, const void *b);
static void *ts_ss_palloc(ts_sset_t *ss, size_t size);
static int ts_ss_refill(ts_ss_cursor_t *c);
static int ts_ss_collect(void *data, const ts_source_chunk_t *ch);
static int ts_ss_peek(ts_ss_cursor_t *c, unsigned mask, ts_ss_cmeta_t **cm);
static int ts_ss_open_chunk(ts_ss_cursor_t *c);
static int ts_ss_next_cursor(ts_sset_t *ss, ts_ss_cursor_t **cp);
static int ts_ss_step(ts_ss_cursor_t *c);
static int ts_ss_value(ts_sset_t *ss, const ts_sset_value_t **val);
static int ts_ss_hist_copy(ts_sset_t *ss, ts_hist_t *dst,
    const ts_hist_t *src);
static int ts_ss_earliest(ts_sset_t *ss, ts_ss_cursor_t **cp,
    int64_t *other);
static int ts_ss_boundary(ts_sset_t *ss);
static int ts_ss_passthrough(ts_sset_t *ss, ts_sset_chunk_t *out);
static int ts_ss_reencode(ts_sset_t *ss, ts_sset_chunk_t *out);
static int ts_ss_reencode_hist(ts_sset_t *ss, ts_sset_chunk_t *out);
static int ts_ss_hist_start(ts_sset_t *ss, const ts_sset_value_t *val,
    unsigned hdr);


int
ts_sset_create(ts_sset_t **ssp, ts_source_t *const *src, uint32_t nsrc,
    const ts_sset_conf_t *conf)
{
    ts_sset_t  *ss;

    ss = calloc(1, sizeof(ts_sset_t));
    if (ss == NULL) {
        return TS_ERR_NOMEM;
    }

    ss->src = malloc((nsrc ? nsrc : 1) * sizeof(ts_source_t *));
    if (ss->src == NULL) {
        free(ss);
        return TS_ERR_NOMEM;
    }

    if (nsrc > 0) {
        memcpy(ss->src, src, nsrc * sizeof(ts_source_t *));
    }

    ss->nsrc = nsrc;

    if (conf != NULL) {
        ss->conf = *conf;
    }

    *ssp = ss;

    return TS_OK;
}


void
ts_sset_free(ts_sset_t *ss)
{
    void      *np;
    uint32_t   i;

    if (ss == NULL) {
        return;
    }

    ts_sset_reset(ss);

    for (i = 0; i < ss->curcap; i++) {
        free(ss->cur[i].data.p);
        free(ss->cur[i].cm);
        free(ss->cur[i].hmem);
    }

    free(ss->cur);
    free(ss->hcopy.p);
    free(ss->ha);
    free(ss->henc);

    if (!TS_SS_NO_CACHE && ss->ents != NULL
        && ss->ecap <= TS_SS_CACHE_ENTS)
    {
        /* the larger array stays for the next set */

        pthread_mutex_lock(&ts_ss_cache_mutex);

        if (ss->ecap > ts_ss_cache_ecap) {
            np = ts_ss_cache_ents;
            ts_ss_cache_ents = ss->ents;
            ts_ss_cache_ecap = ss->ecap;
            ss->ents = np;
        }

        pthread_mutex_unlock(&ts_ss_cache_mutex);
    }

    free(ss->ents);
    free(ss->src);
    free(ss);
}


int
ts_sset_select(ts_sset_t *ss, ts_selector_t *sel, int64_t mint,
    int64_t maxt, char *msg, size_t msglen)
{
    int       rc;
    uint32_t  s, i;

    ts_sset_reset(ss);

    ss->msg = msg;
    ss->msglen = msglen;
    ss->mint = mint;
    ss->maxt = maxt;

    if (mint > maxt) {
        return TS_OK;
    }

    for (s = 0; s < ss->nsrc; s++) {
        rc = ts_ss_load_source(ss, sel, s);
        if (rc != TS_OK) {
            return rc;
        }
    }

    if (ss->nents > 1) {
        qsort(ss->ents, ss->nents, sizeof(ts_ss_entry_t), ts_ss_entry_cmp);
    }

    ss->distinct = ss->nents > 0;

    for (i = 1; i < ss->nents; i++) {
        ss->distinct += ts_labels_cmp(ss->ents[i - 1].labels,
                                      ss->ents[i - 1].n, ss->ents[i].labels,
                                      ss->ents[i].n) != 0;
    }

    if (ss->conf.max_series && ss->distinct > ss->conf.max_series) {
        return ts_ss_fail(ss, TS_ERR_LIMIT, "exceeded series limit (%u)",
                          ss->conf.max_series);
    }

    return TS_OK;
}


uint32_t
ts_sset_count(const ts_sset_t *ss)
{
    return ss->distinct;
}


/* starts the series at ss->pos: one cursor per source holding it */

int
ts_sset_next(ts_sset_t *ss, const ts_label_t **l, uint32_t *n)
{
    void            *p;
    uint32_t         end, i, cap;
    ts_ss_entry_t   *en;
    ts_ss_cursor_t  *c;

    if (ss->pos >= ss->nents) {
        ss->ncur = 0;
        ss->run = NULL;
        return 0;
    }

    en = &ss->ents[ss->pos];

    for (end = ss->pos + 1; end < ss->nents; end++) {
        if (ts_labels_cmp(en->labels, en->n, ss->ents[end].labels,
                          ss->ents[end].n) != 0)
        {
            break;
        }
    }

    if (end - ss->pos > ss->curcap) {
        cap = end - ss->pos;

        p = realloc(ss->cur, cap * sizeof(ts_ss_cursor_t));
        if (p == NULL) {
            return TS_ERR_NOMEM;
        }

        ss->cur = p;
        memset(ss->cur + ss->curcap, 0,
               (cap - ss->curcap) * sizeof(ts_ss_cursor_t));
        ss->curcap = cap;
    }

    ss->ncur = end - ss->pos;

    for (i = 0; i < ss->ncur; i++) {
        c = &ss->cur[i];
        c->src = ss->src[en[i].src];
        c->ref = en[i].ref;
        c->next_mint = ss->mint;
        c->maxt = ss->maxt;
        c->n = 0;
        c->i = 0;
        c->more = 1;
        c->active = 0;
        c->err = TS_OK;
    }

    *l = en->labels;
    *n = en->n;
    ss->has_last = 0;
    ss->pending = 0;
    ss->run = NULL;
    ss->pos = end;

    return 1;
}


uint64_t
ts_sset_reencoded(const ts_sset_t *ss)
{
    return ss->reencoded;
}


void
ts_sset_reset(ts_sset_t *ss)
{
    ts_ss_block_t  *b, *next;

    b = ss->blocks;

    if (!TS_SS_NO_CACHE && b != NULL) {
        pthread_mutex_lock(&ts_ss_cache_mutex);

        for ( /* void */ ; b != NULL; b = next) {
            next = b->next;

            if (b->size != TS_SS_BLOCK
                || ts_ss_cache_nblocks == TS_SS_CACHE_BLOCKS)
            {
                free(b);
                continue;
            }

            b->next = ts_ss_cache_blocks;
            ts_ss_cache_blocks = b;
            ts_ss_cache_nblocks++;
        }

        pthread_mutex_unlock(&ts_ss_cache_mutex);
    }

    for ( /* void */ ; b != NULL; b = next) {
        next = b->next;
        free(b);
    }

    ss->blocks = NULL;
    ss->nents = 0;
    ss->distinct = 0;
    ss->pos = 0;
    ss->ncur = 0;
    ss->pending = 0;
    ss->run = NULL;
}


int
ts_sources_begin(ts_source_t *const *src, uint32_t n)
{
    int       rc;
    uint32_t  i;

    for (i = 0; i < n; i++) {
        if (src[i]->begin == NULL) {
            continue;
        }

        rc = src[i]->begin(src[i]->data);
        if (rc != TS_OK) {
            ts_sources_end(src, i);
            return rc;
        }
    }

    return TS_OK;
}


void
ts_sources_end(ts_source_t *const *src, uint32_t n)
{
    uint32_t  i;

    for (i = 0; i < n; i++) {
        if (src[i]->end != NULL) {
            src[i]->end(src[i]->data);
        }
    }
}


static int
ts_ss_fail(ts_sset_t *ss, int rc, const char *fmt, ...)
{
    va_list  args;

    if (ss->msg != NULL && ss->msglen > 0) {
        va_start(args, fmt);
        vsnprintf(ss->msg, ss->msglen, fmt, args);
        va_end(args);
    }

    return rc;
}


static int
ts_ss_load_source(ts_sset_t *ss, ts_selector_t *sel, uint32_t s)
{
    int                 rc;
    uint32_t            n;
    uint64_t            ref, hard;
    ts_label_t          l[TS_SELECT_MAX_LABELS];
    ts_select_t        *it;
    const ts_source_t  *src;

    src = ss->src[s];
    hard = (uint64_t) ss->conf.max_series * ss->nsrc;

    rc = ts_select_open(&it, sel, src);
    if (rc != TS_OK) {
        goto failed;
    }

    while ((rc = ts_select_next(it, &ref)) == 1) {
        if (ss->conf.max_series && ss->nents >= hard) {
            ts_select_close(it);
            return ts_ss_fail(ss, TS_ERR_LIMIT, "exceeded series limit "
                              "(%u)", ss->conf.max_series);
        }

        rc = src->labels(src->data, ref, l, TS_SELECT_MAX_LABELS, &n);

        if (rc == TS_OK) {
            rc = ts_ss_entry(ss, s, ref, l, n);

        } else if (rc == TS_ERR_NOTFOUND) {
            rc = TS_OK;
        }

        if (rc != TS_OK) {
            break;
        }
    }

    ts_select_close(it);

    if (rc == TS_OK) {
        return TS_OK;
    }

failed:

    if (rc == TS_ERR_LIMIT) {
        return ts_ss_fail(ss, rc, "regex match limit exceeded");
    }

    return ts_ss_fail(ss, rc, "selecting series: %s", ts_strerror(rc));
}

/* copies the labels: an LMDB source's are gone after its end() */

static int
ts_ss_entry(ts_sset_t *ss, uint32_t s, uint64_t ref, const ts_label_t *l,
    uint32_t n)
{
    char           *p;
    void           *np;
    size_t          size;
    uint32_t        i, cap;
    ts_label_t     *dst;
    ts_ss_entry_t  *en;

    if (!TS_SS_NO_CACHE && ss->ents == NULL) {
        pthread_mutex_lock(&ts_ss_cache_mutex);

        ss->ents = ts_ss_cache_ents;
        ss->ecap = ts_ss_cache_ents ? ts_ss_cache_ecap : 0;
        ts_ss_cache_ents = NULL;
        ts_ss_cache_ecap = 0;

        pthread_mutex_unlock(&ts_ss_cache_mutex);
    }

    if (ss->nents == ss->ecap) {
        cap = ss->ecap ? ss->ecap * 2 : 256;

        np = realloc(ss->ents, cap * sizeof(ts_ss_entry_t));
        if (np == NULL) {
            return TS_ERR_NOMEM;
        }

        ss->ents = np;
        ss->ecap = cap;
    }

    size = n * sizeof(ts_label_t);

    for (i = 0; i < n; i++) {
        size += l[i].name_len + l[i].value_len;
    }

    dst = ts_ss_palloc(ss, size);
    if (dst == NULL) {
        return TS_ERR_NOMEM;
    }

    p = (char *) (dst + n);

    for (i = 0; i < n; i++) {
        dst[i] = l[i];
        dst[i].name = memcpy(p, l[i].name, l[i].name_len);
        p += l[i].name_len;
        dst[i].value = memcpy(p, l[i].value, l[i].value_len);
        p += l[i].value_len;
    }

    en = &ss->ents[ss->nents++];
    en->labels = dst;
    en->n = n;
    en->src = s;
    en->ref = ref;

    return TS_OK;
}

static int
ts_ss_entry_cmp(const void *a, const void *b)
{
    int                   rc;
    const ts_ss_entry_t  *x, *y;

    x = a;
    y = b;

    rc = ts_labels_cmp(x->labels, x->n, y->labels, y->n);
    if (rc != 0) {
        return rc;
    }

    if (x->src != y->src) {
        return x->src < y->src ? -1 : 1;
    }

    return (x->ref > y->ref) - (x->ref < y->ref);
}

static void *
ts_ss_palloc(ts_sset_t *ss, size_t size)
{
    void           *p;
    size_t          bs;
    ts_ss_block_t  *b;

    size = (size + 7) & ~(size_t) 7;
    b = ss->blocks;

    if (b == NULL || b->size - b->used < size) {
        bs = size > TS_SS_BLOCK ? size : TS_SS_BLOCK;
        b = NULL;

        if (!TS_SS_NO_CACHE && bs == TS_SS_BLOCK) {
            pthread_mutex_lock(&ts_ss_cache_mutex);

            b = ts_ss_cache_blocks;

            if (b != NULL) {
                ts_ss_cache_blocks = b->next;
                ts_ss_cache_nblocks--;
            }

            pthread_mutex_unlock(&ts_ss_cache_mutex);
        }

        if (b == NULL) {
            b = malloc(sizeof(ts_ss_block_t) + bs);
            if (b == NULL) {
                return NULL;
            }
        }

        b->next = ss->blocks;
        b->used = 0;
        b->size = bs;
        ss->blocks = b;
    }

    p = (uint8_t *) b->data + b->used;
    b->used += size;

    return p;
}

static int
ts_ss_refill(ts_ss_cursor_t *c)
{
    int  rc;

    c->n = 0;
    c->i = 0;
    c->data.len = 0;
    c->stopped = 0;

    if (!c->more) {
        return TS_OK;
    }

    rc = c->src->chunks(c->src->data, c->ref, c->next_mint, c->maxt,
                        ts_ss_collect, c);

    if (rc == TS_ERR_NOTFOUND || rc > 0) {
        rc = TS_OK;
    }

    rc = rc != TS_OK ? rc : c->err;
    c->more = rc == TS_OK && c->stopped;

    return rc;
}

static int
ts_ss_collect(void *data, const ts_source_chunk_t *ch)
{
    void            *p;
    uint32_t         cap;
    ts_ss_cursor_t  *c;

    c = data;

    /* unknown encodings are not ours to read: left out */

    switch (ch->encoding) {

    case TS_XOR_ENCODING:
        if (ch->len < TS_XOR_HEADER_SIZE) {
            return 0;
        }

        break;

    case TS_HIST_ENCODING:
    case TS_FHIST_ENCODING:
        if (ch->len < TS_HIST_HEADER_SIZE) {
            return 0;
        }

        break;

    default:
        return 0;
    }

    if (ch->mint > ch->maxt) {
        return 0;
    }

    if (c->n > 0
        && (c->n == TS_SS_BATCH_CHUNKS
            || c->data.len + ch->len > TS_SS_BATCH_BYTES))
    {
        c->stopped = 1;
        return 1;
    }

    if (c->n == c->cmcap) {
        cap = c->cmcap ? c->cmcap * 2 : 16;

        p = realloc(c->cm, cap * sizeof(ts_ss_cmeta_t));
        if (p == NULL) {
            c->err = TS_ERR_NOMEM;
            return 1;
        }

        c->cm = p;
        c->cmcap = cap;
    }

    if (ts_buf_reserve(&c->data, ch->len) != TS_OK) {
        c->err = TS_ERR_NOMEM;
        return 1;
    }

    c->cm[c->n].mint = ch->mint;
    c->cm[c->n].maxt = ch->maxt;
    c->cm[c->n].off = c->data.len;
    c->cm[c->n].len = ch->len;
    c->cm[c->n].enc = ch->encoding;
    c->n++;

    memcpy(c->data.p + c->data.len, ch->data, ch->len);
    c->data.len += ch->len;

    /* a chunk reaching the end of the range is the last one needed */

    if (ch->maxt >= c->maxt) {
        return 1;
    }

    c->next_mint = ch->maxt + 1;

    return 0;
}

/*
 * 1 with the cursor's next unopened chunk of a kind in mask (others are
 * passed over), 0 if none, or an error
 */

static int
ts_ss_peek(ts_ss_cursor_t *c, unsigned mask, ts_ss_cmeta_t **cm)
{
    int  rc;

    for ( ;; ) {
        if (c->i == c->n) {
            rc = ts_ss_refill(c);
            if (rc < 0) {
                return rc;
            }

            if (c->n == 0) {
                return 0;
            }
        }

        if (mask & (1u << c->cm[c->i].enc)) {
            *cm = &c->cm[c->i];
            return 1;
        }

        c->i++;
    }
}

/* starts decoding cm[i]: 1 with its first sample, 0 if it has none */

static int
ts_ss_open_chunk(ts_ss_cursor_t *c)
{
    int             rc;
    void           *p;
    size_t          need;
    ts_ss_cmeta_t  *cm;

    cm = &c->cm[c->i];
    c->enc = cm->enc;

    if (cm->enc == TS_XOR_ENCODING) {
        ts_xor_iter_init(&c->it, c->data.p + cm->off, cm->len);
        rc = ts_xor_iter_next_bits(&c->it, &c->t, &c->v);

    } else {
        need = ts_hist_iter_need(c->data.p + cm->off, cm->len, cm->enc);

        if (need > c->hmemlen) {
            p = realloc(c->hmem, need);
            if (p == NULL) {
                return TS_ERR_NOMEM;
            }

            c->hmem = p;
            c->hmemlen = need;
        }

        ts_hist_iter_init(&c->hit, c->data.p + cm->off, cm->len, cm->enc,
                          c->hmem, c->hmemlen);
        rc = ts_hist_iter_next(&c->hit, &c->t, &c->h);
    }

    if (rc < 0) {
        return rc;
    }

    if (rc == 0) {
        c->i++;
        return 0;
    }

    c->active = 1;

    return 1;
}

static int
ts_ss_step(ts_ss_cursor_t *c)
{
    int  rc;

    if (c->enc == TS_XOR_ENCODING) {
        rc = ts_xor_iter_next_bits(&c->it, &c->t, &c->v);

    } else {
        rc = ts_hist_iter_next(&c->hit, &c->t, &c->h);
    }

    if (rc == 0) {
        c->active = 0;
        c->i++;
    }

    return rc < 0 ? rc : TS_OK;
}

/*
 * The source with the earliest next sample, its chunk open: 1, 0 when
 * every source is done, or an error.
 */

static int
ts_ss_next_cursor(ts_sset_t *ss, ts_ss_cursor_t **cp)
{
    int              rc;
    ts_ss_cursor_t  *c;

    for ( ;; ) {
        rc = ts_ss_earliest(ss, &c, NULL);
        if (rc <= 0) {
            return rc;
        }

        if (c->active) {
            break;
        }

        rc = ts_ss_open_chunk(c);
        if (rc < 0) {
            return rc;
        }

        if (rc > 0) {
            break;
        }
    }

    *cp = c;

    return 1;
}


/*
 * Floats only: ts_ss_value() for XOR chunks without the copy, the
 * evaluator's hot path.
 */

int
ts_sset_sample(ts_sset_t *ss, int64_t *t, uint64_t *v)
{
    int              rc;
    ts_ss_cursor_t  *c;

    ss->mask = TS_SS_FLOATS;
    c = NULL;

    for ( ;; ) {

        /* one source decoding: no choice to make */

        if (ss->ncur == 1 && ss->cur[0].active) {
            c = &ss->cur[0];

        } else {
            rc = ts_ss_next_cursor(ss, &c);
            if (rc <= 0) {
                return rc;
            }
        }

        *t = c->t;
        *v = c->v;

        rc = ts_xor_iter_next_bits(&c->it, &c->t, &c->v);
        if (rc <= 0) {
            if (rc < 0) {
                return rc;
            }

            c->active = 0;
            c->i++;
        }

        if ((ss->has_last && *t <= ss->last) || *t < ss->mint) {
            continue;
        }

        if (*t > ss->maxt) {

            /* the rest of this source is later still */

            c->active = 0;
            c->i = c->n;
            c->more = 0;
            continue;
        }

        ss->last = *t;
        ss->has_last = 1;

        return 1;
    }
}


int
ts_sset_histogram(ts_sset_t *ss, int64_t *t, ts_hist_t *h)
{
    int                     rc;
    const ts_sset_value_t  *val;

    ss->mask = TS_SS_HISTS;

    rc = ts_ss_value(ss, &val);
    if (rc == 1) {
        *t = val->t;
        *h = val->h;
    }

    return rc;
}


int
ts_sset_value(ts_sset_t *ss, ts_sset_value_t *val)
{
    int                     rc;
    const ts_sset_value_t  *v;

    ss->mask = TS_SS_ALL;

    rc = ts_ss_value(ss, &v);
    if (rc == 1) {
        *val = *v;
    }

    return rc;
}


/*
 * The next sample of a kind in ss->mask of the series in time order
 * over all its sources: 1, 0 at the end, or an error.  Samples outside
 * [mint, maxt] and at or before the last one returned are skipped.  A
 * histogram is copied out of the cursor before it moves on.  *val is
 * ss->val, valid until the next call.
 */

static int
ts_ss_value(ts_sset_t *ss, const ts_sset_value_t **val)
{
    int              rc;
    int64_t          t;
    ts_ss_cursor_t  *c;

    ss->run = NULL;

    if (ss->pending) {
        ss->pending = 0;
        *val = &ss->val;
        return 1;
    }

    c = NULL;

    for ( ;; ) {
        rc = ts_ss_next_cursor(ss, &c);
        if (rc <= 0) {
            return rc;
        }

        t = c->t;

        if (t > ss->maxt) {

            /* the rest of this source is later still */

            c->active = 0;
            c->i = c->n;
            c->more = 0;
            continue;
        }

        if ((ss->has_last && t <= ss->last) || t < ss->mint) {
            rc = ts_ss_step(c);
            if (rc != TS_OK) {
                return rc;
            }

            continue;
        }

        ss->val.t = t;
        ss->val.enc = c->enc;

        if (c->enc == TS_XOR_ENCODING) {
            ss->val.v = c->v;

        } else {
            ss->val.v = 0;

            rc = ts_ss_hist_copy(ss, &ss->val.h, &c->h);
            if (rc != TS_OK) {
                return rc;
            }
        }

        rc = ts_ss_step(c);
        if (rc != TS_OK) {
            return rc;
        }

        ss->last = t;
        ss->has_last = 1;
        *val = &ss->val;

        return 1;
    }
}


/* copies src's arrays into ss->hcopy, 8-byte aligned */

static int
ts_ss_hist_copy(ts_sset_t *ss, ts_hist_t *dst, const ts_hist_t *src)
{
    size_t    size, off;
    uint8_t  *p;

#define TS_SS_AL(n)  (((n) + 7) & ~(size_t) 7)

    size = TS_SS_AL((size_t) src->n_neg_spans * sizeof(ts_hspan_t))
           + TS_SS_AL((size_t) src->n_pos_spans * sizeof(ts_hspan_t))
           + ((size_t) src->n_neg + src->n_pos + src->n_custom) * 8;

    ss->hcopy.len = 0;

    if (ts_buf_reserve(&ss->hcopy, size + 8) != TS_OK) {
        return TS_ERR_NOMEM;
    }

    *dst = *src;
    p = (uint8_t *) TS_SS_AL((uintptr_t) ss->hcopy.p);
    off = 0;

    if (src->n_neg_spans) {
        dst->neg_spans = memcpy(p + off, src->neg_spans,
                                src->n_neg_spans * sizeof(ts_hspan_t));
        off += TS_SS_AL(src->n_neg_spans * sizeof(ts_hspan_t));
    }

    if (src->n_pos_spans) {
        dst->pos_spans = memcpy(p + off, src->pos_spans,
                                src->n_pos_spans * sizeof(ts_hspan_t));
        off += TS_SS_AL(src->n_pos_spans * sizeof(ts_hspan_t));
    }

    if (src->n_neg) {
        if (src->is_float) {
            dst->neg_counts = memcpy(p + off, src->neg_counts,
                                     src->n_neg * sizeof(double));
        } else {
            dst->neg_deltas = memcpy(p + off, src->neg_deltas,
                                     src->n_neg * sizeof(int64_t));
        }

        off += src->n_neg * 8;
    }

    if (src->n_pos) {
        if (src->is_float) {
            dst->pos_counts = memcpy(p + off, src->pos_counts,
                                     src->n_pos * sizeof(double));
        } else {
            dst->pos_deltas = memcpy(p + off, src->pos_deltas,
                                     src->n_pos * sizeof(int64_t));
        }

        off += src->n_pos * 8;
    }

    if (src->n_custom) {
        dst->custom_values = memcpy(p + off, src->custom_values,
                                    src->n_custom * sizeof(double));
    }

#undef TS_SS_AL

    return TS_OK;
}

/*
 * 1 and the cursor whose next sample (the decoded one, or the first of
 * its next chunk) comes first, the earlier source on a tie; 0 if every
 * cursor is done; or an error.  other (if not NULL): the earliest next
 * time of the other cursors, INT64_MAX if none.
 */

static int
ts_ss_earliest(ts_sset_t *ss, ts_ss_cursor_t **cp, int64_t *other)
{
    int              rc;
    int64_t          bt, kt, ot;
    uint32_t         k;
    ts_ss_cmeta_t   *cm;
    ts_ss_cursor_t  *c, *best;

    best = NULL;
    bt = 0;
    ot = INT64_MAX;
    cm = NULL;

    for (k = 0; k < ss->ncur; k++) {
        c = &ss->cur[k];

        if (c->active) {
            kt = c->t;

        } else {
            rc = ts_ss_peek(c, ss->mask, &cm);
            if (rc < 0) {
                return rc;
            }

            if (rc == 0) {
                continue;
            }

            kt = cm->mint;
        }

        if (best == NULL || kt < bt) {
            if (best != NULL && bt < ot) {
                ot = bt;
            }

            best = c;
            bt = kt;

        } else if (kt < ot) {
            ot = kt;
        }
    }

    *cp = best;

    if (other != NULL) {
        *other = ot;
    }

    return best != NULL;
}

static int
ts_ss_boundary(ts_sset_t *ss)
{
    uint32_t  k;

    if (ss->pending) {
        return 0;
    }

    for (k = 0; k < ss->ncur; k++) {
        if (ss->cur[k].active) {
            return 0;
        }
    }

    return 1;
}

/* the series' next chunk to send: 1, 0 at its end, or an error */

int
ts_sset_chunk(ts_sset_t *ss, ts_sset_chunk_t *out)
{
    int  rc;

    ss->mask = TS_SS_ALL;

    for ( ;; ) {
        if (ts_ss_boundary(ss)) {
            rc = ts_ss_passthrough(ss, out);
            if (rc != 2) {
                return rc;
            }
        }

        rc = ts_ss_reencode(ss, out);
        if (rc != 0) {
            return rc;
        }
    }
}

/*
 * All sources at chunk boundaries: 1 if the earliest chunk can go as it
 * is, 2 if it must be merged, 0 if no chunk is left, or an error.
 */

static int
ts_ss_passthrough(ts_sset_t *ss, ts_sset_chunk_t *out)
{
    int              rc;
    int64_t          other;
    uint32_t         k;
    ts_ss_cmeta_t   *cm, *best;
    ts_ss_cursor_t  *bc;

    best = NULL;
    bc = NULL;
    cm = NULL;
    other = INT64_MAX;

    for (k = 0; k < ss->ncur; k++) {
        rc = ts_ss_peek(&ss->cur[k], TS_SS_ALL, &cm);
        if (rc < 0) {
            return rc;
        }

        if (rc == 0) {
            continue;
        }

        if (best == NULL || cm->mint < best->mint) {
            if (best != NULL && best->mint < other) {
                other = best->mint;
            }

            best = cm;
            bc = &ss->cur[k];

        } else if (cm->mint < other) {
            other = cm->mint;
        }
    }

    if (best == NULL) {
        return 0;
    }

    if ((ss->has_last && best->mint <= ss->last) || best->maxt >= other
        || (ss->conf.trim_chunks
            && (best->mint < ss->mint || best->maxt > ss->maxt)))
    {
        return 2;
    }

    out->mint = best->mint;
    out->maxt = best->maxt;
    out->encoding = best->enc;
    out->data = bc->data.p + best->off;
    out->len = best->len;

    bc->i++;
    ss->last = best->maxt;
    ss->has_last = 1;

    return 1;
}

/*
 * Merges samples into a new chunk of the first one's kind until it is
 * full (TS_XOR_SAMPLES_TARGET samples; a histogram chunk where
 * Prometheus would cut it), the kind changes, or every source is back
 * at a chunk boundary: 1 with the chunk, 0 if no sample came, or an
 * error.  A sample that does not go into the chunk is kept for the next.
 */

static int
ts_ss_reencode(ts_sset_t *ss, ts_sset_chunk_t *out)
{
    int                     rc;
    uint32_t                n;
    const ts_sset_value_t  *val;

    rc = ts_ss_value(ss, &val);
    if (rc <= 0) {
        return rc;
    }

    if (val->enc != TS_XOR_ENCODING) {
        ss->pending = 1;
        return ts_ss_reencode_hist(ss, out);
    }

    if (ts_xor_init(&ss->a, ss->enc, sizeof(ss->enc)) != TS_OK) {
        return TS_ERR_INVALID;
    }

    out->mint = val->t;
    n = 0;

    for ( ;; ) {
        rc = ts_xor_append_bits(&ss->a, ss->enc, val->t, val->v);
        if (rc != TS_OK) {
            return rc;
        }

        n++;
        out->maxt = val->t;

        if (n == TS_XOR_SAMPLES_TARGET || ts_ss_boundary(ss)) {
            break;
        }

        rc = ts_ss_value(ss, &val);
        if (rc < 0) {
            return rc;
        }

        if (rc == 0) {
            break;
        }

        if (val->enc != TS_XOR_ENCODING) {
            ss->pending = 1;
            ss->next_hdr = TS_HIST_HDR_UNKNOWN;
            break;
        }
    }

    out->encoding = TS_XOR_ENCODING;
    out->data = ss->enc;
    out->len = ts_xor_bytes(&ss->a);
    ss->reencoded++;

    return 1;
}


/*
 * The histogram version, the first sample pending: appends as
 * Prometheus's head does, a new chunk where it would cut one (also
 * where it would recode: a cut chunk holds the same samples).
 */

static int
ts_ss_reencode_hist(ts_sset_t *ss, ts_sset_chunk_t *out)
{
    int                     rc;
    unsigned                hdr, enc;
    const ts_sset_value_t  *val;

    rc = ts_ss_value(ss, &val);
    if (rc <= 0) {
        return rc;
    }

    /*
     * The header: what a cut decided, else gauge or unknown (the
     * sample's predecessor may come from another chunk: Prometheus then
     * detects resets itself)
     */

    hdr = ss->next_hdr;

    if (hdr == TS_HIST_HDR_UNKNOWN && val->h.reset_hint == TS_HIST_HINT_GAUGE)
    {
        hdr = TS_HIST_HDR_GAUGE;
    }

    ss->next_hdr = TS_HIST_HDR_UNKNOWN;

    rc = ts_ss_hist_start(ss, val, hdr);
    if (rc != TS_OK) {
        return rc;
    }

    enc = val->enc;
    out->mint = val->t;
    out->maxt = val->t;

    while (!ts_ss_boundary(ss)
           && !(ts_hist_count(ss->ha) >= TS_HIST_MIN_SAMPLES
                && ts_hist_bytes(ss->ha) >= TS_HIST_TARGET_BYTES))
    {
        rc = ts_ss_value(ss, &val);
        if (rc < 0) {
            return rc;
        }

        if (rc == 0) {
            break;
        }

        if (val->enc != enc) {
            ss->pending = 1;
            break;
        }

        rc = ts_hist_append(ss->ha, ss->henc, val->t, &val->h, &hdr);

        if (rc == TS_OK) {
            out->maxt = val->t;
            continue;
        }

        ss->pending = 1;

        if (rc == TS_HIST_CUT) {
            ss->next_hdr = hdr;

        } else if (rc == TS_HIST_RECODE) {
            ss->next_hdr = TS_HIST_HDR_NOT_RESET;

        } else if (rc == TS_ERR_FULL) {
            ss->next_hdr = ts_hist_cut_header(ss->ha, &val->h);

        } else {
            ss->pending = 0;
            return rc == TS_ERR_OUT_OF_ORDER ? TS_ERR_CORRUPT : rc;
        }

        break;
    }

    out->encoding = enc;
    out->data = ss->henc;
    out->len = ts_hist_bytes(ss->ha);
    ss->reencoded++;

    return 1;
}


/* a new histogram chunk in ss->henc with val as its first sample */

static int
ts_ss_hist_start(ts_sset_t *ss, const ts_sset_value_t *val, unsigned hdr)
{
    int     rc;
    void   *p;
    size_t  size;

    size = ts_hist_app_size(&val->h);
    if (size == 0) {
        return TS_ERR_CORRUPT;
    }

    if (size > ss->hasize) {
        p = realloc(ss->ha, size);
        if (p == NULL) {
            return TS_ERR_NOMEM;
        }

        ss->ha = p;
        ss->hasize = size;
    }

    if (ss->henc == NULL) {
        ss->henc = malloc(TS_SS_HENC_CAP);
        if (ss->henc == NULL) {
            return TS_ERR_NOMEM;
        }
    }

    rc = ts_hist_start(ss->ha, ss->hasize, ss->henc, TS_SS_HENC_CAP, hdr,
                       val->t, &val->h);

    if (rc == TS_ERR_FULL) {
        return TS_ERR_LIMIT;
    }

    return rc == TS_OK ? TS_OK : TS_ERR_CORRUPT;
}

int
ts_buf_reserve(ts_buf_t *b, size_t more)
{
    void    *p;
    size_t   cap;

    if (b->cap - b->len >= more) {
        return TS_OK;
    }

    cap = b->cap ? b->cap : 256;

    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2) {
            return TS_ERR_NOMEM;
        }

        cap *= 2;
    }

    p = realloc(b->p, cap);
    if (p == NULL) {
        return TS_ERR_NOMEM;
    }

    b->p = p;
    b->cap = cap;

    return TS_OK;
}


/*
 * ts_sset_value() for the PromQL evaluator: *val points into the set
 * (no copy; valid until the next call), and while one source decodes a
 * float chunk its samples come as ts_sset_sample() reads them, without
 * looking for the earliest source at each.
 */

int
ts_sset_value_ref(ts_sset_t *ss, const ts_sset_value_t **val)
{
    int              rc;
    int64_t          t;
    ts_ss_cursor_t  *c;

    ss->mask = TS_SS_ALL;

    if (ss->pending) {
        ss->run = NULL;
        return ts_ss_value(ss, val);
    }

    if (ss->ncur == 1) {
        ss->run = &ss->cur[0];
        ss->run_until = INT64_MAX;

    } else if (ss->run == NULL || !ss->run->active
               || ss->run->t >= ss->run_until)
    {
        /*
         * several sources: the earliest one's samples before any other
         * source's next one come in a run, without looking for the
         * earliest at each (that one may still need its chunk opened:
         * ts_ss_value() then)
         */

        rc = ts_ss_earliest(ss, &ss->run, &ss->run_until);
        if (rc <= 0) {
            ss->run = NULL;
            return rc;
        }
    }

    while (ss->run != NULL && ss->run->active
           && ss->run->enc == TS_XOR_ENCODING
           && ss->run->t < ss->run_until)
    {
        c = ss->run;
        t = c->t;
        ss->val.v = c->v;

        rc = ts_xor_iter_next_bits(&c->it, &c->t, &c->v);
        if (rc <= 0) {
            if (rc < 0) {
                return rc;
            }

            c->active = 0;
            c->i++;
        }

        if ((ss->has_last && t <= ss->last) || t < ss->mint) {
            continue;
        }

        if (t > ss->maxt) {

            /* the rest of this source is later still */

            c->active = 0;
            c->i = c->n;
            c->more = 0;
            continue;
        }

        ss->last = t;
        ss->has_last = 1;
        ss->val.t = t;
        ss->val.enc = TS_XOR_ENCODING;
        *val = &ss->val;

        return 1;
    }

    /* other cursors may move: the run is found again */

    ss->run = NULL;

    return ts_ss_value(ss, val);
}
