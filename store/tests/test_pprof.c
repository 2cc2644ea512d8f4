/*
 * Copyright (C) ngx_tsdb authors
 *
 * pprof decode/merge/encode and bounded inflate tests.  Every profile is
 * built with protobuf-c's encoder (tp_base() and per-case edits) or read
 * from the Go 1.19 fixtures in t/data/pprof/; protobuf-c's unpack serves
 * as the independent decoder that checks ours and our encoder.  Tables:
 * one case per decode error and limit, per merge rule; allocator
 * accounting (everything freed, failure at every allocation).
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "profile.pb-c.h"
#include "ts_error.h"
#include "ts_inflate.h"
#include "ts_pprof.h"


#define TP_DATA         "t/data/pprof/"
#define TP_N            32

#define tp_check(name, cond)                                              \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fail_msg("%s: %s (line %d)", (name), #cond, __LINE__);        \
        }                                                                 \
    } while (0)


/* a Profile under construction, for protobuf-c's packer */
typedef struct {
    Perftools__Profiles__Profile     p;
    char                            *str[TP_N];
    Perftools__Profiles__ValueType   vt[4];
    Perftools__Profiles__ValueType  *vtp[4];
    Perftools__Profiles__ValueType   pt;
    Perftools__Profiles__Sample      smp[TP_N];
    Perftools__Profiles__Sample     *smpp[TP_N];
    uint64_t                         lid[TP_N][8];
    int64_t                          val[TP_N][4];
    Perftools__Profiles__Label       lab[TP_N][4];
    Perftools__Profiles__Label      *labp[TP_N][4];
    Perftools__Profiles__Mapping     map[4];
    Perftools__Profiles__Mapping    *mapp[4];
    Perftools__Profiles__Location    loc[TP_N];
    Perftools__Profiles__Location   *locp[TP_N];
    Perftools__Profiles__Line        line[TP_N][2];
    Perftools__Profiles__Line       *linep[TP_N][2];
    Perftools__Profiles__Function    fn[TP_N];
    Perftools__Profiles__Function   *fnp[TP_N];
    int64_t                          comment[4];
} tp_prof_t;


typedef struct {
    size_t       allocs;
    size_t       frees;
    size_t       fail_at;
} tp_alloc_t;


/* string indexes of tp_base() */
enum {
    TS_EMPTY = 0, TS_SAMPLES, TS_COUNT, TS_CPU, TS_NS, TS_MAIN, TS_FOO,
    TS_FILE, TS_BIN, TS_BUILD, TS_KEY, TS_VAL, TS_BYTES, TS_MAIN2,
    TS_NSTR
};

static const char  *tp_strings[TS_NSTR] = {
    "", "samples", "count", "cpu", "nanoseconds", "main", "foo",
    "main.go", "/bin/app", "b1d", "key", "val", "bytes", "main"
};


static void
tp_string(tp_prof_t *t, const char *s)
{
    t->str[t->p.n_string_table++] = (char *) s;
}


static void
tp_location(tp_prof_t *t, uint64_t id, uint64_t mapping, uint64_t addr,
    uint64_t fn, int64_t line)
{
    size_t                          i;
    Perftools__Profiles__Location  *l;

    i = t->p.n_location++;
    l = &t->loc[i];
    perftools__profiles__location__init(l);
    l->id = id;
    l->mapping_id = mapping;
    l->address = addr;
    t->locp[i] = l;

    perftools__profiles__line__init(&t->line[i][0]);
    t->line[i][0].function_id = fn;
    t->line[i][0].line = line;
    t->linep[i][0] = &t->line[i][0];
    l->line = t->linep[i];
    l->n_line = 1;
}


static void
tp_function(tp_prof_t *t, uint64_t id, int64_t name, int64_t start)
{
    size_t                          i;
    Perftools__Profiles__Function  *f;

    i = t->p.n_function++;
    f = &t->fn[i];
    perftools__profiles__function__init(f);
    f->id = id;
    f->name = name;
    f->system_name = name;
    f->filename = TS_FILE;
    f->start_line = start;
    t->fnp[i] = f;
}


/* a sample with locations (leaf first), two values */
static Perftools__Profiles__Sample *
tp_sample(tp_prof_t *t, int64_t v0, int64_t v1, size_t n, ...)
{
    size_t                        i, k;
    va_list                       ap;
    Perftools__Profiles__Sample  *s;

    i = t->p.n_sample++;
    s = &t->smp[i];
    perftools__profiles__sample__init(s);

    va_start(ap, n);

    for (k = 0; k < n; k++) {
        t->lid[i][k] = va_arg(ap, uint64_t);
    }

    va_end(ap);

    s->location_id = t->lid[i];
    s->n_location_id = n;
    t->val[i][0] = v0;
    t->val[i][1] = v1;
    s->value = t->val[i];
    s->n_value = 2;
    s->label = t->labp[i];
    t->smpp[i] = s;

    return s;
}


static void
tp_label(tp_prof_t *t, Perftools__Profiles__Sample *s, int64_t key,
    int64_t str, int64_t num, int64_t unit)
{
    size_t                       i;
    Perftools__Profiles__Label  *l;

    i = (size_t) (s - t->smp);
    l = &t->lab[i][s->n_label];
    perftools__profiles__label__init(l);
    l->key = key;
    l->str = str;
    l->num = num;
    l->num_unit = unit;
    t->labp[i][s->n_label++] = l;
}


/*
 * The base profile: samples/count and cpu/nanoseconds, one mapping with
 * a build id, functions main (twice in the string table: both must
 * become one function) and foo, three samples of which two are equal.
 */
