// Datasets of tf.train.Example records in TFRecord files (GZIP or not), as a
// TensorFlow user has them: one feature holds the input (a bytes feature of
// uint8 values, such as raw image pixels, or a float or int64 list), another
// the class label (an int64 list of one value). Every record is checked: its
// CRCs, that it parses, that the features are there with the kind and size
// the spec says; errors name the file, the record and the fix.
//
// The writer side is the converter's (`meshtrain data convert`): a dataset's
// rows and labels into N shards, named as tf.data users name them.
#ifndef MESHTRAIN_RUNTIME_DATA_TFRECORD_DATASET_H_
#define MESHTRAIN_RUNTIME_DATA_TFRECORD_DATASET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/data/dataset.h"

namespace meshtrain {

struct ExampleSpec {
  std::string input_feature = "image";
  std::string label_feature = "label";
  int64_t input_size = 0;  // values per example; 0: the first record's
  // Inputs are value / divisor as float32 (255 turns pixel bytes into [0, 1],
  // exactly as the IDX loader does). A bytes feature is kept as uint8 and
  // divided per batch (Dataset::input_divisor); number lists are divided here.
  float divisor = 1.0f;
  int num_classes = 0;  // labels must lie in [0, num_classes); required
  // "": decode into memory. Otherwise decode once into a DatasetCache in this
  // directory (dataset_cache.h) and train from the mapped arrays: for sets
  // larger than memory, and to skip decoding on later runs.
  std::string cache_dir;
};

// The files `pattern` names (a glob; sorted), or NotFound naming the pattern.
absl::StatusOr<std::vector<std::string>> ExpandFilePattern(const std::string& pattern);

// Every record of `files`, in order, as one Dataset called `name`.
absl::StatusOr<Dataset> LoadTfRecordDataset(absl::Span<const std::string> files,
                                            const ExampleSpec& spec, const std::string& name);

// Writes the examples of `dataset` as Examples with spec's feature names into
// `shards` files "<prefix>-<i>-of-<shards>.tfrecord[.gz]" (i and shards five
// digits), each a contiguous run of examples, so that reading the shards in
// name order gives the examples in their first order: uint8 inputs as one
// bytes value, float32 inputs as a float list (the values as they are: spec's
// divisor is the reader's), int32 labels as an int64 list of one value. The
// dataset read back (with a divisor d) holds the very batches of `dataset`
// loaded with d. Returns the paths.
absl::StatusOr<std::vector<std::string>> WriteTfRecordShards(const Dataset& dataset,
                                                             const ExampleSpec& spec,
                                                             const std::string& prefix, int shards,
                                                             bool gzip);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_TFRECORD_DATASET_H_
