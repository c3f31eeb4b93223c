// The coordination service's rules, called directly (no network).
#include "runtime/rpc/coordination_service.h"

#include <atomic>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/fake_env.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TaskId T(const char* job, int index) { return TaskId{job, index}; }

// Longer than CoordinationServiceOptions::restart_silence (2 s by default).
constexpr absl::Duration kPastRestartSilence = absl::Milliseconds(2100);

class CoordinationServiceTest : public ::testing::Test {
 protected:
  CoordinationServiceTest()
      : cluster_({{"worker", {"10.0.0.1:1", "10.0.0.2:1"}}, {"evaluator", {"10.0.0.3:1"}}}) {
    StartService(absl::Milliseconds(300));
  }

  // Replaces the service with a new one, chief worker:0, started.
  void StartService(absl::Duration heartbeat_timeout, std::set<TaskId> independent_tasks = {},
                    CoordinationServiceOptions::Elastic elastic = {}) {
    if (service_ != nullptr) service_->Stop();
    CoordinationServiceOptions options;
    options.cluster = cluster_;
    options.chief = T("worker", 0);
    options.heartbeat_timeout = heartbeat_timeout;
    options.heartbeat_interval = absl::Milliseconds(250);
    options.independent_tasks = std::move(independent_tasks);
    options.elastic = elastic;
    options.env = &env_;
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

  // Advances the fake clock by `step` until `done` (another thread's wait
  // ended), at most 1000 times.
  void AdvanceUntil(const std::atomic<bool>& done, absl::Duration step) {
    for (int i = 0; i < 1000 && !done.load(); ++i) {
      env_.Advance(step);
      absl::SleepFor(absl::Milliseconds(1));  // lets the waiter see it; no assertion depends on it
    }
  }

  FakeEnv env_;
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
  // Both workers keep beating (every 200 ms of the fake clock; the timeout is
  // 300 ms); the evaluator is silent until it is dead, which is no error of
  // the cluster.
  std::optional<CoordinationService::HeartbeatReply> reply;
  for (int beat = 0; beat < 2; ++beat) {
    env_.Advance(absl::Milliseconds(200));
    service_->CheckHeartbeats();
    ASSERT_TRUE(service_->Heartbeat(T("worker", 1), 2, 0).ok());
    auto r = service_->Heartbeat(T("worker", 0), 1, 0);
    ASSERT_TRUE(r.ok());
    reply = *r;
  }
  EXPECT_EQ(state_of(*reply, T("worker", 1)), TaskState::kConnected);
  EXPECT_EQ(state_of(*reply, T("evaluator", 0)), TaskState::kDead);
  EXPECT_FALSE(service_->first_error().has_value());
  // Now worker:1 falls silent too; the chief itself is never declared dead.
  env_.Advance(absl::Milliseconds(200));
  service_->CheckHeartbeats();
  ASSERT_TRUE(service_->Heartbeat(T("worker", 0), 1, 0).ok());
  EXPECT_FALSE(service_->first_error().has_value());  // silent for 200 ms: not yet
  env_.Advance(absl::Milliseconds(200));
  service_->CheckHeartbeats();
  auto error = service_->first_error();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->source, T("worker", 1));
  EXPECT_TRUE(absl::IsUnavailable(error->status));
  EXPECT_THAT(std::string(error->status.message()), HasSubstr("worker:1 (10.0.0.2:1)"));
  EXPECT_THAT(std::string(error->status.message()), HasSubstr("presumed dead"));
}

// The stuck rule: while training runs, a task silent for longer than the
// stuck bound less one heartbeat and one monitor period is stuck, not gone.
class StuckRuleTest : public CoordinationServiceTest {
 protected:
  void StartWithInterval(absl::Duration stuck_floor) {
    service_->Stop();
    CoordinationServiceOptions options;
    options.cluster = cluster_;
    options.chief = T("worker", 0);
    options.heartbeat_timeout = absl::Seconds(5);
    options.heartbeat_interval = absl::Milliseconds(250);
    options.stuck_floor = stuck_floor;
    options.env = &env_;
    service_ = std::move(*CoordinationService::Create(options));
    service_->Start();
  }

  // Both workers heartbeat `beats` times, 250 ms apart.
  void Beat(int beats) {
    for (int i = 0; i < beats; ++i) {
      env_.Advance(absl::Milliseconds(250));
      ASSERT_TRUE(service_->Heartbeat(T("worker", 1), 2, 0).ok());
      ASSERT_TRUE(service_->Heartbeat(T("worker", 0), 1, 0).ok());
      service_->CheckHeartbeats();
    }
  }
};

