/*
 * Copyright (C) ngx_tsdb authors
 *
 * tsdb_query: the Prometheus HTTP API (api/v1) over a zone.
 *
 * The endpoint is what follows "api/v1/" in the URI, so the location's
 * prefix does not matter (/api/v1/..., /prometheus/api/v1/...): query,
 * query_range, series, labels, label/NAME/values, metadata,
 * query_exemplars, status/tsdb and status/buildinfo.  Parameters come
 * from the query string and, for POST, an
 * application/x-www-form-urlencoded body, as Prometheus reads
 * them (r.FormValue: the body's value first).  Answers are Prometheus's
 * JSON envelopes; errors {"status":"error","errorType":...,"error":...}
 * with its HTTP codes (bad_data 400, execution 422, timeout 503,
 * internal 500).
 *
 * Everything that reads series (the PromQL evaluation and the listing
 * endpoints) runs in the zone's thread pool when there is one, so a
 * long query never stalls the worker's event loop; the request waits
 * for the task's completion event.  The task touches only the shared
 * head, the thread-safe LMDB handle and memory of the request's ctx.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <math.h>
#include <time.h>

#include "ngx_http_tsdb_module.h"
#include "ts_pqeval.h"
#include "ts_pqjson.h"
#include "ts_promql.h"
#include "ts_source_db.h"
#include "ts_sset.h"


#define NGX_HTTP_TSDB_API_PREFIX     "api/v1/"
#define NGX_HTTP_TSDB_PROM_VERSION   "2.42.0"
#define NGX_HTTP_TSDB_MAX_MATCH      64
#define NGX_HTTP_TSDB_TIME_MIN       (-9223372036854LL)      /* s */
#define NGX_HTTP_TSDB_TIME_MAX       9223372036854LL


typedef enum {
    NGX_HTTP_TSDB_EP_QUERY = 0,
    NGX_HTTP_TSDB_EP_QUERY_RANGE,
    NGX_HTTP_TSDB_EP_SERIES,
    NGX_HTTP_TSDB_EP_LABELS,
    NGX_HTTP_TSDB_EP_LABEL_VALUES,
    NGX_HTTP_TSDB_EP_METADATA,
    NGX_HTTP_TSDB_EP_BUILDINFO,
    NGX_HTTP_TSDB_EP_TSDB,
    NGX_HTTP_TSDB_EP_EXEMPLARS
} ngx_http_tsdb_ep_e;


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_tsdb_zone_t       *zone;
    ngx_http_tsdb_ep_e          ep;
    ngx_str_t                   label;        /* label/NAME/values */
    ngx_array_t                 args;         /* ngx_keyval_t, decoded */
    ngx_str_t                   tenant;

    ts_source_head_t            hs;
    ts_source_db_t              ds;
    ts_source_t                *src[2];
    uint32_t                    nsrc;

    ts_promql_t                *pq;           /* query, query_range */
    ts_promql_t                *match[NGX_HTTP_TSDB_MAX_MATCH];
    ngx_uint_t                  nmatch;
    int64_t                     start;        /* ms */
    int64_t                     end;
    int64_t                     step;
    ngx_int_t                   limit;        /* metadata; -1: none */
    ngx_str_t                   metric;       /* metadata */
    ts_pqeval_conf_t            conf;

    ts_buf_t                    out;          /* the JSON answer */
    ngx_uint_t                  status;
} ngx_http_tsdb_query_ctx_t;


