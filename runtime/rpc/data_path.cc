#include "runtime/rpc/data_path.h"

#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace meshtrain {

absl::Status DataPathRegistry::Register(absl::string_view name, DataPathFactory factory) {
  if (name.empty() || name == kAutoDataPath || name == kGrpcDataPath) {
    return absl::InvalidArgumentError(absl::StrCat("data path '", name, "': the name is reserved"));
  }
  if (!factory) {
    return absl::InvalidArgumentError(absl::StrCat("data path '", name, "': empty factory"));
  }
  if (!factories_.emplace(std::string(name), std::move(factory)).second) {
    return absl::AlreadyExistsError(absl::StrCat("data path '", name, "' is registered twice"));
  }
  return absl::OkStatus();
}

const DataPathFactory* DataPathRegistry::Find(absl::string_view name) const {
  auto it = factories_.find(name);
  return it == factories_.end() ? nullptr : &it->second;
}

std::vector<std::string> DataPathRegistry::names() const {
  std::vector<std::string> names;
  for (const auto& [name, factory] : factories_) names.push_back(name);
  return names;
}

namespace {

// The "" / "auto" rule of the header comment.
DataPathChoice ChooseAuto(const std::vector<std::string>& host_identities,
                          const DataPathRegistry& registry) {
  std::map<std::string, int> tasks_per_host;
  for (const std::string& host : host_identities) ++tasks_per_host[host];
  const bool one_host = tasks_per_host.size() <= 1;
  int shared_hosts = 0;  // hosts with several tasks of the group
  for (const auto& [host, tasks] : tasks_per_host) shared_hosts += tasks >= 2;
  if (one_host && registry.Find(kSharedMemoryDataPath) != nullptr) {
    return {std::string(kSharedMemoryDataPath), "every task of the group is on one host"};
  }
  if (!one_host && shared_hosts > 0 && registry.Find(kSharedMemoryDataPath) != nullptr &&
      registry.Find(kMixedDataPath) != nullptr) {
    return {std::string(kMixedDataPath),
            absl::StrCat("the group spans ", tasks_per_host.size(), " hosts, ", shared_hosts,
                         " of them with several tasks: shared memory inside a host, tcp between "
                         "hosts")};
  }
  if (registry.Find(kTcpDataPath) != nullptr) {
    return {std::string(kTcpDataPath),
            one_host ? "one host, but no shared-memory path registered"
                     : absl::StrCat("the group spans ", tasks_per_host.size(), " hosts")};
  }
  return {std::string(kGrpcDataPath),
          "no shared-memory or TCP data path is registered in this binary"};
}

}  // namespace

absl::StatusOr<DataPathChoice> ChooseDataPath(absl::string_view rpc_layer,
                                              const std::vector<std::string>& host_identities,
                                              const DataPathRegistry& registry) {
  if (rpc_layer == kGrpcDataPath) {
    return DataPathChoice{std::string(kGrpcDataPath), "rpc_layer=grpc"};
  }
  if (rpc_layer.empty() || rpc_layer == kAutoDataPath) return ChooseAuto(host_identities, registry);
  if (registry.Find(rpc_layer) == nullptr) {
    std::vector<std::string> known = {std::string(kAutoDataPath), std::string(kGrpcDataPath)};
    for (const std::string& name : registry.names()) known.push_back(name);
    return absl::InvalidArgumentError(absl::StrCat(
        "rpc_layer '", rpc_layer, "' is unknown; known: ", absl::StrJoin(known, ", ")));
  }
  const std::set<std::string> hosts(host_identities.begin(), host_identities.end());
  if (rpc_layer == kSharedMemoryDataPath && hosts.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("rpc_layer 'shm' needs every task of the group on one host, but it spans ",
                     hosts.size(), " hosts; use rpc_layer 'auto' or 'tcp'"));
  }
  return DataPathChoice{std::string(rpc_layer), absl::StrCat("rpc_layer=", rpc_layer)};
}

}  // namespace meshtrain
