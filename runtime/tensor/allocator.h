// Allocators hand out device memory for tensors. The CPU allocator returns
// 64-byte aligned host memory; the CUDA device brings a caching allocator. An
// allocator must outlive every tensor it allocated. Implementations are thread-safe.
#ifndef MESHTRAIN_RUNTIME_TENSOR_ALLOCATOR_H_
#define MESHTRAIN_RUNTIME_TENSOR_ALLOCATOR_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "runtime/tensor/device.h"

namespace meshtrain {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual Device device() const = 0;
  // ResourceExhausted when the device (or its configured limit) has no room.
  virtual absl::StatusOr<void*> Allocate(size_t bytes) = 0;
  virtual void Deallocate(void* ptr, size_t bytes) = 0;
};

// The process's host allocator (stateless, so shared). Alignment: 64 bytes.
Allocator& CpuAllocator();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_ALLOCATOR_H_
