#include "runtime/data/synthetic.h"

#include <cstring>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/base/logging.h"

namespace meshtrain {
namespace {

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.bytes()) == 0;
}

TEST(SyntheticTest, ShapesAndDeterminism) {
  const SyntheticOptions options{.num_examples = 500, .num_features = 16, .num_classes = 4,
                                 .seed = 9};
  const Dataset a = MakeSyntheticClassification(options);
  const Dataset b = MakeSyntheticClassification(options);
  ASSERT_TRUE(ValidateDataset(a).ok());
  EXPECT_EQ(a.name, "synthetic-classification/train");
  EXPECT_EQ(a.inputs.shape(), (Shape{500, 16}));
  EXPECT_EQ(a.labels.shape(), (Shape{500}));
  EXPECT_EQ(a.num_classes, 4);
  EXPECT_TRUE(SameBytes(a.inputs, b.inputs));
  EXPECT_TRUE(SameBytes(a.labels, b.labels));

  SyntheticOptions other = options;
  other.seed = 10;
  EXPECT_FALSE(SameBytes(a.inputs, MakeSyntheticClassification(other).inputs));
  other = options;
  other.split = Split::kTest;
  const Dataset test = MakeSyntheticClassification(other);
  EXPECT_EQ(test.name, "synthetic-classification/test");
  EXPECT_FALSE(SameBytes(a.inputs, test.inputs));
  EXPECT_TRUE(SameBytes(SyntheticCentroids(options), SyntheticCentroids(other)));
}

// The nearest class mean of the training split classifies the test split far
// above chance: the data carries a signal a small model can learn.
TEST(SyntheticTest, DefaultTaskIsLearnable) {
  SyntheticOptions options;
  options.num_examples = 4000;
  const Dataset train = MakeSyntheticClassification(options);
  options.split = Split::kTest;
  options.num_examples = 2000;
  const Dataset test = MakeSyntheticClassification(options);
  const int k = train.num_classes;
  const int64_t d = train.inputs.shape().dim(1);

  std::vector<double> means(k * d, 0.0);
  std::vector<int64_t> counts(k, 0);
  for (int64_t i = 0; i < train.size(); ++i) {
    const int32_t c = train.labels.data<int32_t>()[i];
    ASSERT_TRUE(c >= 0 && c < k);
    ++counts[c];
    for (int64_t j = 0; j < d; ++j) means[c * d + j] += train.inputs.data<float>()[i * d + j];
  }
  for (int c = 0; c < k; ++c) {
    // Uniform labels: each class near 400 of 4000.
    EXPECT_GT(counts[c], 300) << "class " << c;
    EXPECT_LT(counts[c], 500) << "class " << c;
    for (int64_t j = 0; j < d; ++j) means[c * d + j] /= counts[c];
  }
  int64_t correct = 0;
  for (int64_t i = 0; i < test.size(); ++i) {
    const float* x = test.inputs.data<float>() + i * d;
    int best = -1;
    double best_distance = std::numeric_limits<double>::infinity();
    for (int c = 0; c < k; ++c) {
      double distance = 0;
      for (int64_t j = 0; j < d; ++j) distance += (x[j] - means[c * d + j]) * (x[j] - means[c * d + j]);
      if (distance < best_distance) best_distance = distance, best = c;
    }
    correct += best == test.labels.data<int32_t>()[i];
  }
  const double accuracy = static_cast<double>(correct) / test.size();
  MESHTRAIN_LOG(INFO) << "nearest class mean accuracy " << accuracy;
  EXPECT_GT(accuracy, 0.8) << "chance is " << 1.0 / k;
  // Not trivially separable either, so training curves mean something.
  EXPECT_LT(accuracy, 0.99);
}

TEST(SyntheticTest, ValidateRejectsBadOptions) {
  EXPECT_TRUE(ValidateSyntheticOptions({}).ok());
  for (const SyntheticOptions& o : {SyntheticOptions{.num_examples = -1},
                                    SyntheticOptions{.num_features = 0},
                                    SyntheticOptions{.num_classes = 1},
                                    SyntheticOptions{.noise = -1.0f},
                                    SyntheticOptions{.centroid_scale = NAN}}) {
    EXPECT_EQ(ValidateSyntheticOptions(o).code(), absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace meshtrain
