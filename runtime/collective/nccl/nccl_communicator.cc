#include "runtime/collective/nccl/nccl_communicator.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/collective/nccl/nccl_status.h"
#include "runtime/tensor/cuda/cuda_device.h"
#include "runtime/tensor/cuda/cuda_status.h"
#include "runtime/tensor/cuda/scoped_device.h"

namespace meshtrain {

absl::StatusOr<std::string> NewNcclUniqueId() {
  ncclUniqueId id;
  MESHTRAIN_RETURN_IF_ERROR(NcclStatus(ncclGetUniqueId(&id), "ncclGetUniqueId"));
  return std::string(id.internal, sizeof(id.internal));
}

absl::StatusOr<std::unique_ptr<NcclCommunicator>> NcclCommunicator::Create(
    NcclCommunicatorOptions options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("nccl: rank ", options.rank, " of ", options.world_size, " is out of range"));
  }
  ncclUniqueId id;
  if (options.unique_id.size() != sizeof(id.internal)) {
    return absl::InvalidArgumentError(absl::StrCat("nccl: the unique id has ",
                                                   options.unique_id.size(), " bytes, expected ",
                                                   sizeof(id.internal)));
  }
  std::memcpy(id.internal, options.unique_id.data(), sizeof(id.internal));
  MESHTRAIN_ASSIGN_OR_RETURN(CudaDevice * device, CudaDevice::Get(options.device));
  auto comm = std::unique_ptr<NcclCommunicator>(new NcclCommunicator(std::move(options), *device));
  const NcclCommunicatorOptions& o = comm->options_;
  ScopedCudaDevice scoped(device->ordinal());
  MESHTRAIN_RETURN_IF_ERROR(scoped.status());
  MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&comm->done_, cudaEventDisableTiming),
                                 "nccl: creating its completion event");
  const std::string what = absl::StrCat("nccl init of ", o.description, " (rank ", o.rank, " of ",
                                        o.world_size, " on ", device->description(), ")");
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclResult_t result = ncclCommInitRankConfig(&comm->comm_, o.world_size, id, o.rank, &config);
  absl::Status status;
  if (result != ncclSuccess && result != ncclInProgress) {
    status = NcclStatus(result, what, comm->comm_);
  } else {
    status = WaitForNccl(comm->comm_, nullptr, absl::Now() + o.init_timeout, o.abort, what);
  }
  if (!status.ok()) {
    if (comm->comm_ != nullptr) (void)ncclCommAbort(comm->comm_);
    comm->comm_ = nullptr;
    return status;
  }
  return comm;
}

NcclCommunicator::~NcclCommunicator() {
  ScopedCudaDevice scoped(device_.ordinal());
  absl::Status status;
  if (comm_ != nullptr) {
    // A broken communicator may have kernels that never finish: abort it.
    status = broken_.ok() ? NcclStatus(ncclCommDestroy(comm_), "ncclCommDestroy")
                          : NcclStatus(ncclCommAbort(comm_), "ncclCommAbort");
  }
  if (done_ != nullptr) status.Update(CudaStatus(cudaEventDestroy(done_), "cudaEventDestroy"));
  if (!status.ok()) {
    MESHTRAIN_LOG(WARNING) << options_.description << ": " << status;
  }
}

std::string NcclCommunicator::Describe(absl::string_view op, const CollectiveContext& ctx) const {
  return absl::StrCat("nccl ", op, " '", ctx.name, "' step ", ctx.step, " (", options_.description,
                      ", rank ", options_.rank, " of ", options_.world_size, " on ",
                      device_.description(), ")");
}

template <typename Call>
absl::Status NcclCommunicator::Run(absl::string_view op, const CollectiveContext& ctx, Call call) {
  const std::string what = Describe(op, ctx);
  const ncclResult_t result = call();
  absl::Status status;
  if (result != ncclSuccess && result != ncclInProgress) {
    status = NcclStatus(result, what, comm_);
  } else {
    // Nonblocking: wait until the call is queued before recording the event.
    status = WaitForNccl(comm_, nullptr, ctx.deadline, options_.abort, what);
    if (status.ok()) status = CudaStatus(cudaEventRecord(done_, device_.stream()), what);
    if (status.ok()) status = WaitForNccl(comm_, done_, ctx.deadline, options_.abort, what);
  }
  if (!status.ok()) {
    // Stops the kernels waiting for a dead peer, so the stream drains.
    (void)ncclCommAbort(comm_);
    comm_ = nullptr;
    broken_ = status;
  }
  return status;
}

absl::StatusOr<bool> NcclCommunicator::OnDevice(const void* data, absl::string_view op) const {
  cudaPointerAttributes attributes;
  MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaPointerGetAttributes(&attributes, data), op);
  if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged)
    return false;
  if (attributes.device != device_.ordinal()) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": the buffer is on CUDA device ",
                                                   attributes.device, ", this rank uses ",
                                                   device_.description()));
  }
  return true;
}

absl::StatusOr<std::byte*> NcclCommunicator::Scratch(size_t bytes) {
  if (scratch_.bytes() < bytes) {
    MESHTRAIN_ASSIGN_OR_RETURN(scratch_, Tensor::Allocate(device_.allocator(), DType::kUInt8,
                                                          Shape{static_cast<int64_t>(bytes)}));
  }
  return scratch_.data<std::byte>();
}

absl::Status NcclCommunicator::CopyAndWait(void* dst, const void* src, size_t bytes,
                                           absl::string_view op) {
  if (bytes == 0) return absl::OkStatus();
  MESHTRAIN_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, device_.stream()), op);
  MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(device_.stream()), op);
  return absl::OkStatus();
}

