/*
 * Copyright (C) ngx_tsdb authors
 *
 * Small HTTP helpers shared by the handlers: the request body as one
 * buffer, one-line text answers, response headers, a protobuf-c
 * allocator bound to the request pool, and the worker's scratch memory.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tsdb_module.h"


/*
 * Scratch memory: blocks that one worker keeps from one request to the
 * next.  The newest block is first; a request's allocations are bumped
 * from it and never freed one by one.
 */

typedef struct ngx_http_tsdb_scratch_s  ngx_http_tsdb_scratch_t;

struct ngx_http_tsdb_scratch_s {
    ngx_http_tsdb_scratch_t    *next;
    size_t                      size;       /* of data */
    size_t                      used;
    u_char                     *data;
};


static void *ngx_http_tsdb_palloc(void *data, size_t size);
static void ngx_http_tsdb_pfree(void *data, void *p);
static void *ngx_http_tsdb_scratch_palloc(void *data, size_t size);
static void ngx_http_tsdb_scratch_free(void);


static ngx_http_tsdb_scratch_t  *ngx_http_tsdb_scratch;


/* The body as one buffer, from memory or from its temporary file. */

ngx_int_t
ngx_http_tsdb_body(ngx_http_request_t *r, u_char **buf, size_t *len)
{
    u_char       *p;
    size_t        n;
    ssize_t       rd;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    n = 0;

    if (r->request_body == NULL) {
        *buf = NULL;
        *len = 0;
        return NGX_OK;
    }

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        n += ngx_buf_size(cl->buf);
    }

    p = ngx_pnalloc(r->pool, n ? n : 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *buf = p;
    *len = n;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        rd = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                           b->file_pos);
        if (rd != b->file_last - b->file_pos) {
            return NGX_ERROR;
        }

        p += rd;
    }

    return NGX_OK;
}


/*
 * Sends status with "reason\n" as a text/plain body; returns what to
 * hand to ngx_http_finalize_request().
 */

ngx_int_t
ngx_http_tsdb_reply(ngx_http_request_t *r, ngx_uint_t status,
    const char *reason)
{
    size_t        len;
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    len = ngx_strlen(reason);

    b = ngx_create_temp_buf(r->pool, len + 1);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, reason, len);
    *b->last++ = '\n';
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = status;
    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = b->last - b->pos;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * Sends the headers r->headers_out holds, then the len bytes at p
 * (memory that lives as long as the request), and finalizes r.
 */

void
ngx_http_tsdb_send(ngx_http_request_t *r, u_char *p, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only || len == 0) {
        ngx_http_finalize_request(r, rc == NGX_OK && !r->header_only
                                     ? ngx_http_send_special(r,
                                                             NGX_HTTP_LAST)
                                     : rc);
        return;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    b->pos = p;
    b->last = p + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));
}


ngx_int_t
ngx_http_tsdb_header(ngx_http_request_t *r, const char *name,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);

    return NGX_OK;
}


/*
 * The worker's scratch memory for work done start to end on the event
 * loop: what was allocated from it before is given back, so nothing
 * allocated from it may be used once the caller returns to the event
 * loop.  Requests of the same shape then reuse the same block instead
 * of going through malloc() and free() for each of their arrays (with
 * glibc, a heap that shrinks and grows back with brk() every few
 * requests).  Up to NGX_HTTP_TSDB_SCRATCH_KEEP bytes are kept.
 */

void
ngx_http_tsdb_scratch_reset(void)
{
    size_t                    total;
    ngx_http_tsdb_scratch_t  *b;

    b = ngx_http_tsdb_scratch;

    if (b == NULL) {
        return;
    }

    if (b->next == NULL && b->size <= NGX_HTTP_TSDB_SCRATCH_KEEP) {
        b->used = 0;
        return;
    }

    /* one block of what the last request took, for the next one */

    total = 0;
    for ( /* void */ ; b; b = b->next) {
        total += b->size;
    }

    ngx_http_tsdb_scratch_free();

    if (total <= NGX_HTTP_TSDB_SCRATCH_KEEP
        && ngx_http_tsdb_scratch_alloc(total) != NULL)
    {
        ngx_http_tsdb_scratch->used = 0;
    }
}


/* NULL when out of memory; 16-byte aligned */

