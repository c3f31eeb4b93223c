#include "training/evaluator.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "runtime/base/json_reader.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/checkpoint/model_dir.h"
#include "runtime/model/model.h"
#include "runtime/optim/optimizer.h"
#include "strategies/one_device.h"
#include "training/job_data.h"
#include "training/training_loop.h"

namespace meshtrain {
namespace {

// Steps already in eval.jsonl, each with whether its line said final (a torn
// last line, from a crash, is ignored).
std::map<int64_t, bool> EvaluatedSteps(FileSystem& fs, const std::string& path,
                                       bool* ends_with_newline) {
  std::map<int64_t, bool> steps;
  *ends_with_newline = true;
  absl::StatusOr<std::string> text = fs.ReadFile(path);
  if (!text.ok()) return steps;
  *ends_with_newline = text->empty() || text->back() == '\n';
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
    const absl::StatusOr<nlohmann::json> j = ParseJson(line);
    if (j.ok() && j->is_object() && j->contains("step") && (*j)["step"].is_number_integer()) {
      bool& final = steps[(*j)["step"].get<int64_t>()];
      final = final ||
              (j->contains("final") && (*j)["final"].is_boolean() && (*j)["final"].get<bool>());
    }
  }
  return steps;
}

absl::Status AppendLine(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return absl::PermissionDeniedError(absl::StrCat("open ", path, ": ", std::strerror(errno)));
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                  ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) return absl::DataLossError(absl::StrCat("append to ", path, ": ", std::strerror(err)));
  return absl::OkStatus();
}

}  // namespace

absl::Status RunEvaluator(const JobConfig& job, const EvaluatorOptions& options) {
  if (options.model_dir.empty()) {
    return absl::InvalidArgumentError(
        "the evaluator evaluates the checkpoints in --model-dir; give it the chief's --model-dir");
  }
  FileSystem& fs = options.fs != nullptr ? *options.fs : DefaultFileSystem();
  MESHTRAIN_ASSIGN_OR_RETURN(JobData data, LoadJobData(job.data, job.training.seed));
  MESHTRAIN_ASSIGN_OR_RETURN(
      const OptimizerConfig optimizer_config,
      ScaleLearningRateForBatch(job.optimizer, job.training.global_batch_size));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Optimizer> optimizer,
                             Optimizer::Create(optimizer_config));
  MESHTRAIN_ASSIGN_OR_RETURN(
      std::unique_ptr<OneDeviceStrategy> strategy,
      OneDeviceStrategy::Create(Device::Cpu(0), *optimizer, job.training.seed));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Model> model,
                             CreateModel(job.model, data.shape, *strategy));
  MESHTRAIN_RETURN_IF_ERROR(strategy->Build());

  const std::string eval_path = JoinPath(options.model_dir, kEvalFileName);
  bool ends_with_newline = true;
  std::map<int64_t, bool> done = EvaluatedSteps(fs, eval_path, &ends_with_newline);
  std::set<int64_t> unreadable;  // corrupt checkpoints, skipped once logged
  if (!ends_with_newline) MESHTRAIN_RETURN_IF_ERROR(AppendLine(eval_path, "\n"));
  MESHTRAIN_LOG(INFO) << "evaluator: watching " << options.model_dir << " (" << done.size()
                      << " checkpoint(s) evaluated before)";
  absl::Time last_new = absl::Now();
  while (true) {
    if (options.preemption != nullptr && options.preemption->requested()) {
      return PreemptedError(
          "evaluator preempted (SIGTERM); it resumes after the last evaluated step");
    }
    MESHTRAIN_ASSIGN_OR_RETURN(std::vector<CheckpointDirEntry> entries,
                               ListCheckpointDirs(fs, options.model_dir));
    for (const CheckpointDirEntry& entry : entries) {
      if (!entry.committed || unreadable.count(entry.step) > 0) continue;
      const std::string dir = CheckpointPath(options.model_dir, entry.step);
      if (auto it = done.find(entry.step); it != done.end()) {
        if (it->second) return absl::OkStatus();  // its final line is written
        // Evaluated when it was not final: the chief's final save may have
        // rewritten a periodic checkpoint of the same step since. Then it is
        // evaluated again, for the final line.
        absl::StatusOr<std::string> text = fs.ReadFile(JoinPath(dir, kManifestFileName));
        if (!text.ok()) continue;
        absl::StatusOr<Manifest> manifest = ParseManifest(*text, dir);
        if (!manifest.ok() || !manifest->final) continue;
      }
      absl::StatusOr<std::unique_ptr<CheckpointReader>> reader =
          OpenCheckpoint(fs, options.model_dir, entry.step);
      if (absl::IsNotFound(reader.status())) continue;  // pruned or being rewritten
      last_new = absl::Now();
      if (!reader.ok()) {
        MESHTRAIN_LOG(ERROR) << "evaluator: " << reader.status().message() << "; skipping it";
        unreadable.insert(entry.step);
        continue;
      }
      MESHTRAIN_RETURN_IF_ERROR(strategy->Restore(**reader));
      MESHTRAIN_ASSIGN_OR_RETURN(LossStats stats, EvaluateDataset(*strategy, *model, data.test));
      const double n = static_cast<double>(std::max<int64_t>(1, data.test.size()));
      const bool final = (*reader)->manifest().final;
      nlohmann::json line = {{"step", entry.step},
                             {"loss", stats.loss_sum / n},
                             {"accuracy", static_cast<double>(stats.correct) / n},
                             {"checkpoint", CheckpointDirName(entry.step)},
                             {"final", final},
                             {"unix_time", absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch())}};
      MESHTRAIN_RETURN_IF_ERROR(AppendLine(eval_path, line.dump() + "\n"));
      done[entry.step] = final;
      MESHTRAIN_LOG(INFO) << "evaluator: " << CheckpointDirName(entry.step) << ": loss "
                          << line["loss"].get<double>() << ", accuracy "
                          << line["accuracy"].get<double>();
      if (final) return absl::OkStatus();
    }
    if (absl::Now() - last_new > options.idle_timeout) {
      return absl::DeadlineExceededError(absl::StrCat(
          "evaluator: no new checkpoint in ", options.model_dir, " for ",
          absl::FormatDuration(options.idle_timeout),
          " and no final one; the chief may be gone (raise --eval-timeout to wait longer)"));
    }
    // Polling the directory is the wait: checkpoints come seconds apart.
    absl::SleepFor(options.poll_interval);
  }
}

}  // namespace meshtrain
