# cuda.mk — the GPU build (make CUDA=1 -> build/cuda/cphil): CUDA 13 at /usr/local/cuda (nvcc,
# cudart, cuBLASLt, NCCL for the ranks' gradient exchange: src/gpu/dist_nccl.c). Kernels are .cu files under src/kernels/cuda/ compiled by nvcc for Hopper
# (sm_90 machine code) plus compute_90 PTX, so newer cards JIT it; the C files of the GPU path
# (src/gpu/) include the CUDA runtime headers. Without CUDA=1 none of this is used and the build
# needs no CUDA header (src/gpu/gpu_none.c stands in).
ifeq ($(CUDA),1)
CUDA_HOME   ?= /usr/local/cuda
NVCC        ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCH   ?= -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90
NVCC_FLAGS  ?= -O3 -std=c++17 $(CUDA_ARCH) -Iinclude -Isrc -DCPHIL_CUDA=1 \
               --compiler-options -Wall,-Wextra,-fno-strict-aliasing -Xptxas -warn-spills \
               -lineinfo
EXTRA_CFLAGS += -DCPHIL_CUDA=1 -I$(CUDA_HOME)/include
EXTRA_LIBS   += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcudart -lnccl -lstdc++ -ldl -lrt

CU_SRC  := $(sort $(wildcard src/kernels/cuda/*.cu src/gpu/*.cu))
CU_OBJ  := $(CU_SRC:%.cu=$(B)/%.o)
LIB_OBJ += $(CU_OBJ)

$(B)/%.o: %.cu $(wildcard src/kernels/cuda/*.h src/kernels/cuda/*.cuh src/gpu/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCC_FLAGS) -c $< -o $@

# GPU tests: tests/cuda/test_*.c, built only here; scripts/test_cuda.sh runs them.
TEST_SRC += $(sort $(wildcard tests/cuda/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(B)/tests/%)
endif

ifeq ($(CUDA),1)
# GPU benchmarks: bench/cuda/*.c (make CUDA=1 bench)
BENCH_SRC += $(sort $(wildcard bench/cuda/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(B)/bench/%)
endif
