#include "runtime/model/sequential_model.h"

#include <cstring>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/model/layer_registry.h"
#include "tests/unit/model/fake_replica_context.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::FakeReplicaContext;
using ::testing::HasSubstr;

ModelConfig Sequential(const std::string& layers, std::vector<int64_t> input_shape = {},
                       std::string loss = "") {
  ModelConfig config;
  config.type = "sequential";
  config.input_shape = std::move(input_shape);
  config.layers = nlohmann::json::parse(layers);
  config.loss = std::move(loss);
  return config;
}

Batch RandomBatch(int64_t n, int64_t features, int num_classes) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Batch batch{Tensor(DType::kFloat32, Shape{n, features}), Tensor(DType::kInt32, Shape{n})};
  for (float& x : batch.inputs.flat<float>()) x = normal(rng);
  for (int64_t i = 0; i < n; ++i) batch.labels.data<int32_t>()[i] = rng() % num_classes;
  return batch;
}

bool SameBytes(const Tensor& a, const Tensor& b) {
  return a.bytes() == b.bytes() && std::memcmp(a.raw_data(), b.raw_data(), a.bytes()) == 0;
}

// The mlp model written as a layer list declares the same variables in the
// same order and computes bitwise the same loss and gradients.
TEST(SequentialModelTest, MlpAsLayersComputesExactlyWhatMlpComputes) {
  FakeReplicaContext mlp_ctx, seq_ctx;
  ModelConfig mlp;
  mlp.hidden_units = {30, 10};
  auto reference = CreateModel(mlp, ModelShape{13, 4}, mlp_ctx);
  ASSERT_TRUE(reference.ok()) << reference.status();
  auto layers = CreateModel(Sequential(R"([{"type": "dense", "units": 30, "activation": "relu"},
                                           {"type": "dense", "units": 10, "activation": "relu"},
                                           {"type": "dense", "units": 4, "activation": "softmax"}])",
                                       {13}, "sparse_categorical_crossentropy"),
                            ModelShape{13, 4}, seq_ctx);
  ASSERT_TRUE(layers.ok()) << layers.status();
  ASSERT_EQ(mlp_ctx.specs().size(), seq_ctx.specs().size());
  for (size_t i = 0; i < mlp_ctx.specs().size(); ++i) {
    EXPECT_EQ(mlp_ctx.specs()[i].name, seq_ctx.specs()[i].name);
    EXPECT_EQ(mlp_ctx.specs()[i].shape, seq_ctx.specs()[i].shape);
    EXPECT_TRUE(SameBytes(mlp_ctx.Value(i), seq_ctx.Value(i)));
  }
  const Batch batch = RandomBatch(9, 13, 4);
  auto a = (*reference)->ComputeGradients(mlp_ctx, batch, 1.0f / 9);
  auto b = (*layers)->ComputeGradients(seq_ctx, batch, 1.0f / 9);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->loss_sum, b->loss_sum);
  EXPECT_EQ(a->correct, b->correct);
  for (size_t i = 0; i < mlp_ctx.specs().size(); ++i) {
    EXPECT_TRUE(SameBytes(mlp_ctx.Gradient(i), seq_ctx.Gradient(i))) << mlp_ctx.specs()[i].name;
  }
  EXPECT_EQ(mlp_ctx.ready_order, seq_ctx.ready_order);
  auto eval = (*layers)->Evaluate(seq_ctx, batch, nullptr);
  ASSERT_TRUE(eval.ok());
  EXPECT_EQ(eval->loss_sum, a->loss_sum);
}

TEST(SequentialModelTest, ShapeMismatchNamesTheLayerTheShapesAndTheFix) {
  FakeReplicaContext ctx;
  auto model = CreateModel(Sequential(R"([{"type": "dense", "units": 8},
                                          {"type": "reshape", "target_shape": [3, 3]}])",
                                      {28, 28, 1}),
                           ModelShape{784, 10}, ctx);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(model.status().message(), HasSubstr("model.layers[1] (reshape)"));
  EXPECT_THAT(model.status().message(), HasSubstr("[28, 28, 8]"));
  EXPECT_THAT(model.status().message(), HasSubstr("product is 6272"));
}

TEST(SequentialModelTest, OutputThatDoesNotFitTheClassesSaysWhatToEndWith) {
  FakeReplicaContext ctx;
  auto model = CreateModel(Sequential(R"([{"type": "reshape", "target_shape": [28, 28]},
                                          {"type": "dense", "units": 10}])",
                                      {784}),
                           ModelShape{784, 10}, ctx);
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(model.status().message(), HasSubstr("model.layers[1] (dense)"));
  EXPECT_THAT(model.status().message(), HasSubstr("[28, 10]"));
  EXPECT_THAT(model.status().message(), HasSubstr("after a flatten layer"));
  auto wrong_units =
      CreateModel(Sequential(R"([{"type": "dense", "units": 7}])"), ModelShape{5, 10}, ctx);
  EXPECT_THAT(wrong_units.status().message(), HasSubstr("\"units\": 10"));
}

TEST(SequentialModelTest, InputShapeMustHoldTheDataFeatures) {
  FakeReplicaContext ctx;
  auto model = CreateModel(
      Sequential(R"([{"type": "flatten"}, {"type": "dense", "units": 10}])", {28, 28, 3}),
      ModelShape{784, 10}, ctx);
  EXPECT_THAT(model.status().message(), HasSubstr("model.input_shape [28, 28, 3] holds 2352"));
}

