#include "runtime/rpc/server.h"

#include <chrono>
#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "proto/collective.grpc.pb.h"
#include "proto/coordination.grpc.pb.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/rpc/chunk_codec.h"
#include "runtime/rpc/grpc_status.h"
#include "runtime/rpc/proto_convert.h"

namespace meshtrain {

struct Server::Services {
  // Coordination: thin translation between proto messages and CoordinationService.
  // The waiting calls (Register, Barrier, KvGet) block a gRPC thread, which is
  // what the synchronous API is for; they end when their caller cancels.
  class CoordinationImpl final : public proto::Coordination::Service {
   public:
    explicit CoordinationImpl(Server* server) : server_(server) {}

    grpc::Status Register(grpc::ServerContext* context, const proto::RegisterRequest* request,
                          proto::RegisterResponse* response) override {
      return Serve([&](CoordinationService& service) -> absl::Status {
        CoordinationService::Registration registration;
        registration.task = FromProto(request->task());
        registration.incarnation = request->incarnation();
        registration.host_identity = request->host_identity();
        registration.cluster_fingerprint = request->cluster_fingerprint();
        registration.wait = std::min(absl::Milliseconds(request->wait_ms()), Remaining(context));
        registration.startup_timeout = absl::Milliseconds(request->startup_timeout_ms());
        registration.rejoin = request->rejoin();
        MESHTRAIN_ASSIGN_OR_RETURN(CoordinationService::View view,
                                   service.Register(registration, Cancelled(context)));
        response->set_cluster_version(view.version);
        response->set_generation(view.generation);
        for (const PeerInfo& info : view.tasks) ToProto(info, response->add_tasks());
        for (const TaskId& t : view.departed) ToProto(t, response->add_departed());
        return absl::OkStatus();
      });
    }

    grpc::Status Heartbeat(grpc::ServerContext* context, const proto::HeartbeatRequest* request,
                           proto::HeartbeatResponse* response) override {
      return Serve([&](CoordinationService& service) -> absl::Status {
        MESHTRAIN_ASSIGN_OR_RETURN(
            CoordinationService::HeartbeatReply reply,
            service.Heartbeat(FromProto(request->task()), request->incarnation(),
                              request->known_cluster_version()));
        response->set_cluster_version(reply.version);
        if (reply.tasks.has_value()) {
          for (const PeerInfo& info : *reply.tasks) ToProto(info, response->add_tasks());
        }
        if (reply.first_error.has_value()) {
          proto::ErrorInfo* error = response->mutable_first_error();
          ToProto(reply.first_error->source, error->mutable_source());
          error->set_code(static_cast<int>(reply.first_error->status.code()));
          error->set_message(std::string(reply.first_error->status.message()));
        }
        response->set_shutdown_requested(reply.shutdown_requested);
        return absl::OkStatus();
      });
    }

    grpc::Status ReportError(grpc::ServerContext* context, const proto::ReportErrorRequest* request,
                             proto::ReportErrorResponse* response) override {
      return Serve([&](CoordinationService& service) -> absl::Status {
        MESHTRAIN_RETURN_IF_ERROR(service.ReportError(
            FromProto(request->task()), request->incarnation(),
            absl::Status(static_cast<absl::StatusCode>(request->code()), request->message())));
        // The reporter learns the cluster's verdict at once: a survivor whose
        // neighbour gave up reports the task that really failed.
        if (std::optional<ClusterError> first = service.first_error()) {
          proto::ErrorInfo* error = response->mutable_first_error();
          ToProto(first->source, error->mutable_source());
          error->set_code(static_cast<int>(first->status.code()));
          error->set_message(std::string(first->status.message()));
        }
        return absl::OkStatus();
      });
    }

    grpc::Status Barrier(grpc::ServerContext* context, const proto::BarrierRequest* request,
                         proto::BarrierResponse* response) override {
      return Serve([&](CoordinationService& service) {
        std::vector<TaskId> participants;
        for (const proto::TaskRef& t : request->participants())
          participants.push_back(FromProto(t));
        return service.Barrier(
            FromProto(request->task()), request->incarnation(), request->barrier_id(), participants,
            std::min(absl::Milliseconds(request->timeout_ms()), Remaining(context)),
            Cancelled(context));
      });
    }

    grpc::Status KvSet(grpc::ServerContext* context, const proto::KvSetRequest* request,
                       proto::KvSetResponse* response) override {
      return Serve([&](CoordinationService& service) {
        return service.KvSet(FromProto(request->task()), request->incarnation(), request->key(),
                             request->value());
      });
    }

