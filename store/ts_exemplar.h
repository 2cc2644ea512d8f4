/*
 * Copyright (C) ngx_tsdb authors
 *
 * Exemplar storage in shared memory, with Prometheus's semantics
 * (tsdb/exemplar.go CircularExemplarStorage): one bounded circular
 * buffer for all series of a zone, the oldest exemplar overwritten
 * first, an index from series to its oldest and newest exemplar.  Per
 * series an exemplar is accepted only if its timestamp is after the
 * newest one stored; one equal to the newest (labels, time, value) is
 * a duplicate, accepted without being stored again (sender retries).
 *
 * Series are the head's refs: a head ref is never reused during the
 * head's life, and the ring lives and dies with the head's zone.  The
 * tenant is kept with each exemplar for the WAL and checkpoints.
 *
 * Layout: a header, max slots (one per exemplar), an open-addressing
 * index (ref -> oldest, newest slot; linear probing, backward-shift
 * deletion), and a byte ring for the exemplars' labels.  Slots are
 * taken in sequence order (seq % max); the labels of slot seq lie
 * behind those of seq - 1, so evicting the oldest slot frees the
 * oldest label bytes.  An exemplar whose labels do not fit evicts more
 * than one old exemplar; the label ring holds 64 bytes per slot on
 * average (a trace_id label takes about 45).
 *
 * Locking: writers and readers take the region's owner-pid lock; all
 * work under it is memory only.  What a crash leaves: a slot counts
 * only once the head sequence moved past it (the last store of an
 * add), and whoever takes the lock over from a dead process rebuilds
 * the index and the slots' links from the live slots.
 *
 * Durability (the module's part): writers log every stored or duplicate
 * exemplar in an EXEMPLARS WAL record (self-contained: tenant, series
 * labels, exemplar) after adding it here; checkpoints copy the slots
 * past the saved sequence into LMDB and delete those evicted since;
 * start-up loads LMDB's copy in front of what the WAL replay added
 * (ts_exemplar_prepend()).
 */

#ifndef TS_EXEMPLAR_H
#define TS_EXEMPLAR_H


#include <stddef.h>
#include <stdint.h>

#include "ts_core.h"
#include "ts_labels.h"
#include "ts_walrec.h"


/* a WAL record type of its own, see docs/format/wal.md */
#define TS_EXEMPLAR_WAL_TYPE        TS_WALREC_EXEMPLARS

/* Prometheus's default storage.exemplars.max_exemplars */
#define TS_EXEMPLAR_DEFAULT_MAX     100000

/* exemplar.ExemplarMaxLabelSetLength: runes of names and values */
#define TS_EXEMPLAR_LABELS_RUNES    128

/* so at most 128 labels, 4 bytes a rune, 2 length bytes a string */
#define TS_EXEMPLAR_LABELS_MAX      128
#define TS_EXEMPLAR_LABELS_BYTES    (TS_EXEMPLAR_LABELS_RUNES * 4 \
                                     + TS_EXEMPLAR_LABELS_MAX * 2 * 2)

#define TS_EXEMPLAR_SERIES_LABELS   512     /* in a record, decoding */


typedef struct ts_exemplar_hdr_s  ts_exemplar_hdr_t;


typedef struct {
    ts_exemplar_hdr_t      *hdr;
    int64_t                 pid;
    ts_pid_alive_pt         alive;
} ts_exemplar_t;


/* one stored exemplar; labels encoded, see ts_exemplar_labels_next() */
typedef struct {
    uint64_t                seq;
    uint32_t                tenant;
    uint32_t                ref;
    int64_t                 t;
    uint64_t                v;          /* IEEE 754 bits */
    const uint8_t          *labels;
    size_t                  labels_len;
} ts_exemplar_entry_t;


typedef struct {
    uint64_t                exemplars;
    uint64_t                series;
    uint64_t                max;
    uint64_t                head;       /* next sequence number */
    uint64_t                tail;       /* oldest stored */
    uint64_t                saved;      /* below it: in LMDB */
    uint64_t                arena_size;
} ts_exemplar_stats_t;


/* Called per exemplar under the lock; must not block.  0 goes on. */
typedef int (*ts_exemplar_pt)(void *data, const ts_exemplar_entry_t *e);


/* Bytes a region for max exemplars takes (0 for max == 0). */
size_t ts_exemplar_region_size(uint32_t max);

/*
 * Formats mem (ts_exemplar_region_size(max) bytes), or takes over a
 * ring of the same layout (an nginx reload).  max 0 is a disabled
 * store: every add answers TS_ERR_UNSUPPORTED.
 */
