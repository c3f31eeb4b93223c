#include "runtime/base/logging.h"

#include <unistd.h>

#include <atomic>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace meshtrain {
namespace {

// Written once at start-up (before threads), read afterwards: see SetLogTag.
std::string& LogTag() {
  static std::string* tag = new std::string;
  return *tag;
}
std::atomic<int> min_severity{0};

const char* SeverityLetter(LogSeverity severity) {
  switch (severity) {
    case LogSeverity::kInfo:
      return "I";
    case LogSeverity::kWarning:
      return "W";
    case LogSeverity::kError:
      return "E";
  }
  return "?";
}

}  // namespace

void SetLogTag(absl::string_view tag) { LogTag() = std::string(tag); }

void SetMinLogSeverity(LogSeverity severity) {
  min_severity.store(static_cast<int>(severity), std::memory_order_relaxed);
}

namespace internal {

bool ShouldLog(LogSeverity severity) {
  return static_cast<int>(severity) >= min_severity.load(std::memory_order_relaxed);
}

LogMessage::LogMessage(LogSeverity severity, const char* file, int line) : severity_(severity) {
  stream_ << SeverityLetter(severity_)
          << absl::FormatTime(" %H:%M:%E3S", absl::Now(), absl::LocalTimeZone());
  if (!LogTag().empty()) stream_ << " [" << LogTag() << "]";
  stream_ << ' ';
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  const std::string line = stream_.str();
  // One write per line keeps lines whole when several threads log at once.
  size_t written = 0;
  while (written < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + written, line.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
}

}  // namespace internal
}  // namespace meshtrain
