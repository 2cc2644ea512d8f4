/*
 * Copyright (C) ngx_tsdb authors
 *
 * WAL fsync off the event loop, with group commit.  With a thread pool
 * (tsdb_zone thread_pool=, see ngx_http_tsdb_flush.c) a worker's fsyncs
 * run as one thread task at a time: ts_wal_sync_begin() on the event
 * loop takes what was written so far, the task fsyncs it, and the
 * completion event ends the job and wakes every writer whose records
 * are now durable.  Writers of wal_fsync=always write their records,
 * queue themselves with the WAL position after them and answer from
 * done(): all the writes that arrive while one fsync runs share the
 * next one.  The 1s timer of wal_fsync=1s starts the same job.
 *
 * Without threads ts_wal_sync() runs on the event loop as before.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tsdb_module.h"


typedef struct {
    ngx_http_tsdb_zone_t       *zone;
    ts_wal_sync_t               job;
} ngx_http_tsdb_sync_ctx_t;


static void ngx_http_tsdb_sync_failed(ngx_http_tsdb_zone_t *z);
static void ngx_http_tsdb_sync_wake(ngx_http_tsdb_zone_t *z, ngx_int_t rc);
#if (NGX_THREADS)
static void ngx_http_tsdb_sync_end(ngx_http_tsdb_zone_t *z);
static void ngx_http_tsdb_sync_thread(void *data, ngx_log_t *log);
static void ngx_http_tsdb_sync_done(ngx_event_t *ev);
#endif


ngx_int_t
ngx_http_tsdb_sync_init_process(ngx_cycle_t *cycle, ngx_http_tsdb_zone_t *z)
{
#if (NGX_THREADS)
    ngx_http_tsdb_sync_ctx_t  *ctx;
#endif

    ngx_queue_init(&z->sync_wait);

#if (NGX_THREADS)

    if (z->thread_pool == NULL || z->fsync == NGX_HTTP_TSDB_FSYNC_OFF) {
        return NGX_OK;
    }

    z->sync_task = ngx_thread_task_alloc(cycle->pool,
                                         sizeof(ngx_http_tsdb_sync_ctx_t));
    if (z->sync_task == NULL) {
        return NGX_ERROR;
    }

    ctx = z->sync_task->ctx;
    ctx->zone = z;

    z->sync_task->handler = ngx_http_tsdb_sync_thread;
    z->sync_task->event.handler = ngx_http_tsdb_sync_done;
    z->sync_task->event.data = z;
    z->sync_task->event.log = cycle->log;

#endif

    return NGX_OK;
}


/* At exit nginx's pool has finished our task: end the job it ran. */

void
ngx_http_tsdb_sync_exit_process(ngx_http_tsdb_zone_t *z)
{
#if (NGX_THREADS)
    if (z->sync_busy) {
        ngx_http_tsdb_sync_end(z);
    }
#endif
}


/* NGX_OK if writers may queue for an fsync instead of running one. */

ngx_int_t
ngx_http_tsdb_sync_async(ngx_http_tsdb_zone_t *z)
{
#if (NGX_THREADS)
    if (z->sync_task != NULL) {
        return NGX_OK;
    }
#endif

    return NGX_DECLINED;
}


void
ngx_http_tsdb_sync_wait(ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_sync_wait_t *w)
{
    ngx_queue_insert_tail(&z->sync_wait, &w->queue);
    ngx_http_tsdb_sync_start(z);
}


/*
 * Begins a job for what was written so far and hands it to the pool;
 * while one is in flight, its completion starts the next if writers
 * still wait.  Without a pool or when the pool refuses, fsyncs here.
 */

void
ngx_http_tsdb_sync_start(ngx_http_tsdb_zone_t *z)
{
#if (NGX_THREADS)
    ngx_http_tsdb_sync_ctx_t  *ctx;

    if (z->sync_busy || z->wal == NULL) {
        return;
    }

    if (z->sync_task == NULL) {
        goto here;
    }

    ctx = z->sync_task->ctx;

    if (ts_wal_sync_begin(z->wal, &ctx->job) != TS_OK) {
        goto here;
    }

    z->sync_busy = 1;

    if (ctx->job.n == 0) {
        ngx_http_tsdb_sync_end(z);
        return;
    }

    if (ngx_thread_task_post(z->thread_pool, z->sync_task) == NGX_OK) {
        return;
    }

    ts_wal_sync_run(&ctx->job);
    ngx_http_tsdb_sync_end(z);
    return;

here:

#endif

    if (z->wal == NULL) {
        return;
    }

    if (ts_wal_sync(z->wal) != TS_OK) {
        ngx_http_tsdb_sync_failed(z);
        return;
    }

    ngx_http_tsdb_sync_wake(z, NGX_OK);
}


#if (NGX_THREADS)

static void
ngx_http_tsdb_sync_thread(void *data, ngx_log_t *log)
{
    ngx_http_tsdb_sync_ctx_t  *ctx = data;

    ngx_log_debug1(NGX_LOG_DEBUG_CORE, log, 0,
                   "tsdb zone \"%V\": wal fsync thread", &ctx->zone->name);

    ts_wal_sync_run(&ctx->job);
}


static void
ngx_http_tsdb_sync_done(ngx_event_t *ev)
{
    ngx_http_tsdb_zone_t  *z = ev->data;

    ngx_http_tsdb_sync_end(z);

    if (!ngx_queue_empty(&z->sync_wait)) {
        ngx_http_tsdb_sync_start(z);
    }
}


static void
ngx_http_tsdb_sync_end(ngx_http_tsdb_zone_t *z)
{
    ngx_http_tsdb_sync_ctx_t  *ctx;

    ctx = z->sync_task->ctx;
    z->sync_busy = 0;

    if (ts_wal_sync_end(z->wal, &ctx->job) != TS_OK) {
        ngx_http_tsdb_sync_failed(z);
        return;
    }

    ngx_http_tsdb_sync_wake(z, NGX_OK);
}

#endif


static void
ngx_http_tsdb_sync_failed(ngx_http_tsdb_zone_t *z)
{
    ngx_log_error(NGX_LOG_ALERT, z->log, 0,
                  "tsdb zone \"%V\": wal fsync failed: %s",
                  &z->name, ts_wal_errmsg(z->wal));

    /* what the failed segment held is re-logged from here on */
    ngx_memzero(z->logged, z->logged_size);
    ngx_http_tsdb_sync_wake(z, NGX_ERROR);
}


/*
 * rc NGX_OK: wakes the writers whose records are synced now.  NGX_ERROR:
 * what was written since the last good fsync counts as lost; every
 * waiter's records are in that range, so all of them fail.
 */

static void
ngx_http_tsdb_sync_wake(ngx_http_tsdb_zone_t *z, ngx_int_t rc)
{
    ts_wal_pos_t                synced;
    ngx_queue_t                *q, *next;
    ngx_http_tsdb_sync_wait_t  *w;

    synced = ts_wal_synced(z->wal);

    for (q = ngx_queue_head(&z->sync_wait);
         q != ngx_queue_sentinel(&z->sync_wait);
         q = next)
    {
        next = ngx_queue_next(q);
        w = ngx_queue_data(q, ngx_http_tsdb_sync_wait_t, queue);

        if (rc == NGX_OK && ts_wal_pos_cmp(w->pos, synced) > 0) {
            continue;
        }

        ngx_queue_remove(q);
        w->done(w, rc);
    }
}
