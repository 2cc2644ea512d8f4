/*
 * Copyright (C) ngx_tsdb authors
 *
 * tsdb_zone: a head in a shared memory zone, its data directory, and
 * each worker's write-ahead log.
 *
 * The master formats the head when the zone is new and replays every
 * WAL directory under path/wal into it before the workers start, so a
 * restart serves what was acknowledged before it.  On reload nginx hands
 * the same memory to the new cycle and nothing is replayed.  Each worker
 * opens a WAL directory of its own in init_process; a SERIES record is
 * written the first time the worker's WAL refers to a series, so every
 * WAL directory can be replayed on its own.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_tsdb_module.h"
#include "ts_walrec.h"


#define NGX_HTTP_TSDB_ZONE_MIN  (8 * 1024 * 1024)
#define NGX_HTTP_TSDB_EXEMPLARS_MAX  100000000


typedef struct {
    uint32_t                   *map;        /* WAL ref -> head ref */
    size_t                      nmap;
    ngx_http_tsdb_sample_t     *samples;
    size_t                      nsamples;
    size_t                      cap;
    ts_walrec_hist_t           *hists;      /* arrays in blocks */
    size_t                      nhists;
    size_t                      hcap;
    void                       *blocks;     /* their arrays */
    size_t                      used;       /* in the newest block */
    ngx_log_t                  *log;
    ts_head_t                  *head;
    ts_meta_t                  *meta;
    ngx_uint_t                  bad;
    ngx_uint_t                  metadata;
    ngx_http_tsdb_exemplars_t   ex;         /* gathered, then sorted */
} ngx_http_tsdb_replay_t;


