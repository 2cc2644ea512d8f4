/*
 * Copyright (C) ngx_tsdb authors
 *
 * Native histograms in the evaluator, with the arithmetic of Prometheus
 * 2.42's FloatHistogram (model/histogram/float_histogram.go): integer
 * histograms read as float histograms, Add and Sub at the lower of two
 * schemas with the zero buckets reconciled, counter reset detection,
 * and promql/quantile.go's histogramQuantile and histogramFraction
 * (linear interpolation in a bucket, the zero bucket's bound taken as 0
 * when the histogram has buckets of one sign only).
 *
 * A histogram point's value is a NaN tagged with the histogram's index
 * in ev->hist (TS_PQ_HIST_TAG): points stay two words, and functions
 * that do not know histograms see a NaN.
 */

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ts_pqeval_int.h"


/*
 * exponentialBounds of Prometheus for schema 8; schema s < 8 takes
 * every 2^(8-s)th.  Prometheus's constants, not 2^(i/256)/2 as libm
 * computes it: some differ in the last bits, and bounds show in JSON.
 */
static const double  ts_pq_hbounds[256] = {
    0.5, 0.5013556375251013, 0.5027149505564014,
    0.5040779490592088, 0.5054446430258502, 0.5068150424757447,
    0.5081891574554764, 0.509566998038869, 0.5109485743270583,
    0.5123338964485679, 0.5137229745593818, 0.5151158188430205,
    0.5165124395106142, 0.5179128468009786, 0.5193170509806894,
    0.520725062344158, 0.5221368912137069, 0.5235525479396449,
    0.5249720429003435, 0.526395386502313, 0.5278225891802786,
    0.5292536613972564, 0.5306886136446309, 0.5321274564422321,
    0.5335702003384117, 0.5350168559101208, 0.5364674337629877,
    0.5379219445313954, 0.5393803988785598, 0.5408428074966075,
    0.5423091811066545, 0.5437795304588847, 0.5452538663326288,
    0.5467321995364429, 0.5482145409081883, 0.549700901315111,
    0.5511912916539204, 0.5526857228508706, 0.5541842058618393,
    0.5556867516724088, 0.5571933712979462, 0.5587040757836845,
    0.5602188762048033, 0.5617377836665098, 0.5632608093041209,
    0.564787964283144, 0.5663192597993595, 0.5678547070789026,
    0.5693943173783458, 0.5709381019847808, 0.572486072215902,
    0.5740382394200894, 0.5755946149764913, 0.5771552102951081,
    0.5787200368168754, 0.5802891060137493, 0.5818624293887887,
    0.5834400184762408, 0.585021884841625, 0.5866080400818185,
    0.5881984958251406, 0.5897932637314379, 0.5913923554921704,
    0.5929957828304968, 0.5946035575013605, 0.5962156912915756,
    0.5978321960199137, 0.5994530835371903, 0.6010783657263515,
    0.6027080545025619, 0.6043421618132907, 0.6059806996384005,
    0.6076236799902344, 0.6092711149137041, 0.6109230164863786,
    0.6125793968185725, 0.6142402680534349, 0.6159056423670379,
    0.6175755319684665, 0.6192499490999082, 0.620928906036742,
    0.622612415087629, 0.6243004885946023, 0.6259931389331581,
    0.6276903785123455, 0.6293922197748583, 0.6310986751971253,
    0.6328097572894031, 0.6345254785958666, 0.6362458516947014,
    0.637970889198196, 0.6397006037528346, 0.6414350080393891,
    0.6431741147730128, 0.6449179367033329, 0.6466664866145447,
    0.6484197773255048, 0.6501778216898253, 0.6519406325959679,
    0.6537082229673385, 0.6554806057623822, 0.6572577939746774,
    0.659039800633032, 0.6608266388015788, 0.6626183215798706,
    0.6644148621029772, 0.6662162735415805, 0.6680225691020727,
    0.6698337620266515, 0.6716498655934177, 0.6734708931164728,
    0.6752968579460171, 0.6771277734684463, 0.6789636531064505,
    0.6808045103191123, 0.6826503586020058, 0.6845012114872953,
    0.6863570825438342, 0.688217985377265, 0.690083933630119,
    0.6919549409819159, 0.6938310211492645, 0.6957121878859629,
    0.6975984549830999, 0.6994898362691555, 0.7013863456101023,
    0.7032879969095076, 0.7051948041086352, 0.7071067811865475,
    0.7090239421602076, 0.7109463010845827, 0.7128738720527471,
    0.7148066691959849, 0.7167447066838943, 0.718687998724491,
    0.7206365595643126, 0.7225904034885232, 0.7245495448210174,
    0.7265139979245261, 0.7284837772007218, 0.7304588970903234,
    0.7324393720732029, 0.7344252166684908, 0.7364164454346837,
    0.7384130729697496, 0.7404151139112358, 0.7424225829363761,
    0.7444354947621984, 0.7464538641456323, 0.7484777058836176,
    0.7505070348132126, 0.7525418658117031, 0.7545822137967112,
    0.7566280937263048, 0.7586795205991071, 0.7607365094544071,
    0.762799075372269, 0.7648672334736434, 0.7669409989204777,
    0.7690203869158282, 0.7711054127039704, 0.7731960915705107,
    0.7752924388424999, 0.7773944698885442, 0.7795022001189185,
    0.7816156449856788, 0.7837348199827764, 0.7858597406461707,
    0.7879904225539431, 0.7901268813264122, 0.7922691326262467,
    0.7944171921585818, 0.7965710756711334, 0.7987307989543135,
    0.8008963778413465, 0.8030678282083853, 0.805245165974627,
    0.8074284071024302, 0.8096175675974316, 0.8118126635086642,
    0.8140137109286738, 0.8162207259936375, 0.8184337248834821,
    0.820652723822003, 0.8228777390769823, 0.8251087869603088,
    0.8273458838280969, 0.8295890460808079, 0.8318382901633681,
    0.8340936325652911, 0.8363550898207981, 0.8386226785089391,
    0.8408964152537144, 0.8431763167241966, 0.8454623996346523,
    0.8477546807446661, 0.8500531768592616, 0.8523579048290255,
    0.8546688815502312, 0.8569861239649629, 0.8593096490612387,
    0.8616394738731368, 0.8639756154809185, 0.8663180910111553,
    0.8686669176368529, 0.871022112577578, 0.8733836930995842,
    0.8757516765159389, 0.8781260801866495, 0.8805069215187917,
    0.8828942179666361, 0.8852879870317771, 0.8876882462632604,
    0.890095013257712, 0.8925083056594671, 0.8949281411607002,
    0.8973545375015533, 0.8997875124702672, 0.9022270839033115,
    0.9046732696855155, 0.9071260877501991, 0.909585556079304,
    0.9120516927035263, 0.9145245157024483, 0.9170040432046711,
    0.9194902933879467, 0.9219832844793128, 0.9244830347552253,
    0.9269895625416926, 0.92950288621441, 0.9320230241988943,
    0.9345499949706191, 0.9370838170551498, 0.93962450902828,
    0.9421720895161669, 0.9447265771954693, 0.9472879907934827,
    0.9498563490882775, 0.9524316709088368, 0.9550139751351947,
    0.9576032806985735, 0.9601996065815236, 0.9628029718180622,
    0.9654133954938133, 0.9680308967461471, 0.9706554947643201,
    0.9732872087896164, 0.9759260581154889, 0.9785720620876999,
    0.9812252401044634, 0.9838856116165875, 0.9865531961276168,
    0.9892280131939752, 0.9919100824251095, 0.9945994234836328,
    0.9972960560854698,
};


