#include "runtime/cluster/cluster_source.h"

#include <initializer_list>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/cluster/address.h"
#include "runtime/cluster/slurm_resolver.h"

namespace meshtrain {
namespace {

// "A=1, B=node[01-02]" for the variables that are set, values bounded.
std::string Shown(const EnvLookup& env, std::initializer_list<absl::string_view> names) {
  std::vector<std::string> parts;
  for (absl::string_view name : names) {
    if (std::optional<std::string> value = env(name)) {
      parts.push_back(
          absl::StrCat(name, "=", value->size() <= 80 ? *value : value->substr(0, 80) + "..."));
    }
  }
  return absl::StrJoin(parts, ", ");
}

// The world size an MPI launcher gave, and the variable names, or nullopt.
std::optional<std::pair<std::string, std::string>> MpiSize(const EnvLookup& env) {
  if (env("OMPI_COMM_WORLD_RANK") && env("OMPI_COMM_WORLD_SIZE")) {
    return std::make_pair(*env("OMPI_COMM_WORLD_SIZE"),
                          Shown(env, {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"}));
  }
  if (env("PMI_RANK") && env("PMI_SIZE")) {
    return std::make_pair(*env("PMI_SIZE"), Shown(env, {"PMI_RANK", "PMI_SIZE"}));
  }
  return std::nullopt;
}

}  // namespace

absl::string_view ClusterSourceName(ClusterSource source) {
  switch (source) {
    case ClusterSource::kTfConfig:
      return "TF_CONFIG";
    case ClusterSource::kSlurm:
      return "Slurm";
    case ClusterSource::kMpi:
      return "MPI";
    case ClusterSource::kTorchrun:
      return "torchrun-style variables";
    case ClusterSource::kLocal:
      return "local";
  }
  return "unknown";
}

ClusterSourceChoice ChooseClusterSource(const EnvLookup& env) {
  if (env("TF_CONFIG"))
    return {ClusterSource::kTfConfig, "cluster from TF_CONFIG (it is set, and comes first)"};
  const std::string no_tf_config = "TF_CONFIG is not set";
  const auto mpi = MpiSize(env);
  if (RunningUnderSlurmStep(env)) {
    const std::optional<std::string> ntasks = env("SLURM_NTASKS");
    if (mpi && ntasks && *ntasks != mpi->first) {
      return {ClusterSource::kMpi,
              absl::StrCat("cluster from MPI (", mpi->second,
                           "); its world size differs from "
                           "SLURM_NTASKS=",
                           *ntasks, ": mpirun inside a Slurm allocation; ", no_tf_config)};
    }
    return {ClusterSource::kSlurm,
            absl::StrCat("cluster from Slurm (",
                         Shown(env, {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_NODELIST"}), "); ",
                         no_tf_config)};
  }
  const std::string no_slurm =
      env("SLURM_JOB_ID") ? "not a task of a Slurm step (SLURM_JOB_ID is set, but SLURM_PROCID and "
                            "SLURM_STEP_ID are not both: start tasks with srun)"
                          : "no Slurm step";
  if (mpi) {
    return {ClusterSource::kMpi,
            absl::StrCat("cluster from MPI (", mpi->second, "); ", no_tf_config, ", ", no_slurm)};
  }
  if (env("RANK") && env("WORLD_SIZE")) {
    return {ClusterSource::kTorchrun,
            absl::StrCat("cluster from torchrun-style variables (",
                         Shown(env, {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}), "); ",
                         no_tf_config, ", ", no_slurm, ", no MPI launcher")};
  }
  return {ClusterSource::kLocal, absl::StrCat("one process alone: ", no_tf_config, ", ", no_slurm,
                                              ", no MPI launcher, no RANK and WORLD_SIZE")};
}

}  // namespace meshtrain
