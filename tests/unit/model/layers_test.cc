// Finite-difference checks of every built-in layer and every loss, through
// SequentialModel on CPU kernels: odd shapes, batch 1 and batch 3. A layer
// without variables is checked through the gradient it passes back to a
// dense layer before it.
#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/model/layer_registry.h"
#include "runtime/model/sequential_model.h"
#include "tests/unit/model/fake_replica_context.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::FakeReplicaContext;

struct GradientCase {
  std::string name;
  std::string layers;  // JSON array
  std::vector<int64_t> input_shape;
  int num_classes = 3;  // 0: float targets
  std::string loss;
  bool ids = false;  // int64 inputs in [0, 6)
};

ModelConfig Config(const GradientCase& c) {
  ModelConfig config;
  config.type = "sequential";
  config.input_shape = c.input_shape;
  config.input_dtype = c.ids ? "int64" : "float32";
  config.layers = nlohmann::json::parse(c.layers);
  config.loss = c.loss;
  return config;
}

Batch MakeBatch(const GradientCase& c, int64_t n, uint32_t seed) {
  int64_t features = 1;
  for (int64_t d : c.input_shape) features *= d;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Batch batch{Tensor(c.ids ? DType::kInt64 : DType::kFloat32, Shape{n, features}),
              Tensor(c.num_classes == 0 ? DType::kFloat32 : DType::kInt32, Shape{n})};
  if (c.ids) {
    for (int64_t& id : batch.inputs.flat<int64_t>()) id = static_cast<int64_t>(rng() % 6);
  } else {
    for (float& x : batch.inputs.flat<float>()) x = normal(rng);
  }
  for (int64_t i = 0; i < n; ++i) {
    if (c.num_classes == 0) {
      batch.labels.data<float>()[i] = c.loss == "mse" ? normal(rng) : static_cast<float>(rng() % 2);
    } else {
      batch.labels.data<int32_t>()[i] = static_cast<int32_t>(rng() % c.num_classes);
    }
  }
  return batch;
}

double TrainingLoss(const Model& model, FakeReplicaContext& ctx, const Batch& batch) {
  auto stats = model.ComputeGradients(ctx, batch, 1.0f);
  EXPECT_TRUE(stats.ok()) << stats.status();
  return stats.ok() ? stats->loss_sum : 0.0;
}

// Central differences on every element of every variable against the
// analytic gradient of the summed loss (in training mode: a dropout mask is a
// function of the step's key, which stays fixed here). Returns the largest
// error relative to the tolerance.
void ExpectGradientsMatch(const GradientCase& c, int64_t n) {
  SCOPED_TRACE(c.name + " batch " + std::to_string(n));
  FakeReplicaContext ctx;
  ctx.set_step_randomness(StepRandomness{5, 17, 1});
  int64_t features = 1;
  for (int64_t d : c.input_shape) features *= d;
  ModelShape shape{features, c.num_classes, c.ids ? DType::kInt64 : DType::kFloat32};
  auto model = SequentialModel::Create(Config(c), shape, ctx, LayerRegistry::Global());
  ASSERT_TRUE(model.ok()) << model.status();
  // Non-trivial biases, betas and gammas, so every path is exercised.
  for (VariableId id = 0; id < static_cast<VariableId>(ctx.specs().size()); ++id) {
    if (ctx.specs()[id].shape.rank() == 1) {
      float* b = ctx.mutable_value(id).data<float>();
      for (int64_t i = 0; i < ctx.specs()[id].shape.dim(0); ++i) b[i] += 0.07f * ((i % 5) - 2);
    }
  }
  const Batch batch = MakeBatch(c, n, 11 + static_cast<uint32_t>(n));
  TrainingLoss(**model, ctx, batch);
  std::vector<Tensor> analytic;
  for (VariableId id = 0; id < static_cast<VariableId>(ctx.specs().size()); ++id) {
    analytic.push_back(ctx.Gradient(id).Clone());
  }
  // Float32 forward passes: eps trades truncation (eps^2) against rounding
  // (1e-7 / eps); the tolerance is that of dense_network_test, which the
  // measured errors stay well inside (largest 5.2e-4 absolute over the 861
  // values checked here, 2026-12-06).
  const float eps = 1e-3f;
  for (VariableId id = 0; id < static_cast<VariableId>(ctx.specs().size()); ++id) {
    // A moving average's "gradient" is its update, not a derivative of the
    // loss (BatchNormTest checks it).
    if (!ctx.specs()[id].trainable) continue;
    float* value = ctx.mutable_value(id).data<float>();
    for (int64_t i = 0; i < analytic[id].num_elements(); ++i) {
      const float saved = value[i];
      value[i] = saved + eps;
      const double plus = TrainingLoss(**model, ctx, batch);
      value[i] = saved - eps;
      const double minus = TrainingLoss(**model, ctx, batch);
      value[i] = saved;
      const double numeric = (plus - minus) / (2.0 * eps);
      EXPECT_NEAR(analytic[id].data<float>()[i], numeric, 5e-3 + 2e-2 * std::fabs(numeric))
          << ctx.specs()[id].name << " element " << i;
    }
  }
}

