// DenseLink: the dense pull/push protocol between one worker and one ps task
// over a Transport (shared memory between the tasks of one host, raw TCP
// between hosts; Mesh::CreateTransport negotiates which). It carries the bulk
// of a step's bytes with the meaning of the PullDense/PushDense RPCs
// (proto/ps.proto) but without a protobuf copy or an HTTP/2 frame: a 1 MiB
// gradient costs a memcpy into the ring, not a gRPC round trip.
//
// The transport has no tags, so every message's size is known to both sides:
// the link covers the ps's dense partitions in plan order (n of them), and
// both sides derive their shapes from the plan. Transport rank 0 is the ps,
// rank 1 the worker.
//   request:  header (64 B: magic, kind, worker, n, min_version, timeout_ms)
//             kPushPull only: the versions read (n x int64), then one message
//             per partition: its gradient;
//   reply:    header (64 B: magic, status code, push counts, error length)
//             OK: the versions (n x int64), then one message per partition:
//             its value; otherwise the error text.
// Kinds: kPull (values once every version >= min_version), kPushPull (push,
// then the values after it — in synchronous mode after the step's update),
// kLeave (the worker finished training; no reply).
// The ps applies partition i while the worker is still streaming partition
// i + 1, so the update overlaps the transfer.
// Gradients and values travel in the plan's wire dtype (PsPlan::wire_dtype,
// runtime/transport/wire_codec.h): one message per partition of
// WireBytes(dtype, elements) bytes, encoded by the sender and decoded into
// float32 by the receiver (the ps applies float32 gradients to float32 values).
//
// Thread-safety: a client is driven by one thread; a server's Serve() runs on
// one thread. Both end when the transport fails (a dead peer is kUnavailable
// within milliseconds on shared memory) or the transport's AbortSignal fires.
#ifndef MESHTRAIN_RUNTIME_PS_DENSE_LINK_H_
#define MESHTRAIN_RUNTIME_PS_DENSE_LINK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "runtime/ps/parameter_shards.h"
#include "runtime/transport/transport.h"
#include "runtime/transport/wire_codec.h"

namespace meshtrain {

// Transport ranks of a link.
inline constexpr int kDenseLinkPsRank = 0;
inline constexpr int kDenseLinkWorkerRank = 1;

class DenseLinkServer {
 public:
  // Serves training rank `worker` over `transport` (whose rank 0 is this ps).
  // `shards` must outlive the server.
  static absl::StatusOr<std::unique_ptr<DenseLinkServer>> Create(
      ParameterShards* shards, int worker, std::unique_ptr<Transport> transport);

  // Answers requests until the worker leaves (OK) or the link fails (its status).
  absl::Status Serve();

 private:
  DenseLinkServer(ParameterShards* shards, int worker, std::unique_ptr<Transport> transport);
  // One request after its header; an error status breaks the link.
  absl::Status Answer(int kind, int64_t min_version, absl::Time deadline);
  absl::Status Reply(const absl::Status& status, const PushCounts& counts);

  ParameterShards* const shards_;
  const int worker_;
  std::unique_ptr<Transport> transport_;
  std::string name_;               // "dense link ps:0 <- worker:1"
  std::vector<Tensor> gradients_;  // per dense slot, reused
  std::vector<Tensor> values_;     // per dense slot, reused
  std::vector<int64_t> versions_;
  const WireDtype wire_dtype_;   // the plan's
  std::vector<std::byte> wire_;  // one encoded partition (16-bit wire), reused
};

class DenseLinkClient {
 public:
  // `partition_elements`: the elements of each of the ps's dense partitions,
  // plan order. `transport`'s rank 1 is this worker. `wire_dtype`: the plan's.
  DenseLinkClient(std::unique_ptr<Transport> transport, int worker,
                  std::vector<int64_t> partition_elements,
                  WireDtype wire_dtype = WireDtype::kFloat32);

  absl::string_view kind() const { return transport_->kind(); }
  int num_partitions() const { return static_cast<int>(elements_.size()); }

  // Every partition's value into `values` (one span per partition, exactly
  // its elements) once its version >= min_version; versions into `versions`.
  absl::Status Pull(int64_t min_version, absl::Span<const absl::Span<float>> values,
                    absl::Span<int64_t> versions, absl::Duration timeout);
  // Pushes `gradients` computed from `read_versions`, then receives the values
  // after the push; `counts` accumulates what the ps did with the gradients.
  absl::Status PushPull(absl::Span<const int64_t> read_versions,
                        absl::Span<const absl::Span<const float>> gradients,
                        absl::Span<const absl::Span<float>> values, absl::Span<int64_t> versions,
                        absl::Duration timeout, PushCounts* counts);
  // Tells the ps this worker finished (no reply).
  absl::Status Leave();

 private:
  // Programmer bugs (sizes the plan fixed) are checked, not returned.
  void CheckSpans(absl::Span<const absl::Span<float>> values, absl::Span<int64_t> versions) const;
  absl::Status SendHeader(int kind, int64_t min_version, absl::Duration timeout,
                          absl::Time deadline);
  absl::Status ReceiveReply(absl::Span<const absl::Span<float>> values,
                            absl::Span<int64_t> versions, absl::Time deadline, PushCounts* counts);

  std::unique_ptr<Transport> transport_;
  const int worker_;
  const std::vector<int64_t> elements_;
  const WireDtype wire_dtype_;
  std::vector<std::byte> wire_;  // one encoded partition (16-bit wire), reused
  bool left_ = false;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_PS_DENSE_LINK_H_
