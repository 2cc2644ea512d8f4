/*
 * Copyright (C) ngx_tsdb authors
 *
 * Write-ahead log.  Format: docs/format/wal.md.
 *
 * Ownership.  A WAL directory <path>/wal/<name> belongs to whoever holds
 * flock(LOCK_EX) on its LOCK file.  A writer holds it for its lifetime;
 * replay holds it while a dead writer's directory is in a ts_wal_set_t.
 * Nobody reads, truncates or deletes a directory without the lock, and
 * the kernel drops the lock when its holder dies, so a SIGKILLed writer's
 * directory becomes claimable at once.  Directories are created as
 * .tmp-<name> with the lock already held and then renamed, so a visible
 * name never exists unlocked while its creator is alive; removal renames
 * to .del-<name> first.  Leftover .tmp- and .del- directories hold no
 * data that is not elsewhere and are deleted by ts_wal_set_open().
 *
 * Writer state.  Records are appended to w->buf and written with one
 * pwrite() per flush at w->off in segment w->seg; w->segfd == -1 means
 * that segment is not created yet (after open it always is; after a cut
 * or a failure it is created by the next flush).  Records never span
 * segments.  Rotated segments keep their descriptor in w->pending until
 * a sync job takes them, so a sync covers every byte written before it.
 * A failed pwrite() abandons the segment (cut back to the last whole
 * record, best effort) and keeps the buffer for the next segment; a
 * failed fsync abandons the segment and never fsyncs it again.
 *
 * Crash at any instruction leaves: a .tmp- directory (deleted later), a
 * directory with no segment or an empty or header-torn last segment, or
 * a last segment whose tail is torn, zero-filled or garbage after power
 * loss; replay reports and cuts such a tail.  Segments are deleted in
 * ascending order, so a crash during truncation leaves a contiguous run.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <snappy-c.h>

#include "ts_crc32c.h"
#include "ts_wal.h"


#define TS_WAL_MAGIC0       'T'
#define TS_WAL_MAGIC1       'S'
#define TS_WAL_MAGIC2       'W'
#define TS_WAL_MAGIC3       'L'

#define TS_WAL_BUF_SIZE     (64 * 1024)
#define TS_WAL_READ_SIZE    (256 * 1024)
#define TS_WAL_SEGNAME_LEN  16
#define TS_WAL_TMP_PREFIX   ".tmp-"
#define TS_WAL_DEL_PREFIX   ".del-"
#define TS_WAL_PREFIX_LEN   5

/* compress payloads of at least this size if it saves 1/16 or more */
#define TS_WAL_SNAPPY_MIN   64


struct ts_wal_s {
    char               *dir;            /* <path>/wal/<name> */
    int                 dirfd;
    int                 lockfd;
    int                 segfd;          /* -1: segment seg not created */
    uint32_t            seg;
    uint32_t            first_seg;      /* lowest segment that may exist */
    uint64_t            off;            /* bytes written to segment seg */
    uint64_t            seg_size;

    uint8_t            *buf;
    size_t              len;
    size_t              cap;
    size_t              rsv;            /* reserved payload bytes */
    int                 rsv_valid;

    int                 snappy;         /* compress records */
    uint8_t            *zbuf;           /* snappy output */
    size_t              zcap;

    int                 pending[TS_WAL_PENDING_MAX];
    uint32_t            pending_seg[TS_WAL_PENDING_MAX];
    int                 npending;
    int                 dir_dirty;      /* a segment was created */
    int                 sync_busy;

    ts_wal_pos_t        written;
    ts_wal_pos_t        synced;
    ts_wal_io_t         io;
    uid_t               uid;
    gid_t               gid;

    int                 sys_errno;
    char                errmsg[TS_WAL_ERR_MAX];
};


typedef struct {
    char               *name;
    int                 lockfd;         /* -1: removed or adopted */
} ts_wal_entry_t;


struct ts_wal_set_s {
    char               *root;           /* <path>/wal */
    int                 rootfd;
    ts_wal_entry_t     *e;
    size_t              n;
    size_t              cap;
    uid_t               uid;
    gid_t               gid;
    char                errmsg[TS_WAL_ERR_MAX];
};


typedef struct {
    int                 fd;
    uint64_t            size;
    uint64_t            base;           /* file offset of buf[0] */
    size_t              len;
    uint8_t            *buf;
    size_t              cap;
} ts_wal_rd_t;


typedef struct {
    const ts_wal_replay_t   *rp;
    ts_wal_replay_stats_t   *st;
    const char              *dir;
    int                      dirfd;
    ts_wal_rd_t              rd;
    unsigned                 version;       /* of the current segment */
    uint8_t                 *zbuf;          /* decompressed payload */
    size_t                   zcap;
    char                    *err;
    size_t                   errlen;
} ts_wal_replayer_t;


static void ts_wal_err(char *buf, size_t size, int err, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));
static void ts_wal_put32(uint8_t *p, uint32_t v);
static uint32_t ts_wal_get32(const uint8_t *p);
static void ts_wal_segname(char *buf, uint32_t seg);
static int ts_wal_parse_segname(const char *name, uint32_t *seg);
static int ts_wal_valid_name(const char *name);
static void ts_wal_seg_header(uint8_t *h, uint32_t seg);
static ssize_t ts_wal_sys_pwrite(int fd, const void *buf, size_t n,
    off_t off);
static int ts_wal_sys_fsync(int fd);
static int ts_wal_chown(int fd, uid_t uid, gid_t gid);
static int ts_wal_lock(int dirfd, const char *dir, const char *sub,
    uid_t uid, gid_t gid, int *lockfd, char *err, size_t errlen);
static int ts_wal_mkdir(int atfd, const char *name, uid_t uid, gid_t gid,
    int *created);
static int ts_wal_open_root(const ts_wal_conf_t *conf, int create,
    int *rootfd, char **root, char *err, size_t errlen);
static int ts_wal_create_dir(int rootfd, const char *root, const char *name,
    uid_t uid, gid_t gid, int *dirfd, int *lockfd, char *err,
    size_t errlen);
static int ts_wal_claim_dir(int rootfd, const char *root, const char *name,
    uid_t uid, gid_t gid, int *dirfd, int *lockfd, char *err,
    size_t errlen);
static int ts_wal_list_segs(int dirfd, uint32_t **segs, size_t *n);
static int ts_wal_conf_name(const ts_wal_conf_t *conf, char *name,
    char *err, size_t errlen);
static int ts_wal_start(ts_wal_t *w, const ts_wal_conf_t *conf);
static int ts_wal_write_all(ts_wal_t *w, int fd, const uint8_t *p,
    size_t n, uint64_t off);
static int ts_wal_seg_create(ts_wal_t *w);
static int ts_wal_pending_push(ts_wal_t *w, int fd, uint32_t seg);
static void ts_wal_abandon(ts_wal_t *w, int fsync_failed);
static int ts_wal_next(ts_wal_t *w);
static int ts_wal_grow(ts_wal_t *w, size_t need);
static uint8_t ts_wal_compress(ts_wal_t *w, uint8_t *p, size_t *len);
static void ts_wal_free(ts_wal_t *w);
static int ts_wal_rmtree(int rootfd, const char *name);
static void ts_wal_set_cleanup(ts_wal_set_t *s, const char *name);
static int ts_wal_set_add(ts_wal_set_t *s, const char *name, int lockfd);
static int ts_wal_set_scan(ts_wal_set_t *s);
static int ts_wal_entry_cmp(const void *a, const void *b);
static int ts_wal_replay_fd(int dirfd, const char *dir,
    const ts_wal_replay_t *rp, ts_wal_replay_stats_t *st, char *err,
    size_t errlen);
static int ts_wal_replay_seg(ts_wal_replayer_t *r, uint32_t seg,
    int last);
static int ts_wal_replay_records(ts_wal_replayer_t *r, uint32_t seg,
    int last);
static int ts_wal_check_header(ts_wal_replayer_t *r, uint32_t seg,
    const char **reason);
static int ts_wal_check_record(ts_wal_replayer_t *r, uint64_t off,
    const uint8_t **h, size_t *len, const char **reason);
