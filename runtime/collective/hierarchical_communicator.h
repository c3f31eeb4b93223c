// HierarchicalCommunicator: AllReduceSum for workers spread over several
// hosts, a host holding one or more of them (Horovod's hierarchical
// allreduce; NCCL's intra-node then inter-node stages). A flat ring over N
// workers on H hosts sends 2 (N - 1) / N of the data through each host's
// link per worker that sits next to another host in the ring; the hierarchy
// sends it once per host:
//   1. the ranks of each host sum their data over `local` (shared memory);
//   2. each host's leader (its first rank) sums the host totals with the
//      other hosts' leaders over `leaders` (TCP between hosts): the only
//      bytes that cross a host's link;
//   3. each leader broadcasts the total to its host's ranks over `local`.
// Every rank ends with the same bytes: step 2's result is bitwise identical
// on every leader (a ring's property) and step 3 copies it. The sum is the
// flat ring's up to float32 rounding (another order of the same additions;
// equal bit for bit where every partial sum is exact).
// Broadcast, AllGather and Barrier, which training calls rarely and with
// little data, run over `flat`, the ring of all ranks.
//
// Thread-safety: one thread at a time, as every Communicator. Owns its three
// communicators, not their transports.
#ifndef MESHTRAIN_RUNTIME_COLLECTIVE_HIERARCHICAL_COMMUNICATOR_H_
#define MESHTRAIN_RUNTIME_COLLECTIVE_HIERARCHICAL_COMMUNICATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/collective/communicator.h"

namespace meshtrain {

// How the ranks of a group sit on hosts, from each rank's host identity
// (equal strings: one host). Pure.
struct HostLayout {
  std::vector<int> local_ranks;  // the ranks on this rank's host, ascending
  std::vector<int> leaders;      // each host's first rank, ascending
  bool leader = false;           // this rank is its host's first
  int num_hosts() const { return static_cast<int>(leaders.size()); }
};
HostLayout LayOutHosts(const std::vector<std::string>& host_identities, int rank);

// Whether the hierarchy moves fewer bytes across hosts than the flat ring:
// the group spans several hosts and one of them holds two ranks or more.
bool HierarchyPays(const std::vector<std::string>& host_identities);

class HierarchicalCommunicator final : public Communicator {
 public:
  // `flat` spans every rank; `local` this rank's host (ranks in
  // HostLayout::local_ranks order); `leaders` the leaders (null unless this
  // rank is one).
  static absl::StatusOr<std::unique_ptr<HierarchicalCommunicator>> Create(
      std::unique_ptr<Communicator> flat, std::unique_ptr<Communicator> local,
      std::unique_ptr<Communicator> leaders);

  int rank() const override { return flat_->rank(); }
  int world_size() const override { return flat_->world_size(); }

  absl::Status AllReduceSum(absl::Span<float> data, const CollectiveContext& ctx) override;
  absl::Status Broadcast(absl::Span<std::byte> data, int root,
                         const CollectiveContext& ctx) override {
    return flat_->Broadcast(data, root, ctx);
  }
  absl::Status AllGather(absl::Span<const std::byte> mine, std::vector<std::byte>* all,
                         std::vector<size_t>* sizes, const CollectiveContext& ctx) override {
    return flat_->AllGather(mine, all, sizes, ctx);
  }
  absl::Status Barrier(const CollectiveContext& ctx) override { return flat_->Barrier(ctx); }
  // The three communicators' counters together.
  TransportStats stats() const override;

 private:
  HierarchicalCommunicator(std::unique_ptr<Communicator> flat, std::unique_ptr<Communicator> local,
                           std::unique_ptr<Communicator> leaders)
      : flat_(std::move(flat)), local_(std::move(local)), leaders_(std::move(leaders)) {}

  std::unique_ptr<Communicator> flat_;
  std::unique_ptr<Communicator> local_;
  std::unique_ptr<Communicator> leaders_;
};

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_COLLECTIVE_HIERARCHICAL_COMMUNICATOR_H_
