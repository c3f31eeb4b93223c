#include "runtime/rpc/mesh.h"

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/rpc/test_cluster.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::StartAll;
using ::meshtrain::testing::Task;
using ::meshtrain::testing::TestCluster;
using ::meshtrain::testing::TestSettings;
using ::testing::HasSubstr;

// How long a survivor may take to notice a failure: far above the 1 s
// heartbeat timeout of the tests, far below the 30 s the issue allows.
constexpr absl::Duration kNoticeWithin = absl::Seconds(15);

TEST(MeshTest, ThreeTasksRendezvousWhenTheLastOneArrives) {
  TestCluster cluster({{"chief", 1}, {"worker", 2}});
  auto chief = cluster.MakeMesh(Task("chief", 0));
  auto early = cluster.MakeMesh(Task("worker", 0));
  auto late = cluster.MakeMesh(Task("worker", 1));
  ASSERT_TRUE(chief->Serve().ok());
  ASSERT_TRUE(early->Serve().ok());
  ASSERT_TRUE(late->Serve().ok());

  std::atomic<bool> late_joining{false};
  absl::Status chief_status, early_status;
  bool chief_returned_before_late = false, early_returned_before_late = false;
  std::thread chief_thread([&] {
    chief_status = chief->Join();
    chief_returned_before_late = !late_joining.load();
  });
  std::thread early_thread([&] {
    early_status = early->Join();
    early_returned_before_late = !late_joining.load();
  });
  // The condition: both early tasks are registered and waiting at the chief.
  ASSERT_TRUE(chief->coordination_service()->WaitForRegistration(
      {Task("chief", 0), Task("worker", 0)}, absl::Now() + absl::Seconds(10)));
  // Arrive several hundred ms late (lateness, not synchronisation).
  absl::SleepFor(absl::Milliseconds(400));
  late_joining = true;
  const absl::Status late_status = late->Join();
  chief_thread.join();
  early_thread.join();

  EXPECT_TRUE(chief_status.ok()) << chief_status;
  EXPECT_TRUE(early_status.ok()) << early_status;
  EXPECT_TRUE(late_status.ok()) << late_status;
  EXPECT_FALSE(chief_returned_before_late);
  EXPECT_FALSE(early_returned_before_late);
  for (Mesh* mesh : {chief.get(), early.get(), late.get()}) {
    for (Mesh* other : {chief.get(), early.get(), late.get()}) {
      EXPECT_EQ(mesh->peers().incarnation(other->task()), other->incarnation())
          << mesh->task().ToString() << " about " << other->task().ToString();
    }
  }
  EXPECT_NE(chief->incarnation(), early->incarnation());
}

TEST(MeshTest, MissingTasksAreNamedWithTheirAddresses) {
  TestCluster cluster({{"chief", 1}, {"worker", 2}, {"ps", 1}}, {Task("worker", 1), Task("ps", 0)});
  TestSettings timeouts;
  timeouts.startup = absl::Seconds(1);
  auto chief = cluster.MakeMesh(Task("chief", 0), timeouts);
  auto worker = cluster.MakeMesh(Task("worker", 0), timeouts);
  const absl::Time start = absl::Now();
  std::vector<absl::Status> statuses = StartAll({chief.get(), worker.get()});
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  const std::string expected =
      absl::StrCat("startup: worker:1 (", cluster.address(Task("worker", 1)), ") and ps:0 (",
                   cluster.address(Task("ps", 0)),
                   ") did not join within 1s; start them or check their TF_CONFIG");
  for (const absl::Status& status : statuses) {
    EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(expected));
  }
}

TEST(MeshTest, AChiefThatNeverStartsIsNamed) {
  TestCluster cluster({{"chief", 1}, {"worker", 1}}, {Task("chief", 0)});
  TestSettings timeouts;
  timeouts.startup = absl::Milliseconds(800);
  auto worker = cluster.MakeMesh(Task("worker", 0), timeouts);
  const absl::Status status = worker->Start();
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("chief:0 (", cluster.address(Task("chief", 0)),
                                     ") did not answer within 800ms")));
}

TEST(MeshTest, EvaluatorIsOptional) {
  TestCluster cluster({{"worker", 2}, {"evaluator", 1}}, {Task("evaluator", 0)});
  auto w0 = cluster.MakeMesh(Task("worker", 0));
  auto w1 = cluster.MakeMesh(Task("worker", 1));
  for (const absl::Status& s : StartAll({w0.get(), w1.get()})) EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(w0->is_chief());
}