    grpc::Status KvGet(grpc::ServerContext* context, const proto::KvGetRequest* request,
                       proto::KvGetResponse* response) override {
      return Serve([&](CoordinationService& service) -> absl::Status {
        MESHTRAIN_ASSIGN_OR_RETURN(
            std::string value,
            service.KvGet(FromProto(request->task()), request->incarnation(), request->key(),
                          std::min(absl::Milliseconds(request->timeout_ms()), Remaining(context)),
                          Cancelled(context)));
        response->set_value(std::move(value));
        return absl::OkStatus();
      });
    }

    grpc::Status KvDelete(grpc::ServerContext* context, const proto::KvDeleteRequest* request,
                          proto::KvDeleteResponse* response) override {
      return Serve([&](CoordinationService& service) {
        return service.KvDelete(FromProto(request->task()), request->incarnation(), request->key());
      });
    }

    grpc::Status Shutdown(grpc::ServerContext* context, const proto::ShutdownRequest* request,
                          proto::ShutdownResponse* response) override {
      return Serve([&](CoordinationService& service) {
        return service.RequestShutdown(FromProto(request->task()), request->incarnation());
      });
    }

    grpc::Status Disconnect(grpc::ServerContext* context, const proto::DisconnectRequest* request,
                            proto::DisconnectResponse* response) override {
      return Serve([&](CoordinationService& service) {
        return service.Disconnect(FromProto(request->task()), request->incarnation());
      });
    }

   private:
    template <typename Fn>
    grpc::Status Serve(Fn fn) {
      absl::StatusOr<std::shared_ptr<CoordinationService>> service = server_->coordination();
      if (!service.ok()) return ToGrpcStatus(service.status());
      return ToGrpcStatus(fn(**service));
    }

    static absl::Duration Remaining(grpc::ServerContext* context) {
      return absl::FromChrono(context->deadline()) - absl::Now();
    }

    static CoordinationService::CancelledFn Cancelled(grpc::ServerContext* context) {
      return [context] { return context->IsCancelled(); };
    }

    Server* const server_;
  };

  // Collective: both methods take chunks as raw bytes (no protobuf parse of
  // the payload) and never block a gRPC thread.
  class CollectiveImpl final
      : public proto::Collective::WithRawCallbackMethod_SendChunk<
            proto::Collective::WithRawCallbackMethod_StreamChunks<proto::Collective::Service>> {
   public:
    explicit CollectiveImpl(Server* server) : server_(server) {}

    grpc::ServerUnaryReactor* SendChunk(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override {
      const absl::Status status = server_->AcceptChunk(*request);
      if (status.ok()) {
        grpc::Slice empty;
        *response = grpc::ByteBuffer(&empty, 1);
      }
      grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
      reactor->Finish(ToGrpcStatus(status));
      return reactor;
    }

    grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamChunks(
        grpc::CallbackServerContext* /*context*/) override {
      return new ChunkStreamReader(server_);
    }

   private:
    // Stores each chunk of a stream as it is read; ends the stream at the
    // first chunk rejected (with that error), or when the sender half-closes.
    // Deletes itself when gRPC is done with it.
    class ChunkStreamReader final
        : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
     public:
      explicit ChunkStreamReader(Server* server) : server_(server) { StartRead(&chunk_); }

      void OnReadDone(bool ok) override {
        if (!ok) {  // half-closed by the sender, or cancelled
          Finish(grpc::Status::OK);
          return;
        }
        const absl::Status status = server_->AcceptChunk(chunk_);
        if (!status.ok()) {
          Finish(ToGrpcStatus(status));
          return;
        }
        StartRead(&chunk_);
      }
      void OnDone() override { delete this; }

     private:
      Server* const server_;
      grpc::ByteBuffer chunk_;
    };

    Server* const server_;
  };

