/*
 * Copyright (C) ngx_tsdb authors
 *
 * Profile store reads: series selection through ts_select over the
 * store's postings, the streaming merge of rows into a ts_pprof_t, and
 * row totals (each row's values summed, nothing kept) for timelines.
 *
 * A merge holds one read transaction (a synchronous step: the gate is
 * shared, a concurrent remap waits for it).  Rows are decoded one at a
 * time into a table stack id -> summed value; only then are the
 * distinct stacks resolved through the tree and their symbols copied
 * into the output, each once (memo keyed by kind and stored id).  So
 * memory follows the output, not the number of rows merged.
 */

#include <stdlib.h>
#include <string.h>

#include "ts_pstore_int.h"


#define TS_PS_MAX_DEPTH      65536        /* a cycle in a corrupt tree */


typedef struct {
    uint64_t            *key;         /* 0: empty; else key + 1 */
    int64_t             *val;
    uint32_t             mask;
    uint32_t             n;
} ts_ps_map_t;


typedef struct {
    ts_pstore_t         *ps;
    MDB_txn             *txn;
    uint32_t             tenant;
    int                  found;
} ts_ps_src_t;


typedef struct {
    ts_ps_src_t          src;
    ts_pprof_t          *out;
    ts_ps_map_t          sums;        /* stack id -> value */
    ts_ps_map_t          memo;        /* kind << 32 | id -> out id */
    uint32_t            *locs;
    uint32_t             nlocs_cap;
    int64_t              from;
    int64_t              until;
    int64_t              time;
    int64_t              duration;
    int64_t              period;
    uint64_t             rows;
    uint64_t             row_bytes;
    char                *err;
    size_t               errlen;
} ts_ps_merge_t;


static int ts_ps_map_init(ts_ps_map_t *m, uint32_t cap);
static void ts_ps_map_free(ts_ps_map_t *m);
static int64_t *ts_ps_map_slot(ts_ps_map_t *m, uint64_t key, int *fresh);
static int ts_ps_src_postings(void *data, const char *name, size_t nlen,
    const char *value, size_t vlen, ts_pit_t *it);
static int ts_ps_pit_next(ts_pit_t *it, uint64_t *ref);
static int ts_ps_pit_seek(ts_pit_t *it, uint64_t target, uint64_t *ref);
static void ts_ps_pit_close(ts_pit_t *it);
static int ts_ps_pit_empty(ts_pit_t *it, uint64_t *ref);
static int ts_ps_src_values(void *data, const char *name, size_t nlen,
    ts_source_str_pt cb, void *cbdata);
static int ts_ps_src_labels(void *data, uint64_t ref, ts_label_t *out,
    uint32_t max, uint32_t *n);
static int ts_ps_read(ts_ps_src_t *s, const ts_pstore_query_t *q,
    int (*fn)(void *data, uint64_t ref), void *data, char *err,
    size_t errlen);
static int ts_ps_select(ts_ps_src_t *s, const ts_pstore_query_t *q,
    int (*fn)(void *data, uint64_t ref), void *data, char *err,
    size_t errlen);
static int ts_ps_rows(ts_ps_merge_t *m, uint32_t series, int64_t from,
    int64_t until);
static int ts_ps_row_add(ts_ps_merge_t *m, const MDB_val *v, int64_t t);
static int ts_ps_merge_series(void *data, uint64_t ref);
static int ts_ps_types(ts_pprof_t *out, const char *type, size_t len);
static int ts_ps_resolve(ts_ps_merge_t *m);
static int ts_ps_obj(ts_ps_merge_t *m, uint8_t kind, uint32_t id,
    MDB_val *v);
static int ts_ps_out_string(ts_ps_merge_t *m, uint32_t id, uint32_t *out);
static int ts_ps_out_function(ts_ps_merge_t *m, uint32_t id,
    uint32_t *out);
static int ts_ps_out_mapping(ts_ps_merge_t *m, uint32_t id, uint32_t *out,
    uint64_t *start);
static int ts_ps_out_location(ts_ps_merge_t *m, uint32_t id,
    uint32_t *out);


static const ts_pit_ops_t  ts_ps_pit_ops = {
    ts_ps_pit_next, ts_ps_pit_seek, ts_ps_pit_close
};

static const ts_pit_ops_t  ts_ps_pit_empty_ops = {
    ts_ps_pit_empty, NULL, NULL
};


static int
ts_ps_map_init(ts_ps_map_t *m, uint32_t cap)
{
    m->key = calloc(cap, sizeof(uint64_t));
    m->val = malloc(cap * sizeof(int64_t));
    m->mask = cap - 1;
    m->n = 0;

    return (m->key == NULL || m->val == NULL) ? TS_ERR_NOMEM : TS_OK;
}


static void
ts_ps_map_free(ts_ps_map_t *m)
{
    free(m->key);
    free(m->val);
    m->key = NULL;
    m->val = NULL;
}


