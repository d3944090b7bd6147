# onnx.mk — ONNX export support: C bindings for Debian's onnx.proto (libonnx-dev), generated at
# build time by protoc-c (protobuf-c-compiler) and linked against libprotobuf-c.
# Included by the Makefile (-include mk/*.mk). The generated files go to build/gen/ (one copy
# for every build mode) and are compiled into libcphil.a like any other source.
# The Makefile includes this before its "all" rule: keep "all" the default goal.
.DEFAULT_GOAL := all
ONNX_PROTO ?= /usr/include/onnx/onnx.proto
PROTOC_C   ?= protoc-c
ONNX_GEN   := build/gen/onnxpb

EXTRA_LIBS   += -lprotobuf-c
EXTRA_CFLAGS += -Ibuild/gen

$(ONNX_GEN)/onnx.pb-c.c $(ONNX_GEN)/onnx.pb-c.h &: $(ONNX_PROTO)
	@mkdir -p $(ONNX_GEN)
	@command -v $(PROTOC_C) >/dev/null || { echo "protoc-c not found: run scripts/setup.sh (Debian: protobuf-c-compiler, libprotobuf-c-dev, libonnx-dev)" >&2; exit 1; }
	$(PROTOC_C) --proto_path=$(dir $(ONNX_PROTO)) --c_out=$(ONNX_GEN) $(notdir $(ONNX_PROTO))

# Generated code: compiled without our warning set (it is not ours to fix).
$(B)/gen/onnx.pb-c.o: $(ONNX_GEN)/onnx.pb-c.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -W%,$(CFLAGS)) -w -Ibuild/gen -c $< -o $@

LIB_OBJ += $(B)/gen/onnx.pb-c.o
# Everything under src/export/ may include the generated header: make it first.
$(filter $(B)/src/export/%,$(LIB_OBJ)): | $(ONNX_GEN)/onnx.pb-c.h
