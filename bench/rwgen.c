/*
 * Copyright (C) ngx_tsdb authors
 *
 * rwgen: builds a snappy-compressed remote-write body with the real
 * protobuf-c encoder, for tests and benchmarks.
 *
 *     rwgen [-2] < series.txt > body.snappy
 *
 * One series per input line: a label set as in the Prometheus text
 * format, then samples as TIME:VALUE (milliseconds; VALUE a number,
 * NaN, +Inf, -Inf or "stale" for the staleness marker):
 *
 *     {__name__="up",job="node"} 1000:1 2000:1 3000:stale
 *
 * or a native histogram as TIME:h{FIELDS} (integer) or TIME:fh{FIELDS}
 * (float), FIELDS comma-separated, each optional:
 *
 *     s=SCHEMA zt=ZERO_THRESHOLD z=ZERO_COUNT c=COUNT sum=SUM|stale
 *     p=OFF_LEN/OFF_LEN...  pb=COUNT/COUNT...   positive spans, buckets
 *     n=OFF_LEN/...         nb=COUNT/...        negative
 *     r=unknown|reset|no|gauge                  reset hint
 *
 *     {__name__="lat"} 1000:h{zt=0.001,z=1,sum=7.5,p=0_2/1_1,pb=2/3/1}
 *
 * Bucket counts are absolute (integer histograms are sent as deltas);
 * COUNT defaults to the zero count plus every bucket.
 *
 * Labels are sent in the order given, so a test can send them unsorted,
 * duplicated or invalid.  A token @{labels}TIME:VALUE adds an exemplar
 * (labels as above, no blanks in the token):
 *
 *     {__name__="req_total"} 1000:5 @{trace_id="a1"}1000:1.5
 *
 * -2 builds an io.prometheus.write.v2.Request
 * (symbols table and label refs) instead of a prometheus.WriteRequest.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "prometheus_remote.pb-c.h"
#include "rw2.pb-c.h"


#define RWGEN_MAX_LABELS   64
#define RWGEN_MAX_SAMPLES  4096
#define RWGEN_STALE        0x7ff0000000000002ull
#define RWGEN_MAX_BUCKETS  256


typedef struct {
    int            is_float;
    int32_t        schema;
    double         zt;
    double         zero;
    double         count;
    int            has_count;
    double         sum;
    int            hint;
    size_t         nps, nns, npb, nnb;
    int32_t        ps_off[RWGEN_MAX_BUCKETS];
    uint32_t       ps_len[RWGEN_MAX_BUCKETS];
    int32_t        ns_off[RWGEN_MAX_BUCKETS];
    uint32_t       ns_len[RWGEN_MAX_BUCKETS];
    double         pb[RWGEN_MAX_BUCKETS];
    double         nb[RWGEN_MAX_BUCKETS];
} rwgen_hist_t;
#define RWGEN_MAX_EXEMPLARS  16
#define RWGEN_MAX_XLABELS    8


typedef struct {
    char          *name[RWGEN_MAX_XLABELS];
    char          *value[RWGEN_MAX_XLABELS];
    size_t         nlabels;
    int64_t        t;
    double         v;
} rwgen_exemplar_t;


typedef struct {
    char          *name[RWGEN_MAX_LABELS];
    char          *value[RWGEN_MAX_LABELS];
    size_t         nlabels;
    int64_t        t[RWGEN_MAX_SAMPLES];
    double         v[RWGEN_MAX_SAMPLES];
    size_t         nsamples;
    rwgen_hist_t **h;               /* RWGEN_MAX_SAMPLES, when needed */
    int64_t       *ht;
    size_t         nhist;
    rwgen_exemplar_t  x[RWGEN_MAX_EXEMPLARS];
    size_t         nx;
} rwgen_series_t;


