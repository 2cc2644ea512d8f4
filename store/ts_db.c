/*
 * Copyright (C) ngx_tsdb authors
 *
 * LMDB persistence of a zone.  Format: docs/format/lmdb.md.
 *
 * Who opens what when.  Each process opens its own environment on
 * <path>/index after fork() (nginx: init_process; the master may open
 * one to create and chown the files, and must close it before forking).
 * db->pid records the opener; every entry point refuses another pid,
 * and ts_db_close() in another pid frees memory without touching LMDB,
 * whose reader slots and locks belong to the opener.  All sub-database
 * handles are opened once, at open, and never closed.
 *
 * Threads.  Writes (apply, retention) serialize on db->wlock, which
 * also guards db->errmsg.  LMDB allows mdb_env_set_mapsize() only while
 * no transaction of this process is active, so every transaction passes
 * the gate: gate_enter() counts it in db->active (waiting while a remap
 * runs) and gate_leave() counts it out; a remap waits, at most
 * resize_wait ms, until the count is zero, then runs alone.  While a
 * remap waits, new transactions defer to it for at most TS_DB_DEFER ms
 * and then go ahead: readers overlapping in several threads cannot
 * starve a remap, a thread that nests read handles cannot deadlock (its
 * remap times out instead), and the event loop never waits longer than
 * TS_DB_DEFER plus one munmap()/mmap().  The count is ours, not a
 * rwlock, because with MDB_NOTLS a read handle may end in another
 * thread than the one that began it.
 *
 * What a crash leaves.  LMDB commits are atomic: a process killed at
 * any instruction leaves the last commit (a dead writer's mutex is
 * recovered by the next writer through the robust mutex; a dead
 * reader's slot by mdb_reader_check(), at open and when the glue calls
 * ts_db_reader_check()).  With MDB_NOMETASYNC a power loss may undo the
 * last commits not followed by ts_db_sync(), never more, and never
 * corrupts: data pages are fdatasync()ed before the meta page that
 * points at them is written.  The WAL is truncated only after
 * ts_db_sync(), so whatever a power loss undoes is replayed.
 *
 * Map growth.  MDB_MAP_FULL doubles the map up to map_max (TS_ERR_FULL
 * beyond).  Retention may grow it 1/16 further: deleting needs fresh
 * pages too (copy-on-write), and a full index must always be able to
 * free space.
 *
 * Why no shared-memory lock is ever held across an LMDB call: commits
 * fsync and wait for the LMDB writer mutex, which another process may
 * hold for a whole flush; a head lock held meanwhile would stall every
 * worker's ingest.  The flusher copies chunks out of the head under the
 * head's locks, releases them, and only then builds and applies a batch.
 * A batch holds copies, so nothing in an apply depends on the head, and
 * an apply can be retried from the start after the map grew.
 *
 * Series ids come from a counter in the meta db and are never reused,
 * so an id held by the head refers to one label set forever, even after
 * retention deleted it (then it refers to nothing).
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "ts_crc32c.h"
#include "ts_db.h"


#define TS_DB_MAGIC          "TSDBLMDB"
#define TS_DB_MAGIC_LEN      8
#define TS_DB_FORMAT_LEN     32
#define TS_DB_MAXDBS         16
#define TS_DB_KEY_MAX        511         /* LMDB's default MDB_MAXKEYSIZE */
#define TS_DB_CHUNK_HDR      13          /* crc, maxt, encoding */
#define TS_DB_SERIES_HDR     14          /* tenant, hash, count */
#define TS_DB_BLOCK_SIZE     (64 * 1024)
#define TS_DB_RETRIES        64
#define TS_DB_DEFER          50          /* ms a new txn yields to a remap */
#define TS_DB_SIGN           0x8000000000000000ULL

/* postings key kinds; 'A' (all series of a tenant) is version 1 only */
#define TS_DB_KIND_ALL       'A'
#define TS_DB_KIND_NAME      'N'
#define TS_DB_KIND_PAIR      'V'
#define TS_DB_PHEAD          5           /* tenant, kind */
#define TS_DB_HEAD_MAX       (TS_DB_KEY_MAX - 8)  /* list key, no id */
#define TS_DB_MNAME          "__name__"
#define TS_DB_MNAME_LEN      (sizeof(TS_DB_MNAME) - 1)
#define TS_DB_V1_POSTINGS    "postings"
#define TS_DB_V1_PFLAGS      (MDB_DUPSORT | MDB_DUPFIXED)
#define TS_DB_MIGRATE_KEY    "migrate"
#define TS_DB_MIGRATE_SKEY   "migrate_series"
#define TS_DB_MIGRATE_LOCK   "migrate.lock"
#define TS_DB_MIGRATE        1           /* ts_db_schema_open(): v1 */

#define TS_DB_NONE           UINT32_MAX

#define TS_DB_DBFLAGS        (MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY \
                              | MDB_DUPFIXED | MDB_INTEGERDUP               \
                              | MDB_REVERSEDUP)


enum {
    TS_DB_META = 0,
    TS_DB_TENANTS,
    TS_DB_SERIES,
    TS_DB_SHASH,
    TS_DB_POSTINGS,
    TS_DB_CHUNKS,
    TS_DB_RETENTION,
    TS_DB_METADATA,
    TS_DB_LNAMES,
    TS_DB_NDBS
};


typedef struct {
    const char             *name;
    unsigned                flags;
} ts_db_dbdef_t;


static const ts_db_dbdef_t  ts_db_dbs[TS_DB_NDBS] = {
    { "meta", 0 },
    { "tenants", 0 },
    { "series", 0 },
    { "series_hash", MDB_DUPSORT | MDB_DUPFIXED },
    { "pblocks", 0 },
    { "chunks", 0 },
    { "retention", MDB_DUPSORT | MDB_DUPFIXED },
    { "metadata", 0 },
    { "lnames", 0 }
};


struct ts_db_s {
    MDB_env                *env;
    MDB_dbi                 dbi[TS_DB_NDBS];
    pid_t                   pid;
    char                   *dir;            /* <path>/index */
    char                   *file;           /* <path>/index/data.mdb */
    unsigned                migrate_step;
    uint32_t                version;        /* of the format record */
    size_t                  map_size;       /* initial */
    size_t                  map_max;
    size_t                  page;
    unsigned                resize_wait;

    pthread_mutex_t         wlock;          /* writes and errmsg */
    pthread_mutex_t         glock;          /* the gate */
    pthread_cond_t          gcond;
    unsigned                active;         /* transactions in flight */
    unsigned                pending;        /* remaps waiting */
    int                     remapping;
    int                     locks;          /* initialized: 3 */

    uint64_t                grows;
    uint64_t                adopts;
    uint64_t                stale;

    int                     mdb_rc;         /* raw code of the last
                                               failed LMDB call */
    char                    errmsg[TS_DB_ERR_MAX];
};


/*
 * Label names a read handle looked up (a direct-mapped cache keyed by
 * tenant and name id): the names point into the map, so the cache is
 * emptied whenever the handle takes a new snapshot.
 */
#define TS_DB_NCACHE         64

typedef struct {
    const char             *name;
    uint32_t                len;
    uint32_t                tenant;
    uint32_t                id;             /* 0: empty */
} ts_db_nslot_t;


struct ts_db_rtxn_s {
    ts_db_t                *db;
    MDB_txn                *txn;
    int                     active;
    ts_db_nslot_t           names[TS_DB_NCACHE];
    char                    errmsg[TS_DB_ERR_MAX];
};


typedef struct ts_db_blk_s  ts_db_blk_t;

struct ts_db_blk_s {
    ts_db_blk_t            *next;
    size_t                  size;
    size_t                  used;
    uint8_t                 data[];
};


typedef struct {
    const char             *tenant;
    ts_label_t             *labels;
    uint64_t                hash;
    uint64_t                hint;
    uint64_t                id;             /* after apply */
    uint32_t                tlen;
    uint32_t                n;
    int                     created;
} ts_db_bseries_t;


typedef struct {
    uint64_t                known;          /* id given by the caller */
    uint64_t                id;             /* resolved in apply */
    int64_t                 mint;
    int64_t                 maxt;
    const uint8_t          *data;
    uint32_t                len;
    uint32_t                sidx;           /* TS_DB_NONE: known id */
    uint32_t                seq;
    uint8_t                 encoding;
} ts_db_bchunk_t;


typedef struct {
    const char             *tenant;
    uint32_t                tlen;
    ts_db_metadata_t        md;
} ts_db_bmeta_t;


struct ts_db_batch_s {
    ts_db_blk_t            *blocks;
    ts_db_blk_t            *cur;

    ts_db_bseries_t        *series;
    uint32_t                nseries;
    uint32_t                series_cap;

    ts_db_bchunk_t         *chunks;
    uint32_t                nchunks;
    uint32_t                chunks_cap;

    ts_db_bmeta_t          *metas;
    uint32_t                nmetas;
    uint32_t                metas_cap;

    int                     applied;
};


/*
 * Postings ids to add, gathered over a whole transaction, so that each
 * list's last block is rewritten once per transaction, not per series:
 * entries are (offset of the list key in buf, its length, id).
 */
typedef struct {
    size_t                  off;
    const uint8_t          *k;              /* buf + off, for sorting */
    uint64_t                id;
    uint32_t                len;
} ts_db_padd_t;


typedef struct {
    ts_db_padd_t           *a;
    uint32_t                n;
    uint32_t                cap;
    uint8_t                *buf;
    size_t                  used;
    size_t                  size;
    uint64_t               *ids;            /* scratch for one list */
    uint32_t                ids_cap;
} ts_db_padds_t;


/* ts_db_verify(): the last postings block seen. */
typedef struct {
    const uint8_t          *head;
    size_t                  hlen;
    uint64_t                last;
} ts_db_vpb_t;


/* State of one migration step (docs/format/lmdb.md, "Migration"). */
typedef struct {
    int                     done;
    uint64_t                steps;
    uint64_t                ids;
    ts_db_padds_t           padds;
} ts_db_migrate_t;


/* State of one apply attempt; rebuilt from the batch on every retry. */
typedef struct {
    ts_db_batch_t          *b;
    MDB_txn                *txn;
    MDB_cursor             *shash;
    uint64_t                next_series;
    uint32_t                next_tenant;
    uint64_t                first_series;
    uint32_t                first_tenant;
    const char             *tname;          /* last tenant resolved */
    uint32_t                tlen;
    uint32_t                tid;
    uint8_t                 clast[16];      /* greatest key in "chunks" */
    int                     chas;           /* clast is set */
    ts_db_padds_t           padds;          /* new postings ids */
} ts_db_apply_t;


typedef struct {
    MDB_txn                *txn;
    MDB_cursor             *rcur;
    MDB_cursor             *ccur;
    int64_t                 limit;          /* first bucket kept */
    size_t                  max_keys;
    ts_db_retention_t      *st;
} ts_db_ret_t;


/* A decoded series record: labels are read one by one. */
typedef struct {
    const uint8_t          *p;
    const uint8_t          *end;
    MDB_txn                *txn;            /* NULL: version 1, names */
    MDB_dbi                 names;          /*   in the record */
    ts_db_nslot_t          *cache;          /* a read handle's, or NULL */
    uint32_t                tenant;
    uint32_t                n;
    uint32_t                left;
    uint64_t                hash;
} ts_db_srec_t;


typedef int (*ts_db_txn_pt)(ts_db_t *db, MDB_txn *txn, void *data);


static void ts_db_put32(uint8_t *p, uint32_t v);
static uint32_t ts_db_get32(const uint8_t *p);
static void ts_db_put64(uint8_t *p, uint64_t v);
static uint64_t ts_db_get64(const uint8_t *p);
static void ts_db_puti64(uint8_t *p, int64_t v);
static int64_t ts_db_geti64(const uint8_t *p);
static size_t ts_db_uvarint_put(uint8_t *p, uint64_t v);
static size_t ts_db_uvarint_len(uint64_t v);
static int ts_db_uvarint_get(const uint8_t **pp, const uint8_t *end,
    uint64_t *v);
static int64_t ts_db_bucket(int64_t t);
static void ts_db_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ts_db_code(int rc);
static int ts_db_mdb_fail(ts_db_t *db, char *buf, int rc, const char *call,
    const char *what);
static int ts_db_werr(ts_db_t *db, int rc, const char *call,
    const char *what);
static int ts_db_rerr(ts_db_rtxn_t *t, int rc, const char *call,
    const char *what);
static int ts_db_pid_check(ts_db_t *db, char *buf);

static int ts_db_init(ts_db_t *db, const ts_db_conf_t *conf);
static int ts_db_mkdir(ts_db_t *db, const char *dir, mode_t mode,
    uid_t uid, gid_t gid, int always);
static int ts_db_files_check(ts_db_t *db, uid_t uid, gid_t gid, int chown);
static int ts_db_env_open(ts_db_t *db, const ts_db_conf_t *conf);
static int ts_db_size_check(ts_db_t *db);
static int ts_db_schema(ts_db_t *db);
static int ts_db_schema_open(ts_db_t *db, MDB_txn *txn, int create);
static int ts_db_schema_init(ts_db_t *db, MDB_txn *txn, void *data);
static int ts_db_format_check(ts_db_t *db, const MDB_val *v);
static void ts_db_format_make(uint8_t *p);

static void ts_db_deadline(struct timespec *ts, unsigned ms);
static void ts_db_gate_enter(ts_db_t *db);
static void ts_db_gate_leave(ts_db_t *db);
static int ts_db_remap(ts_db_t *db, size_t size, char *buf);
static int ts_db_grow(ts_db_t *db, size_t limit);
static int ts_db_write(ts_db_t *db, ts_db_txn_pt fn, void *data,
    size_t limit);

static void *ts_db_alloc(ts_db_batch_t *b, size_t len);
static void *ts_db_copy(ts_db_batch_t *b, const void *p, size_t len);
static int ts_db_grow_array(void **arr, uint32_t *cap, uint32_t n,
    size_t size);
static int ts_db_batch_chunk_add(ts_db_batch_t *b, uint64_t known,
    uint32_t idx, int64_t mint, int64_t maxt, uint8_t encoding,
    const void *data, size_t len);
static int ts_db_chunk_cmp(const void *a, const void *b);

static int ts_db_apply_txn(ts_db_t *db, MDB_txn *txn, void *data);
static int ts_db_counters_get(ts_db_t *db, MDB_txn *txn, uint64_t *series,
    uint32_t *tenant);
static int ts_db_counters_put(ts_db_t *db, MDB_txn *txn, uint64_t series,
    uint32_t tenant);
static int ts_db_apply_tenant(ts_db_t *db, ts_db_apply_t *a,
    const char *name, uint32_t len, uint32_t *id);
static int ts_db_apply_series(ts_db_t *db, ts_db_apply_t *a,
    ts_db_bseries_t *s);
static int ts_db_series_match(ts_db_t *db, char *buf, MDB_txn *txn,
    uint64_t id, uint32_t tenant, const ts_label_t *l, uint32_t n);
static int ts_db_series_create(ts_db_t *db, ts_db_apply_t *a,
    ts_db_bseries_t *s, uint32_t tenant);
static int ts_db_padd(ts_db_t *db, ts_db_padds_t *pa, const uint8_t *head,
    size_t hlen, uint64_t id);
static int ts_db_padd_series(ts_db_t *db, ts_db_padds_t *pa,
    uint32_t tenant, const ts_label_t *l, uint32_t n, uint64_t id);
static int ts_db_padd_cmp(const void *a, const void *b);
static int ts_db_padds_flush(ts_db_t *db, MDB_txn *txn, ts_db_padds_t *pa);
static void ts_db_padds_free(ts_db_padds_t *pa);
static int ts_db_pb_find(MDB_cursor *cur, const uint8_t *head, size_t hlen,
    uint64_t id, MDB_val *k, MDB_val *v);
static int ts_db_pb_fwd(MDB_cursor *cur, const uint8_t *head, size_t hlen,
    uint64_t id, MDB_cursor_op op, MDB_val *k, MDB_val *v);
static int ts_db_pb_count(const uint8_t **p, const uint8_t *end,
    uint32_t *count);
static int ts_db_pb_delta(const uint8_t **p, const uint8_t *end,
    uint64_t *id);
static int ts_db_pb_corrupt(ts_db_t *db, const uint8_t *head, size_t hlen,
    uint64_t first);
static int ts_db_plist_add(ts_db_t *db, MDB_txn *txn, MDB_cursor *cur,
    const uint8_t *head, size_t hlen, const uint64_t *ids, uint32_t n);
static int ts_db_plist_del(ts_db_t *db, MDB_txn *txn, MDB_cursor *cur,
    const uint8_t *head, size_t hlen, uint64_t id);
static int ts_db_plist_has(MDB_cursor *cur, const uint8_t *head,
    size_t hlen, uint64_t id);
static int ts_db_migrate(ts_db_t *db);
static int ts_db_migrate_txn(ts_db_t *db, MDB_txn *txn, void *data);
static int ts_db_migrate_series(ts_db_t *db, MDB_txn *txn,
    ts_db_migrate_t *m, uint8_t *fmt);
static int ts_db_migrate_head(ts_db_t *db, MDB_txn *txn, const uint8_t *k,
    size_t klen, uint64_t id, uint8_t *head, size_t *hlen);
static int ts_db_apply_chunks(ts_db_t *db, ts_db_apply_t *a);
static int ts_db_apply_chunk(ts_db_t *db, ts_db_apply_t *a,
    const ts_db_bchunk_t *c);
static int ts_db_apply_metas(ts_db_t *db, ts_db_apply_t *a);

static size_t ts_db_pkey(uint8_t *k, size_t max, uint32_t tenant, int kind,
    const char *name, size_t nlen, const char *value, size_t vlen);
static size_t ts_db_mkey(uint8_t *k, uint32_t tenant, const char *name,
    size_t len);
static void ts_db_ckey(uint8_t *k, uint64_t id, int64_t mint);
static size_t ts_db_series_size(const ts_label_t *l, const uint32_t *ids,
    uint32_t n);
static void ts_db_series_encode(uint8_t *p, uint32_t tenant, uint64_t hash,
    const ts_label_t *l, const uint32_t *ids, uint32_t n);
static int ts_db_name_id(ts_db_t *db, MDB_txn *txn, uint32_t tenant,
    const char *name, size_t len, uint32_t *id);
static size_t ts_db_nkey(uint8_t *k, uint32_t tenant, const char *name,
    size_t len);
static int ts_db_srec_open(ts_db_srec_t *r, const MDB_val *v, MDB_txn *txn,
    MDB_dbi names);
static int ts_db_srec_next(ts_db_srec_t *r, ts_label_t *l);
static int ts_db_chunk_decode(const MDB_val *k, const MDB_val *v,
    ts_db_chunk_t *c, const char **why);
static int ts_db_meta_decode(const MDB_val *v, ts_db_metadata_t *md);

static int ts_db_ret_txn(ts_db_t *db, MDB_txn *txn, void *data);
static int ts_db_ret_one(ts_db_t *db, ts_db_ret_t *r, const MDB_val *v);
static int ts_db_series_delete(ts_db_t *db, MDB_txn *txn, uint64_t id,
    ts_db_retention_t *st);

static int ts_db_rtxn_start(ts_db_rtxn_t *t, int renew);
static int ts_db_cursor(ts_db_rtxn_t *t, int dbi, MDB_cursor **cur);
static int ts_db_series_get(ts_db_rtxn_t *t, uint64_t id,
    ts_db_srec_t *r);
static int ts_db_postings_bad(ts_db_postings_t *p, const char *why);
static int ts_db_postings_load(ts_db_postings_t *p, const MDB_val *k,
    const MDB_val *d);
static int ts_db_postings_step(ts_db_postings_t *p, uint64_t *id);
static int ts_db_postings_scan(ts_db_postings_t *p, uint64_t target,
    uint64_t *id);
static int ts_db_resolve_bad(ts_db_rtxn_t *t, const char *why);
static int ts_db_resolve(ts_db_rtxn_t *t, const MDB_val *k,
    const char *name, size_t nlen, const char **s, size_t *len);
static int ts_db_chunks_start(ts_db_chunks_t *it, MDB_val *k, MDB_val *d);
static int ts_db_chunk_bad(ts_db_rtxn_t *t, const MDB_val *k,
    const char *why);

static int ts_db_drop_locked(ts_db_t *db, size_t *bytes);
static int ts_db_verify_walk(ts_db_rtxn_t *t);
static int ts_db_verify_series(ts_db_rtxn_t *t, const MDB_val *k,
    const MDB_val *v);
static int ts_db_verify_lname(ts_db_rtxn_t *t, const MDB_val *k,
    const MDB_val *v);
static int ts_db_verify_pblock(ts_db_rtxn_t *t, const MDB_val *k,
    const MDB_val *v, ts_db_vpb_t *vp);
static int ts_db_verify_label(ts_db_rtxn_t *t, uint32_t tenant,
    const ts_label_t *l, const uint8_t *idb);
static int ts_db_verify_chunk(ts_db_rtxn_t *t, const MDB_val *k,
    const MDB_val *v);
static int ts_db_verify_retention(ts_db_rtxn_t *t, const MDB_val *k,
    const MDB_val *v);
static int ts_db_has(ts_db_rtxn_t *t, int dbi, const void *key,
    size_t klen, const void *data, size_t dlen);


/* Bytes. */

static void
ts_db_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}


static uint32_t
ts_db_get32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | (uint32_t) p[3];
}


static void
ts_db_put64(uint8_t *p, uint64_t v)
{
    ts_db_put32(p, (uint32_t) (v >> 32));
    ts_db_put32(p + 4, (uint32_t) v);
}


static uint64_t
ts_db_get64(const uint8_t *p)
{
    return (uint64_t) ts_db_get32(p) << 32 | ts_db_get32(p + 4);
}


/* Signed values are stored with the sign bit flipped, so that the bytes
   of a big-endian key sort in numeric order. */

static void
ts_db_puti64(uint8_t *p, int64_t v)
{
    ts_db_put64(p, (uint64_t) v ^ TS_DB_SIGN);
}


static int64_t
ts_db_geti64(const uint8_t *p)
{
    return (int64_t) (ts_db_get64(p) ^ TS_DB_SIGN);
}


static size_t
ts_db_uvarint_put(uint8_t *p, uint64_t v)
{
    size_t  n;

    for (n = 0; v >= 0x80; n++) {
        p[n] = (uint8_t) (v | 0x80);
        v >>= 7;
    }

    p[n++] = (uint8_t) v;

    return n;
}


static size_t
ts_db_uvarint_len(uint64_t v)
{
    size_t  n;

    for (n = 1; v >= 0x80; n++) {
        v >>= 7;
    }

    return n;
}


/* -1 if truncated or longer than 10 bytes; never reads at or past end. */

