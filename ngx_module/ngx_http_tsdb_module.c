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
static char *ngx_http_tsdb_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tsdb_set_handler(ngx_conf_t *cf,
    ngx_http_tsdb_loc_conf_t *lcf, ngx_http_tsdb_handler_e handler,
    ngx_http_handler_pt h);
static ngx_int_t ngx_http_tsdb_init_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_tsdb_commands[] = {

    { ngx_string("tsdb_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tsdb_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
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
    NULL                                   /* merge location configuration */
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
    NULL,                                  /* exit process */
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
     *
     * The handler is not merged: like a content handler it belongs to
     * the location that names it, not to nested ones.
     */

    return lcf;
}


static char *
ngx_http_tsdb_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_tsdb_set_handler(cf, conf, NGX_HTTP_TSDB_METRICS,
                                     ngx_http_tsdb_metrics_handler);
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

    return ngx_http_tsdb_metrics_init_process(cycle, mcf);
}
