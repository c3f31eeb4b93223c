// StepTiming as the strategies fill it: compute, communicate and wait add up to
// the chief replica's step; a straggler shows up as wait; bytes are the
// cross-worker communicator's.
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/collective/ring_communicator.h"
#include "runtime/optim/optimizer.h"
#include "runtime/transport/in_process_transport.h"
#include "strategies/central_storage.h"
#include "strategies/mirrored.h"

namespace meshtrain {
namespace {

// Long against the scheduling delays of a loaded 2-core machine (a thread
// started or woken late shifts every figure below by that delay; the bounds
// leave 25% of kStraggle for it).
constexpr absl::Duration kStraggle = absl::Milliseconds(100);
constexpr int64_t kElements = 4800;

std::unique_ptr<Optimizer> Sgd() {
  OptimizerConfig config;
  config.learning_rate = 0.1f;
  auto optimizer = Optimizer::Create(config);
  EXPECT_TRUE(optimizer.ok()) << optimizer.status();
  return *std::move(optimizer);
}

VariableSpec Weights() {
  VariableSpec spec;
  spec.name = "w";
  spec.shape = Shape{kElements};
  return spec;
}

Batch TinyBatch(int64_t rows) {
  return Batch{Tensor::Zeros(DType::kFloat32, Shape{rows, 2}),
               Tensor::Zeros(DType::kFloat32, Shape{rows})};
}

// Replica `slow` of a step (or every replica of worker `slow_worker`) takes
// kStraggle longer: the behaviour measured, not synchronisation.
StepFn Step(int slow_replica) {
  return [slow_replica](ReplicaContext& ctx, const Batch&, float) -> absl::StatusOr<LossStats> {
    if (ctx.replica_id() == slow_replica) absl::SleepFor(kStraggle);
    return LossStats{};
  };
}

void ExpectAddsUp(const StepTiming& t, absl::Duration step) {
  EXPECT_GE(t.compute, absl::ZeroDuration());
  EXPECT_GE(t.communicate, absl::ZeroDuration());
  EXPECT_GE(t.wait, absl::ZeroDuration());
  EXPECT_LE(t.compute + t.communicate + t.wait, step);
  // Only the pool's hand-offs are outside the three.
  EXPECT_GE(t.compute + t.communicate + t.wait, step * 0.5) << absl::FormatDuration(step);
}

TEST(StepTimingTest, MirroredCountsAStragglingReplicaAsWait) {
  auto sgd = Sgd();
  MirroredStrategy::Options options;
  options.devices = {Device::Cpu(0), Device::Cpu(1)};
  options.optimizer = sgd.get();
  auto strategy = MirroredStrategy::Create(std::move(options));
  ASSERT_TRUE(strategy.ok()) << strategy.status();
  ASSERT_TRUE((*strategy)->CreateVariable(Weights()).ok());
  ASSERT_TRUE((*strategy)->Build().ok());
  for (int step = 0; step < 3; ++step) {
    const absl::Time start = absl::Now();
    auto result = (*strategy)->Run(Step(/*slow_replica=*/1), TinyBatch(8), 8);
    const absl::Duration took = absl::Now() - start;
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_GE(result->timing.wait, kStraggle * 0.75) << "step " << step;
    EXPECT_EQ(result->timing.bytes_sent, 0);  // one process: nothing on the wire
    ExpectAddsUp(result->timing, took);
  }
}

TEST(StepTimingTest, MirroredReportsTheCommunicationBackwardHid) {
  // Replica 0 finishes the gradient of "b" at once and then computes for
  // kStraggle; replica 1 finishes "b" kStraggle / 2 late. Summing b waits for
  // replica 1: on a combiner thread while replica 0 computes (hidden), inline
  // on replica 0's own thread (exposed).
  StepFn step = [](ReplicaContext& ctx, const Batch&, float) -> absl::StatusOr<LossStats> {
    if (ctx.replica_id() == 1) absl::SleepFor(kStraggle / 2);
    ctx.GradientReady(1);
    if (ctx.replica_id() == 0) absl::SleepFor(kStraggle);
    ctx.GradientReady(0);
    return LossStats{};
  };
  auto sgd = Sgd();
  for (GradientOverlap overlap : {GradientOverlap::kThread, GradientOverlap::kInline}) {
    MirroredStrategy::Options options;
    options.devices = {Device::Cpu(0), Device::Cpu(1)};
    options.optimizer = sgd.get();
    options.overlap = overlap;
    options.bytes_per_pack = 1;  // a bucket per variable
    auto strategy = MirroredStrategy::Create(std::move(options));
    ASSERT_TRUE(strategy.ok()) << strategy.status();
    VariableSpec a = Weights(), b = Weights();
    a.name = "a";
    b.name = "b";
    ASSERT_TRUE((*strategy)->CreateVariable(a).ok());
    ASSERT_TRUE((*strategy)->CreateVariable(b).ok());
    ASSERT_TRUE((*strategy)->Build().ok());
    auto result = (*strategy)->Run(step, TinyBatch(8), 8);
    ASSERT_TRUE(result.ok()) << result.status();
    if (overlap == GradientOverlap::kThread) {
      EXPECT_GE(result->timing.hidden, kStraggle / 4);
    } else {
      EXPECT_EQ(result->timing.hidden, absl::ZeroDuration());
      EXPECT_GE(result->timing.wait + result->timing.communicate, kStraggle / 4);
    }
  }
}

TEST(StepTimingTest, CentralStorageCountsTheBarrierAsWait) {
  auto sgd = Sgd();
  CentralStorageStrategy::Options options;
  options.compute_devices = {Device::Cpu(0), Device::Cpu(1)};
  options.optimizer = sgd.get();
  auto strategy = CentralStorageStrategy::Create(options);
  ASSERT_TRUE(strategy.ok()) << strategy.status();
  ASSERT_TRUE((*strategy)->CreateVariable(Weights()).ok());
  ASSERT_TRUE((*strategy)->Build().ok());
  const absl::Time start = absl::Now();
  auto result = (*strategy)->Run(Step(/*slow_replica=*/1), TinyBatch(8), 8);
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GE(result->timing.wait, kStraggle * 0.75);
  EXPECT_GT(result->timing.communicate, absl::ZeroDuration());
  ExpectAddsUp(result->timing, took);
}

TEST(StepTimingTest, MultiWorkerCountsAStragglingWorkerAsWaitAndItsBytes) {
  // Two workers of one replica each, as threads, over an in-process ring.
  auto mesh = CreateInProcessMesh(2);
  auto sgd = Sgd();
  std::vector<std::unique_ptr<MirroredStrategy>> workers;
  for (int w = 0; w < 2; ++w) {
    MirroredStrategy::Options options;
    options.name = "multi_worker_mirrored";
    options.devices = {Device::Cpu(0)};
    options.optimizer = sgd.get();
    options.cross_worker.communicator = std::make_unique<RingCommunicator>(mesh[w].get());
    options.worker_rank = w;
    options.num_workers = 2;
    auto strategy = MirroredStrategy::Create(std::move(options));
    ASSERT_TRUE(strategy.ok()) << strategy.status();
    ASSERT_TRUE((*strategy)->CreateVariable(Weights()).ok());
    ASSERT_TRUE((*strategy)->Build().ok());
    workers.push_back(*std::move(strategy));
  }
  std::vector<absl::StatusOr<StepResult>> results(2, absl::UnknownError("not run"));
  std::vector<absl::Duration> took(2);
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      const absl::Time start = absl::Now();
      // Worker 1's only replica (id 0 there) straggles; worker 0 waits for it.
      results[w] = workers[w]->Run(Step(w == 1 ? 0 : -1), TinyBatch(4), 8);
      took[w] = absl::Now() - start;
    });
  }
  for (auto& t : threads) t.join();
  for (int w = 0; w < 2; ++w) ASSERT_TRUE(results[w].ok()) << results[w].status();
  const StepTiming& chief = results[0]->timing;
  EXPECT_GE(chief.wait, kStraggle * 0.75) << absl::FormatDuration(chief.wait);
  ExpectAddsUp(chief, took[0]);
  // A two-worker ring moves the whole gradient once each way.
  EXPECT_EQ(chief.bytes_sent, kElements * 4);
  EXPECT_EQ(chief.bytes_received, kElements * 4);
  // The straggler itself barely waits.
  EXPECT_LT(results[1]->timing.wait, kStraggle * 0.5);
}

}  // namespace
}  // namespace meshtrain