TEST_F(StuckRuleTest, BoundIsTwoSecondsOrTenMedianSteps) {
  StartWithInterval(absl::Seconds(2));
  EXPECT_EQ(service_->StuckBound(absl::Milliseconds(1)), absl::Seconds(2));
  EXPECT_EQ(service_->StuckBound(absl::Milliseconds(500)), absl::Seconds(5));
  // Less one heartbeat interval and one monitor period (interval / 4).
  EXPECT_EQ(service_->StuckSilence(absl::Milliseconds(1)), absl::Milliseconds(1687.5));
  EXPECT_EQ(service_->StuckSilence(absl::Seconds(1)), absl::Milliseconds(9687.5));
  EXPECT_EQ(service_->SetTrainingStepTime(absl::Milliseconds(300)), absl::Seconds(3));
  EXPECT_EQ(service_->SetTrainingStepTime(absl::ZeroDuration()), absl::ZeroDuration());
  StartWithInterval(absl::ZeroDuration());  // --stuck-timeout 0: off
  EXPECT_EQ(service_->SetTrainingStepTime(absl::Milliseconds(300)), absl::ZeroDuration());
}

TEST_F(StuckRuleTest, SilentTaskIsStuckWithinTheBoundOnlyWhileTraining) {
  StartWithInterval(absl::Seconds(2));
  Rendezvous();
  Beat(4);
  // Not training: 3 s of silence is below the 5 s heartbeat timeout.
  env_.Advance(absl::Seconds(3));
  service_->CheckHeartbeats();
  EXPECT_FALSE(service_->first_error().has_value());
  Beat(1);
  ASSERT_EQ(service_->SetTrainingStepTime(absl::Milliseconds(20)), absl::Seconds(2));
  Beat(8);  // heartbeats on time: nobody is stuck
  EXPECT_FALSE(service_->first_error().has_value());
  // worker:1 stops; the chief goes on heartbeating.
  for (int i = 0; i < 6; ++i) {
    env_.Advance(absl::Milliseconds(250));
    ASSERT_TRUE(service_->Heartbeat(T("worker", 0), 1, 0).ok());
    service_->CheckHeartbeats();
  }
  EXPECT_FALSE(service_->first_error().has_value());  // 1.5 s < 1.6875 s
  env_.Advance(absl::Milliseconds(250));
  service_->CheckHeartbeats();
  const std::optional<ClusterError> error = service_->first_error();
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->source, T("worker", 1));
  EXPECT_TRUE(absl::IsUnavailable(error->status));
  EXPECT_THAT(std::string(error->status.message()),
              HasSubstr("worker:1 (10.0.0.2:1) is stuck, not gone: no heartbeat for 1.75s"));
  EXPECT_THAT(std::string(error->status.message()), HasSubstr("the stuck bound is 2s"));
}

// Recovery (protocol step 6), on the service alone.
class RecoveryTest : public CoordinationServiceTest {
 protected:
  RecoveryTest() { StartService(absl::Seconds(30)); }

  CoordinationService::Registration Rejoin(const TaskId& task, uint64_t incarnation,
                                           absl::Duration wait = absl::Seconds(10)) {
    CoordinationService::Registration r = Reg(task, incarnation);
    r.rejoin = true;
    r.wait = wait;
    return r;
  }
};

TEST_F(RecoveryTest, ASurvivorAndARestartedTaskResumeAsTheNextGeneration) {
  Rendezvous();
  ASSERT_TRUE(
      service_->ReportError(T("worker", 0), 1, absl::UnavailableError("shm: worker:1 exited"))
          .ok());
  absl::StatusOr<CoordinationService::View> survivor;
  std::thread waiting([&] { survivor = service_->Register(Rejoin(T("worker", 0), 1), nullptr); });
  // The survivor waits for the dead task; meanwhile the error stands.
  ASSERT_TRUE(service_->first_error().has_value());
  env_.Advance(kPastRestartSilence);
  auto restarted = service_->Register(Reg(T("worker", 1), 22), nullptr);
  waiting.join();
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  ASSERT_TRUE(survivor.ok()) << survivor.status();
  EXPECT_EQ(restarted->generation, 1);
  EXPECT_EQ(survivor->generation, 1);
  EXPECT_FALSE(service_->first_error().has_value());
  EXPECT_EQ(service_->generation(), 1);
  // The new life works; the old one is refused.
  EXPECT_TRUE(service_->KvSet(T("worker", 1), 22, "k", "v").ok());
  EXPECT_TRUE(absl::IsAborted(service_->KvSet(T("worker", 1), 2, "k", "v")));
}

