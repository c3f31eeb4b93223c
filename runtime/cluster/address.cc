// Parsing and validating "host:port" addresses (address.h).
#include "runtime/cluster/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
    // Only digits, but possibly 70 KB of them.
    const std::string shown = port.size() <= 20 ? std::string(port) : QuoteForMessage(port, 20);
    return absl::InvalidArgumentError(absl::StrCat("port ", shown, " in address ",
                                                   QuoteForMessage(address),
                                                   " is out of range; ports must be 1..65535"));
  }
  return static_cast<int>(value);
}

constexpr size_t kMaxHostBytes = 253;
constexpr size_t kMaxLabelBytes = 63;
constexpr absl::string_view kHostSyntax =
    "a host is a name of letters, digits, hyphens and dots (e.g. 'node-3.example.com'), an "
    "IPv4 address (e.g. '10.0.0.2') or a bracketed IPv6 address (e.g. '[::1]')";

// The IPv6 address `host`, or nullopt when inet_pton refuses it.
std::optional<in6_addr> ParseIpv6(const std::string& host) {
  in6_addr addr;
  if (inet_pton(AF_INET6, host.c_str(), &addr) != 1) return std::nullopt;
  return addr;
}

// Why `host` (only digits and dots) is not a dotted-quad IPv4 address; "" if it is.
std::string Ipv4Problem(absl::string_view host) {
  const std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4) return "is not an IPv4 address (it needs four parts, e.g. '10.0.0.2')";
  for (absl::string_view part : parts) {
    int value = 0;
    if (part.empty() || part.size() > 3 || !absl::SimpleAtoi(part, &value) || value > 255) {
      return absl::StrCat("is not an IPv4 address (part ", QuoteForMessage(part),
                          " is not a number 0..255)");
    }
  }
  return "";
}

// Why `host` (unbracketed) is not a valid host name or IPv4 address; "" if it is.
std::string HostProblem(absl::string_view host) {
  if (host.size() > kMaxHostBytes) {
    return absl::StrCat("has a host of ", host.size(), " bytes; a host name has at most ",
                        kMaxHostBytes);
  }
  if (host.find_first_not_of("0123456789.") == absl::string_view::npos) return Ipv4Problem(host);
  for (absl::string_view label : absl::StrSplit(host, '.')) {
    if (label.empty()) return "has an empty label in its host (two dots, or a dot at an end)";
    if (label.size() > kMaxLabelBytes) {
      return absl::StrCat("has a host label of ", label.size(), " bytes; labels have at most ",
                          kMaxLabelBytes);
    }
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
        return absl::StrCat("has ", QuoteForMessage(absl::string_view(&c, 1)),
                            " in its host, which a host name cannot hold");
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return absl::StrCat("has host label ", QuoteForMessage(label),
                          ", which starts or ends with a hyphen");
    }
  }
  return "";
}

}  // namespace

std::string JoinHostPort(absl::string_view host, int port) {
  if (absl::StrContains(host, ':')) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

bool IsLoopbackHost(absl::string_view host) { return HostPort{std::string(host), 0}.IsLoopback(); }

std::string DefaultBindHost(absl::string_view own_host) {
  return IsLoopbackHost(own_host) ? std::string(own_host) : std::string("0.0.0.0");
}

std::string HostPort::Canonical() const { return JoinHostPort(absl::AsciiStrToLower(host), port); }

bool HostPort::IsLoopback() const {
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  std::optional<in6_addr> v6 = ParseIpv6(host);
  if (!v6.has_value()) return false;
  if (IN6_IS_ADDR_LOOPBACK(&*v6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&*v6) && v6->s6_addr[12] == 127;
}

std::string HostPort::EndpointKey() const {
  if (IsLoopback()) return absl::StrCat("loopback:", port);
  if (std::optional<in6_addr> v6 = ParseIpv6(host)) {
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, &*v6, text, sizeof(text)) != nullptr) return JoinHostPort(text, port);
  }
  return Canonical();
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  if (address.empty()) return Invalid(address, "is empty", kHowToWrite);
  for (char c : address) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return Invalid(address, "contains whitespace", "remove it");
    }
    if (absl::ascii_iscntrl(static_cast<unsigned char>(c))) {
      return Invalid(address, "contains a control character", "remove it");
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
    if (!result.host.empty() && !ParseIpv6(result.host).has_value()) {
      return Invalid(address, "has a bracketed host that is not an IPv6 address",
                     "write an IPv6 address as '[::1]:2222', or a name or IPv4 address without "
                     "brackets");
    }
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
    if (std::string problem = HostProblem(host); !problem.empty() && !host.empty()) {
      return Invalid(address, problem, kHostSyntax);
    }
    result.host = std::string(host);
    port = address.substr(colon + 1);
  }
  if (result.host.empty()) return Invalid(address, "has an empty host", kHowToWrite);
  MESHTRAIN_ASSIGN_OR_RETURN(result.port, ParsePort(address, port));
  return result;
}

}  // namespace meshtrain
