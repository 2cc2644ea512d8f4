/*
 * Copyright (C) ngx_tsdb authors
 *
 * Exemplar storage in shared memory; see ts_exemplar.h.
 */

#include <stdlib.h>
#include <string.h>

#include "ts_exemplar.h"
#include "ts_plock.h"


#define TS_EXEMPLAR_MAGIC       0x7473786du
#define TS_EXEMPLAR_VERSION     1
#define TS_EXEMPLAR_ALIGN       64
#define TS_EXEMPLAR_ARENA_AVG   64
#define TS_EXEMPLAR_ARENA_MIN   (64 * 1024)


typedef struct {
    uint64_t                seq;
    uint64_t                astart;     /* virtual label ring offset */
    int64_t                 t;
    uint64_t                v;
    uint32_t                tenant;
    uint32_t                ref;
    uint32_t                next;       /* newer slot of the series + 1 */
    uint32_t                alen;
} ts_exemplar_slot_t;


typedef struct {
    uint32_t                ref;        /* 0: free */
    uint32_t                oldest;     /* slots */
    uint32_t                newest;
    uint32_t                pad;
} ts_exemplar_idx_t;


struct ts_exemplar_hdr_s {
    uint32_t                magic;
    uint32_t                version;
    uint64_t                size;
    uint32_t                max;
    uint32_t                nidx;       /* a power of two */
    uint64_t                off_slots;
    uint64_t                off_idx;
    uint64_t                off_arena;
    uint64_t                arena_size;

    int64_t                 lock;
    uint64_t                head;       /* next seq */
    uint64_t                tail;       /* oldest live seq */
    uint64_t                apos;       /* next virtual arena offset */
    uint64_t                saved;
    uint32_t                series;
    uint32_t                loaded;
};


typedef struct {
    ts_exemplar_entry_t    *e;
    size_t                  n;
    size_t                  cap;
    uint8_t                *bytes;
    size_t                  len;
    size_t                  bcap;
    int                     failed;
} ts_exemplar_copy_t;


static void ts_exemplar_layout(ts_exemplar_hdr_t *hdr, uint32_t max);
static ts_exemplar_slot_t *ts_exemplar_slots(ts_exemplar_hdr_t *hdr);
static ts_exemplar_idx_t *ts_exemplar_index(ts_exemplar_hdr_t *hdr);
static uint8_t *ts_exemplar_arena(ts_exemplar_hdr_t *hdr,
    const ts_exemplar_slot_t *s);
static ts_exemplar_idx_t *ts_exemplar_find(ts_exemplar_hdr_t *hdr,
    uint32_t ref, ts_exemplar_idx_t **empty);
static void ts_exemplar_unindex(ts_exemplar_hdr_t *hdr,
    ts_exemplar_idx_t *ie);
static void ts_exemplar_link(ts_exemplar_hdr_t *hdr, uint32_t slot);
static void ts_exemplar_evict(ts_exemplar_hdr_t *hdr);
static int ts_exemplar_add_locked(ts_exemplar_hdr_t *hdr, uint32_t tenant,
    uint32_t ref, int64_t t, uint64_t v, const uint8_t *enc, size_t len);
static void ts_exemplar_lock(ts_exemplar_t *x);
static void ts_exemplar_repair(ts_exemplar_hdr_t *hdr);
static void ts_exemplar_read(ts_exemplar_hdr_t *hdr, ts_exemplar_slot_t *s,
    ts_exemplar_entry_t *e);
static int ts_exemplar_copy(void *data, const ts_exemplar_entry_t *e);
static uint8_t *ts_exemplar_uvarint(uint8_t *p, uint64_t v);
static int ts_exemplar_get_uvarint(const uint8_t **p, const uint8_t *end,
    uint64_t *v);