TEST_F(RecoveryTest, ARestartNobodyNoticedYetAbortsTheOthers) {
  Rendezvous();
  env_.Advance(kPastRestartSilence);
  absl::StatusOr<CoordinationService::View> restarted;
  std::thread restart([&] { restarted = service_->Register(Reg(T("worker", 1), 23), nullptr); });
  // The restart itself is the cluster's first error, carried by heartbeats.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!service_->first_error().has_value() && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(5));
  auto reply = service_->Heartbeat(T("worker", 0), 1, 0);
  ASSERT_TRUE(reply.ok());
  ASSERT_TRUE(reply->first_error.has_value());
  EXPECT_THAT(std::string(reply->first_error->status.message()),
              HasSubstr("worker:1 (10.0.0.2:1) restarted"));
  ASSERT_TRUE(service_->Register(Rejoin(T("worker", 0), 1), nullptr).ok());
  restart.join();
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_EQ(service_->generation(), 1);
}

TEST_F(RecoveryTest, ATaskThatNeverComesBackIsNamedAtTheDeadline) {
  Rendezvous();
  ASSERT_TRUE(service_->ReportError(T("worker", 0), 1, absl::UnavailableError("peer died")).ok());
  std::atomic<bool> returned{false};
  absl::StatusOr<CoordinationService::View> view;
  std::thread waiting([&] {
    view = service_->Register(Rejoin(T("worker", 0), 1, absl::Seconds(30)), nullptr);
    returned = true;
  });
  AdvanceUntil(returned, absl::Seconds(1));
  waiting.join();
  ASSERT_TRUE(returned);
  ASSERT_TRUE(absl::IsDeadlineExceeded(view.status())) << view.status();
  EXPECT_THAT(std::string(view.status().message()),
              HasSubstr("worker:1 (10.0.0.2:1) did not come back"));
  EXPECT_THAT(std::string(view.status().message()), HasSubstr("--recovery-timeout"));
}

TEST_F(RecoveryTest, AnUnrecoverableFirstErrorEndsTheCluster) {
  Rendezvous();
  ASSERT_TRUE(
      service_->ReportError(T("worker", 1), 2, absl::InvalidArgumentError("bad config")).ok());
  auto view = service_->Register(Rejoin(T("worker", 0), 1), nullptr);
  ASSERT_TRUE(absl::IsFailedPrecondition(view.status())) << view.status();
  EXPECT_THAT(std::string(view.status().message()), HasSubstr("failed for good"));
  EXPECT_THAT(std::string(view.status().message()), HasSubstr("bad config"));
}

class ThreeWorkerRecoveryTest : public RecoveryTest {
 protected:
  ThreeWorkerRecoveryTest() {
    cluster_ = ClusterSpec({{"worker", {"10.0.0.1:1", "10.0.0.2:1", "10.0.0.4:1"}}});
    StartService(absl::Seconds(30));
  }
};