static void
tp_base(tp_prof_t *t)
{
    size_t                       i;
    Perftools__Profiles__Sample  *s;

    memset(t, 0, sizeof(*t));
    perftools__profiles__profile__init(&t->p);

    t->p.string_table = t->str;

    for (i = 0; i < TS_NSTR; i++) {
        tp_string(t, tp_strings[i]);
    }

    for (i = 0; i < 2; i++) {
        perftools__profiles__value_type__init(&t->vt[i]);
        t->vt[i].type = i == 0 ? TS_SAMPLES : TS_CPU;
        t->vt[i].unit = i == 0 ? TS_COUNT : TS_NS;
        t->vtp[i] = &t->vt[i];
    }

    t->p.sample_type = t->vtp;
    t->p.n_sample_type = 2;

    perftools__profiles__value_type__init(&t->pt);
    t->pt.type = TS_CPU;
    t->pt.unit = TS_NS;
    t->p.period_type = &t->pt;
    t->p.period = 10000000;
    t->p.time_nanos = 1000;
    t->p.duration_nanos = 500;

    perftools__profiles__mapping__init(&t->map[0]);
    t->map[0].id = 1;
    t->map[0].memory_start = 0x400000;
    t->map[0].memory_limit = 0x800000;
    t->map[0].filename = TS_BIN;
    t->map[0].build_id = TS_BUILD;
    t->map[0].has_functions = 1;
    t->mapp[0] = &t->map[0];
    t->p.mapping = t->mapp;
    t->p.n_mapping = 1;

    t->p.function = t->fnp;
    tp_function(t, 1, TS_MAIN, 10);
    tp_function(t, 2, TS_FOO, 20);
    tp_function(t, 3, TS_MAIN2, 10);

    t->p.location = t->locp;
    tp_location(t, 1, 1, 0x401000, 1, 11);
    tp_location(t, 2, 1, 0x402000, 2, 21);
    tp_location(t, 3, 1, 0x401000, 3, 11);

    t->p.sample = t->smpp;
    (void) tp_sample(t, 1, 10, 2, (uint64_t) 2, (uint64_t) 1);
    s = tp_sample(t, 2, 20, 1, (uint64_t) 2);
    tp_label(t, s, TS_KEY, TS_VAL, 0, 0);
    tp_label(t, s, TS_BYTES, 0, 64, TS_BYTES);
    /* location 3 is location 1 under another function id: equal */
    (void) tp_sample(t, 3, 30, 2, (uint64_t) 2, (uint64_t) 3);
}


static uint8_t *
tp_pack(const tp_prof_t *t, size_t *len)
{
    uint8_t  *buf;

    *len = perftools__profiles__profile__get_packed_size(&t->p);
    buf = malloc(*len + 16);
    assert_non_null(buf);
    (void) perftools__profiles__profile__pack(&t->p, buf);

    return buf;
}


static uint8_t *
tp_gzip(const uint8_t *in, size_t len, size_t *out_len)
{
    int       rc;
    uint8_t  *out;
    z_stream  zs;

    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);

    out = malloc(deflateBound(&zs, len) + 64);
    assert_non_null(out);

    zs.next_in = (Bytef *) in;
    zs.avail_in = (uInt) len;
    zs.next_out = out;
    zs.avail_out = (uInt) deflateBound(&zs, len) + 64;

    rc = deflate(&zs, Z_FINISH);
    assert_int_equal(rc, Z_STREAM_END);

    *out_len = zs.total_out;
    deflateEnd(&zs);

    return out;
}


static uint8_t *
tp_slurp(const char *name, size_t *len)
{
    FILE     *f;
    char      path[256];
    uint8_t  *buf;

    snprintf(path, sizeof(path), TP_DATA "%s", name);
    f = fopen(path, "rb");
    assert_non_null(f);

    buf = malloc(1 << 20);
    assert_non_null(buf);

    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);

    return buf;
}


static int
tp_decode(const tp_prof_t *t, ts_pprof_t *p, const ts_pprof_limits_t *lim,
    ts_pprof_why_t *why)
{
    int       rc;
    size_t    len;
    uint8_t  *buf;

    buf = tp_pack(t, &len);
    ts_pprof_init(p, NULL, lim);

    rc = ts_pprof_decode(p, buf, len, why);
    free(buf);

    return rc;
}


static const char *
tp_str(const ts_pprof_t *p, uint32_t i)
{
    static char  buf[4][256];
    static int   k;

    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%.*s", (int) p->strings[i].len,
             p->strings[i].data);

    return buf[k];
}


/* the leaf function's name of sample i */
static const char *
tp_leaf(const ts_pprof_t *p, uint32_t i)
{
    const ts_pprof_location_t  *l;

    l = &p->locations[p->stacks[p->samples[i].stack] - 1];

    return tp_str(p, p->functions[p->lines[l->line].function - 1].name);
}


static int64_t
tp_total(const ts_pprof_t *p, uint32_t type)
{
    int64_t   sum;
    uint32_t  i;

    for (i = 0, sum = 0; i < p->nsamples; i++) {
        sum += p->values[(size_t) i * p->ntypes + type];
    }

    return sum;
}


/* collects encoder output */
typedef struct {
    uint8_t     *p;
    size_t       len;
    size_t       cap;
    int          fail_after;    /* calls; 0: never */
    int          calls;
} tp_buf_t;


static int
tp_write(void *data, const char *p, size_t len)
{
    tp_buf_t  *b;

    b = data;

    if (b->fail_after && ++b->calls >= b->fail_after) {
        return -1;
    }

    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }

    memcpy(b->p + b->len, p, len);
    b->len += len;

    return 0;
}


static Perftools__Profiles__Profile *
tp_encode_unpack(const ts_pprof_t *p, int level, tp_buf_t *b)
{
    size_t    n;
    uint8_t  *raw;

    memset(b, 0, sizeof(*b));
    assert_int_equal(ts_pprof_encode(p, level, tp_write, b), TS_OK);

    if (level == 0) {
        return perftools__profiles__profile__unpack(NULL, b->len, b->p);
    }

    assert_int_equal(ts_inflate_detect(b->p, b->len), TS_INFLATE_GZIP);
    assert_int_equal(ts_inflate(b->p, b->len, TS_INFLATE_GZIP, 1 << 26, NULL,
                                &raw, &n, NULL), TS_OK);
    free(b->p);
    b->p = raw;
    b->len = n;

    return perftools__profiles__profile__unpack(NULL, n, raw);
}


