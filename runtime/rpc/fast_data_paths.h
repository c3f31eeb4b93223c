// The fast data paths for tensor bytes between tasks, negotiated over the
// mesh's key-value store (in the spirit of TensorFlow's grpc+verbs rpc layers):
//   "shm": shared-memory rings between the tasks of one host;
//   "tcp": raw TCP sockets between hosts.
// Set-up protocol of a transport named N (every rank of the group, in step):
//   1. rank r publishes its incarnation (and, for tcp, its listening port)
//      under "datapath/N/r";
//   2. every rank reads every other rank's entry (waiting, up to the deadline);
//   3. the group id = a hash of N and all incarnations: a transport built by a
//      restarted task never attaches to a previous life's segments or sockets;
//   4. the transport connects its ring neighbours (shm) or peers (tcp).
#ifndef MESHTRAIN_RUNTIME_RPC_FAST_DATA_PATHS_H_
#define MESHTRAIN_RUNTIME_RPC_FAST_DATA_PATHS_H_

#include "absl/status/status.h"
#include "runtime/rpc/data_path.h"

namespace meshtrain {

// Registers "shm" and "tcp" on `registry`.
absl::Status RegisterFastDataPaths(DataPathRegistry& registry);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_FAST_DATA_PATHS_H_
