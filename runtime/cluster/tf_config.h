// TF_CONFIG, TensorFlow's cluster description, read the way TensorFlow's
// TFConfigClusterResolver reads it:
//   {"cluster": {"chief": ["h0:2222"], "worker": ["h1:2222", "h2:2222"], "ps": [...]},
//    "task": {"type": "worker", "index": 1, "trial": 3},
//    "rpc_layer": "grpc", "environment": "cloud"}
// Unknown keys are ignored at the top level and inside "task". Validation is
// stricter than TensorFlow's: every mistake is a one-line kInvalidArgument that
// names the field, the value and the fix (docs/tf_config.md lists them all).
// Pure functions; thread-safe except ClusterConfigFromEnvironment, which reads
// the environment (do not call it while another thread calls setenv).
#ifndef MESHTRAIN_RUNTIME_CLUSTER_TF_CONFIG_H_
#define MESHTRAIN_RUNTIME_CLUSTER_TF_CONFIG_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/cluster/cluster_spec.h"

namespace meshtrain {

// The job types TF_CONFIG may name, in the order meshtrain lists them.
inline constexpr absl::string_view kAllowedJobs = "chief, worker, ps, evaluator";

absl::StatusOr<ClusterConfig> ParseTfConfig(absl::string_view json);

// TF_CONFIG from the environment when set and non-empty (errors then say they
// came from the environment variable), else ClusterConfig::Local().
absl::StatusOr<ClusterConfig> ClusterConfigFromEnvironment();

// One-line JSON that ParseTfConfig reads back to an equal config; the local
// launcher puts it in its children's TF_CONFIG. A Local() config has no
// addresses and does not parse back.
std::string ToTfConfigJson(const ClusterConfig& config);

// Multi-line text for `meshtrain check-config`: every task with its address,
// the chief (and whether it is implicitly worker 0), this process's task and
// role, the training workers and their ranks, parameter servers, evaluator,
// rpc_layer and environment. Ends with a newline.
std::string DescribeCluster(const ClusterConfig& config);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_TF_CONFIG_H_
