#include "runtime/checkpoint/model_dir.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/checkpoint/manifest.h"

namespace meshtrain {
namespace {

constexpr absl::string_view kPrefix = "ckpt-";

std::optional<int64_t> StepOfName(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kPrefix)) return std::nullopt;
  int64_t step = 0;
  if (name.empty() || !absl::SimpleAtoi(name, &step) || step < 0 || name != absl::StrCat(step)) {
    return std::nullopt;
  }
  return step;
}

// `path` made absolute, resolved through every symlink and "..", as far as it exists.
// A relative path is taken from the working directory when `relative_ok`.
absl::StatusOr<std::filesystem::path> Resolve(const std::string& path, absl::string_view what,
                                              bool relative_ok) {
  if (path.empty() || (path[0] != '/' && !relative_ok)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' is not an absolute path"));
  }
  std::error_code error;
  std::filesystem::path resolved =
      std::filesystem::weakly_canonical(std::filesystem::absolute(path, error), error);
  if (error) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "' cannot be resolved: ", error.message()));
  }
  if (!resolved.has_filename() && resolved.has_parent_path()) resolved = resolved.parent_path();
  return resolved;
}

}  // namespace

absl::StatusOr<std::string> ResolveCheckpointDir(const std::string& model_dir,
                                                 const std::string& checkpoint_dir) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::filesystem::path root,
                             Resolve(model_dir, "model directory", /*relative_ok=*/true));
  MESHTRAIN_ASSIGN_OR_RETURN(std::filesystem::path dir,
                             Resolve(checkpoint_dir, "checkpoint directory",
                                     /*relative_ok=*/false));
  // By components: /a/model-dir2 is not inside /a/model-dir.
  auto d = dir.begin();
  for (auto r = root.begin(); r != root.end() && !r->empty(); ++r, ++d) {
    if (d == dir.end() || *d != *r) {
      return absl::PermissionDeniedError(
          absl::StrCat("checkpoint directory '", checkpoint_dir, "' (", dir.string(),
                       ") is outside the model directory ", root.string()));
    }
  }
  // weakly_canonical keeps a dangling symlink's name: refuse it too.
  std::error_code error;
  const bool symlink = std::filesystem::is_symlink(std::filesystem::symlink_status(dir, error));
  if (symlink || d == dir.end() || std::next(d) != dir.end() ||
      !StepOfName(d->string()).has_value()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "checkpoint directory '", checkpoint_dir, "' (", dir.string(), ") is not ",
        JoinPath(root.string(), "ckpt-STEP"), ", a checkpoint of the model directory"));
  }
  return dir.string();
}

std::string CheckpointDirName(int64_t step) { return absl::StrCat(kPrefix, step); }

std::string CheckpointPath(const std::string& model_dir, int64_t step) {
  return JoinPath(model_dir, CheckpointDirName(step));
}

absl::StatusOr<std::vector<CheckpointDirEntry>> ListCheckpointDirs(FileSystem& fs,
                                                                   const std::string& model_dir) {
  absl::StatusOr<std::vector<std::string>> names = fs.ListDir(model_dir);
  if (absl::IsNotFound(names.status())) return std::vector<CheckpointDirEntry>();
  if (!names.ok()) return names.status();
  std::vector<CheckpointDirEntry> entries;
  for (const std::string& name : *names) {
    std::optional<int64_t> step = StepOfName(name);
    if (!step.has_value()) continue;
    entries.push_back({*step, fs.Exists(JoinPath(JoinPath(model_dir, name), kManifestFileName))});
  }
  std::sort(
      entries.begin(), entries.end(),
      [](const CheckpointDirEntry& a, const CheckpointDirEntry& b) { return a.step < b.step; });
  return entries;
}

absl::StatusOr<std::optional<int64_t>> ReadCheckpointPointer(FileSystem& fs,
                                                             const std::string& model_dir) {
  const std::string path = JoinPath(model_dir, kCheckpointPointerFile);
  absl::StatusOr<std::string> text = fs.ReadFile(path);
  if (absl::IsNotFound(text.status())) return std::optional<int64_t>();
  if (!text.ok()) return text.status();
  absl::string_view line = *text;
  line = line.substr(0, line.find('\n'));
  absl::string_view value = line;
  if (absl::ConsumePrefix(&value, "model_checkpoint_path: \"") &&
      absl::ConsumeSuffix(&value, "\"")) {
    if (std::optional<int64_t> step = StepOfName(value)) return step;
  }
  return absl::DataLossError(
      absl::StrCat("checkpoint pointer ", path, " does not parse: '", line,
                   "'; delete it (the newest valid checkpoint is found without it)"));
}

