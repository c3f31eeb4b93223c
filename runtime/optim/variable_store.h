// VariableStore: the values and optimizer slots of a set of variables on one
// device, and the one place an update is applied. A strategy keeps one per
// replica (Mirrored), one in all (one_device, CentralStorage), or one per ps
// shard. An entry may hold a whole variable or a partition of its rows.
// Not thread-safe: one owner applies updates.
#ifndef MESHTRAIN_RUNTIME_OPTIM_VARIABLE_STORE_H_
#define MESHTRAIN_RUNTIME_OPTIM_VARIABLE_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/model/variable.h"
#include "runtime/optim/optimizer.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {

class VariableStore {
 public:
  struct Entry {
    VariableSpec spec;          // the whole variable's spec
    int64_t row_begin = 0;      // first row held here (partitions)
    Tensor value;               // rows [row_begin, row_begin + value.rows())
    std::vector<Tensor> slots;  // optimizer.slot_names() order, shaped like value
    int64_t updates = 0;        // updates applied (Adam's step counter)
  };

  // `kernels` and `optimizer` must outlive the store.
  VariableStore(Kernels& kernels, const Optimizer& optimizer)
      : kernels_(kernels), optimizer_(optimizer) {}

  // Allocates rows [row_begin, row_begin + rows) of `spec` (rows < 0: all the
  // rest) and zeroed slots; returns the entry's index.
  absl::StatusOr<int> Add(const VariableSpec& spec, int64_t row_begin = 0, int64_t rows = -1);
  // Writes every entry's initial value (deterministic in seed; see
  // InitializeVariable) and zeroes slots and counters.
  absl::Status Initialize(uint64_t seed);

  int size() const { return static_cast<int>(entries_.size()); }
  Entry& entry(int i) { return entries_[i]; }
  const Entry& entry(int i) const { return entries_[i]; }
  Kernels& kernels() { return kernels_; }
  const Optimizer& optimizer() const { return optimizer_; }

  // One optimizer update of entry `i`; of a moving average (!spec.trainable),
  // its update (variable.h), lr_scale ignored.
  void Apply(int i, const Tensor& grad, float lr_scale = 1.0f);
  // An update of rows `ids` (int64, distinct, in the whole variable's numbering).
  absl::Status ApplySparse(int i, const Tensor& ids, const Tensor& grad_rows,
                           float lr_scale = 1.0f);

  // CRC32C over every value's bytes in entry order, as 8 hex digits: equal
  // stores have equal checksums (summary.json's param_checksums).
  std::string Checksum() const;

 private:
  Kernels& kernels_;
  const Optimizer& optimizer_;
  std::vector<Entry> entries_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_OPTIM_VARIABLE_STORE_H_
