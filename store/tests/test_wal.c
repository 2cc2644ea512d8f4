/*
 * Copyright (C) ngx_tsdb authors
 *
 * ts_wal and ts_walrec: round trips over several segments, group commit,
 * one named case per corruption kind (of plain and of snappy-compressed
 * records), idempotent replay, locking across fork(), adoption of a
 * SIGKILLed writer's directory, truncation, I/O fault injection (short
 * writes, EINTR, ENOSPC, fsync failure), replay of a WAL the previous
 * format version wrote (store/tests/data/wal-v1/) and the payload codecs,
 * including every truncation of a valid payload.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <snappy-c.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts_crc32c.h"
#include "ts_wal.h"
#include "ts_walrec.h"


#define T_NSEG      3
#define T_NREC      5
#define T_LEN       100
#define T_RECSZ     (TS_WAL_REC_HDR + T_LEN)
#define T_SEGSZ     (TS_WAL_SEG_HDR + T_NREC * T_RECSZ)
#define T_TOTAL     (T_NSEG * T_NREC)
#define T_REC(k)    (TS_WAL_SEG_HDR + (k) * T_RECSZ)
#define T_NAME      "w-test"

/* the compressed layout: T_ZSEG segments of T_ZREC records */
#define T_ZSEG      2
#define T_ZREC      3
#define T_ZLEN      1000
#define T_ZTOTAL    (T_ZSEG * T_ZREC)

#define T_V1_DIR    "store/tests/data/wal-v1"


typedef struct {
    uint8_t             type;
    uint8_t             flags;
    uint32_t            seg;
    uint64_t            off;
    size_t              len;
    size_t              stored;
    uint8_t            *data;
} t_rec_t;


typedef struct {
    const char         *reason;
    uint32_t            seg;
    uint64_t            off;
    uint64_t            lost;
    int                 truncated;
} t_rep_t;


typedef struct {
    t_rec_t            *r;
    size_t              n;
    size_t              cap;
    t_rep_t             rep[16];
    size_t              nrep;
    int                 stop_after;     /* > 0: fail the n-th record */
} t_col_t;


typedef struct {
    char                root[64];       /* mkdtemp() */
    char                dir[128];       /* root/wal/w-test */
} t_env_t;


/* A named corruption: what to break and what replay must then do. */
typedef struct {
    const char         *name;
    void              (*mutate)(const t_env_t *env);
    int                 rc;
    int                 skip_from;      /* records not replayed: */
    int                 skip_to;        /* [skip_from, skip_to) */
    unsigned            corruptions;
    unsigned            truncations;
    const char         *reason;
    uint32_t            seg;
    uint64_t            off;
    uint64_t            lost;
    long long           size_after;     /* of segment seg; -1: any */
} t_corrupt_t;


/* Fault injection state for the writer's I/O hooks. */
static int            t_pwrite_calls;
static int            t_pwrite_short;   /* write at most this many bytes */
static int            t_pwrite_eintr;   /* every other call fails EINTR */
static int            t_pwrite_fail_at; /* call number that fails ENOSPC */
static int            t_fsync_calls;
static int            t_fsync_fail_at;
static ino_t          t_fsync_failed_ino;
static int            t_fsync_failed_again;

/* the last temporary directory, removed by t_teardown() after a failure */
static char           t_last_root[64];


/* Helpers. */

static void
t_payload(uint8_t *p, size_t len, unsigned i)
{
    size_t  k;

    for (k = 0; k < len; k++) {
        p[k] = (uint8_t) (i * 131 + k * 7 + (k >> 3));
    }
}


static int
t_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void) sb;
    (void) flag;
    (void) ftw;

    return remove(path);
}


static void
t_rmrf(const char *path)
{
    (void) nftw(path, t_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}


static void
t_env_init(t_env_t *env)
{
    strcpy(env->root, "/tmp/ts_wal_test.XXXXXX");
    assert_non_null(mkdtemp(env->root));
    strcpy(t_last_root, env->root);
    snprintf(env->dir, sizeof(env->dir), "%s/wal/" T_NAME, env->root);
}


static int
t_teardown(void **state)
{
    (void) state;

    if (t_last_root[0]) {
        t_rmrf(t_last_root);
        t_last_root[0] = '\0';
    }

    return 0;
}


static void
t_conf(ts_wal_conf_t *conf, const t_env_t *env, const char *name,
    uint64_t segsize)
{
    memset(conf, 0, sizeof(*conf));
    conf->path = env->root;
    conf->name = name;
    conf->segment_size = segsize;
    conf->uid = (uid_t) -1;
    conf->gid = (gid_t) -1;
}


static void
t_segpath(char *buf, size_t size, const t_env_t *env, uint32_t seg)
{
    snprintf(buf, size, "%s/%08u.wal", env->dir, seg);
}


static long long
t_fsize(const t_env_t *env, uint32_t seg)
{
    char         path[256];
    struct stat  sb;

    t_segpath(path, sizeof(path), env, seg);

    if (stat(path, &sb) == -1) {
        return -1;
    }

    return (long long) sb.st_size;
}


static void
t_col_free(t_col_t *c)
{
    size_t  i;

    for (i = 0; i < c->n; i++) {
        free(c->r[i].data);
    }

    free(c->r);
    memset(c, 0, sizeof(*c));
}


static int
t_on_record(void *data, const ts_wal_rec_t *rec)
{
    t_col_t  *c;
    t_rec_t  *r;

    c = data;

    if (c->stop_after && (int) c->n + 1 == c->stop_after) {
        return TS_ERR_NOMEM;
    }

    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->r = realloc(c->r, c->cap * sizeof(t_rec_t));
        assert_non_null(c->r);
    }

    r = &c->r[c->n++];
    r->type = rec->type;
    r->flags = rec->flags;
    r->seg = rec->seg;
    r->off = rec->off;
    r->len = rec->len;
    r->stored = rec->stored;
    r->data = malloc(rec->len + 1);
    assert_non_null(r->data);

    if (rec->len) {
        memcpy(r->data, rec->payload, rec->len);
    }

    return TS_OK;
}


static void
t_on_report(void *data, const ts_wal_report_t *rep)
{
    t_col_t  *c;
    t_rep_t  *r;

    c = data;

    assert_true(c->nrep < 16);
    assert_non_null(strstr(rep->file, ".wal"));

    r = &c->rep[c->nrep++];
    r->reason = rep->reason;
    r->seg = rep->seg;
    r->off = rep->offset;
    r->lost = rep->lost;
    r->truncated = rep->truncated;
}


/* Replays every unlocked directory under env->root; returns the rc. */
static int
t_replay(const t_env_t *env, unsigned flags, t_col_t *c,
    ts_wal_replay_stats_t *st)
{
    int               rc;
    size_t            i;
    ts_wal_conf_t     conf;
    ts_wal_set_t     *set;
    ts_wal_replay_t   rp;
    char              err[TS_WAL_ERR_MAX];

    t_conf(&conf, env, NULL, 0);
    memset(st, 0, sizeof(*st));

    rp.record = t_on_record;
    rp.report = t_on_report;
    rp.data = c;
    rp.flags = flags;

    rc = ts_wal_set_open(&set, &conf, err, sizeof(err));
    assert_int_equal(rc, TS_OK);

    for (i = 0; i < ts_wal_set_size(set); i++) {
        rc = ts_wal_set_replay(set, i, &rp, st);
        if (rc != TS_OK) {
            break;
        }
    }

    ts_wal_set_close(set);

    return rc;
}


/* Writes T_NSEG segments of T_NREC records of T_LEN bytes each. */
static void
t_write_layout(const t_env_t *env)
{
    int            i, rc;
    uint8_t        p[T_LEN];
    ts_wal_t      *w;
    ts_wal_pos_t   pos;
    ts_wal_conf_t  conf;
    char           err[TS_WAL_ERR_MAX];

    t_conf(&conf, env, T_NAME, 0);
    rc = ts_wal_open(&w, &conf, err, sizeof(err));
    assert_int_equal(rc, TS_OK);

    for (i = 0; i < T_TOTAL; i++) {
        if (i && i % T_NREC == 0) {
            assert_int_equal(ts_wal_cut(w), TS_OK);
        }

        t_payload(p, T_LEN, (unsigned) i);
        rc = ts_wal_append(w, (uint8_t) (1 + i % 3), p, T_LEN, &pos);
        assert_int_equal(rc, TS_OK);
        assert_int_equal(pos.seg, 1 + i / T_NREC);
        assert_int_equal(pos.off, T_REC(i % T_NREC + 1));
    }

    assert_int_equal(ts_wal_close(w), TS_OK);

    for (i = 1; i <= T_NSEG; i++) {
        assert_int_equal(t_fsize(env, (uint32_t) i), T_SEGSZ);
    }
}


/* Checks that c holds the layout's records except [from, to). */
static void
t_check_layout(const t_col_t *c, int from, int to)
{
    int       i;
    size_t    k;
    uint8_t   p[T_LEN];

    assert_int_equal(c->n, T_TOTAL - (to - from));

    for (i = 0, k = 0; i < T_TOTAL; i++) {
        if (i >= from && i < to) {
            continue;
        }

        t_payload(p, T_LEN, (unsigned) i);
        assert_int_equal(c->r[k].type, 1 + i % 3);
        assert_int_equal(c->r[k].seg, 1 + i / T_NREC);
        assert_int_equal(c->r[k].off, T_REC(i % T_NREC));
        assert_int_equal(c->r[k].len, T_LEN);
        assert_memory_equal(c->r[k].data, p, T_LEN);
        k++;
    }
}


static void
t_patch(const t_env_t *env, uint32_t seg, long off, const void *p,
    size_t n)
{
    int   fd;
    char  path[256];

    t_segpath(path, sizeof(path), env, seg);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);

    if (off < 0) {
        off = lseek(fd, 0, SEEK_END);
    }

    assert_int_equal(pwrite(fd, p, n, off), (ssize_t) n);
    close(fd);
}


static void
t_xor(const t_env_t *env, uint32_t seg, long off, uint8_t mask)
{
    int      fd;
    char     path[256];
    uint8_t  b;

    t_segpath(path, sizeof(path), env, seg);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= mask;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}


static void
t_truncate(const t_env_t *env, uint32_t seg, off_t size)
{
    char  path[256];

    t_segpath(path, sizeof(path), env, seg);
    assert_int_equal(truncate(path, size), 0);
}


/* Rewrites segment header bytes and fixes its checksum. */
static void
t_seg_header(const t_env_t *env, uint32_t seg, int at, uint8_t v)
{
    int       fd;
    char      path[256];
    uint8_t   h[TS_WAL_SEG_HDR];
    uint32_t  crc;

    t_segpath(path, sizeof(path), env, seg);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, h, sizeof(h), 0), (ssize_t) sizeof(h));
    h[at] = v;
    crc = ts_crc32c(0, h, 12);
    h[12] = (uint8_t) crc;
    h[13] = (uint8_t) (crc >> 8);
    h[14] = (uint8_t) (crc >> 16);
    h[15] = (uint8_t) (crc >> 24);
    assert_int_equal(pwrite(fd, h, sizeof(h), 0), (ssize_t) sizeof(h));
    close(fd);
}


/* Recomputes the checksum of the record at off after a patch. */
static void
t_rec_fix(const t_env_t *env, uint32_t seg, long off)
{
    int       fd;
    char      path[256];
    size_t    len;
    uint8_t  *buf;
    uint32_t  crc;

    t_segpath(path, sizeof(path), env, seg);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);

    buf = malloc(TS_WAL_REC_HDR);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, TS_WAL_REC_HDR, off), TS_WAL_REC_HDR);
    len = (size_t) buf[2] | (size_t) buf[3] << 8 | (size_t) buf[4] << 16
          | (size_t) buf[5] << 24;

    buf = realloc(buf, TS_WAL_REC_HDR + len);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, TS_WAL_REC_HDR + len, off),
                     (ssize_t) (TS_WAL_REC_HDR + len));

    crc = ts_crc32c(0, buf, 6);
    crc = ts_crc32c(crc, buf + TS_WAL_REC_HDR, len);
    buf[6] = (uint8_t) crc;
    buf[7] = (uint8_t) (crc >> 8);
    buf[8] = (uint8_t) (crc >> 16);
    buf[9] = (uint8_t) (crc >> 24);
    assert_int_equal(pwrite(fd, buf + 6, 4, off + 6), 4);

    free(buf);
    close(fd);
}


/* Corruptions. */

static void
m_none(const t_env_t *env)
{
    (void) env;
}


static void
m_torn_record_header(const t_env_t *env)
{
    t_truncate(env, 3, T_REC(4) + 5);
}


static void
m_torn_record_payload(const t_env_t *env)
{
    t_truncate(env, 3, T_REC(4) + TS_WAL_REC_HDR + T_LEN / 2);
}