static int
ts_db_uvarint_get(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t  *p;
    uint64_t        x;
    unsigned        shift;

    x = 0;

    for (p = *pp, shift = 0; p < end && shift < 70; p++, shift += 7) {
        x |= (uint64_t) (*p & 0x7f) << shift;

        if (*p < 0x80) {
            *pp = p + 1;
            *v = x;
            return 0;
        }
    }

    return -1;
}


static int64_t
ts_db_bucket(int64_t t)
{
    int64_t  b;

    b = t / TS_DB_BUCKET_MS;

    if (t % TS_DB_BUCKET_MS < 0) {
        b--;
    }

    return b;
}


/* Errors. */

static void
ts_db_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list  ap;

    if (buf == NULL || size == 0) {
        return;
    }

    va_start(ap, fmt);
    (void) vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}


static int
ts_db_code(int rc)
{
    switch (rc) {

    case MDB_SUCCESS:
        return TS_OK;

    case MDB_NOTFOUND:
        return TS_ERR_NOTFOUND;

    case MDB_KEYEXIST:
        return TS_ERR_EXISTS;

    case MDB_MAP_FULL:
        return TS_ERR_FULL;

    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return TS_ERR_LIMIT;

    case MDB_MAP_RESIZED:
    case MDB_READERS_FULL:
        return TS_ERR_AGAIN;

    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
        return TS_ERR_CORRUPT;

    case ENOMEM:
        return TS_ERR_NOMEM;

    case EINVAL:
    case MDB_BAD_VALSIZE:
    case MDB_BAD_DBI:
    case MDB_BAD_TXN:
    case MDB_BAD_RSLOT:
    case MDB_DBS_FULL:
    case MDB_TLS_FULL:
        return TS_ERR_INVALID;

    default:
        return TS_ERR_IO;
    }
}


static int
ts_db_mdb_fail(ts_db_t *db, char *buf, int rc, const char *call,
    const char *what)
{
    ts_db_fmt(buf, TS_DB_ERR_MAX, "%s()%s%s%s: %s, file \"%s\"%s", call,
              what ? " on \"" : "", what ? what : "", what ? "\"" : "",
              mdb_strerror(rc), db->file,
              rc == MDB_PANIC ? " (reopen the environment)" : "");

    return ts_db_code(rc);
}


static int
ts_db_werr(ts_db_t *db, int rc, const char *call, const char *what)
{
    db->mdb_rc = rc;

    return ts_db_mdb_fail(db, db->errmsg, rc, call, what);
}


static int
ts_db_rerr(ts_db_rtxn_t *t, int rc, const char *call, const char *what)
{
    return ts_db_mdb_fail(t->db, t->errmsg, rc, call, what);
}


static int
ts_db_pid_check(ts_db_t *db, char *buf)
{
    pid_t  pid;

    pid = getpid();

    if (pid == db->pid) {
        return TS_OK;
    }

    ts_db_fmt(buf, TS_DB_ERR_MAX, "LMDB environment \"%s\" used in pid %ld"
              " but opened in pid %ld: it must not cross fork()", db->dir,
              (long) pid, (long) db->pid);

    return TS_ERR_INVALID;
}


const char *
ts_db_errmsg(const ts_db_t *db)
{
    return db->errmsg;
}


const char *
ts_db_rtxn_errmsg(const ts_db_rtxn_t *t)
{
    return t->errmsg;
}


const char *
ts_db_dir(const ts_db_t *db)
{
    return db->dir;
}


/* Open and close. */

static int
ts_db_init(ts_db_t *db, const ts_db_conf_t *conf)
{
    size_t              len, page;
    pthread_condattr_t  ca;

    len = strlen(conf->path);
    db->dir = malloc(len + sizeof("/" TS_DB_DIR));
    db->file = malloc(len + sizeof("/" TS_DB_DIR "/data.mdb"));

    if (db->dir == NULL || db->file == NULL) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "out of memory");
        return TS_ERR_NOMEM;
    }

    memcpy(db->dir, conf->path, len);
    memcpy(db->dir + len, "/" TS_DB_DIR, sizeof("/" TS_DB_DIR));
    memcpy(db->file, db->dir, len + sizeof("/" TS_DB_DIR) - 1);
    memcpy(db->file + len + sizeof("/" TS_DB_DIR) - 1, "/data.mdb",
           sizeof("/data.mdb"));

    page = (size_t) sysconf(_SC_PAGESIZE);
    db->page = page;
    db->map_size = conf->map_size ? conf->map_size : TS_DB_MAP_SIZE;
    db->map_size = (db->map_size + page - 1) / page * page;
    db->map_max = conf->map_max ? conf->map_max : TS_DB_MAP_MAX;
    db->map_max = db->map_max / page * page;
    db->migrate_step = conf->migrate_step ? conf->migrate_step
                                          : TS_DB_MIGRATE_STEP;
    db->resize_wait = conf->resize_wait ? conf->resize_wait
                                        : TS_DB_RESIZE_WAIT;

    if (db->map_size > db->map_max) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "LMDB map size %zu is"
                  " above its limit %zu", db->map_size, db->map_max);
        return TS_ERR_INVALID;
    }

    if (pthread_mutex_init(&db->wlock, NULL) != 0) {
        goto failed;
    }

    db->locks++;

    if (pthread_mutex_init(&db->glock, NULL) != 0) {
        goto failed;
    }

    db->locks++;

    if (pthread_condattr_init(&ca) != 0) {
        goto failed;
    }

    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0
        || pthread_cond_init(&db->gcond, &ca) != 0)
    {
        (void) pthread_condattr_destroy(&ca);
        goto failed;
    }

    (void) pthread_condattr_destroy(&ca);
    db->locks++;

    return TS_OK;

failed:

    ts_db_fmt(db->errmsg, sizeof(db->errmsg), "pthread init failed");
    return TS_ERR_NOMEM;
}


int
ts_db_open(ts_db_t **dbp, const ts_db_conf_t *conf, char *err,
    size_t errlen)
{
    int       rc, dead;
    ts_db_t  *db;

    *dbp = NULL;

    if (conf->path == NULL || conf->path[0] == '\0') {
        ts_db_fmt(err, errlen, "empty LMDB path");
        return TS_ERR_INVALID;
    }

    db = calloc(1, sizeof(ts_db_t));
    if (db == NULL) {
        ts_db_fmt(err, errlen, "out of memory");
        return TS_ERR_NOMEM;
    }

    db->pid = getpid();

    rc = ts_db_init(db, conf);

    if (rc == TS_OK) {
        rc = ts_db_mkdir(db, conf->path, 0755, conf->uid, conf->gid, 0);
    }

    if (rc == TS_OK) {
        rc = ts_db_mkdir(db, db->dir, 0700, conf->uid, conf->gid, 1);
    }

    if (rc == TS_OK) {
        rc = ts_db_files_check(db, conf->uid, conf->gid, 0);
    }

    if (rc == TS_OK) {
        rc = ts_db_env_open(db, conf);
    }

    if (rc == TS_OK) {
        rc = ts_db_files_check(db, conf->uid, conf->gid, 1);
    }

    if (rc == TS_OK) {
        dead = 0;
        rc = mdb_reader_check(db->env, &dead);
        rc = rc ? ts_db_werr(db, rc, "mdb_reader_check", NULL) : TS_OK;
        db->stale = (uint64_t) dead;
    }

    if (rc == TS_OK) {
        rc = ts_db_schema(db);
    }

    if (rc != TS_OK) {
        ts_db_fmt(err, errlen, "%s", db->errmsg);
        ts_db_close(db);
        return rc;
    }

    db->errmsg[0] = '\0';
    *dbp = db;

    return TS_OK;
}


static int
ts_db_mkdir(ts_db_t *db, const char *dir, mode_t mode, uid_t uid,
    gid_t gid, int always)
{
    int          fd, created;
    struct stat  st;

    created = (mkdir(dir, mode) == 0);

    if (!created && errno != EEXIST) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "mkdir() \"%s\" failed:"
                  " %s", dir, strerror(errno));
        return TS_ERR_IO;
    }

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "open() \"%s\" failed:"
                  " %s", dir, strerror(errno));
        return TS_ERR_IO;
    }

    if ((created || always) && (uid != (uid_t) -1 || gid != (gid_t) -1)
        && fstat(fd, &st) == 0
        && ((uid != (uid_t) -1 && st.st_uid != uid)
            || (gid != (gid_t) -1 && st.st_gid != gid))
        && fchown(fd, uid, gid) == -1)
    {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "fchown() \"%s\" failed:"
                  " %s", dir, strerror(errno));
        (void) close(fd);
        return TS_ERR_IO;
    }

    (void) close(fd);

    return TS_OK;
}


/*
 * Before the open: data.mdb and lock.mdb must be regular files if they
 * exist (root must not follow a symlink planted by the worker user).
 * After it: both get the workers' owner.
 */

static int
ts_db_files_check(ts_db_t *db, uid_t uid, gid_t gid, int chown)
{
    int           i;
    char          path[PATH_MAX];
    struct stat   st;
    static const char  *names[] = { "data.mdb", "lock.mdb" };

    for (i = 0; i < 2; i++) {
        if (snprintf(path, sizeof(path), "%s/%s", db->dir, names[i])
            >= (int) sizeof(path))
        {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "path too long");
            return TS_ERR_INVALID;
        }

        if (lstat(path, &st) == -1) {
            if (errno == ENOENT && !chown) {
                continue;
            }

            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "lstat() \"%s\""
                      " failed: %s", path, strerror(errno));
            return TS_ERR_IO;
        }

        if (!S_ISREG(st.st_mode)) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "\"%s\" is not a"
                      " regular file", path);
            return TS_ERR_INVALID;
        }

        if (chown
            && ((uid != (uid_t) -1 && st.st_uid != uid)
                || (gid != (gid_t) -1 && st.st_gid != gid))
            && lchown(path, uid, gid) == -1)
        {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "lchown() \"%s\""
                      " failed: %s", path, strerror(errno));
            return TS_ERR_IO;
        }
    }

    return TS_OK;
}


static int
ts_db_env_open(ts_db_t *db, const ts_db_conf_t *conf)
{
    int          rc;
    MDB_envinfo  info;

    rc = mdb_env_create(&db->env);
    if (rc != 0) {
        db->env = NULL;
        return ts_db_werr(db, rc, "mdb_env_create", NULL);
    }

    rc = mdb_env_set_maxdbs(db->env, TS_DB_MAXDBS);

    if (rc == 0) {
        rc = mdb_env_set_maxreaders(db->env, conf->max_readers
                                    ? conf->max_readers
                                    : TS_DB_MAX_READERS);
    }

    if (rc == 0) {
        rc = mdb_env_set_mapsize(db->env, db->map_size);
    }

    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_env_set", NULL);
    }

    /* MDB_NOMETASYNC: see ts_db_sync() and docs/format/lmdb.md */

    rc = mdb_env_open(db->env, db->dir, MDB_NOTLS | MDB_NOMETASYNC, 0600);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_env_open", NULL);
    }

    if (mdb_env_get_maxkeysize(db->env) < TS_DB_KEY_MAX) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "liblmdb built with a"
                  " key size limit of %d, %d needed",
                  mdb_env_get_maxkeysize(db->env), TS_DB_KEY_MAX);
        return TS_ERR_UNSUPPORTED;
    }

    rc = ts_db_size_check(db);
    if (rc != TS_OK) {
        return rc;
    }

    /* take over a larger map another process has grown and committed */

    rc = mdb_env_set_mapsize(db->env, 0);

    if (rc == 0 && mdb_env_info(db->env, &info) == 0
        && info.me_mapsize < db->map_size)
    {
        rc = mdb_env_set_mapsize(db->env, db->map_size);
    }

    return rc ? ts_db_werr(db, rc, "mdb_env_set_mapsize", NULL) : TS_OK;
}


/*
 * LMDB maps the file and trusts the meta page: a data.mdb cut short of
 * the last page in use would fault (SIGBUS) on first access.
 */

static int
ts_db_size_check(ts_db_t *db)
{
    int          fd;
    MDB_stat     ms;
    struct stat  st;
    MDB_envinfo  info;

    if (mdb_env_info(db->env, &info) != 0
        || mdb_env_stat(db->env, &ms) != 0
        || mdb_env_get_fd(db->env, &fd) != 0
        || fstat(fd, &st) == -1)
    {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "cannot stat \"%s\"",
                  db->file);
        return TS_ERR_IO;
    }

    if (ms.ms_psize == 0 || info.me_last_pgno >= SIZE_MAX / ms.ms_psize
        || (uint64_t) st.st_size < (info.me_last_pgno + 1) * ms.ms_psize)
    {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "\"%s\" is truncated or"
                  " corrupt: %lld bytes, but its meta page says %zu pages"
                  " of %u bytes are in use", db->file,
                  (long long) st.st_size, info.me_last_pgno + 1,
                  ms.ms_psize);
        return TS_ERR_CORRUPT;
    }

    return TS_OK;
}


static int
ts_db_schema(ts_db_t *db)
{
    int       rc, tries;
    MDB_txn  *txn;

    /*
     * Another process may grow the map between our mdb_env_open() and
     * this transaction; no other transaction of this process exists yet,
     * so the map may be adopted right here.
     */

    rc = MDB_MAP_RESIZED;
    txn = NULL;

    for (tries = 0; tries < TS_DB_RETRIES; tries++) {
        rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
        if (rc != MDB_MAP_RESIZED) {
            break;
        }

        rc = mdb_env_set_mapsize(db->env, 0);
        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_env_set_mapsize", NULL);
        }

        db->adopts++;
        rc = MDB_MAP_RESIZED;
    }

    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_txn_begin", NULL);
    }

    rc = ts_db_schema_open(db, txn, 0);

    if (rc == TS_DB_MIGRATE) {
        mdb_txn_abort(txn);

        rc = ts_db_migrate(db);
        if (rc != TS_OK) {
            return rc;
        }

        rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_txn_begin", NULL);
        }

        rc = ts_db_schema_open(db, txn, 0);

        if (rc == TS_DB_MIGRATE) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "\"%s\": still"
                      " version 1 after the migration", db->file);
            rc = TS_ERR_CORRUPT;
        }
    }

    if (rc != TS_OK) {
        mdb_txn_abort(txn);

        if (rc != TS_ERR_NOTFOUND) {
            return rc;
        }

        return ts_db_write(db, ts_db_schema_init, NULL, db->map_max);
    }

    /* a read transaction's commit keeps the handles it opened */

    rc = mdb_txn_commit(txn);

    return rc ? ts_db_werr(db, rc, "mdb_txn_commit", NULL) : TS_OK;
}


/*
 * Opens every sub-database.  TS_ERR_NOTFOUND when there is no "meta"
 * (a new environment); anything else missing is corruption.
 */

static int
ts_db_schema_open(ts_db_t *db, MDB_txn *txn, int create)
{
    int       i, rc;
    MDB_val   k, v;
    unsigned  flags;

    for (i = 0; i < TS_DB_NDBS; i++) {
        flags = 0;
        rc = mdb_dbi_open(txn, ts_db_dbs[i].name,
                          ts_db_dbs[i].flags | (create ? MDB_CREATE : 0),
                          &db->dbi[i]);

        if (rc == MDB_NOTFOUND && i == TS_DB_META) {
            return TS_ERR_NOTFOUND;
        }

        if (rc == MDB_NOTFOUND) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "sub-database \"%s\""
                      " is missing, file \"%s\"", ts_db_dbs[i].name,
                      db->file);
            return TS_ERR_CORRUPT;
        }

        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_dbi_open", ts_db_dbs[i].name);
        }

        /* LMDB opens an existing database with its stored flags */

        if (mdb_dbi_flags(txn, db->dbi[i], &flags) != 0
            || (flags & TS_DB_DBFLAGS) != ts_db_dbs[i].flags)
        {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "sub-database \"%s\""
                      " has flags 0x%x, 0x%x expected, file \"%s\"",
                      ts_db_dbs[i].name, flags & TS_DB_DBFLAGS,
                      ts_db_dbs[i].flags, db->file);
            return TS_ERR_CORRUPT;
        }

        if (i != TS_DB_META || create) {
            continue;
        }

        k.mv_data = "format";
        k.mv_size = sizeof("format") - 1;

        rc = mdb_get(txn, db->dbi[TS_DB_META], &k, &v);
        if (rc == MDB_NOTFOUND) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "\"%s\" is not an"
                      " ngx_tsdb index: no format record", db->file);
            return TS_ERR_CORRUPT;
        }

        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_get", "meta");
        }

        rc = ts_db_format_check(db, &v);
        if (rc != TS_OK) {
            return rc;
        }

        if (db->version != TS_DB_VERSION) {
            return TS_DB_MIGRATE;       /* convert it first */
        }
    }

    return TS_OK;
}


static int
ts_db_schema_init(ts_db_t *db, MDB_txn *txn, void *data)
{
    int        rc;
    uint8_t    fmt[TS_DB_FORMAT_LEN];
    MDB_val    k, v;
    MDB_dbi    main;
    MDB_stat   st;

    (void) data;

    rc = ts_db_schema_open(db, txn, 0);
    if (rc != TS_ERR_NOTFOUND) {
        return rc;                  /* another process made it meanwhile */
    }

    rc = mdb_dbi_open(txn, NULL, 0, &main);
    if (rc == 0) {
        rc = mdb_stat(txn, main, &st);
    }

    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_stat", NULL);
    }

    if (st.ms_entries != 0) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "\"%s\" is not an"
                  " ngx_tsdb index: it holds %zu other keys and no \"meta\"",
                  db->file, st.ms_entries);
        return TS_ERR_CORRUPT;
    }

    rc = ts_db_schema_open(db, txn, 1);
    if (rc != TS_OK) {
        return rc;
    }

    ts_db_format_make(fmt);

    k.mv_data = "format";
    k.mv_size = sizeof("format") - 1;
    v.mv_data = fmt;
    v.mv_size = sizeof(fmt);

    rc = mdb_put(txn, db->dbi[TS_DB_META], &k, &v, 0);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_put", "meta");
    }

    return ts_db_counters_put(db, txn, 1, 1);
}


static void
ts_db_format_make(uint8_t *p)
{
    int              major, minor, patch;
    struct timespec  ts;

    (void) mdb_version(&major, &minor, &patch);
    (void) clock_gettime(CLOCK_REALTIME, &ts);

    memcpy(p, TS_DB_MAGIC, TS_DB_MAGIC_LEN);
    ts_db_put32(p + 8, TS_DB_VERSION);
    ts_db_put32(p + 12, 0);
    ts_db_put64(p + 16, (uint64_t) ts.tv_sec * 1000
                        + (uint64_t) ts.tv_nsec / 1000000);
    ts_db_put32(p + 24, (uint32_t) MDB_VERINT(major, minor, patch));
    ts_db_put32(p + 28, ts_crc32c(0, p, 28));
}


static int
ts_db_format_check(ts_db_t *db, const MDB_val *v)
{
    uint32_t        version, flags;
    const uint8_t  *p;

    p = v->mv_data;

    if (v->mv_size < 16 || memcmp(p, TS_DB_MAGIC, TS_DB_MAGIC_LEN) != 0) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "\"%s\" is not an"
                  " ngx_tsdb index: bad magic in the format record",
                  db->file);
        return TS_ERR_CORRUPT;
    }

    version = ts_db_get32(p + 8);
    flags = ts_db_get32(p + 12);

    if ((version != TS_DB_VERSION && version != 1) || flags != 0) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "\"%s\" has index format"
                  " version %u (flags 0x%x), this build reads version %u"
                  " (and converts version 1): move \"%s\" away to start a"
                  " new index", db->file, version, flags, TS_DB_VERSION,
                  db->dir);
        return TS_ERR_VERSION;
    }

    if (v->mv_size != TS_DB_FORMAT_LEN
        || ts_db_get32(p + 28) != ts_crc32c(0, p, 28))
    {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "\"%s\": the format"
                  " record is corrupt (%zu bytes, checksum)", db->file,
                  v->mv_size);
        return TS_ERR_CORRUPT;
    }

    db->version = version;

    return TS_OK;
}


void
ts_db_close(ts_db_t *db)
{
    if (db == NULL) {
        return;
    }

    /* in a fork()ed child the env, its slots and locks are the parent's */

    if (db->pid == getpid()) {
        if (db->env != NULL) {
            mdb_env_close(db->env);
        }

        if (db->locks > 2) {
            (void) pthread_cond_destroy(&db->gcond);
        }

        if (db->locks > 1) {
            (void) pthread_mutex_destroy(&db->glock);
        }

        if (db->locks > 0) {
            (void) pthread_mutex_destroy(&db->wlock);
        }
    }

    free(db->dir);
    free(db->file);
    free(db);
}


/* The gate between transactions and map resizes of this process. */

static void
ts_db_deadline(struct timespec *ts, unsigned ms)
{
    (void) clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long) (ms % 1000) * 1000000;

    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}


static void
ts_db_gate_enter(ts_db_t *db)
{
    int              deferred;
    struct timespec  ts;

    deferred = 0;

    (void) pthread_mutex_lock(&db->glock);

    for ( ;; ) {
        if (db->remapping) {
            (void) pthread_cond_wait(&db->gcond, &db->glock);
            continue;
        }

        if (db->pending == 0) {
            break;
        }

        if (!deferred) {
            ts_db_deadline(&ts, TS_DB_DEFER);
            deferred = 1;
        }

        if (pthread_cond_timedwait(&db->gcond, &db->glock, &ts)
            == ETIMEDOUT)
        {
            break;
        }
    }

    db->active++;

    (void) pthread_mutex_unlock(&db->glock);
}


static void
ts_db_gate_leave(ts_db_t *db)
{
    (void) pthread_mutex_lock(&db->glock);

    if (--db->active == 0) {
        (void) pthread_cond_broadcast(&db->gcond);
    }

    (void) pthread_mutex_unlock(&db->glock);
}


/* size 0: adopt the size another process committed (MDB_MAP_RESIZED). */

static int
ts_db_remap(ts_db_t *db, size_t size, char *buf)
{
    int              rc;
    struct timespec  ts;

    ts_db_deadline(&ts, db->resize_wait);

    (void) pthread_mutex_lock(&db->glock);

    db->pending++;

    while (db->active > 0 || db->remapping) {
        if (pthread_cond_timedwait(&db->gcond, &db->glock, &ts)
            == ETIMEDOUT)
        {
            db->pending--;
            (void) pthread_cond_broadcast(&db->gcond);
            (void) pthread_mutex_unlock(&db->glock);
            ts_db_fmt(buf, TS_DB_ERR_MAX, "LMDB map resize of \"%s\" waited"
                      " %u ms for transactions of this process to end",
                      db->file, db->resize_wait);
            return TS_ERR_AGAIN;
        }
    }

    db->pending--;
    db->remapping = 1;
    (void) pthread_mutex_unlock(&db->glock);

    rc = mdb_env_set_mapsize(db->env, size);

    (void) pthread_mutex_lock(&db->glock);
    db->remapping = 0;
    (void) pthread_cond_broadcast(&db->gcond);
    (void) pthread_mutex_unlock(&db->glock);

    if (rc != 0) {
        return ts_db_mdb_fail(db, buf, rc, "mdb_env_set_mapsize", NULL);
    }

    return TS_OK;
}


