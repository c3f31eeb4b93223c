// Forwarding definitions of the NCCL functions meshtrain calls. A function
// missing here is a link error naming it: add it to the list.
#include "runtime/collective/nccl/nccl_library.h"

#include <nccl.h>

#include "runtime/base/lazy_library.h"

namespace meshtrain {
namespace {

LazyLibrary& Nccl() {
  static LazyLibrary* const library =
      new LazyLibrary({MESHTRAIN_NCCL_SONAME, MESHTRAIN_NCCL_DIR, "install NCCL (libnccl2)"});
  return *library;
}

}  // namespace

const absl::Status& LoadNccl() { return Nccl().Load(); }

}  // namespace meshtrain

// The functions returning ncclResult_t: name, (parameters), (arguments).
#define MESHTRAIN_NCCL_FUNCTIONS(X)                                                              \
  X(ncclAllGather,                                                                               \
    (const void* send, void* recv, size_t send_count, ncclDataType_t type, ncclComm_t comm,      \
     cudaStream_t stream),                                                                       \
    (send, recv, send_count, type, comm, stream))                                                \
  X(ncclAllReduce,                                                                               \
    (const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op,            \
     ncclComm_t comm, cudaStream_t stream),                                                      \
    (send, recv, count, type, op, comm, stream))                                                 \
  X(ncclBroadcast,                                                                               \
    (const void* send, void* recv, size_t count, ncclDataType_t type, int root, ncclComm_t comm, \
     cudaStream_t stream),                                                                       \
    (send, recv, count, type, root, comm, stream))                                               \
  X(ncclCommAbort, (ncclComm_t comm), (comm))                                                    \
  X(ncclCommDestroy, (ncclComm_t comm), (comm))                                                  \
  X(ncclCommGetAsyncError, (ncclComm_t comm, ncclResult_t * async_error), (comm, async_error))   \
  X(ncclCommInitAll, (ncclComm_t * comms, int num_devices, const int* devices),                  \
    (comms, num_devices, devices))                                                               \
  X(ncclCommInitRankConfig,                                                                      \
    (ncclComm_t * comm, int num_ranks, ncclUniqueId id, int rank, ncclConfig_t* config),         \
    (comm, num_ranks, id, rank, config))                                                         \
  X(ncclGetUniqueId, (ncclUniqueId * id), (id))                                                  \
  X(ncclReduce,                                                                                  \
    (const void* send, void* recv, size_t count, ncclDataType_t type, ncclRedOp_t op, int root,  \
     ncclComm_t comm, cudaStream_t stream),                                                      \
    (send, recv, count, type, op, root, comm, stream))

#define MESHTRAIN_NCCL_FORWARD(name, params, args) \
  MESHTRAIN_LAZY_FORWARD(meshtrain::Nccl(), ncclSystemError, ncclResult_t, name, params, args)
MESHTRAIN_NCCL_FUNCTIONS(MESHTRAIN_NCCL_FORWARD)

// NcclStatus names a missing library before it asks for these.
MESHTRAIN_LAZY_FORWARD(meshtrain::Nccl(), "NCCL could not be loaded", const char*,
                       ncclGetErrorString, (ncclResult_t result), (result))
MESHTRAIN_LAZY_FORWARD(meshtrain::Nccl(), "", const char*, ncclGetLastError, (ncclComm_t comm),
                       (comm))
