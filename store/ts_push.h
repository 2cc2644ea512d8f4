/*
 * Copyright (C) ngx_tsdb authors
 *
 * Decoding of Pyroscope's push.v1.PushRequest (proto/pyroscope_push.proto)
 * as the Connect unary call POST /push.v1.PusherService/Push carries it:
 * binary protobuf (application/proto) or protojson (application/json:
 * series[].labels[{name,value}], series[].samples[{rawProfile, ID}],
 * rawProfile base64; proto field names are accepted as well, unknown
 * members are skipped as Connect's JSON codec does).
 *
 * Both decoders produce the same flat ts_push_t: series with their
 * labels and raw profiles (serialized pprof, gzip or not: the caller
 * parses them with ts_pprof_parse()).  Limits are checked while
 * decoding; the body is not compressed any more (the caller inflated a
 * Content-Encoding with its cap).  Memory comes from the caller's
 * allocator; ts_push_free() returns it (a no-op with a pool allocator).
 */

#ifndef TS_PUSH_H
#define TS_PUSH_H


#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "ts_labels.h"


#define TS_PUSH_ERR_MAX      160


typedef struct {
    uint32_t            max_series;     /* per request */
    uint32_t            max_profiles;   /* raw samples, all series */
    uint32_t            max_labels;     /* per series */
    uint32_t            max_label_len;  /* name or value bytes */
} ts_push_limits_t;


typedef struct {
    const uint8_t      *data;
    size_t              len;
} ts_push_raw_t;


typedef struct {
    ts_label_t         *labels;
    uint32_t            nlabels;
    ts_push_raw_t      *profiles;
    uint32_t            nprofiles;
} ts_push_series_t;


typedef struct {
    ts_push_series_t   *series;
    uint32_t            nseries;
    uint32_t            nprofiles;      /* over all series */

    /* private */
    ProtobufCAllocator  alloc;
    void               *msg;            /* the unpacked protobuf */
    void               *chunks;         /* JSON: allocations */
} ts_push_t;


/* 64 series, 256 profiles, 64 labels, 1024-byte names and values */
void ts_push_limits_default(ts_push_limits_t *lim);

/*
 * Decode buf[0 .. len) into p (a NULL: malloc/free; lim NULL:
 * defaults).  TS_OK; TS_ERR_CORRUPT for a malformed body; TS_ERR_LIMIT
 * when a limit is exceeded; TS_ERR_INVALID for a well-formed request
 * that is not acceptable (a label name or value that is not a string,
 * rawProfile that is not base64, no series); TS_ERR_NOMEM.  err gets
 * one printable line.  p must be freed with ts_push_free() either way.
 */
int ts_push_decode_proto(ts_push_t *p, const uint8_t *buf, size_t len,
    const ts_push_limits_t *lim, ProtobufCAllocator *a, char *err,
    size_t errlen);
int ts_push_decode_json(ts_push_t *p, const char *buf, size_t len,
    const ts_push_limits_t *lim, ProtobufCAllocator *a, char *err,
    size_t errlen);

void ts_push_free(ts_push_t *p);


#endif /* TS_PUSH_H */
