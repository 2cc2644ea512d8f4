# ngx_tsdb: build, test and run.  See README.md.
#
# The module is built out of tree the way Debian builds libnginx-mod-*:
# a copy of /usr/share/nginx/src is configured once with Debian's
# conf_flags plus --add-dynamic-module=<this tree>; later builds only
# recompile what changed ("make modules" on that tree).

SHELL := /bin/bash
TOP := $(CURDIR)
BUILD := build
NGX_SRC ?= /usr/share/nginx/src
NGX_BIN ?= /usr/sbin/nginx
NGX_BUILD := $(BUILD)/nginx
NGX_CLANG_BUILD := $(BUILD)/nginx-clang
MODULE := $(BUILD)/ngx_http_tsdb_module.so

NGX_CC_OPT := -g -O2 -fstack-protector-strong -Wformat \
    -Werror=format-security -fPIC -Wdate-time -D_FORTIFY_SOURCE=2
NGX_LD_OPT := -Wl,-z,relro -Wl,-z,now -fPIC

STORE_SRCS := $(sort $(wildcard store/*.c))
PROTO_SRCS := $(sort $(wildcard proto/*.pb-c.c))
MOD_SRCS := $(sort $(wildcard ngx_module/*.c))
HDRS := $(wildcard store/*.h proto/*.h ngx_module/*.h)
TEST_SRCS := $(sort $(wildcard store/tests/test_*.c))
FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))
PROTOS := $(sort $(wildcard proto/*.proto))

LIBS := -lprotobuf-c -lsnappy -llmdb -lz -lpcre2-8 -lm -lpthread
STORE_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -fPIC -D_FORTIFY_SOURCE=2 \
    -Wall -Wextra -Werror -Istore -Iproto
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
    -fno-omit-frame-pointer

STORE_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(STORE_SRCS) $(PROTO_SRCS))
ASAN_OBJS := $(patsubst %.c,$(BUILD)/asan/%.o,$(STORE_SRCS) $(PROTO_SRCS))
TESTS := $(patsubst store/tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
ASAN_TESTS := $(patsubst store/tests/%.c,$(BUILD)/asan-tests/%,$(TEST_SRCS))
FUZZERS := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_OBJS := $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(STORE_SRCS) $(PROTO_SRCS))
PROTO_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(PROTO_SRCS))
RWGEN := $(BUILD)/rwgen
QLOAD := $(BUILD)/bench/qload
PROMQL_PARSE := $(BUILD)/promql_parse
PPROF_MERGE := $(BUILD)/pprof-merge
PSTORE_DUMP := $(BUILD)/pstore-dump
RREAD_DUMP := $(BUILD)/rread-dump
FUZZ_SECONDS ?= 60

# Rewritten only when the set of sources changes, so that adding a file
# re-runs nginx's configure and editing one does not.
SRCLIST := $(BUILD)/srclist
$(shell mkdir -p $(BUILD); \
    echo '$(STORE_SRCS) $(PROTO_SRCS) $(MOD_SRCS) $(HDRS)' \
    | cmp -s - $(SRCLIST) \
    || echo '$(STORE_SRCS) $(PROTO_SRCS) $(MOD_SRCS) $(HDRS)' > $(SRCLIST))

.PHONY: all build module deps run test unit asan lint prove proto \
    proto-check clang static fuzz fuzz-build fuzz-regress bench bench-query \
    bench-profile \
    clean

all: build

build: deps module $(RWGEN) $(PROMQL_PARSE) $(PPROF_MERGE) $(PSTORE_DUMP) \
    $(RREAD_DUMP)

# object files are kept between runs, not removed as intermediates
.SECONDARY:

$(RWGEN): bench/rwgen.c $(PROTO_OBJS)
	gcc $(STORE_CFLAGS) $< $(PROTO_OBJS) -o $@ -lprotobuf-c -lsnappy

# the query benchmark's data set, by remote write (bench/query-compare)
$(QLOAD): bench/qload.c $(PROTO_OBJS)
	@mkdir -p $(dir $@)
	gcc $(STORE_CFLAGS) $< $(PROTO_OBJS) -o $@ -lprotobuf-c -lsnappy -lm

# PromQL expressions in, verdicts and canonical forms out (t/040)
$(PROMQL_PARSE): bench/promql_parse.c $(STORE_OBJS)
	gcc $(STORE_CFLAGS) $< $(STORE_OBJS) -o $@ $(LIBS)

# N pprof files in, one merged gzip pprof out (t/050)
$(PPROF_MERGE): bench/pprof_merge.c $(STORE_OBJS)
	gcc $(STORE_CFLAGS) $< $(STORE_OBJS) -o $@ $(LIBS)

# a zone's profile store: series listing, merged pprof out (t/051)
$(PSTORE_DUMP): bench/pstore_dump.c $(STORE_OBJS)
	gcc $(STORE_CFLAGS) $< $(STORE_OBJS) -o $@ $(LIBS)

# remote-read requests out, responses of either type decoded (t/039)
$(RREAD_DUMP): bench/rread_dump.c $(STORE_OBJS)
	gcc $(STORE_CFLAGS) $< $(STORE_OBJS) -o $@ $(LIBS)

deps:
	@.ci/deps

module: $(NGX_BUILD)/objs/Makefile
	@$(MAKE) -s -C $(NGX_BUILD) -f objs/Makefile modules
	@# a new inode: a running nginx keeps its mapping of the old file
	@cmp -s $(NGX_BUILD)/objs/ngx_http_tsdb_module.so $(MODULE) \
	    || { cp $(NGX_BUILD)/objs/ngx_http_tsdb_module.so $(MODULE).tmp \
	         && mv -f $(MODULE).tmp $(MODULE); }

# $(1): build dir, $(2): extra configure arguments
define ngx_configure
	rm -rf $(1)
	cp -a $(NGX_SRC) $(1)
	cd $(1) && . ./conf_flags \
	    && ./configure "$${NGX_CONF_FLAGS[@]}" $(2) \
	        --with-ld-opt="$(NGX_LD_OPT)" \
	        --add-dynamic-module=$(TOP) > configure.log 2>&1 \
	    || { tail -n 20 configure.log; exit 1; }
endef

$(NGX_BUILD)/objs/Makefile: config $(SRCLIST)
	$(call ngx_configure,$(NGX_BUILD),--with-cc-opt="$(NGX_CC_OPT)")

$(NGX_CLANG_BUILD)/objs/Makefile: config $(SRCLIST)
	$(call ngx_configure,$(NGX_CLANG_BUILD),--with-cc=clang \
	    --with-cc-opt="-g -O2 -fPIC")

# The module compiled by clang with nginx's clang warnings and -Werror.
clang: $(NGX_CLANG_BUILD)/objs/Makefile
	@$(MAKE) -s -C $(NGX_CLANG_BUILD) -f objs/Makefile modules

# As root, nginx's workers run as "nobody": var/ must be theirs to use.
run: build
	@mkdir -p var/tmp
	@if [ "$$(id -u)" -eq 0 ]; then chown -R nobody var; fi
	@echo "ngx_tsdb: serving on http://127.0.0.1:9090/"
	@echo "  own metrics:  http://127.0.0.1:9090/metrics"
	@echo "  state under:  $(TOP)/var  (Ctrl-C stops nginx)"
	@$(NGX_BIN) -p $(TOP)/var/ -c $(TOP)/conf-examples/quickstart.conf \
	    -g 'daemon off; load_module $(TOP)/$(MODULE);'

test: build lint proto-check unit asan clang static fuzz-regress prove

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	gcc $(STORE_CFLAGS) -c $< -o $@

# with the warning nginx's clang build adds, so make asan catches it too
$(BUILD)/asan/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	clang $(STORE_CFLAGS) $(SAN_FLAGS) -Wconditional-uninitialized \
	    -c $< -o $@

$(BUILD)/tests/%: store/tests/%.c $(STORE_OBJS)
	@mkdir -p $(dir $@)
	gcc $(STORE_CFLAGS) $< $(STORE_OBJS) -o $@ -lcmocka $(LIBS)

$(BUILD)/asan-tests/%: store/tests/%.c $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	clang $(STORE_CFLAGS) $(SAN_FLAGS) $< $(ASAN_OBJS) -o $@ \
	    -lcmocka $(LIBS)

unit: deps $(TESTS)
	@.ci/run-unit $(TESTS)

asan: deps $(ASAN_TESTS)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1 .ci/run-unit $(ASAN_TESTS)

# the store compiled once with the fuzzer's instrumentation, then linked
# into each target
$(BUILD)/fuzzobj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	clang $(STORE_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined \
	    -fno-sanitize-recover=all -c $< -o $@

$(BUILD)/fuzz/%: fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	clang $(STORE_CFLAGS) -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all $< $(FUZZ_OBJS) -o $@ $(LIBS)

fuzz-build: deps $(FUZZERS)

# Every fuzz target replays its seed corpus (quick, part of make test).
fuzz-regress: fuzz-build
	@.ci/run-fuzz 0 $(FUZZERS)

# Bounded fuzzing: FUZZ_SECONDS per target.
fuzz: fuzz-build
	@.ci/run-fuzz $(FUZZ_SECONDS) $(FUZZERS)

lint:
	@.ci/lint

# nginx built with the module linked in (--add-module), then the own
# metrics tests against that binary without load_module.
static: deps
	@bin=$$(.ci/static-build) \
	    && TSDB_MODULE= TEST_NGINX_BINARY=$$bin \
	       prove -I t/lib t/010-metrics.t t/011-metrics-crash.t

prove: build
	TSDB_MODULE=$(TOP)/$(MODULE) TEST_NGINX_BINARY=$(NGX_BIN) \
	    TSDB_RWGEN=$(TOP)/$(RWGEN) TSDB_PROMQL_PARSE=$(TOP)/$(PROMQL_PARSE) \
	    TSDB_PPROF_MERGE=$(TOP)/$(PPROF_MERGE) \
	    TSDB_PSTORE_DUMP=$(TOP)/$(PSTORE_DUMP) \
	    TSDB_RREAD_DUMP=$(TOP)/$(RREAD_DUMP) \
	    prove -I t/lib -r t/

# ngx_tsdb, VictoriaMetrics and Prometheus on the same load, one run;
# BENCH_ARGS=--quick for a short one.  Not part of make test.
bench: build
	@bench/compare $(BENCH_ARGS)

# PromQL range-query latency, ngx_tsdb against Prometheus on the same
# data, one run; BENCH_ARGS=--quick for a short one.  Not in make test.
bench-query: build $(QLOAD)
	@bench/query-compare $(BENCH_ARGS)

# profile ingest rate, stored bytes per profile, merge latency of 1,000
# stored profiles (bench/profile-bench); no peer.  Not in make test.
PLOAD := $(BUILD)/bench/pload
PSTORE_MERGE := $(BUILD)/bench/pstore-merge

$(PLOAD): bench/pload.c $(STORE_OBJS)
	@mkdir -p $(dir $@)
	gcc $(STORE_CFLAGS) $< $(STORE_OBJS) -o $@ $(LIBS)

$(PSTORE_MERGE): bench/pstore_merge.c $(STORE_OBJS)
	@mkdir -p $(dir $@)
	gcc $(STORE_CFLAGS) $< $(STORE_OBJS) -o $@ $(LIBS)

bench-profile: build $(PLOAD) $(PSTORE_MERGE)
	@bench/profile-bench $(BENCH_ARGS)

proto:
	@.ci/proto gen

proto-check: deps
	@.ci/proto check

clean:
	rm -rf $(BUILD)