static void
test_decode_base(void **state)
{
    ts_pprof_t                     p;
    ts_pprof_why_t                 why;
    tp_prof_t                      t;
    tp_buf_t                       b;
    Perftools__Profiles__Profile  *u;

    (void) state;

    tp_base(&t);
    assert_int_equal(tp_decode(&t, &p, NULL, &why), TS_OK);

    assert_int_equal(p.ntypes, 2);
    assert_string_equal(tp_str(&p, p.types[1].type), "cpu");
    assert_string_equal(tp_str(&p, p.period_type.unit), "nanoseconds");
    assert_int_equal(p.period, 10000000);
    assert_int_equal(p.time_nanos, 1000);
    assert_int_equal(p.duration_nanos, 500);
    assert_string_equal(tp_str(&p, 0), "");

    /* "main" twice in the table, function 3 == function 1 */
    assert_int_equal(p.nfunctions, 2);
    assert_int_equal(p.nlocations, 2);
    assert_int_equal(p.nmappings, 1);
    assert_string_equal(tp_str(&p, p.mappings[0].build_id), "b1d");

    /* samples 1 and 3 are the same stack: summed */
    assert_int_equal(p.nsamples, 2);
    assert_int_equal(p.values[0], 4);
    assert_int_equal(p.values[1], 40);
    assert_string_equal(tp_leaf(&p, 0), "foo");
    assert_int_equal(p.samples[0].depth, 2);

    /* labels: the string one first, then the numeric one */
    assert_int_equal(p.samples[1].nlabels, 2);
    assert_string_equal(tp_str(&p, p.labels[p.samples[1].label].key), "key");
    assert_string_equal(tp_str(&p, p.labels[p.samples[1].label + 1].unit),
                        "bytes");
    assert_int_equal(p.labels[p.samples[1].label + 1].num, 64);

    /* our encoder, protobuf-c's decoder */
    u = tp_encode_unpack(&p, 0, &b);
    assert_non_null(u);
    assert_int_equal(u->n_sample, 2);
    assert_int_equal(u->n_location, 2);
    assert_int_equal(u->n_function, 2);
    assert_int_equal(u->n_string_table, p.nstrings);
    assert_int_equal(u->sample[0]->value[1], 40);
    assert_int_equal(u->sample[1]->n_label, 2);
    assert_int_equal(u->period, 10000000);
    perftools__profiles__profile__free_unpacked(u, NULL);
    free(b.p);

    u = tp_encode_unpack(&p, 6, &b);
    assert_non_null(u);
    assert_int_equal(u->n_sample, 2);
    perftools__profiles__profile__free_unpacked(u, NULL);
    free(b.p);

    ts_pprof_free(&p);
}


/* decode errors and limits: one case each */

typedef struct {
    const char         *name;
    void              (*mod)(tp_prof_t *t, ts_pprof_limits_t *lim);
    int                 rc;
    ts_pprof_reason_t   code;
} tp_case_t;


static void
tc_strings0(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->str[0] = "x";
}

static void
tc_no_strings(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->p.n_string_table = 0;
}

static void
tc_fn_name(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->fn[1].name = TS_NSTR;
}

static void
tc_label_key(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->lab[1][0].key = -1;
}

static void
tc_mapping_file(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->map[0].filename = 1000;
}

static void
tc_type_unit(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->vt[1].unit = 99;
}

static void
tc_comment(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->comment[0] = TS_NSTR;
    t->p.comment = t->comment;
    t->p.n_comment = 1;
}

static void
tc_mapping_id0(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->map[0].id = 0;
}

static void
tc_function_dup(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->fn[2].id = 1;
}

static void
tc_location_dup(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->loc[2].id = 2;
}

static void
tc_location_id0(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->loc[0].id = 0;
}

static void
tc_bad_mapping_ref(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->loc[1].mapping_id = 7;
}

static void
tc_bad_function_ref(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->line[1][0].function_id = 9;
}

static void
tc_line_no_function(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->line[1][0].function_id = 0;
}

static void
tc_bad_location_ref(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->lid[1][0] = 44;
}

static void
tc_values(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) lim;
    t->smp[2].n_value = 1;
}

static void
tc_no_types(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    size_t  i;

    (void) lim;
    t->p.n_sample_type = 0;

    for (i = 0; i < t->p.n_sample; i++) {
        t->smp[i].n_value = 0;
    }
}

static void
tc_samples(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) t;
    lim->max_samples = 2;
}

static void
tc_labels(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) t;
    lim->max_labels = 1;
}

static void
tc_memory(tp_prof_t *t, ts_pprof_limits_t *lim)
{
    (void) t;
    lim->max_memory = 2000;
}


