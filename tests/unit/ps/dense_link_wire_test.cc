// The dense link's header checks: a reply that announces an error text longer
// than kMaxErrorBytes (or a negative one) is refused before anything is
// allocated for it.
#include "runtime/ps/dense_link_wire.h"

#include "gtest/gtest.h"

namespace meshtrain::dense_link {
namespace {

TEST(DenseLinkWireTest, ReplyErrorTextsAreBounded) {
  ReplyHeader header;
  header.partitions = 3;
  EXPECT_TRUE(CheckReplyHeader(header, 3, "ps:0").ok());
  header.error_bytes = kMaxErrorBytes;
  EXPECT_TRUE(CheckReplyHeader(header, 3, "ps:0").ok());
  header.error_bytes = kMaxErrorBytes + 1;
  EXPECT_EQ(CheckReplyHeader(header, 3, "ps:0").code(), absl::StatusCode::kInternal);
  header.error_bytes = -1;
  EXPECT_EQ(CheckReplyHeader(header, 3, "ps:0").code(), absl::StatusCode::kInternal);
  header.error_bytes = 0;
  EXPECT_EQ(CheckReplyHeader(header, 4, "ps:0").code(), absl::StatusCode::kInternal);
}

TEST(DenseLinkWireTest, RequestsMustMatchTheLink) {
  RequestHeader header;
  header.kind = kPushPull;
  header.worker = 1;
  header.partitions = 2;
  EXPECT_TRUE(CheckRequestHeader(header, 1, 2, "link").ok());
  header.kind = 9;
  EXPECT_FALSE(CheckRequestHeader(header, 1, 2, "link").ok());
  header.kind = kPull;
  EXPECT_FALSE(CheckRequestHeader(header, 0, 2, "link").ok());
}

}  // namespace
}  // namespace meshtrain::dense_link
