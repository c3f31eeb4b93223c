#include "runtime/cluster/torchrun_resolver.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"
#include "runtime/cluster/rendezvous.h"

namespace meshtrain {
namespace {

constexpr absl::string_view kSetByLauncher =
    "torchrun and Kubeflow's PyTorchJob set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; "
    "set all four, the same WORLD_SIZE, MASTER_ADDR and MASTER_PORT for every task";

absl::Status EnvError(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("torchrun-style environment: ", what, "; ", kSetByLauncher));
}

absl::StatusOr<int> ReadInt(const EnvLookup& env, absl::string_view name, int min, int max) {
  std::optional<std::string> text = env(name);
  if (!text) return EnvError(absl::StrCat(name, " is not set"));
  int value = 0;
  if (!absl::SimpleAtoi(*text, &value) || value < min || value > max) {
    return EnvError(
        absl::StrCat(name, "=", QuoteForMessage(*text), " is not an integer in ", min, "..", max));
  }
  return value;
}

}  // namespace

absl::StatusOr<TorchrunPlacement> TorchrunPlacementFromEnvironment(const EnvLookup& env) {
  if (!env("RANK") || !env("WORLD_SIZE")) {
    return absl::FailedPreconditionError(
        "torchrun-style environment: RANK and WORLD_SIZE are not both set; start the tasks with "
        "torchrun or a PyTorchJob, or set TF_CONFIG");
  }
  TorchrunPlacement p;
  MESHTRAIN_ASSIGN_OR_RETURN(p.world_size, ReadInt(env, "WORLD_SIZE", 1, 1 << 20));
  MESHTRAIN_ASSIGN_OR_RETURN(p.rank, ReadInt(env, "RANK", 0, 1 << 20));
  if (p.rank >= p.world_size) {
    return EnvError(absl::StrCat("RANK=", p.rank, " is out of range for WORLD_SIZE=", p.world_size,
                                 " (ranks 0..", p.world_size - 1, ")"));
  }
  if (env("LOCAL_RANK")) {
    MESHTRAIN_ASSIGN_OR_RETURN(p.local_rank, ReadInt(env, "LOCAL_RANK", 0, p.world_size - 1));
  }
  std::optional<std::string> addr = env("MASTER_ADDR");
  if (!addr) return EnvError("MASTER_ADDR is not set");
  if (addr->find_first_of(" \t\n/") != std::string::npos) {
    return EnvError(
        absl::StrCat("MASTER_ADDR=", QuoteForMessage(*addr), " is not a host name or address"));
  }
  p.master_addr = *addr;
  const bool agent_store = env("TORCHELASTIC_USE_AGENT_STORE") == "True";
  MESHTRAIN_ASSIGN_OR_RETURN(p.master_port,
                             ReadInt(env, "MASTER_PORT", 1, agent_store ? 65534 : 65535));
  p.rendezvous_port = p.master_port + (agent_store ? 1 : 0);
  return p;
}

absl::StatusOr<ClusterConfig> ClusterConfigFromTorchrunPayloads(
    absl::Span<const std::string> payloads, int rank) {
  std::vector<std::string> addresses;
  RankRoles roles0;
  for (int r = 0; r < static_cast<int>(payloads.size()); ++r) {
    const std::vector<std::string> parts = absl::StrSplit(payloads[r], absl::MaxSplits(' ', 2));
    RankRoles roles;
    int evaluator = 0;
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &roles.num_ps) ||
        !absl::SimpleAtoi(parts[1], &evaluator)) {
      return absl::InternalError(absl::StrCat(
          "torchrun cluster: rank ", r, " sent ", QuoteForMessage(payloads[r]),
          ", not \"<num_ps> <evaluator> <host:port>\"; is every task the same meshtrain binary?"));
    }
    roles.evaluator = evaluator != 0;
    if (r == 0) roles0 = roles;
    if (roles.num_ps != roles0.num_ps || roles.evaluator != roles0.evaluator) {
      return absl::InvalidArgumentError(absl::StrCat(
          "torchrun cluster: rank ", r, " was started with --ps ", roles.num_ps,
          roles.evaluator ? " --evaluator" : "", " but rank 0 with --ps ", roles0.num_ps,
          roles0.evaluator ? " --evaluator" : "", "; start every task with the same flags"));
    }
    addresses.push_back(parts[2]);
  }
  return ClusterConfigByRank(addresses, rank, roles0, "torchrun cluster");
}

absl::StatusOr<ClusterConfig> ClusterConfigFromTorchrun(const TorchrunPlacement& placement,
                                                        int my_port, const RankRoles& roles,
                                                        absl::Duration timeout,
                                                        const EnvLookup& env) {
  RendezvousOptions options;
  options.master_host = placement.master_addr;
  options.master_port = placement.rendezvous_port;
  options.rank = placement.rank;
  options.size = placement.world_size;
  options.timeout = timeout;
  const std::optional<std::string> host_override = env("MESHTRAIN_HOST");
  const RendezvousPayload payload = [&](absl::string_view local_ip) {
    std::string host = placement.rank == 0 ? placement.master_addr : std::string(local_ip);
    if (host_override) host = *host_override;
    return absl::StrCat(roles.num_ps, " ", roles.evaluator ? 1 : 0, " ",
                        JoinHostPort(host, my_port));
  };
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<std::string> payloads,
                             RendezvousAllGather(options, payload));
  return ClusterConfigFromTorchrunPayloads(payloads, placement.rank);
}

}  // namespace meshtrain
