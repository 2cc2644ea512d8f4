/*
 * Copyright (C) ngx_tsdb authors
 *
 * A text dump of everything an index answers through the public
 * ts_db.h read API: tenants, label names, label values, every postings
 * list (all series, each name, each name="value", and a seek into each
 * list), series labels, chunks (with a CRC-32C of their bytes),
 * metadata and exemplar blocks.  Used by test_db.c's migration tests and
 * by store/tests/data/lmdb-v1/gen.c, which wrote the expected dump with
 * the version-1 code, so the same function must give the same text for
 * both versions.  Only calls that exist in both.
 */

#ifndef DB_DUMP_H
#define DB_DUMP_H


#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_crc32c.h"
#include "ts_db.h"


typedef struct {
    char      **s;
    size_t     *len;
    uint32_t   *id;
    size_t      n;
    size_t      cap;
} dd_strs_t;


static int
dd_push(dd_strs_t *v, const char *s, size_t len, uint32_t id)
{
    size_t  cap;

    if (v->n == v->cap) {
        cap = v->cap ? v->cap * 2 : 64;
        v->s = realloc(v->s, cap * sizeof(char *));
        v->len = realloc(v->len, cap * sizeof(size_t));
        v->id = realloc(v->id, cap * sizeof(uint32_t));

        if (v->s == NULL || v->len == NULL || v->id == NULL) {
            return -1;
        }

        v->cap = cap;
    }

    v->s[v->n] = malloc(len + 1);
    if (v->s[v->n] == NULL) {
        return -1;
    }

    memcpy(v->s[v->n], s, len);
    v->s[v->n][len] = '\0';
    v->len[v->n] = len;
    v->id[v->n] = id;
    v->n++;

    return 0;
}


static void
dd_free(dd_strs_t *v)
{
    size_t  i;

    for (i = 0; i < v->n; i++) {
        free(v->s[i]);
    }

    free(v->s);
    free(v->len);
    free(v->id);
    memset(v, 0, sizeof(dd_strs_t));
}


static int
dd_str(void *data, const char *s, size_t len)
{
    return dd_push(data, s, len, 0);
}


static int
dd_tenant(void *data, const char *name, size_t len, uint32_t id)
{
    return dd_push(data, name, len, id);
}


static int
dd_meta(void *data, const ts_db_metadata_t *md)
{
    fprintf(data, "meta %u %.*s unit=%.*s help=%.*s\n", md->type,
            (int) md->name_len, md->name, (int) md->unit_len, md->unit,
            (int) md->help_len, md->help);
    return 0;
}


static int
dd_xblock(void *data, const ts_db_exemplars_t *b)
{
    fprintf(data, "exemplars %" PRIu64 "..%" PRIu64 " %zu bytes crc %08x\n",
            b->first, b->last, b->len, ts_crc32c(0, b->data, b->len));
    return 0;
}


/* One postings list: every id, then a seek to every id + 2. */

static int
dd_list(FILE *f, ts_db_rtxn_t *t, uint32_t tenant, const char *what,
    const char *name, size_t nlen, const char *value, size_t vlen,
    uint64_t **idsp, size_t *np)
{
    int               rc;
    size_t            n, cap, i;
    uint64_t          id, *ids;
    ts_db_postings_t  p;

    n = 0;
    cap = 0;
    ids = NULL;

    rc = ts_db_postings_open(t, &p, tenant, name, nlen, value, vlen);
    if (rc != TS_OK) {
        return rc;
    }

    fprintf(f, "%s:", what);

    while ((rc = ts_db_postings_next(&p, &id)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ids = realloc(ids, cap * sizeof(uint64_t));
            if (ids == NULL) {
                ts_db_postings_close(&p);
                return TS_ERR_NOMEM;
            }
        }

        ids[n++] = id;
        fprintf(f, " %" PRIu64, id);
    }

    ts_db_postings_close(&p);

    if (rc < 0) {
        free(ids);
        return rc;
    }

    fprintf(f, "\n  seek +2:");

    for (i = 0; i < n; i++) {
        rc = ts_db_postings_open(t, &p, tenant, name, nlen, value, vlen);
        if (rc != TS_OK) {
            free(ids);
            return rc;
        }

        rc = ts_db_postings_seek(&p, ids[i] + 2, &id);
        ts_db_postings_close(&p);

        if (rc < 0) {
            free(ids);
            return rc;
        }

        if (rc == 1) {
            fprintf(f, " %" PRIu64, id);

        } else {
            fprintf(f, " -");
        }
    }

    fprintf(f, "\n");

    if (idsp != NULL) {
        *idsp = ids;
        *np = n;

    } else {
        free(ids);
    }

    return TS_OK;
}


