// EventWriter: a TensorBoard event file, so that `tensorboard --logdir DIR`
// shows a run's scalars. The file is DIR/events.out.tfevents.<seconds>.<host>.<pid>
// (".<n>" added if that name exists), a sequence of TFRecords (runtime/data/tfrecord.h)
// holding Event protos (proto/tensorboard_event.proto): first the file version
// "brain.Event:2", then one Event per WriteScalar with a Summary of one
// simple_value. The chief writes MODEL_DIR, the evaluator MODEL_DIR/eval.
//
// Records are buffered, and written when the buffer passes kFlushBytes, by
// Flush() and by the destructor; a reader sees whole records only after a
// flush. A write that fails (a full disk: kResourceExhausted) drops the
// buffered records and cuts the file back to its last whole record, so the
// file stays readable and later writes go on from there; the caller decides
// whether that matters (training treats it as a warning). Files go through a
// FileSystem (runtime/base/file_system.h). Thread-safe.
#ifndef MESHTRAIN_SUMMARIES_EVENT_WRITER_H_
#define MESHTRAIN_SUMMARIES_EVENT_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/base/file_system.h"

namespace meshtrain {

class EventWriter {
 public:
  // Creates `dir` if needed and a new event file in it, and writes the
  // file-version record. kPermissionDenied names the directory or file.
  // `fs` (null: DefaultFileSystem()) must outlive the writer. A file whose
  // version record cannot be written is removed again.
  static absl::StatusOr<std::unique_ptr<EventWriter>> Create(const std::string& dir,
                                                             FileSystem* fs = nullptr);
  ~EventWriter();  // flushes (errors are logged) and closes
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  static constexpr size_t kFlushBytes = size_t{64} << 10;

  // One scalar at global step `step` (TensorBoard's x axis), stamped
  // `wall_time`. Fails only when it had to flush and that failed.
  absl::Status WriteScalar(absl::string_view tag, int64_t step, double value,
                           absl::Time wall_time = absl::Now());
  // Writes the buffered records to the file and flushes it to the OS.
  absl::Status Flush();

  const std::string& path() const { return path_; }
  // Records dropped by failed writes so far.
  int64_t dropped_records() const;

 private:
  EventWriter(std::string path, std::unique_ptr<WritableFile> file)
      : path_(std::move(path)), file_(std::move(file)) {}
  absl::Status FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  mutable absl::Mutex mu_;
  const std::unique_ptr<WritableFile> file_ ABSL_PT_GUARDED_BY(mu_);
  std::string buffer_ ABSL_GUARDED_BY(mu_);
  int64_t buffered_records_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t written_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // whole records in the file
  int64_t dropped_records_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_SUMMARIES_EVENT_WRITER_H_
