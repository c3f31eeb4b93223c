#include "runtime/data/global_position.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace meshtrain {
namespace {

// Sorted, disjoint, non-adjacent ranges of the positions marked in `marks`.
std::vector<RowRange> RangesOf(const std::vector<bool>& marks) {
  std::vector<RowRange> ranges;
  const int64_t n = static_cast<int64_t>(marks.size());
  for (int64_t p = 0; p < n;) {
    if (!marks[p]) {
      ++p;
      continue;
    }
    int64_t end = p;
    while (end < n && marks[end]) ++end;
    ranges.push_back({p, end});
    p = end;
  }
  return ranges;
}

absl::Status Malformed(const std::string& what) {
  return absl::DataLossError(absl::StrCat("input.global: ", what));
}

}  // namespace

int64_t GlobalInputPosition::TrainedIn(int64_t e) const {
  if (e < epoch) return num_examples;
  auto it = trained.find(e);
  if (it == trained.end()) return 0;
  int64_t total = 0;
  for (const RowRange& r : it->second) total += r.size();
  return total;
}

bool GlobalInputPosition::IsTrained(int64_t e, int64_t position) const {
  if (e < epoch) return true;
  auto it = trained.find(e);
  if (it == trained.end()) return false;
  // The first range ending past `position`.
  const std::vector<RowRange>& ranges = it->second;
  auto r = std::upper_bound(ranges.begin(), ranges.end(), position,
                            [](int64_t p, const RowRange& range) { return p < range.end; });
  return r != ranges.end() && r->begin <= position;
}

bool GlobalInputPosition::operator==(const GlobalInputPosition& o) const {
  if (num_examples != o.num_examples || epoch != o.epoch || trained.size() != o.trained.size()) {
    return false;
  }
  for (const auto& [e, ranges] : trained) {
    auto it = o.trained.find(e);
    if (it == o.trained.end() || it->second.size() != ranges.size()) return false;
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (ranges[i].begin != it->second[i].begin || ranges[i].end != it->second[i].end) {
        return false;
      }
    }
  }
  return true;
}

bool InputLayout::operator==(const InputLayout& o) const {
  return own_files == o.own_files && num_shards == o.num_shards && tasks == o.tasks &&
         global_batch_size == o.global_batch_size && base == o.base;
}

absl::StatusOr<GlobalInputPosition> AdvanceGlobalPosition(
    const BatchSchedule& schedule, absl::Span<const InputPosition> next_by_shard) {
  const BatchScheduleOptions& options = schedule.options();
  if (static_cast<int>(next_by_shard.size()) != options.num_shards) {
    return absl::InvalidArgumentError(absl::StrCat("global input position: ", next_by_shard.size(),
                                                   " shard positions for ", options.num_shards,
                                                   " shards"));
  }
  for (const InputPosition& p : next_by_shard) {
    if (p.epoch < 0 || p.step < 0 || p.step > schedule.StepsInEpoch(p.epoch)) {
      return absl::InvalidArgumentError(absl::StrCat("global input position: epoch ", p.epoch,
                                                     " step ", p.step, " is outside the schedule"));
    }
  }
  GlobalInputPosition before;
  before.num_examples = options.num_examples;
  if (options.resume_from != nullptr) before = *options.resume_from;
  int64_t first = next_by_shard[0].epoch;
  int64_t last = first;
  for (const InputPosition& p : next_by_shard) {
    first = std::min(first, p.epoch);
    last = std::max(last, p.epoch);
  }
  GlobalInputPosition after;
  after.num_examples = options.num_examples;
  after.epoch = std::max(first, before.epoch);
  // Epochs that no shard is in any more and that the schedule did not skip
  // are done; the base's ranges of epochs past them stay.
  for (const auto& [e, ranges] : before.trained) {
    if (e > last) after.trained[e] = ranges;
  }
  // Every shard of the layout; ShardRows is relative to the shard.
  std::vector<BatchSchedule> shards;
  for (int w = 0; w < options.num_shards; ++w) {
    BatchScheduleOptions o = options;
    o.shard_index = w;
    absl::StatusOr<BatchSchedule> s = BatchSchedule::Create(o);
    if (!s.ok()) return s.status();
    shards.push_back(*std::move(s));
  }
  for (int64_t e = after.epoch; e <= last; ++e) {
    if (e < before.epoch) continue;  // done before this schedule started
    std::vector<bool> marks(static_cast<size_t>(options.num_examples), false);
    for (const RowRange& r : before.trained[e]) {
      std::fill(marks.begin() + r.begin, marks.begin() + r.end, true);
    }
    const std::vector<int64_t> positions = schedule.EpochPositions(e);
    const int64_t steps = schedule.StepsInEpoch(e);
    const int64_t g = options.global_batch_size;
    for (int w = 0; w < options.num_shards; ++w) {
      const InputPosition p = next_by_shard[w];
      const int64_t done = p.epoch > e ? steps : (p.epoch == e ? p.step : 0);
      for (int64_t k = 0; k < done; ++k) {
        const RowRange rows = shards[w].ShardRows(e, k);
        for (int64_t i = rows.begin; i < rows.end; ++i) marks[positions[k * g + i]] = true;
      }
    }
    std::vector<RowRange> ranges = RangesOf(marks);
    if (!ranges.empty()) after.trained[e] = std::move(ranges);
  }
  return after;
}

