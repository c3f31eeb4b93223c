#include "runtime/ps/ps_service.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "proto/ps.grpc.pb.h"
#include "runtime/base/file_system.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/checkpoint/checkpoint_reader.h"
#include "runtime/checkpoint/checkpoint_snapshot.h"
#include "runtime/checkpoint/manifest.h"
#include "runtime/checkpoint/model_dir.h"
#include "runtime/rpc/grpc_status.h"
#include "runtime/transport/wire_codec.h"

namespace meshtrain {
namespace {

// Waits on behalf of a caller never outlast its call, nor ten minutes.
absl::Time WaitDeadline(grpc::ServerContext* context) {
  return std::min(absl::FromChrono(context->deadline()), absl::Now() + absl::Minutes(10));
}

std::string Describe(const proto::PartitionRef& ref) {
  return absl::StrCat(ref.variable(), "/", ref.partition());
}

// The checks every incoming tensor gets: a known dense partition, a wire
// dtype (float32, or 16 bits: wire_codec.h), its shape, its bytes.
absl::StatusOr<int> CheckDenseTensor(const ParameterShards& shards, const proto::PsTensor& t,
                                     absl::string_view op) {
  MESHTRAIN_ASSIGN_OR_RETURN(int slot, shards.Find(t.ref().variable(), t.ref().partition()));
  const std::string what = absl::StrCat(op, " ", Describe(t.ref()), " on ", shards.task_name());
  if (shards.spec(slot).sparse) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the variable is sparse; pull and push its rows"));
  }
  absl::StatusOr<WireDtype> dtype = ParseWireDtype(t.dtype());
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": dtype '", t.dtype(),
                     "', the variable is float32 (float32, bfloat16 or float16 "
                     "on the wire)"));
  }
  const Shape& shape = shards.shape(slot);
  const Shape got(absl::MakeConstSpan(t.shape().data(), static_cast<size_t>(t.shape().size())));
  if (got != shape) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": shape ", got.ToString(), ", the partition is ", shape.ToString()));
  }
  if (t.data().size() != WireBytes(*dtype, static_cast<size_t>(shape.num_elements()))) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", t.data().size(), " bytes for ",
                                                   shape.num_elements(), " ", t.dtype(),
                                                   " elements"));
  }
  return slot;
}

absl::Span<float> FloatsIn(std::string& bytes) {
  return {reinterpret_cast<float*>(bytes.data()), bytes.size() / sizeof(float)};
}

// A checkpoint directory named by a peer: MODEL_DIR/ckpt-STEP of this ps's
// own model directory, resolved (no "..", no symlink out of it), existing
// (MODEL_DIR is shared by every task). Returns the resolved path.
absl::StatusOr<std::string> CheckCheckpointDir(FileSystem& fs, const std::string& model_dir,
                                               const std::string& dir, absl::string_view op,
                                               const std::string& ps) {
  const std::string what = absl::StrCat(op, " on ", ps);
  if (model_dir.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what,
                     ": this ps has no model directory (--model-dir); it saves and "
                     "restores only under the job's model directory"));
  }
  absl::StatusOr<std::string> resolved = ResolveCheckpointDir(model_dir, dir);
  if (!resolved.ok()) return Annotate(resolved.status(), what);
  if (!fs.Exists(*resolved)) {
    return absl::NotFoundError(absl::StrCat(
        what, ": checkpoint directory ", *resolved,
        " does not exist here (MODEL_DIR must be on a file system every task shares)"));
  }
  return resolved;
}

std::string Milliseconds(absl::Duration d) {
  return absl::StrFormat("%.1f ms", absl::ToDoubleMilliseconds(d));
}

void ToProto(const PushOutcome& outcome, const proto::PartitionRef& ref, proto::PushOutcome* out) {
  *out->mutable_ref() = ref;
  out->set_applied(!outcome.dropped());
  out->set_reason(std::string(PushReasonName(outcome.reason)));
  out->set_staleness(outcome.staleness);
  out->set_lr_scale(outcome.lr_scale);
}

}  // namespace

struct PsService::Impl final : public proto::ParameterServer::Service {
  explicit Impl(std::string model_dir) : model_dir(std::move(model_dir)) {}

  const std::string model_dir;  // SaveShards and RestoreShards stay under it
  absl::Mutex mu;
  std::shared_ptr<ParameterShards> shards ABSL_GUARDED_BY(mu);