TEST_F(ThreeWorkerRecoveryTest, TheChiefGivingUpTellsEveryTaskStillWaitingWhy) {
  std::thread one([&] { ASSERT_TRUE(service_->Register(Reg(T("worker", 1), 2), nullptr).ok()); });
  std::thread two([&] { ASSERT_TRUE(service_->Register(Reg(T("worker", 2), 3), nullptr).ok()); });
  ASSERT_TRUE(service_->Register(Reg(T("worker", 0), 1), nullptr).ok());
  one.join();
  two.join();
  ASSERT_TRUE(service_->ReportError(T("worker", 1), 2, absl::UnavailableError("peer died")).ok());
  // A survivor that waits longer than the chief (it noticed later).
  std::atomic<bool> survivor_returned{false};
  absl::StatusOr<CoordinationService::View> survivor;
  std::thread waiting([&] {
    survivor = service_->Register(Rejoin(T("worker", 1), 2, absl::Hours(1)), nullptr);
    survivor_returned = true;
  });
  std::atomic<bool> chief_returned{false};
  absl::StatusOr<CoordinationService::View> chief;
  std::thread chief_waiting([&] {
    chief = service_->Register(Rejoin(T("worker", 0), 1, absl::Seconds(5)), nullptr);
    chief_returned = true;
  });
  AdvanceUntil(chief_returned, absl::Seconds(1));
  chief_waiting.join();
  ASSERT_TRUE(absl::IsDeadlineExceeded(chief.status())) << chief.status();
  // The fake clock stands still now: only the chief's giving up ends the wait.
  const absl::Time real_deadline = absl::Now() + absl::Seconds(10);
  while (!survivor_returned && absl::Now() < real_deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_TRUE(survivor_returned) << "the survivor still waits for a chief that gave up";
  if (!survivor_returned) service_->Stop();  // ends the wait, so the thread joins
  waiting.join();
  ASSERT_TRUE(absl::IsFailedPrecondition(survivor.status())) << survivor.status();
  EXPECT_THAT(std::string(survivor.status().message()),
              HasSubstr("worker:2 (10.0.0.4:1) did not come back within 5s"));
}

// Parameter servers' workers train on their own: one that dies or restarts
// concerns nobody, unless a recovery is under way, which it then joins.
class IndependentTaskTest : public CoordinationServiceTest {
 protected:
  IndependentTaskTest() { StartService(absl::Milliseconds(300), {T("worker", 1)}); }
};

TEST_F(IndependentTaskTest, ItsSilenceAndItsRestartAreNoErrorOfTheCluster) {
  Rendezvous();
  // worker:1 falls silent: declared dead, but nobody has to recover.
  env_.Advance(absl::Milliseconds(400));
  service_->CheckHeartbeats();
  auto reply = service_->Heartbeat(T("worker", 0), 1, 0);
  ASSERT_TRUE(reply.ok());
  bool dead = false;
  for (const PeerInfo& info : *reply->tasks) {
    dead = dead || (info.task == T("worker", 1) && info.state == TaskState::kDead);
  }
  ASSERT_TRUE(dead);
  EXPECT_FALSE(service_->first_error().has_value());
  // Restarted, it registers at once, in the same generation.
  auto restarted = service_->Register(Reg(T("worker", 1), 7), nullptr);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_EQ(restarted->generation, 0);
  EXPECT_FALSE(service_->first_error().has_value());
  EXPECT_TRUE(service_->KvSet(T("worker", 1), 7, "k", "v").ok());
  EXPECT_EQ(service_->incarnation_changes().size(), 1u);
}

TEST_F(IndependentTaskTest, ItsRestartJoinsARecoveryUnderWay) {
  Rendezvous();
  ASSERT_TRUE(service_->ReportError(T("worker", 0), 1, absl::UnavailableError("ps died")).ok());
  absl::StatusOr<CoordinationService::View> chief;
  CoordinationService::Registration rejoin = Reg(T("worker", 0), 1);
  rejoin.rejoin = true;
  std::thread waiting([&] { chief = service_->Register(rejoin, nullptr); });
  env_.Advance(kPastRestartSilence);
  auto restarted = service_->Register(Reg(T("worker", 1), 8), nullptr);
  waiting.join();
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  ASSERT_TRUE(chief.ok()) << chief.status();
  EXPECT_EQ(restarted->generation, 1);
  EXPECT_EQ(chief->generation, 1);
}

TEST_F(RecoveryTest, RejoiningANewServiceIsAResumedStartup) {
  // This service never saw a rendezvous: its chief restarted.
  std::thread other(
      [&] { ASSERT_TRUE(service_->Register(Rejoin(T("worker", 1), 2), nullptr).ok()); });
  auto view = service_->Register(Reg(T("worker", 0), 9), nullptr);
  other.join();
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->generation, 0);
  EXPECT_TRUE(service_->resumed());
  EXPECT_FALSE(service_->first_error().has_value());
}

// Issue 20, item 1: nothing that authorises a call leaks through an error.
TEST_F(RecoveryTest, NoErrorQuotesAnIncarnationOrTheFingerprint) {
  constexpr uint64_t kChief = 16065585507429653769ull;
  constexpr uint64_t kWorker = 7301234567890123ull;
  constexpr uint64_t kRestarted = 5550123456789012ull;
  std::thread other(
      [&] { ASSERT_TRUE(service_->Register(Reg(T("worker", 1), kWorker), nullptr).ok()); });
  ASSERT_TRUE(service_->Register(Reg(T("worker", 0), kChief), nullptr).ok());
  other.join();

  std::vector<absl::Status> errors;
  errors.push_back(service_->KvSet(T("worker", 1), 77, "k", "v"));
  errors.push_back(service_->Heartbeat(T("worker", 0), 77, 0).status());
  errors.push_back(service_->ReportError(T("worker", 0), 77, absl::AbortedError("x")));
  errors.push_back(service_->KvSet(T("ps", 0), 77, "k", "v"));
  errors.push_back(service_->Register(Reg(T("ps", 0), 77), nullptr).status());
  CoordinationService::Registration wrong_cluster = Reg(T("worker", 1), kWorker);
  wrong_cluster.cluster_fingerprint = "worker=10.9.9.9:1";
  errors.push_back(service_->Register(wrong_cluster, nullptr).status());
  errors.push_back(service_->Register(Reg(T("worker", 1), 77), nullptr).status());  // alive
  errors.push_back(service_->Register(Reg(T("worker", 0), 77), nullptr).status());  // the chief
  // A real restart: its first error reaches every task through heartbeats.
  env_.Advance(kPastRestartSilence);
  std::thread restart([&] { (void)service_->Register(Reg(T("worker", 1), kRestarted), nullptr); });
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!service_->first_error().has_value() && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(service_->first_error().has_value());
  errors.push_back(service_->first_error()->status);
  errors.push_back(service_->KvSet(T("worker", 1), kWorker, "k", "v"));  // the old life
  ASSERT_TRUE(service_->Register(Rejoin(T("worker", 0), kChief), nullptr).ok());
  restart.join();

  const std::string fingerprint = ClusterFingerprint(cluster_);
  for (const absl::Status& error : errors) {
    ASSERT_FALSE(error.ok());
    const std::string message(error.message());
    for (uint64_t incarnation : {kChief, kWorker, kRestarted}) {
      EXPECT_THAT(message, Not(HasSubstr(absl::StrCat(incarnation)))) << message;
      EXPECT_THAT(message, Not(HasSubstr(absl::StrCat(absl::Hex(incarnation))))) << message;
    }
    EXPECT_THAT(message, Not(HasSubstr(fingerprint))) << message;
    EXPECT_THAT(message, Not(HasSubstr("10.0.0.1:1,10.0.0.2:1"))) << message;
  }
  EXPECT_THAT(std::string(errors[0].message()), HasSubstr("stale incarnation"));
  EXPECT_THAT(std::string(errors[5].message()), HasSubstr("wrong cluster"));
}

