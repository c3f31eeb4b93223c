#include "runtime/ps/parameter_shards.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/check.h"
#include "runtime/base/crc32c.h"
#include "runtime/base/status_macros.h"
#include "runtime/optim/variable_store.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {

struct ParameterShards::Slot {
  Partition partition;
  VariableSpec spec;
  Shape shape;
  std::string name;  // "dense_0/kernel partition 1 (rows [392, 784)) on ps:0"

  absl::Mutex mu;
  std::unique_ptr<Kernels> kernels;
  std::unique_ptr<VariableStore> store ABSL_GUARDED_BY(mu);  // one entry: this partition
  int64_t version ABSL_GUARDED_BY(mu) = 0;                   // == store->entry(0).updates
  // Synchronous mode: the gradients of the current version so far.
  Tensor accumulator ABSL_GUARDED_BY(mu);                                    // dense
  std::vector<std::pair<Tensor, Tensor>> sparse_pushes ABSL_GUARDED_BY(mu);  // (ids, rows)
  std::vector<bool> contributed ABSL_GUARDED_BY(mu);  // per worker, this version
  int count ABSL_GUARDED_BY(mu) = 0;
};

absl::string_view PushReasonName(PushOutcome::Reason reason) {
  switch (reason) {
    case PushOutcome::Reason::kApplied:
      return "applied";
    case PushOutcome::Reason::kPending:
      return "pending";
    case PushOutcome::Reason::kStale:
      return "stale";
    case PushOutcome::Reason::kWarmup:
      return "warmup";
  }
  return "?";
}

PushOutcome::Reason PushReasonFromName(absl::string_view name) {
  for (PushOutcome::Reason r : {PushOutcome::Reason::kApplied, PushOutcome::Reason::kPending,
                                PushOutcome::Reason::kWarmup}) {
    if (name == PushReasonName(r)) return r;
  }
  return PushOutcome::Reason::kStale;
}

ParameterShards::ParameterShards(const PsPlan& plan, int ps_index, AbortSignal* abort)
    : plan_(plan),
      ps_index_(ps_index),
      task_name_(absl::StrCat("ps:", plan.TaskOf(ps_index))),
      abort_(abort),
      active_workers_(plan.rules.num_workers),
      left_(plan.rules.num_workers) {
  for (auto& l : left_) l.store(false);
}

absl::StatusOr<std::unique_ptr<ParameterShards>> ParameterShards::Create(const PsPlan& plan,
                                                                         int ps_index,
                                                                         AbortSignal* abort) {
  if (ps_index < 0 || ps_index >= plan.placement.num_ps()) {
    return absl::InvalidArgumentError(absl::StrCat("ps:", ps_index, " is not in a plan for ",
                                                   plan.placement.num_ps(), " ps tasks"));
  }
  MESHTRAIN_RETURN_IF_ERROR(ValidateUpdateRules(plan.rules));
  auto shards = std::unique_ptr<ParameterShards>(new ParameterShards(plan, ps_index, abort));
  MESHTRAIN_ASSIGN_OR_RETURN(shards->optimizer_, Optimizer::Create(plan.optimizer));
  for (const Partition& p : plan.placement.partitions()) {
    if (p.ps != ps_index) continue;
    auto slot = std::make_unique<Slot>();
    slot->partition = p;
    slot->spec = plan.specs[p.variable];
    slot->name = absl::StrCat(slot->spec.name, " partition ", p.index, " (rows [", p.row_begin,
                              ", ", p.row_end(), ")) on ", shards->task_name());
    MESHTRAIN_ASSIGN_OR_RETURN(slot->kernels, CreateKernels(Device::Cpu(0)));
    absl::MutexLock lock(&slot->mu);
    slot->store = std::make_unique<VariableStore>(*slot->kernels, *shards->optimizer_);
    MESHTRAIN_RETURN_IF_ERROR(slot->store->Add(slot->spec, p.row_begin, p.rows).status());
    MESHTRAIN_RETURN_IF_ERROR(slot->store->Initialize(plan.seed));
    slot->shape = slot->store->entry(0).value.shape();
    slot->contributed.assign(plan.rules.num_workers, false);
    if (plan.rules.synchronous() && !slot->spec.sparse) {
      MESHTRAIN_ASSIGN_OR_RETURN(slot->accumulator,
                                 slot->kernels->Allocate(DType::kFloat32, slot->shape));
    }
    if (!slot->spec.sparse) shards->dense_slots_.push_back(static_cast<int>(shards->slots_.size()));
    shards->slots_.push_back(std::move(slot));
  }
  if (abort != nullptr) {
    shards->abort_callback_ = abort->AddCallback([s = shards.get()] { s->WakeAll(); });
  }
  return shards;
}

