// What every fuzz target asks of a parser's error: the code its contract
// names, and a message fit for one log line (no line break, bounded, whatever
// the input held). A broken expectation aborts, which the fuzzer reports.
#ifndef MESHTRAIN_TESTS_FUZZ_FUZZ_STATUS_H_
#define MESHTRAIN_TESTS_FUZZ_FUZZ_STATUS_H_

#include "absl/status/status.h"
#include "runtime/base/check.h"

namespace meshtrain::fuzz {

// Longest message a rejected input may produce: the parsers quote a bounded,
// escaped prefix of a value, never the whole input.
inline constexpr size_t kMaxMessageBytes = 4096;

inline void ExpectRejection(const absl::Status& status, absl::StatusCode code) {
  MESHTRAIN_CHECK(status.code() == code) << status;
  MESHTRAIN_CHECK(status.message().size() <= kMaxMessageBytes)
      << status.message().size() << " bytes: " << status.message().substr(0, 400);
  MESHTRAIN_CHECK(status.message().find('\n') == absl::string_view::npos) << status;
}

}  // namespace meshtrain::fuzz

#endif  // MESHTRAIN_TESTS_FUZZ_FUZZ_STATUS_H_