static void ngx_http_tsdb_query_body(ngx_http_request_t *r);
static void ngx_http_tsdb_query_start(ngx_http_request_t *r,
    ngx_http_tsdb_query_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_query_endpoint(ngx_http_tsdb_query_ctx_t *ctx,
    ngx_str_t *uri);
static ngx_int_t ngx_http_tsdb_query_args(ngx_http_tsdb_query_ctx_t *ctx,
    u_char *p, size_t len);
static ngx_str_t *ngx_http_tsdb_query_arg(ngx_http_tsdb_query_ctx_t *ctx,
    const char *name);
static ngx_int_t ngx_http_tsdb_query_prepare(ngx_http_tsdb_query_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_query_times(ngx_http_tsdb_query_ctx_t *ctx,
    int64_t def_start, int64_t def_end);
static ngx_int_t ngx_http_tsdb_query_seconds(ngx_str_t *s, char *buf,
    size_t size, int64_t *ms);
static ngx_int_t ngx_http_tsdb_query_time(ngx_str_t *s, int64_t *ms);
static ngx_int_t ngx_http_tsdb_query_duration(ngx_str_t *s, int64_t *ms);
static ngx_int_t ngx_http_tsdb_query_matches(ngx_http_tsdb_query_ctx_t *ctx);
static void ngx_http_tsdb_query_run(void *data);
static void ngx_http_tsdb_query_eval(ngx_http_tsdb_query_ctx_t *ctx);
static void ngx_http_tsdb_query_listing(ngx_http_tsdb_query_ctx_t *ctx);
static void ngx_http_tsdb_query_metadata(ngx_http_tsdb_query_ctx_t *ctx);
static void ngx_http_tsdb_query_buildinfo(ngx_http_tsdb_query_ctx_t *ctx);
static void ngx_http_tsdb_query_status(ngx_http_tsdb_query_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_exemplars_prepare(
    ngx_http_tsdb_query_ctx_t *ctx);
static void ngx_http_tsdb_query_exemplars(ngx_http_tsdb_query_ctx_t *ctx);
static void ngx_http_tsdb_query_error(ngx_http_tsdb_query_ctx_t *ctx,
    ngx_uint_t status, const char *type, const char *fmt, ...);
static void ngx_http_tsdb_query_send(void *data);
static void ngx_http_tsdb_query_cleanup(void *data);


ngx_int_t
ngx_http_tsdb_query_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_pool_cleanup_t         *cln;
    ngx_http_tsdb_req_t        *req;
    ngx_http_tsdb_loc_conf_t   *lcf;
    ngx_http_tsdb_query_ctx_t  *ctx;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_POST | NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    req = ngx_http_tsdb_metrics_begin(r, NGX_HTTP_TSDB_QUERY);
    if (req == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tsdb_query_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    req->data = ctx;
    ctx->request = r;
    ctx->zone = lcf->zone;
    ctx->limit = -1;

    if (ngx_array_init(&ctx->args, r->pool, 8, sizeof(ngx_keyval_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_tsdb_query_cleanup;
    cln->data = ctx;

    if (r->method != NGX_HTTP_POST) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        r->main->count++;
        ngx_http_tsdb_query_start(r, ctx);

        return NGX_DONE;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_tsdb_query_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_tsdb_query_body(ngx_http_request_t *r)
{
    ngx_http_tsdb_req_t        *req;
    ngx_http_tsdb_query_ctx_t  *ctx;

    req = ngx_http_get_module_ctx(r, ngx_http_tsdb_module);
    ctx = req->data;

    ngx_http_tsdb_query_start(r, ctx);
}


/* Parses everything on the event loop, then runs the work. */

static void
ngx_http_tsdb_query_start(ngx_http_request_t *r,
    ngx_http_tsdb_query_ctx_t *ctx)
{
    u_char                    *body;
    size_t                     len;
    ngx_http_tsdb_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);

    if (ngx_http_tsdb_query_endpoint(ctx, &r->uri) != NGX_OK) {
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                                  "unknown API endpoint");
        goto send;
    }

    /* r.FormValue: the body's parameters before the query string's */

    if (r->method == NGX_HTTP_POST
        && r->headers_in.content_type != NULL
        && ngx_strlcasestrn(r->headers_in.content_type->value.data,
               r->headers_in.content_type->value.data
               + r->headers_in.content_type->value.len,
               (u_char *) "application/x-www-form-urlencoded", 33 - 1)
           != NULL)
    {
        if (ngx_http_tsdb_body(r, &body, &len) != NGX_OK
            || ngx_http_tsdb_query_args(ctx, body, len) != NGX_OK)
        {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "cannot read the form body");
            goto send;
        }
    }

    if (ngx_http_tsdb_query_args(ctx, r->args.data, r->args.len) != NGX_OK
        || ngx_http_tsdb_tenant(r, lcf, &ctx->tenant) != NGX_OK)
    {
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                  "invalid parameters or tenant id");
        goto send;
    }

    ts_pqeval_conf_default(&ctx->conf);
    ctx->conf.max_samples = lcf->query_max_samples;
    ctx->conf.max_series = (uint32_t) lcf->query_max_series;
    ctx->conf.timeout = (int64_t) lcf->query_timeout;

    if (ngx_http_tsdb_query_prepare(ctx) != NGX_OK) {
        goto send;
    }

    ts_source_head_init(&ctx->hs, &ctx->zone->head,
                        (char *) ctx->tenant.data, ctx->tenant.len);
    ctx->src[0] = &ctx->hs.src;
    ctx->nsrc = 1;

    if (ctx->zone->db != NULL) {
        ts_source_db_init(&ctx->ds, ctx->zone->db,
                          (char *) ctx->tenant.data, ctx->tenant.len);
        ctx->src[ctx->nsrc++] = &ctx->ds.src;
    }

    ngx_http_tsdb_offload(r, ctx->zone, ngx_http_tsdb_query_run,
                          ngx_http_tsdb_query_send, ctx);
    return;

send:

    ngx_http_tsdb_query_send(ctx);
}




/* the part of the URI after "api/v1/" */

static ngx_int_t
ngx_http_tsdb_query_endpoint(ngx_http_tsdb_query_ctx_t *ctx, ngx_str_t *uri)
{
    u_char     *p, *last;
    ngx_str_t   ep;

    last = uri->data + uri->len;
    p = ngx_strlcasestrn(uri->data, last, (u_char *) NGX_HTTP_TSDB_API_PREFIX,
                         sizeof(NGX_HTTP_TSDB_API_PREFIX) - 2);
    if (p == NULL) {
        return NGX_DECLINED;
    }

    ep.data = p + sizeof(NGX_HTTP_TSDB_API_PREFIX) - 1;
    ep.len = last - ep.data;

#define ngx_http_tsdb_ep_is(s)                                            \
    (ep.len == sizeof(s) - 1 && ngx_strncmp(ep.data, s, ep.len) == 0)

    if (ngx_http_tsdb_ep_is("query")) {
        ctx->ep = NGX_HTTP_TSDB_EP_QUERY;

    } else if (ngx_http_tsdb_ep_is("query_range")) {
        ctx->ep = NGX_HTTP_TSDB_EP_QUERY_RANGE;

    } else if (ngx_http_tsdb_ep_is("series")) {
        ctx->ep = NGX_HTTP_TSDB_EP_SERIES;

    } else if (ngx_http_tsdb_ep_is("labels")) {
        ctx->ep = NGX_HTTP_TSDB_EP_LABELS;

    } else if (ngx_http_tsdb_ep_is("metadata")) {
        ctx->ep = NGX_HTTP_TSDB_EP_METADATA;

    } else if (ngx_http_tsdb_ep_is("status/buildinfo")) {
        ctx->ep = NGX_HTTP_TSDB_EP_BUILDINFO;

    } else if (ngx_http_tsdb_ep_is("status/tsdb")) {
        ctx->ep = NGX_HTTP_TSDB_EP_TSDB;

    } else if (ngx_http_tsdb_ep_is("query_exemplars")) {
        ctx->ep = NGX_HTTP_TSDB_EP_EXEMPLARS;

    } else if (ep.len > sizeof("label//values") - 1
               && ngx_strncmp(ep.data, "label/", 6) == 0
               && ngx_strncmp(ep.data + ep.len - 7, "/values", 7) == 0)
    {
        ctx->ep = NGX_HTTP_TSDB_EP_LABEL_VALUES;
        ctx->label.data = ep.data + 6;
        ctx->label.len = ep.len - 6 - 7;

    } else {
        return NGX_DECLINED;
    }

#undef ngx_http_tsdb_ep_is

    return NGX_OK;
}


/* "a=b&c=d": decoded pairs appended; "+" is a space, %XX a byte */

static ngx_int_t
ngx_http_tsdb_query_args(ngx_http_tsdb_query_ctx_t *ctx, u_char *p,
    size_t len)
{
    u_char        *end, *amp, *eq, *s, *d;
    ngx_str_t     *out;
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    end = p + len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        if (amp == p) {
            p++;
            continue;
        }

        kv = ngx_array_push(&ctx->args);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        eq = ngx_strlchr(p, amp, '=');

        for (i = 0; i < 2; i++) {
            out = i ? &kv->value : &kv->key;

            if (i == 0) {
                s = p;
                d = eq ? eq : amp;

            } else {
                s = eq ? eq + 1 : amp;
                d = amp;
            }

            out->data = ngx_pnalloc(ctx->request->pool, (d - s) + 1);
            if (out->data == NULL) {
                return NGX_ERROR;
            }

            out->len = 0;

            while (s < d) {
                if (*s == '+') {
                    out->data[out->len++] = ' ';
                    s++;

                } else if (*s == '%' && d - s >= 3
                           && ngx_hextoi(s + 1, 2) != NGX_ERROR)
                {
                    out->data[out->len++] = (u_char) ngx_hextoi(s + 1, 2);
                    s += 3;

                } else {
                    out->data[out->len++] = *s++;
                }
            }

            out->data[out->len] = '\0';
        }

        p = amp + 1;
    }

    return NGX_OK;
}


static ngx_str_t *
ngx_http_tsdb_query_arg(ngx_http_tsdb_query_ctx_t *ctx, const char *name)
{
    size_t         n;
    ngx_uint_t     i;
    ngx_keyval_t  *kv;

    n = ngx_strlen(name);
    kv = ctx->args.elts;

    for (i = 0; i < ctx->args.nelts; i++) {
        if (kv[i].key.len == n && ngx_strncmp(kv[i].key.data, name, n) == 0) {
            return &kv[i].value;
        }
    }

    return NULL;
}


/* Parameters, PromQL and selectors, checked as Prometheus checks them. */

static ngx_int_t
ngx_http_tsdb_query_prepare(ngx_http_tsdb_query_ctx_t *ctx)
{
    char                fmt[TS_PROMQL_MSG_SIZE + 64];
    int64_t             now, t;
    ngx_str_t          *q, *v;
    ngx_int_t           n;
    ts_promql_error_t   err;

    now = (int64_t) ngx_time() * 1000;

    switch (ctx->ep) {

    case NGX_HTTP_TSDB_EP_QUERY:
    case NGX_HTTP_TSDB_EP_QUERY_RANGE:
        break;

    case NGX_HTTP_TSDB_EP_SERIES:
    case NGX_HTTP_TSDB_EP_LABELS:
    case NGX_HTTP_TSDB_EP_LABEL_VALUES:
        if (ctx->ep == NGX_HTTP_TSDB_EP_LABEL_VALUES
            && !ts_label_name_valid((char *) ctx->label.data,
                                    ctx->label.len))
        {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "invalid label name: \"%V\"",
                                      &ctx->label);
            return NGX_ERROR;
        }

        if (ngx_http_tsdb_query_times(ctx, NGX_HTTP_TSDB_TIME_MIN * 1000,
                                      NGX_HTTP_TSDB_TIME_MAX * 1000)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_tsdb_query_matches(ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ctx->ep == NGX_HTTP_TSDB_EP_SERIES && ctx->nmatch == 0) {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "no match[] parameter provided");
            return NGX_ERROR;
        }

        return NGX_OK;

    case NGX_HTTP_TSDB_EP_TSDB:
        ctx->start = NGX_HTTP_TSDB_TIME_MIN * 1000;
        ctx->end = NGX_HTTP_TSDB_TIME_MAX * 1000;
        ctx->limit = 10;

        v = ngx_http_tsdb_query_arg(ctx, "limit");
        if (v != NULL && v->len) {
            n = ngx_atoi(v->data, v->len);
            if (n == NGX_ERROR || n == 0) {
                ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST,
                                          "bad_data", "limit must be a "
                                          "positive number");
                return NGX_ERROR;
            }

            ctx->limit = n;
        }

        return NGX_OK;

    case NGX_HTTP_TSDB_EP_EXEMPLARS:
        return ngx_http_tsdb_exemplars_prepare(ctx);

    case NGX_HTTP_TSDB_EP_METADATA:
        v = ngx_http_tsdb_query_arg(ctx, "limit");
        if (v != NULL && v->len) {
            n = ngx_atoi(v->data, v->len);
            if (n == NGX_ERROR && !(v->len == 2 && v->data[0] == '-')) {
                ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST,
                                          "bad_data", "limit must be a "
                                          "number");
                return NGX_ERROR;
            }

            ctx->limit = n;
        }

        v = ngx_http_tsdb_query_arg(ctx, "metric");
        if (v != NULL) {
            ctx->metric = *v;
        }

        return NGX_OK;

    default:
        return NGX_OK;
    }

    q = ngx_http_tsdb_query_arg(ctx, "query");
    if (q == NULL) {
        q = &ctx->label;        /* empty */
    }

    if (ctx->ep == NGX_HTTP_TSDB_EP_QUERY) {
        v = ngx_http_tsdb_query_arg(ctx, "time");
        ctx->start = now;

        if (v != NULL && v->len
            && ngx_http_tsdb_query_time(v, &ctx->start) != NGX_OK)
        {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "invalid parameter \"time\": Invalid "
                                      "time value for 'time': cannot parse "
                                      "\"%V\" to a valid timestamp", v);
            return NGX_ERROR;
        }

    } else {
        if (ngx_http_tsdb_query_times(ctx, NGX_ERROR, NGX_ERROR) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ctx->end < ctx->start) {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "invalid parameter \"end\": end "
                                      "timestamp must not be before start "
                                      "time");
            return NGX_ERROR;
        }

        v = ngx_http_tsdb_query_arg(ctx, "step");
        if (v == NULL || ngx_http_tsdb_query_duration(v, &ctx->step)
                         != NGX_OK)
        {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "invalid parameter \"step\": cannot "
                                      "parse \"%V\" to a valid duration",
                                      v ? v : &ctx->label);
            return NGX_ERROR;
        }

        if (ctx->step <= 0) {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "invalid parameter \"step\": zero or "
                                      "negative query resolution step "
                                      "widths are not accepted. Try a "
                                      "positive integer");
            return NGX_ERROR;
        }

        if ((ctx->end - ctx->start) / ctx->step > 11000) {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "exceeded maximum resolution of "
                                      "11,000 points per timeseries. Try "
                                      "decreasing the query resolution "
                                      "(?step=XX)");
            return NGX_ERROR;
        }
    }

    /* only the two query endpoints take a timeout, checked here */

    v = ngx_http_tsdb_query_arg(ctx, "timeout");
    if (v != NULL && v->len) {
        if (ngx_http_tsdb_query_duration(v, &t) != NGX_OK) {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "invalid parameter \"timeout\": cannot "
                                      "parse \"%V\" to a valid duration", v);
            return NGX_ERROR;
        }

        if (t > 0 && (ctx->conf.timeout == 0 || t < ctx->conf.timeout)) {
            ctx->conf.timeout = t;
        }
    }

    if (ts_promql_parse((char *) q->data, q->len, NULL, &ctx->pq, &err)
        != TS_OK)
    {
        /* 2.42 names the parameter for instant queries only */
        (void) ts_promql_error_format(&err, fmt, sizeof(fmt));
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                  "%s%s",
                                  ctx->ep == NGX_HTTP_TSDB_EP_QUERY
                                  ? "invalid parameter \"query\": " : "",
                                  fmt);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * start and end; NGX_ERROR as a default means "required" (query_range),
 * otherwise the parameters are optional and worded as parseTimeParam()
 */

