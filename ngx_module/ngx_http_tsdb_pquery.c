/*
 * Copyright (C) ngx_tsdb authors
 *
 * tsdb_profile_query: profiles read back, by URI suffix.
 *
 *   .../pyroscope/render        flamebearer JSON and timeline, as
 *                               Pyroscope's legacy render
 *   .../pyroscope/pprof         the merged profile, gzip protobuf
 *   .../pyroscope/folded        collapsed stacks
 *   .../pyroscope/labels        label names, a JSON array
 *   .../pyroscope/label-values  values of ?label= (profile type ids
 *                               for __name__), a JSON array
 *   .../querier.v1.QuerierService/{ProfileTypes, LabelNames,
 *       LabelValues, SelectSeries, SelectMergeStacktraces,
 *       SelectMergeProfile}     Connect unary, application/proto or
 *                               application/json (protojson)
 *
 * The legacy endpoints take query (a profile type id with a label
 * selector), from, until (Pyroscope's attime forms: now-1h, unix
 * seconds, ms, us or ns by magnitude) and maxNodes (max-nodes); errors
 * are one text line with 400 (bad parameters), 422 (the answer would
 * pass a limit) or 5xx.  Connect errors are {"code":..,"message":..}
 * with Connect's HTTP status for the code.
 *
 * Requests are parsed on the event loop; everything that reads the
 * store and builds the answer runs in the zone's thread pool (inline
 * without one) and touches only the ctx: memory there is malloc'ed and
 * freed by the request pool's cleanup.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <math.h>
#include <stdlib.h>

#include "ngx_http_tsdb_module.h"
#include "profile.pb-c.h"
#include "pyroscope_querier.pb-c.h"
#include "pyroscope_types.pb-c.h"
#include "ts_flame.h"
#include "ts_inflate.h"
#include "ts_pjson.h"
#include "ts_pprof.h"
#include "ts_pqjson.h"
#include "ts_promql.h"
#include "ts_pstore.h"


#define NGX_HTTP_TSDB_PQ_CONNECT     "/querier.v1.QuerierService/"
#define NGX_HTTP_TSDB_PQ_MAX_SEL     16
#define NGX_HTTP_TSDB_PQ_MAX_GROUPS  10000
#define NGX_HTTP_TSDB_PQ_MAX_POINTS  11000
#define NGX_HTTP_TSDB_PQ_MAX_VALUES  1000000
#define NGX_HTTP_TSDB_PQ_ERR         512
#define NGX_HTTP_TSDB_PQ_TYPE_MAX    512

/* request Content-Encoding; gzip inflates to 4 x a profile's cap */
#define NGX_HTTP_TSDB_PQ_ENC_NONE    0
#define NGX_HTTP_TSDB_PQ_ENC_GZIP    1
#define NGX_HTTP_TSDB_PQ_ENC_OTHER   2
#define NGX_HTTP_TSDB_PQ_BODY_FACTOR 4

#define NGX_HTTP_TSDB_PQ_AVERAGE                                          \
TYPES__V1__TIME_SERIES_AGGREGATION_TYPE__TIME_SERIES_AGGREGATION_TYPE_AVERAGE
#define NGX_HTTP_TSDB_PQ_UNSPECIFIED                                      \
    QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_UNSPECIFIED
#define NGX_HTTP_TSDB_PQ_FLAMEGRAPH                                       \
    QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_FLAMEGRAPH


typedef enum {
    NGX_HTTP_TSDB_PQ_RENDER = 0,
    NGX_HTTP_TSDB_PQ_PPROF,
    NGX_HTTP_TSDB_PQ_FOLDED,
    NGX_HTTP_TSDB_PQ_LABELS,
    NGX_HTTP_TSDB_PQ_LABEL_VALUES,
    NGX_HTTP_TSDB_PQ_C_PROFILE_TYPES,
    NGX_HTTP_TSDB_PQ_C_LABEL_NAMES,
    NGX_HTTP_TSDB_PQ_C_LABEL_VALUES,
    NGX_HTTP_TSDB_PQ_C_SELECT_SERIES,
    NGX_HTTP_TSDB_PQ_C_MERGE_STACKS,
    NGX_HTTP_TSDB_PQ_C_MERGE_PROFILE
} ngx_http_tsdb_pq_ep_e;


/* one label selector: matchers other than __name__ */
typedef struct {
    ts_matcher_t               *m;
    uint32_t                    n;
} ngx_http_tsdb_pq_sel_t;


/* a set of strings (label names or values), malloc'ed */
typedef struct {
    char                      **s;
    size_t                     *len;
    uint32_t                   *slot;        /* index + 1 */
    uint32_t                    mask;
    uint32_t                    n;
    uint32_t                    cap;
} ngx_http_tsdb_pq_set_t;


/* one SelectSeries group: its label values and per-step sums */
typedef struct {
    char                       *key;         /* values joined by 0xff */
    size_t                      key_len;
    ts_label_t                 *labels;
    uint32_t                    nlabels;
    double                     *sum;
    uint32_t                   *count;
    double                      total;
} ngx_http_tsdb_pq_group_t;


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_tsdb_zone_t       *zone;
    ngx_http_tsdb_pq_ep_e       ep;
    ngx_str_t                   tenant;
    unsigned                    connect:1;
    unsigned                    json:1;      /* Connect: JSON answer */

    ts_promql_t                *pq[NGX_HTTP_TSDB_PQ_MAX_SEL];
    ngx_uint_t                  npq;
    ngx_http_tsdb_pq_sel_t      sel[NGX_HTTP_TSDB_PQ_MAX_SEL];
    ngx_uint_t                  nsel;
    char                        type[NGX_HTTP_TSDB_PQ_TYPE_MAX];
    size_t                      type_len;
    int64_t                     from;        /* ns, inclusive */
    int64_t                     until;
    int64_t                     max_nodes;
    ngx_str_t                   label;       /* label values */
    double                      step;        /* SelectSeries, s */
    ngx_uint_t                  average;
    char                      **group_by;
    size_t                      ngroup_by;
    int64_t                     limit;

    ts_pprof_t                  prof;
    unsigned                    prof_init:1;
    uint64_t                    nprofiles;
    ngx_http_tsdb_pq_set_t      set;
    ngx_http_tsdb_pq_group_t   *groups;
    uint32_t                    ngroups;
    uint32_t                    npoints;
    uint64_t                   *timeline;
    uint32_t                    ntimeline;
    int64_t                     tl_start;    /* s */
    int64_t                     tl_step;
    char                        spy[64];
    unsigned                    spy_mixed:1;
    void                      **mem;         /* malloc'ed, freed at end */
    ngx_uint_t                  nmem;
    ngx_uint_t                  mem_cap;

    ngx_uint_t                  status;
    const char                 *code;        /* Connect error code */
    const char                 *content_type;
    ts_buf_t                    out;
    char                        err[NGX_HTTP_TSDB_PQ_ERR];
} ngx_http_tsdb_pq_ctx_t;


/* a walk over series for a listing */
typedef struct {
    ngx_http_tsdb_pq_ctx_t     *ctx;
    int                         rc;
} ngx_http_tsdb_pq_walk_t;


