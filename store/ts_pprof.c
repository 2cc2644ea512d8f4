/*
 * Copyright (C) ngx_tsdb authors
 *
 * pprof decode, merge and encode.
 *
 * Decoding is hand-written rather than protobuf-c's unpack: unpack
 * allocates one struct per sample, label, location and line (an empty
 * Label is 2 wire bytes and ~60 bytes unpacked), hands strings back
 * NUL-terminated without their length (pprof strings may hold any
 * bytes) and needs a second copy to be normalized anyway.  Here two
 * passes over the wire bytes count then fill flat arrays ("raw" view:
 * strings point into the input, file ids resolved to 1-based indexes),
 * so decode memory is a fixed multiple of the input size, known before
 * the second pass, and the sample limit fails in the first pass.  The
 * raw view is then merged into the empty result, which is exactly
 * pprof's Compact (Merge of one profile): one code path normalizes and
 * merges.
 *
 * Invariants:
 *   - reading never leaves buf[0 .. len); every varint, length and
 *     index is checked before use;
 *   - every allocation goes through ts_pprof_alloc(), counted against
 *     lim.max_memory; freed memory is uncounted only when the allocator
 *     frees (a pool keeps it until it ends);
 *   - in a non-raw profile every string, function, mapping and location
 *     is unique under its Merge key and referenced by some sample,
 *     except after a sample summed to zero (p->zero), which the encoder
 *     compacts away.
 *
 * Deviation from Go's Merge, on purpose: its location key drops the
 * column of every inline frame but the last (an indexing slip in
 * Location.key()); all columns count here.  Go also tolerates a
 * location whose mapping id does not exist (it gets no mapping); that
 * is rejected here as a bad reference.
 */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "ts_error.h"
#include "ts_inflate.h"
#include "ts_pprof.h"


#define TS_PPROF_CHUNK       65536
#define TS_PPROF_OUT         16384

/* indexes of p->cap[] */
enum {
    TS_CAP_STR = 0,
    TS_CAP_TYPE,
    TS_CAP_COMMENT,
    TS_CAP_MAP,
    TS_CAP_FN,
    TS_CAP_LOC,
    TS_CAP_LINE,
    TS_CAP_SAMPLE,
    TS_CAP_STACK,
    TS_CAP_VALUE,
    TS_CAP_LABEL
};

/* indexes of p->tab[] */
enum {
    TS_TAB_STR = 0,
    TS_TAB_FN,
    TS_TAB_MAP,
    TS_TAB_LOC,
    TS_TAB_SAMPLE
};


struct ts_pprof_chunk_s {
    ts_pprof_chunk_t          *next;
    size_t                     size;
    size_t                     used;
    char                       data[];
};


typedef struct {
    uint64_t                   size;
    uint64_t                   offset;
    uint32_t                   name;       /* build id, else file */
} ts_pprof_mkey_t;


typedef struct {
    uint32_t                   mapping;
    uint32_t                   is_folded;
    uint64_t                   addr;       /* relative to the mapping */
    const ts_pprof_line_t     *lines;
    uint32_t                   nlines;
} ts_pprof_lkey_t;


typedef struct {
    const uint32_t            *stack;
    uint32_t                   depth;
    const ts_pprof_label_t    *labels;
    uint32_t                   nlabels;
} ts_pprof_skey_t;


/* per-source state of one merge */
typedef struct {
    ts_pprof_t                *dst;
    const ts_pprof_t          *src;
    uint32_t                  *smap;       /* src index -> dst, or NONE */
    uint32_t                  *fmap;
    uint32_t                  *mmap;
    uint32_t                  *lmap;
    int64_t                   *moff;       /* per src mapping */
    uint32_t                  *stack;      /* scratch */
    ts_pprof_label_t          *labels;
    ts_pprof_line_t           *lines;
    unsigned                   failed:1;
} ts_pprof_merger_t;


static const char  *ts_pprof_reasons[] = {
    "ok",
    "too_large",
    "bad_compression",
    "malformed",
    "bad_strings",
    "bad_string_ref",
    "bad_id",
    "bad_ref",
    "bad_values",
    "too_many_samples",
    "too_many_labels",
    "memory",
    "incompatible",
    "bad_text",
    "nomem",
};


_Static_assert(sizeof(ts_pprof_reasons) / sizeof(ts_pprof_reasons[0])
               == TS_PPROF_REASON_LAST, "a reason without a name");


void
ts_pprof_limits_default(ts_pprof_limits_t *lim)
{
    memset(lim, 0, sizeof(*lim));

    lim->max_decompressed = 4 * 1024 * 1024;
    lim->max_memory = 256 * 1024 * 1024;
    lim->max_samples = 16000;
    lim->max_depth = 1000;
    lim->max_labels = 100;
}


const char *
ts_pprof_reason_name(ts_pprof_reason_t code)
{
    if (code >= TS_PPROF_REASON_LAST) {
        return "unknown";
    }

    return ts_pprof_reasons[code];
}


/*
 * Sets why (may be NULL): code and a printf-formatted line, bytes
 * outside printable ASCII replaced by '?'.  Returns err for tail calls.
 */
int
ts_pprof_fail(ts_pprof_why_t *why, int err, ts_pprof_reason_t code,
    const char *fmt, ...)
{
    va_list  ap;
    char    *c;

    if (why == NULL) {
        return err;
    }

    why->code = code;

    va_start(ap, fmt);
    (void) vsnprintf(why->msg, sizeof(why->msg), fmt, ap);
    va_end(ap);

    for (c = why->msg; *c; c++) {
        if (*c < 0x20 || *c > 0x7e) {
            *c = '?';
        }
    }

    return err;
}


/* memory */

static void *
ts_pprof_malloc(void *data, size_t size)
{
    (void) data;

    return malloc(size);
}


static void
ts_pprof_mfree(void *data, void *p)
{
    (void) data;

    free(p);
}


static void *
ts_pprof_alloc(ts_pprof_t *p, size_t size)
{
    void  *m;

    if (p->lim.max_memory && (size > p->lim.max_memory
                              || p->used > p->lim.max_memory - size))
    {
        return NULL;
    }

    m = p->alloc.alloc(p->alloc.allocator_data, size ? size : 1);
    if (m == NULL) {
        p->used = SIZE_MAX;     /* tells NOMEM from the budget */
        return NULL;
    }

    p->used += size;

    return m;
}


static void
ts_pprof_release(ts_pprof_t *p, void *m, size_t size)
{
    if (m == NULL || p->alloc.free == NULL) {
        return;
    }

    p->alloc.free(p->alloc.allocator_data, m);
    p->used -= size < p->used ? size : p->used;
}


/* the error for a failed ts_pprof_alloc() */
static int
ts_pprof_nomem(ts_pprof_t *p, ts_pprof_why_t *why)
{
    if (p->used == SIZE_MAX) {
        return ts_pprof_fail(why, TS_ERR_NOMEM, TS_PPROF_NOMEM,
                             "out of memory");
    }

    return ts_pprof_fail(why, TS_ERR_LIMIT, TS_PPROF_MEMORY,
                         "profile needs more than %zu bytes of memory",
                         p->lim.max_memory);
}


/*
 * Room for n + more elements of size elem in arr (capacity *cap):
 * returns the array, moved if it had to grow, or NULL.
 */
static void *
ts_pprof_reserve(ts_pprof_t *p, void *arr, uint32_t *cap, uint32_t n,
    uint32_t more, size_t elem)
{
    void      *a;
    uint64_t   want, c;

    want = (uint64_t) n + more;

    /* an empty array is allocated even for no elements: NULL is failure */
    if (want <= *cap && arr != NULL) {
        return arr;
    }

    if (want > UINT32_MAX - 1) {
        return NULL;
    }

    c = *cap ? (uint64_t) *cap * 2 : 16;
    c = c < want ? want : c;
    c = c > UINT32_MAX - 1 ? UINT32_MAX - 1 : c;

    a = ts_pprof_alloc(p, c * elem);
    if (a == NULL) {
        return NULL;
    }

    if (n) {
        memcpy(a, arr, (size_t) n * elem);
    }

    ts_pprof_release(p, arr, (size_t) *cap * elem);
    *cap = (uint32_t) c;

    return a;
}


/* a copy of s[0 .. len) in the string arena */
static char *
ts_pprof_strdup(ts_pprof_t *p, const char *s, size_t len)
{
    size_t             size;
    ts_pprof_chunk_t  *c;

    c = p->chunks;

    if (c == NULL || c->size - c->used < len) {
        size = len > TS_PPROF_CHUNK ? len : TS_PPROF_CHUNK;

        c = ts_pprof_alloc(p, sizeof(ts_pprof_chunk_t) + size);
        if (c == NULL) {
            return NULL;
        }

        c->next = p->chunks;
        c->size = size;
        c->used = 0;
        p->chunks = c;
    }

    memcpy(c->data + c->used, s, len);
    c->used += len;

    return c->data + c->used - len;
}


void
ts_pprof_init(ts_pprof_t *p, ProtobufCAllocator *a,
    const ts_pprof_limits_t *lim)
{
    memset(p, 0, sizeof(*p));

    if (a != NULL) {
        p->alloc = *a;

    } else {
        p->alloc.alloc = ts_pprof_malloc;
        p->alloc.free = ts_pprof_mfree;
    }

    if (lim != NULL) {
        p->lim = *lim;

    } else {
        ts_pprof_limits_default(&p->lim);
    }
}


void
ts_pprof_free(ts_pprof_t *p)
{
    uint32_t            i;
    ts_pprof_chunk_t   *c, *next;
    ts_pprof_limits_t   lim;
    ProtobufCAllocator  a;

    if (!p->raw) {
        for (c = p->chunks; c != NULL; c = next) {
            next = c->next;
            ts_pprof_release(p, c, sizeof(ts_pprof_chunk_t) + c->size);
        }
    }

    ts_pprof_release(p, p->strings, p->cap[TS_CAP_STR]
                                    * sizeof(ts_pprof_str_t));
    ts_pprof_release(p, p->types, p->cap[TS_CAP_TYPE]
                                  * sizeof(ts_pprof_vtype_t));
    ts_pprof_release(p, p->comments, p->cap[TS_CAP_COMMENT]
                                     * sizeof(uint32_t));
    ts_pprof_release(p, p->mappings, p->cap[TS_CAP_MAP]
                                     * sizeof(ts_pprof_mapping_t));
    ts_pprof_release(p, p->functions, p->cap[TS_CAP_FN]
                                      * sizeof(ts_pprof_function_t));
    ts_pprof_release(p, p->locations, p->cap[TS_CAP_LOC]
                                      * sizeof(ts_pprof_location_t));
    ts_pprof_release(p, p->lines, p->cap[TS_CAP_LINE]
                                  * sizeof(ts_pprof_line_t));
    ts_pprof_release(p, p->samples, p->cap[TS_CAP_SAMPLE]
                                    * sizeof(ts_pprof_sample_t));
    ts_pprof_release(p, p->stacks, p->cap[TS_CAP_STACK]
                                   * sizeof(uint32_t));
    ts_pprof_release(p, p->values, p->cap[TS_CAP_VALUE]
                                   * sizeof(int64_t));
    ts_pprof_release(p, p->labels, p->cap[TS_CAP_LABEL]
                                   * sizeof(ts_pprof_label_t));

    for (i = 0; i < sizeof(p->tab) / sizeof(p->tab[0]); i++) {
        if (p->tab[i].slot != NULL) {
            ts_pprof_release(p, p->tab[i].slot,
                             ((size_t) p->tab[i].mask + 1)
                             * sizeof(uint64_t));
        }
    }

    a = p->alloc;
    lim = p->lim;
    ts_pprof_init(p, &a, &lim);
}


/* dedup tables: open addressing, load at most 1/2 */

static uint64_t
ts_pprof_mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdULL;

    return h ^ (h >> 32);
}


