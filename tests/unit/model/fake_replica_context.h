// A ReplicaContext over plain host tensors, for testing models without a strategy.
#ifndef MESHTRAIN_TESTS_UNIT_MODEL_FAKE_REPLICA_CONTEXT_H_
#define MESHTRAIN_TESTS_UNIT_MODEL_FAKE_REPLICA_CONTEXT_H_

#include <map>
#include <memory>
#include <vector>

#include "runtime/model/replica_context.h"
#include "runtime/tensor/cpu_kernels.h"

namespace meshtrain::testing {

class FakeReplicaContext final : public VariableCreator, public ReplicaContext {
 public:
  FakeReplicaContext() : kernels_(CreateCpuKernels(Device::Cpu(0))), workspace_(CpuAllocator()) {}

  absl::StatusOr<VariableId> CreateVariable(const VariableSpec& spec) override {
    specs_.push_back(spec);
    values_.emplace_back(spec.dtype, spec.shape);
    InitializeVariable(spec, /*seed=*/7, 0, values_.back());
    grads_.push_back(Tensor::Zeros(spec.dtype, spec.shape));
    return static_cast<VariableId>(specs_.size() - 1);
  }

  int replica_id() const override { return 0; }
  Kernels& kernels() override { return *kernels_; }
  Workspace& workspace() override { return workspace_; }
  const Tensor& Value(VariableId id) override { return values_[id]; }
  Tensor& Gradient(VariableId id) override { return grads_[id]; }
  void GradientReady(VariableId id) override { ready_order.push_back(id); }
  absl::StatusOr<Tensor> ReadRows(VariableId id, const Tensor& ids) override {
    Tensor rows(DType::kFloat32, values_[id].shape().WithRows(ids.num_elements()));
    kernels_->GatherRows(values_[id], ids, rows);
    return rows;
  }
  void SetSparseGradient(VariableId id, Tensor ids, Tensor rows) override {
    sparse_ids[id] = std::move(ids);
    sparse_rows[id] = std::move(rows);
  }
  // One replica: the sum is the values themselves.
  absl::Status SumOverReplicas(Tensor& values) override {
    ++sums_over_replicas;
    return absl::OkStatus();
  }

  Tensor& mutable_value(VariableId id) { return values_[id]; }
  const std::vector<VariableSpec>& specs() const { return specs_; }

  std::vector<VariableId> ready_order;
  int sums_over_replicas = 0;
  std::map<VariableId, Tensor> sparse_ids, sparse_rows;

 private:
  std::unique_ptr<Kernels> kernels_;
  Workspace workspace_;
  std::vector<VariableSpec> specs_;
  std::vector<Tensor> values_;
  std::vector<Tensor> grads_;
};

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_MODEL_FAKE_REPLICA_CONTEXT_H_
