/*
 * Copyright (C) ngx_tsdb authors
 *
 * The head in shared memory.
 *
 * Layout: header | tenants | series buckets | series | pair buckets |
 * pairs | chunks | arena.  Everything refers to everything else by index
 * or arena offset, never by pointer, since each process maps the region
 * at its own address.  Series refs and chunk ids are index + 1; 0 is
 * "none".
 *
 * Locks.  The header's global lock serializes creation: tenants, series,
 * label pairs, postings, arena and chunk allocation.  Each series has its
 * own lock for appends; lock order is series, then global.  Both are
 * owner-pid locks (ts_plock): a process killed while holding one leaves
 * the pid of a dead process there, and the next process to want the
 * lock takes it over and repairs first:
 *   - series lock: the open chunk's appender state is rebuilt from what
 *     was published (ts_xor_recover() or ts_hist_recover()); a
 *     half-written sample is gone, and it was never acknowledged.  A
 *     histogram chunk cut short in a recode was not published yet (its
 *     chunk and block are lost until the zone is rebuilt), or was and
 *     the old one was not freed yet (then that one is lost).
 *   - global lock: a series whose creation was cut short (hdr->intent)
 *     is linked into its bucket and its postings completed; both steps
 *     are idempotent.  Arena bytes or a chunk taken but not linked are
 *     lost until the zone is rebuilt.
 *
 * Readers take no lock.  Every structure is published by a final
 * release store (bucket heads, chain links, list heads, counts) after
 * the data it exposes was written, and what is published never changes
 * again, except chunks: a chunk's appender publishes (count, length)
 * with one store, and a chunk that is freed bumps its generation first,
 * so a reader that sees the generation change under it starts over.
 *
 * Histogram chunks.  A chunk slot's encoding and block are set before
 * the chunk is linked and never change while it is; the appender block
 * and the chunk buffer (TS_HEAD_HIST_BLOCK bytes from the arena, on a
 * free list of their own once freed) go with the slot.  A recode writes
 * a new chunk, links it in place of the old one, then frees the old one:
 * a reader copying the old one sees its generation change and starts
 * over, as after a release.
 */

#include <stdlib.h>
#include <string.h>

#include "ts_chunk.h"
#include "ts_hchunk.h"
#include "ts_head.h"
#include "ts_plock.h"


#define TS_HEAD_MAGIC        0x44485354u      /* "TSHD" */
#define TS_HEAD_VERSION      5u
#define TS_HEAD_ALIGN        64
#define TS_HEAD_SERIES_COST  1024
#define TS_HEAD_POSTINGS_N   12
#define TS_HEAD_SKIP_EVERY   16      /* postings blocks between anchors */
#define TS_HEAD_READ_RETRIES 8
#define TS_HEAD_FIND_WINDOW  32

/* an iterator's scratch memory for a head histogram chunk */
#define TS_HEAD_HIST_SCRATCH (TS_HEAD_HIST_BLOCK / 2)

#define TS_PAIR_TENANT       0
#define TS_PAIR_NAME         1
#define TS_PAIR_VALUE        2


typedef struct {
    uint64_t                hash;
    uint32_t                len;
    uint32_t                pair;           /* the tenant-wide pair */
    uint32_t                series;         /* under the global lock */
    uint32_t                pad;
    char                    name[TS_HEAD_TENANT_LEN];
} ts_tenant_t;


typedef struct {
    uint64_t                hash;
    int64_t                 lock;
    uint32_t                tenant;
    uint32_t                next;           /* bucket chain */
    uint32_t                labels;         /* arena offset */
    uint32_t                head;           /* newest chunk */
    int64_t                 floor;          /* newest persisted time */
    uint64_t                dbid;           /* LMDB id hint, or 0 */
    int64_t                 base;           /* persisted before this head */
    uint32_t                known;          /* base is set */
    uint32_t                pad;
} ts_hseries_t;


typedef struct {
    uint64_t                hash;
    uint32_t                tenant;
    uint32_t                next;           /* bucket chain */
    uint32_t                kind;
    uint32_t                name;           /* arena offsets of strings */
    uint32_t                value;
    uint32_t                first;          /* postings blocks */
    uint32_t                last;
    uint32_t                children;       /* names of a tenant, values
                                               of a name */
    uint32_t                sibling;        /* next child of the parent */
    uint32_t                anchor;         /* newest skip anchor block */
} ts_pair_t;


/*
 * A postings block.  Every TS_HEAD_SKIP_EVERY-th block of a list (seq a
 * multiple of it) is an anchor whose skip is the next anchor once that
 * exists, so a seek passes 16 blocks at a time.  skip only ever points
 * further down the same list: after a crash between linking a block
 * and setting skip, the next anchor is reached from the older one.
 */
typedef struct {
    uint32_t                next;
    uint32_t                n;
    uint32_t                skip;           /* anchors: the next anchor */
    uint32_t                seq;            /* position in the list */
    uint32_t                refs[TS_HEAD_POSTINGS_N];
} ts_block_t;


typedef struct {
    uint64_t                gen;
    uint32_t                prev;           /* older chunk; free list */
    uint32_t                series;
    int64_t                 mint;
    ts_xor_appender_t       a;          /* XOR chunks */
    uint32_t                enc;        /* TS_XOR_ENCODING, TS_HIST_... */
    uint32_t                blk;        /* histogram: arena offset */
} ts_hchunk_hdr_t;


#define TS_HEAD_CHUNK_DATA   (TS_HEAD_CHUNK_SIZE - sizeof(ts_hchunk_hdr_t))

typedef struct {
    ts_hchunk_hdr_t         h;
    uint8_t                 data[TS_HEAD_CHUNK_DATA];
} ts_hchunk_t;


/* walks one side's buckets of a histogram by index */
typedef struct {
    const ts_hspan_t       *spans;
    const int64_t          *deltas;
    const double           *counts;
    uint32_t                ns;
    uint32_t                nb;
    uint32_t                si;
    uint32_t                bi;
    uint32_t                left;
    int64_t                 idx;
    uint64_t                acc;
} ts_head_bw_t;


struct ts_head_hdr_s {
    uint32_t                magic;
    uint32_t                version;
    uint64_t                size;

    uint32_t                series_max;
    uint32_t                series_mask;
    uint32_t                pairs_max;
    uint32_t                pairs_mask;
    uint32_t                chunks_max;
    uint32_t                pad;
    uint64_t                arena_size;

    uint64_t                off_tenants;
    uint64_t                off_sbuckets;
    uint64_t                off_series;
    uint64_t                off_pbuckets;
    uint64_t                off_pairs;
    uint64_t                off_chunks;
    uint64_t                off_arena;

    /* written under the global lock; counts published with release */
    int64_t                 lock;
    uint32_t                intent;         /* series being created */
    uint32_t                tenants_used;
    uint32_t                series_used;
    uint32_t                pairs_used;
    uint32_t                chunks_used;    /* ever handed out */
    uint32_t                chunks_free;    /* free list */
    uint32_t                chunks_live;
    uint32_t                pad2;
    uint64_t                arena_used;
    uint64_t                samples;        /* atomic */

    /* checkpoints: see ts_head.h */
    int64_t                 flush_lock;
    uint64_t                ckpt_epoch;     /* seq_cst */
    uint64_t                ckpt_done;
    uint64_t                chunks_released;
    uint32_t                hist_free;      /* free histogram blocks */
    uint32_t                hist_live;
};


static uint64_t ts_head_align(uint64_t n);
static uint32_t ts_head_pow2(uint32_t n);
static void ts_head_layout(ts_head_hdr_t *hdr, size_t size);
static ts_tenant_t *ts_head_tenants(ts_head_hdr_t *hdr);
static uint32_t *ts_head_sbuckets(ts_head_hdr_t *hdr);
static ts_hseries_t *ts_head_series_at(ts_head_hdr_t *hdr, uint32_t ref);
static uint32_t *ts_head_pbuckets(ts_head_hdr_t *hdr);
static ts_pair_t *ts_head_pair_at(ts_head_hdr_t *hdr, uint32_t id);
static ts_hchunk_t *ts_head_chunk_at(ts_head_hdr_t *hdr, uint32_t id);
static void *ts_head_arena(ts_head_hdr_t *hdr, uint32_t off);
static void ts_head_lock(ts_head_t *h);
static void ts_head_unlock(ts_head_t *h);
static void ts_head_repair(ts_head_t *h);
static uint32_t ts_head_alloc(ts_head_hdr_t *hdr, size_t size);
static uint32_t ts_head_str(ts_head_hdr_t *hdr, const char *s, size_t len);
static int ts_head_str_eq(ts_head_hdr_t *hdr, uint32_t off, const char *s,
    size_t len);
static int ts_head_tenant_scan(ts_head_hdr_t *hdr, uint32_t from,
    uint32_t to, const char *name, size_t len, uint64_t hash);
static void ts_head_prefetch(ts_head_hdr_t *hdr, ts_head_key_t *k);
static inline int ts_head_bytes_eq(const uint8_t *a, const char *b, size_t n);
static uint32_t ts_head_chain(ts_head_hdr_t *hdr, uint32_t r,
    uint32_t tenant, const ts_label_t *labels, uint32_t n, uint64_t hash);
static uint32_t ts_head_find(ts_head_hdr_t *hdr, uint32_t tenant,
    const ts_label_t *labels, uint32_t n, uint64_t hash);
static int ts_head_labels_eq(ts_head_hdr_t *hdr, uint32_t off,
    const ts_label_t *labels, uint32_t n);
static uint32_t ts_head_blob(ts_head_hdr_t *hdr, const ts_label_t *labels,
    uint32_t n);
static int ts_head_index(ts_head_hdr_t *hdr, uint32_t ref);
static int ts_head_link(ts_head_hdr_t *hdr, uint32_t ref);
static uint64_t ts_head_pair_hash(uint32_t tenant, uint32_t kind,
    const char *name, size_t nlen, const char *value, size_t vlen);
