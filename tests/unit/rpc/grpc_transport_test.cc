#include "runtime/rpc/grpc_transport.h"

#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/base/status_macros.h"
#include "runtime/rpc/mesh.h"
#include "tests/unit/rpc/test_cluster.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::StartAll;
using ::meshtrain::testing::Task;
using ::meshtrain::testing::TestCluster;
using ::meshtrain::testing::TestSettings;
using ::testing::HasSubstr;

// `world_size` workers (worker:0 is the chief), each with a gRPC transport "t"
// over all of them. Small chunks, so large messages travel as many chunks.
class Group {
 public:
  explicit Group(int world_size, size_t max_piece_bytes = 64 << 10)
      : cluster_({{"worker", world_size}}) {
    std::vector<Mesh*> raw;
    TestSettings settings;
    settings.grpc_max_piece_bytes = max_piece_bytes;
    for (int r = 0; r < world_size; ++r) {
      meshes_.push_back(cluster_.MakeMesh(Task("worker", r), settings));
      raw.push_back(meshes_.back().get());
    }
    for (const absl::Status& s : StartAll(raw)) EXPECT_TRUE(s.ok()) << s;
    for (int r = 0; r < world_size; ++r) {
      auto transport = meshes_[r]->CreateTransport(cluster_.spec().TrainingWorkers(), "grpc", "t");
      EXPECT_TRUE(transport.ok()) << transport.status();
      transports_.push_back(std::move(*transport));
    }
  }

  int size() const { return static_cast<int>(meshes_.size()); }
  // Destroys rank r's transport, then makes a new one of the same name.
  void ReplaceTransport(int rank) {
    transports_[rank].reset();
    auto transport = meshes_[rank]->CreateTransport(cluster_.spec().TrainingWorkers(), "grpc", "t");
    EXPECT_TRUE(transport.ok()) << transport.status();
    transports_[rank] = std::move(*transport);
  }
  void DestroyTransport(int rank) { transports_[rank].reset(); }
  Mesh& mesh(int rank) { return *meshes_[rank]; }
  Transport& transport(int rank) { return *transports_[rank]; }
  const TestCluster& cluster() const { return cluster_; }

  // Runs fn(rank) on every rank at once; returns each rank's status.
  std::vector<absl::Status> RunAll(const std::function<absl::Status(int)>& fn) {
    std::vector<absl::Status> statuses(size());
    std::vector<std::thread> threads;
    for (int r = 0; r < size(); ++r) threads.emplace_back([&, r] { statuses[r] = fn(r); });
    for (std::thread& t : threads) t.join();
    return statuses;
  }

 private:
  TestCluster cluster_;
  std::vector<std::unique_ptr<Mesh>> meshes_;
  std::vector<std::unique_ptr<Transport>> transports_;
};

std::vector<std::byte> Pattern(size_t n, int rank) {
  std::vector<std::byte> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<std::byte>((i * 31 + rank * 7 + 1) & 0xff);
  return bytes;
}

absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

TEST(GrpcTransportTest, WorldOfOneSendsToItself) {
  Group group(1);
  std::vector<std::byte> send = Pattern(1000, 0);
  std::vector<std::byte> got(1000);
  ASSERT_TRUE(group.transport(0)
                  .SendRecv({.send_to = 0,
                             .send = send,
                             .recv_from = 0,
                             .recv = absl::MakeSpan(got),
                             .deadline = Soon()})
                  .ok());
  EXPECT_EQ(got, send);
}

TEST(GrpcTransportTest, SizeMismatchNamesThePeer) {
  Group group(2);
  auto statuses = group.RunAll([&](int r) {
    if (r == 0) {
      std::vector<std::byte> send = Pattern(8, 0);
      return group.transport(0).Send(1, send, Soon());
    }
    std::vector<std::byte> got(16);
    return group.transport(1).Recv(0, absl::MakeSpan(got), Soon());
  });
  EXPECT_TRUE(statuses[0].ok()) << statuses[0];
  EXPECT_TRUE(absl::IsInvalidArgument(statuses[1])) << statuses[1];
  EXPECT_THAT(std::string(statuses[1].message()),
              HasSubstr("from worker:0 (" + group.cluster().address(Task("worker", 0)) + ")"));
  EXPECT_THAT(std::string(statuses[1].message()), HasSubstr("sent a 8-byte message"));
}

