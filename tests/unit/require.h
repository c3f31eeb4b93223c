// MESHTRAIN_REQUIRE_OR_SKIP(available, reason): skips the test where a dataset,
// package or capability it needs is missing, except under CI=true, where the
// test fails with the reason instead, so that a green CI run ran every test.
// (GPU tests skip everywhere: tests/unit/tensor/gpu_test_support.h.)
#ifndef MESHTRAIN_TESTS_UNIT_REQUIRE_H_
#define MESHTRAIN_TESTS_UNIT_REQUIRE_H_

#include <cstdlib>
#include <cstring>

#include "gtest/gtest.h"

namespace meshtrain {

inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::strcmp(ci, "true") == 0;
}

}  // namespace meshtrain

#define MESHTRAIN_REQUIRE_OR_SKIP(available, reason)                           \
  do {                                                                         \
    if (!(available)) {                                                        \
      if (::meshtrain::InCi()) FAIL() << "required under CI=true: " << reason; \
      GTEST_SKIP() << reason;                                                  \
    }                                                                          \
  } while (0)

#endif  // MESHTRAIN_TESTS_UNIT_REQUIRE_H_
