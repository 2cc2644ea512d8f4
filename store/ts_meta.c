/*
 * Copyright (C) ngx_tsdb authors
 *
 * Metric metadata in shared memory; see ts_meta.h.
 */

#include <string.h>

#include "ts_labels.h"
#include "ts_meta.h"
#include "ts_plock.h"


#define TS_META_MAGIC        0x74736d65u
#define TS_META_VERSION      1
#define TS_META_ALIGN        64
#define TS_META_MIN          (64 * 1024)
#define TS_META_REGION_MIN   (512 * 1024)
#define TS_META_REGION_MAX   (64 * 1024 * 1024)
#define TS_META_BLOB_HDR     8


typedef struct {
    uint64_t                hash;
    uint32_t                tenant;
    uint32_t                blob;       /* arena offset, release/acquire */
    uint32_t                gen;
    uint32_t                saved;      /* gen of the last durable copy */
    uint32_t                used;       /* published last */
    uint32_t                pad;
} ts_meta_slot_t;


struct ts_meta_hdr_s {
    uint32_t                magic;
    uint32_t                version;
    uint64_t                size;
    uint32_t                nslots;     /* a power of two */
    uint32_t                max_entries;
    uint64_t                off_slots;
    uint64_t                off_arena;
    uint64_t                arena_size;

    int64_t                 lock;
    uint32_t                entries;
    uint32_t                pad;
    uint64_t                arena_used;
};


static void ts_meta_layout(ts_meta_hdr_t *hdr, size_t size);
static ts_meta_slot_t *ts_meta_slots(ts_meta_hdr_t *hdr);
static const uint8_t *ts_meta_blob(ts_meta_hdr_t *hdr, uint32_t off);
static uint64_t ts_meta_hash(uint32_t tenant, const char *name, size_t len);
static ts_meta_slot_t *ts_meta_find(ts_meta_hdr_t *hdr, uint32_t tenant,
    const char *name, size_t len, uint64_t hash, ts_meta_slot_t **empty);
static void ts_meta_read(ts_meta_hdr_t *hdr, ts_meta_slot_t *s,
    ts_meta_entry_t *e);
static int ts_meta_same(ts_meta_hdr_t *hdr, uint32_t blob,
    const ts_meta_entry_t *e);
static uint32_t ts_meta_alloc(ts_meta_hdr_t *hdr, const ts_meta_entry_t *e);
static void ts_meta_lock(ts_meta_t *m);


size_t
ts_meta_region_size(size_t size)
{
    size_t  n;

    n = size / 64;

    if (n < TS_META_REGION_MIN) {
        n = TS_META_REGION_MIN;
    }

    if (n > TS_META_REGION_MAX) {
        n = TS_META_REGION_MAX;
    }

    return n & ~(size_t) (TS_META_ALIGN - 1);
}


int
ts_meta_open(ts_meta_t *m, void *mem, size_t size, int64_t pid,
    ts_pid_alive_pt alive)
{
    ts_meta_hdr_t  *hdr, want;

    if (size < TS_META_MIN || ((uintptr_t) mem & 7) != 0) {
        return TS_ERR_INVALID;
    }

    hdr = mem;
    m->hdr = hdr;
    m->pid = pid;
    m->alive = alive;

    memset(&want, 0, sizeof(want));
    ts_meta_layout(&want, size);

    if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) == TS_META_MAGIC
        && hdr->version == TS_META_VERSION
        && memcmp(&hdr->size, &want.size,
                  offsetof(ts_meta_hdr_t, lock)
                  - offsetof(ts_meta_hdr_t, size)) == 0)
    {
        return TS_OK;
    }

    memcpy(hdr, &want, sizeof(want));
    memset(ts_meta_slots(hdr), 0,
           (size_t) hdr->nslots * sizeof(ts_meta_slot_t));

    /* offset 0 means "none" */
    hdr->arena_used = 8;

    __atomic_store_n(&hdr->magic, TS_META_MAGIC, __ATOMIC_RELEASE);

    return TS_OK;
}


/* a quarter for slots (32 bytes each), the rest for blobs */

static void
ts_meta_layout(ts_meta_hdr_t *hdr, size_t size)
{
    uint64_t  off;
    uint32_t  n;

    n = 64;

    while ((uint64_t) n * 2 * sizeof(ts_meta_slot_t) <= size / 4) {
        n *= 2;
    }

    hdr->magic = 0;
    hdr->version = TS_META_VERSION;
    hdr->size = size;
    hdr->nslots = n;
    hdr->max_entries = n / 4 * 3;

    off = (sizeof(ts_meta_hdr_t) + TS_META_ALIGN - 1)
          & ~(uint64_t) (TS_META_ALIGN - 1);
    hdr->off_slots = off;
    off += (uint64_t) n * sizeof(ts_meta_slot_t);
    hdr->off_arena = off;
    hdr->arena_size = size - off;

    if (hdr->arena_size > UINT32_MAX) {
        hdr->arena_size = UINT32_MAX;
    }
}