static int
ts_db_grow(ts_db_t *db, size_t limit)
{
    int          rc;
    size_t       size;
    MDB_envinfo  info;

    if (mdb_env_info(db->env, &info) != 0) {
        return TS_ERR_IO;
    }

    if (info.me_mapsize >= limit) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "LMDB map full: \"%s\""
                  " needs more than its limit of %zu bytes", db->file,
                  limit);
        return TS_ERR_FULL;
    }

    size = info.me_mapsize > limit / 2 ? limit : info.me_mapsize * 2;

    rc = ts_db_remap(db, size, db->errmsg);
    if (rc == TS_OK) {
        (void) __atomic_fetch_add(&db->grows, 1, __ATOMIC_RELAXED);
    }

    return rc;
}


/*
 * Runs fn in a write transaction and commits.  fn reports LMDB failures
 * through ts_db_werr(), which keeps the raw code: MDB_MAP_FULL grows the
 * map and MDB_MAP_RESIZED adopts another process's size, both only after
 * the transaction ended, and fn runs again from the start.
 */

static int
ts_db_write(ts_db_t *db, ts_db_txn_pt fn, void *data, size_t limit)
{
    int       rc, mrc, tries;
    MDB_txn  *txn;

    for (tries = 0; tries < TS_DB_RETRIES; tries++) {
        db->mdb_rc = 0;

        ts_db_gate_enter(db);

        mrc = mdb_txn_begin(db->env, NULL, 0, &txn);

        if (mrc != 0) {
            rc = ts_db_werr(db, mrc, "mdb_txn_begin", NULL);

        } else {
            rc = fn(db, txn, data);

            if (rc == TS_OK) {
                mrc = mdb_txn_commit(txn);
                rc = mrc ? ts_db_werr(db, mrc, "mdb_txn_commit", NULL)
                         : TS_OK;

            } else {
                mdb_txn_abort(txn);
            }
        }

        ts_db_gate_leave(db);

        if (rc == TS_OK) {
            return TS_OK;
        }

        if (db->mdb_rc == MDB_MAP_FULL) {
            rc = ts_db_grow(db, limit);

        } else if (db->mdb_rc == MDB_MAP_RESIZED) {
            rc = ts_db_remap(db, 0, db->errmsg);

            if (rc == TS_OK) {
                (void) __atomic_fetch_add(&db->adopts, 1, __ATOMIC_RELAXED);
            }

        } else {
            return rc;
        }

        if (rc != TS_OK) {
            return rc;
        }
    }

    ts_db_fmt(db->errmsg, sizeof(db->errmsg), "LMDB write to \"%s\" gave up"
              " after %d map resizes", db->file, TS_DB_RETRIES);

    return TS_ERR_AGAIN;
}


/* Batches. */

int
ts_db_batch_create(ts_db_batch_t **bp)
{
    *bp = calloc(1, sizeof(ts_db_batch_t));

    return *bp ? TS_OK : TS_ERR_NOMEM;
}


void
ts_db_batch_reset(ts_db_batch_t *b)
{
    ts_db_blk_t  *blk;

    for (blk = b->blocks; blk; blk = blk->next) {
        blk->used = 0;
    }

    b->cur = b->blocks;
    b->nseries = 0;
    b->nchunks = 0;
    b->nmetas = 0;
    b->applied = 0;
}


void
ts_db_batch_destroy(ts_db_batch_t *b)
{
    ts_db_blk_t  *blk, *next;

    if (b == NULL) {
        return;
    }

    for (blk = b->blocks; blk; blk = next) {
        next = blk->next;
        free(blk);
    }

    free(b->series);
    free(b->chunks);
    free(b->metas);
    free(b);
}


/* Arena: blocks are kept across resets; what they hold never moves. */

static void *
ts_db_alloc(ts_db_batch_t *b, size_t len)
{
    size_t        size;
    ts_db_blk_t  *blk, **last;

    len = (len + 7) & ~(size_t) 7;

    for (blk = b->cur; blk; blk = blk->next) {
        if (blk->size - blk->used >= len) {
            b->cur = blk;
            blk->used += len;
            return blk->data + blk->used - len;
        }
    }

    size = len > TS_DB_BLOCK_SIZE ? len : TS_DB_BLOCK_SIZE;

    blk = malloc(sizeof(ts_db_blk_t) + size);
    if (blk == NULL) {
        return NULL;
    }

    blk->next = NULL;
    blk->size = size;
    blk->used = len;

    for (last = &b->blocks; *last; last = &(*last)->next) {
        /* void */
    }

    *last = blk;
    b->cur = blk;

    return blk->data;
}


static void *
ts_db_copy(ts_db_batch_t *b, const void *p, size_t len)
{
    void  *dst;

    dst = ts_db_alloc(b, len ? len : 1);

    if (dst != NULL && len) {
        memcpy(dst, p, len);
    }

    return dst;
}


static int
ts_db_grow_array(void **arr, uint32_t *cap, uint32_t n, size_t size)
{
    void      *p;
    uint32_t   ncap;

    if (n < *cap) {
        return TS_OK;
    }

    if (*cap >= UINT32_MAX / 2) {
        return TS_ERR_LIMIT;
    }

    ncap = *cap ? *cap * 2 : 64;

    p = realloc(*arr, (size_t) ncap * size);
    if (p == NULL) {
        return TS_ERR_NOMEM;
    }

    *arr = p;
    *cap = ncap;

    return TS_OK;
}


int
ts_db_batch_series(ts_db_batch_t *b, const char *tenant, size_t tlen,
    const ts_label_t *labels, uint32_t n, uint64_t hint, uint32_t *idx)
{
    int               rc;
    uint32_t          i;
    ts_label_t       *l;
    ts_db_bseries_t  *s;

    if (tlen == 0 || tlen > TS_DB_TENANT_MAX || n > UINT16_MAX
        || !ts_labels_sorted(labels, n))
    {
        return TS_ERR_INVALID;
    }

    /* the __name__ list is the list of all series of a tenant */

    for (i = 0; i < n; i++) {
        if (labels[i].name_len == TS_DB_MNAME_LEN
            && memcmp(labels[i].name, TS_DB_MNAME, TS_DB_MNAME_LEN) == 0)
        {
            break;
        }
    }

    if (i == n) {
        return TS_ERR_INVALID;
    }

    rc = ts_db_grow_array((void **) &b->series, &b->series_cap, b->nseries,
                          sizeof(ts_db_bseries_t));
    if (rc != TS_OK) {
        return rc;
    }

    s = &b->series[b->nseries];

    s->tenant = ts_db_copy(b, tenant, tlen);
    l = ts_db_alloc(b, (n ? n : 1) * sizeof(ts_label_t));

    if (s->tenant == NULL || l == NULL) {
        return TS_ERR_NOMEM;
    }

    for (i = 0; i < n; i++) {
        l[i].name = ts_db_copy(b, labels[i].name, labels[i].name_len);
        l[i].name_len = labels[i].name_len;
        l[i].value = ts_db_copy(b, labels[i].value, labels[i].value_len);
        l[i].value_len = labels[i].value_len;

        if (l[i].name == NULL || l[i].value == NULL) {
            return TS_ERR_NOMEM;
        }
    }

    s->labels = l;
    s->n = n;
    s->tlen = (uint32_t) tlen;
    s->hash = ts_labels_hash(labels, n);
    s->hint = hint;
    s->id = 0;
    s->created = 0;

    *idx = b->nseries++;
    b->applied = 0;

    return TS_OK;
}


int
ts_db_batch_chunk(ts_db_batch_t *b, uint32_t idx, int64_t mint,
    int64_t maxt, uint8_t encoding, const void *data, size_t len)
{
    if (idx >= b->nseries) {
        return TS_ERR_INVALID;
    }

    return ts_db_batch_chunk_add(b, 0, idx, mint, maxt, encoding, data,
                                 len);
}


int
ts_db_batch_chunk_id(ts_db_batch_t *b, uint64_t id, int64_t mint,
    int64_t maxt, uint8_t encoding, const void *data, size_t len)
{
    if (id == 0) {
        return TS_ERR_INVALID;
    }

    return ts_db_batch_chunk_add(b, id, TS_DB_NONE, mint, maxt, encoding,
                                 data, len);
}


static int
ts_db_batch_chunk_add(ts_db_batch_t *b, uint64_t known, uint32_t idx,
    int64_t mint, int64_t maxt, uint8_t encoding, const void *data,
    size_t len)
{
    int              rc;
    ts_db_bchunk_t  *c;

    if (mint > maxt || len == 0 || len > TS_DB_CHUNK_MAX) {
        return TS_ERR_INVALID;
    }

    rc = ts_db_grow_array((void **) &b->chunks, &b->chunks_cap, b->nchunks,
                          sizeof(ts_db_bchunk_t));
    if (rc != TS_OK) {
        return rc;
    }

    c = &b->chunks[b->nchunks];

    c->data = ts_db_copy(b, data, len);
    if (c->data == NULL) {
        return TS_ERR_NOMEM;
    }

    c->known = known;
    c->id = known;
    c->mint = mint;
    c->maxt = maxt;
    c->len = (uint32_t) len;
    c->sidx = idx;
    c->seq = b->nchunks++;
    c->encoding = encoding;
    b->applied = 0;

    return TS_OK;
}


int
ts_db_batch_metadata(ts_db_batch_t *b, const char *tenant, size_t tlen,
    const ts_db_metadata_t *md)
{
    int             rc;
    ts_db_bmeta_t  *m;

    if (tlen == 0 || tlen > TS_DB_TENANT_MAX || md->name_len == 0
        || md->name_len > UINT32_MAX || md->unit_len > UINT32_MAX
        || md->help_len > UINT32_MAX)
    {
        return TS_ERR_INVALID;
    }

    rc = ts_db_grow_array((void **) &b->metas, &b->metas_cap, b->nmetas,
                          sizeof(ts_db_bmeta_t));
    if (rc != TS_OK) {
        return rc;
    }

    m = &b->metas[b->nmetas];

    m->tenant = ts_db_copy(b, tenant, tlen);
    m->tlen = (uint32_t) tlen;
    m->md = *md;
    m->md.name = ts_db_copy(b, md->name, md->name_len);
    m->md.unit = ts_db_copy(b, md->unit, md->unit_len);
    m->md.help = ts_db_copy(b, md->help, md->help_len);

    if (m->tenant == NULL || m->md.name == NULL || m->md.unit == NULL
        || m->md.help == NULL)
    {
        return TS_ERR_NOMEM;
    }

    b->nmetas++;
    b->applied = 0;

    return TS_OK;
}


uint32_t
ts_db_batch_nseries(const ts_db_batch_t *b)
{
    return b->nseries;
}


uint32_t
ts_db_batch_nchunks(const ts_db_batch_t *b)
{
    return b->nchunks;
}


uint64_t
ts_db_batch_series_id(const ts_db_batch_t *b, uint32_t idx)
{
    return (b->applied && idx < b->nseries) ? b->series[idx].id : 0;
}


int
ts_db_batch_series_created(const ts_db_batch_t *b, uint32_t idx)
{
    return (b->applied && idx < b->nseries) ? b->series[idx].created : 0;
}


/* Apply. */

int
ts_db_apply(ts_db_t *db, ts_db_batch_t *b)
{
    int            rc;
    ts_db_apply_t  a;

    (void) pthread_mutex_lock(&db->wlock);

    rc = ts_db_pid_check(db, db->errmsg);

    if (rc == TS_OK && (b->nseries || b->nchunks || b->nmetas)) {
        memset(&a, 0, sizeof(ts_db_apply_t));
        a.b = b;

        rc = ts_db_write(db, ts_db_apply_txn, &a, db->map_max);

        ts_db_padds_free(&a.padds);
    }

    b->applied = (rc == TS_OK);

    (void) pthread_mutex_unlock(&db->wlock);

    return rc;
}


static int
ts_db_apply_txn(ts_db_t *db, MDB_txn *txn, void *data)
{
    int             rc;
    uint32_t        i;
    ts_db_apply_t  *a;

    a = data;
    a->txn = txn;
    a->tname = NULL;
    a->padds.n = 0;
    a->padds.used = 0;

    rc = ts_db_counters_get(db, txn, &a->next_series, &a->next_tenant);
    if (rc != TS_OK) {
        return rc;
    }

    a->first_series = a->next_series;
    a->first_tenant = a->next_tenant;

    rc = mdb_cursor_open(txn, db->dbi[TS_DB_SHASH], &a->shash);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_cursor_open", "series_hash");
    }

    for (i = 0; i < a->b->nseries; i++) {
        rc = ts_db_apply_series(db, a, &a->b->series[i]);
        if (rc != TS_OK) {
            return rc;
        }
    }

    rc = ts_db_padds_flush(db, txn, &a->padds);

    if (rc == TS_OK) {
        rc = ts_db_apply_chunks(db, a);
    }

    if (rc == TS_OK) {
        rc = ts_db_apply_metas(db, a);
    }

    if (rc == TS_OK && (a->next_series != a->first_series
                        || a->next_tenant != a->first_tenant))
    {
        rc = ts_db_counters_put(db, txn, a->next_series, a->next_tenant);
    }

    return rc;
}


static int
ts_db_counters_get(ts_db_t *db, MDB_txn *txn, uint64_t *series,
    uint32_t *tenant)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = "next_series";
    k.mv_size = sizeof("next_series") - 1;

    rc = mdb_get(txn, db->dbi[TS_DB_META], &k, &v);

    if (rc == 0 && v.mv_size == 8) {
        *series = ts_db_get64(v.mv_data);

        k.mv_data = "next_tenant";
        k.mv_size = sizeof("next_tenant") - 1;

        rc = mdb_get(txn, db->dbi[TS_DB_META], &k, &v);

        if (rc == 0 && v.mv_size == 4) {
            *tenant = ts_db_get32(v.mv_data);

            if (*series != 0 && *tenant != 0) {
                return TS_OK;
            }
        }
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return ts_db_werr(db, rc, "mdb_get", "meta");
    }

    ts_db_fmt(db->errmsg, sizeof(db->errmsg), "corrupt record in \"meta\""
              " at key \"%.*s\": missing or of a wrong size, file \"%s\"",
              (int) k.mv_size, (const char *) k.mv_data, db->file);

    return TS_ERR_CORRUPT;
}


static int
ts_db_counters_put(ts_db_t *db, MDB_txn *txn, uint64_t series,
    uint32_t tenant)
{
    int      rc;
    uint8_t  s[8], t[4];
    MDB_val  k, v;

    ts_db_put64(s, series);
    ts_db_put32(t, tenant);

    k.mv_data = "next_series";
    k.mv_size = sizeof("next_series") - 1;
    v.mv_data = s;
    v.mv_size = sizeof(s);

    rc = mdb_put(txn, db->dbi[TS_DB_META], &k, &v, 0);

    if (rc == 0) {
        k.mv_data = "next_tenant";
        k.mv_size = sizeof("next_tenant") - 1;
        v.mv_data = t;
        v.mv_size = sizeof(t);

        rc = mdb_put(txn, db->dbi[TS_DB_META], &k, &v, 0);
    }

    return rc ? ts_db_werr(db, rc, "mdb_put", "meta") : TS_OK;
}


static int
ts_db_apply_tenant(ts_db_t *db, ts_db_apply_t *a, const char *name,
    uint32_t len, uint32_t *id)
{
    int      rc;
    uint8_t  buf[4];
    MDB_val  k, v;

    if (a->tname && a->tlen == len && memcmp(a->tname, name, len) == 0) {
        *id = a->tid;
        return TS_OK;
    }

    k.mv_data = (void *) name;
    k.mv_size = len;

    rc = mdb_get(a->txn, db->dbi[TS_DB_TENANTS], &k, &v);

    if (rc == 0) {
        if (v.mv_size != 4) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "corrupt record in"
                      " \"tenants\" at key \"%.*s\": %zu bytes, file \"%s\"",
                      (int) len, name, v.mv_size, db->file);
            return TS_ERR_CORRUPT;
        }

        *id = ts_db_get32(v.mv_data);

    } else if (rc == MDB_NOTFOUND) {
        if (a->next_tenant == UINT32_MAX) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "out of tenant ids");
            return TS_ERR_LIMIT;
        }

        *id = a->next_tenant++;
        ts_db_put32(buf, *id);
        v.mv_data = buf;
        v.mv_size = sizeof(buf);

        rc = mdb_put(a->txn, db->dbi[TS_DB_TENANTS], &k, &v, 0);
        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_put", "tenants");
        }

    } else {
        return ts_db_werr(db, rc, "mdb_get", "tenants");
    }

    a->tname = name;
    a->tlen = len;
    a->tid = *id;

    return TS_OK;
}


static int
ts_db_apply_series(ts_db_t *db, ts_db_apply_t *a, ts_db_bseries_t *s)
{
    int       rc;
    uint8_t   key[12];
    MDB_val   k, d;
    uint32_t  tenant;

    s->id = 0;
    s->created = 0;

    rc = ts_db_apply_tenant(db, a, s->tenant, s->tlen, &tenant);
    if (rc != TS_OK) {
        return rc;
    }

    if (s->hint) {
        rc = ts_db_series_match(db, db->errmsg, a->txn, s->hint, tenant,
                                s->labels, s->n);
        if (rc < 0) {
            return rc;
        }

        if (rc == 1) {
            s->id = s->hint;
            return TS_OK;
        }
    }

    ts_db_put32(key, tenant);
    ts_db_put64(key + 4, s->hash);
    k.mv_data = key;
    k.mv_size = sizeof(key);

    rc = mdb_cursor_get(a->shash, &k, &d, MDB_SET_KEY);

    while (rc == 0) {
        if (d.mv_size != 8) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "corrupt record in"
                      " \"series_hash\": a value of %zu bytes, file \"%s\"",
                      d.mv_size, db->file);
            return TS_ERR_CORRUPT;
        }

        rc = ts_db_series_match(db, db->errmsg, a->txn,
                                ts_db_get64(d.mv_data), tenant, s->labels,
                                s->n);
        if (rc < 0) {
            return rc;
        }

        if (rc == 1) {
            s->id = ts_db_get64(d.mv_data);
            return TS_OK;
        }

        rc = mdb_cursor_get(a->shash, &k, &d, MDB_NEXT_DUP);
    }

    if (rc != MDB_NOTFOUND) {
        return ts_db_werr(db, rc, "mdb_cursor_get", "series_hash");
    }

    return ts_db_series_create(db, a, s, tenant);
}


/* 1 if series id exists with these labels, 0 if not, or an error. */

static int
ts_db_series_match(ts_db_t *db, char *buf, MDB_txn *txn, uint64_t id,
    uint32_t tenant, const ts_label_t *l, uint32_t n)
{
    int           rc;
    uint8_t       key[8];
    uint32_t      i;
    MDB_val       k, v;
    ts_label_t    x;
    ts_db_srec_t  r;

    ts_db_put64(key, id);
    k.mv_data = key;
    k.mv_size = sizeof(key);

    rc = mdb_get(txn, db->dbi[TS_DB_SERIES], &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return ts_db_mdb_fail(db, buf, rc, "mdb_get", "series");
    }

    if (ts_db_srec_open(&r, &v, txn, db->dbi[TS_DB_LNAMES]) != TS_OK) {
        goto corrupt;
    }

    if (r.tenant != tenant || r.n != n) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (ts_db_srec_next(&r, &x) != 1) {
            goto corrupt;
        }

        if (x.name_len != l[i].name_len || x.value_len != l[i].value_len
            || memcmp(x.name, l[i].name, x.name_len) != 0
            || memcmp(x.value, l[i].value, x.value_len) != 0)
        {
            return 0;
        }
    }

    return 1;

corrupt:

    ts_db_fmt(buf, TS_DB_ERR_MAX, "corrupt record in \"series\" at key"
              " (series %" PRIu64 "): labels run past the %zu-byte value,"
              " file \"%s\"", id, v.mv_size, db->file);

    return TS_ERR_CORRUPT;
}


static int
ts_db_series_create(ts_db_t *db, ts_db_apply_t *a, ts_db_bseries_t *s,
    uint32_t tenant)
{
    int        rc;
    uint8_t    key[12], id[8];
    uint32_t   i, sids[64], *ids;
    MDB_val    k, v;

    if (a->next_series == UINT64_MAX) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "out of series ids");
        return TS_ERR_LIMIT;
    }

    ids = s->n <= 64 ? sids : malloc(s->n * sizeof(uint32_t));
    if (ids == NULL) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "out of memory");
        return TS_ERR_NOMEM;
    }

    for (i = 0; i < s->n; i++) {
        rc = ts_db_name_id(db, a->txn, tenant, s->labels[i].name,
                           s->labels[i].name_len, &ids[i]);
        if (rc != TS_OK) {
            goto failed;
        }
    }

    s->id = a->next_series++;
    s->created = 1;

    ts_db_put64(id, s->id);
    k.mv_data = id;
    k.mv_size = sizeof(id);
    v.mv_data = NULL;
    v.mv_size = ts_db_series_size(s->labels, ids, s->n);

    /*
     * Ids are allocated in increasing order, so a new series is the
     * last key: MDB_APPEND fills the pages instead of splitting them in
     * half.  An id at or below the last key (never from our counter)
     * falls back to the ordinary put, which refuses to overwrite.
     */

    rc = mdb_put(a->txn, db->dbi[TS_DB_SERIES], &k, &v,
                 MDB_RESERVE | MDB_APPEND);

    if (rc == MDB_KEYEXIST) {
        v.mv_data = NULL;
        v.mv_size = ts_db_series_size(s->labels, ids, s->n);

        rc = mdb_put(a->txn, db->dbi[TS_DB_SERIES], &k, &v,
                     MDB_RESERVE | MDB_NOOVERWRITE);
    }

    if (rc != 0) {
        rc = ts_db_werr(db, rc, "mdb_put", "series");
        goto failed;
    }

    ts_db_series_encode(v.mv_data, tenant, s->hash, s->labels, ids, s->n);

    if (ids != sids) {
        free(ids);
    }

    ts_db_put32(key, tenant);
    ts_db_put64(key + 4, s->hash);
    k.mv_data = key;
    k.mv_size = sizeof(key);
    v.mv_data = id;
    v.mv_size = sizeof(id);

    rc = mdb_put(a->txn, db->dbi[TS_DB_SHASH], &k, &v, 0);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_put", "series_hash");
    }

    return ts_db_padd_series(db, &a->padds, tenant, s->labels, s->n, s->id);

failed:

    if (ids != sids) {
        free(ids);
    }

    return rc;
}


/*
 * Label names are stored once per tenant in "lnames": (tenant, 'n',
 * name) -> id (u32) and (tenant, 'i', id) -> name; series records hold
 * the ids.  Ids start at 1 and are never reused or changed.
 */

