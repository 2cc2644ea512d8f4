/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target for the LMDB index's postings blocks (format version
 * 2, docs/format/lmdb.md): the first 8 bytes of the input are the
 * block's first id (the id of its key, big-endian), the rest its value
 * as read from disk.  ts_db_pblock_decode() (the count and delta steps
 * the postings iterator uses) must give TS_OK or TS_ERR_CORRUPT without
 * reading past the value; a block it accepts has 1 .. TS_DB_PBLOCK_MAX
 * ids, strictly ascending from the first, and encodes again to a value
 * that decodes to the same ids.  Any mismatch aborts.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_db.h"
#include "ts_error.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int       rc;
    size_t    i, len;
    uint8_t  *val, enc[16 + 10 * TS_DB_PBLOCK_MAX];
    uint32_t  n, n2;
    uint64_t  first, ids[TS_DB_PBLOCK_MAX], ids2[TS_DB_PBLOCK_MAX];

    if (size < 8) {
        return 0;
    }

    first = 0;

    for (i = 0; i < 8; i++) {
        first = first << 8 | data[i];
    }

    /* an exact copy, so that ASan sees a read past the value */

    len = size - 8;
    val = malloc(len ? len : 1);
    if (val == NULL) {
        return 0;
    }

    memcpy(val, data + 8, len);

    rc = ts_db_pblock_decode(first, val, len, ids, &n);
    free(val);

    if (rc == TS_ERR_CORRUPT) {
        return 0;
    }

    if (rc != TS_OK || n == 0 || n > TS_DB_PBLOCK_MAX || ids[0] != first) {
        abort();
    }

    for (i = 1; i < n; i++) {
        if (ids[i] <= ids[i - 1]) {
            abort();
        }
    }

    len = ts_db_pblock_encode(ids, n, enc);

    if (len > sizeof(enc)
        || ts_db_pblock_decode(first, enc, len, ids2, &n2) != TS_OK
        || n2 != n || memcmp(ids, ids2, n * sizeof(uint64_t)) != 0)
    {
        abort();
    }

    return 0;
}