static ngx_int_t ngx_http_tsdb_zone_init(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_tsdb_zone_dirs(ngx_http_tsdb_zone_t *z,
    ngx_log_t *log);
static ngx_int_t ngx_http_tsdb_replay(ngx_http_tsdb_zone_t *z,
    ngx_log_t *log);
static int ngx_http_tsdb_replay_record(void *data, const ts_wal_rec_t *rec);
static int ngx_http_tsdb_replay_series(ngx_http_tsdb_replay_t *rp,
    const ts_wal_rec_t *rec);
static int ngx_http_tsdb_replay_meta(void *data, const ts_meta_record_t *r);
static int ngx_http_tsdb_replay_samples(ngx_http_tsdb_replay_t *rp,
    const ts_wal_rec_t *rec);
static void ngx_http_tsdb_replay_report(void *data,
    const ts_wal_report_t *rep);
static int ngx_http_tsdb_replay_hists(ngx_http_tsdb_replay_t *rp,
    const ts_wal_rec_t *rec);
static int ngx_http_tsdb_replay_hist(ngx_http_tsdb_replay_t *rp,
    ts_walrec_reader_t *rd, size_t len);
static int ngx_http_tsdb_sample_cmp(const void *a, const void *b);
static int ngx_http_tsdb_hist_cmp(const void *a, const void *b);
static void ngx_http_tsdb_replay_apply(ngx_http_tsdb_replay_t *rp);
static void ngx_http_tsdb_wal_sync_handler(ngx_event_t *ev);
static char *ngx_http_tsdb_zone_exemplars(ngx_conf_t *cf,
    ngx_http_tsdb_zone_t *z);
static int ngx_http_tsdb_replay_exemplar(void *data,
    const ts_exemplar_record_t *r);
static int ngx_http_tsdb_exemplar_cmp(const void *a, const void *b);
static void ngx_http_tsdb_replay_exemplars(ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_replay_t *rp, ngx_log_t *log);


char *
ngx_http_tsdb_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tsdb_main_conf_t  *mcf = conf;

    u_char                *p;
    ssize_t                size;
    ngx_str_t             *value, name, s, tp;
    ngx_int_t              t;
    ngx_uint_t             i;
    ngx_http_tsdb_zone_t  *z, **zp;

    value = cf->args->elts;

    p = (u_char *) ngx_strchr(value[1].data, ':');
    if (p == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\", expected NAME:SIZE",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    name.data = value[1].data;
    name.len = p - value[1].data;

    s.data = p + 1;
    s.len = value[1].data + value[1].len - s.data;

    size = ngx_parse_size(&s);
    if (name.len == 0 || size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size < NGX_HTTP_TSDB_ZONE_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is too small, at least 8m",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_tsdb_zone_find(mcf, &name) != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate tsdb zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_tsdb_zone_t));
    if (z == NULL) {
        return NGX_CONF_ERROR;
    }

    zp = ngx_array_push(&mcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = z;
    z->name = name;
    z->size = size;
    z->cycle = cf->cycle;
    z->retention = 15 * 86400 * 1000LL;
    z->fsync = NGX_HTTP_TSDB_FSYNC_1S;
    z->flush = 10000;
    z->exemplar_max = NGX_CONF_UNSET_UINT;
    ngx_str_null(&tp);

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "path=", 5) == 0) {
            z->path.data = value[i].data + 5;
            z->path.len = value[i].len - 5;

            if (z->path.len == 0
                || ngx_conf_full_name(cf->cycle, &z->path, 0) != NGX_OK)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "retention=", 10) == 0) {
            s.data = value[i].data + 10;
            s.len = value[i].len - 10;

            t = ngx_parse_time(&s, 1);
            if (t == NGX_ERROR || t == 0) {
                goto invalid;
            }

            z->retention = (int64_t) t * 1000;
            continue;
        }

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            z->flush = ngx_parse_time(&s, 0);
            if (z->flush == (ngx_msec_t) NGX_ERROR || z->flush == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "thread_pool=", 12) == 0) {
            s.data = value[i].data + 12;
            s.len = value[i].len - 12;

            if (s.len == 0) {
                goto invalid;
            }

            tp = s;
            continue;
        }

        if (ngx_strncmp(value[i].data, "max_exemplars=", 14) == 0) {
            t = ngx_atoi(value[i].data + 14, value[i].len - 14);
            if (t == NGX_ERROR || t > NGX_HTTP_TSDB_EXEMPLARS_MAX) {
                goto invalid;
            }

            z->exemplar_max = (ngx_uint_t) t;
            continue;
        }

        if (ngx_strcmp(value[i].data, "wal_fsync=off") == 0) {
            z->fsync = NGX_HTTP_TSDB_FSYNC_OFF;
            continue;
        }

        if (ngx_strcmp(value[i].data, "wal_fsync=1s") == 0) {
            z->fsync = NGX_HTTP_TSDB_FSYNC_1S;
            continue;
        }

        if (ngx_strcmp(value[i].data, "wal_fsync=always") == 0) {
            z->fsync = NGX_HTTP_TSDB_FSYNC_ALWAYS;
            continue;
        }

        goto invalid;
    }

    if (z->path.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "tsdb zone \"%V\" needs path=DIR", &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_tsdb_zone_exemplars(cf, z) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

#if (NGX_THREADS)

    if (tp.len != 3 || ngx_strncmp(tp.data, "off", 3) != 0) {
        z->thread_pool = ngx_thread_pool_add(cf, tp.len ? &tp : NULL);
        if (z->thread_pool == NULL) {
            return NGX_CONF_ERROR;
        }
    }

#endif

    z->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                        &ngx_http_tsdb_module);
    if (z->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (z->shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used by another module",
                           &name);
        return NGX_CONF_ERROR;
    }

    z->shm_zone->init = ngx_http_tsdb_zone_init;
    z->shm_zone->data = z;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\" in \"tsdb_zone\"",
                       &value[i]);
    return NGX_CONF_ERROR;
}


