/*
 * Copyright (C) ngx_tsdb authors
 *
 * Metric metadata in shared memory: per tenant, a metric family's type,
 * help and unit, as remote write sends them (1.0: WriteRequest.metadata
 * by family name; 2.0: per series, under the series' metric name).  The
 * table sits next to the head in the zone, so every worker reads what
 * any worker stored, and follows the head's durability rules: a writer
 * updates the table, then logs a METADATA record in its WAL (every
 * entry of the request, changed or not, so a retry is logged again);
 * checkpoints copy changed entries into LMDB (ts_db_batch_metadata());
 * replay rebuilds the table from the WAL.
 *
 * Layout: a header, an open-addressing table of slots (linear probing,
 * never deleted) and a bump arena of immutable blobs.  Writers take the
 * region's owner-pid lock; readers take no lock: a slot is published
 * with its "used" word last, and a changed entry gets a new blob whose
 * offset replaces the old one atomically, so a reader sees either
 * version whole.  Each slot has a generation bumped after every change
 * and the generation its last durable copy had; a lock taken over from
 * a dead writer marks every slot changed.
 */

#ifndef TS_META_H
#define TS_META_H


#include <stddef.h>
#include <stdint.h>

#include "ts_core.h"


/* a WAL record type of its own, see docs/format/wal.md */
#define TS_META_WAL_TYPE      5

#define TS_META_NAME_MAX      1024
#define TS_META_TEXT_MAX      65535


typedef struct ts_meta_hdr_s  ts_meta_hdr_t;


typedef struct {
    ts_meta_hdr_t          *hdr;
    int64_t                 pid;
    ts_pid_alive_pt         alive;
} ts_meta_t;


/* one metric family; strings are not NUL-terminated */
typedef struct {
    uint32_t                tenant;     /* the head's tenant id */
    uint32_t                type;       /* ts_metric_type_t */
    const char             *name;
    size_t                  name_len;
    const char             *help;
    size_t                  help_len;
    const char             *unit;
    size_t                  unit_len;

    /* from the table: for checkpoints */
    uint32_t                slot;
    uint32_t                gen;
    unsigned                dirty:1;    /* changed since its last
                                           durable copy */
} ts_meta_entry_t;


typedef struct {
    uint32_t                entries;
    uint32_t                slots;
    uint64_t                arena_used;
    uint64_t                arena_size;
} ts_meta_stats_t;


/* Called per entry; returns 0 to go on, else stops (and is returned). */
typedef int (*ts_meta_pt)(void *data, const ts_meta_entry_t *e);


/* The part of a zone region of size bytes that the table takes. */
size_t ts_meta_region_size(size_t size);

/*
 * Formats mem, or takes over a table of the same layout (a reload).
 * TS_ERR_INVALID if size is below 64 KiB.
 */
int ts_meta_open(ts_meta_t *m, void *mem, size_t size, int64_t pid,
    ts_pid_alive_pt alive);

/*
 * Stores e (tenant, type, name, help, unit).  Returns 1 if the entry is
 * new or changed, 0 if it was already so, TS_ERR_INVALID for an empty
 * or too long name or text, TS_ERR_FULL when the table or its arena is
 * full (nothing changed).
 */
int ts_meta_set(ts_meta_t *m, const ts_meta_entry_t *e);

/* TS_ERR_NOTFOUND if the tenant has no such family. */
int ts_meta_get(ts_meta_t *m, uint32_t tenant, const char *name,
    size_t len, ts_meta_entry_t *out);

/* Every entry, in slot order; all tenants. */
int ts_meta_each(ts_meta_t *m, ts_meta_pt cb, void *data);

/* After a checkpoint made slot's entry at generation gen durable. */
void ts_meta_saved(ts_meta_t *m, uint32_t slot, uint32_t gen);

void ts_meta_stats(ts_meta_t *m, ts_meta_stats_t *st);


/*
 * The METADATA WAL record: uvarint count, then per entry tenant name,
 * family name, help and unit as uvarint length + bytes, and the type as
 * one byte.  ts_meta_record_size() is an upper bound for encode().
 */
typedef struct {
    const char             *tenant;
    size_t                  tenant_len;
    ts_meta_entry_t         e;          /* e.tenant unused */
} ts_meta_record_t;

size_t ts_meta_record_size(const ts_meta_record_t *r, size_t n);
int ts_meta_record_encode(uint8_t *buf, size_t size,
    const ts_meta_record_t *r, size_t n, size_t *len);

/*
 * Calls cb per entry of a record payload, strings pointing into it.
 * TS_ERR_CORRUPT for a malformed payload (nothing is called after the
 * first bad byte; entries before it were delivered).
 */
typedef int (*ts_meta_record_pt)(void *data, const ts_meta_record_t *r);

int ts_meta_record_decode(const uint8_t *p, size_t len,
    ts_meta_record_pt cb, void *data);


#endif /* TS_META_H */
