// Every hostlist and tasks-per-node form Slurm documents, and the errors.
#include "runtime/cluster/hostlist.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Hosts(absl::string_view text) {
  absl::StatusOr<std::vector<std::string>> hosts = ExpandHostlist(text);
  EXPECT_TRUE(hosts.ok()) << hosts.status();
  return hosts.ok() ? *hosts : std::vector<std::string>{};
}

TEST(ExpandHostlistTest, PlainNames) {
  EXPECT_THAT(Hosts("node07"), ElementsAre("node07"));
  EXPECT_THAT(Hosts("a,b.example.com,c-1"), ElementsAre("a", "b.example.com", "c-1"));
}

TEST(ExpandHostlistTest, RangesAndSinglesInOneGroup) {
  EXPECT_THAT(Hosts("node[01-03,7],gpu-[1-2]"),
              ElementsAre("node01", "node02", "node03", "node7", "gpu-1", "gpu-2"));
  EXPECT_THAT(Hosts("n[5]"), ElementsAre("n5"));
  EXPECT_THAT(Hosts("n[1,3,5-6]"), ElementsAre("n1", "n3", "n5", "n6"));
}

TEST(ExpandHostlistTest, KeepsZeroPadding) {
  EXPECT_THAT(Hosts("node[08-11]"), ElementsAre("node08", "node09", "node10", "node11"));
  EXPECT_THAT(Hosts("n[098-101]"), ElementsAre("n098", "n099", "n100", "n101"));
  EXPECT_THAT(Hosts("n[8-10]"), ElementsAre("n8", "n9", "n10"));
}

TEST(ExpandHostlistTest, SeveralGroupsAreACartesianProduct) {
  EXPECT_THAT(Hosts("rack[1-2]-node[1-2]"),
              ElementsAre("rack1-node1", "rack1-node2", "rack2-node1", "rack2-node2"));
  EXPECT_THAT(Hosts("r[1-2]n[01,03].x"), ElementsAre("r1n01.x", "r1n03.x", "r2n01.x", "r2n03.x"));
}

TEST(ExpandHostlistTest, KeepsOrderAndDuplicates) {
  EXPECT_THAT(Hosts("b,a[1-2],a1"), ElementsAre("b", "a1", "a2", "a1"));
}

TEST(ExpandHostlistTest, Errors) {
  struct Case {
    const char* text;
    const char* says;
  } cases[] = {
      {"", "no names"},
      {"a,,b", "empty name"},
      {"a,", "empty name"},
      {"n[1-3", "'[' without ']'"},
      {"n1-3]", "']' without '['"},
      {"n[[1]]", "nested"},
      {"n[]", "not a number"},
      {"n[a-b]", "not a number"},
      {"n[1-]", "not a number"},
      {"n[3-1]", "ends before it starts"},
      {"n[1-2000000]", "more than"},
      {"n[1-2000]m[1-2000]", "more than"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::vector<std::string>> hosts = ExpandHostlist(c.text);
    ASSERT_FALSE(hosts.ok()) << c.text;
    EXPECT_EQ(hosts.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(hosts.status().message(), HasSubstr(c.says)) << c.text;
    EXPECT_THAT(hosts.status().message(), HasSubstr("node[01-03,7]")) << "says how to write it";
  }
}

TEST(ExpandHostlistTest, LongValuesAreQuotedBounded) {
  const std::string text = "n[" + std::string(5000, '1') + "]";
  absl::StatusOr<std::vector<std::string>> hosts = ExpandHostlist(text);
  ASSERT_FALSE(hosts.ok());
  EXPECT_LT(hosts.status().message().size(), 700u);
}

TEST(ExpandTasksPerNodeTest, Forms) {
  EXPECT_THAT(*ExpandTasksPerNode("4"), ElementsAre(4));
  EXPECT_THAT(*ExpandTasksPerNode("2,1"), ElementsAre(2, 1));
  EXPECT_THAT(*ExpandTasksPerNode("2(x3),1"), ElementsAre(2, 2, 2, 1));
  EXPECT_THAT(*ExpandTasksPerNode("1,3(x2)"), ElementsAre(1, 3, 3));
  EXPECT_THAT(*ExpandTasksPerNode("8(x1)"), ElementsAre(8));
}

TEST(ExpandTasksPerNodeTest, Errors) {
  for (const char* text :
       {"", "0", "-1", "2(x0)", "2(3)", "2(x3", "x", "2,,1", "2(x)", "2(x3)1", "2(x99999999)"}) {
    absl::StatusOr<std::vector<int>> counts = ExpandTasksPerNode(text);
    ASSERT_FALSE(counts.ok()) << text;
    EXPECT_EQ(counts.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(counts.status().message(), HasSubstr("2(x3),1")) << text;
  }
}

}  // namespace
}  // namespace meshtrain
