// `meshtrain data convert`'s logic: one dataset in IDX, CSV or NumPy form read
// with its raw values (no divisor) and written as TFRecord shards of
// tf.train.Example, "image" (the inputs) and "label" (the class), so that a
// job trained from the shards under auto_shard data ends with the very
// parameters of one trained from the source with the same divisor. The rule
// for the input feature, per split:
//   - uint8 values (IDX pixels, a u1 NumPy array): one bytes value;
//   - CSV whose every input value of the split is an integer in 0..255: one
//     bytes value too (a quarter of the size; the reader's per-batch
//     byte / divisor equals the CSV reader's value / divisor exactly);
//   - anything else (other NumPy dtypes, other CSV): a float list of the
//     values as float32, as the CSV and NumPy readers hold them before
//     dividing.
// Stateless functions; errors are the readers' (naming the file) or
// InvalidArgument naming the missing flag.
#ifndef MESHTRAIN_RUNTIME_DATA_TFRECORD_CONVERSION_H_
#define MESHTRAIN_RUNTIME_DATA_TFRECORD_CONVERSION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/data/dataset.h"

namespace meshtrain {

struct ConversionSource {
  std::string format;  // "idx", "csv" or "npy"
  // idx: the folder of train-images-idx3-ubyte[.gz], t10k-... (both splits).
  std::string dir;
  // csv: globs of CSV files with a header (the test split is optional); the
  // label column by name.
  std::string train_files;
  std::string test_files;
  std::string label_column = "label";
  // npy: .npy files or "ARCHIVE.npz:NAME" members (the test split is optional).
  std::string train_inputs;
  std::string train_labels;
  std::string test_inputs;
  std::string test_labels;
  // Labels must lie in [0, num_classes); 0: any non-negative int32.
  int num_classes = 0;
};

struct TfRecordOutput {
  std::string dir;  // made if absent
  int shards = 8;
  bool gzip = false;
};

struct ConvertedSplit {
  Split split = Split::kTrain;
  int64_t examples = 0;
  bool bytes_input = false;  // the input feature is bytes (else a float list)
  std::vector<std::string> paths;
};

// The splits `source` names; InvalidArgument naming the missing flag
// (--dir, --train-files, --train-inputs ...) or an unknown format.
absl::StatusOr<std::vector<Split>> ConversionSplits(const ConversionSource& source);

// One split of `source` with its raw values (divisor 1), uint8 inputs for
// bytes and float32 for the rest, after the rule above.
absl::StatusOr<Dataset> LoadConversionSplit(const ConversionSource& source, Split split);

// Replaces float32 inputs by uint8 ones when every value is an integer in
// 0..255 (not -0); returns whether it did.
bool NarrowToBytes(Dataset& dataset);

// Every split of `source` into "<dir>/<split>-<i>-of-<shards>.tfrecord[.gz]".
absl::StatusOr<std::vector<ConvertedSplit>> ConvertToTfRecord(const ConversionSource& source,
                                                              const TfRecordOutput& output);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_TFRECORD_CONVERSION_H_
