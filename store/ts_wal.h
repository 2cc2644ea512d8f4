/*
 * Copyright (C) ngx_tsdb authors
 *
 * Write-ahead log: one directory per writer process, numbered segment
 * files of CRC-32C checked records, group commit, explicit fsync, and a
 * replay that repairs a torn tail.  The byte format is documented in
 * docs/format/wal.md; record payloads are in ts_walrec.h.  Nothing here
 * logs: errors come back as ts_err_t codes with a message naming the
 * call, the file and errno.
 */

#ifndef TS_WAL_H
#define TS_WAL_H


#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ts_error.h"


#define TS_WAL_VERSION          2               /* segments written */
#define TS_WAL_VERSION_MIN      1               /* oldest one read */
#define TS_WAL_SEG_HDR          16              /* segment header bytes */
#define TS_WAL_REC_HDR          10              /* record header bytes */
#define TS_WAL_RECORD_MAX       (16u << 20)     /* payload limit, format */
#define TS_WAL_SEGMENT_SIZE     (64u << 20)     /* default rotation size */
#define TS_WAL_SEGMENT_MIN      64
#define TS_WAL_NAME_MAX         64
#define TS_WAL_ERR_MAX          (PATH_MAX + 128)

#define TS_WAL_DIR              "wal"           /* under the zone path */
#define TS_WAL_LOCK             "LOCK"          /* flock()ed by the owner */

/* record header flags (version 2 segments) */
#define TS_WAL_REC_SNAPPY       0x01    /* payload is a snappy block */

/* ts_wal_conf_t.flags */
#define TS_WAL_NO_SNAPPY        0x1     /* never compress a record */

/* ts_wal_replay_t.flags */
#define TS_WAL_REPAIR           0x1     /* ftruncate a bad last segment */

#define TS_WAL_SYNC_FDS         8
#define TS_WAL_PENDING_MAX      4       /* rotated, not yet fsynced */


typedef struct ts_wal_s      ts_wal_t;
typedef struct ts_wal_set_s  ts_wal_set_t;


/*
 * A log position: the segment number and the byte offset just past a
 * record.  Positions of one writer grow monotonically; compare them with
 * ts_wal_pos_cmp().
 */
typedef struct {
    uint32_t            seg;
    uint64_t            off;
} ts_wal_pos_t;


/* I/O the writer performs; tests inject faults through it. */
typedef struct {
    ssize_t           (*pwrite)(int fd, const void *buf, size_t n,
                                off_t off);
    int               (*fsync)(int fd);
} ts_wal_io_t;


typedef struct {
    const char         *path;          /* zone path: <path>/wal/<name> */
    const char         *name;          /* NULL: "w-<pid>-<ns>" */
    uint64_t            segment_size;  /* 0: TS_WAL_SEGMENT_SIZE */
    size_t              buffer_size;   /* initial buffer, 0: 64 KiB */
    uid_t               uid;           /* (uid_t) -1: keep owner */
    gid_t               gid;           /* (gid_t) -1: keep group */
    const ts_wal_io_t  *io;            /* NULL: pwrite(2), fsync(2) */
    unsigned            flags;         /* TS_WAL_NO_SNAPPY */
} ts_wal_conf_t;


/*
 * One record handed to a replay callback.  A compressed record comes
 * decompressed: payload and len are the original bytes, "stored" is how
 * many the file holds.
 */
typedef struct {
    uint8_t             type;
    uint8_t             flags;         /* TS_WAL_REC_SNAPPY */
    const uint8_t      *payload;       /* valid during the callback only */
    size_t              len;
    size_t              stored;
    uint32_t            seg;
    uint64_t            off;           /* offset of the record header */
} ts_wal_rec_t;


/*
 * A corruption found by replay.  "offset" is where the intact data ends
 * in "file"; "lost" is how many bytes from there on were not replayed.
 * "truncated" is set when the file was cut at "offset".
 */
typedef struct {
    char                file[PATH_MAX];
    uint32_t            seg;
    uint64_t            offset;
    uint64_t            lost;
    const char         *reason;        /* static string */
    int                 truncated;
} ts_wal_report_t;


