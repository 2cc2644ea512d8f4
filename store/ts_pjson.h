/*
 * Copyright (C) ngx_tsdb authors
 *
 * Protobuf messages as JSON, by the proto3 JSON mapping (protojson),
 * for any protobuf-c message type, driven by its descriptor: what the
 * Connect protocol's application/json carries.
 *
 * Encoding writes what protojson.Marshal writes, whitespace aside:
 * fields in declaration order under their lowerCamelCase JSON names
 * (profile_typeID -> profileTypeID), fields with default values left
 * out, 64-bit integers as decimal strings, enums by value name, bytes
 * as padded base64, NaN and infinities as "NaN", "Infinity",
 * "-Infinity".
 *
 * Decoding accepts what protojson.Unmarshal accepts, as Connect's JSON
 * codec uses it (unknown fields discarded): a field under its proto
 * name or its JSON name; null for a default; integers as numbers or
 * strings (no fraction, in range); floats as numbers or strings; enums
 * by name or number; bytes as standard or URL-safe base64, padded or
 * not; \u escapes with surrogate pairs.  The message and everything in
 * it comes from the allocator in protobuf-c's own layout, so
 * protobuf_c_message_free_unpacked() frees it.  Nesting is bounded by
 * TS_PJSON_MAX_DEPTH; a bad document is TS_ERR_INVALID with one line in
 * err naming the offset.
 */

#ifndef TS_PJSON_H
#define TS_PJSON_H


#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "ts_sset.h"


#define TS_PJSON_MAX_DEPTH     32


/* TS_OK or TS_ERR_NOMEM */
int ts_pjson_encode(const ProtobufCMessage *m, ts_buf_t *out);

/*
 * Decodes json[0 .. len) into a new message of type d.  TS_OK with *out
 * set; TS_ERR_INVALID (err says why and where), TS_ERR_NOMEM; *out is
 * NULL on error and anything allocated is freed (with a pool allocator
 * whose free does nothing, it stays in the pool).  a NULL: malloc.
 */
int ts_pjson_decode(const ProtobufCMessageDescriptor *d, const uint8_t *json,
    size_t len, ProtobufCAllocator *a, ProtobufCMessage **out, char *err,
    size_t errlen);


#endif /* TS_PJSON_H */
