/*
 * Copyright (C) ngx_tsdb authors
 *
 * ts_db: create, reopen and format checks; series ids; tenants;
 * postings order and seek; label names and values (long ones too);
 * chunk overwrite and range reads; metadata; map growth and its limit;
 * two processes writing at once, a map grown by another process, a
 * writer and a reader SIGKILLed mid-transaction; retention in bounded
 * steps and bounded disk use; one named case per corrupted file and per
 * corrupted record.  Each test works in its own mkdtemp() directory.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "ts_db.h"
#include "db_dump.h"


#define T_HOUR          3600000LL
#define T_CHUNK_LEN     150
#define T_SIGN          0x8000000000000000ULL
#define T_SMALL_MAP     ((size_t) 256 * 1024)


typedef struct {
    char                root[64];       /* mkdtemp() */
    char                file[128];      /* root/index/data.mdb */
} t_env_t;


/* The labels of test series i: __name__, instance, job (sorted). */
typedef struct {
    ts_label_t          l[3];
    char                name[16];
    char                inst[16];
    char                job[16];
} t_ls_t;


typedef struct {
    uint64_t            ids[64];
    size_t              n;
    char                strs[64][32];
} t_col_t;


typedef struct {
    const char         *name;
    const char         *tenant;
    uint64_t            hint;
} t_hint_case_t;


typedef struct {
    const char         *name;
    uint64_t            target;
    int                 found;
    uint64_t            expect;
} t_seek_case_t;


/* Helpers. */

static int
t_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;

    return remove(path);
}


static int
t_setup(void **state)
{
    t_env_t  *e;

    e = calloc(1, sizeof(t_env_t));
    assert_non_null(e);

    strcpy(e->root, "/tmp/ts_db_test.XXXXXX");
    assert_non_null(mkdtemp(e->root));
    snprintf(e->file, sizeof(e->file), "%s/index/data.mdb", e->root);

    *state = e;

    return 0;
}


static int
t_teardown(void **state)
{
    t_env_t  *e;

    e = *state;
    (void) nftw(e->root, t_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(e);

    return 0;
}


static int
t_open_rc(const char *path, size_t map, size_t max, ts_db_t **db,
    char *err, size_t errlen)
{
    ts_db_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.path = path;
    conf.map_size = map;
    conf.map_max = max;
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;

    return ts_db_open(db, &conf, err, errlen);
}


static ts_db_t *
t_open(const char *path, size_t map, size_t max)
{
    int       rc;
    char      err[TS_DB_ERR_MAX];
    ts_db_t  *db;

    rc = t_open_rc(path, map, max, &db, err, sizeof(err));
    if (rc != TS_OK) {
        fail_msg("ts_db_open: %d %s", rc, err);
    }

    return db;
}


static void
t_ls(t_ls_t *s, int i)
{
    snprintf(s->name, sizeof(s->name), "m%d", i % 7);
    snprintf(s->inst, sizeof(s->inst), "i%05d", i);
    snprintf(s->job, sizeof(s->job), "j%d", i % 3);

    s->l[0] = (ts_label_t) { "__name__", 8, s->name, strlen(s->name) };
    s->l[1] = (ts_label_t) { "instance", 8, s->inst, strlen(s->inst) };
    s->l[2] = (ts_label_t) { "job", 3, s->job, strlen(s->job) };
}


static void
t_payload(uint8_t *p, size_t len, uint64_t seed)
{
    size_t  k;

    for (k = 0; k < len; k++) {
        p[k] = (uint8_t) (seed * 131 + k * 7 + (k >> 3));
    }
}


/* Ensures series [from, to) of tenant with nchunks chunks each:
   chunk k spans [t0 + k * step, t0 + (k + 1) * step - 1]. */

static int
t_write(ts_db_t *db, const char *tenant, int from, int to, int nchunks,
    int64_t t0, int64_t step)
{
    int             i, k, rc;
    uint8_t         data[T_CHUNK_LEN];
    t_ls_t          s;
    uint32_t        idx;
    ts_db_batch_t  *b;

    assert_int_equal(ts_db_batch_create(&b), TS_OK);

    for (i = from; i < to; i++) {
        t_ls(&s, i);
        assert_int_equal(ts_db_batch_series(b, tenant, strlen(tenant), s.l,
                                            3, 0, &idx), TS_OK);

        for (k = 0; k < nchunks; k++) {
            t_payload(data, sizeof(data), (uint64_t) i * 1000 + k);
            assert_int_equal(ts_db_batch_chunk(b, idx, t0 + k * step,
                                               t0 + (k + 1) * step - 1, 1,
                                               data, sizeof(data)), TS_OK);
        }
    }

    rc = ts_db_apply(db, b);
    ts_db_batch_destroy(b);

    return rc;
}


static uint64_t
t_find(ts_db_t *db, const char *tenant, int i)
{
    int            rc;
    t_ls_t         s;
    uint32_t       tid;
    uint64_t       id;
    ts_db_rtxn_t  *t;

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);

    id = 0;
    t_ls(&s, i);

    rc = ts_db_tenant(t, tenant, strlen(tenant), &tid);
    if (rc == TS_OK) {
        rc = ts_db_series_find(t, tid, s.l, 3, &id);
    }

    if (rc != TS_OK && rc != TS_ERR_NOTFOUND) {
        fail_msg("find: %d %s", rc, ts_db_rtxn_errmsg(t));
    }

    ts_db_rtxn_abort(t);

    return rc == TS_OK ? id : 0;
}


static size_t
t_count_chunks(ts_db_t *db, uint64_t id, int64_t mint, int64_t maxt)
{
    int             rc;
    size_t          n;
    ts_db_chunk_t   c;
    ts_db_rtxn_t   *t;
    ts_db_chunks_t  it;

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    assert_int_equal(ts_db_chunks_open(t, &it, id, mint, maxt), TS_OK);

    for (n = 0; (rc = ts_db_chunks_next(&it, &c)) == 1; n++) {
        assert_int_equal(c.series, id);
    }

    assert_int_equal(rc, 0);
    ts_db_chunks_close(&it);
    ts_db_rtxn_abort(t);

    return n;
}


static int
t_collect_str(void *data, const char *s, size_t len)
{
    t_col_t  *c;

    c = data;

    if (c->n < 64) {
        snprintf(c->strs[c->n], sizeof(c->strs[0]), "%.*s", (int) len, s);
    }

    c->n++;

    return 0;
}


static int
t_stop_str(void *data, const char *s, size_t len)
{
    (void) data;
    (void) s;
    (void) len;

    return 7;
}


static void
t_be64(uint8_t *p, uint64_t v)
{
    int  i;

    for (i = 7; i >= 0; i--) {
        p[i] = (uint8_t) v;
        v >>= 8;
    }
}


static off_t
t_file_size(const char *path)
{
    struct stat  st;

    assert_int_equal(stat(path, &st), 0);

    return st.st_size;
}


/*
 * Raw LMDB access to the index while no ts_db_t is open in this process:
 * reads the value under key in dbname, lets mutate change it, writes it
 * back (mutate returns -1: delete the key instead).
 */

typedef int (*t_mutate_pt)(uint8_t *v, size_t *len);

static void
t_raw_mutate(t_env_t *e, const char *dbname, const void *key, size_t klen,
    t_mutate_pt mutate)
{
    char      dir[128];
    size_t    len;
    uint8_t   buf[4096];
    MDB_env  *env;
    MDB_txn  *txn;
    MDB_dbi   dbi;
    MDB_val   k, v;

    snprintf(dir, sizeof(dir), "%s/index", e->root);

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);

    k.mv_data = (void *) key;
    k.mv_size = klen;

    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    assert_true(v.mv_size <= sizeof(buf));
    memcpy(buf, v.mv_data, v.mv_size);
    len = v.mv_size;

    if (mutate(buf, &len) == -1) {
        assert_int_equal(mdb_del(txn, dbi, &k, NULL), 0);

    } else {
        v.mv_data = buf;
        v.mv_size = len;
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    }

    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}


/*
 * A child must die of its signals: cmocka's handlers, inherited through
 * fork(), would otherwise catch a crash and run the remaining tests.
 */

static pid_t
t_fork(void)
{
    pid_t  pid;

    pid = fork();
    assert_true(pid >= 0);

    if (pid == 0) {
        (void) signal(SIGBUS, SIG_DFL);
        (void) signal(SIGSEGV, SIG_DFL);
        (void) signal(SIGILL, SIG_DFL);
        (void) signal(SIGFPE, SIG_DFL);
        (void) signal(SIGABRT, SIG_DFL);
    }

    return pid;
}


/* Waits for a child; returns its exit code, or 1000 + signal. */

static int
t_wait(pid_t pid)
{
    int  st;

    assert_int_equal(waitpid(pid, &st, 0), pid);

    return WIFSIGNALED(st) ? 1000 + WTERMSIG(st) : WEXITSTATUS(st);
}


/* Open, create, reopen. */

static void
test_open_create_reopen(void **state)
{
    int            rc;
    char           path[192], err[TS_DB_ERR_MAX];
    t_env_t       *e;
    ts_db_t       *db;
    struct stat    st;
    ts_db_stats_t  stats;

    e = *state;
    snprintf(path, sizeof(path), "%s/zone", e->root);

    db = t_open(path, 0, 0);

    snprintf(path, sizeof(path), "%s/zone/index", e->root);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);

    snprintf(path, sizeof(path), "%s/zone/index/data.mdb", e->root);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(ts_db_stats(db, &stats), TS_OK);
    assert_int_equal(stats.map_size, TS_DB_MAP_SIZE);
    assert_int_equal(stats.map_max, TS_DB_MAP_MAX);
    assert_int_equal(stats.series, 0);
    assert_int_equal(stats.chunks, 0);
    assert_int_equal(ts_db_verify(db), TS_OK);
    assert_int_equal(ts_db_sync(db), TS_OK);
    assert_string_equal(ts_db_dir(db) + strlen(e->root), "/zone/index");

    assert_int_equal(t_write(db, "t", 0, 10, 2, 0, 1000), TS_OK);
    ts_db_close(db);

    snprintf(path, sizeof(path), "%s/zone", e->root);
    db = t_open(path, 0, 0);
    assert_int_equal(ts_db_stats(db, &stats), TS_OK);
    assert_int_equal(stats.series, 10);
    assert_int_equal(stats.chunks, 20);
    assert_int_equal(stats.tenants, 1);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);

    rc = t_open_rc("", 0, 0, &db, err, sizeof(err));
    assert_int_equal(rc, TS_ERR_INVALID);
    assert_null(db);

    rc = t_open_rc(path, 1 << 30, 1 << 20, &db, err, sizeof(err));
    assert_int_equal(rc, TS_ERR_INVALID);
    assert_non_null(strstr(err, "limit"));
}


static void
test_open_chown(void **state)
{
    char          path[192], err[TS_DB_ERR_MAX];
    t_env_t      *e;
    ts_db_t      *db;
    struct stat   st;
    ts_db_conf_t  conf;

    e = *state;

    if (geteuid() != 0) {
        skip();
    }

    snprintf(path, sizeof(path), "%s/zone", e->root);

    memset(&conf, 0, sizeof(conf));
    conf.path = path;
    conf.uid = 65534;
    conf.gid = 65534;

    assert_int_equal(ts_db_open(&db, &conf, err, sizeof(err)), TS_OK);
    ts_db_close(db);

    snprintf(path, sizeof(path), "%s/zone/index", e->root);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 65534);
    assert_int_equal(st.st_gid, 65534);

    snprintf(path, sizeof(path), "%s/zone/index/data.mdb", e->root);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 65534);

    snprintf(path, sizeof(path), "%s/zone/index/lock.mdb", e->root);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_uid, 65534);
}


static void
test_open_symlink(void **state)
{
    int       rc;
    char      path[192], err[TS_DB_ERR_MAX];
    t_env_t  *e;
    ts_db_t  *db;

    e = *state;

    snprintf(path, sizeof(path), "%s/index", e->root);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(symlink("/etc/passwd", e->file), 0);

    rc = t_open_rc(e->root, 0, 0, &db, err, sizeof(err));
    assert_int_equal(rc, TS_ERR_INVALID);
    assert_non_null(strstr(err, "not a regular file"));
}


/* The format record: one case per way of being wrong. */

static int
t_fmt_version3(uint8_t *v, size_t *len)
{
    (void) len;
    v[11] = 3;
    return 0;
}


