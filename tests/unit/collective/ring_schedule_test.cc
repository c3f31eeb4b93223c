#include "runtime/collective/ring_schedule.h"

#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace meshtrain {
namespace {

// Simulates the schedule symbolically: which ranks' contributions each rank's
// copy of each chunk holds.
TEST(RingScheduleTest, EndsWithEveryChunkFullyReducedOnEveryRank) {
  for (int n = 1; n <= 9; ++n) {
    std::vector<std::vector<std::set<int>>> held(n, std::vector<std::set<int>>(n));
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < n; ++c) held[r][c] = {r};
    }
    for (int step = 0; step < RingSteps(n); ++step) {
      auto before = held;
      for (int r = 0; r < n; ++r) {
        const int left = (r + n - 1) % n;
        RingStep mine = PlanRingStep(r, n, step);
        RingStep theirs = PlanRingStep(left, n, step);
        ASSERT_EQ(theirs.send_chunk, mine.recv_chunk) << "n " << n << " step " << step;
        ASSERT_EQ(mine.accumulate, step < n - 1);
        const std::set<int>& incoming = before[left][mine.recv_chunk];
        if (mine.accumulate) {
          for (int x : incoming) {
            ASSERT_FALSE(before[r][mine.recv_chunk].count(x)) << "counted twice";
            held[r][mine.recv_chunk].insert(x);
          }
        } else {
          held[r][mine.recv_chunk] = incoming;
        }
      }
      if (step == n - 2) {  // end of reduce-scatter: rank r owns chunk r + 1
        for (int r = 0; r < n; ++r) EXPECT_EQ(held[r][(r + 1) % n].size(), size_t(n));
      }
    }
    for (int r = 0; r < n; ++r) {
      for (int c = 0; c < n; ++c)
        EXPECT_EQ(held[r][c].size(), size_t(n)) << n << " " << r << " " << c;
    }
  }
}

TEST(RingScheduleTest, ChunksTileTheBufferAlignedAndBalanced) {
  for (size_t length : {0, 1, 15, 16, 17, 100, 1000003}) {
    for (int n = 1; n <= 9; ++n) {
      size_t expect_begin = 0, smallest = SIZE_MAX, largest = 0;
      for (int c = 0; c < n; ++c) {
        ChunkRange range = RingChunk(length, n, c);
        EXPECT_EQ(range.begin, expect_begin);
        EXPECT_LE(range.begin, range.end);
        if (range.end != length) {
          EXPECT_EQ(range.end % kChunkAlignElements, 0u);
        }
        expect_begin = range.end;
        smallest = std::min(smallest, range.size());
        largest = std::max(largest, range.size());
      }
      EXPECT_EQ(expect_begin, length) << length << " " << n;
      EXPECT_LE(largest - smallest, kChunkAlignElements) << length << " " << n;
    }
  }
}

}  // namespace
}  // namespace meshtrain
