/*
 * Copyright (C) ngx_tsdb authors
 *
 * tsdb_profile_ingest: Pyroscope's legacy POST /ingest (pprof raw or
 * multipart, folded, lines), mapped to profile types and labels as
 * Pyroscope's ingest adapter does (pkg/og/convert/pprof/profile.go for
 * pprof, pkg/ingester/pyroscope/ingest_adapter.go for folded/lines);
 * and Pyroscope's Connect push API, POST /push.v1.PusherService/Push
 * (application/proto or application/json, optionally gzip-encoded; every
 * raw profile of the request is stored in one transaction, all or none;
 * errors are Connect error JSON).  The parsing that needs no nginx is in
 * store/ts_ingest.c and store/ts_push.c.
 *
 * The body is decoded and normalized on the event loop (bounded by the
 * pprof limits); the LMDB write, a synced commit, runs in the zone's
 * thread pool (inline without one), and the answer is 200 only after
 * the commit: an acknowledged profile is durable and visible to every
 * worker.  Each worker opens the zone's profile store after fork.
 *
 * Group commit: with a thread pool, a worker keeps one write task per
 * zone in the pool.  Requests decoded while it runs wait in the zone's
 * queue; when it completes, everything queued (up to 64 requests and
 * 256 profiles) goes into the next task as one transaction with one
 * sync, and each request is answered after that commit.  Requests are
 * decoded and validated before they queue; should the shared
 * transaction still fail, each request of it is retried in a
 * transaction of its own, so a bad request fails alone.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tsdb_module.h"
#include "ts_folded.h"
#include "ts_inflate.h"
#include "ts_ingest.h"
#include "ts_pprof.h"
#include "ts_pstore.h"
#include "ts_push.h"


#define NGX_HTTP_TSDB_PROF_MAX_LABELS  32
#define NGX_HTTP_TSDB_PROF_ERR         512

/* a Push body may carry several profiles: 4 x the per-profile cap */
#define NGX_HTTP_TSDB_PUSH_BODY_FACTOR 4
#define NGX_HTTP_TSDB_PUSH_PATH        "/push.v1.PusherService/Push"

/* group commit: at most this much in one transaction */
#define NGX_HTTP_TSDB_PROF_BATCH_REQS  64
#define NGX_HTTP_TSDB_PROF_BATCH_PUTS  256


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_tsdb_zone_t       *zone;
    ngx_uint_t                  status;
    ngx_str_t                   reason;
    ngx_str_t                   tenant;

    ngx_str_t                   app;        /* name without labels */
    ngx_str_t                   format;
    ngx_str_t                   spy;
    ngx_str_t                   stc;        /* sample_type_config */
    int64_t                     from;       /* ns */
    int64_t                     until;
    ngx_int_t                   rate;

    ts_pprof_t                  prof;
    ts_label_t                  labels[NGX_HTTP_TSDB_PROF_MAX_LABELS];
    uint32_t                    nlabels;
    ts_pstore_put_t             put;
    ts_pstore_put_t            *puts;       /* put, or a Push's profiles */
    uint32_t                    nputs;
    ts_pstore_stats_t           stats;
    int                         rc;
    size_t                      inflate_left;   /* Push: request budgets */
    size_t                      memory_left;
    unsigned                    push:1;     /* Connect: errors as JSON */
    unsigned                    json:1;     /* application/json */
    ngx_queue_t                 queue;      /* in a batch's queue */
    char                        err[NGX_HTTP_TSDB_PROF_ERR];
} ngx_http_tsdb_prof_ctx_t;


#if (NGX_THREADS)

/* a worker's group commit for one zone (see the top) */
typedef struct {
    ngx_http_tsdb_zone_t       *zone;
    ngx_thread_task_t          *task;
    ngx_queue_t                 pending;    /* decoded, waiting */
    ngx_queue_t                 running;    /* in the task's transaction */
    ts_pstore_put_t            *puts;       /* of running, in order */
    uint32_t                    nputs;
    uint32_t                    nreqs;
    ts_pstore_stats_t           stats;
    int                         rc;
    unsigned                    busy:1;     /* the task is in the pool */
    char                        err[NGX_HTTP_TSDB_PROF_ERR];
} ngx_http_tsdb_prof_batch_t;

#endif


/* Pyroscope's convertMetadata: app name suffix -> type */
typedef struct {
    const char                 *suffix;
    const char                 *metric;
    const char                 *type;      /* NULL: the suffix */
    const char                 *unit;
} ngx_http_tsdb_prof_type_t;


static void ngx_http_tsdb_prof_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_tsdb_prof_suffix(ngx_http_request_t *r,
    const char *suffix);
