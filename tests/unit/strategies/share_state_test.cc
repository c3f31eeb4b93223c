// MirroredStrategy::ShareState (elastic training, docs/fault_tolerance.md
// 5.9): every worker's every replica ends with the root worker's variables,
// optimizer slots and update counts, over the cross-worker ring; world sizes
// 1, 2, 3 and 8, each worker with two replicas and its own initial values.
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/collective/ring_communicator.h"
#include "runtime/optim/optimizer.h"
#include "runtime/transport/in_process_transport.h"
#include "strategies/mirrored.h"

namespace meshtrain {
namespace {

std::unique_ptr<Optimizer> Momentum() {
  OptimizerConfig config;
  config.learning_rate = 0.1f;
  config.momentum = 0.9f;
  auto optimizer = Optimizer::Create(config);
  EXPECT_TRUE(optimizer.ok()) << optimizer.status();
  return *std::move(optimizer);
}

VariableSpec Spec(const char* name, Shape shape) {
  VariableSpec spec;
  spec.name = name;
  spec.shape = shape;
  spec.initializer.kind = Initializer::Kind::kGlorotUniform;
  return spec;
}

void ExpectSameState(const VariableStore& a, const VariableStore& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(a.Checksum(), b.Checksum());
  for (int i = 0; i < a.size(); ++i) {
    const VariableStore::Entry& x = a.entry(i);
    const VariableStore::Entry& y = b.entry(i);
    EXPECT_EQ(x.updates, y.updates) << x.spec.name;
    ASSERT_EQ(x.slots.size(), y.slots.size());
    for (size_t s = 0; s < x.slots.size(); ++s) {
      ASSERT_EQ(x.slots[s].bytes(), y.slots[s].bytes());
      EXPECT_EQ(std::memcmp(x.slots[s].raw_data(), y.slots[s].raw_data(), x.slots[s].bytes()), 0)
          << x.spec.name << " slot " << s;
    }
  }
}

class ShareStateTest : public ::testing::TestWithParam<int> {};

TEST_P(ShareStateTest, EveryReplicaOfEveryWorkerTakesTheRootsState) {
  const int world = GetParam();
  const int root = world - 1;
  auto optimizer = Momentum();
  auto mesh = CreateInProcessMesh(world);
  std::vector<std::unique_ptr<MirroredStrategy>> workers;
  for (int w = 0; w < world; ++w) {
    MirroredStrategy::Options options;
    options.name = "multi_worker_mirrored";
    options.devices = {Device::Cpu(0), Device::Cpu(1)};
    options.optimizer = optimizer.get();
    options.seed = 100 + w;  // different initial values on every worker
    if (world > 1) {
      options.cross_worker.communicator = std::make_unique<RingCommunicator>(mesh[w].get());
    }
    options.worker_rank = w;
    options.num_workers = world;
    auto strategy = MirroredStrategy::Create(std::move(options));
    ASSERT_TRUE(strategy.ok()) << strategy.status();
    ASSERT_TRUE((*strategy)->CreateVariable(Spec("kernel", Shape{37, 5})).ok());
    ASSERT_TRUE((*strategy)->CreateVariable(Spec("bias", Shape{5})).ok());
    ASSERT_TRUE((*strategy)->Build().ok());
    EXPECT_EQ((*strategy)->recovery_policy().replicated_state, world > 1);
    workers.push_back(*std::move(strategy));
  }
  const std::string roots = workers[root]->store(0).Checksum();
  if (world > 1) ASSERT_NE(workers[0].get()->store(0).Checksum(), roots);

  std::vector<absl::Status> shared(world);
  std::vector<std::thread> threads;
  for (int w = 0; w < world; ++w) {
    threads.emplace_back([&, w] { shared[w] = workers[w]->ShareState(root); });
  }
  for (auto& t : threads) t.join();
  for (int w = 0; w < world; ++w) {
    ASSERT_TRUE(shared[w].ok()) << "worker " << w << ": " << shared[w];
    for (int r = 0; r < 2; ++r) ExpectSameState(workers[w]->store(r), workers[root]->store(0));
  }
  EXPECT_EQ(workers[root]->store(0).Checksum(), roots);  // the root's own state is unchanged
}

INSTANTIATE_TEST_SUITE_P(WorldSizes, ShareStateTest, ::testing::Values(1, 2, 3, 8));

}  // namespace
}  // namespace meshtrain