static int
t_fmt_flags(uint8_t *v, size_t *len)
{
    (void) len;
    v[15] = 1;
    return 0;
}


static int
t_fmt_magic(uint8_t *v, size_t *len)
{
    (void) len;
    v[0] ^= 0x20;
    return 0;
}


static int
t_fmt_crc(uint8_t *v, size_t *len)
{
    (void) len;
    v[20] ^= 1;
    return 0;
}


static int
t_fmt_short(uint8_t *v, size_t *len)
{
    (void) v;
    *len = 20;
    return 0;
}


static int
t_fmt_missing(uint8_t *v, size_t *len)
{
    (void) v;
    (void) len;
    return -1;
}


static void
test_format_record(void **state)
{
    int       rc;
    char      err[TS_DB_ERR_MAX];
    size_t    i;
    t_env_t  *e;
    ts_db_t  *db;

    static const struct {
        const char   *name;
        t_mutate_pt   mutate;
        int           rc;
        const char   *msg;
    } cases[] = {
        { "version 3", t_fmt_version3, TS_ERR_VERSION,
          "index format version 3" },
        { "unknown flags", t_fmt_flags, TS_ERR_VERSION, "flags 0x1" },
        { "bad magic", t_fmt_magic, TS_ERR_CORRUPT, "bad magic" },
        { "checksum", t_fmt_crc, TS_ERR_CORRUPT, "checksum" },
        { "short", t_fmt_short, TS_ERR_CORRUPT, "20 bytes" },
        { "missing", t_fmt_missing, TS_ERR_CORRUPT, "no format record" },
    };

    e = *state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        db = t_open(e->root, 0, 0);
        assert_int_equal(t_write(db, "t", 0, 3, 1, 0, 1000), TS_OK);
        ts_db_close(db);

        t_raw_mutate(e, "meta", "format", 6, cases[i].mutate);

        rc = t_open_rc(e->root, 0, 0, &db, err, sizeof(err));

        if (rc != cases[i].rc || strstr(err, cases[i].msg) == NULL
            || strstr(err, e->file) == NULL)
        {
            fail_msg("case \"%s\": %d \"%s\"", cases[i].name, rc, err);
        }

        (void) nftw(e->root, t_rm, 16, FTW_DEPTH | FTW_PHYS);
        assert_int_equal(mkdir(e->root, 0700), 0);
    }
}


static void
test_not_an_index(void **state)
{
    int       rc;
    char      dir[128], err[TS_DB_ERR_MAX];
    t_env_t  *e;
    ts_db_t  *db;
    MDB_env  *env;
    MDB_txn  *txn;
    MDB_dbi   dbi;
    MDB_val   k, v;

    e = *state;
    snprintf(dir, sizeof(dir), "%s/index", e->root);
    assert_int_equal(mkdir(dir, 0700), 0);

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    k.mv_data = "someone";
    k.mv_size = 7;
    v.mv_data = "else";
    v.mv_size = 4;
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    rc = t_open_rc(e->root, 0, 0, &db, err, sizeof(err));
    assert_int_equal(rc, TS_ERR_CORRUPT);
    assert_non_null(strstr(err, "not an ngx_tsdb index"));
}


/* Sub-databases missing or made with other flags. */

static void
test_schema_damage(void **state)
{
    int       rc, i;
    char      dir[128], err[TS_DB_ERR_MAX];
    t_env_t  *e;
    ts_db_t  *db;
    MDB_env  *env;
    MDB_txn  *txn;
    MDB_dbi   dbi;

    static const struct {
        const char  *name;
        const char  *db;
        int          recreate;
        const char  *msg;
    } cases[] = {
        { "pblocks dropped", "pblocks", 0, "\"pblocks\" is missing" },
        { "retention without DUPSORT", "retention", 1, "has flags 0x0" },
        { "chunks dropped", "chunks", 0, "\"chunks\" is missing" },
    };

    e = *state;
    snprintf(dir, sizeof(dir), "%s/index", e->root);

    for (i = 0; i < (int) (sizeof(cases) / sizeof(cases[0])); i++) {
        db = t_open(e->root, 0, 0);
        assert_int_equal(t_write(db, "t", 0, 3, 1, 0, 1000), TS_OK);
        ts_db_close(db);

        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
        assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
        assert_int_equal(mdb_dbi_open(txn, cases[i].db, 0, &dbi), 0);
        assert_int_equal(mdb_drop(txn, dbi, 1), 0);

        if (cases[i].recreate) {
            assert_int_equal(mdb_dbi_open(txn, cases[i].db, MDB_CREATE,
                                          &dbi), 0);
        }

        assert_int_equal(mdb_txn_commit(txn), 0);
        mdb_env_close(env);

        rc = t_open_rc(e->root, 0, 0, &db, err, sizeof(err));

        if (rc != TS_ERR_CORRUPT || strstr(err, cases[i].msg) == NULL) {
            fail_msg("case \"%s\": %d \"%s\"", cases[i].name, rc, err);
        }

        (void) nftw(e->root, t_rm, 16, FTW_DEPTH | FTW_PHYS);
        assert_int_equal(mkdir(e->root, 0700), 0);
    }
}


/* Series. */

