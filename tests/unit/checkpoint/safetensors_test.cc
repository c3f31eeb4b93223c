#include "runtime/checkpoint/safetensors.h"

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

// A WritableFile into a string.
class StringFile final : public WritableFile {
 public:
  explicit StringFile(std::string* out) : out_(out) {}
  absl::Status Append(absl::Span<const std::byte> data) override {
    out_->append(reinterpret_cast<const char*>(data.data()), data.size());
    return absl::OkStatus();
  }
  absl::Status Sync() override { return absl::OkStatus(); }
  absl::Status Close() override { return absl::OkStatus(); }

 private:
  std::string* out_;
};

template <typename T>
absl::Span<const std::byte> Bytes(const std::vector<T>& v) {
  return absl::MakeConstSpan(reinterpret_cast<const std::byte*>(v.data()), v.size() * sizeof(T));
}

std::string Build(const std::vector<float>& a, const std::vector<int64_t>& b) {
  SafetensorsWriter writer;
  writer.SetMetadata("format", "test");
  const int64_t a_shape[] = {2, 3};
  const int64_t b_shape[] = {static_cast<int64_t>(b.size())};
  EXPECT_TRUE(writer.Add("dense_0/kernel", DType::kFloat32, a_shape, Bytes(a)).ok());
  EXPECT_TRUE(writer.Add("ids", DType::kInt64, b_shape, Bytes(b)).ok());
  std::string out;
  StringFile file(&out);
  EXPECT_TRUE(writer.WriteTo(file).ok());
  EXPECT_EQ(out.size(), writer.total_bytes());
  return out;
}

// Replaces the JSON header of a built file with `json` (padded to its length).
std::string WithHeader(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json + data;
}

TEST(SafetensorsTest, RoundTripsTensorsAndMetadata) {
  const std::vector<float> a = {1, 2, 3, 4, 5, 6.5f};
  const std::vector<int64_t> b = {7, -8};
  const std::string bytes = Build(a, b);
  // The header length is little-endian and the data starts 8-byte aligned.
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + n + a.size() * 4 + b.size() * 8);
  auto file = SafetensorsFile::Parse(bytes, "x.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_EQ(file->entries().size(), 2u);
  const SafetensorsEntry* kernel = file->Find("dense_0/kernel");
  ASSERT_NE(kernel, nullptr);
  EXPECT_EQ(kernel->dtype, DType::kFloat32);
  EXPECT_THAT(kernel->shape, ::testing::ElementsAre(2, 3));
  absl::Span<const std::byte> data = file->Data(*kernel);
  ASSERT_EQ(data.size(), 24u);
  EXPECT_EQ(std::memcmp(data.data(), a.data(), 24), 0);
  const SafetensorsEntry* ids = file->Find("ids");
  ASSERT_NE(ids, nullptr);
  EXPECT_EQ(std::memcmp(file->Data(*ids).data(), b.data(), 16), 0);
  EXPECT_EQ(file->metadata().at("format"), "test");
  EXPECT_EQ(file->Find("missing"), nullptr);
}

TEST(SafetensorsTest, WriterRefusesMismatchedOrDuplicateTensors) {
  SafetensorsWriter writer;
  const std::vector<float> a = {1, 2, 3};
  const int64_t shape[] = {2, 2};
  EXPECT_EQ(writer.Add("a", DType::kFloat32, shape, Bytes(a)).code(),
            absl::StatusCode::kInvalidArgument);
  const int64_t ok_shape[] = {3};
  EXPECT_TRUE(writer.Add("a", DType::kFloat32, ok_shape, Bytes(a)).ok());
  EXPECT_EQ(writer.Add("a", DType::kFloat32, ok_shape, Bytes(a)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writer.Add("__metadata__", DType::kFloat32, ok_shape, Bytes(a)).code(),
            absl::StatusCode::kInvalidArgument);
}

struct CorruptCase {
  std::string name;
  std::string bytes;
  std::string message;
};

TEST(SafetensorsTest, EveryMalformedFileIsDataLossNamingTheFile) {
  const std::string good = Build({1, 2, 3, 4, 5, 6}, {1, 2});
  const std::string data(40, '\0');  // 6 floats + 2 int64
  std::vector<CorruptCase> cases = {
      {"short", good.substr(0, 5), "fewer than the 8-byte"},
      {"truncated data", good.substr(0, good.size() - 4), "outside"},
      {"trailing bytes", good + "xxxx", "cover"},
      {"header past end", WithHeader("{}", "").substr(0, 8) + "{", "runs past the end"},
      {"bad json", WithHeader("{\"a\": ", data), "does not parse"},
      {"not object", WithHeader("[1, 2]", data), "not an object"},
      {"no dtype", WithHeader(R"({"a": {"shape": [10], "data_offsets": [0, 40]}})", data),
       "needs dtype"},
      {"unknown dtype",
       WithHeader(R"({"a": {"dtype": "F99", "shape": [10], "data_offsets": [0, 40]}})", data),
       "unknown dtype"},
      {"negative dim",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [-10], "data_offsets": [0, 40]}})", data),
       "bad dimension"},
      {"offsets out of range",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [12], "data_offsets": [0, 48]}})", data),
       "outside"},
      {"offsets reversed",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", data),
       "outside"},
      {"size mismatch",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [9], "data_offsets": [0, 40]}})", data),
       "do not hold"},
      {"overlap",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [6], "data_offsets": [0, 24]},
                                 "b": {"dtype": "F32", "shape": [6], "data_offsets": [16, 40]}})",
                  data),
       "previous tensor ends"},
      {"hole",
       WithHeader(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                              "b": {"dtype": "F32", "shape": [6], "data_offsets": [16, 40]}})",
                  data),
       "hole"},
      {"bad metadata",
       WithHeader(
           R"({"__metadata__": {"k": 1}, "a": {"dtype": "U8", "shape": [40], "data_offsets": [0, 40]}})",
           data),
       "not a string"},
  };
  for (const CorruptCase& c : cases) {
    auto file = SafetensorsFile::Parse(c.bytes, "/m/ckpt-7/model.safetensors");
    ASSERT_FALSE(file.ok()) << c.name;
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << c.name;
    EXPECT_THAT(std::string(file.status().message()), HasSubstr("/m/ckpt-7/model.safetensors"))
        << c.name;
    EXPECT_THAT(std::string(file.status().message()), HasSubstr(c.message))
        << c.name << ": " << file.status();
  }
}

}  // namespace
}  // namespace meshtrain