ngx_http_tsdb_zone_t *
ngx_http_tsdb_zone_find(ngx_http_tsdb_main_conf_t *mcf, ngx_str_t *name)
{
    ngx_uint_t              i;
    ngx_http_tsdb_zone_t  **z;

    z = mcf->zones.elts;

    for (i = 0; i < mcf->zones.nelts; i++) {
        if (z[i]->name.len == name->len
            && ngx_strncmp(z[i]->name.data, name->data, name->len) == 0)
        {
            return z[i];
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_tsdb_zone_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_tsdb_zone_t  *oz = data;

    int                    rc;
    size_t                 size, xsize;
    ngx_slab_pool_t       *shpool;
    ngx_http_tsdb_zone_t  *z;

    z = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (oz != NULL) {
        z->region = oz->region;
        z->region_size = oz->region_size;

    } else if (shm_zone->shm.exists) {
        z->region = shpool->data;
        z->region_size = shm_zone->shm.size - shm_zone->shm.size / 32;

    } else {
        /* all but the slab allocator's own bookkeeping */
        size = shm_zone->shm.size - shm_zone->shm.size / 32;
        z->region = ngx_slab_alloc(shpool, size);
        if (z->region == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "tsdb zone \"%V\": cannot allocate the head",
                          &z->name);
            return NGX_ERROR;
        }

        z->region_size = size;
        shpool->data = z->region;
    }

    /* a reload keeps the layout of the memory it takes over */

    if (oz != NULL && oz->exemplar_max != z->exemplar_max) {
        ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                      "tsdb zone \"%V\": max_exemplars=%ui ignored until "
                      "a restart, %ui kept", &z->name, z->exemplar_max,
                      oz->exemplar_max);
        z->exemplar_max = oz->exemplar_max;
    }

    /* the metadata table first, then the exemplars, the head in the rest */

    size = ts_meta_region_size(z->region_size);
    xsize = ts_exemplar_region_size((uint32_t) z->exemplar_max);

    rc = ts_meta_open(&z->meta, z->region, size, ngx_pid,
                      ngx_http_tsdb_pid_alive);
    if (rc == TS_OK) {
        rc = ts_exemplar_open(&z->exemplars, (u_char *) z->region + size,
                              xsize, (uint32_t) z->exemplar_max, ngx_pid,
                              ngx_http_tsdb_pid_alive);
    }

    size += xsize;

    if (rc == TS_OK) {
        rc = ts_head_open(&z->head, (u_char *) z->region + size,
                          z->region_size - size, ngx_pid,
                          ngx_http_tsdb_pid_alive);
    }

    if (rc != TS_OK) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "tsdb zone \"%V\": %s", &z->name, ts_strerror(rc));
        return NGX_ERROR;
    }

    if (ngx_http_tsdb_zone_dirs(z, shm_zone->shm.log) != NGX_OK) {
        return NGX_ERROR;
    }

    if (oz != NULL) {
        return NGX_OK;
    }

    return ngx_http_tsdb_replay(z, shm_zone->shm.log);
}


/* path and path/wal, owned by the workers' user when we are root */

static ngx_int_t
ngx_http_tsdb_zone_dirs(ngx_http_tsdb_zone_t *z, ngx_log_t *log)
{
    u_char            *dirs[2], wal[NGX_MAX_PATH];
    ngx_uint_t         i;
    ngx_file_info_t    fi;
    ngx_core_conf_t   *ccf;

    if (z->path.len + sizeof("/" TS_WAL_DIR) > NGX_MAX_PATH) {
        ngx_log_error(NGX_LOG_EMERG, log, 0, "tsdb zone \"%V\": path too "
                      "long", &z->name);
        return NGX_ERROR;
    }

    ngx_sprintf(wal, "%V/%s%Z", &z->path, TS_WAL_DIR);

    dirs[0] = z->path.data;
    dirs[1] = wal;

    /* ngx_cycle is still the old cycle while zones are initialized */
    ccf = (ngx_core_conf_t *) ngx_get_conf(z->cycle->conf_ctx,
                                           ngx_core_module);

    for (i = 0; i < 2; i++) {
        if (ngx_create_dir(dirs[i], 0755) == NGX_FILE_ERROR
            && ngx_errno != NGX_EEXIST)
        {
            ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                          ngx_create_dir_n " \"%s\" failed", dirs[i]);
            return NGX_ERROR;
        }

        if (geteuid() != 0 || ccf == NULL
            || ccf->user == (ngx_uid_t) NGX_CONF_UNSET_UINT)
        {
            continue;
        }

        if (ngx_file_info(dirs[i], &fi) == NGX_FILE_ERROR) {
            ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                          ngx_file_info_n " \"%s\" failed", dirs[i]);
            return NGX_ERROR;
        }

        if (fi.st_uid != ccf->user
            && chown((char *) dirs[i], ccf->user, -1) == -1)
        {
            ngx_log_error(NGX_LOG_EMERG, log, ngx_errno,
                          "chown(\"%s\", %d) failed", dirs[i], ccf->user);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Samples are gathered from every directory first, then appended in
 * time order per series: workers take turns writing the same series,
 * so one directory alone is not in order.
 */

static ngx_int_t
ngx_http_tsdb_replay(ngx_http_tsdb_zone_t *z, ngx_log_t *log)
{
    int                     rc;
    char                    err[TS_WAL_ERR_MAX];
    void                   *p;
    size_t                  i, n;
    u_char                  path[NGX_MAX_PATH];
    ts_wal_set_t           *set;
    ts_wal_conf_t           wc;
    ts_wal_replay_t         rp;
    ts_wal_replay_stats_t   st;
    ngx_http_tsdb_replay_t  ctx;

    ngx_memzero(&wc, sizeof(ts_wal_conf_t));
    ngx_cpystrn(path, z->path.data, z->path.len + 1);
    wc.path = (char *) path;
    wc.uid = (uid_t) -1;
    wc.gid = (gid_t) -1;

    rc = ts_wal_set_open(&set, &wc, err, sizeof(err));
    if (rc != TS_OK) {
        ngx_log_error(NGX_LOG_EMERG, log, 0, "tsdb zone \"%V\": %s",
                      &z->name, err);
        return NGX_ERROR;
    }

    ngx_memzero(&ctx, sizeof(ngx_http_tsdb_replay_t));
    ngx_memzero(&st, sizeof(ts_wal_replay_stats_t));
    ctx.log = log;
    ctx.head = &z->head;
    ctx.meta = &z->meta;

    rp.record = ngx_http_tsdb_replay_record;
    rp.report = ngx_http_tsdb_replay_report;
    rp.data = &ctx;
    rp.flags = TS_WAL_REPAIR;

    n = ts_wal_set_size(set);

    for (i = 0; i < n; i++) {
        ctx.nmap = 0;

        rc = ts_wal_set_replay(set, i, &rp, &st);
        if (rc != TS_OK) {
            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "tsdb zone \"%V\": replay of wal \"%s\" "
                          "stopped: %s", &z->name,
                          ts_wal_set_name(set, i), ts_strerror(rc));
        }
    }

    ngx_http_tsdb_replay_apply(&ctx);
    ngx_http_tsdb_replay_exemplars(z, &ctx, log);

    if (n) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "tsdb zone \"%V\": replayed %uz wal directories, "
                      "%uL records, %uz samples, %ui metadata, "
                      "%ui not appended", &z->name, n, st.records,
                      ctx.nsamples, ctx.metadata, ctx.bad);
    }

    ngx_free(ctx.map);
    ngx_free(ctx.samples);
    ngx_free(ctx.hists);
    ngx_http_tsdb_exemplars_free(&ctx.ex);

    while (ctx.blocks) {
        p = ctx.blocks;
        ctx.blocks = *(void **) p;
        ngx_free(p);
    }
    ts_wal_set_close(set);

    return NGX_OK;
}


