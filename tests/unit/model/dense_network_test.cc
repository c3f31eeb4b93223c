#include "runtime/model/dense_network.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/model/fake_replica_context.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::FakeReplicaContext;

Batch RandomBatch(int64_t n, int64_t features, int num_classes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Batch batch{Tensor(DType::kFloat32, Shape{n, features}),
              Tensor(num_classes == 0 ? DType::kFloat32 : DType::kInt32, Shape{n})};
  for (float& x : batch.inputs.flat<float>()) x = normal(rng);
  for (int64_t i = 0; i < n; ++i) {
    if (num_classes == 0) {
      batch.labels.data<float>()[i] = static_cast<float>(rng() % 2);
    } else {
      batch.labels.data<int32_t>()[i] = static_cast<int32_t>(rng() % num_classes);
    }
  }
  return batch;
}

double LossSum(const Model& model, FakeReplicaContext& ctx, const Batch& batch) {
  auto stats = model.Evaluate(ctx, batch, nullptr);
  EXPECT_TRUE(stats.ok()) << stats.status();
  return stats->loss_sum;
}

// Central differences on every element of every variable against the analytic
// gradient of the summed loss.
void ExpectGradientsMatchFiniteDifferences(const ModelConfig& config, const ModelShape& shape) {
  FakeReplicaContext ctx;
  auto model = CreateModel(config, shape, ctx);
  ASSERT_TRUE(model.ok()) << model.status();
  // Non-zero biases so that every path (and the bias gradients) is exercised.
  for (VariableId id = 0; id < static_cast<VariableId>(ctx.specs().size()); ++id) {
    if (ctx.specs()[id].shape.rank() == 1) {
      float* b = ctx.mutable_value(id).data<float>();
      for (int64_t i = 0; i < ctx.specs()[id].shape.dim(0); ++i) b[i] = 0.05f * ((i % 5) - 2);
    }
  }
  const Batch batch = RandomBatch(6, shape.input_features, shape.num_classes, 11);
  auto stats = (*model)->ComputeGradients(ctx, batch, 1.0f);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_NEAR(stats->loss_sum, LossSum(**model, ctx, batch), 1e-5);

  const float eps = 1e-3f;
  for (VariableId id = 0; id < static_cast<VariableId>(ctx.specs().size()); ++id) {
    Tensor analytic = ctx.Gradient(id).Clone();
    float* value = ctx.mutable_value(id).data<float>();
    for (int64_t i = 0; i < analytic.num_elements(); ++i) {
      const float saved = value[i];
      value[i] = saved + eps;
      const double plus = LossSum(**model, ctx, batch);
      value[i] = saved - eps;
      const double minus = LossSum(**model, ctx, batch);
      value[i] = saved;
      const double numeric = (plus - minus) / (2.0 * eps);
      const double a = analytic.data<float>()[i];
      EXPECT_NEAR(a, numeric, 5e-3 + 2e-2 * std::fabs(numeric))
          << ctx.specs()[id].name << " element " << i;
    }
  }
}

TEST(DenseNetworkTest, MlpGradientsMatchFiniteDifferences) {
  ModelConfig config;
  config.hidden_units = {7, 5};
  ExpectGradientsMatchFiniteDifferences(config, ModelShape{6, 4});
}

TEST(DenseNetworkTest, SoftmaxRegressionGradientsMatchFiniteDifferences) {
  ModelConfig config;
  config.type = "softmax_regression";
  ExpectGradientsMatchFiniteDifferences(config, ModelShape{5, 3});
}

TEST(DenseNetworkTest, LogisticGradientsMatchFiniteDifferences) {
  ModelConfig config;
  config.hidden_units = {6};
  ExpectGradientsMatchFiniteDifferences(config, ModelShape{4, 0});
}

TEST(DenseNetworkTest, GradScaleScalesGradients) {
  ModelConfig config;
  config.hidden_units = {8};
  FakeReplicaContext ctx;
  auto model = CreateModel(config, ModelShape{5, 3}, ctx);
  ASSERT_TRUE(model.ok());
  const Batch batch = RandomBatch(4, 5, 3, 3);
  ASSERT_TRUE((*model)->ComputeGradients(ctx, batch, 1.0f).ok());
  Tensor full = ctx.Gradient(0).Clone();
  ASSERT_TRUE((*model)->ComputeGradients(ctx, batch, 0.25f).ok());
  for (int64_t i = 0; i < full.num_elements(); ++i) {
    EXPECT_NEAR(ctx.Gradient(0).data<float>()[i], 0.25f * full.data<float>()[i], 1e-6);
  }
}

TEST(DenseNetworkTest, AnnouncesGradientsLastLayerFirst) {
  ModelConfig config;
  config.hidden_units = {8, 4};
  FakeReplicaContext ctx;
  auto model = CreateModel(config, ModelShape{5, 3}, ctx);
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE((*model)->ComputeGradients(ctx, RandomBatch(4, 5, 3, 1), 1.0f).ok());
  // Variables: dense_0/{kernel,bias}=0,1  dense_1=2,3  dense_2=4,5.
  EXPECT_THAT(ctx.ready_order, ::testing::ElementsAre(5, 4, 3, 2, 1, 0));
}

TEST(DenseNetworkTest, EmptyBatchGivesZeroGradients) {
  ModelConfig config;
  config.hidden_units = {8};
  FakeReplicaContext ctx;
  auto model = CreateModel(config, ModelShape{5, 3}, ctx);
  ASSERT_TRUE(model.ok());
  for (VariableId id = 0; id < 4; ++id) ctx.Gradient(id).flat<float>()[0] = 42.0f;
  auto stats = (*model)->ComputeGradients(ctx, RandomBatch(0, 5, 3, 1), 1.0f);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->loss_sum, 0.0);
  for (VariableId id = 0; id < 4; ++id) {
    for (float g : ctx.Gradient(id).flat<float>()) EXPECT_EQ(g, 0.0f);
  }
}

TEST(DenseNetworkTest, RejectsMisshapedBatch) {
  ModelConfig config;
  FakeReplicaContext ctx;
  auto model = CreateModel(config, ModelShape{784, 10}, ctx);
  ASSERT_TRUE(model.ok());
  auto stats = (*model)->ComputeGradients(ctx, RandomBatch(2, 10, 10, 1), 1.0f);
  EXPECT_EQ(stats.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(stats.status().message()), ::testing::HasSubstr("784"));
}

TEST(DenseNetworkTest, ReferenceMlpHasTheBookShapes) {
  FakeReplicaContext ctx;
  auto model = CreateModel(ModelConfig{}, ModelShape{784, 10}, ctx);
  ASSERT_TRUE(model.ok());
  const auto& specs = (*model)->variables();
  ASSERT_EQ(specs.size(), 6u);
  EXPECT_EQ(specs[0].shape, (Shape{784, 300}));
  EXPECT_EQ(specs[2].shape, (Shape{300, 100}));
  EXPECT_EQ(specs[4].shape, (Shape{100, 10}));
  int64_t params = 0;
  for (const auto& s : specs) params += s.shape.num_elements();
  EXPECT_EQ(params, 266610);
}

TEST(ModelTest, UnknownTypeNamesTheChoices) {
  FakeReplicaContext ctx;
  ModelConfig config;
  config.type = "resnet";
  auto model = CreateModel(config, ModelShape{784, 10}, ctx);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()), ::testing::HasSubstr("mlp"));
}

}  // namespace
}  // namespace meshtrain
