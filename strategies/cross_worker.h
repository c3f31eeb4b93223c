// The communicator a multi_worker_mirrored life sums gradients across workers
// with: NCCL between GPUs, else a ring AllReduce over the mesh's transport
// (shared memory, TCP or gRPC). Its links are named after the life, so no
// byte of an earlier life can reach it. Called from the training thread.
#ifndef MESHTRAIN_STRATEGIES_CROSS_WORKER_H_
#define MESHTRAIN_STRATEGIES_CROSS_WORKER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/collective/communicator.h"
#include "runtime/rpc/mesh.h"
#include "runtime/tensor/device.h"
#include "runtime/transport/transport.h"
#include "runtime/transport/wire_codec.h"
#include "strategies/strategy_config.h"

namespace meshtrain {

// multi_worker_mirrored runs its cross-worker sums over NCCL when
// communication is "nccl", or "auto" with every device a GPU in a CUDA build.
bool UseNcclAcrossWorkers(const StrategyConfig& config, const std::vector<Device>& devices);

// Else over a hierarchical AllReduce (runtime/collective/
// hierarchical_communicator.h) when communication is "hierarchical", or
// "auto" where it moves fewer bytes between hosts (HierarchyPays: several
// hosts, one with two workers or more); else over the flat ring ("ring").
bool UseHierarchyAcrossWorkers(const StrategyConfig& config,
                               const std::vector<std::string>& host_identities);

// The NCCL communicator over `workers` (rank order) for this task, on
// `device`: worker 0 draws the unique id and publishes it under
// "nccl/<name>", the others read it; every wait ends at `timeout` or on abort.
absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclAcrossWorkers(
    Mesh& mesh, const std::vector<TaskId>& workers, Device device, absl::string_view name,
    AbortSignal& abort, absl::Duration timeout);

// One life's communicator across the training workers, and the transport it
// runs on (null for NCCL). Members go in reverse order: the communicator
// before its transport.
struct CrossWorkerLink {
  std::unique_ptr<Transport> transport;
  // A hierarchical AllReduce's links within this host and between the hosts'
  // leaders (the latter on leaders only).
  std::vector<std::unique_ptr<Transport>> host_transports;
  std::unique_ptr<Communicator> communicator;
  std::string description;  // "nccl", "ring over shm", "hierarchical: ..." (summary.json)
  WireDtype wire_dtype = WireDtype::kFloat32;  // how the ring's chunks travel
};

struct CrossWorkerOptions {
  std::vector<Device> devices;  // this worker's replicas
  std::string rpc_layer;        // the ring's data path (runtime/rpc/data_path.h)
  int64_t generation = 0;       // the cluster's recoveries so far
  // The training workers in rank order; empty: every one of the cluster.
  std::vector<TaskId> workers;
  absl::Duration timeout = absl::Minutes(5);
};

// Every training worker of the mesh calls it with the same options.
absl::StatusOr<CrossWorkerLink> CreateCrossWorkerLink(Mesh& mesh, AbortSignal& abort,
                                                      const StrategyConfig& config,
                                                      const CrossWorkerOptions& options);

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_CROSS_WORKER_H_