TEST_F(RecoveryTest, AForgedRestartOfALiveTaskIsRefusedWithoutRecovery) {
  Rendezvous();
  env_.Advance(absl::Seconds(5));
  ASSERT_TRUE(service_->Heartbeat(T("worker", 1), 2, 0).ok());
  env_.Advance(absl::Milliseconds(300));
  const absl::StatusOr<CoordinationService::View> forged =
      service_->Register(Reg(T("worker", 1), 999), nullptr);
  ASSERT_TRUE(absl::IsUnavailable(forged.status())) << forged.status();
  EXPECT_THAT(std::string(forged.status().message()),
              HasSubstr("worker:1 (10.0.0.2:1) is alive (heartbeat 300ms ago)"));
  // A forged restart of the chief, however long it was silent, is final.
  env_.Advance(absl::Minutes(1));
  ASSERT_TRUE(service_->Heartbeat(T("worker", 1), 2, 0).ok());
  const absl::Status chief = service_->Register(Reg(T("worker", 0), 998), nullptr).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(chief)) << chief;
  // Nothing changed: no error, no recovery, both lives still work.
  EXPECT_FALSE(service_->first_error().has_value());
  EXPECT_TRUE(service_->incarnation_changes().empty());
  EXPECT_EQ(service_->generation(), 0);
  EXPECT_TRUE(service_->KvSet(T("worker", 1), 2, "k", "v").ok());
  EXPECT_TRUE(service_->KvSet(T("worker", 0), 1, "k", "v").ok());
  EXPECT_TRUE(absl::IsAborted(service_->KvSet(T("worker", 1), 999, "k", "v")));
}

TEST_F(RecoveryTest, ARestartOfATaskWaitingToRegisterIsRefused) {
  std::atomic<bool> returned{false};
  std::thread waiting([&] {
    EXPECT_TRUE(service_->Register(Reg(T("worker", 1), 2), nullptr).ok());
    returned = true;
  });
  ASSERT_TRUE(service_->WaitForRegistration({T("worker", 1)}, absl::InfiniteFuture()));
  env_.Advance(absl::Minutes(1));  // no heartbeats before the rendezvous: its call is its pulse
  const absl::Status forged = service_->Register(Reg(T("worker", 1), 999), nullptr).status();
  EXPECT_TRUE(absl::IsUnavailable(forged)) << forged;
  EXPECT_FALSE(returned);
  ASSERT_TRUE(service_->Register(Reg(T("worker", 0), 1), nullptr).ok());
  waiting.join();
  EXPECT_TRUE(service_->incarnation_changes().empty());
}

TEST_F(RecoveryTest, ARestartIsAcceptedOnceItsPreviousLifeFellSilent) {
  Rendezvous();
  ASSERT_TRUE(service_->Heartbeat(T("worker", 1), 2, 0).ok());
  // SIGKILLed just after that heartbeat; restarted at once, it retries.
  env_.Advance(absl::Seconds(1));
  EXPECT_TRUE(absl::IsUnavailable(service_->Register(Reg(T("worker", 1), 22), nullptr).status()));
  env_.Advance(absl::Milliseconds(1100));
  absl::StatusOr<CoordinationService::View> restarted;
  std::thread restart([&] { restarted = service_->Register(Reg(T("worker", 1), 22), nullptr); });
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!service_->first_error().has_value() && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(service_->Register(Rejoin(T("worker", 0), 1), nullptr).ok());
  restart.join();
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_EQ(restarted->generation, 1);
  EXPECT_EQ(service_->incarnation_changes().size(), 1u);
}

using View = CoordinationService::View;

