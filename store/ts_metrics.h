/*
 * Copyright (C) ngx_tsdb authors
 *
 * The module's own metrics: counters, gauges and histograms with labels,
 * kept in a memory region shared by all worker processes.  Every process
 * owns one slot of cells and is the only writer of it, so hot paths never
 * contend; a scrape sums the slots.  See ts_metrics.c for the invariants.
 */

#ifndef TS_METRICS_H
#define TS_METRICS_H


#include <stddef.h>
#include <stdint.h>

#include "ts_core.h"


#define TS_METRICS_MAX_LABELS     4
#define TS_METRICS_LABELS_LEN     128


typedef enum {
    TS_MFAM_COUNTER = 0,
    TS_MFAM_GAUGE,
    TS_MFAM_HISTOGRAM
} ts_mfam_type_t;


/*
 * A metric family, described by a static table compiled into the binary.
 * Gauges are per process: a dead process's gauges are left out of a
 * scrape and reset when its slot is reused.  Histogram buckets are the
 * ascending upper bounds without +Inf.
 */
typedef struct {
    const char          *name;
    const char          *help;
    ts_mfam_type_t       type;
    unsigned             nlabels;
    const char          *labels[TS_METRICS_MAX_LABELS];
    unsigned             nbuckets;
    const double        *buckets;
    unsigned             flags;
} ts_metric_family_t;


/* flags: a gauge reported as the maximum over processes, not the sum */
#define TS_MFAM_MAX  0x01


typedef struct ts_metrics_hdr_s  ts_metrics_hdr_t;

/* A process-local handle on a shared region. */
typedef struct {
    ts_metrics_hdr_t            *hdr;
    const ts_metric_family_t    *families;
    unsigned                     nfamilies;
} ts_metrics_t;


size_t ts_metrics_region_size(unsigned nslots, unsigned nseries,
    unsigned ncells);

/*
 * Formats the region, or reuses it when it already holds a registry of
 * the same layout (an nginx reload hands the old zone back).  Returns
 * TS_OK, or TS_ERR_INVALID when the region is too small or a family is
 * malformed.
 */
int ts_metrics_open(ts_metrics_t *m, void *mem, size_t size,
    const ts_metric_family_t *families, unsigned nfamilies,
    unsigned nslots, unsigned nseries, unsigned ncells);

/*
 * Claims a slot for the calling process: a free one, or the slot of a
 * dead process, whose counters the caller continues (so totals stay
 * monotonic) and whose gauges are reset.  Returns the slot index or
 * TS_ERR_FULL.
 */
int ts_metrics_claim_slot(ts_metrics_t *m, int64_t pid,
    ts_pid_alive_pt alive);

/*
 * Finds or creates the series of a family with the given label values
 * (one per label name of the family).  Returns the series id or an error:
 * TS_ERR_INVALID for a bad family, TS_ERR_LIMIT for label values longer
 * than TS_METRICS_LABELS_LEN in all, TS_ERR_FULL when the table is full.
 */
int ts_metrics_series(ts_metrics_t *m, ts_lock_t *lock, unsigned family,
    const char *const *values);

void ts_metrics_add(ts_metrics_t *m, int slot, int series, uint64_t delta);
void ts_metrics_gauge_add(ts_metrics_t *m, int slot, int series,
    int64_t delta);
void ts_metrics_gauge_set(ts_metrics_t *m, int slot, int series,
    int64_t value);
void ts_metrics_observe(ts_metrics_t *m, int slot, int series, double v);

/* Sums of a counter's or a gauge's cells over all slots (tests, glue). */
uint64_t ts_metrics_counter_value(ts_metrics_t *m, int series);

/* Prometheus text format 0.0.4. */
int ts_metrics_render(ts_metrics_t *m, ts_pid_alive_pt alive,
    ts_write_pt write, void *data);

/* Shortest text that reads back as v; NaN, +Inf, -Inf as Prometheus. */
size_t ts_fmt_double(char *buf, size_t size, double v);


#endif /* TS_METRICS_H */
