# Makefile - builds the leak lab (server, tracker, load sampler); `make test` / `make demo` also install what they need.
#
# `make` only builds; `make deps` installs the build packages (Debian). Programs
# a user runs go to bin/; everything else (objects, unit tests, tools, fuzz
# targets) to build/. Objects are compiled once per build variant into
# build/obj/VARIANT/ (with -MMD -MP header dependencies) and shared by every
# program of that variant. To add a program: a source list and one link rule
# in its section; to add a tracker or server file: nothing (wildcards).

.DEFAULT_GOAL := all
CC       ?= cc
CFLAGS   ?=
# Frame pointers everywhere we compile: the tracker walks them (tracker/stackwalk.c).
BASEFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -g -pthread \
            -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer \
            -ffile-prefix-map=$(CURDIR)=.
TRACKER_LIBS = -ldw -lelf -pthread
LIBS         = -lmicrohttpd $(TRACKER_LIBS)

# ---------------------------------------------------------------- sources
# The tracker's core; the three files that own malloc (or not) are chosen per program.
TRACKER_OWN  = tracker/hooks.c tracker/nohooks.c tracker/preload.c
TRACKER_SRC  = $(filter-out $(TRACKER_OWN),$(wildcard tracker/*.c))
SERVER_SRC   = $(wildcard server/*.c)
SERVER_LIB_SRC = $(filter-out server/main.c,$(SERVER_SRC))
# server/dashboard.c embeds these with .incbin, which -MMD does not see.
DASHBOARD_ASSETS = $(wildcard server/dashboard/*.html server/dashboard/*.js server/dashboard/*.css)

# The server with the tracker's malloc (tracker/hooks.c) ...
HOOKED_SRC   = $(SERVER_SRC) $(TRACKER_SRC) tracker/hooks.c
# ... and for builds where another tool owns malloc (ASan, LSan, heaptrack,
# valgrind): tracker/nohooks.c instead, the tracker stays off (/capture 503).
NOHOOKS_SRC  = $(SERVER_SRC) $(TRACKER_SRC) tracker/nohooks.c

# ---------------------------------------------------------------- build variants
# Each variant: build/obj/NAME/<path>.o, compiled by CC_NAME (default $(CC)) with FLAGS_NAME.
VARIANTS   = O2 O0 pic asan fuzz
FLAGS_O2   = $(BASEFLAGS) -O2
FLAGS_O0   = $(BASEFLAGS) -O0
FLAGS_pic  = $(BASEFLAGS) -O2 -fPIC -ftls-model=initial-exec
FLAGS_asan = $(BASEFLAGS) -O1 -fsanitize=address,undefined
# libFuzzer + ASan + UBSan with clang. -gdwarf-aranges: clang omits
# .debug_aranges by default, and without it libdw names no file:line.
CC_fuzz    = $(FUZZ_CC)
FUZZ_CC   ?= clang
FUZZ_SAN   = -fsanitize=fuzzer,address,undefined
FLAGS_fuzz = -std=c11 -D_GNU_SOURCE -Wall -Wextra -g -gdwarf-aranges -O1 \
             -fno-omit-frame-pointer $(FUZZ_SAN) -fno-sanitize-recover=undefined

# LINK: the program $@ from its objects (append the libraries).
LINK = $(CC) $(LDFLAGS) -pthread -o $@ $^

# objs VARIANT, SOURCES: the object files of SOURCES in VARIANT.
objs = $(patsubst %.c,build/obj/$(1)/%.o,$(2))

# COMPILE: the object $@ of $< in the variant its path names (XFLAGS: per-object extras).
variant = $(word 3,$(subst /, ,$@))
define COMPILE
@mkdir -p $(@D)
$(or $(CC_$(variant)),$(CC)) $(FLAGS_$(variant)) $(CFLAGS) $(XFLAGS) -MMD -MP -c -o $@ $<
endef
# Every object waits (order-only) for the check that the build packages are
# there: a missing one stops the build with one line naming it and `make deps`.
define variant_rule
build/obj/$(1)/%.o: %.c | build/deps-ok
	$$(COMPILE)
build/obj/$(1)/server/dashboard.o: $$(DASHBOARD_ASSETS)
endef
$(foreach v,$(VARIANTS),$(eval $(call variant_rule,$(v))))
-include $(wildcard build/obj/*/*/*.d build/obj/*/*/*/*.d)

build/deps-ok: scripts/deps.sh
	@bash scripts/deps.sh --check build
	@mkdir -p $(@D) && touch $@

# ---------------------------------------------------------------- the lab (make)
BINS = bin/server bin/server-O0 bin/libtracker.so bin/rss_sampler

.PHONY: all deps demo test bench compare fuzz fuzz-build unit clean
all: $(BINS)

deps:
	@bash scripts/deps.sh build

bin build/unit build/tools build/fuzz:
	@mkdir -p $@

bin/server: $(call objs,O2,$(HOOKED_SRC)) | bin
	$(LINK) $(LIBS)

# The same server at -O0: the tracker must name the same lines at both levels.
bin/server-O0: $(call objs,O0,$(HOOKED_SRC)) | bin
	$(LINK) $(LIBS)

# The tracker on its own, for LD_PRELOAD on any program. It exports only the
# malloc family and _exit/_Exit (tracker/libtracker.map; everything else is
# hidden), so it cannot clash with a program's own symbols.
build/obj/pic/%.o: XFLAGS = -fvisibility=hidden
bin/libtracker.so: $(call objs,pic,$(TRACKER_SRC) tracker/hooks.c tracker/preload.c) tracker/libtracker.map | bin
	$(CC) $(LDFLAGS) -pthread -shared -Wl,--version-script=tracker/libtracker.map -o $@ $(filter %.o,$^) $(TRACKER_LIBS)

bin/rss_sampler: $(call objs,O2,loadgen/rss_sampler.c) | bin
	$(LINK)

# ---------------------------------------------------------------- servers under other tools (make compare)
# scripts/compare.sh runs the same leaky load under the tools a C engineer would
# reach for and writes results/compare.md: bin/server-plain for heaptrack,
# valgrind and the req/s baseline, bin/server-lsan for LeakSanitizer (which
# only links differently: -fsanitize=leak changes no object), bin/server-asan.
COMPARE_BINS = bin/server bin/server-plain bin/server-lsan bin/server-asan

bin/server-plain: $(call objs,O2,$(NOHOOKS_SRC)) | bin
	$(LINK) $(LIBS)

bin/server-lsan: $(call objs,O2,$(NOHOOKS_SRC)) | bin
	$(LINK) -fsanitize=leak $(LIBS)

bin/server-asan: $(call objs,asan,$(NOHOOKS_SRC)) | bin
	$(LINK) -fsanitize=address,undefined $(LIBS)

# ---------------------------------------------------------------- unit tests (tests/run.sh runs build/unit/*)
# The tracker's unit test at -O0 and -O2, linked with the hooks like the server:
# the same lines must be named at both. -mno-red-zone: the test calls malloc
# from inline asm (see the test).
UNIT_BINS = build/unit/test_tracker_O0 build/unit/test_tracker_O2
build/obj/%/tests/unit/test_tracker.o: XFLAGS = -Itracker -mno-red-zone
unit: $(UNIT_BINS)

UNIT_SRC  = tests/unit/test_tracker.c $(TRACKER_SRC) tracker/hooks.c
build/unit/test_tracker_O0: $(call objs,O0,$(UNIT_SRC)) | build/unit
build/unit/test_tracker_O2: $(call objs,O2,$(UNIT_SRC)) | build/unit
build/unit/%:
	$(LINK) $(TRACKER_LIBS)

# The unwinder's safety test (tests/unit/test_unwind.c): the test's own code
# with frame pointers (_fp) and without (_nofp), the tracker always with; and
# a library it dlopens, built without, in build/unit/lib/ (not run as a test).
unit: build/unit/test_unwind_fp build/unit/test_unwind_nofp build/unit/lib/unwind_dl.so
build/obj/O2/tests/unit/test_unwind.o: XFLAGS = -Itracker
build/obj/O2/tests/unit/test_unwind_nofp.o: XFLAGS = -Itracker -fomit-frame-pointer -momit-leaf-frame-pointer
build/obj/O2/tests/unit/test_unwind_nofp.o: tests/unit/test_unwind.c | build/deps-ok
	$(COMPILE)
build/unit/test_unwind_fp: $(call objs,O2,tests/unit/test_unwind.c $(TRACKER_SRC) tracker/hooks.c) | build/unit
build/unit/test_unwind_nofp: $(call objs,O2,tests/unit/test_unwind_nofp.c $(TRACKER_SRC) tracker/hooks.c) | build/unit
build/unit/lib/unwind_dl.so: tests/unit/unwind_dl.c | build/deps-ok
	@mkdir -p $(@D)
	$(CC) $(BASEFLAGS) -O2 -fomit-frame-pointer -momit-leaf-frame-pointer -fPIC -shared -o $@ $<

# ---------------------------------------------------------------- test tools (built by the tests that use them)
# Client-side helpers (plain C, no sanitizer).
build/tools/%: build/obj/O2/tests/tools/%.o | build/tools
	$(LINK)

# The unit test with fewer rounds and no pvalloc, for valgrind's helgrind and
# drd (ThreadSanitizer cannot run it: TSan owns malloc, and a program that
# defines malloc itself crashes TSan at start-up).
build/obj/O2/tests/unit/test_tracker_quick.o: XFLAGS = -Itracker -mno-red-zone -DTEST_QUICK
build/obj/O2/tests/unit/test_tracker_quick.o: tests/unit/test_tracker.c | build/deps-ok
	$(COMPILE)
build/tools/test_tracker_quick: $(call objs,O2,tests/unit/test_tracker_quick.c $(TRACKER_SRC) tracker/hooks.c) | build/tools
	$(LINK) $(TRACKER_LIBS)

# ---------------------------------------------------------------- fuzz targets (make fuzz)
# libFuzzer targets linked with tracker/nohooks.c (ASan owns malloc), run by
# tests/test_fuzz.sh; `make fuzz` runs each for FUZZ_SECONDS (default 30) on its corpus.
FUZZ_BINS    = build/fuzz/fuzz_query build/fuzz/fuzz_report build/fuzz/fuzz_http
FUZZ_TRACKER = $(TRACKER_SRC) tracker/nohooks.c
fuzz_query_SRC  = tests/fuzz/fuzz_query.c server/capture.c server/decimal.c server/http_reply.c $(FUZZ_TRACKER)
fuzz_report_SRC = tests/fuzz/fuzz_report.c $(FUZZ_TRACKER)
fuzz_http_SRC   = tests/fuzz/fuzz_http.c $(SERVER_LIB_SRC) $(FUZZ_TRACKER)

fuzz-build: $(FUZZ_BINS)
fuzz: fuzz-build
	@bash tests/test_fuzz.sh

$(foreach f,$(FUZZ_BINS),$(eval $(f): $(call objs,fuzz,$($(notdir $(f))_SRC)) | build/fuzz))
build/fuzz/%:
	$(FUZZ_CC) $(LDFLAGS) $(FUZZ_SAN) -o $@ $^ $(LIBS)

# ---------------------------------------------------------------- running it
# Installing comes first, then a recursive make builds: so `make -j demo` never
# compiles before the packages are there.
demo:
	@bash scripts/deps.sh build demo
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh

test:
	@bash scripts/deps.sh build test
	@$(MAKE) --no-print-directory all unit
	@bash tests/run.sh

bench:
	@bash scripts/deps.sh build demo
	@$(MAKE) --no-print-directory all
	@bash tests/bench.sh

compare:
	@bash scripts/deps.sh build compare
	@$(MAKE) --no-print-directory $(COMPARE_BINS) bin/rss_sampler
	@bash scripts/compare.sh

clean:
	rm -rf bin build