// Messages of many pieces on one stream, one message after another: a ring
// shift that adds, so a piece out of place or lost changes the sum. Sizes:
// empty, one float, one piece exactly, and an odd number of pieces with a
// short last one.
TEST(GrpcTransportTest, PiecesArriveWholeAndInOrder) {
  constexpr size_t kPiece = 4 << 10;
  {
    for (int world : {2, 3}) {
      Group group(world, kPiece);
      for (size_t floats : {size_t{0}, size_t{1}, kPiece / 4, 13 * kPiece / 4 + 5}) {
        auto statuses = group.RunAll([&](int r) -> absl::Status {
          std::vector<float> send(floats);
          std::vector<float> got(floats);
          for (size_t i = 0; i < floats; ++i) {
            send[i] = static_cast<float>(i % 1000) + 1000.0f * static_cast<float>(r);
            got[i] = 0.5f;
          }
          const int left = (r + world - 1) % world;
          MESHTRAIN_RETURN_IF_ERROR(group.transport(r).SendRecv(
              {.send_to = (r + 1) % world,
               .send =
                   absl::MakeConstSpan(reinterpret_cast<const std::byte*>(send.data()), 4 * floats),
               .recv_from = left,
               .recv = absl::MakeSpan(reinterpret_cast<std::byte*>(got.data()), 4 * floats),
               .action = RecvAction::kAddFloat32,
               .deadline = Soon()}));
          for (size_t i = 0; i < floats; ++i) {
            const float want =
                0.5f + static_cast<float>(i % 1000) + 1000.0f * static_cast<float>(left);
            if (got[i] != want) {
              return absl::InternalError(
                  absl::StrCat("float ", i, " is ", got[i], ", want ", want));
            }
          }
          return absl::OkStatus();
        });
        for (const absl::Status& s : statuses) {
          EXPECT_TRUE(s.ok()) << world << " ranks, " << floats << " floats: " << s;
        }
      }
    }
  }
}

// A Send returns once its pieces are written to the stream, before the
// receiver reads them; destroying the sender's transport right after must not
// lose them (destruction half-closes and lets the receiver read to the end).
TEST(GrpcTransportTest, ASendersLastMessageSurvivesItsTransport) {
  Group group(2, 4 << 10);
  const std::vector<std::byte> send = Pattern(size_t{4} << 20, 0);  // 1024 pieces
  ASSERT_TRUE(group.transport(0).Send(1, send, Soon()).ok());
  group.DestroyTransport(0);
  std::vector<std::byte> got(send.size());
  ASSERT_TRUE(group.transport(1).Recv(0, absl::MakeSpan(got), Soon()).ok());
  EXPECT_TRUE(got == send);
}

// The receiver rejects a chunk (here a duplicate: a new transport of the same
// name starts its seq at 0 again while the first message still waits there)
// and ends the stream; the sender's next Send fails with the receiver's
// reason, well before its deadline.
TEST(GrpcTransportTest, AReceiversRejectionEndsTheStreamWithItsReason) {
  Group group(2);
  const std::vector<std::byte> send = Pattern(1000, 0);
  ASSERT_TRUE(group.transport(0).Send(1, send, Soon()).ok());
  group.ReplaceTransport(0);
  const absl::Time start = absl::Now();
  absl::Status status;
  // The first Send may return before the rejection comes back; a later one
  // on the ended stream cannot.
  for (int i = 0; i < 50 && status.ok(); ++i) {
    status = group.transport(0).Send(1, send, Soon());
    if (status.ok()) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("duplicate chunk 0 from worker:0"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("to worker:1 (" + group.cluster().address(Task("worker", 1)) + ")"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// A receiver that is gone: the sender's Send fails promptly, not at its
// deadline, and names the peer.
TEST(GrpcTransportTest, ASendToAStoppedReceiverFailsBeforeItsDeadline) {
  Group group(2);
  const std::vector<std::byte> send = Pattern(size_t{1} << 20, 0);
  ASSERT_TRUE(group.transport(0).Send(1, send, Soon()).ok());
  group.mesh(1).KillForTesting();
  const absl::Time start = absl::Now();
  absl::Status status;
  for (int i = 0; i < 50 && status.ok(); ++i) {
    status = group.transport(0).Send(1, send, Soon());
    if (status.ok()) absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("to worker:1 (" + group.cluster().address(Task("worker", 1)) + ")"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(GrpcTransportTest, NamesAndLayersAreChecked) {
  Group group(2);
  const auto workers = group.cluster().spec().TrainingWorkers();
  EXPECT_EQ(group.mesh(0).CreateTransport(workers, "grpc", "t").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(absl::IsInvalidArgument(
      group.mesh(0).CreateTransport(workers, "carrier-pigeon", "u").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      group.mesh(0).CreateTransport({Task("worker", 1)}, "grpc", "v").status()));
  // No fast data path is registered: "auto" falls back to gRPC, and it works.
  std::vector<std::unique_ptr<Transport>> autos(2);
  auto statuses = group.RunAll([&](int r) -> absl::Status {
    auto t = group.mesh(r).CreateTransport(workers, "auto", "a");
    if (!t.ok()) return t.status();
    autos[r] = std::move(*t);
    std::vector<std::byte> send = Pattern(10, r);
    std::vector<std::byte> got(10);
    MESHTRAIN_RETURN_IF_ERROR(autos[r]->SendRecv({.send_to = 1 - r,
                                                  .send = send,
                                                  .recv_from = 1 - r,
                                                  .recv = absl::MakeSpan(got),
                                                  .deadline = Soon()}));
    return got == Pattern(10, 1 - r) ? absl::OkStatus() : absl::InternalError("bytes differ");
  });
  for (const absl::Status& s : statuses) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(autos[0]->PeerName(1), "worker:1 (" + group.cluster().address(Task("worker", 1)) + ")");
}

}  // namespace
}  // namespace meshtrain
