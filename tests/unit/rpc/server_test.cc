// Malformed and misaddressed requests get a clear error status, and the server
// keeps serving afterwards.
#include "runtime/rpc/server.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/collective.grpc.pb.h"
#include "proto/coordination.grpc.pb.h"
#include "runtime/rpc/coordination_service.h"
#include "runtime/rpc/mesh.h"
#include "tests/unit/rpc/test_cluster.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::StartAll;
using ::meshtrain::testing::Task;
using ::meshtrain::testing::TestCluster;
using ::testing::HasSubstr;
using ::testing::Not;

class ServerTest : public ::testing::Test {
 protected:
  ServerTest() : cluster_({{"chief", 1}, {"worker", 1}}) {
    chief_ = cluster_.MakeMesh(Task("chief", 0));
    worker_ = cluster_.MakeMesh(Task("worker", 0));
    for (const absl::Status& s : StartAll({chief_.get(), worker_.get()})) EXPECT_TRUE(s.ok()) << s;
    worker_channel_ = grpc::CreateChannel(cluster_.address(Task("worker", 0)),
                                          grpc::InsecureChannelCredentials());
    chief_channel_ =
        grpc::CreateChannel(cluster_.address(Task("chief", 0)), grpc::InsecureChannelCredentials());
  }

  // A well-formed chunk from chief:0 to worker:0 for transport "m".
  proto::Chunk ValidChunk(const std::string& payload = "abcd") const {
    proto::Chunk chunk;
    proto::ChunkHeader* h = chunk.mutable_header();
    h->set_transport("m");
    h->mutable_source()->set_job("chief");
    h->set_source_incarnation(chief_->incarnation());
    h->mutable_destination()->set_job("worker");
    h->set_destination_incarnation(worker_->incarnation());
    h->set_total_bytes(payload.size());
    h->set_payload_bytes(payload.size());
    chunk.set_payload(payload);
    return chunk;
  }

  grpc::Status Send(const proto::Chunk& chunk) {
    auto stub = proto::Collective::NewStub(worker_channel_);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    proto::ChunkAck ack;
    return stub->SendChunk(&context, chunk, &ack);
  }

  // Issue 20, item 1: no reply quotes a value that authorises a call.
  void ExpectNoSecrets(const grpc::Status& status) const {
    const std::string& message = status.error_message();
    for (uint64_t incarnation : {chief_->incarnation(), worker_->incarnation()}) {
      EXPECT_THAT(message, Not(HasSubstr(absl::StrCat(incarnation)))) << message;
      EXPECT_THAT(message, Not(HasSubstr(absl::StrCat(absl::Hex(incarnation))))) << message;
    }
    EXPECT_THAT(message, Not(HasSubstr(ClusterFingerprint(cluster_.spec())))) << message;
  }

  TestCluster cluster_;
  std::unique_ptr<Mesh> chief_;
  std::unique_ptr<Mesh> worker_;
  std::shared_ptr<grpc::Channel> worker_channel_;
  std::shared_ptr<grpc::Channel> chief_channel_;
};

void ExpectError(const grpc::Status& status, grpc::StatusCode code, const std::string& text) {
  EXPECT_EQ(status.error_code(), code) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(text));
}

TEST_F(ServerTest, BadChunksAreRejectedAndTheServerKeepsServing) {
  proto::Chunk unknown = ValidChunk();
  unknown.mutable_header()->mutable_source()->set_job("worker");
  unknown.mutable_header()->mutable_source()->set_index(9);
  ExpectError(Send(unknown), grpc::StatusCode::INVALID_ARGUMENT, "unknown task worker:9");

  proto::Chunk old_destination = ValidChunk();
  old_destination.mutable_header()->set_destination_incarnation(worker_->incarnation() + 1);
  ExpectError(Send(old_destination), grpc::StatusCode::ABORTED, "(it restarted)");
  ExpectNoSecrets(Send(old_destination));

  proto::Chunk old_source = ValidChunk();
  old_source.mutable_header()->set_source_incarnation(chief_->incarnation() + 1);
  ExpectError(Send(old_source), grpc::StatusCode::ABORTED, "earlier life");
  ExpectNoSecrets(Send(old_source));

  proto::Chunk wrong_size = ValidChunk();
  wrong_size.mutable_header()->set_payload_bytes(5);
  ExpectError(Send(wrong_size), grpc::StatusCode::INVALID_ARGUMENT,
              "bad payload size: header says 5 bytes, chunk carries 4");

  proto::Chunk overrun = ValidChunk();
  overrun.mutable_header()->set_offset(2);
  ExpectError(Send(overrun), grpc::StatusCode::INVALID_ARGUMENT, "overrun");

  proto::Chunk misaddressed = ValidChunk();
  misaddressed.mutable_header()->mutable_destination()->set_job("chief");
  ExpectError(Send(misaddressed), grpc::StatusCode::INVALID_ARGUMENT, "addressed to chief:0");

  {
    grpc::GenericStub generic(worker_channel_);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::Slice garbage(std::string("\x7f\x01garbage"));
    grpc::ByteBuffer request(&garbage, 1);
    grpc::ByteBuffer response;
    absl::Notification done;
    grpc::Status status;
    generic.UnaryCall(&context, "/meshtrain.proto.Collective/SendChunk", grpc::StubOptions(),
                      &request, &response, [&](grpc::Status s) {
                        status = s;
                        done.Notify();
                      });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, "malformed chunk");
  }

  // Still serving: a good chunk lands in the mailbox of transport "m".
  auto transport = worker_->CreateTransport({Task("chief", 0), Task("worker", 0)}, "grpc", "m");
  ASSERT_TRUE(transport.ok()) << transport.status();
  ASSERT_TRUE(Send(ValidChunk("wxyz")).ok());
  std::string got(4, '\0');
  ASSERT_TRUE((*transport)
                  ->Recv(0, absl::MakeSpan(reinterpret_cast<std::byte*>(got.data()), got.size()),
                         absl::Now() + absl::Seconds(10))
                  .ok());
  EXPECT_EQ(got, "wxyz");
  EXPECT_FALSE(worker_->abort_signal().aborted());
}