size_t
ts_exemplar_region_size(uint32_t max)
{
    ts_exemplar_hdr_t  hdr;

    if (max == 0) {
        return 0;
    }

    ts_exemplar_layout(&hdr, max);

    return (size_t) (hdr.off_arena + hdr.arena_size + TS_EXEMPLAR_ALIGN - 1)
           & ~(size_t) (TS_EXEMPLAR_ALIGN - 1);
}


static void
ts_exemplar_layout(ts_exemplar_hdr_t *hdr, uint32_t max)
{
    uint64_t  off, arena;
    uint32_t  n;

    memset(hdr, 0, sizeof(ts_exemplar_hdr_t));

    /* at most max series are indexed: keep the load under 2/3 */

    for (n = 64; (uint64_t) n * 2 < (uint64_t) max * 3; n *= 2) {
        /* void */
    }

    arena = (uint64_t) max * TS_EXEMPLAR_ARENA_AVG;
    if (arena < TS_EXEMPLAR_ARENA_MIN) {
        arena = TS_EXEMPLAR_ARENA_MIN;
    }

    hdr->version = TS_EXEMPLAR_VERSION;
    hdr->max = max;
    hdr->nidx = n;

    off = (sizeof(ts_exemplar_hdr_t) + TS_EXEMPLAR_ALIGN - 1)
          & ~(uint64_t) (TS_EXEMPLAR_ALIGN - 1);
    hdr->off_slots = off;
    off += (uint64_t) max * sizeof(ts_exemplar_slot_t);
    hdr->off_idx = off;
    off += (uint64_t) n * sizeof(ts_exemplar_idx_t);
    hdr->off_arena = off;
    hdr->arena_size = arena;
    hdr->size = off + arena;
}


int
ts_exemplar_open(ts_exemplar_t *x, void *mem, size_t size, uint32_t max,
    int64_t pid, ts_pid_alive_pt alive)
{
    ts_exemplar_hdr_t  *hdr, want;

    x->hdr = NULL;
    x->pid = pid;
    x->alive = alive;

    if (max == 0) {
        return TS_OK;
    }

    if (mem == NULL || size < ts_exemplar_region_size(max)
        || ((uintptr_t) mem & 7) != 0)
    {
        return TS_ERR_INVALID;
    }

    hdr = mem;
    x->hdr = hdr;

    ts_exemplar_layout(&want, max);

    if (__atomic_load_n(&hdr->magic, __ATOMIC_ACQUIRE) == TS_EXEMPLAR_MAGIC
        && memcmp(&hdr->version, &want.version,
                  offsetof(ts_exemplar_hdr_t, lock)
                  - offsetof(ts_exemplar_hdr_t, version)) == 0)
    {
        return TS_OK;
    }

    memcpy(hdr, &want, sizeof(want));
    memset(ts_exemplar_index(hdr), 0,
           (size_t) hdr->nidx * sizeof(ts_exemplar_idx_t));

    __atomic_store_n(&hdr->magic, TS_EXEMPLAR_MAGIC, __ATOMIC_RELEASE);

    return TS_OK;
}


static ts_exemplar_slot_t *
ts_exemplar_slots(ts_exemplar_hdr_t *hdr)
{
    return (ts_exemplar_slot_t *) ((char *) hdr + hdr->off_slots);
}


static ts_exemplar_idx_t *
ts_exemplar_index(ts_exemplar_hdr_t *hdr)
{
    return (ts_exemplar_idx_t *) ((char *) hdr + hdr->off_idx);
}


static uint8_t *
ts_exemplar_arena(ts_exemplar_hdr_t *hdr, const ts_exemplar_slot_t *s)
{
    return (uint8_t *) hdr + hdr->off_arena + s->astart % hdr->arena_size;
}