static uint64_t
ts_pprof_mkey(const ts_pprof_mapping_t *m, ts_pprof_mkey_t *k)
{
    uint64_t  size;

    /* as Mapping.key(): the size rounded up to 4 KiB, wrapping */
    size = m->limit - m->start;
    size = size + 0xfff;
    size = size - (size % 0x1000);

    k->size = size;
    k->offset = m->offset;
    k->name = m->build_id ? m->build_id : m->file;

    return ts_pprof_mix(ts_pprof_mix(ts_pprof_mix(0, k->size), k->offset),
                        k->name);
}


static uint64_t
ts_pprof_hash_fn(const ts_pprof_function_t *f)
{
    uint64_t  h;

    h = ts_pprof_mix(1, f->name);
    h = ts_pprof_mix(h, f->system_name);
    h = ts_pprof_mix(h, f->filename);

    return ts_pprof_mix(h, (uint64_t) f->start_line);
}


static uint64_t
ts_pprof_hash_loc(const ts_pprof_lkey_t *k)
{
    uint64_t  h;
    uint32_t  i;

    h = ts_pprof_mix(2, k->mapping);
    h = ts_pprof_mix(h, k->addr);
    h = ts_pprof_mix(h, k->is_folded);

    for (i = 0; i < k->nlines; i++) {
        h = ts_pprof_mix(h, k->lines[i].function);
        h = ts_pprof_mix(h, (uint64_t) k->lines[i].line);
        h = ts_pprof_mix(h, (uint64_t) k->lines[i].column);
    }

    return h;
}


static uint64_t
ts_pprof_hash_sample(const ts_pprof_skey_t *k)
{
    uint64_t                 h;
    uint32_t                 i;
    const ts_pprof_label_t  *l;

    h = ts_xxh64(k->stack, (size_t) k->depth * sizeof(uint32_t), 3);

    for (i = 0; i < k->nlabels; i++) {
        l = &k->labels[i];
        h = ts_pprof_mix(h, ((uint64_t) l->key << 32) | l->str);
        h = ts_pprof_mix(h, ((uint64_t) l->unit << 32) | 1);
        h = ts_pprof_mix(h, (uint64_t) l->num);
    }

    return h;
}


static void
ts_pprof_lkey(const ts_pprof_t *p, uint32_t id, ts_pprof_lkey_t *k)
{
    const ts_pprof_location_t  *l;

    l = &p->locations[id - 1];

    k->mapping = l->mapping;
    k->is_folded = l->is_folded;
    k->addr = l->address
              - (l->mapping ? p->mappings[l->mapping - 1].start : 0);
    k->lines = &p->lines[l->line];
    k->nlines = l->nlines;
}


static int
ts_pprof_eq_label(const ts_pprof_label_t *a, const ts_pprof_label_t *b)
{
    return a->key == b->key && a->str == b->str && a->unit == b->unit
           && a->num == b->num;
}


static int
ts_pprof_eq(const ts_pprof_t *p, int kind, uint32_t id, const void *key)
{
    uint32_t                    i;
    ts_pprof_lkey_t             lk;
    ts_pprof_mkey_t             mk;
    const ts_pprof_str_t       *s, *ks;
    const ts_pprof_lkey_t      *l;
    const ts_pprof_mkey_t      *m;
    const ts_pprof_skey_t      *sk;
    const ts_pprof_sample_t    *smp;
    const ts_pprof_function_t  *f, *kf;

    switch (kind) {

    case TS_TAB_STR:
        s = &p->strings[id];
        ks = key;
        return s->len == ks->len && memcmp(s->data, ks->data, s->len) == 0;

    case TS_TAB_FN:
        f = &p->functions[id - 1];
        kf = key;
        return f->name == kf->name && f->system_name == kf->system_name
               && f->filename == kf->filename
               && f->start_line == kf->start_line;

    case TS_TAB_MAP:
        m = key;
        (void) ts_pprof_mkey(&p->mappings[id - 1], &mk);
        return mk.size == m->size && mk.offset == m->offset
               && mk.name == m->name;

    case TS_TAB_LOC:
        l = key;
        ts_pprof_lkey(p, id, &lk);

        if (lk.mapping != l->mapping || lk.addr != l->addr
            || lk.is_folded != l->is_folded || lk.nlines != l->nlines)
        {
            return 0;
        }

        for (i = 0; i < l->nlines; i++) {
            if (lk.lines[i].function != l->lines[i].function
                || lk.lines[i].line != l->lines[i].line
                || lk.lines[i].column != l->lines[i].column)
            {
                return 0;
            }
        }

        return 1;

    default:
        sk = key;
        smp = &p->samples[id - 1];

        if (smp->depth != sk->depth || smp->nlabels != sk->nlabels
            || memcmp(&p->stacks[smp->stack], sk->stack,
                      (size_t) sk->depth * sizeof(uint32_t)) != 0)
        {
            return 0;
        }

        for (i = 0; i < sk->nlabels; i++) {
            if (!ts_pprof_eq_label(&p->labels[smp->label + i],
                                   &sk->labels[i]))
            {
                return 0;
            }
        }

        return 1;
    }
}


/* room for one more entry in table kind; 0 on memory failure */
static int
ts_pprof_tab_room(ts_pprof_t *p, int kind)
{
    uint64_t        *slot, s;
    uint32_t         size, i, j;
    ts_pprof_tab_t  *t;

    t = &p->tab[kind];

    if (t->slot != NULL && ((uint64_t) t->n + 1) * 2 <= (uint64_t) t->mask)
    {
        return 1;
    }

    size = t->slot != NULL ? (t->mask + 1) * 2 : 64;

    if (size == 0) {
        return 0;
    }

    slot = ts_pprof_alloc(p, (size_t) size * sizeof(uint64_t));
    if (slot == NULL) {
        return 0;
    }

    memset(slot, 0, (size_t) size * sizeof(uint64_t));

    for (i = 0; t->slot != NULL && i <= t->mask; i++) {
        s = t->slot[i];

        if (s == 0) {
            continue;
        }

        for (j = (uint32_t) (s >> 32) & (size - 1); slot[j];
             j = (j + 1) & (size - 1))
        {
            /* void */
        }

        slot[j] = s;
    }

    if (t->slot != NULL) {
        ts_pprof_release(p, t->slot, ((size_t) t->mask + 1)
                                     * sizeof(uint64_t));
    }

    t->slot = slot;
    t->mask = size - 1;

    return 1;
}


/* the id of an entry equal to key, or 0 and *hole for inserting it */
static uint32_t
ts_pprof_find(const ts_pprof_t *p, int kind, uint32_t h, const void *key,
    uint64_t **hole)
{
    uint64_t               s;
    uint32_t               i;
    const ts_pprof_tab_t  *t;

    t = &p->tab[kind];
    *hole = NULL;

    for (i = h & t->mask; ; i = (i + 1) & t->mask) {
        s = t->slot[i];

        if (s == 0) {
            *hole = &t->slot[i];
            return 0;
        }

        if ((uint32_t) (s >> 32) == h
            && ts_pprof_eq(p, kind, (uint32_t) s, key))
        {
            return (uint32_t) s;
        }
    }
}


static void
ts_pprof_put(ts_pprof_t *p, int kind, uint64_t *hole, uint32_t h,
    uint32_t id)
{
    *hole = ((uint64_t) h << 32) | id;
    p->tab[kind].n++;
}


/* the index of s[0 .. len) in p's strings, added if new; NONE: memory */
static uint32_t
ts_pprof_intern(ts_pprof_t *p, const char *s, uint32_t len)
{
    void            *a;
    char            *copy;
    uint32_t         h, id;
    uint64_t        *hole;
    ts_pprof_str_t   key;

    if (p->nstrings == 0) {
        a = ts_pprof_reserve(p, p->strings, &p->cap[TS_CAP_STR], 0, 16,
                             sizeof(ts_pprof_str_t));
        if (a == NULL) {
            return TS_PPROF_NONE;
        }

        p->strings = a;
        p->strings[0].data = "";
        p->strings[0].len = 0;
        p->nstrings = 1;
    }

    if (len == 0) {
        return 0;
    }

    if (!ts_pprof_tab_room(p, TS_TAB_STR)) {
        return TS_PPROF_NONE;
    }

    key.data = s;
    key.len = len;
    h = (uint32_t) ts_xxh64(s, len, 0);

    id = ts_pprof_find(p, TS_TAB_STR, h, &key, &hole);
    if (id) {
        return id;
    }

    a = ts_pprof_reserve(p, p->strings, &p->cap[TS_CAP_STR], p->nstrings,
                         1, sizeof(ts_pprof_str_t));
    if (a == NULL) {
        return TS_PPROF_NONE;
    }

    p->strings = a;

    copy = ts_pprof_strdup(p, s, len);
    if (copy == NULL) {
        return TS_PPROF_NONE;
    }

    id = p->nstrings++;
    p->strings[id].data = copy;
    p->strings[id].len = len;
    ts_pprof_put(p, TS_TAB_STR, hole, h, id);

    return id;
}


/* merge */

static uint32_t
ts_pprof_mstr(ts_pprof_merger_t *m, uint32_t i)
{
    uint32_t  id;

    if (m->smap[i] == TS_PPROF_NONE) {
        id = ts_pprof_intern(m->dst, m->src->strings[i].data,
                             m->src->strings[i].len);
        if (id == TS_PPROF_NONE) {
            m->failed = 1;
            return 0;
        }

        m->smap[i] = id;
    }

    return m->smap[i];
}


/* builders: find or add an entry given in p's own string ids */

uint32_t
ts_pprof_add_string(ts_pprof_t *p, const char *s, size_t len)
{
    if (len > UINT32_MAX - 1) {
        return TS_PPROF_NONE;
    }

    return ts_pprof_intern(p, s, (uint32_t) len);
}


int
ts_pprof_set_types(ts_pprof_t *p, const ts_pprof_vtype_t *types,
    uint32_t n)
{
    void      *a;
    uint32_t   i;

    for (i = 0; i < n; i++) {
        if (types[i].type >= p->nstrings || types[i].unit >= p->nstrings) {
            return TS_ERR_INVALID;
        }
    }

    if (p->nmerged != 0 || p->nsamples != 0) {
        return TS_ERR_INVALID;
    }

    a = ts_pprof_reserve(p, p->types, &p->cap[TS_CAP_TYPE], 0, n,
                         sizeof(ts_pprof_vtype_t));
    if (a == NULL) {
        return p->used == SIZE_MAX ? TS_ERR_NOMEM : TS_ERR_LIMIT;
    }

    p->types = a;
    memcpy(p->types, types, (size_t) n * sizeof(ts_pprof_vtype_t));
    p->ntypes = n;
    p->nmerged = 1;

    return TS_OK;
}

uint32_t
ts_pprof_add_function(ts_pprof_t *p, const ts_pprof_function_t *f)
{
    void      *a;
    uint32_t   h, id;
    uint64_t  *hole;

    if (f->name >= p->nstrings || f->system_name >= p->nstrings
        || f->filename >= p->nstrings || !ts_pprof_tab_room(p, TS_TAB_FN))
    {
        return 0;
    }

    h = (uint32_t) ts_pprof_hash_fn(f);

    id = ts_pprof_find(p, TS_TAB_FN, h, f, &hole);
    if (id) {
        return id;
    }

    a = ts_pprof_reserve(p, p->functions, &p->cap[TS_CAP_FN], p->nfunctions,
                         1, sizeof(ts_pprof_function_t));
    if (a == NULL) {
        return 0;
    }

    p->functions = a;
    p->functions[p->nfunctions] = *f;
    id = ++p->nfunctions;
    ts_pprof_put(p, TS_TAB_FN, hole, h, id);

    return id;
}


/* as ts_pprof_add_mapping(), telling whether it was there already */
static uint32_t
ts_pprof_mapping_id(ts_pprof_t *p, const ts_pprof_mapping_t *m, int *found)
{
    void             *a;
    uint32_t          h, id;
    uint64_t         *hole;
    ts_pprof_mkey_t   k;

    *found = 0;
    h = (uint32_t) ts_pprof_mkey(m, &k);

    if (!ts_pprof_tab_room(p, TS_TAB_MAP)) {
        return 0;
    }

    id = ts_pprof_find(p, TS_TAB_MAP, h, &k, &hole);
    if (id) {
        *found = 1;
        return id;
    }

    a = ts_pprof_reserve(p, p->mappings, &p->cap[TS_CAP_MAP], p->nmappings,
                         1, sizeof(ts_pprof_mapping_t));
    if (a == NULL) {
        return 0;
    }

    p->mappings = a;
    p->mappings[p->nmappings] = *m;
    id = ++p->nmappings;
    ts_pprof_put(p, TS_TAB_MAP, hole, h, id);

    return id;
}