int ts_exemplar_open(ts_exemplar_t *x, void *mem, size_t size, uint32_t max,
    int64_t pid, ts_pid_alive_pt alive);

/*
 * Adds an exemplar of series ref (labels as sent: empty values are
 * dropped and the rest sorted, as Prometheus does).  1 stored, 0 a
 * duplicate of the series' newest, TS_ERR_OUT_OF_ORDER if t is not
 * after the newest, TS_ERR_INVALID for labels over 128 runes, more
 * than 128 labels or over TS_EXEMPLAR_LABELS_BYTES, TS_ERR_UNSUPPORTED
 * when the store is disabled.
 */
int ts_exemplar_add(ts_exemplar_t *x, uint32_t tenant, uint32_t ref,
    int64_t t, uint64_t v, const ts_label_t *labels, uint32_t n);

/* The exemplars of ref in [mint, maxt], oldest first. */
int ts_exemplar_series(ts_exemplar_t *x, uint32_t ref, int64_t mint,
    int64_t maxt, ts_exemplar_pt cb, void *data);

/* Every stored exemplar with seq >= from, oldest first. */
int ts_exemplar_each(ts_exemplar_t *x, uint64_t from, ts_exemplar_pt cb,
    void *data);

/*
 * Re-adds the stored exemplars after the n given ones (older ones, in
 * order: a checkpoint's copy; labels from ts_exemplar_labels_encode(),
 * their seq ignored), each through ts_exemplar_add()'s rules, numbered
 * from seq on at least (past the numbers of that copy); *added gets
 * how many of the n were stored.  TS_ERR_NOMEM.
 */
int ts_exemplar_prepend(ts_exemplar_t *x, const ts_exemplar_entry_t *e,
    size_t n, uint64_t seq, size_t *added);

/* Start-up load state: 0 not yet, 1 done. */
int ts_exemplar_loaded(ts_exemplar_t *x);
void ts_exemplar_set_loaded(ts_exemplar_t *x);

/* After a checkpoint made everything below seq durable. */
void ts_exemplar_saved(ts_exemplar_t *x, uint64_t seq);

void ts_exemplar_stats(ts_exemplar_t *x, ts_exemplar_stats_t *st);

/*
 * Encodes labels as stored: empty values dropped, sorted by name; buf
 * has TS_EXEMPLAR_LABELS_BYTES.  TS_ERR_INVALID as ts_exemplar_add().
 */
int ts_exemplar_labels_encode(const ts_label_t *labels, uint32_t n,
    uint8_t *buf, size_t *len);

/*
 * Encoded labels: per label name and value, each a uvarint length and
 * the bytes.  _next() gives 1 and the next label, 0 at the end,
 * TS_ERR_CORRUPT for a malformed encoding.
 */
int ts_exemplar_labels_next(const uint8_t **p, const uint8_t *end,
    ts_label_t *l);


/*
 * The EXEMPLARS WAL record (and the payload of LMDB's copy): uvarint
 * count, then per exemplar tenant (bytes), series labels (uvarint n,
 * n x name, value bytes), t (zigzag varint), v (8 bytes LE) and the
 * exemplar's labels (uvarint n, n x name, value bytes).  _size() is an
 * upper bound for _encode().
 */
typedef struct {
    const char             *tenant;
    size_t                  tenant_len;
    const ts_label_t       *series;
    uint32_t                nseries;
    int64_t                 t;
    uint64_t                v;
    const ts_label_t       *labels;
    uint32_t                nlabels;
    const uint8_t          *enc;        /* encoding: labels encoded as */
    size_t                  enc_len;    /* ts_exemplar_entry_t's, or NULL */
} ts_exemplar_record_t;

size_t ts_exemplar_record_size(const ts_exemplar_record_t *r, size_t n);
int ts_exemplar_record_encode(uint8_t *buf, size_t size,
    const ts_exemplar_record_t *r, size_t n, size_t *len);

/*
 * Calls cb per exemplar of a payload (strings point into it, enc is
 * NULL).  TS_ERR_CORRUPT for a malformed payload: nothing is called
 * after the first bad byte.  A non-zero cb result stops and is
 * returned.
 */
typedef int (*ts_exemplar_record_pt)(void *data,
    const ts_exemplar_record_t *r);

int ts_exemplar_record_decode(const uint8_t *p, size_t len,
    ts_exemplar_record_pt cb, void *data);


#endif /* TS_EXEMPLAR_H */
