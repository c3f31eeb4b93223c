#include "runtime/rpc/mesh.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"
#include "runtime/rpc/grpc_transport.h"
#include "runtime/rpc/host_identity.h"

namespace meshtrain {
namespace {

// "host:port" or "[v6]:port" -> port.
absl::StatusOr<int> PortOf(absl::string_view address) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "' is not host:port; check TF_CONFIG"));
  }
  return port;
}

}  // namespace

uint64_t NewIncarnation() {
  std::random_device device;
  uint64_t value = (static_cast<uint64_t>(device()) << 32) ^ device();
  // In case the device is deterministic on some platform: the clock and the pid
  // still differ between two starts.
  value ^= static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) *
           0x9e3779b97f4a7c15ull;
  value ^= static_cast<uint64_t>(getpid()) << 17;
  return value == 0 ? 1 : value;
}

absl::StatusOr<std::unique_ptr<Mesh>> Mesh::Create(MeshOptions options) {
  const ClusterConfig& config = options.config;
  if (config.is_local()) {
    return absl::InvalidArgumentError("mesh: a local (single-process) cluster has no mesh");
  }
  const std::vector<TaskId> tasks = config.cluster.AllTasks();
  if (std::find(tasks.begin(), tasks.end(), config.task) == tasks.end()) {
    return absl::InvalidArgumentError(absl::StrCat("mesh: this task ", config.task.ToString(),
                                                   " is not in the cluster; check TF_CONFIG"));
  }
  const TaskId chief = config.cluster.Chief();
  if (std::find(tasks.begin(), tasks.end(), chief) == tasks.end()) {
    return absl::InvalidArgumentError(
        "mesh: the cluster has neither a chief nor a worker:0 to host the coordination service");
  }
  if (options.heartbeat_interval <= absl::ZeroDuration() ||
      options.heartbeat_timeout <= options.heartbeat_interval) {
    return absl::InvalidArgumentError(absl::StrCat(
        "mesh: need 0 < heartbeat_interval (", absl::FormatDuration(options.heartbeat_interval),
        ") < heartbeat_timeout (", absl::FormatDuration(options.heartbeat_timeout), ")"));
  }
  if (options.startup_timeout <= absl::ZeroDuration() ||
      options.rpc_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("mesh: startup_timeout and rpc_timeout must be positive");
  }
  MESHTRAIN_RETURN_IF_ERROR(PortOf(config.cluster.address(config.task)).status());
  return std::unique_ptr<Mesh>(new Mesh(std::move(options)));
}

namespace {

// The security's credentials, handed to the channels and a server to be made.
MeshOptions WithCredentials(MeshOptions options) {
  options.channels.credentials = options.security.credentials;
  options.server_options.credentials = options.security.credentials;
  return options;
}

}  // namespace

Mesh::Mesh(MeshOptions options)
    : options_(WithCredentials(std::move(options))),
      incarnation_(options_.incarnation != 0 ? options_.incarnation : NewIncarnation()),
      owned_abort_(options_.abort == nullptr ? std::make_unique<AbortSignal>() : nullptr),
      abort_(options_.abort != nullptr ? options_.abort : owned_abort_.get()),
      peers_(std::make_shared<PeerDirectory>(options_.config.cluster)),
      channels_(options_.channels),
      server_(std::move(options_.server)) {
  if (options_.host_identity.empty()) options_.host_identity = HostIdentity();
}

Mesh::~Mesh() { Stop(); }

int Mesh::port() const { return server_ == nullptr ? 0 : server_->port(); }

absl::StatusOr<std::string> Mesh::BindHost() const {
  if (!options_.bind_host.empty()) return options_.bind_host;
  // PortOf checked the address; the port may be 0 (tests), which ParseHostPort refuses.
  absl::string_view host = cluster().address(task());
  host = host.substr(0, host.rfind(':'));
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  return DefaultBindHost(host);
}

absl::StatusOr<std::string> Mesh::BindAddress() const {
  MESHTRAIN_ASSIGN_OR_RETURN(int port, PortOf(cluster().address(task())));
  MESHTRAIN_ASSIGN_OR_RETURN(std::string host, BindHost());
  return JoinHostPort(host, port);
}

absl::Status Mesh::Start() {
  MESHTRAIN_RETURN_IF_ERROR(Serve());
  return Join();
}