/* the value slot of key (added, *fresh = 1, if new); NULL: no memory */

static int64_t *
ts_ps_map_slot(ts_ps_map_t *m, uint64_t key, int *fresh)
{
    uint32_t     i, j;
    ts_ps_map_t  big;

    if (m->n * 2 >= m->mask) {
        if (ts_ps_map_init(&big, (m->mask + 1) * 2) != TS_OK) {
            ts_ps_map_free(&big);
            return NULL;
        }

        for (i = 0; i <= m->mask; i++) {
            if (m->key[i] == 0) {
                continue;
            }

            j = (uint32_t) (ts_xxh64(&m->key[i], 8, 0) & big.mask);
            while (big.key[j] != 0) {
                j = (j + 1) & big.mask;
            }

            big.key[j] = m->key[i];
            big.val[j] = m->val[i];
        }

        big.n = m->n;
        ts_ps_map_free(m);
        *m = big;
    }

    key++;
    i = (uint32_t) (ts_xxh64(&key, 8, 0) & m->mask);

    while (m->key[i] != 0) {
        if (m->key[i] == key) {
            *fresh = 0;
            return &m->val[i];
        }

        i = (i + 1) & m->mask;
    }

    m->key[i] = key;
    m->val[i] = 0;
    m->n++;
    *fresh = 1;

    return &m->val[i];
}


static void
ts_ps_src_init(ts_source_t *src, ts_ps_src_t *s)
{
    memset(src, 0, sizeof(ts_source_t));

    src->data = s;
    src->postings = ts_ps_src_postings;
    src->label_values = ts_ps_src_values;
    src->labels = ts_ps_src_labels;
}


/* the cursor, whether started, and the last ref live in it->st */

static int
ts_ps_src_postings(void *data, const char *name, size_t nlen,
    const char *value, size_t vlen, ts_pit_t *it)
{
    int          rc;
    uint8_t      key[TS_PS_POST_KEY_MAX];
    MDB_val      k, v;
    MDB_cursor  *cur;
    ts_ps_src_t *s;

    s = data;
    it->ops = &ts_ps_pit_empty_ops;

    if (!s->found || nlen + vlen > TS_PSTORE_LABEL_MAX) {
        return TS_OK;
    }

    k.mv_data = key;
    k.mv_size = ts_ps_post_key(key, s->tenant, name, nlen, value, vlen);

    rc = mdb_cursor_open(s->txn, s->ps->dbi[TS_PS_POSTINGS], &cur);
    if (rc != 0) {
        return TS_ERR_IO;
    }

    rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
    if (rc != 0) {
        mdb_cursor_close(cur);
        return (rc == MDB_NOTFOUND) ? TS_OK : TS_ERR_IO;
    }

    if (v.mv_size != 4) {
        mdb_cursor_close(cur);
        return TS_ERR_CORRUPT;
    }

    it->ops = &ts_ps_pit_ops;
    it->st[0].p = cur;
    it->st[1].u = 0;
    it->st[2].u = ts_ps_get32(v.mv_data);

    return TS_OK;
}


static int
ts_ps_pit_next(ts_pit_t *it, uint64_t *ref)
{
    int      rc;
    MDB_val  k, v;

    /* the cursor is on the first duplicate, whose ref is in st[2] */

    if (!it->st[1].u) {
        it->st[1].u = 1;
        *ref = it->st[2].u;
        return 1;
    }

    rc = mdb_cursor_get(it->st[0].p, &k, &v, MDB_NEXT_DUP);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0 || v.mv_size != 4) {
        return rc ? TS_ERR_IO : TS_ERR_CORRUPT;
    }

    *ref = ts_ps_get32(v.mv_data);
    it->st[2].u = *ref;

    return 1;
}


/*
 * Duplicates are walked forward: a postings list of one label value is
 * read once either way, and MDB_GET_BOTH_RANGE needs the key again.
 */

static int
ts_ps_pit_seek(ts_pit_t *it, uint64_t target, uint64_t *ref)
{
    int  rc;

    if (target <= it->st[2].u) {
        it->st[1].u = 1;
        *ref = it->st[2].u;
        return 1;
    }

    do {
        rc = ts_ps_pit_next(it, ref);
    } while (rc == 1 && *ref < target);

    return rc;
}


static void
ts_ps_pit_close(ts_pit_t *it)
{
    if (it->st[0].p != NULL) {
        mdb_cursor_close(it->st[0].p);
        it->st[0].p = NULL;
    }
}


static int
ts_ps_pit_empty(ts_pit_t *it, uint64_t *ref)
{
    (void) it;
    (void) ref;

    return 0;
}


