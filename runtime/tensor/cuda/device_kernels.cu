#include <algorithm>

#include "runtime/tensor/cuda/device_kernels.h"
#include "runtime/tensor/cuda/launch.h"
#include "runtime/tensor/layer_math.h"

namespace meshtrain::device_kernels {
namespace {

__device__ void RecordFault(DeviceFault* fault, int kind, long long value, long long limit) {
  if (atomicCAS(&fault->kind, kNoFault, kind) == kNoFault) {
    fault->value = value;
    fault->limit = limit;
  }
}

// Tree sum over the block in a fixed order; thread 0 writes `out`.
__device__ void BlockSum(double loss, long long correct, LossSums* out) {
  __shared__ double loss_shared[kThreads];
  __shared__ long long correct_shared[kThreads];
  loss_shared[threadIdx.x] = loss;
  correct_shared[threadIdx.x] = correct;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      loss_shared[threadIdx.x] += loss_shared[threadIdx.x + half];
      correct_shared[threadIdx.x] += correct_shared[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = LossSums{loss_shared[0], correct_shared[0]};
}

__global__ void SoftmaxCrossEntropyKernel(const float* x, const int32_t* y, int64_t n, int64_t k,
                                          float scale, float* d, LossSums* partials,
                                          DeviceFault* fault) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  double loss = 0;
  long long correct = 0;
  if (r < n) {
    const float* row = x + r * k;
    int64_t argmax = 0;
    for (int64_t c = 1; c < k; ++c) argmax = row[c] > row[argmax] ? c : argmax;
    const float max = row[argmax];
    float sum = 0.0f;
    for (int64_t c = 0; c < k; ++c) sum += expf(row[c] - max);
    const int32_t label = y[r];
    const bool valid = label >= 0 && label < k;
    if (valid) {
      loss = static_cast<double>(logf(sum) - (row[label] - max));
      correct = argmax == label;
    } else {
      RecordFault(fault, kBadLabel, label, k);
    }
    if (d != nullptr) {
      float* drow = d + r * k;
      const float inv = scale / sum;
      for (int64_t c = 0; c < k; ++c) drow[c] = expf(row[c] - max) * inv;
      if (valid) drow[label] -= scale;
    }
  }
  BlockSum(loss, correct, &partials[blockIdx.x]);
}

__global__ void SigmoidCrossEntropyKernel(const float* x, const float* y, int64_t n, float scale,
                                          float* d, float* p_out, LossSums* partials) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  double loss = 0;
  long long correct = 0;
  if (i < n) {
    const float z = x[i];
    loss = static_cast<double>(log1pf(expf(-fabsf(z))) + fmaxf(z, 0.0f) - z * y[i]);
    const float p = 1.0f / (1.0f + expf(-z));
    correct = (p > 0.5f) == (y[i] > 0.5f);
    if (d != nullptr) d[i] = (p - y[i]) * scale;
    if (p_out != nullptr) p_out[i] = p;
  }
  BlockSum(loss, correct, &partials[blockIdx.x]);
}

// One block: partials summed in a fixed order.
__global__ void ReduceLossPartialsKernel(const LossSums* partials, int count, LossSums* total) {
  double loss = 0;
  long long correct = 0;
  for (int i = threadIdx.x; i < count; i += blockDim.x) {
    loss += partials[i].loss_sum;
    correct += partials[i].correct;
  }
  BlockSum(loss, correct, total);
}

__global__ void BiasActivationKernel(const float* bias, float* y, int64_t rows, int64_t cols,
                                     bool relu) {
  MESHTRAIN_GRID_STRIDE(i, rows * cols) {
    const float v = y[i] + bias[i % cols];
    y[i] = relu ? fmaxf(v, 0.0f) : v;
  }
}

// One thread per column, rows in order: the same sums as the CPU loop.
__global__ void BiasActivationGradKernel(const float* y, float* dy, float* db, int64_t rows,
                                         int64_t cols, bool relu) {
  MESHTRAIN_GRID_STRIDE(c, cols) {
    float sum = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r * cols + c;
      float g = dy[i];
      if (relu) {
        g = y[i] > 0.0f ? g : 0.0f;
        dy[i] = g;
      }
      sum += g;
    }
    db[c] = sum;
  }
}

