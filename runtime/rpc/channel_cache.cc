#include "runtime/rpc/channel_cache.h"

#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace meshtrain {

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const ChannelOptions& options) {
  if (options.credentials == nullptr) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options.credentials->ca_pem;
  ssl.pem_private_key = options.credentials->key_pem;
  ssl.pem_cert_chain = options.credentials->cert_pem;
  return grpc::SslCredentials(ssl);
}

grpc::ChannelArguments MakeChannelArguments(const ChannelOptions& options, ChannelPurpose purpose) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxRpcMessageBytes);
  args.SetMaxSendMessageSize(kMaxRpcMessageBytes);
  // Peers are named by the cluster's certificates, not by the host dialled.
  if (options.credentials != nullptr)
    args.SetSslTargetNameOverride(std::string(kClusterServerName));
  const int min_ms = static_cast<int>(absl::ToInt64Milliseconds(options.reconnect_backoff_min));
  const int max_ms = static_cast<int>(absl::ToInt64Milliseconds(options.reconnect_backoff_max));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, min_ms);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, min_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_ms);
  // Channels whose arguments differ never share a subchannel (a TCP connection).
  args.SetString("meshtrain.channel_purpose",
                 purpose == ChannelPurpose::kData ? "data" : "control");
  return args;
}

std::shared_ptr<grpc::Channel> ChannelCache::Get(absl::string_view address,
                                                 ChannelPurpose purpose) {
  absl::MutexLock lock(&mu_);
  auto key = std::make_pair(std::string(address), purpose);
  auto it = channels_.find(key);
  if (it != channels_.end()) return it->second;
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      std::string(address), ChannelCredentials(options_), MakeChannelArguments(options_, purpose));
  channels_.emplace(std::move(key), channel);
  return channel;
}

}  // namespace meshtrain
