#include "runtime/checkpoint/checkpoint_commit.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/base/status_macros.h"
#include "runtime/checkpoint/model_dir.h"

namespace meshtrain {

absl::StatusOr<std::vector<PartRecord>> LocalSnapshotJob::Write(FileSystem& fs,
                                                                const std::string& checkpoint_dir) {
  MESHTRAIN_ASSIGN_OR_RETURN(PartRecord part,
                             WriteSnapshotPart(fs, checkpoint_dir, kSinglePartFileName, snapshot_));
  return std::vector<PartRecord>{std::move(part)};
}

absl::StatusOr<std::string> PrepareCheckpointDir(FileSystem& fs, const std::string& model_dir,
                                                 int64_t step) {
  const std::string dir = CheckpointPath(model_dir, step);
  if (fs.Exists(dir)) {
    const std::string manifest = JoinPath(dir, kManifestFileName);
    if (fs.Exists(manifest)) {
      MESHTRAIN_RETURN_IF_ERROR(fs.RemoveAll(manifest));
      MESHTRAIN_RETURN_IF_ERROR(fs.SyncDir(dir));
    }
    MESHTRAIN_RETURN_IF_ERROR(fs.RemoveAll(dir));
  }
  MESHTRAIN_RETURN_IF_ERROR(fs.CreateDir(dir));
  MESHTRAIN_RETURN_IF_ERROR(fs.SyncDir(model_dir));
  return dir;
}

absl::Status CommitCheckpoint(FileSystem& fs, const std::string& model_dir, Manifest manifest,
                              const std::vector<PartRecord>& parts, int max_to_keep) {
  const std::string dir = CheckpointPath(model_dir, manifest.step);
  MESHTRAIN_ASSIGN_OR_RETURN(manifest.variables, MergeParts(parts));
  manifest.files.clear();
  for (const PartRecord& part : parts) manifest.files.push_back(part.file);
  manifest.unix_micros = absl::ToUnixMicros(absl::Now());
  const std::string text = ManifestToJson(manifest);
  const absl::string_view pieces[] = {text};
  MESHTRAIN_RETURN_IF_ERROR(WriteFileAtomically(fs, JoinPath(dir, kManifestFileName), pieces));

  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<int64_t> kept,
                             PruneCheckpoints(fs, model_dir, manifest.step, max_to_keep));
  return WriteCheckpointPointer(fs, model_dir, manifest.step, kept);
}

absl::Status RemoveUncommittedCheckpoint(FileSystem& fs, const std::string& model_dir,
                                         int64_t step) {
  const std::string dir = CheckpointPath(model_dir, step);
  if (!fs.Exists(dir) || fs.Exists(JoinPath(dir, kManifestFileName))) return absl::OkStatus();
  MESHTRAIN_RETURN_IF_ERROR(fs.RemoveAll(dir));
  return fs.SyncDir(model_dir);
}

absl::Status WriteCheckpoint(FileSystem& fs, const std::string& model_dir, Manifest manifest,
                             CheckpointJob& job, int max_to_keep) {
  MESHTRAIN_RETURN_IF_ERROR(job.Capture());
  const int64_t step = manifest.step;
  const absl::Status status = [&]() -> absl::Status {
    MESHTRAIN_ASSIGN_OR_RETURN(std::string dir, PrepareCheckpointDir(fs, model_dir, step));
    MESHTRAIN_ASSIGN_OR_RETURN(std::vector<PartRecord> parts, job.Write(fs, dir));
    manifest.slot_names = job.slot_names();
    return CommitCheckpoint(fs, model_dir, std::move(manifest), parts, max_to_keep);
  }();
  if (status.ok()) return status;
  // Failed before step 3: what the parts wrote is garbage that holds space
  // (on a full disk, the space the next attempt needs).
  const absl::Status removed = RemoveUncommittedCheckpoint(fs, model_dir, step);
  if (!removed.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat(status.message(), "; removing ", CheckpointDirName(step),
                                     " failed too: ", removed.message()));
  }
  return status;
}

}  // namespace meshtrain