uint32_t
ts_pprof_add_mapping(ts_pprof_t *p, const ts_pprof_mapping_t *m)
{
    int  found;

    return ts_pprof_mapping_id(p, m, &found);
}


uint32_t
ts_pprof_add_location(ts_pprof_t *p, uint32_t mapping, uint64_t address,
    uint32_t is_folded, const ts_pprof_line_t *lines, uint32_t nlines)
{
    void                 *a;
    uint32_t              h, id;
    uint64_t             *hole;
    uint32_t              i;
    ts_pprof_lkey_t       k;
    ts_pprof_location_t  *d;

    for (i = 0; i < nlines; i++) {
        if (lines[i].function == 0 || lines[i].function > p->nfunctions) {
            return 0;
        }
    }

    if (mapping > p->nmappings || !ts_pprof_tab_room(p, TS_TAB_LOC)) {
        return 0;
    }

    /* the key has the address relative to the mapping, not the location */
    k.mapping = mapping;
    k.is_folded = is_folded != 0;
    k.addr = address - (mapping ? p->mappings[mapping - 1].start : 0);
    k.lines = lines;
    k.nlines = nlines;
    h = (uint32_t) ts_pprof_hash_loc(&k);

    id = ts_pprof_find(p, TS_TAB_LOC, h, &k, &hole);
    if (id) {
        return id;
    }

    a = ts_pprof_reserve(p, p->lines, &p->cap[TS_CAP_LINE], p->nlines,
                         nlines, sizeof(ts_pprof_line_t));
    if (a == NULL) {
        return 0;
    }

    p->lines = a;

    a = ts_pprof_reserve(p, p->locations, &p->cap[TS_CAP_LOC],
                         p->nlocations, 1, sizeof(ts_pprof_location_t));
    if (a == NULL) {
        return 0;
    }

    p->locations = a;

    d = &p->locations[p->nlocations];
    d->mapping = mapping;
    d->line = p->nlines;
    d->nlines = nlines;
    d->is_folded = k.is_folded;
    d->address = address;

    if (nlines) {
        memcpy(&p->lines[p->nlines], lines,
               (size_t) nlines * sizeof(ts_pprof_line_t));
    }

    p->nlines += nlines;
    id = ++p->nlocations;
    ts_pprof_put(p, TS_TAB_LOC, hole, h, id);

    return id;
}


/* string labels first, then numeric ones, each by key; stable */
static int
ts_pprof_label_before(const ts_pprof_label_t *a, const ts_pprof_label_t *b)
{
    if ((a->str == 0) != (b->str == 0)) {
        return a->str != 0;
    }

    return a->key < b->key;
}


/* canonical labels into out; returns their number */
static uint32_t
ts_pprof_labels_sort(const ts_pprof_label_t *in, uint32_t n,
    ts_pprof_label_t *out)
{
    uint32_t          i, j, k;
    ts_pprof_label_t  l;

    for (i = 0, k = 0; i < n; i++) {
        l = in[i];

        if (l.str) {
            l.num = 0;
            l.unit = 0;
        }

        /* as Go's decoder: neither a string nor a number is no label */
        if (l.str == 0 && l.num == 0 && l.unit == 0) {
            continue;
        }

        for (j = k; j > 0 && ts_pprof_label_before(&l, &out[j - 1]); j--) {
            out[j] = out[j - 1];
        }

        out[j] = l;
        k++;
    }

    return k;
}


static int
ts_pprof_zero(const int64_t *v, uint32_t n)
{
    uint32_t  i;

    for (i = 0; i < n; i++) {
        if (v[i] != 0) {
            return 0;
        }
    }

    return 1;
}


static int
ts_pprof_new_sample(ts_pprof_t *p, const ts_pprof_skey_t *k, uint32_t h,
    uint64_t *hole, const int64_t *v)
{
    void               *a;
    uint32_t            nt;
    ts_pprof_sample_t  *s;

    nt = p->ntypes;

    a = ts_pprof_reserve(p, p->stacks, &p->cap[TS_CAP_STACK], p->nstacks,
                         k->depth, sizeof(uint32_t));
    if (a == NULL) {
        return TS_ERR_NOMEM;
    }

    p->stacks = a;

    a = ts_pprof_reserve(p, p->labels, &p->cap[TS_CAP_LABEL], p->nlabels,
                         k->nlabels, sizeof(ts_pprof_label_t));
    if (a == NULL) {
        return TS_ERR_NOMEM;
    }

    p->labels = a;

    a = ts_pprof_reserve(p, p->samples, &p->cap[TS_CAP_SAMPLE], p->nsamples,
                         1, sizeof(ts_pprof_sample_t));
    if (a == NULL) {
        return TS_ERR_NOMEM;
    }

    p->samples = a;

    if ((uint64_t) (p->nsamples + 1) * nt > UINT32_MAX - 1) {
        return TS_ERR_NOMEM;
    }

    a = ts_pprof_reserve(p, p->values, &p->cap[TS_CAP_VALUE],
                         p->nsamples * nt, nt, sizeof(int64_t));
    if (a == NULL) {
        return TS_ERR_NOMEM;
    }

    p->values = a;

    s = &p->samples[p->nsamples];
    s->stack = p->nstacks;
    s->depth = k->depth;
    s->label = p->nlabels;
    s->nlabels = k->nlabels;

    if (k->depth) {
        memcpy(&p->stacks[p->nstacks], k->stack,
               (size_t) k->depth * sizeof(uint32_t));
    }

    if (k->nlabels) {
        memcpy(&p->labels[p->nlabels], k->labels,
               (size_t) k->nlabels * sizeof(ts_pprof_label_t));
    }

    memcpy(&p->values[(size_t) p->nsamples * nt], v,
           (size_t) nt * sizeof(int64_t));

    p->nstacks += k->depth;
    p->nlabels += k->nlabels;
    p->nsamples++;
    ts_pprof_put(p, TS_TAB_SAMPLE, hole, h, p->nsamples);

    return TS_OK;
}


/* labels must be canonical (ts_pprof_labels_sort()) */
static int
ts_pprof_sample_sorted(ts_pprof_t *p, const uint32_t *stack,
    uint32_t depth, const int64_t *values, const ts_pprof_label_t *labels,
    uint32_t nlabels)
{
    int64_t          *d;
    uint32_t          i, h, id;
    uint64_t         *hole;
    ts_pprof_skey_t   k;

    if (ts_pprof_zero(values, p->ntypes)) {
        return TS_OK;
    }

    if (!ts_pprof_tab_room(p, TS_TAB_SAMPLE)) {
        return TS_ERR_NOMEM;
    }

    k.stack = stack;
    k.depth = depth;
    k.labels = labels;
    k.nlabels = nlabels;
    h = (uint32_t) ts_pprof_hash_sample(&k);

    id = ts_pprof_find(p, TS_TAB_SAMPLE, h, &k, &hole);
    if (id == 0) {
        return ts_pprof_new_sample(p, &k, h, hole, values);
    }

    d = &p->values[(size_t) (id - 1) * p->ntypes];

    for (i = 0; i < p->ntypes; i++) {
        d[i] = (int64_t) ((uint64_t) d[i] + (uint64_t) values[i]);
    }

    if (ts_pprof_zero(d, p->ntypes)) {
        p->zero = 1;
    }

    return TS_OK;
}


int
ts_pprof_add_sample(ts_pprof_t *p, const uint32_t *stack, uint32_t depth,
    const int64_t *values, const ts_pprof_label_t *labels,
    uint32_t nlabels, ts_pprof_why_t *why)
{
    int                rc;
    uint32_t           i, n;
    ts_pprof_label_t   buf[16], *sorted;

    for (i = 0; i < depth; i++) {
        if (stack[i] == 0 || stack[i] > p->nlocations) {
            return ts_pprof_fail(why, TS_ERR_INVALID, TS_PPROF_BAD_REF,
                                 "sample refers to location %u, which "
                                 "does not exist", stack[i]);
        }
    }

    sorted = buf;

    if (nlabels > 16) {
        sorted = ts_pprof_alloc(p, (size_t) nlabels
                                   * sizeof(ts_pprof_label_t));
        if (sorted == NULL) {
            return ts_pprof_nomem(p, why);
        }
    }

    n = ts_pprof_labels_sort(labels, nlabels, sorted);
    rc = ts_pprof_sample_sorted(p, stack, depth, values, sorted, n);

    if (sorted != buf) {
        ts_pprof_release(p, sorted, (size_t) nlabels
                                    * sizeof(ts_pprof_label_t));
    }

    return rc == TS_OK ? TS_OK : ts_pprof_nomem(p, why);
}


/* merge: src entries mapped into dst on first use */

static uint32_t
ts_pprof_mfn(ts_pprof_merger_t *m, uint32_t sf)
{
    uint32_t                    id;
    ts_pprof_function_t         k;
    const ts_pprof_function_t  *f;

    if (m->fmap[sf - 1]) {
        return m->fmap[sf - 1];
    }

    f = &m->src->functions[sf - 1];

    k.name = ts_pprof_mstr(m, f->name);
    k.system_name = ts_pprof_mstr(m, f->system_name);
    k.filename = ts_pprof_mstr(m, f->filename);
    k.start_line = f->start_line;

    id = m->failed ? 0 : ts_pprof_add_function(m->dst, &k);
    m->failed |= id == 0;
    m->fmap[sf - 1] = id;

    return id;
}


/* the dst mapping for src mapping sm and the address shift into it */
static uint32_t
ts_pprof_mmapping(ts_pprof_merger_t *m, uint32_t sm, int64_t *off)
{
    int                        found;
    uint32_t                   id;
    ts_pprof_mapping_t         c;
    const ts_pprof_mapping_t  *s;

    if (m->mmap[sm - 1]) {
        *off = m->moff[sm - 1];
        return m->mmap[sm - 1];
    }

    s = &m->src->mappings[sm - 1];
    found = 0;

    c = *s;
    c.file = ts_pprof_mstr(m, s->file);
    c.build_id = ts_pprof_mstr(m, s->build_id);

    id = m->failed ? 0 : ts_pprof_mapping_id(m->dst, &c, &found);
    *off = 0;

    if (id == 0) {
        m->failed = 1;
        return 0;
    }

    /* as mapMapping(): relocate into the mapping seen first */
    if (found) {
        *off = (int64_t) (m->dst->mappings[id - 1].start - s->start);
    }

    m->mmap[sm - 1] = id;
    m->moff[sm - 1] = *off;

    return id;
}


static uint32_t
ts_pprof_mloc(ts_pprof_merger_t *m, uint32_t sl)
{
    int64_t                     off;
    uint32_t                    i, id, mapping;
    const ts_pprof_line_t      *ln;
    const ts_pprof_location_t  *l;

    if (m->lmap[sl - 1]) {
        return m->lmap[sl - 1];
    }

    l = &m->src->locations[sl - 1];
    ln = &m->src->lines[l->line];
    off = 0;

    mapping = l->mapping ? ts_pprof_mmapping(m, l->mapping, &off) : 0;

    for (i = 0; i < l->nlines; i++) {
        m->lines[i].function = ts_pprof_mfn(m, ln[i].function);
        m->lines[i].line = ln[i].line;
        m->lines[i].column = ln[i].column;
    }

    id = m->failed ? 0
                   : ts_pprof_add_location(m->dst, mapping,
                                           l->address + (uint64_t) off,
                                           l->is_folded, m->lines,
                                           l->nlines);
    m->failed |= id == 0;
    m->lmap[sl - 1] = id;

    return id;
}