class LayerGradientTest : public ::testing::TestWithParam<GradientCase> {};

TEST_P(LayerGradientTest, MatchesFiniteDifferencesAtBatchOne) {
  ExpectGradientsMatch(GetParam(), 1);
}
TEST_P(LayerGradientTest, MatchesFiniteDifferencesAtBatchThree) {
  ExpectGradientsMatch(GetParam(), 3);
}

INSTANTIATE_TEST_SUITE_P(
    Layers, LayerGradientTest,
    ::testing::Values(GradientCase{"dense_relu_softmax",
                                   R"([{"type": "dense", "units": 7, "activation": "relu"},
                         {"type": "dense", "units": 3, "activation": "softmax"}])",
                                   {5}},
                      GradientCase{"dense_activations",
                                   R"([{"type": "dense", "units": 5, "activation": "gelu"},
                         {"type": "dense", "units": 4, "activation": "tanh"},
                         {"type": "dense", "units": 3, "activation": "sigmoid", "use_bias": false},
                         {"type": "dense", "units": 5, "activation": "softmax"},
                         {"type": "dense", "units": 3, "activation": "relu", "use_bias": false},
                         {"type": "dense", "units": 3}])",
                                   {3}},
                      GradientCase{"activation_layers",
                                   R"([{"type": "dense", "units": 5},
                         {"type": "activation", "activation": "gelu"},
                         {"type": "activation", "activation": "tanh"},
                         {"type": "activation", "activation": "sigmoid"},
                         {"type": "activation", "activation": "softmax"},
                         {"type": "activation", "activation": "relu"},
                         {"type": "activation", "activation": "linear"},
                         {"type": "dense", "units": 3},
                         {"type": "activation", "activation": "softmax"}])",
                                   {4}},
                      GradientCase{"reshape_flatten_layer_normalization",
                                   R"([{"type": "reshape", "target_shape": [3, -1]},
                         {"type": "dense", "units": 5, "activation": "tanh"},
                         {"type": "reshape", "target_shape": [5, 3]},
                         {"type": "layer_normalization"},
                         {"type": "flatten"},
                         {"type": "dense", "units": 3}])",
                                   {2, 3}},
                      GradientCase{"dropout",
                                   R"([{"type": "dense", "units": 9, "activation": "tanh"},
                         {"type": "dropout", "rate": 0.4},
                         {"type": "dense", "units": 3}])",
                                   {5}},
                      GradientCase{"embedding",
                                   R"([{"type": "embedding", "input_dim": 6, "output_dim": 4},
                         {"type": "layer_normalization", "epsilon": 0.01},
                         {"type": "flatten"},
                         {"type": "dense", "units": 3}])",
                                   {3},
                                   3,
                                   "",
                                   true},
                      GradientCase{"binary_crossentropy",
                                   R"([{"type": "dense", "units": 4, "activation": "tanh"},
                         {"type": "dense", "units": 1, "activation": "sigmoid"}])",
                                   {5},
                                   0,
                                   "binary_crossentropy"},
                      GradientCase{"conv_same_relu_max_pool",
                                   R"([{"type": "conv2d", "filters": 3, "kernel_size": 3,
                          "padding": "same", "activation": "relu"},
                         {"type": "max_pool2d", "pool_size": 2},
                         {"type": "flatten"},
                         {"type": "dense", "units": 3}])",
                                   {5, 7, 2}},
                      GradientCase{"conv_valid_stride2_average_pool",
                                   R"([{"type": "conv2d", "filters": 2, "kernel_size": [2, 3],
                          "strides": 2, "activation": "tanh"},
                         {"type": "average_pool2d", "pool_size": 2, "strides": 1,
                          "padding": "same"},
                         {"type": "flatten"},
                         {"type": "dense", "units": 3}])",
                                   {6, 7, 1}},
                      GradientCase{"conv_no_bias_stride2_same_max_pool_same",
                                   R"([{"type": "conv2d", "filters": 3, "kernel_size": 3,
                          "strides": 2, "padding": "same", "use_bias": false,
                          "activation": "relu"},
                         {"type": "max_pool2d", "pool_size": 3, "strides": 2, "padding": "same"},
                         {"type": "flatten"},
                         {"type": "dense", "units": 3}])",
                                   {6, 5, 3}},
                      GradientCase{"batch_normalization",
                                   R"([{"type": "dense", "units": 4},
                         {"type": "batch_normalization"},
                         {"type": "activation", "activation": "tanh"},
                         {"type": "dense", "units": 3}])",
                                   {5}},
                      GradientCase{"conv_synchronized_batch_normalization_no_center",
                                   R"([{"type": "conv2d", "filters": 3, "kernel_size": 3,
                          "strides": 2, "use_bias": false},
                         {"type": "batch_normalization", "center": false, "synchronized": true,
                          "epsilon": 0.01},
                         {"type": "activation", "activation": "relu"},
                         {"type": "flatten"},
                         {"type": "dense", "units": 3}])",
                                   {7, 5, 2}},
                      GradientCase{"mse",
                                   R"([{"type": "dense", "units": 4, "activation": "gelu"},
                         {"type": "dense", "units": 1}])",
                                   {3},
                                   0,
                                   "mse"}),
    [](const ::testing::TestParamInfo<GradientCase>& info) { return info.param.name; });

