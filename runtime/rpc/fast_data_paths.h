// The fast data paths for tensor bytes between tasks, negotiated over the
// mesh's key-value store (in the spirit of TensorFlow's grpc+verbs rpc layers):
//   "shm": shared-memory rings between the tasks of one host;
//   "tcp": raw TCP sockets between hosts;
//   "shm+tcp": a RoutedTransport (runtime/transport/routed_transport.h) for a
//       group spread over hosts: ring neighbours on this host over shm, ring
//       neighbours on other hosts over tcp.
// Set-up protocol of a transport named N (every rank of the group, in step):
//   1. rank r publishes its incarnation (and, for tcp, its listening port) and
//      128 random bits it draws under "datapath/N/r";
//   2. every rank reads every other rank's entry (waiting, up to the deadline);
//   3. the group id = a hash of N and all incarnations: a transport built by a
//      restarted task never attaches to a previous life's segments or sockets;
//      shm segment names also carry rank 0's random bits, so that no other
//      user of the host can guess them (the segments are mode 0600 too);
//   4. the transport connects its ring neighbours (shm) or peers (tcp), with
//      tcp links handshaking TLS when the mesh's security has a context
//      (MeshSecurity::data_path_tls; encrypting as it says).
// "shm+tcp" runs the protocol twice, as N/shm then N/tcp (distinct keys,
// segment names and TCP job ids), and every rank takes part in both exchanges,
// even one with no neighbour on its host (or none elsewhere), since step 2
// waits for every rank's entry; step 4 connects only the neighbours of each
// part, and a rank builds no part it has no neighbour for.
#ifndef MESHTRAIN_RUNTIME_RPC_FAST_DATA_PATHS_H_
#define MESHTRAIN_RUNTIME_RPC_FAST_DATA_PATHS_H_

#include "absl/status/status.h"
#include "runtime/rpc/data_path.h"

namespace meshtrain {

// Registers "shm", "tcp" and "shm+tcp" on `registry`.
absl::Status RegisterFastDataPaths(DataPathRegistry& registry);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_FAST_DATA_PATHS_H_
