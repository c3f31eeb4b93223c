#include "runtime/transport/reduce_kernel.h"

#include <vector>

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

TEST(ReduceKernelTest, AddFloat32AllLengths) {
  for (size_t n : {0, 1, 7, 16, 33, 4099}) {
    std::vector<float> dst(n), src(n);
    for (size_t i = 0; i < n; ++i) {
      dst[i] = i * 0.5f;
      src[i] = 1.0f - i;
    }
    AddFloat32(dst.data(), src.data(), n);
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(dst[i], i * 0.5f + (1.0f - i)) << n << " " << i;
  }
}

TEST(ReduceKernelTest, SumFloat32InOrderAndInPlaceOnAnySource) {
  const size_t n = 5000;  // more than one internal block
  std::vector<std::vector<float>> bufs(3, std::vector<float>(n));
  for (size_t i = 0; i < n; ++i) {
    bufs[0][i] = 1e8f;
    bufs[1][i] = -1e8f;
    bufs[2][i] = 1.0f + i;
  }
  std::vector<float> expect(n);
  for (size_t i = 0; i < n; ++i) expect[i] = (bufs[0][i] + bufs[1][i]) + bufs[2][i];
  std::vector<const float*> srcs{bufs[0].data(), bufs[1].data(), bufs[2].data()};
  SumFloat32(bufs[2].data(), srcs, n);  // destination is the last source
  EXPECT_EQ(bufs[2], expect);
}

}  // namespace
}  // namespace meshtrain