static void
m_bad_crc_last_tail(const t_env_t *env)
{
    t_xor(env, 3, T_REC(4) + TS_WAL_REC_HDR + 3, 0x01);
}


static void
m_bad_crc_last_middle(const t_env_t *env)
{
    t_xor(env, 3, T_REC(1) + TS_WAL_REC_HDR + 7, 0x40);
}


static void
m_bad_crc_mid_nonlast(const t_env_t *env)
{
    t_xor(env, 1, T_REC(2) + TS_WAL_REC_HDR + 1, 0x80);
}


static void
m_bad_crc_in_header(const t_env_t *env)
{
    t_xor(env, 2, T_REC(3) + 7, 0x10);
}


static void
m_bad_seg_magic(const t_env_t *env)
{
    t_seg_header(env, 2, 0, 'X');
}


static void
m_bad_seg_version(const t_env_t *env)
{
    t_seg_header(env, 2, 4, TS_WAL_VERSION + 1);
}


/* what the previous version wrote: the same records, flags 0 */
static void
m_v1_segment(const t_env_t *env)
{
    t_seg_header(env, 2, 4, 1);
}


/* version 1 has no compression flag */
static void
m_snappy_flag_in_v1(const t_env_t *env)
{
    static const uint8_t  f = TS_WAL_REC_SNAPPY;

    t_seg_header(env, 3, 4, 1);
    t_patch(env, 3, T_REC(4) + 1, &f, 1);
    t_rec_fix(env, 3, T_REC(4));
}


/* a checksummed record flagged compressed that is no snappy block */
static void
m_snappy_flag_on_raw(const t_env_t *env)
{
    static const uint8_t  f = TS_WAL_REC_SNAPPY;

    t_patch(env, 3, T_REC(2) + 1, &f, 1);
    t_rec_fix(env, 3, T_REC(2));
}


static void
m_bad_seg_number(const t_env_t *env)
{
    t_seg_header(env, 2, 8, 7);
}


static void
m_bad_seg_header_crc(const t_env_t *env)
{
    t_xor(env, 2, 9, 0x01);
}


static void
m_bad_last_seg_header(const t_env_t *env)
{
    t_xor(env, 3, 2, 0x01);
}


static void
m_torn_segment_header(const t_env_t *env)
{
    t_truncate(env, 3, 7);
}


static void
m_zero_filled_tail(const t_env_t *env)
{
    static const uint8_t  z[4096];

    t_patch(env, 3, -1, z, sizeof(z));
}


/* power loss after the size grew but before any data reached the disk */
static void
m_zero_filled_last_segment(const t_env_t *env)
{
    static const uint8_t  z[T_SEGSZ];

    t_patch(env, 3, 0, z, sizeof(z));
}


static void
m_zero_filled_nonlast(const t_env_t *env)
{
    static const uint8_t  z[300];

    t_patch(env, 1, -1, z, sizeof(z));
}


static void
m_zero_then_garbage(const t_env_t *env)
{
    uint8_t  b[21];

    memset(b, 0, sizeof(b));
    b[20] = 0xff;
    t_patch(env, 3, -1, b, sizeof(b));
}


static void
m_garbage_tail(const t_env_t *env)
{
    static const uint8_t  g[3] = { 0xab, 0xab, 0xab };

    t_patch(env, 3, -1, g, sizeof(g));
}


static void
m_record_len_over_max(const t_env_t *env)
{
    static const uint8_t  len[4] = { 0x01, 0x00, 0x00, 0x01 };

    t_patch(env, 3, T_REC(4) + 2, len, sizeof(len));
}


static void
m_record_len_past_eof(const t_env_t *env)
{
    static const uint8_t  len[4] = { 0x00, 0x10, 0x00, 0x00 };

    t_patch(env, 1, T_REC(3) + 2, len, sizeof(len));
}


static void
m_unknown_flags(const t_env_t *env)
{
    static const uint8_t  f = 0x80;

    t_patch(env, 3, T_REC(4) + 1, &f, 1);
}


static void
m_zero_type(const t_env_t *env)
{
    static const uint8_t  z = 0;

    t_patch(env, 3, T_REC(2), &z, 1);
}


static void
m_empty_last_segment(const t_env_t *env)
{
    char  path[256];
    int   fd;

    t_segpath(path, sizeof(path), env, 4);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    close(fd);
}


static void
m_empty_middle_segment(const t_env_t *env)
{
    t_truncate(env, 2, 0);
}


/* a FIFO must not block replay: O_NONBLOCK, and not a regular file */
static void
m_fifo_segment(const t_env_t *env)
{
    char  path[256];

    t_segpath(path, sizeof(path), env, 4);
    assert_int_equal(mkfifo(path, 0644), 0);
}


static void
m_missing_segment(const t_env_t *env)
{
    char  path[256];

    t_segpath(path, sizeof(path), env, 2);
    assert_int_equal(unlink(path), 0);
}


static void
m_missing_lock_file(const t_env_t *env)
{
    char  path[256];

    snprintf(path, sizeof(path), "%s/" TS_WAL_LOCK, env->dir);
    assert_int_equal(unlink(path), 0);
}


static void
m_foreign_files(const t_env_t *env)
{
    char  path[256];
    int   fd;

    snprintf(path, sizeof(path), "%s/1.wal", env->dir);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "junk", 4), 4);
    close(fd);

    snprintf(path, sizeof(path), "%s/00000002.wal.tmp", env->dir);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
}


static const t_corrupt_t  t_corrupt_cases[] = {
    { "clean", m_none, TS_OK, 0, 0, 0, 0, NULL, 0, 0, 0, T_SEGSZ },

    { "torn_record_header", m_torn_record_header, TS_OK, 14, 15, 1, 1,
      "torn record header", 3, T_REC(4), 5, T_REC(4) },

    { "torn_record_payload", m_torn_record_payload, TS_OK, 14, 15, 1, 1,
      "torn record payload", 3, T_REC(4), TS_WAL_REC_HDR + T_LEN / 2,
      T_REC(4) },

    { "bad_crc_last_tail", m_bad_crc_last_tail, TS_OK, 14, 15, 1, 1,
      "record checksum mismatch", 3, T_REC(4), T_RECSZ, T_REC(4) },

    { "bad_crc_last_middle", m_bad_crc_last_middle, TS_OK, 11, 15, 1, 1,
      "record checksum mismatch", 3, T_REC(1), 4 * T_RECSZ, T_REC(1) },

    { "bad_crc_mid_nonlast", m_bad_crc_mid_nonlast, TS_OK, 2, 5, 1, 0,
      "record checksum mismatch", 1, T_REC(2), 3 * T_RECSZ, T_SEGSZ },

    { "bad_crc_in_record_header", m_bad_crc_in_header, TS_OK, 8, 10, 1, 0,
      "record checksum mismatch", 2, T_REC(3), 2 * T_RECSZ, T_SEGSZ },

    { "bad_segment_magic", m_bad_seg_magic, TS_OK, 5, 10, 1, 0,
      "bad segment magic", 2, 0, T_SEGSZ, T_SEGSZ },

    { "bad_segment_version", m_bad_seg_version, TS_ERR_VERSION, 5, 15, 1, 0,
      "unsupported segment version", 2, 0, T_SEGSZ, T_SEGSZ },

    { "version_1_segment", m_v1_segment, TS_OK, 0, 0, 0, 0,
      NULL, 2, 0, 0, T_SEGSZ },

    { "snappy_flag_in_version_1", m_snappy_flag_in_v1, TS_OK, 14, 15, 1, 1,
      "unknown record flags", 3, T_REC(4), T_RECSZ, T_REC(4) },

    { "snappy_flag_on_raw_payload", m_snappy_flag_on_raw, TS_OK, 12, 13, 1,
      0, "corrupt compressed payload", 3, T_REC(2), T_RECSZ, T_SEGSZ },

    { "segment_number_mismatch", m_bad_seg_number, TS_OK, 5, 10, 1, 0,
      "segment number mismatch", 2, 0, T_SEGSZ, T_SEGSZ },

    { "bad_segment_header_crc", m_bad_seg_header_crc, TS_OK, 5, 10, 1, 0,
      "segment header checksum mismatch", 2, 0, T_SEGSZ, T_SEGSZ },

    { "bad_last_segment_header", m_bad_last_seg_header, TS_OK, 10, 15, 1, 1,
      "segment header checksum mismatch", 3, 0, T_SEGSZ, 0 },

    { "torn_segment_header", m_torn_segment_header, TS_OK, 10, 15, 1, 1,
      "torn segment header", 3, 0, 7, 0 },

    { "zero_filled_tail", m_zero_filled_tail, TS_OK, 0, 0, 1, 1,
      "zero-filled tail", 3, T_SEGSZ, 4096, T_SEGSZ },

    { "zero_filled_last_segment", m_zero_filled_last_segment, TS_OK, 10, 15,
      1, 1, "zero-filled segment header", 3, 0, T_SEGSZ, 0 },

    { "zero_filled_nonlast", m_zero_filled_nonlast, TS_OK, 0, 0, 1, 0,
      "zero-filled tail", 1, T_SEGSZ, 300, T_SEGSZ + 300 },

    { "zeros_then_garbage", m_zero_then_garbage, TS_OK, 0, 0, 1, 1,
      "invalid record type 0", 3, T_SEGSZ, 21, T_SEGSZ },

    { "garbage_tail", m_garbage_tail, TS_OK, 0, 0, 1, 1,
      "torn record header", 3, T_SEGSZ, 3, T_SEGSZ },

    { "zero_record_type", m_zero_type, TS_OK, 12, 15, 1, 1,
      "invalid record type 0", 3, T_REC(2), 3 * T_RECSZ, T_REC(2) },

    { "record_len_over_max", m_record_len_over_max, TS_OK, 14, 15, 1, 1,
      "record length over the maximum", 3, T_REC(4), T_RECSZ, T_REC(4) },

    { "record_len_past_eof", m_record_len_past_eof, TS_OK, 3, 5, 1, 0,
      "torn record payload", 1, T_REC(3), 2 * T_RECSZ, T_SEGSZ },

    { "unknown_record_flags", m_unknown_flags, TS_OK, 14, 15, 1, 1,
      "unknown record flags", 3, T_REC(4), T_RECSZ, T_REC(4) },

    { "empty_last_segment", m_empty_last_segment, TS_OK, 0, 0, 0, 0,
      NULL, 4, 0, 0, 0 },

    { "empty_middle_segment", m_empty_middle_segment, TS_OK, 5, 10, 0, 0,
      NULL, 2, 0, 0, 0 },

    { "fifo_as_last_segment", m_fifo_segment, TS_OK, 0, 0, 0, 0,
      NULL, 4, 0, 0, 0 },

    { "missing_segment", m_missing_segment, TS_OK, 5, 10, 1, 0,
      "missing segment", 2, 0, 0, -1 },

    { "missing_lock_file", m_missing_lock_file, TS_OK, 0, 0, 0, 0,
      NULL, 0, 0, 0, T_SEGSZ },

    { "foreign_files_ignored", m_foreign_files, TS_OK, 0, 0, 0, 0,
      NULL, 0, 0, 0, T_SEGSZ },
};

#define T_NCORRUPT  (sizeof(t_corrupt_cases) / sizeof(t_corrupt_cases[0]))


static void
test_corruption(void **state)
{
    int                     rc, pass;
    t_env_t                 env;
    t_col_t                 c;
    const t_corrupt_t      *tc;
    ts_wal_replay_stats_t   st;
    char                    path[256];

    tc = *state;

    t_env_init(&env);
    t_write_layout(&env);
    tc->mutate(&env);

    /* the second pass checks that repair made replay clean, or not */

    for (pass = 0; pass < 2; pass++) {
        memset(&c, 0, sizeof(c));

        rc = t_replay(&env, TS_WAL_REPAIR, &c, &st);
        assert_int_equal(rc, tc->rc);
        t_check_layout(&c, tc->skip_from, tc->skip_to);
        assert_int_equal(st.records, c.n);

        if (pass == 1 && tc->truncations) {
            assert_int_equal(st.corruptions, 0);
            assert_int_equal(c.nrep, 0);
            t_col_free(&c);
            continue;
        }

        assert_int_equal(st.corruptions, tc->corruptions);
        assert_int_equal(st.truncations, pass ? 0 : tc->truncations);
        assert_int_equal(c.nrep, tc->corruptions);

        if (tc->corruptions) {
            assert_string_equal(c.rep[0].reason, tc->reason);
            assert_int_equal(c.rep[0].seg, tc->seg);
            assert_int_equal(c.rep[0].off, tc->off);
            assert_int_equal(c.rep[0].lost, tc->lost);
            assert_int_equal(c.rep[0].truncated, pass ? 0 : tc->truncations);
            assert_string_equal(st.last.reason, tc->reason);
            snprintf(path, sizeof(path), "%s/%08u.wal", env.dir, tc->seg);
            assert_string_equal(st.last.file, path);
        }

        if (tc->size_after >= 0) {
            assert_int_equal(t_fsize(&env, tc->seg ? tc->seg : 1),
                             tc->size_after);
        }

        t_col_free(&c);
    }

    snprintf(path, sizeof(path), "%s/" TS_WAL_LOCK, env.dir);
    assert_int_equal(access(path, F_OK), 0);

    t_rmrf(env.root);
}


