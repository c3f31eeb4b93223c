// Image augmentation: a flip mirrors each row and undoes itself, a crop moves
// the image by the drawn offset with zeros coming in, the draws are a pure
// function of the seed, and bad shapes are named.
#include "runtime/data/image_augment.h"

#include <numeric>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace meshtrain {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kH = 5;
constexpr int64_t kW = 7;
constexpr int64_t kC = 2;

std::vector<float> Image() {
  std::vector<float> image(kH * kW * kC);
  std::iota(image.begin(), image.end(), 1.0f);  // no zeros: padding is visible
  return image;
}

float At(const std::vector<float>& image, int64_t y, int64_t x, int64_t c) {
  return image[(y * kW + x) * kC + c];
}

std::vector<float> Augmented(const AugmentOptions& options, uint64_t seed) {
  std::vector<float> image = Image();
  std::vector<float> scratch(image.size());
  AugmentImage(options, seed, absl::MakeSpan(image), absl::MakeSpan(scratch));
  return image;
}

TEST(ImageAugmentTest, AFlipMirrorsEachRow) {
  const AugmentOptions flip{.height = kH, .width = kW, .channels = kC, .flip_left_right = true};
  const std::vector<float> original = Image();
  int flipped = 0;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    const std::vector<float> out = Augmented(flip, seed);
    if (out == original) continue;
    ++flipped;
    for (int64_t y = 0; y < kH; ++y) {
      for (int64_t x = 0; x < kW; ++x) {
        for (int64_t c = 0; c < kC; ++c)
          ASSERT_EQ(At(out, y, x, c), At(original, y, kW - 1 - x, c));
      }
    }
  }
  // About half the draws flip (binomial(64, 1/2): 20..44 holds with p > 0.998).
  EXPECT_GE(flipped, 20);
  EXPECT_LE(flipped, 44);
}

TEST(ImageAugmentTest, ACropShiftsTheImageAndPadsWithZeros) {
  const AugmentOptions crop{.height = kH, .width = kW, .channels = kC, .crop_padding = 2};
  const std::vector<float> original = Image();
  std::set<std::pair<int64_t, int64_t>> offsets;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const std::vector<float> out = Augmented(crop, seed);
    // Find the offset from where original pixel (2, 3) landed or infer (0,0).
    bool matched = false;
    for (int64_t dy = -2; dy <= 2 && !matched; ++dy) {
      for (int64_t dx = -2; dx <= 2 && !matched; ++dx) {
        bool all = true;
        for (int64_t y = 0; y < kH && all; ++y) {
          for (int64_t x = 0; x < kW && all; ++x) {
            const int64_t sy = y + dy;
            const int64_t sx = x + dx;
            const bool inside = sy >= 0 && sy < kH && sx >= 0 && sx < kW;
            for (int64_t c = 0; c < kC; ++c) {
              const float want = inside ? At(original, sy, sx, c) : 0.0f;
              if (At(out, y, x, c) != want) all = false;
            }
          }
        }
        if (all) {
          matched = true;
          offsets.insert({dy, dx});
        }
      }
    }
    ASSERT_TRUE(matched) << "seed " << seed << ": not a shifted, zero-padded copy";
  }
  EXPECT_EQ(offsets.size(), 25u) << "every offset in [-2, 2]^2 drawn in 200 tries";
}

TEST(ImageAugmentTest, DrawsArePureFunctionsOfTheSeed) {
  const AugmentOptions both{
      .height = kH, .width = kW, .channels = kC, .flip_left_right = true, .crop_padding = 1};
  EXPECT_EQ(Augmented(both, 42), Augmented(both, 42));
  EXPECT_EQ(AugmentSeed(1, 2, 3, 4), AugmentSeed(1, 2, 3, 4));
  std::set<uint64_t> seeds;
  for (int64_t row = 0; row < 100; ++row) seeds.insert(AugmentSeed(1234, 0, 0, row));
  seeds.insert(AugmentSeed(1234, 1, 0, 0));
  seeds.insert(AugmentSeed(1234, 0, 1, 0));
  EXPECT_EQ(seeds.size(), 102u);
}

TEST(ImageAugmentTest, ShapesThatDoNotFitAreNamed) {
  EXPECT_TRUE(ValidateAugment({.height = 28, .width = 28, .channels = 1}, 784).ok());
  const absl::Status size = ValidateAugment({.height = 28, .width = 28, .channels = 3}, 784);
  EXPECT_EQ(size.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(size.message(), HasSubstr("holds 2352 values but each input has 784"));
  EXPECT_THAT(ValidateAugment({.height = 0, .width = 28}, 0).message(),
              HasSubstr("must be positive"));
  EXPECT_THAT(
      ValidateAugment({.height = 4, .width = 4, .channels = 1, .crop_padding = 5}, 16).message(),
      HasSubstr("crop_padding 5 must be in [0, 4]"));
}

}  // namespace
}  // namespace meshtrain
