// Development benchmark (not a test): what the always-on instrumentation costs
// per call (docs/compare.md, "What the instrumentation costs"): a clock read,
// the transport counters of one SendRecv, a trace span with tracing off and on.
// Multiply by the calls a step makes to get the cost per step.
//
//   instrumentation_bench [--iters 2000000]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "runtime/base/trace.h"
#include "runtime/transport/transport_counters.h"

namespace meshtrain {
namespace {

template <typename Fn>
double NanosPerCall(int64_t iters, Fn fn) {
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < iters; ++i) fn(i);
  const auto end = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(end - start).count() / static_cast<double>(iters);
}

int Run(int64_t iters) {
  volatile int64_t sink = 0;
  std::byte buffer[64];
  TransportCounters counters;
  SendRecvOp op{.send_to = 1, .send = buffer, .recv_from = 1, .recv = buffer};
  Tracer tracer(size_t{1} << 16);  // a ring smaller than iters: the steady state overwrites
  std::printf("%-44s %10s\n", "operation", "ns/call");
  std::printf("%-44s %10.1f\n", "empty loop",
              NanosPerCall(iters, [&](int64_t i) { sink = sink + i; }));
  std::printf("%-44s %10.1f\n", "absl::Now()",
              NanosPerCall(iters, [&](int64_t) { sink = sink + absl::ToUnixNanos(absl::Now()); }));
  std::printf("%-44s %10.1f\n", "transport counters (one SendRecv)",
              NanosPerCall(iters, [&](int64_t) {
                counters.CountCompleted(op);
                counters.AddBlocked(absl::Nanoseconds(1));
              }));
  std::printf("%-44s %10.1f\n", "blocked wait timed (two clock reads + add)",
              NanosPerCall(iters, [&](int64_t) {
                const absl::Time t = absl::Now();
                counters.AddBlocked(absl::Now() - t);
              }));
  std::printf("%-44s %10.1f\n", "TraceSpan, tracing off (null tracer)",
              NanosPerCall(iters, [&](int64_t i) {
                TraceSpan span(nullptr, "step", "step");
                span.SetArg(0, "step", i);
              }));
  std::printf("%-44s %10.1f\n", "TraceSpan, tracing on", NanosPerCall(iters, [&](int64_t i) {
                TraceSpan span(&tracer, "step", "step");
                span.SetArg(0, "step", i);
              }));
  std::printf("(%lld iterations; %lld events dropped by the ring)\n", static_cast<long long>(iters),
              static_cast<long long>(tracer.dropped()));
  return sink == 42 ? 1 : 0;
}

}  // namespace
}  // namespace meshtrain

int main(int argc, char** argv) {
  int64_t iters = 2000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--iters") == 0 && !absl::SimpleAtoi(argv[i + 1], &iters)) return 2;
  }
  return meshtrain::Run(iters);
}