static uint32_t ts_head_pair_find(ts_head_hdr_t *hdr, uint32_t tenant,
    uint32_t kind, const char *name, size_t nlen, const char *value,
    size_t vlen);
static uint32_t ts_head_pair_get(ts_head_hdr_t *hdr, uint32_t tenant,
    uint32_t parent, uint32_t kind, const char *name, size_t nlen,
    const char *value, size_t vlen);
static int ts_head_postings_add(ts_head_hdr_t *hdr, uint32_t pair,
    uint32_t ref);
static uint32_t ts_head_chunk_get(ts_head_t *h, int hist);
static void ts_head_chunk_link(ts_head_hdr_t *hdr, uint32_t ref,
    uint32_t id, uint32_t prev, int64_t mint);
static uint32_t ts_head_chunk_new(ts_head_t *h, uint32_t ref,
    uint32_t prev, int64_t t, uint64_t v);
static ts_hist_app_t *ts_head_hist_at(ts_head_hdr_t *hdr,
    const ts_hchunk_t *c);
static uint8_t *ts_head_hist_buf(ts_hist_app_t *a);
static int64_t ts_head_chunk_last(ts_head_hdr_t *hdr, ts_hchunk_t *c);
static void ts_head_chunk_recover(ts_head_hdr_t *hdr, uint32_t id);
static void ts_head_series_lock(ts_head_t *h, ts_hseries_t *s);
static int ts_head_append_locked(ts_head_t *h, ts_hseries_t *s, uint32_t ref,
    int64_t t, uint64_t v);
static int ts_head_hist_new(ts_head_t *h, uint32_t ref, uint32_t prev,
    int64_t t, const ts_hist_t *hist, unsigned header);
static int ts_head_hist_add(ts_head_t *h, uint32_t ref, uint32_t id,
    int64_t t, const ts_hist_t *hist);
static int ts_head_hist_recode(ts_head_t *h, uint32_t ref, uint32_t id,
    int64_t t, const ts_hist_t *hist);
static int ts_head_find_sample(ts_head_hdr_t *hdr, uint32_t id, int64_t t,
    uint64_t v, const ts_hist_t *hist);
static int ts_head_find_hist(ts_hchunk_t *c, ts_hist_app_t *a, int64_t t,
    const ts_hist_t *hist);
static int ts_head_hist_eq(const ts_hist_t *a, const ts_hist_t *b);
static int ts_head_hist_side_eq(const ts_hist_t *a, const ts_hist_t *b,
    int neg);
static void ts_head_bw_init(ts_head_bw_t *w, const ts_hist_t *h, int neg);
static int ts_head_bw_next(ts_head_bw_t *w, int64_t *idx, uint64_t *v);
static int ts_head_snapshot_hist(ts_head_hdr_t *hdr, ts_hchunk_t *hc,
    ts_head_chunk_t *c);
static int ts_head_snapshot(ts_head_hdr_t *hdr, uint32_t id,
    ts_head_chunk_t *c, uint32_t *prev);
static int ts_head_list_str(ts_head_hdr_t *hdr, uint32_t pair, int value,
    ts_head_str_pt cb, void *data);
static void ts_head_chunk_free(ts_head_t *h, uint32_t id);


size_t
ts_head_min_size(void)
{
    return ts_head_align(sizeof(ts_head_hdr_t))
           + ts_head_align(TS_HEAD_MAX_TENANTS * sizeof(ts_tenant_t))
           + 64 * TS_HEAD_SERIES_COST + TS_HEAD_ALIGN;
}


int
ts_head_open(ts_head_t *h, void *mem, size_t size, int64_t pid,
    ts_pid_alive_pt alive)
{
    uintptr_t       p;
    ts_head_hdr_t  *hdr, want;

    if (size < ts_head_min_size()) {
        return TS_ERR_INVALID;
    }

    p = ((uintptr_t) mem + TS_HEAD_ALIGN - 1)
        & ~(uintptr_t) (TS_HEAD_ALIGN - 1);
    size -= p - (uintptr_t) mem;
    hdr = (ts_head_hdr_t *) p;

    h->hdr = hdr;
    h->pid = pid;
    h->alive = alive;

    memset(&want, 0, sizeof(want));
    ts_head_layout(&want, size);

    if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) == TS_HEAD_MAGIC
        && hdr->version == TS_HEAD_VERSION
        && memcmp(&hdr->size, &want.size,
                  offsetof(ts_head_hdr_t, lock)
                  - offsetof(ts_head_hdr_t, size)) == 0)
    {
        return TS_OK;
    }

    /* series, pairs and chunks are set up when they are handed out */

    memcpy(hdr, &want, sizeof(want));
    memset(ts_head_tenants(hdr), 0, hdr->off_sbuckets - hdr->off_tenants);
    memset(ts_head_sbuckets(hdr), 0,
           (size_t) (hdr->series_mask + 1) * sizeof(uint32_t));
    memset(ts_head_pbuckets(hdr), 0,
           (size_t) (hdr->pairs_mask + 1) * sizeof(uint32_t));

    hdr->arena_used = 8;
    hdr->version = TS_HEAD_VERSION;

    __atomic_store_n(&hdr->magic, TS_HEAD_MAGIC, __ATOMIC_RELEASE);

    return TS_OK;
}


void
ts_head_stats(ts_head_t *h, ts_head_stats_t *st)
{
    ts_head_hdr_t  *hdr;

    hdr = h->hdr;

    st->series = __atomic_load_n(&hdr->series_used, __ATOMIC_RELAXED);
    st->series_max = hdr->series_max;
    st->chunks = __atomic_load_n(&hdr->chunks_live, __ATOMIC_RELAXED);
    st->chunks_max = hdr->chunks_max;
    st->arena_used = __atomic_load_n(&hdr->arena_used, __ATOMIC_RELAXED);
    st->arena_size = hdr->arena_size;
    st->pairs = __atomic_load_n(&hdr->pairs_used, __ATOMIC_RELAXED);
    st->pairs_max = hdr->pairs_max;
    st->tenants = __atomic_load_n(&hdr->tenants_used, __ATOMIC_RELAXED);
    st->samples = __atomic_load_n(&hdr->samples, __ATOMIC_RELAXED);
}


int
ts_head_tenant_find(ts_head_t *h, const char *name, size_t len,
    uint32_t *id)
{
    int        i;
    uint32_t   used;
    uint64_t   hash;

    if (len > TS_HEAD_TENANT_LEN) {
        return TS_ERR_NOTFOUND;
    }

    hash = ts_xxh64(name, len, 0);
    used = __atomic_load_n(&h->hdr->tenants_used, __ATOMIC_ACQUIRE);

    i = ts_head_tenant_scan(h->hdr, 0, used, name, len, hash);
    if (i < 0) {
        return TS_ERR_NOTFOUND;
    }

    *id = (uint32_t) i;

    return TS_OK;
}


int
ts_head_tenant(ts_head_t *h, const char *name, size_t len, uint32_t *id)
{
    int             i, rc;
    uint32_t        used, pair;
    uint64_t        hash;
    ts_tenant_t    *t;
    ts_head_hdr_t  *hdr;

    if (len == 0 || len > TS_HEAD_TENANT_LEN) {
        return TS_ERR_INVALID;
    }

    if (ts_head_tenant_find(h, name, len, id) == TS_OK) {
        return TS_OK;
    }

    hdr = h->hdr;
    hash = ts_xxh64(name, len, 0);

    ts_head_lock(h);

    used = hdr->tenants_used;
    i = ts_head_tenant_scan(hdr, 0, used, name, len, hash);

    if (i >= 0) {
        *id = (uint32_t) i;
        rc = TS_OK;
        goto done;
    }

    if (used == TS_HEAD_MAX_TENANTS) {
        rc = TS_ERR_FULL;
        goto done;
    }

    pair = ts_head_pair_get(hdr, used, 0, TS_PAIR_TENANT, NULL, 0, NULL, 0);
    if (pair == 0) {
        rc = TS_ERR_FULL;
        goto done;
    }

    t = &ts_head_tenants(hdr)[used];
    t->hash = hash;
    t->len = (uint32_t) len;
    t->pair = pair;
    memcpy(t->name, name, len);

    __atomic_store_n(&hdr->tenants_used, used + 1, __ATOMIC_RELEASE);

    *id = used;
    rc = TS_OK;

done:

    ts_head_unlock(h);

    return rc;
}


int
ts_head_series(ts_head_t *h, uint32_t tenant, const ts_label_t *labels,
    uint32_t n, uint64_t hash, uint32_t max_series, uint32_t *ref)
{
    int             rc;
    uint32_t        r, blob, idx;
    ts_hseries_t   *s;
    ts_head_hdr_t  *hdr;

    hdr = h->hdr;

    if (n > TS_HEAD_MAX_LABELS) {
        return TS_ERR_LIMIT;
    }

    if (tenant >= __atomic_load_n(&hdr->tenants_used, __ATOMIC_ACQUIRE)) {
        return TS_ERR_INVALID;
    }

    r = ts_head_find(hdr, tenant, labels, n, hash);
    if (r) {
        *ref = r;
        return 0;
    }

    ts_head_lock(h);

    /* another process may have created it since the unlocked lookup */

    r = ts_head_find(hdr, tenant, labels, n, hash);
    if (r) {
        *ref = r;
        rc = 0;
        goto done;
    }

    idx = hdr->series_used;
    if (idx == hdr->series_max) {
        rc = TS_ERR_FULL;
        goto done;
    }

    if (max_series && ts_head_tenants(hdr)[tenant].series >= max_series) {
        rc = TS_ERR_LIMIT;
        goto done;
    }

    blob = ts_head_blob(hdr, labels, n);
    if (blob == 0) {
        rc = TS_ERR_FULL;
        goto done;
    }

    r = idx + 1;
    s = ts_head_series_at(hdr, r);
    s->hash = hash;
    s->lock = 0;
    s->tenant = tenant;
    s->next = 0;
    s->labels = blob;
    s->head = 0;
    s->floor = INT64_MIN;
    s->dbid = 0;
    s->base = INT64_MIN;
    s->known = 0;

    hdr->intent = r;
    __atomic_store_n(&hdr->series_used, r, __ATOMIC_RELEASE);
    __atomic_store_n(&ts_head_tenants(hdr)[tenant].series,
                     ts_head_tenants(hdr)[tenant].series + 1,
                     __ATOMIC_RELAXED);

    rc = ts_head_link(hdr, r);
    if (rc == TS_OK) {
        rc = ts_head_index(hdr, r);
    }

    if (rc != TS_OK) {
        /* linked but not fully indexed: repair retries on next lock */
        goto done;
    }

    hdr->intent = 0;
    *ref = r;
    rc = 1;

done:

    ts_head_unlock(h);

    return rc;
}


