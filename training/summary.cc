#include "training/summary.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runtime/base/atomic_file.h"

namespace meshtrain {

nlohmann::json MakeSummary(const JobConfig& job, const TrainingReport& report, int num_workers,
                           int num_ps) {
  nlohmann::json s;
  s["job"] = job.name;
  s["strategy"] = job.strategy.name;
  s["num_workers"] = num_workers;
  s["num_ps"] = num_ps;
  s["global_batch_size"] = job.training.global_batch_size;
  s["epochs"] = report.epochs.size();
  s["final_step"] = report.final_step;
  s["train_loss"] = report.train_loss;
  s["test_loss"] = report.test_loss;
  s["test_accuracy"] = report.test_accuracy;
  s["samples_per_sec"] = report.samples_per_sec;
  s["train_seconds"] = report.train_seconds;
  s["wall_seconds"] = report.wall_seconds;
  s["samples"] = report.samples;
  s["seed"] = job.training.seed;
  if (job.training.target_accuracy > 0) {
    s["target_accuracy"] = job.training.target_accuracy;
    s["seconds_to_target"] =
        report.seconds_to_target ? nlohmann::json(*report.seconds_to_target) : nlohmann::json();
  }
  const double total = absl::ToDoubleSeconds(report.timing.compute + report.timing.communicate +
                                             report.timing.wait + report.input_wait);
  auto fraction = [total](absl::Duration d) {
    return total > 0 ? absl::ToDoubleSeconds(d) / total : 0.0;
  };
  s["time_fractions"] = {{"compute", fraction(report.timing.compute)},
                         {"communicate", fraction(report.timing.communicate)},
                         {"wait", fraction(report.timing.wait)},
                         {"input", fraction(report.input_wait)}};
  s["input_wait_seconds"] = absl::ToDoubleSeconds(report.input_wait);
  // How much of the communication backward hid (a combiner thread summing
  // buckets while earlier layers computed), against what the steps waited for.
  const double exposed = absl::ToDoubleSeconds(report.timing.communicate + report.timing.wait);
  const double hidden = absl::ToDoubleSeconds(report.timing.hidden);
  s["communication_overlap"] = {
      {"hidden_seconds", hidden},
      {"exposed_seconds", exposed},
      {"hidden_fraction", hidden + exposed > 0 ? hidden / (hidden + exposed) : 0.0}};
  const double steps = std::max<double>(1, static_cast<double>(report.final_step));
  s["bytes_sent_per_step"] = static_cast<double>(report.timing.bytes_sent) / steps;
  s["bytes_received_per_step"] = static_cast<double>(report.timing.bytes_received) / steps;
  nlohmann::json epochs = nlohmann::json::array();
  for (const EpochRecord& e : report.epochs) {
    epochs.push_back({{"epoch", e.epoch},
                      {"steps", e.steps},
                      {"train_loss", e.train_loss},
                      {"train_accuracy", e.train_accuracy},
                      {"test_loss", e.test_loss},
                      {"test_accuracy", e.test_accuracy},
                      {"samples_per_sec", e.samples_per_sec},
                      {"train_seconds", e.train_seconds},
                      {"elapsed_seconds", e.elapsed_seconds}});
  }
  s["history"] = epochs;
  return s;
}

absl::Status WriteJsonFile(const std::string& path, const nlohmann::json& value) {
  return WriteFileAtomically(path, value.dump(2) + "\n");
}

}  // namespace meshtrain
