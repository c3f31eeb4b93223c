// Fuzz target: every request message a meshtrain server handles. The input is
// a sequence of up to 8 calls, each [method byte][length, 2 bytes little-endian]
// [request bytes]; the method byte picks one of kMethods. A request is parsed
// as its proto (ParseFromArray) and sent to the real service over the
// server's in-process channel: the Coordination service (the chief's
// CoordinationService, proto/coordination.proto) and the ParameterServer
// service (PsService over ParameterShards, proto/ps.proto). SendChunk, whose
// server reads the raw bytes without protobuf, gets them straight through
// DecodeChunk and ApplyPayload, cut into gRPC slices where the input says.
//
// Each input starts from a fresh coordination service (a chief and a worker;
// only the worker is expected to register, as incarnation 7) and fresh ps
// shards (a dense [3, 2] kernel and a sparse [8, 2] table, two workers), so a
// crash replays from its input alone. Waits the request asks for are cut to a
// few milliseconds and every call has a deadline, so no input hangs.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/grpcpp.h"
#include "proto/coordination.grpc.pb.h"
#include "proto/ps.grpc.pb.h"
#include "runtime/base/check.h"
#include "runtime/ps/parameter_shards.h"
#include "runtime/ps/placement.h"
#include "runtime/ps/ps_plan.h"
#include "runtime/ps/ps_service.h"
#include "runtime/rpc/chunk_codec.h"
#include "runtime/rpc/coordination_service.h"
#include "runtime/rpc/peer_directory.h"
#include "runtime/rpc/server.h"

