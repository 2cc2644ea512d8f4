/*
 * Copyright (C) ngx_tsdb authors
 *
 * The LMDB persistence layer of a zone: one LMDB environment in
 * <path>/index/ holding tenants, series (labels <-> ids), postings,
 * chunks, metric metadata and a retention index.  The byte format is in
 * docs/format/lmdb.md; the invariants are at the top of ts_db.c.
 *
 * Processes.  Open a ts_db_t in the process that uses it, after fork():
 * a handle used in another pid fails with TS_ERR_INVALID, and closing it
 * there only frees memory.  Any number of processes may have the same
 * directory open; writes are serialized by LMDB, reads never wait.
 *
 * Threads.  A ts_db_t may be used from every thread of its process:
 * ts_db_apply(), ts_db_retention(), ts_db_sync() and
 * ts_db_reader_check() serialize among themselves.  A read handle
 * (ts_db_rtxn_t) and the iterators opened on it are used by one thread
 * at a time; they may move to another thread between calls.  Keep a
 * read handle active only for a synchronous step (reset it before
 * yielding to an event loop): growing the map waits until no handle of
 * this process is active, and a thread that calls ts_db_apply() while
 * one of its own handles is active makes that wait time out
 * (TS_ERR_AGAIN).
 *
 * Nothing here logs.  Calls return TS_OK or a negative ts_err_t; the
 * message of the last failure is ts_db_errmsg() for ts_db_t calls and
 * ts_db_rtxn_errmsg() for reads, one line naming the LMDB call or the
 * sub-database and key, and the file.
 */

#ifndef TS_DB_H
#define TS_DB_H


#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ts_error.h"
#include "ts_labels.h"


#define TS_DB_VERSION           2               /* format version */
#define TS_DB_PBLOCK_MAX        128             /* ids in a postings block */
#define TS_DB_PBLOCK_BYTES      512             /* bytes of deltas, at most */
#define TS_DB_MIGRATE_STEP      65536           /* ids a migration txn */
#define TS_DB_DIR               "index"         /* under the zone path */
#define TS_DB_MAP_SIZE          ((size_t) 64 << 20)
#define TS_DB_MAP_MAX           ((size_t) 64 << 30)
#define TS_DB_MAX_READERS       126
#define TS_DB_RESIZE_WAIT       10000           /* ms */
#define TS_DB_TENANT_MAX        128
#define TS_DB_CHUNK_MAX         (1u << 20)      /* bytes of one chunk */
#define TS_DB_BUCKET_MS         3600000         /* retention bucket */
#define TS_DB_ERR_MAX           (PATH_MAX + 256)

/* remote-write MetricMetadata.MetricType */
#define TS_DB_METRIC_UNKNOWN    0


typedef struct ts_db_s        ts_db_t;
typedef struct ts_db_rtxn_s   ts_db_rtxn_t;
typedef struct ts_db_batch_s  ts_db_batch_t;


typedef struct {
    const char         *path;          /* zone path: env in <path>/index */
    size_t              map_size;      /* initial map, 0: 64 MiB */
    size_t              map_max;       /* growth limit, 0: 64 GiB */
    unsigned            max_readers;   /* 0: 126; the first opener's
                                          value holds for everyone */
    unsigned            resize_wait;   /* ms, 0: 10000 */
    uid_t               uid;           /* (uid_t) -1: keep owner */
    gid_t               gid;           /* (gid_t) -1: keep group */
    unsigned            migrate_step;  /* postings ids converted per
                                          transaction of the v1 -> v2
                                          migration, 0: 65536 */
} ts_db_conf_t;


typedef struct {
    size_t              map_size;      /* this process's map */
    size_t              map_max;
    size_t              used_bytes;    /* up to the last page in use:
                                          free pages LMDB will reuse
                                          included */
    size_t              file_bytes;    /* size of data.mdb */
    unsigned            page_size;
    unsigned            readers;       /* reader slots ever used */
    unsigned            max_readers;
    uint64_t            series;        /* entries, last commit */
    uint64_t            chunks;
    uint64_t            tenants;
    uint64_t            grows;         /* map grown by this process */
    uint64_t            adopts;        /* map grown by another one */
    uint64_t            stale_readers; /* cleared by this process */
} ts_db_stats_t;


typedef struct {
    uint64_t            chunks;        /* chunks deleted */
    uint64_t            series;        /* series deleted, no chunk left */
    uint64_t            keys;          /* keys and duplicates deleted */
    int                 more;          /* old data remains: call again */
} ts_db_retention_t;


