// The synchronous strategies against each other on the same data: Mirrored
// replicas stay bitwise identical; CentralStorage and Mirrored with N replicas
// compute the update one_device computes for the same global batch.
#include <cmath>
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/collective/cross_device_ops.h"
#include "runtime/data/synthetic.h"
#include "runtime/model/model.h"
#include "runtime/optim/optimizer.h"
#include "strategies/central_storage.h"
#include "strategies/mirrored.h"
#include "strategies/one_device.h"
#include "strategies/strategy_builder.h"

namespace meshtrain {
namespace {

constexpr int64_t kBatch = 48;
constexpr int kSteps = 6;

struct Fixture {
  Dataset data;
  ModelConfig model_config;
  std::unique_ptr<Optimizer> optimizer;

  explicit Fixture(const std::string& optimizer_type = "sgd") {
    SyntheticOptions options;
    options.num_examples = kBatch * kSteps;
    options.num_features = 12;
    options.num_classes = 3;
    options.seed = 5;
    data = MakeSyntheticClassification(options);
    model_config.hidden_units = {16, 8};
    OptimizerConfig opt;
    opt.type = optimizer_type;
    opt.learning_rate = optimizer_type == "adam" ? 0.01f : 0.1f;
    opt.momentum = optimizer_type == "sgd" ? 0.9f : 0.0f;
    optimizer = *Optimizer::Create(opt);
  }

  Batch StepBatch(int step) const {
    return Batch{data.inputs.Slice(step * kBatch, (step + 1) * kBatch),
                 data.labels.Slice(step * kBatch, (step + 1) * kBatch)};
  }

  // Builds the model on `strategy` and runs kSteps; returns the model.
  std::unique_ptr<Model> Train(Strategy& strategy,
                               const std::function<void()>& after_step = {}) const {
    auto model = CreateModel(model_config, ModelShape{12, 3}, strategy);
    EXPECT_TRUE(model.ok()) << model.status();
    EXPECT_TRUE(strategy.Build().ok());
    StepFn step = [&](ReplicaContext& ctx, const Batch& slice, float scale) {
      return (*model)->ComputeGradients(ctx, slice, scale);
    };
    for (int s = 0; s < kSteps; ++s) {
      auto result = strategy.Run(step, StepBatch(s), kBatch);
      EXPECT_TRUE(result.ok()) << result.status();
      EXPECT_EQ(result->examples, kBatch);
      if (after_step) after_step();
    }
    return std::move(*model);
  }
};

std::vector<float> Values(Strategy& strategy, const Model& model) {
  std::vector<float> out;
  EXPECT_TRUE(strategy
                  .Read([&](ReplicaContext& ctx) {
                    for (VariableId id = 0; id < static_cast<VariableId>(model.variables().size());
                         ++id) {
                      for (float v : ctx.Value(id).flat<float>()) out.push_back(v);
                    }
                    return absl::OkStatus();
                  })
                  .ok());
  return out;
}

void ExpectClose(const std::vector<float>& a, const std::vector<float>& b, float tolerance) {
  ASSERT_EQ(a.size(), b.size());
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  EXPECT_LT(worst, tolerance);
  EXPECT_GT(a.size(), 0u);
}

std::vector<float> OneDeviceValues(const Fixture& f) {
  auto one = OneDeviceStrategy::Create(Device::Cpu(0), *f.optimizer, 11);
  std::string initial;
  auto model = f.Train(**one, [&] {
    if (initial.empty()) initial = *(*one)->ParameterChecksum();
  });
  // Training moved the variables, so agreeing with one_device means something.
  EXPECT_NE(*(*one)->ParameterChecksum(), initial);
  return Values(**one, *model);
}

class MirroredTest : public ::testing::TestWithParam<std::tuple<int, std::string>> {};

TEST_P(MirroredTest, ReplicasStayBitwiseIdenticalAndMatchOneDevice) {
  const auto [replicas, ops] = GetParam();
  Fixture f;
  MirroredStrategy::Options options;
  for (int i = 0; i < replicas; ++i) options.devices.push_back(Device::Cpu(i));
  options.cross_device_ops = ops;
  options.bytes_per_pack = 256;  // several buckets for this small model
  options.optimizer = f.optimizer.get();
  options.seed = 11;
  auto mirrored = MirroredStrategy::Create(std::move(options));
  ASSERT_TRUE(mirrored.ok()) << mirrored.status();
  MirroredStrategy& m = **mirrored;
  auto model = f.Train(m, [&] {
    // After every step every replica holds the same bytes.
    const std::string reference = m.store(0).Checksum();
    for (int r = 1; r < replicas; ++r)
      EXPECT_EQ(m.store(r).Checksum(), reference) << "replica " << r;
  });
  ExpectClose(Values(m, *model), OneDeviceValues(f), 2e-5f);
}

INSTANTIATE_TEST_SUITE_P(AllOps, MirroredTest,
                         ::testing::Combine(::testing::Values(1, 2, 3, 8),
                                            ::testing::Values("reduce_to_one_device",
                                                              "hierarchical_copy", "ring")),
                         [](const auto& info) {
                           return std::get<1>(info.param) + "_" +
                                  std::to_string(std::get<0>(info.param)) + "_replicas";
                         });

TEST(MirroredTest, EveryOverlapGivesTheSameResult) {
  Fixture f;
  std::vector<std::vector<float>> results;
  for (GradientOverlap overlap :
       {GradientOverlap::kThread, GradientOverlap::kInline, GradientOverlap::kAfterBackward}) {
    MirroredStrategy::Options options;
    options.devices = {Device::Cpu(0), Device::Cpu(1)};
    options.overlap = overlap;
    options.bytes_per_pack = 256;
    options.optimizer = f.optimizer.get();
    options.seed = 11;
    auto m = MirroredStrategy::Create(std::move(options));
    auto model = f.Train(**m);
    results.push_back(Values(**m, *model));
  }
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
}

class CentralStorageTest : public ::testing::TestWithParam<int> {};

TEST_P(CentralStorageTest, MatchesOneDeviceWithTheSameGlobalBatch) {
  for (const std::string optimizer : {"sgd", "adam"}) {
    Fixture f(optimizer);
    CentralStorageStrategy::Options options;
    for (int i = 0; i < GetParam(); ++i) options.compute_devices.push_back(Device::Cpu(i));
    options.optimizer = f.optimizer.get();
    options.seed = 11;
    auto central = CentralStorageStrategy::Create(options);
    ASSERT_TRUE(central.ok());
    auto model = f.Train(**central);
    ExpectClose(Values(**central, *model), OneDeviceValues(f), 2e-5f);
  }
}

INSTANTIATE_TEST_SUITE_P(Replicas, CentralStorageTest, ::testing::Values(1, 2, 3, 4));

TEST(StrategyBuilderTest, TheDefaultStrategyFollowsTheClustersShape) {
  EXPECT_EQ(DefaultStrategyForCluster(2, 1), "parameter_server");
  EXPECT_EQ(DefaultStrategyForCluster(1, 2), "parameter_server");
  EXPECT_EQ(DefaultStrategyForCluster(3, 0), "multi_worker_mirrored");
  EXPECT_EQ(DefaultStrategyForCluster(1, 0), "");  // the job config's
}

TEST(StrategyBuilderTest, WireDtypeIsKnownAndOnlyForStrategiesThatSendGradients) {
  StrategyConfig config;
  config.name = "multi_worker_mirrored";
  config.wire_dtype = "fp8";
  auto unknown = StrategyBuilder::Create(config);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.status().message()),
              ::testing::HasSubstr("use float32, bfloat16 or float16"));
  for (const char* name : {"multi_worker_mirrored", "parameter_server"}) {
    config.name = name;
    config.wire_dtype = "bfloat16";
    EXPECT_TRUE(StrategyBuilder::Create(config).ok()) << name;
  }
  config.name = "mirrored";
  auto mirrored = StrategyBuilder::Create(config);
  EXPECT_EQ(mirrored.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(mirrored.status().message()),
              ::testing::HasSubstr("mirrored sends no gradients between tasks"));
  config.wire_dtype = "float32";
  EXPECT_TRUE(StrategyBuilder::Create(config).ok());
}

