/*
 * Copyright (C) ngx_tsdb authors
 *
 * Checkpoints: the head is copied into the zone's LMDB index, the WAL
 * that the copy covers is deleted, sealed chunks that are durable leave
 * the head, and retention deletes old chunks from LMDB.
 *
 * Every worker opens the LMDB environment in init_process and runs a
 * timer (tsdb_zone flush=, default 10s); the worker that gets the
 * head's flusher lock runs a checkpoint:
 *   1. bump the head's epoch E (seq_cst);
 *   2. claim the WAL directories of dead writers (their samples were
 *      appended to the head before they were logged);
 *   3. copy every chunk of every series (the open chunk too: its LMDB
 *      key (series, mint) is overwritten as it grows), applying the
 *      copy in bounded transactions, then fsync the index;
 *   4. publish ckpt_done = E, delete the claimed directories, and free
 *      from the head the sealed chunks that ended at or before what was
 *      copied of their series;
 *   5. run a bounded retention step.
 * No shared-memory lock is held during LMDB work except the flusher
 * lock itself, which nobody waits for (trylock).
 *
 * With threads (tsdb_zone thread_pool=, nginx's "default" pool unless
 * named or "off") steps 1-5 run in the pool, so that the worker's
 * event loop keeps serving while LMDB commits and syncs; the flusher
 * lock, taken and released on the event loop, is held by the worker's
 * pid until the task's completion event.  The task touches only the
 * shared head, the thread-safe ts_db handle and memory of its own.
 * At a worker's exit nginx's thread pool finishes queued tasks before
 * our exit_process closes the index; an unreleased flusher lock is
 * then taken over from the dead pid by the next timer.
 *
 * Writers (ngx_http_tsdb_flush_observe(), called by the write path
 * after the head appends and by the timers): on seeing a new epoch E
 * they cut the WAL, remember the first segment S_E written after, and
 * forget which series have a SERIES record.  Records below S_E were
 * written before E was seen, so their samples were in the head before
 * checkpoint E copied it; once ckpt_done >= E, segments below S_E go.
 *
 * A crash anywhere leaves: before the sync, LMDB transactions that are
 * either committed or not, and the whole WAL (replay makes the head
 * whole again; the next checkpoint rewrites the same keys); after the
 * sync but before the publish, a durable copy that nobody relies on
 * yet; after the publish, WAL segments or directories not yet deleted,
 * whose replay appends duplicates.  A dead flusher's lock is taken over
 * by the next timer.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tsdb_module.h"
#include "ts_chunk.h"


#define NGX_HTTP_TSDB_FLUSH_SERIES     1000    /* series per transaction */
#define NGX_HTTP_TSDB_FLUSH_CHUNKS     8000    /* chunks per transaction */
#define NGX_HTTP_TSDB_RETENTION_KEYS   10000
#define NGX_HTTP_TSDB_XBLOCK           1024    /* exemplars per block */
#define NGX_HTTP_TSDB_XLABELS          65536   /* series labels a block */


typedef struct {
    ngx_http_tsdb_zone_t       *zone;
    ts_db_batch_t              *batch;
    int64_t                    *upto;          /* per series ref */
    uint32_t                   *refs;          /* batch idx -> ref */
    uint32_t                    ref;
    int32_t                     idx;           /* of ref, -1: not yet */
    int64_t                     base;          /* of ref */
    int64_t                     floor;         /* of ref */
    uint64_t                    series;
    uint64_t                    chunks;
    uint64_t                    released;
    uint32_t                   *meta;          /* slot, gen pairs */
    uint32_t                    nmeta;
    uint32_t                    meta_cap;
    ngx_int_t                   meta_failed;
    uint64_t                    xsaved;        /* below: in the index */
    uint64_t                    xcopied;
    unsigned                    xsave:1;
} ngx_http_tsdb_ckpt_t;


/* a checkpoint's copy of the exemplar ring, as index blocks */
typedef struct {
    ngx_http_tsdb_zone_t       *zone;
    ngx_http_tsdb_exemplars_t   ex;
    ts_exemplar_record_t       *recs;
    ts_label_t                 *labels;
    ts_db_exemplars_t          *blocks;
    size_t                      nblocks;
    size_t                      bcap;
} ngx_http_tsdb_xcopy_t;


static void ngx_http_tsdb_flush_handler(ngx_event_t *ev);
#if (NGX_THREADS)
static void ngx_http_tsdb_ckpt_thread(void *data, ngx_log_t *log);
static void ngx_http_tsdb_ckpt_done(ngx_event_t *ev);
#endif
static void ngx_http_tsdb_checkpoint(ngx_http_tsdb_zone_t *z);
static ngx_int_t ngx_http_tsdb_ckpt_copy(ngx_http_tsdb_ckpt_t *ck);
static ngx_int_t ngx_http_tsdb_ckpt_series(ngx_http_tsdb_ckpt_t *ck,
    uint32_t ref);
static int ngx_http_tsdb_ckpt_chunk(void *data, const ts_head_chunk_t *c);
static int ngx_http_tsdb_ckpt_add(ngx_http_tsdb_ckpt_t *ck, int64_t mint,
    int64_t maxt, unsigned enc, const uint8_t *data, size_t len);
static int ngx_http_tsdb_ckpt_trim_hist(ngx_http_tsdb_ckpt_t *ck,
    const ts_head_chunk_t *c);
static int ngx_http_tsdb_ckpt_trim(ngx_http_tsdb_ckpt_t *ck,
    const ts_head_chunk_t *c);
static int ngx_http_tsdb_floor_lookup(ngx_http_tsdb_zone_t *z,
    ts_db_rtxn_t *t, uint32_t ref, int64_t *maxt);
