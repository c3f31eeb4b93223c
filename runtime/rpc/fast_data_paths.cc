#include "runtime/rpc/fast_data_paths.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"
#include "runtime/rpc/coordination_client.h"
#include "runtime/transport/routed_transport.h"
#include "runtime/transport/shm_transport.h"
#include "runtime/transport/tcp_listener.h"
#include "runtime/transport/tcp_transport.h"

namespace meshtrain {
namespace {

struct PeerEntry {
  uint64_t incarnation = 0;
  int port = 0;
  std::string secret;  // 32 hex digits: 128 random bits the rank drew
};

absl::StatusOr<std::string> DrawSecret(const DataPathContext& c) {
  unsigned char bits[16];
  size_t got = 0;
  while (got < sizeof(bits)) {
    ssize_t rc = getrandom(bits + got, sizeof(bits) - got, 0);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) {
      return absl::InternalError(
          absl::StrCat("data path ", c.name, ": getrandom: ", strerror(errno)));
    }
    got += rc;
  }
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bits), sizeof(bits)));
}

std::string KeyFor(const DataPathContext& c, int rank) {
  return absl::StrCat("datapath/", c.name, "/", rank);
}

// Steps 1-3 of the protocol: publish ours, read everyone's, derive the group id.
absl::StatusOr<std::vector<PeerEntry>> Exchange(const DataPathContext& c, int my_port,
                                                uint64_t* group_id) {
  const int n = static_cast<int>(c.group.size());
  MESHTRAIN_ASSIGN_OR_RETURN(std::string secret, DrawSecret(c));
  const std::string mine = absl::StrCat(c.incarnation, ":", my_port, ":", secret);
  MESHTRAIN_RETURN_IF_ERROR(c.coordination->KvSet(KeyFor(c, c.rank), mine));
  std::vector<PeerEntry> entries(n);
  uint64_t h = 0xcbf29ce484222325ull;
  for (char ch : c.name) h = (h ^ static_cast<uint8_t>(ch)) * 0x100000001b3ull;
  for (int r = 0; r < n; ++r) {
    std::string value;
    if (r == c.rank) {
      value = mine;
    } else {
      MESHTRAIN_ASSIGN_OR_RETURN(value, c.coordination->KvGet(KeyFor(c, r), c.deadline));
    }
    std::vector<absl::string_view> parts = absl::StrSplit(value, ':');
    if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &entries[r].incarnation) ||
        !absl::SimpleAtoi(parts[1], &entries[r].port) || parts[2].size() != 32 ||
        !std::all_of(parts[2].begin(), parts[2].end(), absl::ascii_isxdigit)) {
      return absl::InternalError(absl::StrCat("data path ", c.name, ": malformed entry '", value,
                                              "' from ", c.group[r].ToString()));
    }
    entries[r].secret = std::string(parts[2]);
    h = (h ^ entries[r].incarnation) * 0x100000001b3ull;
  }
  *group_id = h;
  return entries;
}

std::vector<std::string> PeerNames(const DataPathContext& c) {
  std::vector<std::string> names;
  for (const TaskId& t : c.group) {
    names.push_back(absl::StrCat(t.ToString(), " (", c.cluster->address(t), ")"));
  }
  return names;
}

// More threads driving this group's transports on this host than cores:
// spinning would hold a core a peer needs. Each rank drives its transport with
// `threads_per_rank` threads at once.
bool Oversubscribed(const DataPathContext& c, int threads_per_rank = 1) {
  int here = 0;
  for (const std::string& id : c.host_identities) here += id == c.host_identities[c.rank];
  return here * threads_per_rank > static_cast<int>(std::thread::hardware_concurrency());
}

// Options of a shm transport to `peers`, after the exchange gave `group_id`
// and `entries` (rank 0's secret names the segments).
ShmTransportOptions ShmOptions(const DataPathContext& c, uint64_t group_id,
                               const std::vector<PeerEntry>& entries, std::vector<int> peers) {
  ShmTransportOptions options;
  options.rank = c.rank;
  options.world_size = static_cast<int>(c.group.size());
  std::string name;
  for (char ch : c.name) name += absl::ascii_isalnum(ch) || ch == '_' || ch == '-' ? ch : '_';
  options.job_prefix =
      absl::StrFormat("%s-%016x-%s", name.substr(0, 100), group_id, entries[0].secret);
  options.peer_names = PeerNames(c);
  options.peers = std::move(peers);
  if (Oversubscribed(c)) options.spin = absl::ZeroDuration();
  options.connect_deadline = c.deadline;
  options.abort = c.abort;
  return options;
}

// Options of a tcp transport to `peers`, after the exchange gave `entries`
// (their listening ports) and `group_id`.
absl::StatusOr<TcpTransportOptions> TcpOptions(const DataPathContext& c,
                                               const std::vector<PeerEntry>& entries,
                                               uint64_t group_id, const std::vector<int>& peers) {
  TcpTransportOptions options;
  options.rank = c.rank;
  options.world_size = static_cast<int>(c.group.size());
  options.job_id = c.name;
  options.incarnation = group_id;
  options.peer_names = PeerNames(c);
  for (int r : peers) {
    // Peers listen on the host of their task address.
    MESHTRAIN_ASSIGN_OR_RETURN(HostPort address, ParseHostPort(c.cluster->address(c.group[r])));
    options.peers.push_back(TcpPeerAddress{r, address.host, entries[r].port});
  }
  if (Oversubscribed(c)) options.spin = absl::ZeroDuration();
  options.connect_deadline = c.deadline;
  options.abort = c.abort;
  if (c.security != nullptr && c.security->data_path_tls != nullptr) {
    options.tls = c.security->data_path_tls;
    options.encrypt = c.security->data_path_encryption;
  }
  return options;
}