static ngx_int_t ngx_http_tsdb_prof_args(ngx_http_tsdb_prof_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_prof_arg(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);
static int64_t ngx_http_tsdb_prof_time(ngx_str_t *s, int64_t dflt);
static ngx_int_t ngx_http_tsdb_prof_name(ngx_http_tsdb_prof_ctx_t *ctx,
    ngx_str_t *name);
static ngx_int_t ngx_http_tsdb_prof_label(ngx_http_tsdb_prof_ctx_t *ctx,
    const char *name, size_t nlen, u_char *value, size_t vlen);
static ngx_int_t ngx_http_tsdb_prof_decode(ngx_http_tsdb_prof_ctx_t *ctx,
    u_char *body, size_t len);
static ngx_int_t ngx_http_tsdb_prof_multipart(ngx_http_tsdb_prof_ctx_t *ctx,
    u_char **body, size_t *len);
static ngx_int_t ngx_http_tsdb_prof_pprof(ngx_http_tsdb_prof_ctx_t *ctx,
    u_char *body, size_t len);
static ngx_int_t ngx_http_tsdb_prof_folded(ngx_http_tsdb_prof_ctx_t *ctx,
    u_char *body, size_t len, ts_folded_fmt_t fmt);
static const char *ngx_http_tsdb_prof_metric(ngx_http_tsdb_prof_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_prof_push(ngx_http_tsdb_prof_ctx_t *ctx,
    u_char *body, size_t len);
static ngx_int_t ngx_http_tsdb_prof_push_type(ngx_http_tsdb_prof_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_prof_push_body(ngx_http_tsdb_prof_ctx_t *ctx,
    u_char **body, size_t *len);
static ngx_int_t ngx_http_tsdb_prof_push_series(ngx_http_tsdb_prof_ctx_t *ctx,
    const ts_push_series_t *s, int64_t now);
static ngx_int_t ngx_http_tsdb_prof_push_profile(
    ngx_http_tsdb_prof_ctx_t *ctx, const ts_push_raw_t *raw,
    ts_pprof_t **out);
static ngx_table_elt_t *ngx_http_tsdb_prof_header(ngx_http_request_t *r,
    const char *name);
static ngx_int_t ngx_http_tsdb_prof_connect_reply(
    ngx_http_tsdb_prof_ctx_t *ctx);
static void ngx_http_tsdb_prof_store(ngx_http_tsdb_prof_ctx_t *ctx);
#if (NGX_THREADS)
static void ngx_http_tsdb_prof_put(void *data);
#endif
static void ngx_http_tsdb_prof_stored(void *data);
#if (NGX_THREADS)
static void ngx_http_tsdb_prof_batch_post(ngx_http_tsdb_prof_batch_t *b);
static ngx_int_t ngx_http_tsdb_prof_batch_take(ngx_http_tsdb_prof_batch_t *b);
static void ngx_http_tsdb_prof_batch_thread(void *data, ngx_log_t *log);
static void ngx_http_tsdb_prof_batch_done(ngx_event_t *ev);
static void ngx_http_tsdb_prof_batch_answer(ngx_http_tsdb_prof_batch_t *b);
#endif
static void ngx_http_tsdb_prof_fail(ngx_http_tsdb_prof_ctx_t *ctx,
    ngx_uint_t status, const char *reason);
static void ngx_http_tsdb_prof_reply(ngx_http_tsdb_prof_ctx_t *ctx);


static const ngx_http_tsdb_prof_type_t  ngx_http_tsdb_prof_types[] = {
    { "cpu", "process_cpu", "samples", "count" },
    { "wall", "wall", "samples", "count" },
    { "itimer", "process_cpu", "samples", "count" },
    { "inuse_objects", "memory", NULL, "count" },
    { "inuse_space", "memory", NULL, "bytes" },
    { "alloc_objects", "memory", NULL, "count" },
    { "alloc_space", "memory", NULL, "bytes" },
    { "goroutines", "goroutine", NULL, "count" },
    { "mutex_count", "mutex", "contentions", "count" },
    { "mutex_duration", "mutex", "delay", "nanoseconds" },
    { "block_count", "block", "contentions", "count" },
    { "block_duration", "block", "delay", "nanoseconds" },
    { "lock_count", "block", "contentions", "count" },
    { "lock_duration", "block", "delay", "nanoseconds" },
    { "alloc_in_new_tlab_objects", "memory", NULL, "count" },
    { "alloc_in_new_tlab_bytes", "memory", NULL, "bytes" },
    { "alloc_outside_tlab_objects", "memory", NULL, "count" },
    { "alloc_outside_tlab_bytes", "memory", NULL, "bytes" },
    { "live", "memory", NULL, "count" },
    { "exceptions", "exceptions", "samples", "count" },
    { "seconds", "wall", "samples", "count" },
    { "nanoseconds", "wall", "samples", "count" },
    { "microseconds", "wall", "samples", "count" },
    { "milliseconds", "wall", "samples", "count" },
    { "bytes", "memory", "samples", "bytes" },
    { NULL, NULL, NULL, NULL }
};


#if (NGX_THREADS)
static ngx_http_tsdb_prof_batch_t  *ngx_http_tsdb_prof_batches;
static ngx_uint_t                   ngx_http_tsdb_prof_nbatches;
#endif


/* pprof sample type -> display name, tree.DefaultSampleTypeMapping */
static const char  *ngx_http_tsdb_prof_display[][2] = {
    { "samples", "cpu" },
    { "contentions", "mutex_count" },
    { "delay", "mutex_duration" },
    { NULL, NULL }
};


ngx_int_t
ngx_http_tsdb_profile_init_process(ngx_cycle_t *cycle,
    ngx_http_tsdb_main_conf_t *mcf)
{
    int                     rc;
    char                    err[TS_PSTORE_ERR_MAX];
    u_char                  path[NGX_MAX_PATH];
    ngx_uint_t              i;
    ts_pstore_conf_t        pc;
    ngx_http_tsdb_zone_t  **z;
#if (NGX_THREADS)
    ngx_http_tsdb_prof_batch_t  *b;
#endif

    z = mcf->zones.elts;

#if (NGX_THREADS)
    ngx_http_tsdb_prof_batches = ngx_pcalloc(cycle->pool,
        (mcf->zones.nelts + 1) * sizeof(ngx_http_tsdb_prof_batch_t));
    if (ngx_http_tsdb_prof_batches == NULL) {
        return NGX_ERROR;
    }

    ngx_http_tsdb_prof_nbatches = 0;
#endif

    for (i = 0; i < mcf->zones.nelts; i++) {
        if (!z[i]->profiles || z[i]->path.len >= NGX_MAX_PATH) {
            continue;
        }

        ngx_cpystrn(path, z[i]->path.data, z[i]->path.len + 1);

        ngx_memzero(&pc, sizeof(ts_pstore_conf_t));
        pc.path = (char *) path;
        pc.uid = (uid_t) -1;
        pc.gid = (gid_t) -1;

        rc = ts_pstore_open(&z[i]->pstore, &pc, err, sizeof(err));
        if (rc != TS_OK) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "tsdb zone \"%V\": profiles: %s", &z[i]->name,
                          err);
            return NGX_ERROR;
        }

#if (NGX_THREADS)
        if (z[i]->thread_pool != NULL) {
            b = &ngx_http_tsdb_prof_batches[ngx_http_tsdb_prof_nbatches];

            b->task = ngx_thread_task_alloc(cycle->pool, 0);
            if (b->task == NULL) {
                return NGX_ERROR;
            }

            b->zone = z[i];
            ngx_queue_init(&b->pending);
            ngx_queue_init(&b->running);

            b->task->ctx = b;
            b->task->handler = ngx_http_tsdb_prof_batch_thread;
            b->task->event.handler = ngx_http_tsdb_prof_batch_done;
            b->task->event.data = b;
            b->task->event.log = cycle->log;

            ngx_http_tsdb_prof_nbatches++;
        }
#endif
    }

    return NGX_OK;
}


void
ngx_http_tsdb_profile_exit_process(ngx_http_tsdb_main_conf_t *mcf)
{
    ngx_uint_t              i;
    ngx_http_tsdb_zone_t  **z;

    z = mcf->zones.elts;

    for (i = 0; i < mcf->zones.nelts; i++) {
        ts_pstore_close(z[i]->pstore);
        z[i]->pstore = NULL;
    }
}


ngx_int_t
ngx_http_tsdb_profile_ingest_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_tsdb_req_t        *req;
    ngx_http_tsdb_loc_conf_t   *lcf;
    ngx_http_tsdb_prof_ctx_t   *ctx;

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    req = ngx_http_tsdb_metrics_begin(r, NGX_HTTP_TSDB_PROFILE_INGEST);
    if (req == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tsdb_prof_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);

    req->data = ctx;
    ctx->request = r;
    ctx->zone = lcf->zone;

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_tsdb_prof_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_tsdb_prof_body(ngx_http_request_t *r)
{
    u_char                     *body;
    size_t                      len;
    ngx_http_tsdb_req_t        *req;
    ngx_http_tsdb_loc_conf_t   *lcf;
    ngx_http_tsdb_prof_ctx_t   *ctx;

    req = ngx_http_get_module_ctx(r, ngx_http_tsdb_module);
    ctx = req->data;
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);

    if (ngx_http_tsdb_prof_suffix(r, NGX_HTTP_TSDB_PUSH_PATH)) {
        ctx->push = 1;

    } else if (!ngx_http_tsdb_prof_suffix(r, "/ingest")) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_NOT_FOUND,
                                "unknown profile ingest endpoint, expected"
                                " .../ingest or ..." NGX_HTTP_TSDB_PUSH_PATH);
        goto done;
    }

    if (ctx->zone->pstore == NULL) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "profile store not open");
        goto done;
    }

    if (ngx_http_tsdb_tenant(r, lcf, &ctx->tenant) != NGX_OK) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                "invalid tenant id");
        goto done;
    }

    if (!ctx->push && ngx_http_tsdb_prof_args(ctx) != NGX_OK) {
        goto done;
    }

    if (ngx_http_tsdb_body(r, &body, &len) != NGX_OK) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "cannot read the request body");
        goto done;
    }

    if (ctx->push) {
        if (ngx_http_tsdb_prof_push(ctx, body, len) != NGX_OK) {
            goto done;
        }

    } else if (ngx_http_tsdb_prof_decode(ctx, body, len) != NGX_OK) {
        goto done;
    }

    ngx_http_tsdb_prof_store(ctx);
    return;

