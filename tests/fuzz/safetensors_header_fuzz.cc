// Fuzz target: a safetensors file (runtime/checkpoint/safetensors.h): the
// 8-byte header length, the JSON header and the offsets it gives into the
// data. Expects a one-line DataLoss for a bad file, and that every tensor of
// an accepted one lies inside the file (ASan checks each byte read).
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/base/check.h"
#include "runtime/checkpoint/safetensors.h"
#include "tests/fuzz/fuzz_status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshtrain;
  absl::StatusOr<SafetensorsFile> file = SafetensorsFile::Parse(
      std::string(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
  if (!file.ok()) {
    fuzz::ExpectRejection(file.status(), absl::StatusCode::kDataLoss);
    return 0;
  }
  unsigned checksum = 0;
  for (const SafetensorsEntry& entry : file->entries()) {
    MESHTRAIN_CHECK(file->Find(entry.name) == &entry) << entry.name;
    absl::Span<const std::byte> bytes = file->Data(entry);
    MESHTRAIN_CHECK(bytes.size() == entry.end - entry.begin) << entry.name;
    for (std::byte b : bytes) checksum += static_cast<unsigned>(b);
  }
  return static_cast<int>(checksum & 0);
}