static size_t
ts_db_nkey(uint8_t *k, uint32_t tenant, const char *name, size_t len)
{
    size_t  room;

    ts_db_put32(k, tenant);
    k[4] = 'n';

    if (5 + len < TS_DB_KEY_MAX) {
        memcpy(k + 5, name, len);
        return 5 + len;
    }

    room = TS_DB_KEY_MAX - 5 - 8;
    memcpy(k + 5, name, room);
    ts_db_put64(k + TS_DB_KEY_MAX - 8, ts_xxh64(name, len, 0));

    return TS_DB_KEY_MAX;
}


/* The id of a label name of a tenant; a new name gets the next id. */

static int
ts_db_name_id(ts_db_t *db, MDB_txn *txn, uint32_t tenant, const char *name,
    size_t len, uint32_t *id)
{
    int          rc;
    uint8_t      key[TS_DB_KEY_MAX], ikey[9], idb[4];
    uint32_t     next;
    MDB_val      k, v, ik, iv;
    MDB_cursor  *cur;

    k.mv_data = key;
    k.mv_size = ts_db_nkey(key, tenant, name, len);

    rc = mdb_get(txn, db->dbi[TS_DB_LNAMES], &k, &v);

    if (rc == 0) {
        if (v.mv_size != 4 || ts_db_get32(v.mv_data) == 0) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "corrupt record in"
                      " \"lnames\": a name id of %zu bytes, file \"%s\"",
                      v.mv_size, db->file);
            return TS_ERR_CORRUPT;
        }

        *id = ts_db_get32(v.mv_data);
        return TS_OK;
    }

    if (rc != MDB_NOTFOUND) {
        return ts_db_werr(db, rc, "mdb_get", "lnames");
    }

    /* the next id: one past the tenant's last (tenant, 'i', id) key */

    rc = mdb_cursor_open(txn, db->dbi[TS_DB_LNAMES], &cur);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_cursor_open", "lnames");
    }

    ts_db_put32(ikey, tenant);
    ikey[4] = 'i';
    ts_db_put32(ikey + 5, UINT32_MAX);
    ik.mv_data = ikey;
    ik.mv_size = sizeof(ikey);

    rc = mdb_cursor_get(cur, &ik, &iv, MDB_SET_RANGE);

    if (rc == 0) {
        rc = mdb_cursor_get(cur, &ik, &iv, MDB_PREV);

    } else if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(cur, &ik, &iv, MDB_LAST);
    }

    next = 1;

    if (rc == 0 && ik.mv_size == 9 && memcmp(ik.mv_data, ikey, 5) == 0) {
        next = ts_db_get32((const uint8_t *) ik.mv_data + 5) + 1;
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return ts_db_werr(db, rc, "mdb_cursor_get", "lnames");
    }

    if (next == 0 || next == UINT32_MAX) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "out of label name ids");
        return TS_ERR_LIMIT;
    }

    ts_db_put32(ikey + 5, next);
    ik.mv_data = ikey;
    ik.mv_size = sizeof(ikey);
    iv.mv_data = (void *) name;
    iv.mv_size = len;

    rc = mdb_put(txn, db->dbi[TS_DB_LNAMES], &ik, &iv, MDB_NOOVERWRITE);

    if (rc == 0) {
        ts_db_put32(idb, next);
        v.mv_data = idb;
        v.mv_size = sizeof(idb);

        rc = mdb_put(txn, db->dbi[TS_DB_LNAMES], &k, &v, MDB_NOOVERWRITE);
    }

    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_put", "lnames");
    }

    *id = next;

    return TS_OK;
}


/*
 * Postings, version 2: each list (tenant, kind, name [, value]) is a
 * run of blocks under (list key, first id); a block's value is a
 * uvarint count and count - 1 uvarint deltas.  docs/format/lmdb.md.
 */

static int
ts_db_padd(ts_db_t *db, ts_db_padds_t *pa, const uint8_t *head,
    size_t hlen, uint64_t id)
{
    void    *p;
    size_t   size;
    uint32_t cap;

    if (pa->n == pa->cap) {
        cap = pa->cap ? pa->cap * 2 : 1024;

        p = realloc(pa->a, cap * sizeof(ts_db_padd_t));
        if (p == NULL) {
            goto nomem;
        }

        pa->a = p;
        pa->cap = cap;
    }

    if (pa->used + hlen > pa->size) {
        size = pa->size ? pa->size * 2 : 65536;

        while (size < pa->used + hlen) {
            size *= 2;
        }

        p = realloc(pa->buf, size);
        if (p == NULL) {
            goto nomem;
        }

        pa->buf = p;
        pa->size = size;
    }

    memcpy(pa->buf + pa->used, head, hlen);
    pa->a[pa->n].off = pa->used;
    pa->a[pa->n].len = (uint32_t) hlen;
    pa->a[pa->n].id = id;
    pa->a[pa->n].k = NULL;
    pa->n++;
    pa->used += hlen;

    return TS_OK;

nomem:

    ts_db_fmt(db->errmsg, sizeof(db->errmsg), "out of memory");

    return TS_ERR_NOMEM;
}


/* Queues id for the 'N' and 'V' lists of every label of a series. */

static int
ts_db_padd_series(ts_db_t *db, ts_db_padds_t *pa, uint32_t tenant,
    const ts_label_t *l, uint32_t n, uint64_t id)
{
    int       rc;
    size_t    len;
    uint8_t   key[TS_DB_HEAD_MAX];
    uint32_t  i;

    for (i = 0; i < n; i++) {
        len = ts_db_pkey(key, TS_DB_HEAD_MAX, tenant, TS_DB_KIND_NAME,
                         l[i].name, l[i].name_len, NULL, 0);

        rc = ts_db_padd(db, pa, key, len, id);
        if (rc != TS_OK) {
            return rc;
        }

        len = ts_db_pkey(key, TS_DB_HEAD_MAX, tenant, TS_DB_KIND_PAIR,
                         l[i].name, l[i].name_len, l[i].value,
                         l[i].value_len);

        rc = ts_db_padd(db, pa, key, len, id);
        if (rc != TS_OK) {
            return rc;
        }
    }

    return TS_OK;
}


static int
ts_db_padd_cmp(const void *a, const void *b)
{
    int                  c;
    const ts_db_padd_t  *x, *y;

    x = a;
    y = b;

    c = memcmp(x->k, y->k, x->len < y->len ? x->len : y->len);

    if (c == 0 && x->len != y->len) {
        c = x->len < y->len ? -1 : 1;
    }

    if (c == 0 && x->id != y->id) {
        c = x->id < y->id ? -1 : 1;
    }

    return c;
}


/* Writes the queued ids: one read-modify-write per list and call. */

static int
ts_db_padds_flush(ts_db_t *db, MDB_txn *txn, ts_db_padds_t *pa)
{
    int          rc;
    void        *p;
    uint32_t     i, j, n;
    MDB_cursor  *cur;

    if (pa->n == 0) {
        return TS_OK;
    }

    for (i = 0; i < pa->n; i++) {
        pa->a[i].k = pa->buf + pa->a[i].off;
    }

    qsort(pa->a, pa->n, sizeof(ts_db_padd_t), ts_db_padd_cmp);

    rc = mdb_cursor_open(txn, db->dbi[TS_DB_POSTINGS], &cur);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_cursor_open", "pblocks");
    }

    rc = TS_OK;

    for (i = 0; rc == TS_OK && i < pa->n; i = j) {
        for (j = i + 1; j < pa->n; j++) {
            if (pa->a[j].len != pa->a[i].len
                || memcmp(pa->a[j].k, pa->a[i].k, pa->a[i].len) != 0)
            {
                break;
            }
        }

        if (j - i > pa->ids_cap) {
            p = realloc(pa->ids, (j - i) * sizeof(uint64_t));
            if (p == NULL) {
                ts_db_fmt(db->errmsg, sizeof(db->errmsg), "out of memory");
                rc = TS_ERR_NOMEM;
                break;
            }

            pa->ids = p;
            pa->ids_cap = j - i;
        }

        n = 0;

        while (i < j) {
            if (n == 0 || pa->ids[n - 1] != pa->a[i].id) {
                pa->ids[n++] = pa->a[i].id;
            }

            i++;
        }

        rc = ts_db_plist_add(db, txn, cur, pa->a[j - 1].k, pa->a[j - 1].len,
                             pa->ids, n);
    }

    mdb_cursor_close(cur);

    pa->n = 0;
    pa->used = 0;

    return rc;
}


static void
ts_db_padds_free(ts_db_padds_t *pa)
{
    free(pa->a);
    free(pa->buf);
    free(pa->ids);
    memset(pa, 0, sizeof(ts_db_padds_t));
}


/*
 * Puts cur on the block of list head that would hold id: the last one
 * whose first id is <= id.  0 (k, v set), MDB_NOTFOUND when no block of
 * the list starts at or below id, or an LMDB error.  Keys of other lists
 * that start with the same bytes (a longer string) are stepped over.
 */

static int
ts_db_pb_find(MDB_cursor *cur, const uint8_t *head, size_t hlen,
    uint64_t id, MDB_val *k, MDB_val *v)
{
    int      rc;
    uint8_t  key[TS_DB_KEY_MAX];

    memcpy(key, head, hlen);
    ts_db_put64(key + hlen, id);
    k->mv_data = key;
    k->mv_size = hlen + 8;

    rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);

    if (rc == 0 && k->mv_size == hlen + 8
        && memcmp(k->mv_data, key, hlen + 8) == 0)
    {
        return 0;
    }

    if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(cur, k, v, MDB_LAST);

    } else if (rc == 0) {
        rc = mdb_cursor_get(cur, k, v, MDB_PREV);
    }

    while (rc == 0) {
        if (k->mv_size < hlen || memcmp(k->mv_data, head, hlen) != 0) {
            return MDB_NOTFOUND;
        }

        if (k->mv_size == hlen + 8) {
            return 0;
        }

        rc = mdb_cursor_get(cur, k, v, MDB_PREV);
    }

    return rc;
}


/*
 * Puts cur on the first block of list head whose first id is >= id (op
 * MDB_SET_RANGE), or on the block after the cursor's (op MDB_NEXT).
 */

static int
ts_db_pb_fwd(MDB_cursor *cur, const uint8_t *head, size_t hlen,
    uint64_t id, MDB_cursor_op op, MDB_val *k, MDB_val *v)
{
    int      rc;
    uint8_t  key[TS_DB_KEY_MAX];

    if (op == MDB_SET_RANGE) {
        memcpy(key, head, hlen);
        ts_db_put64(key + hlen, id);
        k->mv_data = key;
        k->mv_size = hlen + 8;
    }

    for (rc = mdb_cursor_get(cur, k, v, op);
         rc == 0;
         rc = mdb_cursor_get(cur, k, v, MDB_NEXT))
    {
        if (k->mv_size < hlen || memcmp(k->mv_data, head, hlen) != 0) {
            return MDB_NOTFOUND;
        }

        if (k->mv_size == hlen + 8) {
            return 0;
        }
    }

    return rc;
}


/*
 * The two steps of reading a block, shared by ts_db_pblock_decode() and
 * the iterator: the count (1 .. TS_DB_PBLOCK_MAX), then each delta
 * (>= 1, the id must stay below 2^64).  0 or -1.
 */

static int
ts_db_pb_count(const uint8_t **p, const uint8_t *end, uint32_t *count)
{
    uint64_t  c;

    if (ts_db_uvarint_get(p, end, &c) != 0 || c == 0
        || c > TS_DB_PBLOCK_MAX)
    {
        return -1;
    }

    *count = (uint32_t) c;

    return 0;
}


static int
ts_db_pb_delta(const uint8_t **p, const uint8_t *end, uint64_t *id)
{
    uint64_t  d;

    if (ts_db_uvarint_get(p, end, &d) != 0 || d == 0
        || d > UINT64_MAX - *id)
    {
        return -1;
    }

    *id += d;

    return 0;
}


int
ts_db_pblock_decode(uint64_t first, const void *data, size_t len,
    uint64_t *ids, uint32_t *n)
{
    uint32_t        i, c;
    uint64_t        id;
    const uint8_t  *p, *end;

    p = data;
    end = p + len;

    if (ts_db_pb_count(&p, end, &c) != 0) {
        return TS_ERR_CORRUPT;
    }

    id = first;
    ids[0] = first;

    for (i = 1; i < c; i++) {
        if (ts_db_pb_delta(&p, end, &id) != 0) {
            return TS_ERR_CORRUPT;
        }

        ids[i] = id;
    }

    if (p != end) {
        return TS_ERR_CORRUPT;
    }

    *n = c;

    return TS_OK;
}


size_t
ts_db_pblock_encode(const uint64_t *ids, uint32_t n, uint8_t *out)
{
    size_t    len;
    uint32_t  i;

    len = ts_db_uvarint_put(out, n);

    for (i = 1; i < n; i++) {
        len += ts_db_uvarint_put(out + len, ids[i] - ids[i - 1]);
    }

    return len;
}


static int
ts_db_pb_corrupt(ts_db_t *db, const uint8_t *head, size_t hlen,
    uint64_t first)
{
    ts_db_fmt(db->errmsg, sizeof(db->errmsg), "corrupt record in"
              " \"pblocks\" at key (tenant %" PRIu32 ", kind '%c', %zu"
              " bytes, first id %" PRIu64 "), file \"%s\"",
              ts_db_get32(head), head[4], hlen - TS_DB_PHEAD, first,
              db->file);

    return TS_ERR_CORRUPT;
}


/*
 * Adds ids (ascending, no duplicates) to list head: the block each
 * range of ids falls into is decoded, merged and written back in blocks
 * of at most TS_DB_PBLOCK_MAX ids and TS_DB_PBLOCK_BYTES bytes of
 * deltas.  New series have the greatest ids, so this is normally one
 * rewrite of the list's last block and new blocks after it.
 */

static int
ts_db_plist_add(ts_db_t *db, MDB_txn *txn, MDB_cursor *cur,
    const uint8_t *head, size_t hlen, const uint64_t *ids, uint32_t n)
{
    int        rc, found, hasnext, full;
    size_t     bytes, vlen;
    uint8_t    key[TS_DB_KEY_MAX], val[16 + 10 * TS_DB_PBLOCK_MAX];
    uint32_t   i, j, a, b, nold, nm, x, y;
    uint64_t   old[TS_DB_PBLOCK_MAX], first, next, *m;
    MDB_val    k, v;

    m = malloc((TS_DB_PBLOCK_MAX + (size_t) n) * sizeof(uint64_t));
    if (m == NULL) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "out of memory");
        return TS_ERR_NOMEM;
    }

    memcpy(key, head, hlen);

    for (i = 0; i < n; i = j) {
        rc = ts_db_pb_find(cur, head, hlen, ids[i], &k, &v);

        found = (rc == 0);
        nold = 0;
        first = 0;
        vlen = 0;

        if (found) {
            first = ts_db_get64((const uint8_t *) k.mv_data + hlen);
            vlen = v.mv_size;

            if (ts_db_pblock_decode(first, v.mv_data, v.mv_size, old, &nold)
                != TS_OK)
            {
                rc = ts_db_pb_corrupt(db, head, hlen, first);
                goto done;
            }

        } else if (rc != MDB_NOTFOUND) {
            rc = ts_db_werr(db, rc, "mdb_cursor_get", "pblocks");
            goto done;
        }

        hasnext = 0;
        next = 0;

        if (!found || first < UINT64_MAX) {
            rc = ts_db_pb_fwd(cur, head, hlen, found ? first + 1 : ids[i],
                              MDB_SET_RANGE, &k, &v);

            if (rc == 0) {
                hasnext = 1;
                next = ts_db_get64((const uint8_t *) k.mv_data + hlen);

            } else if (rc != MDB_NOTFOUND) {
                rc = ts_db_werr(db, rc, "mdb_cursor_get", "pblocks");
                goto done;
            }
        }

        for (j = i; j < n && (!hasnext || ids[j] < next); j++) {
            /* void */
        }

        /* merge old[0 .. nold) and ids[i .. j) */

        nm = 0;
        x = 0;
        y = i;

        while (x < nold || y < j) {
            if (y == j || (x < nold && old[x] < ids[y])) {
                m[nm++] = old[x++];

            } else if (x < nold && old[x] == ids[y]) {
                m[nm++] = old[x++];
                y++;

            } else {
                m[nm++] = ids[y++];
            }
        }

        if (nm == nold) {
            continue;                   /* all there already */
        }

        /* a full block that only gets ids after it stays as it is */

        a = 0;

        if (found && ids[i] > old[nold - 1]) {
            full = nold == TS_DB_PBLOCK_MAX
                   || vlen - ts_db_uvarint_len(nold)
                      + ts_db_uvarint_len(ids[i] - old[nold - 1])
                      > TS_DB_PBLOCK_BYTES;

            if (full) {
                a = nold;
            }
        }

        while (a < nm) {
            bytes = 0;

            for (b = a + 1; b < nm && b - a < TS_DB_PBLOCK_MAX; b++) {
                if (bytes + ts_db_uvarint_len(m[b] - m[b - 1])
                    > TS_DB_PBLOCK_BYTES)
                {
                    break;
                }

                bytes += ts_db_uvarint_len(m[b] - m[b - 1]);
            }

            ts_db_put64(key + hlen, m[a]);
            k.mv_data = key;
            k.mv_size = hlen + 8;
            v.mv_data = val;
            v.mv_size = ts_db_pblock_encode(m + a, b - a, val);

            rc = mdb_put(txn, db->dbi[TS_DB_POSTINGS], &k, &v, 0);
            if (rc != 0) {
                rc = ts_db_werr(db, rc, "mdb_put", "pblocks");
                goto done;
            }

            a = b;
        }
    }

    rc = TS_OK;

done:

    free(m);

    return rc;
}


/* Removes id from list head; a block left empty is deleted. */

static int
ts_db_plist_del(ts_db_t *db, MDB_txn *txn, MDB_cursor *cur,
    const uint8_t *head, size_t hlen, uint64_t id)
{
    int       rc;
    uint8_t   key[TS_DB_KEY_MAX], val[16 + 10 * TS_DB_PBLOCK_MAX];
    uint32_t  i, n;
    uint64_t  ids[TS_DB_PBLOCK_MAX], first;
    MDB_val   k, v;

    rc = ts_db_pb_find(cur, head, hlen, id, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return TS_OK;
    }

    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_cursor_get", "pblocks");
    }

    first = ts_db_get64((const uint8_t *) k.mv_data + hlen);

    if (ts_db_pblock_decode(first, v.mv_data, v.mv_size, ids, &n) != TS_OK) {
        return ts_db_pb_corrupt(db, head, hlen, first);
    }

    for (i = 0; i < n && ids[i] != id; i++) {
        /* void */
    }

    if (i == n) {
        return TS_OK;
    }

    memmove(&ids[i], &ids[i + 1], (n - i - 1) * sizeof(uint64_t));
    n--;

    memcpy(key, head, hlen);
    k.mv_data = key;
    k.mv_size = hlen + 8;

    if (n == 0 || i == 0) {
        ts_db_put64(key + hlen, first);

        rc = mdb_del(txn, db->dbi[TS_DB_POSTINGS], &k, NULL);
        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_del", "pblocks");
        }

        if (n == 0) {
            return TS_OK;
        }
    }

    ts_db_put64(key + hlen, ids[0]);
    v.mv_data = val;
    v.mv_size = ts_db_pblock_encode(ids, n, val);

    rc = mdb_put(txn, db->dbi[TS_DB_POSTINGS], &k, &v, 0);

    return rc ? ts_db_werr(db, rc, "mdb_put", "pblocks") : TS_OK;
}


/* 1 if list head holds id, 0 if not, or an LMDB error (positive). */

static int
ts_db_plist_has(MDB_cursor *cur, const uint8_t *head, size_t hlen,
    uint64_t id)
{
    int       rc;
    uint32_t  i, n;
    uint64_t  ids[TS_DB_PBLOCK_MAX];
    MDB_val   k, v;

    rc = ts_db_pb_find(cur, head, hlen, id, &k, &v);

    if (rc != 0) {
        return rc == MDB_NOTFOUND ? 0 : rc;
    }

    if (ts_db_pblock_decode(ts_db_get64((const uint8_t *) k.mv_data + hlen),
                            v.mv_data, v.mv_size, ids, &n)
        != TS_OK)
    {
        return 0;
    }

    for (i = 0; i < n; i++) {
        if (ids[i] == id) {
            return 1;
        }
    }

    return 0;
}


static int
ts_db_chunk_cmp(const void *a, const void *b)
{
    const ts_db_bchunk_t  *x, *y;

    x = a;
    y = b;

    if (x->id != y->id) {
        return x->id < y->id ? -1 : 1;
    }

    if (x->mint != y->mint) {
        return x->mint < y->mint ? -1 : 1;
    }

    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}


static int
ts_db_apply_chunks(ts_db_t *db, ts_db_apply_t *a)
{
    int              rc;
    uint8_t          key[8];
    uint32_t         i;
    uint64_t         checked;
    MDB_val          k, v;
    MDB_cursor      *cur;
    ts_db_bchunk_t  *c;

    checked = 0;

    for (i = 0; i < a->b->nchunks; i++) {
        c = &a->b->chunks[i];

        if (c->sidx != TS_DB_NONE) {
            c->id = a->b->series[c->sidx].id;
            continue;
        }

        if (c->known == checked) {
            continue;
        }

        ts_db_put64(key, c->known);
        k.mv_data = key;
        k.mv_size = sizeof(key);

        rc = mdb_get(a->txn, db->dbi[TS_DB_SERIES], &k, &v);

        if (rc == MDB_NOTFOUND) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "chunk for series %"
                      PRIu64 ", which does not exist (deleted by retention?),"
                      " file \"%s\"", c->known, db->file);
            return TS_ERR_NOTFOUND;
        }

        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_get", "series");
        }

        checked = c->known;
    }

    /* in key order the B-tree is written page after page */

    if (a->b->nchunks > 1) {
        qsort(a->b->chunks, a->b->nchunks, sizeof(ts_db_bchunk_t),
              ts_db_chunk_cmp);
    }

    /* the greatest key stored: the puts past it append */

    rc = mdb_cursor_open(a->txn, db->dbi[TS_DB_CHUNKS], &cur);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_cursor_open", "chunks");
    }

    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    a->chas = (rc == 0 && k.mv_size == sizeof(a->clast));

    if (a->chas) {
        memcpy(a->clast, k.mv_data, sizeof(a->clast));
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return ts_db_werr(db, rc, "mdb_cursor_get", "chunks");
    }

    for (i = 0; i < a->b->nchunks; i++) {
        rc = ts_db_apply_chunk(db, a, &a->b->chunks[i]);
        if (rc != TS_OK) {
            return rc;
        }
    }

    return TS_OK;
}


/*
 * Puts one chunk.  An overwrite of a chunk whose maxt moved to another
 * retention bucket moves its retention entry along.
 */