static char *rwgen_string(char **p);
static int rwgen_parse(char *line, rwgen_series_t *s);
static double rwgen_value(const char *s);
static int rwgen_hist(const char *s, rwgen_hist_t *h);
static size_t rwgen_spans(const char *s, int32_t *off, uint32_t *len);
static size_t rwgen_counts(const char *s, double *v);
static Prometheus__Histogram *rwgen_hist_v1(const rwgen_hist_t *h,
    int64_t t);
static Io__Prometheus__Write__V2__Histogram *rwgen_hist_v2(
    const rwgen_hist_t *h, int64_t t);
static int rwgen_exemplar(char *tok, rwgen_series_t *s);
static void rwgen_v1_exemplars(Prometheus__TimeSeries *ts,
    rwgen_series_t *s);
static void rwgen_v2_exemplars(Io__Prometheus__Write__V2__TimeSeries *ts,
    rwgen_series_t *s, char ***syms, size_t *nsyms);
static void *rwgen_v1(rwgen_series_t *s, size_t n, size_t *len);
static void *rwgen_v2(rwgen_series_t *s, size_t n, size_t *len);
static uint32_t rwgen_symbol(char ***syms, size_t *nsyms, char *s);
static void *rwgen_alloc(size_t n);
static int64_t *rwgen_deltas(const double *b, size_t n);


int
main(int argc, char **argv)
{
    int              v2;
    char             line[65536];
    void            *pb, *out;
    size_t           n, cap, len, olen;
    rwgen_series_t  *s;

    v2 = argc > 1 && strcmp(argv[1], "-2") == 0;
    s = NULL;
    n = 0;
    cap = 0;

    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (line[0] == '\n' || line[0] == '#') {
            continue;
        }

        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            s = realloc(s, cap * sizeof(rwgen_series_t));
            if (s == NULL) {
                fprintf(stderr, "rwgen: out of memory\n");
                return 1;
            }
        }

        /* labels point into the line: each series keeps its own copy */

        if (rwgen_parse(strdup(line), &s[n]) != 0) {
            fprintf(stderr, "rwgen: cannot parse: %s", line);
            return 1;
        }

        n++;
    }

    pb = v2 ? rwgen_v2(s, n, &len) : rwgen_v1(s, n, &len);

    olen = snappy_max_compressed_length(len);
    out = rwgen_alloc(olen);

    if (snappy_compress(pb, len, out, &olen) != SNAPPY_OK
        || fwrite(out, 1, olen, stdout) != olen)
    {
        fprintf(stderr, "rwgen: cannot write the body\n");
        return 1;
    }

    return 0;
}


/* a quoted string with \" and \\ escapes, unescaped in place */

static char *
rwgen_string(char **p)
{
    char  *s, *o;

    if (**p != '"') {
        return NULL;
    }

    s = o = ++*p;

    while (**p && **p != '"') {
        if (**p == '\\' && (*p)[1]) {
            ++*p;
            *o++ = **p == 'n' ? '\n' : **p;

        } else {
            *o++ = **p;
        }

        ++*p;
    }

    if (**p != '"') {
        return NULL;
    }

    ++*p;
    *o = '\0';

    return s;
}