done:

    ngx_http_tsdb_prof_reply(ctx);
}


static ngx_int_t
ngx_http_tsdb_prof_suffix(ngx_http_request_t *r, const char *suffix)
{
    size_t  n;

    n = ngx_strlen(suffix);

    return r->uri.len >= n
           && ngx_strncmp(r->uri.data + r->uri.len - n, suffix, n) == 0;
}


static ngx_int_t
ngx_http_tsdb_prof_args(ngx_http_tsdb_prof_ctx_t *ctx)
{
    int64_t              now;
    ngx_str_t            name, v;
    ngx_time_t          *tp;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ngx_http_tsdb_prof_arg(r, "name", &name) != NGX_OK
        || name.len == 0)
    {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                "the \"name\" parameter is required");
        return NGX_ERROR;
    }

    if (ngx_http_tsdb_prof_name(ctx, &name) != NGX_OK) {
        return NGX_ERROR;
    }

    tp = ngx_timeofday();
    now = (int64_t) tp->sec * 1000000000 + (int64_t) tp->msec * 1000000;

    (void) ngx_http_tsdb_prof_arg(r, "from", &v);
    ctx->from = ngx_http_tsdb_prof_time(&v, now);
    (void) ngx_http_tsdb_prof_arg(r, "until", &v);
    ctx->until = ngx_http_tsdb_prof_time(&v, now);

    if (ctx->from < 0 || ctx->until < 0) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                "\"from\" and \"until\" must be unix times");
        return NGX_ERROR;
    }

    (void) ngx_http_tsdb_prof_arg(r, "format", &ctx->format);

    if (ngx_http_tsdb_prof_arg(r, "spyName", &ctx->spy) != NGX_OK
        || ctx->spy.len == 0)
    {
        ngx_str_set(&ctx->spy, "unknown");
    }

    ctx->rate = 100;

    if (ngx_http_tsdb_prof_arg(r, "sampleRate", &v) == NGX_OK && v.len) {
        ctx->rate = ngx_atoi(v.data, v.len);
        if (ctx->rate <= 0) {
            ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                    "invalid \"sampleRate\"");
            return NGX_ERROR;
        }
    }

    /* units and aggregationType: Pyroscope ignores them for v1 storage */

    return ngx_http_tsdb_prof_label(ctx, "pyroscope_spy", 13, ctx->spy.data,
                                    ctx->spy.len);
}


static ngx_int_t
ngx_http_tsdb_prof_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    u_char     *dst, *src;
    ngx_str_t   raw;

    value->len = 0;
    value->data = NULL;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    dst = ngx_pnalloc(r->pool, raw.len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    value->data = dst;
    src = raw.data;
    ngx_unescape_uri(&dst, &src, raw.len, NGX_UNESCAPE_URI);
    value->len = dst - value->data;

    /* '+' is a space in a form-encoded query string */

    for (src = value->data; src < dst; src++) {
        if (*src == '+') {
            *src = ' ';
        }
    }

    return NGX_OK;
}


/* unix seconds, ms, us or ns by magnitude, as Pyroscope's attime */

static int64_t
ngx_http_tsdb_prof_time(ngx_str_t *s, int64_t dflt)
{
    int64_t  v;

    if (s->len == 0) {
        return dflt;
    }

    if (s->len > 19) {
        return -1;
    }

    v = ngx_atoof(s->data, s->len);
    if (v < 0) {
        return -1;
    }

    if (v < 10000000000LL) {
        return v * 1000000000;
    }

    if (v < 10000000000000LL) {
        return v * 1000000;
    }

    if (v < 10000000000000000LL) {
        return v * 1000;
    }

    return v;
}


/* app{k=v,k2=v2}: Pyroscope's segment key */

static ngx_int_t
ngx_http_tsdb_prof_name(ngx_http_tsdb_prof_ctx_t *ctx, ngx_str_t *name)
{
    int          rc;
    size_t       len;
    uint32_t     i, n;
    const char  *app, *reason;
    ts_label_t   l[NGX_HTTP_TSDB_PROF_MAX_LABELS];

    rc = ts_ingest_name((char *) name->data, name->len, &app, &len, l,
                        NGX_HTTP_TSDB_PROF_MAX_LABELS - 2, &n, &reason);
    if (rc != TS_OK) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST, reason);
        return NGX_ERROR;
    }

    ctx->app.data = (u_char *) app;
    ctx->app.len = len;

    for (i = 0; i < n; i++) {
        if (ngx_http_tsdb_prof_label(ctx, l[i].name, l[i].name_len,
                                     (u_char *) l[i].value, l[i].value_len)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tsdb_prof_label(ngx_http_tsdb_prof_ctx_t *ctx, const char *name,
    size_t nlen, u_char *value, size_t vlen)
{
    uint32_t     i;
    ts_label_t  *l;

    for (i = 0; i < ctx->nlabels; i++) {
        l = &ctx->labels[i];

        if (l->name_len == nlen && ngx_strncmp(l->name, name, nlen) == 0) {
            l->value = (char *) value;
            l->value_len = (uint32_t) vlen;
            return NGX_OK;
        }
    }

    if (ctx->nlabels >= NGX_HTTP_TSDB_PROF_MAX_LABELS - 2) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                "too many labels");
        return NGX_ERROR;
    }

    l = &ctx->labels[ctx->nlabels++];
    l->name = name;
    l->name_len = (uint32_t) nlen;
    l->value = (char *) value;
    l->value_len = (uint32_t) vlen;

    return NGX_OK;
}


/* format dispatch as readInputRawDataFromRequest */

