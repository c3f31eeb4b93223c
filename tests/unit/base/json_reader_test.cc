#include "runtime/base/json_reader.h"

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/base/quote.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

nlohmann::json Doc(const std::string& text) { return *ParseJson(text); }

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(ParseJsonTest, SaysWhereTheTextStopsParsing) {
  EXPECT_TRUE(ParseJson(R"({"a": [1, 2]})").ok());
  absl::StatusOr<nlohmann::json> bad = ParseJson(R"({"a": [1,]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(bad.status()), HasSubstr("not valid JSON at byte 10: parse error at line 1"));
  EXPECT_THAT(Message(bad.status()), testing::Not(HasSubstr("json.exception")));
  EXPECT_FALSE(ParseJson("").ok());
}

// nlohmann throws out_of_range, not parse_error, for a number beyond a
// double's range; it once escaped ParseJson and terminated the process (the
// fuzz target tf_config found it with 1e400).
TEST(ParseJsonTest, RefusesNumbersBeyondADouble) {
  for (const std::string& text : std::vector<std::string>{"1e400", R"({"index": -1e400})",
                                                          "[" + std::string(400, '9') + "e9]"}) {
    absl::StatusOr<nlohmann::json> parsed = ParseJson(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(Message(parsed.status()), HasSubstr("not valid JSON: number overflow parsing"));
    EXPECT_THAT(Message(parsed.status()), testing::Not(HasSubstr("json.exception")));
    EXPECT_LT(parsed.status().message().size(), 300u) << parsed.status();
  }
  EXPECT_TRUE(ParseJson("[1e300, 18446744073709551615, -9223372036854775808]").ok());
}

// Arrays nested 51,500 deep once overflowed the stack when a message dumped them.
TEST(ParseJsonTest, RefusesNestingDeeperThanTheLimitWithoutRecursing) {
  const std::string deep = std::string(51500, '[') + std::string(51500, ']');
  absl::StatusOr<nlohmann::json> parsed = ParseJson(deep);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(parsed.status()),
              HasSubstr("nests arrays and objects deeper than 64 levels at byte 64"));
  EXPECT_LT(parsed.status().message().size(), 300u);

  const std::string at_limit = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(ParseJson(at_limit).ok());
  EXPECT_FALSE(ParseJson("[" + at_limit + "]").ok());
  const std::string objects = R"({"a":)" + std::string(70, '[') + std::string(70, ']') + "}";
  EXPECT_FALSE(ParseJson(objects).ok());
  EXPECT_TRUE(ParseJson(objects, /*max_depth=*/80).ok());
}

TEST(ParseJsonTest, BracketsInsideStringsDoNotCount) {
  const std::string text = R"({"a": ")" + std::string(1000, '[') + R"(\"[[[", "b": "\\"})";
  absl::StatusOr<nlohmann::json> parsed = ParseJson(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ((*parsed)["b"], "\\");
}

TEST(ParseJsonTest, BoundsAndEscapesTheInputItQuotes) {
  const std::string text = "\"" + std::string(70000, 'x') + "\x01";
  absl::StatusOr<nlohmann::json> parsed = ParseJson(text);
  ASSERT_FALSE(parsed.ok());
  EXPECT_LT(parsed.status().message().size(), 300u);
  EXPECT_THAT(Message(parsed.status()), HasSubstr("..."));
}

TEST(JsonReaderTest, QuotesKeysThatAreNotPlainInPaths) {
  const nlohmann::json doc = Doc("{\"a\\u0001\": 1, \"" + std::string(500, 'k') + "\": 2}");
  JsonReader r(doc, InvalidJsonIn("doc.json"));
  const std::string message = Message(r.CheckNoUnknownKeys());
  EXPECT_THAT(message, HasSubstr("'a\\001' is not a known key"));
  EXPECT_EQ(message.find('\x01'), std::string::npos);
  EXPECT_EQ(r.PathOf(std::string(500, 'k')).size(), QuoteForMessage(std::string(500, 'k')).size());
}