absl::Status Mesh::Serve() {
  if (served_ || stopped_) {
    return absl::FailedPreconditionError("mesh: Serve() called twice or after Stop()");
  }
  served_ = true;
  const std::string self = DescribeTask(cluster(), task());
  const std::string& address = cluster().address(task());
  if (server_ == nullptr) {
    MESHTRAIN_ASSIGN_OR_RETURN(server_, Server::Create(options_.server_options));
    MESHTRAIN_ASSIGN_OR_RETURN(std::string bind, BindAddress());
    MESHTRAIN_RETURN_IF_ERROR(
        Annotate(server_->Start(bind).status(), absl::StrCat("startup of ", self)));
  } else {
    MESHTRAIN_ASSIGN_OR_RETURN(int port, PortOf(address));
    if (server_->port() == 0 || (port != 0 && server_->port() != port)) {
      return absl::InvalidArgumentError(
          absl::StrCat("startup of ", self, ": the server handed in listens on port ",
                       server_->port(), " but the ClusterSpec gives this task ", address));
    }
  }
  // The chief serves the coordination service before it has an identity: until
  // then a worker's call is answered "not up yet" (retried), never "this task
  // does not serve it" (final), which it would get in between.
  std::shared_ptr<grpc::Channel> channel;
  if (is_chief()) {
    CoordinationServiceOptions service_options;
    service_options.cluster = cluster();
    service_options.chief = task();
    service_options.heartbeat_timeout = options_.heartbeat_timeout;
    // A live task is never silent this long; at least 2 s whatever the interval.
    service_options.restart_silence = std::max(absl::Seconds(2), 2 * options_.heartbeat_interval);
    service_options.heartbeat_interval = options_.heartbeat_interval;
    service_options.stuck_floor = options_.stuck_floor;
    service_options.independent_tasks = options_.independent_tasks;
    service_options.elastic = options_.elastic;
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<CoordinationService> service,
                               CoordinationService::Create(std::move(service_options)));
    service_ = std::move(service);
    service_->Start();
    server_->ServeCoordination(service_);
    channel = server_->InProcessChannel(options_.channels);
  } else {
    channel = channels_.Get(cluster().address(cluster().Chief()), ChannelPurpose::kControl);
  }
  server_->SetIdentity(task(), incarnation_, peers_);
  MESHTRAIN_LOG(INFO) << "mesh: " << self << " (incarnation " << incarnation_ << ") serves on port "
                      << server_->port();

  CoordinationClientOptions client_options;
  client_options.task = task();
  client_options.incarnation = incarnation_;
  client_options.host_identity = options_.host_identity;
  client_options.cluster = cluster();
  client_options.channel = std::move(channel);
  client_options.heartbeat_interval = options_.heartbeat_interval;
  client_options.heartbeat_timeout = options_.heartbeat_timeout;
  client_options.rpc_timeout = options_.rpc_timeout;
  client_options.abort = abort_;
  client_options.peers = peers_;
  MESHTRAIN_ASSIGN_OR_RETURN(client_, CoordinationClient::Create(std::move(client_options)));
  return absl::OkStatus();
}

absl::Status Mesh::Join() {
  if (!served_ || joined_ || stopped_ || client_ == nullptr) {
    return absl::FailedPreconditionError(
        "mesh: Join() needs a successful Serve(), once, before Stop()");
  }
  joined_ = true;
  MESHTRAIN_RETURN_IF_ERROR(client_->Register(options_.startup_timeout));
  client_->StartHeartbeats();
  return absl::OkStatus();
}

absl::Status Mesh::Rejoin(absl::Duration timeout) {
  if (!joined_ || stopped_ || client_ == nullptr) {
    return absl::FailedPreconditionError("mesh: Rejoin() needs a joined mesh that was not stopped");
  }
  // Heartbeats stop first: a reply carrying the old generation's error must
  // not abort the new one.
  client_->StopHeartbeats();
  abort_->Reset();
  MESHTRAIN_RETURN_IF_ERROR(client_->Rejoin(timeout));
  client_->StartHeartbeats();
  MESHTRAIN_LOG(INFO) << "mesh: " << task().ToString() << " rejoined the cluster (generation "
                      << client_->generation() << ")";
  return absl::OkStatus();
}

int64_t Mesh::generation() const { return client_ == nullptr ? 0 : client_->generation(); }

std::vector<TaskId> Mesh::Members(std::vector<TaskId> tasks) const {
  if (client_ == nullptr) return tasks;
  const std::vector<TaskId> departed = client_->departed();
  std::erase_if(tasks, [&](const TaskId& t) {
    return std::find(departed.begin(), departed.end(), t) != departed.end();
  });
  return tasks;
}