TEST(MeshTest, HeartbeatsDetectAStoppedTaskAndAbortEverySurvivor) {
  TestCluster cluster({{"chief", 1}, {"worker", 2}});
  auto chief = cluster.MakeMesh(Task("chief", 0));
  auto w0 = cluster.MakeMesh(Task("worker", 0));
  auto w1 = cluster.MakeMesh(Task("worker", 1));
  for (const absl::Status& s : StartAll({chief.get(), w0.get(), w1.get()}))
    ASSERT_TRUE(s.ok()) << s;

  const absl::Time killed = absl::Now();
  w1->KillForTesting();
  const std::string dead = absl::StrCat("worker:1 (", cluster.address(Task("worker", 1)), ")");
  for (Mesh* survivor : {chief.get(), w0.get()}) {
    ASSERT_TRUE(survivor->abort_signal().WaitUntil(killed + kNoticeWithin))
        << survivor->task().ToString() << " never noticed";
    const absl::Status status = survivor->abort_signal().status();
    EXPECT_TRUE(absl::IsAborted(status)) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(dead));
    EXPECT_THAT(std::string(status.message()), HasSubstr("presumed dead"));
  }
  EXPECT_LT(absl::Now() - killed, kNoticeWithin);
  EXPECT_EQ(chief->peers().Find(Task("worker", 1))->state, TaskState::kDead);
}

TEST(MeshTest, ADeadChiefIsReportedUnreachable) {
  TestCluster cluster({{"chief", 1}, {"worker", 1}, {"ps", 1}});
  auto chief = cluster.MakeMesh(Task("chief", 0));
  auto worker = cluster.MakeMesh(Task("worker", 0));
  auto ps = cluster.MakeMesh(Task("ps", 0));
  for (const absl::Status& s : StartAll({chief.get(), worker.get(), ps.get()}))
    ASSERT_TRUE(s.ok()) << s;

  const absl::Time killed = absl::Now();
  chief->KillForTesting();
  for (Mesh* survivor : {worker.get(), ps.get()}) {
    ASSERT_TRUE(survivor->abort_signal().WaitUntil(killed + kNoticeWithin));
    const absl::Status status = survivor->abort_signal().status();
    EXPECT_TRUE(absl::IsUnavailable(status)) << status;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr(absl::StrCat("chief:0 (", cluster.address(Task("chief", 0)),
                                       ") is unreachable")));
  }
  // A ps task serving until shutdown learns why it must stop.
  EXPECT_TRUE(
      absl::IsUnavailable(ps->coordination().WaitForShutdown(absl::Now() + absl::Seconds(5))));
}

TEST(MeshTest, TheFirstReportedErrorAbortsEveryTask) {
  TestCluster cluster({{"chief", 1}, {"worker", 1}, {"ps", 1}});
  auto chief = cluster.MakeMesh(Task("chief", 0));
  auto worker = cluster.MakeMesh(Task("worker", 0));
  auto ps = cluster.MakeMesh(Task("ps", 0));
  for (const absl::Status& s : StartAll({chief.get(), worker.get(), ps.get()}))
    ASSERT_TRUE(s.ok()) << s;

  // A wait in progress on another task must end too.
  absl::Status barrier_status;
  std::thread waiter([&] {
    barrier_status = chief->coordination().Barrier("never", absl::Now() + absl::Seconds(60));
  });
  const absl::Status error = absl::InternalError("allreduce step 3: NaN in gradients");
  EXPECT_TRUE(worker->coordination().ReportError(error).ok());
  EXPECT_EQ(worker->abort_signal().status(), error);
  const std::string failed =
      "worker:0 (" + cluster.address(Task("worker", 0)) + ") failed: INTERNAL: allreduce step 3";
  for (Mesh* peer : {chief.get(), ps.get()}) {
    ASSERT_TRUE(peer->abort_signal().WaitUntil(absl::Now() + kNoticeWithin));
    const absl::Status status = peer->abort_signal().status();
    EXPECT_TRUE(absl::IsAborted(status)) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(failed));
  }
  // A later error does not replace the first.
  EXPECT_TRUE(ps->coordination().ReportError(absl::InternalError("later")).ok());
  waiter.join();
  EXPECT_TRUE(absl::IsAborted(barrier_status)) << barrier_status;
  EXPECT_EQ(chief->coordination_service()->first_error()->source, Task("worker", 0));
}

