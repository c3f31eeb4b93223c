// CheckpointReader: one committed checkpoint (MODEL_DIR/ckpt-STEP/), read and
// verified before anything is restored from it: the manifest parses, every
// listed file exists with the listed size and CRC32C, every file is valid
// safetensors, and every partition's value and slot tensors exist there with
// the variable's dtype and the partition's shape. Any failure is kDataLoss
// naming the file (NotFound when there is no index.json: not committed).
//
// Restoring reads rows by the whole variable's numbering, whatever partitions
// the writer used, so a checkpoint written by 2 ps tasks restores into one
// device and one written by one worker into 3 ps shards. The files are held in
// memory. Immutable after Open; thread-safe.
#ifndef MESHTRAIN_RUNTIME_CHECKPOINT_CHECKPOINT_READER_H_
#define MESHTRAIN_RUNTIME_CHECKPOINT_CHECKPOINT_READER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/base/file_system.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/safetensors.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain {

class CheckpointReader {
 public:
  static absl::StatusOr<std::unique_ptr<CheckpointReader>> Open(FileSystem& fs,
                                                                const std::string& checkpoint_dir);

  const std::string& path() const { return path_; }
  const Manifest& manifest() const { return manifest_; }
  int64_t step() const { return manifest_.step; }
  // Null if the checkpoint has no such variable.
  const VariableRecord* Find(absl::string_view name) const;

  // Copies rows [row_begin, row_begin + out.rows()) of variable `name` into the
  // host tensor `out` (a scalar: out is the scalar), or of its optimizer slot
  // `slot` (empty: the value). NotFound for an unknown variable or slot;
  // InvalidArgument when out's dtype or row shape differ from the variable's
  // or the rows are out of range.
  absl::Status ReadRows(absl::string_view name, absl::string_view slot, int64_t row_begin,
                        Tensor& out) const;
  // The update count of the partition holding row `row`.
  absl::StatusOr<int64_t> Updates(absl::string_view name, int64_t row) const;

 private:
  CheckpointReader() = default;

  std::string path_;
  Manifest manifest_;
  std::map<std::string, SafetensorsFile> files_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CHECKPOINT_CHECKPOINT_READER_H_
