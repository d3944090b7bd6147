# cphil build. Plain make; see docs/build.md.
#   make            release build  -> build/rel/cphil
#   make DEBUG=1    -O0 -g          -> build/dbg/cphil
#   make SAN=1      ASan + UBSan    -> build/san/cphil
#   make test       build and run every test (ends with "N passed, N failed")
#   make bench      build the benchmarks
#   make fuzz       bounded libFuzzer run of the replay reader (needs clang)
#   make FUZZ=1 fuzz-readers   libFuzzer targets of the other file readers -> build/fuzzlib/fuzz/
#                   (policy f32/bf16/int8, dataset cache, .npy/.npz; run by tests/t_fuzz_readers.sh)
CC      ?= gcc
ifeq ($(origin CC),default)
CC := gcc
endif

WARN   := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
          -Wpointer-arith -Wformat=2 -Wundef
BASE   := -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -pthread -fno-strict-aliasing $(WARN)

ifeq ($(CUDA),1)
  MODE := cuda
  OPT  := -O2 -g
else ifeq ($(FUZZ),1)
  # the library built by clang for the file readers' libFuzzer targets (make FUZZ=1 fuzz-readers)
  CC   := clang
  MODE := fuzzlib
  OPT  := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  LDSAN:= -fsanitize=address,undefined
else ifeq ($(SAN),1)
  MODE := san
  OPT  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN:= -fsanitize=address,undefined
else ifeq ($(DEBUG),1)
  MODE := dbg
  OPT  := -O0 -g
else
  MODE := rel
  OPT  := -O2 -g
endif

# Portable baseline; SIMD kernels live in *_avx2.c / *_avx512.c files compiled with their own
# flags and are chosen at run time (src/kernels/cpu/isa.c), so the binary runs on any x86-64.
ARCH        := -march=x86-64-v2 -mtune=znver3
ARCH_AVX2   := -mavx2 -mfma -mf16c
ARCH_AVX512 := -mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 -mavx512vnni \
               -mamx-tile -mamx-int8

CFLAGS  += $(BASE) $(OPT) $(ARCH)
LDFLAGS += $(LDSAN)
LDLIBS  += -lm -pthread $(EXTRA_LIBS)

B := build/$(MODE)

