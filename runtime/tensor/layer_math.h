// The per-value and per-row formulas of the layer kernels (activations,
// layer normalisation, squared error), written once for the CPU kernels and
// the CUDA kernels, so both compute alike formula for formula. Header-only
// (host and device); pure functions, thread-safe. `fn` numbers
// ActivationFn (kernels.h); softmax is a row operation and not a value's.
#ifndef MESHTRAIN_RUNTIME_TENSOR_LAYER_MATH_H_
#define MESHTRAIN_RUNTIME_TENSOR_LAYER_MATH_H_

#include <math.h>

#include <cstdint>

#include "runtime/tensor/counter_random.h"

namespace meshtrain::layer_math {

enum ActivationCode : int {
  kLinear = 0,
  kRelu = 1,
  kGelu = 2,
  kTanh = 3,
  kSigmoid = 4,
  kSoftmax = 5,
};

MESHTRAIN_HOST_DEVICE inline float GeluCdf(float x) {
  return 0.5f * (1.0f + erff(x * 0.70710678118654752f));
}

// y = f(x) for an element-wise activation (not softmax).
MESHTRAIN_HOST_DEVICE inline float Activate(int fn, float x) {
  switch (fn) {
    case kRelu:
      return x > 0.0f ? x : 0.0f;
    case kGelu:
      return x * GeluCdf(x);
    case kTanh:
      return tanhf(x);
    case kSigmoid:
      return 1.0f / (1.0f + expf(-x));
    default:
      return x;
  }
}

// dy * f'(x), given x and y = f(x) (not softmax).
MESHTRAIN_HOST_DEVICE inline float ActivateGrad(int fn, float x, float y, float dy) {
  switch (fn) {
    case kRelu:
      return x > 0.0f ? dy : 0.0f;
    case kGelu:
      return dy * (GeluCdf(x) + x * 0.39894228040143268f * expf(-0.5f * x * x));
    case kTanh:
      return dy * (1.0f - y * y);
    case kSigmoid:
      return dy * y * (1.0f - y);
    default:
      return dy;
  }
}

MESHTRAIN_HOST_DEVICE inline void SoftmaxRow(const float* x, float* y, int64_t cols) {
  float max = x[0];
  for (int64_t c = 1; c < cols; ++c) max = x[c] > max ? x[c] : max;
  float sum = 0.0f;
  for (int64_t c = 0; c < cols; ++c) sum += (y[c] = expf(x[c] - max));
  const float inv = 1.0f / sum;
  for (int64_t c = 0; c < cols; ++c) y[c] *= inv;
}

// dx = y * (dy - sum(dy * y)); dx may be dy.
MESHTRAIN_HOST_DEVICE inline void SoftmaxGradRow(const float* y, const float* dy, float* dx,
                                                 int64_t cols) {
  float dot = 0.0f;
  for (int64_t c = 0; c < cols; ++c) dot += dy[c] * y[c];
  for (int64_t c = 0; c < cols; ++c) dx[c] = y[c] * (dy[c] - dot);
}

MESHTRAIN_HOST_DEVICE inline float DropoutValue(float rate, float scale, uint64_t key, int64_t i,
                                                float x) {
  return DropoutKeeps(key, static_cast<uint64_t>(i), rate) ? x * scale : 0.0f;
}

// One row of layer normalisation; returns mean and 1/sqrt(var + epsilon).
MESHTRAIN_HOST_DEVICE inline void LayerNormRow(const float* x, const float* gamma,
                                               const float* beta, float epsilon, int64_t cols,
                                               float* y, float* mean, float* rstd) {
  float sum = 0.0f;
  for (int64_t c = 0; c < cols; ++c) sum += x[c];
  const float mu = sum / static_cast<float>(cols);
  float squares = 0.0f;
  for (int64_t c = 0; c < cols; ++c) squares += (x[c] - mu) * (x[c] - mu);
  const float inv = 1.0f / sqrtf(squares / static_cast<float>(cols) + epsilon);
  for (int64_t c = 0; c < cols; ++c) y[c] = (x[c] - mu) * inv * gamma[c] + beta[c];
  *mean = mu;
  *rstd = inv;
}

// With xhat = (x - mean) * rstd and g = dy * gamma:
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
MESHTRAIN_HOST_DEVICE inline void LayerNormInputGradRow(const float* x, const float* gamma,
                                                        float mean, float rstd, const float* dy,
                                                        int64_t cols, float* dx) {
  float sum_g = 0.0f, sum_gx = 0.0f;
  for (int64_t c = 0; c < cols; ++c) {
    const float xhat = (x[c] - mean) * rstd;
    sum_g += dy[c] * gamma[c];
    sum_gx += dy[c] * gamma[c] * xhat;
  }
  const float mean_g = sum_g / static_cast<float>(cols);
  const float mean_gx = sum_gx / static_cast<float>(cols);
  for (int64_t c = 0; c < cols; ++c) {
    const float xhat = (x[c] - mean) * rstd;
    dx[c] = rstd * (dy[c] * gamma[c] - mean_g - xhat * mean_gx);
  }
}

// Batch normalisation's per-channel formulas (kernels.h: BatchNorm*), from
// sums whose count is `count` rows.
MESHTRAIN_HOST_DEVICE inline void BatchNormMoments(float shifted_sum, float shifted_squares,
                                                   float count, float shift, float* mean,
                                                   float* variance) {
  const float m = count > 0.0f ? shifted_sum / count : 0.0f;
  const float v = count > 0.0f ? shifted_squares / count - m * m : 0.0f;
  *mean = shift + m;
  *variance = v > 0.0f ? v : 0.0f;
}

MESHTRAIN_HOST_DEVICE inline float BatchNormRstd(float variance, float epsilon) {
  return 1.0f / sqrtf(variance + epsilon);
}

// dx of one value: gamma * rstd * (dy - sum_dy / count - xhat * sum_dy_xhat / count).
MESHTRAIN_HOST_DEVICE inline float BatchNormInputGrad(float dy, float xhat, float gamma_rstd,
                                                      float mean_dy, float mean_dy_xhat) {
  return gamma_rstd * (dy - mean_dy - xhat * mean_dy_xhat);
}

// One example's mean squared error over `cols` outputs; d (nullable) gets
// 2 (p - t) / cols * scale; *hit says every |p - t| < 0.5.
MESHTRAIN_HOST_DEVICE inline float SquaredErrorRow(const float* p, const float* t, int64_t cols,
                                                   float scale, float* d, bool* hit) {
  const float inv_cols = 1.0f / static_cast<float>(cols);
  float sum = 0.0f;
  bool all = true;
  for (int64_t c = 0; c < cols; ++c) {
    const float e = p[c] - t[c];
    sum += e * e;
    all = all && fabsf(e) < 0.5f;
    if (d != nullptr) d[c] = 2.0f * e * inv_cols * scale;
  }
  *hit = all;
  return sum * inv_cols;
}

}  // namespace meshtrain::layer_math

#endif  // MESHTRAIN_RUNTIME_TENSOR_LAYER_MATH_H_
