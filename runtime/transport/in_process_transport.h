// In-process mesh: the ranks of a group are threads of one process, and a
// message moves from the sender's buffer straight into the receiver's (one copy,
// or one add for kAddFloat32). Used by the collectives' unit tests and by
// strategies that run several replicas in one process over the ring algorithms.
//
// Protocol per directed pair (src, dst), one slot, under one mesh-wide mutex:
//   1. The sender posts its span in the slot (a send never waits to post: the
//      previous send on that pair already completed).
//   2. The receiver waits for a posted slot, marks it taken, copies or adds
//      outside the lock, then marks it consumed.
//   3. The sender waits until consumed, which keeps its buffer valid while read.
// A sender that gives up (deadline, abort) retracts a slot not yet taken; a
// taken slot is waited for, since the copy in progress reads its buffer.
//
// Thread-safety: each Transport is driven by one thread (its rank's); the mesh
// state is shared and locked. The transports share one state object, which lives
// until the last of them is destroyed; `abort` (nullable) must outlive them.
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_IN_PROCESS_TRANSPORT_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_IN_PROCESS_TRANSPORT_H_

#include <memory>
#include <vector>

#include "runtime/base/abort_signal.h"
#include "runtime/transport/transport.h"

namespace meshtrain {

// world_size >= 1 transports; element r is rank r's. Peers are named "rank r".
std::vector<std::unique_ptr<Transport>> CreateInProcessMesh(int world_size,
                                                            AbortSignal* abort = nullptr);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_IN_PROCESS_TRANSPORT_H_
