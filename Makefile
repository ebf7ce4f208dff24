# Makefile - builds the leak lab (server, tracker, load sampler) and runs demo and tests.

CC       ?= cc
OPT      ?= -O2
# Frame pointers everywhere we compile: the tracker walks them (tracker/stackwalk notes).
BASEFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -g -pthread \
            -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer \
            -ffile-prefix-map=$(CURDIR)=.
CFLAGS   ?=
ALLFLAGS  = $(BASEFLAGS) $(OPT) $(CFLAGS)
LIBS      = -lmicrohttpd -ldw -lelf -pthread

TRACKER_H   = tracker/tracker.h
TRACKER_SRC = tracker/tracker.c tracker/stackwalk.c tracker/symbolize.c tracker/report.c
HOOKS_SRC   = tracker/hooks.c
SERVER_H    = $(wildcard server/*.h)
SERVER_SRC  = $(wildcard server/*.c)

BINS = bin/server bin/server-O0 bin/libtracker.so bin/rss_sampler

.PHONY: all deps demo test bench clean check-all tests
all: deps $(BINS)

deps:
	@bash scripts/deps.sh build

bin/server: $(SERVER_SRC) $(TRACKER_SRC) $(HOOKS_SRC) $(SERVER_H) $(TRACKER_H) | bin
	$(CC) $(ALLFLAGS) -o $@ $(SERVER_SRC) $(TRACKER_SRC) $(HOOKS_SRC) $(LIBS)

# Same server at -O0: the tracker must name the same lines at both levels.
bin/server-O0: $(SERVER_SRC) $(TRACKER_SRC) $(HOOKS_SRC) $(SERVER_H) $(TRACKER_H) | bin
	$(CC) $(BASEFLAGS) -O0 $(CFLAGS) -o $@ $(SERVER_SRC) $(TRACKER_SRC) $(HOOKS_SRC) $(LIBS)

# ASan+UBSan build: the sanitizer owns malloc, so the hooks are left out.
bin/server-asan: $(SERVER_SRC) $(TRACKER_SRC) $(SERVER_H) $(TRACKER_H) | bin
	$(CC) $(BASEFLAGS) -O1 -fsanitize=address,undefined $(CFLAGS) -o $@ $(SERVER_SRC) $(TRACKER_SRC) tracker/nohooks.c $(LIBS)

# The tracker on its own, for LD_PRELOAD on any program.
bin/libtracker.so: $(TRACKER_SRC) $(HOOKS_SRC) tracker/preload.c $(TRACKER_H) | bin
	$(CC) $(ALLFLAGS) -fPIC -shared -ftls-model=initial-exec -o $@ $(TRACKER_SRC) $(HOOKS_SRC) tracker/preload.c -ldw -lelf -pthread

bin/rss_sampler: loadgen/rss_sampler.c | bin
	$(CC) $(ALLFLAGS) -o $@ loadgen/rss_sampler.c

bin:
	@mkdir -p bin

# Tracker unit tests, at -O0 and -O2: the same lines must be named at both.
# -mno-red-zone: one test calls malloc from inline asm (see the test).
UNIT_FLAGS = $(BASEFLAGS) -Itracker -mno-red-zone $(CFLAGS)
tests: tests/bin/test_tracker_O0 tests/bin/test_tracker_O2

tests/bin/test_tracker_O0: tests/unit/test_tracker.c $(TRACKER_SRC) $(HOOKS_SRC) $(TRACKER_H)
	@mkdir -p tests/bin
	$(CC) $(UNIT_FLAGS) -O0 -o $@ tests/unit/test_tracker.c $(TRACKER_SRC) $(HOOKS_SRC) -ldw -lelf -pthread

tests/bin/test_tracker_O2: tests/unit/test_tracker.c $(TRACKER_SRC) $(HOOKS_SRC) $(TRACKER_H)
	@mkdir -p tests/bin
	$(CC) $(UNIT_FLAGS) -O2 -o $@ tests/unit/test_tracker.c $(TRACKER_SRC) $(HOOKS_SRC) -ldw -lelf -pthread

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