// Elastic membership (protocol step 7): three workers, the chief worker:0.
class ElasticTest : public RecoveryTest {
 protected:
  void Start(int min_workers = 1, int max_workers = 0) {
    cluster_ = ClusterSpec({{"worker", {"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"}}});
    StartService(absl::Seconds(30), {},
                 {.enabled = true,
                  .rejoin_grace = absl::Seconds(1),
                  .min_workers = min_workers,
                  .max_workers = max_workers});
    std::thread w1([&] { ASSERT_TRUE(service_->Register(Reg(T("worker", 1), 2), nullptr).ok()); });
    std::thread w2([&] { ASSERT_TRUE(service_->Register(Reg(T("worker", 2), 3), nullptr).ok()); });
    ASSERT_TRUE(service_->Register(Reg(T("worker", 0), 1), nullptr).ok());
    w1.join();
    w2.join();
  }

  // worker:2 dies: worker:0 reports it, and workers 0 and 1 rejoin (each in a
  // thread, `views` receiving their answers) while the clock moves on in
  // `step`s until both returned.
  void SurviveWorker2(absl::Duration step, std::vector<absl::StatusOr<View>>& views,
                      absl::Duration wait = absl::Seconds(10)) {
    ASSERT_TRUE(
        service_->ReportError(T("worker", 0), 1, absl::UnavailableError("worker:2 exited")).ok());
    views.assign(2, absl::UnknownError("no answer"));
    std::atomic<int> returned{0};
    std::thread w0([&] {
      views[0] = service_->Register(Rejoin(T("worker", 0), 1, wait), nullptr);
      ++returned;
    });
    std::thread w1([&] {
      views[1] = service_->Register(Rejoin(T("worker", 1), 2, wait), nullptr);
      ++returned;
    });
    for (int i = 0; i < 2000 && returned.load() < 2; ++i) {
      env_.Advance(step);
      absl::SleepFor(absl::Milliseconds(1));
    }
    w0.join();
    w1.join();
  }

  // worker:2 registers as `incarnation`, a join: its registration is the
  // cluster's first error (its message in `cause`), workers 0 and 1 rejoin,
  // and the three form the next generation. Returns worker:2's answer.
  absl::StatusOr<View> JoinWorker2(uint64_t incarnation, std::string& cause) {
    absl::StatusOr<View> joined;
    std::thread join(
        [&] { joined = service_->Register(Reg(T("worker", 2), incarnation), nullptr); });
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!service_->first_error().has_value() && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(5));
    const std::optional<ClusterError> error = service_->first_error();
    cause = error.has_value() ? std::string(error->status.message()) : "";
    std::thread w1(
        [&] { EXPECT_TRUE(service_->Register(Rejoin(T("worker", 1), 2), nullptr).ok()); });
    const absl::StatusOr<View> chief = service_->Register(Rejoin(T("worker", 0), 1), nullptr);
    EXPECT_TRUE(chief.ok()) << chief.status();
    w1.join();
    join.join();
    return joined;
  }
};

TEST_F(ElasticTest, SurvivorsGoOnWithoutADeadWorkerOnceTheGraceHasPassed) {
  Start();
  std::vector<absl::StatusOr<View>> views;
  const absl::Time began = env_.Now();
  SurviveWorker2(absl::Milliseconds(50), views);
  for (const auto& view : views) {
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(view->generation, 1);
    EXPECT_EQ(view->departed, std::vector<TaskId>{T("worker", 2)});
  }
  // Not before the grace (1 s), and not long after.
  EXPECT_GE(env_.Now() - began, absl::Seconds(1));
  EXPECT_LE(env_.Now() - began, absl::Milliseconds(1300));
  // The departed life is refused; heartbeats of the members go on.
  const absl::Status old = service_->KvSet(T("worker", 2), 3, "k", "v");
  EXPECT_TRUE(absl::IsAborted(old)) << old;
  EXPECT_THAT(std::string(old.message()), HasSubstr("worker:2 (10.0.0.3:1) left the cluster"));
  EXPECT_TRUE(absl::IsAborted(service_->Register(Reg(T("worker", 2), 3), nullptr).status()));
  EXPECT_TRUE(service_->Heartbeat(T("worker", 1), 2, 0).ok());
}

