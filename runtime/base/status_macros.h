// Status propagation macros. Every fallible function in meshtrain returns
// absl::Status or absl::StatusOr<T>; these keep the happy path readable.
#ifndef MESHTRAIN_RUNTIME_BASE_STATUS_MACROS_H_
#define MESHTRAIN_RUNTIME_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MESHTRAIN_CONCAT_INNER_(a, b) a##b
#define MESHTRAIN_CONCAT_(a, b) MESHTRAIN_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` yields a non-OK status.
#define MESHTRAIN_RETURN_IF_ERROR(expr)                    \
  do {                                                     \
    ::absl::Status meshtrain_status_ = (expr);             \
    if (!meshtrain_status_.ok()) return meshtrain_status_; \
  } while (0)

// MESHTRAIN_ASSIGN_OR_RETURN(auto x, F()) declares `x` from an OK StatusOr, or
// returns its status.
#define MESHTRAIN_ASSIGN_OR_RETURN(lhs, expr) \
  MESHTRAIN_ASSIGN_OR_RETURN_IMPL_(MESHTRAIN_CONCAT_(meshtrain_statusor_, __LINE__), lhs, expr)
#define MESHTRAIN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.ok()) return std::move(tmp).status();         \
  lhs = std::move(tmp).value()

namespace meshtrain {

// Prefixes a status message with context ("allreduce step 41: ...") keeping the
// code and the payloads.
absl::Status Annotate(const absl::Status& status, absl::string_view context);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_STATUS_MACROS_H_