static const tp_case_t  tp_cases[] = {
    { "string_table[0] not empty", tc_strings0, TS_ERR_INVALID,
      TS_PPROF_BAD_STRINGS },
    { "no string table", tc_no_strings, TS_ERR_INVALID,
      TS_PPROF_BAD_STRINGS },
    { "function name out of range", tc_fn_name, TS_ERR_INVALID,
      TS_PPROF_BAD_STRING_REF },
    { "negative label key", tc_label_key, TS_ERR_INVALID,
      TS_PPROF_BAD_STRING_REF },
    { "mapping file out of range", tc_mapping_file, TS_ERR_INVALID,
      TS_PPROF_BAD_STRING_REF },
    { "sample type unit out of range", tc_type_unit, TS_ERR_INVALID,
      TS_PPROF_BAD_STRING_REF },
    { "comment out of range", tc_comment, TS_ERR_INVALID,
      TS_PPROF_BAD_STRING_REF },
    { "mapping id 0", tc_mapping_id0, TS_ERR_INVALID, TS_PPROF_BAD_ID },
    { "function id twice", tc_function_dup, TS_ERR_INVALID,
      TS_PPROF_BAD_ID },
    { "location id twice", tc_location_dup, TS_ERR_INVALID,
      TS_PPROF_BAD_ID },
    { "location id 0", tc_location_id0, TS_ERR_INVALID, TS_PPROF_BAD_ID },
    { "missing mapping", tc_bad_mapping_ref, TS_ERR_INVALID,
      TS_PPROF_BAD_REF },
    { "missing function", tc_bad_function_ref, TS_ERR_INVALID,
      TS_PPROF_BAD_REF },
    { "line without function", tc_line_no_function, TS_ERR_INVALID,
      TS_PPROF_BAD_REF },
    { "missing location", tc_bad_location_ref, TS_ERR_INVALID,
      TS_PPROF_BAD_REF },
    { "values != sample types", tc_values, TS_ERR_INVALID,
      TS_PPROF_BAD_VALUES },
    { "samples without types", tc_no_types, TS_ERR_INVALID,
      TS_PPROF_BAD_VALUES },
    { "max_samples", tc_samples, TS_ERR_LIMIT, TS_PPROF_TOO_MANY_SAMPLES },
    { "max_labels", tc_labels, TS_ERR_LIMIT, TS_PPROF_TOO_MANY_LABELS },
    { "max_memory", tc_memory, TS_ERR_LIMIT, TS_PPROF_MEMORY },
};


static void
test_decode_errors(void **state)
{
    size_t              i;
    ts_pprof_t          p;
    tp_prof_t           t;
    ts_pprof_why_t      why;
    ts_pprof_limits_t   lim;
    const tp_case_t    *c;

    (void) state;

    for (i = 0; i < sizeof(tp_cases) / sizeof(tp_cases[0]); i++) {
        c = &tp_cases[i];
        tp_base(&t);
        ts_pprof_limits_default(&lim);
        c->mod(&t, &lim);

        memset(&why, 0, sizeof(why));
        tp_check(c->name, tp_decode(&t, &p, &lim, &why) == c->rc);
        tp_check(c->name, why.code == c->code);
        tp_check(c->name, why.msg[0] != '\0');
        tp_check(c->name, strchr(why.msg, '\n') == NULL);
        print_message("%-32s %s\n", c->name, why.msg);
        ts_pprof_free(&p);
    }
}


/* wire-level damage, each made from real encoder output */
static void
test_decode_malformed(void **state)
{
    size_t           len, i, n;
    uint8_t         *buf, *two;
    ts_pprof_t       p;
    tp_prof_t        t;
    ts_pprof_why_t   why;

    (void) state;

    tp_base(&t);
    buf = tp_pack(&t, &len);

    /* every truncation is rejected or decodes a shorter valid profile,
       never read past the end (asan) */
    for (i = 0; i < len; i++) {
        ts_pprof_init(&p, NULL, NULL);
        (void) ts_pprof_decode(&p, buf, i, &why);
        ts_pprof_free(&p);
    }

    /* cut inside the last string: a length past the end */
    ts_pprof_init(&p, NULL, NULL);
    assert_int_equal(ts_pprof_decode(&p, buf, len - 1, &why),
                     TS_ERR_CORRUPT);
    assert_int_equal(why.code, TS_PPROF_MALFORMED);
    ts_pprof_free(&p);

    /* sample_type (field 1) sent as a varint */
    buf[len] = (1 << 3) | 0;
    buf[len + 1] = 1;
    ts_pprof_init(&p, NULL, NULL);
    assert_int_equal(ts_pprof_decode(&p, buf, len + 2, &why),
                     TS_ERR_CORRUPT);
    assert_non_null(strstr(why.msg, "wire type"));
    ts_pprof_free(&p);

    /* a group wire type (3), which proto3 does not have */
    buf[len] = (20 << 3) | 3;
    ts_pprof_init(&p, NULL, NULL);
    assert_int_equal(ts_pprof_decode(&p, buf, len + 1, &why),
                     TS_ERR_CORRUPT);
    ts_pprof_free(&p);

    /* two profiles concatenated: time_nanos twice, as Go rejects it */
    two = malloc(2 * len);
    assert_non_null(two);
    memcpy(two, buf, len);
    memcpy(two + len, buf, len);
    ts_pprof_init(&p, NULL, NULL);
    assert_int_equal(ts_pprof_decode(&p, two, 2 * len, &why),
                     TS_ERR_CORRUPT);
    assert_non_null(strstr(why.msg, "concatenated"));
    ts_pprof_free(&p);

    /* empty input */
    ts_pprof_init(&p, NULL, NULL);
    assert_int_equal(ts_pprof_decode(&p, buf, 0, &why), TS_ERR_INVALID);
    ts_pprof_free(&p);

    /* decoding into a used profile */
    ts_pprof_init(&p, NULL, NULL);
    assert_int_equal(ts_pprof_decode(&p, buf, len, &why), TS_OK);
    n = p.nsamples;
    assert_int_equal(ts_pprof_decode(&p, buf, len, &why), TS_ERR_INVALID);
    assert_int_equal(p.nsamples, n);
    ts_pprof_free(&p);

    free(two);
    free(buf);
}


