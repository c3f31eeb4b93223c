// A task's network address, "host:port" as TF_CONFIG writes it: an RFC 1123
// host name (labels of letters, digits and hyphens, 1..63 bytes each, 253 in
// all), a dotted-quad IPv4 address with parts 0..255 or a bracketed IPv6
// address that inet_pton accepts ("[::1]:2222"), then a port in 1..65535.
// Anything else ("*", "a/b", "256.256.256.256", "[not-ipv6]", control
// characters) is refused. Parsing is pure and thread-safe; errors are one-line
// kInvalidArgument messages that quote the address (escaped, bounded) and say
// how to write it, without naming the field (the caller prefixes that:
// "TF_CONFIG cluster.worker[1]: ...").
#ifndef MESHTRAIN_RUNTIME_CLUSTER_ADDRESS_H_
#define MESHTRAIN_RUNTIME_CLUSTER_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/base/quote.h"

namespace meshtrain {

struct HostPort {
  std::string host;  // without brackets: "::1", "10.0.0.2", "node-3"
  int port = 0;      // 1..65535

  // Canonical "host:port" (IPv6 hosts bracketed, host lower-cased): two
  // addresses that differ only in case or a port's leading zeros compare equal.
  std::string Canonical() const;
  // localhost, 127.x.y.z, ::1 (in any spelling) or ::ffff:127.x.y.z.
  bool IsLoopback() const;
  // Equal for two addresses that name one endpoint on this host: the same
  // canonical address (IPv6 in its shortest form), or a loopback address and
  // the same port ("loopback:2222" for localhost:2222 and 127.0.0.1:2222).
  std::string EndpointKey() const;
};

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

// "host:port", bracketing an IPv6 host: JoinHostPort("::1", 2222) == "[::1]:2222".
std::string JoinHostPort(absl::string_view host, int port);

// True for a loopback host (HostPort::IsLoopback): "localhost" (any case),
// 127.0.0.0/8, ::1 in any spelling, or ::ffff:127.x.y.z.
bool IsLoopbackHost(absl::string_view host);

// The host a task binds its listening sockets to when no --bind-host is
// given: its own address's host when that is loopback (a local cluster is
// not reachable from other machines), else "0.0.0.0", every interface, as
// TensorFlow does (a host name may not resolve to the interface peers reach).
std::string DefaultBindHost(absl::string_view own_host);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_ADDRESS_H_
