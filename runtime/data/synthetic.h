// Synthetic datasets for tests and benchmarks that need no files. Each is a
// pure function of its options: bit-identical on every process and platform
// (PortableRandom: integer draws and IEEE float arithmetic only), so every task
// of a cluster can build its own copy. Stateless; safe from any thread.
#ifndef MESHTRAIN_RUNTIME_DATA_SYNTHETIC_H_
#define MESHTRAIN_RUNTIME_DATA_SYNTHETIC_H_

#include <cstdint>

#include "absl/status/status.h"
#include "runtime/data/dataset.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain {

// Gaussian-like clusters: class c has a centroid whose coordinates are uniform
// in [-centroid_scale, centroid_scale]; an example of class c is its centroid
// plus independent noise of standard deviation `noise` per feature. Labels are
// uniform over the classes. With the defaults (64 features, 10 classes, scale
// 1, noise 1.5) the nearest-centroid rule scores about 90%, so a small MLP
// learns it well above chance (10%) within an epoch or two, but not trivially.
struct SyntheticOptions {
  int64_t num_examples = 4096;
  int64_t num_features = 64;
  int num_classes = 10;
  uint64_t seed = 1;  // picks the task: the centroids
  float centroid_scale = 1.0f;
  float noise = 1.5f;
  // Train and test draw different examples around the same centroids.
  Split split = Split::kTrain;
};

// InvalidArgument unless num_examples >= 0, num_features >= 1, num_classes >= 2,
// and scale and noise are finite and >= 0.
absl::Status ValidateSyntheticOptions(const SyntheticOptions& options);

// The dataset "synthetic-classification/<split>": inputs float32
// [num_examples, num_features], labels int32 [num_examples]. The options must
// be valid (checked).
Dataset MakeSyntheticClassification(const SyntheticOptions& options);

// The class centroids of `options`' task: float32 [num_classes, num_features].
Tensor SyntheticCentroids(const SyntheticOptions& options);

// Click-through logs, for sparse models: each example has `num_fields`
// categorical fields. Field f takes value v in [0, vocabulary) with a skewed
// frequency (v = floor(vocabulary * u^3), u uniform: a few values are common,
// most are rare, as in real logs), and the model sees the hashing trick's id
// of (f, v) in [0, hash_buckets). Every (f, v) has a hidden weight w(f, v) =
// weight_scale * N(0, 1) (a pure function of the seed); an example is a click
// (label 1) when bias + sum_f w(f, v_f) + noise * N(0, 1) > 0. So the labels
// carry a signal an embedding model can learn from the ids, the base rate is
// about 0.2 with the defaults, and a batch touches few of the table's rows.
// Train and test draw different examples with the same hidden weights.
struct SyntheticCtrOptions {
  int64_t num_examples = 100000;
  int num_fields = 16;
  int64_t vocabulary = 10000;      // values per field
  int64_t hash_buckets = 1 << 20;  // ids in [0, hash_buckets)
  float weight_scale = 0.4f;
  float bias = -1.5f;
  float noise = 1.0f;
  uint64_t seed = 1;
  Split split = Split::kTrain;
};

// InvalidArgument naming the field unless num_examples >= 0, num_fields >= 1,
// vocabulary >= 1, hash_buckets >= 1 and the floats are finite (noise >= 0).
absl::Status ValidateSyntheticCtrOptions(const SyntheticCtrOptions& options);

// The dataset "synthetic-ctr/<split>": inputs int64 [num_examples, num_fields]
// (hashed ids), labels float32 [num_examples] in {0, 1}, num_classes 0. The
// options must be valid (checked).
Dataset MakeSyntheticCtr(const SyntheticCtrOptions& options);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_SYNTHETIC_H_
