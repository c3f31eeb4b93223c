// cuBLAS (libcublas, which brings libcublasLt), opened on first use instead of
// linked, so a CPU process never maps it (runtime/base/lazy_library.h).
// cublas_library.cc defines every cuBLAS function meshtrain calls; each
// forwards to libcublas, and returns CUBLAS_STATUS_NOT_INITIALIZED when it
// cannot be loaded, which CublasStatus turns into LoadCublas()'s message.
// Thread-safe.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CUDA_CUBLAS_LIBRARY_H_
#define MESHTRAIN_RUNTIME_TENSOR_CUDA_CUBLAS_LIBRARY_H_

#include "absl/status/status.h"

namespace meshtrain {

// OK once libcublas is loaded; else kFailedPrecondition naming the file and
// what to install. The first call loads it; every cuBLAS call does the same.
const absl::Status& LoadCublas();

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_CUDA_CUBLAS_LIBRARY_H_
