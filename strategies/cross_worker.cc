#include "strategies/cross_worker.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/status_macros.h"
#include "runtime/collective/hierarchical_communicator.h"
#include "runtime/collective/ring_communicator.h"
#if MESHTRAIN_HAVE_CUDA
#include "runtime/collective/nccl/nccl_communicator.h"
#endif

namespace meshtrain {
bool UseNcclAcrossWorkers(const StrategyConfig& config, const std::vector<Device>& devices) {
  if (config.communication == "nccl") return true;
  return config.communication == "auto" && MESHTRAIN_HAVE_CUDA && AllGpus(devices);
}

bool UseHierarchyAcrossWorkers(const StrategyConfig& config,
                               const std::vector<std::string>& host_identities) {
  if (config.communication == "hierarchical") return true;
  return config.communication == "auto" && HierarchyPays(host_identities);
}

namespace {

// The tasks at `ranks` of `workers`.
std::vector<TaskId> Pick(const std::vector<TaskId>& workers, const std::vector<int>& ranks) {
  std::vector<TaskId> out;
  for (int r : ranks) out.push_back(workers[r]);
  return out;
}

// The hierarchical AllReduce's links: the flat ring's transport is made by
// the caller; here the host's and (on leaders) the leaders' ones. Every
// worker makes its host's link, then the leaders theirs: each group's
// members call CreateTransport in the same order. `wire_dtype` applies to the
// leaders' ring, the bytes that cross hosts; within a host (shared memory,
// memory speed) 16 bits cost more in conversions than they save.
absl::Status CreateHierarchy(Mesh& mesh, const std::vector<TaskId>& workers,
                             const std::vector<std::string>& hosts, const std::string& rpc_layer,
                             WireDtype wire_dtype, const std::string& name, CrossWorkerLink& link) {
  const int rank =
      static_cast<int>(std::find(workers.begin(), workers.end(), mesh.task()) - workers.begin());
  const HostLayout layout = LayOutHosts(hosts, rank);
  MESHTRAIN_ASSIGN_OR_RETURN(
      std::unique_ptr<Transport> local,
      mesh.CreateTransport(Pick(workers, layout.local_ranks), rpc_layer,
                           absl::StrCat(name, "-host", layout.local_ranks.front())));
  std::unique_ptr<Transport> leaders;
  if (layout.leader) {
    MESHTRAIN_ASSIGN_OR_RETURN(leaders,
                               mesh.CreateTransport(Pick(workers, layout.leaders), rpc_layer,
                                                    absl::StrCat(name, "-leaders")));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(
      std::unique_ptr<HierarchicalCommunicator> comm,
      HierarchicalCommunicator::Create(
          std::make_unique<RingCommunicator>(link.transport.get()),
          std::make_unique<RingCommunicator>(local.get()),
          leaders != nullptr ? std::make_unique<RingCommunicator>(
                                   leaders.get(), RingCommunicatorOptions{.wire_dtype = wire_dtype})
                             : nullptr));
  link.description =
      absl::StrCat("hierarchical: ring over ", local->kind(), " on each of ", layout.num_hosts(),
                   " hosts, ring over ", leaders != nullptr ? leaders->kind() : "the leaders' link",
                   " between their leaders");
  link.host_transports.push_back(std::move(local));
  if (leaders != nullptr) link.host_transports.push_back(std::move(leaders));
  link.communicator = std::move(comm);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclAcrossWorkers(
    Mesh& mesh, const std::vector<TaskId>& workers, Device device, absl::string_view name,
    AbortSignal& abort, absl::Duration timeout) {
  if (device.is_cpu()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--communication nccl sums GPU memory, but this worker's replicas are on ",
                     device.ToString(), "; pass --devices gpu:0 (or use --communication ring)"));
  }
#if MESHTRAIN_HAVE_CUDA
  const auto me = std::find(workers.begin(), workers.end(), mesh.task());
  if (me == workers.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(mesh.task().ToString(), " is not a training worker; NCCL spans workers only"));
  }
  const int rank = static_cast<int>(me - workers.begin());
  const std::string key = absl::StrCat("nccl/", name);
  std::string id;
  if (rank == 0) {
    MESHTRAIN_ASSIGN_OR_RETURN(id, NewNcclUniqueId());
    // Hex: the store's values travel as protobuf strings.
    MESHTRAIN_RETURN_IF_ERROR(mesh.coordination().KvSet(key, absl::BytesToHexString(id)));
  } else {
    MESHTRAIN_ASSIGN_OR_RETURN(std::string hex,
                               mesh.coordination().KvGet(key, absl::Now() + timeout));
    id = absl::HexStringToBytes(hex);
  }
  NcclCommunicatorOptions options;
  options.rank = rank;
  options.world_size = static_cast<int>(workers.size());
  options.unique_id = std::move(id);
  options.device = device;
  options.abort = &abort;
  options.init_timeout = timeout;
  options.description = mesh.task().ToString();
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<NcclCommunicator> comm,
                             NcclCommunicator::Create(std::move(options)));
  return std::unique_ptr<Communicator>(std::move(comm));
#else
  return absl::FailedPreconditionError(
      "communication 'nccl': this meshtrain was built without CUDA; rebuild with the CUDA "
      "toolkit (cmake -DMESHTRAIN_CUDA=ON) or use --communication ring");
#endif
}

absl::StatusOr<CrossWorkerLink> CreateCrossWorkerLink(Mesh& mesh, AbortSignal& abort,
                                                      const StrategyConfig& config,
                                                      const CrossWorkerOptions& options) {
  const std::vector<TaskId> workers =
      options.workers.empty() ? mesh.cluster().TrainingWorkers() : options.workers;
  // Unique per life of the cluster: a chief's restart changes its
  // incarnation, a recovery the generation.
  const uint64_t chief = mesh.peers().incarnation(mesh.cluster().Chief());
  const std::string name =
      absl::StrFormat("gradients-%08x-g%d", static_cast<uint32_t>(chief), options.generation);
  CrossWorkerLink link;
  MESHTRAIN_ASSIGN_OR_RETURN(const WireDtype wire_dtype, ParseWireDtype(config.wire_dtype));
  if (UseNcclAcrossWorkers(config, options.devices)) {
    if (wire_dtype != WireDtype::kFloat32) {
      return absl::InvalidArgumentError(absl::StrCat(
          "wire_dtype ", config.wire_dtype,
          " is for the ring: NCCL sums in the dtype it is given; use --communication ring"));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(link.communicator,
                               CreateNcclAcrossWorkers(mesh, workers, options.devices.at(0), name,
                                                       abort, options.timeout));
    link.description = "nccl";
    return link;
  }
  MESHTRAIN_ASSIGN_OR_RETURN(link.transport,
                             mesh.CreateTransport(workers, options.rpc_layer, name));
  std::vector<std::string> hosts;
  for (const TaskId& worker : workers) {
    std::optional<PeerInfo> peer = mesh.peers().Find(worker);
    hosts.push_back(peer.has_value() ? peer->host_identity : worker.ToString());
  }
  if (UseHierarchyAcrossWorkers(config, hosts)) {
    MESHTRAIN_RETURN_IF_ERROR(
        CreateHierarchy(mesh, workers, hosts, options.rpc_layer, wire_dtype, name, link));
    link.wire_dtype = wire_dtype;
    return link;
  }
  link.communicator = std::make_unique<RingCommunicator>(
      link.transport.get(), RingCommunicatorOptions{.wire_dtype = wire_dtype});
  link.description = absl::StrCat("ring over ", link.transport->kind());
  link.wire_dtype = wire_dtype;
  return link;
}

}  // namespace meshtrain