ParameterShards::~ParameterShards() {
  if (abort_ != nullptr && abort_callback_ >= 0) abort_->RemoveCallback(abort_callback_);
}

const Partition& ParameterShards::partition(int slot) const { return slots_[slot]->partition; }
const VariableSpec& ParameterShards::spec(int slot) const { return slots_[slot]->spec; }
const Shape& ParameterShards::shape(int slot) const { return slots_[slot]->shape; }

absl::StatusOr<int> ParameterShards::Find(absl::string_view variable, int partition) const {
  for (int i = 0; i < num_slots(); ++i) {
    if (slots_[i]->spec.name == variable && slots_[i]->partition.index == partition) return i;
  }
  std::string held;
  for (const auto& s : slots_) {
    absl::StrAppend(&held, held.empty() ? "" : ", ", s->spec.name, "/", s->partition.index);
  }
  return absl::NotFoundError(absl::StrCat(task_name_, " holds no partition ", partition,
                                          " of variable '", variable,
                                          "' (it holds: ", held.empty() ? "nothing" : held, ")"));
}

int64_t ParameterShards::version(int slot) const {
  absl::MutexLock lock(&slots_[slot]->mu);
  return slots_[slot]->version;
}

void ParameterShards::WakeAll() {
  for (auto& slot : slots_) absl::MutexLock lock(&slot->mu);
}

void ParameterShards::Stop() {
  stopped_.store(true);
  WakeAll();
}

absl::Status ParameterShards::CheckWorker(int worker, const Slot& slot,
                                          absl::string_view op) const {
  if (worker < 0 || worker >= plan_.rules.num_workers) {
    return absl::InvalidArgumentError(absl::StrCat(op, " ", slot.name, ": worker rank ", worker,
                                                   " is not one of the ", plan_.rules.num_workers,
                                                   " training workers"));
  }
  return absl::OkStatus();
}

