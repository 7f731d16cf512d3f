# SPDX-License-Identifier: BSD-3-Clause
# uraid: one non-recursive GNU Makefile.
#
#   make            build (installs missing Debian packages first)
#   make run        build and start the daemon: raid6 over six files in ./var, on NBD
#   make check      build and run every test; SAN=1 (ASan+UBSan) or TSAN=1 variants
#   make bench      the benchmark rows of docs/bench.md
#   make torture    the torture campaign over every level and policy (MINUTES=5, JOBS, CASES)
#   make lint       fail on formatting differences (clang-format 14); make format fixes
#   make spdk       the SPDK bdev module, build/spdk/libspdk_bdev_uraid.so (SPDK_DIR=/opt/spdk)

ifeq ($(origin CC),default)
CC	:= gcc
endif
BUILD	:= build
SANFLAGS :=
TIME_SCALE := 1
ifeq ($(SAN),1)
BUILD	:= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
TIME_SCALE := 4
endif
ifeq ($(TSAN),1)
BUILD	:= build-tsan
SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
TIME_SCALE := 8
endif
# make fuzz: the library built by clang with coverage for libFuzzer.
ifeq ($(FUZZ),1)
BUILD	:= build-fuzz
CC	:= clang
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
endif

PKGS	:= libisal liburing jansson libnbd gnutls
# Recursively expanded: evaluated when a recipe runs, after install-deps has run.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))

WARN	:= -Wall -Wextra -Wshadow -Wvla -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
	   -Werror
CFLAGS	?= -O2 -g
ALL_CFLAGS = -std=gnu17 $(CFLAGS) $(WARN) $(SANFLAGS) -D_GNU_SOURCE -Iinclude -Isrc \
	     $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)
LIBS	= $(PKG_LIBS) -lpthread -lm

