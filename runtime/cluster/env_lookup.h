// EnvLookup: how resolvers read environment variables, injectable so that a
// resolver is a pure function of a map in tests. A lookup returns the value of
// a set, non-empty variable, or nullopt (unset and empty are the same to every
// resolver, as they are to TF_CONFIG). ProcessEnvironment() reads getenv: safe
// unless another thread calls setenv; MapEnvironment() is immutable and
// thread-safe.
#ifndef MESHTRAIN_RUNTIME_CLUSTER_ENV_LOOKUP_H_
#define MESHTRAIN_RUNTIME_CLUSTER_ENV_LOOKUP_H_

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace meshtrain {

using EnvLookup = std::function<std::optional<std::string>(absl::string_view name)>;

// This process's environment.
EnvLookup ProcessEnvironment();

// A fixed environment (tests, check-config of a described pod).
EnvLookup MapEnvironment(std::map<std::string, std::string> vars);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_ENV_LOOKUP_H_