TEST_F(ElasticTest, ALiveWorkerLateToRejoinIsWaitedFor) {
  Start();
  ASSERT_TRUE(service_->ReportError(T("worker", 0), 1, absl::UnavailableError("peer died")).ok());
  std::atomic<bool> returned{false};
  absl::StatusOr<View> chief;
  std::thread w0([&] {
    chief = service_->Register(Rejoin(T("worker", 0), 1), nullptr);
    returned = true;
  });
  // worker:1 is still tearing its life down, heartbeating; worker:2 is silent.
  for (int i = 0; i < 40; ++i) {
    env_.Advance(absl::Milliseconds(100));
    ASSERT_TRUE(service_->Heartbeat(T("worker", 1), 2, 0).ok());
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_FALSE(returned.load());  // 4 s: past the grace, but worker:1 is alive
  ASSERT_TRUE(service_->Register(Rejoin(T("worker", 1), 2), nullptr).ok());
  w0.join();
  ASSERT_TRUE(chief.ok()) << chief.status();
  EXPECT_EQ(chief->departed, std::vector<TaskId>{T("worker", 2)});
}

TEST_F(ElasticTest, NotBelowMinWorkers) {
  Start(/*min_workers=*/3);
  std::vector<absl::StatusOr<View>> views;
  SurviveWorker2(absl::Seconds(1), views, /*wait=*/absl::Seconds(20));
  // The chief gives up at the recovery deadline naming worker:2; worker:1
  // learns it from the chief.
  EXPECT_TRUE(absl::IsDeadlineExceeded(views[0].status())) << views[0].status();
  for (const auto& view : views) {
    EXPECT_THAT(std::string(view.status().message()),
                HasSubstr("worker:2 (10.0.0.3:1) did not come back"));
  }
}

TEST_F(ElasticTest, ADepartedWorkerThatRestartsJoinsTheNextGeneration) {
  Start();
  std::vector<absl::StatusOr<View>> views;
  SurviveWorker2(absl::Milliseconds(50), views);
  ASSERT_TRUE(views[0].ok()) << views[0].status();
  // Its restart is the cluster's first error: every member stops its step.
  std::string cause;
  const absl::StatusOr<View> joined = JoinWorker2(33, cause);
  EXPECT_THAT(cause, HasSubstr("worker:2 (10.0.0.3:1) joins the cluster;"));
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(joined->generation, 2);
  EXPECT_TRUE(joined->departed.empty());
  EXPECT_TRUE(service_->KvSet(T("worker", 2), 33, "k", "v").ok());
}

TEST_F(ElasticTest, AJoinPastMaxWorkersIsRefused) {
  Start(/*min_workers=*/1, /*max_workers=*/2);
  std::vector<absl::StatusOr<View>> views;
  SurviveWorker2(absl::Milliseconds(50), views);
  ASSERT_TRUE(views[0].ok()) << views[0].status();
  // Two members and --max-workers 2: a third is refused at once, and nothing aborts.
  const absl::Status refused = service_->Register(Reg(T("worker", 2), 33), nullptr).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_THAT(std::string(refused.message()), HasSubstr("--max-workers 2"));
  EXPECT_FALSE(service_->first_error().has_value());
}

TEST_F(ElasticTest, AClusterStartsWithItsInitialWorkersAndTheOthersJoin) {
  cluster_ = ClusterSpec({{"worker", {"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"}}});
  StartService(absl::Seconds(30), {}, {.enabled = true, .initial_workers = 2});
  absl::StatusOr<View> second;
  std::thread w1([&] { second = service_->Register(Reg(T("worker", 1), 2), nullptr); });
  absl::StatusOr<View> chief = service_->Register(Reg(T("worker", 0), 1), nullptr);
  w1.join();
  ASSERT_TRUE(chief.ok()) << chief.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(chief->generation, 0);
  EXPECT_EQ(chief->departed, std::vector<TaskId>{T("worker", 2)});
  EXPECT_EQ(second->departed, std::vector<TaskId>{T("worker", 2)});
  // worker:2 starts later: it joins as the next generation.
  std::string cause;
  const absl::StatusOr<View> joined = JoinWorker2(3, cause);
  EXPECT_THAT(cause, HasSubstr("joins the cluster;"));
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(joined->generation, 1);
  EXPECT_TRUE(joined->departed.empty());
}

TEST_F(ElasticTest, AJoinAfterTheJobFinishedIsRefused) {
  cluster_ = ClusterSpec({{"worker", {"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"}}});
  StartService(absl::Seconds(30), {}, {.enabled = true, .initial_workers = 2});
  std::thread w1([&] { ASSERT_TRUE(service_->Register(Reg(T("worker", 1), 2), nullptr).ok()); });
  ASSERT_TRUE(service_->Register(Reg(T("worker", 0), 1), nullptr).ok());
  w1.join();
  ASSERT_TRUE(service_->RequestShutdown(T("worker", 0), 1).ok());
  const absl::Status late = service_->Register(Reg(T("worker", 2), 3), nullptr).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(late)) << late;
  EXPECT_THAT(std::string(late.message()), HasSubstr("the cluster has finished its job"));
}