absl::Status NcclCommunicator::AllReduceSum(absl::Span<float> data, const CollectiveContext& ctx) {
  MESHTRAIN_RETURN_IF_ERROR(broken_);
  if (data.empty()) return absl::OkStatus();
  ScopedCudaDevice scoped(device_.ordinal());
  MESHTRAIN_RETURN_IF_ERROR(scoped.status());
  const std::string what = Describe("allreduce", ctx);
  MESHTRAIN_ASSIGN_OR_RETURN(bool on_device, OnDevice(data.data(), what));
  const size_t bytes = data.size() * sizeof(float);
  float* buffer = data.data();
  if (!on_device) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::byte * scratch, Scratch(bytes));
    buffer = reinterpret_cast<float*>(scratch);
    MESHTRAIN_RETURN_IF_ERROR(CopyAndWait(buffer, data.data(), bytes, what));
  }
  MESHTRAIN_RETURN_IF_ERROR(Run("allreduce", ctx, [&] {
    return ncclAllReduce(buffer, buffer, data.size(), ncclFloat32, ncclSum, comm_,
                         device_.stream());
  }));
  if (!on_device) MESHTRAIN_RETURN_IF_ERROR(CopyAndWait(data.data(), buffer, bytes, what));
  return absl::OkStatus();
}

absl::Status NcclCommunicator::Broadcast(absl::Span<std::byte> data, int root,
                                         const CollectiveContext& ctx) {
  MESHTRAIN_RETURN_IF_ERROR(broken_);
  const std::string what = Describe("broadcast", ctx);
  if (root < 0 || root >= world_size()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": root ", root, " is out of range"));
  }
  if (data.empty()) return absl::OkStatus();
  ScopedCudaDevice scoped(device_.ordinal());
  MESHTRAIN_RETURN_IF_ERROR(scoped.status());
  MESHTRAIN_ASSIGN_OR_RETURN(bool on_device, OnDevice(data.data(), what));
  std::byte* buffer = data.data();
  if (!on_device) {
    MESHTRAIN_ASSIGN_OR_RETURN(buffer, Scratch(data.size()));
    if (rank() == root)
      MESHTRAIN_RETURN_IF_ERROR(CopyAndWait(buffer, data.data(), data.size(), what));
  }
  MESHTRAIN_RETURN_IF_ERROR(Run("broadcast", ctx, [&] {
    return ncclBroadcast(buffer, buffer, data.size(), ncclUint8, root, comm_, device_.stream());
  }));
  if (!on_device) MESHTRAIN_RETURN_IF_ERROR(CopyAndWait(data.data(), buffer, data.size(), what));
  return absl::OkStatus();
}

absl::Status NcclCommunicator::AllGather(absl::Span<const std::byte> mine,
                                         std::vector<std::byte>* all, std::vector<size_t>* sizes,
                                         const CollectiveContext& ctx) {
  MESHTRAIN_RETURN_IF_ERROR(broken_);
  ScopedCudaDevice scoped(device_.ordinal());
  MESHTRAIN_RETURN_IF_ERROR(scoped.status());
  const std::string what = Describe("allgather", ctx);
  const int n = world_size();
  // 1. Every rank's size (8 bytes each), 2. the data padded to the largest.
  std::vector<uint64_t> counts(n);
  counts[rank()] = mine.size();
  MESHTRAIN_ASSIGN_OR_RETURN(std::byte * scratch, Scratch(n * sizeof(uint64_t)));
  MESHTRAIN_RETURN_IF_ERROR(
      CopyAndWait(scratch + rank() * sizeof(uint64_t), &counts[rank()], sizeof(uint64_t), what));
  MESHTRAIN_RETURN_IF_ERROR(Run("allgather sizes", ctx, [&] {
    return ncclAllGather(scratch + rank() * sizeof(uint64_t), scratch, sizeof(uint64_t), ncclUint8,
                         comm_, device_.stream());
  }));
  MESHTRAIN_RETURN_IF_ERROR(CopyAndWait(counts.data(), scratch, n * sizeof(uint64_t), what));
  const size_t block = *std::max_element(counts.begin(), counts.end());
  sizes->assign(counts.begin(), counts.end());
  size_t total = 0;
  for (uint64_t c : counts) total += c;
  all->resize(total);
  if (block == 0) return absl::OkStatus();
  MESHTRAIN_ASSIGN_OR_RETURN(scratch, Scratch(block * (n + 1)));
  std::byte* send = scratch + block * n;  // after the receive blocks
  MESHTRAIN_RETURN_IF_ERROR(CopyAndWait(send, mine.data(), mine.size(), what));
  MESHTRAIN_RETURN_IF_ERROR(Run("allgather", ctx, [&] {
    return ncclAllGather(send, scratch, block, ncclUint8, comm_, device_.stream());
  }));
  std::vector<std::byte> padded(block * n);
  MESHTRAIN_RETURN_IF_ERROR(CopyAndWait(padded.data(), scratch, padded.size(), what));
  size_t offset = 0;
  for (int r = 0; r < n; ++r) {
    if (counts[r] > 0) std::memcpy(all->data() + offset, padded.data() + r * block, counts[r]);
    offset += counts[r];
  }
  return absl::OkStatus();
}

absl::Status NcclCommunicator::Barrier(const CollectiveContext& ctx) {
  MESHTRAIN_RETURN_IF_ERROR(broken_);
  ScopedCudaDevice scoped(device_.ordinal());
  MESHTRAIN_RETURN_IF_ERROR(scoped.status());
  MESHTRAIN_ASSIGN_OR_RETURN(std::byte * scratch, Scratch(sizeof(float)));
  return Run("barrier", ctx, [&] {
    auto* one = reinterpret_cast<float*>(scratch);
    return ncclAllReduce(one, one, 1, ncclFloat32, ncclSum, comm_, device_.stream());
  });
}

}  // namespace meshtrain
