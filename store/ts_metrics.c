/*
 * Copyright (C) ngx_tsdb authors
 *
 * Shared metrics registry.
 *
 * Region layout: header | slot pids | series table | cells.  The cells
 * are nslots rows of ncells 64-bit values; a row belongs to one process
 * (its pid is in the slot table) and only that process writes it, with
 * plain atomic stores, so increments never contend and a process killed
 * at any instruction leaves every cell holding a whole value.
 *
 * Series entries are created under the shared lock and published by the
 * final release store of hdr->series_used; entries below that index never
 * change, so lookups read them without the lock.  A process killed while
 * creating a series leaves at most a few allocated but unused cells.
 *
 * Counter cells of a dead process stay counted: the process that adopts
 * its slot keeps adding to them, so sums never go backwards.  Histogram
 * counts are derived from the bucket cells, so a scrape always sees
 * cumulative buckets that agree with _count.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_labels.h"
#include "ts_metrics.h"


#define TS_METRICS_MAGIC    0x544d5354u     /* "TSMT" */
#define TS_METRICS_VERSION  1u
#define TS_METRICS_ALIGN    64
#define TS_METRICS_MAX_SLOTS  1024
#define TS_METRICS_LINE     1024


struct ts_metrics_hdr_s {
    uint32_t            magic;
    uint32_t            version;
    uint64_t            layout;
    uint32_t            nslots;
    uint32_t            nseries;
    uint32_t            ncells;
    uint32_t            series_used;
    uint32_t            cells_used;
    uint32_t            reserved;
};


typedef struct {
    uint32_t            family;
    uint32_t            cell;
    uint32_t            hash;
    uint32_t            len;
    char                values[TS_METRICS_LABELS_LEN];
} ts_metrics_series_t;


static size_t ts_metrics_align(size_t n);
static uint64_t ts_metrics_layout(const ts_metric_family_t *families,
    unsigned nfamilies, unsigned nslots, unsigned nseries, unsigned ncells);
static int64_t *ts_metrics_pids(ts_metrics_hdr_t *hdr);
static ts_metrics_series_t *ts_metrics_table(ts_metrics_hdr_t *hdr);
static uint64_t *ts_metrics_cells(ts_metrics_hdr_t *hdr, int slot);
static unsigned ts_metrics_width(const ts_metric_family_t *f);
static int ts_metrics_pack(const ts_metric_family_t *f,
    const char *const *values, char *buf, uint32_t *len);
static int ts_metrics_find(ts_metrics_t *m, unsigned from, unsigned to,
    unsigned family, uint32_t hash, const char *buf, uint32_t len);
static void ts_metrics_reset_gauges(ts_metrics_t *m, int slot);
static int ts_metrics_render_family(ts_metrics_t *m, unsigned family,
    const char *alive, ts_write_pt write, void *data);
static int ts_metrics_render_series(ts_metrics_t *m,
    ts_metrics_series_t *s, const char *alive, ts_write_pt write,
    void *data);
static int ts_metrics_render_histogram(ts_metrics_t *m,
    ts_metrics_series_t *s, const char *labels, ts_write_pt write,
    void *data);
static size_t ts_metrics_labels(const ts_metric_family_t *f,
    const ts_metrics_series_t *s, char *buf, size_t size);
static uint64_t ts_metrics_sum(ts_metrics_t *m, uint32_t cell,
    const char *alive);
static int64_t ts_metrics_max(ts_metrics_t *m, uint32_t cell,
    const char *alive);


size_t
ts_metrics_region_size(unsigned nslots, unsigned nseries, unsigned ncells)
{
    return ts_metrics_align(sizeof(ts_metrics_hdr_t))
           + ts_metrics_align(nslots * sizeof(int64_t))
           + ts_metrics_align(nseries * sizeof(ts_metrics_series_t))
           + (size_t) nslots * ts_metrics_align(ncells * sizeof(uint64_t))
           + TS_METRICS_ALIGN;
}


