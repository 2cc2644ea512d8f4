/*
 * Copyright (C) ngx_tsdb authors
 *
 * Profile store: LMDB environment, schema and writes.  Format:
 * docs/format/profiles.md.  Reads (merge, series) are in
 * ts_pstore_read.c.
 *
 * Invariants.  Ids (tenant, and per tenant: string, function, mapping,
 * location, stack node, series) are dense from 1 and never reused; the
 * next id of a kind is one past the last key of that kind in "obj", so
 * there is no counter to get out of step.  Every symbol is written in
 * the same transaction as the first row that refers to it, and a node's
 * parent before the node: a committed row only refers to committed
 * symbols.  Symbols, stacks and series are never deleted; retention
 * (ts_pstore_retention) deletes rows only, so ids stay dense and a
 * series without rows just selects nothing.
 *
 * Threads.  Writes serialize on ps->wlock.  LMDB allows
 * mdb_env_set_mapsize() only while this process has no transaction, so
 * every transaction holds ps->gate shared and a remap takes it
 * exclusively, after the failed write transaction was aborted.  Reads
 * are short synchronous steps, so a remap waits at most one of them.
 *
 * What a crash leaves: the last commit (LMDB); commits are synced
 * (mdb_txn_commit with MDB_NOSYNC off), so an acknowledged put is on
 * disk.  Stale reader slots of dead processes are cleared at open.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "ts_crc32c.h"
#include "ts_pstore_int.h"


#define TS_PS_MAGIC          "TSDBPROF"
#define TS_PS_FORMAT_LEN     28
#define TS_PS_RETRIES        16
#define TS_PS_TIME_RETRIES   1024
#define TS_PS_SPAN_ID        "span_id"
#define TS_PS_PROFILE_ID     "profile_id"


static const ts_ps_dbdef_t  ts_ps_dbs[TS_PS_NDBS] = {
    { "meta", 0 },
    { "tenants", 0 },
    { "sym", MDB_DUPSORT | MDB_DUPFIXED },
    { "obj", 0 },
    { "postings", MDB_DUPSORT | MDB_DUPFIXED },
    { "rows", 0 }
};


typedef struct {
    uint32_t             stack;
    int64_t              value;
} ts_ps_pair_t;


/* one put's state; maps are pprof id - 1 -> stored id, 0: not yet */
typedef struct {
    ts_pstore_t         *ps;
    MDB_txn             *txn;
    const ts_pstore_put_t  *in;
    ts_pstore_stats_t   *st;
    uint32_t             tenant;
    uint32_t             next[128];
    uint32_t            *smap;
    uint32_t            *fmap;
    uint32_t            *mmap;
    uint32_t            *lmap;
    uint32_t            *stack;       /* per sample: leaf node id */
    ts_ps_pair_t        *pairs;

    /* sample label split: samples of group g are order[gstart[g] ..
       gstart[g + 1]), rep[g] is one of them (NONE: no samples) */
    uint32_t            *group;
    uint32_t            *order;
    uint32_t            *gstart;
    uint32_t            *rep;
    uint32_t            *ghash;
    uint32_t            *htab;        /* group + 1; 0: empty */
    uint32_t             hmask;
    uint32_t             ngroups;
    uint8_t             *buf;
    size_t               buf_size;
    char                *err;
    size_t               errlen;
} ts_ps_w_t;


static int ts_ps_mkdir(ts_pstore_t *ps, const char *dir, mode_t mode,
    uid_t uid, gid_t gid);
static int ts_ps_env_open(ts_pstore_t *ps, const ts_pstore_conf_t *conf);
static int ts_ps_schema(ts_pstore_t *ps);
static int ts_ps_schema_open(ts_pstore_t *ps, MDB_txn *txn, int create);
static void ts_ps_format_make(uint8_t *p);
static int ts_ps_format_check(ts_pstore_t *ps, const MDB_val *v);
static int ts_ps_put_txn(ts_ps_w_t *w);
static int ts_ps_tenant_make(ts_ps_w_t *w);
static int ts_ps_next_id(ts_ps_w_t *w, uint8_t kind, uint32_t *id);
static int ts_ps_intern(ts_ps_w_t *w, uint8_t kind, const void *val,
    size_t vlen, uint32_t *id, uint32_t *counter);
static int ts_ps_string(ts_ps_w_t *w, uint32_t i, uint32_t *id);
static int ts_ps_function(ts_ps_w_t *w, uint32_t i, uint32_t *id);
static int ts_ps_mapping(ts_ps_w_t *w, uint32_t i, uint32_t *id);
static int ts_ps_location(ts_ps_w_t *w, uint32_t i, uint32_t *id);
static int ts_ps_node(ts_ps_w_t *w, uint32_t parent, uint32_t loc,
    uint32_t *id);
static int ts_ps_stacks(ts_ps_w_t *w);
static int ts_ps_slabels(ts_ps_w_t *w, uint32_t i, ts_label_t *out,
    uint32_t *n);
static uint32_t ts_ps_slabels_hash(const ts_label_t *l, uint32_t n);
static int ts_ps_groups(ts_ps_w_t *w);
static int ts_ps_group_find(ts_ps_w_t *w, uint32_t i, uint32_t *g);
static int ts_ps_series(ts_ps_w_t *w, uint32_t type, uint32_t g,
    uint32_t *id);
static int ts_ps_postings(ts_ps_w_t *w, uint32_t id, const ts_label_t *l,
    uint32_t n);
static int ts_ps_row(ts_ps_w_t *w, uint32_t series, uint32_t type,
    uint32_t g);
static int ts_ps_pair_cmp(const void *a, const void *b);
static int ts_ps_labels_check(ts_ps_w_t *w);
static int ts_ps_label_check(ts_ps_w_t *w, const ts_label_t *l,
    const char *what);
static int ts_ps_remap(ts_pstore_t *ps, int grow);


void
ts_ps_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list  args;

    if (buf == NULL || len == 0) {
        return;
    }

    va_start(args, fmt);
    (void) vsnprintf(buf, len, fmt, args);
    va_end(args);
}


int
ts_ps_mdb_err(ts_pstore_t *ps, char *err, size_t errlen, int rc,
    const char *call)
{
    ts_ps_fmt(err, errlen, "%s() failed: %s, file \"%s\"", call,
              mdb_strerror(rc), ps->file);

    switch (rc) {
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
        return TS_ERR_FULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        return TS_ERR_CORRUPT;
    case MDB_VERSION_MISMATCH:
        return TS_ERR_VERSION;
    case ENOMEM:
        return TS_ERR_NOMEM;
    case MDB_NOTFOUND:
        return TS_ERR_NOTFOUND;
    default:
        return TS_ERR_IO;
    }
}