LIB_SRCS  := $(wildcard src/common/*.c src/runtime/*.c src/bdev/*.c src/core/*.c src/server/*.c)
CLI_SRCS  := $(wildcard src/cli/*.c)
TEST_SRCS := $(wildcard tests/unit/test_*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_TARGETS := $(filter-out fuzz_main,$(FUZZ_SRCS:tests/fuzz/%.c=%))

LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=$(BUILD)/%.o)
TEST_BINS := $(TEST_SRCS:%.c=$(BUILD)/%)
# Corpus replays: each fuzz target linked with fuzz_main.c (no libFuzzer needed).
REPLAY_BINS := $(FUZZ_TARGETS:%=$(BUILD)/tests/fuzz/%_replay)
LIBURAID  := $(BUILD)/liburaid.a
URAID	  := $(BUILD)/uraid

.PHONY: all deps run check bench torture lint format clean fuzz spdk
all: $(URAID)

DEPS_STAMP := $(BUILD)/.deps
$(DEPS_STAMP): scripts/install-deps.sh
	@mkdir -p $(BUILD)
	@bash scripts/install-deps.sh
	@touch $@
deps:
	@bash scripts/install-deps.sh

# V=1 shows the full commands.
Q := $(if $(filter 1,$(V)),,@)

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBURAID): $(LIB_OBJS)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)ar rcs $@ $^

$(URAID): $(CLI_OBJS) $(LIBURAID)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(CLI_OBJS) $(LIBURAID) $(LIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c tests/harness.h $(LIBURAID) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(LIBURAID) $(ALL_LDFLAGS) $(LIBS)

$(BUILD)/tests/fuzz/%_replay: tests/fuzz/%.c tests/fuzz/fuzz_main.c $(LIBURAID) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< tests/fuzz/fuzz_main.c $(LIBURAID) $(ALL_LDFLAGS) $(LIBS)

# make fuzz [FUZZ_SECONDS=60]: run every fuzz target under libFuzzer on a scratch copy of its
# corpus (clang and its fuzzer runtime come from Debian: clang, libclang-rt-14-dev).
FUZZ_SECONDS ?= 60
fuzz:
	@bash scripts/install-deps.sh --fuzz
	@$(MAKE) --no-print-directory FUZZ=1 build-fuzz/liburaid.a
	@for t in $(FUZZ_TARGETS); do \
		c=$${t#fuzz_}; mkdir -p build-fuzz/corpus/$$c; \
		cp tests/fuzz/corpus/$$c/* build-fuzz/corpus/$$c/; \
		clang -std=gnu17 -g -O1 -D_GNU_SOURCE -Iinclude -Isrc \
			-fsanitize=fuzzer,address,undefined -o build-fuzz/$$t tests/fuzz/$$t.c \
			build-fuzz/liburaid.a $(PKG_LIBS) -lpthread -lm || exit 1; \
		echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
		build-fuzz/$$t -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/$$c || exit 1; \
	done

# The daemon on its default array (scripts/run.sh says what it serves and how to use it).
run: deps $(URAID)
	@URAID_RUN_FORCE=$(FORCE) bash scripts/run.sh $(URAID)

# With an SPDK build tree at SPDK_DIR the module is built and tests/spdk run; else they count
# as skipped.
# The plain build's check also runs the unit tests built with ASan and UBSan (build-san): they
# take seconds, and catch what the plain build lets pass (a misaligned access, a read past a
# buffer); and the functional tests with the daemon built with ThreadSanitizer (build-tsan),
# a few minutes, for races between the control thread and the reactors. SAN=1 and TSAN=1 run
# everything so built.
check: deps $(URAID) $(TEST_BINS) $(REPLAY_BINS)
	@if [ -z "$(SANFLAGS)" ] && [ -f $(SPDK_DIR)/include/spdk/bdev_module.h ]; then \
		$(MAKE) --no-print-directory $(SPDK_SO) || exit 1; fi
	@if [ -z "$(SANFLAGS)" ]; then \
		$(MAKE) --no-print-directory SAN=1 $(TEST_SRCS:%.c=build-san/%) || exit 1; \
		$(MAKE) --no-print-directory TSAN=1 build-tsan/uraid || exit 1; fi
	@SPDK_DIR=$(SPDK_DIR) URAID_SAN_UNIT=$(if $(SANFLAGS),,build-san) \
		URAID_TSAN_BIN=$(if $(SANFLAGS),,build-tsan/uraid) \
		URAID_TIME_SCALE=$(TIME_SCALE) bash scripts/run-tests.sh $(BUILD)

bench: deps $(URAID)
	@if [ -f $(SPDK_DIR)/include/spdk/bdev_module.h ]; then \
		$(MAKE) --no-print-directory $(SPDK_SO) || exit 1; fi
	@SPDK_DIR=$(SPDK_DIR) bash scripts/bench.sh $(URAID)

# The SPDK bdev module: core, the daemon's array RPC handlers and the port (src/spdk), built
# position-independent against an SPDK build tree (v24.09; ../docs/spdk.md).
SPDK_DIR ?= /opt/spdk
SPDK_BUILD := $(BUILD)/spdk
SPDK_SRCS := $(wildcard src/common/*.c src/core/*.c src/spdk/*.c) src/server/rpc_req.c \
	     src/server/raid_rpc.c
SPDK_OBJS := $(SPDK_SRCS:%.c=$(SPDK_BUILD)/%.o)
SPDK_SO   := $(SPDK_BUILD)/libspdk_bdev_uraid.so
SPDK_LIBS  = -L$(SPDK_DIR)/build/lib -Wl,--disable-new-dtags,-rpath=$(SPDK_DIR)/build/lib -lspdk_bdev \
	     -lspdk_thread -lspdk_json -lspdk_jsonrpc -lspdk_rpc -lspdk_log -lspdk_util \
	     -lspdk_env_dpdk $(shell pkg-config --libs libisal jansson) -lpthread -lm

$(SPDK_BUILD)/%.o: %.c | $(DEPS_STAMP)
	@test -f $(SPDK_DIR)/include/spdk/bdev_module.h || { \
		echo "make spdk: no SPDK build tree at SPDK_DIR=$(SPDK_DIR) (see docs/spdk.md)"; exit 1; }
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -fvisibility=hidden -isystem $(SPDK_DIR)/include -c $< -o $@

$(SPDK_SO): $(SPDK_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,--no-undefined -o $@ $^ $(ALL_LDFLAGS) $(SPDK_LIBS)

spdk: deps $(SPDK_SO)

# Power cuts over the whole matrix, fresh seeds, MINUTES split evenly (scripts/torture-campaign.sh).
MINUTES ?= 5
torture: deps $(URAID)
	@MINUTES=$(MINUTES) bash scripts/torture-campaign.sh $(URAID)

SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find src include tests -name '*.[ch]')
lint:
	@clang-format --dry-run -Werror $(SOURCES) && echo "lint: clean"
format:
	clang-format -i $(SOURCES)

clean:
	rm -rf build build-san build-tsan build-fuzz

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(SPDK_OBJS:.o=.d) $(TEST_BINS:=.d) $(REPLAY_BINS:=.d)
