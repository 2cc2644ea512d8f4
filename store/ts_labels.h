/*
 * Copyright (C) ngx_tsdb authors
 *
 * Label sets: zero-copy views, name and value rules, Prometheus ordering,
 * a stable 64-bit hash, per-series validation against ts_limits_t with a
 * one-line reason for the HTTP 400 body.
 *
 * A ts_label_t only points at bytes owned by someone else (a decoded
 * request, a shared-memory series); the bytes need not be NUL-terminated
 * and lengths are always explicit.
 *
 * Decisions where the specs leave room (sources in ts_labels.c):
 *   - unsorted input is accepted and sorted, as Prometheus's receiver
 *     does (remote-write 1.0 says MUST be sorted, Prometheus sorts);
 *   - a label with an empty value is the absent label: validation drops
 *     it (Prometheus tsdb head: lset.WithoutEmpty()), after checking its
 *     name like any other;
 *   - the label count limit counts the pairs as sent, empty values
 *     included (Mimir counts len(series.Labels) before anything else).
 */

#ifndef TS_LABELS_H
#define TS_LABELS_H


#include <stddef.h>
#include <stdint.h>


#define TS_METRIC_NAME_LABEL      "__name__"
#define TS_METRIC_NAME_LABEL_LEN  8

/* room for a one-line reason, NUL included */
#define TS_REJECT_MSG_SIZE        256

/* bytes of a client-supplied name quoted in a reason */
#define TS_REJECT_QUOTE_MAX       64


typedef struct {
    const char     *name;
    uint32_t        name_len;
    const char     *value;
    uint32_t        value_len;
} ts_label_t;


/*
 * Ingest limits.  Defaults (ts_limits_default()) follow Mimir where Mimir
 * has the limit (label counts and lengths, metadata length, exemplar
 * label length from the exemplar spec) and Prometheus/VictoriaMetrics for
 * the decompressed size (32 MiB); the per-request counts are far above
 * what Prometheus (2,000 samples per send) and vmagent (10,000 rows per
 * block) send.  A limit documented as "0: none" is off when 0.
 */
typedef struct {
    size_t          max_body_size;        /* decompressed bytes, 32 MiB */
    size_t          max_decode_memory;    /* allocated by decode, 256 MiB */
    uint32_t        max_series;           /* per request, 100000 */
    uint32_t        max_samples_per_series;      /* floats + histograms,
                                                    100000 */
    uint32_t        max_label_names_per_series;  /* 30 */
    uint32_t        max_label_name_length;       /* bytes, 1024 */
    uint32_t        max_label_value_length;      /* bytes, 2048 */
    uint32_t        max_exemplars_per_series;    /* 0: none */
    uint32_t        max_exemplar_labels_length;  /* code points, 128 */
    uint32_t        max_histogram_buckets;       /* 0: none */
    uint32_t        max_metadata_length;         /* bytes, 1024 */
} ts_limits_t;


/* why a series (or an exemplar, or a metadata entry) was not accepted */
typedef enum {
    TS_REJECT_NONE = 0,
    TS_REJECT_MISSING_METRIC_NAME,
    TS_REJECT_INVALID_METRIC_NAME,
    TS_REJECT_TOO_MANY_LABELS,
    TS_REJECT_EMPTY_LABEL_NAME,
    TS_REJECT_LABEL_NAME_TOO_LONG,
    TS_REJECT_INVALID_LABEL_NAME,
    TS_REJECT_DUPLICATE_LABEL_NAME,
    TS_REJECT_LABEL_VALUE_TOO_LONG,
    TS_REJECT_INVALID_LABEL_VALUE,
    TS_REJECT_NUL_IN_STRING,
    TS_REJECT_BAD_SYMBOL_REF,
    TS_REJECT_TOO_MANY_SAMPLES,
    TS_REJECT_INVALID_HISTOGRAM,
    TS_REJECT_TOO_MANY_BUCKETS,
    TS_REJECT_INVALID_EXEMPLAR,
    TS_REJECT_TOO_MANY_EXEMPLARS,
    TS_REJECT_INVALID_METADATA,
    /* the whole request */
    TS_REJECT_BODY_TOO_LARGE,
    TS_REJECT_MALFORMED_BODY,
    TS_REJECT_TOO_MANY_SERIES,
    TS_REJECT_DECODE_MEMORY,
    TS_REJECT_INVALID_SYMBOLS,
    TS_REJECT_LAST
} ts_reject_code_t;