static ngx_int_t ngx_http_tsdb_ckpt_apply(ngx_http_tsdb_ckpt_t *ck);
static int ngx_http_tsdb_ckpt_meta(void *data, const ts_meta_entry_t *e);
static void ngx_http_tsdb_ckpt_meta_saved(ngx_http_tsdb_ckpt_t *ck);
static void ngx_http_tsdb_ckpt_release(ngx_http_tsdb_ckpt_t *ck);
static void ngx_http_tsdb_ckpt_log(ngx_http_tsdb_ckpt_t *ck, uint64_t e,
    ngx_msec_t start);
static void ngx_http_tsdb_ckpt_wal(ngx_http_tsdb_zone_t *z,
    ts_wal_set_t *set);
static void ngx_http_tsdb_retention(ngx_http_tsdb_zone_t *z);
static void ngx_http_tsdb_profile_retention(ngx_http_tsdb_zone_t *z);
static void ngx_http_tsdb_exemplars_load_once(ngx_http_tsdb_zone_t *z);
static ngx_int_t ngx_http_tsdb_exemplars_load(ngx_http_tsdb_zone_t *z);
static int ngx_http_tsdb_exemplars_block(void *data,
    const ts_db_exemplars_t *b);
static int ngx_http_tsdb_exemplars_entry(void *data,
    const ts_exemplar_record_t *r);
static ngx_int_t ngx_http_tsdb_ckpt_exemplars(ngx_http_tsdb_ckpt_t *ck);
static int ngx_http_tsdb_xcopy_entry(void *data,
    const ts_exemplar_entry_t *e);
static ngx_int_t ngx_http_tsdb_xcopy_blocks(ngx_http_tsdb_xcopy_t *xc);
static ngx_int_t ngx_http_tsdb_xcopy_block(ngx_http_tsdb_xcopy_t *xc,
    size_t first, size_t n);
static void ngx_http_tsdb_xcopy_free(ngx_http_tsdb_xcopy_t *xc);


ngx_int_t
ngx_http_tsdb_flush_init_process(ngx_cycle_t *cycle,
    ngx_http_tsdb_zone_t *z)
{
    char          err[TS_DB_ERR_MAX];
    u_char        path[NGX_MAX_PATH];
    ts_db_conf_t  dc;

    ngx_memzero(&dc, sizeof(ts_db_conf_t));
    ngx_cpystrn(path, z->path.data, z->path.len + 1);
    dc.path = (char *) path;
    dc.uid = (uid_t) -1;
    dc.gid = (gid_t) -1;

    if (ts_db_open(&z->db, &dc, err, sizeof(err)) != TS_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "tsdb zone \"%V\": ts_db_open() failed: %s",
                      &z->name, err);
        z->db = NULL;
        return NGX_ERROR;
    }

    ngx_http_tsdb_exemplars_load_once(z);

    z->flush_ev.handler = ngx_http_tsdb_flush_handler;
    z->flush_ev.data = z;
    z->flush_ev.log = cycle->log;
    z->flush_ev.cancelable = 1;

#if (NGX_THREADS)

    if (z->thread_pool != NULL) {
        z->ckpt_task = ngx_thread_task_alloc(cycle->pool,
                                             sizeof(ngx_http_tsdb_zone_t *));
        if (z->ckpt_task == NULL) {
            return NGX_ERROR;
        }

        *(ngx_http_tsdb_zone_t **) z->ckpt_task->ctx = z;
        z->ckpt_task->handler = ngx_http_tsdb_ckpt_thread;
        z->ckpt_task->event.handler = ngx_http_tsdb_ckpt_done;
        z->ckpt_task->event.data = z;
        z->ckpt_task->event.log = cycle->log;
    }

#endif

    /* spread the workers' timers so a dead flusher is soon replaced */
    ngx_add_timer(&z->flush_ev, z->flush + ngx_random() % 1000);

    return NGX_OK;
}


void
ngx_http_tsdb_flush_exit_process(ngx_http_tsdb_zone_t *z)
{
    if (z->db != NULL) {
        ts_db_close(z->db);
        z->db = NULL;
    }
}


/*
 * NGX_DONE when the WAL was cut for a new epoch (the caller logs
 * SERIES records again), NGX_OK when nothing changed, NGX_ERROR if the
 * cut failed.
 */

ngx_int_t
ngx_http_tsdb_flush_observe(ngx_http_tsdb_zone_t *z)
{
    uint64_t   e;
    ngx_int_t  rc;

    if (z->wal == NULL) {
        return NGX_OK;
    }

    rc = NGX_OK;
    e = ts_head_epoch(&z->head);

    if (e != z->epoch_seen) {
        if (ts_wal_cut(z->wal) != TS_OK) {
            ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                          "tsdb zone \"%V\": ts_wal_cut() failed: %s",
                          &z->name, ts_wal_errmsg(z->wal));
            return NGX_ERROR;
        }

        z->epoch_seen = e;
        z->epoch_seg = ts_wal_pos(z->wal).seg;
        ngx_memzero(z->logged, z->logged_size);
        rc = NGX_DONE;
    }

    if (z->epoch_seg && ts_head_ckpt_done(&z->head) >= z->epoch_seen) {
        if (ts_wal_truncate_before(z->wal, z->epoch_seg) != TS_OK) {
            ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                          "tsdb zone \"%V\": ts_wal_truncate_before() "
                          "failed: %s", &z->name, ts_wal_errmsg(z->wal));

        } else {
            z->epoch_seg = 0;
        }
    }

    return rc;
}


/*
 * Before the first append to a series in this head's life, and before
 * its first checkpoint: learn what LMDB already holds of it, so that
 * retries of checkpointed samples are duplicates and a head rebuilt
 * from a truncated WAL never overwrites a fuller stored chunk.
 */