TEST(DescribeJsonTest, NamesTheTypeAndAPrefixOfTheText) {
  EXPECT_EQ(DescribeJson(nullptr), "null");
  EXPECT_EQ(DescribeJson(1.5), "number 1.5");
  EXPECT_EQ(DescribeJson("x"), "string \"x\"");
  EXPECT_EQ(DescribeJson(Doc(R"({"0":"a"})")), "object {\"0\":\"a\"}");
  EXPECT_EQ(DescribeJson(std::string(100, 'a')), "string \"" + std::string(44, 'a') + "...");
}

TEST(JsonReaderTest, ReadsRequiredAndOptionalTypedFields) {
  const nlohmann::json doc = Doc(R"({"b": true, "i": -3, "big": 9000000000, "u": 7, "f": 0.5,
      "s": "x", "dims": [2, 3], "names": ["a", "b"], "map": {"k": "v"}, "null": null})");
  JsonReader r(doc, InvalidJsonIn("doc.json"));
  bool b = false;
  int i = 0;
  int64_t big = 0;
  uint64_t u = 0;
  float f = 0;
  std::string s;
  std::vector<int64_t> dims;
  std::vector<std::string> names;
  std::map<std::string, std::string> map;
  ASSERT_TRUE(r.Read("b", &b).ok());
  ASSERT_TRUE(r.Read("i", &i).ok());
  ASSERT_TRUE(r.Read("big", &big).ok());
  ASSERT_TRUE(r.Read("u", &u).ok());
  ASSERT_TRUE(r.Read("f", &f).ok());
  ASSERT_TRUE(r.Read("s", &s).ok());
  ASSERT_TRUE(r.ReadDimensions("dims", &dims).ok());
  ASSERT_TRUE(r.Read("names", &names).ok());
  ASSERT_TRUE(r.Read("map", &map).ok());
  EXPECT_TRUE(b);
  EXPECT_EQ(i, -3);
  EXPECT_EQ(big, 9000000000);
  EXPECT_EQ(u, 7u);
  EXPECT_EQ(f, 0.5f);
  EXPECT_EQ(s, "x");
  EXPECT_EQ(dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(map.at("k"), "v");

  std::string kept = "default";
  EXPECT_TRUE(r.ReadOptional("absent", &kept).ok());
  EXPECT_TRUE(r.ReadOptional("null", &kept).ok());
  EXPECT_EQ(kept, "default");
  EXPECT_EQ(Message(r.ReadOptional("i", &kept)), "doc.json: i must be a string, got number -3");
  EXPECT_EQ(Message(r.Read("absent", &kept)), "doc.json: absent is missing");
}

TEST(JsonReaderTest, MistypedFieldsNameThePathAndWhatTheyHeld) {
  const nlohmann::json doc = Doc(R"({"tensors": [{"shape": [1]}, {"shape": [2, "x"]}],
      "n": 1.5, "big": 9000000000, "neg": -1, "dims": [-10], "opts": {"lr": "fast"}})");
  JsonReader r(doc, InvalidJsonIn("manifest ckpt-50/index.json"));
  int n = 0;
  uint64_t u = 0;
  std::vector<int64_t> dims;
  EXPECT_EQ(Message(r.Read("n", &n)),
            "manifest ckpt-50/index.json: n must be an integer that fits 32 bits, got number 1.5");
  EXPECT_THAT(Message(r.Read("big", &n)), HasSubstr("big must be an integer that fits 32 bits"));
  EXPECT_EQ(Message(r.Read("neg", &u)),
            "manifest ckpt-50/index.json: neg must be an integer >= 0, got number -1");
  int64_t at_least = 0;
  EXPECT_EQ(Message(r.ReadAtLeast("neg", 0, &at_least)),
            "manifest ckpt-50/index.json: neg must be an integer >= 0, got number -1");
  EXPECT_THAT(Message(r.ReadDimensions("dims", &dims)),
              HasSubstr("dims must be an array of integers >= 0"));
  absl::Status shapes = r.ForEach("tensors", [&](JsonReader& t) { return t.Read("shape", &dims); });
  EXPECT_EQ(Message(shapes),
            "manifest ckpt-50/index.json: tensors[1].shape must be an array of integers, got array "
            "[2,\"x\"]");
  absl::StatusOr<JsonReader> opts = r.Object("opts");
  ASSERT_TRUE(opts.ok());
  double lr = 0;
  EXPECT_EQ(Message(opts->Read("lr", &lr)),
            "manifest ckpt-50/index.json: opts.lr must be a number, got string \"fast\"");
  EXPECT_EQ(Message(r.Object("n").status()),
            "manifest ckpt-50/index.json: n must be a JSON object, got number 1.5");
  EXPECT_EQ(Message(r.ForEach("opts", [](JsonReader&) { return absl::OkStatus(); })),
            "manifest ckpt-50/index.json: opts must be an array, got object {\"lr\":\"fast\"}");
}