static int
ngx_http_tsdb_replay_record(void *data, const ts_wal_rec_t *rec)
{
    ngx_http_tsdb_replay_t  *rp = data;

    switch (rec->type) {

    case TS_WALREC_SERIES:
        return ngx_http_tsdb_replay_series(rp, rec);

    case TS_WALREC_SAMPLES:
        return ngx_http_tsdb_replay_samples(rp, rec);

    case TS_WALREC_HISTOGRAM_SAMPLES:
        return ngx_http_tsdb_replay_hists(rp, rec);

    /*
     * directories replay one after the other: for a family changed in
     * two of them the last one replayed wins
     */

    case TS_META_WAL_TYPE:
        if (ts_meta_record_decode(rec->payload, rec->len,
                                  ngx_http_tsdb_replay_meta, rp)
            != TS_OK)
        {
            rp->bad++;
        }

        return TS_OK;

    case TS_EXEMPLAR_WAL_TYPE:
        if (ts_exemplar_record_decode(rec->payload, rec->len,
                                      ngx_http_tsdb_replay_exemplar, rp)
            != TS_OK)
        {
            rp->bad++;
        }

        return TS_OK;

    default:
        rp->bad++;
        return TS_OK;
    }
}


static int
ngx_http_tsdb_replay_meta(void *data, const ts_meta_record_t *r)
{
    ngx_http_tsdb_replay_t  *rp = data;

    ts_meta_entry_t  e;

    e = r->e;

    if (ts_head_tenant(rp->head, r->tenant, r->tenant_len, &e.tenant)
        != TS_OK
        || ts_meta_set(rp->meta, &e) < 0)
    {
        rp->bad++;
        return 0;
    }

    rp->metadata++;

    return 0;
}