int
ts_pstore_open(ts_pstore_t **psp, const ts_pstore_conf_t *conf, char *err,
    size_t errlen)
{
    int           rc, dead;
    ts_pstore_t  *ps;

    *psp = NULL;

    if (conf->path == NULL || conf->path[0] == '\0') {
        ts_ps_fmt(err, errlen, "empty profile store path");
        return TS_ERR_INVALID;
    }

    ps = calloc(1, sizeof(ts_pstore_t));
    if (ps == NULL) {
        ts_ps_fmt(err, errlen, "out of memory");
        return TS_ERR_NOMEM;
    }

    ps->pid = getpid();
    ps->map_size = conf->map_size ? conf->map_size : TS_PSTORE_MAP_SIZE;
    ps->map_max = conf->map_max ? conf->map_max : TS_PSTORE_MAP_MAX;

    if (pthread_mutex_init(&ps->wlock, NULL) != 0) {
        free(ps);
        ts_ps_fmt(err, errlen, "pthread_mutex_init() failed");
        return TS_ERR_NOMEM;
    }

    if (pthread_rwlock_init(&ps->gate, NULL) != 0) {
        (void) pthread_mutex_destroy(&ps->wlock);
        free(ps);
        ts_ps_fmt(err, errlen, "pthread_rwlock_init() failed");
        return TS_ERR_NOMEM;
    }

    ps->locks = 1;

    rc = TS_OK;

    if (snprintf(ps->dir, sizeof(ps->dir), "%s/%s", conf->path,
                 TS_PSTORE_DIR) >= (int) sizeof(ps->dir)
        || snprintf(ps->file, sizeof(ps->file), "%s/data.mdb", ps->dir)
           >= (int) sizeof(ps->file))
    {
        ts_ps_fmt(ps->errmsg, sizeof(ps->errmsg), "path too long");
        rc = TS_ERR_INVALID;
    }

    if (rc == TS_OK) {
        rc = ts_ps_mkdir(ps, ps->dir, 0700, conf->uid, conf->gid);
    }

    if (rc == TS_OK) {
        rc = ts_ps_env_open(ps, conf);
    }

    if (rc == TS_OK) {
        dead = 0;
        rc = mdb_reader_check(ps->env, &dead);
        rc = rc ? ts_ps_mdb_err(ps, ps->errmsg, sizeof(ps->errmsg), rc,
                                "mdb_reader_check")
                : TS_OK;
    }

    if (rc == TS_OK) {
        rc = ts_ps_schema(ps);
    }

    if (rc != TS_OK) {
        ts_ps_fmt(err, errlen, "%s", ps->errmsg);
        ts_pstore_close(ps);
        return rc;
    }

    *psp = ps;

    return TS_OK;
}


static int
ts_ps_mkdir(ts_pstore_t *ps, const char *dir, mode_t mode, uid_t uid,
    gid_t gid)
{
    int          fd;
    struct stat  st;

    if (mkdir(dir, mode) == -1 && errno != EEXIST) {
        ts_ps_fmt(ps->errmsg, sizeof(ps->errmsg), "mkdir() \"%s\" failed:"
                  " %s", dir, strerror(errno));
        return TS_ERR_IO;
    }

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1) {
        ts_ps_fmt(ps->errmsg, sizeof(ps->errmsg), "open() \"%s\" failed:"
                  " %s", dir, strerror(errno));
        return TS_ERR_IO;
    }

    if ((uid != (uid_t) -1 || gid != (gid_t) -1)
        && fstat(fd, &st) == 0
        && ((uid != (uid_t) -1 && st.st_uid != uid)
            || (gid != (gid_t) -1 && st.st_gid != gid))
        && fchown(fd, uid, gid) == -1)
    {
        ts_ps_fmt(ps->errmsg, sizeof(ps->errmsg), "fchown() \"%s\" failed:"
                  " %s", dir, strerror(errno));
        (void) close(fd);
        return TS_ERR_IO;
    }

    (void) close(fd);

    return TS_OK;
}


static int
ts_ps_env_open(ts_pstore_t *ps, const ts_pstore_conf_t *conf)
{
    int          rc;
    unsigned     flags;
    MDB_envinfo  info;

    rc = mdb_env_create(&ps->env);
    if (rc != 0) {
        ps->env = NULL;
        return ts_ps_mdb_err(ps, ps->errmsg, sizeof(ps->errmsg), rc,
                             "mdb_env_create");
    }

    rc = mdb_env_set_maxdbs(ps->env, TS_PS_NDBS + 2);

    if (rc == 0) {
        rc = mdb_env_set_mapsize(ps->env, ps->map_size);
    }

    if (rc != 0) {
        return ts_ps_mdb_err(ps, ps->errmsg, sizeof(ps->errmsg), rc,
                             "mdb_env_set");
    }

    flags = MDB_NOTLS | (conf->nosync ? MDB_NOSYNC : 0);

    rc = mdb_env_open(ps->env, ps->dir, flags, 0600);
    if (rc != 0) {
        return ts_ps_mdb_err(ps, ps->errmsg, sizeof(ps->errmsg), rc,
                             "mdb_env_open");
    }

    /* the files to the workers' user, as ts_db.c does */

    if (conf->uid != (uid_t) -1 || conf->gid != (gid_t) -1) {
        char  path[PATH_MAX + 16];

        (void) snprintf(path, sizeof(path), "%s/lock.mdb", ps->dir);

        if (lchown(ps->file, conf->uid, conf->gid) == -1
            || lchown(path, conf->uid, conf->gid) == -1)
        {
            ts_ps_fmt(ps->errmsg, sizeof(ps->errmsg), "lchown() \"%s\""
                      " failed: %s", ps->dir, strerror(errno));
            return TS_ERR_IO;
        }
    }

    /* adopt a larger map another process has grown */

    rc = mdb_env_set_mapsize(ps->env, 0);

    if (rc == 0 && mdb_env_info(ps->env, &info) == 0) {
        if (info.me_mapsize < ps->map_size) {
            rc = mdb_env_set_mapsize(ps->env, ps->map_size);

        } else {
            ps->map_size = info.me_mapsize;
        }
    }

    return rc ? ts_ps_mdb_err(ps, ps->errmsg, sizeof(ps->errmsg), rc,
                              "mdb_env_set_mapsize")
              : TS_OK;
}


static int
ts_ps_schema(ts_pstore_t *ps)
{
    int       rc;
    MDB_txn  *txn;

    rc = mdb_txn_begin(ps->env, NULL, 0, &txn);
    if (rc != 0) {
        return ts_ps_mdb_err(ps, ps->errmsg, sizeof(ps->errmsg), rc,
                             "mdb_txn_begin");
    }

    rc = ts_ps_schema_open(ps, txn, 1);
    if (rc != TS_OK) {
        mdb_txn_abort(txn);
        return rc;
    }

    rc = mdb_txn_commit(txn);

    return rc ? ts_ps_mdb_err(ps, ps->errmsg, sizeof(ps->errmsg), rc,
                              "mdb_txn_commit")
              : TS_OK;
}


static int
ts_ps_schema_open(ts_pstore_t *ps, MDB_txn *txn, int create)
{
    int       i, rc, fresh;
    uint8_t   fmt[TS_PS_FORMAT_LEN];
    MDB_val   k, v;
    MDB_dbi   main;
    MDB_stat  st;
    unsigned  flags;

    rc = mdb_dbi_open(txn, "meta", 0, &ps->dbi[TS_PS_META]);
    fresh = (rc == MDB_NOTFOUND);

    if (fresh) {
        rc = mdb_dbi_open(txn, NULL, 0, &main);
        if (rc == 0) {
            rc = mdb_stat(txn, main, &st);
        }

        if (rc == 0 && st.ms_entries != 0) {
            ts_ps_fmt(ps->errmsg, sizeof(ps->errmsg), "\"%s\" is not an"
                      " ngx_tsdb profile store", ps->file);
            return TS_ERR_CORRUPT;
        }

    } else if (rc != 0) {
        return ts_ps_mdb_err(ps, ps->errmsg, sizeof(ps->errmsg), rc,
                             "mdb_dbi_open");
    }

    for (i = 0; i < TS_PS_NDBS; i++) {
        rc = mdb_dbi_open(txn, ts_ps_dbs[i].name,
                          ts_ps_dbs[i].flags
                          | ((fresh && create) ? MDB_CREATE : 0),
                          &ps->dbi[i]);
        if (rc != 0) {
            return ts_ps_mdb_err(ps, ps->errmsg, sizeof(ps->errmsg), rc,
                                 "mdb_dbi_open");
        }

        flags = 0;

        if (mdb_dbi_flags(txn, ps->dbi[i], &flags) != 0
            || (flags & (MDB_DUPSORT | MDB_DUPFIXED)) != ts_ps_dbs[i].flags)
        {
            ts_ps_fmt(ps->errmsg, sizeof(ps->errmsg), "sub-database \"%s\""
                      " has flags 0x%x, file \"%s\"", ts_ps_dbs[i].name,
                      flags, ps->file);
            return TS_ERR_CORRUPT;
        }
    }

    k.mv_data = "format";
    k.mv_size = sizeof("format") - 1;

    if (fresh) {
        ts_ps_format_make(fmt);
        v.mv_data = fmt;
        v.mv_size = sizeof(fmt);

        rc = mdb_put(txn, ps->dbi[TS_PS_META], &k, &v, 0);
        return rc ? ts_ps_mdb_err(ps, ps->errmsg, sizeof(ps->errmsg), rc,
                                  "mdb_put")
                  : TS_OK;
    }

    rc = mdb_get(txn, ps->dbi[TS_PS_META], &k, &v);
    if (rc != 0) {
        ts_ps_fmt(ps->errmsg, sizeof(ps->errmsg), "\"%s\" is not an"
                  " ngx_tsdb profile store: no format record", ps->file);
        return TS_ERR_CORRUPT;
    }

    return ts_ps_format_check(ps, &v);
}


