/*
 * Copyright (C) ngx_tsdb authors
 *
 * LMDB source.  A read transaction is held only between the source's
 * begin and end (one synchronous step of a reader), then reset, so the
 * process can grow the map between steps; the handle is kept and renewed
 * for the next step.  The tenant is looked up at every begin: a tenant
 * whose first checkpoint lands between two steps shows up from then on.
 */

#include <string.h>

#include "ts_source_db.h"


static int ts_source_db_begin(void *data);
static void ts_source_db_end(void *data);
static int ts_source_db_postings(void *data, const char *name, size_t nlen,
    const char *value, size_t vlen, ts_pit_t *it);
static int ts_source_db_next(ts_pit_t *it, uint64_t *ref);
static int ts_source_db_seek(ts_pit_t *it, uint64_t target, uint64_t *ref);
static void ts_source_db_close(ts_pit_t *it);
static int ts_source_db_empty(ts_pit_t *it, uint64_t *ref);
static int ts_source_db_values(void *data, const char *name, size_t nlen,
    ts_source_str_pt cb, void *cbdata);
static int ts_source_db_labels(void *data, uint64_t ref, ts_label_t *out,
    uint32_t max, uint32_t *n);
static int ts_source_db_chunks(void *data, uint64_t ref, int64_t mint,
    int64_t maxt, ts_source_chunk_pt cb, void *cbdata);


static const ts_pit_ops_t  ts_source_db_ops = {
    ts_source_db_next, ts_source_db_seek, ts_source_db_close
};

static const ts_pit_ops_t  ts_source_db_empty_ops = {
    ts_source_db_empty, NULL, NULL
};


void
ts_source_db_init(ts_source_db_t *ds, ts_db_t *db, const char *tenant,
    size_t len)
{
    memset(ds, 0, sizeof(ts_source_db_t));

    ds->db = db;
    ds->tenant = tenant;
    ds->tenant_len = len;

    ds->src.data = ds;
    ds->src.begin = ts_source_db_begin;
    ds->src.end = ts_source_db_end;
    ds->src.postings = ts_source_db_postings;
    ds->src.label_values = ts_source_db_values;
    ds->src.labels = ts_source_db_labels;
    ds->src.chunks = ts_source_db_chunks;
}


void
ts_source_db_free(ts_source_db_t *ds)
{
    if (ds->txn != NULL) {
        ts_db_rtxn_abort(ds->txn);
        ds->txn = NULL;
    }
}


static int
ts_source_db_begin(void *data)
{
    int              rc;
    ts_source_db_t  *ds;

    ds = data;

    if (ds->txn == NULL) {
        rc = ts_db_rtxn_begin(ds->db, &ds->txn);
        if (rc == TS_ERR_NOMEM) {
            ds->txn = NULL;
        }

    } else {
        rc = ts_db_rtxn_renew(ds->txn);
    }

    if (rc != TS_OK) {
        return rc;
    }

    rc = ts_db_tenant(ds->txn, ds->tenant, ds->tenant_len, &ds->tenant_id);
    ds->found = (rc == TS_OK);

    return (rc == TS_OK || rc == TS_ERR_NOTFOUND) ? TS_OK : rc;
}


static void
ts_source_db_end(void *data)
{
    ts_source_db_t  *ds;

    ds = data;

    if (ds->txn != NULL) {
        ts_db_rtxn_reset(ds->txn);
    }
}


static int
ts_source_db_postings(void *data, const char *name, size_t nlen,
    const char *value, size_t vlen, ts_pit_t *it)
{
    int               rc;
    ts_source_db_t   *ds;
    ts_db_postings_t  p;

    _Static_assert(sizeof(ts_db_postings_t) <= sizeof(it->st),
                   "ts_db_postings_t must fit in ts_pit_t");

    ds = data;

    if (!ds->found) {
        it->ops = &ts_source_db_empty_ops;
        return TS_OK;
    }

    rc = ts_db_postings_open(ds->txn, &p, ds->tenant_id, name, nlen, value,
                             vlen);
    if (rc != TS_OK) {
        return rc;
    }

    it->ops = &ts_source_db_ops;
    memcpy(it->st, &p, sizeof(p));

    return TS_OK;
}


static int
ts_source_db_next(ts_pit_t *it, uint64_t *ref)
{
    int               rc;
    ts_db_postings_t  p;

    memcpy(&p, it->st, sizeof(p));
    rc = ts_db_postings_next(&p, ref);
    memcpy(it->st, &p, sizeof(p));

    return rc;
}


static int
ts_source_db_seek(ts_pit_t *it, uint64_t target, uint64_t *ref)
{
    int               rc;
    ts_db_postings_t  p;

    memcpy(&p, it->st, sizeof(p));
    rc = ts_db_postings_seek(&p, target, ref);
    memcpy(it->st, &p, sizeof(p));

    return rc;
}


static void
ts_source_db_close(ts_pit_t *it)
{
    ts_db_postings_t  p;

    memcpy(&p, it->st, sizeof(p));
    ts_db_postings_close(&p);
    memcpy(it->st, &p, sizeof(p));
}


static int
ts_source_db_empty(ts_pit_t *it, uint64_t *ref)
{
    (void) it;
    (void) ref;

    return 0;
}


static int
ts_source_db_values(void *data, const char *name, size_t nlen,
    ts_source_str_pt cb, void *cbdata)
{
    ts_source_db_t  *ds;

    ds = data;

    if (!ds->found) {
        return TS_OK;
    }

    return ts_db_label_values(ds->txn, ds->tenant_id, name, nlen, cb,
                              cbdata);
}


static int
ts_source_db_labels(void *data, uint64_t ref, ts_label_t *out,
    uint32_t max, uint32_t *n)
{
    int              rc;
    uint32_t         tenant;
    ts_source_db_t  *ds;

    ds = data;

    if (!ds->found) {
        return TS_ERR_NOTFOUND;
    }

    rc = ts_db_series_labels(ds->txn, ref, &tenant, out, max, n);
    if (rc == TS_OK && tenant != ds->tenant_id) {
        return TS_ERR_NOTFOUND;
    }

    return rc;
}


static int
ts_source_db_chunks(void *data, uint64_t ref, int64_t mint, int64_t maxt,
    ts_source_chunk_pt cb, void *cbdata)
{
    int                rc;
    ts_db_chunk_t      c;
    ts_db_chunks_t     it;
    ts_source_db_t    *ds;
    ts_source_chunk_t  sc;

    ds = data;

    if (!ds->found) {
        return TS_ERR_NOTFOUND;
    }

    rc = ts_db_chunks_open(ds->txn, &it, ref, mint, maxt);
    if (rc != TS_OK) {
        return rc;
    }

    while ((rc = ts_db_chunks_next(&it, &c)) == 1) {
        sc.mint = c.mint;
        sc.maxt = c.maxt;
        sc.samples = 0;
        sc.encoding = c.encoding;
        sc.data = c.data;
        sc.len = c.len;

        if (cb(cbdata, &sc) != 0) {
            rc = 0;
            break;
        }
    }

    ts_db_chunks_close(&it);

    return rc < 0 ? rc : TS_OK;
}
