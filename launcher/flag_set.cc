#include "launcher/flag_set.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace meshtrain {

std::optional<int> ParseCommandFlags(FlagSet& flags, const std::vector<std::string>& args) {
  absl::StatusOr<std::vector<std::string>> rest = flags.Parse(args);
  if (!rest.ok()) {
    std::fprintf(stderr, "meshtrain %s: %s\n", flags.command().c_str(),
                 std::string(rest.status().message()).c_str());
    return kUsageExitCode;
  }
  if (flags.help_requested()) {
    std::fputs(flags.Help().c_str(), stdout);
    return 0;
  }
  if (!rest->empty()) {
    std::fprintf(stderr, "meshtrain %s: unexpected argument '%s'; see meshtrain %s --help\n",
                 flags.command().c_str(), (*rest)[0].c_str(), flags.command().c_str());
    return kUsageExitCode;
  }
  return std::nullopt;
}

bool ParseDurationFlag(absl::string_view text, absl::Duration* out) {
  double seconds = 0;
  if (absl::SimpleAtod(text, &seconds)) {
    if (seconds < 0) return false;
    *out = absl::Seconds(seconds);
    return true;
  }
  return absl::ParseDuration(text, out) && *out >= absl::ZeroDuration();
}

void FlagSet::Add(Flag flag) {
  flag.default_text = flag.current();
  flags_.push_back(std::move(flag));
}

void FlagSet::AddString(std::string name, std::string* value, std::string help, std::string group) {
  Add({std::move(name), std::move(help), std::move(group), "STRING",
       [value](absl::string_view v) {
         *value = std::string(v);
         return true;
       },
       [value] { return *value; }});
}

void FlagSet::AddInt(std::string name, int64_t* value, std::string help, std::string group) {
  Add({std::move(name), std::move(help), std::move(group), "INT",
       [value](absl::string_view v) { return absl::SimpleAtoi(v, value); },
       [value] { return absl::StrCat(*value); }});
}

void FlagSet::AddDouble(std::string name, double* value, std::string help, std::string group) {
  Add({std::move(name), std::move(help), std::move(group), "NUMBER",
       [value](absl::string_view v) { return absl::SimpleAtod(v, value); },
       [value] { return absl::StrCat(*value); }});
}

void FlagSet::AddBool(std::string name, bool* value, std::string help, std::string group) {
  Add({std::move(name), std::move(help), std::move(group), "",
       [value](absl::string_view v) {
         const std::string lower = absl::AsciiStrToLower(v);
         if (lower == "true" || lower == "1" || lower == "yes") {
           *value = true;
           return true;
         }
         if (lower == "false" || lower == "0" || lower == "no") {
           *value = false;
           return true;
         }
         return false;
       },
       [value] { return *value ? std::string("true") : std::string("false"); }});
}

void FlagSet::AddDuration(std::string name, absl::Duration* value, std::string help,
                          std::string group) {
  Add({std::move(name), std::move(help), std::move(group), "DURATION",
       [value](absl::string_view v) { return ParseDurationFlag(v, value); },
       [value] { return absl::FormatDuration(*value); }});
}

const FlagSet::Flag* FlagSet::Find(absl::string_view name) const {
  for (const Flag& flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(absl::Span<const std::string> args) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") {
      positional.insert(positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg == "--help" || arg == "-h" || arg == "-help") {
      help_requested_ = true;
      continue;
    }
    if (!absl::ConsumePrefix(&arg, "--")) {
      positional.emplace_back(arg);
      continue;
    }
    std::string name(arg), value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    std::replace(name.begin(), name.end(), '_', '-');
    const Flag* flag = Find(name);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      flag = Find(name.substr(2));
      negated = flag != nullptr && flag->type.empty();
      if (!negated) flag = nullptr;
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name, " for 'meshtrain ",
                                                     command_, "'; see 'meshtrain ", command_,
                                                     " --help'"));
    }
    if (flag->type.empty() && !has_value) {
      value = negated ? "false" : "true";
    } else if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value (", flag->type, ")"));
      }
      value = args[++i];
    }
    if (!flag->parse(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, ": '", value, "' is not a valid ",
                       flag->type.empty() ? "true/false" : flag->type, " value"));
    }
    set_.insert(flag->name);
  }
  return positional;
}

std::vector<std::string> FlagSet::SetFlagsAsArgs(const std::set<std::string>& names) const {
  std::vector<std::string> args;
  for (const Flag& flag : flags_) {
    if (!set_.count(flag.name) || (!names.empty() && !names.count(flag.name))) continue;
    args.push_back(absl::StrCat("--", flag.name, "=", flag.current()));
  }
  return args;
}

std::vector<std::string> FlagSet::names() const {
  std::vector<std::string> out;
  for (const Flag& flag : flags_) out.push_back(flag.name);
  return out;
}

std::string FlagSet::Help() const {
  std::string out = absl::StrCat("usage: ", usage_, "\n\n", description_, "\n");
  std::vector<std::string> groups;
  for (const Flag& flag : flags_) {
    if (std::find(groups.begin(), groups.end(), flag.group) == groups.end()) {
      groups.push_back(flag.group);
    }
  }
  for (const std::string& group : groups) {
    absl::StrAppend(&out, "\n", group.empty() ? "flags" : group, ":\n");
    for (const Flag& flag : flags_) {
      if (flag.group != group) continue;
      std::string head = absl::StrCat("  --", flag.name, flag.type.empty() ? "" : " ", flag.type);
      std::string def =
          flag.default_text.empty() ? "" : absl::StrCat(" (default: ", flag.default_text, ")");
      if (flag.type.empty()) def = flag.default_text == "true" ? " (default: on)" : "";
      absl::StrAppendFormat(&out, "%-32s %s%s\n", head, flag.help, def);
    }
  }
  absl::StrAppend(&out, "  --help                           this text\n");
  return out;
}

}  // namespace meshtrain