static int
ngx_http_tsdb_replay_series(ngx_http_tsdb_replay_t *rp,
    const ts_wal_rec_t *rec)
{
    int                  rc;
    void                *p;
    size_t               cap;
    uint32_t             i, tenant, ref;
    ts_label_t           l[TS_HEAD_MAX_LABELS + 1];
    ts_walrec_label_t    wl[TS_HEAD_MAX_LABELS + 1];
    ts_walrec_reader_t   rd;
    ts_walrec_series_t   s;

    if (ts_walrec_series_open(&rd, rec->payload, rec->len, NULL) != TS_OK) {
        rp->bad++;
        return TS_OK;
    }

    while ((rc = ts_walrec_series_next(&rd, &s, wl, TS_HEAD_MAX_LABELS + 1))
           == TS_OK)
    {
        /* the first label is the tenant, the rest the series' labels */

        if (s.nlabels < 2) {
            rp->bad++;
            continue;
        }

        for (i = 1; i < s.nlabels; i++) {
            l[i - 1].name = (const char *) wl[i].name.data;
            l[i - 1].name_len = wl[i].name.len;
            l[i - 1].value = (const char *) wl[i].value.data;
            l[i - 1].value_len = wl[i].value.len;
        }

        if (ts_head_tenant(rp->head, (const char *) wl[0].value.data,
                           wl[0].value.len, &tenant) != TS_OK
            || ts_head_series(rp->head, tenant, l, s.nlabels - 1,
                              ts_labels_hash(l, s.nlabels - 1), 0, &ref)
               < 0)
        {
            rp->bad++;
            continue;
        }

        if (s.ref >= rp->nmap) {
            cap = ngx_max(s.ref + 1, rp->nmap * 2);
            p = ngx_alloc(cap * sizeof(uint32_t), rp->log);
            if (p == NULL) {
                return TS_ERR_NOMEM;
            }

            ngx_memzero(p, cap * sizeof(uint32_t));
            if (rp->map) {
                ngx_memcpy(p, rp->map, rp->nmap * sizeof(uint32_t));
                ngx_free(rp->map);
            }

            rp->map = p;
            rp->nmap = cap;
        }

        rp->map[s.ref] = ref;
    }

    if (rc != TS_ERR_NOTFOUND) {
        rp->bad++;
    }

    return TS_OK;
}


static int
ngx_http_tsdb_replay_samples(ngx_http_tsdb_replay_t *rp,
    const ts_wal_rec_t *rec)
{
    int                      rc;
    void                    *p;
    size_t                   cap;
    ts_walrec_reader_t       rd;
    ts_walrec_sample_t       s;
    ngx_http_tsdb_sample_t  *o;

    if (ts_walrec_samples_open(&rd, rec->payload, rec->len, NULL)
        != TS_OK)
    {
        rp->bad++;
        return TS_OK;
    }

    while ((rc = ts_walrec_samples_next(&rd, &s)) == TS_OK) {
        if (s.ref >= rp->nmap || rp->map[s.ref] == 0) {
            rp->bad++;
            continue;
        }

        if (rp->nsamples == rp->cap) {
            cap = rp->cap ? rp->cap * 2 : 4096;
            p = ngx_alloc(cap * sizeof(ngx_http_tsdb_sample_t), rp->log);
            if (p == NULL) {
                return TS_ERR_NOMEM;
            }

            if (rp->samples) {
                ngx_memcpy(p, rp->samples,
                           rp->nsamples * sizeof(ngx_http_tsdb_sample_t));
                ngx_free(rp->samples);
            }

            rp->samples = p;
            rp->cap = cap;
        }

        o = &rp->samples[rp->nsamples++];
        o->ref = rp->map[s.ref];
        o->t = s.t;
        o->v = s.v;
    }

    if (rc != TS_ERR_NOTFOUND) {
        rp->bad++;
    }

    return TS_OK;
}


/*
 * Histograms keep their spans and buckets in one block per record, 8
 * bytes per payload byte (what ts_walrec_hists_next() may need for all
 * of its entries), chained through their first word and freed after
 * the apply.
 */

static int
ngx_http_tsdb_replay_hists(ngx_http_tsdb_replay_t *rp,
    const ts_wal_rec_t *rec)
{
    int                  rc;
    void               **blk;
    ts_walrec_reader_t   rd;

    if (ts_walrec_hists_open(&rd, rec->payload, rec->len, NULL) != TS_OK) {
        rp->bad++;
        return TS_OK;
    }

    blk = ngx_alloc(sizeof(uint64_t) + 8 * rec->len, rp->log);
    if (blk == NULL) {
        return TS_ERR_NOMEM;
    }

    *blk = rp->blocks;
    rp->blocks = blk;

    while ((rc = ngx_http_tsdb_replay_hist(rp, &rd, rec->len)) == TS_OK) {
        /* void */
    }

    if (rc == TS_ERR_NOMEM) {
        return rc;
    }

    if (rc != TS_ERR_NOTFOUND) {
        rp->bad++;
    }

    return TS_OK;
}