int
ts_exemplar_add(ts_exemplar_t *x, uint32_t tenant, uint32_t ref, int64_t t,
    uint64_t v, const ts_label_t *labels, uint32_t n)
{
    int       rc;
    size_t    len;
    uint8_t   enc[TS_EXEMPLAR_LABELS_BYTES];

    if (x->hdr == NULL) {
        return TS_ERR_UNSUPPORTED;
    }

    if (ref == 0) {
        return TS_ERR_INVALID;
    }

    rc = ts_exemplar_labels_encode(labels, n, enc, &len);
    if (rc != TS_OK) {
        return rc;
    }

    ts_exemplar_lock(x);
    rc = ts_exemplar_add_locked(x->hdr, tenant, ref, t, v, enc, len);
    ts_plock_unlock(&x->hdr->lock, x->pid);

    return rc;
}


/* Without empty values, sorted by name, at most 128 runes. */

int
ts_exemplar_labels_encode(const ts_label_t *labels, uint32_t n,
    uint8_t *buf, size_t *len)
{
    size_t      runes;
    uint8_t    *p;
    uint32_t    i, k;
    ts_label_t  l[TS_EXEMPLAR_LABELS_MAX];

    runes = 0;

    for (i = 0, k = 0; i < n; i++) {
        if (labels[i].value_len == 0) {
            continue;
        }

        runes += ts_utf8_count(labels[i].name, labels[i].name_len)
                 + ts_utf8_count(labels[i].value, labels[i].value_len);

        if (k == TS_EXEMPLAR_LABELS_MAX || runes > TS_EXEMPLAR_LABELS_RUNES
            || labels[i].name_len > TS_EXEMPLAR_LABELS_RUNES * 4
            || labels[i].value_len > TS_EXEMPLAR_LABELS_RUNES * 4)
        {
            return TS_ERR_INVALID;
        }

        l[k++] = labels[i];
    }

    ts_labels_sort(l, k);

    p = buf;

    for (i = 0; i < k; i++) {
        if ((size_t) (p - buf) + 4 + l[i].name_len + l[i].value_len
            > TS_EXEMPLAR_LABELS_BYTES)
        {
            return TS_ERR_INVALID;
        }

        p = ts_exemplar_uvarint(p, l[i].name_len);
        memcpy(p, l[i].name, l[i].name_len);
        p += l[i].name_len;
        p = ts_exemplar_uvarint(p, l[i].value_len);
        memcpy(p, l[i].value, l[i].value_len);
        p += l[i].value_len;
    }

    *len = (size_t) (p - buf);

    return TS_OK;
}


static int
ts_exemplar_add_locked(ts_exemplar_hdr_t *hdr, uint32_t tenant, uint32_t ref,
    int64_t t, uint64_t v, const uint8_t *enc, size_t len)
{
    uint32_t             i;
    uint64_t             a;
    ts_exemplar_idx_t   *ie, *empty;
    ts_exemplar_slot_t  *s, *slots;

    slots = ts_exemplar_slots(hdr);

    ie = ts_exemplar_find(hdr, ref, &empty);

    if (ie != NULL) {
        s = &slots[ie->newest];

        if (s->t == t && s->v == v && s->alen == len
            && memcmp(ts_exemplar_arena(hdr, s), enc, len) == 0)
        {
            return 0;
        }

        if (t <= s->t) {
            return TS_ERR_OUT_OF_ORDER;
        }
    }

    if (hdr->head - hdr->tail == hdr->max) {
        ts_exemplar_evict(hdr);
    }

    /* labels never wrap around the end of the ring */

    a = hdr->apos;
    if (a % hdr->arena_size + len > hdr->arena_size) {
        a += hdr->arena_size - a % hdr->arena_size;
    }

    while (hdr->tail != hdr->head
           && a + len - slots[hdr->tail % hdr->max].astart > hdr->arena_size)
    {
        ts_exemplar_evict(hdr);
    }

    i = (uint32_t) (hdr->head % hdr->max);
    s = &slots[i];
    s->seq = hdr->head;
    s->astart = a;
    s->alen = (uint32_t) len;
    s->t = t;
    s->v = v;
    s->tenant = tenant;
    s->ref = ref;
    s->next = 0;

    if (len) {
        memcpy(ts_exemplar_arena(hdr, s), enc, len);
    }

    hdr->apos = a + len;

    ts_exemplar_link(hdr, i);

    /* the slot counts from here on */
    __atomic_store_n(&hdr->head, hdr->head + 1, __ATOMIC_RELEASE);

    return 1;
}