static void
test_series_idempotent(void **state)
{
    int             i;
    t_ls_t          s;
    t_env_t        *e;
    ts_db_t        *db;
    uint32_t        idx[4];
    uint64_t        ids[4];
    ts_db_batch_t  *b;

    e = *state;
    db = t_open(e->root, 0, 0);
    assert_int_equal(ts_db_batch_create(&b), TS_OK);

    /* series 1 twice in one batch */

    for (i = 0; i < 4; i++) {
        t_ls(&s, i == 3 ? 1 : i);
        assert_int_equal(ts_db_batch_series(b, "t", 1, s.l, 3, 0, &idx[i]),
                         TS_OK);
    }

    assert_int_equal(ts_db_batch_series_id(b, idx[0]), 0);
    assert_int_equal(ts_db_apply(db, b), TS_OK);

    for (i = 0; i < 4; i++) {
        ids[i] = ts_db_batch_series_id(b, idx[i]);
        assert_true(ids[i] != 0);
    }

    assert_int_equal(ids[3], ids[1]);
    assert_true(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    assert_true(ts_db_batch_series_created(b, idx[0]));
    assert_false(ts_db_batch_series_created(b, idx[3]));

    assert_int_equal(ts_db_apply(db, b), TS_OK);

    for (i = 0; i < 4; i++) {
        assert_int_equal(ts_db_batch_series_id(b, idx[i]), ids[i]);
        assert_false(ts_db_batch_series_created(b, idx[i]));
    }

    ts_db_batch_destroy(b);
    ts_db_close(db);

    db = t_open(e->root, 0, 0);

    for (i = 0; i < 3; i++) {
        assert_int_equal(t_find(db, "t", i), ids[i]);
    }

    assert_int_equal(t_find(db, "t", 99), 0);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


static void
test_series_hints(void **state)
{
    size_t          i;
    t_ls_t          s;
    t_env_t        *e;
    ts_db_t        *db;
    uint32_t        idx;
    uint64_t        id0, id1, other;
    ts_db_batch_t  *b;

    t_hint_case_t   cases[4];

    e = *state;
    db = t_open(e->root, 0, 0);

    assert_int_equal(t_write(db, "t", 0, 2, 1, 0, 1000), TS_OK);
    assert_int_equal(t_write(db, "u", 0, 1, 1, 0, 1000), TS_OK);
    id0 = t_find(db, "t", 0);
    id1 = t_find(db, "t", 1);
    other = t_find(db, "u", 0);

    cases[0] = (t_hint_case_t) { "valid hint", "t", id0 };
    cases[1] = (t_hint_case_t) { "another series' id", "t", id1 };
    cases[2] = (t_hint_case_t) { "no such id", "t", 987654 };
    cases[3] = (t_hint_case_t) { "another tenant's id", "t", other };

    assert_int_equal(ts_db_batch_create(&b), TS_OK);

    for (i = 0; i < 4; i++) {
        ts_db_batch_reset(b);
        t_ls(&s, 0);
        assert_int_equal(ts_db_batch_series(b, cases[i].tenant, 1, s.l, 3,
                                            cases[i].hint, &idx), TS_OK);
        assert_int_equal(ts_db_apply(db, b), TS_OK);

        if (ts_db_batch_series_id(b, idx) != id0
            || ts_db_batch_series_created(b, idx))
        {
            fail_msg("case \"%s\": id %llu", cases[i].name,
                     (unsigned long long) ts_db_batch_series_id(b, idx));
        }
    }

    ts_db_batch_destroy(b);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


static void
test_tenants_isolated(void **state)
{
    int             rc;
    t_ls_t          s;
    t_col_t         col;
    t_env_t        *e;
    ts_db_t        *db;
    uint32_t        ta, tb;
    uint64_t        ida, idb, id;
    ts_db_rtxn_t   *t;
    ts_db_postings_t  p;

    e = *state;
    db = t_open(e->root, 0, 0);

    assert_int_equal(t_write(db, "alpha", 0, 5, 1, 0, 1000), TS_OK);
    assert_int_equal(t_write(db, "beta", 3, 8, 1, 0, 1000), TS_OK);

    ida = t_find(db, "alpha", 3);
    idb = t_find(db, "beta", 3);
    assert_true(ida != 0 && idb != 0 && ida != idb);
    assert_int_equal(t_find(db, "alpha", 6), 0);
    assert_int_equal(t_find(db, "beta", 0), 0);

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    assert_int_equal(ts_db_tenant(t, "alpha", 5, &ta), TS_OK);
    assert_int_equal(ts_db_tenant(t, "beta", 4, &tb), TS_OK);
    assert_int_equal(ts_db_tenant(t, "gamma", 5, &tb), TS_ERR_NOTFOUND);
    assert_int_equal(ts_db_tenant(t, "beta", 4, &tb), TS_OK);
    assert_true(ta != tb);

    /* tenant b's postings for instance=i00003 hold only b's series */

    t_ls(&s, 3);
    assert_int_equal(ts_db_postings_open(t, &p, tb, "instance", 8, s.inst,
                                         strlen(s.inst)), TS_OK);
    assert_int_equal(ts_db_postings_next(&p, &id), 1);
    assert_int_equal(id, idb);
    assert_int_equal(ts_db_postings_next(&p, &id), 0);
    ts_db_postings_close(&p);

    memset(&col, 0, sizeof(col));
    rc = ts_db_label_values(t, ta, "instance", 8, t_collect_str, &col);
    assert_int_equal(rc, TS_OK);
    assert_int_equal(col.n, 5);
    assert_string_equal(col.strs[0], "i00000");
    assert_string_equal(col.strs[4], "i00004");

    memset(&col, 0, sizeof(col));
    rc = ts_db_label_values(t, tb, "instance", 8, t_collect_str, &col);
    assert_int_equal(rc, TS_OK);
    assert_int_equal(col.n, 5);
    assert_string_equal(col.strs[0], "i00003");

    assert_int_equal(ts_db_series_find(t, ta, s.l, 3, &id), TS_OK);
    assert_int_equal(id, ida);

    ts_db_rtxn_abort(t);
    ts_db_close(db);
}


/* Postings. */

static void
test_postings_order_seek(void **state)
{
    int               i, rc, n;
    size_t            c;
    t_env_t          *e;
    ts_db_t          *db;
    uint32_t          tid;
    uint64_t          id, prev, all[3000], first, last;
    ts_db_rtxn_t     *t;
    ts_db_postings_t  p;

    t_seek_case_t     cases[6];

    e = *state;
    db = t_open(e->root, 0, 0);

    /* three batches: ids of one job are spread over many pages */

    assert_int_equal(t_write(db, "t", 0, 1000, 0, 0, 1), TS_OK);
    assert_int_equal(t_write(db, "t", 1000, 2000, 0, 0, 1), TS_OK);
    assert_int_equal(t_write(db, "t", 2000, 3000, 0, 0, 1), TS_OK);

    for (i = 0; i < 3000; i++) {
        all[i] = t_find(db, "t", i);
    }

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    assert_int_equal(ts_db_tenant(t, "t", 1, &tid), TS_OK);

    /* job=j1: series 1, 4, 7, ... ascending */

    assert_int_equal(ts_db_postings_open(t, &p, tid, "job", 3, "j1", 2),
                     TS_OK);

    for (n = 0, prev = 0; (rc = ts_db_postings_next(&p, &id)) == 1; n++) {
        assert_true(id > prev);
        assert_int_equal(id, all[3 * n + 1]);
        prev = id;
    }

    assert_int_equal(rc, 0);
    assert_int_equal(n, 1000);
    ts_db_postings_close(&p);

    first = all[1];
    last = all[2998];

    cases[0] = (t_seek_case_t) { "before the first", 0, 1, first };
    cases[1] = (t_seek_case_t) { "exact", all[301], 1, all[301] };
    cases[2] = (t_seek_case_t) { "between", all[300], 1, all[301] };
    cases[3] = (t_seek_case_t) { "on a later page", all[2500], 1,
                                    all[2500] };
    cases[4] = (t_seek_case_t) { "the last", last, 1, last };
    cases[5] = (t_seek_case_t) { "past the last", last + 1, 0, 0 };

    for (c = 0; c < 6; c++) {
        assert_int_equal(ts_db_postings_open(t, &p, tid, "job", 3, "j1", 2),
                         TS_OK);

        rc = ts_db_postings_seek(&p, cases[c].target, &id);

        if (rc != cases[c].found || (rc == 1 && id != cases[c].expect)) {
            fail_msg("case \"%s\": %d %llu", cases[c].name, rc,
                     (unsigned long long) id);
        }

        ts_db_postings_close(&p);
    }

    /* seeks in sequence, then next: a leapfrog intersection's pattern */

    assert_int_equal(ts_db_postings_open(t, &p, tid, "job", 3, "j1", 2),
                     TS_OK);
    assert_int_equal(ts_db_postings_seek(&p, all[10], &id), 1);
    assert_int_equal(id, all[10]);
    assert_int_equal(ts_db_postings_seek(&p, all[5], &id), 1);
    assert_int_equal(id, all[13]);
    assert_int_equal(ts_db_postings_seek(&p, all[2000], &id), 1);
    assert_int_equal(id, all[2002]);
    assert_int_equal(ts_db_postings_next(&p, &id), 1);
    assert_int_equal(id, all[2005]);
    ts_db_postings_close(&p);

    /* all series of the tenant; series with a label name; unknown */

    assert_int_equal(ts_db_postings_open(t, &p, tid, NULL, 0, NULL, 0),
                     TS_OK);

    for (n = 0; ts_db_postings_next(&p, &id) == 1; n++) {
        assert_int_equal(id, all[n]);
    }

    assert_int_equal(n, 3000);
    ts_db_postings_close(&p);

    assert_int_equal(ts_db_postings_open(t, &p, tid, "job", 3, NULL, 0),
                     TS_OK);

    for (n = 0; ts_db_postings_next(&p, &id) == 1; n++) { /* void */ }

    assert_int_equal(n, 3000);
    ts_db_postings_close(&p);

    assert_int_equal(ts_db_postings_open(t, &p, tid, "job", 3, "nope", 4),
                     TS_OK);
    assert_int_equal(ts_db_postings_next(&p, &id), 0);
    assert_int_equal(ts_db_postings_seek(&p, 5, &id), 0);
    ts_db_postings_close(&p);

    /* a single-id list */

    assert_int_equal(ts_db_postings_open(t, &p, tid, "instance", 8,
                                         "i00007", 6), TS_OK);
    assert_int_equal(ts_db_postings_seek(&p, 1, &id), 1);
    assert_int_equal(id, all[7]);
    assert_int_equal(ts_db_postings_next(&p, &id), 0);
    ts_db_postings_close(&p);

    ts_db_rtxn_abort(t);
    ts_db_close(db);
}


static void
test_label_names_values(void **state)
{
    int               rc;
    char              lname[700], lvalue[3000], lvalue2[3000];
    char              mname[494];
    size_t            n;
    t_col_t           col;
    t_env_t          *e;
    ts_db_t          *db;
    uint32_t          tid, idx;
    uint64_t          id, id1, id2;
    ts_label_t        l[3];
    ts_db_rtxn_t     *t;
    ts_db_batch_t    *b;
    ts_db_postings_t  p;

    e = *state;
    db = t_open(e->root, 0, 0);
    assert_int_equal(t_write(db, "t", 0, 20, 1, 0, 1000), TS_OK);

    /* a name and values above the LMDB key limit (hashed keys): two
       values that share their first 2900 bytes */

    memset(lname, 'n', sizeof(lname));
    lname[0] = 'a';
    memset(lvalue, 'v', sizeof(lvalue));
    memcpy(lvalue2, lvalue, sizeof(lvalue));
    lvalue2[sizeof(lvalue2) - 1] = 'w';

    l[0] = (ts_label_t) { "__name__", 8, "long", 4 };
    l[1] = (ts_label_t) { lname, sizeof(lname), "x", 1 };
    l[2] = (ts_label_t) { "z", 1, lvalue, sizeof(lvalue) };

    assert_int_equal(ts_db_batch_create(&b), TS_OK);
    assert_int_equal(ts_db_batch_series(b, "t", 1, l, 3, 0, &idx), TS_OK);
    l[2].value = lvalue2;
    assert_int_equal(ts_db_batch_series(b, "t", 1, l, 3, 0, &idx), TS_OK);

    /* a 494-byte name: "b...b"="s" is a plain list key (501 bytes, the
       limit is 503 with the block's id), "b...b"="v...v" a hashed one,
       both under the same 490-byte literal prefix */

    memset(mname, 'b', sizeof(mname));
    l[1] = (ts_label_t) { mname, sizeof(mname), "s", 1 };
    l[2] = (ts_label_t) { "z", 1, "1", 1 };
    assert_int_equal(ts_db_batch_series(b, "t", 1, l, 3, 0, &idx), TS_OK);
    l[1].value = lvalue;
    l[1].value_len = sizeof(lvalue);
    assert_int_equal(ts_db_batch_series(b, "t", 1, l, 3, 0, &idx), TS_OK);

    assert_int_equal(ts_db_apply(db, b), TS_OK);
    id2 = ts_db_batch_series_id(b, 1);
    id1 = ts_db_batch_series_id(b, 0);
    assert_true(id1 != id2);
    ts_db_batch_destroy(b);

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    assert_int_equal(ts_db_tenant(t, "t", 1, &tid), TS_OK);

    memset(&col, 0, sizeof(col));
    assert_int_equal(ts_db_label_names(t, tid, t_collect_str, &col), TS_OK);
    assert_int_equal(col.n, 6);
    assert_string_equal(col.strs[0], "__name__");
    assert_int_equal(strncmp(col.strs[1], "annnn", 5), 0);
    assert_int_equal(strncmp(col.strs[2], "bbbbb", 5), 0);
    assert_string_equal(col.strs[3], "instance");
    assert_string_equal(col.strs[4], "job");
    assert_string_equal(col.strs[5], "z");

    memset(&col, 0, sizeof(col));
    rc = ts_db_label_values(t, tid, mname, sizeof(mname), t_collect_str,
                            &col);
    assert_int_equal(rc, TS_OK);
    assert_int_equal(col.n, 2);
    assert_string_equal(col.strs[0], "s");
    assert_int_equal(strncmp(col.strs[1], "vvvvv", 5), 0);

    memset(&col, 0, sizeof(col));
    rc = ts_db_label_values(t, tid, "__name__", 8, t_collect_str, &col);
    assert_int_equal(rc, TS_OK);
    assert_int_equal(col.n, 8);
    assert_string_equal(col.strs[0], "long");
    assert_string_equal(col.strs[1], "m0");
    assert_string_equal(col.strs[7], "m6");

    memset(&col, 0, sizeof(col));
    rc = ts_db_label_values(t, tid, lname, sizeof(lname), t_collect_str,
                            &col);
    assert_int_equal(rc, TS_OK);
    assert_int_equal(col.n, 1);
    assert_string_equal(col.strs[0], "x");

    memset(&col, 0, sizeof(col));
    rc = ts_db_label_values(t, tid, "z", 1, t_collect_str, &col);
    assert_int_equal(rc, TS_OK);
    assert_int_equal(col.n, 3);

    memset(&col, 0, sizeof(col));
    rc = ts_db_label_values(t, tid, "nope", 4, t_collect_str, &col);
    assert_int_equal(rc, TS_OK);
    assert_int_equal(col.n, 0);

    /* exact lookups of the long pairs */

    assert_int_equal(ts_db_postings_open(t, &p, tid, "z", 1, lvalue2,
                                         sizeof(lvalue2)), TS_OK);
    assert_int_equal(ts_db_postings_next(&p, &id), 1);
    assert_int_equal(id, id2);
    assert_int_equal(ts_db_postings_next(&p, &id), 0);
    ts_db_postings_close(&p);

    assert_int_equal(ts_db_postings_open(t, &p, tid, lname, sizeof(lname),
                                         NULL, 0), TS_OK);

    for (n = 0; ts_db_postings_next(&p, &id) == 1; n++) { /* void */ }

    assert_int_equal(n, 2);
    ts_db_postings_close(&p);

    /* a callback stops the walk with its value */

    assert_int_equal(ts_db_label_names(t, tid, t_stop_str, NULL), 7);

    ts_db_rtxn_abort(t);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


/* Chunks. */

static void
test_chunks_overwrite(void **state)
{
    int             rc;
    t_ls_t          s;
    t_env_t        *e;
    uint8_t         data[200];
    ts_db_t        *db;
    uint32_t        idx;
    uint64_t        id;
    ts_db_chunk_t   c;
    ts_db_rtxn_t   *t;
    ts_db_batch_t  *b;
    ts_db_chunks_t  it;
    ts_db_stats_t   st;
    size_t          len;

    e = *state;
    db = t_open(e->root, 0, 0);
    assert_int_equal(ts_db_batch_create(&b), TS_OK);
    t_payload(data, sizeof(data), 7);
    t_ls(&s, 0);

    /* an open chunk flushed as it grows, its maxt crossing an hour */

    for (len = 20; len <= 200; len += 60) {
        ts_db_batch_reset(b);
        assert_int_equal(ts_db_batch_series(b, "t", 1, s.l, 3, 0, &idx),
                         TS_OK);
        assert_int_equal(ts_db_batch_chunk(b, idx, T_HOUR - 5000,
                                           T_HOUR - 5000
                                           + (int64_t) len * 100, 1,
                                           data, len), TS_OK);
        assert_int_equal(ts_db_apply(db, b), TS_OK);
        assert_int_equal(ts_db_verify(db), TS_OK);
    }

    id = ts_db_batch_series_id(b, idx);
    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_int_equal(st.chunks, 1);

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    assert_int_equal(ts_db_chunks_open(t, &it, id, 0, 2 * T_HOUR), TS_OK);
    assert_int_equal(ts_db_chunks_next(&it, &c), 1);
    assert_int_equal(c.mint, T_HOUR - 5000);
    assert_int_equal(c.maxt, T_HOUR - 5000 + 20000);
    assert_int_equal(c.len, 200);
    assert_int_equal(c.encoding, 1);
    assert_memory_equal(c.data, data, 200);
    assert_int_equal(ts_db_chunks_next(&it, &c), 0);
    ts_db_chunks_close(&it);
    ts_db_rtxn_abort(t);

    /* the same key twice in one batch: the later put wins */

    ts_db_batch_reset(b);
    assert_int_equal(ts_db_batch_chunk_id(b, id, 0, 10, 1, data, 5), TS_OK);
    assert_int_equal(ts_db_batch_chunk_id(b, id, 0, 20, 1, data, 9), TS_OK);
    assert_int_equal(ts_db_apply(db, b), TS_OK);
    assert_int_equal(t_count_chunks(db, id, 0, 20), 1);
    assert_int_equal(t_count_chunks(db, id, 15, 15), 1);

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    assert_int_equal(ts_db_chunks_open(t, &it, id, 0, 0), TS_OK);
    rc = ts_db_chunks_next(&it, &c);
    assert_int_equal(rc, 1);
    assert_int_equal(c.len, 9);
    ts_db_chunks_close(&it);
    ts_db_rtxn_abort(t);

    ts_db_batch_destroy(b);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


static void
test_chunks_range(void **state)
{
    int             rc;
    size_t          i, n;
    t_env_t        *e;
    ts_db_t        *db;
    int64_t         first;
    uint64_t        id;
    ts_db_chunk_t   c;
    ts_db_rtxn_t   *t;
    ts_db_chunks_t  it;

    /* series 5: chunks [k * 100, k * 100 + 99], k = 0 .. 9 (mint 0 ..
       900); series 4 and 6 have the same times */

    static const struct {
        const char  *name;
        int64_t      mint;
        int64_t      maxt;
        size_t       n;
        int64_t      first;
    } cases[] = {
        { "everything", INT64_MIN, INT64_MAX, 10, 0 },
        { "inside one", 250, 260, 1, 200 },
        { "across three", 150, 350, 3, 100 },
        { "edges", 199, 300, 3, 100 },
        { "one instant", 300, 300, 1, 300 },
        { "before", -1000, -1, 0, 0 },
        { "after", 1000, 5000, 0, 0 },
        { "inverted", 500, 100, 0, 0 },
        { "the last", 950, 2000, 1, 900 },
        { "the first", -50, 0, 1, 0 },
    };

    e = *state;
    db = t_open(e->root, 0, 0);
    assert_int_equal(t_write(db, "t", 4, 7, 10, 0, 100), TS_OK);
    id = t_find(db, "t", 5);

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ts_db_chunks_open(t, &it, id, cases[i].mint,
                                           cases[i].maxt), TS_OK);
        first = -1;

        for (n = 0; (rc = ts_db_chunks_next(&it, &c)) == 1; n++) {
            if (n == 0) {
                first = c.mint;
            }

            assert_int_equal(c.series, id);
            assert_int_equal(c.maxt, c.mint + 99);
        }

        if (rc != 0 || n != cases[i].n || (n && first != cases[i].first)) {
            fail_msg("case \"%s\": rc %d, %zu chunks from %lld",
                     cases[i].name, rc, n, (long long) first);
        }

        ts_db_chunks_close(&it);
    }

    /* a series without chunks, and one that does not exist */

    assert_int_equal(ts_db_chunks_open(t, &it, id + 100, INT64_MIN,
                                       INT64_MAX), TS_OK);
    assert_int_equal(ts_db_chunks_next(&it, &c), 0);
    ts_db_chunks_close(&it);

    ts_db_rtxn_abort(t);
    ts_db_close(db);
}


/* Metadata. */

static int
t_collect_md(void *data, const ts_db_metadata_t *md)
{
    t_col_t  *c;

    c = data;
    t_collect_str(c, md->name, md->name_len < 31 ? md->name_len : 31);

    return 0;
}


static void
test_metadata(void **state)
{
    char               longname[600];
    t_col_t            col;
    t_env_t           *e;
    ts_db_t           *db;
    uint32_t           tid;
    ts_db_rtxn_t      *t;
    ts_db_batch_t     *b;
    ts_db_metadata_t   md, out;

    e = *state;
    db = t_open(e->root, 0, 0);
    assert_int_equal(ts_db_batch_create(&b), TS_OK);

    memset(longname, 'x', sizeof(longname));

    md = (ts_db_metadata_t) { "http_requests_total", 19, "", 0,
                              "Requests.", 9, 1 };
    assert_int_equal(ts_db_batch_metadata(b, "t", 1, &md), TS_OK);
    md = (ts_db_metadata_t) { "temp", 4, "celsius", 7, "Temp.", 5, 2 };
    assert_int_equal(ts_db_batch_metadata(b, "t", 1, &md), TS_OK);
    md = (ts_db_metadata_t) { longname, sizeof(longname), "", 0, "", 0, 0 };
    assert_int_equal(ts_db_batch_metadata(b, "t", 1, &md), TS_OK);
    md = (ts_db_metadata_t) { "temp", 4, "kelvin", 6, "Other.", 6, 2 };
    assert_int_equal(ts_db_batch_metadata(b, "u", 1, &md), TS_OK);
    assert_int_equal(ts_db_apply(db, b), TS_OK);

    /* overwrite */

    ts_db_batch_reset(b);
    md = (ts_db_metadata_t) { "temp", 4, "celsius", 7, "Temperature.", 12,
                              2 };
    assert_int_equal(ts_db_batch_metadata(b, "t", 1, &md), TS_OK);
    assert_int_equal(ts_db_apply(db, b), TS_OK);

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    assert_int_equal(ts_db_tenant(t, "t", 1, &tid), TS_OK);

    assert_int_equal(ts_db_metadata_get(t, tid, "temp", 4, &out), TS_OK);
    assert_int_equal(out.type, 2);
    assert_int_equal(out.unit_len, 7);
    assert_memory_equal(out.unit, "celsius", 7);
    assert_int_equal(out.help_len, 12);
    assert_memory_equal(out.help, "Temperature.", 12);

    assert_int_equal(ts_db_metadata_get(t, tid, longname, sizeof(longname),
                                        &out), TS_OK);
    assert_int_equal(out.name_len, sizeof(longname));
    assert_int_equal(ts_db_metadata_get(t, tid, longname,
                                        sizeof(longname) - 1, &out),
                     TS_ERR_NOTFOUND);
    assert_int_equal(ts_db_metadata_get(t, tid, "nope", 4, &out),
                     TS_ERR_NOTFOUND);

    memset(&col, 0, sizeof(col));
    assert_int_equal(ts_db_metadata_list(t, tid, t_collect_md, &col), TS_OK);
    assert_int_equal(col.n, 3);
    assert_string_equal(col.strs[0], "http_requests_total");
    assert_string_equal(col.strs[1], "temp");

    ts_db_rtxn_abort(t);
    ts_db_batch_destroy(b);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


/* Batches: what the builder refuses, and an apply that fails whole. */

static void
test_batch_invalid(void **state)
{
    int                i, rc;
    char               longt[TS_DB_TENANT_MAX + 1];
    t_ls_t             s;
    t_env_t           *e;
    ts_db_t           *db;
    uint32_t           idx;
    ts_label_t         unsorted[2];
    ts_db_batch_t     *b;
    ts_db_metadata_t   md;

    e = *state;
    db = t_open(e->root, 0, 0);
    assert_int_equal(ts_db_batch_create(&b), TS_OK);
    t_ls(&s, 0);
    memset(longt, 't', sizeof(longt));
    unsorted[0] = s.l[2];
    unsorted[1] = s.l[0];

    for (i = 0; i < 9; i++) {
        switch (i) {
        case 0:
            rc = ts_db_batch_series(b, "t", 0, s.l, 3, 0, &idx);
            break;
        case 1:
            rc = ts_db_batch_series(b, longt, sizeof(longt), s.l, 3, 0,
                                    &idx);
            break;
        case 2:
            rc = ts_db_batch_series(b, "t", 1, unsorted, 2, 0, &idx);
            break;
        case 3:
            rc = ts_db_batch_chunk(b, 0, 0, 10, 1, "x", 1);
            break;
        case 4:
            rc = ts_db_batch_chunk_id(b, 0, 0, 10, 1, "x", 1);
            break;
        case 5:
            rc = ts_db_batch_chunk_id(b, 1, 10, 0, 1, "x", 1);
            break;
        case 6:
            rc = ts_db_batch_chunk_id(b, 1, 0, 10, 1, "x", 0);
            break;
        case 7:
            rc = ts_db_batch_chunk_id(b, 1, 0, 10, 1, "x",
                                      TS_DB_CHUNK_MAX + 1);
            break;
        default:
            md = (ts_db_metadata_t) { "", 0, "", 0, "", 0, 0 };
            rc = ts_db_batch_metadata(b, "t", 1, &md);
        }

        if (rc != TS_ERR_INVALID) {
            fail_msg("case %d: %d", i, rc);
        }
    }

    assert_int_equal(ts_db_batch_nseries(b), 0);
    assert_int_equal(ts_db_batch_nchunks(b), 0);

    /* a chunk for a series id that does not exist fails the whole
       batch: the series created before it is not there either */

    assert_int_equal(ts_db_batch_series(b, "t", 1, s.l, 3, 0, &idx), TS_OK);
    assert_int_equal(ts_db_batch_chunk_id(b, 424242, 0, 10, 1, "x", 1),
                     TS_OK);
    assert_int_equal(ts_db_apply(db, b), TS_ERR_NOTFOUND);
    assert_non_null(strstr(ts_db_errmsg(db), "424242"));
    assert_int_equal(ts_db_batch_series_id(b, idx), 0);
    assert_int_equal(t_find(db, "t", 0), 0);

    ts_db_batch_destroy(b);
    ts_db_close(db);
}


static void
test_snapshot_isolation(void **state)
{
    t_env_t          *e;
    ts_db_t          *db;
    uint32_t          tid;
    uint64_t          id;
    size_t            n;
    ts_db_rtxn_t     *t;
    ts_db_postings_t  p;

    e = *state;
    db = t_open(e->root, 0, 0);
    assert_int_equal(t_write(db, "t", 0, 5, 1, 0, 1000), TS_OK);

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    assert_int_equal(ts_db_tenant(t, "t", 1, &tid), TS_OK);

    assert_int_equal(t_write(db, "t", 5, 10, 1, 0, 1000), TS_OK);

    assert_int_equal(ts_db_postings_open(t, &p, tid, NULL, 0, NULL, 0),
                     TS_OK);
    for (n = 0; ts_db_postings_next(&p, &id) == 1; n++) { /* void */ }
    ts_db_postings_close(&p);
    assert_int_equal(n, 5);

    ts_db_rtxn_reset(t);
    assert_int_equal(ts_db_postings_open(t, &p, tid, NULL, 0, NULL, 0),
                     TS_ERR_INVALID);
    ts_db_postings_close(&p);
    assert_int_equal(ts_db_rtxn_renew(t), TS_OK);

    assert_int_equal(ts_db_postings_open(t, &p, tid, NULL, 0, NULL, 0),
                     TS_OK);
    for (n = 0; ts_db_postings_next(&p, &id) == 1; n++) { /* void */ }
    ts_db_postings_close(&p);
    assert_int_equal(n, 10);

    ts_db_rtxn_abort(t);
    ts_db_close(db);
}


/* Map growth. */

static void
test_map_grow(void **state)
{
    int            i;
    t_env_t       *e;
    ts_db_t       *db;
    ts_db_stats_t  st;

    e = *state;
    db = t_open(e->root, T_SMALL_MAP, 0);

    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_int_equal(st.map_size, T_SMALL_MAP);

    for (i = 0; i < 20; i++) {
        assert_int_equal(t_write(db, "t", i * 200, (i + 1) * 200, 4,
                                 0, 1000), TS_OK);
    }

    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_true(st.grows >= 3);
    assert_true(st.map_size >= 8 * T_SMALL_MAP);
    assert_int_equal(st.series, 4000);
    assert_int_equal(st.chunks, 16000);
    assert_int_equal(t_count_chunks(db, t_find(db, "t", 3999), INT64_MIN,
                                    INT64_MAX), 4);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);

    /* a reopen with the small initial size keeps the grown map */

    db = t_open(e->root, T_SMALL_MAP, 0);
    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_true(st.map_size >= 8 * T_SMALL_MAP);
    assert_int_equal(st.grows, 0);
    ts_db_close(db);
}


static void
test_map_full(void **state)
{
    int                rc, i;
    size_t             n;
    t_env_t           *e;
    ts_db_t           *db;
    ts_db_stats_t      st;
    ts_db_retention_t  ret;

    e = *state;
    db = t_open(e->root, T_SMALL_MAP, 4 * T_SMALL_MAP);

    for (i = 0, rc = TS_OK; i < 100 && rc == TS_OK; i++) {
        rc = t_write(db, "t", i * 100, (i + 1) * 100, 4, i * T_HOUR, 1000);
    }

    assert_int_equal(rc, TS_ERR_FULL);
    assert_non_null(strstr(ts_db_errmsg(db), "map full"));
    assert_non_null(strstr(ts_db_errmsg(db), e->file));

    /* everything committed before is intact and readable */

    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_int_equal(st.map_size, 4 * T_SMALL_MAP);
    assert_int_equal(st.series, (uint64_t) (i - 1) * 100);
    assert_int_equal(t_find(db, "t", (i - 1) * 100), 0);
    assert_int_equal(t_count_chunks(db, t_find(db, "t", 0), INT64_MIN,
                                    INT64_MAX), 4);
    assert_int_equal(ts_db_verify(db), TS_OK);

    /* retention makes room again */

    n = 0;

    do {
        assert_int_equal(ts_db_retention(db, (i - 3) * T_HOUR, 1000, &ret),
                         TS_OK);
        n += ret.chunks;
    } while (ret.more);

    assert_true(n > 0);
    assert_int_equal(t_write(db, "t", 20000, 20050, 4, i * T_HOUR, 1000),
                     TS_OK);
    ts_db_close(db);
}


static void
test_resize_waits_for_reader(void **state)
{
    int             rc, i;
    t_env_t        *e;
    ts_db_t        *db;
    ts_db_conf_t    conf;
    ts_db_rtxn_t   *t;
    char            err[TS_DB_ERR_MAX];

    e = *state;

    memset(&conf, 0, sizeof(conf));
    conf.path = e->root;
    conf.map_size = T_SMALL_MAP;
    conf.resize_wait = 100;
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;
    assert_int_equal(ts_db_open(&db, &conf, err, sizeof(err)), TS_OK);

    /* this thread's own active handle keeps the map from growing */

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);

    for (i = 0, rc = TS_OK; i < 50 && rc == TS_OK; i++) {
        rc = t_write(db, "t", i * 200, (i + 1) * 200, 4, 0, 1000);
    }

    assert_int_equal(rc, TS_ERR_AGAIN);
    assert_non_null(strstr(ts_db_errmsg(db), "waited 100 ms"));

    ts_db_rtxn_reset(t);
    assert_int_equal(t_write(db, "t", i * 200, (i + 1) * 200, 4, 0, 1000),
                     TS_OK);
    assert_int_equal(ts_db_rtxn_renew(t), TS_OK);
    ts_db_rtxn_abort(t);

    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


typedef struct {
    ts_db_t            *db;
    volatile int        stop;
    int                 loops;
    int                 errors;
    char                errmsg[TS_DB_ERR_MAX];
} t_reader_t;


static void *
t_reader(void *data)
{
    int                rc;
    uint32_t           tid;
    uint64_t           id, prev;
    t_reader_t        *r;
    ts_db_rtxn_t      *t;
    ts_db_postings_t   p;

    r = data;

    while (!r->stop) {
        rc = ts_db_rtxn_begin(r->db, &t);

        if (rc == TS_OK) {
            rc = ts_db_tenant(t, "t", 1, &tid);

            if (rc == TS_OK) {
                rc = ts_db_postings_open(t, &p, tid, NULL, 0, NULL, 0);
            }

            if (rc == TS_OK) {
                prev = 0;

                while ((rc = ts_db_postings_next(&p, &id)) == 1) {
                    if (id <= prev) {
                        rc = -100;
                        break;
                    }

                    prev = id;
                }

                ts_db_postings_close(&p);
            }

            rc = (rc == TS_ERR_NOTFOUND) ? 0 : rc;
        }

        if (rc != 0 && r->errors++ == 0) {
            snprintf(r->errmsg, sizeof(r->errmsg), "%d %s", rc,
                     t ? ts_db_rtxn_errmsg(t) : "");
        }

        ts_db_rtxn_abort(t);
        r->loops++;
    }

    return NULL;
}


static void
test_reader_threads_during_growth(void **state)
{
    int            i;
    t_env_t       *e;
    pthread_t      th[2];
    t_reader_t     r;
    ts_db_stats_t  st;

    e = *state;
    memset(&r, 0, sizeof(r));
    r.db = t_open(e->root, T_SMALL_MAP, 0);

    for (i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, t_reader, &r), 0);
    }

    for (i = 0; i < 30; i++) {
        assert_int_equal(t_write(r.db, "t", i * 200, (i + 1) * 200, 4, 0,
                                 1000), TS_OK);
    }

    r.stop = 1;

    for (i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }

    if (r.errors) {
        fail_msg("reader errors: %d, first: %s", r.errors, r.errmsg);
    }

    assert_true(r.loops > 0);
    assert_int_equal(ts_db_stats(r.db, &st), TS_OK);
    assert_true(st.grows >= 3);
    assert_int_equal(ts_db_verify(r.db), TS_OK);
    ts_db_close(r.db);
}


/* Processes. */

static int
t_child_writer(const char *root, int c, int rfd, int wfd)
{
    int       r, i, rc, n;
    char      go;
    t_ls_t    s;
    ts_db_t  *db;
    uint32_t  tid;
    uint64_t  id;
    char      err[TS_DB_ERR_MAX];
    ts_db_rtxn_t      *t;
    ts_db_postings_t   p;

    if (t_open_rc(root, T_SMALL_MAP, 0, &db, err, sizeof(err)) != TS_OK) {
        return 10;
    }

    if (read(rfd, &go, 1) != 1) {
        return 11;
    }

    /* own series c * 10000 + ..., and series 0 .. 49 both write */

    for (r = 0; r < 10; r++) {
        if (t_write(db, "t", c * 10000 + 1000 + r * 200,
                    c * 10000 + 1000 + (r + 1) * 200, 2, 0, 1000) != TS_OK
            || t_write(db, "t", r * 5, (r + 1) * 5, 1, 0, 1000) != TS_OK)
        {
            return 12;
        }
    }

    if (write(wfd, "d", 1) != 1 || read(rfd, &go, 1) != 1) {
        return 13;
    }

    /* the other process's series, and all of them in the postings */

    if (ts_db_rtxn_begin(db, &t) != TS_OK
        || ts_db_tenant(t, "t", 1, &tid) != TS_OK)
    {
        return 14;
    }

    for (i = 0; i < 2000; i += 199) {
        t_ls(&s, (1 - c) * 10000 + 1000 + i);

        if (ts_db_series_find(t, tid, s.l, 3, &id) != TS_OK) {
            return 15;
        }
    }

    rc = ts_db_postings_open(t, &p, tid, NULL, 0, NULL, 0);

    for (n = 0; rc == TS_OK && ts_db_postings_next(&p, &id) == 1; n++) {
        /* void */
    }

    ts_db_postings_close(&p);
    ts_db_rtxn_abort(t);

    rc = (n == 4050) ? ts_db_verify(db) : 16;
    ts_db_close(db);

    return rc == TS_OK ? 0 : 17;
}


static void
test_two_processes(void **state)
{
    int            c, up[2][2], down[2][2];
    char           ch;
    pid_t          pid[2];
    t_env_t       *e;
    ts_db_t       *db;
    ts_db_stats_t  st;

    e = *state;

    /* created first, then closed: nothing crosses fork() */

    db = t_open(e->root, T_SMALL_MAP, 0);
    ts_db_close(db);

    for (c = 0; c < 2; c++) {
        assert_int_equal(pipe(up[c]), 0);
        assert_int_equal(pipe(down[c]), 0);

        pid[c] = t_fork();

        if (pid[c] == 0) {
            _exit(t_child_writer(e->root, c, down[c][0], up[c][1]));
        }

        /* a child that dies early gives EOF, not a hang */

        close(up[c][1]);
        close(down[c][0]);
    }

    for (c = 0; c < 2; c++) {
        assert_int_equal(write(down[c][1], "g", 1), 1);
    }

    for (c = 0; c < 2; c++) {
        if (read(up[c][0], &ch, 1) != 1) {
            fail_msg("writer %d failed: exit %d", c, t_wait(pid[c]));
        }
    }

    for (c = 0; c < 2; c++) {
        assert_int_equal(write(down[c][1], "g", 1), 1);
    }

    for (c = 0; c < 2; c++) {
        assert_int_equal(t_wait(pid[c]), 0);
        close(up[c][0]);
        close(down[c][1]);
    }

    db = t_open(e->root, T_SMALL_MAP, 0);
    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_int_equal(st.series, 4050);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


/*
 * nginx starts its workers together and each opens the environment
 * while the others may already write: open, write, close in a loop in
 * four processes at once.
 */

static int
t_child_churn(const char *root, int c)
{
    int       r, rc;
    char      err[TS_DB_ERR_MAX];
    ts_db_t  *db;

    for (r = 0; r < 15; r++) {
        rc = t_open_rc(root, T_SMALL_MAP, 0, &db, err, sizeof(err));
        if (rc != TS_OK) {
            fprintf(stderr, "child %d open %d: %d %s\n", c, r, rc, err);
            return 1;
        }

        rc = t_write(db, "t", c * 100000 + r * 300,
                     c * 100000 + (r + 1) * 300, 2, 0, 1000);
        if (rc != TS_OK) {
            fprintf(stderr, "child %d write %d: %d %s\n", c, r, rc,
                    ts_db_errmsg(db));
            return 2;
        }

        ts_db_close(db);
    }

    return 0;
}


static void
test_open_while_others_write(void **state)
{
    int            c;
    pid_t          pid[4];
    t_env_t       *e;
    ts_db_t       *db;
    ts_db_stats_t  st;

    e = *state;

    for (c = 0; c < 4; c++) {
        pid[c] = t_fork();

        if (pid[c] == 0) {
            _exit(t_child_churn(e->root, c));
        }
    }

    for (c = 0; c < 4; c++) {
        assert_int_equal(t_wait(pid[c]), 0);
    }

    db = t_open(e->root, 0, 0);
    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_int_equal(st.series, 4 * 15 * 300);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


static void
test_map_resized_by_other(void **state)
{
    pid_t          pid;
    t_env_t       *e;
    ts_db_t       *db, *child;
    ts_db_stats_t  st;
    char           err[TS_DB_ERR_MAX];

    e = *state;
    db = t_open(e->root, T_SMALL_MAP, 0);
    assert_int_equal(t_write(db, "t", 0, 10, 1, 0, 1000), TS_OK);

    pid = t_fork();

    if (pid == 0) {
        if (t_open_rc(e->root, T_SMALL_MAP, 0, &child, err, sizeof(err))
            != TS_OK
            || t_write(child, "t", 10, 4000, 4, 0, 1000) != TS_OK)
        {
            _exit(1);
        }

        ts_db_close(child);
        _exit(0);
    }

    assert_int_equal(t_wait(pid), 0);

    /* the data now lies past this process's map: adopt, then read */

    assert_true(t_find(db, "t", 3999) != 0);
    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_true(st.adopts >= 1);
    assert_true(st.map_size > T_SMALL_MAP);
    assert_int_equal(st.series, 4000);

    assert_int_equal(t_write(db, "t", 4000, 4010, 1, 0, 1000), TS_OK);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


static void
test_fork_guard(void **state)
{
    int             rc;
    pid_t           pid;
    t_env_t        *e;
    ts_db_t        *db;
    ts_db_rtxn_t   *t;
    ts_db_batch_t  *b;

    e = *state;
    db = t_open(e->root, 0, 0);
    assert_int_equal(t_write(db, "t", 0, 3, 1, 0, 1000), TS_OK);

    pid = t_fork();

    if (pid == 0) {
        rc = 0;

        if (ts_db_batch_create(&b) != TS_OK
            || ts_db_apply(db, b) != TS_ERR_INVALID
            || strstr(ts_db_errmsg(db), "fork()") == NULL)
        {
            rc |= 1;
        }

        if (ts_db_rtxn_begin(db, &t) != TS_ERR_INVALID) {
            rc |= 2;
        }

        ts_db_rtxn_abort(t);

        if (ts_db_sync(db) != TS_ERR_INVALID
            || ts_db_reader_check(db, NULL) != TS_ERR_INVALID)
        {
            rc |= 4;
        }

        ts_db_batch_destroy(b);
        ts_db_close(db);
        _exit(rc);
    }

    assert_int_equal(t_wait(pid), 0);

    /* the parent's environment is untouched */

    assert_int_equal(t_write(db, "t", 3, 6, 1, 0, 1000), TS_OK);
    assert_true(t_find(db, "t", 5) != 0);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


static void
test_killed_writer(void **state)
{
    int       fds[2];
    char      ch, dir[128];
    pid_t     pid;
    t_env_t  *e;
    ts_db_t  *db;
    MDB_env  *env;
    MDB_txn  *txn;
    MDB_dbi   dbi;
    MDB_val   k, v;

    e = *state;
    db = t_open(e->root, 0, 0);
    assert_int_equal(t_write(db, "t", 0, 3, 1, 0, 1000), TS_OK);
    assert_int_equal(pipe(fds), 0);
    snprintf(dir, sizeof(dir), "%s/index", e->root);

    pid = t_fork();

    if (pid == 0) {

        /* its own environment, a write transaction, then wait to die */

        if (mdb_env_create(&env) != 0
            || mdb_env_set_maxdbs(env, 16) != 0
            || mdb_env_open(env, dir, MDB_NOTLS, 0600) != 0
            || mdb_txn_begin(env, NULL, 0, &txn) != 0
            || mdb_dbi_open(txn, "tenants", 0, &dbi) != 0)
        {
            _exit(1);
        }

        k.mv_data = "uncommitted";
        k.mv_size = 11;
        v.mv_data = "\0\0\0\7";
        v.mv_size = 4;

        if (mdb_put(txn, dbi, &k, &v, 0) != 0 || write(fds[1], "w", 1) != 1)
        {
            _exit(2);
        }

        pause();
        _exit(3);
    }

    assert_int_equal(read(fds[0], &ch, 1), 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(t_wait(pid), 1000 + SIGKILL);

    /* the robust mutex hands the write lock over */

    alarm(30);
    assert_int_equal(t_write(db, "t", 3, 6, 1, 0, 1000), TS_OK);
    alarm(0);

    assert_true(t_find(db, "t", 5) != 0);
    assert_int_equal(t_find(db, "uncommitted", 0), 0);
    assert_int_equal(ts_db_verify(db), TS_OK);
    close(fds[0]);
    close(fds[1]);
    ts_db_close(db);
}


static void
test_stale_reader(void **state)
{
    int            fds[2], dead;
    char           ch, err[TS_DB_ERR_MAX];
    pid_t          pid;
    t_env_t       *e;
    ts_db_t       *db, *child;
    ts_db_rtxn_t  *t;
    ts_db_stats_t  st;

    e = *state;
    db = t_open(e->root, 0, 0);
    assert_int_equal(pipe(fds), 0);

    pid = t_fork();

    if (pid == 0) {
        if (t_open_rc(e->root, 0, 0, &child, err, sizeof(err)) != TS_OK
            || ts_db_rtxn_begin(child, &t) != TS_OK
            || write(fds[1], "r", 1) != 1)
        {
            _exit(1);
        }

        pause();
        _exit(2);
    }

    assert_int_equal(read(fds[0], &ch, 1), 1);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(t_wait(pid), 1000 + SIGKILL);

    assert_int_equal(ts_db_reader_check(db, &dead), TS_OK);
    assert_int_equal(dead, 1);
    assert_int_equal(ts_db_reader_check(db, &dead), TS_OK);
    assert_int_equal(dead, 0);
    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_int_equal(st.stale_readers, 1);

    close(fds[0]);
    close(fds[1]);
    ts_db_close(db);
}


/* Retention. */

static void
test_retention_steps(void **state)
{
    int                calls, i, rc;
    size_t             n;
    t_col_t            col;
    t_env_t           *e;
    ts_db_t           *db;
    uint32_t           tid, idx;
    uint64_t           old[25], id, maxid;
    ts_db_rtxn_t      *t;
    ts_db_batch_t     *b;
    ts_db_stats_t      st;
    ts_db_retention_t  ret;
    t_ls_t             s;

    e = *state;
    db = t_open(e->root, 0, 0);

    /* 2 chunks an hour; series 0 .. 24 for hours 0 .. 3, series 25 .. 49
       for hours 0 .. 9 */

    assert_int_equal(t_write(db, "t", 0, 25, 8, 0, T_HOUR / 2), TS_OK);
    assert_int_equal(t_write(db, "t", 25, 50, 20, 0, T_HOUR / 2), TS_OK);

    for (i = 0; i < 25; i++) {
        old[i] = t_find(db, "t", i);
    }

    maxid = t_find(db, "t", 49);

    /* nothing ends before hour 0 */

    assert_int_equal(ts_db_retention(db, 0, 100, &ret), TS_OK);
    assert_int_equal(ret.keys, 0);
    assert_false(ret.more);

    /* drop hours 0 .. 4 in steps of at most 20 keys (+ one series) */

    calls = 0;
    n = 0;

    do {
        assert_int_equal(ts_db_retention(db, 5 * T_HOUR + 123, 20, &ret),
                         TS_OK);
        assert_true(ret.keys <= 20 + 3 + 2 * 3);
        n += ret.chunks;
        calls++;
        assert_true(calls < 1000);
    } while (ret.more);

    assert_true(calls > 10);
    assert_int_equal(n, 25 * 8 + 25 * 10);

    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_int_equal(st.series, 25);
    assert_int_equal(st.chunks, 25 * 10);
    assert_int_equal(ts_db_verify(db), TS_OK);

    for (i = 0; i < 25; i++) {
        assert_int_equal(t_find(db, "t", i), 0);
    }

    id = t_find(db, "t", 30);
    assert_int_equal(t_count_chunks(db, id, INT64_MIN, INT64_MAX), 10);
    assert_int_equal(t_count_chunks(db, id, 0, 5 * T_HOUR - 1), 0);

    /* postings and label values forgot the deleted series */

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    assert_int_equal(ts_db_tenant(t, "t", 1, &tid), TS_OK);
    memset(&col, 0, sizeof(col));
    rc = ts_db_label_values(t, tid, "instance", 8, t_collect_str, &col);
    assert_int_equal(rc, TS_OK);
    assert_int_equal(col.n, 25);
    assert_string_equal(col.strs[0], "i00025");
    ts_db_rtxn_abort(t);

    /* ids are not reused: a deleted series comes back under a new id,
       also when the head still holds its old id as a hint */

    assert_int_equal(ts_db_batch_create(&b), TS_OK);
    t_ls(&s, 0);
    assert_int_equal(ts_db_batch_series(b, "t", 1, s.l, 3, old[0], &idx),
                     TS_OK);
    assert_int_equal(ts_db_batch_chunk(b, idx, 9 * T_HOUR, 9 * T_HOUR + 5,
                                       1, "abc", 3), TS_OK);
    assert_int_equal(ts_db_apply(db, b), TS_OK);
    assert_true(ts_db_batch_series_created(b, idx));
    assert_true(ts_db_batch_series_id(b, idx) > maxid);

    ts_db_batch_reset(b);
    assert_int_equal(ts_db_batch_chunk_id(b, old[1], 9 * T_HOUR,
                                          9 * T_HOUR + 5, 1, "abc", 3),
                     TS_OK);
    assert_int_equal(ts_db_apply(db, b), TS_ERR_NOTFOUND);
    assert_non_null(strstr(ts_db_errmsg(db), "retention"));

    ts_db_batch_destroy(b);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


static void
test_disk_bounded(void **state)
{
    int                c;
    off_t              size[40];
    t_env_t           *e;
    ts_db_t           *db;
    ts_db_stats_t      st;
    ts_db_retention_t  ret;

    e = *state;
    db = t_open(e->root, 0, 0);

    /* each cycle writes an hour (200 series x 6 chunks of 150 bytes),
       then retention keeps the last two hours */

    for (c = 0; c < 40; c++) {
        assert_int_equal(t_write(db, "t", (c % 4) * 200, (c % 4) * 200 + 200,
                                 6, c * T_HOUR, T_HOUR / 6), TS_OK);

        do {
            assert_int_equal(ts_db_retention(db, (c - 1) * T_HOUR, 500,
                                             &ret), TS_OK);
        } while (ret.more);

        size[c] = t_file_size(e->file);
    }

    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_true(st.chunks <= 3 * 1200);
    assert_int_equal(ts_db_verify(db), TS_OK);

    if (getenv("T_VERBOSE") != NULL) {
        for (c = 0; c < 40; c += 3) {
            print_message("cycle %d: data.mdb %lld bytes\n", c + 1,
                          (long long) size[c]);
        }
    }

    if (size[39] > size[9] + size[9] / 10) {
        fail_msg("data.mdb grew from %lld (cycle 10) to %lld (cycle 40)",
                 (long long) size[9], (long long) size[39]);
    }

    ts_db_close(db);
}


/* Corrupted files: each case in a child, so a crash inside LMDB is seen
   and reported, not fatal to the run. */

enum {
    T_OUT_OK = 0,           /* opened, verified */
    T_OUT_OPEN_CORRUPT,
    T_OUT_OPEN_INVALID,
    T_OUT_VERIFY_CORRUPT,
    T_OUT_OTHER
};


static void
t_pages_write(const char *file, long from, long step, long off, int byte,
    size_t len)
{
    int          fd;
    long         pg, pages;
    uint8_t      junk[4096];
    struct stat  st;

    memset(junk, byte, sizeof(junk));
    fd = open(file, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    pages = st.st_size / 4096;

    for (pg = from; pg < pages; pg += step) {
        assert_int_equal(pwrite(fd, junk, len, pg * 4096 + off),
                         (ssize_t) len);
    }

    close(fd);
}


static void
t_cor_empty(t_env_t *e)
{
    assert_int_equal(truncate(e->file, 0), 0);
}


static void
t_cor_one_page(t_env_t *e)
{
    assert_int_equal(truncate(e->file, 4096), 0);
}


static void
t_cor_half(t_env_t *e)
{
    assert_int_equal(truncate(e->file, t_file_size(e->file) / 2), 0);
}


static void
t_cor_metas(t_env_t *e)
{
    t_pages_write(e->file, 0, 1, 0, 0xa5, 4096);
}


static void
t_cor_both_metas(t_env_t *e)
{
    int      fd;
    uint8_t  junk[8192];

    memset(junk, 0xa5, sizeof(junk));
    fd = open(e->file, O_WRONLY);
    assert_int_equal(pwrite(fd, junk, sizeof(junk), 0), sizeof(junk));
    close(fd);
}


static void
t_cor_one_meta(t_env_t *e)
{
    int      fd;
    uint8_t  junk[64];

    memset(junk, 0xa5, sizeof(junk));
    fd = open(e->file, O_WRONLY);
    assert_int_equal(pwrite(fd, junk, sizeof(junk), 16), sizeof(junk));
    close(fd);
}


static void
t_cor_lock(t_env_t *e)
{
    int      fd;
    char     path[192];
    uint8_t  junk[4096];

    memset(junk, 0xa5, sizeof(junk));
    snprintf(path, sizeof(path), "%s/index/lock.mdb", e->root);
    fd = open(path, O_WRONLY);
    assert_int_equal(write(fd, junk, sizeof(junk)), sizeof(junk));
    close(fd);
}


static void
t_cor_headers(t_env_t *e)
{
    t_pages_write(e->file, 2, 7, 0, 0xa5, 16);
}


static void
t_cor_bodies(t_env_t *e)
{
    t_pages_write(e->file, 2, 3, 100, 0xa5, 200);
}


static void
t_cor_zero_pages(t_env_t *e)
{
    t_pages_write(e->file, 2, 1, 0, 0, 4096);
}


static void
t_cor_garbage_pages(t_env_t *e)
{
    t_pages_write(e->file, 2, 1, 0, 0xa5, 4096);
}


static void
t_cor_random(t_env_t *e)
{
    int       i, fd;
    off_t     size;
    uint8_t   x;
    unsigned  seed;

    seed = 1;
    size = t_file_size(e->file);
    fd = open(e->file, O_WRONLY);

    for (i = 0; i < 50; i++) {
        x = (uint8_t) rand_r(&seed);
        assert_int_equal(pwrite(fd, &x, 1,
                                8192 + rand_r(&seed) % (size - 8192)), 1);
    }

    close(fd);
}


static void
t_cor_directory(t_env_t *e)
{
    assert_int_equal(unlink(e->file), 0);
    assert_int_equal(mkdir(e->file, 0700), 0);
}


static int
t_cor_check(t_env_t *e)
{
    int       rc, out;
    char      err[TS_DB_ERR_MAX];
    ts_db_t  *db;

    rc = t_open_rc(e->root, 0, 0, &db, err, sizeof(err));

    if (rc != TS_OK) {
        out = rc == TS_ERR_CORRUPT ? T_OUT_OPEN_CORRUPT
              : rc == TS_ERR_INVALID ? T_OUT_OPEN_INVALID : T_OUT_OTHER;

        /* a message names the file (or the bad path) */
        return strstr(err, e->root) ? out : T_OUT_OTHER;
    }

    rc = ts_db_verify(db);
    out = rc == TS_OK ? T_OUT_OK
          : rc == TS_ERR_CORRUPT ? T_OUT_VERIFY_CORRUPT : T_OUT_OTHER;

    if (rc != TS_OK && strstr(ts_db_errmsg(db), e->file) == NULL) {
        out = T_OUT_OTHER;
    }

    ts_db_close(db);

    return out;
}


static void
test_corrupt_files(void **state)
{
    int       out;
    size_t    i;
    pid_t     pid;
    t_env_t  *e;
    ts_db_t  *db;

    static const struct {
        const char  *name;
        void       (*corrupt)(t_env_t *e);
        int          out;
        int          may_crash;         /* a known LMDB limit */
    } cases[] = {
        { "empty data.mdb (opens as a new index)", t_cor_empty,
          T_OUT_OK, 0 },
        { "truncated to one page", t_cor_one_page, T_OUT_OPEN_CORRUPT, 0 },
        { "truncated to half", t_cor_half, T_OUT_OPEN_CORRUPT, 0 },
        { "both meta pages garbage", t_cor_both_metas,
          T_OUT_OPEN_CORRUPT, 0 },
        { "one meta page's magic", t_cor_one_meta, T_OUT_OPEN_CORRUPT, 0 },
        { "every page garbage", t_cor_metas, T_OUT_OPEN_CORRUPT, 0 },
        { "lock.mdb garbage (reset)", t_cor_lock, T_OUT_OK, 0 },
        /* with format 2's page layout one of the pages hit is on the
           path to meta "format": LMDB follows its garbage page number */
        { "page headers garbage", t_cor_headers, T_OUT_VERIFY_CORRUPT, 1 },
        { "page bodies garbage", t_cor_bodies, T_OUT_VERIFY_CORRUPT, 0 },
        { "50 random bytes", t_cor_random, T_OUT_VERIFY_CORRUPT, 0 },
        { "data pages zeroed", t_cor_zero_pages, T_OUT_OPEN_CORRUPT, 0 },
        { "data pages garbage", t_cor_garbage_pages, T_OUT_OPEN_CORRUPT,
          1 },
        { "data.mdb is a directory", t_cor_directory, T_OUT_OPEN_INVALID,
          0 },
    };

    e = *state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        db = t_open(e->root, 0, 0);
        assert_int_equal(t_write(db, "t", 0, 2000, 3, 0, 1000), TS_OK);
        ts_db_close(db);

        cases[i].corrupt(e);

        pid = t_fork();

        if (pid == 0) {
            _exit(t_cor_check(e));
        }

        out = t_wait(pid);

        if (out >= 1000 && cases[i].may_crash) {
            print_message("known limit: \"%s\" crashes LMDB %d.%d.%d"
                          " (signal %d), see docs/format/lmdb.md\n",
                          cases[i].name, MDB_VERSION_MAJOR,
                          MDB_VERSION_MINOR, MDB_VERSION_PATCH, out - 1000);

        } else if (out != cases[i].out) {
            fail_msg("case \"%s\": outcome %d, expected %d", cases[i].name,
                     out, cases[i].out);
        }

        (void) nftw(e->root, t_rm, 16, FTW_DEPTH | FTW_PHYS);
        assert_int_equal(mkdir(e->root, 0700), 0);
    }
}


/* Corrupted records: LMDB is fine, one of our values is not. */

static int
t_rec_short(uint8_t *v, size_t *len)
{
    (void) v;
    *len = 5;
    return 0;
}


static int
t_rec_flip_last(uint8_t *v, size_t *len)
{
    v[*len - 1] ^= 0x40;
    return 0;
}


static int
t_rec_more_labels(uint8_t *v, size_t *len)
{
    (void) len;
    v[13] = 9;
    return 0;
}


static int
t_rec_two(uint8_t *v, size_t *len)
{
    (void) v;
    *len = 2;
    return 0;
}


static int
t_rec_md_overrun(uint8_t *v, size_t *len)
{
    (void) len;
    v[1] = 0x7f;
    return 0;
}


static int
t_read_chunks(ts_db_rtxn_t *t, uint32_t tid, uint64_t id)
{
    int             rc;
    ts_db_chunk_t   c;
    ts_db_chunks_t  it;

    (void) tid;

    rc = ts_db_chunks_open(t, &it, id, INT64_MIN, INT64_MAX);

    while (rc == TS_OK && (rc = ts_db_chunks_next(&it, &c)) == 1) {
        rc = TS_OK;
    }

    ts_db_chunks_close(&it);

    return rc;
}


static int
t_read_labels(ts_db_rtxn_t *t, uint32_t tid, uint64_t id)
{
    uint32_t    n;
    ts_label_t  l[16];

    (void) tid;

    return ts_db_series_labels(t, id, NULL, l, 16, &n);
}


static int
t_read_tenant(ts_db_rtxn_t *t, uint32_t tid, uint64_t id)
{
    (void) id;

    return ts_db_tenant(t, "t", 1, &tid);
}


static int
t_read_metadata(ts_db_rtxn_t *t, uint32_t tid, uint64_t id)
{
    ts_db_metadata_t  md;

    (void) id;

    return ts_db_metadata_get(t, tid, "up", 2, &md);
}


static void
test_corrupt_records(void **state)
{
    int                rc;
    size_t             i, klen;
    uint8_t            key[16];
    t_env_t           *e;
    ts_db_t           *db;
    uint32_t           tid;
    uint64_t           id;
    ts_db_rtxn_t      *t;
    ts_db_batch_t     *b;
    ts_db_metadata_t   md;

    static const struct {
        const char   *name;
        const char   *db;
        int           key;            /* 0 chunk, 1 series, 2 tenant,
                                         3 metadata */
        t_mutate_pt   mutate;
        int         (*read)(ts_db_rtxn_t *t, uint32_t tid, uint64_t id);
        const char   *msg;
    } cases[] = {
        { "chunk shorter than its header", "chunks", 0, t_rec_short,
          t_read_chunks, "shorter than its 13-byte header" },
        { "chunk bytes flipped", "chunks", 0, t_rec_flip_last,
          t_read_chunks, "checksum mismatch" },
        { "series shorter than its header", "series", 1, t_rec_short,
          t_read_labels, "shorter than its 14-byte header" },
        { "series with more labels than bytes", "series", 1,
          t_rec_more_labels, t_read_labels, "runs past" },
        { "tenant id of 2 bytes", "tenants", 2, t_rec_two, t_read_tenant,
          "\"tenants\"" },
        { "metadata lengths past the end", "metadata", 3,
          t_rec_md_overrun, t_read_metadata, "\"metadata\"" },
    };

    e = *state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        db = t_open(e->root, 0, 0);
        assert_int_equal(t_write(db, "t", 0, 3, 2, 0, 1000), TS_OK);
        assert_int_equal(ts_db_batch_create(&b), TS_OK);
        md = (ts_db_metadata_t) { "up", 2, "", 0, "Up.", 3, 2 };
        assert_int_equal(ts_db_batch_metadata(b, "t", 1, &md), TS_OK);
        assert_int_equal(ts_db_apply(db, b), TS_OK);
        ts_db_batch_destroy(b);
        id = t_find(db, "t", 1);
        ts_db_close(db);

        switch (cases[i].key) {
        case 0:
            t_be64(key, id);
            t_be64(key + 8, 1000 ^ T_SIGN);
            klen = 16;
            break;
        case 1:
            t_be64(key, id);
            klen = 8;
            break;
        case 2:
            memcpy(key, "t", 1);
            klen = 1;
            break;
        default:
            memcpy(key, "\0\0\0\1up", 6);
            klen = 6;
        }

        t_raw_mutate(e, cases[i].db, key, klen, cases[i].mutate);

        db = t_open(e->root, 0, 0);
        assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
        tid = 1;

        rc = cases[i].read(t, tid, id);

        if (rc != TS_ERR_CORRUPT
            || strstr(ts_db_rtxn_errmsg(t), cases[i].msg) == NULL
            || strstr(ts_db_rtxn_errmsg(t), e->file) == NULL)
        {
            fail_msg("case \"%s\": %d \"%s\"", cases[i].name, rc,
                     ts_db_rtxn_errmsg(t));
        }

        ts_db_rtxn_abort(t);

        if (ts_db_verify(db) != TS_ERR_CORRUPT) {
            fail_msg("case \"%s\": verify passed", cases[i].name);
        }

        ts_db_close(db);

        (void) nftw(e->root, t_rm, 16, FTW_DEPTH | FTW_PHYS);
        assert_int_equal(mkdir(e->root, 0700), 0);
    }
}


/*
 * New series get increasing ids, and their chunks keys past every key
 * stored, so their puts append (MDB_APPEND, MDB_APPENDDUP) and fill the
 * pages instead of splitting them in half.  Batches that mix appends
 * with overwrites and puts in the middle keep every record and cross
 * reference.
 */

static void
test_append_fill(void **state)
{
    int             i;
    t_ls_t          s;
    t_env_t        *e;
    uint8_t         data[T_CHUNK_LEN];
    size_t          ideal, used;
    ts_db_t        *db;
    uint32_t        idx;
    uint64_t        first, last, id;
    ts_db_chunk_t   c;
    ts_db_rtxn_t   *t;
    ts_db_batch_t  *b;
    ts_db_chunks_t  it;
    ts_db_stats_t   st;

    e = *state;
    db = t_open(e->root, 0, 0);

    /* 20 transactions of 500 new series, one chunk each */

    for (i = 0; i < 20; i++) {
        assert_int_equal(t_write(db, "t", i * 500, (i + 1) * 500, 1,
                                 T_HOUR, 1000), TS_OK);
    }

    assert_int_equal(ts_db_verify(db), TS_OK);
    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_int_equal(st.series, 10000);
    assert_int_equal(st.chunks, 10000);

    /*
     * The bytes the records need, with LMDB's 8-byte node header and
     * 2-byte slot per entry: series records (key 8, header 14, labels
     * of 12 + 16 + 7 bytes), series_hash entries (key 12, one id),
     * chunks (key 16, header 13, data), retention entries (16 bytes)
     * and postings ids (8 bytes, 7 lists per series): 3.58 MB.  Used
     * (free pages included): 6.64 MB with plain puts, whose splits
     * leave the pages that only grow at the end half full, 5.94 MB
     * with the append flags; the rest is series_hash (random keys) and
     * the pages each transaction copied and freed.
     */

    ideal = 10000 * ((10 + 8 + 14 + 35) + (10 + 12 + 8)
                     + (10 + 16 + 13 + T_CHUNK_LEN) + 16 + 7 * 8);
    used = st.used_bytes;
    print_message("append fill: %zu bytes used, %zu bytes of records\n",
                  used, ideal);
    assert_true(used < ideal + ideal * 3 / 4);

    first = t_find(db, "t", 0);
    last = t_find(db, "t", 9999);
    assert_true(first != 0 && last > first);

    /*
     * A mixed batch: a chunk in the middle of the key space (series 0),
     * the greatest key again (an overwrite), a new series whose chunk
     * is put twice (the later put wins) and a chunk for a new series.
     */

    assert_int_equal(ts_db_batch_create(&b), TS_OK);

    t_payload(data, sizeof(data), 91);
    assert_int_equal(ts_db_batch_chunk_id(b, first, 2 * T_HOUR,
                                          2 * T_HOUR + 10, 1, data, 20),
                     TS_OK);
    assert_int_equal(ts_db_batch_chunk_id(b, last, T_HOUR, T_HOUR + 999, 1,
                                          data, 30), TS_OK);

    t_ls(&s, 10000);
    assert_int_equal(ts_db_batch_series(b, "t", 1, s.l, 3, 0, &idx), TS_OK);
    assert_int_equal(ts_db_batch_chunk(b, idx, T_HOUR, T_HOUR + 5, 1, data,
                                       10), TS_OK);
    assert_int_equal(ts_db_batch_chunk(b, idx, T_HOUR, T_HOUR + 7, 1, data,
                                       12), TS_OK);

    t_ls(&s, 10001);
    assert_int_equal(ts_db_batch_series(b, "t", 1, s.l, 3, 0, &idx), TS_OK);
    assert_int_equal(ts_db_batch_chunk(b, idx, 3 * T_HOUR, 3 * T_HOUR + 5, 1,
                                       data, 14), TS_OK);

    assert_int_equal(ts_db_apply(db, b), TS_OK);
    id = ts_db_batch_series_id(b, 0);
    assert_true(id > last);
    assert_int_equal(ts_db_batch_series_id(b, idx), id + 1);
    ts_db_batch_destroy(b);

    assert_int_equal(ts_db_verify(db), TS_OK);
    assert_int_equal(ts_db_stats(db, &st), TS_OK);
    assert_int_equal(st.series, 10002);
    assert_int_equal(st.chunks, 10003);
    assert_int_equal(t_count_chunks(db, first, 0, 3 * T_HOUR), 2);
    assert_int_equal(t_find(db, "t", 10000), id);
    assert_int_equal(t_find(db, "t", 10001), id + 1);

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);

    assert_int_equal(ts_db_chunks_open(t, &it, last, 0, 3 * T_HOUR), TS_OK);
    assert_int_equal(ts_db_chunks_next(&it, &c), 1);
    assert_int_equal(c.maxt, T_HOUR + 999);
    assert_int_equal(c.len, 30);
    assert_memory_equal(c.data, data, 30);
    assert_int_equal(ts_db_chunks_next(&it, &c), 0);
    ts_db_chunks_close(&it);

    assert_int_equal(ts_db_chunks_open(t, &it, id, 0, 3 * T_HOUR), TS_OK);
    assert_int_equal(ts_db_chunks_next(&it, &c), 1);
    assert_int_equal(c.maxt, T_HOUR + 7);
    assert_int_equal(c.len, 12);
    assert_int_equal(ts_db_chunks_next(&it, &c), 0);
    ts_db_chunks_close(&it);

    ts_db_rtxn_abort(t);

    ts_db_close(db);
}


/* Rss of the mapping of this process that holds addr, in kB; -1: none. */

static long
t_map_rss(uintptr_t addr)
{
    int            in;
    long           rss;
    char           line[512];
    FILE          *f;
    unsigned long  lo, hi;

    f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);

    in = 0;
    rss = -1;

    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-')
            < strchr(line, ' '))
        {
            in = (addr >= lo && addr < hi);
            continue;
        }

        if (in && sscanf(line, "Rss: %ld kB", &rss) == 1) {
            break;
        }
    }

    (void) fclose(f);

    return rss;
}


/*
 * ts_db_drop_pages() unmaps the pages reads touched: the map's Rss goes
 * to zero and the data reads back the same, from the page cache.
 */

static void
test_drop_pages(void **state)
{
    int             rc;
    t_env_t        *e;
    size_t          bytes, n;
    uint8_t         data[T_CHUNK_LEN];
    ts_db_t        *db;
    uint64_t        id;
    uintptr_t       addr;
    ts_db_chunk_t   c;
    ts_db_rtxn_t   *t;
    ts_db_chunks_t  it;

    e = *state;
    db = t_open(e->root, 0, 0);

    assert_int_equal(t_write(db, "t", 0, 2000, 2, T_HOUR, 1000), TS_OK);
    id = t_find(db, "t", 0);

    /* read every chunk of the first 2000 ids: the pages get mapped */

    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    addr = 0;
    n = 0;

    for (id = 1; id <= 2000; id++) {
        assert_int_equal(ts_db_chunks_open(t, &it, id, 0, 3 * T_HOUR),
                         TS_OK);

        while ((rc = ts_db_chunks_next(&it, &c)) == 1) {
            addr = (uintptr_t) c.data;
            n++;
        }

        assert_int_equal(rc, 0);
        ts_db_chunks_close(&it);
    }

    ts_db_rtxn_abort(t);
    assert_int_equal(n, 4000);
    assert_true(t_map_rss(addr) > 0);

    assert_int_equal(ts_db_drop_pages(db, &bytes), TS_OK);
    assert_true(bytes >= 64 * 1024);
    assert_int_equal(t_map_rss(addr), 0);

    /* the data is still there, faulted in again */

    t_payload(data, sizeof(data), 1999 * 1000 + 1);
    id = t_find(db, "t", 1999);
    assert_int_equal(ts_db_rtxn_begin(db, &t), TS_OK);
    assert_int_equal(ts_db_chunks_open(t, &it, id, T_HOUR + 1000,
                                       T_HOUR + 1999), TS_OK);
    assert_int_equal(ts_db_chunks_next(&it, &c), 1);
    assert_int_equal(c.len, sizeof(data));
    assert_memory_equal(c.data, data, sizeof(data));
    ts_db_chunks_close(&it);
    ts_db_rtxn_abort(t);

    assert_true(t_map_rss(addr) > 0);
    assert_int_equal(ts_db_verify(db), TS_OK);

    ts_db_close(db);
}


#define T(name)  cmocka_unit_test_setup_teardown(name, t_setup, t_teardown)


/*
 * Migration from format version 1: store/tests/data/lmdb-v1/ holds a
 * version-1 index written by the code of commit 2903863 and what that
 * code's read API answered for it (expected.txt, db_dump.h).
 */

#define T_V1_DIR  "store/tests/data/lmdb-v1"


static char *
t_slurp(const char *path, size_t *len)
{
    long   n;
    char  *buf;
    FILE  *f;

    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);

    buf = malloc((size_t) n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
    buf[n] = '\0';
    fclose(f);

    *len = (size_t) n;

    return buf;
}


/* Copies the fixture's data.mdb to <root>/index/ (no lock.mdb). */

static void
t_v1_copy(t_env_t *e)
{
    int     fd;
    char    dir[128], *data;
    size_t  len;

    snprintf(dir, sizeof(dir), "%s/index", e->root);
    assert_int_equal(mkdir(dir, 0700), 0);

    data = t_slurp(T_V1_DIR "/data.mdb", &len);

    fd = open(e->file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t) len);
    close(fd);
    free(data);
}


static int
t_open_step(const char *path, unsigned step, ts_db_t **db, char *err,
    size_t errlen)
{
    ts_db_conf_t  conf;

    memset(&conf, 0, sizeof(conf));
    conf.path = path;
    conf.uid = (uid_t) -1;
    conf.gid = (gid_t) -1;
    conf.migrate_step = step;

    return ts_db_open(db, &conf, err, errlen);
}


/* 0 if the index answers exactly what expected.txt holds. */

static int
t_v1_same(ts_db_t *db)
{
    int     rc;
    char   *buf, *exp;
    size_t  len, elen, i;
    FILE   *f;

    buf = NULL;
    len = 0;
    f = open_memstream(&buf, &len);
    assert_non_null(f);

    rc = dd_dump(f, db);
    fclose(f);

    if (rc != TS_OK) {
        print_error("dump: %d %s\n", rc, ts_db_errmsg(db));
        free(buf);
        return -1;
    }

    exp = t_slurp(T_V1_DIR "/expected.txt", &elen);

    rc = (len == elen && memcmp(buf, exp, len) == 0) ? 0 : -1;

    if (rc != 0) {
        for (i = 0; i < len && i < elen && buf[i] == exp[i]; i++) {
            /* void */
        }

        print_error("dump differs at byte %zu of %zu (%zu expected):"
                    " \"%.60s\" against \"%.60s\"\n", i, len, elen,
                    buf + i, exp + i);
    }

    free(buf);
    free(exp);

    return rc;
}


/*
 * What the raw environment holds: the format version, whether meta
 * "migrate" and the sub-databases "postings" / "pblocks" exist.
 */

typedef struct {
    uint32_t   version;
    int        migrate;            /* phase 1: postings */
    int        migrate_series;     /* phase 2: series records */
    int        postings;
    int        pblocks;
} t_raw_state_t;


static void
t_raw_state(t_env_t *e, t_raw_state_t *s)
{
    int       rc;
    char      dir[128];
    MDB_env  *env;
    MDB_txn  *txn;
    MDB_dbi   dbi;
    MDB_val   k, v;

    memset(s, 0, sizeof(t_raw_state_t));
    snprintf(dir, sizeof(dir), "%s/index", e->root);

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS | MDB_RDONLY, 0600),
                     0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);

    k.mv_data = "format";
    k.mv_size = 6;
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    assert_int_equal(v.mv_size, 32);
    s->version = ((uint8_t *) v.mv_data)[11];

    k.mv_data = "migrate";
    k.mv_size = 7;
    s->migrate = mdb_get(txn, dbi, &k, &v) == 0;
    k.mv_data = "migrate_series";
    k.mv_size = 14;
    s->migrate_series = mdb_get(txn, dbi, &k, &v) == 0;

    rc = mdb_dbi_open(txn, "postings", 0, &dbi);
    s->postings = rc == 0;
    rc = mdb_dbi_open(txn, "pblocks", 0, &dbi);
    s->pblocks = rc == 0;

    mdb_txn_abort(txn);
    mdb_env_close(env);
}