static int
ts_ps_src_values(void *data, const char *name, size_t nlen,
    ts_source_str_pt cb, void *cbdata)
{
    int           rc;
    size_t        plen;
    uint8_t       key[TS_PS_POST_KEY_MAX];
    MDB_val       k, v;
    MDB_cursor   *cur;
    ts_ps_src_t  *s;

    s = data;

    if (!s->found || nlen > TS_PSTORE_LABEL_MAX) {
        return TS_OK;
    }

    plen = ts_ps_post_key(key, s->tenant, name, nlen, "", 0);

    rc = mdb_cursor_open(s->txn, s->ps->dbi[TS_PS_POSTINGS], &cur);
    if (rc != 0) {
        return TS_ERR_IO;
    }

    k.mv_data = key;
    k.mv_size = plen;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP))
    {
        if (k.mv_size < plen || memcmp(k.mv_data, key, plen) != 0) {
            break;
        }

        if (cb(cbdata, (char *) k.mv_data + plen, k.mv_size - plen) != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return (rc == 0 || rc == MDB_NOTFOUND) ? TS_OK : TS_ERR_IO;
}


static int
ts_ps_src_labels(void *data, uint64_t ref, ts_label_t *out, uint32_t max,
    uint32_t *n)
{
    int             rc;
    uint8_t         key[TS_PS_OBJ_KEY];
    uint32_t        i, cnt, len;
    MDB_val         k, v;
    ts_ps_src_t    *s;
    const uint8_t  *p, *end;

    s = data;

    if (!s->found || ref > UINT32_MAX) {
        return TS_ERR_NOTFOUND;
    }

    ts_ps_obj_key(key, s->tenant, TS_PS_SERIES, (uint32_t) ref);
    k.mv_data = key;
    k.mv_size = TS_PS_OBJ_KEY;

    rc = mdb_get(s->txn, s->ps->dbi[TS_PS_OBJ], &k, &v);
    if (rc != 0) {
        return (rc == MDB_NOTFOUND) ? TS_ERR_NOTFOUND : TS_ERR_IO;
    }

    p = v.mv_data;
    end = p + v.mv_size;

    if (v.mv_size < 2) {
        return TS_ERR_CORRUPT;
    }

    cnt = (uint32_t) p[0] << 8 | p[1];
    p += 2;

    if (cnt > max) {
        return TS_ERR_LIMIT;
    }

    for (i = 0; i < cnt; i++) {
        if (end - p < 2) {
            return TS_ERR_CORRUPT;
        }

        len = (uint32_t) p[0] << 8 | p[1];
        if ((size_t) (end - p) < 4 + len) {
            return TS_ERR_CORRUPT;
        }

        out[i].name = (const char *) p + 2;
        out[i].name_len = len;
        p += 2 + len;

        len = (uint32_t) p[0] << 8 | p[1];
        if ((size_t) (end - p) < 2 + len) {
            return TS_ERR_CORRUPT;
        }

        out[i].value = (const char *) p + 2;
        out[i].value_len = len;
        p += 2 + len;
    }

    *n = cnt;

    return TS_OK;
}


/*
 * One read transaction over the query's tenant: fn for every series the
 * query selects, none when the tenant never wrote.  What fn returns to
 * stop the walk (TS_ERR_AGAIN) comes back as is.
 */

static int
ts_ps_read(ts_ps_src_t *s, const ts_pstore_query_t *q,
    int (*fn)(void *data, uint64_t ref), void *data, char *err,
    size_t errlen)
{
    int  rc;

    rc = ts_ps_txn_begin(s->ps, MDB_RDONLY, &s->txn, err, errlen);
    if (rc != TS_OK) {
        return rc;
    }

    rc = ts_ps_tenant_get(s->ps, s->txn, q->tenant, q->tenant_len,
                          &s->tenant);
    s->found = (rc == TS_OK);

    if (rc == TS_OK) {
        rc = ts_ps_select(s, q, fn, data, err, errlen);

    } else if (rc == TS_ERR_NOTFOUND) {
        rc = TS_OK;
    }

    ts_ps_txn_end(s->ps, s->txn);

    return rc;
}


/* Calls fn for every series selected by the query's matchers and type. */

static int
ts_ps_select(ts_ps_src_t *s, const ts_pstore_query_t *q,
    int (*fn)(void *data, uint64_t ref), void *data, char *err,
    size_t errlen)
{
    int             rc;
    char            msg[TS_SELECT_MSG_SIZE];
    uint64_t        ref;
    uint32_t        n;
    ts_source_t     src;
    ts_matcher_t    m[65];
    ts_select_t    *it;
    ts_selector_t  *sel;

    if (q->nmatchers > 64) {
        ts_ps_fmt(err, errlen, "too many matchers");
        return TS_ERR_LIMIT;
    }

    if (q->nmatchers) {
        memcpy(m, q->matchers, q->nmatchers * sizeof(ts_matcher_t));
    }

    n = q->nmatchers;

    m[n].name = TS_PSTORE_TYPE_LABEL;
    m[n].name_len = sizeof(TS_PSTORE_TYPE_LABEL) - 1;

    if (q->type != NULL) {
        m[n].type = TS_MATCH_EQ;
        m[n].value = q->type;
        m[n].value_len = q->type_len;

    } else {
        m[n].type = TS_MATCH_RE;
        m[n].value = ".+";
        m[n].value_len = 2;
    }

    n++;

    msg[0] = '\0';

    rc = ts_selector_compile(&sel, m, n, NULL, msg, sizeof(msg));
    if (rc != TS_OK) {
        ts_ps_fmt(err, errlen, "%s", msg[0] ? msg : ts_strerror(rc));
        return rc;
    }

    ts_ps_src_init(&src, s);

    rc = ts_select_open(&it, sel, &src);

    if (rc == TS_OK) {
        while ((rc = ts_select_next(it, &ref)) == 1) {
            rc = fn(data, ref);
            if (rc != TS_OK) {
                break;
            }
        }

        ts_select_close(it);
    }

    ts_selector_free(sel);

    if (rc < 0 && err != NULL && err[0] == '\0') {
        ts_ps_fmt(err, errlen, "series selection failed: %s",
                  ts_strerror(rc));
    }

    return rc < 0 ? rc : TS_OK;
}


int
ts_pstore_merge(ts_pstore_t *ps, const ts_pstore_query_t *q,
    ts_pprof_t *out, uint64_t *nprofiles, char *err, size_t errlen)
{
    int            rc;
    ts_ps_merge_t  m;

    if (err != NULL && errlen) {
        err[0] = '\0';
    }

    if (q->type == NULL) {
        ts_ps_fmt(err, errlen, "no profile type");
        return TS_ERR_INVALID;
    }

    rc = ts_ps_types(out, q->type, q->type_len);
    if (rc != TS_OK) {
        ts_ps_fmt(err, errlen, "invalid profile type \"%.*s\"",
                  (int) (q->type_len > 128 ? 128 : q->type_len), q->type);
        return rc;
    }

    memset(&m, 0, sizeof(ts_ps_merge_t));
    m.src.ps = ps;
    m.out = out;
    m.err = err;
    m.errlen = errlen;

    if (ts_ps_map_init(&m.sums, 1024) != TS_OK
        || ts_ps_map_init(&m.memo, 1024) != TS_OK)
    {
        ts_ps_map_free(&m.sums);
        ts_ps_map_free(&m.memo);
        ts_ps_fmt(err, errlen, "out of memory");
        return TS_ERR_NOMEM;
    }

    m.src.found = 0;

    rc = ts_ps_txn_begin(ps, MDB_RDONLY, &m.src.txn, err, errlen);

    if (rc == TS_OK) {
        rc = ts_ps_tenant_get(ps, m.src.txn, q->tenant, q->tenant_len,
                              &m.src.tenant);
        m.src.found = (rc == TS_OK);
        rc = (rc == TS_ERR_NOTFOUND) ? TS_OK : rc;

        if (rc == TS_OK && m.src.found) {
            m.from = q->from;
            m.until = q->until;
            rc = ts_ps_select(&m.src, q, ts_ps_merge_series, &m, err,
                              errlen);
        }

        if (rc == TS_OK) {
            rc = ts_ps_resolve(&m);
        }

        ts_ps_txn_end(ps, m.src.txn);
    }

    ts_ps_map_free(&m.sums);
    ts_ps_map_free(&m.memo);
    free(m.locs);

    if (nprofiles != NULL) {
        *nprofiles = m.rows;
    }

    return rc;
}


/* sets out's sample type and period type from "name:t:u:pt:pu" */

static int
ts_ps_types(ts_pprof_t *out, const char *type, size_t len)
{
    size_t            i, start, part;
    uint32_t          id[5];
    ts_pprof_vtype_t  vt;

    for (i = 0, start = 0, part = 0; i <= len && part < 5; i++) {
        if (i < len && type[i] != ':') {
            continue;
        }

        id[part] = ts_pprof_add_string(out, type + start, i - start);
        if (id[part] == TS_PPROF_NONE) {
            return TS_ERR_NOMEM;
        }

        part++;
        start = i + 1;
    }

    /* a sixth part (":delta" in some versions) is ignored */

    if (part != 5 || id[0] == 0 || id[1] == 0) {
        return TS_ERR_INVALID;
    }

    vt.type = id[1];
    vt.unit = id[2];

    if (ts_pprof_set_types(out, &vt, 1) != TS_OK) {
        return TS_ERR_INVALID;
    }

    out->period_type.type = id[3];
    out->period_type.unit = id[4];

    return TS_OK;
}


static int
ts_ps_merge_series(void *data, uint64_t ref)
{
    ts_ps_merge_t  *m;

    m = data;

    return ts_ps_rows(m, (uint32_t) ref, m->from, m->until);
}


static int
ts_ps_rows(ts_ps_merge_t *m, uint32_t series, int64_t from, int64_t until)
{
    int          rc;
    int64_t      t;
    uint8_t      key[TS_PS_ROW_KEY];
    MDB_val      k, v;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(m->src.txn, m->src.ps->dbi[TS_PS_ROWS], &cur);
    if (rc != 0) {
        return ts_ps_mdb_err(m->src.ps, m->err, m->errlen, rc,
                             "mdb_cursor_open");
    }

    ts_ps_row_key(key, m->src.tenant, series, from);
    k.mv_data = key;
    k.mv_size = TS_PS_ROW_KEY;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != TS_PS_ROW_KEY || memcmp(k.mv_data, key, 8) != 0) {
            break;
        }

        t = (int64_t) (ts_ps_get64((uint8_t *) k.mv_data + 8) ^ TS_PS_SIGN);
        if (t > until) {
            break;
        }

        rc = ts_ps_row_add(m, &v, t);
        if (rc != TS_OK) {
            mdb_cursor_close(cur);
            return rc;
        }
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return ts_ps_mdb_err(m->src.ps, m->err, m->errlen, rc,
                             "mdb_cursor_get");
    }

    return TS_OK;
}


