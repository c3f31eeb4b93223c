// EmbeddingCtr ("embedding_ctr"): a click-through model over hashed
// categorical ids, the sparse model of the parameter-server job. Each example
// has `fields` ids into one embedding table [embedding_rows, embedding_dim],
// declared sparse: a step reads and updates only the rows its batch uses. The
// example's rows are summed, and a dense layer [embedding_dim, 1] plus a bias
// gives the logit of a click (logistic loss).
//
// A step on n examples:
//   1. the batch's distinct ids, sorted, and each (example, field)'s index in them;
//   2. ReadRows of the distinct ids (on a parameter server: only those rows travel);
//   3. pooled[e] = sum over fields of rows[index(e, f)]; logits = pooled * kernel + bias;
//   4. backward: dkernel = pooled^T dlogits, dbias = sum of dlogits,
//      dpooled = dlogits kernel^T, drows[u] = sum of dpooled[e] over the (e, f)
//      whose index is u; SetSparseGradient(distinct ids, drows).
// Runs on CPU replicas (the pooling reads host memory). Immutable after
// construction; thread-safe as every Model is.
#ifndef MESHTRAIN_RUNTIME_MODEL_EMBEDDING_CTR_H_
#define MESHTRAIN_RUNTIME_MODEL_EMBEDDING_CTR_H_

#include <memory>
#include <string>
#include <vector>

#include "runtime/model/model.h"

namespace meshtrain {

class EmbeddingCtr final : public Model {
 public:
  // The embedding table's initial values: small, so that the first logits are
  // near 0 whatever ids an example has.
  static constexpr char kEmbeddingInitializer[] = "uniform:0.05";

  // `shape.input_features` is the number of fields; `shape.num_classes` must
  // be 0 (a binary target).
  static absl::StatusOr<std::unique_ptr<EmbeddingCtr>> Create(const ModelConfig& config,
                                                              const ModelShape& shape,
                                                              VariableCreator& creator);

  const std::string& name() const override { return name_; }
  const std::vector<VariableSpec>& variables() const override { return specs_; }
  absl::StatusOr<LossStats> ComputeGradients(ReplicaContext& ctx, const Batch& batch,
                                             float grad_scale) const override;
  absl::StatusOr<LossStats> Evaluate(ReplicaContext& ctx, const Batch& batch,
                                     Tensor* probabilities) const override;

 private:
  // What the forward pass leaves for the backward pass.
  struct Forward {
    Tensor ids;                  // int64 [u]: the batch's distinct ids, sorted
    std::vector<int64_t> index;  // [n * fields]: position of each id in `ids`
    Tensor pooled;               // [n, dim]
    Tensor logits;               // [n, 1]
  };

  EmbeddingCtr() = default;
  absl::Status CheckBatch(const Batch& batch) const;
  absl::StatusOr<Forward> RunForward(ReplicaContext& ctx, const Batch& batch) const;

  std::string name_ = "embedding_ctr";
  int64_t fields_ = 0;
  int64_t rows_ = 0;
  int64_t dim_ = 0;
  VariableId table_ = 0;
  VariableId kernel_ = 0;
  VariableId bias_ = 0;
  std::vector<VariableSpec> specs_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_MODEL_EMBEDDING_CTR_H_
