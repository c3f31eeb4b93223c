// The MPI resolver: a cluster from `mpirun -np N meshtrain train ...` when no
// TF_CONFIG is set. mpirun tells each process its rank (environment variables
// read by MpiPlacementFromEnvironment, before MPI starts); MpiSession then starts
// MPI and all-gathers every rank's "host:port", which ClusterConfigFromMpi turns
// into {"worker": ranks 0..N-num_ps-1, "ps": the last num_ps ranks}. Rank 0 is
// worker 0 and so the chief. MPI is used only for this rendezvous; training
// traffic goes over meshtrain's own transports.
//
// mpi.h stays out of this header. MpiSession is not thread-safe: use it from one
// thread at a time. The free functions read the environment and are safe unless
// another thread calls setenv.
#ifndef MESHTRAIN_RUNTIME_CLUSTER_MPI_RESOLVER_H_
#define MESHTRAIN_RUNTIME_CLUSTER_MPI_RESOLVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/cluster/cluster_spec.h"

namespace meshtrain {

// How long a rank waits in the rendezvous for the slowest rank to arrive.
inline constexpr absl::Duration kMpiRendezvousTimeout = absl::Minutes(2);

// True when a launcher of MPI jobs started this process: Open MPI's
// OMPI_COMM_WORLD_RANK and OMPI_COMM_WORLD_SIZE, or PMI_RANK and PMI_SIZE
// (MPICH and Intel MPI's Hydra).
bool RunningUnderMpi();

struct MpiPlacement {
  int rank = 0;        // 0..size-1
  int size = 1;        // processes in the job
  int local_rank = 0;  // 0..local_size-1 among the processes on this host
  int local_size = 1;  // processes on this host; 1 where the launcher does not say
};

// The placement mpirun gave this process, validated: kFailedPrecondition when
// not under MPI, kInvalidArgument naming the variable when a value is bad.
absl::StatusOr<MpiPlacement> MpiPlacementFromEnvironment();

// The host other ranks should use to reach this one: $MESHTRAIN_HOST if set,
// else "127.0.0.1" when every rank is on this host (local_size == size), else
// this machine's hostname.
std::string MpiHostForPeers(const MpiPlacement& placement);

class MpiSession {
 public:
  // Starts MPI (MPI_Init_thread, MPI_THREAD_SERIALIZED) on a private duplicate
  // of MPI_COMM_WORLD whose errors return instead of aborting. MPI starts once
  // per process: kFailedPrecondition if it was started or finished before.
  static absl::StatusOr<std::unique_ptr<MpiSession>> Init();
  // MPI_Finalize, unless a collective timed out (MPI_Finalize would then hang);
  // mpirun ends a job whose process exits without it.
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // Every rank's `mine`, in rank order; every rank must call it. Strings may
  // differ in length. kDeadlineExceeded if the other ranks do not all arrive in
  // `timeout`; the session is then unusable.
  absl::StatusOr<std::vector<std::string>> AllGather(
      const std::string& mine, absl::Duration timeout = kMpiRendezvousTimeout);

 private:
  struct State;  // the communicator and the buffers of a pending collective
  MpiSession(std::unique_ptr<State> state, int rank, int size);

  std::unique_ptr<State> state_;
  int rank_;
  int size_;
  bool stuck_ = false;  // a collective timed out and is still pending
};

// The cluster of `mpi`'s job: all-gathers every rank's `my_address`
// ("host:port", where this rank's server already listens) and `num_ps`, then
// ClusterConfigFromRankAddresses. Every rank sees the same gathered data, so
// either all ranks succeed or all fail with the same error.
absl::StatusOr<ClusterConfig> ClusterConfigFromMpi(MpiSession& mpi, absl::string_view my_address,
                                                   int num_ps,
                                                   absl::Duration timeout = kMpiRendezvousTimeout);

// Pure: the cluster whose rank r listens on addresses[r], the last `num_ps` ranks
// being parameter servers, seen from rank `rank`.
absl::StatusOr<ClusterConfig> ClusterConfigFromRankAddresses(
    absl::Span<const std::string> addresses, int rank, int num_ps);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_MPI_RESOLVER_H_