static int
ts_pprof_msample(ts_pprof_merger_t *m, const ts_pprof_sample_t *s,
    const int64_t *v)
{
    uint32_t                 i, n;
    ts_pprof_label_t        *l;
    const ts_pprof_label_t  *sl;

    if (ts_pprof_zero(v, m->dst->ntypes)) {
        return 1;
    }

    for (i = 0; i < s->depth; i++) {
        m->stack[i] = ts_pprof_mloc(m, m->src->stacks[s->stack + i]);
    }

    /* mapped in place, then sorted into the second half of the scratch */
    for (i = 0; i < s->nlabels; i++) {
        sl = &m->src->labels[s->label + i];
        l = &m->labels[i];
        l->str = sl->str ? ts_pprof_mstr(m, sl->str) : 0;
        l->unit = sl->str ? 0 : ts_pprof_mstr(m, sl->unit);
        l->num = sl->str ? 0 : sl->num;

        /* no key string for a label that ts_pprof_labels_sort() drops */
        l->key = (l->str || l->num || l->unit) ? ts_pprof_mstr(m, sl->key)
                                               : 0;
    }

    n = ts_pprof_labels_sort(m->labels, s->nlabels,
                             m->labels + s->nlabels);

    return !m->failed
           && ts_pprof_sample_sorted(m->dst, m->stack, s->depth, v,
                                     m->labels + s->nlabels, n) == TS_OK;
}


static int
ts_pprof_str_same(const ts_pprof_t *a, uint32_t ai, const ts_pprof_t *b,
    uint32_t bi)
{
    const ts_pprof_str_t  *x, *y;

    x = &a->strings[ai];
    y = &b->strings[bi];

    return x->len == y->len && memcmp(x->data, y->data, x->len) == 0;
}


static int
ts_pprof_vt_same(const ts_pprof_t *a, const ts_pprof_vtype_t *x,
    const ts_pprof_t *b, const ts_pprof_vtype_t *y)
{
    return ts_pprof_str_same(a, x->type, b, y->type)
           && ts_pprof_str_same(a, x->unit, b, y->unit);
}


static int
ts_pprof_compatible(const ts_pprof_t *dst, const ts_pprof_t *src,
    ts_pprof_why_t *why)
{
    uint32_t  i;

    if (dst->nmerged == 0) {
        return TS_OK;
    }

    if (!ts_pprof_vt_same(dst, &dst->period_type, src, &src->period_type))
    {
        return ts_pprof_fail(why, TS_ERR_INVALID, TS_PPROF_INCOMPATIBLE,
                             "incompatible period types");
    }

    for (i = 0; i < dst->ntypes && i < src->ntypes; i++) {
        if (!ts_pprof_vt_same(dst, &dst->types[i], src, &src->types[i])) {
            break;
        }
    }

    if (i < dst->ntypes || i < src->ntypes) {
        return ts_pprof_fail(why, TS_ERR_INVALID, TS_PPROF_INCOMPATIBLE,
                             "incompatible sample types");
    }

    return TS_OK;
}


static void
ts_pprof_first_headers(ts_pprof_merger_t *m)
{
    void              *a;
    uint32_t           i;
    ts_pprof_t        *dst;
    const ts_pprof_t  *src;

    dst = m->dst;
    src = m->src;

    a = ts_pprof_reserve(dst, dst->types, &dst->cap[TS_CAP_TYPE], 0,
                         src->ntypes, sizeof(ts_pprof_vtype_t));
    if (a == NULL) {
        m->failed = 1;
        return;
    }

    dst->types = a;

    for (i = 0; i < src->ntypes; i++) {
        dst->types[i].type = ts_pprof_mstr(m, src->types[i].type);
        dst->types[i].unit = ts_pprof_mstr(m, src->types[i].unit);
    }

    dst->ntypes = src->ntypes;
    dst->period_type.type = ts_pprof_mstr(m, src->period_type.type);
    dst->period_type.unit = ts_pprof_mstr(m, src->period_type.unit);
    dst->drop_frames = ts_pprof_mstr(m, src->drop_frames);
    dst->keep_frames = ts_pprof_mstr(m, src->keep_frames);
}


/* combineHeaders() of merge.go, one profile at a time */
static void
ts_pprof_headers(ts_pprof_merger_t *m)
{
    void              *a;
    uint32_t           i, j, c;
    ts_pprof_t        *dst;
    const ts_pprof_t  *src;

    dst = m->dst;
    src = m->src;

    if (dst->nmerged == 0) {
        ts_pprof_first_headers(m);
    }

    if (dst->time_nanos == 0 || src->time_nanos < dst->time_nanos) {
        dst->time_nanos = src->time_nanos;
    }

    dst->duration_nanos = (int64_t) ((uint64_t) dst->duration_nanos
                                     + (uint64_t) src->duration_nanos);

    if (dst->period == 0 || dst->period < src->period) {
        dst->period = src->period;
    }

    for (i = 0; i < src->ncomments; i++) {
        c = ts_pprof_mstr(m, src->comments[i]);

        for (j = 0; j < dst->ncomments && dst->comments[j] != c; j++) {
            /* void */
        }

        if (j < dst->ncomments) {
            continue;
        }

        a = ts_pprof_reserve(dst, dst->comments, &dst->cap[TS_CAP_COMMENT],
                             dst->ncomments, 1, sizeof(uint32_t));
        if (a == NULL) {
            m->failed = 1;
            return;
        }

        dst->comments = a;
        dst->comments[dst->ncomments++] = c;
    }

    if (dst->default_type == 0) {
        dst->default_type = ts_pprof_mstr(m, src->default_type);
    }

    if (dst->doc_url == 0) {
        dst->doc_url = ts_pprof_mstr(m, src->doc_url);
    }
}


/* the merger's maps and scratch, in one allocation */
static size_t
ts_pprof_merger_size(const ts_pprof_t *src, uint32_t *depth,
    uint32_t *nlab, uint32_t *nln)
{
    uint32_t  i;

    *depth = 0;
    *nlab = 0;
    *nln = 0;

    for (i = 0; i < src->nsamples; i++) {
        *depth = src->samples[i].depth > *depth ? src->samples[i].depth
                                                : *depth;
        *nlab = src->samples[i].nlabels > *nlab ? src->samples[i].nlabels
                                                : *nlab;
    }

    for (i = 0; i < src->nlocations; i++) {
        *nln = src->locations[i].nlines > *nln ? src->locations[i].nlines
                                               : *nln;
    }

    return (size_t) src->nmappings * sizeof(int64_t)
           + (size_t) *nlab * 2 * sizeof(ts_pprof_label_t)
           + (size_t) *nln * sizeof(ts_pprof_line_t)
           + ((size_t) src->nstrings + src->nfunctions + src->nmappings
              + src->nlocations + *depth) * sizeof(uint32_t);
}


static void
ts_pprof_merger_carve(ts_pprof_merger_t *m, char *mem, uint32_t nlab,
    uint32_t nln)
{
    const ts_pprof_t  *src;

    src = m->src;

    /* 8-byte members first, then 4-byte ones: all aligned */
    m->moff = (int64_t *) mem;
    mem += (size_t) src->nmappings * sizeof(int64_t);
    m->labels = (ts_pprof_label_t *) mem;
    mem += (size_t) nlab * 2 * sizeof(ts_pprof_label_t);
    m->lines = (ts_pprof_line_t *) mem;
    mem += (size_t) nln * sizeof(ts_pprof_line_t);
    m->smap = (uint32_t *) mem;
    mem += (size_t) src->nstrings * sizeof(uint32_t);
    m->fmap = (uint32_t *) mem;
    mem += (size_t) src->nfunctions * sizeof(uint32_t);
    m->mmap = (uint32_t *) mem;
    mem += (size_t) src->nmappings * sizeof(uint32_t);
    m->lmap = (uint32_t *) mem;
    mem += (size_t) src->nlocations * sizeof(uint32_t);
    m->stack = (uint32_t *) mem;

    memset(m->smap, 0xff, (size_t) src->nstrings * sizeof(uint32_t));
    memset(m->fmap, 0, ((size_t) src->nfunctions + src->nmappings
                        + src->nlocations) * sizeof(uint32_t));
}


int
ts_pprof_merge(ts_pprof_t *dst, const ts_pprof_t *src, ts_pprof_why_t *why)
{
    int                 rc;
    char               *mem;
    size_t              size;
    int64_t             off;
    uint32_t            i, depth, nlab, nln;
    ts_pprof_merger_t   m;

    rc = ts_pprof_compatible(dst, src, why);
    if (rc != TS_OK) {
        return rc;
    }

    if (src->nstrings == 0) {
        /* only an initialized, never filled profile has no strings */
        return TS_OK;
    }

    size = ts_pprof_merger_size(src, &depth, &nlab, &nln);

    mem = ts_pprof_alloc(dst, size);
    if (mem == NULL) {
        return ts_pprof_nomem(dst, why);
    }

    memset(&m, 0, sizeof(m));
    m.dst = dst;
    m.src = src;
    ts_pprof_merger_carve(&m, mem, nlab, nln);

    ts_pprof_headers(&m);

    /* as Merge: the first mapping (the main binary) keeps id 1 */
    if (dst->nmappings == 0 && src->nmappings > 0) {
        (void) ts_pprof_mmapping(&m, 1, &off);
    }

    for (i = 0; i < src->nsamples && !m.failed; i++) {
        if (!ts_pprof_msample(&m, &src->samples[i],
                              &src->values[(size_t) i * src->ntypes]))
        {
            m.failed = 1;
        }
    }

    ts_pprof_release(dst, mem, size);

    if (m.failed) {
        return ts_pprof_nomem(dst, why);
    }

    dst->nmerged++;
    dst->truncated += src->truncated;

    return TS_OK;
}


/* wire format */

typedef struct {
    const uint8_t             *p;
    const uint8_t             *end;
} ts_pb_t;


typedef struct {
    uint32_t                   num;
    uint32_t                   wt;
    uint64_t                   v;
    ts_pb_t                    sub;
} ts_pb_field_t;


typedef struct {
    uint64_t                   id;
    uint32_t                   idx;
} ts_pprof_idpair_t;


typedef struct {
    const uint64_t            *ids;        /* in file order */
    uint32_t                   n;
    unsigned                   dense:1;    /* ids[i] == i + 1 */
    ts_pprof_idpair_t         *sorted;
} ts_pprof_ids_t;


/* element counts of pass 1 */
typedef struct {
    uint32_t                   strings;
    uint32_t                   types;
    uint32_t                   comments;
    uint32_t                   mappings;
    uint32_t                   functions;
    uint32_t                   locations;
    uint32_t                   lines;
    uint32_t                   samples;
    uint32_t                   stacks;
    uint32_t                   values;
    uint32_t                   labels;
} ts_pprof_counts_t;


typedef struct {
    ts_pprof_t                *p;          /* result, owns the memory */
    ts_pprof_t                 raw;        /* view into the input */
    ts_pprof_why_t            *why;
    ts_pprof_counts_t          n;
    uint32_t                   nvalues;    /* filled so far */
    uint64_t                  *mid;        /* Mapping.id, per mapping */
    uint64_t                  *fid;
    uint64_t                  *lid;
    uint64_t                  *loc_mid;    /* Location.mapping_id */
    uint64_t                  *line_fid;   /* Line.function_id */
    uint64_t                  *stack_lid;  /* Sample.location_id */
    void                      *mem;
    size_t                     size;
    ts_pprof_ids_t             ids[3];     /* mappings, functions,
                                              locations */
} ts_pprof_dec_t;


static int
ts_pb_varint(ts_pb_t *b, uint64_t *v)
{
    uint8_t   c;
    uint64_t  x;
    unsigned  shift;

    x = 0;

    for (shift = 0; shift < 64; shift += 7) {
        if (b->p == b->end) {
            return -1;
        }

        c = *b->p++;
        x |= (uint64_t) (c & 0x7f) << shift;

        if ((c & 0x80) == 0) {
            *v = x;
            return 0;
        }
    }

    return -1;
}


