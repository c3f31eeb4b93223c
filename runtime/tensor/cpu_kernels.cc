#include "runtime/tensor/cpu_kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/base/check.h"
#include "runtime/base/vectorize.h"
#include "runtime/tensor/cpu_pool.h"
#include "runtime/tensor/dnnl_conv.h"
#include "runtime/tensor/layer_math.h"

namespace meshtrain {
namespace {

MESHTRAIN_VECTORIZED
void BiasReluRows(const float* __restrict bias, float* __restrict y, int64_t rows, int64_t cols,
                  bool relu) {
  for (int64_t r = 0; r < rows; ++r) {
    float* __restrict row = y + r * cols;
    if (relu) {
      for (int64_t c = 0; c < cols; ++c) row[c] = std::max(row[c] + bias[c], 0.0f);
    } else {
      for (int64_t c = 0; c < cols; ++c) row[c] += bias[c];
    }
  }
}

MESHTRAIN_VECTORIZED
void BiasReluGradRows(const float* __restrict y, float* __restrict dy, float* __restrict db,
                      int64_t rows, int64_t cols, bool relu) {
  std::fill(db, db + cols, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    const float* __restrict yr = y + r * cols;
    float* __restrict dr = dy + r * cols;
    if (relu) {
      for (int64_t c = 0; c < cols; ++c) {
        float g = yr[c] > 0.0f ? dr[c] : 0.0f;
        dr[c] = g;
        db[c] += g;
      }
    } else {
      for (int64_t c = 0; c < cols; ++c) db[c] += dr[c];
    }
  }
}

MESHTRAIN_VECTORIZED
void AxpyLoop(float alpha, const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

MESHTRAIN_VECTORIZED
void ScaleLoop(float alpha, float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}

MESHTRAIN_VECTORIZED
void SgdMomentumLoop(const float* __restrict g, float lr, float momentum, bool nesterov,
                     float* __restrict w, float* __restrict v, int64_t n) {
  if (nesterov) {
    for (int64_t i = 0; i < n; ++i) {
      float vi = momentum * v[i] + g[i];
      v[i] = vi;
      w[i] -= lr * (g[i] + momentum * vi);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      float vi = momentum * v[i] + g[i];
      v[i] = vi;
      w[i] -= lr * vi;
    }
  }
}

MESHTRAIN_VECTORIZED
void AdamLoop(const float* __restrict g, float lr_t, float beta1, float beta2, float eps_hat,
              float* __restrict w, float* __restrict m, float* __restrict v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float mi = beta1 * m[i] + (1.0f - beta1) * g[i];
    float vi = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
    m[i] = mi;
    v[i] = vi;
    w[i] -= lr_t * mi / (std::sqrt(vi) + eps_hat);
  }
}

// Element-wise activations in one loop per function (the switch inside
// layer_math::Activate is hoisted by the compiler); softmax row by row.
void ActivateLoop(ActivationFn fn, const float* x, float* y, RowDims d) {
  const int code = static_cast<int>(fn);
  if (fn == ActivationFn::kSoftmax) {
    for (int64_t r = 0; r < d.rows; ++r)
      layer_math::SoftmaxRow(x + r * d.cols, y + r * d.cols, d.cols);
    return;
  }
  const int64_t n = d.rows * d.cols;
  for (int64_t i = 0; i < n; ++i) y[i] = layer_math::Activate(code, x[i]);
}

void ActivateGradLoop(ActivationFn fn, const float* x, const float* y, const float* dy, float* dx,
                      RowDims d) {
  const int code = static_cast<int>(fn);
  if (fn == ActivationFn::kSoftmax) {
    for (int64_t r = 0; r < d.rows; ++r) {
      const int64_t o = r * d.cols;
      layer_math::SoftmaxGradRow(y + o, dy + o, dx + o, d.cols);
    }
    return;
  }
  const int64_t n = d.rows * d.cols;
  for (int64_t i = 0; i < n; ++i) dx[i] = layer_math::ActivateGrad(code, x[i], y[i], dy[i]);
}

// A batch normalisation sums tensor [2k + 1] from its two column sums.
void WriteSums(const std::vector<double>& s1, const std::vector<double>& s2, const RowDims& d,
               Tensor& sums) {
  float* out = sums.data<float>();
  for (int64_t c = 0; c < d.cols; ++c) {
    out[c] = static_cast<float>(s1[c]);
    out[d.cols + c] = static_cast<float>(s2[c]);
  }
  out[2 * d.cols] = static_cast<float>(d.rows);
}

class CpuKernels final : public Kernels {
 public:
  explicit CpuKernels(Device device) : device_(device), conv_(DnnlConv2D::Options{}) {}