static ngx_int_t
ngx_http_tsdb_query_times(ngx_http_tsdb_query_ctx_t *ctx, int64_t def_start,
    int64_t def_end)
{
    ngx_str_t  *v;
    ngx_uint_t  i;
    int64_t    *t[2], def[2];
    const char *name[2] = { "start", "end" };

    t[0] = &ctx->start;
    t[1] = &ctx->end;
    def[0] = def_start;
    def[1] = def_end;

    for (i = 0; i < 2; i++) {
        v = ngx_http_tsdb_query_arg(ctx, name[i]);

        if ((v == NULL || v->len == 0) && def[i] != NGX_ERROR) {
            *t[i] = def[i];
            continue;
        }

        if (v == NULL || ngx_http_tsdb_query_time(v, t[i]) != NGX_OK) {
            if (def[i] == NGX_ERROR) {
                /* query_range's parseTime() */
                ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST,
                                          "bad_data", "invalid parameter "
                                          "\"%s\": cannot parse \"%V\" to "
                                          "a valid timestamp", name[i],
                                          v ? v : &ctx->label);
                return NGX_ERROR;
            }

            /* parseTimeParam() */
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "invalid parameter \"%s\": Invalid "
                                      "time value for '%s': cannot parse "
                                      "\"%V\" to a valid timestamp",
                                      name[i], name[i], v);
            return NGX_ERROR;
        }
    }

    /*
     * end before start is query_range's error only: series and labels
     * select with the interval as given, as 2.42's querier does
     */

    return NGX_OK;
}


/*
 * s as seconds with a fraction (times and durations both allow it):
 * NGX_OK, NGX_ERROR if out of range, NGX_DECLINED if not a number, with
 * s copied into buf NUL-terminated for the caller's own syntax.
 */

static ngx_int_t
ngx_http_tsdb_query_seconds(ngx_str_t *s, char *buf, size_t size,
    int64_t *ms)
{
    char    *end;
    double   f;

    if (s->len == 0 || s->len >= size) {
        return NGX_ERROR;
    }

    ngx_memcpy(buf, s->data, s->len);
    buf[s->len] = '\0';

    f = strtod(buf, &end);

    if (*end != '\0' || end == buf) {
        return NGX_DECLINED;
    }

    if (!isfinite(f) || f > 9223372036854.0 || f < -9223372036854.0) {
        return NGX_ERROR;
    }

    *ms = (int64_t) llround(f * 1000.0);

    return NGX_OK;
}


/*
 * Unix seconds with a fraction, or RFC 3339 ("2006-01-02T15:04:05Z",
 * fraction and a numeric zone allowed), as Prometheus's parseTime.
 */

static ngx_int_t
ngx_http_tsdb_query_time(ngx_str_t *s, int64_t *ms)
{
    int         n, y, mo, d, h, mi, se, sign, zh, zm;
    char        buf[64], *end;
    double      frac;
    ngx_int_t   rc;
    struct tm   tm;

    rc = ngx_http_tsdb_query_seconds(s, buf, sizeof(buf), ms);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    n = 0;
    if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se,
               &n) != 6 || n != 19)
    {
        return NGX_ERROR;
    }

    end = buf + n;
    frac = 0;

    if (*end == '.') {
        frac = strtod(end, &end);
    }

    sign = 0;
    zh = 0;
    zm = 0;

    if (*end == 'Z' || *end == 'z') {
        end++;

    } else if ((*end == '+' || *end == '-')
               && sscanf(end + 1, "%2d:%2d", &zh, &zm) == 2
               && ngx_strlen(end) == 6)
    {
        sign = (*end == '-') ? -1 : 1;
        end += 6;

    } else {
        return NGX_ERROR;
    }

    if (*end != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23
        || mi > 59 || se > 60)
    {
        return NGX_ERROR;
    }

    ngx_memzero(&tm, sizeof(struct tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;

    *ms = ((int64_t) timegm(&tm) - sign * (zh * 3600 + zm * 60)) * 1000
          + (int64_t) llround(frac * 1000.0);

    return NGX_OK;
}


/* seconds with a fraction, or a Prometheus duration: 1h30m, 5m, 100ms */

static ngx_int_t
ngx_http_tsdb_query_duration(ngx_str_t *s, int64_t *ms)
{
    char       buf[64];
    int64_t    total, n, unit;
    u_char    *p, *last;
    ngx_int_t  rc;

    rc = ngx_http_tsdb_query_seconds(s, buf, sizeof(buf), ms);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    p = s->data;
    last = s->data + s->len;
    total = 0;

    while (p < last) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        n = 0;

        while (p < last && *p >= '0' && *p <= '9') {
            if (n > 922337203685LL) {
                return NGX_ERROR;
            }

            n = n * 10 + (*p++ - '0');
        }

        if (p == last) {
            return NGX_ERROR;
        }

        if (last - p >= 2 && p[0] == 'm' && p[1] == 's') {
            unit = 1;
            p += 2;

        } else {
            switch (*p++) {
            case 'y': unit = 365LL * 86400000; break;
            case 'w': unit = 7LL * 86400000; break;
            case 'd': unit = 86400000; break;
            case 'h': unit = 3600000; break;
            case 'm': unit = 60000; break;
            case 's': unit = 1000; break;
            default: return NGX_ERROR;
            }
        }

        if (n > INT64_MAX / unit || total > INT64_MAX - n * unit) {
            return NGX_ERROR;
        }

        total += n * unit;
    }

    *ms = total;

    return NGX_OK;
}


/*
 * Every match[] is a metric selector (ParseMetricSelector) with a
 * matcher that rejects "", as parseMatchersParam() checks them; series
 * says which parameter was wrong, labels and label values do not.
 */

static ngx_int_t
ngx_http_tsdb_query_matches(ngx_http_tsdb_query_ctx_t *ctx)
{
    char                     fmt[TS_PROMQL_MSG_SIZE + 64];
    const char              *prefix;
    ngx_uint_t               i;
    ngx_keyval_t            *kv;
    ts_promql_error_t        err;
    const ts_promql_expr_t  *e;

    kv = ctx->args.elts;
    prefix = ctx->ep == NGX_HTTP_TSDB_EP_SERIES
             ? "invalid parameter \"match[]\": " : "";

    for (i = 0; i < ctx->args.nelts; i++) {
        if (kv[i].key.len != 7
            || ngx_strncmp(kv[i].key.data, "match[]", 7) != 0)
        {
            continue;
        }

        if (ctx->nmatch == NGX_HTTP_TSDB_MAX_MATCH) {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "too many match[] parameters");
            return NGX_ERROR;
        }

        if (ts_promql_parse_selector((char *) kv[i].value.data,
                                     kv[i].value.len, NULL,
                                     &ctx->match[ctx->nmatch], &err)
            != TS_OK)
        {
            (void) ts_promql_error_format(&err, fmt, sizeof(fmt));
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "%s%s", prefix, fmt);
            return NGX_ERROR;
        }

        ctx->nmatch++;
    }

    for (i = 0; i < ctx->nmatch; i++) {
        e = ts_promql_root(ctx->match[i]);

        if (!e->u.vector.nonempty) {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "%smatch[] must contain at least one "
                                      "non-empty matcher", prefix);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* In the thread pool, or on the event loop without one. */

static void
ngx_http_tsdb_query_run(void *data)
{
    ngx_http_tsdb_query_ctx_t  *ctx = data;

    switch (ctx->ep) {

    case NGX_HTTP_TSDB_EP_QUERY:
    case NGX_HTTP_TSDB_EP_QUERY_RANGE:
        ngx_http_tsdb_query_eval(ctx);
        break;

    case NGX_HTTP_TSDB_EP_SERIES:
    case NGX_HTTP_TSDB_EP_LABELS:
    case NGX_HTTP_TSDB_EP_LABEL_VALUES:
        ngx_http_tsdb_query_listing(ctx);
        break;

    case NGX_HTTP_TSDB_EP_METADATA:
        ngx_http_tsdb_query_metadata(ctx);
        break;

    case NGX_HTTP_TSDB_EP_BUILDINFO:
        ngx_http_tsdb_query_buildinfo(ctx);
        break;

    case NGX_HTTP_TSDB_EP_TSDB:
        ngx_http_tsdb_query_status(ctx);
        break;

    case NGX_HTTP_TSDB_EP_EXEMPLARS:
        ngx_http_tsdb_query_exemplars(ctx);
        break;
    }
}


static void
ngx_http_tsdb_query_eval(ngx_http_tsdb_query_ctx_t *ctx)
{
    int                  rc;
    ngx_uint_t           status;
    ts_pqeval_error_t    err;
    ts_pqeval_result_t  *res;

    res = NULL;

    if (ctx->ep == NGX_HTTP_TSDB_EP_QUERY) {
        rc = ts_pqeval_instant(ts_promql_root(ctx->pq), ctx->src, ctx->nsrc,
                               ctx->start, &ctx->conf, &res, &err);

    } else {
        rc = ts_pqeval_range(ts_promql_root(ctx->pq), ctx->src, ctx->nsrc,
                             ctx->start, ctx->end, ctx->step, &ctx->conf,
                             &res, &err);
    }

    if (rc != TS_OK) {
        status = err.type == TS_PQE_BAD_DATA ? NGX_HTTP_BAD_REQUEST
                 : err.type == TS_PQE_EXECUTION ? 422
                 : err.type == TS_PQE_TIMEOUT ? NGX_HTTP_SERVICE_UNAVAILABLE
                 : NGX_HTTP_INTERNAL_SERVER_ERROR;
        ngx_http_tsdb_query_error(ctx, status, ts_pqeval_errtype_name(err.type),
                                  "%s", err.msg);
        return;
    }

    if (ts_pqjson_success(res, &ctx->out) == TS_OK) {
        ctx->status = NGX_HTTP_OK;

    } else {
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory");
    }

    ts_pqeval_result_free(res);
}


/* label sets: a growing array of copies, then sorted and deduplicated */

typedef struct {
    ts_buf_t                    strs;         /* serialized label sets */
    size_t                     *off;          /* into strs */
    size_t                      n;
    size_t                      cap;
} ngx_http_tsdb_sets_t;


static ngx_int_t
ngx_http_tsdb_sets_add(ngx_http_tsdb_sets_t *s, const char *p, size_t len)
{
    size_t  *off;

    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        off = realloc(s->off, s->cap * sizeof(size_t));
        if (off == NULL) {
            return NGX_ERROR;
        }

        s->off = off;
    }

    /* u32 length, then the bytes */

    if (ts_buf_reserve(&s->strs, 4 + len) != TS_OK) {
        return NGX_ERROR;
    }

    s->off[s->n++] = s->strs.len;
    ngx_memcpy(s->strs.p + s->strs.len, &len, 4);
    ngx_memcpy(s->strs.p + s->strs.len + 4, p, len);
    s->strs.len += 4 + len;

    return NGX_OK;
}