// Step 7 for ps tasks: workers 0 (the chief) and 1, ps 0 and 1.
class ElasticPsTest : public RecoveryTest {
 protected:
  void Start() {
    cluster_ = ClusterSpec(
        {{"worker", {"10.0.0.1:1", "10.0.0.2:1"}}, {"ps", {"10.0.0.5:1", "10.0.0.6:1"}}});
    StartService(absl::Seconds(30), {},
                 {.enabled = true, .rejoin_grace = absl::Seconds(1), .max_workers = 2});
    std::vector<std::thread> others;
    for (const auto& [task, incarnation] : std::vector<std::pair<TaskId, uint64_t>>{
             {T("worker", 1), 2}, {T("ps", 0), 3}, {T("ps", 1), 4}}) {
      others.emplace_back([&, task, incarnation] {
        ASSERT_TRUE(service_->Register(Reg(task, incarnation), nullptr).ok());
      });
    }
    ASSERT_TRUE(service_->Register(Reg(T("worker", 0), 1), nullptr).ok());
    for (std::thread& t : others) t.join();
  }

  // The ps tasks in `dead` die: worker:0 reports it, and every other task
  // rejoins (`views` in the order worker:0, worker:1, the live ps) while the
  // clock moves on in 50 ms steps until all returned.
  std::vector<absl::StatusOr<View>> Survive(const std::set<int>& dead,
                                            absl::Duration wait = absl::Seconds(10)) {
    EXPECT_TRUE(
        service_->ReportError(T("worker", 0), 1, absl::UnavailableError("a ps exited")).ok());
    std::vector<std::pair<TaskId, uint64_t>> members = {{T("worker", 0), 1}, {T("worker", 1), 2}};
    for (int ps = 0; ps < 2; ++ps) {
      if (!dead.contains(ps)) members.push_back({T("ps", ps), 3 + static_cast<uint64_t>(ps)});
    }
    std::vector<absl::StatusOr<View>> views(members.size(), absl::UnknownError("no answer"));
    std::atomic<int> returned{0};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < members.size(); ++i) {
      threads.emplace_back([&, i] {
        views[i] = service_->Register(Rejoin(members[i].first, members[i].second, wait), nullptr);
        ++returned;
      });
    }
    for (int i = 0; i < 2000 && returned.load() < static_cast<int>(members.size()); ++i) {
      env_.Advance(absl::Milliseconds(50));
      absl::SleepFor(absl::Milliseconds(1));
    }
    for (std::thread& t : threads) t.join();
    return views;
  }
};

TEST_F(ElasticPsTest, ADeadPsDepartsWhenAnotherRemainsAndJoinsAgainPastMaxWorkers) {
  Start();
  const absl::Time began = env_.Now();
  std::vector<absl::StatusOr<View>> views = Survive({1});
  ASSERT_EQ(views.size(), 3u);
  for (const auto& view : views) {
    ASSERT_TRUE(view.ok()) << view.status();
    EXPECT_EQ(view->generation, 1);
    EXPECT_EQ(view->departed, std::vector<TaskId>{T("ps", 1)});
  }
  EXPECT_GE(env_.Now() - began, absl::Seconds(1));
  EXPECT_TRUE(absl::IsAborted(service_->KvSet(T("ps", 1), 4, "k", "v")));
  // Restarted, it joins the next generation: --max-workers bounds training
  // workers only.
  absl::StatusOr<View> joined;
  std::thread join([&] { joined = service_->Register(Reg(T("ps", 1), 44), nullptr); });
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!service_->first_error().has_value() && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(5));
  ASSERT_TRUE(service_->first_error().has_value());
  EXPECT_THAT(std::string(service_->first_error()->status.message()),
              HasSubstr("ps:1 (10.0.0.6:1) joins the cluster;"));
  std::thread w1([&] { ASSERT_TRUE(service_->Register(Rejoin(T("worker", 1), 2), nullptr).ok()); });
  std::thread ps0([&] { ASSERT_TRUE(service_->Register(Rejoin(T("ps", 0), 3), nullptr).ok()); });
  absl::StatusOr<View> chief = service_->Register(Rejoin(T("worker", 0), 1), nullptr);
  w1.join();
  ps0.join();
  join.join();
  ASSERT_TRUE(chief.ok()) << chief.status();
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(chief->generation, 2);
  EXPECT_TRUE(chief->departed.empty());
}

TEST_F(ElasticPsTest, TheLastPsNeverDeparts) {
  Start();
  std::vector<absl::StatusOr<View>> views = Survive({0, 1}, /*wait=*/absl::Seconds(5));
  ASSERT_EQ(views.size(), 2u);
  EXPECT_TRUE(absl::IsDeadlineExceeded(views[0].status())) << views[0].status();
  EXPECT_THAT(std::string(views[0].status().message()), HasSubstr("ps:0"));
  EXPECT_EQ(service_->generation(), 0);
}

}  // namespace
}  // namespace meshtrain