  Device device() const override { return device_; }
  Allocator& allocator() override { return CpuAllocator(); }

  void MatMul(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, float alpha,
              float beta, Tensor& c) override {
    const auto [m, n, k] = CheckMatMulDims(a, transpose_a, b, transpose_b, c);
    if (m == 0 || n == 0) return;
    if (k == 0) {
      // sgemm with k = 0 leaves beta * c; do it explicitly for clarity.
      if (beta == 0.0f)
        Fill(0.0f, c);
      else
        ScaleLoop(beta, c.data<float>(), c.num_elements());
      return;
    }
    cblas_sgemm(CblasRowMajor, transpose_a ? CblasTrans : CblasNoTrans,
                transpose_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a.data<float>(),
                static_cast<int>(a.shape().dim(1)), b.data<float>(),
                static_cast<int>(b.shape().dim(1)), beta, c.data<float>(), n);
  }

  void BiasActivation(const Tensor& bias, Activation act, Tensor& y) override {
    MESHTRAIN_CHECK(y.shape().rank() == 2 && bias.num_elements() == y.shape().dim(1))
        << bias.DebugString() << " + " << y.DebugString();
    BiasReluRows(bias.data<float>(), y.data<float>(), y.shape().dim(0), y.shape().dim(1),
                 act == Activation::kRelu);
  }

  void BiasActivationGrad(const Tensor& y, Activation act, Tensor& dy, Tensor& bias_grad) override {
    MESHTRAIN_CHECK(y.shape() == dy.shape() && bias_grad.num_elements() == y.shape().dim(1))
        << y.DebugString() << ", " << dy.DebugString() << ", " << bias_grad.DebugString();
    BiasReluGradRows(y.data<float>(), dy.data<float>(), bias_grad.data<float>(), y.shape().dim(0),
                     y.shape().dim(1), act == Activation::kRelu);
  }

  LossStats SoftmaxCrossEntropy(const Tensor& logits, const Tensor& labels, float grad_scale,
                                Tensor* dlogits) override {
    const int64_t n = logits.shape().dim(0), k = logits.shape().dim(1);
    MESHTRAIN_CHECK(labels.dtype() == DType::kInt32 && labels.num_elements() == n)
        << logits.DebugString() << " vs labels " << labels.DebugString();
    const float* x = logits.data<float>();
    const int32_t* y = labels.data<int32_t>();
    float* d = dlogits ? dlogits->data<float>() : nullptr;
    LossStats stats;
    for (int64_t r = 0; r < n; ++r) {
      const float* row = x + r * k;
      int64_t argmax = 0;
      for (int64_t c = 1; c < k; ++c) argmax = row[c] > row[argmax] ? c : argmax;
      const float max = row[argmax];
      float sum = 0.0f;
      for (int64_t c = 0; c < k; ++c) sum += std::exp(row[c] - max);
      const int32_t label = y[r];
      MESHTRAIN_CHECK(label >= 0 && label < k) << "label " << label << " with " << k << " classes";
      const float log_sum = std::log(sum);
      stats.loss_sum += static_cast<double>(log_sum - (row[label] - max));
      stats.correct += argmax == label;
      if (d != nullptr) {
        float* drow = d + r * k;
        const float inv = grad_scale / sum;
        for (int64_t c = 0; c < k; ++c) drow[c] = std::exp(row[c] - max) * inv;
        drow[label] -= grad_scale;
      }
    }
    return stats;
  }

