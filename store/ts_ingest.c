/*
 * Copyright (C) ngx_tsdb authors
 *
 * /ingest request parsing: see ts_ingest.h.  Every scan is bounded by
 * the span it is given and only moves forward, so any input costs at
 * most a few passes over its bytes.
 */

#include <string.h>

#include "ts_error.h"
#include "ts_ingest.h"


static const uint8_t *ts_ingest_find(const uint8_t *p, const uint8_t *last,
    const char *s, size_t n, int icase);
static const uint8_t *ts_ingest_chr(const uint8_t *p, const uint8_t *last,
    int c);
static int ts_ingest_boundary(const char *ct, size_t ct_len, uint8_t *delim,
    size_t *dlen);
static int ts_ingest_part(const uint8_t *hdr, const uint8_t *hdr_end,
    const uint8_t *data, const uint8_t *end, ts_ingest_parts_t *parts);


static int
ts_ingest_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}


static const uint8_t *
ts_ingest_find(const uint8_t *p, const uint8_t *last, const char *s,
    size_t n, int icase)
{
    size_t  i;

    if (n == 0) {
        return p;
    }

    for ( /* void */ ; (size_t) (last - p) >= n; p++) {
        for (i = 0; i < n; i++) {
            if (icase ? ts_ingest_lower(p[i]) != ts_ingest_lower(s[i])
                      : p[i] != (uint8_t) s[i])
            {
                break;
            }
        }

        if (i == n) {
            return p;
        }
    }

    return NULL;
}


static const uint8_t *
ts_ingest_chr(const uint8_t *p, const uint8_t *last, int c)
{
    return (p < last) ? memchr(p, c, (size_t) (last - p)) : NULL;
}


int
ts_ingest_name(const char *name, size_t len, const char **app,
    size_t *app_len, ts_label_t *labels, uint32_t max, uint32_t *n,
    const char **reason)
{
    const uint8_t  *p, *last, *brace, *eq, *end;

    *n = 0;
    p = (const uint8_t *) name;
    last = p + len;
    brace = ts_ingest_chr(p, last, '{');

    *app = name;
    *app_len = (size_t) ((brace ? brace : last) - p);

    while (*app_len && name[*app_len - 1] == ' ') {
        (*app_len)--;
    }

    if (*app_len == 0) {
        *reason = "empty application name";
        return TS_ERR_INVALID;
    }

    if (brace == NULL) {
        return TS_OK;
    }

    if (last - brace < 2 || last[-1] != '}') {
        *reason = "invalid \"name\": labels must end with }";
        return TS_ERR_INVALID;
    }

    for (p = brace + 1; p < last - 1; p = end + 1) {
        end = ts_ingest_chr(p, last - 1, ',');
        if (end == NULL) {
            end = last - 1;
        }

        while (p < end && *p == ' ') {
            p++;
        }

        if (p == end) {
            continue;
        }

        eq = ts_ingest_chr(p, end, '=');
        if (eq == NULL) {
            *reason = "invalid \"name\": a label without =";
            return TS_ERR_INVALID;
        }

        /* reserved names are dropped, as IsLabelAllowedForIngestion */

        if (eq - p >= 2 && p[0] == '_' && p[1] == '_') {
            continue;
        }

        if (*n >= max) {
            *reason = "too many labels";
            return TS_ERR_LIMIT;
        }

        labels[*n].name = (const char *) p;
        labels[*n].name_len = (uint32_t) (eq - p);
        labels[*n].value = (const char *) eq + 1;
        labels[*n].value_len = (uint32_t) (end - eq - 1);
        (*n)++;
    }

    return TS_OK;
}


/* "--" and the boundary parameter of a multipart Content-Type */

static int
ts_ingest_boundary(const char *ct, size_t ct_len, uint8_t *delim,
    size_t *dlen)
{
    size_t          blen;
    const uint8_t  *b, *e, *p;

    b = ts_ingest_find((const uint8_t *) ct, (const uint8_t *) ct + ct_len,
                       "boundary=", 9, 1);
    if (b == NULL) {
        return TS_ERR_CORRUPT;
    }

    b += 9;
    e = (const uint8_t *) ct + ct_len;

    if (b < e && *b == '"') {
        b++;
        e = ts_ingest_chr(b, e, '"');
        if (e == NULL) {
            return TS_ERR_CORRUPT;
        }

    } else {
        for (p = b; p < e && *p != ';' && *p != ' '; p++) { /* void */ }
        e = p;
    }

    blen = (size_t) (e - b);
    if (blen == 0 || blen > TS_INGEST_BOUNDARY_MAX) {
        return TS_ERR_CORRUPT;
    }

    delim[0] = '-';
    delim[1] = '-';
    memcpy(delim + 2, b, blen);
    *dlen = blen + 2;

    return TS_OK;
}


