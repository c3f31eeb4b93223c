// Forwarding definitions of the CUDA runtime functions meshtrain calls. A
// function missing here is a link error naming it: add it to the list.
//
// Kernel registration is deferred. nvcc's code registers each .cu file's
// device code (its fat binary) and kernels from static initialisers, before
// main, so forwarding those calls would load libcudart into every process.
// Instead:
//   1. __cudaRegisterFatBinary records the fat binary and returns the record as
//      the handle nvcc's code keeps; __cudaRegisterFunction and
//      __cudaRegisterFatBinaryEnd add to that record.
//   2. The first CUDA call loads libcudart and, before it forwards, replays
//      every record into the runtime (which registers lazily itself), keeping
//      the runtime's handle in the record.
//   3. A registration after that goes straight to the runtime.
// A launch (<<<>>>) begins with __cudaPushCallConfiguration, a CUDA call like
// any other, so kernels are registered before the first launch.
#include "runtime/tensor/cuda/cuda_runtime_library.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "runtime/base/lazy_library.h"
#include "runtime/base/logging.h"

// nvcc's interface to the runtime, declared by crt/host_runtime.h and
// crt/device_functions.h, which only nvcc includes.
extern "C" {
void** __cudaRegisterFatBinary(void* fat_cubin);
void __cudaRegisterFatBinaryEnd(void** handle);
void __cudaUnregisterFatBinary(void** handle);
void __cudaRegisterFunction(void** handle, const char* host_function, char* device_function,
                            const char* device_name, int thread_limit, uint3* tid, uint3* bid,
                            dim3* block_dim, dim3* grid_dim, int* warp_size);
unsigned __cudaPushCallConfiguration(dim3 grid_dim, dim3 block_dim, size_t shared_bytes,
                                     struct CUstream_st* stream);
cudaError_t __cudaPopCallConfiguration(dim3* grid_dim, dim3* block_dim, size_t* shared_bytes,
                                       void* stream);
cudaError_t __cudaGetKernel(cudaKernel_t* kernel, const void* host_function);
cudaError_t __cudaLaunchKernel(cudaKernel_t kernel, dim3 grid_dim, dim3 block_dim, void** args,
                               size_t shared_bytes, cudaStream_t stream);
}

namespace meshtrain {
namespace {

// One kernel as nvcc's code registered it; the pointers are its static data.
struct KernelRecord {
  const char* host_function;
  char* device_function;
  const char* device_name;
  int thread_limit;
  uint3* tid;
  uint3* bid;
  dim3* block_dim;
  dim3* grid_dim;
  int* warp_size;
};

// One .cu file's device code; its address is the handle nvcc's code holds.
struct FatBinaryRecord {
  void* fat_cubin;
  std::vector<KernelRecord> kernels;
  bool ended = false;
  void** runtime_handle = nullptr;  // the runtime's handle, once registered with it
};

// The runtime's own registration functions.
struct RuntimeRegistration {
  void** (*register_fat_binary)(void*);
  void (*register_fat_binary_end)(void**);
  void (*register_function)(void**, const char*, char*, const char*, int, uint3*, uint3*, dim3*,
                            dim3*, int*);

  void Register(FatBinaryRecord& binary) const {
    binary.runtime_handle = register_fat_binary(binary.fat_cubin);
  }
  void Register(const FatBinaryRecord& binary, const KernelRecord& k) const {
    register_function(binary.runtime_handle, k.host_function, k.device_function, k.device_name,
                      k.thread_limit, k.tid, k.bid, k.block_dim, k.grid_dim, k.warp_size);
  }
};

// The registrations of this process (steps 1-3 above). Records are never
// freed: nvcc's code holds them until exit. Thread-safe.
class Registrations {
 public:
  FatBinaryRecord* AddFatBinary(void* fat_cubin) {
    absl::MutexLock lock(&mu_);
    auto* binary = new FatBinaryRecord{fat_cubin};
    binaries_.push_back(binary);
    if (runtime_ != nullptr) runtime_->Register(*binary);
    return binary;
  }
  void AddKernel(FatBinaryRecord* binary, const KernelRecord& kernel) {
    absl::MutexLock lock(&mu_);
    binary->kernels.push_back(kernel);
    if (runtime_ != nullptr) runtime_->Register(*binary, kernel);
  }
  void End(FatBinaryRecord* binary) {
    absl::MutexLock lock(&mu_);
    binary->ended = true;
    if (runtime_ != nullptr) runtime_->register_fat_binary_end(binary->runtime_handle);
  }
  // Registers everything recorded with the runtime, and what comes later.
  void Replay(const RuntimeRegistration& runtime) {
    absl::MutexLock lock(&mu_);
    runtime_ = new RuntimeRegistration(runtime);
    for (FatBinaryRecord* binary : binaries_) {
      runtime_->Register(*binary);
      for (const KernelRecord& kernel : binary->kernels) runtime_->Register(*binary, kernel);
      if (binary->ended) runtime_->register_fat_binary_end(binary->runtime_handle);
    }
  }