// The formulas of layer_math.h, as the CPU kernels run them; row operations
// one thread per row.
__global__ void ActivateKernel(int fn, const float* x, float* y, int64_t rows, int64_t cols) {
  if (fn == layer_math::kSoftmax) {
    MESHTRAIN_GRID_STRIDE(r, rows) layer_math::SoftmaxRow(x + r * cols, y + r * cols, cols);
    return;
  }
  MESHTRAIN_GRID_STRIDE(i, rows * cols) y[i] = layer_math::Activate(fn, x[i]);
}

__global__ void ActivateGradKernel(int fn, const float* x, const float* y, const float* dy,
                                   float* dx, int64_t rows, int64_t cols) {
  if (fn == layer_math::kSoftmax) {
    MESHTRAIN_GRID_STRIDE(r, rows) {
      layer_math::SoftmaxGradRow(y + r * cols, dy + r * cols, dx + r * cols, cols);
    }
    return;
  }
  MESHTRAIN_GRID_STRIDE(i, rows * cols) dx[i] = layer_math::ActivateGrad(fn, x[i], y[i], dy[i]);
}

__global__ void DropoutKernel(float rate, uint64_t key, const float* x, float* y, int64_t n) {
  const float scale = 1.0f / (1.0f - rate);
  MESHTRAIN_GRID_STRIDE(i, n) y[i] = layer_math::DropoutValue(rate, scale, key, i, x[i]);
}

__global__ void LayerNormKernel(const float* x, const float* gamma, const float* beta,
                                float epsilon, float* y, float* mean, float* rstd, int64_t rows,
                                int64_t cols) {
  MESHTRAIN_GRID_STRIDE(r, rows) {
    layer_math::LayerNormRow(x + r * cols, gamma, beta, epsilon, cols, y + r * cols, mean + r,
                             rstd + r);
  }
}

__global__ void LayerNormInputGradKernel(const float* x, const float* gamma, const float* mean,
                                         const float* rstd, const float* dy, float* dx,
                                         int64_t rows, int64_t cols) {
  MESHTRAIN_GRID_STRIDE(r, rows) {
    layer_math::LayerNormInputGradRow(x + r * cols, gamma, mean[r], rstd[r], dy + r * cols, cols,
                                      dx + r * cols);
  }
}

// One thread per column, rows in order: the CPU kernel's sums.
__global__ void LayerNormParamGradKernel(const float* x, const float* mean, const float* rstd,
                                         const float* dy, float* dgamma, float* dbeta, int64_t rows,
                                         int64_t cols) {
  MESHTRAIN_GRID_STRIDE(c, cols) {
    float g = 0.0f, b = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r * cols + c;
      g += dy[i] * ((x[i] - mean[r]) * rstd[r]);
      b += dy[i];
    }
    dgamma[c] = g;
    dbeta[c] = b;
  }
}

// Batch normalisation. The column sums run one block per channel, its
// threads striding over rows, then a tree sum in double; the last element of
// sums (the row count) is written by block 0.
__device__ void BlockColumnSums(double a, double b, int64_t rows, int64_t cols, float* sums) {
  __shared__ double a_shared[kThreads];
  __shared__ double b_shared[kThreads];
  a_shared[threadIdx.x] = a;
  b_shared[threadIdx.x] = b;
  __syncthreads();
  for (int half = kThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      a_shared[threadIdx.x] += a_shared[threadIdx.x + half];
      b_shared[threadIdx.x] += b_shared[threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    sums[blockIdx.x] = static_cast<float>(a_shared[0]);
    sums[cols + blockIdx.x] = static_cast<float>(b_shared[0]);
    if (blockIdx.x == 0) sums[2 * cols] = static_cast<float>(rows);
  }
}

__global__ void BatchNormSumsKernel(const float* x, const float* shift, float* sums, int64_t rows,
                                    int64_t cols) {
  const int64_t c = blockIdx.x;
  double a = 0, b = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const double v = static_cast<double>(x[r * cols + c] - shift[c]);
    a += v;
    b += v * v;
  }
  BlockColumnSums(a, b, rows, cols, sums);
}