ngx_int_t
ngx_http_tsdb_flush_floor(ngx_http_tsdb_zone_t *z, uint32_t ref)
{
    int            rc, known;
    int64_t        base, maxt;
    ts_db_rtxn_t  *t;

    (void) ts_head_floor(&z->head, ref, &base, &known);

    if (known) {
        return NGX_OK;
    }

    maxt = INT64_MIN;

    rc = ts_db_rtxn_begin(z->db, &t);

    if (rc == TS_OK) {
        rc = ngx_http_tsdb_floor_lookup(z, t, ref, &maxt);
    }

    if (rc != TS_OK) {
        ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                      "tsdb zone \"%V\": index lookup failed: %s",
                      &z->name, rc == TS_ERR_NOMEM ? "no memory"
                                : ts_db_rtxn_errmsg(t));
    }

    if (rc != TS_ERR_NOMEM) {
        ts_db_rtxn_abort(t);
    }

    if (rc != TS_OK) {
        return NGX_ERROR;
    }

    ts_head_floor_init(&z->head, ref, maxt);

    return NGX_OK;
}


static int
ngx_http_tsdb_floor_lookup(ngx_http_tsdb_zone_t *z, ts_db_rtxn_t *t,
    uint32_t ref, int64_t *maxt)
{
    int             rc;
    size_t          tlen;
    uint32_t        tenant, tid, n;
    uint64_t        id;
    const char     *tname;
    ts_label_t      l[TS_HEAD_MAX_LABELS];
    ts_db_chunk_t   c;
    ts_db_chunks_t  it;

    *maxt = INT64_MIN;

    if (ts_head_series_tenant(&z->head, ref, &tenant) != TS_OK
        || ts_head_tenant_name(&z->head, tenant, &tname, &tlen) != TS_OK
        || ts_head_labels(&z->head, ref, l, TS_HEAD_MAX_LABELS, &n)
           != TS_OK)
    {
        return TS_ERR_INVALID;
    }

    id = 0;

    rc = ts_db_tenant(t, tname, tlen, &tid);
    if (rc == TS_OK) {
        rc = ts_db_series_find(t, tid, l, n, &id);
    }

    if (rc == TS_ERR_NOTFOUND) {
        return TS_OK;
    }

    if (rc != TS_OK) {
        return rc;
    }

    rc = ts_db_chunks_open(t, &it, id, INT64_MIN, INT64_MAX);
    if (rc != TS_OK) {
        return rc;
    }

    while ((rc = ts_db_chunks_next(&it, &c)) == 1) {
        if (c.maxt > *maxt) {
            *maxt = c.maxt;
        }
    }

    ts_db_chunks_close(&it);

    ts_head_series_set_dbid(&z->head, ref, id);

    return rc;
}


static void
ngx_http_tsdb_flush_handler(ngx_event_t *ev)
{
    int                    rc;
    ngx_http_tsdb_zone_t  *z = ev->data;

    (void) ngx_http_tsdb_flush_observe(z);

    if (z->ckpt_busy) {
        goto next;
    }

    rc = ts_head_flush_trylock(&z->head);

    if (rc < 0) {
        goto next;
    }

#if (NGX_THREADS)

    if (z->thread_pool != NULL) {
        if (ngx_thread_task_post(z->thread_pool, z->ckpt_task) == NGX_OK) {
            z->ckpt_busy = 1;
            goto next;
        }

        /* the pool's queue is full: checkpoint here rather than never */
    }

#endif

    ngx_http_tsdb_checkpoint(z);
    ts_head_flush_unlock(&z->head);
    (void) ngx_http_tsdb_flush_observe(z);

next:

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(ev, z->flush);
    }
}


#if (NGX_THREADS)

static void
ngx_http_tsdb_ckpt_thread(void *data, ngx_log_t *log)
{
    ngx_http_tsdb_zone_t  *z = *(ngx_http_tsdb_zone_t **) data;

    ngx_log_debug1(NGX_LOG_DEBUG_CORE, log, 0,
                   "tsdb zone \"%V\": checkpoint thread", &z->name);

    ngx_http_tsdb_checkpoint(z);
}


static void
ngx_http_tsdb_ckpt_done(ngx_event_t *ev)
{
    ngx_http_tsdb_zone_t  *z = ev->data;

    z->ckpt_busy = 0;
    ts_head_flush_unlock(&z->head);

    /* the WAL below this worker's epoch segment may go now */

    (void) ngx_http_tsdb_flush_observe(z);
}

#endif


