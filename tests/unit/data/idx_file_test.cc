#include "runtime/data/idx_file.h"

#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/data/test_files.h"

namespace meshtrain {
namespace {

using ::meshtrain::testing::TempDir;
using ::meshtrain::testing::WriteGzFile;
using ::meshtrain::testing::WritePlainFile;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<uint8_t> Counting(int count) {
  std::vector<uint8_t> values(count);
  for (int i = 0; i < count; ++i) values[i] = static_cast<uint8_t>(i * 7);
  return values;
}

TEST(IdxFileTest, ReadsGzipAndPlainFiles) {
  TempDir dir;
  const std::vector<uint8_t> values = Counting(2 * 3 * 5);
  const std::string bytes = EncodeIdx({2, 3, 5}, values);
  WriteGzFile(dir.File("a.gz"), bytes);
  WritePlainFile(dir.File("a"), bytes);
  for (const std::string& path : {dir.File("a.gz"), dir.File("a")}) {
    absl::StatusOr<IdxArray> array = ReadIdxFile(path);
    ASSERT_TRUE(array.ok()) << array.status();
    EXPECT_THAT(array->dims, ElementsAre(2, 3, 5));
    EXPECT_EQ(std::vector<uint8_t>(array->span().begin(), array->span().end()), values) << path;
  }
}

TEST(IdxFileTest, EmptyArrayIsValid) {
  TempDir dir;
  WriteGzFile(dir.File("e.gz"), EncodeIdx({0}, {}));
  absl::StatusOr<IdxArray> array = ReadIdxFile(dir.File("e.gz"));
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_THAT(array->dims, ElementsAre(0));
  EXPECT_EQ(array->num_values, 0);
}

TEST(IdxFileTest, MissingFileIsNotFoundWithPath) {
  TempDir dir;
  absl::StatusOr<IdxArray> array = ReadIdxFile(dir.File("absent.gz"));
  EXPECT_EQ(array.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(array.status().message(), HasSubstr(dir.File("absent.gz")));
}

// Each malformed file is DataLoss naming the path and the fault.
struct Malformed {
  std::string name;
  std::string bytes;
  std::string fault;
};

TEST(IdxFileTest, MalformedFilesAreDataLossNamingPathAndFault) {
  const std::string good = EncodeIdx({4, 3}, Counting(12));
  std::string bad_magic = good;
  bad_magic[0] = 0x1f;
  std::string bad_type = good;
  bad_type[2] = 0x0d;  // float
  std::string bad_rank = good;
  bad_rank[3] = 0;
  const std::vector<Malformed> cases = {
      {"bad_magic", bad_magic, "bad magic"},
      {"bad_type", bad_type, "not unsigned byte"},
      {"bad_rank", bad_rank, "rank 0"},
      {"short_magic", good.substr(0, 3), "truncated"},
      {"short_header", good.substr(0, 9), "truncated"},
      {"short_data", good.substr(0, good.size() - 1), "truncated"},
      {"trailing", good + "x", "runs past"},
      {"huge", EncodeIdx({100000, 100000, 100}, {}), "exceed"},
  };
  TempDir dir;
  for (const Malformed& c : cases) {
    const std::string path = dir.File(c.name + ".gz");
    WriteGzFile(path, c.bytes);
    absl::StatusOr<IdxArray> array = ReadIdxFile(path);
    EXPECT_EQ(array.status().code(), absl::StatusCode::kDataLoss)
        << c.name << ": " << array.status();
    EXPECT_THAT(array.status().message(), HasSubstr(path)) << c.name;
    EXPECT_THAT(array.status().message(), HasSubstr(c.fault)) << c.name;
  }
}

TEST(IdxFileTest, CorruptGzipStreamIsDataLoss) {
  TempDir dir;
  const std::string path = dir.File("corrupt.gz");
  WriteGzFile(path, EncodeIdx({64, 64}, Counting(64 * 64)));
  // Damage the stored CRC-32 in the 8-byte trailer: zlib must notice at the end.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(bytes.size(), 8u);
  bytes[bytes.size() - 8] ^= 0x5a;
  WritePlainFile(path, bytes);
  absl::StatusOr<IdxArray> array = ReadIdxFile(path);
  EXPECT_EQ(array.status().code(), absl::StatusCode::kDataLoss) << array.status();
  EXPECT_THAT(array.status().message(), HasSubstr(path));
}

}  // namespace
}  // namespace meshtrain