static void ts_pq_hist_side(ts_pq_ev_t *ev, ts_pq_hist_t *h, int pos,
    const ts_hist_t *src);
static uint32_t ts_pq_hist_reduce(ts_pqeval_bucket_t *b, uint32_t n,
    int32_t from, int32_t to);
static double ts_pq_hist_zero_for(const ts_pq_hist_t *h, double *larger);
static uint32_t ts_pq_hist_trim(ts_pqeval_bucket_t *b, uint32_t n,
    int32_t schema, double zt);
static uint32_t ts_pq_hist_merge(ts_pqeval_bucket_t *out,
    const ts_pqeval_bucket_t *a, uint32_t na, const ts_pqeval_bucket_t *b,
    uint32_t nb, int sign);


double
ts_pqeval_hist_bound(int32_t idx, int32_t schema)
{
    int64_t  exp;
    double   frac;

    if (schema < 0) {
        exp = (int64_t) idx * ((int64_t) 1 << -schema);

        if (exp == 1024) {
            return DBL_MAX;
        }

        return ldexp(1, (int) (exp < -2000 ? -2000 : exp > 2000 ? 2000 : exp));
    }

    if (schema > 8) {
        schema = 8;
    }

    frac = ts_pq_hbounds[(uint32_t) (idx & ((1 << schema) - 1))
                         << (8 - schema)];
    /* floor division, as Go's >> of a negative int */
    exp = (idx >= 0 ? idx >> schema
                    : -(int64_t) ((-(int64_t) idx + (1 << schema) - 1)
                                  >> schema)) + 1;

    if (frac == 0.5 && exp == 1025) {
        return DBL_MAX;
    }

    return ldexp(frac, (int) (exp < -2000 ? -2000 : exp > 2000 ? 2000 : exp));
}