static void
ngx_http_tsdb_checkpoint(ngx_http_tsdb_zone_t *z)
{
    char                  err[TS_WAL_ERR_MAX];
    u_char                path[NGX_MAX_PATH];
    uint64_t              e;
    ngx_msec_t            start;
    ts_wal_set_t         *set;
    ts_wal_conf_t         wc;
    ngx_http_tsdb_ckpt_t  ck;

    ngx_time_update();
    start = ngx_current_msec;

    e = ts_head_epoch_begin(&z->head);

    ngx_memzero(&wc, sizeof(ts_wal_conf_t));
    ngx_cpystrn(path, z->path.data, z->path.len + 1);
    wc.path = (char *) path;
    wc.uid = (uid_t) -1;
    wc.gid = (gid_t) -1;

    if (ts_wal_set_open(&set, &wc, err, sizeof(err)) != TS_OK) {
        ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                      "tsdb zone \"%V\": ts_wal_set_open() failed: %s",
                      &z->name, err);
        return;
    }

    ngx_memzero(&ck, sizeof(ngx_http_tsdb_ckpt_t));
    ck.zone = z;

    if (ngx_http_tsdb_ckpt_copy(&ck) == NGX_OK) {
        ngx_http_tsdb_ckpt_meta_saved(&ck);

        if (ck.xsave) {
            ts_exemplar_saved(&z->exemplars, ck.xsaved);
        }

        if (ck.xcopied) {
            ngx_log_error(NGX_LOG_NOTICE, z->log, 0,
                          "tsdb zone \"%V\": checkpoint %uL: %uL exemplars "
                          "copied", &z->name, e, ck.xcopied);
        }

        ts_head_ckpt_publish(&z->head, e);
        ngx_http_tsdb_ckpt_wal(z, set);
        ngx_http_tsdb_ckpt_release(&ck);
        z->checkpoints++;

        ngx_http_tsdb_ckpt_log(&ck, e, start);
    }

    ts_wal_set_close(set);

    if (ck.batch != NULL) {
        ts_db_batch_destroy(ck.batch);
    }

    ngx_free(ck.upto);
    ngx_free(ck.refs);
    ngx_free(ck.meta);

    ngx_http_tsdb_retention(z);
    ngx_http_tsdb_profile_retention(z);
}


/* Copies the head in bounded transactions, then makes them durable. */

