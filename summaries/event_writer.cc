#include "summaries/event_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "proto/tensorboard_event.pb.h"
#include "runtime/base/logging.h"
#include "runtime/base/status_macros.h"
#include "summaries/tfrecord.h"

namespace meshtrain {
namespace {

constexpr char kFileVersion[] = "brain.Event:2";

std::string HostName() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EventWriter>> EventWriter::Create(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("event file: cannot create directory ", dir, ": ", ec.message()));
  }
  const std::string base =
      absl::StrCat(dir, "/events.out.tfevents.", absl::ToUnixSeconds(absl::Now()), ".", HostName(),
                   ".", ::getpid());
  // A second writer in the same second and process (a test, a restart) gets ".1", ...
  for (int n = 0; n < 1000; ++n) {
    const std::string path = n == 0 ? base : absl::StrCat(base, ".", n);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) continue;
    if (fd < 0) {
      return absl::PermissionDeniedError(
          absl::StrCat("event file: cannot create ", path, ": ", std::strerror(errno)));
    }
    std::FILE* file = ::fdopen(fd, "wb");
    if (file == nullptr) {
      ::close(fd);
      return absl::InternalError(
          absl::StrCat("event file: fdopen ", path, ": ", std::strerror(errno)));
    }
    std::unique_ptr<EventWriter> writer(new EventWriter(path, file));
    tensorboard::Event event;
    event.set_wall_time(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
    event.set_file_version(kFileVersion);
    {
      absl::MutexLock lock(&writer->mu_);
      AppendTfRecord(event.SerializeAsString(), &writer->buffer_);
      MESHTRAIN_RETURN_IF_ERROR(writer->FlushLocked());
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
  std::fclose(file_);
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
  return buffer_.size() >= kFlushBytes ? FlushLocked() : absl::OkStatus();
}

absl::Status EventWriter::Flush() {
  absl::MutexLock lock(&mu_);
  return FlushLocked();
}

absl::Status EventWriter::FlushLocked() {
  if (!buffer_.empty() && std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size()) {
    return absl::DataLossError(
        absl::StrCat("event file ", path_, ": write failed: ", std::strerror(errno)));
  }
  buffer_.clear();
  if (std::fflush(file_) != 0) {
    return absl::DataLossError(
        absl::StrCat("event file ", path_, ": flush failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain
