/*
 * Copyright (C) ngx_tsdb authors
 *
 * tsdb_remote_write: Prometheus remote-write 1.0 and 2.0 into a zone.
 *
 * Order of work per request: decode and validate everything, append the
 * accepted samples to the head, then write them to this worker's WAL and
 * answer.  Appending before logging lets a checkpoint that copies the
 * head never miss a sample whose WAL record it deletes; a sample that is
 * in the head but whose WAL write fails is answered 503 and retried by
 * the sender, and retries of stored samples are accepted as duplicates
 * and logged again.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tsdb_module.h"
#include "ts_rw.h"
#include "ts_walrec.h"


#define NGX_HTTP_TSDB_TENANT_DEFAULT  "anonymous"
#define NGX_HTTP_TSDB_KNOWN_BATCH     256
#define NGX_HTTP_TSDB_APPEND_BATCH    64


typedef struct {
    ngx_uint_t                  status;
    ngx_str_t                   reason;
    ts_rw_version_t             version;
    ts_rw_counts_t              written;
    uint64_t                    rejected;
    uint64_t                    duplicates;
    uint64_t                    hduplicates;  /* histograms */
    uint64_t                    series_created;
    uint64_t                    meta_rejected;
    size_t                      stored;       /* new in the head */
    ts_reject_t                 why;
    ngx_http_request_t         *request;
    ngx_http_tsdb_sync_wait_t   wait;         /* wal_fsync=always */
    ts_head_t                  *head;         /* for the known lookup */
    uint32_t                    tenant;       /* that it used */
    unsigned                    known:1;
    unsigned                    waiting:1;
} ngx_http_tsdb_write_ctx_t;


typedef struct {
    ts_walrec_series_t         *series;
    ts_walrec_label_t          *labels;
    size_t                      nseries;
    size_t                      nlabels;
    ts_walrec_sample_t         *samples;
    size_t                      nsamples;
    ts_walrec_hist_t           *hists;
    size_t                      nhists;
    ts_meta_record_t           *meta;
    size_t                      nmeta;
    ts_exemplar_record_t       *exemplars;
    size_t                      nexemplars;
} ngx_http_tsdb_wal_batch_t;


static void ngx_http_tsdb_write_body(ngx_http_request_t *r);
static void ngx_http_tsdb_write_process(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, u_char *body, size_t len);
static void ngx_http_tsdb_write_known(void *data, ts_rw_series_t *s,
    size_t n);
static ngx_int_t ngx_http_tsdb_write_store(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, ts_rw_request_t *req,
    ngx_http_tsdb_wal_batch_t *wb);
static ngx_int_t ngx_http_tsdb_write_meta(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, ts_rw_request_t *req, uint32_t tenant,
    ngx_str_t *name, ngx_http_tsdb_wal_batch_t *wb);
static void ngx_http_tsdb_write_exemplars(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, ts_rw_series_t *s, uint32_t tenant,
    uint32_t ref, ngx_str_t *name, ngx_http_tsdb_wal_batch_t *wb);
static ngx_int_t ngx_http_tsdb_write_series_labels(ngx_http_request_t *r,
    ngx_http_tsdb_zone_t *z, ngx_str_t *tenant,
    ngx_http_tsdb_wal_batch_t *wb);
static void ngx_http_tsdb_write_relog(ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_wal_batch_t *wb);
static ngx_int_t ngx_http_tsdb_write_series(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, ts_rw_series_t *s, uint32_t ref,
    ngx_http_tsdb_wal_batch_t *wb);
static ngx_int_t ngx_http_tsdb_write_hists(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, ts_rw_series_t *s, uint32_t ref,
    ngx_http_tsdb_wal_batch_t *wb);
static ngx_int_t ngx_http_tsdb_write_result(ngx_http_tsdb_write_ctx_t *ctx,
    ts_rw_series_t *s, int rc);
static void ngx_http_tsdb_write_relog_ref(ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_wal_batch_t *wb, uint64_t ref);
static ngx_int_t ngx_http_tsdb_write_log(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_wal_batch_t *wb);
static ngx_int_t ngx_http_tsdb_wal_record(ngx_http_tsdb_zone_t *z,
    uint8_t type, ngx_http_tsdb_wal_batch_t *wb);
static void ngx_http_tsdb_write_synced(ngx_http_tsdb_sync_wait_t *w,
    ngx_int_t rc);
static void ngx_http_tsdb_write_reply(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_set_header(ngx_http_request_t *r,
    char *name, uint64_t n);
static void ngx_http_tsdb_write_fail(ngx_http_tsdb_write_ctx_t *ctx,
    ngx_uint_t status, const char *reason);


ngx_int_t
ngx_http_tsdb_write_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i;
    ngx_list_part_t            *part;
    ngx_table_elt_t            *h, *ce;
    ngx_http_tsdb_req_t        *req;
    ngx_http_tsdb_write_ctx_t  *ctx;

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    req = ngx_http_tsdb_metrics_begin(r, NGX_HTTP_TSDB_REMOTE_WRITE);
    if (req == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tsdb_write_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    req->data = ctx;

    ctx->version = TS_RW_UNSUPPORTED;

    if (r->headers_in.content_type) {
        ctx->version = ts_rw_content_type(
                           (char *) r->headers_in.content_type->value.data,
                           r->headers_in.content_type->value.len);
    }

    ce = NULL;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == sizeof("Content-Encoding") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Content-Encoding",
                               h[i].key.len) == 0)
        {
            ce = &h[i];
        }
    }

    if (ctx->version == TS_RW_UNSUPPORTED) {
        ngx_http_tsdb_write_fail(ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                 "unsupported Content-Type, expected "
                                 "application/x-protobuf");

    } else if (ce && ts_rw_content_encoding((char *) ce->value.data,
                                            ce->value.len) != TS_OK)
    {
        ngx_http_tsdb_write_fail(ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                 "unsupported Content-Encoding, expected "
                                 "snappy");
    }

    if (ctx->status) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ngx_http_tsdb_write_reply(r, ctx);
        return NGX_DONE;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_tsdb_write_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_tsdb_write_body(ngx_http_request_t *r)
{
    u_char                     *buf;
    size_t                      len;
    ngx_buf_t                  *b;
    ngx_chain_t                *cl;
    ngx_http_tsdb_req_t        *req;
    ngx_http_tsdb_write_ctx_t  *ctx;

    req = ngx_http_get_module_ctx(r, ngx_http_tsdb_module);
    ctx = req->data;

    /*
     * a body read into one memory buffer is decoded where it is (nginx
     * may chain an empty last buffer after it)
     */

    b = NULL;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            if (ngx_buf_size(cl->buf) == 0 && !cl->buf->in_file) {
                continue;
            }

            if (b != NULL || cl->buf->in_file) {
                b = NULL;
                break;
            }

            b = cl->buf;
        }
    }

    if (b) {
        ngx_http_tsdb_write_process(r, ctx, b->pos, b->last - b->pos);

    } else if (ngx_http_tsdb_body(r, &buf, &len) != NGX_OK) {
        ngx_http_tsdb_write_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "cannot read the request body");

    } else {
        ngx_http_tsdb_write_process(r, ctx, buf, len);
    }

    /* a large request's scratch memory is not kept until the next one */
    ngx_http_tsdb_scratch_reset();

    if (ctx->waiting) {
        /* answered by ngx_http_tsdb_write_synced() */
        r->main->blocked++;
        ngx_http_tsdb_sync_wait(ctx->wait.data, &ctx->wait);
        return;
    }

    ngx_http_tsdb_write_reply(r, ctx);
}


static void
ngx_http_tsdb_write_synced(ngx_http_tsdb_sync_wait_t *w, ngx_int_t rc)
{
    ngx_http_request_t         *r;
    ngx_http_tsdb_write_ctx_t  *ctx;

    ctx = ngx_queue_data(w, ngx_http_tsdb_write_ctx_t, wait);
    r = ctx->request;

    r->main->blocked--;
    ctx->waiting = 0;

    if (rc != NGX_OK) {
        ngx_http_tsdb_write_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "write-ahead log fsync failed");
    }

    ngx_http_tsdb_write_reply(r, ctx);
    ngx_http_run_posted_requests(r->connection);
}