static void
ts_exemplar_link(ts_exemplar_hdr_t *hdr, uint32_t slot)
{
    ts_exemplar_idx_t   *ie, *empty;
    ts_exemplar_slot_t  *slots;

    slots = ts_exemplar_slots(hdr);

    ie = ts_exemplar_find(hdr, slots[slot].ref, &empty);

    if (ie != NULL) {
        slots[ie->newest].next = slot + 1;
        ie->newest = slot;
        return;
    }

    /* never NULL: fewer series than slots, a third of the index free */

    empty->oldest = slot;
    empty->newest = slot;
    empty->ref = slots[slot].ref;
    hdr->series++;
}


/* the oldest exemplar goes */

static void
ts_exemplar_evict(ts_exemplar_hdr_t *hdr)
{
    ts_exemplar_idx_t   *ie, *empty;
    ts_exemplar_slot_t  *s;

    s = &ts_exemplar_slots(hdr)[hdr->tail % hdr->max];

    ie = ts_exemplar_find(hdr, s->ref, &empty);

    if (ie != NULL) {
        if (s->next == 0) {
            ts_exemplar_unindex(hdr, ie);

        } else {
            ie->oldest = s->next - 1;
        }
    }

    __atomic_store_n(&hdr->tail, hdr->tail + 1, __ATOMIC_RELEASE);
}


static ts_exemplar_idx_t *
ts_exemplar_find(ts_exemplar_hdr_t *hdr, uint32_t ref,
    ts_exemplar_idx_t **empty)
{
    uint32_t            i, mask;
    ts_exemplar_idx_t  *idx;

    idx = ts_exemplar_index(hdr);
    mask = hdr->nidx - 1;

    for (i = (uint32_t) ts_xxh64(&ref, sizeof(ref), 0) & mask; /* void */;
         i = (i + 1) & mask)
    {
        if (idx[i].ref == ref) {
            return &idx[i];
        }

        if (idx[i].ref == 0) {
            *empty = &idx[i];
            return NULL;
        }
    }
}


/* backward-shift deletion keeps every probe sequence unbroken */

static void
ts_exemplar_unindex(ts_exemplar_hdr_t *hdr, ts_exemplar_idx_t *ie)
{
    uint32_t            i, j, home, mask;
    ts_exemplar_idx_t  *idx;

    idx = ts_exemplar_index(hdr);
    mask = hdr->nidx - 1;
    i = (uint32_t) (ie - idx);

    for (j = (i + 1) & mask; idx[j].ref != 0; j = (j + 1) & mask) {
        home = (uint32_t) ts_xxh64(&idx[j].ref, sizeof(uint32_t), 0) & mask;

        /* j may move to i unless its home lies cyclically in (i, j] */

        if (((j - home) & mask) >= ((j - i) & mask)) {
            idx[i] = idx[j];
            i = j;
        }
    }

    idx[i].ref = 0;
    hdr->series--;
}


int
ts_exemplar_series(ts_exemplar_t *x, uint32_t ref, int64_t mint,
    int64_t maxt, ts_exemplar_pt cb, void *data)
{
    int                   rc;
    uint32_t              i;
    ts_exemplar_idx_t    *ie, *empty;
    ts_exemplar_slot_t   *slots;
    ts_exemplar_entry_t   e;

    if (x->hdr == NULL || ref == 0) {
        return TS_OK;
    }

    rc = TS_OK;
    ts_exemplar_lock(x);

    slots = ts_exemplar_slots(x->hdr);
    ie = ts_exemplar_find(x->hdr, ref, &empty);

    if (ie != NULL && slots[ie->oldest].t <= maxt
        && slots[ie->newest].t >= mint)
    {
        for (i = ie->oldest + 1; i != 0; i = slots[i - 1].next) {
            if (slots[i - 1].t > maxt) {
                break;
            }

            if (slots[i - 1].t < mint) {
                continue;
            }

            ts_exemplar_read(x->hdr, &slots[i - 1], &e);

            rc = cb(data, &e);
            if (rc != 0) {
                break;
            }
        }
    }

    ts_plock_unlock(&x->hdr->lock, x->pid);

    return rc;
}


