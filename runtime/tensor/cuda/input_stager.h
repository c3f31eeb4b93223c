// InputStager: uploads batches from host memory to one logical GPU through
// pinned host buffers, on the device's upload stream, double-buffered:
//
//   Stage(batch s), slot A = s % 2:
//     1. wait (host) until slot A's pinned buffer is no longer being read by
//        the upload of batch s - 2 (long finished in practice);
//     2. copy the host tensors into slot A's pinned buffer (one buffer for
//        inputs and labels, so one DMA);
//     3. on the upload stream: wait for the compute-stream event recorded when
//        the caller moved past batch s - 2 (so the upload never overwrites
//        device memory queued work still reads), then copy to slot A's device
//        buffer and record `uploaded`;
//     4. make the compute stream wait for `uploaded`, and record the other
//        slot's release event on the compute stream (batch s - 1 is done with).
//
// The host never waits for the GPU here: the upload of batch s runs while the
// compute stream still works through earlier queued work and while the host
// queues step s's kernels, and the compute stream waits only where the first
// kernel reads the batch. A returned batch is valid for work queued before the
// next Stage call. Not thread-safe: owned by one CudaKernels object.
#ifndef MESHTRAIN_RUNTIME_TENSOR_CUDA_INPUT_STAGER_H_
#define MESHTRAIN_RUNTIME_TENSOR_CUDA_INPUT_STAGER_H_

#include <cuda_runtime_api.h>

#include <memory>

#include "absl/status/statusor.h"
#include "runtime/tensor/batch.h"
#include "runtime/tensor/cuda/cuda_device.h"

namespace meshtrain {

class InputStager {
 public:
  // `device` outlives the stager (devices live until the process exits).
  static absl::StatusOr<std::unique_ptr<InputStager>> Create(CudaDevice& device);
  ~InputStager();
  InputStager(const InputStager&) = delete;
  InputStager& operator=(const InputStager&) = delete;

  // `batch` in host memory, on the device.
  absl::StatusOr<Batch> Stage(const Batch& batch);

 private:
  struct Slot {
    void* pinned = nullptr;
    size_t pinned_bytes = 0;
    Tensor device;                   // uint8 [capacity]
    cudaEvent_t uploaded = nullptr;  // on the upload stream
    cudaEvent_t released = nullptr;  // on the compute stream
    bool ever_uploaded = false;
  };

  explicit InputStager(CudaDevice& device) : device_(device) {}
  absl::Status Reserve(Slot& slot, size_t bytes);

  CudaDevice& device_;
  Slot slots_[2];
  int next_ = 0;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TENSOR_CUDA_INPUT_STAGER_H_