/* Without TS_WAL_REPAIR nothing is modified. */
static void
test_replay_without_repair(void **state)
{
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_replay_stats_t   st;

    (void) state;

    t_env_init(&env);
    t_write_layout(&env);
    m_torn_record_payload(&env);

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, 0, &c, &st), TS_OK);
    t_check_layout(&c, 14, 15);
    assert_int_equal(st.corruptions, 1);
    assert_int_equal(st.truncations, 0);
    assert_int_equal(t_fsize(&env, 3), T_REC(4) + TS_WAL_REC_HDR + T_LEN / 2);
    t_col_free(&c);

    t_rmrf(env.root);
}


/* A callback error stops replay and comes back unchanged. */
static void
test_replay_callback_error(void **state)
{
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_replay_stats_t   st;

    (void) state;

    t_env_init(&env);
    t_write_layout(&env);

    memset(&c, 0, sizeof(c));
    c.stop_after = 7;
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_ERR_NOMEM);
    assert_int_equal(c.n, 6);
    assert_int_equal(st.corruptions, 0);
    t_col_free(&c);

    t_rmrf(env.root);
}


/* Writer. */

static void
test_roundtrip_segments(void **state)
{
    int                     i, rc;
    size_t                  len;
    uint8_t                *p;
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_pos_t            pos, prev;
    ts_wal_conf_t           conf;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    (void) state;

    t_env_init(&env);
    t_conf(&conf, &env, T_NAME, 4096);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);

    p = malloc(20000);
    assert_non_null(p);
    memset(&prev, 0, sizeof(prev));

    /* some records are larger than a segment and go alone into one */

    for (i = 0; i < 1000; i++) {
        len = i % 97 == 0 ? 5000 + (size_t) i : (size_t) (i * 37) % 300;
        t_payload(p, len, (unsigned) i);

        rc = ts_wal_append(w, (uint8_t) (1 + i % 255), p, len, &pos);
        assert_int_equal(rc, TS_OK);
        assert_true(ts_wal_pos_cmp(pos, prev) > 0);
        assert_true(pos.off <= 4096 || pos.off == TS_WAL_SEG_HDR
                                                  + TS_WAL_REC_HDR + len);
        prev = pos;

        if (i % 7 == 6) {
            assert_int_equal(ts_wal_flush(w), TS_OK);
        }
    }

    assert_true(ts_wal_pos(w).seg > 10);
    assert_int_equal(ts_wal_close(w), TS_OK);

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    assert_int_equal(c.n, 1000);
    assert_int_equal(st.corruptions, 0);
    assert_true(st.segments > 10);
    assert_int_equal(st.first_seg, 1);

    for (i = 0; i < 1000; i++) {
        len = i % 97 == 0 ? 5000 + (size_t) i : (size_t) (i * 37) % 300;
        t_payload(p, len, (unsigned) i);
        assert_int_equal(c.r[i].type, 1 + i % 255);
        assert_int_equal(c.r[i].len, len);
        assert_memory_equal(c.r[i].data, p, len);
    }

    t_col_free(&c);
    free(p);
    t_rmrf(env.root);
}


static ssize_t
t_io_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    t_pwrite_calls++;

    if (t_pwrite_eintr && t_pwrite_calls % 2 == 0) {
        errno = EINTR;
        return -1;
    }

    if (t_pwrite_fail_at && t_pwrite_calls >= t_pwrite_fail_at
        && t_pwrite_calls <= t_pwrite_fail_at + 2)
    {
        /* a partial write, then ENOSPC: as a filling disk does */

        if (t_pwrite_calls == t_pwrite_fail_at && n > 1) {
            return pwrite(fd, buf, n / 2, off);
        }

        errno = ENOSPC;
        return -1;
    }

    if (t_pwrite_short && n > (size_t) t_pwrite_short) {
        n = (size_t) t_pwrite_short;
    }

    return pwrite(fd, buf, n, off);
}


static int
t_io_fsync(int fd)
{
    struct stat  sb;

    t_fsync_calls++;
    assert_int_equal(fstat(fd, &sb), 0);

    if (t_fsync_failed_ino && sb.st_ino == t_fsync_failed_ino) {
        t_fsync_failed_again = 1;
    }

    if (t_fsync_fail_at && t_fsync_calls == t_fsync_fail_at) {
        t_fsync_failed_ino = sb.st_ino;
        errno = EIO;
        return -1;
    }

    return fsync(fd);
}


static const ts_wal_io_t  t_io = { t_io_pwrite, t_io_fsync };


static void
t_io_reset(void)
{
    t_pwrite_calls = 0;
    t_pwrite_short = 0;
    t_pwrite_eintr = 0;
    t_pwrite_fail_at = 0;
    t_fsync_calls = 0;
    t_fsync_fail_at = 0;
    t_fsync_failed_ino = 0;
    t_fsync_failed_again = 0;
}


static void
test_group_commit(void **state)
{
    int                     i;
    uint8_t                 p[64];
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_pos_t            pos, written;
    ts_wal_conf_t           conf;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    (void) state;

    t_io_reset();
    t_env_init(&env);
    t_conf(&conf, &env, T_NAME, 0);
    conf.io = &t_io;
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(t_pwrite_calls, 1);               /* the header */

    written = ts_wal_written(w);

    for (i = 0; i < 100; i++) {
        t_payload(p, sizeof(p), (unsigned) i);
        assert_int_equal(ts_wal_append(w, 2, p, sizeof(p), &pos), TS_OK);
    }

    assert_int_equal(t_pwrite_calls, 1);
    assert_int_equal(ts_wal_pos_cmp(ts_wal_written(w), written), 0);
    assert_int_equal(ts_wal_pos_cmp(ts_wal_pos(w), pos), 0);

    assert_int_equal(ts_wal_flush(w), TS_OK);
    assert_int_equal(t_pwrite_calls, 2);               /* one write() */
    assert_int_equal(ts_wal_pos_cmp(ts_wal_written(w), pos), 0);
    assert_true(ts_wal_pos_cmp(ts_wal_synced(w), pos) < 0);

    assert_int_equal(ts_wal_flush(w), TS_OK);          /* nothing to do */
    assert_int_equal(t_pwrite_calls, 2);

    assert_int_equal(ts_wal_sync(w), TS_OK);
    assert_int_equal(t_fsync_calls, 2);                /* file and dir */
    assert_int_equal(ts_wal_pos_cmp(ts_wal_synced(w), pos), 0);

    assert_int_equal(ts_wal_sync(w), TS_OK);           /* nothing to do */
    assert_int_equal(t_fsync_calls, 2);

    assert_int_equal(ts_wal_close(w), TS_OK);

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    assert_int_equal(c.n, 100);
    t_col_free(&c);
    t_rmrf(env.root);
}


static void
test_short_writes_and_eintr(void **state)
{
    int                     i, k;
    uint8_t                 p[300];
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_conf_t           conf;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    (void) state;

    for (k = 0; k < 2; k++) {
        t_io_reset();
        t_pwrite_short = 7;
        t_pwrite_eintr = k;

        t_env_init(&env);
        t_conf(&conf, &env, T_NAME, 2048);
        conf.io = &t_io;
        assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);

        for (i = 0; i < 50; i++) {
            t_payload(p, sizeof(p), (unsigned) i);
            assert_int_equal(ts_wal_append(w, 1, p, sizeof(p), NULL), TS_OK);

            if (i % 3 == 0) {
                assert_int_equal(ts_wal_flush(w), TS_OK);
            }
        }

        assert_int_equal(ts_wal_close(w), TS_OK);
        assert_true(t_pwrite_calls > 50 * 300 / 7);

        memset(&c, 0, sizeof(c));
        assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
        assert_int_equal(c.n, 50);
        assert_int_equal(st.corruptions, 0);

        for (i = 0; i < 50; i++) {
            t_payload(p, sizeof(p), (unsigned) i);
            assert_memory_equal(c.r[i].data, p, sizeof(p));
        }

        t_col_free(&c);
        t_rmrf(env.root);
    }
}


/*
 * A write fails half way: the flush reports TS_ERR_IO, nothing counts as
 * written, the partial record is cut off, and the buffered records go to
 * a new segment on the next flush.
 */
static void
test_write_failure(void **state)
{
    int                     i;
    uint8_t                 p[100];
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_pos_t            written;
    ts_wal_conf_t           conf;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    (void) state;

    t_io_reset();
    t_env_init(&env);
    t_conf(&conf, &env, T_NAME, 0);
    conf.io = &t_io;
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);

    for (i = 0; i < 10; i++) {
        t_payload(p, sizeof(p), (unsigned) i);
        assert_int_equal(ts_wal_append(w, 1, p, sizeof(p), NULL), TS_OK);
    }

    assert_int_equal(ts_wal_flush(w), TS_OK);
    written = ts_wal_written(w);

    for (i = 10; i < 20; i++) {
        t_payload(p, sizeof(p), (unsigned) i);
        assert_int_equal(ts_wal_append(w, 1, p, sizeof(p), NULL), TS_OK);
    }

    t_pwrite_fail_at = t_pwrite_calls + 1;
    assert_int_equal(ts_wal_flush(w), TS_ERR_IO);
    assert_int_equal(ts_wal_errno(w), ENOSPC);
    assert_non_null(strstr(ts_wal_errmsg(w), "pwrite()"));
    assert_non_null(strstr(ts_wal_errmsg(w), "00000001.wal"));
    assert_int_equal(ts_wal_pos_cmp(ts_wal_written(w), written), 0);

    /* the segment was cut back to its last whole record */
    assert_int_equal(t_fsize(&env, 1), (long long) written.off);

    /* the retry fails too (the header of the new segment), then works */
    assert_int_equal(ts_wal_flush(w), TS_ERR_IO);
    assert_int_equal(t_fsize(&env, 2), -1);
    assert_int_equal(ts_wal_flush(w), TS_OK);
    assert_int_equal(ts_wal_written(w).seg, 2);
    assert_int_equal(ts_wal_sync(w), TS_OK);
    assert_int_equal(ts_wal_pos_cmp(ts_wal_synced(w), ts_wal_written(w)), 0);
    assert_int_equal(ts_wal_close(w), TS_OK);

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    assert_int_equal(st.corruptions, 0);
    assert_int_equal(c.n, 20);

    for (i = 0; i < 20; i++) {
        t_payload(p, sizeof(p), (unsigned) i);
        assert_memory_equal(c.r[i].data, p, sizeof(p));
        assert_int_equal(c.r[i].seg, i < 10 ? 1 : 2);
    }

    t_col_free(&c);
    t_rmrf(env.root);
}


/*
 * fsyncgate: a failed fsync is reported, the synced position stays, the
 * segment is never fsynced again and appends continue in a new segment.
 */
static void
test_fsync_failure(void **state)
{
    uint8_t                 p[100];
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_pos_t            synced, pos;
    ts_wal_conf_t           conf;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    (void) state;

    t_io_reset();
    t_env_init(&env);
    t_conf(&conf, &env, T_NAME, 0);
    conf.io = &t_io;
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);

    t_payload(p, sizeof(p), 1);
    assert_int_equal(ts_wal_append(w, 1, p, sizeof(p), NULL), TS_OK);
    assert_int_equal(ts_wal_sync(w), TS_OK);
    synced = ts_wal_synced(w);

    t_payload(p, sizeof(p), 2);
    assert_int_equal(ts_wal_append(w, 1, p, sizeof(p), &pos), TS_OK);
    t_fsync_fail_at = t_fsync_calls + 1;
    assert_int_equal(ts_wal_sync(w), TS_ERR_IO);
    assert_int_equal(ts_wal_errno(w), EIO);
    assert_non_null(strstr(ts_wal_errmsg(w), "fsync()"));
    assert_int_equal(ts_wal_pos_cmp(ts_wal_synced(w), synced), 0);
    assert_int_equal(ts_wal_pos(w).seg, 2);

    t_payload(p, sizeof(p), 3);
    assert_int_equal(ts_wal_append(w, 1, p, sizeof(p), &pos), TS_OK);
    assert_int_equal(pos.seg, 2);
    assert_int_equal(ts_wal_sync(w), TS_OK);
    assert_int_equal(ts_wal_pos_cmp(ts_wal_synced(w), pos), 0);
    assert_int_equal(ts_wal_cut(w), TS_OK);
    assert_int_equal(ts_wal_sync(w), TS_OK);
    assert_int_equal(t_fsync_failed_again, 0);
    assert_int_equal(ts_wal_close(w), TS_OK);

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    assert_int_equal(c.n, 3);
    t_col_free(&c);
    t_rmrf(env.root);
}


