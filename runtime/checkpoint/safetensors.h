// safetensors: the tensor file format of checkpoints (Hugging Face's format, so
// numpy, torch and the `safetensors` package read our files without us):
//
//   [8 bytes] N, little-endian uint64: the header's length
//   [N bytes] JSON object: {"NAME": {"dtype": "F32", "shape": [784, 300],
//             "data_offsets": [BEGIN, END]}, ..., "__metadata__": {"k": "v"}}
//   [rest]    the data buffer: each tensor's raw little-endian bytes at
//             [BEGIN, END) relative to the buffer's start
//
// The writer pads the header with spaces to a multiple of 8 (so the buffer is
// 8-byte aligned, as the reference writer does) and lays tensors out in the
// order added, without gaps. The parser is strict: any violation of the format
// (short file, header length past the end, bad JSON, unknown dtype, negative
// dimension, offsets out of range or not matching dtype x shape, overlapping or
// holed buffer, non-string metadata) is kDataLoss naming the file.
// Value types; not thread-safe to mutate, const methods from any thread.
#ifndef MESHTRAIN_RUNTIME_CHECKPOINT_SAFETENSORS_H_
#define MESHTRAIN_RUNTIME_CHECKPOINT_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "runtime/base/file_system.h"
#include "runtime/tensor/dtype.h"

namespace meshtrain {

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // data_offsets, relative to the data buffer
  uint64_t end = 0;
};

class SafetensorsWriter {
 public:
  void SetMetadata(absl::string_view key, absl::string_view value);
  // `data` is borrowed until WriteTo returns; its size must be dtype x shape.
  // InvalidArgument for a duplicate or reserved name or a size mismatch.
  absl::Status Add(absl::string_view name, DType dtype, absl::Span<const int64_t> shape,
                   absl::Span<const std::byte> data);

  // The 8-byte length and the padded JSON header.
  std::string Header() const;
  // Header plus data.
  uint64_t total_bytes() const;
  // Streams the header and every tensor to `file` (which it does not sync or
  // close); returns the CRC32C of all bytes written.
  absl::StatusOr<uint32_t> WriteTo(WritableFile& file) const;

 private:
  std::vector<SafetensorsEntry> entries_;
  std::vector<absl::Span<const std::byte>> data_;
  std::map<std::string, std::string> metadata_;
  uint64_t data_bytes_ = 0;
};

class SafetensorsFile {
 public:
  // Parses a whole file's `contents`; `path` is only quoted in errors.
  static absl::StatusOr<SafetensorsFile> Parse(std::string contents, std::string path);

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  // Null if absent.
  const SafetensorsEntry* Find(absl::string_view name) const;
  absl::Span<const std::byte> Data(const SafetensorsEntry& entry) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::string contents_;
  size_t data_start_ = 0;
  std::vector<SafetensorsEntry> entries_;  // sorted by name
  std::map<std::string, std::string> metadata_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CHECKPOINT_SAFETENSORS_H_
