// QuoteForMessage: a piece of input (a host, a key, a file's line) made safe
// to print inside a one-line error message. It is single-quoted, control
// characters, quotes and bytes outside printable ASCII are C-escaped, and
// anything past `max_bytes` of the input is cut off with an ellipsis and the
// input's full length, so a hostile or accidental 100 KB value cannot flood a
// log or split a line. Pure; thread-safe.
#ifndef MESHTRAIN_RUNTIME_BASE_QUOTE_H_
#define MESHTRAIN_RUNTIME_BASE_QUOTE_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace meshtrain {

inline constexpr size_t kMaxQuotedBytes = 100;

// 'a\nb', or 'aaaa...' (70000 bytes) when `s` is longer than `max_bytes`.
std::string QuoteForMessage(absl::string_view s, size_t max_bytes = kMaxQuotedBytes);

// True when `s` is printable ASCII without quotes or backslashes, so it may
// appear in a message as it is (a JSON key in a field path).
bool IsPlainForMessage(absl::string_view s);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_BASE_QUOTE_H_
