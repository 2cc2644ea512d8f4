/*
 * Copyright (C) ngx_tsdb authors
 *
 * Profile store internals shared by ts_pstore.c (open, writes) and
 * ts_pstore_read.c (merge, series): the handle, key layouts and the
 * byte helpers.  Key layouts are docs/format/profiles.md.
 */

#ifndef TS_PSTORE_INT_H
#define TS_PSTORE_INT_H


#include <pthread.h>
#include <string.h>

#include <lmdb.h>

#include "ts_pstore.h"


enum {
    TS_PS_META = 0,
    TS_PS_TENANTS,
    TS_PS_SYM,
    TS_PS_OBJ,
    TS_PS_POSTINGS,
    TS_PS_ROWS,
    TS_PS_NDBS
};


/* object kinds: the byte after the tenant in "obj" and "sym" keys */
#define TS_PS_STRING         's'
#define TS_PS_FUNCTION       'f'
#define TS_PS_MAPPING        'm'
#define TS_PS_LOCATION       'l'
#define TS_PS_NODE           'k'
#define TS_PS_NODE_IDX       'K'
#define TS_PS_SERIES         'S'

#define TS_PS_OBJ_KEY        9           /* tenant, kind, id */
#define TS_PS_SYM_KEY        13          /* tenant, kind, xxh64 */
#define TS_PS_NODE_KEY       13          /* tenant, 'K', parent, loc */
#define TS_PS_ROW_KEY        16          /* tenant, series, time */
#define TS_PS_POST_KEY_MAX   (5 + TS_PSTORE_LABEL_MAX + 1)

#define TS_PS_FUNC_LEN       20
#define TS_PS_MAP_LEN        45
#define TS_PS_LOC_HDR        13
#define TS_PS_LINE_LEN       20

#define TS_PS_SIGN           0x8000000000000000ULL


typedef struct {
    const char          *name;
    unsigned             flags;
} ts_ps_dbdef_t;


struct ts_pstore_s {
    MDB_env             *env;
    MDB_dbi              dbi[TS_PS_NDBS];
    pid_t                pid;
    size_t               map_size;
    size_t               map_max;
    pthread_mutex_t      wlock;
    pthread_rwlock_t     gate;
    int                  locks;
    uint8_t              ret_key[TS_PS_ROW_KEY];   /* retention resumes */
    unsigned             ret_resume:1;
    char                 dir[PATH_MAX];
    char                 file[PATH_MAX];
    char                 errmsg[TS_PSTORE_ERR_MAX];
};


void ts_ps_fmt(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ts_ps_mdb_err(ts_pstore_t *ps, char *err, size_t errlen, int rc,
    const char *call);
int ts_ps_txn_begin(ts_pstore_t *ps, unsigned flags, MDB_txn **txn,
    char *err, size_t errlen);
void ts_ps_txn_end(ts_pstore_t *ps, MDB_txn *txn);
int ts_ps_tenant_get(ts_pstore_t *ps, MDB_txn *txn, const char *name,
    size_t len, uint32_t *id);
size_t ts_ps_row_encode(uint8_t *b, int64_t duration, int64_t period,
    const void *pairs, uint32_t n);
size_t ts_ps_type_id(const ts_pprof_t *p, uint32_t t, const char *name,
    size_t nlen, char *buf, size_t size);


static inline void
ts_ps_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}


static inline void
ts_ps_put64(uint8_t *p, uint64_t v)
{
    ts_ps_put32(p, (uint32_t) (v >> 32));
    ts_ps_put32(p + 4, (uint32_t) v);
}


static inline uint32_t
ts_ps_get32(const void *v)
{
    const uint8_t  *p = v;

    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}


static inline uint64_t
ts_ps_get64(const void *v)
{
    const uint8_t  *p = v;

    return (uint64_t) ts_ps_get32(p) << 32 | ts_ps_get32(p + 4);
}


static inline uint64_t
ts_ps_zigzag(int64_t v)
{
    return ((uint64_t) v << 1) ^ (uint64_t) (v >> 63);
}


static inline int64_t
ts_ps_unzigzag(uint64_t v)
{
    return (int64_t) (v >> 1) ^ -(int64_t) (v & 1);
}


static inline size_t
ts_ps_uvarint_put(uint8_t *p, uint64_t v)
{
    size_t  n;

    for (n = 0; v >= 0x80; v >>= 7) {
        p[n++] = (uint8_t) (v | 0x80);
    }

    p[n++] = (uint8_t) v;

    return n;
}


/* 0, or -1 on truncation or more than 10 bytes */
static inline int
ts_ps_uvarint_get(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    int             shift;
    uint64_t        r;
    const uint8_t  *p;

    r = 0;

    for (p = *pp, shift = 0; p < end && shift < 64; p++, shift += 7) {
        r |= (uint64_t) (*p & 0x7f) << shift;

        if (*p < 0x80) {
            *pp = p + 1;
            *v = r;
            return 0;
        }
    }

    return -1;
}


static inline void
ts_ps_obj_key(uint8_t *k, uint32_t tenant, uint8_t kind, uint32_t id)
{
    ts_ps_put32(k, tenant);
    k[4] = kind;
    ts_ps_put32(k + 5, id);
}


static inline void
ts_ps_sym_key(uint8_t *k, uint32_t tenant, uint8_t kind, uint64_t hash)
{
    ts_ps_put32(k, tenant);
    k[4] = kind;
    ts_ps_put64(k + 5, hash);
}


static inline void
ts_ps_node_key(uint8_t *k, uint32_t tenant, uint32_t parent, uint32_t loc)
{
    ts_ps_put32(k, tenant);
    k[4] = TS_PS_NODE_IDX;
    ts_ps_put32(k + 5, parent);
    ts_ps_put32(k + 9, loc);
}


static inline void
ts_ps_row_key(uint8_t *k, uint32_t tenant, uint32_t series, int64_t t)
{
    ts_ps_put32(k, tenant);
    ts_ps_put32(k + 4, series);
    ts_ps_put64(k + 8, (uint64_t) t ^ TS_PS_SIGN);
}


/*
 * name NULL: 'A' (all series); value NULL: 'N' name; else 'V' name NUL
 * value.  The caller checked name + value <= TS_PSTORE_LABEL_MAX.
 */
static inline size_t
ts_ps_post_key(uint8_t *k, uint32_t tenant, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
    ts_ps_put32(k, tenant);

    if (name == NULL) {
        k[4] = 'A';
        return 5;
    }

    k[4] = (value == NULL) ? 'N' : 'V';
    memcpy(k + 5, name, nlen);

    if (value == NULL) {
        return 5 + nlen;
    }

    k[5 + nlen] = '\0';
    memcpy(k + 6 + nlen, value, vlen);

    return 6 + nlen + vlen;
}


/* count(2), then per label name length(2), name, value length(2), value */
static inline void
ts_ps_labels_encode(uint8_t *b, const ts_label_t *l, uint32_t n)
{
    uint32_t  i;

    b[0] = (uint8_t) (n >> 8);
    b[1] = (uint8_t) n;
    b += 2;

    for (i = 0; i < n; i++) {
        b[0] = (uint8_t) (l[i].name_len >> 8);
        b[1] = (uint8_t) l[i].name_len;
        memcpy(b + 2, l[i].name, l[i].name_len);
        b += 2 + l[i].name_len;
        b[0] = (uint8_t) (l[i].value_len >> 8);
        b[1] = (uint8_t) l[i].value_len;
        memcpy(b + 2, l[i].value, l[i].value_len);
        b += 2 + l[i].value_len;
    }
}


#endif /* TS_PSTORE_INT_H */