static int ts_wal_uncompress(ts_wal_replayer_t *r, ts_wal_rec_t *rec,
    const char **reason);
static void ts_wal_skip(ts_wal_replayer_t *r, uint32_t seg, uint64_t off,
    uint64_t lost, const char *reason);
static void ts_wal_rep_init(ts_wal_replayer_t *r, ts_wal_report_t *rep,
    uint32_t seg, uint64_t off, uint64_t lost, const char *reason);
static int ts_wal_bad(ts_wal_replayer_t *r, uint32_t seg, uint64_t off,
    const char *reason, int last);
static void ts_wal_report(ts_wal_replayer_t *r, ts_wal_report_t *rep);
static int ts_wal_rd_get(ts_wal_replayer_t *r, uint64_t off, size_t n,
    const uint8_t **p);
static int ts_wal_rd_zero(ts_wal_replayer_t *r, uint64_t off, int *zero);


_Static_assert(TS_WAL_PENDING_MAX + 2 <= TS_WAL_SYNC_FDS,
               "a sync job takes pending segments, the current one, a dir");


static const ts_wal_io_t  ts_wal_sys_io = {
    ts_wal_sys_pwrite,
    ts_wal_sys_fsync
};


/* Helpers. */

static void
ts_wal_err(char *buf, size_t size, int err, const char *fmt, ...)
{
    int          n;
    char         eb[128];
    va_list      args;
    const char  *es;

    if (buf == NULL || size == 0) {
        return;
    }

    va_start(args, fmt);
    n = vsnprintf(buf, size, fmt, args);
    va_end(args);

    if (n < 0 || (size_t) n >= size || err == 0) {
        return;
    }

    es = strerror_r(err, eb, sizeof(eb));
    snprintf(buf + n, size - n, " failed (%d: %s)", err, es);
}


static void
ts_wal_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}


static uint32_t
ts_wal_get32(const uint8_t *p)
{
    return (uint32_t) p[0] | (uint32_t) p[1] << 8
           | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}


static void
ts_wal_segname(char *buf, uint32_t seg)
{
    snprintf(buf, TS_WAL_SEGNAME_LEN, "%08" PRIu32 ".wal", seg);
}


/* Accepts only names ts_wal_segname() makes, so 1.wal is not 00000001. */
static int
ts_wal_parse_segname(const char *name, uint32_t *seg)
{
    char                 buf[TS_WAL_SEGNAME_LEN];
    const char          *p;
    unsigned long long   v;

    v = 0;

    for (p = name; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (unsigned) (*p - '0');

        if (v > UINT32_MAX) {
            return 0;
        }
    }

    if (p == name || strcmp(p, ".wal") != 0) {
        return 0;
    }

    ts_wal_segname(buf, (uint32_t) v);

    if (strcmp(buf, name) != 0) {
        return 0;
    }

    *seg = (uint32_t) v;

    return 1;
}


static int
ts_wal_valid_name(const char *name)
{
    size_t       n;
    const char  *p;

    n = strlen(name);

    if (n == 0 || n > TS_WAL_NAME_MAX || name[0] == '.') {
        return 0;
    }

    for (p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'
              || *p == '.'))
        {
            return 0;
        }
    }

    return 1;
}


int
ts_wal_name(char *buf, size_t size, pid_t pid, uint64_t gen)
{
    int  n;

    n = snprintf(buf, size, "w-%ld-%016" PRIx64, (long) pid, gen);

    if (n < 0 || (size_t) n >= size) {
        return TS_ERR_INVALID;
    }

    return TS_OK;
}


static void
ts_wal_seg_header(uint8_t *h, uint32_t seg)
{
    h[0] = TS_WAL_MAGIC0;
    h[1] = TS_WAL_MAGIC1;
    h[2] = TS_WAL_MAGIC2;
    h[3] = TS_WAL_MAGIC3;
    h[4] = TS_WAL_VERSION;
    h[5] = 0;
    h[6] = 0;
    h[7] = 0;
    ts_wal_put32(h + 8, seg);
    ts_wal_put32(h + 12, ts_crc32c(0, h, 12));
}


static ssize_t
ts_wal_sys_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    return pwrite(fd, buf, n, off);
}


static int
ts_wal_sys_fsync(int fd)
{
    return fsync(fd);
}


static int
ts_wal_chown(int fd, uid_t uid, gid_t gid)
{
    if (uid == (uid_t) -1 && gid == (gid_t) -1) {
        return 0;
    }

    return fchown(fd, uid, gid);
}


int
ts_wal_pos_cmp(ts_wal_pos_t a, ts_wal_pos_t b)
{
    if (a.seg != b.seg) {
        return a.seg < b.seg ? -1 : 1;
    }

    if (a.off != b.off) {
        return a.off < b.off ? -1 : 1;
    }

    return 0;
}


/* Directories and locks. */

