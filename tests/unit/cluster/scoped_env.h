// ScopedEnv: sets or unsets one environment variable for a scope and restores
// it after. Tests only; not thread-safe (setenv is not).
#ifndef MESHTRAIN_TESTS_UNIT_CLUSTER_SCOPED_ENV_H_
#define MESHTRAIN_TESTS_UNIT_CLUSTER_SCOPED_ENV_H_

#include <cstdlib>
#include <optional>
#include <string>

namespace meshtrain {

class ScopedEnv {
 public:
  // Sets `name` to `value`, or unsets it for std::nullopt.
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_TESTS_UNIT_CLUSTER_SCOPED_ENV_H_
