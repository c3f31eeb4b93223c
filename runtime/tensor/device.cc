#include "runtime/tensor/device.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace meshtrain {

std::string Device::ToString() const {
  return absl::StrCat(type == DeviceType::kCpu ? "cpu:" : "gpu:", index);
}

absl::StatusOr<Device> ParseDevice(absl::string_view text) {
  std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  absl::string_view rest = lower;
  absl::ConsumePrefix(&rest, "/device:");
  Device device;
  if (absl::ConsumePrefix(&rest, "cpu")) {
    device.type = DeviceType::kCpu;
  } else if (absl::ConsumePrefix(&rest, "gpu") || absl::ConsumePrefix(&rest, "cuda")) {
    device.type = DeviceType::kGpu;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "device '", text, "': expected cpu:N or gpu:N (for example --devices cpu:0,cpu:1)"));
  }
  if (rest.empty()) return device;
  if (!absl::ConsumePrefix(&rest, ":") || !absl::SimpleAtoi(rest, &device.index) ||
      device.index < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("device '", text, "': the index after ':' must be a number >= 0"));
  }
  return device;
}

absl::StatusOr<std::vector<Device>> ParseDeviceList(absl::string_view text) {
  std::vector<Device> devices;
  int count = 0;
  if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &count)) {
    if (count < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--devices ", text, ": the device count must be at least 1"));
    }
    for (int i = 0; i < count; ++i) devices.push_back(Device::Cpu(i));
    return devices;
  }
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    auto device = ParseDevice(part);
    if (!device.ok()) return device.status();
    if (std::find(devices.begin(), devices.end(), *device) != devices.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--devices ", text, ": ", device->ToString(), " is listed twice"));
    }
    devices.push_back(*device);
  }
  if (devices.empty()) {
    return absl::InvalidArgumentError("--devices is empty: give a list (cpu:0,cpu:1) or a count");
  }
  return devices;
}

bool AllGpus(const std::vector<Device>& devices) {
  return !devices.empty() &&
         std::all_of(devices.begin(), devices.end(), [](const Device& d) { return !d.is_cpu(); });
}

bool AnyGpu(const std::vector<Device>& devices) {
  return std::any_of(devices.begin(), devices.end(), [](const Device& d) { return !d.is_cpu(); });
}

}  // namespace meshtrain
