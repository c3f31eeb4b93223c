// NcclCommunicator: the Communicator over one NCCL communicator, one rank per
// process (MultiWorkerMirrored with communication=nccl). Spans may be memory
// of this rank's GPU, used in place, or host memory, staged through a device
// buffer. Every collective is queued on the logical device's compute stream
// (CudaDevice), after the kernels that produced the data, and the call returns
// once it has completed on the device.
//
// Setting up (strategies/cross_worker.cc does it through the mesh's key-value store):
//   1. rank 0: id = NewNcclUniqueId(); KvSet("nccl/<name>", hex(id));
//   2. others: KvGet("nccl/<name>", deadline);
//   3. every rank: NcclCommunicator::Create({rank, world, id, device, ...}).
// The communicator is nonblocking (ncclConfig_t.blocking = 0): init and every
// collective are polled with WaitForNccl against the abort signal and the
// deadline, so a dead peer never hangs a rank. On any error the communicator
// is aborted (ncclCommAbort, which also stops its kernels) and every later
// call fails with that error: the task reports it and the cluster takes the
// same recovery path as after a ring failure.
//
// Not thread-safe: one thread drives it (CrossDeviceOps: replica 0's).
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_NCCL_COMMUNICATOR_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_NCCL_COMMUNICATOR_H_

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/base/abort_signal.h"
#include "runtime/collective/communicator.h"
#include "runtime/tensor/device.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain {

class CudaDevice;

struct NcclCommunicatorOptions {
  int rank = 0;
  int world_size = 1;
  std::string unique_id;           // NewNcclUniqueId() of rank 0, on every rank
  Device device = Device::Gpu(0);  // this rank's (logical) GPU
  AbortSignal* abort = nullptr;    // nullable; must outlive the communicator
  absl::Duration init_timeout = absl::Minutes(2);
  std::string description;  // for errors: "worker:1"
};

// A fresh NCCL unique id (NCCL_UNIQUE_ID_BYTES raw bytes).
absl::StatusOr<std::string> NewNcclUniqueId();

class NcclCommunicator final : public Communicator {
 public:
  static absl::StatusOr<std::unique_ptr<NcclCommunicator>> Create(NcclCommunicatorOptions options);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return options_.rank; }
  int world_size() const override { return options_.world_size; }
  bool takes_device_memory() const override { return true; }

  absl::Status AllReduceSum(absl::Span<float> data, const CollectiveContext& ctx) override;
  absl::Status Broadcast(absl::Span<std::byte> data, int root,
                         const CollectiveContext& ctx) override;
  absl::Status AllGather(absl::Span<const std::byte> mine, std::vector<std::byte>* all,
                         std::vector<size_t>* sizes, const CollectiveContext& ctx) override;
  absl::Status Barrier(const CollectiveContext& ctx) override;

 private:
  NcclCommunicator(NcclCommunicatorOptions options, CudaDevice& device)
      : options_(std::move(options)), device_(device) {}

  // "nccl allreduce 'gradients' step 41 (worker:1, rank 1 of 2 on gpu:0)".
  std::string Describe(absl::string_view op, const CollectiveContext& ctx) const;
  // Runs `call` (an NCCL collective on the device stream), then waits for it;
  // an error aborts the communicator for good.
  template <typename Call>
  absl::Status Run(absl::string_view op, const CollectiveContext& ctx, Call call);
  // Whether `data` is memory of this rank's GPU (else host memory).
  absl::StatusOr<bool> OnDevice(const void* data, absl::string_view op) const;
  // A device buffer of at least `bytes` (grown, kept).
  absl::StatusOr<std::byte*> Scratch(size_t bytes);
  // Copies on the device stream and waits (staging host memory).
  absl::Status CopyAndWait(void* dst, const void* src, size_t bytes, absl::string_view op);

  const NcclCommunicatorOptions options_;
  CudaDevice& device_;
  ncclComm_t comm_ = nullptr;
  cudaEvent_t done_ = nullptr;
  Tensor scratch_;
  absl::Status broken_;  // the first error; every later call returns it
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_NCCL_NCCL_COMMUNICATOR_H_
