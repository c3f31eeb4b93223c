// cluster_mpi_probe NUM_PS: run under mpirun. Each rank resolves its cluster
// with ClusterConfigFromMpi, then checks it against what rank and size imply
// and against every other rank's view. Exits 0 when all agree, else 1 with the
// reason. Addresses are made up (no server listens): only the rendezvous is
// under test.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/cluster/mpi_resolver.h"
#include "runtime/cluster/tf_config.h"

namespace meshtrain {
namespace {

int Fail(int rank, const std::string& why) {
  std::fprintf(stderr, "rank %d: FAIL: %s\n", rank, why.c_str());
  return 1;
}

int Run(int num_ps) {
  absl::StatusOr<MpiPlacement> placement = MpiPlacementFromEnvironment();
  if (!placement.ok()) return Fail(-1, std::string(placement.status().message()));
  absl::StatusOr<std::unique_ptr<MpiSession>> session = MpiSession::Init();
  if (!session.ok()) return Fail(placement->rank, std::string(session.status().message()));
  MpiSession& mpi = **session;
  if (mpi.rank() != placement->rank || mpi.size() != placement->size) {
    return Fail(mpi.rank(),
                absl::StrCat("MPI says rank ", mpi.rank(), " of ", mpi.size(), ", the environment ",
                             placement->rank, " of ", placement->size));
  }
  const std::string address = absl::StrCat(MpiHostForPeers(*placement), ":", 31000 + mpi.rank());
  absl::StatusOr<ClusterConfig> config = ClusterConfigFromMpi(mpi, address, num_ps);
  if (!config.ok()) return Fail(mpi.rank(), std::string(config.status().message()));

  const int num_workers = mpi.size() - num_ps;
  const TaskId expected = mpi.rank() < num_workers ? TaskId{"worker", mpi.rank()}
                                                   : TaskId{"ps", mpi.rank() - num_workers};
  if (config->task != expected) {
    return Fail(mpi.rank(),
                absl::StrCat("task ", config->task.ToString(), ", expected ", expected.ToString()));
  }
  if (config->cluster.address(config->task) != address)
    return Fail(mpi.rank(), "own address wrong");
  if (config->is_chief() != (mpi.rank() == 0)) return Fail(mpi.rank(), "chief wrong");
  // Every rank must see the same cluster: gather each rank's view of it.
  ClusterConfig view = *config;
  view.task = TaskId{"worker", 0};
  absl::StatusOr<std::vector<std::string>> views = mpi.AllGather(ToTfConfigJson(view));
  if (!views.ok()) return Fail(mpi.rank(), std::string(views.status().message()));
  for (const std::string& other : *views) {
    if (other != (*views)[0]) return Fail(mpi.rank(), "ranks disagree on the cluster: " + other);
  }
  std::printf("rank %d of %d: %s, chief %s, cluster %s\n", mpi.rank(), mpi.size(),
              config->task.ToString().c_str(), config->cluster.Chief().ToString().c_str(),
              (*views)[0].c_str());
  return 0;
}

}  // namespace
}  // namespace meshtrain

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: mpirun -np N %s NUM_PS\n", argv[0]);
    return 2;
  }
  return meshtrain::Run(std::atoi(argv[1]));
}