static int
ts_ps_row_add(ts_ps_merge_t *m, const MDB_val *v, int64_t t)
{
    int             fresh;
    int64_t        *slot;
    uint64_t        duration, period, n, i, delta, val, stack;
    const uint8_t  *p, *end;

    p = v->mv_data;
    end = p + v->mv_size;

    if (v->mv_size < 1 || *p++ != 1
        || ts_ps_uvarint_get(&p, end, &duration) != 0
        || ts_ps_uvarint_get(&p, end, &period) != 0
        || ts_ps_uvarint_get(&p, end, &n) != 0)
    {
        goto corrupt;
    }

    for (i = 0, stack = 0; i < n; i++) {
        if (ts_ps_uvarint_get(&p, end, &delta) != 0
            || ts_ps_uvarint_get(&p, end, &val) != 0)
        {
            goto corrupt;
        }

        stack += delta;

        slot = ts_ps_map_slot(&m->sums, stack, &fresh);
        if (slot == NULL) {
            ts_ps_fmt(m->err, m->errlen, "out of memory");
            return TS_ERR_NOMEM;
        }

        *slot += ts_ps_unzigzag(val);
    }

    /* as profile.Merge combines the profile-level fields */

    if (m->rows == 0 || (t != 0 && (m->time == 0 || t < m->time))) {
        m->time = t;
    }

    m->duration += ts_ps_unzigzag(duration);

    if (ts_ps_unzigzag(period) > m->period) {
        m->period = ts_ps_unzigzag(period);
    }

    m->rows++;
    m->row_bytes += v->mv_size;

    return TS_OK;

corrupt:

    ts_ps_fmt(m->err, m->errlen, "corrupt profile row in \"%s\"",
              m->src.ps->file);
    return TS_ERR_CORRUPT;
}


