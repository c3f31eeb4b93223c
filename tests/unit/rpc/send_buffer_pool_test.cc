#include "runtime/rpc/send_buffer_pool.h"

#include <cstring>
#include <vector>

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

std::vector<std::byte> Bytes(size_t n, int seed) {
  std::vector<std::byte> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
  return bytes;
}

TEST(SendBufferPoolTest, SliceHoldsACopy) {
  auto pool = SendBufferPool::Create(1 << 20);
  for (size_t n : {size_t{1}, size_t{7}, size_t{4096}, size_t{100001}}) {
    std::vector<std::byte> bytes = Bytes(n, 3);
    grpc::Slice slice = pool->Copy(bytes);
    bytes.assign(n, std::byte{0});  // the caller may reuse its buffer at once
    std::vector<std::byte> expected = Bytes(n, 3);
    ASSERT_EQ(slice.size(), n);
    EXPECT_EQ(std::memcmp(slice.begin(), expected.data(), n), 0) << n;
  }
}

TEST(SendBufferPoolTest, ReleasedBufferIsReused) {
  auto pool = SendBufferPool::Create(1 << 20);
  const std::vector<std::byte> bytes = Bytes(64 << 10, 1);
  const uint8_t* first;
  {
    grpc::Slice slice = pool->Copy(bytes);
    first = slice.begin();
    EXPECT_EQ(pool->cached_bytes(), 0u);
  }
  EXPECT_EQ(pool->cached_bytes(), bytes.size());
  grpc::Slice again = pool->Copy(absl::MakeConstSpan(bytes).subspan(0, 1000));
  EXPECT_EQ(again.begin(), first);  // the same memory, already paged in
  EXPECT_EQ(pool->cached_bytes(), 0u);
}

TEST(SendBufferPoolTest, KeepsNoMoreThanItsLimit) {
  auto pool = SendBufferPool::Create(100 << 10);
  const std::vector<std::byte> bytes = Bytes(64 << 10, 2);
  {
    grpc::Slice a = pool->Copy(bytes);
    grpc::Slice b = pool->Copy(bytes);
  }
  EXPECT_EQ(pool->cached_bytes(), bytes.size());
}

TEST(SendBufferPoolTest, SliceOutlivesThePool) {
  auto pool = SendBufferPool::Create(1 << 20);
  const std::vector<std::byte> bytes = Bytes(1000, 5);
  grpc::Slice slice = pool->Copy(bytes);
  pool.reset();  // what gRPC holds stays valid, and is freed when dropped
  EXPECT_EQ(std::memcmp(slice.begin(), bytes.data(), bytes.size()), 0);
}

}  // namespace
}  // namespace meshtrain
