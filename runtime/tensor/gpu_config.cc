#include "runtime/tensor/gpu_config.h"

#include <cmath>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"

namespace meshtrain {
namespace {

struct ProcessGpuConfig {
  absl::Mutex mu;
  GpuConfig config ABSL_GUARDED_BY(mu);
  bool frozen ABSL_GUARDED_BY(mu) = false;
};

ProcessGpuConfig& Process() {
  static ProcessGpuConfig* state = new ProcessGpuConfig;
  return *state;
}

absl::Status Validate(const GpuConfig& config) {
  if (config.logical_per_physical < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--logical-gpus ", config.logical_per_physical,
                                                   ": use 1 or more logical GPUs per GPU"));
  }
  if (config.first_physical < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("first CUDA device ", config.first_physical, " must be >= 0"));
  }
  if (config.memory_limit_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--gpu-memory-limit ", config.memory_limit_bytes,
                                                   " must be >= 0 (0: no limit)"));
  }
  return absl::OkStatus();
}

bool SameConfig(const GpuConfig& a, const GpuConfig& b) {
  return a.logical_per_physical == b.logical_per_physical && a.first_physical == b.first_physical &&
         a.memory_limit_bytes == b.memory_limit_bytes;
}

}  // namespace

std::string GpuConfig::ToString() const {
  std::string text =
      absl::StrCat(logical_per_physical, " logical per GPU, from CUDA device ", first_physical);
  if (memory_limit_bytes > 0) absl::StrAppend(&text, ", limit ", memory_limit_bytes, " bytes");
  return text;
}

absl::StatusOr<GpuPlacement> PlaceGpu(const GpuConfig& config, int index, int visible_devices) {
  if (absl::Status status = Validate(config); !status.ok()) return status;
  if (index < 0) return absl::InvalidArgumentError(absl::StrCat("gpu:", index, " is not a device"));
  GpuPlacement placement;
  placement.slices = config.logical_per_physical;
  placement.physical = config.first_physical + index / config.logical_per_physical;
  placement.slice = index % config.logical_per_physical;
  placement.memory_limit_bytes = config.memory_limit_bytes / config.logical_per_physical;
  if (placement.physical >= visible_devices) {
    std::string why =
        absl::StrCat("gpu:", index, " needs CUDA device ", placement.physical, " but ",
                     visible_devices, visible_devices == 1 ? " is" : " are", " visible");
    if (config.logical_per_physical > 1) {
      absl::StrAppend(&why, " (--logical-gpus ", config.logical_per_physical, " gives gpu:0..gpu:",
                      (visible_devices - config.first_physical) * config.logical_per_physical - 1,
                      ")");
    }
    if (config.first_physical > 0) {
      absl::StrAppend(&why, " (this process starts at CUDA device ", config.first_physical,
                      ", its local rank under mpirun)");
    }
    absl::StrAppend(&why,
                    "; list fewer devices in --devices, raise --logical-gpus, or check "
                    "CUDA_VISIBLE_DEVICES");
    return absl::FailedPreconditionError(why);
  }
  return placement;
}

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text, absl::string_view flag) {
  std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  absl::string_view rest = lower;
  struct Unit {
    absl::string_view suffix;
    double scale;
  };
  // Longest suffixes first, so "gib" is not read as "b".
  const Unit units[] = {{"kib", 1024.0},
                        {"mib", 1024.0 * 1024},
                        {"gib", 1024.0 * 1024 * 1024},
                        {"tib", 1024.0 * 1024 * 1024 * 1024},
                        {"kb", 1e3},
                        {"mb", 1e6},
                        {"gb", 1e9},
                        {"tb", 1e12},
                        {"k", 1024.0},
                        {"m", 1024.0 * 1024},
                        {"g", 1024.0 * 1024 * 1024},
                        {"b", 1.0}};
  double scale = 1.0;
  for (const Unit& unit : units) {
    if (absl::ConsumeSuffix(&rest, unit.suffix)) {
      scale = unit.scale;
      break;
    }
  }
  rest = absl::StripAsciiWhitespace(rest);
  double value = 0;
  if (!absl::SimpleAtod(rest, &value) || !std::isfinite(value) || value < 0 ||
      value * scale > 9.0e18) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, " '", text, "': expected a size such as 8GiB, 512MiB, 1.5GB or 0 (no limit)"));
  }
  return static_cast<int64_t>(std::llround(value * scale));
}

absl::Status SetGpuConfig(const GpuConfig& config) {
  if (absl::Status status = Validate(config); !status.ok()) return status;
  ProcessGpuConfig& process = Process();
  absl::MutexLock lock(&process.mu);
  if (process.frozen && !SameConfig(process.config, config)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "GPU configuration (", config.ToString(), ") set after a GPU was used under (",
        process.config.ToString(), "); set it once at start-up, before creating devices"));
  }
  process.config = config;
  return absl::OkStatus();
}

GpuConfig CurrentGpuConfig() {
  ProcessGpuConfig& process = Process();
  absl::MutexLock lock(&process.mu);
  return process.config;
}

GpuConfig FreezeGpuConfig() {
  ProcessGpuConfig& process = Process();
  absl::MutexLock lock(&process.mu);
  process.frozen = true;
  return process.config;
}

}  // namespace meshtrain