LIB_SRC  := $(sort $(wildcard src/*/*.c src/*/*/*.c))
LIB_SRC  := $(filter-out src/cli/%,$(LIB_SRC))
# The GPU path (src/kernels/cuda/, src/gpu/) is compiled only with CUDA=1; without it
# src/gpu/gpu_none.c answers every GPU request with "built without CUDA" (mk/cuda.mk).
ifeq ($(CUDA),1)
LIB_SRC  := $(filter-out src/gpu/gpu_none.c,$(LIB_SRC))
else
LIB_SRC  := $(filter-out src/kernels/cuda/% src/gpu/%,$(LIB_SRC)) src/gpu/gpu_none.c
endif
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
BENCH_SRC:= $(sort $(wildcard bench/*.c))
EX_SRC   := $(sort $(wildcard examples/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(B)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(B)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)
BENCH_BIN:= $(BENCH_SRC:bench/%.c=$(B)/bench/%)
EX_BIN   := $(EX_SRC:examples/%.c=$(B)/examples/%)
LIB      := $(B)/libcphil.a
BIN      := $(B)/cphil

# Optional library flags (protobuf-c for ONNX export) come from a small fragment so the
# Makefile stays one file per concern.
-include mk/*.mk

.PHONY: all test test-bin bench fuzz clean examples
all: $(BIN) $(TEST_BIN) $(EX_BIN)

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@

$(B)/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) $(ARCH_AVX2) -MMD -MP -c $< -o $@

$(B)/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) $(ARCH_AVX512) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) $(CLI_OBJ) $(LIB) $(LDLIBS) -o $@

$(B)/tests/%: tests/%.c tests/harness.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -Itests $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

$(B)/bench/%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

$(B)/examples/%: examples/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@

test-bin: $(BIN) $(TEST_BIN) $(EX_BIN)

test: test-bin
	@CPHIL_BUILD=$(B) tests/run_tests.sh

bench: $(BIN) $(BENCH_BIN)

examples: $(EX_BIN)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)

# ---- fuzzing (not part of `make test`): libFuzzer through Debian's clang, ASan + UBSan ----
# make fuzz [FUZZ_SECONDS=60]: builds build/fuzz/fuzz_slp and runs it for FUZZ_SECONDS on a corpus
# seeded with the small shared replays (../shared/replays, or $CPHIL_REPLAYS). Crashes are written
# to build/fuzz/ (crash-*), the grown corpus is kept in build/fuzz/corpus.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_SRC     := tests/fuzz/fuzz_slp.c src/core/alloc.c src/core/error.c src/core/file.c $(wildcard src/slp/*.c)
FUZZ_REPLAYS := $(if $(CPHIL_REPLAYS),$(CPHIL_REPLAYS),../shared/replays)
build/fuzz/fuzz_slp: $(FUZZ_SRC) include/cphil.h $(wildcard src/slp/*.h)
	@mkdir -p build/fuzz
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -O1 -g -fno-omit-frame-pointer \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  $(filter %.c,$^) -lm -pthread -o $@
# The training files' readers (checkpoint + resume checks, soft labels): make fuzz_ckpt /
# make fuzz_softlabels [FUZZ_SECONDS=60]; tests/t_fuzz_train_files.sh runs them bounded.
FUZZ_TRAIN_SRC := $(wildcard src/core/*.c) src/train/trainer.c src/train/prefetch.c src/train/ckpt.c src/train/curves.c \
  src/train/metrics.c src/train/softlabels.c src/train/distill_loss.c src/model/model.c \
  src/dist/dist_common.c src/dist/dist_none.c src/game/embed_layout.c
build/fuzz/fuzz_ckpt build/fuzz/fuzz_softlabels: build/fuzz/%: tests/fuzz/%.c $(FUZZ_TRAIN_SRC) $(wildcard src/core/*.h src/train/*.h)
	@mkdir -p build/fuzz
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -O1 -g -fno-omit-frame-pointer \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  $(filter %.c,$^) -lm -pthread -o $@
.PHONY: fuzz_ckpt fuzz_softlabels
fuzz_ckpt fuzz_softlabels: fuzz_%: build/fuzz/fuzz_%
	@mkdir -p build/fuzz/corpus_$* build/fuzz/seed_$*
	cd build/fuzz && CPHIL_FUZZ_SEED_DIR=seed_$* ./fuzz_$* -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	  -print_final_stats=1 corpus_$* seed_$*
# The file readers' targets link the whole library (built by clang in FUZZ=1 mode). The SIMD
# kernel files are compiled without instrumentation there: no reader runs them, and clang's
# ASan + UBSan take many minutes on the AVX-512 products.
ifeq ($(MODE),fuzzlib)
$(B)/%_avx2.o $(B)/%_avx512.o: OPT := -O1 -g
endif
FUZZ_READERS := $(B)/fuzz/fuzz_policy $(B)/fuzz/fuzz_dataset $(B)/fuzz/fuzz_npy
$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(EXTRA_CFLAGS) -fsanitize=fuzzer $< $(LIB) $(LDFLAGS) $(LDLIBS) -o $@
.PHONY: fuzz-readers
fuzz-readers: $(FUZZ_READERS)

fuzz: build/fuzz/fuzz_slp
	@mkdir -p build/fuzz/corpus build/fuzz/seed
	@if [ -d "$(FUZZ_REPLAYS)" ]; then find "$(FUZZ_REPLAYS)" -name '*.slp' -size -160k -exec cp {} build/fuzz/seed/ \; ; fi
	cd build/fuzz && ./fuzz_slp -max_total_time=$(FUZZ_SECONDS) -max_len=200000 -rss_limit_mb=2048 \
	  -print_final_stats=1 corpus seed
