#include "strategies/replica.h"

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {

GradientLayout::GradientLayout(const std::vector<VariableSpec>& specs)
    : offsets_(specs.size(), -1) {
  for (int id = static_cast<int>(specs.size()) - 1; id >= 0; --id) {
    if (specs[id].sparse) continue;
    offsets_[id] = total_elements_;
    order_.push_back(id);
    total_elements_ += specs[id].shape.num_elements();
  }
}

Replica::Replica(int id, Device device, std::unique_ptr<Kernels> kernels,
                 const std::vector<VariableSpec>& specs)
    : id_(id),
      device_(device),
      kernels_(std::move(kernels)),
      workspace_(kernels_->allocator()),
      specs_(specs),
      layout_(specs),
      gradients_(specs.size()),
      sparse_(specs.size()) {}

absl::StatusOr<std::unique_ptr<Replica>> Replica::Create(int id, Device device,
                                                         const std::vector<VariableSpec>& specs) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<Kernels> kernels, CreateKernels(device));
  auto replica = std::unique_ptr<Replica>(new Replica(id, device, std::move(kernels), specs));
  MESHTRAIN_ASSIGN_OR_RETURN(
      replica->flat_gradients_,
      replica->kernels_->Allocate(DType::kFloat32, Shape{replica->layout_.total_elements()}));
  replica->kernels_->Fill(0.0f, replica->flat_gradients_);
  for (VariableId v = 0; v < static_cast<VariableId>(specs.size()); ++v) {
    const int64_t offset = replica->layout_.offset(v);
    if (offset < 0) continue;
    replica->gradients_[v] =
        replica->flat_gradients_.Slice(offset, offset + specs[v].shape.num_elements())
            .Reshaped(specs[v].shape);
  }
  return replica;
}

absl::StatusOr<Tensor> Replica::ReadRows(VariableId id, const Tensor& ids) {
  const Tensor& table = values_[id];
  for (int64_t row : ids.flat<int64_t>()) {
    if (row < 0 || row >= table.rows()) {
      return absl::InvalidArgumentError(
          absl::StrCat("reading row ", row, " of ", specs_[id].name, table.shape().ToString()));
    }
  }
  MESHTRAIN_ASSIGN_OR_RETURN(
      Tensor rows, kernels_->Allocate(DType::kFloat32, table.shape().WithRows(ids.num_elements())));
  kernels_->GatherRows(table, ids, rows);
  return rows;
}

void Replica::SetSparseGradient(VariableId id, Tensor ids, Tensor rows) {
  sparse_[id] = SparseGradient{std::move(ids), std::move(rows)};
  GradientReady(id);
}

}  // namespace meshtrain