 private:
  absl::Mutex mu_;
  std::vector<FatBinaryRecord*> binaries_ ABSL_GUARDED_BY(mu_);
  const RuntimeRegistration* runtime_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// Constructed on first use: nvcc's static initialisers may run before this
// file's.
Registrations& TheRegistrations() {
  static Registrations* const registrations = new Registrations;
  return *registrations;
}

// Step 2: replays the registrations into the runtime that just opened.
void RegisterWithRuntime(void* handle) {
  const RuntimeRegistration runtime{
      reinterpret_cast<decltype(RuntimeRegistration::register_fat_binary)>(
          dlsym(handle, "__cudaRegisterFatBinary")),
      reinterpret_cast<decltype(RuntimeRegistration::register_fat_binary_end)>(
          dlsym(handle, "__cudaRegisterFatBinaryEnd")),
      reinterpret_cast<decltype(RuntimeRegistration::register_function)>(
          dlsym(handle, "__cudaRegisterFunction"))};
  if (runtime.register_fat_binary == nullptr || runtime.register_fat_binary_end == nullptr ||
      runtime.register_function == nullptr) {
    // Launches then fail with the runtime's own error.
    MESHTRAIN_LOG(ERROR) << "the CUDA runtime has no kernel registration functions: "
                            "no kernel of this binary can run";
    return;
  }
  TheRegistrations().Replay(runtime);
}

LazyLibrary& Cudart() {
  static LazyLibrary* const library =
      new LazyLibrary({MESHTRAIN_CUDART_SONAME, MESHTRAIN_CUDART_DIR,
                       "install the CUDA toolkit's runtime", false, RegisterWithRuntime});
  return *library;
}

}  // namespace

const absl::Status& LoadCudaRuntime() { return Cudart().Load(); }

}  // namespace meshtrain

extern "C" void** __cudaRegisterFatBinary(void* fat_cubin) {
  return reinterpret_cast<void**>(meshtrain::TheRegistrations().AddFatBinary(fat_cubin));
}

extern "C" void __cudaRegisterFunction(void** handle, const char* host_function,
                                       char* device_function, const char* device_name,
                                       int thread_limit, uint3* tid, uint3* bid, dim3* block_dim,
                                       dim3* grid_dim, int* warp_size) {
  meshtrain::TheRegistrations().AddKernel(reinterpret_cast<meshtrain::FatBinaryRecord*>(handle),
                                          {host_function, device_function, device_name,
                                           thread_limit, tid, bid, block_dim, grid_dim, warp_size});
}

extern "C" void __cudaRegisterFatBinaryEnd(void** handle) {
  meshtrain::TheRegistrations().End(reinterpret_cast<meshtrain::FatBinaryRecord*>(handle));
}

// nvcc's code calls this from an atexit handler registered before libcudart
// was loaded, so it runs after the exit handlers libcudart registered when it
// loaded: the runtime may be gone. The process is exiting and the driver frees
// its modules: nothing to do.
extern "C" void __cudaUnregisterFatBinary(void** handle) {}

// Returns nonzero when the launch cannot be configured: nvcc's code then skips
// the launch, and cudaGetLastError reports why.
MESHTRAIN_LAZY_FORWARD(meshtrain::Cudart(), 1u, unsigned, __cudaPushCallConfiguration,
                       (dim3 grid_dim, dim3 block_dim, size_t shared_bytes,
                        struct CUstream_st* stream),
                       (grid_dim, block_dim, shared_bytes, stream))

// The functions returning cudaError_t: name, (parameters), (arguments).
#define MESHTRAIN_CUDART_FUNCTIONS(X)                                                             \
  X(__cudaPopCallConfiguration,                                                                   \
    (dim3 * grid_dim, dim3 * block_dim, size_t * shared_bytes, void* stream),                     \
    (grid_dim, block_dim, shared_bytes, stream))                                                  \
  X(__cudaGetKernel, (cudaKernel_t * kernel, const void* host_function), (kernel, host_function)) \
  X(__cudaLaunchKernel,                                                                           \
    (cudaKernel_t kernel, dim3 grid_dim, dim3 block_dim, void** args, size_t shared_bytes,        \
     cudaStream_t stream),                                                                        \
    (kernel, grid_dim, block_dim, args, shared_bytes, stream))                                    \
  X(cudaEventCreateWithFlags, (cudaEvent_t * event, unsigned int flags), (event, flags))          \
  X(cudaEventDestroy, (cudaEvent_t event), (event))                                               \
  X(cudaEventQuery, (cudaEvent_t event), (event))                                                 \
  X(cudaEventRecord, (cudaEvent_t event, cudaStream_t stream), (event, stream))                   \
  X(cudaEventSynchronize, (cudaEvent_t event), (event))                                           \
  X(cudaFree, (void* device_ptr), (device_ptr))                                                   \
  X(cudaFreeHost, (void* ptr), (ptr))                                                             \
  X(cudaGetDevice, (int* device), (device))                                                       \
  X(cudaGetDeviceCount, (int* count), (count))                                                    \
  X(cudaGetDeviceProperties, (struct cudaDeviceProp * prop, int device), (prop, device))          \
  X(cudaGetLastError, (), ())                                                                     \
  X(cudaHostAlloc, (void** host_ptr, size_t size, unsigned int flags), (host_ptr, size, flags))   \
  X(cudaMalloc, (void** device_ptr, size_t size), (device_ptr, size))                             \
  X(cudaMemGetInfo, (size_t * free_bytes, size_t * total_bytes), (free_bytes, total_bytes))       \
  X(cudaMemcpyAsync,                                                                              \
    (void* dst, const void* src, size_t count, enum cudaMemcpyKind kind, cudaStream_t stream),    \
    (dst, src, count, kind, stream))                                                              \
  X(cudaMemcpyPeerAsync,                                                                          \
    (void* dst, int dst_device, const void* src, int src_device, size_t count,                    \
     cudaStream_t stream),                                                                        \
    (dst, dst_device, src, src_device, count, stream))                                            \
  X(cudaMemsetAsync, (void* device_ptr, int value, size_t count, cudaStream_t stream),            \
    (device_ptr, value, count, stream))                                                           \
  X(cudaPointerGetAttributes, (struct cudaPointerAttributes * attributes, const void* ptr),       \
    (attributes, ptr))                                                                            \
  X(cudaSetDevice, (int device), (device))                                                        \
  X(cudaStreamCreateWithFlags, (cudaStream_t * stream, unsigned int flags), (stream, flags))      \
  X(cudaStreamSynchronize, (cudaStream_t stream), (stream))                                       \
  X(cudaStreamWaitEvent, (cudaStream_t stream, cudaEvent_t event, unsigned int flags),            \
    (stream, event, flags))

#define MESHTRAIN_CUDART_FORWARD(name, params, args)                                          \
  MESHTRAIN_LAZY_FORWARD(meshtrain::Cudart(), cudaErrorInsufficientDriver, cudaError_t, name, \
                         params, args)
MESHTRAIN_CUDART_FUNCTIONS(MESHTRAIN_CUDART_FORWARD)

// CudaStatus names a missing library before it asks for these.
MESHTRAIN_LAZY_FORWARD(meshtrain::Cudart(), "cudaErrorInsufficientDriver", const char*,
                       cudaGetErrorName, (cudaError_t error), (error))
MESHTRAIN_LAZY_FORWARD(meshtrain::Cudart(), "the CUDA runtime could not be loaded", const char*,
                       cudaGetErrorString, (cudaError_t error), (error))