int
ts_exemplar_each(ts_exemplar_t *x, uint64_t from, ts_exemplar_pt cb,
    void *data)
{
    int                   rc;
    uint64_t              seq;
    ts_exemplar_hdr_t    *hdr;
    ts_exemplar_entry_t   e;

    if (x->hdr == NULL) {
        return TS_OK;
    }

    rc = TS_OK;
    hdr = x->hdr;
    ts_exemplar_lock(x);

    for (seq = from > hdr->tail ? from : hdr->tail; seq < hdr->head; seq++) {
        ts_exemplar_read(hdr, &ts_exemplar_slots(hdr)[seq % hdr->max], &e);

        rc = cb(data, &e);
        if (rc != 0) {
            break;
        }
    }

    ts_plock_unlock(&hdr->lock, x->pid);

    return rc;
}


static void
ts_exemplar_read(ts_exemplar_hdr_t *hdr, ts_exemplar_slot_t *s,
    ts_exemplar_entry_t *e)
{
    e->seq = s->seq;
    e->tenant = s->tenant;
    e->ref = s->ref;
    e->t = s->t;
    e->v = s->v;
    e->labels = ts_exemplar_arena(hdr, s);
    e->labels_len = s->alen;
}


int
ts_exemplar_prepend(ts_exemplar_t *x, const ts_exemplar_entry_t *e, size_t n,
    uint64_t seq, size_t *added)
{
    int                  rc;
    size_t                i;
    ts_exemplar_hdr_t    *hdr;
    ts_exemplar_copy_t    cp;
    ts_exemplar_entry_t   c;

    *added = 0;

    if (x->hdr == NULL) {
        return TS_OK;
    }

    hdr = x->hdr;
    memset(&cp, 0, sizeof(cp));

    ts_exemplar_lock(x);

    for (i = hdr->tail; i < hdr->head && !cp.failed; i++) {
        ts_exemplar_read(hdr, &ts_exemplar_slots(hdr)[i % hdr->max], &c);
        (void) ts_exemplar_copy(&cp, &c);
    }

    if (cp.failed) {
        rc = TS_ERR_NOMEM;
        goto done;
    }

    /* empty the ring; sequence numbers go on */

    while (hdr->tail != hdr->head) {
        ts_exemplar_evict(hdr);
    }

    if (hdr->head < seq) {
        hdr->tail = seq;
        hdr->head = seq;
    }

    for (i = 0; i < n; i++) {
        if (e[i].ref != 0 && e[i].labels_len <= TS_EXEMPLAR_LABELS_BYTES
            && ts_exemplar_add_locked(hdr, e[i].tenant, e[i].ref, e[i].t,
                                      e[i].v, e[i].labels, e[i].labels_len)
               == 1)
        {
            (*added)++;
        }
    }

    for (i = 0; i < cp.n; i++) {
        (void) ts_exemplar_add_locked(hdr, cp.e[i].tenant, cp.e[i].ref,
                                      cp.e[i].t, cp.e[i].v,
                                      cp.bytes + (uintptr_t) cp.e[i].labels,
                                      cp.e[i].labels_len);
    }

    rc = TS_OK;

done:

    ts_plock_unlock(&hdr->lock, x->pid);

    free(cp.e);
    free(cp.bytes);

    return rc;
}


/* labels as offsets into cp->bytes, which may move */