ts_pq_hist_t *
ts_pq_hist_new(ts_pq_ev_t *ev, uint32_t n_pos, uint32_t n_neg)
{
    ts_pq_hist_t  *h;

    h = ts_pq_alloc(ev, sizeof(ts_pq_hist_t)
                        + (n_pos + n_neg) * sizeof(ts_pqeval_bucket_t));
    memset(h, 0, sizeof(ts_pq_hist_t));
    h->pos = (ts_pqeval_bucket_t *) (h + 1);
    h->neg = h->pos + n_pos;

    return h;
}


ts_pq_hist_t *
ts_pq_hist_from(ts_pq_ev_t *ev, const ts_hist_t *src)
{
    ts_pq_hist_t  *h;

    h = ts_pq_hist_new(ev, src->n_pos, src->n_neg);
    h->schema = src->schema;
    h->reset_hint = src->reset_hint;
    h->zero_threshold = src->zero_threshold;
    memcpy(&h->sum, &src->sum, sizeof(double));

    if (src->is_float) {
        h->count = src->fcount;
        h->zero_count = src->fzero_count;

    } else {
        h->count = (double) src->count;
        h->zero_count = (double) src->zero_count;
    }

    ts_pq_hist_side(ev, h, 1, src);
    ts_pq_hist_side(ev, h, 0, src);

    return h;
}


static void
ts_pq_hist_side(ts_pq_ev_t *ev, ts_pq_hist_t *h, int pos, const ts_hist_t *src)
{
    int64_t             acc;
    int32_t             idx;
    uint32_t            i, k, n, nspans, nb;
    ts_pqeval_bucket_t *b;
    const ts_hspan_t   *spans;

    (void) ev;

    b = pos ? h->pos : h->neg;
    spans = pos ? src->pos_spans : src->neg_spans;
    nspans = pos ? src->n_pos_spans : src->n_neg_spans;
    nb = pos ? src->n_pos : src->n_neg;
    idx = 0;
    acc = 0;
    n = 0;

    for (i = 0; i < nspans; i++) {
        idx += spans[i].offset;

        for (k = 0; k < spans[i].length && n < nb; k++, idx++, n++) {
            b[n].idx = idx;

            if (src->is_float) {
                b[n].count = pos ? src->pos_counts[n] : src->neg_counts[n];

            } else {
                acc += pos ? src->pos_deltas[n] : src->neg_deltas[n];
                b[n].count = (double) acc;
            }
        }
    }

    if (pos) {
        h->n_pos = n;

    } else {
        h->n_neg = n;
    }
}