TEST(MeshTest, ARestartedTaskIsANewIncarnationAndItsOldLifeIsRejected) {
  TestCluster cluster({{"chief", 1}, {"worker", 1}});
  TestSettings timeouts;
  timeouts.heartbeat_timeout = absl::Seconds(30);    // the restart comes well before
  timeouts.independent_tasks = {Task("worker", 0)};  // its restart concerns nobody else
  auto chief = cluster.MakeMesh(Task("chief", 0), timeouts);
  auto worker = cluster.MakeMesh(Task("worker", 0), timeouts);
  for (const absl::Status& s : StartAll({chief.get(), worker.get()})) ASSERT_TRUE(s.ok()) << s;
  const uint64_t old_incarnation = worker->incarnation();
  worker->KillForTesting();
  worker.reset();

  // The same task restarts on the same address (Start() binds it this time).
  cluster.ReleasePort(Task("worker", 0));
  auto options = cluster.Options(Task("worker", 0), timeouts);
  auto restarted = Mesh::Create(std::move(options));
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  ASSERT_TRUE((*restarted)->Start().ok());
  const uint64_t new_incarnation = (*restarted)->incarnation();
  ASSERT_NE(new_incarnation, old_incarnation);

  auto changes = chief->coordination_service()->incarnation_changes();
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].task, Task("worker", 0));
  EXPECT_EQ(changes[0].old_incarnation, old_incarnation);
  EXPECT_EQ(changes[0].new_incarnation, new_incarnation);
  // The chief's own view learns it from its next heartbeat.
  EXPECT_TRUE(chief->peers().WaitForIncarnation(Task("worker", 0), new_incarnation,
                                                absl::Now() + kNoticeWithin));
  ASSERT_EQ(chief->peers().incarnation_changes().size(), 1u);
  EXPECT_EQ(chief->peers().incarnation_changes()[0].old_incarnation, old_incarnation);
  // Nobody aborted over it.
  EXPECT_FALSE(chief->abort_signal().aborted());
  EXPECT_FALSE((*restarted)->abort_signal().aborted());
  // A message from the old life is rejected.
  const absl::Status stale =
      chief->coordination_service()->KvSet(Task("worker", 0), old_incarnation, "k", "v");
  EXPECT_TRUE(absl::IsAborted(stale)) << stale;
  EXPECT_THAT(std::string(stale.message()), HasSubstr("stale"));
}

TEST(MeshTest, KeyValueStoreWaitsForAKeyUntilItsDeadline) {
  TestCluster cluster({{"chief", 1}, {"worker", 1}});
  auto chief = cluster.MakeMesh(Task("chief", 0));
  auto worker = cluster.MakeMesh(Task("worker", 0));
  for (const absl::Status& s : StartAll({chief.get(), worker.get()})) ASSERT_TRUE(s.ok()) << s;
  CoordinationClient& c = chief->coordination();
  CoordinationClient& w = worker->coordination();

  ASSERT_TRUE(c.KvSet("nccl_id", std::string("\0\1\2", 3)).ok());
  auto got = w.KvGet("nccl_id", absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, std::string("\0\1\2", 3));

  absl::StatusOr<std::string> waited;
  std::thread getter([&] { waited = w.KvGet("port/worker:0", absl::Now() + absl::Seconds(10)); });
  ASSERT_TRUE(c.KvSet("port/worker:0", "4242").ok());
  getter.join();
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_EQ(*waited, "4242");

  const absl::Time start = absl::Now();
  auto missing = w.KvGet("never-set", start + absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(missing.status())) << missing.status();
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("never-set"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));

  auto absent = w.KvTryGet("never-set");
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_FALSE(absent->has_value());
  ASSERT_TRUE(w.KvDelete("nccl_id").ok());
  auto deleted = c.KvTryGet("nccl_id");
  ASSERT_TRUE(deleted.ok());
  EXPECT_FALSE(deleted->has_value());
}

