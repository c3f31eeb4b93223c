#include "training/step_agreement.h"

#include <algorithm>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

std::string KeyFor(int64_t generation, const TaskId& task) {
  return absl::StrCat("data/full_batches/", generation, "/", task.ToString());
}

}  // namespace

absl::StatusOr<int64_t> AgreeStepsPerEpoch(Mesh* mesh, const ClusterConfig& cluster,
                                           int64_t generation, int64_t full_batches,
                                           absl::Time deadline) {
  if (mesh == nullptr) return full_batches;
  MESHTRAIN_RETURN_IF_ERROR(
      mesh->coordination().KvSet(KeyFor(generation, cluster.task), absl::StrCat(full_batches)));
  int64_t fewest = full_batches;
  for (const TaskId& worker : mesh->TrainingMembers()) {
    const std::string key = KeyFor(generation, worker);
    absl::StatusOr<std::string> text = mesh->coordination().KvGet(key, deadline);
    if (!text.ok()) {
      return Annotate(text.status(),
                      absl::StrCat("auto_shard file: agreeing on the steps of an epoch, no count "
                                   "from ",
                                   worker.ToString(), " under ", key,
                                   " (is every worker running the same job config?)"));
    }
    int64_t theirs = 0;
    if (!absl::SimpleAtoi(*text, &theirs)) {
      return absl::InternalError(absl::StrCat("auto_shard file: ", worker.ToString(),
                                              " published '", *text, "' under ", key,
                                              ", not a count of batches"));
    }
    if (theirs < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("auto_shard file: ", worker.ToString(),
                       " holds no full batch of its own files; use a "
                       "smaller global batch, files of even sizes or auto_shard data"));
    }
    fewest = std::min(fewest, theirs);
  }
  return fewest;
}

}  // namespace meshtrain