static int
ts_db_apply_chunk(ts_db_t *db, ts_db_apply_t *a, const ts_db_bchunk_t *c)
{
    int       rc, found;
    int64_t   ob, nb;
    uint8_t   key[16], bkey[8], *p;
    uint32_t  crc;
    MDB_txn  *txn;
    MDB_val   k, v, rk, rv;

    txn = a->txn;

    ts_db_ckey(key, c->id, c->mint);
    k.mv_data = key;
    k.mv_size = sizeof(key);

    ob = 0;
    found = 0;
    rc = MDB_KEYEXIST;

    /*
     * Past the greatest key stored (the chunks of new series, and new
     * chunks of the series with the greatest ids) nothing can be
     * overwritten: MDB_APPEND, which fills pages instead of splitting
     * them in half.  The sort makes these puts come last, in order; a
     * key put twice in the batch is not greater the second time and
     * takes the ordinary path.
     */

    if (!a->chas || memcmp(key, a->clast, sizeof(key)) > 0) {
        v.mv_data = NULL;
        v.mv_size = TS_DB_CHUNK_HDR + (size_t) c->len;

        rc = mdb_put(txn, db->dbi[TS_DB_CHUNKS], &k, &v,
                     MDB_RESERVE | MDB_APPEND);

        if (rc == 0) {
            memcpy(a->clast, key, sizeof(key));
            a->chas = 1;

        } else if (rc != MDB_KEYEXIST) {
            return ts_db_werr(db, rc, "mdb_put", "chunks");
        }
    }

    if (rc == MDB_KEYEXIST) {
        rc = mdb_get(txn, db->dbi[TS_DB_CHUNKS], &k, &v);

        if (rc == 0 && v.mv_size >= TS_DB_CHUNK_HDR) {
            found = 1;
            ob = ts_db_bucket(ts_db_geti64((const uint8_t *) v.mv_data
                                           + 4));

        } else if (rc != 0 && rc != MDB_NOTFOUND) {
            return ts_db_werr(db, rc, "mdb_get", "chunks");
        }

        v.mv_data = NULL;
        v.mv_size = TS_DB_CHUNK_HDR + (size_t) c->len;

        rc = mdb_put(txn, db->dbi[TS_DB_CHUNKS], &k, &v, MDB_RESERVE);
        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_put", "chunks");
        }
    }

    p = v.mv_data;
    ts_db_puti64(p + 4, c->maxt);
    p[12] = c->encoding;
    memcpy(p + TS_DB_CHUNK_HDR, c->data, c->len);

    crc = ts_crc32c(0, key, sizeof(key));
    ts_db_put32(p, ts_crc32c(crc, p + 4, v.mv_size - 4));

    nb = ts_db_bucket(c->maxt);

    if (found && ob == nb) {
        return TS_OK;
    }

    rk.mv_data = bkey;
    rk.mv_size = sizeof(bkey);
    rv.mv_data = key;
    rv.mv_size = sizeof(key);

    if (found) {
        ts_db_puti64(bkey, ob);

        rc = mdb_del(txn, db->dbi[TS_DB_RETENTION], &rk, &rv);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return ts_db_werr(db, rc, "mdb_del", "retention");
        }
    }

    ts_db_puti64(bkey, nb);

    /* chunk keys come in order: most join the end of their bucket */

    rc = mdb_put(txn, db->dbi[TS_DB_RETENTION], &rk, &rv,
                 MDB_APPENDDUP | MDB_NODUPDATA);

    if (rc == MDB_KEYEXIST) {
        rc = mdb_put(txn, db->dbi[TS_DB_RETENTION], &rk, &rv,
                     MDB_NODUPDATA);
    }

    if (rc != 0 && rc != MDB_KEYEXIST) {
        return ts_db_werr(db, rc, "mdb_put", "retention");
    }

    return TS_OK;
}


static int
ts_db_apply_metas(ts_db_t *db, ts_db_apply_t *a)
{
    int                      rc;
    uint8_t                  key[TS_DB_KEY_MAX], *p;
    uint32_t                 i, tenant;
    MDB_val                  k, v;
    const ts_db_bmeta_t     *m;
    const ts_db_metadata_t  *md;

    for (i = 0; i < a->b->nmetas; i++) {
        m = &a->b->metas[i];
        md = &m->md;

        rc = ts_db_apply_tenant(db, a, m->tenant, m->tlen, &tenant);
        if (rc != TS_OK) {
            return rc;
        }

        k.mv_data = key;
        k.mv_size = ts_db_mkey(key, tenant, md->name, md->name_len);
        v.mv_data = NULL;
        v.mv_size = 1 + ts_db_uvarint_len(md->name_len) + md->name_len
                    + ts_db_uvarint_len(md->unit_len) + md->unit_len
                    + ts_db_uvarint_len(md->help_len) + md->help_len;

        rc = mdb_put(a->txn, db->dbi[TS_DB_METADATA], &k, &v, MDB_RESERVE);
        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_put", "metadata");
        }

        p = v.mv_data;
        *p++ = md->type;
        p += ts_db_uvarint_put(p, md->name_len);
        memcpy(p, md->name, md->name_len);
        p += md->name_len;
        p += ts_db_uvarint_put(p, md->unit_len);
        memcpy(p, md->unit, md->unit_len);
        p += md->unit_len;
        p += ts_db_uvarint_put(p, md->help_len);
        memcpy(p, md->help, md->help_len);
    }

    return TS_OK;
}


/* Keys and records. */

/*
 * Postings key: tenant, kind, then the name (kind N) or name 0x00 value
 * (kind V).  A key that would reach TS_DB_KEY_MAX bytes keeps the first
 * bytes of that string and ends with an XXH64 of it instead, which makes
 * it exactly TS_DB_KEY_MAX bytes long: plain keys are always shorter.
 */

/*
 * A postings list key of at most max bytes: TS_DB_HEAD_MAX for version
 * 2 (the block's first id follows), TS_DB_KEY_MAX for version 1.  A key
 * that would be max bytes or longer is max bytes: head, the first bytes
 * of the string, XXH64 of the whole string.
 */

static size_t
ts_db_pkey(uint8_t *k, size_t max, uint32_t tenant, int kind,
    const char *name, size_t nlen, const char *value, size_t vlen)
{
    size_t    len, room, n, m;
    uint8_t  *p;
    uint64_t  h;

    ts_db_put32(k, tenant);
    k[4] = (uint8_t) kind;
    p = k + TS_DB_PHEAD;

    if (kind == TS_DB_KIND_ALL) {
        return TS_DB_PHEAD;
    }

    len = nlen + (kind == TS_DB_KIND_PAIR ? 1 + vlen : 0);

    if (TS_DB_PHEAD + len < max) {
        if (nlen) {
            memcpy(p, name, nlen);
        }

        if (kind == TS_DB_KIND_PAIR) {
            p[nlen] = 0;

            if (vlen) {
                memcpy(p + nlen + 1, value, vlen);
            }
        }

        return TS_DB_PHEAD + len;
    }

    room = max - TS_DB_PHEAD - 8;
    n = nlen < room ? nlen : room;
    memcpy(p, name, n);

    if (kind == TS_DB_KIND_PAIR && n < room) {
        p[n++] = 0;
        m = vlen < room - n ? vlen : room - n;
        memcpy(p + n, value, m);
    }

    h = ts_xxh64(name, nlen, 0);

    if (kind == TS_DB_KIND_PAIR) {
        h = ts_xxh64(vlen ? value : "", vlen, h);
    }

    ts_db_put64(k + max - 8, h);

    return max;
}


/* Metadata key: tenant, family name; long names as in ts_db_pkey(). */

static size_t
ts_db_mkey(uint8_t *k, uint32_t tenant, const char *name, size_t len)
{
    size_t  room;

    ts_db_put32(k, tenant);

    if (4 + len < TS_DB_KEY_MAX) {
        memcpy(k + 4, name, len);
        return 4 + len;
    }

    room = TS_DB_KEY_MAX - 4 - 8;
    memcpy(k + 4, name, room);
    ts_db_put64(k + TS_DB_KEY_MAX - 8, ts_xxh64(name, len, 0));

    return TS_DB_KEY_MAX;
}


static void
ts_db_ckey(uint8_t *k, uint64_t id, int64_t mint)
{
    ts_db_put64(k, id);
    ts_db_puti64(k + 8, mint);
}


/* Series record: tenant, labels hash, count, (name, value) uvarint
   length-prefixed. */

static size_t
ts_db_series_size(const ts_label_t *l, const uint32_t *ids, uint32_t n)
{
    size_t    size;
    uint32_t  i;

    size = TS_DB_SERIES_HDR;

    for (i = 0; i < n; i++) {
        size += ts_db_uvarint_len(ids[i])
                + ts_db_uvarint_len(l[i].value_len) + l[i].value_len;
    }

    return size;
}


static void
ts_db_series_encode(uint8_t *p, uint32_t tenant, uint64_t hash,
    const ts_label_t *l, const uint32_t *ids, uint32_t n)
{
    uint32_t  i;

    ts_db_put32(p, tenant);
    ts_db_put64(p + 4, hash);
    p[12] = (uint8_t) (n >> 8);
    p[13] = (uint8_t) n;
    p += TS_DB_SERIES_HDR;

    for (i = 0; i < n; i++) {
        p += ts_db_uvarint_put(p, ids[i]);
        p += ts_db_uvarint_put(p, l[i].value_len);
        memcpy(p, l[i].value, l[i].value_len);
        p += l[i].value_len;
    }
}


static int
ts_db_srec_open(ts_db_srec_t *r, const MDB_val *v, MDB_txn *txn,
    MDB_dbi names)
{
    const uint8_t  *p;

    if (v->mv_size < TS_DB_SERIES_HDR) {
        return TS_ERR_CORRUPT;
    }

    r->txn = txn;
    r->names = names;
    r->cache = NULL;

    p = v->mv_data;
    r->tenant = ts_db_get32(p);
    r->hash = ts_db_get64(p + 4);
    r->n = (uint32_t) p[12] << 8 | p[13];
    r->left = r->n;
    r->p = p + TS_DB_SERIES_HDR;
    r->end = p + v->mv_size;

    return TS_OK;
}


/* 1 and the next label, 0 after the last, TS_ERR_CORRUPT. */

static int
ts_db_srec_next(ts_db_srec_t *r, ts_label_t *l)
{
    uint8_t         key[9];
    uint64_t        nlen, vlen, id;
    MDB_val         k, v;
    ts_db_nslot_t  *c;

    if (r->left == 0) {
        return 0;
    }

    if (r->txn != NULL) {

        /* version 2: a name id of the tenant's names in "lnames" */

        if (ts_db_uvarint_get(&r->p, r->end, &id) != 0 || id == 0
            || id > UINT32_MAX)
        {
            return TS_ERR_CORRUPT;
        }

        c = NULL;

        if (r->cache != NULL) {
            c = &r->cache[(id * 31 + r->tenant) % TS_DB_NCACHE];

            if (c->id == id && c->tenant == r->tenant) {
                l->name = c->name;
                l->name_len = c->len;
                nlen = c->len;
                goto value;
            }
        }

        ts_db_put32(key, r->tenant);
        key[4] = 'i';
        ts_db_put32(key + 5, (uint32_t) id);
        k.mv_data = key;
        k.mv_size = sizeof(key);

        if (mdb_get(r->txn, r->names, &k, &v) != 0
            || v.mv_size > UINT32_MAX)
        {
            return TS_ERR_CORRUPT;
        }

        l->name = v.mv_data;
        nlen = v.mv_size;
        l->name_len = (uint32_t) nlen;

        if (c != NULL) {
            c->name = l->name;
            c->len = l->name_len;
            c->tenant = r->tenant;
            c->id = (uint32_t) id;
        }

    } else {
        if (ts_db_uvarint_get(&r->p, r->end, &nlen) != 0
            || nlen > (uint64_t) (r->end - r->p))
        {
            return TS_ERR_CORRUPT;
        }

        l->name = (const char *) r->p;
        l->name_len = (uint32_t) nlen;
        r->p += nlen;
    }

value:

    if (ts_db_uvarint_get(&r->p, r->end, &vlen) != 0
        || vlen > (uint64_t) (r->end - r->p)
        || nlen > UINT32_MAX || vlen > UINT32_MAX)
    {
        return TS_ERR_CORRUPT;
    }

    l->value = (const char *) r->p;
    l->value_len = (uint32_t) vlen;
    r->p += vlen;
    r->left--;

    return 1;
}


static int
ts_db_chunk_decode(const MDB_val *k, const MDB_val *v, ts_db_chunk_t *c,
    const char **why)
{
    uint32_t        crc;
    const uint8_t  *p;

    if (k->mv_size != 16) {
        *why = "a key of a wrong size";
        return TS_ERR_CORRUPT;
    }

    if (v->mv_size < TS_DB_CHUNK_HDR) {
        *why = "a value shorter than its 13-byte header";
        return TS_ERR_CORRUPT;
    }

    p = v->mv_data;
    crc = ts_crc32c(0, k->mv_data, 16);

    if (ts_crc32c(crc, p + 4, v->mv_size - 4) != ts_db_get32(p)) {
        *why = "checksum mismatch";
        return TS_ERR_CORRUPT;
    }

    c->series = ts_db_get64(k->mv_data);
    c->mint = ts_db_geti64((const uint8_t *) k->mv_data + 8);
    c->maxt = ts_db_geti64(p + 4);
    c->encoding = p[12];
    c->data = p + TS_DB_CHUNK_HDR;
    c->len = v->mv_size - TS_DB_CHUNK_HDR;

    return TS_OK;
}


static int
ts_db_meta_decode(const MDB_val *v, ts_db_metadata_t *md)
{
    uint64_t        len;
    const uint8_t  *p, *end;

    p = v->mv_data;
    end = p + v->mv_size;

    if (v->mv_size < 4) {
        return TS_ERR_CORRUPT;
    }

    md->type = *p++;

    if (ts_db_uvarint_get(&p, end, &len) != 0
        || len > (uint64_t) (end - p))
    {
        return TS_ERR_CORRUPT;
    }

    md->name = (const char *) p;
    md->name_len = len;
    p += len;

    if (ts_db_uvarint_get(&p, end, &len) != 0
        || len > (uint64_t) (end - p))
    {
        return TS_ERR_CORRUPT;
    }

    md->unit = (const char *) p;
    md->unit_len = len;
    p += len;

    if (ts_db_uvarint_get(&p, end, &len) != 0
        || len != (uint64_t) (end - p))
    {
        return TS_ERR_CORRUPT;
    }

    md->help = (const char *) p;
    md->help_len = len;

    return TS_OK;
}


/* Read handles. */

int
ts_db_rtxn_begin(ts_db_t *db, ts_db_rtxn_t **tp)
{
    ts_db_rtxn_t  *t;

    t = malloc(sizeof(ts_db_rtxn_t));
    *tp = t;

    if (t == NULL) {
        return TS_ERR_NOMEM;
    }

    t->db = db;
    t->txn = NULL;
    t->active = 0;
    t->errmsg[0] = '\0';

    return ts_db_rtxn_renew(t);
}


void
ts_db_rtxn_reset(ts_db_rtxn_t *t)
{
    if (!t->active) {
        return;
    }

    mdb_txn_reset(t->txn);
    t->active = 0;
    ts_db_gate_leave(t->db);
}


int
ts_db_rtxn_renew(ts_db_rtxn_t *t)
{
    int  rc;

    if (t->active) {
        return TS_OK;
    }

    rc = ts_db_pid_check(t->db, t->errmsg);
    if (rc != TS_OK) {
        return rc;
    }

    return ts_db_rtxn_start(t, t->txn != NULL);
}


void
ts_db_rtxn_abort(ts_db_rtxn_t *t)
{
    if (t == NULL) {
        return;
    }

    if (t->txn != NULL && t->db->pid == getpid()) {
        mdb_txn_abort(t->txn);

        if (t->active) {
            ts_db_gate_leave(t->db);
        }
    }

    free(t);
}


/*
 * Begins (or renews) the snapshot.  MDB_MAP_RESIZED: another process
 * grew the map and committed data beyond ours; adopt its size and
 * begin again.
 */

static int
ts_db_rtxn_start(ts_db_rtxn_t *t, int renew)
{
    int       rc, tries;
    ts_db_t  *db;

    db = t->db;

    for (tries = 0; tries < TS_DB_RETRIES; tries++) {
        ts_db_gate_enter(db);

        rc = renew ? mdb_txn_renew(t->txn)
                   : mdb_txn_begin(db->env, NULL, MDB_RDONLY, &t->txn);

        if (rc == 0) {
            t->active = 1;
            memset(t->names, 0, sizeof(t->names));
            return TS_OK;
        }

        ts_db_gate_leave(db);

        if (renew) {
            mdb_txn_abort(t->txn);
        }

        t->txn = NULL;

        if (rc != MDB_MAP_RESIZED) {
            return ts_db_rerr(t, rc, renew ? "mdb_txn_renew"
                                           : "mdb_txn_begin", NULL);
        }

        rc = ts_db_remap(db, 0, t->errmsg);
        if (rc != TS_OK) {
            return rc;
        }

        (void) __atomic_fetch_add(&db->adopts, 1, __ATOMIC_RELAXED);
        renew = 0;
    }

    ts_db_fmt(t->errmsg, sizeof(t->errmsg), "LMDB read of \"%s\" gave up"
              " after %d map resizes", db->file, TS_DB_RETRIES);

    return TS_ERR_AGAIN;
}


static int
ts_db_cursor(ts_db_rtxn_t *t, int dbi, MDB_cursor **cur)
{
    int  rc;

    *cur = NULL;

    if (!t->active) {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "read handle used while"
                  " reset");
        return TS_ERR_INVALID;
    }

    rc = mdb_cursor_open(t->txn, t->db->dbi[dbi], cur);
    if (rc != 0) {
        *cur = NULL;
        return ts_db_rerr(t, rc, "mdb_cursor_open", ts_db_dbs[dbi].name);
    }

    return TS_OK;
}


/* Tenants and series. */

int
ts_db_tenant(ts_db_rtxn_t *t, const char *name, size_t len, uint32_t *id)
{
    int      rc;
    MDB_val  k, v;

    if (!t->active || len == 0 || len > TS_DB_TENANT_MAX) {
        return TS_ERR_INVALID;
    }

    k.mv_data = (void *) name;
    k.mv_size = len;

    rc = mdb_get(t->txn, t->db->dbi[TS_DB_TENANTS], &k, &v);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? TS_ERR_NOTFOUND
                                  : ts_db_rerr(t, rc, "mdb_get", "tenants");
    }

    if (v.mv_size != 4) {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                  " \"tenants\" at key \"%.*s\": %zu bytes, file \"%s\"",
                  (int) len, name, v.mv_size, t->db->file);
        return TS_ERR_CORRUPT;
    }

    *id = ts_db_get32(v.mv_data);

    return TS_OK;
}


int
ts_db_tenants(ts_db_rtxn_t *t, ts_db_tenant_pt cb, void *data)
{
    int          rc;
    MDB_val      k, v;
    MDB_cursor  *cur;

    rc = ts_db_cursor(t, TS_DB_TENANTS, &cur);
    if (rc != TS_OK) {
        return rc;
    }

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (v.mv_size != 4) {
            ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                      " \"tenants\": %zu bytes, file \"%s\"", v.mv_size,
                      t->db->file);
            rc = TS_ERR_CORRUPT;
            goto done;
        }

        rc = cb(data, k.mv_data, k.mv_size, ts_db_get32(v.mv_data));
        if (rc != 0) {
            goto done;
        }
    }

    rc = rc == MDB_NOTFOUND ? TS_OK
                            : ts_db_rerr(t, rc, "mdb_cursor_get", "tenants");

done:

    mdb_cursor_close(cur);

    return rc;
}


static int
ts_db_series_get(ts_db_rtxn_t *t, uint64_t id, ts_db_srec_t *r)
{
    int      rc;
    uint8_t  key[8];
    MDB_val  k, v;

    if (!t->active) {
        return TS_ERR_INVALID;
    }

    ts_db_put64(key, id);
    k.mv_data = key;
    k.mv_size = sizeof(key);

    rc = mdb_get(t->txn, t->db->dbi[TS_DB_SERIES], &k, &v);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? TS_ERR_NOTFOUND
                                  : ts_db_rerr(t, rc, "mdb_get", "series");
    }

    if (ts_db_srec_open(r, &v, t->txn, t->db->dbi[TS_DB_LNAMES]) != TS_OK) {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                  " \"series\" at key (series %" PRIu64 "): a value of %zu"
                  " bytes, shorter than its %d-byte header, file \"%s\"", id,
                  v.mv_size, TS_DB_SERIES_HDR, t->db->file);
        return TS_ERR_CORRUPT;
    }

    r->cache = t->names;            /* names looked up by this snapshot */

    return TS_OK;
}


int
ts_db_series_find(ts_db_rtxn_t *t, uint32_t tenant, const ts_label_t *l,
    uint32_t n, uint64_t *id)
{
    int          rc;
    uint8_t      key[12];
    MDB_val      k, d;
    MDB_cursor  *cur;

    rc = ts_db_cursor(t, TS_DB_SHASH, &cur);
    if (rc != TS_OK) {
        return rc;
    }

    ts_db_put32(key, tenant);
    ts_db_put64(key + 4, ts_labels_hash(l, n));
    k.mv_data = key;
    k.mv_size = sizeof(key);

    for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_KEY);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT_DUP))
    {
        if (d.mv_size != 8) {
            ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                      " \"series_hash\": a value of %zu bytes, file \"%s\"",
                      d.mv_size, t->db->file);
            rc = TS_ERR_CORRUPT;
            goto done;
        }

        rc = ts_db_series_match(t->db, t->errmsg, t->txn,
                                ts_db_get64(d.mv_data), tenant, l, n);
        if (rc < 0) {
            goto done;
        }

        if (rc == 1) {
            *id = ts_db_get64(d.mv_data);
            rc = TS_OK;
            goto done;
        }
    }

    rc = rc == MDB_NOTFOUND ? TS_ERR_NOTFOUND
                            : ts_db_rerr(t, rc, "mdb_cursor_get",
                                         "series_hash");

done:

    mdb_cursor_close(cur);

    return rc;
}


int
ts_db_series_labels(ts_db_rtxn_t *t, uint64_t id, uint32_t *tenant,
    ts_label_t *out, uint32_t max, uint32_t *n)
{
    int           rc;
    uint32_t      i;
    ts_db_srec_t  r;

    rc = ts_db_series_get(t, id, &r);
    if (rc != TS_OK) {
        return rc;
    }

    *n = r.n;

    if (r.n > max) {
        return TS_ERR_LIMIT;
    }

    if (tenant != NULL) {
        *tenant = r.tenant;
    }

    for (i = 0; i < r.n; i++) {
        if (ts_db_srec_next(&r, &out[i]) != 1) {
            ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                      " \"series\" at key (series %" PRIu64 "): label %u"
                      " runs past the value, file \"%s\"", id, i,
                      t->db->file);
            return TS_ERR_CORRUPT;
        }
    }

    return TS_OK;
}