static int
rwgen_parse(char *line, rwgen_series_t *s)
{
    char  *p, *name, *colon, *tok;

    if (line == NULL) {
        return -1;
    }

    s->nlabels = 0;
    s->nsamples = 0;
    s->nhist = 0;
    s->h = NULL;
    s->ht = NULL;
    s->nx = 0;
    p = line;

    if (*p++ != '{') {
        return -1;
    }

    while (*p && *p != '}') {
        name = p;
        p = strchr(p, '=');
        if (p == NULL || s->nlabels == RWGEN_MAX_LABELS) {
            return -1;
        }

        *p++ = '\0';
        s->name[s->nlabels] = name;
        s->value[s->nlabels] = rwgen_string(&p);
        if (s->value[s->nlabels] == NULL) {
            return -1;
        }

        s->nlabels++;

        if (*p == ',') {
            p++;
        }
    }

    if (*p++ != '}') {
        return -1;
    }

    for (tok = strtok(p, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
        if (tok[0] == '@') {
            if (rwgen_exemplar(tok + 1, s) != 0) {
                return -1;
            }

            continue;
        }

        colon = strchr(tok, ':');
        if (colon == NULL || s->nsamples == RWGEN_MAX_SAMPLES) {
            return -1;
        }

        *colon = '\0';

        if (colon[1] == 'h' || colon[1] == 'f') {
            if (s->nhist == RWGEN_MAX_SAMPLES) {
                return -1;
            }

            if (s->h == NULL) {
                s->h = rwgen_alloc(RWGEN_MAX_SAMPLES * sizeof(void *));
                s->ht = rwgen_alloc(RWGEN_MAX_SAMPLES * sizeof(int64_t));
            }

            s->h[s->nhist] = rwgen_alloc(sizeof(rwgen_hist_t));
            s->ht[s->nhist] = strtoll(tok, NULL, 10);

            if (rwgen_hist(colon + 1, s->h[s->nhist]) != 0) {
                return -1;
            }

            s->nhist++;
            continue;
        }

        s->t[s->nsamples] = strtoll(tok, NULL, 10);
        s->v[s->nsamples] = rwgen_value(colon + 1);
        s->nsamples++;
    }

    return 0;
}


/* {name="value",...}TIME:VALUE */

static int
rwgen_exemplar(char *tok, rwgen_series_t *s)
{
    char              *p, *colon;
    rwgen_exemplar_t  *x;

    if (s->nx == RWGEN_MAX_EXEMPLARS || *tok != '{') {
        return -1;
    }

    x = &s->x[s->nx];
    x->nlabels = 0;
    p = tok + 1;

    while (*p && *p != '}') {
        x->name[x->nlabels] = p;
        p = strchr(p, '=');
        if (p == NULL || x->nlabels == RWGEN_MAX_XLABELS) {
            return -1;
        }

        *p++ = '\0';
        x->value[x->nlabels] = rwgen_string(&p);
        if (x->value[x->nlabels++] == NULL) {
            return -1;
        }

        if (*p == ',') {
            p++;
        }
    }

    if (*p++ != '}' || (colon = strchr(p, ':')) == NULL) {
        return -1;
    }

    *colon = '\0';
    x->t = strtoll(p, NULL, 10);
    x->v = rwgen_value(colon + 1);
    s->nx++;

    return 0;
}


static double
rwgen_value(const char *s)
{
    double    d;
    uint64_t  bits;

    if (strcmp(s, "stale") == 0) {
        bits = RWGEN_STALE;
        memcpy(&d, &bits, sizeof(d));
        return d;
    }

    return strtod(s, NULL);
}


/* h{...} or fh{...}: 0, or -1 if malformed */

static int
rwgen_hist(const char *s, rwgen_hist_t *h)
{
    char    key[8], val[4096];
    size_t  i, k, n;

    memset(h, 0, sizeof(rwgen_hist_t));

    if (strncmp(s, "fh{", 3) == 0) {
        h->is_float = 1;
        s += 3;

    } else if (strncmp(s, "h{", 2) == 0) {
        s += 2;

    } else {
        return -1;
    }

    while (*s && *s != '}') {
        for (k = 0; *s && *s != '=' && k < sizeof(key) - 1; k++) {
            key[k] = *s++;
        }

        key[k] = '\0';

        if (*s++ != '=') {
            return -1;
        }

        for (n = 0; *s && *s != ',' && *s != '}' && n < sizeof(val) - 1;
             n++)
        {
            val[n] = *s++;
        }

        val[n] = '\0';

        if (*s == ',') {
            s++;
        }

        if (strcmp(key, "s") == 0) {
            h->schema = (int32_t) strtol(val, NULL, 10);

        } else if (strcmp(key, "zt") == 0) {
            h->zt = strtod(val, NULL);

        } else if (strcmp(key, "z") == 0) {
            h->zero = strtod(val, NULL);

        } else if (strcmp(key, "c") == 0) {
            h->count = strtod(val, NULL);
            h->has_count = 1;

        } else if (strcmp(key, "sum") == 0) {
            h->sum = rwgen_value(val);

        } else if (strcmp(key, "p") == 0) {
            h->nps = rwgen_spans(val, h->ps_off, h->ps_len);

        } else if (strcmp(key, "n") == 0) {
            h->nns = rwgen_spans(val, h->ns_off, h->ns_len);

        } else if (strcmp(key, "pb") == 0) {
            h->npb = rwgen_counts(val, h->pb);

        } else if (strcmp(key, "nb") == 0) {
            h->nnb = rwgen_counts(val, h->nb);

        } else if (strcmp(key, "r") == 0) {
            h->hint = strcmp(val, "reset") == 0 ? 1
                      : strcmp(val, "no") == 0 ? 2
                      : strcmp(val, "gauge") == 0 ? 3 : 0;

        } else {
            return -1;
        }
    }

    if (*s != '}') {
        return -1;
    }

    if (!h->has_count) {
        h->count = h->zero;

        for (i = 0; i < h->npb; i++) {
            h->count += h->pb[i];
        }

        for (i = 0; i < h->nnb; i++) {
            h->count += h->nb[i];
        }
    }

    return 0;
}


/* OFF_LEN/OFF_LEN... */

static size_t
rwgen_spans(const char *s, int32_t *off, uint32_t *len)
{
    char    *end;
    size_t   n;

    for (n = 0; *s && n < RWGEN_MAX_BUCKETS; n++) {
        off[n] = (int32_t) strtol(s, &end, 10);
        s = end;

        if (*s == '_') {
            s++;
        }

        len[n] = (uint32_t) strtoul(s, &end, 10);
        s = end;

        if (*s == '/') {
            s++;
        }
    }

    return n;
}


static size_t
rwgen_counts(const char *s, double *v)
{
    char    *end;
    size_t   n;

    for (n = 0; *s && n < RWGEN_MAX_BUCKETS; n++) {
        v[n] = strtod(s, &end);
        s = end;

        if (*s == '/') {
            s++;
        }
    }

    return n;
}


/* integer bucket counts as deltas */

static int64_t *
rwgen_deltas(const double *b, size_t n)
{
    size_t    i;
    int64_t  *d, prev;

    d = rwgen_alloc(n * sizeof(int64_t) + 1);
    prev = 0;

    for (i = 0; i < n; i++) {
        d[i] = (int64_t) b[i] - prev;
        prev = (int64_t) b[i];
    }

    return d;
}


static Prometheus__Histogram *
rwgen_hist_v1(const rwgen_hist_t *h, int64_t t)
{
    size_t                   i;
    Prometheus__Histogram   *ph;
    Prometheus__BucketSpan **sp;

    ph = rwgen_alloc(sizeof(Prometheus__Histogram));
    prometheus__histogram__init(ph);

    ph->timestamp = t;
    ph->schema = h->schema;
    ph->zero_threshold = h->zt;
    ph->sum = h->sum;
    ph->reset_hint = (Prometheus__Histogram__ResetHint) h->hint;

    if (h->is_float) {
        ph->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
        ph->count_float = h->count;
        ph->zero_count_case =
            PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT;
        ph->zero_count_float = h->zero;
        ph->n_positive_counts = h->npb;
        ph->positive_counts = (double *) h->pb;
        ph->n_negative_counts = h->nnb;
        ph->negative_counts = (double *) h->nb;

    } else {
        ph->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
        ph->count_int = (uint64_t) h->count;
        ph->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
        ph->zero_count_int = (uint64_t) h->zero;
        ph->n_positive_deltas = h->npb;
        ph->positive_deltas = rwgen_deltas(h->pb, h->npb);
        ph->n_negative_deltas = h->nnb;
        ph->negative_deltas = rwgen_deltas(h->nb, h->nnb);
    }

    sp = rwgen_alloc((h->nps + h->nns) * sizeof(*sp) + 1);

    for (i = 0; i < h->nps + h->nns; i++) {
        sp[i] = rwgen_alloc(sizeof(Prometheus__BucketSpan));
        prometheus__bucket_span__init(sp[i]);
        sp[i]->offset = i < h->nps ? h->ps_off[i] : h->ns_off[i - h->nps];
        sp[i]->length = i < h->nps ? h->ps_len[i] : h->ns_len[i - h->nps];
    }

    ph->n_positive_spans = h->nps;
    ph->positive_spans = sp;
    ph->n_negative_spans = h->nns;
    ph->negative_spans = sp + h->nps;

    return ph;
}


static Io__Prometheus__Write__V2__Histogram *
rwgen_hist_v2(const rwgen_hist_t *h, int64_t t)
{
    size_t                                  i;
    Io__Prometheus__Write__V2__Histogram   *ph;
    Io__Prometheus__Write__V2__BucketSpan **sp;

    ph = rwgen_alloc(sizeof(Io__Prometheus__Write__V2__Histogram));
    io__prometheus__write__v2__histogram__init(ph);

    ph->timestamp = t;
    ph->schema = h->schema;
    ph->zero_threshold = h->zt;
    ph->sum = h->sum;
    ph->reset_hint = (Io__Prometheus__Write__V2__Histogram__ResetHint)
                     h->hint;

    if (h->is_float) {
        ph->count_case =
            IO__PROMETHEUS__WRITE__V2__HISTOGRAM__COUNT_COUNT_FLOAT;
        ph->count_float = h->count;
        ph->zero_count_case =
            IO__PROMETHEUS__WRITE__V2__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT;
        ph->zero_count_float = h->zero;
        ph->n_positive_counts = h->npb;
        ph->positive_counts = (double *) h->pb;
        ph->n_negative_counts = h->nnb;
        ph->negative_counts = (double *) h->nb;

    } else {
        ph->count_case = IO__PROMETHEUS__WRITE__V2__HISTOGRAM__COUNT_COUNT_INT;
        ph->count_int = (uint64_t) h->count;
        ph->zero_count_case =
            IO__PROMETHEUS__WRITE__V2__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
        ph->zero_count_int = (uint64_t) h->zero;
        ph->n_positive_deltas = h->npb;
        ph->positive_deltas = rwgen_deltas(h->pb, h->npb);
        ph->n_negative_deltas = h->nnb;
        ph->negative_deltas = rwgen_deltas(h->nb, h->nnb);
    }

    sp = rwgen_alloc((h->nps + h->nns) * sizeof(*sp) + 1);

    for (i = 0; i < h->nps + h->nns; i++) {
        sp[i] = rwgen_alloc(sizeof(Io__Prometheus__Write__V2__BucketSpan));
        io__prometheus__write__v2__bucket_span__init(sp[i]);
        sp[i]->offset = i < h->nps ? h->ps_off[i] : h->ns_off[i - h->nps];
        sp[i]->length = i < h->nps ? h->ps_len[i] : h->ns_len[i - h->nps];
    }

    ph->n_positive_spans = h->nps;
    ph->positive_spans = sp;
    ph->n_negative_spans = h->nns;
    ph->negative_spans = sp + h->nps;

    return ph;
}


static void *
rwgen_v1(rwgen_series_t *s, size_t n, size_t *len)
{
    void                    *buf;
    size_t                   i, k;
    Prometheus__WriteRequest  req = PROMETHEUS__WRITE_REQUEST__INIT;
    Prometheus__TimeSeries  **ts;
    Prometheus__Label       **l;
    Prometheus__Sample      **sm;

    ts = rwgen_alloc(n * sizeof(*ts) + 1);

    for (i = 0; i < n; i++) {
        ts[i] = rwgen_alloc(sizeof(Prometheus__TimeSeries));
        prometheus__time_series__init(ts[i]);

        l = rwgen_alloc(s[i].nlabels * sizeof(*l) + 1);
        for (k = 0; k < s[i].nlabels; k++) {
            l[k] = rwgen_alloc(sizeof(Prometheus__Label));
            prometheus__label__init(l[k]);
            l[k]->name = s[i].name[k];
            l[k]->value = s[i].value[k];
        }

        sm = rwgen_alloc(s[i].nsamples * sizeof(*sm) + 1);
        for (k = 0; k < s[i].nsamples; k++) {
            sm[k] = rwgen_alloc(sizeof(Prometheus__Sample));
            prometheus__sample__init(sm[k]);
            sm[k]->timestamp = s[i].t[k];
            sm[k]->value = s[i].v[k];
        }

        ts[i]->n_labels = s[i].nlabels;
        ts[i]->labels = l;
        ts[i]->n_samples = s[i].nsamples;
        ts[i]->samples = sm;

        ts[i]->histograms = rwgen_alloc(s[i].nhist * sizeof(void *) + 1);
        ts[i]->n_histograms = s[i].nhist;

        for (k = 0; k < s[i].nhist; k++) {
            ts[i]->histograms[k] = rwgen_hist_v1(s[i].h[k], s[i].ht[k]);
        }
        rwgen_v1_exemplars(ts[i], &s[i]);
    }

    req.n_timeseries = n;
    req.timeseries = ts;

    *len = prometheus__write_request__get_packed_size(&req);
    buf = rwgen_alloc(*len + 1);
    prometheus__write_request__pack(&req, buf);

    return buf;
}


static void *
rwgen_v2(rwgen_series_t *s, size_t n, size_t *len)
{
    char                                **syms;
    void                                 *buf;
    size_t                                i, k, nsyms;
    uint32_t                             *refs;
    Io__Prometheus__Write__V2__Request     req =
        IO__PROMETHEUS__WRITE__V2__REQUEST__INIT;
    Io__Prometheus__Write__V2__TimeSeries **ts;
    Io__Prometheus__Write__V2__Sample     **sm;

    syms = NULL;
    nsyms = 0;
    (void) rwgen_symbol(&syms, &nsyms, "");

    ts = rwgen_alloc(n * sizeof(*ts) + 1);

    for (i = 0; i < n; i++) {
        ts[i] = rwgen_alloc(sizeof(Io__Prometheus__Write__V2__TimeSeries));
        io__prometheus__write__v2__time_series__init(ts[i]);

        refs = rwgen_alloc(2 * s[i].nlabels * sizeof(uint32_t) + 1);
        for (k = 0; k < s[i].nlabels; k++) {
            refs[2 * k] = rwgen_symbol(&syms, &nsyms, s[i].name[k]);
            refs[2 * k + 1] = rwgen_symbol(&syms, &nsyms, s[i].value[k]);
        }

        sm = rwgen_alloc(s[i].nsamples * sizeof(*sm) + 1);
        for (k = 0; k < s[i].nsamples; k++) {
            sm[k] = rwgen_alloc(sizeof(Io__Prometheus__Write__V2__Sample));
            io__prometheus__write__v2__sample__init(sm[k]);
            sm[k]->timestamp = s[i].t[k];
            sm[k]->value = s[i].v[k];
        }

        ts[i]->n_labels_refs = 2 * s[i].nlabels;
        ts[i]->labels_refs = refs;
        ts[i]->n_samples = s[i].nsamples;
        ts[i]->samples = sm;

        ts[i]->histograms = rwgen_alloc(s[i].nhist * sizeof(void *) + 1);
        ts[i]->n_histograms = s[i].nhist;

        for (k = 0; k < s[i].nhist; k++) {
            ts[i]->histograms[k] = rwgen_hist_v2(s[i].h[k], s[i].ht[k]);
        }
        rwgen_v2_exemplars(ts[i], &s[i], &syms, &nsyms);
    }

    req.n_symbols = nsyms;
    req.symbols = syms;
    req.n_timeseries = n;
    req.timeseries = ts;

    *len = io__prometheus__write__v2__request__get_packed_size(&req);
    buf = rwgen_alloc(*len + 1);
    io__prometheus__write__v2__request__pack(&req, buf);

    return buf;
}


static void
rwgen_v1_exemplars(Prometheus__TimeSeries *ts, rwgen_series_t *s)
{
    size_t                 i, k;
    Prometheus__Label    **l;
    Prometheus__Exemplar **x;

    x = rwgen_alloc(s->nx * sizeof(*x) + 1);

    for (i = 0; i < s->nx; i++) {
        x[i] = rwgen_alloc(sizeof(Prometheus__Exemplar));
        prometheus__exemplar__init(x[i]);

        l = rwgen_alloc(s->x[i].nlabels * sizeof(*l) + 1);
        for (k = 0; k < s->x[i].nlabels; k++) {
            l[k] = rwgen_alloc(sizeof(Prometheus__Label));
            prometheus__label__init(l[k]);
            l[k]->name = s->x[i].name[k];
            l[k]->value = s->x[i].value[k];
        }

        x[i]->n_labels = s->x[i].nlabels;
        x[i]->labels = l;
        x[i]->timestamp = s->x[i].t;
        x[i]->value = s->x[i].v;
    }

    ts->n_exemplars = s->nx;
    ts->exemplars = x;
}


static void
rwgen_v2_exemplars(Io__Prometheus__Write__V2__TimeSeries *ts,
    rwgen_series_t *s, char ***syms, size_t *nsyms)
{
    size_t                                i, k;
    uint32_t                             *refs;
    Io__Prometheus__Write__V2__Exemplar **x;

    x = rwgen_alloc(s->nx * sizeof(*x) + 1);

    for (i = 0; i < s->nx; i++) {
        x[i] = rwgen_alloc(sizeof(Io__Prometheus__Write__V2__Exemplar));
        io__prometheus__write__v2__exemplar__init(x[i]);

        refs = rwgen_alloc(2 * s->x[i].nlabels * sizeof(uint32_t) + 1);
        for (k = 0; k < s->x[i].nlabels; k++) {
            refs[2 * k] = rwgen_symbol(syms, nsyms, s->x[i].name[k]);
            refs[2 * k + 1] = rwgen_symbol(syms, nsyms, s->x[i].value[k]);
        }

        x[i]->n_labels_refs = 2 * s->x[i].nlabels;
        x[i]->labels_refs = refs;
        x[i]->timestamp = s->x[i].t;
        x[i]->value = s->x[i].v;
    }

    ts->n_exemplars = s->nx;
    ts->exemplars = x;
}


static uint32_t
rwgen_symbol(char ***syms, size_t *nsyms, char *s)
{
    size_t  i;

    for (i = 0; i < *nsyms; i++) {
        if (strcmp((*syms)[i], s) == 0) {
            return (uint32_t) i;
        }
    }

    *syms = realloc(*syms, (*nsyms + 1) * sizeof(char *));
    if (*syms == NULL) {
        fprintf(stderr, "rwgen: out of memory\n");
        exit(1);
    }

    (*syms)[*nsyms] = s;

    return (uint32_t) (*nsyms)++;
}


static void *
rwgen_alloc(size_t n)
{
    void  *p;

    p = calloc(1, n);
    if (p == NULL) {
        fprintf(stderr, "rwgen: out of memory\n");
        exit(1);
    }

    return p;
}
