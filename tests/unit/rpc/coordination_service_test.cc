// The coordination service's rules, called directly (no network).
#include "runtime/rpc/coordination_service.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

TaskId T(const char* job, int index) { return TaskId{job, index}; }

class CoordinationServiceTest : public ::testing::Test {
 protected:
  CoordinationServiceTest()
      : cluster_({{"worker", {"10.0.0.1:1", "10.0.0.2:1"}}, {"evaluator", {"10.0.0.3:1"}}}) {
    CoordinationServiceOptions options;
    options.cluster = cluster_;
    options.chief = T("worker", 0);
    options.heartbeat_timeout = absl::Milliseconds(300);
    service_ = std::move(*CoordinationService::Create(options));
    service_->Start();
  }

  CoordinationService::Registration Reg(const TaskId& task, uint64_t incarnation) {
    CoordinationService::Registration r;
    r.task = task;
    r.incarnation = incarnation;
    r.cluster_fingerprint = ClusterFingerprint(cluster_);
    r.wait = absl::Seconds(10);
    r.startup_timeout = absl::Seconds(10);
    return r;
  }

  // Both workers registered (incarnations 1 and 2); the evaluator is optional.
  void Rendezvous() {
    std::thread other(
        [&] { ASSERT_TRUE(service_->Register(Reg(T("worker", 1), 2), nullptr).ok()); });
    ASSERT_TRUE(service_->Register(Reg(T("worker", 0), 1), nullptr).ok());
    other.join();
  }

  ClusterSpec cluster_;
  std::unique_ptr<CoordinationService> service_;
};

TEST_F(CoordinationServiceTest, UnknownAndUnregisteredTasksAreRejected) {
  EXPECT_TRUE(absl::IsInvalidArgument(service_->Register(Reg(T("ps", 0), 5), nullptr).status()));
  EXPECT_TRUE(
      absl::IsInvalidArgument(service_->Register(Reg(T("worker", 0), 0), nullptr).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(service_->KvSet(T("worker", 1), 9, "k", "v")));
}

TEST_F(CoordinationServiceTest, KeyValueAndBarrierRules) {
  Rendezvous();
  EXPECT_TRUE(absl::IsNotFound(
      service_->KvGet(T("worker", 0), 1, "k", absl::ZeroDuration(), nullptr).status()));
  ASSERT_TRUE(service_->KvSet(T("worker", 1), 2, "k", "v").ok());
  EXPECT_EQ(*service_->KvGet(T("worker", 0), 1, "k", absl::ZeroDuration(), nullptr), "v");

  const std::vector<TaskId> both = {T("worker", 0), T("worker", 1)};
  std::thread first([&] {
    EXPECT_TRUE(service_->Barrier(T("worker", 0), 1, "b", both, absl::Seconds(10), nullptr).ok());
  });
  EXPECT_TRUE(service_->Barrier(T("worker", 1), 2, "b", both, absl::Seconds(10), nullptr).ok());
  first.join();
  const absl::Status mismatch =
      service_->Barrier(T("worker", 0), 1, "b", {T("worker", 0)}, absl::Seconds(1), nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(mismatch)) << mismatch;
  EXPECT_THAT(std::string(mismatch.message()), HasSubstr("but others named"));
}

TEST_F(CoordinationServiceTest, StopEndsEveryWait) {
  Rendezvous();
  absl::Status waited;
  std::thread getter([&] {
    waited = service_->KvGet(T("worker", 0), 1, "never", absl::Seconds(60), nullptr).status();
  });
  service_->Stop();
  getter.join();
  EXPECT_TRUE(absl::IsUnavailable(waited)) << waited;
}

TEST_F(CoordinationServiceTest, ASilentWorkerBecomesTheFirstErrorButASilentEvaluatorDoesNot) {
  Rendezvous();
  ASSERT_TRUE(service_->Register(Reg(T("evaluator", 0), 3), nullptr).ok());
  auto state_of = [](const CoordinationService::HeartbeatReply& reply, const TaskId& task) {
    for (const PeerInfo& info : *reply.tasks) {
      if (info.task == task) return info.state;
    }
    return TaskState::kUnregistered;
  };
  // Both workers keep beating (every 50 ms, the tests' heartbeat period); the
  // evaluator is silent until it is dead, which is no error of the cluster.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  bool evaluator_dead = false;
  while (!evaluator_dead && absl::Now() < deadline) {
    ASSERT_TRUE(service_->Heartbeat(T("worker", 1), 2, 0).ok());
    auto reply = service_->Heartbeat(T("worker", 0), 1, 0);
    ASSERT_TRUE(reply.ok());
    evaluator_dead = state_of(*reply, T("evaluator", 0)) == TaskState::kDead;
    if (!evaluator_dead) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(evaluator_dead);
  EXPECT_FALSE(service_->first_error().has_value());
  // Now worker:1 falls silent too; the chief itself is never declared dead.
  while (!service_->first_error().has_value() && absl::Now() < deadline) {
    ASSERT_TRUE(service_->Heartbeat(T("worker", 0), 1, 0).ok());
    absl::SleepFor(absl::Milliseconds(50));
  }
  auto error = service_->first_error();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->source, T("worker", 1));
  EXPECT_TRUE(absl::IsUnavailable(error->status));
  EXPECT_THAT(std::string(error->status.message()), HasSubstr("worker:1 (10.0.0.2:1)"));
  EXPECT_THAT(std::string(error->status.message()), HasSubstr("presumed dead"));
}

}  // namespace
}  // namespace meshtrain
