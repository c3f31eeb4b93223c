#include "runtime/data/synthetic.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/data/portable_random.h"

namespace meshtrain {
namespace {

// Streams of DeriveSeed(seed, ·): one for the centroids, one per split.
constexpr uint64_t kCentroidStream = 0;
constexpr uint64_t kTrainStream = 1;
constexpr uint64_t kTestStream = 2;

}  // namespace

absl::Status ValidateSyntheticOptions(const SyntheticOptions& o) {
  const auto error = [](auto... what) {
    return absl::InvalidArgumentError(absl::StrCat("synthetic classification: ", what...));
  };
  if (o.num_examples < 0) return error("num_examples ", o.num_examples, " < 0");
  if (o.num_features < 1) return error("num_features ", o.num_features, " < 1");
  if (o.num_classes < 2) return error("num_classes ", o.num_classes, " < 2");
  if (!std::isfinite(o.centroid_scale) || o.centroid_scale < 0) {
    return error("centroid_scale ", o.centroid_scale, " must be finite and >= 0");
  }
  if (!std::isfinite(o.noise) || o.noise < 0) {
    return error("noise ", o.noise, " must be finite and >= 0");
  }
  return absl::OkStatus();
}

Tensor SyntheticCentroids(const SyntheticOptions& options) {
  const absl::Status valid = ValidateSyntheticOptions(options);
  MESHTRAIN_CHECK(valid.ok()) << valid;
  Tensor centroids(DType::kFloat32, Shape{options.num_classes, options.num_features});
  PortableRandom random(DeriveSeed(options.seed, kCentroidStream));
  for (float& x : centroids.flat<float>()) {
    x = (2.0f * random.UniformFloat() - 1.0f) * options.centroid_scale;
  }
  return centroids;
}

Dataset MakeSyntheticClassification(const SyntheticOptions& options) {
  const Tensor centroids = SyntheticCentroids(options);
  const int64_t n = options.num_examples;
  const int64_t d = options.num_features;
  Dataset dataset;
  dataset.name = absl::StrCat("synthetic-classification/", SplitName(options.split));
  dataset.num_classes = options.num_classes;
  dataset.inputs = Tensor(DType::kFloat32, Shape{n, d});
  dataset.labels = Tensor(DType::kInt32, Shape{n});
  PortableRandom random(
      DeriveSeed(options.seed, options.split == Split::kTrain ? kTrainStream : kTestStream));
  const float* centroid_data = centroids.data<float>();
  float* inputs = dataset.inputs.data<float>();
  int32_t* labels = dataset.labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i) {
    const auto label = static_cast<int32_t>(random.UniformBelow(options.num_classes));
    labels[i] = label;
    const float* centroid = centroid_data + label * d;
    float* row = inputs + i * d;
    for (int64_t j = 0; j < d; ++j) {
      row[j] = centroid[j] + options.noise * random.NormalApprox();
    }
  }
  return dataset;
}

}  // namespace meshtrain
