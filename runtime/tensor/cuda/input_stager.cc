#include "runtime/tensor/cuda/input_stager.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/tensor/cuda/cuda_status.h"
#include "runtime/tensor/cuda/scoped_device.h"

namespace meshtrain {
namespace {

constexpr size_t kAlignment = 256;

size_t Aligned(size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

}  // namespace

absl::StatusOr<std::unique_ptr<InputStager>> InputStager::Create(CudaDevice& device) {
  auto stager = std::unique_ptr<InputStager>(new InputStager(device));
  ScopedCudaDevice scoped(device.ordinal());
  MESHTRAIN_RETURN_IF_ERROR(scoped.status());
  for (Slot& slot : stager->slots_) {
    MESHTRAIN_CUDA_RETURN_IF_ERROR(
        cudaEventCreateWithFlags(&slot.uploaded, cudaEventDisableTiming),
        absl::StrCat("creating an upload event on ", device.description()));
    MESHTRAIN_CUDA_RETURN_IF_ERROR(
        cudaEventCreateWithFlags(&slot.released, cudaEventDisableTiming),
        absl::StrCat("creating a release event on ", device.description()));
  }
  return stager;
}

InputStager::~InputStager() {
  ScopedCudaDevice scoped(device_.ordinal());
  for (Slot& slot : slots_) {
    absl::Status status;
    if (slot.uploaded != nullptr) {
      status.Update(CudaStatus(cudaEventSynchronize(slot.uploaded), "waiting for an upload"));
      status.Update(CudaStatus(cudaEventDestroy(slot.uploaded), "destroying an upload event"));
    }
    if (slot.released != nullptr) {
      status.Update(CudaStatus(cudaEventDestroy(slot.released), "destroying a release event"));
    }
    if (slot.pinned != nullptr) {
      status.Update(CudaStatus(cudaFreeHost(slot.pinned), "freeing a pinned input buffer"));
    }
    if (!status.ok()) {
      MESHTRAIN_LOG(WARNING) << device_.description() << ": " << status;
    }
  }
}

absl::Status InputStager::Reserve(Slot& slot, size_t bytes) {
  if (slot.pinned_bytes < bytes) {
    if (slot.pinned != nullptr) {
      MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaFreeHost(slot.pinned), "freeing a pinned input buffer");
      slot.pinned = nullptr;
      slot.pinned_bytes = 0;
    }
    MESHTRAIN_CUDA_RETURN_IF_ERROR(
        cudaHostAlloc(&slot.pinned, bytes, cudaHostAllocDefault),
        absl::StrCat("cudaHostAlloc of ", bytes, " pinned bytes for inputs of ",
                     device_.description()));
    slot.pinned_bytes = bytes;
  }
  if (slot.device.bytes() < bytes) {
    MESHTRAIN_ASSIGN_OR_RETURN(slot.device, Tensor::Allocate(device_.allocator(), DType::kUInt8,
                                                             Shape{static_cast<int64_t>(bytes)}));
    // The block may have been released by tensors whose work is still queued
    // on the compute stream: the upload stream must not write it before then.
    MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaEventRecord(slot.released, device_.stream()),
                                   "recording a release event");
  }
  return absl::OkStatus();
}

absl::StatusOr<Batch> InputStager::Stage(const Batch& batch) {
  const size_t input_bytes = batch.inputs.bytes();
  const size_t label_offset = Aligned(input_bytes);
  const size_t total = label_offset + batch.labels.bytes();
  if (total == 0) return batch;
  ScopedCudaDevice scoped(device_.ordinal());
  MESHTRAIN_RETURN_IF_ERROR(scoped.status());
  Slot& slot = slots_[next_];
  Slot& other = slots_[1 - next_];
  const std::string& where = device_.description();
  // 1. The upload of two calls ago may still read the pinned buffer.
  if (slot.ever_uploaded) {
    MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(slot.uploaded),
                                   absl::StrCat("waiting for an earlier upload to ", where));
  }
  MESHTRAIN_RETURN_IF_ERROR(Reserve(slot, total));
  // 2. Host tensors into pinned memory.
  auto* pinned = static_cast<std::byte*>(slot.pinned);
  if (input_bytes > 0) std::memcpy(pinned, batch.inputs.raw_data(), input_bytes);
  if (batch.labels.bytes() > 0) {
    std::memcpy(pinned + label_offset, batch.labels.raw_data(), batch.labels.bytes());
  }
  // 3. One DMA on the upload stream, after queued work stopped reading the slot.
  cudaStream_t upload = device_.upload_stream();
  MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(upload, slot.released, 0),
                                 absl::StrCat("ordering an upload to ", where));
  MESHTRAIN_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(slot.device.raw_data(), slot.pinned, total, cudaMemcpyHostToDevice, upload),
      absl::StrCat("uploading ", total, " bytes of inputs to ", where));
  MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaEventRecord(slot.uploaded, upload),
                                 "recording an upload event");
  slot.ever_uploaded = true;
  // 4. The compute stream reads the batch only after it has arrived; the
  // previous batch is done with once the work queued so far has run.
  MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(device_.stream(), slot.uploaded, 0),
                                 absl::StrCat("ordering compute after an upload to ", where));
  MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaEventRecord(other.released, device_.stream()),
                                 "recording a release event");
  next_ = 1 - next_;
  const Tensor& bytes = slot.device;
  return Batch{bytes.Slice(0, static_cast<int64_t>(input_bytes))
                   .Reinterpret(batch.inputs.dtype(), batch.inputs.shape()),
               bytes.Slice(static_cast<int64_t>(label_offset), static_cast<int64_t>(total))
                   .Reinterpret(batch.labels.dtype(), batch.labels.shape())};
}

}  // namespace meshtrain
