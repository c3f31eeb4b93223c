#include "runtime/collective/hierarchical_communicator.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {

HostLayout LayOutHosts(const std::vector<std::string>& host_identities, int rank) {
  HostLayout layout;
  std::map<std::string, int> first_rank;
  for (int r = 0; r < static_cast<int>(host_identities.size()); ++r) {
    if (first_rank.emplace(host_identities[r], r).second) layout.leaders.push_back(r);
    if (host_identities[r] == host_identities[rank]) layout.local_ranks.push_back(r);
  }
  layout.leader = !layout.local_ranks.empty() && layout.local_ranks.front() == rank;
  return layout;
}

bool HierarchyPays(const std::vector<std::string>& host_identities) {
  std::map<std::string, int> ranks;
  for (const std::string& host : host_identities) ++ranks[host];
  if (ranks.size() < 2) return false;
  for (const auto& [host, n] : ranks) {
    if (n >= 2) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<HierarchicalCommunicator>> HierarchicalCommunicator::Create(
    std::unique_ptr<Communicator> flat, std::unique_ptr<Communicator> local,
    std::unique_ptr<Communicator> leaders) {
  if (flat == nullptr || local == nullptr) {
    return absl::InvalidArgumentError("hierarchical communicator: flat and local are required");
  }
  const bool leader = local->rank() == 0;
  if (leader != (leaders != nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hierarchical communicator on rank ", flat->rank(), ": local rank ", local->rank(),
        leader ? " leads its host but has no leaders' communicator"
               : " is not its host's leader but was given the leaders' communicator"));
  }
  return std::unique_ptr<HierarchicalCommunicator>(
      new HierarchicalCommunicator(std::move(flat), std::move(local), std::move(leaders)));
}

absl::Status HierarchicalCommunicator::AllReduceSum(absl::Span<float> data,
                                                    const CollectiveContext& ctx) {
  // 1. This host's total, on each of its ranks.
  MESHTRAIN_RETURN_IF_ERROR(local_->AllReduceSum(data, ctx));
  // 2. The hosts' totals summed by their leaders.
  if (leaders_ != nullptr) MESHTRAIN_RETURN_IF_ERROR(leaders_->AllReduceSum(data, ctx));
  // 3. The leader's result, bit for bit, on every rank of the host.
  return local_->Broadcast(
      absl::MakeSpan(reinterpret_cast<std::byte*>(data.data()), data.size() * sizeof(float)),
      /*root=*/0, ctx);
}

TransportStats HierarchicalCommunicator::stats() const {
  TransportStats total = flat_->stats();
  for (const Communicator* c : {local_.get(), leaders_.get()}) {
    if (c == nullptr) continue;
    const TransportStats s = c->stats();
    total.bytes_sent += s.bytes_sent;
    total.bytes_received += s.bytes_received;
    total.blocked += s.blocked;
  }
  return total;
}

}  // namespace meshtrain