/* every summed stack into out, symbols copied once each */

static int
ts_ps_resolve(ts_ps_merge_t *m)
{
    int             rc;
    uint32_t        i, depth, node, loc, *locs;
    MDB_val         v;
    ts_pprof_why_t  why;

    if (m->rows == 0) {
        m->out->time_nanos = 0;
        m->out->duration_nanos = 0;
        return TS_OK;
    }

    m->out->time_nanos = m->time;
    m->out->duration_nanos = m->duration;
    m->out->period = m->period;

    for (i = 0; i <= m->sums.mask; i++) {
        if (m->sums.key[i] == 0 || m->sums.val[i] == 0) {
            continue;
        }

        node = (uint32_t) (m->sums.key[i] - 1);

        for (depth = 0; node != 0; depth++) {
            if (depth >= TS_PS_MAX_DEPTH) {
                ts_ps_fmt(m->err, m->errlen, "stack deeper than %d in"
                          " \"%s\"", TS_PS_MAX_DEPTH, m->src.ps->file);
                return TS_ERR_CORRUPT;
            }

            rc = ts_ps_obj(m, TS_PS_NODE, node, &v);
            if (rc != TS_OK) {
                return rc;
            }

            if (v.mv_size != 8) {
                return TS_ERR_CORRUPT;
            }

            node = ts_ps_get32(v.mv_data);
            loc = 0;

            rc = ts_ps_out_location(m, ts_ps_get32((uint8_t *) v.mv_data
                                                   + 4), &loc);
            if (rc != TS_OK) {
                return rc;
            }

            if (depth >= m->nlocs_cap) {
                m->nlocs_cap = m->nlocs_cap ? m->nlocs_cap * 2 : 64;
                locs = realloc(m->locs, m->nlocs_cap * sizeof(uint32_t));
                if (locs == NULL) {
                    return TS_ERR_NOMEM;
                }

                m->locs = locs;
            }

            m->locs[depth] = loc;
        }

        rc = ts_pprof_add_sample(m->out, m->locs, depth, &m->sums.val[i],
                                 NULL, 0, &why);
        if (rc != TS_OK) {
            ts_ps_fmt(m->err, m->errlen, "%s", why.msg);
            return rc;
        }
    }

    return TS_OK;
}


