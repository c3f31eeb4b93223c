#include "runtime/rpc/fast_data_paths.h"

#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "runtime/base/status_macros.h"
#include "runtime/cluster/address.h"
#include "runtime/rpc/coordination_client.h"
#include "runtime/transport/shm_transport.h"
#include "runtime/transport/tcp_listener.h"
#include "runtime/transport/tcp_transport.h"

namespace meshtrain {
namespace {

struct PeerEntry {
  uint64_t incarnation = 0;
  int port = 0;
};

std::string KeyFor(const DataPathContext& c, int rank) {
  return absl::StrCat("datapath/", c.name, "/", rank);
}

// Steps 1-3 of the protocol: publish ours, read everyone's, derive the group id.
absl::StatusOr<std::vector<PeerEntry>> Exchange(const DataPathContext& c, int my_port,
                                                uint64_t* group_id) {
  const int n = static_cast<int>(c.group.size());
  MESHTRAIN_RETURN_IF_ERROR(
      c.coordination->KvSet(KeyFor(c, c.rank), absl::StrCat(c.incarnation, ":", my_port)));
  std::vector<PeerEntry> entries(n);
  uint64_t h = 0xcbf29ce484222325ull;
  for (char ch : c.name) h = (h ^ static_cast<uint8_t>(ch)) * 0x100000001b3ull;
  for (int r = 0; r < n; ++r) {
    std::string value;
    if (r == c.rank) {
      value = absl::StrCat(c.incarnation, ":", my_port);
    } else {
      MESHTRAIN_ASSIGN_OR_RETURN(value, c.coordination->KvGet(KeyFor(c, r), c.deadline));
    }
    std::vector<absl::string_view> parts = absl::StrSplit(value, ':');
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &entries[r].incarnation) ||
        !absl::SimpleAtoi(parts[1], &entries[r].port)) {
      return absl::InternalError(absl::StrCat("data path ", c.name, ": malformed entry '", value,
                                              "' from ", c.group[r].ToString()));
    }
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

// More ranks of this group on this host than cores: spinning would hold a core
// a peer needs.
bool Oversubscribed(const DataPathContext& c) {
  int here = 0;
  for (const std::string& id : c.host_identities) here += id == c.host_identities[c.rank];
  return here > static_cast<int>(std::thread::hardware_concurrency());
}

absl::StatusOr<std::unique_ptr<Transport>> CreateShm(const DataPathContext& c) {
  uint64_t group_id = 0;
  MESHTRAIN_RETURN_IF_ERROR(Exchange(c, 0, &group_id).status());
  ShmTransportOptions options;
  options.rank = c.rank;
  options.world_size = static_cast<int>(c.group.size());
  std::string name;
  for (char ch : c.name) name += absl::ascii_isalnum(ch) || ch == '_' || ch == '-' ? ch : '_';
  options.job_prefix = absl::StrFormat("%s-%016x", name.substr(0, 100), group_id);
  options.peer_names = PeerNames(c);
  options.peers = RingNeighbours(c.rank, options.world_size);
  if (Oversubscribed(c)) options.spin = absl::ZeroDuration();
  options.connect_deadline = c.deadline;
  options.abort = c.abort;
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<ShmTransport> transport,
                             ShmTransport::Create(options));
  return std::unique_ptr<Transport>(std::move(transport));
}

absl::StatusOr<std::unique_ptr<Transport>> CreateTcp(const DataPathContext& c) {
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<TcpListener> listener,
                             TcpListener::Create("0.0.0.0", 0));
  uint64_t group_id = 0;
  MESHTRAIN_ASSIGN_OR_RETURN(std::vector<PeerEntry> entries,
                             Exchange(c, listener->port(), &group_id));
  TcpTransportOptions options;
  options.rank = c.rank;
  options.world_size = static_cast<int>(c.group.size());
  options.job_id = c.name;
  options.incarnation = group_id;
  options.peer_names = PeerNames(c);
  for (int r = 0; r < options.world_size; ++r) {
    if (r == c.rank) continue;
    // Peers listen on the host of their task address.
    MESHTRAIN_ASSIGN_OR_RETURN(HostPort address, ParseHostPort(c.cluster->address(c.group[r])));
    options.peers.push_back(TcpPeerAddress{r, address.host, entries[r].port});
  }
  if (Oversubscribed(c)) options.spin = absl::ZeroDuration();
  options.connect_deadline = c.deadline;
  options.abort = c.abort;
  MESHTRAIN_ASSIGN_OR_RETURN(std::unique_ptr<TcpTransport> transport,
                             TcpTransport::Create(std::move(listener), options));
  return std::unique_ptr<Transport>(std::move(transport));
}

}  // namespace

absl::Status RegisterFastDataPaths(DataPathRegistry& registry) {
  MESHTRAIN_RETURN_IF_ERROR(registry.Register(kSharedMemoryDataPath, &CreateShm));
  return registry.Register(kTcpDataPath, &CreateTcp);
}

}  // namespace meshtrain
