// The checkpoints of a MODEL_DIR:
//
//   MODEL_DIR/ckpt-STEP/index.json + tensor files   a committed checkpoint
//   MODEL_DIR/ckpt-STEP/ without index.json          a write in progress, or what
//                                                     a crash left: ignored
//   MODEL_DIR/checkpoint                             the pointer to the latest, in
//                                                     TensorFlow's text format:
//                                                     model_checkpoint_path: "ckpt-STEP"
//
// Finding what to restore does not trust the pointer alone: it takes committed
// checkpoints newest first and verifies each (checkpoint_reader.h), so a crash
// between committing a manifest and moving the pointer loses nothing, and a
// corrupt or truncated checkpoint is reported, naming the file, and skipped.
// Free functions over a FileSystem; as thread-safe as the file system.
#ifndef MESHTRAIN_RUNTIME_CHECKPOINT_MODEL_DIR_H_
#define MESHTRAIN_RUNTIME_CHECKPOINT_MODEL_DIR_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/base/file_system.h"
#include "runtime/checkpoint/checkpoint_reader.h"

namespace meshtrain {

inline constexpr char kCheckpointPointerFile[] = "checkpoint";

// "ckpt-1200" and MODEL_DIR/ckpt-1200.
std::string CheckpointDirName(int64_t step);
std::string CheckpointPath(const std::string& model_dir, int64_t step);

struct CheckpointDirEntry {
  int64_t step = 0;
  bool committed = false;  // index.json present
};
// Every ckpt-N directory, by ascending step; an absent MODEL_DIR has none.
absl::StatusOr<std::vector<CheckpointDirEntry>> ListCheckpointDirs(FileSystem& fs,
                                                                   const std::string& model_dir);

// The checkpoint directory `checkpoint_dir` names, resolved on the real file
// system (std::filesystem::weakly_canonical: no "..", no symlink left), checked
// to be a direct child ckpt-STEP of `model_dir`, resolved the same way.
// PermissionDenied names both paths when it is anything else (outside MODEL_DIR,
// escaping it through ".." or a symlink, MODEL_DIR itself, deeper, or not named
// ckpt-STEP); InvalidArgument when either is empty or `checkpoint_dir` is
// relative (`model_dir` may be relative to the working directory). A peer that names
// a directory to write or read (a ps asked to save or restore) is confined so.
absl::StatusOr<std::string> ResolveCheckpointDir(const std::string& model_dir,
                                                 const std::string& checkpoint_dir);

// The step the pointer names; nullopt without a pointer file. DataLoss if it
// does not parse.
absl::StatusOr<std::optional<int64_t>> ReadCheckpointPointer(FileSystem& fs,
                                                             const std::string& model_dir);
// Atomically points at `latest`, listing `kept` (all committed steps) as
// TensorFlow's all_model_checkpoint_paths.
absl::Status WriteCheckpointPointer(FileSystem& fs, const std::string& model_dir, int64_t latest,
                                    const std::vector<int64_t>& kept);

// Opens and verifies MODEL_DIR/ckpt-`step` (CheckpointReader::Open), and
// checks that its manifest's step is `step`: DataLoss naming both when they
// disagree (ckpt-30 holding step 2147483648), since restoring it would resume
// at a step that no checkpoint of this directory recorded.
absl::StatusOr<std::unique_ptr<CheckpointReader>> OpenCheckpoint(FileSystem& fs,
                                                                 const std::string& model_dir,
                                                                 int64_t step);

struct LatestCheckpoint {
  std::unique_ptr<CheckpointReader> reader;  // null: no valid checkpoint
  std::vector<absl::Status> skipped;         // corrupt ones, newest first, naming the file
};
// The newest committed checkpoint that verifies, with at most `max_step` steps
// (-1: any).
absl::StatusOr<LatestCheckpoint> FindLatestCheckpoint(FileSystem& fs, const std::string& model_dir,
                                                      int64_t max_step = -1);

// Keeps the newest `max_to_keep` valid checkpoints up to `newest` (and any
// newer), deletes the older ones (index.json first, so a crash halfway leaves
// an uncommitted directory, never a committed one with files missing) and the
// uncommitted directories older than `newest`. Each one is verified
// (OpenCheckpoint, the one just committed included) before it counts, so a
// corrupt checkpoint never takes the place of a valid one and the newest
// valid checkpoint is never deleted: corrupt ones newer than the oldest kept
// are left for the user to inspect and not counted, older ones are deleted
// with the rest. Returns the steps kept and counted, ascending. max_to_keep
// <= 0 keeps all (and verifies none).
absl::StatusOr<std::vector<int64_t>> PruneCheckpoints(FileSystem& fs, const std::string& model_dir,
                                                      int64_t newest, int max_to_keep);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CHECKPOINT_MODEL_DIR_H_