int
ts_metrics_open(ts_metrics_t *m, void *mem, size_t size,
    const ts_metric_family_t *families, unsigned nfamilies,
    unsigned nslots, unsigned nseries, unsigned ncells)
{
    unsigned           i;
    uint64_t           layout;
    uintptr_t          p;
    ts_metrics_hdr_t  *hdr;

    if (nslots == 0 || nslots > TS_METRICS_MAX_SLOTS
        || size < ts_metrics_region_size(nslots, nseries, ncells))
    {
        return TS_ERR_INVALID;
    }

    for (i = 0; i < nfamilies; i++) {
        if (families[i].nlabels > TS_METRICS_MAX_LABELS
            || (families[i].type == TS_MFAM_HISTOGRAM
                && families[i].buckets == NULL))
        {
            return TS_ERR_INVALID;
        }
    }

    p = ((uintptr_t) mem + TS_METRICS_ALIGN - 1)
        & ~(uintptr_t) (TS_METRICS_ALIGN - 1);
    hdr = (ts_metrics_hdr_t *) p;

    m->hdr = hdr;
    m->families = families;
    m->nfamilies = nfamilies;

    layout = ts_metrics_layout(families, nfamilies, nslots, nseries, ncells);

    if (hdr->magic == TS_METRICS_MAGIC
        && hdr->version == TS_METRICS_VERSION
        && hdr->layout == layout)
    {
        return TS_OK;
    }

    memset(hdr, 0, ts_metrics_region_size(nslots, nseries, ncells)
                   - TS_METRICS_ALIGN);

    hdr->layout = layout;
    hdr->nslots = nslots;
    hdr->nseries = nseries;
    hdr->ncells = ncells;
    hdr->version = TS_METRICS_VERSION;

    __atomic_store_n(&hdr->magic, TS_METRICS_MAGIC, __ATOMIC_RELEASE);

    return TS_OK;
}


