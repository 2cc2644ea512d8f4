/*
 * Copyright (C) ngx_tsdb authors
 *
 * Flame graphs (ts_flame.h).  The tree is built in one pass over the
 * samples with a hash of (parent, name) -> node, then every node's
 * children are linked in name order with one sort.  The graph walk
 * keeps an explicit stack exactly as Pyroscope's NewFlameGraph does,
 * so that names and nodes come out in the same order; each level is
 * filled in visit order and reversed at the end (Pyroscope's levels
 * are stacks read back).
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_flame.h"
#include "ts_labels.h"
#include "ts_pqjson.h"


#define TS_FLAME_BLOCK  4096


typedef struct {
    uint32_t                   node;      /* UINT32_MAX: "other" */
    uint32_t                   level;
    int64_t                    x;
    int64_t                    other;
} ts_flame_item_t;


typedef struct {
    uint32_t                  *off;       /* into the arena */
    uint32_t                  *len;
    uint32_t                  *slot;      /* name -> index + 1 */
    uint32_t                   mask;
    uint32_t                   n;
    uint32_t                   cap;
    ts_buf_t                   arena;
} ts_flame_names_t;


static int ts_flame_grow(ts_flame_tree_t *t);
static int ts_flame_child(ts_flame_tree_t *t, uint32_t parent,
    const char *name, size_t len, uint32_t *child);
static int ts_flame_address(ts_flame_tree_t *t, uint64_t addr,
    const char **name, uint32_t *len);
static int ts_flame_sample(ts_flame_tree_t *t, const ts_pprof_t *p,
    const ts_pprof_sample_t *s, int64_t v);
static int ts_flame_link(ts_flame_tree_t *t);
static int ts_flame_cmp(const void *a, const void *b, void *arg);
static int ts_flame_desc(const void *a, const void *b);
static int64_t ts_flame_min_value(ts_flame_tree_t *t, int64_t max_nodes,
    int *rc);
static int ts_flame_name(ts_flame_names_t *nm, const char *s, size_t len,
    uint32_t *idx);
static int ts_flame_push(ts_flame_level_t *l, int64_t x, int64_t total,
    int64_t self, uint32_t name);
static int ts_flame_visit(ts_flame_graph_t *g, ts_flame_tree_t *t,
    ts_flame_names_t *nm, ts_flame_item_t *it, ts_flame_item_t **stack,
    uint32_t *sn, uint32_t *scap, int64_t min);
static int ts_flame_stack_push(ts_flame_item_t **stack, uint32_t *sn,
    uint32_t *scap, const ts_flame_item_t *it);
static int ts_flame_finish(ts_flame_graph_t *g, ts_flame_names_t *nm);
static int ts_flame_put(ts_buf_t *out, const char *s);
static int ts_flame_int(ts_buf_t *out, int64_t v);
static int ts_flame_folded_node(ts_flame_tree_t *t, uint32_t i,
    ts_buf_t *path, ts_write_pt write, void *data);


int
ts_flame_tree(ts_flame_tree_t *t, const ts_pprof_t *p, uint32_t vi)
{
    int       rc;
    int64_t   v;
    uint32_t  i;

    memset(t, 0, sizeof(ts_flame_tree_t));

    if (vi >= p->ntypes) {
        return TS_ERR_INVALID;
    }

    if (ts_flame_grow(t) != TS_OK) {
        return TS_ERR_NOMEM;
    }

    t->n = 1;                                   /* the root */

    for (i = 0; i < p->nsamples; i++) {
        v = p->values[(size_t) i * p->ntypes + vi];

        if (v == 0) {
            continue;
        }

        rc = ts_flame_sample(t, p, &p->samples[i], v);
        if (rc != TS_OK) {
            return rc;
        }
    }

    return ts_flame_link(t);
}


void
ts_flame_tree_free(ts_flame_tree_t *t)
{
    char  *b, *next;

    for (b = t->arena; b != NULL; b = next) {
        memcpy(&next, b, sizeof(char *));
        free(b);
    }

    free(t->nodes);
    free(t->slot);
    memset(t, 0, sizeof(ts_flame_tree_t));
}


/* doubles the node array and rehashes (load factor below 1/2) */