/* opens with migrate_step step: converted, verified, as expected.txt */

static void
t_converted(t_env_t *e, unsigned step)
{
    int            rc;
    char           err[TS_DB_ERR_MAX];
    ts_db_t       *db;
    t_raw_state_t  s;

    rc = t_open_step(e->root, step, &db, err, sizeof(err));
    if (rc != TS_OK) {
        fail_msg("open: %d %s", rc, err);
    }

    assert_int_equal(ts_db_verify(db), TS_OK);
    assert_int_equal(t_v1_same(db), 0);
    ts_db_close(db);

    t_raw_state(e, &s);
    assert_int_equal(s.version, 2);
    assert_true(!s.postings && s.pblocks && !s.migrate && !s.migrate_series);
}


static void
test_migrate_v1(void **state)
{
    t_env_t       *e;
    ts_db_t       *db;
    t_raw_state_t  s;

    e = *state;
    t_v1_copy(e);

    t_raw_state(e, &s);
    assert_int_equal(s.version, 1);
    assert_true(s.postings && !s.pblocks && !s.migrate && !s.migrate_series);

    /* 50 ids a transaction: steps stop inside lists and between them */

    t_converted(e, 50);

    /* again: nothing left to do, the same answers */

    db = t_open(e->root, 0, 0);
    assert_int_equal(t_v1_same(db), 0);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


/* Killed in the middle, the next open finishes it. */

static void
test_migrate_killed(void **state)
{
    int            rc, seen, round;
    char           err[TS_DB_ERR_MAX];
    pid_t          pid;
    t_env_t       *e;
    ts_db_t       *db;
    t_raw_state_t  s;

    e = *state;
    t_v1_copy(e);

    /* kill it in the middle of each phase: converting the postings,
       then (resumed) converting the series records */

    for (round = 0; round < 2; round++) {
        pid = t_fork();

        if (pid == 0) {
            rc = t_open_step(e->root, 1, &db, err, sizeof(err));
            _exit(rc == TS_OK ? 0 : 1);
        }

        seen = 0;

        while (!seen) {
            t_raw_state(e, &s);
            seen = round == 0 ? s.migrate : s.migrate_series;

            if (!seen) {
                assert_int_equal(waitpid(pid, &rc, WNOHANG), 0);
                usleep(1000);
            }
        }

        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(t_wait(pid), 1000 + SIGKILL);

        t_raw_state(e, &s);
        assert_int_equal(s.version, 1);

        if (round == 0) {
            assert_true(s.migrate && s.postings && s.pblocks);

        } else {
            assert_true(!s.migrate && s.migrate_series && !s.postings
                        && s.pblocks);
        }
    }

    t_converted(e, 0);
}


/* Three processes open a version-1 index at once: one converts it. */

static void
test_migrate_concurrent(void **state)
{
    int        i, rc;
    char       err[TS_DB_ERR_MAX];
    pid_t      pid[3];
    t_env_t   *e;
    ts_db_t   *db;

    e = *state;
    t_v1_copy(e);

    for (i = 0; i < 3; i++) {
        pid[i] = t_fork();

        if (pid[i] == 0) {
            rc = t_open_step(e->root, 7, &db, err, sizeof(err));
            if (rc != TS_OK) {
                _exit(1);
            }

            rc = t_v1_same(db);
            ts_db_close(db);
            _exit(rc == 0 ? 0 : 2);
        }
    }

    for (i = 0; i < 3; i++) {
        assert_int_equal(t_wait(pid[i]), 0);
    }

    db = t_open(e->root, 0, 0);
    assert_int_equal(ts_db_verify(db), TS_OK);
    ts_db_close(db);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        T(test_open_create_reopen),
        T(test_open_chown),
        T(test_open_symlink),
        T(test_format_record),
        T(test_not_an_index),
        T(test_schema_damage),
        T(test_series_idempotent),
        T(test_series_hints),
        T(test_tenants_isolated),
        T(test_postings_order_seek),
        T(test_label_names_values),
        T(test_chunks_overwrite),
        T(test_chunks_range),
        T(test_append_fill),
        T(test_drop_pages),
        T(test_metadata),
        T(test_batch_invalid),
        T(test_snapshot_isolation),
        T(test_map_grow),
        T(test_map_full),
        T(test_resize_waits_for_reader),
        T(test_reader_threads_during_growth),
        T(test_two_processes),
        T(test_open_while_others_write),
        T(test_map_resized_by_other),
        T(test_fork_guard),
        T(test_killed_writer),
        T(test_stale_reader),
        T(test_retention_steps),
        T(test_disk_bounded),
        T(test_corrupt_files),
        T(test_corrupt_records),
        T(test_migrate_v1),
        T(test_migrate_killed),
        T(test_migrate_concurrent),
    };

    /* T_FILTER=test_name runs one test */

    if (getenv("T_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("T_FILTER"));
    }

    return cmocka_run_group_tests_name("ts_db", tests, NULL, NULL);
}
