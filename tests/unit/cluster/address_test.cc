#include "runtime/cluster/address.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

TEST(ParseHostPortTest, AcceptsNamesIpv4AndBracketedIpv6) {
  absl::StatusOr<HostPort> a = ParseHostPort("node-3.example:2222");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "node-3.example");
  EXPECT_EQ(a->port, 2222);

  absl::StatusOr<HostPort> b = ParseHostPort("10.0.0.1:1");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->host, "10.0.0.1");
  EXPECT_EQ(b->port, 1);

  absl::StatusOr<HostPort> c = ParseHostPort("[::1]:65535");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 65535);
}

TEST(ParseHostPortTest, CanonicalFoldsCaseAndLeadingZeros) {
  EXPECT_EQ(ParseHostPort("LocalHost:02222")->Canonical(), "localhost:2222");
  EXPECT_EQ(ParseHostPort("[FE80::1]:80")->Canonical(), "[fe80::1]:80");
}

TEST(ParseHostPortTest, JoinBracketsIpv6) {
  EXPECT_EQ(JoinHostPort("::1", 2222), "[::1]:2222");
  EXPECT_EQ(JoinHostPort("10.0.0.1", 2222), "10.0.0.1:2222");
}

TEST(ParseHostPortTest, KnowsLoopbackInEverySpelling) {
  for (const char* address : {"localhost:1", "LOCALHOST:1", "127.0.0.1:1", "127.255.0.9:1",
                              "[::1]:1", "[0:0:0:0:0:0:0:1]:1", "[::ffff:127.0.0.1]:1"}) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(address);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_TRUE(parsed->IsLoopback()) << address;
    EXPECT_EQ(parsed->EndpointKey(), "loopback:1") << address;
  }
  for (const char* address : {"10.0.0.1:1", "128.0.0.1:1", "[::2]:1", "localhost2:1"}) {
    EXPECT_FALSE(ParseHostPort(address)->IsLoopback()) << address;
  }
}

TEST(ParseHostPortTest, EndpointKeyFoldsSpellingsOfOneAddress) {
  EXPECT_EQ(ParseHostPort("[FE80:0::01]:80")->EndpointKey(), "[fe80::1]:80");
  EXPECT_EQ(ParseHostPort("Node-1:080")->EndpointKey(), ParseHostPort("node-1:80")->EndpointKey());
  EXPECT_NE(ParseHostPort("node-1:80")->EndpointKey(), ParseHostPort("node-2:80")->EndpointKey());
}

TEST(ParseHostPortTest, BoundsWhatItQuotes) {
  const std::string huge_port = "localhost:" + std::string(70000, '9');
  absl::StatusOr<HostPort> parsed = ParseHostPort(huge_port);
  ASSERT_FALSE(parsed.ok());
  EXPECT_LT(parsed.status().message().size(), 300u);
  parsed = ParseHostPort(std::string(70000, 'h') + ":1");
  ASSERT_FALSE(parsed.ok());
  EXPECT_LT(parsed.status().message().size(), 500u);
}

TEST(BindHostTest, LoopbackHostsBindThemselvesOthersEveryInterface) {
  for (const char* host : {"127.0.0.1", "127.3.2.1", "localhost", "LOCALHOST", "::1"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
    EXPECT_EQ(DefaultBindHost(host), host);
  }
  for (const char* host : {"10.0.0.1", "128.0.0.1", "127.0.0.256", "node-3", "::2", "0.0.0.0",
                           "localhost.example.com", "1270.0.0.1"}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
    EXPECT_EQ(DefaultBindHost(host), "0.0.0.0") << host;
  }
}

struct BadAddress {
  const char* address;
  const char* message;
};

class ParseHostPortErrorTest : public ::testing::TestWithParam<BadAddress> {};

TEST_P(ParseHostPortErrorTest, SaysWhatIsWrongOnOneLine) {
  absl::StatusOr<HostPort> parsed = ParseHostPort(GetParam().address);
  ASSERT_FALSE(parsed.ok()) << GetParam().address;
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    All, ParseHostPortErrorTest,
    ::testing::Values(
        BadAddress{"*:1",
                   "address '*:1' has '*' in its host, which a host name cannot hold; a host is "
                   "a name of letters, digits, hyphens and dots (e.g. 'node-3.example.com'), an "
                   "IPv4 address (e.g. '10.0.0.2') or a bracketed IPv6 address (e.g. '[::1]')"},
        BadAddress{"[not-ipv6]:1",
                   "address '[not-ipv6]:1' has a bracketed host that is not an IPv6 address; "
                   "write an IPv6 address as '[::1]:2222', or a name or IPv4 address without "
                   "brackets"},
        BadAddress{"a\tb:1", "address 'a\\tb:1' contains whitespace; remove it"},
        BadAddress{"a\x7f:1", "address 'a\\177:1' contains a control character; remove it"},
        BadAddress{"", "address '' is empty; write it as host:port, e.g. 'localhost:2222'"},
        BadAddress{"localhost",
                   "address 'localhost' has no port; write it as host:port, e.g. 'localhost:2222'"},
        BadAddress{
            "localhost:",
            "address 'localhost:' has no port; write it as host:port, e.g. 'localhost:2222'"},
        BadAddress{
            ":2222",
            "address ':2222' has an empty host; write it as host:port, e.g. 'localhost:2222'"},
        BadAddress{
            "[]:2222",
            "address '[]:2222' has an empty host; write it as host:port, e.g. 'localhost:2222'"},
        BadAddress{
            "localhost:http",
            "port 'http' in address 'localhost:http' is not a number; ports must be 1..65535"},
        BadAddress{"localhost:-1",
                   "port '-1' in address 'localhost:-1' is not a number; ports must be 1..65535"},
        BadAddress{"localhost:0",
                   "port 0 in address 'localhost:0' is out of range; ports must be 1..65535"},
        BadAddress{
            "localhost:65536",
            "port 65536 in address 'localhost:65536' is out of range; ports must be 1..65535"},
        BadAddress{"localhost:99999999999999999999",
                   "port 99999999999999999999 in address 'localhost:99999999999999999999' is out "
                   "of range; ports must be 1..65535"},
        BadAddress{
            "::1:2222",
            "address '::1:2222' has an IPv6 host without brackets; write it as '[::1]:2222'"},
        BadAddress{"[::1:2222",
                   "address '[::1:2222' has no closing ']'; write an IPv6 address as '[::1]:2222'"},
        BadAddress{"[::1]",
                   "address '[::1]' has no port; write it as '[host]:port', e.g. '[::1]:2222'"},
        BadAddress{"[::1]2222",
                   "address '[::1]2222' has text other than ':port' after ']'; write it as "
                   "'[host]:port', e.g. '[::1]:2222'"},
        BadAddress{"local host:1", "address 'local host:1' contains whitespace; remove it"},
        BadAddress{"a\nb:1", "address 'a\\nb:1' contains whitespace; remove it"}));

}  // namespace
}  // namespace meshtrain
