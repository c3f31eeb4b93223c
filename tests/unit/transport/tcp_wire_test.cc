// The checks of what a TCP peer sends, without sockets: frame headers, hellos
// (whose rejection goes back to the dialler and must not quote this rank's job
// id or incarnation) and hello replies with unterminated text.
#include "runtime/transport/tcp_wire.h"

#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TcpTransportOptions Accepting() {
  TcpTransportOptions o;
  o.rank = 1;
  o.world_size = 3;
  o.streams = 2;
  o.job_id = "job-secret";
  o.incarnation = 987654321;
  return o;
}

TcpHello ValidHello() {
  TcpHello h{kTcpHelloMagic, kTcpWireVersion, 2, 3, 1, 2, 0, 987654321, {}};
  std::strcpy(h.job_id, "job-secret");
  return h;
}

bool AlwaysAwaited(int, uint32_t) { return true; }

TEST(TcpWireTest, FrameHeaderMustBeTheExpectedOne) {
  EXPECT_TRUE(CheckTcpFrameHeader({kTcpFrameMagic, 4, 64}, 4, 64, "worker:1").ok());
  absl::Status seq = CheckTcpFrameHeader({kTcpFrameMagic, 5, 64}, 4, 64, "worker:1");
  EXPECT_EQ(seq.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(seq.message(),
              HasSubstr("tcp recv from worker:1: corrupt frame (seq 5, expected 4)"));
  absl::Status size = CheckTcpFrameHeader({kTcpFrameMagic, 4, ~0ull}, 4, 64, "worker:1");
  EXPECT_THAT(size.message(), HasSubstr("message has 18446744073709551615 bytes, expected 64"));
  EXPECT_FALSE(CheckTcpFrameHeader({0, 4, 64}, 4, 64, "worker:1").ok());
}

TEST(TcpWireTest, AcceptsTheAwaitedStreamOnly) {
  EXPECT_EQ(TcpHelloRejection(ValidHello(), Accepting(), AlwaysAwaited), "");
  EXPECT_THAT(TcpHelloRejection(ValidHello(), Accepting(), [](int, uint32_t) { return false; }),
              HasSubstr("unexpected rank 2 stream 1 of 2"));
  TcpHello stream_out_of_range = ValidHello();
  stream_out_of_range.stream = 2;
  EXPECT_THAT(TcpHelloRejection(stream_out_of_range, Accepting(), AlwaysAwaited),
              HasSubstr("unexpected rank"));
  TcpHello lower = ValidHello();
  lower.rank = 0;
  EXPECT_THAT(TcpHelloRejection(lower, Accepting(), AlwaysAwaited), HasSubstr("unexpected rank"));
}

TEST(TcpWireTest, RejectionNeverQuotesThisRanksSecrets) {
  TcpHello stale = ValidHello();
  stale.incarnation = 1;
  const std::string reason = TcpHelloRejection(stale, Accepting(), AlwaysAwaited);
  EXPECT_EQ(reason, "stale incarnation (a stale process)");
  TcpHello other_job = ValidHello();
  std::memset(other_job.job_id, 'J', sizeof(other_job.job_id));  // unterminated
  const std::string job = TcpHelloRejection(other_job, Accepting(), AlwaysAwaited);
  EXPECT_THAT(job, HasSubstr("job '" + std::string(100, 'J') + "' of 3 ranks"));
  EXPECT_THAT(job, Not(HasSubstr("job-secret")));
}

TEST(TcpWireTest, HelloReplyReasonIsBoundedAndQuoted) {
  TcpHelloReply reply{kTcpHelloMagic, kTcpWireVersion, 0, 0, 0, {}};
  std::memset(reply.reason, 'r', sizeof(reply.reason));  // unterminated
  absl::Status rejected = CheckTcpHelloReply(reply, 0, 1, "chief:0");
  EXPECT_EQ(rejected.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(rejected.message(), "chief:0 rejected rank 1: '" + std::string(191, 'r') + "'");
  std::strcpy(reply.reason, "no\nsuch\x1b[31mjob");
  EXPECT_EQ(CheckTcpHelloReply(reply, 0, 1, "chief:0").message(),
            "chief:0 rejected rank 1: 'no\\nsuch\\033[31mjob'");
  reply.rank = 4;
  EXPECT_THAT(CheckTcpHelloReply(reply, 0, 1, "chief:0").message(),
              HasSubstr("tcp hello reply from chief:0: not the expected peer (rank 4)"));
  reply.rank = 0;
  reply.accepted = 1;
  EXPECT_TRUE(CheckTcpHelloReply(reply, 0, 1, "chief:0").ok());
}

}  // namespace
}  // namespace meshtrain
