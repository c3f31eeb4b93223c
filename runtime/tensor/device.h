// Where a tensor's bytes live and where kernels run: "cpu:0", "gpu:1". A CPU
// replica is a thread with its own buffers; a GPU replica is a CUDA device (or a
// logical slice of one). Value type.
#ifndef MESHTRAIN_RUNTIME_TENSOR_DEVICE_H_
#define MESHTRAIN_RUNTIME_TENSOR_DEVICE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

enum class DeviceType { kCpu, kGpu };

struct Device {
  DeviceType type = DeviceType::kCpu;
  int index = 0;

  static Device Cpu(int index = 0) { return {DeviceType::kCpu, index}; }
  static Device Gpu(int index) { return {DeviceType::kGpu, index}; }
  bool is_cpu() const { return type == DeviceType::kCpu; }
  std::string ToString() const;  // "cpu:0"
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

// "cpu:0", "gpu:1", "/device:GPU:1" (TensorFlow's spelling) or "cpu" (index 0).
absl::StatusOr<Device> ParseDevice(absl::string_view text);
// A comma-separated list ("cpu:0,cpu:1"), or a count ("2" means cpu:0,cpu:1).
// Rejects duplicates and empty lists.
absl::StatusOr<std::vector<Device>> ParseDeviceList(absl::string_view text);

// Whether `devices` is a non-empty list of GPUs only; whether it holds any GPU.
bool AllGpus(const std::vector<Device>& devices);
bool AnyGpu(const std::vector<Device>& devices);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_DEVICE_H_