static void
ts_ps_format_make(uint8_t *p)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_REALTIME, &ts);

    memcpy(p, TS_PS_MAGIC, 8);
    ts_ps_put32(p + 8, TS_PSTORE_VERSION);
    ts_ps_put32(p + 12, 0);
    ts_ps_put64(p + 16, (uint64_t) ts.tv_sec * 1000
                        + (uint64_t) ts.tv_nsec / 1000000);
    ts_ps_put32(p + 24, ts_crc32c(0, p, 24));
}


static int
ts_ps_format_check(ts_pstore_t *ps, const MDB_val *v)
{
    const uint8_t  *p;

    p = v->mv_data;

    if (v->mv_size != TS_PS_FORMAT_LEN || memcmp(p, TS_PS_MAGIC, 8) != 0
        || ts_ps_get32(p + 24) != ts_crc32c(0, p, 24))
    {
        ts_ps_fmt(ps->errmsg, sizeof(ps->errmsg), "\"%s\" is not an"
                  " ngx_tsdb profile store: bad format record", ps->file);
        return TS_ERR_CORRUPT;
    }

    if (ts_ps_get32(p + 8) != TS_PSTORE_VERSION || ts_ps_get32(p + 12)) {
        ts_ps_fmt(ps->errmsg, sizeof(ps->errmsg), "\"%s\" has profile"
                  " format version %u, this build reads version %u",
                  ps->file, ts_ps_get32(p + 8), TS_PSTORE_VERSION);
        return TS_ERR_VERSION;
    }

    return TS_OK;
}


void
ts_pstore_close(ts_pstore_t *ps)
{
    if (ps == NULL) {
        return;
    }

    if (ps->env != NULL && ps->pid == getpid()) {
        mdb_env_close(ps->env);
    }

    if (ps->locks) {
        (void) pthread_rwlock_destroy(&ps->gate);
        (void) pthread_mutex_destroy(&ps->wlock);
    }

    free(ps);
}


const char *
ts_pstore_dir(const ts_pstore_t *ps)
{
    return ps->dir;
}


int
ts_pstore_used(ts_pstore_t *ps, uint64_t *bytes)
{
    MDB_stat     ms;
    MDB_envinfo  info;

    if (mdb_env_info(ps->env, &info) != 0
        || mdb_env_stat(ps->env, &ms) != 0)
    {
        return TS_ERR_IO;
    }

    *bytes = (uint64_t) (info.me_last_pgno + 1) * ms.ms_psize;

    return TS_OK;
}


/*
 * Begins a transaction with the gate held shared; a map another process
 * grew is adopted first (MDB_MAP_RESIZED).
 */

int
ts_ps_txn_begin(ts_pstore_t *ps, unsigned flags, MDB_txn **txn, char *err,
    size_t errlen)
{
    int  rc, tries;

    if (ps->pid != getpid()) {
        ts_ps_fmt(err, errlen, "profile store used across fork()");
        return TS_ERR_INVALID;
    }

    for (tries = 0; tries < TS_PS_RETRIES; tries++) {
        (void) pthread_rwlock_rdlock(&ps->gate);

        rc = mdb_txn_begin(ps->env, NULL, flags, txn);
        if (rc == 0) {
            return TS_OK;
        }

        (void) pthread_rwlock_unlock(&ps->gate);

        if (rc != MDB_MAP_RESIZED) {
            return ts_ps_mdb_err(ps, err, errlen, rc, "mdb_txn_begin");
        }

        rc = ts_ps_remap(ps, 0);
        if (rc != TS_OK) {
            ts_ps_fmt(err, errlen, "%s", ps->errmsg);
            return rc;
        }
    }

    ts_ps_fmt(err, errlen, "mdb_txn_begin() failed: map resized %d times",
              tries);
    return TS_ERR_AGAIN;
}


void
ts_ps_txn_end(ts_pstore_t *ps, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    (void) pthread_rwlock_unlock(&ps->gate);
}


/* grow: double the map (up to map_max); else adopt another's size */

static int
ts_ps_remap(ts_pstore_t *ps, int grow)
{
    int          rc;
    size_t       size;
    MDB_envinfo  info;

    (void) pthread_rwlock_wrlock(&ps->gate);

    size = 0;

    if (grow) {
        if (mdb_env_info(ps->env, &info) != 0) {
            info.me_mapsize = ps->map_size;
        }

        if (info.me_mapsize >= ps->map_max) {
            (void) pthread_rwlock_unlock(&ps->gate);
            ts_ps_fmt(ps->errmsg, sizeof(ps->errmsg), "profile store"
                      " \"%s\" is full: %zu bytes", ps->file, ps->map_max);
            return TS_ERR_FULL;
        }

        size = info.me_mapsize * 2;
        if (size > ps->map_max) {
            size = ps->map_max;
        }
    }

    rc = mdb_env_set_mapsize(ps->env, size);

    if (rc == 0 && mdb_env_info(ps->env, &info) == 0) {
        ps->map_size = info.me_mapsize;
    }

    (void) pthread_rwlock_unlock(&ps->gate);

    return rc ? ts_ps_mdb_err(ps, ps->errmsg, sizeof(ps->errmsg), rc,
                              "mdb_env_set_mapsize")
              : TS_OK;
}


int
ts_pstore_put(ts_pstore_t *ps, const ts_pstore_put_t *in,
    ts_pstore_stats_t *st, char *err, size_t errlen)
{
    return ts_pstore_putv(ps, in, 1, st, err, errlen);
}


/* per-profile scratch, uint32_t each: see ts_ps_w_t */

static size_t
ts_ps_scratch(const ts_pprof_t *p, uint32_t *hsize)
{
    uint32_t  h;

    for (h = 16; h < 2 * (uint64_t) p->nsamples; h <<= 1) { /* void */ }

    *hsize = h;

    return (size_t) p->nstrings + p->nfunctions + p->nmappings
           + p->nlocations + 6 * (size_t) p->nsamples + 2 + h;
}


static void
ts_ps_scratch_set(ts_ps_w_t *w, const ts_pprof_t *p, uint32_t hsize)
{
    w->fmap = w->smap + p->nstrings;
    w->mmap = w->fmap + p->nfunctions;
    w->lmap = w->mmap + p->nmappings;
    w->stack = w->lmap + p->nlocations;
    w->group = w->stack + p->nsamples;
    w->order = w->group + p->nsamples;
    w->rep = w->order + p->nsamples;
    w->ghash = w->rep + p->nsamples + 1;
    w->gstart = w->ghash + p->nsamples + 1;
    w->htab = w->gstart + p->nsamples + 1;
    w->hmask = hsize - 1;
}


