#include "runtime/rpc/malloc_policy.h"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"

namespace meshtrain {
namespace {

MallocPolicyResult Apply() {
#if defined(__GLIBC__)
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if ((tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) ||
      std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr ||
      std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr) {
    return {false, "malloc tunables set in the environment; left as they are"};
  }
  // glibc refuses an mmap threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit).
  constexpr int kMmapThresholdBytes = 32 << 20;
  if (mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes) != 1 ||
      mallopt(M_TRIM_THRESHOLD, static_cast<int>(kRetainedFreeBytes)) != 1) {
    return {false, "glibc refused the malloc thresholds"};
  }
  return {true, absl::StrCat("malloc keeps up to ", kRetainedFreeBytes >> 20,
                             " MiB freed per heap mapped (no page faults per gRPC message)")};
#else
  return {false, "not glibc; malloc left as it is"};
#endif
}

}  // namespace

MallocPolicyResult KeepFreedMemoryMapped() {
  static const MallocPolicyResult result = [] {
    MallocPolicyResult applied = Apply();
    MESHTRAIN_LOG(INFO) << "grpc transport: " << applied.reason;
    return applied;
  }();
  return result;
}

}  // namespace meshtrain