void
ts_head_find_many(ts_head_t *h, uint32_t tenant, ts_head_key_t *keys,
    size_t n)
{
    size_t          i, j, end;
    uint32_t       *b, r;
    ts_head_key_t  *k;
    ts_head_hdr_t  *hdr;

    hdr = h->hdr;
    b = ts_head_sbuckets(hdr);

    if (tenant >= __atomic_load_n(&hdr->tenants_used, __ATOMIC_ACQUIRE)) {
        for (i = 0; i < n; i++) {
            keys[i].ref = 0;
        }

        return;
    }

    /*
     * In windows: all buckets of a window are prefetched, then all
     * their first series, then labels and chunks, then compared; the
     * misses of a window overlap instead of following one another.
     */

    for (i = 0; i < n; i = end) {
        end = (n - i > TS_HEAD_FIND_WINDOW) ? i + TS_HEAD_FIND_WINDOW : n;

        for (j = i; j < end; j++) {
            __builtin_prefetch(&b[keys[j].hash & hdr->series_mask]);
        }

        for (j = i; j < end; j++) {
            k = &keys[j];
            r = __atomic_load_n(&b[k->hash & hdr->series_mask],
                                __ATOMIC_ACQUIRE);
            k->ref = r;

            if (r) {
                __builtin_prefetch(ts_head_series_at(hdr, r));
            }
        }

        for (j = i; j < end; j++) {
            ts_head_prefetch(hdr, &keys[j]);
        }

        for (j = i; j < end; j++) {
            k = &keys[j];

            if (k->ref) {
                k->ref = ts_head_chain(hdr, k->ref, tenant, k->labels, k->n,
                                       k->hash);
            }
        }
    }
}


uint32_t
ts_head_tenant_series(ts_head_t *h, uint32_t tenant)
{
    if (tenant >= __atomic_load_n(&h->hdr->tenants_used, __ATOMIC_ACQUIRE))
    {
        return 0;
    }

    return __atomic_load_n(&ts_head_tenants(h->hdr)[tenant].series,
                           __ATOMIC_RELAXED);
}


int
ts_head_append(ts_head_t *h, uint32_t ref, int64_t t, uint64_t v)
{
    int             rc;
    ts_hseries_t   *s;
    ts_head_hdr_t  *hdr;

    hdr = h->hdr;

    if (ref == 0
        || ref > __atomic_load_n(&hdr->series_used, __ATOMIC_ACQUIRE))
    {
        return TS_ERR_INVALID;
    }

    s = ts_head_series_at(hdr, ref);
    ts_head_series_lock(h, s);

    rc = ts_head_append_locked(h, s, ref, t, v);

    ts_plock_unlock(&s->lock, h->pid);

    if (rc == TS_OK) {
        __atomic_fetch_add(&hdr->samples, 1, __ATOMIC_RELAXED);
    }

    return rc;
}


size_t
ts_head_append_n(ts_head_t *h, uint32_t ref, const ts_head_sample_t *smp,
    size_t n, int64_t oldest, int *rcs, size_t *stored)
{
    int             rc;
    size_t          k;
    ts_hseries_t   *s;
    ts_head_hdr_t  *hdr;

    hdr = h->hdr;

    if (ref == 0
        || ref > __atomic_load_n(&hdr->series_used, __ATOMIC_ACQUIRE))
    {
        for (k = 0; k < n; k++) {
            rcs[k] = TS_ERR_INVALID;
        }

        return n;
    }

    s = ts_head_series_at(hdr, ref);
    ts_head_series_lock(h, s);

    for (k = 0; k < n; k++) {
        rc = smp[k].t < oldest
             ? TS_ERR_TOO_OLD
             : ts_head_append_locked(h, s, ref, smp[k].t, smp[k].v);

        rcs[k] = rc;

        if (rc == TS_OK) {
            (*stored)++;

        } else if (rc == TS_ERR_FULL) {
            k++;
            break;
        }
    }

    ts_plock_unlock(&s->lock, h->pid);

    return k;
}


void
ts_head_count_samples(ts_head_t *h, size_t n)
{
    if (n) {
        __atomic_fetch_add(&h->hdr->samples, n, __ATOMIC_RELAXED);
    }
}


/* ts_head_append() with the series s locked, not counted */

static int
ts_head_append_locked(ts_head_t *h, ts_hseries_t *s, uint32_t ref,
    int64_t t, uint64_t v)
{
    int             rc;
    uint32_t        id, nid;
    ts_hchunk_t    *c;
    ts_head_hdr_t  *hdr;

    hdr = h->hdr;
    id = s->head;

    if (t <= s->floor
        && (id == 0 || t > ts_head_chunk_last(hdr, ts_head_chunk_at(hdr, id))))
    {
        /* persisted and released: cannot be checked, take as a retry */
        return TS_HEAD_DUPLICATE;
    }

    if (id == 0) {
        nid = ts_head_chunk_new(h, ref, 0, t, v);
        return nid ? TS_OK : TS_ERR_FULL;
    }

    c = ts_head_chunk_at(hdr, id);

    if (t <= ts_head_chunk_last(hdr, c)) {
        rc = ts_head_find_sample(hdr, id, t, v, NULL);

        if (rc == TS_ERR_OUT_OF_ORDER && t <= s->floor) {
            rc = TS_HEAD_DUPLICATE;
        }

        return rc;
    }

    rc = TS_ERR_FULL;

    /* after a histogram chunk, a float sample starts an XOR chunk */

    if (c->h.enc == TS_XOR_ENCODING
        && ts_xor_count(&c->h.a) < TS_XOR_SAMPLES_TARGET)
    {
        rc = ts_xor_append_bits(&c->h.a, c->data, t, v);
    }

    if (rc == TS_ERR_FULL) {
        /* cut: the new chunk points back at the old one */
        nid = ts_head_chunk_new(h, ref, id, t, v);
        rc = nid ? TS_OK : TS_ERR_FULL;
    }

    return rc;
}


int
ts_head_append_hist(ts_head_t *h, uint32_t ref, int64_t t,
    const ts_hist_t *hist)
{
    int             rc;
    uint32_t        id;
    ts_hchunk_t    *c;
    ts_hseries_t   *s;
    ts_head_hdr_t  *hdr;

    hdr = h->hdr;

    if (ref == 0
        || ref > __atomic_load_n(&hdr->series_used, __ATOMIC_ACQUIRE))
    {
        return TS_ERR_INVALID;
    }

    s = ts_head_series_at(hdr, ref);
    ts_head_series_lock(h, s);

    id = s->head;
    c = id ? ts_head_chunk_at(hdr, id) : NULL;

    if (t <= s->floor && (c == NULL || t > ts_head_chunk_last(hdr, c))) {
        /* persisted and released: cannot be checked, take as a retry */
        rc = TS_HEAD_DUPLICATE;

    } else if (c != NULL && t <= ts_head_chunk_last(hdr, c)) {
        rc = ts_head_find_sample(hdr, id, t, 0, hist);

        if (rc == TS_ERR_OUT_OF_ORDER && t <= s->floor) {
            rc = TS_HEAD_DUPLICATE;
        }

    } else if (c == NULL || c->h.enc == TS_XOR_ENCODING) {
        rc = ts_head_hist_new(h, ref, id, t, hist,
                              ts_hist_cut_header(NULL, hist));

    } else {
        rc = ts_head_hist_add(h, ref, id, t, hist);
    }

    ts_plock_unlock(&s->lock, h->pid);

    if (rc == TS_OK) {
        __atomic_fetch_add(&hdr->samples, 1, __ATOMIC_RELAXED);
    }

    return rc;
}


int
ts_head_labels(ts_head_t *h, uint32_t ref, ts_label_t *out, uint32_t max,
    uint32_t *n)
{
    uint16_t        cnt, nl, vl;
    uint32_t        i;
    const uint8_t  *p;
    ts_hseries_t   *s;

    if (ref == 0
        || ref > __atomic_load_n(&h->hdr->series_used, __ATOMIC_ACQUIRE))
    {
        return TS_ERR_INVALID;
    }

    s = ts_head_series_at(h->hdr, ref);
    p = ts_head_arena(h->hdr, s->labels);

    memcpy(&cnt, p, 2);
    p += 2;

    if (cnt > max) {
        return TS_ERR_LIMIT;
    }

    for (i = 0; i < cnt; i++) {
        memcpy(&nl, p, 2);
        memcpy(&vl, p + 2, 2);
        out[i].name = (const char *) p + 4;
        out[i].name_len = nl;
        out[i].value = (const char *) p + 4 + nl;
        out[i].value_len = vl;
        p += 4 + nl + vl;
    }

    *n = cnt;

    return TS_OK;
}


int
ts_head_series_tenant(ts_head_t *h, uint32_t ref, uint32_t *tenant)
{
    if (ref == 0
        || ref > __atomic_load_n(&h->hdr->series_used, __ATOMIC_ACQUIRE))
    {
        return TS_ERR_INVALID;
    }

    *tenant = ts_head_series_at(h->hdr, ref)->tenant;

    return TS_OK;
}