static int
ngx_http_tsdb_replay_hist(ngx_http_tsdb_replay_t *rp, ts_walrec_reader_t *rd,
    size_t len)
{
    int                rc;
    void              *p;
    size_t             cap;
    u_char            *mem;
    ts_walrec_hist_t   h;

    mem = (u_char *) rp->blocks + sizeof(uint64_t) + rp->used;

    rc = ts_walrec_hists_next(rd, &h, mem, 8 * len - rp->used);
    if (rc != TS_OK) {
        rp->used = 0;
        return rc;
    }

    rp->used += 8 * ((size_t) h.h.n_pos_spans + h.h.n_neg_spans
                     + h.h.n_pos + h.h.n_neg + h.h.n_custom);

    if (h.ref >= rp->nmap || rp->map[h.ref] == 0) {
        rp->bad++;
        return TS_OK;
    }

    if (rp->nhists == rp->hcap) {
        cap = rp->hcap ? rp->hcap * 2 : 256;
        p = ngx_alloc(cap * sizeof(ts_walrec_hist_t), rp->log);
        if (p == NULL) {
            return TS_ERR_NOMEM;
        }

        if (rp->hists) {
            ngx_memcpy(p, rp->hists, rp->nhists * sizeof(ts_walrec_hist_t));
            ngx_free(rp->hists);
        }

        rp->hists = p;
        rp->hcap = cap;
    }

    h.ref = rp->map[h.ref];
    rp->hists[rp->nhists++] = h;

    return TS_OK;
}


static void
ngx_http_tsdb_replay_report(void *data, const ts_wal_report_t *rep)
{
    ngx_http_tsdb_replay_t  *rp = data;

    ngx_log_error(NGX_LOG_WARN, rp->log, 0,
                  "tsdb wal: %s in \"%s\" at offset %uL, %uL bytes %s",
                  rep->reason, rep->file, rep->offset, rep->lost,
                  rep->truncated ? "truncated" : "skipped");
}


static int
ngx_http_tsdb_sample_cmp(const void *a, const void *b)
{
    const ngx_http_tsdb_sample_t  *x = a, *y = b;

    if (x->ref != y->ref) {
        return x->ref < y->ref ? -1 : 1;
    }

    return x->t < y->t ? -1 : (x->t > y->t);
}


static int
ngx_http_tsdb_hist_cmp(const void *a, const void *b)
{
    const ts_walrec_hist_t  *x = a, *y = b;

    if (x->ref != y->ref) {
        return x->ref < y->ref ? -1 : 1;
    }

    return x->t < y->t ? -1 : (x->t > y->t);
}


/* floats and histograms of a series go in together, by time */

static void
ngx_http_tsdb_replay_apply(ngx_http_tsdb_replay_t *rp)
{
    int                      rc;
    size_t                   i, j;
    ngx_http_tsdb_sample_t  *s;
    ts_walrec_hist_t        *h;

    ngx_qsort(rp->samples, rp->nsamples, sizeof(ngx_http_tsdb_sample_t),
              ngx_http_tsdb_sample_cmp);
    ngx_qsort(rp->hists, rp->nhists, sizeof(ts_walrec_hist_t),
              ngx_http_tsdb_hist_cmp);

    for (i = 0, j = 0; i < rp->nsamples || j < rp->nhists; /* void */) {
        s = i < rp->nsamples ? &rp->samples[i] : NULL;
        h = j < rp->nhists ? &rp->hists[j] : NULL;

        if (h == NULL
            || (s != NULL
                && (s->ref < h->ref || (s->ref == h->ref && s->t <= h->t))))
        {
            rc = ts_head_append(rp->head, s->ref, s->t, s->v);
            i++;

        } else {
            rc = ts_head_append_hist(rp->head, (uint32_t) h->ref, h->t,
                                     &h->h);
            j++;
        }

        if (rc != TS_OK && rc != TS_HEAD_DUPLICATE) {
            rp->bad++;
        }
    }
}