int
ts_pstore_putv(ts_pstore_t *ps, const ts_pstore_put_t *in, uint32_t nin,
    ts_pstore_stats_t *st, char *err, size_t errlen)
{
    int                 rc, tries;
    size_t              n, max;
    uint32_t            k, hsize, nsamples;
    ts_ps_w_t           w;
    ts_pstore_stats_t   dummy;

    memset(&w, 0, sizeof(ts_ps_w_t));
    w.ps = ps;
    w.st = st ? st : &dummy;
    w.err = err;
    w.errlen = errlen;

    rc = TS_OK;
    max = 0;
    nsamples = 0;

    for (k = 0; k < nin; k++) {
        w.in = &in[k];

        rc = ts_ps_labels_check(&w);
        if (rc != TS_OK) {
            return rc;
        }

        n = ts_ps_scratch(in[k].prof, &hsize);
        max = (n > max) ? n : max;
        nsamples = (in[k].prof->nsamples > nsamples) ? in[k].prof->nsamples
                                                     : nsamples;
    }

    w.smap = malloc((max + 1) * sizeof(uint32_t));
    w.pairs = malloc(((size_t) nsamples + 1) * sizeof(ts_ps_pair_t));

    if (w.smap == NULL || w.pairs == NULL) {
        free(w.smap);
        free(w.pairs);
        ts_ps_fmt(err, errlen, "out of memory");
        return TS_ERR_NOMEM;
    }

    (void) pthread_mutex_lock(&ps->wlock);

    for (tries = 0; tries < TS_PS_RETRIES; tries++) {
        memset(w.next, 0, sizeof(w.next));
        memset(w.st, 0, sizeof(ts_pstore_stats_t));

        rc = ts_ps_txn_begin(ps, 0, &w.txn, err, errlen);
        if (rc != TS_OK) {
            break;
        }

        for (k = 0; rc == TS_OK && k < nin; k++) {
            w.in = &in[k];
            n = ts_ps_scratch(in[k].prof, &hsize);
            memset(w.smap, 0, (n + 1) * sizeof(uint32_t));
            ts_ps_scratch_set(&w, in[k].prof, hsize);

            rc = ts_ps_put_txn(&w);
        }

        if (rc == TS_OK) {
            rc = mdb_txn_commit(w.txn);
            (void) pthread_rwlock_unlock(&ps->gate);
            rc = rc ? ts_ps_mdb_err(ps, err, errlen, rc, "mdb_txn_commit")
                    : TS_OK;

        } else {
            ts_ps_txn_end(ps, w.txn);
        }

        if (rc != TS_ERR_FULL) {
            break;
        }

        rc = ts_ps_remap(ps, 1);
        if (rc != TS_OK) {
            ts_ps_fmt(err, errlen, "%s", ps->errmsg);
            break;
        }
    }

    (void) pthread_mutex_unlock(&ps->wlock);

    free(w.smap);
    free(w.pairs);
    free(w.buf);

    return rc;
}


static int
ts_ps_labels_check(ts_ps_w_t *w)
{
    uint32_t                i;
    const ts_pstore_put_t  *in;

    in = w->in;

    if (in->tenant_len == 0 || in->tenant_len > TS_PSTORE_TENANT_MAX) {
        ts_ps_fmt(w->err, w->errlen, "tenant id empty or too long");
        return TS_ERR_INVALID;
    }

    if (!ts_metric_name_valid(in->name, in->name_len)) {
        ts_ps_fmt(w->err, w->errlen, "invalid profile name \"%.*s\"",
                  (int) (in->name_len > 64 ? 64 : in->name_len), in->name);
        return TS_ERR_INVALID;
    }

    if (in->nlabels + 2 > TS_PSTORE_MAX_LABELS) {
        ts_ps_fmt(w->err, w->errlen, "too many labels: %u",
                  in->nlabels);
        return TS_ERR_INVALID;
    }

    for (i = 0; i < in->nlabels; i++) {
        if (ts_ps_label_check(w, &in->labels[i], "label") != TS_OK) {
            return TS_ERR_INVALID;
        }
    }

    return TS_OK;
}


static int
ts_ps_label_check(ts_ps_w_t *w, const ts_label_t *l, const char *what)
{
    if (!ts_label_name_valid(l->name, l->name_len)
        || (l->name_len >= 2 && l->name[0] == '_' && l->name[1] == '_')
        || l->name_len + l->value_len > TS_PSTORE_LABEL_MAX
        || !ts_utf8_valid(l->value, l->value_len)
        || memchr(l->value, '\0', l->value_len) != NULL)
    {
        ts_ps_fmt(w->err, w->errlen, "invalid %s \"%.*s\": a name"
                  " as Prometheus's, not starting with \"__\", name and"
                  " value at most %d bytes of UTF-8", what,
                  (int) (l->name_len > 64 ? 64 : l->name_len), l->name,
                  TS_PSTORE_LABEL_MAX);
        return TS_ERR_INVALID;
    }

    return TS_OK;
}


static int
ts_ps_put_txn(ts_ps_w_t *w)
{
    int                rc;
    uint32_t           i, g, series;
    const ts_pprof_t  *p;

    p = w->in->prof;

    rc = ts_ps_tenant_make(w);
    if (rc != TS_OK) {
        return rc;
    }

    rc = ts_ps_groups(w);
    if (rc != TS_OK) {
        return rc;
    }

    rc = ts_ps_stacks(w);
    if (rc != TS_OK) {
        return rc;
    }

    for (g = 0; g < w->ngroups; g++) {
        for (i = 0; i < p->ntypes; i++) {
            rc = ts_ps_series(w, i, g, &series);
            if (rc == TS_OK) {
                rc = ts_ps_row(w, series, i, g);
            }

            if (rc != TS_OK) {
                return rc;
            }
        }
    }

    return TS_OK;
}


int
ts_ps_tenant_get(ts_pstore_t *ps, MDB_txn *txn, const char *name,
    size_t len, uint32_t *id)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = (void *) name;
    k.mv_size = len;

    rc = mdb_get(txn, ps->dbi[TS_PS_TENANTS], &k, &v);
    if (rc == MDB_NOTFOUND) {
        return TS_ERR_NOTFOUND;
    }

    if (rc != 0 || v.mv_size != 4) {
        return rc ? TS_ERR_IO : TS_ERR_CORRUPT;
    }

    *id = ts_ps_get32(v.mv_data);

    return TS_OK;
}


static int
ts_ps_tenant_make(ts_ps_w_t *w)
{
    int        rc;
    uint8_t    b[4];
    MDB_val    k, v;
    MDB_stat   st;

    rc = ts_ps_tenant_get(w->ps, w->txn, w->in->tenant, w->in->tenant_len,
                          &w->tenant);
    if (rc != TS_ERR_NOTFOUND) {
        return rc;
    }

    rc = mdb_stat(w->txn, w->ps->dbi[TS_PS_TENANTS], &st);
    if (rc != 0) {
        return ts_ps_mdb_err(w->ps, w->err, w->errlen, rc, "mdb_stat");
    }

    w->tenant = (uint32_t) st.ms_entries + 1;
    ts_ps_put32(b, w->tenant);

    k.mv_data = (void *) w->in->tenant;
    k.mv_size = w->in->tenant_len;
    v.mv_data = b;
    v.mv_size = 4;

    rc = mdb_put(w->txn, w->ps->dbi[TS_PS_TENANTS], &k, &v, 0);

    return rc ? ts_ps_mdb_err(w->ps, w->err, w->errlen, rc, "mdb_put")
              : TS_OK;
}


/* one past the last id of this tenant and kind in "obj" */