int
ts_head_read(ts_head_t *h, uint32_t ref, int64_t mint, int64_t maxt,
    ts_head_chunk_pt cb, void *data)
{
    int               rc, tries;
    void             *p;
    size_t            n, cap, i;
    uint32_t          id, prev, *ids, *link;
    uint64_t         *gens;
    ts_hchunk_t      *c;
    ts_head_hdr_t    *hdr;
    ts_head_chunk_t   copy;

    hdr = h->hdr;

    if (ref == 0
        || ref > __atomic_load_n(&hdr->series_used, __ATOMIC_ACQUIRE))
    {
        return TS_ERR_INVALID;
    }

    ids = NULL;
    gens = NULL;
    cap = 0;
    rc = TS_ERR_AGAIN;

    for (tries = 0; tries < TS_HEAD_READ_RETRIES; tries++) {

        /* newest first: note each chunk and its generation */

        n = 0;
        link = &ts_head_series_at(hdr, ref)->head;
        id = __atomic_load_n(link, __ATOMIC_ACQUIRE);

        while (id) {
            if (n == cap) {
                cap = cap ? cap * 2 : 16;

                p = realloc(ids, cap * sizeof(uint32_t));
                if (p == NULL) {
                    rc = TS_ERR_NOMEM;
                    goto done;
                }

                ids = p;

                p = realloc(gens, cap * sizeof(uint64_t));
                if (p == NULL) {
                    rc = TS_ERR_NOMEM;
                    goto done;
                }

                gens = p;
            }

            c = ts_head_chunk_at(hdr, id);
            gens[n] = __atomic_load_n(&c->h.gen, __ATOMIC_ACQUIRE);

            /*
             * A released chunk is unlinked before its generation is
             * bumped: if the link still points here, gens[n] is the
             * generation of this series' chunk, not of a reuse.
             */

            if (__atomic_load_n(link, __ATOMIC_ACQUIRE) != id) {
                break;
            }

            ids[n++] = id;

            if (c->h.mint <= mint) {
                id = 0;
                break;
            }

            link = &c->h.prev;
            id = __atomic_load_n(link, __ATOMIC_ACQUIRE);
        }

        if (id) {
            continue;
        }

        /* then oldest first: copy, and start over if one was recycled */

        for (i = n; i > 0; i--) {
            c = ts_head_chunk_at(hdr, ids[i - 1]);

            if (ts_head_snapshot(hdr, ids[i - 1], &copy, &prev) != TS_OK
                || __atomic_load_n(&c->h.gen, __ATOMIC_ACQUIRE)
                   != gens[i - 1])
            {
                break;
            }

            if (copy.maxt < mint || copy.mint > maxt) {
                continue;
            }

            if (cb(data, &copy) != 0) {
                rc = TS_OK;
                goto done;
            }
        }

        if (i == 0) {
            rc = TS_OK;
            goto done;
        }
    }

done:

    free(ids);
    free(gens);

    return rc;
}


uint32_t
ts_head_nseries(ts_head_t *h)
{
    return __atomic_load_n(&h->hdr->series_used, __ATOMIC_ACQUIRE);
}


int
ts_head_tenant_name(ts_head_t *h, uint32_t tenant, const char **name,
    size_t *len)
{
    ts_tenant_t  *t;

    if (tenant >= __atomic_load_n(&h->hdr->tenants_used, __ATOMIC_ACQUIRE))
    {
        return TS_ERR_INVALID;
    }

    t = &ts_head_tenants(h->hdr)[tenant];
    *name = t->name;
    *len = t->len;

    return TS_OK;
}


uint64_t
ts_head_epoch(ts_head_t *h)
{
    return __atomic_load_n(&h->hdr->ckpt_epoch, __ATOMIC_SEQ_CST);
}


uint64_t
ts_head_epoch_begin(ts_head_t *h)
{
    return __atomic_add_fetch(&h->hdr->ckpt_epoch, 1, __ATOMIC_SEQ_CST);
}


uint64_t
ts_head_ckpt_done(ts_head_t *h)
{
    return __atomic_load_n(&h->hdr->ckpt_done, __ATOMIC_ACQUIRE);
}


void
ts_head_ckpt_publish(ts_head_t *h, uint64_t epoch)
{
    __atomic_store_n(&h->hdr->ckpt_done, epoch, __ATOMIC_RELEASE);
}


int
ts_head_flush_trylock(ts_head_t *h)
{
    return ts_plock_trylock(&h->hdr->flush_lock, h->pid, h->alive);
}


void
ts_head_flush_unlock(ts_head_t *h)
{
    ts_plock_unlock(&h->hdr->flush_lock, h->pid);
}


uint64_t
ts_head_series_dbid(ts_head_t *h, uint32_t ref)
{
    return __atomic_load_n(&ts_head_series_at(h->hdr, ref)->dbid,
                           __ATOMIC_RELAXED);
}


void
ts_head_series_set_dbid(ts_head_t *h, uint32_t ref, uint64_t id)
{
    __atomic_store_n(&ts_head_series_at(h->hdr, ref)->dbid, id,
                     __ATOMIC_RELAXED);
}


int64_t
ts_head_floor(ts_head_t *h, uint32_t ref, int64_t *base, int *known)
{
    ts_hseries_t  *s;

    s = ts_head_series_at(h->hdr, ref);
    *known = (int) __atomic_load_n(&s->known, __ATOMIC_ACQUIRE);
    *base = s->base;

    return __atomic_load_n(&s->floor, __ATOMIC_RELAXED);
}


void
ts_head_floor_init(ts_head_t *h, uint32_t ref, int64_t t)
{
    ts_hseries_t   *s;

    s = ts_head_series_at(h->hdr, ref);
    ts_head_series_lock(h, s);

    if (!s->known) {
        s->base = t;

        if (t > s->floor) {
            __atomic_store_n(&s->floor, t, __ATOMIC_RELAXED);
        }

        __atomic_store_n(&s->known, 1, __ATOMIC_RELEASE);
    }

    ts_plock_unlock(&s->lock, h->pid);
}


/*
 * Under the series lock: raises the floor, then unlinks every sealed
 * chunk that ends at or before it (the chain is in time order, so they
 * are the oldest ones) and frees them newest first.  The open chunk
 * stays.  Each freed chunk's generation is bumped after the unlink and
 * before it can be reused, which is what ts_head_read() checks.
 */

int
ts_head_release(ts_head_t *h, uint32_t ref, int64_t upto, uint32_t *freed)
{
    uint32_t        id, prev, *link;
    ts_hchunk_t    *c;
    ts_hseries_t   *s;
    ts_head_hdr_t  *hdr;

    hdr = h->hdr;
    *freed = 0;

    if (ref == 0
        || ref > __atomic_load_n(&hdr->series_used, __ATOMIC_ACQUIRE))
    {
        return TS_ERR_INVALID;
    }

    s = ts_head_series_at(hdr, ref);
    ts_head_series_lock(h, s);

    if (upto > s->floor) {
        __atomic_store_n(&s->floor, upto, __ATOMIC_RELAXED);
    }

    id = s->head;
    link = NULL;

    while (id) {
        c = ts_head_chunk_at(hdr, id);

        if (link != NULL && ts_head_chunk_last(hdr, c) <= upto) {
            break;
        }

        link = &c->h.prev;
        id = c->h.prev;
    }

    if (id) {
        __atomic_store_n(link, 0, __ATOMIC_RELEASE);
    }

    while (id) {
        c = ts_head_chunk_at(hdr, id);
        prev = c->h.prev;
        ts_head_chunk_free(h, id);
        (*freed)++;
        id = prev;
    }

    ts_plock_unlock(&s->lock, h->pid);

    return TS_OK;
}


void
ts_head_postings(ts_head_t *h, uint32_t tenant, const char *name,
    size_t nlen, const char *value, size_t vlen, ts_postings_t *p)
{
    uint32_t    kind, pair;
    ts_pair_t  *pp;

    p->hdr = h->hdr;
    p->block = 0;
    p->i = 0;

    kind = name == NULL ? TS_PAIR_TENANT
           : value == NULL ? TS_PAIR_NAME : TS_PAIR_VALUE;

    pair = ts_head_pair_find(h->hdr, tenant, kind, name, nlen, value, vlen);
    if (pair == 0) {
        return;
    }

    pp = ts_head_pair_at(h->hdr, pair);
    p->block = __atomic_load_n(&pp->first, __ATOMIC_ACQUIRE);
}


int
ts_postings_next(ts_postings_t *p, uint32_t *ref)
{
    ts_block_t  *b;

    while (p->block) {
        b = ts_head_arena(p->hdr, p->block);

        if (p->i < __atomic_load_n(&b->n, __ATOMIC_ACQUIRE)) {
            *ref = b->refs[p->i++];
            return 1;
        }

        if (p->i < TS_HEAD_POSTINGS_N) {
            /* the newest block, not full yet: the end for now */
            return 0;
        }

        p->block = __atomic_load_n(&b->next, __ATOMIC_ACQUIRE);
        p->i = 0;
    }

    return 0;
}


/*
 * Moves to the first ref >= target: over anchors while the next one
 * still starts at or below target, over full blocks that end below it,
 * then by binary search in the block.  Never moves backwards.
 */

int
ts_postings_seek(ts_postings_t *p, uint32_t target, uint32_t *ref)
{
    uint32_t     n, lo, hi, mid, skip;
    ts_block_t  *b, *sb;

    while (p->block) {
        b = ts_head_arena(p->hdr, p->block);

        skip = __atomic_load_n(&b->skip, __ATOMIC_ACQUIRE);
        if (skip) {
            sb = ts_head_arena(p->hdr, skip);

            if (sb->refs[0] <= target) {
                p->block = skip;
                p->i = 0;
                continue;
            }
        }

        n = __atomic_load_n(&b->n, __ATOMIC_ACQUIRE);

        if (n == TS_HEAD_POSTINGS_N && b->refs[n - 1] < target) {
            p->block = __atomic_load_n(&b->next, __ATOMIC_ACQUIRE);
            p->i = 0;
            continue;
        }

        lo = p->i;
        hi = n;

        while (lo < hi) {
            mid = lo + (hi - lo) / 2;

            if (b->refs[mid] < target) {
                lo = mid + 1;

            } else {
                hi = mid;
            }
        }

        p->i = lo;

        if (lo < n) {
            *ref = b->refs[p->i++];
            return 1;
        }

        if (n < TS_HEAD_POSTINGS_N) {
            /* the newest block, not full yet: the end for now */
            return 0;
        }

        p->block = __atomic_load_n(&b->next, __ATOMIC_ACQUIRE);
        p->i = 0;
    }

    return 0;
}