static int
ts_pb_next(ts_pb_t *b, ts_pb_field_t *f)
{
    uint64_t  key, n;

    if (ts_pb_varint(b, &key) != 0 || (key >> 3) == 0
        || (key >> 3) > 0x1fffffff)
    {
        return -1;
    }

    f->num = (uint32_t) (key >> 3);
    f->wt = (uint32_t) (key & 7);
    f->v = 0;

    switch (f->wt) {

    case 0:
        return ts_pb_varint(b, &f->v);

    case 1:
    case 5:
        n = f->wt == 1 ? 8 : 4;

        if ((uint64_t) (b->end - b->p) < n) {
            return -1;
        }

        b->p += n;
        return 0;

    case 2:
        if (ts_pb_varint(b, &n) != 0 || n > (uint64_t) (b->end - b->p)) {
            return -1;
        }

        f->sub.p = b->p;
        f->sub.end = b->p + n;
        b->p += n;
        return 0;

    default:
        return -1;
    }
}


/* how many varints a repeated scalar field carries; -1: malformed */
static int64_t
ts_pb_count(const ts_pb_field_t *f)
{
    int64_t         n;
    const uint8_t  *c;

    if (f->wt == 0) {
        return 1;
    }

    if (f->wt != 2) {
        return -1;
    }

    if (f->sub.p < f->sub.end && (f->sub.end[-1] & 0x80)) {
        return -1;
    }

    n = 0;

    for (c = f->sub.p; c < f->sub.end; c++) {
        n += (*c & 0x80) == 0;
    }

    return n;
}


static int
ts_pprof_corrupt(ts_pprof_dec_t *d, const char *where)
{
    return ts_pprof_fail(d->why, TS_ERR_CORRUPT, TS_PPROF_MALFORMED,
                         "malformed profile: bad wire data in %s", where);
}


/* the field has the wire type its declaration implies */
static int
ts_pprof_wt(ts_pprof_dec_t *d, const ts_pb_field_t *f, uint32_t wt,
    const char *where)
{
    if (f->wt == wt) {
        return TS_OK;
    }

    return ts_pprof_fail(d->why, TS_ERR_CORRUPT, TS_PPROF_MALFORMED,
                         "malformed profile: %s has wire type %u, not %u",
                         where, f->wt, wt);
}


static int
ts_pprof_add_count(ts_pprof_dec_t *d, uint32_t *n, int64_t k,
    const char *where)
{
    if (k < 0) {
        return ts_pprof_corrupt(d, where);
    }

    /*
     * each element takes a wire byte, so 32 bits cannot overflow for
     * inputs under 4 GiB, which ts_pprof_decode() requires
     */
    *n += (uint32_t) k;

    return TS_OK;
}