static void ngx_http_tsdb_pq_body(ngx_http_request_t *r);
static void ngx_http_tsdb_pq_start(ngx_http_tsdb_pq_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_pq_endpoint(ngx_http_tsdb_pq_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_pq_arg(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_tsdb_pq_legacy(ngx_http_tsdb_pq_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_pq_attime(ngx_str_t *s, int64_t now,
    int64_t *ns);
static ngx_int_t ngx_http_tsdb_pq_selector(ngx_http_tsdb_pq_ctx_t *ctx,
    const char *s, size_t len, ngx_uint_t want_type);
static ngx_int_t ngx_http_tsdb_pq_set_type(ngx_http_tsdb_pq_ctx_t *ctx,
    const char *s, size_t len);
static ngx_int_t ngx_http_tsdb_pq_connect(ngx_http_tsdb_pq_ctx_t *ctx);
static ngx_uint_t ngx_http_tsdb_pq_encoded(ngx_http_request_t *r);
static ngx_int_t ngx_http_tsdb_pq_request(ngx_http_tsdb_pq_ctx_t *ctx,
    ProtobufCMessage *msg);
static ngx_int_t ngx_http_tsdb_pq_unapplied(ngx_http_tsdb_pq_ctx_t *ctx,
    const Types__V1__StackTraceSelector *sts, size_t nids);
static ngx_int_t ngx_http_tsdb_pq_merge_req(ngx_http_tsdb_pq_ctx_t *ctx,
    int64_t max_nodes, const Types__V1__StackTraceSelector *sts,
    size_t nids, const char *type, const char *selector);
static void ngx_http_tsdb_pq_range(ngx_http_tsdb_pq_ctx_t *ctx,
    int64_t start, int64_t end);
static void ngx_http_tsdb_pq_run(void *data);
static void ngx_http_tsdb_pq_merge_run(ngx_http_tsdb_pq_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_pq_merge(ngx_http_tsdb_pq_ctx_t *ctx);
static void ngx_http_tsdb_pq_render(ngx_http_tsdb_pq_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_pq_timeline(ngx_http_tsdb_pq_ctx_t *ctx);
static int ngx_http_tsdb_pq_timeline_row(void *data, const ts_label_t *l,
    uint32_t n, int64_t t, int64_t total);
static void ngx_http_tsdb_pq_pprof(ngx_http_tsdb_pq_ctx_t *ctx);
static int ngx_http_tsdb_pq_write(void *data, const char *p, size_t len);
static void ngx_http_tsdb_pq_folded(ngx_http_tsdb_pq_ctx_t *ctx);
static void ngx_http_tsdb_pq_stacks(ngx_http_tsdb_pq_ctx_t *ctx);
static void ngx_http_tsdb_pq_profile(ngx_http_tsdb_pq_ctx_t *ctx);
static ngx_int_t ngx_http_tsdb_pq_collect(ngx_http_tsdb_pq_ctx_t *ctx);
static void ngx_http_tsdb_pq_listing(ngx_http_tsdb_pq_ctx_t *ctx);
static int ngx_http_tsdb_pq_series(void *data, const ts_label_t *l,
    uint32_t n, uint64_t rows, uint64_t row_bytes);
static void ngx_http_tsdb_pq_types(ngx_http_tsdb_pq_ctx_t *ctx);
static void ngx_http_tsdb_pq_select_series(ngx_http_tsdb_pq_ctx_t *ctx);
static int ngx_http_tsdb_pq_series_row(void *data, const ts_label_t *l,
    uint32_t n, int64_t t, int64_t total);
static ngx_int_t ngx_http_tsdb_pq_group(ngx_http_tsdb_pq_ctx_t *ctx,
    const u_char *key, size_t len, const ts_label_t *l, uint32_t n);
static ngx_int_t ngx_http_tsdb_pq_set_add(ngx_http_tsdb_pq_set_t *set,
    const char *s, size_t len);
static void ngx_http_tsdb_pq_set_sort(ngx_http_tsdb_pq_set_t *set);
static void ngx_http_tsdb_pq_set_free(ngx_http_tsdb_pq_set_t *set);
static void *ngx_http_tsdb_pq_alloc(ngx_http_tsdb_pq_ctx_t *ctx,
    size_t size);
static void ngx_http_tsdb_pq_emit(ngx_http_tsdb_pq_ctx_t *ctx,
    const ProtobufCMessage *m);
static void ngx_http_tsdb_pq_store_error(ngx_http_tsdb_pq_ctx_t *ctx,
    int rc);
static void ngx_http_tsdb_pq_fail(ngx_http_tsdb_pq_ctx_t *ctx,
    ngx_uint_t status, const char *code, const char *fmt, ...);
static void ngx_http_tsdb_pq_send(void *data);
static void ngx_http_tsdb_pq_cleanup(void *data);


ngx_int_t
ngx_http_tsdb_profile_query_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_pool_cleanup_t        *cln;
    ngx_http_tsdb_req_t       *req;
    ngx_http_tsdb_pq_ctx_t    *ctx;
    ngx_http_tsdb_loc_conf_t  *lcf;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD | NGX_HTTP_POST))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    req = ngx_http_tsdb_metrics_begin(r, NGX_HTTP_TSDB_PROFILE_QUERY);
    if (req == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tsdb_pq_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_tsdb_pq_cleanup;
    cln->data = ctx;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);

    req->data = ctx;
    ctx->request = r;
    ctx->zone = lcf->zone;

    if (r->method != NGX_HTTP_POST) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        r->main->count++;
        ngx_http_tsdb_pq_start(ctx);

        return NGX_DONE;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_tsdb_pq_body);
    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_tsdb_pq_body(ngx_http_request_t *r)
{
    ngx_http_tsdb_req_t  *req;

    req = ngx_http_get_module_ctx(r, ngx_http_tsdb_module);

    ngx_http_tsdb_pq_start(req->data);
}


/* Parses the request on the event loop, then runs the work. */

static void
ngx_http_tsdb_pq_start(ngx_http_tsdb_pq_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_http_request_t        *r;
    ngx_http_tsdb_loc_conf_t  *lcf;

    r = ctx->request;
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tsdb_module);

    if (ngx_http_tsdb_pq_endpoint(ctx) != NGX_OK) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_NOT_FOUND, "not_found",
                              "unknown profile query endpoint");
        goto send;
    }

    if ((r->method == NGX_HTTP_POST) != ctx->connect) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_NOT_ALLOWED, "unimplemented",
                              ctx->connect ? "Connect endpoints take POST"
                                           : "use GET");
        goto send;
    }

    if (ctx->zone->pstore == NULL) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                              "unavailable", "profile store not open");
        goto send;
    }

    if (ngx_http_tsdb_tenant(r, lcf, &ctx->tenant) != NGX_OK) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "invalid tenant id");
        goto send;
    }

    ctx->max_nodes = TS_FLAME_NODES_DEFAULT;

    rc = ctx->connect ? ngx_http_tsdb_pq_connect(ctx)
                      : ngx_http_tsdb_pq_legacy(ctx);
    if (rc != NGX_OK) {
        goto send;
    }

    ngx_http_tsdb_offload(r, ctx->zone, ngx_http_tsdb_pq_run,
                          ngx_http_tsdb_pq_send, ctx);
    return;

send:

    ngx_http_tsdb_pq_send(ctx);
}


static ngx_int_t
ngx_http_tsdb_pq_endpoint(ngx_http_tsdb_pq_ctx_t *ctx)
{
    u_char      *p, *last;
    ngx_str_t    ep, *uri;
    ngx_uint_t   i;

    static const struct {
        const char               *name;
        ngx_http_tsdb_pq_ep_e     ep;
        ngx_uint_t                connect;
    } eps[] = {
        { "/pyroscope/render", NGX_HTTP_TSDB_PQ_RENDER, 0 },
        { "/pyroscope/pprof", NGX_HTTP_TSDB_PQ_PPROF, 0 },
        { "/pyroscope/folded", NGX_HTTP_TSDB_PQ_FOLDED, 0 },
        { "/pyroscope/labels", NGX_HTTP_TSDB_PQ_LABELS, 0 },
        { "/pyroscope/label-values", NGX_HTTP_TSDB_PQ_LABEL_VALUES, 0 },
        { "ProfileTypes", NGX_HTTP_TSDB_PQ_C_PROFILE_TYPES, 1 },
        { "LabelNames", NGX_HTTP_TSDB_PQ_C_LABEL_NAMES, 1 },
        { "LabelValues", NGX_HTTP_TSDB_PQ_C_LABEL_VALUES, 1 },
        { "SelectSeries", NGX_HTTP_TSDB_PQ_C_SELECT_SERIES, 1 },
        { "SelectMergeStacktraces", NGX_HTTP_TSDB_PQ_C_MERGE_STACKS, 1 },
        { "SelectMergeProfile", NGX_HTTP_TSDB_PQ_C_MERGE_PROFILE, 1 },
    };

    uri = &ctx->request->uri;
    last = uri->data + uri->len;

    p = ngx_strlcasestrn(uri->data, last, (u_char *) NGX_HTTP_TSDB_PQ_CONNECT,
                         sizeof(NGX_HTTP_TSDB_PQ_CONNECT) - 2);

    if (p != NULL) {
        ep.data = p + sizeof(NGX_HTTP_TSDB_PQ_CONNECT) - 1;
        ep.len = last - ep.data;

    } else {
        ep = *uri;
    }

    for (i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
        if ((p != NULL) != (eps[i].connect != 0)) {
            continue;
        }

        if (p != NULL) {
            if (ep.len == ngx_strlen(eps[i].name)
                && ngx_strncmp(ep.data, eps[i].name, ep.len) == 0)
            {
                break;
            }

            continue;
        }

        /* legacy: the URI ends with the endpoint */

        if (ep.len >= ngx_strlen(eps[i].name)
            && ngx_strncmp(last - ngx_strlen(eps[i].name), eps[i].name,
                           ngx_strlen(eps[i].name)) == 0)
        {
            break;
        }
    }

    if (i == sizeof(eps) / sizeof(eps[0])) {
        ctx->connect = (p != NULL);
        return NGX_DECLINED;
    }

    ctx->ep = eps[i].ep;
    ctx->connect = eps[i].connect;

    return NGX_OK;
}


/* a query string argument, %XX and '+' decoded */

static ngx_int_t
ngx_http_tsdb_pq_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    u_char     *dst, *src, *p;
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

    for (p = raw.data; p < raw.data + raw.len; p++) {
        if (*p == '+') {
            *p = ' ';
        }
    }

    value->data = dst;
    src = raw.data;
    ngx_unescape_uri(&dst, &src, raw.len, NGX_UNESCAPE_URI);
    value->len = dst - value->data;
    *dst = '\0';

    return NGX_OK;
}


static ngx_int_t
ngx_http_tsdb_pq_legacy(ngx_http_tsdb_pq_ctx_t *ctx)
{
    int64_t              now;
    ngx_int_t            n;
    ngx_str_t            v;
    ngx_time_t          *tp;
    ngx_http_request_t  *r;

    r = ctx->request;
    tp = ngx_timeofday();
    now = (int64_t) tp->sec * 1000000000 + (int64_t) tp->msec * 1000000;

    (void) ngx_http_tsdb_pq_arg(r, "from", &v);
    if (v.len == 0) {
        ngx_str_set(&v, "now-1h");
    }

    if (ngx_http_tsdb_pq_attime(&v, now, &ctx->from) != NGX_OK) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "invalid \"from\": \"%V\"", &v);
        return NGX_ERROR;
    }

    (void) ngx_http_tsdb_pq_arg(r, "until", &v);
    if (v.len == 0) {
        ngx_str_set(&v, "now");
    }

    if (ngx_http_tsdb_pq_attime(&v, now, &ctx->until) != NGX_OK) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "invalid \"until\": \"%V\"", &v);
        return NGX_ERROR;
    }

    if (ctx->until < ctx->from) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "\"until\" is before \"from\"");
        return NGX_ERROR;
    }

    /* maxNodes wins over max-nodes; 0 or junk: the default, as Atoi */

    if ((ngx_http_tsdb_pq_arg(r, "maxNodes", &v) == NGX_OK && v.len)
        || (ngx_http_tsdb_pq_arg(r, "max-nodes", &v) == NGX_OK && v.len))
    {
        n = (v.data[0] == '-') ? ngx_atoi(v.data + 1, v.len - 1)
                               : ngx_atoi(v.data, v.len);

        if (n == NGX_ERROR || n > TS_FLAME_NODES_MAX) {
            ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                  "invalid_argument", "invalid \"maxNodes\","
                                  " at most %d", TS_FLAME_NODES_MAX);
            return NGX_ERROR;
        }

        if (n != 0) {
            ctx->max_nodes = (v.data[0] == '-') ? -1 : n;
        }
    }

    if (ctx->ep == NGX_HTTP_TSDB_PQ_LABEL_VALUES) {
        if (ngx_http_tsdb_pq_arg(r, "label", &ctx->label) != NGX_OK
            || ctx->label.len == 0)
        {
            ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                  "invalid_argument",
                                  "label parameter is required");
            return NGX_ERROR;
        }
    }

    (void) ngx_http_tsdb_pq_arg(r, "query", &v);

    if (ctx->ep == NGX_HTTP_TSDB_PQ_LABELS
        || ctx->ep == NGX_HTTP_TSDB_PQ_LABEL_VALUES)
    {
        return ngx_http_tsdb_pq_selector(ctx, (char *) v.data, v.len, 0);
    }

    if (v.len == 0) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "'query' is required");
        return NGX_ERROR;
    }

    return ngx_http_tsdb_pq_selector(ctx, (char *) v.data, v.len, 1);
}


