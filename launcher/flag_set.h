// FlagSet: the command-line flags of one subcommand (`meshtrain train`,
// `meshtrain launch`, ...). Flags are spelled with dashes (--model-dir), take
// `--name value` or `--name=value`, and write into variables the command owns;
// the variables' initial values are the defaults shown by --help. Abseil's flags
// are process-global and cannot spell dashed names, hence this small parser.
// Not thread-safe; used once at start-up.
#ifndef MESHTRAIN_LAUNCHER_FLAG_SET_H_
#define MESHTRAIN_LAUNCHER_FLAG_SET_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace meshtrain {

class FlagSet {
 public:
  FlagSet(std::string command, std::string usage, std::string description)
      : command_(std::move(command)),
        usage_(std::move(usage)),
        description_(std::move(description)) {}

  // `group` titles a block in --help ("training", "cluster", ...).
  void AddString(std::string name, std::string* value, std::string help, std::string group = "");
  void AddInt(std::string name, int64_t* value, std::string help, std::string group = "");
  void AddDouble(std::string name, double* value, std::string help, std::string group = "");
  void AddBool(std::string name, bool* value, std::string help, std::string group = "");
  // "30s", "5m", "250ms", or plain seconds.
  void AddDuration(std::string name, absl::Duration* value, std::string help,
                   std::string group = "");

  // Parses `args` (those after the subcommand). Returns the positional
  // arguments. "--help" sets help_requested(). An unknown flag or a bad value is
  // kInvalidArgument naming it and pointing at --help.
  absl::StatusOr<std::vector<std::string>> Parse(absl::Span<const std::string> args);

  bool help_requested() const { return help_requested_; }
  bool IsSet(absl::string_view name) const { return set_.count(std::string(name)) > 0; }
  // The flags given on the command line, as arguments ("--epochs=3"), in the
  // order declared, restricted to `names` (all when empty): what `launch` passes on.
  std::vector<std::string> SetFlagsAsArgs(const std::set<std::string>& names = {}) const;
  std::string Help() const;
  // Every declared flag's name, in declaration order.
  std::vector<std::string> names() const;
  const std::string& command() const { return command_; }

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string group;
    std::string type;  // for --help: STRING, INT, NUMBER, DURATION, or "" for bool
    std::function<bool(absl::string_view)> parse;
    std::function<std::string()> current;
    std::string default_text;
  };
  void Add(Flag flag);
  const Flag* Find(absl::string_view name) const;

  std::string command_;
  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
  std::set<std::string> set_;
  bool help_requested_ = false;
};

// The exit status of a usage error: a bad flag, argument or job config. Running
// the same command again would fail the same way (`launch` never restarts it).
inline constexpr int kUsageExitCode = 2;

// The common start of a subcommand: parses `args` into `flags`, printing --help
// or the error ("meshtrain <command>: ..."). Returns the exit status when the
// command should end now (0 after --help, kUsageExitCode after a bad flag or a positional
// argument), nullopt when it should go on.
std::optional<int> ParseCommandFlags(FlagSet& flags, const std::vector<std::string>& args);

// Parses "30s", "2m", "150ms", "1h" or a plain number of seconds.
bool ParseDurationFlag(absl::string_view text, absl::Duration* out);

}  // namespace meshtrain

#endif  // MESHTRAIN_LAUNCHER_FLAG_SET_H_