static int
ts_flame_grow(ts_flame_tree_t *t)
{
    uint32_t          cap, i, j, mask, *slot;
    uint64_t          h;
    ts_flame_node_t  *nodes, *nd;

    cap = t->cap ? t->cap * 2 : 256;

    if (t->cap >= TS_FLAME_MAX_NODES) {
        return TS_ERR_LIMIT;
    }

    nodes = realloc(t->nodes, cap * sizeof(ts_flame_node_t));
    if (nodes == NULL) {
        return TS_ERR_NOMEM;
    }

    t->nodes = nodes;
    memset(nodes + t->cap, 0, (cap - t->cap) * sizeof(ts_flame_node_t));
    t->cap = cap;

    mask = cap * 2 - 1;
    slot = calloc((size_t) mask + 1, sizeof(uint32_t));
    if (slot == NULL) {
        return TS_ERR_NOMEM;
    }

    for (i = 1; i < t->n; i++) {
        nd = &nodes[i];
        h = ts_xxh64(nd->name, nd->len, nd->parent);

        for (j = (uint32_t) h & mask; slot[j] != 0; j = (j + 1) & mask) {
            /* void */
        }

        slot[j] = i;
    }

    free(t->slot);
    t->slot = slot;
    t->mask = mask;

    return TS_OK;
}


static int
ts_flame_child(ts_flame_tree_t *t, uint32_t parent, const char *name,
    size_t len, uint32_t *child)
{
    int               rc;
    uint32_t          j;
    ts_flame_node_t  *nd;

    if (t->n == t->cap) {
        rc = ts_flame_grow(t);
        if (rc != TS_OK) {
            return rc;
        }
    }

    j = (uint32_t) ts_xxh64(name, len, parent) & t->mask;

    for ( ;; ) {
        if (t->slot[j] == 0) {
            break;
        }

        nd = &t->nodes[t->slot[j]];

        if (nd->parent == parent && nd->len == len
            && memcmp(nd->name, name, len) == 0)
        {
            *child = t->slot[j];
            return TS_OK;
        }

        j = (j + 1) & t->mask;
    }

    nd = &t->nodes[t->n];
    nd->name = name;
    nd->len = (uint32_t) len;
    nd->parent = parent;
    t->slot[j] = t->n;
    *child = t->n++;

    return TS_OK;
}


/*
 * A location without lines is named by its address, as pprof prints
 * it.  Such names live in blocks that never move (the hash compares
 * names by pointer), chained through their first bytes.
 */

static int
ts_flame_address(ts_flame_tree_t *t, uint64_t addr, const char **name,
    uint32_t *len)
{
    int    n;
    char  *b;

    if (t->arena == NULL || t->arena_cap - t->arena_len < 24) {
        b = malloc(TS_FLAME_BLOCK);
        if (b == NULL) {
            return TS_ERR_NOMEM;
        }

        memcpy(b, &t->arena, sizeof(char *));
        t->arena = b;
        t->arena_len = sizeof(char *);
        t->arena_cap = TS_FLAME_BLOCK;
    }

    n = snprintf(t->arena + t->arena_len, 24, "0x%" PRIx64, addr);

    *name = t->arena + t->arena_len;
    *len = (uint32_t) n;
    t->arena_len += (size_t) n;

    return TS_OK;
}


/* root first: the last location, its last line (the caller) first */

static int
ts_flame_sample(ts_flame_tree_t *t, const ts_pprof_t *p,
    const ts_pprof_sample_t *s, int64_t v)
{
    int                         rc;
    uint32_t                    d, l, node, len;
    const char                 *name;
    const ts_pprof_str_t       *str;
    const ts_pprof_location_t  *loc;
    const ts_pprof_function_t  *fn;

    node = 0;
    t->nodes[0].total += v;

    for (d = s->depth; d > 0; d--) {
        loc = &p->locations[p->stacks[s->stack + d - 1] - 1];

        if (loc->nlines == 0) {
            rc = ts_flame_address(t, loc->address, &name, &len);
            if (rc == TS_OK) {
                rc = ts_flame_child(t, node, name, len, &node);
            }

            if (rc != TS_OK) {
                return rc;
            }

            t->nodes[node].total += v;
            continue;
        }

        for (l = loc->nlines; l > 0; l--) {
            fn = &p->functions[p->lines[loc->line + l - 1].function - 1];
            str = ts_pprof_string(p, fn->name);

            rc = ts_flame_child(t, node, str->data, str->len, &node);
            if (rc != TS_OK) {
                return rc;
            }

            t->nodes[node].total += v;
        }
    }

    t->nodes[node].self += v;

    return TS_OK;
}


/* every node's children linked in name order */

