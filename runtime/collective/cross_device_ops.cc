#include "runtime/collective/cross_device_ops.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/base/status_macros.h"
#include "runtime/collective/replica_barrier.h"
#if MESHTRAIN_HAVE_CUDA
#include "runtime/collective/nccl/gpu_cross_device_ops.h"
#endif
#include "runtime/collective/ring_schedule.h"
#include "runtime/transport/reduce_kernel.h"

namespace meshtrain {
namespace {

enum class Algorithm { kReduceToOne, kHierarchicalCopy, kRing };

constexpr absl::string_view kReduceToOneName = "reduce_to_one_device";
constexpr absl::string_view kHierarchicalCopyName = "hierarchical_copy";
constexpr absl::string_view kRingName = "ring";

class LocalCrossDeviceOps : public CrossDeviceOps {
 public:
  LocalCrossDeviceOps(Algorithm algorithm, absl::string_view name, int num_replicas,
                      Communicator* cross_worker, AbortSignal* abort)
      : algorithm_(algorithm),
        name_(name),
        n_(num_replicas),
        cross_worker_(cross_worker != nullptr && cross_worker->world_size() > 1 ? cross_worker
                                                                                : nullptr),
        barrier_(num_replicas, abort),
        buffers_(num_replicas),
        sources_(num_replicas),
        slice_sources_(num_replicas, std::vector<const float*>(num_replicas)) {}

  absl::string_view name() const override { return name_; }
  int num_replicas() const override { return n_; }
  absl::Duration blocked(int replica) const override { return barrier_.blocked(replica); }

  absl::Status AllReduce(int replica, absl::Span<float> data,
                         const CollectiveContext& ctx) override {
    if (replica < 0 || replica >= n_) {
      return absl::InvalidArgumentError(absl::StrCat(name_, " allreduce '", ctx.name, "' step ",
                                                     ctx.step, ": replica ", replica,
                                                     " out of range for ", n_, " replicas"));
    }
    // One replica per worker: nothing local to sum, so the error is the
    // communicator's alone (it names the step and the peer).
    if (n_ == 1) return CrossWorker(data, ctx);
    absl::Status status = Run(replica, data, ctx);
    if (status.ok()) return status;
    return Annotate(status, absl::StrCat(name_, " allreduce '", ctx.name, "' step ", ctx.step,
                                         " replica ", replica));
  }

 private:
  absl::Status Run(int replica, absl::Span<float> data, const CollectiveContext& ctx) {
    // Phase 0: publish the buffers.
    buffers_[replica] = data;
    MESHTRAIN_RETURN_IF_ERROR(barrier_.Arrive(replica, ctx.deadline));
    for (int r = 0; r < n_; ++r) {
      if (buffers_[r].size() != buffers_[0].size()) {
        // Every replica sees the same buffers, so every one returns this.
        return absl::InvalidArgumentError(absl::StrCat("replica ", r, " has ", buffers_[r].size(),
                                                       " elements, replica 0 has ",
                                                       buffers_[0].size()));
      }
    }
    switch (algorithm_) {
      case Algorithm::kReduceToOne:
        return ReduceToOne(replica, data, ctx);
      case Algorithm::kHierarchicalCopy:
        return HierarchicalCopy(replica, data, ctx);
      case Algorithm::kRing:
        return cross_worker_ != nullptr ? SlicesThenBroadcast(replica, data, ctx)
                                        : SlicesThenGather(replica, data, ctx);
    }
    return absl::InternalError("unknown algorithm");
  }

  absl::Status CrossWorker(absl::Span<float> data, const CollectiveContext& ctx) {
    if (cross_worker_ == nullptr) return absl::OkStatus();
    absl::Status status = cross_worker_->AllReduceSum(data, ctx);
    if (status.ok()) return status;
    return Annotate(status, "across workers");
  }