static int
ts_exemplar_copy(void *data, const ts_exemplar_entry_t *e)
{
    ts_exemplar_copy_t  *cp = data;

    void    *p;
    size_t   cap;

    if (cp->n == cp->cap) {
        cap = cp->cap ? cp->cap * 2 : 1024;
        p = realloc(cp->e, cap * sizeof(ts_exemplar_entry_t));
        if (p == NULL) {
            cp->failed = 1;
            return -1;
        }

        cp->e = p;
        cp->cap = cap;
    }

    if (cp->len + e->labels_len > cp->bcap) {
        cap = cp->bcap ? cp->bcap * 2 : 65536;
        while (cap < cp->len + e->labels_len) {
            cap *= 2;
        }

        p = realloc(cp->bytes, cap);
        if (p == NULL) {
            cp->failed = 1;
            return -1;
        }

        cp->bytes = p;
        cp->bcap = cap;
    }

    cp->e[cp->n] = *e;
    cp->e[cp->n].labels = (const uint8_t *) (uintptr_t) cp->len;

    if (e->labels_len) {
        memcpy(cp->bytes + cp->len, e->labels, e->labels_len);
    }

    cp->len += e->labels_len;
    cp->n++;

    return 0;
}


int
ts_exemplar_loaded(ts_exemplar_t *x)
{
    return x->hdr == NULL
           || __atomic_load_n(&x->hdr->loaded, __ATOMIC_ACQUIRE) != 0;
}


void
ts_exemplar_set_loaded(ts_exemplar_t *x)
{
    if (x->hdr != NULL) {
        __atomic_store_n(&x->hdr->loaded, 1, __ATOMIC_RELEASE);
    }
}


void
ts_exemplar_saved(ts_exemplar_t *x, uint64_t seq)
{
    if (x->hdr != NULL) {
        __atomic_store_n(&x->hdr->saved, seq, __ATOMIC_RELEASE);
    }
}


void
ts_exemplar_stats(ts_exemplar_t *x, ts_exemplar_stats_t *st)
{
    ts_exemplar_hdr_t  *hdr;

    memset(st, 0, sizeof(ts_exemplar_stats_t));

    hdr = x->hdr;
    if (hdr == NULL) {
        return;
    }

    ts_exemplar_lock(x);

    st->exemplars = hdr->head - hdr->tail;
    st->series = hdr->series;
    st->max = hdr->max;
    st->head = hdr->head;
    st->tail = hdr->tail;
    st->saved = hdr->saved;
    st->arena_size = hdr->arena_size;

    ts_plock_unlock(&hdr->lock, x->pid);
}


/*
 * A writer that died holding the lock may have left the index or the
 * links half changed: rebuild both from the live slots.
 */

static void
ts_exemplar_lock(ts_exemplar_t *x)
{
    if (ts_plock_lock(&x->hdr->lock, x->pid, x->alive) == 1) {
        ts_exemplar_repair(x->hdr);
    }
}


static void
ts_exemplar_repair(ts_exemplar_hdr_t *hdr)
{
    uint64_t             seq;
    uint32_t             i;
    ts_exemplar_slot_t  *slots;

    memset(ts_exemplar_index(hdr), 0,
           (size_t) hdr->nidx * sizeof(ts_exemplar_idx_t));
    hdr->series = 0;

    slots = ts_exemplar_slots(hdr);

    if (hdr->head - hdr->tail > hdr->max) {
        hdr->tail = hdr->head - hdr->max;
    }

    for (seq = hdr->tail; seq < hdr->head; seq++) {
        i = (uint32_t) (seq % hdr->max);
        slots[i].next = 0;
        ts_exemplar_link(hdr, i);
    }

    if (hdr->tail != hdr->head) {
        hdr->apos = slots[(hdr->head - 1) % hdr->max].astart
                    + slots[(hdr->head - 1) % hdr->max].alen;
    }
}