TEST(DropoutTest, KeepsAboutOneMinusRateScaledAndIsIdentityInEvaluation) {
  auto kernels = CreateCpuKernels(Device::Cpu(0));
  Tensor x(DType::kFloat32, Shape{100, 100});
  kernels->Fill(1.0f, x);
  Tensor y(DType::kFloat32, Shape{100, 100});
  kernels->Dropout(0.25f, 42, x, y);
  int64_t kept = 0;
  for (float v : y.flat<float>()) {
    if (v != 0.0f) {
      ++kept;
      EXPECT_FLOAT_EQ(v, 1.0f / 0.75f);
    }
  }
  EXPECT_NEAR(static_cast<double>(kept) / 10000.0, 0.75, 0.02);
  Tensor again(DType::kFloat32, Shape{100, 100});
  kernels->Dropout(0.25f, 42, x, again);
  EXPECT_EQ(0, std::memcmp(y.raw_data(), again.raw_data(), y.bytes()));
  kernels->Dropout(0.25f, 43, x, again);
  EXPECT_NE(0, std::memcmp(y.raw_data(), again.raw_data(), y.bytes()));
}

TEST(DropoutTest, MaskDependsOnStepAndReplicaButRepeats) {
  const GradientCase c{
      "dropout", R"([{"type": "dropout", "rate": 0.5}, {"type": "dense", "units": 3}])", {8}};
  auto gradient_for = [&](StepRandomness randomness) {
    FakeReplicaContext ctx;
    ctx.set_step_randomness(randomness);
    auto model = SequentialModel::Create(Config(c), ModelShape{8, 3}, ctx, LayerRegistry::Global());
    EXPECT_TRUE(model.ok()) << model.status();
    EXPECT_TRUE((*model)->ComputeGradients(ctx, MakeBatch(c, 4, 3), 1.0f).ok());
    return ctx.Gradient(0).Clone();
  };
  auto same = [](const Tensor& a, const Tensor& b) {
    return std::memcmp(a.raw_data(), b.raw_data(), a.bytes()) == 0;
  };
  const Tensor base = gradient_for({1, 10, 0});
  EXPECT_TRUE(same(base, gradient_for({1, 10, 0})));
  EXPECT_FALSE(same(base, gradient_for({1, 11, 0})));
  EXPECT_FALSE(same(base, gradient_for({1, 10, 1})));
  EXPECT_FALSE(same(base, gradient_for({2, 10, 0})));
}

