// The dense link's wire format (dense_link.h): the 64-byte request header a
// worker sends and the 64-byte reply header the ps answers with, in host byte
// order, the same build at both ends. The checks of a received header are pure
// functions here, so tests and the fuzz target (tests/fuzz/tcp_frame_fuzz.cc)
// run them without a transport. Thread-safe (pure).
#ifndef MESHTRAIN_RUNTIME_PS_DENSE_LINK_WIRE_H_
#define MESHTRAIN_RUNTIME_PS_DENSE_LINK_WIRE_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace meshtrain::dense_link {

inline constexpr uint32_t kRequestMagic = 0x4b4e4c44;  // "DLNK"
inline constexpr uint32_t kReplyMagic = 0x594c5044;    // "DPLY"

enum Kind : uint32_t { kPull = 1, kPushPull = 2, kLeave = 3 };

// The longest error text a reply carries (the ps cuts its message there), so a
// worker never allocates more for one than this.
inline constexpr int32_t kMaxErrorBytes = 64 << 10;

struct RequestHeader {
  uint32_t magic = kRequestMagic;
  uint32_t kind = 0;
  int32_t worker = 0;
  int32_t partitions = 0;
  int64_t min_version = 0;
  int64_t timeout_ms = 0;
  uint8_t reserved[32] = {};
};
static_assert(sizeof(RequestHeader) == 64);

struct ReplyHeader {
  uint32_t magic = kReplyMagic;
  int32_t code = 0;
  int32_t error_bytes = 0;
  int32_t partitions = 0;
  int64_t pushes = 0;
  int64_t applied = 0;
  int64_t dropped_stale = 0;
  int64_t dropped_warmup = 0;
  int64_t scaled = 0;
  int64_t staleness_sum = 0;
};
static_assert(sizeof(ReplyHeader) == 64);

// OK when the ps serving `worker` over a link of `partitions` partitions can
// act on `header`; Internal naming `link` otherwise (the two sides disagree
// on the plan).
absl::Status CheckRequestHeader(const RequestHeader& header, int worker, int partitions,
                                absl::string_view link);

// OK when `header` is a reply a worker expecting `partitions` partitions can
// read on (an error text of 0 to kMaxErrorBytes); Internal naming `peer`
// otherwise.
absl::Status CheckReplyHeader(const ReplyHeader& header, int partitions, absl::string_view peer);

}  // namespace meshtrain::dense_link

#endif  // MESHTRAIN_RUNTIME_PS_DENSE_LINK_WIRE_H_