/* Returns TS_OK to go on; any other value stops replay and is returned. */
typedef int (*ts_wal_record_pt)(void *data, const ts_wal_rec_t *rec);
typedef void (*ts_wal_report_pt)(void *data, const ts_wal_report_t *rep);


typedef struct {
    ts_wal_record_pt    record;
    ts_wal_report_pt    report;        /* NULL: only counted in stats */
    void               *data;
    unsigned            flags;         /* TS_WAL_REPAIR */
} ts_wal_replay_t;


typedef struct {
    uint64_t            records;
    uint64_t            bytes;         /* payload bytes delivered */
    uint64_t            stored;        /* and what they took on disk */
    uint32_t            segments;      /* segment files read */
    uint32_t            first_seg;
    uint32_t            last_seg;
    uint32_t            corruptions;
    uint32_t            truncations;
    ts_wal_report_t     last;          /* the last corruption reported */
} ts_wal_replay_stats_t;


/*
 * fsync work taken out of a writer so it can run on another thread:
 * ts_wal_sync_begin() and ts_wal_sync_end() run on the writer's thread,
 * ts_wal_sync_run() anywhere.  The job owns its descriptors; a job that
 * was begun must be ended before ts_wal_close().
 */
typedef struct {
    int                 fd[TS_WAL_SYNC_FDS];
    uint32_t            seg[TS_WAL_SYNC_FDS];   /* 0: a directory */
    int                 n;
    int               (*fsync)(int fd);
    ts_wal_pos_t        target;        /* synced position on success */
    int                 sys_errno;     /* of the first failed fsync */
    int                 failed;        /* index into fd[], or -1 */
} ts_wal_sync_t;


/* Writer.  One thread at a time; never use a ts_wal_t across fork(). */

/*
 * Creates <path>/wal/<name> (or claims it if it exists and its lock is
 * free), takes flock(LOCK_EX|LOCK_NB) on its LOCK file and starts a new
 * segment after any existing ones.  TS_ERR_LOCKED if a live process owns
 * the directory, TS_ERR_INVALID for a bad name or size, TS_ERR_IO with a
 * message in err otherwise.
 */
int ts_wal_open(ts_wal_t **wp, const ts_wal_conf_t *conf, char *err,
    size_t errlen);

/* Formats a directory name "w-<pid>-<gen as 16 hex digits>". */
int ts_wal_name(char *buf, size_t size, pid_t pid, uint64_t gen);

/*
 * Appends one record to the buffer; type 1..255, len up to
 * TS_WAL_RECORD_MAX (TS_ERR_LIMIT beyond).  Nothing is written until
 * ts_wal_flush(), except when the record does not fit the current
 * segment: then the buffer is flushed and a new segment started first,
 * which can fail with TS_ERR_IO.  *pos (may be NULL) gets the position
 * just past the record.  Unless the writer was opened with
 * TS_WAL_NO_SNAPPY, a payload that snappy makes at least 1/16 smaller is
 * stored compressed (whether it fits a segment is decided on its
 * uncompressed size); replay gives it back as it was appended.
 */
int ts_wal_append(ts_wal_t *w, uint8_t type, const void *payload,
    size_t len, ts_wal_pos_t *pos);

/*
 * Zero-copy append: reserve room for up to len payload bytes, encode
 * into *payload, then commit the actual length (<= len).  No other call
 * on the writer may come between the two.
 */
int ts_wal_reserve(ts_wal_t *w, size_t len, uint8_t **payload);
int ts_wal_commit(ts_wal_t *w, uint8_t type, size_t len,
    ts_wal_pos_t *pos);

/*
 * Writes everything buffered with one pwrite() (looping on short writes
 * and EINTR).  On failure returns TS_ERR_IO and keeps the buffer: the
 * current segment is cut back to its last whole record (best effort) and
 * abandoned, and the next flush writes the buffer into a new segment.
 */
int ts_wal_flush(ts_wal_t *w);

/*
 * Flushes, then fsyncs every segment written since the last sync and the
 * directory when a segment was created.  A failed fsync abandons the
 * current segment (it is never fsynced again) and returns TS_ERR_IO: the
 * data written since the previous successful sync must be treated as
 * lost, even though later syncs report greater positions.
 */
