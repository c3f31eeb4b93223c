#include "runtime/collective/packing.h"

#include <cstring>
#include "absl/strings/str_cat.h"
#include "runtime/base/status_macros.h"

namespace meshtrain {

std::vector<Pack> PlanPacks(absl::Span<const size_t> tensor_bytes, size_t bytes_per_pack) {
  std::vector<Pack> packs;
  for (size_t i = 0; i < tensor_bytes.size(); ++i) {
    if (packs.empty() || (bytes_per_pack != 0 && packs.back().bytes > bytes_per_pack)) {
      packs.push_back(Pack{i, 0, 0});
    }
    packs.back().num_tensors += 1;
    packs.back().bytes += tensor_bytes[i];
  }
  return packs;
}

absl::Status PackedAllReducer::AllReduce(Communicator& comm,
                                         absl::Span<const absl::Span<float>> tensors,
                                         const CollectiveContext& ctx) {
  bool same_plan = planned_bytes_.size() == tensors.size();
  for (size_t i = 0; same_plan && i < tensors.size(); ++i) {
    same_plan = planned_bytes_[i] == tensors[i].size() * sizeof(float);
  }
  if (!same_plan) {
    planned_bytes_.resize(tensors.size());
    for (size_t i = 0; i < tensors.size(); ++i) planned_bytes_[i] = tensors[i].size() * sizeof(float);
    packs_ = PlanPacks(planned_bytes_, bytes_per_pack_);
    pack_names_.clear();
  }
  if (pack_names_.size() != packs_.size() || names_for_ != ctx.name) {
    names_for_ = std::string(ctx.name);
    pack_names_.clear();
    for (size_t p = 0; p < packs_.size(); ++p) {
      pack_names_.push_back(absl::StrCat(ctx.name, " pack ", p + 1, "/", packs_.size()));
    }
  }
  copied_bytes_ = 0;
  for (size_t p = 0; p < packs_.size(); ++p) {
    const Pack& pack = packs_[p];
    absl::Span<const absl::Span<float>> members = tensors.subspan(pack.first_tensor, pack.num_tensors);
    const size_t length = pack.bytes / sizeof(float);
    bool adjacent = true;
    for (size_t i = 1; adjacent && i < members.size(); ++i) {
      adjacent = members[i].data() == members[i - 1].data() + members[i - 1].size();
    }
    CollectiveContext pack_ctx{ctx.step, pack_names_[p], ctx.deadline};
    if (adjacent) {
      float* start = members.empty() ? nullptr : members[0].data();
      MESHTRAIN_RETURN_IF_ERROR(comm.AllReduceSum(absl::Span<float>(start, length), pack_ctx));
      continue;
    }
    if (buffer_.size() < length) buffer_.resize(length);
    size_t at = 0;
    for (const absl::Span<float>& t : members) {
      if (!t.empty()) std::memcpy(buffer_.data() + at, t.data(), t.size() * sizeof(float));
      at += t.size();
    }
    MESHTRAIN_RETURN_IF_ERROR(comm.AllReduceSum(absl::Span<float>(buffer_.data(), length), pack_ctx));
    at = 0;
    for (const absl::Span<float>& t : members) {
      if (!t.empty()) std::memcpy(t.data(), buffer_.data() + at, t.size() * sizeof(float));
      at += t.size();
    }
    copied_bytes_ += 2 * pack.bytes;
  }
  return absl::OkStatus();
}

}  // namespace meshtrain
