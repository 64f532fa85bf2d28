# zova: build, test, run and benchmark.
#
#   make            build zovad and zova (into build/)
#   make run        install missing Debian packages, build, start zovad all
#   make test       sanitized build (ASan + UBSan), unit tests, end-to-end tests
#   make memcheck   unit tests under valgrind
#   make bench      benchmarks (figures as ratios against raw limits)
#
# SANITIZE=1 builds with AddressSanitizer and UBSan into build-san/.

LIBS     := libzmq libczmq libvirt msgpack lmdb jansson uuid inih libsodium libwebsockets libxml-2.0 libpng libcrypto
PKG_OK   := $(shell pkg-config --exists $(LIBS) cmocka 2>/dev/null && echo yes)
ifneq ($(PKG_OK),yes)
  $(info zova: installing missing build dependencies (scripts/deps.sh))
  $(shell bash scripts/deps.sh >&2)
endif

CC       ?= cc
CSTD     := -std=gnu11
WARN     := -Wall -Wextra -Wshadow -Wformat=2 -Wswitch-enum -Wno-format-nonliteral -Wno-format-truncation -Werror
OPT      ?= -O2 -g
ifeq ($(SANITIZE),1)
  BUILD  ?= build-san
  SAN    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
  BUILD  ?= build
  SAN    :=
endif
CFLAGS   += $(CSTD) $(WARN) $(OPT) $(SAN) -D_GNU_SOURCE -I. $(shell pkg-config --cflags $(LIBS))
LDLIBS   += $(shell pkg-config --libs $(LIBS)) -lpthread -lm
# --as-needed: a binary links only the libraries it uses (the CLI needs no
# libvirt; each sanitized CLI call costs less to start).
LDFLAGS  += $(SAN) -Wl,--as-needed

# The library is every module but the mains; a folder per actor or library.
LIB_SRC  := $(wildcard common/*.c proto/*.c store/*.c bus/*.c virt/*.c actors/*/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB      := $(BUILD)/libzova.a
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)
BENCH_SRC:= $(wildcard bench/*.c)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all run test unit e2e memcheck bench clean distclean deps format
all: $(BUILD)/zovad $(BUILD)/zova $(TOOL_BIN)

deps:
	bash scripts/deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/zovad: $(BUILD)/cmd/zovad.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
CLI_SRC  := $(wildcard cmd/zova/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
$(BUILD)/zova: $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka
$(BUILD)/tools/%: $(BUILD)/tests/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# make run: the embedded default (test:///default, state under ./var).
run: all
	./$(BUILD)/zovad all

unit: $(UNIT_BIN)
	@bash tests/run-unit.sh $(UNIT_BIN)

e2e: all
	@bash tests/run-e2e.sh $(BUILD)

# The test build is sanitized and uses every core (about 40 s on 2 cores,
# against 60 s one file at a time); the CI line "N passed, N failed" comes last.
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test:
	$(MAKE) -j$(TEST_JOBS) SANITIZE=1 all unit-bins
	@bash tests/run-all.sh build-san

unit-bins: $(UNIT_BIN)

memcheck:
	$(MAKE) SANITIZE=0 OPT="-O0 -g" BUILD=build-mc unit-bins
	@bash tests/run-unit.sh --valgrind $(patsubst build/%,build-mc/%,$(UNIT_SRC:tests/unit/%.c=build/tests/%))

bench:
	$(MAKE) all $(BENCH_BIN)
	@bash bench/run.sh $(BUILD)

format:
	clang-format -i $(LIB_SRC) $(wildcard */*.h */*/*.h) cmd/*.c $(CLI_SRC) $(UNIT_SRC)

clean:
	rm -rf build build-san build-mc

distclean: clean
	rm -rf var

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