/* A chunk as stored; data points into the map until reset or abort. */
typedef struct {
    uint64_t            series;
    int64_t             mint;
    int64_t             maxt;
    uint8_t             encoding;
    const uint8_t      *data;
    size_t              len;
} ts_db_chunk_t;


/* Strings point into the map until the read handle is reset. */
typedef struct {
    const char         *name;
    size_t              name_len;
    const char         *unit;
    size_t              unit_len;
    const char         *help;
    size_t              help_len;
    uint8_t             type;
} ts_db_metadata_t;


/*
 * Iterators live on the caller's stack and belong to one read handle;
 * close them before the handle is reset or aborted.
 */
typedef struct {
    ts_db_rtxn_t       *t;
    void               *cur;
    const uint8_t      *head;          /* the list's key, into the map */
    const uint8_t      *p;             /* the block's deltas left */
    const uint8_t      *end;
    uint64_t            last;          /* the id handed out last, or the
                                          block's first one if fresh */
    uint64_t            first;         /* the block's first id */
    uint32_t            left;          /* ids of the block not read */
    uint16_t            hlen;
    uint8_t             fresh;         /* last not handed out yet */
    uint8_t             eof;
} ts_db_postings_t;


typedef struct {
    ts_db_rtxn_t       *t;
    void               *cur;
    uint64_t            series;
    int64_t             mint;
    int64_t             maxt;
    int                 started;
    int                 eof;
} ts_db_chunks_t;


/* Receives a string; 0 goes on, anything else stops and is returned. */
typedef int (*ts_db_str_pt)(void *data, const char *s, size_t len);
typedef int (*ts_db_tenant_pt)(void *data, const char *name, size_t len,
    uint32_t id);
typedef int (*ts_db_metadata_pt)(void *data, const ts_db_metadata_t *md);


/*
 * Creates <path> (0755) and <path>/index (0700) if needed, fchowns what
 * it creates and the LMDB files to conf->uid/gid, opens the environment
 * (MDB_NOTLS | MDB_NOMETASYNC), clears stale readers and creates or
 * checks the schema.  An index of format version 1 is converted to
 * version 2 first (bounded transactions, crash-safe, one process at a
 * time under a lock on index/migrate.lock; others opening meanwhile
 * wait).  TS_ERR_VERSION for another format version,
 * TS_ERR_CORRUPT for a file LMDB or the schema check rejects (also a
 * data.mdb shorter than its last page), TS_ERR_IO otherwise; err gets
 * the message.  Never call it before fork() for a handle used after.
 */
int ts_db_open(ts_db_t **dbp, const ts_db_conf_t *conf, char *err,
    size_t errlen);

/* All read handles must be aborted first. */
void ts_db_close(ts_db_t *db);

const char *ts_db_errmsg(const ts_db_t *db);
const char *ts_db_dir(const ts_db_t *db);

/*
 * Makes every commit returned before durable: one fdatasync() of
 * data.mdb (commits already synced the data pages; this syncs the meta
 * page).  Only after TS_OK may the WAL covering those commits go.
 */
int ts_db_sync(ts_db_t *db);

/*
 * Unmaps (MADV_DONTNEED) the pages of the LMDB map this process touched,
 * so that its memory (RSS, PSS) stops counting them; they stay in the
 * page cache and reads fault them in again.  *bytes (may be NULL) = the
 * length of the map.  Other threads may read meanwhile; a write of this
 * process (ts_db_apply(), retention) is waited for.
 */
int ts_db_drop_pages(ts_db_t *db, size_t *bytes);

/* Clears reader slots of dead processes; *dead (may be NULL) = count. */
int ts_db_reader_check(ts_db_t *db, int *dead);

int ts_db_stats(ts_db_t *db, ts_db_stats_t *st);

/*
 * Reads every record of every sub-database and checks its framing,
 * checksums and cross references (series <-> hash <-> postings, chunk
 * <-> retention).  TS_ERR_CORRUPT with the first problem in errmsg.
 * For tests and offline checks: it holds a read handle for the whole
 * walk.
 */
int ts_db_verify(ts_db_t *db);


/*
 * Write batches.  Everything a flush writes is collected in process
 * memory first and ts_db_apply() writes it in one transaction, so that
 * a retry after the map grew depends on nothing but the batch.  Strings
 * and chunk bytes are copied into the batch.
 */
int ts_db_batch_create(ts_db_batch_t **bp);
void ts_db_batch_reset(ts_db_batch_t *b);
void ts_db_batch_destroy(ts_db_batch_t *b);