/* bytewise, shorter first; qsort_r(): queries run in several threads */

static int
ngx_http_tsdb_sets_cmp(const void *a, const void *b, void *arg)
{
    int                    rc;
    uint32_t               la, lb;
    const uint8_t         *pa, *pb;
    ngx_http_tsdb_sets_t  *s = arg;

    pa = s->strs.p + *(const size_t *) a;
    pb = s->strs.p + *(const size_t *) b;
    ngx_memcpy(&la, pa, 4);
    ngx_memcpy(&lb, pb, 4);

    rc = memcmp(pa + 4, pb + 4, la < lb ? la : lb);

    return rc ? rc : (la > lb) - (la < lb);
}


static void
ngx_http_tsdb_sets_sort(ngx_http_tsdb_sets_t *s)
{
    if (s->n > 1) {
        qsort_r(s->off, s->n, sizeof(size_t), ngx_http_tsdb_sets_cmp, s);
    }
}


/*
 * A label set serialized as name NUL value NUL per label: names and
 * stored values hold no NUL, so the bytes sort as Prometheus sorts
 * label sets (pairwise, a prefix first).
 */

static ngx_int_t
ngx_http_tsdb_sets_labels(ngx_http_tsdb_sets_t *s, ts_buf_t *tmp,
    const ts_label_t *l, uint32_t n)
{
    uint32_t  i;

    tmp->len = 0;

    for (i = 0; i < n; i++) {
        if (ts_buf_reserve(tmp, l[i].name_len + l[i].value_len + 2)
            != TS_OK)
        {
            return NGX_ERROR;
        }

        ngx_memcpy(tmp->p + tmp->len, l[i].name, l[i].name_len);
        tmp->len += l[i].name_len;
        tmp->p[tmp->len++] = '\0';
        ngx_memcpy(tmp->p + tmp->len, l[i].value, l[i].value_len);
        tmp->len += l[i].value_len;
        tmp->p[tmp->len++] = '\0';
    }

    return ngx_http_tsdb_sets_add(s, (char *) tmp->p, tmp->len);
}


/* what the listing endpoints collect from each selected series */

typedef struct {
    ngx_http_tsdb_query_ctx_t  *ctx;
    ngx_http_tsdb_sets_t        sets;
    ts_buf_t                    tmp;

    /* status/tsdb: metric names in sets, name=value pairs here */
    ngx_http_tsdb_sets_t        pairs;
    uint64_t                    series;
    uint64_t                    chunks;
    int64_t                     mint;
    int64_t                     maxt;
} ngx_http_tsdb_listing_t;


