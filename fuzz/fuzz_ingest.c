/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target: the parsing of Pyroscope's /ingest requests that
 * ts_ingest.c does: the input's first line is the Content-Type (its
 * boundary) and the "name" parameter, the rest the body.  Every span a
 * parser returns must lie inside what it was given; labels never start
 * with "__" and are at most max; a multipart profile part never
 * overlaps a delimiter; the sample_type_config lookup only returns
 * bytes of that part.
 *
 * Seeds (fuzz/corpus/fuzz_ingest/): multipart bodies as pyroscope-go
 * and @pyroscope/nodejs send them, with names with labels.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_error.h"
#include "ts_ingest.h"


#define fz_assert(cond)                                                   \
    do {                                                                  \
        if (!(cond)) {                                                    \
            abort();                                                      \
        }                                                                 \
    } while (0)

#define fz_inside(p, n, base, len)                                        \
    ((const uint8_t *) (p) >= (const uint8_t *) (base)                    \
     && (const uint8_t *) (p) + (n) <= (const uint8_t *) (base) + (len))


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
fz_name(const uint8_t *data, size_t size)
{
    int           rc;
    size_t        alen;
    uint32_t      i, n;
    const char   *app, *reason;
    ts_label_t    l[8];

    rc = ts_ingest_name((const char *) data, size, &app, &alen, l, 8, &n,
                        &reason);

    if (rc != TS_OK) {
        fz_assert(rc == TS_ERR_INVALID || rc == TS_ERR_LIMIT);
        fz_assert(reason != NULL && reason[0] != '\0');
        return;
    }

    fz_assert(alen > 0 && fz_inside(app, alen, data, size));
    fz_assert(n <= 8);

    for (i = 0; i < n; i++) {
        fz_assert(fz_inside(l[i].name, l[i].name_len, data, size));
        fz_assert(fz_inside(l[i].value, l[i].value_len, data, size));
        fz_assert(l[i].name_len < 2 || l[i].name[0] != '_'
                  || l[i].name[1] != '_');
        fz_assert(memchr(l[i].value, ',', l[i].value_len) == NULL);
    }
}


static void
fz_multipart(const char *ct, size_t ct_len, const uint8_t *body,
    size_t len)
{
    int                 rc;
    size_t              dn_len;
    const char         *reason, *dn;
    ts_ingest_parts_t   parts;

    rc = ts_ingest_multipart(ct, ct_len, body, len, &parts, &reason);

    if (rc != TS_OK) {
        fz_assert(rc == TS_ERR_CORRUPT || rc == TS_ERR_UNSUPPORTED);
        fz_assert(reason != NULL && reason[0] != '\0');
        return;
    }

    if (parts.profile != NULL) {
        fz_assert(fz_inside(parts.profile, parts.profile_len, body, len));
    }

    if (parts.stc == NULL) {
        return;
    }

    fz_assert(fz_inside(parts.stc, parts.stc_len, body, len));

    if (ts_ingest_display_name(parts.stc, parts.stc_len, "cpu", 3, &dn,
                               &dn_len))
    {
        fz_assert(fz_inside(dn, dn_len, parts.stc, parts.stc_len));
        fz_assert(memchr(dn, '"', dn_len) == NULL);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char           *ct;
    size_t          line;
    const uint8_t  *nl;

    nl = memchr(data, '\n', size);
    line = nl ? (size_t) (nl - data) : size;

    fz_name(data, line);

    /* a copy, so that reading past the Content-Type is caught */

    ct = malloc(line + 1);
    fz_assert(ct != NULL);
    memcpy(ct, data, line);

    fz_multipart(ct, line, nl ? nl + 1 : data + size,
                 nl ? size - line - 1 : 0);

    free(ct);

    return 0;
}