static ngx_int_t
ngx_http_tsdb_prof_decode(ngx_http_tsdb_prof_ctx_t *ctx, u_char *body,
    size_t len)
{
    ngx_str_t           *f;
    ngx_table_elt_t     *ct;
    ngx_http_request_t  *r;

    r = ctx->request;
    f = &ctx->format;
    ct = r->headers_in.content_type;

    if ((f->len == 3 && ngx_strncmp(f->data, "jfr", 3) == 0)
        || (f->len == 4 && ngx_strncmp(f->data, "trie", 4) == 0)
        || (f->len == 4 && ngx_strncmp(f->data, "tree", 4) == 0)
        || (f->len == 10 && ngx_strncmp(f->data, "speedscope", 10) == 0))
    {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                "unsupported format, expected pprof,"
                                " folded or lines");
        return NGX_ERROR;
    }

    if (f->len == 5 && ngx_strncmp(f->data, "lines", 5) == 0) {
        return ngx_http_tsdb_prof_folded(ctx, body, len, TS_FOLDED_LINES);
    }

    if ((f->len == 5 && ngx_strncmp(f->data, "pprof", 5) == 0)
        || (ct != NULL
            && ngx_strlcasestrn(ct->value.data,
                                ct->value.data + ct->value.len,
                                (u_char *) "multipart/form-data",
                                sizeof("multipart/form-data") - 2)
               != NULL))
    {
        if (ct != NULL
            && ngx_strlcasestrn(ct->value.data,
                                ct->value.data + ct->value.len,
                                (u_char *) "multipart/form-data",
                                sizeof("multipart/form-data") - 2)
               != NULL
            && ngx_http_tsdb_prof_multipart(ctx, &body, &len) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_tsdb_prof_pprof(ctx, body, len);
    }

    if (f->len == 0 || (f->len == 6 && ngx_strncmp(f->data, "folded", 6) == 0))
    {
        return ngx_http_tsdb_prof_folded(ctx, body, len, TS_FOLDED);
    }

    ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST, "unknown format");
    return NGX_ERROR;
}


/*
 * multipart/form-data (RFC 7578): the "profile" part is the body, the
 * "sample_type_config" part is kept; "prev_profile" is refused as
 * Pyroscope refuses it.
 */

static ngx_int_t
ngx_http_tsdb_prof_multipart(ngx_http_tsdb_prof_ctx_t *ctx, u_char **body,
    size_t *len)
{
    int                 rc;
    const char         *reason;
    ngx_table_elt_t    *ct;
    ts_ingest_parts_t   parts;

    ct = ctx->request->headers_in.content_type;

    rc = ts_ingest_multipart((char *) ct->value.data, ct->value.len, *body,
                             *len, &parts, &reason);
    if (rc != TS_OK) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST, reason);
        return NGX_ERROR;
    }

    if (parts.profile == NULL) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                "multipart body without a \"profile\" part");
        return NGX_ERROR;
    }

    ctx->stc.data = (u_char *) parts.stc;
    ctx->stc.len = parts.stc_len;
    *body = (u_char *) parts.profile;
    *len = parts.profile_len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tsdb_prof_pprof(ngx_http_tsdb_prof_ctx_t *ctx, u_char *body,
    size_t len)
{
    int                  rc;
    const char          *metric;
    ngx_uint_t           status;
    ts_pprof_why_t       why;
    ProtobufCAllocator   a;

    ngx_http_tsdb_pool_allocator(ctx->request, &a);
    ts_pprof_init(&ctx->prof, &a, NULL);

    rc = ts_pprof_parse(&ctx->prof, body, len, &why);
    if (rc != TS_OK) {
        status = (why.code == TS_PPROF_TOO_LARGE)
                 ? NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                 : (rc == TS_ERR_NOMEM) ? NGX_HTTP_INTERNAL_SERVER_ERROR
                 : NGX_HTTP_BAD_REQUEST;
        ngx_http_tsdb_prof_fail(ctx, status, why.msg);
        return NGX_ERROR;
    }

    if (ctx->prof.ntypes == 0) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                "pprof profile without sample types");
        return NGX_ERROR;
    }

    /* fixTime: a zero or 1970 time (old agents) becomes "from" */

    if (ctx->prof.time_nanos < 31536000000000000LL) {
        ctx->prof.time_nanos = ctx->from;
    }

    metric = ngx_http_tsdb_prof_metric(ctx);

    ctx->put.name = metric;
    ctx->put.name_len = ngx_strlen(metric);

    /* createLabels: service_name is the whole app name */

    return ngx_http_tsdb_prof_label(ctx, "service_name", 12, ctx->app.data,
                                    ctx->app.len);
}


/* the display name a sample_type_config part gives type st, if any */

static ngx_int_t
ngx_http_tsdb_prof_stc(ngx_http_tsdb_prof_ctx_t *ctx,
    const ts_pprof_str_t *st, ngx_str_t *out)
{
    size_t       len;
    const char  *dn;

    if (!ts_ingest_display_name(ctx->stc.data, ctx->stc.len, st->data,
                                st->len, &dn, &len))
    {
        return NGX_DECLINED;
    }

    out->data = (u_char *) dn;
    out->len = len;

    return NGX_OK;
}


/* RawProfile.metricName */

static const char *
ngx_http_tsdb_prof_metric(ngx_http_tsdb_prof_ctx_t *ctx)
{
    char                   name[256];
    u_char                *q;
    uint32_t               i, j;
    ngx_str_t              dn;
    ts_pprof_t            *p;
    const ts_pprof_str_t  *st;

    p = &ctx->prof;

    for (i = 0; i < p->ntypes; i++) {
        st = ts_pprof_string(p, p->types[i].type);
        if (st->len == 4 && ngx_strncmp(st->data, "wall", 4) == 0) {
            return "wall";
        }
    }

    for (i = 0; i < p->ntypes; i++) {
        st = ts_pprof_string(p, p->types[i].type);
        ngx_cpystrn((u_char *) name, (u_char *) st->data,
                    ngx_min(st->len + 1, sizeof(name)));

        if (ngx_http_tsdb_prof_stc(ctx, st, &dn) == NGX_OK) {
            ngx_cpystrn((u_char *) name, dn.data,
                        ngx_min(dn.len + 1, sizeof(name)));

        } else if (ctx->stc.len == 0) {
            for (j = 0; ngx_http_tsdb_prof_display[j][0]; j++) {
                if (ngx_strcmp(name, ngx_http_tsdb_prof_display[j][0]) == 0)
                {
                    ngx_cpystrn((u_char *) name,
                                (u_char *) ngx_http_tsdb_prof_display[j][1],
                                sizeof(name));
                    break;
                }
            }
        }

        if (ngx_strstr(name, "cpu")) {
            return "process_cpu";
        }

        if (ngx_strstr(name, "alloc_") || ngx_strstr(name, "inuse_")
            || ngx_strcmp(name, "space") == 0
            || ngx_strcmp(name, "objects") == 0)
        {
            return "memory";
        }

        if (ngx_strstr(name, "mutex_")) {
            return "mutex";
        }

        if (ngx_strstr(name, "block_")) {
            return "block";
        }

        if (ngx_strstr(name, "goroutines")) {
            return "goroutines";
        }
    }

    /* "should not happen" in Pyroscope: the last type's name */

    st = ts_pprof_string(p, p->types[p->ntypes - 1].type);

    q = ngx_pnalloc(ctx->request->pool, st->len + 1);
    if (q == NULL) {
        return "unknown";
    }

    (void) ngx_cpystrn(q, (u_char *) st->data, st->len + 1);

    return (const char *) q;
}


