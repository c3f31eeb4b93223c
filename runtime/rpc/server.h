// Server: the gRPC server every task of a mesh runs. It serves two services:
//  - Coordination (proto/coordination.proto), answered only on the chief, by
//    the CoordinationService handed to ServeCoordination();
//  - Collective (proto/collective.proto): StreamChunks (and SendChunk) deposit
//    tensor chunks into this task's mailboxes for the gRPC transport;
// plus the services handed in ServerOptions::services (a ps task's
// ParameterServer service, runtime/ps/ps_service.h), which answer for themselves.
// Starting the server is separate from knowing who this task is, so the
// training driver's mpirun mode can bind port 0 first, learn the port, all-gather the
// addresses, and only then build the ClusterSpec: Start(), then SetIdentity()
// (and ServeCoordination() on the chief). Until then both services answer
// Unavailable, which clients retry.
//
// Thread-safe. The server owns its gRPC threads; Stop() (or the destructor)
// ends every call in flight within its grace period.
#ifndef MESHTRAIN_RUNTIME_RPC_SERVER_H_
#define MESHTRAIN_RUNTIME_RPC_SERVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/channel_cache.h"
#include "runtime/rpc/coordination_service.h"
#include "runtime/rpc/mailbox.h"
#include "runtime/rpc/peer_directory.h"

namespace grpc {
class ByteBuffer;
class Channel;
class Server;
class Service;
}  // namespace grpc

namespace meshtrain {

struct ServerOptions {
  // How long Stop() lets calls in flight finish before cancelling them.
  absl::Duration stop_grace = absl::Milliseconds(500);
  // More services to serve beside the mesh's own (a ps task's ParameterServer
  // service), registered by Start(); not owned, they must outlive the server.
  std::vector<grpc::Service*> services;
  // Non-null: serve mutual TLS only (runtime/security): a client must present
  // a certificate of the cluster CA, or the handshake refuses it.
  std::shared_ptr<const TlsCredentials> credentials;
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Create(ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Listens on `bind_address` ("0.0.0.0:2222", "0.0.0.0:0" for any free port)
  // and serves. Returns the port bound. Call once.
  absl::StatusOr<int> Start(absl::string_view bind_address);
  int port() const;

  // From now on the collective service accepts chunks for `task` (this incarnation) from the
  // tasks `peers` knows, at the incarnations it holds.
  void SetIdentity(const TaskId& task, uint64_t incarnation,
                   std::shared_ptr<const PeerDirectory> peers);
  // Answers the Coordination service with `service` (the chief only).
  void ServeCoordination(std::shared_ptr<CoordinationService> service);

  MailboxRegistry& mailboxes() { return mailboxes_; }

  // A channel to this server that bypasses the network (the chief's own
  // coordination client). Requires Start().
  std::shared_ptr<grpc::Channel> InProcessChannel(const ChannelOptions& options);

  // Stops the coordination service's waits, then the gRPC server. Idempotent.
  void Stop();
  // As Stop(), cancelling calls in flight at once: what peers see when a task dies.
  void Kill();

  // The task set by SetIdentity(), if any.
  std::optional<TaskId> identity() const;

 private:
  struct Services;  // the gRPC service implementations (server.cc)
  explicit Server(ServerOptions options);

  // The handlers' entry points.
  absl::Status AcceptChunk(const grpc::ByteBuffer& request);
  // The coordination service, or why this server does not answer for one.
  absl::StatusOr<std::shared_ptr<CoordinationService>> coordination() const;
  void Shutdown(absl::Duration grace);

  const ServerOptions options_;
  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  MailboxRegistry mailboxes_;

  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<TaskId> task_ ABSL_GUARDED_BY(mu_);
  uint64_t incarnation_ ABSL_GUARDED_BY(mu_) = 0;
  std::shared_ptr<const PeerDirectory> peers_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<CoordinationService> coordination_ ABSL_GUARDED_BY(mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_SERVER_H_