absl::Status ParameterShards::AwaitVersion(Slot& slot, int64_t min_version, absl::Time deadline,
                                           absl::string_view op) {
  if (slot.version >= min_version) return absl::OkStatus();
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(slot.mu) {
    return slot.version >= min_version || stopped_.load() ||
           (abort_ != nullptr && abort_->aborted());
  };
  if (!slot.mu.AwaitWithDeadline(absl::Condition(&ready), deadline)) {
    return absl::DeadlineExceededError(absl::StrCat(
        op, " ", slot.name, ": version ", slot.version, " did not reach ", min_version,
        " before the deadline (the chief's warm-up, or a synchronous step, is not done)"));
  }
  if (slot.version < min_version) {
    if (abort_ != nullptr && abort_->aborted()) return abort_->status();
    return absl::UnavailableError(absl::StrCat(op, " ", slot.name, ": the ps is stopping"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ParameterShards::Read(int slot_index, absl::Span<float> out,
                                              int64_t min_version, absl::Time deadline) {
  Slot& slot = *slots_[slot_index];
  if (static_cast<int64_t>(out.size()) != slot.shape.num_elements()) {
    return absl::InvalidArgumentError(absl::StrCat("pull ", slot.name, ": ", out.size(),
                                                   " elements asked, the partition has ",
                                                   slot.shape.num_elements()));
  }
  absl::MutexLock lock(&slot.mu);
  MESHTRAIN_RETURN_IF_ERROR(AwaitVersion(slot, min_version, deadline, "pull"));
  const Tensor& value = slot.store->entry(0).value;
  std::memcpy(out.data(), value.raw_data(), value.bytes());
  return slot.version;
}

PushOutcome ParameterShards::Judge(Slot& slot, int worker, int64_t read_version) {
  PushOutcome outcome;
  outcome.staleness = slot.version - read_version;
  const UpdateRules& rules = plan_.rules;
  if (rules.synchronous()) {
    if (read_version != slot.version || slot.contributed[worker]) {
      outcome.reason = PushOutcome::Reason::kStale;
    } else {
      outcome.reason = PushOutcome::Reason::kPending;
    }
    return outcome;
  }
  if (rules.warmup_steps > 0 && worker != 0 && slot.version < rules.warmup_steps) {
    outcome.reason = PushOutcome::Reason::kWarmup;
  } else if (rules.max_staleness >= 0 && outcome.staleness > rules.max_staleness) {
    outcome.reason = PushOutcome::Reason::kStale;
  } else {
    outcome.reason = PushOutcome::Reason::kApplied;
    if (rules.staleness_scaling) {
      outcome.lr_scale = 1.0f / (1.0f + static_cast<float>(outcome.staleness));
    }
  }
  return outcome;
}

int ParameterShards::SyncThreshold() const {
  return std::max(1, std::min(plan_.rules.sync_replicas, active_workers_.load()));
}

void PushCounts::Add(const PushOutcome& outcome) {
  ++pushes;
  staleness_sum += outcome.staleness;
  switch (outcome.reason) {
    case PushOutcome::Reason::kApplied:
    case PushOutcome::Reason::kPending:
      ++applied;
      if (outcome.lr_scale < 1.0f) ++scaled;
      break;
    case PushOutcome::Reason::kStale:
      ++dropped_stale;
      break;
    case PushOutcome::Reason::kWarmup:
      ++dropped_warmup;
      break;
  }
}

void PushCounts::Merge(const PushCounts& o) {
  pushes += o.pushes;
  applied += o.applied;
  dropped_stale += o.dropped_stale;
  dropped_warmup += o.dropped_warmup;
  scaled += o.scaled;
  staleness_sum += o.staleness_sum;
}

void ParameterShards::MaybeApplyAccumulated(Slot& slot) {
  if (slot.count == 0 || slot.count < SyncThreshold()) return;
  const float scale = static_cast<float>(plan_.rules.num_workers) / static_cast<float>(slot.count);
  if (!slot.spec.sparse) {
    if (scale != 1.0f) slot.kernels->Scale(scale, slot.accumulator);
    slot.store->Apply(0, slot.accumulator);
  } else {
    // Sum the pushes row by row (workers touch overlapping rows), then one update.
    std::unordered_map<int64_t, int64_t> index;
    std::vector<int64_t> ids;
    for (const auto& [push_ids, push_rows] : slot.sparse_pushes) {
      for (int64_t id : push_ids.flat<int64_t>()) {
        if (index.emplace(id, static_cast<int64_t>(ids.size())).second) ids.push_back(id);
      }
    }
    const int64_t cols = slot.shape.row_elements();
    Tensor merged_ids(DType::kInt64, Shape{static_cast<int64_t>(ids.size())});
    std::copy(ids.begin(), ids.end(), merged_ids.data<int64_t>());
    Tensor merged =
        Tensor::Zeros(DType::kFloat32, slot.shape.WithRows(static_cast<int64_t>(ids.size())));
    float* out = merged.data<float>();
    for (const auto& [push_ids, push_rows] : slot.sparse_pushes) {
      absl::Span<const int64_t> pids = push_ids.flat<int64_t>();
      const float* in = push_rows.data<float>();
      for (size_t i = 0; i < pids.size(); ++i) {
        float* row = out + index[pids[i]] * cols;
        for (int64_t c = 0; c < cols; ++c) row[c] += scale * in[i * cols + c];
      }
    }
    if (!ids.empty()) {
      // The ids were checked when pushed; an error here would be a bug.
      absl::Status applied = slot.store->ApplySparse(0, merged_ids, merged);
      MESHTRAIN_CHECK(applied.ok()) << slot.name << ": " << applied;
    } else {
      ++slot.store->entry(0).updates;  // a step that touched no row is still a version
    }
    slot.sparse_pushes.clear();
  }
  ++slot.version;
  slot.count = 0;
  std::fill(slot.contributed.begin(), slot.contributed.end(), false);
}

absl::StatusOr<PushOutcome> ParameterShards::Admit(Slot& slot, int worker, int64_t read_version,
                                                   absl::string_view kind,
                                                   const std::function<absl::Status(float)>& apply,
                                                   const std::function<void()>& accumulate) {
  if (read_version < 0 || read_version > slot.version) {
    return absl::InvalidArgumentError(
        absl::StrCat(kind, " ", slot.name, " from worker ", worker, ": read version ", read_version,
                     " but the partition is at version ", slot.version));
  }
  PushOutcome outcome = Judge(slot, worker, read_version);
  if (outcome.reason == PushOutcome::Reason::kApplied) {
    MESHTRAIN_RETURN_IF_ERROR(apply(outcome.lr_scale));
    ++slot.version;
  } else if (outcome.reason == PushOutcome::Reason::kPending) {
    accumulate();
    ++slot.count;
    slot.contributed[worker] = true;
    MaybeApplyAccumulated(slot);
    if (slot.version > read_version) outcome.reason = PushOutcome::Reason::kApplied;
  }
  absl::MutexLock counts_lock(&counts_mu_);
  counts_.Add(outcome);
  return outcome;
}

absl::StatusOr<PushOutcome> ParameterShards::Push(int worker, int slot_index,
                                                  const Tensor& gradient, int64_t read_version) {
  Slot& slot = *slots_[slot_index];
  MESHTRAIN_RETURN_IF_ERROR(CheckWorker(worker, slot, "push"));
  if (slot.spec.sparse) {
    return absl::InvalidArgumentError(
        absl::StrCat("push ", slot.name,
                     ": the variable is sparse; push its rows (PushRows), not the whole table"));
  }
  if (gradient.dtype() != DType::kFloat32 || gradient.shape() != slot.shape) {
    return absl::InvalidArgumentError(absl::StrCat("push ", slot.name, " from worker ", worker,
                                                   ": gradient ", gradient.DebugString(),
                                                   ", expected float32", slot.shape.ToString()));
  }
  absl::MutexLock lock(&slot.mu);
  return Admit(
      slot, worker, read_version, "push",
      [&](float lr_scale) {
        slot.store->Apply(0, gradient, lr_scale);
        return absl::OkStatus();
      },
      [&] {
        if (slot.count == 0) {
          slot.kernels->Copy(gradient, slot.accumulator);
        } else {
          slot.kernels->Axpy(1.0f, gradient, slot.accumulator);
        }
      });
}

absl::StatusOr<int64_t> ParameterShards::ReadRows(int slot_index, absl::Span<const int64_t> ids,
                                                  absl::Span<float> out, int64_t min_version,
                                                  absl::Time deadline) {
  Slot& slot = *slots_[slot_index];
  const int64_t cols = slot.shape.row_elements();
  if (static_cast<int64_t>(out.size()) != static_cast<int64_t>(ids.size()) * cols) {
    return absl::InvalidArgumentError(absl::StrCat("pull rows of ", slot.name, ": room for ",
                                                   out.size(), " elements, ", ids.size(),
                                                   " rows need ", ids.size() * cols));
  }
  const Partition& p = slot.partition;
  for (int64_t id : ids) {
    if (id < p.row_begin || id >= p.row_end()) {
      return absl::InvalidArgumentError(absl::StrCat("pull rows of ", slot.name, ": row ", id,
                                                     " is outside the partition's rows [",
                                                     p.row_begin, ", ", p.row_end(), ")"));
    }
  }
  absl::MutexLock lock(&slot.mu);
  MESHTRAIN_RETURN_IF_ERROR(AwaitVersion(slot, min_version, deadline, "pull rows of"));
  const float* value = slot.store->entry(0).value.data<float>();
  for (size_t i = 0; i < ids.size(); ++i) {
    std::memcpy(out.data() + i * cols, value + (ids[i] - p.row_begin) * cols, cols * sizeof(float));
  }
  return slot.version;
}

absl::StatusOr<PushOutcome> ParameterShards::PushRows(int worker, int slot_index,
                                                      absl::Span<const int64_t> ids,
                                                      absl::Span<const float> rows,
                                                      int64_t read_version) {
  Slot& slot = *slots_[slot_index];
  MESHTRAIN_RETURN_IF_ERROR(CheckWorker(worker, slot, "push rows of"));
  // Messages are built only for errors.
  auto op = [&] { return absl::StrCat("push rows of ", slot.name, " from worker ", worker); };
  if (!slot.spec.sparse) {
    return absl::InvalidArgumentError(absl::StrCat(op(), ": the variable is dense; push it whole"));
  }
  const int64_t cols = slot.shape.row_elements();
  if (static_cast<int64_t>(rows.size()) != static_cast<int64_t>(ids.size()) * cols) {
    return absl::InvalidArgumentError(
        absl::StrCat(op(), ": ", rows.size(), " elements for ", ids.size(), " rows of ", cols));
  }
  const Partition& p = slot.partition;
  std::unordered_set<int64_t> seen;
  seen.reserve(ids.size());
  for (int64_t id : ids) {
    if (id < p.row_begin || id >= p.row_end()) {
      return absl::InvalidArgumentError(absl::StrCat(op(), ": row ", id,
                                                     " is outside the partition's rows [",
                                                     p.row_begin, ", ", p.row_end(), ")"));
    }
    if (!seen.insert(id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(op(), ": row ", id, " appears twice; sum its gradients first"));
    }
  }
  Tensor id_tensor(DType::kInt64, Shape{static_cast<int64_t>(ids.size())});
  std::copy(ids.begin(), ids.end(), id_tensor.data<int64_t>());
  Tensor row_tensor(DType::kFloat32, slot.shape.WithRows(static_cast<int64_t>(ids.size())));
  std::copy(rows.begin(), rows.end(), row_tensor.data<float>());

  absl::MutexLock lock(&slot.mu);
  return Admit(
      slot, worker, read_version, "push rows of",
      [&](float lr_scale) {
        if (!ids.empty()) return slot.store->ApplySparse(0, id_tensor, row_tensor, lr_scale);
        ++slot.store->entry(0).updates;  // no row changes, but it is a version
        return absl::OkStatus();
      },
      [&] { slot.sparse_pushes.emplace_back(std::move(id_tensor), std::move(row_tensor)); });
}

void ParameterShards::WorkerLeft(int worker) {
  if (worker < 0 || worker >= plan_.rules.num_workers || left_[worker].exchange(true)) return;
  active_workers_.fetch_sub(1);
  for (auto& slot : slots_) {
    absl::MutexLock lock(&slot->mu);
    MaybeApplyAccumulated(*slot);
  }
}

CheckpointSnapshot ParameterShards::Snapshot() const {
  CheckpointSnapshot snapshot;
  snapshot.slot_names = optimizer_->slot_names();
  snapshot.entries.reserve(slots_.size());
  for (const auto& slot : slots_) {
    SnapshotEntry e;
    e.name = slot->spec.name;
    e.shape = slot->spec.shape;
    e.row_begin = slot->partition.row_begin;
    // Allocated before the lock: a push waits for a memcpy, not a page fault.
    e.value = Tensor(DType::kFloat32, slot->shape);
    e.slots.reserve(snapshot.slot_names.size());
    for (size_t k = 0; k < snapshot.slot_names.size(); ++k) {
      e.slots.emplace_back(DType::kFloat32, slot->shape);
    }
    absl::MutexLock lock(&slot->mu);
    const VariableStore::Entry& entry = slot->store->entry(0);
    std::memcpy(e.value.raw_data(), entry.value.raw_data(), entry.value.bytes());
    for (size_t k = 0; k < e.slots.size(); ++k) {
      std::memcpy(e.slots[k].raw_data(), entry.slots[k].raw_data(), entry.slots[k].bytes());
    }
    e.updates = slot->version;
    snapshot.entries.push_back(std::move(e));
  }
  return snapshot;
}

absl::Status ParameterShards::Restore(const CheckpointReader& checkpoint) {
  const std::vector<std::string>& slot_names = optimizer_->slot_names();
  // 1. Read and check every partition's rows into host tensors, no lock held.
  struct Loaded {
    Tensor value;
    std::vector<Tensor> slots;
    int64_t updates = 0;
  };
  std::vector<Loaded> loaded(slots_.size());
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = *slots_[i];
    const std::string& name = slot.spec.name;
    const int64_t row_begin = slot.partition.row_begin;
    const std::string what = absl::StrCat("restore ", slot.name, " from ", checkpoint.path());
    if (checkpoint.Find(name) == nullptr) {
      return absl::NotFoundError(
          absl::StrCat(what, ": the checkpoint has no variable ", name,
                       " (it was written for another model; use another --model-dir)"));
    }
    Loaded& l = loaded[i];
    l.value = Tensor(DType::kFloat32, slot.shape);
    MESHTRAIN_RETURN_IF_ERROR(Annotate(checkpoint.ReadRows(name, "", row_begin, l.value), what));
    for (const std::string& slot_name : slot_names) {
      l.slots.emplace_back(DType::kFloat32, slot.shape);
      MESHTRAIN_RETURN_IF_ERROR(
          Annotate(checkpoint.ReadRows(name, slot_name, row_begin, l.slots.back()), what));
    }
    absl::StatusOr<int64_t> updates = checkpoint.Updates(name, row_begin);
    if (!updates.ok()) return Annotate(updates.status(), what);
    l.updates = *updates;
  }
  // 2. Replace each partition under its lock. Its version (the optimizer's
  //    update count) becomes the checkpoint's; a synchronous step in progress
  //    is forgotten (its gradients were computed from values that are gone).
  //    Unlocking re-evaluates the waits of readers (Read, ReadRows).
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& slot = *slots_[i];
    Loaded& l = loaded[i];
    absl::MutexLock lock(&slot.mu);
    VariableStore::Entry& entry = slot.store->entry(0);
    std::memcpy(entry.value.raw_data(), l.value.raw_data(), l.value.bytes());
    for (size_t k = 0; k < l.slots.size(); ++k) {
      std::memcpy(entry.slots[k].raw_data(), l.slots[k].raw_data(), l.slots[k].bytes());
    }
    entry.updates = l.updates;
    slot.version = l.updates;
    slot.count = 0;
    slot.sparse_pushes.clear();
    std::fill(slot.contributed.begin(), slot.contributed.end(), false);
  }
  return absl::OkStatus();
}

PsStats ParameterShards::stats() const {
  PsStats s;
  {
    absl::MutexLock lock(&counts_mu_);
    s.counts = counts_;
  }
  s.partitions = num_slots();
  s.active_workers = active_workers_.load();
  for (const auto& slot : slots_) s.value_bytes += slot->partition.bytes;
  s.slot_bytes = s.value_bytes * static_cast<int64_t>(optimizer_->slot_names().size());
  return s;
}

std::string ParameterShards::Checksum() const {
  uint32_t crc = 0;
  for (const auto& slot : slots_) {
    absl::MutexLock lock(&slot->mu);
    const Tensor& value = slot->store->entry(0).value;
    crc = crc32c::Extend(crc, value.raw_data(), value.bytes());
  }
  return absl::StrFormat("%08x", crc);
}

}  // namespace meshtrain