static void *
t_sync_thread(void *arg)
{
    ts_wal_sync_run(arg);

    return NULL;
}


/* The fsync part runs on another thread while the writer goes on. */
static void
test_sync_job_thread(void **state)
{
    int             i;
    uint8_t         p[100];
    t_env_t         env;
    pthread_t       tid;
    ts_wal_t       *w;
    ts_wal_pos_t    pos;
    ts_wal_sync_t   job, job2;
    ts_wal_conf_t   conf;
    char            err[TS_WAL_ERR_MAX];

    (void) state;

    t_env_init(&env);
    t_conf(&conf, &env, T_NAME, 1024);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);

    for (i = 0; i < 30; i++) {
        t_payload(p, sizeof(p), (unsigned) i);
        assert_int_equal(ts_wal_append(w, 1, p, sizeof(p), &pos), TS_OK);
    }

    assert_int_equal(ts_wal_flush(w), TS_OK);
    assert_int_equal(ts_wal_sync_begin(w, &job), TS_OK);
    assert_true(job.n >= 2);
    assert_int_equal(ts_wal_pos_cmp(job.target, pos), 0);
    assert_int_equal(ts_wal_sync_begin(w, &job2), TS_ERR_AGAIN);

    assert_int_equal(pthread_create(&tid, NULL, t_sync_thread, &job), 0);

    for (i = 30; i < 60; i++) {
        t_payload(p, sizeof(p), (unsigned) i);
        assert_int_equal(ts_wal_append(w, 1, p, sizeof(p), NULL), TS_OK);
    }

    assert_int_equal(ts_wal_flush(w), TS_OK);
    assert_int_equal(pthread_join(tid, NULL), 0);
    assert_int_equal(ts_wal_sync_end(w, &job), TS_OK);
    assert_int_equal(ts_wal_pos_cmp(ts_wal_synced(w), pos), 0);

    assert_int_equal(ts_wal_sync(w), TS_OK);
    assert_int_equal(ts_wal_pos_cmp(ts_wal_synced(w), ts_wal_pos(w)), 0);
    assert_int_equal(ts_wal_close(w), TS_OK);
    t_rmrf(env.root);
}


static void
test_cut_and_truncate_before(void **state)
{
    int                     i;
    uint8_t                 p[50];
    uint32_t                seg;
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_conf_t           conf;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    (void) state;

    t_env_init(&env);
    t_conf(&conf, &env, T_NAME, 0);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);

    /* a cut of an empty segment is a no-op */
    assert_int_equal(ts_wal_cut(w), TS_OK);
    assert_int_equal(ts_wal_pos(w).seg, 1);

    for (i = 0; i < 25; i++) {
        t_payload(p, sizeof(p), (unsigned) i);
        assert_int_equal(ts_wal_append(w, 1, p, sizeof(p), NULL), TS_OK);

        if (i % 5 == 4) {
            assert_int_equal(ts_wal_cut(w), TS_OK);
            assert_int_equal(ts_wal_pos(w).seg, 2 + i / 5);
        }
    }

    /* segment 6 is created by the next flush only */
    assert_int_equal(t_fsize(&env, 6), -1);

    assert_int_equal(ts_wal_truncate_before(w, 4), TS_OK);
    assert_int_equal(t_fsize(&env, 1), -1);
    assert_int_equal(t_fsize(&env, 3), -1);
    assert_true(t_fsize(&env, 4) > 0);

    t_payload(p, sizeof(p), 25);
    assert_int_equal(ts_wal_append(w, 1, p, sizeof(p), NULL), TS_OK);
    assert_int_equal(ts_wal_flush(w), TS_OK);

    /* beyond the current segment: clamped, the current one stays */
    seg = ts_wal_pos(w).seg;
    assert_int_equal(ts_wal_truncate_before(w, 1000), TS_OK);
    assert_int_equal(t_fsize(&env, 5), -1);
    assert_true(t_fsize(&env, seg) > 0);
    assert_int_equal(ts_wal_close(w), TS_OK);

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    assert_int_equal(st.corruptions, 0);
    assert_int_equal(c.n, 1);
    t_payload(p, sizeof(p), 25);
    assert_memory_equal(c.r[0].data, p, sizeof(p));
    t_col_free(&c);
    t_rmrf(env.root);
}


static void
test_reopen_continues(void **state)
{
    uint8_t                 p[10];
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_conf_t           conf;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    (void) state;

    t_env_init(&env);
    t_write_layout(&env);

    t_conf(&conf, &env, T_NAME, 0);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_pos(w).seg, T_NSEG + 1);
    memset(p, 0x5a, sizeof(p));
    assert_int_equal(ts_wal_append(w, 9, p, sizeof(p), NULL), TS_OK);
    assert_int_equal(ts_wal_close(w), TS_OK);

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    assert_int_equal(c.n, T_TOTAL + 1);
    assert_int_equal(c.r[T_TOTAL].seg, T_NSEG + 1);
    assert_int_equal(c.r[T_TOTAL].type, 9);
    t_col_free(&c);
    t_rmrf(env.root);
}


static void
test_idempotent_replay(void **state)
{
    size_t                  i;
    t_env_t                 env;
    t_col_t                 a, b;
    ts_wal_replay_stats_t   sa, sb;

    (void) state;

    t_env_init(&env);
    t_write_layout(&env);
    m_bad_crc_mid_nonlast(&env);
    m_torn_record_payload(&env);

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &a, &sa), TS_OK);
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &b, &sb), TS_OK);

    assert_int_equal(a.n, b.n);
    assert_int_equal(sa.records, sb.records);
    assert_int_equal(sa.corruptions, 2);
    assert_int_equal(sb.corruptions, 1);        /* the tail was repaired */

    for (i = 0; i < a.n; i++) {
        assert_int_equal(a.r[i].type, b.r[i].type);
        assert_int_equal(a.r[i].seg, b.r[i].seg);
        assert_int_equal(a.r[i].off, b.r[i].off);
        assert_int_equal(a.r[i].len, b.r[i].len);
        assert_memory_equal(a.r[i].data, b.r[i].data, a.r[i].len);
    }

    t_col_free(&a);
    t_col_free(&b);
    t_rmrf(env.root);
}


static void
test_limits_and_args(void **state)
{
    uint8_t        *big, *p;
    t_env_t         env;
    t_col_t         c;
    ts_wal_t       *w;
    ts_wal_pos_t    pos;
    ts_wal_conf_t   conf;
    ts_wal_replay_stats_t  st;
    char            err[TS_WAL_ERR_MAX], name[TS_WAL_NAME_MAX + 1];

    (void) state;

    t_env_init(&env);

    t_conf(&conf, &env, "../escape", 0);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)),
                     TS_ERR_INVALID);
    t_conf(&conf, &env, ".hidden", 0);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)),
                     TS_ERR_INVALID);
    t_conf(&conf, &env, "", 0);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)),
                     TS_ERR_INVALID);
    t_conf(&conf, &env, T_NAME, 10);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)),
                     TS_ERR_INVALID);

    assert_int_equal(ts_wal_name(name, sizeof(name), 1234, 0xabcdef), TS_OK);
    assert_string_equal(name, "w-1234-0000000000abcdef");
    assert_int_equal(ts_wal_name(name, 8, 1234, 1), TS_ERR_INVALID);

    /*
     * The default name encodes the pid; uid/gid of our own are allowed.
     * Uncompressed, so that the largest record is as large on disk.
     */
    t_conf(&conf, &env, NULL, 1 << 20);
    conf.uid = getuid();
    conf.gid = getgid();
    conf.flags = TS_WAL_NO_SNAPPY;
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);
    snprintf(name, sizeof(name), "/w-%ld-", (long) getpid());
    assert_non_null(strstr(ts_wal_dir(w), name));

    big = calloc(1, TS_WAL_RECORD_MAX + 1);
    assert_non_null(big);
    assert_int_equal(ts_wal_append(w, 1, big, TS_WAL_RECORD_MAX + 1, NULL),
                     TS_ERR_LIMIT);
    assert_int_equal(ts_wal_append(w, 0, big, 1, NULL), TS_ERR_INVALID);
    assert_int_equal(ts_wal_commit(w, 1, 1, NULL), TS_ERR_INVALID);

    /* the largest record, alone in a segment over the rotation size */
    assert_int_equal(ts_wal_append(w, 1, big, 10, NULL), TS_OK);
    big[0] = 0x42;
    big[TS_WAL_RECORD_MAX - 1] = 0x24;
    assert_int_equal(ts_wal_append(w, 1, big, TS_WAL_RECORD_MAX, &pos),
                     TS_OK);
    assert_int_equal(pos.seg, 2);
    assert_int_equal(ts_wal_append(w, 1, NULL, 0, &pos), TS_OK);
    assert_int_equal(pos.seg, 3);

    /* zero-copy: reserve more, commit less */
    assert_int_equal(ts_wal_reserve(w, 100, &p), TS_OK);
    memset(p, 0x77, 40);
    assert_int_equal(ts_wal_commit(w, 5, 40, &pos), TS_OK);
    assert_int_equal(ts_wal_close(w), TS_OK);

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.r[1].len, TS_WAL_RECORD_MAX);
    assert_int_equal(c.r[1].data[0], 0x42);
    assert_int_equal(c.r[1].data[TS_WAL_RECORD_MAX - 1], 0x24);
    assert_int_equal(c.r[2].len, 0);
    assert_int_equal(c.r[3].type, 5);
    assert_int_equal(c.r[3].len, 40);
    assert_int_equal(c.r[3].data[39], 0x77);
    t_col_free(&c);

    free(big);
    t_rmrf(env.root);
}


/* Locks and processes. */

static void
test_lock_excludes(void **state)
{
    int             status;
    pid_t           pid;
    t_env_t         env;
    ts_wal_t       *w, *w2;
    ts_wal_set_t   *set;
    ts_wal_conf_t   conf;
    char            err[TS_WAL_ERR_MAX];

    (void) state;

    t_env_init(&env);
    t_conf(&conf, &env, T_NAME, 0);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);

    assert_int_equal(ts_wal_open(&w2, &conf, err, sizeof(err)),
                     TS_ERR_LOCKED);
    assert_null(w2);
    assert_non_null(strstr(err, "locked"));

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        _exit(ts_wal_open(&w2, &conf, err, sizeof(err)) == TS_ERR_LOCKED
              ? 0 : 1);
    }

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* a live writer's directory is not offered for replay */
    assert_int_equal(ts_wal_set_open(&set, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_set_size(set), 0);
    ts_wal_set_close(set);

    assert_int_equal(ts_wal_close(w), TS_OK);

    assert_int_equal(ts_wal_set_open(&set, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_set_size(set), 1);
    assert_string_equal(ts_wal_set_name(set, 0), T_NAME);

    /* ... and while the set holds it, no writer can take it */
    assert_int_equal(ts_wal_open(&w2, &conf, err, sizeof(err)),
                     TS_ERR_LOCKED);
    ts_wal_set_close(set);

    assert_int_equal(ts_wal_open(&w2, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_close(w2), TS_OK);
    t_rmrf(env.root);
}


/*
 * A child writes and is SIGKILLed without closing; the parent claims its
 * directory, replays it, adopts it and truncates the replayed segments.
 */
static void
test_dead_writer_adoption(void **state)
{
    int                     i, fds[2], status;
    char                    ch;
    uint8_t                 p[200];
    pid_t                   pid;
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_set_t           *set;
    ts_wal_conf_t           conf;
    ts_wal_replay_t         rp;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    (void) state;

    t_env_init(&env);
    assert_int_equal(pipe(fds), 0);

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        close(fds[0]);
        t_conf(&conf, &env, NULL, 4096);

        if (ts_wal_open(&w, &conf, err, sizeof(err)) != TS_OK) {
            _exit(1);
        }

        for (i = 0; i < 100; i++) {
            t_payload(p, sizeof(p), (unsigned) i);
            if (ts_wal_append(w, 2, p, sizeof(p), NULL) != TS_OK
                || ts_wal_flush(w) != TS_OK)
            {
                _exit(1);
            }
        }

        /* a record left in the buffer is lost with the process */
        (void) ts_wal_append(w, 2, p, sizeof(p), NULL);

        if (write(fds[1], "x", 1) != 1) {
            _exit(1);
        }

        pause();
        _exit(0);
    }

    close(fds[1]);
    assert_int_equal(read(fds[0], &ch, 1), 1);
    close(fds[0]);

    t_conf(&conf, &env, NULL, 0);
    assert_int_equal(ts_wal_set_open(&set, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_set_size(set), 0);
    ts_wal_set_close(set);

    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));

    assert_int_equal(ts_wal_set_open(&set, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_set_size(set), 1);

    memset(&c, 0, sizeof(c));
    memset(&st, 0, sizeof(st));
    rp.record = t_on_record;
    rp.report = t_on_report;
    rp.data = &c;
    rp.flags = TS_WAL_REPAIR;
    assert_int_equal(ts_wal_set_replay(set, 0, &rp, &st), TS_OK);
    assert_int_equal(c.n, 100);
    assert_int_equal(st.corruptions, 0);
    assert_true(st.segments > 3);

    for (i = 0; i < 100; i++) {
        t_payload(p, sizeof(p), (unsigned) i);
        assert_memory_equal(c.r[i].data, p, sizeof(p));
    }

    t_col_free(&c);

    /* adopt: the directory is renamed to ours and continues */
    t_conf(&conf, &env, T_NAME, 4096);
    assert_int_equal(ts_wal_set_adopt(set, 0, &w, &conf, err, sizeof(err)),
                     TS_OK);
    assert_int_equal(ts_wal_set_replay(set, 0, &rp, &st), TS_ERR_INVALID);
    ts_wal_set_close(set);

    assert_int_equal(ts_wal_pos(w).seg, st.last_seg + 1);
    assert_int_equal(ts_wal_append(w, 3, p, 10, NULL), TS_OK);
    assert_int_equal(ts_wal_truncate_before(w, ts_wal_pos(w).seg), TS_OK);
    assert_int_equal(ts_wal_close(w), TS_OK);

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.r[0].type, 3);
    assert_int_equal(st.segments, 1);
    t_col_free(&c);
    t_rmrf(env.root);
}


