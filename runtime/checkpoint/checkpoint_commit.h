// Writing a checkpoint so that a crash at any moment leaves the previous one
// valid. The protocol (the chief drives it; the writers may be other tasks):
//
//   1. PrepareCheckpointDir: remove whatever MODEL_DIR/ckpt-STEP holds (a
//      crash's leftover, or an earlier save of the same step, un-committed
//      first by removing its index.json), create it, fsync MODEL_DIR.
//   2. Every writer writes its part: FILE.tmp.*, fsync, rename to FILE, fsync the
//      checkpoint directory (WriteSnapshotPart). Synchronous strategies have one
//      writer, the chief; a parameter-server job has every ps task write its
//      own shards in parallel (CheckpointJob hides which).
//   3. CommitCheckpoint, once every part succeeded: the manifest (variables
//      merged from the parts' records, every file's size and CRC32C) as
//      index.json.tmp.*, fsync, rename to index.json, fsync the directory. From
//      here the checkpoint exists.
//   4. Prune: committed checkpoints beyond the newest max_to_keep valid ones
//      (older ones verified first, so a corrupt one never counts and the
//      newest valid one is never deleted) and uncommitted directories older
//      than this one are deleted (PruneCheckpoints).
//   5. The pointer MODEL_DIR/checkpoint, naming this one and the kept ones,
//      the same way (tmp, fsync, rename, fsync MODEL_DIR).
//
// A crash before 3 leaves a directory without index.json, which readers
// ignore; after 3 the new checkpoint is complete and found by the scan
// (model_dir.h), which does not trust the pointer; a crash in 4 leaves only
// garbage for the next prune.
#ifndef MESHTRAIN_RUNTIME_CHECKPOINT_CHECKPOINT_COMMIT_H_
#define MESHTRAIN_RUNTIME_CHECKPOINT_CHECKPOINT_COMMIT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/base/file_system.h"
#include "runtime/checkpoint/checkpoint_snapshot.h"
#include "runtime/checkpoint/manifest.h"

namespace meshtrain {

// The parts of one checkpoint, ready to be written (step 2). A strategy makes
// one at a step boundary, on its training thread; the saver calls Write once,
// on its background thread, so training does not wait for the disk.
// Synchronous strategies hand a LocalSnapshotJob (host copies made at the step
// boundary); a parameter-server strategy hands a job whose Write asks every ps
// task to copy and write its own shards, in parallel, and returns their
// records (PartRecordToJson carries them over RPC).
class CheckpointJob {
 public:
  virtual ~CheckpointJob() = default;
  // Copies the state this job writes, if it was not copied when the job was
  // made (a deferred snapshot: the copy then overlaps the next step's forward
  // and backward, and the strategy holds back that step's update until it is
  // done). The saver calls it once, first, on the thread that writes.
  virtual absl::Status Capture() { return absl::OkStatus(); }
  // Writes every part into `checkpoint_dir` (existing and empty).
  virtual absl::StatusOr<std::vector<PartRecord>> Write(FileSystem& fs,
                                                        const std::string& checkpoint_dir) = 0;
  // The optimizer's slot names, in the order parts store them.
  virtual const std::vector<std::string>& slot_names() const = 0;
  // Tensor bytes the parts hold (for logs and write speed); 0 if unknown.
  virtual int64_t bytes() const = 0;
};

// The file of a checkpoint written by one writer.
inline constexpr char kSinglePartFileName[] = "model-00000-of-00001.safetensors";

// One local snapshot written as one file, kSinglePartFileName.
// `release`, if given, gets the snapshot back when the job is destroyed (its
// host buffers are reused for the next one).
class LocalSnapshotJob final : public CheckpointJob {
 public:
  explicit LocalSnapshotJob(CheckpointSnapshot snapshot,
                            std::function<void(CheckpointSnapshot)> release = nullptr)
      : snapshot_(std::move(snapshot)), release_(std::move(release)) {}
  ~LocalSnapshotJob() override {
    if (release_) release_(std::move(snapshot_));
  }
  absl::StatusOr<std::vector<PartRecord>> Write(FileSystem& fs,
                                                const std::string& checkpoint_dir) override;
  const std::vector<std::string>& slot_names() const override { return snapshot_.slot_names; }
  int64_t bytes() const override { return snapshot_.bytes(); }
  const CheckpointSnapshot& snapshot() const { return snapshot_; }

 private:
  CheckpointSnapshot snapshot_;
  std::function<void(CheckpointSnapshot)> release_;
};

// Step 1; returns the checkpoint directory.
absl::StatusOr<std::string> PrepareCheckpointDir(FileSystem& fs, const std::string& model_dir,
                                                 int64_t step);

// Steps 3 to 5. `manifest` carries everything but variables and files, which
// come from `parts`.
absl::Status CommitCheckpoint(FileSystem& fs, const std::string& model_dir, Manifest manifest,
                              const std::vector<PartRecord>& parts, int max_to_keep);

// Removes MODEL_DIR/ckpt-STEP unless it is committed (has index.json).
absl::Status RemoveUncommittedCheckpoint(FileSystem& fs, const std::string& model_dir,
                                         int64_t step);

// job.Capture(), then steps 1 to 5 for `job`. A failure before step 3 (a full
// disk, say) removes the uncommitted directory, so no partial file stays
// behind; after step 3 the checkpoint stands and the error is only prune's or
// the pointer's.
absl::Status WriteCheckpoint(FileSystem& fs, const std::string& model_dir, Manifest manifest,
                             CheckpointJob& job, int max_to_keep);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CHECKPOINT_CHECKPOINT_COMMIT_H_
