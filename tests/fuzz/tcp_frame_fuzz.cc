// Fuzz target: the fixed-size headers peers send on the fast data paths: the
// TCP transport's frame header, hello and hello reply (runtime/transport/
// tcp_wire.h) and the dense link's request and reply headers (runtime/ps/
// dense_link_wire.h). The first byte picks the header; the rest are its bytes
// (zero-filled when short), then for a frame header the sequence number and
// length the receiver expects, for a hello which streams are awaited.
// Expects one-line errors of the documented code, and that a hello's
// rejection, which goes back to whoever dialled, never quotes this rank's
// job id or incarnation.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "runtime/base/check.h"
#include "runtime/ps/dense_link_wire.h"
#include "runtime/transport/tcp_wire.h"
#include "tests/fuzz/fuzz_status.h"

namespace meshtrain {
namespace {

constexpr char kJobId[] = "job-7f3a9c";
constexpr uint64_t kIncarnation = 0x5eed5eed5eed5eedULL;

// Reads sizeof(T) bytes from the input (zeros past its end) into `out`.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T>
  T Next() {
    unsigned char bytes[sizeof(T)] = {};
    const size_t n = std::min(sizeof(T), size_ - at_);
    std::memcpy(bytes, data_ + at_, n);
    at_ += n;
    T out;
    std::memcpy(static_cast<void*>(&out), bytes, sizeof(T));
    return out;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

void FrameHeader(Reader& in) {
  const TcpFrameHeader header = in.Next<TcpFrameHeader>();
  const uint32_t expected_seq = in.Next<uint32_t>();
  const uint64_t expected_bytes = in.Next<uint64_t>();
  absl::Status status = CheckTcpFrameHeader(header, expected_seq, expected_bytes, "worker:1");
  if (!status.ok()) {
    fuzz::ExpectRejection(status, absl::StatusCode::kInternal);
  } else {
    MESHTRAIN_CHECK(header.magic == kTcpFrameMagic && header.seq == expected_seq &&
                    header.bytes == expected_bytes);
  }
}

void Hello(Reader& in) {
  const TcpHello hello = in.Next<TcpHello>();
  const uint16_t awaited_mask = in.Next<uint16_t>();
  TcpTransportOptions options;
  options.rank = 1;
  options.world_size = 4;
  options.streams = 4;
  options.job_id = kJobId;
  options.incarnation = kIncarnation;
  const std::string reason = TcpHelloRejection(hello, options, [&](int rank, uint32_t stream) {
    MESHTRAIN_CHECK(rank > options.rank && rank < options.world_size) << rank;
    MESHTRAIN_CHECK(stream < static_cast<uint32_t>(options.streams)) << stream;
    return (awaited_mask >> ((rank - 2) * 4 + stream)) & 1;
  });
  if (reason.empty()) {
    MESHTRAIN_CHECK(hello.incarnation == kIncarnation);
    return;
  }
  // The dialler learns nothing it did not send.
  const absl::string_view sent(hello.job_id, strnlen(hello.job_id, sizeof(hello.job_id)));
  const bool sent_job_id = sent.find(kJobId) != absl::string_view::npos;
  MESHTRAIN_CHECK(sent_job_id || reason.find(kJobId) == std::string::npos) << reason;
  const std::string incarnation = absl::StrCat(kIncarnation);
  MESHTRAIN_CHECK(sent.find(incarnation) != absl::string_view::npos ||
                  reason.find(incarnation) == std::string::npos)
      << reason;
  MESHTRAIN_CHECK(reason.find('\n') == std::string::npos) << reason;
}

void HelloReply(Reader& in) {
  const TcpHelloReply reply = in.Next<TcpHelloReply>();
  absl::Status status = CheckTcpHelloReply(reply, /*peer_rank=*/0, /*own_rank=*/1, "chief:0");
  if (!status.ok()) {
    fuzz::ExpectRejection(status, absl::StatusCode::kUnavailable);
  } else {
    MESHTRAIN_CHECK(reply.accepted && reply.rank == 0);
  }
}

void DenseRequest(Reader& in) {
  const dense_link::RequestHeader header = in.Next<dense_link::RequestHeader>();
  absl::Status status = dense_link::CheckRequestHeader(header, /*worker=*/1, /*partitions=*/3,
                                                       "dense link ps:0 <- worker:1");
  if (!status.ok()) {
    fuzz::ExpectRejection(status, absl::StatusCode::kInternal);
  } else {
    MESHTRAIN_CHECK(header.kind >= dense_link::kPull && header.kind <= dense_link::kLeave);
  }
}

void DenseReply(Reader& in) {
  const dense_link::ReplyHeader header = in.Next<dense_link::ReplyHeader>();
  absl::Status status = dense_link::CheckReplyHeader(header, /*partitions=*/3, "ps:0");
  if (!status.ok()) {
    fuzz::ExpectRejection(status, absl::StatusCode::kInternal);
  } else {
    MESHTRAIN_CHECK(header.error_bytes >= 0);
  }
}

}  // namespace
}  // namespace meshtrain

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace meshtrain;
  if (size == 0) return 0;
  Reader in(data + 1, size - 1);
  switch (data[0] % 5) {
    case 0:
      FrameHeader(in);
      break;
    case 1:
      Hello(in);
      break;
    case 2:
      HelloReply(in);
      break;
    case 3:
      DenseRequest(in);
      break;
    case 4:
      DenseReply(in);
      break;
  }
  return 0;
}
