#include "runtime/base/trace.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/base/atomic_file.h"

namespace meshtrain {
namespace {

// JSON string contents: quotes, backslashes and control characters escaped.
void AppendEscaped(std::string* out, absl::string_view text) {
  for (char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppend(out, "\\u00", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
        } else {
          out->push_back(c);
        }
    }
  }
}

}  // namespace

Tracer::Tracer(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}

int32_t Tracer::CurrentThreadId() {
  thread_local const int32_t tid = static_cast<int32_t>(::syscall(SYS_gettid));
  return tid;
}

void Tracer::Record(const char* name, const char* category, absl::Time start, absl::Time end,
                    TraceArg arg0, TraceArg arg1) {
  TraceEvent event;
  event.name = name;
  event.category = category;
  event.start_us = absl::ToUnixMicros(start);
  event.duration_us = std::max<int64_t>(0, absl::ToInt64Microseconds(end - start));
  event.tid = CurrentThreadId();
  event.args[0] = arg0;
  event.args[1] = arg1;
  absl::MutexLock lock(&mu_);
  if (events_.size() < capacity_) {
    events_.push_back(event);
    return;
  }
  events_[next_] = event;
  next_ = (next_ + 1) % capacity_;
  ++dropped_;
}

void Tracer::NameThread(absl::string_view name) {
  const int32_t tid = CurrentThreadId();
  absl::MutexLock lock(&mu_);
  thread_names_[tid] = std::string(name);
}

std::vector<TraceEvent> Tracer::Events() const {
  absl::MutexLock lock(&mu_);
  std::vector<TraceEvent> ordered(events_.begin() + static_cast<ptrdiff_t>(next_), events_.end());
  ordered.insert(ordered.end(), events_.begin(), events_.begin() + static_cast<ptrdiff_t>(next_));
  return ordered;
}

int64_t Tracer::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

std::string Tracer::ToChromeJson(int pid, absl::string_view process_name) const {
  std::map<int32_t, std::string> names;
  {
    absl::MutexLock lock(&mu_);
    names = thread_names_;
  }
  const std::vector<TraceEvent> events = Events();
  std::string out = "{\"traceEvents\":[\n";
  absl::StrAppend(&out, "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":", pid,
                  ",\"tid\":0,\"args\":{\"name\":\"");
  AppendEscaped(&out, process_name);
  out.append("\"}}");
  for (const auto& [tid, name] : names) {
    absl::StrAppend(&out, ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":", pid,
                    ",\"tid\":", tid, ",\"args\":{\"name\":\"");
    AppendEscaped(&out, name);
    out.append("\"}}");
  }
  for (const TraceEvent& e : events) {
    out.append(",\n{\"name\":\"");
    AppendEscaped(&out, e.name);
    out.append("\",\"cat\":\"");
    AppendEscaped(&out, e.category);
    absl::StrAppend(&out, "\",\"ph\":\"X\",\"ts\":", e.start_us, ",\"dur\":", e.duration_us,
                    ",\"pid\":", pid, ",\"tid\":", e.tid);
    bool first = true;
    for (const TraceArg& arg : e.args) {
      if (arg.name == nullptr) continue;
      out.append(first ? ",\"args\":{\"" : ",\"");
      AppendEscaped(&out, arg.name);
      absl::StrAppend(&out, "\":", arg.value);
      first = false;
    }
    if (!first) out.append("}");
    out.append("}");
  }
  absl::StrAppend(
      &out, "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"dropped_events\":", dropped(), "}}\n");
  return out;
}

absl::Status Tracer::WriteChromeJson(const std::string& path, int pid,
                                     absl::string_view process_name) const {
  return WriteFileAtomically(path, ToChromeJson(pid, process_name));
}

}  // namespace meshtrain
