#include "reports/machine_info.h"

#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace meshtrain {
namespace {

// The value after "key:" (or "key=") on the first line starting with `key` in
// `path`, or `fallback`.
std::string FindValue(const char* path, absl::string_view key, char separator,
                      const std::string& fallback) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, key)) continue;
    const size_t at = line.find(separator);
    if (at == std::string::npos) continue;
    absl::string_view value = absl::StripAsciiWhitespace(absl::string_view(line).substr(at + 1));
    if (absl::StartsWith(value, "\"") && absl::EndsWith(value, "\"") && value.size() >= 2) {
      value = value.substr(1, value.size() - 2);
    }
    if (!value.empty()) return std::string(value);
  }
  return fallback;
}

}  // namespace

MachineInfo ReadMachineInfo() {
  MachineInfo info;
  const std::string unknown = "?";
  char host[256] = {};
  info.host = ::gethostname(host, sizeof(host) - 1) == 0 ? std::string(host) : unknown;
  info.cores = static_cast<int>(std::thread::hardware_concurrency());
  info.cpu = FindValue("/proc/cpuinfo", "model name", ':', unknown);
  const std::string mem = FindValue("/proc/meminfo", "MemTotal", ':', "");  // "8041124 kB"
  int64_t kib = 0;
  std::vector<absl::string_view> parts = absl::StrSplit(mem, ' ', absl::SkipEmpty());
  if (!parts.empty() && absl::SimpleAtoi(parts[0], &kib)) info.memory_bytes = kib * 1024;
  info.os = FindValue("/etc/os-release", "PRETTY_NAME", '=', unknown);
  return info;
}

double LoadAverage() {
  std::ifstream in("/proc/loadavg");
  double load = -1;
  if (!(in >> load)) return -1;
  return load;
}

}  // namespace meshtrain