static int
ts_ps_obj(ts_ps_merge_t *m, uint8_t kind, uint32_t id, MDB_val *v)
{
    int      rc;
    uint8_t  key[TS_PS_OBJ_KEY];
    MDB_val  k;

    ts_ps_obj_key(key, m->src.tenant, kind, id);
    k.mv_data = key;
    k.mv_size = TS_PS_OBJ_KEY;

    rc = mdb_get(m->src.txn, m->src.ps->dbi[TS_PS_OBJ], &k, v);
    if (rc == MDB_NOTFOUND) {
        ts_ps_fmt(m->err, m->errlen, "object '%c' %u missing in \"%s\"",
                  kind, id, m->src.ps->file);
        return TS_ERR_CORRUPT;
    }

    return rc ? ts_ps_mdb_err(m->src.ps, m->err, m->errlen, rc, "mdb_get")
              : TS_OK;
}


/* the out id memoized for (kind, id); *slot to fill when fresh */

static int64_t *
ts_ps_memo(ts_ps_merge_t *m, uint8_t kind, uint32_t id, int *fresh)
{
    int64_t  *slot;

    slot = ts_ps_map_slot(&m->memo, (uint64_t) kind << 32 | id, fresh);
    if (slot == NULL) {
        ts_ps_fmt(m->err, m->errlen, "out of memory");
    }

    return slot;
}


static int
ts_ps_out_string(ts_ps_merge_t *m, uint32_t id, uint32_t *out)
{
    int       rc, fresh;
    int64_t  *slot;
    MDB_val   v;

    if (id == 0) {
        *out = 0;
        return TS_OK;
    }

    slot = ts_ps_memo(m, TS_PS_STRING, id, &fresh);
    if (slot == NULL) {
        return TS_ERR_NOMEM;
    }

    if (!fresh) {
        *out = (uint32_t) *slot;
        return TS_OK;
    }

    rc = ts_ps_obj(m, TS_PS_STRING, id, &v);
    if (rc != TS_OK) {
        return rc;
    }

    *out = ts_pprof_add_string(m->out, v.mv_data, v.mv_size);
    if (*out == TS_PPROF_NONE) {
        ts_ps_fmt(m->err, m->errlen, "merged profile too large");
        return TS_ERR_LIMIT;
    }

    /* the memo table may have moved: look the slot up again */
    *ts_ps_memo(m, TS_PS_STRING, id, &fresh) = *out;

    return TS_OK;
}


static int
ts_ps_out_function(ts_ps_merge_t *m, uint32_t id, uint32_t *out)
{
    int                  rc, fresh;
    int64_t             *slot;
    MDB_val              v;
    const uint8_t       *b;
    ts_pprof_function_t  f;

    slot = ts_ps_memo(m, TS_PS_FUNCTION, id, &fresh);
    if (slot == NULL) {
        return TS_ERR_NOMEM;
    }

    if (!fresh) {
        *out = (uint32_t) *slot;
        return TS_OK;
    }

    rc = ts_ps_obj(m, TS_PS_FUNCTION, id, &v);
    if (rc != TS_OK) {
        return rc;
    }

    if (v.mv_size != TS_PS_FUNC_LEN) {
        return TS_ERR_CORRUPT;
    }

    b = v.mv_data;
    f.start_line = (int64_t) ts_ps_get64(b + 12);

    rc = ts_ps_out_string(m, ts_ps_get32(b), &f.name);
    if (rc == TS_OK) {
        rc = ts_ps_out_string(m, ts_ps_get32(b + 4), &f.system_name);
    }

    if (rc == TS_OK) {
        rc = ts_ps_out_string(m, ts_ps_get32(b + 8), &f.filename);
    }

    if (rc != TS_OK) {
        return rc;
    }

    *out = ts_pprof_add_function(m->out, &f);
    if (*out == 0) {
        ts_ps_fmt(m->err, m->errlen, "merged profile too large");
        return TS_ERR_LIMIT;
    }

    *ts_ps_memo(m, TS_PS_FUNCTION, id, &fresh) = *out;

    return TS_OK;
}


