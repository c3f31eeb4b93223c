#include "runtime/base/crc32c.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

TEST(Crc32cTest, MatchesRfc3720Vectors) {
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), ascending(32);
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32c::Value(zeros.data(), zeros.size()), 0x8a9136aau);
  EXPECT_EQ(crc32c::Value(ones.data(), ones.size()), 0x62a8ab43u);
  EXPECT_EQ(crc32c::Value(ascending.data(), ascending.size()), 0x46dd794eu);
  const std::string digits = "123456789";
  EXPECT_EQ(crc32c::Value(digits.data(), digits.size()), 0xe3069283u);
}

TEST(Crc32cTest, ExtendEqualsWholeValue) {
  const std::string text = "hello, distributed world: an odd length string";
  for (size_t split = 0; split <= text.size(); ++split) {
    uint32_t crc = crc32c::Extend(0, text.data(), split);
    crc = crc32c::Extend(crc, text.data() + split, text.size() - split);
    EXPECT_EQ(crc, crc32c::Value(text.data(), text.size())) << "split at " << split;
  }
}

TEST(Crc32cTest, MaskRoundTripsAndDiffers) {
  for (uint32_t crc : {0u, 1u, 0xe3069283u, 0xffffffffu}) {
    EXPECT_EQ(crc32c::Unmask(crc32c::Mask(crc)), crc);
    EXPECT_NE(crc32c::Mask(crc), crc);
  }
}

}  // namespace
}  // namespace meshtrain