TEST(JsonReaderTest, ReadsArraysAndMapsElementByElement) {
  const nlohmann::json doc =
      Doc(R"({"xs": [1, 2, 3], "tasks": {"worker:0": {"step": 4}}, "empty": []})");
  JsonReader r(doc, InvalidJsonIn("d"));
  std::vector<int> xs;
  ASSERT_TRUE(r.ForEach("xs", [&](JsonReader& e) {
                 int x = 0;
                 absl::Status s = e.Get(&x);
                 xs.push_back(x);
                 return s;
               }).ok());
  EXPECT_EQ(xs, (std::vector<int>{1, 2, 3}));
  int calls = 0;
  ASSERT_TRUE(r.ForEach("empty", [&](JsonReader&) {
                 ++calls;
                 return absl::OkStatus();
               }).ok());
  EXPECT_EQ(calls, 0);
  std::map<std::string, int64_t> steps;
  ASSERT_TRUE(r.ForEachMember("tasks", [&](const std::string& key, JsonReader& task) {
                 return task.Read("step", &steps[key]);
               }).ok());
  EXPECT_EQ(steps.at("worker:0"), 4);
  absl::Status bad = r.ForEachMember("tasks", [&](const std::string&, JsonReader& task) {
    std::string s;
    return task.Read("step", &s);
  });
  EXPECT_EQ(Message(bad), "d: tasks.worker:0.step must be a string, got number 4");
}

TEST(JsonReaderTest, TheCallerChoosesTheCodeAndTheWholeDocumentHasNoPath) {
  const nlohmann::json doc = Doc("[1]");
  JsonReader r(doc, [](absl::string_view field, absl::string_view problem) {
    return absl::DataLossError(absl::StrCat("f is corrupt: ", JsonFieldMessage(field, problem)));
  });
  absl::Status status = r.CheckObject();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Message(status), "f is corrupt: the JSON must be a JSON object, got array [1]");
  int x = 0;
  EXPECT_EQ(Message(r.Read("x", &x)),
            "f is corrupt: the JSON must be a JSON object, got array [1]");
}

TEST(JsonReaderTest, UnknownKeysAreNamedWithTheKeysTaken) {
  const nlohmann::json doc = Doc(R"({"optimizer": {"learning_rat": 0.1, "type": "sgd"}})");
  JsonReader top(doc, InvalidJsonIn("job.json"));
  absl::StatusOr<JsonReader> optimizer = top.Object("optimizer");
  ASSERT_TRUE(optimizer.ok());
  std::string type;
  double lr = 0;
  ASSERT_TRUE(optimizer->Read("type", &type).ok());
  ASSERT_TRUE(optimizer->ReadOptional("learning_rate", &lr).ok());
  EXPECT_EQ(
      Message(optimizer->CheckNoUnknownKeys()),
      "job.json: optimizer.learning_rat is not a known key; optimizer takes: learning_rate, type");
  EXPECT_TRUE(top.CheckNoUnknownKeys().ok());
}

}  // namespace
}  // namespace meshtrain
