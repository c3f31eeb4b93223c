#include "runtime/tensor/cuda/caching_allocator.h"

#include <cuda_runtime_api.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/tensor/cuda/cuda_status.h"
#include "runtime/tensor/cuda/scoped_device.h"

namespace meshtrain {
namespace {

constexpr size_t kSmallAlignment = 512;
constexpr size_t kSmallLimit = size_t{1} << 20;
constexpr size_t kLargeAlignment = size_t{2} << 20;

size_t RoundTo(size_t bytes, size_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

}  // namespace

size_t CachingAllocator::RoundUp(size_t bytes) {
  return bytes <= kSmallLimit ? RoundTo(std::max<size_t>(bytes, 1), kSmallAlignment)
                              : RoundTo(bytes, kLargeAlignment);
}

CachingAllocator::~CachingAllocator() {
  absl::MutexLock lock(&mu_);
  absl::Status status = FreeCacheLocked();
  if (!status.ok()) {
    MESHTRAIN_LOG(WARNING) << status;
  }
}

absl::StatusOr<void*> CachingAllocator::Allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t block = RoundUp(bytes);
  absl::MutexLock lock(&mu_);
  // The smallest cached block that fits, if it wastes at most half of itself.
  auto it = cached_.lower_bound(block);
  if (it != cached_.end() && it->first <= 2 * block) {
    void* ptr = it->second;
    const size_t size = it->first;
    cached_.erase(it);
    in_use_[ptr] = size;
    stats_.cached_bytes -= static_cast<int64_t>(size);
    stats_.in_use_bytes += static_cast<int64_t>(size);
    stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
    return ptr;
  }
  const int64_t limit = options_.limit_bytes;
  if (stats_.in_use_bytes + stats_.cached_bytes + static_cast<int64_t>(block) > limit) {
    MESHTRAIN_RETURN_IF_ERROR(FreeCacheLocked());
    if (stats_.in_use_bytes + static_cast<int64_t>(block) > limit) {
      return ExhaustedLocked(block, "would exceed the memory limit");
    }
  }
  ScopedCudaDevice scoped(options_.ordinal);
  MESHTRAIN_RETURN_IF_ERROR(scoped.status());
  void* ptr = nullptr;
  cudaError_t error = cudaMalloc(&ptr, block);
  if (error == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // clear it: out of memory is not sticky
    MESHTRAIN_RETURN_IF_ERROR(FreeCacheLocked());
    error = cudaMalloc(&ptr, block);
    if (error == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      return ExhaustedLocked(block,
                             "failed: the GPU is full (other processes may hold its memory)");
    }
  }
  MESHTRAIN_CUDA_RETURN_IF_ERROR(
      error, absl::StrCat("cudaMalloc of ", block, " bytes on ", options_.description));
  in_use_[ptr] = block;
  stats_.in_use_bytes += static_cast<int64_t>(block);
  stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
  ++stats_.cuda_mallocs;
  return ptr;
}

void CachingAllocator::Deallocate(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  absl::MutexLock lock(&mu_);
  auto it = in_use_.find(ptr);
  MESHTRAIN_CHECK(it != in_use_.end()) << "freeing " << bytes << " bytes at " << ptr << " that "
                                       << options_.description << " did not allocate";
  const size_t size = it->second;
  in_use_.erase(it);
  cached_.emplace(size, ptr);
  stats_.in_use_bytes -= static_cast<int64_t>(size);
  stats_.cached_bytes += static_cast<int64_t>(size);
}

absl::Status CachingAllocator::EmptyCache() {
  absl::MutexLock lock(&mu_);
  return FreeCacheLocked();
}

CachingAllocator::Stats CachingAllocator::stats() const {
  absl::MutexLock lock(&mu_);
  Stats stats = stats_;
  stats.limit_bytes = options_.limit_bytes;
  return stats;
}

absl::Status CachingAllocator::FreeCacheLocked() {
  if (cached_.empty()) return absl::OkStatus();
  ScopedCudaDevice scoped(options_.ordinal);
  MESHTRAIN_RETURN_IF_ERROR(scoped.status());
  absl::Status first;
  for (const auto& [size, ptr] : cached_) {
    absl::Status status = CudaStatus(
        cudaFree(ptr), absl::StrCat("cudaFree of ", size, " bytes on ", options_.description));
    if (first.ok()) first = status;
    stats_.cached_bytes -= static_cast<int64_t>(size);
  }
  cached_.clear();
  return first;
}

absl::Status CachingAllocator::ExhaustedLocked(size_t block, absl::string_view why) const {
  return absl::ResourceExhaustedError(absl::StrCat(
      options_.description, ": allocating ", block, " bytes ", why, " (limit ",
      options_.limit_bytes, " bytes, ", stats_.in_use_bytes,
      " in use); lower the batch size, or raise --gpu-memory-limit or lower --logical-gpus"));
}

}  // namespace meshtrain
