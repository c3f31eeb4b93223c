// Fuzz target: a checkpoint's index.json (runtime/checkpoint/manifest.h), read
// from MODEL_DIR, which another process or a damaged disk may have written.
// Expects a one-line DataLoss for a bad manifest, and that an accepted one
// reads back from the JSON the writer makes of it.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "runtime/base/check.h"
#include "runtime/checkpoint/manifest.h"
#include "tests/fuzz/fuzz_status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshtrain;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Manifest> manifest = ParseManifest(text, "ckpt-1/index.json");
  if (!manifest.ok()) {
    fuzz::ExpectRejection(manifest.status(), absl::StatusCode::kDataLoss);
    return 0;
  }
  absl::StatusOr<Manifest> again = ParseManifest(ManifestToJson(*manifest), "again");
  MESHTRAIN_CHECK(again.ok()) << again.status();
  MESHTRAIN_CHECK(again->variables.size() == manifest->variables.size());
  return 0;
}
