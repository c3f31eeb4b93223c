#include "runtime/checkpoint/manifest.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

PartitionRecord Partition(const std::string& file, int64_t offset, int64_t rows) {
  PartitionRecord p;
  p.file = file;
  p.key = "k" + std::to_string(offset);
  p.row_offset = offset;
  p.rows = rows;
  p.updates = 12;
  p.slots["momentum"] = p.key + "/momentum";
  return p;
}

Manifest Sample() {
  Manifest m;
  m.step = 1200;
  m.final = true;
  m.input = {5, 25};
  m.task_inputs["worker:0"] = {5, 25};
  m.task_inputs["worker:1"] = {5, 25};
  m.seed = 1234;
  m.strategy = "parameter_server";
  m.num_workers = 2;
  m.num_ps = 2;
  m.replicas_in_sync = 2;
  m.optimizer = "sgd";
  m.slot_names = {"momentum"};
  VariableRecord v;
  v.name = "dense_0/kernel";
  v.shape = {784, 300};
  v.partitions = {Partition("ps-0.safetensors", 0, 392), Partition("ps-1.safetensors", 392, 392)};
  m.variables.push_back(v);
  m.files = {{"ps-0.safetensors", 100, 0xdeadbeef}, {"ps-1.safetensors", 200, 0x00000001}};
  m.meta["restarts"] = 3;
  return m;
}

TEST(ManifestTest, RoundTrips) {
  const Manifest m = Sample();
  auto parsed = ParseManifest(ManifestToJson(m), "index.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->step, 1200);
  EXPECT_TRUE(parsed->final);
  EXPECT_EQ(parsed->input.epoch, 5);
  EXPECT_EQ(parsed->task_inputs.at("worker:1").step, 25);
  EXPECT_EQ(parsed->seed, 1234u);
  EXPECT_EQ(parsed->strategy, "parameter_server");
  EXPECT_EQ(parsed->num_ps, 2);
  ASSERT_EQ(parsed->variables.size(), 1u);
  EXPECT_EQ(parsed->variables[0].partitions[1].row_offset, 392);
  EXPECT_EQ(parsed->variables[0].partitions[1].slots.at("momentum"), "k392/momentum");
  EXPECT_EQ(parsed->files[0].crc32c, 0xdeadbeefu);
  EXPECT_EQ(parsed->files[1].crc32c, 1u);
  EXPECT_EQ(parsed->meta["restarts"], 3);
}

TEST(ManifestTest, InconsistentManifestsAreDataLossNamingTheFile) {
  struct Case {
    std::string name;
    std::function<void(Manifest&)> damage;
    std::string message;
  };
  std::vector<Case> cases = {
      {"gap", [](Manifest& m) { m.variables[0].partitions[1].row_offset = 400; }, "unheld"},
      {"overlap", [](Manifest& m) { m.variables[0].partitions[1].row_offset = 300; }, "overlaps"},
      {"short", [](Manifest& m) { m.variables[0].partitions[1].rows = 10; }, "hold 402 of its 784"},
      {"unlisted file", [](Manifest& m) { m.files.pop_back(); }, "does not list"},
      {"missing slot", [](Manifest& m) { m.variables[0].partitions[0].slots.clear(); },
       "no 'momentum' slot"},
      {"path in file name", [](Manifest& m) { m.files[0].name = "../x"; }, "plain file name"},
      // Values are quoted escaped: a newline in one cannot split the log line
      // (the checkpoint_manifest fuzz target found this one).
      {"control characters in a name",
       [](Manifest& m) { m.variables[0].partitions[1].file = "a\nb\x1b[31m"; },
       "names file 'a\\nb\\033[31m'"},
  };
  for (const Case& c : cases) {
    Manifest m = Sample();
    c.damage(m);
    auto parsed = ParseManifest(ManifestToJson(m), "/m/ckpt-1200/index.json");
    ASSERT_FALSE(parsed.ok()) << c.name;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss) << c.name;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("/m/ckpt-1200/index.json"));
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.message)) << parsed.status();
    EXPECT_EQ(parsed.status().message().find('\n'), absl::string_view::npos) << c.name;
  }
  for (const std::string text :
       {"", "{", "[]", R"({"format": "other", "version": 1})",
        R"({"format": "meshtrain-checkpoint", "version": 1, "step": -1})"}) {
    auto parsed = ParseManifest(text, "index.json");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kDataLoss) << text;
  }
}

TEST(ManifestTest, PartsMergeIntoVariablesAndTravelAsJson) {
  PartRecord a, b;
  a.file = {"ps-0.safetensors", 10, 1};
  b.file = {"ps-1.safetensors", 20, 2};
  VariableRecord kernel;
  kernel.name = "w";
  kernel.shape = {10, 3};
  VariableRecord bias;
  bias.name = "b";
  bias.shape = {3};
  VariableRecord k0 = kernel, k1 = kernel, b0 = bias;
  k0.partitions = {Partition("ps-0.safetensors", 6, 4)};
  k1.partitions = {Partition("ps-1.safetensors", 0, 6)};
  b0.partitions = {Partition("ps-0.safetensors", 0, 3)};
  a.variables = {k0, b0};
  b.variables = {k1};
  auto through_json = PartRecordFromJson(PartRecordToJson(b));
  ASSERT_TRUE(through_json.ok()) << through_json.status();
  EXPECT_EQ(through_json->file.crc32c, 2u);
  auto merged = MergeParts({a, *through_json});
  ASSERT_TRUE(merged.ok()) << merged.status();
  ASSERT_EQ(merged->size(), 2u);
  EXPECT_EQ((*merged)[1].name, "w");
  ASSERT_EQ((*merged)[1].partitions.size(), 2u);
  EXPECT_EQ((*merged)[1].partitions[0].file, "ps-1.safetensors");  // sorted by row

  auto missing = MergeParts({a});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("variable 'w'"));
  EXPECT_EQ(PartRecordFromJson(nlohmann::json::parse(R"({"file": {}})")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace meshtrain
