// Mesh: the gRPC mesh every task of a meshtrain cluster joins, bundled for the
// rest of the runtime. It owns this task's Server, its coordination client
// (heartbeats, barriers, key-value store, errors, shutdown), on the chief the
// coordination service, the channels to peers, and the view of the cluster.
//
// Life of a mesh:
//  1. Create() checks the options (no I/O).
//  2. Start() = Serve() + Join(). Serve() listens on this task's ClusterSpec
//     address (bound on `bind_host`: by default the address's own host when
//     it is loopback, else 0.0.0.0; docs/mesh.md) unless a Server was
//     handed in already started, and on the chief starts the coordination
//     service. Join() registers with the chief and blocks until every expected
//     task (all but the evaluator) has registered, or fails after
//     `startup_timeout` naming the tasks that never joined and their
//     addresses; then heartbeats start.
//  3. The runtime uses coordination() and CreateTransport().
//  4. Stop() leaves gracefully (Disconnect); on the chief, after a shutdown
//     request, it first waits up to heartbeat_timeout for the others to leave.
//  Recovery: after an error aborted this task's work and everything built on
//  the old transports is torn down, Rejoin() joins the cluster's next
//  generation (coordination_service.h step 6); generation() names it, so
//  transports of the new life get new names.
//
// The training driver's mpirun mode learns its port before the ClusterSpec exists:
//   auto server = Server::Create();  int port = (*server)->Start("0.0.0.0:0");
//   ... all-gather "host:port" over MPI, build the ClusterConfig ...
//   options.server = std::move(*server);  Mesh::Create(std::move(options));
//
// Thread-safety: Start() and Stop() from one thread; the accessors and
// CreateTransport() from any thread once started. Transports created here and
// the coordination client must not be used after Stop() and must not outlive
// the Mesh.
#ifndef MESHTRAIN_RUNTIME_RPC_MESH_H_
#define MESHTRAIN_RUNTIME_RPC_MESH_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/channel_cache.h"
#include "runtime/rpc/coordination_client.h"
#include "runtime/rpc/coordination_service.h"
#include "runtime/rpc/data_path.h"
#include "runtime/rpc/grpc_transport.h"
#include "runtime/rpc/peer_directory.h"
#include "runtime/rpc/server.h"
#include "runtime/security/mesh_security.h"
#include "runtime/transport/transport.h"

namespace meshtrain {

struct MeshOptions {
  ClusterConfig config;
  uint64_t incarnation = 0;  // 0: draw one with NewIncarnation()
  absl::Duration startup_timeout = absl::Seconds(300);
  absl::Duration heartbeat_interval = absl::Seconds(1);
  absl::Duration heartbeat_timeout = absl::Seconds(5);  // silent this long = dead
  // The stuck rule's floor (CoordinationServiceOptions::stuck_floor); zero: off.
  absl::Duration stuck_floor = absl::Seconds(2);
  absl::Duration rpc_timeout = absl::Seconds(30);  // calls that wait for nobody
  AbortSignal* abort = nullptr;                    // must outlive the Mesh; null: the Mesh owns one
  // A server already listening on this task's port (two-phase start); null:
  // Start() creates one with `server_options` and binds the ClusterSpec address.
  std::unique_ptr<Server> server;
  ServerOptions server_options;
  // The host this task's listening sockets bind to (gRPC with the ClusterSpec
  // port, the fast data paths' listeners); "": DefaultBindHost() of this
  // task's ClusterSpec host (itself when loopback, else 0.0.0.0).
  std::string bind_host;
  std::string host_identity;  // "": HostIdentity(); tests set it to fake hosts
  ChannelOptions channels;
  DataPathRegistry data_paths;  // fast transports, filled by the training driver
  // On the chief: tasks whose death or restart does not make every task
  // recover (parameter servers' workers; CoordinationServiceOptions).
  std::set<TaskId> independent_tasks;
  // On the chief: elastic membership (CoordinationServiceOptions::elastic).
  CoordinationServiceOptions::Elastic elastic;
  // The gRPC transport's piece size (GrpcTransportOptions).
  size_t grpc_max_piece_bytes = kDefaultGrpcPieceBytes;
  // Mutual TLS on gRPC and the tcp data path (docs/security.md); default plain.
  // Create() hands the credentials to `channels` and `server_options`; a
  // server handed in must have been made with them.
  MeshSecurity security;
};

// A random nonzero 64-bit number, different for every process start.
uint64_t NewIncarnation();

class Mesh {
 public:
  static absl::StatusOr<std::unique_ptr<Mesh>> Create(MeshOptions options);
  ~Mesh();
  Mesh(const Mesh&) = delete;
  Mesh& operator=(const Mesh&) = delete;