static void
ngx_http_tsdb_write_process(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, u_char *body, size_t len)
{
    int                         rc;
    u_char                     *raw;
    size_t                      rawlen;
    ngx_str_t                   name;
    ts_rw_request_t             req;
    ProtobufCAllocator          a;
    ngx_http_tsdb_loc_conf_t   *lcf;
    ngx_http_tsdb_wal_batch_t   wb;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);

    /*
     * Everything decoded lives in the worker's scratch memory until the
     * records are in the WAL: this function returns nothing that
     * points into it (ctx->why holds its message).
     */

    ngx_http_tsdb_scratch_reset();
    ngx_http_tsdb_scratch_allocator(&a);

    rc = ts_rw_uncompress(body, len, lcf->limits.max_body_size, &a, &raw,
                          &rawlen, &ctx->why);
    if (rc != TS_OK) {
        ngx_http_tsdb_write_fail(ctx, rc == TS_ERR_LIMIT
                                      ? NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                                      : rc == TS_ERR_NOMEM
                                      ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                      : NGX_HTTP_BAD_REQUEST,
                                 ctx->why.msg);
        return;
    }

    ts_rw_request_init(&req, &a, &lcf->limits);

    /* series the head holds skip most validation, see ts_rw.h */

    if (ngx_http_tsdb_tenant(r, lcf, &name) == NGX_OK
        && ts_head_tenant_find(&lcf->zone->head, (char *) name.data,
                               name.len, &ctx->tenant) == TS_OK)
    {
        ctx->head = &lcf->zone->head;
        ctx->known = 1;
        req.known = ngx_http_tsdb_write_known;
        req.known_data = ctx;
    }

    rc = ts_rw_decode(&req, ctx->version, raw, rawlen);
    if (rc != TS_OK) {
        ctx->why = req.why;
        ngx_http_tsdb_write_fail(ctx, rc == TS_ERR_LIMIT
                                      ? NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                                      : rc == TS_ERR_NOMEM
                                      ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                      : NGX_HTTP_BAD_REQUEST,
                                 ctx->why.msg);
        return;
    }

    ctx->rejected = req.rejected.samples + req.rejected.histograms;
    if (req.rejected.series) {
        ctx->why = req.why;
    }

    ngx_memzero(&wb, sizeof(ngx_http_tsdb_wal_batch_t));

    rc = ngx_http_tsdb_write_store(r, ctx, &req, &wb);

    /* the head's sample total: one shared update per request */
    ts_head_count_samples(&lcf->zone->head, ctx->stored);

    if (rc != NGX_OK
        || ngx_http_tsdb_write_log(r, ctx, lcf->zone, &wb) != NGX_OK)
    {
        if (ctx->status == 0) {
            ngx_http_tsdb_write_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "write-ahead log unavailable");
        }

        return;
    }

    ngx_http_tsdb_metrics_count(r, 0, ctx->written.samples
                                      + ctx->written.histograms);
    ngx_http_tsdb_metrics_count(r, 1, ctx->duplicates + ctx->hduplicates);
    ngx_http_tsdb_metrics_count(r, 2, ctx->rejected);
    ngx_http_tsdb_metrics_count(r, 3, ctx->series_created);

    if (ctx->rejected || req.rejected.series || ctx->meta_rejected) {
        ctx->status = NGX_HTTP_BAD_REQUEST;
        ctx->reason.data = ngx_pnalloc(r->pool, TS_REJECT_MSG_SIZE + 128);
        if (ctx->reason.data == NULL) {
            ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return;
        }

        ctx->reason.len = ngx_sprintf(ctx->reason.data,
                              "%uL of %uL series and %uL samples rejected, "
                              "the rest stored; first: %s%Z",
                              req.rejected.series, req.decoded.series,
                              ctx->rejected, ctx->why.msg)
                          - ctx->reason.data - 1;
        return;
    }

    ctx->status = NGX_HTTP_NO_CONTENT;
}


/* ts_rw_known_pt: the head's lookup in batches, without creating */

static void
ngx_http_tsdb_write_known(void *data, ts_rw_series_t *s, size_t n)
{
    ngx_http_tsdb_write_ctx_t *ctx = data;

    size_t          i, k, m;
    ts_head_key_t   keys[NGX_HTTP_TSDB_KNOWN_BATCH];

    for (i = 0; i < n; i += m) {
        m = ngx_min(n - i, NGX_HTTP_TSDB_KNOWN_BATCH);

        for (k = 0; k < m; k++) {
            keys[k].labels = s[i + k].labels;
            keys[k].n = s[i + k].nlabels;
            keys[k].hash = s[i + k].hash;
        }

        ts_head_find_many(ctx->head, ctx->tenant, keys, m);

        for (k = 0; k < m; k++) {
            s[i + k].ref = keys[k].ref;
        }
    }
}


