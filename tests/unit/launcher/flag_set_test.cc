#include "launcher/flag_set.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

struct Values {
  std::string config = "a.json";
  int64_t epochs = -1;
  bool chief = false;
  double rate = 0.5;
  absl::Duration timeout = absl::Seconds(300);
};

FlagSet Make(Values& v) {
  FlagSet f("train", "meshtrain train [flags]", "Trains.");
  f.AddString("config", &v.config, "job config", "job");
  f.AddInt("epochs", &v.epochs, "epochs", "job");
  f.AddBool("chief", &v.chief, "add a chief", "cluster");
  f.AddDouble("rate", &v.rate, "rate");
  f.AddDuration("startup-timeout", &v.timeout, "wait", "cluster");
  return f;
}

TEST(FlagSetTest, ParsesBothSpellingsAndRemembersWhatWasSet) {
  Values v;
  FlagSet f = Make(v);
  auto rest =
      f.Parse({"--config=b.json", "--epochs", "3", "--chief", "--startup_timeout=2m", "pos"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(v.config, "b.json");
  EXPECT_EQ(v.epochs, 3);
  EXPECT_TRUE(v.chief);
  EXPECT_EQ(v.timeout, absl::Minutes(2));
  EXPECT_THAT(*rest, ::testing::ElementsAre("pos"));
  EXPECT_TRUE(f.IsSet("epochs"));
  EXPECT_FALSE(f.IsSet("rate"));
  EXPECT_THAT(f.SetFlagsAsArgs({"epochs", "chief"}),
              ::testing::ElementsAre("--epochs=3", "--chief=true"));
}

TEST(FlagSetTest, ErrorsNameTheFlag) {
  Values v;
  FlagSet f = Make(v);
  auto unknown = f.Parse({"--epoch=3"});
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("--epoch"));
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("meshtrain train --help"));
  Values w;
  FlagSet g = Make(w);
  EXPECT_THAT(std::string(g.Parse({"--epochs=many"}).status().message()), HasSubstr("--epochs"));
  Values x;
  FlagSet h = Make(x);
  EXPECT_THAT(std::string(h.Parse({"--epochs"}).status().message()), HasSubstr("needs a value"));
}

TEST(FlagSetTest, NegatedBoolAndHelp) {
  Values v;
  v.chief = true;
  FlagSet f = Make(v);
  ASSERT_TRUE(f.Parse({"--nochief", "--help"}).ok());
  EXPECT_FALSE(v.chief);
  EXPECT_TRUE(f.help_requested());
  const std::string help = f.Help();
  EXPECT_THAT(help, HasSubstr("--config STRING"));
  EXPECT_THAT(help, HasSubstr("(default: a.json)"));
  EXPECT_THAT(help, HasSubstr("cluster:"));
}

}  // namespace
}  // namespace meshtrain
