/*
 * Copyright (C) ngx_tsdb authors
 *
 * The module's own metrics: a shared zone holding a ts_metrics registry,
 * a slot per worker claimed in init_process, request accounting in the
 * log phase, and the tsdb_metrics content handler.
 *
 * The zone keeps its name, size and tag across reloads, so nginx hands
 * the old memory back and counters continue.  A worker killed by SIGKILL
 * leaves its slot behind; the next worker to start adopts it and keeps
 * counting from its values.  The series lock is the slab pool mutex,
 * which the master force-unlocks when a worker dies holding it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tsdb_module.h"


#define NGX_HTTP_TSDB_METRICS_SLOTS   256
#define NGX_HTTP_TSDB_METRICS_SERIES  512
#define NGX_HTTP_TSDB_METRICS_CELLS   1024
#define NGX_HTTP_TSDB_METRICS_BUF     8192


/* the order of ngx_http_tsdb_families[] */
enum {
    NGX_HTTP_TSDB_M_REQUESTS = 0,
    NGX_HTTP_TSDB_M_BYTES,
    NGX_HTTP_TSDB_M_DURATION,
    NGX_HTTP_TSDB_M_IN_FLIGHT,
    NGX_HTTP_TSDB_M_WORKERS,
    NGX_HTTP_TSDB_M_STARTS,
    NGX_HTTP_TSDB_M_BUILD,
    NGX_HTTP_TSDB_M_SAMPLES,
    NGX_HTTP_TSDB_M_SERIES_CREATED
};

/* per-handler series in mcf->handler_series[handler][] */
enum {
    NGX_HTTP_TSDB_HS_BYTES = 0,
    NGX_HTTP_TSDB_HS_DURATION,
    NGX_HTTP_TSDB_HS_IN_FLIGHT
};


typedef struct {
    ngx_http_request_t         *request;
    ngx_chain_t                *out;
    ngx_chain_t               **last;
    ngx_buf_t                  *buf;
} ngx_http_tsdb_render_ctx_t;



static ngx_int_t ngx_http_tsdb_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_tsdb_metrics_lock(void *data);
static void ngx_http_tsdb_metrics_unlock(void *data);
static ts_metrics_t *ngx_http_tsdb_metrics_get(ngx_http_tsdb_main_conf_t *mcf);
static int32_t ngx_http_tsdb_metrics_series(ngx_http_tsdb_main_conf_t *mcf,
    ngx_uint_t family, const char *v0, const char *v1);
static int32_t ngx_http_tsdb_handler_series(ngx_http_tsdb_main_conf_t *mcf,
    ngx_http_tsdb_handler_e handler, ngx_uint_t which);
static void ngx_http_tsdb_in_flight_done(void *data);
static int ngx_http_tsdb_render_write(void *data, const char *p,
    size_t len);


static const double  ngx_http_tsdb_duration_buckets[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    30
};


static const ts_metric_family_t  ngx_http_tsdb_families[] = {

    { "tsdb_http_requests_total",
      "Requests served by tsdb handlers, by handler and status code.",
      TS_MFAM_COUNTER, 2, { "handler", "code" }, 0, NULL, 0 },

    { "tsdb_http_request_bytes_total",
      "Bytes of requests (line, headers and body) served by tsdb handlers.",
      TS_MFAM_COUNTER, 1, { "handler" }, 0, NULL, 0 },

    { "tsdb_http_request_duration_seconds",
      "Time from the start of a tsdb handler to the end of the request.",
      TS_MFAM_HISTOGRAM, 1, { "handler" },
      sizeof(ngx_http_tsdb_duration_buckets) / sizeof(double),
      ngx_http_tsdb_duration_buckets, 0 },

    { "tsdb_http_requests_in_flight",
      "Requests being processed by tsdb handlers.",
      TS_MFAM_GAUGE, 1, { "handler" }, 0, NULL, 0 },

    { "tsdb_worker_processes",
      "Worker processes currently running with the tsdb module.",
      TS_MFAM_GAUGE, 0, { NULL }, 0, NULL, 0 },

    { "tsdb_worker_starts_total",
      "Worker processes started, counting respawns after a crash.",
      TS_MFAM_COUNTER, 0, { NULL }, 0, NULL, 0 },

    { "tsdb_build_info",
      "Always 1; the labels give the module and nginx versions.",
      TS_MFAM_GAUGE, 2, { "version", "nginx_version" }, 0, NULL,
      TS_MFAM_MAX },

    { "tsdb_remote_write_samples_total",
      "Remote-write samples by result: written, duplicate (a retry of a "
      "stored sample) or rejected.",
      TS_MFAM_COUNTER, 1, { "result" }, 0, NULL, 0 },

    { "tsdb_remote_write_series_created_total",
      "Series created in a head by remote write.",
      TS_MFAM_COUNTER, 0, { NULL }, 0, NULL, 0 },
};


