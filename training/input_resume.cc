#include "training/input_resume.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

// "chief:0" first, then "worker:N" by N: ClusterSpec::TrainingWorkers' order.
std::vector<std::string> LegacyTaskOrder(const Manifest& m) {
  std::vector<std::pair<std::pair<int, int64_t>, std::string>> keyed;
  for (const auto& [task, position] : m.task_inputs) {
    const size_t colon = task.rfind(':');
    int64_t index = 0;
    if (colon == std::string::npos || !absl::SimpleAtoi(task.substr(colon + 1), &index)) continue;
    const std::string job = task.substr(0, colon);
    if (job != "chief" && job != "worker") continue;
    keyed.push_back({{job == "chief" ? 0 : 1, index}, task});
  }
  std::sort(keyed.begin(), keyed.end());
  std::vector<std::string> tasks;
  for (auto& [key, task] : keyed) tasks.push_back(std::move(task));
  return tasks;
}

BatchScheduleOptions ScheduleOf(const InputShape& shape, int num_shards,
                                std::shared_ptr<const GlobalInputPosition> base) {
  return {.num_examples = shape.num_examples,
          .global_batch_size = shape.global_batch_size,
          .seed = shape.seed,
          .shuffle = shape.shuffle,
          .drop_remainder = shape.drop_remainder,
          .num_shards = num_shards,
          .resume_from = std::move(base)};
}

InputPosition PositionOf(const Manifest& m, const std::string& task) {
  auto it = m.task_inputs.find(task);
  const InputRecord r = it != m.task_inputs.end() ? it->second : m.input;
  return {r.epoch, r.step};
}

std::string ShapeText(bool own_files, int shards, int64_t global_batch) {
  return absl::StrCat(shards, " input shard(s), global batch ", global_batch,
                      own_files ? ", auto_shard file" : "");
}

// A checkpoint without input.layout: the data policy's layout of the
// cluster that wrote it, the job's global batch, and the exact global
// position its per-task positions give.
absl::Status ReadLegacy(const Manifest& m, const InputShape& shape, InputLayout& layout,
                        std::optional<GlobalInputPosition>& global) {
  layout.own_files = shape.own_files;
  layout.global_batch_size = shape.global_batch_size;
  layout.tasks = LegacyTaskOrder(m);
  if (layout.tasks.empty()) layout.tasks = shape.tasks;
  layout.num_shards = static_cast<int>(layout.tasks.size());
  layout.base.num_examples = shape.num_examples;
  if (shape.own_files) return absl::OkStatus();
  std::vector<InputPosition> next;
  for (const std::string& task : layout.tasks) next.push_back(PositionOf(m, task));
  absl::StatusOr<BatchSchedule> schedule =
      BatchSchedule::Create(ScheduleOf(shape, layout.num_shards, nullptr));
  absl::StatusOr<GlobalInputPosition> position =
      schedule.ok() ? AdvanceGlobalPosition(*schedule, next) : schedule.status();
  if (!position.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("restore: ckpt-", m.step,
                     " was written before global input positions and its per-task positions (",
                     position.status().message(), ") do not fit this job's schedule (",
                     ShapeText(false, layout.num_shards, shape.global_batch_size),
                     "); resume it with the global batch it was written with"));
  }
  global = *std::move(position);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<InputResume> PlanInputResume(const Manifest& m, const InputShape& shape,
                                            const std::string& task, bool independent) {
  InputLayout layout;
  std::optional<GlobalInputPosition> global;
  if (!m.input_layout.is_null()) {
    MESHTRAIN_ASSIGN_OR_RETURN(layout, InputLayoutFromJson(m.input_layout));
    if (!m.input_global.is_null()) {
      MESHTRAIN_ASSIGN_OR_RETURN(global, GlobalPositionFromJson(m.input_global));
    }
  } else {
    MESHTRAIN_RETURN_IF_ERROR(ReadLegacy(m, shape, layout, global));
  }

  InputResume r;
  const bool same = layout.own_files == shape.own_files &&
                    layout.num_shards == shape.num_shards() && layout.tasks == shape.tasks &&
                    layout.global_batch_size == shape.global_batch_size &&
                    (shape.own_files || layout.base.num_examples == shape.num_examples);
  const std::string was = ShapeText(layout.own_files, layout.num_shards, layout.global_batch_size);
  if (same) {
    // 1. This task's own stream in the same schedule.
    r.start = PositionOf(m, task);
    if (layout.base.epoch > 0 || !layout.base.trained.empty()) {
      r.base = std::make_shared<const GlobalInputPosition>(layout.base);
    }
    if (!independent || shape.tasks.empty() || task == shape.tasks[0]) r.start_step = m.step;
    r.summary = absl::StrCat("input resumes at epoch ", r.start.epoch + 1, " step ", r.start.step,
                             " (the checkpoint's layout: ", was, ")");
    return r;
  }
  r.reshaped = true;
  r.start_step = m.step;
  const std::string now = ShapeText(shape.own_files, shape.num_shards(), shape.global_batch_size);
  if (shape.own_files || layout.own_files) {
    // 3. A position in one worker's files means nothing to another.
    const InputRecord chief = m.input;
    r.start = {chief.epoch + (chief.step > 0 ? 1 : 0), 0};
    r.summary = absl::StrCat(
        "input: the checkpoint was written with ", was, " and this cluster has ", now,
        "; under auto_shard file a worker's position in its own files does not carry over, so "
        "training resumes at the start of epoch ",
        r.start.epoch + 1,
        (chief.step > 0 ? " and the rest of the checkpoint's epoch is skipped" : ""));
    return r;
  }
  // 2. The data policy: the global position, whatever the shapes.
  if (!global.has_value()) {
    return absl::DataLossError(
        absl::StrCat("restore: ckpt-", m.step, " has input.layout but no input.global"));
  }
  if (global->num_examples != shape.num_examples) {
    return absl::FailedPreconditionError(
        absl::StrCat("restore: ckpt-", m.step, "'s input position counts ", global->num_examples,
                     " training examples but this job's training set has ", shape.num_examples,
                     "; resume with the same training set"));
  }
  r.start = {global->epoch, 0};
  r.base = std::make_shared<const GlobalInputPosition>(*global);
  const int64_t trained = global->TrainedIn(global->epoch);
  r.summary =
      absl::StrCat("input: the checkpoint was written with ", was, ", this cluster has ", now,
                   ": epoch ", global->epoch + 1, " resumes from the global position, ", trained,
                   " of its ", global->num_examples, " examples already trained and left out");
  return r;
}

absl::Status RecordInputPositions(const InputShape& shape,
                                  const std::shared_ptr<const GlobalInputPosition>& base,
                                  absl::Span<const InputPosition> next_by_shard, Manifest& m) {
  InputLayout layout{.own_files = shape.own_files,
                     .num_shards = shape.num_shards(),
                     .tasks = shape.tasks,
                     .global_batch_size = shape.global_batch_size};
  if (base != nullptr) {
    layout.base = *base;
  } else if (!shape.own_files) {
    layout.base.num_examples = shape.num_examples;
  }
  m.input_layout = InputLayoutToJson(layout);
  if (shape.own_files) return absl::OkStatus();
  MESHTRAIN_ASSIGN_OR_RETURN(BatchSchedule schedule,
                             BatchSchedule::Create(ScheduleOf(shape, shape.num_shards(), base)));
  MESHTRAIN_ASSIGN_OR_RETURN(GlobalInputPosition global,
                             AdvanceGlobalPosition(schedule, next_by_shard));
  m.input_global = GlobalPositionToJson(global);
  return absl::OkStatus();
}

}  // namespace meshtrain