TEST(StrategyBuilderTest, NamesTheStrategiesAndRejectsMismatches) {
  Fixture f;
  StrategyContext context;
  const ClusterConfig lone = ClusterConfig::Local();
  context.cluster = &lone;
  context.optimizer = f.optimizer.get();
  StrategyConfig config;
  config.name = "horovod";
  auto unknown = StrategyBuilder::Create(config);
  EXPECT_THAT(std::string(unknown.status().message()), ::testing::HasSubstr("mirrored"));
  config.name = "one_device";
  config.devices = "cpu:0,cpu:1";
  auto one_device = StrategyBuilder::Create(config);
  ASSERT_TRUE(one_device.ok()) << one_device.status();
  EXPECT_THAT(std::string((*one_device)->Build(context).status().message()),
              ::testing::HasSubstr("--strategy mirrored"));
  config.name = "mirrored";
  config.cross_device_ops = "carrier_pigeon";
  auto builder = StrategyBuilder::Create(config);
  ASSERT_TRUE(builder.ok()) << builder.status();
  auto made = (*builder)->Build(context);
  ASSERT_TRUE(made.ok());
  auto model = CreateModel(f.model_config, ModelShape{12, 3}, **made);
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*made)->Build().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StrategyBuilderTest, OnlyParameterServerWorkersRecoverAlone) {
  const ClusterSpec cluster({{"chief", {"127.0.0.1:1"}},
                             {"worker", {"127.0.0.1:2", "127.0.0.1:3"}},
                             {"ps", {"127.0.0.1:4"}}});
  for (const char* name :
       {"one_device", "mirrored", "multi_worker_mirrored", "central_storage", "parameter_server"}) {
    StrategyConfig config;
    config.name = name;
    auto builder = StrategyBuilder::Create(config);
    ASSERT_TRUE(builder.ok()) << builder.status();
    const RecoveryPolicy policy = (*builder)->recovery_policy();
    const bool ps = config.name == "parameter_server";
    EXPECT_EQ(policy.independent_workers, ps) << name;
    EXPECT_EQ(policy.replicated_state, config.name == "multi_worker_mirrored") << name;
    const std::set<TaskId> alone = policy.IndependentTasks(cluster);
    if (ps) {
      EXPECT_EQ(alone, (std::set<TaskId>{{"worker", 0}, {"worker", 1}})) << name;
    } else {
      EXPECT_TRUE(alone.empty()) << name;
    }
    EXPECT_EQ((*builder)->Serves({"ps", 0}), ps) << name;
    EXPECT_FALSE((*builder)->Serves({"worker", 0})) << name;
  }
}

TEST(StrategyBuilderTest, RejectsAnUnknownCommunicationBeforeTheMeshIsJoined) {
  StrategyConfig config;
  config.name = "multi_worker_mirrored";
  config.communication = "smoke_signals";
  auto builder = StrategyBuilder::Create(config);
  EXPECT_EQ(builder.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(builder.status().message()),
              ::testing::HasSubstr("auto, ring, hierarchical or nccl"));
}

}  // namespace
}  // namespace meshtrain