static ngx_int_t
ngx_http_tsdb_prof_folded(ngx_http_tsdb_prof_ctx_t *ctx, u_char *body,
    size_t len, ts_folded_fmt_t fmt)
{
    int                                rc;
    u_char                            *dot;
    ngx_str_t                          app, suffix;
    ngx_uint_t                         i, status;
    ts_pprof_why_t                     why;
    ts_folded_opts_t                   o;
    ProtobufCAllocator                 a;
    const ngx_http_tsdb_prof_type_t   *t;

    app = ctx->app;
    dot = NULL;

    for (i = app.len; i > 0; i--) {
        if (app.data[i - 1] == '.') {
            dot = &app.data[i - 1];
            break;
        }
    }

    if (dot == NULL) {
        ngx_str_set(&suffix, "cpu");

    } else {
        suffix.data = dot + 1;
        suffix.len = app.data + app.len - suffix.data;
        app.len = dot - app.data;
    }

    for (t = ngx_http_tsdb_prof_types; t->suffix; t++) {
        if (ngx_strlen(t->suffix) == suffix.len
            && ngx_strncmp(t->suffix, suffix.data, suffix.len) == 0)
        {
            break;
        }
    }

    if (t->suffix == NULL) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                "unknown profile type in \"name\"");
        return NGX_ERROR;
    }

    ngx_memzero(&o, sizeof(ts_folded_opts_t));
    o.type = t->type ? t->type : t->suffix;
    o.unit = t->unit;
    o.time_nanos = ctx->from;
    o.duration_nanos = ctx->until > ctx->from ? ctx->until - ctx->from : 0;

    /* cpu and wall: counts scaled by the period, as the adapter does */

    if (ngx_strcmp(t->metric, "process_cpu") == 0
        || ngx_strcmp(t->metric, "wall") == 0)
    {
        o.period = 1000000000 / ctx->rate;
        o.scale = o.period;
        o.period_type = "cpu";
        o.period_unit = "nanoseconds";
        o.type = (t->metric[0] == 'w') ? "wall" : "cpu";
        o.unit = "nanoseconds";
    }

    ngx_http_tsdb_pool_allocator(ctx->request, &a);
    ts_pprof_init(&ctx->prof, &a, NULL);

    rc = ts_folded_parse(&ctx->prof, fmt, (char *) body, len, &o, &why);
    if (rc != TS_OK) {
        status = (why.code == TS_PPROF_TOO_LARGE)
                 ? NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                 : (rc == TS_ERR_NOMEM) ? NGX_HTTP_INTERNAL_SERVER_ERROR
                 : NGX_HTTP_BAD_REQUEST;
        ngx_http_tsdb_prof_fail(ctx, status, why.msg);
        return NGX_ERROR;
    }

    ctx->put.name = t->metric;
    ctx->put.name_len = ngx_strlen(t->metric);

    /* a user's service_name wins; the app name goes to app_name */

    for (i = 0; i < ctx->nlabels; i++) {
        if (ctx->labels[i].name_len == 12
            && ngx_strncmp(ctx->labels[i].name, "service_name", 12) == 0)
        {
            return ngx_http_tsdb_prof_label(ctx, "app_name", 8, app.data,
                                            app.len);
        }
    }

    return ngx_http_tsdb_prof_label(ctx, "service_name", 12, app.data,
                                    app.len);
}


/*
 * Connect unary Push: Content-Type application/proto or application/json
 * (parameters such as charset ignored), Content-Encoding gzip or
 * identity, a PushRequest; every raw profile becomes one put, all in
 * one transaction.
 */

static ngx_int_t
ngx_http_tsdb_prof_push(ngx_http_tsdb_prof_ctx_t *ctx, u_char *body,
    size_t len)
{
    int                  rc;
    char                 err[TS_PUSH_ERR_MAX];
    int64_t              now;
    uint32_t             i;
    ts_push_t            push;
    ngx_time_t          *tp;
    ngx_uint_t           status;
    ts_push_limits_t     lim;
    ts_pprof_limits_t    plim;
    ProtobufCAllocator   a;

    if (ngx_http_tsdb_prof_push_type(ctx) != NGX_OK
        || ngx_http_tsdb_prof_push_body(ctx, &body, &len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_tsdb_pool_allocator(ctx->request, &a);
    ts_push_limits_default(&lim);
    lim.max_labels = NGX_HTTP_TSDB_PROF_MAX_LABELS;

    ts_pprof_limits_default(&plim);
    ctx->inflate_left = plim.max_decompressed
                        * NGX_HTTP_TSDB_PUSH_BODY_FACTOR;
    ctx->memory_left = plim.max_memory;

    rc = ctx->json
         ? ts_push_decode_json(&push, (char *) body, len, &lim, &a, err,
                               sizeof(err))
         : ts_push_decode_proto(&push, body, len, &lim, &a, err,
                                sizeof(err));

    if (rc != TS_OK) {
        status = (rc == TS_ERR_NOMEM) ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                      : NGX_HTTP_BAD_REQUEST;
        ngx_http_tsdb_prof_fail(ctx, status, err);
        ts_push_free(&push);
        return NGX_ERROR;
    }

    ctx->puts = ngx_pcalloc(ctx->request->pool,
                            push.nprofiles * sizeof(ts_pstore_put_t));
    if (ctx->puts == NULL && push.nprofiles) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "out of memory");
        return NGX_ERROR;
    }

    tp = ngx_timeofday();
    now = (int64_t) tp->sec * 1000000000 + (int64_t) tp->msec * 1000000;
    ctx->from = now;

    for (i = 0; i < push.nseries; i++) {
        if (ngx_http_tsdb_prof_push_series(ctx, &push.series[i], now)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ctx->nputs == 0) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                "PushRequest without profiles");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tsdb_prof_push_type(ngx_http_tsdb_prof_ctx_t *ctx)
{
    size_t            n;
    u_char           *p, *last;
    ngx_table_elt_t  *ct;

    ct = ctx->request->headers_in.content_type;

    if (ct != NULL) {
        p = ct->value.data;
        last = ngx_strlchr(p, p + ct->value.len, ';');
        if (last == NULL) {
            last = p + ct->value.len;
        }

        while (last > p && last[-1] == ' ') {
            last--;
        }

        n = last - p;

        if (n == sizeof("application/proto") - 1
            && ngx_strncasecmp(p, (u_char *) "application/proto", n) == 0)
        {
            return NGX_OK;
        }

        if (n == sizeof("application/json") - 1
            && ngx_strncasecmp(p, (u_char *) "application/json", n) == 0)
        {
            ctx->json = 1;
            return NGX_OK;
        }
    }

    ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                            "unsupported Content-Type, expected"
                            " application/proto or application/json");
    return NGX_ERROR;
}