static int
ts_ps_out_mapping(ts_ps_merge_t *m, uint32_t id, uint32_t *out,
    uint64_t *start)
{
    int                  rc, fresh;
    int64_t             *slot;
    MDB_val              v;
    const uint8_t       *b;
    ts_pprof_mapping_t   mp;

    rc = ts_ps_obj(m, TS_PS_MAPPING, id, &v);
    if (rc != TS_OK) {
        return rc;
    }

    if (v.mv_size != TS_PS_MAP_LEN) {
        return TS_ERR_CORRUPT;
    }

    b = v.mv_data;
    *start = ts_ps_get64(b + 28);

    slot = ts_ps_memo(m, TS_PS_MAPPING, id, &fresh);
    if (slot == NULL) {
        return TS_ERR_NOMEM;
    }

    if (!fresh) {
        *out = (uint32_t) *slot;
        return TS_OK;
    }

    memset(&mp, 0, sizeof(mp));
    mp.offset = ts_ps_get64(b + 8);
    mp.start = *start;
    mp.limit = ts_ps_get64(b + 36);
    mp.has_functions = b[44] & 1;
    mp.has_filenames = (b[44] >> 1) & 1;
    mp.has_line_numbers = (b[44] >> 2) & 1;
    mp.has_inline_frames = (b[44] >> 3) & 1;

    rc = ts_ps_out_string(m, ts_ps_get32(b + 16), &mp.build_id);
    if (rc == TS_OK) {
        rc = ts_ps_out_string(m, ts_ps_get32(b + 24), &mp.file);
    }

    if (rc != TS_OK) {
        return rc;
    }

    *out = ts_pprof_add_mapping(m->out, &mp);
    if (*out == 0) {
        ts_ps_fmt(m->err, m->errlen, "merged profile too large");
        return TS_ERR_LIMIT;
    }

    *ts_ps_memo(m, TS_PS_MAPPING, id, &fresh) = *out;

    return TS_OK;
}


static int
ts_ps_out_location(ts_ps_merge_t *m, uint32_t id, uint32_t *out)
{
    int              rc, fresh;
    int64_t         *slot;
    uint32_t         j, n, mapping;
    uint64_t         addr, start;
    MDB_val          v;
    const uint8_t   *b;
    ts_pprof_line_t  lines[64], *ln;

    slot = ts_ps_memo(m, TS_PS_LOCATION, id, &fresh);
    if (slot == NULL) {
        return TS_ERR_NOMEM;
    }

    if (!fresh) {
        *out = (uint32_t) *slot;
        return TS_OK;
    }

    rc = ts_ps_obj(m, TS_PS_LOCATION, id, &v);
    if (rc != TS_OK) {
        return rc;
    }

    if (v.mv_size < TS_PS_LOC_HDR
        || (v.mv_size - TS_PS_LOC_HDR) % TS_PS_LINE_LEN != 0)
    {
        return TS_ERR_CORRUPT;
    }

    n = (uint32_t) ((v.mv_size - TS_PS_LOC_HDR) / TS_PS_LINE_LEN);

    ln = (n <= 64) ? lines : malloc(n * sizeof(ts_pprof_line_t));
    if (ln == NULL) {
        return TS_ERR_NOMEM;
    }

    /* LMDB data stays valid while the read transaction lives */

    b = v.mv_data;
    addr = ts_ps_get64(b + 4);
    mapping = 0;
    start = 0;
    rc = TS_OK;

    if (ts_ps_get32(b) != 0) {
        rc = ts_ps_out_mapping(m, ts_ps_get32(b), &mapping, &start);
        addr += start;
    }

    for (j = 0; rc == TS_OK && j < n; j++) {
        b = (const uint8_t *) v.mv_data + TS_PS_LOC_HDR
            + (size_t) j * TS_PS_LINE_LEN;
        ln[j].line = (int64_t) ts_ps_get64(b + 4);
        ln[j].column = (int64_t) ts_ps_get64(b + 12);
        rc = ts_ps_out_function(m, ts_ps_get32(b), &ln[j].function);
    }

    if (rc == TS_OK) {
        b = v.mv_data;
        *out = ts_pprof_add_location(m->out, mapping, addr, b[12], ln, n);
        if (*out == 0) {
            ts_ps_fmt(m->err, m->errlen, "merged profile too large");
            rc = TS_ERR_LIMIT;
        }
    }

    if (ln != lines) {
        free(ln);
    }

    if (rc == TS_OK) {
        *ts_ps_memo(m, TS_PS_LOCATION, id, &fresh) = *out;
    }

    return rc;
}


typedef struct {
    ts_ps_src_t          src;
    const ts_pstore_query_t  *q;
    ts_pstore_series_pt  cb;
    void                *data;
    char                *err;
    size_t               errlen;
} ts_ps_walk_t;


static int
ts_ps_walk_series(void *data, uint64_t ref)
{
    int            rc;
    uint8_t        key[TS_PS_ROW_KEY];
    uint32_t       n;
    uint64_t       rows, bytes;
    int64_t        t;
    MDB_val        k, v;
    MDB_cursor    *cur;
    ts_label_t     l[TS_SELECT_MAX_LABELS];
    ts_ps_walk_t  *w;

    w = data;

    rc = ts_ps_src_labels(&w->src, ref, l, TS_SELECT_MAX_LABELS, &n);
    if (rc != TS_OK) {
        return rc;
    }

    if (mdb_cursor_open(w->src.txn, w->src.ps->dbi[TS_PS_ROWS], &cur)) {
        return TS_ERR_IO;
    }

    ts_ps_row_key(key, w->src.tenant, (uint32_t) ref, w->q->from);
    k.mv_data = key;
    k.mv_size = TS_PS_ROW_KEY;
    rows = 0;
    bytes = 0;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (memcmp(k.mv_data, key, 8) != 0) {
            break;
        }

        t = (int64_t) (ts_ps_get64((uint8_t *) k.mv_data + 8) ^ TS_PS_SIGN);
        if (t > w->q->until) {
            break;
        }

        rows++;
        bytes += k.mv_size + v.mv_size;
    }

    mdb_cursor_close(cur);

    return w->cb(w->data, l, n, rows, bytes) ? TS_ERR_AGAIN : TS_OK;
}