/*
 * Adds a series to ensure: labels validated and sorted (TS_ERR_INVALID
 * if not sorted, without __name__, if a tenant is empty or longer than
 * TS_DB_TENANT_MAX); hint is an id the caller has seen for it before,
 * or 0.  The apply keeps the hint if that series still exists, else
 * finds or creates the series by (tenant, labels): after retention
 * deleted a series, its next flush through a hinted entry recreates it
 * under a new id.  *idx is the batch-local index.
 */
int ts_db_batch_series(ts_db_batch_t *b, const char *tenant, size_t tlen,
    const ts_label_t *labels, uint32_t n, uint64_t hint, uint32_t *idx);

/*
 * Adds a chunk (mint <= maxt, 1 .. TS_DB_CHUNK_MAX bytes) of batch
 * series idx, or of series id.  A put overwrites the chunk stored under
 * the same (series, mint): a growing open chunk is flushed again and
 * again under one key.  ts_db_apply() fails with TS_ERR_NOTFOUND if a
 * series id does not exist (retention may have deleted it: use
 * ts_db_batch_series() with a hint to be safe against that).
 */
int ts_db_batch_chunk(ts_db_batch_t *b, uint32_t idx, int64_t mint,
    int64_t maxt, uint8_t encoding, const void *data, size_t len);
int ts_db_batch_chunk_id(ts_db_batch_t *b, uint64_t id, int64_t mint,
    int64_t maxt, uint8_t encoding, const void *data, size_t len);

/* Sets a metric family's metadata (the last one wins). */
int ts_db_batch_metadata(ts_db_batch_t *b, const char *tenant,
    size_t tlen, const ts_db_metadata_t *md);

uint32_t ts_db_batch_nseries(const ts_db_batch_t *b);
uint32_t ts_db_batch_nchunks(const ts_db_batch_t *b);

/* After a successful apply: the id of batch series idx, and whether the
   apply created it. */
uint64_t ts_db_batch_series_id(const ts_db_batch_t *b, uint32_t idx);
int ts_db_batch_series_created(const ts_db_batch_t *b, uint32_t idx);

/*
 * Writes the batch in one transaction and commits.  MDB_MAP_FULL grows
 * the map (doubling, up to map_max) and retries; MDB_MAP_RESIZED (another
 * process grew it) adopts the new size and retries.  TS_ERR_FULL when
 * map_max is reached (answer 503), TS_ERR_AGAIN when the map could not
 * be resized because read handles of this process stayed active,
 * TS_ERR_LIMIT when the batch is too big for one transaction
 * (MDB_TXN_FULL: split it).  Nothing is written on error.
 */
int ts_db_apply(ts_db_t *db, ts_db_batch_t *b);

/*
 * Deletes chunks of the retention buckets that end at or before cutoff
 * (so every chunk with maxt < cutoff - TS_DB_BUCKET_MS, and some newer),
 * oldest bucket first, and each series left without chunks with its
 * postings, in one transaction.  Stops after about max_keys deletions
 * (one series is always deleted whole) and sets st->more if old data
 * remains.  May grow the map 1/16 past map_max, so that a full index
 * can still free space.
 */
int ts_db_retention(ts_db_t *db, int64_t cutoff, size_t max_keys,
    ts_db_retention_t *st);


/*
 * Read handles: a snapshot of the last commit.  begin allocates the
 * handle and starts it; reset releases the snapshot but keeps the handle
 * (and, with MDB_NOTLS, its reader slot) for renew; abort frees it.
 * Renew is cheap: no allocation, one reader-table update.  Values read
 * stay valid until reset or abort.  begin sets *tp unless it returns
 * TS_ERR_NOMEM: after another error the handle is reset and holds the
 * message; renew or abort it.
 */
int ts_db_rtxn_begin(ts_db_t *db, ts_db_rtxn_t **tp);
void ts_db_rtxn_reset(ts_db_rtxn_t *t);
int ts_db_rtxn_renew(ts_db_rtxn_t *t);
void ts_db_rtxn_abort(ts_db_rtxn_t *t);
const char *ts_db_rtxn_errmsg(const ts_db_rtxn_t *t);

/* A tenant's id; TS_ERR_NOTFOUND if it never wrote. */
int ts_db_tenant(ts_db_rtxn_t *t, const char *name, size_t len,
    uint32_t *id);
int ts_db_tenants(ts_db_rtxn_t *t, ts_db_tenant_pt cb, void *data);

