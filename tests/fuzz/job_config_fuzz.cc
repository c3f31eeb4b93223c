// Fuzz target: the job config (training/job_config.h), a JSON file the user
// names with --config. Expects a one-line InvalidArgument for a bad config.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "tests/fuzz/fuzz_status.h"
#include "training/job_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshtrain;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<JobConfig> config = ParseJobConfig(text, "fuzz.json");
  if (!config.ok()) fuzz::ExpectRejection(config.status(), absl::StatusCode::kInvalidArgument);
  return 0;
}
