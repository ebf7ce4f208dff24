# Makefile - builds the leak lab (server, tracker, load sampler) and runs demo and tests.

CC       ?= cc
OPT      ?= -O2
# Frame pointers everywhere we compile: the tracker walks them (tracker/stackwalk notes).
BASEFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -g -pthread \
            -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer \
            -ffile-prefix-map=$(CURDIR)=.
CFLAGS   ?=
ALLFLAGS  = $(BASEFLAGS) $(OPT) $(CFLAGS)
TRACKER_LIBS = -ldw -lelf -pthread
LIBS      = -lmicrohttpd $(TRACKER_LIBS)

TRACKER_H   = tracker/tracker.h
TRACKER_SRC = tracker/tracker.c tracker/stackwalk.c tracker/symbolize.c tracker/report.c tracker/baseline.c
HOOKS_SRC   = tracker/hooks.c
# Builds where another tool owns malloc (ASan, LSan, heaptrack, valgrind):
# the server with tracker/nohooks.c instead of the hooks (the tracker stays off).
NOHOOKS_SRC = $(SERVER_SRC) $(TRACKER_SRC) tracker/nohooks.c
SERVER_H    = $(wildcard server/*.h)
SERVER_SRC  = $(wildcard server/*.c)

BINS = bin/server bin/server-O0 bin/libtracker.so bin/rss_sampler

.PHONY: all deps demo test bench clean tests
all: deps $(BINS)

deps:
	@bash scripts/deps.sh build

# bin/server-O0 is the same server at -O0: the tracker must name the same
# lines at both levels (override: `make OPT=...` cannot change it).
bin/server-O0: override OPT = -O0
bin/server bin/server-O0: $(SERVER_SRC) $(TRACKER_SRC) $(HOOKS_SRC) $(SERVER_H) $(TRACKER_H) | bin
	$(CC) $(ALLFLAGS) -o $@ $(SERVER_SRC) $(TRACKER_SRC) $(HOOKS_SRC) $(LIBS)

# ASan+UBSan build: the sanitizer owns malloc, so the hooks are left out.
bin/server-asan: $(NOHOOKS_SRC) $(SERVER_H) $(TRACKER_H) | bin
	$(CC) $(BASEFLAGS) -O1 -fsanitize=address,undefined $(CFLAGS) -o $@ $(NOHOOKS_SRC) $(LIBS)

# The tracker on its own, for LD_PRELOAD on any program.
bin/libtracker.so: $(TRACKER_SRC) $(HOOKS_SRC) tracker/preload.c $(TRACKER_H) | bin
	$(CC) $(ALLFLAGS) -fPIC -shared -ftls-model=initial-exec -o $@ $(TRACKER_SRC) $(HOOKS_SRC) tracker/preload.c $(TRACKER_LIBS)

bin/rss_sampler: loadgen/rss_sampler.c | bin
	$(CC) $(ALLFLAGS) -o $@ loadgen/rss_sampler.c

bin:
	@mkdir -p bin

# Tracker unit tests, at -O0 and -O2: the same lines must be named at both.
# -mno-red-zone: one test calls malloc from inline asm (see the test).
UNIT_FLAGS = $(BASEFLAGS) -Itracker -mno-red-zone $(CFLAGS)
tests: tests/bin/test_tracker_O0 tests/bin/test_tracker_O2

tests/bin/test_tracker_O%: tests/unit/test_tracker.c $(TRACKER_SRC) $(HOOKS_SRC) $(TRACKER_H)
	@mkdir -p tests/bin
	$(CC) $(UNIT_FLAGS) -O$* -o $@ tests/unit/test_tracker.c $(TRACKER_SRC) $(HOOKS_SRC) $(TRACKER_LIBS)

demo: all
	@bash scripts/deps.sh demo
	@bash scripts/demo.sh

test: all tests
	@bash scripts/deps.sh test
	@bash tests/run.sh

bench: all
	@bash scripts/deps.sh demo
	@bash tests/bench.sh

clean:
	rm -rf bin build tests/bin

# ---- make compare (issue 5): the same leaky load under the tools a C engineer
# would reach for; scripts/compare.sh writes results/compare.md. Those tools
# own malloc themselves, so their builds leave tracker/hooks.c out (the tracker
# stays off, /capture answers 503): bin/server-plain for heaptrack, valgrind
# and the req/s baseline, bin/server-lsan for LeakSanitizer.
COMPARE_BINS = bin/server bin/server-plain bin/server-lsan bin/server-asan

bin/server-plain: $(NOHOOKS_SRC) $(SERVER_H) $(TRACKER_H) | bin
	$(CC) $(ALLFLAGS) -o $@ $(NOHOOKS_SRC) $(LIBS)

bin/server-lsan: $(NOHOOKS_SRC) $(SERVER_H) $(TRACKER_H) | bin
	$(CC) $(ALLFLAGS) -fsanitize=leak -o $@ $(NOHOOKS_SRC) $(LIBS)

.PHONY: compare
compare: all $(COMPARE_BINS)
	@bash scripts/deps.sh compare
	@bash scripts/compare.sh


# ---- live dashboard (issue 7): server/dashboard.c embeds the files of
# server/dashboard/ with the assembler's .incbin, so every binary built from
# the server sources depends on them too (an edited page rebuilds the servers).
DASHBOARD_ASSETS = $(wildcard server/dashboard/*.html server/dashboard/*.js server/dashboard/*.css)
bin/server bin/server-O0 bin/server-asan bin/server-plain bin/server-lsan: $(DASHBOARD_ASSETS)

# ---- hardening (issue 6): fuzz targets and test tools; run by tests/test_fuzz.sh,
# tests/test_bad_input.sh and tests/test_sanitizers.sh (which build them with
# `make -s ...` after `scripts/deps.sh test` has installed clang). The fuzz
# targets are libFuzzer + ASan + UBSan builds with clang, linked with
# tracker/nohooks.c (ASan owns malloc). -gdwarf-aranges: clang omits
# .debug_aranges by default, and without it libdw names no file:line.
# `make fuzz` runs each target for FUZZ_SECONDS (default 30) on its corpus.
FUZZ_CC     ?= clang
FUZZ_FLAGS   = -std=c11 -D_GNU_SOURCE -Wall -Wextra -g -gdwarf-aranges -O1 \
               -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined
FUZZ_TRACKER = $(TRACKER_SRC) tracker/nohooks.c
FUZZ_BINS    = build/fuzz/fuzz_query build/fuzz/fuzz_report build/fuzz/fuzz_http
SERVER_NOMAIN_SRC = $(filter-out server/main.c,$(SERVER_SRC))

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)
fuzz: fuzz-build
	@bash tests/test_fuzz.sh

FUZZ_QUERY_SRC = server/capture.c server/decimal.c server/http_reply.c
build/fuzz/fuzz_query: tests/fuzz/fuzz_query.c $(FUZZ_QUERY_SRC) $(SERVER_H) $(FUZZ_TRACKER) $(TRACKER_H)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_query.c $(FUZZ_QUERY_SRC) $(FUZZ_TRACKER) $(LIBS)

build/fuzz/fuzz_report: tests/fuzz/fuzz_report.c $(FUZZ_TRACKER) $(TRACKER_H)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_report.c $(FUZZ_TRACKER) $(TRACKER_LIBS)

build/fuzz/fuzz_http: tests/fuzz/fuzz_http.c $(SERVER_NOMAIN_SRC) $(SERVER_H) $(FUZZ_TRACKER) $(TRACKER_H) $(DASHBOARD_ASSETS)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_http.c $(SERVER_NOMAIN_SRC) $(FUZZ_TRACKER) $(LIBS)

# Client-side helpers of the tests (plain C, no sanitizer).
build/tools/%: tests/tools/%.c
	@mkdir -p build/tools
	$(CC) $(ALLFLAGS) -o $@ $<

# The tracker's unit test with fewer rounds and no pvalloc, for valgrind's
# helgrind and drd (ThreadSanitizer cannot run it: TSan owns malloc, and a
# program that defines malloc itself crashes TSan at start-up).
build/tools/test_tracker_quick: tests/unit/test_tracker.c $(TRACKER_SRC) $(HOOKS_SRC) $(TRACKER_H)
	@mkdir -p build/tools
	$(CC) $(UNIT_FLAGS) -O2 -DTEST_QUICK -o $@ tests/unit/test_tracker.c $(TRACKER_SRC) $(HOOKS_SRC) $(TRACKER_LIBS)
