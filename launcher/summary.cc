#include "launcher/summary.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

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
                                             report.timing.wait);
  auto fraction = [total](absl::Duration d) { return total > 0 ? absl::ToDoubleSeconds(d) / total : 0.0; };
  s["time_fractions"] = {{"compute", fraction(report.timing.compute)},
                         {"communicate", fraction(report.timing.communicate)},
                         {"wait", fraction(report.timing.wait)}};
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
  const std::string text = value.dump(2) + "\n";
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::DataLossError(absl::StrCat("writing ", tmp, ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const bool closed = ::close(fd) == 0;
  if (!synced || !closed || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return absl::DataLossError(absl::StrCat("committing ", path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain
