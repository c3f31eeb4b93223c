// Kernels: the operations models and optimizers run, for one device. The model
// layer calls only this interface, so a CPU replica (OpenBLAS) and a GPU replica
// (cuBLAS and CUDA kernels) run the same model code.
//
// Contract: all tensors are float32 unless stated, already on this device, and
// shaped as documented; shapes are checked by the caller at the boundary (config,
// checkpoint, RPC) and a mismatch here is a programmer bug. Kernels may run
// asynchronously (CUDA): a device error is sticky and reported by Synchronize().
// One Kernels object belongs to one replica; it is not thread-safe.
#ifndef MESHTRAIN_RUNTIME_TENSOR_KERNELS_H_
#define MESHTRAIN_RUNTIME_TENSOR_KERNELS_H_

#include <cstdint>
#include <initializer_list>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/tensor/allocator.h"
#include "runtime/tensor/batch.h"
#include "runtime/tensor/conv_params.h"
#include "runtime/tensor/device.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain {

enum class Activation { kNone, kRelu };

// The activations of the layer framework, in Keras's names (runtime/model/layer.h).
// kGelu is the exact form x * Phi(x) (Keras's approximate=False); kSoftmax
// normalises each row over the last dimension.
enum class ActivationFn { kLinear, kRelu, kGelu, kTanh, kSigmoid, kSoftmax };

// Per-batch sums, so replicas and workers can add them before dividing.
struct LossStats {
  double loss_sum = 0;
  int64_t correct = 0;
};

struct AdamParams {
  float learning_rate = 0.001f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float epsilon = 1e-7f;
};

class Kernels {
 public:
  virtual ~Kernels() = default;

  virtual Device device() const = 0;
  virtual Allocator& allocator() = 0;