static ts_meta_slot_t *
ts_meta_slots(ts_meta_hdr_t *hdr)
{
    return (ts_meta_slot_t *) ((char *) hdr + hdr->off_slots);
}


static const uint8_t *
ts_meta_blob(ts_meta_hdr_t *hdr, uint32_t off)
{
    return (const uint8_t *) hdr + hdr->off_arena + off;
}


static uint64_t
ts_meta_hash(uint32_t tenant, const char *name, size_t len)
{
    return ts_xxh64(name, len, tenant);
}


int
ts_meta_set(ts_meta_t *m, const ts_meta_entry_t *e)
{
    int              rc;
    uint32_t         blob;
    uint64_t         hash;
    ts_meta_hdr_t   *hdr;
    ts_meta_slot_t  *s, *empty;

    if (e->name_len == 0 || e->name_len > TS_META_NAME_MAX
        || e->help_len > TS_META_TEXT_MAX || e->unit_len > TS_META_TEXT_MAX)
    {
        return TS_ERR_INVALID;
    }

    hdr = m->hdr;
    hash = ts_meta_hash(e->tenant, e->name, e->name_len);

    /* unchanged: nothing to do, and no lock */

    s = ts_meta_find(hdr, e->tenant, e->name, e->name_len, hash, &empty);
    if (s != NULL
        && ts_meta_same(hdr, __atomic_load_n(&s->blob, __ATOMIC_ACQUIRE), e))
    {
        return 0;
    }

    ts_meta_lock(m);

    s = ts_meta_find(hdr, e->tenant, e->name, e->name_len, hash, &empty);

    if (s != NULL && ts_meta_same(hdr, s->blob, e)) {
        rc = 0;
        goto done;
    }

    if (s == NULL
        && (empty == NULL || hdr->entries >= hdr->max_entries))
    {
        rc = TS_ERR_FULL;
        goto done;
    }

    blob = ts_meta_alloc(hdr, e);
    if (blob == 0) {
        rc = TS_ERR_FULL;
        goto done;
    }

    if (s != NULL) {
        __atomic_store_n(&s->blob, blob, __ATOMIC_RELEASE);
        __atomic_add_fetch(&s->gen, 1, __ATOMIC_RELEASE);
        rc = 1;
        goto done;
    }

    empty->hash = hash;
    empty->tenant = e->tenant;
    empty->blob = blob;
    empty->gen = 1;
    empty->saved = 0;
    __atomic_store_n(&empty->used, 1, __ATOMIC_RELEASE);
    hdr->entries++;
    rc = 1;

done:

    ts_plock_unlock(&hdr->lock, m->pid);

    return rc;
}


int
ts_meta_get(ts_meta_t *m, uint32_t tenant, const char *name, size_t len,
    ts_meta_entry_t *out)
{
    ts_meta_slot_t  *s, *empty;

    s = ts_meta_find(m->hdr, tenant, name, len,
                     ts_meta_hash(tenant, name, len), &empty);
    if (s == NULL) {
        return TS_ERR_NOTFOUND;
    }

    ts_meta_read(m->hdr, s, out);

    return TS_OK;
}


int
ts_meta_each(ts_meta_t *m, ts_meta_pt cb, void *data)
{
    int              rc;
    uint32_t         i;
    ts_meta_entry_t  e;
    ts_meta_slot_t  *s;

    s = ts_meta_slots(m->hdr);

    for (i = 0; i < m->hdr->nslots; i++) {
        if (!__atomic_load_n(&s[i].used, __ATOMIC_ACQUIRE)) {
            continue;
        }

        ts_meta_read(m->hdr, &s[i], &e);

        rc = cb(data, &e);
        if (rc != 0) {
            return rc;
        }
    }

    return TS_OK;
}


void
ts_meta_saved(ts_meta_t *m, uint32_t slot, uint32_t gen)
{
    if (slot < m->hdr->nslots) {
        __atomic_store_n(&ts_meta_slots(m->hdr)[slot].saved, gen,
                         __ATOMIC_RELEASE);
    }
}


void
ts_meta_stats(ts_meta_t *m, ts_meta_stats_t *st)
{
    st->entries = __atomic_load_n(&m->hdr->entries, __ATOMIC_RELAXED);
    st->slots = m->hdr->nslots;
    st->arena_used = __atomic_load_n(&m->hdr->arena_used, __ATOMIC_RELAXED);
    st->arena_size = m->hdr->arena_size;
}


