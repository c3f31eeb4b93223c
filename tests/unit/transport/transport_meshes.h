// Test support: connects the shared-memory and TCP transports of several ranks
// on threads of this process (the real shm and socket code paths), with names
// and options the transport and collective tests share.
#ifndef MESHTRAIN_TESTS_UNIT_TRANSPORT_TRANSPORT_MESHES_H_
#define MESHTRAIN_TESTS_UNIT_TRANSPORT_TRANSPORT_MESHES_H_

#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/security/certificates.h"
#include "runtime/security/tls_context.h"
#include "runtime/transport/shm_transport.h"
#include "runtime/transport/tcp_listener.h"
#include "runtime/transport/tcp_transport.h"
#include "tests/unit/transport/run_on_ranks.h"

namespace meshtrain::testing {

// A job prefix no other test (or test process) uses.
inline std::string UniqueShmPrefix() {
  static std::atomic<int> counter{0};
  return absl::StrCat("test", getpid(), "x", counter++);
}

// Ring neighbours, peers named "worker:<r>", a 20 s connect deadline.
inline ShmTransportOptions ShmTestOptions(const std::string& prefix, int rank, int world_size) {
  ShmTransportOptions o;
  o.rank = rank;
  o.world_size = world_size;
  o.job_prefix = prefix;
  o.peers = RingNeighbours(rank, world_size);
  for (int r = 0; r < world_size; ++r) o.peer_names.push_back(absl::StrCat("worker:", r));
  o.connect_deadline = absl::Now() + absl::Seconds(20);
  return o;
}

inline std::vector<std::unique_ptr<ShmTransport>> ConnectShm(
    const std::string& prefix, int world_size,
    const std::function<void(ShmTransportOptions&)>& tune = {}) {
  std::vector<std::unique_ptr<ShmTransport>> transports(world_size);
  auto statuses = RunOnRanks(world_size, [&](int r) -> absl::Status {
    ShmTransportOptions o = ShmTestOptions(prefix, r, world_size);
    if (tune) tune(o);
    auto t = ShmTransport::Create(o);
    if (!t.ok()) return t.status();
    transports[r] = *std::move(t);
    return absl::OkStatus();
  });
  for (const auto& s : statuses) EXPECT_TRUE(s.ok()) << s;
  return transports;
}

// Every other rank a peer, named "worker:<r> (127.0.0.1:<port>)", job
// "test-job" incarnation 1, a 20 s connect deadline.
inline TcpTransportOptions TcpTestOptions(int rank, int world_size, const std::vector<int>& ports) {
  TcpTransportOptions o;
  o.rank = rank;
  o.world_size = world_size;
  o.job_id = "test-job";
  o.incarnation = 1;
  for (int r = 0; r < world_size; ++r) {
    o.peer_names.push_back(absl::StrCat("worker:", r, " (127.0.0.1:", ports[r], ")"));
    if (r != rank) o.peers.push_back({r, "127.0.0.1", ports[r]});
  }
  o.connect_deadline = absl::Now() + absl::Seconds(20);
  return o;
}

// A TLS context holding a certificate that `ca` signed for "cluster", as
// `meshtrain certs` makes for a cluster (null, with a test failure, on error).
inline std::shared_ptr<const TlsContext> TestTlsContext(const PemPair& ca) {
  absl::StatusOr<PemPair> pair = MakeTaskCertificate(ca, {"cluster", {}}, 1);
  EXPECT_TRUE(pair.ok()) << pair.status();
  if (!pair.ok()) return nullptr;
  absl::StatusOr<std::shared_ptr<const TlsContext>> context =
      TlsContext::Create({ca.cert_pem, pair->cert_pem, pair->key_pem, "test"});
  EXPECT_TRUE(context.ok()) << context.status();
  return context.ok() ? *std::move(context) : nullptr;
}

// Of a new cluster CA.
inline std::shared_ptr<const TlsContext> TestTlsContext() {
  absl::StatusOr<PemPair> ca = MakeCertificateAuthority(1);
  EXPECT_TRUE(ca.ok()) << ca.status();
  return ca.ok() ? TestTlsContext(*ca) : nullptr;
}

struct TcpMesh {
  std::vector<std::unique_ptr<TcpTransport>> transports;
  std::vector<absl::Status> statuses;  // of each rank's Create
};

inline TcpMesh ConnectTcp(int world_size,
                          const std::function<void(TcpTransportOptions&)>& tune = {}) {
  std::vector<std::unique_ptr<TcpListener>> listeners;
  std::vector<int> ports;
  for (int r = 0; r < world_size; ++r) {
    auto l = TcpListener::Create("127.0.0.1", 0);
    EXPECT_TRUE(l.ok()) << l.status();
    ports.push_back((*l)->port());
    listeners.push_back(*std::move(l));
  }
  TcpMesh mesh;
  mesh.transports.resize(world_size);
  mesh.statuses = RunOnRanks(world_size, [&](int r) -> absl::Status {
    TcpTransportOptions o = TcpTestOptions(r, world_size, ports);
    if (tune) tune(o);
    auto t = TcpTransport::Create(std::move(listeners[r]), o);
    if (!t.ok()) return t.status();
    mesh.transports[r] = *std::move(t);
    return absl::OkStatus();
  });
  return mesh;
}

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_TRANSPORT_TRANSPORT_MESHES_H_
