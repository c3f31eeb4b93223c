#include "reports/report_format.h"

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

TEST(ReportFormatTest, Numbers) {
  EXPECT_EQ(FormatThousands(121251.4), "121,251");
  EXPECT_EQ(FormatThousands(999), "999");
  EXPECT_EQ(FormatThousands(-1234567), "-1,234,567");
  EXPECT_EQ(FormatShort(121251), "121k");
  EXPECT_EQ(FormatShort(1500000), "1.5M");
  EXPECT_EQ(FormatShort(12), "12");
  EXPECT_EQ(FormatBytes(0), "0 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(1066440 * 2.0), "2.0 MiB");
  EXPECT_EQ(FormatBytes(254.0 * 1024 * 1024), "254 MiB");
  EXPECT_EQ(FormatSeconds(0.0123), "12 ms");
  EXPECT_EQ(FormatSeconds(3.14159), "3.1 s");
  EXPECT_EQ(FormatSeconds(125), "2m 05s");
  EXPECT_EQ(FormatPercent(0.1234), "12.3%");
}

}  // namespace
}  // namespace meshtrain
