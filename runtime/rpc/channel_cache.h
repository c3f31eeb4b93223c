// ChannelCache: one lazily connected gRPC channel per (peer address, purpose).
// A channel connects on its first call and reconnects with exponential backoff
// (initial `reconnect_backoff_min`, capped at `reconnect_backoff_max`) while the
// peer is down, so a task may call a peer that has not started yet. Control
// traffic (coordination) and tensor traffic (the gRPC transport) use separate
// channels, hence separate TCP connections, so a heartbeat never queues behind
// megabytes of tensor data. Messages are limited to kMaxRpcMessageBytes.
// Thread-safe.
#ifndef MESHTRAIN_RUNTIME_RPC_CHANNEL_CACHE_H_
#define MESHTRAIN_RUNTIME_RPC_CHANNEL_CACHE_H_

#include <limits>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/security/tls_credentials.h"

namespace grpc {
class Channel;
class ChannelArguments;
class ChannelCredentials;
}  // namespace grpc

namespace meshtrain {

enum class ChannelPurpose { kControl, kData };

struct ChannelOptions {
  absl::Duration reconnect_backoff_min = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(1);
  // Non-null: channels speak mutual TLS with this task's certificate and
  // accept a server whose certificate the cluster CA signed for
  // kClusterServerName (runtime/security/tls_credentials.h).
  std::shared_ptr<const TlsCredentials> credentials;
};

// The largest gRPC message a task sends or accepts: protobuf's own limit. A ps
// answers a pull of all its dense partitions in one message; the gRPC
// transport cuts tensors into pieces far below it (MeshOptions).
inline constexpr int kMaxRpcMessageBytes = std::numeric_limits<int>::max();

// Insecure, or mutual TLS with options.credentials.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const ChannelOptions& options);

// The channel arguments every meshtrain channel uses (also for in-process ones).
grpc::ChannelArguments MakeChannelArguments(const ChannelOptions& options, ChannelPurpose purpose);

class ChannelCache {
 public:
  explicit ChannelCache(ChannelOptions options) : options_(options) {}

  // The channel to `address` ("host:port") for `purpose`; created on first use.
  std::shared_ptr<grpc::Channel> Get(absl::string_view address, ChannelPurpose purpose);

 private:
  const ChannelOptions options_;
  absl::Mutex mu_;
  std::map<std::pair<std::string, ChannelPurpose>, std::shared_ptr<grpc::Channel>> channels_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_RPC_CHANNEL_CACHE_H_
