# slimbench — build, test and run.
#
# Knobs (make VAR=value):
#   BUILD     generic | avx2 | avx512 | native | asan      (default: native)
#             generic = -march=x86-64 (SSE2 baseline), avx2 = -march=x86-64-v3 (AVX2+FMA),
#             avx512 = -march=x86-64-v4, native = -march=native, asan = native + Address- and
#             UndefinedBehaviorSanitizer, -O1 -g, debug asserts on.
#             Objects go to build/$(BUILD)/obj, commands to build/$(BUILD)/bin; the default build
#             also links them into bin/.
#   CC        C compiler (default cc)
#   PREFIX    install prefix for `make install` (default /usr/local)
#   WERROR=1  turn warnings into errors (CI sets it)
#   TEST_BUILDS  variants `make test` runs the suite in (default: native generic)
#   EXTRA_CFLAGS, EXTRA_LDFLAGS  appended to the compile/link lines
#
# Targets:
#   all (default)  every command in launcher/ for BUILD
#   deps           install the Debian packages the project needs (idempotent)
#   run            deps + build + the card's one-liner on synthetic data (writes a results row)
#   test           deps + build + every test, for each of TEST_BUILDS; last line "N passed, N failed"
#   check          build + tests for BUILD only (no package install)
#   check-asan     the tests under AddressSanitizer + UndefinedBehaviorSanitizer
#   bench          build the benchmark programs (bench/*.c) into build/$(BUILD)/bench
#   install        copy the commands to $(PREFIX)/bin
#   docker         build docker/Dockerfile for BUILD (needs a Docker engine)
#   clean          remove build/ and bin/

BUILD ?= native
CC ?= cc
PREFIX ?= /usr/local
TEST_BUILDS ?= native generic

VARIANTS := generic avx2 avx512 native asan
ifeq ($(filter $(BUILD),$(VARIANTS)),)
$(error BUILD=$(BUILD) is not one of: $(VARIANTS))
endif

march_generic := -march=x86-64 -mtune=generic
march_avx2    := -march=x86-64-v3
march_avx512  := -march=x86-64-v4 -mprefer-vector-width=512
march_native  := -march=native -mprefer-vector-width=512
march_asan    := -march=native

OPT := -O3
SAN :=
ifeq ($(BUILD),asan)
OPT := -O1 -g -fno-omit-frame-pointer -DSB_DEBUG
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif

# Debian's package list: the single source for `make deps` and docker/Dockerfile (a test checks).
DEB_BUILD_PACKAGES := build-essential pkg-config git libopenmpi-dev openmpi-bin liblmdb-dev \
    libjpeg62-turbo-dev libturbojpeg0-dev libcurl4-openssl-dev libcmocka-dev zlib1g-dev
DEB_TOOL_PACKAGES := libopenblas-dev lmdb-utils libjpeg-turbo-progs dataset-fashion-mnist \
    shellcheck gnuplot-nox
DEB_PACKAGES := $(DEB_BUILD_PACKAGES) $(DEB_TOOL_PACKAGES)
# Variants shipped as docker images (asan is a test build): docker/Dockerfile's ARG BUILD takes these.
IMAGE_VARIANTS := $(filter-out asan,$(VARIANTS))

MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS := $(shell pkg-config --libs ompi-c 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE $(OPT) $(march_$(BUILD)) -fopenmp $(WARN) $(SAN) \
    -I. $(MPI_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_BASE := -fopenmp $(SAN) $(EXTRA_LDFLAGS)
LDLIBS := $(MPI_LIBS) -llmdb -lturbojpeg -ljpeg -lcurl -lz -lm -lpthread

B := build/$(BUILD)
OBJ := $(B)/obj

LIB_DIRS := core flags kernels models/slim models/slim/preprocessing train dist datasets \
    datasets/imagenet launcher/common
LIB_SRCS := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(OBJ)/%.o)
LIB := $(B)/libslimbench.a

CMD_SRCS := $(wildcard launcher/*.c)
CMDS := $(CMD_SRCS:launcher/%.c=$(B)/bin/%)
TEST_SRCS := $(wildcard tests/test_*.c)
TESTS := $(TEST_SRCS:tests/%.c=$(B)/tests/%)
TEST_SUPPORT := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJS := $(TEST_SUPPORT:%.c=$(OBJ)/%.o)
BENCH_SRCS := $(wildcard bench/*.c)
BENCHES := $(BENCH_SRCS:bench/%.c=$(B)/bench/%)

# Build identity: rewritten only when it changes, so a new commit recompiles one file.
GIT_SHA := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- 2>/dev/null || echo +dirty)
CC_VERSION := $(shell $(CC) --version 2>/dev/null | head -n1)
IDENT := $(BUILD)|$(CC_VERSION)|$(CFLAGS_BASE)|$(GIT_SHA)
IDENT_FILE := $(B)/ident.txt
$(shell mkdir -p $(B); [ "$$(cat $(IDENT_FILE) 2>/dev/null)" = '$(IDENT)' ] || printf '%s' '$(IDENT)' > $(IDENT_FILE))
# The compile line alone (no revision): every object depends on it, so a build with other
# flags (EXTRA_CFLAGS=-DKN_KC=..., a new compiler) recompiles everything instead of mixing.
CFLAGS_FILE := $(B)/cflags.txt
CFLAGS_ID := $(CC_VERSION)|$(CFLAGS_BASE)
$(shell [ "$$(cat $(CFLAGS_FILE) 2>/dev/null)" = '$(CFLAGS_ID)' ] || printf '%s' '$(CFLAGS_ID)' > $(CFLAGS_FILE))
IDENT_DEFS := -DSB_BUILD_VARIANT='"$(BUILD)"' -DSB_BUILD_CC='"$(CC_VERSION)"' \
    -DSB_BUILD_CFLAGS='"$(strip $(OPT) $(march_$(BUILD)) -fopenmp $(SAN))"' -DSB_BUILD_GIT_SHA='"$(GIT_SHA)"'

.PHONY: all deps run test check check-asan bench install docker clean print-deb-packages print-commands
.DEFAULT_GOAL := all

all: $(CMDS)
ifeq ($(BUILD),native)
	@mkdir -p bin
	@for c in $(notdir $(CMDS)); do ln -sf ../$(B)/bin/$$c bin/$$c; done
endif

# V=1 shows full command lines.
Q := $(if $(V),,@)
.SECONDARY:

$(OBJ)/%.o: %.c $(CFLAGS_FILE)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC  $(BUILD)  $<")
	$(Q)$(CC) $(CFLAGS_BASE) -MMD -MP -c $< -o $@

$(OBJ)/core/build_info.o: core/build_info.c $(IDENT_FILE) $(CFLAGS_FILE)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC  $(BUILD)  $<")
	$(Q)$(CC) $(CFLAGS_BASE) $(IDENT_DEFS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(B)/bin/%: $(OBJ)/launcher/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD  $(BUILD)  $@")
	$(Q)$(CC) $(LDFLAGS_BASE) $< $(LIB) $(LDLIBS) -o $@

$(B)/tests/%: $(OBJ)/tests/%.o $(TEST_SUPPORT_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD  $(BUILD)  $@")
	$(Q)$(CC) $(LDFLAGS_BASE) $< $(TEST_SUPPORT_OBJS) $(LIB) $(LDLIBS) -lcmocka -o $@

$(B)/bench/%: $(OBJ)/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD  $(BUILD)  $@")
	$(Q)$(CC) $(LDFLAGS_BASE) $< $(LIB) $(LDLIBS) -lopenblas -o $@

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "Debian packages: all present"; fi

RUN_FLAGS ?= --model_name=vgg_16 --batch_size=32 --optimizer=rmsprop
RUN_EXTRA ?= --max_number_of_steps=8 --num_warmup_steps=2
run: deps
	$(MAKE) all
	$(B)/bin/launch $(RUN_FLAGS) $(RUN_EXTRA)

test: deps
	@rm -f build/test-summary.txt
	@status=0; for v in $(TEST_BUILDS); do \
	  $(MAKE) --no-print-directory BUILD=$$v check || status=1; \
	  cat build/$$v/test-summary.txt >> build/test-summary.txt 2>/dev/null; \
	done; \
	awk '{p+=$$1; f+=$$3} END {printf "all variants: %d passed, %d failed\n", p, f}' build/test-summary.txt; \
	exit $$status

check: all $(BENCHES) $(TESTS)
	@tests/run_tests.sh $(B)

check-asan:
	$(MAKE) BUILD=asan check

bench: all $(BENCHES)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(CMDS) $(DESTDIR)$(PREFIX)/bin/

docker:
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  docker build --build-arg BUILD=$(BUILD) -t slimbench:$(BUILD) -f docker/Dockerfile . ; \
	else echo "make docker: no Docker engine is available on this machine (docker info failed); nothing built" >&2; exit 1; fi

print-deb-packages:
	@echo $(DEB_PACKAGES)

print-commands:
	@echo $(notdir $(CMDS))

# Used by tests/test_docker.c to check docker/Dockerfile against this file.
.PHONY: print-deb-build-packages print-image-variants
print-deb-build-packages:
	@echo $(DEB_BUILD_PACKAGES)

print-image-variants:
	@echo $(IMAGE_VARIANTS)

clean:
	rm -rf build bin
