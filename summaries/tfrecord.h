// TFRecord framing, the container of TensorBoard event files: each record is
//   uint64 length (little-endian)
//   uint32 masked CRC32C of those 8 length bytes
//   length bytes of data
//   uint32 masked CRC32C of the data
// (runtime/base/crc32c.h has the mask). Pure functions; thread-safe.
#ifndef MESHTRAIN_LAUNCHER_TFRECORD_H_
#define MESHTRAIN_LAUNCHER_TFRECORD_H_

#include <string>

#include "absl/strings/string_view.h"

namespace meshtrain {

// Appends one framed record holding `data` to `out`.
void AppendTfRecord(absl::string_view data, std::string* out);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_TFRECORD_H_