static int
ts_ps_next_id(ts_ps_w_t *w, uint8_t kind, uint32_t *id)
{
    int          rc;
    uint8_t      key[TS_PS_OBJ_KEY];
    MDB_val      k, v;
    MDB_cursor  *cur;

    if (w->next[kind] != 0) {
        *id = w->next[kind]++;
        return TS_OK;
    }

    rc = mdb_cursor_open(w->txn, w->ps->dbi[TS_PS_OBJ], &cur);
    if (rc != 0) {
        return ts_ps_mdb_err(w->ps, w->err, w->errlen, rc,
                             "mdb_cursor_open");
    }

    ts_ps_obj_key(key, w->tenant, kind, UINT32_MAX);
    k.mv_data = key;
    k.mv_size = TS_PS_OBJ_KEY;

    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rc = (rc == 0) ? mdb_cursor_get(cur, &k, &v, MDB_PREV)
                   : mdb_cursor_get(cur, &k, &v, MDB_LAST);

    w->next[kind] = 1;

    if (rc == 0 && k.mv_size == TS_PS_OBJ_KEY
        && memcmp(k.mv_data, key, 5) == 0)
    {
        w->next[kind] = ts_ps_get32((uint8_t *) k.mv_data + 5) + 1;

    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_cursor_close(cur);
        return ts_ps_mdb_err(w->ps, w->err, w->errlen, rc,
                             "mdb_cursor_get");
    }

    mdb_cursor_close(cur);

    *id = w->next[kind]++;

    return TS_OK;
}


/*
 * Finds val among the objects of kind by its hash (index "sym", one
 * duplicate id per object with that hash) or adds it.
 */

static int
ts_ps_intern(ts_ps_w_t *w, uint8_t kind, const void *val, size_t vlen,
    uint32_t *id, uint32_t *counter)
{
    int          rc;
    uint8_t      skey[TS_PS_SYM_KEY], okey[TS_PS_OBJ_KEY], b[4];
    MDB_val      k, v, ok, ov;
    MDB_cursor  *cur;

    ts_ps_sym_key(skey, w->tenant, kind, ts_xxh64(val, vlen, kind));

    k.mv_data = skey;
    k.mv_size = TS_PS_SYM_KEY;

    rc = mdb_cursor_open(w->txn, w->ps->dbi[TS_PS_SYM], &cur);
    if (rc != 0) {
        return ts_ps_mdb_err(w->ps, w->err, w->errlen, rc,
                             "mdb_cursor_open");
    }

    rc = mdb_cursor_get(cur, &k, &v, MDB_SET);

    while (rc == 0) {
        *id = ts_ps_get32(v.mv_data);

        ts_ps_obj_key(okey, w->tenant, kind, *id);
        ok.mv_data = okey;
        ok.mv_size = TS_PS_OBJ_KEY;

        rc = mdb_get(w->txn, w->ps->dbi[TS_PS_OBJ], &ok, &ov);
        if (rc == 0 && ov.mv_size == vlen
            && memcmp(ov.mv_data, val, vlen) == 0)
        {
            mdb_cursor_close(cur);
            return TS_OK;
        }

        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_DUP);
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        return ts_ps_mdb_err(w->ps, w->err, w->errlen, rc, "mdb_get");
    }

    rc = ts_ps_next_id(w, kind, id);
    if (rc != TS_OK) {
        return rc;
    }

    ts_ps_put32(b, *id);
    v.mv_data = b;
    v.mv_size = 4;

    rc = mdb_put(w->txn, w->ps->dbi[TS_PS_SYM], &k, &v, 0);

    if (rc == 0) {
        ts_ps_obj_key(okey, w->tenant, kind, *id);
        ok.mv_data = okey;
        ok.mv_size = TS_PS_OBJ_KEY;
        ov.mv_data = (void *) val;
        ov.mv_size = vlen;

        rc = mdb_put(w->txn, w->ps->dbi[TS_PS_OBJ], &ok, &ov,
                     MDB_NOOVERWRITE);
    }

    if (rc != 0) {
        return ts_ps_mdb_err(w->ps, w->err, w->errlen, rc, "mdb_put");
    }

    (*counter)++;
    w->st->symbol_bytes += TS_PS_SYM_KEY + 4 + TS_PS_OBJ_KEY + vlen;

    return TS_OK;
}


static int
ts_ps_string(ts_ps_w_t *w, uint32_t i, uint32_t *id)
{
    int                    rc;
    const ts_pprof_str_t  *s;

    if (i == 0) {
        *id = 0;                    /* "" is id 0, never stored */
        return TS_OK;
    }

    if (w->smap[i] != 0) {
        *id = w->smap[i];
        return TS_OK;
    }

    s = ts_pprof_string(w->in->prof, i);

    rc = ts_ps_intern(w, TS_PS_STRING, s->data, s->len, id,
                      &w->st->new_strings);
    if (rc == TS_OK) {
        w->smap[i] = *id;
    }

    return rc;
}


static int
ts_ps_function(ts_ps_w_t *w, uint32_t i, uint32_t *id)
{
    int                         rc;
    uint8_t                     b[TS_PS_FUNC_LEN];
    uint32_t                    name, sys, file;
    const ts_pprof_function_t  *f;

    if (w->fmap[i - 1] != 0) {
        *id = w->fmap[i - 1];
        return TS_OK;
    }

    f = &w->in->prof->functions[i - 1];
    sys = 0;
    file = 0;

    rc = ts_ps_string(w, f->name, &name);
    if (rc == TS_OK) {
        rc = ts_ps_string(w, f->system_name, &sys);
    }

    if (rc == TS_OK) {
        rc = ts_ps_string(w, f->filename, &file);
    }

    if (rc != TS_OK) {
        return rc;
    }

    ts_ps_put32(b, name);
    ts_ps_put32(b + 4, sys);
    ts_ps_put32(b + 8, file);
    ts_ps_put64(b + 12, (uint64_t) f->start_line);

    rc = ts_ps_intern(w, TS_PS_FUNCTION, b, sizeof(b), id,
                      &w->st->new_functions);
    if (rc == TS_OK) {
        w->fmap[i - 1] = *id;
    }

    return rc;
}


/*
 * A mapping's identity is Merge's key: size rounded up to 4 KiB, file
 * offset, and the build id or, without one, the file name.  Its start
 * and limit are those of the first profile that brought it; locations
 * store addresses relative to the start, so ASLR does not matter.
 */

static int
ts_ps_mapping(ts_ps_w_t *w, uint32_t i, uint32_t *id)
{
    int                        rc;
    uint8_t                    b[TS_PS_MAP_LEN];
    uint32_t                   file, build;
    uint64_t                   size;
    const ts_pprof_mapping_t  *m;

    if (w->mmap[i - 1] != 0) {
        *id = w->mmap[i - 1];
        return TS_OK;
    }

    m = &w->in->prof->mappings[i - 1];
    build = 0;

    rc = ts_ps_string(w, m->file, &file);
    if (rc == TS_OK) {
        rc = ts_ps_string(w, m->build_id, &build);
    }

    if (rc != TS_OK) {
        return rc;
    }

    size = m->limit - m->start;
    size = (size + 4095) & ~(uint64_t) 4095;

    memset(b, 0, sizeof(b));
    ts_ps_put64(b, size);
    ts_ps_put64(b + 8, m->offset);
    ts_ps_put32(b + 16, build);
    ts_ps_put32(b + 20, build ? 0 : file);

    /* not part of the identity, but stored with the first one */
    ts_ps_put32(b + 24, file);
    ts_ps_put64(b + 28, m->start);
    ts_ps_put64(b + 36, m->limit);
    b[44] = (uint8_t) (m->has_functions | m->has_filenames << 1
                       | m->has_line_numbers << 2
                       | m->has_inline_frames << 3);

    rc = ts_ps_intern(w, TS_PS_MAPPING, b, sizeof(b), id,
                      &w->st->new_mappings);
    if (rc == TS_OK) {
        w->mmap[i - 1] = *id;
    }

    return rc;
}