static void
test_set_remove_and_cleanup(void **state)
{
    int             fd;
    t_env_t         env;
    ts_wal_t       *w, *w2;
    ts_wal_set_t   *set;
    ts_wal_conf_t   conf;
    struct stat     sb;
    char            err[TS_WAL_ERR_MAX], path[256];

    (void) state;

    t_env_init(&env);

    /* no wal/ directory yet: an empty set */
    t_conf(&conf, &env, NULL, 0);
    assert_int_equal(ts_wal_set_open(&set, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_set_size(set), 0);
    ts_wal_set_close(set);

    t_write_layout(&env);

    t_conf(&conf, &env, "w-other", 0);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_close(w), TS_OK);

    /* leftovers of an interrupted create and remove, and a stray file */
    snprintf(path, sizeof(path), "%s/wal/.tmp-w-x", env.root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/wal/.del-w-y", env.root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/wal/.del-w-y/00000001.wal", env.root);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof(path), "%s/wal/stray", env.root);
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);

    t_conf(&conf, &env, NULL, 0);
    assert_int_equal(ts_wal_set_open(&set, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_set_size(set), 2);
    assert_string_equal(ts_wal_set_name(set, 0), "w-other");
    assert_string_equal(ts_wal_set_name(set, 1), T_NAME);
    assert_null(ts_wal_set_name(set, 2));

    snprintf(path, sizeof(path), "%s/wal/.tmp-w-x", env.root);
    assert_int_equal(stat(path, &sb), -1);
    snprintf(path, sizeof(path), "%s/wal/.del-w-y", env.root);
    assert_int_equal(stat(path, &sb), -1);

    assert_int_equal(ts_wal_set_remove(set, 1), TS_OK);
    assert_int_equal(stat(env.dir, &sb), -1);
    assert_int_equal(ts_wal_set_remove(set, 1), TS_ERR_INVALID);

    /* adopting under a name that exists fails and keeps the entry */
    t_conf(&conf, &env, "w-live", 0);
    assert_int_equal(ts_wal_open(&w2, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_set_adopt(set, 0, &w, &conf, err, sizeof(err)),
                     TS_ERR_EXISTS);
    assert_null(w);
    assert_int_equal(ts_wal_close(w2), TS_OK);

    t_conf(&conf, &env, "w-other", 0);
    assert_int_equal(ts_wal_set_adopt(set, 0, &w, &conf, err, sizeof(err)),
                     TS_OK);
    assert_int_equal(ts_wal_close(w), TS_OK);
    ts_wal_set_close(set);

    t_conf(&conf, &env, NULL, 0);
    assert_int_equal(ts_wal_set_open(&set, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_set_size(set), 2);
    ts_wal_set_close(set);

    t_rmrf(env.root);
}


/* One directory that cannot be claimed does not hide the others. */
static void
test_set_skips_unclaimable(void **state)
{
    t_env_t         env;
    ts_wal_set_t   *set;
    ts_wal_conf_t   conf;
    char            err[TS_WAL_ERR_MAX], path[256];

    (void) state;

    t_env_init(&env);
    t_write_layout(&env);

    snprintf(path, sizeof(path), "%s/wal/w-bad", env.root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/wal/w-bad/" TS_WAL_LOCK, env.root);
    assert_int_equal(mkdir(path, 0755), 0);

    t_conf(&conf, &env, NULL, 0);
    assert_int_equal(ts_wal_set_open(&set, &conf, err, sizeof(err)), TS_OK);
    assert_int_equal(ts_wal_set_size(set), 1);
    assert_string_equal(ts_wal_set_name(set, 0), T_NAME);
    assert_non_null(strstr(ts_wal_set_errmsg(set), "w-bad/LOCK"));
    ts_wal_set_close(set);

    t_rmrf(env.root);
}


static void
test_replay_dir_locked(void **state)
{
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_conf_t           conf;
    ts_wal_replay_t         rp;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    (void) state;

    t_env_init(&env);
    t_conf(&conf, &env, T_NAME, 0);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);

    memset(&c, 0, sizeof(c));
    memset(&st, 0, sizeof(st));
    rp.record = t_on_record;
    rp.report = NULL;
    rp.data = &c;
    rp.flags = TS_WAL_REPAIR;

    assert_int_equal(ts_wal_replay_dir(env.dir, &rp, &st, err, sizeof(err)),
                     TS_ERR_LOCKED);
    assert_int_equal(ts_wal_append(w, 1, "abc", 3, NULL), TS_OK);
    assert_int_equal(ts_wal_close(w), TS_OK);
    assert_int_equal(ts_wal_replay_dir(env.dir, &rp, &st, err, sizeof(err)),
                     TS_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(ts_wal_replay_dir("/nonexistent/x", &rp, &st, err,
                                       sizeof(err)), TS_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/x"));
    t_col_free(&c);
    t_rmrf(env.root);
}


/* Record codecs. */

static const ts_walrec_label_t  t_labels_a[] = {
    { { (const uint8_t *) "__name__", 8 }, { (const uint8_t *) "up", 2 } },
    { { (const uint8_t *) "job", 3 }, { (const uint8_t *) "node", 4 } },
    { { (const uint8_t *) "empty", 5 }, { (const uint8_t *) "", 0 } },
};

static const ts_walrec_series_t  t_series[] = {
    { 1, 3, t_labels_a },
    { UINT64_MAX, 1, t_labels_a },
    { 0, 0, NULL },
    { 300, 2, t_labels_a + 1 },
};

#define T_NSERIES  (sizeof(t_series) / sizeof(t_series[0]))


static const ts_walrec_sample_t  t_samples[] = {
    { 5, 1700000000000, 0x3ff0000000000000ULL },        /* 1.0 */
    { 6, 1700000000000, TS_WALREC_STALE_NAN },
    { 6, -1, 0x7ff8000000000001ULL },                   /* NaN payload */
    { 2, INT64_MIN, 0xfff0000000000000ULL },            /* -Inf */
    { UINT64_MAX, INT64_MAX, 0x8000000000000000ULL },   /* -0.0 */
    { 0, 0, 0 },
    { 1000000, -86400000, 0x7ff0000000000000ULL },      /* +Inf */
};

#define T_NSAMPLES  (sizeof(t_samples) / sizeof(t_samples[0]))


static int
t_decode_series(const uint8_t *p, size_t len, ts_walrec_series_t *out,
    ts_walrec_label_t (*labels)[4], size_t max)
{
    int                 rc;
    size_t              n;
    uint64_t            count;
    ts_walrec_reader_t  rd;

    rc = ts_walrec_series_open(&rd, p, len, &count);
    if (rc != TS_OK) {
        return rc;
    }

    for (n = 0; ; n++) {
        rc = ts_walrec_series_next(&rd, n < max ? &out[n] : &out[0],
                                   labels[n < max ? n : 0], 4);
        if (rc != TS_OK) {
            break;
        }
    }

    if (rc == TS_ERR_NOTFOUND && n != count) {
        return TS_ERR_INVALID;
    }

    return rc == TS_ERR_NOTFOUND ? TS_OK : rc;
}


static void
test_walrec_series(void **state)
{
    size_t              i, k, len, n;
    uint8_t             buf[512], small[8];
    ts_walrec_series_t  out[T_NSERIES];
    ts_walrec_label_t   labels[T_NSERIES][4];

    (void) state;

    n = ts_walrec_series_size(t_series, T_NSERIES);
    assert_true(n < sizeof(buf));
    assert_int_equal(ts_walrec_series_encode(buf, sizeof(buf), t_series,
                                             T_NSERIES, &len), TS_OK);
    assert_int_equal(len, n);
    assert_int_equal(ts_walrec_series_encode(small, sizeof(small), t_series,
                                             T_NSERIES, &len), TS_ERR_FULL);

    assert_int_equal(t_decode_series(buf, n, out, labels, T_NSERIES), TS_OK);

    for (i = 0; i < T_NSERIES; i++) {
        assert_int_equal(out[i].ref, t_series[i].ref);
        assert_int_equal(out[i].nlabels, t_series[i].nlabels);

        for (k = 0; k < out[i].nlabels; k++) {
            assert_int_equal(out[i].labels[k].name.len,
                             t_series[i].labels[k].name.len);
            assert_memory_equal(out[i].labels[k].name.data,
                                t_series[i].labels[k].name.data,
                                out[i].labels[k].name.len);
            assert_int_equal(out[i].labels[k].value.len,
                             t_series[i].labels[k].value.len);

            /* zero-copy: strings point into the payload */
            assert_true(out[i].labels[k].name.data >= buf
                        && out[i].labels[k].name.data < buf + n);
        }
    }

    /* every truncation and one extra byte are corrupt, never a crash */
    for (k = 0; k < n; k++) {
        assert_int_equal(t_decode_series(buf, k, out, labels, T_NSERIES),
                         TS_ERR_CORRUPT);
    }

    buf[n] = 0;
    assert_int_equal(t_decode_series(buf, n + 1, out, labels, T_NSERIES),
                     TS_ERR_CORRUPT);

    /* more labels than the caller has room for */
    {
        ts_walrec_reader_t  rd;

        assert_int_equal(ts_walrec_series_open(&rd, buf, n, NULL), TS_OK);
        assert_int_equal(ts_walrec_series_next(&rd, out, labels[0], 2),
                         TS_ERR_LIMIT);
    }

    /* an empty list */
    assert_int_equal(ts_walrec_series_encode(buf, sizeof(buf), NULL, 0,
                                             &len), TS_OK);
    assert_int_equal(len, 1);
    assert_int_equal(t_decode_series(buf, 1, out, labels, T_NSERIES), TS_OK);
}


static void
test_walrec_samples(void **state)
{
    size_t              k, len, n, got;
    uint8_t             buf[512];
    ts_walrec_sample_t  out[T_NSAMPLES];

    (void) state;

    n = ts_walrec_samples_size(t_samples, T_NSAMPLES);
    assert_int_equal(ts_walrec_samples_encode(buf, sizeof(buf), t_samples,
                                              T_NSAMPLES, &len), TS_OK);
    assert_int_equal(len, n);
    assert_int_equal(ts_walrec_samples_encode(buf, n - 1, t_samples,
                                              T_NSAMPLES, &len), TS_ERR_FULL);

    assert_int_equal(ts_walrec_samples_decode(buf, n, out, T_NSAMPLES, &got),
                     TS_OK);
    assert_int_equal(got, T_NSAMPLES);

    for (k = 0; k < T_NSAMPLES; k++) {
        assert_int_equal(out[k].ref, t_samples[k].ref);
        assert_true(out[k].t == t_samples[k].t);
        assert_int_equal(out[k].v, t_samples[k].v);
    }

    assert_true(isnan(ts_walrec_u2f(out[1].v)));
    assert_int_equal(out[1].v, TS_WALREC_STALE_NAN);
    assert_int_equal(ts_walrec_f2u(ts_walrec_u2f(out[2].v)), out[2].v);

    assert_int_equal(ts_walrec_samples_decode(buf, n, out, T_NSAMPLES - 1,
                                              &got), TS_ERR_LIMIT);

    /* the first byte alone is the empty layout-1 payload */

    for (k = 0; k < n; k++) {
        assert_int_equal(ts_walrec_samples_decode(buf, k, out, T_NSAMPLES,
                                                  &got),
                         k == 1 ? TS_OK : TS_ERR_CORRUPT);
    }

    assert_int_equal(buf[0], 0);
    assert_int_equal(ts_walrec_samples_decode(buf, 1, out, T_NSAMPLES, &got),
                     TS_OK);
    assert_int_equal(got, 0);

    buf[n] = 0x00;
    assert_int_equal(ts_walrec_samples_decode(buf, n + 1, out, T_NSAMPLES,
                                              &got), TS_ERR_CORRUPT);
}


/* A compact encoding: 1000 samples of one scrape take ~10 bytes each. */
static void
test_walrec_samples_compact(void **state)
{
    size_t               i, n, len, got;
    uint8_t             *buf;
    ts_walrec_sample_t  *s, *out;

    (void) state;

    s = calloc(1000, sizeof(*s));
    out = calloc(1000, sizeof(*out));
    assert_non_null(s);
    assert_non_null(out);

    for (i = 0; i < 1000; i++) {
        s[i].ref = 100000 + i;
        s[i].t = 1700000000000 + (int64_t) (i % 3);
        s[i].v = ts_walrec_f2u((double) i * 0.5);
    }

    n = ts_walrec_samples_size(s, 1000);
    assert_true(n <= 1000 * 11 + 16);

    buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(ts_walrec_samples_encode(buf, n, s, 1000, &len), TS_OK);
    assert_int_equal(ts_walrec_samples_decode(buf, len, out, 1000, &got),
                     TS_OK);
    assert_int_equal(got, 1000);
    assert_memory_equal(out, s, 1000 * sizeof(*s));

    free(buf);
    free(out);
    free(s);
}


/* Hostile payloads: huge counts and overlong varints fail fast. */
static void
test_walrec_hostile(void **state)
{
    size_t              got;
    ts_walrec_sample_t  out[4];
    ts_walrec_series_t  s;
    ts_walrec_label_t   labels[4];
    ts_walrec_reader_t  rd;

    static const uint8_t  huge_count[] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
    };
    static const uint8_t  overlong[] = {
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00
    };
    static const uint8_t  overflow[] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02
    };
    static const uint8_t  many_labels[] = { 0x01, 0x05, 0x7f, 0x00 };
    static const uint8_t  long_string[] = { 0x01, 0x05, 0x01, 0x7f, 0x00 };

    (void) state;

    assert_int_equal(ts_walrec_samples_decode(huge_count, sizeof(huge_count),
                                              out, 4, &got), TS_ERR_CORRUPT);
    assert_int_equal(ts_walrec_samples_decode(overlong, sizeof(overlong),
                                              out, 4, &got), TS_ERR_CORRUPT);
    assert_int_equal(ts_walrec_samples_decode(overflow, sizeof(overflow),
                                              out, 4, &got), TS_ERR_CORRUPT);
    assert_int_equal(ts_walrec_samples_decode(NULL, 0, out, 4, &got),
                     TS_ERR_CORRUPT);
    assert_int_equal(ts_walrec_series_open(&rd, huge_count,
                                           sizeof(huge_count), NULL),
                     TS_ERR_CORRUPT);

    assert_int_equal(ts_walrec_series_open(&rd, many_labels,
                                           sizeof(many_labels), NULL), TS_OK);
    assert_int_equal(ts_walrec_series_next(&rd, &s, labels, 4),
                     TS_ERR_CORRUPT);

    assert_int_equal(ts_walrec_series_open(&rd, long_string,
                                           sizeof(long_string), NULL), TS_OK);
    assert_int_equal(ts_walrec_series_next(&rd, &s, labels, 4),
                     TS_ERR_CORRUPT);

    assert_string_equal(ts_walrec_type_name(TS_WALREC_SAMPLES), "samples");
    assert_string_equal(ts_walrec_type_name(0), "unknown");
}


/* Records built by the codecs, appended zero-copy, replayed, decoded. */
static void
test_walrec_through_wal(void **state)
{
    size_t                  len, got;
    uint8_t                *p;
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_conf_t           conf;
    ts_walrec_sample_t      out[T_NSAMPLES];
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    (void) state;

    t_env_init(&env);
    t_conf(&conf, &env, T_NAME, 0);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);

    len = ts_walrec_series_size(t_series, T_NSERIES);
    assert_int_equal(ts_wal_reserve(w, len, &p), TS_OK);
    assert_int_equal(ts_walrec_series_encode(p, len, t_series, T_NSERIES,
                                             &len), TS_OK);
    assert_int_equal(ts_wal_commit(w, TS_WALREC_SERIES, len, NULL), TS_OK);

    len = ts_walrec_samples_size(t_samples, T_NSAMPLES);
    assert_int_equal(ts_wal_reserve(w, len, &p), TS_OK);
    assert_int_equal(ts_walrec_samples_encode(p, len, t_samples, T_NSAMPLES,
                                              &len), TS_OK);
    assert_int_equal(ts_wal_commit(w, TS_WALREC_SAMPLES, len, NULL), TS_OK);
    assert_int_equal(ts_wal_close(w), TS_OK);

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.r[0].type, TS_WALREC_SERIES);
    assert_int_equal(c.r[1].type, TS_WALREC_SAMPLES);
    assert_int_equal(ts_walrec_samples_decode(c.r[1].data, c.r[1].len, out,
                                              T_NSAMPLES, &got), TS_OK);
    assert_int_equal(got, T_NSAMPLES);
    assert_int_equal(out[1].v, TS_WALREC_STALE_NAN);
    t_col_free(&c);
    t_rmrf(env.root);
}