/* Locks dirfd's LOCK; dir and sub (may be NULL) name it in messages. */
static int
ts_wal_lock(int dirfd, const char *dir, const char *sub, uid_t uid,
    gid_t gid, int *lockfd, char *err, size_t errlen)
{
    int   fd, rc;
    char  path[PATH_MAX];

    snprintf(path, sizeof(path), "%s%s%s", dir, sub ? "/" : "",
             sub ? sub : "");

    fd = openat(dirfd, TS_WAL_LOCK,
                O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

    if (fd == -1 && (errno == EACCES || errno == EROFS)) {
        fd = openat(dirfd, TS_WAL_LOCK, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    }

    if (fd == -1) {
        ts_wal_err(err, errlen, errno, "open() \"%s/" TS_WAL_LOCK "\"",
                   path);
        return TS_ERR_IO;
    }

    do {
        rc = flock(fd, LOCK_EX | LOCK_NB);
    } while (rc == -1 && errno == EINTR);

    if (rc == -1) {
        rc = errno;
        close(fd);

        if (rc == EWOULDBLOCK) {
            ts_wal_err(err, errlen, 0, "\"%s\" is locked by a live process",
                       path);
            return TS_ERR_LOCKED;
        }

        ts_wal_err(err, errlen, rc, "flock() \"%s/" TS_WAL_LOCK "\"", path);
        return TS_ERR_IO;
    }

    if (ts_wal_chown(fd, uid, gid) == -1) {
        ts_wal_err(err, errlen, errno, "fchown() \"%s/" TS_WAL_LOCK "\"",
                   path);
        close(fd);
        return TS_ERR_IO;
    }

    *lockfd = fd;

    return TS_OK;
}


static int
ts_wal_mkdir(int atfd, const char *name, uid_t uid, gid_t gid,
    int *created)
{
    int  fd, e;

    *created = 0;

    if (mkdirat(atfd, name, 0755) == 0) {
        *created = 1;

    } else if (errno != EEXIST) {
        return -1;
    }

    fd = openat(atfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd == -1) {
        return -1;
    }

    if (*created && ts_wal_chown(fd, uid, gid) == -1) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }

    return fd;
}


static int
ts_wal_open_root(const ts_wal_conf_t *conf, int create, int *rootfd,
    char **root, char *err, size_t errlen)
{
    int      fd, created;
    size_t   n;

    if (conf == NULL || conf->path == NULL || conf->path[0] == '\0') {
        ts_wal_err(err, errlen, 0, "wal: no path");
        return TS_ERR_INVALID;
    }

    n = strlen(conf->path) + sizeof("/" TS_WAL_DIR);

    *root = malloc(n);
    if (*root == NULL) {
        return TS_ERR_NOMEM;
    }

    snprintf(*root, n, "%s/" TS_WAL_DIR, conf->path);

    if (create) {
        fd = ts_wal_mkdir(AT_FDCWD, *root, conf->uid, conf->gid, &created);

    } else {
        created = 0;
        fd = open(*root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }

    if (fd == -1) {
        if (!create && errno == ENOENT) {
            *rootfd = -1;
            return TS_OK;
        }

        ts_wal_err(err, errlen, errno, "open() \"%s\"", *root);
        free(*root);
        *root = NULL;
        return TS_ERR_IO;
    }

    /* make the new wal/ entry durable before anything is created in it */

    if (created) {
        int  pfd;

        pfd = open(conf->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd != -1) {
            (void) fsync(pfd);
            close(pfd);
        }
    }

    *rootfd = fd;

    return TS_OK;
}


/*
 * Creates .tmp-<name> with the lock held and renames it to <name>.
 * TS_ERR_EXISTS if <name> appeared meanwhile, TS_ERR_AGAIN if the
 * temporary directory could not be locked.
 */
static int
ts_wal_create_dir(int rootfd, const char *root, const char *name,
    uid_t uid, gid_t gid, int *dirfd, int *lockfd, char *err, size_t errlen)
{
    int   fd, lfd, rc, created;
    char  tmp[TS_WAL_NAME_MAX + TS_WAL_PREFIX_LEN + 1];

    snprintf(tmp, sizeof(tmp), TS_WAL_TMP_PREFIX "%s", name);

    fd = ts_wal_mkdir(rootfd, tmp, uid, gid, &created);
    if (fd == -1) {
        ts_wal_err(err, errlen, errno, "mkdir() \"%s/%s\"", root, tmp);
        return TS_ERR_IO;
    }

    /* a concurrent ts_wal_set_open() may be deleting a stale .tmp- */

    rc = ts_wal_lock(fd, root, tmp, uid, gid, &lfd, err, errlen);
    if (rc != TS_OK) {
        close(fd);
        return TS_ERR_AGAIN;
    }

    if (renameat(rootfd, tmp, rootfd, name) == -1) {
        rc = errno;
        (void) unlinkat(fd, TS_WAL_LOCK, 0);
        (void) unlinkat(rootfd, tmp, AT_REMOVEDIR);
        close(lfd);
        close(fd);

        if (rc == EEXIST || rc == ENOTEMPTY) {
            return TS_ERR_EXISTS;
        }

        ts_wal_err(err, errlen, rc, "rename() \"%s/%s\"", root, tmp);
        return TS_ERR_IO;
    }

    (void) fsync(rootfd);

    *dirfd = fd;
    *lockfd = lfd;

    return TS_OK;
}


static int
ts_wal_claim_dir(int rootfd, const char *root, const char *name,
    uid_t uid, gid_t gid, int *dirfd, int *lockfd, char *err, size_t errlen)
{
    int  fd, rc, attempt;

    for (attempt = 0; attempt < 4; attempt++) {
        fd = openat(rootfd, name,
                    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

        if (fd != -1) {
            rc = ts_wal_lock(fd, root, name, uid, gid, lockfd, err, errlen);
            if (rc != TS_OK) {
                close(fd);
                return rc;
            }

            *dirfd = fd;
            return TS_OK;
        }

        if (errno != ENOENT) {
            ts_wal_err(err, errlen, errno, "open() \"%s/%s\"", root, name);
            return TS_ERR_IO;
        }

        rc = ts_wal_create_dir(rootfd, root, name, uid, gid, dirfd, lockfd,
                               err, errlen);
        if (rc != TS_ERR_EXISTS && rc != TS_ERR_AGAIN) {
            return rc;
        }
    }

    ts_wal_err(err, errlen, 0, "\"%s/%s\" is being created concurrently",
               root, name);

    return TS_ERR_LOCKED;
}


static int
ts_wal_seg_cmp(const void *a, const void *b)
{
    uint32_t  x, y;

    x = *(const uint32_t *) a;
    y = *(const uint32_t *) b;

    return (x > y) - (x < y);
}


/* Sorted segment numbers of a directory; *segs is malloc()ed. */
static int
ts_wal_list_segs(int dirfd, uint32_t **segs, size_t *n)
{
    int             fd;
    DIR            *d;
    size_t          cap;
    uint32_t        seg, *a, *na;
    struct dirent  *de;

    fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
        return TS_ERR_IO;
    }

    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return TS_ERR_IO;
    }

    a = NULL;
    cap = 0;
    *n = 0;

    while ((de = readdir(d)) != NULL) {
        if (!ts_wal_parse_segname(de->d_name, &seg)) {
            continue;
        }

        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            na = realloc(a, cap * sizeof(uint32_t));
            if (na == NULL) {
                free(a);
                closedir(d);
                return TS_ERR_NOMEM;
            }
            a = na;
        }

        a[(*n)++] = seg;
    }

    closedir(d);

    if (*n > 1) {
        qsort(a, *n, sizeof(uint32_t), ts_wal_seg_cmp);
    }

    *segs = a;

    return TS_OK;
}


/* Writer. */

int
ts_wal_open(ts_wal_t **wp, const ts_wal_conf_t *conf, char *err,
    size_t errlen)
{
    int        rc, rootfd, dirfd, lockfd;
    char      *root, name[TS_WAL_NAME_MAX + 1];
    ts_wal_t  *w;

    *wp = NULL;

    rc = ts_wal_conf_name(conf, name, err, errlen);
    if (rc != TS_OK) {
        return rc;
    }

    rc = ts_wal_open_root(conf, 1, &rootfd, &root, err, errlen);
    if (rc != TS_OK) {
        return rc;
    }

    rc = ts_wal_claim_dir(rootfd, root, name, conf->uid, conf->gid, &dirfd,
                          &lockfd, err, errlen);
    close(rootfd);

    if (rc != TS_OK) {
        free(root);
        return rc;
    }

    w = calloc(1, sizeof(ts_wal_t));
    if (w == NULL) {
        rc = TS_ERR_NOMEM;
        goto failed;
    }

    w->dirfd = dirfd;
    w->lockfd = lockfd;
    w->dir = malloc(strlen(root) + strlen(name) + 2);

    if (w->dir == NULL) {
        free(w);
        rc = TS_ERR_NOMEM;
        goto failed;
    }

    sprintf(w->dir, "%s/%s", root, name);
    free(root);

    rc = ts_wal_start(w, conf);
    if (rc != TS_OK) {
        ts_wal_err(err, errlen, 0, "%s", w->errmsg);
        ts_wal_free(w);
        return rc;
    }

    *wp = w;

    return TS_OK;

failed:

    close(dirfd);
    close(lockfd);
    free(root);

    return rc;
}


static int
ts_wal_conf_name(const ts_wal_conf_t *conf, char *name, char *err,
    size_t errlen)
{
    struct timespec  ts;

    if (conf->name == NULL) {
        clock_gettime(CLOCK_REALTIME, &ts);

        return ts_wal_name(name, TS_WAL_NAME_MAX + 1, getpid(),
                           (uint64_t) ts.tv_sec * 1000000000
                           + (uint64_t) ts.tv_nsec);
    }

    if (!ts_wal_valid_name(conf->name)) {
        ts_wal_err(err, errlen, 0, "wal: invalid name \"%s\"", conf->name);
        return TS_ERR_INVALID;
    }

    memcpy(name, conf->name, strlen(conf->name) + 1);

    return TS_OK;
}


/* Sets a writer up on a claimed directory: w->dir, dirfd, lockfd. */
static int
ts_wal_start(ts_wal_t *w, const ts_wal_conf_t *conf)
{
    int        rc, i;
    size_t     n;
    uint32_t  *segs;

    w->segfd = -1;
    w->seg_size = conf->segment_size ? conf->segment_size
                                     : TS_WAL_SEGMENT_SIZE;
    w->io = conf->io ? *conf->io : ts_wal_sys_io;
    w->uid = conf->uid;
    w->gid = conf->gid;
    w->snappy = !(conf->flags & TS_WAL_NO_SNAPPY);

    for (i = 0; i < TS_WAL_PENDING_MAX; i++) {
        w->pending[i] = -1;
    }

    if (w->seg_size < TS_WAL_SEGMENT_MIN) {
        ts_wal_err(w->errmsg, sizeof(w->errmsg), 0,
                   "wal: segment size %" PRIu64 " is below %d",
                   w->seg_size, TS_WAL_SEGMENT_MIN);
        return TS_ERR_INVALID;
    }

    rc = ts_wal_list_segs(w->dirfd, &segs, &n);
    if (rc != TS_OK) {
        ts_wal_err(w->errmsg, sizeof(w->errmsg), errno, "opendir() \"%s\"",
                   w->dir);
        return rc;
    }

    if (n && segs[n - 1] == UINT32_MAX) {
        free(segs);
        ts_wal_err(w->errmsg, sizeof(w->errmsg), 0,
                   "wal: \"%s\" ran out of segment numbers", w->dir);
        return TS_ERR_FULL;
    }

    w->seg = n ? segs[n - 1] + 1 : 1;
    w->first_seg = n ? segs[0] : w->seg;
    free(segs);

    w->cap = conf->buffer_size ? conf->buffer_size : TS_WAL_BUF_SIZE;
    w->buf = malloc(w->cap);
    if (w->buf == NULL) {
        return TS_ERR_NOMEM;
    }

    w->off = TS_WAL_SEG_HDR;
    w->synced.seg = w->seg;
    w->synced.off = 0;
    w->written = w->synced;

    return ts_wal_seg_create(w);
}


