/*
 * Copyright (C) ngx_tsdb authors
 *
 * The profile store of a zone: one LMDB environment in
 * <path>/profiles/ holding, per tenant, deduplicated symbols (strings,
 * functions, mappings, locations), stacks as a parent-pointer tree,
 * profile series (labels incl. __profile_type__) with postings, and one
 * row per (series, profile) of (stack id, value) pairs.  The byte format
 * is docs/format/profiles.md; the invariants are at the top of
 * ts_pstore.c.
 *
 * Processes and threads as ts_db.h: open after fork(), in the process
 * that uses it; every call may come from any thread of that process;
 * writes serialize among themselves, reads never wait for writes.
 * Nothing here logs: calls return TS_OK or a negative ts_err_t and put
 * one line into err (or ts_pstore_errmsg() for puts).
 */

#ifndef TS_PSTORE_H
#define TS_PSTORE_H


#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ts_error.h"
#include "ts_labels.h"
#include "ts_pprof.h"
#include "ts_select.h"


#define TS_PSTORE_VERSION       1
#define TS_PSTORE_DIR           "profiles"      /* under the zone path */
#define TS_PSTORE_MAP_SIZE      ((size_t) 64 << 20)
#define TS_PSTORE_MAP_MAX       ((size_t) 64 << 30)
#define TS_PSTORE_MAX_LABELS    64
#define TS_PSTORE_LABEL_MAX     480     /* name + value bytes, see docs */
#define TS_PSTORE_TENANT_MAX    128
#define TS_PSTORE_ERR_MAX       (PATH_MAX + 256)

/* labels the store sets itself */
#define TS_PSTORE_TYPE_LABEL    "__profile_type__"


typedef struct ts_pstore_s  ts_pstore_t;


typedef struct {
    const char         *path;          /* zone path */
    size_t              map_size;      /* 0: 64 MiB */
    size_t              map_max;       /* 0: 64 GiB */
    uid_t               uid;           /* (uid_t) -1: keep */
    gid_t               gid;
    unsigned            nosync:1;      /* MDB_NOSYNC: tests only */
} ts_pstore_conf_t;


/*
 * One profile to store.  name is the __name__ label (process_cpu,
 * memory...); labels are the other series labels (service_name, user
 * labels), any order, names not starting with "__" (those are
 * reserved).  prof is a normalized profile (decoded, folded or built):
 * every sample type becomes its own series, typed
 * name:type:unit:period_type:period_unit as Pyroscope names them.
 * time_nanos is the row time when prof->time_nanos is 0.
 */
typedef struct {
    const char         *tenant;
    size_t              tenant_len;
    const char         *name;
    size_t              name_len;
    const ts_label_t   *labels;
    uint32_t            nlabels;
    int64_t             time_nanos;
    const ts_pprof_t   *prof;
} ts_pstore_put_t;


/* What one put wrote: new entries and bytes of keys plus values. */
typedef struct {
    uint32_t            series;        /* rows written */
    uint32_t            new_series;
    uint32_t            new_strings;
    uint32_t            new_functions;
    uint32_t            new_mappings;
    uint32_t            new_locations;
    uint32_t            new_nodes;
    uint64_t            symbol_bytes;  /* symbols, stacks, series */
    uint64_t            row_bytes;
} ts_pstore_stats_t;


/*
 * A query: series of profile_type whose labels satisfy the matchers
 * (may be none), rows with from <= time <= until (ns).
 */
typedef struct {
    const char         *tenant;
    size_t              tenant_len;
    const char         *type;          /* profile type id */
    size_t              type_len;
    const ts_matcher_t *matchers;
    uint32_t            nmatchers;
    int64_t             from;
    int64_t             until;
} ts_pstore_query_t;


/* Receives a series: its sorted labels and row count in the range. */
typedef int (*ts_pstore_series_pt)(void *data, const ts_label_t *l,
    uint32_t n, uint64_t rows, uint64_t row_bytes);


/*
 * Creates <path>/profiles (0700) if needed, owned by uid/gid, opens the
 * environment, clears stale readers and creates or checks the schema.
 * TS_ERR_VERSION, TS_ERR_CORRUPT, TS_ERR_IO with err set.
 */
