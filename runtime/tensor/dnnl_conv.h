// DnnlConv2D: 2-D convolution forward and backward through oneDNN primitives.
// Creating a primitive costs far more than running one on these shapes, so each
// geometry's primitives are created on first use and kept; a model has a handful
// of geometries (its conv layers times the batch sizes it sees).
//
// The caller's tensors are NHWC with HWIO filters. oneDNN runs on them in place
// (its nhwc kernels) or in the blocked layout it prefers (nChw16c on AVX-512),
// reordering on the way in and out; Layout says which (docs/benchmarks.md
// measures them). Filters are always reordered to the primitive's layout: they
// are small.
// Threads: oneDNN runs OpenMP teams of BlasThreads() threads (the cores of one
// replica), set on the calling thread before each call; libdnnl is opened on
// the first call (dnnl_library.h).
// Not thread-safe: one object per replica.
#ifndef MESHTRAIN_RUNTIME_TENSOR_DNNL_CONV_H_
#define MESHTRAIN_RUNTIME_TENSOR_DNNL_CONV_H_

#include <memory>
#include <string>

#include "runtime/tensor/cpu_conv.h"

namespace meshtrain {

class DnnlConv2D final : public CpuConv2D {
 public:
  enum class Layout {
    kNhwc,     // always the caller's NHWC
    kBlocked,  // always what oneDNN prefers
    kAuto,     // NHWC unless oneDNN has only its slow reference kernel for it
  };
  struct Options {
    Layout layout = Layout::kAuto;
  };
  explicit DnnlConv2D(Options options);
  ~DnnlConv2D();
  DnnlConv2D(const DnnlConv2D&) = delete;
  DnnlConv2D& operator=(const DnnlConv2D&) = delete;

  void Forward(const Conv2DGeometry& geometry, const Tensor& x, const Tensor& filter,
               const Tensor* bias, Activation act, Tensor& y) override;
  void BackwardData(const Conv2DGeometry& geometry, const Tensor& dy, const Tensor& filter,
                    Tensor& dx) override;
  void BackwardFilter(const Conv2DGeometry& geometry, const Tensor& x, const Tensor& dy,
                      Tensor& dfilter, Tensor* bias_grad) override;

  // The oneDNN implementations chosen for `geometry` ("fwd jit:avx512_core,
  // bwd_d ..."), for benchmarks.
  std::string Describe(const Conv2DGeometry& geometry);

 private:
  struct Impl;
  // Created on first use: creating oneDNN's engine opens libdnnl
  // (dnnl_library.h), which a process without convolutions never does.
  Impl& impl();

  Options options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_DNNL_CONV_H_
