#include "runtime/ps/placement.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

int64_t RowsOf(const VariableSpec& spec) { return spec.shape.rank() == 0 ? 1 : spec.shape.dim(0); }

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

absl::StatusOr<PlacementPolicy> ParsePlacementPolicy(absl::string_view name) {
  if (name == "round_robin") return PlacementPolicy::kRoundRobin;
  if (name == "greedy") return PlacementPolicy::kGreedy;
  return absl::InvalidArgumentError(
      absl::StrCat("placement '", name, "' is unknown: use round_robin or greedy"));
}

absl::string_view PlacementPolicyName(PlacementPolicy policy) {
  return policy == PlacementPolicy::kGreedy ? "greedy" : "round_robin";
}

int NumPartitions(int64_t bytes, int64_t rows, int num_ps, const PartitionOptions& options) {
  int64_t n = 1;
  if (options.max_shard_bytes > 0 && bytes > options.max_shard_bytes && rows > 0) {
    // Rows are indivisible: bound the rows per partition, not the bytes.
    const int64_t row_bytes = std::max<int64_t>(1, bytes / rows);
    const int64_t max_rows = std::max<int64_t>(1, options.max_shard_bytes / row_bytes);
    n = CeilDiv(rows, max_rows);
    const int64_t even = CeilDiv(n, num_ps) * num_ps;
    if (even <= rows) n = even;
  }
  if (options.fixed_shards > 1) {
    int64_t fixed = options.fixed_shards;
    if (options.min_shard_bytes > 0) fixed = std::min(fixed, bytes / options.min_shard_bytes);
    n = std::max(n, fixed);
  }
  return static_cast<int>(std::clamp<int64_t>(n, 1, std::max<int64_t>(1, rows)));
}

std::vector<std::pair<int64_t, int64_t>> SplitRows(int64_t rows, int n) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  int64_t begin = 0;
  for (int i = 0; i < n; ++i) {
    const int64_t size = rows / n + (i < rows % n ? 1 : 0);
    ranges.emplace_back(begin, size);
    begin += size;
  }
  return ranges;
}

absl::Status ValidatePlacementOptions(const PlacementOptions& options) {
  const PartitionOptions& p = options.partitioning;
  if (options.num_ps < 1) {
    return absl::InvalidArgumentError(
        "parameter_server needs at least one ps task: list them in TF_CONFIG or pass --ps N to "
        "launch");
  }
  if (p.fixed_shards < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("strategy.fixed_shards: ", p.fixed_shards, " < 0 (0: no fixed partitioning)"));
  }
  if (p.min_shard_bytes < 0 || p.max_shard_bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat("strategy.min_shard_bytes (", p.min_shard_bytes,
                                                   ") and max_shard_bytes (", p.max_shard_bytes,
                                                   ") must be >= 0"));
  }
  if (p.max_shard_bytes > 0 && p.min_shard_bytes > p.max_shard_bytes && p.fixed_shards > 0) {
    return absl::InvalidArgumentError(absl::StrCat("strategy.min_shard_bytes ", p.min_shard_bytes,
                                                   " exceeds max_shard_bytes ", p.max_shard_bytes,
                                                   ": no partition size satisfies both"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Placement> PlaceVariables(const std::vector<VariableSpec>& specs,
                                         const PlacementOptions& options) {
  MESHTRAIN_RETURN_IF_ERROR(ValidatePlacementOptions(options));
  std::vector<Partition> partitions;
  for (int v = 0; v < static_cast<int>(specs.size()); ++v) {
    const int64_t rows = RowsOf(specs[v]);
    const int64_t row_bytes = rows == 0 ? 0 : static_cast<int64_t>(specs[v].bytes()) / rows;
    const int n = NumPartitions(static_cast<int64_t>(specs[v].bytes()), rows, options.num_ps,
                                options.partitioning);
    int index = 0;
    for (const auto& [begin, size] : SplitRows(rows, n)) {
      partitions.push_back(Partition{v, index++, begin, size, size * row_bytes, 0});
    }
  }
  if (options.policy == PlacementPolicy::kRoundRobin) {
    for (size_t i = 0; i < partitions.size(); ++i) {
      partitions[i].ps = static_cast<int>(i % options.num_ps);
    }
  } else {
    std::vector<size_t> order(partitions.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return partitions[a].bytes > partitions[b].bytes; });
    std::vector<int64_t> load(options.num_ps, 0);
    for (size_t i : order) {
      const int ps = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
      partitions[i].ps = ps;
      load[ps] += partitions[i].bytes;
    }
  }
  return Placement::Create(specs, options.num_ps, std::move(partitions));
}

absl::StatusOr<Placement> Placement::Create(const std::vector<VariableSpec>& specs, int num_ps,
                                            std::vector<Partition> partitions) {
  Placement placement;
  placement.num_ps_ = num_ps;
  size_t p = 0;
  for (int v = 0; v < static_cast<int>(specs.size()); ++v) {
    placement.first_.push_back(static_cast<int>(p));
    const std::string what =
        absl::StrCat("placement of ", specs[v].name, specs[v].shape.ToString());
    const int64_t rows = RowsOf(specs[v]);
    const int64_t row_bytes = rows == 0 ? 0 : static_cast<int64_t>(specs[v].bytes()) / rows;
    int64_t next_row = 0;
    int index = 0;
    while (p < partitions.size() && partitions[p].variable == v) {
      const Partition& part = partitions[p];
      if (part.index != index || part.row_begin != next_row || part.rows < 0 ||
          part.bytes != part.rows * row_bytes) {
        return absl::InvalidArgumentError(absl::StrCat(what, ": partition ", part.index, " (rows [",
                                                       part.row_begin, ", ", part.row_end(), "), ",
                                                       part.bytes, " B) does not follow partition ",
                                                       index - 1, " ending at row ", next_row));
      }
      if (part.ps < 0 || part.ps >= num_ps) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": partition ", part.index, " on ps:", part.ps, " of ", num_ps));
      }
      next_row = part.row_end();
      ++index;
      ++p;
    }
    if (index == 0 || next_row != rows) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": partitions cover rows [0, ", next_row, ") of ", rows));
    }
  }
  if (p != partitions.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "placement: partition of variable ", partitions[p].variable,
        " out of order or for a variable the model does not have (", specs.size(), " variables)"));
  }
  placement.first_.push_back(static_cast<int>(p));
  placement.partitions_ = std::move(partitions);
  return placement;
}

