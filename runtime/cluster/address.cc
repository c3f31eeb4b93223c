#include "runtime/cluster/address.h"

#include <arpa/inet.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {
namespace {

constexpr absl::string_view kHowToWrite = "write it as host:port, e.g. 'localhost:2222'";

absl::Status Invalid(absl::string_view address, absl::string_view problem, absl::string_view fix) {
  return absl::InvalidArgumentError(
      absl::StrCat("address ", QuoteForMessage(address), " ", problem, "; ", fix));
}

// Parses the text after the host's ':' as a port in 1..65535.
absl::StatusOr<int> ParsePort(absl::string_view address, absl::string_view port) {
  if (port.empty()) return Invalid(address, "has no port", kHowToWrite);
  for (char c : port) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(absl::StrCat("port ", QuoteForMessage(port), " in address ",
                                                     QuoteForMessage(address),
                                                     " is not a number; ports must be 1..65535"));
    }
  }
  long value = 0;
  for (char c : port) {
    value = value * 10 + (c - '0');
    if (value > 65535) break;
  }
  if (value < 1 || value > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", port, " in address ",
                                                   QuoteForMessage(address),
                                                   " is out of range; ports must be 1..65535"));
  }
  return static_cast<int>(value);
}

}  // namespace

std::string QuoteForMessage(absl::string_view s) {
  return absl::StrCat("'", absl::CEscape(s), "'");
}

std::string JoinHostPort(absl::string_view host, int port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost") || host == "::1") return true;
  in_addr ipv4{};
  if (inet_pton(AF_INET, std::string(host).c_str(), &ipv4) != 1) return false;
  return (ntohl(ipv4.s_addr) >> 24) == 127;
}

std::string DefaultBindHost(absl::string_view own_host) {
  return IsLoopbackHost(own_host) ? std::string(own_host) : std::string("0.0.0.0");
}

std::string HostPort::Canonical() const { return JoinHostPort(absl::AsciiStrToLower(host), port); }

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  if (address.empty()) return Invalid(address, "is empty", kHowToWrite);
  for (char c : address) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return Invalid(address, "contains whitespace", "remove it");
    }
  }
  HostPort result;
  absl::string_view port;
  if (address.front() == '[') {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos) {
      return Invalid(address, "has no closing ']'", "write an IPv6 address as '[::1]:2222'");
    }
    result.host = std::string(address.substr(1, close - 1));
    absl::string_view rest = address.substr(close + 1);
    if (rest.empty())
      return Invalid(address, "has no port", "write it as '[host]:port', e.g. '[::1]:2222'");
    if (rest.front() != ':') {
      return Invalid(address, "has text other than ':port' after ']'",
                     "write it as '[host]:port', e.g. '[::1]:2222'");
    }
    port = rest.substr(1);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) return Invalid(address, "has no port", kHowToWrite);
    absl::string_view host = address.substr(0, colon);
    if (absl::StrContains(host, ':')) {
      return Invalid(
          address, "has an IPv6 host without brackets",
          absl::StrCat("write it as ",
                       QuoteForMessage(absl::StrCat("[", host, "]:", address.substr(colon + 1)))));
    }
    result.host = std::string(host);
    port = address.substr(colon + 1);
  }
  if (result.host.empty()) return Invalid(address, "has an empty host", kHowToWrite);
  MESHTRAIN_ASSIGN_OR_RETURN(result.port, ParsePort(address, port));
  return result;
}

}  // namespace meshtrain