static int
ts_flame_link(ts_flame_tree_t *t)
{
    uint32_t          i, *order, prev;
    ts_flame_node_t  *nd;

    if (t->n <= 1) {
        t->linked = 1;
        return TS_OK;
    }

    order = malloc((size_t) (t->n - 1) * sizeof(uint32_t));
    if (order == NULL) {
        return TS_ERR_NOMEM;
    }

    for (i = 1; i < t->n; i++) {
        order[i - 1] = i;
    }

    qsort_r(order, t->n - 1, sizeof(uint32_t), ts_flame_cmp, t);

    prev = 0;

    for (i = 0; i < t->n - 1; i++) {
        nd = &t->nodes[order[i]];

        if (i == 0 || t->nodes[prev].parent != nd->parent) {
            t->nodes[nd->parent].child = order[i];

        } else {
            t->nodes[prev].next = order[i];
        }

        prev = order[i];
    }

    free(order);
    t->linked = 1;

    return TS_OK;
}


static int
ts_flame_cmp(const void *a, const void *b, void *arg)
{
    int                     c;
    size_t                  n;
    const ts_flame_tree_t  *t = arg;
    const ts_flame_node_t  *x, *y;

    x = &t->nodes[*(const uint32_t *) a];
    y = &t->nodes[*(const uint32_t *) b];

    if (x->parent != y->parent) {
        return x->parent < y->parent ? -1 : 1;
    }

    n = x->len < y->len ? x->len : y->len;
    c = n ? memcmp(x->name, y->name, n) : 0;

    if (c != 0) {
        return c;
    }

    return (x->len > y->len) - (x->len < y->len);
}


static int
ts_flame_desc(const void *a, const void *b)
{
    int64_t  x, y;

    x = *(const int64_t *) a;
    y = *(const int64_t *) b;

    return (x < y) - (x > y);
}


/*
 * Tree.minValue: the max_nodes-th largest total of all nodes but the
 * root, 0 when there are no more nodes than that.
 */

static int64_t
ts_flame_min_value(ts_flame_tree_t *t, int64_t max_nodes, int *rc)
{
    int64_t   *v, min;
    uint32_t   i;

    *rc = TS_OK;

    if (max_nodes <= 0 || (int64_t) t->n - 1 <= max_nodes) {
        return 0;
    }

    v = malloc((size_t) (t->n - 1) * sizeof(int64_t));
    if (v == NULL) {
        *rc = TS_ERR_NOMEM;
        return 0;
    }

    for (i = 1; i < t->n; i++) {
        v[i - 1] = t->nodes[i].total;
    }

    qsort(v, t->n - 1, sizeof(int64_t), ts_flame_desc);
    min = v[max_nodes - 1];
    free(v);

    return min;
}


int
ts_flame_graph(ts_flame_graph_t *g, ts_flame_tree_t *t, int64_t max_nodes)
{
    int               rc;
    int64_t           min;
    uint32_t          sn, scap;
    ts_flame_item_t  *stack, it;
    ts_flame_names_t  nm;

    memset(g, 0, sizeof(ts_flame_graph_t));
    memset(&nm, 0, sizeof(ts_flame_names_t));

    if (!t->linked) {
        return TS_ERR_INVALID;
    }

    min = ts_flame_min_value(t, max_nodes, &rc);
    if (rc != TS_OK) {
        return rc;
    }

    g->total = t->nodes[0].total;

    stack = NULL;
    sn = 0;
    scap = 0;

    memset(&it, 0, sizeof(ts_flame_item_t));
    rc = ts_flame_stack_push(&stack, &sn, &scap, &it);

    while (rc == TS_OK && sn > 0) {
        it = stack[--sn];
        rc = ts_flame_visit(g, t, &nm, &it, &stack, &sn, &scap, min);
    }

    free(stack);

    if (rc == TS_OK) {
        rc = ts_flame_finish(g, &nm);
    }

    free(nm.off);
    free(nm.len);
    free(nm.slot);

    if (rc != TS_OK) {
        free(nm.arena.p);
        return rc;
    }

    g->arena = (char *) nm.arena.p;

    return TS_OK;
}


/* one node of the walk: its entry, then its children onto the stack */

