/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target for WAL replay and the record payload decoders.
 *
 * Input: one mode byte, one split byte, then segment bytes.  The data is
 * written as segment 00000001.wal (and, with TS_FUZZ_SPLIT, the part
 * after the split point as 00000002.wal behind a valid header) in a
 * directory made once per process (on tmpfs when /dev/shm exists), then
 * replayed with repair.  Checksums
 * would stop random data at the first header, so the mode byte can ask
 * for valid segment and record checksums, letting the fuzzer reach the
 * record walk and the payload decoders.  With TS_FUZZ_SNAPPY every whole
 * record's payload is snappy-compressed first (flag set, segment made
 * version 2), so that fuzzed payloads also arrive through decompression;
 * fuzzed compressed records reach the snappy checks directly.  Every
 * input is also fed to each payload decoder directly: SERIES, SAMPLES
 * and HISTOGRAM_SAMPLES (seeds seed-hist-*).
 */

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <snappy-c.h>

#include "ts_crc32c.h"
#include "ts_hchunk.h"
#include "ts_wal.h"
#include "ts_walrec.h"


#define TS_FUZZ_SEG_CRC     0x01
#define TS_FUZZ_REC_CRC     0x02
#define TS_FUZZ_SPLIT       0x04
#define TS_FUZZ_SNAPPY      0x08
#define TS_FUZZ_MAX_LABELS  64
#define TS_FUZZ_INPUT_MAX   (1 << 20)

/* at most 5 x the input: snappy adds 32 + n / 6 to each payload */
#define TS_FUZZ_ZBUF_MAX    (5 * TS_FUZZ_INPUT_MAX + TS_WAL_SEG_HDR)


static char      ts_fuzz_dir[64];
static uint8_t  *ts_fuzz_buf;
static uint8_t  *ts_fuzz_zbuf;
static uint8_t  *ts_fuzz_hmem;      /* 8 x TS_FUZZ_ZBUF_MAX */


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
ts_fuzz_rm(const char *name)
{
    char  path[128];

    snprintf(path, sizeof(path), "%s/%s", ts_fuzz_dir, name);
    (void) unlink(path);
}


static void
ts_fuzz_cleanup(void)
{
    ts_fuzz_rm("00000001.wal");
    ts_fuzz_rm("00000002.wal");
    ts_fuzz_rm(TS_WAL_LOCK);
    (void) rmdir(ts_fuzz_dir);
    free(ts_fuzz_buf);
    free(ts_fuzz_zbuf);
    free(ts_fuzz_hmem);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    /* tmpfs if there is one: repair fsyncs, and disks make that slow */

    strcpy(ts_fuzz_dir, "/dev/shm/fuzz_wal.XXXXXX");

    if (mkdtemp(ts_fuzz_dir) == NULL) {
        strcpy(ts_fuzz_dir, "/tmp/fuzz_wal.XXXXXX");

        if (mkdtemp(ts_fuzz_dir) == NULL) {
            perror("mkdtemp");
            abort();
        }
    }

    ts_fuzz_buf = malloc(TS_FUZZ_INPUT_MAX);
    ts_fuzz_zbuf = malloc(TS_FUZZ_ZBUF_MAX);
    ts_fuzz_hmem = malloc(8 * (size_t) TS_FUZZ_ZBUF_MAX);
    if (ts_fuzz_buf == NULL || ts_fuzz_zbuf == NULL || ts_fuzz_hmem == NULL)
    {
        abort();
    }

    atexit(ts_fuzz_cleanup);

    return 0;
}


static void
ts_fuzz_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}


static uint32_t
ts_fuzz_get32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8
           | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}


/* Gives a segment the checksums a writer would have computed. */
static void
ts_fuzz_fix(uint8_t *p, size_t n, unsigned mode)
{
    size_t    off, len;
    uint32_t  crc;

    if (n < TS_WAL_SEG_HDR) {
        return;
    }

    if (mode & TS_FUZZ_SEG_CRC) {
        ts_fuzz_put32(p + 12, ts_crc32c(0, p, 12));
    }

    if (!(mode & TS_FUZZ_REC_CRC)) {
        return;
    }

    for (off = TS_WAL_SEG_HDR; n - off >= TS_WAL_REC_HDR; off += len) {
        len = ts_fuzz_get32(p + off + 2);

        if (p[off] == 0 || len > n - off - TS_WAL_REC_HDR) {
            return;
        }

        crc = ts_crc32c(0, p + off, 6);
        crc = ts_crc32c(crc, p + off + TS_WAL_REC_HDR, len);
        ts_fuzz_put32(p + off + 6, crc);
        len += TS_WAL_REC_HDR;
    }
}