static int
ts_wal_write_all(ts_wal_t *w, int fd, const uint8_t *p, size_t n,
    uint64_t off)
{
    ssize_t  r;

    while (n) {
        r = w->io.pwrite(fd, p, n, (off_t) off);

        if (r == -1 && errno == EINTR) {
            continue;
        }

        if (r <= 0) {
            return r == 0 ? ENOSPC : errno;
        }

        p += r;
        n -= (size_t) r;
        off += (uint64_t) r;
    }

    return 0;
}


static int
ts_wal_seg_create(ts_wal_t *w)
{
    int      fd, e;
    char     name[TS_WAL_SEGNAME_LEN];
    uint8_t  h[TS_WAL_SEG_HDR];

    ts_wal_segname(name, w->seg);

    fd = openat(w->dirfd, name,
                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd == -1) {
        e = errno;
        goto failed;
    }

    if (ts_wal_chown(fd, w->uid, w->gid) == -1) {
        e = errno;
        goto failed;
    }

    ts_wal_seg_header(h, w->seg);

    e = ts_wal_write_all(w, fd, h, sizeof(h), 0);
    if (e) {
        goto failed;
    }

    w->segfd = fd;
    w->off = TS_WAL_SEG_HDR;
    w->written.seg = w->seg;
    w->written.off = TS_WAL_SEG_HDR;
    w->dir_dirty = 1;

    return TS_OK;

failed:

    /* a number whose file is gone can be reused; else move past it */

    if (fd != -1) {
        close(fd);

        if (unlinkat(w->dirfd, name, 0) == -1 && w->seg < UINT32_MAX) {
            w->seg++;
        }
    }

    w->sys_errno = e;
    ts_wal_err(w->errmsg, sizeof(w->errmsg), e, "creating \"%s/%s\"",
               w->dir, name);

    return TS_ERR_IO;
}


/* Keeps a rotated segment's descriptor for the next sync job. */
static int
ts_wal_pending_push(ts_wal_t *w, int fd, uint32_t seg)
{
    int   i, rc, e;
    char  name[TS_WAL_SEGNAME_LEN];

    rc = TS_OK;

    if (w->npending == TS_WAL_PENDING_MAX) {
        if (w->io.fsync(w->pending[0]) == -1) {
            e = errno;
            ts_wal_segname(name, w->pending_seg[0]);
            w->sys_errno = e;
            ts_wal_err(w->errmsg, sizeof(w->errmsg), e,
                       "fsync() \"%s/%s\"", w->dir, name);
            rc = TS_ERR_IO;
        }

        close(w->pending[0]);

        for (i = 1; i < w->npending; i++) {
            w->pending[i - 1] = w->pending[i];
            w->pending_seg[i - 1] = w->pending_seg[i];
        }

        w->npending--;
    }

    w->pending[w->npending] = fd;
    w->pending_seg[w->npending] = seg;
    w->npending++;

    return rc;
}


/*
 * Gives up the current segment.  After a failed write the segment is cut
 * back to its last whole record and kept for a later fsync of what was
 * written before; after a failed fsync it is closed for good.
 */
static void
ts_wal_abandon(ts_wal_t *w, int fsync_failed)
{
    int  fd;

    fd = w->segfd;

    if (fd != -1) {
        w->segfd = -1;

        if (fsync_failed) {
            close(fd);

        } else {
            if (ftruncate(fd, (off_t) w->off) != 0) {
                /* best effort, the first error stays reported: replay
                 * cuts the torn tail anyway */
            }

            (void) ts_wal_pending_push(w, fd, w->seg);
        }
    }

    if (w->seg < UINT32_MAX) {
        w->seg++;
    }

    w->off = TS_WAL_SEG_HDR;
}


/* Closes the current segment; the next flush creates seg + 1. */
static int
ts_wal_next(ts_wal_t *w)
{
    int  rc, fd;

    if (w->seg == UINT32_MAX) {
        ts_wal_err(w->errmsg, sizeof(w->errmsg), 0,
                   "wal: \"%s\" ran out of segment numbers", w->dir);
        return TS_ERR_FULL;
    }

    rc = TS_OK;
    fd = w->segfd;

    if (fd != -1) {
        w->segfd = -1;
        rc = ts_wal_pending_push(w, fd, w->seg);
    }

    w->seg++;
    w->off = TS_WAL_SEG_HDR;

    return rc;
}


static int
ts_wal_grow(ts_wal_t *w, size_t need)
{
    size_t    cap;
    uint8_t  *p;

    if (need <= w->cap) {
        return TS_OK;
    }

    cap = w->cap ? w->cap : TS_WAL_BUF_SIZE;

    while (cap < need) {
        cap *= 2;
    }

    p = realloc(w->buf, cap);
    if (p == NULL) {
        ts_wal_err(w->errmsg, sizeof(w->errmsg), ENOMEM,
                   "wal: buffer of %zu bytes", cap);
        return TS_ERR_NOMEM;
    }

    w->buf = p;
    w->cap = cap;

    return TS_OK;
}


int
ts_wal_reserve(ts_wal_t *w, size_t len, uint8_t **payload)
{
    int       rc;
    uint64_t  used;

    w->rsv_valid = 0;

    if (len > TS_WAL_RECORD_MAX) {
        ts_wal_err(w->errmsg, sizeof(w->errmsg), 0,
                   "wal: record of %zu bytes is over the limit of %u",
                   len, TS_WAL_RECORD_MAX);
        return TS_ERR_LIMIT;
    }

    used = w->off + w->len;

    if (used > TS_WAL_SEG_HDR
        && used + TS_WAL_REC_HDR + len > w->seg_size)
    {
        rc = ts_wal_flush(w);
        if (rc != TS_OK) {
            return rc;
        }

        rc = ts_wal_next(w);
        if (rc != TS_OK) {
            return rc;
        }
    }

    rc = ts_wal_grow(w, w->len + TS_WAL_REC_HDR + len);
    if (rc != TS_OK) {
        return rc;
    }

    *payload = w->buf + w->len + TS_WAL_REC_HDR;
    w->rsv = len;
    w->rsv_valid = 1;

    return TS_OK;
}


int
ts_wal_commit(ts_wal_t *w, uint8_t type, size_t len, ts_wal_pos_t *pos)
{
    uint8_t   *h, flags;
    uint32_t   crc;

    if (!w->rsv_valid || len > w->rsv || type == 0) {
        w->rsv_valid = 0;
        return TS_ERR_INVALID;
    }

    w->rsv_valid = 0;

    h = w->buf + w->len;
    flags = ts_wal_compress(w, h + TS_WAL_REC_HDR, &len);

    /* the checksum covers the bytes as stored, compressed or not */

    h[0] = type;
    h[1] = flags;
    ts_wal_put32(h + 2, (uint32_t) len);

    crc = ts_crc32c(0, h, 6);
    crc = ts_crc32c(crc, h + TS_WAL_REC_HDR, len);
    ts_wal_put32(h + 6, crc);

    w->len += TS_WAL_REC_HDR + len;

    if (pos) {
        pos->seg = w->seg;
        pos->off = w->off + w->len;
    }

    return TS_OK;
}


/*
 * Replaces the payload at p with its snappy form when that is at least a
 * sixteenth smaller and returns the record flags for it.  Compression
 * only saves space: without memory for it the record is stored as is.
 */