static ngx_int_t
ngx_http_tsdb_write_store(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, ts_rw_request_t *req,
    ngx_http_tsdb_wal_batch_t *wb)
{
    int                        rc;
    uint32_t                   i, tenant, ref;
    ngx_str_t                  name;
    ts_rw_series_t            *s;
    ngx_http_tsdb_zone_t      *z;
    ngx_http_tsdb_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);
    z = lcf->zone;

    if (ngx_http_tsdb_tenant(r, lcf, &name) != NGX_OK) {
        ngx_http_tsdb_write_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                 "invalid tenant id");
        return NGX_ERROR;
    }

    rc = ts_head_tenant(&z->head, (char *) name.data, name.len, &tenant);
    if (rc != TS_OK) {
        ngx_http_tsdb_write_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "too many tenants in the zone");
        return NGX_ERROR;
    }

    wb->samples = ngx_http_tsdb_scratch_alloc((req->decoded.samples + 1)
                                              * sizeof(ts_walrec_sample_t));
    wb->hists = ngx_http_tsdb_scratch_alloc((req->decoded.histograms + 1)
                                            * sizeof(ts_walrec_hist_t));
    wb->series = ngx_http_tsdb_scratch_alloc((req->nseries + 1)
                                             * sizeof(ts_walrec_series_t));
    wb->exemplars = ngx_http_tsdb_scratch_alloc((req->decoded.exemplars + 1)
                                           * sizeof(ts_exemplar_record_t));
    if (wb->samples == NULL || wb->hists == NULL || wb->series == NULL
        || wb->exemplars == NULL)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < req->nseries; i++) {
        s = &req->series[i];

        if (s->reject != TS_REJECT_NONE) {
            continue;
        }

        if (s->ref != 0 && ctx->known && tenant == ctx->tenant) {
            ref = s->ref;
            rc = 0;

        } else {
            rc = ts_head_series(&z->head, tenant, s->labels, s->nlabels,
                                s->hash, lcf->max_series_per_tenant, &ref);
        }

        if (rc == TS_ERR_LIMIT) {
            ctx->rejected += s->nsamples + s->nhistograms;
            if (ctx->why.code == TS_REJECT_NONE) {
                ts_reject_set(&ctx->why, TS_REJECT_TOO_MANY_SAMPLES,
                              "per-tenant series limit of %u reached",
                              (unsigned) lcf->max_series_per_tenant);
            }

            continue;
        }

        if (rc < 0) {
            ngx_http_tsdb_write_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "zone full");
            return NGX_ERROR;
        }

        ctx->series_created += rc;

        if (ngx_http_tsdb_write_series(r, ctx, s, ref, wb) != NGX_OK) {
            return NGX_ERROR;
        }

        ngx_http_tsdb_write_exemplars(r, ctx, s, tenant, ref, &name, wb);
    }

    if (ngx_http_tsdb_write_meta(r, ctx, req, tenant, &name, wb) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_tsdb_write_series_labels(r, z, &name, wb);
}


/*
 * Exemplars into the zone's ring, Prometheus's rules deciding; stored
 * ones and duplicates (a retry) are logged, self-contained, in an
 * EXEMPLARS record.  As in Prometheus, a refused exemplar never fails
 * the request; the 2.0 header counts what was logged.
 */

static void
ngx_http_tsdb_write_exemplars(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, ts_rw_series_t *s, uint32_t tenant,
    uint32_t ref, ngx_str_t *name, ngx_http_tsdb_wal_batch_t *wb)
{
    int                        rc;
    uint32_t                   k;
    ts_exemplar_record_t      *o;
    ngx_http_tsdb_zone_t      *z;
    const ts_rw_exemplar_t    *e;
    ngx_http_tsdb_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);
    z = lcf->zone;

    for (k = 0; k < s->nexemplars; k++) {
        e = &s->exemplars[k];

        rc = ts_exemplar_add(&z->exemplars, tenant, ref, e->t, e->v,
                             e->labels, e->nlabels);
        if (rc < 0) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "tsdb remote write: exemplar at %L not stored: "
                           "%s", e->t, ts_strerror(rc));
            continue;
        }

        o = &wb->exemplars[wb->nexemplars++];
        o->tenant = (char *) name->data;
        o->tenant_len = name->len;
        o->series = s->labels;
        o->nseries = s->nlabels;
        o->t = e->t;
        o->v = e->v;
        o->labels = e->labels;
        o->nlabels = e->nlabels;
        o->enc = NULL;
        o->enc_len = 0;

        ctx->written.exemplars++;
    }
}


/*
 * Metric metadata: 1.0 sends it by family name, 2.0 per series (stored
 * under the series' metric name).  Into the zone's table, then all of
 * it into the WAL, changed or not, so that a retry logs it again.
 */

