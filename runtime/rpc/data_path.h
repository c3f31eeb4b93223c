// Data paths: the seam through which faster transports than gRPC (shared
// memory between the tasks of one host, raw TCP between hosts) plug into
// Mesh::CreateTransport, without runtime/rpc depending on them. The training driver,
// which links everything, registers a factory per path in
// MeshOptions::data_paths:
//
//   options.data_paths.Register(kSharedMemoryDataPath, &CreateShmTransport);
//   options.data_paths.Register(kTcpDataPath, &CreateTcpTransport);
//
// A factory sets up its own connections; every rank of the group calls it at
// the same point with the same `name`, and it exchanges what it needs (ports,
// segment names) through `context.coordination` (KvSet/KvGet under a key
// derived from `name`, then a Barrier over `group`), within `context.deadline`.
//
// How rpc_layer selects a path (ChooseDataPath, the same answer on every rank,
// since every rank holds the same host identities and the same registry):
//   "grpc"       -> the gRPC transport;
//   "" or "auto" -> "shm" if every task of the group is on one host and "shm"
//                   is registered; else "shm+tcp" if the group spans several
//                   hosts, at least one of them holds two tasks of the group or
//                   more, and both "shm" and "shm+tcp" are registered (ring
//                   neighbours on one host over shared memory, the others over
//                   TCP); else "tcp" if registered; else the gRPC transport
//                   (logged once: the fast paths are not linked in);
//   "shm"        -> shared memory; InvalidArgument if the group spans hosts;
//   other names  -> that registered path ("tcp" stays TCP between every pair,
//                   even on one host), or InvalidArgument listing the known.
// Registry: a value type; not thread-safe while being filled.
#ifndef MESHTRAIN_RUNTIME_RPC_DATA_PATH_H_
#define MESHTRAIN_RUNTIME_RPC_DATA_PATH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/security/mesh_security.h"
#include "runtime/transport/transport.h"

namespace meshtrain {

class CoordinationClient;

inline constexpr absl::string_view kGrpcDataPath = "grpc";
inline constexpr absl::string_view kAutoDataPath = "auto";
inline constexpr absl::string_view kSharedMemoryDataPath = "shm";
inline constexpr absl::string_view kTcpDataPath = "tcp";
// Shared memory between ring neighbours on one host, TCP between the others.
inline constexpr absl::string_view kMixedDataPath = "shm+tcp";

// What a factory gets; the pointers outlive the call, not the transport (except
// `abort`, which outlives the Mesh and so every transport it creates).
struct DataPathContext {
  std::string name;           // the transport's name, equal on every rank
  std::vector<TaskId> group;  // rank order
  int rank = -1;              // this task's position in `group`
  uint64_t incarnation = 0;   // this task's
  const ClusterSpec* cluster = nullptr;
  // The host this task's listening sockets bind to (MeshOptions::bind_host);
  // "": DefaultBindHost() of this task's address.
  std::string bind_host;
  // Per rank; equal strings mean the same host (runtime/rpc/host_identity.h).
  std::vector<std::string> host_identities;
  CoordinationClient* coordination = nullptr;  // KV store and barriers, for set-up
  AbortSignal* abort = nullptr;
  absl::Time deadline = absl::InfiniteFuture();  // for the set-up exchange
  // The mesh's security (MeshOptions::security): a tcp link handshakes with
  // security->data_path_tls when it is set. Never null when called by a Mesh.
  const MeshSecurity* security = nullptr;
};

using DataPathFactory =
    std::function<absl::StatusOr<std::unique_ptr<Transport>>(const DataPathContext& context)>;

class DataPathRegistry {
 public:
  // InvalidArgument for the reserved names "", "auto" and "grpc"; AlreadyExists
  // for a name registered before.
  absl::Status Register(absl::string_view name, DataPathFactory factory);
  // Null when `name` is not registered.
  const DataPathFactory* Find(absl::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, DataPathFactory, std::less<>> factories_;
};

struct DataPathChoice {
  std::string path;    // "grpc" or a registered name
  std::string reason;  // why, for the log
};

// The path `rpc_layer` selects for a group whose tasks have `host_identities`.
absl::StatusOr<DataPathChoice> ChooseDataPath(absl::string_view rpc_layer,
                                              const std::vector<std::string>& host_identities,
                                              const DataPathRegistry& registry);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_DATA_PATH_H_