absl::Status WriteCheckpointPointer(FileSystem& fs, const std::string& model_dir, int64_t latest,
                                    const std::vector<int64_t>& kept) {
  std::string text = absl::StrCat("model_checkpoint_path: \"", CheckpointDirName(latest), "\"\n");
  for (int64_t step : kept) {
    absl::StrAppend(&text, "all_model_checkpoint_paths: \"", CheckpointDirName(step), "\"\n");
  }
  const absl::string_view pieces[] = {text};
  return WriteFileAtomically(fs, JoinPath(model_dir, kCheckpointPointerFile), pieces);
}

absl::StatusOr<std::unique_ptr<CheckpointReader>> OpenCheckpoint(FileSystem& fs,
                                                                 const std::string& model_dir,
                                                                 int64_t step) {
  const std::string dir = CheckpointPath(model_dir, step);
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointReader> reader,
                             CheckpointReader::Open(fs, dir));
  if (reader->step() != step) {
    return absl::DataLossError(absl::StrCat(
        "checkpoint ", dir, " is corrupt: its manifest ", JoinPath(dir, kManifestFileName),
        " says step ", reader->step(), " but the directory is named ", CheckpointDirName(step),
        "; the checkpoint will not be restored"));
  }
  return reader;
}

absl::StatusOr<LatestCheckpoint> FindLatestCheckpoint(FileSystem& fs, const std::string& model_dir,
                                                      int64_t max_step) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<CheckpointDirEntry> entries,
                             ListCheckpointDirs(fs, model_dir));
  LatestCheckpoint latest;
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    if (!it->committed || (max_step >= 0 && it->step > max_step)) continue;
    absl::StatusOr<std::unique_ptr<CheckpointReader>> reader =
        OpenCheckpoint(fs, model_dir, it->step);
    if (reader.ok()) {
      latest.reader = std::move(*reader);
      return latest;
    }
    // Deleted between listing and reading (pruned meanwhile): not corrupt.
    if (absl::IsNotFound(reader.status())) continue;
    latest.skipped.push_back(reader.status());
  }
  return latest;
}

namespace {

// Deletes a committed checkpoint: index.json first (see PruneCheckpoints).
absl::Status RemoveCommitted(FileSystem& fs, const std::string& dir) {
  MESHTRAIN_RETURN_IF_ERROR(fs.RemoveAll(JoinPath(dir, kManifestFileName)));
  MESHTRAIN_RETURN_IF_ERROR(fs.SyncDir(dir));
  return fs.RemoveAll(dir);
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> PruneCheckpoints(FileSystem& fs, const std::string& model_dir,
                                                      int64_t newest, int max_to_keep) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<CheckpointDirEntry> entries,
                             ListCheckpointDirs(fs, model_dir));
  std::vector<int64_t> kept;  // newest first
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const std::string dir = CheckpointPath(model_dir, it->step);
    if (it->step > newest) continue;  // a newer one is being written: not ours to judge
    if (!it->committed) {
      if (it->step < newest) MESHTRAIN_RETURN_IF_ERROR(fs.RemoveAll(dir));
      continue;
    }
    if (max_to_keep > 0 && static_cast<int>(kept.size()) >= max_to_keep) {
      MESHTRAIN_RETURN_IF_ERROR(RemoveCommitted(fs, dir));
      continue;
    }
    if (max_to_keep > 0) {
      absl::StatusOr<std::unique_ptr<CheckpointReader>> reader =
          OpenCheckpoint(fs, model_dir, it->step);
      if (absl::IsNotFound(reader.status())) continue;
      if (!reader.ok()) {
        MESHTRAIN_LOG(WARNING) << "checkpoint pruning: " << reader.status().message()
                               << "; it does not count toward max_to_keep";
        continue;
      }
    }
    kept.push_back(it->step);
  }
  std::reverse(kept.begin(), kept.end());
  return kept;
}

}  // namespace meshtrain