static uint8_t
ts_wal_compress(ts_wal_t *w, uint8_t *p, size_t *len)
{
    size_t  need, zlen;

    if (!w->snappy || *len < TS_WAL_SNAPPY_MIN) {
        return 0;
    }

    need = snappy_max_compressed_length(*len);

    if (need > w->zcap) {
        need = need > 2 * w->zcap ? need : 2 * w->zcap;
        free(w->zbuf);
        w->zcap = 0;

        w->zbuf = malloc(need);
        if (w->zbuf == NULL) {
            return 0;
        }

        w->zcap = need;
    }

    zlen = w->zcap;

    if (snappy_compress((const char *) p, *len, (char *) w->zbuf, &zlen)
        != SNAPPY_OK
        || zlen > *len - *len / 16)
    {
        return 0;
    }

    memcpy(p, w->zbuf, zlen);
    *len = zlen;

    return TS_WAL_REC_SNAPPY;
}


int
ts_wal_append(ts_wal_t *w, uint8_t type, const void *payload, size_t len,
    ts_wal_pos_t *pos)
{
    int       rc;
    uint8_t  *p;

    if (type == 0) {
        return TS_ERR_INVALID;
    }

    rc = ts_wal_reserve(w, len, &p);
    if (rc != TS_OK) {
        return rc;
    }

    if (len) {
        memcpy(p, payload, len);
    }

    return ts_wal_commit(w, type, len, pos);
}


int
ts_wal_flush(ts_wal_t *w)
{
    int  rc, e;
    char name[TS_WAL_SEGNAME_LEN];

    if (w->len == 0) {
        return TS_OK;
    }

    if (w->segfd == -1) {
        rc = ts_wal_seg_create(w);
        if (rc != TS_OK) {
            return rc;
        }
    }

    e = ts_wal_write_all(w, w->segfd, w->buf, w->len, w->off);

    if (e) {
        ts_wal_segname(name, w->seg);
        w->sys_errno = e;
        ts_wal_err(w->errmsg, sizeof(w->errmsg), e, "pwrite() \"%s/%s\"",
                   w->dir, name);
        ts_wal_abandon(w, 0);
        return TS_ERR_IO;
    }

    w->off += w->len;
    w->len = 0;
    w->written.seg = w->seg;
    w->written.off = w->off;

    return TS_OK;
}


int
ts_wal_sync_begin(ts_wal_t *w, ts_wal_sync_t *job)
{
    int  i, fd, dfd;

    job->n = 0;
    job->failed = -1;
    job->sys_errno = 0;
    job->fsync = w->io.fsync;
    job->target = w->written;

    if (w->sync_busy) {
        return TS_ERR_AGAIN;
    }

    fd = -1;
    dfd = -1;

    if (w->segfd != -1 && ts_wal_pos_cmp(w->written, w->synced) > 0) {
        fd = fcntl(w->segfd, F_DUPFD_CLOEXEC, 0);
        if (fd == -1) {
            goto failed;
        }
    }

    if (w->dir_dirty) {
        dfd = fcntl(w->dirfd, F_DUPFD_CLOEXEC, 0);
        if (dfd == -1) {
            goto failed;
        }
    }

    for (i = 0; i < w->npending; i++) {
        job->fd[job->n] = w->pending[i];
        job->seg[job->n++] = w->pending_seg[i];
        w->pending[i] = -1;
    }

    w->npending = 0;

    if (fd != -1) {
        job->fd[job->n] = fd;
        job->seg[job->n++] = w->seg;
    }

    if (dfd != -1) {
        job->fd[job->n] = dfd;
        job->seg[job->n++] = 0;
        w->dir_dirty = 0;
    }

    w->sync_busy = job->n > 0;

    return TS_OK;

failed:

    w->sys_errno = errno;
    ts_wal_err(w->errmsg, sizeof(w->errmsg), errno, "dup() in \"%s\"",
               w->dir);

    if (fd != -1) {
        close(fd);
    }

    return TS_ERR_IO;
}


void
ts_wal_sync_run(ts_wal_sync_t *job)
{
    int  i;

    /* never retried: after a failure the kernel may have dropped pages */

    for (i = 0; i < job->n; i++) {
        if (job->fsync(job->fd[i]) == -1 && job->failed == -1) {
            job->failed = i;
            job->sys_errno = errno;
        }

        close(job->fd[i]);
        job->fd[i] = -1;
    }
}


int
ts_wal_sync_end(ts_wal_t *w, ts_wal_sync_t *job)
{
    char      name[TS_WAL_SEGNAME_LEN];
    uint32_t  seg;

    if (job->n == 0) {
        return TS_OK;
    }

    w->sync_busy = 0;

    if (job->failed == -1) {
        if (ts_wal_pos_cmp(job->target, w->synced) > 0) {
            w->synced = job->target;
        }

        return TS_OK;
    }

    seg = job->seg[job->failed];

    if (seg) {
        ts_wal_segname(name, seg);

    } else {
        snprintf(name, sizeof(name), ".");
        w->dir_dirty = 1;
    }

    w->sys_errno = job->sys_errno;
    ts_wal_err(w->errmsg, sizeof(w->errmsg), job->sys_errno,
               "fsync() \"%s/%s\"", w->dir, name);

    if (w->segfd != -1 && w->seg == job->target.seg) {
        ts_wal_abandon(w, 1);
    }

    return TS_ERR_IO;
}


int
ts_wal_sync(ts_wal_t *w)
{
    int            rc;
    ts_wal_sync_t  job;

    rc = ts_wal_flush(w);
    if (rc != TS_OK) {
        return rc;
    }

    rc = ts_wal_sync_begin(w, &job);
    if (rc != TS_OK) {
        return rc;
    }

    ts_wal_sync_run(&job);

    return ts_wal_sync_end(w, &job);
}


ts_wal_pos_t
ts_wal_pos(const ts_wal_t *w)
{
    ts_wal_pos_t  pos;

    pos.seg = w->seg;
    pos.off = w->off + w->len;

    return pos;
}


ts_wal_pos_t
ts_wal_written(const ts_wal_t *w)
{
    return w->written;
}


ts_wal_pos_t
ts_wal_synced(const ts_wal_t *w)
{
    return w->synced;
}


int
ts_wal_cut(ts_wal_t *w)
{
    int  rc;

    rc = ts_wal_flush(w);
    if (rc != TS_OK) {
        return rc;
    }

    if (w->segfd == -1 || w->off == TS_WAL_SEG_HDR) {
        return TS_OK;
    }

    return ts_wal_next(w);
}


int
ts_wal_truncate_before(ts_wal_t *w, uint32_t seg)
{
    int   i, j;
    char  name[TS_WAL_SEGNAME_LEN];

    if (seg > w->seg) {
        seg = w->seg;
    }

    while (w->first_seg < seg) {
        for (i = 0; i < w->npending; i++) {
            if (w->pending_seg[i] == w->first_seg) {
                close(w->pending[i]);

                for (j = i + 1; j < w->npending; j++) {
                    w->pending[j - 1] = w->pending[j];
                    w->pending_seg[j - 1] = w->pending_seg[j];
                }

                w->npending--;
                break;
            }
        }

        ts_wal_segname(name, w->first_seg);

        if (unlinkat(w->dirfd, name, 0) == -1 && errno != ENOENT) {
            w->sys_errno = errno;
            ts_wal_err(w->errmsg, sizeof(w->errmsg), errno,
                       "unlink() \"%s/%s\"", w->dir, name);
            return TS_ERR_IO;
        }

        w->first_seg++;
    }

    return TS_OK;
}


static void
ts_wal_free(ts_wal_t *w)
{
    int  i;

    for (i = 0; i < w->npending; i++) {
        close(w->pending[i]);
    }

    if (w->segfd != -1) {
        close(w->segfd);
    }

    close(w->dirfd);
    close(w->lockfd);
    free(w->buf);
    free(w->zbuf);
    free(w->dir);
    free(w);
}


int
ts_wal_close(ts_wal_t *w)
{
    int  rc;

    if (w == NULL) {
        return TS_OK;
    }

    rc = ts_wal_flush(w);
    ts_wal_free(w);

    return rc;
}


const char *
ts_wal_dir(const ts_wal_t *w)
{
    return w->dir;
}


const char *
ts_wal_errmsg(const ts_wal_t *w)
{
    return w->errmsg;
}


