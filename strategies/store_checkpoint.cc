#include "strategies/store_checkpoint.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

// `t` copied into `into` when it matches, else into a new host tensor.
Tensor HostCopy(Kernels& kernels, const Tensor& t, Tensor into) {
  if (into.empty() || into.dtype() != t.dtype() || into.shape() != t.shape() ||
      !into.device().is_cpu()) {
    into = Tensor(t.dtype(), t.shape());
  }
  if (t.device().is_cpu()) {
    if (t.bytes() > 0) std::memcpy(into.raw_data(), t.raw_data(), t.bytes());
  } else {
    kernels.Copy(t, into);
  }
  return into;
}

// `host` (same dtype and shape) copied into `target`, on any device.
void CopyFromHost(Kernels& kernels, const Tensor& host, Tensor& target) {
  if (target.device().is_cpu()) {
    if (host.bytes() > 0) std::memcpy(target.raw_data(), host.raw_data(), host.bytes());
  } else {
    kernels.Copy(host, target);
  }
}

// Reads rows into `target` directly on the host, or through a host tensor.
absl::Status ReadInto(const CheckpointReader& checkpoint, Kernels& kernels, const std::string& name,
                      absl::string_view slot, int64_t row_begin, Tensor& target) {
  if (target.device().is_cpu()) return checkpoint.ReadRows(name, slot, row_begin, target);
  Tensor host(target.dtype(), target.shape());
  MESHTRAIN_RETURN_IF_ERROR(checkpoint.ReadRows(name, slot, row_begin, host));
  CopyFromHost(kernels, host, target);
  return kernels.Synchronize();
}

}  // namespace

absl::StatusOr<CheckpointSnapshot> SnapshotStore(VariableStore& store, CheckpointSnapshot reuse) {
  CheckpointSnapshot snapshot;
  snapshot.slot_names = store.optimizer().slot_names();
  reuse.entries.resize(store.size());
  snapshot.entries.reserve(store.size());
  for (int i = 0; i < store.size(); ++i) {
    const VariableStore::Entry& e = store.entry(i);
    SnapshotEntry& spare = reuse.entries[i];
    SnapshotEntry s;
    s.name = e.spec.name;
    s.shape = e.spec.shape;
    s.row_begin = e.row_begin;
    s.value = HostCopy(store.kernels(), e.value, std::move(spare.value));
    spare.slots.resize(e.slots.size());
    for (size_t k = 0; k < e.slots.size(); ++k) {
      s.slots.push_back(HostCopy(store.kernels(), e.slots[k], std::move(spare.slots[k])));
    }
    s.updates = e.updates;
    snapshot.entries.push_back(std::move(s));
  }
  MESHTRAIN_RETURN_IF_ERROR(store.kernels().Synchronize());
  return snapshot;
}

// The job SnapshotBuffers hands out: holds the snapshot (copied at once, or
// deferred: copied by whichever thread gets to it first), writes one part, and
// gives its buffers back when destroyed.
class SnapshotBuffers::Job final : public CheckpointJob {
 public:
  Job(std::shared_ptr<SnapshotBuffers> owner, VariableStore* deferred, CheckpointSnapshot snapshot)
      : owner_(std::move(owner)), store_(deferred), snapshot_(std::move(snapshot)) {
    slot_names_ = deferred != nullptr ? deferred->optimizer().slot_names() : snapshot_.slot_names;
    for (int i = 0; deferred != nullptr && i < deferred->size(); ++i) {
      const VariableStore::Entry& e = deferred->entry(i);
      bytes_ += static_cast<int64_t>(e.value.bytes() * (1 + e.slots.size()));
    }
    if (deferred == nullptr) bytes_ = snapshot_.bytes();
  }
  ~Job() override { owner_->Release(this, std::move(snapshot_)); }

  absl::Status Capture() override { return owner_->CaptureNow(this); }
  absl::StatusOr<std::vector<PartRecord>> Write(FileSystem& fs, const std::string& dir) override {
    MESHTRAIN_RETURN_IF_ERROR(Capture());
    MESHTRAIN_ASSIGN_OR_RETURN(PartRecord part,
                               WriteSnapshotPart(fs, dir, kSinglePartFileName, snapshot_));
    return std::vector<PartRecord>{std::move(part)};
  }
  const std::vector<std::string>& slot_names() const override { return slot_names_; }
  int64_t bytes() const override { return bytes_; }

 private:
  friend class SnapshotBuffers;

  // The copy; run by exactly one thread (SnapshotBuffers decides which).
  void Copy() {
    absl::StatusOr<CheckpointSnapshot> copied = SnapshotStore(*store_, std::move(snapshot_));
    if (copied.ok()) {
      snapshot_ = std::move(*copied);
    } else {
      copy_status_ = copied.status();
    }
  }

  std::shared_ptr<SnapshotBuffers> owner_;
  VariableStore* const store_;  // null: copied when made
  CheckpointSnapshot snapshot_;
  absl::Status copy_status_;
  std::vector<std::string> slot_names_;
  int64_t bytes_ = 0;
};

