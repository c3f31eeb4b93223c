// Naive convolution and pooling over NHWC host tensors, written from the
// definitions (double accumulators, no tricks), that the CPU and CUDA kernels
// are compared with. Backward is the analytic gradient of the same loops.
#ifndef MESHTRAIN_TESTS_UNIT_TENSOR_CONV_REFERENCE_H_
#define MESHTRAIN_TESTS_UNIT_TENSOR_CONV_REFERENCE_H_

#include <cstdint>

#include "runtime/tensor/conv_params.h"
#include "runtime/tensor/kernels.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain::testing {

// Inputs for the comparisons: uniform in [-1, 1), a function of the seed.
Tensor UniformTensor(const Shape& shape, uint32_t seed);

Tensor RefConv2DForward(const Conv2DGeometry& g, const Tensor& x, const Tensor& filter,
                        const Tensor* bias, Activation act);
Tensor RefConv2DBackwardData(const Conv2DGeometry& g, const Tensor& dy, const Tensor& filter);
Tensor RefConv2DBackwardFilter(const Conv2DGeometry& g, const Tensor& x, const Tensor& dy);
Tensor RefBiasGrad(const Tensor& dy);  // dy summed over all but the last axis

Tensor RefMaxPool2DForward(const Pool2DGeometry& g, const Tensor& x);
Tensor RefMaxPool2DBackward(const Pool2DGeometry& g, const Tensor& x, const Tensor& dy);
Tensor RefAvgPool2DForward(const Pool2DGeometry& g, const Tensor& x);
Tensor RefAvgPool2DBackward(const Pool2DGeometry& g, const Tensor& dy);

}  // namespace meshtrain::testing

#endif  // MESHTRAIN_TESTS_UNIT_TENSOR_CONV_REFERENCE_H_