void *
ngx_http_tsdb_scratch_alloc(size_t size)
{
    u_char                   *p;
    size_t                    n;
    ngx_http_tsdb_scratch_t  *b;

    size = ngx_align(size, 16);
    b = ngx_http_tsdb_scratch;

    if (b && b->size - b->used >= size) {
        p = b->data + b->used;
        b->used += size;
        return p;
    }

    n = ngx_max(size, NGX_HTTP_TSDB_SCRATCH_MIN);
    if (b) {
        n = ngx_max(n, 2 * b->size);
    }

    b = ngx_alloc(sizeof(ngx_http_tsdb_scratch_t) + 16 + n, ngx_cycle->log);
    if (b == NULL) {
        return NULL;
    }

    b->next = ngx_http_tsdb_scratch;
    b->size = n;
    b->used = size;
    b->data = ngx_align_ptr((u_char *) b + sizeof(ngx_http_tsdb_scratch_t),
                            16);
    ngx_http_tsdb_scratch = b;

    return b->data;
}


/* a protobuf-c allocator on the scratch memory; free is a no-op */

void
ngx_http_tsdb_scratch_allocator(ProtobufCAllocator *a)
{
    a->alloc = ngx_http_tsdb_scratch_palloc;
    a->free = ngx_http_tsdb_pfree;
    a->allocator_data = NULL;
}


static void *
ngx_http_tsdb_scratch_palloc(void *data, size_t size)
{
    return ngx_http_tsdb_scratch_alloc(size);
}


static void
ngx_http_tsdb_scratch_free(void)
{
    ngx_http_tsdb_scratch_t  *b, *next;

    for (b = ngx_http_tsdb_scratch; b; b = next) {
        next = b->next;
        ngx_free(b);
    }

    ngx_http_tsdb_scratch = NULL;
}


/* Allocations live as long as the request; free is a no-op. */

void
ngx_http_tsdb_pool_allocator(ngx_http_request_t *r, ProtobufCAllocator *a)
{
    a->alloc = ngx_http_tsdb_palloc;
    a->free = ngx_http_tsdb_pfree;
    a->allocator_data = r->pool;
}


static void *
ngx_http_tsdb_palloc(void *data, size_t size)
{
    return ngx_palloc(data, size);
}


static void
ngx_http_tsdb_pfree(void *data, void *p)
{
    /* freed with the request pool */
}


/*
 * Request work off the event loop: work(data) runs in zone z's thread
 * pool while the request is blocked, then done(data) on the event loop;
 * without a pool, or when the pool refuses the task, both run here.
 * work may touch only what is thread-safe: the shared zone, the LMDB
 * handles and memory that nobody else uses meanwhile.
 */

typedef struct {
    ngx_http_request_t         *request;
    ngx_http_tsdb_work_pt       work;
    ngx_http_tsdb_work_pt       done;
    void                       *data;
} ngx_http_tsdb_offload_t;


#if (NGX_THREADS)

static void
ngx_http_tsdb_offload_thread(void *data, ngx_log_t *log)
{
    ngx_http_tsdb_offload_t  *o = data;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, log, 0, "tsdb thread task");

    o->work(o->data);
}


static void
ngx_http_tsdb_offload_done(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_tsdb_offload_t  *o = ev->data;

    r = o->request;
    c = r->connection;

    r->main->blocked--;

    o->done(o->data);
    ngx_http_run_posted_requests(c);
}

#endif


void
ngx_http_tsdb_offload(ngx_http_request_t *r, ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_work_pt work, ngx_http_tsdb_work_pt done, void *data)
{
#if (NGX_THREADS)
    ngx_thread_task_t        *task;
    ngx_http_tsdb_offload_t  *o;

    if (z->thread_pool != NULL) {
        task = ngx_thread_task_alloc(r->pool,
                                     sizeof(ngx_http_tsdb_offload_t));
        if (task != NULL) {
            o = task->ctx;
            o->request = r;
            o->work = work;
            o->done = done;
            o->data = data;

            task->handler = ngx_http_tsdb_offload_thread;
            task->event.handler = ngx_http_tsdb_offload_done;
            task->event.data = o;
            task->event.log = r->connection->log;

            if (ngx_thread_task_post(z->thread_pool, task) == NGX_OK) {
                r->main->blocked++;
                return;
            }
        }

        /* no task: the work runs here */
    }
#endif

    work(data);
    done(data);
}