  // An uninitialised tensor on this device.
  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) {
    return Tensor::Allocate(allocator(), dtype, std::move(shape));
  }

  // c = alpha * op(a) * op(b) + beta * c for 2-D row-major tensors.
  virtual void MatMul(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b,
                      float alpha, float beta, Tensor& c) = 0;

  // y = act(y + bias), bias broadcast over rows; y is [n, k], bias [k].
  virtual void BiasActivation(const Tensor& bias, Activation act, Tensor& y) = 0;

  // Backward of BiasActivation given its output y: dy *= act'(y) in place, then
  // bias_grad = sum of dy over rows.
  virtual void BiasActivationGrad(const Tensor& y, Activation act, Tensor& dy,
                                  Tensor& bias_grad) = 0;

  // Softmax cross-entropy of logits [n, k] against int32 labels [n]. Returns the
  // summed loss and the count of argmax hits. If `dlogits` is given it receives
  // (softmax - onehot) * grad_scale.
  virtual LossStats SoftmaxCrossEntropy(const Tensor& logits, const Tensor& labels,
                                        float grad_scale, Tensor* dlogits) = 0;

  // Logistic loss of logits [n, 1] against float32 labels in {0, 1} [n]. Returns
  // the summed loss and hits (p > 0.5 agrees with the label). Optional outputs:
  // dlogits = (sigmoid - label) * grad_scale; probabilities = sigmoid(logits).
  virtual LossStats SigmoidCrossEntropy(const Tensor& logits, const Tensor& labels,
                                        float grad_scale, Tensor* dlogits,
                                        Tensor* probabilities) = 0;

  // out[i] = table[ids[i]] for int64 ids [n]; table [rows, d], out [n, d].
  virtual void GatherRows(const Tensor& table, const Tensor& ids, Tensor& out) = 0;
  // out[ids[i]] += rows[i] for int64 ids [n] (ids may repeat); out [m, d].
  virtual void ScatterAddRows(const Tensor& rows, const Tensor& ids, Tensor& out) = 0;
  // out[ids[i]] = rows[i] for distinct int64 ids.
  virtual void ScatterRows(const Tensor& rows, const Tensor& ids, Tensor& out) = 0;

  // y = f(x) for rows x [n, k] (any rank: the last dimension is k); y may be x.
  virtual void Activate(ActivationFn fn, const Tensor& x, Tensor& y) = 0;
  // dx = dy * f'(x), given x and y = f(x) (softmax: dx = y * (dy - sum(dy * y))
  // per row); dx may be dy.
  virtual void ActivateGrad(ActivationFn fn, const Tensor& x, const Tensor& y, const Tensor& dy,
                            Tensor& dx) = 0;
  // Inverted dropout: y[i] = x[i] / (1 - rate) where DropoutKeeps(key, i, rate),
  // else 0 (runtime/tensor/counter_random.h), so the backward pass is the same
  // call on the gradient with the same key. y may be x. 0 <= rate < 1.
  virtual void Dropout(float rate, uint64_t key, const Tensor& x, Tensor& y) = 0;
  // Layer normalisation of each row of x [n, k]: y = (x - mean) * rstd * gamma
  // + beta with rstd = 1 / sqrt(var + epsilon); mean and rstd [n] are kept for
  // the gradient.
  virtual void LayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon,
                         Tensor& y, Tensor& mean, Tensor& rstd) = 0;
  // Its backward: dx [n, k], dgamma and dbeta [k] (overwritten).
  virtual void LayerNormGrad(const Tensor& x, const Tensor& gamma, const Tensor& mean,
                             const Tensor& rstd, const Tensor& dy, Tensor& dx, Tensor& dgamma,
                             Tensor& dbeta) = 0;
  // Batch normalisation over the rows of x seen as [n, k] (channels last).
  // Sums over rows come as [2k + 1] tensors, two per-channel sums then the row
  // count, so that replicas can add theirs before using them (synchronized
  // batch normalisation) and uneven slices weigh right.
  //
  // sums = (sum of (x - shift), sum of (x - shift)^2, n); `shift` [k] (the
  // moving mean: any value near the mean keeps the second sum accurate).
  virtual void BatchNormSums(const Tensor& x, const Tensor& shift, Tensor& sums) = 0;
  // From such sums: mean = shift + s1 / count, variance = s2 / count -
  // (s1 / count)^2 (biased, as Keras), [k] each.
  virtual void BatchNormMoments(const Tensor& sums, const Tensor& shift, Tensor& mean,
                                Tensor& variance) = 0;
  // y = (x - mean) / sqrt(variance + epsilon) * gamma + beta; gamma and beta
  // [k] are nullable (1 and 0).
  virtual void BatchNormForward(const Tensor& x, const Tensor& mean, const Tensor& variance,
                                const Tensor* gamma, const Tensor* beta, float epsilon,
                                Tensor& y) = 0;
  // sums = (sum of dy, sum of dy * xhat, n) with xhat the normalised x: the
  // gradients of beta and gamma over these rows.
  virtual void BatchNormGradSums(const Tensor& x, const Tensor& mean, const Tensor& variance,
                                 float epsilon, const Tensor& dy, Tensor& sums) = 0;
  // dx = gamma * rstd * (dy - s1 / count - xhat * s2 / count), given the
  // sums of every row the statistics came from (all replicas' when synchronized).
  virtual void BatchNormInputGrad(const Tensor& x, const Tensor& mean, const Tensor& variance,
                                  const Tensor* gamma, float epsilon, const Tensor& sums,
                                  const Tensor& dy, Tensor& dx) = 0;
  // Mean squared error of predictions [n, k] against float32 targets with n * k
  // elements: loss_sum = sum over rows of the row's mean of (p - t)^2; hits are
  // rows whose every |p - t| < 0.5. dpredictions = 2 (p - t) / k * grad_scale.
  virtual LossStats MeanSquaredError(const Tensor& predictions, const Tensor& targets,
                                     float grad_scale, Tensor* dpredictions) = 0;

  virtual void Fill(float value, Tensor& x) = 0;
  // Any dtype; src and dst have the same byte size; either may be on the host.
  virtual void Copy(const Tensor& src, Tensor& dst) = 0;
  // y += alpha * x.
  virtual void Axpy(float alpha, const Tensor& x, Tensor& y) = 0;
  virtual void Scale(float alpha, Tensor& x) = 0;

  // Convolution and pooling over NHWC activations with HWIO filters
  // (conv_params.h); the geometry comes from InferConv2D/InferPool2D and the
  // tensors have its shapes (CHECKed). Outputs are overwritten. Each kernel
  // picks its own internal layout; callers see only NHWC.
  //
  // y = act(conv(x, filter) + bias); `bias` [out_channels] may be null.
  virtual void Conv2DForward(const Conv2DGeometry& geometry, const Tensor& x, const Tensor& filter,
                             const Tensor* bias, Activation act, Tensor& y) = 0;
  // dx = the gradient of conv(x, filter) with respect to x, given dy (already
  // through the activation's gradient, e.g. BiasActivationGrad on dy seen as
  // [batch * height * width, channels]).
  virtual void Conv2DBackwardData(const Conv2DGeometry& geometry, const Tensor& dy,
                                  const Tensor& filter, Tensor& dx) = 0;
  // dfilter = the gradient with respect to the filter; `bias_grad` (may be
  // null) = dy summed over batch, height and width.
  virtual void Conv2DBackwardFilter(const Conv2DGeometry& geometry, const Tensor& x,
                                    const Tensor& dy, Tensor& dfilter, Tensor* bias_grad) = 0;
  virtual void MaxPool2DForward(const Pool2DGeometry& geometry, const Tensor& x, Tensor& y) = 0;
  // From the forward's input x and output y: each dy goes to a maximum of its
  // window (the first in row-major order on the CPU), the rest of dx is 0.
  virtual void MaxPool2DBackward(const Pool2DGeometry& geometry, const Tensor& x, const Tensor& y,
                                 const Tensor& dy, Tensor& dx) = 0;
  // The mean over the window's unpadded positions.
  virtual void AvgPool2DForward(const Pool2DGeometry& geometry, const Tensor& x, Tensor& y) = 0;
  virtual void AvgPool2DBackward(const Pool2DGeometry& geometry, const Tensor& dy, Tensor& dx) = 0;

  // Optimizer updates, in place on the variable and its slots.
  // Momentum as PyTorch defines it: v = momentum * v + g; var -= lr * v
  // (nesterov: var -= lr * (g + momentum * v)). momentum == 0 is plain SGD and
  // leaves `velocity` untouched (it may be empty).
  virtual void SgdUpdate(const Tensor& grad, float learning_rate, float momentum, bool nesterov,
                         Tensor& var, Tensor& velocity) = 0;
  // Adam with bias correction for step `step` (1-based).
  virtual void AdamUpdate(const Tensor& grad, const AdamParams& params, int64_t step, Tensor& var,
                          Tensor& m, Tensor& v) = 0;

  // `batch` where this device's kernels can read it. CPU: the batch itself.
  // CUDA: host tensors are uploaded through pinned buffers on a separate
  // stream, double-buffered (InputStager); the result is valid for work queued
  // before the next UploadBatch call. Tensors already on this device pass
  // through.
  virtual absl::StatusOr<Batch> UploadBatch(const Batch& batch) { return batch; }

  // Waits for queued work; returns the first device error since the last call.
  virtual absl::Status Synchronize() = 0;
};

