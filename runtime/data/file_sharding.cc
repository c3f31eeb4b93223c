#include "runtime/data/file_sharding.h"

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/data/portable_random.h"

namespace meshtrain {
namespace {

// The stream of the job seed that file-policy workers derive their own seeds
// from, apart from the epoch streams (0, 1, ...) of the data policy.
constexpr uint64_t kOwnFilesStream = 0x66696c6573686172;  // "fileshar"

}  // namespace

absl::StatusOr<AutoShardPolicy> ParseAutoShardPolicy(absl::string_view text) {
  if (text == "auto") return AutoShardPolicy::kAuto;
  if (text == "file") return AutoShardPolicy::kFile;
  if (text == "data") return AutoShardPolicy::kData;
  return absl::InvalidArgumentError(
      absl::StrCat("data.auto_shard '", text,
                   "' is not one of auto, file, data (auto: file when there are at least as many "
                   "train files as input workers, else data)"));
}

absl::string_view AutoShardPolicyName(AutoShardPolicy policy) {
  switch (policy) {
    case AutoShardPolicy::kAuto:
      return "auto";
    case AutoShardPolicy::kFile:
      return "file";
    case AutoShardPolicy::kData:
      return "data";
  }
  return "?";
}

std::vector<std::string> AssignFiles(absl::Span<const std::string> files, int num_workers,
                                     int worker_index) {
  MESHTRAIN_CHECK(num_workers >= 1 && worker_index >= 0 && worker_index < num_workers)
      << "AssignFiles: worker " << worker_index << " of " << num_workers;
  std::vector<std::string> mine;
  for (size_t i = static_cast<size_t>(worker_index); i < files.size();
       i += static_cast<size_t>(num_workers)) {
    mine.push_back(files[i]);
  }
  return mine;
}

absl::StatusOr<ShardDecision> ChooseShardPolicy(AutoShardPolicy requested,
                                                absl::string_view dataset, int64_t num_files,
                                                int num_input_workers) {
  const bool files = num_files >= 0;
  const std::string counts =
      absl::StrCat(num_files, " train file", num_files == 1 ? "" : "s", " for ", num_input_workers,
                   " input worker", num_input_workers == 1 ? "" : "s");
  switch (requested) {
    case AutoShardPolicy::kData:
      return ShardDecision{AutoShardPolicy::kData, "as data.auto_shard says"};
    case AutoShardPolicy::kFile:
      if (!files) {
        return absl::InvalidArgumentError(absl::StrCat(
            "data.auto_shard file: data.dataset ", dataset,
            " is not a list of files that workers could split (only tfrecord and csv are); "
            "use auto_shard data or auto"));
      }
      if (num_files < num_input_workers) {
        return absl::InvalidArgumentError(
            absl::StrCat("data.auto_shard file: ", counts,
                         "; every input worker needs a file of its own: "
                         "split the data into at least ",
                         num_input_workers,
                         " files (meshtrain data convert --shards N) or use auto_shard data"));
      }
      return ShardDecision{AutoShardPolicy::kFile,
                           absl::StrCat("as data.auto_shard says: ", counts)};
    case AutoShardPolicy::kAuto:
      break;
  }
  if (!files) {
    return ShardDecision{AutoShardPolicy::kData,
                         absl::StrCat("auto: ", dataset, " is not a list of files")};
  }
  if (num_input_workers < 2) {
    return ShardDecision{AutoShardPolicy::kData, absl::StrCat("auto: ", counts)};
  }
  if (num_files < num_input_workers) {
    return ShardDecision{AutoShardPolicy::kData,
                         absl::StrCat("auto: ", counts, ", fewer files than workers")};
  }
  return ShardDecision{AutoShardPolicy::kFile, absl::StrCat("auto: ", counts)};
}

int64_t FullBatches(int64_t num_examples, int64_t global_batch_size, int num_input_workers) {
  if (num_input_workers < 1 || global_batch_size < num_input_workers) return 0;
  return num_examples / (global_batch_size / num_input_workers);
}

absl::StatusOr<BatchScheduleOptions> OwnFilesSchedule(const OwnFilesInput& input) {
  const int w = input.num_input_workers;
  if (w < 1 || input.worker_index < 0 || input.worker_index >= w) {
    return absl::InvalidArgumentError(absl::StrCat("auto_shard file: input worker ",
                                                   input.worker_index, " of ", w, " is not one"));
  }
  if (input.global_batch_size < w || input.global_batch_size % w != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "auto_shard file: global batch size ", input.global_batch_size, " does not divide by ", w,
        " input workers; choose a global batch that is a multiple of ", w));
  }
  const int64_t batch = input.global_batch_size / w;
  if (input.num_examples < batch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "auto_shard file: input worker ", input.worker_index, " of ", w, " holds ",
        input.num_examples, " examples, less than its batch of ", batch, " (global batch ",
        input.global_batch_size, " over ", w,
        " input workers); use a smaller global batch, more data per file or auto_shard data"));
  }
  BatchScheduleOptions options;
  options.num_examples = input.num_examples;
  options.global_batch_size = batch;
  options.seed = DeriveSeed(DeriveSeed(input.seed, kOwnFilesStream),
                            static_cast<uint64_t>(input.worker_index));
  options.shuffle = input.shuffle;
  // Synchronous workers step together: a short batch on one worker only
  // would change the global batch, so an epoch is whole batches.
  options.drop_remainder = true;
  options.max_steps_per_epoch = input.steps_per_epoch;
  return options;
}

}  // namespace meshtrain
