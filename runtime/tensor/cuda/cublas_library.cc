// Forwarding definitions of the cuBLAS functions meshtrain calls (the _v2
// names cublas_v2.h maps them to). A function missing here is a link error
// naming it: add it to the list.
#include "runtime/tensor/cuda/cublas_library.h"

#include <cublas_v2.h>

#include "runtime/base/lazy_library.h"

namespace meshtrain {
namespace {

LazyLibrary& Cublas() {
  static LazyLibrary* const library = new LazyLibrary(
      {MESHTRAIN_CUBLAS_SONAME, MESHTRAIN_CUBLAS_DIR, "install the CUDA toolkit's cuBLAS"});
  return *library;
}

}  // namespace

const absl::Status& LoadCublas() { return Cublas().Load(); }

}  // namespace meshtrain

// The functions returning cublasStatus_t: name, (parameters), (arguments).
#define MESHTRAIN_CUBLAS_FUNCTIONS(X)                                                         \
  X(cublasCreate_v2, (cublasHandle_t * handle), (handle))                                     \
  X(cublasDestroy_v2, (cublasHandle_t handle), (handle))                                      \
  X(cublasSetMathMode, (cublasHandle_t handle, cublasMath_t mode), (handle, mode))            \
  X(cublasSetStream_v2, (cublasHandle_t handle, cudaStream_t stream), (handle, stream))       \
  X(cublasSgemm_v2,                                                                           \
    (cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n, \
     int k, const float* alpha, const float* a, int lda, const float* b, int ldb,             \
     const float* beta, float* c, int ldc),                                                   \
    (handle, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))

#define MESHTRAIN_CUBLAS_FORWARD(name, params, args)                                               \
  MESHTRAIN_LAZY_FORWARD(meshtrain::Cublas(), CUBLAS_STATUS_NOT_INITIALIZED, cublasStatus_t, name, \
                         params, args)
MESHTRAIN_CUBLAS_FUNCTIONS(MESHTRAIN_CUBLAS_FORWARD)

// CublasStatus names a missing library before it asks for these.
MESHTRAIN_LAZY_FORWARD(meshtrain::Cublas(), "CUBLAS_STATUS_NOT_INITIALIZED", const char*,
                       cublasGetStatusName, (cublasStatus_t status), (status))
MESHTRAIN_LAZY_FORWARD(meshtrain::Cublas(), "cuBLAS could not be loaded", const char*,
                       cublasGetStatusString, (cublasStatus_t status), (status))
