#include "runtime/base/check.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

namespace meshtrain::internal {

CheckFailure::CheckFailure(const char* condition, const char* file, int line) {
  stream_ << "F " << file << ":" << line << "] check failed: " << condition << " ";
}

CheckFailure::~CheckFailure() {
  stream_ << "\n";
  const std::string text = stream_.str();
  ssize_t ignored = ::write(STDERR_FILENO, text.data(), text.size());
  (void)ignored;
  std::abort();
}

}  // namespace meshtrain::internal
