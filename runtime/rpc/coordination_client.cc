#include "runtime/rpc/coordination_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "proto/coordination.grpc.pb.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/rpc/cancel_on_abort.h"
#include "runtime/rpc/coordination_service.h"
#include "runtime/rpc/grpc_status.h"
#include "runtime/rpc/proto_convert.h"

namespace meshtrain {

struct CoordinationClient::Rpc {
  std::unique_ptr<proto::Coordination::Stub> stub;
};

struct CoordinationClient::State {
  absl::Mutex mu;
  bool stop ABSL_GUARDED_BY(mu) = false;
  bool shutdown ABSL_GUARDED_BY(mu) = false;
  // The error this task is reporting: a heartbeat that brings it back as the
  // cluster's first error before ReportError returns aborts with it as given.
  absl::Status own_error ABSL_GUARDED_BY(mu);
};

namespace {

// Backoff between registration attempts while the chief is not serving yet.
constexpr absl::Duration kRegisterBackoffMin = absl::Milliseconds(50);
constexpr absl::Duration kRegisterBackoffMax = absl::Seconds(1);

int64_t ToMillis(absl::Duration d) { return std::max<int64_t>(0, absl::ToInt64Milliseconds(d)); }

// Every request names its sender and the sender's incarnation.
template <typename Request>
void Identify(const CoordinationClientOptions& options, Request* request) {
  ToProto(options.task, request->mutable_task());
  request->set_incarnation(options.incarnation);
}

}  // namespace

absl::StatusOr<std::unique_ptr<CoordinationClient>> CoordinationClient::Create(
    CoordinationClientOptions options) {
  if (options.abort == nullptr || options.peers == nullptr || options.channel == nullptr) {
    return absl::InvalidArgumentError(
        "coordination client: abort signal, peer directory and channel are required");
  }
  if (options.heartbeat_interval <= absl::ZeroDuration() ||
      options.heartbeat_timeout <= options.heartbeat_interval) {
    return absl::InvalidArgumentError(
        absl::StrCat("coordination client: need 0 < heartbeat_interval (",
                     absl::FormatDuration(options.heartbeat_interval), ") < heartbeat_timeout (",
                     absl::FormatDuration(options.heartbeat_timeout), ")"));
  }
  return std::unique_ptr<CoordinationClient>(new CoordinationClient(std::move(options)));
}

CoordinationClient::CoordinationClient(CoordinationClientOptions options)
    : options_(std::move(options)),
      chief_name_(DescribeTask(options_.cluster, options_.cluster.Chief())),
      rpc_(std::make_unique<Rpc>()),
      state_(std::make_shared<State>()) {
  rpc_->stub = proto::Coordination::NewStub(options_.channel);
  // Wakes WaitForShutdown and the heartbeat pause; the state outlives a late call.
  abort_callback_ =
      options_.abort->AddCallback([state = state_] { absl::MutexLock lock(&state->mu); });
}

CoordinationClient::~CoordinationClient() {
  StopHeartbeats();
  options_.abort->RemoveCallback(abort_callback_);
}

absl::Time CoordinationClient::ServerDeadline(absl::Time deadline) {
  const absl::Duration remaining = deadline - absl::Now();
  const absl::Duration margin =
      std::clamp(remaining / 10, absl::Milliseconds(20), absl::Seconds(2));
  return deadline - margin;
}

namespace {

// Runs one call with a deadline, cancelled if the task aborts, and turns the
// outcome into our status naming the operation and the chief.
template <typename CallFn>
absl::Status Invoke(AbortSignal* abort, absl::string_view op, absl::string_view chief,
                    absl::Time deadline, bool wait_for_ready, CallFn call) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  context.set_wait_for_ready(wait_for_ready);
  grpc::Status status;
  {
    CancelOnAbort cancel(abort, &context);
    status = call(&context);
  }
  const absl::Status result =
      FromGrpcStatus(status, op.empty() ? std::string() : absl::StrCat(op, " via ", chief));
  // Cancelled by CancelOnAbort: the abort's reason is the news.
  if (absl::IsCancelled(result) && abort != nullptr && abort->aborted()) {
    return Annotate(abort->status(), op);
  }
  return result;
}

}  // namespace

