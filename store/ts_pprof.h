/*
 * Copyright (C) ngx_tsdb authors
 *
 * pprof profiles (perftools.profiles.Profile, proto/profile.proto):
 * bounded decoding into one normalized representation, merging with the
 * semantics of pprof's own profile.Merge, and encoding back to protobuf
 * (optionally gzip) that `go tool pprof` reads.
 *
 * The normalized profile (ts_pprof_t) is what pprof calls a compacted
 * profile: every table deduplicated with profile.Merge's keys, only what
 * samples reach is kept, ids dense and 1-based:
 *   - strings: each distinct byte string once, strings[0] = "";
 *     everything else refers to strings by index;
 *   - functions keyed by (name, system name, filename, start line);
 *   - mappings keyed by (size rounded up to 4 KiB, file offset, build id,
 *     or the file name when there is no build id); the first mapping of
 *     the first profile (the main binary) is always mapping 1;
 *   - locations keyed by (mapping, address relative to the mapping
 *     start, lines, is_folded); a location's lines are inline frames,
 *     callee first, stored in lines[line .. line + nlines);
 *   - samples keyed by (location ids, labels): values of equal keys are
 *     summed; samples whose values are all zero are dropped.  A sample's
 *     stack is stacks[stack .. stack + depth), leaf first; its values are
 *     values[i * ntypes .. (i + 1) * ntypes); its labels, canonically
 *     ordered (string labels, then numeric ones, each by key id, keeping
 *     the order of values under one key), labels[label .. + nlabels).
 * Arrays refer to each other by offsets, never pointers, so a profile
 * can grow (merge) and be copied or stored as is.
 *
 * Ownership.  A ts_pprof_t owns all its memory (strings are copied), so
 * the input buffer may be freed as soon as decoding returns.  Memory
 * comes from a ProtobufCAllocator (NULL: malloc/free); with a pool
 * allocator (free NULL) nothing is released before the pool ends.  Every
 * byte is counted against limits.max_memory.
 *
 * Errors carry a ts_pprof_why_t: a reason code (a metric label via
 * ts_pprof_reason_name()) and one printable line for the 4xx body.
 */

#ifndef TS_PPROF_H
#define TS_PPROF_H


#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "ts_core.h"
#include "ts_labels.h"


#define TS_PPROF_NONE          UINT32_MAX


typedef enum {
    TS_PPROF_OK = 0,
    TS_PPROF_TOO_LARGE,          /* decompressed size over the limit */
    TS_PPROF_BAD_COMPRESSION,    /* corrupt or truncated gzip */
    TS_PPROF_MALFORMED,          /* not a protobuf Profile */
    TS_PPROF_BAD_STRINGS,        /* string_table[0] not "" or missing */
    TS_PPROF_BAD_STRING_REF,     /* a string index out of range */
    TS_PPROF_BAD_ID,             /* id 0 or an id given twice */
    TS_PPROF_BAD_REF,            /* a mapping, function or location id
                                    that does not exist */
    TS_PPROF_BAD_VALUES,         /* values count != sample types count */
    TS_PPROF_TOO_MANY_SAMPLES,
    TS_PPROF_TOO_MANY_LABELS,    /* in one sample */
    TS_PPROF_MEMORY,             /* max_memory exhausted */
    TS_PPROF_INCOMPATIBLE,       /* merge: sample or period types differ */
    TS_PPROF_BAD_TEXT,           /* folded/lines: malformed line */
    TS_PPROF_NOMEM,              /* the allocator failed */
    TS_PPROF_REASON_LAST
} ts_pprof_reason_t;


typedef struct {
    ts_pprof_reason_t          code;
    char                       msg[TS_REJECT_MSG_SIZE];
} ts_pprof_why_t;


/*
 * Defaults (ts_pprof_limits_default()) are Pyroscope's
 * validation.max-profile-* flags: 4 MiB decompressed, 16000 samples,
 * 100 labels per sample, depth 1000; max_memory 256 MiB.  0: no limit.
 *
 * Depth truncation keeps the root side and drops the deepest frames,
 * as Pyroscope's ValidateProfile does (location_id[0] is the leaf, it
 * keeps location_id[len - max_depth:]); keep_leaf selects the opposite,
 * which is what a profiler with a fixed unwind depth produces (Go's
 * runtime keeps the 64 innermost frames).
 */
typedef struct {
    size_t                     max_decompressed;
    size_t                     max_memory;
    uint32_t                   max_samples;     /* reject */
    uint32_t                   max_depth;       /* truncate */
    uint32_t                   max_labels;      /* per sample, reject */
    unsigned                   keep_leaf:1;
} ts_pprof_limits_t;