static ngx_int_t
ngx_http_tsdb_listing_add(ngx_http_tsdb_listing_t *ls, ts_sset_t *ss,
    const ts_label_t *l, uint32_t n)
{
    int              rc;
    uint32_t         j;
    ts_sset_chunk_t  ch;

    switch (ls->ctx->ep) {

    case NGX_HTTP_TSDB_EP_TSDB:
        ls->series++;

        for (j = 0; j < n; j++) {
            ls->tmp.len = 0;

            if (ts_buf_reserve(&ls->tmp, l[j].name_len + l[j].value_len + 1)
                != TS_OK)
            {
                return NGX_ERROR;
            }

            ngx_memcpy(ls->tmp.p, l[j].name, l[j].name_len);
            ls->tmp.p[l[j].name_len] = '=';
            ngx_memcpy(ls->tmp.p + l[j].name_len + 1, l[j].value,
                       l[j].value_len);

            if (ngx_http_tsdb_sets_add(&ls->pairs, (char *) ls->tmp.p,
                                       l[j].name_len + 1 + l[j].value_len)
                != NGX_OK
                || (l[j].name_len == TS_METRIC_NAME_LABEL_LEN
                    && ngx_strncmp(l[j].name, TS_METRIC_NAME_LABEL,
                                   TS_METRIC_NAME_LABEL_LEN) == 0
                    && ngx_http_tsdb_sets_add(&ls->sets, l[j].value,
                                              l[j].value_len)
                       != NGX_OK))
            {
                return NGX_ERROR;
            }
        }

        while ((rc = ts_sset_chunk(ss, &ch)) == 1) {
            ls->chunks++;
            ls->mint = ngx_min(ls->mint, ch.mint);
            ls->maxt = ngx_max(ls->maxt, ch.maxt);
        }

        return rc == 0 ? NGX_OK : NGX_ERROR;

    case NGX_HTTP_TSDB_EP_SERIES:
        return ngx_http_tsdb_sets_labels(&ls->sets, &ls->tmp, l, n);

    case NGX_HTTP_TSDB_EP_LABELS:
        for (j = 0; j < n; j++) {
            if (ngx_http_tsdb_sets_add(&ls->sets, l[j].name, l[j].name_len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        return NGX_OK;

    default:
        for (j = 0; j < n; j++) {
            if (l[j].name_len == ls->ctx->label.len
                && ngx_strncmp(l[j].name, ls->ctx->label.data,
                               l[j].name_len) == 0)
            {
                return ngx_http_tsdb_sets_add(&ls->sets, l[j].value,
                                              l[j].value_len);
            }
        }

        return NGX_OK;
    }
}


/*
 * The series of every match[] in [start, end] (no match[]: every series
 * with a name) into ls.  NGX_ERROR with the answer set on failure.
 */

static ngx_int_t
ngx_http_tsdb_listing_select(ngx_http_tsdb_listing_t *ls)
{
    int                        rc;
    char                       msg[TS_SSET_MSG_SIZE];
    uint32_t                   n;
    ngx_uint_t                 i;
    ts_sset_t                 *ss;
    ts_matcher_t               any;
    ts_sset_conf_t             sc;
    ts_selector_t             *sel;
    const ts_label_t          *l;
    const ts_promql_expr_t    *v;
    ngx_http_tsdb_query_ctx_t *ctx;

    ctx = ls->ctx;

    any.type = TS_MATCH_RE;
    any.name = TS_METRIC_NAME_LABEL;
    any.name_len = TS_METRIC_NAME_LABEL_LEN;
    any.value = ".+";
    any.value_len = 2;

    ngx_memzero(&sc, sizeof(ts_sset_conf_t));
    sc.max_series = ctx->conf.max_series;

    if (ts_sset_create(&ss, ctx->src, ctx->nsrc, &sc) != TS_OK) {
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory");
        return NGX_ERROR;
    }

    /* every source's snapshot (the index's read transaction) first */

    rc = ts_sources_begin(ctx->src, ctx->nsrc);
    if (rc != TS_OK) {
        ts_sset_free(ss);
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "reading series failed");
        return NGX_ERROR;
    }

    for (i = 0; i < (ctx->nmatch ? ctx->nmatch : 1); i++) {
        if (ctx->nmatch) {
            v = ts_promql_root(ctx->match[i]);
            while (v->kind == TS_PQ_PAREN) {
                v = v->u.paren;
            }

            rc = ts_selector_compile(&sel, v->u.vector.matchers,
                                     v->u.vector.nmatchers,
                                     &ctx->conf.select, msg, sizeof(msg));

        } else {
            rc = ts_selector_compile(&sel, &any, 1, &ctx->conf.select, msg,
                                     sizeof(msg));
        }

        if (rc != TS_OK) {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "%s", msg);
            break;
        }

        rc = ts_sset_select(ss, sel, ctx->start, ctx->end, msg, sizeof(msg));

        if (rc == TS_OK) {
            while ((rc = ts_sset_next(ss, &l, &n)) == 1) {
                if (ngx_http_tsdb_listing_add(ls, ss, l, n) != NGX_OK) {
                    rc = TS_ERR_NOMEM;
                    ngx_memcpy(msg, "out of memory", sizeof("out of memory"));
                    break;
                }
            }

            ts_sset_reset(ss);
        }

        ts_selector_free(sel);

        if (rc < 0) {
            ngx_http_tsdb_query_error(ctx, rc == TS_ERR_LIMIT
                                           ? 422
                                           : NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      rc == TS_ERR_LIMIT ? "execution"
                                                         : "internal",
                                      "%s", rc == TS_ERR_LIMIT
                                            || rc == TS_ERR_NOMEM
                                            ? msg : "reading series failed");
            break;
        }

        rc = TS_OK;
    }

    ts_sset_free(ss);
    ts_sources_end(ctx->src, ctx->nsrc);

    return rc == TS_OK ? NGX_OK : NGX_ERROR;
}


/*
 * The set, sorted, without duplicates, as the answer's JSON array: of
 * strings, or with sets_of_labels, of objects from serialized label
 * sets (name NUL value NUL ...).
 */

static ngx_int_t
ngx_http_tsdb_listing_json(ngx_http_tsdb_query_ctx_t *ctx,
    ngx_http_tsdb_sets_t *sets, ngx_uint_t sets_of_labels)
{
    size_t          k;
    uint32_t        nl, i;
    const uint8_t  *p, *e, *q;

    if (ts_buf_reserve(&ctx->out, 64) != TS_OK) {
        return NGX_ERROR;
    }

    ctx->out.len = ngx_sprintf(ctx->out.p, "{\"status\":\"success\","
                               "\"data\":[") - ctx->out.p;

    for (k = 0; k < sets->n; k++) {
        if (k && ngx_http_tsdb_sets_cmp(&sets->off[k - 1], &sets->off[k],
                                        sets)
                 == 0)
        {
            continue;
        }

        p = sets->strs.p + sets->off[k];
        ngx_memcpy(&nl, p, 4);
        p += 4;
        e = p + nl;

        if (ts_buf_reserve(&ctx->out, 2) != TS_OK) {
            return NGX_ERROR;
        }

        if (ctx->out.p[ctx->out.len - 1] != '[') {
            ctx->out.p[ctx->out.len++] = ',';
        }

        if (!sets_of_labels) {
            if (ts_pqjson_string((char *) p, nl, &ctx->out) != TS_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        ctx->out.p[ctx->out.len++] = '{';

        /* strings alternate with ':' and ',' */

        for (i = 0; p < e; i++) {
            q = memchr(p, '\0', e - p);

            if (ts_buf_reserve(&ctx->out, 1) != TS_OK) {
                return NGX_ERROR;
            }

            if (i) {
                ctx->out.p[ctx->out.len++] = (i & 1) ? ':' : ',';
            }

            if (ts_pqjson_string((char *) p, q - p, &ctx->out) != TS_OK) {
                return NGX_ERROR;
            }

            p = q + 1;
        }

        if (ts_buf_reserve(&ctx->out, 1) != TS_OK) {
            return NGX_ERROR;
        }

        ctx->out.p[ctx->out.len++] = '}';
    }

    if (ts_buf_reserve(&ctx->out, 2) != TS_OK) {
        return NGX_ERROR;
    }

    ctx->out.p[ctx->out.len++] = ']';
    ctx->out.p[ctx->out.len++] = '}';
    ctx->status = NGX_HTTP_OK;

    return NGX_OK;
}


static int
ngx_http_tsdb_query_value(void *data, const char *s, size_t len)
{
    return ngx_http_tsdb_sets_add(data, s, len) == NGX_OK ? 0 : -1;
}


/*
 * series: the label sets of every match[]; labels: their names (every
 * series with a name when no match[] is given); label/NAME/values: the
 * values from those series, or from every source's index without
 * match[].  Sorted, without duplicates.
 */

static void
ngx_http_tsdb_query_listing(ngx_http_tsdb_query_ctx_t *ctx)
{
    int                      rc;
    uint32_t                 i;
    ngx_int_t                ok;
    ngx_http_tsdb_listing_t  ls;

    ngx_memzero(&ls, sizeof(ngx_http_tsdb_listing_t));
    ls.ctx = ctx;

    if (ctx->ep == NGX_HTTP_TSDB_EP_LABEL_VALUES && ctx->nmatch == 0) {
        rc = ts_sources_begin(ctx->src, ctx->nsrc);

        if (rc == TS_OK) {
            for (i = 0; i < ctx->nsrc && rc == TS_OK; i++) {
                rc = ctx->src[i]->label_values(ctx->src[i]->data,
                                               (char *) ctx->label.data,
                                               ctx->label.len,
                                               ngx_http_tsdb_query_value,
                                               &ls.sets);
            }

            ts_sources_end(ctx->src, ctx->nsrc);
        }

        if (rc != TS_OK) {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                      "internal", "reading label values "
                                      "failed");
            goto done;
        }

    } else if (ngx_http_tsdb_listing_select(&ls) != NGX_OK) {
        goto done;
    }

    ngx_http_tsdb_sets_sort(&ls.sets);

    ok = ngx_http_tsdb_listing_json(ctx, &ls.sets,
                                    ctx->ep == NGX_HTTP_TSDB_EP_SERIES);

    if (ok != NGX_OK) {
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory");
    }

done:

    free(ls.sets.off);
    free(ls.sets.strs.p);
    free(ls.tmp.p);
}


static const char  *ngx_http_tsdb_metric_types[] = {
    "unknown", "counter", "gauge", "histogram", "gaugehistogram",
    "summary", "info", "stateset"
};


typedef struct {
    ngx_http_tsdb_query_ctx_t  *ctx;
    uint32_t                    tenant;
    ngx_http_tsdb_sets_t        sets;         /* name \0 type help \0 unit */
} ngx_http_tsdb_meta_walk_t;


static ngx_int_t
ngx_http_tsdb_meta_add(ngx_http_tsdb_meta_walk_t *w, const char *name,
    size_t nlen, uint32_t type, const char *help, size_t hlen,
    const char *unit, size_t ulen)
{
    ts_buf_t   b;
    ngx_int_t  rc;

    if (w->ctx->metric.len
        && (nlen != w->ctx->metric.len
            || ngx_strncmp(name, w->ctx->metric.data, nlen) != 0))
    {
        return NGX_OK;
    }

    ngx_memzero(&b, sizeof(ts_buf_t));

    if (ts_buf_reserve(&b, nlen + hlen + ulen + 3) != TS_OK) {
        return NGX_ERROR;
    }

    ngx_memcpy(b.p, name, nlen);
    b.p[nlen] = 0;
    b.p[nlen + 1] = (uint8_t) (type < 8 ? type : 0);
    ngx_memcpy(b.p + nlen + 2, help, hlen);
    b.p[nlen + 2 + hlen] = 0;
    ngx_memcpy(b.p + nlen + 3 + hlen, unit, ulen);

    rc = ngx_http_tsdb_sets_add(&w->sets, (char *) b.p,
                                nlen + hlen + ulen + 3);
    free(b.p);

    return rc;
}


static int
ngx_http_tsdb_meta_head(void *data, const ts_meta_entry_t *e)
{
    ngx_http_tsdb_meta_walk_t  *w = data;

    if (e->tenant != w->tenant) {
        return 0;
    }

    return ngx_http_tsdb_meta_add(w, e->name, e->name_len, e->type, e->help,
                                  e->help_len, e->unit, e->unit_len)
           == NGX_OK ? 0 : -1;
}


static int
ngx_http_tsdb_meta_db(void *data, const ts_db_metadata_t *md)
{
    return ngx_http_tsdb_meta_add(data, md->name, md->name_len, md->type,
                                  md->help, md->help_len, md->unit,
                                  md->unit_len)
           == NGX_OK ? 0 : -1;
}


static int
ngx_http_tsdb_meta_cmp(const void *a, const void *b, void *arg)
{
    int                    rc;
    size_t                 x, y;
    ngx_http_tsdb_sets_t  *s = arg;

    x = *(const size_t *) a;
    y = *(const size_t *) b;

    rc = ngx_strcmp(s->strs.p + x + 4, s->strs.p + y + 4);

    return rc ? rc : (x > y) - (x < y);
}


/*
 * metadata: the zone's table and the index, per family one entry (the
 * table's when both have it: it is the newer), as a JSON object sorted
 * by name as Go prints maps; limit caps the number of families.
 */

static void
ngx_http_tsdb_query_metadata(ngx_http_tsdb_query_ctx_t *ctx)
{
    int                         rc;
    size_t                      k, nl, hl;
    uint32_t                    len, tid, count;
    const uint8_t              *p, *prev;
    ts_db_rtxn_t               *t;
    ngx_http_tsdb_meta_walk_t   w;

    ngx_memzero(&w, sizeof(ngx_http_tsdb_meta_walk_t));
    w.ctx = ctx;

    if (ts_head_tenant_find(&ctx->zone->head, (char *) ctx->tenant.data,
                            ctx->tenant.len, &w.tenant) == TS_OK
        && ts_meta_each(&ctx->zone->meta, ngx_http_tsdb_meta_head, &w)
           != TS_OK)
    {
        goto failed;
    }

    /* the table's entries sort before the index's: same key, lower offset */

    if (ctx->zone->db != NULL) {
        rc = ts_db_rtxn_begin(ctx->zone->db, &t);

        if (rc == TS_OK) {
            rc = ts_db_tenant(t, (char *) ctx->tenant.data, ctx->tenant.len,
                              &tid);

            if (rc == TS_OK) {
                rc = ts_db_metadata_list(t, tid, ngx_http_tsdb_meta_db, &w);
            }

            if (rc == TS_ERR_NOTFOUND) {
                rc = TS_OK;
            }

            ts_db_rtxn_abort(t);
        }

        if (rc != TS_OK) {
            goto failed;
        }
    }

    /* by name, then by position: the table's entry first */

    if (w.sets.n > 1) {
        qsort_r(w.sets.off, w.sets.n, sizeof(size_t),
                ngx_http_tsdb_meta_cmp, &w.sets);
    }

    if (ts_buf_reserve(&ctx->out, 64) != TS_OK) {
        goto failed;
    }

    ctx->out.len = ngx_sprintf(ctx->out.p, "{\"status\":\"success\","
                               "\"data\":{") - ctx->out.p;
    prev = NULL;
    count = 0;

    for (k = 0; k < w.sets.n; k++) {
        p = w.sets.strs.p + w.sets.off[k];
        ngx_memcpy(&len, p, 4);
        p += 4;

        if (prev != NULL && ngx_strcmp(prev, p) == 0) {
            continue;
        }

        if (ctx->limit >= 0 && count == (uint32_t) ctx->limit) {
            break;
        }

        prev = p;
        count++;

        nl = ngx_strlen(p);
        hl = ngx_strlen(p + nl + 2);

        if (ts_buf_reserve(&ctx->out, 64) != TS_OK) {
            goto failed;
        }

        if (ctx->out.p[ctx->out.len - 1] != '{') {
            ctx->out.p[ctx->out.len++] = ',';
        }

        if (ts_pqjson_string((char *) p, nl, &ctx->out) != TS_OK
            || ts_buf_reserve(&ctx->out, 64) != TS_OK)
        {
            goto failed;
        }

        ctx->out.len = ngx_sprintf(ctx->out.p + ctx->out.len,
                                   ":[{\"type\":\"%s\",\"help\":",
                                   ngx_http_tsdb_metric_types[p[nl + 1]])
                       - ctx->out.p;

        if (ts_pqjson_string((char *) p + nl + 2, hl, &ctx->out) != TS_OK
            || ts_buf_reserve(&ctx->out, 16) != TS_OK)
        {
            goto failed;
        }

        ctx->out.len = ngx_sprintf(ctx->out.p + ctx->out.len, ",\"unit\":")
                       - ctx->out.p;

        if (ts_pqjson_string((char *) p + nl + 3 + hl,
                             len - (nl + 3 + hl), &ctx->out) != TS_OK
            || ts_buf_reserve(&ctx->out, 8) != TS_OK)
        {
            goto failed;
        }

        ctx->out.len = ngx_sprintf(ctx->out.p + ctx->out.len, "}]")
                       - ctx->out.p;
    }

    if (ts_buf_reserve(&ctx->out, 2) != TS_OK) {
        goto failed;
    }

    ctx->out.p[ctx->out.len++] = '}';
    ctx->out.p[ctx->out.len++] = '}';
    ctx->status = NGX_HTTP_OK;

    goto done;

failed:

    ngx_http_tsdb_query_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR, "internal",
                              "reading metadata failed");

done:

    free(w.sets.off);
    free(w.sets.strs.p);
}


/* runs of equal keys in a sorted set, most first */

typedef struct {
    size_t                      off;        /* of the run's first entry */
    uint32_t                    len;        /* of its key */
    uint64_t                    count;
} ngx_http_tsdb_run_t;


static int
ngx_http_tsdb_run_cmp(const void *a, const void *b, void *arg)
{
    int                         rc;
    ngx_http_tsdb_sets_t       *s = arg;
    const ngx_http_tsdb_run_t  *x = a, *y = b;

    if (x->count != y->count) {
        return x->count < y->count ? 1 : -1;
    }

    rc = ngx_memcmp(s->strs.p + x->off + 4, s->strs.p + y->off + 4,
                    ngx_min(x->len, y->len));

    return rc ? rc : (x->len > y->len) - (x->len < y->len);
}


/*
 * The runs of a sorted set, sorted by count.  by_name: entries are
 * "name=value" pairs, counted once per distinct pair under their name,
 * adding 1 or, with bytes, the value's length.
 */

static ngx_http_tsdb_run_t *
ngx_http_tsdb_runs(ngx_http_tsdb_sets_t *s, ngx_uint_t by_name,
    ngx_uint_t bytes, size_t *nruns)
{
    size_t                k, n;
    uint32_t              len, key;
    uint64_t              add;
    const uint8_t        *p, *eq;
    ngx_http_tsdb_run_t  *r;

    r = malloc((s->n ? s->n : 1) * sizeof(ngx_http_tsdb_run_t));
    if (r == NULL) {
        return NULL;
    }

    n = 0;

    for (k = 0; k < s->n; k++) {
        if (by_name && k
            && ngx_http_tsdb_sets_cmp(&s->off[k - 1], &s->off[k], s) == 0)
        {
            continue;
        }

        p = s->strs.p + s->off[k];
        ngx_memcpy(&len, p, 4);
        key = len;

        if (by_name) {
            eq = memchr(p + 4, '=', len);
            key = eq - (p + 4);
        }

        add = bytes ? len - key - 1 : 1;

        if (n && r[n - 1].len == key
            && ngx_memcmp(s->strs.p + r[n - 1].off + 4, p + 4, key) == 0)
        {
            r[n - 1].count += add;
            continue;
        }

        r[n].off = s->off[k];
        r[n].len = key;
        r[n].count = add;
        n++;
    }

    if (n > 1) {
        qsort_r(r, n, sizeof(ngx_http_tsdb_run_t), ngx_http_tsdb_run_cmp, s);
    }

    *nruns = n;

    return r;
}


/* "NAME":[{"name":..,"value":N},...] with the first limit runs */

static ngx_int_t
ngx_http_tsdb_status_list(ngx_http_tsdb_query_ctx_t *ctx, const char *name,
    ngx_http_tsdb_sets_t *s, ngx_http_tsdb_run_t *r, size_t n)
{
    size_t  k;

    if (ts_buf_reserve(&ctx->out, 64) != TS_OK) {
        return NGX_ERROR;
    }

    ctx->out.len = ngx_sprintf(ctx->out.p + ctx->out.len, ",\"%s\":[", name)
                   - ctx->out.p;

    for (k = 0; k < n && k < (size_t) ctx->limit; k++) {
        if (ts_buf_reserve(&ctx->out, 16) != TS_OK) {
            return NGX_ERROR;
        }

        ctx->out.len = ngx_sprintf(ctx->out.p + ctx->out.len, "%s{\"name\":",
                                   k ? "," : "")
                       - ctx->out.p;

        if (ts_pqjson_string((char *) s->strs.p + r[k].off + 4, r[k].len,
                             &ctx->out) != TS_OK
            || ts_buf_reserve(&ctx->out, 48) != TS_OK)
        {
            return NGX_ERROR;
        }

        ctx->out.len = ngx_sprintf(ctx->out.p + ctx->out.len,
                                   ",\"value\":%uL}", r[k].count)
                       - ctx->out.p;
    }

    if (ts_buf_reserve(&ctx->out, 1) != TS_OK) {
        return NGX_ERROR;
    }

    ctx->out.p[ctx->out.len++] = ']';

    return NGX_OK;
}


/*
 * status/tsdb: cardinality as Prometheus reports it, over every series
 * of the tenant (head and index): the top `limit` metric names by
 * series, label names by distinct values and by their values' bytes,
 * and label pairs by series.
 */

static void
ngx_http_tsdb_query_status(ngx_http_tsdb_query_ctx_t *ctx)
{
    size_t                   i, n[4];
    ngx_int_t                ok;
    ngx_http_tsdb_run_t     *r[4];
    ngx_http_tsdb_listing_t  ls;

    ngx_memzero(&ls, sizeof(ngx_http_tsdb_listing_t));
    ngx_memzero(r, sizeof(r));
    ls.ctx = ctx;
    ls.mint = INT64_MAX;
    ls.maxt = INT64_MIN;

    if (ngx_http_tsdb_listing_select(&ls) != NGX_OK) {
        goto done;
    }

    ngx_http_tsdb_sets_sort(&ls.sets);
    ngx_http_tsdb_sets_sort(&ls.pairs);

    r[0] = ngx_http_tsdb_runs(&ls.sets, 0, 0, &n[0]);
    r[1] = ngx_http_tsdb_runs(&ls.pairs, 1, 0, &n[1]);
    r[2] = ngx_http_tsdb_runs(&ls.pairs, 1, 1, &n[2]);
    r[3] = ngx_http_tsdb_runs(&ls.pairs, 0, 0, &n[3]);

    ok = NGX_ERROR;

    if (r[0] && r[1] && r[2] && r[3]
        && ts_buf_reserve(&ctx->out, 256) == TS_OK)
    {
        if (ls.series == 0) {
            ls.mint = 0;
            ls.maxt = 0;
        }

        /* n[3]: the distinct name=value pairs */

        ctx->out.len = ngx_sprintf(ctx->out.p,
                           "{\"status\":\"success\",\"data\":{\"headStats\":"
                           "{\"numSeries\":%uL,\"numLabelPairs\":%uz,"
                           "\"chunkCount\":%uL,\"minTime\":%L,"
                           "\"maxTime\":%L}",
                           ls.series, n[3], ls.chunks, ls.mint, ls.maxt)
                       - ctx->out.p;

        if (ngx_http_tsdb_status_list(ctx, "seriesCountByMetricName",
                                      &ls.sets, r[0], n[0]) == NGX_OK
            && ngx_http_tsdb_status_list(ctx, "labelValueCountByLabelName",
                                         &ls.pairs, r[1], n[1]) == NGX_OK
            && ngx_http_tsdb_status_list(ctx, "memoryInBytesByLabelName",
                                         &ls.pairs, r[2], n[2]) == NGX_OK
            && ngx_http_tsdb_status_list(ctx, "seriesCountByLabelValuePair",
                                         &ls.pairs, r[3], n[3]) == NGX_OK
            && ts_buf_reserve(&ctx->out, 2) == TS_OK)
        {
            ctx->out.p[ctx->out.len++] = '}';
            ctx->out.p[ctx->out.len++] = '}';
            ctx->status = NGX_HTTP_OK;
            ok = NGX_OK;
        }
    }

    if (ok != NGX_OK) {
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory");
    }

done:

    for (i = 0; i < 4; i++) {
        free(r[i]);
    }

    free(ls.sets.off);
    free(ls.sets.strs.p);
    free(ls.pairs.off);
    free(ls.pairs.strs.p);
    free(ls.tmp.p);
}


/*
 * query_exemplars, as Prometheus 2.42's API: start and end (default the
 * whole time range, end not before start), the vector selectors found
 * anywhere in the PromQL expression "query" (parser.ExtractSelectors),
 * and the exemplars of the head series any of them selects in [start,
 * end], one entry per series sorted by its labels, exemplars oldest
 * first.  No selector at all answers 204 without a body, as Prometheus
 * does (its handler returns no data).
 */

static ngx_int_t
ngx_http_tsdb_exemplars_prepare(ngx_http_tsdb_query_ctx_t *ctx)
{
    char                fmt[TS_PROMQL_MSG_SIZE + 64];
    int64_t            *t[2];
    ngx_str_t          *q, *v;
    ngx_uint_t          i;
    ts_promql_error_t   err;

    static const char  *name[2] = { "start", "end" };

    t[0] = &ctx->start;
    t[1] = &ctx->end;
    ctx->start = NGX_HTTP_TSDB_TIME_MIN * 1000;
    ctx->end = NGX_HTTP_TSDB_TIME_MAX * 1000;

    /* parseTimeParam's words */

    for (i = 0; i < 2; i++) {
        v = ngx_http_tsdb_query_arg(ctx, name[i]);

        if (v != NULL && v->len
            && ngx_http_tsdb_query_time(v, t[i]) != NGX_OK)
        {
            ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                      "invalid parameter \"%s\": Invalid "
                                      "time value for '%s': cannot parse "
                                      "\"%V\" to a valid timestamp",
                                      name[i], name[i], v);
            return NGX_ERROR;
        }
    }

    if (ctx->end < ctx->start) {
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                  "end timestamp must not be before start "
                                  "timestamp");
        return NGX_ERROR;
    }

    q = ngx_http_tsdb_query_arg(ctx, "query");
    if (q == NULL) {
        q = &ctx->label;        /* empty */
    }

    if (ts_promql_parse((char *) q->data, q->len, NULL, &ctx->pq, &err)
        != TS_OK)
    {
        (void) ts_promql_error_format(&err, fmt, sizeof(fmt));
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                  "%s", fmt);
        return NGX_ERROR;
    }

    return NGX_OK;
}


