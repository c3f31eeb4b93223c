#include "runtime/data/fashion_mnist.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/idx_file.h"

namespace meshtrain {
namespace {

constexpr int kSide = 28;

// FindIdxFile, with what to do when the dataset is missing.
absl::StatusOr<std::string> FindFile(absl::string_view dir, absl::string_view name,
                                     absl::string_view what) {
  absl::StatusOr<std::string> path = FindIdxFile(dir, name);
  if (path.ok()) return path;
  return absl::NotFoundError(
      absl::StrCat("loading Fashion-MNIST ", what, ": ", path.status().message(),
                   "; install it with: apt-get install dataset-fashion-mnist, or point the data "
                   "directory at a folder holding the four IDX files"));
}

}  // namespace

absl::StatusOr<Dataset> LoadFashionMnist(absl::string_view dir, Split split) {
  const absl::string_view prefix = split == Split::kTrain ? "train" : "t10k";
  const std::string split_name(SplitName(split));
  MESHTRAIN_ASSIGN_OR_RETURN(
      const std::string images_path,
      FindFile(dir, absl::StrCat(prefix, "-images-idx3-ubyte"), split_name + " images"));
  MESHTRAIN_ASSIGN_OR_RETURN(
      const std::string labels_path,
      FindFile(dir, absl::StrCat(prefix, "-labels-idx1-ubyte"), split_name + " labels"));
  MESHTRAIN_ASSIGN_OR_RETURN(const IdxArray images, ReadIdxFile(images_path));
  MESHTRAIN_ASSIGN_OR_RETURN(const IdxArray labels, ReadIdxFile(labels_path));

  if (images.dims.size() != 3 || images.dims[1] != kSide || images.dims[2] != kSide) {
    return absl::DataLossError(absl::StrCat("Fashion-MNIST images ", images_path, ": dimensions [",
                                            absl::StrJoin(images.dims, ", "),
                                            "], expected [n, 28, 28]"));
  }
  if (labels.dims.size() != 1) {
    return absl::DataLossError(absl::StrCat("Fashion-MNIST labels ", labels_path, ": dimensions [",
                                            absl::StrJoin(labels.dims, ", "), "], expected [n]"));
  }
  const int64_t n = images.dims[0];
  if (labels.dims[0] != n) {
    return absl::DataLossError(absl::StrCat("Fashion-MNIST ", split_name, ": ", images_path,
                                            " holds ", n, " images but ", labels_path, " holds ",
                                            labels.dims[0], " labels"));
  }

  Dataset dataset;
  dataset.name = absl::StrCat("fashion-mnist/", split_name);
  dataset.num_classes = kFashionMnistClasses;
  dataset.labels = Tensor(DType::kInt32, Shape{n});
  int32_t* label_out = dataset.labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t label = labels.values[i];
    if (label >= kFashionMnistClasses) {
      return absl::DataLossError(absl::StrCat("Fashion-MNIST labels ", labels_path, ": label ",
                                              label, " of example ", i, " is not a class in [0, ",
                                              kFashionMnistClasses, ")"));
    }
    label_out[i] = label;
  }
  // Pixels stay bytes; a batch turns them into [0, 1] (Dataset::input_divisor).
  dataset.inputs = Tensor(DType::kUInt8, Shape{n, kFashionMnistPixels});
  dataset.input_divisor = 255.0f;
  std::memcpy(dataset.inputs.raw_data(), images.values.get(), images.num_values);
  return dataset;
}

}  // namespace meshtrain