int
ts_head_label_names(ts_head_t *h, uint32_t tenant, ts_head_str_pt cb,
    void *data)
{
    uint32_t  pair;

    pair = ts_head_pair_find(h->hdr, tenant, TS_PAIR_TENANT, NULL, 0, NULL,
                             0);
    if (pair == 0) {
        return TS_OK;
    }

    return ts_head_list_str(h->hdr, pair, 0, cb, data);
}


int
ts_head_label_values(ts_head_t *h, uint32_t tenant, const char *name,
    size_t nlen, ts_head_str_pt cb, void *data)
{
    uint32_t  pair;

    pair = ts_head_pair_find(h->hdr, tenant, TS_PAIR_NAME, name, nlen, NULL,
                             0);
    if (pair == 0) {
        return TS_OK;
    }

    return ts_head_list_str(h->hdr, pair, 1, cb, data);
}


static uint64_t
ts_head_align(uint64_t n)
{
    return (n + TS_HEAD_ALIGN - 1) & ~(uint64_t) (TS_HEAD_ALIGN - 1);
}


static uint32_t
ts_head_pow2(uint32_t n)
{
    uint32_t  p;

    for (p = 1; p < n; p <<= 1) { /* void */ }

    return p;
}


/*
 * Splits the region by a budget of TS_HEAD_SERIES_COST bytes per series:
 * 1.5 chunks, 2 label pairs, the series entry and buckets, and the rest
 * as arena for label strings and postings.
 */

static void
ts_head_layout(ts_head_hdr_t *hdr, size_t size)
{
    uint64_t  off, avail, fixed;

    off = ts_head_align(sizeof(ts_head_hdr_t));
    hdr->off_tenants = off;
    off += ts_head_align(TS_HEAD_MAX_TENANTS * sizeof(ts_tenant_t));

    avail = size - off - TS_HEAD_ALIGN * 8;

    hdr->size = size;
    hdr->series_max = (uint32_t) (avail / TS_HEAD_SERIES_COST);
    hdr->series_mask = ts_head_pow2(hdr->series_max) - 1;
    hdr->pairs_max = hdr->series_max * 2;
    hdr->pairs_mask = ts_head_pow2(hdr->pairs_max) - 1;
    hdr->chunks_max = hdr->series_max + hdr->series_max / 2;

    hdr->off_sbuckets = off;
    off += ts_head_align((uint64_t) (hdr->series_mask + 1) * 4);
    hdr->off_series = off;
    off += ts_head_align((uint64_t) hdr->series_max * sizeof(ts_hseries_t));
    hdr->off_pbuckets = off;
    off += ts_head_align((uint64_t) (hdr->pairs_mask + 1) * 4);
    hdr->off_pairs = off;
    off += ts_head_align((uint64_t) hdr->pairs_max * sizeof(ts_pair_t));
    hdr->off_chunks = off;
    off += (uint64_t) hdr->chunks_max * sizeof(ts_hchunk_t);
    hdr->off_arena = ts_head_align(off);

    fixed = hdr->off_arena + TS_HEAD_ALIGN;
    hdr->arena_size = size > fixed ? size - fixed : 0;

    if (hdr->arena_size > UINT32_MAX) {
        hdr->arena_size = UINT32_MAX;
    }
}


static ts_tenant_t *
ts_head_tenants(ts_head_hdr_t *hdr)
{
    return (ts_tenant_t *) ((char *) hdr + hdr->off_tenants);
}


static uint32_t *
ts_head_sbuckets(ts_head_hdr_t *hdr)
{
    return (uint32_t *) ((char *) hdr + hdr->off_sbuckets);
}


static ts_hseries_t *
ts_head_series_at(ts_head_hdr_t *hdr, uint32_t ref)
{
    return (ts_hseries_t *) ((char *) hdr + hdr->off_series) + (ref - 1);
}


static uint32_t *
ts_head_pbuckets(ts_head_hdr_t *hdr)
{
    return (uint32_t *) ((char *) hdr + hdr->off_pbuckets);
}


static ts_pair_t *
ts_head_pair_at(ts_head_hdr_t *hdr, uint32_t id)
{
    return (ts_pair_t *) ((char *) hdr + hdr->off_pairs) + (id - 1);
}


static ts_hchunk_t *
ts_head_chunk_at(ts_head_hdr_t *hdr, uint32_t id)
{
    return (ts_hchunk_t *) ((char *) hdr + hdr->off_chunks) + (id - 1);
}


static void *
ts_head_arena(ts_head_hdr_t *hdr, uint32_t off)
{
    return (char *) hdr + hdr->off_arena + off;
}


static void
ts_head_lock(ts_head_t *h)
{
    if (ts_plock_lock(&h->hdr->lock, h->pid, h->alive) == 1) {
        ts_head_repair(h);
    }
}


static void
ts_head_unlock(ts_head_t *h)
{
    ts_plock_unlock(&h->hdr->lock, h->pid);
}


/*
 * Finishes the creation of a series that its creator did not finish:
 * it has its ref and labels; bucket link and postings may be missing.
 */

static void
ts_head_repair(ts_head_t *h)
{
    uint32_t        ref;
    ts_head_hdr_t  *hdr;

    hdr = h->hdr;
    ref = hdr->intent;

    if (ref == 0 || ref > hdr->series_used) {
        hdr->intent = 0;
        return;
    }

    if (ts_head_link(hdr, ref) == TS_OK && ts_head_index(hdr, ref) == TS_OK)
    {
        hdr->intent = 0;
    }
}


static uint32_t
ts_head_alloc(ts_head_hdr_t *hdr, size_t size)
{
    uint64_t  off;

    off = hdr->arena_used;
    size = (size + 7) & ~(size_t) 7;

    if (off + size > hdr->arena_size) {
        return 0;
    }

    __atomic_store_n(&hdr->arena_used, off + size, __ATOMIC_RELAXED);

    return (uint32_t) off;
}


static uint32_t
ts_head_str(ts_head_hdr_t *hdr, const char *s, size_t len)
{
    uint16_t   n;
    uint32_t   off;
    char      *p;

    off = ts_head_alloc(hdr, 2 + len);
    if (off == 0) {
        return 0;
    }

    n = (uint16_t) len;
    p = ts_head_arena(hdr, off);
    memcpy(p, &n, 2);
    memcpy(p + 2, s, len);

    return off;
}


static int
ts_head_str_eq(ts_head_hdr_t *hdr, uint32_t off, const char *s, size_t len)
{
    uint16_t     n;
    const char  *p;

    p = ts_head_arena(hdr, off);
    memcpy(&n, p, 2);

    return n == len && memcmp(p + 2, s, len) == 0;
}


static int
ts_head_tenant_scan(ts_head_hdr_t *hdr, uint32_t from, uint32_t to,
    const char *name, size_t len, uint64_t hash)
{
    uint32_t      i;
    ts_tenant_t  *t;

    t = ts_head_tenants(hdr);

    for (i = from; i < to; i++) {
        if (t[i].hash == hash && t[i].len == len
            && memcmp(t[i].name, name, len) == 0)
        {
            return (int) i;
        }
    }

    return -1;
}


/*
 * The labels blob and the newest chunk's header of the bucket's first
 * series, when its hash is the key's: the lines a match reads next.
 */
static void
ts_head_prefetch(ts_head_hdr_t *hdr, ts_head_key_t *k)
{
    size_t         size, off;
    uint32_t       i, id;
    const char    *p;
    ts_hseries_t  *s;

    if (k->ref == 0) {
        return;
    }

    s = ts_head_series_at(hdr, k->ref);

    if (s->hash != k->hash) {
        return;
    }

    size = 2;

    for (i = 0; i < k->n; i++) {
        size += 4 + k->labels[i].name_len + k->labels[i].value_len;
    }

    p = ts_head_arena(hdr, s->labels);

    for (off = 0; off < size + 63; off += 64) {
        __builtin_prefetch(p + (off < size ? off : size - 1));
    }

    /* a hint for the append that follows; the value may be stale */
    id = __atomic_load_n(&s->head, __ATOMIC_RELAXED);
    if (id) {
        __builtin_prefetch(ts_head_chunk_at(hdr, id));
    }
}


static uint32_t
ts_head_find(ts_head_hdr_t *hdr, uint32_t tenant, const ts_label_t *labels,
    uint32_t n, uint64_t hash)
{
    uint32_t  r;

    r = __atomic_load_n(&ts_head_sbuckets(hdr)[hash & hdr->series_mask],
                        __ATOMIC_ACQUIRE);

    return ts_head_chain(hdr, r, tenant, labels, n, hash);
}


/* walks a bucket chain from r */

static uint32_t
ts_head_chain(ts_head_hdr_t *hdr, uint32_t r, uint32_t tenant,
    const ts_label_t *labels, uint32_t n, uint64_t hash)
{
    ts_hseries_t  *s;

    while (r) {
        s = ts_head_series_at(hdr, r);

        if (s->hash == hash && s->tenant == tenant
            && ts_head_labels_eq(hdr, s->labels, labels, n))
        {
            return r;
        }

        r = __atomic_load_n(&s->next, __ATOMIC_ACQUIRE);
    }

    return 0;
}


/* memcmp() == 0 without a call for the short strings most labels are */