absl::Status CoordinationClient::Register(absl::Duration startup_timeout) {
  return RegisterWithChief(startup_timeout, /*rejoin=*/false);
}

absl::Status CoordinationClient::Rejoin(absl::Duration timeout) {
  return RegisterWithChief(timeout, /*rejoin=*/true);
}

int64_t CoordinationClient::generation() const { return generation_.load(); }

std::vector<TaskId> CoordinationClient::departed() const {
  absl::MutexLock lock(&departed_mu_);
  return departed_;
}

absl::Status CoordinationClient::RegisterWithChief(absl::Duration startup_timeout, bool rejoin) {
  const absl::string_view op = rejoin ? "recovery" : "startup";
  const absl::Time deadline = absl::Now() + startup_timeout;
  proto::RegisterRequest request;
  Identify(options_, &request);
  request.set_host_identity(options_.host_identity);
  request.set_cluster_fingerprint(ClusterFingerprint(options_.cluster));
  request.set_startup_timeout_ms(ToMillis(startup_timeout));
  request.set_rejoin(rejoin);

  absl::Duration backoff = kRegisterBackoffMin;
  absl::Status last = absl::DeadlineExceededError("no attempt");
  while (true) {
    request.set_wait_ms(ToMillis(ServerDeadline(deadline) - absl::Now()));
    proto::RegisterResponse response;
    // No context added: the chief's own answer already reads "startup: ...".
    last = Invoke(options_.abort, "", chief_name_, deadline,
                  /*wait_for_ready=*/true, [&](grpc::ClientContext* context) {
                    return rpc_->stub->Register(context, request, &response);
                  });
    if (last.ok()) {
      // A registration's answer is the truth, even from a chief that restarted
      // (whose versions start again from 0).
      options_.peers->Replace(response.cluster_version(), FromProto(response.tasks()));
      {
        absl::MutexLock lock(&departed_mu_);
        departed_.clear();
        for (const proto::TaskRef& t : response.departed()) departed_.push_back(FromProto(t));
      }
      generation_.store(response.generation());
      return absl::OkStatus();
    }
    if (options_.abort->aborted()) return Annotate(options_.abort->status(), op);
    const absl::Time now = absl::Now();
    // The chief answers a little before our deadline, naming the missing tasks;
    // an answer at the deadline itself is gRPC's: the chief never answered.
    if (absl::IsDeadlineExceeded(last) && now < deadline) return last;
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          op, ": ", chief_name_, " did not answer within ", absl::FormatDuration(startup_timeout),
          "; start it or check its TF_CONFIG (", options_.task.ToString(),
          " waited to register; last error: ", last.message(), ")"));
    }
    // A chief that restarted does not know this task's incarnation yet until
    // it registers, and answers the rejoin of an old life like any other.
    if (!absl::IsUnavailable(last)) {
      return Annotate(last, absl::StrCat(op, ": register with ", chief_name_));
    }
    // The chief is up but not serving coordination yet (or the connection
    // dropped): try again shortly.
    options_.abort->WaitUntil(std::min(deadline, now + backoff));
    backoff = std::min(backoff * 2, kRegisterBackoffMax);
  }
}

void CoordinationClient::StartHeartbeats() {
  if (heartbeat_thread_.joinable()) return;
  {
    absl::MutexLock lock(&state_->mu);
    state_->stop = false;
  }
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
}

void CoordinationClient::StopHeartbeats() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->stop = true;
  }
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

void CoordinationClient::HeartbeatLoop() {
  absl::Time last_success = absl::Now();
  while (HeartbeatOnce(&last_success)) {
    absl::MutexLock lock(&state_->mu);
    state_->mu.AwaitWithTimeout(absl::Condition(&state_->stop), options_.heartbeat_interval);
    if (state_->stop) return;
  }
}

