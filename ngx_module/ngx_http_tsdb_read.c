/*
 * Copyright (C) ngx_tsdb authors
 *
 * tsdb_remote_read: Prometheus remote-read from a zone, SAMPLES and
 * STREAMED_XOR_CHUNKS.
 *
 * The response is produced piece by piece (ts_rread_next(): one frame
 * per series when streaming) and sent as it comes; when the client is
 * slower than we are, production stops until the socket drains, so a
 * request holds at most the frames nginx has not sent yet.  A frame's
 * memory is a large pool allocation given back as soon as it was sent.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tsdb_module.h"
#include "ts_rread.h"
#include "ts_source_db.h"


typedef struct {
    ts_rread_t                 *rr;
    ts_source_head_t            hs;
    ts_source_db_t              ds;
    ngx_chain_t                *pending;    /* made before the header */
    ngx_chain_t                *free;
    ngx_chain_t                *busy;
    ngx_uint_t                  done;
} ngx_http_tsdb_read_ctx_t;


static void ngx_http_tsdb_read_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_tsdb_read_start(ngx_http_request_t *r,
    ngx_http_tsdb_read_ctx_t *ctx, u_char *body, size_t len);
static ngx_int_t ngx_http_tsdb_read_fail(ngx_http_request_t *r,
    ts_rread_error_t *e);
static void ngx_http_tsdb_read_send(ngx_http_request_t *r);
static ngx_int_t ngx_http_tsdb_read_frame(ngx_http_request_t *r,
    ngx_http_tsdb_read_ctx_t *ctx, ngx_chain_t **out, ts_rread_error_t *e);
static void ngx_http_tsdb_read_release(ngx_http_request_t *r,
    ngx_http_tsdb_read_ctx_t *ctx);
static void ngx_http_tsdb_read_cleanup(void *data);


ngx_int_t
ngx_http_tsdb_read_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_tsdb_req_t       *req;
    ngx_http_tsdb_read_ctx_t  *ctx;

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    req = ngx_http_tsdb_metrics_begin(r, NGX_HTTP_TSDB_REMOTE_READ);
    if (req == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tsdb_read_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    req->data = ctx;

    rc = ngx_http_read_client_request_body(r, ngx_http_tsdb_read_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_tsdb_read_body(ngx_http_request_t *r)
{
    u_char                    *body;
    size_t                     len;
    ngx_int_t                  rc;
    ngx_http_tsdb_req_t       *req;
    ngx_http_tsdb_read_ctx_t  *ctx;

    req = ngx_http_get_module_ctx(r, ngx_http_tsdb_module);
    ctx = req->data;

    if (ngx_http_tsdb_body(r, &body, &len) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* NGX_OK: the header is sent, stream the rest; else finalize */

    rc = ngx_http_tsdb_read_start(r, ctx, body, len);
    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, rc == NGX_DECLINED ? NGX_OK : rc);
        return;
    }

    r->write_event_handler = ngx_http_tsdb_read_send;
    ngx_http_tsdb_read_send(r);
}


static ngx_int_t
ngx_http_tsdb_read_start(ngx_http_request_t *r,
    ngx_http_tsdb_read_ctx_t *ctx, u_char *body, size_t len)
{
    int                        rc;
    uint32_t                   nsrc;
    ngx_str_t                  tenant;
    const char                *ce;
    ts_source_t               *src[2];
    ts_rread_conf_t            conf;
    ts_rread_error_t           e;
    ProtobufCAllocator         a;
    ngx_pool_cleanup_t        *cln;
    ngx_http_tsdb_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);

    if (ngx_http_tsdb_tenant(r, lcf, &tenant) != NGX_OK) {
        rc = ngx_http_tsdb_reply(r, NGX_HTTP_BAD_REQUEST,
                                 "invalid tenant id");
        return rc == NGX_OK ? NGX_DECLINED : rc;
    }

    /*
     * The head first: on a timestamp both hold, its sample wins.  LMDB
     * holds what checkpoints persisted, including what left the head.
     */

    ts_source_head_init(&ctx->hs, &lcf->zone->head, (char *) tenant.data,
                        tenant.len);
    src[0] = &ctx->hs.src;
    nsrc = 1;

    if (lcf->zone->db != NULL) {
        ts_source_db_init(&ctx->ds, lcf->zone->db, (char *) tenant.data,
                          tenant.len);
        src[nsrc++] = &ctx->ds.src;
    }

    ts_rread_conf_default(&conf);
    conf.max_body_size = lcf->max_body_size;

    ngx_http_tsdb_pool_allocator(r, &a);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_tsdb_read_cleanup;
    cln->data = ctx;

    rc = ts_rread_open(&ctx->rr, body, len, src, nsrc, &conf, &a, &e);
    if (rc != TS_OK) {
        return ngx_http_tsdb_read_fail(r, &e);
    }

    /*
     * The first piece selects the first query's series: its errors (a
     * limit, a regex match limit) still get a status of their own.
     */

    rc = ngx_http_tsdb_read_frame(r, ctx, &ctx->pending, &e);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_tsdb_read_fail(r, &e);
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type.data =
        (u_char *) ts_rread_content_type(ctx->rr);
    r->headers_out.content_type.len =
        ngx_strlen(r->headers_out.content_type.data);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = -1;

    if (ts_rread_type(ctx->rr) == TS_RREAD_SAMPLES) {
        /* the whole response is that one piece */
        r->headers_out.content_length_n = ngx_buf_size(ctx->pending->buf);
    }

    ce = ts_rread_content_encoding(ctx->rr);
    if (ce != NULL
        && ngx_http_tsdb_header(r, "Content-Encoding", ce) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc == NGX_OK ? NGX_HTTP_INTERNAL_SERVER_ERROR : rc;
    }

    return NGX_OK;
}


