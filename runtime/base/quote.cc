// Quoting input for messages: escaping and truncation (quote.h).
#include "runtime/base/quote.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace meshtrain {

std::string QuoteForMessage(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return absl::StrCat("'", absl::CEscape(s), "'");
  return absl::StrCat("'", absl::CEscape(s.substr(0, max_bytes)), "...' (", s.size(), " bytes)");
}

bool IsPlainForMessage(absl::string_view s) {
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '\'' || c == '"' || c == '\\') return false;
  }
  return true;
}

}  // namespace meshtrain