TEST(MeshTest, BarrierOpensWhenTheLastParticipantArrivesAndCanBeReused) {
  TestCluster cluster({{"chief", 1}, {"worker", 2}, {"ps", 1}});
  std::vector<std::unique_ptr<Mesh>> meshes;
  for (const TaskId& t : cluster.spec().AllTasks()) meshes.push_back(cluster.MakeMesh(t));
  std::vector<Mesh*> raw;
  for (auto& m : meshes) raw.push_back(m.get());
  for (const absl::Status& s : StartAll(raw)) ASSERT_TRUE(s.ok()) << s;
  Mesh* chief = meshes[0].get();
  Mesh* w0 = meshes[1].get();
  Mesh* w1 = meshes[2].get();

  for (int round = 0; round < 2; ++round) {
    std::atomic<bool> last_arrived{false};
    bool early_passed_first[2] = {false, false};
    absl::Status statuses[2];
    std::thread t0([&] {
      statuses[0] = chief->coordination().Barrier("epoch", absl::Now() + absl::Seconds(10));
      early_passed_first[0] = !last_arrived.load();
    });
    std::thread t1([&] {
      statuses[1] = w0->coordination().Barrier("epoch", absl::Now() + absl::Seconds(10));
      early_passed_first[1] = !last_arrived.load();
    });
    // The default participants are the training workers only: ps:0 is not waited for.
    absl::SleepFor(absl::Milliseconds(100));  // lateness, not synchronisation
    last_arrived = true;
    EXPECT_TRUE(w1->coordination().Barrier("epoch", absl::Now() + absl::Seconds(10)).ok());
    t0.join();
    t1.join();
    for (int i = 0; i < 2; ++i) {
      EXPECT_TRUE(statuses[i].ok()) << statuses[i];
      EXPECT_FALSE(early_passed_first[i]);
    }
  }

  const absl::Status timed_out = w0->coordination().Barrier(
      "pair", {Task("worker", 0), Task("worker", 1)}, absl::Now() + absl::Milliseconds(400));
  EXPECT_TRUE(absl::IsDeadlineExceeded(timed_out)) << timed_out;
  EXPECT_THAT(std::string(timed_out.message()),
              HasSubstr("worker:1 (" + cluster.address(Task("worker", 1)) + ") did not arrive"));
  EXPECT_TRUE(absl::IsInvalidArgument(
      w0->coordination().Barrier("x", {Task("worker", 1)}, absl::Now() + absl::Seconds(1))));
}

TEST(MeshTest, ShutdownReachesEveryTaskAndNobodyIsDeclaredDead) {
  TestCluster cluster({{"chief", 1}, {"worker", 1}, {"ps", 1}});
  auto chief = cluster.MakeMesh(Task("chief", 0));
  auto worker = cluster.MakeMesh(Task("worker", 0));
  auto ps = cluster.MakeMesh(Task("ps", 0));
  for (const absl::Status& s : StartAll({chief.get(), worker.get(), ps.get()}))
    ASSERT_TRUE(s.ok()) << s;

  absl::Status ps_status;
  std::thread ps_thread([&] {
    ps_status = ps->coordination().WaitForShutdown(absl::Now() + absl::Seconds(20));
    ps->Stop();
  });
  ASSERT_TRUE(chief->coordination().RequestShutdown().ok());
  EXPECT_TRUE(worker->coordination().WaitForShutdown(absl::Now() + absl::Seconds(20)).ok());
  worker->Stop();
  ps_thread.join();
  EXPECT_TRUE(ps_status.ok()) << ps_status;
  // Both left gracefully, so the chief's Stop() need not wait.
  EXPECT_TRUE(chief->coordination_service()->WaitForOthersToLeave(absl::Now()));
  chief->Stop();
  for (Mesh* m : {chief.get(), worker.get(), ps.get()}) {
    EXPECT_FALSE(m->abort_signal().aborted()) << m->abort_signal().status();
  }
  EXPECT_FALSE(chief->coordination_service()->first_error().has_value());
}

TEST(MeshTest, AHandedInServerMustMatchTheClusterSpec) {
  TestCluster cluster({{"worker", 1}});
  auto options = cluster.Options(Task("worker", 0));
  auto server = Server::Create();
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start("127.0.0.1:0").ok());
  options.server = std::move(*server);
  auto mesh = Mesh::Create(std::move(options));
  ASSERT_TRUE(mesh.ok());
  const absl::Status status = (*mesh)->Start();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("ClusterSpec gives this task"));
}

TEST(MeshTest, ABusyPortIsAClearError) {
  TestCluster cluster({{"worker", 2}});
  // worker:0's port is held by the TestCluster's server for worker:0.
  auto holder = cluster.MakeMesh(Task("worker", 0));
  auto second = Mesh::Create(cluster.Options(Task("worker", 0)));
  ASSERT_TRUE(second.ok());
  const absl::Status status = (*second)->Start();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("cannot listen on 127.0.0.1:"));
}

TEST(MeshTest, CreateRejectsBadOptions) {
  EXPECT_TRUE(absl::IsInvalidArgument(
      Mesh::Create(MeshOptions{.config = ClusterConfig::Local()}).status()));
  TestCluster cluster({{"worker", 1}});
  auto options = cluster.Options(Task("worker", 0));
  options.heartbeat_timeout = options.heartbeat_interval;
  EXPECT_TRUE(absl::IsInvalidArgument(Mesh::Create(std::move(options)).status()));
  auto unknown = cluster.Options(Task("worker", 3));
  EXPECT_TRUE(absl::IsInvalidArgument(Mesh::Create(std::move(unknown)).status()));
}

