// The one place NCCL return codes become absl::Status, and the wait every
// NCCL collective ends with.
//
// Codes say what to do: a peer that died or whose network failed
// (ncclRemoteError, ncclSystemError) -> kUnavailable (the cluster recovers from
// its last checkpoint); duplicate devices or a call out of order
// (ncclInvalidUsage) -> kFailedPrecondition; libnccl missing (it is opened on
// first use) -> kFailedPrecondition naming the file and what to install; the
// rest -> kInternal.
//
// WaitForNccl never hangs: it polls the communicator's asynchronous error, the
// completion event, the task's AbortSignal and the deadline, sleeping briefly
// between polls (a short yield phase first, for the microsecond collectives of
// small gradients). Thread-safe (pure functions over their arguments).
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_NCCL_STATUS_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_NCCL_STATUS_H_

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"

namespace meshtrain {

// `comm` (nullable) adds NCCL's own description of its last error.
absl::Status NcclStatus(ncclResult_t result, absl::string_view what, ncclComm_t comm = nullptr);

// Returns once `comm` has no operation in flight on the host side (a
// nonblocking communicator's init or enqueue) and, if `done` is given, the
// event has completed on the device. kUnavailable/kInternal for NCCL's
// asynchronous error, the abort's reason once `abort` (nullable) fires,
// kDeadlineExceeded at `deadline`. The caller aborts the communicator on an
// error (ncclCommAbort), which also stops its kernels.
absl::Status WaitForNccl(ncclComm_t comm, cudaEvent_t done, absl::Time deadline,
                         const AbortSignal* abort, absl::string_view what);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_NCCL_STATUS_H_
