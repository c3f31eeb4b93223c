// TFRecord framing, the container of TensorBoard event files and of
// tf.train.Example datasets: each record is
//   uint64 length (little-endian)
//   uint32 masked CRC32C of those 8 length bytes
//   length bytes of data
//   uint32 masked CRC32C of the data
// (runtime/base/crc32c.h has the mask). A file may be GZIP-compressed as a
// whole (TFRecordOptions(compression_type="GZIP")). The functions are pure
// and thread-safe; a reader or writer is used by one thread.
#ifndef MESHTRAIN_RUNTIME_DATA_TFRECORD_H_
#define MESHTRAIN_RUNTIME_DATA_TFRECORD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

// Appends one framed record holding `data` to `out`.
void AppendTfRecord(absl::string_view data, std::string* out);

// The largest record a reader accepts (a length beyond it is a corrupt or
// hostile file, refused before anything is allocated).
inline constexpr uint64_t kMaxTfRecordBytes = uint64_t{1} << 30;

// Reads the records of one file in order, GZIP or not (zlib tells), or of
// bytes in memory. Errors are DataLoss naming the file, the record's index and
// its byte offset in the uncompressed stream: a truncated record, a CRC
// mismatch, a bad GZIP stream.
class TfRecordFileReader {
 public:
  static absl::StatusOr<std::unique_ptr<TfRecordFileReader>> Open(const std::string& path);
  // Over `bytes` (which must outlive the reader), called `name` in errors.
  TfRecordFileReader(absl::string_view bytes, std::string name)
      : path_(std::move(name)), file_(nullptr), memory_(bytes) {}
  ~TfRecordFileReader();
  TfRecordFileReader(const TfRecordFileReader&) = delete;
  TfRecordFileReader& operator=(const TfRecordFileReader&) = delete;

  // The next record into `record`; false at the clean end of the file.
  absl::StatusOr<bool> Next(std::string* record);
  int64_t records_read() const { return index_; }

 private:
  TfRecordFileReader(std::string path, void* file) : path_(std::move(path)), file_(file) {}
  // Reads exactly `n` bytes, or returns how many it got before the end.
  absl::StatusOr<size_t> Read(char* out, size_t n);
  absl::Status Corrupt(absl::string_view what) const;

  const std::string path_;
  void* const file_;          // gzFile; null when reading `memory_`
  absl::string_view memory_;  // what is left to read of the bytes given
  int64_t index_ = 0;
  uint64_t offset_ = 0;
};

// The records framed in `bytes` (a whole TFRecord file), read as above.
absl::StatusOr<std::vector<std::string>> ParseTfRecords(absl::string_view bytes);

// Writes records to a new file (replacing one), GZIP-compressed when `gzip`.
class TfRecordFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<TfRecordFileWriter>> Open(const std::string& path,
                                                                  bool gzip);
  ~TfRecordFileWriter();
  TfRecordFileWriter(const TfRecordFileWriter&) = delete;
  TfRecordFileWriter& operator=(const TfRecordFileWriter&) = delete;

  absl::Status Write(absl::string_view data);
  // Flushes and closes; errors of earlier writes surface here too.
  absl::Status Close();

 private:
  TfRecordFileWriter(std::string path, void* file) : path_(std::move(path)), file_(file) {}
  const std::string path_;
  void* file_;  // gzFile; null once closed
  std::string buffer_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_DATA_TFRECORD_H_