absl::StatusOr<std::unique_ptr<Transport>> CreateShm(const DataPathContext& c) {
  uint64_t group_id = 0;
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<PeerEntry> entries, Exchange(c, 0, &group_id));
  MESHTRAIN_ASSIGN_OR_RETURN(
      std::unique_ptr<ShmTransport> transport,
      ShmTransport::Create(ShmOptions(c, group_id, entries,
                                      RingNeighbours(c.rank, static_cast<int>(c.group.size())))));
  return std::unique_ptr<Transport>(std::move(transport));
}

// The host this rank's listener binds to (docs/mesh.md).
absl::StatusOr<std::string> ListenHost(const DataPathContext& c) {
  if (!c.bind_host.empty()) return c.bind_host;
  MESHTRAIN_ASSIGN_OR_RETURN(HostPort own, ParseHostPort(c.cluster->address(c.group[c.rank])));
  return DefaultBindHost(own.host);
}

absl::StatusOr<std::unique_ptr<Transport>> CreateTcp(const DataPathContext& c) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::string host, ListenHost(c));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<TcpListener> listener, TcpListener::Create(host, 0));
  uint64_t group_id = 0;
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<PeerEntry> entries,
                             Exchange(c, listener->port(), &group_id));
  MESHTRAIN_ASSIGN_OR_RETURN(
      TcpTransportOptions options,
      TcpOptions(c, entries, group_id, AllPeers(c.rank, static_cast<int>(c.group.size()))));
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<TcpTransport> transport,
                             TcpTransport::Create(std::move(listener), options));
  return std::unique_ptr<Transport>(std::move(transport));
}

// The parts of a mixed transport: the part ranks route to, and the routes.
struct MixedParts {
  std::vector<std::unique_ptr<Transport>> parts;
  std::vector<int> route;
};

void AddPart(std::unique_ptr<Transport> part, const std::vector<int>& peers, MixedParts& mixed) {
  for (int peer : peers) mixed.route[peer] = static_cast<int>(mixed.parts.size());
  mixed.parts.push_back(std::move(part));
}

// The shm part of "shm+tcp" (named N/shm): its exchange on every rank, the
// transport only where this rank has `peers` or where no part would exist.
absl::Status AddShmPart(const DataPathContext& c, const std::vector<int>& peers, bool only_part,
                        MixedParts& mixed) {
  uint64_t group_id = 0;
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<PeerEntry> entries, Exchange(c, 0, &group_id));
  if (peers.empty() && !only_part) return absl::OkStatus();
  ShmTransportOptions options = ShmOptions(c, group_id, entries, peers);
  if (Oversubscribed(c, /*threads_per_rank=*/2)) options.spin = absl::ZeroDuration();
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<ShmTransport> shm, ShmTransport::Create(options));
  AddPart(std::move(shm), peers, mixed);
  return absl::OkStatus();
}

// The tcp part of "shm+tcp" (named N/tcp): its exchange on every rank (port 0
// where this rank listens for nobody), the transport where it has `peers`.
absl::Status AddTcpPart(const DataPathContext& c, const std::vector<int>& peers,
                        MixedParts& mixed) {
  std::unique_ptr<TcpListener> listener;
  if (!peers.empty()) {
    MESHTRAIN_ASSIGN_OR_RETURN(std::string host, ListenHost(c));
    MESHTRAIN_ASSIGN_OR_RETURN(listener, TcpListener::Create(host, 0));
  }
  uint64_t group_id = 0;
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<PeerEntry> entries,
                             Exchange(c, listener != nullptr ? listener->port() : 0, &group_id));
  if (peers.empty()) return absl::OkStatus();
  MESHTRAIN_ASSIGN_OR_RETURN(TcpTransportOptions options, TcpOptions(c, entries, group_id, peers));
  if (Oversubscribed(c, /*threads_per_rank=*/2)) options.spin = absl::ZeroDuration();
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<TcpTransport> tcp,
                             TcpTransport::Create(std::move(listener), options));
  AddPart(std::move(tcp), peers, mixed);
  return absl::OkStatus();
}

// Steps 1-4 of the protocol twice, under N/shm then N/tcp, on every rank (each
// exchange reads every rank's entry), each part connecting only the ring
// neighbours it serves.
absl::StatusOr<std::unique_ptr<Transport>> CreateMixed(const DataPathContext& c) {
  const RingNeighboursByHost split = SplitRingNeighboursByHost(c.rank, c.host_identities);
  MixedParts mixed;
  mixed.route.assign(c.group.size(), kNoRoute);
  DataPathContext part_context = c;
  part_context.name = c.name + "/shm";
  MESHTRAIN_RETURN_IF_ERROR(
      AddShmPart(part_context, split.same_host, split.other_hosts.empty(), mixed));
  part_context.name = c.name + "/tcp";
  MESHTRAIN_RETURN_IF_ERROR(AddTcpPart(part_context, split.other_hosts, mixed));
  RoutedTransportOptions options;
  options.kind = std::string(kMixedDataPath);
  options.parts = std::move(mixed.parts);
  options.route = std::move(mixed.route);
  options.peer_names = PeerNames(c);
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<RoutedTransport> transport,
                             RoutedTransport::Create(std::move(options)));
  return std::unique_ptr<Transport>(std::move(transport));
}

}  // namespace

absl::Status RegisterFastDataPaths(DataPathRegistry& registry) {
  MESHTRAIN_RETURN_IF_ERROR(registry.Register(kSharedMemoryDataPath, &CreateShm));
  MESHTRAIN_RETURN_IF_ERROR(registry.Register(kTcpDataPath, &CreateTcp));
  return registry.Register(kMixedDataPath, &CreateMixed);
}

}  // namespace meshtrain