static int
ts_flame_visit(ts_flame_graph_t *g, ts_flame_tree_t *t,
    ts_flame_names_t *nm, ts_flame_item_t *it, ts_flame_item_t **stack,
    uint32_t *sn, uint32_t *scap, int64_t min)
{
    int               rc;
    int64_t           self, total, other;
    uint32_t          c, idx;
    ts_flame_item_t   ch;
    ts_flame_level_t *levels;

    if (it->node == UINT32_MAX) {
        self = it->other;
        total = it->other;
        rc = ts_flame_name(nm, "other", 5, &idx);

    } else {
        self = t->nodes[it->node].self;
        total = t->nodes[it->node].total;
        rc = (it->node == 0)
             ? ts_flame_name(nm, "total", 5, &idx)
             : ts_flame_name(nm, t->nodes[it->node].name,
                             t->nodes[it->node].len, &idx);
    }

    if (rc != TS_OK) {
        return rc;
    }

    if (self > g->max_self) {
        g->max_self = self;
    }

    if (it->level == g->nlevels) {
        levels = realloc(g->levels, (g->nlevels + 1)
                                    * sizeof(ts_flame_level_t));
        if (levels == NULL) {
            return TS_ERR_NOMEM;
        }

        g->levels = levels;
        memset(&levels[g->nlevels++], 0, sizeof(ts_flame_level_t));
    }

    rc = ts_flame_push(&g->levels[it->level], it->x, total, self, idx);
    if (rc != TS_OK || it->node == UINT32_MAX) {
        return rc;
    }

    it->x += self;
    other = 0;

    for (c = t->nodes[it->node].child; c != 0; c = t->nodes[c].next) {
        if (t->nodes[c].total >= min
            && !(t->nodes[c].len == 5
                 && memcmp(t->nodes[c].name, "other", 5) == 0))
        {
            ch.node = c;
            ch.level = it->level + 1;
            ch.x = it->x;
            ch.other = 0;

            rc = ts_flame_stack_push(stack, sn, scap, &ch);
            if (rc != TS_OK) {
                return rc;
            }

            it->x += t->nodes[c].total;

        } else {
            other += t->nodes[c].total;
        }
    }

    if (other == 0) {
        return TS_OK;
    }

    ch.node = UINT32_MAX;
    ch.level = it->level + 1;
    ch.x = it->x;
    ch.other = other;

    return ts_flame_stack_push(stack, sn, scap, &ch);
}


static int
ts_flame_stack_push(ts_flame_item_t **stack, uint32_t *sn, uint32_t *scap,
    const ts_flame_item_t *it)
{
    ts_flame_item_t  *s;

    if (*sn == *scap) {
        *scap = *scap ? *scap * 2 : 64;
        s = realloc(*stack, *scap * sizeof(ts_flame_item_t));
        if (s == NULL) {
            return TS_ERR_NOMEM;
        }

        *stack = s;
    }

    (*stack)[(*sn)++] = *it;

    return TS_OK;
}


/* the index of a name, added at the end the first time it is seen */

static int
ts_flame_name(ts_flame_names_t *nm, const char *s, size_t len,
    uint32_t *idx)
{
    uint32_t   j, i, mask, *slot, *off, *ln;
    uint64_t   h;

    if (nm->n * 2 >= nm->mask) {
        mask = nm->mask ? nm->mask * 2 + 1 : 255;
        slot = calloc((size_t) mask + 1, sizeof(uint32_t));
        if (slot == NULL) {
            return TS_ERR_NOMEM;
        }

        for (i = 0; i < nm->n; i++) {
            h = ts_xxh64(nm->arena.p + nm->off[i], nm->len[i], 0);
            for (j = (uint32_t) h & mask; slot[j]; j = (j + 1) & mask) {
                /* void */
            }

            slot[j] = i + 1;
        }

        free(nm->slot);
        nm->slot = slot;
        nm->mask = mask;
    }

    h = ts_xxh64(s, len, 0);

    for (j = (uint32_t) h & nm->mask; nm->slot[j]; j = (j + 1) & nm->mask) {
        i = nm->slot[j] - 1;

        if (nm->len[i] == len && memcmp(nm->arena.p + nm->off[i], s, len)
                                 == 0)
        {
            *idx = i;
            return TS_OK;
        }
    }

    if (nm->n == nm->cap) {
        nm->cap = nm->cap ? nm->cap * 2 : 256;
        off = realloc(nm->off, nm->cap * sizeof(uint32_t));
        if (off != NULL) {
            nm->off = off;
        }

        ln = realloc(nm->len, nm->cap * sizeof(uint32_t));
        if (ln != NULL) {
            nm->len = ln;
        }

        if (off == NULL || ln == NULL) {
            return TS_ERR_NOMEM;
        }
    }

    if (nm->arena.len + len + 1 > UINT32_MAX
        || ts_buf_reserve(&nm->arena, len + 1) != TS_OK)
    {
        return TS_ERR_NOMEM;
    }

    nm->off[nm->n] = (uint32_t) nm->arena.len;
    nm->len[nm->n] = (uint32_t) len;
    memcpy(nm->arena.p + nm->arena.len, s, len);
    nm->arena.len += len;
    nm->arena.p[nm->arena.len++] = '\0';
    nm->slot[j] = nm->n + 1;
    *idx = nm->n++;

    return TS_OK;
}