#define ngx_http_tsdb_xq_lit(out, s)                                      \
    ngx_http_tsdb_xq_put(out, s, sizeof(s) - 1)


typedef struct {
    uint32_t                    ref;
    size_t                      first;        /* into ex.e */
    size_t                      n;
    ts_label_t                 *labels;       /* the head's */
    uint32_t                    nlabels;
} ngx_http_tsdb_xseries_t;


typedef struct {
    ngx_http_tsdb_query_ctx_t  *ctx;
    uint32_t                   *refs;
    size_t                      nrefs;
    size_t                      cap;
    ngx_uint_t                  selectors;
    ngx_http_tsdb_exemplars_t   ex;
    ngx_http_tsdb_xseries_t    *series;
    size_t                      nseries;
    ts_label_t                 *labels;
} ngx_http_tsdb_xquery_t;


static ngx_int_t ngx_http_tsdb_xq_walk(ngx_http_tsdb_xquery_t *xq,
    const ts_promql_expr_t *e);
static ngx_int_t ngx_http_tsdb_xq_select(ngx_http_tsdb_xquery_t *xq,
    const ts_promql_vector_t *v);
static int ngx_http_tsdb_xq_ref_cmp(const void *a, const void *b);
static int ngx_http_tsdb_xq_entry(void *data, const ts_exemplar_entry_t *e);
static ngx_int_t ngx_http_tsdb_xq_collect(ngx_http_tsdb_xquery_t *xq);
static int ngx_http_tsdb_xq_series_cmp(const void *a, const void *b);
static ngx_int_t ngx_http_tsdb_xq_json(ngx_http_tsdb_xquery_t *xq);
static ngx_int_t ngx_http_tsdb_xq_put(ts_buf_t *out, const char *s,
    size_t len);
