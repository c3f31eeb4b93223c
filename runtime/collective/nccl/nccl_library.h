// NCCL (libnccl), opened on first use instead of linked, so a CPU process never
// maps it (runtime/base/lazy_library.h). nccl_library.cc defines every NCCL
// function meshtrain calls; each forwards to libnccl, and returns
// ncclSystemError when it cannot be loaded, which NcclStatus turns into
// LoadNccl()'s message. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_NCCL_LIBRARY_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_NCCL_LIBRARY_H_

#include "absl/status/status.h"

namespace meshtrain {

// OK once libnccl is loaded; else kFailedPrecondition naming the file and what
// to install. The first call loads it; every NCCL call does the same.
const absl::Status& LoadNccl();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_NCCL_LIBRARY_H_
