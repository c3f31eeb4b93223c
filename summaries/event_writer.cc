#include "summaries/event_writer.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "proto/tensorboard_event.pb.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "runtime/data/tfrecord.h"

namespace meshtrain {
namespace {

constexpr char kFileVersion[] = "brain.Event:2";

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventWriter>> EventWriter::Create(const std::string& dir,
                                                                 FileSystem* fs) {
  FileSystem& files = fs != nullptr ? *fs : DefaultFileSystem();
  MESHTRAIN_RETURN_IF_ERROR(Annotate(files.CreateDir(dir), "event file"));
  const std::string base =
      absl::StrCat(dir, "/events.out.tfevents.", absl::ToUnixSeconds(absl::Now()), ".", HostName(),
                   ".", ::getpid());
  // A second writer in the same second and process (a test, a restart) gets ".1", ...
  for (int n = 0; n < 1000; ++n) {
    const std::string path = n == 0 ? base : absl::StrCat(base, ".", n);
    if (files.Exists(path)) continue;
    absl::StatusOr<std::unique_ptr<WritableFile>> file = files.NewWritableFile(path);
    if (!file.ok()) return Annotate(file.status(), "event file");
    std::unique_ptr<EventWriter> writer(new EventWriter(path, std::move(*file)));
    tensorboard::Event event;
    event.set_wall_time(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
    event.set_file_version(kFileVersion);
    absl::Status status;
    {
      absl::MutexLock lock(&writer->mu_);
      AppendTfRecord(event.SerializeAsString(), &writer->buffer_);
      writer->buffered_records_ = 1;
      status = writer->FlushLocked();
    }
    if (!status.ok()) {
      writer.reset();
      (void)files.RemoveAll(path);  // an empty file would only confuse readers
      return status;
    }
    return writer;
  }
  return absl::AlreadyExistsError(absl::StrCat("event file: ", base, " and 999 variants exist"));
}

EventWriter::~EventWriter() {
  absl::Status status = Flush();
  if (!status.ok()) {
    MESHTRAIN_LOG(WARNING) << status;
  }
  absl::MutexLock lock(&mu_);
  (void)file_->Close();
}

absl::Status EventWriter::WriteScalar(absl::string_view tag, int64_t step, double value,
                                      absl::Time wall_time) {
  tensorboard::Event event;
  event.set_wall_time(absl::ToDoubleSeconds(wall_time - absl::UnixEpoch()));
  event.set_step(step);
  tensorboard::SummaryValue* v = event.mutable_summary()->add_value();
  v->set_tag(std::string(tag));
  v->set_simple_value(static_cast<float>(value));
  const std::string serialized = event.SerializeAsString();
  absl::MutexLock lock(&mu_);
  AppendTfRecord(serialized, &buffer_);
  ++buffered_records_;
  return buffer_.size() >= kFlushBytes ? FlushLocked() : absl::OkStatus();
}

absl::Status EventWriter::Flush() {
  absl::MutexLock lock(&mu_);
  return FlushLocked();
}

int64_t EventWriter::dropped_records() const {
  absl::MutexLock lock(&mu_);
  return dropped_records_;
}

absl::Status EventWriter::FlushLocked() {
  if (buffer_.empty()) return absl::OkStatus();
  const absl::Status status = file_->Append(
      absl::MakeConstSpan(reinterpret_cast<const std::byte*>(buffer_.data()), buffer_.size()));
  if (status.ok()) {
    written_bytes_ += static_cast<int64_t>(buffer_.size());
  } else {
    // Keep the file a sequence of whole records: later flushes append there.
    (void)file_->Truncate(written_bytes_);
    dropped_records_ += buffered_records_;
  }
  buffer_.clear();
  buffered_records_ = 0;
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("event file ", path_, ": ", status.message(),
                                                    " (records dropped)"));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain
