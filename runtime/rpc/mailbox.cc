#include "runtime/rpc/mailbox.h"

#include "absl/strings/str_cat.h"

namespace meshtrain {

absl::Status Mailbox::Deposit(ReceivedChunk chunk) {
  absl::MutexLock lock(&mu_);
  auto key = std::make_pair(chunk.meta.source, chunk.meta.seq);
  if (chunks_.count(key) > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("duplicate chunk ", chunk.meta.seq, " from ", chunk.meta.source.ToString()));
  }
  chunks_.emplace(std::move(key), std::move(chunk));
  return absl::OkStatus();
}

absl::StatusOr<ReceivedChunk> Mailbox::Take(const TaskId& source, uint64_t seq, absl::Time deadline,
                                            const AbortSignal* abort) {
  const auto key = std::make_pair(source, seq);
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return chunks_.count(key) > 0 || (abort != nullptr && abort->aborted());
  };
  mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
  auto it = chunks_.find(key);
  if (it == chunks_.end()) {
    if (abort != nullptr && abort->aborted()) return abort->status();
    return absl::DeadlineExceededError("no chunk arrived before the deadline");
  }
  ReceivedChunk chunk = std::move(it->second);
  chunks_.erase(it);
  return chunk;
}

void Mailbox::Wake() {
  // Releasing the mutex makes absl re-evaluate the waiters' conditions.
  absl::MutexLock lock(&mu_);
}

size_t Mailbox::size() const {
  absl::MutexLock lock(&mu_);
  return chunks_.size();
}

MailboxRegistry::Entry& MailboxRegistry::Find(absl::string_view name) {
  auto it = mailboxes_.find(name);
  if (it == mailboxes_.end()) {
    it = mailboxes_.emplace(std::string(name), Entry{std::make_shared<Mailbox>(), false}).first;
  }
  return it->second;
}

std::shared_ptr<Mailbox> MailboxRegistry::Get(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  return Find(name).mailbox;
}

absl::StatusOr<std::shared_ptr<Mailbox>> MailboxRegistry::Claim(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  Entry& entry = Find(name);
  if (entry.claimed) {
    return absl::AlreadyExistsError(
        absl::StrCat("a transport named '", name, "' already exists in this task"));
  }
  entry.claimed = true;
  return entry.mailbox;
}

void MailboxRegistry::Release(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = mailboxes_.find(name);
  if (it != mailboxes_.end()) mailboxes_.erase(it);
}

}  // namespace meshtrain