  // Replica 0 runs the cross-worker step on its (locally reduced) buffer; then
  // everyone learns its outcome at the next barrier.
  absl::Status CrossWorkerThenBarrier(int replica, const CollectiveContext& ctx) {
    if (replica == 0) cross_status_ = CrossWorker(buffers_[0], ctx);
    MESHTRAIN_RETURN_IF_ERROR(barrier_.Arrive(replica, ctx.deadline));
    return cross_status_;
  }

  absl::Status ReduceToOne(int replica, absl::Span<float> data, const CollectiveContext& ctx) {
    if (replica == 0) {
      for (int r = 0; r < n_; ++r) sources_[r] = buffers_[r].data();
      SumFloat32(data.data(), sources_, data.size());
    }
    MESHTRAIN_RETURN_IF_ERROR(CrossWorkerThenBarrier(replica, ctx));
    if (replica != 0) CopyFrom(0, data);
    return barrier_.Arrive(replica, ctx.deadline);  // replica 0's buffer is read until here
  }

  absl::Status HierarchicalCopy(int replica, absl::Span<float> data, const CollectiveContext& ctx) {
    int top = 1;
    while (top * 2 < n_) top *= 2;
    for (int stride = 1; stride < n_; stride *= 2) {
      if (replica % (2 * stride) == 0 && replica + stride < n_) {
        AddFloat32(data.data(), buffers_[replica + stride].data(), data.size());
      }
      MESHTRAIN_RETURN_IF_ERROR(barrier_.Arrive(replica, ctx.deadline));
    }
    if (cross_worker_ != nullptr) MESHTRAIN_RETURN_IF_ERROR(CrossWorkerThenBarrier(replica, ctx));
    for (int stride = top; stride >= 1; stride /= 2) {
      if (replica % (2 * stride) == stride) CopyFrom(replica - stride, data);
      MESHTRAIN_RETURN_IF_ERROR(barrier_.Arrive(replica, ctx.deadline));
    }
    return absl::OkStatus();
  }

  // Sums slice `slice` of every buffer, in replica order, into `dst`'s slice.
  void SumSlice(int slice, float* dst) {
    ChunkRange range = RingChunk(buffers_[0].size(), n_, slice);
    if (range.size() == 0) return;
    std::vector<const float*>& src = slice_sources_[slice];
    for (int r = 0; r < n_; ++r) src[r] = buffers_[r].data() + range.begin;
    SumFloat32(dst + range.begin, src, range.size());
  }

  absl::Status SlicesThenGather(int replica, absl::Span<float> data, const CollectiveContext& ctx) {
    SumSlice(replica, data.data());
    MESHTRAIN_RETURN_IF_ERROR(barrier_.Arrive(replica, ctx.deadline));
    for (int owner = 0; owner < n_; ++owner) {
      if (owner == replica) continue;
      ChunkRange range = RingChunk(data.size(), n_, owner);
      if (range.size() > 0) {
        std::memcpy(data.data() + range.begin, buffers_[owner].data() + range.begin,
                    range.size() * sizeof(float));
      }
    }
    return barrier_.Arrive(replica, ctx.deadline);  // owners' slices are read until here
  }

  absl::Status SlicesThenBroadcast(int replica, absl::Span<float> data,
                                   const CollectiveContext& ctx) {
    SumSlice(replica, buffers_[0].data());
    MESHTRAIN_RETURN_IF_ERROR(barrier_.Arrive(replica, ctx.deadline));
    MESHTRAIN_RETURN_IF_ERROR(CrossWorkerThenBarrier(replica, ctx));
    if (replica != 0) CopyFrom(0, data);
    return barrier_.Arrive(replica, ctx.deadline);
  }

  void CopyFrom(int source, absl::Span<float> data) {
    if (!data.empty())
      std::memcpy(data.data(), buffers_[source].data(), data.size() * sizeof(float));
  }