int
ts_exemplar_labels_next(const uint8_t **p, const uint8_t *end,
    ts_label_t *l)
{
    uint64_t  n;

    if (*p == end) {
        return 0;
    }

    if (ts_exemplar_get_uvarint(p, end, &n) != TS_OK
        || n > (uint64_t) (end - *p))
    {
        return TS_ERR_CORRUPT;
    }

    l->name = (const char *) *p;
    l->name_len = (uint32_t) n;
    *p += n;

    if (ts_exemplar_get_uvarint(p, end, &n) != TS_OK
        || n > (uint64_t) (end - *p))
    {
        return TS_ERR_CORRUPT;
    }

    l->value = (const char *) *p;
    l->value_len = (uint32_t) n;
    *p += n;

    return 1;
}


/* the WAL record */

static size_t
ts_exemplar_uvarint_size(uint64_t v)
{
    size_t  n;

    for (n = 1; v >= 0x80; v >>= 7) {
        n++;
    }

    return n;
}


static uint8_t *
ts_exemplar_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t) (v | 0x80);
        v >>= 7;
    }

    *p++ = (uint8_t) v;

    return p;
}


static uint8_t *
ts_exemplar_bytes(uint8_t *p, const char *s, size_t len)
{
    p = ts_exemplar_uvarint(p, len);

    if (len) {
        memcpy(p, s, len);
    }

    return p + len;
}


static size_t
ts_exemplar_labels_size(const ts_label_t *l, uint32_t n)
{
    size_t    size;
    uint32_t  i;

    size = 10;

    for (i = 0; i < n; i++) {
        size += 20 + l[i].name_len + l[i].value_len;
    }

    return size;
}


static uint8_t *
ts_exemplar_labels(uint8_t *p, const ts_label_t *l, uint32_t n)
{
    uint32_t  i;

    p = ts_exemplar_uvarint(p, n);

    for (i = 0; i < n; i++) {
        p = ts_exemplar_bytes(p, l[i].name, l[i].name_len);
        p = ts_exemplar_bytes(p, l[i].value, l[i].value_len);
    }

    return p;
}


/* an entry's encoded exemplar labels, as a record lists them */

static uint8_t *
ts_exemplar_enc(uint8_t *p, const uint8_t *enc, size_t len)
{
    uint32_t         n;
    ts_label_t       l;
    const uint8_t   *q, *end;

    n = 0;
    q = enc;
    end = enc + len;

    while (ts_exemplar_labels_next(&q, end, &l) == 1) {
        n++;
    }

    p = ts_exemplar_uvarint(p, n);
    memcpy(p, enc, (size_t) (q - enc));

    return p + (q - enc);
}


size_t
ts_exemplar_record_size(const ts_exemplar_record_t *r, size_t n)
{
    size_t  i, size;

    size = ts_exemplar_uvarint_size(n);

    for (i = 0; i < n; i++) {
        size += 10 + r[i].tenant_len + 10 + 8
                + ts_exemplar_labels_size(r[i].series, r[i].nseries)
                + (r[i].enc ? 10 + r[i].enc_len
                            : ts_exemplar_labels_size(r[i].labels,
                                                      r[i].nlabels));
    }

    return size;
}


int
ts_exemplar_record_encode(uint8_t *buf, size_t size,
    const ts_exemplar_record_t *r, size_t n, size_t *len)
{
    size_t    i;
    uint8_t  *p;
    uint64_t  zz;

    if (size < ts_exemplar_record_size(r, n)) {
        return TS_ERR_LIMIT;
    }

    p = ts_exemplar_uvarint(buf, n);

    for (i = 0; i < n; i++) {
        p = ts_exemplar_bytes(p, r[i].tenant, r[i].tenant_len);
        p = ts_exemplar_labels(p, r[i].series, r[i].nseries);

        zz = ((uint64_t) r[i].t << 1) ^ (uint64_t) (r[i].t >> 63);
        p = ts_exemplar_uvarint(p, zz);

        for (zz = 0; zz < 8; zz++) {
            *p++ = (uint8_t) (r[i].v >> (zz * 8));
        }

        if (r[i].enc != NULL) {
            p = ts_exemplar_enc(p, r[i].enc, r[i].enc_len);

        } else {
            p = ts_exemplar_labels(p, r[i].labels, r[i].nlabels);
        }
    }

    *len = (size_t) (p - buf);

    return TS_OK;
}