int
ts_wal_errno(const ts_wal_t *w)
{
    return w->sys_errno;
}


/* Sets of dead writers' directories. */

/* Deletes every file of rootfd/name, then the directory itself. */
static int
ts_wal_rmtree(int rootfd, const char *name)
{
    int             fd, rc;
    DIR            *d;
    struct dirent  *de;

    fd = openat(rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC
                              | O_NOFOLLOW);
    if (fd == -1) {
        return errno == ENOENT ? 0 : -1;
    }

    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }

    rc = 0;

    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }

        if (unlinkat(dirfd(d), de->d_name, 0) == -1 && errno != ENOENT) {
            rc = -1;
        }
    }

    closedir(d);

    if (rc == 0 && unlinkat(rootfd, name, AT_REMOVEDIR) == -1) {
        rc = -1;
    }

    return rc;
}


static void
ts_wal_set_cleanup(ts_wal_set_t *s, const char *name)
{
    int  fd, lfd;

    fd = openat(s->rootfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC
                                 | O_NOFOLLOW);
    if (fd == -1) {
        return;
    }

    if (ts_wal_lock(fd, s->root, name, (uid_t) -1, (gid_t) -1, &lfd, NULL,
                    0) == TS_OK)
    {
        (void) ts_wal_rmtree(s->rootfd, name);
        close(lfd);
    }

    close(fd);
}


static int
ts_wal_set_add(ts_wal_set_t *s, const char *name, int lockfd)
{
    size_t           cap;
    ts_wal_entry_t  *e;

    if (s->n == s->cap) {
        cap = s->cap ? s->cap * 2 : 8;
        e = realloc(s->e, cap * sizeof(ts_wal_entry_t));
        if (e == NULL) {
            return TS_ERR_NOMEM;
        }

        s->e = e;
        s->cap = cap;
    }

    s->e[s->n].name = strdup(name);
    if (s->e[s->n].name == NULL) {
        return TS_ERR_NOMEM;
    }

    s->e[s->n].lockfd = lockfd;
    s->n++;

    return TS_OK;
}


static int
ts_wal_set_scan(ts_wal_set_t *s)
{
    int             fd, lfd, rc;
    DIR            *d;
    char            err[TS_WAL_ERR_MAX];
    struct dirent  *de;
    struct stat     sb;

    fd = fcntl(s->rootfd, F_DUPFD_CLOEXEC, 0);
    if (fd == -1 || (d = fdopendir(fd)) == NULL) {
        ts_wal_err(s->errmsg, sizeof(s->errmsg), errno, "opendir() \"%s\"",
                   s->root);
        if (fd != -1) {
            close(fd);
        }
        return TS_ERR_IO;
    }

    rc = TS_OK;

    while (rc == TS_OK && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, TS_WAL_TMP_PREFIX, TS_WAL_PREFIX_LEN) == 0
            || strncmp(de->d_name, TS_WAL_DEL_PREFIX, TS_WAL_PREFIX_LEN) == 0)
        {
            ts_wal_set_cleanup(s, de->d_name);
            continue;
        }

        if (de->d_name[0] == '.'
            || fstatat(s->rootfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1
            || !S_ISDIR(sb.st_mode))
        {
            continue;
        }

        fd = openat(s->rootfd, de->d_name,
                    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd == -1) {
            continue;
        }

        /* live writers are skipped; unclaimable ones leave a message */

        rc = ts_wal_lock(fd, s->root, de->d_name, s->uid, s->gid, &lfd, err,
                         sizeof(err));
        close(fd);

        if (rc != TS_OK) {
            if (rc != TS_ERR_LOCKED) {
                memcpy(s->errmsg, err, sizeof(err));
            }

            rc = TS_OK;
            continue;
        }

        rc = ts_wal_set_add(s, de->d_name, lfd);
        if (rc != TS_OK) {
            close(lfd);
        }
    }

    closedir(d);

    return rc;
}


static int
ts_wal_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const ts_wal_entry_t *) a)->name,
                  ((const ts_wal_entry_t *) b)->name);
}


int
ts_wal_set_open(ts_wal_set_t **sp, const ts_wal_conf_t *conf, char *err,
    size_t errlen)
{
    int            rc;
    ts_wal_set_t  *s;

    *sp = NULL;

    s = calloc(1, sizeof(ts_wal_set_t));
    if (s == NULL) {
        return TS_ERR_NOMEM;
    }

    s->uid = conf->uid;
    s->gid = conf->gid;

    rc = ts_wal_open_root(conf, 0, &s->rootfd, &s->root, err, errlen);
    if (rc != TS_OK) {
        free(s);
        return rc;
    }

    if (s->rootfd != -1) {
        rc = ts_wal_set_scan(s);
        if (rc != TS_OK) {
            ts_wal_err(err, errlen, 0, "%s", s->errmsg);
            ts_wal_set_close(s);
            return rc;
        }
    }

    if (s->n > 1) {
        qsort(s->e, s->n, sizeof(ts_wal_entry_t), ts_wal_entry_cmp);
    }

    *sp = s;

    return TS_OK;
}


size_t
ts_wal_set_size(const ts_wal_set_t *s)
{
    return s->n;
}


const char *
ts_wal_set_name(const ts_wal_set_t *s, size_t i)
{
    return i < s->n ? s->e[i].name : NULL;
}


const char *
ts_wal_set_errmsg(const ts_wal_set_t *s)
{
    return s->errmsg;
}


int
ts_wal_set_replay(ts_wal_set_t *s, size_t i, const ts_wal_replay_t *rp,
    ts_wal_replay_stats_t *st)
{
    int    fd, rc;
    char  *dir;

    if (i >= s->n || s->e[i].lockfd == -1) {
        return TS_ERR_INVALID;
    }

    dir = malloc(strlen(s->root) + strlen(s->e[i].name) + 2);
    if (dir == NULL) {
        return TS_ERR_NOMEM;
    }

    sprintf(dir, "%s/%s", s->root, s->e[i].name);

    fd = openat(s->rootfd, s->e[i].name,
                O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd == -1) {
        ts_wal_err(s->errmsg, sizeof(s->errmsg), errno, "open() \"%s\"",
                   dir);
        free(dir);
        return TS_ERR_IO;
    }

    rc = ts_wal_replay_fd(fd, dir, rp, st, s->errmsg, sizeof(s->errmsg));

    close(fd);
    free(dir);

    return rc;
}


int
ts_wal_set_remove(ts_wal_set_t *s, size_t i)
{
    char  del[TS_WAL_NAME_MAX + TS_WAL_PREFIX_LEN + 1];
    const char  *name;

    if (i >= s->n || s->e[i].lockfd == -1) {
        return TS_ERR_INVALID;
    }

    name = s->e[i].name;

    if (strlen(name) <= TS_WAL_NAME_MAX) {
        snprintf(del, sizeof(del), TS_WAL_DEL_PREFIX "%s", name);

        if (renameat(s->rootfd, name, s->rootfd, del) == 0) {
            name = del;
        }
    }

    if (ts_wal_rmtree(s->rootfd, name) == -1) {
        ts_wal_err(s->errmsg, sizeof(s->errmsg), errno,
                   "removing \"%s/%s\"", s->root, name);
        return TS_ERR_IO;
    }

    (void) fsync(s->rootfd);

    close(s->e[i].lockfd);
    s->e[i].lockfd = -1;

    return TS_OK;
}