typedef struct {
    const char                *data;       /* not NUL-terminated */
    uint32_t                   len;
} ts_pprof_str_t;


typedef struct {
    uint32_t                   type;       /* string index */
    uint32_t                   unit;
} ts_pprof_vtype_t;


typedef struct {
    uint64_t                   start;
    uint64_t                   limit;
    uint64_t                   offset;
    uint32_t                   file;       /* string index */
    uint32_t                   build_id;
    uint8_t                    has_functions;
    uint8_t                    has_filenames;
    uint8_t                    has_line_numbers;
    uint8_t                    has_inline_frames;
} ts_pprof_mapping_t;


typedef struct {
    uint32_t                   name;       /* string indexes */
    uint32_t                   system_name;
    uint32_t                   filename;
    int64_t                    start_line;
} ts_pprof_function_t;


typedef struct {
    uint32_t                   function;   /* function id, 1-based */
    int64_t                    line;
    int64_t                    column;
} ts_pprof_line_t;


typedef struct {
    uint32_t                   mapping;    /* mapping id; 0: none */
    uint32_t                   line;       /* offset into lines */
    uint32_t                   nlines;
    uint32_t                   is_folded;
    uint64_t                   address;
} ts_pprof_location_t;


typedef struct {
    uint32_t                   key;        /* string index */
    uint32_t                   str;        /* string index; 0: numeric */
    uint32_t                   unit;       /* numeric: string index */
    int64_t                    num;
} ts_pprof_label_t;


typedef struct {
    uint32_t                   stack;      /* offset into stacks */
    uint32_t                   depth;
    uint32_t                   label;      /* offset into labels */
    uint32_t                   nlabels;
} ts_pprof_sample_t;


typedef struct ts_pprof_tab_s    ts_pprof_tab_t;
typedef struct ts_pprof_chunk_s  ts_pprof_chunk_t;

struct ts_pprof_tab_s {
    uint64_t                  *slot;       /* hash << 32 | id; 0: empty */
    uint32_t                   mask;
    uint32_t                   n;
};


typedef struct {
    ts_pprof_str_t            *strings;
    uint32_t                   nstrings;

    ts_pprof_vtype_t          *types;
    uint32_t                   ntypes;
    uint32_t                   default_type;   /* string index */
    ts_pprof_vtype_t           period_type;
    int64_t                    period;
    int64_t                    time_nanos;
    int64_t                    duration_nanos;
    uint32_t                   drop_frames;    /* string indexes */
    uint32_t                   keep_frames;
    uint32_t                   doc_url;
    uint32_t                  *comments;
    uint32_t                   ncomments;

    ts_pprof_mapping_t        *mappings;       /* mapping id m is
                                                  mappings[m - 1] */
    uint32_t                   nmappings;
    ts_pprof_function_t       *functions;
    uint32_t                   nfunctions;
    ts_pprof_location_t       *locations;
    uint32_t                   nlocations;
    ts_pprof_line_t           *lines;
    uint32_t                   nlines;

    ts_pprof_sample_t         *samples;
    uint32_t                   nsamples;
    uint32_t                  *stacks;         /* location ids */
    uint32_t                   nstacks;
    int64_t                   *values;
    ts_pprof_label_t          *labels;
    uint32_t                   nlabels;

    uint32_t                   nmerged;        /* profiles added */
    uint32_t                   truncated;      /* stacks cut to
                                                  max_depth */

    /* private */
    ts_pprof_limits_t          lim;
    ProtobufCAllocator         alloc;
    size_t                     used;
    unsigned                   zero:1;     /* a sample summed to 0 */
    unsigned                   raw:1;      /* decoder's view: no tables,
                                              strings not owned */
    uint32_t                   cap[11];
    ts_pprof_tab_t             tab[5];
    ts_pprof_chunk_t          *chunks;
} ts_pprof_t;


void ts_pprof_limits_default(ts_pprof_limits_t *lim);

/* snake_case name of a reason, "unknown" outside the enum */
const char *ts_pprof_reason_name(ts_pprof_reason_t code);

/*
 * An empty profile (no sample types: the first merge sets them).  a
 * NULL: malloc/free; lim NULL: defaults.  Cannot fail.
 */
void ts_pprof_init(ts_pprof_t *p, ProtobufCAllocator *a,
    const ts_pprof_limits_t *lim);