TEST(SequentialModelTest, BadArgumentsNameTheirPath) {
  FakeReplicaContext ctx;
  const ModelShape shape{5, 3};
  EXPECT_THAT(
      CreateModel(Sequential(R"([{"type": "dense", "units": 3, "activaton": "relu"}])"), shape, ctx)
          .status()
          .message(),
      HasSubstr("model.layers[0].activaton is not a known key"));
  EXPECT_THAT(CreateModel(Sequential(R"([{"type": "dense", "units": 3, "activation": "swish"}])"),
                          shape, ctx)
                  .status()
                  .message(),
              HasSubstr("model.layers[0].activation is invalid"));
  EXPECT_THAT(CreateModel(Sequential(R"([{"type": "dense"}])"), shape, ctx).status().message(),
              HasSubstr("model.layers[0].units"));
  EXPECT_THAT(CreateModel(Sequential(R"([{"type": "conv9d"}])"), shape, ctx).status().message(),
              HasSubstr("model.layers[0] (conv9d): unknown layer type 'conv9d'"));
  EXPECT_THAT(CreateModel(Sequential(R"([{"type": "dropout", "rate": 1.5},
                                         {"type": "dense", "units": 3}])"),
                          shape, ctx)
                  .status()
                  .message(),
              HasSubstr("model.layers[0].rate must be in [0, 1)"));
  EXPECT_THAT(CreateModel(Sequential(R"([{"type": "dense", "units": 3}])", {}, "hinge"), shape, ctx)
                  .status()
                  .message(),
              HasSubstr("model.loss 'hinge' is not a loss"));
  EXPECT_THAT(CreateModel(Sequential(R"([{"type": "dense", "units": 3, "name": "a"},
                                         {"type": "dense", "units": 3, "name": "a"}])"),
                          shape, ctx)
                  .status()
                  .message(),
              HasSubstr("also the name of model.layers[0]"));
  EXPECT_THAT(CreateModel(Sequential(R"([{"type": "embedding", "input_dim": 4, "output_dim": 2},
                                         {"type": "flatten"}, {"type": "dense", "units": 3}])"),
                          shape, ctx)
                  .status()
                  .message(),
              HasSubstr("model.layers[0] (embedding): embedding takes int64 ids"));
}

TEST(SequentialModelTest, BinaryLossesNeedOneOutput) {
  FakeReplicaContext ctx;
  EXPECT_THAT(CreateModel(Sequential(R"([{"type": "dense", "units": 2}])"), ModelShape{5, 0}, ctx)
                  .status()
                  .message(),
              HasSubstr("binary_crossentropy over one target per example, which needs [1]"));
  EXPECT_THAT(CreateModel(Sequential(R"([{"type": "dense", "units": 1}])", {}, "mse"),
                          ModelShape{5, 3}, ctx)
                  .status()
                  .message(),
              HasSubstr("use sparse_categorical_crossentropy"));
  EXPECT_TRUE(CreateModel(Sequential(R"([{"type": "dense", "units": 1}])", {}, "mse"),
                          ModelShape{5, 0}, ctx)
                  .ok());
}

TEST(SequentialModelTest, ConfigCheckInfersShapesWithoutData) {
  EXPECT_TRUE(CheckSequentialConfig(Sequential(R"([{"type": "flatten"},
                                                   {"type": "dense", "units": 10}])",
                                               {28, 28, 1}),
                                    LayerRegistry::Global())
                  .ok());
  absl::Status bad = CheckSequentialConfig(
      Sequential(R"([{"type": "dense", "units": 4}, {"type": "layer_normalization", "axis": 1}])",
                 {6}),
      LayerRegistry::Global());
  EXPECT_THAT(bad.message(), HasSubstr("model.layers[1].axis must be -1"));
}

// A layer defined outside the library, registered in a registry of its own.
class Doubling final : public Layer {
 public:
  absl::StatusOr<ExampleShape> Build(const ExampleShape& input, LayerBuilder& builder) override {
    return input;
  }
  int workspace_buffers() const override { return 1; }
  absl::StatusOr<Tensor> Forward(LayerContext& ctx, const Tensor& input, bool) const override {
    auto out = ctx.Buffer(0, DType::kFloat32, input.shape());
    if (!out.ok()) return out.status();
    ctx.kernels().Copy(input, *out);
    ctx.kernels().Scale(2.0f, *out);
    return out;
  }
  absl::StatusOr<Tensor> Backward(LayerContext& ctx, const Tensor&, const Tensor&, Tensor& d_output,
                                  bool) const override {
    ctx.kernels().Scale(2.0f, d_output);
    return d_output;
  }
};

TEST(LayerRegistryTest, UsersRegisterLayersAndNamesAreUnique) {
  LayerRegistry registry;
  EXPECT_THAT(registry.types(), ::testing::Contains("dense"));
  auto factory = [](JsonReader&) -> absl::StatusOr<std::unique_ptr<Layer>> {
    return std::make_unique<Doubling>();
  };
  ASSERT_TRUE(registry.Register("doubling", factory).ok());
  EXPECT_EQ(registry.Register("doubling", factory).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.Register("dense", factory).code(), absl::StatusCode::kAlreadyExists);
  FakeReplicaContext ctx;
  auto model = SequentialModel::Create(
      Sequential(R"([{"type": "doubling"}, {"type": "dense", "units": 3}])"), ModelShape{4, 3}, ctx,
      registry);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE((*model)->ComputeGradients(ctx, RandomBatch(2, 4, 3), 0.5f).ok());
  // Not in the global registry.
  EXPECT_FALSE(
      CheckSequentialConfig(Sequential(R"([{"type": "doubling"}])"), LayerRegistry::Global()).ok());
}

}  // namespace
}  // namespace meshtrain
