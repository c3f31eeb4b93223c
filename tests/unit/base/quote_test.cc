// QuoteForMessage: escaped, bounded quoting of input for messages.
#include "runtime/base/quote.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

TEST(QuoteForMessageTest, QuotesShortPrintableTextAsItIs) {
  EXPECT_EQ(QuoteForMessage("localhost:2222"), "'localhost:2222'");
  EXPECT_EQ(QuoteForMessage(""), "''");
}

TEST(QuoteForMessageTest, EscapesControlCharactersQuotesAndHighBytes) {
  EXPECT_EQ(QuoteForMessage("a\nb\x01'"), "'a\\nb\\001\\''");
  EXPECT_EQ(QuoteForMessage("\xff"), "'\\377'");
  const std::string quoted = QuoteForMessage(std::string("x\0y", 3));
  EXPECT_EQ(quoted.find('\0'), std::string::npos);
}

TEST(QuoteForMessageTest, CutsLongInputAndSaysHowLongItWas) {
  const std::string quoted = QuoteForMessage(std::string(70000, 'a'));
  EXPECT_LT(quoted.size(), 130u);
  EXPECT_THAT(quoted, HasSubstr("...' (70000 bytes)"));
  EXPECT_EQ(QuoteForMessage("abcdef", 3), "'abc...' (6 bytes)");
  // Escaping never lengthens a message past a few times the bound.
  EXPECT_LT(QuoteForMessage(std::string(70000, '\x01')).size(), 450u);
}

TEST(IsPlainForMessageTest, AcceptsOnlyPrintableAsciiWithoutQuotes) {
  EXPECT_TRUE(IsPlainForMessage("training.global_batch_size"));
  EXPECT_FALSE(IsPlainForMessage("a\nb"));
  EXPECT_FALSE(IsPlainForMessage("a\"b"));
  EXPECT_FALSE(IsPlainForMessage("\xc3\xa9"));
}

}  // namespace
}  // namespace meshtrain
