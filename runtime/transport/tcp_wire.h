// The TCP transport's wire format (tcp_transport.h): the 16-byte header each
// message starts with, and the hello a dialling rank sends on each new stream
// with the reply it gets. Plain structs in host byte order, the same build at
// both ends. The checks of what a peer sent are pure functions here, so tests
// and the fuzz target (tests/fuzz/tcp_frame_fuzz.cc) run them without sockets.
// Thread-safe (pure).
#ifndef MESHTRAIN_RUNTIME_TRANSPORT_TCP_WIRE_H_
#define MESHTRAIN_RUNTIME_TRANSPORT_TCP_WIRE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "runtime/transport/tcp_transport.h"

namespace meshtrain {

inline constexpr uint32_t kTcpFrameMagic = 0x66706374;  // "tcpf"
inline constexpr uint32_t kTcpHelloMagic = 0x6c6c6568;  // "hell"
inline constexpr uint32_t kTcpWireVersion = 2;          // 2: TcpHello::flags
inline constexpr uint32_t kTcpHelloEncrypted = 1;       // frames travel inside TLS after the hello

struct TcpFrameHeader {
  uint32_t magic;
  uint32_t seq;
  uint64_t bytes;  // the whole message's length (all parts)
};
static_assert(sizeof(TcpFrameHeader) == 16);

struct TcpHello {
  uint32_t magic;
  uint32_t version;
  int32_t rank;
  int32_t world_size;
  uint32_t stream;
  uint32_t streams;
  uint32_t flags;  // kTcpHelloEncrypted
  uint64_t incarnation;
  char job_id[128];
};

// The hello flags of a transport with `options` (both ends must agree).
uint32_t TcpHelloFlags(const TcpTransportOptions& options);

struct TcpHelloReply {
  uint32_t magic;
  uint32_t version;
  uint32_t accepted;
  int32_t rank;
  uint64_t incarnation;
  char reason[192];
};

// OK when `header` is the frame a stream expects next: sequence number
// `expected_seq`, a message of `expected_bytes`. Otherwise Internal naming
// `peer` (the stream's framing is lost, or the ranks issued different
// collectives).
absl::Status CheckTcpFrameHeader(const TcpFrameHeader& header, uint32_t expected_seq,
                                 uint64_t expected_bytes, absl::string_view peer);

// Whether stream `stream` of higher rank `rank` (both in range) is still
// awaited by the accepting rank.
using TcpStreamAwaitedFn = std::function<bool(int rank, uint32_t stream)>;

// Why the accepting rank `options.rank` refuses `hello` (whose job_id need not
// be terminated); "" when it opens a stream this rank waits for. The reason
// goes back to whoever dialled, so it never quotes this rank's job id or
// incarnation.
std::string TcpHelloRejection(const TcpHello& hello, const TcpTransportOptions& options,
                              const TcpStreamAwaitedFn& awaited);

// OK when `reply` (whose reason need not be terminated) is an acceptance from
// `peer_rank`; Unavailable naming `peer_name` otherwise, with the peer's reason
// (quoted and escaped) for a rejection of `own_rank`.
absl::Status CheckTcpHelloReply(const TcpHelloReply& reply, int peer_rank, int own_rank,
                                absl::string_view peer_name);

}  // namespace meshtrain

#endif  // MESHTRAIN_RUNTIME_TRANSPORT_TCP_WIRE_H_