absl::Span<const Partition> Placement::PartitionsOf(int variable) const {
  return absl::MakeConstSpan(partitions_)
      .subspan(first_[variable], first_[variable + 1] - first_[variable]);
}

const Partition& Placement::PartitionOfRow(int variable, int64_t row) const {
  absl::Span<const Partition> parts = PartitionsOf(variable);
  auto it = std::upper_bound(parts.begin(), parts.end(), row,
                             [](int64_t r, const Partition& p) { return r < p.row_begin; });
  MESHTRAIN_CHECK(it != parts.begin()) << "row " << row << " of variable " << variable;
  --it;
  MESHTRAIN_CHECK(row < it->row_end() || (it->rows == 0 && row == 0))
      << "row " << row << " beyond variable " << variable;
  return *it;
}

std::vector<int64_t> Placement::ps_bytes() const {
  std::vector<int64_t> bytes(num_ps_, 0);
  for (const Partition& p : partitions_) bytes[p.ps] += p.bytes;
  return bytes;
}

std::string Placement::Describe(const std::vector<VariableSpec>& specs,
                                const std::vector<int>& ps_tasks) const {
  auto task = [&](int ps) { return ps < static_cast<int>(ps_tasks.size()) ? ps_tasks[ps] : ps; };
  std::string text;
  for (int v = 0; v < static_cast<int>(specs.size()); ++v) {
    absl::StrAppend(&text, "  ", specs[v].name, " ", specs[v].shape.ToString(), " ",
                    specs[v].bytes(), " B:");
    absl::Span<const Partition> parts = PartitionsOf(v);
    for (const Partition& p : parts) {
      absl::StrAppend(&text, " ps:", task(p.ps));
      if (parts.size() > 1) absl::StrAppend(&text, " rows [", p.row_begin, ", ", p.row_end(), ")");
      if (&p != &parts.back()) absl::StrAppend(&text, ",");
    }
    absl::StrAppend(&text, "\n");
  }
  const std::vector<int64_t> bytes = ps_bytes();
  absl::StrAppend(&text, "  bytes per ps:");
  for (int ps = 0; ps < num_ps_; ++ps) absl::StrAppend(&text, " ps:", task(ps), " ", bytes[ps]);
  return text;
}

}  // namespace meshtrain