bool CoordinationClient::HeartbeatOnce(absl::Time* last_success) {
  proto::HeartbeatRequest request;
  Identify(options_, &request);
  request.set_known_cluster_version(options_.peers->version());
  proto::HeartbeatResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.heartbeat_timeout / 2));
  const grpc::Status status = rpc_->stub->Heartbeat(&context, request, &response);
  const absl::Time now = absl::Now();
  AbortSignal* abort = options_.abort;

  if (status.ok()) {
    *last_success = now;
    if (response.tasks_size() > 0) {
      options_.peers->Update(response.cluster_version(), FromProto(response.tasks()));
    }
    if (response.has_first_error() && !abort->aborted()) {
      const proto::ErrorInfo& error = response.first_error();
      if (FromProto(error.source()) == options_.task) {
        absl::Status own;
        {
          absl::MutexLock lock(&state_->mu);
          own = state_->own_error;
        }
        abort->Abort(
            !own.ok() ? own
                      : absl::Status(static_cast<absl::StatusCode>(error.code()), error.message()));
      } else {
        abort->Abort(absl::AbortedError(error.message()));
      }
    }
    if (response.shutdown_requested()) {
      absl::MutexLock lock(&state_->mu);
      state_->shutdown = true;
    }
    return true;
  }
  const absl::Status failed = FromGrpcStatus(
      status, absl::StrCat("heartbeat from ", options_.task.ToString(), " to ", chief_name_));
  if (absl::IsAborted(failed) || absl::IsInvalidArgument(failed) ||
      absl::IsFailedPrecondition(failed)) {
    // The chief no longer knows this task as it is: nothing to retry.
    abort->Abort(failed);
    return false;
  }
  if (shutdown_requested()) return true;  // the chief may already be gone
  const absl::Duration silent = now - *last_success;
  if (silent > options_.heartbeat_timeout) {
    abort->Abort(absl::UnavailableError(absl::StrCat(
        "heartbeat: ", chief_name_, " is unreachable: no answer for ",
        absl::FormatDuration(absl::Trunc(silent, absl::Milliseconds(1))), " (timeout ",
        absl::FormatDuration(options_.heartbeat_timeout),
        "; last error: ", FromGrpcStatus(status, "").ToString(),
        "); the chief died or the network failed; restart the job from the last checkpoint")));
  }
  return true;
}

absl::Status CoordinationClient::Barrier(absl::string_view name, absl::Time deadline) {
  return Barrier(name, options_.cluster.TrainingWorkers(), deadline);
}

absl::Status CoordinationClient::Barrier(absl::string_view name, const std::vector<TaskId>& tasks,
                                         absl::Time deadline) {
  proto::BarrierRequest request;
  Identify(options_, &request);
  request.set_barrier_id(std::string(name));
  for (const TaskId& t : tasks) ToProto(t, request.add_participants());
  request.set_timeout_ms(ToMillis(ServerDeadline(deadline) - absl::Now()));
  proto::BarrierResponse response;
  return Invoke(options_.abort, absl::StrCat("barrier '", name, "'"), chief_name_, deadline,
                /*wait_for_ready=*/false, [&](grpc::ClientContext* context) {
                  return rpc_->stub->Barrier(context, request, &response);
                });
}

absl::Status CoordinationClient::KvSet(absl::string_view key, absl::string_view value) {
  proto::KvSetRequest request;
  Identify(options_, &request);
  request.set_key(std::string(key));
  request.set_value(std::string(value));
  proto::KvSetResponse response;
  return Invoke(
      options_.abort, absl::StrCat("kv set '", key, "'"), chief_name_,
      absl::Now() + options_.rpc_timeout, /*wait_for_ready=*/false,
      [&](grpc::ClientContext* context) { return rpc_->stub->KvSet(context, request, &response); });
}

absl::StatusOr<std::string> CoordinationClient::KvGet(absl::string_view key, absl::Time deadline) {
  // At least 1 ms: zero would mean "do not wait".
  return GetKey(key, std::max<int64_t>(1, ToMillis(ServerDeadline(deadline) - absl::Now())),
                deadline);
}

absl::StatusOr<std::optional<std::string>> CoordinationClient::KvTryGet(absl::string_view key) {
  absl::StatusOr<std::string> value = GetKey(key, 0, absl::Now() + options_.rpc_timeout);
  if (absl::IsNotFound(value.status())) return std::optional<std::string>();
  MESHTRAIN_RETURN_IF_ERROR(value.status());
  return std::optional<std::string>(std::move(*value));
}

