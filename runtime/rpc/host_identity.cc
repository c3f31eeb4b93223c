#include "runtime/rpc/host_identity.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace meshtrain {

std::string HostIdentity() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  std::string boot_id;
  std::ifstream file("/proc/sys/kernel/random/boot_id");
  if (file) std::getline(file, boot_id);
  absl::StripAsciiWhitespace(&boot_id);
  if (boot_id.empty()) return std::string(host);
  return absl::StrCat(boot_id, "/", host);
}

}  // namespace meshtrain
