// TFRecord framing, the container of TensorBoard event files: each record is
//   uint64 length (little-endian)
//   uint32 masked CRC32C of those 8 length bytes
//   length bytes of data
//   uint32 masked CRC32C of the data
// (runtime/base/crc32c.h has the mask). Pure functions; thread-safe.
#ifndef MESHTRAIN_SUMMARIES_TFRECORD_H_
#define MESHTRAIN_SUMMARIES_TFRECORD_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

// Appends one framed record holding `data` to `out`.
void AppendTfRecord(absl::string_view data, std::string* out);

// The records framed in `bytes` (a whole TFRecord file), both CRCs of each
// checked. DataLossError naming the offset on a truncated or corrupt record.
absl::StatusOr<std::vector<std::string>> ParseTfRecords(absl::string_view bytes);

}  // namespace meshtrain

#endif  // MESHTRAIN_SUMMARIES_TFRECORD_H_
