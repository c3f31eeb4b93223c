#include "runtime/data/synthetic.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/base/logging.h"

namespace meshtrain {
namespace {

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.bytes()) == 0;
}

TEST(SyntheticTest, ShapesAndDeterminism) {
  const SyntheticOptions options{
      .num_examples = 500, .num_features = 16, .num_classes = 4, .seed = 9};
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
      for (int64_t j = 0; j < d; ++j)
        distance += (x[j] - means[c * d + j]) * (x[j] - means[c * d + j]);
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
  for (const SyntheticOptions& o :
       {SyntheticOptions{.num_examples = -1}, SyntheticOptions{.num_features = 0},
        SyntheticOptions{.num_classes = 1}, SyntheticOptions{.noise = -1.0f},
        SyntheticOptions{.centroid_scale = NAN}}) {
    EXPECT_EQ(ValidateSyntheticOptions(o).code(), absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace meshtrain

namespace meshtrain {
namespace {

TEST(SyntheticCtrTest, ShapesIdsAndDeterminism) {
  SyntheticCtrOptions options;
  options.num_examples = 2000;
  options.num_fields = 5;
  options.hash_buckets = 1000;
  const Dataset a = MakeSyntheticCtr(options);
  ASSERT_TRUE(ValidateDataset(a).ok());
  EXPECT_EQ(a.name, "synthetic-ctr/train");
  EXPECT_EQ(a.num_classes, 0);
  EXPECT_EQ(a.inputs.shape(), (Shape{2000, 5}));
  EXPECT_EQ(a.inputs.dtype(), DType::kInt64);
  for (int64_t id : a.inputs.flat<int64_t>()) {
    ASSERT_GE(id, 0);
    ASSERT_LT(id, 1000);
  }
  for (float y : a.labels.flat<float>()) ASSERT_TRUE(y == 0.0f || y == 1.0f);
  EXPECT_TRUE(SameBytes(a.inputs, MakeSyntheticCtr(options).inputs));
  EXPECT_TRUE(SameBytes(a.labels, MakeSyntheticCtr(options).labels));
  SyntheticCtrOptions test = options;
  test.split = Split::kTest;
  EXPECT_FALSE(SameBytes(a.inputs, MakeSyntheticCtr(test).inputs));
  EXPECT_THAT(std::string(ValidateSyntheticCtrOptions({.num_fields = 0}).message()),
              ::testing::HasSubstr("num_fields"));
}

// A few values of each field are common, the base rate is near 0.2, and the
// click rate of each id seen in training predicts test clicks better than the
// base rate alone: there is a signal to learn from the ids.
TEST(SyntheticCtrTest, IdsCarryALearnableSignal) {
  SyntheticCtrOptions options;
  options.num_examples = 50000;
  const Dataset train = MakeSyntheticCtr(options);
  options.split = Split::kTest;
  options.num_examples = 10000;
  const Dataset test = MakeSyntheticCtr(options);
  const int fields = options.num_fields;
  double base = 0;
  for (float y : train.labels.flat<float>()) base += y;
  base /= static_cast<double>(train.size());
  EXPECT_GT(base, 0.1);
  EXPECT_LT(base, 0.35);
  std::unordered_map<int64_t, std::pair<double, double>> per_id;  // clicks, shows
  for (int64_t i = 0; i < train.size(); ++i) {
    for (int f = 0; f < fields; ++f) {
      auto& [clicks, shows] = per_id[train.inputs.data<int64_t>()[i * fields + f]];
      clicks += train.labels.data<float>()[i];
      shows += 1;
    }
  }
  // The most common id of a field shows up in a good share of examples.
  double most = 0;
  for (const auto& [id, cs] : per_id) most = std::max(most, cs.second);
  EXPECT_GT(most, 0.03 * static_cast<double>(train.size()));
  double model_loss = 0, base_loss = 0;
  for (int64_t i = 0; i < test.size(); ++i) {
    // Sum the ids' log-odds shifts from the base rate (smoothed toward it).
    const double base_logit = std::log(base / (1 - base));
    double logit = base_logit;
    for (int f = 0; f < fields; ++f) {
      auto it = per_id.find(test.inputs.data<int64_t>()[i * fields + f]);
      if (it == per_id.end()) continue;
      const double rate = (it->second.first + 20 * base) / (it->second.second + 20);
      logit += 0.5 * (std::log(rate / (1 - rate)) - base_logit);
    }
    const double p = 1 / (1 + std::exp(-logit));
    const double y = test.labels.data<float>()[i];
    model_loss -= y * std::log(p) + (1 - y) * std::log(1 - p);
    base_loss -= y * std::log(base) + (1 - y) * std::log(1 - base);
  }
  MESHTRAIN_LOG(INFO) << "id rates: test loss " << model_loss / test.size() << ", base rate "
                      << base_loss / test.size();
  EXPECT_LT(model_loss, 0.95 * base_loss)
      << model_loss / test.size() << " vs " << base_loss / test.size();
}

}  // namespace
}  // namespace meshtrain
