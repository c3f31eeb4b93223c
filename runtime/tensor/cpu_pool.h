// Max and average pooling on the CPU over NHWC float tensors: loops over the
// window with the channels innermost, which the compiler vectorises (pooling is
// bound by memory, not arithmetic). Pure functions; shapes already checked
// against the geometry (CheckPool2D).
#ifndef MESHTRAIN_RUNTIME_TENSOR_CPU_POOL_H_
#define MESHTRAIN_RUNTIME_TENSOR_CPU_POOL_H_

#include "runtime/tensor/conv_params.h"

namespace meshtrain {

void CpuMaxPool2DForward(const Pool2DGeometry& geometry, const float* x, float* y);
// Each dy goes to the first maximum of its window in row-major order, found
// again from x.
void CpuMaxPool2DBackward(const Pool2DGeometry& geometry, const float* x, const float* dy,
                          float* dx);
// The mean over the window's unpadded positions, as TensorFlow's avg_pool.
void CpuAvgPool2DForward(const Pool2DGeometry& geometry, const float* x, float* y);
void CpuAvgPool2DBackward(const Pool2DGeometry& geometry, const float* dy, float* dx);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_CPU_POOL_H_