/* ngx_http_tsdb_metrics_count() "what": a family and its label value */
static const struct {
    ngx_uint_t                  family;
    const char                 *value;
} ngx_http_tsdb_counts[] = {
    { NGX_HTTP_TSDB_M_SAMPLES, "written" },
    { NGX_HTTP_TSDB_M_SAMPLES, "duplicate" },
    { NGX_HTTP_TSDB_M_SAMPLES, "rejected" },
    { NGX_HTTP_TSDB_M_SERIES_CREATED, NULL },
};


static const char  *ngx_http_tsdb_handler_names[] = {
    "none",
    "metrics",
    "remote_write",
    "remote_read",
    "query",
    "profile_ingest",
    "profile_query",
};


ngx_int_t
ngx_http_tsdb_metrics_add_zone(ngx_conf_t *cf,
    ngx_http_tsdb_main_conf_t *mcf)
{
    size_t                         size;
    ngx_str_t                      name = ngx_string("tsdb_metrics");
    ngx_shm_zone_t                *shm_zone;
    ngx_http_tsdb_metrics_zone_t  *ctx;

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_tsdb_metrics_zone_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->size = ts_metrics_region_size(NGX_HTTP_TSDB_METRICS_SLOTS,
                                       NGX_HTTP_TSDB_METRICS_SERIES,
                                       NGX_HTTP_TSDB_METRICS_CELLS);

    /* room for the slab allocator's own page table next to the region */

    size = ngx_align(ctx->size + ctx->size / 8 + 16 * ngx_pagesize,
                     ngx_pagesize);

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_tsdb_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_tsdb_metrics_init_zone;
    shm_zone->data = ctx;

    mcf->metrics_zone = shm_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tsdb_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_tsdb_metrics_zone_t  *octx = data;

    ngx_int_t                      rc;
    ngx_http_tsdb_metrics_zone_t  *ctx;

    ctx = shm_zone->data;
    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (octx != NULL) {
        ctx->region = octx->region;

    } else if (shm_zone->shm.exists) {
        ctx->region = ctx->shpool->data;

    } else {
        ctx->region = ngx_slab_alloc(ctx->shpool, ctx->size);
        if (ctx->region == NULL) {
            return NGX_ERROR;
        }

        ctx->shpool->data = ctx->region;
    }

    rc = ts_metrics_open(&ctx->metrics, ctx->region, ctx->size,
                         ngx_http_tsdb_families,
                         sizeof(ngx_http_tsdb_families)
                             / sizeof(ngx_http_tsdb_families[0]),
                         NGX_HTTP_TSDB_METRICS_SLOTS,
                         NGX_HTTP_TSDB_METRICS_SERIES,
                         NGX_HTTP_TSDB_METRICS_CELLS);
    if (rc != TS_OK) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "tsdb metrics zone: %s", ts_strerror(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_tsdb_metrics_init_process(ngx_cycle_t *cycle,
    ngx_http_tsdb_main_conf_t *mcf)
{
    int            slot;
    int32_t        s;
    ngx_uint_t     i, n;
    ts_metrics_t  *m;

    m = ngx_http_tsdb_metrics_get(mcf);
    if (m == NULL) {
        return NGX_OK;
    }

    n = NGX_HTTP_TSDB_NHANDLERS * NGX_HTTP_TSDB_NCODES;

    mcf->code_series = ngx_alloc(n * sizeof(int32_t), cycle->log);
    if (mcf->code_series == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        mcf->code_series[i] = -1;
    }

    for (i = 0; i < NGX_HTTP_TSDB_NHANDLERS * 3; i++) {
        mcf->handler_series[i / 3][i % 3] = -1;
    }

    for (i = 0; i < NGX_HTTP_TSDB_NCOUNTS; i++) {
        mcf->count_series[i] = -1;
    }

    slot = ts_metrics_claim_slot(m, ngx_pid, ngx_http_tsdb_pid_alive);
    if (slot < 0) {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "tsdb metrics: no free worker slot (%s), this "
                      "worker's requests are not counted",
                      ts_strerror(slot));
        return NGX_OK;
    }

    mcf->slot = slot;

    s = ngx_http_tsdb_metrics_series(mcf, NGX_HTTP_TSDB_M_WORKERS, NULL,
                                     NULL);
    if (s >= 0) {
        ts_metrics_gauge_set(m, slot, s, 1);
    }

    s = ngx_http_tsdb_metrics_series(mcf, NGX_HTTP_TSDB_M_STARTS, NULL,
                                     NULL);
    if (s >= 0) {
        ts_metrics_add(m, slot, s, 1);
    }

    s = ngx_http_tsdb_metrics_series(mcf, NGX_HTTP_TSDB_M_BUILD,
                                     NGX_HTTP_TSDB_VERSION, NGINX_VERSION);
    if (s >= 0) {
        ts_metrics_gauge_set(m, slot, s, 1);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_tsdb_metrics_log_handler(ngx_http_request_t *r)
{
    double                      d;
    int32_t                     s, *cache;
    ngx_int_t                   code;
    ngx_time_t                 *tp;
    ts_metrics_t               *m;
    struct timespec             now;
    ngx_http_tsdb_req_t        *f;
    ngx_http_tsdb_loc_conf_t   *lcf;
    ngx_http_tsdb_main_conf_t  *mcf;
    char                        buf[NGX_INT_T_LEN + 1];

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_tsdb_module);

    if (lcf->handler == NGX_HTTP_TSDB_NONE || mcf->slot < 0) {
        return NGX_OK;
    }

    m = ngx_http_tsdb_metrics_get(mcf);

    code = r->headers_out.status;
    if (code < NGX_HTTP_TSDB_CODE_MIN
        || code >= NGX_HTTP_TSDB_CODE_MIN + NGX_HTTP_TSDB_NCODES)
    {
        code = 0;
    }

    cache = &mcf->code_series[lcf->handler * NGX_HTTP_TSDB_NCODES
                              + (code ? code - NGX_HTTP_TSDB_CODE_MIN : 0)];

    if (*cache == -1) {
        ngx_sprintf((u_char *) buf, "%i%Z", code);
        *cache = ngx_http_tsdb_metrics_series(mcf, NGX_HTTP_TSDB_M_REQUESTS,
                               ngx_http_tsdb_handler_names[lcf->handler],
                               buf);
    }

    if (*cache >= 0) {
        ts_metrics_add(m, mcf->slot, *cache, 1);
    }

    s = ngx_http_tsdb_handler_series(mcf, lcf->handler,
                                     NGX_HTTP_TSDB_HS_BYTES);
    if (s >= 0 && r->request_length > 0) {
        ts_metrics_add(m, mcf->slot, s, (uint64_t) r->request_length);
    }

    s = ngx_http_tsdb_handler_series(mcf, lcf->handler,
                                     NGX_HTTP_TSDB_HS_DURATION);
    if (s < 0) {
        return NGX_OK;
    }

    f = ngx_http_get_module_ctx(r, ngx_http_tsdb_module);

    if (f != NULL) {
        (void) clock_gettime(CLOCK_MONOTONIC, &now);
        d = (double) (now.tv_sec - f->start.tv_sec)
            + (double) (now.tv_nsec - f->start.tv_nsec) / 1e9;

    } else {
        /* never reached a tsdb handler: nginx's millisecond clock */
        tp = ngx_timeofday();
        d = (double) (tp->sec - r->start_sec)
            + (double) ((ngx_msec_int_t) (tp->msec - r->start_msec)) / 1000;
    }

    ts_metrics_observe(m, mcf->slot, s, d > 0 ? d : 0);

    return NGX_OK;
}


void
ngx_http_tsdb_metrics_count(ngx_http_request_t *r, ngx_uint_t what,
    uint64_t n)
{
    int32_t                    *s;
    ngx_http_tsdb_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_tsdb_module);

    if (mcf->slot < 0 || n == 0) {
        return;
    }

    s = &mcf->count_series[what];

    if (*s == -1) {
        *s = ngx_http_tsdb_metrics_series(mcf,
                                          ngx_http_tsdb_counts[what].family,
                                          ngx_http_tsdb_counts[what].value,
                                          NULL);
    }

    if (*s >= 0) {
        ts_metrics_add(ngx_http_tsdb_metrics_get(mcf), mcf->slot, *s, n);
    }
}


/*
 * Counts a request as in flight until its pool is destroyed, which
 * happens exactly once whatever path the request takes, and notes the
 * precise start for the duration histogram.
 */

ngx_http_tsdb_req_t *
ngx_http_tsdb_metrics_begin(ngx_http_request_t *r,
    ngx_http_tsdb_handler_e handler)
{
    ngx_pool_cleanup_t         *cln;
    ngx_http_tsdb_req_t        *req;
    ngx_http_tsdb_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_tsdb_module);

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_tsdb_req_t));
    if (cln == NULL) {
        return NULL;
    }

    req = cln->data;
    req->mcf = mcf;
    req->data = NULL;
    req->in_flight = -1;
    (void) clock_gettime(CLOCK_MONOTONIC, &req->start);
    cln->handler = ngx_http_tsdb_in_flight_done;

    ngx_http_set_ctx(r, req, ngx_http_tsdb_module);

    if (mcf->slot >= 0) {
        req->in_flight = ngx_http_tsdb_handler_series(mcf, handler,
                                             NGX_HTTP_TSDB_HS_IN_FLIGHT);
    }

    if (req->in_flight >= 0) {
        ts_metrics_gauge_add(ngx_http_tsdb_metrics_get(mcf), mcf->slot,
                             req->in_flight, 1);
    }

    return req;
}