  absl::StatusOr<std::shared_ptr<ParameterShards>> Shards() {
    absl::MutexLock lock(&mu);
    if (shards == nullptr) {
      return absl::UnavailableError(
          "this task is not serving variables yet (a ps creates its partitions once the chief "
          "published the plan); retry");
    }
    return shards;
  }

  template <typename Fn>
  grpc::Status Serve(Fn fn) {
    absl::StatusOr<std::shared_ptr<ParameterShards>> s = Shards();
    if (!s.ok()) return ToGrpcStatus(s.status());
    return ToGrpcStatus(fn(**s));
  }

  grpc::Status PullDense(grpc::ServerContext* context, const proto::PullDenseRequest* request,
                         proto::PullDenseResponse* response) override {
    return Serve([&](ParameterShards& shards) -> absl::Status {
      std::vector<int> slots;
      for (const proto::PartitionRef& ref : request->refs()) {
        MESHTRAIN_ASSIGN_OR_RETURN(int slot, shards.Find(ref.variable(), ref.partition()));
        if (shards.spec(slot).sparse) {
          return absl::InvalidArgumentError(
              absl::StrCat("pull ", Describe(ref), " on ", shards.task_name(),
                           ": the variable is sparse; pull its rows"));
        }
        slots.push_back(slot);
      }
      for (size_t i = 0; i < slots.size(); ++i) {
        proto::PsTensor* value = response->add_values();
        *value->mutable_ref() = request->refs(static_cast<int>(i));
        MESHTRAIN_ASSIGN_OR_RETURN(
            int64_t version,
            ReadInto(shards, slots[i], request->min_version(), WaitDeadline(context), value));
        value->set_version(version);
      }
      return absl::OkStatus();
    });
  }

