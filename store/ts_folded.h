/*
 * Copyright (C) ngx_tsdb authors
 *
 * Pyroscope's text ingest formats, parsed into a normalized ts_pprof_t
 * (function names only: no mappings, addresses, files or lines):
 *
 *   folded  "frame1;frame2;...;frameN COUNT" per line, root first (Brendan
 *           Gregg's collapsed stacks).  As Pyroscope's ParseGroups
 *           (pkg/og/convert/parser.go): the count follows the LAST space;
 *           a line without a space is skipped; a count that is not a
 *           decimal integer fails the whole body.
 *   lines   one stack per line, each line one sample; empty lines are
 *           skipped (ParseIndividualLines).
 *
 * Lines end at '\n'; a '\r' before it is dropped (bufio.ScanLines).
 * Frames are split at ';' and kept as they are, empty ones included.
 * Equal stacks are summed (counts that sum to zero leave a zero sample
 * and p->zero set, which the encoder compacts away); a stack deeper
 * than lim.max_depth keeps its root side (as Pyroscope does for pprof);
 * lim.max_samples bounds the distinct stacks, lim.max_decompressed the
 * body, TS_FOLDED_MAX_LINE one line (Go's bufio.Scanner stops at 64 KiB;
 * Pyroscope then silently drops the rest, here it is an error).
 */

#ifndef TS_FOLDED_H
#define TS_FOLDED_H


#include <stddef.h>
#include <stdint.h>

#include "ts_pprof.h"


#define TS_FOLDED_MAX_LINE     65536


typedef enum {
    TS_FOLDED = 0,
    TS_FOLDED_LINES
} ts_folded_fmt_t;


/*
 * What the samples count.  type/unit name the one sample type (e.g.
 * "samples"/"count", or "cpu"/"nanoseconds" with scale = the period in
 * ns as Pyroscope's ingest adapter does for cpu); period_type/unit may
 * be NULL (none).  Every count is multiplied by scale (0 means 1).
 */
typedef struct {
    const char                *type;
    const char                *unit;
    const char                *period_type;
    const char                *period_unit;
    int64_t                    period;
    int64_t                    scale;
    int64_t                    time_nanos;
    int64_t                    duration_nanos;
} ts_folded_opts_t;


/*
 * Parses buf[0 .. len) into p, freshly initialized (its limits apply).
 * TS_OK; TS_ERR_INVALID with TS_PPROF_BAD_TEXT and the line number for
 * a bad count or an overlong line; TS_ERR_LIMIT (too many stacks, body
 * too large, max_memory); TS_ERR_NOMEM.
 */
int ts_folded_parse(ts_pprof_t *p, ts_folded_fmt_t fmt, const char *buf,
    size_t len, const ts_folded_opts_t *opts, ts_pprof_why_t *why);


#endif /* TS_FOLDED_H */