static void
test_decode_normalize(void **state)
{
    ts_pprof_t                    p;
    tp_prof_t                     t;
    ts_pprof_why_t                why;
    ts_pprof_limits_t             lim;
    Perftools__Profiles__Sample  *s1, *s2;

    (void) state;

    /* sparse, unordered ids resolve */
    tp_base(&t);
    t.map[0].id = 900;
    t.loc[0].mapping_id = 900;
    t.loc[1].mapping_id = 900;
    t.loc[2].mapping_id = 900;
    t.fn[0].id = 77;
    t.line[0][0].function_id = 77;
    t.loc[1].id = 5;
    t.lid[0][0] = 5;
    t.lid[1][0] = 5;
    t.lid[2][0] = 5;
    assert_int_equal(tp_decode(&t, &p, NULL, &why), TS_OK);
    assert_int_equal(p.nsamples, 2);
    assert_string_equal(tp_leaf(&p, 0), "foo");
    assert_int_equal(p.locations[0].mapping, 1);
    ts_pprof_free(&p);

    /* zero samples dropped, and what only they used */
    tp_base(&t);
    t.val[1][0] = 0;
    t.val[1][1] = 0;
    assert_int_equal(tp_decode(&t, &p, NULL, &why), TS_OK);
    assert_int_equal(p.nsamples, 1);
    assert_int_equal(p.nlabels, 0);
    ts_pprof_free(&p);

    /* labels in another order are the same labels; a key-only label is
       no label (Go's decoder drops it) */
    tp_base(&t);
    t.p.n_sample = 0;
    s1 = tp_sample(&t, 1, 1, 1, (uint64_t) 1);
    tp_label(&t, s1, TS_BYTES, 0, 8, 0);
    tp_label(&t, s1, TS_KEY, TS_VAL, 0, 0);
    s2 = tp_sample(&t, 2, 2, 1, (uint64_t) 1);
    tp_label(&t, s2, TS_KEY, TS_VAL, 0, 0);
    tp_label(&t, s2, TS_COUNT, 0, 0, 0);
    tp_label(&t, s2, TS_BYTES, 0, 8, 0);
    assert_int_equal(tp_decode(&t, &p, NULL, &why), TS_OK);
    assert_int_equal(p.nsamples, 1);
    assert_int_equal(p.samples[0].nlabels, 2);
    assert_int_equal(p.values[0], 3);
    ts_pprof_free(&p);

    /* depth: the root side is kept (Pyroscope), or the leaf side */
    tp_base(&t);
    t.p.n_sample = 0;
    (void) tp_sample(&t, 1, 1, 5, (uint64_t) 2, (uint64_t) 1,
                     (uint64_t) 1, (uint64_t) 2, (uint64_t) 1);
    ts_pprof_limits_default(&lim);
    lim.max_depth = 3;
    assert_int_equal(tp_decode(&t, &p, &lim, &why), TS_OK);
    assert_int_equal(p.samples[0].depth, 3);
    assert_int_equal(p.truncated, 1);
    assert_string_equal(tp_leaf(&p, 0), "main");
    assert_int_not_equal(p.stacks[1], p.stacks[2]);
    ts_pprof_free(&p);

    lim.keep_leaf = 1;
    assert_int_equal(tp_decode(&t, &p, &lim, &why), TS_OK);
    assert_int_equal(p.samples[0].depth, 3);
    assert_string_equal(tp_leaf(&p, 0), "foo");
    assert_int_equal(p.stacks[1], p.stacks[2]);
    ts_pprof_free(&p);
}


/* the Go fixtures against protobuf-c's view of the same bytes */
static void
test_fixtures(void **state)
{
    size_t                         len, n, i, k;
    int64_t                        want[4];
    uint8_t                       *gz, *raw;
    ts_pprof_t                     p, q;
    ts_pprof_why_t                 why;
    tp_buf_t                       b;
    Perftools__Profiles__Profile  *u, *e;
    static const char             *files[] = {
        "cpu1.pb.gz", "cpu2.pb.gz", "heap1.pb.gz"
    };

    (void) state;

    for (i = 0; i < 3; i++) {
        gz = tp_slurp(files[i], &len);
        assert_int_equal(ts_inflate(gz, len, TS_INFLATE_GZIP, 1 << 24, NULL,
                                    &raw, &n, NULL), TS_OK);
        u = perftools__profiles__profile__unpack(NULL, n, raw);
        assert_non_null(u);

        memset(want, 0, sizeof(want));

        for (k = 0; k < u->n_sample; k++) {
            want[0] += u->sample[k]->value[0];
            want[1] += u->sample[k]->value[1];
        }

        ts_pprof_init(&p, NULL, NULL);
        assert_int_equal(ts_pprof_parse(&p, gz, len, &why), TS_OK);
        tp_check(files[i], p.ntypes == u->n_sample_type);
        tp_check(files[i], p.nsamples <= u->n_sample);
        tp_check(files[i], p.nfunctions <= u->n_function);
        tp_check(files[i], p.nlocations <= u->n_location);
        tp_check(files[i], p.time_nanos == u->time_nanos);
        tp_check(files[i], p.period == u->period);
        tp_check(files[i], tp_total(&p, 0) == want[0]);
        tp_check(files[i], tp_total(&p, 1) == want[1]);

        /* round trip: what we encode decodes to the same profile */
        e = tp_encode_unpack(&p, 6, &b);
        assert_non_null(e);
        tp_check(files[i], e->n_sample == p.nsamples);
        tp_check(files[i], e->n_location == p.nlocations);

        ts_pprof_init(&q, NULL, NULL);
        assert_int_equal(ts_pprof_decode(&q, b.p, b.len, &why), TS_OK);
        tp_check(files[i], q.nsamples == p.nsamples);
        tp_check(files[i], q.nstrings == p.nstrings);
        tp_check(files[i], q.nstacks == p.nstacks);
        tp_check(files[i], memcmp(q.values, p.values, (size_t) p.nsamples
                                  * p.ntypes * sizeof(int64_t)) == 0);

        ts_pprof_free(&q);
        perftools__profiles__profile__free_unpacked(e, NULL);
        free(b.p);
        ts_pprof_free(&p);
        perftools__profiles__profile__free_unpacked(u, NULL);
        free(raw);
        free(gz);
    }
}


/* merge */

static void
tp_merge_two(const tp_prof_t *a, const tp_prof_t *b, ts_pprof_t *dst,
    int rc_want)
{
    ts_pprof_t      pa, pb;
    ts_pprof_why_t  why;

    assert_int_equal(tp_decode(a, &pa, NULL, &why), TS_OK);
    assert_int_equal(tp_decode(b, &pb, NULL, &why), TS_OK);

    ts_pprof_init(dst, NULL, NULL);
    assert_int_equal(ts_pprof_merge(dst, &pa, &why), TS_OK);
    assert_int_equal(ts_pprof_merge(dst, &pb, &why), rc_want);

    if (rc_want != TS_OK) {
        assert_int_equal(why.code, TS_PPROF_INCOMPATIBLE);
    }

    ts_pprof_free(&pa);
    ts_pprof_free(&pb);
}


