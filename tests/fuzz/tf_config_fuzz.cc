// Fuzz target: TF_CONFIG (runtime/cluster/tf_config.h), which every task reads
// from its environment. Expects a one-line InvalidArgument for a bad config,
// and that an accepted one describes itself and reads back from its own JSON.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "runtime/base/check.h"
#include "runtime/cluster/tf_config.h"
#include "tests/fuzz/fuzz_status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshtrain;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<ClusterConfig> config = ParseTfConfig(text);
  if (!config.ok()) {
    fuzz::ExpectRejection(config.status(), absl::StatusCode::kInvalidArgument);
    return 0;
  }
  DescribeCluster(*config);
  absl::StatusOr<ClusterConfig> again = ParseTfConfig(ToTfConfigJson(*config));
  MESHTRAIN_CHECK(again.ok()) << again.status();
  return 0;
}