namespace recovery {

// chief:0, worker:0 and worker:1, started.
std::vector<std::unique_ptr<Mesh>> StartChiefAndTwoWorkers(TestCluster& cluster) {
  std::vector<std::unique_ptr<Mesh>> meshes;
  for (const TaskId& t : {Task("chief", 0), Task("worker", 0), Task("worker", 1)}) {
    meshes.push_back(cluster.MakeMesh(t, TestSettings()));
  }
  for (const absl::Status& s : StartAll({meshes[0].get(), meshes[1].get(), meshes[2].get()})) {
    EXPECT_TRUE(s.ok()) << s;
  }
  return meshes;
}

// Kills `victim` (an index into `meshes`), waits until the others noticed,
// starts their Rejoin on threads and the victim again (as a new incarnation on
// its port), and returns each survivor's Rejoin status.
std::vector<absl::Status> KillAndRecover(TestCluster& cluster,
                                         std::vector<std::unique_ptr<Mesh>>& meshes,
                                         size_t victim) {
  const TaskId task = meshes[victim]->task();
  meshes[victim]->KillForTesting();
  meshes[victim].reset();
  std::vector<absl::Status> rejoined(meshes.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < meshes.size(); ++i) {
    if (i == victim) continue;
    EXPECT_TRUE(meshes[i]->abort_signal().WaitUntil(absl::Now() + kNoticeWithin));
    threads.emplace_back([&, i] { rejoined[i] = meshes[i]->Rejoin(absl::Seconds(30)); });
  }
  // The survivors wait (or retry against a dead chief) while the task restarts.
  cluster.ReleasePort(task);
  auto restarted = Mesh::Create(cluster.Options(task, TestSettings()));
  EXPECT_TRUE(restarted.ok());
  meshes[victim] = std::move(*restarted);
  EXPECT_TRUE(meshes[victim]->Start().ok());
  for (std::thread& t : threads) t.join();
  rejoined.erase(rejoined.begin() + victim);
  return rejoined;
}

// Survivors of a dead worker rejoin; the restarted worker registers; all go on
// as generation 1 and heartbeats no longer carry the old error.
TEST(MeshRecoveryTest, SurvivorsRejoinWithTheRestartedWorker) {
  TestCluster cluster({{"chief", 1}, {"worker", 2}});
  std::vector<std::unique_ptr<Mesh>> meshes = StartChiefAndTwoWorkers(cluster);
  for (const absl::Status& s : KillAndRecover(cluster, meshes, 2)) EXPECT_TRUE(s.ok()) << s;
  for (const auto& m : meshes) {
    EXPECT_EQ(m->generation(), 1) << m->task().ToString();
    EXPECT_FALSE(m->abort_signal().aborted()) << m->task().ToString();
  }
  // Several heartbeats later nobody has aborted again, and the cluster works.
  absl::SleepFor(TestSettings().heartbeat_interval * 5);  // the subject: nothing happens
  for (const auto& m : meshes) EXPECT_FALSE(m->abort_signal().aborted());
  ASSERT_TRUE(meshes[2]->coordination().KvSet("after", "yes").ok());
  EXPECT_EQ(*meshes[1]->coordination().KvGet("after", absl::Now() + absl::Seconds(5)), "yes");
  EXPECT_EQ(meshes[1]->peers().incarnation(Task("worker", 1)), meshes[2]->incarnation());
}

// The chief dies: the workers keep trying to rejoin until a new chief serves,
// then the new service's rendezvous takes them in.
TEST(MeshRecoveryTest, WorkersRejoinARestartedChief) {
  TestCluster cluster({{"chief", 1}, {"worker", 2}});
  std::vector<std::unique_ptr<Mesh>> meshes = StartChiefAndTwoWorkers(cluster);
  const uint64_t old_chief = meshes[0]->incarnation();
  for (const absl::Status& s : KillAndRecover(cluster, meshes, 0)) EXPECT_TRUE(s.ok()) << s;
  EXPECT_TRUE(meshes[0]->coordination_service()->resumed());
  EXPECT_NE(meshes[1]->peers().incarnation(Task("chief", 0)), old_chief);
  EXPECT_EQ(meshes[1]->peers().incarnation(Task("chief", 0)), meshes[0]->incarnation());
  ASSERT_TRUE(meshes[2]->coordination().KvSet("k", "v").ok());
  EXPECT_EQ(*meshes[0]->coordination().KvGet("k", absl::Now() + absl::Seconds(5)), "v");
  EXPECT_FALSE(meshes[1]->abort_signal().aborted());
}

}  // namespace recovery

}  // namespace
}  // namespace meshtrain