/*
 * The slot holding (tenant, name), or NULL with *empty the first free
 * slot of the probe sequence (NULL if the table is full).
 */

static ts_meta_slot_t *
ts_meta_find(ts_meta_hdr_t *hdr, uint32_t tenant, const char *name,
    size_t len, uint64_t hash, ts_meta_slot_t **empty)
{
    uint32_t         i, n, mask, blob;
    uint16_t         nl;
    const uint8_t   *b;
    ts_meta_slot_t  *slots, *s;

    slots = ts_meta_slots(hdr);
    mask = hdr->nslots - 1;
    *empty = NULL;

    for (i = (uint32_t) hash & mask, n = 0; n < hdr->nslots;
         i = (i + 1) & mask, n++)
    {
        s = &slots[i];

        if (!__atomic_load_n(&s->used, __ATOMIC_ACQUIRE)) {
            *empty = s;
            return NULL;
        }

        if (s->hash != hash || s->tenant != tenant) {
            continue;
        }

        blob = __atomic_load_n(&s->blob, __ATOMIC_ACQUIRE);
        b = ts_meta_blob(hdr, blob);
        memcpy(&nl, b + 2, 2);

        if (nl == len && memcmp(b + TS_META_BLOB_HDR, name, len) == 0) {
            return s;
        }
    }

    return NULL;
}


/* blob: type, pad, name length, help length, unit length, then bytes */

static void
ts_meta_read(ts_meta_hdr_t *hdr, ts_meta_slot_t *s, ts_meta_entry_t *e)
{
    uint16_t        nl, hl, ul;
    const uint8_t  *b;

    e->slot = (uint32_t) (s - ts_meta_slots(hdr));

    /* the generation first: a change after it leaves the entry dirty */
    e->gen = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
    e->dirty = e->gen != __atomic_load_n(&s->saved, __ATOMIC_ACQUIRE);
    e->tenant = s->tenant;

    b = ts_meta_blob(hdr, __atomic_load_n(&s->blob, __ATOMIC_ACQUIRE));
    memcpy(&nl, b + 2, 2);
    memcpy(&hl, b + 4, 2);
    memcpy(&ul, b + 6, 2);

    e->type = b[0];
    e->name = (const char *) b + TS_META_BLOB_HDR;
    e->name_len = nl;
    e->help = e->name + nl;
    e->help_len = hl;
    e->unit = e->help + hl;
    e->unit_len = ul;
}


static int
ts_meta_same(ts_meta_hdr_t *hdr, uint32_t blob, const ts_meta_entry_t *e)
{
    uint16_t        hl, ul;
    const uint8_t  *b;

    b = ts_meta_blob(hdr, blob);
    memcpy(&hl, b + 4, 2);
    memcpy(&ul, b + 6, 2);

    return b[0] == e->type && hl == e->help_len && ul == e->unit_len
           && memcmp(b + TS_META_BLOB_HDR + e->name_len, e->help, hl) == 0
           && memcmp(b + TS_META_BLOB_HDR + e->name_len + hl, e->unit, ul)
              == 0;
}


/* under the lock; 0 when the arena is full */

static uint32_t
ts_meta_alloc(ts_meta_hdr_t *hdr, const ts_meta_entry_t *e)
{
    size_t     size;
    uint16_t   v;
    uint64_t   off;
    uint8_t   *b;

    size = TS_META_BLOB_HDR + e->name_len + e->help_len + e->unit_len;
    size = (size + 7) & ~(size_t) 7;
    off = hdr->arena_used;

    if (size > hdr->arena_size - off) {
        return 0;
    }

    b = (uint8_t *) hdr + hdr->off_arena + off;
    b[0] = (uint8_t) e->type;
    b[1] = 0;
    v = (uint16_t) e->name_len;
    memcpy(b + 2, &v, 2);
    v = (uint16_t) e->help_len;
    memcpy(b + 4, &v, 2);
    v = (uint16_t) e->unit_len;
    memcpy(b + 6, &v, 2);

    b += TS_META_BLOB_HDR;
    memcpy(b, e->name, e->name_len);
    b += e->name_len;

    if (e->help_len) {
        memcpy(b, e->help, e->help_len);
        b += e->help_len;
    }

    if (e->unit_len) {
        memcpy(b, e->unit, e->unit_len);
    }

    __atomic_store_n(&hdr->arena_used, off + size, __ATOMIC_RELAXED);

    return (uint32_t) off;
}


/*
 * A writer that died holding the lock may have changed a blob without
 * bumping its generation: every entry counts as changed then.
 */

