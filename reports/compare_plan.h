// How `meshtrain compare` launches each strategy on this machine; the only
// place the command tells strategies apart:
//   one_device                       one process, --devices cpu:0
//   mirrored, central_storage        one process, --devices D (default 2)
//   multi_worker_mirrored            a local cluster of N workers
//   parameter_server                 a local cluster of N workers and M ps tasks
// One-process strategies run `meshtrain train` without TF_CONFIG; clusters run
// one `meshtrain train` per task, as `meshtrain launch` does. Pure; thread-safe.
#ifndef MESHTRAIN_REPORTS_COMPARE_PLAN_H_
#define MESHTRAIN_REPORTS_COMPARE_PLAN_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

struct CompareShape {
  int workers = 2;            // --workers
  int ps = 1;                 // --ps
  std::string devices = "2";  // --devices of the one-process multi-replica strategies
};

struct StrategyLaunch {
  std::string strategy;
  bool cluster = false;  // false: one process without TF_CONFIG
  int workers = 1;
  int ps = 0;
  std::string devices;      // --devices for each process; "" keeps the config's
  std::string description;  // "1 process, 2 replicas", "2 workers + 1 ps"
};

// The strategies compare knows, in the order it runs them by default.
std::vector<std::string> CompareStrategyNames();

// The report's speed-ups are relative to this strategy where it ran.
inline constexpr absl::string_view kSpeedupBaseline = "one_device";

// A strategy's colour in the report's charts: fixed for the strategies compare
// knows, else the `index`-th of a few others.
std::string StrategyColor(const std::string& strategy, int index);

// kInvalidArgument for an unknown name or a shape that cannot run it.
absl::StatusOr<StrategyLaunch> PlanStrategyLaunch(absl::string_view strategy,
                                                  const CompareShape& shape);

// "a,b,c" -> names, each known and listed once (else kInvalidArgument naming it).
absl::StatusOr<std::vector<std::string>> ParseStrategyList(absl::string_view list);

}  // namespace meshtrain

#endif  // MESHTRAIN_REPORTS_COMPARE_PLAN_H_