static ngx_int_t
ngx_http_tsdb_write_meta(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, ts_rw_request_t *req, uint32_t tenant,
    ngx_str_t *name, ngx_http_tsdb_wal_batch_t *wb)
{
    size_t                     i, n;
    ts_meta_record_t          *m;
    const ts_label_t          *mn;
    const ts_rw_series_t      *s;
    const ts_rw_metadata_t    *md;
    ngx_http_tsdb_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);

    n = req->nmetadata;

    for (i = 0; i < req->nseries; i++) {
        n += req->series[i].reject == TS_REJECT_NONE
             && req->series[i].meta != NULL;
    }

    if (n == 0) {
        return NGX_OK;
    }

    wb->meta = ngx_pcalloc(r->pool, n * sizeof(ts_meta_record_t));
    if (wb->meta == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < req->nmetadata + req->nseries; i++) {
        if (i < req->nmetadata) {
            md = &req->metadata[i];
            mn = NULL;

        } else {
            s = &req->series[i - req->nmetadata];

            if (s->reject != TS_REJECT_NONE || s->meta == NULL) {
                continue;
            }

            md = s->meta;
            mn = ts_labels_find(s->labels, s->nlabels, TS_METRIC_NAME_LABEL,
                                TS_METRIC_NAME_LABEL_LEN);
            if (mn == NULL) {
                continue;
            }
        }

        m = &wb->meta[wb->nmeta];
        m->tenant = (const char *) name->data;
        m->tenant_len = name->len;
        m->e.tenant = tenant;
        m->e.type = md->type;
        m->e.name = mn ? mn->value : md->name;
        m->e.name_len = mn ? mn->value_len : md->name_len;
        m->e.help = md->help;
        m->e.help_len = md->help_len;
        m->e.unit = md->unit;
        m->e.unit_len = md->unit_len;

        switch (ts_meta_set(&lcf->zone->meta, &m->e)) {

        case 0:
        case 1:
            wb->nmeta++;
            break;

        case TS_ERR_FULL:
            /* the samples stay: a 400 names what was not stored */
            ctx->meta_rejected++;

            if (ctx->why.code == TS_REJECT_NONE) {
                ts_reject_set(&ctx->why, TS_REJECT_INVALID_METADATA,
                              "metadata table of the zone is full");
            }

            break;

        default:
            /* names and texts were checked by the decoder */
            break;
        }
    }

    return NGX_OK;
}


/* The tenant rides along as the first label of each SERIES entry. */

static ngx_int_t
ngx_http_tsdb_write_series_labels(ngx_http_request_t *r,
    ngx_http_tsdb_zone_t *z, ngx_str_t *tenant,
    ngx_http_tsdb_wal_batch_t *wb)
{
    size_t              i;
    uint32_t            k, n;
    ts_label_t          hl[TS_HEAD_MAX_LABELS];
    ts_walrec_label_t  *l;

    /* after the head appends: see ngx_http_tsdb_flush.c */

    switch (ngx_http_tsdb_flush_observe(z)) {

    case NGX_DONE:
        ngx_http_tsdb_write_relog(z, wb);
        break;

    case NGX_ERROR:
        return NGX_ERROR;

    default:
        break;
    }

    for (i = 0; i < wb->nseries; i++) {
        if (ts_head_labels(&z->head, (uint32_t) wb->series[i].ref, hl,
                           TS_HEAD_MAX_LABELS, &n) != TS_OK)
        {
            return NGX_ERROR;
        }

        l = ngx_palloc(r->pool, (n + 1) * sizeof(ts_walrec_label_t));
        if (l == NULL) {
            return NGX_ERROR;
        }

        l[0].name.data = (const uint8_t *) "";
        l[0].name.len = 0;
        l[0].value.data = tenant->data;
        l[0].value.len = tenant->len;

        for (k = 0; k < n; k++) {
            l[k + 1].name.data = (const uint8_t *) hl[k].name;
            l[k + 1].name.len = hl[k].name_len;
            l[k + 1].value.data = (const uint8_t *) hl[k].value;
            l[k + 1].value.len = hl[k].value_len;
        }

        wb->series[i].labels = l;
        wb->series[i].nlabels = n + 1;
    }

    return NGX_OK;
}


/* The WAL was cut for a new checkpoint: every series logs again. */

static void
ngx_http_tsdb_write_relog(ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_wal_batch_t *wb)
{
    size_t    k;
    uint64_t  ref;

    wb->nseries = 0;

    for (k = 0; k < wb->nsamples; k++) {
        ngx_http_tsdb_write_relog_ref(z, wb, wb->samples[k].ref);
    }

    for (k = 0; k < wb->nhists; k++) {
        ngx_http_tsdb_write_relog_ref(z, wb, wb->hists[k].ref);
    }

    /* the bits marked what is listed; write_log sets them once logged */

    for (k = 0; k < wb->nseries; k++) {
        ref = wb->series[k].ref;
        z->logged[(ref - 1) / 8] &= (uint8_t) ~(1 << ((ref - 1) % 8));
    }
}


static void
ngx_http_tsdb_write_relog_ref(ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_wal_batch_t *wb, uint64_t ref)
{
    if (z->logged[(ref - 1) / 8] & (1 << ((ref - 1) % 8))) {
        return;
    }

    z->logged[(ref - 1) / 8] |= (uint8_t) (1 << ((ref - 1) % 8));

    wb->series[wb->nseries].ref = ref;
    wb->series[wb->nseries].nlabels = 0;
    wb->nseries++;
}


