// Process logging: one line per message on stderr, prefixed with the time and,
// once the process knows its role, the task ("[worker:1]"). The prefix is set once
// at start-up, before any thread starts; writing is thread-safe (one write(2) per line).
#ifndef MESHTRAIN_RUNTIME_BASE_LOGGING_H_
#define MESHTRAIN_RUNTIME_BASE_LOGGING_H_

#include <sstream>
#include <string>

#include "absl/strings/string_view.h"

namespace meshtrain {

enum class LogSeverity { kInfo, kWarning, kError };

// Sets the tag printed on every line ("worker:1"). Call before starting threads.
void SetLogTag(absl::string_view tag);
// Lines below `severity` are dropped; --quiet raises it to kWarning.
void SetMinLogSeverity(LogSeverity severity);

namespace internal {

class LogMessage {
 public:
  LogMessage(LogSeverity severity, const char* file, int line);
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  ~LogMessage();
  std::ostream& stream() { return stream_; }

 private:
  LogSeverity severity_;
  std::ostringstream stream_;
};

bool ShouldLog(LogSeverity severity);

}  // namespace internal
}  // namespace meshtrain

#define MESHTRAIN_LOG_SEVERITY_INFO ::meshtrain::LogSeverity::kInfo
#define MESHTRAIN_LOG_SEVERITY_WARNING ::meshtrain::LogSeverity::kWarning
#define MESHTRAIN_LOG_SEVERITY_ERROR ::meshtrain::LogSeverity::kError

// MESHTRAIN_LOG(INFO) << "epoch " << epoch;
#define MESHTRAIN_LOG(severity)                                                              \
  if (!::meshtrain::internal::ShouldLog(MESHTRAIN_LOG_SEVERITY_##severity)) {                \
  } else                                                                                     \
    ::meshtrain::internal::LogMessage(MESHTRAIN_LOG_SEVERITY_##severity, __FILE__, __LINE__) \
        .stream()

#endif  // MESHTRAIN_RUNTIME_BASE_LOGGING_H_
