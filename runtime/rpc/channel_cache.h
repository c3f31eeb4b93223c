// ChannelCache: one lazily connected gRPC channel per (peer address, purpose).
// A channel connects on its first call and reconnects with exponential backoff
// (initial `reconnect_backoff_min`, capped at `reconnect_backoff_max`) while the
// peer is down, so a task may call a peer that has not started yet. Control
// traffic (coordination) and tensor traffic (the gRPC transport) use separate
// channels, hence separate TCP connections, so a heartbeat never queues behind
// megabytes of tensor data. Messages have no size limit. Thread-safe.
#ifndef MESHTRAIN_RUNTIME_RPC_CHANNEL_CACHE_H_
#define MESHTRAIN_RUNTIME_RPC_CHANNEL_CACHE_H_

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace grpc {
class Channel;
class ChannelArguments;
}  // namespace grpc

namespace meshtrain {

enum class ChannelPurpose { kControl, kData };

struct ChannelOptions {
  absl::Duration reconnect_backoff_min = absl::Milliseconds(100);
  absl::Duration reconnect_backoff_max = absl::Seconds(1);
};

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
