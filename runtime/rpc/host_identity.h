// HostIdentity: a string equal for two processes exactly when they run on the
// same machine (same kernel boot): the boot id from
// /proc/sys/kernel/random/boot_id plus the hostname. Tasks send it when they
// register; the data-path negotiation compares it to decide whether a group may
// use shared memory. Thread-safe (reads files, no state).
#ifndef MESHTRAIN_RUNTIME_RPC_HOST_IDENTITY_H_
#define MESHTRAIN_RUNTIME_RPC_HOST_IDENTITY_H_

#include <string>

namespace meshtrain {

// "<boot id>/<hostname>"; the hostname alone where the boot id is unreadable
// (not Linux, or /proc not mounted).
std::string HostIdentity();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_HOST_IDENTITY_H_
