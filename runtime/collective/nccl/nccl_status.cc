#include "runtime/collective/nccl/nccl_status.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "runtime/collective/nccl/nccl_library.h"
#include "runtime/tensor/cuda/cuda_status.h"

namespace meshtrain {
namespace {

// Yield (no sleep) this long, then sleep with doubling intervals up to the cap.
constexpr absl::Duration kYieldPhase = absl::Microseconds(100);
constexpr absl::Duration kFirstSleep = absl::Microseconds(20);
constexpr absl::Duration kMaxSleep = absl::Milliseconds(1);

}  // namespace

absl::Status NcclStatus(ncclResult_t result, absl::string_view what, ncclComm_t comm) {
  if (result == ncclSuccess) return absl::OkStatus();
  // Not a peer's failure, whatever code the shim returned.
  if (const absl::Status& load = LoadNccl(); !load.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", load.message()));
  }
  absl::StatusCode code = absl::StatusCode::kInternal;
  const char* fix = "";
  switch (result) {
    case ncclRemoteError:
    case ncclSystemError:
      code = absl::StatusCode::kUnavailable;
      fix = "; a peer process died or its network failed: restart the job from its last checkpoint";
      break;
    case ncclInvalidUsage:
      code = absl::StatusCode::kFailedPrecondition;
      fix =
          "; NCCL refuses two ranks on one GPU: give each rank its own GPU (CUDA_VISIBLE_DEVICES, "
          "--devices) or use on-device reduction for logical GPUs";
      break;
    default:
      break;
  }
  std::string message = absl::StrCat(what, ": ", ncclGetErrorString(result));
  if (comm != nullptr) {
    const char* detail = ncclGetLastError(comm);
    if (detail != nullptr && detail[0] != '\0') absl::StrAppend(&message, " (", detail, ")");
  }
  absl::StrAppend(&message, fix);
  return absl::Status(code, message);
}

absl::Status WaitForNccl(ncclComm_t comm, cudaEvent_t done, absl::Time deadline,
                         const AbortSignal* abort, absl::string_view what) {
  const absl::Time start = absl::Now();
  absl::Duration sleep = kFirstSleep;
  while (true) {
    ncclResult_t async = ncclSuccess;
    const ncclResult_t queried = ncclCommGetAsyncError(comm, &async);
    if (queried != ncclSuccess) return NcclStatus(queried, what, comm);
    if (async != ncclSuccess && async != ncclInProgress) return NcclStatus(async, what, comm);
    if (async == ncclSuccess) {
      if (done == nullptr) return absl::OkStatus();
      const cudaError_t event = cudaEventQuery(done);
      if (event == cudaSuccess) return absl::OkStatus();
      if (event != cudaErrorNotReady) return CudaStatus(event, what);
    }
    if (abort != nullptr && abort->aborted()) {
      return absl::AbortedError(absl::StrCat(what, ": stopped: ", abort->status().message()));
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": not complete after ", absl::FormatDuration(now - start),
                       "; a peer is missing or stalled (check the other tasks' logs)"));
    }
    if (now - start < kYieldPhase) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(absl::ToChronoMicroseconds(std::min(sleep, deadline - now)));
      sleep = std::min(sleep * 2, kMaxSleep);
    }
  }
}

}  // namespace meshtrain
