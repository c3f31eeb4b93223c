#include "runtime/tensor/allocator.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace meshtrain {
namespace {

constexpr size_t kAlignment = 64;

class HostAllocator final : public Allocator {
 public:
  Device device() const override { return Device::Cpu(0); }

  absl::StatusOr<void*> Allocate(size_t bytes) override {
    size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* ptr = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
    if (ptr == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("host allocation of ", bytes, " bytes failed"));
    }
    return ptr;
  }

  void Deallocate(void* ptr, size_t) override { std::free(ptr); }
};

}  // namespace

Allocator& CpuAllocator() {
  static HostAllocator* allocator = new HostAllocator;
  return *allocator;
}

}  // namespace meshtrain
