// ParameterShards: what one ps task holds — the partitions the plan places on
// it, each with its value, its optimizer slots and its version (the number of
// updates applied) — and the rules that turn pushed gradients into updates.
// The gRPC service (ps_service.h) and the dense data path (dense_link.h) are
// thin front ends over it; everything a request can get wrong is checked here
// and answered with a status, never a crash.
//
// Asynchronous mode (rules.sync_replicas == 0), a push of a gradient computed
// from version r of a partition now at version v:
//   1. staleness s = v - r (r > v, or r < 0, is a malformed request);
//   2. before the partition has warmup_steps updates, only the chief's (worker
//      0) gradients count: others are dropped ("warmup");
//   3. max_staleness >= 0 and s > max_staleness: dropped ("stale");
//   4. otherwise applied with learning rate x 1/(1+s) under staleness_scaling
//      (else x 1), and v becomes v + 1.
// Synchronous mode (sync_replicas = N - k of N workers), per partition:
//   1. a gradient computed from version r != v is late: dropped ("stale"), as
//      is a second one from the same worker for the same version;
//   2. otherwise it is added to the partition's accumulator ("pending");
//   3. once min(N - k, workers still training) gradients are in, their sum
//      scaled by N / count (each worker's gradient covers 1/N of the global
//      batch) is applied once and v becomes v + 1; waiting readers wake.
//   A worker that finished (WorkerLeft) no longer counts, so the last steps of
//   the others still complete.
// Every partition has its own lock; two workers update different partitions
// at once. Read() may wait for a version (warm-up, synchronous steps) up to a
// deadline; Stop() and the AbortSignal end such waits.
// Checkpoints: under each partition's lock, its value, slots and version are
// all there is, so Snapshot() copies them partition by partition (the ps's
// SaveShards request) and Restore() replaces them (RestoreShards). A
// partition's version always equals its optimizer update count (Adam's step):
// every version is one optimizer update, an empty sparse one included, so a
// checkpoint's `updates` restores both. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_PS_PARAMETER_SHARDS_H_
#define MESHTRAIN_RUNTIME_PS_PARAMETER_SHARDS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/base/abort_signal.h"
#include "runtime/checkpoint/checkpoint_reader.h"
#include "runtime/checkpoint/checkpoint_snapshot.h"
#include "runtime/optim/optimizer.h"
#include "runtime/ps/ps_plan.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain {

struct PushOutcome {
  enum class Reason { kApplied, kPending, kStale, kWarmup };
  Reason reason = Reason::kApplied;
  int64_t staleness = 0;
  float lr_scale = 1.0f;

  bool dropped() const { return reason == Reason::kStale || reason == Reason::kWarmup; }
};

// "applied", "pending", "stale", "warmup".
absl::string_view PushReasonName(PushOutcome::Reason reason);
// The reverse; an unknown name is kStale (a gradient that did not count).
PushOutcome::Reason PushReasonFromName(absl::string_view name);

// What became of a number of pushes (one per partition and step).
struct PushCounts {
  int64_t pushes = 0;
  int64_t applied = 0;        // gradients that went into an update
  int64_t dropped_stale = 0;  // max_staleness, or late in synchronous mode
  int64_t dropped_warmup = 0;
  int64_t scaled = 0;         // applied with a learning-rate scale below 1
  int64_t staleness_sum = 0;  // over all pushes

  void Add(const PushOutcome& outcome);
  void Merge(const PushCounts& other);
  int64_t dropped() const { return dropped_stale + dropped_warmup; }
  double mean_staleness() const {
    return pushes == 0 ? 0.0 : static_cast<double>(staleness_sum) / static_cast<double>(pushes);
  }
};

struct PsStats {
  PushCounts counts;
  int64_t value_bytes = 0;
  int64_t slot_bytes = 0;
  int partitions = 0;
  int active_workers = 0;  // training workers that have not left
};

class ParameterShards {
 public:
  // Creates and initialises (from plan.seed) the partitions `plan` places on
  // its ps slot `ps_index` (the ps task of that index unless an elastic
  // cluster went on without some: PsPlan::ps_tasks). `abort` (may be null)
  // must outlive this object.
  static absl::StatusOr<std::unique_ptr<ParameterShards>> Create(const PsPlan& plan, int ps_index,
                                                                 AbortSignal* abort);
  ~ParameterShards();
  ParameterShards(const ParameterShards&) = delete;
  ParameterShards& operator=(const ParameterShards&) = delete;