static inline int
ts_head_bytes_eq(const uint8_t *a, const char *b, size_t n)
{
    uint64_t  a1, a2, b1, b2;
    uint32_t  x1, x2, y1, y2;

    if (n > 16) {
        return memcmp(a, b, n) == 0;
    }

    if (n >= 8) {
        memcpy(&a1, a, 8);
        memcpy(&a2, a + n - 8, 8);
        memcpy(&b1, b, 8);
        memcpy(&b2, b + n - 8, 8);

        return ((a1 ^ b1) | (a2 ^ b2)) == 0;
    }

    if (n >= 4) {
        memcpy(&x1, a, 4);
        memcpy(&x2, a + n - 4, 4);
        memcpy(&y1, b, 4);
        memcpy(&y2, b + n - 4, 4);

        return ((x1 ^ y1) | (x2 ^ y2)) == 0;
    }

    return n == 0
           || (a[0] == (uint8_t) b[0] && a[n / 2] == (uint8_t) b[n / 2]
               && a[n - 1] == (uint8_t) b[n - 1]);
}


static int
ts_head_labels_eq(ts_head_hdr_t *hdr, uint32_t off, const ts_label_t *labels,
    uint32_t n)
{
    uint16_t        cnt, nl, vl;
    uint32_t        i;
    const uint8_t  *p;

    p = ts_head_arena(hdr, off);
    memcpy(&cnt, p, 2);
    p += 2;

    if (cnt != n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        memcpy(&nl, p, 2);
        memcpy(&vl, p + 2, 2);

        if (nl != labels[i].name_len || vl != labels[i].value_len
            || !ts_head_bytes_eq(p + 4, labels[i].name, nl)
            || !ts_head_bytes_eq(p + 4 + nl, labels[i].value, vl))
        {
            return 0;
        }

        p += 4 + nl + vl;
    }

    return 1;
}


/* u16 count, then per label u16 name length, u16 value length, bytes */

static uint32_t
ts_head_blob(ts_head_hdr_t *hdr, const ts_label_t *labels, uint32_t n)
{
    size_t     size;
    uint16_t   v;
    uint32_t   i, off;
    uint8_t   *p;

    size = 2;

    for (i = 0; i < n; i++) {
        if (labels[i].name_len > UINT16_MAX
            || labels[i].value_len > UINT16_MAX)
        {
            return 0;
        }

        size += 4 + labels[i].name_len + labels[i].value_len;
    }

    off = ts_head_alloc(hdr, size);
    if (off == 0) {
        return 0;
    }

    p = ts_head_arena(hdr, off);
    v = (uint16_t) n;
    memcpy(p, &v, 2);
    p += 2;

    for (i = 0; i < n; i++) {
        v = (uint16_t) labels[i].name_len;
        memcpy(p, &v, 2);
        v = (uint16_t) labels[i].value_len;
        memcpy(p + 2, &v, 2);
        memcpy(p + 4, labels[i].name, labels[i].name_len);
        memcpy(p + 4 + labels[i].name_len, labels[i].value,
               labels[i].value_len);
        p += 4 + labels[i].name_len + labels[i].value_len;
    }

    return off;
}


/* Links a series into its bucket unless it is there already. */

static int
ts_head_link(ts_head_hdr_t *hdr, uint32_t ref)
{
    uint32_t      *b, r;
    ts_hseries_t  *s;

    s = ts_head_series_at(hdr, ref);
    b = &ts_head_sbuckets(hdr)[s->hash & hdr->series_mask];

    for (r = *b; r; r = ts_head_series_at(hdr, r)->next) {
        if (r == ref) {
            return TS_OK;
        }
    }

    s->next = *b;
    __atomic_store_n(b, ref, __ATOMIC_RELEASE);

    return TS_OK;
}


/* Adds a series to the postings of its tenant, names and pairs. */

static int
ts_head_index(ts_head_hdr_t *hdr, uint32_t ref)
{
    uint32_t       i, n, tp, np, vp;
    ts_label_t     l[TS_HEAD_MAX_LABELS];
    ts_hseries_t  *s;
    ts_head_t      h;

    s = ts_head_series_at(hdr, ref);
    h.hdr = hdr;

    if (ts_head_labels(&h, ref, l, TS_HEAD_MAX_LABELS, &n) != TS_OK) {
        return TS_ERR_CORRUPT;
    }

    tp = ts_head_tenants(hdr)[s->tenant].pair;

    if (ts_head_postings_add(hdr, tp, ref) != TS_OK) {
        return TS_ERR_FULL;
    }

    for (i = 0; i < n; i++) {
        np = ts_head_pair_get(hdr, s->tenant, tp, TS_PAIR_NAME, l[i].name,
                              l[i].name_len, NULL, 0);
        if (np == 0 || ts_head_postings_add(hdr, np, ref) != TS_OK) {
            return TS_ERR_FULL;
        }

        vp = ts_head_pair_get(hdr, s->tenant, np, TS_PAIR_VALUE, l[i].name,
                              l[i].name_len, l[i].value, l[i].value_len);
        if (vp == 0 || ts_head_postings_add(hdr, vp, ref) != TS_OK) {
            return TS_ERR_FULL;
        }
    }

    return TS_OK;
}


static uint64_t
ts_head_pair_hash(uint32_t tenant, uint32_t kind, const char *name,
    size_t nlen, const char *value, size_t vlen)
{
    uint64_t  h;

    h = ts_xxh64(name, nlen, (uint64_t) tenant << 8 | kind);

    return ts_xxh64(value, vlen, h ^ 0xff);
}


static uint32_t
ts_head_pair_find(ts_head_hdr_t *hdr, uint32_t tenant, uint32_t kind,
    const char *name, size_t nlen, const char *value, size_t vlen)
{
    uint32_t    id;
    uint64_t    hash;
    ts_pair_t  *p;

    hash = ts_head_pair_hash(tenant, kind, name, nlen, value, vlen);
    id = __atomic_load_n(&ts_head_pbuckets(hdr)[hash & hdr->pairs_mask],
                         __ATOMIC_ACQUIRE);

    while (id) {
        p = ts_head_pair_at(hdr, id);

        if (p->hash == hash && p->tenant == tenant && p->kind == kind
            && (kind == TS_PAIR_TENANT
                || ts_head_str_eq(hdr, p->name, name, nlen))
            && (kind != TS_PAIR_VALUE
                || ts_head_str_eq(hdr, p->value, value, vlen)))
        {
            return id;
        }

        id = __atomic_load_n(&p->next, __ATOMIC_ACQUIRE);
    }

    return 0;
}


/* Finds or creates a pair, under the global lock; 0 when full. */

static uint32_t
ts_head_pair_get(ts_head_hdr_t *hdr, uint32_t tenant, uint32_t parent,
    uint32_t kind, const char *name, size_t nlen, const char *value,
    size_t vlen)
{
    uint32_t    id, *b;
    ts_pair_t  *p, *pp;

    id = ts_head_pair_find(hdr, tenant, kind, name, nlen, value, vlen);
    if (id) {
        return id;
    }

    if (hdr->pairs_used == hdr->pairs_max) {
        return 0;
    }

    id = hdr->pairs_used + 1;
    p = ts_head_pair_at(hdr, id);
    memset(p, 0, sizeof(ts_pair_t));

    p->hash = ts_head_pair_hash(tenant, kind, name, nlen, value, vlen);
    p->tenant = tenant;
    p->kind = kind;

    if (kind != TS_PAIR_TENANT) {
        p->name = ts_head_str(hdr, name, nlen);
        if (p->name == 0) {
            return 0;
        }
    }

    if (kind == TS_PAIR_VALUE) {
        p->value = ts_head_str(hdr, value, vlen);
        if (p->value == 0) {
            return 0;
        }
    }

    __atomic_store_n(&hdr->pairs_used, id, __ATOMIC_RELEASE);

    /*
     * Listed under the parent before it can be found: a crash between
     * the two may list a name or value twice, never drop one; listings
     * are deduplicated by their users.
     */

    if (parent) {
        pp = ts_head_pair_at(hdr, parent);
        p->sibling = pp->children;
        __atomic_store_n(&pp->children, id, __ATOMIC_RELEASE);
    }

    b = &ts_head_pbuckets(hdr)[p->hash & hdr->pairs_mask];
    p->next = *b;
    __atomic_store_n(b, id, __ATOMIC_RELEASE);

    return id;
}


/* Appends ref unless it is already the last one (repair after a crash). */

static int
ts_head_postings_add(ts_head_hdr_t *hdr, uint32_t pair, uint32_t ref)
{
    uint32_t     off, n;
    ts_pair_t   *p;
    ts_block_t  *b, *nb;

    p = ts_head_pair_at(hdr, pair);
    b = p->last ? ts_head_arena(hdr, p->last) : NULL;

    if (b != NULL) {
        n = b->n;

        if (n && b->refs[n - 1] == ref) {
            return TS_OK;
        }

        if (n < TS_HEAD_POSTINGS_N) {
            b->refs[n] = ref;
            __atomic_store_n(&b->n, n + 1, __ATOMIC_RELEASE);
            return TS_OK;
        }
    }

    off = ts_head_alloc(hdr, sizeof(ts_block_t));
    if (off == 0) {
        return TS_ERR_FULL;
    }

    nb = ts_head_arena(hdr, off);
    nb->next = 0;
    nb->skip = 0;
    nb->seq = b ? b->seq + 1 : 0;
    nb->refs[0] = ref;
    nb->n = 1;

    if (b == NULL) {
        __atomic_store_n(&p->first, off, __ATOMIC_RELEASE);

    } else {
        __atomic_store_n(&b->next, off, __ATOMIC_RELEASE);
    }

    p->last = off;

    if (nb->seq % TS_HEAD_SKIP_EVERY == 0) {
        if (p->anchor) {
            __atomic_store_n(&((ts_block_t *) ts_head_arena(hdr, p->anchor))
                             ->skip, off, __ATOMIC_RELEASE);
        }

        p->anchor = off;
    }

    return TS_OK;
}


/*
 * Takes a free chunk slot, with a histogram block when hist is set,
 * under the global lock; 0 when the head is full.  The slot is not
 * linked yet: the caller fills it, then ts_head_chunk_link().
 */

