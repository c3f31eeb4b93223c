#include "runtime/rpc/chunk_codec.h"

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

ChunkMeta Meta(size_t total) {
  ChunkMeta meta;
  meta.transport = "allreduce";
  meta.source = TaskId{"worker", 1};
  meta.source_incarnation = 0xfeedfacecafebeefull;
  meta.destination = TaskId{"chief", 0};
  meta.destination_incarnation = 42;
  meta.seq = 7;
  meta.total_bytes = total;
  return meta;
}

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// The same bytes cut into slices of `piece` bytes, as a network might deliver them.
grpc::ByteBuffer Reslice(const std::string& bytes, size_t piece) {
  std::vector<grpc::Slice> slices;
  for (size_t i = 0; i < bytes.size(); i += piece) {
    slices.emplace_back(bytes.data() + i, std::min(piece, bytes.size() - i));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

TEST(ChunkCodecTest, RoundTripsAcrossAnySlicing) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{1000}}) {
    std::vector<std::byte> payload(n);
    for (size_t i = 0; i < n; ++i) payload[i] = static_cast<std::byte>(i * 13);
    const std::string wire = Flatten(EncodeChunk(Meta(n), payload));
    for (size_t piece : {size_t{1}, size_t{3}, size_t{64}, wire.size() + 1}) {
      auto chunk = DecodeChunk(Reslice(wire, piece));
      ASSERT_TRUE(chunk.ok()) << chunk.status();
      EXPECT_EQ(chunk->meta.transport, "allreduce");
      EXPECT_EQ(chunk->meta.source, (TaskId{"worker", 1}));
      EXPECT_EQ(chunk->meta.source_incarnation, 0xfeedfacecafebeefull);
      EXPECT_EQ(chunk->meta.destination_incarnation, 42u);
      EXPECT_EQ(chunk->meta.seq, 7u);
      EXPECT_EQ(chunk->meta.payload_bytes, n);
      std::vector<std::byte> out(n);
      ASSERT_TRUE(ApplyPayload(*chunk, absl::MakeSpan(out), RecvAction::kCopy).ok());
      EXPECT_EQ(out, payload) << "piece " << piece;
    }
  }
}

TEST(ChunkCodecTest, IsAValidProtobufChunk) {
  std::vector<std::byte> payload = {std::byte{1}, std::byte{2}, std::byte{3}};
  const std::string wire = Flatten(EncodeChunk(Meta(3), payload));
  // What a plain protobuf client would send decodes the same way.
  auto chunk = DecodeChunk(Reslice(wire, 5));
  ASSERT_TRUE(chunk.ok());
  EXPECT_EQ(chunk->payload_offset, wire.size() - 3);
}

TEST(ChunkCodecTest, AddsFloatsThatStraddleSlices) {
  const std::vector<float> incoming = {1.5f, -2.0f, 3.25f, 100.0f, 0.125f};
  const auto* bytes = reinterpret_cast<const std::byte*>(incoming.data());
  const std::string wire = Flatten(EncodeChunk(Meta(20), absl::MakeConstSpan(bytes, 20)));
  for (size_t piece : {size_t{1}, size_t{3}, size_t{5}, size_t{7}}) {
    auto chunk = DecodeChunk(Reslice(wire, piece));
    ASSERT_TRUE(chunk.ok());
    std::vector<float> acc = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    ASSERT_TRUE(ApplyPayload(*chunk, absl::MakeSpan(reinterpret_cast<std::byte*>(acc.data()), 20),
                             RecvAction::kAddFloat32)
                    .ok());
    EXPECT_THAT(acc, ::testing::ElementsAre(2.5f, -1.0f, 4.25f, 101.0f, 1.125f))
        << "piece " << piece;
  }
}

TEST(ChunkCodecTest, RejectsMalformedInput) {
  EXPECT_THAT(std::string(DecodeChunk(grpc::ByteBuffer()).status().message()),
              HasSubstr("malformed chunk"));
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeChunk(Reslice("\x12\x01x", 2)).status()));
  std::vector<std::byte> payload(10);
  const std::string wire = Flatten(EncodeChunk(Meta(10), payload));
  EXPECT_TRUE(
      absl::IsInvalidArgument(DecodeChunk(Reslice(wire.substr(0, wire.size() - 1), 4)).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(DecodeChunk(Reslice(wire.substr(0, 5), 4)).status()));
  ChunkMeta beyond = Meta(4);  // 10 bytes do not fit a 4-byte message
  EXPECT_THAT(std::string(DecodeChunk(EncodeChunk(beyond, payload)).status().message()),
              HasSubstr("overrun"));
}

}  // namespace
}  // namespace meshtrain