/*
 * Parts are delimited by "--boundary"; each has headers up to an empty
 * line, then data up to the CRLF before the next delimiter; the close
 * delimiter is "--boundary--".  The preamble before the first delimiter
 * is ignored.
 */

int
ts_ingest_multipart(const char *content_type, size_t ct_len,
    const uint8_t *body, size_t len, ts_ingest_parts_t *parts,
    const char **reason)
{
    int             rc;
    size_t          dlen;
    uint8_t         delim[TS_INGEST_BOUNDARY_MAX + 2];
    const uint8_t  *p, *last, *hdr_end, *part_end;

    memset(parts, 0, sizeof(ts_ingest_parts_t));
    *reason = "malformed multipart/form-data body";

    if (ts_ingest_boundary(content_type, ct_len, delim, &dlen) != TS_OK) {
        return TS_ERR_CORRUPT;
    }

    last = body + len;
    p = ts_ingest_find(body, last, (const char *) delim, dlen, 0);

    while (p != NULL && (size_t) (last - p) >= dlen + 2) {
        p += dlen;

        if (p[0] == '-' && p[1] == '-') {
            break;                                  /* the close */
        }

        hdr_end = ts_ingest_find(p, last, "\r\n\r\n", 4, 0);
        if (hdr_end == NULL) {
            return TS_ERR_CORRUPT;
        }

        part_end = ts_ingest_find(hdr_end + 4, last, (const char *) delim,
                                  dlen, 0);
        if (part_end == NULL || part_end - 2 < hdr_end + 4) {
            return TS_ERR_CORRUPT;
        }

        rc = ts_ingest_part(p, hdr_end, hdr_end + 4, part_end - 2, parts);
        if (rc != TS_OK) {
            *reason = "unsupported client version: prev_profile is not"
                      " accepted";
            return rc;
        }

        p = part_end;
    }

    return TS_OK;
}


static int
ts_ingest_part(const uint8_t *hdr, const uint8_t *hdr_end,
    const uint8_t *data, const uint8_t *end, ts_ingest_parts_t *parts)
{
    size_t          nlen;
    const uint8_t  *name, *e;

    name = ts_ingest_find(hdr, hdr_end, "name=\"", 6, 1);
    if (name == NULL) {
        return TS_OK;
    }

    name += 6;
    e = ts_ingest_chr(name, hdr_end, '"');
    nlen = e ? (size_t) (e - name) : 0;

    if (nlen == 7 && memcmp(name, "profile", 7) == 0) {
        parts->profile = data;
        parts->profile_len = (size_t) (end - data);

    } else if (nlen == 12 && memcmp(name, "prev_profile", 12) == 0) {
        return TS_ERR_UNSUPPORTED;

    } else if (nlen == 18 && memcmp(name, "sample_type_config", 18) == 0) {
        parts->stc = data;
        parts->stc_len = (size_t) (end - data);
    }

    return TS_OK;
}


int
ts_ingest_display_name(const uint8_t *stc, size_t stc_len, const char *st,
    size_t st_len, const char **out, size_t *out_len)
{
    char            key[260];
    const uint8_t  *p, *last, *q, *obj_end;

    if (stc == NULL || stc_len == 0 || st_len > 255) {
        return 0;
    }

    key[0] = '"';
    memcpy(key + 1, st, st_len);
    key[st_len + 1] = '"';

    last = stc + stc_len;

    p = ts_ingest_find(stc, last, key, st_len + 2, 1);
    if (p == NULL) {
        return 0;
    }

    obj_end = ts_ingest_chr(p, last, '}');
    if (obj_end == NULL) {
        return 0;
    }

    q = ts_ingest_find(p, obj_end, "\"display-name\"", 14, 1);
    if (q == NULL) {
        return 0;
    }

    q = ts_ingest_chr(q + 14, obj_end, '"');
    if (q == NULL) {
        return 0;
    }

    *out = (const char *) q + 1;
    q = ts_ingest_chr(q + 1, obj_end, '"');
    if (q == NULL) {
        return 0;
    }

    *out_len = (size_t) ((const char *) q - *out);

    return 1;
}