__global__ void BatchNormMomentsKernel(const float* sums, const float* shift, float* mean,
                                       float* variance, int64_t cols) {
  MESHTRAIN_GRID_STRIDE(c, cols) {
    layer_math::BatchNormMoments(sums[c], sums[cols + c], sums[2 * cols], shift[c], mean + c,
                                 variance + c);
  }
}

__global__ void BatchNormForwardKernel(const float* x, const float* mean, const float* variance,
                                       const float* gamma, const float* beta, float epsilon,
                                       float* y, int64_t n, int64_t cols) {
  MESHTRAIN_GRID_STRIDE(i, n) {
    const int64_t c = i % cols;
    const float rstd = layer_math::BatchNormRstd(variance[c], epsilon);
    const float g = gamma != nullptr ? gamma[c] : 1.0f;
    const float b = beta != nullptr ? beta[c] : 0.0f;
    y[i] = (x[i] - mean[c]) * rstd * g + b;
  }
}

__global__ void BatchNormGradSumsKernel(const float* x, const float* mean, const float* variance,
                                        float epsilon, const float* dy, float* sums, int64_t rows,
                                        int64_t cols) {
  const int64_t c = blockIdx.x;
  const float rstd = layer_math::BatchNormRstd(variance[c], epsilon);
  double a = 0, b = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const int64_t i = r * cols + c;
    a += dy[i];
    b += static_cast<double>(dy[i] * ((x[i] - mean[c]) * rstd));
  }
  BlockColumnSums(a, b, rows, cols, sums);
}

__global__ void BatchNormInputGradKernel(const float* x, const float* mean, const float* variance,
                                         const float* gamma, float epsilon, const float* sums,
                                         const float* dy, float* dx, int64_t n, int64_t cols) {
  const float count = sums[2 * cols];
  MESHTRAIN_GRID_STRIDE(i, n) {
    const int64_t c = i % cols;
    const float rstd = layer_math::BatchNormRstd(variance[c], epsilon);
    const float gamma_rstd = rstd * (gamma != nullptr ? gamma[c] : 1.0f);
    const float mean_dy = count > 0.0f ? sums[c] / count : 0.0f;
    const float mean_dy_xhat = count > 0.0f ? sums[cols + c] / count : 0.0f;
    dx[i] = layer_math::BatchNormInputGrad(dy[i], (x[i] - mean[c]) * rstd, gamma_rstd, mean_dy,
                                           mean_dy_xhat);
  }
}

__global__ void MeanSquaredErrorKernel(const float* p, const float* t, int64_t rows, int64_t cols,
                                       float scale, float* d, LossSums* partials) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  double loss = 0;
  long long correct = 0;
  if (r < rows) {
    bool hit = false;
    loss = static_cast<double>(layer_math::SquaredErrorRow(
        p + r * cols, t + r * cols, cols, scale, d != nullptr ? d + r * cols : nullptr, &hit));
    correct = hit;
  }
  BlockSum(loss, correct, &partials[blockIdx.x]);
}

__global__ void GatherRowsKernel(const float* table, int64_t table_rows, const int64_t* ids,
                                 int64_t n, int64_t d, float* out, DeviceFault* fault) {
  MESHTRAIN_GRID_STRIDE(i, n * d) {
    const int64_t id = ids[i / d];
    if (id < 0 || id >= table_rows) {
      RecordFault(fault, kBadRowId, id, table_rows);
      continue;
    }
    out[i] = table[id * d + i % d];
  }
}