int ts_pstore_open(ts_pstore_t **psp, const ts_pstore_conf_t *conf,
    char *err, size_t errlen);
void ts_pstore_close(ts_pstore_t *ps);
const char *ts_pstore_dir(const ts_pstore_t *ps);

/*
 * Stores one profile in one write transaction, committed (and synced)
 * before it returns: TS_OK means durable.  TS_ERR_INVALID for bad
 * labels or tenant (err says which), TS_ERR_FULL when the map cannot
 * grow, TS_ERR_IO.  st may be NULL.
 */
int ts_pstore_put(ts_pstore_t *ps, const ts_pstore_put_t *in,
    ts_pstore_stats_t *st, char *err, size_t errlen);

/*
 * As ts_pstore_put() for n profiles in one transaction: all are stored
 * or none (a Push request's profiles).  Every profile is split into
 * series by its string sample labels as Pyroscope does (ts_pstore.c);
 * st sums over the profiles.
 */
int ts_pstore_putv(ts_pstore_t *ps, const ts_pstore_put_t *in, uint32_t n,
    ts_pstore_stats_t *st, char *err, size_t errlen);

/*
 * Merges the rows a query selects into out (initialized, empty) with
 * pprof's Merge semantics: values of equal stacks summed, time the
 * earliest, duration summed, period the largest.  Rows are streamed;
 * memory grows with the distinct stacks and symbols of the result
 * only.  *nprofiles (may be NULL) gets the number of rows merged.
 * TS_ERR_INVALID for a bad type or matcher, TS_ERR_LIMIT from out's
 * limits.
 */
int ts_pstore_merge(ts_pstore_t *ps, const ts_pstore_query_t *q,
    ts_pprof_t *out, uint64_t *nprofiles, char *err, size_t errlen);

/* Every series of the tenant the query selects (type may be NULL). */
int ts_pstore_series(ts_pstore_t *ps, const ts_pstore_query_t *q,
    ts_pstore_series_pt cb, void *data, char *err, size_t errlen);

/* Size of data.mdb up to the last page in use. */
int ts_pstore_used(ts_pstore_t *ps, uint64_t *bytes);


/*
 * Row totals, for timelines and series: cb gets, for every row the
 * query selects (type may be NULL), its series' sorted labels, its time
 * (ns) and the sum of its values.  Series in postings order, rows of a
 * series oldest first.  A callback that returns non-zero stops the walk
 * (TS_OK).  Memory is constant: nothing is collected here.
 */
typedef int (*ts_pstore_row_pt)(void *data, const ts_label_t *l,
    uint32_t n, int64_t t, int64_t total);

int ts_pstore_totals(ts_pstore_t *ps, const ts_pstore_query_t *q,
    ts_pstore_row_pt cb, void *data, char *err, size_t errlen);


/* What one retention step did. */
typedef struct {
    uint64_t            rows;          /* rows deleted */
    uint64_t            row_bytes;     /* their keys plus values */
    uint64_t            visited;       /* keys looked at, <= max_keys */
    unsigned            more:1;        /* the pass over all rows goes on */
} ts_pstore_retention_t;

/*
 * One bounded retention step: deletes the rows (of every tenant and
 * series) whose time is before cutoff (ns), looking at most at max_keys
 * row keys, in one write transaction, committed and synced.  Rows of a
 * series are in time order, so a series costs its old rows plus one
 * look; the step resumes where the previous one of this handle stopped
 * (st->more), and a pass that reached the end starts again from the
 * first row.  Series, postings, stacks and symbols stay (ids are never
 * reused; a series without rows selects nothing); LMDB reuses the freed
 * pages, so rows bound the file.  TS_ERR_INVALID for max_keys 0,
 * TS_ERR_IO.
 */
int ts_pstore_retention(ts_pstore_t *ps, int64_t cutoff, size_t max_keys,
    ts_pstore_retention_t *st, char *err, size_t errlen);


#endif /* TS_PSTORE_H */