int
ts_pstore_series(ts_pstore_t *ps, const ts_pstore_query_t *q,
    ts_pstore_series_pt cb, void *data, char *err, size_t errlen)
{
    int           rc;
    ts_ps_walk_t  w;

    if (err != NULL && errlen) {
        err[0] = '\0';
    }

    memset(&w, 0, sizeof(ts_ps_walk_t));
    w.src.ps = ps;
    w.q = q;
    w.cb = cb;
    w.data = data;
    w.err = err;
    w.errlen = errlen;

    rc = ts_ps_read(&w.src, q, ts_ps_walk_series, &w, err, errlen);

    return (rc == TS_ERR_AGAIN) ? TS_OK : rc;
}


typedef struct {
    ts_ps_src_t                src;
    const ts_pstore_query_t   *q;
    ts_pstore_row_pt           cb;
    void                      *data;
    int                        stop;
    char                      *err;
    size_t                     errlen;
} ts_ps_totals_t;


/* the sum of a row's values; -1 if the row is corrupt */

static int
ts_ps_row_total(const MDB_val *v, int64_t *total)
{
    uint64_t        x, n, i;
    const uint8_t  *p, *end;

    p = v->mv_data;
    end = p + v->mv_size;
    *total = 0;

    if (v->mv_size < 1 || *p++ != 1
        || ts_ps_uvarint_get(&p, end, &x) != 0
        || ts_ps_uvarint_get(&p, end, &x) != 0
        || ts_ps_uvarint_get(&p, end, &n) != 0)
    {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (ts_ps_uvarint_get(&p, end, &x) != 0
            || ts_ps_uvarint_get(&p, end, &x) != 0)
        {
            return -1;
        }

        *total += ts_ps_unzigzag(x);
    }

    return 0;
}


static int
ts_ps_totals_series(void *data, uint64_t ref)
{
    int              rc;
    int64_t          t, total;
    uint8_t          key[TS_PS_ROW_KEY];
    uint32_t         n;
    MDB_val          k, v;
    MDB_cursor      *cur;
    ts_label_t       l[TS_SELECT_MAX_LABELS];
    ts_ps_totals_t  *w;

    w = data;

    rc = ts_ps_src_labels(&w->src, ref, l, TS_SELECT_MAX_LABELS, &n);
    if (rc != TS_OK) {
        return rc;
    }

    rc = mdb_cursor_open(w->src.txn, w->src.ps->dbi[TS_PS_ROWS], &cur);
    if (rc != 0) {
        return ts_ps_mdb_err(w->src.ps, w->err, w->errlen, rc,
                             "mdb_cursor_open");
    }

    ts_ps_row_key(key, w->src.tenant, (uint32_t) ref, w->q->from);
    k.mv_data = key;
    k.mv_size = TS_PS_ROW_KEY;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != TS_PS_ROW_KEY || memcmp(k.mv_data, key, 8) != 0) {
            break;
        }

        t = (int64_t) (ts_ps_get64((uint8_t *) k.mv_data + 8) ^ TS_PS_SIGN);
        if (t > w->q->until) {
            break;
        }

        if (ts_ps_row_total(&v, &total) != 0) {
            mdb_cursor_close(cur);
            ts_ps_fmt(w->err, w->errlen, "corrupt profile row in \"%s\"",
                      w->src.ps->file);
            return TS_ERR_CORRUPT;
        }

        if (w->cb(w->data, l, n, t, total) != 0) {
            w->stop = 1;
            break;
        }
    }

    mdb_cursor_close(cur);

    if (w->stop) {
        return TS_ERR_AGAIN;
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return ts_ps_mdb_err(w->src.ps, w->err, w->errlen, rc,
                             "mdb_cursor_get");
    }

    return TS_OK;
}


int
ts_pstore_totals(ts_pstore_t *ps, const ts_pstore_query_t *q,
    ts_pstore_row_pt cb, void *data, char *err, size_t errlen)
{
    int             rc;
    ts_ps_totals_t  w;

    if (err != NULL && errlen) {
        err[0] = '\0';
    }

    memset(&w, 0, sizeof(ts_ps_totals_t));
    w.src.ps = ps;
    w.q = q;
    w.cb = cb;
    w.data = data;
    w.err = err;
    w.errlen = errlen;

    rc = ts_ps_read(&w.src, q, ts_ps_totals_series, &w, err, errlen);

    return (rc == TS_ERR_AGAIN && w.stop) ? TS_OK : rc;
}
