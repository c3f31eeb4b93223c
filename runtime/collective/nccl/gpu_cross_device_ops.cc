#include "runtime/collective/nccl/gpu_cross_device_ops.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/collective/nccl/nccl_status.h"
#include "runtime/collective/replica_barrier.h"
#include "runtime/tensor/cuda/cuda_device.h"
#include "runtime/tensor/cuda/cuda_status.h"
#include "runtime/tensor/cuda/device_kernels.h"
#include "runtime/tensor/cuda/scoped_device.h"
#include "runtime/tensor/tensor.h"

namespace meshtrain {
namespace {

struct ReplicaState {
  CudaDevice* device = nullptr;
  ncclComm_t comm = nullptr;     // NCCL mode
  cudaEvent_t done = nullptr;    // NCCL mode: completion of the last call
  cudaEvent_t ready = nullptr;   // on-device mode: phase 1
  cudaEvent_t copied = nullptr;  // on-device mode: phase 3
  Tensor staging;                // replica 0, on-device mode: buffers of other GPUs
  std::byte* host = nullptr;     // replica 0: pinned staging for a host-only communicator
  size_t host_bytes = 0;
};

class GpuCrossDeviceOps final : public CrossDeviceOps {
 public:
  GpuCrossDeviceOps(bool nccl, Communicator* cross_worker, AbortSignal* abort, int n)
      : nccl_(nccl),
        cross_worker_(cross_worker != nullptr && cross_worker->world_size() > 1 ? cross_worker
                                                                                : nullptr),
        abort_(abort),
        replicas_(n),
        buffers_(n),
        barrier_(n, &stop_) {
    if (abort_ != nullptr) {
      abort_callback_ = abort_->AddCallback([this] { stop_.Abort(abort_->status()); });
    }
  }

  ~GpuCrossDeviceOps() override {
    if (abort_ != nullptr) abort_->RemoveCallback(abort_callback_);
    absl::Status status;
    for (ReplicaState& r : replicas_) {
      if (r.device == nullptr) continue;
      ScopedCudaDevice scoped(r.device->ordinal());
      if (r.comm != nullptr) {
        status.Update(NcclStatus(broken() ? ncclCommAbort(r.comm) : ncclCommDestroy(r.comm),
                                 "releasing an NCCL communicator"));
      }
      for (cudaEvent_t e : {r.done, r.ready, r.copied}) {
        if (e != nullptr) status.Update(CudaStatus(cudaEventDestroy(e), "cudaEventDestroy"));
      }
      if (r.host != nullptr) status.Update(CudaStatus(cudaFreeHost(r.host), "cudaFreeHost"));
    }
    if (summed_ != nullptr)
      status.Update(CudaStatus(cudaEventDestroy(summed_), "cudaEventDestroy"));
    if (!status.ok()) {
      MESHTRAIN_LOG(WARNING) << "GPU cross-device ops: " << status;
    }
  }