/* Compressed records. */

static void
t_zpayload(uint8_t *p, size_t len, unsigned i)
{
    size_t  k;
    char    line[32];
    int     n;

    n = snprintf(line, sizeof(line), "series %u value %u\n", i, i * 7);

    for (k = 0; k < len; k++) {
        p[k] = (uint8_t) line[k % (size_t) n];
    }
}


/* Writes T_ZSEG segments of T_ZREC compressible records; c gets them. */
static void
t_zwrite_layout(const t_env_t *env, t_col_t *c)
{
    int                     i;
    uint8_t                 p[T_ZLEN];
    ts_wal_t               *w;
    ts_wal_conf_t           conf;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    t_conf(&conf, env, T_NAME, 0);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);

    for (i = 0; i < T_ZTOTAL; i++) {
        if (i && i % T_ZREC == 0) {
            assert_int_equal(ts_wal_cut(w), TS_OK);
        }

        t_zpayload(p, T_ZLEN, (unsigned) i);
        assert_int_equal(ts_wal_append(w, 2, p, T_ZLEN, NULL), TS_OK);
    }

    assert_int_equal(ts_wal_close(w), TS_OK);

    memset(c, 0, sizeof(*c));
    assert_int_equal(t_replay(env, 0, c, &st), TS_OK);
    assert_int_equal(c->n, T_ZTOTAL);
    assert_int_equal(st.corruptions, 0);
    assert_true(st.stored < st.bytes);

    for (i = 0; i < T_ZTOTAL; i++) {
        assert_int_equal(c->r[i].flags, TS_WAL_REC_SNAPPY);
        assert_int_equal(c->r[i].len, T_ZLEN);
        assert_true(c->r[i].stored < T_ZLEN / 4);
    }
}


/* Checks that c holds the compressed layout except [from, to). */
static void
t_zcheck_layout(const t_col_t *c, int from, int to)
{
    int       i;
    size_t    k;
    uint8_t   p[T_ZLEN];

    assert_int_equal(c->n, T_ZTOTAL - (to - from));

    for (i = 0, k = 0; i < T_ZTOTAL; i++) {
        if (i >= from && i < to) {
            continue;
        }

        t_zpayload(p, T_ZLEN, (unsigned) i);
        assert_int_equal(c->r[k].len, T_ZLEN);
        assert_memory_equal(c->r[k].data, p, T_ZLEN);
        k++;
    }
}


/*
 * A compressed record's first stored bytes (snappy's length preamble,
 * 0xe8 0x07 for 1000) overwritten, with the checksum fixed or not.
 */
typedef struct {
    const char         *name;
    uint8_t             pre[5];
    size_t              npre;
    int                 fix_crc;
    const char         *reason;
} t_zcase_t;


static const t_zcase_t  t_zcases[] = {
    { "bad_compressed_length", { 0xff, 0xff, 0xff, 0xff, 0xff }, 5, 1,
      "bad compressed length" },
    { "decompressed_over_max", { 0x81, 0x80, 0x80, 0x08 }, 4, 1,
      "decompressed length over the maximum" },
    { "decompressed_4_gib", { 0xff, 0xff, 0xff, 0xff, 0x0f }, 5, 1,
      "decompressed length over the maximum" },
    { "declared_longer_than_block", { 0xe9, 0x07 }, 2, 1,
      "corrupt compressed payload" },
    { "declared_shorter_than_block", { 0xe7, 0x07 }, 2, 1,
      "corrupt compressed payload" },
    { "compressed_bytes_flipped", { 0xe9, 0x07 }, 2, 0,
      "record checksum mismatch" },
};

#define T_NZCASES  (sizeof(t_zcases) / sizeof(t_zcases[0]))


/*
 * Each case on a record in the middle of the first segment and on the
 * last record of the last one.  A bad block under a good checksum costs
 * that record only and nothing is cut: the framing is intact.  A bad
 * checksum is handled like that of any record.
 */
static void
test_snappy_corruption(void **state)
{
    int                     pass, last, from, to;
    size_t                  i, k;
    t_env_t                 env;
    t_col_t                 c, layout;
    const t_zcase_t        *tc;
    ts_wal_replay_stats_t   st;
    static const int        at[2] = { 1, T_ZTOTAL - 1 };

    (void) state;

    for (i = 0; i < T_NZCASES; i++) {
        for (k = 0; k < 2; k++) {
            tc = &t_zcases[i];
            last = at[k] >= T_ZREC;

            t_env_init(&env);
            t_zwrite_layout(&env, &layout);
            t_patch(&env, layout.r[at[k]].seg,
                    (long) layout.r[at[k]].off + TS_WAL_REC_HDR, tc->pre,
                    tc->npre);

            if (tc->fix_crc) {
                t_rec_fix(&env, layout.r[at[k]].seg,
                          (long) layout.r[at[k]].off);
            }

            from = at[k];
            to = tc->fix_crc || last ? at[k] + 1 : T_ZREC;

            for (pass = 0; pass < 2; pass++) {
                memset(&c, 0, sizeof(c));
                assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st),
                                 TS_OK);

                if (pass == 1 && !tc->fix_crc && last) {
                    t_zcheck_layout(&c, from, to);
                    assert_int_equal(st.corruptions, 0);
                    t_col_free(&c);
                    continue;
                }

                if (c.nrep != 1 || strcmp(c.rep[0].reason, tc->reason)) {
                    fail_msg("%s at record %d: %zu reports, \"%s\"",
                             tc->name, at[k], c.nrep,
                             c.nrep ? c.rep[0].reason : "");
                }

                t_zcheck_layout(&c, from, to);
                assert_int_equal(st.corruptions, 1);
                assert_int_equal(c.rep[0].seg, layout.r[at[k]].seg);
                assert_int_equal(c.rep[0].off, layout.r[at[k]].off);
                assert_int_equal(c.rep[0].truncated,
                                 !tc->fix_crc && last && pass == 0);

                if (tc->fix_crc) {
                    assert_int_equal(c.rep[0].lost, TS_WAL_REC_HDR
                                     + layout.r[at[k]].stored);
                    assert_int_equal(st.truncations, 0);
                }

                t_col_free(&c);
            }

            t_col_free(&layout);
            t_rmrf(env.root);
        }
    }
}


/* An empty payload flagged compressed has no length: skipped alone. */
static void
test_snappy_empty_record(void **state)
{
    uint8_t                 h[TS_WAL_REC_HDR];
    uint32_t                crc;
    t_env_t                 env;
    t_col_t                 c, layout;
    ts_wal_replay_stats_t   st;
    long long               size;

    (void) state;

    t_env_init(&env);
    t_zwrite_layout(&env, &layout);
    size = t_fsize(&env, T_ZSEG);

    memset(h, 0, sizeof(h));
    h[0] = TS_WALREC_SAMPLES;
    h[1] = TS_WAL_REC_SNAPPY;
    crc = ts_crc32c(0, h, 6);
    h[6] = (uint8_t) crc;
    h[7] = (uint8_t) (crc >> 8);
    h[8] = (uint8_t) (crc >> 16);
    h[9] = (uint8_t) (crc >> 24);
    t_patch(&env, T_ZSEG, -1, h, sizeof(h));

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    t_zcheck_layout(&c, 0, 0);
    assert_int_equal(c.nrep, 1);
    assert_string_equal(c.rep[0].reason, "bad compressed length");
    assert_int_equal(c.rep[0].off, size);
    assert_int_equal(c.rep[0].lost, TS_WAL_REC_HDR);
    assert_int_equal(st.truncations, 0);

    t_col_free(&c);
    t_col_free(&layout);
    t_rmrf(env.root);
}