static void
test_merge_headers(void **state)
{
    ts_pprof_t  m;
    tp_prof_t   a, b;

    (void) state;

    tp_base(&a);
    tp_base(&b);
    b.p.time_nanos = 400;
    b.p.period = 20000000;
    b.p.default_sample_type = TS_CPU;
    b.comment[0] = TS_FOO;
    b.p.comment = b.comment;
    b.p.n_comment = 1;

    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nmerged, 2);
    assert_int_equal(m.nsamples, 2);
    assert_int_equal(m.values[0], 8);
    assert_int_equal(m.time_nanos, 400);
    assert_int_equal(m.duration_nanos, 1000);
    assert_int_equal(m.period, 20000000);
    assert_string_equal(tp_str(&m, m.default_type), "cpu");
    assert_int_equal(m.ncomments, 1);
    ts_pprof_free(&m);

    /* incompatible: sample types, their count, the period type */
    tp_base(&b);
    b.vt[1].unit = TS_BYTES;
    tp_merge_two(&a, &b, &m, TS_ERR_INVALID);
    assert_int_equal(m.nmerged, 1);
    assert_int_equal(m.values[0], 4);
    ts_pprof_free(&m);

    tp_base(&b);
    b.p.n_sample_type = 1;
    b.smp[0].n_value = b.smp[1].n_value = b.smp[2].n_value = 1;
    tp_merge_two(&a, &b, &m, TS_ERR_INVALID);
    ts_pprof_free(&m);

    tp_base(&b);
    b.pt.type = TS_SAMPLES;
    tp_merge_two(&a, &b, &m, TS_ERR_INVALID);
    ts_pprof_free(&m);
}


/* time_nanos as combineHeaders: a zero resets, the next sets */
static void
test_merge_time(void **state)
{
    size_t          i;
    ts_pprof_t      m, p;
    tp_prof_t       t;
    ts_pprof_why_t  why;
    int64_t         times[] = { 5000, 0, 3000, 4000 };

    (void) state;

    ts_pprof_init(&m, NULL, NULL);

    for (i = 0; i < 4; i++) {
        tp_base(&t);
        t.p.time_nanos = times[i];
        t.comment[0] = TS_FOO;
        t.p.comment = t.comment;
        t.p.n_comment = 1;
        assert_int_equal(tp_decode(&t, &p, NULL, &why), TS_OK);
        assert_int_equal(ts_pprof_merge(&m, &p, &why), TS_OK);
        ts_pprof_free(&p);
    }

    assert_int_equal(m.time_nanos, 3000);
    assert_int_equal(m.ncomments, 1);
    assert_int_equal(m.values[0], 16);
    ts_pprof_free(&m);
}


static void
test_merge_mappings(void **state)
{
    ts_pprof_t  m;
    tp_prof_t   a, b;

    (void) state;

    /* same build id elsewhere in memory (ASLR): one mapping, the
       locations relocated into it and equal */
    tp_base(&a);
    tp_base(&b);
    b.map[0].memory_start += 0x100000;
    b.map[0].memory_limit += 0x100000;
    b.loc[0].address += 0x100000;
    b.loc[1].address += 0x100000;
    b.loc[2].address += 0x100000;
    b.map[0].filename = TS_FILE;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nmappings, 1);
    assert_int_equal(m.nlocations, 2);
    assert_int_equal(m.nsamples, 2);
    ts_pprof_free(&m);

    /* no build id: the file name decides */
    a.map[0].build_id = 0;
    b.map[0].build_id = 0;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nmappings, 2);
    assert_int_equal(m.nlocations, 4);
    ts_pprof_free(&m);

    b.map[0].filename = TS_BIN;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nmappings, 1);
    assert_int_equal(m.nlocations, 2);
    ts_pprof_free(&m);

    /* another size (rounded to 4 KiB) is another mapping */
    b.map[0].memory_limit += 0x2000;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nmappings, 2);
    ts_pprof_free(&m);

    b.map[0].memory_limit -= 0x2000 - 0x10;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nmappings, 2);
    ts_pprof_free(&m);

    b.map[0].memory_limit -= 0x10;
    a.map[0].memory_limit -= 0x10;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nmappings, 1);
    ts_pprof_free(&m);

    /* neither build id nor file: fake mappings are one mapping */
    a.map[0].filename = 0;
    b.map[0].filename = 0;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nmappings, 1);
    ts_pprof_free(&m);
}


static void
test_merge_functions(void **state)
{
    ts_pprof_t  m;
    tp_prof_t   a, b;

    (void) state;

    /* another start line is another function */
    tp_base(&a);
    tp_base(&b);
    b.fn[1].start_line = 21;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nfunctions, 3);
    assert_int_equal(m.nlocations, 3);
    assert_int_equal(m.nsamples, 4);
    ts_pprof_free(&m);

    /* another system name, another file too */
    tp_base(&b);
    b.fn[0].system_name = TS_FOO;
    b.fn[2].system_name = TS_FOO;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nfunctions, 3);
    ts_pprof_free(&m);

    tp_base(&b);
    b.fn[1].filename = TS_BIN;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nfunctions, 3);
    ts_pprof_free(&m);

    /* another line number: same function, another location */
    tp_base(&b);
    b.line[1][0].line = 99;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nfunctions, 2);
    assert_int_equal(m.nlocations, 3);
    ts_pprof_free(&m);

    /* labels are part of a sample's key */
    tp_base(&b);
    b.lab[1][0].str = TS_FOO;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nsamples, 3);
    ts_pprof_free(&m);
}