static uint32_t
ts_head_chunk_get(ts_head_t *h, int hist)
{
    uint32_t        id, blk;
    ts_hchunk_t    *c;
    ts_head_hdr_t  *hdr;

    hdr = h->hdr;
    blk = 0;

    ts_head_lock(h);

    if (hist) {
        blk = hdr->hist_free;

        if (blk) {
            memcpy(&hdr->hist_free, ts_head_arena(hdr, blk),
                   sizeof(uint32_t));

        } else {
            blk = ts_head_alloc(hdr, TS_HEAD_HIST_BLOCK);
            if (blk == 0) {
                ts_head_unlock(h);
                return 0;
            }
        }
    }

    id = hdr->chunks_free;

    if (id) {
        c = ts_head_chunk_at(hdr, id);
        __atomic_store_n(&hdr->chunks_free, c->h.prev, __ATOMIC_RELAXED);

    } else if (hdr->chunks_used < hdr->chunks_max) {
        id = ++hdr->chunks_used;
        c = ts_head_chunk_at(hdr, id);
        c->h.gen = 0;

    } else {
        if (blk) {
            memcpy(ts_head_arena(hdr, blk), &hdr->hist_free,
                   sizeof(uint32_t));
            hdr->hist_free = blk;
        }

        ts_head_unlock(h);
        return 0;
    }

    hdr->chunks_live++;
    hdr->hist_live += blk ? 1 : 0;

    c->h.enc = TS_XOR_ENCODING;
    c->h.blk = blk;

    ts_head_unlock(h);

    return id;
}


/* Makes a filled chunk the series' newest; the series is locked. */

static void
ts_head_chunk_link(ts_head_hdr_t *hdr, uint32_t ref, uint32_t id,
    uint32_t prev, int64_t mint)
{
    ts_hchunk_t  *c;

    c = ts_head_chunk_at(hdr, id);
    c->h.prev = prev;
    c->h.series = ref;
    c->h.mint = mint;

    __atomic_store_n(&ts_head_series_at(hdr, ref)->head, id,
                     __ATOMIC_RELEASE);
}


/* Starts an XOR chunk with one sample; called with the series locked. */

static uint32_t
ts_head_chunk_new(ts_head_t *h, uint32_t ref, uint32_t prev, int64_t t,
    uint64_t v)
{
    uint32_t      id;
    ts_hchunk_t  *c;

    id = ts_head_chunk_get(h, 0);
    if (id == 0) {
        return 0;
    }

    c = ts_head_chunk_at(h->hdr, id);

    if (ts_xor_init(&c->h.a, c->data, TS_HEAD_CHUNK_DATA) != TS_OK
        || ts_xor_append_bits(&c->h.a, c->data, t, v) != TS_OK)
    {
        ts_head_chunk_free(h, id);
        return 0;
    }

    ts_head_chunk_link(h->hdr, ref, id, prev, t);

    return id;
}


static ts_hist_app_t *
ts_head_hist_at(ts_head_hdr_t *hdr, const ts_hchunk_t *c)
{
    return ts_head_arena(hdr, c->h.blk);
}


static uint8_t *
ts_head_hist_buf(ts_hist_app_t *a)
{
    return (uint8_t *) a + a->size;
}


/* the newest timestamp of a chunk; the series is locked */

static int64_t
ts_head_chunk_last(ts_head_hdr_t *hdr, ts_hchunk_t *c)
{
    if (c->h.enc == TS_XOR_ENCODING) {
        return c->h.a.t;
    }

    return ts_head_hist_at(hdr, c)->t;
}


static void
ts_head_chunk_recover(ts_head_hdr_t *hdr, uint32_t id)
{
    ts_hist_app_t  *a;
    ts_hchunk_t    *c;

    c = ts_head_chunk_at(hdr, id);

    if (c->h.enc == TS_XOR_ENCODING) {
        (void) ts_xor_recover(&c->h.a, c->data);
        return;
    }

    a = ts_head_hist_at(hdr, c);
    (void) ts_hist_recover(a, ts_head_hist_buf(a));
}


/* locks a series; a dead writer's open chunk is repaired first */

static void
ts_head_series_lock(ts_head_t *h, ts_hseries_t *s)
{
    uint32_t  id;

    if (ts_plock_lock(&s->lock, h->pid, h->alive) == 1) {
        id = __atomic_load_n(&s->head, __ATOMIC_ACQUIRE);
        if (id) {
            ts_head_chunk_recover(h->hdr, id);
        }
    }
}


/*
 * t is not after the newest sample: a retry of a stored sample (the
 * value bits v, or the histogram hist when not NULL) is
 * TS_HEAD_DUPLICATE, anything else is rejected.  The series is locked.
 */

static int
ts_head_find_sample(ts_head_hdr_t *hdr, uint32_t id, int64_t t, uint64_t v,
    const ts_hist_t *hist)
{
    int             rc;
    int64_t         st;
    uint64_t        sv;
    ts_hchunk_t    *c;
    ts_xor_iter_t   it;

    while (id) {
        c = ts_head_chunk_at(hdr, id);

        if (c->h.mint > t) {
            id = c->h.prev;
            continue;
        }

        if (c->h.enc != TS_XOR_ENCODING) {
            return ts_head_find_hist(c, ts_head_hist_at(hdr, c), t, hist);
        }

        ts_xor_iter_init_live(&it, &c->h.a, c->data);

        while ((rc = ts_xor_iter_next_bits(&it, &st, &sv)) == 1) {
            if (st == t) {
                return hist == NULL && sv == v ? TS_HEAD_DUPLICATE
                                               : TS_ERR_DUPLICATE;
            }

            if (st > t) {
                break;
            }
        }

        return TS_ERR_OUT_OF_ORDER;
    }

    return TS_ERR_OUT_OF_ORDER;
}


/* the same for a histogram chunk; hist NULL: a float sample */

static int
ts_head_find_hist(ts_hchunk_t *c, ts_hist_app_t *a, int64_t t,
    const ts_hist_t *hist)
{
    int              rc;
    void            *mem;
    size_t           need;
    int64_t          st;
    uint8_t         *buf;
    ts_hist_t        sh;
    ts_hist_iter_t   it;

    buf = ts_head_hist_buf(a);
    need = ts_hist_iter_need(buf, ts_hist_bytes(a), c->h.enc);

    mem = malloc(need);
    if (mem == NULL) {
        return TS_ERR_NOMEM;
    }

    ts_hist_iter_init_live(&it, a, buf, mem, need);
    rc = TS_ERR_OUT_OF_ORDER;

    while (ts_hist_iter_next(&it, &st, &sh) == 1 && st <= t) {
        if (st == t) {
            rc = hist != NULL && ts_head_hist_eq(&sh, hist)
                 ? TS_HEAD_DUPLICATE : TS_ERR_DUPLICATE;
            break;
        }
    }

    free(mem);

    return rc;
}