ngx_int_t
ngx_http_tsdb_zones_init_process(ngx_cycle_t *cycle,
    ngx_http_tsdb_main_conf_t *mcf)
{
    int                    rc;
    char                   err[TS_WAL_ERR_MAX], name[TS_WAL_NAME_MAX];
    u_char                 path[NGX_MAX_PATH];
    ngx_uint_t             i;
    ts_wal_conf_t          wc;
    ts_head_stats_t        st;
    ngx_http_tsdb_zone_t **z;

    z = mcf->zones.elts;

    for (i = 0; i < mcf->zones.nelts; i++) {
        z[i]->head.pid = ngx_pid;
        z[i]->log = cycle->log;

        ts_head_stats(&z[i]->head, &st);
        z[i]->logged_size = (st.series_max + 8) / 8;
        z[i]->logged = ngx_calloc(z[i]->logged_size, cycle->log);
        if (z[i]->logged == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(&wc, sizeof(ts_wal_conf_t));
        ngx_cpystrn(path, z[i]->path.data, z[i]->path.len + 1);
        (void) ts_wal_name(name, sizeof(name), ngx_pid,
                           (uint64_t) ngx_time() << 20 | (ngx_pid & 0xfffff));
        wc.path = (char *) path;
        wc.name = name;
        wc.uid = (uid_t) -1;
        wc.gid = (gid_t) -1;

        rc = ts_wal_open(&z[i]->wal, &wc, err, sizeof(err));
        if (rc != TS_OK) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "tsdb zone \"%V\": wal: %s", &z[i]->name, err);
            return NGX_ERROR;
        }

        if (ngx_http_tsdb_flush_init_process(cycle, z[i]) != NGX_OK
            || ngx_http_tsdb_sync_init_process(cycle, z[i]) != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (z[i]->fsync == NGX_HTTP_TSDB_FSYNC_1S) {
            z[i]->sync_ev.handler = ngx_http_tsdb_wal_sync_handler;
            z[i]->sync_ev.data = z[i];
            z[i]->sync_ev.log = cycle->log;
            z[i]->sync_ev.cancelable = 1;
            ngx_add_timer(&z[i]->sync_ev, 1000);
        }
    }

    return NGX_OK;
}


void
ngx_http_tsdb_zones_exit_process(ngx_http_tsdb_main_conf_t *mcf)
{
    ngx_uint_t             i;
    ngx_http_tsdb_zone_t **z;

    z = mcf->zones.elts;

    for (i = 0; i < mcf->zones.nelts; i++) {
        ngx_http_tsdb_flush_exit_process(z[i]);

        if (z[i]->wal == NULL) {
            continue;
        }

        ngx_http_tsdb_sync_exit_process(z[i]);

        if (z[i]->fsync != NGX_HTTP_TSDB_FSYNC_OFF
            && ts_wal_sync(z[i]->wal) != TS_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, z[i]->log, 0,
                          "tsdb zone \"%V\": wal sync failed: %s",
                          &z[i]->name, ts_wal_errmsg(z[i]->wal));
        }

        (void) ts_wal_close(z[i]->wal);
        z[i]->wal = NULL;
    }
}


static void
ngx_http_tsdb_wal_sync_handler(ngx_event_t *ev)
{
    ngx_http_tsdb_zone_t  *z = ev->data;

    /* in the thread pool if there is one, see ngx_http_tsdb_sync.c */

    ngx_http_tsdb_sync_start(z);

    (void) ngx_http_tsdb_flush_observe(z);

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(ev, 1000);
    }
}



/*
 * max_exemplars=: Prometheus's default of 100000 when it fits in an
 * eighth of the zone, else as many as fit there; an explicit value may
 * take up to a quarter.
 */

static char *
ngx_http_tsdb_zone_exemplars(ngx_conf_t *cf, ngx_http_tsdb_zone_t *z)
{
    size_t      need;
    ngx_uint_t  lo, hi, mid;

    if (z->exemplar_max != NGX_CONF_UNSET_UINT) {
        need = ts_exemplar_region_size((uint32_t) z->exemplar_max);

        if (need > z->size / 4) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "max_exemplars=%ui needs %uz bytes, more "
                               "than a quarter of tsdb zone \"%V\"",
                               z->exemplar_max, need, &z->name);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    /* the most that fit: the size grows with the count */

    lo = 0;
    hi = TS_EXEMPLAR_DEFAULT_MAX;

    while (lo < hi) {
        mid = lo + (hi - lo + 1) / 2;

        if (ts_exemplar_region_size((uint32_t) mid) <= z->size / 8) {
            lo = mid;

        } else {
            hi = mid - 1;
        }
    }

    z->exemplar_max = lo;

    return NGX_CONF_OK;
}


static int
ngx_http_tsdb_replay_exemplar(void *data, const ts_exemplar_record_t *r)
{
    ngx_http_tsdb_replay_t  *rp = data;

    switch (ngx_http_tsdb_exemplars_push(&rp->ex, rp->head, r)) {

    case NGX_OK:
        return 0;

    case NGX_DECLINED:
        rp->bad++;
        return 0;

    default:
        return TS_ERR_NOMEM;
    }
}