// Shared by the CPU and CUDA kernels, so both check and compute alike.
// The sizes of c = op(a) op(b); a shape mismatch is a programmer bug (CHECK).
struct MatMulDims {
  int m = 0, n = 0, k = 0;
};
MatMulDims CheckMatMulDims(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b,
                           const Tensor& c);
// Shapes of the convolution and pooling kernels' tensors against their
// geometry; a mismatch is a programmer bug (CHECK).
void CheckConv2DForward(const Conv2DGeometry& geometry, const Tensor& x, const Tensor& filter,
                        const Tensor* bias, const Tensor& y);
void CheckPool2D(const Pool2DGeometry& geometry, const Tensor& x, const Tensor& y);
// Adam with bias correction in PyTorch's form, var -= lr / c1 * m / (sqrt(v / c2) + eps)
// with c_i = 1 - beta_i^step, rewritten so the per-element loop does one
// division: var -= lr_t * m / (sqrt(v) + epsilon_hat). Shapes CHECKed as in
// CheckMatMulDims.
struct AdamStep {
  float lr_t = 0;
  float epsilon_hat = 0;
};
AdamStep CheckAdamUpdate(const Tensor& grad, const AdamParams& params, int64_t step,
                         const Tensor& var, const Tensor& m, const Tensor& v);

// The layer kernels' shapes, checked alike by the CPU and CUDA kernels
// (CHECK: a mismatch is a programmer bug). Each returns x seen as
// [rows, cols], cols being its last dimension.
struct RowDims {
  int64_t rows = 0;
  int64_t cols = 0;
};
RowDims CheckActivate(const Tensor& x, const Tensor& y);
RowDims CheckActivateGrad(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx);
void CheckDropout(float rate, const Tensor& x, const Tensor& y);
RowDims CheckLayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& y,
                       const Tensor& mean, const Tensor& rstd);
RowDims CheckLayerNormGrad(const Tensor& x, const Tensor& mean, const Tensor& dy, const Tensor& dx,
                           const Tensor& dgamma, const Tensor& dbeta);
RowDims CheckMeanSquaredError(const Tensor& predictions, const Tensor& targets);
// Every batch normalisation kernel's: x [rows, k] (and y or dy, dx like it),
// per-channel tensors [k] (the nullable ones null or [k]), sums [2k + 1].
RowDims CheckBatchNorm(const Tensor& x, std::initializer_list<const Tensor*> like_x,
                       std::initializer_list<const Tensor*> channels, const Tensor* sums);
// BatchNormMoments's: returns k, the channels.
int64_t CheckBatchNormMoments(const Tensor& sums, const Tensor& shift, const Tensor& mean,
                              const Tensor& variance);

// Kernels for `device`: CPU kernels for cpu:N, CUDA kernels for gpu:N (an error
// names the missing support where the build has no CUDA or the GPU is absent).
absl::StatusOr<std::unique_ptr<Kernels>> CreateKernels(Device device);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_KERNELS_H_