ts_pq_hist_t *
ts_pq_hist_copy(ts_pq_ev_t *ev, const ts_pq_hist_t *h)
{
    ts_pq_hist_t  *c;

    c = ts_pq_hist_new(ev, h->n_pos, h->n_neg);
    c->schema = h->schema;
    c->reset_hint = h->reset_hint;
    c->zero_threshold = h->zero_threshold;
    c->zero_count = h->zero_count;
    c->count = h->count;
    c->sum = h->sum;
    c->n_pos = h->n_pos;
    c->n_neg = h->n_neg;
    memcpy(c->pos, h->pos, h->n_pos * sizeof(ts_pqeval_bucket_t));
    memcpy(c->neg, h->neg, h->n_neg * sizeof(ts_pqeval_bucket_t));

    return c;
}


ts_pq_hist_t *
ts_pq_hist_to_schema(ts_pq_ev_t *ev, const ts_pq_hist_t *h, int32_t schema)
{
    ts_pq_hist_t  *c;

    c = ts_pq_hist_copy(ev, h);

    if (schema < h->schema) {
        c->n_pos = ts_pq_hist_reduce(c->pos, c->n_pos, h->schema, schema);
        c->n_neg = ts_pq_hist_reduce(c->neg, c->n_neg, h->schema, schema);
        c->schema = schema;
    }

    return c;
}


double
ts_pq_hist_ref(ts_pq_ev_t *ev, ts_pq_hist_t *h)
{
    double    v;
    uint64_t  bits;

    if (ev->nhist == ev->hcap) {
        ev->hcap = ev->hcap ? ev->hcap * 2 : 64;
        ev->hist = ts_pq_realloc(ev, ev->hist,
                                 ev->hcap * sizeof(ts_pq_hist_t *));
    }

    ev->hist[ev->nhist] = h;
    bits = TS_PQ_HIST_TAG | ev->nhist++;
    memcpy(&v, &bits, sizeof(v));

    return v;
}


int
ts_pq_is_hist(double v)
{
    uint64_t  bits;

    memcpy(&bits, &v, sizeof(bits));

    return (bits & TS_PQ_HIST_MASK) == TS_PQ_HIST_TAG;
}


ts_pq_hist_t *
ts_pq_hist_get(ts_pq_ev_t *ev, double v)
{
    uint64_t  bits;

    memcpy(&bits, &v, sizeof(bits));

    if ((bits & TS_PQ_HIST_MASK) != TS_PQ_HIST_TAG
        || (bits & TS_PQ_HIST_IDX) >= ev->nhist)
    {
        return NULL;
    }

    return ev->hist[bits & TS_PQ_HIST_IDX];
}


/* Prometheus's targetIdx: bucket idx of schema from in schema to */

static int32_t
ts_pq_hist_target(int32_t idx, int32_t from, int32_t to)
{
    int64_t  i;

    i = (int64_t) idx - 1;
    i = i >= 0 ? i >> (from - to)
               : -((-i + ((int64_t) 1 << (from - to)) - 1) >> (from - to));

    return (int32_t) (i + 1);
}


/* buckets of schema from to schema to <= from, in place; new count */

static uint32_t
ts_pq_hist_reduce(ts_pqeval_bucket_t *b, uint32_t n, int32_t from, int32_t to)
{
    int32_t   idx;
    uint32_t  i, k;

    if (to >= from) {
        return n;
    }

    for (i = 0, k = 0; i < n; i++) {
        idx = ts_pq_hist_target(b[i].idx, from, to);

        if (k > 0 && b[k - 1].idx == idx) {
            b[k - 1].count += b[i].count;

        } else {
            b[k].idx = idx;
            b[k].count = b[i].count;
            k++;
        }
    }

    return k;
}


/*
 * zeroCountForLargerThreshold: h's zero count with the buckets below
 * *larger added, *larger raised to the upper bound of a populated bucket
 * it falls into
 */

static double
ts_pq_hist_zero_for(const ts_pq_hist_t *h, double *larger)
{
    int       side;
    double    count, lower, upper;
    uint32_t  i, n;
    const ts_pqeval_bucket_t  *b;

    if (*larger == h->zero_threshold) {
        return h->zero_count;
    }

again:

    count = h->zero_count;

    for (side = 0; side < 2; side++) {
        b = side ? h->neg : h->pos;
        n = side ? h->n_neg : h->n_pos;

        for (i = 0; i < n; i++) {
            lower = ts_pqeval_hist_bound(b[i].idx - 1, h->schema);
            upper = ts_pqeval_hist_bound(b[i].idx, h->schema);

            if (lower >= *larger) {
                break;
            }

            count += b[i].count;

            if (upper > *larger) {
                if (b[i].count != 0) {
                    *larger = upper;
                    goto again;
                }

                break;
            }
        }
    }

    return count;
}


