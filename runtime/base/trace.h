// Tracer: records this task's timed spans (steps, collectives, pushes and
// pulls) for a Chrome trace, the JSON that Perfetto and chrome://tracing open
// (docs/compare.md, "Timeline"). Times are CLOCK_REALTIME microseconds, so the
// files of tasks on one host (or on hosts with synchronised clocks) share one
// time axis and can be merged (summaries/trace_files.h).
//
// Cost: a span is two clock reads and one short locked append to a ring buffer
// of `capacity` events (allocated as it fills); once full the oldest events are
// overwritten and counted as dropped. Code that may trace holds a Tracer*
// that is null when tracing is off: a TraceSpan then costs one branch. There is
// no process-wide tracer; the owner passes it down (StrategyContext,
// TrainingOptions).
//
// Thread-safe: any thread may record and name itself.
#ifndef MESHTRAIN_RUNTIME_BASE_TRACE_H_
#define MESHTRAIN_RUNTIME_BASE_TRACE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace meshtrain {

// A named integer attached to an event ("step", "bytes"). `name` must have
// static storage duration; null means no argument.
struct TraceArg {
  const char* name = nullptr;
  int64_t value = 0;
};

struct TraceEvent {
  const char* name = "";      // static storage: "step", "allreduce"
  const char* category = "";  // static storage: "step", "collective", "ps"
  int64_t start_us = 0;       // since the Unix epoch
  int64_t duration_us = 0;
  int32_t tid = 0;  // the recording thread (Linux thread id)
  TraceArg args[2];
};

class Tracer {
 public:
  static constexpr size_t kDefaultCapacity = size_t{1} << 18;

  explicit Tracer(size_t capacity = kDefaultCapacity);
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  void Record(const char* name, const char* category, absl::Time start, absl::Time end,
              TraceArg arg0 = {}, TraceArg arg1 = {});
  // Names the calling thread in the trace ("replica 0"); the last name wins.
  void NameThread(absl::string_view name);

  // The events kept, oldest first.
  std::vector<TraceEvent> Events() const;
  int64_t dropped() const;

  // {"traceEvents": [...]} with metadata naming the process (`pid`,
  // `process_name`) and its named threads, then one complete ("X") event per span.
  std::string ToChromeJson(int pid, absl::string_view process_name) const;
  // Writes ToChromeJson to `path` through a temporary file and a rename.
  absl::Status WriteChromeJson(const std::string& path, int pid,
                               absl::string_view process_name) const;

  // The calling thread's id (cached per thread).
  static int32_t CurrentThreadId();

 private:
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::vector<TraceEvent> events_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;  // where the next event goes once full
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int32_t, std::string> thread_names_ ABSL_GUARDED_BY(mu_);
};

// Records [construction, destruction) as one event when `tracer` is non-null.
class TraceSpan {
 public:
  TraceSpan(Tracer* tracer, const char* name, const char* category)
      : tracer_(tracer), name_(name), category_(category) {
    if (tracer_ != nullptr) start_ = absl::Now();
  }
  ~TraceSpan() {
    if (tracer_ != nullptr)
      tracer_->Record(name_, category_, start_, absl::Now(), args_[0], args_[1]);
  }
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;

  // `index` 0 or 1; `name` of static storage.
  void SetArg(int index, const char* name, int64_t value) { args_[index] = {name, value}; }

 private:
  Tracer* const tracer_;
  const char* const name_;
  const char* const category_;
  absl::Time start_;
  TraceArg args_[2];
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_TRACE_H_
