#include "runtime/data/synthetic.h"

#include <algorithm>
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
// Click-through data: the hidden weights, the hashing of ids.
constexpr uint64_t kCtrWeightStream = 3;
constexpr uint64_t kCtrHashStream = 4;

// Four uniforms from a hash, centred and scaled as PortableRandom::NormalApprox.
float HashNormal(uint64_t key) {
  float sum = 0.0f;
  for (uint64_t k = 0; k < 4; ++k) {
    sum += static_cast<float>(MixBits(key + k) >> 40) * (1.0f / 16777216.0f);
  }
  return (sum - 2.0f) * 1.7320508f;
}

uint64_t FieldValueKey(int field, int64_t value) {
  return (static_cast<uint64_t>(field) << 40) ^ static_cast<uint64_t>(value);
}

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

absl::Status ValidateSyntheticCtrOptions(const SyntheticCtrOptions& o) {
  const auto error = [](auto... what) {
    return absl::InvalidArgumentError(absl::StrCat("synthetic click-through data: ", what...));
  };
  if (o.num_examples < 0) return error("num_examples ", o.num_examples, " < 0");
  if (o.num_fields < 1) return error("num_fields ", o.num_fields, " < 1");
  if (o.vocabulary < 1) return error("vocabulary ", o.vocabulary, " < 1");
  if (o.hash_buckets < 1) return error("hash_buckets ", o.hash_buckets, " < 1");
  if (!std::isfinite(o.weight_scale) || !std::isfinite(o.bias) || !std::isfinite(o.noise) ||
      o.noise < 0) {
    return error("weight_scale, bias and noise must be finite, noise >= 0");
  }
  return absl::OkStatus();
}

Dataset MakeSyntheticCtr(const SyntheticCtrOptions& options) {
  const absl::Status valid = ValidateSyntheticCtrOptions(options);
  MESHTRAIN_CHECK(valid.ok()) << valid;
  const int64_t n = options.num_examples;
  const int fields = options.num_fields;
  const uint64_t weight_key = DeriveSeed(options.seed, kCtrWeightStream);
  const uint64_t hash_key = DeriveSeed(options.seed, kCtrHashStream);
  Dataset dataset;
  dataset.name = absl::StrCat("synthetic-ctr/", SplitName(options.split));
  dataset.num_classes = 0;
  dataset.inputs = Tensor(DType::kInt64, Shape{n, fields});
  dataset.labels = Tensor(DType::kFloat32, Shape{n});
  // Streams 1 and 2 as for the classification data, but of a derived seed.
  PortableRandom random(DeriveSeed(DeriveSeed(options.seed, kCtrWeightStream),
                                   options.split == Split::kTrain ? kTrainStream : kTestStream));
  int64_t* ids = dataset.inputs.data<int64_t>();
  float* labels = dataset.labels.data<float>();
  const float vocabulary = static_cast<float>(options.vocabulary);
  for (int64_t i = 0; i < n; ++i) {
    float logit = options.bias;
    for (int f = 0; f < fields; ++f) {
      const float u = random.UniformFloat();
      const float skewed = u * u * u;
      const int64_t value =
          std::min(options.vocabulary - 1, static_cast<int64_t>(skewed * vocabulary));
      const uint64_t key = FieldValueKey(f, value);
      logit += options.weight_scale * HashNormal(MixBits(weight_key ^ key));
      ids[i * fields + f] = static_cast<int64_t>(MixBits(hash_key ^ key) %
                                                 static_cast<uint64_t>(options.hash_buckets));
    }
    const float noise = options.noise * random.NormalApprox();
    labels[i] = logit + noise > 0.0f ? 1.0f : 0.0f;
  }
  return dataset;
}

}  // namespace meshtrain