static int
ts_flame_push(ts_flame_level_t *l, int64_t x, int64_t total, int64_t self,
    uint32_t name)
{
    int64_t  *v;

    if (l->n + 4 > l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        v = realloc(l->v, l->cap * sizeof(int64_t));
        if (v == NULL) {
            return TS_ERR_NOMEM;
        }

        l->v = v;
    }

    l->v[l->n++] = x;
    l->v[l->n++] = total;
    l->v[l->n++] = self;
    l->v[l->n++] = name;

    return TS_OK;
}


/* levels reversed by node and delta-encoded; names as pointers */

static int
ts_flame_finish(ts_flame_graph_t *g, ts_flame_names_t *nm)
{
    int64_t    tmp[4], prev;
    uint32_t   d, i, j, k;
    ts_flame_level_t  *l;

    for (d = 0; d < g->nlevels; d++) {
        l = &g->levels[d];

        for (i = 0, j = l->n - 4; i < j; i += 4, j -= 4) {
            for (k = 0; k < 4; k++) {
                tmp[k] = l->v[i + k];
                l->v[i + k] = l->v[j + k];
                l->v[j + k] = tmp[k];
            }
        }

        for (i = 0, prev = 0; i < l->n; i += 4) {
            l->v[i] -= prev;
            prev += l->v[i] + l->v[i + 1];
        }
    }

    g->names = malloc((nm->n ? nm->n : 1) * sizeof(char *));
    if (g->names == NULL) {
        return TS_ERR_NOMEM;
    }

    for (i = 0; i < nm->n; i++) {
        g->names[i] = (char *) nm->arena.p + nm->off[i];
    }

    g->nnames = nm->n;

    return TS_OK;
}


void
ts_flame_graph_free(ts_flame_graph_t *g)
{
    uint32_t  i;

    for (i = 0; i < g->nlevels; i++) {
        free(g->levels[i].v);
    }

    free(g->levels);
    free(g->names);
    free(g->arena);
    memset(g, 0, sizeof(ts_flame_graph_t));
}


void
ts_flame_meta(ts_flame_meta_t *m, const char *type, const char *unit)
{
    m->units = unit;
    m->name = type;
    m->sample_rate = 100;

    if (strcmp(type, "inuse_objects") == 0
        || strcmp(type, "alloc_objects") == 0
        || strcmp(type, "goroutine") == 0
        || strcmp(type, "samples") == 0)
    {
        m->units = "objects";

    } else if (strcmp(type, "cpu") == 0) {
        m->units = "samples";
        m->sample_rate = 1000000000;
    }
}


static int
ts_flame_put(ts_buf_t *out, const char *s)
{
    size_t  len;

    len = strlen(s);

    if (ts_buf_reserve(out, len) != TS_OK) {
        return TS_ERR_NOMEM;
    }

    memcpy(out->p + out->len, s, len);
    out->len += len;

    return TS_OK;
}


static int
ts_flame_int(ts_buf_t *out, int64_t v)
{
    char  buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, v);

    return ts_flame_put(out, buf);
}


