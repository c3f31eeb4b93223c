// Forwarding definitions of the MPI functions meshtrain calls. A function
// missing here is a link error naming it: add it to the list.
#include "runtime/cluster/mpi_library.h"

#include "absl/strings/str_cat.h"
#include "runtime/base/lazy_library.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

LazyLibrary& Mpi() {
  // RTLD_GLOBAL: Open MPI opens its components (mca_*.so), which need libmpi's
  // symbols.
  static LazyLibrary* const library = new LazyLibrary(
      {MESHTRAIN_MPI_SONAME, MESHTRAIN_MPI_DIR, "install Open MPI (libopenmpi3)", true});
  return *library;
}

#if defined(OPEN_MPI)
template <typename Handle>
absl::StatusOr<Handle> Predefined(const char* name) {
  void* object = Mpi().Symbol(name);
  if (object == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(Mpi().soname(), " has no ", name, ": is it Open MPI's?"));
  }
  return static_cast<Handle>(object);
}
#endif

absl::StatusOr<MpiHandles> ResolveHandles() {
  MESHTRAIN_RETURN_IF_ERROR(Mpi().Load());
#if defined(OPEN_MPI)
  MpiHandles handles;
  MESHTRAIN_ASSIGN_OR_RETURN(handles.comm_world, Predefined<MPI_Comm>("ompi_mpi_comm_world"));
  MESHTRAIN_ASSIGN_OR_RETURN(handles.int_type, Predefined<MPI_Datatype>("ompi_mpi_int"));
  MESHTRAIN_ASSIGN_OR_RETURN(handles.char_type, Predefined<MPI_Datatype>("ompi_mpi_char"));
  MESHTRAIN_ASSIGN_OR_RETURN(handles.errors_return,
                             Predefined<MPI_Errhandler>("ompi_mpi_errors_return"));
  return handles;
#else
  // MPICH and its kin: the handles are constants.
  return MpiHandles{MPI_COMM_WORLD, MPI_INT, MPI_CHAR, MPI_ERRORS_RETURN};
#endif
}

}  // namespace

absl::StatusOr<MpiHandles> LoadMpi() {
  static const absl::StatusOr<MpiHandles>* const handles =
      new absl::StatusOr<MpiHandles>(ResolveHandles());
  return *handles;
}

}  // namespace meshtrain

// The functions returning an MPI error code: name, (parameters), (arguments).
#define MESHTRAIN_MPI_FUNCTIONS(X)                                                         \
  X(MPI_Comm_dup, (MPI_Comm comm, MPI_Comm * new_comm), (comm, new_comm))                  \
  X(MPI_Comm_free, (MPI_Comm * comm), (comm))                                              \
  X(MPI_Comm_rank, (MPI_Comm comm, int* rank), (comm, rank))                               \
  X(MPI_Comm_set_errhandler, (MPI_Comm comm, MPI_Errhandler handler), (comm, handler))     \
  X(MPI_Comm_size, (MPI_Comm comm, int* size), (comm, size))                               \
  X(MPI_Error_string, (int code, char* text, int* length), (code, text, length))           \
  X(MPI_Finalize, (), ())                                                                  \
  X(MPI_Finalized, (int* flag), (flag))                                                    \
  X(MPI_Iallgather,                                                                        \
    (const void* send, int send_count, MPI_Datatype send_type, void* recv, int recv_count, \
     MPI_Datatype recv_type, MPI_Comm comm, MPI_Request* request),                         \
    (send, send_count, send_type, recv, recv_count, recv_type, comm, request))             \
  X(MPI_Iallgatherv,                                                                       \
    (const void* send, int send_count, MPI_Datatype send_type, void* recv,                 \
     const int recv_counts[], const int offsets[], MPI_Datatype recv_type, MPI_Comm comm,  \
     MPI_Request* request),                                                                \
    (send, send_count, send_type, recv, recv_counts, offsets, recv_type, comm, request))   \
  X(MPI_Init_thread, (int* argc, char*** argv, int required, int* provided),               \
    (argc, argv, required, provided))                                                      \
  X(MPI_Initialized, (int* flag), (flag))                                                  \
  X(MPI_Test, (MPI_Request * request, int* flag, MPI_Status* status), (request, flag, status))

#define MESHTRAIN_MPI_FORWARD(name, params, args) \
  MESHTRAIN_LAZY_FORWARD(meshtrain::Mpi(), MPI_ERR_OTHER, int, name, params, args)
MESHTRAIN_MPI_FUNCTIONS(MESHTRAIN_MPI_FORWARD)
