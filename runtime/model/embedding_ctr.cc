#include "runtime/model/embedding_ctr.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

// Workspace slots.
constexpr int kPooledSlot = 0;
constexpr int kLogitsSlot = 1;
constexpr int kDlogitsSlot = 2;
constexpr int kDpooledSlot = 3;

}  // namespace

absl::StatusOr<std::unique_ptr<EmbeddingCtr>> EmbeddingCtr::Create(const ModelConfig& config,
                                                                   const ModelShape& shape,
                                                                   VariableCreator& creator) {
  if (shape.num_classes != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("embedding_ctr predicts a click (a binary target), but the data has ",
                     shape.num_classes, " classes; use the synthetic_ctr dataset"));
  }
  if (shape.input_features < 1) {
    return absl::InvalidArgumentError("embedding_ctr: the data has no categorical fields");
  }
  if (config.embedding_rows < 1 || config.embedding_dim < 1) {
    return absl::InvalidArgumentError(absl::StrCat("embedding_ctr: model.embedding_rows (",
                                                   config.embedding_rows, ") and embedding_dim (",
                                                   config.embedding_dim, ") must be >= 1"));
  }
  MESHTRAIN_ASSIGN_OR_RETURN(Initializer table_init, Initializer::Parse(kEmbeddingInitializer));
  MESHTRAIN_ASSIGN_OR_RETURN(Initializer kernel_init,
                             Initializer::Parse(config.kernel_initializer));
  MESHTRAIN_ASSIGN_OR_RETURN(Initializer bias_init, Initializer::Parse(config.bias_initializer));
  auto model = std::unique_ptr<EmbeddingCtr>(new EmbeddingCtr);
  model->fields_ = shape.input_features;
  model->rows_ = config.embedding_rows;
  model->dim_ = config.embedding_dim;
  VariableSpec table{"embedding/table", Shape{model->rows_, model->dim_}, DType::kFloat32,
                     table_init, /*sparse=*/true};
  VariableSpec kernel{"logit/kernel", Shape{model->dim_, 1}, DType::kFloat32, kernel_init};
  VariableSpec bias{"logit/bias", Shape{1}, DType::kFloat32, bias_init};
  MESHTRAIN_ASSIGN_OR_RETURN(model->table_, creator.CreateVariable(table));
  MESHTRAIN_ASSIGN_OR_RETURN(model->kernel_, creator.CreateVariable(kernel));
  MESHTRAIN_ASSIGN_OR_RETURN(model->bias_, creator.CreateVariable(bias));
  model->specs_ = {std::move(table), std::move(kernel), std::move(bias)};
  return model;
}

absl::Status EmbeddingCtr::CheckBatch(const Batch& batch) const {
  const Tensor& x = batch.inputs;
  if (x.dtype() != DType::kInt64 || x.shape().rank() != 2 || x.shape().dim(1) != fields_) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": inputs ", x.DebugString(),
                                                   ", expected int64[n, ", fields_, "] ids"));
  }
  if (batch.labels.dtype() != DType::kFloat32 || batch.labels.rows() != x.rows()) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": labels ", batch.labels.DebugString(),
                                                   ", expected float32[", x.rows(), "]"));
  }
  if (!x.device().is_cpu()) {
    return absl::UnimplementedError(absl::StrCat(name_, " runs on CPU replicas only"));
  }
  return absl::OkStatus();
}