static int
ts_ps_location(ts_ps_w_t *w, uint32_t i, uint32_t *id)
{
    int                         rc;
    size_t                      len;
    uint8_t                    *b;
    uint32_t                    j, mapping, fid;
    uint64_t                    addr;
    const ts_pprof_line_t      *ln;
    const ts_pprof_location_t  *loc;

    if (w->lmap[i - 1] != 0) {
        *id = w->lmap[i - 1];
        return TS_OK;
    }

    loc = &w->in->prof->locations[i - 1];

    len = TS_PS_LOC_HDR + (size_t) loc->nlines * TS_PS_LINE_LEN;

    if (len > w->buf_size) {
        b = realloc(w->buf, len);
        if (b == NULL) {
            ts_ps_fmt(w->err, w->errlen, "out of memory");
            return TS_ERR_NOMEM;
        }

        w->buf = b;
        w->buf_size = len;
    }

    b = w->buf;
    mapping = 0;
    addr = loc->address;

    if (loc->mapping != 0) {
        rc = ts_ps_mapping(w, loc->mapping, &mapping);
        if (rc != TS_OK) {
            return rc;
        }

        addr -= w->in->prof->mappings[loc->mapping - 1].start;
    }

    ts_ps_put32(b, mapping);
    ts_ps_put64(b + 4, addr);
    b[12] = (uint8_t) (loc->is_folded != 0);

    for (j = 0; j < loc->nlines; j++) {
        ln = &w->in->prof->lines[loc->line + j];

        rc = ts_ps_function(w, ln->function, &fid);
        if (rc != TS_OK) {
            return rc;
        }

        b = w->buf + TS_PS_LOC_HDR + (size_t) j * TS_PS_LINE_LEN;
        ts_ps_put32(b, fid);
        ts_ps_put64(b + 4, (uint64_t) ln->line);
        ts_ps_put64(b + 12, (uint64_t) ln->column);
    }

    rc = ts_ps_intern(w, TS_PS_LOCATION, w->buf, len, id,
                      &w->st->new_locations);
    if (rc == TS_OK) {
        w->lmap[i - 1] = *id;
    }

    return rc;
}


/* a stack node: (parent, location) -> id, keyed directly in "sym" */

static int
ts_ps_node(ts_ps_w_t *w, uint32_t parent, uint32_t loc, uint32_t *id)
{
    int      rc;
    uint8_t  skey[TS_PS_NODE_KEY], okey[TS_PS_OBJ_KEY], b[8];
    MDB_val  k, v, ok, ov;

    ts_ps_node_key(skey, w->tenant, parent, loc);

    k.mv_data = skey;
    k.mv_size = TS_PS_NODE_KEY;

    rc = mdb_get(w->txn, w->ps->dbi[TS_PS_SYM], &k, &v);

    if (rc == 0 && v.mv_size == 4) {
        *id = ts_ps_get32(v.mv_data);
        return TS_OK;
    }

    if (rc != MDB_NOTFOUND) {
        return rc ? ts_ps_mdb_err(w->ps, w->err, w->errlen, rc, "mdb_get")
                  : TS_ERR_CORRUPT;
    }

    rc = ts_ps_next_id(w, TS_PS_NODE, id);
    if (rc != TS_OK) {
        return rc;
    }

    ts_ps_put32(b, *id);
    v.mv_data = b;
    v.mv_size = 4;

    rc = mdb_put(w->txn, w->ps->dbi[TS_PS_SYM], &k, &v, 0);

    if (rc == 0) {
        ts_ps_obj_key(okey, w->tenant, TS_PS_NODE, *id);
        ts_ps_put32(b, parent);
        ts_ps_put32(b + 4, loc);
        ok.mv_data = okey;
        ok.mv_size = TS_PS_OBJ_KEY;
        ov.mv_data = b;
        ov.mv_size = 8;

        rc = mdb_put(w->txn, w->ps->dbi[TS_PS_OBJ], &ok, &ov,
                     MDB_NOOVERWRITE);
    }

    if (rc != 0) {
        return ts_ps_mdb_err(w->ps, w->err, w->errlen, rc, "mdb_put");
    }

    w->st->new_nodes++;
    w->st->symbol_bytes += TS_PS_NODE_KEY + 4 + TS_PS_OBJ_KEY + 8;

    return TS_OK;
}


/*
 * Every sample's stack into the tree, root first; the leaf's node id is
 * the stack id.  An empty stack is node 0.
 */

static int
ts_ps_stacks(ts_ps_w_t *w)
{
    int                      rc;
    uint32_t                 i, j, loc, node;
    const ts_pprof_t        *p;
    const ts_pprof_sample_t *s;

    p = w->in->prof;

    for (i = 0; i < p->nsamples; i++) {
        s = &p->samples[i];
        node = 0;

        for (j = s->depth; j > 0; j--) {
            rc = ts_ps_location(w, p->stacks[s->stack + j - 1], &loc);
            if (rc == TS_OK) {
                rc = ts_ps_node(w, node, loc, &node);
            }

            if (rc != TS_OK) {
                return rc;
            }
        }

        w->stack[i] = node;
    }

    return TS_OK;
}


/*
 * Sample labels split a profile into series as Pyroscope's
 * VisitSampleSeries does: the string labels of a sample (Go's pprof
 * labels) are added to the series labels, except span_id and
 * profile_id (they identify one request, not a series), names the
 * series labels already have (those win), and "__" names (reserved);
 * numeric labels are ignored.  For a repeated key the last value
 * counts.  Samples whose added labels are equal form one group, one
 * series per sample type; a profile without such labels is one group.
 */

static int
ts_ps_slabels(ts_ps_w_t *w, uint32_t i, ts_label_t *out, uint32_t *n)
{
    uint32_t                 j, k;
    const ts_pprof_t        *p;
    const ts_label_t        *sl;
    const ts_pprof_str_t    *key, *val;
    const ts_pprof_label_t  *l;
    const ts_pprof_sample_t *s;

    p = w->in->prof;
    s = &p->samples[i];
    *n = 0;

    for (j = 0; j < s->nlabels; j++) {
        l = &p->labels[s->label + j];

        if (l->str == 0
            || (j + 1 < s->nlabels && p->labels[s->label + j + 1].key == l->key
                && p->labels[s->label + j + 1].str != 0))
        {
            continue;
        }

        key = ts_pprof_string(p, l->key);
        val = ts_pprof_string(p, l->str);

        if ((key->len == sizeof(TS_PS_SPAN_ID) - 1
             && memcmp(key->data, TS_PS_SPAN_ID, key->len) == 0)
            || (key->len == sizeof(TS_PS_PROFILE_ID) - 1
                && memcmp(key->data, TS_PS_PROFILE_ID, key->len) == 0)
            || (key->len >= 2 && key->data[0] == '_' && key->data[1] == '_'))
        {
            continue;
        }

        for (k = 0; k < w->in->nlabels; k++) {
            sl = &w->in->labels[k];
            if (sl->name_len == key->len
                && memcmp(sl->name, key->data, key->len) == 0)
            {
                break;
            }
        }

        if (k < w->in->nlabels) {
            continue;
        }

        if (*n + w->in->nlabels + 2 >= TS_PSTORE_MAX_LABELS) {
            ts_ps_fmt(w->err, w->errlen, "too many labels with the sample"
                      " labels of the profile, at most %d",
                      TS_PSTORE_MAX_LABELS);
            return TS_ERR_INVALID;
        }

        out[*n].name = key->data;
        out[*n].name_len = key->len;
        out[*n].value = val->data;
        out[*n].value_len = val->len;
        (*n)++;
    }

    return TS_OK;
}


/* strings of a normalized profile are unique: pointers identify them */

static uint32_t
ts_ps_slabels_hash(const ts_label_t *l, uint32_t n)
{
    uint32_t   i;
    uint64_t   h;

    h = 14695981039346656037ULL;

    for (i = 0; i < n; i++) {
        h = (h ^ (uint64_t) (uintptr_t) l[i].name) * 1099511628211ULL;
        h = (h ^ (uint64_t) (uintptr_t) l[i].value) * 1099511628211ULL;
    }

    return (uint32_t) (h ^ (h >> 32));
}


