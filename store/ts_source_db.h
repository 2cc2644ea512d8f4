/*
 * Copyright (C) ngx_tsdb authors
 *
 * The LMDB index of a zone (ts_db.h) as a ts_source_t of series for one
 * tenant, so selection and remote read see what checkpoints persisted.
 * Chunks come with the encoding they were stored with: XOR for floats,
 * TS_HIST_ENCODING / TS_FHIST_ENCODING for native histograms (readers
 * such as ts_sset decode each by its encoding and leave out unknown
 * ones).
 */

#ifndef TS_SOURCE_DB_H
#define TS_SOURCE_DB_H


#include "ts_db.h"
#include "ts_select.h"


typedef struct {
    ts_source_t             src;
    ts_db_t                *db;
    ts_db_rtxn_t           *txn;
    const char             *tenant;
    size_t                  tenant_len;
    uint32_t                tenant_id;
    int                     found;
} ts_source_db_t;


/* tenant must outlive the source; ts_source_db_free() when done. */
void ts_source_db_init(ts_source_db_t *ds, ts_db_t *db, const char *tenant,
    size_t len);
void ts_source_db_free(ts_source_db_t *ds);


#endif /* TS_SOURCE_DB_H */
