#include "launcher/check_config_command.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "launcher/flag_set.h"
#include "launcher/train_flags.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"
#include "runtime/cluster/cluster_source.h"
#include "runtime/cluster/env_lookup.h"
#include "runtime/cluster/mpi_resolver.h"
#include "runtime/cluster/slurm_resolver.h"
#include "runtime/cluster/tf_config.h"
#include "runtime/cluster/torchrun_resolver.h"

namespace meshtrain {
namespace {

constexpr char kDescription[] =
    "Prints where this process's cluster comes from (TF_CONFIG, a Slurm step, mpirun,\n"
    "torchrun-style variables, or none) and why, then the cluster: every task and address,\n"
    "who is chief, and this process's role; or the error, naming the variable and the fix\n"
    "(exit 1). Give the --ps/--evaluator/--port-base that `meshtrain train` will get.";

// What `meshtrain train` would resolve, as text; addresses that are only
// exchanged at start-up are described, not resolved.
absl::StatusOr<std::string> Describe(ClusterSource source, const EnvLookup& env,
                                     const TaskOptions& options) {
  switch (source) {
    case ClusterSource::kTfConfig: {
      MESHTRAIN_ASSIGN_OR_RETURN(ClusterConfig config, ClusterConfigFromEnvironment());
      return DescribeCluster(config);
    }
    case ClusterSource::kSlurm: {
      MESHTRAIN_ASSIGN_OR_RETURN(SlurmPlacement placement, SlurmPlacementFromEnvironment(env));
      SlurmOptions slurm;
      slurm.port_base = static_cast<int>(options.port_base);
      slurm.roles = RankRoles{static_cast<int>(options.ps), options.evaluator};
      MESHTRAIN_ASSIGN_OR_RETURN(ClusterConfig config, ClusterConfigFromSlurm(placement, slurm));
      return DescribeCluster(config);
    }
    case ClusterSource::kMpi: {
      MESHTRAIN_ASSIGN_OR_RETURN(MpiPlacement placement, MpiPlacementFromEnvironment());
      return absl::StrCat("MPI rank ", placement.rank, " of ", placement.size, " (local rank ",
                          placement.local_rank, " of ", placement.local_size,
                          "); addresses are exchanged through MPI when `meshtrain train` starts; "
                          "rank 0 is worker:0, the chief\n");
    }
    case ClusterSource::kTorchrun: {
      MESHTRAIN_ASSIGN_OR_RETURN(TorchrunPlacement placement,
                                 TorchrunPlacementFromEnvironment(env));
      return absl::StrCat(
          "torchrun-style rank ", placement.rank, " of ", placement.world_size, " (local rank ",
          placement.local_rank, "); ",
          placement.rank == 0 ? "this task listens at " : "this task connects to ",
          JoinHostPort(placement.master_addr, placement.rendezvous_port),
          " when `meshtrain train` starts, and every task's address is exchanged there; rank ",
          options.evaluator ? 1 + options.ps : options.ps, " is worker:0, the chief\n");
    }
    case ClusterSource::kLocal:
      break;
  }
  return std::string("meshtrain train runs alone, as worker:0 (the chief).\n");
}

}  // namespace

int RunCheckConfigCommand(const std::vector<std::string>& args) {
  std::string tf_config;
  TaskOptions options;
  FlagSet flags("check-config",
                "meshtrain check-config [--tf-config JSON] [--ps N] [--evaluator] [--port-base P]",
                kDescription);
  flags.AddString("tf-config", &tf_config, "check this JSON instead of the TF_CONFIG variable");
  RegisterClusterEngineFlags(flags, options);
  if (std::optional<int> exit = ParseCommandFlags(flags, args)) return *exit;
  if (flags.IsSet("tf-config")) {
    absl::StatusOr<ClusterConfig> config = ParseTfConfig(tf_config);
    if (!config.ok()) {
      std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
      return 1;
    }
    std::fputs(DescribeCluster(*config).c_str(), stdout);
    return 0;
  }
  const EnvLookup env = ProcessEnvironment();
  const ClusterSourceChoice choice = ChooseClusterSource(env);
  std::printf("%s\n", choice.reason.c_str());
  absl::StatusOr<std::string> described = Describe(choice.source, env, options);
  if (!described.ok()) {
    std::fprintf(stderr, "%s\n", std::string(described.status().message()).c_str());
    return 1;
  }
  std::fputs(described->c_str(), stdout);
  return 0;
}

}  // namespace meshtrain