/*
 * Pyroscope's attime: "now", "now-1h" (s, m, min, h, d, w, M, y), or
 * a unix time in seconds, ms, us or ns told apart by magnitude.
 */

static ngx_int_t
ngx_http_tsdb_pq_attime(ngx_str_t *s, int64_t now, int64_t *ns)
{
    u_char   *p, *last;
    int64_t   n, unit, sign;

    p = s->data;
    last = s->data + s->len;

    if (s->len >= 3 && ngx_strncmp(p, "now", 3) == 0) {
        p += 3;

        if (p == last) {
            *ns = now;
            return NGX_OK;
        }

        if (*p != '-' && *p != '+') {
            return NGX_ERROR;
        }

        sign = (*p++ == '-') ? -1 : 1;

        for (n = 0; p < last && *p >= '0' && *p <= '9'; p++) {
            if (n > 1000000000) {
                return NGX_ERROR;
            }

            n = n * 10 + (*p - '0');
        }

        switch (last - p) {
        case 1:
            unit = (*p == 's') ? 1 : (*p == 'm') ? 60 : (*p == 'h') ? 3600
                   : (*p == 'd') ? 86400 : (*p == 'w') ? 604800
                   : (*p == 'M') ? 2592000 : (*p == 'y') ? 31536000 : 0;
            break;
        case 3:
            unit = (ngx_strncmp(p, "min", 3) == 0) ? 60 : 0;
            break;
        default:
            unit = 0;
        }

        if (unit == 0 || n > INT64_MAX / 1000000000 / unit) {
            return NGX_ERROR;
        }

        *ns = now + sign * n * unit * 1000000000;
        return NGX_OK;
    }

    if (s->len == 0 || s->len > 19) {
        return NGX_ERROR;
    }

    n = ngx_atoof(s->data, s->len);
    if (n < 0) {
        return NGX_ERROR;
    }

    *ns = (n < 10000000000LL) ? n * 1000000000
          : (n < 10000000000000LL) ? n * 1000000
          : (n < 10000000000000000LL) ? n * 1000 : n;

    return NGX_OK;
}


/*
 * A Prometheus series selector (as Pyroscope parses it with
 * ParseMetricSelector); "" and "{}" select everything.  With want_type
 * the metric name is the profile type id and must be there.
 */

static ngx_int_t
ngx_http_tsdb_pq_selector(ngx_http_tsdb_pq_ctx_t *ctx, const char *s,
    size_t len, ngx_uint_t want_type)
{
    char                      msg[TS_PROMQL_MSG_SIZE + 64];
    size_t                    i, k;
    uint32_t                  j;
    ts_promql_t              *pq;
    ts_promql_error_t         err;
    ngx_http_tsdb_pq_sel_t   *sel;
    const ts_promql_expr_t   *e;
    const ts_promql_vector_t *v;

    if (ctx->nsel == NGX_HTTP_TSDB_PQ_MAX_SEL) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "too many selectors");
        return NGX_ERROR;
    }

    sel = &ctx->sel[ctx->nsel];

    for (i = 0, k = 0; i < len; i++) {
        if (s[i] != ' ' && s[i] != '{' && s[i] != '}') {
            k++;
        }
    }

    if (k == 0 && !want_type) {
        sel->m = NULL;
        sel->n = 0;
        ctx->nsel++;
        return NGX_OK;
    }

    if (ts_promql_parse(s, len, NULL, &pq, &err) != TS_OK) {
        (void) ts_promql_error_format(&err, msg, sizeof(msg));
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "failed to parse selector: %s", msg);
        return NGX_ERROR;
    }

    ctx->pq[ctx->npq++] = pq;
    e = ts_promql_root(pq);

    if (e->kind != TS_PQ_VECTOR) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "failed to parse selector: not a series "
                              "selector");
        return NGX_ERROR;
    }

    v = &e->u.vector;

    sel->m = ngx_palloc(ctx->request->pool,
                        (v->nmatchers + 1) * sizeof(ts_matcher_t));
    if (sel->m == NULL) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                              "internal", "out of memory");
        return NGX_ERROR;
    }

    sel->n = 0;

    for (j = 0; j < v->nmatchers; j++) {
        if (want_type && v->matchers[j].name_len == 8
            && ngx_strncmp(v->matchers[j].name, "__name__", 8) == 0)
        {
            if (v->matchers[j].type != TS_MATCH_EQ) {
                ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                      "invalid_argument", "the profile type"
                                      " must be given exactly");
                return NGX_ERROR;
            }

            if (ngx_http_tsdb_pq_set_type(ctx, v->matchers[j].value,
                                          v->matchers[j].value_len)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        sel->m[sel->n] = v->matchers[j];

        /*
         * legacy labels and label-values: a profile type id in the
         * name position (process_cpu:cpu:nanoseconds:cpu:nanoseconds
         * {...}) selects __profile_type__, as Pyroscope's handlers do
         */

        if (!want_type && !ctx->connect
            && v->matchers[j].name_len == 8
            && ngx_strncmp(v->matchers[j].name, "__name__", 8) == 0
            && ngx_strlchr((u_char *) v->matchers[j].value,
                           (u_char *) v->matchers[j].value
                           + v->matchers[j].value_len, ':')
               != NULL)
        {
            sel->m[sel->n].name = TS_PSTORE_TYPE_LABEL;
            sel->m[sel->n].name_len = sizeof(TS_PSTORE_TYPE_LABEL) - 1;
        }

        sel->n++;
    }

    if (want_type && ctx->type_len == 0) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "'query' must contain a profile-type "
                              "selection");
        return NGX_ERROR;
    }

    ctx->nsel++;

    return NGX_OK;
}


/* name:sample_type:sample_unit:period_type:period_unit[:delta] */

static ngx_int_t
ngx_http_tsdb_pq_set_type(ngx_http_tsdb_pq_ctx_t *ctx, const char *s,
    size_t len)
{
    size_t  i, parts;

    for (i = 0, parts = 1; i < len; i++) {
        parts += (s[i] == ':');
    }

    if ((parts != 5 && parts != 6) || len >= sizeof(ctx->type)
        || len == 0 || s[0] == ':')
    {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "invalid profile type \"%*s\"",
                              (size_t) ngx_min(len, 128), s);
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->type, s, len);
    ctx->type[len] = '\0';
    ctx->type_len = len;

    return NGX_OK;
}


/* A Connect unary request: the body is the bare message. */

static ngx_int_t
ngx_http_tsdb_pq_connect(ngx_http_tsdb_pq_ctx_t *ctx)
{
    int                                 rc;
    u_char                             *body;
    size_t                              len;
    uint8_t                            *out;
    ngx_str_t                           ct;
    ngx_uint_t                          enc;
    const char                         *reason;
    ts_pprof_limits_t                   lim;
    ProtobufCMessage                   *msg;
    ProtobufCAllocator                  a;
    ngx_http_request_t                 *r;
    const ProtobufCMessageDescriptor   *d;

    static const ProtobufCMessageDescriptor  *descs[] = {
        &querier__v1__profile_types_request__descriptor,
        &types__v1__label_names_request__descriptor,
        &types__v1__label_values_request__descriptor,
        &querier__v1__select_series_request__descriptor,
        &querier__v1__select_merge_stacktraces_request__descriptor,
        &querier__v1__select_merge_profile_request__descriptor,
    };

    r = ctx->request;
    d = descs[ctx->ep - NGX_HTTP_TSDB_PQ_C_PROFILE_TYPES];

    ngx_str_null(&ct);

    if (r->headers_in.content_type != NULL) {
        ct = r->headers_in.content_type->value;
    }

    if (ct.len >= 16 && ngx_strncasecmp(ct.data,
                                        (u_char *) "application/json", 16)
                        == 0)
    {
        ctx->json = 1;

    } else if (!(ct.len >= 17
                 && ngx_strncasecmp(ct.data, (u_char *) "application/proto",
                                    17) == 0))
    {
        ctx->json = 1;
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                              "unimplemented", "unsupported content type "
                              "\"%V\", expected application/proto or "
                              "application/json", &ct);
        return NGX_ERROR;
    }

    enc = ngx_http_tsdb_pq_encoded(r);

    if (enc == NGX_HTTP_TSDB_PQ_ENC_OTHER) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                              "unimplemented", "unsupported Content-Encoding,"
                              " expected gzip or identity");
        return NGX_ERROR;
    }

    if (ngx_http_tsdb_body(r, &body, &len) != NGX_OK) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                              "internal", "cannot read the request body");
        return NGX_ERROR;
    }

    ngx_http_tsdb_pool_allocator(r, &a);

    /* gzip bodies with the caps of the Push API: inflated at most 16 MiB */

    if (enc == NGX_HTTP_TSDB_PQ_ENC_GZIP) {
        ts_pprof_limits_default(&lim);

        rc = ts_inflate(body, len, TS_INFLATE_GZIP,
                        lim.max_decompressed * NGX_HTTP_TSDB_PQ_BODY_FACTOR,
                        &a, &out, &len, &reason);

        if (rc == TS_ERR_LIMIT) {
            ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                  "invalid_argument", "gzip request body "
                                  "decompresses beyond the limit");
            return NGX_ERROR;
        }

        if (rc != TS_OK) {
            ngx_http_tsdb_pq_fail(ctx, rc == TS_ERR_NOMEM
                                       ? NGX_HTTP_INTERNAL_SERVER_ERROR
                                       : NGX_HTTP_BAD_REQUEST,
                                  rc == TS_ERR_NOMEM ? "internal"
                                                     : "invalid_argument",
                                  "%s", reason ? reason
                                               : "bad gzip request body");
            return NGX_ERROR;
        }

        body = out;
    }

    if (ctx->json) {
        rc = ts_pjson_decode(d, body, len, &a, &msg, ctx->err,
                             sizeof(ctx->err));
        if (rc != TS_OK) {
            ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                  "invalid_argument", "%s", ctx->err);
            return NGX_ERROR;
        }

    } else {
        msg = protobuf_c_message_unpack(d, &a, len, body);
        if (msg == NULL) {
            ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                  "invalid_argument", "cannot decode %s",
                                  d->name);
            return NGX_ERROR;
        }
    }

    return ngx_http_tsdb_pq_request(ctx, msg);
}


