// Placement: which ps task holds which rows of which variable, decided as
// TensorFlow's replica_device_setter and variable partitioners do, by pure
// functions of the variables' specs and the options (every task derives the
// same answer; the chief publishes it, see ps_plan.h).
//
// Partitioning (along the first dimension; a variable of R rows and B bytes):
//   - max_shard_bytes M > 0: the fewest partitions none of which exceeds M
//     (a partition holds at least one row), rounded up to a multiple of the number of ps tasks
//     where the rows allow, so a large variable spreads evenly over them;
//   - fixed_shards N > 0: n = max(n, N), but never partitions below
//     min_shard_bytes: a small variable stays whole;
//   - otherwise n = 1. Always 1 <= n <= R.
//   Rows split as evenly as possible; earlier partitions take the extra rows.
// Placing partitions on ps tasks:
//   - round_robin (the default): in declaration order, partition by partition,
//     ps 0, 1, ..., as replica_device_setter does;
//   - greedy: largest partition first (ties in declaration order), each to the
//     ps holding the fewest bytes so far (ties: the lowest index).
// Value types; the functions are pure.
#ifndef MESHTRAIN_RUNTIME_PS_PLACEMENT_H_
#define MESHTRAIN_RUNTIME_PS_PLACEMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "runtime/model/variable.h"

namespace meshtrain {

enum class PlacementPolicy { kRoundRobin, kGreedy };

// "round_robin" | "greedy"; InvalidArgument naming the choices otherwise.
absl::StatusOr<PlacementPolicy> ParsePlacementPolicy(absl::string_view name);
absl::string_view PlacementPolicyName(PlacementPolicy policy);

struct PartitionOptions {
  int fixed_shards = 0;
  int64_t min_shard_bytes = 256 << 10;
  int64_t max_shard_bytes = 0;  // 0: no limit
};

struct PlacementOptions {
  int num_ps = 1;
  PlacementPolicy policy = PlacementPolicy::kRoundRobin;
  PartitionOptions partitioning;
};

// Rows [row_begin, row_begin + rows) of variable `variable` (its index in the
// specs), the `index`-th partition of that variable, held by ps task `ps`.
struct Partition {
  int variable = 0;
  int index = 0;
  int64_t row_begin = 0;
  int64_t rows = 0;
  int64_t bytes = 0;  // value bytes (optimizer slots add as much again per slot)
  int ps = 0;

  int64_t row_end() const { return row_begin + rows; }
};

class Placement {
 public:
  Placement() = default;

  // Checks that `partitions` (grouped by variable, variables in order,
  // partitions in row order) cover every variable of `specs` exactly once and
  // name ps tasks in [0, num_ps). What a worker runs on a published plan.
  static absl::StatusOr<Placement> Create(const std::vector<VariableSpec>& specs, int num_ps,
                                          std::vector<Partition> partitions);

  int num_ps() const { return num_ps_; }
  const std::vector<Partition>& partitions() const { return partitions_; }
  // The partitions of `variable`, in row order.
  absl::Span<const Partition> PartitionsOf(int variable) const;
  // The partition holding `row` of `variable` (0 <= row < the variable's rows).
  const Partition& PartitionOfRow(int variable, int64_t row) const;
  // Value bytes held by each ps task, in task order.
  std::vector<int64_t> ps_bytes() const;
  // One line per variable: "dense_0/kernel [784, 300] 940800 B: ps:0 rows [0, 392), ps:1 rows [392,
  // 784)". `ps_tasks` names the ps task holding each ps index (empty: itself;
  // PsPlan::ps_tasks).
  std::string Describe(const std::vector<VariableSpec>& specs,
                       const std::vector<int>& ps_tasks = {}) const;

 private:
  int num_ps_ = 0;
  std::vector<Partition> partitions_;
  std::vector<int> first_;  // per variable, its first partition; plus the end
};

// How many partitions a variable of `rows` rows and `bytes` bytes gets (rules above).
int NumPartitions(int64_t bytes, int64_t rows, int num_ps, const PartitionOptions& options);

// `rows` split into `n` contiguous ranges (begin, size); earlier ones larger by one.
std::vector<std::pair<int64_t, int64_t>> SplitRows(int64_t rows, int n);

// InvalidArgument naming the field when the options make no sense (no ps
// task, negative sizes, min_shard_bytes above max_shard_bytes).
absl::Status ValidatePlacementOptions(const PlacementOptions& options);

absl::StatusOr<Placement> PlaceVariables(const std::vector<VariableSpec>& specs,
                                         const PlacementOptions& options);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_PS_PLACEMENT_H_