/* Postings. */

int
ts_db_postings_open(ts_db_rtxn_t *t, ts_db_postings_t *p, uint32_t tenant,
    const char *name, size_t nlen, const char *value, size_t vlen)
{
    int          rc, kind;
    size_t       hlen;
    uint8_t      key[TS_DB_KEY_MAX];
    MDB_val      k, d;
    MDB_cursor  *cur;

    memset(p, 0, sizeof(ts_db_postings_t));
    p->t = t;

    if (name == NULL) {

        /* all series of the tenant: every series has __name__ */

        name = TS_DB_MNAME;
        nlen = TS_DB_MNAME_LEN;
        value = NULL;
    }

    kind = value == NULL ? TS_DB_KIND_NAME : TS_DB_KIND_PAIR;

    rc = ts_db_cursor(t, TS_DB_POSTINGS, &cur);
    if (rc != TS_OK) {
        p->eof = 1;
        return rc;
    }

    p->cur = cur;
    hlen = ts_db_pkey(key, TS_DB_HEAD_MAX, tenant, kind, name, nlen, value,
                      vlen);

    rc = ts_db_pb_fwd(cur, key, hlen, 0, MDB_SET_RANGE, &k, &d);

    if (rc == MDB_NOTFOUND) {
        p->eof = 1;
        return TS_OK;
    }

    if (rc != 0) {
        p->eof = 1;
        return ts_db_rerr(t, rc, "mdb_cursor_get", "pblocks");
    }

    p->head = k.mv_data;
    p->hlen = (uint16_t) hlen;

    return ts_db_postings_load(p, &k, &d);
}


static int
ts_db_postings_bad(ts_db_postings_t *p, const char *why)
{
    ts_db_fmt(p->t->errmsg, sizeof(p->t->errmsg), "corrupt record in"
              " \"pblocks\" at key (tenant %" PRIu32 ", kind '%c', %u bytes,"
              " first id %" PRIu64 "): %s, file \"%s\"",
              ts_db_get32(p->head), p->head[4], p->hlen - TS_DB_PHEAD,
              p->first, why, p->t->db->file);

    p->eof = 1;

    return TS_ERR_CORRUPT;
}


/* Makes the block under the cursor the current one. */

static int
ts_db_postings_load(ts_db_postings_t *p, const MDB_val *k, const MDB_val *d)
{
    uint32_t        c;
    const uint8_t  *q;

    p->first = ts_db_get64((const uint8_t *) k->mv_data + p->hlen);
    q = d->mv_data;
    p->end = q + d->mv_size;

    if (ts_db_pb_count(&q, p->end, &c) != 0) {
        return ts_db_postings_bad(p, "bad count");
    }

    p->p = q;
    p->last = p->first;
    p->left = c;
    p->fresh = 1;

    return TS_OK;
}


/* The next id of the current block: 1, 0 when it has none left. */

static int
ts_db_postings_step(ts_db_postings_t *p, uint64_t *id)
{
    if (p->fresh) {
        p->fresh = 0;
        p->left--;
        *id = p->last;
        return 1;
    }

    if (p->left == 0) {
        return p->p == p->end ? 0 : ts_db_postings_bad(p, "bytes left over");
    }

    if (ts_db_pb_delta(&p->p, p->end, &p->last) != 0) {
        return ts_db_postings_bad(p, "bad delta");
    }

    p->left--;
    *id = p->last;

    return 1;
}


int
ts_db_postings_next(ts_db_postings_t *p, uint64_t *id)
{
    int       rc;
    uint64_t  prev;
    MDB_val   k, d;

    if (p->eof) {
        return 0;
    }

    for ( ;; ) {
        rc = ts_db_postings_step(p, id);
        if (rc != 0) {
            return rc;
        }

        rc = ts_db_pb_fwd(p->cur, p->head, p->hlen, 0, MDB_NEXT, &k, &d);

        if (rc == MDB_NOTFOUND) {
            p->eof = 1;
            return 0;
        }

        if (rc != 0) {
            p->eof = 1;
            return ts_db_rerr(p->t, rc, "mdb_cursor_get", "pblocks");
        }

        prev = p->last;

        rc = ts_db_postings_load(p, &k, &d);
        if (rc != TS_OK) {
            return rc;
        }

        if (p->first <= prev) {
            return ts_db_postings_bad(p, "ids not ascending across blocks");
        }
    }
}


/* Reads the current block up to the first id >= target: 1, 0, error. */

static int
ts_db_postings_scan(ts_db_postings_t *p, uint64_t target, uint64_t *id)
{
    int  rc;

    for ( ;; ) {
        if (p->fresh && p->last >= target) {
            return ts_db_postings_step(p, id);
        }

        rc = ts_db_postings_step(p, id);

        if (rc != 1 || *id >= target) {
            return rc;
        }
    }
}


int
ts_db_postings_seek(ts_db_postings_t *p, uint64_t target, uint64_t *id)
{
    int      rc;
    MDB_val  k, d;

    if (p->eof) {
        return 0;
    }

    if (!p->fresh && target <= p->last) {
        if (p->last == UINT64_MAX) {
            return ts_db_postings_next(p, id);
        }

        target = p->last + 1;           /* never backwards */
    }

    rc = ts_db_postings_scan(p, target, id);
    if (rc != 0) {
        return rc;
    }

    /* not in this block: let the B-tree find the block that holds it */

    rc = ts_db_pb_find(p->cur, p->head, p->hlen, target, &k, &d);

    if (rc == MDB_NOTFOUND) {
        rc = ts_db_pb_fwd(p->cur, p->head, p->hlen, target, MDB_SET_RANGE,
                          &k, &d);
        if (rc == MDB_NOTFOUND) {
            p->eof = 1;
            return 0;
        }
    }

    if (rc != 0) {
        p->eof = 1;
        return ts_db_rerr(p->t, rc, "mdb_cursor_get", "pblocks");
    }

    rc = ts_db_postings_load(p, &k, &d);
    if (rc != TS_OK) {
        return rc;
    }

    rc = ts_db_postings_scan(p, target, id);
    if (rc != 0) {
        return rc;
    }

    return ts_db_postings_next(p, id);
}


void
ts_db_postings_close(ts_db_postings_t *p)
{
    if (p->cur != NULL) {
        mdb_cursor_close(p->cur);
        p->cur = NULL;
    }

    p->eof = 1;
}


/*
 * Label names and values: the list keys under (tenant, 'N') and
 * (tenant, 'V', name 0x00), each list once (a list has one key per
 * block).
 */

int
ts_db_label_names(ts_db_rtxn_t *t, uint32_t tenant, ts_db_str_pt cb,
    void *data)
{
    int             rc;
    size_t          len, hlen, plen;
    uint8_t         prefix[TS_DB_PHEAD];
    MDB_val         k, d;
    MDB_cursor     *cur;
    const char     *s;
    const uint8_t  *prev;

    rc = ts_db_cursor(t, TS_DB_POSTINGS, &cur);
    if (rc != TS_OK) {
        return rc;
    }

    ts_db_put32(prefix, tenant);
    prefix[4] = TS_DB_KIND_NAME;
    k.mv_data = prefix;
    k.mv_size = sizeof(prefix);
    prev = NULL;
    plen = 0;

    for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT))
    {
        if (k.mv_size < TS_DB_PHEAD
            || memcmp(k.mv_data, prefix, TS_DB_PHEAD) != 0)
        {
            break;
        }

        if (k.mv_size < TS_DB_PHEAD + 8) {
            rc = ts_db_resolve_bad(t, "a key too short for a block");
            goto done;
        }

        hlen = k.mv_size - 8;

        if (prev != NULL && hlen == plen && memcmp(prev, k.mv_data, hlen) == 0)
        {
            continue;
        }

        prev = k.mv_data;
        plen = hlen;

        if (hlen < TS_DB_HEAD_MAX) {
            s = (const char *) k.mv_data + TS_DB_PHEAD;
            len = hlen - TS_DB_PHEAD;

        } else {
            rc = ts_db_resolve(t, &k, NULL, 0, &s, &len);
            if (rc != TS_OK) {
                goto done;
            }
        }

        rc = cb(data, s, len);
        if (rc != 0) {
            goto done;
        }
    }

    rc = (rc == 0 || rc == MDB_NOTFOUND)
         ? TS_OK : ts_db_rerr(t, rc, "mdb_cursor_get", "pblocks");

done:

    mdb_cursor_close(cur);

    return rc;
}


int
ts_db_label_values(ts_db_rtxn_t *t, uint32_t tenant, const char *name,
    size_t nlen, ts_db_str_pt cb, void *data)
{
    int             rc;
    size_t          plen, len, hlen, prevlen;
    uint8_t         prefix[TS_DB_KEY_MAX];
    MDB_val         k, d;
    MDB_cursor     *cur;
    const char     *s;
    const uint8_t  *prev;

    rc = ts_db_cursor(t, TS_DB_POSTINGS, &cur);
    if (rc != TS_OK) {
        return rc;
    }

    /*
     * The bytes every list key of this name starts with: a hashed key
     * keeps only its first TS_DB_HEAD_MAX - 8 bytes, plain or hashed.
     */

    plen = ts_db_pkey(prefix, TS_DB_HEAD_MAX, tenant, TS_DB_KIND_PAIR, name,
                      nlen, "", 0);
    if (plen > TS_DB_HEAD_MAX - 8) {
        plen = TS_DB_HEAD_MAX - 8;
    }

    k.mv_data = prefix;
    k.mv_size = plen;
    prev = NULL;
    prevlen = 0;

    for (rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT))
    {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0) {
            break;
        }

        if (k.mv_size < TS_DB_PHEAD + 8) {
            rc = ts_db_resolve_bad(t, "a key too short for a block");
            goto done;
        }

        hlen = k.mv_size - 8;

        if (prev != NULL && hlen == prevlen
            && memcmp(prev, k.mv_data, hlen) == 0)
        {
            continue;
        }

        prev = k.mv_data;
        prevlen = hlen;

        if (hlen < TS_DB_HEAD_MAX) {
            if (hlen < TS_DB_PHEAD + nlen + 1
                || memcmp((uint8_t *) k.mv_data + TS_DB_PHEAD, name, nlen)
                || ((uint8_t *) k.mv_data)[TS_DB_PHEAD + nlen] != 0)
            {
                continue;
            }

            s = (const char *) k.mv_data + TS_DB_PHEAD + nlen + 1;
            len = hlen - TS_DB_PHEAD - nlen - 1;

        } else {
            rc = ts_db_resolve(t, &k, name, nlen, &s, &len);

            if (rc == TS_ERR_NOTFOUND) {
                continue;
            }

            if (rc != TS_OK) {
                goto done;
            }
        }

        rc = cb(data, s, len);
        if (rc != 0) {
            goto done;
        }
    }

    rc = (rc == 0 || rc == MDB_NOTFOUND)
         ? TS_OK : ts_db_rerr(t, rc, "mdb_cursor_get", "pblocks");

done:

    mdb_cursor_close(cur);

    return rc;
}


static int
ts_db_resolve_bad(ts_db_rtxn_t *t, const char *why)
{
    ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in \"pblocks\":"
              " %s, file \"%s\"", why, t->db->file);

    return TS_ERR_CORRUPT;
}


/*
 * The string behind a hashed list key (a block key of TS_DB_KEY_MAX
 * bytes), from the labels of the block's first series.  For kind V with
 * name set, only that name's value may match; TS_ERR_NOTFOUND then
 * means the key is another name's.
 */

static int
ts_db_resolve(ts_db_rtxn_t *t, const MDB_val *k, const char *name,
    size_t nlen, const char **s, size_t *len)
{
    int           rc, kind;
    uint8_t       key[TS_DB_KEY_MAX];
    uint64_t      id;
    ts_label_t    l;
    ts_db_srec_t  r;

    kind = ((const uint8_t *) k->mv_data)[4];
    id = ts_db_get64((const uint8_t *) k->mv_data + TS_DB_HEAD_MAX);

    rc = ts_db_series_get(t, id, &r);
    if (rc == TS_ERR_NOTFOUND) {
        goto corrupt;
    }

    if (rc != TS_OK) {
        return rc;
    }

    while ((rc = ts_db_srec_next(&r, &l)) == 1) {
        if (name && (l.name_len != nlen || memcmp(l.name, name, nlen))) {
            continue;
        }

        if (ts_db_pkey(key, TS_DB_HEAD_MAX, r.tenant, kind, l.name,
                       l.name_len, l.value, l.value_len) == TS_DB_HEAD_MAX
            && memcmp(key, k->mv_data, TS_DB_HEAD_MAX) == 0)
        {
            *s = kind == TS_DB_KIND_NAME ? l.name : l.value;
            *len = kind == TS_DB_KIND_NAME ? l.name_len : l.value_len;
            return TS_OK;
        }
    }

    if (rc == 0 && name) {
        return TS_ERR_NOTFOUND;
    }

corrupt:

    return ts_db_resolve_bad(t, "a long key whose first series does not"
                             " hold its label");
}


/* Chunks. */

int
ts_db_chunks_open(ts_db_rtxn_t *t, ts_db_chunks_t *it, uint64_t id,
    int64_t mint, int64_t maxt)
{
    int          rc;
    MDB_cursor  *cur;

    memset(it, 0, sizeof(ts_db_chunks_t));
    it->t = t;
    it->series = id;
    it->mint = mint;
    it->maxt = maxt;
    it->eof = (mint > maxt);

    rc = ts_db_cursor(t, TS_DB_CHUNKS, &cur);
    it->cur = cur;

    return rc;
}


int
ts_db_chunks_next(ts_db_chunks_t *it, ts_db_chunk_t *c)
{
    int          rc;
    MDB_val      k, d;
    const char  *why;

    if (it->eof) {
        return 0;
    }

    if (!it->started) {
        it->started = 1;
        rc = ts_db_chunks_start(it, &k, &d);

    } else {
        rc = mdb_cursor_get(it->cur, &k, &d, MDB_NEXT);
    }

    for ( ;; ) {
        if (rc == MDB_NOTFOUND) {
            it->eof = 1;
            return 0;
        }

        if (rc != 0) {
            return ts_db_rerr(it->t, rc, "mdb_cursor_get", "chunks");
        }

        if (ts_db_chunk_decode(&k, &d, c, &why) != TS_OK) {
            return ts_db_chunk_bad(it->t, &k, why);
        }

        if (c->series > it->series
            || (c->series == it->series && c->mint > it->maxt))
        {
            it->eof = 1;
            return 0;
        }

        if (c->series == it->series && c->maxt >= it->mint) {
            return 1;
        }

        rc = mdb_cursor_get(it->cur, &k, &d, MDB_NEXT);
    }
}


/*
 * Positions the cursor on the first chunk that may overlap: chunks are
 * keyed by mint, so walk back from the first one starting at or after
 * mint while the previous one still ends at or after mint.
 */

static int
ts_db_chunks_start(ts_db_chunks_t *it, MDB_val *k, MDB_val *d)
{
    int      rc;
    uint8_t  key[16];

    ts_db_ckey(key, it->series, it->mint);
    k->mv_data = key;
    k->mv_size = sizeof(key);

    rc = mdb_cursor_get(it->cur, k, d, MDB_SET_RANGE);

    if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(it->cur, k, d, MDB_LAST);
        if (rc != 0) {
            return rc;
        }

    } else if (rc != 0) {
        return rc;

    } else {
        rc = mdb_cursor_get(it->cur, k, d, MDB_PREV);
        if (rc != 0) {
            return rc == MDB_NOTFOUND
                   ? mdb_cursor_get(it->cur, k, d, MDB_FIRST) : rc;
        }
    }

    for ( ;; ) {
        if (k->mv_size != 16 || d->mv_size < TS_DB_CHUNK_HDR
            || ts_db_get64(k->mv_data) != it->series
            || ts_db_geti64((const uint8_t *) d->mv_data + 4) < it->mint)
        {
            return 0;
        }

        rc = mdb_cursor_get(it->cur, k, d, MDB_PREV);
        if (rc != 0) {
            return rc == MDB_NOTFOUND
                   ? mdb_cursor_get(it->cur, k, d, MDB_FIRST) : rc;
        }
    }
}


static int
ts_db_chunk_bad(ts_db_rtxn_t *t, const MDB_val *k, const char *why)
{
    if (k->mv_size == 16) {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                  " \"chunks\" at key (series %" PRIu64 ", mint %" PRId64
                  "): %s, file \"%s\"", ts_db_get64(k->mv_data),
                  ts_db_geti64((const uint8_t *) k->mv_data + 8), why,
                  t->db->file);

    } else {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                  " \"chunks\": a key of %zu bytes, file \"%s\"", k->mv_size,
                  t->db->file);
    }

    return TS_ERR_CORRUPT;
}


void
ts_db_chunks_close(ts_db_chunks_t *it)
{
    if (it->cur != NULL) {
        mdb_cursor_close(it->cur);
        it->cur = NULL;
    }

    it->eof = 1;
}


/* Metadata. */

int
ts_db_metadata_get(ts_db_rtxn_t *t, uint32_t tenant, const char *name,
    size_t len, ts_db_metadata_t *md)
{
    int      rc;
    uint8_t  key[TS_DB_KEY_MAX];
    MDB_val  k, v;

    if (!t->active) {
        return TS_ERR_INVALID;
    }

    k.mv_data = key;
    k.mv_size = ts_db_mkey(key, tenant, name, len);

    rc = mdb_get(t->txn, t->db->dbi[TS_DB_METADATA], &k, &v);
    if (rc != 0) {
        return rc == MDB_NOTFOUND ? TS_ERR_NOTFOUND
                                  : ts_db_rerr(t, rc, "mdb_get", "metadata");
    }

    if (ts_db_meta_decode(&v, md) != TS_OK) {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                  " \"metadata\" at key \"%.*s\": %zu bytes, file \"%s\"",
                  (int) (len < 64 ? len : 64), name, v.mv_size,
                  t->db->file);
        return TS_ERR_CORRUPT;
    }

    if (md->name_len != len || memcmp(md->name, name, len) != 0) {
        return TS_ERR_NOTFOUND;
    }

    return TS_OK;
}


int
ts_db_metadata_list(ts_db_rtxn_t *t, uint32_t tenant, ts_db_metadata_pt cb,
    void *data)
{
    int               rc;
    uint8_t           prefix[4];
    MDB_val           k, v;
    MDB_cursor       *cur;
    ts_db_metadata_t  md;

    rc = ts_db_cursor(t, TS_DB_METADATA, &cur);
    if (rc != TS_OK) {
        return rc;
    }

    ts_db_put32(prefix, tenant);
    k.mv_data = prefix;
    k.mv_size = sizeof(prefix);

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size < 4 || memcmp(k.mv_data, prefix, 4) != 0) {
            break;
        }

        if (ts_db_meta_decode(&v, &md) != TS_OK) {
            ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                      " \"metadata\": %zu bytes, file \"%s\"", v.mv_size,
                      t->db->file);
            rc = TS_ERR_CORRUPT;
            goto done;
        }

        rc = cb(data, &md);
        if (rc != 0) {
            goto done;
        }
    }

    rc = (rc == 0 || rc == MDB_NOTFOUND)
         ? TS_OK : ts_db_rerr(t, rc, "mdb_cursor_get", "metadata");

done:

    mdb_cursor_close(cur);

    return rc;
}


/* Retention. */

int
ts_db_retention(ts_db_t *db, int64_t cutoff, size_t max_keys,
    ts_db_retention_t *st)
{
    int          rc;
    ts_db_ret_t  r;

    memset(st, 0, sizeof(ts_db_retention_t));

    (void) pthread_mutex_lock(&db->wlock);

    rc = ts_db_pid_check(db, db->errmsg);

    if (rc == TS_OK) {
        r.limit = ts_db_bucket(cutoff);
        r.max_keys = max_keys ? max_keys : 1;
        r.st = st;

        rc = ts_db_write(db, ts_db_ret_txn, &r,
                         db->map_max + db->map_max / 16 / db->page
                                       * db->page);
    }

    (void) pthread_mutex_unlock(&db->wlock);

    if (rc != TS_OK) {
        memset(st, 0, sizeof(ts_db_retention_t));
    }

    return rc;
}


/*
 * Takes the oldest retention entry again after every deletion: a fresh
 * MDB_FIRST is one B-tree descent and never depends on where a deleting
 * cursor ends up.
 */

static int
ts_db_ret_txn(ts_db_t *db, MDB_txn *txn, void *data)
{
    int           rc;
    uint8_t       ckey[16];
    MDB_val       k, v;
    ts_db_ret_t  *r;

    r = data;
    r->txn = txn;
    memset(r->st, 0, sizeof(ts_db_retention_t));

    rc = mdb_cursor_open(txn, db->dbi[TS_DB_RETENTION], &r->rcur);

    if (rc == 0) {
        rc = mdb_cursor_open(txn, db->dbi[TS_DB_CHUNKS], &r->ccur);
    }

    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_cursor_open", NULL);
    }

    for ( ;; ) {
        rc = mdb_cursor_get(r->rcur, &k, &v, MDB_FIRST);

        if (rc == MDB_NOTFOUND) {
            return TS_OK;
        }

        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_cursor_get", "retention");
        }

        if (k.mv_size != 8 || v.mv_size != 16) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "corrupt record in"
                      " \"retention\": a %zu-byte key with a %zu-byte value,"
                      " file \"%s\"", k.mv_size, v.mv_size, db->file);
            return TS_ERR_CORRUPT;
        }

        if (ts_db_geti64(k.mv_data) >= r->limit) {
            return TS_OK;
        }

        if (r->st->keys >= r->max_keys) {
            r->st->more = 1;
            return TS_OK;
        }

        memcpy(ckey, v.mv_data, sizeof(ckey));

        rc = mdb_cursor_del(r->rcur, 0);
        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_cursor_del", "retention");
        }

        r->st->keys++;

        k.mv_data = ckey;
        k.mv_size = sizeof(ckey);

        rc = ts_db_ret_one(db, r, &k);
        if (rc != TS_OK) {
            return rc;
        }
    }
}


/* Deletes the chunk of one retention entry, then its series if it was
   the last chunk. */

static int
ts_db_ret_one(ts_db_t *db, ts_db_ret_t *r, const MDB_val *ck)
{
    int       rc;
    uint8_t   key[16];
    uint64_t  id;
    MDB_val   k, v;

    rc = mdb_get(r->txn, db->dbi[TS_DB_CHUNKS], (MDB_val *) ck, &v);

    if (rc == MDB_NOTFOUND) {
        return TS_OK;
    }

    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_get", "chunks");
    }

    /* an overwrite moved the chunk to a newer bucket: keep it */

    if (v.mv_size >= TS_DB_CHUNK_HDR
        && ts_db_bucket(ts_db_geti64((const uint8_t *) v.mv_data + 4))
           >= r->limit)
    {
        return TS_OK;
    }

    rc = mdb_del(r->txn, db->dbi[TS_DB_CHUNKS], (MDB_val *) ck, NULL);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_del", "chunks");
    }

    r->st->keys++;
    r->st->chunks++;

    id = ts_db_get64(ck->mv_data);
    ts_db_ckey(key, id, INT64_MIN);
    k.mv_data = key;
    k.mv_size = sizeof(key);

    rc = mdb_cursor_get(r->ccur, &k, &v, MDB_SET_RANGE);

    if (rc == 0 && k.mv_size >= 8 && ts_db_get64(k.mv_data) == id) {
        return TS_OK;
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return ts_db_werr(db, rc, "mdb_cursor_get", "chunks");
    }

    return ts_db_series_delete(db, r->txn, id, r->st);
}