/* Content-Encoding gzip: inflated with the cap checked while inflating */

static ngx_int_t
ngx_http_tsdb_prof_push_body(ngx_http_tsdb_prof_ctx_t *ctx, u_char **body,
    size_t *len)
{
    int                  rc;
    size_t               cap, n;
    uint8_t             *out;
    const char          *reason;
    ngx_table_elt_t     *ce;
    ts_pprof_limits_t    lim;
    ProtobufCAllocator   a;

    ts_pprof_limits_default(&lim);
    cap = lim.max_decompressed * NGX_HTTP_TSDB_PUSH_BODY_FACTOR;

    ce = ngx_http_tsdb_prof_header(ctx->request, "Content-Encoding");

    if (ce == NULL
        || (ce->value.len == 8
            && ngx_strncasecmp(ce->value.data, (u_char *) "identity", 8)
               == 0))
    {
        if (*len > cap) {
            ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "request body too large");
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ce->value.len != 4
        || ngx_strncasecmp(ce->value.data, (u_char *) "gzip", 4) != 0)
    {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                "unsupported Content-Encoding, expected"
                                " gzip or identity");
        return NGX_ERROR;
    }

    ngx_http_tsdb_pool_allocator(ctx->request, &a);

    rc = ts_inflate(*body, *len, TS_INFLATE_GZIP, cap, &a, &out, &n,
                    &reason);

    switch (rc) {

    case TS_OK:
        *body = out;
        *len = n;
        return NGX_OK;

    case TS_ERR_LIMIT:
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                "gzip request body decompresses beyond the"
                                " limit");
        return NGX_ERROR;

    case TS_ERR_NOMEM:
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "out of memory");
        return NGX_ERROR;

    default:
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                reason ? reason : "bad gzip request body");
        return NGX_ERROR;
    }
}


/*
 * One RawProfileSeries: __name__ names the profile (and the first part
 * of its type ids), service_name is required, other "__" labels are
 * dropped as Pyroscope's ingestion drops them; each raw profile is
 * decoded as /ingest decodes pprof.
 */

static ngx_int_t
ngx_http_tsdb_prof_push_series(ngx_http_tsdb_prof_ctx_t *ctx,
    const ts_push_series_t *s, int64_t now)
{
    uint32_t             i, n;
    ts_label_t          *labels;
    ts_pprof_t          *prof;
    ts_pstore_put_t     *put;
    const ts_label_t    *l, *name, *service;

    labels = ngx_palloc(ctx->request->pool,
                        (s->nlabels + 1) * sizeof(ts_label_t));
    if (labels == NULL) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "out of memory");
        return NGX_ERROR;
    }

    name = NULL;
    service = NULL;
    n = 0;

    for (i = 0; i < s->nlabels; i++) {
        l = &s->labels[i];

        if (l->name_len == 8 && ngx_strncmp(l->name, "__name__", 8) == 0) {
            name = l;
            continue;
        }

        if (l->name_len == 12
            && ngx_strncmp(l->name, "service_name", 12) == 0)
        {
            service = l;
        }

        if (l->name_len < 2 || l->name[0] != '_' || l->name[1] != '_') {
            labels[n++] = *l;
        }
    }

    if (name == NULL || name->value_len == 0
        || service == NULL || service->value_len == 0)
    {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                "series labels must include __name__ and"
                                " service_name");
        return NGX_ERROR;
    }

    for (i = 0; i < s->nprofiles; i++) {
        if (ngx_http_tsdb_prof_push_profile(ctx, &s->profiles[i], &prof)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* as /ingest's fixTime: a zero or 1970 time is the arrival */

        if (prof->time_nanos < 31536000000000000LL) {
            prof->time_nanos = now;
        }

        put = &ctx->puts[ctx->nputs++];
        put->tenant = (char *) ctx->tenant.data;
        put->tenant_len = ctx->tenant.len;
        put->name = name->value;
        put->name_len = name->value_len;
        put->labels = labels;
        put->nlabels = n;
        put->time_nanos = now;
        put->prof = prof;
    }

    return NGX_OK;
}


/*
 * One raw profile of a Push.  Besides each profile's own limits (as
 * /ingest), the request's profiles share budgets: inflated bytes (4 x
 * one profile's cap) and decoded memory (one profile's max_memory), so
 * 256 small gzip bombs cannot take 256 times the memory of one.
 */

static ngx_int_t
ngx_http_tsdb_prof_push_profile(ngx_http_tsdb_prof_ctx_t *ctx,
    const ts_push_raw_t *raw, ts_pprof_t **out)
{
    int                  rc;
    size_t               len;
    uint8_t             *buf;
    ngx_uint_t           status;
    const char          *reason;
    ts_pprof_t          *prof;
    const uint8_t       *data;
    ts_pprof_why_t       why;
    ts_pprof_limits_t    lim;
    ProtobufCAllocator   a;

    ngx_http_tsdb_pool_allocator(ctx->request, &a);
    ts_pprof_limits_default(&lim);

    data = raw->data;
    len = raw->len;

    if (ts_inflate_detect(data, len) == TS_INFLATE_GZIP) {
        rc = ts_inflate(data, len, TS_INFLATE_GZIP,
                        ngx_min(lim.max_decompressed, ctx->inflate_left),
                        &a, &buf, &len, &reason);

        if (rc != TS_OK) {
            status = (rc == TS_ERR_LIMIT) ? NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                     : (rc == TS_ERR_NOMEM) ? NGX_HTTP_INTERNAL_SERVER_ERROR
                     : NGX_HTTP_BAD_REQUEST;
            ngx_http_tsdb_prof_fail(ctx, status, (rc == TS_ERR_LIMIT)
                ? "decompressed profiles exceed the limit (4 MiB each,"
                  " 16 MiB per request)"
                : (reason ? reason : "bad gzip profile"));
            return NGX_ERROR;
        }

        data = buf;

    } else if (len > ctx->inflate_left) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                "decompressed profiles exceed the limit"
                                " (4 MiB each, 16 MiB per request)");
        return NGX_ERROR;
    }

    ctx->inflate_left -= ngx_min(len, ctx->inflate_left);

    prof = ngx_palloc(ctx->request->pool, sizeof(ts_pprof_t));
    if (prof == NULL) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "out of memory");
        return NGX_ERROR;
    }

    lim.max_memory = ctx->memory_left;
    ts_pprof_init(prof, &a, &lim);

    rc = ts_pprof_parse(prof, data, len, &why);
    if (rc != TS_OK) {
        status = (why.code == TS_PPROF_TOO_LARGE
                  || why.code == TS_PPROF_MEMORY)
                 ? NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                 : (rc == TS_ERR_NOMEM) ? NGX_HTTP_INTERNAL_SERVER_ERROR
                 : NGX_HTTP_BAD_REQUEST;
        ngx_http_tsdb_prof_fail(ctx, status, why.msg);
        return NGX_ERROR;
    }

    ctx->memory_left -= ngx_min(prof->used, ctx->memory_left);

    if (prof->ntypes == 0) {
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                "pprof profile without sample types");
        return NGX_ERROR;
    }

    *out = prof;

    return NGX_OK;
}