/* drops the buckets that lie within the zero bucket */

static uint32_t
ts_pq_hist_trim(ts_pqeval_bucket_t *b, uint32_t n, int32_t schema, double zt)
{
    uint32_t  i;

    for (i = 0; i < n && ts_pqeval_hist_bound(b[i].idx, schema) <= zt; i++) {
        /* void */
    }

    if (i > 0) {
        memmove(b, b + i, (n - i) * sizeof(ts_pqeval_bucket_t));
    }

    return n - i;
}


static uint32_t
ts_pq_hist_merge(ts_pqeval_bucket_t *out, const ts_pqeval_bucket_t *a,
    uint32_t na, const ts_pqeval_bucket_t *b, uint32_t nb, int sign)
{
    uint32_t  i, k, n;

    for (i = 0, k = 0, n = 0; i < na || k < nb; n++) {
        if (k == nb || (i < na && a[i].idx < b[k].idx)) {
            out[n] = a[i++];

        } else if (i == na || b[k].idx < a[i].idx) {
            out[n].idx = b[k].idx;
            out[n].count = sign > 0 ? b[k].count : -b[k].count;
            k++;

        } else {
            out[n].idx = a[i].idx;
            out[n].count = sign > 0 ? a[i].count + b[k].count
                                    : a[i].count - b[k].count;
            i++;
            k++;
        }
    }

    return n;
}


ts_pq_hist_t *
ts_pq_hist_add(ts_pq_ev_t *ev, const ts_pq_hist_t *a, const ts_pq_hist_t *b,
    int sign)
{
    double         zt, za, zb;
    int32_t        schema;
    ts_pq_hist_t  *x, *y, *r;

    schema = a->schema < b->schema ? a->schema : b->schema;

    x = ts_pq_hist_copy(ev, a);
    y = ts_pq_hist_copy(ev, b);
    x->n_pos = ts_pq_hist_reduce(x->pos, x->n_pos, x->schema, schema);
    x->n_neg = ts_pq_hist_reduce(x->neg, x->n_neg, x->schema, schema);
    y->n_pos = ts_pq_hist_reduce(y->pos, y->n_pos, y->schema, schema);
    y->n_neg = ts_pq_hist_reduce(y->neg, y->n_neg, y->schema, schema);
    x->schema = schema;
    y->schema = schema;

    /* reconcileZeroBuckets: the larger threshold, grown as needed */

    zt = a->zero_threshold > b->zero_threshold ? a->zero_threshold
                                               : b->zero_threshold;
    za = ts_pq_hist_zero_for(x, &zt);
    zb = ts_pq_hist_zero_for(y, &zt);
    za = ts_pq_hist_zero_for(x, &zt);

    if (zt != x->zero_threshold || zt != y->zero_threshold) {
        x->n_pos = ts_pq_hist_trim(x->pos, x->n_pos, schema, zt);
        x->n_neg = ts_pq_hist_trim(x->neg, x->n_neg, schema, zt);
        y->n_pos = ts_pq_hist_trim(y->pos, y->n_pos, schema, zt);
        y->n_neg = ts_pq_hist_trim(y->neg, y->n_neg, schema, zt);
    }

    r = ts_pq_hist_new(ev, x->n_pos + y->n_pos, x->n_neg + y->n_neg);
    r->schema = schema;
    r->reset_hint = a->reset_hint;
    r->zero_threshold = zt;

    if (sign > 0) {
        r->zero_count = za + zb;
        r->count = a->count + b->count;
        r->sum = a->sum + b->sum;

    } else {
        r->zero_count = za - zb;
        r->count = a->count - b->count;
        r->sum = a->sum - b->sum;
    }

    r->n_pos = ts_pq_hist_merge(r->pos, x->pos, x->n_pos, y->pos, y->n_pos,
                                sign);
    r->n_neg = ts_pq_hist_merge(r->neg, x->neg, x->n_neg, y->neg, y->n_neg,
                                sign);

    ts_pq_free(ev, x);
    ts_pq_free(ev, y);

    return r;
}


