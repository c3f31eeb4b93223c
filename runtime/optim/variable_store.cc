#include "runtime/optim/variable_store.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/base/crc32c.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {

absl::StatusOr<int> VariableStore::Add(const VariableSpec& spec, int64_t row_begin, int64_t rows) {
  const int64_t total_rows = spec.shape.rank() == 0 ? 1 : spec.shape.dim(0);
  if (rows < 0) rows = total_rows - row_begin;
  if (row_begin < 0 || rows < 0 || row_begin + rows > total_rows) {
    return absl::InvalidArgumentError(absl::StrCat("variable ", spec.name, spec.shape.ToString(),
                                                   ": rows [", row_begin, ", ", row_begin + rows,
                                                   ") are out of range"));
  }
  if (spec.dtype != DType::kFloat32) {
    return absl::UnimplementedError(absl::StrCat("variable ", spec.name, ": dtype ",
                                                 DTypeName(spec.dtype),
                                                 " is not trainable yet; use float32"));
  }
  Entry entry;
  entry.spec = spec;
  entry.row_begin = row_begin;
  const Shape shape = spec.shape.rank() == 0 ? spec.shape : spec.shape.WithRows(rows);
  MESHTRAIN_ASSIGN_OR_RETURN(entry.value, kernels_.Allocate(spec.dtype, shape));
  for (size_t s = 0; s < optimizer_.slot_names().size(); ++s) {
    MESHTRAIN_ASSIGN_OR_RETURN(Tensor slot, kernels_.Allocate(spec.dtype, shape));
    kernels_.Fill(0.0f, slot);
    entry.slots.push_back(std::move(slot));
  }
  entries_.push_back(std::move(entry));
  return size() - 1;
}

absl::Status VariableStore::Initialize(uint64_t seed) {
  for (Entry& e : entries_) {
    if (e.value.device().is_cpu()) {
      InitializeVariable(e.spec, seed, e.row_begin, e.value);
    } else {
      Tensor host(e.value.dtype(), e.value.shape());
      InitializeVariable(e.spec, seed, e.row_begin, host);
      kernels_.Copy(host, e.value);
    }
    for (Tensor& slot : e.slots) kernels_.Fill(0.0f, slot);
    e.updates = 0;
  }
  return kernels_.Synchronize();
}

void VariableStore::Apply(int i, const Tensor& grad, float lr_scale) {
  Entry& e = entries_[i];
  ++e.updates;
  if (!e.spec.trainable) {
    kernels_.Axpy(-(1.0f - e.spec.moving_average_momentum), grad, e.value);
    return;
  }
  optimizer_.ApplyDense(kernels_, e.spec.name, grad, e.updates, lr_scale, e.value,
                        absl::MakeSpan(e.slots));
}

absl::Status VariableStore::ApplySparse(int i, const Tensor& ids, const Tensor& grad_rows,
                                        float lr_scale) {
  Entry& e = entries_[i];
  const Tensor* local_ids = &ids;
  Tensor shifted;
  if (e.row_begin != 0) {
    shifted = ids.Clone();
    for (int64_t& id : shifted.flat<int64_t>()) id -= e.row_begin;
    local_ids = &shifted;
  }
  for (int64_t id : local_ids->flat<int64_t>()) {
    if (id < 0 || id >= e.value.rows()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sparse update of ", e.spec.name, ": row ", id + e.row_begin,
                       " is outside rows [", e.row_begin, ", ", e.row_begin + e.value.rows(), ")"));
    }
  }
  ++e.updates;
  return optimizer_.ApplySparse(kernels_, e.spec.name, *local_ids, grad_rows, e.updates, lr_scale,
                                e.value, absl::MakeSpan(e.slots));
}

std::string VariableStore::Checksum() const {
  uint32_t crc = 0;
  for (const Entry& e : entries_) {
    if (e.value.device().is_cpu()) {
      crc = crc32c::Extend(crc, e.value.raw_data(), e.value.bytes());
    } else {
      Tensor host(e.value.dtype(), e.value.shape());
      kernels_.Copy(e.value, host);
      (void)kernels_.Synchronize();
      crc = crc32c::Extend(crc, host.raw_data(), host.bytes());
    }
  }
  return absl::StrFormat("%08x", crc);
}

}  // namespace meshtrain
