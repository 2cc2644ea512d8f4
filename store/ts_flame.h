/*
 * Copyright (C) ngx_tsdb authors
 *
 * Flame graphs from a merged profile, as Pyroscope builds them.
 *
 * The tree: one node per call path, frames named by function (each
 * line of a location is a frame, inline callees included, so a node's
 * self value summed per name equals pprof's "flat" per function); a
 * node's children ordered by name, bytewise (Pyroscope's tree.insert);
 * self is what samples ending there add, total what every sample
 * through it adds.  Node 0 is the root; its total is the profile's
 * total for the chosen sample type.
 *
 * The flame graph (Pyroscope's pkg/model NewFlameGraph): with maxNodes
 * > 0 and more nodes than that, only nodes whose total reaches the
 * maxNodes-th largest total stay; the others of one parent are folded
 * into one "other" child.  levels[d] holds 4 integers per node at depth
 * d, [x, total, self, name index], x delta-encoded per level (the gap
 * after the previous node); names[0] is "total", the root.  Names and
 * levels come in the order Pyroscope's depth-first walk produces them,
 * so a graph is byte-for-byte what Pyroscope sends for the same tree.
 *
 * Memory is malloc'ed, bounded by TS_FLAME_MAX_NODES tree nodes.
 */

#ifndef TS_FLAME_H
#define TS_FLAME_H


#include <stddef.h>
#include <stdint.h>

#include "ts_core.h"
#include "ts_pprof.h"
#include "ts_sset.h"


#define TS_FLAME_MAX_NODES       (4u << 20)
#define TS_FLAME_NODES_DEFAULT   8192      /* querier.max-flamegraph-
                                              nodes-default */
#define TS_FLAME_NODES_MAX       (1 << 20)


typedef struct {
    const char                *name;      /* not NUL-terminated */
    uint32_t                   len;
    uint32_t                   parent;
    uint32_t                   child;     /* first child; 0: none */
    uint32_t                   next;      /* next sibling; 0: none */
    int64_t                    self;
    int64_t                    total;
} ts_flame_node_t;


typedef struct {
    ts_flame_node_t           *nodes;
    uint32_t                   n;
    uint32_t                   cap;
    uint32_t                  *slot;      /* (parent, name) -> node */
    uint32_t                   mask;
    char                      *arena;     /* names made up here */
    size_t                     arena_len;
    size_t                     arena_cap;
    unsigned                   linked:1;
} ts_flame_tree_t;


typedef struct {
    int64_t                   *v;
    uint32_t                   n;
    uint32_t                   cap;
} ts_flame_level_t;


typedef struct {
    char                     **names;     /* NUL-terminated */
    uint32_t                   nnames;
    ts_flame_level_t          *levels;
    uint32_t                   nlevels;
    int64_t                    total;
    int64_t                    max_self;
    char                      *arena;
} ts_flame_graph_t;


/* what /render's "metadata" says (ExportToFlamebearer) */
typedef struct {
    const char                *spy_name;
    const char                *units;
    const char                *name;      /* the sample type */
    uint32_t                   sample_rate;
} ts_flame_meta_t;


/* /render's "timeline": samples[i] covers [start + i*step, + step) s */
typedef struct {
    int64_t                    start;     /* unix seconds */
    int64_t                    step;      /* seconds */
    const uint64_t            *samples;
    uint32_t                   n;
} ts_flame_timeline_t;


/*
 * Builds the tree of p's sample type vi (0-based).  TS_OK,
 * TS_ERR_INVALID for vi out of range, TS_ERR_LIMIT past
 * TS_FLAME_MAX_NODES, TS_ERR_NOMEM.  Names point into p's strings: p
 * must outlive the tree.  Free the tree either way.
 */
int ts_flame_tree(ts_flame_tree_t *t, const ts_pprof_t *p, uint32_t vi);
void ts_flame_tree_free(ts_flame_tree_t *t);

/*
 * The flame graph of t; max_nodes <= 0: every node.  TS_OK or
 * TS_ERR_NOMEM; free g either way.
 */
int ts_flame_graph(ts_flame_graph_t *g, ts_flame_tree_t *t,
    int64_t max_nodes);
void ts_flame_graph_free(ts_flame_graph_t *g);

/* Pyroscope's units and sample rate for a sample type and unit */
void ts_flame_meta(ts_flame_meta_t *m, const char *type, const char *unit);

/*
 * The whole /render answer (FlamebearerProfile, version 1) as Go's
 * encoding/json writes it; tl may be NULL ("timeline":null).
 */
int ts_flame_json(const ts_flame_graph_t *g, const ts_flame_meta_t *m,
    const ts_flame_timeline_t *tl, ts_buf_t *out);

/*
 * Collapsed stacks, "root;...;leaf self\n" for every node with a self
 * value, children by name.  TS_OK, TS_ERR_IO if write failed,
 * TS_ERR_NOMEM.
 */
int ts_flame_folded(ts_flame_tree_t *t, ts_write_pt write, void *data);

/*
 * A profile cut to max_nodes as Pyroscope's SelectMergeProfile cuts it
 * (its pprofProtoTruncatedSymbols): the tree of sample type 0 decides;
 * nodes whose total is below the max_nodes-th largest total are cut,
 * and every sample whose stack runs into one keeps its locations from
 * the root down to the last one with a kept frame, below which one
 * location "other" stands for the rest (a stack cut entirely becomes
 * just "other"); equal stacks then sum.  Totals of every sample type
 * stay.  out must be initialized and empty.  TS_OK with *cut set (0:
 * max_nodes <= 0 or not more nodes than that, out left empty: use p);
 * TS_ERR_NOMEM, TS_ERR_LIMIT (out's max_memory, the tree's size).
 */
int ts_flame_truncate(const ts_pprof_t *p, int64_t max_nodes,
    ts_pprof_t *out, int *cut);


#endif /* TS_FLAME_H */
