// MESHTRAIN_CHECK: for programmer bugs only (a broken invariant inside one
// process), never for input from a file, the environment, the user or a peer —
// those return a Status. On failure it prints the condition and aborts.
#ifndef MESHTRAIN_RUNTIME_BASE_CHECK_H_
#define MESHTRAIN_RUNTIME_BASE_CHECK_H_

#include <sstream>

namespace meshtrain::internal {

class CheckFailure {
 public:
  CheckFailure(const char* condition, const char* file, int line);
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

}  // namespace meshtrain::internal

#define MESHTRAIN_CHECK(condition)                         \
  if (__builtin_expect(static_cast<bool>(condition), 1)) { \
  } else                                                   \
    ::meshtrain::internal::CheckFailure(#condition, __FILE__, __LINE__).stream()

#endif  // MESHTRAIN_RUNTIME_BASE_CHECK_H_