/* the Content-Encoding: none (or identity), gzip, or another */

static ngx_uint_t
ngx_http_tsdb_pq_encoded(ngx_http_request_t *r)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == 16
                && ngx_strncasecmp(h[i].key.data,
                                   (u_char *) "Content-Encoding", 16) == 0)
            {
                if (h[i].value.len == 8
                    && ngx_strncasecmp(h[i].value.data,
                                       (u_char *) "identity", 8) == 0)
                {
                    continue;
                }

                if (h[i].value.len == 4
                    && ngx_strncasecmp(h[i].value.data,
                                       (u_char *) "gzip", 4) == 0)
                {
                    return NGX_HTTP_TSDB_PQ_ENC_GZIP;
                }

                return NGX_HTTP_TSDB_PQ_ENC_OTHER;
            }
        }
    }

    return NGX_HTTP_TSDB_PQ_ENC_NONE;
}


/* the fields of each request message into the ctx */

static ngx_int_t
ngx_http_tsdb_pq_request(ngx_http_tsdb_pq_ctx_t *ctx, ProtobufCMessage *msg)
{
    size_t                                  i, n;
    char                                  **matchers;
    Querier__V1__SelectSeriesRequest       *ss;
    Querier__V1__ProfileTypesRequest       *pt;
    Types__V1__LabelNamesRequest           *ln;
    Types__V1__LabelValuesRequest          *lv;
    Querier__V1__SelectMergeProfileRequest *mp;
    Querier__V1__SelectMergeStacktracesRequest  *ms;

    matchers = NULL;
    n = 0;

    switch (ctx->ep) {

    case NGX_HTTP_TSDB_PQ_C_PROFILE_TYPES:
        pt = (Querier__V1__ProfileTypesRequest *) msg;
        ngx_http_tsdb_pq_range(ctx, pt->start, pt->end);
        return NGX_OK;

    case NGX_HTTP_TSDB_PQ_C_LABEL_NAMES:
        ln = (Types__V1__LabelNamesRequest *) msg;
        ngx_http_tsdb_pq_range(ctx, ln->start, ln->end);
        matchers = ln->matchers;
        n = ln->n_matchers;
        break;

    case NGX_HTTP_TSDB_PQ_C_LABEL_VALUES:
        lv = (Types__V1__LabelValuesRequest *) msg;
        ngx_http_tsdb_pq_range(ctx, lv->start, lv->end);
        ctx->label.data = (u_char *) lv->name;
        ctx->label.len = ngx_strlen(lv->name);
        matchers = lv->matchers;
        n = lv->n_matchers;

        if (ctx->label.len == 0) {
            ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                  "invalid_argument", "name is required");
            return NGX_ERROR;
        }

        break;

    case NGX_HTTP_TSDB_PQ_C_SELECT_SERIES:
        ss = (Querier__V1__SelectSeriesRequest *) msg;
        ngx_http_tsdb_pq_range(ctx, ss->start, ss->end);
        ctx->step = ss->step;
        ctx->average = (ss->aggregation == NGX_HTTP_TSDB_PQ_AVERAGE);
        ctx->group_by = ss->group_by;
        ctx->ngroup_by = ss->n_group_by;
        ctx->limit = ss->limit;

        if (ngx_http_tsdb_pq_unapplied(ctx, ss->stack_trace_selector, 0)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (!(ctx->step > 0) || !isfinite(ctx->step)
            || ((double) ctx->until - (double) ctx->from) / 1e9 / ctx->step
               > NGX_HTTP_TSDB_PQ_MAX_POINTS)
        {
            ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                  "invalid_argument", "step must be > 0 and"
                                  " give at most %d points",
                                  NGX_HTTP_TSDB_PQ_MAX_POINTS);
            return NGX_ERROR;
        }

        if (ngx_http_tsdb_pq_set_type(ctx, ss->profile_typeid,
                                      ngx_strlen(ss->profile_typeid))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_tsdb_pq_selector(ctx, ss->label_selector,
                                         ngx_strlen(ss->label_selector), 0);

    case NGX_HTTP_TSDB_PQ_C_MERGE_STACKS:
        ms = (Querier__V1__SelectMergeStacktracesRequest *) msg;
        ngx_http_tsdb_pq_range(ctx, ms->start, ms->end);

        if (ms->format != NGX_HTTP_TSDB_PQ_UNSPECIFIED
            && ms->format != NGX_HTTP_TSDB_PQ_FLAMEGRAPH)
        {
            ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_NOT_IMPLEMENTED,
                                  "unimplemented", "only the FLAMEGRAPH "
                                  "format is supported");
            return NGX_ERROR;
        }

        return ngx_http_tsdb_pq_merge_req(ctx, ms->max_nodes,
                                          ms->stack_trace_selector,
                                          ms->n_profile_id_selector,
                                          ms->profile_typeid,
                                          ms->label_selector);

    default: /* NGX_HTTP_TSDB_PQ_C_MERGE_PROFILE */
        mp = (Querier__V1__SelectMergeProfileRequest *) msg;
        ngx_http_tsdb_pq_range(ctx, mp->start, mp->end);

        /* as Pyroscope's frontend: 0 is the default (8192), -1 all */

        return ngx_http_tsdb_pq_merge_req(ctx, mp->max_nodes,
                                          mp->stack_trace_selector,
                                          mp->n_profile_id_selector,
                                          mp->profile_typeid,
                                          mp->label_selector);
    }

    if (n == 0) {
        return ngx_http_tsdb_pq_selector(ctx, "", 0, 0);
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_tsdb_pq_selector(ctx, matchers[i],
                                      ngx_strlen(matchers[i]), 0)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Stack trace and profile id selectors narrow what is merged; they are
 * not implemented, and an answer that ignored them would be wrong.
 */

static ngx_int_t
ngx_http_tsdb_pq_unapplied(ngx_http_tsdb_pq_ctx_t *ctx,
    const Types__V1__StackTraceSelector *sts, size_t nids)
{
    if ((sts != NULL && (sts->n_call_site || sts->go_pgo != NULL))
        || nids != 0)
    {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_NOT_IMPLEMENTED, "unimplemented",
                              "stack trace and profile id selectors are not "
                              "supported");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * What SelectMergeStacktraces and SelectMergeProfile share: max_nodes
 * (0 keeps the default), no selectors we would ignore, the profile type
 * and the label selector.
 */

static ngx_int_t
ngx_http_tsdb_pq_merge_req(ngx_http_tsdb_pq_ctx_t *ctx, int64_t max_nodes,
    const Types__V1__StackTraceSelector *sts, size_t nids, const char *type,
    const char *selector)
{
    if (max_nodes > TS_FLAME_NODES_MAX) {
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "max_nodes is at most %d", TS_FLAME_NODES_MAX);
        return NGX_ERROR;
    }

    ctx->max_nodes = max_nodes ? max_nodes : ctx->max_nodes;

    if (ngx_http_tsdb_pq_unapplied(ctx, sts, nids) != NGX_OK
        || ngx_http_tsdb_pq_set_type(ctx, type, ngx_strlen(type)) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_tsdb_pq_selector(ctx, selector, ngx_strlen(selector), 0);
}


/* Connect's ms range, inclusive; 0 for both: everything */

static void
ngx_http_tsdb_pq_range(ngx_http_tsdb_pq_ctx_t *ctx, int64_t start,
    int64_t end)
{
    const int64_t  max = INT64_MAX / 1000000;

    start = ngx_max(ngx_min(start, max), -max);
    end = ngx_max(ngx_min(end, max), -max);

    if (start == 0 && end == 0) {
        ctx->from = INT64_MIN;
        ctx->until = INT64_MAX;
        return;
    }

    ctx->from = start * 1000000;
    ctx->until = end * 1000000;
}


/* In the thread pool, or on the event loop without one. */

static void
ngx_http_tsdb_pq_run(void *data)
{
    ngx_http_tsdb_pq_ctx_t  *ctx = data;

    switch (ctx->ep) {

    case NGX_HTTP_TSDB_PQ_RENDER:
    case NGX_HTTP_TSDB_PQ_PPROF:
    case NGX_HTTP_TSDB_PQ_FOLDED:
    case NGX_HTTP_TSDB_PQ_C_MERGE_STACKS:
    case NGX_HTTP_TSDB_PQ_C_MERGE_PROFILE:
        ngx_http_tsdb_pq_merge_run(ctx);
        break;

    case NGX_HTTP_TSDB_PQ_C_PROFILE_TYPES:
        ngx_http_tsdb_pq_types(ctx);
        break;

    case NGX_HTTP_TSDB_PQ_C_SELECT_SERIES:
        ngx_http_tsdb_pq_select_series(ctx);
        break;

    default:
        ngx_http_tsdb_pq_listing(ctx);
        break;
    }
}


static void
ngx_http_tsdb_pq_merge_run(ngx_http_tsdb_pq_ctx_t *ctx)
{
    if (ngx_http_tsdb_pq_merge(ctx) != NGX_OK) {
        return;
    }

    switch (ctx->ep) {

    case NGX_HTTP_TSDB_PQ_RENDER:
        ngx_http_tsdb_pq_render(ctx);
        break;

    case NGX_HTTP_TSDB_PQ_PPROF:
        ngx_http_tsdb_pq_pprof(ctx);
        break;

    case NGX_HTTP_TSDB_PQ_FOLDED:
        ngx_http_tsdb_pq_folded(ctx);
        break;

    case NGX_HTTP_TSDB_PQ_C_MERGE_STACKS:
        ngx_http_tsdb_pq_stacks(ctx);
        break;

    default:
        ngx_http_tsdb_pq_profile(ctx);
        break;
    }
}


/* the rows selected, streamed into one profile */

static ngx_int_t
ngx_http_tsdb_pq_merge(ngx_http_tsdb_pq_ctx_t *ctx)
{
    int                 rc;
    ts_pprof_limits_t   lim;
    ts_pstore_query_t   q;

    ts_pprof_limits_default(&lim);
    lim.max_decompressed = 0;
    lim.max_samples = 0;
    lim.max_depth = 0;
    lim.max_labels = 0;

    ts_pprof_init(&ctx->prof, NULL, &lim);
    ctx->prof_init = 1;

    ngx_memzero(&q, sizeof(ts_pstore_query_t));
    q.tenant = (char *) ctx->tenant.data;
    q.tenant_len = ctx->tenant.len;
    q.type = ctx->type;
    q.type_len = ctx->type_len;
    q.matchers = ctx->sel[0].m;
    q.nmatchers = ctx->sel[0].n;
    q.from = ctx->from;
    q.until = ctx->until;

    rc = ts_pstore_merge(ctx->zone->pstore, &q, &ctx->prof, &ctx->nprofiles,
                         ctx->err, sizeof(ctx->err));
    if (rc != TS_OK) {
        ngx_http_tsdb_pq_store_error(ctx, rc);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_tsdb_pq_render(ngx_http_tsdb_pq_ctx_t *ctx)
{
    int                   rc;
    char                  st[NGX_HTTP_TSDB_PQ_TYPE_MAX];
    char                 *su, *p;
    ts_flame_meta_t       m;
    ts_flame_tree_t       t;
    ts_flame_graph_t      g;
    ts_flame_timeline_t   tl;

    /* sample type and unit: the 2nd and 3rd parts of the type id */

    p = ngx_strchr(ctx->type, ':');
    ngx_cpystrn((u_char *) st, (u_char *) p + 1, sizeof(st));
    su = ngx_strchr(st, ':');
    *su++ = '\0';
    p = ngx_strchr(su, ':');
    *p = '\0';

    if (ngx_http_tsdb_pq_timeline(ctx) != NGX_OK) {
        return;
    }

    ts_flame_meta(&m, st, su);
    m.spy_name = ctx->spy_mixed ? "" : ctx->spy;

    tl.start = ctx->tl_start;
    tl.step = ctx->tl_step;
    tl.samples = ctx->timeline;
    tl.n = ctx->ntimeline;

    rc = ts_flame_tree(&t, &ctx->prof, 0);
    if (rc == TS_OK) {
        rc = ts_flame_graph(&g, &t, ctx->max_nodes);

        if (rc == TS_OK) {
            rc = ts_flame_json(&g, &m, &tl, &ctx->out);
        }

        ts_flame_graph_free(&g);
    }

    ts_flame_tree_free(&t);

    if (rc != TS_OK) {
        ngx_http_tsdb_pq_store_error(ctx, rc);
        return;
    }

    ctx->status = NGX_HTTP_OK;
    ctx->content_type = "application/json";
}


/*
 * timeline.CalcPointInterval: (until - from) / 1500 rounded to a
 * Grafana interval, 15 s at least; samples[i] sums the rows in
 * [start + i * step, start + (i + 1) * step) s.
 */

static ngx_int_t
ngx_http_tsdb_pq_timeline(ngx_http_tsdb_pq_ctx_t *ctx)
{
    int                 rc;
    int64_t             ms, iv, step;
    ngx_uint_t          i;
    ts_pstore_query_t   q;

    static const int64_t  round[][2] = {
        { 17500, 15000 }, { 25000, 20000 }, { 45000, 30000 },
        { 90000, 60000 }, { 210000, 120000 }, { 450000, 300000 },
        { 750000, 600000 }, { 1050000, 900000 }, { 1500000, 1200000 },
        { 2700000, 1800000 }, { 5400000, 3600000 }, { 9000000, 7200000 },
        { 16200000, 10800000 }, { 32400000, 21600000 },
        { 86400000, 43200000 }, { 172800000, 86400000 },
        { 604800000, 86400000 }, { 1814400000, 604800000 },
        { 3628800000LL - 1, 2592000000LL }, { INT64_MAX, 31536000000LL }
    };

    ms = (ctx->until / 1000000 - ctx->from / 1000000);
    iv = ms / 1500;

    if (iv < 15000) {
        step = 15000;

    } else {
        for (i = 0; iv > round[i][0]; i++) { /* void */ }
        step = round[i][1];
    }

    ctx->tl_step = step / 1000;
    ctx->tl_start = ctx->from / 1000000000;
    ctx->ntimeline = (uint32_t) ((ctx->until / 1000000000 - ctx->tl_start)
                                 / ctx->tl_step);

    ctx->timeline = ngx_http_tsdb_pq_alloc(ctx, (ctx->ntimeline + 1)
                                                * sizeof(uint64_t));
    if (ctx->timeline == NULL) {
        ngx_http_tsdb_pq_store_error(ctx, TS_ERR_NOMEM);
        return NGX_ERROR;
    }

    ngx_memzero(ctx->timeline, (ctx->ntimeline + 1) * sizeof(uint64_t));

    ngx_memzero(&q, sizeof(ts_pstore_query_t));
    q.tenant = (char *) ctx->tenant.data;
    q.tenant_len = ctx->tenant.len;
    q.type = ctx->type;
    q.type_len = ctx->type_len;
    q.matchers = ctx->sel[0].m;
    q.nmatchers = ctx->sel[0].n;
    q.from = ctx->from;
    q.until = ctx->until;

    rc = ts_pstore_totals(ctx->zone->pstore, &q,
                          ngx_http_tsdb_pq_timeline_row, ctx, ctx->err,
                          sizeof(ctx->err));
    if (rc != TS_OK) {
        ngx_http_tsdb_pq_store_error(ctx, rc);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int
ngx_http_tsdb_pq_timeline_row(void *data, const ts_label_t *l, uint32_t n,
    int64_t t, int64_t total)
{
    ngx_http_tsdb_pq_ctx_t  *ctx = data;

    int64_t   slot;
    uint32_t  i;

    for (i = 0; i < n; i++) {
        if (l[i].name_len != 13
            || ngx_strncmp(l[i].name, "pyroscope_spy", 13) != 0)
        {
            continue;
        }

        if (ctx->spy[0] == '\0' && l[i].value_len < sizeof(ctx->spy)) {
            ngx_memcpy(ctx->spy, l[i].value, l[i].value_len);
            ctx->spy[l[i].value_len] = '\0';

        } else if (ngx_strlen(ctx->spy) != l[i].value_len
                   || ngx_strncmp(ctx->spy, l[i].value, l[i].value_len))
        {
            ctx->spy_mixed = 1;
        }
    }

    slot = (t / 1000000000 - ctx->tl_start) / ctx->tl_step;

    if (t >= 0 && slot >= 0 && slot < (int64_t) ctx->ntimeline) {
        ctx->timeline[slot] += (uint64_t) total;
    }

    return 0;
}


static void
ngx_http_tsdb_pq_pprof(ngx_http_tsdb_pq_ctx_t *ctx)
{
    int  rc;

    rc = ts_pprof_encode(&ctx->prof, 6, ngx_http_tsdb_pq_write, &ctx->out);
    if (rc != TS_OK) {
        ngx_http_tsdb_pq_store_error(ctx, rc);
        return;
    }

    ctx->status = NGX_HTTP_OK;
    ctx->content_type = "application/octet-stream";
}


static int
ngx_http_tsdb_pq_write(void *data, const char *p, size_t len)
{
    ts_buf_t  *out = data;

    if (ts_buf_reserve(out, len) != TS_OK) {
        return -1;
    }

    ngx_memcpy(out->p + out->len, p, len);
    out->len += len;

    return 0;
}


static void
ngx_http_tsdb_pq_folded(ngx_http_tsdb_pq_ctx_t *ctx)
{
    int              rc;
    ts_flame_tree_t  t;

    rc = ts_flame_tree(&t, &ctx->prof, 0);
    if (rc == TS_OK) {
        rc = ts_flame_folded(&t, ngx_http_tsdb_pq_write, &ctx->out);
    }

    ts_flame_tree_free(&t);

    if (rc != TS_OK) {
        ngx_http_tsdb_pq_store_error(ctx, rc);
        return;
    }

    ctx->status = NGX_HTTP_OK;
    ctx->content_type = "text/plain";
}


/* SelectMergeStacktraces: the FlameGraph message */

static void
ngx_http_tsdb_pq_stacks(ngx_http_tsdb_pq_ctx_t *ctx)
{
    int                                     rc;
    uint32_t                                i;
    ts_flame_tree_t                         t;
    ts_flame_graph_t                        g;
    Querier__V1__Level                     *lv, **lvp;
    Querier__V1__FlameGraph                 fg = QUERIER__V1__FLAME_GRAPH__INIT;
    Querier__V1__SelectMergeStacktracesResponse  res =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_RESPONSE__INIT;

    rc = ts_flame_tree(&t, &ctx->prof, 0);
    if (rc == TS_OK) {
        rc = ts_flame_graph(&g, &t, ctx->max_nodes);
    }

    if (rc != TS_OK) {
        ts_flame_tree_free(&t);
        ngx_http_tsdb_pq_store_error(ctx, rc);
        return;
    }

    lv = ngx_http_tsdb_pq_alloc(ctx, (g.nlevels + 1)
                                     * sizeof(Querier__V1__Level));
    lvp = ngx_http_tsdb_pq_alloc(ctx, (g.nlevels + 1)
                                      * sizeof(Querier__V1__Level *));

    if (lv == NULL || lvp == NULL) {
        ngx_http_tsdb_pq_store_error(ctx, TS_ERR_NOMEM);
        goto done;
    }

    for (i = 0; i < g.nlevels; i++) {
        querier__v1__level__init(&lv[i]);
        lv[i].values = g.levels[i].v;
        lv[i].n_values = g.levels[i].n;
        lvp[i] = &lv[i];
    }

    fg.names = g.names;
    fg.n_names = g.nnames;
    fg.levels = lvp;
    fg.n_levels = g.nlevels;
    fg.total = g.total;
    fg.max_self = g.max_self;
    res.flamegraph = &fg;

    ngx_http_tsdb_pq_emit(ctx, &res.base);

done:

    ts_flame_graph_free(&g);
    ts_flame_tree_free(&t);
}


/* SelectMergeProfile: the pprof itself is the message */

static void
ngx_http_tsdb_pq_profile(ngx_http_tsdb_pq_ctx_t *ctx)
{
    int                            rc, cut;
    ts_buf_t                       pb;
    ts_pprof_t                     t;
    ts_pprof_limits_t              lim;
    Perftools__Profiles__Profile  *m;

    /* max_nodes: cut as Pyroscope's SelectMergeProfile cuts */

    ts_pprof_limits_default(&lim);
    lim.max_decompressed = 0;
    lim.max_samples = 0;
    lim.max_depth = 0;
    lim.max_labels = 0;

    ts_pprof_init(&t, NULL, &lim);

    rc = ts_flame_truncate(&ctx->prof, ctx->max_nodes, &t, &cut);
    if (rc != TS_OK) {
        ts_pprof_free(&t);
        ngx_http_tsdb_pq_store_error(ctx, rc);
        return;
    }

    if (cut) {
        ts_pprof_free(&ctx->prof);
        ctx->prof = t;

    } else {
        ts_pprof_free(&t);
    }

    if (!ctx->json) {
        rc = ts_pprof_encode(&ctx->prof, 0, ngx_http_tsdb_pq_write,
                             &ctx->out);
        if (rc != TS_OK) {
            ngx_http_tsdb_pq_store_error(ctx, rc);
            return;
        }

        ctx->status = NGX_HTTP_OK;
        ctx->content_type = "application/proto";
        return;
    }

    ngx_memzero(&pb, sizeof(ts_buf_t));

    rc = ts_pprof_encode(&ctx->prof, 0, ngx_http_tsdb_pq_write, &pb);
    if (rc != TS_OK) {
        free(pb.p);
        ngx_http_tsdb_pq_store_error(ctx, rc);
        return;
    }

    m = perftools__profiles__profile__unpack(NULL, pb.len, pb.p);
    free(pb.p);

    if (m == NULL) {
        ngx_http_tsdb_pq_store_error(ctx, TS_ERR_NOMEM);
        return;
    }

    ngx_http_tsdb_pq_emit(ctx, &m->base);
    perftools__profiles__profile__free_unpacked(m, NULL);
}


/* label names or values of the selected series into ctx->set, sorted */

static ngx_int_t
ngx_http_tsdb_pq_collect(ngx_http_tsdb_pq_ctx_t *ctx)
{
    int                      rc;
    ngx_uint_t               s;
    ts_pstore_query_t        q;
    ngx_http_tsdb_pq_walk_t  w;

    w.ctx = ctx;
    w.rc = TS_OK;

    for (s = 0; s < ctx->nsel; s++) {
        ngx_memzero(&q, sizeof(ts_pstore_query_t));
        q.tenant = (char *) ctx->tenant.data;
        q.tenant_len = ctx->tenant.len;
        q.matchers = ctx->sel[s].m;
        q.nmatchers = ctx->sel[s].n;
        q.from = ctx->from;
        q.until = ctx->until;

        rc = ts_pstore_series(ctx->zone->pstore, &q, ngx_http_tsdb_pq_series,
                              &w, ctx->err, sizeof(ctx->err));
        rc = rc ? rc : w.rc;

        if (rc != TS_OK) {
            ngx_http_tsdb_pq_store_error(ctx, rc);
            return NGX_ERROR;
        }
    }

    ngx_http_tsdb_pq_set_sort(&ctx->set);

    return NGX_OK;
}


/* labels, label-values, LabelNames, LabelValues */

static void
ngx_http_tsdb_pq_listing(ngx_http_tsdb_pq_ctx_t *ctx)
{
    uint32_t  i;
    Types__V1__LabelNamesResponse  res = TYPES__V1__LABEL_NAMES_RESPONSE__INIT;

    if (ngx_http_tsdb_pq_collect(ctx) != NGX_OK) {
        return;
    }

    if (ctx->connect) {
        /* LabelNamesResponse and LabelValuesResponse: names = 1 */
        res.names = ctx->set.s;
        res.n_names = ctx->set.n;
        ngx_http_tsdb_pq_emit(ctx, &res.base);
        return;
    }

    /* a JSON array of strings, as Go's json.Encoder writes it */

    if (ngx_http_tsdb_pq_write(&ctx->out, "[", 1) != 0) {
        goto nomem;
    }

    for (i = 0; i < ctx->set.n; i++) {
        if ((i && ngx_http_tsdb_pq_write(&ctx->out, ",", 1) != 0)
            || ts_pqjson_string(ctx->set.s[i], ctx->set.len[i], &ctx->out)
               != TS_OK)
        {
            goto nomem;
        }
    }

    if (ngx_http_tsdb_pq_write(&ctx->out, "]\n", 2) != 0) {
        goto nomem;
    }

    ctx->status = NGX_HTTP_OK;
    ctx->content_type = "application/json";

    return;

nomem:

    ngx_http_tsdb_pq_store_error(ctx, TS_ERR_NOMEM);
}


/* a series with rows in the range adds its names, or one value */

static int
ngx_http_tsdb_pq_series(void *data, const ts_label_t *l, uint32_t n,
    uint64_t rows, uint64_t row_bytes)
{
    ngx_http_tsdb_pq_walk_t  *w = data;

    uint32_t                 i;
    ngx_str_t                want;
    ngx_http_tsdb_pq_ctx_t  *ctx;

    ctx = w->ctx;

    if (rows == 0) {
        return 0;
    }

    want = ctx->label;

    /* legacy label-values?label=__name__: the profile type ids */

    if (!ctx->connect && want.len == 8
        && ngx_strncmp(want.data, "__name__", 8) == 0)
    {
        ngx_str_set(&want, TS_PSTORE_TYPE_LABEL);
    }

    for (i = 0; i < n; i++) {
        if (ctx->ep == NGX_HTTP_TSDB_PQ_LABELS
            || ctx->ep == NGX_HTTP_TSDB_PQ_C_LABEL_NAMES)
        {
            w->rc = ngx_http_tsdb_pq_set_add(&ctx->set, l[i].name,
                                             l[i].name_len);

        } else if (l[i].name_len == want.len
                   && ngx_strncmp(l[i].name, want.data, want.len) == 0)
        {
            w->rc = ngx_http_tsdb_pq_set_add(&ctx->set, l[i].value,
                                             l[i].value_len);
        }

        if (w->rc != TS_OK) {
            return 1;
        }
    }

    return 0;
}


/* ProfileTypes: the __profile_type__ values, split into their parts */

static void
ngx_http_tsdb_pq_types(ngx_http_tsdb_pq_ctx_t *ctx)
{
    char                           *p, *parts[6];
    uint32_t                        i, k;
    Types__V1__ProfileType         *pt, **ptp;
    Querier__V1__ProfileTypesResponse  res =
        QUERIER__V1__PROFILE_TYPES_RESPONSE__INIT;

    ngx_str_set(&ctx->label, TS_PSTORE_TYPE_LABEL);
    ctx->nsel = 1;

    if (ngx_http_tsdb_pq_collect(ctx) != NGX_OK) {
        return;
    }

    pt = ngx_http_tsdb_pq_alloc(ctx, (ctx->set.n + 1)
                                     * sizeof(Types__V1__ProfileType));
    ptp = ngx_http_tsdb_pq_alloc(ctx, (ctx->set.n + 1)
                                      * sizeof(Types__V1__ProfileType *));
    if (pt == NULL || ptp == NULL) {
        ngx_http_tsdb_pq_store_error(ctx, TS_ERR_NOMEM);
        return;
    }

    for (i = 0; i < ctx->set.n; i++) {
        types__v1__profile_type__init(&pt[i]);

        p = ngx_http_tsdb_pq_alloc(ctx, 2 * ctx->set.len[i] + 2);
        if (p == NULL) {
            ngx_http_tsdb_pq_store_error(ctx, TS_ERR_NOMEM);
            return;
        }

        /* the id, then a copy cut into its parts */

        pt[i].id = p;
        ngx_memcpy(p, ctx->set.s[i], ctx->set.len[i] + 1);
        p += ctx->set.len[i] + 1;
        ngx_memcpy(p, ctx->set.s[i], ctx->set.len[i] + 1);

        for (k = 0; k < 6; k++) {
            parts[k] = p;
            p = ngx_strchr(p, ':');

            if (p == NULL) {
                for (k++; k < 6; k++) {
                    parts[k] = "";
                }

                break;
            }

            *p++ = '\0';
        }

        pt[i].name = parts[0];
        pt[i].sample_type = parts[1];
        pt[i].sample_unit = parts[2];
        pt[i].period_type = parts[3];
        pt[i].period_unit = parts[4];
        ptp[i] = &pt[i];
    }

    res.profile_types = ptp;
    res.n_profile_types = ctx->set.n;

    ngx_http_tsdb_pq_emit(ctx, &res.base);
}


/* SelectSeries: per group, per step, sums (or averages) of row totals */

static void
ngx_http_tsdb_pq_select_series(ngx_http_tsdb_pq_ctx_t *ctx)
{
    int                          rc;
    double                       best;
    uint32_t                     i, k, np, ns, top;
    ts_pstore_query_t            q;
    Types__V1__Point            *pt, **ptp;
    Types__V1__Series           *se, **sep;
    Types__V1__LabelPair        *lp, **lpp;
    ngx_http_tsdb_pq_group_t    *g, tmp;
    Querier__V1__SelectSeriesResponse  res =
        QUERIER__V1__SELECT_SERIES_RESPONSE__INIT;

    ctx->npoints = (uint32_t) (((double) ctx->until - (double) ctx->from)
                               / 1e9 / ctx->step) + 1;

    ngx_memzero(&q, sizeof(ts_pstore_query_t));
    q.tenant = (char *) ctx->tenant.data;
    q.tenant_len = ctx->tenant.len;
    q.type = ctx->type;
    q.type_len = ctx->type_len;
    q.matchers = ctx->sel[0].m;
    q.nmatchers = ctx->sel[0].n;
    q.from = ctx->from;
    q.until = ctx->until;

    rc = ts_pstore_totals(ctx->zone->pstore, &q, ngx_http_tsdb_pq_series_row,
                          ctx, ctx->err, sizeof(ctx->err));
    if (rc == TS_OK && ctx->status >= NGX_HTTP_BAD_REQUEST) {
        return;
    }

    if (rc != TS_OK) {
        ngx_http_tsdb_pq_store_error(ctx, rc);
        return;
    }

    /* limit: the groups with the largest totals, selection sort */

    top = ctx->ngroups;

    if (ctx->limit > 0 && (uint64_t) ctx->limit < ctx->ngroups) {
        top = (uint32_t) ctx->limit;

        for (i = 0; i < top; i++) {
            best = ctx->groups[i].total;

            for (k = i + 1; k < ctx->ngroups; k++) {
                if (ctx->groups[k].total > best) {
                    best = ctx->groups[k].total;
                    tmp = ctx->groups[i];
                    ctx->groups[i] = ctx->groups[k];
                    ctx->groups[k] = tmp;
                }
            }
        }
    }

    for (i = 0, np = 0; i < top; i++) {
        for (k = 0; k < ctx->npoints; k++) {
            np += (ctx->groups[i].count[k] != 0);
        }
    }

    se = ngx_http_tsdb_pq_alloc(ctx, (top + 1) * sizeof(Types__V1__Series));
    sep = ngx_http_tsdb_pq_alloc(ctx, (top + 1) * sizeof(void *));
    pt = ngx_http_tsdb_pq_alloc(ctx, (np + 1) * sizeof(Types__V1__Point));
    ptp = ngx_http_tsdb_pq_alloc(ctx, (np + 1) * sizeof(void *));
    lp = ngx_http_tsdb_pq_alloc(ctx, (top * ctx->ngroup_by + 1)
                                     * sizeof(Types__V1__LabelPair));
    lpp = ngx_http_tsdb_pq_alloc(ctx, (top * ctx->ngroup_by + 1)
                                      * sizeof(void *));

    if (se == NULL || sep == NULL || pt == NULL || ptp == NULL || lp == NULL
        || lpp == NULL)
    {
        ngx_http_tsdb_pq_store_error(ctx, TS_ERR_NOMEM);
        return;
    }

    for (i = 0, np = 0, ns = 0; i < top; i++) {
        g = &ctx->groups[i];
        types__v1__series__init(&se[i]);
        sep[i] = &se[i];

        se[i].labels = &lpp[ns];

        for (k = 0; k < g->nlabels; k++) {
            types__v1__label_pair__init(&lp[ns]);
            lp[ns].name = (char *) g->labels[k].name;
            lp[ns].value = (char *) g->labels[k].value;
            lpp[ns] = &lp[ns];
            ns++;
        }

        se[i].n_labels = g->nlabels;
        se[i].points = &ptp[np];

        for (k = 0; k < ctx->npoints; k++) {
            if (g->count[k] == 0) {
                continue;
            }

            types__v1__point__init(&pt[np]);
            pt[np].value = ctx->average ? g->sum[k] / g->count[k]
                                        : g->sum[k];
            pt[np].timestamp = ctx->from / 1000000
                               + (int64_t) (k * ctx->step * 1000);
            ptp[np] = &pt[np];
            np++;
            se[i].n_points++;
        }
    }

    res.series = sep;
    res.n_series = top;

    ngx_http_tsdb_pq_emit(ctx, &res.base);
}


static int
ngx_http_tsdb_pq_series_row(void *data, const ts_label_t *l, uint32_t n,
    int64_t t, int64_t total)
{
    ngx_http_tsdb_pq_ctx_t  *ctx = data;

    u_char                    *p;
    double                     d;
    size_t                     len;
    uint32_t                   i, k, gi, slot;
    ngx_http_tsdb_pq_group_t  *g;
    u_char                     key[TS_PSTORE_LABEL_MAX * 4];

    /* the group's key: the group_by values in order, 0xff between */

    p = key;

    for (k = 0; k < ctx->ngroup_by; k++) {
        len = ngx_strlen(ctx->group_by[k]);

        for (i = 0; i < n; i++) {
            if (l[i].name_len == len
                && ngx_strncmp(l[i].name, ctx->group_by[k], len) == 0)
            {
                break;
            }
        }

        if ((size_t) (key + sizeof(key) - p)
            < (i < n ? l[i].value_len : 0) + 1)
        {
            ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST,
                                  "invalid_argument", "group_by values "
                                  "longer than %uz bytes", sizeof(key));
            return 1;
        }

        if (i < n) {
            p = ngx_cpymem(p, l[i].value, l[i].value_len);
        }

        *p++ = 0xff;
    }

    for (gi = 0; gi < ctx->ngroups; gi++) {
        g = &ctx->groups[gi];

        if (g->key_len == (size_t) (p - key)
            && ngx_memcmp(g->key, key, g->key_len) == 0)
        {
            break;
        }
    }

    if (gi == ctx->ngroups) {
        if (ctx->ngroups == NGX_HTTP_TSDB_PQ_MAX_GROUPS) {
            ngx_http_tsdb_pq_fail(ctx, 429, "resource_exhausted",
                                  "more than %d series",
                                  NGX_HTTP_TSDB_PQ_MAX_GROUPS);
            return 1;
        }

        if (ngx_http_tsdb_pq_group(ctx, key, p - key, l, n) != NGX_OK) {
            return 1;
        }
    }

    g = &ctx->groups[gi];
    d = ((double) t - (double) ctx->from) / 1e9 / ctx->step;

    if (d >= 0 && d < ctx->npoints) {
        slot = (uint32_t) d;
        g->sum[slot] += (double) total;
        g->count[slot]++;
        g->total += (double) total;
    }

    return 0;
}


/* a new group: its key and its group_by labels copied */

static ngx_int_t
ngx_http_tsdb_pq_group(ngx_http_tsdb_pq_ctx_t *ctx, const u_char *key,
    size_t len, const ts_label_t *l, uint32_t n)
{
    char                      *b;
    size_t                     k, size;
    uint32_t                   i;
    ngx_http_tsdb_pq_group_t  *groups, *g;

    if (ctx->ngroups % 64 == 0) {
        groups = realloc(ctx->groups, (ctx->ngroups + 64)
                                      * sizeof(ngx_http_tsdb_pq_group_t));
        if (groups == NULL) {
            goto nomem;
        }

        ctx->groups = groups;
    }

    g = &ctx->groups[ctx->ngroups];
    ngx_memzero(g, sizeof(ngx_http_tsdb_pq_group_t));

    size = len + 1;

    for (i = 0; i < n; i++) {
        size += l[i].name_len + l[i].value_len + 2;
    }

    g->key = ngx_http_tsdb_pq_alloc(ctx, size);
    g->labels = ngx_http_tsdb_pq_alloc(ctx, (ctx->ngroup_by + 1)
                                            * sizeof(ts_label_t));
    g->sum = ngx_http_tsdb_pq_alloc(ctx, ctx->npoints * sizeof(double));
    g->count = ngx_http_tsdb_pq_alloc(ctx, ctx->npoints * sizeof(uint32_t));

    if (g->key == NULL || g->labels == NULL || g->sum == NULL
        || g->count == NULL)
    {
        goto nomem;
    }

    ngx_memzero(g->sum, ctx->npoints * sizeof(double));
    ngx_memzero(g->count, ctx->npoints * sizeof(uint32_t));

    ngx_memcpy(g->key, key, len);
    g->key_len = len;
    b = g->key + len + 1;

    for (k = 0; k < ctx->ngroup_by; k++) {
        for (i = 0; i < n; i++) {
            if (l[i].name_len != ngx_strlen(ctx->group_by[k])
                || ngx_strncmp(l[i].name, ctx->group_by[k], l[i].name_len))
            {
                continue;
            }

            g->labels[g->nlabels].name = b;
            b = (char *) ngx_cpymem(b, l[i].name, l[i].name_len);
            *b++ = '\0';
            g->labels[g->nlabels].value = b;
            b = (char *) ngx_cpymem(b, l[i].value, l[i].value_len);
            *b++ = '\0';
            g->nlabels++;
            break;
        }
    }

    ctx->ngroups++;

    return NGX_OK;

nomem:

    ngx_http_tsdb_pq_store_error(ctx, TS_ERR_NOMEM);

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_tsdb_pq_set_add(ngx_http_tsdb_pq_set_t *set, const char *s,
    size_t len)
{
    char      **ns;
    size_t     *nl;
    uint32_t    j, i, mask, *slot;

    if (set->n * 2 >= set->mask) {
        mask = set->mask ? set->mask * 2 + 1 : 63;
        slot = calloc((size_t) mask + 1, sizeof(uint32_t));
        if (slot == NULL) {
            return TS_ERR_NOMEM;
        }

        for (i = 0; i < set->n; i++) {
            j = (uint32_t) ts_xxh64(set->s[i], set->len[i], 0) & mask;
            while (slot[j]) {
                j = (j + 1) & mask;
            }

            slot[j] = i + 1;
        }

        free(set->slot);
        set->slot = slot;
        set->mask = mask;
    }

    for (j = (uint32_t) ts_xxh64(s, len, 0) & set->mask;
         set->slot[j];
         j = (j + 1) & set->mask)
    {
        i = set->slot[j] - 1;

        if (set->len[i] == len && ngx_memcmp(set->s[i], s, len) == 0) {
            return TS_OK;
        }
    }

    if (set->n == NGX_HTTP_TSDB_PQ_MAX_VALUES) {
        return TS_ERR_LIMIT;
    }

    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 64;

        ns = realloc(set->s, set->cap * sizeof(char *));
        if (ns != NULL) {
            set->s = ns;
        }

        nl = realloc(set->len, set->cap * sizeof(size_t));
        if (nl != NULL) {
            set->len = nl;
        }

        if (ns == NULL || nl == NULL) {
            return TS_ERR_NOMEM;
        }
    }

    set->s[set->n] = malloc(len + 1);
    if (set->s[set->n] == NULL) {
        return TS_ERR_NOMEM;
    }

    ngx_memcpy(set->s[set->n], s, len);
    set->s[set->n][len] = '\0';
    set->len[set->n] = len;
    set->slot[j] = set->n + 1;
    set->n++;

    return TS_OK;
}


static int
ngx_http_tsdb_pq_set_cmp(const void *a, const void *b)
{
    return strcmp(*(char * const *) a, *(char * const *) b);
}


/* sorted bytewise (values hold no NUL: labels are UTF-8 text) */

static void
ngx_http_tsdb_pq_set_sort(ngx_http_tsdb_pq_set_t *set)
{
    uint32_t  i;

    if (set->n == 0) {
        return;
    }

    qsort(set->s, set->n, sizeof(char *), ngx_http_tsdb_pq_set_cmp);

    for (i = 0; i < set->n; i++) {
        set->len[i] = ngx_strlen(set->s[i]);
    }

    free(set->slot);
    set->slot = NULL;
    set->mask = 0;
}


static void
ngx_http_tsdb_pq_set_free(ngx_http_tsdb_pq_set_t *set)
{
    uint32_t  i;

    for (i = 0; i < set->n; i++) {
        free(set->s[i]);
    }

    free(set->s);
    free(set->len);
    free(set->slot);
}


/* memory for the answer's structures, freed with the request */

static void *
ngx_http_tsdb_pq_alloc(ngx_http_tsdb_pq_ctx_t *ctx, size_t size)
{
    void  **mem, *p;

    if (ctx->nmem == ctx->mem_cap) {
        mem = realloc(ctx->mem, (ctx->mem_cap + 64) * sizeof(void *));
        if (mem == NULL) {
            return NULL;
        }

        ctx->mem = mem;
        ctx->mem_cap += 64;
    }

    p = malloc(size ? size : 1);
    if (p != NULL) {
        ctx->mem[ctx->nmem++] = p;
    }

    return p;
}


/* a Connect answer: the message packed, or as protojson */

static void
ngx_http_tsdb_pq_emit(ngx_http_tsdb_pq_ctx_t *ctx, const ProtobufCMessage *m)
{
    size_t  n;

    if (ctx->json) {
        if (ts_pjson_encode(m, &ctx->out) != TS_OK) {
            ngx_http_tsdb_pq_store_error(ctx, TS_ERR_NOMEM);
            return;
        }

        ctx->content_type = "application/json";

    } else {
        n = protobuf_c_message_get_packed_size(m);

        if (ts_buf_reserve(&ctx->out, n + 1) != TS_OK) {
            ngx_http_tsdb_pq_store_error(ctx, TS_ERR_NOMEM);
            return;
        }

        ctx->out.len = protobuf_c_message_pack(m, ctx->out.p);
        ctx->content_type = "application/proto";
    }

    ctx->status = NGX_HTTP_OK;
}


/* a store or build error: the store's reason when there is one */

static void
ngx_http_tsdb_pq_store_error(ngx_http_tsdb_pq_ctx_t *ctx, int rc)
{
    const char  *why;

    why = ctx->err[0] ? ctx->err : ts_strerror(rc);

    switch (rc) {

    case TS_ERR_INVALID:
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_BAD_REQUEST, "invalid_argument",
                              "%s", why);
        break;

    case TS_ERR_LIMIT:
        ngx_http_tsdb_pq_fail(ctx, ctx->connect ? 429 : 422,
                              "resource_exhausted", "result too large: %s",
                              why);
        break;

    case TS_ERR_NOMEM:
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_SERVICE_UNAVAILABLE,
                              "unavailable", "out of memory");
        break;

    default:
        ngx_http_tsdb_pq_fail(ctx, NGX_HTTP_INTERNAL_SERVER_ERROR,
                              "internal", "profile store: %s", why);
        break;
    }
}


/*
 * One line: text for the legacy endpoints, Connect's error JSON for the
 * Connect ones (the status follows the code as Connect maps it).
 */

static void
ngx_http_tsdb_pq_fail(ngx_http_tsdb_pq_ctx_t *ctx, ngx_uint_t status,
    const char *code, const char *fmt, ...)
{
    u_char   msg[NGX_HTTP_TSDB_PQ_ERR], *last, *p;
    va_list  args;

    va_start(args, fmt);
    last = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    for (p = msg; p < last; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }

    ctx->status = status;
    ctx->code = code;
    ctx->out.len = 0;

    if (!ctx->connect) {
        ctx->content_type = "text/plain";

        if (ngx_http_tsdb_pq_write(&ctx->out, (char *) msg, last - msg) != 0
            || ngx_http_tsdb_pq_write(&ctx->out, "\n", 1) != 0)
        {
            ctx->out.len = 0;
        }

        return;
    }

    ctx->content_type = "application/json";

    if (ngx_http_tsdb_pq_write(&ctx->out, "{\"code\":\"", 9) != 0
        || ngx_http_tsdb_pq_write(&ctx->out, code, ngx_strlen(code)) != 0
        || ngx_http_tsdb_pq_write(&ctx->out, "\",\"message\":", 12) != 0
        || ts_pqjson_string((char *) msg, last - msg, &ctx->out) != TS_OK
        || ngx_http_tsdb_pq_write(&ctx->out, "}", 1) != 0)
    {
        ctx->out.len = 0;
    }
}


static void
ngx_http_tsdb_pq_send(void *data)
{
    ngx_http_tsdb_pq_ctx_t  *ctx = data;

    ngx_uint_t           level;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ctx->status == 0 || (ctx->out.len == 0 && ctx->status != NGX_HTTP_OK))
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->status >= NGX_HTTP_BAD_REQUEST) {
        level = (ctx->status >= NGX_HTTP_INTERNAL_SERVER_ERROR)
                ? NGX_LOG_WARN : NGX_LOG_INFO;
        ngx_log_error(level, r->connection->log, 0,
                      "tsdb profile query: %ui %*s", ctx->status,
                      ngx_min(ctx->out.len, 300), ctx->out.p);

        if (ctx->status == NGX_HTTP_SERVICE_UNAVAILABLE
            && ngx_http_tsdb_header(r, "Retry-After", "5") != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    r->headers_out.status = ctx->status;
    r->headers_out.content_length_n = ctx->out.len;
    r->headers_out.content_type.data = (u_char *) ctx->content_type;
    r->headers_out.content_type.len = ngx_strlen(ctx->content_type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    if (ctx->ep == NGX_HTTP_TSDB_PQ_PPROF && ctx->status == NGX_HTTP_OK
        && ngx_http_tsdb_header(r, "Content-Disposition",
                                "attachment; filename=\"profile.pb.gz\"")
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the memory is freed with the request's pool (the cleanup) */

    ngx_http_tsdb_send(r, ctx->out.p, ctx->out.len);
}


static void
ngx_http_tsdb_pq_cleanup(void *data)
{
    ngx_http_tsdb_pq_ctx_t  *ctx = data;

    ngx_uint_t  i;

    for (i = 0; i < ctx->npq; i++) {
        ts_promql_free(ctx->pq[i]);
    }

    if (ctx->prof_init) {
        ts_pprof_free(&ctx->prof);
    }

    for (i = 0; i < ctx->nmem; i++) {
        free(ctx->mem[i]);
    }

    free(ctx->mem);
    free(ctx->groups);
    ngx_http_tsdb_pq_set_free(&ctx->set);
    free(ctx->out.p);
}