int
ts_wal_set_adopt(ts_wal_set_t *s, size_t i, ts_wal_t **wp,
    const ts_wal_conf_t *conf, char *err, size_t errlen)
{
    int        rc, fd;
    char       name[TS_WAL_NAME_MAX + 1];
    ts_wal_t  *w;

    *wp = NULL;

    if (i >= s->n || s->e[i].lockfd == -1 || s->rootfd == -1) {
        return TS_ERR_INVALID;
    }

    rc = ts_wal_conf_name(conf, name, err, errlen);
    if (rc != TS_OK) {
        return rc;
    }

    if (strcmp(name, s->e[i].name) != 0) {
        rc = renameat2(s->rootfd, s->e[i].name, s->rootfd, name,
                       RENAME_NOREPLACE);

        if (rc == -1 && errno == EINVAL) {
            rc = renameat(s->rootfd, s->e[i].name, s->rootfd, name);
        }

        if (rc == -1) {
            rc = errno;
            ts_wal_err(err, errlen, rc, "rename() \"%s/%s\"", s->root,
                       s->e[i].name);
            return rc == EEXIST || rc == ENOTEMPTY ? TS_ERR_EXISTS
                                                   : TS_ERR_IO;
        }

        (void) fsync(s->rootfd);
    }

    fd = openat(s->rootfd, name,
                O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd == -1) {
        ts_wal_err(err, errlen, errno, "open() \"%s/%s\"", s->root, name);
        return TS_ERR_IO;
    }

    w = calloc(1, sizeof(ts_wal_t));
    if (w == NULL
        || (w->dir = malloc(strlen(s->root) + strlen(name) + 2)) == NULL)
    {
        free(w);
        close(fd);
        return TS_ERR_NOMEM;
    }

    sprintf(w->dir, "%s/%s", s->root, name);
    w->dirfd = fd;
    w->lockfd = s->e[i].lockfd;
    s->e[i].lockfd = -1;

    rc = ts_wal_start(w, conf);
    if (rc != TS_OK) {
        ts_wal_err(err, errlen, 0, "%s", w->errmsg);
        ts_wal_free(w);
        return rc;
    }

    *wp = w;

    return TS_OK;
}


void
ts_wal_set_close(ts_wal_set_t *s)
{
    size_t  i;

    if (s == NULL) {
        return;
    }

    for (i = 0; i < s->n; i++) {
        if (s->e[i].lockfd != -1) {
            close(s->e[i].lockfd);
        }

        free(s->e[i].name);
    }

    if (s->rootfd != -1) {
        close(s->rootfd);
    }

    free(s->e);
    free(s->root);
    free(s);
}


int
ts_wal_replay_dir(const char *dir, const ts_wal_replay_t *rp,
    ts_wal_replay_stats_t *st, char *err, size_t errlen)
{
    int  fd, lfd, rc;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1) {
        ts_wal_err(err, errlen, errno, "open() \"%s\"", dir);
        return TS_ERR_IO;
    }

    rc = ts_wal_lock(fd, dir, NULL, (uid_t) -1, (gid_t) -1, &lfd, err,
                     errlen);
    if (rc != TS_OK) {
        close(fd);
        return rc;
    }

    rc = ts_wal_replay_fd(fd, dir, rp, st, err, errlen);

    close(lfd);
    close(fd);

    return rc;
}


/* Replay. */

static int
ts_wal_replay_fd(int dirfd, const char *dir, const ts_wal_replay_t *rp,
    ts_wal_replay_stats_t *st, char *err, size_t errlen)
{
    int                 rc;
    size_t              i, n;
    uint32_t           *segs;
    ts_wal_replayer_t   r;

    rc = ts_wal_list_segs(dirfd, &segs, &n);
    if (rc != TS_OK) {
        ts_wal_err(err, errlen, errno, "opendir() \"%s\"", dir);
        return rc;
    }

    memset(&r, 0, sizeof(r));
    r.rp = rp;
    r.st = st;
    r.dir = dir;
    r.dirfd = dirfd;
    r.rd.fd = -1;
    r.err = err;
    r.errlen = errlen;

    for (i = 0; i < n && rc == TS_OK; i++) {
        if (i && segs[i] != segs[i - 1] + 1) {
            rc = ts_wal_bad(&r, segs[i - 1] + 1, 0, "missing segment", 0);
            if (rc != TS_OK) {
                break;
            }
        }

        rc = ts_wal_replay_seg(&r, segs[i], i == n - 1);
    }

    free(r.rd.buf);
    free(r.zbuf);
    free(segs);

    return rc;
}


