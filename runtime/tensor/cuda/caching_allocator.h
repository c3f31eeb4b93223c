// CachingAllocator: device memory of one logical GPU, from plain cudaMalloc
// (never managed memory), kept for reuse when tensors release it, under a
// memory limit. A step then allocates nothing from CUDA once the first step
// has sized every buffer.
//
// Sizes are rounded (RoundUp) and a request takes the smallest cached block
// that fits and wastes at most half of it. When the limit or the device runs
// out, the cache is returned to CUDA and the request tried once more; then
// kResourceExhausted names the device, the limit, what is in use and the
// request.
//
// Reuse is safe without events because every user of a logical device's
// memory queues its work on that device's one compute stream (CudaDevice): a
// block released by the host and handed out again is only touched by work
// queued after everything queued before its release. (Input uploads on the
// copy stream write buffers the stager owns and never releases while in use.)
//
// Invariant: in_use + cached <= limit. Thread-safe; the mutex is held across
// cudaMalloc/cudaFree (as PyTorch's allocator does), never across a stream wait.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CUDA_CACHING_ALLOCATOR_H_
#define MESHTRAIN_RUNTIME_TENSOR_CUDA_CACHING_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "runtime/tensor/allocator.h"

namespace meshtrain {

class CachingAllocator final : public Allocator {
 public:
  struct Options {
    Device device;            // the logical device (gpu:N)
    int ordinal = 0;          // its CUDA device
    int64_t limit_bytes = 0;  // > 0
    std::string description;  // for errors: "gpu:1 (CUDA device 0, slice 2 of 2)"
  };

  struct Stats {
    int64_t in_use_bytes = 0;
    int64_t cached_bytes = 0;
    int64_t peak_in_use_bytes = 0;
    int64_t limit_bytes = 0;
    int64_t cuda_mallocs = 0;  // blocks obtained from cudaMalloc so far
  };

  explicit CachingAllocator(Options options) : options_(std::move(options)) {}
  ~CachingAllocator() override;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  Device device() const override { return options_.device; }
  // nullptr for 0 bytes. Alignment: 256 bytes (cudaMalloc's).
  absl::StatusOr<void*> Allocate(size_t bytes) override;
  void Deallocate(void* ptr, size_t bytes) override;

  // Returns every cached block to CUDA (cudaFree synchronises the device).
  absl::Status EmptyCache();
  Stats stats() const;

  // The block size a request of `bytes` takes: multiples of 512 bytes up to
  // 1 MiB, of 2 MiB beyond. Pure.
  static size_t RoundUp(size_t bytes);

 private:
  absl::Status FreeCacheLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ExhaustedLocked(size_t block, absl::string_view why) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::multimap<size_t, void*> cached_ ABSL_GUARDED_BY(mu_);        // block size -> block
  absl::flat_hash_map<void*, size_t> in_use_ ABSL_GUARDED_BY(mu_);  // block -> block size
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_CUDA_CACHING_ALLOCATOR_H_