  LossStats SigmoidCrossEntropy(const Tensor& logits, const Tensor& labels, float grad_scale,
                                Tensor* dlogits, Tensor* probabilities) override {
    const int64_t n = logits.num_elements();
    MESHTRAIN_CHECK(labels.dtype() == DType::kFloat32 && labels.num_elements() == n)
        << logits.DebugString() << " vs labels " << labels.DebugString();
    const float* x = logits.data<float>();
    const float* y = labels.data<float>();
    LossStats stats;
    for (int64_t i = 0; i < n; ++i) {
      // log(1 + e^-|x|) + max(x, 0) - x*y: stable for large |x|.
      const float z = x[i];
      stats.loss_sum +=
          static_cast<double>(std::log1p(std::exp(-std::fabs(z))) + std::max(z, 0.0f) - z * y[i]);
      const float p = 1.0f / (1.0f + std::exp(-z));
      stats.correct += (p > 0.5f) == (y[i] > 0.5f);
      if (dlogits != nullptr) dlogits->data<float>()[i] = (p - y[i]) * grad_scale;
      if (probabilities != nullptr) probabilities->data<float>()[i] = p;
    }
    return stats;
  }

  void GatherRows(const Tensor& table, const Tensor& ids, Tensor& out) override {
    const int64_t d = table.shape().row_elements();
    const int64_t n = ids.num_elements();
    MESHTRAIN_CHECK(ids.dtype() == DType::kInt64 && out.num_elements() == n * d)
        << table.DebugString() << "[" << ids.DebugString() << "] -> " << out.DebugString();
    const int64_t* id = ids.data<int64_t>();
    const float* src = table.data<float>();
    float* dst = out.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      MESHTRAIN_CHECK(id[i] >= 0 && id[i] < table.rows())
          << "row " << id[i] << " of " << table.DebugString();
      std::memcpy(dst + i * d, src + id[i] * d, static_cast<size_t>(d) * sizeof(float));
    }
  }

  void ScatterAddRows(const Tensor& rows, const Tensor& ids, Tensor& out) override {
    ForEachScatteredRow(rows, ids, out, [](const float* src, float* dst, int64_t d) {
      AxpyLoop(1.0f, src, dst, d);
    });
  }

  void ScatterRows(const Tensor& rows, const Tensor& ids, Tensor& out) override {
    ForEachScatteredRow(rows, ids, out, [](const float* src, float* dst, int64_t d) {
      std::memcpy(dst, src, static_cast<size_t>(d) * sizeof(float));
    });
  }

  void Activate(ActivationFn fn, const Tensor& x, Tensor& y) override {
    ActivateLoop(fn, x.data<float>(), y.data<float>(), CheckActivate(x, y));
  }

  void ActivateGrad(ActivationFn fn, const Tensor& x, const Tensor& y, const Tensor& dy,
                    Tensor& dx) override {
    ActivateGradLoop(fn, x.data<float>(), y.data<float>(), dy.data<float>(), dx.data<float>(),
                     CheckActivateGrad(x, y, dy, dx));
  }

  void Dropout(float rate, uint64_t key, const Tensor& x, Tensor& y) override {
    CheckDropout(rate, x, y);
    const float scale = 1.0f / (1.0f - rate);
    const float* in = x.data<float>();
    float* out = y.data<float>();
    const int64_t n = x.num_elements();
    for (int64_t i = 0; i < n; ++i) out[i] = layer_math::DropoutValue(rate, scale, key, i, in[i]);
  }

  void LayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon, Tensor& y,
                 Tensor& mean, Tensor& rstd) override {
    const RowDims d = CheckLayerNorm(x, gamma, beta, y, mean, rstd);
    for (int64_t r = 0; r < d.rows; ++r) {
      layer_math::LayerNormRow(x.data<float>() + r * d.cols, gamma.data<float>(),
                               beta.data<float>(), epsilon, d.cols, y.data<float>() + r * d.cols,
                               mean.data<float>() + r, rstd.data<float>() + r);
    }
  }