static void
ts_meta_lock(ts_meta_t *m)
{
    uint32_t         i;
    ts_meta_slot_t  *s;

    if (ts_plock_lock(&m->hdr->lock, m->pid, m->alive) != 1) {
        return;
    }

    s = ts_meta_slots(m->hdr);

    for (i = 0; i < m->hdr->nslots; i++) {
        if (s[i].used) {
            __atomic_add_fetch(&s[i].gen, 1, __ATOMIC_RELEASE);
        }
    }
}


/* the WAL record */

static size_t
ts_meta_uvarint_size(uint64_t v)
{
    size_t  n;

    for (n = 1; v >= 0x80; v >>= 7) {
        n++;
    }

    return n;
}


static uint8_t *
ts_meta_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t) (v | 0x80);
        v >>= 7;
    }

    *p++ = (uint8_t) v;

    return p;
}


static uint8_t *
ts_meta_bytes(uint8_t *p, const char *s, size_t len)
{
    p = ts_meta_uvarint(p, len);

    if (len) {
        memcpy(p, s, len);
    }

    return p + len;
}


size_t
ts_meta_record_size(const ts_meta_record_t *r, size_t n)
{
    size_t  i, size;

    size = ts_meta_uvarint_size(n);

    for (i = 0; i < n; i++) {
        size += 10 * 4 + 1 + r[i].tenant_len + r[i].e.name_len
                + r[i].e.help_len + r[i].e.unit_len;
    }

    return size;
}


int
ts_meta_record_encode(uint8_t *buf, size_t size, const ts_meta_record_t *r,
    size_t n, size_t *len)
{
    size_t    i;
    uint8_t  *p;

    if (size < ts_meta_record_size(r, n)) {
        return TS_ERR_LIMIT;
    }

    p = ts_meta_uvarint(buf, n);

    for (i = 0; i < n; i++) {
        p = ts_meta_bytes(p, r[i].tenant, r[i].tenant_len);
        p = ts_meta_bytes(p, r[i].e.name, r[i].e.name_len);
        p = ts_meta_bytes(p, r[i].e.help, r[i].e.help_len);
        p = ts_meta_bytes(p, r[i].e.unit, r[i].e.unit_len);
        *p++ = (uint8_t) r[i].e.type;
    }

    *len = (size_t) (p - buf);

    return TS_OK;
}


static int
ts_meta_get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    unsigned  shift;
    uint64_t  x;

    x = 0;

    for (shift = 0; shift < 64 && *p < end; shift += 7) {
        x |= (uint64_t) (**p & 0x7f) << shift;

        if (*(*p)++ < 0x80) {
            *v = x;
            return TS_OK;
        }
    }

    return TS_ERR_CORRUPT;
}


static int
ts_meta_get_bytes(const uint8_t **p, const uint8_t *end, const char **s,
    size_t *len, size_t max)
{
    uint64_t  n;

    if (ts_meta_get_uvarint(p, end, &n) != TS_OK
        || n > (uint64_t) (end - *p) || n > max)
    {
        return TS_ERR_CORRUPT;
    }

    *s = (const char *) *p;
    *len = (size_t) n;
    *p += n;

    return TS_OK;
}


int
ts_meta_record_decode(const uint8_t *p, size_t len, ts_meta_record_pt cb,
    void *data)
{
    int                rc;
    uint64_t           n, i;
    const uint8_t     *end;
    ts_meta_record_t   r;

    end = p + len;

    /* an entry takes at least 5 bytes */

    if (ts_meta_get_uvarint(&p, end, &n) != TS_OK
        || n > (uint64_t) (end - p) / 5)
    {
        return TS_ERR_CORRUPT;
    }

    memset(&r, 0, sizeof(r));

    for (i = 0; i < n; i++) {
        if (ts_meta_get_bytes(&p, end, &r.tenant, &r.tenant_len,
                              TS_META_NAME_MAX) != TS_OK
            || ts_meta_get_bytes(&p, end, &r.e.name, &r.e.name_len,
                                 TS_META_NAME_MAX) != TS_OK
            || ts_meta_get_bytes(&p, end, &r.e.help, &r.e.help_len,
                                 TS_META_TEXT_MAX) != TS_OK
            || ts_meta_get_bytes(&p, end, &r.e.unit, &r.e.unit_len,
                                 TS_META_TEXT_MAX) != TS_OK
            || p == end)
        {
            return TS_ERR_CORRUPT;
        }

        r.e.type = *p++;

        rc = cb(data, &r);
        if (rc != 0) {
            return rc;
        }
    }

    return p == end ? TS_OK : TS_ERR_CORRUPT;
}
