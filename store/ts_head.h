/*
 * Copyright (C) ngx_tsdb authors
 *
 * The head: the in-memory part of a zone, kept in one shared memory
 * region that every nginx worker maps.  It holds tenants, series (labels
 * and a chain of chunks: Prometheus XOR chunks for float samples,
 * histogram chunks for native histograms), and postings (label pair ->
 * ascending series refs).  Writers serialize per series; readers never
 * lock.  See ts_head.c for the invariants and what a crash leaves.
 */

#ifndef TS_HEAD_H
#define TS_HEAD_H


#include "ts_core.h"
#include "ts_hchunk.h"
#include "ts_labels.h"


#define TS_HEAD_CHUNK_SIZE     256

/*
 * A histogram chunk's appender and buffer share one arena block of this
 * size; the appender may take at most half of it.  TS_HEAD_CHUNK_MAX is
 * the largest chunk a ts_head_chunk_t carries.
 */
#define TS_HEAD_HIST_BLOCK     8192
#define TS_HEAD_CHUNK_MAX      TS_HEAD_HIST_BLOCK
#define TS_HEAD_MAX_TENANTS    1024
#define TS_HEAD_TENANT_LEN     128
#define TS_HEAD_MAX_LABELS     256

/* a float sample: value as IEEE-754 bits */
typedef struct {
    int64_t                 t;
    uint64_t                v;
} ts_head_sample_t;

/* ts_head_append() result for a sample identical to a stored one */
#define TS_HEAD_DUPLICATE      1


typedef struct ts_head_hdr_s  ts_head_hdr_t;


/* A process-local handle on a shared head region. */
typedef struct {
    ts_head_hdr_t          *hdr;
    int64_t                 pid;
    ts_pid_alive_pt         alive;
} ts_head_t;


typedef struct {
    uint64_t                series;
    uint64_t                series_max;
    uint64_t                chunks;
    uint64_t                chunks_max;
    uint64_t                arena_used;
    uint64_t                arena_size;
    uint64_t                pairs;
    uint64_t                pairs_max;
    uint64_t                tenants;
    uint64_t                samples;
} ts_head_stats_t;


/* Iterates one postings list; refs come in ascending order. */
typedef struct {
    ts_head_hdr_t          *hdr;
    uint32_t                block;
    uint32_t                i;
} ts_postings_t;


/* A consistent copy of one chunk, made while writers may append. */
typedef struct {
    int64_t                 mint;
    int64_t                 maxt;
    uint32_t                samples;
    uint32_t                encoding;   /* TS_XOR_ENCODING, TS_HIST_... */
    size_t                  len;
    uint8_t                 data[TS_HEAD_CHUNK_MAX];
} ts_head_chunk_t;


/* Called per chunk, oldest first; returns 0 to go on, else stops. */
typedef int (*ts_head_chunk_pt)(void *data, const ts_head_chunk_t *c);

/* Called per label name or value; returns 0 to go on, else stops. */
typedef int (*ts_head_str_pt)(void *data, const char *s, size_t len);


/*
 * Formats the region, or takes it over when it already holds a head of
 * the same layout (an nginx reload hands the zone back); locks held by
 * dead processes are taken over and repaired on first use.
 * TS_ERR_INVALID if the region is smaller than ts_head_min_size().
 */
int ts_head_open(ts_head_t *h, void *mem, size_t size, int64_t pid,
    ts_pid_alive_pt alive);
size_t ts_head_min_size(void);

void ts_head_stats(ts_head_t *h, ts_head_stats_t *st);

/*
 * Tenant ids: ts_head_tenant() creates the tenant if needed (the name
 * must have been validated by the caller); _find returns TS_ERR_NOTFOUND
 * for a tenant that never wrote.
 */
int ts_head_tenant(ts_head_t *h, const char *name, size_t len,
    uint32_t *id);
int ts_head_tenant_find(ts_head_t *h, const char *name, size_t len,
    uint32_t *id);

/*
 * Finds or creates the series with these labels (validated and sorted
 * by name; hash from ts_labels_hash()).  Returns 0 when found, 1 when
 * created, TS_ERR_FULL when the head has no room, TS_ERR_LIMIT for more
 * than TS_HEAD_MAX_LABELS labels or when the tenant already has
 * max_series series (0: no limit).
 */
int ts_head_series(ts_head_t *h, uint32_t tenant, const ts_label_t *labels,
    uint32_t n, uint64_t hash, uint32_t max_series, uint32_t *ref);

/* One lookup of ts_head_find_many(). */
typedef struct {
    const ts_label_t       *labels;     /* as they would be stored */
    uint32_t                n;
    uint32_t                ref;        /* out: the series, 0 if none */
    uint64_t                hash;       /* ts_labels_hash() */
} ts_head_key_t;

/*
 * Finds series of a tenant without creating any: ts_head_series()'s
 * lookup for n keys at once, the memory each needs (hash bucket,
 * series, labels, newest chunk) prefetched for several before any is
 * compared, since on a large head each is a cache miss.
 */
void ts_head_find_many(ts_head_t *h, uint32_t tenant, ts_head_key_t *keys,
    size_t n);

/* Series a tenant has in the head. */
uint32_t ts_head_tenant_series(ts_head_t *h, uint32_t tenant);

/*
 * Appends a sample (value as IEEE-754 bits, kept bit for bit).  TS_OK;
 * TS_HEAD_DUPLICATE when the series already holds the same timestamp
 * with the same value bits (a retry); TS_ERR_DUPLICATE for the same
 * timestamp with another value; TS_ERR_OUT_OF_ORDER for a timestamp
 * before the last one that is not a duplicate; TS_ERR_FULL when no
 * chunk is free.
 */
int ts_head_append(ts_head_t *h, uint32_t ref, int64_t t, uint64_t v);

