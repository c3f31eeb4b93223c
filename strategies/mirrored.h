// MirroredStrategy: synchronous data parallelism with a copy of every variable
// on every replica. Also MultiWorkerMirroredStrategy: the same on each worker,
// with gradients summed across workers by a Communicator (ring AllReduce over
// shared memory, TCP or gRPC; NCCL on GPUs) inside the cross-device op.
//
// A step, per replica thread:
//   1. forward and backward on the replica's slice of this worker's batch;
//      each gradient bucket, once final, is summed over all replicas (and
//      workers) before backward goes on to earlier layers (GradientOverlap);
//   2. the last bucket is summed;
//   3. apply the optimizer to the replica's own copy. Every replica applies the
//      same summed bytes with the same code, so copies stay bitwise identical.
// Step timing (replica 0's): compute = 1 and 3; the time 2 takes is exposed
// communication, split into wait (the replica's combining blocked on other
// replicas or workers, as the barrier and transport counters saw it, capped at
// the exposed time) and communicate (the rest). Bytes are the cross-worker
// communicator's, so zero on one worker.
// Driven by one thread; runs one thread per replica (and, with
// GradientOverlap::kThread, one combiner thread per replica).
#ifndef MESHTRAIN_STRATEGIES_MIRRORED_H_
#define MESHTRAIN_STRATEGIES_MIRRORED_H_

#include <memory>
#include <string>
#include <vector>

#include "runtime/base/abort_signal.h"
#include "runtime/base/fork_join_pool.h"
#include "runtime/base/trace.h"
#include "runtime/collective/communicator.h"
#include "runtime/collective/cross_device_ops.h"
#include "runtime/optim/optimizer.h"
#include "runtime/optim/variable_store.h"
#include "strategies/bucket_combiner.h"
#include "strategies/cross_worker.h"
#include "strategies/gradient_buckets.h"
#include "strategies/replica.h"
#include "strategies/store_checkpoint.h"
#include "strategies/strategy.h"
#include "strategies/strategy_config.h"

namespace meshtrain {

// When a replica sums a gradient bucket with the other replicas:
//   kThread: its combiner thread sums the bucket while the replica's backward
//     goes on: true concurrency, worth it where a core is free to run it (or
//     the bytes travel on a network or a GPU);
//   kInline: the replica sums the bucket as soon as backward has finished it,
//     then goes on: no thread hand-offs, which is what CPU replicas that fill
//     every core want (on two cores the threaded form measured 10-15% slower);
//   kAfterBackward: every bucket once the whole backward is done.
enum class GradientOverlap { kThread, kInline, kAfterBackward };

class MirroredStrategy final : public Strategy {
 public:
  struct Options {
    std::string name = "mirrored";  // or "multi_worker_mirrored"
    std::vector<Device> devices;
    std::string cross_device_ops = "reduce_to_one_device";
    int64_t bytes_per_pack = kDefaultBytesPerPack;  // gradient_buckets.h
    GradientOverlap overlap = GradientOverlap::kInline;
    // Across workers (MultiWorkerMirrored), owned; no communicator on one
    // worker.
    CrossWorkerLink cross_worker;
    int worker_rank = 0;
    int num_workers = 1;
    const Optimizer* optimizer = nullptr;
    uint64_t seed = 0;
    AbortSignal* abort = nullptr;
    Tracer* tracer = nullptr;  // null: no spans
    absl::Duration collective_timeout = absl::Seconds(60);
  };

  // The pointers in `options` must outlive the strategy.
  static absl::StatusOr<std::unique_ptr<MirroredStrategy>> Create(Options options);
  ~MirroredStrategy() override;

  absl::StatusOr<VariableId> CreateVariable(const VariableSpec& spec) override;
  std::string name() const override { return options_.name; }
  int num_replicas_in_sync() const override {
    return static_cast<int>(options_.devices.size()) * options_.num_workers;
  }
  InputShard input_shard() const override { return {options_.num_workers, options_.worker_rank}; }
  absl::Status Build() override;
  absl::StatusOr<StepResult> Run(const StepFn& step, const Batch& batch,
                                 int64_t global_batch_size) override;
  absl::Status Read(const std::function<absl::Status(ReplicaContext&)>& fn) override;
  absl::StatusOr<std::string> ParameterChecksum() override;
  void Describe(nlohmann::json& summary) const override;
  absl::StatusOr<std::unique_ptr<CheckpointJob>> PrepareCheckpoint() override;
  absl::Status Restore(const CheckpointReader& checkpoint) override;
  RecoveryPolicy recovery_policy() const override {
    return {.replicated_state = cross_worker() != nullptr};
  }
  absl::Status ShareState(int root) override;

  // Replica `i`'s store (tests check that copies stay identical).
  const VariableStore& store(int i) const { return *replicas_[i].store; }

 private:
  struct ReplicaState {
    std::unique_ptr<Replica> replica;
    std::unique_ptr<VariableStore> store;
    std::unique_ptr<GradientBuckets> buckets;
    std::unique_ptr<BucketCombiner> combiner;  // GradientOverlap::kThread only
    absl::Status inline_status;                // kInline: first error of this step
    absl::Duration inline_time;      // combining inside forward and backward (kInline, sums of
                                     // layer statistics)
    absl::Duration early_combining;  // kThread: the combiner's busy time before a
                                     // SumOverReplicas
    LossStats loss;
    absl::Duration compute;
    absl::Duration exposed;  // waiting for or doing combining after backward
    absl::Duration wait;     // the part of `exposed` blocked on peers
    absl::Duration combining;
    bool replica_thread_named = false;   // touched by the replica's thread only
    bool combiner_thread_named = false;  // touched by the combiner's thread only
  };

  explicit MirroredStrategy(Options options) : options_(std::move(options)) {}
  // Null on one worker.
  Communicator* cross_worker() const { return options_.cross_worker.communicator.get(); }
  absl::Status CombineBucket(int replica, int bucket);
  // ReplicaContext::SumOverReplicas of `replica`: over every replica and worker.
  absl::Status SumOverReplicas(int replica, Tensor& values);
  absl::Status ReplicaStep(int replica, const StepFn& step, const Batch& slice, float grad_scale);
  // Time `replica` has spent blocked on peers so far (replicas and workers).
  absl::Duration Blocked(int replica) const;

  Options options_;
  std::vector<VariableSpec> specs_;
  std::vector<ReplicaState> replicas_;
  std::unique_ptr<CrossDeviceOps> cross_device_ops_;
  std::unique_ptr<ForkJoinPool> pool_;
  int64_t step_ = 0;
  std::shared_ptr<SnapshotBuffers> snapshot_buffers_ = std::make_shared<SnapshotBuffers>();
};

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_MIRRORED_H_
