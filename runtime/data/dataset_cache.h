// DatasetCache: tf.data's cache(filename) for datasets read from files. The
// first run decodes the files once, record by record, into two .npy arrays in
// a cache directory (inputs [n, width] as uint8 pixel bytes or float32
// value / divisor, labels int32 [n]); every run then trains from the mapped
// arrays (LoadNpyDataset), so the process holds no copy of the data and a set
// larger than memory trains out of the page cache. Decoding holds one record
// at a time.
//
// A cache belongs to its source: the files (path, size, modification time)
// and the loader's spec. Its name is a hash of the paths and the spec; a
// manifest (JSON, written last and atomically) records the rest. A cache
// whose manifest is missing or names other sizes or times is rebuilt. The
// arrays are written through temporary files and renamed, so processes that
// build the same cache at once (workers of one host) each end with a whole
// one. Thread-compatible.
#ifndef MESHTRAIN_RUNTIME_DATA_DATASET_CACHE_H_
#define MESHTRAIN_RUNTIME_DATA_DATASET_CACHE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/data/dataset.h"
#include "runtime/tensor/dtype.h"

namespace meshtrain {

// Appends decoded examples to a cache being built, in order.
class CacheRowWriter {
 public:
  virtual ~CacheRowWriter() = default;
  // One example: `width` inputs of the cache's dtype, and its class.
  virtual absl::Status Append(const void* inputs, int32_t label) = 0;
};

class DatasetCache {
 public:
  // The cache of `files` read with `spec` (the loader's settings, as text) in
  // `dir`, created if missing. `name` names the dataset in messages and the
  // cache files ("tfrecord/train"). InvalidArgument for an empty dir;
  // errors of the file system (naming the path) otherwise.
  static absl::StatusOr<DatasetCache> Open(const std::string& dir, const std::string& name,
                                           absl::Span<const std::string> files,
                                           const std::string& spec);

  // True when a whole cache of this source is there.
  bool complete() const { return complete_; }
  const std::string& inputs_path() const { return inputs_path_; }

  // Builds the cache: `n` examples of `width` inputs of `input_dtype` (uint8
  // or float32), which `decode` appends in order (a count other than n is
  // DataLoss: the files changed while being read). Then complete().
  absl::Status Build(DType input_dtype, int64_t n, int64_t width,
                     const std::function<absl::Status(CacheRowWriter&)>& decode);

  // The cached dataset, mapped: uint8 inputs are divided by `divisor` per
  // batch; float32 ones were divided when cached. Requires complete().
  absl::StatusOr<Dataset> Load(float divisor, int num_classes) const;

 private:
  DatasetCache() = default;

  std::string name_;
  std::string inputs_path_;
  std::string labels_path_;
  std::string manifest_path_;
  std::string manifest_;  // what a complete cache's manifest holds
  bool complete_ = false;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_DATASET_CACHE_H_
