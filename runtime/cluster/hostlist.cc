#include "runtime/cluster/hostlist.h"

#include <cstdint>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/base/quote.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"

namespace meshtrain {
namespace {

absl::Status HostlistError(absl::string_view hostlist, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "hostlist ", QuoteForMessage(hostlist), ": ", what,
      "; write names like node07, node[01-03,7] or rack[1-2]-node[1-4], separated by commas"));
}

bool AllDigits(absl::string_view s) {
  if (s.empty() || s.size() > 9) return false;  // 9 digits fit an int
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// "01-03,7" -> 01 02 03 7: each range padded to the width of its lower bound.
absl::StatusOr<std::vector<std::string>> ExpandGroup(absl::string_view hostlist,
                                                     absl::string_view group) {
  std::vector<std::string> out;
  for (absl::string_view item : absl::StrSplit(group, ',')) {
    const std::vector<absl::string_view> bounds = absl::StrSplit(item, absl::MaxSplits('-', 1));
    const absl::string_view lo_text = bounds[0];
    const absl::string_view hi_text = bounds.size() == 2 ? bounds[1] : bounds[0];
    int lo = 0;
    int hi = 0;
    if (!AllDigits(lo_text) || !AllDigits(hi_text) || !absl::SimpleAtoi(lo_text, &lo) ||
        !absl::SimpleAtoi(hi_text, &hi)) {
      return HostlistError(
          hostlist, absl::StrCat("[", QuoteForMessage(group), "] has ", QuoteForMessage(item),
                                 ", not a number or a range lo-hi of numbers"));
    }
    if (hi < lo) {
      return HostlistError(hostlist,
                           absl::StrCat("range ", QuoteForMessage(item), " ends before it starts"));
    }
    if (hi - lo >= kMaxHostlistHosts - static_cast<int>(out.size())) {
      return HostlistError(hostlist, absl::StrCat("more than ", kMaxHostlistHosts, " names"));
    }
    const size_t width = lo_text.size();
    for (int i = lo; i <= hi; ++i) {
      std::string number = absl::StrCat(i);
      if (number.size() < width) number.insert(0, width - number.size(), '0');
      out.push_back(std::move(number));
    }
  }
  return out;
}

// One name with its bracket groups: "rack[1-2]-n[1-2]" -> the cartesian product.
absl::StatusOr<std::vector<std::string>> ExpandName(absl::string_view hostlist,
                                                    absl::string_view name) {
  if (name.empty()) return HostlistError(hostlist, "an empty name (two commas in a row?)");
  std::vector<std::string> partial = {""};
  size_t pos = 0;
  while (pos < name.size()) {
    const size_t open = name.find('[', pos);
    const absl::string_view literal = name.substr(pos, open - pos);
    if (literal.find(']') != absl::string_view::npos) {
      return HostlistError(hostlist, absl::StrCat("']' without '[' in ", QuoteForMessage(name)));
    }
    for (std::string& p : partial) absl::StrAppend(&p, literal);
    if (open == absl::string_view::npos) break;
    const size_t close = name.find(']', open);
    if (close == absl::string_view::npos) {
      return HostlistError(hostlist, absl::StrCat("'[' without ']' in ", QuoteForMessage(name)));
    }
    const absl::string_view group = name.substr(open + 1, close - open - 1);
    if (group.find('[') != absl::string_view::npos) {
      return HostlistError(hostlist, absl::StrCat("nested '[' in ", QuoteForMessage(name)));
    }
    MESHTRAIN_ASSIGN_OR_RETURN(std::vector<std::string> numbers, ExpandGroup(hostlist, group));
    if (static_cast<int64_t>(partial.size()) * static_cast<int64_t>(numbers.size()) >
        kMaxHostlistHosts) {
      return HostlistError(hostlist, absl::StrCat("more than ", kMaxHostlistHosts, " names"));
    }
    std::vector<std::string> next;
    next.reserve(partial.size() * numbers.size());
    for (const std::string& p : partial) {
      for (const std::string& n : numbers) next.push_back(absl::StrCat(p, n));
    }
    partial = std::move(next);
    pos = close + 1;
  }
  return partial;
}

// Splits at the commas outside brackets; brackets are checked by ExpandName.
std::vector<absl::string_view> SplitNames(absl::string_view hostlist) {
  std::vector<absl::string_view> names;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < hostlist.size(); ++i) {
    if (hostlist[i] == '[') ++depth;
    if (hostlist[i] == ']') --depth;
    if (hostlist[i] == ',' && depth == 0) {
      names.push_back(hostlist.substr(start, i - start));
      start = i + 1;
    }
  }
  names.push_back(hostlist.substr(start));
  return names;
}

absl::Status TasksError(absl::string_view text, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("tasks per node ", QuoteForMessage(text), ": ",
                                                 what, "; write counts like 2,1 or 2(x3),1"));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ExpandHostlist(absl::string_view hostlist) {
  if (hostlist.empty()) return HostlistError(hostlist, "no names");
  std::vector<std::string> hosts;
  for (absl::string_view name : SplitNames(hostlist)) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::vector<std::string> expanded, ExpandName(hostlist, name));
    if (hosts.size() + expanded.size() > static_cast<size_t>(kMaxHostlistHosts)) {
      return HostlistError(hostlist, absl::StrCat("more than ", kMaxHostlistHosts, " names"));
    }
    for (std::string& h : expanded) hosts.push_back(std::move(h));
  }
  return hosts;
}

absl::StatusOr<std::vector<int>> ExpandTasksPerNode(absl::string_view text) {
  if (text.empty()) return TasksError(text, "no counts");
  std::vector<int> counts;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    absl::string_view count_text = item;
    int repeat = 1;
    const size_t paren = item.find('(');
    if (paren != absl::string_view::npos) {
      count_text = item.substr(0, paren);
      const absl::string_view rest = item.substr(paren);
      if (rest.size() < 4 || rest.substr(0, 2) != "(x" || rest.back() != ')' ||
          !AllDigits(rest.substr(2, rest.size() - 3)) ||
          !absl::SimpleAtoi(rest.substr(2, rest.size() - 3), &repeat) || repeat < 1) {
        return TasksError(text, absl::StrCat(QuoteForMessage(item), " is not COUNT(xREPEAT)"));
      }
    }
    int count = 0;
    if (!AllDigits(count_text) || !absl::SimpleAtoi(count_text, &count) || count < 1) {
      return TasksError(text, absl::StrCat(QuoteForMessage(item), " is not a count of at least 1"));
    }
    if (repeat > kMaxHostlistHosts - static_cast<int>(counts.size())) {
      return TasksError(text, absl::StrCat("more than ", kMaxHostlistHosts, " nodes"));
    }
    counts.insert(counts.end(), repeat, count);
  }
  return counts;
}

}  // namespace meshtrain
