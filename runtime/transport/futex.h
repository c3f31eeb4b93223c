// Futex: blocking wait/wake on a 32-bit word that may live in memory shared
// between processes (the shared, not FUTEX_PRIVATE, variants), and a wait on two
// words at once (futex_waitv, Linux 5.16+; older kernels fall back to waiting on
// the first word with a short timeout, which costs latency but stays correct
// because callers re-check their conditions). Thread-safe.
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_FUTEX_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_FUTEX_H_

#include <atomic>
#include <cstdint>

#include "absl/time/time.h"

namespace meshtrain {

// Blocks while *word == expected, for at most `timeout`; returns early on a wake,
// a signal or a changed value (callers loop on their own condition).
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, absl::Duration timeout);

// As FutexWait, blocking while both words hold their expected values; `b` may be
// null (then it is FutexWait on `a`).
void FutexWaitEither(std::atomic<uint32_t>* a, uint32_t expected_a, std::atomic<uint32_t>* b,
                     uint32_t expected_b, absl::Duration timeout);

// Wakes every waiter on `word`.
void FutexWakeAll(std::atomic<uint32_t>* word);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_FUTEX_H_
