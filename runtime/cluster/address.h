// A task's network address, "host:port" as TF_CONFIG writes it: a host name,
// an IPv4 address or a bracketed IPv6 address ("[::1]:2222"), then a port in
// 1..65535. Parsing is pure and thread-safe; errors are one-line kInvalidArgument
// messages that quote the address and say how to write it, without naming the
// field (the caller prefixes that: "TF_CONFIG cluster.worker[1]: ...").
#ifndef MESHTRAIN_RUNTIME_CLUSTER_ADDRESS_H_
#define MESHTRAIN_RUNTIME_CLUSTER_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace meshtrain {

struct HostPort {
  std::string host;  // without brackets: "::1", "10.0.0.2", "node-3"
  int port = 0;      // 1..65535

  // Canonical "host:port" (IPv6 hosts bracketed, host lower-cased): two
  // addresses that differ only in case or a port's leading zeros compare equal.
  std::string Canonical() const;
};

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

// "host:port", bracketing an IPv6 host: JoinHostPort("::1", 2222) == "[::1]:2222".
std::string JoinHostPort(absl::string_view host, int port);

// True for a loopback host: "localhost" (any case), "::1" or an IPv4 address
// in 127.0.0.0/8.
bool IsLoopbackHost(absl::string_view host);

// The host a task binds its listening sockets to when no --bind-host is
// given: its own address's host when that is loopback (a local cluster is
// not reachable from other machines), else "0.0.0.0", every interface, as
// TensorFlow does (a host name may not resolve to the interface peers reach).
std::string DefaultBindHost(absl::string_view own_host);

// `s` in single quotes with control characters and quotes escaped, so that a
// message quoting it stays on one line.
std::string QuoteForMessage(absl::string_view s);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_CLUSTER_ADDRESS_H_
