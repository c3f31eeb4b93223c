#include "summaries/tfrecord.h"

#include <cstdint>

#include "runtime/base/crc32c.h"

namespace meshtrain {
namespace {

// The low `n` bytes of `value`, least significant first.
void AppendLittleEndian(uint64_t value, int n, std::string* out) {
  for (int i = 0; i < n; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

}  // namespace

void AppendTfRecord(absl::string_view data, std::string* out) {
  const size_t start = out->size();
  AppendLittleEndian(data.size(), 8, out);
  AppendLittleEndian(crc32c::Mask(crc32c::Value(out->data() + start, 8)), 4, out);
  out->append(data.data(), data.size());
  AppendLittleEndian(crc32c::Mask(crc32c::Value(data.data(), data.size())), 4, out);
}

}  // namespace meshtrain