TEST_F(ServerTest, BadCoordinationRequestsAreRejectedAndTheChiefKeepsServing) {
  auto stub = proto::Coordination::NewStub(chief_channel_);
  auto call = [&](auto method, const auto& request, auto* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return ((*stub).*method)(&context, request, response);
  };

  proto::HeartbeatRequest unknown;
  unknown.mutable_task()->set_job("worker");
  unknown.mutable_task()->set_index(7);
  proto::HeartbeatResponse heartbeat;
  ExpectError(call(&proto::Coordination::Stub::Heartbeat, unknown, &heartbeat),
              grpc::StatusCode::INVALID_ARGUMENT, "unknown task worker:7");

  proto::HeartbeatRequest stale;
  stale.mutable_task()->set_job("worker");
  stale.set_incarnation(worker_->incarnation() + 1);
  ExpectError(call(&proto::Coordination::Stub::Heartbeat, stale, &heartbeat),
              grpc::StatusCode::ABORTED, "stale incarnation");
  ExpectNoSecrets(call(&proto::Coordination::Stub::Heartbeat, stale, &heartbeat));

  proto::RegisterRequest other_cluster;
  other_cluster.mutable_task()->set_job("worker");
  other_cluster.set_incarnation(worker_->incarnation());
  other_cluster.set_cluster_fingerprint("worker=10.0.0.1:1");
  proto::RegisterResponse registered;
  ExpectError(call(&proto::Coordination::Stub::Register, other_cluster, &registered),
              grpc::StatusCode::INVALID_ARGUMENT, "give every task the same TF_CONFIG cluster");
  ExpectNoSecrets(call(&proto::Coordination::Stub::Register, other_cluster, &registered));
  ExpectNoSecrets(call(&proto::Coordination::Stub::Heartbeat, unknown, &heartbeat));

  proto::ReportErrorRequest ok_error;
  ok_error.mutable_task()->set_job("worker");
  ok_error.set_incarnation(worker_->incarnation());
  proto::ReportErrorResponse reported;
  ExpectError(call(&proto::Coordination::Stub::ReportError, ok_error, &reported),
              grpc::StatusCode::INVALID_ARGUMENT, "reported an OK status");

  // A task that is not the chief says so.
  auto worker_stub = proto::Coordination::NewStub(worker_channel_);
  proto::KvGetRequest get;
  get.mutable_task()->set_job("worker");
  get.set_incarnation(worker_->incarnation());
  proto::KvGetResponse value;
  grpc::ClientContext context;
  ExpectError(worker_stub->KvGet(&context, get, &value), grpc::StatusCode::FAILED_PRECONDITION,
              "worker:0 does not serve the coordination service");

  // Still serving, and nobody aborted over the bad requests.
  ASSERT_TRUE(worker_->coordination().KvSet("k", "v").ok());
  auto got = chief_->coordination().KvGet("k", absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "v");
  EXPECT_FALSE(chief_->abort_signal().aborted());
  EXPECT_FALSE(worker_->abort_signal().aborted());
}

// A Register that claims worker:0 restarted, while it heartbeats, with the
// right cluster fingerprint (derived from the addresses, so no secret): no
// recovery, no task table, and the worker keeps working.
TEST_F(ServerTest, AForgedRestartOfALiveWorkerIsRefused) {
  auto stub = proto::Coordination::NewStub(chief_channel_);
  proto::RegisterRequest forged;
  forged.mutable_task()->set_job("worker");
  forged.set_incarnation(worker_->incarnation() + 1);
  forged.set_cluster_fingerprint(ClusterFingerprint(cluster_.spec()));
  forged.set_wait_ms(5000);
  proto::RegisterResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  const grpc::Status status = stub->Register(&context, forged, &response);
  ExpectError(status, grpc::StatusCode::UNAVAILABLE, "worker:0 (");
  EXPECT_THAT(status.error_message(), HasSubstr("is alive"));
  ExpectNoSecrets(status);
  EXPECT_EQ(response.tasks_size(), 0);
  EXPECT_FALSE(chief_->coordination_service()->first_error().has_value());
  EXPECT_TRUE(chief_->coordination_service()->incarnation_changes().empty());
  ASSERT_TRUE(worker_->coordination().KvSet("k", "v").ok());
  EXPECT_FALSE(chief_->abort_signal().aborted());
  EXPECT_FALSE(worker_->abort_signal().aborted());
}

}  // namespace
}  // namespace meshtrain
