/*
 * Copyright (C) ngx_tsdb authors
 */

#ifndef NGX_HTTP_TSDB_MODULE_H
#define NGX_HTTP_TSDB_MODULE_H


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif

#include <protobuf-c/protobuf-c.h>

#include "ts_db.h"
#include "ts_exemplar.h"
#include "ts_head.h"
#include "ts_labels.h"
#include "ts_meta.h"
#include "ts_metrics.h"
#include "ts_pstore.h"
#include "ts_wal.h"


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


#define NGX_HTTP_TSDB_NCOUNTS   4

#define NGX_HTTP_TSDB_CODE_MIN  100
#define NGX_HTTP_TSDB_NCODES    500


/* The own-metrics zone, shared by all processes of a cycle. */
typedef struct {
    ngx_slab_pool_t            *shpool;
    void                       *region;
    size_t                      size;
    ts_metrics_t                metrics;
} ngx_http_tsdb_metrics_zone_t;


#define NGX_HTTP_TSDB_FSYNC_OFF     0
#define NGX_HTTP_TSDB_FSYNC_1S      1
#define NGX_HTTP_TSDB_FSYNC_ALWAYS  2


/*
 * A writer waiting for the WAL to be fsynced up to pos (wal_fsync=always
 * with a thread pool); done is called on the event loop with NGX_OK,
 * or NGX_ERROR if the fsync failed.
 */
/* exemplars read from the WAL or the index; labels as offsets into
   bytes until ngx_http_tsdb_exemplars_apply() */
typedef struct {
    ts_exemplar_entry_t        *e;
    size_t                      n;
    size_t                      cap;
    u_char                     *bytes;
    size_t                      len;
    size_t                      bcap;
} ngx_http_tsdb_exemplars_t;


typedef struct ngx_http_tsdb_sync_wait_s  ngx_http_tsdb_sync_wait_t;

struct ngx_http_tsdb_sync_wait_s {
    ngx_queue_t                 queue;
    ts_wal_pos_t                pos;
    void                      (*done)(ngx_http_tsdb_sync_wait_t *w,
                                      ngx_int_t rc);
    void                       *data;
};


/* One tsdb_zone: configuration, then per-process state. */
typedef struct {
    ngx_str_t                   name;
    size_t                      size;
    ngx_str_t                   path;
    int64_t                     retention;      /* ms */
    ngx_uint_t                  fsync;
    ngx_shm_zone_t             *shm_zone;
    ngx_cycle_t                *cycle;
    void                       *region;
    size_t                      region_size;

    ts_head_t                   head;
    ts_meta_t                   meta;           /* before the head in
                                                   the region */
    ts_exemplar_t               exemplars;      /* after the metadata */
    ngx_uint_t                  exemplar_max;   /* max_exemplars= */
    ts_wal_t                   *wal;
    uint8_t                    *logged;         /* refs with a SERIES
                                                   record in this WAL */
    size_t                      logged_size;
    ngx_event_t                 sync_ev;
    ngx_log_t                  *log;

    ngx_msec_t                  flush;          /* checkpoint interval */
    ts_db_t                    *db;
    uint64_t                    epoch_seen;     /* see ts_head.h */
    uint32_t                    epoch_seg;      /* first segment after */
    ngx_uint_t                  checkpoints;
    ngx_event_t                 flush_ev;
#if (NGX_THREADS)
    ngx_thread_pool_t          *thread_pool;    /* NULL: event loop */
    ngx_thread_task_t          *ckpt_task;
    ngx_thread_task_t          *sync_task;
#endif
    ngx_queue_t                 sync_wait;      /* of sync_wait_t */
    ts_pstore_t                *pstore;         /* profiles, per process */
    unsigned                    ckpt_busy:1;    /* task in flight */
    unsigned                    sync_busy:1;
    unsigned                    profiles:1;     /* a profile location
                                                   uses the zone */
} ngx_http_tsdb_zone_t;


typedef struct {
    uint32_t                    ref;
    int64_t                     t;
    uint64_t                    v;
} ngx_http_tsdb_sample_t;


typedef struct {
    ngx_shm_zone_t             *metrics_zone;
    ngx_array_t                 zones;          /* ngx_http_tsdb_zone_t * */

    /* per process, filled in by init_process and on first use */
    ngx_int_t                   slot;
    int32_t                    *code_series;
    int32_t                     handler_series[NGX_HTTP_TSDB_NHANDLERS][3];
    int32_t                     count_series[NGX_HTTP_TSDB_NCOUNTS];
} ngx_http_tsdb_main_conf_t;


typedef struct {
    ngx_http_tsdb_handler_e     handler;
    ngx_str_t                   zone_name;
    ngx_http_tsdb_zone_t       *zone;
    ngx_http_complex_value_t   *tenant;
    size_t                      max_body_size;
    ngx_uint_t                  max_label_names;
    ngx_uint_t                  max_name_length;
    ngx_uint_t                  max_value_length;
    ngx_uint_t                  max_series_per_tenant;
    ngx_int_t                   query_max_samples;
    ngx_int_t                   query_max_series;
    ngx_msec_t                  query_timeout;
    ts_limits_t                 limits;
} ngx_http_tsdb_loc_conf_t;