static void
ngx_http_tsdb_in_flight_done(void *data)
{
    ngx_http_tsdb_req_t  *req = data;

    if (req->in_flight >= 0) {
        ts_metrics_gauge_add(ngx_http_tsdb_metrics_get(req->mcf),
                             req->mcf->slot, req->in_flight, -1);
    }
}


ngx_int_t
ngx_http_tsdb_metrics_handler(ngx_http_request_t *r)
{
    int                          rc;
    ngx_int_t                    nrc;
    ngx_chain_t                 *cl;
    ts_metrics_t                *m;
    ngx_http_tsdb_main_conf_t   *mcf;
    ngx_http_tsdb_render_ctx_t   ctx;

    static ngx_str_t  type =
        ngx_string("text/plain; version=0.0.4; charset=utf-8");

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    nrc = ngx_http_discard_request_body(r);
    if (nrc != NGX_OK) {
        return nrc;
    }

    if (ngx_http_tsdb_metrics_begin(r, NGX_HTTP_TSDB_METRICS) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mcf = ngx_http_get_module_main_conf(r, ngx_http_tsdb_module);
    m = ngx_http_tsdb_metrics_get(mcf);

    ngx_memzero(&ctx, sizeof(ngx_http_tsdb_render_ctx_t));
    ctx.request = r;
    ctx.last = &ctx.out;

    if (m != NULL) {
        rc = ts_metrics_render(m, ngx_http_tsdb_pid_alive,
                               ngx_http_tsdb_render_write, &ctx);
        if (rc != TS_OK) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "tsdb metrics: render failed: %s",
                          ts_strerror(rc));
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ctx.buf == NULL) {
        ctx.buf = ngx_calloc_buf(r->pool);
        if (ctx.buf == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx.out = ngx_alloc_chain_link(r->pool);
        if (ctx.out == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx.out->buf = ctx.buf;
        ctx.out->next = NULL;
    }

    ctx.buf->last_buf = (r == r->main) ? 1 : 0;
    ctx.buf->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = type;
    r->headers_out.content_type_len = type.len;
    r->headers_out.content_length_n = 0;

    for (cl = ctx.out; cl; cl = cl->next) {
        r->headers_out.content_length_n += ngx_buf_size(cl->buf);
    }

    nrc = ngx_http_send_header(r);
    if (nrc == NGX_ERROR || nrc > NGX_OK || r->header_only) {
        return nrc;
    }

    return ngx_http_output_filter(r, ctx.out);
}


static int
ngx_http_tsdb_render_write(void *data, const char *p, size_t len)
{
    size_t                       n;
    ngx_buf_t                   *b;
    ngx_chain_t                 *cl;
    ngx_http_tsdb_render_ctx_t  *ctx = data;

    while (len) {
        b = ctx->buf;

        if (b == NULL || b->last == b->end) {
            b = ngx_create_temp_buf(ctx->request->pool,
                                    NGX_HTTP_TSDB_METRICS_BUF);
            if (b == NULL) {
                return -1;
            }

            cl = ngx_alloc_chain_link(ctx->request->pool);
            if (cl == NULL) {
                return -1;
            }

            cl->buf = b;
            cl->next = NULL;
            *ctx->last = cl;
            ctx->last = &cl->next;
            ctx->buf = b;
        }

        n = ngx_min(len, (size_t) (b->end - b->last));
        b->last = ngx_cpymem(b->last, p, n);
        p += n;
        len -= n;
    }

    return 0;
}


static ts_metrics_t *
ngx_http_tsdb_metrics_get(ngx_http_tsdb_main_conf_t *mcf)
{
    ngx_http_tsdb_metrics_zone_t  *ctx;

    if (mcf->metrics_zone == NULL) {
        return NULL;
    }

    ctx = mcf->metrics_zone->data;

    return &ctx->metrics;
}


static int32_t
ngx_http_tsdb_metrics_series(ngx_http_tsdb_main_conf_t *mcf,
    ngx_uint_t family, const char *v0, const char *v1)
{
    int                            s;
    ts_lock_t                      lock;
    const char                    *v[2];
    ngx_http_tsdb_metrics_zone_t  *ctx;

    ctx = mcf->metrics_zone->data;

    lock.lock = ngx_http_tsdb_metrics_lock;
    lock.unlock = ngx_http_tsdb_metrics_unlock;
    lock.data = &ctx->shpool->mutex;

    v[0] = v0;
    v[1] = v1;

    s = ts_metrics_series(&ctx->metrics, &lock, family, v);
    if (s < 0) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tsdb metrics: cannot add a series of \"%s\": %s",
                      ngx_http_tsdb_families[family].name, ts_strerror(s));

        /* cached by the callers: not looked up (nor logged) again */
        return -2;
    }

    return s;
}


static int32_t
ngx_http_tsdb_handler_series(ngx_http_tsdb_main_conf_t *mcf,
    ngx_http_tsdb_handler_e handler, ngx_uint_t which)
{
    int32_t  *s;

    static const ngx_uint_t  families[] = {
        NGX_HTTP_TSDB_M_BYTES,
        NGX_HTTP_TSDB_M_DURATION,
        NGX_HTTP_TSDB_M_IN_FLIGHT
    };

    s = &mcf->handler_series[handler][which];

    if (*s == -1) {
        *s = ngx_http_tsdb_metrics_series(mcf, families[which],
                                          ngx_http_tsdb_handler_names[handler],
                                          NULL);
    }

    return *s;
}


static void
ngx_http_tsdb_metrics_lock(void *data)
{
    ngx_shmtx_lock(data);
}


static void
ngx_http_tsdb_metrics_unlock(void *data)
{
    ngx_shmtx_unlock(data);
}