__global__ void ScatterRowsKernel(const float* rows, const int64_t* ids, int64_t n, int64_t d,
                                  float* out, int64_t out_rows, bool accumulate,
                                  DeviceFault* fault) {
  MESHTRAIN_GRID_STRIDE(i, n * d) {
    const int64_t id = ids[i / d];
    if (id < 0 || id >= out_rows) {
      RecordFault(fault, kBadRowId, id, out_rows);
      continue;
    }
    float* target = out + id * d + i % d;
    if (accumulate) {
      atomicAdd(target, rows[i]);
    } else {
      *target = rows[i];
    }
  }
}

__global__ void FillKernel(float value, float* x, int64_t n) {
  MESHTRAIN_GRID_STRIDE(i, n) x[i] = value;
}

__global__ void AxpyKernel(float alpha, const float* x, float* y, int64_t n) {
  MESHTRAIN_GRID_STRIDE(i, n) y[i] += alpha * x[i];
}

__global__ void ScaleKernel(float alpha, float* x, int64_t n) {
  MESHTRAIN_GRID_STRIDE(i, n) x[i] *= alpha;
}

__global__ void SgdMomentumKernel(const float* g, float lr, float momentum, bool nesterov, float* w,
                                  float* v, int64_t n) {
  MESHTRAIN_GRID_STRIDE(i, n) {
    const float vi = momentum * v[i] + g[i];
    v[i] = vi;
    w[i] -= nesterov ? lr * (g[i] + momentum * vi) : lr * vi;
  }
}

__global__ void AdamKernel(const float* g, float lr_t, float beta1, float beta2, float eps_hat,
                           float* w, float* m, float* v, int64_t n) {
  MESHTRAIN_GRID_STRIDE(i, n) {
    const float mi = beta1 * m[i] + (1.0f - beta1) * g[i];
    const float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    w[i] -= lr_t * mi / (sqrtf(vi) + eps_hat);
  }
}

struct Sources {
  const float* p[kMaxSumSources];
};

__global__ void SumBuffersKernel(float* dst, Sources sources, int count, int64_t n) {
  MESHTRAIN_GRID_STRIDE(i, n) {
    float sum = sources.p[0][i];
    for (int s = 1; s < count; ++s) sum += sources.p[s][i];
    dst[i] = sum;
  }
}

}  // namespace

int LossBlocks(int64_t n) {
  return static_cast<int>(std::max<int64_t>(1, (n + kThreads - 1) / kThreads));
}

cudaError_t SoftmaxCrossEntropy(const float* logits, const int32_t* labels, int64_t n, int64_t k,
                                float grad_scale, float* dlogits, LossSums* partials,
                                LossSums* total, DeviceFault* fault, cudaStream_t stream) {
  const int blocks = LossBlocks(n);
  SoftmaxCrossEntropyKernel<<<blocks, kThreads, 0, stream>>>(logits, labels, n, k, grad_scale,
                                                             dlogits, partials, fault);
  ReduceLossPartialsKernel<<<1, kThreads, 0, stream>>>(partials, blocks, total);
  return Launched();
}

cudaError_t SigmoidCrossEntropy(const float* logits, const float* labels, int64_t n,
                                float grad_scale, float* dlogits, float* probabilities,
                                LossSums* partials, LossSums* total, cudaStream_t stream) {
  const int blocks = LossBlocks(n);
  SigmoidCrossEntropyKernel<<<blocks, kThreads, 0, stream>>>(logits, labels, n, grad_scale, dlogits,
                                                             probabilities, partials);
  ReduceLossPartialsKernel<<<1, kThreads, 0, stream>>>(partials, blocks, total);
  return Launched();
}

cudaError_t BiasActivation(const float* bias, float* y, int64_t rows, int64_t cols, bool relu,
                           cudaStream_t stream) {
  if (rows * cols == 0) return cudaSuccess;
  BiasActivationKernel<<<Blocks(rows * cols), kThreads, 0, stream>>>(bias, y, rows, cols, relu);
  return Launched();
}