static ngx_int_t ngx_http_tsdb_xq_labels(ts_buf_t *out, const ts_label_t *l,
    uint32_t n);


static void
ngx_http_tsdb_query_exemplars(ngx_http_tsdb_query_ctx_t *ctx)
{
    ngx_http_tsdb_xquery_t  xq;

    ngx_memzero(&xq, sizeof(ngx_http_tsdb_xquery_t));
    xq.ctx = ctx;

    if (ngx_http_tsdb_xq_walk(&xq, ts_promql_root(ctx->pq)) != NGX_OK) {
        goto done;
    }

    if (xq.selectors == 0) {
        ctx->status = NGX_HTTP_NO_CONTENT;
        goto done;
    }

    if (ngx_http_tsdb_xq_collect(&xq) != NGX_OK
        || ngx_http_tsdb_xq_json(&xq) != NGX_OK)
    {
        goto nomem;
    }

    ctx->status = NGX_HTTP_OK;
    goto done;

nomem:

    ctx->out.len = 0;
    ngx_http_tsdb_query_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                              "internal", "out of memory");

done:

    free(xq.refs);
    free(xq.series);
    free(xq.labels);
    free(xq.ex.e);
    free(xq.ex.bytes);
}


/* every vector selector, as parser.Inspect visits them */