static int
ts_wal_replay_seg(ts_wal_replayer_t *r, uint32_t seg, int last)
{
    int           rc;
    char          name[TS_WAL_SEGNAME_LEN];
    const char   *reason;
    struct stat   sb;

    ts_wal_segname(name, seg);

    r->rd.fd = openat(r->dirfd, name,
                      O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

    if (r->rd.fd == -1 || fstat(r->rd.fd, &sb) == -1) {
        ts_wal_err(r->err, r->errlen, errno, "open() \"%s/%s\"", r->dir,
                   name);
        rc = TS_ERR_IO;
        goto done;
    }

    if (r->st->segments++ == 0) {
        r->st->first_seg = seg;
    }

    r->st->last_seg = seg;
    r->rd.size = S_ISREG(sb.st_mode) ? (uint64_t) sb.st_size : 0;
    r->rd.base = 0;
    r->rd.len = 0;

    if (r->rd.size == 0) {
        rc = TS_OK;
        goto done;
    }

    rc = ts_wal_check_header(r, seg, &reason);

    if (rc == TS_OK && reason == NULL) {
        rc = ts_wal_replay_records(r, seg, last);

    } else if (rc == TS_OK) {
        rc = ts_wal_bad(r, seg, 0, reason, last);

    } else if (rc == TS_ERR_VERSION) {
        (void) ts_wal_bad(r, seg, 0, reason, 0);
        ts_wal_err(r->err, r->errlen, 0,
                   "wal: \"%s/%s\" has an unsupported format version",
                   r->dir, name);
    }

done:

    if (r->rd.fd != -1) {
        close(r->rd.fd);
        r->rd.fd = -1;
    }

    return rc;
}


/* *reason is NULL for a good header; TS_ERR_VERSION stops the replay. */
static int
ts_wal_check_header(ts_wal_replayer_t *r, uint32_t seg,
    const char **reason)
{
    int             rc, zero;
    const uint8_t  *h;

    *reason = NULL;

    if (r->rd.size < TS_WAL_SEG_HDR) {
        rc = ts_wal_rd_zero(r, 0, &zero);
        *reason = zero ? "zero-filled segment header"
                       : "torn segment header";
        return rc;
    }

    rc = ts_wal_rd_get(r, 0, TS_WAL_SEG_HDR, &h);
    if (rc != TS_OK) {
        return rc;
    }

    if (ts_crc32c(0, h, 12) != ts_wal_get32(h + 12)) {
        rc = ts_wal_rd_zero(r, 0, &zero);
        *reason = zero ? "zero-filled segment header"
                       : "segment header checksum mismatch";
        return rc;
    }

    if (h[0] != TS_WAL_MAGIC0 || h[1] != TS_WAL_MAGIC1
        || h[2] != TS_WAL_MAGIC2 || h[3] != TS_WAL_MAGIC3)
    {
        *reason = "bad segment magic";
        return TS_OK;
    }

    if (h[4] < TS_WAL_VERSION_MIN || h[4] > TS_WAL_VERSION
        || h[5] || h[6] || h[7])
    {
        *reason = "unsupported segment version";
        return TS_ERR_VERSION;
    }

    r->version = h[4];

    if (ts_wal_get32(h + 8) != seg) {
        *reason = "segment number mismatch";
    }

    return TS_OK;
}


static int
ts_wal_replay_records(ts_wal_replayer_t *r, uint32_t seg, int last)
{
    int             rc;
    size_t          len;
    uint64_t        off;
    const char     *reason;
    ts_wal_rec_t    rec;
    const uint8_t  *h;

    off = TS_WAL_SEG_HDR;

    while (off < r->rd.size) {
        rc = ts_wal_check_record(r, off, &h, &len, &reason);
        if (rc != TS_OK) {
            return rc;
        }

        if (reason) {
            return ts_wal_bad(r, seg, off, reason, last);
        }

        rec.type = h[0];
        rec.flags = h[1];
        rec.payload = h + TS_WAL_REC_HDR;
        rec.len = len;
        rec.stored = len;
        rec.seg = seg;
        rec.off = off;
        off += TS_WAL_REC_HDR + len;

        if (rec.flags & TS_WAL_REC_SNAPPY) {
            rc = ts_wal_uncompress(r, &rec, &reason);
            if (rc != TS_OK) {
                return rc;
            }

            /* the checksum held, so the next record starts where it says */

            if (reason) {
                ts_wal_skip(r, seg, rec.off, TS_WAL_REC_HDR + len, reason);
                continue;
            }
        }

        rc = r->rp->record(r->rp->data, &rec);
        if (rc != TS_OK) {
            return rc;
        }

        r->st->records++;
        r->st->bytes += rec.len;
        r->st->stored += rec.stored;
    }

    return TS_OK;
}


/*
 * Frames and checks the record at off: on success *h points to its
 * header and payload; otherwise *reason says why the data ends there.
 */
static int
ts_wal_check_record(ts_wal_replayer_t *r, uint64_t off, const uint8_t **h,
    size_t *len, const char **reason)
{
    int       rc, zero;
    uint64_t  rem;
    uint32_t  crc;

    *reason = NULL;
    rem = r->rd.size - off;

    if (rem < TS_WAL_REC_HDR) {
        rc = ts_wal_rd_zero(r, off, &zero);
        *reason = zero ? "zero-filled tail" : "torn record header";
        return rc;
    }

    rc = ts_wal_rd_get(r, off, TS_WAL_REC_HDR, h);
    if (rc != TS_OK) {
        return rc;
    }

    *len = ts_wal_get32(*h + 2);

    if ((*h)[0] == 0) {
        rc = ts_wal_rd_zero(r, off, &zero);
        *reason = zero ? "zero-filled tail" : "invalid record type 0";
        return rc;
    }

    if ((*h)[1] & ~(r->version > 1 ? TS_WAL_REC_SNAPPY : 0)) {
        *reason = "unknown record flags";

    } else if (*len > TS_WAL_RECORD_MAX) {
        *reason = "record length over the maximum";

    } else if (*len > rem - TS_WAL_REC_HDR) {
        *reason = "torn record payload";
    }

    if (*reason) {
        return TS_OK;
    }

    rc = ts_wal_rd_get(r, off, TS_WAL_REC_HDR + *len, h);
    if (rc != TS_OK) {
        return rc;
    }

    crc = ts_crc32c(0, *h, 6);
    crc = ts_crc32c(crc, *h + TS_WAL_REC_HDR, *len);

    if (crc != ts_wal_get32(*h + 6)) {
        *reason = "record checksum mismatch";
    }

    return TS_OK;
}


/*
 * Points rec->payload at the decompressed payload, or sets *reason.  The
 * declared length is checked before anything is allocated, and snappy
 * checks that the block produces exactly that many bytes.
 */
static int
ts_wal_uncompress(ts_wal_replayer_t *r, ts_wal_rec_t *rec,
    const char **reason)
{
    size_t  n, cap;

    *reason = NULL;

    if (snappy_uncompressed_length((const char *) rec->payload, rec->len,
                                   &n)
        != SNAPPY_OK)
    {
        *reason = "bad compressed length";
        return TS_OK;
    }

    if (n > TS_WAL_RECORD_MAX) {
        *reason = "decompressed length over the maximum";
        return TS_OK;
    }

    if (n > r->zcap || r->zbuf == NULL) {
        cap = n > 2 * r->zcap ? n : 2 * r->zcap;
        cap = cap > TS_WAL_RECORD_MAX ? TS_WAL_RECORD_MAX : cap;
        cap = cap ? cap : 1;
        free(r->zbuf);
        r->zcap = 0;

        r->zbuf = malloc(cap);
        if (r->zbuf == NULL) {
            return TS_ERR_NOMEM;
        }

        r->zcap = cap;
    }

    if (snappy_uncompress((const char *) rec->payload, rec->len,
                          (char *) r->zbuf, &n)
        != SNAPPY_OK)
    {
        *reason = "corrupt compressed payload";
        return TS_OK;
    }

    rec->payload = r->zbuf;
    rec->len = n;

    return TS_OK;
}


/* Reports a record that is skipped while replay goes on after it. */
static void
ts_wal_skip(ts_wal_replayer_t *r, uint32_t seg, uint64_t off,
    uint64_t lost, const char *reason)
{
    ts_wal_report_t  rep;

    ts_wal_rep_init(r, &rep, seg, off, lost, reason);
    ts_wal_report(r, &rep);
}


static void
ts_wal_rep_init(ts_wal_replayer_t *r, ts_wal_report_t *rep, uint32_t seg,
    uint64_t off, uint64_t lost, const char *reason)
{
    char  name[TS_WAL_SEGNAME_LEN];

    ts_wal_segname(name, seg);
    snprintf(rep->file, sizeof(rep->file), "%s/%s", r->dir, name);
    rep->seg = seg;
    rep->offset = off;
    rep->lost = lost;
    rep->reason = reason;
    rep->truncated = 0;

    r->st->corruptions++;
}


/*
 * Reports a corruption at off in segment seg; for the last segment, with
 * TS_WAL_REPAIR, cuts the file there so the next replay is clean.
 */
static int
ts_wal_bad(ts_wal_replayer_t *r, uint32_t seg, uint64_t off,
    const char *reason, int last)
{
    int              fd, rc;
    char             name[TS_WAL_SEGNAME_LEN];
    uint64_t         lost;
    ts_wal_report_t  rep;

    lost = r->rd.fd != -1 && r->rd.size > off ? r->rd.size - off : 0;
    ts_wal_rep_init(r, &rep, seg, off, lost, reason);
    ts_wal_segname(name, seg);
    rc = TS_OK;

    if (last && (r->rp->flags & TS_WAL_REPAIR)) {
        fd = openat(r->dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd == -1 || ftruncate(fd, (off_t) off) == -1
            || fsync(fd) == -1)
        {
            ts_wal_err(r->err, r->errlen, errno, "ftruncate() \"%s\"",
                       rep.file);
            rc = TS_ERR_IO;

        } else {
            rep.truncated = 1;
            r->st->truncations++;
        }

        if (fd != -1) {
            close(fd);
        }
    }

    ts_wal_report(r, &rep);

    return rc;
}


static void
ts_wal_report(ts_wal_replayer_t *r, ts_wal_report_t *rep)
{
    r->st->last = *rep;

    if (r->rp->report) {
        r->rp->report(r->rp->data, rep);
    }
}


/*
 * Makes bytes [off, off + n) of the segment available at *p; the caller
 * has checked that they lie within the file and that n is bounded.
 */
static int
ts_wal_rd_get(ts_wal_replayer_t *r, uint64_t off, size_t n,
    const uint8_t **p)
{
    size_t        want, got;
    ssize_t       k;
    uint8_t      *nb;
    ts_wal_rd_t  *rd;

    rd = &r->rd;

    if (off >= rd->base && off + n <= rd->base + rd->len) {
        *p = rd->buf + (off - rd->base);
        return TS_OK;
    }

    want = n > TS_WAL_READ_SIZE ? n : TS_WAL_READ_SIZE;

    if (want > rd->size - off) {
        want = (size_t) (rd->size - off);
    }

    if (want > rd->cap) {
        nb = realloc(rd->buf, want);
        if (nb == NULL) {
            return TS_ERR_NOMEM;
        }

        rd->buf = nb;
        rd->cap = want;
    }

    rd->base = off;
    rd->len = 0;

    for (got = 0; got < want; got += (size_t) k) {
        k = pread(rd->fd, rd->buf + got, want - got, (off_t) (off + got));

        if (k == -1 && errno == EINTR) {
            k = 0;
            continue;
        }

        if (k <= 0) {
            ts_wal_err(r->err, r->errlen, k == 0 ? EIO : errno,
                       "pread() in \"%s\"", r->dir);
            return TS_ERR_IO;
        }
    }

    rd->len = want;
    *p = rd->buf;

    return TS_OK;
}


static int
ts_wal_rd_zero(ts_wal_replayer_t *r, uint64_t off, int *zero)
{
    int             rc;
    size_t          i, n;
    const uint8_t  *p;

    *zero = 1;

    while (off < r->rd.size) {
        n = r->rd.size - off > TS_WAL_READ_SIZE ? TS_WAL_READ_SIZE
                                                : r->rd.size - off;

        rc = ts_wal_rd_get(r, off, n, &p);
        if (rc != TS_OK) {
            return rc;
        }

        for (i = 0; i < n; i++) {
            if (p[i]) {
                *zero = 0;
                return TS_OK;
            }
        }

        off += n;
    }

    return TS_OK;
}