cudaError_t BiasActivationGrad(const float* y, float* dy, float* bias_grad, int64_t rows,
                               int64_t cols, bool relu, cudaStream_t stream) {
  if (cols == 0) return cudaSuccess;
  BiasActivationGradKernel<<<Blocks(cols), kThreads, 0, stream>>>(y, dy, bias_grad, rows, cols,
                                                                  relu);
  return Launched();
}

cudaError_t Activate(int fn, const float* x, float* y, int64_t rows, int64_t cols,
                     cudaStream_t stream) {
  if (rows * cols == 0) return cudaSuccess;
  ActivateKernel<<<Blocks(rows * cols), kThreads, 0, stream>>>(fn, x, y, rows, cols);
  return Launched();
}

cudaError_t ActivateGrad(int fn, const float* x, const float* y, const float* dy, float* dx,
                         int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows * cols == 0) return cudaSuccess;
  ActivateGradKernel<<<Blocks(rows * cols), kThreads, 0, stream>>>(fn, x, y, dy, dx, rows, cols);
  return Launched();
}

cudaError_t Dropout(float rate, uint64_t key, const float* x, float* y, int64_t n,
                    cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  DropoutKernel<<<Blocks(n), kThreads, 0, stream>>>(rate, key, x, y, n);
  return Launched();
}

cudaError_t LayerNorm(const float* x, const float* gamma, const float* beta, float epsilon,
                      float* y, float* mean, float* rstd, int64_t rows, int64_t cols,
                      cudaStream_t stream) {
  if (rows * cols == 0) return cudaSuccess;
  LayerNormKernel<<<Blocks(rows), kThreads, 0, stream>>>(x, gamma, beta, epsilon, y, mean, rstd,
                                                         rows, cols);
  return Launched();
}

cudaError_t LayerNormGrad(const float* x, const float* gamma, const float* mean, const float* rstd,
                          const float* dy, float* dx, float* dgamma, float* dbeta, int64_t rows,
                          int64_t cols, cudaStream_t stream) {
  if (cols == 0) return cudaSuccess;
  if (rows > 0) {
    LayerNormInputGradKernel<<<Blocks(rows), kThreads, 0, stream>>>(x, gamma, mean, rstd, dy, dx,
                                                                    rows, cols);
  }
  LayerNormParamGradKernel<<<Blocks(cols), kThreads, 0, stream>>>(x, mean, rstd, dy, dgamma, dbeta,
                                                                  rows, cols);
  return Launched();
}

cudaError_t BatchNormSums(const float* x, const float* shift, float* sums, int64_t rows,
                          int64_t cols, cudaStream_t stream) {
  if (cols == 0) return cudaSuccess;
  BatchNormSumsKernel<<<static_cast<unsigned>(cols), kThreads, 0, stream>>>(x, shift, sums, rows,
                                                                            cols);
  return Launched();
}

cudaError_t BatchNormMoments(const float* sums, const float* shift, float* mean, float* variance,
                             int64_t cols, cudaStream_t stream) {
  if (cols == 0) return cudaSuccess;
  BatchNormMomentsKernel<<<Blocks(cols), kThreads, 0, stream>>>(sums, shift, mean, variance, cols);
  return Launched();
}

cudaError_t BatchNormForward(const float* x, const float* mean, const float* variance,
                             const float* gamma, const float* beta, float epsilon, float* y,
                             int64_t rows, int64_t cols, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n == 0) return cudaSuccess;
  BatchNormForwardKernel<<<Blocks(n), kThreads, 0, stream>>>(x, mean, variance, gamma, beta,
                                                             epsilon, y, n, cols);
  return Launched();
}

