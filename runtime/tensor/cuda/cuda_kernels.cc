#include "runtime/tensor/cuda/cuda_kernels.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/tensor/cuda/conv_kernels.h"
#include "runtime/tensor/cuda/cuda_device.h"
#include "runtime/tensor/cuda/cuda_status.h"
#include "runtime/tensor/cuda/device_kernels.h"
#include "runtime/tensor/cuda/input_stager.h"
#include "runtime/tensor/cuda/scoped_device.h"

namespace meshtrain {
namespace {

namespace dk = device_kernels;

const float* OrNull(const Tensor* t) { return t != nullptr ? t->data<float>() : nullptr; }

// The head of the scratch buffer, copied back after a loss or at Synchronize.
struct ScratchHead {
  dk::DeviceFault fault;
  dk::LossSums total;
};

class CudaKernels final : public Kernels {
 public:
  static absl::StatusOr<std::unique_ptr<Kernels>> Create(Device device) {
    MESHTRAIN_ASSIGN_OR_RETURN(CudaDevice * cuda, CudaDevice::Get(device));
    auto kernels = std::unique_ptr<CudaKernels>(new CudaKernels(*cuda));
    ScopedCudaDevice scoped(cuda->ordinal());
    MESHTRAIN_RETURN_IF_ERROR(scoped.status());
    const std::string& where = cuda->description();
    MESHTRAIN_RETURN_IF_ERROR(
        CublasStatus(cublasCreate(&kernels->blas_), absl::StrCat("cublasCreate on ", where)));
    MESHTRAIN_RETURN_IF_ERROR(CublasStatus(cublasSetStream(kernels->blas_, cuda->stream()),
                                           absl::StrCat("cublasSetStream on ", where)));
    // Full float32 products (no TF32), so results match the CPU kernels.
    MESHTRAIN_RETURN_IF_ERROR(CublasStatus(cublasSetMathMode(kernels->blas_, CUBLAS_DEFAULT_MATH),
                                           absl::StrCat("cublasSetMathMode on ", where)));
    MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaHostAlloc(reinterpret_cast<void**>(&kernels->host_head_),
                                                 sizeof(ScratchHead), cudaHostAllocDefault),
                                   absl::StrCat("cudaHostAlloc for loss results on ", where));
    MESHTRAIN_RETURN_IF_ERROR(kernels->ReserveScratch(1));
    MESHTRAIN_ASSIGN_OR_RETURN(kernels->stager_, InputStager::Create(*cuda));
    return std::unique_ptr<Kernels>(std::move(kernels));
  }

  ~CudaKernels() override {
    ScopedCudaDevice scoped(cuda_.ordinal());
    absl::Status status = CudaStatus(cudaStreamSynchronize(stream_), "draining the stream");
    stager_.reset();
    if (blas_ != nullptr) status.Update(CublasStatus(cublasDestroy(blas_), "cublasDestroy"));
    if (host_head_ != nullptr) status.Update(CudaStatus(cudaFreeHost(host_head_), "cudaFreeHost"));
    if (!status.ok()) {
      MESHTRAIN_LOG(WARNING) << cuda_.description() << ": " << status;
    }
  }

  Device device() const override { return cuda_.device(); }
  Allocator& allocator() override { return cuda_.allocator(); }

  void MatMul(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, float alpha,
              float beta, Tensor& c) override {
    const auto [m, n, k] = CheckMatMulDims(a, transpose_a, b, transpose_b, c);
    if (m == 0 || n == 0) return;
    if (k == 0) {
      if (beta == 0.0f)
        Fill(0.0f, c);
      else
        Scale(beta, c);
      return;
    }
    ScopedCudaDevice scoped(cuda_.ordinal());
    // Row-major C[m,n] = op(A) op(B) is column-major C^T[n,m] = op(B)^T op(A)^T,
    // and a row-major matrix read column-major is its transpose: pass B first.
    RecordBlas(cublasSgemm(blas_, transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                           transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha,
                           b.data<float>(), static_cast<int>(b.shape().dim(1)), a.data<float>(),
                           static_cast<int>(a.shape().dim(1)), &beta, c.data<float>(), n),
               "cublasSgemm");
  }

