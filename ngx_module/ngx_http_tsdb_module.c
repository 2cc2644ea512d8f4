/*
 * Copyright (C) ngx_tsdb authors
 *
 * Module definition: directives, configuration, phase handlers and the
 * per-process start-up.  Feature code lives in ngx_http_tsdb_*.c.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tsdb_module.h"


static ngx_int_t ngx_http_tsdb_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_tsdb_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_tsdb_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_tsdb_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_tsdb_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tsdb_zone_location(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_tsdb_set_handler(ngx_conf_t *cf,
    ngx_http_tsdb_loc_conf_t *lcf, ngx_http_tsdb_handler_e handler,
    ngx_http_handler_pt h);
static ngx_int_t ngx_http_tsdb_init_process(ngx_cycle_t *cycle);
static void ngx_http_tsdb_exit_process(ngx_cycle_t *cycle);


/* the handler of a location that serves a zone: tsdb_remote_write ... */
typedef struct {
    ngx_http_tsdb_handler_e     handler;
    ngx_http_handler_pt         h;
} ngx_http_tsdb_location_t;


static ngx_http_tsdb_location_t  ngx_http_tsdb_remote_write = {
    NGX_HTTP_TSDB_REMOTE_WRITE, ngx_http_tsdb_write_handler
};

static ngx_http_tsdb_location_t  ngx_http_tsdb_remote_read = {
    NGX_HTTP_TSDB_REMOTE_READ, ngx_http_tsdb_read_handler
};

static ngx_http_tsdb_location_t  ngx_http_tsdb_query = {
    NGX_HTTP_TSDB_QUERY, ngx_http_tsdb_query_handler
};

static ngx_http_tsdb_location_t  ngx_http_tsdb_profile_ingest = {
    NGX_HTTP_TSDB_PROFILE_INGEST, ngx_http_tsdb_profile_ingest_handler
};

static ngx_http_tsdb_location_t  ngx_http_tsdb_profile_query = {
    NGX_HTTP_TSDB_PROFILE_QUERY, ngx_http_tsdb_profile_query_handler
};