/*
 * Deletes a series with its hash entry and postings.  The record is
 * copied first: values read in a write transaction may move with the
 * next update.  A record too corrupt to name its postings is deleted
 * alone; readers skip postings ids without a series.
 */

static int
ts_db_series_delete(ts_db_t *db, MDB_txn *txn, uint64_t id,
    ts_db_retention_t *st)
{
    int           rc;
    size_t        hlen;
    uint8_t       key[12], idb[8], stack[4096], *copy;
    uint8_t       head[TS_DB_HEAD_MAX];
    MDB_val       k, v;
    MDB_cursor   *cur;
    ts_label_t    l;
    ts_db_srec_t  r;

    ts_db_put64(idb, id);
    k.mv_data = idb;
    k.mv_size = sizeof(idb);

    rc = mdb_get(txn, db->dbi[TS_DB_SERIES], &k, &v);

    if (rc == MDB_NOTFOUND) {
        return TS_OK;
    }

    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_get", "series");
    }

    copy = v.mv_size <= sizeof(stack) ? stack : malloc(v.mv_size);
    if (copy == NULL) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "out of memory");
        return TS_ERR_NOMEM;
    }

    memcpy(copy, v.mv_data, v.mv_size);
    v.mv_data = copy;

    rc = mdb_cursor_open(txn, db->dbi[TS_DB_POSTINGS], &cur);
    if (rc != 0) {
        if (copy != stack) {
            free(copy);
        }

        return ts_db_werr(db, rc, "mdb_cursor_open", "pblocks");
    }

    rc = TS_OK;

    if (ts_db_srec_open(&r, &v, txn, db->dbi[TS_DB_LNAMES]) == TS_OK) {
        while (rc == TS_OK && ts_db_srec_next(&r, &l) == 1) {
            hlen = ts_db_pkey(head, TS_DB_HEAD_MAX, r.tenant,
                              TS_DB_KIND_NAME, l.name, l.name_len, NULL, 0);
            rc = ts_db_plist_del(db, txn, cur, head, hlen, id);

            if (rc == TS_OK) {
                hlen = ts_db_pkey(head, TS_DB_HEAD_MAX, r.tenant,
                                  TS_DB_KIND_PAIR, l.name, l.name_len,
                                  l.value, l.value_len);
                rc = ts_db_plist_del(db, txn, cur, head, hlen, id);
            }

            st->keys += 2;
        }

        ts_db_put32(key, r.tenant);
        ts_db_put64(key + 4, r.hash);
        k.mv_data = key;
        k.mv_size = sizeof(key);
        v.mv_data = idb;
        v.mv_size = sizeof(idb);

        if (rc == TS_OK) {
            rc = mdb_del(txn, db->dbi[TS_DB_SHASH], &k, &v);
            rc = (rc == 0 || rc == MDB_NOTFOUND)
                 ? TS_OK : ts_db_werr(db, rc, "mdb_del", "series_hash");
        }
    }

    mdb_cursor_close(cur);

    if (copy != stack) {
        free(copy);
    }

    if (rc != TS_OK) {
        return rc;
    }

    k.mv_data = idb;
    k.mv_size = sizeof(idb);

    rc = mdb_del(txn, db->dbi[TS_DB_SERIES], &k, NULL);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_del", "series");
    }

    st->keys += 2;
    st->series++;

    return TS_OK;
}


/*
 * Migration from format version 1 (docs/format/lmdb.md): the postings
 * of "postings" (DUPSORT lists of 8-byte ids, an 'A' list per tenant)
 * become blocks in "pblocks" ('A' dropped), migrate_step ids per write
 * transaction, with the position reached in meta "migrate" in the same
 * transaction.  The transaction that converts the last id also drops
 * "postings", deletes "migrate" and writes the version-2 format record,
 * so a crash anywhere leaves a version-1 index with a consistent
 * "postings" and a resumable "pblocks".  One process at a time: an
 * exclusive flock() on index/migrate.lock; the others wait for it and
 * then find version 2.
 */

static int
ts_db_migrate(ts_db_t *db)
{
    int              fd, rc;
    char             path[PATH_MAX];
    ts_db_migrate_t  m;

    ts_db_fmt(path, sizeof(path), "%s/%s", db->dir, TS_DB_MIGRATE_LOCK);

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd == -1) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "open(\"%s\") failed: %s",
                  path, strerror(errno));
        return TS_ERR_IO;
    }

    while (flock(fd, LOCK_EX) == -1) {
        if (errno != EINTR) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "flock(\"%s\")"
                      " failed: %s", path, strerror(errno));
            (void) close(fd);
            return TS_ERR_IO;
        }
    }

    memset(&m, 0, sizeof(ts_db_migrate_t));

    do {
        rc = ts_db_write(db, ts_db_migrate_txn, &m,
                         db->map_max + db->map_max / 16);
        m.steps++;
    } while (rc == TS_OK && !m.done);

    ts_db_padds_free(&m.padds);

    (void) close(fd);                   /* releases the lock */

    return rc;
}


static int
ts_db_migrate_txn(ts_db_t *db, MDB_txn *txn, void *data)
{
    int               rc, kind, skip, stopped;
    size_t            klen, hlen, plen;
    uint8_t           ckey[TS_DB_KEY_MAX], head[TS_DB_HEAD_MAX];
    uint8_t           fmt[TS_DB_FORMAT_LEN], prog[8 + TS_DB_KEY_MAX];
    uint8_t           idb[8];
    uint64_t          n, last, id;
    unsigned          flags;
    MDB_val           k, v, mk;
    MDB_dbi           old;
    MDB_cursor       *cur;
    ts_db_migrate_t  *m;

    m = data;
    m->padds.n = 0;
    m->padds.used = 0;

    rc = mdb_dbi_open(txn, "meta", 0, &db->dbi[TS_DB_META]);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_dbi_open", "meta");
    }

    k.mv_data = "format";
    k.mv_size = sizeof("format") - 1;

    rc = mdb_get(txn, db->dbi[TS_DB_META], &k, &v);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_get", "meta");
    }

    rc = ts_db_format_check(db, &v);
    if (rc != TS_OK) {
        return rc;
    }

    if (db->version == TS_DB_VERSION) {
        m->done = 1;                    /* another process finished it */
        return TS_OK;
    }

    memcpy(fmt, v.mv_data, TS_DB_FORMAT_LEN);

    rc = mdb_dbi_open(txn, ts_db_dbs[TS_DB_LNAMES].name, MDB_CREATE,
                      &db->dbi[TS_DB_LNAMES]);
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "series", 0, &db->dbi[TS_DB_SERIES]);
    }

    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_dbi_open", "lnames");
    }

    rc = mdb_dbi_open(txn, TS_DB_V1_POSTINGS, 0, &old);

    if (rc == MDB_NOTFOUND) {
        return ts_db_migrate_series(db, txn, m, fmt);  /* phase 2 */
    }

    if (rc == 0 && (mdb_dbi_flags(txn, old, &flags) != 0
                    || (flags & TS_DB_DBFLAGS) != TS_DB_V1_PFLAGS))
    {
        rc = MDB_INCOMPATIBLE;
    }

    if (rc != 0) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "version-1 index \"%s\":"
                  " sub-database \"postings\" is missing or has other"
                  " flags (%s)", db->file, mdb_strerror(rc));
        return TS_ERR_CORRUPT;
    }

    rc = mdb_dbi_open(txn, ts_db_dbs[TS_DB_POSTINGS].name, MDB_CREATE,
                      &db->dbi[TS_DB_POSTINGS]);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_dbi_open", "pblocks");
    }

    rc = mdb_cursor_open(txn, old, &cur);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_cursor_open", "postings");
    }

    /* where the last step stopped: (last id, v1 key) */

    mk.mv_data = TS_DB_MIGRATE_KEY;
    mk.mv_size = sizeof(TS_DB_MIGRATE_KEY) - 1;

    rc = mdb_get(txn, db->dbi[TS_DB_META], &mk, &v);

    if (rc == 0) {
        if (v.mv_size <= 8 + TS_DB_PHEAD || v.mv_size > sizeof(prog)) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "corrupt record in"
                      " \"meta\" at key \"migrate\": %zu bytes, file \"%s\"",
                      v.mv_size, db->file);
            rc = TS_ERR_CORRUPT;
            goto done;
        }

        memcpy(prog, v.mv_data, v.mv_size);
        plen = v.mv_size - 8;
        last = ts_db_get64(prog);
        k.mv_data = prog + 8;
        k.mv_size = plen;

        rc = MDB_NOTFOUND;

        if (last < UINT64_MAX) {
            ts_db_put64(idb, last + 1);
            v.mv_data = idb;
            v.mv_size = 8;

            rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
        }

        if (rc == MDB_NOTFOUND) {

            /* that list is done: go on with the next one */

            k.mv_data = prog + 8;
            k.mv_size = plen;

            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);

            if (rc == 0 && k.mv_size == plen
                && memcmp(k.mv_data, prog + 8, plen) == 0)
            {
                rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP);
            }
        }

    } else if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);

    } else {
        rc = ts_db_werr(db, rc, "mdb_get", "meta");
        goto done;
    }

    n = 0;
    klen = 0;
    hlen = 0;
    last = 0;
    skip = 0;
    stopped = 0;

    while (rc == 0) {
        if (k.mv_size != klen || memcmp(k.mv_data, ckey, klen) != 0) {

            /* the next list: stop here if the step is full */

            if (k.mv_size < TS_DB_PHEAD || k.mv_size > TS_DB_KEY_MAX) {
                goto corrupt;
            }

            if (n >= db->migrate_step) {
                stopped = 1;
                break;
            }

            memcpy(ckey, k.mv_data, k.mv_size);
            klen = k.mv_size;
            kind = ckey[4];
            skip = (kind == TS_DB_KIND_ALL);

            if (!skip) {
                if (v.mv_size != 8) {
                    goto corrupt;
                }

                rc = ts_db_migrate_head(db, txn, ckey, klen,
                                        ts_db_get64(v.mv_data), head, &hlen);
                if (rc != TS_OK) {
                    goto done;
                }
            }
        }

        if (skip) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP);
            continue;
        }

        if (n >= db->migrate_step) {
            stopped = 1;
            break;
        }

        if (v.mv_size != 8) {
            goto corrupt;
        }

        id = ts_db_get64(v.mv_data);

        rc = ts_db_padd(db, &m->padds, head, hlen, id);
        if (rc != TS_OK) {
            goto done;
        }

        last = id;
        n++;

        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        rc = ts_db_werr(db, rc, "mdb_cursor_get", "postings");
        goto done;
    }

    mdb_cursor_close(cur);
    cur = NULL;

    m->ids += n;

    rc = ts_db_padds_flush(db, txn, &m->padds);
    if (rc != TS_OK) {
        goto done;
    }

    if (stopped) {

        /* not finished: remember where this step stopped */

        ts_db_put64(prog, last);
        memcpy(prog + 8, ckey, klen);
        v.mv_data = prog;
        v.mv_size = 8 + klen;

        rc = mdb_put(txn, db->dbi[TS_DB_META], &mk, &v, 0);

        return rc ? ts_db_werr(db, rc, "mdb_put", "meta") : TS_OK;
    }

    /* phase 1 done: the series records are next */

    rc = mdb_drop(txn, old, 1);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_drop", "postings");
    }

    rc = mdb_del(txn, db->dbi[TS_DB_META], &mk, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return ts_db_werr(db, rc, "mdb_del", "meta");
    }

    return TS_OK;

corrupt:

    ts_db_fmt(db->errmsg, sizeof(db->errmsg), "corrupt record in"
              " \"postings\" (version 1): a %zu-byte key or a %zu-byte id,"
              " file \"%s\"", k.mv_size, v.mv_size, db->file);
    rc = TS_ERR_CORRUPT;

done:

    if (cur != NULL) {
        mdb_cursor_close(cur);
    }

    return rc;
}


/*
 * Phase 2: series records with label names in the record become records
 * with name ids ("lnames"), in id order, migrate_step records a
 * transaction; meta "migrate_series" holds the last id converted.  The
 * step that converts the last one writes the version-2 format record.
 */

static int
ts_db_migrate_series(ts_db_t *db, MDB_txn *txn, ts_db_migrate_t *m,
    uint8_t *fmt)
{
    int           rc;
    size_t        size;
    uint8_t       idb[8], *copy, *rec;
    uint32_t      i, n, sids[64], *ids;
    uint64_t      last, count;
    MDB_val       k, v, mk;
    MDB_cursor   *cur;
    ts_label_t    sl[64], *l;
    ts_db_srec_t  r;

    mk.mv_data = TS_DB_MIGRATE_SKEY;
    mk.mv_size = sizeof(TS_DB_MIGRATE_SKEY) - 1;

    rc = mdb_get(txn, db->dbi[TS_DB_META], &mk, &v);

    if (rc == 0 && v.mv_size == 8) {
        last = ts_db_get64(v.mv_data);

    } else if (rc == MDB_NOTFOUND) {
        last = 0;

    } else {
        return rc ? ts_db_werr(db, rc, "mdb_get", "meta") : TS_ERR_CORRUPT;
    }

    rc = mdb_cursor_open(txn, db->dbi[TS_DB_SERIES], &cur);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_cursor_open", "series");
    }

    copy = NULL;
    rec = NULL;
    l = sl;
    ids = sids;
    count = 0;
    rc = 0;

    while (count < db->migrate_step && last < UINT64_MAX) {
        ts_db_put64(idb, last + 1);
        k.mv_data = idb;
        k.mv_size = 8;

        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc != 0) {
            break;
        }

        if (k.mv_size != 8) {
            rc = MDB_CORRUPTED;
            break;
        }

        last = ts_db_get64(k.mv_data);

        /* the value moves with the put below: decode a copy */

        free(copy);
        copy = malloc(v.mv_size ? v.mv_size : 1);
        if (copy == NULL) {
            rc = ENOMEM;
            break;
        }

        memcpy(copy, v.mv_data, v.mv_size);
        v.mv_data = copy;

        if (ts_db_srec_open(&r, &v, NULL, 0) != TS_OK) {
            rc = MDB_CORRUPTED;
            break;
        }

        n = r.n;

        if (n > 64 && l == sl) {
            l = malloc(UINT16_MAX * sizeof(ts_label_t));
            ids = malloc(UINT16_MAX * sizeof(uint32_t));
            if (l == NULL || ids == NULL) {
                rc = ENOMEM;
                break;
            }
        }

        for (i = 0; i < n; i++) {
            if (ts_db_srec_next(&r, &l[i]) != 1) {
                break;
            }

            rc = ts_db_name_id(db, txn, r.tenant, l[i].name, l[i].name_len,
                               &ids[i]);
            if (rc != TS_OK) {
                goto done;
            }
        }

        if (i != n || r.p != r.end) {
            rc = MDB_CORRUPTED;
            break;
        }

        size = ts_db_series_size(l, ids, n);
        free(rec);
        rec = malloc(size);
        if (rec == NULL) {
            rc = ENOMEM;
            break;
        }

        ts_db_series_encode(rec, r.tenant, r.hash, l, ids, n);

        ts_db_put64(idb, last);
        k.mv_data = idb;
        k.mv_size = 8;
        v.mv_data = rec;
        v.mv_size = size;

        rc = mdb_put(txn, db->dbi[TS_DB_SERIES], &k, &v, 0);
        if (rc != 0) {
            break;
        }

        count++;
    }

    if (rc == MDB_CORRUPTED) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "corrupt record in"
                  " \"series\" at key (series %" PRIu64 "), version 1,"
                  " file \"%s\"", last, db->file);
        rc = TS_ERR_CORRUPT;
        goto done;
    }

    if (rc == ENOMEM) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "out of memory");
        rc = TS_ERR_NOMEM;
        goto done;
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        rc = ts_db_werr(db, rc, "mdb_put", "series");
        goto done;
    }

    m->ids += count;

    if (rc == 0) {

        /* not finished */

        ts_db_put64(idb, last);
        v.mv_data = idb;
        v.mv_size = 8;

        rc = mdb_put(txn, db->dbi[TS_DB_META], &mk, &v, 0);
        rc = rc ? ts_db_werr(db, rc, "mdb_put", "meta") : TS_OK;
        goto done;
    }

    /* the last step: version 2 from here on */

    rc = mdb_del(txn, db->dbi[TS_DB_META], &mk, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        rc = ts_db_werr(db, rc, "mdb_del", "meta");
        goto done;
    }

    ts_db_put32(fmt + 8, TS_DB_VERSION);
    ts_db_put32(fmt + 28, ts_crc32c(0, fmt, 28));
    k.mv_data = "format";
    k.mv_size = sizeof("format") - 1;
    v.mv_data = fmt;
    v.mv_size = TS_DB_FORMAT_LEN;

    rc = mdb_put(txn, db->dbi[TS_DB_META], &k, &v, 0);
    if (rc != 0) {
        rc = ts_db_werr(db, rc, "mdb_put", "meta");
        goto done;
    }

    m->done = 1;
    rc = TS_OK;

done:

    mdb_cursor_close(cur);
    free(copy);
    free(rec);

    if (l != sl) {
        free(l);
    }

    if (ids != sids) {
        free(ids);
    }

    return rc;
}


/*
 * The version-2 list key of a version-1 postings key: the strings of a
 * plain key are in it; a hashed one (TS_DB_KEY_MAX bytes) is found
 * among the labels of its first series.
 */

static int
ts_db_migrate_head(ts_db_t *db, MDB_txn *txn, const uint8_t *k, size_t klen,
    uint64_t id, uint8_t *head, size_t *hlen)
{
    int            rc, kind;
    size_t         nlen;
    uint8_t        key[TS_DB_KEY_MAX], idb[8];
    uint32_t       tenant;
    MDB_val        sk, sv;
    ts_label_t     l;
    ts_db_srec_t   r;
    const uint8_t  *z;

    tenant = ts_db_get32(k);
    kind = k[4];

    if (kind != TS_DB_KIND_NAME && kind != TS_DB_KIND_PAIR) {
        goto corrupt;
    }

    if (klen < TS_DB_KEY_MAX) {
        if (kind == TS_DB_KIND_NAME) {
            *hlen = ts_db_pkey(head, TS_DB_HEAD_MAX, tenant, kind,
                               (const char *) k + TS_DB_PHEAD,
                               klen - TS_DB_PHEAD, NULL, 0);
            return TS_OK;
        }

        z = memchr(k + TS_DB_PHEAD, 0, klen - TS_DB_PHEAD);
        if (z == NULL) {
            goto corrupt;
        }

        nlen = (size_t) (z - k) - TS_DB_PHEAD;

        *hlen = ts_db_pkey(head, TS_DB_HEAD_MAX, tenant, kind,
                           (const char *) k + TS_DB_PHEAD, nlen,
                           (const char *) z + 1,
                           klen - TS_DB_PHEAD - nlen - 1);
        return TS_OK;
    }

    ts_db_put64(idb, id);
    sk.mv_data = idb;
    sk.mv_size = 8;

    rc = mdb_get(txn, db->dbi[TS_DB_SERIES], &sk, &sv);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return ts_db_werr(db, rc, "mdb_get", "series");
    }

    if (rc == 0 && ts_db_srec_open(&r, &sv, NULL, 0) == TS_OK) {
        while (ts_db_srec_next(&r, &l) == 1) {
            if (ts_db_pkey(key, TS_DB_KEY_MAX, tenant, kind, l.name,
                           l.name_len, l.value, l.value_len)
                == TS_DB_KEY_MAX
                && memcmp(key, k, TS_DB_KEY_MAX) == 0)
            {
                *hlen = ts_db_pkey(head, TS_DB_HEAD_MAX, tenant, kind,
                                   l.name, l.name_len, l.value,
                                   l.value_len);
                return TS_OK;
            }
        }
    }

corrupt:

    ts_db_fmt(db->errmsg, sizeof(db->errmsg), "corrupt record in"
              " \"postings\" (version 1): a %zu-byte key of kind 0x%02x"
              " whose first series %" PRIu64 " does not hold its label,"
              " file \"%s\"", klen, kind, id, db->file);

    return TS_ERR_CORRUPT;
}


/* Environment upkeep. */

int
ts_db_sync(ts_db_t *db)
{
    int  rc;

    (void) pthread_mutex_lock(&db->wlock);

    rc = ts_db_pid_check(db, db->errmsg);

    if (rc == TS_OK) {
        rc = mdb_env_sync(db->env, 1);
        rc = rc ? ts_db_werr(db, rc, "mdb_env_sync", NULL) : TS_OK;
    }

    (void) pthread_mutex_unlock(&db->wlock);

    return rc;
}


/*
 * Drops this process's page table entries of the whole LMDB map.  The
 * map is read-only, shared and file-backed (no MDB_WRITEMAP), so this
 * loses nothing: the pages stay in the kernel's page cache and the next
 * read faults them in again.  LMDB does not tell where its map is
 * (mdb_env_info() reports an address only with MDB_FIXEDMAP), so a
 * value read from "meta" gives an address inside it and
 * /proc/self/maps the shared mapping around that address.  A read
 * transaction is open meanwhile, which keeps ts_db_remap() from moving
 * the map in this process.
 */

int
ts_db_drop_pages(ts_db_t *db, size_t *bytes)
{
    int  rc;

    if (bytes != NULL) {
        *bytes = 0;
    }

    (void) pthread_mutex_lock(&db->wlock);
    rc = ts_db_drop_locked(db, bytes);
    (void) pthread_mutex_unlock(&db->wlock);

    return rc;
}


