// Times a SendRecv exchange between two tasks over the gRPC transport (both
// send `bytes` to each other at once). Not a test; run by hand:
//   build/tests/unit/rpc/grpc_transport_bench [bytes] [iterations] [max_piece_bytes]
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "runtime/base/logging.h"
#include "runtime/rpc/mesh.h"
#include "tests/unit/rpc/test_cluster.h"

using meshtrain::Mesh;
using meshtrain::SendRecvOp;
using meshtrain::Transport;
using meshtrain::testing::StartAll;
using meshtrain::testing::Task;
using meshtrain::testing::TestCluster;

int main(int argc, char** argv) {
  meshtrain::SetMinLogSeverity(meshtrain::LogSeverity::kWarning);
  const size_t bytes = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : size_t{1} << 20;
  const int iterations = argc > 2 ? std::atoi(argv[2]) : 200;
  meshtrain::testing::TestSettings settings;
  if (argc > 3) settings.grpc_max_piece_bytes = std::strtoull(argv[3], nullptr, 10);
  const int warmup = 20;
  TestCluster cluster({{"worker", 2}});
  auto m0 = cluster.MakeMesh(Task("worker", 0), settings);
  auto m1 = cluster.MakeMesh(Task("worker", 1), settings);
  for (const absl::Status& s : StartAll({m0.get(), m1.get()})) {
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::vector<std::unique_ptr<Transport>> transports;
  for (Mesh* m : {m0.get(), m1.get()}) {
    auto t = m->CreateTransport(cluster.spec().TrainingWorkers(), "grpc", "bench");
    if (!t.ok()) {
      std::fprintf(stderr, "%s\n", t.status().ToString().c_str());
      return 1;
    }
    transports.push_back(std::move(*t));
  }
  absl::Time start;
  absl::Status statuses[2];
  auto run = [&](int r) {
    std::vector<std::byte> send(bytes, std::byte{1});
    std::vector<std::byte> recv(bytes);
    for (int i = 0; i < warmup + iterations && statuses[r].ok(); ++i) {
      if (i == warmup && r == 0) start = absl::Now();
      statuses[r] = transports[r]->SendRecv({.send_to = 1 - r,
                                             .send = send,
                                             .recv_from = 1 - r,
                                             .recv = absl::MakeSpan(recv),
                                             .deadline = absl::Now() + absl::Seconds(30)});
    }
  };
  std::thread other(run, 1);
  run(0);
  other.join();
  const absl::Duration elapsed = absl::Now() - start;
  for (const absl::Status& s : statuses) {
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }
  const double per_exchange_us = absl::ToDoubleMicroseconds(elapsed) / iterations;
  std::printf(
      "grpc transport: %zu-byte SendRecv exchange, 2 tasks on 127.0.0.1: %.1f us per exchange "
      "(%.2f GB/s each way), %d iterations\n",
      bytes, per_exchange_us, bytes / per_exchange_us / 1e3, iterations);
  return 0;
}