int
ts_flame_json(const ts_flame_graph_t *g, const ts_flame_meta_t *m,
    const ts_flame_timeline_t *tl, ts_buf_t *out)
{
    int       rc;
    uint32_t  i, j;

    rc = ts_flame_put(out, "{\"version\":1,\"flamebearer\":{\"names\":[");

    for (i = 0; rc == TS_OK && i < g->nnames; i++) {
        rc = (i ? ts_flame_put(out, ",") : TS_OK)
             || ts_pqjson_string(g->names[i], strlen(g->names[i]), out);
    }

    rc = rc ? rc : ts_flame_put(out, "],\"levels\":[");

    for (i = 0; rc == TS_OK && i < g->nlevels; i++) {
        rc = ts_flame_put(out, i ? ",[" : "[");

        for (j = 0; rc == TS_OK && j < g->levels[i].n; j++) {
            rc = (j ? ts_flame_put(out, ",") : TS_OK)
                 || ts_flame_int(out, g->levels[i].v[j]);
        }

        rc = rc ? rc : ts_flame_put(out, "]");
    }

    rc = rc ? rc : ts_flame_put(out, "],\"numTicks\":");
    rc = rc ? rc : ts_flame_int(out, g->total);
    rc = rc ? rc : ts_flame_put(out, ",\"maxSelf\":");
    rc = rc ? rc : ts_flame_int(out, g->max_self);
    rc = rc ? rc : ts_flame_put(out, "},\"metadata\":{\"format\":\"single\","
                                     "\"spyName\":");
    rc = rc ? rc : ts_pqjson_string(m->spy_name, strlen(m->spy_name), out);
    rc = rc ? rc : ts_flame_put(out, ",\"sampleRate\":");
    rc = rc ? rc : ts_flame_int(out, m->sample_rate);
    rc = rc ? rc : ts_flame_put(out, ",\"units\":");
    rc = rc ? rc : ts_pqjson_string(m->units, strlen(m->units), out);
    rc = rc ? rc : ts_flame_put(out, ",\"name\":");
    rc = rc ? rc : ts_pqjson_string(m->name, strlen(m->name), out);
    rc = rc ? rc : ts_flame_put(out, "},\"timeline\":");

    if (tl == NULL) {
        rc = rc ? rc : ts_flame_put(out, "null");

    } else {
        rc = rc ? rc : ts_flame_put(out, "{\"startTime\":");
        rc = rc ? rc : ts_flame_int(out, tl->start);
        rc = rc ? rc : ts_flame_put(out, ",\"samples\":[");

        for (i = 0; rc == TS_OK && i < tl->n; i++) {
            rc = (i ? ts_flame_put(out, ",") : TS_OK)
                 || ts_flame_int(out, (int64_t) tl->samples[i]);
        }

        rc = rc ? rc : ts_flame_put(out, "],\"durationDelta\":");
        rc = rc ? rc : ts_flame_int(out, tl->step);
        rc = rc ? rc : ts_flame_put(out, ",\"watermarks\":null}");
    }

    rc = rc ? rc : ts_flame_put(out, ",\"groups\":null,\"heatmap\":null}\n");

    return rc ? TS_ERR_NOMEM : TS_OK;
}


int
ts_flame_folded(ts_flame_tree_t *t, ts_write_pt write, void *data)
{
    int       rc;
    ts_buf_t  path;

    if (!t->linked) {
        return TS_ERR_INVALID;
    }

    memset(&path, 0, sizeof(ts_buf_t));

    rc = ts_flame_folded_node(t, 0, &path, write, data);
    free(path.p);

    return rc;
}


/* depth-first, the path so far in path; depth is bounded by the stacks */

static int
ts_flame_folded_node(ts_flame_tree_t *t, uint32_t i, ts_buf_t *path,
    ts_write_pt write, void *data)
{
    int                rc;
    char               num[24];
    size_t             mark;
    uint32_t           c;
    ts_flame_node_t   *nd;

    nd = &t->nodes[i];
    mark = path->len;

    if (i != 0) {
        if (ts_buf_reserve(path, nd->len + 1) != TS_OK) {
            return TS_ERR_NOMEM;
        }

        if (mark) {
            path->p[path->len++] = ';';
        }

        memcpy(path->p + path->len, nd->name, nd->len);
        path->len += nd->len;

        if (nd->self != 0) {
            snprintf(num, sizeof(num), " %" PRId64 "\n", nd->self);

            if (write(data, (char *) path->p, path->len) != 0
                || write(data, num, strlen(num)) != 0)
            {
                return TS_ERR_IO;
            }
        }
    }

    for (c = nd->child; c != 0; c = t->nodes[c].next) {
        rc = ts_flame_folded_node(t, c, path, write, data);
        if (rc != TS_OK) {
            return rc;
        }
    }

    path->len = mark;

    return TS_OK;
}


/* Truncation (ts_flame_truncate): p's ids mapped into out lazily */

typedef struct {
    const ts_pprof_t   *p;
    ts_pprof_t         *out;
    uint32_t           *smap;       /* string; 0: not yet (0 is "") */
    uint32_t           *fmap;       /* function id - 1 -> out id */
    uint32_t           *mmap;
    uint32_t           *lmap;
    ts_pprof_line_t    *lines;      /* one location's, remapped */
    ts_pprof_label_t   *labels;     /* one sample's, remapped */
} ts_flame_cut_t;


static uint32_t
ts_flame_cut_str(ts_flame_cut_t *c, uint32_t i)
{
    uint32_t               k;
    const ts_pprof_str_t  *s;

    if (i == 0 || c->smap[i] != 0) {
        return c->smap[i];
    }

    s = ts_pprof_string(c->p, i);
    k = ts_pprof_add_string(c->out, s->data, s->len);

    if (k != TS_PPROF_NONE) {
        c->smap[i] = k;
    }

    return k;
}


