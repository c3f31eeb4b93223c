// The MPI library (Open MPI's libmpi), opened when a process started by mpirun
// begins its MPI session instead of linked, so no other process maps it
// (runtime/base/lazy_library.h). mpi_library.cc defines every MPI function
// meshtrain calls; each forwards to libmpi, and returns MPI_ERR_OTHER when it
// cannot be loaded. Include this instead of <mpi.h>. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_CLUSTER_MPI_LIBRARY_H_
#define MESHTRAIN_RUNTIME_CLUSTER_MPI_LIBRARY_H_

// The C API only: without these, mpi.h in C++ pulls in the deprecated C++
// bindings, whose symbols live in a library we do not load.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include "absl/status/statusor.h"

namespace meshtrain {

// The predefined handles meshtrain uses. Open MPI's are addresses of the
// library's objects (MPI_COMM_WORLD is &ompi_mpi_comm_world), so they exist
// only once it is loaded: use these instead of the macros.
struct MpiHandles {
  MPI_Comm comm_world;
  MPI_Datatype int_type;
  MPI_Datatype char_type;
  MPI_Errhandler errors_return;
};

// The handles once libmpi is loaded; else kFailedPrecondition naming the file
// and what to install. The first call loads it.
absl::StatusOr<MpiHandles> LoadMpi();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_MPI_LIBRARY_H_
