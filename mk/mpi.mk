# mpi.mk — data-parallel ranks over Open MPI (docs/distributed.md). MPI is compiled in when
# `mpicc --showme:compile` answers (Debian: libopenmpi-dev, installed by scripts/setup.sh);
# src/dist/dist_mpi.c then replaces src/dist/dist_none.c and CPHIL_MPI=1 is defined. MPI=0
# builds without it even where it is installed.
ifneq ($(MPI),0)
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null)
endif
ifneq ($(strip $(MPI_LIBS)),)
EXTRA_CFLAGS += -DCPHIL_MPI=1 $(MPI_CFLAGS)
EXTRA_LIBS   += $(MPI_LIBS)
LIB_OBJ      := $(filter-out $(B)/src/dist/dist_none.o,$(LIB_OBJ))
else
LIB_OBJ      := $(filter-out $(B)/src/dist/dist_mpi.o,$(LIB_OBJ))
endif