static uint32_t
ts_flame_cut_loc(ts_flame_cut_t *c, uint32_t id)
{
    uint32_t                    i, k, m, f;
    ts_pprof_line_t            *lines;
    ts_pprof_mapping_t          mp;
    ts_pprof_function_t         fn;
    const ts_pprof_location_t  *loc;

    if (c->lmap[id - 1] != 0) {
        return c->lmap[id - 1];
    }

    loc = &c->p->locations[id - 1];
    m = 0;

    if (loc->mapping != 0) {
        m = c->mmap[loc->mapping - 1];

        if (m == 0) {
            mp = c->p->mappings[loc->mapping - 1];
            mp.file = ts_flame_cut_str(c, mp.file);
            mp.build_id = ts_flame_cut_str(c, mp.build_id);

            if (mp.file == TS_PPROF_NONE || mp.build_id == TS_PPROF_NONE) {
                return 0;
            }

            m = ts_pprof_add_mapping(c->out, &mp);
            c->mmap[loc->mapping - 1] = m;

            if (m == 0) {
                return 0;
            }
        }
    }

    lines = c->lines;

    for (k = 0; k < loc->nlines; k++) {
        lines[k] = c->p->lines[loc->line + k];
        i = lines[k].function - 1;
        f = c->fmap[i];

        if (f == 0) {
            fn = c->p->functions[i];
            fn.name = ts_flame_cut_str(c, fn.name);
            fn.system_name = ts_flame_cut_str(c, fn.system_name);
            fn.filename = ts_flame_cut_str(c, fn.filename);

            if (fn.name == TS_PPROF_NONE || fn.system_name == TS_PPROF_NONE
                || fn.filename == TS_PPROF_NONE)
            {
                return 0;
            }

            f = ts_pprof_add_function(c->out, &fn);
            c->fmap[i] = f;

            if (f == 0) {
                return 0;
            }
        }

        lines[k].function = f;
    }

    c->lmap[id - 1] = ts_pprof_add_location(c->out, m, loc->address,
                                            loc->is_folded, lines,
                                            loc->nlines);

    return c->lmap[id - 1];
}


/* out's types, period and times as p's */

static int
ts_flame_cut_head(ts_flame_cut_t *c)
{
    int                rc;
    uint32_t           i;
    ts_pprof_vtype_t  *vt;
    const ts_pprof_t  *p;

    p = c->p;

    vt = malloc((p->ntypes + 1) * sizeof(ts_pprof_vtype_t));
    if (vt == NULL) {
        return TS_ERR_NOMEM;
    }

    for (i = 0; i < p->ntypes; i++) {
        vt[i].type = ts_flame_cut_str(c, p->types[i].type);
        vt[i].unit = ts_flame_cut_str(c, p->types[i].unit);

        if (vt[i].type == TS_PPROF_NONE || vt[i].unit == TS_PPROF_NONE) {
            free(vt);
            return TS_ERR_NOMEM;
        }
    }

    rc = ts_pprof_set_types(c->out, vt, p->ntypes);
    free(vt);

    if (rc != TS_OK) {
        return rc;
    }

    c->out->period_type.type = ts_flame_cut_str(c, p->period_type.type);
    c->out->period_type.unit = ts_flame_cut_str(c, p->period_type.unit);
    c->out->default_type = ts_flame_cut_str(c, p->default_type);

    if (c->out->period_type.type == TS_PPROF_NONE
        || c->out->period_type.unit == TS_PPROF_NONE
        || c->out->default_type == TS_PPROF_NONE)
    {
        return TS_ERR_NOMEM;
    }

    c->out->period = p->period;
    c->out->time_nanos = p->time_nanos;
    c->out->duration_nanos = p->duration_nanos;

    return TS_OK;
}


