// Mailbox: where chunks sent to one named transport of this task wait for the
// receiver, keyed by (source task, seq). The collective service deposits them
// from gRPC threads; the transport's SendRecv takes them in seq order. A chunk
// may arrive before the receiver asks for it, or before the transport exists at
// all, so MailboxRegistry creates a mailbox on first use from either side.
// Thread-safe.
#ifndef MESHTRAIN_RUNTIME_RPC_MAILBOX_H_
#define MESHTRAIN_RUNTIME_RPC_MAILBOX_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/base/abort_signal.h"
#include "runtime/cluster/cluster_spec.h"
#include "runtime/rpc/chunk_codec.h"

namespace meshtrain {

class Mailbox {
 public:
  Mailbox() = default;
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // InvalidArgument for a second chunk with the same (source, seq) while the
  // first waits.
  absl::Status Deposit(ReceivedChunk chunk);

  // The chunk (source, seq), waiting for it until `deadline` (DeadlineExceeded)
  // or until `abort` fires (its status). `abort` may be null.
  absl::StatusOr<ReceivedChunk> Take(const TaskId& source, uint64_t seq, absl::Time deadline,
                                     const AbortSignal* abort);

  // Makes waiting Take calls look at the abort signal again.
  void Wake();

  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::pair<TaskId, uint64_t>, ReceivedChunk> chunks_ ABSL_GUARDED_BY(mu_);
};

class MailboxRegistry {
 public:
  // The mailbox for transport `name`, created empty on first use (the service
  // deposits into it whether or not the transport exists yet).
  std::shared_ptr<Mailbox> Get(absl::string_view name);
  // The mailbox for a new transport `name`; AlreadyExists while another
  // transport of this task holds that name.
  absl::StatusOr<std::shared_ptr<Mailbox>> Claim(absl::string_view name);
  // Ends the claim and forgets the mailbox (chunks still in it are dropped).
  void Release(absl::string_view name);

 private:
  struct Entry {
    std::shared_ptr<Mailbox> mailbox;
    bool claimed = false;
  };
  Entry& Find(absl::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::map<std::string, Entry, std::less<>> mailboxes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_MAILBOX_H_