static ngx_command_t  ngx_http_tsdb_commands[] = {

    { ngx_string("tsdb_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tsdb_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tsdb_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_tsdb_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tsdb_remote_write"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tsdb_zone_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_tsdb_remote_write },

    { ngx_string("tsdb_remote_read"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tsdb_zone_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_tsdb_remote_read },

    { ngx_string("tsdb_query"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tsdb_zone_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_tsdb_query },

    { ngx_string("tsdb_profile_ingest"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tsdb_zone_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_tsdb_profile_ingest },

    { ngx_string("tsdb_profile_query"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tsdb_zone_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_tsdb_profile_query },

    { ngx_string("tsdb_query_max_samples"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tsdb_loc_conf_t, query_max_samples),
      NULL },

    { ngx_string("tsdb_query_max_series"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tsdb_loc_conf_t, query_max_series),
      NULL },

    { ngx_string("tsdb_query_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tsdb_loc_conf_t, query_timeout),
      NULL },

    { ngx_string("tsdb_tenant"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tsdb_loc_conf_t, tenant),
      NULL },

    { ngx_string("tsdb_max_body_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tsdb_loc_conf_t, max_body_size),
      NULL },

    { ngx_string("tsdb_max_label_names_per_series"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tsdb_loc_conf_t, max_label_names),
      NULL },

    { ngx_string("tsdb_max_label_name_length"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tsdb_loc_conf_t, max_name_length),
      NULL },

    { ngx_string("tsdb_max_label_value_length"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tsdb_loc_conf_t, max_value_length),
      NULL },

    { ngx_string("tsdb_max_series_per_tenant"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tsdb_loc_conf_t, max_series_per_tenant),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tsdb_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_tsdb_postconfiguration,       /* postconfiguration */

    ngx_http_tsdb_create_main_conf,        /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_tsdb_create_loc_conf,         /* create location configuration */
    ngx_http_tsdb_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_tsdb_module = {
    NGX_MODULE_V1,
    &ngx_http_tsdb_module_ctx,             /* module context */
    ngx_http_tsdb_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_tsdb_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_tsdb_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_tsdb_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;
    ngx_http_tsdb_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tsdb_module);

    if (ngx_http_tsdb_metrics_add_zone(cf, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_tsdb_metrics_log_handler;

    return NGX_OK;
}


static void *
ngx_http_tsdb_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_tsdb_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tsdb_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->metrics_zone = NULL;
     *     mcf->code_series = NULL;
     */

    mcf->slot = -1;

    if (ngx_array_init(&mcf->zones, cf->pool, 2,
                       sizeof(ngx_http_tsdb_zone_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return mcf;
}


static void *
ngx_http_tsdb_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_tsdb_loc_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tsdb_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lcf->handler = NGX_HTTP_TSDB_NONE;
     *     lcf->zone_name = { 0, NULL };
     *     lcf->zone = NULL;
     *     lcf->tenant = NULL;
     *
     * The handler and its zone are not merged: like a content handler
     * they belong to the location that names them, not to nested ones.
     */

    lcf->max_body_size = NGX_CONF_UNSET_SIZE;
    lcf->max_label_names = NGX_CONF_UNSET_UINT;
    lcf->max_name_length = NGX_CONF_UNSET_UINT;
    lcf->max_value_length = NGX_CONF_UNSET_UINT;
    lcf->max_series_per_tenant = NGX_CONF_UNSET_UINT;
    lcf->query_max_samples = NGX_CONF_UNSET;
    lcf->query_max_series = NGX_CONF_UNSET;
    lcf->query_timeout = NGX_CONF_UNSET_MSEC;

    return lcf;
}


static char *
ngx_http_tsdb_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_tsdb_loc_conf_t *prev = parent;
    ngx_http_tsdb_loc_conf_t *conf = child;

    ngx_http_tsdb_main_conf_t         *mcf;
    ngx_http_compile_complex_value_t   ccv;

    static ngx_str_t  tenant = ngx_string("$http_x_scope_orgid");

    ngx_conf_merge_size_value(conf->max_body_size, prev->max_body_size,
                              32 * 1024 * 1024);
    ngx_conf_merge_uint_value(conf->max_label_names, prev->max_label_names,
                              30);
    ngx_conf_merge_uint_value(conf->max_name_length, prev->max_name_length,
                              1024);
    ngx_conf_merge_uint_value(conf->max_value_length,
                              prev->max_value_length, 2048);
    ngx_conf_merge_uint_value(conf->max_series_per_tenant,
                              prev->max_series_per_tenant, 150000);

    /* Prometheus's query.max-samples and query.timeout */
    ngx_conf_merge_value(conf->query_max_samples, prev->query_max_samples,
                         50000000);
    ngx_conf_merge_value(conf->query_max_series, prev->query_max_series,
                         1000000);
    ngx_conf_merge_msec_value(conf->query_timeout, prev->query_timeout,
                              120000);

    if (conf->tenant == NULL) {
        conf->tenant = prev->tenant;
    }

    if (conf->tenant == NULL) {
        conf->tenant = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (conf->tenant == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &tenant;
        ccv.complex_value = conf->tenant;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    ts_limits_default(&conf->limits);
    conf->limits.max_body_size = conf->max_body_size;
    conf->limits.max_label_names_per_series = conf->max_label_names;
    conf->limits.max_label_name_length = conf->max_name_length;
    conf->limits.max_label_value_length = conf->max_value_length;

    if (conf->zone_name.len == 0) {
        return NGX_CONF_OK;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_tsdb_module);

    conf->zone = ngx_http_tsdb_zone_find(mcf, &conf->zone_name);
    if (conf->zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown tsdb zone \"%V\"", &conf->zone_name);
        return NGX_CONF_ERROR;
    }

    if (conf->handler == NGX_HTTP_TSDB_PROFILE_INGEST
        || conf->handler == NGX_HTTP_TSDB_PROFILE_QUERY)
    {
        conf->zone->profiles = 1;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tsdb_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_tsdb_set_handler(cf, conf, NGX_HTTP_TSDB_METRICS,
                                     ngx_http_tsdb_metrics_handler);
}


static char *
ngx_http_tsdb_zone_location(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tsdb_loc_conf_t *lcf = conf;

    ngx_str_t                 *value;
    ngx_http_tsdb_location_t  *loc;

    value = cf->args->elts;
    loc = cmd->post;

    lcf->zone_name = value[1];

    return ngx_http_tsdb_set_handler(cf, conf, loc->handler, loc->h);
}


static char *
ngx_http_tsdb_set_handler(ngx_conf_t *cf, ngx_http_tsdb_loc_conf_t *lcf,
    ngx_http_tsdb_handler_e handler, ngx_http_handler_pt h)
{
    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    value = cf->args->elts;

    if (lcf->handler != NGX_HTTP_TSDB_NONE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" conflicts with another tsdb handler "
                           "in the same location", &value[0]);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" conflicts with another content handler "
                           "in the same location", &value[0]);
        return NGX_CONF_ERROR;
    }

    clcf->handler = h;
    lcf->handler = handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tsdb_init_process(ngx_cycle_t *cycle)
{
    ngx_http_tsdb_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_tsdb_module);
    if (mcf == NULL) {
        return NGX_OK;
    }

    if (ngx_http_tsdb_metrics_init_process(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_tsdb_zones_init_process(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_tsdb_profile_init_process(cycle, mcf);
}


static void
ngx_http_tsdb_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_tsdb_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_tsdb_module);
    if (mcf != NULL) {
        ngx_http_tsdb_profile_exit_process(mcf);
        ngx_http_tsdb_zones_exit_process(mcf);
    }
}


int
ngx_http_tsdb_pid_alive(int64_t pid)
{
    /* EPERM: alive, but another user's (the workers run as "user") */

    return kill((ngx_pid_t) pid, 0) == 0 || ngx_errno == NGX_EPERM;
}