static int
ts_exemplar_get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    unsigned  shift;
    uint64_t  x;

    x = 0;

    for (shift = 0; shift < 64 && *p < end; shift += 7) {
        if (shift == 63 && **p > 1) {
            return TS_ERR_CORRUPT;
        }

        x |= (uint64_t) (**p & 0x7f) << shift;

        if (*(*p)++ < 0x80) {
            *v = x;
            return TS_OK;
        }
    }

    return TS_ERR_CORRUPT;
}


static int
ts_exemplar_get_bytes(const uint8_t **p, const uint8_t *end, const char **s,
    uint32_t *len, size_t max)
{
    uint64_t  n;

    if (ts_exemplar_get_uvarint(p, end, &n) != TS_OK
        || n > (uint64_t) (end - *p) || n > max)
    {
        return TS_ERR_CORRUPT;
    }

    *s = (const char *) *p;
    *len = (uint32_t) n;
    *p += n;

    return TS_OK;
}


static int
ts_exemplar_get_labels(const uint8_t **p, const uint8_t *end, ts_label_t *l,
    uint32_t max, uint32_t *n)
{
    uint64_t  k, i;

    /* a label takes at least 2 bytes */

    if (ts_exemplar_get_uvarint(p, end, &k) != TS_OK || k > max
        || k > (uint64_t) (end - *p) / 2)
    {
        return TS_ERR_CORRUPT;
    }

    for (i = 0; i < k; i++) {
        if (ts_exemplar_get_bytes(p, end, &l[i].name, &l[i].name_len,
                                  UINT32_MAX) != TS_OK
            || ts_exemplar_get_bytes(p, end, &l[i].value, &l[i].value_len,
                                     UINT32_MAX) != TS_OK)
        {
            return TS_ERR_CORRUPT;
        }
    }

    *n = (uint32_t) k;

    return TS_OK;
}


int
ts_exemplar_record_decode(const uint8_t *p, size_t len,
    ts_exemplar_record_pt cb, void *data)
{
    int                    rc;
    uint32_t               tl;
    uint64_t               n, i, zz, k;
    const uint8_t         *end;
    ts_label_t             series[TS_EXEMPLAR_SERIES_LABELS];
    ts_label_t             labels[TS_EXEMPLAR_LABELS_MAX];
    ts_exemplar_record_t   r;

    end = p + len;

    /* an entry takes at least 12 bytes */

    if (ts_exemplar_get_uvarint(&p, end, &n) != TS_OK
        || n > (uint64_t) (end - p) / 12)
    {
        return TS_ERR_CORRUPT;
    }

    memset(&r, 0, sizeof(r));
    r.series = series;
    r.labels = labels;

    for (i = 0; i < n; i++) {
        if (ts_exemplar_get_bytes(&p, end, &r.tenant, &tl, 1024) != TS_OK
            || ts_exemplar_get_labels(&p, end, series,
                                      TS_EXEMPLAR_SERIES_LABELS, &r.nseries)
               != TS_OK
            || ts_exemplar_get_uvarint(&p, end, &zz) != TS_OK
            || end - p < 8)
        {
            return TS_ERR_CORRUPT;
        }

        r.tenant_len = tl;
        r.t = (int64_t) (zz >> 1) ^ -(int64_t) (zz & 1);
        r.v = 0;

        for (k = 0; k < 8; k++) {
            r.v |= (uint64_t) p[k] << (k * 8);
        }

        p += 8;

        if (ts_exemplar_get_labels(&p, end, labels, TS_EXEMPLAR_LABELS_MAX,
                                   &r.nlabels)
            != TS_OK)
        {
            return TS_ERR_CORRUPT;
        }

        rc = cb(data, &r);
        if (rc != 0) {
            return rc;
        }
    }

    return p == end ? TS_OK : TS_ERR_CORRUPT;
}
