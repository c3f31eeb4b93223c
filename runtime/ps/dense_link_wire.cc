#include "runtime/ps/dense_link_wire.h"

#include "absl/strings/str_cat.h"

namespace meshtrain::dense_link {

absl::Status CheckRequestHeader(const RequestHeader& header, int worker, int partitions,
                                absl::string_view link) {
  if (header.magic != kRequestMagic || header.worker != worker || header.partitions != partitions ||
      header.kind < kPull || header.kind > kLeave) {
    return absl::InternalError(absl::StrCat(link, ": malformed request header (kind ", header.kind,
                                            ", worker ", header.worker, ", ", header.partitions,
                                            " partitions; expected worker ", worker, " and ",
                                            partitions, "): the two sides disagree on the plan"));
  }
  return absl::OkStatus();
}

absl::Status CheckReplyHeader(const ReplyHeader& header, int partitions, absl::string_view peer) {
  if (header.magic != kReplyMagic || header.partitions != partitions || header.error_bytes < 0 ||
      header.error_bytes > kMaxErrorBytes) {
    return absl::InternalError(absl::StrCat("dense link to ", peer, ": malformed reply header"));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain::dense_link
