// Auto-sharding, as tf.data's AutoShardPolicy: which input worker reads which
// part of a training set.
//   - data: every input worker loads the whole set and reads its part of each
//     global batch (BatchSchedule's shards): the one global order that makes
//     runs bit-identical across strategies.
//   - file: input worker w of W reads only files i with i % W == w (as
//     tf.data's FILE policy) and walks its own seeded permutation of their
//     examples in batches of G / W; synchronous workers run the same number of
//     full batches an epoch (the fewest any worker holds), so what a bigger
//     shard holds beyond that is skipped for the epoch.
//   - auto: file when the set is a list of files and there are several input
//     workers and at least as many files as workers; data otherwise.
// Everything here is pure; thread-safe.
#ifndef MESHTRAIN_RUNTIME_DATA_FILE_SHARDING_H_
#define MESHTRAIN_RUNTIME_DATA_FILE_SHARDING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "runtime/data/batch_schedule.h"

namespace meshtrain {

enum class AutoShardPolicy { kAuto, kFile, kData };

// "auto", "file" or "data"; InvalidArgument naming `text` and the choices.
absl::StatusOr<AutoShardPolicy> ParseAutoShardPolicy(absl::string_view text);
absl::string_view AutoShardPolicyName(AutoShardPolicy policy);

// Files i with i % num_workers == worker_index, in their order. Over
// worker_index 0..num_workers-1 the parts are disjoint and cover `files`; each
// is non-empty when files.size() >= num_workers. Requires num_workers >= 1 and
// 0 <= worker_index < num_workers (checked: a programmer error).
std::vector<std::string> AssignFiles(absl::Span<const std::string> files, int num_workers,
                                     int worker_index);

// The policy a run follows and why (the start-up log line says it).
struct ShardDecision {
  AutoShardPolicy policy = AutoShardPolicy::kData;  // kFile or kData
  std::string reason;                               // "auto: 8 train files for 2 input workers"
};

// `dataset` names the dataset for messages; `num_files` is the number of its
// train files, or -1 when it is not a list of files (IDX arrays, .npy arrays,
// synthetic data). InvalidArgument, naming the counts and the fix, for `file`
// with fewer files than input workers or a dataset that is not files.
absl::StatusOr<ShardDecision> ChooseShardPolicy(AutoShardPolicy requested,
                                                absl::string_view dataset, int64_t num_files,
                                                int num_input_workers);

// Input worker `worker_index`'s schedule of its own `num_examples` under the
// file policy: batches of global_batch_size / num_input_workers, a
// permutation per epoch seeded by (seed, worker_index) so that workers
// differ, full batches only, at most `steps_per_epoch` of them (0: every full
// batch it holds). InvalidArgument, naming the fix, when the global batch does
// not divide by the input workers or this worker holds less than one batch.
struct OwnFilesInput {
  int64_t num_examples = 0;  // this worker's
  int64_t global_batch_size = 0;
  uint64_t seed = 0;  // the job's
  bool shuffle = true;
  int num_input_workers = 1;
  int worker_index = 0;
  int64_t steps_per_epoch = 0;
};
absl::StatusOr<BatchScheduleOptions> OwnFilesSchedule(const OwnFilesInput& input);

// The full per-worker batches `num_examples` hold: what a synchronous worker
// offers when the workers agree on the steps of an epoch.
int64_t FullBatches(int64_t num_examples, int64_t global_batch_size, int num_input_workers);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_FILE_SHARDING_H_