static ngx_int_t
ngx_http_tsdb_ckpt_copy(ngx_http_tsdb_ckpt_t *ck)
{
    uint32_t               n, ref;
    ngx_http_tsdb_zone_t  *z;

    z = ck->zone;
    n = ts_head_nseries(&z->head);

    ck->upto = ngx_alloc((n + 1) * sizeof(int64_t), z->log);
    ck->refs = ngx_alloc(NGX_HTTP_TSDB_FLUSH_SERIES * sizeof(uint32_t),
                         z->log);

    if (ck->upto == NULL || ck->refs == NULL
        || ts_db_batch_create(&ck->batch) != TS_OK)
    {
        return NGX_ERROR;
    }

    for (ref = 1; ref <= n; ref++) {
        ck->upto[ref] = INT64_MIN;

        if (ngx_http_tsdb_ckpt_series(ck, ref) != NGX_OK) {
            return NGX_ERROR;
        }

        if ((ts_db_batch_nseries(ck->batch) >= NGX_HTTP_TSDB_FLUSH_SERIES
             || ts_db_batch_nchunks(ck->batch)
                >= NGX_HTTP_TSDB_FLUSH_CHUNKS)
            && ngx_http_tsdb_ckpt_apply(ck) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ck->upto[0] = n;

    /* metadata that changed since its last durable copy */

    if (ts_meta_each(&z->meta, ngx_http_tsdb_ckpt_meta, ck) != TS_OK
        || ck->meta_failed)
    {
        ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                      "tsdb zone \"%V\": checkpoint of metadata failed",
                      &z->name);
        return NGX_ERROR;
    }

    if (ngx_http_tsdb_ckpt_apply(ck) != NGX_OK
        || ngx_http_tsdb_ckpt_exemplars(ck) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ts_db_sync(z->db) != TS_OK) {
        ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                      "tsdb zone \"%V\": ts_db_sync() failed: %s",
                      &z->name, ts_db_errmsg(z->db));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tsdb_ckpt_series(ngx_http_tsdb_ckpt_t *ck, uint32_t ref)
{
    int                    rc;
    ngx_http_tsdb_zone_t  *z;

    int                    known;

    z = ck->zone;
    ck->ref = ref;
    ck->idx = -1;

    if (ngx_http_tsdb_flush_floor(z, ref) != NGX_OK) {
        return NGX_ERROR;
    }

    ck->floor = ts_head_floor(&z->head, ref, &ck->base, &known);

    rc = ts_head_read(&z->head, ref, INT64_MIN, INT64_MAX,
                      ngx_http_tsdb_ckpt_chunk, ck);

    if (rc != TS_OK || ck->idx == -2) {
        ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                      "tsdb zone \"%V\": checkpoint of series %uD "
                      "failed: %s", &z->name, ref,
                      rc != TS_OK ? ts_strerror(rc)
                                  : ts_db_errmsg(z->db));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int
ngx_http_tsdb_ckpt_chunk(void *data, const ts_head_chunk_t *c)
{
    ngx_http_tsdb_ckpt_t  *ck = data;

    /* stored whole already under the same key, by an earlier one */

    if (c->maxt <= ck->floor) {
        return 0;
    }

    if (c->mint <= ck->base) {
        return c->encoding == TS_XOR_ENCODING
               ? ngx_http_tsdb_ckpt_trim(ck, c)
               : ngx_http_tsdb_ckpt_trim_hist(ck, c);
    }

    return ngx_http_tsdb_ckpt_add(ck, c->mint, c->maxt, c->encoding,
                                  c->data, c->len);
}


/* Re-encodes the samples after the base: a chunk of its own. */

static int
ngx_http_tsdb_ckpt_trim(ngx_http_tsdb_ckpt_t *ck, const ts_head_chunk_t *c)
{
    int                rc;
    size_t             len;
    int64_t            t, mint;
    uint64_t           v;
    uint8_t            buf[TS_HEAD_CHUNK_SIZE], out[TS_HEAD_CHUNK_SIZE];
    ts_xor_iter_t      it;
    ts_xor_appender_t  a;

    if (ts_xor_init(&a, buf, sizeof(buf)) != TS_OK) {
        ck->idx = -2;
        return 1;
    }

    mint = INT64_MIN;
    ts_xor_iter_init(&it, c->data, c->len);

    while ((rc = ts_xor_iter_next_bits(&it, &t, &v)) == 1) {
        if (t <= ck->base) {
            continue;
        }

        if (mint == INT64_MIN) {
            mint = t;
        }

        if (ts_xor_append_bits(&a, buf, t, v) != TS_OK) {
            ck->idx = -2;
            return 1;
        }
    }

    len = sizeof(out);

    if (rc != 0 || ts_xor_snapshot(&a, buf, out, &len) != TS_OK) {
        ck->idx = -2;
        return 1;
    }

    return ngx_http_tsdb_ckpt_add(ck, mint, c->maxt, TS_XOR_ENCODING, out,
                                  len);
}


/* The same for a histogram chunk: one layout, so every append fits. */

static int
ngx_http_tsdb_ckpt_trim_hist(ngx_http_tsdb_ckpt_t *ck,
    const ts_head_chunk_t *c)
{
    int              rc;
    void            *mem;
    size_t           need, asize, len;
    int64_t          t, mint;
    uint8_t         *blk, out[TS_HEAD_CHUNK_MAX];
    unsigned         hdr;
    ts_hist_t        h;
    ts_hist_app_t   *a;
    ts_hist_iter_t   it;

    need = ts_hist_iter_need(c->data, c->len, c->encoding);
    mem = ngx_alloc(need + TS_HEAD_HIST_BLOCK, ngx_cycle->log);
    if (mem == NULL) {
        ck->idx = -2;
        return 1;
    }

    blk = (uint8_t *) mem + ((need + 7) & ~(size_t) 7);
    a = (ts_hist_app_t *) blk;
    asize = 0;
    mint = INT64_MIN;
    ts_hist_iter_init(&it, c->data, c->len, c->encoding, mem, need);

    while ((rc = ts_hist_iter_next(&it, &t, &h)) == 1) {
        if (t <= ck->base) {
            continue;
        }

        if (mint == INT64_MIN) {
            mint = t;
            hdr = it.header == TS_HIST_HDR_GAUGE ? TS_HIST_HDR_GAUGE
                                                 : TS_HIST_HDR_UNKNOWN;
            asize = (ts_hist_app_size(&h) + 7) & ~(size_t) 7;
            rc = asize && asize <= TS_HEAD_HIST_BLOCK / 2
                 ? ts_hist_start(a, asize, blk + asize,
                                 TS_HEAD_HIST_BLOCK - asize, hdr, t, &h)
                 : TS_ERR_INVALID;

        } else {
            rc = ts_hist_append(a, blk + asize, t, &h, NULL);
        }

        if (rc != TS_OK) {
            break;
        }
    }

    len = sizeof(out);

    if (rc != 0 || mint == INT64_MIN
        || ts_hist_snapshot(a, blk + asize, out, &len) != TS_OK)
    {
        ngx_free(mem);
        ck->idx = -2;
        return 1;
    }

    ngx_free(mem);

    return ngx_http_tsdb_ckpt_add(ck, mint, c->maxt, c->encoding, out, len);
}


static int
ngx_http_tsdb_ckpt_add(ngx_http_tsdb_ckpt_t *ck, int64_t mint,
    int64_t maxt, unsigned enc, const uint8_t *data, size_t len)
{
    size_t                 tlen;
    uint32_t               tenant, n, idx;
    const char            *tname;
    ts_label_t             l[TS_HEAD_MAX_LABELS];
    ts_head_t             *h;

    h = &ck->zone->head;

    if (ck->idx == -1) {
        if (ts_head_series_tenant(h, ck->ref, &tenant) != TS_OK
            || ts_head_tenant_name(h, tenant, &tname, &tlen) != TS_OK
            || ts_head_labels(h, ck->ref, l, TS_HEAD_MAX_LABELS, &n)
               != TS_OK
            || ts_db_batch_series(ck->batch, tname, tlen, l, n,
                                  ts_head_series_dbid(h, ck->ref), &idx)
               != TS_OK)
        {
            ck->idx = -2;
            return 1;
        }

        ck->idx = (int32_t) idx;
        ck->refs[idx] = ck->ref;
        ck->series++;
    }

    if (ts_db_batch_chunk(ck->batch, (uint32_t) ck->idx, mint, maxt,
                          enc, data, len)
        != TS_OK)
    {
        ck->idx = -2;
        return 1;
    }

    ck->chunks++;

    if (maxt > ck->upto[ck->ref]) {
        ck->upto[ck->ref] = maxt;
    }

    return 0;
}


static ngx_int_t
ngx_http_tsdb_ckpt_apply(ngx_http_tsdb_ckpt_t *ck)
{
    int                    rc;
    uint32_t               i, n;
    ngx_http_tsdb_zone_t  *z;

    z = ck->zone;
    n = ts_db_batch_nseries(ck->batch);

    if (n == 0 && ck->nmeta == 0) {
        return NGX_OK;
    }

    rc = ts_db_apply(z->db, ck->batch);
    if (rc != TS_OK) {
        ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                      "tsdb zone \"%V\": ts_db_apply() failed: %s",
                      &z->name, ts_db_errmsg(z->db));
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        ts_head_series_set_dbid(&z->head, ck->refs[i],
                                ts_db_batch_series_id(ck->batch, i));
    }

    ts_db_batch_reset(ck->batch);

    return NGX_OK;
}


static int
ngx_http_tsdb_ckpt_meta(void *data, const ts_meta_entry_t *e)
{
    ngx_http_tsdb_ckpt_t  *ck = data;

    size_t                 tlen;
    uint32_t              *p;
    const char            *tname;
    ts_db_metadata_t       md;
    ngx_http_tsdb_zone_t  *z;

    z = ck->zone;

    if (!e->dirty) {
        return 0;
    }

    if (ck->nmeta == ck->meta_cap) {
        ck->meta_cap = ck->meta_cap ? ck->meta_cap * 2 : 256;
        p = ngx_alloc(ck->meta_cap * 2 * sizeof(uint32_t), z->log);
        if (p == NULL) {
            ck->meta_failed = 1;
            return 1;
        }

        if (ck->nmeta) {
            ngx_memcpy(p, ck->meta, ck->nmeta * 2 * sizeof(uint32_t));
        }

        ngx_free(ck->meta);
        ck->meta = p;
    }

    md.name = e->name;
    md.name_len = e->name_len;
    md.help = e->help;
    md.help_len = e->help_len;
    md.unit = e->unit;
    md.unit_len = e->unit_len;
    md.type = (uint8_t) e->type;

    if (ts_head_tenant_name(&z->head, e->tenant, &tname, &tlen) != TS_OK
        || ts_db_batch_metadata(ck->batch, tname, tlen, &md) != TS_OK)
    {
        ck->meta_failed = 1;
        return 1;
    }

    ck->meta[ck->nmeta * 2] = e->slot;
    ck->meta[ck->nmeta * 2 + 1] = e->gen;
    ck->nmeta++;

    return 0;
}


/* the index is synced: what was copied needs no copy again */

static void
ngx_http_tsdb_ckpt_meta_saved(ngx_http_tsdb_ckpt_t *ck)
{
    uint32_t  i;

    for (i = 0; i < ck->nmeta; i++) {
        ts_meta_saved(&ck->zone->meta, ck->meta[i * 2],
                      ck->meta[i * 2 + 1]);
    }
}


/* Durable now: sealed chunks up to what was copied leave the head. */

static void
ngx_http_tsdb_ckpt_release(ngx_http_tsdb_ckpt_t *ck)
{
    uint32_t               ref, n, freed;
    ngx_http_tsdb_zone_t  *z;

    z = ck->zone;
    n = (uint32_t) ck->upto[0];

    for (ref = 1; ref <= n; ref++) {
        if (ck->upto[ref] == INT64_MIN) {
            continue;
        }

        if (ts_head_release(&z->head, ref, ck->upto[ref], &freed) == TS_OK)
        {
            ck->released += freed;
        }
    }
}


/* One notice per checkpoint that copied something; tests grep it. */

static void
ngx_http_tsdb_ckpt_log(ngx_http_tsdb_ckpt_t *ck, uint64_t e,
    ngx_msec_t start)
{
    ngx_http_tsdb_zone_t  *z;

    z = ck->zone;

    ngx_time_update();

    if (ck->series == 0 && ck->nmeta == 0) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, z->log, 0,
                       "tsdb checkpoint %uL: nothing new, %M ms", e,
                       ngx_current_msec - start);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, z->log, 0,
                  "tsdb zone \"%V\": checkpoint %uL: %uL series, "
                  "%uL chunks, %uD metadata, %uL released, %M ms",
                  &z->name, e, ck->series, ck->chunks, ck->nmeta,
                  ck->released,
                  ngx_current_msec - start);
}


