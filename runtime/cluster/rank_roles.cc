#include "runtime/cluster/rank_roles.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"

namespace meshtrain {
namespace {

absl::Status CheckAddresses(absl::Span<const std::string> addresses, absl::string_view source) {
  std::map<std::string, int> owner;  // canonical address -> first rank with it
  for (int r = 0; r < static_cast<int>(addresses.size()); ++r) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(addresses[r]);
    if (!parsed.ok()) return Annotate(parsed.status(), absl::StrCat(source, ": rank ", r));
    auto [where, inserted] = owner.emplace(parsed->Canonical(), r);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": ranks ", where->second, " and ", r, " both have address ",
          QuoteForMessage(parsed->Canonical()),
          "; every rank needs its own host:port (one task per port: check --port-base and the "
          "tasks per node)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ClusterConfig> ClusterConfigByRank(absl::Span<const std::string> addresses, int rank,
                                                  const RankRoles& roles,
                                                  absl::string_view source) {
  const int size = static_cast<int>(addresses.size());
  if (rank < 0 || rank >= size) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": rank ", rank, " is out of range for ", size, " tasks"));
  }
  const int num_evaluators = roles.evaluator ? 1 : 0;
  if (roles.num_ps < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": --ps ", roles.num_ps, " is negative; use 0 or more"));
  }
  const int num_workers = size - roles.num_ps - num_evaluators;
  if (num_workers < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": --ps ", roles.num_ps, roles.evaluator ? " and --evaluator leave" : " leaves",
        " no worker among ", size, size == 1 ? " task" : " tasks",
        "; start more tasks or use at most --ps ", size - 1 - num_evaluators));
  }
  MESHTRAIN_RETURN_IF_ERROR(CheckAddresses(addresses, source));
  // TensorFlow's order: jobs sorted by name take consecutive ranks.
  const std::pair<absl::string_view, int> layout[] = {
      {kEvaluatorJob, num_evaluators}, {kPsJob, roles.num_ps}, {kWorkerJob, num_workers}};
  std::map<std::string, std::vector<std::string>> jobs;
  ClusterConfig config;
  int first = 0;
  for (const auto& [job, count] : layout) {
    if (count == 0) continue;
    jobs[std::string(job)].assign(addresses.begin() + first, addresses.begin() + first + count);
    if (rank >= first && rank < first + count) config.task = TaskId{std::string(job), rank - first};
    first += count;
  }
  config.cluster = ClusterSpec(std::move(jobs));
  return config;
}

}  // namespace meshtrain