void
ts_pq_hist_mul(ts_pq_hist_t *h, double f)
{
    uint32_t  i;

    h->zero_count *= f;
    h->count *= f;
    h->sum *= f;

    for (i = 0; i < h->n_pos; i++) {
        h->pos[i].count *= f;
    }

    for (i = 0; i < h->n_neg; i++) {
        h->neg[i].count *= f;
    }
}


void
ts_pq_hist_div(ts_pq_hist_t *h, double d)
{
    uint32_t  i;

    h->zero_count /= d;
    h->count /= d;
    h->sum /= d;

    for (i = 0; i < h->n_pos; i++) {
        h->pos[i].count /= d;
    }

    for (i = 0; i < h->n_neg; i++) {
        h->neg[i].count /= d;
    }
}


void
ts_pq_hist_compact(ts_pq_hist_t *h)
{
    uint32_t  i, k;

    for (i = 0, k = 0; i < h->n_pos; i++) {
        if (h->pos[i].count != 0) {
            h->pos[k++] = h->pos[i];
        }
    }

    h->n_pos = k;

    for (i = 0, k = 0; i < h->n_neg; i++) {
        if (h->neg[i].count != 0) {
            h->neg[k++] = h->neg[i];
        }
    }

    h->n_neg = k;
}


/* the count of bucket idx in b[0 .. n) at curr's schema, from *i on */