/*
 * The module's request ctx, set when a tsdb handler starts: the precise
 * start for the duration histogram, the in-flight gauge to decrement
 * when the request's pool goes, and the handler's own state.
 */
typedef struct {
    ngx_http_tsdb_main_conf_t  *mcf;
    int32_t                     in_flight;
    struct timespec             start;
    void                       *data;
} ngx_http_tsdb_req_t;


extern ngx_module_t  ngx_http_tsdb_module;


ngx_int_t ngx_http_tsdb_metrics_add_zone(ngx_conf_t *cf,
    ngx_http_tsdb_main_conf_t *mcf);
ngx_int_t ngx_http_tsdb_metrics_init_process(ngx_cycle_t *cycle,
    ngx_http_tsdb_main_conf_t *mcf);
ngx_int_t ngx_http_tsdb_metrics_log_handler(ngx_http_request_t *r);
ngx_http_tsdb_req_t *ngx_http_tsdb_metrics_begin(ngx_http_request_t *r,
    ngx_http_tsdb_handler_e handler);
ngx_int_t ngx_http_tsdb_metrics_handler(ngx_http_request_t *r);
void ngx_http_tsdb_metrics_count(ngx_http_request_t *r, ngx_uint_t what,
    uint64_t n);

char *ngx_http_tsdb_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_tsdb_exemplars_push(ngx_http_tsdb_exemplars_t *ex,
    ts_head_t *head, const ts_exemplar_record_t *r);
ngx_int_t ngx_http_tsdb_exemplars_apply(ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_exemplars_t *ex, ngx_uint_t sort, uint64_t seq,
    size_t *added);
void ngx_http_tsdb_exemplars_free(ngx_http_tsdb_exemplars_t *ex);
ngx_http_tsdb_zone_t *ngx_http_tsdb_zone_find(
    ngx_http_tsdb_main_conf_t *mcf, ngx_str_t *name);
ngx_int_t ngx_http_tsdb_zones_init_process(ngx_cycle_t *cycle,
    ngx_http_tsdb_main_conf_t *mcf);
void ngx_http_tsdb_zones_exit_process(ngx_http_tsdb_main_conf_t *mcf);

ngx_int_t ngx_http_tsdb_flush_init_process(ngx_cycle_t *cycle,
    ngx_http_tsdb_zone_t *z);
void ngx_http_tsdb_flush_exit_process(ngx_http_tsdb_zone_t *z);
ngx_int_t ngx_http_tsdb_flush_observe(ngx_http_tsdb_zone_t *z);
ngx_int_t ngx_http_tsdb_flush_floor(ngx_http_tsdb_zone_t *z, uint32_t ref);

ngx_int_t ngx_http_tsdb_sync_init_process(ngx_cycle_t *cycle,
    ngx_http_tsdb_zone_t *z);
void ngx_http_tsdb_sync_exit_process(ngx_http_tsdb_zone_t *z);
ngx_int_t ngx_http_tsdb_sync_async(ngx_http_tsdb_zone_t *z);
void ngx_http_tsdb_sync_start(ngx_http_tsdb_zone_t *z);
void ngx_http_tsdb_sync_wait(ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_sync_wait_t *w);

ngx_int_t ngx_http_tsdb_write_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_tsdb_read_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_tsdb_query_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_tsdb_profile_ingest_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_tsdb_profile_query_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_tsdb_profile_init_process(ngx_cycle_t *cycle,
    ngx_http_tsdb_main_conf_t *mcf);
void ngx_http_tsdb_profile_exit_process(ngx_http_tsdb_main_conf_t *mcf);

typedef void (*ngx_http_tsdb_work_pt)(void *data);

void ngx_http_tsdb_offload(ngx_http_request_t *r, ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_work_pt work, ngx_http_tsdb_work_pt done, void *data);

ngx_int_t ngx_http_tsdb_body(ngx_http_request_t *r, u_char **buf,
    size_t *len);
ngx_int_t ngx_http_tsdb_reply(ngx_http_request_t *r, ngx_uint_t status,
    const char *reason);
void ngx_http_tsdb_send(ngx_http_request_t *r, u_char *p, size_t len);
ngx_int_t ngx_http_tsdb_header(ngx_http_request_t *r, const char *name,
    const char *value);
void ngx_http_tsdb_pool_allocator(ngx_http_request_t *r,
    ProtobufCAllocator *a);

/* the worker's scratch memory kept across requests, see util.c */
#define NGX_HTTP_TSDB_SCRATCH_MIN   (256 * 1024)
#define NGX_HTTP_TSDB_SCRATCH_KEEP  (4 * 1024 * 1024)

void ngx_http_tsdb_scratch_reset(void);
void *ngx_http_tsdb_scratch_alloc(size_t size);
void ngx_http_tsdb_scratch_allocator(ProtobufCAllocator *a);
ngx_int_t ngx_http_tsdb_tenant(ngx_http_request_t *r,
    ngx_http_tsdb_loc_conf_t *lcf, ngx_str_t *tenant);

int ngx_http_tsdb_pid_alive(int64_t pid);


#endif /* NGX_HTTP_TSDB_MODULE_H */