typedef struct {
    ts_reject_code_t  code;
    char              msg[TS_REJECT_MSG_SIZE];  /* one printable ASCII
                                                   line, NUL-terminated;
                                                   "" when code is NONE */
} ts_reject_t;


void ts_limits_default(ts_limits_t *lim);

/*
 * A short snake_case name per code ("missing_metric_name", ...), fit for
 * a metric label or a log key; "unknown" outside the enum.
 */
const char *ts_reject_name(ts_reject_code_t code);

/*
 * Fills why with code and a message built from fmt, in which each %s
 * consumes a (const char *, size_t) pair that is quoted: bytes outside
 * printable ASCII and the quote and backslash become \xNN and at most
 * TS_REJECT_QUOTE_MAX input bytes are shown ("..." marks a cut); %u
 * takes an unsigned, %d an int.  No other conversions.  why may be
 * NULL.
 */
void ts_reject_set(ts_reject_t *why, ts_reject_code_t code,
    const char *fmt, ...);

/* the first label named name, NULL if none */
const ts_label_t *ts_labels_find(const ts_label_t *l, uint32_t n,
    const char *name, size_t len);

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
int ts_metric_name_valid(const char *s, size_t len);

/* [a-zA-Z_][a-zA-Z0-9_]*; "__"-prefixed names are accepted */
int ts_label_name_valid(const char *s, size_t len);

/*
 * Well-formed UTF-8 as Go's utf8.Valid (Prometheus's label value rule):
 * no overlong forms, no surrogates, nothing above U+10FFFF, no truncated
 * sequence.  U+0000 is valid.
 */
int ts_utf8_valid(const char *s, size_t len);

/* code points in well-formed UTF-8 s */
size_t ts_utf8_count(const char *s, size_t len);

/* longest prefix of s (at most max bytes) that ends on a code point */
size_t ts_utf8_cut(const char *s, size_t len, size_t max);

/*
 * Sorts by name, bytewise (Go's string order, as labels.Labels sorts).
 * Equal names keep no particular order.
 */
void ts_labels_sort(ts_label_t *l, uint32_t n);

int ts_labels_sorted(const ts_label_t *l, uint32_t n);

/*
 * Prometheus labels.Compare on sorted sets: pairwise name then value,
 * bytewise; if one set is a prefix of the other the shorter comes
 * first.  Returns <0, 0 or >0.
 */
int ts_labels_cmp(const ts_label_t *a, uint32_t na, const ts_label_t *b,
    uint32_t nb);

/*
 * XXH64 (seed 0) of name 0xff value 0xff for each label in order: the
 * same bytes and algorithm as Prometheus's labels.Labels.Hash(), so a
 * sorted set hashes to the value Prometheus computes.  Stable across
 * processes, builds and hosts (byte-order independent); may be stored.
 */
uint64_t ts_labels_hash(const ts_label_t *l, uint32_t n);
/*
 * The same hash, faster when the strings lie in one buffer [start, end):
 * it may read up to 16 bytes from where a string in it starts, never at
 * or past end.  Strings elsewhere are read as ts_labels_hash() does.
 */
uint64_t ts_labels_hash_in(const ts_label_t *l, uint32_t n,
    const char *start, const char *end);

/* XXH64 of a buffer (exposed for tests and other stable keys) */
uint64_t ts_xxh64(const void *p, size_t len, uint64_t seed);

/*
 * Validates one series' label set in place, in Mimir's order: __name__
 * present, non-empty and a valid metric name; label count (as sent) <=
 * max_label_names_per_series; sort by name; then per label: name
 * non-empty, name length, name syntax, no duplicate name, value length,
 * value UTF-8.  On success labels with an empty value are removed
 * (*n shrinks) and the set is sorted.  Returns TS_OK, or
 * TS_ERR_INVALID / TS_ERR_LIMIT with why filled (why may be NULL); the
 * array may then be reordered, nothing is removed.
 */
int ts_labels_validate(ts_label_t *l, uint32_t *n, const ts_limits_t *lim,
    ts_reject_t *why);


#endif /* TS_LABELS_H */