  int ps_index() const { return ps_index_; }
  // The ps task holding them, for messages ("ps:1").
  const std::string& task_name() const { return task_name_; }
  const PsPlan& plan() const { return plan_; }
  // Partitions held here ("slots"), in the plan's order.
  int num_slots() const { return static_cast<int>(slots_.size()); }
  const Partition& partition(int slot) const;
  const VariableSpec& spec(int slot) const;
  // The slot's value shape (the partition's rows of the variable).
  const Shape& shape(int slot) const;
  // The slots of dense variables, in plan order.
  const std::vector<int>& dense_slots() const { return dense_slots_; }
  // The slot holding partition `partition` of `variable`; NotFound naming what
  // this ps holds otherwise.
  absl::StatusOr<int> Find(absl::string_view variable, int partition) const;

  // Copies the slot's value into `out` (exactly its elements) once its version
  // is at least `min_version`; returns the version copied. DeadlineExceeded at
  // `deadline`; Unavailable after Stop(); the abort status after an abort.
  absl::StatusOr<int64_t> Read(int slot, absl::Span<float> out, int64_t min_version,
                               absl::Time deadline);
  // A dense gradient (shaped like the slot) from training rank `worker`,
  // computed from version `read_version`.
  absl::StatusOr<PushOutcome> Push(int worker, int slot, const Tensor& gradient,
                                   int64_t read_version);
  // Rows `ids` (the whole variable's numbering, inside this partition) into
  // `out` ([ids, row elements]) once the version is at least `min_version`;
  // returns the version read. Waits as Read() does.
  absl::StatusOr<int64_t> ReadRows(int slot, absl::Span<const int64_t> ids, absl::Span<float> out,
                                   int64_t min_version, absl::Time deadline);
  // The gradient of rows `ids` (distinct; `rows` is [ids, row elements]).
  absl::StatusOr<PushOutcome> PushRows(int worker, int slot, absl::Span<const int64_t> ids,
                                       absl::Span<const float> rows, int64_t read_version);

  // Training rank `worker` finished: synchronous steps stop waiting for it.
  void WorkerLeft(int worker);
  // Ends every wait with Unavailable; later waits fail at once.
  void Stop();

  // Host copies of every partition held here (value, each optimizer slot in the
  // optimizer's slot_names order, `updates` = the partition's version), each copied
  // under its partition's lock, so a concurrent push lands wholly before or after.
  CheckpointSnapshot Snapshot() const;
  // Replaces every partition's value, slots and version with `checkpoint`'s rows
  // (any partitioning wrote it); wakes readers waiting for a version; resets any
  // pending synchronous accumulation. NotFound naming a variable the checkpoint lacks.
  // Everything is read and checked before the first partition changes, so a
  // failed restore leaves the shards as they were.
  absl::Status Restore(const CheckpointReader& checkpoint);

  PsStats stats() const;
  // CRC32C over every slot's value bytes, slot order, as 8 hex digits.
  std::string Checksum() const;
  int64_t version(int slot) const;

 private:
  // Defined in the .cc, so the methods below cannot name slot.mu in lock
  // annotations (clang refuses a member of an incomplete type there).
  struct Slot;
  ParameterShards(const PsPlan& plan, int ps_index, AbortSignal* abort);

  // Waits until the slot's version reaches `min_version`; the caller holds slot.mu.
  absl::Status AwaitVersion(Slot& slot, int64_t min_version, absl::Time deadline,
                            absl::string_view op);
  absl::Status CheckWorker(int worker, const Slot& slot, absl::string_view op) const;
  // Async rules 2-4, or sync rules 1-2; the caller holds slot.mu.
  PushOutcome Judge(Slot& slot, int worker, int64_t read_version);
  // The rules and the bookkeeping of every push: `apply` updates the value
  // now (with a learning-rate scale), `accumulate` adds the gradient to the
  // synchronous step. The caller holds slot.mu.
  absl::StatusOr<PushOutcome> Admit(Slot& slot, int worker, int64_t read_version,
                                    absl::string_view kind,
                                    const std::function<absl::Status(float)>& apply,
                                    const std::function<void()>& accumulate);
  // Sync rule 3 if enough gradients are in; the caller holds slot.mu.
  void MaybeApplyAccumulated(Slot& slot);
  int SyncThreshold() const;
  void WakeAll();

  const PsPlan plan_;
  const int ps_index_;
  const std::string task_name_;
  AbortSignal* const abort_;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<int> dense_slots_;
  int abort_callback_ = -1;
  std::atomic<bool> stopped_{false};
  std::atomic<int> active_workers_;
  std::vector<std::atomic<bool>> left_;

  mutable absl::Mutex counts_mu_;
  PushCounts counts_ ABSL_GUARDED_BY(counts_mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_PS_PARAMETER_SHARDS_H_