  void BiasActivation(const Tensor& bias, Activation act, Tensor& y) override {
    MESHTRAIN_CHECK(y.shape().rank() == 2 && bias.num_elements() == y.shape().dim(1))
        << bias.DebugString() << " + " << y.DebugString();
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::BiasActivation(bias.data<float>(), y.data<float>(), y.shape().dim(0),
                              y.shape().dim(1), act == Activation::kRelu, stream_),
           "bias activation");
  }

  void BiasActivationGrad(const Tensor& y, Activation act, Tensor& dy, Tensor& bias_grad) override {
    MESHTRAIN_CHECK(y.shape() == dy.shape() && bias_grad.num_elements() == y.shape().dim(1))
        << y.DebugString() << ", " << dy.DebugString() << ", " << bias_grad.DebugString();
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::BiasActivationGrad(y.data<float>(), dy.data<float>(), bias_grad.data<float>(),
                                  y.shape().dim(0), y.shape().dim(1), act == Activation::kRelu,
                                  stream_),
           "bias activation gradient");
  }

  LossStats SoftmaxCrossEntropy(const Tensor& logits, const Tensor& labels, float grad_scale,
                                Tensor* dlogits) override {
    const int64_t n = logits.shape().dim(0), k = logits.shape().dim(1);
    MESHTRAIN_CHECK(labels.dtype() == DType::kInt32 && labels.num_elements() == n)
        << logits.DebugString() << " vs labels " << labels.DebugString();
    ScopedCudaDevice scoped(cuda_.ordinal());
    if (!ReserveScratch(n).ok()) return {};
    Record(dk::SoftmaxCrossEntropy(logits.data<float>(), labels.data<int32_t>(), n, k, grad_scale,
                                   dlogits ? dlogits->data<float>() : nullptr, Partials(),
                                   &Head()->total, &Head()->fault, stream_),
           "softmax cross-entropy");
    return ReadLoss("softmax cross-entropy");
  }

  LossStats SigmoidCrossEntropy(const Tensor& logits, const Tensor& labels, float grad_scale,
                                Tensor* dlogits, Tensor* probabilities) override {
    const int64_t n = logits.num_elements();
    MESHTRAIN_CHECK(labels.dtype() == DType::kFloat32 && labels.num_elements() == n)
        << logits.DebugString() << " vs labels " << labels.DebugString();
    ScopedCudaDevice scoped(cuda_.ordinal());
    if (!ReserveScratch(n).ok()) return {};
    Record(dk::SigmoidCrossEntropy(logits.data<float>(), labels.data<float>(), n, grad_scale,
                                   dlogits ? dlogits->data<float>() : nullptr,
                                   probabilities ? probabilities->data<float>() : nullptr,
                                   Partials(), &Head()->total, stream_),
           "sigmoid cross-entropy");
    return ReadLoss("sigmoid cross-entropy");
  }

  void GatherRows(const Tensor& table, const Tensor& ids, Tensor& out) override {
    const int64_t d = table.shape().row_elements();
    const int64_t n = ids.num_elements();
    MESHTRAIN_CHECK(ids.dtype() == DType::kInt64 && out.num_elements() == n * d)
        << table.DebugString() << "[" << ids.DebugString() << "] -> " << out.DebugString();
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::GatherRows(table.data<float>(), table.rows(), ids.data<int64_t>(), n, d,
                          out.data<float>(), &Head()->fault, stream_),
           "gather rows");
    fault_pending_ = true;
  }

  void ScatterAddRows(const Tensor& rows, const Tensor& ids, Tensor& out) override {
    Scatter(rows, ids, out, /*accumulate=*/true);
  }

  void ScatterRows(const Tensor& rows, const Tensor& ids, Tensor& out) override {
    Scatter(rows, ids, out, /*accumulate=*/false);
  }

  void Activate(ActivationFn fn, const Tensor& x, Tensor& y) override {
    const RowDims d = CheckActivate(x, y);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::Activate(static_cast<int>(fn), x.data<float>(), y.data<float>(), d.rows, d.cols,
                        stream_),
           "activation");
  }

  void ActivateGrad(ActivationFn fn, const Tensor& x, const Tensor& y, const Tensor& dy,
                    Tensor& dx) override {
    const RowDims d = CheckActivateGrad(x, y, dy, dx);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::ActivateGrad(static_cast<int>(fn), x.data<float>(), y.data<float>(),
                            dy.data<float>(), dx.data<float>(), d.rows, d.cols, stream_),
           "activation gradient");
  }

  void Dropout(float rate, uint64_t key, const Tensor& x, Tensor& y) override {
    CheckDropout(rate, x, y);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::Dropout(rate, key, x.data<float>(), y.data<float>(), x.num_elements(), stream_),
           "dropout");
  }

  void LayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float epsilon, Tensor& y,
                 Tensor& mean, Tensor& rstd) override {
    const RowDims d = CheckLayerNorm(x, gamma, beta, y, mean, rstd);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::LayerNorm(x.data<float>(), gamma.data<float>(), beta.data<float>(), epsilon,
                         y.data<float>(), mean.data<float>(), rstd.data<float>(), d.rows, d.cols,
                         stream_),
           "layer norm");
  }

  void LayerNormGrad(const Tensor& x, const Tensor& gamma, const Tensor& mean, const Tensor& rstd,
                     const Tensor& dy, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override {
    const RowDims d = CheckLayerNormGrad(x, mean, dy, dx, dgamma, dbeta);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::LayerNormGrad(x.data<float>(), gamma.data<float>(), mean.data<float>(),
                             rstd.data<float>(), dy.data<float>(), dx.data<float>(),
                             dgamma.data<float>(), dbeta.data<float>(), d.rows, d.cols, stream_),
           "layer norm gradient");
  }

  void BatchNormSums(const Tensor& x, const Tensor& shift, Tensor& sums) override {
    const RowDims d = CheckBatchNorm(x, {}, {&shift}, &sums);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::BatchNormSums(x.data<float>(), shift.data<float>(), sums.data<float>(), d.rows,
                             d.cols, stream_),
           "batch norm sums");
  }

  void BatchNormMoments(const Tensor& sums, const Tensor& shift, Tensor& mean,
                        Tensor& variance) override {
    const int64_t k = CheckBatchNormMoments(sums, shift, mean, variance);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::BatchNormMoments(sums.data<float>(), shift.data<float>(), mean.data<float>(),
                                variance.data<float>(), k, stream_),
           "batch norm moments");
  }

  void BatchNormForward(const Tensor& x, const Tensor& mean, const Tensor& variance,
                        const Tensor* gamma, const Tensor* beta, float epsilon,
                        Tensor& y) override {
    const RowDims d = CheckBatchNorm(x, {&y}, {&mean, &variance, gamma, beta}, nullptr);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::BatchNormForward(x.data<float>(), mean.data<float>(), variance.data<float>(),
                                OrNull(gamma), OrNull(beta), epsilon, y.data<float>(), d.rows,
                                d.cols, stream_),
           "batch norm");
  }

  void BatchNormGradSums(const Tensor& x, const Tensor& mean, const Tensor& variance, float epsilon,
                         const Tensor& dy, Tensor& sums) override {
    const RowDims d = CheckBatchNorm(x, {&dy}, {&mean, &variance}, &sums);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(
        dk::BatchNormGradSums(x.data<float>(), mean.data<float>(), variance.data<float>(), epsilon,
                              dy.data<float>(), sums.data<float>(), d.rows, d.cols, stream_),
        "batch norm gradient sums");
  }

  void BatchNormInputGrad(const Tensor& x, const Tensor& mean, const Tensor& variance,
                          const Tensor* gamma, float epsilon, const Tensor& sums, const Tensor& dy,
                          Tensor& dx) override {
    const RowDims d = CheckBatchNorm(x, {&dy, &dx}, {&mean, &variance, gamma}, &sums);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::BatchNormInputGrad(x.data<float>(), mean.data<float>(), variance.data<float>(),
                                  OrNull(gamma), epsilon, sums.data<float>(), dy.data<float>(),
                                  dx.data<float>(), d.rows, d.cols, stream_),
           "batch norm input gradient");
  }

  LossStats MeanSquaredError(const Tensor& predictions, const Tensor& targets, float grad_scale,
                             Tensor* dpredictions) override {
    const RowDims d = CheckMeanSquaredError(predictions, targets);
    ScopedCudaDevice scoped(cuda_.ordinal());
    if (!ReserveScratch(d.rows).ok()) return {};
    Record(dk::MeanSquaredError(predictions.data<float>(), targets.data<float>(), d.rows, d.cols,
                                grad_scale, dpredictions ? dpredictions->data<float>() : nullptr,
                                Partials(), &Head()->total, stream_),
           "mean squared error");
    return ReadLoss("mean squared error");
  }

  void Fill(float value, Tensor& x) override {
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::Fill(value, x.data<float>(), x.num_elements(), stream_), "fill");
  }

  void Copy(const Tensor& src, Tensor& dst) override {
    MESHTRAIN_CHECK(src.bytes() == dst.bytes()) << src.DebugString() << " -> " << dst.DebugString();
    if (src.bytes() == 0 || src.raw_data() == dst.raw_data()) return;
    const Device from = src.device(), to = dst.device();
    if (from.is_cpu() && to.is_cpu()) {
      std::memcpy(dst.raw_data(), src.raw_data(), src.bytes());
      return;
    }
    ScopedCudaDevice scoped(cuda_.ordinal());
    if (!from.is_cpu() && from != device()) {
      // Another logical GPU queues its work on its own stream: let it finish.
      absl::StatusOr<CudaDevice*> other = CudaDevice::Get(from);
      if (!other.ok()) return RecordStatus(other.status());
      Record(cudaStreamSynchronize((*other)->stream()), "waiting for the source device of a copy");
    }
    Record(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), src.bytes(), cudaMemcpyDefault, stream_),
           "copy");
    // Host memory and other devices' buffers are read or written by the caller
    // as soon as Copy returns.
    if (from.is_cpu() || to != device()) Record(cudaStreamSynchronize(stream_), "copy");
  }

  void Axpy(float alpha, const Tensor& x, Tensor& y) override {
    MESHTRAIN_CHECK(x.num_elements() == y.num_elements())
        << x.DebugString() << ", " << y.DebugString();
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::Axpy(alpha, x.data<float>(), y.data<float>(), y.num_elements(), stream_), "axpy");
  }

  void Scale(float alpha, Tensor& x) override {
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::Scale(alpha, x.data<float>(), x.num_elements(), stream_), "scale");
  }

  void SgdUpdate(const Tensor& grad, float learning_rate, float momentum, bool nesterov,
                 Tensor& var, Tensor& velocity) override {
    MESHTRAIN_CHECK(grad.num_elements() == var.num_elements())
        << grad.DebugString() << " for " << var.DebugString();
    if (momentum == 0.0f) return Axpy(-learning_rate, grad, var);
    MESHTRAIN_CHECK(velocity.num_elements() == var.num_elements()) << velocity.DebugString();
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::SgdMomentum(grad.data<float>(), learning_rate, momentum, nesterov, var.data<float>(),
                           velocity.data<float>(), var.num_elements(), stream_),
           "sgd update");
  }

  void AdamUpdate(const Tensor& grad, const AdamParams& p, int64_t step, Tensor& var, Tensor& m,
                  Tensor& v) override {
    const AdamStep adam = CheckAdamUpdate(grad, p, step, var, m, v);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(
        dk::Adam(grad.data<float>(), adam.lr_t, p.beta1, p.beta2, adam.epsilon_hat,
                 var.data<float>(), m.data<float>(), v.data<float>(), var.num_elements(), stream_),
        "adam update");
  }

  void Conv2DForward(const Conv2DGeometry& g, const Tensor& x, const Tensor& filter,
                     const Tensor* bias, Activation act, Tensor& y) override {
    CheckConv2DForward(g, x, filter, bias, y);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::Conv2DForward(Window(g), x.data<float>(), filter.data<float>(), OrNull(bias),
                             act == Activation::kRelu, y.data<float>(), stream_),
           "conv2d forward");
  }

  void Conv2DBackwardData(const Conv2DGeometry& g, const Tensor& dy, const Tensor& filter,
                          Tensor& dx) override {
    CheckConv2DForward(g, dx, filter, nullptr, dy);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::Conv2DBackwardData(Window(g), dy.data<float>(), filter.data<float>(),
                                  dx.data<float>(), stream_),
           "conv2d backward data");
  }

  void Conv2DBackwardFilter(const Conv2DGeometry& g, const Tensor& x, const Tensor& dy,
                            Tensor& dfilter, Tensor* bias_grad) override {
    CheckConv2DForward(g, x, dfilter, bias_grad, dy);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::Conv2DBackwardFilter(Window(g), x.data<float>(), dy.data<float>(),
                                    dfilter.data<float>(),
                                    bias_grad ? bias_grad->data<float>() : nullptr, stream_),
           "conv2d backward filter");
  }

  void MaxPool2DForward(const Pool2DGeometry& g, const Tensor& x, Tensor& y) override {
    CheckPool2D(g, x, y);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::MaxPool2DForward(Window(g), x.data<float>(), y.data<float>(), stream_),
           "max_pool2d forward");
  }

  void MaxPool2DBackward(const Pool2DGeometry& g, const Tensor& x, const Tensor& y,
                         const Tensor& dy, Tensor& dx) override {
    CheckPool2D(g, x, y);
    CheckPool2D(g, dx, dy);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::MaxPool2DBackward(Window(g), x.data<float>(), dy.data<float>(), dx.data<float>(),
                                 stream_),
           "max_pool2d backward");
  }

  void AvgPool2DForward(const Pool2DGeometry& g, const Tensor& x, Tensor& y) override {
    CheckPool2D(g, x, y);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::AvgPool2DForward(Window(g), x.data<float>(), y.data<float>(), stream_),
           "average_pool2d forward");
  }

  void AvgPool2DBackward(const Pool2DGeometry& g, const Tensor& dy, Tensor& dx) override {
    CheckPool2D(g, dx, dy);
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::AvgPool2DBackward(Window(g), dy.data<float>(), dx.data<float>(), stream_),
           "average_pool2d backward");
  }

  absl::StatusOr<Batch> UploadBatch(const Batch& batch) override {
    const Device here = device();
    const bool inputs_here = batch.inputs.device() == here || batch.inputs.empty();
    const bool labels_here = batch.labels.device() == here || batch.labels.empty();
    if (inputs_here && labels_here) return batch;
    if (!batch.inputs.device().is_cpu() && !inputs_here) {
      return absl::InvalidArgumentError(absl::StrCat("batch inputs ", batch.inputs.DebugString(),
                                                     " are on another device than ",
                                                     cuda_.description()));
    }
    if (!batch.labels.device().is_cpu() && !labels_here) {
      return absl::InvalidArgumentError(absl::StrCat("batch labels ", batch.labels.DebugString(),
                                                     " are on another device than ",
                                                     cuda_.description()));
    }
    return stager_->Stage(batch);
  }

  absl::Status Synchronize() override {
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(cudaStreamSynchronize(stream_), "synchronize");
    if (fault_pending_ && error_.ok()) CheckFault("gather/scatter rows");
    absl::Status first = std::move(error_);
    error_ = absl::OkStatus();
    if (!first.ok()) return first;
    return scoped.status();
  }

 private:
  explicit CudaKernels(CudaDevice& cuda) : cuda_(cuda), stream_(cuda.stream()) {}

  void RecordStatus(absl::Status status) {
    if (!status.ok() && error_.ok()) error_ = Annotate(status, cuda_.description());
  }
  static dk::WindowGeometry Window(const Conv2DGeometry& g) {
    const Conv2DParams& p = g.params;
    return {p.batch,           p.height,       p.width,         p.in_channels,  p.out_channels,
            p.filter_height,   p.filter_width, p.stride_height, p.stride_width, g.rows.pad_before,
            g.cols.pad_before, g.rows.out,     g.cols.out};
  }
  static dk::WindowGeometry Window(const Pool2DGeometry& g) {
    const Pool2DParams& p = g.params;
    return {p.batch,           p.height,       p.width,         p.channels,     p.channels,
            p.window_height,   p.window_width, p.stride_height, p.stride_width, g.rows.pad_before,
            g.cols.pad_before, g.rows.out,     g.cols.out};
  }
  void Record(cudaError_t error, const char* op) {
    if (error != cudaSuccess) RecordStatus(CudaStatus(error, op));
  }
  void RecordBlas(cublasStatus_t status, const char* op) {
    if (status != CUBLAS_STATUS_SUCCESS) RecordStatus(CublasStatus(status, op));
  }

  ScratchHead* Head() { return scratch_.data<ScratchHead>(); }
  dk::LossSums* Partials() {
    return reinterpret_cast<dk::LossSums*>(scratch_.data<std::byte>() + sizeof(ScratchHead));
  }

  // The head plus room for the loss partial sums of n rows; a zeroed fault.
  absl::Status ReserveScratch(int64_t n) {
    const size_t bytes = sizeof(ScratchHead) + sizeof(dk::LossSums) * dk::LossBlocks(n);
    if (scratch_.bytes() >= bytes) return absl::OkStatus();
    absl::StatusOr<Tensor> grown =
        Tensor::Allocate(cuda_.allocator(), DType::kUInt8, Shape{static_cast<int64_t>(bytes)});
    if (!grown.ok()) {
      RecordStatus(grown.status());
      return grown.status();
    }
    // Keep a fault recorded in the old head.
    if (fault_pending_ && error_.ok()) CheckFault("gather/scatter rows");
    scratch_ = *std::move(grown);
    Record(cudaMemsetAsync(scratch_.raw_data(), 0, sizeof(ScratchHead), stream_),
           "zeroing scratch");
    return absl::OkStatus();
  }

  // Copies the head back (waiting for the stream) and turns a recorded fault
  // into an error.
  bool FetchHead(const char* op) {
    Record(cudaMemcpyAsync(host_head_, scratch_.raw_data(), sizeof(ScratchHead),
                           cudaMemcpyDeviceToHost, stream_),
           op);
    Record(cudaStreamSynchronize(stream_), op);
    if (!error_.ok()) return false;
    fault_pending_ = false;
    const dk::DeviceFault& fault = host_head_->fault;
    if (fault.kind == dk::kNoFault) return true;
    if (fault.kind == dk::kBadLabel) {
      RecordStatus(absl::InvalidArgumentError(
          absl::StrCat(op, ": label ", fault.value, " is out of range for ", fault.limit,
                       " classes; check the data's labels against the model's num_classes")));
    } else {
      RecordStatus(absl::InvalidArgumentError(absl::StrCat(
          op, ": row id ", fault.value, " is out of range for ", fault.limit, " rows")));
    }
    Record(cudaMemsetAsync(scratch_.raw_data(), 0, sizeof(dk::DeviceFault), stream_), op);
    return true;
  }

  void CheckFault(const char* op) { FetchHead(op); }

  LossStats ReadLoss(const char* op) {
    if (!FetchHead(op)) return {};
    return LossStats{host_head_->total.loss_sum, static_cast<int64_t>(host_head_->total.correct)};
  }

  void Scatter(const Tensor& rows, const Tensor& ids, Tensor& out, bool accumulate) {
    const int64_t d = out.shape().row_elements();
    const int64_t n = ids.num_elements();
    MESHTRAIN_CHECK(ids.dtype() == DType::kInt64 && rows.num_elements() == n * d)
        << rows.DebugString() << " -> " << out.DebugString() << "[" << ids.DebugString() << "]";
    ScopedCudaDevice scoped(cuda_.ordinal());
    Record(dk::ScatterRows(rows.data<float>(), ids.data<int64_t>(), n, d, out.data<float>(),
                           out.rows(), accumulate, &Head()->fault, stream_),
           accumulate ? "scatter-add rows" : "scatter rows");
    fault_pending_ = true;
  }

  CudaDevice& cuda_;
  cudaStream_t stream_;
  cublasHandle_t blas_ = nullptr;
  Tensor scratch_;                    // ScratchHead, then loss partial sums
  ScratchHead* host_head_ = nullptr;  // pinned
  bool fault_pending_ = false;        // a gather/scatter ran since the head was read
  std::unique_ptr<InputStager> stager_;
  absl::Status error_;  // the first error since Synchronize
};

}  // namespace

absl::StatusOr<std::unique_ptr<Kernels>> CreateCudaKernels(Device device) {
  absl::StatusOr<std::unique_ptr<Kernels>> kernels = CudaKernels::Create(device);
  if (!kernels.ok()) return Annotate(kernels.status(), device.ToString());
  return kernels;
}

}  // namespace meshtrain
