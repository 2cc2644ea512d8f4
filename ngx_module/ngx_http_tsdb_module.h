/*
 * Copyright (C) ngx_tsdb authors
 */

#ifndef NGX_HTTP_TSDB_MODULE_H
#define NGX_HTTP_TSDB_MODULE_H


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ts_metrics.h"


#define NGX_HTTP_TSDB_VERSION  "0.1.0"


/* What a location serves; also the "handler" label of own metrics. */
typedef enum {
    NGX_HTTP_TSDB_NONE = 0,
    NGX_HTTP_TSDB_METRICS,
    NGX_HTTP_TSDB_REMOTE_WRITE,
    NGX_HTTP_TSDB_REMOTE_READ,
    NGX_HTTP_TSDB_QUERY,
    NGX_HTTP_TSDB_PROFILE_INGEST,
    NGX_HTTP_TSDB_PROFILE_QUERY,
    NGX_HTTP_TSDB_NHANDLERS
} ngx_http_tsdb_handler_e;


#define NGX_HTTP_TSDB_CODE_MIN  100
#define NGX_HTTP_TSDB_NCODES    500


/* The own-metrics zone, shared by all processes of a cycle. */
typedef struct {
    ngx_slab_pool_t            *shpool;
    void                       *region;
    size_t                      size;
    ts_metrics_t                metrics;
} ngx_http_tsdb_metrics_zone_t;


typedef struct {
    ngx_shm_zone_t             *metrics_zone;

    /* per process, filled in by init_process and on first use */
    ngx_int_t                   slot;
    int32_t                    *code_series;
    int32_t                     handler_series[NGX_HTTP_TSDB_NHANDLERS][3];
} ngx_http_tsdb_main_conf_t;


typedef struct {
    ngx_http_tsdb_handler_e     handler;
} ngx_http_tsdb_loc_conf_t;


extern ngx_module_t  ngx_http_tsdb_module;


ngx_int_t ngx_http_tsdb_metrics_add_zone(ngx_conf_t *cf,
    ngx_http_tsdb_main_conf_t *mcf);
ngx_int_t ngx_http_tsdb_metrics_init_process(ngx_cycle_t *cycle,
    ngx_http_tsdb_main_conf_t *mcf);
ngx_int_t ngx_http_tsdb_metrics_log_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_tsdb_metrics_begin(ngx_http_request_t *r,
    ngx_http_tsdb_handler_e handler);
ngx_int_t ngx_http_tsdb_metrics_handler(ngx_http_request_t *r);


#endif /* NGX_HTTP_TSDB_MODULE_H */