  grpc::Status PushDense(grpc::ServerContext* context, const proto::PushDenseRequest* request,
                         proto::PushDenseResponse* response) override {
    return Serve([&](ParameterShards& shards) -> absl::Status {
      // Every gradient is checked before the first is applied: versions only
      // grow, so a version valid now is valid when its turn comes.
      std::vector<int> slots;
      for (const proto::PsTensor& g : request->gradients()) {
        MESHTRAIN_ASSIGN_OR_RETURN(int slot, CheckDenseTensor(shards, g, "push"));
        if (request->worker() < 0 || request->worker() >= shards.plan().rules.num_workers) {
          return absl::InvalidArgumentError(absl::StrCat(
              "push to ", shards.task_name(), ": worker rank ", request->worker(),
              " is not one of the ", shards.plan().rules.num_workers, " training workers"));
        }
        if (g.version() < 0 || g.version() > shards.version(slot)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "push ", Describe(g.ref()), " on ", shards.task_name(), ": read version ",
              g.version(), " but the partition is at version ", shards.version(slot)));
        }
        slots.push_back(slot);
      }
      std::vector<int64_t> wait_for(slots.size(), 0);
      for (size_t i = 0; i < slots.size(); ++i) {
        const proto::PsTensor& g = request->gradients(static_cast<int>(i));
        Tensor gradient(DType::kFloat32, shards.shape(slots[i]));
        MESHTRAIN_RETURN_IF_ERROR(
            DecodeWire(*ParseWireDtype(g.dtype()),  // checked above
                       {reinterpret_cast<const std::byte*>(g.data().data()), g.data().size()},
                       gradient.flat<float>(), false));
        MESHTRAIN_ASSIGN_OR_RETURN(PushOutcome outcome,
                                   shards.Push(request->worker(), slots[i], gradient, g.version()));
        ToProto(outcome, g.ref(), response->add_outcomes());
        if (outcome.reason == PushOutcome::Reason::kPending) wait_for[i] = g.version() + 1;
      }
      if (!request->return_values()) return absl::OkStatus();
      for (size_t i = 0; i < slots.size(); ++i) {
        proto::PsTensor* value = response->add_values();
        *value->mutable_ref() = request->gradients(static_cast<int>(i)).ref();
        MESHTRAIN_ASSIGN_OR_RETURN(
            int64_t version, ReadInto(shards, slots[i], wait_for[i], WaitDeadline(context), value));
        value->set_version(version);
      }
      return absl::OkStatus();
    });
  }

  grpc::Status PullRows(grpc::ServerContext* context, const proto::PullRowsRequest* request,
                        proto::PullRowsResponse* response) override {
    return Serve([&](ParameterShards& shards) -> absl::Status {
      MESHTRAIN_ASSIGN_OR_RETURN(
          int slot, shards.Find(request->ref().variable(), request->ref().partition()));
      const int64_t cols = shards.shape(slot).row_elements();
      std::string* rows = response->mutable_rows();
      rows->resize(static_cast<size_t>(request->ids_size() * cols) * sizeof(float));
      absl::Span<const int64_t> ids(request->ids().data(),
                                    static_cast<size_t>(request->ids_size()));
      MESHTRAIN_ASSIGN_OR_RETURN(int64_t version,
                                 shards.ReadRows(slot, ids, FloatsIn(*rows), request->min_version(),
                                                 WaitDeadline(context)));
      response->set_version(version);
      return absl::OkStatus();
    });
  }

  grpc::Status PushRows(grpc::ServerContext* context, const proto::PushRowsRequest* request,
                        proto::PushRowsResponse* response) override {
    return Serve([&](ParameterShards& shards) -> absl::Status {
      MESHTRAIN_ASSIGN_OR_RETURN(
          int slot, shards.Find(request->ref().variable(), request->ref().partition()));
      if (request->rows().size() % sizeof(float) != 0) {
        return absl::InvalidArgumentError(absl::StrCat("push rows of ", Describe(request->ref()),
                                                       ": ", request->rows().size(),
                                                       " bytes is not whole float32 values"));
      }
      // Copied so the floats are aligned whatever protobuf did with the bytes.
      std::vector<float> rows(request->rows().size() / sizeof(float));
      // memcpy with the null data() of an empty vector is undefined.
      if (!rows.empty()) std::memcpy(rows.data(), request->rows().data(), request->rows().size());
      absl::Span<const int64_t> ids(request->ids().data(),
                                    static_cast<size_t>(request->ids_size()));
      MESHTRAIN_ASSIGN_OR_RETURN(PushOutcome outcome, shards.PushRows(request->worker(), slot, ids,
                                                                      rows, request->version()));
      ToProto(outcome, request->ref(), response->mutable_outcome());
      return absl::OkStatus();
    });
  }

  grpc::Status Leave(grpc::ServerContext* context, const proto::LeaveRequest* request,
                     proto::LeaveResponse* response) override {
    return Serve([&](ParameterShards& shards) -> absl::Status {
      if (request->worker() < 0 || request->worker() >= shards.plan().rules.num_workers) {
        return absl::InvalidArgumentError(absl::StrCat("leave ", shards.task_name(),
                                                       ": worker rank ", request->worker(),
                                                       " is not a training worker"));
      }
      shards.WorkerLeft(request->worker());
      return absl::OkStatus();
    });
  }

  grpc::Status Stats(grpc::ServerContext* context, const proto::PsStatsRequest* request,
                     proto::PsStatsResponse* response) override {
    return Serve([&](ParameterShards& shards) -> absl::Status {
      const PsStats stats = shards.stats();
      response->set_pushes(stats.counts.pushes);
      response->set_applied(stats.counts.applied);
      response->set_dropped_stale(stats.counts.dropped_stale);
      response->set_dropped_warmup(stats.counts.dropped_warmup);
      response->set_scaled(stats.counts.scaled);
      response->set_staleness_sum(stats.counts.staleness_sum);
      response->set_value_bytes(stats.value_bytes);
      response->set_slot_bytes(stats.slot_bytes);
      response->set_partitions(stats.partitions);
      response->set_active_workers(stats.active_workers);
      if (!request->skip_checksum()) response->set_checksum(shards.Checksum());
      return absl::OkStatus();
    });
  }

  grpc::Status SaveShards(grpc::ServerContext* context, const proto::SaveShardsRequest* request,
                          proto::SaveShardsResponse* response) override {
    return Serve([&](ParameterShards& shards) -> absl::Status {
      const std::string& file = request->file_name();
      if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("save shards on ", shards.task_name(),
                                                       ": file name '", file,
                                                       "' is not a plain file name"));
      }
      if (!absl::EndsWith(file, ".safetensors")) {
        return absl::InvalidArgumentError(absl::StrCat("save shards on ", shards.task_name(),
                                                       ": file name '", file,
                                                       "' is not a .safetensors part"));
      }
      FileSystem& fs = DefaultFileSystem();
      MESHTRAIN_ASSIGN_OR_RETURN(const std::string dir,
                                 CheckCheckpointDir(fs, model_dir, request->checkpoint_dir(),
                                                    "save shards", shards.task_name()));
      // Step 2 of the commit protocol writes only into a directory step 1
      // prepared: a committed checkpoint is never written again.
      if (fs.Exists(JoinPath(dir, std::string(kManifestFileName)))) {
        return absl::FailedPreconditionError(
            absl::StrCat("save shards on ", shards.task_name(), ": ", dir,
                         " holds a committed checkpoint; a save writes only into a checkpoint "
                         "directory the chief prepared"));
      }
      const absl::Time start = absl::Now();
      const CheckpointSnapshot snapshot = shards.Snapshot();
      const absl::Time copied = absl::Now();
      // Its errors name the file; the client names the ps.
      MESHTRAIN_ASSIGN_OR_RETURN(PartRecord part, WriteSnapshotPart(fs, dir, file, snapshot));
      response->set_part_json(PartRecordToJson(part).dump());
      MESHTRAIN_LOG(INFO) << shards.task_name() << " saved " << snapshot.entries.size()
                          << " partitions (" << snapshot.bytes() << " tensor bytes, "
                          << part.file.bytes << " file bytes) to " << JoinPath(dir, file) << " in "
                          << Milliseconds(absl::Now() - start) << " (copy "
                          << Milliseconds(copied - start) << ")";
      return absl::OkStatus();
    });
  }

  grpc::Status RestoreShards(grpc::ServerContext* context,
                             const proto::RestoreShardsRequest* request,
                             proto::RestoreShardsResponse* response) override {
    return Serve([&](ParameterShards& shards) -> absl::Status {
      FileSystem& fs = DefaultFileSystem();
      MESHTRAIN_ASSIGN_OR_RETURN(const std::string dir,
                                 CheckCheckpointDir(fs, model_dir, request->checkpoint_dir(),
                                                    "restore shards", shards.task_name()));
      // Only a checkpoint the chief committed: Open needs its index.json
      // (NotFound without) and verifies every file against it.
      const absl::Time start = absl::Now();
      // Open verifies every file's size and CRC32C: DataLoss names the file
      // (the client names the ps).
      MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointReader> checkpoint,
                                 CheckpointReader::Open(fs, dir));
      MESHTRAIN_RETURN_IF_ERROR(shards.Restore(*checkpoint));
      response->set_step(checkpoint->step());
      const PsStats stats = shards.stats();
      MESHTRAIN_LOG(INFO) << shards.task_name() << " restored " << stats.partitions
                          << " partitions (" << stats.value_bytes + stats.slot_bytes
                          << " tensor bytes) from " << dir << " (step " << checkpoint->step()
                          << ") in " << Milliseconds(absl::Now() - start);
      return absl::OkStatus();
    });
  }

  // The partition's value in the plan's wire dtype (float32: read in place).
  static absl::StatusOr<int64_t> ReadInto(ParameterShards& shards, int slot, int64_t min_version,
                                          absl::Time deadline, proto::PsTensor* value) {
    const Shape& shape = shards.shape(slot);
    const WireDtype dtype = shards.plan().wire_dtype;
    value->set_dtype(std::string(WireDtypeName(dtype)));
    for (int64_t d : shape.dims()) value->add_shape(d);
    std::string* data = value->mutable_data();
    const size_t elements = static_cast<size_t>(shape.num_elements());
    if (dtype == WireDtype::kFloat32) {
      data->resize(elements * sizeof(float));
      return shards.Read(slot, FloatsIn(*data), min_version, deadline);
    }
    std::vector<float> read(elements);
    MESHTRAIN_ASSIGN_OR_RETURN(int64_t version,
                               shards.Read(slot, absl::MakeSpan(read), min_version, deadline));
    data->resize(WireBytes(dtype, elements));
    EncodeWire(dtype, read,
               absl::MakeSpan(reinterpret_cast<std::byte*>(data->data()), data->size()));
    return version;
  }
};

PsService::PsService(PsServiceOptions options)
    : impl_(std::make_unique<Impl>(std::move(options.model_dir))) {}
PsService::~PsService() = default;

grpc::Service* PsService::grpc_service() { return impl_.get(); }

void PsService::Activate(std::shared_ptr<ParameterShards> shards) {
  absl::MutexLock lock(&impl_->mu);
  impl_->shards = std::move(shards);
}

void PsService::Deactivate() {
  absl::MutexLock lock(&impl_->mu);
  impl_->shards.reset();
}

}  // namespace meshtrain
