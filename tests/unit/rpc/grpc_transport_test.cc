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
  explicit Group(int world_size, size_t max_piece_bytes = 64 << 10,
                 int max_pieces_in_flight = kDefaultGrpcPiecesInFlight)
      : cluster_({{"worker", world_size}}) {
    std::vector<Mesh*> raw;
    TestSettings settings;
    settings.grpc_max_piece_bytes = max_piece_bytes;
    settings.grpc_max_pieces_in_flight = max_pieces_in_flight;
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

// Messages of many pieces, a window of 1, 2 or 5 of them: a ring shift that
// adds, so a piece out of place or lost changes the sum. Sizes: empty, one
// float, one piece exactly, and an odd number of pieces with a short last one.
TEST(GrpcTransportTest, WindowedPiecesArriveWholeAndInOrder) {
  constexpr size_t kPiece = 4 << 10;
  for (int window : {1, 2, 5}) {
    for (int world : {2, 3}) {
      Group group(world, kPiece, window);
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
          EXPECT_TRUE(s.ok()) << "window " << window << ", " << world << " ranks, " << floats
                              << " floats: " << s;
        }
      }
    }
  }
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