/*
 * Decodes buf[0 .. len), a serialized Profile (not compressed), into p,
 * which must be freshly initialized.  Checks what Go's profile.Parse
 * checks (string_table[0] == "", every string index in range, ids
 * non-zero and unique, every referenced mapping/function/location
 * present, values per sample == sample types) plus the limits.  Returns
 * TS_OK, or with why set: TS_ERR_CORRUPT (malformed wire data),
 * TS_ERR_INVALID (bad references), TS_ERR_LIMIT (too many samples or
 * labels, max_memory), TS_ERR_NOMEM.  p stays valid (free it) either
 * way.
 */
int ts_pprof_decode(ts_pprof_t *p, const uint8_t *buf, size_t len,
    ts_pprof_why_t *why);

/*
 * As ts_pprof_decode(), for a body that may be gzip-compressed (as Go's
 * profile.Parse, by its 1f 8b magic): inflated with the
 * max_decompressed cap first.  A gzip bomb is TS_ERR_LIMIT with
 * TS_PPROF_TOO_LARGE; a broken gzip stream TS_ERR_CORRUPT with
 * TS_PPROF_BAD_COMPRESSION.
 */
int ts_pprof_parse(ts_pprof_t *p, const uint8_t *buf, size_t len,
    ts_pprof_why_t *why);

/*
 * Adds src into dst as profile.Merge does: the first profile added sets
 * sample types, period type, drop/keep frames; later ones must have the
 * same period type and sample types (TS_ERR_INVALID,
 * TS_PPROF_INCOMPATIBLE, dst unchanged).  time_nanos as Merge combines
 * it (the earliest, where a zero resets it), duration summed, period the
 * maximum, comments appended once each, default sample type and doc
 * url the first non-empty.  src is not modified.  TS_ERR_LIMIT when
 * dst's max_memory is exhausted (dst is then partly merged: discard it).
 */
int ts_pprof_merge(ts_pprof_t *dst, const ts_pprof_t *src,
    ts_pprof_why_t *why);

/*
 * Building a profile directly (query results from storage, folded
 * text).  Entries refer to p's own string, function, mapping and
 * location ids; each call finds an equal entry under Merge's key or
 * adds one, so the result is normalized as a decoded profile is.
 *
 * ts_pprof_add_string: the index of s (len bytes, copied), 0 for "";
 * TS_PPROF_NONE when out of memory or max_memory.
 * ts_pprof_set_types: once, on a profile without samples, sets the
 * sample types (then set period_type, period, time_nanos... directly);
 * TS_ERR_INVALID if already set or an index is out of range.
 * ts_pprof_add_function/mapping/location: the id, 0 when out of memory
 * or a reference is out of range; lines[].function are function ids.
 * ts_pprof_add_sample: sums values into the sample with the same stack
 * (location ids, leaf first) and labels (any order; made canonical);
 * all-zero values are ignored.  TS_ERR_INVALID for a location id out of
 * range, TS_ERR_NOMEM / TS_ERR_LIMIT (max_memory).
 */
uint32_t ts_pprof_add_string(ts_pprof_t *p, const char *s, size_t len);
int ts_pprof_set_types(ts_pprof_t *p, const ts_pprof_vtype_t *types,
    uint32_t n);
uint32_t ts_pprof_add_function(ts_pprof_t *p, const ts_pprof_function_t *f);
uint32_t ts_pprof_add_mapping(ts_pprof_t *p, const ts_pprof_mapping_t *m);
uint32_t ts_pprof_add_location(ts_pprof_t *p, uint32_t mapping,
    uint64_t address, uint32_t is_folded, const ts_pprof_line_t *lines,
    uint32_t nlines);
int ts_pprof_add_sample(ts_pprof_t *p, const uint32_t *stack,
    uint32_t depth, const int64_t *values, const ts_pprof_label_t *labels,
    uint32_t nlabels, ts_pprof_why_t *why);

/*
 * Writes p as a serialized Profile through write(data, ...) in pieces;
 * gzip_level 0: plain protobuf, 1..9: gzip at that level (as Go's
 * profile.Write does).  Samples that summed to zero, and what only they
 * used, are left out as Merge would.  TS_ERR_IO if write failed,
 * TS_ERR_NOMEM, TS_ERR_LIMIT (max_memory).
 */
int ts_pprof_encode(const ts_pprof_t *p, int gzip_level, ts_write_pt write,
    void *data);

/*
 * Sets why (may be NULL) to code and a printf-formatted line (bytes
 * outside printable ASCII become '?'); returns err.  For ts_folded.c
 * and the glue.
 */
int ts_pprof_fail(ts_pprof_why_t *why, int err, ts_pprof_reason_t code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* the string at index i as a (pointer, length) pair; i must be valid */
#define ts_pprof_string(p, i)  (&(p)->strings[(i)])

void ts_pprof_free(ts_pprof_t *p);


#endif /* TS_PPROF_H */
