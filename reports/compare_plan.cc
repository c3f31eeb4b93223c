#include "reports/compare_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace meshtrain {

namespace {

// The strategies compare knows, in its default order, with their chart colours.
struct KnownStrategy {
  const char* name;
  const char* color;
};
constexpr KnownStrategy kKnownStrategies[] = {
    {"one_device", "#4c78a8"},       {"mirrored", "#f58518"},
    {"central_storage", "#54a24b"},  {"multi_worker_mirrored", "#b279a2"},
    {"parameter_server", "#e45756"},
};

}  // namespace

std::vector<std::string> CompareStrategyNames() {
  std::vector<std::string> names;
  for (const KnownStrategy& s : kKnownStrategies) names.push_back(s.name);
  return names;
}

absl::StatusOr<StrategyLaunch> PlanStrategyLaunch(absl::string_view strategy,
                                                  const CompareShape& shape) {
  StrategyLaunch launch;
  launch.strategy = std::string(strategy);
  if (strategy == "one_device") {
    launch.devices = "cpu:0";
    launch.description = "1 process, 1 replica";
    return launch;
  }
  if (strategy == "mirrored" || strategy == "central_storage") {
    if (shape.devices.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(strategy, " needs --devices (a count or a list)"));
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
          strategy, " needs --workers >= 1", ps ? " and --ps >= 1" : "", ", got --workers ",
          shape.workers, ps ? absl::StrCat(" --ps ", shape.ps) : ""));
    }
    launch.cluster = true;
    launch.workers = shape.workers;
    launch.ps = ps ? shape.ps : 0;
    launch.description = ps ? absl::StrCat(shape.workers, " workers + ", shape.ps, " ps")
                            : absl::StrCat(shape.workers, " worker processes");
    return launch;
  }
  return absl::InvalidArgumentError(absl::StrCat("compare: strategy '", strategy,
                                                 "' is unknown; use ",
                                                 absl::StrJoin(CompareStrategyNames(), ", ")));
}

absl::StatusOr<std::vector<std::string>> ParseStrategyList(absl::string_view list) {
  std::vector<std::string> names;
  const std::vector<std::string> known = CompareStrategyNames();
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    const std::string name(absl::StripAsciiWhitespace(part));
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--strategies: '", name, "' is unknown; use ", absl::StrJoin(known, ",")));
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--strategies lists '", name, "' twice"));
    }
    names.push_back(name);
  }
  if (names.empty()) return absl::InvalidArgumentError("--strategies is empty");
  return names;
}

std::string StrategyColor(const std::string& strategy, int index) {
  for (const KnownStrategy& s : kKnownStrategies) {
    if (strategy == s.name) return s.color;
  }
  static constexpr const char* kOthers[] = {"#72b7b2", "#eeca3b", "#9d755d", "#ff9da6", "#79706e"};
  return kOthers[static_cast<size_t>(std::max(0, index)) % (sizeof(kOthers) / sizeof(kOthers[0]))];
}

}  // namespace meshtrain
