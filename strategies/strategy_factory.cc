#include "strategies/strategy_factory.h"

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/tensor/cpu_kernels.h"
#include "strategies/one_device.h"

namespace meshtrain {

absl::StatusOr<std::unique_ptr<Strategy>> CreateStrategy(const StrategyConfig& config,
                                                         const StrategyEnvironment& env) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<Device> devices, ParseDeviceList(config.devices));
  if (config.name == "one_device") {
    if (devices.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "one_device runs on one device, but --devices lists ", devices.size(),
          "; use --strategy mirrored for several"));
    }
    SetBlasThreads(env.threads);
    return OneDeviceStrategy::Create(devices[0], *env.optimizer, env.seed);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "strategy '", config.name,
      "' is unknown: use one_device, mirrored, central_storage, multi_worker_mirrored or "
      "parameter_server"));
}

}  // namespace meshtrain