/*
 * What compresses is stored compressed and comes back byte for byte,
 * the largest record included; what does not, and what is small, is
 * stored as it is; TS_WAL_NO_SNAPPY stores everything as it is.
 */
static void
test_snappy_records(void **state)
{
    int                     pass;
    size_t                  i, k;
    uint8_t                *big;
    uint64_t                x;
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_conf_t           conf;
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX];

    static const size_t     len[] = { 1000, 1000, 10, 0, TS_WAL_RECORD_MAX };
    static const uint8_t    zipped[] = { 1, 0, 0, 0, 1 };

    (void) state;

    big = malloc(TS_WAL_RECORD_MAX);
    assert_non_null(big);

    for (pass = 0; pass < 2; pass++) {
        t_env_init(&env);
        t_conf(&conf, &env, T_NAME, 0);
        conf.flags = pass ? TS_WAL_NO_SNAPPY : 0;
        assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);

        for (i = 0; i < 5; i++) {
            t_zpayload(big, len[i], (unsigned) i);

            if (i == 1) {
                for (x = 88172645463325252ULL, k = 0; k < len[i]; k++) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    big[k] = (uint8_t) x;
                }
            }

            assert_int_equal(ts_wal_append(w, (uint8_t) (i + 1), big,
                                           len[i], NULL), TS_OK);
        }

        assert_int_equal(ts_wal_close(w), TS_OK);

        memset(&c, 0, sizeof(c));
        assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
        assert_int_equal(c.n, 5);
        assert_int_equal(st.corruptions, 0);

        for (i = 0; i < 5; i++) {
            assert_int_equal(c.r[i].type, i + 1);
            assert_int_equal(c.r[i].len, len[i]);
            assert_int_equal(c.r[i].flags,
                             pass ? 0 : zipped[i] * TS_WAL_REC_SNAPPY);
            assert_true(c.r[i].flags ? c.r[i].stored < len[i] / 2
                                     : c.r[i].stored == len[i]);

            if (i != 1) {
                t_zpayload(big, len[i], (unsigned) i);
                assert_memory_equal(c.r[i].data, big, len[i]);
            }
        }

        assert_int_equal(st.bytes, 2 * 1000 + 10 + TS_WAL_RECORD_MAX);
        assert_true(pass ? st.stored == st.bytes : st.stored < st.bytes / 10);

        t_col_free(&c);
        t_rmrf(env.root);
    }

    free(big);
}


/* Copies the version 1 fixture to env as directory "v1". */
static void
t_copy_v1(const t_env_t *env)
{
    FILE     *in, *out;
    char      path[256];
    size_t    n;
    uint8_t   buf[4096];

    snprintf(path, sizeof(path), "%s/wal", env->root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/wal/v1", env->root);
    assert_int_equal(mkdir(path, 0755), 0);

    in = fopen(T_V1_DIR "/00000001.wal", "rb");
    if (in == NULL) {
        fail_msg("cannot open " T_V1_DIR " (run from the repository root)");
    }

    snprintf(path, sizeof(path), "%s/wal/v1/00000001.wal", env->root);
    out = fopen(path, "wb");
    assert_non_null(out);

    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
    }

    fclose(in);
    assert_int_equal(fclose(out), 0);
}


/*
 * The WAL the previous version wrote (version 1 segment, layout-1
 * SAMPLES; made by store/tests/data/wal-v1/gen.c) replays to what was
 * written, and a writer that takes the directory over continues it with
 * a version 2 segment that replays after it.
 */
static void
test_replay_v1_fixture(void **state)
{
    size_t                  i, got;
    uint8_t                *p, h[TS_WAL_SEG_HDR];
    t_env_t                 env;
    t_col_t                 c;
    ts_wal_t               *w;
    ts_wal_conf_t           conf;
    ts_walrec_sample_t     *out;
    ts_walrec_series_t      s[2];
    ts_walrec_label_t       labels[2][4];
    ts_wal_replay_stats_t   st;
    char                    err[TS_WAL_ERR_MAX], path[256];
    FILE                   *f;

    (void) state;

    out = calloc(1000, sizeof(*out));
    assert_non_null(out);

    t_env_init(&env);
    t_copy_v1(&env);

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    assert_int_equal(st.corruptions, 0);
    assert_int_equal(c.n, 4);

    for (i = 0; i < 4; i++) {
        assert_int_equal(c.r[i].flags, 0);
        assert_int_equal(c.r[i].stored, c.r[i].len);
    }

    assert_int_equal(c.r[0].type, TS_WALREC_SERIES);
    assert_int_equal(t_decode_series(c.r[0].data, c.r[0].len, s, labels, 2),
                     TS_OK);
    assert_int_equal(s[0].ref, 5);
    assert_int_equal(s[0].nlabels, 3);
    assert_memory_equal(s[0].labels[0].value.data, "default", 7);
    assert_int_equal(s[1].ref, 6);

    assert_int_equal(c.r[1].type, TS_WALREC_SAMPLES);
    assert_int_equal(c.r[1].data[0], T_NSAMPLES);
    assert_int_equal(ts_walrec_samples_decode(c.r[1].data, c.r[1].len, out,
                                              1000, &got), TS_OK);
    assert_int_equal(got, T_NSAMPLES);
    assert_memory_equal(out, t_samples, sizeof(t_samples));

    assert_int_equal(c.r[2].type, TS_WALREC_SAMPLES);
    assert_int_equal(ts_walrec_samples_decode(c.r[2].data, c.r[2].len, out,
                                              1000, &got), TS_OK);
    assert_int_equal(got, 1000);

    for (i = 0; i < 1000; i++) {
        assert_int_equal(out[i].ref, 100000 + i);
        assert_true(out[i].t == 1700000000000 + (int64_t) (i % 3));
        assert_int_equal(out[i].v, ts_walrec_f2u((double) i * 0.5));
    }

    assert_int_equal(c.r[3].type, 9);
    assert_memory_equal(c.r[3].data, "opaque", 6);
    t_col_free(&c);

    /* taken over: a version 2 segment follows */

    t_conf(&conf, &env, "v1", 0);
    assert_int_equal(ts_wal_open(&w, &conf, err, sizeof(err)), TS_OK);
    got = ts_walrec_samples_size(t_samples, T_NSAMPLES);
    assert_int_equal(ts_wal_reserve(w, got, &p), TS_OK);
    assert_int_equal(ts_walrec_samples_encode(p, got, t_samples, T_NSAMPLES,
                                              &got), TS_OK);
    assert_int_equal(ts_wal_commit(w, TS_WALREC_SAMPLES, got, NULL), TS_OK);
    assert_int_equal(ts_wal_close(w), TS_OK);

    for (i = 1; i <= 2; i++) {
        snprintf(path, sizeof(path), "%s/wal/v1/%08zu.wal", env.root, i);
        f = fopen(path, "rb");
        assert_non_null(f);
        assert_int_equal(fread(h, 1, sizeof(h), f), sizeof(h));
        fclose(f);
        assert_int_equal(h[4], i == 1 ? 1 : TS_WAL_VERSION);
    }

    memset(&c, 0, sizeof(c));
    assert_int_equal(t_replay(&env, TS_WAL_REPAIR, &c, &st), TS_OK);
    assert_int_equal(c.n, 5);
    assert_int_equal(st.corruptions, 0);
    assert_int_equal(c.r[4].seg, 2);
    assert_int_equal(c.r[4].data[0], 0);
    assert_int_equal(c.r[4].data[1], TS_WALREC_SAMPLES_LAYOUT);
    assert_int_equal(ts_walrec_samples_decode(c.r[4].data, c.r[4].len, out,
                                              1000, &got), TS_OK);
    assert_int_equal(got, T_NSAMPLES);
    assert_memory_equal(out, t_samples, sizeof(t_samples));
    t_col_free(&c);

    free(out);
    t_rmrf(env.root);
}


/* Layout 2: what each value kind costs, and that every value returns. */

typedef struct {
    const char         *name;
    uint64_t            v;
    size_t              bytes;          /* value bytes after the first */
} t_kind_t;


static const t_kind_t  t_kinds[] = {
    { "zero", 0, 0 },
    { "one", 0x3ff0000000000000ULL, 1 },
    { "minus_one", 0xbff0000000000000ULL, 1 },
    { "100000", 0x40f86a0000000000ULL, 3 },
    { "2^53", 0x4340000000000000ULL, 2 },
    { "2^53+2", 0x4340000000000001ULL, 8 },
    { "half", 0x3fe0000000000000ULL, 2 },
    { "tenth", 0x3fb999999999999aULL, 8 },
    { "minus_zero", 0x8000000000000000ULL, 1 },
    { "stale_nan", TS_WALREC_STALE_NAN, 8 },
    { "nan_payload", 0x7ff8000000000001ULL, 8 },
    { "plus_inf", 0x7ff0000000000000ULL, 2 },
    { "minus_inf", 0xfff0000000000000ULL, 2 },
    { "int64_min", 0xc3e0000000000000ULL, 2 },
    { "denormal", 0x0000000000000001ULL, 8 },
};

#define T_NKINDS  (sizeof(t_kinds) / sizeof(t_kinds[0]))


static void
test_walrec_packed(void **state)
{
    size_t              i, k, n, len, got;
    uint8_t             buf[64];
    uint64_t            x;
    ts_walrec_sample_t  s[2], out[2], *m, *mo;
    uint8_t            *big;

    (void) state;

    /* two samples of refs 1, 2 at time 0: only value bytes are paid */

    for (i = 0; i < T_NKINDS; i++) {
        s[0].ref = 1;
        s[0].t = 0;
        s[0].v = t_kinds[i].v;
        s[1] = s[0];
        s[1].ref = 2;

        assert_int_equal(ts_walrec_samples_encode(buf, sizeof(buf), s, 2,
                                                  &len), TS_OK);
        /* 3 header bytes, 1 + bytes, then 1 for the repeated value */
        if (len != 5 + t_kinds[i].bytes) {
            fail_msg("%s: %zu bytes", t_kinds[i].name, len);
        }

        assert_int_equal(ts_walrec_samples_decode(buf, len, out, 2, &got),
                         TS_OK);
        assert_int_equal(got, 2);
        assert_memory_equal(out, s, sizeof(s));
    }

    /* mixed, random: refs and times in any order, values of any kind */

    n = 5000;
    m = calloc(n, sizeof(*m));
    mo = calloc(n, sizeof(*mo));
    big = malloc(n * 32);
    assert_true(m && mo && big);

    for (x = 88172645463325252ULL, i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        k = x % 8;
        m[i].ref = k < 4 ? (i ? m[i - 1].ref + 1 : 7) : x >> 20;
        m[i].t = k < 5 ? (i ? m[i - 1].t : -5) : (int64_t) (x * 31);
        m[i].v = k < 2 ? t_kinds[x % T_NKINDS].v
                 : k < 4 ? ts_walrec_f2u((double) (int64_t) (x >> 40))
                 : k < 5 && i ? m[i - 1].v : x;
    }

    len = ts_walrec_samples_size(m, n);
    assert_true(len <= n * 32);
    assert_int_equal(ts_walrec_samples_encode(big, len, m, n, &got), TS_OK);
    assert_int_equal(got, len);
    assert_int_equal(ts_walrec_samples_encode(big, len - 1, m, n, &got),
                     TS_ERR_FULL);
    assert_int_equal(got, len);
    assert_int_equal(ts_walrec_samples_decode(big, len, mo, n, &got), TS_OK);
    assert_int_equal(got, n);
    assert_memory_equal(mo, m, n * sizeof(*m));

    for (k = 2; k < len; k += 97) {
        assert_int_equal(ts_walrec_samples_decode(big, k, mo, n, &got),
                         TS_ERR_CORRUPT);
    }

    free(m);
    free(mo);
    free(big);
}


