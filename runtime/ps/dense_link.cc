#include "runtime/ps/dense_link.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/base/status_macros.h"
#include "runtime/ps/dense_link_wire.h"

namespace meshtrain {
namespace {

using dense_link::kLeave;
using dense_link::kPull;
using dense_link::kPushPull;
using dense_link::ReplyHeader;
using dense_link::RequestHeader;

// A header's bytes.
template <typename T>
absl::Span<std::byte> HeaderBytes(T& header) {
  return {reinterpret_cast<std::byte*>(&header), sizeof(T)};
}
template <typename T>
absl::Span<const std::byte> ConstBytes(absl::Span<const T> values) {
  return {reinterpret_cast<const std::byte*>(values.data()), values.size() * sizeof(T)};
}
template <typename T>
absl::Span<std::byte> MutableBytes(absl::Span<T> values) {
  return {reinterpret_cast<std::byte*>(values.data()), values.size() * sizeof(T)};
}

// Sends `values` as one message in `dtype`, encoded through `scratch`
// (float32: the floats themselves, no copy).
absl::Status SendEncoded(Transport& transport, int to, WireDtype dtype,
                         absl::Span<const float> values, std::vector<std::byte>& scratch,
                         absl::Time deadline) {
  if (dtype == WireDtype::kFloat32) return transport.Send(to, ConstBytes(values), deadline);
  scratch.resize(WireBytes(dtype, values.size()));
  EncodeWire(dtype, values, absl::MakeSpan(scratch));
  return transport.Send(to, scratch, deadline);
}

// Receives one message in `dtype` into `values` (decoded through `scratch`).
absl::Status RecvDecoded(Transport& transport, int from, WireDtype dtype, absl::Span<float> values,
                         std::vector<std::byte>& scratch, absl::Time deadline) {
  if (dtype == WireDtype::kFloat32) return transport.Recv(from, MutableBytes(values), deadline);
  scratch.resize(WireBytes(dtype, values.size()));
  MESHTRAIN_RETURN_IF_ERROR(transport.Recv(from, absl::MakeSpan(scratch), deadline));
  return DecodeWire(dtype, scratch, values, false);
}

// A deadline far enough for any wait the ps may do on the worker's behalf.
absl::Time Deadline(absl::Duration timeout) {
  return timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DenseLinkServer>> DenseLinkServer::Create(
    ParameterShards* shards, int worker, std::unique_ptr<Transport> transport) {
  if (transport == nullptr || transport->world_size() != 2 ||
      transport->rank() != kDenseLinkPsRank) {
    return absl::InvalidArgumentError("dense link: the ps needs rank 0 of a two-rank transport");
  }
  auto server =
      std::unique_ptr<DenseLinkServer>(new DenseLinkServer(shards, worker, std::move(transport)));
  for (int slot : shards->dense_slots()) {
    server->gradients_.emplace_back(DType::kFloat32, shards->shape(slot));
    server->values_.emplace_back(DType::kFloat32, shards->shape(slot));
  }
  server->versions_.resize(shards->dense_slots().size());
  return server;
}

DenseLinkServer::DenseLinkServer(ParameterShards* shards, int worker,
                                 std::unique_ptr<Transport> transport)
    : shards_(shards),
      worker_(worker),
      transport_(std::move(transport)),
      name_(absl::StrCat("dense link ", shards->task_name(), " <- ",
                         transport_->PeerName(kDenseLinkWorkerRank))),
      wire_dtype_(shards->plan().wire_dtype) {}

absl::Status DenseLinkServer::Serve() {
  const int n = static_cast<int>(values_.size());
  while (true) {
    RequestHeader header;
    // No deadline: a worker computes for as long as it needs between requests;
    // its death or the task's abort ends the wait.
    absl::Status received =
        transport_->Recv(kDenseLinkWorkerRank, HeaderBytes(header), absl::InfiniteFuture());
    if (!received.ok()) return Annotate(received, absl::StrCat(name_, ": waiting for a request"));
    MESHTRAIN_RETURN_IF_ERROR(dense_link::CheckRequestHeader(header, worker_, n, name_));
    if (header.kind == kLeave) {
      shards_->WorkerLeft(worker_);
      return absl::OkStatus();
    }
    const absl::Duration timeout =
        header.timeout_ms <= 0 ? absl::InfiniteDuration() : absl::Milliseconds(header.timeout_ms);
    MESHTRAIN_RETURN_IF_ERROR(Answer(header.kind, header.min_version, Deadline(timeout)));
  }
}

absl::Status DenseLinkServer::Answer(int kind, int64_t min_version, absl::Time deadline) {
  const std::vector<int>& slots = shards_->dense_slots();
  const int n = static_cast<int>(slots.size());
  PushCounts counts;
  absl::Status status;  // the request's outcome, sent back; transport errors return
  std::vector<int64_t> wait_for(n, min_version);
  if (kind == kPushPull) {
    std::vector<int64_t> read(n);
    MESHTRAIN_RETURN_IF_ERROR(
        transport_->Recv(kDenseLinkWorkerRank, MutableBytes(absl::MakeSpan(read)), deadline));
    for (int i = 0; i < n; ++i) {
      // Receive every gradient even after an error, to keep the framing.
      MESHTRAIN_RETURN_IF_ERROR(RecvDecoded(*transport_, kDenseLinkWorkerRank, wire_dtype_,
                                            gradients_[i].flat<float>(), wire_, deadline));
      if (!status.ok()) continue;
      absl::StatusOr<PushOutcome> outcome =
          shards_->Push(worker_, slots[i], gradients_[i], read[i]);
      if (!outcome.ok()) {
        status = outcome.status();
        continue;
      }
      counts.Add(*outcome);
      // A gradient that joined a synchronous step waits for that step's update.
      wait_for[i] = outcome->reason == PushOutcome::Reason::kPending ? read[i] + 1 : 0;
    }
  }
  for (int i = 0; i < n && status.ok(); ++i) {
    absl::StatusOr<int64_t> version =
        shards_->Read(slots[i], values_[i].flat<float>(), wait_for[i], deadline);
    if (!version.ok()) {
      status = version.status();
    } else {
      versions_[i] = *version;
    }
  }
  return Reply(status, counts);
}

absl::Status DenseLinkServer::Reply(const absl::Status& status, const PushCounts& counts) {
  const absl::Time deadline = absl::Now() + absl::Minutes(1);
  ReplyHeader header;
  header.code = static_cast<int32_t>(status.code());
  header.partitions = static_cast<int32_t>(values_.size());
  header.pushes = counts.pushes;
  header.applied = counts.applied;
  header.dropped_stale = counts.dropped_stale;
  header.dropped_warmup = counts.dropped_warmup;
  header.scaled = counts.scaled;
  header.staleness_sum = counts.staleness_sum;
  const std::string error =
      std::string(status.message().substr(0, static_cast<size_t>(dense_link::kMaxErrorBytes)));
  header.error_bytes = static_cast<int32_t>(error.size());
  MESHTRAIN_RETURN_IF_ERROR(transport_->Send(kDenseLinkWorkerRank, HeaderBytes(header), deadline));
  if (!status.ok()) {
    return transport_->Send(kDenseLinkWorkerRank,
                            {reinterpret_cast<const std::byte*>(error.data()), error.size()},
                            deadline);
  }
  MESHTRAIN_RETURN_IF_ERROR(
      transport_->Send(kDenseLinkWorkerRank, ConstBytes(absl::MakeConstSpan(versions_)), deadline));
  for (const Tensor& value : values_) {
    MESHTRAIN_RETURN_IF_ERROR(SendEncoded(*transport_, kDenseLinkWorkerRank, wire_dtype_,
                                          value.flat<float>(), wire_, deadline));
  }
  return absl::OkStatus();
}

DenseLinkClient::DenseLinkClient(std::unique_ptr<Transport> transport, int worker,
                                 std::vector<int64_t> partition_elements, WireDtype wire_dtype)
    : transport_(std::move(transport)),
      worker_(worker),
      elements_(std::move(partition_elements)),
      wire_dtype_(wire_dtype) {}

void DenseLinkClient::CheckSpans(absl::Span<const absl::Span<float>> values,
                                 absl::Span<int64_t> versions) const {
  MESHTRAIN_CHECK(values.size() == elements_.size() && versions.size() == elements_.size())
      << "dense link: " << values.size() << " values for " << elements_.size() << " partitions";
  for (size_t i = 0; i < values.size(); ++i) {
    MESHTRAIN_CHECK(static_cast<int64_t>(values[i].size()) == elements_[i])
        << "dense link: value " << i << " has room for " << values[i].size() << " elements, not "
        << elements_[i];
  }
}

absl::Status DenseLinkClient::SendHeader(int kind, int64_t min_version, absl::Duration timeout,
                                         absl::Time deadline) {
  RequestHeader header;
  header.kind = static_cast<uint32_t>(kind);
  header.worker = worker_;
  header.partitions = num_partitions();
  header.min_version = min_version;
  header.timeout_ms = timeout == absl::InfiniteDuration() ? 0 : absl::ToInt64Milliseconds(timeout);
  return transport_->Send(kDenseLinkPsRank, HeaderBytes(header), deadline);
}

absl::Status DenseLinkClient::ReceiveReply(absl::Span<const absl::Span<float>> values,
                                           absl::Span<int64_t> versions, absl::Time deadline,
                                           PushCounts* counts) {
  const std::string peer = transport_->PeerName(kDenseLinkPsRank);
  ReplyHeader header;
  MESHTRAIN_RETURN_IF_ERROR(transport_->Recv(kDenseLinkPsRank, HeaderBytes(header), deadline));
  MESHTRAIN_RETURN_IF_ERROR(dense_link::CheckReplyHeader(header, num_partitions(), peer));
  if (header.code != 0) {
    std::string error(static_cast<size_t>(header.error_bytes), '\0');
    MESHTRAIN_RETURN_IF_ERROR(transport_->Recv(
        kDenseLinkPsRank, {reinterpret_cast<std::byte*>(error.data()), error.size()}, deadline));
    return absl::Status(static_cast<absl::StatusCode>(header.code),
                        absl::StrCat(peer, ": ", error));
  }
  if (counts != nullptr) {
    counts->pushes += header.pushes;
    counts->applied += header.applied;
    counts->dropped_stale += header.dropped_stale;
    counts->dropped_warmup += header.dropped_warmup;
    counts->scaled += header.scaled;
    counts->staleness_sum += header.staleness_sum;
  }
  MESHTRAIN_RETURN_IF_ERROR(transport_->Recv(kDenseLinkPsRank, MutableBytes(versions), deadline));
  for (const absl::Span<float>& value : values) {
    MESHTRAIN_RETURN_IF_ERROR(
        RecvDecoded(*transport_, kDenseLinkPsRank, wire_dtype_, value, wire_, deadline));
  }
  return absl::OkStatus();
}

absl::Status DenseLinkClient::Pull(int64_t min_version, absl::Span<const absl::Span<float>> values,
                                   absl::Span<int64_t> versions, absl::Duration timeout) {
  CheckSpans(values, versions);
  const absl::Time deadline = Deadline(timeout);
  MESHTRAIN_RETURN_IF_ERROR(SendHeader(kPull, min_version, timeout, deadline));
  return ReceiveReply(values, versions, deadline, nullptr);
}

absl::Status DenseLinkClient::PushPull(absl::Span<const int64_t> read_versions,
                                       absl::Span<const absl::Span<const float>> gradients,
                                       absl::Span<const absl::Span<float>> values,
                                       absl::Span<int64_t> versions, absl::Duration timeout,
                                       PushCounts* counts) {
  CheckSpans(values, versions);
  MESHTRAIN_CHECK(read_versions.size() == elements_.size() && gradients.size() == elements_.size())
      << "dense link push of " << gradients.size() << " partitions, the link has "
      << elements_.size();
  for (size_t i = 0; i < gradients.size(); ++i) {
    MESHTRAIN_CHECK(static_cast<int64_t>(gradients[i].size()) == elements_[i])
        << "dense link: gradient " << i << " has " << gradients[i].size() << " elements, not "
        << elements_[i];
  }
  const absl::Time deadline = Deadline(timeout);
  MESHTRAIN_RETURN_IF_ERROR(SendHeader(kPushPull, 0, timeout, deadline));
  MESHTRAIN_RETURN_IF_ERROR(
      transport_->Send(kDenseLinkPsRank, ConstBytes(read_versions), deadline));
  for (const absl::Span<const float>& g : gradients) {
    MESHTRAIN_RETURN_IF_ERROR(
        SendEncoded(*transport_, kDenseLinkPsRank, wire_dtype_, g, wire_, deadline));
  }
  return ReceiveReply(values, versions, deadline, counts);
}

absl::Status DenseLinkClient::Leave() {
  if (left_) return absl::OkStatus();
  left_ = true;
  return SendHeader(kLeave, 0, absl::ZeroDuration(), absl::Now() + absl::Seconds(30));
}

}  // namespace meshtrain