static ngx_table_elt_t *
ngx_http_tsdb_prof_header(ngx_http_request_t *r, const char *name)
{
    size_t            n;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    n = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {
        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == n
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, n) == 0)
        {
            return &h[i];
        }
    }
}


static void
ngx_http_tsdb_prof_store(ngx_http_tsdb_prof_ctx_t *ctx)
{
    u_char               reason[NGX_HTTP_TSDB_PROF_ERR], *p;
    int64_t              oldest, t;
    uint32_t             i;
    ngx_http_request_t  *r;
#if (NGX_THREADS)
    ngx_uint_t                   k;
    ngx_http_tsdb_prof_batch_t  *b;
#endif

    r = ctx->request;

    ctx->put.tenant = (char *) ctx->tenant.data;
    ctx->put.tenant_len = ctx->tenant.len;
    ctx->put.labels = ctx->labels;
    ctx->put.nlabels = ctx->nlabels;
    ctx->put.time_nanos = ctx->from;
    ctx->put.prof = &ctx->prof;

    if (ctx->puts == NULL) {
        ctx->puts = &ctx->put;
        ctx->nputs = 1;
    }

    /*
     * as metrics: nothing older than the zone's retention, which the
     * next retention step would delete (a Push: all or none)
     */

    oldest = (int64_t) ngx_time() * 1000 - ctx->zone->retention;
    oldest = (oldest < INT64_MIN / 1000000) ? INT64_MIN : oldest * 1000000;

    for (i = 0; i < ctx->nputs; i++) {
        t = ctx->puts[i].prof->time_nanos ? ctx->puts[i].prof->time_nanos
                                          : ctx->puts[i].time_nanos;
        if (t >= oldest) {
            continue;
        }

        p = ngx_snprintf(reason, sizeof(reason) - 1,
                         "profile time %L ns is older than the zone's"
                         " retention (oldest accepted %L ns)", t, oldest);
        *p = '\0';
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST, (char *) reason);
        ngx_http_tsdb_prof_reply(ctx);
        return;
    }

#if (NGX_THREADS)

    /* with a thread pool: into the zone's group commit */

    for (k = 0; k < ngx_http_tsdb_prof_nbatches; k++) {
        b = &ngx_http_tsdb_prof_batches[k];

        if (b->zone != ctx->zone) {
            continue;
        }

        ngx_queue_insert_tail(&b->pending, &ctx->queue);
        r->main->blocked++;

        if (!b->busy) {
            ngx_http_tsdb_prof_batch_post(b);
        }

        return;
    }

#endif

    ngx_http_tsdb_offload(r, ctx->zone, ngx_http_tsdb_prof_put,
                          ngx_http_tsdb_prof_stored, ctx);
}


#if (NGX_THREADS)

/*
 * Starts the next transaction with what is queued; should the pool
 * refuse the task, runs it here, batch after batch.
 */

static void
ngx_http_tsdb_prof_batch_post(ngx_http_tsdb_prof_batch_t *b)
{
    while (!ngx_queue_empty(&b->pending)) {

        if (ngx_http_tsdb_prof_batch_take(b) == NGX_OK
            && ngx_thread_task_post(b->zone->thread_pool, b->task) == NGX_OK)
        {
            b->busy = 1;
            return;
        }

        ngx_http_tsdb_prof_batch_thread(b, b->zone->log);
        ngx_http_tsdb_prof_batch_answer(b);
    }
}


/* moves queued requests to running and their puts into one array */

static ngx_int_t
ngx_http_tsdb_prof_batch_take(ngx_http_tsdb_prof_batch_t *b)
{
    uint32_t                   n, nreqs;
    ngx_queue_t               *q;
    ngx_http_tsdb_prof_ctx_t  *ctx;

    n = 0;
    nreqs = 0;

    while (!ngx_queue_empty(&b->pending)) {
        q = ngx_queue_head(&b->pending);
        ctx = ngx_queue_data(q, ngx_http_tsdb_prof_ctx_t, queue);

        if (nreqs > 0
            && (nreqs == NGX_HTTP_TSDB_PROF_BATCH_REQS
                || n + ctx->nputs > NGX_HTTP_TSDB_PROF_BATCH_PUTS))
        {
            break;
        }

        ngx_queue_remove(q);
        ngx_queue_insert_tail(&b->running, q);
        n += ctx->nputs;
        nreqs++;
    }

    b->nreqs = nreqs;
    b->nputs = 0;
    b->puts = NULL;

    if (nreqs == 1) {
        return NGX_OK;              /* the request's own puts */
    }

    b->puts = ngx_alloc(n * sizeof(ts_pstore_put_t), b->zone->log);
    if (b->puts == NULL) {
        return NGX_ERROR;           /* each in its own transaction */
    }

    for (q = ngx_queue_head(&b->running);
         q != ngx_queue_sentinel(&b->running);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_http_tsdb_prof_ctx_t, queue);
        ngx_memcpy(&b->puts[b->nputs], ctx->puts,
                   ctx->nputs * sizeof(ts_pstore_put_t));
        b->nputs += ctx->nputs;
    }

    return NGX_OK;
}


/*
 * In the thread pool: one transaction, one sync for the whole batch;
 * if it fails, every request alone, so that only the bad one fails.
 */

static void
ngx_http_tsdb_prof_batch_thread(void *data, ngx_log_t *log)
{
    ngx_http_tsdb_prof_batch_t *b = data;

    int                        rc;
    ngx_queue_t               *q;
    ngx_http_tsdb_prof_ctx_t  *ctx;

    rc = TS_ERR_INVALID;

    if (b->puts != NULL) {
        rc = ts_pstore_putv(b->zone->pstore, b->puts, b->nputs, &b->stats,
                            b->err, sizeof(b->err));

        if (rc != TS_OK) {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                           "tsdb profile batch of %uD failed, each alone:"
                           " %s", b->nreqs, b->err);
        }
    }

    for (q = ngx_queue_head(&b->running);
         q != ngx_queue_sentinel(&b->running);
         q = ngx_queue_next(q))
    {
        ctx = ngx_queue_data(q, ngx_http_tsdb_prof_ctx_t, queue);

        if (rc == TS_OK) {
            ctx->rc = TS_OK;
            continue;
        }

        ctx->rc = ts_pstore_putv(b->zone->pstore, ctx->puts, ctx->nputs,
                                 &ctx->stats, ctx->err, sizeof(ctx->err));
    }

    b->rc = rc;
}