static int
ts_pprof_count_sample(ts_pprof_dec_t *d, ts_pb_t b)
{
    int            rc;
    ts_pb_field_t  f;

    while (b.p < b.end) {
        if (ts_pb_next(&b, &f) != 0) {
            return ts_pprof_corrupt(d, "Sample");
        }

        rc = TS_OK;

        if (f.num == 1) {
            rc = ts_pprof_add_count(d, &d->n.stacks, ts_pb_count(&f),
                                    "Sample.location_id");

        } else if (f.num == 2) {
            rc = ts_pprof_add_count(d, &d->n.values, ts_pb_count(&f),
                                    "Sample.value");

        } else if (f.num == 3 && f.wt == 2) {
            d->n.labels++;
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    return TS_OK;
}


static int
ts_pprof_count_location(ts_pprof_dec_t *d, ts_pb_t b)
{
    ts_pb_field_t  f;

    while (b.p < b.end) {
        if (ts_pb_next(&b, &f) != 0) {
            return ts_pprof_corrupt(d, "Location");
        }

        if (f.num == 4 && f.wt == 2) {
            d->n.lines++;
        }
    }

    return TS_OK;
}


/* pass 1: counts, and the sample limit before anything is allocated */
static int
ts_pprof_count(ts_pprof_dec_t *d, ts_pb_t b)
{
    int            rc;
    uint32_t       max;
    uint64_t       time;
    ts_pb_field_t  f;

    max = d->p->lim.max_samples;
    time = 0;

    while (b.p < b.end) {
        if (ts_pb_next(&b, &f) != 0) {
            return ts_pprof_corrupt(d, "Profile");
        }

        rc = TS_OK;

        switch (f.wt == 2 ? f.num : (f.num == 13 ? 13 : 0)) {

        case 1:
            d->n.types++;
            break;

        case 2:
            if (max && d->n.samples == max) {
                return ts_pprof_fail(d->why, TS_ERR_LIMIT,
                                     TS_PPROF_TOO_MANY_SAMPLES,
                                     "profile has more than %u samples",
                                     max);
            }

            d->n.samples++;
            rc = ts_pprof_count_sample(d, f.sub);
            break;

        case 3:
            d->n.mappings++;
            break;

        case 4:
            d->n.locations++;
            rc = ts_pprof_count_location(d, f.sub);
            break;

        case 5:
            d->n.functions++;
            break;

        case 6:
            d->n.strings++;
            break;

        case 13:
            rc = ts_pprof_add_count(d, &d->n.comments, ts_pb_count(&f),
                                    "Profile.comment");
            break;

        default:
            /* as Go's decoder: a second time_nanos is a concatenation */
            if (f.num == 9 && f.wt == 0 && time != 0) {
                return ts_pprof_fail(d->why, TS_ERR_CORRUPT,
                                     TS_PPROF_MALFORMED,
                                     "malformed profile: concatenated "
                                     "profiles (time_nanos given twice)");
            }

            time = f.num == 9 && f.wt == 0 ? f.v : time;
            break;
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    return TS_OK;
}


/* the raw view's arrays, carved from one block: 8-byte aligned first */
static int
ts_pprof_dec_alloc(ts_pprof_dec_t *d)
{
    char               *c;
    size_t              size;
    ts_pprof_t         *r;
    ts_pprof_counts_t  *n;

    n = &d->n;
    r = &d->raw;

    size = (size_t) n->strings * sizeof(ts_pprof_str_t)
           + (size_t) n->mappings * (sizeof(ts_pprof_mapping_t) + 8)
           + (size_t) n->functions * (sizeof(ts_pprof_function_t) + 8)
           + (size_t) n->locations * (sizeof(ts_pprof_location_t) + 16)
           + (size_t) n->lines * (sizeof(ts_pprof_line_t) + 8)
           + (size_t) n->stacks * (sizeof(uint32_t) + 8)
           + (size_t) n->values * sizeof(int64_t)
           + (size_t) n->labels * sizeof(ts_pprof_label_t)
           + (size_t) n->types * sizeof(ts_pprof_vtype_t)
           + (size_t) n->comments * sizeof(uint32_t)
           + (size_t) n->samples * sizeof(ts_pprof_sample_t);

    d->mem = ts_pprof_alloc(d->p, size);
    if (d->mem == NULL) {
        return ts_pprof_nomem(d->p, d->why);
    }

    d->size = size;
    c = d->mem;

#define ts_pprof_carve(dst, count, type)                                  \
    dst = (type *) c;                                                     \
    c += (size_t) (count) * sizeof(type)

    ts_pprof_carve(r->strings, n->strings, ts_pprof_str_t);
    ts_pprof_carve(r->mappings, n->mappings, ts_pprof_mapping_t);
    ts_pprof_carve(d->mid, n->mappings, uint64_t);
    ts_pprof_carve(r->functions, n->functions, ts_pprof_function_t);
    ts_pprof_carve(d->fid, n->functions, uint64_t);
    ts_pprof_carve(r->locations, n->locations, ts_pprof_location_t);
    ts_pprof_carve(d->lid, n->locations, uint64_t);
    ts_pprof_carve(d->loc_mid, n->locations, uint64_t);
    ts_pprof_carve(r->lines, n->lines, ts_pprof_line_t);
    ts_pprof_carve(d->line_fid, n->lines, uint64_t);
    ts_pprof_carve(d->stack_lid, n->stacks, uint64_t);
    ts_pprof_carve(r->values, n->values, int64_t);
    ts_pprof_carve(r->labels, n->labels, ts_pprof_label_t);
    ts_pprof_carve(r->types, n->types, ts_pprof_vtype_t);
    ts_pprof_carve(r->comments, n->comments, uint32_t);
    ts_pprof_carve(r->samples, n->samples, ts_pprof_sample_t);
    ts_pprof_carve(r->stacks, n->stacks, uint32_t);

#undef ts_pprof_carve

    return TS_OK;
}


/* a string index from the wire, checked against the table size */
static int
ts_pprof_sidx(ts_pprof_dec_t *d, const ts_pb_field_t *f, uint32_t *out,
    const char *where)
{
    int  rc;

    rc = ts_pprof_wt(d, f, 0, where);
    if (rc != TS_OK) {
        return rc;
    }

    if (f->v >= d->n.strings) {
        return ts_pprof_fail(d->why, TS_ERR_INVALID, TS_PPROF_BAD_STRING_REF,
                             "%s refers to string %" PRId64 ", the string "
                             "table has %u", where, (int64_t) f->v,
                             d->n.strings);
    }

    *out = (uint32_t) f->v;

    return TS_OK;
}


/* a scalar: the right wire type, then its value */
static int
ts_pprof_u64(ts_pprof_dec_t *d, const ts_pb_field_t *f, uint64_t *out,
    const char *where)
{
    int  rc;

    rc = ts_pprof_wt(d, f, 0, where);
    if (rc == TS_OK) {
        *out = f->v;
    }

    return rc;
}


static int
ts_pprof_i64(ts_pprof_dec_t *d, const ts_pb_field_t *f, int64_t *out,
    const char *where)
{
    int  rc;

    rc = ts_pprof_wt(d, f, 0, where);
    if (rc == TS_OK) {
        *out = (int64_t) f->v;
    }

    return rc;
}


static int
ts_pprof_flag(ts_pprof_dec_t *d, const ts_pb_field_t *f, uint8_t *out,
    const char *where)
{
    int  rc;

    rc = ts_pprof_wt(d, f, 0, where);
    if (rc == TS_OK) {
        *out = f->v != 0;
    }

    return rc;
}


static int
ts_pprof_vtype(ts_pprof_dec_t *d, ts_pb_t b, ts_pprof_vtype_t *vt)
{
    int            rc;
    ts_pb_field_t  f;

    vt->type = 0;
    vt->unit = 0;

    while (b.p < b.end) {
        if (ts_pb_next(&b, &f) != 0) {
            return ts_pprof_corrupt(d, "ValueType");
        }

        rc = TS_OK;

        if (f.num == 1) {
            rc = ts_pprof_sidx(d, &f, &vt->type, "ValueType.type");

        } else if (f.num == 2) {
            rc = ts_pprof_sidx(d, &f, &vt->unit, "ValueType.unit");
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    return TS_OK;
}


static int
ts_pprof_label(ts_pprof_dec_t *d, ts_pb_t b, ts_pprof_label_t *l)
{
    int            rc;
    ts_pb_field_t  f;

    memset(l, 0, sizeof(*l));

    while (b.p < b.end) {
        if (ts_pb_next(&b, &f) != 0) {
            return ts_pprof_corrupt(d, "Label");
        }

        switch (f.num) {
        case 1:
            rc = ts_pprof_sidx(d, &f, &l->key, "Label.key");
            break;
        case 2:
            rc = ts_pprof_sidx(d, &f, &l->str, "Label.str");
            break;
        case 3:
            rc = ts_pprof_i64(d, &f, &l->num, "Label.num");
            break;
        case 4:
            rc = ts_pprof_sidx(d, &f, &l->unit, "Label.num_unit");
            break;
        default:
            rc = TS_OK;
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    return TS_OK;
}


/* appends the varints of a repeated scalar field */
static int
ts_pprof_scalars(ts_pprof_dec_t *d, const ts_pb_field_t *f, uint64_t *out,
    uint32_t *n, uint32_t max, const char *where)
{
    ts_pb_t   b;
    uint64_t  v;

    if (f->wt == 0) {
        if (*n == max) {
            return ts_pprof_corrupt(d, where);
        }

        out[(*n)++] = f->v;
        return TS_OK;
    }

    if (f->wt != 2) {
        return ts_pprof_corrupt(d, where);
    }

    b = f->sub;

    while (b.p < b.end) {
        if (ts_pb_varint(&b, &v) != 0 || *n == max) {
            return ts_pprof_corrupt(d, where);
        }

        out[(*n)++] = v;
    }

    return TS_OK;
}


static int
ts_pprof_sample(ts_pprof_dec_t *d, ts_pb_t b)
{
    int                 rc;
    uint32_t            nv, max;
    ts_pb_field_t       f;
    ts_pprof_t         *r;
    ts_pprof_sample_t  *s;

    r = &d->raw;
    s = &r->samples[r->nsamples];
    s->stack = r->nstacks;
    s->label = r->nlabels;
    nv = d->nvalues;

    while (b.p < b.end) {
        if (ts_pb_next(&b, &f) != 0) {
            return ts_pprof_corrupt(d, "Sample");
        }

        rc = TS_OK;

        if (f.num == 1) {
            rc = ts_pprof_scalars(d, &f, d->stack_lid, &r->nstacks,
                                  d->n.stacks, "Sample.location_id");

        } else if (f.num == 2) {
            rc = ts_pprof_scalars(d, &f, (uint64_t *) r->values,
                                  &d->nvalues, d->n.values, "Sample.value");

        } else if (f.num == 3) {
            rc = ts_pprof_wt(d, &f, 2, "Sample.label");

            if (rc == TS_OK) {
                if (r->nlabels == d->n.labels) {
                    return ts_pprof_corrupt(d, "Sample.label");
                }

                rc = ts_pprof_label(d, f.sub, &r->labels[r->nlabels++]);
            }
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    s->depth = r->nstacks - s->stack;
    s->nlabels = r->nlabels - s->label;
    max = d->p->lim.max_labels;

    if (d->nvalues - nv != d->n.types) {
        return ts_pprof_fail(d->why, TS_ERR_INVALID, TS_PPROF_BAD_VALUES,
                             "sample %u has %u values for %u sample types",
                             r->nsamples, d->nvalues - nv, d->n.types);
    }

    if (max && s->nlabels > max) {
        return ts_pprof_fail(d->why, TS_ERR_LIMIT, TS_PPROF_TOO_MANY_LABELS,
                             "sample %u has %u labels, the limit is %u",
                             r->nsamples, s->nlabels, max);
    }

    r->nsamples++;

    return TS_OK;
}


static int
ts_pprof_mapping(ts_pprof_dec_t *d, ts_pb_t b)
{
    int                  rc;
    uint64_t            *id;
    ts_pb_field_t        f;
    ts_pprof_mapping_t  *m;

    m = &d->raw.mappings[d->raw.nmappings];
    id = &d->mid[d->raw.nmappings];
    memset(m, 0, sizeof(*m));
    *id = 0;

    while (b.p < b.end) {
        if (ts_pb_next(&b, &f) != 0) {
            return ts_pprof_corrupt(d, "Mapping");
        }

        switch (f.num) {
        case 1:
            rc = ts_pprof_u64(d, &f, id, "Mapping.id");
            break;
        case 2:
            rc = ts_pprof_u64(d, &f, &m->start, "Mapping.memory_start");
            break;
        case 3:
            rc = ts_pprof_u64(d, &f, &m->limit, "Mapping.memory_limit");
            break;
        case 4:
            rc = ts_pprof_u64(d, &f, &m->offset, "Mapping.file_offset");
            break;
        case 5:
            rc = ts_pprof_sidx(d, &f, &m->file, "Mapping.filename");
            break;
        case 6:
            rc = ts_pprof_sidx(d, &f, &m->build_id, "Mapping.build_id");
            break;
        case 7:
            rc = ts_pprof_flag(d, &f, &m->has_functions, "Mapping");
            break;
        case 8:
            rc = ts_pprof_flag(d, &f, &m->has_filenames, "Mapping");
            break;
        case 9:
            rc = ts_pprof_flag(d, &f, &m->has_line_numbers, "Mapping");
            break;
        case 10:
            rc = ts_pprof_flag(d, &f, &m->has_inline_frames, "Mapping");
            break;
        default:
            rc = TS_OK;
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    d->raw.nmappings++;

    return TS_OK;
}


static int
ts_pprof_line(ts_pprof_dec_t *d, ts_pb_t b)
{
    int               rc;
    ts_pb_field_t     f;
    ts_pprof_line_t  *l;

    if (d->raw.nlines == d->n.lines) {
        return ts_pprof_corrupt(d, "Line");
    }

    l = &d->raw.lines[d->raw.nlines];
    memset(l, 0, sizeof(*l));
    d->line_fid[d->raw.nlines] = 0;

    while (b.p < b.end) {
        if (ts_pb_next(&b, &f) != 0) {
            return ts_pprof_corrupt(d, "Line");
        }

        switch (f.num) {
        case 1:
            rc = ts_pprof_u64(d, &f, &d->line_fid[d->raw.nlines],
                              "Line.function_id");
            break;
        case 2:
            rc = ts_pprof_i64(d, &f, &l->line, "Line.line");
            break;
        case 3:
            rc = ts_pprof_i64(d, &f, &l->column, "Line.column");
            break;
        default:
            rc = TS_OK;
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    d->raw.nlines++;

    return TS_OK;
}


static int
ts_pprof_location(ts_pprof_dec_t *d, ts_pb_t b)
{
    int                   rc;
    uint8_t               folded;
    uint32_t              n;
    ts_pb_field_t         f;
    ts_pprof_location_t  *l;

    folded = 0;
    n = d->raw.nlocations;
    l = &d->raw.locations[n];
    memset(l, 0, sizeof(*l));
    l->line = d->raw.nlines;
    d->lid[n] = 0;
    d->loc_mid[n] = 0;

    while (b.p < b.end) {
        if (ts_pb_next(&b, &f) != 0) {
            return ts_pprof_corrupt(d, "Location");
        }

        switch (f.num) {
        case 1:
            rc = ts_pprof_u64(d, &f, &d->lid[n], "Location.id");
            break;
        case 2:
            rc = ts_pprof_u64(d, &f, &d->loc_mid[n], "Location.mapping_id");
            break;
        case 3:
            rc = ts_pprof_u64(d, &f, &l->address, "Location.address");
            break;
        case 4:
            rc = ts_pprof_wt(d, &f, 2, "Location.line");
            rc = rc == TS_OK ? ts_pprof_line(d, f.sub) : rc;
            break;
        case 5:
            rc = ts_pprof_flag(d, &f, &folded, "Location.is_folded");
            l->is_folded = folded;
            break;
        default:
            rc = TS_OK;
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    l->nlines = d->raw.nlines - l->line;
    d->raw.nlocations++;

    return TS_OK;
}


static int
ts_pprof_function(ts_pprof_dec_t *d, ts_pb_t b)
{
    int                   rc;
    ts_pb_field_t         f;
    ts_pprof_function_t  *fn;

    fn = &d->raw.functions[d->raw.nfunctions];
    memset(fn, 0, sizeof(*fn));
    d->fid[d->raw.nfunctions] = 0;

    while (b.p < b.end) {
        if (ts_pb_next(&b, &f) != 0) {
            return ts_pprof_corrupt(d, "Function");
        }

        switch (f.num) {
        case 1:
            rc = ts_pprof_u64(d, &f, &d->fid[d->raw.nfunctions],
                              "Function.id");
            break;
        case 2:
            rc = ts_pprof_sidx(d, &f, &fn->name, "Function.name");
            break;
        case 3:
            rc = ts_pprof_sidx(d, &f, &fn->system_name,
                               "Function.system_name");
            break;
        case 4:
            rc = ts_pprof_sidx(d, &f, &fn->filename, "Function.filename");
            break;
        case 5:
            rc = ts_pprof_i64(d, &f, &fn->start_line, "Function.start_line");
            break;
        default:
            rc = TS_OK;
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    d->raw.nfunctions++;

    return TS_OK;
}


static int
ts_pprof_comments(ts_pprof_dec_t *d, const ts_pb_field_t *f)
{
    ts_pb_t        b;
    ts_pb_field_t  one;

    if (f->wt != 2) {
        if (d->raw.ncomments == d->n.comments) {
            return ts_pprof_corrupt(d, "Profile.comment");
        }

        return ts_pprof_sidx(d, f, &d->raw.comments[d->raw.ncomments++],
                             "Profile.comment");
    }

    b = f->sub;
    one.wt = 0;

    while (b.p < b.end) {
        if (ts_pb_varint(&b, &one.v) != 0
            || d->raw.ncomments == d->n.comments)
        {
            return ts_pprof_corrupt(d, "Profile.comment");
        }

        if (ts_pprof_sidx(d, &one, &d->raw.comments[d->raw.ncomments++],
                          "Profile.comment") != TS_OK)
        {
            return TS_ERR_INVALID;
        }
    }

    return TS_OK;
}


/* Profile's fields other than the repeated messages */
static int
ts_pprof_scalar_field(ts_pprof_dec_t *d, const ts_pb_field_t *f)
{
    ts_pprof_t  *r;

    r = &d->raw;

    switch (f->num) {
    case 7:
        return ts_pprof_sidx(d, f, &r->drop_frames, "Profile.drop_frames");
    case 8:
        return ts_pprof_sidx(d, f, &r->keep_frames, "Profile.keep_frames");
    case 9:
        return ts_pprof_i64(d, f, &r->time_nanos, "Profile.time_nanos");
    case 10:
        return ts_pprof_i64(d, f, &r->duration_nanos,
                            "Profile.duration_nanos");
    case 11:
        if (ts_pprof_wt(d, f, 2, "Profile.period_type") != TS_OK) {
            return TS_ERR_CORRUPT;
        }

        return ts_pprof_vtype(d, f->sub, &r->period_type);
    case 12:
        return ts_pprof_i64(d, f, &r->period, "Profile.period");
    case 13:
        return ts_pprof_comments(d, f);
    case 14:
        return ts_pprof_sidx(d, f, &r->default_type,
                             "Profile.default_sample_type");
    case 15:
        return ts_pprof_sidx(d, f, &r->doc_url, "Profile.doc_url");
    default:
        return TS_OK;
    }
}


/* pass 2: fills the raw view */
static int
ts_pprof_fill(ts_pprof_dec_t *d, ts_pb_t b)
{
    int            rc;
    ts_pprof_t    *r;
    ts_pb_field_t  f;

    r = &d->raw;

    while (b.p < b.end) {
        if (ts_pb_next(&b, &f) != 0) {
            return ts_pprof_corrupt(d, "Profile");
        }

        if (f.num < 1 || f.num > 6) {
            rc = ts_pprof_scalar_field(d, &f);
            if (rc != TS_OK) {
                return rc;
            }

            continue;
        }

        /* pass 1 counted these only as length-delimited */
        if (f.wt != 2) {
            return ts_pprof_fail(d->why, TS_ERR_CORRUPT, TS_PPROF_MALFORMED,
                                 "malformed profile: Profile field %u has "
                                 "wire type %u, not 2", f.num, f.wt);
        }

        switch (f.num) {
        case 1:
            rc = ts_pprof_vtype(d, f.sub, &r->types[r->ntypes++]);
            break;
        case 2:
            rc = ts_pprof_sample(d, f.sub);
            break;
        case 3:
            rc = ts_pprof_mapping(d, f.sub);
            break;
        case 4:
            rc = ts_pprof_location(d, f.sub);
            break;
        case 5:
            rc = ts_pprof_function(d, f.sub);
            break;
        default:
            r->strings[r->nstrings].data = (const char *) f.sub.p;
            r->strings[r->nstrings].len = (uint32_t) (f.sub.end - f.sub.p);
            r->nstrings++;
            rc = TS_OK;
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    return TS_OK;
}


static int
ts_pprof_idcmp(const void *a, const void *b)
{
    const ts_pprof_idpair_t  *x, *y;

    x = a;
    y = b;

    return x->id < y->id ? -1 : x->id > y->id;
}


/* indexes ids (as Go's CheckValid: none 0, none twice) */
static int
ts_pprof_ids(ts_pprof_dec_t *d, ts_pprof_ids_t *x, const uint64_t *ids,
    uint32_t n, const char *kind)
{
    uint32_t  i;

    x->ids = ids;
    x->n = n;
    x->dense = 1;
    x->sorted = NULL;

    for (i = 0; i < n && x->dense; i++) {
        x->dense = ids[i] == (uint64_t) i + 1;
    }

    if (x->dense) {
        return TS_OK;
    }

    x->sorted = ts_pprof_alloc(d->p, (size_t) n * sizeof(ts_pprof_idpair_t));
    if (x->sorted == NULL) {
        return ts_pprof_nomem(d->p, d->why);
    }

    for (i = 0; i < n; i++) {
        x->sorted[i].id = ids[i];
        x->sorted[i].idx = i;
    }

    qsort(x->sorted, n, sizeof(ts_pprof_idpair_t), ts_pprof_idcmp);

    for (i = 0; i < n; i++) {
        if (x->sorted[i].id == 0) {
            return ts_pprof_fail(d->why, TS_ERR_INVALID, TS_PPROF_BAD_ID,
                                 "found %s with reserved id 0", kind);
        }

        if (i > 0 && x->sorted[i].id == x->sorted[i - 1].id) {
            return ts_pprof_fail(d->why, TS_ERR_INVALID, TS_PPROF_BAD_ID,
                                 "multiple %ss with id %" PRIu64, kind,
                                 x->sorted[i].id);
        }
    }

    return TS_OK;
}


/* the 1-based index of the element with id, 0 if none */
static uint32_t
ts_pprof_id_find(const ts_pprof_ids_t *x, uint64_t id)
{
    uint32_t  lo, hi, mid;

    if (x->dense) {
        return id >= 1 && id <= x->n ? (uint32_t) id : 0;
    }

    lo = 0;
    hi = x->n;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (x->sorted[mid].id < id) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return lo < x->n && x->sorted[lo].id == id ? x->sorted[lo].idx + 1 : 0;
}


static int
ts_pprof_bad_ref(ts_pprof_dec_t *d, const char *what, uint64_t id,
    const char *kind, uint64_t ref)
{
    return ts_pprof_fail(d->why, TS_ERR_INVALID, TS_PPROF_BAD_REF,
                         "%s %" PRIu64 " refers to %s %" PRIu64
                         ", which does not exist", what, id, kind, ref);
}


/* file ids -> 1-based indexes; every reference must exist */
static int
ts_pprof_resolve(ts_pprof_dec_t *d)
{
    int          rc;
    uint32_t     i, j, k;
    ts_pprof_t  *r;

    r = &d->raw;

    rc = ts_pprof_ids(d, &d->ids[0], d->mid, r->nmappings, "mapping");
    rc = rc ? rc : ts_pprof_ids(d, &d->ids[1], d->fid, r->nfunctions,
                                "function");
    rc = rc ? rc : ts_pprof_ids(d, &d->ids[2], d->lid, r->nlocations,
                                "location");
    if (rc != TS_OK) {
        return rc;
    }

    for (i = 0; i < r->nlocations; i++) {
        if (d->loc_mid[i] != 0) {
            k = ts_pprof_id_find(&d->ids[0], d->loc_mid[i]);
            if (k == 0) {
                return ts_pprof_bad_ref(d, "location", d->lid[i], "mapping",
                                        d->loc_mid[i]);
            }

            r->locations[i].mapping = k;
        }

        for (j = r->locations[i].line;
             j < r->locations[i].line + r->locations[i].nlines; j++)
        {
            k = ts_pprof_id_find(&d->ids[1], d->line_fid[j]);
            if (k == 0) {
                return ts_pprof_bad_ref(d, "a line of location", d->lid[i],
                                        "function", d->line_fid[j]);
            }

            r->lines[j].function = k;
        }
    }

    for (i = 0; i < r->nsamples; i++) {
        for (j = r->samples[i].stack;
             j < r->samples[i].stack + r->samples[i].depth; j++)
        {
            k = ts_pprof_id_find(&d->ids[2], d->stack_lid[j]);
            if (k == 0) {
                return ts_pprof_bad_ref(d, "sample", i, "location",
                                        d->stack_lid[j]);
            }

            r->stacks[j] = k;
        }
    }

    return TS_OK;
}


/* cuts stacks deeper than max_depth (see ts_pprof_limits_t) */
static void
ts_pprof_truncate(ts_pprof_dec_t *d)
{
    uint32_t            i, max;
    ts_pprof_sample_t  *s;

    max = d->p->lim.max_depth;

    for (i = 0; max && i < d->raw.nsamples; i++) {
        s = &d->raw.samples[i];

        if (s->depth <= max) {
            continue;
        }

        if (!d->p->lim.keep_leaf) {
            s->stack += s->depth - max;
        }

        s->depth = max;
        d->raw.truncated++;
    }
}


static int
ts_pprof_decode_raw(ts_pprof_dec_t *d, const uint8_t *buf, size_t len)
{
    int      rc;
    ts_pb_t  b;

    b.p = buf;
    b.end = buf + len;

    rc = ts_pprof_count(d, b);
    if (rc != TS_OK) {
        return rc;
    }

    if (d->n.strings == 0) {
        return ts_pprof_fail(d->why, TS_ERR_INVALID, TS_PPROF_BAD_STRINGS,
                             "malformed profile: no string table");
    }

    if (d->n.types == 0 && d->n.samples != 0) {
        return ts_pprof_fail(d->why, TS_ERR_INVALID, TS_PPROF_BAD_VALUES,
                             "samples without sample types");
    }

    rc = ts_pprof_dec_alloc(d);
    rc = rc ? rc : ts_pprof_fill(d, b);
    if (rc != TS_OK) {
        return rc;
    }

    if (d->raw.strings[0].len != 0) {
        return ts_pprof_fail(d->why, TS_ERR_INVALID, TS_PPROF_BAD_STRINGS,
                             "malformed profile: string_table[0] is not "
                             "empty");
    }

    rc = ts_pprof_resolve(d);
    if (rc != TS_OK) {
        return rc;
    }

    ts_pprof_truncate(d);

    return TS_OK;
}


int
ts_pprof_decode(ts_pprof_t *p, const uint8_t *buf, size_t len,
    ts_pprof_why_t *why)
{
    int             rc;
    uint32_t        i;
    ts_pprof_dec_t  d;

    if (p->nmerged != 0 || p->nstrings != 0) {
        return ts_pprof_fail(why, TS_ERR_INVALID, TS_PPROF_MALFORMED,
                             "decoding into a used profile");
    }

    if (len > UINT32_MAX) {
        return ts_pprof_fail(why, TS_ERR_LIMIT, TS_PPROF_TOO_LARGE,
                             "profile larger than 4 GiB");
    }

    if (len == 0) {
        return ts_pprof_fail(why, TS_ERR_INVALID, TS_PPROF_BAD_STRINGS,
                             "empty profile");
    }

    memset(&d, 0, sizeof(d));
    d.p = p;
    d.why = why;
    d.raw.raw = 1;

    rc = ts_pprof_decode_raw(&d, buf, len);

    if (rc == TS_OK) {
        rc = ts_pprof_merge(p, &d.raw, why);
    }

    for (i = 0; i < 3; i++) {
        ts_pprof_release(p, d.ids[i].sorted,
                         (size_t) d.ids[i].n * sizeof(ts_pprof_idpair_t));
    }

    ts_pprof_release(p, d.mem, d.size);

    return rc;
}


int
ts_pprof_parse(ts_pprof_t *p, const uint8_t *buf, size_t len,
    ts_pprof_why_t *why)
{
    int          rc;
    size_t       n;
    uint8_t     *out;
    const char  *reason;

    if (ts_inflate_detect(buf, len) != TS_INFLATE_GZIP) {
        if (p->lim.max_decompressed && len > p->lim.max_decompressed) {
            return ts_pprof_fail(why, TS_ERR_LIMIT, TS_PPROF_TOO_LARGE,
                                 "profile is %zu bytes, the limit is %zu",
                                 len, p->lim.max_decompressed);
        }

        return ts_pprof_decode(p, buf, len, why);
    }

    reason = NULL;

    rc = ts_inflate(buf, len, TS_INFLATE_GZIP,
                    p->lim.max_decompressed ? p->lim.max_decompressed
                                            : SIZE_MAX,
                    &p->alloc, &out, &n, &reason);

    if (rc == TS_ERR_LIMIT) {
        return ts_pprof_fail(why, rc, TS_PPROF_TOO_LARGE,
                             "decompressed profile exceeds %zu bytes",
                             p->lim.max_decompressed);
    }

    if (rc == TS_ERR_NOMEM) {
        return ts_pprof_fail(why, rc, TS_PPROF_NOMEM, "out of memory");
    }

    if (rc != TS_OK) {
        return ts_pprof_fail(why, rc, TS_PPROF_BAD_COMPRESSION, "gzip: %s",
                             reason ? reason : "corrupt");
    }

    rc = ts_pprof_decode(p, out, n, why);

    if (p->alloc.free != NULL) {
        p->alloc.free(p->alloc.allocator_data, out);
    }

    return rc;
}


/* encode */

typedef struct {
    const ProtobufCAllocator  *a;
    ts_write_pt                write;
    void                      *data;
    z_stream                   zs;
    unsigned                   gz:1;
    int                        err;
    uint8_t                   *out;        /* TS_PPROF_OUT bytes */
    size_t                     nout;
    uint8_t                   *msg;        /* one message */
    size_t                     cap;
} ts_pprof_enc_t;


static voidpf
ts_pprof_zalloc(voidpf opaque, uInt items, uInt size)
{
    const ProtobufCAllocator  *a;

    a = opaque;

    return a->alloc(a->allocator_data, (size_t) items * size);
}


static void
ts_pprof_zfree(voidpf opaque, voidpf p)
{
    const ProtobufCAllocator  *a;

    a = opaque;

    if (a->free != NULL) {
        a->free(a->allocator_data, p);
    }
}


static int
ts_pprof_flush(ts_pprof_enc_t *e)
{
    if (e->nout && e->err == TS_OK
        && e->write(e->data, (const char *) e->out, e->nout) != 0)
    {
        e->err = TS_ERR_IO;
    }

    e->nout = 0;

    return e->err;
}


static int
ts_pprof_deflate(ts_pprof_enc_t *e, int flush)
{
    int  zrc;

    for ( ;; ) {
        e->zs.next_out = e->out + e->nout;
        e->zs.avail_out = (uInt) (TS_PPROF_OUT - e->nout);

        zrc = deflate(&e->zs, flush);

        e->nout = TS_PPROF_OUT - e->zs.avail_out;

        if (zrc == Z_STREAM_ERROR) {
            e->err = TS_ERR_NOMEM;
            return e->err;
        }

        if (e->zs.avail_out == 0) {
            if (ts_pprof_flush(e) != TS_OK) {
                return e->err;
            }

            continue;
        }

        if (flush != Z_FINISH || zrc == Z_STREAM_END) {
            return e->err;
        }
    }
}


static int
ts_pprof_put_bytes(ts_pprof_enc_t *e, const void *p, size_t n)
{
    size_t  k;

    if (e->err != TS_OK) {
        return e->err;
    }

    if (e->gz) {
        e->zs.next_in = (Bytef *) p;
        e->zs.avail_in = (uInt) n;
        return ts_pprof_deflate(e, Z_NO_FLUSH);
    }

    while (n) {
        k = TS_PPROF_OUT - e->nout < n ? TS_PPROF_OUT - e->nout : n;
        memcpy(e->out + e->nout, p, k);
        e->nout += k;
        p = (const char *) p + k;
        n -= k;

        if (e->nout == TS_PPROF_OUT && ts_pprof_flush(e) != TS_OK) {
            return e->err;
        }
    }

    return TS_OK;
}


static size_t
ts_pb_vlen(uint64_t v)
{
    size_t  n;

    for (n = 1; v >= 0x80; v >>= 7) {
        n++;
    }

    return n;
}


static uint8_t *
ts_pb_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t) (v | 0x80);
        v >>= 7;
    }

    *p++ = (uint8_t) v;

    return p;
}


/* a varint field, left out when 0 as proto3 does */
static uint8_t *
ts_pb_opt(uint8_t *p, uint32_t field, uint64_t v)
{
    if (v == 0) {
        return p;
    }

    p = ts_pb_put(p, (uint64_t) field << 3);

    return ts_pb_put(p, v);
}


/* a length-delimited field */
static int
ts_pprof_put_field(ts_pprof_enc_t *e, uint32_t field, const void *p,
    size_t n)
{
    uint8_t  hdr[16], *h;

    h = ts_pb_put(hdr, ((uint64_t) field << 3) | 2);
    h = ts_pb_put(h, n);

    if (ts_pprof_put_bytes(e, hdr, (size_t) (h - hdr)) != TS_OK) {
        return e->err;
    }

    return ts_pprof_put_bytes(e, p, n);
}


static uint8_t *
ts_pprof_room(ts_pprof_enc_t *e, size_t n)
{
    uint8_t  *m;

    if (n <= e->cap) {
        return e->msg;
    }

    n = n < 2 * e->cap ? 2 * e->cap : n;

    m = e->a->alloc(e->a->allocator_data, n);
    if (m == NULL) {
        e->err = TS_ERR_NOMEM;
        return NULL;
    }

    if (e->msg != NULL && e->a->free != NULL) {
        e->a->free(e->a->allocator_data, e->msg);
    }

    e->msg = m;
    e->cap = n;

    return m;
}


static int
ts_pprof_put_vtype(ts_pprof_enc_t *e, uint32_t field,
    const ts_pprof_vtype_t *vt)
{
    uint8_t  buf[32], *q;

    q = ts_pb_opt(buf, 1, vt->type);
    q = ts_pb_opt(q, 2, vt->unit);

    return ts_pprof_put_field(e, field, buf, (size_t) (q - buf));
}


static uint8_t *
ts_pprof_put_label(uint8_t *q, const ts_pprof_label_t *l)
{
    uint8_t  buf[48], *b;

    b = ts_pb_opt(buf, 1, l->key);
    b = ts_pb_opt(b, 2, l->str);
    b = ts_pb_opt(b, 3, (uint64_t) l->num);
    b = ts_pb_opt(b, 4, l->unit);

    q = ts_pb_put(q, (3 << 3) | 2);
    q = ts_pb_put(q, (uint64_t) (b - buf));
    memcpy(q, buf, (size_t) (b - buf));

    return q + (b - buf);
}


static int
ts_pprof_put_sample(ts_pprof_enc_t *e, const ts_pprof_t *p, uint32_t i)
{
    size_t                    n;
    uint8_t                  *m, *q;
    uint32_t                  k;
    const int64_t            *v;
    const uint32_t           *stk;
    const ts_pprof_sample_t  *s;

    s = &p->samples[i];
    stk = &p->stacks[s->stack];
    v = &p->values[(size_t) i * p->ntypes];

    m = ts_pprof_room(e, 32 + (size_t) s->depth * 5
                         + (size_t) p->ntypes * 10
                         + (size_t) s->nlabels * 56);
    if (m == NULL) {
        return e->err;
    }

    q = m;

    for (k = 0, n = 0; k < s->depth; k++) {
        n += ts_pb_vlen(stk[k]);
    }

    if (n) {
        q = ts_pb_put(q, (1 << 3) | 2);
        q = ts_pb_put(q, n);

        for (k = 0; k < s->depth; k++) {
            q = ts_pb_put(q, stk[k]);
        }
    }

    for (k = 0, n = 0; k < p->ntypes; k++) {
        n += ts_pb_vlen((uint64_t) v[k]);
    }

    if (n) {
        q = ts_pb_put(q, (2 << 3) | 2);
        q = ts_pb_put(q, n);

        for (k = 0; k < p->ntypes; k++) {
            q = ts_pb_put(q, (uint64_t) v[k]);
        }
    }

    for (k = 0; k < s->nlabels; k++) {
        q = ts_pprof_put_label(q, &p->labels[s->label + k]);
    }

    return ts_pprof_put_field(e, 2, m, (size_t) (q - m));
}


static int
ts_pprof_put_mapping(ts_pprof_enc_t *e, const ts_pprof_mapping_t *m,
    uint32_t id)
{
    uint8_t  buf[128], *q;

    q = ts_pb_opt(buf, 1, id);
    q = ts_pb_opt(q, 2, m->start);
    q = ts_pb_opt(q, 3, m->limit);
    q = ts_pb_opt(q, 4, m->offset);
    q = ts_pb_opt(q, 5, m->file);
    q = ts_pb_opt(q, 6, m->build_id);
    q = ts_pb_opt(q, 7, m->has_functions);
    q = ts_pb_opt(q, 8, m->has_filenames);
    q = ts_pb_opt(q, 9, m->has_line_numbers);
    q = ts_pb_opt(q, 10, m->has_inline_frames);

    return ts_pprof_put_field(e, 3, buf, (size_t) (q - buf));
}


static int
ts_pprof_put_location(ts_pprof_enc_t *e, const ts_pprof_t *p, uint32_t i)
{
    uint8_t                    *m, *q, line[40], *l;
    uint32_t                    k;
    const ts_pprof_line_t      *ln;
    const ts_pprof_location_t  *loc;

    loc = &p->locations[i];

    m = ts_pprof_room(e, 64 + (size_t) loc->nlines * 48);
    if (m == NULL) {
        return e->err;
    }

    q = ts_pb_opt(m, 1, (uint64_t) i + 1);
    q = ts_pb_opt(q, 2, loc->mapping);
    q = ts_pb_opt(q, 3, loc->address);

    for (k = 0; k < loc->nlines; k++) {
        ln = &p->lines[loc->line + k];
        l = ts_pb_opt(line, 1, ln->function);
        l = ts_pb_opt(l, 2, (uint64_t) ln->line);
        l = ts_pb_opt(l, 3, (uint64_t) ln->column);

        q = ts_pb_put(q, (4 << 3) | 2);
        q = ts_pb_put(q, (uint64_t) (l - line));
        memcpy(q, line, (size_t) (l - line));
        q += l - line;
    }

    q = ts_pb_opt(q, 5, loc->is_folded);

    return ts_pprof_put_field(e, 4, m, (size_t) (q - m));
}


static int
ts_pprof_put_function(ts_pprof_enc_t *e, const ts_pprof_function_t *f,
    uint32_t id)
{
    uint8_t  buf[64], *q;

    q = ts_pb_opt(buf, 1, id);
    q = ts_pb_opt(q, 2, f->name);
    q = ts_pb_opt(q, 3, f->system_name);
    q = ts_pb_opt(q, 4, f->filename);
    q = ts_pb_opt(q, 5, (uint64_t) f->start_line);

    return ts_pprof_put_field(e, 5, buf, (size_t) (q - buf));
}


static int
ts_pprof_put_tail(ts_pprof_enc_t *e, const ts_pprof_t *p)
{
    uint8_t   buf[128], *q;
    uint32_t  i;

    if (p->nstrings == 0) {
        (void) ts_pprof_put_field(e, 6, "", 0);
    }

    for (i = 0; i < p->nstrings; i++) {
        (void) ts_pprof_put_field(e, 6, p->strings[i].data,
                                  p->strings[i].len);
    }

    q = ts_pb_opt(buf, 7, p->drop_frames);
    q = ts_pb_opt(q, 8, p->keep_frames);
    q = ts_pb_opt(q, 9, (uint64_t) p->time_nanos);
    q = ts_pb_opt(q, 10, (uint64_t) p->duration_nanos);
    (void) ts_pprof_put_bytes(e, buf, (size_t) (q - buf));

    if (p->period_type.type || p->period_type.unit) {
        (void) ts_pprof_put_vtype(e, 11, &p->period_type);
    }

    q = ts_pb_opt(buf, 12, (uint64_t) p->period);

    for (i = 0; i < p->ncomments; i++) {
        if (q - buf > 100) {
            (void) ts_pprof_put_bytes(e, buf, (size_t) (q - buf));
            q = buf;
        }

        q = ts_pb_put(q, 13 << 3);
        q = ts_pb_put(q, p->comments[i]);
    }

    q = ts_pb_opt(q, 14, p->default_type);
    q = ts_pb_opt(q, 15, p->doc_url);

    return ts_pprof_put_bytes(e, buf, (size_t) (q - buf));
}


static int
ts_pprof_put_all(ts_pprof_enc_t *e, const ts_pprof_t *p)
{
    uint32_t  i;

    for (i = 0; i < p->ntypes; i++) {
        (void) ts_pprof_put_vtype(e, 1, &p->types[i]);
    }

    for (i = 0; i < p->nsamples && e->err == TS_OK; i++) {
        (void) ts_pprof_put_sample(e, p, i);
    }

    for (i = 0; i < p->nmappings && e->err == TS_OK; i++) {
        (void) ts_pprof_put_mapping(e, &p->mappings[i], i + 1);
    }

    for (i = 0; i < p->nlocations && e->err == TS_OK; i++) {
        (void) ts_pprof_put_location(e, p, i);
    }

    for (i = 0; i < p->nfunctions && e->err == TS_OK; i++) {
        (void) ts_pprof_put_function(e, &p->functions[i], i + 1);
    }

    return ts_pprof_put_tail(e, p);
}


static int
ts_pprof_has_zero(const ts_pprof_t *p)
{
    uint32_t  i;

    for (i = 0; p->zero && i < p->nsamples; i++) {
        if (ts_pprof_zero(&p->values[(size_t) i * p->ntypes], p->ntypes)) {
            return 1;
        }
    }

    return 0;
}


static int
ts_pprof_encode_one(const ts_pprof_t *p, int gzip_level, ts_write_pt write,
    void *data)
{
    ts_pprof_enc_t  e;

    memset(&e, 0, sizeof(e));
    e.a = &p->alloc;
    e.write = write;
    e.data = data;

    e.out = e.a->alloc(e.a->allocator_data, TS_PPROF_OUT);
    if (e.out == NULL) {
        return TS_ERR_NOMEM;
    }

    if (gzip_level > 0) {
        e.zs.zalloc = ts_pprof_zalloc;
        e.zs.zfree = ts_pprof_zfree;
        e.zs.opaque = (voidpf) e.a;

        if (deflateInit2(&e.zs, gzip_level > 9 ? 9 : gzip_level,
                         Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY)
            != Z_OK)
        {
            e.err = TS_ERR_NOMEM;

        } else {
            e.gz = 1;
        }
    }

    if (e.err == TS_OK) {
        (void) ts_pprof_put_all(&e, p);
    }

    if (e.gz) {
        if (e.err == TS_OK) {
            e.zs.next_in = NULL;
            e.zs.avail_in = 0;
            (void) ts_pprof_deflate(&e, Z_FINISH);
        }

        (void) deflateEnd(&e.zs);
    }

    (void) ts_pprof_flush(&e);

    if (e.a->free != NULL) {
        e.a->free(e.a->allocator_data, e.out);

        if (e.msg != NULL) {
            e.a->free(e.a->allocator_data, e.msg);
        }
    }

    return e.err;
}


int
ts_pprof_encode(const ts_pprof_t *p, int gzip_level, ts_write_pt write,
    void *data)
{
    int         rc;
    ts_pprof_t  q;

    if (!ts_pprof_has_zero(p)) {
        return ts_pprof_encode_one(p, gzip_level, write, data);
    }

    /* as Merge, re-merge when a sum is zero: drops what only it used */
    ts_pprof_init(&q, (ProtobufCAllocator *) &p->alloc, &p->lim);

    rc = ts_pprof_merge(&q, p, NULL);

    if (rc == TS_OK) {
        rc = ts_pprof_encode_one(&q, gzip_level, write, data);
    }

    ts_pprof_free(&q);

    return rc;
}
