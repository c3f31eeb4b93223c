// PsClient: a training worker's side of the parameter servers. It knows the
// plan (which ps holds which rows of which variable), talks to every ps over
// the ParameterServer gRPC service, and moves dense tensors over a DenseLink
// per ps where one was given (shared memory on one host), else over gRPC.
//
// What a worker's step costs, per ps and in parallel over the ps tasks (the
// first ps on the calling thread, the others on the client's own threads):
//   - ReadRows of an embedding: one PullRows per partition the batch touches;
//   - the update: one request that pushes the step's dense gradients (and
//     one PushRows per touched sparse partition) and answers with the values
//     after the push, so the next step needs no separate pull.
// Versions: the client remembers, per partition, the version it last read and
// sends it with the gradient computed from it. In synchronous mode it also
// remembers which pushes joined a step, so its next pull waits for that step.
//
// Checkpoints: the ps tasks write and restore their own partitions
// (SaveShards, RestoreShards); no tensor passes through the worker.
//
// Thread-safety: one thread drives a client (the strategy's); it runs its own
// helper threads inside calls. The one exception is SaveShards, which any
// thread may call at any time, also while the driving thread pushes and pulls
// (a saver's background thread does): it uses only the gRPC stubs, which are
// thread-safe, and threads of its own, never the helper pool, the dense links
// or the remembered versions. options.abort must outlive the client.
#ifndef MESHTRAIN_RUNTIME_PS_PS_CLIENT_H_
#define MESHTRAIN_RUNTIME_PS_PS_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/base/abort_signal.h"
#include "runtime/base/fork_join_pool.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/model/variable.h"
#include "runtime/ps/dense_link.h"
#include "runtime/ps/parameter_shards.h"
#include "runtime/ps/ps_plan.h"
#include "runtime/rpc/channel_cache.h"
#include "runtime/transport/transport.h"

namespace meshtrain {

struct PsClientOptions {
  PsPlan plan;
  int worker = 0;                         // this worker's training rank (0: the chief)
  std::vector<std::string> ps_addresses;  // "host:port", by ps index
  std::vector<std::string> ps_names;      // for errors: "ps:0 (127.0.0.1:2222)"
  // One per ps (rank 1 of each is this worker), or empty: dense tensors over gRPC.
  std::vector<std::unique_ptr<Transport>> dense_links;
  AbortSignal* abort = nullptr;
  // The longest one request may take, waits for a synchronous step included.
  absl::Duration timeout = absl::Minutes(5);
  // The gRPC channels to the ps tasks (the mesh's: TLS when it is secure).
  ChannelOptions channels;
};

// A sparse variable's gradient: rows `ids` (distinct, int64 [n]) and their
// gradient `rows` [n, row elements].
struct SparseGradient {
  VariableId variable = 0;
  Tensor ids;
  Tensor rows;
};

// One ps task's answer to Stats().
struct PsTaskStats {
  PsStats stats;
  std::string checksum;
};

class PsClient {
 public:
  static absl::StatusOr<std::unique_ptr<PsClient>> Create(PsClientOptions options);
  ~PsClient();
  PsClient(const PsClient&) = delete;
  PsClient& operator=(const PsClient&) = delete;

  const PsPlan& plan() const { return options_.plan; }
  // How dense tensors travel: "shm", "tcp" or "grpc".
  std::string data_path() const;

  // Every dense variable's value into values[id] (host float32 tensors shaped
  // like the variable; entries of sparse variables are left alone), once each
  // partition's version is at least `min_version` (warm-up waits on it).
  absl::Status PullDense(absl::Span<Tensor> values, int64_t min_version = 0);

  // Rows `ids` (int64 [n], distinct) of sparse variable `variable`, [n, row
  // elements], gathered from the partitions that hold them.
  absl::StatusOr<Tensor> PullRows(VariableId variable, const Tensor& ids);

  // One step's update: dense_gradients[id] for every dense variable (shaped
  // like it), `sparse` for the sparse ones; then values[id] receives every
  // dense variable's value after the push. `counts` accumulates what the ps
  // tasks did with the gradients (applied, dropped, staleness).
  absl::Status Push(absl::Span<const Tensor> dense_gradients,
                    absl::Span<const SparseGradient> sparse, absl::Span<Tensor> values,
                    PushCounts* counts);

  // Tells every ps this worker finished (synchronous steps stop waiting for it).
  // Pulls still work afterwards (over gRPC: the ps ended its side of the
  // links); pushes do not.
  absl::Status Leave();

  // Each ps task's counters and (unless `with_checksum` is false: it holds
  // up pushes while it reads every value) checksum, in task order.
  absl::StatusOr<std::vector<PsTaskStats>> Stats(bool with_checksum = true);

  // Asks every ps task, in parallel, to write its partitions into `checkpoint_dir`
  // (existing, shared by every task) as "ps-0000I-of-0000N.safetensors" (I the ps
  // index, N the number of ps, 5 digits each); returns their parts in ps order.
  // A relative directory is taken from this process's working directory. Each
  // ps copies each partition under its lock when the request arrives, so the
  // parts hold the values of that moment, not of one step (asynchronous
  // training has no step that all partitions share). Safe from any thread (see
  // above).
  absl::StatusOr<std::vector<PartRecord>> SaveShards(const std::string& checkpoint_dir);
  // Asks every ps task, in parallel, to restore its partitions from the checkpoint
  // (committed; any partitioning wrote it), then forgets the versions this
  // client read (ForgetVersions), whether or not every ps succeeded.
  absl::Status RestoreShards(const std::string& checkpoint_dir);
  // After a restore elsewhere: forget the versions this client read (the next
  // pull reads afresh).
  void ForgetVersions();

  struct Connection;  // one ps task (ps_client.cc)

 private:
  explicit PsClient(PsClientOptions options);
  // Runs fn(ps) for every ps task at once; the first error wins.
  absl::Status ForEachPs(const std::function<absl::Status(int ps)>& fn);
  absl::Status PushToPs(int ps, absl::Span<const Tensor> dense_gradients,
                        absl::Span<const SparseGradient> sparse, absl::Span<Tensor> values,
                        PushCounts* counts);

  PsClientOptions options_;
  std::vector<std::unique_ptr<Connection>> connections_;
  // Per partition of the plan: the version last read, and in synchronous mode
  // the version the next read must wait for.
  std::vector<int64_t> read_version_;
  std::vector<int64_t> min_version_;
  bool left_ = false;
  // Calls every ps at once, index 0 on the caller's thread (one caller at a time).
  std::unique_ptr<ForkJoinPool> pool_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_PS_PS_CLIENT_H_