TEST(BatchNormTest, MovingAveragesFollowTheBatchAndServeEvaluation) {
  for (bool synchronized : {false, true}) {
    SCOPED_TRACE(synchronized ? "synchronized" : "per replica");
    const GradientCase c{
        "batch_normalization",
        absl::StrCat(R"([{"type": "batch_normalization", "momentum": 0.9,
                                          "synchronized": )",
                     synchronized ? "true" : "false", R"(}, {"type": "dense", "units": 3}])"),
        {2}};
    FakeReplicaContext ctx;
    auto model = SequentialModel::Create(Config(c), ModelShape{2, 3}, ctx, LayerRegistry::Global());
    ASSERT_TRUE(model.ok()) << model.status();
    // gamma, beta, moving_mean, moving_variance, then the dense layer's.
    ASSERT_GE(ctx.specs().size(), 4u);
    EXPECT_TRUE(ctx.specs()[0].trainable && ctx.specs()[1].trainable);
    EXPECT_FALSE(ctx.specs()[2].trainable || ctx.specs()[3].trainable);
    EXPECT_EQ(ctx.specs()[2].name, "batch_normalization_0/moving_mean");
    EXPECT_FLOAT_EQ(ctx.specs()[3].moving_average_momentum, 0.9f);

    const int64_t n = 5;
    const Batch batch = MakeBatch(c, n, 4);
    auto trained = (*model)->ComputeGradients(ctx, batch, 1.0f / n);
    ASSERT_TRUE(trained.ok()) << trained.status();
    // Synchronized: one sum in forward (the first layer passes no gradient back).
    EXPECT_EQ(ctx.sums_over_replicas, synchronized ? 1 : 0);
    for (int64_t f = 0; f < 2; ++f) {
      double mean = 0, squares = 0;
      for (int64_t i = 0; i < n; ++i) mean += batch.inputs.data<float>()[i * 2 + f];
      mean /= n;
      for (int64_t i = 0; i < n; ++i) {
        const double d = batch.inputs.data<float>()[i * 2 + f] - mean;
        squares += d * d;
      }
      const double variance = squares / n;  // biased, as Keras
      // share (n / n) * (moving - observed), moving being 0 and 1 at first.
      EXPECT_NEAR(ctx.Gradient(2).data<float>()[f], 0.0 - mean, 1e-5);
      EXPECT_NEAR(ctx.Gradient(3).data<float>()[f], 1.0 - variance, 1e-5);
      // Evaluation with the batch's own statistics as the moving ones is the
      // training forward pass.
      ctx.mutable_value(2).data<float>()[f] = static_cast<float>(mean);
      ctx.mutable_value(3).data<float>()[f] = static_cast<float>(variance);
    }
    auto evaluated = (*model)->Evaluate(ctx, batch, nullptr);
    ASSERT_TRUE(evaluated.ok());
    EXPECT_NEAR(evaluated->loss_sum, trained->loss_sum, 1e-4);
    ctx.mutable_value(3).data<float>()[0] *= 4.0f;
    EXPECT_GT(std::fabs((*model)->Evaluate(ctx, batch, nullptr)->loss_sum - trained->loss_sum),
              1e-3);
  }
}

TEST(BatchNormTest, ConfigErrorsNameTheArgument) {
  FakeReplicaContext ctx;
  for (const auto& [layers, expected] : std::vector<std::pair<std::string, std::string>>{
           {R"([{"type": "batch_normalization", "momentum": 1.5}])",
            "layers[0].momentum must be in [0, 1]"},
           {R"([{"type": "batch_normalization", "epsilon": 0}])", "layers[0].epsilon must be > 0"},
           {R"([{"type": "batch_normalization", "axis": 1}])", "layers[0].axis must be -1"},
           {R"([{"type": "batch_normalization", "synchronized": "yes"}])", "synchronized"}}) {
    const GradientCase c{"bad", layers + std::string(), {4}};
    ModelConfig config = Config(c);
    config.layers.push_back(nlohmann::json{{"type", "dense"}, {"units", 3}});
    auto model = SequentialModel::Create(config, ModelShape{4, 3}, ctx, LayerRegistry::Global());
    ASSERT_FALSE(model.ok());
    EXPECT_THAT(model.status().message(), ::testing::HasSubstr(expected));
  }
}

}  // namespace
}  // namespace meshtrain