nlohmann::json GlobalPositionToJson(const GlobalInputPosition& position) {
  nlohmann::json trained = nlohmann::json::object();
  nlohmann::json examples = nlohmann::json::object();
  for (const auto& [e, ranges] : position.trained) {
    nlohmann::json list = nlohmann::json::array();
    for (const RowRange& r : ranges) {
      list.push_back(r.begin);
      list.push_back(r.end);
    }
    trained[absl::StrCat(e)] = std::move(list);
    examples[absl::StrCat(e)] = position.TrainedIn(e);
  }
  return {{"num_examples", position.num_examples},
          {"epoch", position.epoch},
          {"trained", std::move(trained)},
          {"examples", std::move(examples)}};
}

absl::StatusOr<GlobalInputPosition> GlobalPositionFromJson(const nlohmann::json& json) {
  GlobalInputPosition p;
  const auto integer = [&](const char* key, int64_t* out) -> absl::Status {
    if (!json.is_object() || !json.contains(key) || !json[key].is_number_integer()) {
      return Malformed(absl::StrCat("'", key, "' is missing or not an integer"));
    }
    *out = json[key].get<int64_t>();
    return absl::OkStatus();
  };
  absl::Status s = integer("num_examples", &p.num_examples);
  if (s.ok()) s = integer("epoch", &p.epoch);
  if (!s.ok()) return s;
  if (p.num_examples < 0 || p.epoch < 0) return Malformed("negative num_examples or epoch");
  if (!json.contains("trained") || !json["trained"].is_object()) {
    return Malformed("'trained' is missing or not an object");
  }
  for (const auto& [key, list] : json["trained"].items()) {
    int64_t e = 0;
    if (!absl::SimpleAtoi(key, &e) || e < p.epoch) {
      return Malformed(absl::StrCat("epoch '", key, "' is not a number at least ", p.epoch));
    }
    if (!list.is_array() || list.size() % 2 != 0) {
      return Malformed(absl::StrCat("epoch ", e, ": not a list of begin, end pairs"));
    }
    std::vector<RowRange>& ranges = p.trained[e];
    for (size_t i = 0; i < list.size(); i += 2) {
      if (!list[i].is_number_integer() || !list[i + 1].is_number_integer()) {
        return Malformed(absl::StrCat("epoch ", e, ": a range bound is not an integer"));
      }
      const RowRange range{list[i].get<int64_t>(), list[i + 1].get<int64_t>()};
      const int64_t previous_end = ranges.empty() ? -1 : ranges.back().end;
      if (range.begin <= previous_end || range.begin >= range.end || range.end > p.num_examples) {
        return Malformed(absl::StrCat("epoch ", e, ": range [", range.begin, ", ", range.end,
                                      ") is empty, out of [0, ", p.num_examples,
                                      "), or not after the previous one"));
      }
      ranges.push_back(range);
    }
    if (ranges.empty()) p.trained.erase(e);
  }
  return p;
}

nlohmann::json InputLayoutToJson(const InputLayout& layout) {
  return {{"policy", layout.own_files ? "file" : "data"},
          {"shards", layout.num_shards},
          {"tasks", layout.tasks},
          {"global_batch_size", layout.global_batch_size},
          {"base", GlobalPositionToJson(layout.base)}};
}

absl::StatusOr<InputLayout> InputLayoutFromJson(const nlohmann::json& json) {
  const auto bad = [](const std::string& what) {
    return absl::DataLossError(absl::StrCat("input.layout: ", what));
  };
  if (!json.is_object() || !json.contains("policy") || !json["policy"].is_string() ||
      !json.contains("shards") || !json["shards"].is_number_integer() ||
      !json.contains("global_batch_size") || !json["global_batch_size"].is_number_integer() ||
      !json.contains("base")) {
    return bad("needs policy, shards, global_batch_size and base");
  }
  InputLayout layout;
  const std::string policy = json["policy"].get<std::string>();
  if (policy != "data" && policy != "file") return bad(absl::StrCat("policy '", policy, "'"));
  layout.own_files = policy == "file";
  layout.num_shards = json["shards"].get<int>();
  layout.global_batch_size = json["global_batch_size"].get<int64_t>();
  if (json.contains("tasks")) {
    if (!json["tasks"].is_array()) return bad("tasks is not a list");
    for (const nlohmann::json& t : json["tasks"]) {
      if (!t.is_string()) return bad("tasks holds a non-string");
      layout.tasks.push_back(t.get<std::string>());
    }
  }
  if (layout.num_shards < 1 || layout.global_batch_size < 1) {
    return bad("shards and global_batch_size must be at least 1");
  }
  absl::StatusOr<GlobalInputPosition> base = GlobalPositionFromJson(json["base"]);
  if (!base.ok()) return bad(std::string(base.status().message()));
  layout.base = *std::move(base);
  return layout;
}

}  // namespace meshtrain