/*
 * Copies a segment to ts_fuzz_zbuf with every whole record's payload
 * compressed as a writer would; what follows the last one is copied.
 */
static size_t
ts_fuzz_snappy(const uint8_t *in, size_t n)
{
    size_t    off, len, o, zlen;
    uint8_t  *out;

    out = ts_fuzz_zbuf;

    if (n < TS_WAL_SEG_HDR) {
        memcpy(out, in, n);
        return n;
    }

    memcpy(out, in, TS_WAL_SEG_HDR);
    out[4] = TS_WAL_VERSION;

    for (off = o = TS_WAL_SEG_HDR; n - off >= TS_WAL_REC_HDR; off += len) {
        len = ts_fuzz_get32(in + off + 2);

        if (in[off] == 0 || len > n - off - TS_WAL_REC_HDR) {
            break;
        }

        zlen = snappy_max_compressed_length(len);

        if (snappy_compress((const char *) in + off + TS_WAL_REC_HDR, len,
                            (char *) out + o + TS_WAL_REC_HDR, &zlen)
            != SNAPPY_OK)
        {
            abort();
        }

        memcpy(out + o, in + off, TS_WAL_REC_HDR);
        out[o + 1] = TS_WAL_REC_SNAPPY;
        ts_fuzz_put32(out + o + 2, (uint32_t) zlen);
        o += TS_WAL_REC_HDR + zlen;
        len += TS_WAL_REC_HDR;
    }

    memcpy(out + o, in + off, n - off);

    return o + n - off;
}


static void
ts_fuzz_write(const char *name, const uint8_t *p, size_t n)
{
    int   fd;
    char  path[128];

    snprintf(path, sizeof(path), "%s/%s", ts_fuzz_dir, name);

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1 || (n && write(fd, p, n) != (ssize_t) n)) {
        perror(path);
        abort();
    }

    close(fd);
}


static void
ts_fuzz_series(const uint8_t *p, size_t n)
{
    size_t              k;
    ts_walrec_series_t  s;
    ts_walrec_reader_t  rd;
    ts_walrec_label_t   labels[TS_FUZZ_MAX_LABELS];
    volatile uint8_t    sink = 0;

    if (ts_walrec_series_open(&rd, p, n, NULL) != TS_OK) {
        return;
    }

    while (ts_walrec_series_next(&rd, &s, labels, TS_FUZZ_MAX_LABELS)
           == TS_OK)
    {
        for (k = 0; k < s.nlabels; k++) {
            if (s.labels[k].name.len) {
                sink = s.labels[k].name.data[s.labels[k].name.len - 1];
            }

            if (s.labels[k].value.len) {
                sink = s.labels[k].value.data[s.labels[k].value.len - 1];
            }
        }
    }

    (void) sink;
}


static void
ts_fuzz_samples(const uint8_t *p, size_t n)
{
    uint64_t            count, got;
    ts_walrec_sample_t  s;
    ts_walrec_reader_t  rd;

    if (ts_walrec_samples_open(&rd, p, n, &count) != TS_OK) {
        return;
    }

    for (got = 0; ts_walrec_samples_next(&rd, &s) == TS_OK; got++) {
        /* void */
    }

    if (got > count) {
        abort();
    }
}


/*
 * HISTOGRAM_SAMPLES: 8 bytes of memory per payload byte always hold an
 * entry's arrays (ts_walrec.h), so TS_ERR_LIMIT would be a bug; what is
 * decoded must be readable and sized as an appender would.
 */