  void LayerNormGrad(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                     const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override {
    const RowDims d = CheckLayerNormGrad(x, mean, dy, dx, dgamma, dbeta);
    float* dg = dgamma.data<float>();
    float* db = dbeta.data<float>();
    std::fill(dg, dg + d.cols, 0.0f);
    std::fill(db, db + d.cols, 0.0f);
    for (int64_t r = 0; r < d.rows; ++r) {
      const float* xr = x.data<float>() + r * d.cols;
      const float* dyr = dy.data<float>() + r * d.cols;
      const float mu = mean.data<float>()[r], inv = rstd.data<float>()[r];
      for (int64_t c = 0; c < d.cols; ++c) {
        dg[c] += dyr[c] * ((xr[c] - mu) * inv);
        db[c] += dyr[c];
      }
      layer_math::LayerNormInputGradRow(xr, gamma.data<float>(), mu, inv, dyr, d.cols,
                                        dx.data<float>() + r * d.cols);
    }
  }

  // Column sums accumulate in double: a channel of a convolution's output
  // sums hundreds of thousands of rows.
  void BatchNormSums(const Tensor& x, const Tensor& shift, Tensor& sums) override {
    const RowDims d = CheckBatchNorm(x, {}, {&shift}, &sums);
    const float* in = x.data<float>();
    const float* mu = shift.data<float>();
    std::vector<double> s1(d.cols, 0.0), s2(d.cols, 0.0);
    for (int64_t r = 0; r < d.rows; ++r) {
      const float* row = in + r * d.cols;
      for (int64_t c = 0; c < d.cols; ++c) {
        const double v = static_cast<double>(row[c] - mu[c]);
        s1[c] += v;
        s2[c] += v * v;
      }
    }
    WriteSums(s1, s2, d, sums);
  }

  void BatchNormMoments(const Tensor& sums, const Tensor& shift, Tensor& mean,
                        Tensor& variance) override {
    const int64_t k = CheckBatchNormMoments(sums, shift, mean, variance);
    const float* s = sums.data<float>();
    for (int64_t c = 0; c < k; ++c) {
      layer_math::BatchNormMoments(s[c], s[k + c], s[2 * k], shift.data<float>()[c],
                                   mean.data<float>() + c, variance.data<float>() + c);
    }
  }

  void BatchNormForward(const Tensor& x, const Tensor& mean, const Tensor& variance,
                        const Tensor* gamma, const Tensor* beta, float epsilon,
                        Tensor& y) override {
    const RowDims d = CheckBatchNorm(x, {&y}, {&mean, &variance, gamma, beta}, nullptr);
    // y = x * scale + offset per channel.
    std::vector<float> scale(d.cols), offset(d.cols);
    for (int64_t c = 0; c < d.cols; ++c) {
      scale[c] = layer_math::BatchNormRstd(variance.data<float>()[c], epsilon) *
                 (gamma != nullptr ? gamma->data<float>()[c] : 1.0f);
      offset[c] =
          (beta != nullptr ? beta->data<float>()[c] : 0.0f) - mean.data<float>()[c] * scale[c];
    }
    const float* in = x.data<float>();
    float* out = y.data<float>();
    for (int64_t r = 0; r < d.rows; ++r) {
      const float* row = in + r * d.cols;
      float* out_row = out + r * d.cols;
      for (int64_t c = 0; c < d.cols; ++c) out_row[c] = row[c] * scale[c] + offset[c];
    }
  }

  void BatchNormGradSums(const Tensor& x, const Tensor& mean, const Tensor& variance, float epsilon,
                         const Tensor& dy, Tensor& sums) override {
    const RowDims d = CheckBatchNorm(x, {&dy}, {&mean, &variance}, &sums);
    std::vector<float> rstd(d.cols);
    for (int64_t c = 0; c < d.cols; ++c) {
      rstd[c] = layer_math::BatchNormRstd(variance.data<float>()[c], epsilon);
    }
    const float* mu = mean.data<float>();
    std::vector<double> s1(d.cols, 0.0), s2(d.cols, 0.0);
    for (int64_t r = 0; r < d.rows; ++r) {
      const float* row = x.data<float>() + r * d.cols;
      const float* g = dy.data<float>() + r * d.cols;
      for (int64_t c = 0; c < d.cols; ++c) {
        s1[c] += g[c];
        s2[c] += static_cast<double>(g[c] * ((row[c] - mu[c]) * rstd[c]));
      }
    }
    WriteSums(s1, s2, d, sums);
  }

  void BatchNormInputGrad(const Tensor& x, const Tensor& mean, const Tensor& variance,
                          const Tensor* gamma, float epsilon, const Tensor& sums, const Tensor& dy,
                          Tensor& dx) override {
    const RowDims d = CheckBatchNorm(x, {&dy, &dx}, {&mean, &variance, gamma}, &sums);
    const float* s = sums.data<float>();
    const float count = s[2 * d.cols];
    std::vector<float> rstd(d.cols), gamma_rstd(d.cols), mean_dy(d.cols), mean_dy_xhat(d.cols);
    for (int64_t c = 0; c < d.cols; ++c) {
      rstd[c] = layer_math::BatchNormRstd(variance.data<float>()[c], epsilon);
      gamma_rstd[c] = rstd[c] * (gamma != nullptr ? gamma->data<float>()[c] : 1.0f);
      mean_dy[c] = count > 0.0f ? s[c] / count : 0.0f;
      mean_dy_xhat[c] = count > 0.0f ? s[d.cols + c] / count : 0.0f;
    }
    const float* mu = mean.data<float>();
    for (int64_t r = 0; r < d.rows; ++r) {
      const float* row = x.data<float>() + r * d.cols;
      const float* g = dy.data<float>() + r * d.cols;
      float* out = dx.data<float>() + r * d.cols;
      for (int64_t c = 0; c < d.cols; ++c) {
        out[c] = layer_math::BatchNormInputGrad(g[c], (row[c] - mu[c]) * rstd[c], gamma_rstd[c],
                                                mean_dy[c], mean_dy_xhat[c]);
      }
    }
  }

  LossStats MeanSquaredError(const Tensor& predictions, const Tensor& targets, float grad_scale,
                             Tensor* dpredictions) override {
    const RowDims d = CheckMeanSquaredError(predictions, targets);
    LossStats stats;
    for (int64_t r = 0; r < d.rows; ++r) {
      const int64_t o = r * d.cols;
      bool hit = false;
      stats.loss_sum += static_cast<double>(layer_math::SquaredErrorRow(
          predictions.data<float>() + o, targets.data<float>() + o, d.cols, grad_scale,
          dpredictions ? dpredictions->data<float>() + o : nullptr, &hit));
      stats.correct += hit;
    }
    return stats;
  }

  void Fill(float value, Tensor& x) override {
    std::fill_n(x.data<float>(), x.num_elements(), value);
  }

  void Copy(const Tensor& src, Tensor& dst) override {
    MESHTRAIN_CHECK(src.bytes() == dst.bytes()) << src.DebugString() << " -> " << dst.DebugString();
    if (src.bytes() > 0 && src.raw_data() != dst.raw_data()) {
      std::memcpy(dst.raw_data(), src.raw_data(), src.bytes());
    }
  }

  void Axpy(float alpha, const Tensor& x, Tensor& y) override {
    MESHTRAIN_CHECK(x.num_elements() == y.num_elements())
        << x.DebugString() << ", " << y.DebugString();
    AxpyLoop(alpha, x.data<float>(), y.data<float>(), y.num_elements());
  }

  void Scale(float alpha, Tensor& x) override {
    ScaleLoop(alpha, x.data<float>(), x.num_elements());
  }

  void Conv2DForward(const Conv2DGeometry& g, const Tensor& x, const Tensor& filter,
                     const Tensor* bias, Activation act, Tensor& y) override {
    CheckConv2DForward(g, x, filter, bias, y);
    conv_.Forward(g, x, filter, bias, act, y);
  }

  void Conv2DBackwardData(const Conv2DGeometry& g, const Tensor& dy, const Tensor& filter,
                          Tensor& dx) override {
    CheckConv2DForward(g, dx, filter, nullptr, dy);
    conv_.BackwardData(g, dy, filter, dx);
  }

  void Conv2DBackwardFilter(const Conv2DGeometry& g, const Tensor& x, const Tensor& dy,
                            Tensor& dfilter, Tensor* bias_grad) override {
    CheckConv2DForward(g, x, dfilter, bias_grad, dy);
    conv_.BackwardFilter(g, x, dy, dfilter, bias_grad);
  }

  void MaxPool2DForward(const Pool2DGeometry& g, const Tensor& x, Tensor& y) override {
    CheckPool2D(g, x, y);
    CpuMaxPool2DForward(g, x.data<float>(), y.data<float>());
  }

  void MaxPool2DBackward(const Pool2DGeometry& g, const Tensor& x, const Tensor& y,
                         const Tensor& dy, Tensor& dx) override {
    CheckPool2D(g, x, y);
    CheckPool2D(g, dx, dy);
    CpuMaxPool2DBackward(g, x.data<float>(), dy.data<float>(), dx.data<float>());
  }

  void AvgPool2DForward(const Pool2DGeometry& g, const Tensor& x, Tensor& y) override {
    CheckPool2D(g, x, y);
    CpuAvgPool2DForward(g, x.data<float>(), y.data<float>());
  }

  void AvgPool2DBackward(const Pool2DGeometry& g, const Tensor& dy, Tensor& dx) override {
    CheckPool2D(g, dx, dy);
    CpuAvgPool2DBackward(g, dy.data<float>(), dx.data<float>());
  }

  void SgdUpdate(const Tensor& grad, float learning_rate, float momentum, bool nesterov,
                 Tensor& var, Tensor& velocity) override {
    MESHTRAIN_CHECK(grad.num_elements() == var.num_elements())
        << grad.DebugString() << " for " << var.DebugString();
    if (momentum == 0.0f) {
      AxpyLoop(-learning_rate, grad.data<float>(), var.data<float>(), var.num_elements());
      return;
    }
    MESHTRAIN_CHECK(velocity.num_elements() == var.num_elements()) << velocity.DebugString();
    SgdMomentumLoop(grad.data<float>(), learning_rate, momentum, nesterov, var.data<float>(),
                    velocity.data<float>(), var.num_elements());
  }

  void AdamUpdate(const Tensor& grad, const AdamParams& p, int64_t step, Tensor& var, Tensor& m,
                  Tensor& v) override {
    const AdamStep adam = CheckAdamUpdate(grad, p, step, var, m, v);
    AdamLoop(grad.data<float>(), adam.lr_t, p.beta1, p.beta2, adam.epsilon_hat, var.data<float>(),
             m.data<float>(), v.data<float>(), var.num_elements());
  }

  absl::Status Synchronize() override { return absl::OkStatus(); }

 private:
  // Calls fn(rows[i], out[ids[i]], row length) for every i, checking the ids.
  template <typename Fn>
  static void ForEachScatteredRow(const Tensor& rows, const Tensor& ids, Tensor& out, Fn fn) {
    const int64_t d = out.shape().row_elements();
    const int64_t n = ids.num_elements();
    MESHTRAIN_CHECK(ids.dtype() == DType::kInt64 && rows.num_elements() == n * d)
        << rows.DebugString() << " -> " << out.DebugString() << "[" << ids.DebugString() << "]";
    const int64_t* id = ids.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      MESHTRAIN_CHECK(id[i] >= 0 && id[i] < out.rows())
          << "row " << id[i] << " of " << out.DebugString();
      fn(rows.data<float>() + i * d, out.data<float>() + id[i] * d, d);
    }
  }

  Device device_;
  DnnlConv2D conv_;
};

}  // namespace

std::unique_ptr<Kernels> CreateCpuKernels(Device device) {
  return std::make_unique<CpuKernels>(device);
}

void SetBlasThreads(int threads) { openblas_set_num_threads(std::max(1, threads)); }
int BlasThreads() { return openblas_get_num_threads(); }

}  // namespace meshtrain