absl::StatusOr<std::string> CoordinationClient::GetKey(absl::string_view key, int64_t wait_ms,
                                                       absl::Time deadline) {
  proto::KvGetRequest request;
  Identify(options_, &request);
  request.set_key(std::string(key));
  request.set_timeout_ms(wait_ms);
  proto::KvGetResponse response;
  MESHTRAIN_RETURN_IF_ERROR(Invoke(options_.abort, absl::StrCat("kv get '", key, "'"), chief_name_,
                                   deadline, /*wait_for_ready=*/false,
                                   [&](grpc::ClientContext* context) {
                                     return rpc_->stub->KvGet(context, request, &response);
                                   }));
  return std::move(*response.mutable_value());
}

absl::Status CoordinationClient::KvDelete(absl::string_view key) {
  proto::KvDeleteRequest request;
  Identify(options_, &request);
  request.set_key(std::string(key));
  proto::KvDeleteResponse response;
  return Invoke(options_.abort, absl::StrCat("kv delete '", key, "'"), chief_name_,
                absl::Now() + options_.rpc_timeout, /*wait_for_ready=*/false,
                [&](grpc::ClientContext* context) {
                  return rpc_->stub->KvDelete(context, request, &response);
                });
}

absl::Status CoordinationClient::ReportError(const absl::Status& error) {
  if (error.ok()) return absl::InvalidArgumentError("report error: the status is OK");
  proto::ReportErrorRequest request;
  Identify(options_, &request);
  request.set_code(static_cast<int>(error.code()));
  request.set_message(std::string(error.message()));
  proto::ReportErrorResponse response;
  {
    absl::MutexLock lock(&state_->mu);
    state_->own_error = error;
  }
  // Sent before aborting locally: an aborted task's calls are cancelled.
  absl::Status sent =
      Invoke(nullptr, "report error", chief_name_, absl::Now() + options_.rpc_timeout,
             /*wait_for_ready=*/false, [&](grpc::ClientContext* context) {
               return rpc_->stub->ReportError(context, request, &response);
             });
  if (sent.ok() && response.has_first_error() &&
      FromProto(response.first_error().source()) != options_.task) {
    options_.abort->Abort(absl::AbortedError(response.first_error().message()));
  } else {
    options_.abort->Abort(error);
  }
  return sent;
}

absl::Status CoordinationClient::RequestShutdown() {
  proto::ShutdownRequest request;
  Identify(options_, &request);
  proto::ShutdownResponse response;
  absl::Status status =
      Invoke(options_.abort, "request shutdown", chief_name_, absl::Now() + options_.rpc_timeout,
             /*wait_for_ready=*/false, [&](grpc::ClientContext* context) {
               return rpc_->stub->Shutdown(context, request, &response);
             });
  if (status.ok()) {
    // The requester knows at once; the others learn it from their heartbeats
    // (and Mesh::Stop on the chief waits for them to leave).
    absl::MutexLock lock(&state_->mu);
    state_->shutdown = true;
  }
  return status;
}

absl::Status CoordinationClient::WaitForShutdown(absl::Time deadline) {
  AbortSignal* abort = options_.abort;
  {
    absl::MutexLock lock(&state_->mu);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
      return state_->shutdown || abort->aborted();
    };
    state_->mu.AwaitWithDeadline(absl::Condition(&done), deadline);
    if (state_->shutdown) return absl::OkStatus();
  }
  if (abort->aborted()) return Annotate(abort->status(), "wait for shutdown");
  return absl::DeadlineExceededError(absl::StrCat("wait for shutdown: ", options_.task.ToString(),
                                                  " heard no shutdown request from ", chief_name_,
                                                  " before its deadline"));
}

bool CoordinationClient::shutdown_requested() const {
  absl::MutexLock lock(&state_->mu);
  return state_->shutdown;
}

absl::Status CoordinationClient::Disconnect() {
  proto::DisconnectRequest request;
  Identify(options_, &request);
  proto::DisconnectResponse response;
  return Invoke(nullptr, "disconnect", chief_name_,
                absl::Now() + std::min(options_.rpc_timeout, options_.heartbeat_timeout),
                /*wait_for_ready=*/false, [&](grpc::ClientContext* context) {
                  return rpc_->stub->Disconnect(context, request, &response);
                });
}

}  // namespace meshtrain