/* The claimed directories of dead writers are covered: delete them. */

static void
ngx_http_tsdb_ckpt_wal(ngx_http_tsdb_zone_t *z, ts_wal_set_t *set)
{
    size_t  i, n;

    n = ts_wal_set_size(set);

    for (i = n; i > 0; i--) {
        if (ts_wal_set_remove(set, i - 1) != TS_OK) {
            ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                          "tsdb zone \"%V\": ts_wal_set_remove() "
                          "failed: %s", &z->name, ts_wal_set_errmsg(set));
        }
    }
}


static void
ngx_http_tsdb_retention(ngx_http_tsdb_zone_t *z)
{
    int64_t            cutoff;
    ts_db_retention_t  st;

    cutoff = (int64_t) ngx_time() * 1000 - z->retention;

    ngx_memzero(&st, sizeof(ts_db_retention_t));

    if (ts_db_retention(z->db, cutoff, NGX_HTTP_TSDB_RETENTION_KEYS, &st)
        != TS_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                      "tsdb zone \"%V\": ts_db_retention() failed: %s",
                      &z->name, ts_db_errmsg(z->db));
        return;
    }

    if (st.chunks || st.series) {
        ngx_log_error(NGX_LOG_NOTICE, z->log, 0,
                      "tsdb zone \"%V\": retention deleted %uL chunks, "
                      "%uL series%s", &z->name, st.chunks, st.series,
                      st.more ? ", more to do" : "");
    }
}


/*
 * Exemplars.  The ring lives in the zone; the index keeps a copy made
 * by each checkpoint, so that truncating the WAL never loses them.  A
 * new zone gets the index's copy in front of what the WAL replay added
 * (older: the WAL kept only what came after that copy), once, by the
 * first worker holding the flusher lock, and before any checkpoint
 * writes a copy of its own.
 */

static void
ngx_http_tsdb_exemplars_load_once(ngx_http_tsdb_zone_t *z)
{
    if (ts_exemplar_loaded(&z->exemplars)
        || ts_head_flush_trylock(&z->head) < 0)
    {
        return;
    }

    if (!ts_exemplar_loaded(&z->exemplars)) {
        (void) ngx_http_tsdb_exemplars_load(z);
    }

    ts_head_flush_unlock(&z->head);
}


typedef struct {
    ngx_http_tsdb_zone_t       *zone;
    ngx_http_tsdb_exemplars_t   ex;
    uint64_t                    next;          /* past the copy's seqs */
    ngx_uint_t                  bad;
} ngx_http_tsdb_xload_t;