static int
ts_ps_groups(ts_ps_w_t *w)
{
    int                rc;
    uint32_t           i, g, sum, c;
    const ts_pprof_t  *p;

    p = w->in->prof;
    w->ngroups = 0;

    memset(w->htab, 0, ((size_t) w->hmask + 1) * sizeof(uint32_t));

    for (i = 0; i < p->nsamples; i++) {
        rc = ts_ps_group_find(w, i, &w->group[i]);
        if (rc != TS_OK) {
            return rc;
        }
    }

    if (w->ngroups == 0) {
        w->ngroups = 1;
        w->rep[0] = TS_PPROF_NONE;
    }

    /* counting sort of the samples by group */

    memset(w->gstart, 0, ((size_t) w->ngroups + 1) * sizeof(uint32_t));

    for (i = 0; i < p->nsamples; i++) {
        w->gstart[w->group[i]]++;
    }

    for (g = 0, sum = 0; g <= w->ngroups; g++) {
        c = w->gstart[g];
        w->gstart[g] = sum;
        sum += c;
    }

    for (i = 0; i < p->nsamples; i++) {
        w->order[w->gstart[w->group[i]]++] = i;
    }

    /* gstart[g] is now where group g ends: shift by one group */

    for (g = w->ngroups; g > 0; g--) {
        w->gstart[g] = w->gstart[g - 1];
    }

    w->gstart[0] = 0;

    return TS_OK;
}


static int
ts_ps_group_find(ts_ps_w_t *w, uint32_t i, uint32_t *g)
{
    int          rc;
    uint32_t     n, m, h, slot, e, k;
    ts_label_t   l[TS_PSTORE_MAX_LABELS], r[TS_PSTORE_MAX_LABELS];

    rc = ts_ps_slabels(w, i, l, &n);
    if (rc != TS_OK) {
        return rc;
    }

    h = ts_ps_slabels_hash(l, n);

    for (slot = h & w->hmask; ; slot = (slot + 1) & w->hmask) {
        e = w->htab[slot];

        if (e == 0) {
            break;
        }

        if (w->ghash[e - 1] != h) {
            continue;
        }

        (void) ts_ps_slabels(w, w->rep[e - 1], r, &m);

        for (k = 0; k < n && m == n; k++) {
            if (l[k].name != r[k].name || l[k].value != r[k].value) {
                break;
            }
        }

        if (m == n && k == n) {
            *g = e - 1;
            return TS_OK;
        }
    }

    for (k = 0; k < n; k++) {
        if (ts_ps_label_check(w, &l[k], "sample label") != TS_OK) {
            return TS_ERR_INVALID;
        }
    }

    w->rep[w->ngroups] = i;
    w->ghash[w->ngroups] = h;
    w->htab[slot] = ++w->ngroups;
    *g = w->ngroups - 1;

    return TS_OK;
}


/* The series of sample type t: labels sorted, serialized, interned. */

static int
ts_ps_series(ts_ps_w_t *w, uint32_t t, uint32_t g, uint32_t *id)
{
    int                     rc;
    char                    type[4 * 256 + 80];
    size_t                  len;
    uint8_t                *b;
    uint32_t                i, n, m, before;
    ts_label_t              l[TS_PSTORE_MAX_LABELS];
    const ts_pprof_t       *p;
    const ts_pstore_put_t  *in;

    in = w->in;
    p = in->prof;

    len = ts_ps_type_id(p, t, in->name, in->name_len, type, sizeof(type));
    if (len == 0) {
        ts_ps_fmt(w->err, w->errlen, "sample type names too long");
        return TS_ERR_INVALID;
    }

    n = 0;
    l[n].name = "__name__";
    l[n].name_len = 8;
    l[n].value = in->name;
    l[n++].value_len = (uint32_t) in->name_len;
    l[n].name = TS_PSTORE_TYPE_LABEL;
    l[n].name_len = sizeof(TS_PSTORE_TYPE_LABEL) - 1;
    l[n].value = type;
    l[n++].value_len = (uint32_t) len;

    for (i = 0; i < in->nlabels; i++) {
        l[n++] = in->labels[i];
    }

    if (w->rep[g] != TS_PPROF_NONE) {
        rc = ts_ps_slabels(w, w->rep[g], l + n, &m);
        if (rc != TS_OK) {
            return rc;
        }

        n += m;
    }

    ts_labels_sort(l, n);

    for (i = 1; i < n; i++) {
        if (l[i].name_len == l[i - 1].name_len
            && memcmp(l[i].name, l[i - 1].name, l[i].name_len) == 0)
        {
            ts_ps_fmt(w->err, w->errlen, "duplicate label \"%.*s\"",
                      (int) (l[i].name_len > 64 ? 64 : l[i].name_len),
                      l[i].name);
            return TS_ERR_INVALID;
        }
    }

    len = 2;
    for (i = 0; i < n; i++) {
        len += 4 + l[i].name_len + l[i].value_len;
    }

    b = malloc(len);
    if (b == NULL) {
        ts_ps_fmt(w->err, w->errlen, "out of memory");
        return TS_ERR_NOMEM;
    }

    ts_ps_labels_encode(b, l, n);

    before = w->st->new_series;

    rc = ts_ps_intern(w, TS_PS_SERIES, b, len, id, &w->st->new_series);

    free(b);

    if (rc == TS_OK && w->st->new_series != before) {
        rc = ts_ps_postings(w, *id, l, n);
    }

    return rc;
}


/* all-series, name and name=value postings of a new series */

static int
ts_ps_postings(ts_ps_w_t *w, uint32_t id, const ts_label_t *l, uint32_t n)
{
    int       rc;
    size_t    len;
    uint8_t   key[TS_PS_POST_KEY_MAX], b[4];
    uint32_t  i;
    MDB_val   k, v;

    ts_ps_put32(b, id);
    v.mv_data = b;
    v.mv_size = 4;
    k.mv_data = key;

    len = ts_ps_post_key(key, w->tenant, NULL, 0, NULL, 0);
    k.mv_size = len;

    rc = mdb_put(w->txn, w->ps->dbi[TS_PS_POSTINGS], &k, &v, 0);

    for (i = 0; rc == 0 && i < n; i++) {
        k.mv_size = ts_ps_post_key(key, w->tenant, l[i].name, l[i].name_len,
                                   NULL, 0);
        rc = mdb_put(w->txn, w->ps->dbi[TS_PS_POSTINGS], &k, &v, 0);

        if (rc == 0) {
            k.mv_size = ts_ps_post_key(key, w->tenant, l[i].name,
                                       l[i].name_len, l[i].value,
                                       l[i].value_len);
            rc = mdb_put(w->txn, w->ps->dbi[TS_PS_POSTINGS], &k, &v, 0);
        }

        w->st->symbol_bytes += 2 * k.mv_size + 8;
    }

    return rc ? ts_ps_mdb_err(w->ps, w->err, w->errlen, rc, "mdb_put")
              : TS_OK;
}


/*
 * The row of sample type t: (stack id, value) pairs of non-zero values,
 * equal stacks summed (stacks differing only by pprof labels), by
 * ascending stack id, ids delta-encoded.  Two profiles of one series at
 * the same nanosecond: the later one moves forward by 1 ns.
 */