static ngx_int_t
ngx_http_tsdb_write_series(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, ts_rw_series_t *s, uint32_t ref,
    ngx_http_tsdb_wal_batch_t *wb)
{
    int                        rcs[NGX_HTTP_TSDB_APPEND_BATCH];
    size_t                     k, j, n, m;
    int64_t                    oldest;
    uint32_t                   logged;
    ngx_int_t                  res;
    ts_walrec_sample_t        *o;
    ngx_http_tsdb_zone_t      *z;
    ngx_http_tsdb_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);
    z = lcf->zone;
    oldest = (int64_t) ngx_time() * 1000 - z->retention;
    logged = 0;

    if (ngx_http_tsdb_flush_floor(z, ref) != NGX_OK) {
        ngx_http_tsdb_write_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "index unavailable");
        return NGX_ERROR;
    }

    /* one take of the series lock per batch of its samples */

    for (k = 0; k < s->nsamples; k += m) {
        n = ngx_min(s->nsamples - k, NGX_HTTP_TSDB_APPEND_BATCH);
        m = ts_head_append_n(&z->head, ref, &s->samples[k], n, oldest, rcs,
                             &ctx->stored);

        for (j = 0; j < m; j++) {
            res = ngx_http_tsdb_write_result(ctx, s, rcs[j]);

            if (res == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (res == NGX_DECLINED) {
                continue;
            }

            if (rcs[j] == TS_HEAD_DUPLICATE) {
                ctx->duplicates++;

            } else {
                ctx->written.samples++;
            }

            o = &wb->samples[wb->nsamples++];
            o->ref = ref;
            o->t = s->samples[k + j].t;
            o->v = s->samples[k + j].v;
            logged = 1;
        }
    }

    if (s->nhistograms) {
        k = wb->nhists;

        if (ngx_http_tsdb_write_hists(r, ctx, s, ref, wb) != NGX_OK) {
            return NGX_ERROR;
        }

        logged |= wb->nhists > k;
    }

    if (logged && !(z->logged[(ref - 1) / 8] & (1 << ((ref - 1) % 8)))) {
        wb->series[wb->nseries].ref = ref;
        wb->series[wb->nseries].nlabels = 0;
        wb->nseries++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tsdb_write_hists(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx, ts_rw_series_t *s, uint32_t ref,
    ngx_http_tsdb_wal_batch_t *wb)
{
    int                        rc;
    int64_t                    oldest;
    uint32_t                   k;
    ngx_int_t                  res;
    ts_walrec_hist_t          *o;
    ngx_http_tsdb_zone_t      *z;
    ngx_http_tsdb_loc_conf_t  *lcf;
    const ts_rw_histogram_t   *h;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);
    z = lcf->zone;
    oldest = (int64_t) ngx_time() * 1000 - z->retention;

    for (k = 0; k < s->nhistograms; k++) {
        h = &s->histograms[k];
        o = &wb->hists[wb->nhists];

        /* the same fields; spans have the same layout */

        o->ref = ref;
        o->t = h->t;
        o->h.sum = h->sum;
        o->h.zero_threshold = h->zero_threshold;
        o->h.count = h->count;
        o->h.zero_count = h->zero_count;
        o->h.fcount = h->fcount;
        o->h.fzero_count = h->fzero_count;
        o->h.schema = h->schema;
        o->h.is_float = h->is_float;
        o->h.reset_hint = h->reset_hint;
        o->h.n_neg_spans = h->n_neg_spans;
        o->h.n_pos_spans = h->n_pos_spans;
        o->h.neg_spans = (const ts_hspan_t *) h->neg_spans;
        o->h.pos_spans = (const ts_hspan_t *) h->pos_spans;
        o->h.n_neg = h->n_neg;
        o->h.n_pos = h->n_pos;
        o->h.neg_deltas = h->neg_deltas;
        o->h.pos_deltas = h->pos_deltas;
        o->h.neg_counts = h->neg_counts;
        o->h.pos_counts = h->pos_counts;
        o->h.n_custom = h->n_custom;
        o->h.custom_values = h->custom_values;

        rc = h->t < oldest ? TS_ERR_TOO_OLD
                           : ts_head_append_hist(&z->head, ref, h->t, &o->h);

        res = ngx_http_tsdb_write_result(ctx, s, rc);

        if (res == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (res == NGX_DECLINED) {
            continue;
        }

        if (rc == TS_HEAD_DUPLICATE) {
            ctx->hduplicates++;

        } else {
            ctx->written.histograms++;
        }

        wb->nhists++;
    }

    return NGX_OK;
}


/*
 * A head append's result: NGX_OK to log the sample, NGX_DECLINED when
 * it was rejected (counted, the first reason kept), NGX_ERROR when the
 * zone is full (the request fails).
 */

static ngx_int_t
ngx_http_tsdb_write_result(ngx_http_tsdb_write_ctx_t *ctx, ts_rw_series_t *s,
    int rc)
{
    const ts_label_t  *name;

    if (rc >= 0) {
        return NGX_OK;
    }

    if (rc == TS_ERR_FULL) {
        ngx_http_tsdb_write_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "zone full");
        return NGX_ERROR;
    }

    ctx->rejected++;

    if (ctx->why.code == TS_REJECT_NONE) {
        name = ts_labels_find(s->labels, s->nlabels, TS_METRIC_NAME_LABEL,
                              TS_METRIC_NAME_LABEL_LEN);
        ts_reject_set(&ctx->why, TS_REJECT_TOO_MANY_SAMPLES,
                      "%s for a series of %s", ts_strerror(rc),
                      strlen(ts_strerror(rc)), name->value,
                      (size_t) name->value_len);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_tsdb_write_log(ngx_http_request_t *r, ngx_http_tsdb_write_ctx_t *ctx,
    ngx_http_tsdb_zone_t *z, ngx_http_tsdb_wal_batch_t *wb)
{
    int        rc;
    size_t     i;
    uint32_t   ref;

    static const uint8_t  types[] = {
        TS_META_WAL_TYPE, TS_WALREC_SERIES, TS_WALREC_SAMPLES,
        TS_WALREC_HISTOGRAM_SAMPLES, TS_EXEMPLAR_WAL_TYPE
    };

    if (wb->nsamples == 0 && wb->nhists == 0 && wb->nmeta == 0
        && wb->nexemplars == 0)
    {
        return NGX_OK;
    }

    /* SERIES before the samples that refer to them */

    for (i = 0; i < sizeof(types); i++) {
        if (ngx_http_tsdb_wal_record(z, types[i], wb) != NGX_OK) {
            goto failed;
        }
    }

    /*
     * wal_fsync=always: with a thread pool the records are written now
     * and the answer waits for the group fsync that covers them.
     */

    if (z->fsync == NGX_HTTP_TSDB_FSYNC_ALWAYS
        && ngx_http_tsdb_sync_async(z) != NGX_OK)
    {
        rc = ts_wal_sync(z->wal);

    } else {
        rc = ts_wal_flush(z->wal);
    }

    if (rc != TS_OK) {
        goto failed;
    }

    if (z->fsync == NGX_HTTP_TSDB_FSYNC_ALWAYS
        && ngx_http_tsdb_sync_async(z) == NGX_OK)
    {
        ctx->request = r;
        ctx->wait.pos = ts_wal_written(z->wal);
        ctx->wait.done = ngx_http_tsdb_write_synced;
        ctx->wait.data = z;
        ctx->waiting = 1;
    }

    for (i = 0; i < wb->nseries; i++) {
        ref = (uint32_t) wb->series[i].ref;
        z->logged[(ref - 1) / 8] |= (uint8_t) (1 << ((ref - 1) % 8));
    }

    return NGX_OK;

failed:

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "tsdb zone \"%V\": wal write failed: %s", &z->name,
                  ts_wal_errmsg(z->wal));

    /* the lost segment may have held SERIES records: log them again */
    ngx_memzero(z->logged, z->logged_size);

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_tsdb_wal_record(ngx_http_tsdb_zone_t *z, uint8_t type,
    ngx_http_tsdb_wal_batch_t *wb)
{
    int       rc;
    size_t    len, size, n;
    uint8_t  *p;

    switch (type) {

    case TS_META_WAL_TYPE:
        n = wb->nmeta;
        size = ts_meta_record_size(wb->meta, n);
        break;

    case TS_WALREC_SERIES:
        n = wb->nseries;
        size = ts_walrec_series_size(wb->series, n);
        break;

    case TS_WALREC_HISTOGRAM_SAMPLES:
        n = wb->nhists;
        size = ts_walrec_hists_size(wb->hists, n);
        break;

    case TS_EXEMPLAR_WAL_TYPE:
        n = wb->nexemplars;
        size = ts_exemplar_record_size(wb->exemplars, n);
        break;

    default:
        n = wb->nsamples;

        /* the bound saves a packing pass; the exact size near the limit */
        size = ts_walrec_samples_bound(n);

        if (size > TS_WAL_RECORD_MAX) {
            size = ts_walrec_samples_size(wb->samples, n);
        }

        break;
    }

    if (n == 0) {
        return NGX_OK;
    }

    if (ts_wal_reserve(z->wal, size, &p) != TS_OK) {
        return NGX_ERROR;
    }

    switch (type) {

    case TS_META_WAL_TYPE:
        rc = ts_meta_record_encode(p, size, wb->meta, n, &len);
        break;

    case TS_WALREC_SERIES:
        rc = ts_walrec_series_encode(p, size, wb->series, n, &len);
        break;

    case TS_WALREC_HISTOGRAM_SAMPLES:
        rc = ts_walrec_hists_encode(p, size, wb->hists, n, &len);
        break;

    case TS_EXEMPLAR_WAL_TYPE:
        rc = ts_exemplar_record_encode(p, size, wb->exemplars, n, &len);
        break;

    default:
        rc = ts_walrec_samples_encode(p, size, wb->samples, n, &len);
        break;
    }

    if (rc != TS_OK || ts_wal_commit(z->wal, type, len, NULL) != TS_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_tsdb_write_reply(ngx_http_request_t *r,
    ngx_http_tsdb_write_ctx_t *ctx)
{
    ngx_uint_t   level;

    /* client mistakes are [info], our own trouble [warn] */

    if (ctx->status >= NGX_HTTP_BAD_REQUEST) {
        level = (ctx->status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
                ? NGX_LOG_WARN : NGX_LOG_INFO;
        ngx_log_error(level, r->connection->log, 0,
                      "tsdb remote write: %ui %V", ctx->status,
                      &ctx->reason);
    }

    r->headers_out.status = ctx->status;

    if (ctx->version == TS_RW_V2
        && (ngx_http_tsdb_set_header(r,
                "X-Prometheus-Remote-Write-Samples-Written",
                ctx->written.samples + ctx->duplicates) != NGX_OK
            || ngx_http_tsdb_set_header(r,
                "X-Prometheus-Remote-Write-Histograms-Written",
                ctx->written.histograms + ctx->hduplicates) != NGX_OK
            || ngx_http_tsdb_set_header(r,
                "X-Prometheus-Remote-Write-Exemplars-Written",
                ctx->written.exemplars) != NGX_OK))
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->status == NGX_HTTP_SERVICE_UNAVAILABLE
        && ngx_http_tsdb_set_header(r, "Retry-After", 1) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->status == NGX_HTTP_NO_CONTENT) {
        r->header_only = 1;
        ngx_http_finalize_request(r, ngx_http_send_header(r));
        return;
    }

    /* every reason is NUL-terminated: a literal or made with %Z */

    ngx_http_finalize_request(r, ngx_http_tsdb_reply(r, ctx->status,
                                          (const char *) ctx->reason.data));
}


static ngx_int_t
ngx_http_tsdb_set_header(ngx_http_request_t *r, char *name, uint64_t n)
{
    u_char  *v;

    v = ngx_pnalloc(r->pool, NGX_INT64_LEN + 1);
    if (v == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_sprintf(v, "%uL%Z", n);

    return ngx_http_tsdb_header(r, name, (char *) v);
}


/*
 * The tenant of a request: tsdb_tenant's value, "anonymous" when empty;
 * 1 to 128 bytes of [A-Za-z0-9!-_.*'()], not "." or "..", as Mimir.
 */

ngx_int_t
ngx_http_tsdb_tenant(ngx_http_request_t *r, ngx_http_tsdb_loc_conf_t *lcf,
    ngx_str_t *tenant)
{
    u_char      c;
    ngx_uint_t  i;

    if (lcf->tenant == NULL
        || ngx_http_complex_value(r, lcf->tenant, tenant) != NGX_OK)
    {
        tenant->len = 0;
    }

    if (tenant->len == 0) {
        ngx_str_set(tenant, NGX_HTTP_TSDB_TENANT_DEFAULT);
        return NGX_OK;
    }

    if (tenant->len > TS_HEAD_TENANT_LEN
        || (tenant->len == 1 && tenant->data[0] == '.')
        || (tenant->len == 2 && tenant->data[0] == '.'
            && tenant->data[1] == '.'))
    {
        return NGX_DECLINED;
    }

    for (i = 0; i < tenant->len; i++) {
        c = tenant->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || ngx_strchr("!-_.*'()", c)))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static void
ngx_http_tsdb_write_fail(ngx_http_tsdb_write_ctx_t *ctx, ngx_uint_t status,
    const char *reason)
{
    ctx->status = status;
    ctx->reason.data = (u_char *) reason;
    ctx->reason.len = ngx_strlen(reason);
}
