/*
 * Copyright (C) ngx_tsdb authors
 *
 * libFuzzer target: remote-write 2.0.  The harness is fuzz_rw1.c's,
 * decoding io.prometheus.write.v2.Request (symbols table, refs,
 * start/created timestamps, per-series metadata).
 *
 * Seeds (fuzz/corpus/fuzz_rw2/): v2 requests built with protobuf-c's
 * encoder and snappy_compress(): series Prometheus 2.42 sent
 * (t/data/rw/) re-encoded as v2, and series with histograms (integer,
 * float, custom buckets), exemplars, metadata and start timestamps.
 */

#define FZ_RW_VERSION  TS_RW_V2

#include "fuzz_rw1.c"