/*
 * Answers a request the store refused, before any output: 400 when the
 * client is at fault, else 500.  NGX_DECLINED when the answer went out.
 */

static ngx_int_t
ngx_http_tsdb_read_fail(ngx_http_request_t *r, ts_rread_error_t *e)
{
    ngx_int_t   rc;
    ngx_uint_t  level;

    level = e->client ? NGX_LOG_INFO : NGX_LOG_WARN;
    ngx_log_error(level, r->connection->log, 0, "tsdb remote read: %s",
                  e->msg);

    rc = ngx_http_tsdb_reply(r, e->client ? NGX_HTTP_BAD_REQUEST
                             : NGX_HTTP_INTERNAL_SERVER_ERROR, e->msg);

    return rc == NGX_OK ? NGX_DECLINED : rc;
}


/* Produces and sends frames until done or until the client lags. */

static void
ngx_http_tsdb_read_send(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_chain_t               *out;
    ts_rread_error_t           e;
    ngx_http_tsdb_req_t       *req;
    ngx_http_tsdb_read_ctx_t  *ctx;

    req = ngx_http_get_module_ctx(r, ngx_http_tsdb_module);
    ctx = req->data;

    for ( ;; ) {
        out = ctx->pending;
        ctx->pending = NULL;

        if (out == NULL && ctx->busy == NULL && !ctx->done) {
            rc = ngx_http_tsdb_read_frame(r, ctx, &out, &e);

            if (rc == NGX_DECLINED) {
                /* the status is sent: all we can do is cut it short */
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "tsdb remote read: %s", e.msg);
            }

            if (rc != NGX_OK) {
                ngx_http_finalize_request(r, NGX_ERROR);
                return;
            }
        }

        rc = ngx_http_output_filter(r, out);

        ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, &out,
                                (ngx_buf_tag_t) &ngx_http_tsdb_module);
        ngx_http_tsdb_read_release(r, ctx);

        if (rc == NGX_ERROR) {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }

        if (ctx->busy != NULL) {
            if (ngx_handle_write_event(r->connection->write, 0) != NGX_OK) {
                ngx_http_finalize_request(r, NGX_ERROR);
            }

            return;
        }

        if (ctx->done) {
            ngx_http_finalize_request(r, rc);
            return;
        }
    }
}


/*
 * The next piece of the response in a buffer of its own: NGX_OK,
 * NGX_DECLINED with e filled when reading failed, NGX_ERROR.
 */

static ngx_int_t
ngx_http_tsdb_read_frame(ngx_http_request_t *r,
    ngx_http_tsdb_read_ctx_t *ctx, ngx_chain_t **out, ts_rread_error_t *e)
{
    int                rc;
    size_t             len;
    ngx_buf_t         *b;
    ngx_chain_t       *cl;
    const uint8_t     *p;

    rc = ts_rread_next(ctx->rr, &p, &len, e);
    if (rc < 0) {
        return NGX_DECLINED;
    }

    cl = ngx_chain_get_free_buf(r->pool, &ctx->free);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    b = cl->buf;
    ngx_memzero(b, sizeof(ngx_buf_t));
    b->tag = (ngx_buf_tag_t) &ngx_http_tsdb_module;

    if (rc == 0) {
        ctx->done = 1;
        b->last_buf = (r == r->main) ? 1 : 0;
        b->last_in_chain = 1;
        b->sync = 1;
        *out = cl;
        return NGX_OK;
    }

    b->start = ngx_palloc(r->pool, len);
    if (b->start == NULL) {
        return NGX_ERROR;
    }

    b->pos = b->start;
    b->last = ngx_cpymem(b->start, p, len);
    b->end = b->last;
    b->memory = 1;
    b->flush = 1;

    *out = cl;

    return NGX_OK;
}


/* Frames that went out give their memory back to the pool at once. */

static void
ngx_http_tsdb_read_release(ngx_http_request_t *r,
    ngx_http_tsdb_read_ctx_t *ctx)
{
    ngx_chain_t  *cl;

    for (cl = ctx->free; cl; cl = cl->next) {
        if (cl->buf->start != NULL) {
            ngx_pfree(r->pool, cl->buf->start);
            cl->buf->start = NULL;
        }
    }
}


static void
ngx_http_tsdb_read_cleanup(void *data)
{
    ngx_http_tsdb_read_ctx_t  *ctx = data;

    if (ctx->rr != NULL) {
        ts_rread_free(ctx->rr);
    }

    ts_source_db_free(&ctx->ds);
}