cudaError_t BatchNormGradSums(const float* x, const float* mean, const float* variance,
                              float epsilon, const float* dy, float* sums, int64_t rows,
                              int64_t cols, cudaStream_t stream) {
  if (cols == 0) return cudaSuccess;
  BatchNormGradSumsKernel<<<static_cast<unsigned>(cols), kThreads, 0, stream>>>(
      x, mean, variance, epsilon, dy, sums, rows, cols);
  return Launched();
}

cudaError_t BatchNormInputGrad(const float* x, const float* mean, const float* variance,
                               const float* gamma, float epsilon, const float* sums,
                               const float* dy, float* dx, int64_t rows, int64_t cols,
                               cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n == 0) return cudaSuccess;
  BatchNormInputGradKernel<<<Blocks(n), kThreads, 0, stream>>>(x, mean, variance, gamma, epsilon,
                                                               sums, dy, dx, n, cols);
  return Launched();
}

cudaError_t MeanSquaredError(const float* predictions, const float* targets, int64_t rows,
                             int64_t cols, float grad_scale, float* dpredictions,
                             LossSums* partials, LossSums* total, cudaStream_t stream) {
  const int blocks = LossBlocks(rows);
  MeanSquaredErrorKernel<<<blocks, kThreads, 0, stream>>>(predictions, targets, rows, cols,
                                                          grad_scale, dpredictions, partials);
  ReduceLossPartialsKernel<<<1, kThreads, 0, stream>>>(partials, blocks, total);
  return Launched();
}

cudaError_t GatherRows(const float* table, int64_t table_rows, const int64_t* ids, int64_t n,
                       int64_t d, float* out, DeviceFault* fault, cudaStream_t stream) {
  if (n * d == 0) return cudaSuccess;
  GatherRowsKernel<<<Blocks(n * d), kThreads, 0, stream>>>(table, table_rows, ids, n, d, out,
                                                           fault);
  return Launched();
}

cudaError_t ScatterRows(const float* rows, const int64_t* ids, int64_t n, int64_t d, float* out,
                        int64_t out_rows, bool accumulate, DeviceFault* fault,
                        cudaStream_t stream) {
  if (n * d == 0) return cudaSuccess;
  ScatterRowsKernel<<<Blocks(n * d), kThreads, 0, stream>>>(rows, ids, n, d, out, out_rows,
                                                            accumulate, fault);
  return Launched();
}

cudaError_t Fill(float value, float* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  FillKernel<<<Blocks(n), kThreads, 0, stream>>>(value, x, n);
  return Launched();
}

cudaError_t Axpy(float alpha, const float* x, float* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  AxpyKernel<<<Blocks(n), kThreads, 0, stream>>>(alpha, x, y, n);
  return Launched();
}

cudaError_t Scale(float alpha, float* x, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  ScaleKernel<<<Blocks(n), kThreads, 0, stream>>>(alpha, x, n);
  return Launched();
}

cudaError_t SgdMomentum(const float* grad, float learning_rate, float momentum, bool nesterov,
                        float* var, float* velocity, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  SgdMomentumKernel<<<Blocks(n), kThreads, 0, stream>>>(grad, learning_rate, momentum, nesterov,
                                                        var, velocity, n);
  return Launched();
}

cudaError_t Adam(const float* grad, float lr_t, float beta1, float beta2, float eps_hat, float* var,
                 float* m, float* v, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  AdamKernel<<<Blocks(n), kThreads, 0, stream>>>(grad, lr_t, beta1, beta2, eps_hat, var, m, v, n);
  return Launched();
}

cudaError_t SumBuffers(float* dst, const float* const* sources, int num_sources, int64_t n,
                       cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (num_sources < 1 || num_sources > kMaxSumSources) return cudaErrorInvalidValue;
  Sources s{};
  for (int i = 0; i < num_sources; ++i) s.p[i] = sources[i];
  SumBuffersKernel<<<Blocks(n), kThreads, 0, stream>>>(dst, s, num_sources, n);
  return Launched();
}

}  // namespace meshtrain::device_kernels
