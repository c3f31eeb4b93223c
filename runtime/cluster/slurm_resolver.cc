#include "runtime/cluster/slurm_resolver.h"

#include <numeric>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"
#include "runtime/cluster/hostlist.h"

namespace meshtrain {
namespace {

constexpr absl::string_view kSetBySrun =
    "srun sets these variables: start each task with 'srun -n N meshtrain train ...' and do not "
    "set them by hand";

absl::Status SlurmError(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("Slurm environment: ", what, "; ", kSetBySrun));
}

// The first of `names` that is set, with its name; nullopt when none is.
std::optional<std::pair<std::string, std::string>> FirstSet(
    const EnvLookup& env, std::initializer_list<absl::string_view> names) {
  for (absl::string_view name : names) {
    if (std::optional<std::string> value = env(name))
      return std::make_pair(std::string(name), *value);
  }
  return std::nullopt;
}

absl::StatusOr<int> ReadInt(const EnvLookup& env, std::initializer_list<absl::string_view> names) {
  auto found = FirstSet(env, names);
  if (!found) return SlurmError(absl::StrCat(*names.begin(), " is not set"));
  int value = 0;
  if (!absl::SimpleAtoi(found->second, &value) || value < 0) {
    return SlurmError(absl::StrCat(found->first, "=", QuoteForMessage(found->second),
                                   " is not a non-negative integer"));
  }
  return value;
}

// Nodes and tasks per node, step variables first, then the job's.
absl::Status ReadLayout(const EnvLookup& env, SlurmPlacement& p) {
  auto nodelist = FirstSet(env, {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"});
  if (!nodelist) return SlurmError("SLURM_STEP_NODELIST is not set (nor SLURM_JOB_NODELIST)");
  p.nodelist_variable = nodelist->first;
  p.nodelist = nodelist->second;
  absl::StatusOr<std::vector<std::string>> nodes = ExpandHostlist(nodelist->second);
  if (!nodes.ok())
    return Annotate(nodes.status(), absl::StrCat("Slurm environment: ", nodelist->first));
  p.nodes = *std::move(nodes);
  auto tasks = FirstSet(env, {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"});
  if (!tasks) return SlurmError("SLURM_STEP_TASKS_PER_NODE is not set (nor SLURM_TASKS_PER_NODE)");
  absl::StatusOr<std::vector<int>> counts = ExpandTasksPerNode(tasks->second);
  if (!counts.ok())
    return Annotate(counts.status(), absl::StrCat("Slurm environment: ", tasks->first));
  p.tasks_per_node = *std::move(counts);
  if (p.nodes.size() < p.tasks_per_node.size()) {
    return SlurmError(absl::StrCat(tasks->first, "=", QuoteForMessage(tasks->second), " counts ",
                                   p.tasks_per_node.size(), " nodes but ", nodelist->first, "=",
                                   QuoteForMessage(nodelist->second), " names ", p.nodes.size()));
  }
  // Slurm lists the job's nodes; a step may use only the first of them.
  p.nodes.resize(p.tasks_per_node.size());
  const int total = std::accumulate(p.tasks_per_node.begin(), p.tasks_per_node.end(), 0);
  if (total != p.size) {
    return SlurmError(absl::StrCat("SLURM_NTASKS=", p.size, " but ", tasks->first, "=",
                                   QuoteForMessage(tasks->second), " adds up to ", total,
                                   " tasks"));
  }
  return absl::OkStatus();
}

// The node of `rank` and its local rank there under block distribution.
std::pair<int, int> BlockPosition(const std::vector<int>& tasks_per_node, int rank) {
  int first = 0;
  for (int node = 0; node < static_cast<int>(tasks_per_node.size()); ++node) {
    if (rank < first + tasks_per_node[node]) return {node, rank - first};
    first += tasks_per_node[node];
  }
  return {-1, -1};
}

}  // namespace

bool RunningUnderSlurmStep(const EnvLookup& env) {
  return env("SLURM_PROCID").has_value() && env("SLURM_STEP_ID").has_value();
}

absl::StatusOr<SlurmPlacement> SlurmPlacementFromEnvironment(const EnvLookup& env) {
  if (!RunningUnderSlurmStep(env)) {
    return absl::FailedPreconditionError(
        "Slurm environment: not a task of a job step (SLURM_PROCID and SLURM_STEP_ID are not both "
        "set); start with 'srun -n N meshtrain train ...' inside an allocation");
  }
  SlurmPlacement p;
  MESHTRAIN_ASSIGN_OR_RETURN(p.rank, ReadInt(env, {"SLURM_PROCID"}));
  MESHTRAIN_ASSIGN_OR_RETURN(p.size, ReadInt(env, {"SLURM_NTASKS", "SLURM_STEP_NUM_TASKS"}));
  MESHTRAIN_ASSIGN_OR_RETURN(p.local_rank, ReadInt(env, {"SLURM_LOCALID"}));
  if (p.size < 1) return SlurmError(absl::StrCat("SLURM_NTASKS=", p.size, " must be at least 1"));
  if (p.rank >= p.size) {
    return SlurmError(absl::StrCat("SLURM_PROCID=", p.rank, " is out of range for SLURM_NTASKS=",
                                   p.size, " (ranks 0..", p.size - 1, ")"));
  }
  MESHTRAIN_RETURN_IF_ERROR(ReadLayout(env, p));
  const auto [node, local] = BlockPosition(p.tasks_per_node, p.rank);
  if (local != p.local_rank) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Slurm environment: SLURM_PROCID=", p.rank, " has SLURM_LOCALID=", p.local_rank,
        " but block distribution over ", p.nodelist_variable, "=", QuoteForMessage(p.nodelist),
        " puts it at local rank ", local, " on ", p.nodes[node],
        "; meshtrain needs Slurm's block distribution: run srun with --distribution=block"));
  }
  return p;
}

absl::StatusOr<std::vector<std::string>> SlurmTaskAddresses(const SlurmPlacement& placement,
                                                            int port_base) {
  int most_per_node = 0;
  for (int count : placement.tasks_per_node) most_per_node = std::max(most_per_node, count);
  if (port_base < 1 || port_base + most_per_node - 1 > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("Slurm cluster: --port-base ", port_base, " with up to ", most_per_node,
                     " tasks per node needs ports ", port_base, "..", port_base + most_per_node - 1,
                     "; use a port base in 1..", 65536 - most_per_node));
  }
  std::vector<std::string> addresses;
  for (size_t node = 0; node < placement.tasks_per_node.size(); ++node) {
    for (int local = 0; local < placement.tasks_per_node[node]; ++local) {
      addresses.push_back(JoinHostPort(placement.nodes[node], port_base + local));
    }
  }
  return addresses;
}

absl::StatusOr<ClusterConfig> ClusterConfigFromSlurm(const SlurmPlacement& placement,
                                                     const SlurmOptions& options) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<std::string> addresses,
                             SlurmTaskAddresses(placement, options.port_base));
  return ClusterConfigByRank(addresses, placement.rank, options.roles, "Slurm cluster");
}

}  // namespace meshtrain
