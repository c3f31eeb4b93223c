// Replica: one device's ReplicaContext. It reads values the strategy binds to it
// (its own mirror, or the central copy) and owns its gradients: all dense
// gradients live in one flat buffer, in the order backward produces them (last
// declared variable first), so a run of ready gradients is one contiguous span
// that can be combined as one bucket without packing copies. Sparse gradients
// arrive as (ids, rows). Used by one thread at a time.
#ifndef MESHTRAIN_STRATEGIES_REPLICA_H_
#define MESHTRAIN_STRATEGIES_REPLICA_H_

#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "runtime/model/replica_context.h"
#include "runtime/model/variable.h"
#include "runtime/model/workspace.h"
#include "runtime/tensor/kernels.h"

namespace meshtrain {

// Where each dense variable's gradient sits in the flat buffer.
class GradientLayout {
 public:
  explicit GradientLayout(const std::vector<VariableSpec>& specs);

  int64_t total_elements() const { return total_elements_; }
  // Offset of `id`'s gradient, or -1 for a sparse variable.
  int64_t offset(VariableId id) const { return offsets_[id]; }
  // Dense variables in buffer order (reverse declaration order).
  const std::vector<VariableId>& order() const { return order_; }

 private:
  std::vector<int64_t> offsets_;
  std::vector<VariableId> order_;
  int64_t total_elements_ = 0;
};

class Replica final : public ReplicaContext {
 public:
  struct SparseGradient {
    Tensor ids;
    Tensor rows;
  };

  // `specs` must outlive the replica.
  static absl::StatusOr<std::unique_ptr<Replica>> Create(int id, Device device,
                                                         const std::vector<VariableSpec>& specs);

  // The values this replica reads, one per VariableId (handles; not copied).
  void BindValues(std::vector<Tensor> values) { values_ = std::move(values); }
  // Called from GradientReady, on the replica's thread.
  void SetGradientReadyCallback(std::function<void(VariableId)> callback) {
    on_ready_ = std::move(callback);
  }

  // Sums a SumOverReplicas call's values over the replicas in sync, on the
  // replica's thread. Unset: this replica trains alone (values unchanged).
  void SetSumOverReplicas(std::function<absl::Status(Tensor&)> sum) { sum_ = std::move(sum); }

  const GradientLayout& layout() const { return layout_; }
  // All dense gradients, flat, in layout order.
  absl::Span<float> flat_gradients() { return flat_gradients_.flat<float>(); }
  std::vector<SparseGradient>& sparse_gradients() { return sparse_; }
  Device device() const { return device_; }

  // ReplicaContext.
  int replica_id() const override { return id_; }
  Kernels& kernels() override { return *kernels_; }
  Workspace& workspace() override { return workspace_; }
  const Tensor& Value(VariableId id) override { return values_[id]; }
  Tensor& Gradient(VariableId id) override { return gradients_[id]; }
  void GradientReady(VariableId id) override {
    if (on_ready_) on_ready_(id);
  }
  absl::StatusOr<Tensor> ReadRows(VariableId id, const Tensor& ids) override;
  void SetSparseGradient(VariableId id, Tensor ids, Tensor rows) override;
  absl::Status SumOverReplicas(Tensor& values) override {
    return sum_ ? sum_(values) : absl::OkStatus();
  }

 private:
  Replica(int id, Device device, std::unique_ptr<Kernels> kernels,
          const std::vector<VariableSpec>& specs);

  int id_;
  Device device_;
  std::unique_ptr<Kernels> kernels_;
  Workspace workspace_;
  const std::vector<VariableSpec>& specs_;
  GradientLayout layout_;
  std::vector<Tensor> values_;
  Tensor flat_gradients_;
  std::vector<Tensor> gradients_;       // views into flat_gradients_ (empty for sparse)
  std::vector<SparseGradient> sparse_;  // per VariableId
  std::function<void(VariableId)> on_ready_;
  std::function<absl::Status(Tensor&)> sum_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_REPLICA_H_