int
ts_metrics_claim_slot(ts_metrics_t *m, int64_t pid, ts_pid_alive_pt alive)
{
    int64_t   old, *pids;
    unsigned  i;

    pids = ts_metrics_pids(m->hdr);

    /* a dead process's slot first, so that the table stays compact */

    for (i = 0; alive != NULL && i < m->hdr->nslots; i++) {
        old = __atomic_load_n(&pids[i], __ATOMIC_ACQUIRE);

        if (old == 0 || old == pid || alive(old)) {
            continue;
        }

        if (__atomic_compare_exchange_n(&pids[i], &old, pid, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        {
            ts_metrics_reset_gauges(m, (int) i);
            return (int) i;
        }
    }

    for (i = 0; i < m->hdr->nslots; i++) {
        old = 0;

        if (__atomic_compare_exchange_n(&pids[i], &old, pid, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        {
            return (int) i;
        }
    }

    return TS_ERR_FULL;
}


int
ts_metrics_series(ts_metrics_t *m, ts_lock_t *lock, unsigned family,
    const char *const *values)
{
    int                   rc;
    char                  buf[TS_METRICS_LABELS_LEN];
    uint32_t              len, hash, used, width;
    ts_metrics_hdr_t     *hdr;
    ts_metrics_series_t  *s;

    if (family >= m->nfamilies) {
        return TS_ERR_INVALID;
    }

    rc = ts_metrics_pack(&m->families[family], values, buf, &len);
    if (rc != TS_OK) {
        return rc;
    }

    hdr = m->hdr;
    hash = (uint32_t) ts_xxh64(buf, len, family);
    used = __atomic_load_n(&hdr->series_used, __ATOMIC_ACQUIRE);

    rc = ts_metrics_find(m, 0, used, family, hash, buf, len);
    if (rc >= 0) {
        return rc;
    }

    lock->lock(lock->data);

    /* another process may have created it since the unlocked scan */

    rc = ts_metrics_find(m, used, hdr->series_used, family, hash, buf, len);
    if (rc >= 0) {
        goto done;
    }

    width = ts_metrics_width(&m->families[family]);

    if (hdr->series_used >= hdr->nseries
        || hdr->cells_used + width > hdr->ncells)
    {
        rc = TS_ERR_FULL;
        goto done;
    }

    s = &ts_metrics_table(hdr)[hdr->series_used];
    s->family = family;
    s->cell = hdr->cells_used;
    s->hash = hash;
    s->len = len;
    memcpy(s->values, buf, len);

    hdr->cells_used += width;
    rc = (int) hdr->series_used;

    __atomic_store_n(&hdr->series_used, hdr->series_used + 1,
                     __ATOMIC_RELEASE);

done:

    lock->unlock(lock->data);

    return rc;
}


void
ts_metrics_add(ts_metrics_t *m, int slot, int series, uint64_t delta)
{
    uint64_t  *c;

    c = ts_metrics_cells(m->hdr, slot)
        + ts_metrics_table(m->hdr)[series].cell;

    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + delta,
                     __ATOMIC_RELAXED);
}


void
ts_metrics_gauge_add(ts_metrics_t *m, int slot, int series, int64_t delta)
{
    ts_metrics_add(m, slot, series, (uint64_t) delta);
}


void
ts_metrics_gauge_set(ts_metrics_t *m, int slot, int series, int64_t value)
{
    uint64_t  *c;

    c = ts_metrics_cells(m->hdr, slot)
        + ts_metrics_table(m->hdr)[series].cell;

    __atomic_store_n(c, (uint64_t) value, __ATOMIC_RELAXED);
}


void
ts_metrics_observe(ts_metrics_t *m, int slot, int series, double v)
{
    double                     sum;
    unsigned                   i;
    uint64_t                  *c, bits;
    ts_metrics_series_t       *s;
    const ts_metric_family_t  *f;

    s = &ts_metrics_table(m->hdr)[series];
    f = &m->families[s->family];
    c = ts_metrics_cells(m->hdr, slot) + s->cell;

    for (i = 0; i < f->nbuckets; i++) {
        if (v <= f->buckets[i]) {
            break;
        }
    }

    /*
     * _count is derived from the buckets, so they always agree; _sum may
     * briefly include an observation the buckets do not show yet
     */

    bits = __atomic_load_n(&c[f->nbuckets + 1], __ATOMIC_RELAXED);
    memcpy(&sum, &bits, sizeof(double));
    sum += v;
    memcpy(&bits, &sum, sizeof(double));
    __atomic_store_n(&c[f->nbuckets + 1], bits, __ATOMIC_RELAXED);

    __atomic_store_n(&c[i], __atomic_load_n(&c[i], __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELAXED);
}


uint64_t
ts_metrics_counter_value(ts_metrics_t *m, int series)
{
    return ts_metrics_sum(m, ts_metrics_table(m->hdr)[series].cell, NULL);
}


int
ts_metrics_render(ts_metrics_t *m, ts_pid_alive_pt alive, ts_write_pt write,
    void *data)
{
    char      live[TS_METRICS_MAX_SLOTS];
    int64_t   pid, *pids;
    unsigned  i;

    pids = ts_metrics_pids(m->hdr);

    for (i = 0; i < m->hdr->nslots; i++) {
        pid = __atomic_load_n(&pids[i], __ATOMIC_ACQUIRE);
        live[i] = pid != 0 && (alive == NULL || alive(pid));
    }

    for (i = 0; i < m->nfamilies; i++) {
        if (ts_metrics_render_family(m, i, live, write, data) != 0) {
            return TS_ERR_IO;
        }
    }

    return TS_OK;
}


size_t
ts_fmt_double(char *buf, size_t size, double v)
{
    int    n, prec, exp;
    char   tmp[32];

    if (isnan(v)) {
        n = snprintf(buf, size, "NaN");

    } else if (isinf(v)) {
        n = snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");

    } else {

        /* the fewest significant digits that read back as v */

        for (prec = 0; prec < 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*e", prec, v);
            if (strtod(tmp, NULL) == v) {
                break;
            }
        }

        exp = atoi(strchr(tmp, 'e') + 1);

        if (exp < -4 || exp >= 21) {
            n = snprintf(buf, size, "%s", tmp);

        } else {
            n = snprintf(buf, size, "%.*f", prec > exp ? prec - exp : 0, v);
        }
    }

    if (n < 0 || (size_t) n >= size) {
        return 0;
    }

    return (size_t) n;
}


static size_t
ts_metrics_align(size_t n)
{
    return (n + TS_METRICS_ALIGN - 1) & ~(size_t) (TS_METRICS_ALIGN - 1);
}


static uint64_t
ts_metrics_layout(const ts_metric_family_t *families, unsigned nfamilies,
    unsigned nslots, unsigned nseries, unsigned ncells)
{
    unsigned                   i, k;
    uint64_t                   h;
    uint32_t                   dims[3];
    const ts_metric_family_t  *f;

    dims[0] = nslots;
    dims[1] = nseries;
    dims[2] = ncells;
    h = ts_xxh64(dims, sizeof(dims), nfamilies);

    for (i = 0; i < nfamilies; i++) {
        f = &families[i];
        h = ts_xxh64(f->name, strlen(f->name), h);
        h = ts_xxh64(&f->nbuckets, sizeof(unsigned), h + f->type);

        for (k = 0; k < f->nlabels; k++) {
            h = ts_xxh64(f->labels[k], strlen(f->labels[k]), h);
        }

        if (f->nbuckets) {
            h = ts_xxh64(f->buckets, f->nbuckets * sizeof(double), h);
        }
    }

    return h;
}


static int64_t *
ts_metrics_pids(ts_metrics_hdr_t *hdr)
{
    return (int64_t *) ((char *) hdr + ts_metrics_align(sizeof(*hdr)));
}


static ts_metrics_series_t *
ts_metrics_table(ts_metrics_hdr_t *hdr)
{
    return (ts_metrics_series_t *) ((char *) ts_metrics_pids(hdr)
               + ts_metrics_align(hdr->nslots * sizeof(int64_t)));
}


static uint64_t *
ts_metrics_cells(ts_metrics_hdr_t *hdr, int slot)
{
    char  *base;

    base = (char *) ts_metrics_table(hdr)
           + ts_metrics_align(hdr->nseries * sizeof(ts_metrics_series_t));

    return (uint64_t *) (base + (size_t) slot
                         * ts_metrics_align(hdr->ncells * sizeof(uint64_t)));
}


static unsigned
ts_metrics_width(const ts_metric_family_t *f)
{
    /* histograms: a cell per bucket, one for +Inf, one for the sum */

    return f->type == TS_MFAM_HISTOGRAM ? f->nbuckets + 2 : 1;
}


static int
ts_metrics_pack(const ts_metric_family_t *f, const char *const *values,
    char *buf, uint32_t *len)
{
    size_t    n, off;
    unsigned  i;

    off = 0;

    for (i = 0; i < f->nlabels; i++) {
        n = strlen(values[i]) + 1;

        if (off + n > TS_METRICS_LABELS_LEN) {
            return TS_ERR_LIMIT;
        }

        memcpy(buf + off, values[i], n);
        off += n;
    }

    *len = (uint32_t) off;

    return TS_OK;
}


static int
ts_metrics_find(ts_metrics_t *m, unsigned from, unsigned to, unsigned family,
    uint32_t hash, const char *buf, uint32_t len)
{
    unsigned              i;
    ts_metrics_series_t  *s;

    s = ts_metrics_table(m->hdr);

    for (i = from; i < to; i++) {
        if (s[i].hash == hash && s[i].family == family && s[i].len == len
            && memcmp(s[i].values, buf, len) == 0)
        {
            return (int) i;
        }
    }

    return -1;
}


static void
ts_metrics_reset_gauges(ts_metrics_t *m, int slot)
{
    unsigned              i, used;
    uint64_t             *c;
    ts_metrics_series_t  *s;

    used = __atomic_load_n(&m->hdr->series_used, __ATOMIC_ACQUIRE);
    s = ts_metrics_table(m->hdr);
    c = ts_metrics_cells(m->hdr, slot);

    for (i = 0; i < used; i++) {
        if (m->families[s[i].family].type == TS_MFAM_GAUGE) {
            __atomic_store_n(&c[s[i].cell], 0, __ATOMIC_RELAXED);
        }
    }
}


static int
ts_metrics_render_family(ts_metrics_t *m, unsigned family, const char *alive,
    ts_write_pt write, void *data)
{
    int                        n;
    char                       line[TS_METRICS_LINE];
    unsigned                   i, used;
    ts_metrics_series_t       *s;
    const ts_metric_family_t  *f;
    static const char         *types[] = { "counter", "gauge", "histogram" };

    f = &m->families[family];
    used = __atomic_load_n(&m->hdr->series_used, __ATOMIC_ACQUIRE);
    s = ts_metrics_table(m->hdr);

    for (i = 0; i < used; i++) {
        if (s[i].family == family) {
            break;
        }
    }

    if (i == used) {
        return 0;
    }

    n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n",
                 f->name, f->help, f->name, types[f->type]);

    if (n < 0 || (size_t) n >= sizeof(line) || write(data, line, n) != 0) {
        return -1;
    }

    for ( /* void */ ; i < used; i++) {
        if (s[i].family == family
            && ts_metrics_render_series(m, &s[i], alive, write, data) != 0)
        {
            return -1;
        }
    }

    return 0;
}


static int
ts_metrics_render_series(ts_metrics_t *m, ts_metrics_series_t *s,
    const char *alive, ts_write_pt write, void *data)
{
    int                        n;
    char                       labels[TS_METRICS_LINE / 2];
    char                       line[TS_METRICS_LINE];
    size_t                     len;
    uint64_t                   v;
    const ts_metric_family_t  *f;

    f = &m->families[s->family];
    len = ts_metrics_labels(f, s, labels, sizeof(labels));

    if (f->type == TS_MFAM_HISTOGRAM) {
        return ts_metrics_render_histogram(m, s, labels, write, data);
    }

    if (f->type == TS_MFAM_GAUGE) {
        v = (f->flags & TS_MFAM_MAX) ? (uint64_t) ts_metrics_max(m, s->cell,
                                                                  alive)
                                       : ts_metrics_sum(m, s->cell, alive);
        n = snprintf(line, sizeof(line), "%s%s%s%s %lld\n", f->name,
                     len ? "{" : "", labels, len ? "}" : "", (long long) v);

    } else {
        v = ts_metrics_sum(m, s->cell, NULL);
        n = snprintf(line, sizeof(line), "%s%s%s%s %llu\n", f->name,
                     len ? "{" : "", labels, len ? "}" : "",
                     (unsigned long long) v);
    }

    if (n < 0 || (size_t) n >= sizeof(line)) {
        return -1;
    }

    return write(data, line, n);
}


static int
ts_metrics_render_histogram(ts_metrics_t *m, ts_metrics_series_t *s,
    const char *labels, ts_write_pt write, void *data)
{
    int                        n;
    char                       line[TS_METRICS_LINE], le[32], sum[32];
    double                     total, part;
    unsigned                   i, k;
    uint64_t                   cum, bits, *c;
    const char                *sep;
    const ts_metric_family_t  *f;

    f = &m->families[s->family];
    sep = labels[0] ? "," : "";
    cum = 0;

    for (i = 0; i <= f->nbuckets; i++) {
        cum += ts_metrics_sum(m, s->cell + i, NULL);

        if (i == f->nbuckets) {
            strcpy(le, "+Inf");

        } else if (ts_fmt_double(le, sizeof(le), f->buckets[i]) == 0) {
            return -1;
        }

        n = snprintf(line, sizeof(line), "%s_bucket{%s%sle=\"%s\"} %llu\n",
                     f->name, labels, sep, le, (unsigned long long) cum);

        if (n < 0 || (size_t) n >= sizeof(line)
            || write(data, line, n) != 0)
        {
            return -1;
        }
    }

    total = 0;

    for (k = 0; k < m->hdr->nslots; k++) {
        c = ts_metrics_cells(m->hdr, (int) k) + s->cell + f->nbuckets + 1;
        bits = __atomic_load_n(c, __ATOMIC_RELAXED);
        memcpy(&part, &bits, sizeof(double));
        total += part;
    }

    if (ts_fmt_double(sum, sizeof(sum), total) == 0) {
        return -1;
    }

    n = snprintf(line, sizeof(line), "%s_sum%s%s%s %s\n%s_count%s%s%s %llu\n",
                 f->name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
                 sum, f->name, labels[0] ? "{" : "", labels,
                 labels[0] ? "}" : "", (unsigned long long) cum);

    if (n < 0 || (size_t) n >= sizeof(line)) {
        return -1;
    }

    return write(data, line, n);
}


static size_t
ts_metrics_labels(const ts_metric_family_t *f, const ts_metrics_series_t *s,
    char *buf, size_t size)
{
    char        *p, *end;
    size_t       n;
    unsigned     i;
    const char  *v;

    /* size is far above the longest names plus TS_METRICS_LABELS_LEN
     * escaped twice over, so the checks below only guard the invariant */

    p = buf;
    end = buf + size - 1;
    v = s->values;

    for (i = 0; i < f->nlabels; i++) {
        n = strlen(f->labels[i]);

        if (p + n + 4 > end) {
            break;
        }

        if (i) {
            *p++ = ',';
        }

        memcpy(p, f->labels[i], n);
        p += n;
        *p++ = '=';
        *p++ = '"';

        for ( /* void */ ; *v && p + 3 < end; v++) {
            if (*v == '\\' || *v == '"' || *v == '\n') {
                *p++ = '\\';
                *p++ = *v == '\n' ? 'n' : *v;

            } else {
                *p++ = *v;
            }
        }

        *p++ = '"';
        v += strlen(v) + 1;
    }

    *p = '\0';

    return (size_t) (p - buf);
}


static uint64_t
ts_metrics_sum(ts_metrics_t *m, uint32_t cell, const char *alive)
{
    unsigned  i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < m->hdr->nslots; i++) {
        if (alive == NULL || alive[i]) {
            v += __atomic_load_n(ts_metrics_cells(m->hdr, (int) i) + cell,
                                 __ATOMIC_RELAXED);
        }
    }

    return v;
}


static int64_t
ts_metrics_max(ts_metrics_t *m, uint32_t cell, const char *alive)
{
    int       any;
    int64_t   v, max;
    unsigned  i;

    any = 0;
    max = 0;

    for (i = 0; i < m->hdr->nslots; i++) {
        if (!alive[i]) {
            continue;
        }

        v = (int64_t) __atomic_load_n(ts_metrics_cells(m->hdr, (int) i)
                                      + cell, __ATOMIC_RELAXED);

        if (!any || v > max) {
            max = v;
            any = 1;
        }
    }

    return max;
}