absl::StatusOr<std::unique_ptr<CheckpointJob>> SnapshotBuffers::Capture(VariableStore& store) {
  WaitForCapture();  // one capture at a time
  CheckpointSnapshot spare;
  {
    absl::MutexLock lock(&mu_);
    spare = std::move(spare_);
    spare_ = CheckpointSnapshot();
  }
  bool on_host = true;
  for (int i = 0; i < store.size(); ++i)
    on_host = on_host && store.entry(i).value.device().is_cpu();
  if (!on_host) {
    MESHTRAIN_ASSIGN_OR_RETURN(CheckpointSnapshot copied, SnapshotStore(store, std::move(spare)));
    return std::unique_ptr<CheckpointJob>(new Job(shared_from_this(), nullptr, std::move(copied)));
  }
  auto job = std::make_unique<Job>(shared_from_this(), &store, std::move(spare));
  absl::MutexLock lock(&mu_);
  state_ = State::kPending;
  pending_ = job.get();
  return std::unique_ptr<CheckpointJob>(std::move(job));
}

absl::Status SnapshotBuffers::CaptureNow(Job* job) {
  if (job->store_ == nullptr) return absl::OkStatus();
  {
    absl::MutexLock lock(&mu_);
    if (pending_ != job || state_ != State::kPending) {
      // Copied (or being copied) by the strategy's thread: wait for it.
      auto done = [this, job]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ != job; };
      mu_.Await(absl::Condition(&done));
      return job->copy_status_;
    }
    state_ = State::kCopying;
  }
  job->Copy();
  absl::MutexLock lock(&mu_);
  state_ = State::kIdle;
  pending_ = nullptr;
  return job->copy_status_;
}

void SnapshotBuffers::WaitForCapture() {
  Job* steal = nullptr;
  const absl::Time start = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kIdle) return;
    if (state_ == State::kPending) {
      // The saver's thread has not started the copy: do it here rather than
      // wait for that thread to be scheduled.
      state_ = State::kCopying;
      steal = pending_;
    } else {
      auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return state_ == State::kIdle; };
      mu_.Await(absl::Condition(&idle));
      waited_ += absl::Now() - start;
      return;
    }
  }
  steal->Copy();
  absl::MutexLock lock(&mu_);
  state_ = State::kIdle;
  pending_ = nullptr;
  waited_ += absl::Now() - start;
}

void SnapshotBuffers::Release(Job* job, CheckpointSnapshot used) {
  absl::MutexLock lock(&mu_);
  if (pending_ == job && state_ == State::kCopying) {
    // The strategy's thread is copying into this job: let it finish.
    auto done = [this, job]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ != job; };
    mu_.Await(absl::Condition(&done));
  }
  if (pending_ == job) {
    // Destroyed uncopied (a save abandoned): nothing to wait for any more.
    state_ = State::kIdle;
    pending_ = nullptr;
  }
  if (!used.entries.empty()) spare_ = std::move(used);
}

absl::Duration SnapshotBuffers::total_wait() const {
  absl::MutexLock lock(&mu_);
  return waited_;
}

absl::Status WriteSnapshotToStore(const CheckpointSnapshot& snapshot, VariableStore& store) {
  if (static_cast<int>(snapshot.entries.size()) != store.size()) {
    return absl::InvalidArgumentError(absl::StrCat("state of ", snapshot.entries.size(),
                                                   " variables for a store of ", store.size()));
  }
  for (int i = 0; i < store.size(); ++i) {
    VariableStore::Entry& e = store.entry(i);
    const SnapshotEntry& s = snapshot.entries[i];
    if (s.name != e.spec.name || s.value.shape() != e.value.shape() ||
        s.slots.size() != e.slots.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("state entry ", i, " is ", s.name, ", the store's ", e.spec.name));
    }
    CopyFromHost(store.kernels(), s.value, e.value);
    for (size_t k = 0; k < e.slots.size(); ++k)
      CopyFromHost(store.kernels(), s.slots[k], e.slots[k]);
    e.updates = s.updates;
  }
  return store.kernels().Synchronize();
}

absl::Status RestoreStore(const CheckpointReader& checkpoint, VariableStore& store) {
  const std::vector<std::string>& slots = store.optimizer().slot_names();
  for (int i = 0; i < store.size(); ++i) {
    VariableStore::Entry& e = store.entry(i);
    const VariableRecord* record = checkpoint.Find(e.spec.name);
    if (record == nullptr) {
      return absl::NotFoundError(absl::StrCat(
          "restore from ", checkpoint.path(), ": the checkpoint has no variable ", e.spec.name,
          " (it was written for another model; use another --model-dir)"));
    }
    MESHTRAIN_RETURN_IF_ERROR(
        ReadInto(checkpoint, store.kernels(), e.spec.name, "", e.row_begin, e.value));
    for (size_t s = 0; s < slots.size(); ++s) {
      MESHTRAIN_RETURN_IF_ERROR(
          ReadInto(checkpoint, store.kernels(), e.spec.name, slots[s], e.row_begin, e.slots[s]));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(e.updates, checkpoint.Updates(e.spec.name, e.row_begin));
  }
  return store.kernels().Synchronize();
}

}  // namespace meshtrain