static int
ts_head_snapshot(ts_head_hdr_t *hdr, uint32_t id, ts_head_chunk_t *c,
    uint32_t *prev)
{
    int             rc;
    int64_t         t;
    uint64_t        v;
    ts_hchunk_t    *hc;
    ts_xor_iter_t   it;

    hc = ts_head_chunk_at(hdr, id);
    c->len = sizeof(c->data);
    c->mint = hc->h.mint;
    c->encoding = hc->h.enc;
    *prev = __atomic_load_n(&hc->h.prev, __ATOMIC_ACQUIRE);

    if (c->encoding != TS_XOR_ENCODING) {
        return ts_head_snapshot_hist(hdr, hc, c);
    }

    if (ts_xor_snapshot(&hc->h.a, hc->data, c->data, &c->len) != TS_OK) {
        return TS_ERR_CORRUPT;
    }

    /* the exact last timestamp of this copy, for chunk metadata */

    c->samples = 0;
    c->maxt = c->mint;
    ts_xor_iter_init(&it, c->data, c->len);

    while ((rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1) {
        c->maxt = t;
        c->samples++;
    }

    return rc == 0 ? TS_OK : TS_ERR_CORRUPT;
}


static int
ts_head_list_str(ts_head_hdr_t *hdr, uint32_t pair, int value,
    ts_head_str_pt cb, void *data)
{
    uint16_t     n;
    uint32_t     id;
    ts_pair_t   *p;
    const char  *s;

    id = __atomic_load_n(&ts_head_pair_at(hdr, pair)->children,
                         __ATOMIC_ACQUIRE);

    while (id) {
        p = ts_head_pair_at(hdr, id);
        s = ts_head_arena(hdr, value ? p->value : p->name);
        memcpy(&n, s, 2);

        if (cb(data, s + 2, n) != 0) {
            break;
        }

        id = __atomic_load_n(&p->sibling, __ATOMIC_ACQUIRE);
    }

    return TS_OK;
}


/* The chunk is unlinked already; the series is locked. */

static void
ts_head_chunk_free(ts_head_t *h, uint32_t id)
{
    ts_hchunk_t    *c;
    ts_head_hdr_t  *hdr;

    hdr = h->hdr;
    c = ts_head_chunk_at(hdr, id);

    __atomic_store_n(&c->h.gen, c->h.gen + 1, __ATOMIC_RELEASE);

    ts_head_lock(h);

    c->h.prev = hdr->chunks_free;
    c->h.series = 0;
    __atomic_store_n(&hdr->chunks_free, id, __ATOMIC_RELAXED);
    hdr->chunks_live--;
    hdr->chunks_released++;

    if (c->h.blk) {
        /* a free block's first word links the free list */
        memcpy(ts_head_arena(hdr, c->h.blk), &hdr->hist_free,
               sizeof(uint32_t));
        hdr->hist_free = c->h.blk;
        hdr->hist_live--;
        c->h.blk = 0;
    }

    ts_head_unlock(h);
}


/*
 * Starts a histogram chunk with one sample after prev and links it.
 * The appender takes the start of the block, the chunk buffer the rest.
 */

static int
ts_head_hist_new(ts_head_t *h, uint32_t ref, uint32_t prev, int64_t t,
    const ts_hist_t *hist, unsigned header)
{
    int             rc;
    size_t          asize;
    uint32_t        id;
    ts_hchunk_t    *c;
    ts_hist_app_t  *a;

    asize = ts_hist_app_size(hist);
    if (asize == 0) {
        return TS_ERR_INVALID;
    }

    asize = (asize + 7) & ~(size_t) 7;
    if (asize > TS_HEAD_HIST_BLOCK / 2) {
        return TS_ERR_LIMIT;
    }

    id = ts_head_chunk_get(h, 1);
    if (id == 0) {
        return TS_ERR_FULL;
    }

    c = ts_head_chunk_at(h->hdr, id);
    c->h.enc = hist->is_float ? TS_FHIST_ENCODING : TS_HIST_ENCODING;
    a = ts_head_hist_at(h->hdr, c);

    rc = ts_hist_start(a, asize, (uint8_t *) a + asize,
                       TS_HEAD_HIST_BLOCK - asize, header, t, hist);
    if (rc != TS_OK) {
        ts_head_chunk_free(h, id);
        return rc == TS_ERR_FULL ? TS_ERR_LIMIT : TS_ERR_INVALID;
    }

    ts_head_chunk_link(h->hdr, ref, id, prev, t);

    return TS_OK;
}


/* Appends to the open histogram chunk id, cutting or recoding it. */

static int
ts_head_hist_add(ts_head_t *h, uint32_t ref, uint32_t id, int64_t t,
    const ts_hist_t *hist)
{
    int             rc;
    unsigned        hdr;
    ts_hchunk_t    *c;
    ts_hist_app_t  *a;

    c = ts_head_chunk_at(h->hdr, id);
    a = ts_head_hist_at(h->hdr, c);
    hdr = TS_HIST_HDR_UNKNOWN;

    /* Prometheus's head cuts near 1 KiB once a chunk has 10 samples */

    if (ts_hist_count(a) >= TS_HIST_MIN_SAMPLES
        && ts_hist_bytes(a) >= TS_HIST_TARGET_BYTES)
    {
        rc = TS_ERR_FULL;

    } else {
        rc = ts_hist_append(a, ts_head_hist_buf(a), t, hist, &hdr);
    }

    switch (rc) {

    case TS_HIST_CUT:
        return ts_head_hist_new(h, ref, id, t, hist, hdr);

    case TS_HIST_RECODE:
        rc = ts_head_hist_recode(h, ref, id, t, hist);
        if (rc != TS_ERR_FULL) {
            return rc;
        }

        return ts_head_hist_new(h, ref, id, t, hist, TS_HIST_HDR_NOT_RESET);

    case TS_ERR_FULL:
        return ts_head_hist_new(h, ref, id, t, hist,
                                ts_hist_cut_header(a, hist));

    default:
        return rc;
    }
}


/*
 * Writes chunk id again with the buckets hist brings, plus hist, into a
 * new chunk that takes its place; the old one is freed after.
 * TS_ERR_FULL: the caller cuts a new chunk instead.
 */

static int
ts_head_hist_recode(ts_head_t *h, uint32_t ref, uint32_t id, int64_t t,
    const ts_hist_t *hist)
{
    int             rc;
    void           *mem;
    size_t          nasize, need;
    uint8_t        *buf;
    uint32_t        nid;
    ts_hchunk_t    *c, *nc;
    ts_hist_app_t  *a, *na;

    c = ts_head_chunk_at(h->hdr, id);
    a = ts_head_hist_at(h->hdr, c);
    buf = ts_head_hist_buf(a);

    nasize = (ts_hist_recode_size(a, hist) + 7) & ~(size_t) 7;
    if (nasize == 0 || nasize > TS_HEAD_HIST_BLOCK / 2) {
        return TS_ERR_FULL;
    }

    need = ts_hist_iter_need(buf, ts_hist_bytes(a), c->h.enc);

    mem = malloc(need);
    if (mem == NULL) {
        return TS_ERR_NOMEM;
    }

    nid = ts_head_chunk_get(h, 1);
    if (nid == 0) {
        free(mem);
        return TS_ERR_FULL;
    }

    nc = ts_head_chunk_at(h->hdr, nid);
    nc->h.enc = c->h.enc;
    na = ts_head_hist_at(h->hdr, nc);

    rc = ts_hist_recode(a, buf, na, nasize, (uint8_t *) na + nasize,
                        TS_HEAD_HIST_BLOCK - nasize, t, hist, mem, need);
    free(mem);

    if (rc != TS_OK) {
        ts_head_chunk_free(h, nid);
        return rc == TS_ERR_FULL ? TS_ERR_FULL : TS_ERR_CORRUPT;
    }

    ts_head_chunk_link(h->hdr, ref, nid, c->h.prev, c->h.mint);
    ts_head_chunk_free(h, id);

    return TS_OK;
}


/* the same histogram: what a reader of either would see */

static int
ts_head_hist_eq(const ts_hist_t *a, const ts_hist_t *b)
{
    if (a->sum == TS_HIST_STALE_SUM || b->sum == TS_HIST_STALE_SUM) {
        return a->sum == b->sum;
    }

    if (a->is_float != b->is_float || a->schema != b->schema
        || a->sum != b->sum
        || memcmp(&a->zero_threshold, &b->zero_threshold, 8) != 0
        || a->n_custom != b->n_custom
        || (a->n_custom
            && memcmp(a->custom_values, b->custom_values,
                      a->n_custom * sizeof(double)) != 0))
    {
        return 0;
    }

    if (a->is_float
        ? memcmp(&a->fcount, &b->fcount, 8) != 0
          || memcmp(&a->fzero_count, &b->fzero_count, 8) != 0
        : a->count != b->count || a->zero_count != b->zero_count)
    {
        return 0;
    }

    return ts_head_hist_side_eq(a, b, 0) && ts_head_hist_side_eq(a, b, 1);
}


/* the non-empty buckets of one side, by index, with equal counts */

static int
ts_head_hist_side_eq(const ts_hist_t *a, const ts_hist_t *b, int neg)
{
    int          ra, rb;
    int64_t      ia, ib;
    uint64_t     va, vb;
    ts_head_bw_t  wa, wb;

    ts_head_bw_init(&wa, a, neg);
    ts_head_bw_init(&wb, b, neg);

    for ( ;; ) {
        ra = ts_head_bw_next(&wa, &ia, &va);
        rb = ts_head_bw_next(&wb, &ib, &vb);

        if (ra != rb) {
            return 0;
        }

        if (ra == 0) {
            return 1;
        }

        if (ia != ib || va != vb) {
            return 0;
        }
    }
}


static void
ts_head_bw_init(ts_head_bw_t *w, const ts_hist_t *h, int neg)
{
    memset(w, 0, sizeof(ts_head_bw_t));

    w->spans = neg ? h->neg_spans : h->pos_spans;
    w->ns = neg ? h->n_neg_spans : h->n_pos_spans;
    w->nb = neg ? h->n_neg : h->n_pos;

    if (h->is_float) {
        w->counts = neg ? h->neg_counts : h->pos_counts;

    } else {
        w->deltas = neg ? h->neg_deltas : h->pos_deltas;
    }
}


/* 1 and the next non-empty bucket's index and count (bits), or 0 */

static int
ts_head_bw_next(ts_head_bw_t *w, int64_t *idx, uint64_t *v)
{
    double  f;

    for ( ;; ) {
        while (w->left == 0) {
            if (w->si == w->ns) {
                return 0;
            }

            w->idx += w->spans[w->si].offset;
            w->left = w->spans[w->si].length;
            w->si++;
        }

        if (w->bi == w->nb) {
            return 0;
        }

        if (w->deltas != NULL) {
            w->acc += (uint64_t) w->deltas[w->bi];
            *v = w->acc;

        } else {
            f = w->counts[w->bi];
            f = f == 0 ? 0 : f;
            memcpy(v, &f, 8);
        }

        *idx = w->idx++;
        w->left--;
        w->bi++;

        if (*v != 0) {
            return 1;
        }
    }
}


/*
 * Copies a histogram chunk.  Nothing is trusted: the block may be freed
 * and reused under the reader, who then sees the generation change.
 */

static int
ts_head_snapshot_hist(ts_head_hdr_t *hdr, ts_hchunk_t *hc,
    ts_head_chunk_t *c)
{
    int              rc;
    int64_t          t;
    uint32_t         blk, asz;
    uint64_t         mem[TS_HEAD_HIST_SCRATCH / 8];
    ts_hist_t        sh;
    ts_hist_app_t   *a;
    ts_hist_iter_t   it;

    blk = __atomic_load_n(&hc->h.blk, __ATOMIC_RELAXED);

    if (blk == 0 || (uint64_t) blk + TS_HEAD_HIST_BLOCK > hdr->arena_size
        || (c->encoding != TS_HIST_ENCODING
            && c->encoding != TS_FHIST_ENCODING))
    {
        return TS_ERR_CORRUPT;
    }

    a = ts_head_arena(hdr, blk);
    asz = __atomic_load_n(&a->size, __ATOMIC_RELAXED);

    if (asz == 0 || asz > TS_HEAD_HIST_BLOCK / 2) {
        return TS_ERR_CORRUPT;
    }

    c->len = TS_HEAD_HIST_BLOCK - asz;

    if (ts_hist_snapshot(a, (uint8_t *) a + asz, c->data, &c->len) != TS_OK)
    {
        return TS_ERR_CORRUPT;
    }

    c->samples = 0;
    c->maxt = c->mint;
    ts_hist_iter_init(&it, c->data, c->len, c->encoding, mem, sizeof(mem));

    while ((rc = ts_hist_iter_next(&it, &t, &sh)) == 1) {
        c->maxt = t;
        c->samples++;
    }

    return rc == 0 ? TS_OK : TS_ERR_CORRUPT;
}
