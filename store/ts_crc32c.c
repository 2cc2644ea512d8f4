/*
 * Copyright (C) ngx_tsdb authors
 *
 * Slicing-by-8 table CRC-32C.  Tables are built once, on first use, from
 * the polynomial; building is idempotent so a race between threads only
 * writes the same values twice.
 */

#include "ts_crc32c.h"


#define TS_CRC32C_POLY  0x82F63B78u


static uint32_t  ts_crc32c_table[8][256];
static int       ts_crc32c_ready;


static void
ts_crc32c_init(void)
{
    int       i, k;
    uint32_t  c;

    for (i = 0; i < 256; i++) {
        c = (uint32_t) i;

        for (k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ TS_CRC32C_POLY : c >> 1;
        }

        ts_crc32c_table[0][i] = c;
    }

    for (i = 0; i < 256; i++) {
        c = ts_crc32c_table[0][i];

        for (k = 1; k < 8; k++) {
            c = ts_crc32c_table[0][c & 0xff] ^ (c >> 8);
            ts_crc32c_table[k][i] = c;
        }
    }

    __atomic_store_n(&ts_crc32c_ready, 1, __ATOMIC_RELEASE);
}


uint32_t
ts_crc32c(uint32_t crc, const void *data, size_t len)
{
    uint32_t        lo, hi;
    const uint8_t  *p;

    if (!__atomic_load_n(&ts_crc32c_ready, __ATOMIC_ACQUIRE)) {
        ts_crc32c_init();
    }

    p = data;
    crc = ~crc;

    while (len >= 8) {
        lo = crc ^ ((uint32_t) p[0] | (uint32_t) p[1] << 8
                    | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24);
        hi = (uint32_t) p[4] | (uint32_t) p[5] << 8
             | (uint32_t) p[6] << 16 | (uint32_t) p[7] << 24;

        crc = ts_crc32c_table[7][lo & 0xff]
              ^ ts_crc32c_table[6][(lo >> 8) & 0xff]
              ^ ts_crc32c_table[5][(lo >> 16) & 0xff]
              ^ ts_crc32c_table[4][lo >> 24]
              ^ ts_crc32c_table[3][hi & 0xff]
              ^ ts_crc32c_table[2][(hi >> 8) & 0xff]
              ^ ts_crc32c_table[1][(hi >> 16) & 0xff]
              ^ ts_crc32c_table[0][hi >> 24];

        p += 8;
        len -= 8;
    }

    while (len--) {
        crc = ts_crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    }

    return ~crc;
}