/*
 * The series of an exemplar (created if need be: its samples may have
 * gone to the index) and its labels as the ring stores them.
 */

ngx_int_t
ngx_http_tsdb_exemplars_push(ngx_http_tsdb_exemplars_t *ex, ts_head_t *head,
    const ts_exemplar_record_t *r)
{
    void                 *p;
    size_t                len, cap;
    uint8_t               enc[TS_EXEMPLAR_LABELS_BYTES];
    uint32_t              tenant, ref;
    ts_exemplar_entry_t  *e;

    if (r->tenant_len == 0 || r->tenant_len > TS_HEAD_TENANT_LEN
        || r->nseries == 0 || r->nseries > TS_HEAD_MAX_LABELS
        || !ts_labels_sorted(r->series, r->nseries)
        || ts_head_tenant(head, r->tenant, r->tenant_len, &tenant) != TS_OK
        || ts_head_series(head, tenant, r->series, r->nseries,
                          ts_labels_hash(r->series, r->nseries), 0, &ref)
           < 0
        || ts_exemplar_labels_encode(r->labels, r->nlabels, enc, &len)
           != TS_OK)
    {
        return NGX_DECLINED;
    }

    if (ex->n == ex->cap) {
        cap = ex->cap ? ex->cap * 2 : 1024;
        p = ngx_alloc(cap * sizeof(ts_exemplar_entry_t), ngx_cycle->log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (ex->n) {
            ngx_memcpy(p, ex->e, ex->n * sizeof(ts_exemplar_entry_t));
        }

        ngx_free(ex->e);
        ex->e = p;
        ex->cap = cap;
    }

    if (ex->len + len > ex->bcap) {
        cap = ex->bcap ? ex->bcap * 2 : 65536;
        p = ngx_alloc(cap, ngx_cycle->log);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (ex->len) {
            ngx_memcpy(p, ex->bytes, ex->len);
        }

        ngx_free(ex->bytes);
        ex->bytes = p;
        ex->bcap = cap;
    }

    e = &ex->e[ex->n];
    e->seq = ex->n;                     /* keeps the sort stable */
    e->tenant = tenant;
    e->ref = ref;
    e->t = r->t;
    e->v = r->v;
    e->labels = (const uint8_t *) (uintptr_t) ex->len;
    e->labels_len = len;

    if (len) {
        ngx_memcpy(ex->bytes + ex->len, enc, len);
    }

    ex->len += len;
    ex->n++;

    return NGX_OK;
}


/*
 * Into the ring in front of what it holds; sorted by time for the WAL
 * (workers take turns with a series, so a directory alone is not in
 * order), in the given order for the index's copy (the ring's order).
 */

ngx_int_t
ngx_http_tsdb_exemplars_apply(ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_exemplars_t *ex, ngx_uint_t sort, uint64_t seq,
    size_t *added)
{
    size_t  i;

    if (sort) {
        ngx_qsort(ex->e, ex->n, sizeof(ts_exemplar_entry_t),
                  ngx_http_tsdb_exemplar_cmp);
    }

    for (i = 0; i < ex->n; i++) {
        ex->e[i].labels = ex->bytes + (uintptr_t) ex->e[i].labels;
    }

    if (ts_exemplar_prepend(&z->exemplars, ex->e, ex->n, seq, added)
        != TS_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int
ngx_http_tsdb_exemplar_cmp(const void *a, const void *b)
{
    const ts_exemplar_entry_t  *x = a, *y = b;

    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}


void
ngx_http_tsdb_exemplars_free(ngx_http_tsdb_exemplars_t *ex)
{
    ngx_free(ex->e);
    ngx_free(ex->bytes);
    ngx_memzero(ex, sizeof(ngx_http_tsdb_exemplars_t));
}


static void
ngx_http_tsdb_replay_exemplars(ngx_http_tsdb_zone_t *z,
    ngx_http_tsdb_replay_t *rp, ngx_log_t *log)
{
    size_t  added;

    if (rp->ex.n == 0) {
        return;
    }

    if (ngx_http_tsdb_exemplars_apply(z, &rp->ex, 1, 0, &added) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "tsdb zone \"%V\": replay of exemplars failed: out "
                      "of memory", &z->name);
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "tsdb zone \"%V\": replayed %uz exemplars, %uz stored",
                  &z->name, rp->ex.n, added);
}