namespace meshtrain {
namespace {

constexpr int kMaxCalls = 8;
// Request fields that ask a handler to wait are cut to this.
constexpr int64_t kMaxWaitMs = 2;
constexpr absl::Duration kCallDeadline = absl::Milliseconds(50);

enum Method : uint8_t {
  kRegister,
  kHeartbeat,
  kReportError,
  kBarrier,
  kKvSet,
  kKvGet,
  kKvDelete,
  kShutdown,
  kDisconnect,
  kSendChunk,
  kPullDense,
  kPushDense,
  kPullRows,
  kPushRows,
  kLeave,
  kStats,
  kSaveShards,
  kRestoreShards,
  kNumMethods,
};

ClusterSpec Cluster() {
  return ClusterSpec({{"chief", {"127.0.0.1:1"}}, {"worker", {"127.0.0.1:2"}}});
}

PsPlan Plan() {
  PsPlan plan;
  for (const auto& [name, shape, sparse] : std::vector<std::tuple<std::string, Shape, bool>>{
           {"kernel", Shape({3, 2}), false}, {"table", Shape({8, 2}), true}}) {
    VariableSpec spec;
    spec.name = name;
    spec.shape = shape;
    spec.initializer = *Initializer::Parse("uniform:0.5");
    spec.sparse = sparse;
    plan.specs.push_back(spec);
  }
  plan.placement = *PlaceVariables(plan.specs, PlacementOptions());
  plan.optimizer.learning_rate = 0.5f;
  plan.rules.num_workers = 2;
  return plan;
}

// The server and its stubs live for the whole process (the fuzzer calls in
// once per input); what a request can change is created anew per input.
struct Harness {
  std::string model_dir;
  PsPlan plan = Plan();
  std::unique_ptr<PsService> ps;
  std::unique_ptr<Server> server;
  std::unique_ptr<proto::Coordination::Stub> coordination;
  std::unique_ptr<proto::ParameterServer::Stub> parameter_server;
};

Harness& GetHarness() {
  static Harness* harness = [] {
    // Protobuf logs every string field with invalid UTF-8 it parses: noise.
    google::protobuf::SetLogHandler(
        [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
    auto* h = new Harness;
    std::string dir_template =
        (std::filesystem::temp_directory_path() / "meshtrain-fuzz-XXXXXX").string();
    MESHTRAIN_CHECK(mkdtemp(dir_template.data()) != nullptr);
    h->model_dir = dir_template;
    static std::string* dir_to_remove = &h->model_dir;
    std::atexit([] { std::filesystem::remove_all(*dir_to_remove); });
    h->ps = std::make_unique<PsService>(PsServiceOptions{h->model_dir});
    ServerOptions options;
    options.stop_grace = absl::ZeroDuration();
    options.services.push_back(h->ps->grpc_service());
    h->server = *Server::Create(options);
    absl::StatusOr<int> port = h->server->Start("127.0.0.1:0");
    MESHTRAIN_CHECK(port.ok()) << port.status();
    std::shared_ptr<grpc::Channel> channel = h->server->InProcessChannel(ChannelOptions());
    h->coordination = proto::Coordination::NewStub(channel);
    h->parameter_server = proto::ParameterServer::NewStub(channel);
    return h;
  }();
  return *harness;
}

int64_t Cut(int64_t wait_ms) { return std::min(wait_ms, kMaxWaitMs); }

// Parses `bytes` as a Request, lets `adjust` cut its waits, and calls `method`.
template <typename Stub, typename Request, typename Response, typename Adjust>
void Call(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
          absl::string_view bytes, Adjust adjust) {
  Request request;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return;
  adjust(request);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + kCallDeadline));
  Response response;
  (stub->*method)(&context, request, &response);
}

template <typename Stub, typename Request, typename Response>
void Call(Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
          absl::string_view bytes) {
  Call(stub, method, bytes, [](Request&) {});
}

// SendChunk's server path: the raw request, cut into up to three slices at
// offsets the first two bytes choose, decoded and applied to a buffer.
void SendChunk(absl::string_view bytes) {
  if (bytes.size() < 2) return;
  const size_t body = bytes.size() - 2;
  const size_t cut1 = body == 0 ? 0 : static_cast<uint8_t>(bytes[0]) % (body + 1);
  const size_t cut2 = body == 0 ? 0 : cut1 + static_cast<uint8_t>(bytes[1]) % (body - cut1 + 1);
  bytes.remove_prefix(2);
  std::vector<grpc::Slice> slices;
  for (auto [begin, end] :
       {std::pair{size_t{0}, cut1}, std::pair{cut1, cut2}, std::pair{cut2, body}}) {
    if (end > begin) slices.emplace_back(bytes.data() + begin, end - begin);
  }
  grpc::ByteBuffer buffer(slices.data(), slices.size());
  absl::StatusOr<ReceivedChunk> chunk = DecodeChunk(buffer);
  if (!chunk.ok()) {
    MESHTRAIN_CHECK(chunk.status().code() == absl::StatusCode::kInvalidArgument) << chunk.status();
    return;
  }
  const ChunkMeta& meta = chunk->meta;
  MESHTRAIN_CHECK(meta.payload_bytes <= body && meta.offset <= meta.total_bytes &&
                  meta.payload_bytes <= meta.total_bytes - meta.offset)
      << meta.offset << " + " << meta.payload_bytes << " of " << meta.total_bytes;
  std::vector<float> dest((meta.payload_bytes + sizeof(float) - 1) / sizeof(float));
  const absl::Span<std::byte> span(reinterpret_cast<std::byte*>(dest.data()), meta.payload_bytes);
  absl::Status applied = ApplyPayload(*chunk, span, RecvAction::kCopy);
  MESHTRAIN_CHECK(applied.ok()) << applied;
  if (meta.payload_bytes % sizeof(float) == 0) {
    applied = ApplyPayload(*chunk, span, RecvAction::kAddFloat32);
    MESHTRAIN_CHECK(applied.ok()) << applied;
  }
}

void Dispatch(Harness& h, Method method, absl::string_view bytes) {
  proto::Coordination::Stub* c = h.coordination.get();
  proto::ParameterServer::Stub* p = h.parameter_server.get();
  using C = proto::Coordination::Stub;
  using P = proto::ParameterServer::Stub;
  switch (method) {
    case kRegister:
      return Call(c, &C::Register, bytes,
                  [](proto::RegisterRequest& r) { r.set_wait_ms(Cut(r.wait_ms())); });
    case kHeartbeat:
      return Call(c, &C::Heartbeat, bytes);
    case kReportError:
      return Call(c, &C::ReportError, bytes);
    case kBarrier:
      return Call(c, &C::Barrier, bytes,
                  [](proto::BarrierRequest& r) { r.set_timeout_ms(Cut(r.timeout_ms())); });
    case kKvSet:
      return Call(c, &C::KvSet, bytes);
    case kKvGet:
      return Call(c, &C::KvGet, bytes,
                  [](proto::KvGetRequest& r) { r.set_timeout_ms(Cut(r.timeout_ms())); });
    case kKvDelete:
      return Call(c, &C::KvDelete, bytes);
    case kShutdown:
      return Call(c, &C::Shutdown, bytes);
    case kDisconnect:
      return Call(c, &C::Disconnect, bytes);
    case kSendChunk:
      return SendChunk(bytes);
    case kPullDense:
      return Call(p, &P::PullDense, bytes);
    case kPushDense:
      return Call(p, &P::PushDense, bytes);
    case kPullRows:
      return Call(p, &P::PullRows, bytes);
    case kPushRows:
      return Call(p, &P::PushRows, bytes);
    case kLeave:
      return Call(p, &P::Leave, bytes);
    case kStats:
      return Call(p, &P::Stats, bytes);
    case kSaveShards:
      return Call(p, &P::SaveShards, bytes);
    case kRestoreShards:
      return Call(p, &P::RestoreShards, bytes);
    case kNumMethods:
      return;
  }
}

}  // namespace
}  // namespace meshtrain

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshtrain;
  Harness& h = GetHarness();
  CoordinationServiceOptions options;
  options.cluster = Cluster();
  options.chief = TaskId{"chief", 0};
  absl::StatusOr<std::unique_ptr<CoordinationService>> created =
      CoordinationService::Create(options);
  MESHTRAIN_CHECK(created.ok()) << created.status();
  std::shared_ptr<CoordinationService> coordination = std::move(*created);
  h.server->ServeCoordination(coordination);
  absl::StatusOr<std::unique_ptr<ParameterShards>> shards =
      ParameterShards::Create(h.plan, 0, nullptr);
  MESHTRAIN_CHECK(shards.ok()) << shards.status();
  h.ps->Activate(std::shared_ptr<ParameterShards>(std::move(*shards)));

  absl::string_view input(reinterpret_cast<const char*>(data), size);
  for (int call = 0; call < kMaxCalls && input.size() >= 3; ++call) {
    const Method method = static_cast<Method>(static_cast<uint8_t>(input[0]) % kNumMethods);
    const size_t length = static_cast<uint8_t>(input[1]) | (static_cast<uint8_t>(input[2]) << 8);
    input.remove_prefix(3);
    const absl::string_view bytes = input.substr(0, length);
    input.remove_prefix(bytes.size());
    Dispatch(h, method, bytes);
  }
  coordination->Stop();
  h.ps->Deactivate();
  return 0;
}