int
ts_flame_truncate(const ts_pprof_t *p, int64_t max_nodes, ts_pprof_t *out,
    int *cut)
{
    int                         rc;
    int64_t                     min, v;
    uint32_t                    i, d, l, k, node, n, other, len, *stack;
    uint32_t                    maxdepth;
    const char                 *name;
    ts_pprof_line_t             line;
    ts_flame_cut_t              c;
    ts_flame_tree_t             t;
    ts_pprof_function_t         fn;
    const ts_pprof_sample_t    *s;
    const ts_pprof_location_t  *loc;
    const ts_pprof_str_t       *str;

    *cut = 0;

    if (max_nodes <= 0 || p->ntypes == 0 || p->nsamples == 0) {
        return TS_OK;
    }

    rc = ts_flame_tree(&t, p, 0);
    min = (rc == TS_OK) ? ts_flame_min_value(&t, max_nodes, &rc) : 0;

    if (rc != TS_OK || min == 0) {
        ts_flame_tree_free(&t);
        return rc;
    }

    maxdepth = 0;

    for (i = 0; i < p->nsamples; i++) {
        maxdepth = p->samples[i].depth > maxdepth ? p->samples[i].depth
                                                  : maxdepth;
    }

    memset(&c, 0, sizeof(ts_flame_cut_t));
    c.p = p;
    c.out = out;
    c.smap = calloc((size_t) p->nstrings + 1, sizeof(uint32_t));
    c.fmap = calloc((size_t) p->nfunctions + 1, sizeof(uint32_t));
    c.mmap = calloc((size_t) p->nmappings + 1, sizeof(uint32_t));
    c.lmap = calloc((size_t) p->nlocations + 1, sizeof(uint32_t));
    c.lines = malloc(((size_t) p->nlines + 1) * sizeof(ts_pprof_line_t));
    c.labels = malloc(((size_t) p->nlabels + 1) * sizeof(ts_pprof_label_t));
    stack = malloc(((size_t) maxdepth + 1) * sizeof(uint32_t));

    if (c.smap == NULL || c.fmap == NULL || c.mmap == NULL || c.lmap == NULL
        || c.lines == NULL || c.labels == NULL || stack == NULL)
    {
        rc = TS_ERR_NOMEM;
        goto done;
    }

    rc = ts_flame_cut_head(&c);
    if (rc != TS_OK) {
        goto done;
    }

    /* the stub: function and location "other", no mapping */

    memset(&fn, 0, sizeof(ts_pprof_function_t));
    fn.name = ts_pprof_add_string(out, "other", 5);
    fn.system_name = fn.name;
    line.function = (fn.name == TS_PPROF_NONE) ? 0
                    : ts_pprof_add_function(out, &fn);
    line.line = 0;
    line.column = 0;
    other = line.function ? ts_pprof_add_location(out, 0, 0, 0, &line, 1)
                          : 0;

    if (other == 0) {
        rc = TS_ERR_NOMEM;
        goto done;
    }

    for (i = 0; i < p->nsamples; i++) {
        s = &p->samples[i];
        v = p->values[(size_t) i * p->ntypes];

        /* root first as the tree was built: k locations stay */

        node = 0;
        k = s->depth;

        for (d = s->depth; v != 0 && d > 0 && k == s->depth; d--) {
            loc = &p->locations[p->stacks[s->stack + d - 1] - 1];

            for (l = (loc->nlines ? loc->nlines : 1); l > 0; l--) {
                if (loc->nlines == 0) {
                    rc = ts_flame_address(&t, loc->address, &name, &len);

                } else {
                    str = ts_pprof_string(p, p->functions[
                        p->lines[loc->line + l - 1].function - 1].name);
                    name = str->data;
                    len = str->len;
                    rc = TS_OK;
                }

                rc = rc ? rc : ts_flame_child(&t, node, name, len, &node);
                if (rc != TS_OK) {
                    goto done;
                }

                if (t.nodes[node].total < min) {
                    /* the location stays if a frame of it did */
                    k = (l == (loc->nlines ? loc->nlines : 1))
                        ? s->depth - d : s->depth - d + 1;
                    break;
                }
            }
        }

        /* leaf first: "other" if cut, then the kept locations */

        n = 0;

        if (k < s->depth) {
            stack[n++] = other;
        }

        for (d = s->depth - k; d < s->depth; d++) {
            stack[n] = ts_flame_cut_loc(&c, p->stacks[s->stack + d]);
            if (stack[n++] == 0) {
                rc = TS_ERR_NOMEM;
                goto done;
            }
        }

        for (l = 0; l < s->nlabels; l++) {
            c.labels[l] = p->labels[s->label + l];
            c.labels[l].key = ts_flame_cut_str(&c, c.labels[l].key);
            c.labels[l].str = ts_flame_cut_str(&c, c.labels[l].str);
            c.labels[l].unit = ts_flame_cut_str(&c, c.labels[l].unit);

            if (c.labels[l].key == TS_PPROF_NONE
                || c.labels[l].str == TS_PPROF_NONE
                || c.labels[l].unit == TS_PPROF_NONE)
            {
                rc = TS_ERR_NOMEM;
                goto done;
            }
        }

        rc = ts_pprof_add_sample(out, stack, n,
                                 &p->values[(size_t) i * p->ntypes],
                                 c.labels, s->nlabels, NULL);
        if (rc != TS_OK) {
            goto done;
        }
    }

    *cut = 1;

done:

    ts_flame_tree_free(&t);
    free(c.smap);
    free(c.fmap);
    free(c.mmap);
    free(c.lmap);
    free(c.lines);
    free(c.labels);
    free(stack);

    return rc;
}