  explicit Services(Server* server) : coordination(server), collective(server) {}
  CoordinationImpl coordination;
  CollectiveImpl collective;
};

namespace {

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(
    const std::shared_ptr<const TlsCredentials>& credentials) {
  if (credentials == nullptr) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ssl.pem_root_certs = credentials->ca_pem;
  ssl.pem_key_cert_pairs.push_back({credentials->key_pem, credentials->cert_pem});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options) {
  return std::unique_ptr<Server>(new Server(options));
}

Server::Server(ServerOptions options)
    : options_(options), services_(std::make_unique<Services>(this)) {}

Server::~Server() { Stop(); }

absl::StatusOr<int> Server::Start(absl::string_view bind_address) {
  if (grpc_server_ != nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("serve on ", bind_address, ": the server already serves on port ", port_));
  }
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(std::string(bind_address), ServerCredentials(options_.credentials),
                           &selected_port);
  builder.SetMaxReceiveMessageSize(kMaxRpcMessageBytes);
  builder.SetMaxSendMessageSize(kMaxRpcMessageBytes);
  // gRPC would otherwise set SO_REUSEPORT, and a second server on a port in use
  // would start silently and receive half of the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&services_->coordination);
  builder.RegisterService(&services_->collective);
  for (grpc::Service* service : options_.services) builder.RegisterService(service);
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || selected_port == 0) {
    grpc_server_.reset();
    return absl::UnavailableError(
        absl::StrCat("serve: cannot listen on ", bind_address,
                     "; is the port in use (another task, or an earlier run still exiting)?"));
  }
  port_ = selected_port;
  return port_;
}

int Server::port() const { return port_; }

void Server::SetIdentity(const TaskId& task, uint64_t incarnation,
                         std::shared_ptr<const PeerDirectory> peers) {
  absl::MutexLock lock(&mu_);
  task_ = task;
  incarnation_ = incarnation;
  peers_ = std::move(peers);
}

void Server::ServeCoordination(std::shared_ptr<CoordinationService> service) {
  absl::MutexLock lock(&mu_);
  coordination_ = std::move(service);
}

std::optional<TaskId> Server::identity() const {
  absl::MutexLock lock(&mu_);
  return task_;
}

std::shared_ptr<grpc::Channel> Server::InProcessChannel(const ChannelOptions& options) {
  return grpc_server_->InProcessChannel(MakeChannelArguments(options, ChannelPurpose::kControl));
}

absl::StatusOr<std::shared_ptr<CoordinationService>> Server::coordination() const {
  absl::MutexLock lock(&mu_);
  if (stopped_) return absl::UnavailableError("this task is stopping");
  if (coordination_ != nullptr) return coordination_;
  if (!task_.has_value()) {
    return absl::UnavailableError("the coordination service is not up yet on this task");
  }
  return absl::FailedPreconditionError(
      absl::StrCat(task_->ToString(), " does not serve the coordination service; the chief does"));
}

absl::Status Server::AcceptChunk(const grpc::ByteBuffer& request) {
  TaskId self;
  uint64_t incarnation;
  std::shared_ptr<const PeerDirectory> peers;
  {
    absl::MutexLock lock(&mu_);
    if (!task_.has_value())
      return absl::UnavailableError("send chunk: this task has not joined the mesh yet");
    self = *task_;
    incarnation = incarnation_;
    peers = peers_;
  }
  absl::StatusOr<ReceivedChunk> chunk = DecodeChunk(request);
  if (!chunk.ok()) return Annotate(chunk.status(), absl::StrCat("send chunk to ", self.ToString()));
  const ChunkMeta& meta = chunk->meta;
  const std::string op = absl::StrCat("send chunk ", meta.seq, " of transport '", meta.transport,
                                      "' from ", meta.source.ToString(), " to ", self.ToString());
  if (meta.destination != self) {
    return absl::InvalidArgumentError(
        absl::StrCat(op, ": the chunk is addressed to ", meta.destination.ToString()));
  }
  if (meta.destination_incarnation != incarnation) {
    // No incarnation in these messages: they would authorise calls to anyone.
    return absl::AbortedError(absl::StrCat(op, ": the chunk is for another incarnation of ",
                                           self.ToString(), " (it restarted)"));
  }
  std::optional<PeerInfo> source = peers->Find(meta.source);
  if (!source.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": unknown task ", meta.source.ToString()));
  }
  if (source->incarnation != meta.source_incarnation) {
    return absl::AbortedError(
        absl::StrCat(op, ": stale sender incarnation of ", meta.source.ToString(),
                     "; a message from an earlier life of that task is rejected"));
  }
  return Annotate(mailboxes_.Get(meta.transport)->Deposit(*std::move(chunk)), op);
}

void Server::Stop() { Shutdown(options_.stop_grace); }

void Server::Kill() { Shutdown(absl::ZeroDuration()); }

void Server::Shutdown(absl::Duration grace) {
  std::shared_ptr<CoordinationService> service;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
    service = coordination_;
  }
  if (service != nullptr) service->Stop();
  if (grpc_server_ != nullptr) {
    grpc_server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    grpc_server_->Wait();
  }
}

}  // namespace meshtrain
