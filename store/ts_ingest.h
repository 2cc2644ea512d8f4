/*
 * Copyright (C) ngx_tsdb authors
 *
 * The request parsing of Pyroscope's legacy POST /ingest that does not
 * need nginx: the "name" parameter (APP{k=v,...}, as Pyroscope's
 * labelset.Parse) and multipart/form-data bodies (RFC 7578) with the
 * "profile", "sample_type_config" and "prev_profile" parts.  Nothing
 * is allocated or copied: results are spans of the input.
 */

#ifndef TS_INGEST_H
#define TS_INGEST_H


#include <stddef.h>
#include <stdint.h>

#include "ts_labels.h"


#define TS_INGEST_BOUNDARY_MAX   70      /* RFC 2046 */


typedef struct {
    const uint8_t      *profile;        /* NULL: no such part */
    size_t              profile_len;
    const uint8_t      *stc;            /* sample_type_config, or NULL */
    size_t              stc_len;
} ts_ingest_parts_t;


/*
 * name[0 .. len) -> the application (trailing spaces trimmed) and its
 * labels, in order, at most max (names starting with "__" are dropped
 * as Pyroscope's IsLabelAllowedForIngestion drops them; empty items and
 * leading spaces are skipped).  TS_OK; TS_ERR_INVALID with a static
 * reason for an empty application, labels not ending with '}', a label
 * without '='; TS_ERR_LIMIT for more than max labels.
 */
int ts_ingest_name(const char *name, size_t len, const char **app,
    size_t *app_len, ts_label_t *labels, uint32_t max, uint32_t *n,
    const char **reason);

/*
 * A multipart/form-data body, its boundary from content_type.  TS_OK
 * (parts set; profile NULL when there is no "profile" part);
 * TS_ERR_CORRUPT for a malformed body or boundary; TS_ERR_UNSUPPORTED
 * for a "prev_profile" part (Pyroscope refuses it).  reason: static.
 */
int ts_ingest_multipart(const char *content_type, size_t ct_len,
    const uint8_t *body, size_t len, ts_ingest_parts_t *parts,
    const char **reason);

/*
 * The "display-name" a sample_type_config JSON gives the sample type
 * st, e.g. {"cpu":{"units":"samples","display-name":"cpu_samples"}}:
 * found by a bounded scan as Pyroscope's clients write it.  1 with out
 * set, 0 if none.
 */
int ts_ingest_display_name(const uint8_t *stc, size_t stc_len,
    const char *st, size_t st_len, const char **out, size_t *out_len);


#endif /* TS_INGEST_H */
