/*
 * Copyright (C) ngx_tsdb authors
 *
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * Prometheus WAL records, remote-read frames and chunk files.  Pass 0 as
 * crc to start; feed the result back in to continue over more data.
 */

#ifndef TS_CRC32C_H
#define TS_CRC32C_H


#include <stddef.h>
#include <stdint.h>


uint32_t ts_crc32c(uint32_t crc, const void *data, size_t len);


#endif /* TS_CRC32C_H */
