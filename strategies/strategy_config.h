// StrategyConfig: the "strategy" section of a job config (and the flags that
// override it): which strategy, on which devices, with which options. Value type.
#ifndef MESHTRAIN_STRATEGIES_STRATEGY_CONFIG_H_
#define MESHTRAIN_STRATEGIES_STRATEGY_CONFIG_H_

#include <cstdint>
#include <string>

namespace meshtrain {

// The default gradient bucket size. Measured on the reference MLP with two CPU
// replicas: few buckets beat many (each costs a rendezvous of the replicas),
// and 64 KiB still lets the small layers' bucket be summed before the first
// layer's large gradient exists.
inline constexpr int64_t kDefaultBytesPerPack = 64 << 10;

struct StrategyConfig {
  std::string name = "one_device";
  std::string devices = "cpu:0";  // a list ("cpu:0,cpu:1") or a count
  std::string cross_device_ops =
      "auto";  // auto | reduce_to_one_device | hierarchical_copy | ring | nccl
  std::string communication = "auto";  // auto | ring | hierarchical | nccl (multi_worker_mirrored)
  // How gradients (and parameter-server values) travel between tasks:
  // float32 | bfloat16 | float16 (runtime/transport/wire_codec.h). Read from
  // strategy.communication.wire_dtype; multi_worker_mirrored's ring and
  // parameter_server's pushes and pulls.
  std::string wire_dtype = "float32";
  int64_t bytes_per_pack =
      kDefaultBytesPerPack;      // 0: one pack (as TensorFlow); 1: a bucket per variable
  std::string overlap = "auto";  // auto | thread | inline | off (mirrored.h GradientOverlap)
  std::string parameter_device = "cpu:0";  // central_storage
  // parameter_server
  std::string placement = "round_robin";  // round_robin | greedy
  int fixed_shards = 0;                   // > 0: split every large variable in N
  int64_t min_shard_bytes = 256 << 10;
  int64_t max_shard_bytes = 0;  // 0: no limit
  int max_staleness = -1;       // -1: accept any staleness
  bool staleness_scaling = false;
  int64_t warmup_steps = 0;
  int sync_replicas = 0;  // 0: asynchronous
};

}  // namespace meshtrain

#endif  // MESHTRAIN_STRATEGIES_STRATEGY_CONFIG_H_
