// The CUDA kernels behind CudaKernels and the GPU cross-device ops, as plain
// launch functions on raw device pointers (so only device_kernels.cu needs
// nvcc). Each queues its work on `stream` and returns the launch's
// cudaGetLastError(); execution errors surface at the next synchronisation.
// Arithmetic follows the CPU kernels (runtime/tensor/cpu_kernels.cc) formula
// for formula, in float32, so results agree to rounding; reductions are formed
// in a fixed order (no atomics), so they are deterministic. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CUDA_DEVICE_KERNELS_H_
#define MESHTRAIN_RUNTIME_TENSOR_CUDA_DEVICE_KERNELS_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace meshtrain::device_kernels {

// Loss sums of a block of rows, then of all of them.
struct LossSums {
  double loss_sum;
  long long correct;
};

// What a kernel found wrong with its input (the CPU kernels CHECK-fail on
// these; on the GPU the first one is recorded and reported by Synchronize).
enum FaultKind : int { kNoFault = 0, kBadLabel = 1, kBadRowId = 2 };
struct DeviceFault {
  int kind;         // FaultKind of the first fault
  long long value;  // the offending label or row id
  long long limit;  // classes or rows
};

// Partial sums SoftmaxCrossEntropy/SigmoidCrossEntropy need for n rows.
int LossBlocks(int64_t n);

// Per row: loss and argmax hit into `partials` (LossBlocks(n) of them) and
// their sum into `*total`; dlogits (nullable) = (softmax - onehot) * grad_scale.
cudaError_t SoftmaxCrossEntropy(const float* logits, const int32_t* labels, int64_t n, int64_t k,
                                float grad_scale, float* dlogits, LossSums* partials,
                                LossSums* total, DeviceFault* fault, cudaStream_t stream);
// dlogits and probabilities nullable.
cudaError_t SigmoidCrossEntropy(const float* logits, const float* labels, int64_t n,
                                float grad_scale, float* dlogits, float* probabilities,
                                LossSums* partials, LossSums* total, cudaStream_t stream);

cudaError_t BiasActivation(const float* bias, float* y, int64_t rows, int64_t cols, bool relu,
                           cudaStream_t stream);
cudaError_t BiasActivationGrad(const float* y, float* dy, float* bias_grad, int64_t rows,
                               int64_t cols, bool relu, cudaStream_t stream);

// The layer framework's kernels (runtime/tensor/layer_math.h's formulas).
// `fn` numbers ActivationFn (layer_math::ActivationCode); rows [rows, cols];
// y may be x, dx may be dy.
cudaError_t Activate(int fn, const float* x, float* y, int64_t rows, int64_t cols,
                     cudaStream_t stream);
cudaError_t ActivateGrad(int fn, const float* x, const float* y, const float* dy, float* dx,
                         int64_t rows, int64_t cols, cudaStream_t stream);
cudaError_t Dropout(float rate, uint64_t key, const float* x, float* y, int64_t n,
                    cudaStream_t stream);
cudaError_t LayerNorm(const float* x, const float* gamma, const float* beta, float epsilon,
                      float* y, float* mean, float* rstd, int64_t rows, int64_t cols,
                      cudaStream_t stream);
cudaError_t LayerNormGrad(const float* x, const float* gamma, const float* mean, const float* rstd,
                          const float* dy, float* dx, float* dgamma, float* dbeta, int64_t rows,
                          int64_t cols, cudaStream_t stream);
// Batch normalisation (kernels.h's contracts); sums are [2 * cols + 1],
// gamma and beta nullable.
cudaError_t BatchNormSums(const float* x, const float* shift, float* sums, int64_t rows,
                          int64_t cols, cudaStream_t stream);
cudaError_t BatchNormMoments(const float* sums, const float* shift, float* mean, float* variance,
                             int64_t cols, cudaStream_t stream);
cudaError_t BatchNormForward(const float* x, const float* mean, const float* variance,
                             const float* gamma, const float* beta, float epsilon, float* y,
                             int64_t rows, int64_t cols, cudaStream_t stream);
cudaError_t BatchNormGradSums(const float* x, const float* mean, const float* variance,
                              float epsilon, const float* dy, float* sums, int64_t rows,
                              int64_t cols, cudaStream_t stream);
cudaError_t BatchNormInputGrad(const float* x, const float* mean, const float* variance,
                               const float* gamma, float epsilon, const float* sums,
                               const float* dy, float* dx, int64_t rows, int64_t cols,
                               cudaStream_t stream);
// Row losses as SoftmaxCrossEntropy's; dpredictions nullable.
cudaError_t MeanSquaredError(const float* predictions, const float* targets, int64_t rows,
                             int64_t cols, float grad_scale, float* dpredictions,
                             LossSums* partials, LossSums* total, cudaStream_t stream);

cudaError_t GatherRows(const float* table, int64_t table_rows, const int64_t* ids, int64_t n,
                       int64_t d, float* out, DeviceFault* fault, cudaStream_t stream);
// accumulate: out[ids[i]] += rows[i] (atomic, ids may repeat); else out[ids[i]] = rows[i].
cudaError_t ScatterRows(const float* rows, const int64_t* ids, int64_t n, int64_t d, float* out,
                        int64_t out_rows, bool accumulate, DeviceFault* fault, cudaStream_t stream);

cudaError_t Fill(float value, float* x, int64_t n, cudaStream_t stream);
cudaError_t Axpy(float alpha, const float* x, float* y, int64_t n, cudaStream_t stream);
cudaError_t Scale(float alpha, float* x, int64_t n, cudaStream_t stream);
cudaError_t SgdMomentum(const float* grad, float learning_rate, float momentum, bool nesterov,
                        float* var, float* velocity, int64_t n, cudaStream_t stream);
cudaError_t Adam(const float* grad, float lr_t, float beta1, float beta2, float eps_hat, float* var,
                 float* m, float* v, int64_t n, cudaStream_t stream);

// dst = sources[0] + sources[1] + ... in that order (dst may be one of them);
// every pointer readable from the stream's device.
inline constexpr int kMaxSumSources = 16;
cudaError_t SumBuffers(float* dst, const float* const* sources, int num_sources, int64_t n,
                       cudaStream_t stream);

}  // namespace meshtrain::device_kernels

#endif  // MESHTRAIN_RUNTIME_TENSOR_CUDA_DEVICE_KERNELS_H_
