// A one-shot all-gather of short strings through a master, over plain TCP: how
// the tasks of a torchrun-style job (RANK, WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), whose addresses nobody knows in advance, learn each other's
// addresses before the mesh starts. It plays the part MPI_Allgather plays for
// mpirun (mpi_resolver.h). The protocol, one connection per non-master rank:
//   1. rank 0 listens on MASTER_PORT; every other rank connects (retrying
//      until the deadline: the master may start last) and sends one line
//      "meshtrain-rendezvous 1 <rank> <size> <payload>";
//   2. the master checks each line (same size, rank in 1..size-1, not taken);
//      a line that is not this protocol closes that connection only (a port
//      scanner, a health probe); a connection that closes before the end
//      frees its rank (a restarted task may take it again);
//   3. once every rank has joined, the master sends each "ok <size>" and the
//      size payloads, one per line, in rank order, and closes; on a bad line
//      it sends "error <message>" to everyone instead, so all ranks fail with
//      the master's message;
//   4. the master stops listening: MASTER_PORT is free again.
// Payloads hold no newline. Blocking calls, each bounded by the deadline; no
// shared state, so concurrent calls (tests run ranks as threads) are safe.
#ifndef MESHTRAIN_RUNTIME_CLUSTER_RENDEZVOUS_H_
#define MESHTRAIN_RUNTIME_CLUSTER_RENDEZVOUS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace meshtrain {

struct RendezvousOptions {
  std::string master_host;  // where rank 0 listens (MASTER_ADDR)
  int master_port = 0;      // MASTER_PORT
  int rank = 0;
  int size = 1;
  absl::Duration timeout = absl::Minutes(5);  // for the whole exchange
};

// Builds this rank's payload once it is connected: `local_ip` is this end's
// address on the connection to the master, an address the master's network
// reaches ("" on the master itself).
using RendezvousPayload = std::function<std::string(absl::string_view local_ip)>;

// Every rank's payload, in rank order; every rank must call it. kUnavailable
// when the master cannot be reached or its port cannot be bound,
// kDeadlineExceeded naming the missing ranks, kInvalidArgument for a
// mismatched size, a taken rank or a payload with a newline.
absl::StatusOr<std::vector<std::string>> RendezvousAllGather(const RendezvousOptions& options,
                                                             const RendezvousPayload& payload);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_RENDEZVOUS_H_