static int
dd_tenant_dump(FILE *f, ts_db_rtxn_t *t, uint32_t tenant)
{
    int             rc;
    char            what[96];
    size_t          i, j, n;
    uint32_t        nl, k, tid;
    uint64_t       *ids;
    dd_strs_t       names, values;
    ts_label_t      l[64];
    ts_db_chunk_t   c;
    ts_db_chunks_t  it;

    memset(&names, 0, sizeof(dd_strs_t));
    memset(&values, 0, sizeof(dd_strs_t));
    ids = NULL;

    rc = ts_db_label_names(t, tenant, dd_str, &names);
    if (rc != TS_OK) {
        goto done;
    }

    for (i = 0; i < names.n; i++) {
        fprintf(f, "name %zu %s\n", names.len[i], names.s[i]);

        snprintf(what, sizeof(what), "postings of name %zu", i);
        rc = dd_list(f, t, tenant, what, names.s[i], names.len[i], NULL, 0,
                     NULL, NULL);
        if (rc != TS_OK) {
            goto done;
        }

        rc = ts_db_label_values(t, tenant, names.s[i], names.len[i], dd_str,
                                &values);
        if (rc != TS_OK) {
            goto done;
        }

        for (j = 0; j < values.n; j++) {
            fprintf(f, "value %zu %s\n", values.len[j], values.s[j]);

            snprintf(what, sizeof(what), "postings of name %zu value %zu",
                     i, j);
            rc = dd_list(f, t, tenant, what, names.s[i], names.len[i],
                         values.s[j], values.len[j], NULL, NULL);
            if (rc != TS_OK) {
                goto done;
            }
        }

        dd_free(&values);
    }

    rc = dd_list(f, t, tenant, "all series", NULL, 0, NULL, 0, &ids, &n);
    if (rc != TS_OK) {
        goto done;
    }

    for (i = 0; i < n; i++) {
        rc = ts_db_series_labels(t, ids[i], &tid, l, 64, &nl);
        if (rc != TS_OK) {
            goto done;
        }

        fprintf(f, "series %" PRIu64 " tenant %u {", ids[i], tid);

        for (k = 0; k < nl; k++) {
            fprintf(f, "%s%.*s=\"%.*s\"", k ? ", " : "", (int) l[k].name_len,
                    l[k].name, (int) l[k].value_len, l[k].value);
        }

        fprintf(f, "}\n");

        rc = ts_db_chunks_open(t, &it, ids[i], INT64_MIN, INT64_MAX);
        if (rc != TS_OK) {
            goto done;
        }

        while ((rc = ts_db_chunks_next(&it, &c)) == 1) {
            fprintf(f, "  chunk %" PRId64 "..%" PRId64 " enc %u %zu bytes"
                    " crc %08x\n", c.mint, c.maxt, c.encoding, c.len,
                    ts_crc32c(0, c.data, c.len));
        }

        ts_db_chunks_close(&it);

        if (rc < 0) {
            goto done;
        }
    }

    rc = ts_db_metadata_list(t, tenant, dd_meta, f);

done:

    free(ids);
    dd_free(&names);
    dd_free(&values);

    return rc;
}


/* The whole index; TS_OK or the first error. */

static int
dd_dump(FILE *f, ts_db_t *db)
{
    int            rc;
    size_t         i;
    dd_strs_t      tenants;
    ts_db_rtxn_t  *t;

    memset(&tenants, 0, sizeof(dd_strs_t));

    rc = ts_db_rtxn_begin(db, &t);
    if (rc != TS_OK) {
        return rc;
    }

    rc = ts_db_tenants(t, dd_tenant, &tenants);

    for (i = 0; rc == TS_OK && i < tenants.n; i++) {
        fprintf(f, "tenant %s id %u\n", tenants.s[i], tenants.id[i]);
        rc = dd_tenant_dump(f, t, tenants.id[i]);
    }

    if (rc == TS_OK) {
        rc = ts_db_exemplars_each(t, dd_xblock, f);
    }

    ts_db_rtxn_abort(t);
    dd_free(&tenants);

    return rc;
}


#endif /* DB_DUMP_H */