static void
ts_fuzz_hists(const uint8_t *p, size_t n)
{
    int                 rc;
    uint32_t            k;
    uint64_t            count, got;
    ts_walrec_hist_t    s;
    ts_walrec_reader_t  rd;
    volatile double     sink = 0;

    if (n > TS_FUZZ_ZBUF_MAX
        || ts_walrec_hists_open(&rd, p, n, &count) != TS_OK)
    {
        return;
    }

    for (got = 0; ; got++) {
        rc = ts_walrec_hists_next(&rd, &s, ts_fuzz_hmem, 8 * n + 8);
        if (rc != TS_OK) {
            break;
        }

        for (k = 0; k < s.h.n_pos_spans; k++) {
            sink += s.h.pos_spans[k].length;
        }

        for (k = 0; k < s.h.n_neg_spans; k++) {
            sink += s.h.neg_spans[k].length;
        }

        for (k = 0; k < s.h.n_pos; k++) {
            sink += s.h.is_float ? s.h.pos_counts[k]
                                 : (double) s.h.pos_deltas[k];
        }

        for (k = 0; k < s.h.n_neg; k++) {
            sink += s.h.is_float ? s.h.neg_counts[k]
                                 : (double) s.h.neg_deltas[k];
        }

        for (k = 0; k < s.h.n_custom; k++) {
            sink += s.h.custom_values[k];
        }

        sink += (double) ts_hist_app_size(&s.h);
    }

    if (rc == TS_ERR_LIMIT || got > count) {
        abort();
    }

    (void) sink;
}


static int
ts_fuzz_record(void *data, const ts_wal_rec_t *rec)
{
    (void) data;

    if (rec->type == 0 || rec->len > TS_WAL_RECORD_MAX
        || rec->stored > TS_WAL_RECORD_MAX
        || (rec->flags & ~TS_WAL_REC_SNAPPY)
        || (!(rec->flags & TS_WAL_REC_SNAPPY) && rec->stored != rec->len))
    {
        abort();
    }

    switch (rec->type) {

    case TS_WALREC_SERIES:
        ts_fuzz_series(rec->payload, rec->len);
        break;

    case TS_WALREC_SAMPLES:
        ts_fuzz_samples(rec->payload, rec->len);
        break;

    case TS_WALREC_HISTOGRAM_SAMPLES:
        ts_fuzz_hists(rec->payload, rec->len);
        break;

    default:
        break;
    }

    return TS_OK;
}


/* Counts the compressed records skipped alone, which do not end replay. */
static void
ts_fuzz_report(void *data, const ts_wal_report_t *rep)
{
    unsigned  *skipped = data;

    if (strstr(rep->reason, "compressed") != NULL) {
        if (rep->truncated) {
            abort();
        }

        (*skipped)++;
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                  n, split;
    unsigned                mode, skipped;
    uint8_t                *p;
    ts_wal_replay_t         rp;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    if (size < 2 || size - 2 > TS_FUZZ_INPUT_MAX) {
        return 0;
    }

    mode = data[0];
    n = size - 2;
    p = ts_fuzz_buf;
    memcpy(p, data + 2, n);

    ts_fuzz_series(data + 2, n);
    ts_fuzz_samples(data + 2, n);
    ts_fuzz_hists(data + 2, n);

    if (mode & TS_FUZZ_SNAPPY) {
        n = ts_fuzz_snappy(p, n);
        p = ts_fuzz_zbuf;
    }

    ts_fuzz_rm("00000002.wal");

    if ((mode & TS_FUZZ_SPLIT) && n > TS_WAL_SEG_HDR) {
        split = TS_WAL_SEG_HDR + (n - TS_WAL_SEG_HDR) * data[1] / 256;

        ts_fuzz_fix(p, split, mode);
        ts_fuzz_write("00000001.wal", p, split);

        /* the first segment's header, renumbered, heads the second */
        memmove(p + split - TS_WAL_SEG_HDR, p, TS_WAL_SEG_HDR);
        ts_fuzz_put32(p + split - TS_WAL_SEG_HDR + 8, 2);
        ts_fuzz_fix(p + split - TS_WAL_SEG_HDR, n - split + TS_WAL_SEG_HDR,
                    mode);
        ts_fuzz_write("00000002.wal", p + split - TS_WAL_SEG_HDR,
                      n - split + TS_WAL_SEG_HDR);

    } else {
        ts_fuzz_fix(p, n, mode);
        ts_fuzz_write("00000001.wal", p, n);
    }

    memset(&st, 0, sizeof(st));
    skipped = 0;
    rp.record = ts_fuzz_record;
    rp.report = ts_fuzz_report;
    rp.data = &skipped;
    rp.flags = TS_WAL_REPAIR;

    (void) ts_wal_replay_dir(ts_fuzz_dir, &rp, &st, err, sizeof(err));

    if (st.truncations > 1 || st.corruptions - skipped > 2) {
        abort();
    }

    return 0;
}