/* a sum of zero leaves the encoded profile, with what only it used */
static void
test_merge_zero_sum(void **state)
{
    ts_pprof_t                     m;
    tp_prof_t                      a, b;
    tp_buf_t                       buf;
    Perftools__Profiles__Profile  *u;

    (void) state;

    tp_base(&a);
    tp_base(&b);
    b.val[1][0] = -2;
    b.val[1][1] = -20;
    tp_merge_two(&a, &b, &m, TS_OK);
    assert_int_equal(m.nsamples, 2);

    u = tp_encode_unpack(&m, 0, &buf);
    assert_non_null(u);
    assert_int_equal(u->n_sample, 1);
    assert_int_equal(u->sample[0]->value[0], 8);
    perftools__profiles__profile__free_unpacked(u, NULL);
    free(buf.p);
    ts_pprof_free(&m);
}


/* a write error stops encoding with TS_ERR_IO */
static void
test_encode_write_error(void **state)
{
    ts_pprof_t      p;
    tp_prof_t       t;
    tp_buf_t        b;
    ts_pprof_why_t  why;

    (void) state;

    tp_base(&t);
    assert_int_equal(tp_decode(&t, &p, NULL, &why), TS_OK);

    memset(&b, 0, sizeof(b));
    b.fail_after = 1;
    assert_int_equal(ts_pprof_encode(&p, 0, tp_write, &b), TS_ERR_IO);
    assert_int_equal(ts_pprof_encode(&p, 1, tp_write, &b), TS_ERR_IO);
    free(b.p);

    /* an empty profile still has string_table[0] */
    ts_pprof_free(&p);
    ts_pprof_init(&p, NULL, NULL);
    memset(&b, 0, sizeof(b));
    assert_int_equal(ts_pprof_encode(&p, 0, tp_write, &b), TS_OK);
    assert_true(b.len >= 2);
    free(b.p);
}


/* inflate */

static void
test_inflate(void **state)
{
    size_t          len, glen, n, i;
    uint8_t        *raw, *gz, *two, *out;
    uLongf          zlen;
    uint8_t         z[4096];
    const char     *reason;

    (void) state;

    raw = malloc(100000);
    assert_non_null(raw);

    for (i = 0; i < 100000; i++) {
        raw[i] = (uint8_t) (i * 7 / 13);
    }

    len = 100000;
    gz = tp_gzip(raw, len, &glen);

    assert_int_equal(ts_inflate_detect(gz, glen), TS_INFLATE_GZIP);
    assert_int_equal(ts_inflate_detect(raw, len), TS_INFLATE_NONE);

    /* the exact limit passes, one byte less is TS_ERR_LIMIT */
    assert_int_equal(ts_inflate(gz, glen, TS_INFLATE_GZIP, len, NULL, &out,
                                &n, NULL), TS_OK);
    assert_int_equal(n, len);
    assert_memory_equal(out, raw, len);
    free(out);

    reason = NULL;
    assert_int_equal(ts_inflate(gz, glen, TS_INFLATE_GZIP, len - 1, NULL,
                                &out, &n, &reason), TS_ERR_LIMIT);
    assert_null(out);
    assert_non_null(reason);

    /* two members, as Go's gzip.Reader reads them */
    two = malloc(2 * glen + 8);
    assert_non_null(two);
    memcpy(two, gz, glen);
    memcpy(two + glen, gz, glen);
    assert_int_equal(ts_inflate(two, 2 * glen, TS_INFLATE_GZIP, 2 * len,
                                NULL, &out, &n, NULL), TS_OK);
    assert_int_equal(n, 2 * len);
    free(out);

    /* trailing garbage, truncation, a flipped byte */
    memcpy(two + glen, "abc", 3);
    assert_int_equal(ts_inflate(two, glen + 3, TS_INFLATE_GZIP, 2 * len,
                                NULL, &out, &n, NULL), TS_ERR_CORRUPT);
    assert_int_equal(ts_inflate(gz, glen - 5, TS_INFLATE_GZIP, 2 * len,
                                NULL, &out, &n, NULL), TS_ERR_CORRUPT);
    assert_int_equal(ts_inflate(gz, 0, TS_INFLATE_GZIP, 2 * len,
                                NULL, &out, &n, NULL), TS_ERR_CORRUPT);
    memcpy(two, gz, glen);
    two[glen - 6] ^= 0xff;
    assert_int_equal(ts_inflate(two, glen, TS_INFLATE_GZIP, 2 * len,
                                NULL, &out, &n, NULL), TS_ERR_CORRUPT);
    assert_int_equal(ts_inflate(gz, glen, TS_INFLATE_NONE, 2 * len,
                                NULL, &out, &n, NULL), TS_ERR_INVALID);

    /* zlib, and raw deflate (the zlib stream without header/trailer) */
    zlen = sizeof(z);
    assert_int_equal(compress2(z, &zlen, raw, 4000, 6), Z_OK);
    assert_int_equal(ts_inflate_detect(z, zlen), TS_INFLATE_ZLIB);
    assert_int_equal(ts_inflate(z, zlen, TS_INFLATE_ZLIB, 4000, NULL, &out,
                                &n, NULL), TS_OK);
    assert_int_equal(n, 4000);
    free(out);
    assert_int_equal(ts_inflate(z + 2, zlen - 6, TS_INFLATE_RAW, 4000, NULL,
                                &out, &n, NULL), TS_OK);
    assert_memory_equal(out, raw, 4000);
    free(out);

    free(two);
    free(gz);
    free(raw);
}


