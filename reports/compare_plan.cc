#include "reports/compare_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace meshtrain {

std::vector<std::string> CompareStrategyNames() {
  return {"one_device", "mirrored", "central_storage", "multi_worker_mirrored", "parameter_server"};
}

absl::StatusOr<StrategyLaunch> PlanStrategyLaunch(absl::string_view strategy, const CompareShape& shape) {
  StrategyLaunch launch;
  launch.strategy = std::string(strategy);
  if (strategy == "one_device") {
    launch.devices = "cpu:0";
    launch.description = "1 process, 1 replica";
    return launch;
  }
  if (strategy == "mirrored" || strategy == "central_storage") {
    if (shape.devices.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(strategy, " needs --devices (a count or a list)"));
    }
    launch.devices = shape.devices;
    const bool count = std::all_of(shape.devices.begin(), shape.devices.end(),
                                   [](char c) { return c >= '0' && c <= '9'; });
    launch.description = count ? absl::StrCat("1 process, ", shape.devices, " replicas")
                               : absl::StrCat("1 process on ", shape.devices);
    return launch;
  }
  if (strategy == "multi_worker_mirrored" || strategy == "parameter_server") {
    const bool ps = strategy == "parameter_server";
    if (shape.workers < 1 || (ps && shape.ps < 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          strategy, " needs --workers >= 1", ps ? " and --ps >= 1" : "", ", got --workers ", shape.workers,
          ps ? absl::StrCat(" --ps ", shape.ps) : ""));
    }
    launch.cluster = true;
    launch.workers = shape.workers;
    launch.ps = ps ? shape.ps : 0;
    launch.description = ps ? absl::StrCat(shape.workers, " workers + ", shape.ps, " ps")
                            : absl::StrCat(shape.workers, " worker processes");
    return launch;
  }
  return absl::InvalidArgumentError(absl::StrCat("compare: strategy '", strategy, "' is unknown; use ",
                                                 absl::StrJoin(CompareStrategyNames(), ", ")));
}

absl::StatusOr<std::vector<std::string>> ParseStrategyList(absl::string_view list) {
  std::vector<std::string> names;
  const std::vector<std::string> known = CompareStrategyNames();
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    const std::string name(absl::StripAsciiWhitespace(part));
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--strategies: '", name, "' is unknown; use ",
                                                     absl::StrJoin(known, ",")));
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--strategies lists '", name, "' twice"));
    }
    names.push_back(name);
  }
  if (names.empty()) return absl::InvalidArgumentError("--strategies is empty");
  return names;
}

}  // namespace meshtrain