/*
 * ts_head_append() for n samples of one series, in order, under one
 * take of the series lock; a sample before oldest is TS_ERR_TOO_OLD
 * (pass INT64_MIN for none).  rcs[k] gets sample k's result; stops after
 * the first TS_ERR_FULL.  Returns how many samples were tried and adds
 * the stored ones (TS_OK) to *stored.  They are not counted in the
 * head's sample total (ts_head_stats()) until the caller passes its sum
 * to ts_head_count_samples(): one shared counter update per request,
 * not per sample.
 */
size_t ts_head_append_n(ts_head_t *h, uint32_t ref,
    const ts_head_sample_t *smp, size_t n, int64_t oldest, int *rcs,
    size_t *stored);
void ts_head_count_samples(ts_head_t *h, size_t n);

/*
 * Appends a native histogram, with ts_head_append()'s results (a
 * duplicate is the same timestamp and the same histogram: counts, sum,
 * schema, zero bucket, custom bounds and bucket counts by index).  A
 * chunk is cut on a switch between floats and histograms, when
 * ts_hist_append() says so, and near TS_HIST_TARGET_BYTES; a chunk is
 * recoded when buckets appear.  TS_ERR_INVALID for a malformed
 * histogram, TS_ERR_LIMIT for one too large for TS_HEAD_HIST_BLOCK.
 */
int ts_head_append_hist(ts_head_t *h, uint32_t ref, int64_t t,
    const ts_hist_t *hist);

/* Labels of a series, pointing into the shared region. */
int ts_head_labels(ts_head_t *h, uint32_t ref, ts_label_t *out,
    uint32_t max, uint32_t *n);
int ts_head_series_tenant(ts_head_t *h, uint32_t ref, uint32_t *tenant);

/*
 * Copies the series' chunks that overlap [mint, maxt] and hands them
 * to cb, oldest first.  TS_ERR_AGAIN if chunks kept being recycled under
 * the reader (the caller then reads from persisted storage).
 */
int ts_head_read(ts_head_t *h, uint32_t ref, int64_t mint, int64_t maxt,
    ts_head_chunk_pt cb, void *data);

/* Series refs are 1 .. ts_head_nseries(). */
uint32_t ts_head_nseries(ts_head_t *h);
int ts_head_tenant_name(ts_head_t *h, uint32_t tenant, const char **name,
    size_t *len);

/*
 * Checkpoints.  A flusher (one at a time: ts_head_flush_trylock(), 0 or
 * 1 when taken, 1 meaning a dead flusher's lock was taken over, else
 * TS_ERR_AGAIN) bumps the epoch with ts_head_epoch_begin() (seq_cst)
 * before it copies the head, and publishes the epoch with
 * ts_head_ckpt_publish() once the copy is durable.  A writer appends to
 * the head, then loads ts_head_epoch() (seq_cst): every WAL record it
 * wrote before it saw epoch E is covered by checkpoint E, so once
 * ts_head_ckpt_done() >= E it may delete the segments it wrote before
 * seeing E.
 */
uint64_t ts_head_epoch(ts_head_t *h);
uint64_t ts_head_epoch_begin(ts_head_t *h);
uint64_t ts_head_ckpt_done(ts_head_t *h);
void ts_head_ckpt_publish(ts_head_t *h, uint64_t epoch);
int ts_head_flush_trylock(ts_head_t *h);
void ts_head_flush_unlock(ts_head_t *h);

/* The LMDB id last seen for a series (a hint), 0 if none. */
uint64_t ts_head_series_dbid(ts_head_t *h, uint32_t ref);
void ts_head_series_set_dbid(ts_head_t *h, uint32_t ref, uint64_t id);

/*
 * The floor: the newest time of the series known to be durable
 * elsewhere (INT64_MIN: none).  *known is 0 until ts_head_floor_init()
 * set the base, the newest time the store held before this head wrote
 * anything of the series there (once per series and head lifetime: a
 * head rebuilt from the WAL does not know what was checkpointed).  A
 * flusher must not store samples at or before the base: the head may
 * hold only part of the chunk stored under the same key.
 */
int64_t ts_head_floor(ts_head_t *h, uint32_t ref, int64_t *base,
    int *known);
void ts_head_floor_init(ts_head_t *h, uint32_t ref, int64_t t);

/*
 * Called once everything of the series up to time upto is durable
 * elsewhere: raises the series' floor to upto and frees its sealed
 * chunks that end at or before it (the open chunk stays).  From then on
 * a sample at or before the floor that the head no longer holds is
 * answered TS_HEAD_DUPLICATE by ts_head_append() (it cannot be compared
 * without reading the store), and ts_head_read() gives what remains.
 * *freed is the number of chunks freed.
 */
int ts_head_release(ts_head_t *h, uint32_t ref, int64_t upto,
    uint32_t *freed);

/*
 * Postings of a tenant: name == NULL gives all its series; value ==
 * NULL all series that have the label name; otherwise the series with
 * name="value".  An unknown pair gives an empty list.
 */
void ts_head_postings(ts_head_t *h, uint32_t tenant, const char *name,
    size_t nlen, const char *value, size_t vlen, ts_postings_t *p);
int ts_postings_next(ts_postings_t *p, uint32_t *ref);
/* The first ref >= target from the current position on, as next. */
int ts_postings_seek(ts_postings_t *p, uint32_t target, uint32_t *ref);

/* Label names of a tenant, and the values of one name, unsorted. */
int ts_head_label_names(ts_head_t *h, uint32_t tenant, ts_head_str_pt cb,
    void *data);
int ts_head_label_values(ts_head_t *h, uint32_t tenant, const char *name,
    size_t nlen, ts_head_str_pt cb, void *data);


#endif /* TS_HEAD_H */