  // The options of this task's gRPC channels (credentials included), for
  // clients that make their own (the ps client).
  const ChannelOptions& channel_options() const { return options_.channels; }

  absl::Status Start();
  absl::Status Serve();
  absl::Status Join();
  void Stop();
  // Stops heartbeats, re-arms the abort signal and registers again to join
  // the recovery, waiting up to `timeout` for every task to do the same (or
  // come back restarted) and for a restarted chief to answer. Restarts
  // heartbeats on success. From the thread that drives the task, with no
  // transport of the old generation left in use.
  absl::Status Rejoin(absl::Duration timeout);
  // Recoveries completed as of the last registration (0 at start).
  int64_t generation() const;
  // The training workers (ClusterSpec::TrainingWorkers order) of that
  // generation: all of them, less those an elastic cluster goes on without
  // (coordination_service.h step 7).
  std::vector<TaskId> TrainingMembers() const;
  // The ps tasks (index order) of that generation: all of them, less those an
  // elastic cluster goes on without (their partitions move to these).
  std::vector<TaskId> PsMembers() const;
  // As if the process died: no Disconnect, heartbeats stop, and the server
  // goes away at once, cancelling calls in flight. For fault-injection tests.
  void KillForTesting();

  const TaskId& task() const { return options_.config.task; }
  uint64_t incarnation() const { return incarnation_; }
  const ClusterConfig& config() const { return options_.config; }
  const ClusterSpec& cluster() const { return options_.config.cluster; }
  bool is_chief() const { return options_.config.is_chief(); }
  // The port this task serves on (after Serve()).
  int port() const;
  AbortSignal& abort_signal() { return *abort_; }
  // The view of the cluster: incarnations, states, hosts; restarts recorded.
  const PeerDirectory& peers() const { return *peers_; }
  // After Start().
  CoordinationClient& coordination() { return *client_; }
  // The chief's coordination service (after Serve()); null on other tasks.
  CoordinationService* coordination_service() { return service_.get(); }

  // A transport over `group` (rank order; must include this task) named
  // `name` (equal on every rank, unique within this task). `rpc_layer` picks
  // the data path: see runtime/rpc/data_path.h. Every rank of the group must
  // call it with the same arguments.
  absl::StatusOr<std::unique_ptr<Transport>> CreateTransport(const std::vector<TaskId>& group,
                                                             absl::string_view rpc_layer,
                                                             absl::string_view name);

 private:
  explicit Mesh(MeshOptions options);
  // `tasks` less those the current generation departed from.
  std::vector<TaskId> Members(std::vector<TaskId> tasks) const;
  absl::StatusOr<std::string> BindAddress() const;
  // MeshOptions::bind_host, or its default for this task's address.
  absl::StatusOr<std::string> BindHost() const;

  MeshOptions options_;
  const uint64_t incarnation_;
  std::unique_ptr<AbortSignal> owned_abort_;
  AbortSignal* abort_;
  std::shared_ptr<PeerDirectory> peers_;
  ChannelCache channels_;
  std::shared_ptr<CoordinationService> service_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<CoordinationClient> client_;
  bool served_ = false;
  bool joined_ = false;
  bool stopped_ = false;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_MESH_H_
