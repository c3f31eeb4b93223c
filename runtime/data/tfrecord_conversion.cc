#include "runtime/data/tfrecord_conversion.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/csv_dataset.h"
#include "runtime/data/idx_file.h"
#include "runtime/data/npy_file.h"
#include "runtime/data/tfrecord_dataset.h"

namespace meshtrain {
namespace {

// The class bound the readers check: any non-negative int32 when unset.
int ClassBound(const ConversionSource& source) {
  return source.num_classes > 0 ? source.num_classes : std::numeric_limits<int32_t>::max();
}

absl::StatusOr<Dataset> LoadIdxSplit(const std::string& dir, Split split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  MESHTRAIN_ASSIGN_OR_RETURN(const std::string images_path,
                             FindIdxFile(dir, prefix + "-images-idx3-ubyte"));
  MESHTRAIN_ASSIGN_OR_RETURN(const std::string labels_path,
                             FindIdxFile(dir, prefix + "-labels-idx1-ubyte"));
  MESHTRAIN_ASSIGN_OR_RETURN(IdxArray read_images, ReadIdxFile(images_path));
  MESHTRAIN_ASSIGN_OR_RETURN(IdxArray labels, ReadIdxFile(labels_path));
  auto images = std::make_shared<IdxArray>(std::move(read_images));
  if (images->dims.empty() || images->dims[0] == 0 || labels.dims.size() != 1 ||
      images->dims[0] != labels.dims[0]) {
    return absl::InvalidArgumentError(absl::StrCat(
        images_path, " [", absl::StrJoin(images->dims, ", "), "] and ", labels_path, " [",
        absl::StrJoin(labels.dims, ", "), "] do not hold one label per example (n > 0)"));
  }
  const int64_t n = images->dims[0];
  Dataset dataset;
  dataset.name = absl::StrCat("idx/", SplitName(split));
  dataset.inputs = Tensor::WrapHost(DType::kUInt8, Shape{n, images->num_values / n},
                                    images->values.get(), images);
  dataset.labels = Tensor(DType::kInt32, Shape{n});
  for (int64_t i = 0; i < n; ++i) dataset.labels.data<int32_t>()[i] = labels.values[i];
  return dataset;
}

absl::StatusOr<Dataset> LoadCsvSplit(const ConversionSource& source, Split split) {
  MESHTRAIN_ASSIGN_OR_RETURN(
      const std::vector<std::string> files,
      ExpandFilePattern(split == Split::kTrain ? source.train_files : source.test_files));
  CsvSpec spec;
  spec.label_column = source.label_column;
  spec.num_classes = ClassBound(source);
  MESHTRAIN_ASSIGN_OR_RETURN(Dataset dataset,
                             LoadCsvDataset(files, spec, absl::StrCat("csv/", SplitName(split))));
  NarrowToBytes(dataset);
  return dataset;
}

}  // namespace

absl::StatusOr<std::vector<Split>> ConversionSplits(const ConversionSource& source) {
  auto needs = [&](absl::string_view flags) {
    return absl::InvalidArgumentError(absl::StrCat("--from ", source.format, " needs ", flags));
  };
  if (source.format == "idx") {
    if (source.dir.empty()) return needs("--dir (the folder of the IDX files)");
    return std::vector<Split>{Split::kTrain, Split::kTest};
  }
  if (source.format == "csv") {
    if (source.train_files.empty()) return needs("--train-files (a glob of CSV files)");
    if (source.test_files.empty()) return std::vector<Split>{Split::kTrain};
    return std::vector<Split>{Split::kTrain, Split::kTest};
  }
  if (source.format == "npy") {
    if (source.train_inputs.empty() || source.train_labels.empty()) {
      return needs("--train-inputs and --train-labels (.npy files or ARCHIVE.npz:NAME)");
    }
    if (source.test_inputs.empty() != source.test_labels.empty()) {
      return needs("both --test-inputs and --test-labels, or neither");
    }
    if (source.test_inputs.empty()) return std::vector<Split>{Split::kTrain};
    return std::vector<Split>{Split::kTrain, Split::kTest};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--from ", QuoteForMessage(source.format),
                   ": the converter reads idx (MNIST-like IDX files), csv or npy (.npy/.npz)"));
}

absl::StatusOr<Dataset> LoadConversionSplit(const ConversionSource& source, Split split) {
  if (source.format == "idx") return LoadIdxSplit(source.dir, split);
  if (source.format == "csv") return LoadCsvSplit(source, split);
  if (source.format == "npy") {
    const bool train = split == Split::kTrain;
    // Divisor 1: u1 arrays stay bytes, other dtypes become their float32 values.
    return LoadNpyDataset(train ? source.train_inputs : source.test_inputs,
                          train ? source.train_labels : source.test_labels, 1.0f,
                          ClassBound(source), absl::StrCat("npy/", SplitName(split)));
  }
  return ConversionSplits(source).status();
}

bool NarrowToBytes(Dataset& dataset) {
  if (dataset.inputs.dtype() != DType::kFloat32) return false;
  const float* values = dataset.inputs.data<float>();
  const int64_t count = dataset.inputs.num_elements();
  for (int64_t i = 0; i < count; ++i) {
    const float v = values[i];
    // -0 would come back as +0; a fraction or a value past a byte would not
    // come back at all.
    if (!(v >= 0.0f && v <= 255.0f) || v != std::floor(v) || std::signbit(v)) return false;
  }
  Tensor bytes(DType::kUInt8, dataset.inputs.shape());
  uint8_t* out = bytes.data<uint8_t>();
  for (int64_t i = 0; i < count; ++i) out[i] = static_cast<uint8_t>(values[i]);
  dataset.inputs = std::move(bytes);
  dataset.input_divisor = 1.0f;
  return true;
}

absl::StatusOr<std::vector<ConvertedSplit>> ConvertToTfRecord(const ConversionSource& source,
                                                              const TfRecordOutput& output) {
  MESHTRAIN_ASSIGN_OR_RETURN(const std::vector<Split> splits, ConversionSplits(source));
  if (output.dir.empty())
    return absl::InvalidArgumentError("--out (the folder to write) is required");
  if (::mkdir(output.dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::PermissionDeniedError(
        absl::StrCat(output.dir, ": cannot make the output folder (", std::strerror(errno), ")"));
  }
  ExampleSpec spec;  // "image" and "label", the job config's defaults
  std::vector<ConvertedSplit> converted;
  for (const Split split : splits) {
    MESHTRAIN_ASSIGN_OR_RETURN(const Dataset dataset, LoadConversionSplit(source, split));
    ConvertedSplit done;
    done.split = split;
    done.examples = dataset.size();
    done.bytes_input = dataset.inputs.dtype() == DType::kUInt8;
    MESHTRAIN_ASSIGN_OR_RETURN(
        done.paths,
        WriteTfRecordShards(dataset, spec, absl::StrCat(output.dir, "/", SplitName(split)),
                            output.shards, output.gzip));
    converted.push_back(std::move(done));
  }
  return converted;
}

}  // namespace meshtrain