static int
ts_ps_row(ts_ps_w_t *w, uint32_t series, uint32_t t, uint32_t g)
{
    int                rc;
    size_t             len;
    uint8_t           *b, key[TS_PS_ROW_KEY];
    int64_t            time, v;
    uint32_t           i, j, n, m;
    MDB_val            k, d;
    const ts_pprof_t  *p;

    p = w->in->prof;

    for (j = w->gstart[g], n = 0; j < w->gstart[g + 1]; j++) {
        i = w->order[j];
        v = p->values[(size_t) i * p->ntypes + t];
        if (v != 0) {
            w->pairs[n].stack = w->stack[i];
            w->pairs[n++].value = v;
        }
    }

    qsort(w->pairs, n, sizeof(ts_ps_pair_t), ts_ps_pair_cmp);

    for (i = 0, m = 0; i < n; i++) {
        if (m > 0 && w->pairs[m - 1].stack == w->pairs[i].stack) {
            w->pairs[m - 1].value += w->pairs[i].value;
            continue;
        }

        w->pairs[m++] = w->pairs[i];
    }

    len = 1 + 3 * 10 + (size_t) m * 20;

    b = malloc(len);
    if (b == NULL) {
        ts_ps_fmt(w->err, w->errlen, "out of memory");
        return TS_ERR_NOMEM;
    }

    len = ts_ps_row_encode(b, p->duration_nanos, p->period, w->pairs, m);

    time = p->time_nanos ? p->time_nanos : w->in->time_nanos;

    k.mv_data = key;
    k.mv_size = TS_PS_ROW_KEY;
    rc = MDB_KEYEXIST;

    for (i = 0; i < TS_PS_TIME_RETRIES; i++, time++) {
        ts_ps_row_key(key, w->tenant, series, time);
        d.mv_data = b;
        d.mv_size = len;

        rc = mdb_put(w->txn, w->ps->dbi[TS_PS_ROWS], &k, &d,
                     MDB_NOOVERWRITE);
        if (rc != MDB_KEYEXIST) {
            break;
        }
    }

    free(b);

    if (rc != 0) {
        return ts_ps_mdb_err(w->ps, w->err, w->errlen, rc, "mdb_put");
    }

    w->st->series++;
    w->st->row_bytes += TS_PS_ROW_KEY + len;

    return TS_OK;
}


static int
ts_ps_pair_cmp(const void *a, const void *b)
{
    const ts_ps_pair_t  *x = a, *y = b;

    return (x->stack > y->stack) - (x->stack < y->stack);
}


/* version 1: duration, period, count, then (stack delta, value) */

size_t
ts_ps_row_encode(uint8_t *b, int64_t duration, int64_t period,
    const void *pairs, uint32_t n)
{
    uint8_t             *p;
    uint32_t             i, prev;
    const ts_ps_pair_t  *pr;

    pr = pairs;
    p = b;
    *p++ = 1;
    p += ts_ps_uvarint_put(p, ts_ps_zigzag(duration));
    p += ts_ps_uvarint_put(p, ts_ps_zigzag(period));
    p += ts_ps_uvarint_put(p, n);

    for (i = 0, prev = 0; i < n; i++) {
        p += ts_ps_uvarint_put(p, pr[i].stack - prev);
        p += ts_ps_uvarint_put(p, ts_ps_zigzag(pr[i].value));
        prev = pr[i].stack;
    }

    return (size_t) (p - b);
}


/* name:type:unit:period_type:period_unit; 0 if it does not fit */

size_t
ts_ps_type_id(const ts_pprof_t *p, uint32_t t, const char *name,
    size_t nlen, char *buf, size_t size)
{
    int                    n;
    const ts_pprof_str_t  *s[4];

    s[0] = ts_pprof_string(p, p->types[t].type);
    s[1] = ts_pprof_string(p, p->types[t].unit);
    s[2] = ts_pprof_string(p, p->period_type.type);
    s[3] = ts_pprof_string(p, p->period_type.unit);

    n = snprintf(buf, size, "%.*s:%.*s:%.*s:%.*s:%.*s", (int) nlen, name,
                 (int) s[0]->len, s[0]->data, (int) s[1]->len, s[1]->data,
                 (int) s[2]->len, s[2]->data, (int) s[3]->len, s[3]->data);

    return (n < 0 || (size_t) n >= size) ? 0 : (size_t) n;
}


/*
 * Retention.  Row keys are (tenant, series, time), so the old rows of a
 * series come first: delete them, and at the first row at or after the
 * cutoff jump to the next series with one MDB_SET_RANGE.  The position
 * to resume from is kept in the handle (under wlock); rows written
 * behind it meanwhile are newer than any cutoff soon to come.
 */

int
ts_pstore_retention(ts_pstore_t *ps, int64_t cutoff, size_t max_keys,
    ts_pstore_retention_t *st, char *err, size_t errlen)
{
    int          rc, mrc;
    int64_t      t;
    uint8_t      next[TS_PS_ROW_KEY];
    uint32_t     tenant, series;
    MDB_val      k, v;
    MDB_txn     *txn;
    MDB_cursor  *cur;

    memset(st, 0, sizeof(ts_pstore_retention_t));

    if (max_keys == 0) {
        ts_ps_fmt(err, errlen, "retention step of 0 keys");
        return TS_ERR_INVALID;
    }

    (void) pthread_mutex_lock(&ps->wlock);

    rc = ts_ps_txn_begin(ps, 0, &txn, err, errlen);
    if (rc != TS_OK) {
        (void) pthread_mutex_unlock(&ps->wlock);
        return rc;
    }

    mrc = mdb_cursor_open(txn, ps->dbi[TS_PS_ROWS], &cur);
    if (mrc != 0) {
        rc = ts_ps_mdb_err(ps, err, errlen, mrc, "mdb_cursor_open");
        goto failed;
    }

    if (ps->ret_resume) {
        k.mv_data = ps->ret_key;
        k.mv_size = TS_PS_ROW_KEY;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);

    } else {
        mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }

    while (mrc == 0) {

        if (st->visited == max_keys) {
            break;
        }

        st->visited++;

        if (k.mv_size != TS_PS_ROW_KEY) {
            ts_ps_fmt(err, errlen, "profile store \"%s\": a %zu-byte key in"
                      " \"rows\"", ps->file, k.mv_size);
            mdb_cursor_close(cur);
            rc = TS_ERR_CORRUPT;
            goto failed;
        }

        t = (int64_t) (ts_ps_get64((uint8_t *) k.mv_data + 8) ^ TS_PS_SIGN);

        if (t < cutoff) {
            st->rows++;
            st->row_bytes += k.mv_size + v.mv_size;

            mrc = mdb_cursor_del(cur, 0);
            if (mrc != 0) {
                break;
            }

            /* after a delete LMDB's MDB_NEXT gives the following key */
            mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            continue;
        }

        /* the rest of this series is newer: on to the next series */

        tenant = ts_ps_get32(k.mv_data);
        series = ts_ps_get32((uint8_t *) k.mv_data + 4);

        if (series == UINT32_MAX) {
            if (tenant == UINT32_MAX) {
                mrc = MDB_NOTFOUND;
                break;
            }

            ts_ps_row_key(next, tenant + 1, 0, INT64_MIN);

        } else {
            ts_ps_row_key(next, tenant, series + 1, INT64_MIN);
        }

        k.mv_data = next;
        k.mv_size = TS_PS_ROW_KEY;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }

    if (mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = ts_ps_mdb_err(ps, err, errlen, mrc, "mdb_cursor_get/del");
        mdb_cursor_close(cur);
        goto failed;
    }

    /* the key the next step starts at; NOTFOUND: the pass is complete */

    st->more = (mrc == 0);

    if (st->more) {
        memcpy(next, k.mv_data, TS_PS_ROW_KEY);
    }

    mdb_cursor_close(cur);

    if (st->rows == 0) {
        ts_ps_txn_end(ps, txn);

    } else {
        mrc = mdb_txn_commit(txn);
        (void) pthread_rwlock_unlock(&ps->gate);

        if (mrc != 0) {
            (void) pthread_mutex_unlock(&ps->wlock);
            return ts_ps_mdb_err(ps, err, errlen, mrc, "mdb_txn_commit");
        }
    }

    ps->ret_resume = st->more;

    if (st->more) {
        memcpy(ps->ret_key, next, TS_PS_ROW_KEY);
    }

    (void) pthread_mutex_unlock(&ps->wlock);

    return TS_OK;

failed:

    ts_ps_txn_end(ps, txn);
    (void) pthread_mutex_unlock(&ps->wlock);

    return rc;
}