std::vector<TaskId> Mesh::TrainingMembers() const { return Members(cluster().TrainingWorkers()); }

std::vector<TaskId> Mesh::PsMembers() const {
  std::vector<TaskId> ps;
  for (int i = 0; i < cluster().num_tasks(kPsJob); ++i) ps.push_back({std::string(kPsJob), i});
  return Members(std::move(ps));
}

void Mesh::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (client_ != nullptr) {
    client_->StopHeartbeats();
    if (service_ != nullptr) {
      // Let the others hear the shutdown request and leave before the chief goes.
      if (client_->shutdown_requested() && !service_->first_error().has_value() &&
          !service_->WaitForOthersToLeave(absl::Now() + options_.heartbeat_timeout)) {
        MESHTRAIN_LOG(WARNING) << "mesh: stopping the chief before every task left";
      }
    } else if (peers_->version() >= 0) {
      absl::Status left = client_->Disconnect();
      if (!left.ok()) {
        MESHTRAIN_LOG(INFO) << "mesh: could not say goodbye: " << left.ToString();
      }
    }
  }
  if (server_ != nullptr) server_->Stop();
  if (service_ != nullptr) service_->Stop();
}

void Mesh::KillForTesting() {
  if (stopped_) return;
  stopped_ = true;
  if (client_ != nullptr) client_->StopHeartbeats();
  if (server_ != nullptr) server_->Kill();
  if (service_ != nullptr) service_->Stop();
}

absl::StatusOr<std::unique_ptr<Transport>> Mesh::CreateTransport(const std::vector<TaskId>& group,
                                                                 absl::string_view rpc_layer,
                                                                 absl::string_view name) {
  const std::string op = absl::StrCat("create transport '", name, "' on ", task().ToString());
  if (!joined_ || stopped_ || client_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(op, ": the mesh is not running"));
  }
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(op, ": the name is empty"));
  int rank = -1;
  std::set<TaskId> seen;
  std::vector<std::string> hosts;
  for (int r = 0; r < static_cast<int>(group.size()); ++r) {
    std::optional<PeerInfo> peer = peers_->Find(group[r]);
    if (!peer.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": ", group[r].ToString(), " is not in the cluster"));
    }
    if (!seen.insert(group[r]).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(op, ": ", group[r].ToString(), " appears twice in the group"));
    }
    if (group[r] == task()) rank = r;
    hosts.push_back(peer->host_identity);
  }
  if (rank < 0) {
    return absl::InvalidArgumentError(absl::StrCat(op, ": this task is not in the group"));
  }
  absl::StatusOr<DataPathChoice> choice = ChooseDataPath(rpc_layer, hosts, options_.data_paths);
  if (!choice.ok()) return Annotate(choice.status(), op);
  MESHTRAIN_LOG(INFO) << "transport '" << name << "' over " << group.size()
                      << " tasks: " << choice->path << " (" << choice->reason << ")";
  if (choice->path == kGrpcDataPath) {
    GrpcTransportOptions transport_options;
    transport_options.name = std::string(name);
    transport_options.group = group;
    transport_options.rank = rank;
    transport_options.incarnation = incarnation_;
    transport_options.peers = peers_;
    transport_options.channels = &channels_;
    transport_options.mailboxes = &server_->mailboxes();
    transport_options.abort = abort_;
    transport_options.max_piece_bytes = options_.grpc_max_piece_bytes;
    MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<GrpcTransport> transport,
                               GrpcTransport::Create(std::move(transport_options)));
    return std::unique_ptr<Transport>(std::move(transport));
  }
  // A registered fast data path (runtime/rpc/data_path.h).
  DataPathContext context;
  context.name = std::string(name);
  context.group = group;
  context.rank = rank;
  context.incarnation = incarnation_;
  context.cluster = &cluster();
  MESHTRAIN_ASSIGN_OR_RETURN(context.bind_host, BindHost());
  context.host_identities = std::move(hosts);
  context.coordination = client_.get();
  context.abort = abort_;
  context.deadline = absl::Now() + options_.startup_timeout;
  context.security = &options_.security;
  absl::StatusOr<std::unique_ptr<Transport>> transport =
      (*options_.data_paths.Find(choice->path))(context);
  if (!transport.ok()) return Annotate(transport.status(), op);
  return transport;
}

}  // namespace meshtrain