int ts_wal_sync(ts_wal_t *w);

/*
 * The same in three steps.  begin returns TS_ERR_AGAIN while another job
 * is in flight, and may return a job with n == 0 (nothing to do).
 */
int ts_wal_sync_begin(ts_wal_t *w, ts_wal_sync_t *job);
void ts_wal_sync_run(ts_wal_sync_t *job);
int ts_wal_sync_end(ts_wal_t *w, ts_wal_sync_t *job);

/* Position after the last append, the last write() and the last fsync. */
ts_wal_pos_t ts_wal_pos(const ts_wal_t *w);
ts_wal_pos_t ts_wal_written(const ts_wal_t *w);
ts_wal_pos_t ts_wal_synced(const ts_wal_t *w);
int ts_wal_pos_cmp(ts_wal_pos_t a, ts_wal_pos_t b);

/*
 * Flushes and starts a new segment unless the current one holds no
 * record; afterwards every record appended before is in a segment below
 * ts_wal_pos(w).seg.
 */
int ts_wal_cut(ts_wal_t *w);

/*
 * Deletes whole segments numbered below seg (never the current one),
 * oldest first, so a crash leaves a contiguous run of segments.
 */
int ts_wal_truncate_before(ts_wal_t *w, uint32_t seg);

/* Flushes (not fsyncs), releases the lock and frees w. */
int ts_wal_close(ts_wal_t *w);

const char *ts_wal_dir(const ts_wal_t *w);
const char *ts_wal_errmsg(const ts_wal_t *w);
int ts_wal_errno(const ts_wal_t *w);


/*
 * Replay.  ts_wal_set_open() claims every directory under <path>/wal/
 * whose lock is free (its writer is dead) and keeps the locks until the
 * entry is removed, adopted or the set is closed; live writers' are
 * skipped.  A directory that cannot be claimed (e.g. EACCES) is skipped
 * and named by ts_wal_set_errmsg(), which is "" otherwise.  Leftovers of
 * interrupted creates and removes are deleted.  Close the set before
 * fork(): children would inherit the locks.
 */
int ts_wal_set_open(ts_wal_set_t **sp, const ts_wal_conf_t *conf,
    char *err, size_t errlen);
size_t ts_wal_set_size(const ts_wal_set_t *s);
const char *ts_wal_set_name(const ts_wal_set_t *s, size_t i);

/*
 * Calls rp->record for every intact record of directory i, segments in
 * order.  A bad tail of the last segment ends replay and, with
 * TS_WAL_REPAIR, is cut off with ftruncate(); corruption in an earlier
 * segment skips the rest of that segment.  A compressed record whose
 * checksum is right but which does not decompress is skipped alone.
 * Each is reported and counted.
 * TS_ERR_VERSION (nothing modified) if a segment has another format
 * version.  Stats accumulate, so zero them once before a series of calls.
 */
int ts_wal_set_replay(ts_wal_set_t *s, size_t i, const ts_wal_replay_t *rp,
    ts_wal_replay_stats_t *st);

/* Deletes directory i (after its data has been checkpointed). */
int ts_wal_set_remove(ts_wal_set_t *s, size_t i);

/*
 * Makes directory i the caller's own WAL: it is renamed to conf->name and
 * opened as by ts_wal_open(), keeping its segments, so that the writer's
 * later ts_wal_truncate_before() deletes them after a checkpoint.
 */
int ts_wal_set_adopt(ts_wal_set_t *s, size_t i, ts_wal_t **wp,
    const ts_wal_conf_t *conf, char *err, size_t errlen);

const char *ts_wal_set_errmsg(const ts_wal_set_t *s);
void ts_wal_set_close(ts_wal_set_t *s);

/* Replays one directory, holding its lock meanwhile (TS_ERR_LOCKED). */
int ts_wal_replay_dir(const char *dir, const ts_wal_replay_t *rp,
    ts_wal_replay_stats_t *st, char *err, size_t errlen);


#endif /* TS_WAL_H */
