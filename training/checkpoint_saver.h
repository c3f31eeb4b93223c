// CheckpointSaver: the chief's TrainingObserver that writes checkpoints every
// --checkpoint-every-steps steps or --checkpoint-every-secs seconds, without
// making training wait for the disk:
//   1. At a step boundary that is due, on the training thread, the strategy
//      copies its variables into a CheckpointJob (host copies: a memcpy; the
//      only time a step waits, measured as `snapshot` time).
//   2. The background thread writes and commits it (checkpoint_commit.h),
//      one save in flight at a time. A save that falls due while the previous
//      one is still writing is put off to the first step boundary after it
//      finished (counted as `deferred`): training never waits for a write.
//   3. SaveNow (the final checkpoint, a preemption) waits for the write in
//      flight, then snapshots and writes on the caller's thread.
// A failed background write is logged and counted; its partial files are
// removed (checkpoint_commit.h); a full disk is kResourceExhausted naming the
// model directory, the checkpoint's size in bytes and the free space. Training
// goes on, the next interval tries again and the previous checkpoint stays the
// valid one. A strategy that does not
// checkpoint yet (PrepareCheckpoint is Unimplemented) trains on without.
// Start()/Stop() own the thread. OnStepEnd/SaveNow/ResetSchedule from the
// training thread; stats() from any thread. The strategy and file system must
// outlive the saver.
#ifndef MESHTRAIN_TRAINING_CHECKPOINT_SAVER_H_
#define MESHTRAIN_TRAINING_CHECKPOINT_SAVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "runtime/base/file_system.h"
#include "runtime/checkpoint/checkpoint_commit.h"
#include "runtime/checkpoint/manifest.h"
#include "strategies/strategy.h"
#include "training/training_loop.h"

namespace meshtrain {

struct CheckpointSaverOptions {
  std::string model_dir;
  int64_t every_steps = 0;                      // 0: not by steps
  absl::Duration every = absl::ZeroDuration();  // 0: not by time
  int max_to_keep = 3;
  FileSystem* fs = nullptr;  // null: DefaultFileSystem()
  // What the saver cannot see: strategy, cluster shape, seed, optimizer.
  Manifest base;
  // The tasks whose input position each manifest records (synchronous
  // strategies: every training worker, all at the chief's position).
  std::vector<std::string> tasks;
  // Where workers read at their own pace (parameter_server), called on the
  // training thread at each snapshot: their own positions, which replace the
  // chief's for the tasks it names.
  std::function<std::map<std::string, InputRecord>()> own_positions;
  // Called on the training thread at each snapshot, after the positions above:
  // records the global input position and layout (training/input_resume.h).
  std::function<absl::Status(Manifest&)> input_positions;
  // Called on the training thread at each snapshot: the manifest's "meta".
  std::function<nlohmann::json()> meta;
};

struct CheckpointStats {
  int64_t saves = 0;     // committed
  int64_t deferred = 0;  // boundaries that were due while a write was in flight
  int64_t failures = 0;
  int64_t last_bytes = 0;
  absl::Duration snapshot_total;  // the training thread blocked in step 1
  absl::Duration snapshot_max;
  absl::Duration write_total;  // background writes, committed ones
  // Step times with a write in flight and without (does the background write
  // slow the steps it overlaps?).
  int64_t steps_during_write = 0;
  absl::Duration step_time_during_write;
  int64_t steps_without_write = 0;
  absl::Duration step_time_without_write;

  nlohmann::json ToJson() const;
};

class CheckpointSaver final : public TrainingObserver {
 public:
  CheckpointSaver(Strategy& strategy, CheckpointSaverOptions options);
  ~CheckpointSaver() override;
  CheckpointSaver(const CheckpointSaver&) = delete;
  CheckpointSaver& operator=(const CheckpointSaver&) = delete;

  void Start();
  // Waits for the write in flight and joins the thread. Idempotent.
  void Stop();

  // Training (re)starts at `step`: the next periodic save counts from here.
  void ResetSchedule(int64_t step);

  absl::Status OnStepEnd(const StepRecord& step) override;
  // Writes the state after `step` now and returns once it is committed.
  absl::Status SaveNow(int64_t step, InputPosition next, bool final);

  CheckpointStats stats() const;
  // The newest step committed by this saver (-1: none yet).
  int64_t last_committed() const;

 private:
  struct Pending {
    std::unique_ptr<CheckpointJob> job;
    Manifest manifest;
  };

  absl::StatusOr<Manifest> MakeManifest(int64_t step, InputPosition next, bool final) const;
  // Step 1: snapshot on the calling thread, timed.
  absl::StatusOr<Pending> Snapshot(int64_t step, InputPosition next, bool final);
  absl::Status Write(Pending& pending);
  void Loop();
  bool Busy() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ != nullptr || writing_; }

  Strategy& strategy_;
  const CheckpointSaverOptions options_;
  FileSystem& fs_;
  std::thread thread_;

  // Training thread only.
  bool unsupported_ = false;  // the strategy answered Unimplemented: no checkpoints
  int64_t scheduled_from_step_ = 0;
  absl::Time scheduled_from_time_ = absl::InfinitePast();

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<Pending> pending_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_write_end_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t last_committed_ ABSL_GUARDED_BY(mu_) = -1;
  CheckpointStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_TRAINING_CHECKPOINT_SAVER_H_