static ngx_int_t
ngx_http_tsdb_exemplars_load(ngx_http_tsdb_zone_t *z)
{
    int                     rc;
    size_t                  added;
    ts_db_rtxn_t           *t;
    ngx_http_tsdb_xload_t   xl;

    ngx_memzero(&xl, sizeof(ngx_http_tsdb_xload_t));
    xl.zone = z;
    added = 0;

    rc = ts_db_rtxn_begin(z->db, &t);

    if (rc == TS_OK) {
        rc = ts_db_exemplars_each(t, ngx_http_tsdb_exemplars_block, &xl);

        if (rc != TS_OK && rc != TS_ERR_NOMEM) {
            ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                          "tsdb zone \"%V\": reading exemplars failed: %s",
                          &z->name, ts_db_rtxn_errmsg(t));
        }

        ts_db_rtxn_abort(t);
    }

    if (rc == TS_OK
        && ngx_http_tsdb_exemplars_apply(z, &xl.ex, 0, xl.next, &added)
           != NGX_OK)
    {
        rc = TS_ERR_NOMEM;
    }

    if (rc == TS_OK) {
        ts_exemplar_set_loaded(&z->exemplars);

        if (xl.ex.n) {
            ngx_log_error(NGX_LOG_NOTICE, z->log, 0,
                          "tsdb zone \"%V\": loaded %uz exemplars from the "
                          "index, %uz stored, %ui bad", &z->name, xl.ex.n,
                          added, xl.bad);
        }

    } else {
        ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                      "tsdb zone \"%V\": loading exemplars failed: %s",
                      &z->name, ts_strerror(rc));
    }

    ngx_http_tsdb_exemplars_free(&xl.ex);

    return rc == TS_OK ? NGX_OK : NGX_ERROR;
}


static int
ngx_http_tsdb_exemplars_block(void *data, const ts_db_exemplars_t *b)
{
    ngx_http_tsdb_xload_t  *xl = data;

    int  rc;

    if (b->last + 1 > xl->next) {
        xl->next = b->last + 1;
    }

    rc = ts_exemplar_record_decode(b->data, b->len,
                                   ngx_http_tsdb_exemplars_entry, xl);

    if (rc == TS_ERR_CORRUPT) {
        xl->bad++;
        return 0;
    }

    return rc;
}


static int
ngx_http_tsdb_exemplars_entry(void *data, const ts_exemplar_record_t *r)
{
    ngx_http_tsdb_xload_t  *xl = data;

    switch (ngx_http_tsdb_exemplars_push(&xl->ex, &xl->zone->head, r)) {

    case NGX_OK:
        return 0;

    case NGX_DECLINED:
        xl->bad++;
        return 0;

    default:
        return TS_ERR_NOMEM;
    }
}


/*
 * The exemplars stored since the last copy go into new blocks; blocks
 * of exemplars the ring has overwritten since go.  Before the sync that
 * makes the checkpoint durable.
 */

static ngx_int_t
ngx_http_tsdb_ckpt_exemplars(ngx_http_tsdb_ckpt_t *ck)
{
    int                     rc;
    ts_exemplar_stats_t     st;
    ngx_http_tsdb_zone_t   *z;
    ngx_http_tsdb_xcopy_t   xc;

    z = ck->zone;

    if (z->exemplar_max == 0) {
        return NGX_OK;
    }

    if (!ts_exemplar_loaded(&z->exemplars)
        && ngx_http_tsdb_exemplars_load(z) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ts_exemplar_stats(&z->exemplars, &st);

    ngx_memzero(&xc, sizeof(ngx_http_tsdb_xcopy_t));
    xc.zone = z;

    rc = ts_exemplar_each(&z->exemplars, st.saved, ngx_http_tsdb_xcopy_entry,
                          &xc);

    if (rc == TS_OK && xc.ex.n == 0 && st.saved >= st.tail) {
        ck->xsave = 1;
        ck->xsaved = st.saved;
        ngx_http_tsdb_xcopy_free(&xc);
        return NGX_OK;
    }

    /* the oldest still stored, after the copy was taken */
    ts_exemplar_stats(&z->exemplars, &st);

    if (rc != TS_OK || ngx_http_tsdb_xcopy_blocks(&xc) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                      "tsdb zone \"%V\": checkpoint of exemplars failed: "
                      "out of memory", &z->name);
        ngx_http_tsdb_xcopy_free(&xc);
        return NGX_ERROR;
    }

    rc = ts_db_exemplars_put(z->db, xc.blocks, xc.nblocks, st.tail);

    if (rc != TS_OK) {
        ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                      "tsdb zone \"%V\": ts_db_exemplars_put() failed: %s",
                      &z->name, ts_db_errmsg(z->db));
        ngx_http_tsdb_xcopy_free(&xc);
        return NGX_ERROR;
    }

    ck->xsave = 1;
    ck->xsaved = xc.ex.n ? xc.ex.e[xc.ex.n - 1].seq + 1 : st.tail;
    ck->xcopied = xc.ex.n;

    ngx_http_tsdb_xcopy_free(&xc);

    return NGX_OK;
}


/* under the ring's lock: memory only */

static int
ngx_http_tsdb_xcopy_entry(void *data, const ts_exemplar_entry_t *e)
{
    ngx_http_tsdb_xcopy_t  *xc = data;

    void    *p;
    size_t   cap;

    if (xc->ex.n == xc->ex.cap) {
        cap = xc->ex.cap ? xc->ex.cap * 2 : 1024;
        p = realloc(xc->ex.e, cap * sizeof(ts_exemplar_entry_t));
        if (p == NULL) {
            return TS_ERR_NOMEM;
        }

        xc->ex.e = p;
        xc->ex.cap = cap;
    }

    if (xc->ex.len + e->labels_len > xc->ex.bcap) {
        cap = xc->ex.bcap ? xc->ex.bcap * 2 : 65536;
        p = realloc(xc->ex.bytes, cap);
        if (p == NULL) {
            return TS_ERR_NOMEM;
        }

        xc->ex.bytes = p;
        xc->ex.bcap = cap;
    }

    xc->ex.e[xc->ex.n] = *e;
    xc->ex.e[xc->ex.n].labels = (const uint8_t *) (uintptr_t) xc->ex.len;

    if (e->labels_len) {
        ngx_memcpy(xc->ex.bytes + xc->ex.len, e->labels, e->labels_len);
    }

    xc->ex.len += e->labels_len;
    xc->ex.n++;

    return 0;
}


/* records name the tenant and the series: self-contained, as the WAL */

static ngx_int_t
ngx_http_tsdb_xcopy_blocks(ngx_http_tsdb_xcopy_t *xc)
{
    size_t                 i, first, nl;
    uint32_t               n;
    ts_head_t             *head;
    ts_exemplar_entry_t   *e;
    ts_exemplar_record_t  *r;

    head = &xc->zone->head;

    xc->recs = malloc(NGX_HTTP_TSDB_XBLOCK * sizeof(ts_exemplar_record_t));
    xc->labels = malloc(NGX_HTTP_TSDB_XLABELS * sizeof(ts_label_t));
    xc->bcap = xc->ex.n / NGX_HTTP_TSDB_XBLOCK
               + xc->ex.n / (NGX_HTTP_TSDB_XLABELS / TS_HEAD_MAX_LABELS) + 2;
    xc->blocks = calloc(xc->bcap, sizeof(ts_db_exemplars_t));

    if (xc->recs == NULL || xc->labels == NULL || xc->blocks == NULL) {
        return NGX_ERROR;
    }

    first = 0;
    nl = 0;

    for (i = 0; i < xc->ex.n; i++) {
        if (i - first == NGX_HTTP_TSDB_XBLOCK
            || NGX_HTTP_TSDB_XLABELS - nl < TS_HEAD_MAX_LABELS)
        {
            if (ngx_http_tsdb_xcopy_block(xc, first, i - first) != NGX_OK) {
                return NGX_ERROR;
            }

            first = i;
            nl = 0;
        }

        e = &xc->ex.e[i];
        r = &xc->recs[i - first];
        ngx_memzero(r, sizeof(ts_exemplar_record_t));

        r->t = e->t;
        r->v = e->v;
        r->enc = xc->ex.bytes + (uintptr_t) e->labels;
        r->enc_len = e->labels_len;
        r->series = &xc->labels[nl];

        if (ts_head_tenant_name(head, e->tenant, &r->tenant, &r->tenant_len)
            != TS_OK
            || ts_head_labels(head, e->ref, &xc->labels[nl],
                              TS_HEAD_MAX_LABELS, &n) != TS_OK)
        {
            /* cannot be: the series and tenant outlive the head's life */
            r->tenant_len = 0;
            r->nseries = 0;
            continue;
        }

        r->nseries = n;
        nl += n;
    }

    return ngx_http_tsdb_xcopy_block(xc, first, xc->ex.n - first);
}


/* recs[0 .. n) are entries first .. first + n - 1 */

static ngx_int_t
ngx_http_tsdb_xcopy_block(ngx_http_tsdb_xcopy_t *xc, size_t first, size_t n)
{
    size_t              size, len;
    uint8_t            *buf;
    ts_db_exemplars_t  *b;

    if (n == 0) {
        return NGX_OK;
    }

    if (xc->nblocks == xc->bcap) {
        return NGX_ERROR;
    }

    size = ts_exemplar_record_size(xc->recs, n);
    buf = malloc(size);
    if (buf == NULL
        || ts_exemplar_record_encode(buf, size, xc->recs, n, &len) != TS_OK)
    {
        free(buf);
        return NGX_ERROR;
    }

    b = &xc->blocks[xc->nblocks++];
    b->first = xc->ex.e[first].seq;
    b->last = xc->ex.e[first + n - 1].seq;
    b->data = buf;
    b->len = len;

    return NGX_OK;
}


static void
ngx_http_tsdb_xcopy_free(ngx_http_tsdb_xcopy_t *xc)
{
    size_t  i;

    for (i = 0; i < xc->nblocks; i++) {
        free((void *) xc->blocks[i].data);
    }

    free(xc->blocks);
    free(xc->recs);
    free(xc->labels);
    free(xc->ex.e);
    free(xc->ex.bytes);
}


/*
 * Profiles: a bounded retention step over the zone's profile store
 * (rows before now - retention), with the checkpoint, so in the thread
 * pool when the zone has one, never on a request.  Each worker's handle
 * resumes where its own last step stopped.
 */

static void
ngx_http_tsdb_profile_retention(ngx_http_tsdb_zone_t *z)
{
    char                   err[TS_PSTORE_ERR_MAX];
    int64_t                cutoff;
    ts_pstore_retention_t  st;

    if (z->pstore == NULL) {
        return;
    }

    cutoff = (int64_t) ngx_time() * 1000 - z->retention;
    cutoff = (cutoff < INT64_MIN / 1000000) ? INT64_MIN : cutoff * 1000000;

    if (ts_pstore_retention(z->pstore, cutoff, NGX_HTTP_TSDB_RETENTION_KEYS,
                            &st, err, sizeof(err))
        != TS_OK)
    {
        ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                      "tsdb zone \"%V\": profile retention failed: %s",
                      &z->name, err);
        return;
    }

    if (st.rows) {
        ngx_log_error(NGX_LOG_NOTICE, z->log, 0,
                      "tsdb zone \"%V\": retention deleted %uL profile "
                      "rows, %uL bytes%s", &z->name, st.rows, st.row_bytes,
                      st.more ? ", more to do" : "");
    }
}