absl::StatusOr<EmbeddingCtr::Forward> EmbeddingCtr::RunForward(ReplicaContext& ctx,
                                                               const Batch& batch) const {
  MESHTRAIN_RETURN_IF_ERROR(CheckBatch(batch));
  const int64_t n = batch.size();
  absl::Span<const int64_t> all = batch.inputs.flat<int64_t>();
  // Step 1: distinct ids and each id's position among them.
  std::vector<int64_t> distinct(all.begin(), all.end());
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  Forward f;
  f.ids = Tensor(DType::kInt64, Shape{static_cast<int64_t>(distinct.size())});
  std::copy(distinct.begin(), distinct.end(), f.ids.data<int64_t>());
  f.index.resize(all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    f.index[i] = std::lower_bound(distinct.begin(), distinct.end(), all[i]) - distinct.begin();
  }
  // Step 2.
  MESHTRAIN_ASSIGN_OR_RETURN(Tensor rows, ctx.ReadRows(table_, f.ids));
  // Step 3.
  MESHTRAIN_ASSIGN_OR_RETURN(f.pooled,
                             ctx.workspace().Get(kPooledSlot, DType::kFloat32, Shape{n, dim_}));
  float* pooled = f.pooled.data<float>();
  const float* row_data = rows.data<float>();
  std::fill(pooled, pooled + n * dim_, 0.0f);
  for (int64_t e = 0; e < n; ++e) {
    float* out = pooled + e * dim_;
    for (int64_t k = 0; k < fields_; ++k) {
      const float* row = row_data + f.index[e * fields_ + k] * dim_;
      for (int64_t d = 0; d < dim_; ++d) out[d] += row[d];
    }
  }
  MESHTRAIN_ASSIGN_OR_RETURN(f.logits,
                             ctx.workspace().Get(kLogitsSlot, DType::kFloat32, Shape{n, 1}));
  Kernels& k = ctx.kernels();
  k.MatMul(f.pooled, false, ctx.Value(kernel_), false, 1.0f, 0.0f, f.logits);
  k.BiasActivation(ctx.Value(bias_), Activation::kNone, f.logits);
  return f;
}

absl::StatusOr<LossStats> EmbeddingCtr::ComputeGradients(ReplicaContext& ctx, const Batch& batch,
                                                         float grad_scale) const {
  MESHTRAIN_ASSIGN_OR_RETURN(Forward f, RunForward(ctx, batch));
  const int64_t n = batch.size();
  Kernels& k = ctx.kernels();
  MESHTRAIN_ASSIGN_OR_RETURN(Tensor dlogits,
                             ctx.workspace().Get(kDlogitsSlot, DType::kFloat32, Shape{n, 1}));
  const LossStats stats =
      k.SigmoidCrossEntropy(f.logits, batch.labels, grad_scale, &dlogits, nullptr);
  // Step 4, dense part first (announced as soon as final).
  k.BiasActivationGrad(f.logits, Activation::kNone, dlogits, ctx.Gradient(bias_));
  k.MatMul(f.pooled, true, dlogits, false, 1.0f, 0.0f, ctx.Gradient(kernel_));
  ctx.GradientReady(bias_);
  ctx.GradientReady(kernel_);
  MESHTRAIN_ASSIGN_OR_RETURN(Tensor dpooled,
                             ctx.workspace().Get(kDpooledSlot, DType::kFloat32, Shape{n, dim_}));
  k.MatMul(dlogits, false, ctx.Value(kernel_), true, 1.0f, 0.0f, dpooled);
  Tensor drows = Tensor::Zeros(DType::kFloat32, Shape{f.ids.num_elements(), dim_});
  float* out = drows.data<float>();
  const float* in = dpooled.data<float>();
  for (int64_t e = 0; e < n; ++e) {
    const float* g = in + e * dim_;
    for (int64_t field = 0; field < fields_; ++field) {
      float* row = out + f.index[e * fields_ + field] * dim_;
      for (int64_t d = 0; d < dim_; ++d) row[d] += g[d];
    }
  }
  ctx.SetSparseGradient(table_, std::move(f.ids), std::move(drows));
  return stats;
}

absl::StatusOr<LossStats> EmbeddingCtr::Evaluate(ReplicaContext& ctx, const Batch& batch,
                                                 Tensor* probabilities) const {
  MESHTRAIN_ASSIGN_OR_RETURN(Forward f, RunForward(ctx, batch));
  return ctx.kernels().SigmoidCrossEntropy(f.logits, batch.labels, 0.0f, nullptr, probabilities);
}

}  // namespace meshtrain
