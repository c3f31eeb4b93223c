#include "strategies/store_checkpoint.h"

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

Tensor HostCopy(Kernels& kernels, const Tensor& t) {
  if (t.device().is_cpu()) return t.Clone();
  Tensor host(t.dtype(), t.shape());
  kernels.Copy(t, host);
  return host;
}

// Reads rows into `target` directly on the host, or through a host tensor.
absl::Status ReadInto(const CheckpointReader& checkpoint, Kernels& kernels, const std::string& name,
                      absl::string_view slot, int64_t row_begin, Tensor& target) {
  if (target.device().is_cpu()) return checkpoint.ReadRows(name, slot, row_begin, target);
  Tensor host(target.dtype(), target.shape());
  MESHTRAIN_RETURN_IF_ERROR(checkpoint.ReadRows(name, slot, row_begin, host));
  kernels.Copy(host, target);
  return kernels.Synchronize();
}

}  // namespace

absl::StatusOr<CheckpointSnapshot> SnapshotStore(VariableStore& store) {
  CheckpointSnapshot snapshot;
  snapshot.slot_names = store.optimizer().slot_names();
  snapshot.entries.reserve(store.size());
  for (int i = 0; i < store.size(); ++i) {
    const VariableStore::Entry& e = store.entry(i);
    SnapshotEntry s;
    s.name = e.spec.name;
    s.shape = e.spec.shape;
    s.row_begin = e.row_begin;
    s.value = HostCopy(store.kernels(), e.value);
    for (const Tensor& slot : e.slots) s.slots.push_back(HostCopy(store.kernels(), slot));
    s.updates = e.updates;
    snapshot.entries.push_back(std::move(s));
  }
  MESHTRAIN_RETURN_IF_ERROR(store.kernels().Synchronize());
  return snapshot;
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
    MESHTRAIN_RETURN_IF_ERROR(ReadInto(checkpoint, store.kernels(), e.spec.name, "", e.row_begin, e.value));
    for (size_t s = 0; s < slots.size(); ++s) {
      MESHTRAIN_RETURN_IF_ERROR(
          ReadInto(checkpoint, store.kernels(), e.spec.name, slots[s], e.row_begin, e.slots[s]));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(e.updates, checkpoint.Updates(e.spec.name, e.row_begin));
  }
  return store.kernels().Synchronize();
}

}  // namespace meshtrain