  const Algorithm algorithm_;
  const absl::string_view name_;
  const int n_;
  Communicator* const cross_worker_;
  ReplicaBarrier barrier_;
  // Written by replica r (slot r) before a barrier, read by all after it.
  std::vector<absl::Span<float>> buffers_;
  std::vector<const float*> sources_;                     // replica 0 only
  std::vector<std::vector<const float*>> slice_sources_;  // [replica]: its own
  absl::Status cross_status_;                             // written by replica 0 before a barrier
};

absl::StatusOr<std::unique_ptr<CrossDeviceOps>> CreateForGpus(absl::string_view name,
                                                              int num_replicas,
                                                              Communicator* cross_worker,
                                                              AbortSignal* abort,
                                                              const std::vector<Device>& devices) {
  std::vector<std::string> listed;
  for (const Device& d : devices) listed.push_back(d.ToString());
  const std::string where = absl::StrJoin(listed, ",");
  if (static_cast<int>(devices.size()) != num_replicas ||
      std::any_of(devices.begin(), devices.end(), [](const Device& d) { return d.is_cpu(); })) {
    return absl::InvalidArgumentError(
        absl::StrCat("replicas on ", where, ": cross-device ops need one device per replica (",
                     num_replicas, ") and all of one kind; list only gpu:N or only cpu:N devices"));
  }
  if (name != kNcclCrossDeviceOpsName) {
    return absl::InvalidArgumentError(
        absl::StrCat("cross-device ops '", name, "' sums host memory, but the replicas are on ",
                     where, "; use nccl (the default when all devices are GPUs)"));
  }
#if MESHTRAIN_HAVE_CUDA
  return CreateGpuCrossDeviceOps(devices, cross_worker, abort);
#else
  return absl::FailedPreconditionError(
      absl::StrCat("cross-device ops 'nccl' on ", where,
                   ": this meshtrain was built without CUDA; rebuild "
                   "with the CUDA toolkit (cmake -DMESHTRAIN_CUDA=ON) or use cpu devices"));
#endif
}

}  // namespace

std::vector<absl::string_view> CrossDeviceOpsNames() {
  return {kReduceToOneName, kHierarchicalCopyName, kRingName};
}

absl::StatusOr<std::unique_ptr<CrossDeviceOps>> CreateCrossDeviceOps(
    absl::string_view name, int num_replicas, Communicator* cross_worker, AbortSignal* abort,
    const std::vector<Device>& devices) {
  if (num_replicas < 1) {
    return absl::InvalidArgumentError(absl::StrCat("cross-device ops '", name, "': num_replicas ",
                                                   num_replicas, " must be >= 1"));
  }
  const auto gpus =
      std::count_if(devices.begin(), devices.end(), [](const Device& d) { return !d.is_cpu(); });
  if (gpus > 0) return CreateForGpus(name, num_replicas, cross_worker, abort, devices);
  if (name == kNcclCrossDeviceOpsName) {
    return absl::InvalidArgumentError(
        "cross-device ops 'nccl' needs GPU replicas (--devices gpu:0,gpu:1); CPU replicas use "
        "reduce_to_one_device, hierarchical_copy or ring");
  }
  Algorithm algorithm;
  absl::string_view canonical;
  if (name == kReduceToOneName) {
    algorithm = Algorithm::kReduceToOne;
    canonical = kReduceToOneName;
  } else if (name == kHierarchicalCopyName) {
    algorithm = Algorithm::kHierarchicalCopy;
    canonical = kHierarchicalCopyName;
  } else if (name == kRingName) {
    algorithm = Algorithm::kRing;
    canonical = kRingName;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown cross-device ops '", name, "'; valid: ",
                                                   absl::StrJoin(CrossDeviceOpsNames(), ", ")));
  }
  return std::unique_ptr<CrossDeviceOps>(
      new LocalCrossDeviceOps(algorithm, canonical, num_replicas, cross_worker, abort));
}

}  // namespace meshtrain