static int
ts_db_drop_locked(ts_db_t *db, size_t *bytes)
{
    int            rc, found;
    char          *line;
    char           perms[8];
    FILE          *f;
    size_t         cap;
    MDB_val        k, v;
    uintptr_t      p;
    unsigned long  lo, hi;
    ts_db_rtxn_t  *t;

    rc = ts_db_rtxn_begin(db, &t);

    if (rc != TS_OK) {
        if (t != NULL) {
            ts_db_fmt(db->errmsg, sizeof(db->errmsg), "%s", t->errmsg);
            ts_db_rtxn_abort(t);
        }

        return rc;
    }

    k.mv_data = "format";
    k.mv_size = sizeof("format") - 1;

    rc = mdb_get(t->txn, db->dbi[TS_DB_META], &k, &v);
    if (rc != 0) {
        ts_db_rtxn_abort(t);
        return ts_db_werr(db, rc, "mdb_get", "meta");
    }

    p = (uintptr_t) v.mv_data;
    found = 0;
    lo = 0;
    hi = 0;
    line = NULL;
    cap = 0;

    f = fopen("/proc/self/maps", "re");
    if (f == NULL) {
        ts_db_rtxn_abort(t);
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "fopen(\"/proc/self/maps\")"
                  " failed: %s", strerror(errno));
        return TS_ERR_IO;
    }

    while (getline(&line, &cap, f) > 0) {
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3) {
            continue;
        }

        if (p >= lo && p < hi && perms[3] == 's') {
            found = 1;
            break;
        }
    }

    free(line);
    (void) fclose(f);

    rc = TS_OK;

    if (!found) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "the map of \"%s\" is not"
                  " a shared mapping in /proc/self/maps", db->file);
        rc = TS_ERR_INVALID;

    } else if (madvise((void *) lo, hi - lo, MADV_DONTNEED) != 0) {
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "madvise() of the map of"
                  " \"%s\" failed: %s", db->file, strerror(errno));
        rc = TS_ERR_IO;

    } else if (bytes != NULL) {
        *bytes = hi - lo;
    }

    ts_db_rtxn_abort(t);

    return rc;
}


int
ts_db_reader_check(ts_db_t *db, int *dead)
{
    int  rc, n;

    n = 0;

    (void) pthread_mutex_lock(&db->wlock);

    rc = ts_db_pid_check(db, db->errmsg);

    if (rc == TS_OK) {
        rc = mdb_reader_check(db->env, &n);
        rc = rc ? ts_db_werr(db, rc, "mdb_reader_check", NULL) : TS_OK;
    }

    if (rc == TS_OK && n > 0) {
        (void) __atomic_fetch_add(&db->stale, (uint64_t) n,
                                  __ATOMIC_RELAXED);
    }

    (void) pthread_mutex_unlock(&db->wlock);

    if (dead != NULL) {
        *dead = n;
    }

    return rc;
}


int
ts_db_stats(ts_db_t *db, ts_db_stats_t *st)
{
    int            rc, fd;
    MDB_stat       ms;
    struct stat    fst;
    MDB_envinfo    info;
    ts_db_rtxn_t  *t;

    memset(st, 0, sizeof(ts_db_stats_t));

    rc = ts_db_rtxn_begin(db, &t);

    if (rc == TS_OK && mdb_env_info(db->env, &info) == 0
        && mdb_env_stat(db->env, &ms) == 0
        && mdb_env_get_fd(db->env, &fd) == 0 && fstat(fd, &fst) == 0)
    {
        st->map_size = info.me_mapsize;
        st->map_max = db->map_max;
        st->page_size = ms.ms_psize;
        st->used_bytes = (info.me_last_pgno + 1) * ms.ms_psize;
        st->file_bytes = (size_t) fst.st_size;
        st->readers = info.me_numreaders;
        st->max_readers = info.me_maxreaders;

        if (mdb_stat(t->txn, db->dbi[TS_DB_SERIES], &ms) == 0) {
            st->series = ms.ms_entries;
        }

        if (mdb_stat(t->txn, db->dbi[TS_DB_CHUNKS], &ms) == 0) {
            st->chunks = ms.ms_entries;
        }

        if (mdb_stat(t->txn, db->dbi[TS_DB_TENANTS], &ms) == 0) {
            st->tenants = ms.ms_entries;
        }

    } else if (rc == TS_OK) {
        rc = TS_ERR_IO;
    }

    st->grows = __atomic_load_n(&db->grows, __ATOMIC_RELAXED);
    st->adopts = __atomic_load_n(&db->adopts, __ATOMIC_RELAXED);
    st->stale_readers = __atomic_load_n(&db->stale, __ATOMIC_RELAXED);

    if (rc != TS_OK && t != NULL) {
        (void) pthread_mutex_lock(&db->wlock);
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "%s",
                  t->errmsg[0] ? t->errmsg : "cannot stat the environment");
        (void) pthread_mutex_unlock(&db->wlock);
    }

    ts_db_rtxn_abort(t);

    return rc;
}


/* Verify: every record decoded, every cross reference followed. */

int
ts_db_verify(ts_db_t *db)
{
    int            rc;
    ts_db_rtxn_t  *t;

    rc = ts_db_rtxn_begin(db, &t);

    if (rc == TS_OK) {
        rc = ts_db_verify_walk(t);
    }

    if (rc != TS_OK && t != NULL) {
        (void) pthread_mutex_lock(&db->wlock);
        ts_db_fmt(db->errmsg, sizeof(db->errmsg), "%s", t->errmsg);
        (void) pthread_mutex_unlock(&db->wlock);
    }

    ts_db_rtxn_abort(t);

    return rc;
}


static int
ts_db_verify_walk(ts_db_rtxn_t *t)
{
    int                i, rc;
    MDB_val            k, v;
    MDB_cursor        *cur;
    ts_db_metadata_t   md;
    ts_db_vpb_t        vp;
    static const int   dbs[] = { TS_DB_TENANTS, TS_DB_SERIES, TS_DB_SHASH,
                                 TS_DB_POSTINGS, TS_DB_CHUNKS,
                                 TS_DB_RETENTION, TS_DB_METADATA,
                                 TS_DB_LNAMES };

    memset(&vp, 0, sizeof(ts_db_vpb_t));

    for (i = 0; i < (int) (sizeof(dbs) / sizeof(dbs[0])); i++) {
        rc = ts_db_cursor(t, dbs[i], &cur);
        if (rc != TS_OK) {
            return rc;
        }

        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
             rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        {
            switch (dbs[i]) {

            case TS_DB_SERIES:
                rc = ts_db_verify_series(t, &k, &v);
                break;

            case TS_DB_CHUNKS:
                rc = ts_db_verify_chunk(t, &k, &v);
                break;

            case TS_DB_RETENTION:
                rc = ts_db_verify_retention(t, &k, &v);
                break;

            case TS_DB_METADATA:
                rc = ts_db_meta_decode(&v, &md);
                break;

            case TS_DB_POSTINGS:
                rc = ts_db_verify_pblock(t, &k, &v, &vp);
                break;

            case TS_DB_LNAMES:
                rc = ts_db_verify_lname(t, &k, &v);
                break;

            case TS_DB_TENANTS:
                rc = (v.mv_size == 4) ? TS_OK : TS_ERR_CORRUPT;
                break;

            default:
                rc = (v.mv_size == 8 && (dbs[i] != TS_DB_SHASH
                                         || k.mv_size == 12)
                      && ts_db_has(t, TS_DB_SERIES, v.mv_data, 8, NULL, 0)
                         == 1)
                     ? TS_OK : TS_ERR_CORRUPT;
            }

            if (rc != TS_OK) {
                if (t->errmsg[0] == '\0') {
                    ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt"
                              " record in \"%s\" (a %zu-byte key, a %zu-byte"
                              " value, or a missing series), file \"%s\"",
                              ts_db_dbs[dbs[i]].name, k.mv_size, v.mv_size,
                              t->db->file);
                }

                mdb_cursor_close(cur);
                return TS_ERR_CORRUPT;
            }
        }

        mdb_cursor_close(cur);

        if (rc != MDB_NOTFOUND) {
            return ts_db_rerr(t, rc, "mdb_cursor_get",
                              ts_db_dbs[dbs[i]].name);
        }
    }

    return TS_OK;
}


static int
ts_db_verify_series(ts_db_rtxn_t *t, const MDB_val *k, const MDB_val *v)
{
    int           rc;
    uint8_t       key[TS_DB_KEY_MAX], idb[8];
    uint32_t      n;
    uint64_t      id;
    ts_label_t    x, l[256];
    ts_db_srec_t  r;

    if (k->mv_size != 8
        || ts_db_srec_open(&r, v, t->txn, t->db->dbi[TS_DB_LNAMES]) != TS_OK)
    {
        return TS_ERR_CORRUPT;
    }

    memcpy(idb, k->mv_data, 8);
    id = ts_db_get64(idb);

    for (n = 0; (rc = ts_db_srec_next(&r, &x)) == 1; n++) {
        if (n < 256) {
            l[n] = x;
        }

        rc = ts_db_verify_label(t, r.tenant, &x, idb);
        if (rc != TS_OK) {
            return rc;
        }
    }

    if (rc != 0 || r.p != r.end) {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                  " \"series\" at key (series %" PRIu64 "): labels do not"
                  " fill the %zu-byte value, file \"%s\"", id, v->mv_size,
                  t->db->file);
        return TS_ERR_CORRUPT;
    }

    if (n <= 256 && ts_labels_hash(l, n) != r.hash) {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                  " \"series\" at key (series %" PRIu64 "): labels hash"
                  " mismatch, file \"%s\"", id, t->db->file);
        return TS_ERR_CORRUPT;
    }

    ts_db_put32(key, r.tenant);
    ts_db_put64(key + 4, r.hash);

    if (ts_db_has(t, TS_DB_SHASH, key, 12, idb, 8) != 1) {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "series %" PRIu64 " has no"
                  " entry in \"series_hash\", file \"%s\"", id,
                  t->db->file);
        return TS_ERR_CORRUPT;
    }

    return TS_OK;
}


/* The 'N' and 'V' lists of one label hold the id. */

static int
ts_db_verify_label(ts_db_rtxn_t *t, uint32_t tenant, const ts_label_t *l,
    const uint8_t *idb)
{
    int          rc;
    size_t       len;
    uint8_t      key[TS_DB_HEAD_MAX];
    uint64_t     id;
    MDB_cursor  *cur;

    id = ts_db_get64(idb);

    rc = ts_db_cursor(t, TS_DB_POSTINGS, &cur);
    if (rc != TS_OK) {
        return rc;
    }

    len = ts_db_pkey(key, TS_DB_HEAD_MAX, tenant, TS_DB_KIND_NAME, l->name,
                     l->name_len, NULL, 0);
    rc = ts_db_plist_has(cur, key, len, id);

    if (rc == 1) {
        len = ts_db_pkey(key, TS_DB_HEAD_MAX, tenant, TS_DB_KIND_PAIR,
                         l->name, l->name_len, l->value, l->value_len);
        rc = ts_db_plist_has(cur, key, len, id);
    }

    mdb_cursor_close(cur);

    if (rc == 1) {
        return TS_OK;
    }

    if (rc != 0) {
        return ts_db_rerr(t, rc, "mdb_cursor_get", "pblocks");
    }

    ts_db_fmt(t->errmsg, sizeof(t->errmsg), "series %" PRIu64 " is missing"
              " from the postings of label %.*s, file \"%s\"", id,
              (int) l->name_len, l->name, t->db->file);

    return TS_ERR_CORRUPT;
}


/* A label name entry and its reverse entry name each other. */

static int
ts_db_verify_lname(ts_db_rtxn_t *t, const MDB_val *k, const MDB_val *v)
{
    size_t          len;
    uint8_t         key[TS_DB_KEY_MAX], ikey[9];
    MDB_val         x, y;
    const uint8_t  *kp;

    kp = k->mv_data;

    if (k->mv_size == 9 && kp[4] == 'i') {
        len = ts_db_nkey(key, ts_db_get32(kp), v->mv_data, v->mv_size);
        x.mv_data = key;
        x.mv_size = len;

        if (mdb_get(t->txn, t->db->dbi[TS_DB_LNAMES], &x, &y) == 0
            && y.mv_size == 4 && memcmp(y.mv_data, kp + 5, 4) == 0)
        {
            return TS_OK;
        }

    } else if (k->mv_size > 5 && kp[4] == 'n' && v->mv_size == 4) {
        memcpy(ikey, kp, 4);
        ikey[4] = 'i';
        memcpy(ikey + 5, v->mv_data, 4);
        x.mv_data = ikey;
        x.mv_size = sizeof(ikey);

        if (mdb_get(t->txn, t->db->dbi[TS_DB_LNAMES], &x, &y) == 0
            && ts_db_nkey(key, ts_db_get32(kp), y.mv_data, y.mv_size)
               == k->mv_size
            && memcmp(key, kp, k->mv_size) == 0)
        {
            return TS_OK;
        }
    }

    ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in \"lnames\":"
              " a %zu-byte key whose name and id do not name each other,"
              " file \"%s\"", k->mv_size, t->db->file);

    return TS_ERR_CORRUPT;
}


/*
 * A postings block: its key, its ids ascending within and across the
 * blocks of its list, and every id a series of the key's tenant with
 * the key's label.
 */

static int
ts_db_verify_pblock(ts_db_rtxn_t *t, const MDB_val *k, const MDB_val *v,
    ts_db_vpb_t *vp)
{
    int             rc, kind;
    size_t          hlen;
    uint8_t         key[TS_DB_HEAD_MAX];
    uint32_t        i, n, tenant;
    uint64_t        ids[TS_DB_PBLOCK_MAX], first;
    ts_label_t      l;
    ts_db_srec_t    r;
    const uint8_t  *kp;

    kp = k->mv_data;

    if (k->mv_size < TS_DB_PHEAD + 1 + 8 || k->mv_size > TS_DB_KEY_MAX
        || (kp[4] != TS_DB_KIND_NAME && kp[4] != TS_DB_KIND_PAIR))
    {
        return TS_ERR_CORRUPT;
    }

    hlen = k->mv_size - 8;
    kind = kp[4];
    tenant = ts_db_get32(kp);
    first = ts_db_get64(kp + hlen);

    if (ts_db_pblock_decode(first, v->mv_data, v->mv_size, ids, &n)
        != TS_OK)
    {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                  " \"pblocks\" at key (tenant %" PRIu32 ", kind '%c',"
                  " first id %" PRIu64 "): a bad block of %zu bytes, file"
                  " \"%s\"", tenant, kind, first, v->mv_size, t->db->file);
        return TS_ERR_CORRUPT;
    }

    if (vp->head != NULL && vp->hlen == hlen
        && memcmp(vp->head, kp, hlen) == 0 && first <= vp->last)
    {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                  " \"pblocks\" at key (tenant %" PRIu32 ", kind '%c',"
                  " first id %" PRIu64 "): ids not ascending across"
                  " blocks, file \"%s\"", tenant, kind, first, t->db->file);
        return TS_ERR_CORRUPT;
    }

    vp->head = kp;
    vp->hlen = hlen;
    vp->last = ids[n - 1];

    for (i = 0; i < n; i++) {
        rc = ts_db_series_get(t, ids[i], &r);

        if (rc == TS_OK && r.tenant == tenant) {
            while ((rc = ts_db_srec_next(&r, &l)) == 1) {
                if (ts_db_pkey(key, TS_DB_HEAD_MAX, tenant, kind, l.name,
                               l.name_len, l.value, l.value_len) == hlen
                    && memcmp(key, kp, hlen) == 0)
                {
                    break;
                }
            }

            if (rc == 1) {
                continue;
            }
        }

        if (rc < 0 && rc != TS_ERR_NOTFOUND) {
            return rc;
        }

        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "postings block (tenant"
                  " %" PRIu32 ", kind '%c', first id %" PRIu64 ") holds"
                  " series %" PRIu64 ", which does not exist or does not"
                  " have its label, file \"%s\"", tenant, kind, first,
                  ids[i], t->db->file);
        return TS_ERR_CORRUPT;
    }

    return TS_OK;
}


static int
ts_db_verify_chunk(ts_db_rtxn_t *t, const MDB_val *k, const MDB_val *v)
{
    uint8_t        bkey[8];
    const char    *why;
    ts_db_chunk_t  c;

    if (ts_db_chunk_decode(k, v, &c, &why) != TS_OK) {
        return ts_db_chunk_bad(t, k, why);
    }

    ts_db_puti64(bkey, ts_db_bucket(c.maxt));

    if (ts_db_has(t, TS_DB_SERIES, k->mv_data, 8, NULL, 0) != 1) {
        return ts_db_chunk_bad(t, k, "no such series");
    }

    if (ts_db_has(t, TS_DB_RETENTION, bkey, 8, k->mv_data, 16) != 1) {
        return ts_db_chunk_bad(t, k, "no retention entry");
    }

    return TS_OK;
}


static int
ts_db_verify_retention(ts_db_rtxn_t *t, const MDB_val *k, const MDB_val *v)
{
    MDB_val  ck, cv;

    if (k->mv_size != 8 || v->mv_size != 16) {
        return TS_ERR_CORRUPT;
    }

    ck = *v;

    if (mdb_get(t->txn, t->db->dbi[TS_DB_CHUNKS], &ck, &cv) != 0
        || cv.mv_size < TS_DB_CHUNK_HDR
        || ts_db_bucket(ts_db_geti64((const uint8_t *) cv.mv_data + 4))
           != ts_db_geti64(k->mv_data))
    {
        ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt record in"
                  " \"retention\": bucket %" PRId64 " names a chunk that is"
                  " missing or in another bucket, file \"%s\"",
                  ts_db_geti64(k->mv_data), t->db->file);
        return TS_ERR_CORRUPT;
    }

    return TS_OK;
}


/* 1 if key (with data, for a DUPSORT db) exists, 0 if not, or an error. */

static int
ts_db_has(ts_db_rtxn_t *t, int dbi, const void *key, size_t klen,
    const void *data, size_t dlen)
{
    int          rc;
    MDB_val      k, d;
    MDB_cursor  *cur;

    k.mv_data = (void *) key;
    k.mv_size = klen;

    if (data == NULL) {
        rc = mdb_get(t->txn, t->db->dbi[dbi], &k, &d);
        return rc == 0 ? 1 : (rc == MDB_NOTFOUND ? 0 : ts_db_code(rc));
    }

    d.mv_data = (void *) data;
    d.mv_size = dlen;

    rc = mdb_cursor_open(t->txn, t->db->dbi[dbi], &cur);
    if (rc != 0) {
        return ts_db_code(rc);
    }

    rc = mdb_cursor_get(cur, &k, &d, MDB_GET_BOTH);
    mdb_cursor_close(cur);

    return rc == 0 ? 1 : (rc == MDB_NOTFOUND ? 0 : ts_db_code(rc));
}


/*
 * Exemplars: a checkpoint's copy of the zone's exemplar ring, in blocks
 * in "meta" under "exemplars/" and the block's first sequence number
 * (u64 big-endian); the value is the last sequence number (u64), the
 * CRC-32C of the payload (u32) and an EXEMPLARS WAL record payload
 * (store/ts_exemplar.h).  docs/format/lmdb.md.
 */

#define TS_DB_XKEY          "exemplars/"
#define TS_DB_XKEY_LEN      (sizeof(TS_DB_XKEY) - 1)
#define TS_DB_XHDR          12


typedef struct {
    const ts_db_exemplars_t    *b;
    size_t                      n;
    uint64_t                    keep;
} ts_db_xput_t;


static int ts_db_exemplars_txn(ts_db_t *db, MDB_txn *txn, void *data);


int
ts_db_exemplars_put(ts_db_t *db, const ts_db_exemplars_t *b, size_t n,
    uint64_t keep)
{
    ts_db_xput_t  x;

    x.b = b;
    x.n = n;
    x.keep = keep;

    return ts_db_write(db, ts_db_exemplars_txn, &x, db->map_max);
}


static int
ts_db_exemplars_txn(ts_db_t *db, MDB_txn *txn, void *data)
{
    ts_db_xput_t *x = data;

    int          rc;
    size_t       i;
    uint8_t      key[TS_DB_XKEY_LEN + 8];
    MDB_val      k, v;
    MDB_cursor  *cur;

    memcpy(key, TS_DB_XKEY, TS_DB_XKEY_LEN);
    k.mv_data = key;
    k.mv_size = sizeof(key);

    for (i = 0; i < x->n; i++) {
        ts_db_put64(key + TS_DB_XKEY_LEN, x->b[i].first);
        v.mv_size = TS_DB_XHDR + x->b[i].len;

        rc = mdb_put(txn, db->dbi[TS_DB_META], &k, &v, MDB_RESERVE);
        if (rc != 0) {
            return ts_db_werr(db, rc, "mdb_put", "meta");
        }

        ts_db_put64(v.mv_data, x->b[i].last);
        ts_db_put32((uint8_t *) v.mv_data + 8,
                    ts_crc32c(0, x->b[i].data, x->b[i].len));
        memcpy((uint8_t *) v.mv_data + TS_DB_XHDR, x->b[i].data,
               x->b[i].len);
    }

    /* blocks whose exemplars all left the ring */

    rc = mdb_cursor_open(txn, db->dbi[TS_DB_META], &cur);
    if (rc != 0) {
        return ts_db_werr(db, rc, "mdb_cursor_open", "meta");
    }

    k.mv_data = key;
    k.mv_size = TS_DB_XKEY_LEN;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != TS_DB_XKEY_LEN + 8
            || memcmp(k.mv_data, TS_DB_XKEY, TS_DB_XKEY_LEN) != 0)
        {
            break;
        }

        if (v.mv_size >= TS_DB_XHDR && ts_db_get64(v.mv_data) >= x->keep) {
            continue;
        }

        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return ts_db_werr(db, rc, "mdb_cursor_del", "meta");
    }

    return TS_OK;
}


int
ts_db_exemplars_each(ts_db_rtxn_t *t, ts_db_exemplars_pt cb, void *data)
{
    int                 rc;
    MDB_val             k, v;
    MDB_cursor         *cur;
    ts_db_exemplars_t   b;

    rc = ts_db_cursor(t, TS_DB_META, &cur);
    if (rc != TS_OK) {
        return rc;
    }

    k.mv_data = TS_DB_XKEY;
    k.mv_size = TS_DB_XKEY_LEN;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != TS_DB_XKEY_LEN + 8
            || memcmp(k.mv_data, TS_DB_XKEY, TS_DB_XKEY_LEN) != 0)
        {
            break;
        }

        b.first = ts_db_get64((uint8_t *) k.mv_data + TS_DB_XKEY_LEN);
        b.data = (uint8_t *) v.mv_data + TS_DB_XHDR;
        b.len = v.mv_size - TS_DB_XHDR;

        if (v.mv_size < TS_DB_XHDR
            || ts_db_get32((uint8_t *) v.mv_data + 8)
               != ts_crc32c(0, b.data, b.len))
        {
            ts_db_fmt(t->errmsg, sizeof(t->errmsg), "corrupt exemplar "
                      "block %llu in \"meta\": %zu bytes, file \"%s\"",
                      (unsigned long long) b.first, v.mv_size, t->db->file);
            rc = TS_ERR_CORRUPT;
            goto done;
        }

        b.last = ts_db_get64(v.mv_data);

        rc = cb(data, &b);
        if (rc != 0) {
            goto done;
        }
    }

    rc = (rc == 0 || rc == MDB_NOTFOUND)
         ? TS_OK : ts_db_rerr(t, rc, "mdb_cursor_get", "meta");

done:

    mdb_cursor_close(cur);

    return rc;
}
