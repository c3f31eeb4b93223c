// TransportStats arithmetic. What each transport counts is part of the
// conformance suite (tests/unit/rpc/transport_conformance_test.cc).
#include "gtest/gtest.h"
#include "runtime/transport/transport.h"

namespace meshtrain {
namespace {

TEST(TransportStatsTest, DifferenceOfSnapshots) {
  TransportStats a{10, 20, absl::Milliseconds(5)}, b{3, 4, absl::Milliseconds(2)};
  TransportStats d = a - b;
  EXPECT_EQ(d.bytes_sent, 7);
  EXPECT_EQ(d.bytes_received, 16);
  EXPECT_EQ(d.blocked, absl::Milliseconds(3));
}

}  // namespace
}  // namespace meshtrain
