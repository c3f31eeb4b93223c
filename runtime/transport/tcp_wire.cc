#include "runtime/transport/tcp_wire.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "runtime/base/quote.h"

namespace meshtrain {

absl::Status CheckTcpFrameHeader(const TcpFrameHeader& header, uint32_t expected_seq,
                                 uint64_t expected_bytes, absl::string_view peer) {
  if (header.magic != kTcpFrameMagic || header.seq != expected_seq) {
    return absl::InternalError(absl::StrCat("tcp recv from ", peer, ": corrupt frame (seq ",
                                            header.seq, ", expected ", expected_seq, ")"));
  }
  if (header.bytes != expected_bytes) {
    return absl::InternalError(absl::StrCat("tcp recv from ", peer, ": message has ", header.bytes,
                                            " bytes, expected ", expected_bytes,
                                            "; the ranks issued different collectives"));
  }
  return absl::OkStatus();
}

uint32_t TcpHelloFlags(const TcpTransportOptions& o) {
  return o.tls != nullptr && o.encrypt ? kTcpHelloEncrypted : 0;
}

std::string TcpHelloRejection(const TcpHello& hello, const TcpTransportOptions& o,
                              const TcpStreamAwaitedFn& awaited) {
  const absl::string_view job_id(hello.job_id, strnlen(hello.job_id, sizeof(hello.job_id) - 1));
  const int from = hello.rank;
  if (hello.magic != kTcpHelloMagic || hello.version != kTcpWireVersion) {
    return "not a meshtrain tcp transport (bad magic or version)";
  }
  if (job_id != o.job_id || hello.world_size != o.world_size) {
    return absl::StrCat("job '", absl::CHexEscape(job_id.substr(0, 100)), "' of ", hello.world_size,
                        " ranks is not this transport's");
  }
  if (hello.incarnation != o.incarnation) return "stale incarnation (a stale process)";
  if (hello.flags != TcpHelloFlags(o)) {
    return "data-path encryption differs between the ranks (set it alike on every task)";
  }
  if (from <= o.rank || from >= o.world_size || hello.streams != static_cast<uint32_t>(o.streams) ||
      hello.stream >= hello.streams || !awaited(from, hello.stream)) {
    return absl::StrCat("unexpected rank ", from, " stream ", hello.stream, " of ", hello.streams);
  }
  return "";
}

absl::Status CheckTcpHelloReply(const TcpHelloReply& reply, int peer_rank, int own_rank,
                                absl::string_view peer_name) {
  if (reply.magic != kTcpHelloMagic || reply.rank != peer_rank) {
    return absl::UnavailableError(absl::StrCat("tcp hello reply from ", peer_name,
                                               ": not the expected peer (rank ", reply.rank, ")"));
  }
  if (!reply.accepted) {
    // The peer's words, escaped: they must not split our log line.
    const absl::string_view reason(reply.reason, strnlen(reply.reason, sizeof(reply.reason) - 1));
    return absl::UnavailableError(absl::StrCat(peer_name, " rejected rank ", own_rank, ": ",
                                               QuoteForMessage(reason, sizeof(reply.reason))));
  }
  return absl::OkStatus();
}

}  // namespace meshtrain