/* a gzip bomb: 1 GiB of zeros in ~1 MiB, stopped at the cap, fast */
static void
test_gzip_bomb(void **state)
{
    size_t          i, glen, n;
    uint8_t        *zeros, *gz, *out;
    clock_t         t0;
    z_stream        zs;
    ts_pprof_t      p;
    ts_pprof_why_t  why;

    (void) state;

    zeros = calloc(1, 1 << 20);
    gz = malloc(4 << 20);
    assert_non_null(zeros);
    assert_non_null(gz);

    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_out = gz;
    zs.avail_out = 4 << 20;

    for (i = 0; i < 1024; i++) {
        zs.next_in = zeros;
        zs.avail_in = 1 << 20;
        assert_int_equal(deflate(&zs, i == 1023 ? Z_FINISH : Z_NO_FLUSH),
                         i == 1023 ? Z_STREAM_END : Z_OK);
    }

    glen = zs.total_out;
    deflateEnd(&zs);
    print_message("bomb: %zu bytes -> 1 GiB\n", glen);

    t0 = clock();
    ts_pprof_init(&p, NULL, NULL);
    assert_int_equal(ts_pprof_parse(&p, gz, glen, &why), TS_ERR_LIMIT);
    assert_int_equal(why.code, TS_PPROF_TOO_LARGE);
    assert_true(p.used == 0);
    ts_pprof_free(&p);
    assert_true(clock() - t0 < CLOCKS_PER_SEC);

    assert_int_equal(ts_inflate(gz, glen, TS_INFLATE_GZIP, 1 << 20, NULL,
                                &out, &n, NULL), TS_ERR_LIMIT);

    /* broken gzip: a distinct reason */
    gz[20] ^= 0x55;
    ts_pprof_init(&p, NULL, NULL);
    assert_int_equal(ts_pprof_parse(&p, gz, 64, &why), TS_ERR_CORRUPT);
    assert_int_equal(why.code, TS_PPROF_BAD_COMPRESSION);
    ts_pprof_free(&p);

    free(gz);
    free(zeros);
}


/* allocator accounting */

static void *
tp_alloc(void *data, size_t size)
{
    tp_alloc_t  *a;

    a = data;

    if (a->fail_at && a->allocs + 1 >= a->fail_at) {
        return NULL;
    }

    a->allocs++;

    return malloc(size);
}


static void
tp_free(void *data, void *p)
{
    tp_alloc_t  *a;

    a = data;

    if (p != NULL) {
        a->frees++;
    }

    free(p);
}


/* parse + merge + encode with allocation k failing, for every k */
static int
tp_run(tp_alloc_t *ta, const uint8_t *gz, size_t len, int *fails)
{
    int                 rc;
    tp_buf_t            b;
    ts_pprof_t          p, m;
    ts_pprof_why_t      why;
    ProtobufCAllocator  a = { tp_alloc, tp_free, ta };

    ts_pprof_init(&p, &a, NULL);
    ts_pprof_init(&m, &a, NULL);
    memset(&b, 0, sizeof(b));

    rc = ts_pprof_parse(&p, gz, len, &why);
    rc = rc ? rc : ts_pprof_merge(&m, &p, &why);
    rc = rc ? rc : ts_pprof_merge(&m, &p, &why);
    rc = rc ? rc : ts_pprof_encode(&m, 1, tp_write, &b);

    if (rc != TS_OK) {
        (*fails)++;
        assert_true(rc == TS_ERR_NOMEM || rc == TS_ERR_LIMIT);
    }

    ts_pprof_free(&p);
    ts_pprof_free(&m);
    assert_int_equal(p.used, 0);
    free(b.p);

    return rc;
}


static void
test_allocator(void **state)
{
    int          fails;
    size_t       len, k, total;
    uint8_t     *gz;
    tp_alloc_t   ta;

    (void) state;

    gz = tp_slurp("heap1.pb.gz", &len);

    memset(&ta, 0, sizeof(ta));
    fails = 0;
    assert_int_equal(tp_run(&ta, gz, len, &fails), TS_OK);
    assert_int_equal(ta.allocs, ta.frees);
    total = ta.allocs;

    for (k = 1; k <= total; k++) {
        memset(&ta, 0, sizeof(ta));
        ta.fail_at = k;
        (void) tp_run(&ta, gz, len, &fails);
        tp_check("fail_at", ta.allocs == ta.frees);
    }

    assert_true(fails > 0);
    print_message("allocations: %zu, each failed once\n", total);

    free(gz);
}


/* a pool (free NULL): nothing is freed piecemeal, all at its end */
typedef struct {
    void        *p[8192];
    size_t       n;
} tp_pool_t;


static void *
tp_pool_alloc(void *data, size_t size)
{
    tp_pool_t  *pool;

    pool = data;

    if (pool->n == 8192) {
        return NULL;
    }

    pool->p[pool->n] = malloc(size);

    return pool->p[pool->n++];
}


static void
test_pool(void **state)
{
    size_t              len, i;
    uint8_t            *gz;
    tp_buf_t            b;
    tp_pool_t          *pool;
    ts_pprof_t          p, m;
    ts_pprof_why_t      why;
    ProtobufCAllocator  a = { tp_pool_alloc, NULL, NULL };

    (void) state;

    pool = calloc(1, sizeof(tp_pool_t));
    assert_non_null(pool);
    a.allocator_data = pool;

    gz = tp_slurp("cpu1.pb.gz", &len);
    memset(&b, 0, sizeof(b));

    ts_pprof_init(&p, &a, NULL);
    ts_pprof_init(&m, &a, NULL);
    assert_int_equal(ts_pprof_parse(&p, gz, len, &why), TS_OK);
    assert_int_equal(ts_pprof_merge(&m, &p, &why), TS_OK);
    assert_int_equal(ts_pprof_merge(&m, &p, &why), TS_OK);
    assert_int_equal(ts_pprof_encode(&m, 1, tp_write, &b), TS_OK);
    assert_true(m.used > 0);
    ts_pprof_free(&p);
    ts_pprof_free(&m);

    for (i = 0; i < pool->n; i++) {
        free(pool->p[i]);
    }

    free(pool);
    free(b.p);
    free(gz);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_decode_base),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_decode_normalize),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_merge_headers),
        cmocka_unit_test(test_merge_time),
        cmocka_unit_test(test_merge_mappings),
        cmocka_unit_test(test_merge_functions),
        cmocka_unit_test(test_merge_zero_sum),
        cmocka_unit_test(test_encode_write_error),
        cmocka_unit_test(test_inflate),
        cmocka_unit_test(test_gzip_bomb),
        cmocka_unit_test(test_allocator),
        cmocka_unit_test(test_pool),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
