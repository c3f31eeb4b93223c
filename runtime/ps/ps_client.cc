#include "runtime/ps/ps_client.h"

#include <cstring>
#include <filesystem>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "proto/ps.grpc.pb.h"
#include "runtime/base/check.h"
#include "runtime/base/json_reader.h"
#include "runtime/base/status_macros.h"
#include "runtime/rpc/cancel_on_abort.h"
#include "runtime/rpc/channel_cache.h"
#include "runtime/rpc/grpc_status.h"
#include "runtime/transport/wire_codec.h"

namespace meshtrain {
namespace {

void ToRef(const PsPlan& plan, const Partition& p, proto::PartitionRef* ref) {
  ref->set_variable(plan.specs[p.variable].name);
  ref->set_partition(p.index);
}

// One RPC's context: a deadline, and cancelled when the task aborts. It waits
// for the channel to be ready: a ps whose link is saturated may take seconds
// to answer a new connection's handshake, and a fail-fast call would end a
// healthy job then. A dead ps is still noticed at once: the coordination
// service declares it dead and the abort cancels the call.
struct CallContext {
  CallContext(AbortSignal* abort, absl::Duration timeout) : cancel(abort, &context) {
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    context.set_wait_for_ready(true);
  }
  grpc::ClientContext context;
  CancelOnAbort cancel;
};

// A call's outcome, naming the call and the ps only when it failed (no
// strings are built on the success path of a step).
absl::Status Checked(const absl::Status& status, absl::string_view what, const std::string& ps) {
  return status.ok() ? status : Annotate(status, absl::StrCat(what, " ", ps));
}
absl::Status Checked(const grpc::Status& status, absl::string_view what, const std::string& ps) {
  return status.ok() ? absl::OkStatus() : FromGrpcStatus(status, absl::StrCat(what, " ", ps));
}

PushOutcome FromProto(const proto::PushOutcome& o) {
  PushOutcome outcome;
  outcome.reason = PushReasonFromName(o.reason());
  outcome.staleness = o.staleness();
  outcome.lr_scale = o.lr_scale();
  return outcome;
}

// A checkpoint directory as the ps tasks must see it: absolute.
std::string AbsoluteDir(const std::string& dir) {
  std::error_code error;
  const std::filesystem::path absolute = std::filesystem::absolute(dir, error);
  return error ? dir : absolute.lexically_normal().string();
}

// Rows [row_begin, row_end) of a whole-variable tensor, as floats.
absl::Span<float> PartitionOf(Tensor& whole, const Partition& p) {
  const int64_t cols = whole.shape().row_elements();
  return whole.flat<float>().subspan(static_cast<size_t>(p.row_begin * cols),
                                     static_cast<size_t>(p.rows * cols));
}
absl::Span<const float> PartitionOf(const Tensor& whole, const Partition& p) {
  const int64_t cols = whole.shape().row_elements();
  return whole.flat<float>().subspan(static_cast<size_t>(p.row_begin * cols),
                                     static_cast<size_t>(p.rows * cols));
}

}  // namespace

struct PsClient::Connection {
  int ps = 0;
  std::string name;  // "ps:0 (127.0.0.1:2222)"
  std::unique_ptr<proto::ParameterServer::Stub> stub;
  std::unique_ptr<DenseLinkClient> link;  // null: dense tensors over gRPC
  std::vector<int> dense;         // plan partition indices of dense partitions here, plan order
  std::vector<int64_t> versions;  // scratch, per dense partition
};

namespace {

// "dense_0/kernel partition 1", for errors.
std::string Describe(const PsPlan& plan, int partition) {
  const Partition& p = plan.placement.partitions()[partition];
  return absl::StrCat(plan.specs[p.variable].name, " partition ", p.index);
}

absl::Span<const std::byte> AsBytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Copies (decodes) the values of c's dense partitions from a PullDense or PushDense
// answer into `values`, and their versions into c.versions.
absl::Status ReceiveValues(const PsPlan& plan, PsClient::Connection& c,
                           const google::protobuf::RepeatedPtrField<proto::PsTensor>& got,
                           absl::Span<Tensor> values, absl::string_view what) {
  const std::vector<Partition>& parts = plan.placement.partitions();
  if (got.size() != static_cast<int>(c.dense.size())) {
    return absl::InternalError(absl::StrCat(what, " ", c.name, ": ", got.size(), " values for ",
                                            c.dense.size(), " partitions"));
  }
  for (size_t i = 0; i < c.dense.size(); ++i) {
    const proto::PsTensor& v = got[static_cast<int>(i)];
    absl::Span<float> out = PartitionOf(values[parts[c.dense[i]].variable], parts[c.dense[i]]);
    if (v.dtype() != WireDtypeName(plan.wire_dtype) ||
        v.data().size() != WireBytes(plan.wire_dtype, out.size())) {
      return absl::InternalError(absl::StrCat(what, " ", c.name, ": ", v.data().size(),
                                              " bytes of ", v.dtype(), " for ",
                                              Describe(plan, c.dense[i]), " (the plan's wire is ",
                                              WireDtypeName(plan.wire_dtype), ")"));
    }
    if (plan.wire_dtype == WireDtype::kFloat32) {
      std::memcpy(out.data(), v.data().data(), v.data().size());
    } else {
      MESHTRAIN_RETURN_IF_ERROR(
          Annotate(DecodeWire(plan.wire_dtype, AsBytes(v.data()), out, false),
                   absl::StrCat(what, " ", c.name, ": ", Describe(plan, c.dense[i]))));
    }
    c.versions[i] = v.version();
  }
  return absl::OkStatus();
}

}  // namespace

PsClient::PsClient(PsClientOptions options) : options_(std::move(options)) {}

PsClient::~PsClient() { pool_.reset(); }

absl::StatusOr<std::unique_ptr<PsClient>> PsClient::Create(PsClientOptions options) {
  const int num_ps = options.plan.placement.num_ps();
  if (static_cast<int>(options.ps_addresses.size()) != num_ps ||
      static_cast<int>(options.ps_names.size()) != num_ps) {
    return absl::InvalidArgumentError(absl::StrCat("ps client: ", options.ps_addresses.size(),
                                                   " addresses for a plan of ", num_ps,
                                                   " ps tasks"));
  }
  if (!options.dense_links.empty() && static_cast<int>(options.dense_links.size()) != num_ps) {
    return absl::InvalidArgumentError("ps client: give a dense link for every ps task, or none");
  }
  if (options.worker < 0 || options.worker >= options.plan.rules.num_workers) {
    return absl::InvalidArgumentError(absl::StrCat("ps client: worker rank ", options.worker,
                                                   " outside the plan's ",
                                                   options.plan.rules.num_workers, " workers"));
  }
  auto client = std::unique_ptr<PsClient>(new PsClient(std::move(options)));
  const PsPlan& plan = client->options_.plan;
  ChannelCache channels{client->options_.channels};
  for (int ps = 0; ps < num_ps; ++ps) {
    auto c = std::make_unique<Connection>();
    c->ps = ps;
    c->name = client->options_.ps_names[ps];
    c->stub = proto::ParameterServer::NewStub(
        channels.Get(client->options_.ps_addresses[ps], ChannelPurpose::kData));
    std::vector<int64_t> elements;
    const std::vector<Partition>& parts = plan.placement.partitions();
    for (int i = 0; i < static_cast<int>(parts.size()); ++i) {
      if (parts[i].ps != ps || plan.specs[parts[i].variable].sparse) continue;
      c->dense.push_back(i);
      elements.push_back(parts[i].rows * plan.specs[parts[i].variable].shape.row_elements());
    }
    c->versions.resize(c->dense.size());
    if (!client->options_.dense_links.empty()) {
      c->link = std::make_unique<DenseLinkClient>(std::move(client->options_.dense_links[ps]),
                                                  client->options_.worker, std::move(elements),
                                                  plan.wire_dtype);
    }
    client->connections_.push_back(std::move(c));
  }
  client->options_.dense_links.clear();
  client->read_version_.assign(plan.placement.partitions().size(), 0);
  client->min_version_.assign(plan.placement.partitions().size(), 0);
  client->pool_ =
      std::make_unique<ForkJoinPool>(num_ps, ForkJoinPool::Options{.caller_runs_first = true});
  return client;
}

std::string PsClient::data_path() const {
  return connections_.empty() || connections_[0]->link == nullptr
             ? "grpc"
             : std::string(connections_[0]->link->kind());
}

absl::Status PsClient::ForEachPs(const std::function<absl::Status(int ps)>& fn) {
  return pool_->Run(fn);
}

absl::Status PsClient::PullDense(absl::Span<Tensor> values, int64_t min_version) {
  const PsPlan& plan = options_.plan;
  const std::vector<Partition>& parts = plan.placement.partitions();
  return ForEachPs([&](int ps) -> absl::Status {
    Connection& c = *connections_[ps];
    if (c.dense.empty()) return absl::OkStatus();
    if (c.link != nullptr && !left_) {
      std::vector<absl::Span<float>> spans;
      for (int p : c.dense) spans.push_back(PartitionOf(values[parts[p].variable], parts[p]));
      MESHTRAIN_RETURN_IF_ERROR(
          Checked(c.link->Pull(min_version, spans, absl::MakeSpan(c.versions), options_.timeout),
                  "pull from", c.name));
    } else {
      proto::PullDenseRequest request;
      request.set_worker(options_.worker);
      request.set_min_version(min_version);
      for (int p : c.dense) ToRef(plan, parts[p], request.add_refs());
      proto::PullDenseResponse response;
      CallContext call(options_.abort, options_.timeout);
      MESHTRAIN_RETURN_IF_ERROR(
          Checked(c.stub->PullDense(&call.context, request, &response), "pull from", c.name));
      MESHTRAIN_RETURN_IF_ERROR(ReceiveValues(plan, c, response.values(), values, "pull from"));
    }
    for (size_t i = 0; i < c.dense.size(); ++i) read_version_[c.dense[i]] = c.versions[i];
    return absl::OkStatus();
  });
}

absl::StatusOr<Tensor> PsClient::PullRows(VariableId variable, const Tensor& ids) {
  const PsPlan& plan = options_.plan;
  if (variable < 0 || variable >= static_cast<int>(plan.specs.size()) ||
      !plan.specs[variable].sparse) {
    return absl::InvalidArgumentError(
        absl::StrCat("pull rows of variable ", variable, ": not a sparse variable of the plan"));
  }
  const VariableSpec& spec = plan.specs[variable];
  const int64_t cols = spec.shape.row_elements();
  const int64_t total_rows = spec.shape.dim(0);
  absl::Span<const Partition> parts = plan.placement.PartitionsOf(variable);
  const int first = static_cast<int>(&parts[0] - plan.placement.partitions().data());
  // Which ids each partition answers, and where their rows go.
  std::vector<std::vector<int64_t>> part_ids(parts.size());
  std::vector<std::vector<int64_t>> positions(parts.size());
  absl::Span<const int64_t> all = ids.flat<int64_t>();
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i] < 0 || all[i] >= total_rows) {
      return absl::InvalidArgumentError(
          absl::StrCat("reading row ", all[i], " of ", spec.name, spec.shape.ToString()));
    }
    const int k = plan.placement.PartitionOfRow(variable, all[i]).index;
    part_ids[k].push_back(all[i]);
    positions[k].push_back(static_cast<int64_t>(i));
  }
  Tensor out(DType::kFloat32, spec.shape.WithRows(static_cast<int64_t>(all.size())));
  const bool sync = plan.rules.synchronous();
  MESHTRAIN_RETURN_IF_ERROR(ForEachPs([&](int ps) -> absl::Status {
    Connection& c = *connections_[ps];
    for (size_t k = 0; k < parts.size(); ++k) {
      // A synchronous step needs every partition's current version for its push.
      if (parts[k].ps != ps || (part_ids[k].empty() && !sync)) continue;
      const int p = first + static_cast<int>(k);
      proto::PullRowsRequest request;
      request.set_worker(options_.worker);
      ToRef(plan, parts[k], request.mutable_ref());
      request.mutable_ids()->Add(part_ids[k].begin(), part_ids[k].end());
      request.set_min_version(min_version_[p]);
      proto::PullRowsResponse response;
      CallContext call(options_.abort, options_.timeout);
      MESHTRAIN_RETURN_IF_ERROR(
          Checked(c.stub->PullRows(&call.context, request, &response), "pull rows from", c.name));
      if (response.rows().size() != part_ids[k].size() * cols * sizeof(float)) {
        return absl::InternalError(
            absl::StrCat("pull rows from ", c.name, ": ", response.rows().size(), " bytes for ",
                         part_ids[k].size(), " rows of ", Describe(plan, p)));
      }
      const char* rows = response.rows().data();
      for (size_t r = 0; r < positions[k].size(); ++r) {
        std::memcpy(out.data<float>() + positions[k][r] * cols, rows + r * cols * sizeof(float),
                    cols * sizeof(float));
      }
      read_version_[p] = response.version();
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::Status PsClient::Push(absl::Span<const Tensor> dense_gradients,
                            absl::Span<const SparseGradient> sparse, absl::Span<Tensor> values,
                            PushCounts* counts) {
  if (left_) {
    return absl::FailedPreconditionError("push after this worker left the parameter servers");
  }
  std::vector<PushCounts> per_ps(connections_.size());
  absl::Status status =
      ForEachPs([&](int ps) { return PushToPs(ps, dense_gradients, sparse, values, &per_ps[ps]); });
  for (const PushCounts& c : per_ps) counts->Merge(c);
  return status;
}

absl::Status PsClient::PushToPs(int ps, absl::Span<const Tensor> dense_gradients,
                                absl::Span<const SparseGradient> sparse, absl::Span<Tensor> values,
                                PushCounts* counts) {
  const PsPlan& plan = options_.plan;
  const std::vector<Partition>& parts = plan.placement.partitions();
  const bool sync = plan.rules.synchronous();
  Connection& c = *connections_[ps];
  // 1. Sparse rows, one request per partition of this ps the step touched.
  for (const SparseGradient& g : sparse) {
    absl::Span<const Partition> vparts = plan.placement.PartitionsOf(g.variable);
    const int first = static_cast<int>(&vparts[0] - parts.data());
    const int64_t cols = plan.specs[g.variable].shape.row_elements();
    absl::Span<const int64_t> ids = g.ids.flat<int64_t>();
    for (size_t k = 0; k < vparts.size(); ++k) {
      if (vparts[k].ps != ps) continue;
      const int p = first + static_cast<int>(k);
      proto::PushRowsRequest request;
      request.set_worker(options_.worker);
      ToRef(plan, vparts[k], request.mutable_ref());
      std::string* rows = request.mutable_rows();
      for (size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < vparts[k].row_begin || ids[i] >= vparts[k].row_end()) continue;
        request.add_ids(ids[i]);
        rows->append(reinterpret_cast<const char*>(g.rows.data<float>() + i * cols),
                     cols * sizeof(float));
      }
      if (request.ids_size() == 0 && !sync) continue;
      request.set_version(read_version_[p]);
      proto::PushRowsResponse response;
      CallContext call(options_.abort, options_.timeout);
      MESHTRAIN_RETURN_IF_ERROR(
          Checked(c.stub->PushRows(&call.context, request, &response), "push rows to", c.name));
      const PushOutcome outcome = FromProto(response.outcome());
      counts->Add(outcome);
      // In synchronous mode the next read waits for the step this push joined.
      min_version_[p] = sync && !outcome.dropped() ? read_version_[p] + 1 : 0;
    }
  }
  // 2. Dense gradients out, the values after them back.
  if (c.dense.empty()) return absl::OkStatus();
  if (c.link != nullptr) {
    std::vector<int64_t> read(c.dense.size());
    std::vector<absl::Span<const float>> grads;
    std::vector<absl::Span<float>> outs;
    for (size_t i = 0; i < c.dense.size(); ++i) {
      const Partition& p = parts[c.dense[i]];
      read[i] = read_version_[c.dense[i]];
      grads.push_back(PartitionOf(dense_gradients[p.variable], p));
      outs.push_back(PartitionOf(values[p.variable], p));
    }
    MESHTRAIN_RETURN_IF_ERROR(Checked(
        c.link->PushPull(read, grads, outs, absl::MakeSpan(c.versions), options_.timeout, counts),
        "push to", c.name));
  } else {
    proto::PushDenseRequest request;
    request.set_worker(options_.worker);
    request.set_return_values(true);
    for (int index : c.dense) {
      const Partition& p = parts[index];
      proto::PsTensor* g = request.add_gradients();
      ToRef(plan, p, g->mutable_ref());
      g->set_dtype(std::string(WireDtypeName(plan.wire_dtype)));
      const Shape shape = plan.specs[p.variable].shape.rank() == 0
                              ? plan.specs[p.variable].shape
                              : plan.specs[p.variable].shape.WithRows(p.rows);
      for (int64_t d : shape.dims()) g->add_shape(d);
      absl::Span<const float> data = PartitionOf(dense_gradients[p.variable], p);
      if (plan.wire_dtype == WireDtype::kFloat32) {
        g->set_data(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
      } else {
        std::string* bytes = g->mutable_data();
        bytes->resize(WireBytes(plan.wire_dtype, data.size()));
        EncodeWire(plan.wire_dtype, data,
                   absl::MakeSpan(reinterpret_cast<std::byte*>(bytes->data()), bytes->size()));
      }
      g->set_version(read_version_[index]);
    }
    proto::PushDenseResponse response;
    CallContext call(options_.abort, options_.timeout);
    MESHTRAIN_RETURN_IF_ERROR(
        Checked(c.stub->PushDense(&call.context, request, &response), "push to", c.name));
    for (const proto::PushOutcome& outcome : response.outcomes()) counts->Add(FromProto(outcome));
    MESHTRAIN_RETURN_IF_ERROR(ReceiveValues(plan, c, response.values(), values, "push to"));
  }
  for (size_t i = 0; i < c.dense.size(); ++i) read_version_[c.dense[i]] = c.versions[i];
  return absl::OkStatus();
}

absl::Status PsClient::Leave() {
  if (left_) return absl::OkStatus();
  left_ = true;
  return ForEachPs([&](int ps) -> absl::Status {
    Connection& c = *connections_[ps];
    // The link's leave also ends the ps's thread serving it.
    if (c.link != nullptr) return Annotate(c.link->Leave(), absl::StrCat("leave ", c.name));
    proto::LeaveRequest request;
    request.set_worker(options_.worker);
    proto::LeaveResponse response;
    CallContext call(options_.abort, absl::Seconds(30));
    return FromGrpcStatus(c.stub->Leave(&call.context, request, &response),
                          absl::StrCat("leave ", c.name));
  });
}

absl::StatusOr<std::vector<PsTaskStats>> PsClient::Stats(bool with_checksum) {
  std::vector<PsTaskStats> all(connections_.size());
  MESHTRAIN_RETURN_IF_ERROR(ForEachPs([&](int ps) -> absl::Status {
    Connection& c = *connections_[ps];
    proto::PsStatsRequest request;
    request.set_skip_checksum(!with_checksum);
    proto::PsStatsResponse response;
    CallContext call(options_.abort, absl::Seconds(30));
    MESHTRAIN_RETURN_IF_ERROR(FromGrpcStatus(c.stub->Stats(&call.context, request, &response),
                                             absl::StrCat("stats of ", c.name)));
    PsTaskStats& s = all[ps];
    s.stats.counts.pushes = response.pushes();
    s.stats.counts.applied = response.applied();
    s.stats.counts.dropped_stale = response.dropped_stale();
    s.stats.counts.dropped_warmup = response.dropped_warmup();
    s.stats.counts.scaled = response.scaled();
    s.stats.counts.staleness_sum = response.staleness_sum();
    s.stats.value_bytes = response.value_bytes();
    s.stats.slot_bytes = response.slot_bytes();
    s.stats.partitions = response.partitions();
    s.stats.active_workers = response.active_workers();
    s.checksum = response.checksum();
    return absl::OkStatus();
  }));
  return all;
}

absl::StatusOr<std::vector<PartRecord>> PsClient::SaveShards(const std::string& checkpoint_dir) {
  const std::string dir = AbsoluteDir(checkpoint_dir);
  const int num_ps = static_cast<int>(connections_.size());
  std::vector<PartRecord> parts(connections_.size());
  MESHTRAIN_RETURN_IF_ERROR(ForkJoinPool::RunOnNewThreads(num_ps, [&](int ps) -> absl::Status {
    const Connection& c = *connections_[ps];
    const std::string what = absl::StrCat("save shards to ", dir, " on ", c.name);
    proto::SaveShardsRequest request;
    request.set_checkpoint_dir(dir);
    request.set_file_name(absl::StrFormat("ps-%05d-of-%05d.safetensors", ps, num_ps));
    proto::SaveShardsResponse response;
    CallContext call(options_.abort, options_.timeout);
    MESHTRAIN_RETURN_IF_ERROR(
        FromGrpcStatus(c.stub->SaveShards(&call.context, request, &response), what));
    const absl::StatusOr<nlohmann::json> json = ParseJson(response.part_json());
    if (!json.ok()) {
      return absl::InternalError(
          absl::StrCat(what, ": the answer's part record is ", json.status().message()));
    }
    absl::StatusOr<PartRecord> part = PartRecordFromJson(*json);
    if (!part.ok()) return Annotate(part.status(), what);
    if (part->file.name != request.file_name()) {
      return absl::InternalError(
          absl::StrCat(what, ": the ps wrote ", part->file.name, ", not ", request.file_name()));
    }
    parts[ps] = std::move(*part);
    return absl::OkStatus();
  }));
  return parts;
}

absl::Status PsClient::RestoreShards(const std::string& checkpoint_dir) {
  const std::string dir = AbsoluteDir(checkpoint_dir);
  absl::Status status = ForEachPs([&](int ps) -> absl::Status {
    const Connection& c = *connections_[ps];
    proto::RestoreShardsRequest request;
    request.set_checkpoint_dir(dir);
    proto::RestoreShardsResponse response;
    CallContext call(options_.abort, options_.timeout);
    return FromGrpcStatus(c.stub->RestoreShards(&call.context, request, &response),
                          absl::StrCat("restore shards from ", dir, " on ", c.name));
  });
  // Even a partial restore moved some versions back.
  ForgetVersions();
  return status;
}

void PsClient::ForgetVersions() {
  std::fill(read_version_.begin(), read_version_.end(), 0);
  std::fill(min_version_.begin(), min_version_.end(), 0);
}

}  // namespace meshtrain