static ngx_int_t
ngx_http_tsdb_xq_walk(ngx_http_tsdb_xquery_t *xq, const ts_promql_expr_t *e)
{
    uint32_t  i;

    if (e == NULL) {
        return NGX_OK;
    }

    switch (e->kind) {

    case TS_PQ_VECTOR:
        return ngx_http_tsdb_xq_select(xq, &e->u.vector);

    case TS_PQ_MATRIX:
        return ngx_http_tsdb_xq_walk(xq, e->u.matrix.vector);

    case TS_PQ_SUBQUERY:
        return ngx_http_tsdb_xq_walk(xq, e->u.subquery.expr);

    case TS_PQ_CALL:
        for (i = 0; i < e->u.call.nargs; i++) {
            if (ngx_http_tsdb_xq_walk(xq, e->u.call.args[i]) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        return NGX_OK;

    case TS_PQ_AGGREGATE:
        if (ngx_http_tsdb_xq_walk(xq, e->u.aggregate.param) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_http_tsdb_xq_walk(xq, e->u.aggregate.expr);

    case TS_PQ_BINARY:
        if (ngx_http_tsdb_xq_walk(xq, e->u.binary.lhs) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_http_tsdb_xq_walk(xq, e->u.binary.rhs);

    case TS_PQ_UNARY:
        return ngx_http_tsdb_xq_walk(xq, e->u.unary.expr);

    case TS_PQ_PAREN:
        return ngx_http_tsdb_xq_walk(xq, e->u.paren);

    default:
        return NGX_OK;
    }
}


/* the head series of one selector; the ring holds only those */

static ngx_int_t
ngx_http_tsdb_xq_select(ngx_http_tsdb_xquery_t *xq,
    const ts_promql_vector_t *v)
{
    int                         rc, opened;
    char                        msg[TS_SELECT_MSG_SIZE];
    void                       *p;
    uint64_t                    ref;
    ts_select_t                *it;
    ts_selector_t              *sel;
    ngx_http_tsdb_query_ctx_t  *ctx;

    ctx = xq->ctx;
    xq->selectors++;

    if (ts_selector_compile(&sel, v->matchers, v->nmatchers,
                            &ctx->conf.select, msg, sizeof(msg))
        != TS_OK)
    {
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_BAD_REQUEST, "bad_data",
                                  "%s", msg);
        return NGX_ERROR;
    }

    rc = ts_select_open(&it, sel, &ctx->hs.src);
    opened = (rc == TS_OK);

    while (rc == TS_OK && (rc = ts_select_next(it, &ref)) == 1) {
        if (xq->nrefs == xq->cap) {
            xq->cap = xq->cap ? xq->cap * 2 : 256;
            p = realloc(xq->refs, xq->cap * sizeof(uint32_t));
            if (p == NULL) {
                rc = TS_ERR_NOMEM;
                break;
            }

            xq->refs = p;
        }

        xq->refs[xq->nrefs++] = (uint32_t) ref;
        rc = TS_OK;
    }

    if (opened) {
        ts_select_close(it);
    }

    ts_selector_free(sel);

    if (rc < 0) {
        ngx_http_tsdb_query_error(ctx, rc == TS_ERR_LIMIT
                                       ? 422 : NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  rc == TS_ERR_LIMIT ? "execution"
                                                     : "internal",
                                  "selecting series failed: %s",
                                  ts_strerror(rc));
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int
ngx_http_tsdb_xq_ref_cmp(const void *a, const void *b)
{
    uint32_t  x, y;

    x = *(const uint32_t *) a;
    y = *(const uint32_t *) b;

    return x < y ? -1 : x > y;
}


/* under the ring's lock: memory only; labels as offsets for now */

static int
ngx_http_tsdb_xq_entry(void *data, const ts_exemplar_entry_t *e)
{
    ngx_http_tsdb_exemplars_t  *ex = data;

    void    *p;
    size_t   cap;

    if (ex->n == ex->cap) {
        cap = ex->cap ? ex->cap * 2 : 256;
        p = realloc(ex->e, cap * sizeof(ts_exemplar_entry_t));
        if (p == NULL) {
            return TS_ERR_NOMEM;
        }

        ex->e = p;
        ex->cap = cap;
    }

    if (ex->len + e->labels_len > ex->bcap) {
        cap = ex->bcap ? ex->bcap * 2 : 16384;
        while (cap < ex->len + e->labels_len) {
            cap *= 2;
        }

        p = realloc(ex->bytes, cap);
        if (p == NULL) {
            return TS_ERR_NOMEM;
        }

        ex->bytes = p;
        ex->bcap = cap;
    }

    ex->e[ex->n] = *e;
    ex->e[ex->n].labels = (const uint8_t *) (uintptr_t) ex->len;

    if (e->labels_len) {
        ngx_memcpy(ex->bytes + ex->len, e->labels, e->labels_len);
    }

    ex->len += e->labels_len;
    ex->n++;

    return 0;
}


/* each selected series once, with its exemplars and labels */

static ngx_int_t
ngx_http_tsdb_xq_collect(ngx_http_tsdb_xquery_t *xq)
{
    size_t                    i, k, first, nl;
    uint32_t                  n;
    ngx_http_tsdb_zone_t     *z;
    ngx_http_tsdb_xseries_t  *s;

    z = xq->ctx->zone;

    ngx_qsort(xq->refs, xq->nrefs, sizeof(uint32_t),
              ngx_http_tsdb_xq_ref_cmp);

    xq->series = malloc((xq->nrefs + 1) * sizeof(ngx_http_tsdb_xseries_t));
    if (xq->series == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < xq->nrefs; i++) {
        if (i && xq->refs[i] == xq->refs[i - 1]) {
            continue;
        }

        first = xq->ex.n;

        if (ts_exemplar_series(&z->exemplars, xq->refs[i],
                               xq->ctx->start, xq->ctx->end,
                               ngx_http_tsdb_xq_entry, &xq->ex)
            != TS_OK)
        {
            return NGX_ERROR;
        }

        if (xq->ex.n > first) {
            s = &xq->series[xq->nseries++];
            s->ref = xq->refs[i];
            s->first = first;
            s->n = xq->ex.n - first;
        }
    }

    for (i = 0; i < xq->ex.n; i++) {
        xq->ex.e[i].labels = xq->ex.bytes + (uintptr_t) xq->ex.e[i].labels;
    }

    /* labels point into the zone, which never frees them */

    xq->labels = malloc((xq->nseries * TS_HEAD_MAX_LABELS + 1)
                        * sizeof(ts_label_t));
    if (xq->labels == NULL) {
        return NGX_ERROR;
    }

    nl = 0;

    for (k = 0; k < xq->nseries; k++) {
        s = &xq->series[k];
        s->labels = &xq->labels[nl];

        if (ts_head_labels(&z->head, s->ref, s->labels, TS_HEAD_MAX_LABELS,
                           &n) != TS_OK)
        {
            n = 0;
        }

        s->nlabels = n;
        nl += n;
    }

    ngx_qsort(xq->series, xq->nseries, sizeof(ngx_http_tsdb_xseries_t),
              ngx_http_tsdb_xq_series_cmp);

    return NGX_OK;
}


static int
ngx_http_tsdb_xq_series_cmp(const void *a, const void *b)
{
    const ngx_http_tsdb_xseries_t  *x = a, *y = b;

    return ts_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}


/*
 * {"seriesLabels":{...},"exemplars":[{"labels":{...},"value":"1",
 * "timestamp":1.5}]}: the value as marshalValue, the time as
 * marshalTimestamp writes them.
 */

static ngx_int_t
ngx_http_tsdb_xq_json(ngx_http_tsdb_xquery_t *xq)
{
    char                  num[64];
    double                v, a;
    size_t                i, j;
    uint64_t              u;
    ts_buf_t             *out;
    ts_label_t            l[TS_EXEMPLAR_LABELS_MAX];
    uint32_t              n;
    const uint8_t        *p, *end;
    ts_exemplar_entry_t  *e;

    out = &xq->ctx->out;

    if (ngx_http_tsdb_xq_lit(out, "{\"status\":\"success\",\"data\":[")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < xq->nseries; i++) {
        if ((i && ngx_http_tsdb_xq_lit(out, ",") != NGX_OK)
            || ngx_http_tsdb_xq_lit(out, "{\"seriesLabels\":") != NGX_OK
            || ngx_http_tsdb_xq_labels(out, xq->series[i].labels,
                                       xq->series[i].nlabels) != NGX_OK
            || ngx_http_tsdb_xq_lit(out, ",\"exemplars\":[") != NGX_OK)
        {
            return NGX_ERROR;
        }

        for (j = 0; j < xq->series[i].n; j++) {
            e = &xq->ex.e[xq->series[i].first + j];

            p = e->labels;
            end = p + e->labels_len;

            for (n = 0; n < TS_EXEMPLAR_LABELS_MAX
                        && ts_exemplar_labels_next(&p, end, &l[n]) == 1;
                 n++)
            {
                /* void */
            }

            if ((j && ngx_http_tsdb_xq_lit(out, ",") != NGX_OK)
                || ngx_http_tsdb_xq_lit(out, "{\"labels\":") != NGX_OK
                || ngx_http_tsdb_xq_labels(out, l, n) != NGX_OK)
            {
                return NGX_ERROR;
            }

            ngx_memcpy(&v, &e->v, sizeof(double));
            a = fabs(v);
            ts_pqjson_float(v, a != 0 && (a < 1e-6 || a >= 1e21) ? 'e' : 'f',
                            num, sizeof(num));

            if (ngx_http_tsdb_xq_lit(out, ",\"value\":\"") != NGX_OK
                || ngx_http_tsdb_xq_put(out, num, ngx_strlen(num)) != NGX_OK
                || ngx_http_tsdb_xq_lit(out, "\",\"timestamp\":") != NGX_OK)
            {
                return NGX_ERROR;
            }

            u = e->t < 0 ? (uint64_t) -(e->t + 1) + 1 : (uint64_t) e->t;

            if (u % 1000) {
                n = (uint32_t) (ngx_sprintf((u_char *) num, "%s%uL.%03ui}",
                                            e->t < 0 ? "-" : "", u / 1000,
                                            (ngx_uint_t) (u % 1000))
                                - (u_char *) num);

            } else {
                n = (uint32_t) (ngx_sprintf((u_char *) num, "%s%uL}",
                                            e->t < 0 ? "-" : "", u / 1000)
                                - (u_char *) num);
            }

            if (ngx_http_tsdb_xq_put(out, num, n) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        if (ngx_http_tsdb_xq_lit(out, "]}") != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_tsdb_xq_lit(out, "]}");
}


static ngx_int_t
ngx_http_tsdb_xq_put(ts_buf_t *out, const char *s, size_t len)
{
    if (ts_buf_reserve(out, len) != TS_OK) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->p + out->len, s, len);
    out->len += len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tsdb_xq_labels(ts_buf_t *out, const ts_label_t *l, uint32_t n)
{
    uint32_t  i;

    if (ngx_http_tsdb_xq_lit(out, "{") != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if ((i && ngx_http_tsdb_xq_lit(out, ",") != NGX_OK)
            || ts_pqjson_string(l[i].name, l[i].name_len, out) != TS_OK
            || ngx_http_tsdb_xq_lit(out, ":") != NGX_OK
            || ts_pqjson_string(l[i].value, l[i].value_len, out) != TS_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_tsdb_xq_lit(out, "}");
}


/* the API level we implement, and who we are */

static void
ngx_http_tsdb_query_buildinfo(ngx_http_tsdb_query_ctx_t *ctx)
{
    if (ts_buf_reserve(&ctx->out, 256) != TS_OK) {
        ngx_http_tsdb_query_error(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                  "internal", "out of memory");
        return;
    }

    ctx->out.len = ngx_sprintf(ctx->out.p,
                       "{\"status\":\"success\",\"data\":{"
                       "\"version\":\"" NGX_HTTP_TSDB_PROM_VERSION "\","
                       "\"revision\":\"ngx_tsdb/" NGX_HTTP_TSDB_VERSION "\","
                       "\"branch\":\"\",\"buildUser\":\"\","
                       "\"buildDate\":\"\",\"goVersion\":\"\"}}")
                   - ctx->out.p;
    ctx->status = NGX_HTTP_OK;
}


/* Prometheus's error envelope; the message is one line */

static void
ngx_http_tsdb_query_error(ngx_http_tsdb_query_ctx_t *ctx, ngx_uint_t status,
    const char *type, const char *fmt, ...)
{
    u_char   msg[1024], *last;
    va_list  args;

    va_start(args, fmt);
    last = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    ctx->out.len = 0;
    ctx->status = status;

    if (ts_pqjson_error(type, (char *) msg, last - msg, &ctx->out) != TS_OK) {
        ctx->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        ctx->out.len = 0;
    }
}


static void
ngx_http_tsdb_query_send(void *data)
{
    ngx_http_tsdb_query_ctx_t  *ctx = data;

    ngx_uint_t           level;
    ngx_http_request_t  *r;

    r = ctx->request;

    /* query_exemplars without a selector: no data, as Prometheus */

    if (ctx->status == NGX_HTTP_NO_CONTENT) {
        r->headers_out.status = NGX_HTTP_NO_CONTENT;
        r->header_only = 1;
        ngx_http_finalize_request(r, ngx_http_send_header(r));
        return;
    }

    if (ctx->out.len == 0) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->status >= NGX_HTTP_BAD_REQUEST) {
        level = (ctx->status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
                ? NGX_LOG_WARN : NGX_LOG_INFO;
        ngx_log_error(level, r->connection->log, 0, "tsdb query: %ui %*s",
                      ctx->status, ngx_min(ctx->out.len, 300), ctx->out.p);
    }

    r->headers_out.status = ctx->status;
    r->headers_out.content_length_n = ctx->out.len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    /* the memory is freed with the request's pool (the cleanup) */

    ngx_http_tsdb_send(r, ctx->out.p, ctx->out.len);
}


static void
ngx_http_tsdb_query_cleanup(void *data)
{
    ngx_http_tsdb_query_ctx_t  *ctx = data;

    ngx_uint_t  i;

    if (ctx->pq != NULL) {
        ts_promql_free(ctx->pq);
    }

    for (i = 0; i < ctx->nmatch; i++) {
        ts_promql_free(ctx->match[i]);
    }

    if (ctx->nsrc > 1) {
        ts_source_db_free(&ctx->ds);
    }

    free(ctx->out.p);
}
