// Malloc policy for the gRPC transport: keep freed memory mapped.
//
// gRPC reads every incoming message into buffers it allocates with malloc, and
// frees them once the transport has added them into the destination. glibc
// gives freed memory at the top of a thread's heap back to the kernel once it
// exceeds the trim threshold (128 KiB by default), so the next message is read
// into fresh pages and pays a page fault per 4 KiB: on the VMs measured here
// about 20 us each, which held a 1 MiB allreduce over gRPC to 0.2-0.4 GB/s and
// a 64 MiB one to under 0.1 GB/s (docs/mesh.md, "Why the gRPC path was slow").
// Raising the trim threshold to kRetainedFreeBytes (and the mmap threshold to
// glibc's maximum, so no buffer up to that size is unmapped on free) keeps
// those pages and makes the faults disappear.
//
// This is a process-wide setting, applied at most once, by the first gRPC
// transport a process creates; a process that never uses the gRPC data path
// keeps glibc's defaults. A user who set malloc tunables (GLIBC_TUNABLES with
// glibc.malloc.*, or MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_) is left
// alone. The cost: each heap may keep up to kRetainedFreeBytes of free memory
// mapped. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_RPC_MALLOC_POLICY_H_
#define MESHTRAIN_RUNTIME_RPC_MALLOC_POLICY_H_

#include <cstddef>
#include <string>

namespace meshtrain {

inline constexpr size_t kRetainedFreeBytes = size_t{64} << 20;

// What KeepFreedMemoryMapped did (also logged once).
struct MallocPolicyResult {
  bool applied = false;
  std::string reason;
};

// Applies the policy on the first call and logs what it did; later calls
// return the first result.
MallocPolicyResult KeepFreedMemoryMapped();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_MALLOC_POLICY_H_