/* Layout 2 payloads that are not well formed, one per rule. */
static void
test_walrec_packed_hostile(void **state)
{
    size_t              i, got;
    ts_walrec_sample_t  out[4];

    static const struct {
        const char     *name;
        uint8_t         p[8];
        size_t          len;
        int             rc;
    } cases[] = {
        { "one_zero_sample", { 0, 2, 1, 0x00 }, 4, TS_OK },
        { "unknown_layout", { 0, 3, 1, 0x00 }, 4, TS_ERR_CORRUPT },
        { "no_count", { 0, 2 }, 2, TS_ERR_CORRUPT },
        { "count_over_bytes", { 0, 2, 2, 0x00 }, 4, TS_ERR_CORRUPT },
        { "reserved_bit_6", { 0, 2, 1, 0x40 }, 4, TS_ERR_CORRUPT },
        { "reserved_bit_7", { 0, 2, 1, 0x80 }, 4, TS_ERR_CORRUPT },
        { "kind_11", { 0, 2, 1, 0x0b }, 4, TS_ERR_CORRUPT },
        { "kind_15", { 0, 2, 1, 0x0f }, 4, TS_ERR_CORRUPT },
        { "value_bytes_missing", { 0, 2, 1, 0x03, 0x01, 0x02 }, 6,
          TS_ERR_CORRUPT },
        { "ref_delta_missing", { 0, 2, 1, 0x10 }, 4, TS_ERR_CORRUPT },
        { "time_delta_missing", { 0, 2, 1, 0x20 }, 4, TS_ERR_CORRUPT },
        { "integer_missing", { 0, 2, 1, 0x09 }, 4, TS_ERR_CORRUPT },
        { "integer_overlong", { 0, 2, 1, 0x09, 0x80, 0x80 }, 6,
          TS_ERR_CORRUPT },
        { "trailing_byte", { 0, 2, 1, 0x00, 0x00 }, 5, TS_ERR_CORRUPT },
    };

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (ts_walrec_samples_decode(cases[i].p, cases[i].len, out, 4, &got)
            != cases[i].rc)
        {
            fail_msg("%s: not %d", cases[i].name, cases[i].rc);
        }
    }
}


/* two histograms, integer and float, as the write path logs them */

static void
t_walrec_hists(ts_walrec_hist_t *s)
{
    static const ts_hspan_t  ps[2] = { { -2, 2 }, { 3, 1 } };
    static const ts_hspan_t  ns[1] = { { 0, 1 } };
    static const int64_t     pd[3] = { 4, -1, 7 };
    static const int64_t     nd[1] = { -3 };
    static const double      pc[3] = { 0.5, -0.0, 1e300 };
    static const double      cv[2] = { 1.0, 2.5 };

    memset(s, 0, 2 * sizeof(ts_walrec_hist_t));

    s[0].ref = 7;
    s[0].t = -1234567;
    s[0].h.schema = -4;
    s[0].h.zero_threshold = 1e-128;
    s[0].h.sum = 0x7ff8000000000001ULL;
    s[0].h.count = UINT64_MAX;
    s[0].h.zero_count = 3;
    s[0].h.reset_hint = TS_HIST_HINT_GAUGE;
    s[0].h.n_pos_spans = 2;
    s[0].h.pos_spans = ps;
    s[0].h.n_pos = 3;
    s[0].h.pos_deltas = pd;
    s[0].h.n_neg_spans = 1;
    s[0].h.neg_spans = ns;
    s[0].h.n_neg = 1;
    s[0].h.neg_deltas = nd;

    s[1].ref = UINT64_MAX;
    s[1].t = INT64_MAX;
    s[1].h.is_float = 1;
    s[1].h.schema = TS_HIST_SCHEMA_CUSTOM;
    s[1].h.fcount = 12.5;
    s[1].h.fzero_count = -0.0;
    s[1].h.n_pos_spans = 1;
    s[1].h.pos_spans = ps + 1;
    s[1].h.n_pos = 3;
    s[1].h.pos_counts = pc;
    s[1].h.n_custom = 2;
    s[1].h.custom_values = cv;
}


static void
t_hist_same(const ts_walrec_hist_t *a, const ts_walrec_hist_t *b)
{
    size_t  vs;

    vs = a->h.is_float ? sizeof(double) : sizeof(int64_t);

    assert_int_equal(a->ref, b->ref);
    assert_int_equal(a->t, b->t);
    assert_int_equal(a->h.is_float, b->h.is_float);
    assert_int_equal(a->h.reset_hint, b->h.reset_hint);
    assert_int_equal(a->h.schema, b->h.schema);
    assert_memory_equal(&a->h.zero_threshold, &b->h.zero_threshold, 8);
    assert_int_equal(a->h.sum, b->h.sum);
    assert_int_equal(a->h.count, b->h.count);
    assert_int_equal(a->h.zero_count, b->h.zero_count);
    assert_memory_equal(&a->h.fcount, &b->h.fcount, 8);
    assert_memory_equal(&a->h.fzero_count, &b->h.fzero_count, 8);
    assert_int_equal(a->h.n_pos_spans, b->h.n_pos_spans);
    assert_int_equal(a->h.n_neg_spans, b->h.n_neg_spans);
    assert_int_equal(a->h.n_pos, b->h.n_pos);
    assert_int_equal(a->h.n_neg, b->h.n_neg);
    assert_int_equal(a->h.n_custom, b->h.n_custom);

    if (a->h.n_pos_spans) {
        assert_memory_equal(a->h.pos_spans, b->h.pos_spans,
                            a->h.n_pos_spans * sizeof(ts_hspan_t));
    }

    if (a->h.n_neg_spans) {
        assert_memory_equal(a->h.neg_spans, b->h.neg_spans,
                            a->h.n_neg_spans * sizeof(ts_hspan_t));
    }

    if (a->h.n_pos) {
        assert_memory_equal(a->h.is_float ? (const void *) a->h.pos_counts
                                          : (const void *) a->h.pos_deltas,
                            b->h.is_float ? (const void *) b->h.pos_counts
                                          : (const void *) b->h.pos_deltas,
                            a->h.n_pos * vs);
    }

    if (a->h.n_neg) {
        assert_memory_equal(a->h.is_float ? (const void *) a->h.neg_counts
                                          : (const void *) a->h.neg_deltas,
                            b->h.is_float ? (const void *) b->h.neg_counts
                                          : (const void *) b->h.neg_deltas,
                            a->h.n_neg * vs);
    }

    if (a->h.n_custom) {
        assert_memory_equal(a->h.custom_values, b->h.custom_values,
                            a->h.n_custom * sizeof(double));
    }
}


/* HISTOGRAM_SAMPLES: every field round-trips; too little memory retries */

static void
test_walrec_hists(void **state)
{
    size_t              len, i;
    uint8_t             buf[512];
    uint64_t            mem[64], count;
    ts_walrec_hist_t    in[2], out;
    ts_walrec_reader_t  rd;

    (void) state;

    t_walrec_hists(in);
    assert_int_equal(ts_walrec_hists_encode(buf, 10, in, 2, &len),
                     TS_ERR_FULL);
    assert_int_equal(len, ts_walrec_hists_size(in, 2));
    assert_int_equal(ts_walrec_hists_encode(buf, sizeof(buf), in, 2, &len),
                     TS_OK);
    assert_int_equal(buf[0], TS_WALREC_HISTS_LAYOUT);

    assert_int_equal(ts_walrec_hists_open(&rd, buf, len, &count), TS_OK);
    assert_int_equal(count, 2);

    for (i = 0; i < 2; i++) {
        assert_int_equal(ts_walrec_hists_next(&rd, &out, mem, 16),
                         TS_ERR_LIMIT);
        assert_int_equal(ts_walrec_hists_next(&rd, &out, mem, sizeof(mem)),
                         TS_OK);
        t_hist_same(&in[i], &out);
    }

    assert_int_equal(ts_walrec_hists_next(&rd, &out, mem, sizeof(mem)),
                     TS_ERR_NOTFOUND);

    /* empty list */

    assert_int_equal(ts_walrec_hists_encode(buf, sizeof(buf), in, 0, &len),
                     TS_OK);
    assert_int_equal(len, 2);
    assert_int_equal(ts_walrec_hists_open(&rd, buf, len, &count), TS_OK);
    assert_int_equal(ts_walrec_hists_next(&rd, &out, mem, sizeof(mem)),
                     TS_ERR_NOTFOUND);
}


/* decodes a whole payload: TS_OK or the first error */

static int
t_hists_decode(const uint8_t *p, size_t len)
{
    int                 rc;
    uint64_t            mem[512];
    ts_walrec_hist_t    out;
    ts_walrec_reader_t  rd;

    rc = ts_walrec_hists_open(&rd, p, len, NULL);
    if (rc != TS_OK) {
        return rc;
    }

    while ((rc = ts_walrec_hists_next(&rd, &out, mem, sizeof(mem)))
           == TS_OK)
    {
        /* void */
    }

    return rc == TS_ERR_NOTFOUND ? TS_OK : rc;
}


/* one case per corruption kind; every truncation and extension */

static void
test_walrec_hists_hostile(void **state)
{
    size_t            len, i;
    uint8_t           buf[512], bad[512];
    ts_walrec_hist_t  in[2];

    (void) state;

    t_walrec_hists(in);
    assert_int_equal(ts_walrec_hists_encode(buf, sizeof(buf), in, 2, &len),
                     TS_OK);
    assert_int_equal(t_hists_decode(buf, len), TS_OK);

    for (i = 0; i < len; i++) {
        assert_int_equal(t_hists_decode(buf, i), TS_ERR_CORRUPT);
    }

    memcpy(bad, buf, len);
    bad[len] = 0;
    assert_int_equal(t_hists_decode(bad, len + 1), TS_ERR_CORRUPT);

    /* unknown layout */
    bad[0] = 2;
    assert_int_equal(t_hists_decode(bad, len), TS_ERR_CORRUPT);

    /* a count the payload cannot hold */
    memcpy(bad, buf, len);
    bad[1] = 0x7f;
    assert_int_equal(t_hists_decode(bad, len), TS_ERR_CORRUPT);

    /* reserved flag bits: the byte after ref 7 and t's varint */
    memcpy(bad, buf, len);
    assert_int_equal(bad[2], 7);
    for (i = 3; bad[i] & 0x80; i++) { /* void */ }
    bad[i + 1] |= 0x08;
    assert_int_equal(t_hists_decode(bad, len), TS_ERR_CORRUPT);

    /* a span count of 2^32: rejected before anything is taken for it */
    {
        static const uint8_t  huge[] = {
            1, 1, 1, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0x80, 0x80, 0x80, 0x80, 0x10
        };

        assert_int_equal(t_hists_decode(huge, sizeof(huge)),
                         TS_ERR_CORRUPT);
    }
}


int
main(void)
{
    int                i, rc;
    struct CMUnitTest  *tests;

    static const struct CMUnitTest  fixed[] = {
        cmocka_unit_test(test_roundtrip_segments),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_short_writes_and_eintr),
        cmocka_unit_test(test_write_failure),
        cmocka_unit_test(test_fsync_failure),
        cmocka_unit_test(test_sync_job_thread),
        cmocka_unit_test(test_cut_and_truncate_before),
        cmocka_unit_test(test_reopen_continues),
        cmocka_unit_test(test_idempotent_replay),
        cmocka_unit_test(test_replay_without_repair),
        cmocka_unit_test(test_replay_callback_error),
        cmocka_unit_test(test_limits_and_args),
        cmocka_unit_test(test_lock_excludes),
        cmocka_unit_test(test_dead_writer_adoption),
        cmocka_unit_test(test_set_remove_and_cleanup),
        cmocka_unit_test(test_set_skips_unclaimable),
        cmocka_unit_test(test_replay_dir_locked),
        cmocka_unit_test(test_walrec_series),
        cmocka_unit_test(test_walrec_samples),
        cmocka_unit_test(test_walrec_samples_compact),
        cmocka_unit_test(test_walrec_hostile),
        cmocka_unit_test(test_walrec_through_wal),
        cmocka_unit_test(test_walrec_packed),
        cmocka_unit_test(test_walrec_packed_hostile),
        cmocka_unit_test(test_walrec_hists),
        cmocka_unit_test(test_walrec_hists_hostile),
        cmocka_unit_test(test_snappy_records),
        cmocka_unit_test(test_snappy_corruption),
        cmocka_unit_test(test_snappy_empty_record),
        cmocka_unit_test(test_replay_v1_fixture),
    };

#define T_NFIXED  (sizeof(fixed) / sizeof(fixed[0]))

    tests = calloc(T_NFIXED + T_NCORRUPT, sizeof(struct CMUnitTest));
    if (tests == NULL) {
        return 1;
    }

    memcpy(tests, fixed, sizeof(fixed));

    for (i = 0; i < (int) T_NFIXED; i++) {
        tests[i].teardown_func = t_teardown;
    }

    for (i = 0; i < (int) T_NCORRUPT; i++) {
        tests[T_NFIXED + i].name = t_corrupt_cases[i].name;
        tests[T_NFIXED + i].test_func = test_corruption;
        tests[T_NFIXED + i].teardown_func = t_teardown;
        tests[T_NFIXED + i].initial_state = (void *) &t_corrupt_cases[i];
    }

    rc = _cmocka_run_group_tests("wal", tests, T_NFIXED + T_NCORRUPT, NULL,
                                 NULL);
    free(tests);

    return rc;
}