  absl::Status Init(const std::vector<Device>& devices) {
    const int n = static_cast<int>(devices.size());
    for (int i = 0; i < n; ++i) {
      MESHTRAIN_ASSIGN_OR_RETURN(replicas_[i].device, CudaDevice::Get(devices[i]));
      ScopedCudaDevice scoped(replicas_[i].device->ordinal());
      MESHTRAIN_RETURN_IF_ERROR(scoped.status());
      for (cudaEvent_t* e : {&replicas_[i].done, &replicas_[i].ready, &replicas_[i].copied}) {
        MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(e, cudaEventDisableTiming),
                                       "creating a cross-device event");
      }
    }
    {
      ScopedCudaDevice scoped(replicas_[0].device->ordinal());
      MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&summed_, cudaEventDisableTiming),
                                     "creating a cross-device event");
    }
    if (nccl_ && n > 1) {
      // In-process ranks cannot die apart, so the blocking init is safe here.
      std::vector<ncclComm_t> comms(n);
      std::vector<int> ordinals;
      for (const ReplicaState& r : replicas_) ordinals.push_back(r.device->ordinal());
      MESHTRAIN_RETURN_IF_ERROR(NcclStatus(ncclCommInitAll(comms.data(), n, ordinals.data()),
                                           absl::StrCat("ncclCommInitAll over ", n, " GPUs")));
      for (int i = 0; i < n; ++i) replicas_[i].comm = comms[i];
    }
    return absl::OkStatus();
  }

  absl::string_view name() const override { return nccl_ ? "nccl" : kOnDeviceReduceName; }
  int num_replicas() const override { return static_cast<int>(replicas_.size()); }

  absl::Status AllReduce(int replica, absl::Span<float> data,
                         const CollectiveContext& ctx) override {
    const int n = num_replicas();
    if (replica < 0 || replica >= n) {
      return absl::InvalidArgumentError(absl::StrCat(name(), " allreduce '", ctx.name, "' step ",
                                                     ctx.step, ": replica ", replica,
                                                     " out of range for ", n, " replicas"));
    }
    const std::string what = absl::StrCat(name(), " allreduce '", ctx.name, "' step ", ctx.step,
                                          " on ", replicas_[replica].device->description());
    if (broken()) return Annotate(broken_status(), what);
    ScopedCudaDevice scoped(replicas_[replica].device->ordinal());
    absl::Status status = scoped.status();
    if (status.ok()) {
      status = n == 1  ? CrossWorker(data, ctx)
               : nccl_ ? Nccl(replica, data, ctx, what)
                       : OnDevice(replica, data, ctx);
    }
    if (status.ok()) return status;
    status = Annotate(status, what);
    Break(status);
    return status;
  }

 private:
  // The first error of any replica (or the task's abort) stops every wait:
  // barriers and NCCL waits poll `stop_`.
  bool broken() const { return stop_.aborted(); }
  absl::Status broken_status() const { return stop_.status(); }
  void Break(const absl::Status& status) { stop_.Abort(status); }

  // Queues an NCCL call on `replica`'s stream and waits for it; an error
  // aborts that replica's communicator (NCCL then fails the others).
  template <typename Call>
  absl::Status RunNccl(int replica, const CollectiveContext& ctx, absl::string_view what,
                       Call call) {
    ReplicaState& r = replicas_[replica];
    absl::Status status = NcclStatus(call(r.comm, r.device->stream()), what, r.comm);
    if (status.ok()) status = CudaStatus(cudaEventRecord(r.done, r.device->stream()), what);
    if (status.ok()) status = WaitForNccl(r.comm, r.done, ctx.deadline, &stop_, what);
    if (!status.ok()) {
      (void)ncclCommAbort(r.comm);
      r.comm = nullptr;
    }
    return status;
  }

  absl::Status Nccl(int replica, absl::Span<float> data, const CollectiveContext& ctx,
                    absl::string_view what) {
    float* p = data.data();
    const size_t count = data.size();
    if (cross_worker_ == nullptr) {
      return RunNccl(replica, ctx, what, [&](ncclComm_t comm, cudaStream_t stream) {
        return ncclAllReduce(p, p, count, ncclFloat32, ncclSum, comm, stream);
      });
    }
    MESHTRAIN_RETURN_IF_ERROR(
        RunNccl(replica, ctx, what, [&](ncclComm_t comm, cudaStream_t stream) {
          return ncclReduce(p, p, count, ncclFloat32, ncclSum, /*root=*/0, comm, stream);
        }));
    MESHTRAIN_RETURN_IF_ERROR(CrossWorkerThenBarrier(replica, data, ctx));
    return RunNccl(replica, ctx, what, [&](ncclComm_t comm, cudaStream_t stream) {
      return ncclBroadcast(p, p, count, ncclFloat32, /*root=*/0, comm, stream);
    });
  }

  absl::Status OnDevice(int replica, absl::Span<float> data, const CollectiveContext& ctx) {
    ReplicaState& me = replicas_[replica];
    cudaStream_t stream = me.device->stream();
    // 1. This replica's gradients are queued: mark the point, publish the buffer.
    MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaEventRecord(me.ready, stream), "recording ready");
    buffers_[replica] = data;
    MESHTRAIN_RETURN_IF_ERROR(barrier_.Arrive(replica, ctx.deadline));
    for (int r = 0; r < num_replicas(); ++r) {
      if (buffers_[r].size() != buffers_[0].size()) {
        return absl::InvalidArgumentError(absl::StrCat("replica ", r, " has ", buffers_[r].size(),
                                                       " elements, replica 0 has ",
                                                       buffers_[0].size()));
      }
    }
    // 2. Replica 0 sums every buffer into its own (then across workers).
    if (replica == 0) {
      cross_status_ = SumOnReplicaZero(data);
      if (cross_status_.ok() && cross_worker_ != nullptr) {
        cross_status_ = CrossWorker(data, ctx);
        if (cross_status_.ok()) {
          cross_status_ = CudaStatus(cudaEventRecord(summed_, stream), "recording summed");
        }
      }
    }
    MESHTRAIN_RETURN_IF_ERROR(barrier_.Arrive(replica, ctx.deadline));
    MESHTRAIN_RETURN_IF_ERROR(cross_status_);
    // 3. The others copy the sum.
    if (replica != 0) {
      MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream, summed_, 0),
                                     "waiting for the sum");
      if (!data.empty()) {
        MESHTRAIN_CUDA_RETURN_IF_ERROR(
            cudaMemcpyAsync(data.data(), buffers_[0].data(), data.size() * sizeof(float),
                            cudaMemcpyDefault, stream),
            "copying the sum");
      }
      MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaEventRecord(me.copied, stream), "recording copied");
    }
    MESHTRAIN_RETURN_IF_ERROR(barrier_.Arrive(replica, ctx.deadline));
    // 4. Replica 0 writes its buffer again only after the copies.
    if (replica == 0) {
      for (int r = 1; r < num_replicas(); ++r) {
        MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream, replicas_[r].copied, 0),
                                       "waiting for the copies of the sum");
      }
    }
    return absl::OkStatus();
  }

  // Phase 2 on replica 0's thread: sum all buffers into `data` (replica 0's).
  absl::Status SumOnReplicaZero(absl::Span<float> data) {
    ReplicaState& zero = replicas_[0];
    cudaStream_t stream = zero.device->stream();
    const int n = num_replicas();
    const size_t bytes = data.size() * sizeof(float);
    std::vector<const float*> sources(n);
    int remote = 0;
    for (int r = 0; r < n; ++r) {
      if (r > 0) {
        MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream, replicas_[r].ready, 0),
                                       "waiting for a replica's gradients");
      }
      sources[r] = buffers_[r].data();
      if (replicas_[r].device->ordinal() != zero.device->ordinal()) ++remote;
    }
    if (remote > 0 && bytes > 0 && zero.staging.bytes() < bytes * remote) {
      MESHTRAIN_ASSIGN_OR_RETURN(zero.staging,
                                 Tensor::Allocate(zero.device->allocator(), DType::kUInt8,
                                                  Shape{static_cast<int64_t>(bytes * remote)}));
    }
    int slot = 0;
    for (int r = 1; r < n && remote > 0 && bytes > 0; ++r) {
      const int ordinal = replicas_[r].device->ordinal();
      if (ordinal == zero.device->ordinal()) continue;
      auto* dst = reinterpret_cast<float*>(zero.staging.data<std::byte>() + bytes * slot++);
      MESHTRAIN_CUDA_RETURN_IF_ERROR(
          cudaMemcpyPeerAsync(dst, zero.device->ordinal(), sources[r], ordinal, bytes, stream),
          "bringing a replica's gradients over");
      sources[r] = dst;
    }
    MESHTRAIN_CUDA_RETURN_IF_ERROR(
        device_kernels::SumBuffers(data.data(), sources.data(), n,
                                   static_cast<int64_t>(data.size()), stream),
        "summing the replicas' gradients");
    return CudaStatus(cudaEventRecord(summed_, stream), "recording summed");
  }

  // Replica 0 runs the cross-worker step on its (locally reduced) buffer, then
  // everyone learns the outcome at the barrier.
  absl::Status CrossWorkerThenBarrier(int replica, absl::Span<float> data,
                                      const CollectiveContext& ctx) {
    if (replica == 0) cross_status_ = CrossWorker(data, ctx);
    MESHTRAIN_RETURN_IF_ERROR(barrier_.Arrive(replica, ctx.deadline));
    return cross_status_;
  }

  // On replica 0's thread.
  absl::Status CrossWorker(absl::Span<float> data, const CollectiveContext& ctx) {
    if (cross_worker_ == nullptr || data.empty()) return absl::OkStatus();
    if (cross_worker_->takes_device_memory()) return cross_worker_->AllReduceSum(data, ctx);
    ReplicaState& zero = replicas_[0];
    cudaStream_t stream = zero.device->stream();
    const size_t bytes = data.size() * sizeof(float);
    if (zero.host_bytes < bytes) {
      if (zero.host != nullptr) {
        MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream), "draining before regrowing");
        MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaFreeHost(zero.host), "cudaFreeHost");
        zero.host = nullptr;
        zero.host_bytes = 0;
      }
      MESHTRAIN_CUDA_RETURN_IF_ERROR(
          cudaHostAlloc(reinterpret_cast<void**>(&zero.host), bytes, cudaHostAllocDefault),
          absl::StrCat("cudaHostAlloc of ", bytes, " bytes for cross-worker staging"));
      zero.host_bytes = bytes;
    }
    MESHTRAIN_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(zero.host, data.data(), bytes, cudaMemcpyDeviceToHost, stream),
        "staging gradients to the host");
    MESHTRAIN_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream), "staging gradients to the host");
    auto* host = reinterpret_cast<float*>(zero.host);
    MESHTRAIN_RETURN_IF_ERROR(cross_worker_->AllReduceSum(absl::MakeSpan(host, data.size()), ctx));
    // Stream-ordered: the next staging copy on this stream comes after this one.
    MESHTRAIN_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(data.data(), zero.host, bytes, cudaMemcpyHostToDevice, stream),
        "bringing the cross-worker sum back");
    return absl::OkStatus();
  }

  const bool nccl_;
  Communicator* const cross_worker_;
  AbortSignal* const abort_;
  std::vector<ReplicaState> replicas_;  // slot r: replica r's thread only (and phase-ordered reads)
  // Written by replica r (slot r) before a barrier, read by all after it.
  std::vector<absl::Span<float>> buffers_;
  cudaEvent_t summed_ = nullptr;  // on replica 0's stream
  absl::Status cross_status_;     // written by replica 0 before a barrier
  AbortSignal stop_;
  int abort_callback_ = -1;
  ReplicaBarrier barrier_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CrossDeviceOps>> CreateGpuCrossDeviceOps(
    const std::vector<Device>& devices, Communicator* cross_worker, AbortSignal* abort) {
  const int n = static_cast<int>(devices.size());
  if (n < 1 || n > device_kernels::kMaxSumSources) {
    return absl::InvalidArgumentError(absl::StrCat(
        "GPU cross-device ops over ", n, " replicas: use 1 to ", device_kernels::kMaxSumSources));
  }
  std::set<int> physical;
  for (const Device& d : devices) {
    MESHTRAIN_ASSIGN_OR_RETURN(CudaDevice * device, CudaDevice::Get(d));
    physical.insert(device->ordinal());
  }
  const bool distinct = static_cast<int>(physical.size()) == n;
  if (!distinct) {
    MESHTRAIN_LOG(INFO) << n << " replicas share " << physical.size()
                        << " GPU(s): NCCL refuses two ranks on one GPU, so gradients are summed "
                           "on the device (on_device_reduce)";
  }
  auto ops = std::make_unique<GpuCrossDeviceOps>(distinct, cross_worker, abort, n);
  MESHTRAIN_RETURN_IF_ERROR(ops->Init(devices));
  return std::unique_ptr<CrossDeviceOps>(std::move(ops));
}

}  // namespace meshtrain