/* The id of a series with these sorted labels; TS_ERR_NOTFOUND. */
int ts_db_series_find(ts_db_rtxn_t *t, uint32_t tenant,
    const ts_label_t *labels, uint32_t n, uint64_t *id);

/*
 * Labels of series id, pointing into the map.  TS_ERR_NOTFOUND;
 * TS_ERR_LIMIT (*n = the count needed) if max is too small.
 */
int ts_db_series_labels(ts_db_rtxn_t *t, uint64_t id, uint32_t *tenant,
    ts_label_t *out, uint32_t max, uint32_t *n);

/*
 * Postings of a tenant, ascending ids: name == NULL: all its series
 * (the list of label __name__, which every series has); value == NULL:
 * series that have label name; else name="value".  An unknown key gives
 * an empty list.  next and seek return 1 with *id, 0 at the end, or an
 * error; seek moves to the first id >= target (never backwards).
 */
int ts_db_postings_open(ts_db_rtxn_t *t, ts_db_postings_t *p,
    uint32_t tenant, const char *name, size_t nlen, const char *value,
    size_t vlen);
int ts_db_postings_next(ts_db_postings_t *p, uint64_t *id);
int ts_db_postings_seek(ts_db_postings_t *p, uint64_t target,
    uint64_t *id);
void ts_db_postings_close(ts_db_postings_t *p);

/*
 * Label names of a tenant, and the values of one name, in byte order
 * (strings longer than the LMDB key limit come among the strings that
 * share their first 490 or so bytes).
 */
int ts_db_label_names(ts_db_rtxn_t *t, uint32_t tenant, ts_db_str_pt cb,
    void *data);
int ts_db_label_values(ts_db_rtxn_t *t, uint32_t tenant, const char *name,
    size_t nlen, ts_db_str_pt cb, void *data);

/*
 * Chunks of a series overlapping [mint, maxt], in time order.  next
 * returns 1 with *c, 0 at the end, TS_ERR_CORRUPT for a bad record.
 * Chunks of one series are expected not to nest (one starting later and
 * ending earlier than another), which a head cutting chunks in time
 * order never produces.
 */
int ts_db_chunks_open(ts_db_rtxn_t *t, ts_db_chunks_t *it, uint64_t id,
    int64_t mint, int64_t maxt);
int ts_db_chunks_next(ts_db_chunks_t *it, ts_db_chunk_t *c);
void ts_db_chunks_close(ts_db_chunks_t *it);

int ts_db_metadata_get(ts_db_rtxn_t *t, uint32_t tenant, const char *name,
    size_t len, ts_db_metadata_t *md);
int ts_db_metadata_list(ts_db_rtxn_t *t, uint32_t tenant,
    ts_db_metadata_pt cb, void *data);


/*
 * Exemplars: the checkpoint's copy of the exemplar ring, in blocks of
 * consecutive sequence numbers [first, last] whose data is an
 * EXEMPLARS WAL record payload (store/ts_exemplar.h).  _put() writes
 * the blocks and deletes every stored block whose last < keep, in one
 * transaction (map growth as ts_db_apply()).  _each() hands out the
 * blocks in first order; TS_ERR_CORRUPT for a block whose checksum
 * does not match.
 */
typedef struct {
    uint64_t            first;
    uint64_t            last;
    const void         *data;
    size_t              len;
} ts_db_exemplars_t;

typedef int (*ts_db_exemplars_pt)(void *data, const ts_db_exemplars_t *b);

/*
 * Decodes a postings block (docs/format/lmdb.md): first is the id of the
 * key, data the value.  Fills ids (room for TS_DB_PBLOCK_MAX) and *n;
 * TS_ERR_CORRUPT for a count of 0 or above TS_DB_PBLOCK_MAX, a delta of
 * 0, an id past 2^64 - 1, a truncated delta or bytes left over.
 */
int ts_db_pblock_decode(uint64_t first, const void *data, size_t len,
    uint64_t *ids, uint32_t *n);

/*
 * Encodes ids[0 .. n) (ascending, n <= TS_DB_PBLOCK_MAX) as a block
 * value: returns the bytes written to out (room for 10 x n), the first
 * id goes in the key.
 */
size_t ts_db_pblock_encode(const uint64_t *ids, uint32_t n, uint8_t *out);


int ts_db_exemplars_put(ts_db_t *db, const ts_db_exemplars_t *b, size_t n,
    uint64_t keep);
int ts_db_exemplars_each(ts_db_rtxn_t *t, ts_db_exemplars_pt cb,
    void *data);


#endif /* TS_DB_H */