/* on the event loop: the task is back; answer its requests, go on */

static void
ngx_http_tsdb_prof_batch_done(ngx_event_t *ev)
{
    ngx_http_tsdb_prof_batch_t *b = ev->data;

    b->busy = 0;

    ngx_http_tsdb_prof_batch_answer(b);
    ngx_http_tsdb_prof_batch_post(b);
}


static void
ngx_http_tsdb_prof_batch_answer(ngx_http_tsdb_prof_batch_t *b)
{
    ngx_queue_t               *q;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_tsdb_prof_ctx_t  *ctx;

    if (b->rc == TS_OK && b->nreqs > 1) {
        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, b->zone->log, 0,
                       "tsdb profile batch: %uD requests, %uD profiles,"
                       " %uL symbol bytes, %uL row bytes", b->nreqs,
                       b->nputs, b->stats.symbol_bytes,
                       b->stats.row_bytes);
    }

    ngx_free(b->puts);
    b->puts = NULL;

    while (!ngx_queue_empty(&b->running)) {
        q = ngx_queue_head(&b->running);
        ngx_queue_remove(q);

        ctx = ngx_queue_data(q, ngx_http_tsdb_prof_ctx_t, queue);
        r = ctx->request;
        c = r->connection;

        r->main->blocked--;

        ngx_http_tsdb_prof_stored(ctx);
        ngx_http_run_posted_requests(c);
    }
}

#endif


/* in the thread pool: the synced LMDB commit */

static void
ngx_http_tsdb_prof_put(void *data)
{
    ngx_http_tsdb_prof_ctx_t  *ctx = data;

    ctx->rc = ts_pstore_putv(ctx->zone->pstore, ctx->puts, ctx->nputs,
                             &ctx->stats, ctx->err, sizeof(ctx->err));
}


static void
ngx_http_tsdb_prof_stored(void *data)
{
    ngx_http_tsdb_prof_ctx_t  *ctx = data;

    switch (ctx->rc) {

    case TS_OK:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                       "tsdb profile stored: %uD profiles", ctx->nputs);
        ctx->status = NGX_HTTP_OK;
        break;

    case TS_ERR_INVALID:
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_BAD_REQUEST, ctx->err);
        break;

    case TS_ERR_FULL:
    case TS_ERR_AGAIN:
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                ctx->err);
        break;

    default:
        ngx_log_error(NGX_LOG_ALERT, ctx->request->connection->log, 0,
                      "tsdb profile store: %s", ctx->err);
        ngx_http_tsdb_prof_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                                "profile store write failed");
        break;
    }

    ngx_http_tsdb_prof_reply(ctx);
}


static void
ngx_http_tsdb_prof_fail(ngx_http_tsdb_prof_ctx_t *ctx, ngx_uint_t status,
    const char *reason)
{
    size_t  len;

    ctx->status = status;

    len = ngx_strlen(reason);
    ctx->reason.data = ngx_pnalloc(ctx->request->pool, len + 1);

    if (ctx->reason.data == NULL) {
        ngx_str_set(&ctx->reason, "out of memory");
        return;
    }

    ngx_memcpy(ctx->reason.data, reason, len + 1);
    ctx->reason.len = len;
}


static void
ngx_http_tsdb_prof_reply(ngx_http_tsdb_prof_ctx_t *ctx)
{
    ngx_uint_t           level;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ctx->status >= NGX_HTTP_BAD_REQUEST) {
        level = (ctx->status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
                ? NGX_LOG_WARN : NGX_LOG_INFO;
        ngx_log_error(level, r->connection->log, 0,
                      "tsdb profile ingest: %ui %V", ctx->status,
                      &ctx->reason);

        if (ctx->status == NGX_HTTP_SERVICE_UNAVAILABLE
            && ngx_http_tsdb_header(r, "Retry-After", "5") != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    if (ctx->push) {
        ngx_http_finalize_request(r, ngx_http_tsdb_prof_connect_reply(ctx));
        return;
    }

    if (ctx->status >= NGX_HTTP_BAD_REQUEST) {
        ngx_http_finalize_request(r, ngx_http_tsdb_reply(r, ctx->status,
                                  (char *) ctx->reason.data));
        return;
    }

    ngx_http_finalize_request(r, ngx_http_tsdb_reply(r, NGX_HTTP_OK, ""));
}


/*
 * Connect unary answers: 200 with an empty PushResponse ("{}" in JSON,
 * no bytes in proto); errors as {"code":...,"message":...} with the
 * HTTP status of Connect's code table, except that a body over the size
 * cap is 413 with code invalid_argument (Pyroscope's code for a profile
 * over its size limit; not retryable), and an unsupported Content-Type
 * or Content-Encoding is 415 as the Connect protocol asks.
 */

static ngx_int_t
ngx_http_tsdb_prof_connect_reply(ngx_http_tsdb_prof_ctx_t *ctx)
{
    u_char              *p, c;
    size_t               len;
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_uint_t           i;
    ngx_chain_t          out;
    const char          *code;
    ngx_http_request_t  *r;

    r = ctx->request;

    switch (ctx->status) {
    case NGX_HTTP_OK:
        code = NULL;
        break;
    case NGX_HTTP_BAD_REQUEST:
    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        code = "invalid_argument";
        break;
    case NGX_HTTP_NOT_FOUND:
        code = "not_found";
        break;
    case NGX_HTTP_UNSUPPORTED_MEDIA_TYPE:
        code = "unimplemented";
        break;
    case NGX_HTTP_TOO_MANY_REQUESTS:
        code = "resource_exhausted";
        break;
    case NGX_HTTP_SERVICE_UNAVAILABLE:
        code = "unavailable";
        break;
    default:
        code = "internal";
        break;
    }

    len = (code == NULL) ? 2
          : sizeof("{\"code\":\"\",\"message\":\"\"}\n") + ngx_strlen(code)
            + 6 * ctx->reason.len;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;

    if (code == NULL) {
        if (ctx->json) {
            p = ngx_cpymem(p, "{}", 2);
        }

    } else {
        p = ngx_sprintf(p, "{\"code\":\"%s\",\"message\":\"", code);

        for (i = 0; i < ctx->reason.len; i++) {
            c = ctx->reason.data[i];

            if (c == '"' || c == '\\') {
                *p++ = '\\';
                *p++ = c;

            } else if (c < 0x20) {
                p = ngx_sprintf(p, "\\u%04xd", (int) c);

            } else {
                *p++ = c;
            }
        }

        p = ngx_cpymem(p, "\"}\n", 3);
    }

    b->last = p;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = ctx->status;

    if (code == NULL && !ctx->json) {
        ngx_str_set(&r->headers_out.content_type, "application/proto");

    } else {
        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_length_n = b->last - b->pos;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (b->last == b->pos) {
        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