static int
ts_pq_hist_side_reset(const ts_pqeval_bucket_t *cb, uint32_t cn,
    const ts_pqeval_bucket_t *pb, uint32_t pn, int32_t cschema,
    int32_t pschema, double zt)
{
    double    pc;
    int32_t   idx;
    uint32_t  i, k;

    /* previous buckets at the current schema, merged as they come */

    k = 0;

    for (i = 0; i < pn; ) {
        idx = ts_pq_hist_target(pb[i].idx, pschema, cschema);
        pc = 0;

        while (i < pn && ts_pq_hist_target(pb[i].idx, pschema, cschema)
                         == idx)
        {
            pc += pb[i].count;
            i++;
        }

        if (ts_pqeval_hist_bound(idx, cschema) <= zt) {
            continue;
        }

        while (k < cn && cb[k].idx < idx) {
            k++;
        }

        if (k < cn && cb[k].idx == idx) {
            if (cb[k].count < pc) {
                return 1;
            }

        } else if (pc != 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * FloatHistogram.DetectReset, from the counts alone: 2.42 does not take
 * the chunk's counter-reset hint as an answer (a subquery that skips the
 * first sample after a reset still finds the reset there, with the
 * samples that follow carrying "not a reset")
 */

int
ts_pq_hist_reset(const ts_pq_hist_t *curr, const ts_pq_hist_t *prev)
{
    double  zt, pz;

    if (curr->count < prev->count || curr->schema > prev->schema
        || curr->zero_threshold < prev->zero_threshold)
    {
        return 1;
    }

    zt = curr->zero_threshold;
    pz = ts_pq_hist_zero_for(prev, &zt);

    if (zt != curr->zero_threshold || curr->zero_count < pz) {
        return 1;
    }

    return ts_pq_hist_side_reset(curr->pos, curr->n_pos, prev->pos,
                                 prev->n_pos, curr->schema, prev->schema, zt)
           || ts_pq_hist_side_reset(curr->neg, curr->n_neg, prev->neg,
                                    prev->n_neg, curr->schema, prev->schema,
                                    zt);
}


/* AllBucketIterator: negative buckets from the lowest, zero, positive */

typedef struct {
    const ts_pq_hist_t     *h;
    uint32_t                state;      /* 0 negative, 1 zero, 2 positive */
    uint32_t                i;
    double                  lower;
    double                  upper;
    double                  count;
} ts_pq_hiter_t;


static int
ts_pq_hiter_next(ts_pq_hiter_t *it)
{
    const ts_pq_hist_t        *h;
    const ts_pqeval_bucket_t  *b;

    h = it->h;

    if (it->state == 0) {
        if (it->i < h->n_neg) {
            b = &h->neg[h->n_neg - 1 - it->i++];
            it->lower = -ts_pqeval_hist_bound(b->idx, h->schema);
            it->upper = -ts_pqeval_hist_bound(b->idx - 1, h->schema);
            it->count = b->count;
            return 1;
        }

        it->state = 1;
        it->i = 0;

        if (h->zero_count > 0) {
            it->lower = -h->zero_threshold;
            it->upper = h->zero_threshold;
            it->count = h->zero_count;
            return 2;
        }
    }

    it->state = 2;

    if (it->i < h->n_pos) {
        b = &h->pos[it->i++];
        it->lower = ts_pqeval_hist_bound(b->idx - 1, h->schema);
        it->upper = ts_pqeval_hist_bound(b->idx, h->schema);
        it->count = b->count;
        return 3;
    }

    return 0;
}


/* promql/quantile.go histogramQuantile of 2.42 */

double
ts_pq_hist_quantile(double q, const ts_pq_hist_t *h)
{
    double         count, rank, lower, upper, bcount;
    ts_pq_hiter_t  it;

    if (q < 0) {
        return -INFINITY;
    }

    if (q > 1) {
        return INFINITY;
    }

    if (h->count == 0 || isnan(q)) {
        return NAN;
    }

    memset(&it, 0, sizeof(it));
    it.h = h;
    count = 0;
    rank = q * h->count;
    lower = 0;
    upper = 0;
    bcount = 0;

    while (ts_pq_hiter_next(&it)) {
        lower = it.lower;
        upper = it.upper;
        bcount = it.count;
        count += bcount;

        if (count >= rank) {
            break;
        }
    }

    if (lower < 0 && upper > 0) {
        if (h->n_neg == 0 && h->n_pos > 0) {
            lower = 0;

        } else if (h->n_pos == 0 && h->n_neg > 0) {
            upper = 0;
        }
    }

    if (count > h->count) {
        count = h->count;
    }

    if (count < rank) {
        return upper;
    }

    rank -= count - bcount;

    return lower + (upper - lower) * (rank / bcount);
}


/* promql/quantile.go histogramFraction of 2.42 */

double
ts_pq_hist_fraction(double lower, double upper, const ts_pq_hist_t *h)
{
    int            lower_set, upper_set;
    double         rank, lower_rank, upper_rank, bl, bu;
    ts_pq_hiter_t  it;

    if (h->count == 0 || isnan(lower) || isnan(upper)) {
        return NAN;
    }

    if (lower >= upper) {
        return 0;
    }

    memset(&it, 0, sizeof(it));
    it.h = h;
    rank = 0;
    lower_rank = 0;
    upper_rank = 0;
    lower_set = 0;
    upper_set = 0;

    while (ts_pq_hiter_next(&it)) {
        bl = it.lower;
        bu = it.upper;

        if (bl < 0 && bu > 0) {
            if (h->n_neg == 0 && h->n_pos > 0) {
                bl = 0;

            } else if (h->n_pos == 0 && h->n_neg > 0) {
                bu = 0;
            }
        }

        if (!lower_set && bl >= lower) {
            lower_rank = rank;
            lower_set = 1;
        }

        if (!upper_set && bl >= upper) {
            upper_rank = rank;
            upper_set = 1;
        }

        if (lower_set && upper_set) {
            break;
        }

        if (!lower_set && bl < lower && bu > lower) {
            lower_rank = rank + it.count * (lower - bl) / (bu - bl);
            lower_set = 1;
        }

        if (!upper_set && bl < upper && bu > upper) {
            upper_rank = rank + it.count * (upper - bl) / (bu - bl);
            upper_set = 1;
        }

        if (lower_set && upper_set) {
            break;
        }

        rank += it.count;
    }

    if (!lower_set || lower_rank > h->count) {
        lower_rank = h->count;
    }

    if (!upper_set || upper_rank > h->count) {
        upper_rank = h->count;
    }

    return (upper_rank - lower_rank) / h->count;
}
